/*
 * libintdim — measure the intrinsic dimension of training a model.
 *
 * One public header. C99, usable from C++. Stable part first.
 *
 * Conventions (see docs/abi.md):
 *  - Every function that can fail returns an int status: INTDIM_OK (0) or a negative
 *    intdim_status. intdim_strerror() names the status; intdim_last_error() gives the
 *    detailed message of the last failure on the calling thread.
 *  - Handles are opaque. `*_create` is not thread-safe with respect to the handle it
 *    builds; functions taking a `const` handle are thread-safe (FFTW's plan/execute).
 *  - No varargs, no structs by value. Parameters are set by enum with a bounds query
 *    (zstd style). Enum values are append-only and never renumbered; FFI users who cannot
 *    see enums or macros look them up with intdim_constant().
 *  - Sizes are size_t, seeds uint64_t, vectors float32, scalars reported as double.
 */
#ifndef INTDIM_H
#define INTDIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(INTDIM_BUILDING) && defined(__GNUC__)
#define INTDIM_API __attribute__((visibility("default")))
#else
#define INTDIM_API
#endif

/* ====================================================================================
 * Version
 * ==================================================================================== */
#define INTDIM_VERSION_MAJOR 0
#define INTDIM_VERSION_MINOR 1
#define INTDIM_VERSION_PATCH 0
#define INTDIM_VERSION_NUMBER \
    (INTDIM_VERSION_MAJOR * 10000 + INTDIM_VERSION_MINOR * 100 + INTDIM_VERSION_PATCH)
#define INTDIM_VERSION_STRING "0.1.0"

/* The runtime library's version: MAJOR*10000 + MINOR*100 + PATCH. */
INTDIM_API unsigned intdim_version(void);
/* The runtime library's version as "MAJOR.MINOR.PATCH" (static storage). */
INTDIM_API const char *intdim_version_string(void);

/* ====================================================================================
 * Status codes (append-only)
 * ==================================================================================== */
typedef enum {
    INTDIM_OK = 0,
    INTDIM_EINVAL = -1,       /* an argument is NULL, zero, out of range, or inconsistent */
    INTDIM_ENOMEM = -2,       /* an allocation failed */
    INTDIM_ETOOBIG = -3,      /* the request exceeds a size limit or the memory budget */
    INTDIM_ECALLBACK = -4,    /* a host callback returned non-zero */
    INTDIM_ENONFINITE = -5,   /* a callback produced NaN or Inf (loss, gradient or metric) */
    INTDIM_EIO = -6,          /* open/read/write/fsync/rename failed (errno in the message) */
    INTDIM_EFORMAT = -7,      /* a file is truncated, corrupt, or not of the expected kind */
    INTDIM_EMISMATCH = -8,    /* a file is valid but describes another model/projection/search */
    INTDIM_ESTATE = -9,       /* the call is not valid in the handle's current state */
    INTDIM_EUNSUPPORTED = -10,/* valid request this build or CPU does not support */
    INTDIM_EINTERRUPTED = -11,/* a progress callback asked to stop */
    INTDIM_ENOTFOUND = -12    /* an id (e.g. a trial id) the handle does not know */
} intdim_status;

/* Static, never-NULL description of a status ("unknown status" for others). */
INTDIM_API const char *intdim_strerror(int status);
/* This thread's message: the detail of its last failure, or a "warning: ..." that a
 * successful call left (a journal repaired on load, merged journals that disagreed, a
 * negative baseline). A call that succeeds without a warning leaves the message as it
 * was, so to know whether one call wrote it, call intdim_clear_error() first. "" when
 * nothing was written since the thread began or the last clear. Never NULL; valid until
 * the next call on the same thread writes or clears it. */
INTDIM_API const char *intdim_last_error(void);
/* Empties this thread's message: intdim_last_error() returns "" until a call writes it. */
INTDIM_API void intdim_clear_error(void);

/* Value of a named public constant (enum value or macro), for FFI: e.g.
 * intdim_constant("INTDIM_PROJ_FASTFOOD", &v). Returns INTDIM_OK or INTDIM_ENOTFOUND. */
INTDIM_API int intdim_constant(const char *name, int64_t *value);

/* ====================================================================================
 * Memory
 * ==================================================================================== */
typedef void *(*intdim_alloc_fn)(void *user, size_t size);
typedef void (*intdim_free_fn)(void *user, void *ptr);

