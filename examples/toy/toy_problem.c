/* Li et al.'s toy problem: see toy_problem.h. */
#include "toy_problem.h"

#include <math.h>

/* splitmix64: a tiny self-contained generator so the module needs nothing but libc. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static double uniform01(uint64_t *state)
{
    return (double)(splitmix64(state) >> 11) * 0x1.0p-53;
}

void toy_init(toy_problem *tp, uint64_t seed)
{
    uint64_t state = seed ^ 0x746f79746172ULL; /* "toytar": targets differ from theta0 */
    for (int g = 0; g < TOY_GROUPS; g++)
        tp->targets[g] = 2.0 * uniform01(&state) - 1.0;
    tp->tolerance = TOY_DEFAULT_TOLERANCE;
    tp->grad_calls = 0;
}

void toy_theta0(uint64_t seed, float *theta0)
{
    uint64_t state = seed ^ 0x746f79746830ULL; /* "toyth0" */
    for (int i = 0; i < TOY_D; i++)
        theta0[i] = (float)(0.2 * uniform01(&state) - 0.1);
}

/* r_g = sum_{i in g} theta_i - t_g, summed in double so the loss floor is set by the
 * float parameters, not by the summation. */
static void residuals(const toy_problem *tp, const float *theta, double *r)
{
    for (int g = 0; g < TOY_GROUPS; g++) {
        double s = 0.0;
        for (int i = 0; i < TOY_GROUP_SIZE; i++)
            s += (double)theta[g * TOY_GROUP_SIZE + i];
        r[g] = s - tp->targets[g];
    }
}

double toy_loss(const toy_problem *tp, const float *theta)
{
    double r[TOY_GROUPS];
    residuals(tp, theta, r);
    double loss = 0.0;
    for (int g = 0; g < TOY_GROUPS; g++)
        loss += r[g] * r[g];
    return loss;
}

int toy_grad(void *user, uint64_t step, const float *theta, float *grad, double *loss)
{
    (void)step; /* full batch */
    toy_problem *tp = user;
    double r[TOY_GROUPS];
    residuals(tp, theta, r);
    double total = 0.0;
    for (int g = 0; g < TOY_GROUPS; g++) {
        total += r[g] * r[g];
        float gi = (float)(2.0 * r[g]);
        for (int i = 0; i < TOY_GROUP_SIZE; i++)
            grad[g * TOY_GROUP_SIZE + i] = gi;
    }
    *loss = total;
    tp->grad_calls++;
    return 0;
}

int toy_eval(void *user, const float *theta, double *metric)
{
    const toy_problem *tp = user;
    double r[TOY_GROUPS];
    residuals(tp, theta, r);
    int solved = 0;
    for (int g = 0; g < TOY_GROUPS; g++)
        solved += fabs(r[g]) <= tp->tolerance;
    *metric = (double)solved / TOY_GROUPS;
    return 0;
}

int toy_eval_neg_loss(void *user, const float *theta, double *metric)
{
    *metric = -toy_loss(user, theta);
    return 0;
}
