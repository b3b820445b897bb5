/* AVX2 Walsh-Hadamard kernel: 8-lane vectors, three levels per sweep across rows (8 of
 * the 16 registers hold data). The instruction set is enabled for this file's functions
 * only (no special compile flags); fwht.c calls them only when the CPU has AVX2.
 * Non-x86 builds compile the stub at the end. */
#include "fwht_impl.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#endif

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

#define VW 8
#define LOG2VW 3
#define VSUB(a, b) ((vfloat)_mm256_fnmadd_ps((__m256)(b), _mm256_set1_ps(1.0f), (__m256)(a)))
#define VMULADD(v, s, p) ((vfloat)_mm256_fmadd_ps((__m256)(v), (__m256)(s), (__m256)(p)))
#define ROW_RADIX 3
#define STREAMV(p, v) _mm256_stream_ps((p), (__m256)(v))
#define LOOKUPV(w, q) lookup8((w), (q))
#define LOOKUPV_HW(w, q)                                                                    \
    ((vfloat)_mm256_i32gather_ps(                                                           \
        (w), _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(q))), 4))
/* 8 binary16 values widened exactly (F16C, which every AVX2 CPU we dispatch to has) */
#define LOADHALFV(p) ((vfloat)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p))))

/* w[q[0..7]] as two independent 4-lane builds (see the AVX-512 kernel). */
static inline __m256 lookup8(const float *w, const uint16_t *q)
{
    __m128 a = _mm_set_ps(w[q[3]], w[q[2]], w[q[1]], w[q[0]]);
    __m128 b = _mm_set_ps(w[q[7]], w[q[6]], w[q[5]], w[q[4]]);
    return _mm256_insertf128_ps(_mm256_castps128_ps256(a), b, 1);
}
#include "fwht_simd.inc"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const fwht_kernel *intdim__fwht_avx2_kernel(int hw_gather)
{
    static const fwht_kernel kernel = SIMD_KERNEL_TABLE;
    static const fwht_kernel kernel_hw = SIMD_KERNEL_TABLE_HW_GATHER;
    return hw_gather ? &kernel_hw : &kernel;
}

#else

const fwht_kernel *intdim__fwht_avx2_kernel(int hw_gather)
{
    (void)hw_gather;
    return NULL;
}

#endif
