/* Optimizer math on theta_d: settings, schedules, clipping, SGD / Adam / AdamW updates.
 * Pure functions over caller-owned arrays; nothing here allocates. Per-coordinate
 * arithmetic is done in double and stored in float, in index order, so results are the
 * same bits whatever the thread count (there is only one). */
#include "optim.h"

#include <math.h>
#include <string.h>

enum { N_TRAIN_PARAMS = 16 };

/* 2^53: the largest integer a double holds exactly (step counts are set through doubles). */
#define MAX_EXACT_INT 9007199254740992.0

/* The header's intdim_train_param must end where this table does. */
_Static_assert(INTDIM_TRAIN_MIN_LR_RATIO == N_TRAIN_PARAMS - 1,
               "a trainer parameter was added: extend g_ranges (and the search's copy)");

typedef struct param_range {
    const char *name;
    double lo, hi;
    int integral;
} param_range;

static const param_range g_ranges[N_TRAIN_PARAMS] = {
    [INTDIM_TRAIN_OPTIMIZER] = {"INTDIM_TRAIN_OPTIMIZER", 0, 2, 1},
    [INTDIM_TRAIN_LR] = {"INTDIM_TRAIN_LR", 0, 1e9, 0},
    [INTDIM_TRAIN_MOMENTUM] = {"INTDIM_TRAIN_MOMENTUM", 0, 1, 0},
    [INTDIM_TRAIN_NESTEROV] = {"INTDIM_TRAIN_NESTEROV", 0, 1, 1},
    /* beta = 1 would divide by 1 - beta^t = 0 in the bias correction */
    [INTDIM_TRAIN_BETA1] = {"INTDIM_TRAIN_BETA1", 0, 0.9999999999999999, 0},
    [INTDIM_TRAIN_BETA2] = {"INTDIM_TRAIN_BETA2", 0, 0.9999999999999999, 0},
    /* eps = 0 turns a zero gradient into 0/0 */
    [INTDIM_TRAIN_EPS] = {"INTDIM_TRAIN_EPS", 1e-30, 1, 0},
    [INTDIM_TRAIN_WEIGHT_DECAY] = {"INTDIM_TRAIN_WEIGHT_DECAY", 0, 1e9, 0},
    [INTDIM_TRAIN_SCHEDULE] = {"INTDIM_TRAIN_SCHEDULE", 0, 2, 1},
    [INTDIM_TRAIN_WARMUP_STEPS] = {"INTDIM_TRAIN_WARMUP_STEPS", 0, MAX_EXACT_INT, 1},
    [INTDIM_TRAIN_TOTAL_STEPS] = {"INTDIM_TRAIN_TOTAL_STEPS", 0, MAX_EXACT_INT, 1},
    [INTDIM_TRAIN_CLIP_NORM] = {"INTDIM_TRAIN_CLIP_NORM", 0, 1e30, 0},
    [INTDIM_TRAIN_LAMBDA_LR] = {"INTDIM_TRAIN_LAMBDA_LR", 0, 1e9, 0},
    [INTDIM_TRAIN_NONFINITE] = {"INTDIM_TRAIN_NONFINITE", 0, 1, 1},
    [INTDIM_TRAIN_EVAL_EVERY] = {"INTDIM_TRAIN_EVAL_EVERY", 0, MAX_EXACT_INT, 1},
    [INTDIM_TRAIN_MIN_LR_RATIO] = {"INTDIM_TRAIN_MIN_LR_RATIO", 0, 1, 0},
};

void intdim__optim_defaults(optim_settings *s)
{
    *s = (optim_settings){
        .optimizer = INTDIM_OPT_ADAM,
        .lr = 1e-3,
        .momentum = 0.0,
        .nesterov = 0,
        .beta1 = 0.9,
        .beta2 = 0.999,
        .eps = 1e-8,
        .weight_decay = 0.0,
        .schedule = INTDIM_SCHED_CONSTANT,
        .warmup_steps = 0,
        .total_steps = 0,
        .clip_norm = 0.0,
        .lambda_lr = 0.0,
        .nonfinite = INTDIM_NONFINITE_STOP,
        .eval_every = 0,
        .min_lr_ratio = 0.0,
    };
}

int intdim__optim_bounds(int param, double *lo, double *hi)
{
    if (param < 0 || param >= N_TRAIN_PARAMS)
        return intdim__fail(INTDIM_EINVAL, "unknown trainer parameter %d", param);
    if (lo)
        *lo = g_ranges[param].lo;
    if (hi)
        *hi = g_ranges[param].hi;
    return INTDIM_OK;
}

int intdim__optim_check_value(int param, double value)
{
    double lo = 0.0, hi = 0.0;
    int status = intdim__optim_bounds(param, &lo, &hi);
    if (status != INTDIM_OK)
        return status;
    /* written so that NaN fails the range test */
    if (!(value >= lo && value <= hi))
        return intdim__fail(INTDIM_EINVAL, "%s = %.16g is outside [%.16g, %.16g]",
                            g_ranges[param].name, value, lo, hi);
    if (g_ranges[param].integral && value != floor(value))
        return intdim__fail(INTDIM_EINVAL, "%s = %g must be a whole number",
                            g_ranges[param].name, value);
    return INTDIM_OK;
}

