/* Projections through the public API: exact adjoints for every kind and size, unit-norm
 * columns, SAID gradients against finite differences, reproducibility (seeds, threads,
 * kernels, concurrent callers), every bad argument, the memory budget, and allocation
 * failure injection. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fail_alloc.h"
#include "fwht.h"      /* only to know which transform kernels this CPU has */
#include "intdim.h"
#include "proj_impl.h" /* only for test_busy_workspace_fallback */
#include "ref_wht.h"
#include "test_threads.h"

/* ---- helpers ---------------------------------------------------------------------- */

/* xorshift64*, independent of the library's generator; state local so threads may call it */
static double test_uniform(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (double)((*state * 2685821657736338717ULL) >> 11) * 0x1.0p-53;
}

static float *random_vector(size_t n, uint64_t seed)
{
    uint64_t state = seed * 0x9e3779b97f4a7c15ULL + 1;
    float *v = malloc((n ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(v);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(2.0 * test_uniform(&state) - 1.0);
    return v;
}

static float *zeros(size_t n)
{
    float *v = calloc(n ? n : 1, sizeof(float));
    ck_assert_ptr_nonnull(v);
    return v;
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * (double)b[i];
    return s;
}

static double abs_dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += fabs((double)a[i] * (double)b[i]);
    return s;
}

static intdim_proj *make(int kind, size_t D, size_t d, uint64_t seed)
{
    intdim_proj *p = NULL;
    int st = intdim_proj_create(&p, kind, D, d, seed);
    ck_assert_msg(st == INTDIM_OK, "create kind %d D %zu d %zu: %s (%s)", kind, D, d,
                  intdim_strerror(st), intdim_last_error());
    return p;
}

static intdim_proj *make_said(int kind, size_t D, size_t d, size_t m, const size_t *sizes,
                              uint64_t seed)
{
    intdim_proj *p = NULL;
    int st = intdim_proj_create_said(&p, kind, D, d, m, sizes, seed);
    ck_assert_msg(st == INTDIM_OK, "create_said kind %d D %zu d %zu: %s (%s)", kind, D, d,
                  intdim_strerror(st), intdim_last_error());
    return p;
}

static intdim_proj *make_per_group(size_t D, size_t d, size_t m, const size_t *sizes, int said,
                                   uint64_t seed)
{
    int ids[2] = { INTDIM_PROJ_FASTFOOD_PER_GROUP, INTDIM_PROJ_SAID };
    double values[2] = { 1.0, said ? 1.0 : 0.0 };
    intdim_proj *p = NULL;
    int st = intdim_proj_create_ex(&p, INTDIM_PROJ_FASTFOOD, D, d, seed, m, sizes, 2, ids,
                                   values);
    ck_assert_msg(st == INTDIM_OK, "per-group create D %zu d %zu: %s (%s)", D, d,
                  intdim_strerror(st), intdim_last_error());
    return p;
}

/* Fastfood in blocks of `block` rows (FASTFOOD_BLOCK), SAID over `m` groups if m > 0. */
static intdim_proj *make_blocked(size_t D, size_t d, size_t block, size_t m, const size_t *sizes,
                                 uint64_t seed)
{
    int ids[2] = { INTDIM_PROJ_FASTFOOD_BLOCK, INTDIM_PROJ_SAID };
    double values[2] = { (double)block, 1.0 };
    intdim_proj *p = NULL;
    int st = intdim_proj_create_ex(&p, INTDIM_PROJ_FASTFOOD, D, d, seed, m, sizes, m > 0 ? 2 : 1,
                                   ids, values);
    ck_assert_msg(st == INTDIM_OK, "blocked create D %zu d %zu block %zu: %s (%s)", D, d, block,
                  intdim_strerror(st), intdim_last_error());
    return p;
}

/* <P x, y> == <x, P^T y> for a linear projection, relative to the size of the terms. */
static void check_adjoint(const intdim_proj *p, uint64_t seed)
{
    size_t D = intdim_proj_D(p), d = intdim_proj_d(p);
    float *x = random_vector(d, seed), *y = random_vector(D, seed + 1);
    float *px = zeros(D), *pty = zeros(d);
    ck_assert_int_eq(intdim_proj_apply(p, x, px), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_vjp(p, NULL, y, pty), INTDIM_OK);
    double lhs = dot(px, y, D), rhs = dot(x, pty, d);
    double scale = abs_dot(px, y, D) + abs_dot(x, pty, d);
    ck_assert_msg(fabs(lhs - rhs) <= 1e-5 * scale, "kind %d D %zu d %zu: <Px,y> %.9g vs "
                  "<x,P^T y> %.9g (scale %.3g)", intdim_proj_kind_of(p), D, d, lhs, rhs, scale);
    free(x);
    free(y);
    free(px);
    free(pty);
}

/* p and q (same D and d, linear) are the same map bit for bit: apply and vjp on random
 * inputs drawn from `seed`. */
static void expect_same_bits(const intdim_proj *p, const intdim_proj *q, uint64_t seed,
                             const char *what)
{
    size_t D = intdim_proj_D(p), d = intdim_proj_d(p);
    float *x = random_vector(d, seed), *g = random_vector(D, seed + 1);
    float *yp = zeros(D), *yq = zeros(D), *xp = zeros(d), *xq = zeros(d);
    ck_assert_int_eq(intdim_proj_apply(p, x, yp), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_apply(q, x, yq), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_vjp(p, NULL, g, xp), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_vjp(q, NULL, g, xq), INTDIM_OK);
    ck_assert_msg(memcmp(yp, yq, D * sizeof(float)) == 0, "%s, D %zu d %zu: apply differs", what,
                  D, d);
    ck_assert_msg(memcmp(xp, xq, d * sizeof(float)) == 0, "%s, D %zu d %zu: vjp differs", what,
                  D, d);
    free(x), free(g), free(yp), free(yq), free(xp), free(xq);
}

/* ||P e_j||^2 for the first n_cols columns, into norms. */
static void column_norms(const intdim_proj *p, size_t n_cols, double *norms)
{
    size_t D = intdim_proj_D(p), d = intdim_proj_d(p);
    float *e = zeros(d), *col = zeros(D);
    for (size_t j = 0; j < n_cols; j++) {
        e[j] = 1.0f;
        ck_assert_int_eq(intdim_proj_apply(p, e, col), INTDIM_OK);
        norms[j] = dot(col, col, D);
        e[j] = 0.0f;
    }
    free(e);
    free(col);
}

static const int g_linear_kinds[] = { INTDIM_PROJ_DENSE, INTDIM_PROJ_SPARSE,
                                      INTDIM_PROJ_FASTFOOD };
enum { N_LINEAR_KINDS = 3 };

/* ---- adjoints ----------------------------------------------------------------------- */

START_TEST(test_adjoint_every_kind_and_size)
{
    static const size_t shapes[][2] = {
        { 1, 1 },     { 2, 1 },    { 2, 2 },    { 7, 3 },     { 16, 16 },   { 100, 1 },
        { 100, 100 }, { 1000, 37 }, { 1024, 1024 }, { 4096, 128 }, { 5000, 17 }, { 1500, 1500 },
        { 9000, 40 },
    };
    int kind = g_linear_kinds[_i];
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        intdim_proj *p = make(kind, shapes[s][0], shapes[s][1], 42 + s);
        check_adjoint(p, 7 * s + 3);
        intdim_proj_destroy(p);
    }
}
END_TEST

START_TEST(test_identity)
{
    static const size_t sizes[] = { 1, 7, 1024, 5000 };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t D = sizes[s];
        intdim_proj *p = make(INTDIM_PROJ_IDENTITY, D, D, 1);
        float *x = random_vector(D, s), *y = zeros(D);
        ck_assert_int_eq(intdim_proj_apply(p, x, y), INTDIM_OK);
        ck_assert_mem_eq(x, y, D * sizeof(float));
        ck_assert_int_eq(intdim_proj_vjp(p, NULL, x, y), INTDIM_OK);
        ck_assert_mem_eq(x, y, D * sizeof(float));
        check_adjoint(p, s);
        free(x);
        free(y);
        intdim_proj_destroy(p);
    }
}
END_TEST

START_TEST(test_adjoint_per_group_fastfood)
{
    /* groups smaller than d force stacked blocks in the small groups */
    static const size_t sizes[] = { 3, 5, 100, 1000 };
    static const size_t ds[] = { 1, 4, 50, 500, 1108 };
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
        intdim_proj *p = make_per_group(1108, ds[i], 4, sizes, 0, 9 + i);
        check_adjoint(p, i);
        intdim_proj_destroy(p);
    }
}
END_TEST

/* FASTFOOD_BLOCK = B is per-group Fastfood with chunks of B rows as the groups, bit for
 * bit (both directions), and passes the adjoint test; B >= D is one block of nextpow2(D)
 * rows, i.e. not REFERENCE's single block only when D > B. */
START_TEST(test_block_mode_is_per_group_with_chunks)
{
    static const size_t shapes[][3] = { /* D, d, B */
        { 5000, 300, 1024 }, { 5000, 1500, 1024 }, { 4096, 100, 4096 }, { 7, 3, 2 },
        { 70001, 40, 65536 }, { 300, 300, 256 } };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t D = shapes[s][0], d = shapes[s][1], B = shapes[s][2];
        size_t m = (D + B - 1) / B;
        size_t *chunks = malloc(m * sizeof(size_t));
        for (size_t g = 0; g < m; g++)
            chunks[g] = D - g * B < B ? D - g * B : B;
        intdim_proj *blocked = make_blocked(D, d, B, 0, NULL, 40 + s);
        intdim_proj *grouped = make_per_group(D, d, m, chunks, 0, 40 + s);
        double v = 0.0;
        ck_assert_int_eq(intdim_proj_get(blocked, INTDIM_PROJ_FASTFOOD_BLOCK, &v), INTDIM_OK);
        ck_assert(v == (double)B);
        ck_assert_uint_eq(intdim_proj_n_groups(blocked), 0);
        expect_same_bits(blocked, grouped, s, "stacked blocks against per-group");
        check_adjoint(blocked, s);
        free(chunks);
        intdim_proj_destroy(blocked);
        intdim_proj_destroy(grouped);
    }
    /* one block as large as D's padding: REFERENCE's single block, the same bits */
    intdim_proj *one = make_blocked(5000, 30, 8192, 0, NULL, 3);
    intdim_proj *plain = make(INTDIM_PROJ_FASTFOOD, 5000, 30, 3);
    float *x = random_vector(30, 9), *ya = zeros(5000), *yb = zeros(5000);
    ck_assert_int_eq(intdim_proj_apply(one, x, ya), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_apply(plain, x, yb), INTDIM_OK);
    ck_assert(memcmp(ya, yb, 5000 * sizeof(float)) == 0);
    free(x), free(ya), free(yb);
    intdim_proj_destroy(one);
    intdim_proj_destroy(plain);
}
END_TEST

