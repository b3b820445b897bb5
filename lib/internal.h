/* Internal helpers shared by every file in lib/. Never installed. */
#ifndef INTDIM_INTERNAL_H
#define INTDIM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "intdim.h"

#if defined(__GNUC__)
#define INTDIM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define INTDIM_PRINTF(a, b)
#endif

/* ---- memory (alloc.c) -------------------------------------------------------------
 * Every allocation goes through the public hook. Blocks are 64-byte aligned (SIMD) and
 * sizes are checked for overflow. They return NULL without setting a message: callers
 * report INTDIM_ENOMEM with what they were allocating. */
void *intdim__alloc(size_t bytes);
void *intdim__calloc(size_t count, size_t size); /* zeroed; NULL on overflow */
void intdim__free(void *ptr);                    /* NULL is fine */
/* count * size, or SIZE_MAX on overflow. */
size_t intdim__mul_size(size_t count, size_t size);

/* ---- errors (status.c) ------------------------------------------------------------ */
/* Record a message for intdim_last_error() on this thread and return status. */
int intdim__fail(int status, const char *fmt, ...) INTDIM_PRINTF(2, 3);
/* status, with "fn: " put before this thread's current message (a helper's failure,
 * reported as the public function's). */
int intdim__fail_in(const char *fn, int status);
/* ENOMEM with a message naming what could not be allocated. */
int intdim__fail_nomem(const char *what, size_t bytes);

/* ---- counter-based random numbers (rng.c) ------------------------------------------
 * value = f(seed, stream, index): no state, so any thread can draw any index and the
 * result never depends on the order or the thread count. */
uint64_t intdim__rng_u64(uint64_t seed, uint64_t stream, uint64_t index);
double intdim__rng_uniform(uint64_t seed, uint64_t stream, uint64_t index); /* in (0, 1) */
float intdim__rng_gauss(uint64_t seed, uint64_t stream, uint64_t index);    /* N(0, 1) */
/* IEEE binary16 <-> float, exact and identical on every platform (half.c); the rounding is
 * to nearest, ties to even. */
float intdim__half_to_float(uint16_t h);
uint16_t intdim__float_to_half(float f);
float intdim__rng_sign(uint64_t seed, uint64_t stream, uint64_t index);     /* +-1 */
/* Uniform index in [0, n) without modulo bias (n >= 1). */
uint64_t intdim__rng_below(uint64_t seed, uint64_t stream, uint64_t index, uint64_t n);
/* A uniform permutation of 0..n-1 (Fisher-Yates driven by the counter generator). */
void intdim__rng_permutation_u32(uint32_t *perm, size_t n, uint64_t seed, uint64_t stream);
void intdim__rng_permutation_i64(int64_t *perm, size_t n, uint64_t seed, uint64_t stream);

/* Streams: each random table of a projection draws from its own stream so that tables
 * are independent and adding one never shifts another. Block b of a kind uses
 * stream + (b << 8). */
enum {
    INTDIM_STREAM_DENSE = 1,
    INTDIM_STREAM_SPARSE_PATTERN = 2,
    INTDIM_STREAM_SPARSE_SIGN = 3,
    INTDIM_STREAM_FF_B = 4,
    INTDIM_STREAM_FF_PI = 5,
    INTDIM_STREAM_FF_G = 6,
    INTDIM_STREAM_SEARCH = 7,
    INTDIM_STREAM_BOOTSTRAP = 8
};

/* ---- hashing and checksums (hash.c) ------------------------------------------------ */
uint32_t intdim__crc32(uint32_t crc, const void *buf, size_t n); /* IEEE, start with 0 */
uint64_t intdim__hash64(const void *buf, size_t n, uint64_t seed); /* not cryptographic */

/* ---- threads (threads.c) ----------------------------------------------------------- */
/* Threads to use for a request of `requested` (0 = all available); 1 without OpenMP. */
int intdim__threads(int requested);
/* The calling thread's number inside a parallel loop (0 outside one, or without OpenMP). */
int intdim__thread_num(void);

/* `for (size_t i = 0; i < n; i++) body` over nt threads when `cond` says the loop is worth
 * waking a team for, else a plain loop on the calling thread (the bits are the same
 * either way). Not an OpenMP `if` clause: libgomp still sets up a team for a region whose
 * `if` is false, about 1.3 us on the machine we measured, which is more than a whole step
 * of a small problem. The body is the last argument (braces welcome). Without OpenMP,
 * plain loops. */
