/* The subspace trainer through the public API: the gradient that reaches theta_d against
 * finite differences of the host loss, failure paths (callback error, NaN/Inf, overflow)
 * that must leave the state untouched, the run loop, Li et al.'s toy problem, and
 * allocation failure injected at every allocation site. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef INTDIM_HAVE_OPENMP
#include <omp.h>
#endif

#include "fail_alloc.h"
#include "optim.h" /* the trainer's g_d, to compare with the projection's own vjp */
#include <intdim.h>

#include "../examples/toy/toy_problem.h"
#include "test_threads.h"

/* ---- a quadratic host: loss = sum_i w_i (theta_i - c_i)^2 --------------------------- */
typedef struct quad {
    size_t D;
    double *w, *c;
    int64_t fail_at;      /* return fail_rc at this step (-1: never) */
    int fail_rc;
    int64_t bad_loss_at;  /* loss = bad_value at this step */
    int64_t bad_grad_at;  /* grad[bad_index] = bad_value at this step */
    size_t bad_index;
    float bad_value;
    float grad_scale;     /* multiply the gradient (overflow tests) */
    uint64_t calls;
    uint64_t last_step;
} quad;

static void quad_init(quad *q, size_t D, unsigned seed)
{
    memset(q, 0, sizeof *q);
    q->D = D;
    q->w = calloc(D, sizeof(double));
    q->c = calloc(D, sizeof(double));
    srand(seed);
    for (size_t i = 0; i < D; i++) {
        q->w[i] = 0.5 + (double)rand() / RAND_MAX;
        q->c[i] = 2.0 * (double)rand() / RAND_MAX - 1.0;
    }
    q->fail_at = q->bad_loss_at = q->bad_grad_at = -1;
    q->grad_scale = 1.0f;
}

static void quad_free(quad *q)
{
    free(q->w);
    free(q->c);
}

static double quad_loss(const quad *q, const float *theta)
{
    double loss = 0.0;
    for (size_t i = 0; i < q->D; i++) {
        double r = (double)theta[i] - q->c[i];
        loss += q->w[i] * r * r;
    }
    return loss;
}

static int quad_grad(void *user, uint64_t step, const float *theta, float *grad, double *loss)
{
    quad *q = user;
    q->calls++;
    q->last_step = step;
    for (size_t i = 0; i < q->D; i++)
        grad[i] = q->grad_scale * (float)(2.0 * q->w[i] * ((double)theta[i] - q->c[i]));
    *loss = quad_loss(q, theta);
    if ((int64_t)step == q->fail_at) {
        /* scribble on the host buffer: the trainer must restore it */
        ((float *)theta)[0] = 1234.0f;
        return q->fail_rc;
    }
    if ((int64_t)step == q->bad_loss_at)
        *loss = q->bad_value;
    if ((int64_t)step == q->bad_grad_at)
        grad[q->bad_index] = q->bad_value;
    return 0;
}

static int quad_eval(void *user, const float *theta, double *metric)
{
    *metric = -quad_loss(user, theta);
    return 0;
}

/* ---- projections under test ------------------------------------------------------- */
typedef struct proj_config {
    const char *name;
    int kind;
    size_t d;
    int said;      /* SAID over groups {20, 30} */
    int per_group; /* per-group Fastfood over the same groups */
    size_t block;  /* Fastfood in stacked blocks of this many rows (0: none) */
    int threads;   /* projection threads (0: 1); 2 runs stacked blocks on lanes */
    int tables;    /* Fastfood from explicit tables whose G is not binary16 (float32 kernels) */
} proj_config;

enum { TEST_D = 50 };

/* An evaluation callback for the re-entry test: minus the quadratic's loss. */
static int quad_eval_for_reentry(void *user, const float *theta, double *metric)
{
    float g[TEST_D];
    double loss;
    int rc = quad_grad(user, 0, theta, g, &loss);
    *metric = -loss;
    return rc;
}
static const size_t g_groups[2] = {20, 30};

static const proj_config g_configs[] = {
    {"identity", INTDIM_PROJ_IDENTITY, TEST_D, 0, 0, 0, 0, 0},
    {"dense", INTDIM_PROJ_DENSE, 7, 0, 0, 0, 0, 0},
    {"sparse", INTDIM_PROJ_SPARSE, 7, 0, 0, 0, 0, 0},
    {"fastfood", INTDIM_PROJ_FASTFOOD, 7, 0, 0, 0, 0, 0},
    {"said-dense", INTDIM_PROJ_DENSE, 7, 1, 0, 0, 0, 0},
    {"said-sparse", INTDIM_PROJ_SPARSE, 7, 1, 0, 0, 0, 0},
    {"said-fastfood", INTDIM_PROJ_FASTFOOD, 7, 1, 0, 0, 0, 0},
    {"fastfood-per-group", INTDIM_PROJ_FASTFOOD, 7, 0, 1, 0, 0, 0},
    /* d = 40 > L_g = 32: two chunks per group, their outputs summed */
    {"fastfood-per-group-chunks", INTDIM_PROJ_FASTFOOD, 40, 0, 1, 0, 0, 0},
    /* stacked blocks of 16 rows (three, and one of the last 2 rows), on lanes with 2
     * threads; with d = 40 the input in chunks of each block's size, their outputs summed */
    {"fastfood-blocks", INTDIM_PROJ_FASTFOOD, 7, 0, 0, 16, 2, 0},
    {"fastfood-blocks-chunks", INTDIM_PROJ_FASTFOOD, 40, 0, 0, 16, 2, 0},
    /* SAID over chunked per-group and stacked blocks: d_lin = 40 > 32, 18 > 8 */
    {"said-fastfood-per-group-chunks", INTDIM_PROJ_FASTFOOD, 42, 1, 1, 0, 0, 0},
    {"said-fastfood-blocks-chunks", INTDIM_PROJ_FASTFOOD, 20, 1, 0, 8, 2, 0},
    /* a PyTorch run's tables: float32 G takes the gather32/fold32 kernels */
    {"fastfood-tables", INTDIM_PROJ_FASTFOOD, 7, 0, 0, 0, 0, 1},
};
enum { N_CONFIGS = sizeof g_configs / sizeof g_configs[0] };

/* Fastfood from explicit tables: a seeded block's B, Pi and G, G moved off binary16 (as a
 * PyTorch run's float32 Gaussians are). */
static int make_from_float32_tables(const proj_config *c, uint64_t seed, intdim_proj **p)
{
    enum { L = 64 }; /* nextpow2(TEST_D) */
    float B[L], G[L];
    int64_t Pi[L];
    intdim_proj *seeded;
    int status = intdim_proj_create(&seeded, INTDIM_PROJ_FASTFOOD, TEST_D, c->d, seed);
    if (status == INTDIM_OK)
        status = intdim_proj_fastfood_tables(seeded, B, Pi, G, L);
    intdim_proj_destroy(seeded);
    for (size_t i = 0; i < L; i++)
        G[i] *= 1.0f + 0x1p-20f;
    if (status == INTDIM_OK)
        status = intdim_proj_create_fastfood_tables(p, TEST_D, c->d, L, B, Pi, G);
    return status;
}