/* Route every allocation of the library through (alloc, free, user). Pass NULL, NULL to
 * restore malloc/free. Global; not thread-safe: call it when no handle exists (memory is
 * always freed through the hook that allocated it). alloc may return NULL: every public
 * function then fails with INTDIM_ENOMEM and leaks nothing. */
INTDIM_API int intdim_set_allocator(intdim_alloc_fn alloc, intdim_free_fn free_fn, void *user);

/* ====================================================================================
 * Projections:  delta = P(theta_d),  theta = theta0 + delta
 * ==================================================================================== */
typedef struct intdim_proj intdim_proj;

typedef enum {
    INTDIM_PROJ_IDENTITY = 0, /* d == D, P = I: full training through the same code path */
    INTDIM_PROJ_DENSE = 1,    /* Gaussian, unit-norm columns, CBLAS sgemv */
    INTDIM_PROJ_SPARSE = 2,   /* very sparse random projection, density 1/sqrt(D) default */
    INTDIM_PROJ_FASTFOOD = 3  /* H G Pi H B, padded to L = 2^ceil(log2 D), unit-norm columns */
} intdim_proj_kind;

/* Creation parameters for intdim_proj_create_ex (key/value arrays) and runtime ones for
 * intdim_proj_set. Values are doubles; integers are exact up to 2^53. */
typedef enum {
    INTDIM_PROJ_SPARSE_DENSITY = 0,   /* create, SPARSE only (other kinds: EINVAL unless 0):
                                         fraction of nonzeros, 0 = 1/sqrt(D). (0, 1] */
    INTDIM_PROJ_MEMORY_BUDGET = 1,    /* create: max bytes of projection state; default 8 GiB */
    INTDIM_PROJ_FASTFOOD_PER_GROUP = 2,/* create: 1 = one Fastfood block per group (Aghajanyan);
                                          blocks are stacked when d > L_group, never truncated */
    INTDIM_PROJ_SAID = 3,             /* create: 1 = one trainable scale per group (SAID) */
    INTDIM_PROJ_THREADS = 4,          /* runtime: threads for apply/vjp; 0 = all available */
    INTDIM_PROJ_KERNEL = 5,           /* runtime: transform kernel: 0 auto, 1 portable, 2 AVX2,
                                          3 AVX-512 (INTDIM_EUNSUPPORTED if the CPU lacks it) */
    INTDIM_PROJ_FASTFOOD_BLOCK = 6,   /* create: 0 (default) = one Fastfood block of
                                          L = nextpow2(D), REFERENCE's form; B = a power of two
                                          in [2, 2^32]: D cut into contiguous chunks of B rows,
                                          each its own block (Le et al.'s stacked Fastfood; the
                                          same P as FASTFOOD_PER_GROUP with those chunks as
                                          groups). Groups stay free for SAID. Not together
                                          with FASTFOOD_PER_GROUP. */
    INTDIM_PROJ_FASTFOOD_TABLES = 7   /* read-only (get): 1 when the projection was made from
                                          explicit tables (intdim_proj_create_fastfood_tables):
                                          it has no seed (intdim_checkpoint_proj cannot rebuild
                                          it; trainer checkpoints hold a hash of its tables). */
} intdim_proj_param;

/* Kernel ids for INTDIM_PROJ_KERNEL. */
#define INTDIM_KERNEL_AUTO 0
#define INTDIM_KERNEL_PORTABLE 1
#define INTDIM_KERNEL_AVX2 2
#define INTDIM_KERNEL_AVX512 3

/* Plain projection P: R^d -> R^D. d <= D; IDENTITY needs d == D.
 * Returns INTDIM_EINVAL (NULL out, D == 0, d == 0, d > D, unknown kind), INTDIM_ETOOBIG
 * (state over the memory budget, D over 2^40, or Fastfood with nextpow2(D) over 2^32),
 * INTDIM_ENOMEM. *out is NULL on failure.
 * The projection is a pure function of (kind, D, d, seed, groups, parameters). */
INTDIM_API int intdim_proj_create(intdim_proj **out, intdim_proj_kind kind, size_t D, size_t d,
                                  uint64_t seed);

/* SAID: theta_i = theta0_i + lambda_{g(i)} * P(theta_{d-m})_i with m = n_groups contiguous
 * groups of the given sizes (summing to D). d counts both: P maps d - m coordinates, the last
 * m entries of theta_d are the scales. Needs 1 <= m < d. */
INTDIM_API int intdim_proj_create_said(intdim_proj **out, intdim_proj_kind kind, size_t D,
                                       size_t d, size_t n_groups, const size_t *group_sizes,
                                       uint64_t seed);

