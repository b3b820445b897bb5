/* Walsh-Hadamard transform: the portable kernel, run-time kernel choice, and the blocked
 * driver shared by every kernel.
 *
 * The driver makes as few passes over memory as it can, in three levels of blocking:
 *  - a block (2^15 floats, 128 KiB) gets levels 0..14 while it sits in L2;
 *  - a tile (2^20 floats, 4 MiB) gets levels 15..19 while it sits in L3: one thread
 *    transforms its blocks, then runs the tile's strips (below);
 *  - the levels above 19 pair elements whole tiles apart and are done in strip passes
 *    over the whole array.
 * A strip pass takes q levels at once on column strips (2^q rows, one per block or
 * tile, `width` floats each, at most FWHT_STRIP_FLOATS = 512 KiB in all, so a strip sits
 * in L2): with tiles the DRAM strips have few rows of long contiguous runs (16 rows of
 * 32 KiB at 2^24), which the prefetchers stream well. q is at most 6, so the 6 levels
 * above the tiles at 2^26 take one pass, not two; the rows' sweeps touch 2^ROW_RADIX of
 * them at a time. (Copying strips into a contiguous buffer and back, the usual cure for
 * set conflicts, cost 2-3x more than the arithmetic at 2^24 on the machine we measured;
 * the slots below only replace writes that had to happen anyway.) On large arrays a
 * caller may give per-thread strip slots (fwht_hooks.scratch): a pass that needs two
 * sweeps then transforms the strip into the slot and writes it back with non-temporal
 * stores (no read-for-ownership), and the sink's pass hands the slot to the sink (no
 * dirty lines of x left to write back). A sink that is an affine output (fwht_hooks.out,
 * Fastfood's apply) is instead written by the last sweep itself, rows interleaved
 * (strip_to_output): reading the rows and writing the output then overlap in DRAM.
 * A transform of 2^24 floats thus reads and writes DRAM twice instead of 24 times.
 *
 * Threads split blocks, tiles or strips; all orders compute the same values (see
 * fwht_impl.h), so the thread count never changes a bit. */
#include <stdio.h>
#include <string.h>
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <cpuid.h>
#endif

#include "fwht_impl.h"

/* Units are handed out dynamically: they are large (a tile, a strip, a sink group), and
 * on a loaded machine a descheduled thread then delays a pass by one unit, not by its
 * whole static share. Which thread runs a unit never changes its values. */
/* stmt for g in [0, n) over nt threads, one unit at a time (a plain loop when nt <= 1). */
#define FOR_UNITS(nt, g, n, stmt) INTDIM_PARALLEL_FOR_UNITS(nt, 1, g, n, stmt;)

#define FWHT_MIN_PARALLEL_LOG2 17u

/* ---- portable kernel: the textbook loops, the definition the others must match ------ */

