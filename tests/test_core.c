/* Core services: status strings, the per-thread last error, named constants for FFI, and
 * the version functions. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intdim.h"
#include "test_threads.h"

static const int g_statuses[] = {
    INTDIM_OK,        INTDIM_EINVAL,    INTDIM_ENOMEM,      INTDIM_ETOOBIG,
    INTDIM_ECALLBACK, INTDIM_ENONFINITE, INTDIM_EIO,        INTDIM_EFORMAT,
    INTDIM_EMISMATCH, INTDIM_ESTATE,    INTDIM_EUNSUPPORTED, INTDIM_EINTERRUPTED,
    INTDIM_ENOTFOUND,
};
enum { N_STATUSES = (int)(sizeof g_statuses / sizeof g_statuses[0]) };

START_TEST(test_strerror_every_status)
{
    const char *unknown = intdim_strerror(12345);
    ck_assert_ptr_nonnull(unknown);
    ck_assert_str_eq(unknown, "unknown status");
    for (int i = 0; i < N_STATUSES; i++) {
        const char *s = intdim_strerror(g_statuses[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_gt(strlen(s), 3);
        ck_assert_str_ne(s, unknown);
        for (int j = 0; j < i; j++) /* every status has its own text */
            ck_assert_str_ne(s, intdim_strerror(g_statuses[j]));
    }
    /* statuses just outside the defined range, and extremes */
    static const int others[] = { 1, -13, -100, 2147483647, -2147483647 - 1 };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        ck_assert_str_eq(intdim_strerror(others[i]), "unknown status");
}
END_TEST

static int g_half_allocator_calls;

static void *only_alloc(void *user, size_t size)
{
    (void)user;
    g_half_allocator_calls++;
    return malloc(size);
}

static void only_free(void *user, void *ptr)
{
    (void)user;
    g_half_allocator_calls++;
    free(ptr);
}

/* An allocator with only one half is refused, and the default stays in place (the projection
 * below is made and freed by malloc/free, not by the half given). */
START_TEST(test_half_an_allocator_is_refused)
{
    intdim_proj *p = NULL;
    ck_assert_int_eq(intdim_set_allocator(only_alloc, NULL, NULL), INTDIM_EINVAL);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "both"));
    ck_assert_int_eq(intdim_set_allocator(NULL, only_free, NULL), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_create(&p, INTDIM_PROJ_DENSE, 100, 5, 1), INTDIM_OK);
    intdim_proj_destroy(p);
    ck_assert_int_eq(g_half_allocator_calls, 0);
}
END_TEST

START_TEST(test_last_error_after_failure)
{
    intdim_proj *p = NULL;
    ck_assert_int_eq(intdim_proj_create(&p, INTDIM_PROJ_DENSE, 10, 20, 1), INTDIM_EINVAL);
    const char *msg = intdim_last_error();
    ck_assert_ptr_nonnull(msg);
    ck_assert_msg(strstr(msg, "d = 20") != NULL && strstr(msg, "D = 10") != NULL, "%s", msg);

    int64_t v;
    ck_assert_int_eq(intdim_constant("INTDIM_NO_SUCH_NAME", &v), INTDIM_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "INTDIM_NO_SUCH_NAME"));

    /* a success does not erase the message of the last failure */
    ck_assert_int_eq(intdim_constant("INTDIM_OK", &v), INTDIM_OK);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "INTDIM_NO_SUCH_NAME"));

    /* ... intdim_clear_error does, and a success after it leaves "" */
    intdim_clear_error();
    ck_assert_str_eq(intdim_last_error(), "");
    ck_assert_int_eq(intdim_constant("INTDIM_OK", &v), INTDIM_OK);
    ck_assert_str_eq(intdim_last_error(), "");
    ck_assert_int_eq(intdim_constant("INTDIM_NO_SUCH_NAME", &v), INTDIM_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "INTDIM_NO_SUCH_NAME"));
}
END_TEST

static void *fail_in_thread(void *arg)
{
    (void)arg;
    int64_t v;
    intdim_constant("INTDIM_OTHER_THREAD_NAME", &v);
    return NULL;
}

START_TEST(test_last_error_is_per_thread)
{
    int64_t v;
    ck_assert_int_eq(intdim_constant("INTDIM_MAIN_THREAD_NAME", &v), INTDIM_ENOTFOUND);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fail_in_thread, NULL), 0);
    pthread_join(t, NULL);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "INTDIM_MAIN_THREAD_NAME"));
}
END_TEST

