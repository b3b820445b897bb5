/* The d90 search: the rule on hand-chosen metrics (strictness, ties, seeds averaged, best lr,
 * not reached, failures), ask/tell misuse, the bootstrap, adaptive vs grid on synthetic
 * curves and on the real toy problem, and allocation failures. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fail_alloc.h"
#include "../examples/toy/toy_problem.h"
#include "search_impl.h"
#include "test_threads.h"

/* metric(d, lr, seed index) for the ask/tell driver. */
typedef double (*metric_fn)(const void *ctx, size_t d, int kind, double lr, size_t seed_index);

typedef struct drive_result {
    size_t trials;
    size_t d90;
    int reached;
} drive_result;

/* Ask until DONE, telling metric() for every trial; the seed index is id % seeds (the id
 * layout of search_impl.h). */
static void drive(intdim_search *s, metric_fn metric, const void *ctx)
{
    double seeds_d;
    ck_assert_int_eq(intdim_search_get(s, INTDIM_SEARCH_SEEDS, &seeds_d), INTDIM_OK);
    size_t seeds = (size_t)seeds_d;
    for (int guard = 0; guard < 100000; guard++) {
        int what, kind, said;
        uint64_t id, seed;
        size_t d;
        double lr;
        ck_assert_int_eq(intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed),
                         INTDIM_OK);
        if (what == INTDIM_ASK_DONE)
            return;
        ck_assert_int_eq(what, INTDIM_ASK_TRIAL);
        double m = metric(ctx, d, kind, lr, (size_t)(id % seeds));
        ck_assert_int_eq(intdim_search_tell(s, id, NAN, m, 10, 0.001, INTDIM_OK), INTDIM_OK);
    }
    ck_abort_msg("search did not finish");
}

static intdim_search *make(size_t D, const size_t *ds, size_t n_ds, const double *lrs,
                           size_t n_lrs, size_t seeds, double baseline)
{
    intdim_search *s;
    ck_assert_int_eq(intdim_search_create(&s, D), INTDIM_OK);
    if (ds != NULL)
        ck_assert_int_eq(intdim_search_set_d_list(s, ds, n_ds), INTDIM_OK);
    if (lrs != NULL)
        ck_assert_int_eq(intdim_search_set_lrs(s, lrs, n_lrs), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_SEEDS, (double)seeds), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_BASELINE, baseline), INTDIM_OK);
    return s;
}

/* ---- the rule on hand-chosen values ------------------------------------------------ */

/* A table metric: value[d index][lr index][seed index] for d in {1..4}. */
typedef struct table {
    double v[4][2][3];
} table;

static double table_metric(const void *ctx, size_t d, int kind, double lr, size_t k)
{
    const table *t = ctx;
    (void)kind;
    return t->v[d - 1][lr == 0.01 ? 0 : 1][k];
}

static const size_t DS4[] = {1, 2, 3, 4};
static const double LRS2[] = {0.01, 0.1};

START_TEST(rule_is_strict)
{
    /* baseline 1, fraction 0.9: d = 2 reaches exactly 0.9 (= 0.9 x 1.0 in double) and
     * must fail; d = 3 is the first strictly above. */
    table t = {{{{0.5}, {0.5}}, {{0.9}, {0.9}}, {{0.9000001}, {0.2}}, {{1.0}, {1.0}}}};
    intdim_search *s = make(100, DS4, 4, LRS2, 2, 1, 1.0);
    /* before the first ask there is no plan: no result even with the baseline given, and
     * no id to tell */
    ck_assert_int_eq(intdim_search_result(s, NULL, NULL, NULL, NULL, NULL), INTDIM_ESTATE);
    ck_assert_msg(strstr(intdim_last_error(), "no plan yet") != NULL, "%s", intdim_last_error());
    ck_assert_int_eq(intdim_search_tell(s, 0, NAN, 1.0, 1, 0.0, INTDIM_OK), INTDIM_ENOTFOUND);
    drive(s, table_metric, &t);
    size_t d90, lo, hi;
    int reached;
    double baseline;
    ck_assert_int_eq(intdim_search_result(s, &d90, &reached, &baseline, &lo, &hi), INTDIM_OK);
    ck_assert_int_eq(reached, 1);
    ck_assert_uint_eq(d90, 3);
    ck_assert_uint_eq(lo, 3);
    ck_assert_uint_eq(hi, 3);
    ck_assert_double_eq(baseline, 1.0);
    ck_assert_uint_eq(intdim_search_trials_done(s), 8);
    intdim_search_destroy(s);
}
END_TEST

