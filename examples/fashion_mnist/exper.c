/* Trials and d90 searches of the Fashion-MNIST host through the public libintdim API. */
#include "exper.h"

#include <intdim.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *method_name(int kind, int said)
{
    switch (kind) {
    case INTDIM_PROJ_IDENTITY: return "full";
    case INTDIM_PROJ_DENSE: return said ? "said-dense" : "dense";
    case INTDIM_PROJ_SPARSE: return said ? "said-sparse" : "sparse";
    case INTDIM_PROJ_FASTFOOD: return said ? "said-fastfood" : "fastfood";
    default: return "?";
    }
}

int problem_init(problem *pb, size_t n_widths, const size_t *widths, const fm_set *pool,
                 const fm_set *train_eval, const fm_set *val, const fm_set *test, size_t batch,
                 uint64_t steps, uint64_t init_seed)
{
    memset(pb, 0, sizeof *pb);
    /* Evaluation runs in chunks of max_batch rows: 1000 keeps sgemm efficient. */
    size_t max_batch = batch > 1000 ? batch : 1000;
    if (mlp_init(&pb->net, n_widths, widths, max_batch) != MLP_OK) {
        fprintf(stderr, "fmnist: cannot set up the network (bad widths or out of memory)\n");
        return 1;
    }
    if (fm_host_init(&pb->host, &pb->net, pool, batch, 0) != 0) {
        fprintf(stderr, "fmnist: cannot set up the host (batch %zu, pool %zu)\n", batch,
                pool != NULL ? pool->n : 0);
        mlp_free(&pb->net);
        return 1;
    }
    pb->D = mlp_n_params(&pb->net);
    pb->n_groups = mlp_group_sizes(&pb->net, pb->groups, 2 * MLP_MAX_LAYERS);
    pb->theta0 = malloc(pb->D * sizeof(float));
    pb->theta = malloc(pb->D * sizeof(float));
    pb->grad = malloc(pb->D * sizeof(float));
    if (pb->theta0 == NULL || pb->theta == NULL || pb->grad == NULL) {
        fprintf(stderr, "fmnist: out of memory for %zu parameters\n", pb->D);
        problem_free(pb);
        return 1;
    }
    mlp_init_params(&pb->net, pb->theta0, init_seed);
    memcpy(pb->theta, pb->theta0, pb->D * sizeof(float));
    pb->pool = pool;
    pb->train_eval = train_eval;
    pb->val = val;
    pb->test = test;
    pb->batch = batch;
    pb->steps = steps;
    return 0;
}

void problem_free(problem *pb)
{
    fm_host_free(&pb->host);
    mlp_free(&pb->net);
    free(pb->theta0);
    free(pb->theta);
    free(pb->grad);
    memset(pb, 0, sizeof *pb);
}

static int create_projection(const problem *pb, const trial *t, intdim_proj **p)
{
    int rc;
    if (t->kind == INTDIM_PROJ_IDENTITY)
        rc = intdim_proj_create(p, INTDIM_PROJ_IDENTITY, pb->D, pb->D, t->seed);
    else if (t->said)
        rc = intdim_proj_create_said(p, (intdim_proj_kind)t->kind, pb->D, t->d, pb->n_groups,
                                     pb->groups, t->seed);
    else
        rc = intdim_proj_create(p, (intdim_proj_kind)t->kind, pb->D, t->d, t->seed);
    /* The host's BLAS already keeps the cores busy between projections: extra projection
     * threads then wait on busy cores (measured 20x slower on 2 loaded cores). */
    if (rc == INTDIM_OK && pb->proj_threads > 0)
        rc = intdim_proj_set(*p, INTDIM_PROJ_THREADS, pb->proj_threads);
    return rc;
}

/* Keeps the last minibatch loss of intdim_trainer_run. */
static int remember_loss(void *user, uint64_t step, double loss, double metric)
{
    (void)step;
    (void)metric;
    *(double *)user = loss;
    return 0;
}

static int trainer_for(problem *pb, const intdim_proj *p, double lr, uint64_t seed,
                       intdim_trainer **tr)
{
    /* Each seed gets its own minibatch stream; every d sees the same one for a seed. */
    pb->host.batch_seed = mlp_mix64(seed, 0xBA7C4u);
    int rc = intdim_trainer_create(tr, p, pb->theta, pb->theta0, pb->grad,
                                   INTDIM_TRAINER_BORROW_THETA0, fm_grad, &pb->host);
    if (rc == INTDIM_OK)
        rc = intdim_trainer_set(*tr, INTDIM_TRAIN_OPTIMIZER, INTDIM_OPT_ADAM);
    if (rc == INTDIM_OK)
        rc = intdim_trainer_set(*tr, INTDIM_TRAIN_LR, lr);
    return rc;
}

