/* The subspace trainer: writes theta = theta0 + P(theta_d) into the host's buffer, calls
 * the host back for dloss/dtheta, pulls it back through the exact adjoint and updates
 * theta_d. A failed step leaves theta_d, the optimizer state and the step count as they
 * were: the update goes into spare arrays that are swapped in only once known finite. */
#include <math.h>
#include <string.h>

#include "optim.h"

/* ---- creation ---------------------------------------------------------------------- */

static float *alloc_floats(size_t n, const char *what, int *status)
{
    float *x = intdim__calloc(n, sizeof(float));
    if (x == NULL && *status == INTDIM_OK)
        *status = intdim__fail_nomem(what, intdim__mul_size(n, sizeof(float)));
    return x;
}

static int check_create_args(intdim_trainer **out, const intdim_proj *p, const float *theta,
                             const float *theta0, const float *grad, unsigned flags,
                             intdim_grad_fn grad_fn)
{
    if (out == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_create: out is NULL");
    if (p == NULL || theta == NULL || grad_fn == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_create: %s is NULL",
                            p == NULL ? "the projection" : theta == NULL ? "theta" : "grad_fn");
    if (flags & ~INTDIM_TRAINER_BORROW_THETA0)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_create: unknown flags 0x%x", flags);
    size_t D = intdim_proj_D(p);
    if (D == 0 || intdim_proj_d(p) == 0)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_create: the projection is empty");
    /* whole buffers compared, not their first addresses: a grad a few floats past theta in
     * one allocation would be overwritten by each theta the trainer writes */
    if ((flags & INTDIM_TRAINER_BORROW_THETA0) && intdim__floats_overlap(theta0, D, theta, D))
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_create: cannot borrow theta0 when it "
                                           "overlaps the host buffer theta the trainer overwrites");
    if (grad != NULL && (intdim__floats_overlap(grad, D, theta, D) ||
                         (theta0 != NULL && intdim__floats_overlap(grad, D, theta0, D))))
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_create: grad must not overlap the %s "
                                           "buffer",
                            intdim__floats_overlap(grad, D, theta, D) ? "theta" : "theta0");
    return INTDIM_OK;
}

INTDIM_API int intdim_trainer_create(intdim_trainer **out, const intdim_proj *p, float *theta,
                                     const float *theta0, float *grad, unsigned flags,
                                     intdim_grad_fn grad_fn, void *user)
{
    int status = check_create_args(out, p, theta, theta0, grad, flags, grad_fn);
    if (status != INTDIM_OK) {
        if (out)
            *out = NULL;
        return status;
    }
    *out = NULL;
    intdim_trainer *t = intdim__calloc(1, sizeof *t);
    if (t == NULL)
        return intdim__fail_nomem("the trainer", sizeof *t);
    t->proj = p;
    t->D = intdim_proj_D(p);
    t->d = intdim_proj_d(p);
    t->n_scales = intdim_proj_n_scales(p);
    t->theta = theta;
    t->grad_fn = grad_fn;
    t->user = user;
    intdim__optim_defaults(&t->settings);

    /* theta0 NULL means "what the host buffer holds now": it must be copied, since the
     * trainer overwrites that buffer. */
    if (theta0 == NULL || !(flags & INTDIM_TRAINER_BORROW_THETA0)) {
        t->theta0_owned = alloc_floats(t->D, "theta0", &status);
        if (t->theta0_owned)
            memcpy(t->theta0_owned, theta0 ? theta0 : theta, t->D * sizeof(float));
        t->theta0 = t->theta0_owned;
    } else {
        t->theta0 = theta0;
    }
    if (grad == NULL) {
        t->grad_owned = alloc_floats(t->D, "the gradient buffer", &status);
        grad = t->grad_owned;
    }
    t->grad = grad;
    float **d_arrays[] = {&t->theta_d, &t->m, &t->v, &t->theta_d_next, &t->m_next,
                          &t->v_next, &t->g_d};
    for (size_t i = 0; i < sizeof d_arrays / sizeof d_arrays[0]; i++)
        *d_arrays[i] = alloc_floats(t->d, "the optimizer state", &status);
    if (t->n_scales > 0)
        t->said_u = alloc_floats(t->D, "the SAID projection buffer", &status);
    if (status == INTDIM_OK)
        status = intdim_proj_init_theta(p, t->theta_d);
    if (status != INTDIM_OK) {
        intdim_trainer_destroy(t);
        return status;
    }
    t->theta0_hash = intdim__hash64(t->theta0, t->D * sizeof(float), 0);
    *out = t;
    return INTDIM_OK;
}