START_TEST(rule_averages_seeds)
{
    /* 3 seeds. d = 1: one seed at 1.0 but mean 0.8 -> fail (mean, not max).
     * d = 2: mean of {0.95, 0.95, 0.85} = 0.91666 -> pass although one seed is below. */
    table t = {{{{1.0, 0.7, 0.7}, {0.1, 0.1, 0.1}},
                {{0.95, 0.95, 0.85}, {0.1, 0.1, 0.1}},
                {{1, 1, 1}, {1, 1, 1}},
                {{1, 1, 1}, {1, 1, 1}}}};
    intdim_search *s = make(100, DS4, 4, LRS2, 2, 3, 1.0);
    drive(s, table_metric, &t);
    size_t d90;
    int reached;
    ck_assert_int_eq(intdim_search_result(s, &d90, &reached, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_uint_eq(d90, 2);
    size_t d, n;
    double lr, mean, spread;
    int pass;
    ck_assert_uint_eq(intdim_search_n_points(s), 4);
    ck_assert_int_eq(intdim_search_point(s, 0, &d, &lr, &mean, &spread, &n, &pass), INTDIM_OK);
    ck_assert_uint_eq(d, 1);
    ck_assert_double_eq_tol(mean, 0.8, 1e-12);
    ck_assert_double_eq_tol(spread, sqrt(0.06 / 2.0), 1e-12); /* sample sd of {1, .7, .7} */
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(pass, 0);
    ck_assert_int_eq(intdim_search_point(s, 1, &d, &lr, &mean, &spread, &n, &pass), INTDIM_OK);
    ck_assert_double_eq_tol(mean, 2.75 / 3.0, 1e-12);
    ck_assert_int_eq(pass, 1);
    ck_assert_double_eq(lr, 0.01);
    intdim_search_destroy(s);
}
END_TEST

START_TEST(rule_best_lr_and_ties)
{
    /* d = 1: lrs tie at 0.5 -> the first listed lr is reported. d = 2: only lr 0.1 passes,
     * which is enough. d = 3 and 4 also pass: the smallest passing d wins. */
    table t = {{{{0.5}, {0.5}}, {{0.3}, {0.95}}, {{0.95}, {0.95}}, {{0.95}, {0.95}}}};
    intdim_search *s = make(100, DS4, 4, LRS2, 2, 1, 1.0);
    drive(s, table_metric, &t);
    size_t d90;
    ck_assert_int_eq(intdim_search_result(s, &d90, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_uint_eq(d90, 2);
    double lr;
    ck_assert_int_eq(intdim_search_point(s, 0, NULL, &lr, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_double_eq(lr, 0.01);
    ck_assert_int_eq(intdim_search_point(s, 1, NULL, &lr, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_double_eq(lr, 0.1);
    intdim_search_destroy(s);
}
END_TEST

START_TEST(rule_not_reached_is_not_the_last_d)
{
    table t = {{{{0.1}, {0.1}}, {{0.2}, {0.2}}, {{0.5}, {0.3}}, {{0.89}, {0.9}}}};
    intdim_search *s = make(100, DS4, 4, LRS2, 2, 1, 1.0);
    drive(s, table_metric, &t);
    size_t d90 = 99, lo = 99, hi = 99;
    int reached = 99;
    ck_assert_int_eq(intdim_search_result(s, &d90, &reached, NULL, &lo, &hi), INTDIM_OK);
    ck_assert_int_eq(reached, 0);
    ck_assert_uint_eq(d90, 0);
    ck_assert_uint_eq(lo, 0);
    ck_assert_uint_eq(hi, 0);
    intdim_search_destroy(s);
}
END_TEST

/* Seed 1 of lr 0.01 at d = 2 fails (ENONFINITE): its mean is -inf, the point fails. */
START_TEST(rule_failed_trial_counts_minus_infinity)
{
    intdim_search *s = make(100, DS4, 4, LRS2, 1, 2, 1.0);
    ck_assert_int_eq(intdim_search_set_lrs(s, LRS2, 1), INTDIM_OK);
    for (;;) {
        int what, kind, said;
        uint64_t id, seed;
        size_t d;
        double lr;
        ck_assert_int_eq(intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed), 0);
        if (what == INTDIM_ASK_DONE)
            break;
        int fail = d == 2 && id % 2 == 1;
        ck_assert_int_eq(intdim_search_tell(s, id, NAN, fail ? NAN : 1.0, 5, 0.0,
                                            fail ? INTDIM_ENONFINITE : INTDIM_OK), INTDIM_OK);
    }
    double mean;
    int pass;
    ck_assert_int_eq(intdim_search_point(s, 1, NULL, NULL, &mean, NULL, NULL, &pass), 0);
    ck_assert(isinf(mean) && mean < 0);
    ck_assert_int_eq(pass, 0);
    size_t d90;
    ck_assert_int_eq(intdim_search_result(s, &d90, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_uint_eq(d90, 1);
    intdim_search_destroy(s);
}
END_TEST

/* A negative baseline (a loss or a distance as the metric) makes the rule's threshold lie
 * above the baseline: the result is still computed, with a warning saying why it misleads. */
START_TEST(negative_baseline_warns)
{
    table t = {{{{-2.0}, {-2.0}}, {{-1.5}, {-1.5}}, {{-1.0}, {-1.0}}, {{-0.5}, {-0.5}}}};
    intdim_search *s = make(100, DS4, 4, LRS2, 2, 1, -1.0);
    drive(s, table_metric, &t);
    size_t d90;
    int reached;
    /* a known message first (a refused call), so what follows is this call's */
    ck_assert_int_eq(intdim_search_result(NULL, NULL, NULL, NULL, NULL, NULL), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_result(s, &d90, &reached, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_uint_eq(d90, 4); /* -0.5 > 0.9 x -1.0: "better than full training" */
    ck_assert_int_eq(reached, 1);
    ck_assert_msg(strncmp(intdim_last_error(), "warning", 7) == 0 &&
                      strstr(intdim_last_error(), "negative") != NULL,
                  "%s", intdim_last_error());
    intdim_search_destroy(s);
    /* a positive baseline leaves no such warning */
    s = make(100, DS4, 4, LRS2, 2, 1, 1.0);
    table u = {{{{0.5}, {0.5}}, {{0.95}, {0.95}}, {{1.0}, {1.0}}, {{1.0}, {1.0}}}};
    drive(s, table_metric, &u);
    ck_assert_int_eq(intdim_search_result(NULL, NULL, NULL, NULL, NULL, NULL), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_result(s, &d90, &reached, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "search is NULL")); /* no warning */
    intdim_search_destroy(s);
}
END_TEST

static double baseline_metric(const void *ctx, size_t d, int kind, double lr, size_t k)
{
    (void)ctx;
    if (kind == INTDIM_PROJ_IDENTITY) /* best lr 0.1 has mean 0.8 */
        return lr == 0.1 ? (k == 0 ? 0.7 : 0.9) : 0.5;
    return d >= 3 ? 0.75 : 0.72; /* 0.9 x 0.8 = 0.72: d = 1, 2 sit exactly on it */
}

START_TEST(measured_baseline_comes_first)
{
    intdim_search *s = make(50, DS4, 4, LRS2, 2, 2, NAN);
    size_t d90;
    ck_assert_int_eq(intdim_search_result(s, &d90, NULL, NULL, NULL, NULL), INTDIM_ESTATE);
    /* The first lrs x seeds asks are IDENTITY trials at d = D. */
    uint64_t ids[4];
    for (int i = 0; i < 4; i++) {
        int what, kind, said;
        uint64_t seed;
        size_t d;
        double lr;
        ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_PARALLEL, 4), INTDIM_OK);
        ck_assert_int_eq(intdim_search_ask(s, &what, &ids[i], &d, &kind, &said, &lr, &seed), 0);
        ck_assert_int_eq(what, INTDIM_ASK_TRIAL);
        ck_assert_int_eq(kind, INTDIM_PROJ_IDENTITY);
        ck_assert_uint_eq(d, 50);
        ck_assert_int_eq(intdim_search_tell(s, ids[i], NAN,
                                            baseline_metric(NULL, d, kind, lr, ids[i] % 2), 1,
                                            0.0, INTDIM_OK), INTDIM_OK);
    }
    drive(s, baseline_metric, NULL);
    double baseline;
    ck_assert_int_eq(intdim_search_result(s, &d90, NULL, &baseline, NULL, NULL), INTDIM_OK);
    ck_assert_double_eq_tol(baseline, 0.8, 1e-15);
    ck_assert_uint_eq(d90, 3);
    intdim_search_destroy(s);
}
END_TEST

/* Finite metrics near DBL_MAX, whose plain sums overflow, over 5 seeds: baseline 1.7e308
 * (measured), d = 1 mean 1e308 (below 0.9 x baseline), d = 2 {1.6, 1.7, 1.5, 1.6, 1.6}e308
 * (passes), d = 3 {a, -a, -a, -a, -a}: mean -3a/5, deviations 8a/5 (past DBL_MAX) and
 * -2a/5, sample sd a sqrt(4/5), finite. */
static const double HUGE_METRIC = 1.7e308;

static double huge_metric(const void *ctx, size_t d, int kind, double lr, size_t k)
{
    (void)ctx;
    (void)lr;
    if (kind == INTDIM_PROJ_IDENTITY)
        return HUGE_METRIC;
    if (d == 1)
        return 1e308;
    if (d == 2)
        return (double[]){1.6e308, 1.7e308, 1.5e308, 1.6e308, 1.6e308}[k];
    return k == 0 ? HUGE_METRIC : -HUGE_METRIC;
}

START_TEST(metrics_near_dbl_max_do_not_overflow)
{
    intdim_search *s = make(50, DS4, 3, LRS2, 1, 5, NAN);
    drive(s, huge_metric, NULL);
    size_t d90, d, n;
    int reached, pass;
    double baseline, lr, mean, spread;
    ck_assert_int_eq(intdim_search_result(s, &d90, &reached, &baseline, NULL, NULL), INTDIM_OK);
    ck_assert_int_eq(reached, 1);
    ck_assert_uint_eq(d90, 2);
    ck_assert_double_eq(baseline, HUGE_METRIC);
    ck_assert_int_eq(intdim_search_point(s, 0, &d, &lr, &mean, &spread, &n, &pass), INTDIM_OK);
    ck_assert_double_eq(mean, 1e308);
    ck_assert_double_eq(spread, 0.0);
    ck_assert_int_eq(pass, 0);
    ck_assert_int_eq(intdim_search_point(s, 1, &d, &lr, &mean, &spread, &n, &pass), INTDIM_OK);
    ck_assert_double_eq_tol(mean / 1.6e308, 1.0, 1e-14);
    ck_assert_double_eq_tol(spread / (sqrt(0.005) * 1e308), 1.0, 1e-12);
    ck_assert_int_eq(pass, 1);
    ck_assert_int_eq(intdim_search_point(s, 2, &d, &lr, &mean, &spread, &n, &pass), INTDIM_OK);
    ck_assert_double_eq_tol(mean / (-0.6 * HUGE_METRIC), 1.0, 1e-14);
    ck_assert_double_eq_tol(spread / (sqrt(0.8) * HUGE_METRIC), 1.0, 1e-12);
    ck_assert_int_eq(pass, 0);
    intdim_search_destroy(s);
}
END_TEST

/* ---- ask/tell misuse ------------------------------------------------------------- */

START_TEST(ask_tell_misuse_gives_status)
{
    intdim_search *s = make(100, DS4, 4, LRS2, 2, 1, 1.0);
    int what, kind, said;
    uint64_t id, seed;
    size_t d;
    double lr;
    ck_assert_int_eq(intdim_search_tell(s, 0, 0, 1, 1, 0, 0), INTDIM_ENOTFOUND); /* no plan */
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "no plan yet"));
    ck_assert_int_eq(intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, NULL),
                     INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed), INTDIM_OK);
    ck_assert_int_eq(what, INTDIM_ASK_TRIAL);
    ck_assert_int_eq(intdim_search_tell(s, 123456, 0, 1, 1, 0, 0), INTDIM_ENOTFOUND);
    ck_assert_int_eq(intdim_search_tell(s, id + 1, 0, 1, 1, 0, 0), INTDIM_ESTATE); /* not asked */
    ck_assert_int_eq(intdim_search_tell(s, id, 0, NAN, 1, 0, INTDIM_OK), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_tell(s, id, 0, 1, 1, -1.0, INTDIM_OK), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_tell(s, id, 0, 1, 1, 0, 5), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_tell(s, id, 0, 0.5, 1, 0, INTDIM_OK), INTDIM_OK);
    ck_assert_int_eq(intdim_search_tell(s, id, 0, 0.5, 1, 0, INTDIM_OK), INTDIM_ESTATE); /* twice */
    ck_assert_uint_eq(intdim_search_trials_done(s), 1);
    /* The plan is frozen after the first ask; runtime parameters may still change. */
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_SEEDS, 3), INTDIM_ESTATE);
    ck_assert_int_eq(intdim_search_set_lrs(s, LRS2, 1), INTDIM_ESTATE);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_PARALLEL, 2), INTDIM_OK);
    ck_assert_int_eq(intdim_search_point(s, 7, NULL, NULL, NULL, NULL, NULL, NULL),
                     INTDIM_ENOTFOUND);
    intdim_search_destroy(s);
}
END_TEST

START_TEST(configuration_is_checked)
{
    intdim_search *s = (intdim_search *)&s; /* any non-NULL value: create must reset it */
    ck_assert_int_eq(intdim_search_create(NULL, 10), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_create(&s, 0), INTDIM_EINVAL);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(intdim_search_create(&s, 5000), INTDIM_OK);
    double v;
    ck_assert_int_eq(intdim_search_get(s, INTDIM_SEARCH_D_MAX, &v), INTDIM_OK);
    ck_assert_double_eq(v, 5000); /* default min(10000, D) */
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_SEEDS, 0), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_SEEDS, 1.5), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_FRACTION, NAN), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_KIND, INTDIM_PROJ_IDENTITY), INTDIM_EINVAL);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "INTDIM_SEARCH_KIND = 0 is outside"));
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "baseline"));
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_FASTFOOD_BLOCK, 3), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_FASTFOOD_BLOCK, 1), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_FASTFOOD_BLOCK, 8589934592.0),
                     INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_FASTFOOD_BLOCK, 1024), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_FASTFOOD_BLOCK, 0), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, 99, 1), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_set(NULL, INTDIM_SEARCH_SEEDS, 1), INTDIM_EINVAL);
    double lo, hi;
    ck_assert_int_eq(intdim_search_param_bounds(INTDIM_SEARCH_SEEDS, &lo, &hi), INTDIM_OK);
    ck_assert(lo == 1 && hi >= 100);
    ck_assert_int_eq(intdim_search_param_bounds(-1, &lo, &hi), INTDIM_EINVAL);
    size_t bad[] = {3, 6000};
    ck_assert_int_eq(intdim_search_set_d_list(s, bad, 2), INTDIM_EINVAL);
    double bad_lrs[] = {0.1, -1};
    ck_assert_int_eq(intdim_search_set_lrs(s, bad_lrs, 2), INTDIM_EINVAL);
    double dup_lrs[] = {0.1, 0.1};
    ck_assert_int_eq(intdim_search_set_lrs(s, dup_lrs, 2), INTDIM_EINVAL);
    /* above the trainer's LR range: every trial would fail at its first step */
    double huge_lrs[] = {0.1, 1e10};
    ck_assert_int_eq(intdim_search_set_lrs(s, huge_lrs, 2), INTDIM_EINVAL);
    ck_assert_msg(strstr(intdim_last_error(), "intdim_search_set_lrs") != NULL &&
                      strstr(intdim_last_error(), "INTDIM_TRAIN_LR") != NULL,
                  "%s", intdim_last_error());
    size_t groups[] = {1000, 1000};
    ck_assert_int_eq(intdim_search_set_groups(s, groups, 2), INTDIM_EINVAL); /* sums to 2000 */
    ck_assert_int_eq(intdim_search_set_train_param(s, INTDIM_TRAIN_LR, 1), INTDIM_EINVAL);
    /* Trainer settings out of the trainer's own ranges are refused here, not at the first
     * trial (or after a journal has recorded them), with the parameter named. */
    ck_assert_int_eq(intdim_search_set_train_param(s, INTDIM_TRAIN_EPS, 0), INTDIM_EINVAL);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "INTDIM_TRAIN_EPS"));
    ck_assert_int_eq(intdim_search_set_train_param(s, INTDIM_TRAIN_OPTIMIZER, 7), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_set_train_param(s, INTDIM_TRAIN_WARMUP_STEPS, 2.5),
                     INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_set_train_param(s, INTDIM_TRAIN_BETA1, NAN), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_set_train_param(s, INTDIM_TRAIN_EPS, 1e-6), INTDIM_OK);
    /* SAID without groups is refused when the plan is made. */
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_SAID, 1), INTDIM_OK);
    int what, kind, said;
    uint64_t id, seed;
    size_t d;
    ck_assert_int_eq(intdim_search_ask(s, &what, &id, &d, &kind, &said, &v, &seed),
                     INTDIM_EINVAL);
    intdim_search_destroy(s);
    /* The log grid: sorted, deduplicated, from d_min to d_max. */
    ck_assert_int_eq(intdim_search_create(&s, 1000), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_D_MIN, 1), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_D_MAX, 1000), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_N_D, 100), INTDIM_OK);
    ck_assert_int_eq(intdim__search_freeze(s), INTDIM_OK);
    ck_assert_uint_eq(s->grid[0], 1);
    ck_assert_uint_eq(s->grid[s->n_grid - 1], 1000);
    ck_assert(s->n_grid < 100 && s->n_grid > 50);
    for (size_t i = 1; i < s->n_grid; i++)
        ck_assert(s->grid[i] > s->grid[i - 1]);
    intdim_search_destroy(s);
}
END_TEST

