/* The d90 search: configuration, the plan of trials, ask/tell, the d90 rule with its
 * bootstrap, the grid and adaptive strategies, and the local runner.
 *
 * Everything the search decides is a pure function of the configuration and of the set of
 * finished trials (never of the order they were told in), so a search rebuilt from a journal,
 * resumed after a crash, or fed by MPI ranks in any order reaches the same d90. */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "optim.h"
#include "search_impl.h"

#define TWO_POW_40 1099511627776.0
#define TWO_POW_53 9007199254740992.0

enum point_status { PT_UNKNOWN = 0, PT_PASS = 1, PT_FAIL = 2 };

/* ---- creation and configuration --------------------------------------------------- */

INTDIM_API int intdim_search_create(intdim_search **out, size_t D)
{
    if (out == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_create: out is NULL");
    *out = NULL;
    if (D == 0)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_create: D is 0");
    if ((double)D > TWO_POW_40)
        return intdim__fail(INTDIM_ETOOBIG, "intdim_search_create: D = %zu exceeds 2^40", D);
    intdim_search *s = intdim__calloc(1, sizeof *s);
    double *lrs = intdim__alloc(sizeof(double));
    if (s == NULL || lrs == NULL) {
        intdim__free(s);
        intdim__free(lrs);
        return intdim__fail_nomem("a search", sizeof *s);
    }
    s->D = D;
    s->strategy = INTDIM_STRATEGY_GRID;
    s->fraction = 0.9;
    s->baseline_given = NAN;
    s->seeds = 1;
    s->d_min = 10;
    s->d_max = 0;
    s->n_d = 20;
    s->kind = INTDIM_PROJ_FASTFOOD;
    s->said = 0;
    s->base_seed = 0;
    s->bootstrap = 100;
    s->steps = 1000;
    s->parallel = 1;
    lrs[0] = 1e-3;
    s->lrs = lrs;
    s->n_lrs = 1;
    s->journal_fd = -1;
    *out = s;
    return INTDIM_OK;
}

static void free_search(intdim_search *s)
{
    intdim__journal_close(s);
    intdim__free(s->d_list);
    intdim__free(s->lrs);
    intdim__free(s->groups);
    intdim__free(s->grid);
    intdim__free(s->trials);
    intdim__free(s);
}

/* From a callback of intdim_search_run the search is still in use: it is freed when the run
 * returns (the run stops right after that callback). */
INTDIM_API void intdim_search_destroy(intdim_search *s)
{
    if (s == NULL)
        return;
    if (s->busy) {
        s->destroy_requested = 1;
        return;
    }
    free_search(s);
}

int intdim__search_refuse_if_busy(const intdim_search *s, const char *fn)
{
    if (s->busy)
        return intdim__fail(INTDIM_ESTATE, "%s: called from a callback of this search's own "
                                           "intdim_search_run (which is not finished)", fn);
    return INTDIM_OK;
}

struct param_range {
    const char *name;
    double lo, hi;
    int integer;
};

static const struct param_range g_ranges[] = {
    [INTDIM_SEARCH_STRATEGY] = {"INTDIM_SEARCH_STRATEGY", 0, 1, 1},
    [INTDIM_SEARCH_FRACTION] = {"INTDIM_SEARCH_FRACTION", 0, 1, 0},
    [INTDIM_SEARCH_BASELINE] = {"INTDIM_SEARCH_BASELINE", -1.7976931348623157e308,
                                1.7976931348623157e308, 0},
    [INTDIM_SEARCH_SEEDS] = {"INTDIM_SEARCH_SEEDS", 1, 10000, 1},
    [INTDIM_SEARCH_D_MIN] = {"INTDIM_SEARCH_D_MIN", 1, TWO_POW_40, 1},
    [INTDIM_SEARCH_D_MAX] = {"INTDIM_SEARCH_D_MAX", 0, TWO_POW_40, 1},
    [INTDIM_SEARCH_N_D] = {"INTDIM_SEARCH_N_D", 1, 100000, 1},
    /* IDENTITY is not a subspace kind: the search runs it itself, for the baseline */
    [INTDIM_SEARCH_KIND] = {"INTDIM_SEARCH_KIND", INTDIM_PROJ_DENSE, INTDIM_PROJ_FASTFOOD, 1},
    [INTDIM_SEARCH_SAID] = {"INTDIM_SEARCH_SAID", 0, 1, 1},
    [INTDIM_SEARCH_BASE_SEED] = {"INTDIM_SEARCH_BASE_SEED", 0, TWO_POW_53, 1},
    [INTDIM_SEARCH_BOOTSTRAP] = {"INTDIM_SEARCH_BOOTSTRAP", 0, 1000000, 1},
    [INTDIM_SEARCH_STEPS] = {"INTDIM_SEARCH_STEPS", 0, TWO_POW_53, 1},
    [INTDIM_SEARCH_PARALLEL] = {"INTDIM_SEARCH_PARALLEL", 1, 1048576, 1},
    [INTDIM_SEARCH_FASTFOOD_BLOCK] = {"INTDIM_SEARCH_FASTFOOD_BLOCK", 0, 4294967296.0, 1},
};
#define N_SEARCH_PARAMS (sizeof g_ranges / sizeof g_ranges[0])

INTDIM_API int intdim_search_param_bounds(int param, double *lo, double *hi)
{
    if (param < 0 || (size_t)param >= N_SEARCH_PARAMS)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_param_bounds: unknown parameter %d",
                            param);
    if (lo != NULL)
        *lo = g_ranges[param].lo;
    if (hi != NULL)
        *hi = g_ranges[param].hi;
    return INTDIM_OK;
}

/* Parameters that only change how the search is run or reported, never which trials
 * exist: they may change after the plan is frozen (e.g. a resumed run with more ranks). */
static int param_is_runtime(int param)
{
    return param == INTDIM_SEARCH_PARALLEL || param == INTDIM_SEARCH_BOOTSTRAP;
}

