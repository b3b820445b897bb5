/* Li et al. (2018)'s toy problem as a small reusable host module.
 *
 * D = 1000 parameters in 10 contiguous groups of 100 entries. Group g must sum to a
 * target t_g (drawn from a seed):
 *
 *     loss(theta) = sum_g (sum_{i in g} theta_i - t_g)^2
 *     dloss/dtheta_i = 2 (sum_{j in g(i)} theta_j - t_{g(i)})
 *
 * The solution set is an affine subspace of codimension 10, so a random subspace of
 * dimension d reaches zero loss (almost surely) iff d >= 10: the intrinsic dimension is 10.
 *
 * Metric (intdim_eval_fn, higher is better): the fraction of groups whose sum is within
 * `tolerance` (default TOY_DEFAULT_TOLERANCE) of its target, in [0, 1]. Full training
 * reaches 1.0; a random subspace of d <= 9 cannot make all 10 residuals vanish, so with
 * the d90 rule (mean metric strictly greater than 0.9 x baseline) d90 = 10.
 * toy_eval_neg_loss gives -loss instead (also higher is better) for smooth curves.
 *
 * Plain C, only <stddef.h>/<stdint.h>; the callbacks match intdim_grad_fn / intdim_eval_fn
 * with `user` pointing to a toy_problem. */
#ifndef INTDIM_TOY_PROBLEM_H
#define INTDIM_TOY_PROBLEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TOY_D 1000
#define TOY_GROUPS 10
#define TOY_GROUP_SIZE 100
#define TOY_DEFAULT_TOLERANCE 1e-3

typedef struct toy_problem {
    double targets[TOY_GROUPS]; /* t_g, uniform in [-1, 1) from the seed */
    double tolerance;           /* |sum_g - t_g| <= tolerance counts group g as solved */
    uint64_t grad_calls;        /* incremented by toy_grad (handy for tests) */
} toy_problem;

/* Targets from seed; tolerance = TOY_DEFAULT_TOLERANCE; grad_calls = 0. */
void toy_init(toy_problem *tp, uint64_t seed);

/* A random base point theta0 (length TOY_D), entries uniform in [-0.1, 0.1) from seed. */
void toy_theta0(uint64_t seed, float *theta0);

/* The loss at theta (length TOY_D), sums in double. */
double toy_loss(const toy_problem *tp, const float *theta);

/* intdim_grad_fn: user = toy_problem *. Full-batch: step is ignored. Returns 0. */
int toy_grad(void *user, uint64_t step, const float *theta, float *grad, double *loss);

/* intdim_eval_fn: fraction of groups solved to tolerance, in [0, 1]. Returns 0. */
int toy_eval(void *user, const float *theta, double *metric);

/* intdim_eval_fn: -loss. Returns 0. */
int toy_eval_neg_loss(void *user, const float *theta, double *metric);

#ifdef __cplusplus
}
#endif
#endif
