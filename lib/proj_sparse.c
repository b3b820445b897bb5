/* Very sparse random projection (Li, Hastie, Church 2006) with unit-norm columns.
 *
 * With density q = 1/s, every entry is +sqrt(s) or -sqrt(s) with probability q/2 each and 0
 * otherwise. After scaling a column with n nonzeros to unit norm each of its nonzeros is
 * +-1/sqrt(n): the sqrt(s) factor cancels, so only the pattern and the signs are drawn.
 *
 * Generation is O(nnz + d), never O(D d): column j walks down the rows with geometric skips
 * (gap = floor(log(u) / log(1 - q)) zero entries before the next nonzero), the k-th skip
 * drawing u from stream INTDIM_STREAM_SPARSE_PATTERN + (j << 8) at index k and the sign of
 * that nonzero from INTDIM_STREAM_SPARSE_SIGN + (j << 8) at index k. A column that draws no
 * nonzero (likely only for tiny D) gets exactly one, at a uniform row drawn at index
 * DEAD_COLUMN_INDEX of the pattern stream, so no column of the projection is dead.
 *
 * Storage is CSC (column pointers, ascending rows, values). The adjoint x_j = sum_k v_k
 * g_{row_k} runs over a column (double accumulation, ascending rows). The apply walks the
 * same arrays in fixed chunks of rows: for each chunk and each column (ascending j) it
 * binary-searches the column's first row in the chunk and adds v_k x_j into y. Every y_i
 * is therefore accumulated in ascending column order whatever the chunking or threads,
 * and apply and adjoint use the very same matrix: the adjoint is exact. */
#include <math.h>

#include "proj_impl.h"

/* Rows per apply chunk: 2^18 floats of y (1 MiB) stay in L2 while the columns scatter. */
enum { SPARSE_ROW_CHUNK = 1 << 18 };
#define DEAD_COLUMN_INDEX (UINT64_C(1) << 62)

typedef struct sparse_state {
    uint64_t *col_ptr; /* d_lin + 1 */
    uint64_t *row_idx; /* nnz, ascending within each column */
    float *val;        /* nnz */
    uint64_t nnz;
} sparse_state;

static uint64_t pattern_stream(size_t j)
{
    return INTDIM_STREAM_SPARSE_PATTERN + ((uint64_t)j << 8);
}

static uint64_t sign_stream(size_t j)
{
    return INTDIM_STREAM_SPARSE_SIGN + ((uint64_t)j << 8);
}

/* Rows of column j's nonzeros in ascending order; with rows == NULL only counts them. The
 * dead-column rescue is applied by the caller (it needs the count first). */
static uint64_t walk_column(const intdim_proj *p, size_t j, uint64_t *rows, float *signs)
{
    uint64_t D = p->D, count = 0, next_row = 0;
    double q = p->density;
    double log_keep = q < 1.0 ? log1p(-q) : 0.0;
    for (uint64_t k = 0; next_row < D; k++) {
        uint64_t gap = 0;
        if (q < 1.0) {
            double u = intdim__rng_uniform(p->seed, pattern_stream(j), k);
            double skip = floor(log(u) / log_keep);
            if (!(skip < (double)(D - next_row)))
                break;
            gap = (uint64_t)skip;
        }
        uint64_t row = next_row + gap;
        if (rows != NULL) {
            rows[count] = row;
            signs[count] = intdim__rng_sign(p->seed, sign_stream(j), k);
        }
        count++;
        next_row = row + 1;
    }
    return count;
}

static void fill_column(const intdim_proj *p, size_t j, uint64_t *rows, float *vals,
                        uint64_t count)
{
    if (count == 0)
        return;
    if (walk_column(p, j, rows, vals) == 0) {
        rows[0] = intdim__rng_below(p->seed, pattern_stream(j), DEAD_COLUMN_INDEX, p->D);
        vals[0] = intdim__rng_sign(p->seed, sign_stream(j), DEAD_COLUMN_INDEX);
    }
    float scale = (float)(1.0 / sqrt((double)count));
    for (uint64_t k = 0; k < count; k++)
        vals[k] *= scale;
}