static int make_proj(const proj_config *c, uint64_t seed, intdim_proj **p)
{
    if (c->tables)
        return make_from_float32_tables(c, seed, p);
    int ids[3];
    double values[3];
    size_t n = 0;
    if (c->said)
        ids[n] = INTDIM_PROJ_SAID, values[n++] = 1.0;
    if (c->per_group)
        ids[n] = INTDIM_PROJ_FASTFOOD_PER_GROUP, values[n++] = 1.0;
    if (c->block > 0)
        ids[n] = INTDIM_PROJ_FASTFOOD_BLOCK, values[n++] = (double)c->block;
    int grouped = c->said || c->per_group;
    int status = intdim_proj_create_ex(p, c->kind, TEST_D, c->d, seed, grouped ? 2 : 0,
                                       grouped ? g_groups : NULL, n, ids, values);
    /* tiny problems: threads would only add synchronisation, except where a config is
     * about the lanes */
    if (status == INTDIM_OK)
        status = intdim_proj_set(*p, INTDIM_PROJ_THREADS, c->threads > 0 ? c->threads : 1);
    return status;
}

/* A fixture: projection + trainer over a quad host with theta0 random. */
typedef struct rig {
    quad q;
    intdim_proj *p;
    intdim_trainer *t;
    float theta[TEST_D], theta0[TEST_D];
} rig;

static void rig_open(rig *r, const proj_config *c, uint64_t seed)
{
    quad_init(&r->q, TEST_D, (unsigned)seed + 11);
    for (size_t i = 0; i < TEST_D; i++)
        r->theta0[i] = (float)(0.1 * sin((double)i + (double)seed));
    int status = make_proj(c, seed, &r->p);
    ck_assert_msg(status == INTDIM_OK, "%s: %s", c->name, intdim_last_error());
    status = intdim_trainer_create(&r->t, r->p, r->theta, r->theta0, NULL, 0, quad_grad, &r->q);
    ck_assert_msg(status == INTDIM_OK, "%s: %s", c->name, intdim_last_error());
}

static void rig_close(rig *r)
{
    intdim_trainer_destroy(r->t);
    intdim_proj_destroy(r->p);
    quad_free(&r->q);
}

/* rig_open with the projection on a transform kernel; 0 (and nothing open) when this CPU
 * or build lacks the kernel. */
static int rig_open_on_kernel(rig *r, const proj_config *c, uint64_t seed, int kernel)
{
    rig_open(r, c, seed);
    if (intdim_proj_set(r->p, INTDIM_PROJ_KERNEL, kernel) == INTDIM_OK)
        return 1;
    rig_close(r);
    return 0;
}

/* theta_d with every entry away from 0 (SAID scales away from 1), so every term of the
 * gradient is exercised. */
static void random_theta_d(float *x, size_t d, unsigned seed)
{
    srand(seed);
    for (size_t j = 0; j < d; j++)
        x[j] = (float)(0.6 * (double)rand() / RAND_MAX - 0.3);
}

static double loss_at(const rig *r, const float *theta_d)
{
    float theta[TEST_D];
    ck_assert_int_eq(intdim_proj_apply(r->p, theta_d, theta), INTDIM_OK);
    for (size_t i = 0; i < TEST_D; i++)
        theta[i] = r->theta0[i] + theta[i];
    return quad_loss(&r->q, theta);
}

/* ---- tests -------------------------------------------------------------------------- */

START_TEST(gradient_matches_finite_differences)
{
    const proj_config *c = &g_configs[_i];
    rig r;
    rig_open(&r, c, 3);
    size_t d = intdim_trainer_d(r.t);
    float x[TEST_D], after[TEST_D];
    random_theta_d(x, d, 5);
    if (c->said) /* scales around 1, not 0 */
        for (size_t j = d - 2; j < d; j++)
            x[j] += 1.0f;
    ck_assert_int_eq(intdim_trainer_set_theta_d(r.t, x, d), INTDIM_OK);
    /* SGD with lr 1: theta_d moves by exactly -g_d */
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_OPTIMIZER, INTDIM_OPT_SGD), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_LR, 1.0), INTDIM_OK);
    double loss;
    ck_assert_int_eq(intdim_trainer_step(r.t, &loss), INTDIM_OK);
    ck_assert_double_eq_tol(loss, loss_at(&r, x), 1e-9 * (1.0 + fabs(loss)));
    ck_assert_int_eq(intdim_trainer_get_theta_d(r.t, after, d), INTDIM_OK);
    double worst = 0.0, scale = 1.0;
    for (size_t j = 0; j < d; j++) {
        const float h = 1e-2f; /* the loss is at most quartic in theta_d: O(h^2) error */
        float xp[TEST_D], xm[TEST_D];
        memcpy(xp, x, d * sizeof(float));
        memcpy(xm, x, d * sizeof(float));
        xp[j] += h;
        xm[j] -= h;
        double fd = (loss_at(&r, xp) - loss_at(&r, xm)) / ((double)xp[j] - (double)xm[j]);
        double g = (double)x[j] - (double)after[j];
        worst = fmax(worst, fabs(fd - g));
        scale = fmax(scale, fabs(fd));
    }
    ck_assert_msg(worst <= 2e-3 * scale, "%s: |g_d - finite difference| = %g (scale %g)",
                  c->name, worst, scale);
    rig_close(&r);
}
END_TEST

/* The gradient a step pulls back is bit for bit intdim_proj_vjp's at the theta it wrote
 * (SAID steps reuse the projection of theta_d they wrote instead of projecting again). */
START_TEST(step_gradient_is_the_projections_vjp)
{
    const proj_config *c = &g_configs[_i];
    rig r;
    rig_open(&r, c, 4);
    size_t d = intdim_trainer_d(r.t);
    float x[TEST_D], theta[TEST_D], grad[TEST_D], want[TEST_D];
    random_theta_d(x, d, 7);
    if (c->said)
        for (size_t j = d - 2; j < d; j++)
            x[j] += 1.0f;
    ck_assert_int_eq(intdim_trainer_set_theta_d(r.t, x, d), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_apply(r.p, x, theta), INTDIM_OK);
    for (size_t i = 0; i < TEST_D; i++)
        theta[i] = r.theta0[i] + theta[i];
    double loss;
    ck_assert_int_eq(quad_grad(&r.q, 0, theta, grad, &loss), 0);
    ck_assert_int_eq(intdim_proj_vjp(r.p, x, grad, want), INTDIM_OK);
    for (int step = 0; step < 2; step++) { /* the second step after an update */
        ck_assert_int_eq(intdim_trainer_step(r.t, NULL), INTDIM_OK);
        ck_assert_msg(memcmp(r.t->g_d, want, d * sizeof(float)) == 0, "%s: step %d", c->name,
                      step);
        ck_assert_int_eq(intdim_trainer_get_theta_d(r.t, x, d), INTDIM_OK);
        ck_assert_int_eq(intdim_proj_apply(r.p, x, theta), INTDIM_OK);
        for (size_t i = 0; i < TEST_D; i++)
            theta[i] = r.theta0[i] + theta[i];
        ck_assert_int_eq(quad_grad(&r.q, 0, theta, grad, &loss), 0);
        ck_assert_int_eq(intdim_proj_vjp(r.p, x, grad, want), INTDIM_OK);
    }
    rig_close(&r);
}
END_TEST

/* The trainer writes theta0 + P(theta_d) into the host buffer in one fused pass where the
 * kind can (Fastfood adds theta0 while it writes its output): the bits must be those of
 * apply followed by the addition, with every kernel. */
