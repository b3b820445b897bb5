/* tinylm hosts: the callbacks libintdim calls (intdim_grad_fn / intdim_eval_fn shapes),
 * for next-token pre-training and for entry classification. Plain C: no library header
 * needed, so the tests can drive them through any trainer. */
#ifndef TINYLM_HOST_H
#define TINYLM_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "corpus.h"
#include "model.h"

/* A 64-bit mix of three words (batch selection from seed, step and slot). */
uint64_t tlm_mix3(uint64_t a, uint64_t b, uint64_t c);

/* Where training window `slot` of step `step` starts in a stream of n tokens: a window
 * holds T + 1 tokens (inputs and shifted targets), so every offset 0..n-T-1 can be drawn.
 * Needs n > T. */
size_t tlm_lm_window_offset(uint64_t seed, uint64_t step, uint64_t slot, size_t n, int T);

typedef struct tlm_lm_host {
    tlm_model *m;
    const tlm_splits *sp;
    int B, T;          /* windows per step and their length (B <= m->max_batch, T <= ctx) */
    uint64_t seed;
    int *tokens, *targets; /* B*T each, owned by the host */
    double loss_sum;   /* sum and count of batch losses since the caller last reset them */
    uint64_t loss_count;
} tlm_lm_host;

/* Allocates the batch buffers; 0 or -1 (out of memory / bad sizes). */
int tlm_lm_host_init(tlm_lm_host *h, tlm_model *m, const tlm_splits *sp, int B, int T,
                     uint64_t seed);
void tlm_lm_host_free(tlm_lm_host *h);

/* intdim_grad_fn (user = tlm_lm_host): B windows of T+1 tokens of the training stream at
 * offsets drawn from (seed, step); mean next-token loss and its gradient. */
int tlm_lm_grad(void *user, uint64_t step, const float *theta, float *grad, double *loss);

/* Mean next-token loss over n_windows windows spread evenly over the validation stream
 * (always the same windows). NaN on failure. */
double tlm_lm_val_loss(tlm_lm_host *h, const float *params, int n_windows);

typedef struct tlm_cls_host {
    tlm_model *m;
    const tlm_cls_set *train, *test;
    int B, eval_batch;     /* training batch; batch for scoring (both <= m->max_batch) */
    size_t eval_train_max; /* training entries scored by tlm_cls_eval_train */
    uint64_t seed;
    int *tokens, *lengths, *labels, *pred;
    double last_train_acc; /* the last tlm_cls_eval_train result */
} tlm_cls_host;

int tlm_cls_host_init(tlm_cls_host *h, tlm_model *m, const tlm_cls_set *train,
                      const tlm_cls_set *test, int B, int eval_batch, size_t eval_train_max,
                      uint64_t seed);
void tlm_cls_host_free(tlm_cls_host *h);

/* intdim_grad_fn (user = tlm_cls_host): B training entries drawn with replacement from
 * (seed, step); mean cross-entropy and its gradient. */
int tlm_cls_grad(void *user, uint64_t step, const float *theta, float *grad, double *loss);
/* Accuracy over the first n entries of set. 0 or 1 (a model error). */
int tlm_cls_accuracy(tlm_cls_host *h, const float *theta, const tlm_cls_set *set, size_t n,
                     double *acc);
/* intdim_eval_fn: accuracy on the whole test set (the d90 metric). */
int tlm_cls_eval_test(void *user, const float *theta, double *metric);
/* intdim_eval_fn: accuracy on the first eval_train_max training entries (for the
 * generalization gap); also stored in last_train_acc. */
int tlm_cls_eval_train(void *user, const float *theta, double *metric);
/* Fraction of the most frequent label in a set. */
double tlm_majority_fraction(const tlm_cls_set *set, int n_classes);

#endif