/* SAID scales one parameter per group on top of d - n_groups projected ones: the plan
 * refuses a grid whose smallest d leaves no projected coordinate, and a refused plan can
 * still be corrected on the same handle. */
START_TEST(said_needs_every_d_above_the_groups)
{
    intdim_search *s;
    ck_assert_int_eq(intdim_search_create(&s, 100), INTDIM_OK);
    const size_t groups[] = {40, 60}, ds[] = {2, 10}, ok[] = {3, 10};
    ck_assert_int_eq(intdim_search_set_groups(s, groups, 2), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set_d_list(s, ds, 2), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_SAID, 1), INTDIM_OK);
    int what, kind, said;
    uint64_t id, seed;
    size_t d;
    double lr;
    ck_assert_int_eq(intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed),
                     INTDIM_EINVAL);
    ck_assert_msg(strstr(intdim_last_error(), "SAID needs every d > n_groups = 2, but the grid "
                                              "starts at d = 2") != NULL,
                  "%s", intdim_last_error());
    ck_assert_int_eq(s->frozen, 0);
    ck_assert_int_eq(intdim_search_set_d_list(s, ok, 2), INTDIM_OK); /* d = 3 > 2 groups */
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_BASELINE, 1.0), INTDIM_OK);
    ck_assert_int_eq(intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed), INTDIM_OK);
    ck_assert_int_eq(what, INTDIM_ASK_TRIAL);
    ck_assert_uint_eq(d, 3);
    ck_assert_int_eq(said, 1);
    intdim_search_destroy(s);
}
END_TEST

/* A log grid whose D_MIN lies above D_MAX, or whose D_MAX exceeds D, is refused when the
 * plan is made (each value alone is within its range when set). */
START_TEST(empty_or_oversized_log_grid_is_refused)
{
    intdim_search *s;
    ck_assert_int_eq(intdim_search_create(&s, 100), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_D_MIN, 50), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_D_MAX, 20), INTDIM_OK);
    int what, kind, said;
    uint64_t id, seed;
    size_t d;
    double lr;
    ck_assert_int_eq(intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed),
                     INTDIM_EINVAL);
    ck_assert_msg(strstr(intdim_last_error(), "d grid [50, 20] is empty or exceeds D = 100") !=
                      NULL, "%s", intdim_last_error());
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_D_MIN, 10), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_D_MAX, 200), INTDIM_OK);
    ck_assert_int_eq(intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed),
                     INTDIM_EINVAL);
    ck_assert_msg(strstr(intdim_last_error(), "d grid [10, 200] is empty or exceeds D = 100") !=
                      NULL, "%s", intdim_last_error());
    ck_assert_int_eq(s->frozen, 0);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_D_MAX, 100), INTDIM_OK);
    ck_assert_int_eq(intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed), INTDIM_OK);
    ck_assert_uint_eq(s->grid[0], 10);
    ck_assert_uint_eq(s->grid[s->n_grid - 1], 100);
    intdim_search_destroy(s);
}
END_TEST

