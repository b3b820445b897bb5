/* The machine a benchmark ran on, printed as its first line: the development machines change
 * between sessions (and their speed with the other tenants' load), so every table says
 * which CPU, kernel and load it came from. Header-only, for the bench programs. */
#ifndef INTDIM_BENCH_ENV_H
#define INTDIM_BENCH_ENV_H

#include <stdio.h>
#include <string.h>

#include "fwht_impl.h"

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