/* General form: groups (n_groups may be 0 with group_sizes NULL) and n_params creation
 * parameters given as parallel arrays (param_ids[i], param_values[i]). Groups are used by
 * SAID and by per-group Fastfood. */
INTDIM_API int intdim_proj_create_ex(intdim_proj **out, intdim_proj_kind kind, size_t D,
                                     size_t d, uint64_t seed, size_t n_groups,
                                     const size_t *group_sizes, size_t n_params,
                                     const int *param_ids, const double *param_values);

INTDIM_API void intdim_proj_destroy(intdim_proj *p); /* NULL is fine */

/* What the projection is (0 for a NULL p; intdim_proj_kind_of: INTDIM_EINVAL and a message). */
INTDIM_API size_t intdim_proj_D(const intdim_proj *p); /* output length D */
INTDIM_API size_t intdim_proj_d(const intdim_proj *p); /* trainable length, SAID scales included */
INTDIM_API size_t intdim_proj_n_groups(const intdim_proj *p); /* 0 without groups */
INTDIM_API size_t intdim_proj_n_scales(const intdim_proj *p); /* m for SAID, else 0 */
INTDIM_API int intdim_proj_kind_of(const intdim_proj *p);    /* an intdim_proj_kind */
INTDIM_API uint64_t intdim_proj_seed(const intdim_proj *p);  /* the seed it was created with */
/* Bytes of state the handle holds (tables, matrices, workspace). */
INTDIM_API size_t intdim_proj_bytes(const intdim_proj *p);
/* Copy the group sizes into sizes[0..n) (n >= n_groups). */
INTDIM_API int intdim_proj_group_sizes(const intdim_proj *p, size_t *sizes, size_t n);

/* set: the runtime parameters (THREADS, KERNEL), at any time but not during another call on
 * the same handle; the others are creation parameters (intdim_proj_create_ex) and set
 * refuses them (INTDIM_EINVAL), as it refuses values out of range; a kernel this CPU lacks
 * is INTDIM_EUNSUPPORTED. get reads any parameter: KERNEL gives the kernel in use (AUTO
 * resolved to the one chosen for this CPU), SPARSE_DENSITY the density in use (0 resolved
 * to 1/sqrt(D); what a checkpoint stores). param_bounds: the range set and create_ex
 * accept (either pointer may be NULL); a parameter's comment above names values inside it
 * that are still refused (FASTFOOD_BLOCK: 0 or a power of two). Unknown param: EINVAL. */
INTDIM_API int intdim_proj_set(intdim_proj *p, int param, double value);
INTDIM_API int intdim_proj_get(const intdim_proj *p, int param, double *value);
INTDIM_API int intdim_proj_param_bounds(int param, double *lo, double *hi);

/* Initial theta_d: zeros, SAID scales 1 (so training starts at theta0). */
INTDIM_API int intdim_proj_init_theta(const intdim_proj *p, float *theta_d);

/* delta_D = P(theta_d). Thread-safe on a const handle; deterministic bit for bit from the
 * seed whatever the thread count or kernel (DENSE: for a given BLAS build and CPU, since
 * its sgemv kernel is chosen per CPU; docs/math.md). delta_D must not overlap theta_d
 * (INTDIM_EINVAL). */
INTDIM_API int intdim_proj_apply(const intdim_proj *p, const float *theta_d, float *delta_D);

/* g_d = (d delta / d theta_d)^T g_D: the exact adjoint P^T g_D for linear kinds (theta_d
 * is then ignored and may be NULL); for SAID also the scales' gradients. Thread-safe. g_d
 * must not overlap g_D, nor theta_d for SAID (INTDIM_EINVAL). */
INTDIM_API int intdim_proj_vjp(const intdim_proj *p, const float *theta_d, const float *g_D,
                               float *g_d);