/* Once the plan is frozen (first ask), the d list, groups and trainer settings are refused
 * like the other plan parameters, and the plan stays as it was. */
START_TEST(frozen_plan_refuses_list_groups_and_train_params)
{
    intdim_search *s = make(100, DS4, 4, LRS2, 2, 1, 1.0);
    int what, kind, said;
    uint64_t id, seed;
    size_t d;
    double lr;
    ck_assert_int_eq(intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed), INTDIM_OK);
    const size_t ds[] = {5, 50}, groups[] = {50, 50};
    ck_assert_int_eq(intdim_search_set_d_list(s, ds, 2), INTDIM_ESTATE);
    ck_assert_msg(strstr(intdim_last_error(), "intdim_search_set_d_list: the plan is frozen") !=
                      NULL, "%s", intdim_last_error());
    ck_assert_int_eq(intdim_search_set_groups(s, groups, 2), INTDIM_ESTATE);
    ck_assert_msg(strstr(intdim_last_error(), "intdim_search_set_groups: the plan is frozen") !=
                      NULL, "%s", intdim_last_error());
    ck_assert_int_eq(intdim_search_set_train_param(s, INTDIM_TRAIN_CLIP_NORM, 1.0),
                     INTDIM_ESTATE);
    ck_assert_msg(strstr(intdim_last_error(), "intdim_search_set_train_param: the plan is "
                                              "frozen") != NULL, "%s", intdim_last_error());
    ck_assert_uint_eq(s->n_d_list, 4);
    ck_assert_uint_eq(s->d_list[0], 1);
    ck_assert_uint_eq(s->n_groups, 0);
    ck_assert_int_eq(s->train_set[INTDIM_TRAIN_CLIP_NORM], 0);
    intdim_search_destroy(s);
}
END_TEST

/* An explicit d list longer than a journal header may carry (10^7 values) is refused when
 * set: a journaled search with it could never be read back. */
START_TEST(d_list_longer_than_a_journal_can_hold_is_refused)
{
    intdim_search *s;
    ck_assert_int_eq(intdim_search_create(&s, (size_t)1 << 30), INTDIM_OK);
    size_t n = 10000001;
    size_t *ds = malloc(n * sizeof *ds);
    ck_assert_ptr_nonnull(ds);
    for (size_t i = 0; i < n; i++)
        ds[i] = i + 1;
    ck_assert_int_eq(intdim_search_set_d_list(s, ds, n), INTDIM_EINVAL);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "10000001 values (max 10000000)"));
    ck_assert_int_eq(intdim_search_set_d_list(s, ds, n - 1), INTDIM_OK);
    free(ds);
    intdim_search_destroy(s);
}
END_TEST

/* Group sizes: no more groups than D, none empty, summing to D. */
START_TEST(group_sizes_are_checked)
{
    intdim_search *s;
    ck_assert_int_eq(intdim_search_create(&s, 4), INTDIM_OK);
    const size_t ones[] = {1, 1, 1, 1, 1};
    ck_assert_int_eq(intdim_search_set_groups(s, ones, 5), INTDIM_EINVAL);
    ck_assert_msg(strstr(intdim_last_error(), "5 groups for D = 4") != NULL, "%s",
                  intdim_last_error());
    const size_t empty_first[] = {0, 4}, empty_middle[] = {2, 0, 2};
    ck_assert_int_eq(intdim_search_set_groups(s, empty_first, 2), INTDIM_EINVAL);
    ck_assert_msg(strstr(intdim_last_error(), "group 0 has size 0") != NULL, "%s",
                  intdim_last_error());
    ck_assert_int_eq(intdim_search_set_groups(s, empty_middle, 3), INTDIM_EINVAL);
    ck_assert_msg(strstr(intdim_last_error(), "group 1 has size 0") != NULL, "%s",
                  intdim_last_error());
    ck_assert_uint_eq(s->n_groups, 0); /* nothing was kept */
    const size_t fine[] = {1, 3};
    ck_assert_int_eq(intdim_search_set_groups(s, fine, 2), INTDIM_OK);
    ck_assert_uint_eq(s->n_groups, 2);
    ck_assert_int_eq(intdim_search_set_groups(s, ones, 4), INTDIM_OK); /* D groups of 1 */
    ck_assert_uint_eq(s->n_groups, 4);
    intdim_search_destroy(s);
}
END_TEST

/* Grid with PARALLEL = 3 hands out 3 trials then waits; telling in reverse order gives the
 * same result as in order. */
START_TEST(parallel_asks_and_out_of_order_tells)
{
    table t = {{{{0.5}, {0.6}}, {{0.7}, {0.95}}, {{0.95}, {0.95}}, {{0.99}, {0.95}}}};
    intdim_search *s = make(100, DS4, 4, LRS2, 2, 1, 1.0);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_PARALLEL, 3), INTDIM_OK);
    for (;;) {
        uint64_t ids[3];
        size_t n = 0;
        int what = INTDIM_ASK_TRIAL;
        size_t ds[3];
        double lrs[3];
        while (n < 3) {
            int kind, said;
            uint64_t seed;
            ck_assert_int_eq(intdim_search_ask(s, &what, &ids[n], &ds[n], &kind, &said, &lrs[n],
                                               &seed), 0);
            if (what != INTDIM_ASK_TRIAL)
                break;
            n++;
        }
        if (n == 3) {
            int kind, said;
            uint64_t seed, extra;
            size_t d;
            double lr;
            ck_assert_int_eq(intdim_search_ask(s, &what, &extra, &d, &kind, &said, &lr, &seed), 0);
            ck_assert_int_eq(what, INTDIM_ASK_WAIT);
        }
        if (n == 0) {
            ck_assert_int_eq(what, INTDIM_ASK_DONE);
            break;
        }
        for (size_t i = n; i-- > 0;)
            ck_assert_int_eq(intdim_search_tell(s, ids[i], NAN,
                                                table_metric(&t, ds[i], 3, lrs[i], 0), 1, 0, 0),
                             INTDIM_OK);
    }
    size_t d90;
    ck_assert_int_eq(intdim_search_result(s, &d90, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_uint_eq(d90, 2);
    intdim_search_destroy(s);
}
END_TEST

/* ---- bootstrap ---------------------------------------------------------------------- */

/* Seeds scatter around a rising curve: the bootstrap interval brackets d90, is the same on
 * every call, and collapses to d90 with one seed. */
static double scattered(const void *ctx, size_t d, int kind, double lr, size_t k)
{
    (void)ctx;
    (void)kind;
    (void)lr;
    static const double offsets[5] = {-0.15, 0.1, 0.05, -0.05, 0.12};
    double curve = 1.0 - 1.0 / (double)d;
    return curve + offsets[k];
}

START_TEST(bootstrap_brackets_d90)
{
    size_t ds[12];
    for (size_t i = 0; i < 12; i++)
        ds[i] = i + 1;
    double lr = 0.01;
    intdim_search *s = make(100, ds, 12, &lr, 1, 5, 1.0);
    drive(s, scattered, NULL);
    size_t d90, lo, hi, lo2, hi2;
    ck_assert_int_eq(intdim_search_result(s, &d90, NULL, NULL, &lo, &hi), INTDIM_OK);
    /* mean offset 0.014: 1 - 1/d + 0.014 > 0.9 first at d = 9 */
    ck_assert_uint_eq(d90, 9);
    ck_assert(lo <= d90 && d90 <= hi);
    ck_assert(lo < hi); /* 5 scattered seeds: the resamples disagree */
    ck_assert_int_eq(intdim_search_result(s, NULL, NULL, NULL, &lo2, &hi2), INTDIM_OK);
    ck_assert_uint_eq(lo, lo2);
    ck_assert_uint_eq(hi, hi2);
    intdim_search_destroy(s);
}
END_TEST

/* ---- adaptive vs grid on synthetic curves ------------------------------------------ */

typedef struct curve {
    double log_d0;   /* where the curve crosses 0.5 */
    double noise;    /* per-seed additive noise */
    int seed_only;   /* noise depends on the seed index only (exactly monotone means) */
} curve;

static double hash_noise(uint64_t key)
{
    return intdim__rng_uniform(12345, 99, key) - 0.5;
}

/* A rising sigmoid in log d, scaled by how good the lr is (lr 0.01 best, 0.1 worst). */
static double synthetic(const void *ctx, size_t d, int kind, double lr, size_t k)
{
    const curve *c = ctx;
    if (kind == INTDIM_PROJ_IDENTITY)
        return 0.98 + 0.01 * (lr == 0.01);
    double quality = lr == 0.01 ? 1.0 : lr == 0.001 ? 0.97 : 0.8;
    double x = 2.5 * (log((double)d) - c->log_d0);
    double m = quality / (1.0 + exp(-x));
    double noise = c->seed_only ? hash_noise(k) : hash_noise(((uint64_t)d << 8) | k);
    return m + c->noise * noise;
}

static drive_result run_synthetic(int strategy, const curve *c, size_t seeds)
{
    intdim_search *s;
    ck_assert_int_eq(intdim_search_create(&s, 100000), INTDIM_OK);
    double lrs[] = {0.1, 0.001, 0.01};
    ck_assert_int_eq(intdim_search_set_lrs(s, lrs, 3), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_D_MIN, 10), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_D_MAX, 10000), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_N_D, 50), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_SEEDS, (double)seeds), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_STRATEGY, strategy), INTDIM_OK);
    drive(s, synthetic, c);
    ck_assert_int_eq(intdim_search_complete(s), 1); /* grid: all trials; adaptive: bracket */
    drive_result r;
    r.trials = intdim_search_trials_done(s);
    ck_assert_int_eq(intdim_search_result(s, &r.d90, &r.reached, NULL, NULL, NULL), INTDIM_OK);
    intdim_search_destroy(s);
    return r;
}

