#include "fail_alloc.h"

#include <errno.h>
#include <stdio.h> /* rename */
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "intdim.h"

fail_alloc_state g_fail;

static void *failing_alloc(void *user, size_t size)
{
    (void)user;
    if (++g_fail.attempts == g_fail.fail_at)
        return NULL;
    void *ptr = malloc(size);
    if (ptr != NULL)
        g_fail.allocs++;
    return ptr;
}

static void counting_free(void *user, void *ptr)
{
    (void)user;
    if (ptr != NULL)
        g_fail.frees++;
    free(ptr);
}

void fail_alloc_install(long fail_at)
{
    g_fail = (fail_alloc_state){.fail_at = fail_at};
    intdim_set_allocator(failing_alloc, counting_free, NULL);
}

void fail_alloc_remove(void)
{
    intdim_set_allocator(NULL, NULL, NULL);
}

int g_fail_next_fsync, g_fail_next_write, g_fail_next_rename, g_fail_next_close;

int fsync(int fd)
{
    if (g_fail_next_fsync > 0 && --g_fail_next_fsync == 0) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fsync, fd);
}

int close(int fd)
{
    int rc = (int)syscall(SYS_close, fd); /* the descriptor is gone either way, as in Linux */
    if (g_fail_next_close) {
        g_fail_next_close = 0;
        errno = EIO;
        return -1;
    }
    return rc;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    if (g_fail_next_write) {
        g_fail_next_write = 0;
        errno = ENOSPC;
        return -1;
    }
    return (ssize_t)syscall(SYS_write, fd, buf, n);
}

int rename(const char *from, const char *to)
{
    if (g_fail_next_rename) {
        g_fail_next_rename = 0;
        errno = EACCES;
        return -1;
    }
    return (int)syscall(SYS_rename, from, to);
}