START_TEST(host_buffer_holds_theta0_plus_projection)
{
    const proj_config *c = &g_configs[_i];
    for (int kernel = INTDIM_KERNEL_PORTABLE; kernel <= INTDIM_KERNEL_AVX512; kernel++) {
        rig r;
        if (!rig_open_on_kernel(&r, c, 9, kernel))
            continue;
        size_t d = intdim_trainer_d(r.t);
        float x[TEST_D], delta[TEST_D];
        random_theta_d(x, d, (unsigned)kernel);
        ck_assert_int_eq(intdim_trainer_set_theta_d(r.t, x, d), INTDIM_OK);
        memset(r.theta, 0xff, sizeof r.theta); /* NaN: every entry must be written */
        ck_assert_int_eq(intdim_trainer_sync(r.t), INTDIM_OK);
        ck_assert_int_eq(intdim_proj_apply(r.p, x, delta), INTDIM_OK);
        for (size_t i = 0; i < TEST_D; i++) {
            float want = r.theta0[i] + delta[i];
            ck_assert_msg(memcmp(&r.theta[i], &want, sizeof want) == 0,
                          "%s, kernel %d: theta[%zu] = %a, want %a", c->name, kernel, i,
                          (double)r.theta[i], (double)want);
        }
        rig_close(&r);
    }
}
END_TEST

static int zero_grad(void *user, uint64_t step, const float *theta, float *grad, double *loss)
{
    (void)user, (void)step, (void)theta, (void)grad;
    *loss = 0.0;
    return 0;
}

/* The fused theta0 + P(theta_d) at sizes whose transform takes the large-array paths (from
 * 2^22 floats: strip slots, non-temporal stores, the output written from the last sweep's
 * registers), one block and stacked medium blocks, one and two threads: still exactly the
 * apply plus the addition. */
START_TEST(large_host_buffer_holds_theta0_plus_projection)
{
    const size_t D = ((size_t)1 << 21) + 5, d = 64;
    const double blocks[] = {0, (double)((size_t)1 << 18)};
    float *theta = malloc(D * sizeof(float)), *theta0 = malloc(D * sizeof(float));
    float *delta = malloc(D * sizeof(float)), x[64];
    ck_assert(theta && theta0 && delta);
    for (size_t i = 0; i < D; i++)
        theta0[i] = 0.001f * (float)(i % 1000) - 0.5f;
    random_theta_d(x, d, 3);
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
        for (int threads = 1; threads <= 2; threads++) {
            intdim_proj *p;
            intdim_trainer *t;
            int id = INTDIM_PROJ_FASTFOOD_BLOCK;
            ck_assert_int_eq(intdim_proj_create_ex(&p, INTDIM_PROJ_FASTFOOD, D, d, 5, 0, NULL,
                                                   blocks[b] > 0, &id, &blocks[b]),
                             INTDIM_OK);
            ck_assert_int_eq(intdim_proj_set(p, INTDIM_PROJ_THREADS, threads), INTDIM_OK);
            ck_assert_int_eq(intdim_trainer_create(&t, p, theta, theta0, NULL,
                                                   INTDIM_TRAINER_BORROW_THETA0, zero_grad,
                                                   NULL),
                             INTDIM_OK);
            ck_assert_int_eq(intdim_trainer_set_theta_d(t, x, d), INTDIM_OK);
            memset(theta, 0xff, D * sizeof(float)); /* NaN: every entry must be written */
            ck_assert_int_eq(intdim_trainer_sync(t), INTDIM_OK);
            ck_assert_int_eq(intdim_proj_apply(p, x, delta), INTDIM_OK);
            for (size_t i = 0; i < D; i++) {
                float want = theta0[i] + delta[i];
                if (memcmp(&theta[i], &want, sizeof want) != 0)
                    ck_abort_msg("block %g, %d threads: theta[%zu] = %a, want %a", blocks[b],
                                 threads, i, (double)theta[i], (double)want);
            }
            intdim_trainer_destroy(t);
            intdim_proj_destroy(p);
        }
    }
    free(theta);
    free(theta0);
    free(delta);
}
END_TEST

/* Every transform kernel (and both gather variants of the SIMD ones, through the CPU's
 * choice) trains to the same bits: three Adam steps from the same start, the host buffer
 * and theta_d compared with the portable kernel's. */
START_TEST(training_is_the_same_on_every_kernel)
{
    const proj_config *c = &g_configs[_i];
    float want_theta[TEST_D], want_x[TEST_D];
    int have_reference = 0;
    for (int kernel = INTDIM_KERNEL_PORTABLE; kernel <= INTDIM_KERNEL_AVX512; kernel++) {
        rig r;
        if (!rig_open_on_kernel(&r, c, 6, kernel))
            continue;
        size_t d = intdim_trainer_d(r.t);
        float x[TEST_D];
        random_theta_d(x, d, 8);
        ck_assert_int_eq(intdim_trainer_set_theta_d(r.t, x, d), INTDIM_OK);
        ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_LR, 0.05), INTDIM_OK);
        for (int step = 0; step < 3; step++)
            ck_assert_int_eq(intdim_trainer_step(r.t, NULL), INTDIM_OK);
        ck_assert_int_eq(intdim_trainer_sync(r.t), INTDIM_OK);
        ck_assert_int_eq(intdim_trainer_get_theta_d(r.t, x, d), INTDIM_OK);
        if (!have_reference) {
            memcpy(want_theta, r.theta, sizeof want_theta);
            memcpy(want_x, x, d * sizeof(float));
            have_reference = 1;
        } else {
            ck_assert_msg(memcmp(x, want_x, d * sizeof(float)) == 0,
                          "%s: theta_d on kernel %d differs from the portable kernel's", c->name,
                          kernel);
            ck_assert_msg(memcmp(r.theta, want_theta, sizeof want_theta) == 0,
                          "%s: theta on kernel %d differs from the portable kernel's", c->name,
                          kernel);
        }
        rig_close(&r);
    }
}
END_TEST

START_TEST(identity_step_is_plain_sgd_on_theta)
{
    rig r;
    rig_open(&r, &g_configs[0], 1);
    ck_assert_uint_eq(intdim_trainer_d(r.t), TEST_D);
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_OPTIMIZER, INTDIM_OPT_SGD), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_LR, 0.25), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_step(r.t, NULL), INTDIM_OK);
    float after[TEST_D];
    ck_assert_int_eq(intdim_trainer_get_theta_d(r.t, after, TEST_D), INTDIM_OK);
    for (size_t i = 0; i < TEST_D; i++) {
        double g = 2.0 * r.q.w[i] * ((double)r.theta0[i] - r.q.c[i]);
        ck_assert_double_eq_tol(after[i], -0.25 * g, 1e-6);
    }
    /* sync writes theta0 + theta_d */
    ck_assert_int_eq(intdim_trainer_sync(r.t), INTDIM_OK);
    for (size_t i = 0; i < TEST_D; i++)
        ck_assert_float_eq(r.theta[i], r.theta0[i] + after[i]);
    rig_close(&r);
}
END_TEST

/* Everything a failed step must leave alone, bit for bit. */
typedef struct snapshot {
    float theta_d[TEST_D];
    uint64_t steps;
    char path[256];
} snapshot;

static void snap(rig *r, snapshot *s, const char *tag)
{
    size_t d = intdim_trainer_d(r->t);
    ck_assert_int_eq(intdim_trainer_get_theta_d(r->t, s->theta_d, d), INTDIM_OK);
    s->steps = intdim_trainer_steps_done(r->t);
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(s->path, sizeof s->path, "%s/train_snap_%s_%d.ckpt", dir, tag, (int)getpid());
    ck_assert_int_eq(intdim_trainer_save(r->t, s->path), INTDIM_OK);
}