/* ---- column norms ------------------------------------------------------------------- */

START_TEST(test_columns_unit_norm_dense_sparse)
{
    static const size_t shapes[][2] = { { 1, 1 }, { 5, 5 }, { 300, 40 }, { 4096, 64 },
                                        { 5000, 17 } };
    int kind = _i == 0 ? INTDIM_PROJ_DENSE : INTDIM_PROJ_SPARSE;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t D = shapes[s][0], d = shapes[s][1];
        intdim_proj *p = make(kind, D, d, 5 + s);
        double *norms = malloc(d * sizeof(double));
        column_norms(p, d, norms);
        for (size_t j = 0; j < d; j++)
            ck_assert_msg(fabs(norms[j] - 1.0) < 1e-5, "kind %d D %zu column %zu norm^2 %.9g",
                          kind, D, j, norms[j]);
        free(norms);
        intdim_proj_destroy(p);
    }
}
END_TEST

START_TEST(test_columns_unit_norm_fastfood)
{
    /* D = L: every column exactly unit norm; D < L: the mean over columns is 1 */
    intdim_proj *p = make(INTDIM_PROJ_FASTFOOD, 1024, 100, 3);
    double norms[200];
    column_norms(p, 100, norms);
    for (size_t j = 0; j < 100; j++)
        ck_assert_msg(fabs(norms[j] - 1.0) < 1e-4, "column %zu norm^2 %.9g", j, norms[j]);
    intdim_proj_destroy(p);

    p = make(INTDIM_PROJ_FASTFOOD, 700, 200, 4);
    column_norms(p, 200, norms);
    double mean = 0.0;
    for (size_t j = 0; j < 200; j++)
        mean += norms[j] / 200.0;
    ck_assert_msg(fabs(mean - 1.0) < 0.05, "D 700: mean column norm^2 %.6g", mean);
    intdim_proj_destroy(p);
}
END_TEST

/* Per-group Fastfood normalizes each group's blocks by 1/sqrt(n_groups): with every group
 * a power of two, every column of the whole matrix has unit norm, also when d exceeds a
 * group's L and its blocks are stacked. */
START_TEST(test_columns_unit_norm_per_group)
{
    static const size_t sizes[] = { 4, 16, 1024 };
    intdim_proj *p = make_per_group(1044, 40, 3, sizes, 0, 12);
    double norms[40];
    column_norms(p, 40, norms);
    for (size_t j = 0; j < 40; j++)
        ck_assert_msg(fabs(norms[j] - 1.0) < 1e-4, "column %zu norm^2 %.9g", j, norms[j]);
    intdim_proj_destroy(p);
    /* the same for blocks of 256 rows (16 of them), d above and below the block */
    for (size_t d = 40; d <= 300; d += 260) {
        p = make_blocked(4096, d, 256, 0, NULL, 13);
        double *bn = malloc(d * sizeof(double));
        column_norms(p, d, bn);
        for (size_t j = 0; j < d; j++)
            ck_assert_msg(fabs(bn[j] - 1.0) < 1e-4, "block 256 d %zu column %zu norm^2 %.9g", d,
                          j, bn[j]);
        free(bn);
        intdim_proj_destroy(p);
    }
}
END_TEST

/* Dense entries times sqrt(D) look like N(0,1): mean 0, variance 1, fourth moment 3; and
 * distinct columns are nearly orthogonal (|<c_j, c_k>| ~ 1/sqrt(D)). */
START_TEST(test_dense_entries_gaussian)
{
    size_t D = 4096, d = 33; /* odd d: Box-Muller pairs straddle rows */
    intdim_proj *p = make(INTDIM_PROJ_DENSE, D, d, 17);
    float *cols = malloc(D * d * sizeof(float)), *e = zeros(d);
    for (size_t j = 0; j < d; j++) {
        e[j] = 1.0f;
        intdim_proj_apply(p, e, cols + j * D);
        e[j] = 0.0f;
    }
    double m1 = 0, m2 = 0, m4 = 0, n = (double)(D * d);
    for (size_t i = 0; i < D * d; i++) {
        double z = cols[i] * sqrt((double)D);
        m1 += z / n;
        m2 += z * z / n;
        m4 += z * z * z * z / n;
    }
    ck_assert_msg(fabs(m1) < 0.03, "mean %g", m1);
    ck_assert_msg(fabs(m2 - 1.0) < 1e-4, "variance %g", m2); /* exact by normalization */
    ck_assert_msg(fabs(m4 - 3.0) < 0.15, "fourth moment %g", m4);
    double worst = 0.0;
    for (size_t j = 0; j < d; j++)
        for (size_t k = 0; k < j; k++)
            worst = fmax(worst, fabs(dot(cols + j * D, cols + k * D, D)));
    ck_assert_msg(worst < 6.0 / sqrt((double)D), "largest column overlap %g", worst);
    free(cols);
    free(e);
    intdim_proj_destroy(p);
}
END_TEST

START_TEST(test_sparse_pattern)
{
    /* density 1/sqrt(D) = 1/64: about D d / 64 nonzeros, each column's nonzeros all
     * +-1/sqrt(count) */
    size_t D = 4096, d = 64;
    intdim_proj *p = make(INTDIM_PROJ_SPARSE, D, d, 11);
    double density;
    ck_assert_int_eq(intdim_proj_get(p, INTDIM_PROJ_SPARSE_DENSITY, &density), INTDIM_OK);
    ck_assert(fabs(density - 1.0 / 64.0) < 1e-15);
    float *e = zeros(d), *col = zeros(D);
    size_t total = 0;
    for (size_t j = 0; j < d; j++) {
        e[j] = 1.0f;
        intdim_proj_apply(p, e, col);
        e[j] = 0.0f;
        size_t n = 0;
        for (size_t i = 0; i < D; i++)
            n += col[i] != 0.0f;
        ck_assert_uint_ge(n, 1);
        for (size_t i = 0; i < D; i++)
            if (col[i] != 0.0f)
                ck_assert(fabs(fabs(col[i]) - 1.0 / sqrt((double)n)) < 1e-6);
        total += n;
    }
    double expected = (double)D * (double)d * density;
    ck_assert_msg(fabs((double)total - expected) < 0.1 * expected, "nnz %zu, expected %.0f",
                  total, expected);
    intdim_proj_destroy(p);

    /* explicit density 1: every entry nonzero, magnitude 1/sqrt(D) */
    int id = INTDIM_PROJ_SPARSE_DENSITY;
    double one = 1.0;
    ck_assert_int_eq(intdim_proj_create_ex(&p, INTDIM_PROJ_SPARSE, 50, 3, 1, 0, NULL, 1, &id,
                                           &one), INTDIM_OK);
    e[0] = 1.0f;
    intdim_proj_apply(p, e, col);
    for (size_t i = 0; i < 50; i++)
        ck_assert(fabs(fabs(col[i]) - 1.0 / sqrt(50.0)) < 1e-6);
    intdim_proj_destroy(p);

    /* a tiny density leaves columns empty before the rescue: each still has one nonzero */
    double tiny = 1e-9;
    ck_assert_int_eq(intdim_proj_create_ex(&p, INTDIM_PROJ_SPARSE, 100, 20, 1, 0, NULL, 1, &id,
                                           &tiny), INTDIM_OK);
    double norms[20];
    column_norms(p, 20, norms);
    for (size_t j = 0; j < 20; j++)
        ck_assert(fabs(norms[j] - 1.0) < 1e-6);
    check_adjoint(p, 1);
    intdim_proj_destroy(p);
    free(e);
    free(col);
}
END_TEST

/* ---- SAID --------------------------------------------------------------------------- */

static const size_t g_said_sizes[] = { 100, 57, 143 };
enum { SAID_D = 300, SAID_M = 3 };

static float *said_theta(size_t d, size_t m, uint64_t seed)
{
    float *theta = random_vector(d, seed);
    for (size_t k = 0; k < m; k++)
        theta[d - m + k] = 0.5f + (float)k * 0.35f; /* lambda != 1 */
    return theta;
}

static double said_objective(const intdim_proj *p, const float *theta, const float *g)
{
    size_t D = intdim_proj_D(p);
    float *y = zeros(D);
    ck_assert_int_eq(intdim_proj_apply(p, theta, y), INTDIM_OK);
    double f = dot(g, y, D);
    free(y);
    return f;
}

/* f(theta) = <g, P(theta)> is linear in each single coordinate, so central differences
 * are exact up to rounding even with a large step. */
static void check_said_gradient(const intdim_proj *p, uint64_t seed)
{
    size_t D = intdim_proj_D(p), d = intdim_proj_d(p), m = intdim_proj_n_scales(p);
    ck_assert_uint_ge(m, 1);
    float *theta = said_theta(d, m, seed), *g = random_vector(D, seed + 1), *gd = zeros(d);
    ck_assert_int_eq(intdim_proj_vjp(p, theta, g, gd), INTDIM_OK);
    const float h = 0.5f;
    for (size_t c = 0; c < d; c++) {
        float saved = theta[c];
        theta[c] = saved + h;
        double fp = said_objective(p, theta, g);
        theta[c] = saved - h;
        double fm = said_objective(p, theta, g);
        theta[c] = saved;
        double fd = (fp - fm) / (2.0 * h);
        ck_assert_msg(fabs(fd - gd[c]) <= 2e-4 * fmax(1.0, fabs(fd)),
                      "kind %d coordinate %zu%s: vjp %.7g, finite difference %.7g",
                      intdim_proj_kind_of(p), c, c >= d - m ? " (scale)" : "", gd[c], fd);
    }
    free(theta);
    free(g);
    free(gd);
}

