/*
 * A fully-connected ReLU network over ONE flat float parameter buffer.
 *
 * Widths w[0] (inputs) .. w[L] (classes) give L dense layers; every hidden layer is
 * followed by ReLU, the last one by softmax cross-entropy. The 784-200-200-10 network
 * of Li et al. (2018) has D = 199,210 parameters.
 *
 * Parameter layout (the contract other code relies on, e.g. a PyTorch comparison):
 *   for layer l = 0 .. L-1, in order:
 *     W_l : w[l+1] x w[l] floats, row-major (W_l[o * w[l] + i]: input i -> output o),
 *           i.e. exactly torch.nn.Linear(w[l], w[l+1]).weight flattened;
 *     b_l : w[l+1] floats.
 *   So the buffer is [W_0, b_0, W_1, b_1, ...]; mlp_group_sizes() lists these 2L blocks
 *   (one SAID scale per weight and per bias group).
 *
 * Matrix products go through CBLAS sgemm. Loss and accuracy are means over the batch,
 * accumulated in double. A `mlp` holds only sizes and workspace, never parameters, so
 * the same handle evaluates any parameter buffer (theta0 + P(theta_d), a checkpoint...).
 * A handle is not thread-safe (it owns the activation workspace).
 */
#ifndef FMNIST_MLP_H
#define FMNIST_MLP_H

#include <stddef.h>
#include <stdint.h>

#define MLP_MAX_LAYERS 8

typedef struct {
    size_t n_layers;                      /* L: dense layers (widths given: L + 1) */
    size_t widths[MLP_MAX_LAYERS + 1];    /* w[0] inputs .. w[L] classes */
    size_t w_offset[MLP_MAX_LAYERS];      /* where W_l starts in the flat buffer */
    size_t b_offset[MLP_MAX_LAYERS];      /* where b_l starts */
    size_t n_params;                      /* D */
    size_t max_batch;                     /* rows one call may pass */
    size_t act_total;                     /* sum of w[1..L] */
    float *acts;   /* max_batch x act_total: each layer's output (post-ReLU; logits last) */
    float *delta;  /* max_batch x max width: dloss/d(pre-activation) of the current layer */
    float *delta2; /* same size: the previous layer's, while propagating back */
} mlp;

/* Status of the functions below. */
enum { MLP_OK = 0, MLP_EINVAL = -1, MLP_ENOMEM = -2 };

/* Set up a network with n_widths = L + 1 widths (2 <= n_widths <= MLP_MAX_LAYERS + 1,
 * every width >= 1) accepting up to max_batch rows per call. Returns MLP_OK,
 * MLP_EINVAL (bad sizes; *m is then zeroed) or MLP_ENOMEM. */
int mlp_init(mlp *m, size_t n_widths, const size_t *widths, size_t max_batch);
/* Free the workspace (a zeroed or already freed mlp is fine). */
void mlp_free(mlp *m);

/* D, the length of the parameter buffer. */
size_t mlp_n_params(const mlp *m);
/* 2L: number of parameter groups (W_0, b_0, W_1, b_1, ...). */
size_t mlp_n_groups(const mlp *m);
/* Sizes of the 2L groups in buffer order into sizes[0..n); returns the count written,
 * 0 if n is too small. They sum to D. */
size_t mlp_group_sizes(const mlp *m, size_t *sizes, size_t n);

/* Glorot-uniform weights (U(-a, a), a = sqrt(6 / (fan_in + fan_out))), zero biases:
 * a pure function of seed. */
void mlp_init_params(const mlp *m, float *params, uint64_t seed);

/* Logits for n <= max_batch rows of x (n x w[0], row-major) into out (n x w[L]).
 * Returns MLP_OK or MLP_EINVAL. */
int mlp_forward(mlp *m, const float *params, const float *x, size_t n, float *out);

/* Mean softmax cross-entropy over n <= max_batch rows of x with labels y[i] < w[L],
 * and its gradient with respect to every parameter into grad (length D, overwritten).
 * grad may be NULL (loss only). *correct (may be NULL) gets the number of rows whose
 * arg-max logit equals the label. Returns MLP_OK or MLP_EINVAL (bad size or label). */
int mlp_loss_grad(mlp *m, const float *params, float *grad, const float *x, const uint8_t *y,
                  size_t n, double *loss, size_t *correct);

/* Deterministic minibatch: idx[i] for i < batch, uniform in [0, n_pool) with
 * replacement, a pure function of (seed, step, i) — any step can be replayed alone,
 * whatever happened before. n_pool >= 1. */
void mlp_batch_indices(uint64_t seed, uint64_t step, size_t n_pool, size_t batch, uint32_t *idx);

/* A 64-bit mix of (a, b) (splitmix64 finaliser), for deriving seeds. */
uint64_t mlp_mix64(uint64_t a, uint64_t b);

#endif