int intdim__optim_set(optim_settings *s, int param, double value)
{
    int status = intdim__optim_check_value(param, value);
    if (status != INTDIM_OK)
        return status;
    switch ((intdim_train_param)param) {
    case INTDIM_TRAIN_OPTIMIZER: s->optimizer = (int)value; break;
    case INTDIM_TRAIN_LR: s->lr = value; break;
    case INTDIM_TRAIN_MOMENTUM: s->momentum = value; break;
    case INTDIM_TRAIN_NESTEROV: s->nesterov = (int)value; break;
    case INTDIM_TRAIN_BETA1: s->beta1 = value; break;
    case INTDIM_TRAIN_BETA2: s->beta2 = value; break;
    case INTDIM_TRAIN_EPS: s->eps = value; break;
    case INTDIM_TRAIN_WEIGHT_DECAY: s->weight_decay = value; break;
    case INTDIM_TRAIN_SCHEDULE: s->schedule = (int)value; break;
    case INTDIM_TRAIN_WARMUP_STEPS: s->warmup_steps = (uint64_t)value; break;
    case INTDIM_TRAIN_TOTAL_STEPS: s->total_steps = (uint64_t)value; break;
    case INTDIM_TRAIN_CLIP_NORM: s->clip_norm = value; break;
    case INTDIM_TRAIN_LAMBDA_LR: s->lambda_lr = value; break;
    case INTDIM_TRAIN_NONFINITE: s->nonfinite = (int)value; break;
    case INTDIM_TRAIN_EVAL_EVERY: s->eval_every = (uint64_t)value; break;
    case INTDIM_TRAIN_MIN_LR_RATIO: s->min_lr_ratio = value; break;
    }
    return INTDIM_OK;
}

