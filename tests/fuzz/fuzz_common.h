/* What both fuzz targets share: an allocator that refuses more than 64 MiB at once (a
 * described size may be huge: that is the library's ENOMEM path, not a fuzzer
 * out-of-memory), and writing the input to the file the library reads. */
#ifndef INTDIM_FUZZ_COMMON_H
#define INTDIM_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static inline void *capped_alloc(void *user, size_t n)
{
    (void)user;
    return n > ((size_t)64 << 20) ? NULL : malloc(n);
}

static inline void capped_free(void *user, void *p)
{
    (void)user;
    free(p);
}

static inline void write_input(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        abort();
}

#endif
