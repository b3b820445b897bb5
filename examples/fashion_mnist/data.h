/*
 * Fashion-MNIST as the host sees it: uint8 pixels and labels, subsets by class, and
 * the callbacks libintdim calls (loss + gradient on a deterministic minibatch, accuracy).
 */
#ifndef FMNIST_DATA_H
#define FMNIST_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "mlp.h"

#define FM_PIXELS 784 /* 28 x 28 */
#define FM_CLASSES 10
/* Where Debian's dataset-fashion-mnist installs the files. */
#define FM_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

/* n examples of FM_PIXELS bytes each with one label byte each. A set either owns its
 * arrays (from fm_load / fm_select; free with fm_set_free) or views another's (fm_view;
 * never freed). */
typedef struct {
    size_t n;
    uint8_t *pixels; /* n x FM_PIXELS */
    uint8_t *labels; /* n */
    int owned;
} fm_set;

/* Read train-images-idx3-ubyte.gz etc. from dir. Checks every header (28 x 28 images,
 * labels < 10, image and label counts equal). Returns 0 or an IDX_E* status with err. */
int fm_load(const char *dir, fm_set *train, fm_set *test, char *err, size_t err_len);
/* Rows [start, start + count) of s, sharing its memory. count is clamped to what exists. */
fm_set fm_view(const fm_set *s, size_t start, size_t count);
/* A copy of the first max_n examples (0 = all) of s whose label is in [lo, hi], in order;
 * with remap the labels become label - lo. Returns 0, or IDX_ENOMEM / IDX_EINVAL. */
int fm_select(const fm_set *s, unsigned lo, unsigned hi, int remap, size_t max_n, fm_set *out);
void fm_set_free(fm_set *s);

#define FM_SIDE 28     /* images are FM_SIDE x FM_SIDE, row-major */
#define FM_ROTATIONS 4 /* 0, 90, 180, 270 degrees: the rotation task's classes */

/* dst = src (one row-major 28 x 28 image) turned clockwise by quarter_turns x 90 degrees
 * (taken mod 4). One clockwise quarter turn moves pixel (r, c) (row r from the top,
 * column c from the left) to (c, 27 - r): the top row becomes the right-most column.
 * dst and src must not overlap. */
void fm_rotate(const uint8_t *src, uint8_t *dst, unsigned quarter_turns);

/* The self-supervised rotation task on the first max_n images (0 = all) of s: an owned
 * set of 4 x n examples where example 4 i + k is image i turned clockwise by k quarter
 * turns with label k (0..3); the class labels of s are not used. Returns 0, or
 * IDX_ENOMEM / IDX_EINVAL (NULL, or an empty s). */
int fm_rotation_task(const fm_set *s, size_t max_n, fm_set *out);

/* What the callbacks need: the network, where minibatches come from and workspace. */
typedef struct {
    mlp *net;
    const fm_set *pool; /* minibatches are drawn from it */
    size_t batch;       /* <= net->max_batch */
    uint64_t batch_seed;/* minibatch b of step s = mlp_batch_indices(batch_seed, s, ...) */
    float *x;           /* net->max_batch x FM_PIXELS */
    uint8_t *y;         /* net->max_batch */
    uint32_t *idx;      /* batch */
    uint64_t grad_calls;
} fm_host;

/* Set up the workspace for net (which must accept FM_PIXELS inputs). 0 or IDX_ENOMEM. */
int fm_host_init(fm_host *h, mlp *net, const fm_set *pool, size_t batch, uint64_t batch_seed);
void fm_host_free(fm_host *h);

/* intdim_grad_fn: mean cross-entropy of minibatch `step` and its gradient. user = fm_host. */
int fm_grad(void *user, uint64_t step, const float *theta, float *grad, double *loss);

/* Accuracy of theta over a whole set, in chunks of the network's max batch. */
int fm_accuracy(fm_host *h, const float *theta, const fm_set *set, double *accuracy);

/* intdim_eval_fn over one set: user = fm_eval. */
typedef struct {
    fm_host *host;
    const fm_set *set;
} fm_eval;
int fm_eval_accuracy(void *user, const float *theta, double *metric);

#endif