START_TEST(test_said_gradient)
{
    int kind = g_linear_kinds[_i];
    intdim_proj *p = make_said(kind, SAID_D, 40, SAID_M, g_said_sizes, 21);
    check_said_gradient(p, 5);
    intdim_proj_destroy(p);
    if (kind == INTDIM_PROJ_FASTFOOD) {
        p = make_per_group(SAID_D, 40, SAID_M, g_said_sizes, 1, 22);
        check_said_gradient(p, 6);
        intdim_proj_destroy(p);
        /* SAID's groups and the Fastfood blocks are independent */
        p = make_blocked(SAID_D, 40, 64, SAID_M, g_said_sizes, 23);
        check_said_gradient(p, 7);
        intdim_proj_destroy(p);
    }
}
END_TEST

/* SAID over a kind is the kind's projection of theta[0:d-m], scaled per group. */
static void check_said_matches_plain(int kind, size_t D, size_t m, const size_t *sizes)
{
    size_t d = 40, d_lin = d - m;
    intdim_proj *said = make_said(kind, D, d, m, sizes, 31);
    intdim_proj *plain = make(kind, D, d_lin, 31);
    ck_assert_uint_eq(intdim_proj_d(said), d);
    ck_assert_uint_eq(intdim_proj_n_scales(said), m);
    ck_assert_uint_eq(intdim_proj_n_scales(plain), 0);
    float *theta = said_theta(d, m, 8), *y = zeros(D), *z = zeros(D);
    ck_assert_int_eq(intdim_proj_apply(plain, theta, y), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_apply(said, theta, z), INTDIM_OK);
    size_t i = 0;
    for (size_t k = 0; k < m; k++)
        for (size_t n = 0; n < sizes[k]; n++, i++)
            ck_assert(z[i] == theta[d_lin + k] * y[i]);

    /* the x-part of the vjp is P^T (lambda (.) g); the scales' part is the group sums */
    float *g = random_vector(D, 9), *lg = zeros(D), *gd = zeros(d);
    float *gx = zeros(d_lin);
    i = 0;
    for (size_t k = 0; k < m; k++)
        for (size_t n = 0; n < sizes[k]; n++, i++)
            lg[i] = theta[d_lin + k] * g[i];
    ck_assert_int_eq(intdim_proj_vjp(said, theta, g, gd), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_vjp(plain, NULL, lg, gx), INTDIM_OK);
    ck_assert_mem_eq(gd, gx, d_lin * sizeof(float));
    i = 0;
    for (size_t k = 0; k < m; k++) {
        double s = 0.0;
        for (size_t n = 0; n < sizes[k]; n++, i++)
            s += (double)g[i] * (double)y[i];
        ck_assert(fabs(s - gd[d_lin + k]) <= 1e-5 * (1.0 + fabs(s)));
    }
    free(theta);
    free(y);
    free(z);
    free(g);
    free(lg);
    free(gd);
    free(gx);
    intdim_proj_destroy(said);
    intdim_proj_destroy(plain);
}

/* Small groups, and large ones spanning several of SAID's fixed reduction blocks. */
START_TEST(test_said_is_scaled_plain_projection)
{
    static const size_t big_groups[] = { 1, 20000, 9999 };
    check_said_matches_plain(g_linear_kinds[_i], SAID_D, SAID_M, g_said_sizes);
    check_said_matches_plain(g_linear_kinds[_i], 30000, 3, big_groups);
}
END_TEST

START_TEST(test_init_theta)
{
    intdim_proj *p = make_said(INTDIM_PROJ_SPARSE, SAID_D, 10, SAID_M, g_said_sizes, 1);
    float theta[10];
    memset(theta, 0x7f, sizeof theta);
    ck_assert_int_eq(intdim_proj_init_theta(p, theta), INTDIM_OK);
    for (size_t i = 0; i < 10; i++)
        ck_assert(theta[i] == (i < 7 ? 0.0f : 1.0f));
    /* training starts at theta0: P(init) == 0 */
    float *y = random_vector(SAID_D, 1);
    ck_assert_int_eq(intdim_proj_apply(p, theta, y), INTDIM_OK);
    for (size_t i = 0; i < SAID_D; i++)
        ck_assert(y[i] == 0.0f);
    free(y);
    intdim_proj_destroy(p);
}
END_TEST

/* ---- reproducibility ---------------------------------------------------------------- */

typedef struct outputs {
    float *y;  /* apply */
    float *gd; /* vjp */
} outputs;

static outputs run_once(const intdim_proj *p, uint64_t seed)
{
    size_t D = intdim_proj_D(p), d = intdim_proj_d(p), m = intdim_proj_n_scales(p);
    float *theta = m ? said_theta(d, m, seed) : random_vector(d, seed);
    float *g = random_vector(D, seed + 1);
    outputs o = { zeros(D), zeros(d) };
    ck_assert_int_eq(intdim_proj_apply(p, theta, o.y), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_vjp(p, theta, g, o.gd), INTDIM_OK);
    free(theta);
    free(g);
    return o;
}

static void free_outputs(outputs o)
{
    free(o.y);
    free(o.gd);
}

/* Per-group Fastfood with 45 groups: small ones (several run at once, one per thread,
 * in waves), one large one in the middle (run with all threads), and groups smaller
 * than d (several chunks each, added in order). */
static intdim_proj *make_many_small_groups(uint64_t seed)
{
    enum { M = 45 };
    size_t sizes[M], D = 0;
    for (size_t i = 0; i < M; i++) {
        sizes[i] = i == 20 ? 140000 : (i * 37) % 200 + 1;
        D += sizes[i];
    }
    return make_per_group(D, 90, M, sizes, 0, seed);
}

/* Shapes large enough that every kind splits its work in several blocks or chunks. */
static intdim_proj *make_big(int variant, uint64_t seed)
{
    static const size_t groups[] = { 20000, 1, 30000, 250001 };
    switch (variant) {
    case 0: return make(INTDIM_PROJ_DENSE, 9000, 20, seed);
    case 1: return make(INTDIM_PROJ_SPARSE, 600000, 16, seed);
    case 2: return make(INTDIM_PROJ_FASTFOOD, 70001, 300, seed);
    case 3: return make_said(INTDIM_PROJ_SPARSE, 300002, 30, 4, groups, seed);
    case 4: return make_said(INTDIM_PROJ_FASTFOOD, 300002, 300, 4, groups, seed);
    case 5: return make_said(INTDIM_PROJ_DENSE, 300002, 8, 4, groups, seed);
    case 6: return make_per_group(300002, 100, 4, groups, 1, seed);
    case 7: return make_many_small_groups(seed);
    case 8: return make_blocked(300002, 300, 16384, 4, groups, seed);
    case 9: return make_blocked(10001, 3, 2, 0, NULL, seed); /* 10002 blocks */
    case 10: return make_blocked(199210, 1000, 1024, 0, NULL, seed); /* 195 blocks ~ d */
    /* 12 blocks of 2^17 and a last one of 3 rows: the 2^17 blocks run on lanes too (at
     * least two per thread, also with the 5 threads of proj-5-threads) */
    default: return make_blocked(12 * 131072 + 3, 300, 131072, 0, NULL, seed);
    }
}
enum { N_BIG_VARIANTS = 12 };

START_TEST(test_same_seed_same_bits_other_seed_differs)
{
    intdim_proj *a = make_big(_i, 1234), *b = make_big(_i, 1234), *c = make_big(_i, 1235);
    size_t D = intdim_proj_D(a), d = intdim_proj_d(a);
    outputs oa = run_once(a, 1), ob = run_once(b, 1), oc = run_once(c, 1);
    ck_assert_mem_eq(oa.y, ob.y, D * sizeof(float));
    ck_assert_mem_eq(oa.gd, ob.gd, d * sizeof(float));
    ck_assert(memcmp(oa.y, oc.y, D * sizeof(float)) != 0);
    ck_assert(memcmp(oa.gd, oc.gd, d * sizeof(float)) != 0);
    ck_assert_uint_eq(intdim_proj_seed(c), 1235);
    free_outputs(oa);
    free_outputs(ob);
    free_outputs(oc);
    intdim_proj_destroy(a);
    intdim_proj_destroy(b);
    intdim_proj_destroy(c);
}
END_TEST

START_TEST(test_threads_same_bits)
{
    intdim_proj *p = make_big(_i, 77);
    size_t D = intdim_proj_D(p), d = intdim_proj_d(p);
    require_two_threads("test_threads_same_bits");
    ck_assert_int_eq(intdim_proj_set(p, INTDIM_PROJ_THREADS, 1), INTDIM_OK);
    outputs one = run_once(p, 3);
    ck_assert_int_eq(intdim_proj_set(p, INTDIM_PROJ_THREADS, 2), INTDIM_OK);
    double v;
    ck_assert_int_eq(intdim_proj_get(p, INTDIM_PROJ_THREADS, &v), INTDIM_OK);
    ck_assert(v == 2.0);
    outputs two = run_once(p, 3);
    ck_assert_mem_eq(one.y, two.y, D * sizeof(float));
    ck_assert_mem_eq(one.gd, two.gd, d * sizeof(float));
    /* all available threads: more than 2 where OMP_NUM_THREADS says so (the proj-5-threads
     * run: 5 threads on fewer cores, so threads lag and others claim their blocks) */
    ck_assert_int_eq(intdim_proj_set(p, INTDIM_PROJ_THREADS, 0), INTDIM_OK);
    outputs all = run_once(p, 3);
    ck_assert_mem_eq(one.y, all.y, D * sizeof(float));
    ck_assert_mem_eq(one.gd, all.gd, d * sizeof(float));
    free_outputs(one);
    free_outputs(two);
    free_outputs(all);
    intdim_proj_destroy(p);
}
END_TEST