/* First position in rows[lo..hi) holding a row >= target. */
static uint64_t lower_bound(const uint64_t *rows, uint64_t lo, uint64_t hi, uint64_t target)
{
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (rows[mid] < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void sparse_apply(const intdim_proj *p, const float *x, float *y, float *work)
{
    (void)work;
    const sparse_state *s = p->state;
    size_t D = p->D, d = p->d_lin;
    size_t n_chunks = (D + SPARSE_ROW_CHUNK - 1) / SPARSE_ROW_CHUNK;
    int threads = intdim__threads(p->threads);
    INTDIM_PARALLEL_FOR(threads, n_chunks > 1, c, n_chunks, {
        uint64_t r0 = (uint64_t)c * SPARSE_ROW_CHUNK;
        uint64_t r1 = r0 + SPARSE_ROW_CHUNK < D ? r0 + SPARSE_ROW_CHUNK : D;
        for (uint64_t i = r0; i < r1; i++)
            y[i] = 0.0f;
        for (size_t j = 0; j < d; j++) {
            uint64_t end = s->col_ptr[j + 1];
            uint64_t k = n_chunks == 1 ? s->col_ptr[j]
                                       : lower_bound(s->row_idx, s->col_ptr[j], end, r0);
            float xj = x[j];
            for (; k < end && s->row_idx[k] < r1; k++)
                y[s->row_idx[k]] += s->val[k] * xj;
        }
    });
}

static void sparse_adjoint(const intdim_proj *p, const float *g, float *x, float *work)
{
    (void)work;
    const sparse_state *s = p->state;
    size_t d = p->d_lin;
    int threads = intdim__threads(p->threads);
    INTDIM_PARALLEL_FOR_DYNAMIC(threads, s->nnz > 65536, j, d, {
        double sum = 0.0;
        for (uint64_t k = s->col_ptr[j]; k < s->col_ptr[j + 1]; k++)
            sum += (double)s->val[k] * (double)g[s->row_idx[k]];
        x[j] = (float)sum;
    });
}

static void sparse_free_state(sparse_state *s)
{
    if (s == NULL)
        return;
    intdim__free(s->col_ptr);
    intdim__free(s->row_idx);
    intdim__free(s->val);
    intdim__free(s);
}

static void sparse_destroy(intdim_proj *p)
{
    sparse_free_state(p->state);
    p->state = NULL;
}

static const proj_ops g_sparse_ops = { sparse_apply, sparse_adjoint, sparse_destroy, NULL };

static size_t sparse_bytes(size_t d, uint64_t nnz)
{
    return sizeof(sparse_state) + (d + 1) * sizeof(uint64_t) +
           (size_t)nnz * (sizeof(uint64_t) + sizeof(float));
}

static inline double expected_nonzeros(const intdim_proj *p) /* unused without OpenMP */
{
    return (double)p->D * (double)p->d_lin * p->density;
}

/* Counts per column (rescued dead columns count 1), then prefix sums into col_ptr. */
static void count_columns(const intdim_proj *p, uint64_t *col_ptr)
{
    size_t d = p->d_lin;
    int threads = intdim__threads(p->threads);
    INTDIM_PARALLEL_FOR_DYNAMIC(threads, expected_nonzeros(p) > 16384, j, d, {
        uint64_t n = walk_column(p, j, NULL, NULL);
        col_ptr[j + 1] = n > 0 ? n : 1;
    });
    col_ptr[0] = 0;
    for (size_t j = 0; j < d; j++)
        col_ptr[j + 1] += col_ptr[j];
}

int intdim__sparse_create(intdim_proj *p)
{
    size_t d = p->d_lin;
    sparse_state *s = intdim__calloc(1, sizeof *s);
    if (s == NULL)
        return intdim__fail_nomem("sparse projection state", sizeof *s);
    s->col_ptr = intdim__calloc(d + 1, sizeof(uint64_t));
    if (s->col_ptr == NULL) {
        sparse_free_state(s);
        return intdim__fail_nomem("sparse column pointers", (d + 1) * sizeof(uint64_t));
    }
    count_columns(p, s->col_ptr);
    s->nnz = s->col_ptr[d];
    size_t bytes = sparse_bytes(d, s->nnz);
    if ((double)bytes > p->memory_budget) {
        sparse_free_state(s);
        return intdim__fail(INTDIM_ETOOBIG, "intdim_proj_create: the SPARSE projection has "
                                            "%llu nonzeros (%.2f GB), over the memory budget "
                                            "of %.2f GB", (unsigned long long)s->nnz,
                            (double)bytes / 1e9, p->memory_budget / 1e9);
    }
    s->row_idx = intdim__calloc((size_t)s->nnz, sizeof(uint64_t));
    s->val = intdim__calloc((size_t)s->nnz, sizeof(float));
    if (s->row_idx == NULL || s->val == NULL) {
        sparse_free_state(s);
        return intdim__fail_nomem("sparse projection entries", bytes);
    }
    int threads = intdim__threads(p->threads);
    INTDIM_PARALLEL_FOR_DYNAMIC(threads, s->nnz > 16384, j, d, {
        uint64_t start = s->col_ptr[j];
        fill_column(p, j, s->row_idx + start, s->val + start, s->col_ptr[j + 1] - start);
    });
    p->ops = &g_sparse_ops;
    p->state = s;
    p->state_bytes = bytes;
    p->work_floats = 0;
    return INTDIM_OK;
}