static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        same = ca == cb;
        if (ca == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

/* The trainer holds exactly the snapshot's state (the checkpoint covers theta_d, the
 * moments, step counts and settings), and the host buffer holds theta0 + P(theta_d). */
static void assert_unchanged(rig *r, const snapshot *s)
{
    snapshot now;
    snap(r, &now, "now");
    ck_assert_msg(same_file(s->path, now.path), "state changed by a failed step");
    unlink(now.path);
    float delta[TEST_D];
    ck_assert_int_eq(intdim_proj_apply(r->p, s->theta_d, delta), INTDIM_OK);
    for (size_t i = 0; i < TEST_D; i++)
        ck_assert_float_eq(r->theta[i], r->theta0[i] + delta[i]);
}

START_TEST(callback_error_keeps_state)
{
    rig r, ref;
    rig_open(&r, &g_configs[1], 2);
    rig_open(&ref, &g_configs[1], 2);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(intdim_trainer_step(r.t, NULL), INTDIM_OK);
        ck_assert_int_eq(intdim_trainer_step(ref.t, NULL), INTDIM_OK);
    }
    snapshot s;
    snap(&r, &s, "cb");
    r.q.fail_at = 3;
    r.q.fail_rc = 42;
    double loss = 0.0;
    ck_assert_int_eq(intdim_trainer_step(r.t, &loss), INTDIM_ECALLBACK);
    ck_assert(strstr(intdim_last_error(), "42") != NULL);
    assert_unchanged(&r, &s);
    /* the retried step is step 3 again and the run continues as if nothing happened */
    r.q.fail_at = -1;
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(intdim_trainer_step(r.t, NULL), INTDIM_OK);
        ck_assert_int_eq(intdim_trainer_step(ref.t, NULL), INTDIM_OK);
    }
    float a[TEST_D], b[TEST_D];
    intdim_trainer_get_theta_d(r.t, a, TEST_D);
    intdim_trainer_get_theta_d(ref.t, b, TEST_D);
    ck_assert_mem_eq(a, b, intdim_trainer_d(r.t) * sizeof(float));
    unlink(s.path);
    rig_close(&r);
    rig_close(&ref);
}
END_TEST

/* Does row i of P have a nonzero (does g_D[i] reach g_d)? */
static int row_reaches_theta_d(const intdim_proj *p, size_t i)
{
    size_t d = intdim_proj_d(p);
    float e[TEST_D] = {0}, y[TEST_D];
    int reaches = 0;
    for (size_t j = 0; j < d; j++) {
        e[j] = 1.0f;
        ck_assert_int_eq(intdim_proj_apply(p, e, y), INTDIM_OK);
        reaches |= y[i] != 0.0f;
        e[j] = 0.0f;
    }
    return reaches;
}

/* One bad value of each kind with NONFINITE_STOP: ENONFINITE, state as before. */
START_TEST(nonfinite_stop_keeps_state)
{
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    for (int where = 0; where < 2; where++)
        for (int b = 0; b < 3; b++) {
            rig r;
            rig_open(&r, &g_configs[1 + (b % 3)], 4); /* dense, sparse, fastfood */
            ck_assert_int_eq(intdim_trainer_step(r.t, NULL), INTDIM_OK);
            ck_assert_int_eq(intdim_trainer_step(r.t, NULL), INTDIM_OK);
            snapshot s;
            snap(&r, &s, "nf");
            r.q.bad_value = bad[b];
            if (where == 0)
                r.q.bad_loss_at = 2;
            else
                r.q.bad_grad_at = 2, r.q.bad_index = 17;
            /* a sparse P may have empty rows: use one that reaches theta_d */
            while (!row_reaches_theta_d(r.p, r.q.bad_index))
                r.q.bad_index = (r.q.bad_index + 1) % TEST_D;
            ck_assert_int_eq(intdim_trainer_step(r.t, NULL), INTDIM_ENONFINITE);
            assert_unchanged(&r, &s);
            unlink(s.path);
            rig_close(&r);
        }
}
END_TEST

/* The documented limit of checking g_d: a NaN in a gradient entry that no column of P
 * touches never reaches theta_d, and the step goes on (theta_d stays finite). */
START_TEST(nonfinite_entry_outside_the_subspace_is_harmless)
{
    /* A row no column touches, by construction: a sparse P with d = 2 columns at density
     * 0.05 has on average 2.5 nonzeros per column (a column that draws none gets one), so
     * about 5 of the 50 rows are used; using all 50 would need a nonzero in each row's pair
     * of entries (probability ~0.1 each), about 1e-50. The projection is a pure function of
     * its seed, and the precondition is asserted, not assumed. */
    rig r;
    quad_init(&r.q, TEST_D, 15);
    for (size_t i = 0; i < TEST_D; i++)
        r.theta0[i] = (float)(0.1 * sin((double)i));
    int key = INTDIM_PROJ_SPARSE_DENSITY;
    double density = 0.05;
    ck_assert_int_eq(intdim_proj_create_ex(&r.p, INTDIM_PROJ_SPARSE, TEST_D, 2, 4, 0, NULL, 1,
                                           &key, &density), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_set(r.p, INTDIM_PROJ_THREADS, 1), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_create(&r.t, r.p, r.theta, r.theta0, NULL, 0, quad_grad,
                                           &r.q), INTDIM_OK);
    size_t i = 0;
    while (i < TEST_D && row_reaches_theta_d(r.p, i))
        i++;
    ck_assert_msg(i < TEST_D, "precondition: the sparse projection has no empty row");
    r.q.bad_grad_at = 0, r.q.bad_index = i, r.q.bad_value = NAN;
    ck_assert_int_eq(intdim_trainer_step(r.t, NULL), INTDIM_OK);
    ck_assert_uint_eq(r.q.calls, 1); /* the NaN was handed to the trainer */
    /* a real update (NONFINITE_STOP is the default, so nothing was skipped) */
    ck_assert_uint_eq(intdim_trainer_steps_done(r.t), 1);
    ck_assert_uint_eq(r.t->updates, 1);
    ck_assert_uint_eq(r.t->skipped, 0);
    float x[TEST_D];
    ck_assert_int_eq(intdim_trainer_get_theta_d(r.t, x, TEST_D), INTDIM_OK);
    int moved = 0;
    for (size_t j = 0; j < intdim_trainer_d(r.t); j++) {
        ck_assert(isfinite(x[j]));
        moved |= x[j] != 0.0f;
    }
    ck_assert(moved);
    rig_close(&r);
}
END_TEST

START_TEST(overflowing_update_is_refused)
{
    rig r;
    rig_open(&r, &g_configs[1], 6);
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_OPTIMIZER, INTDIM_OPT_SGD), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_LR, 1e9), INTDIM_OK);
    r.q.grad_scale = 1e32f; /* finite gradient, update beyond FLT_MAX */
    snapshot s;
    snap(&r, &s, "ovf");
    ck_assert_int_eq(intdim_trainer_step(r.t, NULL), INTDIM_ENONFINITE);
    assert_unchanged(&r, &s);
    unlink(s.path);
    rig_close(&r);
}
END_TEST