/* Generation runs on threads too: a handle built with 1 thread is the same as with 2. */
START_TEST(test_creation_threads_same_bits)
{
    int kind = g_linear_kinds[_i];
    size_t D = kind == INTDIM_PROJ_SPARSE ? 600000 : 9000, d = 20;
    int id = INTDIM_PROJ_THREADS;
    double one = 1.0, two = 2.0;
    intdim_proj *a = NULL, *b = NULL;
    require_two_threads("test_creation_threads_same_bits");
    ck_assert_int_eq(intdim_proj_create_ex(&a, kind, D, d, 8, 0, NULL, 1, &id, &one), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_create_ex(&b, kind, D, d, 8, 0, NULL, 1, &id, &two), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_set(b, INTDIM_PROJ_THREADS, 1), INTDIM_OK);
    outputs oa = run_once(a, 2), ob = run_once(b, 2);
    ck_assert_mem_eq(oa.y, ob.y, D * sizeof(float));
    ck_assert_mem_eq(oa.gd, ob.gd, d * sizeof(float));
    free_outputs(oa);
    free_outputs(ob);
    intdim_proj_destroy(a);
    intdim_proj_destroy(b);
}
END_TEST

/* OpenBLAS may split a gemv over its own threads; the dense kind must not depend on that.
 * (Weak: the BLIS build has no such function and skips the comparison.) */
extern void openblas_set_num_threads(int n) __attribute__((weak));

START_TEST(test_dense_independent_of_blas_threads)
{
    if (openblas_set_num_threads == NULL) {
        fprintf(stderr, "test_dense_independent_of_blas_threads: skipped, the BLAS is not "
                        "OpenBLAS (no openblas_set_num_threads)\n");
        return;
    }
    intdim_proj *p = make(INTDIM_PROJ_DENSE, 20000, 301, 4);
    openblas_set_num_threads(1);
    outputs one = run_once(p, 6);
    openblas_set_num_threads(2);
    outputs two = run_once(p, 6);
    ck_assert_mem_eq(one.y, two.y, 20000 * sizeof(float));
    ck_assert_mem_eq(one.gd, two.gd, 301 * sizeof(float));
    free_outputs(one);
    free_outputs(two);
    intdim_proj_destroy(p);
}
END_TEST

START_TEST(test_kernels_same_bits)
{
    intdim_proj *p = make(INTDIM_PROJ_FASTFOOD, 5000, 64, 2);
    double v;
    ck_assert_int_eq(intdim_proj_get(p, INTDIM_PROJ_KERNEL, &v), INTDIM_OK);
    ck_assert_int_eq((int)v, intdim__fwht_best_kernel());
    ck_assert_int_eq(intdim_proj_set(p, INTDIM_PROJ_KERNEL, INTDIM_KERNEL_PORTABLE), INTDIM_OK);
    outputs ref = run_once(p, 4);
    for (int k = INTDIM_KERNEL_AVX2; k <= INTDIM_KERNEL_AVX512; k++) {
        int st = intdim_proj_set(p, INTDIM_PROJ_KERNEL, k);
        if (!intdim__fwht_kernel_available(k)) {
            ck_assert_int_eq(st, INTDIM_EUNSUPPORTED);
            continue;
        }
        ck_assert_int_eq(st, INTDIM_OK);
        outputs o = run_once(p, 4);
        ck_assert_mem_eq(ref.y, o.y, 5000 * sizeof(float));
        ck_assert_mem_eq(ref.gd, o.gd, 64 * sizeof(float));
        free_outputs(o);
    }
    ck_assert_int_eq(intdim_proj_set(p, INTDIM_PROJ_KERNEL, INTDIM_KERNEL_AUTO), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_get(p, INTDIM_PROJ_KERNEL, &v), INTDIM_OK);
    ck_assert_int_eq((int)v, intdim__fwht_best_kernel());
    free_outputs(ref);
    intdim_proj_destroy(p);
}
END_TEST

typedef struct concurrent_job {
    const intdim_proj *p;
    outputs expected;
    int mismatches;
} concurrent_job;

static void *concurrent_worker(void *arg)
{
    concurrent_job *job = arg;
    size_t D = intdim_proj_D(job->p), d = intdim_proj_d(job->p);
    for (int rep = 0; rep < 20; rep++) {
        outputs o = run_once(job->p, 5);
        job->mismatches += memcmp(o.y, job->expected.y, D * sizeof(float)) != 0;
        job->mismatches += memcmp(o.gd, job->expected.gd, d * sizeof(float)) != 0;
        free_outputs(o);
    }
    return NULL;
}

