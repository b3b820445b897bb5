/* Walsh-Hadamard transform: the portable kernel, run-time kernel choice, and the blocked
 * driver shared by every kernel.
 *
 * The driver makes as few passes over memory as it can. Pass 1 transforms every block of
 * 2^FWHT_BLOCK_LOG2 floats completely while it sits in L2 (levels 0..14). The remaining
 * levels pair elements whole blocks apart; each later pass takes up to `q` of them at
 * once: it copies a column strip (2^q rows, one per block, `width` floats each) into a
 * small contiguous buffer, runs the q levels there, and copies it back. The copy avoids
 * the cache-set conflicts of power-of-two strides. A transform of 2^24 floats is thus
 * two reads and two writes of the array instead of 24. */
#include <string.h>
#ifdef INTDIM_HAVE_OPENMP
#include <omp.h>
#endif

#include "fwht_impl.h"

#ifdef INTDIM_HAVE_OPENMP
#define FWHT_PRAGMA(x) _Pragma(#x)
#define OMP_FOR_THREADS(nt) FWHT_PRAGMA(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
#else
#define OMP_FOR_THREADS(nt)
#endif

/* Stack buffer per thread when the caller gives no scratch (64 KiB). */
enum { STACK_SCRATCH_FLOATS = 16384, MIN_STRIP_WIDTH = 16, MAX_SCRATCH_FLOATS = 65536 };

/* ---- portable kernel: the textbook loops, the definition the others must match ------ */

static void portable_block(float *x, unsigned log2n)
{
    size_t n = (size_t)1 << log2n;
    for (size_t h = 1; h < n; h *= 2) {
        for (size_t i = 0; i < n; i += 2 * h) {
            for (size_t j = i; j < i + h; j++) {
                float a = x[j];
                float b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
        }
    }
}

static void portable_rows(float *buf, unsigned log2rows, size_t width)
{
    size_t rows = (size_t)1 << log2rows;
    for (size_t h = 1; h < rows; h *= 2) {
        for (size_t r0 = 0; r0 < rows; r0 += 2 * h) {
            for (size_t r = r0; r < r0 + h; r++) {
                float *top = buf + r * width;
                float *bottom = top + h * width;
                for (size_t j = 0; j < width; j++) {
                    float a = top[j];
                    float b = bottom[j];
                    top[j] = a + b;
                    bottom[j] = a - b;
                }
            }
        }
    }
}

const fwht_kernel *intdim__fwht_portable_kernel(void)
{
    static const fwht_kernel kernel = {portable_block, portable_rows};
    return &kernel;
}

/* ---- kernel choice ------------------------------------------------------------------ */

static int cpu_has(int kernel)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (kernel == INTDIM_KERNEL_AVX2)
        return __builtin_cpu_supports("avx2");
    if (kernel == INTDIM_KERNEL_AVX512)
        return __builtin_cpu_supports("avx512f");
#endif
    (void)kernel;
    return 0;
}

static const fwht_kernel *kernel_ops(int kernel)
{
    switch (kernel) {
    case INTDIM_KERNEL_AVX2: return intdim__fwht_avx2_kernel();
    case INTDIM_KERNEL_AVX512: return intdim__fwht_avx512_kernel();
    default: return intdim__fwht_portable_kernel();
    }
}

int intdim__fwht_kernel_available(int kernel)
{
    switch (kernel) {
    case INTDIM_KERNEL_PORTABLE: return 1;
    case INTDIM_KERNEL_AVX2:
    case INTDIM_KERNEL_AVX512: return kernel_ops(kernel) != NULL && cpu_has(kernel);
    default: return 0;
    }
}

int intdim__fwht_best_kernel(void)
{
    if (intdim__fwht_kernel_available(INTDIM_KERNEL_AVX512))
        return INTDIM_KERNEL_AVX512;
    if (intdim__fwht_kernel_available(INTDIM_KERNEL_AVX2))
        return INTDIM_KERNEL_AVX2;
    return INTDIM_KERNEL_PORTABLE;
}

/* ---- driver ------------------------------------------------------------------------ */

static unsigned floor_log2(size_t v)
{
    unsigned k = 0;
    while (((size_t)2 << k) <= v)
        k++;
    return k;
}

size_t intdim__fwht_scratch_floats(unsigned log2n)
{
    if (log2n <= FWHT_BLOCK_LOG2)
        return 0;
    size_t wanted = (size_t)1 << (log2n - 4); /* never more than 1/16 of the data */
    return wanted < MAX_SCRATCH_FLOATS ? wanted : MAX_SCRATCH_FLOATS;
}

/* One later pass: levels [lo, lo + q) of x (2^log2n floats). */
typedef struct strip_pass {
    float *x;
    unsigned q;       /* levels in this pass: strips have 2^q rows */
    size_t row_step;  /* 2^lo: distance between rows of a strip in x */
    size_t width;     /* floats per strip row */
    size_t per_outer; /* strips per group of 2^(lo + q) elements */
    size_t n_strips;
} strip_pass;