START_TEST(adaptive_agrees_with_grid_on_synthetic_curves)
{
    size_t checked = 0, not_reached = 0;
    for (int seed_only = 0; seed_only <= 1; seed_only++)
        for (double log_d0 = 0.0; log_d0 <= 11.0; log_d0 += 0.37) {
            curve c = {log_d0, seed_only ? 0.05 : 0.004, seed_only};
            for (size_t seeds = 1; seeds <= 3; seeds += 2) {
                drive_result g = run_synthetic(INTDIM_STRATEGY_GRID, &c, seeds);
                drive_result a = run_synthetic(INTDIM_STRATEGY_ADAPTIVE, &c, seeds);
                ck_assert_msg(a.reached == g.reached && a.d90 == g.d90,
                              "log_d0 %g seeds %zu: adaptive d90 %zu (%d) grid %zu (%d)", log_d0,
                              seeds, a.d90, a.reached, g.d90, g.reached);
                ck_assert_msg(4 * a.trials <= g.trials, "adaptive used %zu of %zu trials",
                              a.trials, g.trials);
                not_reached += !g.reached;
                checked++;
            }
        }
    ck_assert(checked > 50);
    ck_assert(not_reached > 0 && not_reached < checked); /* both outcomes were exercised */
}
END_TEST

/* The same point and seed index give the same trial seed in both strategies. */
START_TEST(strategies_share_trial_seeds)
{
    uint64_t grid_seed[64] = {0}, adaptive_seed[64] = {0};
    for (int strategy = 0; strategy <= 1; strategy++) {
        intdim_search *s;
        ck_assert_int_eq(intdim_search_create(&s, 1000), INTDIM_OK);
        ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_STRATEGY, strategy), 0);
        ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_BASELINE, 1.0), 0);
        ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_N_D, 30), 0);
        for (;;) {
            int what, kind, said;
            uint64_t id, seed;
            size_t d;
            double lr;
            ck_assert_int_eq(intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed), 0);
            if (what == INTDIM_ASK_DONE)
                break;
            ck_assert_uint_lt(id, 64);
            (strategy ? adaptive_seed : grid_seed)[id] = seed;
            intdim_search_tell(s, id, NAN, d >= 100 ? 1.0 : 0.0, 1, 0, 0);
        }
        intdim_search_destroy(s);
    }
    size_t shared = 0;
    for (int i = 0; i < 64; i++)
        if (adaptive_seed[i] != 0) {
            ck_assert_uint_eq(adaptive_seed[i], grid_seed[i]);
            shared++;
        }
    ck_assert_uint_gt(shared, 2);
}
END_TEST

/* ---- the real toy problem ------------------------------------------------------------ */

/* The toy host every toy search here uses: problem seed 7, theta0 seed 3, theta = theta0. */
typedef struct toy_rig {
    toy_problem tp;
    float theta0[TOY_D], theta[TOY_D];
} toy_rig;

static void toy_rig_init(toy_rig *r)
{
    toy_init(&r->tp, 7);
    toy_theta0(3, r->theta0);
    memcpy(r->theta, r->theta0, sizeof r->theta);
}

/* A toy search over the d list with the given lrs and steps per trial. */
static intdim_search *toy_list_search(const size_t *ds, size_t n_ds, const double *lrs,
                                      size_t n_lrs, double steps)
{
    intdim_search *s;
    ck_assert_int_eq(intdim_search_create(&s, TOY_D), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set_d_list(s, ds, n_ds), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set_lrs(s, lrs, n_lrs), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_STEPS, steps), INTDIM_OK);
    return s;
}

/* The small toy search many tests share: d in {6, 12}, lr 0.3, one seed (3 trials with the
 * baseline), `steps` steps per trial. */
static intdim_search *two_point_toy_search(double steps)
{
    static const size_t ds[] = {6, 12};
    static const double lrs[] = {0.3};
    return toy_list_search(ds, 2, lrs, 1, steps);
}

/* A d90 search on Li et al.'s toy problem; block > 0: stacked Fastfood blocks. */
static drive_result run_toy(int strategy, size_t block, size_t *n_grid_trials)
{
    toy_rig rig;
    toy_rig_init(&rig);
    intdim_search *s;
    ck_assert_int_eq(intdim_search_create(&s, TOY_D), INTDIM_OK);
    double lrs[] = {1.0, 0.3, 0.1};
    ck_assert_int_eq(intdim_search_set_lrs(s, lrs, 3), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_D_MIN, 2), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_D_MAX, 1000), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_N_D, 40), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_STEPS, 1000), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_STRATEGY, strategy), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_FASTFOOD_BLOCK, (double)block),
                     INTDIM_OK);
    ck_assert_int_eq(intdim_search_set_train_param(s, INTDIM_TRAIN_SCHEDULE,
                                                   INTDIM_SCHED_COSINE), INTDIM_OK);
    int rc = intdim_search_run(s, rig.theta, rig.theta0, toy_grad, NULL, toy_eval, &rig.tp, NULL,
                               NULL);
    ck_assert_msg(rc == INTDIM_OK, "run: %s", intdim_last_error());
    drive_result r;
    r.trials = intdim_search_trials_done(s);
    ck_assert_int_eq(intdim_search_result(s, &r.d90, &r.reached, NULL, NULL, NULL), INTDIM_OK);
    *n_grid_trials = s->n_trials;
    intdim_search_destroy(s);
    return r;
}

/* A small toy search run with theta0 a separate buffer (same_buffer 0), NULL (1) or theta
 * itself (2): the eval metric of every trial. */
static void small_toy_run(int same_buffer, double *eval, size_t *n)
{
    toy_rig rig;
    toy_rig_init(&rig);
    intdim_search *s = two_point_toy_search(300);
    const float *base = same_buffer == 0 ? rig.theta0 : same_buffer == 1 ? NULL : rig.theta;
    int rc = intdim_search_run(s, rig.theta, base, toy_grad, NULL, toy_eval, &rig.tp, NULL, NULL);
    ck_assert_msg(rc == INTDIM_OK, "run (theta0 case %d): %s", same_buffer, intdim_last_error());
    *n = s->n_trials;
    for (size_t i = 0; i < s->n_trials; i++)
        eval[i] = s->trials[i].eval_metric;
    intdim_search_destroy(s);
}

/* The toy host, reporting a NaN loss once training has blown theta up (as a host whose
 * model overflowed would). */
