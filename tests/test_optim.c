/* Optimizer math against values worked out by hand (lib/optim.c). */
#include <check.h>
#include <math.h>

#include "optim.h"
#include "test_threads.h"

#define TOL 1e-6

/* One update of a single coordinate with gradient g at update count t. */
static void step1(const optim_settings *s, uint64_t t, double lr, float *theta, float *m, float *v,
                  float g)
{
    intdim__optim_update(s, t, lr, 0, 1, theta, m, v, &g, theta, m, v);
}

START_TEST(adam_bias_correction_steps_1_and_2)
{
    optim_settings s;
    intdim__optim_defaults(&s); /* Adam, beta 0.9 / 0.999, eps 1e-8 */
    float theta = 1.0f, m = 0.0f, v = 0.0f;
    /* step 1, g = 1: m = 0.1, v = 0.001, m^ = 1, v^ = 1: theta = 1 - 0.1 * 1 / (1 + eps) */
    step1(&s, 1, 0.1, &theta, &m, &v, 1.0f);
    ck_assert_double_eq_tol(m, 0.1, TOL);
    ck_assert_double_eq_tol(v, 0.001, TOL);
    ck_assert_double_eq_tol(theta, 0.9, TOL);
    /* step 2, g = -2: m = 0.09 - 0.2 = -0.11, v = 0.000999 + 0.004 = 0.004999,
     * m^ = -0.11 / 0.19, v^ = 0.004999 / 0.001999,
     * theta = 0.9 + 0.1 * (0.11 / 0.19) / sqrt(0.004999 / 0.001999) = 0.93661035 */
    step1(&s, 2, 0.1, &theta, &m, &v, -2.0f);
    ck_assert_double_eq_tol(m, -0.11, TOL);
    ck_assert_double_eq_tol(v, 0.004999, TOL);
    ck_assert_double_eq_tol(theta, 0.93661035, TOL);
}
END_TEST

START_TEST(adam_bias_correction_step_10)
{
    /* With a constant gradient g the corrected moments are exactly g and g^2 at every step,
     * so each step moves theta by lr (uncorrected, step 10 would move it 6.5 lr). */
    optim_settings s;
    intdim__optim_defaults(&s);
    float theta = 1.0f, m = 0.0f, v = 0.0f;
    for (uint64_t t = 1; t <= 10; t++) {
        step1(&s, t, 0.01, &theta, &m, &v, 0.5f);
        ck_assert_double_eq_tol(theta, 1.0 - 0.01 * (double)t, 1e-6);
    }
    ck_assert_double_eq_tol(m, (1.0 - pow(0.9, 10)) * 0.5, TOL);
    ck_assert_double_eq_tol(v, (1.0 - pow(0.999, 10)) * 0.25, 1e-7);
}
END_TEST

START_TEST(adam_l2_and_adamw_decoupled)
{
    optim_settings s;
    intdim__optim_defaults(&s);
    s.weight_decay = 0.1;
    /* Adam + L2, g = 0: the gradient becomes g + wd * theta = 0.1 * 1 = 0.1. Adam's first
     * step is a full step of lr whatever the gradient's size (m^ / sqrt(v^) = sign), so
     * theta = 0.9 alone says nothing about wd: the moments carry it.
     *   m = (1 - beta1) * 0.1 = 0.1 * 0.1 = 0.01
     *   v = (1 - beta2) * 0.1^2 = 0.001 * 0.01 = 1e-5
     *   theta = 1 - 0.1 * (0.01 / 0.1) / (sqrt(1e-5 / 0.001) + 1e-8) = 0.90000001 */
    float theta = 1.0f, m = 0.0f, v = 0.0f;
    step1(&s, 1, 0.1, &theta, &m, &v, 0.0f);
    ck_assert_double_eq_tol(theta, 0.9, TOL);
    ck_assert_double_eq_tol(m, 0.01, 1e-9);
    ck_assert_double_eq_tol(v, 1e-5, 1e-12);
    /* Step 2 with g = 1: the decay term is now mixed with a real gradient, so its size
     * moves theta (a decay of 0.2 would give 0.81544, 0.05 would give 0.82247).
     *   grad = 1 + 0.1 * 0.9 = 1.09 (theta = 0.90000001: 1.09000000 to 1e-9)
     *   m = 0.9 * 0.01 + 0.1 * 1.09 = 0.118
     *   v = 0.999 * 1e-5 + 0.001 * 1.09^2 = 0.00000999 + 0.0011881 = 0.00119809
     *   m^ = 0.118 / (1 - 0.81) = 0.62105263, v^ = 0.00119809 / (1 - 0.998001) = 0.59934467
     *   theta = 0.90000001 - 0.1 * 0.62105263 / (sqrt(0.59934467) + 1e-8) = 0.81977864 */
    step1(&s, 2, 0.1, &theta, &m, &v, 1.0f);
    ck_assert_double_eq_tol(m, 0.118, TOL);
    ck_assert_double_eq_tol(v, 0.00119809, 1e-10);
    ck_assert_double_eq_tol(theta, 0.81977864, TOL);
    /* AdamW, g = 0: theta shrinks by lr * wd = 1%, the moments stay 0 */
    s.optimizer = INTDIM_OPT_ADAMW;
    theta = 1.0f, m = 0.0f, v = 0.0f;
    step1(&s, 1, 0.1, &theta, &m, &v, 0.0f);
    ck_assert_double_eq_tol(theta, 0.99, TOL);
    ck_assert_float_eq(m, 0.0f);
    ck_assert_float_eq(v, 0.0f);
}
END_TEST