START_TEST(nonfinite_skip_counts_the_step)
{
    rig r;
    rig_open(&r, &g_configs[1], 7);
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_NONFINITE, INTDIM_NONFINITE_SKIP),
                     INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_step(r.t, NULL), INTDIM_OK);
    float before[TEST_D], after[TEST_D];
    intdim_trainer_get_theta_d(r.t, before, TEST_D);
    r.q.bad_grad_at = 1, r.q.bad_index = 3, r.q.bad_value = NAN;
    double loss;
    ck_assert_int_eq(intdim_trainer_step(r.t, &loss), INTDIM_OK);
    ck_assert(isfinite(loss)); /* the loss was fine, the gradient was not */
    ck_assert_uint_eq(intdim_trainer_steps_done(r.t), 2);
    intdim_trainer_get_theta_d(r.t, after, TEST_D);
    ck_assert_mem_eq(before, after, intdim_trainer_d(r.t) * sizeof(float));
    /* the next step is step 2: the host moves on to a new minibatch */
    ck_assert_int_eq(intdim_trainer_step(r.t, NULL), INTDIM_OK);
    ck_assert_uint_eq(r.q.last_step, 2);
    intdim_trainer_get_theta_d(r.t, after, TEST_D);
    ck_assert(memcmp(before, after, intdim_trainer_d(r.t) * sizeof(float)) != 0);
    rig_close(&r);
}
END_TEST

typedef struct counters {
    int evals, progress, stop_progress_at, eval_fail_at;
    double eval_value;
    uint64_t progress_steps[32];
    double progress_metric[32];
} counters;

static int count_eval(void *user, const float *theta, double *metric)
{
    counters *c = user;
    (void)theta;
    c->evals++;
    *metric = c->eval_value + c->evals;
    return c->evals == c->eval_fail_at ? -3 : 0;
}

static int count_progress(void *user, uint64_t step, double loss, double metric)
{
    counters *c = user;
    ck_assert(isfinite(loss));
    if (c->progress < 32) {
        c->progress_steps[c->progress] = step;
        c->progress_metric[c->progress] = metric;
    }
    c->progress++;
    return c->progress == c->stop_progress_at;
}

START_TEST(run_evaluates_every_k_and_at_the_end)
{
    rig r;
    rig_open(&r, &g_configs[1], 8);
    counters c = {0};
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_EVAL_EVERY, 3), INTDIM_OK);
    double final_metric;
    ck_assert_int_eq(intdim_trainer_run(r.t, 10, count_eval, &c, count_progress, &c,
                                        &final_metric), INTDIM_OK);
    ck_assert_int_eq(c.evals, 4); /* after steps 3, 6, 9 and at the end (10) */
    ck_assert_int_eq(c.progress, 10);
    ck_assert_double_eq(final_metric, 4.0);
    ck_assert_uint_eq(c.progress_steps[0], 1);
    ck_assert(isnan(c.progress_metric[0]));
    ck_assert_double_eq(c.progress_metric[2], 1.0);
    ck_assert_uint_eq(intdim_trainer_steps_done(r.t), 10);

    /* the progress callback stops the run */
    counters stop = {.stop_progress_at = 2};
    ck_assert_int_eq(intdim_trainer_run(r.t, 10, NULL, NULL, count_progress, &stop,
                                        &final_metric), INTDIM_EINTERRUPTED);
    ck_assert_uint_eq(intdim_trainer_steps_done(r.t), 12);
    ck_assert(isnan(final_metric));

    /* an evaluation error stops it with ECALLBACK, a NaN metric with ENONFINITE */
    counters fail = {.eval_fail_at = 1};
    ck_assert_int_eq(intdim_trainer_run(r.t, 10, count_eval, &fail, NULL, NULL, NULL),
                     INTDIM_ECALLBACK);
    ck_assert_uint_eq(intdim_trainer_steps_done(r.t), 15);
    counters nan_metric = {.eval_value = NAN};
    ck_assert_int_eq(intdim_trainer_evaluate(r.t, count_eval, &nan_metric, &final_metric),
                     INTDIM_ENONFINITE);
    /* zero steps: one evaluation */
    counters once = {0};
    ck_assert_int_eq(intdim_trainer_run(r.t, 0, count_eval, &once, NULL, NULL, &final_metric),
                     INTDIM_OK);
    ck_assert_int_eq(once.evals, 1);
    rig_close(&r);
}
END_TEST

/* The host buffer holds theta0 + P(theta_d), bit for bit, for the trainer's theta_d. */
static void assert_buffer_in_sync(rig *r, const char *when)
{
    size_t d = intdim_trainer_d(r->t);
    float x[TEST_D], delta[TEST_D];
    ck_assert_int_eq(intdim_trainer_get_theta_d(r->t, x, d), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_apply(r->p, x, delta), INTDIM_OK);
    for (size_t i = 0; i < TEST_D; i++) {
        float want = r->theta0[i] + delta[i];
        ck_assert_msg(memcmp(&r->theta[i], &want, sizeof want) == 0,
                      "%s: theta[%zu] = %a, want %a", when, i, (double)r->theta[i],
                      (double)want);
    }
}

