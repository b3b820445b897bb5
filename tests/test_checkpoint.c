/* Checkpoints: bitwise round trip, refusal of every single-byte corruption and every
 * truncation of a small file (leaving the trainer untouched), refusal of another theta0
 * or projection, recreation of the projection, atomic writes. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fail_alloc.h"
#include "internal.h"
#include "optim.h"
#include "test_threads.h"


enum { D = 16, N_GROUPS = 2 };
static const size_t g_groups[N_GROUPS] = {6, 10};
static char g_dir[64];

static int host_grad(void *user, uint64_t step, const float *theta, float *grad, double *loss)
{
    (void)user;
    double l = 0.0;
    for (size_t i = 0; i < D; i++) {
        double r = (double)theta[i] - 0.1 * (double)(i % 5) - 0.01 * (double)(step % 3);
        grad[i] = (float)(2.0 * r);
        l += r * r;
    }
    *loss = l;
    return 0;
}

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", g_dir, name);
}

typedef struct rig {
    intdim_proj *p;
    intdim_trainer *t;
    float theta[D], theta0[D];
} rig;

/* SAID over dense with two groups: every field of the description is non-trivial. */
static void rig_open(rig *r, uint64_t seed, float theta0_shift)
{
    for (size_t i = 0; i < D; i++)
        r->theta0[i] = (float)i * 0.01f + theta0_shift;
    ck_assert_int_eq(intdim_proj_create_said(&r->p, INTDIM_PROJ_DENSE, D, 5, N_GROUPS, g_groups,
                                             seed), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_set(r->p, INTDIM_PROJ_THREADS, 1), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_create(&r->t, r->p, r->theta, r->theta0, NULL, 0, host_grad,
                                           NULL), INTDIM_OK);
}

static void rig_close(rig *r)
{
    intdim_trainer_destroy(r->t);
    intdim_proj_destroy(r->p);
}

static void configure(intdim_trainer *t)
{
    ck_assert_int_eq(intdim_trainer_set(t, INTDIM_TRAIN_OPTIMIZER, INTDIM_OPT_ADAMW), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_set(t, INTDIM_TRAIN_LR, 0.05), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_set(t, INTDIM_TRAIN_WEIGHT_DECAY, 0.01), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_set(t, INTDIM_TRAIN_SCHEDULE, INTDIM_SCHED_COSINE), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_set(t, INTDIM_TRAIN_WARMUP_STEPS, 2), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_set(t, INTDIM_TRAIN_TOTAL_STEPS, 20), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_set(t, INTDIM_TRAIN_LAMBDA_LR, 0.02), INTDIM_OK);
}

/* The whole mutable state of a trainer, for bitwise comparison. */
typedef struct state {
    float theta_d[8], m[8], v[8];
    double settings[16]; /* by value: the struct has padding */
    uint64_t step, updates, skipped;
} state;

static void capture(const intdim_trainer *t, state *s)
{
    memset(s, 0, sizeof *s);
    memcpy(s->theta_d, t->theta_d, t->d * sizeof(float));
    memcpy(s->m, t->m, t->d * sizeof(float));
    memcpy(s->v, t->v, t->d * sizeof(float));
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(intdim__optim_get(&t->settings, i, &s->settings[i]), INTDIM_OK);
    s->step = t->step, s->updates = t->updates, s->skipped = t->skipped;
}

static int same_state(const intdim_trainer *t, const state *s)
{
    state now;
    capture(t, &now);
    return memcmp(&now, s, sizeof now) == 0;
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

static void write_all(const char *path, const unsigned char *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    fclose(f);
}

/* The CRC the file formats use: the standard check value of CRC-32/IEEE, and agreement
 * with a bit-by-bit computation on every byte value and on split buffers (the constant
 * table in lib/hash.c is this loop's output). */
static uint32_t crc32_bitwise(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc & 1u) ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
    }
    return ~crc;
}

START_TEST(crc32_is_the_standard_one)
{
    ck_assert_uint_eq(intdim__crc32(0, "123456789", 9), 0xcbf43926u);
    unsigned char bytes[512];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (unsigned char)(i * 167u + (i >> 8));
    for (size_t n = 0; n <= sizeof bytes; n += 37)
        ck_assert_uint_eq(intdim__crc32(0, bytes, n), crc32_bitwise(0, bytes, n));
    uint32_t whole = intdim__crc32(0, bytes, sizeof bytes);
    ck_assert_uint_eq(intdim__crc32(intdim__crc32(0, bytes, 100), bytes + 100, sizeof bytes - 100),
                      whole);
}
END_TEST

