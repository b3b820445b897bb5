/* Li et al.'s toy problem trained in random subspaces of dimension d through libintdim.
 *
 *   toy                      table: every projection kind, d = 5..15, final loss + metric
 *   toy KIND D_SUB [STEPS]   one run (KIND: identity, dense, sparse, fastfood, said)
 *
 * The intrinsic dimension is 10: d >= 10 drives the loss to ~0, d <= 9 cannot. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <intdim.h>

#include "toy_problem.h"

/* The recipe that solves the problem to loss < 1e-8 at d = 10 (also used by the test):
 * Adam with cosine decay from 0.1 over the run. */
static int configure(intdim_trainer *t, uint64_t steps)
{
    int s = intdim_trainer_set(t, INTDIM_TRAIN_OPTIMIZER, INTDIM_OPT_ADAM);
    if (s == INTDIM_OK)
        s = intdim_trainer_set(t, INTDIM_TRAIN_LR, 0.1);
    if (s == INTDIM_OK)
        s = intdim_trainer_set(t, INTDIM_TRAIN_SCHEDULE, INTDIM_SCHED_COSINE);
    if (s == INTDIM_OK)
        s = intdim_trainer_set(t, INTDIM_TRAIN_TOTAL_STEPS, (double)steps);
    return s;
}

static int parse_kind(const char *name, int *kind, int *said)
{
    static const struct { const char *name; int kind, said; } kinds[] = {
        {"identity", INTDIM_PROJ_IDENTITY, 0}, {"dense", INTDIM_PROJ_DENSE, 0},
        {"sparse", INTDIM_PROJ_SPARSE, 0},     {"fastfood", INTDIM_PROJ_FASTFOOD, 0},
        {"said", INTDIM_PROJ_FASTFOOD, 1},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(name, kinds[i].name) == 0) {
            *kind = kinds[i].kind;
            *said = kinds[i].said;
            return 0;
        }
    return -1;
}

/* Train one subspace; prints nothing, returns the library status. */
static int train_one(int kind, int said, size_t d, uint64_t steps, uint64_t seed, double *loss,
                     double *metric)
{
    static float theta[TOY_D], theta0[TOY_D];
    toy_problem tp;
    toy_init(&tp, seed);
    toy_theta0(seed, theta0);
    size_t groups[TOY_GROUPS];
    for (int g = 0; g < TOY_GROUPS; g++)
        groups[g] = TOY_GROUP_SIZE;
    intdim_proj *p = NULL;
    int status = said ? intdim_proj_create_said(&p, kind, TOY_D, d, TOY_GROUPS, groups, seed)
                      : intdim_proj_create(&p, kind, TOY_D, d, seed);
    /* D = 1000 is far too small to gain from threads */
    if (status == INTDIM_OK)
        status = intdim_proj_set(p, INTDIM_PROJ_THREADS, 1);
    intdim_trainer *t = NULL;
    if (status != INTDIM_OK) {
        intdim_proj_destroy(p);
        return status;
    }
    status = intdim_trainer_create(&t, p, theta, theta0, NULL, 0, toy_grad, &tp);
    if (status == INTDIM_OK)
        status = configure(t, steps);
    if (status == INTDIM_OK)
        status = intdim_trainer_run(t, steps, toy_eval, &tp, NULL, NULL, metric);
    if (status == INTDIM_OK)
        *loss = toy_loss(&tp, theta); /* run's final evaluation synced theta */
    intdim_trainer_destroy(t);
    intdim_proj_destroy(p);
    return status;
}

static int table(uint64_t steps)
{
    const char *names[] = {"dense", "sparse", "fastfood", "said"};
    printf("%-9s %3s %12s %7s\n", "kind", "d", "loss", "solved");
    for (size_t k = 0; k < 4; k++) {
        int kind = INTDIM_PROJ_DENSE, said = 0;
        (void)parse_kind(names[k], &kind, &said);
        for (size_t d = 5; d <= 15; d++) {
            /* SAID spends 10 coordinates on the group scales */
            size_t d_total = said ? d + TOY_GROUPS : d;
            double loss = NAN, metric = NAN;
            int status = train_one(kind, said, d_total, steps, 1, &loss, &metric);
            if (status != INTDIM_OK) {
                fprintf(stderr, "%s d=%zu: %s (%s)\n", names[k], d, intdim_strerror(status),
                        intdim_last_error());
                return 1;
            }
            printf("%-9s %3zu %12.3e %7.2f\n", names[k], d_total, loss, metric);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t steps = 20000;
    if (argc == 1)
        return table(steps);
    int kind = INTDIM_PROJ_DENSE, said = 0;
    if (argc < 3 || parse_kind(argv[1], &kind, &said) != 0) {
        fprintf(stderr, "usage: %s [identity|dense|sparse|fastfood|said D_SUB [STEPS]]\n"
                        "  D_SUB is the trainable length; for said it includes the %d group "
                        "scales (D_SUB > %d)\n",
                argv[0], TOY_GROUPS, TOY_GROUPS);
        return 2;
    }
    char *end;
    size_t d = (size_t)strtoull(argv[2], &end, 10);
    if (end == argv[2] || *end != '\0' || argv[2][0] == '-') {
        fprintf(stderr, "D_SUB must be a positive whole number, not '%s'\n", argv[2]);
        return 2;
    }
    if (said && d <= TOY_GROUPS) {
        fprintf(stderr, "said: D_SUB = %zu must exceed the %d group scales it includes (e.g. %d "
                        "for 10 projected coordinates)\n", d, TOY_GROUPS, TOY_GROUPS + 10);
        return 2;
    }
    if (argc > 3)
        steps = strtoull(argv[3], NULL, 10);
    double loss = NAN, metric = NAN;
    int status = train_one(kind, said, d, steps, 1, &loss, &metric);
    if (status != INTDIM_OK) {
        fprintf(stderr, "error: %s (%s)\n", intdim_strerror(status), intdim_last_error());
        return 1;
    }
    printf("kind %s d %zu steps %llu: loss %.3e, groups solved %.0f%%\n", argv[1], d,
           (unsigned long long)steps, loss, 100.0 * metric);
    return 0;
}
