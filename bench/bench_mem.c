/* Memory floor of REFERENCE's single Fastfood block on this machine.
 *
 * Issue 2's targets (apply + vjp in 20 ms at D = 2^24, 80 ms at 2^26, two threads) were set
 * on another machine. This program measures what the one it runs on allows, in one run:
 *   1. the DRAM rates of the four kinds of access a transform's passes make, on arrays of
 *      L floats (the same size as Fastfood's work array), over the chosen threads: read,
 *      read-modify-write in place, write of lines not in cache, copy;
 *   2. the least traffic any two-pass implementation of apply + vjp must make (below), timed
 *      at those rates: the memory floor;
 *   3. the compute: apply + vjp at L = 2^18 (everything in L2), one thread, scaled to L
 *      (by L log L) and divided over the threads, as if memory were free;
 *   4. the library's apply + vjp at D = L.
 * If measured time is close to floor + compute, the passes do not overlap memory with
 * arithmetic; no implementation of this pass structure can go below max(floor, compute).
 *
 * The traffic counted (L floats of 4 bytes; tables: G and Pi in 2 bytes each per row):
 *   apply: read the tables (4L bytes) and write y (4L, lines not in cache: y is the
 *          caller's), timed as a copy; one more pass over y in place (at least two passes:
 *          L floats do not fit in cache, and one pass does only the levels of what fits);
 *   vjp:   read g and write a work array (a copy: g is const and the caller's); read the
 *          work array once more with the tables (4L + 4L bytes).
 * Usage: bench_mem [--sizes 2^24,2^26] [--threads 2] [--repeats 7]. Not part of meson test. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "bench_env.h"
#include "intdim.h"

enum { MAX_SIZES = 8, LANES = 16 };

static float *floats(size_t n)
{
    float *p = NULL;
    if (posix_memalign((void **)&p, 2u << 20, n * sizeof(float)) != 0) {
        fprintf(stderr, "bench_mem: out of memory (%zu floats)\n", n);
        exit(1);
    }
    memset(p, 0, n * sizeof(float)); /* touch every page before timing */
    return p;
}

/* ---- the four accesses, each split over nt threads in equal contiguous parts ----------
 * Every loop works on LANES floats at a time so that the compiler vectorizes it without
 * reassociating float sums (the project builds without -ffast-math). */

static float read_all(const float *a, size_t n, int nt)
{
    float total = 0.0f;
#pragma omp parallel for num_threads(nt) reduction(+ : total) schedule(static)
    for (size_t c = 0; c < n / LANES; c++) {
        float acc[LANES];
        for (int j = 0; j < LANES; j++)
            acc[j] = a[c * LANES + j];
        for (int j = 1; j < LANES; j++)
            acc[0] += acc[j];
        total += acc[0];
    }
    return total;
}

static void in_place(float *a, size_t n, int nt)
{
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t c = 0; c < n / LANES; c++)
        for (int j = 0; j < LANES; j++)
            a[c * LANES + j] = a[c * LANES + j] * 0.5f + 1.0f;
}

static void write_fresh(float *b, size_t n, float value, int nt)
{
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t c = 0; c < n / LANES; c++)
        for (int j = 0; j < LANES; j++)
            b[c * LANES + j] = value;
}

static void copy(float *b, const float *a, size_t n, int nt)
{
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t c = 0; c < n / LANES; c++)
        for (int j = 0; j < LANES; j++)
            b[c * LANES + j] = a[c * LANES + j] * 2.0f;
}

typedef struct rates { /* bytes of array per second */
    double read, in_place, write, copy;
} rates;

/* Each access is timed two ways: on arrays just used by the same access (as much of them
 * in cache as fits), and with four arrays taken in turn so that each access finds its
 * arrays out of the caches. The faster of the two counts: the
 * floor below must not be above what the best implementation could see. (On arrays far
 * larger than the last-level cache the two agree.) */
static double faster(double x, double y)
{
    return x > y ? x : y;
}

/* One access's median seconds. warm: `repeats` calls in a row on the same arrays; cold:
 * each call on arrays the call before did not touch (four in turn). */
typedef enum { READ, IN_PLACE, WRITE, COPY } access;

static void run_access(access k, float *dst, const float *src, size_t n, int nt, int r,
                       volatile float *sink)
{
    switch (k) {
    case READ: *sink += read_all(src, n, nt); break;
    case IN_PLACE: in_place(dst, n, nt); break;
    case WRITE: write_fresh(dst, n, (float)r, nt); break;
    case COPY: copy(dst, src, n, nt); break;
    }
}

static double access_seconds(access k, float *arrays[4], size_t n, int nt, int repeats,
                             int cold)
{
    double *t = malloc(sizeof(double) * (size_t)repeats);
    volatile float sink = 0.0f;
    for (int r = 0; r < repeats; r++) {
        /* cold: arrays 0,1 then 2,3 then 0,1...: each call's arrays were not touched by the
         * call before it */
        float *dst = arrays[cold ? (2 * r) % 4 : 0], *src = arrays[cold ? (2 * r + 1) % 4 : 1];
        double t0 = now_seconds();
        run_access(k, dst, src, n, nt, r, &sink);
        t[r] = now_seconds() - t0;
    }
    double m = median(t, repeats);
    free(t);
    return m;
}

static double best_rate(access k, float *arrays[4], size_t n, int nt, int repeats)
{
    double bytes = (double)n * sizeof(float);
    return faster(bytes / access_seconds(k, arrays, n, nt, repeats, 0),
                  bytes / access_seconds(k, arrays, n, nt, repeats, 1));
}

