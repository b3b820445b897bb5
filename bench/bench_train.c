/* Trainer overhead benchmark: the library's own time per optimizer step against the host's
 * forward + backward, for Li et al.'s MLP 784-200-200-10 (D = 199,210, batch 128, CBLAS
 * host code from examples/fashion_mnist/mlp.c, synthetic inputs).
 *
 * Per step the library writes theta = theta0 + P(theta_d) (projection forward), pulls the
 * host's gradient back (adjoint) and updates theta_d (optimizer). We time each piece on
 * its own, and the whole intdim_trainer_step with the host callback's own time
 * subtracted. Medians over repeats after warm-up; clock_gettime(CLOCK_MONOTONIC).
 *
 *   bench_train [--d N] [--steps N] [--threads T] [--kind fastfood|sparse|dense|identity]
 *               [--blocks layers|N] [--said]
 *
 * --blocks: Fastfood with one block per weight matrix and bias vector (`layers`:
 * INTDIM_PROJ_FASTFOOD_PER_GROUP, the Aghajanyan per-tensor form), or per contiguous chunk
 * of N parameters (N a power of two: INTDIM_PROJ_FASTFOOD_BLOCK, Le et al.'s stacked
 * blocks). Small blocks run one per thread, several at once. Default: one block of
 * L = 2^18, REFERENCE's formula.
 *
 * --threads sets the projection's threads (the host's BLAS threads follow
 * OPENBLAS_NUM_THREADS / OMP_NUM_THREADS). Not part of `meson test`.
 *
 * --floor (Fastfood without --said or per-group blocks): after the table, the floor of a
 * step at this shape, in the same run (so against the same host time), from the pieces
 * every step of this projection must do, each timed alone at its best with the projection's
 * threads (see floor_report). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_env.h"
#include "fwht.h"
#include "intdim.h"
#include "mlp.h"
#include "optim.h"
#ifdef _OPENMP
#include <omp.h>
#endif

enum { BATCH = 128 };

/* The host: one fixed synthetic batch (timing does not depend on the values). */
typedef struct host {
    mlp net;
    float *x;
    uint8_t *y;
    double callback_seconds; /* time of the last callback */
} host;

static int host_grad(void *user, uint64_t step, const float *theta, float *grad, double *loss)
{
    (void)step;
    host *h = user;
    double t0 = now_seconds();
    int rc = mlp_loss_grad(&h->net, theta, grad, h->x, h->y, BATCH, loss, NULL);
    h->callback_seconds = now_seconds() - t0;
    return rc;
}

typedef struct options {
    size_t d;
    int steps;
    int threads;
    int kind;
    const char *blocks; /* NULL: one Fastfood block */
    int said;           /* SAID: one scale per weight matrix and bias (d counts them) */
    int kernel;         /* INTDIM_PROJ_KERNEL: 0 auto, 1 portable, 2 AVX2, 3 AVX-512 */
    int floor;          /* --floor: also time the step's unavoidable pieces */
} options;

static int parse(int argc, char **argv, options *o)
{
    *o = (options){.d = 1000, .steps = 30, .threads = 1, .kind = INTDIM_PROJ_FASTFOOD};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--d") == 0 && v)
            o->d = (size_t)strtoull(v, NULL, 10), i++;
        else if (strcmp(a, "--steps") == 0 && v)
            o->steps = atoi(v), i++;
        else if (strcmp(a, "--threads") == 0 && v)
            o->threads = atoi(v), i++;
        else if (strcmp(a, "--kind") == 0 && v) {
            const char *names[] = {"identity", "dense", "sparse", "fastfood"};
            o->kind = -1;
            for (int k = 0; k < 4; k++)
                if (strcmp(v, names[k]) == 0)
                    o->kind = k;
            if (o->kind < 0)
                return -1;
            i++;
        } else if (strcmp(a, "--blocks") == 0 && v)
            o->blocks = v, i++;
        else if (strcmp(a, "--said") == 0)
            o->said = 1;
        else if (strcmp(a, "--kernel") == 0 && v)
            o->kernel = atoi(v), i++;
        else if (strcmp(a, "--floor") == 0)
            o->floor = 1;
        else
            return -1;
    }
    return o->steps >= 1 && o->d >= 1 ? 0 : -1;
}

