/* Walsh-Hadamard kernels and the Fastfood kind, tested from the inside (internal headers).
 * Kernels: agreement with the O(n^2) definition, with each other bit for bit, across
 * thread counts, and the involution H H = n I. Fastfood: the REFERENCE formula computed
 * independently in double, the adjoint identity, unit column norms, bitwise equality
 * across threads and kernels, the memory budget and the bytes per parameter. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fwht_impl.h"
#include "proj_impl.h"
#include "ref_wht.h"
#include "test_threads.h"

static const int ALL_KERNELS[] = {INTDIM_KERNEL_PORTABLE, INTDIM_KERNEL_AVX2,
                                  INTDIM_KERNEL_AVX512};

static float *alloc_floats(size_t n)
{
    float *p = intdim__alloc(n * sizeof(float) + 64);
    ck_assert_ptr_nonnull(p);
    return p;
}

static void fill_gauss(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        x[i] = intdim__rng_gauss(seed, 99, i);
}

static int popcount_parity(size_t v)
{
    int p = 0;
    while (v) {
        p ^= 1;
        v &= v - 1;
    }
    return p;
}

/* ---- kernels --------------------------------------------------------------------- */

START_TEST(portable_matches_naive_definition)
{
    /* Small integers keep every sum exact, so the comparison is exact too. */
    for (unsigned m = 0; m <= 8; m++) {
        size_t n = (size_t)1 << m;
        float *x = alloc_floats(n);
        double *want = calloc(n, sizeof(double));
        for (size_t i = 0; i < n; i++)
            x[i] = (float)((int)intdim__rng_below(7, m, i, 17) - 8);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++)
                want[i] += (popcount_parity(i & j) ? -1.0 : 1.0) * x[j];
        intdim__fwht(x, m, INTDIM_KERNEL_PORTABLE, 1);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg((double)x[i] == want[i], "n=%zu i=%zu got %g want %g", n, i,
                          (double)x[i], want[i]);
        free(want);
        intdim__free(x);
    }
}
END_TEST

START_TEST(kernels_bitwise_equal_portable)
{
    for (unsigned m = 0; m <= 22; m++) {
        size_t n = (size_t)1 << m;
        float *ref = alloc_floats(n);
        float *x = alloc_floats(n);
        fill_gauss(ref, n, m);
        intdim__fwht(ref, m, INTDIM_KERNEL_PORTABLE, 1);
        for (size_t k = 1; k < 3; k++) {
            if (!intdim__fwht_kernel_available(ALL_KERNELS[k]))
                continue;
            fill_gauss(x, n, m);
            intdim__fwht(x, m, ALL_KERNELS[k], 1);
            ck_assert_msg(memcmp(x, ref, n * sizeof(float)) == 0, "kernel %d differs at 2^%u",
                          ALL_KERNELS[k], m);
        }
        intdim__free(x);
        intdim__free(ref);
    }
}
END_TEST

/* 1 against 2 and 3 threads. Below 2^17 (FWHT_MIN_PARALLEL_LOG2) the transform runs on
 * one thread whatever it is asked; the sizes from 2^17 on are the ones that split work. */
START_TEST(threads_bitwise_equal)
{
    static const unsigned sizes[] = {17, 18, 19, 22};
    require_two_threads("threads_bitwise_equal");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = (size_t)1 << sizes[s];
        float *one = alloc_floats(n);
        float *two = alloc_floats(n);
        for (size_t k = 0; k < 3; k++) {
            if (!intdim__fwht_kernel_available(ALL_KERNELS[k]))
                continue;
            fill_gauss(one, n, s);
            intdim__fwht(one, sizes[s], ALL_KERNELS[k], 1);
            for (int threads = 2; threads <= 3; threads++) {
                fill_gauss(two, n, s);
                intdim__fwht(two, sizes[s], ALL_KERNELS[k], threads);
                ck_assert_msg(memcmp(one, two, n * sizeof(float)) == 0,
                              "kernel %d 2^%u: 1 and %d threads differ", ALL_KERNELS[k],
                              sizes[s], threads);
            }
        }
        intdim__free(two);
        intdim__free(one);
    }
}
END_TEST

START_TEST(transform_twice_is_n_times_identity)
{
    static const unsigned sizes[] = {0, 1, 5, 12, 17, 20};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = (size_t)1 << sizes[s];
        float *x = alloc_floats(n);
        fill_gauss(x, n, 1000 + s);
        intdim__fwht(x, sizes[s], intdim__fwht_best_kernel(), 2);
        intdim__fwht(x, sizes[s], intdim__fwht_best_kernel(), 2);
        for (size_t i = 0; i < n; i++) {
            double want = intdim__rng_gauss(1000 + s, 99, i);
            double got = x[i] / (double)n;
            ck_assert_msg(fabs(got - want) <= 1e-4 * (1.0 + fabs(want)),
                          "2^%u i=%zu: %g vs %g", sizes[s], i, got, want);
        }
        intdim__free(x);
    }
}
END_TEST

/* 2^26: the levels above the tiles take one strip pass of 6 levels. H e_j is column
 * j of H, exactly +-1 everywhere: a level skipped, repeated or paired at the wrong stride
 * shows. */
START_TEST(large_transform_of_unit_vector)
{
    const unsigned m = 26;
    size_t n = (size_t)1 << m, j = (size_t)0x2A5A5A5 & (n - 1);
    float *x = alloc_floats(n);
    memset(x, 0, n * sizeof(float));
    x[j] = 1.0f;
    intdim__fwht(x, m, intdim__fwht_best_kernel(), 2);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += x[i] != (popcount_parity(i & j) ? -1.0f : 1.0f);
    ck_assert_msg(bad == 0, "2^%u: %zu entries differ from column %zu of H", m, bad, j);
    intdim__free(x);
}
END_TEST

/* ---- binary16 (Fastfood's G) ------------------------------------------------------ */

/* Every finite half widens to the float it denotes (sign * mant * 2^(e - 25), subnormals
 * mant * 2^-24) and narrows back to itself. */
START_TEST(half_round_trip_is_exact)
{
    for (uint32_t h = 0; h < 0x10000u; h++) {
        if ((h & 0x7c00u) == 0x7c00u)
            continue; /* Inf and NaN: checked below */
        uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
        double want = e == 0 ? ldexp((double)m, -24) : ldexp((double)(m | 0x400u), (int)e - 25);
        if (h & 0x8000u)
            want = -want;
        float f = intdim__half_to_float((uint16_t)h);
        ck_assert_msg((double)f == want && !!signbit(f) == !!(h & 0x8000u), "half %#x -> %a",
                      h, (double)f);
        ck_assert_msg(intdim__float_to_half(f) == h, "half %#x does not come back", h);
    }
    ck_assert(isinf(intdim__half_to_float(0x7c00u)) && isnan(intdim__half_to_float(0x7e00u)));
}
END_TEST