#ifdef INTDIM_HAVE_OPENMP
#define INTDIM_PRAGMA(x) _Pragma(#x)
#define INTDIM_OMP_STATIC(nt) INTDIM_PRAGMA(omp parallel for num_threads(nt) schedule(static))
#define INTDIM_OMP_DYNAMIC(nt) \
    INTDIM_PRAGMA(omp parallel for num_threads(nt) schedule(dynamic, 64))
#define INTDIM_OMP_UNITS(nt) INTDIM_PRAGMA(omp parallel for num_threads(nt) schedule(dynamic, 1))
#define INTDIM_OMP_ROUND_ROBIN(nt) \
    INTDIM_PRAGMA(omp parallel for num_threads(nt) schedule(static, 1))
#define INTDIM_FOR_SCHEDULE(nt, cond, omp_for, i, n, ...)                                    \
    do {                                                                                    \
        if ((cond) && (nt) > 1) {                                                           \
            omp_for(nt)                                                                     \
            for (size_t i = 0; i < (n); i++)                                                \
                __VA_ARGS__                                                                 \
        } else {                                                                            \
            for (size_t i = 0; i < (n); i++)                                                \
                __VA_ARGS__                                                                 \
        }                                                                                   \
    } while (0)
#else
#define INTDIM_FOR_SCHEDULE(nt, cond, omp_for, i, n, ...)                                    \
    do {                                                                                    \
        (void)(nt);                                                                         \
        for (size_t i = 0; i < (n); i++)                                                    \
            __VA_ARGS__                                                                     \
    } while (0)
#endif
/* Equal shares per thread / iterations handed out 64 at a time (uneven work per
 * iteration) / one at a time (large units of work: a thread delayed on a loaded machine
 * holds up one unit, not a whole share). */
#define INTDIM_PARALLEL_FOR(nt, cond, i, n, ...) \
    INTDIM_FOR_SCHEDULE(nt, cond, INTDIM_OMP_STATIC, i, n, __VA_ARGS__)
#define INTDIM_PARALLEL_FOR_DYNAMIC(nt, cond, i, n, ...) \
    INTDIM_FOR_SCHEDULE(nt, cond, INTDIM_OMP_DYNAMIC, i, n, __VA_ARGS__)
#define INTDIM_PARALLEL_FOR_UNITS(nt, cond, i, n, ...) \
    INTDIM_FOR_SCHEDULE(nt, cond, INTDIM_OMP_UNITS, i, n, __VA_ARGS__)
#define INTDIM_PARALLEL_FOR_ROUND_ROBIN(nt, cond, i, n, ...) \
    INTDIM_FOR_SCHEDULE(nt, cond, INTDIM_OMP_ROUND_ROBIN, i, n, __VA_ARGS__)

/* ---- misc --------------------------------------------------------------------------- */
/* Do the n_a floats at a and the n_b floats at b share any memory? (An output that
 * overlaps an input is refused: the kernels read inputs after writing outputs.) */
static inline int intdim__floats_overlap(const float *a, size_t n_a, const float *b, size_t n_b)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return n_a > 0 && n_b > 0 && x < y + n_b * sizeof(float) && y < x + n_a * sizeof(float);
}

/* Smallest power of two >= n (n >= 1), computed with integers; 0 if it would overflow. */
uint64_t intdim__next_pow2(uint64_t n);
/* n is a power of two (1, 2, 4, ...). */
int intdim__is_pow2(uint64_t n);
unsigned intdim__log2_exact(uint64_t pow2);

/* theta = base + P(theta_d) (SAID: base + lambda (.) P(theta_d)), what the trainer writes
 * into the host's buffer each step; the same bits as intdim_proj_apply followed by the
 * addition, in fewer passes over memory where the kind can fuse them. said_u: NULL, or
 * for a SAID projection D floats that receive the unscaled P(theta_d), which the SAID
 * adjoint needs (see intdim__proj_vjp_said_u). */
int intdim__proj_apply_base(const intdim_proj *p, const float *theta_d, const float *base,
                            float *theta, float *said_u);
/* intdim_proj_vjp (arguments already checked) given said_u = the unscaled P(theta_d) from
 * intdim__proj_apply_base with the same theta_d: the same bits, one projection fewer.
 * said_u is ignored (and may be NULL) for projections without SAID. */
int intdim__proj_vjp_said_u(const intdim_proj *p, const float *theta_d, const float *g_D,
                            const float *said_u, float *g_d);

#endif