INTDIM_API int intdim_search_set(intdim_search *s, int param, double value)
{
    if (s == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_set: search is NULL");
    if (s->busy)
        return intdim__search_refuse_if_busy(s, "intdim_search_set");
    if (param < 0 || (size_t)param >= N_SEARCH_PARAMS)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_set: unknown parameter %d", param);
    if (param == INTDIM_SEARCH_BOOTSTRAP && s->journal_fd >= 0)
        return intdim__fail(INTDIM_ESTATE, "intdim_search_set: INTDIM_SEARCH_BOOTSTRAP is in the "
                                           "open journal's header; set it before opening the "
                                           "journal");
    const struct param_range *r = &g_ranges[param];
    if (s->frozen && !param_is_runtime(param))
        return intdim__fail(INTDIM_ESTATE, "intdim_search_set: %s cannot change after the first "
                                           "ask or open_journal", r->name);
    int nan_ok = param == INTDIM_SEARCH_BASELINE;
    if (isnan(value) ? !nan_ok : (value < r->lo || value > r->hi))
        return intdim__fail(INTDIM_EINVAL,
                            "intdim_search_set: %s = %.16g is outside [%.16g, %.16g]%s", r->name,
                            value, r->lo, r->hi,
                            param == INTDIM_SEARCH_KIND && value == INTDIM_PROJ_IDENTITY
                                ? " (IDENTITY is the full-training baseline, which the search "
                                  "runs itself)"
                                : "");
    if (r->integer && value != floor(value))
        return intdim__fail(INTDIM_EINVAL, "intdim_search_set: %s = %g must be a whole number",
                            r->name, value);
    if (param == INTDIM_SEARCH_FASTFOOD_BLOCK && value != 0 &&
        (value < 2 || !intdim__is_pow2((uint64_t)value)))
        return intdim__fail(INTDIM_EINVAL, "intdim_search_set: INTDIM_SEARCH_FASTFOOD_BLOCK = "
                                           "%g is not 0 or a power of two >= 2", value);
    switch (param) {
    case INTDIM_SEARCH_STRATEGY: s->strategy = (int)value; break;
    case INTDIM_SEARCH_FRACTION: s->fraction = value; break;
    case INTDIM_SEARCH_BASELINE: s->baseline_given = value; break;
    case INTDIM_SEARCH_SEEDS: s->seeds = (size_t)value; break;
    case INTDIM_SEARCH_D_MIN: s->d_min = (size_t)value; break;
    case INTDIM_SEARCH_D_MAX: s->d_max = (size_t)value; break;
    case INTDIM_SEARCH_N_D: s->n_d = (size_t)value; break;
    case INTDIM_SEARCH_KIND: s->kind = (int)value; break;
    case INTDIM_SEARCH_SAID: s->said = (int)value; break;
    case INTDIM_SEARCH_BASE_SEED: s->base_seed = (uint64_t)value; break;
    case INTDIM_SEARCH_BOOTSTRAP: s->bootstrap = (size_t)value; break;
    case INTDIM_SEARCH_STEPS: s->steps = (uint64_t)value; break;
    case INTDIM_SEARCH_PARALLEL: s->parallel = (size_t)value; break;
    case INTDIM_SEARCH_FASTFOOD_BLOCK: s->ff_block = (size_t)value; break;
    default: break;
    }
    return INTDIM_OK;
}

static size_t effective_d_max(const intdim_search *s)
{
    if (s->d_max != 0)
        return s->d_max;
    return s->D < 10000 ? s->D : 10000;
}

INTDIM_API int intdim_search_get(const intdim_search *s, int param, double *value)
{
    if (s == NULL || value == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_get: search or value is NULL");
    switch (param) {
    case INTDIM_SEARCH_STRATEGY: *value = s->strategy; break;
    case INTDIM_SEARCH_FRACTION: *value = s->fraction; break;
    case INTDIM_SEARCH_BASELINE: *value = s->baseline_given; break;
    case INTDIM_SEARCH_SEEDS: *value = (double)s->seeds; break;
    case INTDIM_SEARCH_D_MIN: *value = (double)s->d_min; break;
    case INTDIM_SEARCH_D_MAX: *value = (double)effective_d_max(s); break;
    case INTDIM_SEARCH_N_D: *value = (double)s->n_d; break;
    case INTDIM_SEARCH_KIND: *value = s->kind; break;
    case INTDIM_SEARCH_SAID: *value = s->said; break;
    case INTDIM_SEARCH_BASE_SEED: *value = (double)s->base_seed; break;
    case INTDIM_SEARCH_BOOTSTRAP: *value = (double)s->bootstrap; break;
    case INTDIM_SEARCH_STEPS: *value = (double)s->steps; break;
    case INTDIM_SEARCH_PARALLEL: *value = (double)s->parallel; break;
    case INTDIM_SEARCH_FASTFOOD_BLOCK: *value = (double)s->ff_block; break;
    default:
        return intdim__fail(INTDIM_EINVAL, "intdim_search_get: unknown parameter %d", param);
    }
    return INTDIM_OK;
}

static int compare_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

INTDIM_API int intdim_search_set_d_list(intdim_search *s, const size_t *ds, size_t n)
{
    if (s == NULL || ds == NULL || n == 0)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_set_d_list: search or list is NULL, "
                                           "or n is 0");
    if (s->frozen)
        return intdim__fail(INTDIM_ESTATE, "intdim_search_set_d_list: the plan is frozen");
    if (n > SEARCH_MAX_D_LIST) /* a journal could not be read back */
        return intdim__fail(INTDIM_EINVAL, "intdim_search_set_d_list: %zu values (max %u)", n,
                            SEARCH_MAX_D_LIST);
    for (size_t i = 0; i < n; i++)
        if (ds[i] == 0 || ds[i] > s->D)
            return intdim__fail(INTDIM_EINVAL, "intdim_search_set_d_list: d[%zu] = %zu outside "
                                               "[1, D = %zu]", i, ds[i], s->D);
    size_t *copy = intdim__alloc(intdim__mul_size(n, sizeof *copy));
    if (copy == NULL)
        return intdim__fail_nomem("the d list", n * sizeof *copy);
    memcpy(copy, ds, n * sizeof *copy);
    qsort(copy, n, sizeof *copy, compare_size);
    size_t unique = 0;
    for (size_t i = 0; i < n; i++)
        if (unique == 0 || copy[unique - 1] != copy[i])
            copy[unique++] = copy[i];
    intdim__free(s->d_list);
    s->d_list = copy;
    s->n_d_list = unique;
    return INTDIM_OK;
}

INTDIM_API int intdim_search_set_lrs(intdim_search *s, const double *lrs, size_t n)
{
    if (s == NULL || lrs == NULL || n == 0)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_set_lrs: search or list is NULL, "
                                           "or n is 0");
    if (s->frozen)
        return intdim__fail(INTDIM_ESTATE, "intdim_search_set_lrs: the plan is frozen");
    if (n > 1000)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_set_lrs: %zu learning rates (max 1000)",
                            n);
    for (size_t i = 0; i < n; i++) {
        if (!(lrs[i] > 0) || !isfinite(lrs[i]))
            return intdim__fail(INTDIM_EINVAL, "intdim_search_set_lrs: lr[%zu] = %g is not a "
                                               "positive finite number", i, lrs[i]);
        /* what every trial's trainer would refuse at its first step */
        if (intdim__optim_check_value(INTDIM_TRAIN_LR, lrs[i]) != INTDIM_OK)
            return intdim__fail_in("intdim_search_set_lrs", INTDIM_EINVAL);
        for (size_t j = 0; j < i; j++)
            if (lrs[j] == lrs[i])
                return intdim__fail(INTDIM_EINVAL, "intdim_search_set_lrs: lr[%zu] = %g repeats "
                                                   "lr[%zu]", i, lrs[i], j);
    }
    double *copy = intdim__alloc(n * sizeof *copy);
    if (copy == NULL)
        return intdim__fail_nomem("the learning rates", n * sizeof *copy);
    memcpy(copy, lrs, n * sizeof *copy);
    intdim__free(s->lrs);
    s->lrs = copy;
    s->n_lrs = n;
    return INTDIM_OK;
}

/* A label is one word of the journal's config line: letters, digits and a few marks, never a
 * space, a quote or a control character. */
static int label_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("._+:=,/-", c) != NULL;
}

