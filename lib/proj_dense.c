/* Dense Gaussian projection (Li et al. 2018): a D x d_lin float matrix A, row-major, entry
 * A[i][j] = N(0,1) from the counter generator at flat index f = i * d_lin + j (gaussian_pair
 * says how f maps to INTDIM_STREAM_DENSE), then every column scaled to unit Euclidean norm (norm computed in double, rows in order).
 *
 * Both directions work on fixed blocks of DENSE_BLOCK_ROWS rows. apply: y = A x, one CBLAS
 * sgemv per block; each y_i is one dot product of length d_lin computed inside one sgemv,
 * so the blocks can run on any number of threads (the bits were also checked not to move
 * with OPENBLAS_NUM_THREADS). adjoint: x = A^T g is a sum over D: each block accumulates
 * its rows in order into its own partial d-vector (plain loop, see block_adjoint), and the
 * partials are added in block order in double, so no sum depends on a thread count. */
#include <cblas.h> /* with BLIS, meson passes its directory as -isystem */
#include <limits.h>
#include <math.h>

#include "proj_impl.h"

enum { DENSE_BLOCK_ROWS = 4096 };

typedef struct dense_state {
    float *a; /* D x d_lin, row-major */
    size_t n_blocks;
} dense_state;

static size_t block_count(size_t D)
{
    return (D + DENSE_BLOCK_ROWS - 1) / DENSE_BLOCK_ROWS;
}

static void block_rows(size_t D, size_t b, size_t *r0, size_t *r1)
{
    *r0 = b * DENSE_BLOCK_ROWS;
    *r1 = *r0 + DENSE_BLOCK_ROWS < D ? *r0 + DENSE_BLOCK_ROWS : D;
}

static void dense_apply(const intdim_proj *p, const float *x, float *y, float *work)
{
    (void)work;
    const dense_state *s = p->state;
    size_t D = p->D, d = p->d_lin;
    int threads = intdim__threads(p->threads);
    INTDIM_PARALLEL_FOR(threads, s->n_blocks > 1, b, s->n_blocks, {
        size_t r0, r1;
        block_rows(D, b, &r0, &r1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)(r1 - r0), (int)d, 1.0f, s->a + r0 * d,
                    (int)d, x, 1, 0.0f, y + r0, 1);
    });
}

/* acc[0..d) = sum over rows r0..r1 of g_i A[i][.], rows in order. Written out rather than
 * sgemv(Trans): OpenBLAS splits that reduction over its own threads (measured: the bits
 * change with OPENBLAS_NUM_THREADS), while this loop is elementwise in j, the same
 * operations in the same order whatever the vector width or thread count. */
static void block_adjoint(const float *a, size_t d, size_t r0, size_t r1, const float *g,
                          float *acc)
{
    for (size_t j = 0; j < d; j++)
        acc[j] = 0.0f;
    for (size_t i = r0; i < r1; i++) {
        const float *row = a + i * d;
        float gi = g[i];
        for (size_t j = 0; j < d; j++)
            acc[j] += gi * row[j];
    }
}

static void dense_adjoint(const intdim_proj *p, const float *g, float *x, float *work)
{
    const dense_state *s = p->state;
    size_t D = p->D, d = p->d_lin;
    int threads = intdim__threads(p->threads);
    INTDIM_PARALLEL_FOR(threads, s->n_blocks > 1, b, s->n_blocks, {
        size_t r0, r1;
        block_rows(D, b, &r0, &r1);
        block_adjoint(s->a, d, r0, r1, g, work + b * d);
    });
    size_t n_blocks = s->n_blocks;
    INTDIM_PARALLEL_FOR(threads, n_blocks * d > 65536, j, d, {
        double sum = 0.0;
        for (size_t b = 0; b < n_blocks; b++)
            sum += (double)work[b * d + j];
        x[j] = (float)sum;
    });
}

static void dense_destroy(intdim_proj *p)
{
    dense_state *s = p->state;
    if (s == NULL)
        return;
    intdim__free(s->a);
    intdim__free(s);
    p->state = NULL;
}

static const proj_ops g_dense_ops = { dense_apply, dense_adjoint, dense_destroy, NULL };

/* Entries 2q and 2q+1 of the flat row-major matrix are the two Box-Muller outputs of the
 * uniforms at indices 2q and 2q+1 of INTDIM_STREAM_DENSE: r cos(2 pi u2) and r sin(2 pi u2)
 * with r = sqrt(-2 ln u1). (Entry 2q is exactly intdim__rng_gauss(seed, DENSE, q).) Using
 * both outputs halves the logarithms and square roots of generation. */
