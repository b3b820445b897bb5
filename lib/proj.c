/* The projection handle: argument checks (once, here), parameters, dispatch by kind, the
 * identity kind, SAID scaling on top of any kind, and the cached workspace that keeps
 * apply/vjp allocation-free and thread-safe on a const handle. Math in docs/math.md. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "fwht.h"
#include "proj_impl.h"

/* Largest D we accept: 2^40 keeps every index product of the kinds far below 2^64 and is
 * far beyond any model this library can be asked to train. */
#define MAX_D ((size_t)1 << 40)
#define DEFAULT_MEMORY_BUDGET (8.0 * 1024.0 * 1024.0 * 1024.0)
#define MAX_EXACT_DOUBLE 9007199254740992.0 /* 2^53 */
#define MAX_THREADS 4096.0

/* SAID reductions over D are split into blocks of this many entries, counted from the
 * start of each group. The block layout depends only on the groups, never on the thread
 * count, so the scale gradients are the same bits with any number of threads. */
enum { SAID_BLOCK = 8192 };

/* proj.c's private view of a handle: kind files see only `base`. */
typedef struct proj_handle {
    struct intdim_proj base;  /* must stay first: handles are cast both ways */
    size_t said_blocks;       /* SAID: number of reduction blocks over all groups */
    size_t *said_block_base;  /* SAID: n_groups + 1 entries, first block of each group */
    size_t kind_work_floats;  /* kind's scratch, rounded up to a 64-byte multiple */
    size_t said_work_floats;  /* SAID scratch: D floats + said_blocks doubles, rounded */
    size_t work_floats_total; /* one workspace */
} proj_handle;

static proj_handle *handle_of(intdim_proj *p)
{
    return (proj_handle *)p;
}

static const proj_handle *const_handle_of(const intdim_proj *p)
{
    return (const proj_handle *)p;
}

/* ---- parameters ------------------------------------------------------------------ */

typedef struct param_info {
    const char *name;
    double lo, hi;
    int integer; /* value must be a whole number */
    int runtime; /* may be changed by intdim_proj_set */
} param_info;

static const param_info g_params[] = {
    [INTDIM_PROJ_SPARSE_DENSITY] = { "INTDIM_PROJ_SPARSE_DENSITY", 0.0, 1.0, 0, 0 },
    [INTDIM_PROJ_MEMORY_BUDGET] = { "INTDIM_PROJ_MEMORY_BUDGET", 0.0, MAX_EXACT_DOUBLE, 0, 0 },
    [INTDIM_PROJ_FASTFOOD_PER_GROUP] = { "INTDIM_PROJ_FASTFOOD_PER_GROUP", 0.0, 1.0, 1, 0 },
    [INTDIM_PROJ_SAID] = { "INTDIM_PROJ_SAID", 0.0, 1.0, 1, 0 },
    [INTDIM_PROJ_THREADS] = { "INTDIM_PROJ_THREADS", 0.0, MAX_THREADS, 1, 1 },
    [INTDIM_PROJ_KERNEL] = { "INTDIM_PROJ_KERNEL", INTDIM_KERNEL_AUTO, INTDIM_KERNEL_AVX512, 1,
                             1 },
    [INTDIM_PROJ_FASTFOOD_BLOCK] = { "INTDIM_PROJ_FASTFOOD_BLOCK", 0.0, 4294967296.0, 1, 0 },
    [INTDIM_PROJ_FASTFOOD_TABLES] = { "INTDIM_PROJ_FASTFOOD_TABLES", 0.0, 1.0, 1, 0 },
};
enum { N_PARAMS = (int)(sizeof g_params / sizeof g_params[0]) };

static int check_param(const char *fn, int id, double value)
{
    if (id < 0 || id >= N_PARAMS)
        return intdim__fail(INTDIM_EINVAL, "%s: unknown projection parameter id %d", fn, id);
    const param_info *info = &g_params[id];
    if (isnan(value))
        return intdim__fail(INTDIM_EINVAL, "%s: %s is NaN", fn, info->name);
    if (value < info->lo || value > info->hi)
        return intdim__fail(INTDIM_EINVAL, "%s: %s = %.16g is outside [%.16g, %.16g]", fn,
                            info->name, value, info->lo, info->hi);
    if (info->integer && value != floor(value))
        return intdim__fail(INTDIM_EINVAL, "%s: %s = %g must be a whole number", fn, info->name,
                            value);
    return INTDIM_OK;
}

INTDIM_API int intdim_proj_param_bounds(int param, double *lo, double *hi)
{
    if (param < 0 || param >= N_PARAMS)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_param_bounds: unknown parameter id %d",
                            param);
    if (lo != NULL) /* either may be NULL, as for the trainer's and the search's */
        *lo = g_params[param].lo;
    if (hi != NULL)
        *hi = g_params[param].hi;
    return INTDIM_OK;
}