INTDIM_API int intdim_search_set_label(intdim_search *s, const char *label)
{
    if (s == NULL || label == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_set_label: search or label is NULL");
    if (s->frozen)
        return intdim__fail(INTDIM_ESTATE, "intdim_search_set_label: the plan is frozen");
    size_t n = strlen(label);
    if (n > SEARCH_MAX_LABEL)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_set_label: %zu characters (max %d)", n,
                            SEARCH_MAX_LABEL);
    for (size_t i = 0; i < n; i++)
        if (label[i] == '\0' || !label_char_ok(label[i]))
            return intdim__fail(INTDIM_EINVAL, "intdim_search_set_label: character %zu (byte "
                                               "0x%02x) is not one of [A-Za-z0-9._+:=,/-]", i,
                                (unsigned)(unsigned char)label[i]);
    memcpy(s->label, label, n + 1);
    return INTDIM_OK;
}

INTDIM_API const char *intdim_search_label(const intdim_search *s)
{
    return s != NULL ? s->label : "";
}

INTDIM_API int intdim_search_set_groups(intdim_search *s, const size_t *sizes, size_t n_groups)
{
    if (s == NULL || sizes == NULL || n_groups == 0)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_set_groups: search or sizes is NULL, "
                                           "or n_groups is 0");
    if (s->frozen)
        return intdim__fail(INTDIM_ESTATE, "intdim_search_set_groups: the plan is frozen");
    if (n_groups > s->D)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_set_groups: %zu groups for D = %zu",
                            n_groups, s->D);
    size_t total = 0;
    for (size_t i = 0; i < n_groups; i++) {
        if (sizes[i] == 0 || sizes[i] > s->D - total)
            return intdim__fail(INTDIM_EINVAL, "intdim_search_set_groups: group %zu has size %zu "
                                               "(sizes must be >= 1 and sum to D = %zu)",
                                i, sizes[i], s->D);
        total += sizes[i];
    }
    if (total != s->D)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_set_groups: sizes sum to %zu, not "
                                           "D = %zu", total, s->D);
    size_t *copy = intdim__alloc(n_groups * sizeof *copy);
    if (copy == NULL)
        return intdim__fail_nomem("the group sizes", n_groups * sizeof *copy);
    memcpy(copy, sizes, n_groups * sizeof *copy);
    intdim__free(s->groups);
    s->groups = copy;
    s->n_groups = n_groups;
    return INTDIM_OK;
}

INTDIM_API int intdim_search_set_train_param(intdim_search *s, int train_param, double value)
{
    if (s == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_set_train_param: search is NULL");
    if (s->frozen)
        return intdim__fail(INTDIM_ESTATE, "intdim_search_set_train_param: the plan is frozen");
    if (train_param < 0 || train_param >= SEARCH_N_TRAIN_PARAMS)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_set_train_param: unknown trainer "
                                           "parameter %d", train_param);
    if (train_param == INTDIM_TRAIN_LR)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_set_train_param: the learning rate is "
                                           "searched: use intdim_search_set_lrs");
    /* The trainer's own range check, now: a bad value would otherwise be written into a
     * journal's header and fail only when the first trial applies it. */
    if (intdim__optim_check_value(train_param, value) != INTDIM_OK)
        return intdim__fail_in("intdim_search_set_train_param", INTDIM_EINVAL);
    s->train_value[train_param] = value;
    s->train_set[train_param] = 1;
    return INTDIM_OK;
}

/* ---- the plan --------------------------------------------------------------------- */

/* Log-spaced integers from lo to hi, rounded and deduplicated, into grid (room for n). */
static size_t log_grid(size_t lo, size_t hi, size_t n, size_t *grid)
{
    size_t count = 0;
    double llo = log((double)lo), lhi = log((double)hi);
    for (size_t k = 0; k < n; k++) {
        double t = n == 1 ? 0.0 : (double)k / (double)(n - 1);
        double v = k + 1 == n ? (double)hi : floor(exp(llo + (lhi - llo) * t) + 0.5);
        size_t d = v < (double)lo ? lo : v > (double)hi ? hi : (size_t)v;
        if (count == 0 || grid[count - 1] < d)
            grid[count++] = d;
    }
    return count;
}

/* Seed of a trial: a function of (base seed, d, seed index) only, so the grid and the
 * adaptive strategy train the very same models at a point, and every learning rate at a
 * point sees the same projections (common random numbers make lrs comparable). */
static uint64_t trial_seed(const intdim_search *s, size_t point, size_t d, size_t seed_index)
{
    uint64_t key = point == 0 ? (UINT64_C(1) << 63) | seed_index
                              : ((uint64_t)d << 20) | seed_index;
    return intdim__rng_u64(s->base_seed, INTDIM_STREAM_SEARCH, key);
}

static int check_plan(const intdim_search *s)
{
    if (s->said) {
        if (s->n_groups == 0)
            return intdim__fail(INTDIM_EINVAL, "search: SAID needs groups "
                                               "(intdim_search_set_groups)");
        if (s->grid[0] <= s->n_groups)
            return intdim__fail(INTDIM_EINVAL, "search: SAID needs every d > n_groups = %zu, but "
                                               "the grid starts at d = %zu", s->n_groups,
                                s->grid[0]);
    }
    return INTDIM_OK;
}

static void fill_trials(intdim_search *s)
{
    size_t per_point = s->n_lrs * s->seeds;
    for (size_t id = 0; id < s->n_trials; id++) {
        size_t point = id / per_point;
        size_t lr_index = id % per_point / s->seeds;
        size_t seed_index = id % s->seeds;
        search_trial *t = &s->trials[id];
        t->d = point == 0 ? s->D : s->grid[point - 1];
        t->kind = point == 0 ? INTDIM_PROJ_IDENTITY : s->kind;
        t->said = point == 0 ? 0 : s->said;
        t->lr = s->lrs[lr_index];
        t->seed = trial_seed(s, point, t->d, seed_index);
        t->state = TRIAL_NEW;
        t->status = INTDIM_OK;
        t->train_metric = NAN;
        t->eval_metric = NAN;
    }
}

int intdim__search_freeze(intdim_search *s)
{
    if (s->frozen)
        return INTDIM_OK;
    size_t *grid;
    size_t n_grid;
    if (s->d_list != NULL) {
        grid = intdim__alloc(s->n_d_list * sizeof *grid);
        if (grid == NULL)
            return intdim__fail_nomem("the d grid", s->n_d_list * sizeof *grid);
        memcpy(grid, s->d_list, s->n_d_list * sizeof *grid);
        n_grid = s->n_d_list;
    } else {
        size_t hi = effective_d_max(s);
        if (hi > s->D || s->d_min > hi)
            return intdim__fail(INTDIM_EINVAL, "search: d grid [%zu, %zu] is empty or exceeds "
                                               "D = %zu", s->d_min, hi, s->D);
        grid = intdim__alloc(intdim__mul_size(s->n_d, sizeof *grid));
        if (grid == NULL)
            return intdim__fail_nomem("the d grid", s->n_d * sizeof *grid);
        n_grid = log_grid(s->d_min, hi, s->n_d, grid);
    }
    s->grid = grid;
    s->n_grid = n_grid;
    int rc = check_plan(s);
    size_t per_point = s->n_lrs * s->seeds;
    size_t n_trials = intdim__mul_size(n_grid + 1, per_point);
    search_trial *trials = NULL;
    if (rc == INTDIM_OK) {
        trials = intdim__calloc(n_trials, sizeof *trials);
        if (trials == NULL)
            rc = intdim__fail_nomem("the trial table", intdim__mul_size(n_trials, sizeof *trials));
    }
    if (rc != INTDIM_OK) {
        intdim__free(grid);
        s->grid = NULL;
        s->n_grid = 0;
        return rc;
    }
    s->trials = trials;
    s->n_trials = n_trials;
    fill_trials(s);
    s->frozen = 1;
    return INTDIM_OK;
}

