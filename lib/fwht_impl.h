/* Inside the Walsh-Hadamard transform: the two building blocks every kernel provides and
 * the blocked driver that strings them together (fwht.c). Fastfood uses the driver's
 * hooks to fuse its gather, fold and output scaling into the transform's memory passes.
 *
 * Order of operations (what makes every kernel and thread count give the same bits):
 * levels are applied in ascending stride (1, 2, 4, ...), each level is the butterfly
 * (a, b) -> (a + b, a - b) on every pair. A level needs only the previous level's
 * outputs, so any schedule that respects that (blocking, register tiling, threads)
 * computes the same values. */
#ifndef INTDIM_FWHT_IMPL_H
#define INTDIM_FWHT_IMPL_H

#include "fwht.h"

typedef struct fwht_kernel {
    /* All levels of a contiguous block of 2^log2n floats (log2n <= FWHT_BLOCK_LOG2, so
     * it sits in L2), read from src and left in dst (src == dst: in place; otherwise the
     * first sweep does the copy, so a block read from elsewhere costs no extra pass). */
    void (*block)(float *dst, const float *src, unsigned log2n);
    /* The levels across rows: buf holds 2^log2rows rows of `width` floats, row r at
     * buf + r * stride; level t pairs row r with row r + 2^t (same column). width is a
     * multiple of 16. */
    void (*rows)(float *buf, unsigned log2rows, size_t width, size_t stride);
    /* The same levels reading the rows from src (rows src_stride floats apart) and
     * writing dst (rows dst_stride apart): a copy and a transform in one pass. stream: a
     * hint that dst will not be read soon. */
    void (*rows_from)(float *dst, size_t dst_stride, const float *src, size_t src_stride,
                      unsigned log2rows, size_t width, int stream);
    /* Fastfood's per-element loops around the transform, here so they run with the same
     * instruction set (the lookups stay scalar: on the CPUs we measured, hardware gathers
     * were slower than scalar loads; the arithmetic is vectorized). Every kernel gives
     * the portable kernel's bits: each is one rounding per element, in index order.
     * G holds binary16 bits (widened exactly to float first).
     * gather16: dst[i] = G[i] * w[pi[i]]
     * fold16:   part[pi[i]] += G[i] * src[i], i ascending (the product rounded first)
     * scale_out: dst[i] = src[i] * scale, or base[i] + src[i] * scale when base != NULL;
     *   stream: a hint that dst will not be read soon (non-temporal stores where the
     *   kernel has them: no read-for-ownership of dst, nor cache pollution) */
    void (*gather16)(float *dst, const uint16_t *G, const uint16_t *pi, const float *w,
                     size_t n);
    /* gather16 of 2^log2n elements then block() on them, the gathered vectors going
     * straight into the block's first sweep (log2n <= FWHT_BLOCK_LOG2): one pass over the
     * block instead of two. The same bits as the two calls. */
    void (*gather16_block)(float *dst, const uint16_t *G, const uint16_t *pi, const float *w,
                           unsigned log2n);
    void (*fold16)(float *part, const uint16_t *G, const uint16_t *pi, const float *src,
                   size_t n);
    /* gather16 and fold16 with float32 G (Fastfood made from imported tables whose G is
     * not exact in binary16): the same single rounding per element, in index order. */
    void (*gather32)(float *dst, const float *G, const uint16_t *pi, const float *w, size_t n);
    void (*gather32_block)(float *dst, const float *G, const uint16_t *pi, const float *w,
                           unsigned log2n);
    void (*fold32)(float *part, const float *G, const uint16_t *pi, const float *src,
                   size_t n);
    void (*scale_out)(float *dst, const float *src, float scale, const float *base, size_t n,
                      int stream);
    /* The last r levels of a strip written straight to an affine output: 2^r rows read
     * from src (rows src_stride apart), their r levels, then row m < n_out goes to dst
     * row m as v * scale, or base row m + v * scale when base != NULL (rows dst_stride
     * and base_stride apart; stream as in scale_out); row n_out, when keep, is written
     * back to src row n_out as v; later rows are dropped. The same bits as rows_from
     * then scale_out. (Writing the rows interleaved, straight from the sweep, kept the
     * output's DRAM streams overlapping the input's: a strip pass at 2^26 took 10 ms
     * this way against 15 ms through the slot and row-by-row stores, in a /tmp model.) */
    void (*rows_out)(float *dst, size_t dst_stride, const float *base, size_t base_stride,
                     float *src, size_t src_stride, unsigned r, size_t width, size_t n_out,
                     int keep, float scale, int stream);
    /* Levels one sweep of rows/rows_from does with its rows in registers. */
    unsigned row_radix;
} fwht_kernel;

const fwht_kernel *intdim__fwht_portable_kernel(void);
/* NULL when the kernel is not compiled in (non-x86 builds). hw_gather: the table whose
 * gathers use the hardware gather instruction instead of scalar loads (same bits). */
const fwht_kernel *intdim__fwht_avx2_kernel(int hw_gather);
const fwht_kernel *intdim__fwht_avx512_kernel(int hw_gather);
/* The operations of an available kernel (INTDIM_KERNEL_*); portable for anything else.
 * The SIMD kernels come with the gathers this CPU runs faster (intdim__cpu_hw_gather). */