/* Creation settings gathered from the key/value arrays before anything is allocated. */
typedef struct create_options {
    double density;
    double memory_budget;
    int per_group;
    size_t ff_block;
    int said;
    int threads;
    int kernel;
} create_options;

static int parse_options(create_options *opt, size_t n_params, const int *ids,
                         const double *values)
{
    opt->density = 0.0;
    opt->memory_budget = DEFAULT_MEMORY_BUDGET;
    opt->per_group = 0;
    opt->ff_block = 0;
    opt->said = 0;
    opt->threads = 0;
    opt->kernel = INTDIM_KERNEL_AUTO;
    if (n_params > 0 && (ids == NULL || values == NULL))
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: n_params = %zu but param_ids "
                                           "or param_values is NULL", n_params);
    for (size_t i = 0; i < n_params; i++) {
        int status = check_param("intdim_proj_create", ids[i], values[i]);
        if (status != INTDIM_OK)
            return status;
        double v = values[i];
        switch (ids[i]) {
        case INTDIM_PROJ_SPARSE_DENSITY: opt->density = v; break;
        case INTDIM_PROJ_MEMORY_BUDGET: opt->memory_budget = v; break;
        case INTDIM_PROJ_FASTFOOD_PER_GROUP: opt->per_group = (int)v; break;
        case INTDIM_PROJ_SAID: opt->said = (int)v; break;
        case INTDIM_PROJ_THREADS: opt->threads = (int)v; break;
        case INTDIM_PROJ_KERNEL: opt->kernel = (int)v; break;
        case INTDIM_PROJ_FASTFOOD_BLOCK: opt->ff_block = (size_t)v; break;
        case INTDIM_PROJ_FASTFOOD_TABLES:
            if (v != 0.0)
                return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: "
                                                   "INTDIM_PROJ_FASTFOOD_TABLES is read-only: "
                                                   "use intdim_proj_create_fastfood_tables");
            break;
        default: break;
        }
    }
    return INTDIM_OK;
}

/* AUTO becomes the fastest kernel; an explicit one must be compiled in and on the CPU. */
static int resolve_kernel(const char *fn, int kernel, int *resolved)
{
    if (kernel == INTDIM_KERNEL_AUTO) {
        *resolved = intdim__fwht_best_kernel();
        return INTDIM_OK;
    }
    if (!intdim__fwht_kernel_available(kernel))
        return intdim__fail(INTDIM_EUNSUPPORTED, "%s: transform kernel %d is not available "
                                                 "in this build or on this CPU", fn, kernel);
    *resolved = kernel;
    return INTDIM_OK;
}

/* ---- argument checks -------------------------------------------------------------- */

/* FASTFOOD_BLOCK: a power of two >= 2, for Fastfood, not with per-group blocks. */
static int check_block_option(int kind, const create_options *opt)
{
    size_t b = opt->ff_block;
    if (b == 0)
        return INTDIM_OK;
    if (kind != INTDIM_PROJ_FASTFOOD)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: FASTFOOD_BLOCK = %zu needs "
                                           "kind FASTFOOD, got kind %d", b, kind);
    if (b < 2 || !intdim__is_pow2(b))
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: FASTFOOD_BLOCK = %zu is not "
                                           "a power of two >= 2", b);
    if (opt->per_group)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: FASTFOOD_BLOCK and "
                                           "FASTFOOD_PER_GROUP cannot be combined (blocks "
                                           "follow either fixed chunks or the groups)");
    return INTDIM_OK;
}

static int check_groups(size_t D, size_t n_groups, const size_t *sizes)
{
    if (n_groups == 0)
        return INTDIM_OK;
    if (sizes == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: n_groups = %zu but "
                                           "group_sizes is NULL", n_groups);
    if (n_groups > D)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: n_groups = %zu exceeds D = %zu "
                                           "(groups must be non-empty)", n_groups, D);
    size_t sum = 0;
    for (size_t k = 0; k < n_groups; k++) {
        if (sizes[k] == 0)
            return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: group %zu has size 0", k);
        if (sizes[k] > D - sum)
            return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: group sizes exceed D = %zu "
                                               "at group %zu", D, k);
        sum += sizes[k];
    }
    if (sum != D)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: group sizes sum to %zu, not "
                                           "D = %zu", sum, D);
    return INTDIM_OK;
}

