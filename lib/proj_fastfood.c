/* Fastfood projection: y = H G Pi H B pad(x), output y[0:D] / sqrt(D * sum G^2), with H
 * the unnormalized Walsh-Hadamard transform of size L = nextpow2(D) (REFERENCE.md).
 *
 * Structure used for speed (exact, not an approximation): with k = nextpow2(d) the
 * padded input occupies the first k entries, and H_L = H_{L/k} (x) H_k makes H_L pad(Bx)
 * the size-k transform w = H_k(Bx) repeated L/k times. So the first transform is size
 * k and the gather reads w[Pi[i] mod k]; we store Pi mod k (2 bytes when k <= 2^16).
 * The gather and the multiply by G are fused into the first pass of the big transform,
 * the output scaling into its last pass.
 *
 * The adjoint is the exact transpose, in reverse: H_L, times G, fold the L entries into
 * k buckets by Pi[i] mod k, H_k, times B, first d entries, scale. (The reference code's
 * backward is this scaled by 1/L.) The fold is a reduction: it accumulates into a fixed
 * number of partial bucket arrays (one per fixed group of the last pass, never per
 * thread) that are then added in group order, so every thread count gives the same bits.
 *
 * Per-group mode (Aghajanyan's per-tensor variant): group g gets its own blocks with
 * L_g = nextpow2(D_g). When d > L_g the input is split into ceil(d / L_g) chunks, each
 * with its own block, and their outputs are summed (the reference code silently drops
 * theta_d[L_g:]). Each block is normalized as the single-block formula for its group and
 * then by 1/sqrt(n_groups), so every column of the whole D x d matrix has unit norm
 * (exactly when every D_g is a power of two). Block b draws its tables from streams
 * INTDIM_STREAM_FF_* + (b << 8), blocks numbered group by group, chunk by chunk.
 * Small blocks (and blocks of up to a tile when there are enough of them; see
 * choose_lane_blocks) run several at once, one per thread in its own lane of the
 * workspace: groups own disjoint rows of y, and the adjoint's per-block results are kept
 * and added to x in block order, so the bits are those of one block after another. (Equal chunks of a power-of-two size as the groups
 * give Le et al.'s stacked Fastfood, whose blocks share no data between threads.)
 *
 * G is stored as IEEE binary16: the Gaussian drawn in double, rounded once, and that
 * rounded value is the projection's G (the scale uses the same values, so columns keep unit
 * norm). Half the bytes of floats to stream per element and direction.
 *
 * Memory per padded parameter: G 2 bytes + Pi mod k 2 bytes (3 when k > 2^16, 4 when
 * k > 2^24) + the work array 4 bytes, plus small extras: signs as bits, the size-k
 * buffer (4k/L bytes: small unless d is near D), partial buckets (at most L/16 floats,
 * none for large k), and from L = 2^22 on the transform's strip slots (one 512 KiB slot
 * per thread, at most L/32 floats in all). So <= 9 bytes for d <= L/8. Per-group and
 * stacked modes with blocks on lanes add one lane per thread (the largest lane block's
 * scratch: 2^16 floats at most, or, when larger blocks are on lanes, at most half of
 * theirs, i.e. 2 bytes per parameter) and one wave of
 * adjoint results (d floats per block: 4 blocks per lane, or more while they take at most
 * a quarter of the lane blocks' padded floats, i.e. 1 byte per parameter). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "fwht_impl.h"
#include "proj_impl.h"

/* At most this many partial bucket arrays for the fold (it bounds useful threads), each at
 * least FOLD_MIN_STRIDE floats from the next where that fits (partial_stride). */
enum { MAX_FOLD_GROUPS = 16, FOLD_MIN_STRIDE = 4096 };

typedef struct ff_block {
    size_t in_first, in_len;   /* input chunk x[in_first, in_first + in_len) */
    size_t out_first, out_len; /* output rows y[out_first, out_first + out_len) */
    unsigned log2L, log2k;
    unsigned fold_groups;
    float scale;
    uint16_t *G;        /* L Gaussians, IEEE binary16 bits (the rounded value is G) */
    float *G32;         /* instead of G: imported float32 values (kernels gather32/fold32) */
    /* Pi[i] mod k in 2 bytes (k <= 2^16), 3 bytes (k <= 2^24: low 16 bits in pi16,
     * high 8 in pi_hi) or 4 bytes (pi32 only). */
    uint16_t *pi16;
    uint8_t *pi_hi;
    uint32_t *pi32;
    uint8_t *neg_signs; /* bit j set: B_j = -1 (in_len bits) */
    int on_lane;        /* runs on one thread, several blocks at once (choose_lane_blocks) */
} ff_block;

/* Where one block's scratch lives inside an area of the workspace (floats from the area's
 * start, each 64-byte aligned). */
typedef struct ff_area {
    size_t off_small, off_partial, off_slots;
    unsigned n_slots; /* the transform's per-thread strip slots (large L only) */
    size_t floats;    /* the area's size */
} ff_area;

typedef struct ff_state {
    size_t n_blocks;
    ff_block *blocks;
    /* The workspace: the main area (any block, run with all threads) at 0, then n_lanes
     * lane areas (blocks on lanes, one thread each) right after it, then the adjoint's
     * contributions of one wave of lane blocks (wave_blocks x contrib_len floats). */
    ff_area main, lane;
    unsigned n_lanes; /* 0: blocks run one after another */
    size_t off_contrib, wave_blocks, contrib_len;
} ff_state;

/* Which blocks run on lanes (one thread each, several blocks at once; per-group and stacked
 * modes). Up to 2^16 floats always: the transform itself uses threads only from 2^17 on, so
 * nothing is lost. Up to a tile (2^20 floats, which one thread transforms in its L3) when
 * there are at least two such blocks per thread, enough to balance the threads. Splitting
 * one block between cores moves half of it between them, and on the machine we measured
 * (a cache line 0.25 us from one core to the other) that cost more than the second core
 * saved; a block on one core also makes one pass over DRAM per direction instead of two.
 * Stacked blocks on two threads, apply + vjp: 2^17 at D = 2^24 22.7-22.9 -> 12.0-12.8 ms;
 * 2^20 at D = 2^26 80-87 -> 51-52 ms. The lanes' scratch stays under half the medium
 * blocks' floats (2 bytes per parameter). */
enum { LANE_MAX_LOG2 = 16, LANE_MEDIUM_MAX_LOG2 = FWHT_TILE_LOG2, MAX_LANES = 64 };