static rates measure_rates(size_t n, int nt, int repeats)
{
    float *arrays[4] = {floats(n), floats(n), floats(n), floats(n)};
    rates q = {best_rate(READ, arrays, n, nt, repeats), best_rate(IN_PLACE, arrays, n, nt, repeats),
               best_rate(WRITE, arrays, n, nt, repeats), best_rate(COPY, arrays, n, nt, repeats)};
    for (int i = 0; i < 4; i++)
        free(arrays[i]);
    return q;
}

/* ---- the library ------------------------------------------------------------------ */

typedef struct ff_time {
    double apply, vjp, both; /* medians, seconds */
} ff_time;

static ff_time time_fastfood(size_t D, size_t d, int threads, int repeats)
{
    ff_time ft = {NAN, NAN, NAN};
    intdim_proj *p = NULL;
    if (intdim_proj_create(&p, INTDIM_PROJ_FASTFOOD, D, d, 7) != INTDIM_OK)
        return ft;
    intdim_proj_set(p, INTDIM_PROJ_THREADS, threads);
    float *x = floats(d), *y = floats(D), *g = floats(D), *xt = floats(d);
    for (size_t i = 0; i < d; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    for (size_t i = 0; i < D; i++)
        g[i] = (float)((i * 40503u) % 1024) / 1024.0f - 0.5f;
    double med[4];
    bench_apply_vjp(p, x, y, g, xt, repeats, med);
    ft.apply = med[0];
    ft.vjp = med[1];
    ft.both = med[2];
    free(x);
    free(y);
    free(g);
    free(xt);
    intdim_proj_destroy(p);
    return ft;
}

/* ---- options and report ------------------------------------------------------------ */

typedef struct options {
    size_t sizes[MAX_SIZES];
    size_t n_sizes;
    int threads;
    int repeats;
} options;

static size_t parse_size(const char *s)
{
    if (s[0] == '2' && s[1] == '^') {
        long e = strtol(s + 2, NULL, 10);
        return e >= 18 && e <= 30 ? (size_t)1 << e : 0;
    }
    return 0;
}

static int parse_options(int argc, char **argv, options *o)
{
    o->n_sizes = 2;
    o->sizes[0] = (size_t)1 << 24;
    o->sizes[1] = (size_t)1 << 26;
    o->threads = 2;
    o->repeats = 7;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--sizes") == 0 && v != NULL) {
            o->n_sizes = 0;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *tok = strtok(buf, ","); tok != NULL && o->n_sizes < MAX_SIZES;
                 tok = strtok(NULL, ",")) {
                size_t n = parse_size(tok);
                if (n == 0) {
                    fprintf(stderr, "bench_mem: sizes are powers 2^18..2^30, got %s\n", tok);
                    return 2;
                }
                o->sizes[o->n_sizes++] = n;
            }
            i++;
        } else if (strcmp(argv[i], "--threads") == 0 && v != NULL) {
            o->threads = atoi(v);
            i++;
        } else if (strcmp(argv[i], "--repeats") == 0 && v != NULL) {
            o->repeats = atoi(v);
            i++;
        } else {
            fprintf(stderr, "usage: bench_mem [--sizes 2^24,2^26] [--threads 2] "
                            "[--repeats 7]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (o->n_sizes == 0 || o->threads < 1 || o->threads > 64 || o->repeats < 1 ||
        o->repeats > 1001) {
        fprintf(stderr, "bench_mem: bad --sizes, --threads or --repeats\n");
        return 2;
    }
    return -1;
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;
    const size_t d = 1000;
    const unsigned log2_small = 18;
    bench_print_machine();
    printf("# libintdim %s, Fastfood single block, d = %zu, %d thread(s), medians of %d\n",
           intdim_version_string(), d, o.threads, o.repeats);
    /* In-L2 compute: one thread at 2^18, scaled per size below. */
    ff_time small = time_fastfood((size_t)1 << log2_small, d, 1, 51);
    printf("# apply + vjp at L = 2^%u, one thread (in L2): %.3f ms\n\n", log2_small,
           small.both * 1e3);
    printf("| L | read GB/s | in place GB/s | write GB/s | copy GB/s | apply floor ms | "
           "vjp floor ms | memory floor ms | compute ms | apply ms | vjp ms | apply + vjp "
           "ms | measured / (floor + compute) | measured / max(floor, compute) |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t s = 0; s < o.n_sizes; s++) {
        size_t L = o.sizes[s];
        double bytes = (double)L * sizeof(float); /* one array of L floats; tables too */
        rates q = measure_rates(L, o.threads, o.repeats);
        double apply_floor = bytes / q.copy + bytes / q.in_place;
        double vjp_floor = bytes / q.copy + bytes / q.read + bytes / q.read;
        double floor = apply_floor + vjp_floor;
        double log2L = log2((double)L);
        double compute = small.both * ((double)L / (double)((size_t)1 << log2_small)) *
                         (log2L / log2_small) / o.threads;
        ff_time ft = time_fastfood(L, d, o.threads, o.repeats);
        printf("| 2^%.0f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | "
               "%.1f | %.2f | %.2f |\n",
               log2L, q.read / 1e9, q.in_place / 1e9, q.write / 1e9, q.copy / 1e9,
               apply_floor * 1e3, vjp_floor * 1e3, floor * 1e3, compute * 1e3, ft.apply * 1e3,
               ft.vjp * 1e3, ft.both * 1e3, ft.both / (floor + compute),
               ft.both / (floor > compute ? floor : compute));
        fflush(stdout);
    }
    return 0;
}