static int check_shape(int kind, size_t D, size_t d, size_t n_groups, const size_t *sizes,
                       const create_options *opt)
{
    if (kind < INTDIM_PROJ_IDENTITY || kind > INTDIM_PROJ_FASTFOOD)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: unknown kind %d", kind);
    if (D == 0)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: D is 0");
    if (d == 0)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: d is 0");
    if (D > MAX_D)
        return intdim__fail(INTDIM_ETOOBIG, "intdim_proj_create: D = %zu exceeds the limit "
                                            "2^40", D);
    if (d > D)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: d = %zu exceeds D = %zu", d, D);
    int status = check_groups(D, n_groups, sizes);
    if (status != INTDIM_OK)
        return status;
    if (opt->said) {
        if (n_groups == 0)
            return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: SAID needs at least one "
                                               "group (n_groups = 0)");
        if (n_groups >= d)
            return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: SAID needs m < d, got "
                                               "m = %zu scales and d = %zu", n_groups, d);
        if (kind == INTDIM_PROJ_IDENTITY)
            return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: SAID over IDENTITY would "
                                               "need d = D + m = %zu > D", D + n_groups);
    }
    if (kind == INTDIM_PROJ_IDENTITY && d != D)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: IDENTITY needs d == D, got "
                                           "d = %zu, D = %zu", d, D);
    if (opt->per_group) {
        if (kind != INTDIM_PROJ_FASTFOOD)
            return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: FASTFOOD_PER_GROUP = 1 "
                                               "needs kind FASTFOOD, got kind %d", kind);
        if (n_groups == 0)
            return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: FASTFOOD_PER_GROUP = 1 "
                                               "needs groups (n_groups = 0)");
    }
    if (opt->density != 0.0 && kind != INTDIM_PROJ_SPARSE)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: SPARSE_DENSITY = %g applies to "
                                           "kind SPARSE only, got kind %d (it would be ignored)",
                            opt->density, kind);
    return check_block_option(kind, opt);
}

/* Fail fast on states that cannot fit, before generating anything: a dense D x d matrix
 * at D = 2^24, d = 1000 would be 67 GB. The kinds check their exact size again. */
static int check_budget(int kind, size_t D, size_t d_lin, const create_options *opt)
{
    if (kind == INTDIM_PROJ_DENSE) {
        double bytes = (double)D * (double)d_lin * (double)sizeof(float);
        if (bytes > opt->memory_budget)
            return intdim__fail(INTDIM_ETOOBIG,
                                "intdim_proj_create: a DENSE projection with D = %zu, d = %zu "
                                "needs %.2f GB, over the memory budget of %.2f GB; use "
                                "INTDIM_PROJ_FASTFOOD (O(D) memory) or raise "
                                "INTDIM_PROJ_MEMORY_BUDGET", D, d_lin, bytes / 1e9,
                                opt->memory_budget / 1e9);
    }
    if (kind == INTDIM_PROJ_SPARSE) {
        double density = opt->density > 0.0 ? opt->density : 1.0 / sqrt((double)D);
        /* row index (8 bytes) + value (4 bytes) per expected nonzero */
        double bytes = (double)D * (double)d_lin * density * 12.0;
        if (bytes > opt->memory_budget)
            return intdim__fail(INTDIM_ETOOBIG,
                                "intdim_proj_create: a SPARSE projection with D = %zu, d = %zu, "
                                "density %g needs about %.2f GB, over the memory budget of "
                                "%.2f GB; use INTDIM_PROJ_FASTFOOD or raise "
                                "INTDIM_PROJ_MEMORY_BUDGET", D, d_lin, density, bytes / 1e9,
                                opt->memory_budget / 1e9);
    }
    return INTDIM_OK;
}

/* ---- identity kind ---------------------------------------------------------------- */

static void identity_apply(const intdim_proj *p, const float *x, float *y, float *work)
{
    (void)work;
    memcpy(y, x, p->D * sizeof(float));
}

static void identity_adjoint(const intdim_proj *p, const float *g, float *x, float *work)
{
    (void)work;
    memcpy(x, g, p->D * sizeof(float));
}

/* theta = theta0 + theta_d in one pass: full training's step writes the host buffer once. */
static void identity_apply_base(const intdim_proj *p, const float *x, const float *base,
                                float *y, float *work)
{
    (void)work;
    for (size_t i = 0; i < p->D; i++)
        y[i] = base[i] + x[i];
}

static void identity_destroy(intdim_proj *p)
{
    (void)p;
}

static const proj_ops g_identity_ops = { identity_apply, identity_adjoint, identity_destroy,
                                         identity_apply_base };

int intdim__identity_create(intdim_proj *p)
{
    p->ops = &g_identity_ops;
    p->state = NULL;
    p->state_bytes = 0;
    p->work_floats = 0;
    return INTDIM_OK;
}

