/* Status strings, the per-thread detailed message, and named constants for FFI. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local char g_message[512];

INTDIM_API const char *intdim_strerror(int status)
{
    switch (status) {
    case INTDIM_OK: return "success";
    case INTDIM_EINVAL: return "invalid argument";
    case INTDIM_ENOMEM: return "out of memory";
    case INTDIM_ETOOBIG: return "size exceeds a limit or the memory budget";
    case INTDIM_ECALLBACK: return "a host callback reported an error";
    case INTDIM_ENONFINITE: return "non-finite value (NaN or Inf) from a callback";
    case INTDIM_EIO: return "input/output error";
    case INTDIM_EFORMAT: return "file is truncated, corrupt or of the wrong kind";
    case INTDIM_EMISMATCH: return "file describes a different model, projection or search";
    case INTDIM_ESTATE: return "call not valid in the current state";
    case INTDIM_EUNSUPPORTED: return "not supported by this build or CPU";
    case INTDIM_EINTERRUPTED: return "interrupted by a callback";
    case INTDIM_ENOTFOUND: return "unknown id or name";
    default: return "unknown status";
    }
}

INTDIM_API const char *intdim_last_error(void)
{
    return g_message;
}

INTDIM_API void intdim_clear_error(void)
{
    g_message[0] = '\0';
}

int intdim__fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_message, sizeof g_message, fmt, ap);
    va_end(ap);
    return status;
}

int intdim__fail_in(const char *fn, int status)
{
    char message[sizeof g_message];
    memcpy(message, g_message, sizeof message);
    return intdim__fail(status, "%s: %s", fn, message);
}

int intdim__fail_nomem(const char *what, size_t bytes)
{
    return intdim__fail(INTDIM_ENOMEM, "out of memory allocating %s (%zu bytes)", what, bytes);
}

struct named_constant {
    const char *name;
    int64_t value;
};

#define C(x) { #x, (int64_t)(x) }
static const struct named_constant g_constants[] = {
    C(INTDIM_VERSION_MAJOR), C(INTDIM_VERSION_MINOR), C(INTDIM_VERSION_PATCH),
    C(INTDIM_VERSION_NUMBER),
    C(INTDIM_OK), C(INTDIM_EINVAL), C(INTDIM_ENOMEM), C(INTDIM_ETOOBIG), C(INTDIM_ECALLBACK),
    C(INTDIM_ENONFINITE), C(INTDIM_EIO), C(INTDIM_EFORMAT), C(INTDIM_EMISMATCH),
    C(INTDIM_ESTATE), C(INTDIM_EUNSUPPORTED), C(INTDIM_EINTERRUPTED), C(INTDIM_ENOTFOUND),
    C(INTDIM_PROJ_IDENTITY), C(INTDIM_PROJ_DENSE), C(INTDIM_PROJ_SPARSE),
    C(INTDIM_PROJ_FASTFOOD),
    C(INTDIM_PROJ_SPARSE_DENSITY), C(INTDIM_PROJ_MEMORY_BUDGET),
    C(INTDIM_PROJ_FASTFOOD_PER_GROUP), C(INTDIM_PROJ_SAID), C(INTDIM_PROJ_THREADS),
    C(INTDIM_PROJ_KERNEL), C(INTDIM_PROJ_FASTFOOD_BLOCK), C(INTDIM_PROJ_FASTFOOD_TABLES),
    C(INTDIM_KERNEL_AUTO), C(INTDIM_KERNEL_PORTABLE), C(INTDIM_KERNEL_AVX2),
    C(INTDIM_KERNEL_AVX512),
    C(INTDIM_TRAIN_OPTIMIZER), C(INTDIM_TRAIN_LR), C(INTDIM_TRAIN_MOMENTUM),
    C(INTDIM_TRAIN_NESTEROV), C(INTDIM_TRAIN_BETA1), C(INTDIM_TRAIN_BETA2), C(INTDIM_TRAIN_EPS),
    C(INTDIM_TRAIN_WEIGHT_DECAY), C(INTDIM_TRAIN_SCHEDULE), C(INTDIM_TRAIN_WARMUP_STEPS),
    C(INTDIM_TRAIN_TOTAL_STEPS), C(INTDIM_TRAIN_CLIP_NORM), C(INTDIM_TRAIN_LAMBDA_LR),
    C(INTDIM_TRAIN_NONFINITE), C(INTDIM_TRAIN_EVAL_EVERY), C(INTDIM_TRAIN_MIN_LR_RATIO),
    C(INTDIM_OPT_SGD), C(INTDIM_OPT_ADAM), C(INTDIM_OPT_ADAMW),
    C(INTDIM_SCHED_CONSTANT), C(INTDIM_SCHED_LINEAR), C(INTDIM_SCHED_COSINE),
    C(INTDIM_NONFINITE_STOP), C(INTDIM_NONFINITE_SKIP), C(INTDIM_TRAINER_BORROW_THETA0),
    C(INTDIM_SEARCH_STRATEGY), C(INTDIM_SEARCH_FRACTION), C(INTDIM_SEARCH_BASELINE),
    C(INTDIM_SEARCH_SEEDS), C(INTDIM_SEARCH_D_MIN), C(INTDIM_SEARCH_D_MAX), C(INTDIM_SEARCH_N_D),
    C(INTDIM_SEARCH_KIND), C(INTDIM_SEARCH_SAID), C(INTDIM_SEARCH_BASE_SEED),
    C(INTDIM_SEARCH_BOOTSTRAP), C(INTDIM_SEARCH_STEPS), C(INTDIM_SEARCH_PARALLEL),
    C(INTDIM_SEARCH_FASTFOOD_BLOCK),
    C(INTDIM_STRATEGY_GRID), C(INTDIM_STRATEGY_ADAPTIVE),
    C(INTDIM_ASK_TRIAL), C(INTDIM_ASK_WAIT), C(INTDIM_ASK_DONE),
};
#undef C

INTDIM_API int intdim_constant(const char *name, int64_t *value)
{
    if (name == NULL || value == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_constant: NULL argument");
    for (size_t i = 0; i < sizeof g_constants / sizeof g_constants[0]; i++) {
        if (strcmp(g_constants[i].name, name) == 0) {
            *value = g_constants[i].value;
            return INTDIM_OK;
        }
    }
    return intdim__fail(INTDIM_ENOTFOUND, "intdim_constant: no constant named '%s'", name);
}