/* Narrowing rounds to nearest, ties to even, overflows to Inf and underflows through the
 * subnormals. */
START_TEST(half_rounding)
{
    ck_assert_uint_eq(intdim__float_to_half(1.0f), 0x3c00u);
    ck_assert_uint_eq(intdim__float_to_half(-2.0f), 0xc000u);
    ck_assert_uint_eq(intdim__float_to_half(1.0f + 0x1p-11f), 0x3c00u);            /* tie: even */
    ck_assert_uint_eq(intdim__float_to_half(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01u); /* above */
    ck_assert_uint_eq(intdim__float_to_half(1.0f + 3 * 0x1p-11f), 0x3c02u);        /* tie: even */
    ck_assert_uint_eq(intdim__float_to_half(2047.5f), 0x6800u); /* carries into the exponent */
    ck_assert_uint_eq(intdim__float_to_half(65504.0f), 0x7bffu);
    ck_assert_uint_eq(intdim__float_to_half(65519.0f), 0x7bffu);
    ck_assert_uint_eq(intdim__float_to_half(65520.0f), 0x7c00u);
    ck_assert_uint_eq(intdim__float_to_half(0x1p-24f), 0x0001u);  /* smallest subnormal */
    ck_assert_uint_eq(intdim__float_to_half(0x1p-25f), 0x0000u);  /* tie: even (zero) */
    ck_assert_uint_eq(intdim__float_to_half(0x1.8p-24f), 0x0002u); /* tie: even */
    ck_assert_uint_eq(intdim__float_to_half(0x1p-14f - 0x1p-26f), 0x0400u); /* rounds up to normal */
    ck_assert_uint_eq(intdim__float_to_half(-1e-30f), 0x8000u);
    /* against the nearest half found by brute force, for floats across the whole range */
    for (int k = 0; k < 20000; k++) {
        float f = (float)(intdim__rng_gauss(5, 6, (uint64_t)k) * ldexp(1.0, k % 40 - 26));
        uint16_t h = intdim__float_to_half(f);
        double err = fabs((double)intdim__half_to_float(h) - (double)f);
        for (int step = -1; step <= 1; step += 2) {
            uint16_t other = (uint16_t)(h + step);
            if ((other & 0x7c00u) == 0x7c00u || ((other ^ h) & 0x8000u))
                continue;
            double e2 = fabs((double)intdim__half_to_float(other) - (double)f);
            ck_assert_msg(err < e2 || (err == e2 && !(h & 1u)), "%a -> %#x, not nearest",
                          (double)f, h);
        }
    }
}
END_TEST

/* The SIMD kernels widen G with vcvtph2ps: the same floats as the portable conversion, for
 * every non-NaN half (gathered against w = 1, so dst is G itself). */
START_TEST(kernels_widen_half_like_portable)
{
    enum { N = 0x10000 - 2 * 0x3ff }; /* all halves but the NaNs */
    uint16_t *G = malloc(N * sizeof(uint16_t)), *pi = calloc(N, sizeof(uint16_t));
    float *ref = alloc_floats(N), *got = alloc_floats(N), one = 1.0f;
    size_t n = 0;
    for (uint32_t h = 0; h < 0x10000u; h++)
        if ((h & 0x7c00u) != 0x7c00u || (h & 0x3ffu) == 0)
            G[n++] = (uint16_t)h;
    ck_assert_uint_eq(n, N);
    intdim__fwht_kernel_ops(INTDIM_KERNEL_PORTABLE)->gather16(ref, G, pi, &one, n);
    for (size_t k = 1; k < 3; k++) {
        if (!intdim__fwht_kernel_available(ALL_KERNELS[k]))
            continue;
        for (int hw = 0; hw <= 1; hw++) {
            const fwht_kernel *ops = intdim__fwht_kernel_variant(ALL_KERNELS[k], hw);
            ops->gather16(got, G, pi, &one, n);
            ck_assert_msg(memcmp(got, ref, n * sizeof(float)) == 0, "kernel %d hw %d",
                          ALL_KERNELS[k], hw);
            float part_ref[1] = {0.0f}, part[1] = {0.0f};
            intdim__fwht_kernel_ops(INTDIM_KERNEL_PORTABLE)->fold16(part_ref, G, pi, ref, 4096);
            ops->fold16(part, G, pi, ref, 4096);
            ck_assert_msg(memcmp(part, part_ref, sizeof part) == 0, "fold, kernel %d",
                          ALL_KERNELS[k]);
        }
    }
    intdim__free(got);
    intdim__free(ref);
    free(pi);
    free(G);
}
END_TEST

/* Every kernel's gathers (both variants) and fold give the portable bits on random
 * buckets, with lengths that leave vector tails, and the fold adds in index order (two
 * adds to one bucket in one vector included). */
START_TEST(gathers_and_fold_match_portable)
{
    enum { K = 1024, N = 40000 };
    uint16_t *G = malloc(N * sizeof(uint16_t)), *pi = malloc(N * sizeof(uint16_t));
    float *w = alloc_floats(K), *src = alloc_floats(N);
    float *want = alloc_floats(N), *got = alloc_floats(N);
    float *part_want = alloc_floats(K), *part_got = alloc_floats(K), *G32 = alloc_floats(N);
    fill_gauss(w, K, 5);
    fill_gauss(src, N, 6);
    fill_gauss(G32, N, 7);
    uint64_t state = 99;
    for (size_t i = 0; i < N; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        G[i] = intdim__float_to_half((float)((state >> 33) % 4001) / 1000.0f - 2.0f);
        pi[i] = (uint16_t)((state >> 20) % K);
    }
    pi[5] = pi[9] = 17; /* one bucket twice in a vector */
    const fwht_kernel *ref = intdim__fwht_portable_kernel();
    static const size_t lengths[] = {N, N - 1, 7, 33};
    for (size_t k = 2; k < 6; k++) {
        if (!intdim__fwht_kernel_available(ALL_KERNELS[k / 2]))
            continue;
        const fwht_kernel *ops = intdim__fwht_kernel_variant(ALL_KERNELS[k / 2], (int)(k % 2));
        for (size_t c = 0; c < 4; c++) {
            size_t n = lengths[c];
            ref->gather16(want, G, pi, w, n);
            ops->gather16(got, G, pi, w, n);
            ck_assert_msg(memcmp(got, want, n * sizeof(float)) == 0, "gather, kernel %d/%zu n=%zu",
                          ALL_KERNELS[k / 2], k % 2, n);
            memset(part_want, 0, K * sizeof(float));
            memset(part_got, 0, K * sizeof(float));
            ref->fold16(part_want, G, pi, src, n);
            ops->fold16(part_got, G, pi, src, n);
            ck_assert_msg(memcmp(part_got, part_want, K * sizeof(float)) == 0,
                          "fold, kernel %d n=%zu", ALL_KERNELS[k / 2], n);
            /* float32 G (imported tables): values binary16 cannot hold */
            ref->gather32(want, G32, pi, w, n);
            ops->gather32(got, G32, pi, w, n);
            ck_assert_msg(memcmp(got, want, n * sizeof(float)) == 0,
                          "gather32, kernel %d/%zu n=%zu", ALL_KERNELS[k / 2], k % 2, n);
            memset(part_want, 0, K * sizeof(float));
            memset(part_got, 0, K * sizeof(float));
            ref->fold32(part_want, G32, pi, src, n);
            ops->fold32(part_got, G32, pi, src, n);
            ck_assert_msg(memcmp(part_got, part_want, K * sizeof(float)) == 0,
                          "fold32, kernel %d n=%zu", ALL_KERNELS[k / 2], n);
        }
    }
    /* the portable float32 loops are the definition: one rounding per element */
    ref->gather32(got, G32, pi, w, N);
    for (size_t i = 0; i < N; i++)
        ck_assert(got[i] == G32[i] * w[pi[i]]);
    intdim__free(G32);
    intdim__free(part_got);
    intdim__free(part_want);
    intdim__free(got);
    intdim__free(want);
    intdim__free(src);
    intdim__free(w);
    free(pi);
    free(G);
}
END_TEST

/* gather16_block = gather16 then block (and gather32_block = gather32 then block), bit for
 * bit, on every kernel and block size
 * (below 2^(2 log2 lanes) the SIMD kernels fall back to the two calls). */
START_TEST(gather_block_is_gather_then_block)
{
    enum { K = 1024 };
    size_t n = (size_t)1 << FWHT_BLOCK_LOG2;
    uint16_t *G = malloc(n * sizeof(uint16_t)), *pi = malloc(n * sizeof(uint16_t));
    float *w = alloc_floats(K), *want = alloc_floats(n), *got = alloc_floats(n);
    float *G32 = alloc_floats(n);
    fill_gauss(w, K, 4);
    fill_gauss(G32, n, 8);
    for (size_t i = 0; i < n; i++) {
        G[i] = intdim__float_to_half((float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f);
        pi[i] = (uint16_t)((i * 40503u + 7) % K);
    }
    for (size_t k = 0; k < 6; k++) {
        if (!intdim__fwht_kernel_available(ALL_KERNELS[k / 2]))
            continue;
        /* both gathers: scalar loads, hardware gather instructions */
        const fwht_kernel *ops = intdim__fwht_kernel_variant(ALL_KERNELS[k / 2], (int)(k % 2));
        for (unsigned m = 0; m <= FWHT_BLOCK_LOG2; m++) {
            size_t len = (size_t)1 << m;
            ops->gather16(want, G, pi, w, len);
            ops->block(want, want, m);
            memset(got, 0xff, len * sizeof(float));
            ops->gather16_block(got, G, pi, w, m);
            ck_assert_msg(memcmp(got, want, len * sizeof(float)) == 0, "kernel %d/%zu, 2^%u",
                          ALL_KERNELS[k / 2], k % 2, m);
            ops->gather32(want, G32, pi, w, len);
            ops->block(want, want, m);
            memset(got, 0xff, len * sizeof(float));
            ops->gather32_block(got, G32, pi, w, m);
            ck_assert_msg(memcmp(got, want, len * sizeof(float)) == 0,
                          "gather32_block, kernel %d/%zu, 2^%u", ALL_KERNELS[k / 2], k % 2, m);
        }
    }
    intdim__free(G32);
    intdim__free(got);
    intdim__free(want);
    intdim__free(w);
    free(pi);
    free(G);
}
END_TEST

START_TEST(unavailable_kernel_ids_are_reported)
{
    ck_assert_int_eq(intdim__fwht_kernel_available(INTDIM_KERNEL_PORTABLE), 1);
    ck_assert_int_eq(intdim__fwht_kernel_available(INTDIM_KERNEL_AUTO), 0);
    ck_assert_int_eq(intdim__fwht_kernel_available(42), 0);
    ck_assert_int_eq(intdim__fwht_kernel_available(intdim__fwht_best_kernel()), 1);
}
END_TEST

/* ---- the driver's hooks and strip slots -------------------------------------------- */

typedef struct hook_io {
    const float *in; /* the transform's input, read by fill and source */
    float *out;      /* where the sink copies the output */
} hook_io;

static void fill_copy(void *ctx, float *dst, size_t start, size_t len)
{
    memcpy(dst, ((const hook_io *)ctx)->in + start, len * sizeof(float));
}

static const float *source_in_place(void *ctx, size_t start, size_t len)
{
    (void)len;
    return ((const hook_io *)ctx)->in + start;
}

static void sink_copy(void *ctx, const float *buf, size_t buf_stride, size_t rows, size_t first,
                      size_t row_step, size_t width, unsigned group)
{
    (void)group;
    float *out = ((hook_io *)ctx)->out;
    for (size_t r = 0; r < rows; r++)
        memcpy(out + first + r * row_step, buf + r * buf_stride, width * sizeof(float));
}

/* Transform `in` through the hooks (fill/source from in, sink into out; work is the
 * driver's array, clobbered), with `slots` strip slots (0: none). */
static void run_hooked(const float *in, float *out, float *work, unsigned m, int kernel,
                       int reverse, float *scratch, unsigned slots)
{
    hook_io io = {in, out};
    fwht_hooks hooks = {.ctx = &io,
                        .fill = fill_copy,
                        .source = source_in_place,
                        .sink = sink_copy,
                        .strips_first = reverse,
                        .scratch = slots > 0 ? scratch : NULL,
                        .scratch_slots = slots};
    memset(work, 0xff, sizeof(float) << m); /* NaN garbage: nothing may read it */
    intdim__fwht_run(work, m, kernel, 2, &hooks);
}

/* want = the plain transform of x (2^m floats) with this kernel and thread count. */
static void plain_transform(float *want, const float *x, unsigned m, int kernel, int threads)
{
    memcpy(want, x, sizeof(float) << m);
    intdim__fwht(want, m, kernel, threads);
}

/* fill_zero_from: blocks and tiles of the first pass wholly in the zero padding are cleared
 * instead of transformed, with the bits of transforming the +0s. Padding from inside a
 * block, from a block boundary inside a tile, and whole tiles (2^22: four tiles); a small
 * array of blocks only; every kernel, 1 and 2 threads, with the fill or the source. */
START_TEST(zero_padding_is_skipped_with_the_same_bits)
{
    static const struct {
        unsigned m;
        size_t zero_from;
    } cases[] = {{22, ((size_t)1 << 20) + 5}, {22, (size_t)3 << 15}, {18, 40000}, {18, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        unsigned m = cases[c].m;
        size_t n = (size_t)1 << m, z = cases[c].zero_from;
        float *x = alloc_floats(n), *want = alloc_floats(n), *got = alloc_floats(n);
        float *work = alloc_floats(n);
        fill_gauss(x, n, 50 + c);
        memset(x + z, 0, (n - z) * sizeof(float));
        for (size_t k = 0; k < 6; k++) {
            int kernel = ALL_KERNELS[k % 3], threads = 1 + (int)(k / 3);
            if (!intdim__fwht_kernel_available(kernel))
                continue;
            plain_transform(want, x, m, kernel, threads);
            for (int with_source = 0; with_source <= 1; with_source++) {
                hook_io io = {x, got};
                fwht_hooks hooks = {.ctx = &io,
                                    .fill = fill_copy,
                                    .source = with_source ? source_in_place : NULL,
                                    .sink = sink_copy,
                                    .fill_zero_from = z};
                memset(work, 0xff, n * sizeof(float)); /* NaN: a skipped block must be cleared */
                memset(got, 0, n * sizeof(float));
                intdim__fwht_run(work, m, kernel, threads, &hooks);
                ck_assert_msg(memcmp(got, want, n * sizeof(float)) == 0,
                              "2^%u zero from %zu, kernel %d, %d thread(s), source %d", m, z,
                              kernel, threads, with_source);
            }
        }
        intdim__free(work);
        intdim__free(got);
        intdim__free(want);
        intdim__free(x);
    }
}
END_TEST

/* Arrays of one block: the block's first sweep reads the input straight from the source
 * hook instead of a filled copy; every kernel and size (the small ones fall back to the
 * portable loops) gives the plain transform's bits. */
START_TEST(blocks_read_from_the_source)
{
    for (unsigned m = 1; m <= FWHT_BLOCK_LOG2; m++) {
        size_t n = (size_t)1 << m;
        float *x = alloc_floats(n), *want = alloc_floats(n), *got = alloc_floats(n);
        float *work = alloc_floats(n);
        fill_gauss(x, n, m);
        for (size_t k = 0; k < 3; k++) {
            int kernel = ALL_KERNELS[k];
            if (!intdim__fwht_kernel_available(kernel))
                continue;
            plain_transform(want, x, m, kernel, 1);
            run_hooked(x, got, work, m, kernel, 0, NULL, 0);
            ck_assert_msg(memcmp(got, want, n * sizeof(float)) == 0,
                          "kernel %d, 2^%u: transform from the source differs", kernel, m);
        }
        intdim__free(work);
        intdim__free(got);
        intdim__free(want);
        intdim__free(x);
    }
}
END_TEST

/* 2^25 is large enough for every slot path: the strip pass above the tiles has 5 levels,
 * more than one sweep on every kernel, so it goes through the slot and back with
 * streaming stores; the sink's pass hands over the slot. Slots must not change a bit,
 * whether every thread has one or only the first (the other then works in place). */
START_TEST(strip_slots_change_no_bits)
{
    const unsigned m = 25;
    size_t n = (size_t)1 << m;
    float *x = alloc_floats(n), *want = alloc_floats(n), *got = alloc_floats(n);
    float *work = alloc_floats(n), *rev_portable = alloc_floats(n);
    float *scratch = alloc_floats(2 * (size_t)FWHT_STRIP_FLOATS);
    fill_gauss(x, n, 25);
    for (size_t k = 0; k < 3; k++) {
        int kernel = ALL_KERNELS[k];
        if (!intdim__fwht_kernel_available(kernel))
            continue;
        plain_transform(want, x, m, kernel, 2);
        for (unsigned slots = 1; slots <= 2; slots++) {
            /* in place, no fill or sink: the slot only carries the two-sweep pass */
            memcpy(got, x, n * sizeof(float));
            fwht_hooks plain = {.scratch = scratch, .scratch_slots = slots};
            intdim__fwht_run(got, m, kernel, 2, &plain);
            ck_assert_msg(memcmp(got, want, n * sizeof(float)) == 0,
                          "kernel %d, %u slot(s): in-place transform differs", kernel, slots);
            /* fill then sink, default order: the same values as the plain transform */
            memset(got, 0, n * sizeof(float));
            run_hooked(x, got, work, m, kernel, 0, scratch, slots);
            ck_assert_msg(memcmp(got, want, n * sizeof(float)) == 0,
                          "kernel %d, %u slot(s): hooked transform differs", kernel, slots);
        }
        /* strips first (the adjoint's order from 2^26, the source read in place): its own
         * rounding, the same with and without slots, and on every kernel */
        run_hooked(x, want, work, m, kernel, 1, scratch, 0);
        if (kernel == INTDIM_KERNEL_PORTABLE)
            memcpy(rev_portable, want, n * sizeof(float));
        ck_assert_msg(memcmp(want, rev_portable, n * sizeof(float)) == 0,
                      "kernel %d: strips-first transform differs from the portable one", kernel);
        for (unsigned slots = 1; slots <= 2; slots++) {
            run_hooked(x, got, work, m, kernel, 1, scratch, slots);
            ck_assert_msg(memcmp(got, want, n * sizeof(float)) == 0,
                          "kernel %d, %u slot(s): strips-first transform differs", kernel,
                          slots);
        }
    }
    intdim__free(scratch);
    intdim__free(rev_portable);
    intdim__free(work);
    intdim__free(got);
    intdim__free(want);
    intdim__free(x);
}
END_TEST

/* The affine output (hooks.out): what the last pass writes straight from its last
 * sweep must be the sink's bits, out[i] = base[i] + v[i] * scale for i < out_len, and
 * nothing past out_len. */
typedef struct affine_io {
    const float *in, *base;
    float *out;
    size_t out_len;
    float scale;
} affine_io;

static void fill_affine(void *ctx, float *dst, size_t start, size_t len)
{
    memcpy(dst, ((const affine_io *)ctx)->in + start, len * sizeof(float));
}

static void sink_affine(void *ctx, const float *buf, size_t buf_stride, size_t rows,
                        size_t first, size_t row_step, size_t width, unsigned group)
{
    (void)group;
    const affine_io *io = ctx;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < width; j++) {
            size_t i = first + r * row_step + j;
            float v = buf[r * buf_stride + j] * io->scale;
            if (i < io->out_len)
                io->out[i] = io->base != NULL ? io->base[i] + v : v;
        }
}

/* out (out_len + 16 floats) = the affine output of the transform of in, through the
 * sink (fused = 0) or through hooks.out (fused = 1); the tail keeps its guard value. */
static void run_affine(const float *in, const float *base, float *out, size_t out_len,
                       float *work, unsigned m, int kernel, float *scratch, int fused)
{
    /* scratch NULL: no slots (the first levels of a two-sweep pass then run in place) */
    affine_io io = {in, base, out, out_len, 0.375f};
    fwht_hooks hooks = {.ctx = &io,
                        .fill = fill_affine,
                        .sink = sink_affine,
                        .scratch = scratch,
                        .scratch_slots = scratch != NULL ? 2 : 0};
    if (fused) {
        hooks.out = out;
        hooks.out_base = base;
        hooks.out_len = out_len;
        hooks.out_scale = io.scale;
    }
    for (size_t i = 0; i < out_len + 16; i++)
        out[i] = -7.0f;
    memset(work, 0xff, sizeof(float) << m);
    intdim__fwht_run(work, m, kernel, 2, &hooks);
}

/* 2^18 (no slots, no streaming), 2^23 (the pass above the tiles: 3 levels, one sweep
 * from x) and 2^25 (5 levels, more than one sweep on every kernel: through the slot
 * first, or in place without slots); outputs that end inside the last rows, in the middle
 * (half the rows dropped) or at the end; with and without base; on an aligned output and
 * one a float off (streaming stores start at the first aligned column, the columns before
 * and after go one at a time). */
START_TEST(affine_output_matches_sink)
{
    static const unsigned sizes[] = {18, 23, 25};
    for (size_t si = 0; si < 3; si++) {
        unsigned m = sizes[si];
        size_t n = (size_t)1 << m;
        size_t lens[] = {n, n - 5, n / 2 + 3};
        float *x = alloc_floats(n), *work = alloc_floats(n), *base = alloc_floats(n);
        float *want = alloc_floats(n + 32), *got = alloc_floats(n + 32);
        float *scratch = alloc_floats(2 * (size_t)FWHT_STRIP_FLOATS);
        fill_gauss(x, n, m);
        fill_gauss(base, n, m + 100);
        for (size_t k = 0; k < 3; k++) {
            int kernel = ALL_KERNELS[k];
            if (!intdim__fwht_kernel_available(kernel))
                continue;
            for (size_t li = 0; li < 3; li++)
                for (int with_base = 0; with_base <= 1; with_base++)
                    for (size_t shift = 0; shift <= 1; shift++) {
                        /* 2^25 on the portable kernel is slow: one case there */
                        if (m == 25 && kernel == INTDIM_KERNEL_PORTABLE && (li + shift) != 1)
                            continue;
                        const float *b = with_base ? base : NULL;
                        size_t len = lens[li];
                        /* slots or none: 2^25 on the SIMD kernels only */
                        float *slots = m != 25 || kernel == INTDIM_KERNEL_PORTABLE ||
                                               with_base
                                           ? scratch
                                           : NULL;
                        run_affine(x, b, want + shift, len, work, m, kernel, scratch, 0);
                        run_affine(x, b, got + shift, len, work, m, kernel, slots, 1);
                        ck_assert_msg(memcmp(got + shift, want + shift,
                                             (len + 16) * sizeof(float)) == 0,
                                      "kernel %d, 2^%u, out_len %zu, base %d, shift %zu, "
                                      "slots %d: fused output differs from the sink's",
                                      kernel, m, len, with_base, shift, slots != NULL);
                    }
        }
        intdim__free(scratch);
        intdim__free(got);
        intdim__free(want);
        intdim__free(base);
        intdim__free(work);
        intdim__free(x);
    }
}
END_TEST

/* ---- Fastfood through a hand-filled handle ---------------------------------------- */

typedef struct ff_fixture {
    struct intdim_proj p;
    size_t offsets[16];
    size_t sizes[16];
    float *work;
} ff_fixture;

static void ff_init(ff_fixture *f, size_t D, size_t d, uint64_t seed, size_t n_groups,
                    const size_t *sizes, int per_group)
{
    memset(f, 0, sizeof *f);
    f->p.kind = INTDIM_PROJ_FASTFOOD;
    f->p.D = D;
    f->p.d = d;
    f->p.d_lin = d;
    f->p.seed = seed;
    f->p.memory_budget = 8e9;
    f->p.threads = 1;
    f->p.kernel = intdim__fwht_best_kernel();
    if (n_groups > 0) {
        size_t off = 0;
        for (size_t g = 0; g < n_groups; g++) {
            f->sizes[g] = sizes[g];
            f->offsets[g] = off;
            off += sizes[g];
        }
        f->offsets[n_groups] = off;
        ck_assert_uint_eq(off, D);
        f->p.n_groups = n_groups;
        f->p.group_sizes = f->sizes;
        f->p.group_offsets = f->offsets;
        f->p.per_group = per_group;
    }
}

static void ff_create(ff_fixture *f)
{
    int status = intdim__fastfood_create(&f->p);
    ck_assert_msg(status == INTDIM_OK, "create: %s", intdim_last_error());
    f->work = alloc_floats(f->p.work_floats + 16);
}

static void ff_destroy_fixture(ff_fixture *f)
{
    f->p.ops->destroy(&f->p);
    intdim__free(f->work);
}

static void ff_apply(ff_fixture *f, const float *x, float *y)
{
    f->p.ops->apply(&f->p, x, y, f->work);
}

static void ff_adjoint(ff_fixture *f, const float *g, float *x)
{
    f->p.ops->adjoint(&f->p, g, x, f->work);
}


/* One block of REFERENCE's formula with full-size transforms, added into y. */
static void reference_block(const float *x, size_t n, size_t Dg, double *y, uint64_t seed,
                            uint64_t block, double scale_groups)
{
    size_t L = intdim__next_pow2(Dg);
    uint64_t shift = block << 8;
    double *v = calloc(L, sizeof(double));
    double *u = calloc(L, sizeof(double));
    uint32_t *perm = malloc(L * sizeof(uint32_t));
    for (size_t j = 0; j < n; j++)
        v[j] = intdim__rng_sign(seed, INTDIM_STREAM_FF_B + shift, j) * (double)x[j];
    ref_wht_double(v, L);
    intdim__rng_permutation_u32(perm, L, seed, INTDIM_STREAM_FF_PI + shift);
    double sum_sq = 0.0;
    for (size_t i = 0; i < L; i++) {
        /* G is the Gaussian rounded once to binary16 (the stored value defines P) */
        float drawn = intdim__rng_gauss(seed, INTDIM_STREAM_FF_G + shift, i);
        double G = intdim__half_to_float(intdim__float_to_half(drawn));
        sum_sq += G * G;
        u[i] = G * v[perm[i]];
    }
    ref_wht_double(u, L);
    double s = sqrt(scale_groups * (double)Dg * sum_sq);
    for (size_t i = 0; i < Dg; i++)
        y[i] += u[i] / s;
    free(perm);
    free(u);
    free(v);
}

/* REFERENCE semantics, with per-group chunking as documented in proj_fastfood.c. */
static void reference_apply(const ff_fixture *f, const float *x, double *y)
{
    const struct intdim_proj *p = &f->p;
    memset(y, 0, p->D * sizeof(double));
    if (!p->per_group) {
        reference_block(x, p->d_lin, p->D, y, p->seed, 0, 1.0);
        return;
    }
    uint64_t block = 0;
    for (size_t g = 0; g < p->n_groups; g++) {
        size_t L = intdim__next_pow2(p->group_sizes[g]);
        for (size_t first = 0; first < p->d_lin; first += L) {
            size_t n = p->d_lin - first < L ? p->d_lin - first : L;
            reference_block(x + first, n, p->group_sizes[g], y + p->group_offsets[g], p->seed,
                            block++, (double)p->n_groups);
        }
    }
}

static void check_against_reference(ff_fixture *f)
{
    size_t D = f->p.D, d = f->p.d_lin;
    float *x = alloc_floats(d);
    float *y = alloc_floats(D);
    double *want = calloc(D, sizeof(double));
    fill_gauss(x, d, 5);
    ff_apply(f, x, y);
    reference_apply(f, x, want);
    double max_abs = 0.0;
    for (size_t i = 0; i < D; i++)
        max_abs = fmax(max_abs, fabs(want[i]));
    ck_assert(max_abs > 0.0);
    for (size_t i = 0; i < D; i++)
        ck_assert_msg(fabs(y[i] - want[i]) <= 2e-5 * max_abs, "D=%zu d=%zu i=%zu: %g vs %g",
                      D, d, i, (double)y[i], want[i]);
    free(want);
    intdim__free(y);
    intdim__free(x);
}

START_TEST(fastfood_matches_reference_formula)
{
    /* The last case passes several L3 tiles (L = 2^21). */
    static const size_t cases[][2] = {{1, 1},       {1000, 37},   {1024, 1000},
                                      {3000, 3000}, {40000, 700}, {70000, 5},
                                      {(1 << 20) + 5, 1000}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ff_fixture f;
        ff_init(&f, cases[c][0], cases[c][1], 11 + c, 0, NULL, 0);
        ff_create(&f);
        check_against_reference(&f);
        ff_destroy_fixture(&f);
    }
}
END_TEST

START_TEST(fastfood_per_group_matches_reference)
{
    /* d = 300 exceeds L_g for the groups of 100 (128) and 37 (64): chunks are summed. */
    static const size_t sizes[] = {100, 37, 500};
    ff_fixture f;
    ff_init(&f, 637, 300, 3, 3, sizes, 1);
    ff_create(&f);
    check_against_reference(&f);
    ff_destroy_fixture(&f);
}
END_TEST

static void check_adjoint(ff_fixture *f)
{
    size_t D = f->p.D, d = f->p.d_lin;
    float *x = alloc_floats(d), *px = alloc_floats(D);
    float *g = alloc_floats(D), *ptg = alloc_floats(d);
    fill_gauss(x, d, 21);
    fill_gauss(g, D, 22);
    ff_apply(f, x, px);
    ff_adjoint(f, g, ptg);
    double lhs = 0.0, rhs = 0.0, norm = 0.0;
    for (size_t i = 0; i < D; i++) {
        lhs += (double)px[i] * g[i];
        norm += fabs((double)px[i] * g[i]);
    }
    for (size_t j = 0; j < d; j++)
        rhs += (double)x[j] * ptg[j];
    ck_assert_msg(fabs(lhs - rhs) <= 1e-5 * norm + 1e-12, "D=%zu d=%zu: <Px,g>=%.9g <x,P'g>=%.9g",
                  D, d, lhs, rhs);
    intdim__free(ptg);
    intdim__free(g);
    intdim__free(px);
    intdim__free(x);
}

START_TEST(fastfood_adjoint_identity)
{
    static const size_t cases[][2] = {{1, 1},        {5000, 1},      {4096, 4096},
                                      {3000, 2999},  {70000, 500},   {200000, 70000},
                                      {1 << 18, 1000}, {(1 << 20) + 5, 1000},
                                      {(1 << 21) - 3, 70000}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ff_fixture f;
        ff_init(&f, cases[c][0], cases[c][1], 100 + c, 0, NULL, 0);
        ff_create(&f);
        check_adjoint(&f);
        f.p.threads = 2;
        check_adjoint(&f);
        ff_destroy_fixture(&f);
    }
}
END_TEST

START_TEST(fastfood_per_group_adjoint_identity)
{
    static const size_t sizes[] = {100, 37, 500, 70000};
    ff_fixture f;
    ff_init(&f, 70637, 1500, 9, 4, sizes, 1); /* d > L_g for the first three groups */
    ff_create(&f);
    check_adjoint(&f);
    ff_destroy_fixture(&f);
}
END_TEST

static void check_column_norms(ff_fixture *f, double tol)
{
    size_t D = f->p.D, d = f->p.d_lin;
    float *e = alloc_floats(d), *col = alloc_floats(D);
    for (size_t j = 0; j < d; j += (d > 8 ? d / 8 : 1)) {
        memset(e, 0, d * sizeof(float));
        e[j] = 1.0f;
        ff_apply(f, e, col);
        double sq = 0.0;
        for (size_t i = 0; i < D; i++)
            sq += (double)col[i] * col[i];
        ck_assert_msg(fabs(sq - 1.0) <= tol, "D=%zu column %zu: squared norm %.9g", D, j, sq);
    }
    intdim__free(col);
    intdim__free(e);
}

START_TEST(fastfood_unit_columns)
{
    ff_fixture f;
    ff_init(&f, 4096, 100, 8, 0, NULL, 0); /* D = L: exactly one */
    ff_create(&f);
    check_column_norms(&f, 1e-5);
    ff_destroy_fixture(&f);

    ff_init(&f, 1 << 17, 3, 8, 0, NULL, 0);
    ff_create(&f);
    check_column_norms(&f, 1e-5);
    ff_destroy_fixture(&f);

    static const size_t sizes[] = {64, 256, 1024};
    ff_init(&f, 1344, 300, 8, 3, sizes, 1); /* d > L_g for two groups */
    ff_create(&f);
    check_column_norms(&f, 1e-5);
    ff_destroy_fixture(&f);

    ff_init(&f, 3000, 50, 8, 0, NULL, 0); /* D < L: one on average, not exactly */
    ff_create(&f);
    check_column_norms(&f, 0.2);
    ff_destroy_fixture(&f);
}
END_TEST

/* apply and adjoint give identical bits for every (kernel, threads) combination. */
static void check_bitwise_everywhere(ff_fixture *f)
{
    size_t D = f->p.D, d = f->p.d_lin;
    float *x = alloc_floats(d), *g = alloc_floats(D);
    float *y_ref = alloc_floats(D), *x_ref = alloc_floats(d);
    /* y one float past an aligned block: outputs must not assume aligned host buffers */
    float *y_block = alloc_floats(D + 1), *y = y_block + 1, *xt = alloc_floats(d);
    fill_gauss(x, d, 31);
    fill_gauss(g, D, 32);
    f->p.kernel = INTDIM_KERNEL_PORTABLE;
    f->p.threads = 1;
    ff_apply(f, x, y_ref);
    ff_adjoint(f, g, x_ref);
    for (size_t k = 0; k < 3; k++) {
        if (!intdim__fwht_kernel_available(ALL_KERNELS[k]))
            continue;
        for (int t = 1; t <= 2; t++) {
            f->p.kernel = ALL_KERNELS[k];
            f->p.threads = t;
            ff_apply(f, x, y);
            ff_adjoint(f, g, xt);
            ck_assert_msg(memcmp(y, y_ref, D * sizeof(float)) == 0, "apply kernel %d threads %d",
                          ALL_KERNELS[k], t);
            ck_assert_msg(memcmp(xt, x_ref, d * sizeof(float)) == 0,
                          "adjoint kernel %d threads %d", ALL_KERNELS[k], t);
        }
    }
    intdim__free(xt);
    intdim__free(y_block);
    intdim__free(x_ref);
    intdim__free(y_ref);
    intdim__free(g);
    intdim__free(x);
}

START_TEST(fastfood_bitwise_across_threads_and_kernels)
{
    ff_fixture f;
    ff_init(&f, (1 << 19) + 77, 1000, 4, 0, NULL, 0);
    ff_create(&f);
    check_bitwise_everywhere(&f);
    ff_destroy_fixture(&f);

    /* Several tiles; fold groups finer (k = 1024) and coarser (k = 2^17) than tiles. */
    ff_init(&f, (1 << 20) + 5, 1000, 4, 0, NULL, 0);
    ff_create(&f);
    check_bitwise_everywhere(&f);
    ff_destroy_fixture(&f);
    ff_init(&f, (1 << 21) - 3, 70000, 4, 0, NULL, 0);
    ff_create(&f);
    check_bitwise_everywhere(&f);
    ff_destroy_fixture(&f);
    /* L = 2^23: apply streams its output (non-temporal stores), the adjoint's first pass
     * falls back to copies (padding) */
    ff_init(&f, (1 << 22) + 1, 1000, 4, 0, NULL, 0);
    ff_create(&f);
    check_bitwise_everywhere(&f);
    ff_destroy_fixture(&f);
    /* D = L: the adjoint's first pass reads g in place (no padding), streaming at 2^22 */
    ff_init(&f, 1 << 18, 1000, 4, 0, NULL, 0);
    ff_create(&f);
    check_bitwise_everywhere(&f);
    ff_destroy_fixture(&f);
    ff_init(&f, 1 << 22, 1000, 4, 0, NULL, 0);
    ff_create(&f);
    check_bitwise_everywhere(&f);
    ff_destroy_fixture(&f);

    static const size_t sizes[] = {300000, 50, 7000};
    ff_init(&f, 307050, 5000, 4, 3, sizes, 1);
    ff_create(&f);
    check_bitwise_everywhere(&f);
    ff_destroy_fixture(&f);
}
END_TEST

/* From L = 2^26 on the adjoint runs the large strides first unless a quarter or more of
 * L is padding (the fold takes whole blocks; otherwise the last strip pass): on both sides
 * of that rule, the exact adjoint and the same bits on 1 and 2 threads and on the SIMD
 * kernels (the portable one is slow at 2^26; strip_slots_change_no_bits compares the
 * strips-first transform with it). */
START_TEST(fastfood_adjoint_large_strides_first)
{
    static const size_t sizes[] = {((size_t)1 << 26) - 1000, ((size_t)1 << 25) + 1};
    for (size_t c = 0; c < 2; c++) {
        ff_fixture f;
        ff_init(&f, sizes[c], 1000, 6, 0, NULL, 0);
        ff_create(&f);
        check_adjoint(&f);
        size_t D = f.p.D, d = f.p.d_lin;
        float *g = alloc_floats(D), *one = alloc_floats(d), *two = alloc_floats(d);
        fill_gauss(g, D, 41);
        f.p.threads = 1;
        ff_adjoint(&f, g, one);
        f.p.threads = 2;
        ff_adjoint(&f, g, two);
        ck_assert_mem_eq(one, two, d * sizeof(float));
        for (size_t k = 1; k < 3; k++) {
            if (!intdim__fwht_kernel_available(ALL_KERNELS[k]))
                continue;
            f.p.kernel = ALL_KERNELS[k];
            ff_adjoint(&f, g, two);
            ck_assert_msg(memcmp(one, two, d * sizeof(float)) == 0, "D=%zu kernel %d", D,
                          ALL_KERNELS[k]);
        }
        intdim__free(two);
        intdim__free(one);
        intdim__free(g);
        ff_destroy_fixture(&f);
    }
}
END_TEST

START_TEST(fastfood_is_a_function_of_the_seed)
{
    ff_fixture a, b;
    ff_init(&a, 5000, 40, 77, 0, NULL, 0);
    ff_init(&b, 5000, 40, 77, 0, NULL, 0);
    ff_create(&a);
    ff_create(&b);
    float *x = alloc_floats(40), *ya = alloc_floats(5000), *yb = alloc_floats(5000);
    fill_gauss(x, 40, 1);
    ff_apply(&a, x, ya);
    ff_apply(&b, x, yb);
    ck_assert(memcmp(ya, yb, 5000 * sizeof(float)) == 0);
    ff_destroy_fixture(&b);
    ff_init(&b, 5000, 40, 78, 0, NULL, 0);
    ff_create(&b);
    ff_apply(&b, x, yb);
    ck_assert(memcmp(ya, yb, 5000 * sizeof(float)) != 0);
    intdim__free(yb);
    intdim__free(ya);
    intdim__free(x);
    ff_destroy_fixture(&b);
    ff_destroy_fixture(&a);
}
END_TEST

START_TEST(fastfood_respects_memory_budget)
{
    ff_fixture f;
    ff_init(&f, 1 << 20, 100, 1, 0, NULL, 0);
    f.p.memory_budget = 1e6;
    ck_assert_int_eq(intdim__fastfood_create(&f.p), INTDIM_ETOOBIG);
    ck_assert_ptr_null(f.p.state);
    ck_assert(strstr(intdim_last_error(), "budget") != NULL);
}
END_TEST

START_TEST(fastfood_bytes_per_parameter)
{
    /* State plus workspace stays under 12 bytes per padded parameter. */
    static const size_t cases[][2] = {{1 << 20, 1000}, {(1 << 20) - 5, 20000}, {1 << 16, 1},
                                      {1 << 20, 1 << 17}, {(1 << 19) + 1, 1 << 16}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ff_fixture f;
        ff_init(&f, cases[c][0], cases[c][1], 1, 0, NULL, 0);
        ck_assert_int_eq(intdim__fastfood_create(&f.p), INTDIM_OK);
        double L = (double)intdim__next_pow2(cases[c][0]);
        double bytes = (double)f.p.state_bytes + 4.0 * (double)f.p.work_floats;
        ck_assert_msg(bytes <= 12.0 * L, "D=%zu d=%zu: %.3f bytes per padded parameter",
                      cases[c][0], cases[c][1], bytes / L);
        f.p.ops->destroy(&f.p);
    }
    /* Stacked blocks (small ones run on lanes, with the adjoint's wave of per-block
     * results) per padded parameter, blocks of about d included: 5.1-5.8 bytes here. (A
     * block also costs a descriptor and three small tables, about 100 bytes, so blocks of
     * a few rows cost more: 49.5 bytes per parameter with blocks of 2.) */
    static const size_t stacked[][3] = {{199210, 1000, 1024}, {199210, 1000, 32768},
                                        {1 << 20, 1000, 2048}, {(1 << 20) + 7, 100, 128},
                                        {1 << 20, 1000, 131072}};
    for (size_t c = 0; c < sizeof stacked / sizeof stacked[0]; c++) {
        ff_fixture f;
        ff_init(&f, stacked[c][0], stacked[c][1], 1, 0, NULL, 0);
        f.p.ff_block = stacked[c][2];
        f.p.threads = 0;
        ck_assert_int_eq(intdim__fastfood_create(&f.p), INTDIM_OK);
        size_t B = stacked[c][2], n = (stacked[c][0] + B - 1) / B;
        double padded = (double)(n * B);
        double bytes = (double)f.p.state_bytes + 4.0 * (double)f.p.work_floats;
        ck_assert_msg(bytes <= 12.0 * padded, "D=%zu d=%zu B=%zu: %.3f bytes per parameter",
                      stacked[c][0], stacked[c][1], B, bytes / padded);
        f.p.ops->destroy(&f.p);
    }
}
END_TEST

static Suite *fwht_suite(void)
{
    Suite *s = suite_create("fwht");
    TCase *kernels = tcase_create("kernels");
    tcase_set_timeout(kernels, 600);
    tcase_add_test(kernels, portable_matches_naive_definition);
    tcase_add_test(kernels, kernels_bitwise_equal_portable);
    tcase_add_test(kernels, threads_bitwise_equal);
    tcase_add_test(kernels, transform_twice_is_n_times_identity);
    tcase_add_test(kernels, large_transform_of_unit_vector);
    tcase_add_test(kernels, half_round_trip_is_exact);
    tcase_add_test(kernels, half_rounding);
    tcase_add_test(kernels, kernels_widen_half_like_portable);
    tcase_add_test(kernels, unavailable_kernel_ids_are_reported);
    tcase_add_test(kernels, blocks_read_from_the_source);
    tcase_add_test(kernels, zero_padding_is_skipped_with_the_same_bits);
    tcase_add_test(kernels, gather_block_is_gather_then_block);
    tcase_add_test(kernels, gathers_and_fold_match_portable);
    tcase_add_test(kernels, strip_slots_change_no_bits);
    tcase_add_test(kernels, affine_output_matches_sink);
    suite_add_tcase(s, kernels);
    TCase *ff = tcase_create("fastfood");
    tcase_set_timeout(ff, 600);
    tcase_add_test(ff, fastfood_matches_reference_formula);
    tcase_add_test(ff, fastfood_per_group_matches_reference);
    tcase_add_test(ff, fastfood_adjoint_identity);
    tcase_add_test(ff, fastfood_per_group_adjoint_identity);
    tcase_add_test(ff, fastfood_unit_columns);
    tcase_add_test(ff, fastfood_bitwise_across_threads_and_kernels);
    tcase_add_test(ff, fastfood_adjoint_large_strides_first);
    tcase_add_test(ff, fastfood_is_a_function_of_the_seed);
    tcase_add_test(ff, fastfood_respects_memory_budget);
    tcase_add_test(ff, fastfood_bytes_per_parameter);
    suite_add_tcase(s, ff);
    return s;
}

int main(void)
{
    allow_two_threads();
    SRunner *runner = srunner_create(fwht_suite());
    srunner_run_all(runner, CK_NORMAL);
    int status = runner_exit_status(runner);
    srunner_free(runner);
    return status;
}