/* Concurrent callers on one const handle: the second one gets a private workspace. */
START_TEST(test_concurrent_callers)
{
    static const size_t groups[] = { 3000, 5001 };
    intdim_proj *p = make_said(g_linear_kinds[_i], 8001, 50, 2, groups, 6);
    ck_assert_int_eq(intdim_proj_set(p, INTDIM_PROJ_THREADS, 1), INTDIM_OK);
    outputs expected = run_once(p, 5);
    concurrent_job jobs[4];
    pthread_t threads[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (concurrent_job){ p, expected, 0 };
        ck_assert_int_eq(pthread_create(&threads[t], NULL, concurrent_worker, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        ck_assert_int_eq(jobs[t].mismatches, 0);
    }
    free_outputs(expected);
    intdim_proj_destroy(p);
}
END_TEST

/* ---- queries ------------------------------------------------------------------------ */

START_TEST(test_queries)
{
    static const size_t sizes[] = { 10, 20, 70 };
    intdim_proj *p = make_said(INTDIM_PROJ_DENSE, 100, 12, 3, sizes, 99);
    ck_assert_uint_eq(intdim_proj_D(p), 100);
    ck_assert_uint_eq(intdim_proj_d(p), 12);
    ck_assert_uint_eq(intdim_proj_n_groups(p), 3);
    ck_assert_uint_eq(intdim_proj_n_scales(p), 3);
    ck_assert_int_eq(intdim_proj_kind_of(p), INTDIM_PROJ_DENSE);
    ck_assert_uint_eq(intdim_proj_seed(p), 99);
    ck_assert_uint_ge(intdim_proj_bytes(p), 100 * 9 * sizeof(float));
    size_t got[4] = { 0 };
    ck_assert_int_eq(intdim_proj_group_sizes(p, got, 4), INTDIM_OK);
    ck_assert_mem_eq(got, sizes, sizeof sizes);
    ck_assert_int_eq(intdim_proj_group_sizes(p, got, 2), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_group_sizes(p, NULL, 3), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_group_sizes(NULL, got, 3), INTDIM_EINVAL);
    double v;
    ck_assert_int_eq(intdim_proj_get(p, INTDIM_PROJ_SAID, &v), INTDIM_OK);
    ck_assert(v == 1.0);
    ck_assert_int_eq(intdim_proj_get(p, INTDIM_PROJ_MEMORY_BUDGET, &v), INTDIM_OK);
    ck_assert(v == 8.0 * 1024 * 1024 * 1024);
    ck_assert_int_eq(intdim_proj_get(p, INTDIM_PROJ_FASTFOOD_PER_GROUP, &v), INTDIM_OK);
    ck_assert(v == 0.0);
    for (int param = INTDIM_PROJ_SPARSE_DENSITY; param <= INTDIM_PROJ_FASTFOOD_TABLES; param++) {
        double lo = NAN, hi = NAN;
        ck_assert_int_eq(intdim_proj_param_bounds(param, &lo, &hi), INTDIM_OK);
        ck_assert(lo <= hi);
        ck_assert_int_eq(intdim_proj_get(p, param, &v), INTDIM_OK);
    }
    intdim_proj_destroy(p);

    /* bytes grow with the state: dense D x d floats, sparse far less */
    p = make(INTDIM_PROJ_DENSE, 4096, 64, 1);
    size_t dense_bytes = intdim_proj_bytes(p);
    ck_assert_uint_ge(dense_bytes, 4096 * 64 * sizeof(float));
    intdim_proj_destroy(p);
    p = make(INTDIM_PROJ_SPARSE, 4096, 64, 1);
    ck_assert_uint_lt(intdim_proj_bytes(p), dense_bytes / 8);
    ck_assert_uint_gt(intdim_proj_bytes(p), 4096 * 64 / 64 * (8 + 4) * 9 / 10);
    ck_assert_uint_eq(intdim_proj_n_groups(p), 0);
    ck_assert_int_eq(intdim_proj_group_sizes(p, NULL, 0), INTDIM_OK);
    intdim_proj_destroy(p);

    /* NULL handles */
    ck_assert_uint_eq(intdim_proj_D(NULL), 0);
    ck_assert_uint_eq(intdim_proj_d(NULL), 0);
    ck_assert_uint_eq(intdim_proj_bytes(NULL), 0);
    intdim_proj_destroy(NULL);
}
END_TEST

/* ---- bad arguments ------------------------------------------------------------------ */

/* Expect status, *out reset to NULL, and a message naming `needle`. */
static void expect_create_fails(int expected, const char *needle, int kind, size_t D, size_t d,
                                size_t n_groups, const size_t *sizes, size_t n_params,
                                const int *ids, const double *values)
{
    intdim_proj *out = (intdim_proj *)&expected; /* any non-NULL value */
    int st = intdim_proj_create_ex(&out, kind, D, d, 1, n_groups, sizes, n_params, ids, values);
    ck_assert_msg(st == expected, "kind %d D %zu d %zu: got %d (%s), expected %d", kind, D, d,
                  st, intdim_last_error(), expected);
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(intdim_last_error(), needle) != NULL, "message '%s' lacks '%s'",
                  intdim_last_error(), needle);
}

START_TEST(test_bad_create_arguments)
{
    static const size_t good[] = { 60, 40 }, zero[] = { 100, 0 }, short_sum[] = { 60, 30 };
    static const size_t over[] = { 60, 50 };
    const int FF = INTDIM_PROJ_FASTFOOD, DN = INTDIM_PROJ_DENSE;
    ck_assert_int_eq(intdim_proj_create(NULL, DN, 10, 2, 1), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_create_said(NULL, DN, 100, 10, 2, good, 1), INTDIM_EINVAL);
    expect_create_fails(INTDIM_EINVAL, "D is 0", DN, 0, 1, 0, NULL, 0, NULL, NULL);
    expect_create_fails(INTDIM_EINVAL, "d is 0", FF, 10, 0, 0, NULL, 0, NULL, NULL);
    expect_create_fails(INTDIM_EINVAL, "d = 11", FF, 10, 11, 0, NULL, 0, NULL, NULL);
    expect_create_fails(INTDIM_EINVAL, "kind -1", -1, 10, 2, 0, NULL, 0, NULL, NULL);
    expect_create_fails(INTDIM_EINVAL, "kind 4", 4, 10, 2, 0, NULL, 0, NULL, NULL);
    expect_create_fails(INTDIM_EINVAL, "IDENTITY", INTDIM_PROJ_IDENTITY, 10, 9, 0, NULL, 0,
                        NULL, NULL);
    expect_create_fails(INTDIM_ETOOBIG, "2^40", FF, ((size_t)1 << 40) + 1, 10, 0, NULL, 0,
                        NULL, NULL);
    expect_create_fails(INTDIM_EINVAL, "size 0", DN, 100, 10, 2, zero, 0, NULL, NULL);
    expect_create_fails(INTDIM_EINVAL, "sum to 90", DN, 100, 10, 2, short_sum, 0, NULL, NULL);
    expect_create_fails(INTDIM_EINVAL, "exceed", DN, 100, 10, 2, over, 0, NULL, NULL);
    expect_create_fails(INTDIM_EINVAL, "group_sizes is NULL", DN, 100, 10, 2, NULL, 0, NULL,
                        NULL);

    int said_id = INTDIM_PROJ_SAID;
    double on = 1.0;
    intdim_proj *out = (intdim_proj *)&on;
    ck_assert_int_eq(intdim_proj_create_said(&out, DN, 100, 2, 2, good, 1), INTDIM_EINVAL);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "m < d"));
    expect_create_fails(INTDIM_EINVAL, "m < d", DN, 100, 1, 2, good, 1, &said_id, &on);
    expect_create_fails(INTDIM_EINVAL, "SAID needs at least one group", DN, 100, 10, 0, NULL, 1,
                        &said_id, &on);
    expect_create_fails(INTDIM_EINVAL, "IDENTITY", INTDIM_PROJ_IDENTITY, 100, 100, 2, good, 1,
                        &said_id, &on);

    int pg_id = INTDIM_PROJ_FASTFOOD_PER_GROUP;
    expect_create_fails(INTDIM_EINVAL, "needs kind FASTFOOD", DN, 100, 10, 2, good, 1, &pg_id,
                        &on);
    expect_create_fails(INTDIM_EINVAL, "needs groups", FF, 100, 10, 0, NULL, 1, &pg_id, &on);

    /* SPARSE_DENSITY on another kind would be ignored: refused instead (0, the default, is
     * accepted on every kind) */
    int density_id = INTDIM_PROJ_SPARSE_DENSITY;
    double density = 0.05, density_default = 0.0;
    expect_create_fails(INTDIM_EINVAL, "applies to kind SPARSE only", FF, 100, 10, 0, NULL, 1,
                        &density_id, &density);
    expect_create_fails(INTDIM_EINVAL, "applies to kind SPARSE only", DN, 100, 10, 0, NULL, 1,
                        &density_id, &density);
    intdim_proj *dense_default = NULL;
    ck_assert_int_eq(intdim_proj_create_ex(&dense_default, DN, 100, 10, 1, 0, NULL, 1,
                                           &density_id, &density_default),
                     INTDIM_OK);
    intdim_proj_destroy(dense_default);

    /* FASTFOOD_BLOCK: a power of two >= 2, Fastfood only, not with per-group blocks */
    int block_ids[2] = { INTDIM_PROJ_FASTFOOD_BLOCK, INTDIM_PROJ_FASTFOOD_PER_GROUP };
    double block_values[2] = { 3.0, 1.0 };
    expect_create_fails(INTDIM_EINVAL, "not a power of two", FF, 100, 10, 0, NULL, 1, block_ids,
                        block_values);
    block_values[0] = 1.0;
    expect_create_fails(INTDIM_EINVAL, "not a power of two", FF, 100, 10, 0, NULL, 1, block_ids,
                        block_values);
    block_values[0] = 16.0;
    expect_create_fails(INTDIM_EINVAL, "needs kind FASTFOOD", DN, 100, 10, 0, NULL, 1,
                        block_ids, block_values);
    expect_create_fails(INTDIM_EINVAL, "cannot be combined", FF, 100, 10, 2, good, 2, block_ids,
                        block_values);

    /* parameter ids and values */
    struct {
        int id;
        double value;
        const char *needle;
    } bad[] = {
        { -1, 0.0, "parameter id -1" },
        { 8, 0.0, "parameter id 8" },
        { INTDIM_PROJ_FASTFOOD_TABLES, 1.0, "read-only" },
        { INTDIM_PROJ_FASTFOOD_BLOCK, 0.5, "whole number" },
        { INTDIM_PROJ_FASTFOOD_BLOCK, 8589934592.0, "INTDIM_PROJ_FASTFOOD_BLOCK" },
        { INTDIM_PROJ_SPARSE_DENSITY, 1.5, "INTDIM_PROJ_SPARSE_DENSITY = 1.5" },
        { INTDIM_PROJ_SPARSE_DENSITY, -0.1, "INTDIM_PROJ_SPARSE_DENSITY = -0.1" },
        { INTDIM_PROJ_SPARSE_DENSITY, NAN, "INTDIM_PROJ_SPARSE_DENSITY is NaN" },
        { INTDIM_PROJ_MEMORY_BUDGET, -1.0, "INTDIM_PROJ_MEMORY_BUDGET" },
        { INTDIM_PROJ_MEMORY_BUDGET, INFINITY, "INTDIM_PROJ_MEMORY_BUDGET" },
        { INTDIM_PROJ_FASTFOOD_PER_GROUP, 0.5, "whole number" },
        { INTDIM_PROJ_SAID, 2.0, "INTDIM_PROJ_SAID = 2" },
        { INTDIM_PROJ_THREADS, -1.0, "INTDIM_PROJ_THREADS = -1" },
        { INTDIM_PROJ_THREADS, NAN, "INTDIM_PROJ_THREADS is NaN" },
        { INTDIM_PROJ_KERNEL, 4.0, "INTDIM_PROJ_KERNEL = 4" },
        { INTDIM_PROJ_KERNEL, -1.0, "INTDIM_PROJ_KERNEL = -1" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_create_fails(INTDIM_EINVAL, bad[i].needle, INTDIM_PROJ_SPARSE, 100, 10, 0, NULL,
                            1, &bad[i].id, &bad[i].value);
    expect_create_fails(INTDIM_EINVAL, "n_params = 1", DN, 100, 10, 0, NULL, 1, NULL, &on);
    expect_create_fails(INTDIM_EINVAL, "n_params = 1", DN, 100, 10, 0, NULL, 1, &said_id, NULL);

    /* a kernel the CPU lacks (on a CPU that has them all, pretend it lacks the SIMD ones):
     * refused at creation and by intdim_proj_set, which leaves the handle's kernel alone;
     * AUTO falls back to what there is */
    for (int hide = 0; hide < 2; hide++) {
        intdim__fwht_hide_kernels(hide ? (1u << INTDIM_KERNEL_AVX2) | (1u << INTDIM_KERNEL_AVX512)
                                       : 0u);
        for (int k = INTDIM_KERNEL_PORTABLE; k <= INTDIM_KERNEL_AVX512; k++) {
            if (intdim__fwht_kernel_available(k))
                continue;
            int kid = INTDIM_PROJ_KERNEL;
            double kv = k;
            expect_create_fails(INTDIM_EUNSUPPORTED, "not available", FF, 100, 10, 0, NULL, 1,
                                &kid, &kv);
            intdim_proj *p = NULL;
            ck_assert_int_eq(intdim_proj_create(&p, FF, 100, 10, 0), INTDIM_OK);
            double before, after;
            ck_assert_int_eq(intdim_proj_get(p, INTDIM_PROJ_KERNEL, &before), INTDIM_OK);
            ck_assert_int_eq(intdim_proj_set(p, INTDIM_PROJ_KERNEL, kv), INTDIM_EUNSUPPORTED);
            ck_assert_ptr_nonnull(strstr(intdim_last_error(), "not available"));
            ck_assert_int_eq(intdim_proj_get(p, INTDIM_PROJ_KERNEL, &after), INTDIM_OK);
            ck_assert(after == before);
            intdim_proj_destroy(p);
        }
        if (hide) {
            ck_assert_int_eq(intdim__fwht_best_kernel(), INTDIM_KERNEL_PORTABLE);
            intdim_proj *p = NULL;
            ck_assert_int_eq(intdim_proj_create(&p, FF, 100, 10, 0), INTDIM_OK);
            double v;
            ck_assert_int_eq(intdim_proj_get(p, INTDIM_PROJ_KERNEL, &v), INTDIM_OK);
            ck_assert(v == INTDIM_KERNEL_AUTO || v == INTDIM_KERNEL_PORTABLE);
            intdim_proj_destroy(p);
        }
    }
    intdim__fwht_hide_kernels(0);
}
END_TEST

START_TEST(test_bad_call_arguments)
{
    static const size_t sizes[] = { 60, 40 };
    intdim_proj *p = make_said(INTDIM_PROJ_SPARSE, 100, 10, 2, sizes, 1);
    float theta[10] = { 0 }, y[100] = { 0 }, g[100] = { 0 }, gd[10];
    ck_assert_int_eq(intdim_proj_apply(NULL, theta, y), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_apply(p, NULL, y), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_apply(p, theta, NULL), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_vjp(NULL, theta, g, gd), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_vjp(p, theta, NULL, gd), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_vjp(p, theta, g, NULL), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_vjp(p, NULL, g, gd), INTDIM_EINVAL); /* SAID needs theta */
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "theta_d is NULL"));
    /* an output overlapping an input, even by one float (the kernels read inputs after
     * writing outputs: sparse apply and vjp gave wrong numbers in place) */
    ck_assert_int_eq(intdim_proj_apply(p, y + 90, y), INTDIM_EINVAL);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "delta_D overlaps theta_d"));
    ck_assert_int_eq(intdim_proj_apply(p, y + 99, y), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_vjp(p, theta, g, g + 95), INTDIM_EINVAL);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "g_d overlaps g_D"));
    ck_assert_int_eq(intdim_proj_vjp(p, theta, g, theta), INTDIM_EINVAL); /* SAID reads it */
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "g_d overlaps theta_d"));
    ck_assert_int_eq(intdim_proj_apply(p, g, y), INTDIM_OK); /* adjacent is fine */
    ck_assert_int_eq(intdim_proj_vjp(p, theta, y, gd), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_init_theta(p, NULL), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_init_theta(NULL, theta), INTDIM_EINVAL);

    double v;
    ck_assert_int_eq(intdim_proj_set(NULL, INTDIM_PROJ_THREADS, 1), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_set(p, INTDIM_PROJ_SPARSE_DENSITY, 0.5), INTDIM_EINVAL);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "creation parameter"));
    ck_assert_int_eq(intdim_proj_set(p, INTDIM_PROJ_SAID, 0), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_set(p, INTDIM_PROJ_THREADS, -2), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_set(p, INTDIM_PROJ_THREADS, NAN), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_set(p, INTDIM_PROJ_KERNEL, 7), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_set(p, 99, 0), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_set(p, -1, 0), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_get(p, 99, &v), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_get(p, INTDIM_PROJ_THREADS, NULL), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_get(NULL, INTDIM_PROJ_THREADS, &v), INTDIM_EINVAL);
    double lo, hi;
    ck_assert_int_eq(intdim_proj_param_bounds(8, &lo, &hi), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_param_bounds(-1, &lo, &hi), INTDIM_EINVAL);
    /* either bound may be left out, as with the trainer's and the search's queries */
    double hi_alone = -1.0;
    ck_assert_int_eq(intdim_proj_param_bounds(INTDIM_PROJ_SPARSE_DENSITY, NULL, &hi_alone),
                     INTDIM_OK);
    ck_assert_double_eq(hi_alone, 1.0);
    ck_assert_int_eq(intdim_trainer_param_bounds(INTDIM_TRAIN_LR, NULL, NULL), INTDIM_OK);
    ck_assert_int_eq(intdim_search_param_bounds(INTDIM_SEARCH_SEEDS, NULL, NULL), INTDIM_OK);
    intdim_clear_error();
    ck_assert_int_eq(intdim_proj_kind_of(NULL), INTDIM_EINVAL);
    ck_assert_str_eq(intdim_last_error(), "intdim_proj_kind_of: p is NULL");
    /* the failed calls changed nothing */
    ck_assert_int_eq(intdim_proj_get(p, INTDIM_PROJ_THREADS, &v), INTDIM_OK);
    ck_assert(v == 0.0);
    intdim_proj_destroy(p);
}
END_TEST