/* The projection --blocks and --said ask for (no --blocks: one block). */
static int create_projection(intdim_proj **p, const options *o, const mlp *net, size_t D)
{
    size_t sizes[64];
    size_t n = mlp_group_sizes(net, sizes, 64);
    int ids[2];
    double values[2];
    size_t n_set = 0;
    if (o->said)
        ids[n_set] = INTDIM_PROJ_SAID, values[n_set++] = 1.0;
    if (o->blocks != NULL && strcmp(o->blocks, "layers") == 0)
        ids[n_set] = INTDIM_PROJ_FASTFOOD_PER_GROUP, values[n_set++] = 1.0;
    else if (o->blocks != NULL)
        ids[n_set] = INTDIM_PROJ_FASTFOOD_BLOCK, values[n_set++] = strtod(o->blocks, NULL);
    int grouped = o->said || (o->blocks != NULL && strcmp(o->blocks, "layers") == 0);
    return intdim_proj_create_ex(p, o->kind, D, o->d, 1, grouped ? n : 0,
                                 grouped ? sizes : NULL, n_set, ids, values);
}

/* ---- the floor of a step (--floor) -------------------------------------------------- */

enum {
    FLOOR_BUCKET_STRIDE = 16384, /* floats between two threads' buckets (every k <= this) */
    FLOOR_UNIT = 16384           /* rows per unit of the gather and the fold */
};

/* The Fastfood blocks of the projection, as lib/proj_fastfood.c's describe_blocks lays them
 * out: row groups (FASTFOOD_BLOCK: chunks of N rows; otherwise all D rows), each padded to
 * L = nextpow2(rows) and fed the input in chunks of L columns, a block per chunk with
 * k = nextpow2(its columns); and the units of at most FLOOR_UNIT rows the gather and the fold
 * hand out. */
typedef struct floor_shape {
    size_t n_blocks, padded, max_k, n_units;
    unsigned *log2L, *log2k;
    size_t *unit_off, *unit_len;
    int threads;
    const fwht_kernel *kern;
    int kernel;
} floor_shape;

static unsigned log2_ceil(size_t n)
{
    unsigned lg = 0;
    while (((size_t)1 << lg) < n)
        lg++;
    return lg;
}

/* Fills f's blocks and units (counts only when the arrays are NULL). */
static void floor_layout(floor_shape *f, size_t D, size_t d, size_t N)
{
    f->n_blocks = f->padded = f->max_k = f->n_units = 0;
    for (size_t first = 0; first < D; first += N > 0 ? N : D) {
        size_t rows = N > 0 && D - first > N ? N : D - first, L = (size_t)1 << log2_ceil(rows);
        for (size_t col = 0; col < d; col += L, f->n_blocks++) {
            size_t len = d - col < L ? d - col : L, k = (size_t)1 << log2_ceil(len);
            if (f->log2L != NULL)
                f->log2L[f->n_blocks] = log2_ceil(rows), f->log2k[f->n_blocks] = log2_ceil(len);
            f->max_k = k > f->max_k ? k : f->max_k;
            for (size_t u = 0; u < L; u += FLOOR_UNIT, f->n_units++)
                if (f->unit_off != NULL) {
                    f->unit_off[f->n_units] = f->padded + u;
                    f->unit_len[f->n_units] = L - u < FLOOR_UNIT ? L - u : FLOOR_UNIT;
                }
            f->padded += L;
        }
    }
}

/* Block b's first element in one array of all blocks' padded rows. */
static size_t block_offset(const floor_shape *f, size_t b)
{
    size_t off = 0;
    for (size_t i = 0; i < b; i++)
        off += (size_t)1 << f->log2L[i];
    return off;
}

/* Both transforms of a step on work (blocks on threads round robin, as the library's lanes;
 * one block: the library's threaded transform). */
static void floor_transforms(const floor_shape *f, float *work)
{
    if (f->n_blocks == 1) {
        intdim__fwht(work, f->log2L[0], f->kernel, f->threads);
        intdim__fwht(work, f->log2L[0], f->kernel, f->threads);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(static, 1) num_threads(f->threads)
#endif
    for (size_t b = 0; b < f->n_blocks; b++) {
        float *x = work + block_offset(f, b);
        intdim__fwht(x, f->log2L[b], f->kernel, 1);
        intdim__fwht(x, f->log2L[b], f->kernel, 1);
    }
}

/* The gather (apply: dst = G * w[pi]) or the fold (vjp: buckets += G * src, each thread into
 * its own buckets) of all padded rows, unit by unit on the threads round robin (so one large
 * block is shared too). */
static void floor_gather_or_fold(const floor_shape *f, int fold, float *work, const uint16_t *G,
                                 const uint16_t *pi, const float *w, float *parts)
{
#ifdef _OPENMP
#pragma omp parallel for schedule(static, 1) num_threads(f->threads)
#endif
    for (size_t u = 0; u < f->n_units; u++) {
        size_t off = f->unit_off[u], n = f->unit_len[u];
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        if (fold)
            f->kern->fold16(parts + (size_t)t * FLOOR_BUCKET_STRIDE, G + off, pi + off,
                            work + off, n);
        else
            f->kern->gather16(work + off, G + off, pi + off, w, n);
    }
}

/* theta = theta0 + c over D floats (apply's output: theta0 read, the host's theta written)
 * and a read of the host's gradient (the vjp's input), split over the threads. */
static void floor_stream_out(float *theta, const float *theta0, size_t D, int threads)
{
    (void)threads;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads)
#endif
    for (size_t i = 0; i < D; i++)
        theta[i] = theta0[i] + 0.5f;
}