static int diverging_toy_grad(void *user, uint64_t step, const float *theta, float *grad,
                              double *loss)
{
    int rc = toy_grad(user, step, theta, grad, loss);
    for (size_t i = 0; i < TOY_D; i++)
        if (fabsf(theta[i]) > 1e3f)
            *loss = NAN;
    return rc;
}

/* Trials that diverge inside intdim_search_run (lr 1e6 blows theta up on the first step)
 * are results, not errors: the run goes on, each such trial is told ENONFINITE with metric
 * -inf (journaled so), and d90 is what the same search finds without that learning rate. */
START_TEST(diverging_trials_are_results)
{
    static const size_t ds[] = {6, 12, 24};
    size_t d90_want = 0;
    for (int with_bad_lr = 0; with_bad_lr <= 1; with_bad_lr++) {
        toy_rig rig;
        toy_rig_init(&rig);
        static const double lrs[] = {0.3, 1e6};
        intdim_search *s = toy_list_search(ds, 3, lrs, with_bad_lr ? 2 : 1, 300);
        char path[] = "/tmp/intdim_diverge_XXXXXX";
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        close(fd);
        unlink(path); /* a new journal */
        ck_assert_int_eq(intdim_search_open_journal(s, path), INTDIM_OK);
        intdim_clear_error();
        int rc = intdim_search_run(s, rig.theta, rig.theta0, diverging_toy_grad, NULL, toy_eval,
                                   &rig.tp, NULL, NULL);
        ck_assert_msg(rc == INTDIM_OK, "run: %s", intdim_last_error());
        /* a successful call leaves no error message: a diverged trial leaves a warning */
        if (with_bad_lr)
            ck_assert_msg(strncmp(intdim_last_error(), "warning: trial d = ", 19) == 0 &&
                              strstr(intdim_last_error(), "diverged") != NULL,
                          "%s", intdim_last_error());
        else
            ck_assert_str_eq(intdim_last_error(), "");
        ck_assert_int_eq(intdim_search_complete(s), 1);
        size_t d90;
        int reached;
        ck_assert_int_eq(intdim_search_result(s, &d90, &reached, NULL, NULL, NULL), INTDIM_OK);
        ck_assert_int_eq(reached, 1);
        if (!with_bad_lr) {
            d90_want = d90;
        } else {
            ck_assert_uint_eq(d90, d90_want);
            size_t diverged = 0;
            intdim_search *r;
            ck_assert_int_eq(intdim_search_from_journal(&r, path), INTDIM_OK);
            for (size_t i = 0; i < s->n_trials; i++) {
                const search_trial *t = &s->trials[i];
                if (t->lr != 1e6)
                    continue;
                ck_assert_int_eq(t->status, INTDIM_ENONFINITE);
                ck_assert(t->eval_metric == -INFINITY);
                ck_assert_int_eq(r->trials[i].status, INTDIM_ENONFINITE); /* journaled */
                diverged++;
            }
            ck_assert_uint_eq(diverged, 4); /* the baseline and three d */
            intdim_search_destroy(r);
        }
        unlink(path);
        intdim_search_destroy(s);
    }
}
END_TEST

/* The toy host whose every loss is NaN: every trial, the baseline's too, diverges. */
static int nan_toy_grad(void *user, uint64_t step, const float *theta, float *grad,
                        double *loss)
{
    int rc = toy_grad(user, step, theta, grad, loss);
    *loss = NAN;
    return rc;
}

/* When every baseline trial diverges, the run still finishes (failed trials are results),
 * but there is no baseline to measure d90 against: result says so. The adaptive strategy
 * stops after the baseline. */
START_TEST(every_baseline_trial_failed)
{
    static const size_t ds[] = {6, 12};
    static const double lrs[] = {0.3, 0.1};
    for (int strategy = INTDIM_STRATEGY_GRID; strategy <= INTDIM_STRATEGY_ADAPTIVE; strategy++) {
        toy_rig rig;
        toy_rig_init(&rig);
        intdim_search *s = toy_list_search(ds, 2, lrs, 2, 5);
        ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_STRATEGY, strategy), INTDIM_OK);
        int rc = intdim_search_run(s, rig.theta, rig.theta0, nan_toy_grad, NULL, toy_eval,
                                   &rig.tp, NULL, NULL);
        ck_assert_msg(rc == INTDIM_OK, "run: %s", intdim_last_error());
        ck_assert_int_eq(intdim_search_complete(s), 1);
        ck_assert_uint_eq(intdim_search_trials_done(s),
                          strategy == INTDIM_STRATEGY_GRID ? 6 : 2);
        for (size_t i = 0; i < 2; i++) { /* the baseline trials */
            ck_assert_int_eq(s->trials[i].kind, INTDIM_PROJ_IDENTITY);
            ck_assert_int_eq(s->trials[i].status, INTDIM_ENONFINITE);
        }
        size_t d90 = 99;
        double baseline = 0;
        ck_assert_int_eq(intdim_search_result(s, &d90, NULL, &baseline, NULL, NULL),
                         INTDIM_ESTATE);
        ck_assert_msg(strstr(intdim_last_error(), "every baseline trial failed (baseline -inf)") !=
                          NULL, "%s", intdim_last_error());
        ck_assert(baseline == -INFINITY);
        ck_assert_uint_eq(d90, 99); /* not written */
        intdim_search_destroy(s);
    }
}
END_TEST

/* intdim_search_run runs the trials it asks itself: one asked before (and not told) is
 * refused with a clear message; once that trial is told, the run completes the search. */
START_TEST(run_refuses_trials_asked_outside_it)
{
    toy_rig rig;
    toy_rig_init(&rig);
    intdim_search *s = two_point_toy_search(50);
    int what, kind, said;
    uint64_t id, seed;
    size_t d;
    double lr;
    ck_assert_int_eq(intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed), INTDIM_OK);
    ck_assert_int_eq(what, INTDIM_ASK_TRIAL);
    ck_assert_int_eq(intdim_search_run(s, rig.theta, rig.theta0, toy_grad, NULL, toy_eval,
                                       &rig.tp, NULL, NULL),
                     INTDIM_ESTATE);
    ck_assert_msg(strstr(intdim_last_error(), "intdim_search_run: 1 trials asked outside the run "
                                              "are still outstanding") != NULL,
                  "%s", intdim_last_error());
    ck_assert_uint_eq(intdim_search_trials_done(s), 0);
    double train, eval, seconds;
    uint64_t steps;
    int status;
    ck_assert_int_eq(intdim_search_run_trial(s, rig.theta, rig.theta0, toy_grad, NULL, toy_eval,
                                             &rig.tp, d, kind, said, lr, seed, &train, &eval,
                                             &steps, &seconds, &status),
                     INTDIM_OK);
    ck_assert_int_eq(intdim_search_tell(s, id, train, eval, steps, seconds, status), INTDIM_OK);
    int rc = intdim_search_run(s, rig.theta, rig.theta0, toy_grad, NULL, toy_eval, &rig.tp, NULL,
                               NULL);
    ck_assert_msg(rc == INTDIM_OK, "run: %s", intdim_last_error());
    ck_assert_uint_eq(intdim_search_trials_done(s), 3);
    ck_assert_int_eq(intdim_search_complete(s), 1);
    intdim_search_destroy(s);
}
END_TEST

typedef struct progress_log {
    size_t calls, done, total;
} progress_log;

static int stop_at_once(void *user, size_t done, size_t total, size_t d, double lr,
                        double eval_metric, double seconds_left)
{
    (void)d;
    (void)lr;
    (void)eval_metric;
    (void)seconds_left;
    progress_log *log = user;
    log->calls++;
    log->done = done;
    log->total = total;
    return 1;
}

/* A progress callback that returns non-zero stops the run after the trial it reports:
 * INTDIM_EINTERRUPTED, that trial told (nothing outstanding), and a later run goes on. */