static void free_trainer(intdim_trainer *t)
{
    intdim__free(t->theta0_owned);
    intdim__free(t->grad_owned);
    intdim__free(t->theta_d);
    intdim__free(t->m);
    intdim__free(t->v);
    intdim__free(t->theta_d_next);
    intdim__free(t->m_next);
    intdim__free(t->v_next);
    intdim__free(t->g_d);
    intdim__free(t->said_u);
    intdim__free(t);
}

/* From a callback of the trainer's own step, run or evaluate the trainer is still in use:
 * it is freed when that call returns (the call stops at its next check). */
INTDIM_API void intdim_trainer_destroy(intdim_trainer *t)
{
    if (t == NULL)
        return;
    if (t->busy) {
        t->destroy_requested = 1;
        return;
    }
    free_trainer(t);
}

int intdim__trainer_refuse_if_busy(const intdim_trainer *t, const char *fn)
{
    if (t->busy)
        return intdim__fail(INTDIM_ESTATE, "%s: called from a callback of this trainer's own "
                                           "step, run or evaluate (which is not finished)", fn);
    return INTDIM_OK;
}

/* The end of a public call that ran callbacks: not busy any more, and freed if a callback
 * destroyed it meanwhile. */
static int leave_call(intdim_trainer *t, int status)
{
    t->busy = 0;
    if (t->destroy_requested)
        free_trainer(t);
    return status;
}

/* ---- settings ---------------------------------------------------------------------- */