/* After intdim_trainer_run the host's model is the trained one, whatever ended the run. */
START_TEST(run_leaves_host_buffer_in_sync)
{
    rig r;
    rig_open(&r, &g_configs[_i], 12);
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_LR, 0.05), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_run(r.t, 5, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    assert_buffer_in_sync(&r, "run without evaluation");

    counters stop = {.stop_progress_at = 2};
    ck_assert_int_eq(intdim_trainer_run(r.t, 10, NULL, NULL, count_progress, &stop, NULL),
                     INTDIM_EINTERRUPTED);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "progress callback"));
    assert_buffer_in_sync(&r, "run stopped by its progress callback");

    counters every = {0};
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_EVAL_EVERY, 2), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_run(r.t, 3, count_eval, &every, NULL, NULL, NULL),
                     INTDIM_OK);
    assert_buffer_in_sync(&r, "run evaluated at its end");

    /* a setting that makes the next step fail (a decaying schedule with no length), after
     * a step that left the buffer behind: run fails and still leaves it in sync */
    ck_assert_int_eq(intdim_trainer_step(r.t, NULL), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_SCHEDULE, INTDIM_SCHED_COSINE),
                     INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_run(r.t, 4, NULL, NULL, NULL, NULL, NULL), INTDIM_ESTATE);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "TOTAL_STEPS"));
    assert_buffer_in_sync(&r, "run refused by its settings");
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_SCHEDULE, INTDIM_SCHED_CONSTANT),
                     INTDIM_OK);

    /* zero steps and no evaluation: a sync */
    ck_assert_int_eq(intdim_trainer_step(r.t, NULL), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_run(r.t, 0, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    assert_buffer_in_sync(&r, "run of zero steps");
    rig_close(&r);
}
END_TEST

START_TEST(settings_and_arguments)
{
    rig r;
    rig_open(&r, &g_configs[1], 9);
    /* decaying schedules need a horizon */
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_SCHEDULE, INTDIM_SCHED_COSINE),
                     INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_step(r.t, NULL), INTDIM_ESTATE);
    ck_assert_uint_eq(r.q.calls, 0);
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_TOTAL_STEPS, 100), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_step(r.t, NULL), INTDIM_OK);
    double v;
    ck_assert_int_eq(intdim_trainer_get(r.t, INTDIM_TRAIN_TOTAL_STEPS, &v), INTDIM_OK);
    ck_assert_double_eq(v, 100.0);
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_LR, NAN), INTDIM_EINVAL);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "intdim_trainer_set: INTDIM_TRAIN_LR = nan"));
    ck_assert_int_eq(intdim_trainer_set(r.t, 99, 1.0), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_trainer_set(NULL, INTDIM_TRAIN_LR, 1.0), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_trainer_step(NULL, NULL), INTDIM_EINVAL);
    float x[TEST_D] = {0};
    x[0] = NAN;
    ck_assert_int_eq(intdim_trainer_set_theta_d(r.t, x, intdim_trainer_d(r.t)), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_trainer_set_theta_d(r.t, x, 3), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_trainer_get_theta_d(r.t, x, 3), INTDIM_EINVAL);
    /* reset: back to the start, settings kept */
    ck_assert_int_eq(intdim_trainer_reset(r.t), INTDIM_OK);
    ck_assert_uint_eq(intdim_trainer_steps_done(r.t), 0);
    ck_assert_int_eq(intdim_trainer_get_theta_d(r.t, x, TEST_D), INTDIM_OK);
    for (size_t j = 0; j < intdim_trainer_d(r.t); j++)
        ck_assert_float_eq(x[j], 0.0f);
    ck_assert_int_eq(intdim_trainer_get(r.t, INTDIM_TRAIN_SCHEDULE, &v), INTDIM_OK);
    ck_assert_double_eq(v, INTDIM_SCHED_COSINE);

    intdim_trainer *t = (intdim_trainer *)1;
    ck_assert_int_eq(intdim_trainer_create(&t, NULL, r.theta, NULL, NULL, 0, quad_grad, &r.q),
                     INTDIM_EINVAL);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(intdim_trainer_create(&t, r.p, NULL, NULL, NULL, 0, quad_grad, &r.q),
                     INTDIM_EINVAL);
    ck_assert_int_eq(intdim_trainer_create(&t, r.p, r.theta, NULL, NULL, 0, NULL, &r.q),
                     INTDIM_EINVAL);
    ck_assert_int_eq(intdim_trainer_create(&t, r.p, r.theta, NULL, NULL, 8u, quad_grad, &r.q),
                     INTDIM_EINVAL);
    ck_assert_int_eq(intdim_trainer_create(&t, r.p, r.theta, r.theta, NULL,
                                           INTDIM_TRAINER_BORROW_THETA0, quad_grad, &r.q),
                     INTDIM_EINVAL);
    ck_assert_int_eq(intdim_trainer_create(&t, r.p, r.theta, r.theta0, r.theta, 0, quad_grad,
                                           &r.q), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_trainer_create(&t, r.p, r.theta, r.theta0, r.theta0, 0, quad_grad,
                                           &r.q), INTDIM_EINVAL);
    /* buffers that only partly overlap, in one allocation: refused as well */
    size_t D = intdim_proj_D(r.p);
    float *big = calloc(2 * D, sizeof(float));
    ck_assert_int_eq(intdim_trainer_create(&t, r.p, big, r.theta0, big + D - 1, 0, quad_grad,
                                           &r.q), INTDIM_EINVAL);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "grad must not overlap the theta"));
    ck_assert_int_eq(intdim_trainer_create(&t, r.p, big + 4, NULL, big, 0, quad_grad, &r.q),
                     INTDIM_EINVAL);
    ck_assert_int_eq(intdim_trainer_create(&t, r.p, big, big + 4, NULL,
                                           INTDIM_TRAINER_BORROW_THETA0, quad_grad, &r.q),
                     INTDIM_EINVAL);
    ck_assert_int_eq(intdim_trainer_create(&t, r.p, r.theta, big + 1, big + D,
                                           INTDIM_TRAINER_BORROW_THETA0, quad_grad, &r.q),
                     INTDIM_EINVAL);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "grad must not overlap the theta0"));
    /* side by side is fine */
    ck_assert_int_eq(intdim_trainer_create(&t, r.p, big, NULL, big + D, 0, quad_grad, &r.q),
                     INTDIM_OK);
    intdim_trainer_destroy(t);
    free(big);
    rig_close(&r);
}
END_TEST

/* A host callback that calls back into its own trainer: calls that would change the state
 * the step is in the middle of updating are refused with INTDIM_ESTATE (the step then goes
 * on as if they had not been made); reads and saves are allowed. */
typedef struct reentry {
    quad *q;
    intdim_trainer *t;
    const char *ckpt;
    int statuses[9];
    int destroy_at_progress; /* progress callback destroys the trainer at this step (0: no) */
    uint64_t progress_calls;
} reentry;

static int reentering_grad(void *user, uint64_t step, const float *theta, float *grad,
                           double *loss)
{
    reentry *r = user;
    if (step == 1) {
        float x[TEST_D];
        double v, m;
        r->statuses[0] = intdim_trainer_step(r->t, &v);
        r->statuses[1] = intdim_trainer_run(r->t, 1, NULL, NULL, NULL, NULL, NULL);
        r->statuses[2] = intdim_trainer_set(r->t, INTDIM_TRAIN_LR, 0.5);
        r->statuses[3] = intdim_trainer_set_theta_d(r->t, x, 0) == INTDIM_EINVAL
                             ? intdim_trainer_get_theta_d(r->t, x, TEST_D)
                             : -100;
        r->statuses[4] = intdim_trainer_set_theta_d(r->t, x, intdim_trainer_d(r->t));
        r->statuses[5] = intdim_trainer_reset(r->t);
        r->statuses[6] = intdim_trainer_sync(r->t);
        r->statuses[7] = intdim_trainer_load(r->t, r->ckpt);
        r->statuses[8] = intdim_trainer_save(r->t, r->ckpt) == INTDIM_OK &&
                                 intdim_trainer_get(r->t, INTDIM_TRAIN_LR, &m) == INTDIM_OK
                             ? intdim_trainer_evaluate(r->t, quad_eval_for_reentry, r->q, &v)
                             : -100;
    }
    return quad_grad(r->q, step, theta, grad, loss);
}

static int destroying_progress(void *user, uint64_t step, double loss, double metric)
{
    (void)loss;
    (void)metric;
    reentry *r = user;
    r->progress_calls++;
    if (step == (uint64_t)r->destroy_at_progress)
        intdim_trainer_destroy(r->t);
    return 0;
}

START_TEST(callbacks_that_reenter_their_trainer)
{
    rig a;
    rig_open(&a, &g_configs[1], 5);
    reentry r = {.q = &a.q};
    char ckpt[] = "/tmp/intdim_reentry_XXXXXX";
    int fd = mkstemp(ckpt);
    ck_assert_int_ge(fd, 0);
    close(fd);
    r.ckpt = ckpt;
    intdim_trainer *t;
    ck_assert_int_eq(intdim_trainer_create(&t, a.p, a.theta, a.theta0, NULL, 0, reentering_grad,
                                           &r), INTDIM_OK);
    r.t = t;
    ck_assert_int_eq(intdim_trainer_set(t, INTDIM_TRAIN_LR, 0.05), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_run(t, 3, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    static const char *names[9] = {"step", "run", "set", "get_theta_d", "set_theta_d", "reset",
                                   "sync", "load", "evaluate"};
    for (int i = 0; i < 9; i++) {
        int want = i == 3 ? INTDIM_OK : INTDIM_ESTATE; /* reads are allowed */
        ck_assert_msg(r.statuses[i] == want, "%s from inside the step: %d, want %d", names[i],
                      r.statuses[i], want);
    }
    ck_assert_uint_eq(intdim_trainer_steps_done(t), 3); /* nothing nested ran */
    double lr;
    ck_assert_int_eq(intdim_trainer_get(t, INTDIM_TRAIN_LR, &lr), INTDIM_OK);
    ck_assert(lr == 0.05);
    /* the checkpoint saved from inside step 1 holds step 1's starting state */
    ck_assert_int_eq(intdim_trainer_load(t, ckpt), INTDIM_OK);
    ck_assert_uint_eq(intdim_trainer_steps_done(t), 1);
    intdim_trainer_destroy(t);
    unlink(ckpt);

    /* a progress callback that destroys its trainer: run stops at once, and the trainer is
     * freed when run returns (ASan in CI: no use after free; the counts: no leak) */
    fail_alloc_install(0);
    reentry d = {.q = &a.q, .destroy_at_progress = 2};
    ck_assert_int_eq(intdim_trainer_create(&t, a.p, a.theta, a.theta0, NULL, 0, quad_grad,
                                           &a.q), INTDIM_OK);
    d.t = t;
    ck_assert_int_eq(intdim_trainer_run(t, 10, NULL, NULL, destroying_progress, &d, NULL),
                     INTDIM_EINTERRUPTED);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "destroyed"));
    ck_assert_uint_eq(d.progress_calls, 2);
    fail_alloc_remove();
    ck_assert_int_eq(g_fail.allocs, g_fail.frees);
    rig_close(&a);
}
END_TEST