START_TEST(progress_callback_stops_the_run)
{
    toy_rig rig;
    toy_rig_init(&rig);
    intdim_search *s = two_point_toy_search(50);
    progress_log log = {0, 0, 0};
    ck_assert_int_eq(intdim_search_run(s, rig.theta, rig.theta0, toy_grad, NULL, toy_eval,
                                       &rig.tp, stop_at_once, &log),
                     INTDIM_EINTERRUPTED);
    ck_assert_msg(strstr(intdim_last_error(), "stopped by the progress callback after 1 trials") !=
                      NULL, "%s", intdim_last_error());
    ck_assert_uint_eq(log.calls, 1);
    ck_assert_uint_eq(log.done, 1);
    ck_assert_uint_eq(log.total, 3);
    ck_assert_uint_eq(intdim_search_trials_done(s), 1);
    ck_assert_uint_eq(s->n_out, 0);
    ck_assert_int_eq(intdim_search_complete(s), 0);
    int rc = intdim_search_run(s, rig.theta, rig.theta0, toy_grad, NULL, toy_eval, &rig.tp, NULL,
                               NULL);
    ck_assert_msg(rc == INTDIM_OK, "run: %s", intdim_last_error());
    ck_assert_uint_eq(intdim_search_trials_done(s), 3);
    ck_assert_int_eq(intdim_search_complete(s), 1);
    intdim_search_destroy(s);
}
END_TEST

/* The progress callback of a run calling back into its search: calls that change the search
 * are refused (INTDIM_ESTATE), and destroying it stops the run, which frees it on its way
 * out (no use after free under ASan, no leak by the counts). */
typedef struct reentry {
    intdim_search *s;
    toy_rig *rig;
    int statuses[5];
    int destroy;
    size_t calls;
} reentry;

static int reentering_progress(void *user, size_t done, size_t total, size_t d, double lr,
                               double eval_metric, double seconds_left)
{
    (void)done, (void)total, (void)d, (void)lr, (void)eval_metric, (void)seconds_left;
    reentry *r = user;
    if (r->calls++ == 0) {
        int what, kind, said;
        uint64_t id, seed;
        size_t dd;
        double l;
        r->statuses[0] = intdim_search_set(r->s, INTDIM_SEARCH_PARALLEL, 2);
        r->statuses[1] = intdim_search_ask(r->s, &what, &id, &dd, &kind, &said, &l, &seed);
        r->statuses[2] = intdim_search_tell(r->s, 0, 1.0, 1.0, 1, 0.0, INTDIM_OK);
        r->statuses[3] = intdim_search_run(r->s, r->rig->theta, r->rig->theta0, toy_grad, NULL,
                                           toy_eval, &r->rig->tp, NULL, NULL);
        r->statuses[4] = intdim_search_open_journal(r->s, "/tmp/intdim-never-written.journal");
        if (r->destroy)
            intdim_search_destroy(r->s);
    }
    return 0;
}

/* A gradient callback that destroys its search mid-trial: the host is not called again (a
 * host freeing its own state with the search would be called into freed state), the run
 * stops with INTDIM_EINTERRUPTED and frees the search (no leak by the counts). */
typedef struct destroying_host {
    toy_problem *tp;
    intdim_search *s;
    size_t calls, calls_at_destroy;
} destroying_host;

static int destroying_grad(void *user, uint64_t step, const float *theta, float *grad,
                           double *loss)
{
    destroying_host *h = user;
    h->calls++;
    if (h->calls == 5) {
        intdim_search_destroy(h->s);
        h->calls_at_destroy = h->calls;
    }
    return toy_grad(h->tp, step, theta, grad, loss);
}

static int destroying_eval(void *user, const float *theta, double *metric)
{
    destroying_host *h = user;
    h->calls++;
    return toy_eval(h->tp, theta, metric);
}

START_TEST(search_destroyed_by_a_trial_callback)
{
    toy_rig rig;
    toy_rig_init(&rig);
    fail_alloc_install(0);
    intdim_search *s = two_point_toy_search(200);
    destroying_host h = {.tp = &rig.tp, .s = s};
    int rc = intdim_search_run(s, rig.theta, rig.theta0, destroying_grad, NULL, destroying_eval,
                               &h, NULL, NULL);
    ck_assert_int_eq(rc, INTDIM_EINTERRUPTED);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "destroyed"));
    ck_assert_uint_eq(h.calls_at_destroy, 5);
    ck_assert_uint_eq(h.calls, 5); /* not one call after the destroy */
    fail_alloc_remove();
    ck_assert_int_eq(g_fail.allocs, g_fail.frees);
}
END_TEST

START_TEST(progress_callback_reentering_its_search)
{
    for (int destroy = 0; destroy < 2; destroy++) {
        toy_rig rig;
        toy_rig_init(&rig);
        if (destroy)
            fail_alloc_install(0);
        intdim_search *s = two_point_toy_search(50);
        reentry r = {.s = s, .rig = &rig, .destroy = destroy};
        int rc = intdim_search_run(s, rig.theta, rig.theta0, toy_grad, NULL, toy_eval, &rig.tp,
                                   reentering_progress, &r);
        for (int i = 0; i < 5; i++)
            ck_assert_msg(r.statuses[i] == INTDIM_ESTATE, "call %d from the callback: %d", i,
                          r.statuses[i]);
        ck_assert_int_eq(access("/tmp/intdim-never-written.journal", F_OK), -1);
        if (destroy) {
            ck_assert_int_eq(rc, INTDIM_EINTERRUPTED);
            ck_assert_ptr_nonnull(strstr(intdim_last_error(), "destroyed"));
            ck_assert_uint_eq(r.calls, 1);
            fail_alloc_remove();
            ck_assert_int_eq(g_fail.allocs, g_fail.frees);
        } else {
            ck_assert_msg(rc == INTDIM_OK, "%s", intdim_last_error());
            ck_assert_uint_eq(intdim_search_trials_done(s), 3); /* the nested calls did nothing */
            ck_assert_uint_eq(r.calls, 3);
            intdim_search_destroy(s);
        }
    }
}
END_TEST

/* A run stopped part way (here by its progress callback) leaves theta at the starting point,
 * whether theta0 was given, NULL (theta's contents are the start) or theta itself: calling
 * run again to resume then trains the remaining trials from the same start, and gets what
 * one uninterrupted run gets, bit for bit. */
START_TEST(interrupted_run_resumes_from_the_starting_point)
{
    for (int base_case = 0; base_case < 3; base_case++) {
        double whole[8], resumed[8];
        for (int interrupt = 0; interrupt < 2; interrupt++) {
            toy_rig rig;
            toy_rig_init(&rig);
            const float *base = base_case == 0 ? rig.theta0 : base_case == 1 ? NULL : rig.theta;
            intdim_search *s = two_point_toy_search(100);
            progress_log log = {0, 0, 0};
            int rc = intdim_search_run(s, rig.theta, base, toy_grad, NULL, toy_eval, &rig.tp,
                                       interrupt ? stop_at_once : NULL, &log);
            ck_assert_int_eq(rc, interrupt ? INTDIM_EINTERRUPTED : INTDIM_OK);
            ck_assert_msg(memcmp(rig.theta, rig.theta0, sizeof rig.theta) == 0,
                          "case %d: theta is not back at the start after the run", base_case);
            if (interrupt) {
                ck_assert_uint_eq(intdim_search_trials_done(s), 1);
                rc = intdim_search_run(s, rig.theta, base, toy_grad, NULL, toy_eval, &rig.tp,
                                       NULL, NULL);
                ck_assert_msg(rc == INTDIM_OK, "resume: %s", intdim_last_error());
            }
            ck_assert_uint_eq(s->n_trials, 3);
            for (size_t i = 0; i < s->n_trials; i++)
                (interrupt ? resumed : whole)[i] = s->trials[i].eval_metric;
            intdim_search_destroy(s);
        }
        for (size_t i = 0; i < 3; i++)
            ck_assert_msg(memcmp(&whole[i], &resumed[i], sizeof whole[i]) == 0,
                          "case %d, trial %zu: %.17g uninterrupted, %.17g resumed", base_case, i,
                          whole[i], resumed[i]);
    }
}
END_TEST

/* theta0 == theta is allowed as in intdim_trainer_create (theta0 is then copied once):
 * the same trials as with a separate theta0 or NULL. run_trial borrows theta0, so there it
 * is INTDIM_EINVAL. */