int intdim__optim_get(const optim_settings *s, int param, double *value)
{
    if (value == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_get: value is NULL");
    int status = intdim__optim_bounds(param, NULL, NULL);
    if (status != INTDIM_OK)
        return status;
    switch ((intdim_train_param)param) {
    case INTDIM_TRAIN_OPTIMIZER: *value = s->optimizer; break;
    case INTDIM_TRAIN_LR: *value = s->lr; break;
    case INTDIM_TRAIN_MOMENTUM: *value = s->momentum; break;
    case INTDIM_TRAIN_NESTEROV: *value = s->nesterov; break;
    case INTDIM_TRAIN_BETA1: *value = s->beta1; break;
    case INTDIM_TRAIN_BETA2: *value = s->beta2; break;
    case INTDIM_TRAIN_EPS: *value = s->eps; break;
    case INTDIM_TRAIN_WEIGHT_DECAY: *value = s->weight_decay; break;
    case INTDIM_TRAIN_SCHEDULE: *value = s->schedule; break;
    case INTDIM_TRAIN_WARMUP_STEPS: *value = (double)s->warmup_steps; break;
    case INTDIM_TRAIN_TOTAL_STEPS: *value = (double)s->total_steps; break;
    case INTDIM_TRAIN_CLIP_NORM: *value = s->clip_norm; break;
    case INTDIM_TRAIN_LAMBDA_LR: *value = s->lambda_lr; break;
    case INTDIM_TRAIN_NONFINITE: *value = s->nonfinite; break;
    case INTDIM_TRAIN_EVAL_EVERY: *value = (double)s->eval_every; break;
    case INTDIM_TRAIN_MIN_LR_RATIO: *value = s->min_lr_ratio; break;
    }
    return INTDIM_OK;
}

int intdim__optim_check(const optim_settings *s)
{
    if (s->schedule != INTDIM_SCHED_CONSTANT && s->total_steps == 0)
        return intdim__fail(INTDIM_ESTATE, "the %s schedule needs INTDIM_TRAIN_TOTAL_STEPS > 0",
                            s->schedule == INTDIM_SCHED_LINEAR ? "linear" : "cosine");
    return INTDIM_OK;
}

double intdim__optim_lr_at(const optim_settings *s, double peak, uint64_t step)
{
    if (step < s->warmup_steps)
        return peak * (double)(step + 1) / (double)s->warmup_steps;
    if (s->schedule == INTDIM_SCHED_CONSTANT)
        return peak;
    double floor_lr = s->min_lr_ratio * peak;
    if (step >= s->total_steps || s->total_steps <= s->warmup_steps)
        return floor_lr;
    double progress = (double)(step - s->warmup_steps) /
                      (double)(s->total_steps - s->warmup_steps);
    double shape = s->schedule == INTDIM_SCHED_LINEAR
                       ? 1.0 - progress
                       : 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
    return floor_lr + (peak - floor_lr) * shape;
}

double intdim__optim_norm(const float *g, size_t n)
{
    /* Eight partial sums in a fixed pattern: vectorizable, and still the same bits on every
     * run since the grouping depends only on n. */
    double part[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            part[k] += (double)g[i + k] * (double)g[i + k];
    for (; i < n; i++)
        part[0] += (double)g[i] * (double)g[i];
    double sum = ((part[0] + part[1]) + (part[2] + part[3])) +
                 ((part[4] + part[5]) + (part[6] + part[7]));
    return sqrt(sum);
}

double intdim__optim_clip(float *g, size_t n, double norm, double clip)
{
    if (!(clip > 0.0) || !(norm > clip))
        return 1.0;
    double factor = clip / norm;
    for (size_t i = 0; i < n; i++)
        g[i] = (float)((double)g[i] * factor);
    return factor;
}

int intdim__all_finite(const float *x, size_t n)
{
    /* Exponent bits all ones <=> Inf or NaN. An integer OR-reduction vectorizes, unlike a
     * floating-point one under strict IEEE semantics. */
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

static void sgd_update(const optim_settings *s, double lr, size_t begin, size_t end,
                       const float *theta, const float *m, const float *g, float *theta_out,
                       float *m_out)
{
    double mu = s->momentum, wd = s->weight_decay;
    for (size_t i = begin; i < end; i++) {
        double grad = (double)g[i] + wd * (double)theta[i];
        double direction = grad;
        if (mu > 0.0) {
            /* PyTorch's convention (no dampening): buf = mu buf + g, buf_0 = 0. */
            double buf = mu * (double)m[i] + grad;
            m_out[i] = (float)buf;
            direction = s->nesterov ? grad + mu * buf : buf;
        }
        theta_out[i] = (float)((double)theta[i] - lr * direction);
    }
}

static void adam_update(const optim_settings *s, uint64_t t, double lr, size_t begin,
                        size_t end, const float *theta, const float *m, const float *v,
                        const float *g, float *theta_out, float *m_out, float *v_out)
{
    double b1 = s->beta1, b2 = s->beta2, eps = s->eps, wd = s->weight_decay;
    /* Bias corrections 1 - beta^t in double: pow is exact enough and t is the number of
     * updates including this one. */
    double c1 = 1.0 - pow(b1, (double)t);
    double c2 = 1.0 - pow(b2, (double)t);
    /* PyTorch's arrangement: step = lr / c1, denominator sqrt(v) / sqrt(c2) + eps; the
     * per-coordinate work is then one sqrt and one division. */
    double step_size = lr / c1;
    double inv_sqrt_c2 = 1.0 / sqrt(c2);
    double decay = s->optimizer == INTDIM_OPT_ADAMW ? 1.0 - lr * wd : 1.0;
    double l2 = s->optimizer == INTDIM_OPT_ADAMW ? 0.0 : wd;
    /* Chunks through local arrays: the arithmetic loop then reads only the inputs and
     * writes only locals, so it vectorizes without alias checks, and in-place use
     * (outputs == inputs) stays correct since a chunk is read before it is written. */
    enum { CHUNK = 64 };
    float th_new[CHUNK], m_new[CHUNK], v_new[CHUNK];
    for (size_t i0 = begin; i0 < end; i0 += CHUNK) {
        size_t n = end - i0 < CHUNK ? end - i0 : CHUNK;
        for (size_t k = 0; k < n; k++) {
            double th = (double)theta[i0 + k];
            /* Adam: L2 penalty through the gradient; AdamW: shrink the weight outside the
             * moments (one of l2, 1 - decay is zero) */
            double grad = (double)g[i0 + k] + l2 * th;
            th *= decay;
            double mi = b1 * (double)m[i0 + k] + (1.0 - b1) * grad;
            double vi = b2 * (double)v[i0 + k] + (1.0 - b2) * grad * grad;
            m_new[k] = (float)mi;
            v_new[k] = (float)vi;
            th_new[k] = (float)(th - step_size * mi / (sqrt(vi) * inv_sqrt_c2 + eps));
        }
        memcpy(theta_out + i0, th_new, n * sizeof(float));
        memcpy(m_out + i0, m_new, n * sizeof(float));
        memcpy(v_out + i0, v_new, n * sizeof(float));
    }
}

void intdim__optim_update(const optim_settings *s, uint64_t t, double lr, size_t begin,
                          size_t end, const float *theta, const float *m, const float *v,
                          const float *g, float *theta_out, float *m_out, float *v_out)
{
    if (s->optimizer == INTDIM_OPT_SGD) {
        sgd_update(s, lr, begin, end, theta, m, g, theta_out, m_out);
        /* keep v_out a faithful copy so double buffering never exposes stale data */
        if (v_out != v)
            for (size_t i = begin; i < end; i++)
                v_out[i] = v[i];
        if (s->momentum <= 0.0 && m_out != m)
            for (size_t i = begin; i < end; i++)
                m_out[i] = m[i];
    } else {
        adam_update(s, t, lr, begin, end, theta, m, v, g, theta_out, m_out, v_out);
    }
}
