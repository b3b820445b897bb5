/* Internal layout of the d90 search, shared by search.c (configuration, ask/tell, rule,
 * strategies, local runner) and journal.c (the append-only text journal). Never installed. */
#ifndef INTDIM_SEARCH_IMPL_H
#define INTDIM_SEARCH_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define INTDIM_JOURNAL_MAGIC "intdim-journal"
#define INTDIM_JOURNAL_VERSION 1
#define SEARCH_N_TRAIN_PARAMS 16 /* intdim_train_param values 0..15 */
_Static_assert(INTDIM_TRAIN_MIN_LR_RATIO == SEARCH_N_TRAIN_PARAMS - 1,
               "a trainer parameter was added: extend SEARCH_N_TRAIN_PARAMS");

enum trial_state { TRIAL_NEW = 0, TRIAL_OUT = 1, TRIAL_DONE = 2 };

/* One planned trial. Its id is its index in the table:
 *   id = (point * n_lrs + lr_index) * seeds + seed_index,
 * point 0 being the baseline (IDENTITY, d = D) and point p >= 1 the grid value grid[p-1].
 * Ids are therefore a pure function of the configuration: the same trial has the same id in
 * every process, every strategy and every resumed run, which is what resume and merge use. */
typedef struct search_trial {
    size_t d;
    int kind;
    int said;
    double lr;
    uint64_t seed;
    int state;
    int status;          /* INTDIM_OK or the trial's failure status */
    double train_metric; /* NaN when the host measured none */
    double eval_metric;  /* -inf for a failed trial */
    uint64_t steps;
    double seconds;
} search_trial;

/* The longest label (it is one word of the journal's config line). */
#define SEARCH_MAX_LABEL 48

struct intdim_search {
    size_t D;
    /* configuration (frozen at the first ask or open_journal) */
    int strategy;
    double fraction;
    double baseline_given; /* NaN = measure it */
    size_t seeds;
    size_t d_min, d_max, n_d; /* d_max 0 = min(10000, D) */
    int kind;
    int said;
    uint64_t base_seed;
    size_t bootstrap;
    uint64_t steps;
    size_t parallel;
    size_t ff_block; /* INTDIM_SEARCH_FASTFOOD_BLOCK: 0 = one Fastfood block */
    size_t *d_list; /* explicit d values (sorted, unique) or NULL for the log grid */
    size_t n_d_list;
    double *lrs;
    size_t n_lrs;
    size_t *groups;
    size_t n_groups;
    double train_value[SEARCH_N_TRAIN_PARAMS];
    unsigned char train_set[SEARCH_N_TRAIN_PARAMS];
    char label[SEARCH_MAX_LABEL + 1]; /* intdim_search_set_label; "" = none */

    /* plan */
    int frozen;
    size_t *grid; /* ascending d values of points 1..n_grid */
    size_t n_grid;
    search_trial *trials;
    size_t n_trials;
    size_t n_done, n_out;
    size_t cursor; /* grid strategy: no NEW trial below this id */

    /* journal */
    int journal_fd; /* -1 when none */

    /* intdim_search_run is inside a trial or its progress callback: calls that change the
     * search are refused (INTDIM_ESTATE) and intdim_search_destroy only marks it, the run
     * freeing it on its way out */
    int busy;
    int destroy_requested;
};

/* The most d values an explicit list may hold: what a journal header may carry, so every
 * search that can be journaled can be read back. */
#define SEARCH_MAX_D_LIST 10000000u

/* INTDIM_ESTATE (naming fn) from inside one of intdim_search_run's callbacks. */
int intdim__search_refuse_if_busy(const intdim_search *s, const char *fn);

/* ---- search.c ---------------------------------------------------------------------- */
/* Build the grid and the trial table from the configuration; idempotent. */
int intdim__search_freeze(intdim_search *s);
/* Undo a freeze made by a call that then failed (no trial asked yet): the configuration can
 * be changed again. */
void intdim__search_unfreeze(intdim_search *s);
/* Number of points including the baseline point 0. */
size_t intdim__search_n_points(const intdim_search *s);
/* Record a finished trial without journaling (used by replay). */
void intdim__search_mark_done(intdim_search *s, uint64_t id, double train_metric,
                              double eval_metric, uint64_t steps, double seconds, int status);

/* ---- journal.c --------------------------------------------------------------------- */
/* Append one finished trial as a row, flushed and fsync'd. */
int intdim__journal_append(intdim_search *s, uint64_t id);
void intdim__journal_close(intdim_search *s);

#endif
