/* Thread count resolution and small integer helpers. */
#ifdef INTDIM_HAVE_OPENMP
#include <omp.h>
#endif

#include "internal.h"

int intdim__threads(int requested)
{
#ifdef INTDIM_HAVE_OPENMP
    int available = omp_get_max_threads();
    if (requested <= 0 || requested > available)
        return available;
    return requested;
#else
    (void)requested;
    return 1;
#endif
}

int intdim__thread_num(void)
{
#ifdef INTDIM_HAVE_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

uint64_t intdim__next_pow2(uint64_t n)
{
    if (n <= 1)
        return 1;
    if (n > (UINT64_C(1) << 63))
        return 0;
    uint64_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

int intdim__is_pow2(uint64_t n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

unsigned intdim__log2_exact(uint64_t pow2)
{
    unsigned k = 0;
    while ((UINT64_C(1) << k) < pow2)
        k++;
    return k;
}