START_TEST(test_constants)
{
    struct {
        const char *name;
        int64_t value;
    } expected[] = {
#define C(x) { #x, (int64_t)(x) }
        C(INTDIM_VERSION_MAJOR),  C(INTDIM_VERSION_MINOR),     C(INTDIM_VERSION_PATCH),
        C(INTDIM_VERSION_NUMBER), C(INTDIM_OK),                C(INTDIM_EINVAL),
        C(INTDIM_ENOMEM),         C(INTDIM_ETOOBIG),           C(INTDIM_ECALLBACK),
        C(INTDIM_ENONFINITE),     C(INTDIM_EIO),               C(INTDIM_EFORMAT),
        C(INTDIM_EMISMATCH),      C(INTDIM_ESTATE),            C(INTDIM_EUNSUPPORTED),
        C(INTDIM_EINTERRUPTED),   C(INTDIM_ENOTFOUND),         C(INTDIM_PROJ_IDENTITY),
        C(INTDIM_PROJ_DENSE),     C(INTDIM_PROJ_SPARSE),       C(INTDIM_PROJ_FASTFOOD),
        C(INTDIM_PROJ_SPARSE_DENSITY), C(INTDIM_PROJ_MEMORY_BUDGET),
        C(INTDIM_PROJ_FASTFOOD_PER_GROUP), C(INTDIM_PROJ_SAID), C(INTDIM_PROJ_THREADS),
        C(INTDIM_PROJ_KERNEL),    C(INTDIM_KERNEL_AUTO),       C(INTDIM_KERNEL_PORTABLE),
        C(INTDIM_KERNEL_AVX2),    C(INTDIM_KERNEL_AVX512),     C(INTDIM_TRAIN_OPTIMIZER),
        C(INTDIM_TRAIN_LR),       C(INTDIM_TRAIN_MIN_LR_RATIO), C(INTDIM_OPT_ADAMW),
        C(INTDIM_SCHED_COSINE),   C(INTDIM_NONFINITE_SKIP),    C(INTDIM_TRAINER_BORROW_THETA0),
        C(INTDIM_SEARCH_STRATEGY), C(INTDIM_SEARCH_PARALLEL),  C(INTDIM_STRATEGY_ADAPTIVE),
        C(INTDIM_ASK_TRIAL),      C(INTDIM_ASK_WAIT),          C(INTDIM_ASK_DONE),
#undef C
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        int64_t v = -999;
        ck_assert_msg(intdim_constant(expected[i].name, &v) == INTDIM_OK, "%s not found",
                      expected[i].name);
        ck_assert_msg(v == expected[i].value, "%s = %lld, expected %lld", expected[i].name,
                      (long long)v, (long long)expected[i].value);
    }
    int64_t v = 77;
    ck_assert_int_eq(intdim_constant("intdim_ok", &v), INTDIM_ENOTFOUND); /* case matters */
    ck_assert_int_eq(intdim_constant("", &v), INTDIM_ENOTFOUND);
    ck_assert_int_eq(intdim_constant("INTDIM_PROJ_FASTFOOD_", &v), INTDIM_ENOTFOUND);
    ck_assert_int_eq(v, 77); /* untouched on failure */
    ck_assert_int_eq(intdim_constant(NULL, &v), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_constant("INTDIM_OK", NULL), INTDIM_EINVAL);
}
END_TEST

/* The values released in INTDIM_0.1, written out as literals: an FFI binding hard-codes
 * them (or reads them through intdim_constant), so a renumbered enum would break it
 * silently. docs/abi.md: values are never changed or reused. Both the header's value and
 * the library's table must still give the literal. */