/* Which base point the trainer writes from, once the caller's arrays change after create:
 * a copied theta0 (theta0 given, no flag) keeps the values at create; a borrowed one
 * (INTDIM_TRAINER_BORROW_THETA0) follows the caller's array; theta0 NULL takes the host
 * buffer's contents at create, as a copy (the trainer overwrites that buffer). */
START_TEST(theta0_copied_borrowed_or_taken_from_the_buffer)
{
    rig r;
    rig_open(&r, &g_configs[1], 10);
    float buf[TEST_D], base[TEST_D], old_base[TEST_D], delta[TEST_D], x[TEST_D];
    for (size_t i = 0; i < TEST_D; i++)
        old_base[i] = (float)i;
    random_theta_d(x, 7, 3);
    ck_assert_int_eq(intdim_proj_apply(r.p, x, delta), INTDIM_OK);
    int nonzero = 0;
    for (size_t i = 0; i < TEST_D; i++)
        nonzero += delta[i] != 0.0f;
    ck_assert_int_gt(nonzero, 0); /* the sync really writes theta0 + something */
    const char *names[3] = {"theta0 NULL (from the buffer)", "theta0 copied",
                            "theta0 borrowed"};
    for (int mode = 0; mode < 3; mode++) {
        intdim_trainer *t;
        memcpy(base, old_base, sizeof base);
        memcpy(buf, old_base, sizeof buf);
        const float *theta0 = mode == 0 ? NULL : base;
        unsigned flags = mode == 2 ? INTDIM_TRAINER_BORROW_THETA0 : 0;
        ck_assert_int_eq(intdim_trainer_create(&t, r.p, buf, theta0, NULL, flags, quad_grad,
                                               &r.q), INTDIM_OK);
        /* after create: a new base, and the buffer scribbled on (mode 0 must not read it
         * again) */
        for (size_t i = 0; i < TEST_D; i++) {
            base[i] = 100.0f - 3.0f * (float)i;
            buf[i] = -7.0f;
        }
        const float *want_base = mode == 2 ? base : old_base;
        ck_assert_int_eq(intdim_trainer_set_theta_d(t, x, 7), INTDIM_OK);
        for (int sync = 0; sync < 2; sync++) { /* theta0 survives a sync */
            ck_assert_int_eq(intdim_trainer_sync(t), INTDIM_OK);
            for (size_t i = 0; i < TEST_D; i++) {
                float want = want_base[i] + delta[i];
                ck_assert_msg(memcmp(&buf[i], &want, sizeof want) == 0,
                              "%s, sync %d: theta[%zu] = %g, want %g", names[mode], sync, i,
                              (double)buf[i], (double)want);
            }
        }
        intdim_trainer_destroy(t);
    }
    rig_close(&r);
}
END_TEST

START_TEST(said_lambda_has_its_own_learning_rate)
{
    rig r;
    rig_open(&r, &g_configs[4], 12); /* SAID over dense: 5 + 2 */
    float x[TEST_D], after[TEST_D];
    random_theta_d(x, 7, 4);
    x[5] += 1.0f, x[6] += 1.0f;
    ck_assert_int_eq(intdim_trainer_set_theta_d(r.t, x, 7), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_OPTIMIZER, INTDIM_OPT_SGD), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_LR, 0.0), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_set(r.t, INTDIM_TRAIN_LAMBDA_LR, 0.1), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_step(r.t, NULL), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_get_theta_d(r.t, after, 7), INTDIM_OK);
    ck_assert_mem_eq(x, after, 5 * sizeof(float)); /* lr 0: the subspace did not move */
    ck_assert(after[5] != x[5] && after[6] != x[6]);  /* the scales did */
    rig_close(&r);
}
END_TEST

/* Bit-for-bit the same training whatever the projection's thread count: 1, 2 and all
 * available, for REFERENCE's single Fastfood block, stacked blocks of 2^16 (several per
 * thread) and SAID. D pads to 2^19, past the sizes where the transform and the blocks start
 * threads (2^17 and 2^16): a smaller D would run the same single-thread code three times. */
START_TEST(training_is_reproducible_across_thread_counts)
{
    enum { BIG_D = 300000, SUB_D = 20 };
    static float result[3][BIG_D];
    static float theta[BIG_D];
    static const size_t halves[2] = {BIG_D / 2, BIG_D - BIG_D / 2};
#ifdef INTDIM_HAVE_OPENMP
    /* The "2" run must really get two threads. intdim__threads caps a request at
     * omp_get_max_threads(), 1 on a one-CPU machine or under OMP_NUM_THREADS=1: raise it
     * for this test (oversubscribing changes no bits), and restore it at the end. */
    int max_before = omp_get_max_threads();
    if (max_before < 2)
        omp_set_num_threads(2);
    ck_assert_int_eq(intdim__threads(2), 2);
    ck_assert_int_ge(intdim__threads(0), 2); /* "all" is at least as many */
#else
    /* Without OpenMP the library runs one thread whatever is asked: the three runs would
     * be the same code, so there is nothing to compare. Check has no skip status. */
    fprintf(stderr, "training_is_reproducible_across_thread_counts: skipped: no OpenMP\n");
    return;
#endif
    quad q;
    quad_init(&q, BIG_D, 3);
    for (int form = 0; form < 3; form++) {
        for (int run = 0; run < 3; run++) {
            int threads = run == 2 ? 0 : run + 1; /* 1, 2, 0 = all */
            intdim_proj *p;
            intdim_trainer *t;
            if (form == 2) {
                ck_assert_int_eq(intdim_proj_create_said(&p, INTDIM_PROJ_FASTFOOD, BIG_D, SUB_D,
                                                         2, halves, 5), INTDIM_OK);
            } else {
                int key = INTDIM_PROJ_FASTFOOD_BLOCK;
                double block = form == 1 ? 65536.0 : 0.0;
                ck_assert_int_eq(intdim_proj_create_ex(&p, INTDIM_PROJ_FASTFOOD, BIG_D, SUB_D,
                                                       5, 0, NULL, 1, &key, &block),
                                 INTDIM_OK);
            }
            ck_assert_int_eq(intdim_proj_set(p, INTDIM_PROJ_THREADS, threads), INTDIM_OK);
            memset(theta, 0, sizeof theta);
            ck_assert_int_eq(intdim_trainer_create(&t, p, theta, NULL, NULL, 0, quad_grad, &q),
                             INTDIM_OK);
            ck_assert_int_eq(intdim_trainer_set(t, INTDIM_TRAIN_CLIP_NORM, 1.0), INTDIM_OK);
            ck_assert_int_eq(intdim_trainer_run(t, 8, quad_eval, &q, NULL, NULL, NULL),
                             INTDIM_OK);
            memcpy(result[run], theta, sizeof theta); /* synced by the final evaluation */
            intdim_trainer_destroy(t);
            intdim_proj_destroy(p);
        }
        ck_assert_msg(memcmp(result[0], result[1], sizeof result[0]) == 0, "form %d: 1 vs 2",
                      form);
        ck_assert_msg(memcmp(result[0], result[2], sizeof result[0]) == 0, "form %d: 1 vs all",
                      form);
        int moved = 0;
        for (size_t i = 0; i < BIG_D && !moved; i++)
            moved = result[0][i] != 0.0f;
        ck_assert_msg(moved, "form %d: training did not move theta", form);
    }
    quad_free(&q);
#ifdef INTDIM_HAVE_OPENMP
    omp_set_num_threads(max_before);
#endif
}
END_TEST