static strip_pass plan_pass(float *x, unsigned log2n, unsigned lo, size_t scratch_floats)
{
    strip_pass s;
    unsigned qmax = floor_log2(scratch_floats / MIN_STRIP_WIDTH);
    s.x = x;
    s.q = log2n - lo < qmax ? log2n - lo : qmax;
    s.row_step = (size_t)1 << lo;
    size_t fit = scratch_floats >> s.q;
    s.width = s.row_step < fit ? s.row_step : fit;
    s.per_outer = s.row_step / s.width;
    s.n_strips = ((size_t)1 << (log2n - lo - s.q)) * s.per_outer;
    return s;
}

static void run_strip(const strip_pass *s, size_t strip, const fwht_kernel *k, float *buf,
                      const fwht_hooks *sink_hooks, unsigned group)
{
    size_t rows = (size_t)1 << s->q;
    size_t outer = strip / s->per_outer;
    size_t col = (strip % s->per_outer) * s->width;
    size_t first = outer * rows * s->row_step + col;
    float *base = s->x + first;
    for (size_t r = 0; r < rows; r++)
        memcpy(buf + r * s->width, base + r * s->row_step, s->width * sizeof(float));
    k->rows(buf, s->q, s->width);
    if (sink_hooks != NULL) {
        sink_hooks->sink(sink_hooks->ctx, buf, s->width, rows, first, s->row_step, s->width,
                         group);
        return;
    }
    for (size_t r = 0; r < rows; r++)
        memcpy(base + r * s->row_step, buf + r * s->width, s->width * sizeof(float));
}

/* Strips [begin, end) of a pass, in order, with this thread's buffer. */
static void run_strips(const strip_pass *s, size_t begin, size_t end, const fwht_kernel *k,
                       float *scratch, size_t scratch_floats, const fwht_hooks *sink_hooks,
                       unsigned group)
{
    int tid = 0;
#ifdef INTDIM_HAVE_OPENMP
    tid = omp_get_thread_num();
#endif
    if (scratch != NULL) {
        float *buf = scratch + (size_t)tid * scratch_floats;
        for (size_t i = begin; i < end; i++)
            run_strip(s, i, k, buf, sink_hooks, group);
        return;
    }
    _Alignas(64) float local[STACK_SCRATCH_FLOATS];
    for (size_t i = begin; i < end; i++)
        run_strip(s, i, k, local, sink_hooks, group);
}

static void pass_blocks(float *x, unsigned log2n, const fwht_kernel *k, int threads,
                        const fwht_hooks *hooks)
{
    unsigned log2b = log2n < FWHT_BLOCK_LOG2 ? log2n : FWHT_BLOCK_LOG2;
    size_t block = (size_t)1 << log2b;
    size_t n_blocks = (size_t)1 << (log2n - log2b);
    int nt = n_blocks < (size_t)threads ? (int)n_blocks : threads;
    (void)nt;
    OMP_FOR_THREADS(nt)
    for (size_t b = 0; b < n_blocks; b++) {
        float *dst = x + b * block;
        if (hooks != NULL && hooks->fill != NULL)
            hooks->fill(hooks->ctx, dst, b * block, block);
        k->block(dst, log2b);
    }
}

void intdim__fwht_run(float *x, unsigned log2n, int kernel, int threads,
                      const fwht_hooks *hooks, float *scratch, size_t scratch_floats)
{
    const fwht_kernel *k = kernel_ops(kernel);
    if (k == NULL)
        k = intdim__fwht_portable_kernel();
    if (threads < 1)
        threads = 1;
    if (scratch == NULL)
        scratch_floats = STACK_SCRATCH_FLOATS;
    int has_sink = hooks != NULL && hooks->sink != NULL;

    pass_blocks(x, log2n, k, threads, hooks);
    if (log2n <= FWHT_BLOCK_LOG2) {
        if (has_sink)
            hooks->sink(hooks->ctx, x, (size_t)1 << log2n, 1, 0, 0, (size_t)1 << log2n, 0);
        return;
    }
    for (unsigned lo = FWHT_BLOCK_LOG2; lo < log2n;) {
        strip_pass s = plan_pass(x, log2n, lo, scratch_floats);
        lo += s.q;
        int last = lo == log2n;
        /* Fixed groups of consecutive strips: a sink's partial results depend on the
         * grouping, which therefore must not depend on the thread count. */
        size_t n_groups = last && has_sink ? hooks->n_groups : s.n_strips;
        if (n_groups < 1)
            n_groups = 1;
        const fwht_hooks *sink_hooks = last && has_sink ? hooks : NULL;
        int nt = n_groups < (size_t)threads ? (int)n_groups : threads;
        (void)nt;
        OMP_FOR_THREADS(nt)
        for (size_t g = 0; g < n_groups; g++) {
            /* (sink groups are few, so the products cannot overflow) */
            size_t begin = sink_hooks == NULL ? g : s.n_strips * g / n_groups;
            size_t end = sink_hooks == NULL ? g + 1 : s.n_strips * (g + 1) / n_groups;
            run_strips(&s, begin, end, k, scratch, scratch_floats, sink_hooks, (unsigned)g);
        }
    }
}

void intdim__fwht(float *x, unsigned log2n, int kernel, int threads)
{
    intdim__fwht_run(x, log2n, kernel, threads, NULL, NULL, 0);
}