START_TEST(test_released_values_are_pinned)
{
    struct {
        const char *name;
        int64_t header, released;
    } pinned[] = {
#define P(x, v) { #x, (int64_t)(x), (int64_t)(v) }
        P(INTDIM_OK, 0), P(INTDIM_EINVAL, -1), P(INTDIM_ENOMEM, -2), P(INTDIM_ETOOBIG, -3),
        P(INTDIM_ECALLBACK, -4), P(INTDIM_ENONFINITE, -5), P(INTDIM_EIO, -6),
        P(INTDIM_EFORMAT, -7), P(INTDIM_EMISMATCH, -8), P(INTDIM_ESTATE, -9),
        P(INTDIM_EUNSUPPORTED, -10), P(INTDIM_EINTERRUPTED, -11), P(INTDIM_ENOTFOUND, -12),
        P(INTDIM_PROJ_IDENTITY, 0), P(INTDIM_PROJ_DENSE, 1), P(INTDIM_PROJ_SPARSE, 2),
        P(INTDIM_PROJ_FASTFOOD, 3), P(INTDIM_PROJ_SPARSE_DENSITY, 0),
        P(INTDIM_PROJ_MEMORY_BUDGET, 1), P(INTDIM_PROJ_FASTFOOD_PER_GROUP, 2),
        P(INTDIM_PROJ_SAID, 3), P(INTDIM_PROJ_THREADS, 4), P(INTDIM_PROJ_KERNEL, 5),
        P(INTDIM_PROJ_FASTFOOD_BLOCK, 6), P(INTDIM_PROJ_FASTFOOD_TABLES, 7),
        P(INTDIM_TRAIN_OPTIMIZER, 0), P(INTDIM_TRAIN_LR, 1), P(INTDIM_TRAIN_MOMENTUM, 2),
        P(INTDIM_TRAIN_NESTEROV, 3), P(INTDIM_TRAIN_BETA1, 4), P(INTDIM_TRAIN_BETA2, 5),
        P(INTDIM_TRAIN_EPS, 6), P(INTDIM_TRAIN_WEIGHT_DECAY, 7), P(INTDIM_TRAIN_SCHEDULE, 8),
        P(INTDIM_TRAIN_WARMUP_STEPS, 9), P(INTDIM_TRAIN_TOTAL_STEPS, 10),
        P(INTDIM_TRAIN_CLIP_NORM, 11), P(INTDIM_TRAIN_LAMBDA_LR, 12),
        P(INTDIM_TRAIN_NONFINITE, 13), P(INTDIM_TRAIN_EVAL_EVERY, 14),
        P(INTDIM_TRAIN_MIN_LR_RATIO, 15), P(INTDIM_SEARCH_STRATEGY, 0),
        P(INTDIM_SEARCH_FRACTION, 1), P(INTDIM_SEARCH_BASELINE, 2), P(INTDIM_SEARCH_SEEDS, 3),
        P(INTDIM_SEARCH_D_MIN, 4), P(INTDIM_SEARCH_D_MAX, 5), P(INTDIM_SEARCH_N_D, 6),
        P(INTDIM_SEARCH_KIND, 7), P(INTDIM_SEARCH_SAID, 8), P(INTDIM_SEARCH_BASE_SEED, 9),
        P(INTDIM_SEARCH_BOOTSTRAP, 10), P(INTDIM_SEARCH_STEPS, 11),
        P(INTDIM_SEARCH_PARALLEL, 12), P(INTDIM_SEARCH_FASTFOOD_BLOCK, 13),
        P(INTDIM_OPT_SGD, 0), P(INTDIM_OPT_ADAM, 1), P(INTDIM_OPT_ADAMW, 2),
        P(INTDIM_SCHED_CONSTANT, 0), P(INTDIM_SCHED_LINEAR, 1), P(INTDIM_SCHED_COSINE, 2),
        P(INTDIM_NONFINITE_STOP, 0), P(INTDIM_NONFINITE_SKIP, 1), P(INTDIM_KERNEL_AUTO, 0),
        P(INTDIM_KERNEL_PORTABLE, 1), P(INTDIM_KERNEL_AVX2, 2), P(INTDIM_KERNEL_AVX512, 3),
        P(INTDIM_STRATEGY_GRID, 0), P(INTDIM_STRATEGY_ADAPTIVE, 1), P(INTDIM_ASK_TRIAL, 0),
        P(INTDIM_ASK_WAIT, 1), P(INTDIM_ASK_DONE, 2), P(INTDIM_TRAINER_BORROW_THETA0, 1),
#undef P
    };
    for (size_t i = 0; i < sizeof pinned / sizeof pinned[0]; i++) {
        ck_assert_msg(pinned[i].header == pinned[i].released, "%s = %lld in the header, %lld released",
                      pinned[i].name, (long long)pinned[i].header, (long long)pinned[i].released);
        int64_t v = -999;
        ck_assert_msg(intdim_constant(pinned[i].name, &v) == INTDIM_OK, "%s not found",
                      pinned[i].name);
        ck_assert_msg(v == pinned[i].released, "intdim_constant(%s) = %lld, released %lld",
                      pinned[i].name, (long long)v, (long long)pinned[i].released);
    }
}
END_TEST

START_TEST(test_version)
{
    ck_assert_uint_eq(intdim_version(), INTDIM_VERSION_NUMBER);
    ck_assert_uint_eq(intdim_version(), INTDIM_VERSION_MAJOR * 10000 +
                                            INTDIM_VERSION_MINOR * 100 + INTDIM_VERSION_PATCH);
    ck_assert_str_eq(intdim_version_string(), INTDIM_VERSION_STRING);
    char built[32];
    snprintf(built, sizeof built, "%d.%d.%d", INTDIM_VERSION_MAJOR, INTDIM_VERSION_MINOR,
             INTDIM_VERSION_PATCH);
    ck_assert_str_eq(intdim_version_string(), built);
}
END_TEST

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_strerror_every_status);
    tcase_add_test(tc, test_last_error_after_failure);
    tcase_add_test(tc, test_half_an_allocator_is_refused);
    tcase_add_test(tc, test_last_error_is_per_thread);
    tcase_add_test(tc, test_constants);
    tcase_add_test(tc, test_released_values_are_pinned);
    tcase_add_test(tc, test_version);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    allow_two_threads();
    SRunner *runner = srunner_create(core_suite());
    srunner_run_all(runner, CK_NORMAL);
    int status = runner_exit_status(runner);
    srunner_free(runner);
    return status;
}