static float floor_read_grad(const float *grad, size_t D, int threads)
{
    float sum = 0.0f;
    (void)threads;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) reduction(+ : sum)
#endif
    for (size_t i = 0; i < D; i++)
        sum += grad[i];
    return sum;
}

static double least(const double *v, size_t n)
{
    double m = v[0];
    for (size_t i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

/* The threads the projection runs with (0 = all available). */
static int floor_threads(int requested)
{
#ifdef _OPENMP
    return requested > 0 ? requested : omp_get_max_threads();
#else
    (void)requested;
    return 1;
#endif
}

/* The floor of one step at this shape: what every step must do, each piece timed alone at
 * its best (the least over steps), with the projection's threads:
 *   memory  - apply's output pass, theta = theta0 + c (theta0 read, the host's theta
 *             written), and a read of the host's gradient, each right after a host callback
 *             (the state the trainer finds the caches in);
 *   compute - the two transforms of every block (bare intdim__fwht, warm), the gather from
 *             and the fold into k buckets of every padded element (the kernel's gather16 and
 *             fold16, warm tables).
 * A step cannot beat max(memory, compute), which needs the two perfectly overlapped, and
 * with no overlap at all costs memory + compute. */
static void floor_report(const options *o, host *h, float *theta, const float *theta0,
                         float *grad, size_t D, double host_ms, double step_ms)
{
    floor_shape f = {0};
    size_t N = o->blocks != NULL ? (size_t)strtoull(o->blocks, NULL, 10) : 0;
    floor_layout(&f, D, o->d, N); /* counts */
    f.log2L = malloc(f.n_blocks * sizeof(unsigned));
    f.log2k = malloc(f.n_blocks * sizeof(unsigned));
    f.unit_off = malloc(f.n_units * sizeof(size_t));
    f.unit_len = malloc(f.n_units * sizeof(size_t));
    f.threads = floor_threads(o->threads);
    f.kernel = o->kernel != 0 ? o->kernel : intdim__fwht_best_kernel();
    f.kern = intdim__fwht_kernel_ops(f.kernel);
    float *work = aligned_alloc(64, f.padded * sizeof(float));
    uint16_t *G = malloc(f.padded * sizeof(uint16_t)), *pi = malloc(f.padded * sizeof(uint16_t));
    /* each thread's buckets 64 KiB from the next one's: within a few KiB of each other
     * they cost 25-45% more here (a one-off /tmp loop, 2 threads) */
    float *w = malloc(f.max_k * sizeof(float));
    float *parts = calloc((size_t)f.threads * FLOOR_BUCKET_STRIDE, sizeof(float));
    int n = o->steps;
    double *t_mem = calloc((size_t)n, sizeof(double)), *t_fwht = calloc((size_t)n, sizeof(double));
    double *t_gather = calloc((size_t)n, sizeof(double)), *t_fold = calloc((size_t)n, sizeof(double));
    if (!f.log2L || !f.log2k || !f.unit_off || !f.unit_len || !work || !G || !pi || !w ||
        !parts || !t_mem || !t_fwht || !t_gather || !t_fold || f.max_k > FLOOR_BUCKET_STRIDE) {
        fprintf(stderr, "--floor: out of memory or d > %d\n", (int)FLOOR_BUCKET_STRIDE);
        exit(1);
    }
    floor_layout(&f, D, o->d, N);
    srand(2);
    for (size_t b = 0, i = 0; b < f.n_blocks; b++) {
        size_t kmask = ((size_t)1 << f.log2k[b]) - 1, end = i + ((size_t)1 << f.log2L[b]);
        for (; i < end; i++) {
            work[i] = (float)rand() / (float)RAND_MAX - 0.5f;
            G[i] = 0x3c00u ^ (uint16_t)(rand() & 0x83ffu); /* binary16 in (-2, 2) */
            pi[i] = (uint16_t)((size_t)rand() & kmask);
        }
    }
    for (size_t j = 0; j < f.max_k; j++)
        w[j] = (float)j;
    volatile float sink = 0.0f;
    double loss;
    for (int rep = -2; rep < n; rep++) {
        host_grad(h, 0, theta, grad, &loss);
        double a = now_seconds();
        floor_stream_out(theta, theta0, D, f.threads);
        double b = now_seconds();
        host_grad(h, 0, theta, grad, &loss);
        double c = now_seconds();
        sink += floor_read_grad(grad, D, f.threads);
        double e = now_seconds();
        floor_gather_or_fold(&f, 0, work, G, pi, w, parts);
        double g = now_seconds();
        floor_transforms(&f, work);
        double i = now_seconds();
        floor_gather_or_fold(&f, 1, work, G, pi, w, parts);
        double j = now_seconds();
        if (rep >= 0)
            t_mem[rep] = (b - a) + (e - c), t_gather[rep] = g - e, t_fwht[rep] = i - g,
            t_fold[rep] = j - i;
    }
    double mem = 1e3 * least(t_mem, (size_t)n), fwht = 1e3 * least(t_fwht, (size_t)n);
    double gather = 1e3 * least(t_gather, (size_t)n), fold = 1e3 * least(t_fold, (size_t)n);
    double comp = fwht + gather + fold;
    double over = mem > comp ? mem : comp;
    printf("floor of a step at this shape (%zu block%s, %zu padded rows, k <= %zu; pieces "
           "timed alone, %d thread%s):\n", f.n_blocks, f.n_blocks > 1 ? "s" : "", f.padded,
           f.max_k, f.threads, f.threads > 1 ? "s" : "");
    printf("  memory: theta = theta0 + c, read g  %8.3f ms\n", mem);
    printf("  compute: two bare transforms         %8.3f ms\n", fwht);
    printf("  compute: gather (apply)              %8.3f ms\n", gather);
    printf("  compute: fold (vjp)                  %8.3f ms\n", fold);
    printf("  floor, perfect overlap max(mem, compute) %6.3f ms = %.1f%% of the host\n", over,
           100.0 * over / host_ms);
    printf("  floor, no overlap (mem + compute)        %6.3f ms = %.1f%% of the host\n",
           mem + comp, 100.0 * (mem + comp) / host_ms);
    printf("  library (step - callback, above)         %6.3f ms = %.1f%% of the host\n",
           step_ms, 100.0 * step_ms / host_ms);
    free(f.log2L), free(f.log2k), free(f.unit_off), free(f.unit_len);
    free(work), free(G), free(pi), free(w), free(parts), free(t_mem), free(t_fwht), free(t_gather);
    free(t_fold);
    (void)sink;
}

int main(int argc, char **argv)
{
    options o;
    if (parse(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: %s [--d N] [--steps N] [--threads T] "
                        "[--kind fastfood|sparse|dense|identity] [--blocks layers|N] "
                        "[--said] [--kernel 0-3] [--floor]\n",
                argv[0]);
        return 2;
    }
    host h = {0};
    const size_t widths[4] = {784, 200, 200, 10};
    if (mlp_init(&h.net, 4, widths, BATCH) != MLP_OK)
        return 1;
    size_t D = mlp_n_params(&h.net);
    if (o.kind == INTDIM_PROJ_IDENTITY)
        o.d = D;
    float *theta = malloc(D * sizeof(float)), *theta0 = malloc(D * sizeof(float));
    float *delta = malloc(D * sizeof(float)), *grad = malloc(D * sizeof(float));
    h.x = malloc(BATCH * 784 * sizeof(float));
    h.y = malloc(BATCH);
    float *theta_d = calloc(o.d, sizeof(float)), *g_d = calloc(o.d, sizeof(float));
    float *m = calloc(o.d, sizeof(float)), *v = calloc(o.d, sizeof(float));
    if (!theta || !theta0 || !delta || !grad || !h.x || !h.y || !theta_d || !g_d || !m || !v)
        return 1;
    srand(1);
    for (size_t i = 0; i < BATCH * 784; i++)
        h.x[i] = (float)rand() / (float)RAND_MAX;
    for (size_t i = 0; i < BATCH; i++)
        h.y[i] = (uint8_t)(rand() % 10);
    mlp_init_params(&h.net, theta0, 1);
    for (size_t j = 0; j < o.d; j++)
        theta_d[j] = 1e-3f * (float)((int)(j % 7) - 3);

    intdim_proj *p;
    intdim_trainer *t;
    int status = create_projection(&p, &o, &h.net, D);
    if (status == INTDIM_OK)
        status = intdim_proj_set(p, INTDIM_PROJ_THREADS, o.threads);
    if (status == INTDIM_OK)
        status = intdim_proj_set(p, INTDIM_PROJ_KERNEL, o.kernel);
    if (status == INTDIM_OK)
        status = intdim_trainer_create(&t, p, theta, theta0, grad, 0, host_grad, &h);
    if (status != INTDIM_OK) {
        fprintf(stderr, "error: %s (%s)\n", intdim_strerror(status), intdim_last_error());
        return 1;
    }

    int n = o.steps;
    double *t_host = calloc((size_t)n, sizeof(double)), *t_fwd = calloc((size_t)n, sizeof(double));
    double *t_adj = calloc((size_t)n, sizeof(double)), *t_opt = calloc((size_t)n, sizeof(double));
    double *t_over = calloc((size_t)n, sizeof(double)), *t_add = calloc((size_t)n, sizeof(double));
    optim_settings s;
    intdim__optim_defaults(&s);
    double loss;
    for (int rep = -2; rep < n; rep++) { /* two warm-up rounds */
        double a = now_seconds();
        intdim_proj_apply(p, theta_d, delta);
        double a2 = now_seconds();
        for (size_t i = 0; i < D; i++)
            theta[i] = theta0[i] + delta[i];
        double b = now_seconds();
        host_grad(&h, 0, theta, grad, &loss);
        double c = now_seconds();
        intdim_proj_vjp(p, theta_d, grad, g_d);
        double e = now_seconds();
        intdim__optim_update(&s, (uint64_t)rep + 3, 1e-6, 0, o.d, theta_d, m, v, g_d, theta_d,
                             m, v);
        double f = now_seconds();
        double s0 = now_seconds();
        if (intdim_trainer_step(t, &loss) != INTDIM_OK) {
            fprintf(stderr, "step failed: %s\n", intdim_last_error());
            return 1;
        }
        double step_seconds = now_seconds() - s0;
        if (rep < 0)
            continue;
        t_fwd[rep] = a2 - a;
        t_add[rep] = b - a2;
        t_host[rep] = c - b;
        t_adj[rep] = e - c;
        t_opt[rep] = f - e;
        t_over[rep] = step_seconds - h.callback_seconds;
    }
    const char *kind_names[] = {"identity", "dense", "sparse", "fastfood"};
    double host_ms = 1e3 * median(t_host, (size_t)n);
    double fwd_ms = 1e3 * median(t_fwd, (size_t)n), adj_ms = 1e3 * median(t_adj, (size_t)n);
    double opt_ms = 1e3 * median(t_opt, (size_t)n), over_ms = 1e3 * median(t_over, (size_t)n);
    double add_ms = 1e3 * median(t_add, (size_t)n);
    bench_print_machine();
    printf("MLP 784-200-200-10, D = %zu, batch %d; %s%s d = %zu%s%s, projection threads %d; "
           "medians of %d steps\n", D, BATCH, o.said ? "SAID over " : "", kind_names[o.kind],
           o.d, o.blocks != NULL ? ", per-group blocks " : "", o.blocks != NULL ? o.blocks : "",
           o.threads, n);
    printf("  host forward+backward          %8.3f ms\n", host_ms);
    printf("  projection forward             %8.3f ms\n", fwd_ms);
    printf("  theta = theta0 + delta pass    %8.3f ms\n", add_ms);
    printf("  adjoint                        %8.3f ms\n", adj_ms);
    printf("  optimizer (Adam on theta_d)    %8.3f ms\n", opt_ms);
    printf("  trainer step minus callback    %8.3f ms\n", over_ms);
    printf("  overhead ratio (step - callback) / host = %.1f%%  (target <= 10%%)\n",
           100.0 * over_ms / host_ms);
    if (o.floor && o.kind == INTDIM_PROJ_FASTFOOD && !o.said &&
        (o.blocks == NULL || strcmp(o.blocks, "layers") != 0))
        floor_report(&o, &h, theta, theta0, grad, D, host_ms, over_ms);
    else if (o.floor)
        printf("--floor: only for Fastfood without --said or --blocks layers\n");
    intdim_trainer_destroy(t);
    intdim_proj_destroy(p);
    mlp_free(&h.net);
    free(theta), free(theta0), free(delta), free(grad), free(h.x), free(h.y);
    free(theta_d), free(g_d), free(m), free(v);
    free(t_host), free(t_fwd), free(t_adj), free(t_opt), free(t_over), free(t_add);
    return 0;
}
