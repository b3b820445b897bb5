/* Optimizer math on theta_d (pure, no allocation) and the trainer's layout, shared by
 * train.c and checkpoint.c. Never installed. */
#ifndef INTDIM_OPTIM_H
#define INTDIM_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Every trainer setting (intdim_train_param), stored resolved. */
typedef struct optim_settings {
    int optimizer;         /* INTDIM_OPT_* */
    double lr;             /* peak learning rate */
    double momentum;       /* SGD */
    int nesterov;          /* SGD, needs momentum > 0 to matter */
    double beta1, beta2, eps;
    double weight_decay;   /* decoupled for ADAMW, L2 added to the gradient otherwise */
    int schedule;          /* INTDIM_SCHED_* */
    uint64_t warmup_steps;
    uint64_t total_steps;  /* horizon of LINEAR/COSINE */
    double clip_norm;      /* 0 = off */
    double lambda_lr;      /* peak lr of SAID scales; 0 = lr */
    int nonfinite;         /* INTDIM_NONFINITE_* */
    uint64_t eval_every;   /* intdim_trainer_run */
    double min_lr_ratio;   /* decay floor as a fraction of the peak */
} optim_settings;

/* Defaults documented in intdim.h. */
void intdim__optim_defaults(optim_settings *s);

/* Range of a setting, [lo, hi]. INTDIM_EINVAL for an unknown id. */
int intdim__optim_bounds(int param, double *lo, double *hi);
/* Set one setting after checking it is finite and in bounds (integers must be integral). */
/* Is value allowed for trainer parameter param (range, whole number)? INTDIM_EINVAL with a
 * message naming the parameter otherwise. */
int intdim__optim_check_value(int param, double value);
int intdim__optim_set(optim_settings *s, int param, double value);
int intdim__optim_get(const optim_settings *s, int param, double *value);
/* INTDIM_OK if the settings can take a step; INTDIM_ESTATE if a decaying schedule has no
 * horizon (TOTAL_STEPS = 0). */
int intdim__optim_check(const optim_settings *s);

/* Scheduled learning rate at optimizer step `step` (0-based) for the given peak:
 * warm-up lr = peak * (step + 1) / warmup for step < warmup (the first step is not wasted
 * on lr = 0), then constant, or linear / cosine decay from peak at step = warmup to
 * min_lr_ratio * peak at step = total_steps and flat after it. */
double intdim__optim_lr_at(const optim_settings *s, double peak, uint64_t step);

/* Euclidean norm of g[0..n), accumulated in double in index order (reproducible). Any
 * non-finite entry makes the result non-finite; finite floats cannot overflow it. */
double intdim__optim_norm(const float *g, size_t n);

/* Scale g[0..n) by clip / norm when norm > clip (> 0). Returns the factor applied (1 if
 * none). */
double intdim__optim_clip(float *g, size_t n, double norm, double clip);

/* One update of coordinates [begin, end) with learning rate lr and 1-based update count t
 * (Adam's bias correction uses beta^t). Reads theta, m, v (state before) and writes
 * theta_out, m_out, v_out (state after): the caller keeps the old state to roll back. The
 * input and output arrays may alias. m is Adam's first moment or SGD's velocity; v is
 * Adam's second moment (untouched by SGD). g is not modified. */
void intdim__optim_update(const optim_settings *s, uint64_t t, double lr, size_t begin,
                          size_t end, const float *theta, const float *m, const float *v,
                          const float *g, float *theta_out, float *m_out, float *v_out);

/* 1 if every entry of x[0..n) is finite. */
int intdim__all_finite(const float *x, size_t n);

/* ---- the trainer's layout --------------------------------------------------------- */
struct intdim_trainer {
    const intdim_proj *proj; /* borrowed */
    size_t D, d, n_scales;   /* n_scales: SAID scales at the end of theta_d */
    float *theta;            /* host buffer (borrowed) */
    const float *theta0;     /* theta0_owned or borrowed */
    float *theta0_owned;
    float *grad;             /* host-given or grad_owned */
    float *grad_owned;
    intdim_grad_fn grad_fn;
    void *user;
    uint64_t theta0_hash; /* fingerprint for checkpoints, computed once at create */

    /* Optimizer state, double-buffered: a step writes the *_next arrays and swaps the
     * pointers only once the new state is known finite, so a failed step leaves the
     * current arrays untouched without copying them. */
    float *theta_d, *m, *v;
    float *theta_d_next, *m_next, *v_next;
    float *g_d;
    /* SAID only: the unscaled P(theta_d) of the last theta written, which the adjoint
     * needs for the scales' gradients (kept instead of projecting twice per step) */
    float *said_u;

    optim_settings settings;
    uint64_t step;    /* steps done, skipped ones included: the host's minibatch counter */
    uint64_t updates; /* optimizer updates applied (Adam's t) */
    uint64_t skipped; /* steps skipped for non-finite values (INTDIM_NONFINITE_SKIP) */

    /* Inside step, run or evaluate, i.e. while a host callback of this trainer may run:
     * calls that change the trainer are refused (INTDIM_ESTATE), and intdim_trainer_destroy
     * only marks it, the outer call freeing it on its way out. */
    int busy;
    int destroy_requested;
};

/* INTDIM_ESTATE (naming fn) when t is inside one of its own calls that run callbacks: a
 * callback must not change the state that call is in the middle of updating. */
int intdim__trainer_refuse_if_busy(const intdim_trainer *t, const char *fn);

/* Swap the current and next state arrays (commit a step or a load). */
void intdim__trainer_commit_next(intdim_trainer *t);
/* theta = theta0 + P(theta_d) into the host buffer. */
int intdim__trainer_write_theta(intdim_trainer *t);
/* intdim_trainer_run, with sync_at_end = 0: the host buffer is not brought up to date at
 * the end (intdim_search_run_trial evaluates right after, which writes it). */
int intdim__trainer_run(intdim_trainer *t, uint64_t n_steps, intdim_eval_fn eval_fn,
                        void *eval_user, intdim_progress_fn progress, void *progress_user,
                        double *final_metric, int sync_at_end);

#endif