static void gaussian_pair(uint64_t seed, uint64_t q, float *even, float *odd)
{
    double u1 = intdim__rng_uniform(seed, INTDIM_STREAM_DENSE, 2 * q);
    double u2 = intdim__rng_uniform(seed, INTDIM_STREAM_DENSE, 2 * q + 1);
    double r = sqrt(-2.0 * log(u1));
    *even = (float)(r * cos(6.283185307179586 * u2));
    *odd = (float)(r * sin(6.283185307179586 * u2));
}

/* Fill rows [r0, r1): their flat indices [r0 d, r1 d) are contiguous, and r0 d is even
 * (r0 is a multiple of the block size), so the block is whole pairs plus maybe one last
 * lone even entry. Squares go into norm[j] in double, in flat order. */
static void fill_rows(uint64_t seed, float *a, size_t d, size_t r0, size_t r1, double *norm)
{
    uint64_t f0 = (uint64_t)r0 * d, f1 = (uint64_t)r1 * d;
    size_t j = 0;
    for (uint64_t f = f0; f < f1; f += 2) {
        float even, odd;
        gaussian_pair(seed, f / 2, &even, &odd);
        a[f] = even;
        norm[j] += (double)even * (double)even;
        if (++j == d)
            j = 0;
        if (f + 1 < f1) {
            a[f + 1] = odd;
            norm[j] += (double)odd * (double)odd;
            if (++j == d)
                j = 0;
        }
    }
}

/* Fill the Gaussian entries block by block; each block also sums its columns' squares in
 * double into its own row of norm_partial, so norms are independent of the thread count. */
static void fill_gaussian(const intdim_proj *p, float *a, size_t n_blocks, double *norm_partial)
{
    size_t D = p->D, d = p->d_lin;
    int threads = intdim__threads(p->threads);
    INTDIM_PARALLEL_FOR(threads, n_blocks > 1, b, n_blocks, {
        size_t r0, r1;
        block_rows(D, b, &r0, &r1);
        double *norm = norm_partial + b * d;
        for (size_t j = 0; j < d; j++)
            norm[j] = 0.0;
        fill_rows(p->seed, a, d, r0, r1, norm);
    });
}

/* Column scales 1/||A_j|| from the block partials (added in block order). A Gaussian
 * column of D >= 1 entries is zero with probability 0; a zero norm would still leave the
 * column zero rather than divide by zero. */
static void column_scales(size_t d, size_t n_blocks, double *norm_partial)
{
    for (size_t j = 0; j < d; j++) {
        double sum = 0.0;
        for (size_t b = 0; b < n_blocks; b++)
            sum += norm_partial[b * d + j];
        norm_partial[j] = sum > 0.0 ? 1.0 / sqrt(sum) : 0.0;
    }
}

static void scale_columns(const intdim_proj *p, float *a, const double *scale)
{
    size_t D = p->D, d = p->d_lin;
    int threads = intdim__threads(p->threads);
    INTDIM_PARALLEL_FOR(threads, D * d > 65536, i, D, {
        for (size_t j = 0; j < d; j++)
            a[i * d + j] = (float)((double)a[i * d + j] * scale[j]);
    });
}

int intdim__dense_create(intdim_proj *p)
{
    size_t D = p->D, d = p->d_lin;
    if (d > INT_MAX) /* cannot happen under the 2^53-byte budget bound; cheap to check */
        return intdim__fail(INTDIM_ETOOBIG, "intdim_proj_create: DENSE d = %zu exceeds the "
                                            "CBLAS int limit", d);
    size_t n_blocks = block_count(D);
    size_t matrix_bytes = intdim__mul_size(intdim__mul_size(D, d), sizeof(float));
    dense_state *s = intdim__calloc(1, sizeof *s);
    if (s == NULL)
        return intdim__fail_nomem("dense projection state", sizeof *s);
    s->n_blocks = n_blocks;
    s->a = intdim__alloc(matrix_bytes);
    double *norm_partial = intdim__calloc(intdim__mul_size(n_blocks, d), sizeof(double));
    if (s->a == NULL || norm_partial == NULL) {
        intdim__free(s->a);
        intdim__free(s);
        intdim__free(norm_partial);
        return intdim__fail_nomem("dense projection matrix", matrix_bytes);
    }
    fill_gaussian(p, s->a, n_blocks, norm_partial);
    column_scales(d, n_blocks, norm_partial);
    scale_columns(p, s->a, norm_partial);
    intdim__free(norm_partial);

    p->ops = &g_dense_ops;
    p->state = s;
    p->state_bytes = sizeof *s + matrix_bytes;
    p->work_floats = n_blocks * d; /* one partial d-vector per block for the adjoint */
    return INTDIM_OK;
}