START_TEST(sgd_plain_momentum_nesterov)
{
    optim_settings s;
    intdim__optim_defaults(&s);
    s.optimizer = INTDIM_OPT_SGD;
    float theta = 1.0f, m = 0.0f, v = 0.0f;
    step1(&s, 1, 0.1, &theta, &m, &v, 2.0f);
    ck_assert_double_eq_tol(theta, 0.8, TOL);
    ck_assert_float_eq(m, 0.0f); /* no momentum: no velocity */

    /* momentum 0.9, g = 1 twice: buf 1 then 1.9; theta 0.9 then 0.71 */
    s.momentum = 0.9;
    theta = 1.0f, m = 0.0f;
    step1(&s, 1, 0.1, &theta, &m, &v, 1.0f);
    ck_assert_double_eq_tol(theta, 0.9, TOL);
    step1(&s, 2, 0.1, &theta, &m, &v, 1.0f);
    ck_assert_double_eq_tol(m, 1.9, TOL);
    ck_assert_double_eq_tol(theta, 0.71, TOL);

    /* Nesterov: direction g + mu buf: 1.9 then 1 + 0.9 * 1.9 = 2.71; theta 0.81 then 0.539 */
    s.nesterov = 1;
    theta = 1.0f, m = 0.0f;
    step1(&s, 1, 0.1, &theta, &m, &v, 1.0f);
    ck_assert_double_eq_tol(theta, 0.81, TOL);
    step1(&s, 2, 0.1, &theta, &m, &v, 1.0f);
    ck_assert_double_eq_tol(theta, 0.539, TOL);

    /* L2 weight decay: g = 0, wd 0.1, lr 0.1: theta 0.99 */
    s.momentum = 0.0, s.nesterov = 0, s.weight_decay = 0.1;
    theta = 1.0f;
    step1(&s, 1, 0.1, &theta, &m, &v, 0.0f);
    ck_assert_double_eq_tol(theta, 0.99, TOL);
}
END_TEST

START_TEST(update_range_touches_only_its_coordinates)
{
    optim_settings s;
    intdim__optim_defaults(&s);
    s.optimizer = INTDIM_OPT_SGD;
    float theta[4] = {1, 1, 1, 1}, m[4] = {0}, v[4] = {0}, g[4] = {1, 1, 1, 1};
    float out[4] = {5, 5, 5, 5}, m_out[4] = {0}, v_out[4] = {0};
    intdim__optim_update(&s, 1, 0.5, 1, 3, theta, m, v, g, out, m_out, v_out);
    ck_assert_float_eq(out[0], 5.0f);
    ck_assert_double_eq_tol(out[1], 0.5, TOL);
    ck_assert_double_eq_tol(out[2], 0.5, TOL);
    ck_assert_float_eq(out[3], 5.0f);
}
END_TEST

START_TEST(schedules)
{
    optim_settings s;
    intdim__optim_defaults(&s);
    s.warmup_steps = 4;
    s.total_steps = 12;
    /* warm-up: (step + 1) / 4 of the peak, for every schedule */
    ck_assert_double_eq_tol(intdim__optim_lr_at(&s, 1.0, 0), 0.25, 1e-12);
    ck_assert_double_eq_tol(intdim__optim_lr_at(&s, 1.0, 3), 1.0, 1e-12);
    ck_assert_double_eq_tol(intdim__optim_lr_at(&s, 2.0, 1000), 2.0, 1e-12); /* constant */

    s.schedule = INTDIM_SCHED_LINEAR;
    ck_assert_double_eq_tol(intdim__optim_lr_at(&s, 1.0, 4), 1.0, 1e-12);
    ck_assert_double_eq_tol(intdim__optim_lr_at(&s, 1.0, 8), 0.5, 1e-12);
    ck_assert_double_eq_tol(intdim__optim_lr_at(&s, 1.0, 12), 0.0, 1e-12);
    ck_assert_double_eq_tol(intdim__optim_lr_at(&s, 1.0, 99), 0.0, 1e-12);
    s.min_lr_ratio = 0.1;
    ck_assert_double_eq_tol(intdim__optim_lr_at(&s, 1.0, 8), 0.55, 1e-12);
    ck_assert_double_eq_tol(intdim__optim_lr_at(&s, 1.0, 50), 0.1, 1e-12);

    s.schedule = INTDIM_SCHED_COSINE;
    s.min_lr_ratio = 0.0;
    ck_assert_double_eq_tol(intdim__optim_lr_at(&s, 1.0, 8), 0.5, 1e-12);
    /* a quarter of the way: (1 + cos(pi / 4)) / 2 */
    ck_assert_double_eq_tol(intdim__optim_lr_at(&s, 1.0, 6), 0.8535533905932737, 1e-12);
    ck_assert_double_eq_tol(intdim__optim_lr_at(&s, 1.0, 12), 0.0, 1e-12);

    s.total_steps = 0;
    ck_assert_int_eq(intdim__optim_check(&s), INTDIM_ESTATE);
    s.schedule = INTDIM_SCHED_CONSTANT;
    ck_assert_int_eq(intdim__optim_check(&s), INTDIM_OK);
}
END_TEST

