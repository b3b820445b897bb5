/* Counter-based generator: value = mix(seed, stream, index). Stateless, so a table can be
 * filled in any order by any number of threads and still be the same bits. The mixer is
 * two rounds of the splitmix64 finalizer (Steele, Lea, Flood 2014) over a keyed counter. */
#include <math.h>

#include "internal.h"

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t intdim__rng_u64(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint64_t key = mix64(seed ^ mix64(stream * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL));
    return mix64(key + index * 0x9e3779b97f4a7c15ULL);
}

double intdim__rng_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    /* 53 random bits, offset by half an ulp so 0 never appears (log in Box-Muller). */
    return ((double)(intdim__rng_u64(seed, stream, index) >> 11) + 0.5) * 0x1.0p-53;
}

float intdim__rng_gauss(uint64_t seed, uint64_t stream, uint64_t index)
{
    double u1 = intdim__rng_uniform(seed, stream, 2 * index);
    double u2 = intdim__rng_uniform(seed, stream, 2 * index + 1);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

float intdim__rng_sign(uint64_t seed, uint64_t stream, uint64_t index)
{
    return (intdim__rng_u64(seed, stream, index) >> 63) ? -1.0f : 1.0f;
}

uint64_t intdim__rng_below(uint64_t seed, uint64_t stream, uint64_t index, uint64_t n)
{
    /* Rejection on the top of the range; the retry counter goes into the high bits of the
     * index so retries never collide with other indices of realistic tables. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    for (uint64_t attempt = 0;; attempt++) {
        uint64_t r = intdim__rng_u64(seed, stream, index ^ (attempt << 48));
        if (r < limit)
            return r % n;
    }
}

/* Fisher-Yates from the top, swap partners from the counter generator: one definition for
 * the entry types (uint32 for the tables, int64 as PyTorch's randperm gives it for exported
 * tables), so both hold the same permutation. */
#define DEFINE_PERMUTATION(name, type)                                                      \
    void name(type *perm, size_t n, uint64_t seed, uint64_t stream)                         \
    {                                                                                       \
        for (size_t i = 0; i < n; i++)                                                      \
            perm[i] = (type)i;                                                              \
        for (size_t i = n; i > 1; i--) {                                                    \
            size_t j = (size_t)intdim__rng_below(seed, stream, i, i);                       \
            type tmp = perm[i - 1];                                                         \
            perm[i - 1] = perm[j];                                                          \
            perm[j] = tmp;                                                                  \
        }                                                                                   \
    }

DEFINE_PERMUTATION(intdim__rng_permutation_u32, uint32_t)
DEFINE_PERMUTATION(intdim__rng_permutation_i64, int64_t)
