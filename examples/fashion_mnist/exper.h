/*
 * One training problem (a network, a base point theta0, data splits) and the two things
 * we do with it through libintdim: run one trial (full or subspace training, then
 * measure accuracies) and search d90 over a list of d with ask/tell.
 */
#ifndef FMNIST_EXPER_H
#define FMNIST_EXPER_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "mlp.h"

/* A problem: train on `pool`, report accuracy on train_eval (a subset of the pool, for
 * the generalization gap), val (drives every choice) and test (reported, never chosen on). */
typedef struct {
    mlp net;
    fm_host host;
    const fm_set *pool, *train_eval, *val, *test;
    size_t D;
    size_t n_groups;
    size_t groups[2 * MLP_MAX_LAYERS]; /* one SAID scale per weight and per bias block */
    float *theta0; /* base point: the trials start here */
    float *theta;  /* host buffer the library writes theta0 + P(theta_d) into */
    float *grad;
    size_t batch;
    uint64_t steps;  /* optimizer steps per trial */
    int quiet;
    int proj_threads; /* INTDIM_PROJ_THREADS of every projection (0 = the library's default) */
} problem;

/* Set up a problem for a network with the given widths (widths[0] must be 784), with
 * theta0 = Glorot init from init_seed. Returns 0 or non-zero with a message on stderr. */
int problem_init(problem *pb, size_t n_widths, const size_t *widths, const fm_set *pool,
                 const fm_set *train_eval, const fm_set *val, const fm_set *test, size_t batch,
                 uint64_t steps, uint64_t init_seed);
void problem_free(problem *pb);

typedef struct {
    int kind;      /* intdim_proj_kind; IDENTITY = full training */
    int said;
    size_t d;      /* trainable length (SAID scales included); D for full training */
    double lr;
    uint64_t seed; /* projection seed; the minibatch stream is derived from it too */
    int status;    /* INTDIM_OK or the failure */
    double train_acc, val_acc, test_acc; /* NaN where not measured */
    double loss;   /* last minibatch loss */
    double seconds;
} trial;

/* Adam with constant lr for pb->steps steps from pb->theta0, then accuracies (test only if
 * with_test). Leaves theta0 + P(theta_d) in pb->theta. Returns t->status. */
int run_trial(problem *pb, trial *t, int with_test);

/* Full training (IDENTITY) from pb->theta0 for `steps`, storing the parameters reached
 * after each of the n_marks cumulative step counts marks[] (ascending) into out[k]
 * (length D each). Returns 0 or an intdim status. */
int train_full_marks(problem *pb, double lr, uint64_t seed, const uint64_t *marks,
                     size_t n_marks, float *const *out);

/* One row of a d90 table: the best lr (on val) for that d, means over seeds. */
typedef struct {
    size_t d;
    double best_lr;
    double val_mean, val_spread;
    double train_mean, test_mean;
    size_t n_seeds;
    int pass_val, pass_test;
} d90_row;

typedef struct {
    int kind, said;
    double baseline_val, baseline_test;
    size_t n_rows;
    d90_row rows[32];
    size_t d90_val;  /* 0 = not reached */
    size_t d90_test; /* the same rule on test accuracy at the val-chosen lr; 0 = not reached */
    size_t d90_lo, d90_hi; /* bootstrap spread of d90_val over seeds */
    double seconds;
    size_t n_trials;
} d90_result;

/* d90 of pb for one method, through intdim_search_* (ask/tell, we run the trials): every
 * d of ds[] x every lr x n_seeds seeds; the baselines are given (full training's val and
 * test accuracy). Returns 0 or an intdim status. */
int search_d90(problem *pb, int kind, int said, const size_t *ds, size_t n_ds,
               const double *lrs, size_t n_lrs, size_t n_seeds, uint64_t base_seed,
               double baseline_val, double baseline_test, d90_result *out);

/* Name of a method for tables ("fastfood", "said-fastfood", "full", ...). */
const char *method_name(int kind, int said);

#endif