/* ---- creation --------------------------------------------------------------------- */

static size_t round_up_64_bytes(size_t floats)
{
    return (floats + 15) / 16 * 16;
}

/* Copy the groups and precompute their offsets and SAID reduction blocks. */
static int setup_groups(proj_handle *h, size_t n_groups, const size_t *sizes)
{
    intdim_proj *p = &h->base;
    p->n_groups = n_groups;
    if (n_groups == 0)
        return INTDIM_OK;
    p->group_sizes = intdim__calloc(n_groups, sizeof(size_t));
    p->group_offsets = intdim__calloc(n_groups + 1, sizeof(size_t));
    if (p->group_sizes == NULL || p->group_offsets == NULL)
        return intdim__fail_nomem("projection groups", 2 * (n_groups + 1) * sizeof(size_t));
    p->group_offsets[0] = 0;
    for (size_t k = 0; k < n_groups; k++) {
        p->group_sizes[k] = sizes[k];
        p->group_offsets[k + 1] = p->group_offsets[k] + sizes[k];
    }
    if (!p->said)
        return INTDIM_OK;
    h->said_block_base = intdim__calloc(n_groups + 1, sizeof(size_t));
    if (h->said_block_base == NULL)
        return intdim__fail_nomem("SAID reduction blocks", (n_groups + 1) * sizeof(size_t));
    for (size_t k = 0; k < n_groups; k++)
        h->said_block_base[k + 1] = h->said_block_base[k] + (sizes[k] + SAID_BLOCK - 1) /
                                                            SAID_BLOCK;
    h->said_blocks = h->said_block_base[n_groups];
    return INTDIM_OK;
}

static int create_kind(intdim_proj *p, const ff_tables *tables)
{
    switch (p->kind) {
    case INTDIM_PROJ_IDENTITY: return intdim__identity_create(p);
    case INTDIM_PROJ_DENSE: return intdim__dense_create(p);
    case INTDIM_PROJ_SPARSE: return intdim__sparse_create(p);
    default:
        return tables != NULL ? intdim__fastfood_create_from(p, tables)
                              : intdim__fastfood_create(p);
    }
}

static int allocate_workspace(proj_handle *h)
{
    intdim_proj *p = &h->base;
    h->kind_work_floats = round_up_64_bytes(p->work_floats);
    h->said_work_floats = p->said ? round_up_64_bytes(p->D) +
                                    round_up_64_bytes(2 * h->said_blocks) : 0;
    h->work_floats_total = h->kind_work_floats + h->said_work_floats;
    if (h->work_floats_total == 0)
        h->work_floats_total = 16;
    size_t bytes = intdim__mul_size(h->work_floats_total, sizeof(float));
    p->work = intdim__alloc(bytes);
    if (p->work == NULL)
        return intdim__fail_nomem("projection workspace", bytes);
    return INTDIM_OK;
}

/* A handle from checked arguments: the seed's projection, or (tables != NULL) a Fastfood
 * block from explicit tables. */
static int create_handle(intdim_proj **out, intdim_proj_kind kind, size_t D, size_t d,
                         uint64_t seed, size_t n_groups, const size_t *group_sizes,
                         const create_options *opt_in, const ff_tables *tables)
{
    create_options opt = *opt_in;
    size_t d_lin = opt.said ? d - n_groups : d;
    int status = check_budget((int)kind, D, d_lin, &opt);
    int kernel = INTDIM_KERNEL_PORTABLE;
    if (status == INTDIM_OK)
        status = resolve_kernel("intdim_proj_create", opt.kernel, &kernel);
    if (status != INTDIM_OK)
        return status;

    proj_handle *h = intdim__calloc(1, sizeof *h);
    if (h == NULL)
        return intdim__fail_nomem("projection handle", sizeof *h);
    intdim_proj *p = &h->base;
    atomic_flag_clear(&p->work_busy);
    p->kind = (int)kind;
    p->D = D;
    p->d = d;
    p->d_lin = d_lin;
    p->seed = seed;
    p->said = opt.said;
    p->per_group = opt.per_group;
    p->ff_block = opt.ff_block;
    p->density = (kind == INTDIM_PROJ_SPARSE && opt.density == 0.0) ? 1.0 / sqrt((double)D)
                                                                    : opt.density;
    p->memory_budget = opt.memory_budget;
    p->threads = opt.threads;
    p->kernel = kernel;
    p->imported = tables != NULL;

    status = setup_groups(h, n_groups, group_sizes);
    if (status == INTDIM_OK)
        status = create_kind(p, tables);
    if (status == INTDIM_OK && (double)p->state_bytes > p->memory_budget)
        status = intdim__fail(INTDIM_ETOOBIG, "intdim_proj_create: the projection's state "
                                              "needs %.2f GB, over the memory budget of %.2f GB",
                              (double)p->state_bytes / 1e9, p->memory_budget / 1e9);
    if (status == INTDIM_OK)
        status = allocate_workspace(h);
    if (status != INTDIM_OK) {
        intdim_proj_destroy(p);
        return status;
    }
    *out = p;
    return INTDIM_OK;
}

