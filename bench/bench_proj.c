/* Projection benchmark: median time of apply + vjp per (size, kind, threads), bytes per
 * parameter, and ratios to baselines measured in the same run:
 *   - textbook: a Fastfood built on the textbook triple-loop Walsh-Hadamard transform of
 *     size L (both transforms full size, as the reference code does), single thread;
 *   - torch: bench/torch_fastfood.py, PyTorch forward + autograd backward of REFERENCE's
 *     formula (run as a child process with the same thread count).
 * It also times the bare transform against the textbook loop.
 * Timing: clock_gettime(CLOCK_MONOTONIC), medians over repeats after one warm-up call.
 * Run from anywhere: `bench_proj --help`. Not part of `meson test`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_env.h"
#include "fwht.h"
#include "intdim.h"

#ifndef BENCH_TORCH_SCRIPT
#define BENCH_TORCH_SCRIPT "bench/torch_fastfood.py"
#endif

enum { MAX_LIST = 16 };

typedef struct options {
    size_t sizes[MAX_LIST];
    size_t n_sizes;
    int threads[MAX_LIST];
    size_t n_threads;
    size_t d;
    int repeats;
    int baseline_repeats;
    int torch; /* 0 none, 1 run the script */
    size_t torch_max_D;
    int kinds[3]; /* fastfood, sparse, dense */
    size_t block; /* > 0: also Fastfood in stacked blocks of this many rows */
} options;

/* Median wall and CPU seconds of repeated runs. */
typedef struct duration {
    double wall, cpu;
} duration;