void intdim__search_unfreeze(intdim_search *s)
{
    intdim__free(s->grid);
    intdim__free(s->trials);
    s->grid = NULL;
    s->n_grid = 0;
    s->trials = NULL;
    s->n_trials = 0;
    s->n_done = 0;
    s->n_out = 0;
    s->cursor = 0;
    s->frozen = 0;
}

size_t intdim__search_n_points(const intdim_search *s)
{
    return s->n_grid + 1;
}

static size_t trial_id(const intdim_search *s, size_t point, size_t lr_index, size_t seed_index)
{
    return (point * s->n_lrs + lr_index) * s->seeds + seed_index;
}

/* ---- statistics over seeds -------------------------------------------------------- */

typedef struct lr_stat {
    size_t n;     /* finished seeds used */
    int complete; /* every seed finished */
    double mean;  /* mean eval metric over them; -inf if one failed */
    double sd;    /* sample standard deviation (0 for one seed or a failure) */
} lr_stat;

/* The k-th seed's trial of (point, lr): seed index resample[k] when resample is not NULL. */
static const search_trial *seed_trial(const intdim_search *s, size_t point, size_t lr_index,
                                      const size_t *resample, size_t k)
{
    size_t seed_index = resample != NULL ? resample[k] : k;
    return &s->trials[trial_id(s, point, lr_index, seed_index)];
}

/* Mean and sample standard deviation of the finished seeds' finite metrics when the
 * plain sums overflow (metrics near DBL_MAX are finite and accepted): the mean, if it
 * overflowed, as a sum of x / n; the deviations halved and scaled by their largest. The
 * sd is +inf only when it really exceeds DBL_MAX. Only reached when the plain sums
 * overflowed, so every ordinary result keeps its bits. */
static void stats_without_overflow(const intdim_search *s, size_t point, size_t lr_index,
                                   const size_t *resample, lr_stat *st)
{
    double mean = 0.0, largest = 0.0, ss = 0.0;
    if (isfinite(st->mean)) {
        mean = st->mean;
    } else {
        for (size_t k = 0; k < s->seeds; k++) {
            const search_trial *t = seed_trial(s, point, lr_index, resample, k);
            if (t->state == TRIAL_DONE)
                mean += t->eval_metric / (double)st->n;
        }
        st->mean = mean;
    }
    if (st->n < 2)
        return;
    for (size_t k = 0; k < s->seeds; k++) {
        const search_trial *t = seed_trial(s, point, lr_index, resample, k);
        if (t->state == TRIAL_DONE)
            largest = fmax(largest, fabs(t->eval_metric / 2 - mean / 2));
    }
    if (largest == 0.0) {
        st->sd = 0.0;
        return;
    }
    for (size_t k = 0; k < s->seeds; k++) {
        const search_trial *t = seed_trial(s, point, lr_index, resample, k);
        if (t->state == TRIAL_DONE) {
            double u = (t->eval_metric / 2 - mean / 2) / largest;
            ss += u * u;
        }
    }
    st->sd = 2 * (largest * sqrt(ss / (double)(st->n - 1))); /* 2 * largest may overflow */
}

/* Mean over the seeds of (point, lr). resample, if not NULL, lists `seeds` seed indices
 * drawn with replacement; the statistic then needs every seed finished. Sums run in seed
 * order so the result is the same bits whatever order trials finished in. */
static lr_stat lr_stats(const intdim_search *s, size_t point, size_t lr_index,
                        const size_t *resample)
{
    lr_stat st = {0, 1, NAN, 0.0};
    double sum = 0.0;
    int failed = 0;
    for (size_t k = 0; k < s->seeds; k++) {
        const search_trial *t = &s->trials[trial_id(s, point, lr_index, k)];
        if (t->state != TRIAL_DONE)
            st.complete = 0;
    }
    if (resample != NULL && !st.complete)
        return st;
    for (size_t k = 0; k < s->seeds; k++) {
        const search_trial *t = seed_trial(s, point, lr_index, resample, k);
        if (t->state != TRIAL_DONE)
            continue;
        if (t->status != INTDIM_OK || !isfinite(t->eval_metric))
            failed = 1;
        else
            sum += t->eval_metric;
        st.n++;
    }
    if (st.n == 0)
        return st;
    if (failed) {
        st.mean = -INFINITY;
        return st;
    }
    st.mean = sum / (double)st.n;
    if (st.n > 1) {
        double ss = 0.0;
        for (size_t k = 0; k < s->seeds; k++) {
            const search_trial *t = seed_trial(s, point, lr_index, resample, k);
            if (t->state == TRIAL_DONE)
                ss += (t->eval_metric - st.mean) * (t->eval_metric - st.mean);
        }
        st.sd = sqrt(ss / (double)(st.n - 1));
    }
    if (!isfinite(st.mean) || !isfinite(st.sd))
        stats_without_overflow(s, point, lr_index, resample, &st);
    return st;
}

/* Best learning rate at a point among those with every seed finished (ties: the first
 * listed). Returns 0 if none is complete. */
static int best_complete(const intdim_search *s, size_t point, const size_t *resample,
                         size_t *best_lr, lr_stat *best)
{
    int found = 0;
    for (size_t j = 0; j < s->n_lrs; j++) {
        lr_stat st = lr_stats(s, point, j, resample);
        if (!st.complete)
            continue;
        if (!found || st.mean > best->mean) {
            *best = st;
            *best_lr = j;
            found = 1;
        }
    }
    return found;
}

/* Baseline: the given value, or the best lr's mean over the IDENTITY trials once all of
 * them finished. Returns 0 while unknown. */
static int baseline_value(const intdim_search *s, const size_t *resample, double *baseline)
{
    if (!isnan(s->baseline_given)) {
        *baseline = s->baseline_given;
        return 1;
    }
    for (size_t j = 0; j < s->n_lrs; j++)
        if (!lr_stats(s, 0, j, NULL).complete)
            return 0;
    size_t best_lr;
    lr_stat best;
    if (!best_complete(s, 0, resample, &best_lr, &best))
        return 0;
    *baseline = best.mean;
    return 1;
}

/* The d90 rule (REFERENCE.md): ascending d, the first point whose best-lr mean over seeds
 * is strictly greater than fraction x baseline. Returns the grid index, or n_grid for
 * "not reached". */