static int measure(problem *pb, trial *t, int with_test)
{
    if (pb->train_eval != NULL && fm_accuracy(&pb->host, pb->theta, pb->train_eval, &t->train_acc))
        return INTDIM_ECALLBACK;
    if (pb->val != NULL && fm_accuracy(&pb->host, pb->theta, pb->val, &t->val_acc))
        return INTDIM_ECALLBACK;
    if (with_test && pb->test != NULL && fm_accuracy(&pb->host, pb->theta, pb->test, &t->test_acc))
        return INTDIM_ECALLBACK;
    return INTDIM_OK;
}

int run_trial(problem *pb, trial *t, int with_test)
{
    double start = now_seconds();
    t->train_acc = t->val_acc = t->test_acc = t->loss = NAN;
    if (t->kind == INTDIM_PROJ_IDENTITY)
        t->d = pb->D;
    intdim_proj *p = NULL;
    intdim_trainer *tr = NULL;
    int rc = create_projection(pb, t, &p);
    if (rc == INTDIM_OK)
        rc = trainer_for(pb, p, t->lr, t->seed, &tr);
    if (rc == INTDIM_OK)
        rc = intdim_trainer_run(tr, pb->steps, NULL, NULL, remember_loss, &t->loss, NULL);
    if (rc == INTDIM_OK)
        rc = intdim_trainer_sync(tr);
    if (rc == INTDIM_OK)
        rc = measure(pb, t, with_test);
    if (rc != INTDIM_OK)
        fprintf(stderr, "fmnist: %s d=%zu lr=%g seed=%llu failed: %s: %s\n",
                method_name(t->kind, t->said), t->d, t->lr, (unsigned long long)t->seed,
                intdim_strerror(rc), intdim_last_error());
    intdim_trainer_destroy(tr);
    intdim_proj_destroy(p);
    t->status = rc;
    t->seconds = now_seconds() - start;
    if (!pb->quiet)
        fprintf(stderr, "  %-13s d=%-7zu lr=%-7g seed=%-20llu train=%.4f val=%.4f loss=%.3f %.1fs\n",
                method_name(t->kind, t->said), t->d, t->lr, (unsigned long long)t->seed,
                t->train_acc, t->val_acc, t->loss, t->seconds);
    return rc;
}

int train_full_marks(problem *pb, double lr, uint64_t seed, const uint64_t *marks,
                     size_t n_marks, float *const *out)
{
    intdim_proj *p = NULL;
    intdim_trainer *tr = NULL;
    trial t;
    memset(&t, 0, sizeof t);
    t.kind = INTDIM_PROJ_IDENTITY;
    t.seed = seed;
    int rc = create_projection(pb, &t, &p);
    if (rc == INTDIM_OK)
        rc = trainer_for(pb, p, lr, seed, &tr);
    uint64_t done = 0;
    for (size_t k = 0; rc == INTDIM_OK && k < n_marks; k++) {
        if (marks[k] < done) {
            rc = INTDIM_EINVAL;
            break;
        }
        if (marks[k] > done)
            rc = intdim_trainer_run(tr, marks[k] - done, NULL, NULL, NULL, NULL, NULL);
        if (rc == INTDIM_OK)
            rc = intdim_trainer_sync(tr);
        if (rc == INTDIM_OK)
            memcpy(out[k], pb->theta, pb->D * sizeof(float));
        done = marks[k];
    }
    if (rc != INTDIM_OK)
        fprintf(stderr, "fmnist: full training failed: %s: %s\n", intdim_strerror(rc),
                intdim_last_error());
    intdim_trainer_destroy(tr);
    intdim_proj_destroy(p);
    return rc;
}

/* ---- d90 search ---------------------------------------------------------------------- */

static int configure_search(intdim_search *s, const problem *pb, int kind, int said,
                            const size_t *ds, size_t n_ds, const double *lrs, size_t n_lrs,
                            size_t n_seeds, uint64_t base_seed, double baseline_val)
{
    int rc = intdim_search_set(s, INTDIM_SEARCH_KIND, kind);
    if (rc == INTDIM_OK)
        rc = intdim_search_set(s, INTDIM_SEARCH_SAID, said);
    if (rc == INTDIM_OK && said)
        rc = intdim_search_set_groups(s, pb->groups, pb->n_groups);
    if (rc == INTDIM_OK)
        rc = intdim_search_set(s, INTDIM_SEARCH_SEEDS, (double)n_seeds);
    if (rc == INTDIM_OK)
        rc = intdim_search_set(s, INTDIM_SEARCH_BASE_SEED, (double)base_seed);
    if (rc == INTDIM_OK)
        rc = intdim_search_set(s, INTDIM_SEARCH_BASELINE, baseline_val);
    if (rc == INTDIM_OK)
        rc = intdim_search_set(s, INTDIM_SEARCH_STEPS, (double)pb->steps);
    if (rc == INTDIM_OK)
        rc = intdim_search_set_d_list(s, ds, n_ds);
    if (rc == INTDIM_OK)
        rc = intdim_search_set_lrs(s, lrs, n_lrs);
    return rc;
}

