/* The toy-problem d90 search shared by the `intdim` command and the MPI driver: options,
 * the configured search, the host buffers, and the printed table. Uses only <intdim.h>. */
#ifndef INTDIM_TOOLS_TOY_SEARCH_H
#define INTDIM_TOOLS_TOY_SEARCH_H

#include <stdint.h>
#include <stdio.h>

#include <intdim.h>

#include "../examples/toy/toy_problem.h"

#define TOY_MAX_LRS 16
#define TOY_MAX_DS 1024

typedef struct toy_options {
    int kind;           /* INTDIM_PROJ_* */
    int said;
    size_t block;       /* Fastfood in stacked blocks of this many rows; 0 = one block */
    int strategy;       /* INTDIM_STRATEGY_* */
    size_t seeds;
    size_t d_min, d_max, n_d;
    size_t ds[TOY_MAX_DS]; /* explicit list when n_ds > 0 */
    size_t n_ds;
    double lrs[TOY_MAX_LRS];
    size_t n_lrs;
    uint64_t steps;
    uint64_t base_seed;
    uint64_t toy_seed;
    double fraction;
    double baseline;    /* NaN = measure it */
    size_t bootstrap;
    const char *journal;
    size_t shard_index, shard_count; /* job-array slice (grid only); count 0 = none */
    int quiet;
} toy_options;

/* Defaults (fast enough for the README's main job), then parse argv[first..argc).
 * Returns 0, or prints the problem to stderr and returns -1. */
int toy_options_parse(toy_options *o, int argc, char **argv, int first);
/* The same, its messages to err (NULL: none, for all but one MPI rank). */
int toy_options_parse_to(toy_options *o, int argc, char **argv, int first, FILE *err);
void toy_options_usage(FILE *out);

/* A count or seed written with digits only, at most 2^53 (every one reaches the library as
 * a double): 0, or -1 for anything else. */
int toy_parse_count(const char *s, size_t *v);

/* A search configured from the options (journal not opened). */
int toy_search_create(const toy_options *o, intdim_search **out);

/* The host: the problem, theta0 and the parameter buffer. */
typedef struct toy_host {
    toy_problem problem;
    float theta0[TOY_D];
    float theta[TOY_D];
} toy_host;

void toy_host_init(toy_host *h, const toy_options *o);

/* Run one asked trial on the toy host (train metric = -loss, eval = fraction solved). */
int toy_run_trial(const intdim_search *s, toy_host *h, size_t d, int kind, int said, double lr,
                  uint64_t seed, double *train, double *eval, uint64_t *steps, double *seconds,
                  int *trial_status);

/* The table (d, best lr, mean +- spread, seeds, pass), the baseline and d90; the last line
 * is "d90 = N" or "d90 = not reached". Returns an intdim status. */
int toy_print_report(const intdim_search *s, FILE *out);

/* Print "intdim: <what>: <status>: <detail>" to stderr; returns 1 (an exit code). */
int toy_fail(const char *what, int status);


#endif
