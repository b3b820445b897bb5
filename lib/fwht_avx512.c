/* AVX-512 Walsh-Hadamard kernel: 16-lane vectors, four levels per sweep across rows (16
 * of the 32 registers hold data). The instruction set is enabled for this file's
 * functions only (no special compile flags); fwht.c calls them only when the CPU has
 * AVX-512F (and F16C, which the fold's 8-lane conversions use). Non-x86 builds compile the
 * stub at the end. */
#include "fwht_impl.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#endif

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,f16c")
#endif

#define VW 16
#define LOG2VW 4
#define VSUB(a, b) ((vfloat)_mm512_fnmadd_ps((__m512)(b), _mm512_set1_ps(1.0f), (__m512)(a)))
#define VMULADD(v, s, p) ((vfloat)_mm512_fmadd_ps((__m512)(v), (__m512)(s), (__m512)(p)))
#define ROW_RADIX 4
#define STREAMV(p, v) _mm512_stream_ps((p), (__m512)(v))
#define LOOKUPV(w, q) lookup16((w), (q))
#define LOOKUPV_HW(w, q)                                                                    \
    ((vfloat)_mm512_i32gather_ps(                                                           \
        _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(q))), (w), 4))
/* 16 binary16 values widened exactly (vcvtph2ps is part of AVX-512F) */
#define LOADHALFV(p) ((vfloat)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p))))

/* w[q[0..15]] as four independent 4-lane builds joined at the end: a lane-by-lane
 * insert chain would serialize 16 dependent instructions. */
static inline __m512 lookup16(const float *w, const uint16_t *q)
{
    __m128 a = _mm_set_ps(w[q[3]], w[q[2]], w[q[1]], w[q[0]]);
    __m128 b = _mm_set_ps(w[q[7]], w[q[6]], w[q[5]], w[q[4]]);
    __m128 c = _mm_set_ps(w[q[11]], w[q[10]], w[q[9]], w[q[8]]);
    __m128 e = _mm_set_ps(w[q[15]], w[q[14]], w[q[13]], w[q[12]]);
    __m512 v = _mm512_castps128_ps512(a);
    v = _mm512_insertf32x4(v, b, 1);
    v = _mm512_insertf32x4(v, c, 2);
    return _mm512_insertf32x4(v, e, 3);
}
#include "fwht_simd.inc"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const fwht_kernel *intdim__fwht_avx512_kernel(int hw_gather)
{
    static const fwht_kernel kernel = SIMD_KERNEL_TABLE;
    static const fwht_kernel kernel_hw = SIMD_KERNEL_TABLE_HW_GATHER;
    return hw_gather ? &kernel_hw : &kernel;
}

#else

const fwht_kernel *intdim__fwht_avx512_kernel(int hw_gather)
{
    (void)hw_gather;
    return NULL;
}

#endif