/* Mean train and test accuracy of the finished trials at (d, lr). */
static void means_at(const trial *trials, size_t n, size_t d, double lr, double *train,
                     double *test)
{
    double sum_train = 0.0, sum_test = 0.0;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (trials[i].d != d || fabs(trials[i].lr - lr) > 1e-9 * fabs(lr))
            continue;
        /* A failed trial counts as accuracy 0, as the search counts it as -inf. */
        int ok = trials[i].status == INTDIM_OK;
        sum_train += ok ? trials[i].train_acc : 0.0;
        sum_test += ok ? trials[i].test_acc : 0.0;
        count++;
    }
    *train = count ? sum_train / (double)count : NAN;
    *test = count ? sum_test / (double)count : NAN;
}

static int run_asked_trials(intdim_search *s, problem *pb, int said, trial *trials, size_t cap,
                            size_t *n_done)
{
    for (;;) {
        int what = 0, kind = 0, asked_said = 0;
        uint64_t id = 0, seed = 0;
        size_t d = 0;
        double lr = 0.0;
        int rc = intdim_search_ask(s, &what, &id, &d, &kind, &asked_said, &lr, &seed);
        if (rc != INTDIM_OK)
            return rc;
        if (what == INTDIM_ASK_DONE)
            return INTDIM_OK;
        if (what != INTDIM_ASK_TRIAL || *n_done >= cap) {
            fprintf(stderr, "fmnist: the search asked for more than the %zu planned trials\n", cap);
            return INTDIM_ESTATE;
        }
        trial *t = &trials[(*n_done)++];
        memset(t, 0, sizeof *t);
        t->kind = kind;
        t->said = asked_said || (said && kind != INTDIM_PROJ_IDENTITY);
        t->d = d;
        t->lr = lr;
        t->seed = seed;
        /* Test accuracy is measured for every trial but no choice ever reads it: lr and
         * d90 are decided on validation accuracy; test is only reported. */
        run_trial(pb, t, 1);
        rc = intdim_search_tell(s, id, t->status == INTDIM_OK ? t->train_acc : NAN,
                                t->status == INTDIM_OK ? t->val_acc : -INFINITY, pb->steps,
                                t->seconds, t->status);
        if (rc != INTDIM_OK)
            return rc;
    }
}

static int collect_rows(const intdim_search *s, const trial *trials, size_t n_trials,
                        d90_result *out)
{
    size_t n_points = intdim_search_n_points(s);
    if (n_points > sizeof out->rows / sizeof out->rows[0])
        n_points = sizeof out->rows / sizeof out->rows[0];
    for (size_t i = 0; i < n_points; i++) {
        d90_row *row = &out->rows[i];
        int rc = intdim_search_point(s, i, &row->d, &row->best_lr, &row->val_mean,
                                     &row->val_spread, &row->n_seeds, &row->pass_val);
        if (rc != INTDIM_OK)
            return rc;
        means_at(trials, n_trials, row->d, row->best_lr, &row->train_mean, &row->test_mean);
        /* The d90 rule (strictly greater than 0.9 x baseline), applied to test accuracy at
         * the lr validation chose. */
        row->pass_test = row->test_mean > 0.9 * out->baseline_test;
        if (row->pass_test && out->d90_test == 0)
            out->d90_test = row->d;
    }
    out->n_rows = n_points;
    return INTDIM_OK;
}

int search_d90(problem *pb, int kind, int said, const size_t *ds, size_t n_ds,
               const double *lrs, size_t n_lrs, size_t n_seeds, uint64_t base_seed,
               double baseline_val, double baseline_test, d90_result *out)
{
    double start = now_seconds();
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->said = said;
    out->baseline_val = baseline_val;
    out->baseline_test = baseline_test;
    size_t cap = n_ds * n_lrs * n_seeds;
    trial *trials = calloc(cap ? cap : 1, sizeof *trials);
    intdim_search *s = NULL;
    int rc = trials == NULL ? INTDIM_ENOMEM : intdim_search_create(&s, pb->D);
    if (rc == INTDIM_OK)
        rc = configure_search(s, pb, kind, said, ds, n_ds, lrs, n_lrs, n_seeds, base_seed,
                              baseline_val);
    size_t n_done = 0;
    if (rc == INTDIM_OK)
        rc = run_asked_trials(s, pb, said, trials, cap, &n_done);
    int reached = 0;
    if (rc == INTDIM_OK)
        rc = intdim_search_result(s, &out->d90_val, &reached, NULL, &out->d90_lo, &out->d90_hi);
    if (rc == INTDIM_OK) {
        if (!reached)
            out->d90_val = 0;
        rc = collect_rows(s, trials, n_done, out);
    }
    if (rc != INTDIM_OK)
        fprintf(stderr, "fmnist: d90 search (%s) failed: %s: %s\n", method_name(kind, said),
                intdim_strerror(rc), intdim_last_error());
    out->n_trials = n_done;
    out->seconds = now_seconds() - start;
    intdim_search_destroy(s);
    free(trials);
    return rc;
}
