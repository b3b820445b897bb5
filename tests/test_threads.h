/* Shared by the unit tests' mains and their thread comparisons. */
#ifndef INTDIM_TEST_THREADS_H
#define INTDIM_TEST_THREADS_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef INTDIM_HAVE_OPENMP
#include <omp.h>
#endif

#include "internal.h"

/* Before the runner forks: tests that compare 1 thread with 2 need 2 to exist even where
 * OMP_NUM_THREADS=1 or the machine has one CPU (two threads on one core still split the
 * work the same way). */
static inline void allow_two_threads(void)
{
#ifdef INTDIM_HAVE_OPENMP
    if (omp_get_max_threads() < 2)
        omp_set_num_threads(2);
#endif
}

/* In a test that compares 1 thread with 2: fail if 2 threads would not really run (the
 * comparison would set a run against itself); say so where the build has no threads. */
static inline void require_two_threads(const char *test)
{
#ifdef INTDIM_HAVE_OPENMP
    ck_assert_msg(intdim__threads(2) == 2, "%s: a request for 2 threads gets %d", test,
                  intdim__threads(2));
#else
    fprintf(stderr, "%s: built without OpenMP, 1 and 2 threads are the same run: "
                    "the comparison shows nothing here\n", test);
#endif
}

/* The exit status of a test program: failure also when no test ran at all (a CK_RUN_CASE
 * or CK_RUN_SUITE that names nothing, e.g. after a rename, runs zero tests "successfully"). */
static inline int runner_exit_status(SRunner *runner)
{
    int failed = srunner_ntests_failed(runner), ran = srunner_ntests_run(runner);
    if (ran == 0)
        fprintf(stderr, "no test ran (CK_RUN_CASE / CK_RUN_SUITE name nothing?)\n");
    return failed == 0 && ran > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