/* REFERENCE's single-block Fastfood from explicit tables, to reproduce a run of the
 * reference code (PyTorch) with its own draws: y = H (G * gather(H (B * pad(x)), Pi)),
 * output y[0:D] / sqrt(D * sum G^2). Each table has L = nextpow2(D) entries: B[i] is +1 or
 * -1 (only B[0..d) matter: x is zero-padded), Pi is a permutation of 0..L-1 (out[i] =
 * in[Pi[i]], e.g. torch.randperm), G[i] finite with |G[i]| <= 2^64 and sum G^2 > 0 such
 * that the scale 1 / sqrt(D * sum G^2) is a normal float (G's own scale does not change the
 * projection). The tables are copied. G is kept as given: in binary16 when every entry is
 * exactly a binary16 value (as the tables of a seeded projection are), else in float32 (2
 * more bytes per entry to stream). The projection is the exact formula with the library's
 * adjoint and float rounding; intdim_proj_seed returns 0. A trainer checkpoint stores a
 * hash of the tables instead of a seed: it loads into a trainer over a projection made from
 * the same tables (keep them), and intdim_checkpoint_proj refuses it (INTDIM_EUNSUPPORTED).
 * Returns INTDIM_EINVAL (NULL pointer, D == 0, d == 0, d > D, L != nextpow2(D), a B entry
 * not +-1, Pi not a permutation, G not finite, too large, all zero or too small for the
 * scale), INTDIM_ETOOBIG, INTDIM_ENOMEM. */
INTDIM_API int intdim_proj_create_fastfood_tables(intdim_proj **out, size_t D, size_t d,
                                                  size_t L, const float *B, const int64_t *Pi,
                                                  const float *G);

/* The tables of a seeded single-block Fastfood projection (plain or SAID; not per-group or
 * stacked blocks, nor one made from tables), L = nextpow2(D) entries each, in the form
 * intdim_proj_create_fastfood_tables takes: B (+-1; entries from d on are drawn as well),
 * the whole permutation Pi, and G as the projection uses it (binary16 values, widened).
 * So a PyTorch reference can run the very projection a seed denotes. INTDIM_EINVAL (NULL,
 * wrong L), INTDIM_EUNSUPPORTED (another kind or layout). Allocates nothing. */
INTDIM_API int intdim_proj_fastfood_tables(const intdim_proj *p, float *B, int64_t *Pi,
                                           float *G, size_t L);

/* ====================================================================================
 * Host callbacks
 * ==================================================================================== */
/* Loss and gradient at theta (the host's own buffer, length D, already holding
 * theta0 + P(theta_d)). Write dloss/dtheta into grad (length D) and the loss into *loss.
 * `step` is the optimizer step (0-based): hosts pick their minibatch from it.
 * Return 0, or non-zero to stop (-> INTDIM_ECALLBACK). */
typedef int (*intdim_grad_fn)(void *user, uint64_t step, const float *theta, float *grad,
                              double *loss);
/* A metric at theta, higher is better (e.g. accuracy). Return 0 or non-zero to stop. */
typedef int (*intdim_eval_fn)(void *user, const float *theta, double *metric);
/* Progress during intdim_trainer_run: return non-zero to stop (-> INTDIM_EINTERRUPTED).
 * metric is NaN when no evaluation happened at this step. */
typedef int (*intdim_progress_fn)(void *user, uint64_t step, double loss, double metric);

/* ====================================================================================
 * Subspace trainer: owns theta_d and the optimizer state
 * ==================================================================================== */
typedef struct intdim_trainer intdim_trainer;

typedef enum {
    INTDIM_TRAIN_OPTIMIZER = 0,    /* INTDIM_OPT_* ; default ADAM */
    INTDIM_TRAIN_LR = 1,           /* peak learning rate; default 1e-3 */
    INTDIM_TRAIN_MOMENTUM = 2,     /* SGD momentum; default 0 */
    INTDIM_TRAIN_NESTEROV = 3,     /* 0/1; default 0 */
    INTDIM_TRAIN_BETA1 = 4,        /* default 0.9 */
    INTDIM_TRAIN_BETA2 = 5,        /* default 0.999 */
    INTDIM_TRAIN_EPS = 6,          /* default 1e-8 */
    INTDIM_TRAIN_WEIGHT_DECAY = 7, /* decoupled for ADAMW, L2 on theta_d for SGD/ADAM; default 0 */
    INTDIM_TRAIN_SCHEDULE = 8,     /* INTDIM_SCHED_* ; default CONSTANT */
    INTDIM_TRAIN_WARMUP_STEPS = 9, /* linear warm-up from 0; default 0 */
    INTDIM_TRAIN_TOTAL_STEPS = 10, /* horizon of LINEAR/COSINE decay; required by them */
    INTDIM_TRAIN_CLIP_NORM = 11,   /* clip ||g_d||_2 to this; 0 = off (default) */
    INTDIM_TRAIN_LAMBDA_LR = 12,   /* separate peak lr for SAID scales; 0 = same as LR */
    INTDIM_TRAIN_NONFINITE = 13,   /* INTDIM_NONFINITE_* ; default STOP */
    INTDIM_TRAIN_EVAL_EVERY = 14,  /* intdim_trainer_run: evaluate every K steps; 0 = end only */
    INTDIM_TRAIN_MIN_LR_RATIO = 15 /* decay floor as a fraction of LR; default 0 */
} intdim_train_param;