/* ---- memory budget ------------------------------------------------------------------ */

START_TEST(test_dense_over_budget_fails_fast)
{
    intdim_proj *p = (intdim_proj *)&p;
    /* 2^24 x 1000 floats = 67 GB: refused before any allocation */
    ck_assert_int_eq(intdim_proj_create(&p, INTDIM_PROJ_DENSE, (size_t)1 << 24, 1000, 1),
                     INTDIM_ETOOBIG);
    ck_assert_ptr_null(p);
    const char *msg = intdim_last_error();
    ck_assert_msg(strstr(msg, "67.11 GB") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "INTDIM_PROJ_FASTFOOD") != NULL, "%s", msg);

    /* a small budget refuses small matrices too; raising it accepts them */
    int id = INTDIM_PROJ_MEMORY_BUDGET;
    double budget = 1000.0;
    ck_assert_int_eq(intdim_proj_create_ex(&p, INTDIM_PROJ_DENSE, 100, 10, 1, 0, NULL, 1, &id,
                                           &budget), INTDIM_ETOOBIG);
    ck_assert_ptr_null(p);
    budget = 4000.0; /* exactly the matrix */
    ck_assert_int_eq(intdim_proj_create_ex(&p, INTDIM_PROJ_DENSE, 100, 10, 1, 0, NULL, 1, &id,
                                           &budget), INTDIM_ETOOBIG); /* plus the state header */
    budget = 8000.0;
    ck_assert_int_eq(intdim_proj_create_ex(&p, INTDIM_PROJ_DENSE, 100, 10, 1, 0, NULL, 1, &id,
                                           &budget), INTDIM_OK);
    double v;
    ck_assert_int_eq(intdim_proj_get(p, INTDIM_PROJ_MEMORY_BUDGET, &v), INTDIM_OK);
    ck_assert(v == 8000.0);
    intdim_proj_destroy(p);

    /* sparse over its budget, and Fastfood far beyond what dense could do */
    budget = 1000.0;
    ck_assert_int_eq(intdim_proj_create_ex(&p, INTDIM_PROJ_SPARSE, 100000, 1000, 1, 0, NULL, 1,
                                           &id, &budget), INTDIM_ETOOBIG);
    ck_assert_ptr_null(p);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "SPARSE"));
}
END_TEST

/* ---- allocation failure injection --------------------------------------------------- */

START_TEST(test_allocation_failures)
{
    static const size_t groups[] = { 20, 30, 50 };
    int said_id = INTDIM_PROJ_SAID, pg_ids[2] = { INTDIM_PROJ_FASTFOOD_PER_GROUP,
                                                  INTDIM_PROJ_SAID };
    double on = 1.0, ons[2] = { 1.0, 1.0 };
    int block_ids[2] = { INTDIM_PROJ_FASTFOOD_BLOCK, INTDIM_PROJ_SAID };
    double block_values[2] = { 16.0, 1.0 };
    struct {
        int kind;
        size_t n_params;
        const int *ids;
        const double *values;
        size_t d;
    } cases[] = {
        { INTDIM_PROJ_IDENTITY, 0, NULL, NULL, 100 },
        { INTDIM_PROJ_DENSE, 0, NULL, NULL, 10 },
        { INTDIM_PROJ_SPARSE, 0, NULL, NULL, 10 },
        { INTDIM_PROJ_FASTFOOD, 0, NULL, NULL, 10 },
        { INTDIM_PROJ_DENSE, 1, &said_id, &on, 10 },
        { INTDIM_PROJ_SPARSE, 1, &said_id, &on, 10 },
        { INTDIM_PROJ_FASTFOOD, 1, &said_id, &on, 10 },
        { INTDIM_PROJ_FASTFOOD, 2, pg_ids, ons, 10 },
        { INTDIM_PROJ_FASTFOOD, 2, block_ids, block_values, 20 }, /* 7 blocks, 2 chunks each */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int succeeded = 0;
        for (long k = 1; k < 1000 && !succeeded; k++) {
            fail_alloc_install(k);
            intdim_proj *p = (intdim_proj *)&succeeded;
            int st = intdim_proj_create_ex(&p, cases[c].kind, 100, cases[c].d, 3, 3, groups,
                                           cases[c].n_params, cases[c].ids, cases[c].values);
            if (st == INTDIM_OK) {
                succeeded = 1;
                ck_assert_int_lt(g_fail.attempts, k); /* every allocation was tried */
                float theta[100] = { 1.0f }, y[100], gd[100];
                ck_assert_int_eq(intdim_proj_apply(p, theta, y), INTDIM_OK);
                ck_assert_int_eq(intdim_proj_vjp(p, theta, y, gd), INTDIM_OK);
                intdim_proj_destroy(p);
            } else {
                ck_assert_msg(st == INTDIM_ENOMEM, "case %zu failing allocation %ld: %d (%s)", c,
                              k, st, intdim_last_error());
                ck_assert_ptr_null(p);
            }
            ck_assert_msg(g_fail.allocs == g_fail.frees, "case %zu, failing allocation %ld: %ld "
                          "allocs, %ld frees", c, k, g_fail.allocs, g_fail.frees);
            fail_alloc_remove();
        }
        ck_assert_msg(succeeded, "case %zu never succeeded", c);
    }
}
END_TEST

/* The fallback for a concurrent caller, forced by holding the cached workspace's flag
 * (the only test that reaches into the handle): it allocates a private workspace, frees
 * it, and fails cleanly with INTDIM_ENOMEM when that allocation fails. */
START_TEST(test_busy_workspace_fallback)
{
    static const size_t groups[] = { 40, 60 };
    intdim_proj *p = make_said(g_linear_kinds[_i], 100, 10, 2, groups, 3);
    outputs expected = run_once(p, 1);
    atomic_flag_test_and_set(&p->work_busy);

    fail_alloc_install(0); /* never fail */
    outputs o = run_once(p, 1);
    ck_assert_int_eq(g_fail.allocs, 2); /* one private workspace per call */
    ck_assert_int_eq(g_fail.frees, 2);
    ck_assert_mem_eq(o.y, expected.y, 100 * sizeof(float));
    ck_assert_mem_eq(o.gd, expected.gd, 10 * sizeof(float));

    fail_alloc_install(1);
    float theta[10] = { 0 }, y[100] = { 0 }, gd[10];
    ck_assert_int_eq(intdim_proj_apply(p, theta, y), INTDIM_ENOMEM);
    g_fail.attempts = 0; /* fail the vjp's first allocation too */
    ck_assert_int_eq(intdim_proj_vjp(p, theta, y, gd), INTDIM_ENOMEM);
    ck_assert_int_eq(g_fail.allocs, g_fail.frees);
    fail_alloc_remove();

    atomic_flag_clear(&p->work_busy);
    free_outputs(o);
    free_outputs(expected);
    intdim_proj_destroy(p);
}
END_TEST


/* ---- Fastfood from explicit tables (REFERENCE's B, Pi, G) ------------------------------- */

typedef struct ff_tables_out {
    size_t L;
    float *B, *G;
    int64_t *Pi;
} ff_tables_out;

static ff_tables_out tables_alloc(size_t L)
{
    ff_tables_out t = { L, malloc(L * sizeof(float)), malloc(L * sizeof(float)),
                        malloc(L * sizeof(int64_t)) };
    ck_assert(t.B != NULL && t.G != NULL && t.Pi != NULL);
    return t;
}

static void tables_free(ff_tables_out t)
{
    free(t.B);
    free(t.G);
    free(t.Pi);
}

/* Random tables as a PyTorch reference would draw them: signs, a uniform permutation
 * (Fisher-Yates), and float32 values that are not binary16 (so the float32 path runs). */
static ff_tables_out random_tables(size_t L, uint64_t seed)
{
    ff_tables_out t = tables_alloc(L);
    uint64_t state = seed * 0x9e3779b97f4a7c15ULL + 7;
    for (size_t i = 0; i < L; i++) {
        t.B[i] = test_uniform(&state) < 0.5 ? -1.0f : 1.0f;
        t.G[i] = (float)(2.0 * test_uniform(&state) - 1.0) * 1.7f + 1e-7f;
        t.Pi[i] = (int64_t)i;
    }
    for (size_t i = L; i-- > 1;) {
        size_t j = (size_t)(test_uniform(&state) * (double)(i + 1));
        int64_t v = t.Pi[i];
        t.Pi[i] = t.Pi[j];
        t.Pi[j] = v;
    }
    return t;
}