/* ---- the toy problem: intrinsic dimension 10 --------------------------------------- */

static double train_toy(int kind, size_t d, uint64_t seed)
{
    static float theta[TOY_D], theta0[TOY_D];
    toy_problem tp;
    toy_init(&tp, seed);
    toy_theta0(seed, theta0);
    intdim_proj *p;
    intdim_trainer *t;
    ck_assert_int_eq(intdim_proj_create(&p, kind, TOY_D, d, seed), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_set(p, INTDIM_PROJ_THREADS, 1), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_create(&t, p, theta, theta0, NULL, 0, toy_grad, &tp),
                     INTDIM_OK);
    /* the recipe of examples/toy/toy.c */
    const uint64_t steps = 20000;
    ck_assert_int_eq(intdim_trainer_set(t, INTDIM_TRAIN_LR, 0.1), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_set(t, INTDIM_TRAIN_SCHEDULE, INTDIM_SCHED_COSINE),
                     INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_set(t, INTDIM_TRAIN_TOTAL_STEPS, (double)steps), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_run(t, steps, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_sync(t), INTDIM_OK);
    double loss = toy_loss(&tp, theta);
    intdim_trainer_destroy(t);
    intdim_proj_destroy(p);
    return loss;
}

START_TEST(toy_problem_has_intrinsic_dimension_10)
{
    const int kinds[3] = {INTDIM_PROJ_DENSE, INTDIM_PROJ_SPARSE, INTDIM_PROJ_FASTFOOD};
    const char *names[3] = {"dense", "sparse", "fastfood"};
    const size_t solvable[3] = {10, 11, 15}, unsolvable[2] = {9, 5};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 3; i++) {
            double loss = train_toy(kinds[k], solvable[i], 1);
            ck_assert_msg(loss < 1e-8, "%s d = %zu: loss %g", names[k], solvable[i], loss);
        }
        for (int i = 0; i < 2; i++) {
            double loss = train_toy(kinds[k], unsolvable[i], 1);
            ck_assert_msg(loss > 1e-4, "%s d = %zu: loss %g", names[k], unsolvable[i], loss);
        }
    }
    double full = train_toy(INTDIM_PROJ_IDENTITY, TOY_D, 1);
    ck_assert_msg(full < 1e-8, "identity: loss %g", full);
}
END_TEST

/* ---- allocation failure injection -------------------------------------------------- */

/* Every public step of a training session; the first failure must be ENOMEM. */
static int session(const char *path, const proj_config *config)
{
    quad q;
    quad_init(&q, TEST_D, 1);
    float theta[TEST_D] = {0}, theta0[TEST_D] = {0};
    intdim_proj *p = NULL, *p2 = NULL;
    intdim_trainer *t = NULL, *t2 = NULL;
    int status = make_proj(config, 1, &p);
    if (status == INTDIM_OK)
        status = intdim_trainer_create(&t, p, theta, theta0, NULL, 0, quad_grad, &q);
    if (status == INTDIM_OK)
        status = intdim_trainer_run(t, 3, quad_eval, &q, NULL, NULL, NULL);
    if (status == INTDIM_OK)
        status = intdim_trainer_evaluate(t, quad_eval, &q, NULL);
    if (status == INTDIM_OK)
        status = intdim_trainer_sync(t);
    if (status == INTDIM_OK)
        status = intdim_trainer_save(t, path);
    if (status == INTDIM_OK)
        status = intdim_trainer_load(t, path);
    /* a checkpoint records a seed, not explicit tables: those load onto the same projection */
    if (status == INTDIM_OK && !config->tables)
        status = intdim_checkpoint_proj(&p2, path);
    if (status == INTDIM_OK)
        status = intdim_trainer_create(&t2, config->tables ? p : p2, theta, theta0, NULL, 0,
                                       quad_grad, &q);
    if (status == INTDIM_OK)
        status = intdim_trainer_load(t2, path);
    intdim_trainer_destroy(t2);
    intdim_trainer_destroy(t);
    intdim_proj_destroy(p2);
    intdim_proj_destroy(p);
    quad_free(&q);
    return status;
}

START_TEST(allocation_failure_at_every_site)
{
    const proj_config *config = &g_configs[_i];
    char path[256];
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, sizeof path, "%s/train_alloc_%d.ckpt", dir, (int)getpid());
    long k;
    for (k = 1; k < 10000; k++) {
        fail_alloc_install(k);
        int status = session(path, config);
        fail_alloc_remove();
        ck_assert_msg(g_fail.allocs == g_fail.frees, "%s: failing allocation %ld leaked %ld "
                      "blocks", config->name, k, g_fail.allocs - g_fail.frees);
        if (g_fail.attempts < k) {
            ck_assert_int_eq(status, INTDIM_OK); /* no allocation failed: success */
            break;
        }
        ck_assert_msg(status == INTDIM_ENOMEM, "%s: failing allocation %ld gave %s (%s)",
                      config->name, k, intdim_strerror(status), intdim_last_error());
    }
    ck_assert(k > 5 && k < 10000);
    unlink(path);
}
END_TEST

int main(void)
{
    allow_two_threads(); /* the configs on lanes, the thread comparisons */
    Suite *suite = suite_create("train");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, gradient_matches_finite_differences, 0, N_CONFIGS);
    tcase_add_loop_test(tc, host_buffer_holds_theta0_plus_projection, 0, N_CONFIGS);
    tcase_add_loop_test(tc, step_gradient_is_the_projections_vjp, 0, N_CONFIGS);
    tcase_add_test(tc, large_host_buffer_holds_theta0_plus_projection);
    tcase_add_loop_test(tc, training_is_the_same_on_every_kernel, 0, N_CONFIGS);
    tcase_add_test(tc, identity_step_is_plain_sgd_on_theta);
    tcase_add_test(tc, callback_error_keeps_state);
    tcase_add_test(tc, nonfinite_stop_keeps_state);
    tcase_add_test(tc, nonfinite_entry_outside_the_subspace_is_harmless);
    tcase_add_test(tc, overflowing_update_is_refused);
    tcase_add_test(tc, nonfinite_skip_counts_the_step);
    tcase_add_test(tc, run_evaluates_every_k_and_at_the_end);
    tcase_add_loop_test(tc, run_leaves_host_buffer_in_sync, 0, N_CONFIGS);
    tcase_add_test(tc, settings_and_arguments);
    tcase_add_test(tc, theta0_copied_borrowed_or_taken_from_the_buffer);
    tcase_add_test(tc, callbacks_that_reenter_their_trainer);
    tcase_add_test(tc, said_lambda_has_its_own_learning_rate);
    tcase_add_test(tc, training_is_reproducible_across_thread_counts);
    tcase_add_test(tc, toy_problem_has_intrinsic_dimension_10);
    tcase_add_loop_test(tc, allocation_failure_at_every_site, 0, N_CONFIGS);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = runner_exit_status(runner) != EXIT_SUCCESS; /* also: no test ran */
    srunner_free(runner);
    return failed == 0 ? 0 : 1;
}