START_TEST(search_run_accepts_theta0_in_theta)
{
    double want[8], got[8];
    size_t n_want, n_got;
    small_toy_run(0, want, &n_want);
    ck_assert_uint_eq(n_want, 3);
    for (int c = 1; c <= 2; c++) {
        small_toy_run(c, got, &n_got);
        ck_assert_uint_eq(n_got, n_want);
        for (size_t i = 0; i < n_want; i++)
            ck_assert_msg(got[i] == want[i], "case %d trial %zu: %g vs %g", c, i, got[i],
                          want[i]);
    }
    toy_rig rig;
    toy_rig_init(&rig);
    intdim_search *s;
    ck_assert_int_eq(intdim_search_create(&s, TOY_D), INTDIM_OK);
    double train, eval, seconds;
    uint64_t steps;
    int status;
    ck_assert_int_eq(intdim_search_run_trial(s, rig.theta, rig.theta, toy_grad, NULL, toy_eval,
                                             &rig.tp, 6,
                                             INTDIM_PROJ_FASTFOOD, 0, 0.3, 1, &train, &eval,
                                             &steps, &seconds, &status),
                     INTDIM_EINVAL);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "intdim_search_run_trial: theta0 is the host"));
    intdim_search_destroy(s);
}
END_TEST

START_TEST(adaptive_agrees_with_grid_on_toy_problem)
{
    size_t planned_grid, planned_adaptive;
    drive_result g = run_toy(INTDIM_STRATEGY_GRID, 0, &planned_grid);
    drive_result a = run_toy(INTDIM_STRATEGY_ADAPTIVE, 0, &planned_adaptive);
    ck_assert_uint_eq(g.trials, planned_grid); /* the grid ran every planned trial */
    /* both strategies plan the same trial table; adaptive runs a part of it */
    ck_assert_uint_eq(planned_adaptive, planned_grid);
    ck_assert_uint_lt(a.trials, planned_adaptive);
    ck_assert_int_eq(g.reached, 1);
    /* The toy problem's intrinsic dimension is 10: no d < 10 can solve all ten groups, and
     * the optimizer needs a little slack above it (grid ..., 8, 10, 12, 14, 16, 19, ...). */
    ck_assert_uint_ge(g.d90, 10);
    ck_assert_uint_le(g.d90, 19);
    ck_assert_uint_eq(a.d90, g.d90);
    ck_assert_int_eq(a.reached, g.reached);
    ck_assert_msg(4 * a.trials <= g.trials, "adaptive %zu trials, grid %zu", a.trials, g.trials);
}
END_TEST

/* Trials with stacked Fastfood blocks (INTDIM_SEARCH_FASTFOOD_BLOCK) find the same
 * intrinsic dimension; blocks as large as the padded D are REFERENCE's single block, trial
 * for trial to the bit. */
START_TEST(stacked_blocks_in_trials)
{
    size_t planned;
    drive_result b = run_toy(INTDIM_STRATEGY_ADAPTIVE, 128, &planned);
    ck_assert_int_eq(b.reached, 1);
    ck_assert_uint_ge(b.d90, 10);
    ck_assert_uint_le(b.d90, 19);

    toy_problem tp;
    toy_init(&tp, 7);
    float theta0[TOY_D], theta[TOY_D];
    toy_theta0(3, theta0);
    double metric[3];
    const size_t blocks[3] = {0, 1024, 128};
    for (int k = 0; k < 3; k++) {
        intdim_search *s;
        ck_assert_int_eq(intdim_search_create(&s, TOY_D), INTDIM_OK);
        ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_STEPS, 200), INTDIM_OK);
        ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_FASTFOOD_BLOCK, (double)blocks[k]),
                         INTDIM_OK);
        double train, seconds;
        uint64_t steps;
        int status;
        memcpy(theta, theta0, sizeof theta);
        ck_assert_int_eq(intdim_search_run_trial(s, theta, theta0, toy_grad, NULL, toy_eval, &tp,
                                                 12, INTDIM_PROJ_FASTFOOD, 0, 0.3, 5, &train,
                                                 &metric[k], &steps, &seconds, &status),
                         INTDIM_OK);
        ck_assert_int_eq(status, INTDIM_OK);
        intdim_search_destroy(s);
    }
    ck_assert(memcmp(&metric[0], &metric[1], sizeof(double)) == 0);
    ck_assert(memcmp(&metric[0], &metric[2], sizeof(double)) != 0);
}
END_TEST

/* ---- allocation failures ---------------------------------------------------------------- */

START_TEST(allocation_failures_leak_nothing)
{
    /* Fail the k-th allocation of a whole small search for every k until it succeeds. */
    table t = {{{{0.5}, {0.5}}, {{0.3}, {0.95}}, {{0.95}, {0.95}}, {{0.95}, {0.95}}}};
    int succeeded = 0;
    long failures = 0;
    for (long k = 1; k <= 200 && !succeeded; k++) {
        fail_alloc_install(k);
        intdim_search *s = NULL;
        int rc = intdim_search_create(&s, 100);
        if (rc == INTDIM_OK)
            rc = intdim_search_set_d_list(s, DS4, 4);
        if (rc == INTDIM_OK)
            rc = intdim_search_set_lrs(s, LRS2, 2);
        if (rc == INTDIM_OK)
            rc = intdim_search_set(s, INTDIM_SEARCH_SEEDS, 2);
        if (rc == INTDIM_OK)
            rc = intdim_search_set(s, INTDIM_SEARCH_BASELINE, 1.0);
        while (rc == INTDIM_OK) {
            int what, kind, said;
            uint64_t id, seed;
            size_t d;
            double lr;
            rc = intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed);
            if (rc != INTDIM_OK || what == INTDIM_ASK_DONE)
                break;
            rc = intdim_search_tell(s, id, NAN, table_metric(&t, d, kind, lr, 0), 1, 0, 0);
        }
        size_t d90 = 0;
        if (rc == INTDIM_OK)
            rc = intdim_search_result(s, &d90, NULL, NULL, NULL, NULL);
        intdim_search_destroy(s);
        fail_alloc_remove();
        ck_assert_msg(g_fail.allocs == g_fail.frees, "failing allocation %ld leaked %ld blocks",
                      k, g_fail.allocs - g_fail.frees);
        if (rc == INTDIM_OK) {
            succeeded = 1;
            ck_assert_uint_eq(d90, 2);
        } else {
            ck_assert_int_eq(rc, INTDIM_ENOMEM);
            failures++;
        }
    }
    ck_assert(succeeded);
    ck_assert(failures >= 3); /* failures were really injected */
}
END_TEST

static Suite *search_suite(void)
{
    Suite *suite = suite_create("search");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, rule_is_strict);
    tcase_add_test(tc, rule_averages_seeds);
    tcase_add_test(tc, rule_best_lr_and_ties);
    tcase_add_test(tc, rule_not_reached_is_not_the_last_d);
    tcase_add_test(tc, rule_failed_trial_counts_minus_infinity);
    tcase_add_test(tc, measured_baseline_comes_first);
    tcase_add_test(tc, negative_baseline_warns);
    tcase_add_test(tc, metrics_near_dbl_max_do_not_overflow);
    tcase_add_test(tc, ask_tell_misuse_gives_status);
    tcase_add_test(tc, configuration_is_checked);
    tcase_add_test(tc, said_needs_every_d_above_the_groups);
    tcase_add_test(tc, empty_or_oversized_log_grid_is_refused);
    tcase_add_test(tc, frozen_plan_refuses_list_groups_and_train_params);
    tcase_add_test(tc, group_sizes_are_checked);
    tcase_add_test(tc, parallel_asks_and_out_of_order_tells);
    tcase_add_test(tc, bootstrap_brackets_d90);
    tcase_add_test(tc, adaptive_agrees_with_grid_on_synthetic_curves);
    tcase_add_test(tc, strategies_share_trial_seeds);
    tcase_add_test(tc, adaptive_agrees_with_grid_on_toy_problem);
    tcase_add_test(tc, search_run_accepts_theta0_in_theta);
    tcase_add_test(tc, diverging_trials_are_results);
    tcase_add_test(tc, every_baseline_trial_failed);
    tcase_add_test(tc, run_refuses_trials_asked_outside_it);
    tcase_add_test(tc, progress_callback_stops_the_run);
    tcase_add_test(tc, interrupted_run_resumes_from_the_starting_point);
    tcase_add_test(tc, progress_callback_reentering_its_search);
    tcase_add_test(tc, search_destroyed_by_a_trial_callback);
    tcase_add_test(tc, d_list_longer_than_a_journal_can_hold_is_refused);
    tcase_add_test(tc, stacked_blocks_in_trials);
    tcase_add_test(tc, allocation_failures_leak_nothing);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    SRunner *runner = srunner_create(search_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = runner_exit_status(runner) != EXIT_SUCCESS; /* also: no test ran */
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