#define INTDIM_OPT_SGD 0
#define INTDIM_OPT_ADAM 1
#define INTDIM_OPT_ADAMW 2
#define INTDIM_SCHED_CONSTANT 0
#define INTDIM_SCHED_LINEAR 1 /* warm-up then linear decay to MIN_LR_RATIO * LR */
#define INTDIM_SCHED_COSINE 2 /* warm-up then cosine decay to MIN_LR_RATIO * LR */
#define INTDIM_NONFINITE_STOP 0 /* restore last finite theta_d, return INTDIM_ENONFINITE */
#define INTDIM_NONFINITE_SKIP 1 /* skip the step (counted), keep training */

/* Flags for intdim_trainer_create. */
#define INTDIM_TRAINER_BORROW_THETA0 1u /* do not copy theta0: it must outlive the trainer */

/* A trainer for projection p (borrowed: p must outlive the trainer).
 * theta: the host's parameter buffer (length D); the library writes theta0 + P(theta_d)
 *   into it before every callback (zero-copy for hosts whose tensors view one buffer).
 * theta0: the base point (length D); NULL means "the current contents of theta".
 *   Copied unless flags has INTDIM_TRAINER_BORROW_THETA0.
 * grad: buffer for the callback's gradient (length D); NULL = the library allocates one.
 * theta_d starts at intdim_proj_init_theta. */
INTDIM_API int intdim_trainer_create(intdim_trainer **out, const intdim_proj *p, float *theta,
                                     const float *theta0, float *grad, unsigned flags,
                                     intdim_grad_fn grad_fn, void *user);
/* NULL is fine. Called from a callback of the trainer's own step, run or evaluate, it only
 * marks the trainer: that call stops (run: INTDIM_EINTERRUPTED) and frees it on return.
 * From such a callback, calls that change the trainer (step, run, evaluate, sync, set,
 * set_theta_d, reset, load) fail with INTDIM_ESTATE; reads and save are allowed. */
INTDIM_API void intdim_trainer_destroy(intdim_trainer *t);

/* Settings (intdim_train_param). set checks the range and, for counts and choices, that
 * the value is whole (INTDIM_EINVAL with the parameter's name in the message); a setting
 * applies from the next step. Combinations are checked when a step or run starts (COSINE
 * or LINEAR without TOTAL_STEPS: INTDIM_ESTATE). get reads the current value.
 * param_bounds: the range set accepts (either pointer may be NULL). */
INTDIM_API int intdim_trainer_set(intdim_trainer *t, int param, double value);
INTDIM_API int intdim_trainer_get(const intdim_trainer *t, int param, double *value);
INTDIM_API int intdim_trainer_param_bounds(int param, double *lo, double *hi);

/* One optimizer step: write theta, call grad_fn, g_d = vjp, clip, update theta_d.
 * On any failure (INTDIM_ECALLBACK, INTDIM_ENONFINITE with STOP, INTDIM_ESTATE for settings
 * that cannot run, INTDIM_ENOMEM) theta_d, optimizer state and step are those before the
 * call, and the host buffer holds theta0 + P(theta_d). After a successful step the buffer
 * still holds the theta the gradient was taken at. *loss may be NULL. */
INTDIM_API int intdim_trainer_step(intdim_trainer *t, double *loss);

/* n_steps steps, evaluating with eval_fn every INTDIM_TRAIN_EVAL_EVERY steps and at the
 * end (eval_fn may be NULL). *final_metric (may be NULL) gets the last evaluation (NaN if
 * none). Stops at the first error, with the state of intdim_trainer_step's contract. When
 * it returns, whatever the status, the host buffer holds theta0 + P(theta_d) for the
 * trainer's current theta_d (after intdim_trainer_step alone it is one update behind:
 * call intdim_trainer_sync). */
INTDIM_API int intdim_trainer_run(intdim_trainer *t, uint64_t n_steps, intdim_eval_fn eval_fn,
                                  void *eval_user, intdim_progress_fn progress,
                                  void *progress_user, double *final_metric);

/* Write theta0 + P(theta_d) into the host buffer, then eval_fn(theta). */
INTDIM_API int intdim_trainer_evaluate(intdim_trainer *t, intdim_eval_fn eval_fn, void *user,
                                       double *metric);