INTDIM_API int intdim_proj_create_ex(intdim_proj **out, intdim_proj_kind kind, size_t D,
                                     size_t d, uint64_t seed, size_t n_groups,
                                     const size_t *group_sizes, size_t n_params,
                                     const int *param_ids, const double *param_values)
{
    if (out == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_create: out is NULL");
    *out = NULL;
    create_options opt;
    int status = parse_options(&opt, n_params, param_ids, param_values);
    if (status == INTDIM_OK)
        status = check_shape((int)kind, D, d, n_groups, group_sizes, &opt);
    if (status != INTDIM_OK)
        return status;
    return create_handle(out, kind, D, d, seed, n_groups, group_sizes, &opt, NULL);
}

INTDIM_API int intdim_proj_create_fastfood_tables(intdim_proj **out, size_t D, size_t d,
                                                  size_t L, const float *B, const int64_t *Pi,
                                                  const float *G)
{
    if (out == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_create_fastfood_tables: out is NULL");
    *out = NULL;
    if (B == NULL || Pi == NULL || G == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_create_fastfood_tables: table %s is "
                                           "NULL", B == NULL ? "B" : Pi == NULL ? "Pi" : "G");
    create_options opt;
    int status = parse_options(&opt, 0, NULL, NULL);
    if (status == INTDIM_OK)
        status = check_shape(INTDIM_PROJ_FASTFOOD, D, d, 0, NULL, &opt);
    if (status != INTDIM_OK)
        return status;
    if (L != intdim__next_pow2(D))
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_create_fastfood_tables: L = %zu, but "
                                           "the tables of D = %zu have nextpow2(D) = %zu "
                                           "entries", L, D, (size_t)intdim__next_pow2(D));
    if (L > ((size_t)1 << 32)) /* before reading the tables: the seeded form's limit */
        return intdim__fail(INTDIM_ETOOBIG, "intdim_proj_create_fastfood_tables: D = %zu pads "
                                            "past 2^32 entries", D);
    ff_tables tables = {D, L, B, Pi, G};
    status = intdim__fastfood_check_tables(&tables);
    if (status != INTDIM_OK)
        return status;
    status = create_handle(out, INTDIM_PROJ_FASTFOOD, D, d, 0, 0, NULL, &opt, &tables);
    if (status == INTDIM_OK) { /* what a checkpoint compares instead of a seed */
        uint64_t h = intdim__hash64(B, L * sizeof(float), 0);
        h = intdim__hash64(Pi, L * sizeof(int64_t), h);
        (*out)->tables_hash = intdim__hash64(G, L * sizeof(float), h);
    }
    return status;
}

INTDIM_API int intdim_proj_fastfood_tables(const intdim_proj *p, float *B, int64_t *Pi,
                                           float *G, size_t L)
{
    if (p == NULL || B == NULL || Pi == NULL || G == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_fastfood_tables: NULL %s",
                            p == NULL ? "p" : B == NULL ? "B" : Pi == NULL ? "Pi" : "G");
    if (p->kind != INTDIM_PROJ_FASTFOOD || p->per_group || p->ff_block != 0 || p->imported)
        return intdim__fail(INTDIM_EUNSUPPORTED, "intdim_proj_fastfood_tables: only a seeded "
                                                 "single-block FASTFOOD projection has "
                                                 "REFERENCE's tables (kind %d%s)", p->kind,
                            p->imported ? ", made from tables" : "");
    if (L != intdim__next_pow2(p->D))
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_fastfood_tables: L = %zu, but D = %zu "
                                           "has nextpow2(D) = %zu entries", L, p->D,
                            (size_t)intdim__next_pow2(p->D));
    return intdim__fastfood_export(p, B, Pi, G);
}

INTDIM_API int intdim_proj_create(intdim_proj **out, intdim_proj_kind kind, size_t D, size_t d,
                                  uint64_t seed)
{
    return intdim_proj_create_ex(out, kind, D, d, seed, 0, NULL, 0, NULL, NULL);
}

INTDIM_API int intdim_proj_create_said(intdim_proj **out, intdim_proj_kind kind, size_t D,
                                       size_t d, size_t n_groups, const size_t *group_sizes,
                                       uint64_t seed)
{
    const int id = INTDIM_PROJ_SAID;
    const double on = 1.0;
    return intdim_proj_create_ex(out, kind, D, d, seed, n_groups, group_sizes, 1, &id, &on);
}