INTDIM_API int intdim_trainer_set(intdim_trainer *t, int param, double value)
{
    if (t == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_set: trainer is NULL");
    int status = intdim__trainer_refuse_if_busy(t, "intdim_trainer_set");
    if (status != INTDIM_OK)
        return status;
    status = intdim__optim_set(&t->settings, param, value);
    return status == INTDIM_OK ? status : intdim__fail_in("intdim_trainer_set", status);
}

INTDIM_API int intdim_trainer_get(const intdim_trainer *t, int param, double *value)
{
    if (t == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_get: trainer is NULL");
    return intdim__optim_get(&t->settings, param, value);
}

INTDIM_API int intdim_trainer_param_bounds(int param, double *lo, double *hi)
{
    return intdim__optim_bounds(param, lo, hi);
}

/* ---- the step ---------------------------------------------------------------------- */

void intdim__trainer_commit_next(intdim_trainer *t)
{
    float *tmp;
    tmp = t->theta_d, t->theta_d = t->theta_d_next, t->theta_d_next = tmp;
    tmp = t->m, t->m = t->m_next, t->m_next = tmp;
    tmp = t->v, t->v = t->v_next, t->v_next = tmp;
}

/* One pass where the kind can fuse it (IDENTITY, single-block Fastfood). SAID keeps the
 * unscaled projection for the step's adjoint. */
int intdim__trainer_write_theta(intdim_trainer *t)
{
    return intdim__proj_apply_base(t->proj, t->theta_d, t->theta0, t->theta, t->said_u);
}

/* A step failed before its update: put theta0 + P(theta_d) back in the host buffer (the
 * callback may have written to it) and pass the status on. */
static int fail_step(intdim_trainer *t, int status)
{
    char message[512];
    /* keep the step's message, not one from the re-sync */
    strncpy(message, intdim_last_error(), sizeof message - 1);
    message[sizeof message - 1] = '\0';
    (void)intdim__trainer_write_theta(t);
    return intdim__fail(status, "%s", message);
}

/* A NaN or Inf reached theta_d's update: stop (state kept) or skip the step (counted). */
static int nonfinite_step(intdim_trainer *t, const char *what)
{
    if (t->settings.nonfinite == INTDIM_NONFINITE_SKIP) {
        t->step++;
        t->skipped++;
        return INTDIM_OK;
    }
    intdim__fail(INTDIM_ENONFINITE, "non-finite %s at step %llu; theta_d kept at the last "
                                    "finite value", what, (unsigned long long)t->step);
    return fail_step(t, INTDIM_ENONFINITE);
}

/* g_d is finite here. Clip, update into the spare arrays, and commit if finite. */
static int apply_update(intdim_trainer *t)
{
    const optim_settings *s = &t->settings;
    size_t d = t->d, d_lin = t->d - t->n_scales;
    double norm = intdim__optim_norm(t->g_d, d);
    intdim__optim_clip(t->g_d, d, norm, s->clip_norm);
    uint64_t update_count = t->updates + 1;
    double lr = intdim__optim_lr_at(s, s->lr, t->step);
    double lambda_lr = intdim__optim_lr_at(s, s->lambda_lr > 0.0 ? s->lambda_lr : s->lr, t->step);
    intdim__optim_update(s, update_count, lr, 0, d_lin, t->theta_d, t->m, t->v, t->g_d,
                         t->theta_d_next, t->m_next, t->v_next);
    intdim__optim_update(s, update_count, lambda_lr, d_lin, d, t->theta_d, t->m, t->v, t->g_d,
                         t->theta_d_next, t->m_next, t->v_next);
    /* A huge learning rate can overflow a finite gradient into Inf. */
    if (!intdim__all_finite(t->theta_d_next, d) || !intdim__all_finite(t->m_next, d) ||
        !intdim__all_finite(t->v_next, d))
        return nonfinite_step(t, "update of theta_d (learning rate too large?)");
    intdim__trainer_commit_next(t);
    t->updates = update_count;
    t->step++;
    return INTDIM_OK;
}

static int step_once(intdim_trainer *t, double *loss)
{
    int status = intdim__optim_check(&t->settings);
    if (status == INTDIM_OK)
        status = intdim__trainer_write_theta(t);
    if (status != INTDIM_OK)
        return fail_step(t, status);
    double value = NAN;
    int rc = t->grad_fn(t->user, t->step, t->theta, t->grad, &value);
    if (rc != 0) {
        intdim__fail(INTDIM_ECALLBACK, "the gradient callback returned %d at step %llu", rc,
                     (unsigned long long)t->step);
        return fail_step(t, INTDIM_ECALLBACK);
    }
    if (loss)
        *loss = value;
    if (!isfinite(value))
        return nonfinite_step(t, "loss from the gradient callback");
    /* theta_d is the one just written, so said_u (SAID only) is its projection */
    status = intdim__proj_vjp_said_u(t->proj, t->theta_d, t->grad, t->said_u, t->g_d);
    if (status != INTDIM_OK)
        return fail_step(t, status);
    /* Every entry of g_D that reaches theta_d passes through g_d: checking g_d (O(d))
     * rather than g_D (O(D)) is exact for what could poison theta_d. */
    if (!intdim__all_finite(t->g_d, t->d))
        return nonfinite_step(t, "gradient (after the projection's adjoint)");
    return apply_update(t);
}

INTDIM_API int intdim_trainer_step(intdim_trainer *t, double *loss)
{
    if (loss)
        *loss = NAN;
    if (t == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_step: trainer is NULL");
    int status = intdim__trainer_refuse_if_busy(t, "intdim_trainer_step");
    if (status != INTDIM_OK)
        return status;
    t->busy = 1;
    return leave_call(t, step_once(t, loss));
}

/* ---- evaluation and the loop ------------------------------------------------------- */

INTDIM_API int intdim_trainer_sync(intdim_trainer *t)
{
    if (t == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_sync: trainer is NULL");
    int status = intdim__trainer_refuse_if_busy(t, "intdim_trainer_sync");
    return status == INTDIM_OK ? intdim__trainer_write_theta(t) : status;
}

static int evaluate_once(intdim_trainer *t, intdim_eval_fn eval_fn, void *user,
                         double *metric)
{
    int status = intdim__trainer_write_theta(t);
    if (status != INTDIM_OK)
        return status;
    double value = NAN;
    int rc = eval_fn(user, t->theta, &value);
    if (rc != 0)
        return intdim__fail(INTDIM_ECALLBACK, "the evaluation callback returned %d at step %llu",
                            rc, (unsigned long long)t->step);
    if (metric)
        *metric = value;
    if (!isfinite(value))
        return intdim__fail(INTDIM_ENONFINITE, "the evaluation callback gave %g at step %llu", value,
                            (unsigned long long)t->step);
    return INTDIM_OK;
}

INTDIM_API int intdim_trainer_evaluate(intdim_trainer *t, intdim_eval_fn eval_fn, void *user,
                                       double *metric)
{
    if (metric)
        *metric = NAN;
    if (t == NULL || eval_fn == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_evaluate: %s is NULL",
                            t == NULL ? "trainer" : "eval_fn");
    int status = intdim__trainer_refuse_if_busy(t, "intdim_trainer_evaluate");
    if (status != INTDIM_OK)
        return status;
    t->busy = 1;
    return leave_call(t, evaluate_once(t, eval_fn, user, metric));
}

/* A callback destroyed the trainer during run: stop at once. */
static int destroyed_during_run(const intdim_trainer *t)
{
    return intdim__fail(INTDIM_EINTERRUPTED, "intdim_trainer_run: the trainer was destroyed by "
                                             "one of its callbacks at step %llu",
                        (unsigned long long)t->step);
}

static int run_steps(intdim_trainer *t, uint64_t n_steps, intdim_eval_fn eval_fn,
                     void *eval_user, intdim_progress_fn progress, void *progress_user,
                     double *final_metric, int sync_at_end);

/* intdim_trainer_run; sync_at_end = 0 leaves the host buffer as the last step or
 * evaluation left it (for callers that evaluate right after, which writes it anyway). */
int intdim__trainer_run(intdim_trainer *t, uint64_t n_steps, intdim_eval_fn eval_fn,
                        void *eval_user, intdim_progress_fn progress, void *progress_user,
                        double *final_metric, int sync_at_end)
{
    if (final_metric)
        *final_metric = NAN;
    if (t == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_run: trainer is NULL");
    int status = intdim__trainer_refuse_if_busy(t, "intdim_trainer_run");
    if (status != INTDIM_OK)
        return status;
    t->busy = 1;
    return leave_call(t, run_steps(t, n_steps, eval_fn, eval_user, progress, progress_user,
                                   final_metric, sync_at_end));
}

static int run_steps(intdim_trainer *t, uint64_t n_steps, intdim_eval_fn eval_fn,
                     void *eval_user, intdim_progress_fn progress, void *progress_user,
                     double *final_metric, int sync_at_end)
{
    int status = intdim__optim_check(&t->settings);
    if (status != INTDIM_OK)
        return sync_at_end ? fail_step(t, status) : status;
    uint64_t every = t->settings.eval_every;
    double last_metric = NAN;
    /* Does the host buffer hold theta0 + P(theta_d) for the current theta_d? A step leaves
     * it one update behind; an evaluation or a failed step's restore brings it up to date. */
    int in_sync = 0;
    for (uint64_t i = 0; i < n_steps; i++) {
        double loss;
        status = step_once(t, &loss);
        if (t->destroy_requested)
            return destroyed_during_run(t);
        if (status != INTDIM_OK) {
            in_sync = 1; /* a failed step restores the buffer (intdim_trainer_step's contract) */
            break;
        }
        in_sync = 0;
        double metric = NAN;
        int due = (every > 0 && t->step % every == 0) || i + 1 == n_steps;
        if (eval_fn != NULL && due) {
            status = evaluate_once(t, eval_fn, eval_user, &metric);
            if (t->destroy_requested)
                return destroyed_during_run(t);
            if (status != INTDIM_OK)
                break;
            in_sync = 1;
            last_metric = metric;
        }
        int stop = progress != NULL && progress(progress_user, t->step, loss, metric) != 0;
        if (t->destroy_requested)
            return destroyed_during_run(t);
        if (stop) {
            status = intdim__fail(INTDIM_EINTERRUPTED, "the progress callback stopped the run "
                                                       "at step %llu", (unsigned long long)t->step);
            break;
        }
    }
    if (status == INTDIM_OK && n_steps == 0 && eval_fn != NULL) {
        status = evaluate_once(t, eval_fn, eval_user, &last_metric);
        if (t->destroy_requested)
            return destroyed_during_run(t);
        in_sync = 1;
    }
    if (final_metric)
        *final_metric = last_metric;
    /* Leave the host's model trained when run returns; the run's own status and message win
     * over a failure of this write. */
    if (!in_sync && sync_at_end)
        status = status == INTDIM_OK ? intdim__trainer_write_theta(t) : fail_step(t, status);
    return status;
}

INTDIM_API int intdim_trainer_run(intdim_trainer *t, uint64_t n_steps, intdim_eval_fn eval_fn,
                                  void *eval_user, intdim_progress_fn progress,
                                  void *progress_user, double *final_metric)
{
    return intdim__trainer_run(t, n_steps, eval_fn, eval_user, progress, progress_user,
                               final_metric, 1);
}

/* ---- state access ------------------------------------------------------------------ */

INTDIM_API int intdim_trainer_reset(intdim_trainer *t)
{
    if (t == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_reset: trainer is NULL");
    int status = intdim__trainer_refuse_if_busy(t, "intdim_trainer_reset");
    if (status != INTDIM_OK)
        return status;
    status = intdim_proj_init_theta(t->proj, t->theta_d);
    if (status != INTDIM_OK)
        return status;
    memset(t->m, 0, t->d * sizeof(float));
    memset(t->v, 0, t->d * sizeof(float));
    t->step = 0;
    t->updates = 0;
    t->skipped = 0;
    return INTDIM_OK;
}

INTDIM_API size_t intdim_trainer_d(const intdim_trainer *t)
{
    return t ? t->d : 0;
}

INTDIM_API uint64_t intdim_trainer_steps_done(const intdim_trainer *t)
{
    return t ? t->step : 0;
}

INTDIM_API int intdim_trainer_get_theta_d(const intdim_trainer *t, float *out, size_t n)
{
    if (t == NULL || out == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_get_theta_d: %s is NULL",
                            t == NULL ? "trainer" : "out");
    if (n < t->d)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_get_theta_d: n = %zu < d = %zu", n,
                            t->d);
    memcpy(out, t->theta_d, t->d * sizeof(float));
    return INTDIM_OK;
}

INTDIM_API int intdim_trainer_set_theta_d(intdim_trainer *t, const float *in, size_t n)
{
    if (t == NULL || in == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_set_theta_d: %s is NULL",
                            t == NULL ? "trainer" : "in");
    if (n != t->d)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_set_theta_d: n = %zu != d = %zu", n,
                            t->d);
    if (!intdim__all_finite(in, n))
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_set_theta_d: non-finite entry");
    int status = intdim__trainer_refuse_if_busy(t, "intdim_trainer_set_theta_d");
    if (status != INTDIM_OK)
        return status;
    memcpy(t->theta_d, in, n * sizeof(float));
    return INTDIM_OK;
}
