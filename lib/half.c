/* IEEE 754 binary16 conversions in plain integer arithmetic, so every platform and kernel
 * agrees bit for bit: Fastfood stores its Gaussian diagonal G in 16 bits (half the memory
 * traffic of floats, the stored value *is* G), and the SIMD kernels widen it with
 * vcvtph2ps, which is exact, as half_to_float is. */
#include "internal.h"

/* Type punning through a union is defined in C (unlike a pointer cast). */
typedef union {
    float f;
    uint32_t u;
} float_bits;

static uint32_t bits_of(float f)
{
    float_bits v = {.f = f};
    return v.u;
}

static float float_of(uint32_t u)
{
    float_bits v = {.u = u};
    return v.f;
}

float intdim__half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1fu) /* Inf or NaN (quiet, payload kept) */
        return float_of(sign | 0x7f800000u | (mant << 13) | (mant ? 0x400000u : 0));
    if (exp != 0)
        return float_of(sign | ((exp + 112u) << 23) | (mant << 13));
    /* zero or subnormal: mant * 2^-24 is exact in float */
    float v = (float)mant * 0x1p-24f;
    return sign ? -v : v;
}

/* Round to nearest, ties to even; overflow to Inf, underflow through subnormals to 0. */
uint16_t intdim__float_to_half(float f)
{
    uint32_t u = bits_of(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u) /* Inf or NaN */
        return (uint16_t)(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0));
    if (abs >= 0x477ff000u) /* >= 65520: rounds past the largest half, 65504 */
        return (uint16_t)(sign | 0x7c00u);
    int exp = (int)(abs >> 23) - 127;
    uint32_t mant = (abs & 0x7fffffu) | 0x800000u; /* 24 significant bits */
    /* Bits of mant to drop: 13 for normal halves, more below 2^-14 (subnormals). */
    int shift = exp >= -14 ? 13 : 13 + (-14 - exp);
    if (shift > 24 || abs == 0) /* below half the smallest subnormal (or zero) */
        return sign;
    uint32_t kept = mant >> shift;
    uint32_t rest = mant & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (kept & 1u)))
        kept++; /* may carry into the exponent: still the right encoding */
    if (exp >= -14)
        return (uint16_t)(sign | ((((uint32_t)(exp + 14)) << 10) + kept));
    return (uint16_t)(sign | kept);
}