const fwht_kernel *intdim__fwht_kernel_ops(int kernel);
/* The same with the gathers chosen by the caller (tests: both variants, any CPU). */
const fwht_kernel *intdim__fwht_kernel_variant(int kernel, int hw_gather);
/* Does this CPU gather faster with hardware gather instructions than with scalar loads?
 * Intel cores without the Gather Data Sampling microcode mitigation: yes (Fastfood's
 * gather on an Intel Xeon VM, 2^18 elements: 0.069 -> 0.046 ms on one thread); AMD Zen 4
 * and mitigated Intel cores (where the microcode makes gathers several times slower): no. */
int intdim__cpu_hw_gather(void);

/* Blocks (2^15 floats = 128 KiB) are transformed completely inside L2; tiles (2^20
 * floats = 4 MiB) completely inside L3 by one thread. */
#define FWHT_BLOCK_LOG2 15u
#define FWHT_TILE_LOG2 20u
/* A strip (q levels across 2^q rows, q <= FWHT_STRIP_MAX_LOG2_ROWS) spans at most
 * FWHT_STRIP_FLOATS floats: it sits in L2 while its levels are done. */
#define FWHT_STRIP_FLOATS 131072u
#define FWHT_STRIP_MAX_LOG2_ROWS 6u
/* From 2^22 floats (16 MiB) on, data written by one pass is out of the caches before the
 * next pass (or the caller) reads it: such writes use non-temporal stores. */
#define FWHT_STREAM_MIN_LOG2 22u

/* Hooks into the driver's passes (all optional; NULL fields mean "plain in-place").
 * fill: the first pass asks for input elements [start, start + len) to be written to dst
 *   just before transforming them, so the data is produced while it is hot in cache.
 * sink: the last pass hands over final values instead of writing them back to x:
 *   `rows` rows of `width` floats in buf (row stride buf_stride floats); row r holds
 *   output elements first + r * row_step + [0, width). x is then left undefined.
 * n_groups = 0: sink calls come in any order from any thread. n_groups >= 1 (a power of
 *   two): the calls
 *   are split into n_groups fixed groups of consecutive calls (independent of the thread
 *   count); one thread makes all calls of a group, in order, passing the group number,
 *   so a sink may accumulate per group and get the same bits with any thread count.
 * strips_first: do the large-stride levels first and the in-block levels last, so the
 *   sink sees whole contiguous blocks (and the fill sees strips). This changes the order
 *   of the levels, hence the rounding, but is still the same for every kernel and thread
 *   count; the default order is the one intdim__fwht uses. */
typedef struct fwht_hooks {
    void *ctx;
    void (*fill)(void *ctx, float *dst, size_t start, size_t len);
    /* Optional, with fill: where input elements [start, start + len) already lie in
     * memory as they are (no padding, no arithmetic), or NULL. The first pass then reads
     * them from there instead of filling a copy first. */
    const float *(*source)(void *ctx, size_t start, size_t len);
    void (*sink)(void *ctx, const float *buf, size_t buf_stride, size_t rows, size_t first,
                 size_t row_step, size_t width, unsigned group);
    unsigned n_groups;
    int strips_first;
    /* Optional (NULL: in place): scratch_slots slots of FWHT_STRIP_FLOATS floats each,
     * 64-byte aligned, one per thread (OpenMP thread number; threads past the last slot
     * work in place). Used from 2^FWHT_STREAM_MIN_LOG2 floats on: a strip pass then
     * transforms its strips in the slot, which stays in L2, and writes them back with
     * non-temporal stores (or hands the slot to the sink), so x is never read for
     * ownership and the sink's pass leaves no dirty lines of x behind. Same bits. */
    float *scratch;
    unsigned scratch_slots;
    /* Optional, with fill: fill block [start, start + 2^log2n) and do its levels
     * 0..log2n-1 in one go (e.g. with gather16_block). Same values as fill then block. */
    void (*fill_block)(void *ctx, float *dst, size_t start, unsigned log2n);
    /* Optional, with fill: when non-zero, input elements from fill_zero_from on are all
     * +0 (padding). A block of the first pass wholly past it is cleared, not transformed:
     * the transform of +0s is +0s, so the bits are the same. */
    size_t fill_zero_from;
    /* Optional, with sink: the sink's arithmetic when it is an affine output, element i
     * of the transform going to out[i] = v * out_scale, or out_base[i] + v * out_scale
     * when out_base != NULL, for i < out_len (later elements dropped). A last pass of
     * strips then writes the output from its last sweep (rows_out) instead of calling
     * sink (through the slots when there are any); a last pass of blocks calls sink.
     * Same bits. */
    float *out;
    const float *out_base;
    size_t out_len;
    float out_scale;
} fwht_hooks;

/* How many units (blocks or strips) the last pass of a transform of 2^log2n floats hands
 * to a sink, in the order strips_first picks: sink groups beyond that many stay empty. */
size_t intdim__fwht_sink_units(unsigned log2n, int strips_first);

/* In-place transform of x (2^log2n floats, 64-byte aligned) with hooks (may be NULL).
 * Allocates nothing. */
void intdim__fwht_run(float *x, unsigned log2n, int kernel, int threads,
                      const fwht_hooks *hooks);

#endif
