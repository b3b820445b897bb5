/* Fault injection shared by the tests: an allocator for intdim_set_allocator that fails the
 * fail_at-th allocation (1-based; 0 = never) and counts what it handed out and took back, so
 * a test can assert that a failed call leaked nothing; and fsync, interposed for the test
 * programs (the library is linked in statically), failing once on demand. */
#ifndef INTDIM_TEST_FAIL_ALLOC_H
#define INTDIM_TEST_FAIL_ALLOC_H

typedef struct fail_alloc_state {
    long fail_at;  /* which allocation attempt fails (1-based), 0 = none */
    long attempts; /* allocation calls, the failed one included */
    long allocs;   /* blocks handed out */
    long frees;    /* blocks taken back */
} fail_alloc_state;

extern fail_alloc_state g_fail;

/* Reset the counts, arm the failure and route the library's allocations through it. */
void fail_alloc_install(long fail_at);
/* Back to malloc/free (the counts stay readable). */
void fail_alloc_remove(void);

/* Non-zero: the next fsync fails with EIO (as a disk that lost the write would report), the
 * next write with ENOSPC (a full disk), the next rename with EACCES, the next close with
 * EIO (after really closing: NFS reports a lost write there), and the flag goes back to 0,
 * so a test can check the failure really happened. g_fail_next_fsync = n > 1 lets n - 1
 * fsyncs pass first (2: a save's file fsync passes, its directory fsync fails). */
extern int g_fail_next_fsync, g_fail_next_write, g_fail_next_rename, g_fail_next_close;

#endif