START_TEST(norm_clip_and_finite)
{
    float g[2] = {3.0f, 4.0f};
    double norm = intdim__optim_norm(g, 2);
    ck_assert_double_eq_tol(norm, 5.0, 1e-12);
    ck_assert_double_eq(intdim__optim_clip(g, 2, norm, 10.0), 1.0);
    ck_assert_float_eq(g[0], 3.0f);
    ck_assert_double_eq_tol(intdim__optim_clip(g, 2, norm, 1.0), 0.2, 1e-12);
    ck_assert_double_eq_tol(g[0], 0.6, 1e-7);
    ck_assert_double_eq_tol(g[1], 0.8, 1e-7);
    ck_assert_double_eq(intdim__optim_clip(g, 2, 1.0, 0.0), 1.0); /* 0 = off */

    float x[3] = {1.0f, -2.0f, 3.0f};
    ck_assert_int_eq(intdim__all_finite(x, 3), 1);
    x[1] = NAN;
    ck_assert_int_eq(intdim__all_finite(x, 3), 0);
    ck_assert(!isfinite(intdim__optim_norm(x, 3)));
    x[1] = INFINITY;
    ck_assert_int_eq(intdim__all_finite(x, 3), 0);
    x[1] = -INFINITY;
    ck_assert_int_eq(intdim__all_finite(x, 3), 0);
    x[1] = 3.0e38f; /* huge but finite: squares in double do not overflow */
    ck_assert(isfinite(intdim__optim_norm(x, 3)));
}
END_TEST

START_TEST(settings_are_checked)
{
    optim_settings s;
    intdim__optim_defaults(&s);
    ck_assert_int_eq(intdim__optim_set(&s, INTDIM_TRAIN_LR, NAN), INTDIM_EINVAL);
    ck_assert_int_eq(intdim__optim_set(&s, INTDIM_TRAIN_LR, -1.0), INTDIM_EINVAL);
    ck_assert_int_eq(intdim__optim_set(&s, INTDIM_TRAIN_OPTIMIZER, 1.5), INTDIM_EINVAL);
    ck_assert_int_eq(intdim__optim_set(&s, INTDIM_TRAIN_OPTIMIZER, 3), INTDIM_EINVAL);
    ck_assert_int_eq(intdim__optim_set(&s, INTDIM_TRAIN_BETA2, 1.0), INTDIM_EINVAL);
    ck_assert_int_eq(intdim__optim_set(&s, 16, 0.0), INTDIM_EINVAL);
    ck_assert_int_eq(intdim__optim_set(&s, -1, 0.0), INTDIM_EINVAL);
    ck_assert_double_eq(s.lr, 1e-3); /* failures change nothing */
    for (int p = 0; p < 16; p++) {
        double lo, hi, value;
        ck_assert_int_eq(intdim__optim_bounds(p, &lo, &hi), INTDIM_OK);
        ck_assert_int_eq(intdim__optim_set(&s, p, hi), INTDIM_OK);
        ck_assert_int_eq(intdim__optim_get(&s, p, &value), INTDIM_OK);
        ck_assert_double_eq(value, hi);
        ck_assert_int_eq(intdim__optim_set(&s, p, lo), INTDIM_OK);
        ck_assert_int_eq(intdim__optim_get(&s, p, &value), INTDIM_OK);
        ck_assert_double_eq(value, lo);
    }
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("optim");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, adam_bias_correction_steps_1_and_2);
    tcase_add_test(tc, adam_bias_correction_step_10);
    tcase_add_test(tc, adam_l2_and_adamw_decoupled);
    tcase_add_test(tc, sgd_plain_momentum_nesterov);
    tcase_add_test(tc, update_range_touches_only_its_coordinates);
    tcase_add_test(tc, schedules);
    tcase_add_test(tc, norm_clip_and_finite);
    tcase_add_test(tc, settings_are_checked);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = runner_exit_status(runner) != EXIT_SUCCESS; /* also: no test ran */
    srunner_free(runner);
    return failed == 0 ? 0 : 1;
}
