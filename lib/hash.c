/* CRC-32 (IEEE 802.3, reflected) for file integrity, and a 64-bit hash to fingerprint theta0. */
#include "internal.h"

static uint32_t crc_table_entry(uint32_t c)
{
    for (int k = 0; k < 8; k++)
        c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    return c;
}

uint32_t intdim__crc32(uint32_t crc, const void *buf, size_t n)
{
    /* Built on first use. Threads racing through the first use all store identical values
     * with atomic stores, so the race is harmless and data-race free. */
    static uint32_t table[256];
    static int ready; /* written once; identical content from any thread */
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
        uint32_t local[256];
        for (uint32_t i = 0; i < 256; i++)
            local[i] = crc_table_entry(i);
        for (int i = 0; i < 256; i++)
            __atomic_store_n(&table[i], local[i], __ATOMIC_RELAXED);
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    const unsigned char *p = buf;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

uint64_t intdim__hash64(const void *buf, size_t n, uint64_t seed)
{
    /* FNV-1a over 8-byte words with a final avalanche: fast enough for D = 1e8 floats. */
    const unsigned char *p = buf;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = 0;
        for (int k = 0; k < 8; k++)
            w |= (uint64_t)p[i + k] << (8 * k);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}