/* Write theta0 + P(theta_d) into the host buffer. */
INTDIM_API int intdim_trainer_sync(intdim_trainer *t);
/* theta_d back to its initial value, optimizer state cleared, step 0. Settings kept. */
INTDIM_API int intdim_trainer_reset(intdim_trainer *t);

INTDIM_API size_t intdim_trainer_d(const intdim_trainer *t); /* length of theta_d; 0 for NULL */
/* Steps taken since creation or reset (skipped non-finite steps count; a loaded checkpoint
 * brings its count). 0 for NULL. */
INTDIM_API uint64_t intdim_trainer_steps_done(const intdim_trainer *t);
/* Copy theta_d (SAID: the d - m coordinates, then the m scales) into out[0..d); n is out's
 * length and must be >= d (INTDIM_EINVAL otherwise). */
INTDIM_API int intdim_trainer_get_theta_d(const intdim_trainer *t, float *out, size_t n);
/* Replace theta_d by in[0..n), n == d, every entry finite (INTDIM_EINVAL otherwise). The
 * optimizer state and step count stay; the host buffer follows at the next step, sync or
 * evaluate. */
INTDIM_API int intdim_trainer_set_theta_d(intdim_trainer *t, const float *in, size_t n);

/* Checkpoints (format in docs/checkpoint.md): theta_d, the projection's full description,
 * optimizer settings, state and step, and a hash of theta0. Written atomically (temporary
 * file, fsync, rename). load refuses (INTDIM_EFORMAT, INTDIM_EMISMATCH, INTDIM_EIO) a
 * truncated/corrupt file or one for another projection or theta0, leaving t untouched. */
INTDIM_API int intdim_trainer_save(const intdim_trainer *t, const char *path);
INTDIM_API int intdim_trainer_load(intdim_trainer *t, const char *path);
/* Recreate the projection a checkpoint was trained with (a model = seed + d floats). */
INTDIM_API int intdim_checkpoint_proj(intdim_proj **out, const char *path);

/* ====================================================================================
 * d90 search
 * ==================================================================================== */
typedef struct intdim_search intdim_search;

typedef enum {
    INTDIM_SEARCH_STRATEGY = 0,   /* INTDIM_STRATEGY_* ; default GRID */
    INTDIM_SEARCH_FRACTION = 1,   /* target fraction of the baseline; default 0.9 */
    INTDIM_SEARCH_BASELINE = 2,   /* given baseline metric; NaN (default) = measure it with
                                     IDENTITY trials (d = D) using the same trainer */
    INTDIM_SEARCH_SEEDS = 3,      /* seeds per (d, lr); default 1 */
    INTDIM_SEARCH_D_MIN = 4,      /* log-spaced d grid: smallest d; default 10 */
    INTDIM_SEARCH_D_MAX = 5,      /* largest d; default min(10000, D) */
    INTDIM_SEARCH_N_D = 6,        /* number of log-spaced values (deduplicated); default 20 */
    INTDIM_SEARCH_KIND = 7,       /* projection kind of the trials; default FASTFOOD */
    INTDIM_SEARCH_SAID = 8,       /* 0/1: SAID over KIND with the groups set; default 0 */
    INTDIM_SEARCH_BASE_SEED = 9,  /* seeds are derived from it; default 0; at most 2^53 (it
                                     is set through a double, exact up to there) */
    INTDIM_SEARCH_BOOTSTRAP = 10, /* bootstrap resamples for d90's spread; default 100 */
    INTDIM_SEARCH_STEPS = 11,     /* optimizer steps per trial (local runner); default 1000 */
    INTDIM_SEARCH_PARALLEL = 12,  /* max trials outstanding from ask; default 1 */
    INTDIM_SEARCH_FASTFOOD_BLOCK = 13 /* Fastfood trials in stacked blocks of this many rows
                                         (INTDIM_PROJ_FASTFOOD_BLOCK, a power of two >= 2);
                                         default 0 = one block. Hosts that build trial
                                         projections themselves read it here. */
} intdim_search_param;

#define INTDIM_STRATEGY_GRID 0
#define INTDIM_STRATEGY_ADAPTIVE 1

/* What intdim_search_ask hands out. */
#define INTDIM_ASK_TRIAL 0 /* a trial to run: fill in and tell */
#define INTDIM_ASK_WAIT 1  /* nothing to run until outstanding trials are told */
#define INTDIM_ASK_DONE 2  /* the search is finished: read the result */

