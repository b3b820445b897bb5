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
 * OPENBLAS_NUM_THREADS / OMP_NUM_THREADS). Not part of `meson test`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_env.h"
#include "intdim.h"
#include "mlp.h"
#include "optim.h"

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

int main(int argc, char **argv)
{
    options o;
    if (parse(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: %s [--d N] [--steps N] [--threads T] "
                        "[--kind fastfood|sparse|dense|identity] [--blocks layers|N] "
                        "[--said] [--kernel 0-3]\n",
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
    intdim_trainer_destroy(t);
    intdim_proj_destroy(p);
    mlp_free(&h.net);
    free(theta), free(theta0), free(delta), free(grad), free(h.x), free(h.y);
    free(theta_d), free(g_d), free(m), free(v);
    free(t_host), free(t_fwd), free(t_adj), free(t_opt), free(t_over), free(t_add);
    return 0;
}