/* REFERENCE's formula in double: y = H (G * gather(H (B * pad(x)), Pi)) / sqrt(D sum G^2). */
static void reference_fastfood(const ff_tables_out *t, size_t D, size_t d, const float *x,
                               double *y)
{
    size_t L = t->L;
    double *u = calloc(L, sizeof(double)), *v = calloc(L, sizeof(double)), sum_sq = 0.0;
    ck_assert(u != NULL && v != NULL);
    for (size_t j = 0; j < d; j++)
        u[j] = (double)t->B[j] * (double)x[j];
    ref_wht_double(u, L);
    for (size_t i = 0; i < L; i++) {
        v[i] = (double)t->G[i] * u[t->Pi[i]];
        sum_sq += (double)t->G[i] * (double)t->G[i];
    }
    ref_wht_double(v, L);
    for (size_t i = 0; i < D; i++)
        y[i] = v[i] / sqrt((double)D * sum_sq);
    free(u);
    free(v);
}

static size_t pow2_at_least(size_t D)
{
    size_t L = 1;
    while (L < D)
        L *= 2;
    return L;
}

static intdim_proj *make_from_tables(size_t D, size_t d, const ff_tables_out *t)
{
    intdim_proj *p = NULL;
    int st = intdim_proj_create_fastfood_tables(&p, D, d, t->L, t->B, t->Pi, t->G);
    ck_assert_msg(st == INTDIM_OK, "tables D %zu d %zu: %s (%s)", D, d, intdim_strerror(st),
                  intdim_last_error());
    return p;
}

/* A seeded projection's exported tables, imported again, give the very same bits (they are
 * binary16 values, so the fast kernels serve them), on 1 and 2 threads. */
START_TEST(test_fastfood_tables_round_trip)
{
    static const size_t shapes[][2] = { { 1, 1 }, { 5, 3 }, { 64, 64 }, { 1000, 10 },
                                        { 4097, 100 }, { 199210, 1000 } };
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        size_t D = shapes[c][0], d = shapes[c][1], L = pow2_at_least(D);
        intdim_proj *p = make(INTDIM_PROJ_FASTFOOD, D, d, 40 + c);
        ff_tables_out t = tables_alloc(L);
        ck_assert_int_eq(intdim_proj_fastfood_tables(p, t.B, t.Pi, t.G, L), INTDIM_OK);
        unsigned char *seen = calloc(L, 1);
        ck_assert_ptr_nonnull(seen);
        for (size_t i = 0; i < L; i++) {
            ck_assert(t.B[i] == 1.0f || t.B[i] == -1.0f);
            ck_assert(t.Pi[i] >= 0 && (size_t)t.Pi[i] < L && !seen[t.Pi[i]]);
            seen[t.Pi[i]] = 1;
            ck_assert(isfinite(t.G[i]));
        }
        free(seen);
        intdim_proj *q = make_from_tables(D, d, &t);
        double v = -1;
        ck_assert_int_eq(intdim_proj_get(q, INTDIM_PROJ_FASTFOOD_TABLES, &v), INTDIM_OK);
        ck_assert(v == 1.0);
        ck_assert_int_eq(intdim_proj_get(p, INTDIM_PROJ_FASTFOOD_TABLES, &v), INTDIM_OK);
        ck_assert(v == 0.0);
        ck_assert(intdim_proj_seed(q) == 0);
        for (int threads = 1; threads <= 2; threads++) {
            ck_assert_int_eq(intdim_proj_set(p, INTDIM_PROJ_THREADS, threads), INTDIM_OK);
            ck_assert_int_eq(intdim_proj_set(q, INTDIM_PROJ_THREADS, threads), INTDIM_OK);
            expect_same_bits(p, q, c, "exported tables imported again");
        }
        /* the imported projection has no seed to export again */
        ck_assert_int_eq(intdim_proj_fastfood_tables(q, t.B, t.Pi, t.G, L), INTDIM_EUNSUPPORTED);
        tables_free(t);
        intdim_proj_destroy(q);
        intdim_proj_destroy(p);
    }
}
END_TEST

/* A SAID projection's tables are those of its linear part (d - m inputs): imported as a plain
 * projection with d - m, it is the SAID map with every scale at 1, bit for bit. */
START_TEST(test_fastfood_tables_of_said)
{
    static const size_t groups[] = { 300, 700, 500 };
    size_t D = 1500, d = 43, m = 3, L = pow2_at_least(D);
    intdim_proj *said = make_said(INTDIM_PROJ_FASTFOOD, D, d, m, groups, 21);
    ff_tables_out t = tables_alloc(L);
    ck_assert_int_eq(intdim_proj_fastfood_tables(said, t.B, t.Pi, t.G, L), INTDIM_OK);
    intdim_proj *plain = make_from_tables(D, d - m, &t);
    float *theta = random_vector(d, 4), *y_said = zeros(D), *y_plain = zeros(D);
    for (size_t g = 0; g < m; g++)
        theta[d - m + g] = 1.0f;
    ck_assert_int_eq(intdim_proj_apply(said, theta, y_said), INTDIM_OK);
    ck_assert_int_eq(intdim_proj_apply(plain, theta, y_plain), INTDIM_OK);
    ck_assert(memcmp(y_said, y_plain, D * sizeof(float)) == 0);
    free(theta);
    free(y_said);
    free(y_plain);
    tables_free(t);
    intdim_proj_destroy(plain);
    intdim_proj_destroy(said);
}
END_TEST

/* Tables drawn elsewhere (float32 G, as torch draws it) give REFERENCE's formula, computed
 * here in double, to float precision, and an exact adjoint; 1 and 2 threads agree. The last
 * shape has k = 2^17: Pi mod k needs more than 16 bits (the tables' third byte), which the
 * float32 gather and fold read one entry at a time. */
START_TEST(test_fastfood_tables_match_reference_formula)
{
    static const size_t shapes[][2] = { { 1, 1 }, { 3, 2 }, { 100, 7 }, { 1024, 1024 },
                                        { 1500, 40 }, { 70000, 300 }, { 140000, 70000 },
                                        { 300000, 100 } };
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        size_t D = shapes[c][0], d = shapes[c][1], L = pow2_at_least(D);
        ff_tables_out t = random_tables(L, 90 + c);
        intdim_proj *q = make_from_tables(D, d, &t);
        float *x = random_vector(d, c + 5), *y = zeros(D), *y2 = zeros(D);
        double *want = calloc(D, sizeof(double)), err = 0.0, norm = 0.0;
        ck_assert_ptr_nonnull(want);
        reference_fastfood(&t, D, d, x, want);
        ck_assert_int_eq(intdim_proj_apply(q, x, y), INTDIM_OK);
        for (size_t i = 0; i < D; i++) {
            err = fmax(err, fabs((double)y[i] - want[i]));
            norm = fmax(norm, fabs(want[i]));
        }
        ck_assert_msg(err <= 1e-5 * norm, "D %zu d %zu: max error %.3g, max |y| %.3g", D, d, err,
                      norm);
        /* the same bits on two threads, both ways (float32 G has its own gather and fold) */
        float *g = random_vector(D, c + 7), *xt = zeros(d), *xt2 = zeros(d);
        ck_assert_int_eq(intdim_proj_vjp(q, x, g, xt), INTDIM_OK);
        ck_assert_int_eq(intdim_proj_set(q, INTDIM_PROJ_THREADS, 2), INTDIM_OK);
        ck_assert_int_eq(intdim_proj_apply(q, x, y2), INTDIM_OK);
        ck_assert(memcmp(y, y2, D * sizeof(float)) == 0);
        ck_assert_int_eq(intdim_proj_vjp(q, x, g, xt2), INTDIM_OK);
        ck_assert_msg(memcmp(xt, xt2, d * sizeof(float)) == 0, "D %zu d %zu: vjp on 2 threads",
                      D, d);
        free(g);
        free(xt);
        free(xt2);
        check_adjoint(q, c + 11);
        free(want);
        free(x);
        free(y);
        free(y2);
        tables_free(t);
        intdim_proj_destroy(q);
    }
}
END_TEST