static size_t rule_index(const intdim_search *s, double threshold, const size_t *resamples)
{
    for (size_t p = 1; p <= s->n_grid; p++) {
        size_t best_lr;
        lr_stat best;
        const size_t *resample = resamples != NULL ? resamples + p * s->seeds : NULL;
        if (best_complete(s, p, resample, &best_lr, &best) && best.mean > threshold)
            return p - 1;
    }
    return s->n_grid;
}

/* ---- strategies ------------------------------------------------------------------- */

static int lr_fails_at(const intdim_search *s, size_t point, size_t j, double threshold)
{
    lr_stat st = lr_stats(s, point, j, NULL);
    return st.complete && !(st.mean > threshold);
}

/* Under the monotone assumption (a learning rate that fails at some d fails at every
 * smaller d), lr j is excluded at `point` if it failed there or at any larger point. */
static int lr_excluded(const intdim_search *s, size_t point, size_t j, double threshold)
{
    for (size_t q = point; q <= s->n_grid; q++)
        if (lr_fails_at(s, q, j, threshold))
            return 1;
    return 0;
}

static int point_status(const intdim_search *s, size_t point, double threshold)
{
    int all_excluded = 1;
    for (size_t j = 0; j < s->n_lrs; j++) {
        lr_stat st = lr_stats(s, point, j, NULL);
        if (st.complete && st.mean > threshold)
            return PT_PASS;
        if (!lr_excluded(s, point, j, threshold))
            all_excluded = 0;
    }
    return all_excluded ? PT_FAIL : PT_UNKNOWN;
}

static void hand_out(intdim_search *s, size_t id)
{
    s->trials[id].state = TRIAL_OUT;
    s->n_out++;
}

/* Grid: every trial, baseline first, then ascending d, lr, seed. */
static int next_grid_trial(intdim_search *s, size_t *id)
{
    size_t first = isnan(s->baseline_given) ? 0 : s->n_lrs * s->seeds;
    if (s->cursor < first)
        s->cursor = first;
    while (s->cursor < s->n_trials && s->trials[s->cursor].state != TRIAL_NEW)
        s->cursor++;
    if (s->cursor == s->n_trials)
        return s->n_out > 0 ? INTDIM_ASK_WAIT : INTDIM_ASK_DONE;
    if (s->n_out >= s->parallel)
        return INTDIM_ASK_WAIT;
    *id = s->cursor;
    return INTDIM_ASK_TRIAL;
}

/* First NEW baseline trial, if any. */
static int next_baseline_trial(const intdim_search *s, size_t *id)
{
    for (size_t i = 0; i < s->n_lrs * s->seeds; i++)
        if (s->trials[i].state == TRIAL_NEW) {
            *id = i;
            return 1;
        }
    return 0;
}

/* Order of learning rates to try at a point: by the mean at the nearest larger point where
 * the lr was measured (the lr most likely to pass goes first, and one pass decides the
 * point); lrs measured only at the baseline come after, by the baseline's means; then as
 * listed (ties keep the listed order). */
static void lr_preference(const intdim_search *s, size_t point, size_t j, int *tier,
                          double *value)
{
    for (size_t q = point + 1; q <= s->n_grid; q++) {
        lr_stat st = lr_stats(s, q, j, NULL);
        if (st.complete) {
            *tier = 2;
            *value = st.mean;
            return;
        }
    }
    lr_stat st = lr_stats(s, 0, j, NULL);
    *tier = st.complete ? 1 : 0;
    *value = st.complete ? st.mean : 0.0;
}

/* Next trial at the probed point: candidate lrs in preference order, all seeds of one lr
 * before the next (a point needs one lr's full mean to pass). */
static int next_trial_at_point(const intdim_search *s, size_t point, double threshold,
                               size_t *id)
{
    size_t n = s->n_lrs;
    unsigned char tried[1000] = {0};
    for (size_t round = 0; round < n; round++) {
        size_t pick = n;
        int pick_tier = 0;
        double pick_value = 0;
        for (size_t j = 0; j < n; j++) {
            if (tried[j] || lr_excluded(s, point, j, threshold))
                continue;
            int tier;
            double value;
            lr_preference(s, point, j, &tier, &value);
            if (pick == n || tier > pick_tier || (tier == pick_tier && value > pick_value)) {
                pick = j;
                pick_tier = tier;
                pick_value = value;
            }
        }
        if (pick == n)
            return 0;
        tried[pick] = 1;
        for (size_t k = 0; k < s->seeds; k++) {
            size_t i = trial_id(s, point, pick, k);
            if (s->trials[i].state == TRIAL_NEW) {
                *id = i;
                return 1;
            }
        }
    }
    return 0;
}

/* Bracket [lo, hi] of grid indices: lo the largest known to fail (-1 if none), hi the
 * smallest known to pass (n_grid if none). Returns 1 once the answer is decided. */
static int adaptive_bracket(const intdim_search *s, double threshold, long *lo, long *hi)
{
    long n = (long)s->n_grid;
    *lo = -1;
    *hi = n;
    for (long i = 0; i < n; i++) {
        int st = point_status(s, (size_t)i + 1, threshold);
        if (st == PT_FAIL)
            *lo = i;
        else if (st == PT_PASS && *hi == n)
            *hi = i;
    }
    return *hi <= *lo + 1;
}

/* Adaptive: measure the baseline, then the largest d (one point answers "not reached"),
 * then bisect the bracket in grid index (= log d on a log grid). A point passes as soon as
 * one learning rate's mean passes; learning rates that failed at a larger d are never tried
 * at a smaller one. Both shortcuts are exact under the monotone assumption the grid rule
 * itself relies on, so the answer is the grid's point. */
static int next_adaptive_trial(intdim_search *s, size_t *id)
{
    double baseline;
    if (!baseline_value(s, NULL, &baseline)) {
        if (next_baseline_trial(s, id))
            return s->n_out >= s->parallel ? INTDIM_ASK_WAIT : INTDIM_ASK_TRIAL;
        return INTDIM_ASK_WAIT;
    }
    double threshold = s->fraction * baseline;
    long lo, hi;
    if (!isfinite(baseline) || adaptive_bracket(s, threshold, &lo, &hi))
        return s->n_out > 0 ? INTDIM_ASK_WAIT : INTDIM_ASK_DONE;
    long n = (long)s->n_grid;
    long probe = hi == n ? n - 1 : lo + (hi - lo) / 2;
    if (s->n_out >= s->parallel)
        return INTDIM_ASK_WAIT;
    if (next_trial_at_point(s, (size_t)probe + 1, threshold, id))
        return INTDIM_ASK_TRIAL;
    if (s->n_out > 0)
        return INTDIM_ASK_WAIT;
    return intdim__fail(INTDIM_ESTATE, "search: adaptive strategy found nothing to run at "
                                       "d = %zu (internal inconsistency)", s->grid[probe]);
}

/* Does the search need no more trials (with all of them told, ask would say DONE)? */
INTDIM_API int intdim_search_complete(const intdim_search *s)
{
    if (s == NULL || !s->frozen)
        return 0;
    if (s->strategy == INTDIM_STRATEGY_GRID) {
        size_t first = isnan(s->baseline_given) ? 0 : s->n_lrs * s->seeds;
        for (size_t i = first; i < s->n_trials; i++)
            if (s->trials[i].state != TRIAL_DONE)
                return 0;
        return 1;
    }
    double baseline;
    long lo, hi;
    if (!baseline_value(s, NULL, &baseline))
        return 0;
    return !isfinite(baseline) || adaptive_bracket(s, s->fraction * baseline, &lo, &hi);
}

