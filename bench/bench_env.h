/* The machine a benchmark ran on, printed as its first line: the development machines change
 * between sessions (and their speed with the other tenants' load), so every table says
 * which CPU, kernel and load it came from; and the timing helpers all of them use.
 * Header-only, for the bench programs. */
#ifndef INTDIM_BENCH_ENV_H
#define INTDIM_BENCH_ENV_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fwht_impl.h"
#include "intdim.h"

/* Wall-clock seconds (CLOCK_MONOTONIC). */
static inline double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v). */
static inline double median(double *v, size_t n)
{
    qsort(v, n, sizeof(double), compare_doubles);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* CPU seconds of the whole process (all threads). On a loaded machine single-thread
 * CPU time tracks what the wall time would be on a quiet one far better than wall time
 * does; with several threads it also counts their waiting. */
static inline double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Medians over `repeats` rounds of apply then vjp (after one warm-up round: page faults,
 * caches): out[0] apply, out[1] vjp, out[2] both (wall seconds), out[3] both (CPU seconds).
 * x and xt hold d floats, y and g D floats. */
static inline void bench_apply_vjp(const intdim_proj *p, const float *x, float *y,
                                   const float *g, float *xt, int repeats, double out[4])
{
    double *t = malloc(sizeof(double) * 4 * (size_t)repeats);
    intdim_proj_apply(p, x, y);
    intdim_proj_vjp(p, NULL, g, xt);
    for (int r = 0; r < repeats; r++) {
        double c0 = cpu_seconds();
        double t0 = now_seconds();
        intdim_proj_apply(p, x, y);
        double t1 = now_seconds();
        intdim_proj_vjp(p, NULL, g, xt);
        double t2 = now_seconds();
        t[3 * (size_t)repeats + (size_t)r] = cpu_seconds() - c0;
        t[r] = t1 - t0;
        t[(size_t)repeats + (size_t)r] = t2 - t1;
        t[2 * (size_t)repeats + (size_t)r] = t2 - t0;
    }
    for (int k = 0; k < 4; k++)
        out[k] = median(t + (size_t)k * (size_t)repeats, (size_t)repeats);
    free(t);
}

/* The first line of `path` that starts with `key`, from after its ':' (or "?"). */
static void bench_read_field(const char *path, const char *key, char *out, size_t size)
{
    snprintf(out, size, "?");
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char line[256];
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, strlen(key)) != 0)
            continue;
        const char *v = strchr(line, ':');
        v = v != NULL ? v + 1 : line;
        v += strspn(v, " \t");
        snprintf(out, size, "%s", v);
        out[strcspn(out, "\n")] = '\0';
        break;
    }
    fclose(f);
}

static void bench_print_machine(void)
{
    char cpu[128], family[16], model[16], l2[32], load[128];
    bench_read_field("/proc/cpuinfo", "model name", cpu, sizeof cpu);
    bench_read_field("/proc/cpuinfo", "cpu family", family, sizeof family);
    bench_read_field("/proc/cpuinfo", "model\t", model, sizeof model);
    bench_read_field("/sys/devices/system/cpu/cpu0/cache/index2/size", "", l2, sizeof l2);
    bench_read_field("/proc/loadavg", "", load, sizeof load);
    static const char *kernel_names[] = {"auto", "portable", "avx2", "avx512"};
    printf("# %s (family %s, model %s), L2 %s per core; transform kernel %s, gathers by %s; "
           "load average %s\n",
           cpu, family, model, l2, kernel_names[intdim__fwht_best_kernel()],
           intdim__cpu_hw_gather() ? "hardware gather instructions" : "scalar loads", load);
}

#endif