INTDIM_API void intdim_proj_destroy(intdim_proj *p)
{
    if (p == NULL)
        return;
    proj_handle *h = handle_of(p);
    if (p->ops != NULL)
        p->ops->destroy(p);
    intdim__free(p->work);
    intdim__free(p->group_sizes);
    intdim__free(p->group_offsets);
    intdim__free(h->said_block_base);
    intdim__free(h);
}

/* ---- queries ---------------------------------------------------------------------- */

INTDIM_API size_t intdim_proj_D(const intdim_proj *p)
{
    return p ? p->D : 0;
}

INTDIM_API size_t intdim_proj_d(const intdim_proj *p)
{
    return p ? p->d : 0;
}

INTDIM_API size_t intdim_proj_n_groups(const intdim_proj *p)
{
    return p ? p->n_groups : 0;
}

INTDIM_API size_t intdim_proj_n_scales(const intdim_proj *p)
{
    return (p && p->said) ? p->n_groups : 0;
}

INTDIM_API int intdim_proj_kind_of(const intdim_proj *p)
{
    return p ? p->kind : intdim__fail(INTDIM_EINVAL, "intdim_proj_kind_of: p is NULL");
}

INTDIM_API uint64_t intdim_proj_seed(const intdim_proj *p)
{
    return p ? p->seed : 0;
}

INTDIM_API size_t intdim_proj_bytes(const intdim_proj *p)
{
    if (p == NULL)
        return 0;
    const proj_handle *h = const_handle_of(p);
    size_t group_arrays = p->n_groups == 0 ? 0 : (2 * p->n_groups + 1) * sizeof(size_t);
    size_t said_arrays = h->said_block_base ? (p->n_groups + 1) * sizeof(size_t) : 0;
    return sizeof *h + group_arrays + said_arrays + p->state_bytes +
           h->work_floats_total * sizeof(float);
}