/* A search for a model with D parameters. */
INTDIM_API int intdim_search_create(intdim_search **out, size_t D);
/* NULL is fine. Called from a callback of the search's own intdim_search_run, it only marks
 * the search: the run stops (INTDIM_EINTERRUPTED) and frees it on return. From such a
 * callback, set, ask, tell, open_journal and run fail with INTDIM_ESTATE. */
INTDIM_API void intdim_search_destroy(intdim_search *s);

/* Settings (intdim_search_param). set checks range and whole numbers (INTDIM_EINVAL, the
 * parameter named in the message) and, once the plan is frozen (first ask, open_journal),
 * refuses all but PARALLEL and BOOTSTRAP (INTDIM_ESTATE; BOOTSTRAP also while a journal is
 * open, since its header holds it). get reads the value in force: D_MAX's default 0 reads
 * as min(10000, D). param_bounds: the range set accepts (either pointer may be
 * NULL); KIND's excludes IDENTITY (the search runs the baseline itself), FASTFOOD_BLOCK
 * takes 0 or a power of two. */
INTDIM_API int intdim_search_set(intdim_search *s, int param, double value);
INTDIM_API int intdim_search_get(const intdim_search *s, int param, double *value);
INTDIM_API int intdim_search_param_bounds(int param, double *lo, double *hi);
/* Explicit d values (replaces the log-spaced grid); sorted and deduplicated. */
INTDIM_API int intdim_search_set_d_list(intdim_search *s, const size_t *ds, size_t n);
/* Learning rates to try; the best (highest mean eval metric) per d counts. Default {1e-3}. */
INTDIM_API int intdim_search_set_lrs(intdim_search *s, const double *lrs, size_t n);
/* Groups for SAID (contiguous, summing to D). */
INTDIM_API int intdim_search_set_groups(intdim_search *s, const size_t *sizes, size_t n_groups);
/* Trainer settings applied to every trial (any intdim_train_param but LR). */
INTDIM_API int intdim_search_set_train_param(intdim_search *s, int train_param, double value);
/* What the host trains on, which the configuration cannot see (the model, its data, a
 * problem's seed): a label of 1 to 48 characters from [A-Za-z0-9._+:=,/-], journaled with
 * the configuration, so resuming or merging a journal written with another label fails
 * with INTDIM_EMISMATCH like any other configuration mismatch. "" (the default) = none.
 * INTDIM_EINVAL for other text, INTDIM_ESTATE once the plan is frozen. */
INTDIM_API int intdim_search_set_label(intdim_search *s, const char *label);
/* The label ("" when none, or for NULL); valid until the search is destroyed. */
INTDIM_API const char *intdim_search_label(const intdim_search *s);

/* Ask/tell. ask sets *what (INTDIM_ASK_*); for a trial it fills id, d, kind (an
 * intdim_proj_kind; IDENTITY with d = D for baseline trials), said (0/1), lr and seed.
 * tell records a finished trial; trial_status is INTDIM_OK or the trial's failure status
 * (a failed trial counts as metric -inf). Telling an unknown id (any id before the plan
 * exists: the first ask or open_journal makes it) -> INTDIM_ENOTFOUND, an id of the plan
 * told twice or never asked -> INTDIM_ESTATE. */
INTDIM_API int intdim_search_ask(intdim_search *s, int *what, uint64_t *trial_id, size_t *d,
                                 int *kind, int *said, double *lr, uint64_t *seed);
INTDIM_API int intdim_search_tell(intdim_search *s, uint64_t trial_id, double train_metric,
                                  double eval_metric, uint64_t steps, double seconds,
                                  int trial_status);

/* Journal: append every told trial to a plain-text file, flushed and fsync'd per row.
 * An existing journal is validated against the configuration (INTDIM_EMISMATCH /
 * INTDIM_EFORMAT) and replayed: its trials are not asked again. A torn last line is
 * dropped with a warning in intdim_last_error(). Call after configuring, before ask. */
INTDIM_API int intdim_search_open_journal(intdim_search *s, const char *path);
/* A search rebuilt from a journal's header and rows (for reports). */
INTDIM_API int intdim_search_from_journal(intdim_search **out, const char *path);
/* Merge journals of the same search written by separate processes into one. */
INTDIM_API int intdim_journal_merge(const char *const *inputs, size_t n_inputs,
                                    const char *output);

/* Progress of a local run: trials finished, total planned (an upper bound for ADAPTIVE),
 * the trial just finished and an estimate of seconds left. Non-zero stops the run. */