START_TEST(round_trip_is_bitwise)
{
    char a_path[128], b_path[128];
    path_of(a_path, sizeof a_path, "a.ckpt");
    path_of(b_path, sizeof b_path, "b.ckpt");
    rig a, b;
    rig_open(&a, 7, 0.0f);
    rig_open(&b, 7, 0.0f);
    configure(a.t);
    ck_assert_int_eq(intdim_trainer_run(a.t, 5, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_save(a.t, a_path), INTDIM_OK);
    state saved;
    capture(a.t, &saved);
    /* b has default settings and no progress: load brings everything */
    ck_assert_int_eq(intdim_trainer_load(b.t, a_path), INTDIM_OK);
    ck_assert(same_state(b.t, &saved));
    ck_assert_int_eq(intdim_trainer_save(b.t, b_path), INTDIM_OK);
    size_t na, nb;
    unsigned char *fa = read_all(a_path, &na), *fb = read_all(b_path, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_mem_eq(fa, fb, na);
    free(fa);
    free(fb);
    /* both continue identically */
    ck_assert_int_eq(intdim_trainer_run(a.t, 7, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_run(b.t, 7, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    state sa;
    capture(a.t, &sa);
    ck_assert(same_state(b.t, &sa));
    ck_assert_mem_eq(a.theta, b.theta, sizeof a.theta);
    rig_close(&a);
    rig_close(&b);
}
END_TEST

START_TEST(checkpoint_recreates_the_projection)
{
    char path[128];
    path_of(path, sizeof path, "proj.ckpt");
    rig a;
    rig_open(&a, 11, 0.0f);
    ck_assert_int_eq(intdim_trainer_save(a.t, path), INTDIM_OK);
    intdim_proj *q = NULL;
    ck_assert_int_eq(intdim_checkpoint_proj(&q, path), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_kind_of(q), INTDIM_PROJ_DENSE);
    ck_assert_uint_eq(intdim_proj_D(q), D);
    ck_assert_uint_eq(intdim_proj_d(q), 5);
    ck_assert_uint_eq(intdim_proj_n_scales(q), N_GROUPS);
    ck_assert_uint_eq(intdim_proj_seed(q), 11);
    const float x[5] = {0.3f, -0.2f, 0.1f, 1.5f, 0.7f};
    float ya[D], yb[D];
    ck_assert_int_eq(intdim_proj_apply(a.p, x, ya), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_apply(q, x, yb), INTDIM_OK);
    ck_assert_mem_eq(ya, yb, sizeof ya);
    intdim_proj_destroy(q);
    ck_assert_int_eq(intdim_checkpoint_proj(NULL, path), INTDIM_EINVAL);
    rig_close(&a);
}
END_TEST

/* Every kind and creation parameter, and their combinations with SAID, survive the trip
 * through a file: the recreated projection is the same matrix (apply and vjp, bit for bit),
 * and a trainer on it that loads the checkpoint goes on exactly as the original. */
START_TEST(every_kind_is_recreated)
{
    static const size_t groups[2] = {6, 10};
    enum { SAID = INTDIM_PROJ_SAID, PER_GROUP = INTDIM_PROJ_FASTFOOD_PER_GROUP,
           BLOCK = INTDIM_PROJ_FASTFOOD_BLOCK, DENSITY = INTDIM_PROJ_SPARSE_DENSITY };
    const struct {
        int kind;
        size_t d, n_params;
        int params[2];
        double values[2];
    } cases[] = {
        {INTDIM_PROJ_IDENTITY, D, 0, {0}, {0}},
        {INTDIM_PROJ_DENSE, 4, 0, {0}, {0}},
        {INTDIM_PROJ_SPARSE, 4, 0, {0}, {0}},
        {INTDIM_PROJ_SPARSE, 4, 1, {DENSITY}, {0.5}},
        {INTDIM_PROJ_FASTFOOD, 4, 0, {0}, {0}},
        {INTDIM_PROJ_FASTFOOD, 4, 1, {PER_GROUP}, {1}},
        {INTDIM_PROJ_FASTFOOD, 6, 1, {BLOCK}, {4}},
        {INTDIM_PROJ_FASTFOOD, 6, 1, {SAID}, {1}},
        {INTDIM_PROJ_SPARSE, 6, 1, {SAID}, {1}},
        {INTDIM_PROJ_FASTFOOD, 12, 2, {SAID, PER_GROUP}, {1, 1}}, /* d_lin 10 > L_g = 8 */
        {INTDIM_PROJ_FASTFOOD, 9, 2, {SAID, BLOCK}, {1, 4}},      /* d_lin 7 > 4-row blocks */
    };
    char path[128];
    path_of(path, sizeof path, "kind.ckpt");
    float theta[D], theta0[D] = {0};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        intdim_proj *p, *q;
        intdim_trainer *t;
        int grouped = 0;
        for (size_t i = 0; i < cases[c].n_params; i++)
            grouped |= cases[c].params[i] == SAID || cases[c].params[i] == PER_GROUP;
        ck_assert_msg(intdim_proj_create_ex(&p, cases[c].kind, D, cases[c].d, 99,
                                            grouped ? 2 : 0, grouped ? groups : NULL,
                                            cases[c].n_params, cases[c].params,
                                            cases[c].values) == INTDIM_OK,
                      "case %zu: %s", c, intdim_last_error());
        ck_assert_int_eq(intdim_trainer_create(&t, p, theta, theta0, NULL, 0, host_grad, NULL),
                         INTDIM_OK);
        configure(t);
        ck_assert_int_eq(intdim_trainer_run(t, 2, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
        ck_assert_int_eq(intdim_trainer_save(t, path), INTDIM_OK);
        ck_assert_msg(intdim_checkpoint_proj(&q, path) == INTDIM_OK, "case %zu: %s", c,
                      intdim_last_error());
        float x[D], ya[D], yb[D], g[D], ga[D], gb[D];
        for (size_t i = 0; i < D; i++)
            g[i] = 0.25f * (float)i - 1.0f;
        ck_assert_int_eq(intdim_trainer_get_theta_d(t, x, D), INTDIM_OK);
        ck_assert_int_eq(intdim_proj_apply(p, x, ya), INTDIM_OK);
        ck_assert_int_eq(intdim_proj_apply(q, x, yb), INTDIM_OK);
        ck_assert_msg(memcmp(ya, yb, sizeof ya) == 0, "case %zu: another matrix", c);
        ck_assert_int_eq(intdim_proj_vjp(p, x, g, ga), INTDIM_OK);
        ck_assert_int_eq(intdim_proj_vjp(q, x, g, gb), INTDIM_OK);
        ck_assert_msg(memcmp(ga, gb, cases[c].d * sizeof(float)) == 0,
                      "case %zu: another adjoint", c);
        /* a trainer on the recreated projection accepts the checkpoint and steps the same */
        intdim_trainer *t2;
        float theta2[D];
        ck_assert_int_eq(intdim_trainer_create(&t2, q, theta2, theta0, NULL, 0, host_grad, NULL),
                         INTDIM_OK);
        ck_assert_msg(intdim_trainer_load(t2, path) == INTDIM_OK, "case %zu: %s", c,
                      intdim_last_error());
        double loss;
        ck_assert_int_eq(intdim_trainer_step(t, &loss), INTDIM_OK);
        ck_assert_int_eq(intdim_trainer_step(t2, &loss), INTDIM_OK);
        ck_assert_int_eq(intdim_trainer_get_theta_d(t, ga, D), INTDIM_OK);
        ck_assert_int_eq(intdim_trainer_get_theta_d(t2, gb, D), INTDIM_OK);
        ck_assert_msg(memcmp(ga, gb, cases[c].d * sizeof(float)) == 0,
                      "case %zu: the resumed step differs", c);
        intdim_trainer_destroy(t2);
        intdim_trainer_destroy(t);
        intdim_proj_destroy(q);
        intdim_proj_destroy(p);
    }
}
END_TEST

/* Load a damaged copy; it must be refused with one of the file statuses and leave the
 * trainer exactly as it was. */
static void expect_refused(rig *r, const char *path, const unsigned char *buf, size_t n,
                           const char *what, size_t where)
{
    write_all(path, buf, n);
    state before;
    capture(r->t, &before);
    int status = intdim_trainer_load(r->t, path);
    ck_assert_msg(status == INTDIM_EFORMAT || status == INTDIM_EMISMATCH,
                  "%s at %zu: load gave %s", what, where, intdim_strerror(status));
    ck_assert_msg(same_state(r->t, &before), "%s at %zu changed the trainer", what, where);
    intdim_proj *q = (intdim_proj *)1;
    status = intdim_checkpoint_proj(&q, path);
    ck_assert_msg(status == INTDIM_EFORMAT, "%s at %zu: checkpoint_proj gave %s", what, where,
                  intdim_strerror(status));
    ck_assert_ptr_null(q);
}

/* The corruption tests' pair: a, configured and trained 4 steps, saved to good; b, of the
 * same model and projection, 2 steps in (a load that is refused must leave it so). */
static void saved_and_target(rig *a, rig *b, const char *good)
{
    rig_open(a, 3, 0.0f);
    rig_open(b, 3, 0.0f);
    configure(a->t);
    ck_assert_int_eq(intdim_trainer_run(a->t, 4, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_save(a->t, good), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_run(b->t, 2, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
}

START_TEST(every_corruption_is_refused)
{
    char good[128], bad[128];
    path_of(good, sizeof good, "good.ckpt");
    path_of(bad, sizeof bad, "bad.ckpt");
    rig a, b;
    saved_and_target(&a, &b, good);
    size_t n;
    unsigned char *buf = read_all(good, &n);
    ck_assert_uint_gt(n, 100);
    ck_assert_uint_lt(n, 1000);
    const unsigned char masks[2] = {0xff, 0x01};
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 2; k++) {
            buf[i] ^= masks[k];
            expect_refused(&b, bad, buf, n, "flipped byte", i);
            buf[i] ^= masks[k];
        }
    for (size_t len = 0; len < n; len++)
        expect_refused(&b, bad, buf, len, "truncation", len);
    unsigned char *longer = malloc(n + 1);
    memcpy(longer, buf, n);
    longer[n] = 0;
    expect_refused(&b, bad, longer, n + 1, "trailing byte", n);
    free(longer);
    /* the intact file still loads */
    write_all(bad, buf, n);
    ck_assert_int_eq(intdim_trainer_load(b.t, bad), INTDIM_OK);
    free(buf);
    rig_close(&a);
    rig_close(&b);
}
END_TEST

/* A trainer over p (destroyed here) refuses the checkpoint at path as another projection. */
static void expect_load_mismatch(intdim_proj *p, const float *theta0, const char *path)
{
    float theta[D];
    intdim_trainer *t;
    ck_assert_int_eq(intdim_trainer_create(&t, p, theta, theta0, NULL, 0, host_grad, NULL),
                     INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_load(t, path), INTDIM_EMISMATCH);
    intdim_trainer_destroy(t);
    intdim_proj_destroy(p);
}

/* Fastfood with d = 5, seed 5, in blocks of `block` rows (0: one block). */
static intdim_proj *fastfood_in_blocks(double block)
{
    int id = INTDIM_PROJ_FASTFOOD_BLOCK;
    intdim_proj *p = NULL;
    ck_assert_int_eq(intdim_proj_create_ex(&p, INTDIM_PROJ_FASTFOOD, D, 5, 5, 0, NULL, 1, &id,
                                           &block), INTDIM_OK);
    return p;
}

START_TEST(another_model_or_projection_is_refused)
{
    char path[128];
    path_of(path, sizeof path, "m.ckpt");
    rig a, other_theta0, other_seed;
    rig_open(&a, 5, 0.0f);
    rig_open(&other_theta0, 5, 1e-3f);
    rig_open(&other_seed, 6, 0.0f);
    ck_assert_int_eq(intdim_trainer_run(a.t, 3, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_save(a.t, path), INTDIM_OK);
    state before;
    capture(other_theta0.t, &before);
    ck_assert_int_eq(intdim_trainer_load(other_theta0.t, path), INTDIM_EMISMATCH);
    ck_assert(strstr(intdim_last_error(), "theta0") != NULL);
    ck_assert(same_state(other_theta0.t, &before));
    capture(other_seed.t, &before);
    ck_assert_int_eq(intdim_trainer_load(other_seed.t, path), INTDIM_EMISMATCH);
    ck_assert(same_state(other_seed.t, &before));

    /* another kind and another d */
    intdim_proj *p;
    ck_assert_int_eq(intdim_proj_create(&p, INTDIM_PROJ_SPARSE, D, 5, 5), INTDIM_OK);
    expect_load_mismatch(p, a.theta0, path);
    ck_assert_int_eq(intdim_proj_create(&p, INTDIM_PROJ_DENSE, D, 4, 5), INTDIM_OK);
    expect_load_mismatch(p, a.theta0, path);

    /* Fastfood blocks of 4 rows, of 8 rows and one block are different projections */
    char bpath[128];
    path_of(bpath, sizeof bpath, "block.ckpt");
    float theta[D];
    intdim_trainer *t;
    p = fastfood_in_blocks(4);
    ck_assert_int_eq(intdim_trainer_create(&t, p, theta, a.theta0, NULL, 0, host_grad, NULL),
                     INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_save(t, bpath), INTDIM_OK);
    intdim_trainer_destroy(t);
    intdim_proj_destroy(p);
    expect_load_mismatch(fastfood_in_blocks(8), a.theta0, bpath);
    expect_load_mismatch(fastfood_in_blocks(0), a.theta0, bpath);
    rig_close(&a);
    rig_close(&other_theta0);
    rig_close(&other_seed);
}
END_TEST


/* Set the u32 at `offset` of a checkpoint image and re-seal it with a valid CRC. */
static void patch_u32(unsigned char *buf, size_t n, size_t offset, uint32_t value)
{
    for (int i = 0; i < 4; i++)
        buf[offset + (size_t)i] = (unsigned char)(value >> (8 * i));
    uint32_t crc = intdim__crc32(0, buf, n - 4);
    for (int i = 0; i < 4; i++)
        buf[n - 4 + (size_t)i] = (unsigned char)(crc >> (8 * i));
}

static void patch_u64(unsigned char *buf, size_t n, size_t offset, uint64_t value)
{
    patch_u32(buf, n, offset, (uint32_t)value);
    patch_u32(buf, n, offset + 4, (uint32_t)(value >> 32));
}

static void patch_f64(unsigned char *buf, size_t n, size_t offset, double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    patch_u64(buf, n, offset, bits);
}

static void patch_f32(unsigned char *buf, size_t n, size_t offset, float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    patch_u32(buf, n, offset, bits);
}

/* Flipped bytes never get past the CRC, so they never reach the checks on the values of a
 * file that is intact but was not written by this library (docs/checkpoint.md, "Loading
 * and what is refused"). Here each file has a valid CRC and size and one value a writer
 * never produces: each is INTDIM_EFORMAT naming the problem, and the trainer is left as it
 * was. Offsets for the rig's file (G = 2 groups, d = 5) from the layout table. */
enum {
    OFF_KIND = 16, OFF_SAID = 20, OFF_PER_GROUP = 24, OFF_LOG2_BLOCK = 28, OFF_D = 32,
    OFF_DENSITY = 56, OFF_BUDGET = 64, OFF_GROUPS = 80,
    OFF_SETTINGS = 96 + 8 * N_GROUPS,
    OFF_STEP = 224 + 8 * N_GROUPS, OFF_UPDATES = OFF_STEP + 8, OFF_SKIPPED = OFF_STEP + 16,
    OFF_THETA_D = 248 + 8 * N_GROUPS, OFF_M = OFF_THETA_D + 4 * 5, OFF_V = OFF_M + 4 * 5
};

typedef enum { P_U32, P_U64, P_F64, P_F32 } patch_type;

START_TEST(valid_crc_but_invalid_values_are_refused)
{
    static const struct {
        const char *what;
        patch_type type;
        size_t offset;
        double value;
        const char *message; /* what the refusal must say */
    } cases[] = {
        /* a setting outside its bounds, or not whole where it counts something */
        {"LR = -1", P_F64, OFF_SETTINGS + 8 * INTDIM_TRAIN_LR, -1.0, "a setting is out of range"},
        {"OPTIMIZER = 3", P_F64, OFF_SETTINGS + 8 * INTDIM_TRAIN_OPTIMIZER, 3.0,
         "a setting is out of range"},
        {"WARMUP_STEPS = 2.5", P_F64, OFF_SETTINGS + 8 * INTDIM_TRAIN_WARMUP_STEPS, 2.5,
         "a setting is out of range"},
        {"BETA2 = NaN", P_F64, OFF_SETTINGS + 8 * INTDIM_TRAIN_BETA2, NAN,
         "a setting is out of range"},
        /* a description no projection has, or counters that cannot be */
        {"kind 4", P_U32, OFF_KIND, 4, "inconsistent projection description or counters"},
        {"SAID 2", P_U32, OFF_SAID, 2, "inconsistent projection description or counters"},
        {"per-group 2", P_U32, OFF_PER_GROUP, 2,
         "inconsistent projection description or counters"},
        {"block 2^33", P_U32, OFF_LOG2_BLOCK, 33,
         "inconsistent projection description or counters"},
        {"blocks on a dense projection", P_U32, OFF_LOG2_BLOCK, 2,
         "inconsistent projection description or counters"},
        {"D = 0", P_U64, OFF_D, 0, "inconsistent projection description or counters"},
        {"d = 5 > D + groups = 2 + 2", P_U64, OFF_D, 2,
         "inconsistent projection description or counters"},
        {"per-group blocks on a dense projection", P_U32, OFF_PER_GROUP, 1,
         "inconsistent projection description or counters"},
        /* creation parameters intdim_proj_create_ex would refuse: a format error, not an
         * INTDIM_EINVAL when the projection is recreated */
        {"memory budget NaN", P_F64, OFF_BUDGET, NAN,
         "inconsistent projection description or counters"},
        {"memory budget -1", P_F64, OFF_BUDGET, -1.0,
         "inconsistent projection description or counters"},
        {"a density on a dense projection", P_F64, OFF_DENSITY, 0.5,
         "inconsistent projection description or counters"},
        {"IDENTITY with d < D", P_U32, OFF_KIND, INTDIM_PROJ_IDENTITY,
         "inconsistent projection description or counters"},
        {"updates > steps", P_U64, OFF_UPDATES, 5,
         "inconsistent projection description or counters"},
        {"skipped > steps", P_U64, OFF_SKIPPED, 5,
         "inconsistent projection description or counters"},
        /* group sizes */
        {"a group of size 0", P_U64, OFF_GROUPS, 0, "bad group size"},
        {"groups {6, 9} for D = 16", P_U64, OFF_GROUPS + 8, 9, "group sizes do not sum to D"},
        {"groups {6, 10} for D = 17", P_U64, OFF_D, 17, "group sizes do not sum to D"},
        /* non-finite vectors */
        {"theta_d[2] = NaN", P_F32, OFF_THETA_D + 4 * 2, NAN, "non-finite optimizer state"},
        {"m[0] = Inf", P_F32, OFF_M, INFINITY, "non-finite optimizer state"},
        {"v[4] = -Inf", P_F32, OFF_V + 4 * 4, -INFINITY, "non-finite optimizer state"},
    };
    char good[128], bad[128];
    path_of(good, sizeof good, "values-good.ckpt");
    path_of(bad, sizeof bad, "values-bad.ckpt");
    rig a, b;
    saved_and_target(&a, &b, good);
    size_t n;
    unsigned char *pristine = read_all(good, &n);
    ck_assert_uint_eq(n, 252 + 8 * N_GROUPS + 12 * 5); /* the offsets above are this file's */
    unsigned char *buf = malloc(n);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memcpy(buf, pristine, n);
        switch (cases[c].type) {
        case P_U32: patch_u32(buf, n, cases[c].offset, (uint32_t)cases[c].value); break;
        case P_U64: patch_u64(buf, n, cases[c].offset, (uint64_t)cases[c].value); break;
        case P_F64: patch_f64(buf, n, cases[c].offset, cases[c].value); break;
        case P_F32: patch_f32(buf, n, cases[c].offset, (float)cases[c].value); break;
        }
        ck_assert_msg(memcmp(buf, pristine, n) != 0, "%s: the patch changed nothing",
                      cases[c].what);
        write_all(bad, buf, n);
        state before;
        capture(b.t, &before);
        float theta_d_before[5], theta_d_after[5];
        ck_assert_int_eq(intdim_trainer_get_theta_d(b.t, theta_d_before, 5), INTDIM_OK);
        int status = intdim_trainer_load(b.t, bad);
        ck_assert_msg(status == INTDIM_EFORMAT, "%s: load gave %s (%s)", cases[c].what,
                      intdim_strerror(status), intdim_last_error());
        ck_assert_msg(strstr(intdim_last_error(), cases[c].message) != NULL,
                      "%s: message \"%s\" does not say \"%s\"", cases[c].what,
                      intdim_last_error(), cases[c].message);
        ck_assert_uint_eq(intdim_trainer_steps_done(b.t), 2);
        ck_assert_int_eq(intdim_trainer_get_theta_d(b.t, theta_d_after, 5), INTDIM_OK);
        ck_assert_msg(memcmp(theta_d_before, theta_d_after, sizeof theta_d_after) == 0,
                      "%s changed theta_d", cases[c].what);
        ck_assert_msg(same_state(b.t, &before), "%s changed the trainer", cases[c].what);
        /* intdim_checkpoint_proj makes the same checks but the vectors' (it does not read
         * them: docs/checkpoint.md) */
        intdim_proj *q = (intdim_proj *)1;
        status = intdim_checkpoint_proj(&q, bad);
        if (cases[c].type == P_F32) {
            ck_assert_msg(status == INTDIM_OK, "%s: checkpoint_proj gave %s (%s)",
                          cases[c].what, intdim_strerror(status), intdim_last_error());
            intdim_proj_destroy(q);
        } else {
            ck_assert_msg(status == INTDIM_EFORMAT, "%s: checkpoint_proj gave %s (%s)",
                          cases[c].what, intdim_strerror(status), intdim_last_error());
            ck_assert_ptr_null(q);
            ck_assert_msg(strstr(intdim_last_error(), cases[c].message) != NULL,
                          "%s: checkpoint_proj said \"%s\"", cases[c].what,
                          intdim_last_error());
        }
    }
    /* SAID with d = 5 > D = 4 and groups {2, 2} that fit D (d - groups = 3 would fit too):
     * what intdim_proj_create refuses, so a format error, not a mismatch with the trainer */
    memcpy(buf, pristine, n);
    patch_u64(buf, n, OFF_D, 4);
    patch_u64(buf, n, OFF_GROUPS, 2);
    patch_u64(buf, n, OFF_GROUPS + 8, 2);
    write_all(bad, buf, n);
    ck_assert_int_eq(intdim_trainer_load(b.t, bad), INTDIM_EFORMAT);
    ck_assert_msg(strstr(intdim_last_error(), "inconsistent projection description") != NULL,
                  "%s", intdim_last_error());
    intdim_proj *q = (intdim_proj *)1;
    ck_assert_int_eq(intdim_checkpoint_proj(&q, bad), INTDIM_EFORMAT);
    ck_assert_ptr_null(q);
    /* the unpatched file is accepted by the same trainer: the refusals were the values' */
    ck_assert_int_eq(intdim_trainer_load(b.t, good), INTDIM_OK);
    ck_assert_uint_eq(intdim_trainer_steps_done(b.t), 4);
    free(buf);
    free(pristine);
    rig_close(&a);
    rig_close(&b);
}
END_TEST

/* Group sizes that each fit D but whose sum only equals D after wrapping around 2^64
 * (D = 2^64 - 4, sizes {D, D, 4}), sealed with a valid CRC: a format error, as any sum that
 * is not D. */
START_TEST(group_sizes_that_wrap_are_refused)
{
    static const size_t three[3] = {5, 5, 6};
    intdim_proj *p;
    ck_assert_int_eq(intdim_proj_create_said(&p, INTDIM_PROJ_DENSE, D, 6, 3, three, 1),
                     INTDIM_OK);
    float theta[D], theta0[D] = {0};
    intdim_trainer *t;
    ck_assert_int_eq(intdim_trainer_create(&t, p, theta, theta0, NULL, 0, host_grad, NULL),
                     INTDIM_OK);
    char path[128], bad[128];
    path_of(path, sizeof path, "three.ckpt");
    path_of(bad, sizeof bad, "wrap.ckpt");
    ck_assert_int_eq(intdim_trainer_save(t, path), INTDIM_OK);
    size_t n;
    unsigned char *buf = read_all(path, &n);
    patch_u64(buf, n, 32, UINT64_MAX - 3);
    patch_u64(buf, n, 80, UINT64_MAX - 3);
    patch_u64(buf, n, 88, UINT64_MAX - 3);
    patch_u64(buf, n, 96, 4);
    write_all(bad, buf, n);
    ck_assert_int_eq(intdim_trainer_load(t, bad), INTDIM_EFORMAT);
    ck_assert_msg(strstr(intdim_last_error(), "group size") != NULL, "%s", intdim_last_error());
    intdim_proj *q = p;
    ck_assert_int_eq(intdim_checkpoint_proj(&q, bad), INTDIM_EFORMAT);
    ck_assert_ptr_null(q);
    free(buf);
    intdim_trainer_destroy(t);
    intdim_proj_destroy(p);
}
END_TEST

/* Version 2 had version 3's layout with 0 where 3 stores the Fastfood block: such files
 * load (as one block); a version-2 file with a block there, or an unknown version, does
 * not. */
START_TEST(version_2_files_still_load)
{
    char path[128], old[128];
    path_of(path, sizeof path, "v3.ckpt");
    path_of(old, sizeof old, "v2.ckpt");
    rig a;
    rig_open(&a, 5, 0.0f);
    ck_assert_int_eq(intdim_trainer_run(a.t, 3, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_save(a.t, path), INTDIM_OK);
    size_t n;
    unsigned char *buf = read_all(path, &n);
    patch_u32(buf, n, 8, 2);
    write_all(old, buf, n);
    rig b;
    rig_open(&b, 5, 0.0f);
    ck_assert_msg(intdim_trainer_load(b.t, old) == INTDIM_OK, "%s", intdim_last_error());
    float xa[5], xb[5];
    ck_assert_int_eq(intdim_trainer_get_theta_d(a.t, xa, 5), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_get_theta_d(b.t, xb, 5), INTDIM_OK);
    ck_assert(memcmp(xa, xb, sizeof xa) == 0);
    patch_u32(buf, n, 28, 3);
    write_all(old, buf, n);
    ck_assert_int_eq(intdim_trainer_load(b.t, old), INTDIM_EFORMAT);
    patch_u32(buf, n, 28, 0);
    patch_u32(buf, n, 8, 5);
    write_all(old, buf, n);
    ck_assert_int_eq(intdim_trainer_load(b.t, old), INTDIM_EFORMAT);
    ck_assert(strstr(intdim_last_error(), "version 5") != NULL);
    free(buf);
    rig_close(&a);
    rig_close(&b);
}
END_TEST

/* The reserved word after the settings count (offset 92 + 8G) is 0 in every version: a file
 * with anything else there is refused even with a valid CRC. */
START_TEST(reserved_word_must_be_zero)
{
    char path[128];
    path_of(path, sizeof path, "reserved.ckpt");
    rig a;
    rig_open(&a, 5, 0.0f);
    ck_assert_int_eq(intdim_trainer_save(a.t, path), INTDIM_OK);
    size_t n;
    unsigned char *buf = read_all(path, &n);
    uint64_t groups = 0;
    for (int i = 0; i < 8; i++)
        groups |= (uint64_t)buf[72 + i] << (8 * i);
    patch_u32(buf, n, (size_t)(92 + 8 * groups), 1);
    write_all(path, buf, n);
    ck_assert_int_eq(intdim_trainer_load(a.t, path), INTDIM_EFORMAT);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "reserved"));
    intdim_proj *q = NULL;
    ck_assert_int_eq(intdim_checkpoint_proj(&q, path), INTDIM_EFORMAT);
    ck_assert_ptr_null(q);
    free(buf);
    rig_close(&a);
}
END_TEST

/* Fastfood from explicit tables (here a seeded projection's, exported): a checkpoint holds a
 * hash of the tables for a seed. It resumes bit for bit in a trainer over the same tables,
 * and is refused by one over other tables or over the seeded twin, by intdim_checkpoint_proj
 * (it cannot rebuild the tables), and by a version-3 reader's layout. */
enum { L_TABLES = 16 }; /* nextpow2(D) */

static intdim_proj *from_tables(const float *B, const int64_t *Pi, const float *G)
{
    intdim_proj *p;
    ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, D, 5, L_TABLES, B, Pi, G),
                     INTDIM_OK);
    return p;
}

START_TEST(projection_from_tables_resumes)
{
    float B[L_TABLES], G[L_TABLES], theta[D], theta0[D], theta_b[D];
    int64_t Pi[L_TABLES];
    intdim_proj *seeded;
    ck_assert_int_eq(intdim_proj_create(&seeded, INTDIM_PROJ_FASTFOOD, D, 5, 5), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_fastfood_tables(seeded, B, Pi, G, L_TABLES), INTDIM_OK);
    for (size_t i = 0; i < D; i++)
        theta0[i] = (float)i * 0.01f;
    intdim_proj *pa = from_tables(B, Pi, G), *pb = from_tables(B, Pi, G);
    intdim_trainer *a, *b;
    ck_assert_int_eq(intdim_trainer_create(&a, pa, theta, theta0, NULL, 0, host_grad, NULL),
                     INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_create(&b, pb, theta_b, theta0, NULL, 0, host_grad, NULL),
                     INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_run(a, 3, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    char path[128];
    path_of(path, sizeof path, "tables.ckpt");
    ck_assert_int_eq(intdim_trainer_save(a, path), INTDIM_OK);
    ck_assert_msg(intdim_trainer_load(b, path) == INTDIM_OK, "%s", intdim_last_error());
    ck_assert_int_eq(intdim_trainer_run(a, 2, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_run(b, 2, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    float xa[5], xb[5];
    ck_assert_int_eq(intdim_trainer_get_theta_d(a, xa, 5), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_get_theta_d(b, xb, 5), INTDIM_OK);
    ck_assert(memcmp(xa, xb, sizeof xa) == 0);
    ck_assert(memcmp(theta, theta_b, sizeof theta) == 0);

    /* other tables (one G entry changed), and the seeded twin: another projection */
    G[3] *= 2.0f;
    intdim_proj *other = from_tables(B, Pi, G);
    G[3] /= 2.0f;
    expect_load_mismatch(other, theta0, path);
    expect_load_mismatch(seeded, theta0, path); /* destroys seeded */
    intdim_proj *p = (intdim_proj *)&a;
    ck_assert_int_eq(intdim_checkpoint_proj(&p, path), INTDIM_EUNSUPPORTED);
    ck_assert_ptr_null(p);

    /* the flag where version 3 had a reserved 0, or a flag that does not fit */
    size_t n;
    unsigned char *buf = read_all(path, &n);
    char bad[128];
    path_of(bad, sizeof bad, "tables-bad.ckpt");
    patch_u32(buf, n, 8, 3);
    write_all(bad, buf, n);
    ck_assert_int_eq(intdim_trainer_load(b, bad), INTDIM_EFORMAT);
    patch_u32(buf, n, 8, 4);
    patch_u32(buf, n, 12, 2);
    write_all(bad, buf, n);
    ck_assert_int_eq(intdim_trainer_load(b, bad), INTDIM_EFORMAT);
    patch_u32(buf, n, 12, 1);
    patch_u32(buf, n, 20, 1); /* SAID */
    write_all(bad, buf, n);
    ck_assert_int_eq(intdim_trainer_load(b, bad), INTDIM_EFORMAT);
    free(buf);
    intdim_trainer_destroy(b);
    intdim_trainer_destroy(a);
    intdim_proj_destroy(pb);
    intdim_proj_destroy(pa);
}
END_TEST

/* No ".intdim.tmp.*" file is left in the test directory. */
static void assert_no_temporary_file(void)
{
    DIR *dir = opendir(g_dir);
    ck_assert_ptr_nonnull(dir);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL)
        ck_assert_msg(strstr(e->d_name, ".tmp.") == NULL, "left over: %s", e->d_name);
    closedir(dir);
}

START_TEST(io_errors_and_atomic_write)
{
    rig a;
    rig_open(&a, 5, 0.0f);
    char path[160];
    path_of(path, sizeof path, "no-such-dir/x.ckpt");
    ck_assert_int_eq(intdim_trainer_save(a.t, path), INTDIM_EIO);
    ck_assert_int_eq(intdim_trainer_load(a.t, path), INTDIM_EIO);
    ck_assert_int_eq(intdim_trainer_save(a.t, NULL), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_trainer_load(NULL, path), INTDIM_EINVAL);
    /* a file name as long as the file system allows (255 bytes): the temporary file next to
     * it must not need a longer one */
    {
        char longname[256];
        memset(longname, 'c', 255);
        longname[255] = '\0';
        char longpath[512];
        path_of(longpath, sizeof longpath, longname);
        ck_assert_msg(intdim_trainer_save(a.t, longpath) == INTDIM_OK, "%s", intdim_last_error());
        ck_assert_int_eq(intdim_trainer_load(a.t, longpath), INTDIM_OK);
        unlink(longpath);
    }

    /* overwrite an existing checkpoint: no temporary file is left behind */
    path_of(path, sizeof path, "atomic.ckpt");
    ck_assert_int_eq(intdim_trainer_save(a.t, path), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_run(a.t, 2, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_save(a.t, path), INTDIM_OK);
    assert_no_temporary_file();
    ck_assert_int_eq(intdim_trainer_load(a.t, path), INTDIM_OK);
    ck_assert_uint_eq(intdim_trainer_steps_done(a.t), 2);

    /* a save that fails on the way (its write: a full disk; its fsync; its rename) leaves the
     * previous checkpoint as it was, byte for byte, and still loadable; no temporary file is
     * left either */
    struct {
        int *flag;
        const char *needle;
    } failures[] = {{&g_fail_next_write, "No space left"},
                    {&g_fail_next_fsync, "fsync"},
                    {&g_fail_next_close, "closing"},
                    {&g_fail_next_rename, "renaming"}};
    ck_assert_int_eq(intdim_trainer_run(a.t, 3, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    for (size_t f = 0; f < sizeof failures / sizeof failures[0]; f++) {
        size_t n_before, n_after;
        unsigned char *before = read_all(path, &n_before);
        *failures[f].flag = 1;
        ck_assert_int_eq(intdim_trainer_save(a.t, path), INTDIM_EIO);
        ck_assert_int_eq(*failures[f].flag, 0); /* the failure really happened */
        ck_assert_msg(strstr(intdim_last_error(), failures[f].needle) != NULL, "%s",
                      intdim_last_error());
        unsigned char *after = read_all(path, &n_after);
        ck_assert_uint_eq(n_after, n_before);
        ck_assert(memcmp(before, after, n_before) == 0);
        assert_no_temporary_file();
        free(after);
        free(before);
    }
    ck_assert_uint_eq(intdim_trainer_steps_done(a.t), 5);

    /* the directory's fsync fails after the rename: the save reports EIO (the new name may
     * not survive a crash), but the file in place is the complete new checkpoint */
    g_fail_next_fsync = 2;
    ck_assert_int_eq(intdim_trainer_save(a.t, path), INTDIM_EIO);
    ck_assert_int_eq(g_fail_next_fsync, 0);
    ck_assert_msg(strstr(intdim_last_error(), "fsync of directory") != NULL, "%s",
                  intdim_last_error());
    ck_assert_int_eq(intdim_trainer_run(a.t, 1, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_load(a.t, path), INTDIM_OK);
    ck_assert_uint_eq(intdim_trainer_steps_done(a.t), 5);
    rig_close(&a);
}
END_TEST

/* A save through a symbolic link (or a chain of them) replaces the file at its end and keeps
 * the links; a link to nothing yet creates the file it names; a FIFO and a directory are
 * refused (EIO) and left as they were: renaming over them would replace the node itself. */
START_TEST(links_are_followed_and_special_files_refused)
{
    rig a;
    rig_open(&a, 5, 0.0f);
    char target[160], link_path[160], chain[160], fifo[160], dangling[160], missing[160],
        sub[160], loop[160];
    path_of(target, sizeof target, "target.ckpt");
    path_of(link_path, sizeof link_path, "link.ckpt");
    path_of(chain, sizeof chain, "chain.ckpt");
    path_of(loop, sizeof loop, "loop.ckpt");
    path_of(fifo, sizeof fifo, "fifo.ckpt");
    path_of(dangling, sizeof dangling, "dangling.ckpt");
    path_of(missing, sizeof missing, "missing.ckpt");
    path_of(sub, sizeof sub, "subdir.ckpt");
    ck_assert_int_eq(intdim_trainer_save(a.t, target), INTDIM_OK);
    ck_assert_int_eq(symlink("target.ckpt", link_path), 0); /* relative, as users make them */
    ck_assert_int_eq(intdim_trainer_run(a.t, 2, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_msg(intdim_trainer_save(a.t, link_path) == INTDIM_OK, "%s", intdim_last_error());
    struct stat st;
    ck_assert_int_eq(lstat(link_path, &st), 0);
    ck_assert_msg(S_ISLNK(st.st_mode), "the link was replaced");
    ck_assert_int_eq(intdim_trainer_run(a.t, 1, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_load(a.t, target), INTDIM_OK); /* the target got the save */
    ck_assert_uint_eq(intdim_trainer_steps_done(a.t), 2);
    /* a chain: chain.ckpt -> <absolute>/link.ckpt -> target.ckpt */
    ck_assert_int_eq(symlink(link_path, chain), 0);
    ck_assert_int_eq(intdim_trainer_run(a.t, 1, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_msg(intdim_trainer_save(a.t, chain) == INTDIM_OK, "%s", intdim_last_error());
    ck_assert_int_eq(lstat(chain, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(lstat(link_path, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(intdim_trainer_load(a.t, target), INTDIM_OK);
    ck_assert_uint_eq(intdim_trainer_steps_done(a.t), 3);
    /* a link to nothing yet: the file it names is created */
    ck_assert_int_eq(symlink("missing.ckpt", dangling), 0);
    ck_assert_msg(intdim_trainer_save(a.t, dangling) == INTDIM_OK, "%s", intdim_last_error());
    ck_assert_int_eq(lstat(dangling, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(intdim_trainer_load(a.t, missing), INTDIM_OK);

    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    ck_assert_int_eq(symlink("loop.ckpt", loop), 0); /* a link to itself */
    const char *refused[] = {fifo, sub, loop};
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(intdim_trainer_save(a.t, refused[i]), INTDIM_EIO);
        ck_assert_msg(strstr(intdim_last_error(), "not replaced") != NULL, "%s",
                      intdim_last_error());
    }
    ck_assert_int_eq(lstat(fifo, &st), 0);
    ck_assert(S_ISFIFO(st.st_mode));
    ck_assert_int_eq(lstat(sub, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    assert_no_temporary_file();
    rmdir(sub);
    unlink(fifo);
    /* the file that replaces an existing one keeps its permissions and (run as root, who
     * may set them) its owner and group */
    ck_assert_int_eq(chmod(target, 0600), 0);
    int as_root = geteuid() == 0;
    if (as_root)
        ck_assert_int_eq(chown(target, 65534, 65534), 0);
    ck_assert_int_eq(intdim_trainer_save(a.t, link_path), INTDIM_OK);
    ck_assert_int_eq(stat(target, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    if (as_root) {
        ck_assert_uint_eq(st.st_uid, 65534);
        ck_assert_uint_eq(st.st_gid, 65534);
    }
    unlink(dangling);
    unlink(loop);
    unlink(missing);
    unlink(chain);
    unlink(link_path);
    unlink(target);
    rig_close(&a);
}
END_TEST

static void remove_dir(void)
{
    DIR *dir = opendir(g_dir);
    if (dir == NULL)
        return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(dir)) != NULL)
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
            unlink(path);
        }
    closedir(dir);
    rmdir(g_dir);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/intdim_ckpt_XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return 1;
    Suite *suite = suite_create("checkpoint");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, crc32_is_the_standard_one);
    tcase_add_test(tc, round_trip_is_bitwise);
    tcase_add_test(tc, checkpoint_recreates_the_projection);
    tcase_add_test(tc, every_kind_is_recreated);
    tcase_add_test(tc, every_corruption_is_refused);
    tcase_add_test(tc, another_model_or_projection_is_refused);
    tcase_add_test(tc, projection_from_tables_resumes);
    tcase_add_test(tc, version_2_files_still_load);
    tcase_add_test(tc, reserved_word_must_be_zero);
    tcase_add_test(tc, group_sizes_that_wrap_are_refused);
    tcase_add_test(tc, valid_crc_but_invalid_values_are_refused);
    tcase_add_test(tc, io_errors_and_atomic_write);
    tcase_add_test(tc, links_are_followed_and_special_files_refused);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = runner_exit_status(runner) != EXIT_SUCCESS; /* also: no test ran */
    srunner_free(runner);
    remove_dir();
    return failed == 0 ? 0 : 1;
}