INTDIM_API int intdim_proj_group_sizes(const intdim_proj *p, size_t *sizes, size_t n)
{
    if (p == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_group_sizes: p is NULL");
    if (n < p->n_groups)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_group_sizes: n = %zu is less than "
                                           "n_groups = %zu", n, p->n_groups);
    if (p->n_groups > 0 && sizes == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_group_sizes: sizes is NULL");
    for (size_t k = 0; k < p->n_groups; k++)
        sizes[k] = p->group_sizes[k];
    return INTDIM_OK;
}

INTDIM_API int intdim_proj_set(intdim_proj *p, int param, double value)
{
    if (p == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_set: p is NULL");
    if (param < 0 || param >= N_PARAMS)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_set: unknown parameter id %d", param);
    int status = check_param("intdim_proj_set", param, value);
    if (status != INTDIM_OK)
        return status;
    if (!g_params[param].runtime)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_set: %s is a creation parameter and "
                                           "cannot change after create", g_params[param].name);
    if (param == INTDIM_PROJ_THREADS) {
        p->threads = (int)value;
        return INTDIM_OK;
    }
    int kernel = INTDIM_KERNEL_PORTABLE;
    status = resolve_kernel("intdim_proj_set", (int)value, &kernel);
    if (status == INTDIM_OK)
        p->kernel = kernel;
    return status;
}

INTDIM_API int intdim_proj_get(const intdim_proj *p, int param, double *value)
{
    if (p == NULL || value == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_get: NULL p or value");
    switch (param) {
    case INTDIM_PROJ_SPARSE_DENSITY: *value = p->density; break;
    case INTDIM_PROJ_MEMORY_BUDGET: *value = p->memory_budget; break;
    case INTDIM_PROJ_FASTFOOD_PER_GROUP: *value = p->per_group; break;
    case INTDIM_PROJ_SAID: *value = p->said; break;
    case INTDIM_PROJ_THREADS: *value = p->threads; break;
    case INTDIM_PROJ_KERNEL: *value = p->kernel; break;
    case INTDIM_PROJ_FASTFOOD_BLOCK: *value = (double)p->ff_block; break;
    case INTDIM_PROJ_FASTFOOD_TABLES: *value = p->imported; break;
    default:
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_get: unknown parameter id %d", param);
    }
    return INTDIM_OK;
}

INTDIM_API int intdim_proj_init_theta(const intdim_proj *p, float *theta_d)
{
    if (p == NULL || theta_d == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_init_theta: NULL p or theta_d");
    for (size_t i = 0; i < p->d_lin; i++)
        theta_d[i] = 0.0f;
    for (size_t i = p->d_lin; i < p->d; i++)
        theta_d[i] = 1.0f;
    return INTDIM_OK;
}

/* ---- workspace -------------------------------------------------------------------- */

/* The cached block if no other call holds it, else a private one (*owned = 1). The
 * handle is const for callers, but work/work_busy are the handle's internal scratch:
 * casting const away is sound because every handle is allocated non-const by create,
 * and the atomic flag serializes use of the cached block. */
static float *acquire_work(const proj_handle *h, int *owned)
{
    atomic_flag *busy = (atomic_flag *)&h->base.work_busy;
    if (!atomic_flag_test_and_set_explicit(busy, memory_order_acquire)) {
        *owned = 0;
        return h->base.work;
    }
    *owned = 1;
    return intdim__alloc(h->work_floats_total * sizeof(float));
}

static void release_work(const proj_handle *h, float *work, int owned)
{
    if (owned) {
        intdim__free(work);
        return;
    }
    atomic_flag_clear_explicit((atomic_flag *)&h->base.work_busy, memory_order_release);
}

/* ---- SAID ------------------------------------------------------------------------- */

/* Block b of the SAID layout: its group and its range [*start, *end). */
static size_t said_block_range(const proj_handle *h, size_t b, size_t *start, size_t *end)
{
    const size_t *base = h->said_block_base;
    size_t lo = 0, hi = h->base.n_groups; /* find k with base[k] <= b < base[k + 1] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (base[mid] <= b)
            lo = mid;
        else
            hi = mid;
    }
    size_t group_start = h->base.group_offsets[lo];
    size_t group_end = h->base.group_offsets[lo + 1];
    *start = group_start + (b - base[lo]) * SAID_BLOCK;
    *end = *start + SAID_BLOCK < group_end ? *start + SAID_BLOCK : group_end;
    return lo;
}

/* out_i = lambda_{g(i)} * in_i, or base_i + lambda_{g(i)} * in_i when base != NULL (the
 * bits of the scaling followed by the addition, in one pass): elementwise, so any split
 * over threads gives the same bits. */
static void said_scale(const proj_handle *h, const float *lambda, const float *in,
                       const float *base, float *out)
{
    size_t n_blocks = h->said_blocks;
    int threads = intdim__threads(h->base.threads);
    INTDIM_PARALLEL_FOR(threads, n_blocks > 1, b, n_blocks, {
        size_t start, end;
        size_t k = said_block_range(h, b, &start, &end);
        float scale = lambda[k];
        if (base == NULL) {
            for (size_t i = start; i < end; i++)
                out[i] = scale * in[i];
        } else {
            for (size_t i = start; i < end; i++)
                out[i] = base[i] + scale * in[i];
        }
    });
}

/* Interleaved accumulators of the dot products: one sum would wait on the previous
 * addition (about 4 cycles) for every element. */
enum { DOT_LANES = 8 };

/* sum of g_i * u_i over [start, end) in double: element i goes to accumulator
 * (i - start) mod DOT_LANES, and the accumulators are added in order at the end (a fixed
 * order, whatever the threads). */
static double dot_double(const float *g, const float *u, size_t start, size_t end)
{
    double acc[DOT_LANES] = {0};
    size_t i = start;
    for (; i + DOT_LANES <= end; i += DOT_LANES)
        for (unsigned l = 0; l < DOT_LANES; l++)
            acc[l] += (double)g[i + l] * (double)u[i + l];
    for (unsigned l = 0; i < end; i++, l++)
        acc[l] += (double)g[i] * (double)u[i];
    double sum = 0.0;
    for (unsigned l = 0; l < DOT_LANES; l++)
        sum += acc[l];
    return sum;
}

/* One pass over g for the adjoint: partial[b] = sum over block b of g_i * u_i, in double
 * (dot_double's order), then s_i = lambda_{g(i)} * g_i on the same block (s may be u's
 * memory: a block's u is read before its s is written). */
static void said_partials_and_scale(const proj_handle *h, const float *lambda, const float *g,
                                    const float *u, double *partial, float *s)
{
    size_t n_blocks = h->said_blocks;
    int threads = intdim__threads(h->base.threads);
    INTDIM_PARALLEL_FOR(threads, n_blocks > 1, b, n_blocks, {
        size_t start, end;
        size_t k = said_block_range(h, b, &start, &end);
        partial[b] = dot_double(g, u, start, end);
        float scale = lambda[k];
        for (size_t i = start; i < end; i++)
            s[i] = scale * g[i];
    });
}

/* g_lambda[k] = the blocks of group k added in block order: a fixed order whatever the
 * thread count. */
static void said_sum_groups(const proj_handle *h, const double *partial, float *g_lambda)
{
    for (size_t k = 0; k < h->base.n_groups; k++) {
        double sum = 0.0;
        for (size_t b = h->said_block_base[k]; b < h->said_block_base[k + 1]; b++)
            sum += partial[b];
        g_lambda[k] = (float)sum;
    }
}

/* ---- apply and vjp ---------------------------------------------------------------- */

/* y = P x (SAID: lambda (.) P x), plus base when base != NULL: fused by the kind when it
 * can, else added afterwards (the same bits either way). said_u (SAID only, may be NULL)
 * keeps the unscaled P x. */
static int project(const intdim_proj *p, const float *theta_d, const float *base, float *y,
                   float *said_u)
{
    const proj_handle *h = const_handle_of(p);
    int owned;
    float *work = acquire_work(h, &owned);
    if (work == NULL)
        return intdim__fail_nomem("a second concurrent projection workspace",
                                  h->work_floats_total * sizeof(float));
    if (base != NULL && !p->said && p->ops->apply_base != NULL) {
        p->ops->apply_base(p, theta_d, base, y, work);
    } else {
        float *u = p->said && said_u != NULL ? said_u : y;
        p->ops->apply(p, theta_d, u, work);
        if (p->said)
            said_scale(h, theta_d + p->d_lin, u, base, y);
        for (size_t i = 0; base != NULL && !p->said && i < p->D; i++)
            y[i] = base[i] + y[i];
    }
    release_work(h, work, owned);
    return INTDIM_OK;
}

INTDIM_API int intdim_proj_apply(const intdim_proj *p, const float *theta_d, float *delta_D)
{
    if (p == NULL || theta_d == NULL || delta_D == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_apply: NULL p, theta_d or delta_D");
    if (intdim__floats_overlap(theta_d, p->d, delta_D, p->D))
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_apply: delta_D overlaps theta_d");
    return project(p, theta_d, NULL, delta_D, NULL);
}

int intdim__proj_apply_base(const intdim_proj *p, const float *theta_d, const float *base,
                            float *theta, float *said_u)
{
    return project(p, theta_d, base, theta, said_u);
}

/* The vjp after its checks; said_u: the unscaled P(theta_d) when the caller has it. */
static int pull_back(const intdim_proj *p, const float *theta_d, const float *g_D,
                     const float *said_u, float *g_d)
{
    const proj_handle *h = const_handle_of(p);
    int owned;
    float *work = acquire_work(h, &owned);
    if (work == NULL)
        return intdim__fail_nomem("a second concurrent projection workspace",
                                  h->work_floats_total * sizeof(float));
    if (!p->said) {
        p->ops->adjoint(p, g_D, g_d, work);
        release_work(h, work, owned);
        return INTDIM_OK;
    }
    /* u = P x (unscaled) unless given, partial sums of g . u per block, then s = lambda
     * (.) g and g_x = P^T s. lambda and the partials are read before g_d is written, so
     * g_d may even alias theta_d. s reuses u's scratch once the partials are done. */
    float *s = work + h->kind_work_floats;
    /* raw allocated memory, 64-byte aligned; this region is only ever used as doubles */
    double *partial = (double *)(void *)(s + round_up_64_bytes(p->D));
    const float *lambda = theta_d + p->d_lin;
    if (said_u == NULL) {
        p->ops->apply(p, theta_d, s, work);
        said_u = s;
    }
    said_partials_and_scale(h, lambda, g_D, said_u, partial, s);
    p->ops->adjoint(p, s, g_d, work);
    said_sum_groups(h, partial, g_d + p->d_lin);
    release_work(h, work, owned);
    return INTDIM_OK;
}

INTDIM_API int intdim_proj_vjp(const intdim_proj *p, const float *theta_d, const float *g_D,
                               float *g_d)
{
    if (p == NULL || g_D == NULL || g_d == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_vjp: NULL p, g_D or g_d");
    if (p->said && theta_d == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_vjp: theta_d is NULL but a SAID "
                                           "projection needs it for the scales' gradients");
    if (intdim__floats_overlap(g_d, p->d, g_D, p->D) ||
        (p->said && intdim__floats_overlap(g_d, p->d, theta_d, p->d)))
        return intdim__fail(INTDIM_EINVAL, "intdim_proj_vjp: g_d overlaps %s",
                            intdim__floats_overlap(g_d, p->d, g_D, p->D) ? "g_D" : "theta_d");
    return pull_back(p, theta_d, g_D, NULL, g_d);
}

int intdim__proj_vjp_said_u(const intdim_proj *p, const float *theta_d, const float *g_D,
                            const float *said_u, float *g_d)
{
    return pull_back(p, theta_d, g_D, p->said ? said_u : NULL, g_d);
}