typedef int (*intdim_search_progress_fn)(void *user, size_t done, size_t total, size_t d,
                                         double lr, double eval_metric, double seconds_left);

/* Run the search locally: for every asked trial, build the projection, a trainer over the
 * host buffer theta (theta0 as in intdim_trainer_create), train INTDIM_SEARCH_STEPS steps
 * with grad_fn, then measure train_fn (may be NULL) and eval_fn, and tell. Resumable with
 * a journal. Stops with INTDIM_EINTERRUPTED if progress returns non-zero. Whatever the
 * status, theta holds theta0 again on return (so a second call, e.g. to resume, starts
 * from the same point). */
INTDIM_API int intdim_search_run(intdim_search *s, float *theta, const float *theta0,
                                 intdim_grad_fn grad_fn, intdim_eval_fn train_fn,
                                 intdim_eval_fn eval_fn, void *user,
                                 intdim_search_progress_fn progress, void *progress_user);

/* Run one asked trial exactly as intdim_search_run does (projection, trainer with the
 * search's trainer settings, STEPS steps, then train_fn (may be NULL) and eval_fn), without
 * telling it: for hosts that distribute trials (MPI ranks, job arrays) and tell elsewhere.
 * theta0 must not be NULL nor theta itself here (it is borrowed, and theta is overwritten
 * with theta0 + P(theta_d)): INTDIM_EINVAL. A diverged trial is a result, not an error: it returns
 * INTDIM_OK with *trial_status = INTDIM_ENONFINITE and *eval_metric = -inf. Other failures
 * (bad configuration, memory, a callback asking to stop) return their status. */
INTDIM_API int intdim_search_run_trial(const intdim_search *s, float *theta, const float *theta0,
                                       intdim_grad_fn grad_fn, intdim_eval_fn train_fn,
                                       intdim_eval_fn eval_fn, void *user, size_t d, int kind,
                                       int said, double lr, uint64_t seed, double *train_metric,
                                       double *eval_metric, uint64_t *steps, double *seconds,
                                       int *trial_status);

/* Results. d90: the smallest d whose mean eval metric (best lr) is strictly greater than
 * fraction * baseline (a rule for a higher-is-better metric with a positive baseline, such
 * as an accuracy; a negative baseline leaves a warning in intdim_last_error()); *reached = 0
 * ("not reached", *d90 = 0) if none. lo/hi: bootstrap
 * 5%..95% over seeds (equal to d90 with one seed; 0 where not reached). Any out pointer
 * may be NULL. INTDIM_ESTATE before the plan exists (no ask or open_journal yet), while
 * the baseline is unknown, or if every baseline trial failed. */
INTDIM_API int intdim_search_result(const intdim_search *s, size_t *d90, int *reached,
                                    double *baseline, size_t *d90_lo, size_t *d90_hi);
/* Trials told so far (replayed journal rows included); 0 for NULL. */
INTDIM_API size_t intdim_search_trials_done(const intdim_search *s);
/* 1 when the search needs no more trials: every planned trial is told (grid), or the
 * adaptive bracket is closed. 0 otherwise (a shard's journal, an interrupted run), or before
 * the plan is frozen, or for NULL; the d90 of an incomplete search is provisional. */
INTDIM_API int intdim_search_complete(const intdim_search *s);
/* The D the search was created with (or read from its journal): the length every theta and
 * theta0 given to intdim_search_run / run_trial must have. 0 for NULL. */
INTDIM_API size_t intdim_search_D(const intdim_search *s);
/* Table rows: one per d with at least one finished trial, ascending d. For row i (from 0;
 * INTDIM_ENOTFOUND past the last): d; the best learning rate, i.e. the highest mean eval
 * metric among the lrs whose seeds are all finished (while none is, among the finished
 * seeds of each); that mean; its standard deviation over seeds (spread; 0 with one seed);
 * the seeds it counts; and pass = 1 when some lr has all its seeds finished, the baseline
 * is known and the best such mean > FRACTION * baseline (the d90 rule; an adaptive search
 * stops running a d's other lrs once one passes). Out pointers may be NULL. */
INTDIM_API size_t intdim_search_n_points(const intdim_search *s);
INTDIM_API int intdim_search_point(const intdim_search *s, size_t i, size_t *d, double *best_lr,
                                   double *mean, double *spread, size_t *n_seeds, int *pass);

#ifdef __cplusplus
}
#endif
#endif /* INTDIM_H */