/* The adjoint's big transform runs its levels in ascending stride, as apply does (blocks,
 * then strips; the fold takes the last strip pass), except from 2^26 floats on when less
 * than a quarter of them is padding: there it runs the large strides first (strips, then
 * blocks handed whole to the fold). The order fixes the rounding, so it depends on the
 * block's shape (L and its rows) alone, never on the machine or the thread count.
 * Ascending order lets the first pass read g block by block and keep its output in
 * ordinary stores that stay in a large L3 (strips first made the first pass write the rows
 * around the caches and the next pass read them back from DRAM), and it skips the
 * transforms of the padding's blocks (fill_zero_from). On an Intel VM (2 MiB L2/core,
 * large L3), vjp on two threads, d = 1000, one process per order: 2^18 0.138 -> 0.122 ms,
 * 2^22 3.9 -> 2.6, 2^24 17.2-18.3 -> 13.0-13.5, 2^25 35.2 -> 31.2. At L = 2^26 ascending
 * order was slower without padding (D = 2^26: 85 against 75-78 ms; earlier 71.6 against
 * 65.8), faster with half of it (D = 2^25 + 3: 72-73 against 82-86) and even at a quarter
 * (D = 10^8, L = 2^27: 159-162 ms both). Not measured on the AMD machine of sessions 1-6. */
enum { FF_VJP_STRIPS_FIRST_MIN_LOG2 = 26 };

static int vjp_strips_first(unsigned log2L, size_t rows)
{
    size_t L = (size_t)1 << log2L;
    return log2L >= FF_VJP_STRIPS_FIRST_MIN_LOG2 && rows > L / 4 * 3;
}

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* The sign bits of B for a nibble of neg_signs, lane by lane. */
#define NEG 0x80000000u
static const uint32_t NIBBLE_SIGNS[16][4] = {
    {0, 0, 0, 0}, {NEG, 0, 0, 0}, {0, NEG, 0, 0}, {NEG, NEG, 0, 0},
    {0, 0, NEG, 0}, {NEG, 0, NEG, 0}, {0, NEG, NEG, 0}, {NEG, NEG, NEG, 0},
    {0, 0, 0, NEG}, {NEG, 0, 0, NEG}, {0, NEG, 0, NEG}, {NEG, NEG, 0, NEG},
    {0, 0, NEG, NEG}, {NEG, 0, NEG, NEG}, {0, NEG, NEG, NEG}, {NEG, NEG, NEG, NEG}};
#undef NEG

/* dst[j] = B_j * src[j] for j < n: the sign bit flipped where B_j = -1, without a branch
 * (B is random, so a branch mispredicts every other element: that cost about 2 us per
 * 1000 elements, which dominated small stacked blocks). The same bits as -v. */
static void copy_signed(float *dst, const float *src, const uint8_t *neg_signs, size_t n)
{
    size_t j = 0;
    for (; j + 8 <= n; j += 8) { /* a byte of signs: two 4-lane XORs the compiler vectorizes */
        unsigned bits = neg_signs[j >> 3];
        const uint32_t *lo = NIBBLE_SIGNS[bits & 15], *hi = NIBBLE_SIGNS[bits >> 4];
        uint32_t u[8];
        memcpy(u, src + j, sizeof u);
        for (unsigned l = 0; l < 4; l++) {
            u[l] ^= lo[l];
            u[l + 4] ^= hi[l];
        }
        memcpy(dst + j, u, sizeof u);
    }
    for (; j < n; j++) {
        uint32_t u;
        memcpy(&u, &src[j], sizeof u);
        u ^= (uint32_t)((neg_signs[j >> 3] >> (j & 7)) & 1) << 31;
        memcpy(&dst[j], &u, sizeof u);
    }
}

static int threads_for(const intdim_proj *p)
{
    return intdim__threads(p->threads);
}

/* Lanes to use with `threads` threads (0 or 1: one block after another). */
static unsigned lanes_for(const ff_state *st, int threads)
{
    return (unsigned)threads < st->n_lanes ? (unsigned)threads : st->n_lanes;
}

/* Units [0, n) of work on `lanes` threads, unit u belonging to lane (origin + u) mod
 * lanes (origin: the block number of unit 0, so a block has the same lane in the forward
 * pass and in every adjoint wave). Thread t first runs its own lane's units in order (the
 * same ones every call, so their tables and rows are still in its core's cache), then
 * takes units nobody has started, from the end of each other lane: the thread whose cache
 * the host did not just flush finishes first and helps the other. Each unit runs exactly
 * once (atomic claims); which thread runs a unit never changes its bits. A lane's claim
 * flags share cache lines only with each other (claims on one shared line bounced it
 * between the cores once per unit, and a line takes about 0.25 us to cross between this
 * machine's two cores), and a flag is read before it is claimed. */
enum { CLAIM_BYTES = 8192, CACHE_LINE = 64 };
typedef void (*lane_unit)(void *ctx, size_t unit);

/* Units as slots v = origin mod lanes + u: lane v mod lanes, row v / lanes. */
typedef struct claims {
    atomic_uchar *flag;
    unsigned lanes;
    size_t stride; /* flags per lane, a whole number of cache lines */
    size_t first, end; /* slots of units 0 and n */
    lane_unit unit;
    void *ctx;
} claims;

/* Claims slot v and runs its unit; 0 when somebody else had claimed it. */
static int claim_and_run(const claims *c, size_t v)
{
    atomic_uchar *f = &c->flag[(v % c->lanes) * c->stride + v / c->lanes];
    if (atomic_load_explicit(f, memory_order_relaxed) ||
        atomic_exchange_explicit(f, 1, memory_order_relaxed))
        return 0;
    c->unit(c->ctx, v - c->first);
    return 1;
}

/* Thread t's part: its own lane upwards, then each other lane from the top down until a
 * claimed unit. That is where the lane's owner got to (it claims upwards, so everything
 * below is taken) or another thread that is working down the same lane. */
static void run_lane_share(const claims *c, unsigned t)
{
    size_t lanes = c->lanes;
    for (size_t v = t < c->first ? t + lanes : t; v < c->end; v += lanes)
        claim_and_run(c, v);
    for (unsigned step = 1; step < lanes; step++) {
        size_t lane = (t + step) % lanes;
        if (lane >= c->end)
            continue; /* no unit on this lane */
        size_t top = lane + (c->end - 1 - lane) / lanes * lanes;
        for (size_t v = top; v >= c->first && claim_and_run(c, v) && v >= lanes;)
            v -= lanes;
    }
}

