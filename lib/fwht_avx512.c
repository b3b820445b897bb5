/* AVX-512 Walsh-Hadamard kernel: 16-lane vectors, four levels per sweep across rows (16
 * of the 32 registers hold data). The instruction set is enabled for this file's
 * functions only (no special compile flags); fwht.c calls them only when the CPU has
 * AVX-512F. Non-x86 builds compile the stub at the end. */
#include "fwht_impl.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#endif

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)

#pragma GCC push_options
#pragma GCC target("avx512f")

#define VW 16
#define LOG2VW 4
#define VSUB(a, b) ((vfloat)_mm512_fnmadd_ps((__m512)(b), _mm512_set1_ps(1.0f), (__m512)(a)))
#define VMULADD(v, s, p) ((vfloat)_mm512_fmadd_ps((__m512)(v), (__m512)(s), (__m512)(p)))
#define ROW_RADIX 4
#define STREAMV(p, v) _mm512_stream_ps((p), (__m512)(v))
#include "fwht_simd.inc"

#pragma GCC pop_options

const fwht_kernel *intdim__fwht_avx512_kernel(void)
{
    static const fwht_kernel kernel = {simd_block, simd_rows, simd_gather16, simd_fold16,
                                       simd_scale_out};
    return &kernel;
}

#else

const fwht_kernel *intdim__fwht_avx512_kernel(void)
{
    return NULL;
}

#endif
