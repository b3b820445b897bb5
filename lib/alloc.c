/* The allocator hook. Blocks are over-allocated to 64-byte alignment; the original
 * pointer is stored just before the aligned block so the hook's free gets it back. */
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "internal.h"

static void *default_alloc(void *user, size_t size)
{
    (void)user;
    return malloc(size);
}

static void default_free(void *user, void *ptr)
{
    (void)user;
    free(ptr);
}

static intdim_alloc_fn g_alloc = default_alloc;
static intdim_free_fn g_free = default_free;
static void *g_user = NULL;

enum { ALIGNMENT = 64 };

INTDIM_API int intdim_set_allocator(intdim_alloc_fn alloc, intdim_free_fn free_fn, void *user)
{
    if ((alloc == NULL) != (free_fn == NULL))
        return intdim__fail(INTDIM_EINVAL, "intdim_set_allocator: alloc and free must both be "
                                           "set or both be NULL");
    g_alloc = alloc ? alloc : default_alloc;
    g_free = free_fn ? free_fn : default_free;
    g_user = alloc ? user : NULL;
    return INTDIM_OK;
}

size_t intdim__mul_size(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        return SIZE_MAX;
    return count * size;
}

/* Large tables and work arrays are walked with big strides (the transform's strips, the
 * Fastfood tables per element): with 4 KiB pages nearly every row costs a TLB miss, so ask
 * for transparent huge pages on the 2 MiB-aligned interior. Advice only: where the kernel
 * or the allocator's memory does not allow it, nothing changes. */
static void advise_huge_pages(void *ptr, size_t bytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (bytes < 2 * huge)
        return;
    uintptr_t first = ((uintptr_t)ptr + huge - 1) & ~(huge - 1);
    uintptr_t last = ((uintptr_t)ptr + bytes) & ~(huge - 1);
    if (last > first)
        (void)madvise((void *)first, last - first, MADV_HUGEPAGE);
#else
    (void)ptr;
    (void)bytes;
#endif
}

void *intdim__alloc(size_t bytes)
{
    if (bytes == 0)
        bytes = 1;
    if (bytes > SIZE_MAX - ALIGNMENT - sizeof(void *))
        return NULL;
    unsigned char *raw = g_alloc(g_user, bytes + ALIGNMENT + sizeof(void *));
    if (raw == NULL)
        return NULL;
    uintptr_t start = (uintptr_t)(raw + sizeof(void *));
    uintptr_t aligned = (start + ALIGNMENT - 1) & ~(uintptr_t)(ALIGNMENT - 1);
    void **slot = (void **)(aligned - sizeof(void *));
    *slot = raw;
    advise_huge_pages((void *)aligned, bytes);
    return (void *)aligned;
}

void *intdim__calloc(size_t count, size_t size)
{
    size_t bytes = intdim__mul_size(count, size);
    if (bytes == SIZE_MAX)
        return NULL;
    void *p = intdim__alloc(bytes);
    if (p != NULL)
        memset(p, 0, bytes);
    return p;
}

void intdim__free(void *ptr)
{
    if (ptr == NULL)
        return;
    void **slot = (void **)((uintptr_t)ptr - sizeof(void *));
    g_free(g_user, *slot);
}