static void run_lane_units(unsigned lanes, size_t origin, size_t n, lane_unit unit, void *ctx)
{
    claims c = {NULL, lanes, 0, origin % lanes, origin % lanes + n, unit, ctx};
    size_t rows = (c.end + lanes - 1) / lanes;
    c.stride = (rows + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    if (lanes * c.stride > CLAIM_BYTES) { /* plain round robin over the same lanes */
        INTDIM_PARALLEL_FOR_ROUND_ROBIN(lanes, 1, v, c.end, {
            if (v >= c.first)
                unit(ctx, v - c.first);
        });
        return;
    }
    _Alignas(CACHE_LINE) atomic_uchar flag[CLAIM_BYTES];
    for (size_t i = 0; i < lanes * c.stride; i++)
        atomic_init(&flag[i], 0);
    c.flag = flag;
    INTDIM_PARALLEL_FOR_ROUND_ROBIN(lanes, 1, t, lanes, { run_lane_share(&c, (unsigned)t); });
}

/* This thread's lane area. */
static float *lane_area(const ff_state *st, float *work)
{
    size_t lane = (size_t)intdim__thread_num();
    return work + st->main.floats + lane * st->lane.floats;
}

/* ---- apply ------------------------------------------------------------------------ */

typedef struct apply_ctx {
    const ff_block *b;
    const fwht_kernel *k;
    const float *w;    /* H_k(B x): k floats */
    float *y;
    const float *base; /* add base after this block's rows when not NULL */
    int accumulate;    /* add into y (later chunks of a group) instead of writing */
    int stream;        /* y is far larger than the caches: write it around them */
} apply_ctx;

/* Floats from one partial bucket array to the next. Two threads fold into neighbouring
 * arrays at once, and arrays within a few KiB of each other were slower (the prefetchers
 * seem to pull the other core's lines): at D = 199,210, d = 1000 (two arrays of 1024
 * floats), two threads, `bench_train --steps 300 --threads 2` alternating, three rounds:
 * adjoint 0.147-0.150 -> 0.138-0.145 ms apart by 2048-8192 floats of padding. The padding
 * is taken only while all arrays stay within the L/16 floats the partials may use. */
static size_t partial_stride(const ff_block *b)
{
    size_t k = (size_t)1 << b->log2k, L = (size_t)1 << b->log2L;
    if (b->fold_groups > 1 && k < FOLD_MIN_STRIDE &&
        (size_t)b->fold_groups * FOLD_MIN_STRIDE <= L / 16)
        return FOLD_MIN_STRIDE;
    return k;
}

/* Pi[i] mod k, whatever its width. */
static inline size_t pi_at(const ff_block *b, size_t i)
{
    if (b->pi32 != NULL)
        return b->pi32[i];
    return (size_t)b->pi16[i] | (b->pi_hi != NULL ? (size_t)b->pi_hi[i] << 16 : 0);
}

/* dst[i] = G[i] * w[Pi[i] mod k]: the gather of the tiled first transform. */
static void fill_gather(void *vctx, float *dst, size_t start, size_t len)
{
    const apply_ctx *c = vctx;
    if (c->b->G32 != NULL) { /* imported float32 G */
        if (c->b->pi16 != NULL && c->b->pi_hi == NULL) {
            c->k->gather32(dst, c->b->G32 + start, c->b->pi16 + start, c->w, len);
            return;
        }
        for (size_t i = 0; i < len; i++) /* the same products, one at a time */
            dst[i] = c->b->G32[start + i] * c->w[pi_at(c->b, start + i)];
        return;
    }
    const uint16_t *G = c->b->G + start;
    if (c->b->pi_hi != NULL) {
        const uint16_t *lo = c->b->pi16 + start;
        const uint8_t *hi = c->b->pi_hi + start;
        for (size_t i = 0; i < len; i++)
            dst[i] = intdim__half_to_float(G[i]) * c->w[(size_t)lo[i] | (size_t)hi[i] << 16];
    } else if (c->b->pi16 != NULL) {
        c->k->gather16(dst, G, c->b->pi16 + start, c->w, len);
    } else {
        const uint32_t *pi = c->b->pi32 + start;
        for (size_t i = 0; i < len; i++)
            dst[i] = intdim__half_to_float(G[i]) * c->w[pi[i]];
    }
}

/* The gather and the block's first levels in one pass (2-byte Pi tables only). */
static void fill_gather_block(void *vctx, float *dst, size_t start, unsigned log2n)
{
    const apply_ctx *c = vctx;
    if (c->b->G32 != NULL)
        c->k->gather32_block(dst, c->b->G32 + start, c->b->pi16 + start, c->w, log2n);
    else
        c->k->gather16_block(dst, c->b->G + start, c->b->pi16 + start, c->w, log2n);
}

static void sink_output(void *vctx, const float *buf, size_t buf_stride, size_t rows,
                        size_t first, size_t row_step, size_t width, unsigned group)
{
    (void)group;
    const apply_ctx *c = vctx;
    size_t limit = c->b->out_len;
    float scale = c->b->scale;
    for (size_t r = 0; r < rows; r++) {
        size_t start = first + r * row_step;
        if (start >= limit)
            continue;
        size_t n = limit - start < width ? limit - start : width;
        const float *src = buf + r * buf_stride;
        float *dst = c->y + c->b->out_first + start;
        const float *base = c->base != NULL ? c->base + c->b->out_first + start : NULL;
        if (!c->accumulate) {
            c->k->scale_out(dst, src, scale, base, n, c->stream);
            continue;
        }
        /* later chunks of a group (per-group mode, rare): plain loops */
        for (size_t j = 0; j < n; j++)
            dst[j] += src[j] * scale;
        for (size_t j = 0; base != NULL && j < n; j++)
            dst[j] = base[j] + dst[j];
    }
}

/* Block b's rows of y (area: its scratch, run with `threads` threads). */
static void block_apply(const intdim_proj *p, const ff_block *b, const float *x,
                        const float *base, float *y, float *work, const ff_area *area,
                        int threads, int accumulate)
{
    float *w = work + area->off_small;
    size_t k = (size_t)1 << b->log2k;
    copy_signed(w, x + b->in_first, b->neg_signs, b->in_len);
    for (size_t j = b->in_len; j < k; j++)
        w[j] = 0.0f;
    intdim__fwht_run(w, b->log2k, p->kernel, threads, NULL);

    /* a large output leaves the caches anyway before anyone reads it */
    int stream = b->out_len >= ((size_t)1 << FWHT_STREAM_MIN_LOG2);
    apply_ctx ctx = {b, intdim__fwht_kernel_ops(p->kernel), w, y, base, accumulate, stream};
    fwht_hooks hooks = {.ctx = &ctx,
                        .fill = fill_gather,
                        .fill_block = b->pi16 != NULL && b->pi_hi == NULL
                                          ? fill_gather_block
                                          : NULL,
                        .sink = sink_output,
                        .scratch = work + area->off_slots,
                        .scratch_slots = area->n_slots};
    if (!accumulate) { /* sink_output's arithmetic, for the driver's fused last sweep */
        hooks.out = y + b->out_first;
        hooks.out_base = base != NULL ? base + b->out_first : NULL;
        hooks.out_len = b->out_len;
        hooks.out_scale = b->scale;
    }
    intdim__fwht_run(work, b->log2L, p->kernel, threads, &hooks);
}

/* Block i's part of y = P x (or base + P x when base != NULL). Blocks are ordered by
 * group, then chunk: chunk 0 writes its rows, later chunks add theirs, and base rides on
 * the last chunk of each group, so y_i = base_i + (sum of the chunks) exactly as apply
 * followed by the addition would round it. */
static void apply_chunk(const intdim_proj *p, size_t i, const float *x, const float *base,
                        float *y, float *work, const ff_area *area, int threads)
{
    const ff_state *st = p->state;
    const ff_block *b = &st->blocks[i];
    int last_chunk = i + 1 == st->n_blocks || st->blocks[i + 1].in_first == 0;
    block_apply(p, b, x, last_chunk ? base : NULL, y, work, area, threads, b->in_first != 0);
}

/* All chunks of the group whose first block is `first`, in order, on this thread's lane
 * (groups own disjoint rows of y, so groups may run in any order at once). */
static void apply_group_on_lane(const intdim_proj *p, size_t first, const float *x,
                                const float *base, float *y, float *work)
{
    const ff_state *st = p->state;
    float *lane = lane_area(st, work);
    size_t i = first;
    do
        apply_chunk(p, i++, x, base, y, lane, &st->lane, 1);
    while (i < st->n_blocks && st->blocks[i].in_first != 0);
}

typedef struct project_job {
    const intdim_proj *p;
    const float *x, *base;
    float *y, *work;
} project_job;

/* Unit i of the lane groups: the group starting at block i (nothing at later chunks). */
static void project_unit(void *vjob, size_t i)
{
    const project_job *job = vjob;
    const ff_block *b = &((const ff_state *)job->p->state)->blocks[i];
    if (b->on_lane && b->in_first == 0)
        apply_group_on_lane(job->p, i, job->x, job->base, job->y, job->work);
}

/* y = P x, or base + P x: blocks not on lanes one after another with all threads, then
 * the lane groups. */
static void ff_project(const intdim_proj *p, const float *x, const float *base, float *y,
                       float *work)
{
    const ff_state *st = p->state;
    int threads = threads_for(p);
    unsigned lanes = lanes_for(st, threads);
    for (size_t i = 0; i < st->n_blocks; i++)
        if (lanes < 2 || !st->blocks[i].on_lane)
            apply_chunk(p, i, x, base, y, work, &st->main, threads);
    if (lanes < 2)
        return;
    /* lane groups, one lane each (a group is a unit only at its first chunk), block i on
     * thread i mod lanes first: round robin instead of dynamic took 7 blocks of 2^15 on 2
     * threads from 85 to 65 us (its tables stay in that core's L2, also for the adjoint's
     * first wave) */
    project_job job = {p, x, base, y, work};
    run_lane_units(lanes, 0, st->n_blocks, project_unit, &job);
}

static void ff_apply(const intdim_proj *p, const float *x, float *y, float *work)
{
    ff_project(p, x, NULL, y, work);
}

static void ff_apply_base(const intdim_proj *p, const float *x, const float *base, float *y,
                          float *work)
{
    ff_project(p, x, base, y, work);
}

/* ---- adjoint ---------------------------------------------------------------------- */

typedef struct adjoint_ctx {
    const ff_block *b;
    const fwht_kernel *k;
    const float *g;
    float *partials; /* fold_groups arrays of k floats */
} adjoint_ctx;

/* g's rows of this block, zero-padded to L. */
static void fill_input(void *vctx, float *dst, size_t start, size_t len)
{
    const adjoint_ctx *c = vctx;
    size_t limit = c->b->out_len;
    size_t n = start >= limit ? 0 : (limit - start < len ? limit - start : len);
    memcpy(dst, c->g + c->b->out_first + start, n * sizeof(float));
    memset(dst + n, 0, (len - n) * sizeof(float));
}

/* Rows wholly inside g are read in place (no copy, no padding). */
static const float *source_input(void *vctx, size_t start, size_t len)
{
    const adjoint_ctx *c = vctx;
    return start + len <= c->b->out_len ? c->g + c->b->out_first + start : NULL;
}

/* partial[Pi[i] mod k] += G[i] * v[i], in index order within the group. */
static void sink_fold(void *vctx, const float *buf, size_t buf_stride, size_t rows,
                      size_t first, size_t row_step, size_t width, unsigned group)
{
    const adjoint_ctx *c = vctx;
    const ff_block *b = c->b;
    float *part = c->partials + (size_t)group * partial_stride(b);
    for (size_t r = 0; r < rows; r++) {
        size_t start = first + r * row_step;
        const float *src = buf + r * buf_stride;
        if (b->G32 != NULL && b->pi16 != NULL && b->pi_hi == NULL) { /* imported float32 G */
            c->k->fold32(part, b->G32 + start, b->pi16 + start, src, width);
            continue;
        }
        if (b->G32 != NULL) { /* the same order and rounding, one element at a time */
            for (size_t j = 0; j < width; j++)
                part[pi_at(b, start + j)] += b->G32[start + j] * src[j];
            continue;
        }
        const uint16_t *G = b->G + start;
        if (b->pi_hi != NULL) {
            const uint16_t *lo = b->pi16 + start;
            const uint8_t *hi = b->pi_hi + start;
            for (size_t j = 0; j < width; j++)
                part[(size_t)lo[j] | (size_t)hi[j] << 16] += intdim__half_to_float(G[j]) * src[j];
        } else if (b->pi16 != NULL) {
            c->k->fold16(part, G, b->pi16 + start, src, width);
        } else {
            const uint32_t *pi = b->pi32 + start;
            for (size_t j = 0; j < width; j++)
                part[pi[j]] += intdim__half_to_float(G[j]) * src[j];
        }
    }
}

/* dst[0..in_len) = block b's part of P^T g (or += it when accumulate). */
static void block_adjoint(const intdim_proj *p, const ff_block *b, const float *g, float *dst,
                          float *work, const ff_area *area, int threads, int accumulate)
{
    float *w = work + area->off_small;
    /* One group (large k): fold straight into w, no partial arrays at all. */
    float *partials = b->fold_groups == 1 ? w : work + area->off_partial;
    size_t k = (size_t)1 << b->log2k, stride = partial_stride(b);
    for (unsigned grp = 0; grp < b->fold_groups; grp++) /* the arrays, not the gaps between */
        memset(partials + grp * stride, 0, k * sizeof(float));

    adjoint_ctx ctx = {b, intdim__fwht_kernel_ops(p->kernel), g, partials};
    fwht_hooks hooks = {.ctx = &ctx,
                        .fill = fill_input,
                        .source = source_input,
                        .sink = sink_fold,
                        .n_groups = b->fold_groups,
                        .strips_first = vjp_strips_first(b->log2L, b->out_len),
                        .fill_zero_from = b->out_len, /* g's rows end there: padding */
                        .scratch = work + area->off_slots,
                        .scratch_slots = area->n_slots};
    intdim__fwht_run(work, b->log2L, p->kernel, threads, &hooks);

    /* Buckets: the partial arrays added in group order (elementwise, any split; threads
     * only where the work pays for waking them). */
    if (partials != w) {
        INTDIM_PARALLEL_FOR(threads, k >= ((size_t)1 << 16), j, k, {
            float sum = partials[j];
            for (unsigned grp = 1; grp < b->fold_groups; grp++)
                sum += partials[(size_t)grp * stride + j];
            w[j] = sum;
        });
    }
    intdim__fwht_run(w, b->log2k, p->kernel, threads, NULL);
    copy_signed(w, w, b->neg_signs, b->in_len);
    /* dst = w * scale, or dst + w * scale (the kernel's loop reads before it writes) */
    ctx.k->scale_out(dst, w, b->scale, accumulate ? dst : NULL, b->in_len, 0);
}

typedef struct wave_job {
    const intdim_proj *p;
    size_t first;
    const float *g;
    float *work;
} wave_job;

/* Unit u of a wave: block first + u into contribution slot u. */
static void wave_unit(void *vjob, size_t u)
{
    const wave_job *job = vjob;
    const ff_state *st = job->p->state;
    float *contrib = job->work + st->off_contrib + u * st->contrib_len;
    block_adjoint(job->p, &st->blocks[job->first + u], job->g, contrib,
                  lane_area(st, job->work), &st->lane, 1, 0);
}

/* Lane blocks [first, end) at once, each into its own contribution slot, then added
 * to x in block order: the same additions, in the same order, as one after another. */
static void adjoint_wave(const intdim_proj *p, size_t first, size_t end, unsigned lanes,
                         const float *g, float *x, float *work)
{
    const ff_state *st = p->state;
    float *contrib = work + st->off_contrib;
    wave_job job = {p, first, g, work};
    run_lane_units(lanes, first, end - first, wave_unit, &job);
    for (size_t i = first; i < end; i++) {
        const ff_block *b = &st->blocks[i];
        const float *c = contrib + (i - first) * st->contrib_len;
        for (size_t j = 0; j < b->in_len; j++)
            x[b->in_first + j] += c[j];
    }
}

static void ff_adjoint(const intdim_proj *p, const float *g, float *x, float *work)
{
    const ff_state *st = p->state;
    int threads = threads_for(p);
    if (st->n_blocks == 1) {
        block_adjoint(p, &st->blocks[0], g, x, work, &st->main, threads, 0);
        return;
    }
    /* Chunks of different groups overlap in x: start from zero and add, block order. */
    memset(x, 0, p->d_lin * sizeof(float));
    unsigned lanes = lanes_for(st, threads);
    for (size_t i = 0; i < st->n_blocks;) {
        const ff_block *b = &st->blocks[i];
        if (lanes < 2 || !b->on_lane) {
            block_adjoint(p, b, g, x + b->in_first, work, &st->main, threads, 1);
            i++;
            continue;
        }
        size_t end = i + 1;
        while (end < st->n_blocks && end - i < st->wave_blocks && st->blocks[end].on_lane)
            end++;
        adjoint_wave(p, i, end, lanes, g, x, work);
        i = end;
    }
}

/* ---- create / destroy ------------------------------------------------------------- */

static void ff_destroy(intdim_proj *p)
{
    ff_state *st = p->state;
    if (st == NULL)
        return;
    for (size_t i = 0; st->blocks != NULL && i < st->n_blocks; i++) {
        intdim__free(st->blocks[i].G);
        intdim__free(st->blocks[i].G32);
        intdim__free(st->blocks[i].pi16);
        intdim__free(st->blocks[i].pi_hi);
        intdim__free(st->blocks[i].pi32);
        intdim__free(st->blocks[i].neg_signs);
    }
    intdim__free(st->blocks);
    intdim__free(st);
    p->state = NULL;
}

static const proj_ops fastfood_ops = {ff_apply, ff_adjoint, ff_destroy, ff_apply_base};

static unsigned fold_groups_for(unsigned log2L, unsigned log2k, int strips_first)
{
    /* Enough groups to keep threads busy, few enough that the partial arrays stay
     * under L/16 floats, and no more than the units the fold's pass has: the others
     * would stay empty, yet be cleared and added up on every vjp (at 2^18, whose last
     * pass has 2 strips, 16 groups did that for 14: vjp of D = 199,210 alternating in
     * one process, 0.216-0.220 -> 0.211 ms on one thread, 0.126-0.128 -> 0.123 on two). */
    size_t groups = ((size_t)1 << log2L) / ((size_t)16 << log2k);
    size_t units = intdim__fwht_sink_units(log2L, strips_first);
    if (groups > units)
        groups = units;
    if (groups < 1)
        groups = 1;
    if (groups > MAX_FOLD_GROUPS)
        groups = MAX_FOLD_GROUPS;
    return (unsigned)groups;
}

/* Describe block b (no tables yet). */
static void describe_block(ff_block *b, size_t in_first, size_t in_len, size_t out_first,
                           size_t out_len, size_t L)
{
    memset(b, 0, sizeof *b);
    b->in_first = in_first;
    b->in_len = in_len;
    b->out_first = out_first;
    b->out_len = out_len;
    b->log2L = intdim__log2_exact(L);
    b->log2k = intdim__log2_exact(intdim__next_pow2(in_len));
    b->fold_groups = fold_groups_for(b->log2L, b->log2k, vjp_strips_first(b->log2L, out_len));
}

static size_t block_table_bytes(const ff_block *b, int g32)
{
    size_t L = (size_t)1 << b->log2L;
    size_t pi_bytes = b->log2k <= 16 ? 2 : b->log2k <= 24 ? 3 : 4;
    size_t g_bytes = g32 ? sizeof(float) : sizeof(uint16_t);
    return L * (g_bytes + pi_bytes) + (b->in_len + 7) / 8;
}

/* Block b's tables allocated (G as binary16, or float32 when g32), contents undefined
 * except the cleared sign bits. */
static int alloc_tables(ff_block *b, int g32)
{
    size_t L = (size_t)1 << b->log2L;
    if (g32)
        b->G32 = intdim__alloc(L * sizeof(float));
    else
        b->G = intdim__alloc(L * sizeof(uint16_t));
    b->neg_signs = intdim__calloc((b->in_len + 7) / 8, 1);
    int pi_ok;
    if (b->log2k <= 24) {
        b->pi16 = intdim__alloc(L * sizeof(uint16_t));
        if (b->log2k > 16)
            b->pi_hi = intdim__alloc(L);
        pi_ok = b->pi16 != NULL && (b->log2k <= 16 || b->pi_hi != NULL);
    } else {
        b->pi32 = intdim__alloc(L * sizeof(uint32_t));
        pi_ok = b->pi32 != NULL;
    }
    if ((b->G == NULL && b->G32 == NULL) || b->neg_signs == NULL || !pi_ok)
        return intdim__fail_nomem("Fastfood tables", block_table_bytes(b, g32));
    return INTDIM_OK;
}

/* Pi[i] mod k stored in the block's width. */
static void set_pi(ff_block *b, size_t i, uint64_t pi)
{
    uint32_t v = (uint32_t)(pi & (((uint64_t)1 << b->log2k) - 1));
    if (b->pi32 != NULL) {
        b->pi32[i] = v;
        return;
    }
    b->pi16[i] = (uint16_t)(v & 0xffffu);
    if (b->pi_hi != NULL)
        b->pi_hi[i] = (uint8_t)(v >> 16);
}

/* The scale of the stored G (binary16 or float32 values): 1 / sqrt(groups * rows *
 * sum G^2), so columns have unit norm exactly when the rows are all of L. */
static void set_scale(ff_block *b, size_t n_groups_scale)
{
    size_t L = (size_t)1 << b->log2L;
    double sum_sq = 0.0;
    for (size_t i = 0; i < L; i++) {
        double g = b->G32 != NULL ? b->G32[i] : intdim__half_to_float(b->G[i]);
        sum_sq += g * g;
    }
    b->scale = (float)(1.0 / sqrt((double)n_groups_scale * (double)b->out_len * sum_sq));
}

/* Fill block number `index`'s tables from the counter generator. */
static int build_tables(ff_block *b, uint64_t seed, size_t index, size_t n_groups_scale,
                        int threads)
{
    size_t L = (size_t)1 << b->log2L;
    uint64_t shift = (uint64_t)index << 8;
    int status = alloc_tables(b, 0);
    if (status != INTDIM_OK)
        return status;

    for (size_t j = 0; j < b->in_len; j++)
        if (intdim__rng_sign(seed, INTDIM_STREAM_FF_B + shift, j) < 0.0f)
            b->neg_signs[j >> 3] |= (uint8_t)(1u << (j & 7));

    /* The permutation is drawn in full (into pi32 itself when Pi mod k needs 32 bits),
     * then reduced mod k. */
    uint32_t *perm = b->pi32 != NULL ? b->pi32 : intdim__alloc(L * sizeof(uint32_t));
    if (perm == NULL)
        return intdim__fail_nomem("the Fastfood permutation", L * sizeof(uint32_t));
    intdim__rng_permutation_u32(perm, L, seed, INTDIM_STREAM_FF_PI + shift);
    for (size_t i = 0; i < L; i++)
        set_pi(b, i, perm[i]);
    if (perm != b->pi32)
        intdim__free(perm);
    /* Waking a thread team costs more than drawing a small table (and idle OpenMP
     * workers spin afterwards, stealing a core from the host's own work). */
    INTDIM_PARALLEL_FOR(threads, L >= ((size_t)1 << 16), i, L, {
        b->G[i] = intdim__float_to_half(intdim__rng_gauss(seed, INTDIM_STREAM_FF_G + shift, i));
    });
    set_scale(b, n_groups_scale); /* of the stored values: columns have unit norm exactly */
    return INTDIM_OK;
}

/* The row groups blocks follow: FASTFOOD_BLOCK's chunks of ff_block rows (the last one
 * shorter), per-group mode's groups, or none (0: one block for all of D). */
static size_t n_row_groups(const intdim_proj *p)
{
    if (p->ff_block > 0)
        return (p->D - 1) / p->ff_block + 1;
    return p->per_group ? p->n_groups : 0;
}

static void row_group(const intdim_proj *p, size_t g, size_t *first, size_t *len)
{
    if (p->ff_block > 0) {
        *first = g * p->ff_block;
        *len = p->D - *first < p->ff_block ? p->D - *first : p->ff_block;
        return;
    }
    *first = p->group_offsets[g];
    *len = p->group_sizes[g];
}

/* Blocks: ceil(d_lin / L_g) chunks per row group. */
static int count_blocks(const intdim_proj *p, size_t *n_blocks)
{
    size_t n_groups = n_row_groups(p);
    if (n_groups == 0) {
        *n_blocks = 1;
        return INTDIM_OK;
    }
    size_t total = 0;
    for (size_t g = 0; g < n_groups; g++) {
        size_t first, len;
        row_group(p, g, &first, &len);
        size_t L = intdim__next_pow2(len);
        size_t chunks = (p->d_lin + L - 1) / L;
        if (total > SIZE_MAX / 2 - chunks)
            return intdim__fail(INTDIM_ETOOBIG, "Fastfood: too many per-group blocks");
        total += chunks;
    }
    *n_blocks = total;
    return INTDIM_OK;
}

static void describe_blocks(const intdim_proj *p, ff_block *blocks)
{
    size_t n_groups = n_row_groups(p);
    if (n_groups == 0) {
        describe_block(&blocks[0], 0, p->d_lin, 0, p->D, intdim__next_pow2(p->D));
        return;
    }
    size_t i = 0;
    for (size_t g = 0; g < n_groups; g++) {
        size_t rows_first, rows;
        row_group(p, g, &rows_first, &rows);
        size_t L = intdim__next_pow2(rows);
        for (size_t first = 0; first < p->d_lin; first += L) {
            size_t len = p->d_lin - first < L ? p->d_lin - first : L;
            describe_block(&blocks[i++], first, len, rows_first, rows, L);
        }
    }
}

/* The transform's strip slots (fwht_impl.h): one per thread that may run, for arrays
 * large enough to use them, and never more than L/32 floats in all. */
static unsigned strip_slots_for(size_t L)
{
    if (L < ((size_t)1 << FWHT_STREAM_MIN_LOG2))
        return 0;
    size_t slots = (size_t)intdim__threads(0);
    size_t cap = L / 32 / FWHT_STRIP_FLOATS;
    return (unsigned)(slots < cap ? slots : cap);
}

/* The scratch layout for the blocks with on_lane == `lane` (-1: all blocks). */
static ff_area plan_area(const ff_state *st, int lane, int with_slots)
{
    size_t max_L = 0, max_k = 0, max_partial = 0;
    for (size_t i = 0; i < st->n_blocks; i++) {
        const ff_block *b = &st->blocks[i];
        if (lane >= 0 && b->on_lane != lane)
            continue;
        size_t L = (size_t)1 << b->log2L, k = (size_t)1 << b->log2k;
        max_L = L > max_L ? L : max_L;
        max_k = k > max_k ? k : max_k;
        size_t part = b->fold_groups > 1 ? (size_t)b->fold_groups * partial_stride(b) : 0;
        max_partial = part > max_partial ? part : max_partial;
    }
    ff_area a;
    a.off_small = round16(max_L);
    a.off_partial = a.off_small + round16(max_k);
    a.off_slots = a.off_partial + round16(max_partial);
    a.n_slots = with_slots ? strip_slots_for(max_L) : 0;
    a.floats = a.off_slots + (size_t)a.n_slots * FWHT_STRIP_FLOATS;
    return a;
}

/* Lanes when blocks run on them: one per thread that may run, at most MAX_LANES. */
static size_t available_lanes(void)
{
    size_t lanes = (size_t)intdim__threads(0);
    return lanes < MAX_LANES ? lanes : MAX_LANES;
}

/* Marks the blocks that run on lanes (see LANE_MEDIUM_MAX_LOG2). */
static void choose_lane_blocks(ff_state *st)
{
    size_t n_medium = 0, lanes = available_lanes();
    for (size_t i = 0; i < st->n_blocks; i++) {
        unsigned lg = st->blocks[i].log2L;
        n_medium += lg > LANE_MAX_LOG2 && lg <= LANE_MEDIUM_MAX_LOG2;
    }
    int medium_on_lanes = lanes >= 2 && n_medium >= 2 * lanes;
    for (size_t i = 0; i < st->n_blocks; i++) {
        unsigned lg = st->blocks[i].log2L;
        st->blocks[i].on_lane = lg <= LANE_MAX_LOG2 ||
                                (medium_on_lanes && lg <= LANE_MEDIUM_MAX_LOG2);
    }
}

/* The lanes, when two or more blocks are on them; and the adjoint's wave of
 * contributions: at least a few blocks per lane, so the hand-out balances them, and more
 * while their contributions take at most a quarter of the lane blocks' floats (blocks
 * much smaller than d otherwise pay a fork and join per handful of blocks: 195 blocks of
 * 1024 took longer on two threads than on one). */
static void plan_lanes(ff_state *st)
{
    size_t n_on_lane = 0, max_in = 0, lane_floats = 0;
    for (size_t i = 0; i < st->n_blocks; i++) {
        if (!st->blocks[i].on_lane)
            continue;
        n_on_lane++;
        max_in = st->blocks[i].in_len > max_in ? st->blocks[i].in_len : max_in;
        lane_floats += (size_t)1 << st->blocks[i].log2L;
    }
    size_t lanes = available_lanes();
    st->n_lanes = n_on_lane >= 2 && lanes >= 2 ? (unsigned)lanes : 0;
    st->lane = plan_area(st, 1, 0);
    st->contrib_len = round16(max_in);
    st->wave_blocks = 0;
    if (st->n_lanes > 0) { /* then contrib_len >= 16 */
        size_t wave = 4 * (size_t)st->n_lanes;
        size_t affordable = lane_floats / 4 / st->contrib_len;
        wave = affordable > wave ? affordable : wave;
        st->wave_blocks = wave < n_on_lane ? wave : n_on_lane;
    }
    st->off_contrib = st->main.floats + (size_t)st->n_lanes * st->lane.floats;
}

/* Work layout and sizes (g32: G in float32); fails with ETOOBIG over the memory budget. */
static int plan_memory(intdim_proj *p, ff_state *st, int g32)
{
    choose_lane_blocks(st);
    size_t tables = sizeof *st;
    tables += st->n_blocks * sizeof(ff_block);
    for (size_t i = 0; i < st->n_blocks; i++)
        tables += block_table_bytes(&st->blocks[i], g32);
    st->main = plan_area(st, -1, 1);
    plan_lanes(st);
    p->work_floats = st->off_contrib + st->wave_blocks * st->contrib_len;
    p->state_bytes = tables;
    double total = (double)tables + 4.0 * (double)p->work_floats;
    if (total > p->memory_budget)
        return intdim__fail(INTDIM_ETOOBIG,
                            "Fastfood with D = %zu, d = %zu needs %.3g GB (tables and "
                            "workspace), over the memory budget of %.3g GB",
                            p->D, p->d, total / 1e9, p->memory_budget / 1e9);
    return INTDIM_OK;
}

/* Undo a failed create. */
static int abandon(intdim_proj *p, int status)
{
    ff_destroy(p);
    p->ops = NULL;
    p->state_bytes = 0;
    p->work_floats = 0;
    return status;
}

/* The state of a block layout without tables yet (p->state set). */
static int start_state(intdim_proj *p, ff_state **out)
{
    size_t max_D = (size_t)1 << 32; /* permutations are drawn as uint32 */
    if (intdim__next_pow2(p->D) > max_D)
        return intdim__fail(INTDIM_ETOOBIG, "Fastfood: D = %zu pads past 2^32 entries", p->D);
    ff_state *st = intdim__calloc(1, sizeof *st);
    if (st == NULL)
        return intdim__fail_nomem("Fastfood state", sizeof *st);
    p->state = st;
    p->ops = &fastfood_ops;
    *out = st;
    return INTDIM_OK;
}

int intdim__fastfood_create(intdim_proj *p)
{
    ff_state *st = NULL;
    int status = start_state(p, &st);
    if (status != INTDIM_OK)
        return status;
    status = count_blocks(p, &st->n_blocks);
    if (status == INTDIM_OK &&
        (double)st->n_blocks * (double)sizeof(ff_block) > p->memory_budget)
        status = intdim__fail(INTDIM_ETOOBIG,
                              "Fastfood: %zu per-group blocks exceed the memory budget of "
                              "%.3g GB", st->n_blocks, p->memory_budget / 1e9);
    if (status == INTDIM_OK) {
        st->blocks = intdim__calloc(st->n_blocks, sizeof(ff_block));
        if (st->blocks == NULL)
            status = intdim__fail_nomem("Fastfood blocks",
                                        intdim__mul_size(st->n_blocks, sizeof(ff_block)));
    }
    if (status == INTDIM_OK) {
        describe_blocks(p, st->blocks);
        status = plan_memory(p, st, 0);
    }
    size_t row_groups = n_row_groups(p), scale_groups = row_groups > 0 ? row_groups : 1;
    for (size_t i = 0; status == INTDIM_OK && i < st->n_blocks; i++)
        status = build_tables(&st->blocks[i], p->seed, i, scale_groups, intdim__threads(0));
    return status == INTDIM_OK ? INTDIM_OK : abandon(p, status);
}

/* ---- explicit tables (REFERENCE's B, Pi, G) ----------------------------------------- */

/* Is Pi a permutation (its entries already checked to lie in [0, L))? Marks each value in
 * a bitmap of L bits. */
static int check_permutation(const ff_tables *t)
{
    uint64_t *seen = intdim__calloc((t->L + 63) / 64, sizeof(uint64_t));
    if (seen == NULL)
        return intdim__fail_nomem("the permutation check", (t->L + 63) / 64 * 8);
    int status = INTDIM_OK;
    for (size_t i = 0; i < t->L && status == INTDIM_OK; i++) {
        uint64_t v = (uint64_t)t->Pi[i], bit = (uint64_t)1 << (v & 63);
        if (seen[v >> 6] & bit)
            status = intdim__fail(INTDIM_EINVAL, "intdim_proj_create_fastfood_tables: Pi is "
                                                 "not a permutation: %llu appears twice (again "
                                                 "at Pi[%zu])", (unsigned long long)v, i);
        seen[v >> 6] |= bit;
    }
    intdim__free(seen);
    return status;
}

int intdim__fastfood_check_tables(const ff_tables *t)
{
    const char *fn = "intdim_proj_create_fastfood_tables";
    double sum_sq = 0.0;
    /* Scaling G does not change P (the column scale divides it out), but float has to hold
     * the products and sums on the way: |G| up to 2^64 and a normal scale keep them finite
     * for any reasonable input. */
    const double g_max = 0x1p64;
    for (size_t i = 0; i < t->L; i++) {
        if (t->B[i] != 1.0f && t->B[i] != -1.0f)
            return intdim__fail(INTDIM_EINVAL, "%s: B[%zu] = %g is not +1 or -1", fn, i,
                                (double)t->B[i]);
        if (!isfinite(t->G[i]))
            return intdim__fail(INTDIM_EINVAL, "%s: G[%zu] is not finite", fn, i);
        if (fabs((double)t->G[i]) > g_max)
            return intdim__fail(INTDIM_EINVAL, "%s: |G[%zu]| = %g exceeds 2^64 (G's scale does "
                                               "not change the projection: divide G by a "
                                               "constant)", fn, i, (double)t->G[i]);
        if (t->Pi[i] < 0 || (uint64_t)t->Pi[i] >= t->L)
            return intdim__fail(INTDIM_EINVAL, "%s: Pi[%zu] = %lld is outside [0, L = %zu)", fn,
                                i, (long long)t->Pi[i], t->L);
        sum_sq += (double)t->G[i] * (double)t->G[i];
    }
    if (!(sum_sq > 0.0) || !isfinite(sum_sq))
        return intdim__fail(INTDIM_EINVAL, "%s: sum of G^2 = %g (G must not be all zero)", fn,
                            sum_sq);
    /* the column scale set_scale computes, which must be a normal float */
    double scale = 1.0 / sqrt((double)t->D * sum_sq);
    if (!(scale >= (double)FLT_MIN && scale <= (double)FLT_MAX))
        return intdim__fail(INTDIM_EINVAL, "%s: sum of G^2 = %g gives the column scale %g, "
                                           "outside float's normal range (G's scale does not "
                                           "change the projection: multiply G by a constant)",
                            fn, sum_sq, scale);
    return check_permutation(t);
}

/* Does every G fit binary16 exactly? Then the fast kernels serve it, with the same bits. */
static int g_is_binary16(const ff_tables *t)
{
    for (size_t i = 0; i < t->L; i++)
        if (intdim__half_to_float(intdim__float_to_half(t->G[i])) != t->G[i])
            return 0;
    return 1;
}

int intdim__fastfood_create_from(intdim_proj *p, const ff_tables *t)
{
    ff_state *st = NULL;
    int status = start_state(p, &st);
    if (status != INTDIM_OK)
        return status;
    st->n_blocks = 1;
    st->blocks = intdim__calloc(1, sizeof(ff_block));
    if (st->blocks == NULL)
        return abandon(p, intdim__fail_nomem("Fastfood blocks", sizeof(ff_block)));
    ff_block *b = &st->blocks[0];
    describe_block(b, 0, p->d_lin, 0, p->D, t->L);
    int g32 = !g_is_binary16(t);
    status = plan_memory(p, st, g32);
    if (status == INTDIM_OK)
        status = alloc_tables(b, g32);
    if (status != INTDIM_OK)
        return abandon(p, status);
    for (size_t j = 0; j < b->in_len; j++)
        if (t->B[j] < 0.0f)
            b->neg_signs[j >> 3] |= (uint8_t)(1u << (j & 7));
    for (size_t i = 0; i < t->L; i++) {
        set_pi(b, i, (uint64_t)t->Pi[i]);
        if (g32)
            b->G32[i] = t->G[i];
        else
            b->G[i] = intdim__float_to_half(t->G[i]);
    }
    set_scale(b, 1);
    return INTDIM_OK;
}

int intdim__fastfood_export(const intdim_proj *p, float *B, int64_t *Pi, float *G)
{
    const ff_state *st = p->state;
    const ff_block *b = &st->blocks[0];
    size_t L = (size_t)1 << b->log2L;
    for (size_t j = 0; j < L; j++) /* the signs stored for j < d, the same stream after */
        B[j] = j < b->in_len ? ((b->neg_signs[j >> 3] >> (j & 7)) & 1 ? -1.0f : 1.0f)
                             : intdim__rng_sign(p->seed, INTDIM_STREAM_FF_B, j);
    for (size_t i = 0; i < L; i++)
        G[i] = intdim__half_to_float(b->G[i]);
    /* the whole permutation, drawn again (the tables keep only Pi mod k) */
    intdim__rng_permutation_i64(Pi, L, p->seed, INTDIM_STREAM_FF_PI);
    return INTDIM_OK;
}