static void portable_block(float *x, const float *src, unsigned log2n)
{
    size_t n = (size_t)1 << log2n;
    if (src != x)
        memcpy(x, src, n * sizeof(float));
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

static void portable_rows(float *buf, unsigned log2rows, size_t width, size_t stride)
{
    size_t rows = (size_t)1 << log2rows;
    for (size_t h = 1; h < rows; h *= 2) {
        for (size_t r0 = 0; r0 < rows; r0 += 2 * h) {
            for (size_t r = r0; r < r0 + h; r++) {
                float *top = buf + r * stride;
                float *bottom = top + h * stride;
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

static void portable_gather16(float *dst, const uint16_t *G, const uint16_t *pi,
                              const float *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = intdim__half_to_float(G[i]) * w[pi[i]];
}

static void portable_gather16_block(float *dst, const uint16_t *G, const uint16_t *pi,
                                    const float *w, unsigned log2n)
{
    portable_gather16(dst, G, pi, w, (size_t)1 << log2n);
    portable_block(dst, dst, log2n);
}

static void portable_fold16(float *part, const uint16_t *G, const uint16_t *pi,
                            const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        part[pi[i]] += intdim__half_to_float(G[i]) * src[i];
}

static void portable_gather32(float *dst, const float *G, const uint16_t *pi, const float *w,
                              size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = G[i] * w[pi[i]];
}

static void portable_gather32_block(float *dst, const float *G, const uint16_t *pi,
                                    const float *w, unsigned log2n)
{
    portable_gather32(dst, G, pi, w, (size_t)1 << log2n);
    portable_block(dst, dst, log2n);
}

static void portable_fold32(float *part, const float *G, const uint16_t *pi, const float *src,
                            size_t n)
{
    for (size_t i = 0; i < n; i++)
        part[pi[i]] += G[i] * src[i];
}

static void portable_scale_out(float *dst, const float *src, float scale, const float *base,
                               size_t n, int stream)
{
    (void)stream;
    if (base == NULL) {
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i] * scale;
        return;
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = base[i] + src[i] * scale;
}

static void portable_rows_out(float *dst, size_t dst_stride, const float *base,
                              size_t base_stride, float *src, size_t src_stride, unsigned r,
                              size_t width, size_t n_out, int keep, float scale, int stream)
{
    (void)keep; /* row n_out is left in src by the in-place levels anyway */
    portable_rows(src, r, width, src_stride);
    for (size_t m = 0; m < n_out; m++)
        portable_scale_out(dst + m * dst_stride, src + m * src_stride, scale,
                           base != NULL ? base + m * base_stride : NULL, width, stream);
}

static void portable_rows_from(float *dst, size_t dst_stride, const float *src,
                               size_t src_stride, unsigned log2rows, size_t width, int stream)
{
    (void)stream;
    size_t rows = (size_t)1 << log2rows;
    for (size_t r = 0; r < rows && dst != src; r++)
        memcpy(dst + r * dst_stride, src + r * src_stride, width * sizeof(float));
    portable_rows(dst, log2rows, width, dst_stride);
}

const fwht_kernel *intdim__fwht_portable_kernel(void)
{
    static const fwht_kernel kernel = {portable_block,    portable_rows,   portable_rows_from,
                                       portable_gather16, portable_gather16_block,
                                       portable_fold16,   portable_gather32,
                                       portable_gather32_block, portable_fold32,
                                       portable_scale_out,
                                       portable_rows_out,
                                       /* no registers to fill; 3 makes the two-sweep slot
                                        * path run on this kernel too (and in its tests) */
                                       3};
    return &kernel;
}

/* ---- kernel choice ------------------------------------------------------------------ */

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
/* probe()'s answer, asked once per cache (initially -1): the answer never changes, so
 * racing first calls are harmless. CPUID traps to the hypervisor in a VM (microseconds),
 * and the driver looks up its kernel on every transform: asking each time took a fifth of
 * a 2^18 vjp. */
static int asked_once(int *cache, int (*probe)(void))
{
    int v = __atomic_load_n(cache, __ATOMIC_RELAXED);
    if (v < 0) {
        v = probe();
        __atomic_store_n(cache, v, __ATOMIC_RELAXED);
    }
    return v;
}

/* F16C is CPUID leaf 1, ECX bit 29 (asked directly: clang's __builtin_cpu_supports
 * does not know "f16c"). */
static int probe_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && ((c >> 29) & 1u);
}

static int cpu_has_f16c(void)
{
    static int cache = -1;
    return asked_once(&cache, probe_f16c);
}
#endif

static int cpu_has(int kernel)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (kernel == INTDIM_KERNEL_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               cpu_has_f16c();
    if (kernel == INTDIM_KERNEL_AVX512) /* F16C: the fold's 8-lane conversions */
        return __builtin_cpu_supports("avx512f") && cpu_has_f16c();
#endif
    (void)kernel;
    return 0;
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
static int cpu_is_intel(void)
{
    unsigned a, b, c, d;
    /* the vendor string "GenuineIntel" in EBX, EDX, ECX */
    return __get_cpuid(0, &a, &b, &c, &d) && b == 0x756e6547u && d == 0x49656e69u &&
           c == 0x6c65746eu;
}

/* The Linux kernel's verdict on Gather Data Sampling: the mitigation is microcode that
 * makes every gather instruction wait, several times slower than scalar loads. */
static int gathers_mitigated(void)
{
    FILE *f = fopen("/sys/devices/system/cpu/vulnerabilities/gather_data_sampling", "r");
    if (f == NULL)
        return 0;
    char line[64] = {0};
    int mitigated = fgets(line, sizeof line, f) != NULL && strncmp(line, "Mitigation", 10) == 0;
    fclose(f);
    return mitigated;
}

static int probe_hw_gather(void)
{
    return cpu_is_intel() && !gathers_mitigated();
}
#endif

int intdim__cpu_hw_gather(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    static int cache = -1;
    return asked_once(&cache, probe_hw_gather);
#else
    return 0;
#endif
}

static const fwht_kernel *kernel_ops(int kernel, int hw_gather)
{
    switch (kernel) {
    case INTDIM_KERNEL_AVX2: return intdim__fwht_avx2_kernel(hw_gather);
    case INTDIM_KERNEL_AVX512: return intdim__fwht_avx512_kernel(hw_gather);
    default: return intdim__fwht_portable_kernel();
    }
}

const fwht_kernel *intdim__fwht_kernel_variant(int kernel, int hw_gather)
{
    const fwht_kernel *k =
        intdim__fwht_kernel_available(kernel) ? kernel_ops(kernel, hw_gather) : NULL;
    return k != NULL ? k : intdim__fwht_portable_kernel();
}

const fwht_kernel *intdim__fwht_kernel_ops(int kernel)
{
    return intdim__fwht_kernel_variant(kernel, intdim__cpu_hw_gather());
}

/* Kernels the tests pretend this CPU lacks (bit k: kernel k), so that the paths for a CPU
 * without AVX2 or AVX-512 run on one that has them. Never set outside the tests. */
static _Atomic unsigned g_hidden_kernels;

void intdim__fwht_hide_kernels(unsigned mask)
{
    g_hidden_kernels = mask;
}

int intdim__fwht_kernel_available(int kernel)
{
    switch (kernel) {
    case INTDIM_KERNEL_PORTABLE: return 1;
    case INTDIM_KERNEL_AVX2:
    case INTDIM_KERNEL_AVX512:
        if (g_hidden_kernels & (1u << kernel))
            return 0;
        return kernel_ops(kernel, 0) != NULL && cpu_has(kernel);
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

/* ---- strips ---------------------------------------------------------------------- */

/* Levels [lo, lo + q) of an array of 2^log2n floats, as strips of 2^q rows. */
typedef struct strip_plan {
    unsigned q;       /* strips have 2^q rows */
    size_t row_step;  /* 2^lo: distance between rows of a strip */
    size_t width;     /* floats per strip row */
    size_t per_outer; /* strips per run of 2^(lo + q) elements */
    size_t n_strips;
} strip_plan;

/* The next pass of levels [lo, hi): passes as few as the row limit allows, levels spread
 * evenly over them (8 levels = 4 + 4, not 6 + 2). */
static strip_plan plan_strips(unsigned log2n, unsigned lo, unsigned hi)
{
    strip_plan s;
    unsigned passes = (hi - lo + FWHT_STRIP_MAX_LOG2_ROWS - 1) / FWHT_STRIP_MAX_LOG2_ROWS;
    s.q = (hi - lo + passes - 1) / passes;
    s.row_step = (size_t)1 << lo;
    size_t fit = (size_t)FWHT_STRIP_FLOATS >> s.q;
    s.width = s.row_step < fit ? s.row_step : fit;
    s.per_outer = s.row_step / s.width;
    s.n_strips = ((size_t)1 << (log2n - lo - s.q)) * s.per_outer;
    return s;
}

/* What every unit of work needs: the kernel, the array (x holds global element
 * `offset`), the hooks. */
typedef struct job {
    const fwht_kernel *k;
    const fwht_hooks *fill; /* non-NULL: the first pass produces its input through fill */
    const fwht_hooks *sink; /* non-NULL: the last pass hands its output to sink */
    unsigned n_groups;      /* sink groups (0: any order) */
    size_t total_blocks;    /* blocks in the whole transform (for sink groups) */
    int stream_first;       /* the array is far larger than the caches */
    float *scratch;         /* per-thread strip slots (NULL: strips work in place) */
    unsigned scratch_slots;
} job;

/* This thread's strip slot, or NULL. */
static float *strip_slot(const job *jb)
{
    if (jb->scratch == NULL)
        return NULL;
    unsigned t = (unsigned)intdim__thread_num();
    return t < jb->scratch_slots ? jb->scratch + (size_t)t * FWHT_STRIP_FLOATS : NULL;
}

/* The levels a strip of 2^q rows leaves to its last sweep: all q when one sweep does them,
 * otherwise half (at most the kernel's radix), the first sweep taking the rest. */
static unsigned last_sweep_levels(const job *jb, unsigned q)
{
    unsigned radix = jb->k->row_radix;
    return q <= radix ? q : (q / 2 < radix ? q / 2 : radix);
}

/* The first q - r2 levels of 2^q rows read from src (rows src_stride apart) into the slot
 * (rows width apart): 2^r2 groups of 2^(q - r2) consecutive rows. */
static void first_levels_into_slot(const job *jb, float *slot, const float *src,
                                   size_t src_stride, unsigned q, unsigned r2, size_t width)
{
    size_t group = (size_t)1 << (q - r2);
    for (size_t g = 0; g < ((size_t)1 << r2); g++)
        jb->k->rows_from(slot + g * group * width, width, src + g * group * src_stride,
                         src_stride, q - r2, width, 0);
}

/* Levels [0, q) of 2^q rows read from src (rows src_stride apart) and written to dst
 * (rows dst_stride apart) with non-temporal stores, through slot: the first levels land
 * in the slot (compact, in L2), the last ones go in one sweep from the slot to dst. */
static void rows_via_slot(const job *jb, float *dst, size_t dst_stride, const float *src,
                          size_t src_stride, unsigned q, size_t width, float *slot)
{
    unsigned r2 = last_sweep_levels(jb, q), r1 = q - r2;
    first_levels_into_slot(jb, slot, src, src_stride, q, r2, width);
    for (size_t i = 0; i < ((size_t)1 << r1); i++)
        jb->k->rows_from(dst + i * dst_stride, dst_stride << r1, slot + i * width,
                         width << r1, r2, width, 1);
}

/* The last pass's strip at x + first (global element `first`, 2^q rows) straight to the
 * hooks' affine output: the first q - r2 levels into the slot (or in place without one;
 * none when one sweep does all q), then the last r2 levels of each set of rows they leave
 * independent, from the slot (or x) to the output, rows interleaved (rows_out). Rows past
 * out_len are dropped; the one row that straddles it is finished by scale_out. */
static void strip_to_output(const job *jb, const strip_plan *s, float *x, size_t first,
                            float *slot)
{
    const fwht_hooks *h = jb->sink;
    unsigned r2 = last_sweep_levels(jb, s->q), r1 = s->q - r2;
    size_t sets = (size_t)1 << r1, per_set = (size_t)1 << r2;
    float *src = x + first;
    size_t src_stride = s->row_step;
    if (r1 > 0 && slot != NULL) {
        first_levels_into_slot(jb, slot, x + first, s->row_step, s->q, r2, s->width);
        src = slot;
        src_stride = s->width;
    }
    for (size_t g = 0; r1 > 0 && slot == NULL && g < per_set; g++) /* in place */
        jb->k->rows(x + first + g * sets * s->row_step, r1, s->width, s->row_step);
    for (size_t i = 0; i < sets; i++) {
        size_t start = first + i * s->row_step, step = sets * s->row_step;
        /* rows m of this set start at start + m * step: the first n_out end inside */
        size_t n_out = 0;
        while (n_out < per_set && start + n_out * step + s->width <= h->out_len)
            n_out++;
        size_t partial = start + n_out * step; /* the row that straddles out_len, if any */
        int keep = n_out < per_set && partial < h->out_len;
        if (n_out == 0 && !keep)
            continue; /* every row of the set lies in the padding past out_len */
        float *row0 = src + i * src_stride;
        jb->k->rows_out(h->out + start, step, h->out_base != NULL ? h->out_base + start : NULL,
                        step, row0, sets * src_stride, r2, s->width, n_out, keep, h->out_scale,
                        jb->stream_first);
        if (keep)
            jb->k->scale_out(h->out + partial, row0 + n_out * sets * src_stride, h->out_scale,
                             h->out_base != NULL ? h->out_base + partial : NULL,
                             h->out_len - partial, jb->stream_first);
    }
}

/* Strip `index` of plan s over x (global offset `offset`). */
static void run_strip(const job *jb, const strip_plan *s, float *x, size_t offset, size_t index,
                      int use_fill, int use_sink, unsigned group, int whole_array)
{
    size_t rows = (size_t)1 << s->q;
    size_t outer = index / s->per_outer;
    size_t col = (index % s->per_outer) * s->width;
    size_t first = outer * rows * s->row_step + col;
    float *base = x + first;
    size_t span = (rows - 1) * s->row_step + s->width;
    const float *src = use_fill && jb->fill->source != NULL
                           ? jb->fill->source(jb->fill->ctx, offset + first, span)
                           : NULL;
    /* Slots only for passes over a whole large array: a tile's strips stay in cache. */
    float *slot = whole_array && jb->stream_first && (src != NULL || !use_fill)
                      ? strip_slot(jb)
                      : NULL;
    const float *from = src != NULL ? src : base;
    if (use_sink && !use_fill && jb->sink->out != NULL && offset == 0) {
        strip_to_output(jb, s, x, first, slot);
        return;
    }
    if (slot != NULL && use_sink) {
        /* The sink reads the slot; x keeps its old values (no dirty lines to write). */
        jb->k->rows_from(slot, s->width, from, s->row_step, s->q, s->width, 0);
        jb->sink->sink(jb->sink->ctx, slot, s->width, rows, offset + first, s->row_step,
                       s->width, group);
        return;
    }
    if (slot != NULL && s->q > jb->k->row_radix) {
        rows_via_slot(jb, base, s->row_step, from, s->row_step, s->q, s->width, slot);
        return;
    }
    if (src != NULL) {
        /* A large first pass is not the last: its rows leave the caches before the next
         * pass reads them, so write them around the caches. */
        jb->k->rows_from(base, s->row_step, src, s->row_step, s->q, s->width,
                         jb->stream_first && !use_sink);
    } else {
        for (size_t r = 0; use_fill && r < rows; r++)
            jb->fill->fill(jb->fill->ctx, base + r * s->row_step,
                           offset + first + r * s->row_step, s->width);
        jb->k->rows(base, s->q, s->width, s->row_step);
    }
    if (use_sink)
        jb->sink->sink(jb->sink->ctx, base, s->row_step, rows, offset + first, s->row_step,
                       s->width, group);
}

/* Does the first pass's input from element `first` on lie wholly in the fill's zero
 * padding (fwht_hooks.fill_zero_from)? Its transform is then +0s: cleared, not computed. */
static int all_padding(const job *jb, int use_fill, size_t first)
{
    return use_fill && jb->fill->fill_zero_from != 0 && first >= jb->fill->fill_zero_from;
}

/* Block `index` (2^log2b floats) of x: levels 0..log2b-1, with fill/sink if asked. */
static void run_block(const job *jb, float *x, size_t offset, unsigned log2b, size_t index,
                      int use_fill, int use_sink)
{
    size_t len = (size_t)1 << log2b;
    float *dst = x + index * len;
    size_t first = offset + index * len;
    const fwht_hooks *f = jb->fill;
    int padding = all_padding(jb, use_fill, first);
    /* input already in memory as it is: the block's first sweep reads it from there */
    const float *src =
        use_fill && !padding && f->source != NULL ? f->source(f->ctx, first, len) : NULL;
    if (padding)
        memset(dst, 0, len * sizeof(float));
    else if (!use_fill)
        jb->k->block(dst, dst, log2b);
    else if (src != NULL)
        jb->k->block(dst, src, log2b);
    else if (f->fill_block != NULL)
        f->fill_block(f->ctx, dst, first, log2b);
    else {
        f->fill(f->ctx, dst, first, len);
        jb->k->block(dst, dst, log2b);
    }
    if (use_sink) {
        unsigned group = jb->n_groups > 0
                             ? (unsigned)((first >> log2b) * jb->n_groups / jb->total_blocks)
                             : 0;
        jb->sink->sink(jb->sink->ctx, dst, len, 1, first, 0, len, group);
    }
}

/* ---- whole-array passes (units split over threads) --------------------------------- */

static void blocks_range(const job *jb, float *x, unsigned log2b, size_t begin, size_t end,
                         int use_fill, int use_sink)
{
    for (size_t b = begin; b < end; b++)
        run_block(jb, x, 0, log2b, b, use_fill, use_sink);
}

/* Strips [begin, end) of plan s, in order. */
static void strips_range(const job *jb, const strip_plan *s, float *x, size_t begin,
                         size_t end, int use_fill, int use_sink, unsigned group)
{
    for (size_t i = begin; i < end; i++)
        run_strip(jb, s, x, 0, i, use_fill, use_sink, group, 1);
}

/* Range g of n_ranges fixed ranges of consecutive strips. (A strip holds at least 2^12
 * floats, so n_strips <= 2^20 at 2^32 floats and the products fit easily.) */
static void strip_group(const job *jb, const strip_plan *s, float *x, size_t g,
                        size_t n_ranges, int use_fill, int last_pass)
{
    unsigned group = last_pass && jb->n_groups > 0 ? (unsigned)g : 0;
    strips_range(jb, s, x, s->n_strips * g / n_ranges, s->n_strips * (g + 1) / n_ranges,
                 use_fill, last_pass, group);
}

static void blocks_pass(const job *jb, float *x, unsigned log2n, int threads, int use_fill,
                        int use_sink)
{
    unsigned log2b = log2n < FWHT_BLOCK_LOG2 ? log2n : FWHT_BLOCK_LOG2;
    size_t n_blocks = (size_t)1 << (log2n - log2b);
    /* With sink groups, one thread runs each group's blocks in order. */
    size_t n_ranges = use_sink && jb->n_groups > 0 && jb->n_groups < n_blocks ? jb->n_groups
                                                                              : n_blocks;
    int nt = n_ranges < (size_t)threads ? (int)n_ranges : threads;
    size_t per = n_blocks / n_ranges; /* both powers of two */
    FOR_UNITS(nt, g, n_ranges, blocks_range(jb, x, log2b, g * per, (g + 1) * per, use_fill,
                                            use_sink));
}

/* Levels [lo, hi) of x (2^log2n floats) in strip passes over the whole array; fill feeds
 * the first pass, sink takes the last. */
static void strip_passes(const job *jb, float *x, unsigned log2n, unsigned lo, unsigned hi,
                         int threads, int use_fill, int use_sink)
{
    while (lo < hi) {
        strip_plan s = plan_strips(log2n, lo, hi);
        int first_pass = use_fill, last_pass = 0;
        lo += s.q;
        last_pass = use_sink && lo == hi;
        use_fill = 0;
        /* Sink groups: fixed ranges of consecutive strips, each run in order. */
        size_t n_ranges = last_pass && jb->n_groups > 0 ? jb->n_groups : s.n_strips;
        int nt = n_ranges < (size_t)threads ? (int)n_ranges : threads;
        FOR_UNITS(nt, g, n_ranges, strip_group(jb, &s, x, g, n_ranges, first_pass, last_pass));
    }
}

/* ---- tiles: L3-sized pieces done by one thread from start to finish ------------------ */

/* Levels 0..FWHT_TILE_LOG2-1 of one tile, blocks then strips (the default order). */
static void tile_forward(const job *jb, float *tile, size_t offset, int use_fill)
{
    if (all_padding(jb, use_fill, offset)) {
        memset(tile, 0, sizeof(float) << FWHT_TILE_LOG2);
        return;
    }
    size_t n_blocks = (size_t)1 << (FWHT_TILE_LOG2 - FWHT_BLOCK_LOG2);
    for (size_t b = 0; b < n_blocks; b++)
        run_block(jb, tile, offset, FWHT_BLOCK_LOG2, b, use_fill, 0);
    for (unsigned lo = FWHT_BLOCK_LOG2; lo < FWHT_TILE_LOG2;) {
        strip_plan s = plan_strips(FWHT_TILE_LOG2, lo, FWHT_TILE_LOG2);
        for (size_t i = 0; i < s.n_strips; i++)
            run_strip(jb, &s, tile, offset, i, 0, 0, 0, 0);
        lo += s.q;
    }
}

/* The same levels, strips first and blocks last (handing blocks to the sink). */
static void tile_reverse(const job *jb, float *tile, size_t offset, int use_sink)
{
    for (unsigned lo = FWHT_BLOCK_LOG2; lo < FWHT_TILE_LOG2;) {
        strip_plan s = plan_strips(FWHT_TILE_LOG2, lo, FWHT_TILE_LOG2);
        for (size_t i = 0; i < s.n_strips; i++)
            run_strip(jb, &s, tile, offset, i, 0, 0, 0, 0);
        lo += s.q;
    }
    size_t n_blocks = (size_t)1 << (FWHT_TILE_LOG2 - FWHT_BLOCK_LOG2);
    for (size_t b = 0; b < n_blocks; b++)
        run_block(jb, tile, offset, FWHT_BLOCK_LOG2, b, 0, use_sink);
}

static void tiles_range(const job *jb, float *x, size_t begin, size_t end, int reverse,
                        int use_fill, int use_sink)
{
    for (size_t t = begin; t < end; t++) {
        size_t offset = t << FWHT_TILE_LOG2;
        if (reverse)
            tile_reverse(jb, x + offset, offset, use_sink);
        else
            tile_forward(jb, x + offset, offset, use_fill);
    }
}

/* All tiles over threads. With sink groups, every range of tiles a thread takes holds
 * whole groups (both counts are powers of two), run in order. */
static void tiles_pass(const job *jb, float *x, unsigned log2n, int threads, int reverse,
                       int use_fill, int use_sink)
{
    size_t n_tiles = (size_t)1 << (log2n - FWHT_TILE_LOG2);
    size_t n_ranges = use_sink && jb->n_groups > 0 && jb->n_groups < n_tiles ? jb->n_groups
                                                                             : n_tiles;
    int nt = n_ranges < (size_t)threads ? (int)n_ranges : threads;
    size_t per = n_tiles / n_ranges;
    FOR_UNITS(nt, g, n_ranges, tiles_range(jb, x, g * per, (g + 1) * per, reverse, use_fill,
                                           use_sink));
}

/* ---- entry points ------------------------------------------------------------------ */

void intdim__fwht_run(float *x, unsigned log2n, int kernel, int threads,
                      const fwht_hooks *hooks)
{
    job jb;
    memset(&jb, 0, sizeof jb);
    jb.k = intdim__fwht_kernel_ops(kernel);
    jb.fill = hooks != NULL && hooks->fill != NULL ? hooks : NULL;
    jb.sink = hooks != NULL && hooks->sink != NULL ? hooks : NULL;
    jb.n_groups = jb.sink != NULL ? jb.sink->n_groups : 0;
    jb.total_blocks = log2n > FWHT_BLOCK_LOG2 ? (size_t)1 << (log2n - FWHT_BLOCK_LOG2) : 1;
    /* Below 2^17 floats (~50 us of work) waking threads costs more than it saves. */
    if (threads < 1 || log2n < FWHT_MIN_PARALLEL_LOG2)
        threads = 1;
    int use_fill = jb.fill != NULL, use_sink = jb.sink != NULL;
    jb.stream_first = log2n >= FWHT_STREAM_MIN_LOG2;
    if (hooks != NULL && hooks->scratch != NULL) {
        jb.scratch = hooks->scratch;
        jb.scratch_slots = hooks->scratch_slots;
    }
    int reverse = hooks != NULL && hooks->strips_first;

    if (log2n <= FWHT_BLOCK_LOG2) {
        blocks_pass(&jb, x, log2n, threads, use_fill, use_sink);
    } else if (log2n <= FWHT_TILE_LOG2 && !reverse) {
        blocks_pass(&jb, x, log2n, threads, use_fill, 0);
        strip_passes(&jb, x, log2n, FWHT_BLOCK_LOG2, log2n, threads, 0, use_sink);
    } else if (log2n <= FWHT_TILE_LOG2) {
        strip_passes(&jb, x, log2n, FWHT_BLOCK_LOG2, log2n, threads, use_fill, 0);
        blocks_pass(&jb, x, log2n, threads, 0, use_sink);
    } else if (!reverse) {
        tiles_pass(&jb, x, log2n, threads, 0, use_fill, 0);
        strip_passes(&jb, x, log2n, FWHT_TILE_LOG2, log2n, threads, 0, use_sink);
    } else {
        strip_passes(&jb, x, log2n, FWHT_TILE_LOG2, log2n, threads, use_fill, 0);
        tiles_pass(&jb, x, log2n, threads, 1, 0, use_sink);
    }
}

size_t intdim__fwht_sink_units(unsigned log2n, int strips_first)
{
    if (log2n <= FWHT_BLOCK_LOG2)
        return 1;
    if (strips_first) /* the last pass is the blocks (inside tiles from 2^21 on) */
        return (size_t)1 << (log2n - FWHT_BLOCK_LOG2);
    unsigned lo = log2n <= FWHT_TILE_LOG2 ? FWHT_BLOCK_LOG2 : FWHT_TILE_LOG2;
    size_t units = 1;
    while (lo < log2n) { /* the strip passes strip_passes makes; the last one counts */
        strip_plan s = plan_strips(log2n, lo, log2n);
        units = s.n_strips;
        lo += s.q;
    }
    return units;
}

void intdim__fwht(float *x, unsigned log2n, int kernel, int threads)
{
    intdim__fwht_run(x, log2n, kernel, threads, NULL);
}