START_TEST(test_fastfood_tables_bad_arguments)
{
    size_t D = 100, d = 10, L = 128;
    ff_tables_out t = random_tables(L, 3);
    intdim_proj *p = (intdim_proj *)&t;
    /* D that pads past 2^32 (a model of more than 4 billion parameters): refused before a
     * table is read (these 128-entry tables would be read far past their end), and the
     * seeded form refuses it as well, even with the memory budget out of the way */
    size_t huge = ((size_t)1 << 32) + 1;
    ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, huge, d, (size_t)1 << 33, t.B, t.Pi,
                                                        t.G),
                     INTDIM_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "past 2^32"));
    ck_assert_ptr_null(p);
    int budget_id = INTDIM_PROJ_MEMORY_BUDGET;
    double no_budget = 9007199254740992.0; /* 2^53 bytes, the largest accepted */
    p = (intdim_proj *)&t;
    ck_assert_int_eq(intdim_proj_create_ex(&p, INTDIM_PROJ_FASTFOOD, huge, d, 1, 0, NULL, 1,
                                           &budget_id, &no_budget),
                     INTDIM_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "past 2^32"));
    ck_assert_ptr_null(p);
    p = (intdim_proj *)&t;
    ck_assert_int_eq(intdim_proj_create_fastfood_tables(NULL, D, d, L, t.B, t.Pi, t.G),
                     INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, D, d, L, NULL, t.Pi, t.G),
                     INTDIM_EINVAL);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, D, d, L, t.B, NULL, t.G),
                     INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, D, d, L, t.B, t.Pi, NULL),
                     INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, 0, d, L, t.B, t.Pi, t.G),
                     INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, D, 0, L, t.B, t.Pi, t.G),
                     INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, D, D + 1, L, t.B, t.Pi, t.G),
                     INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, D, d, 100, t.B, t.Pi, t.G),
                     INTDIM_EINVAL);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "nextpow2"));
    ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, D, d, 256, t.B, t.Pi, t.G),
                     INTDIM_EINVAL);
    /* one bad entry at a time, anywhere in the tables (also past d and past D) */
    static const size_t where[] = { 0, 9, 110, 127 };
    for (size_t w = 0; w < sizeof where / sizeof where[0]; w++) {
        size_t i = where[w];
        float b = t.B[i], g = t.G[i];
        int64_t pi = t.Pi[i];
        t.B[i] = 0.5f;
        ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, D, d, L, t.B, t.Pi, t.G),
                         INTDIM_EINVAL);
        ck_assert_ptr_nonnull(strstr(intdim_last_error(), "B["));
        t.B[i] = b;
        t.G[i] = NAN;
        ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, D, d, L, t.B, t.Pi, t.G),
                         INTDIM_EINVAL);
        t.G[i] = INFINITY;
        ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, D, d, L, t.B, t.Pi, t.G),
                         INTDIM_EINVAL);
        t.G[i] = g;
        t.Pi[i] = -1;
        ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, D, d, L, t.B, t.Pi, t.G),
                         INTDIM_EINVAL);
        t.Pi[i] = (int64_t)L;
        ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, D, d, L, t.B, t.Pi, t.G),
                         INTDIM_EINVAL);
        t.Pi[i] = t.Pi[(i + 1) % L]; /* a duplicate: not a permutation */
        ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, D, d, L, t.B, t.Pi, t.G),
                         INTDIM_EINVAL);
        ck_assert_ptr_nonnull(strstr(intdim_last_error(), "permutation"));
        t.Pi[i] = pi;
        ck_assert_ptr_null(p);
    }
    float *zero_g = zeros(L);
    ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, D, d, L, t.B, t.Pi, zero_g),
                     INTDIM_EINVAL);
    /* G so small that the column scale 1 / sqrt(D sum G^2) overflows float */
    for (size_t i = 0; i < L; i++)
        zero_g[i] = 1e-42f;
    ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, D, d, L, t.B, t.Pi, zero_g),
                     INTDIM_EINVAL);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "scale"));
    free(zero_g);
    float g5 = t.G[5];
    t.G[5] = 1e20f; /* products of such G overflow float on the way */
    ck_assert_int_eq(intdim_proj_create_fastfood_tables(&p, D, d, L, t.B, t.Pi, t.G),
                     INTDIM_EINVAL);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "2^64"));
    t.G[5] = g5;
    ck_assert_ptr_null(p);
    /* G's own scale does not change P: powers of two give the very same bits */
    {
        intdim_proj *base = make_from_tables(D, d, &t);
        float *x = malloc(d * sizeof(float)), *want = malloc(D * sizeof(float));
        float *got = malloc(D * sizeof(float)), *g_saved = malloc(L * sizeof(float));
        ck_assert(x != NULL && want != NULL && got != NULL && g_saved != NULL);
        for (size_t j = 0; j < d; j++)
            x[j] = (float)j - 4.5f;
        ck_assert_int_eq(intdim_proj_apply(base, x, want), INTDIM_OK);
        memcpy(g_saved, t.G, L * sizeof(float));
        static const float factors[] = { 0x1p-60f, 0x1p40f };
        for (size_t f = 0; f < 2; f++) {
            for (size_t i = 0; i < L; i++)
                t.G[i] = g_saved[i] * factors[f];
            intdim_proj *scaled = make_from_tables(D, d, &t);
            ck_assert_int_eq(intdim_proj_apply(scaled, x, got), INTDIM_OK);
            ck_assert_msg(memcmp(got, want, D * sizeof(float)) == 0, "G x %g", factors[f]);
            intdim_proj_destroy(scaled);
        }
        memcpy(t.G, g_saved, L * sizeof(float));
        intdim_proj_destroy(base);
        free(g_saved);
        free(got);
        free(want);
        free(x);
    }
    /* the tables were fine all along */
    p = make_from_tables(D, d, &t);
    /* read-only parameter */
    ck_assert_int_eq(intdim_proj_set(p, INTDIM_PROJ_FASTFOOD_TABLES, 0), INTDIM_EINVAL);
    intdim_proj_destroy(p);
    int id = INTDIM_PROJ_FASTFOOD_TABLES;
    double one = 1.0, zero = 0.0;
    ck_assert_int_eq(intdim_proj_create_ex(&p, INTDIM_PROJ_FASTFOOD, D, d, 1, 0, NULL, 1, &id,
                                           &one), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_create_ex(&p, INTDIM_PROJ_FASTFOOD, D, d, 1, 0, NULL, 1, &id,
                                           &zero), INTDIM_OK);
    intdim_proj_destroy(p);

    /* export: only a seeded single block */
    ck_assert_int_eq(intdim_proj_fastfood_tables(NULL, t.B, t.Pi, t.G, L), INTDIM_EINVAL);
    intdim_proj *ff = make(INTDIM_PROJ_FASTFOOD, D, d, 1);
    ck_assert_int_eq(intdim_proj_fastfood_tables(ff, NULL, t.Pi, t.G, L), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_proj_fastfood_tables(ff, t.B, t.Pi, t.G, 64), INTDIM_EINVAL);
    intdim_proj_destroy(ff);
    intdim_proj *dense = make(INTDIM_PROJ_DENSE, D, d, 1);
    ck_assert_int_eq(intdim_proj_fastfood_tables(dense, t.B, t.Pi, t.G, L), INTDIM_EUNSUPPORTED);
    intdim_proj_destroy(dense);
    intdim_proj *stacked = make_blocked(D, d, 32, 0, NULL, 1);
    ck_assert_int_eq(intdim_proj_fastfood_tables(stacked, t.B, t.Pi, t.G, L),
                     INTDIM_EUNSUPPORTED);
    intdim_proj_destroy(stacked);
    tables_free(t);
}
END_TEST

START_TEST(test_fastfood_tables_allocation_failures)
{
    for (int binary16 = 0; binary16 <= 1; binary16++) {
        ff_tables_out t = random_tables(128, 8);
        for (size_t i = 0; binary16 && i < 128; i++)
            t.G[i] = (float)(int)(t.G[i] * 64.0f) / 64.0f; /* exact in binary16 */
        int succeeded = 0;
        for (long k = 1; k < 100 && !succeeded; k++) {
            fail_alloc_install(k);
            intdim_proj *p = (intdim_proj *)&succeeded;
            int st = intdim_proj_create_fastfood_tables(&p, 100, 10, 128, t.B, t.Pi, t.G);
            if (st == INTDIM_OK) {
                succeeded = 1;
                ck_assert_int_lt(g_fail.attempts, k);
                intdim_proj_destroy(p);
            } else {
                ck_assert_msg(st == INTDIM_ENOMEM, "failing allocation %ld: %d (%s)", k, st,
                              intdim_last_error());
                ck_assert_ptr_null(p);
            }
            ck_assert_msg(g_fail.allocs == g_fail.frees, "failing allocation %ld: %ld allocs, "
                          "%ld frees", k, g_fail.allocs, g_fail.frees);
            fail_alloc_remove();
        }
        ck_assert(succeeded);
        tables_free(t);
    }
}
END_TEST

static Suite *proj_suite(void)
{
    Suite *s = suite_create("proj");
    TCase *adj = tcase_create("adjoint");
    tcase_add_loop_test(adj, test_adjoint_every_kind_and_size, 0, N_LINEAR_KINDS);
    tcase_add_test(adj, test_identity);
    tcase_add_test(adj, test_adjoint_per_group_fastfood);
    tcase_add_test(adj, test_block_mode_is_per_group_with_chunks);
    suite_add_tcase(s, adj);

    TCase *norms = tcase_create("norms");
    tcase_add_loop_test(norms, test_columns_unit_norm_dense_sparse, 0, 2);
    tcase_add_test(norms, test_columns_unit_norm_fastfood);
    tcase_add_test(norms, test_columns_unit_norm_per_group);
    tcase_add_test(norms, test_sparse_pattern);
    tcase_add_test(norms, test_dense_entries_gaussian);
    suite_add_tcase(s, norms);

    TCase *said = tcase_create("said");
    tcase_add_loop_test(said, test_said_gradient, 0, N_LINEAR_KINDS);
    tcase_add_loop_test(said, test_said_is_scaled_plain_projection, 0, N_LINEAR_KINDS);
    tcase_add_test(said, test_init_theta);
    suite_add_tcase(s, said);

    TCase *repro = tcase_create("reproducibility");
    tcase_add_loop_test(repro, test_same_seed_same_bits_other_seed_differs, 0, N_BIG_VARIANTS);
    tcase_add_loop_test(repro, test_threads_same_bits, 0, N_BIG_VARIANTS);
    tcase_add_loop_test(repro, test_creation_threads_same_bits, 0, N_LINEAR_KINDS);
    tcase_add_test(repro, test_dense_independent_of_blas_threads);
    tcase_add_test(repro, test_kernels_same_bits);
    tcase_add_loop_test(repro, test_concurrent_callers, 0, N_LINEAR_KINDS);
    suite_add_tcase(s, repro);

    TCase *api = tcase_create("api");
    tcase_add_test(api, test_queries);
    tcase_add_test(api, test_bad_create_arguments);
    tcase_add_test(api, test_bad_call_arguments);
    tcase_add_test(api, test_dense_over_budget_fails_fast);
    tcase_add_test(api, test_allocation_failures);
    tcase_add_loop_test(api, test_busy_workspace_fallback, 0, N_LINEAR_KINDS);
    suite_add_tcase(s, api);

    TCase *tables = tcase_create("fastfood_tables");
    tcase_set_timeout(tables, 120);
    tcase_add_test(tables, test_fastfood_tables_round_trip);
    tcase_add_test(tables, test_fastfood_tables_of_said);
    tcase_add_test(tables, test_fastfood_tables_match_reference_formula);
    tcase_add_test(tables, test_fastfood_tables_bad_arguments);
    tcase_add_test(tables, test_fastfood_tables_allocation_failures);
    suite_add_tcase(s, tables);
    return s;
}

int main(void)
{
    allow_two_threads();
    SRunner *runner = srunner_create(proj_suite());
    srunner_run_all(runner, CK_NORMAL);
    int status = runner_exit_status(runner);
    srunner_free(runner);
    return status;
}