static size_t next_pow2(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

static float *floats(size_t n)
{
    float *p = aligned_alloc(64, ((n * sizeof(float)) + 63) / 64 * 64);
    if (p == NULL) {
        fprintf(stderr, "bench_proj: out of memory (%zu floats)\n", n);
        exit(2);
    }
    return p;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void fill_random(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((double)(splitmix(&seed) >> 11) * 0x1.0p-53 - 0.5);
}

/* ---- baseline 1: the textbook transform and a Fastfood built on it ----------------- */

static void textbook_fwht(float *x, size_t n)
{
    for (size_t h = 1; h < n; h *= 2)
        for (size_t i = 0; i < n; i += 2 * h)
            for (size_t j = i; j < i + h; j++) {
                float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
}

typedef struct textbook_ff {
    size_t D, d, L;
    float *B, *G, *v, *u, scale;
    uint32_t *perm;
} textbook_ff;

static void textbook_ff_init(textbook_ff *t, size_t D, size_t d)
{
    uint64_t s = 12345;
    t->D = D;
    t->d = d;
    t->L = next_pow2(D);
    t->B = floats(d);
    t->G = floats(t->L);
    t->v = floats(t->L);
    t->u = floats(t->L);
    t->perm = malloc(t->L * sizeof(uint32_t));
    if (t->perm == NULL)
        exit(2);
    double sum_sq = 0.0;
    for (size_t j = 0; j < d; j++)
        t->B[j] = (splitmix(&s) >> 63) ? -1.0f : 1.0f;
    for (size_t i = 0; i < t->L; i++) {
        double u1 = ((double)(splitmix(&s) >> 11) + 0.5) * 0x1.0p-53;
        double u2 = (double)(splitmix(&s) >> 11) * 0x1.0p-53;
        t->G[i] = (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
        sum_sq += (double)t->G[i] * t->G[i];
        t->perm[i] = (uint32_t)i;
    }
    for (size_t i = t->L; i > 1; i--) {
        size_t j = (size_t)(splitmix(&s) % i);
        uint32_t tmp = t->perm[i - 1];
        t->perm[i - 1] = t->perm[j];
        t->perm[j] = tmp;
    }
    t->scale = (float)(1.0 / sqrt((double)D * sum_sq));
}

static void textbook_ff_free(textbook_ff *t)
{
    free(t->B);
    free(t->G);
    free(t->v);
    free(t->u);
    free(t->perm);
}

/* y = H G Pi H B pad(x), then x' = the exact adjoint of that applied to g. */
static void textbook_ff_apply_vjp(textbook_ff *t, const float *x, float *y, const float *g,
                                  float *xt)
{
    size_t L = t->L;
    memset(t->v, 0, L * sizeof(float));
    for (size_t j = 0; j < t->d; j++)
        t->v[j] = t->B[j] * x[j];
    textbook_fwht(t->v, L);
    for (size_t i = 0; i < L; i++)
        t->u[i] = t->G[i] * t->v[t->perm[i]];
    textbook_fwht(t->u, L);
    for (size_t i = 0; i < t->D; i++)
        y[i] = t->u[i] * t->scale;

    memset(t->v, 0, L * sizeof(float));
    memcpy(t->v, g, t->D * sizeof(float));
    textbook_fwht(t->v, L);
    for (size_t i = 0; i < L; i++)
        t->u[t->perm[i]] = t->G[i] * t->v[i];
    textbook_fwht(t->u, L);
    for (size_t j = 0; j < t->d; j++)
        xt[j] = t->B[j] * t->u[j] * t->scale;
}

/* ---- baseline 2: PyTorch, in a child process ---------------------------------------- */

/* Median seconds (wall and CPU) of forward + backward reported by the script, or NaN. */
static duration torch_seconds(size_t D, size_t d, int threads, int repeats)
{
    duration none = {NAN, NAN};
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s --D %zu --d %zu --threads %d --repeats %d 2>/dev/null",
             BENCH_TORCH_SCRIPT, D, d, threads, repeats);
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return none;
    duration t = none;
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        const char *key = strstr(line, "\"median_seconds\":");
        if (key != NULL)
            t.wall = strtod(key + strlen("\"median_seconds\":"), NULL);
        key = strstr(line, "\"median_cpu_seconds\":");
        if (key != NULL)
            t.cpu = strtod(key + strlen("\"median_cpu_seconds\":"), NULL);
    }
    if (pclose(f) != 0)
        return none;
    return t;
}

/* ---- library timings --------------------------------------------------------------- */

typedef struct timing {
    double apply, vjp, both; /* medians, wall seconds */
    double both_cpu;         /* median CPU seconds of apply + vjp */
    double bytes;
    int status;
} timing;

/* block > 0: Fastfood in stacked blocks of `block` rows (INTDIM_PROJ_FASTFOOD_BLOCK). */
static timing time_projection(int kind, size_t block, size_t D, size_t d, int threads,
                              int repeats)
{
    timing t = {NAN, NAN, NAN, NAN, NAN, INTDIM_OK};
    intdim_proj *p = NULL;
    int block_id = INTDIM_PROJ_FASTFOOD_BLOCK;
    double block_value = (double)block;
    t.status = intdim_proj_create_ex(&p, (intdim_proj_kind)kind, D, d, 7, 0, NULL, block > 0,
                                     &block_id, &block_value);
    if (t.status != INTDIM_OK)
        return t;
    intdim_proj_set(p, INTDIM_PROJ_THREADS, threads);
    t.bytes = (double)intdim_proj_bytes(p);
    float *x = floats(d), *y = floats(D), *g = floats(D), *xt = floats(d);
    fill_random(x, d, 1);
    fill_random(g, D, 2);
    double med[4];
    bench_apply_vjp(p, x, y, g, xt, repeats, med);
    t.apply = med[0];
    t.vjp = med[1];
    t.both = med[2];
    t.both_cpu = med[3];
    free(x);
    free(y);
    free(g);
    free(xt);
    intdim_proj_destroy(p);
    return t;
}

/* Median wall and CPU time of `repeats` calls of run(ctx). */
static duration time_median(void (*run)(void *ctx), void *ctx, int repeats)
{
    double *t = malloc(sizeof(double) * (size_t)repeats);
    double *c = malloc(sizeof(double) * (size_t)repeats);
    for (int r = 0; r < repeats; r++) {
        double c0 = cpu_seconds();
        double t0 = now_seconds();
        run(ctx);
        t[r] = now_seconds() - t0;
        c[r] = cpu_seconds() - c0;
    }
    duration med = {median(t, repeats), median(c, repeats)};
    free(c);
    free(t);
    return med;
}

typedef struct {
    float *x;
    size_t L;
    unsigned log2L;
    int threads;
} fwht_run;

static void run_fwht(void *ctx)
{
    fwht_run *f = ctx;
    intdim__fwht(f->x, f->log2L, intdim__fwht_best_kernel(), f->threads);
}

static void run_textbook_fwht(void *ctx)
{
    fwht_run *f = ctx;
    textbook_fwht(f->x, f->L);
}

static duration time_fwht(size_t L, int threads, int repeats, int textbook)
{
    fwht_run f = {floats(L), L, 0, threads};
    while (((size_t)1 << f.log2L) < L)
        f.log2L++;
    fill_random(f.x, L, 3);
    if (!textbook)
        run_fwht(&f); /* warm-up: page faults, thread team */
    duration med = time_median(textbook ? run_textbook_fwht : run_fwht, &f, repeats);
    free(f.x);
    return med;
}

typedef struct {
    textbook_ff t;
    float *x, *y, *g, *xt;
} textbook_ff_run;

static void run_textbook_ff(void *ctx)
{
    textbook_ff_run *f = ctx;
    textbook_ff_apply_vjp(&f->t, f->x, f->y, f->g, f->xt);
}

static duration time_textbook_ff(size_t D, size_t d, int repeats)
{
    textbook_ff_run f;
    textbook_ff_init(&f.t, D, d);
    f.x = floats(d), f.y = floats(D), f.g = floats(D), f.xt = floats(d);
    fill_random(f.x, d, 1);
    fill_random(f.g, D, 2);
    duration med = time_median(run_textbook_ff, &f, repeats);
    free(f.x);
    free(f.y);
    free(f.g);
    free(f.xt);
    textbook_ff_free(&f.t);
    return med;
}

/* ---- command line ----------------------------------------------------------------- */

static size_t parse_list(const char *s, size_t *out, size_t max)
{
    size_t n = 0;
    while (*s != '\0' && n < max) {
        char *end;
        double v = strtod(s, &end);
        if (end == s)
            break;
        if (*end == '^') { /* 2^24 */
            double e = strtod(end + 1, &end);
            v = pow(v, e);
        }
        out[n++] = (size_t)v;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

static void usage(void)
{
    printf("usage: bench_proj [--sizes 2^20,2^24,...] [--threads 1,2] [--d 1000]\n"
           "                  [--repeats 11] [--baseline-repeats 3] [--kinds ffsd]\n"
           "                  [--no-torch] [--torch-max-D 16777216] [--quick] [--block B]\n"
           "kinds: f = fastfood, s = sparse, d = dense (dense only where it fits the\n"
           "default 8 GiB budget). Torch is run for D <= torch-max-D. --block B adds\n"
           "Fastfood in stacked blocks of B rows (INTDIM_PROJ_FASTFOOD_BLOCK; not\n"
           "REFERENCE's single block, which the fastfood rows and baselines use).\n");
}

static int parse_options(int argc, char **argv, options *o)
{
    static const size_t default_sizes[] = {(size_t)1 << 20, 3000000, (size_t)1 << 24,
                                           10000000, (size_t)1 << 26};
    memset(o, 0, sizeof *o);
    memcpy(o->sizes, default_sizes, sizeof default_sizes);
    o->n_sizes = sizeof default_sizes / sizeof default_sizes[0];
    o->threads[0] = 1;
    o->threads[1] = 2;
    o->n_threads = 2;
    o->d = 1000;
    o->repeats = 11;
    o->baseline_repeats = 3;
    o->torch = 1;
    o->torch_max_D = (size_t)1 << 24;
    o->kinds[0] = o->kinds[1] = o->kinds[2] = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (strcmp(a, "--sizes") == 0) {
            o->n_sizes = parse_list(v, o->sizes, MAX_LIST);
            i++;
        } else if (strcmp(a, "--threads") == 0) {
            size_t t[MAX_LIST];
            o->n_threads = parse_list(v, t, MAX_LIST);
            for (size_t k = 0; k < o->n_threads; k++)
                o->threads[k] = (int)t[k];
            i++;
        } else if (strcmp(a, "--d") == 0) {
            o->d = (size_t)atol(v);
            i++;
        } else if (strcmp(a, "--repeats") == 0) {
            o->repeats = atoi(v);
            i++;
        } else if (strcmp(a, "--baseline-repeats") == 0) {
            o->baseline_repeats = atoi(v);
            i++;
        } else if (strcmp(a, "--kinds") == 0) {
            o->kinds[0] = strchr(v, 'f') != NULL;
            o->kinds[1] = strchr(v, 's') != NULL;
            o->kinds[2] = strchr(v, 'd') != NULL;
            i++;
        } else if (strcmp(a, "--block") == 0) {
            o->block = (size_t)atof(v);
            i++;
        } else if (strcmp(a, "--no-torch") == 0) {
            o->torch = 0;
        } else if (strcmp(a, "--torch-max-D") == 0) {
            o->torch_max_D = (size_t)atof(v);
            i++;
        } else if (strcmp(a, "--quick") == 0) {
            o->sizes[0] = (size_t)1 << 20;
            o->sizes[1] = 1000000;
            o->n_sizes = 2;
            o->repeats = 5;
            o->baseline_repeats = 1;
        } else {
            usage();
            return strcmp(a, "--help") == 0 ? 0 : 2;
        }
    }
    if (o->n_sizes == 0 || o->n_threads == 0 || o->d == 0 || o->repeats < 1 ||
        o->baseline_repeats < 1) {
        usage();
        return 2;
    }
    return -1;
}

static void print_environment(const options *o)
{
    bench_print_machine();
    printf("# libintdim %s, d = %zu, %d repeats (baselines %d)\n", intdim_version_string(), o->d,
           o->repeats, o->baseline_repeats);
}

static const char *kind_name(int kind, size_t block)
{
    static char stacked[64];
    if (block > 0) {
        snprintf(stacked, sizeof stacked, "fastfood, blocks of 2^%.0f", log2((double)block));
        return stacked;
    }
    return kind == INTDIM_PROJ_FASTFOOD ? "fastfood" : kind == INTDIM_PROJ_SPARSE ? "sparse"
                                                                                   : "dense";
}

static void bench_size(const options *o, size_t D)
{
    size_t L = next_pow2(D);
    size_t d = o->d < D ? o->d : D;
    duration textbook_wht = time_fwht(L, 1, o->baseline_repeats, 1);
    duration textbook_ff_t = time_textbook_ff(D, d, o->baseline_repeats);
    printf("\n## D = %zu (L = 2^%.0f), d = %zu\n", D, log2((double)L), d);
    printf("baseline textbook WHT (size L, 1 thread): %.4g ms (cpu %.4g); textbook Fastfood "
           "apply+vjp: %.4g ms (cpu %.4g)\n",
           1e3 * textbook_wht.wall, 1e3 * textbook_wht.cpu, 1e3 * textbook_ff_t.wall,
           1e3 * textbook_ff_t.cpu);
    for (size_t ti = 0; ti < o->n_threads; ti++) {
        duration ours = time_fwht(L, o->threads[ti], o->repeats, 0);
        printf("transform alone, %d thread(s): %.4g ms = %.1fx textbook (cpu %.4g ms = %.1fx)\n",
               o->threads[ti], 1e3 * ours.wall, textbook_wht.wall / ours.wall, 1e3 * ours.cpu,
               textbook_wht.cpu / ours.cpu);
    }
    printf("| kind | threads | apply ms | vjp ms | apply+vjp ms | apply+vjp cpu ms | bytes/param "
           "| x textbook FF | x textbook FF (cpu) | torch ms | x torch | x torch (cpu) |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    /* the fourth row kind: Fastfood in stacked blocks (--block) */
    static const int kinds[4] = {INTDIM_PROJ_FASTFOOD, INTDIM_PROJ_SPARSE, INTDIM_PROJ_DENSE,
                                 INTDIM_PROJ_FASTFOOD};
    for (int k = 0; k < 4; k++) {
        size_t block = k == 3 ? o->block : 0;
        if (k < 3 ? !o->kinds[k] : block == 0)
            continue;
        for (size_t ti = 0; ti < o->n_threads; ti++) {
            int threads = o->threads[ti];
            timing t = time_projection(kinds[k], block, D, d, threads, o->repeats);
            if (t.status != INTDIM_OK) {
                printf("| %s | %d | refused: %s (%s) | | | | | | | | | |\n",
                       kind_name(kinds[k], block), threads, intdim_strerror(t.status),
                       intdim_last_error());
                break;
            }
            duration torch = {NAN, NAN};
            if (k == 0 && o->torch && D <= o->torch_max_D)
                /* the median of --baseline-repeats timed runs (default 3) after a warm-up,
                 * at every size: a single run of seconds is at the mercy of the VM's noise */
                torch = torch_seconds(D, d, threads, o->baseline_repeats);
            printf("| %s | %d | %.4g | %.4g | %.4g | %.4g | %.2f | %.1f | %.1f | %.0f | %.0f | "
                   "%.0f |\n",
                   kind_name(kinds[k], block), threads, 1e3 * t.apply, 1e3 * t.vjp, 1e3 * t.both,
                   1e3 * t.both_cpu, t.bytes / (double)D, textbook_ff_t.wall / t.both,
                   textbook_ff_t.cpu / t.both_cpu, 1e3 * torch.wall, torch.wall / t.both,
                   torch.cpu / t.both_cpu);
            fflush(stdout);
        }
    }
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;
    print_environment(&o);
    for (size_t s = 0; s < o.n_sizes; s++)
        bench_size(&o, o.sizes[s]);
    return 0;
}