/* ---- ask / tell ------------------------------------------------------------------- */

INTDIM_API int intdim_search_ask(intdim_search *s, int *what, uint64_t *trial_id_out, size_t *d,
                                 int *kind, int *said, double *lr, uint64_t *seed)
{
    if (s == NULL || what == NULL || trial_id_out == NULL || d == NULL || kind == NULL ||
        said == NULL || lr == NULL || seed == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_ask: a pointer argument is NULL");
    int rc = intdim__search_refuse_if_busy(s, "intdim_search_ask");
    if (rc == INTDIM_OK)
        rc = intdim__search_freeze(s);
    if (rc != INTDIM_OK)
        return rc;
    size_t id = 0;
    int next = s->strategy == INTDIM_STRATEGY_GRID ? next_grid_trial(s, &id)
                                                   : next_adaptive_trial(s, &id);
    if (next < 0)
        return next;
    *what = next;
    if (next != INTDIM_ASK_TRIAL)
        return INTDIM_OK;
    hand_out(s, id);
    const search_trial *t = &s->trials[id];
    *trial_id_out = id;
    *d = t->d;
    *kind = t->kind;
    *said = t->said;
    *lr = t->lr;
    *seed = t->seed;
    return INTDIM_OK;
}

void intdim__search_mark_done(intdim_search *s, uint64_t id, double train_metric,
                              double eval_metric, uint64_t steps, double seconds, int status)
{
    search_trial *t = &s->trials[id];
    if (t->state == TRIAL_OUT)
        s->n_out--;
    if (t->state != TRIAL_DONE)
        s->n_done++;
    t->state = TRIAL_DONE;
    t->status = status;
    t->train_metric = train_metric;
    t->eval_metric = status == INTDIM_OK ? eval_metric : -INFINITY;
    t->steps = steps;
    t->seconds = seconds;
}

static int valid_trial_status(int status)
{
    return status <= INTDIM_OK && status >= INTDIM_ENOTFOUND;
}

INTDIM_API int intdim_search_tell(intdim_search *s, uint64_t id, double train_metric,
                                  double eval_metric, uint64_t steps, double seconds,
                                  int trial_status)
{
    if (s == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_tell: search is NULL");
    if (s->busy)
        return intdim__search_refuse_if_busy(s, "intdim_search_tell");
    if (!s->frozen)
        return intdim__fail(INTDIM_ENOTFOUND, "intdim_search_tell: unknown trial id %llu: no "
                                              "plan yet (it is made at the first "
                                              "intdim_search_ask or intdim_search_open_journal)",
                            (unsigned long long)id);
    if (id >= s->n_trials)
        return intdim__fail(INTDIM_ENOTFOUND, "intdim_search_tell: unknown trial id %llu (the "
                                              "plan has %zu trials)",
                            (unsigned long long)id, s->n_trials);
    search_trial *t = &s->trials[id];
    if (t->state == TRIAL_DONE)
        return intdim__fail(INTDIM_ESTATE, "intdim_search_tell: trial %llu was already told",
                            (unsigned long long)id);
    if (t->state == TRIAL_NEW)
        return intdim__fail(INTDIM_ESTATE, "intdim_search_tell: trial %llu was never asked",
                            (unsigned long long)id);
    if (!valid_trial_status(trial_status))
        return intdim__fail(INTDIM_EINVAL, "intdim_search_tell: trial status %d is not an "
                                           "intdim_status", trial_status);
    if (trial_status == INTDIM_OK && !isfinite(eval_metric))
        return intdim__fail(INTDIM_EINVAL, "intdim_search_tell: trial %llu succeeded but its "
                                           "eval metric is %g (tell INTDIM_ENONFINITE instead)",
                            (unsigned long long)id, eval_metric);
    if (!(seconds >= 0) || !isfinite(seconds))
        return intdim__fail(INTDIM_EINVAL, "intdim_search_tell: seconds = %g", seconds);
    if (trial_status != INTDIM_OK)
        eval_metric = -INFINITY;
    /* Journal first: a trial that could not be made durable stays outstanding and may be
     * told again, so memory never gets ahead of the file. */
    t->status = trial_status;
    t->train_metric = train_metric;
    t->eval_metric = eval_metric;
    t->steps = steps;
    t->seconds = seconds;
    if (s->journal_fd >= 0) {
        int rc = intdim__journal_append(s, id);
        if (rc != INTDIM_OK)
            return rc;
    }
    intdim__search_mark_done(s, id, train_metric, eval_metric, steps, seconds, trial_status);
    return INTDIM_OK;
}

/* ---- results ---------------------------------------------------------------------- */

INTDIM_API size_t intdim_search_trials_done(const intdim_search *s)
{
    return s != NULL ? s->n_done : 0;
}

INTDIM_API size_t intdim_search_D(const intdim_search *s)
{
    return s != NULL ? s->D : 0;
}

/* Bootstrap over seeds: resample the seed indices of every point (the same draw for all
 * lrs of a point) from the counter generator, recompute the baseline and d90. Not reached
 * sorts above every d. */
static int bootstrap_range(const intdim_search *s, size_t *d90_lo, size_t *d90_hi)
{
    size_t B = s->bootstrap, S = s->seeds, n_points = intdim__search_n_points(s);
    size_t *values = intdim__alloc(intdim__mul_size(B, sizeof *values));
    size_t *resamples = intdim__alloc(intdim__mul_size(intdim__mul_size(n_points, S),
                                                       sizeof *resamples));
    if (values == NULL || resamples == NULL) {
        intdim__free(values);
        intdim__free(resamples);
        return intdim__fail_nomem("the bootstrap", B * sizeof *values);
    }
    for (size_t b = 0; b < B; b++) {
        for (size_t i = 0; i < n_points * S; i++)
            resamples[i] = (size_t)intdim__rng_below(s->base_seed, INTDIM_STREAM_BOOTSTRAP,
                                                     (uint64_t)b * n_points * S + i, S);
        double baseline;
        size_t index = s->n_grid;
        if (baseline_value(s, resamples, &baseline) && isfinite(baseline))
            index = rule_index(s, s->fraction * baseline, resamples);
        values[b] = index < s->n_grid ? s->grid[index] : SIZE_MAX;
    }
    qsort(values, B, sizeof *values, compare_size);
    size_t lo = values[(size_t)floor(0.05 * (double)(B - 1))];
    size_t hi = values[(size_t)ceil(0.95 * (double)(B - 1))];
    *d90_lo = lo == SIZE_MAX ? 0 : lo;
    *d90_hi = hi == SIZE_MAX ? 0 : hi;
    intdim__free(values);
    intdim__free(resamples);
    return INTDIM_OK;
}

INTDIM_API int intdim_search_result(const intdim_search *s, size_t *d90, int *reached,
                                    double *baseline, size_t *d90_lo, size_t *d90_hi)
{
    if (s == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_result: search is NULL");
    double base;
    if (!s->frozen)
        return intdim__fail(INTDIM_ESTATE, "intdim_search_result: no plan yet (it is made at the "
                                           "first intdim_search_ask or "
                                           "intdim_search_open_journal)");
    if (!baseline_value(s, NULL, &base))
        return intdim__fail(INTDIM_ESTATE, "intdim_search_result: the baseline is not known yet "
                                           "(its trials have not all finished)");
    if (baseline != NULL)
        *baseline = base;
    if (!isfinite(base))
        return intdim__fail(INTDIM_ESTATE, "intdim_search_result: every baseline trial failed "
                                           "(baseline %g)", base);
    size_t index = rule_index(s, s->fraction * base, NULL);
    size_t value = index < s->n_grid ? s->grid[index] : 0;
    size_t lo = value, hi = value;
    if (s->seeds > 1 && s->bootstrap > 0) {
        int rc = bootstrap_range(s, &lo, &hi);
        if (rc != INTDIM_OK)
            return rc;
    }
    if (d90 != NULL)
        *d90 = value;
    if (reached != NULL)
        *reached = index < s->n_grid;
    if (d90_lo != NULL)
        *d90_lo = lo;
    if (d90_hi != NULL)
        *d90_hi = hi;
    if (base < 0.0) /* the rule's threshold then lies above the baseline itself */
        intdim__fail(INTDIM_OK, "warning: the baseline %g is negative: the d90 rule (metric > "
                                "%g x baseline) assumes a higher-is-better metric with a "
                                "positive baseline, such as an accuracy", base, s->fraction);
    return INTDIM_OK;
}

static int point_has_trials(const intdim_search *s, size_t point)
{
    for (size_t j = 0; j < s->n_lrs * s->seeds; j++)
        if (s->trials[point * s->n_lrs * s->seeds + j].state == TRIAL_DONE)
            return 1;
    return 0;
}

INTDIM_API size_t intdim_search_n_points(const intdim_search *s)
{
    if (s == NULL || !s->frozen)
        return 0;
    size_t count = 0;
    for (size_t p = 1; p <= s->n_grid; p++)
        count += (size_t)point_has_trials(s, p);
    return count;
}

INTDIM_API int intdim_search_point(const intdim_search *s, size_t i, size_t *d, double *best_lr,
                                   double *mean, double *spread, size_t *n_seeds, int *pass)
{
    if (s == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_point: search is NULL");
    size_t point = 0;
    for (size_t p = 1, seen = 0; s->frozen && p <= s->n_grid; p++)
        if (point_has_trials(s, p) && seen++ == i) {
            point = p;
            break;
        }
    if (point == 0)
        return intdim__fail(INTDIM_ENOTFOUND, "intdim_search_point: row %zu does not exist "
                                              "(%zu rows)", i, intdim_search_n_points(s));
    size_t best_lr_index = 0;
    lr_stat best = {0, 0, NAN, 0.0};
    int complete = best_complete(s, point, NULL, &best_lr_index, &best);
    if (!complete) { /* only partial lrs: best mean over the seeds finished so far */
        int found = 0;
        for (size_t j = 0; j < s->n_lrs; j++) {
            lr_stat st = lr_stats(s, point, j, NULL);
            if (st.n > 0 && (!found || st.mean > best.mean)) {
                best = st;
                best_lr_index = j;
                found = 1;
            }
        }
    }
    double base = NAN;
    int known = baseline_value(s, NULL, &base) && isfinite(base);
    if (d != NULL)
        *d = s->grid[point - 1];
    if (best_lr != NULL)
        *best_lr = s->lrs[best_lr_index];
    if (mean != NULL)
        *mean = best.mean;
    if (spread != NULL)
        *spread = best.sd;
    if (n_seeds != NULL)
        *n_seeds = best.n;
    if (pass != NULL)
        *pass = complete && known && best.mean > s->fraction * base;
    return INTDIM_OK;
}

/* ---- local runner ----------------------------------------------------------------- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int make_trial_proj(const intdim_search *s, size_t d, int kind, int said, uint64_t seed,
                           intdim_proj **p)
{
    if (kind == INTDIM_PROJ_IDENTITY)
        return intdim_proj_create(p, INTDIM_PROJ_IDENTITY, s->D, s->D, seed);
    if (kind == INTDIM_PROJ_FASTFOOD && s->ff_block > 0) {
        int ids[2] = {INTDIM_PROJ_FASTFOOD_BLOCK, INTDIM_PROJ_SAID};
        double values[2] = {(double)s->ff_block, 1.0};
        return intdim_proj_create_ex(p, INTDIM_PROJ_FASTFOOD, s->D, d, seed,
                                     said ? s->n_groups : 0, said ? s->groups : NULL,
                                     said ? 2 : 1, ids, values);
    }
    if (said)
        return intdim_proj_create_said(p, (intdim_proj_kind)kind, s->D, d, s->n_groups,
                                       s->groups, seed);
    return intdim_proj_create(p, (intdim_proj_kind)kind, s->D, d, seed);
}

static int configure_trainer(const intdim_search *s, intdim_trainer *t, double lr)
{
    for (int k = 0; k < SEARCH_N_TRAIN_PARAMS; k++) {
        if (!s->train_set[k])
            continue;
        int rc = intdim_trainer_set(t, k, s->train_value[k]);
        if (rc != INTDIM_OK)
            return rc;
    }
    /* A decaying schedule needs a horizon: default it to the trial's length. */
    int decays = s->train_set[INTDIM_TRAIN_SCHEDULE] &&
                 s->train_value[INTDIM_TRAIN_SCHEDULE] != INTDIM_SCHED_CONSTANT;
    if (decays && !s->train_set[INTDIM_TRAIN_TOTAL_STEPS]) {
        int rc = intdim_trainer_set(t, INTDIM_TRAIN_TOTAL_STEPS, (double)s->steps);
        if (rc != INTDIM_OK)
            return rc;
    }
    return intdim_trainer_set(t, INTDIM_TRAIN_LR, lr);
}

/* The trial's progress callback: a host callback of intdim_search_run destroyed the search
 * (intdim_search_destroy only marks it then), so the trial stops at once rather than calling
 * the host again (the run frees the search on its way out). */
static int stop_if_destroyed(void *user, uint64_t step, double loss, double metric)
{
    (void)step, (void)loss, (void)metric;
    return ((const intdim_search *)user)->destroy_requested;
}

/* A trial's own failure (the model diverged) is a result: it counts as metric -inf.
 * Anything else (bad configuration, memory, a host asking to stop) aborts the run. */
static int is_trial_failure(int rc)
{
    return rc == INTDIM_ENONFINITE;
}

INTDIM_API int intdim_search_run_trial(const intdim_search *s, float *theta, const float *theta0,
                                       intdim_grad_fn grad_fn, intdim_eval_fn train_fn,
                                       intdim_eval_fn eval_fn, void *user, size_t d, int kind,
                                       int said, double lr, uint64_t seed, double *train_metric,
                                       double *eval_metric, uint64_t *steps, double *seconds,
                                       int *trial_status)
{
    if (s == NULL || theta == NULL || theta0 == NULL || grad_fn == NULL || eval_fn == NULL ||
        train_metric == NULL || eval_metric == NULL || steps == NULL || seconds == NULL ||
        trial_status == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_run_trial: a required argument is "
                                           "NULL");
    if ((const float *)theta == theta0)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_run_trial: theta0 is the host buffer "
                                           "theta, which every step overwrites: pass a copy of "
                                           "theta0 (intdim_search_run makes one itself)");
    double start = now_seconds();
    intdim_proj *p = NULL;
    intdim_trainer *t = NULL;
    int rc = make_trial_proj(s, d, kind, said, seed, &p);
    if (rc == INTDIM_OK)
        rc = intdim_trainer_create(&t, p, theta, theta0, NULL, INTDIM_TRAINER_BORROW_THETA0,
                                   grad_fn, user);
    if (rc == INTDIM_OK)
        rc = configure_trainer(s, t, lr);
    if (rc == INTDIM_OK)
        rc = intdim__trainer_run(t, s->steps, NULL, NULL, stop_if_destroyed, (void *)s, NULL, 0);
    double train = NAN, eval = NAN;
    if (rc == INTDIM_OK && train_fn != NULL)
        rc = intdim_trainer_evaluate(t, train_fn, user, &train);
    if (rc == INTDIM_OK)
        rc = intdim_trainer_evaluate(t, eval_fn, user, &eval);
    if (rc == INTDIM_OK && !isfinite(eval))
        rc = intdim__fail(INTDIM_ENONFINITE, "trial d = %zu lr = %g: eval metric %g", d, lr, eval);
    *steps = t != NULL ? intdim_trainer_steps_done(t) : 0;
    intdim_trainer_destroy(t);
    intdim_proj_destroy(p);
    *seconds = now_seconds() - start;
    *train_metric = train;
    *eval_metric = rc == INTDIM_OK ? eval : -INFINITY;
    *trial_status = rc;
    if (is_trial_failure(rc)) {
        /* a result, so the call succeeds: its message becomes a warning, as every message a
         * successful call leaves must be */
        char why[200];
        snprintf(why, sizeof why, "%s", intdim_last_error());
        intdim__fail(INTDIM_OK, "warning: trial d = %zu lr = %g diverged, a result (metric "
                                "-inf): %s", d, lr, why);
        return INTDIM_OK;
    }
    return rc;
}

/* Trials the adaptive strategy may plan: baseline plus (1 + ceil(log2 n)) points. */
static size_t planned_trials(const intdim_search *s)
{
    size_t per_point = s->n_lrs * s->seeds;
    size_t total = (isnan(s->baseline_given) ? per_point : 0) + s->n_grid * per_point;
    if (s->strategy == INTDIM_STRATEGY_GRID)
        return total;
    size_t probes = 1;
    while (((size_t)1 << (probes - 1)) < s->n_grid)
        probes++;
    size_t bound = (isnan(s->baseline_given) ? per_point : 0) + probes * per_point;
    return bound < total ? bound : total;
}

static void unask(intdim_search *s, uint64_t id)
{
    if (s->trials[id].state == TRIAL_OUT) {
        s->trials[id].state = TRIAL_NEW;
        s->n_out--;
        if (id < s->cursor)
            s->cursor = id;
    }
}

/* A callback destroyed the search during run: stop (it is freed on the way out). */
static int destroyed_during_run(const intdim_search *s)
{
    return intdim__fail(INTDIM_EINTERRUPTED, "intdim_search_run: the search was destroyed by one "
                                             "of its callbacks after %zu trials", s->n_done);
}

INTDIM_API int intdim_search_run(intdim_search *s, float *theta, const float *theta0,
                                 intdim_grad_fn grad_fn, intdim_eval_fn train_fn,
                                 intdim_eval_fn eval_fn, void *user,
                                 intdim_search_progress_fn progress, void *progress_user)
{
    if (s == NULL || theta == NULL || grad_fn == NULL || eval_fn == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_run: search, theta, grad_fn or eval_fn "
                                           "is NULL");
    int rc = intdim__search_refuse_if_busy(s, "intdim_search_run");
    if (rc == INTDIM_OK)
        rc = intdim__search_freeze(s);
    if (rc != INTDIM_OK)
        return rc;
    if (s->n_out > 0)
        return intdim__fail(INTDIM_ESTATE, "intdim_search_run: %zu trials asked outside the run "
                                           "are still outstanding", s->n_out);
    /* Every trial starts from the same base point, but trials overwrite the host buffer:
     * keep the starting contents when the caller gave no separate theta0. */
    float *theta0_copy = NULL;
    if (theta0 == NULL || theta0 == theta) { /* theta is overwritten by every trial */
        theta0_copy = intdim__alloc(intdim__mul_size(s->D, sizeof(float)));
        if (theta0_copy == NULL)
            return intdim__fail_nomem("a copy of theta0", s->D * sizeof(float));
        memcpy(theta0_copy, theta, s->D * sizeof(float));
        theta0 = theta0_copy;
    }
    double start = now_seconds();
    size_t done_here = 0;
    for (;;) {
        int what;
        uint64_t id, seed;
        size_t d;
        int kind, said;
        double lr;
        rc = intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed);
        if (rc != INTDIM_OK || what == INTDIM_ASK_DONE)
            break;
        if (what == INTDIM_ASK_WAIT) {
            rc = intdim__fail(INTDIM_ESTATE, "intdim_search_run: the search waits for trials "
                                             "it cannot run");
            break;
        }
        double train, eval, seconds;
        uint64_t steps;
        int status;
        s->busy = 1; /* the trial's callbacks run now */
        rc = intdim_search_run_trial(s, theta, theta0, grad_fn, train_fn, eval_fn, user, d, kind,
                                     said, lr, seed, &train, &eval, &steps, &seconds, &status);
        s->busy = 0;
        if (s->destroy_requested) {
            rc = destroyed_during_run(s);
            break;
        }
        if (rc == INTDIM_OK)
            rc = intdim_search_tell(s, id, train, eval, steps, seconds, status);
        if (rc != INTDIM_OK) {
            unask(s, id);
            break;
        }
        done_here++;
        if (progress != NULL) {
            size_t total = planned_trials(s);
            if (total < s->n_done)
                total = s->n_done;
            double per_trial = (now_seconds() - start) / (double)done_here;
            double left = per_trial * (double)(total - s->n_done);
            s->busy = 1;
            int stop = progress(progress_user, s->n_done, total, d, lr, eval, left) != 0;
            s->busy = 0;
            if (s->destroy_requested) {
                rc = destroyed_during_run(s);
                break;
            }
            if (stop) {
                rc = intdim__fail(INTDIM_EINTERRUPTED, "intdim_search_run: stopped by the "
                                                       "progress callback after %zu trials",
                                  s->n_done);
                break;
            }
        }
    }
    /* theta back to the starting point, whatever the status: calling run again (to resume
     * after an interruption or a failure) then starts its trials from theta0, not from the
     * last trial's trained weights */
    memcpy(theta, theta0, s->D * sizeof(float));
    intdim__free(theta0_copy);
    if (s->destroy_requested)
        free_search(s);
    return rc;
}
