/* Fashion-MNIST host (examples/fashion_mnist): IDX reader on good and broken files, the
 * MLP gradient against finite differences, and a 2-class subset learnt through the
 * subspace path of libintdim. Fixtures are written by the test into a temporary dir. */
#include <check.h>
#include <intdim.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data.h"
#include "exper.h"
#include "idx.h"
#include "mlp.h"

static char tmp_dir[256];

static void make_tmp_dir(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_fmnist_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
}

static void remove_tmp_dir(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *tmp_path(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    return path;
}

/* An IDX header for unsigned bytes with the given dimensions. */
static size_t idx_header(unsigned char *h, unsigned type, size_t n_dims, const uint32_t *dims)
{
    h[0] = 0;
    h[1] = 0;
    h[2] = (unsigned char)type;
    h[3] = (unsigned char)n_dims;
    for (size_t i = 0; i < n_dims; i++) {
        h[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        h[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        h[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        h[7 + 4 * i] = (unsigned char)dims[i];
    }
    return 4 + 4 * n_dims;
}

/* Write bytes to path, gzip'd or plain. */
static void write_file(const char *path, const void *a, size_t na, const void *b, size_t nb,
                       int gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        if (na)
            ck_assert_int_eq(gzwrite(f, a, (unsigned)na), (int)na);
        if (nb)
            ck_assert_int_eq(gzwrite(f, b, (unsigned)nb), (int)nb);
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(a, 1, na, f), na);
        if (nb)
            ck_assert_uint_eq(fwrite(b, 1, nb, f), nb);
        ck_assert_int_eq(fclose(f), 0);
    }
}

/* An IDX file of n_dims dims whose data is value(i) = (i * 7 + 3) mod 256, n_data bytes
 * of it (possibly fewer or more than the header promises). */
static void write_idx(const char *path, unsigned type, size_t n_dims, const uint32_t *dims,
                      size_t n_data, int gz)
{
    unsigned char header[4 + 4 * 8];
    size_t nh = idx_header(header, type, n_dims, dims);
    unsigned char *data = malloc(n_data ? n_data : 1);
    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < n_data; i++)
        data[i] = (unsigned char)((i * 7 + 3) & 0xff);
    write_file(path, header, nh, data, n_data, gz);
    free(data);
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* ---- IDX reader ------------------------------------------------------------------------- */

START_TEST(idx_reads_good_files)
{
    make_tmp_dir();
    const uint32_t dims[3] = {5, 3, 4};
    for (int gz = 0; gz <= 1; gz++) {
        const char *path = tmp_path(gz ? "good.gz" : "good.idx");
        write_idx(path, 0x08, 3, dims, 60, gz);
        idx_array a;
        char err[256];
        ck_assert_int_eq(idx_read(path, 3, 1000, &a, err, sizeof err), IDX_OK);
        ck_assert_uint_eq(a.n_dims, 3);
        ck_assert_uint_eq(a.dims[0], 5);
        ck_assert_uint_eq(a.dims[1], 3);
        ck_assert_uint_eq(a.dims[2], 4);
        ck_assert_uint_eq(a.n_bytes, 60);
        for (size_t i = 0; i < 60; i++)
            ck_assert_uint_eq(a.data[i], (i * 7 + 3) & 0xff);
        idx_free(&a);
        ck_assert_ptr_null(a.data);
        /* expect_dims = 0 accepts any count. */
        ck_assert_int_eq(idx_read(path, 0, 1000, &a, err, sizeof err), IDX_OK);
        idx_free(&a);
    }
    /* A 1-d label file. */
    const uint32_t n = 7;
    write_idx(tmp_path("labels.gz"), 0x08, 1, &n, 7, 1);
    idx_array l;
    ck_assert_int_eq(idx_read(tmp_path("labels.gz"), 1, 100, &l, NULL, 0), IDX_OK);
    ck_assert_uint_eq(l.n_bytes, 7);
    ck_assert_uint_eq(l.data[6], (6 * 7 + 3) & 0xff);
    idx_free(&l);
    remove_tmp_dir();
}
END_TEST

/* Reading path must fail with status, a message containing `needle`, and out zeroed. */
static void expect_failure(const char *path, size_t expect_dims, size_t max_bytes, int status,
                           const char *needle)
{
    idx_array a;
    char err[512];
    memset(&a, 0x5a, sizeof a);
    int rc = idx_read(path, expect_dims, max_bytes, &a, err, sizeof err);
    ck_assert_msg(rc == status, "%s: status %d, expected %d (%s)", path, rc, status, err);
    ck_assert_msg(strstr(err, needle) != NULL, "message '%s' lacks '%s'", err, needle);
    ck_assert_ptr_null(a.data);
    ck_assert_uint_eq(a.n_bytes, 0);
}

START_TEST(idx_refuses_broken_files)
{
    make_tmp_dir();
    const uint32_t dims[3] = {10, 4, 4};

    /* Data shorter than the header promises, inside a well-formed gzip stream. */
    write_idx(tmp_path("short.gz"), 0x08, 3, dims, 100, 1);
    expect_failure(tmp_path("short.gz"), 3, 1 << 20, IDX_EFORMAT, "truncated");
    /* The same for a plain file. */
    write_idx(tmp_path("short.idx"), 0x08, 3, dims, 159, 0);
    expect_failure(tmp_path("short.idx"), 3, 1 << 20, IDX_EFORMAT, "truncated");

    /* A gzip file cut in the middle of its compressed stream. */
    write_idx(tmp_path("cut.gz"), 0x08, 3, dims, 160, 1);
    long size = file_size(tmp_path("cut.gz"));
    ck_assert_int_eq(truncate(tmp_path("cut.gz"), size / 2), 0);
    expect_failure(tmp_path("cut.gz"), 3, 1 << 20, IDX_EFORMAT, "truncated");
    /* Cut just before the gzip trailer: all data present, the stream still incomplete. */
    write_idx(tmp_path("notrailer.gz"), 0x08, 3, dims, 160, 1);
    size = file_size(tmp_path("notrailer.gz"));
    ck_assert_int_eq(truncate(tmp_path("notrailer.gz"), size - 4), 0);
    expect_failure(tmp_path("notrailer.gz"), 3, 1 << 20, IDX_EFORMAT, "truncated");

    /* Empty file, and a header cut inside the dimensions. */
    write_file(tmp_path("empty.gz"), "", 0, NULL, 0, 1);
    expect_failure(tmp_path("empty.gz"), 3, 1 << 20, IDX_EFORMAT, "truncated");
    unsigned char header[16];
    idx_header(header, 0x08, 3, dims);
    write_file(tmp_path("halfheader.gz"), header, 9, NULL, 0, 1);
    expect_failure(tmp_path("halfheader.gz"), 3, 1 << 20, IDX_EFORMAT, "truncated");

    /* Bad magic, wrong data type, unexpected number of dimensions, zero dimension. */
    write_file(tmp_path("magic.gz"), "\x01\x00\x08\x01\x00\x00\x00\x01x", 9, NULL, 0, 1);
    expect_failure(tmp_path("magic.gz"), 0, 1 << 20, IDX_EFORMAT, "not an IDX file");
    write_idx(tmp_path("float.gz"), 0x0D, 3, dims, 160, 1);
    expect_failure(tmp_path("float.gz"), 3, 1 << 20, IDX_EFORMAT, "data type 0x0d");
    write_idx(tmp_path("dims.gz"), 0x08, 3, dims, 160, 1);
    expect_failure(tmp_path("dims.gz"), 1, 1 << 20, IDX_EFORMAT, "3 dimensions, expected 1");
    const uint32_t zero[3] = {10, 0, 4};
    write_idx(tmp_path("zero.gz"), 0x08, 3, zero, 0, 1);
    expect_failure(tmp_path("zero.gz"), 3, 1 << 20, IDX_EFORMAT, "dimension 1 is 0");

    /* A header claiming more than the limit is refused before any allocation. */
    const uint32_t huge[3] = {0xffffffffu, 0xffffffffu, 0xffffffffu};
    write_idx(tmp_path("huge.gz"), 0x08, 3, huge, 16, 1);
    expect_failure(tmp_path("huge.gz"), 3, 1 << 20, IDX_EFORMAT, "exceeds the limit");

    /* Trailing bytes after the data. */
    write_idx(tmp_path("long.gz"), 0x08, 3, dims, 161, 1);
    expect_failure(tmp_path("long.gz"), 3, 1 << 20, IDX_EFORMAT, "trailing bytes");

    /* Corrupt compressed bytes (gzip header intact). */
    write_idx(tmp_path("corrupt.gz"), 0x08, 3, dims, 160, 1);
    size = file_size(tmp_path("corrupt.gz"));
    FILE *f = fopen(tmp_path("corrupt.gz"), "r+b");
    ck_assert_ptr_nonnull(f);
    for (long i = 12; i < size - 8; i++) {
        fseek(f, i, SEEK_SET);
        fputc(0xA5, f);
    }
    fclose(f);
    idx_array a;
    char err[256];
    int rc = idx_read(tmp_path("corrupt.gz"), 3, 1 << 20, &a, err, sizeof err);
    ck_assert_msg(rc == IDX_EFORMAT, "corrupt file: status %d (%s)", rc, err);
    ck_assert_ptr_null(a.data);

    /* Missing file; NULL arguments. */
    expect_failure(tmp_path("nope.gz"), 3, 1 << 20, IDX_EIO, "cannot open");
    ck_assert_int_eq(idx_read(NULL, 3, 100, &a, err, sizeof err), IDX_EINVAL);
    ck_assert_int_eq(idx_read(tmp_path("long.gz"), 3, 100, NULL, err, sizeof err), IDX_EINVAL);
    remove_tmp_dir();
}
END_TEST

/* fm_load checks image sizes, label range and counts across the pair of files. */
START_TEST(dataset_loader_validates_pairs)
{
    make_tmp_dir();
    const uint32_t img_dims[3] = {3, 28, 28}, test_dims[3] = {2, 28, 28};
    const uint32_t n3 = 3, n2 = 2;
    write_idx(tmp_path("train-images-idx3-ubyte.gz"), 0x08, 3, img_dims, 3 * 784, 1);
    write_idx(tmp_path("t10k-images-idx3-ubyte.gz"), 0x08, 3, test_dims, 2 * 784, 1);
    unsigned char header[8];
    idx_header(header, 0x08, 1, &n3);
    write_file(tmp_path("train-labels-idx1-ubyte.gz"), header, 8, "\x01\x02\x09", 3, 1);
    idx_header(header, 0x08, 1, &n2);
    write_file(tmp_path("t10k-labels-idx1-ubyte.gz"), header, 8, "\x00\x05", 2, 1);
    fm_set train, test;
    char err[512];
    ck_assert_int_eq(fm_load(tmp_dir, &train, &test, err, sizeof err), 0);
    ck_assert_uint_eq(train.n, 3);
    ck_assert_uint_eq(test.n, 2);
    ck_assert_uint_eq(train.labels[2], 9);
    ck_assert_uint_eq(test.pixels[784], (784 * 7 + 3) & 0xff);
    /* A class subset, remapped. */
    fm_set sub;
    ck_assert_int_eq(fm_select(&train, 2, 9, 1, 0, &sub), 0);
    ck_assert_uint_eq(sub.n, 2);
    ck_assert_uint_eq(sub.labels[0], 0);
    ck_assert_uint_eq(sub.labels[1], 7);
    ck_assert_int_eq(memcmp(sub.pixels, train.pixels + 784, 784), 0);
    fm_set_free(&sub);
    fm_set_free(&train);
    fm_set_free(&test);

    /* A label out of range. */
    idx_header(header, 0x08, 1, &n2);
    write_file(tmp_path("t10k-labels-idx1-ubyte.gz"), header, 8, "\x00\x0a", 2, 1);
    ck_assert_int_eq(fm_load(tmp_dir, &train, &test, err, sizeof err), IDX_EFORMAT);
    ck_assert_ptr_nonnull(strstr(err, "not a class"));
    ck_assert_ptr_null(train.pixels);
    /* Fewer labels than images. */
    write_file(tmp_path("t10k-labels-idx1-ubyte.gz"), header, 8, "\x00\x01", 2, 1);
    idx_header(header, 0x08, 1, &n2);
    write_file(tmp_path("train-labels-idx1-ubyte.gz"), header, 8, "\x01\x02", 2, 1);
    ck_assert_int_eq(fm_load(tmp_dir, &train, &test, err, sizeof err), IDX_EFORMAT);
    ck_assert_ptr_nonnull(strstr(err, "2 labels for 3 images"));
    /* Images that are not 28 x 28. */
    const uint32_t odd[3] = {3, 28, 27};
    write_idx(tmp_path("train-images-idx3-ubyte.gz"), 0x08, 3, odd, 3 * 28 * 27, 1);
    ck_assert_int_eq(fm_load(tmp_dir, &train, &test, err, sizeof err), IDX_EFORMAT);
    ck_assert_ptr_nonnull(strstr(err, "28 x 27"));
    remove_tmp_dir();
}
END_TEST

/* ---- MLP --------------------------------------------------------------------------------- */

/* Deterministic pseudo-random floats in [-1, 1]. */
static float noise(uint64_t i) { return (float)((mlp_mix64(99, i) >> 40) / 8388608.0 - 1.0); }

START_TEST(mlp_layout_and_init)
{
    mlp m;
    const size_t w[4] = {784, 200, 200, 10};
    ck_assert_int_eq(mlp_init(&m, 4, w, 64), MLP_OK);
    ck_assert_uint_eq(mlp_n_params(&m), 199210); /* Li et al.'s D */
    size_t g[6];
    ck_assert_uint_eq(mlp_group_sizes(&m, g, 6), 6);
    ck_assert_uint_eq(g[0], 156800);
    ck_assert_uint_eq(g[1], 200);
    ck_assert_uint_eq(g[4], 2000);
    ck_assert_uint_eq(g[5], 10);
    ck_assert_uint_eq(mlp_group_sizes(&m, g, 5), 0);
    float *p = malloc(199210 * sizeof(float)), *q = malloc(199210 * sizeof(float));
    mlp_init_params(&m, p, 5);
    mlp_init_params(&m, q, 5);
    ck_assert_int_eq(memcmp(p, q, 199210 * sizeof(float)), 0);
    float a0 = sqrtf(6.0f / (784 + 200));
    for (size_t i = 0; i < 156800; i++)
        ck_assert(fabsf(p[i]) <= a0);
    for (size_t i = 156800; i < 157000; i++)
        ck_assert(p[i] == 0.0f);
    mlp_init_params(&m, q, 6);
    ck_assert_int_ne(memcmp(p, q, 199210 * sizeof(float)), 0);
    free(p);
    free(q);
    mlp_free(&m);
    /* Bad shapes. */
    const size_t bad[2] = {3, 0};
    ck_assert_int_eq(mlp_init(&m, 2, bad, 4), MLP_EINVAL);
    ck_assert_int_eq(mlp_init(&m, 1, w, 4), MLP_EINVAL);
    ck_assert_int_eq(mlp_init(&m, 4, w, 0), MLP_EINVAL);
    mlp_free(&m);
}
END_TEST

/* The analytic gradient against central differences in every coordinate of a small
 * 3-layer net, and along a random direction of the full-size network. */
START_TEST(mlp_gradient_matches_finite_differences)
{
    const size_t w[4] = {7, 5, 4, 3};
    mlp m;
    ck_assert_int_eq(mlp_init(&m, 4, w, 16), MLP_OK);
    size_t D = mlp_n_params(&m);
    ck_assert_uint_eq(D, 7 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3);
    float *p = malloc(D * sizeof(float)), *g = malloc(D * sizeof(float));
    mlp_init_params(&m, p, 3);
    for (size_t i = 0; i < D; i++)
        p[i] += 0.2f * noise(i); /* non-zero biases too */
    float x[16 * 7];
    uint8_t y[16];
    for (size_t i = 0; i < 16 * 7; i++)
        x[i] = noise(1000 + i);
    for (size_t i = 0; i < 16; i++)
        y[i] = (uint8_t)(i % 3);
    double loss = 0.0;
    size_t correct = 99;
    ck_assert_int_eq(mlp_loss_grad(&m, p, g, x, y, 16, &loss, &correct), MLP_OK);
    ck_assert(loss > 0.0 && isfinite(loss));
    ck_assert_uint_le(correct, 16);
    for (size_t i = 0; i < D; i++) {
        const float h = 1e-3f, saved = p[i];
        double lp = 0.0, lm = 0.0;
        p[i] = saved + h;
        mlp_loss_grad(&m, p, NULL, x, y, 16, &lp, NULL);
        p[i] = saved - h;
        mlp_loss_grad(&m, p, NULL, x, y, 16, &lm, NULL);
        p[i] = saved;
        double fd = (lp - lm) / (2.0 * (double)h);
        ck_assert_msg(fabs(fd - g[i]) <= 2e-3 * (fabs(fd) + fabs(g[i])) + 2e-4,
                      "param %zu: finite difference %g, gradient %g", i, fd, (double)g[i]);
    }
    /* Labels outside the classes are refused. */
    y[3] = 3;
    ck_assert_int_eq(mlp_loss_grad(&m, p, g, x, y, 16, &loss, NULL), MLP_EINVAL);
    ck_assert_int_eq(mlp_loss_grad(&m, p, g, x, y, 17, &loss, NULL), MLP_EINVAL);
    free(p);
    free(g);
    mlp_free(&m);

    /* Directional derivative of the real network (double-precision-free: the step is
     * large enough for float loss differences, small enough for ReLU kinks to be rare). */
    const size_t big[4] = {784, 200, 200, 10};
    ck_assert_int_eq(mlp_init(&m, 4, big, 32), MLP_OK);
    D = mlp_n_params(&m);
    p = malloc(D * sizeof(float));
    g = malloc(D * sizeof(float));
    float *v = malloc(D * sizeof(float)), *q = malloc(D * sizeof(float));
    float *xb = malloc(32 * 784 * sizeof(float));
    uint8_t yb[32];
    mlp_init_params(&m, p, 11);
    for (size_t i = 0; i < 32 * 784; i++)
        xb[i] = 0.5f * (noise(50000 + i) + 1.0f);
    for (size_t i = 0; i < 32; i++)
        yb[i] = (uint8_t)(i % 10);
    ck_assert_int_eq(mlp_loss_grad(&m, p, g, xb, yb, 32, &loss, NULL), MLP_OK);
    double gv = 0.0, norm = 0.0;
    for (size_t i = 0; i < D; i++) {
        v[i] = noise(7 * i + 1);
        norm += (double)v[i] * v[i];
    }
    for (size_t i = 0; i < D; i++) {
        v[i] = (float)(v[i] / sqrt(norm));
        gv += (double)g[i] * v[i];
    }
    const double h = 1e-2;
    double lp = 0.0, lm = 0.0;
    for (size_t i = 0; i < D; i++)
        q[i] = p[i] + (float)h * v[i];
    mlp_loss_grad(&m, q, NULL, xb, yb, 32, &lp, NULL);
    for (size_t i = 0; i < D; i++)
        q[i] = p[i] - (float)h * v[i];
    mlp_loss_grad(&m, q, NULL, xb, yb, 32, &lm, NULL);
    double fd = (lp - lm) / (2.0 * h);
    ck_assert_msg(fabs(fd - gv) <= 0.02 * fabs(gv) + 1e-4, "directional: fd %g, g.v %g", fd, gv);
    free(p);
    free(g);
    free(v);
    free(q);
    free(xb);
    mlp_free(&m);
}
END_TEST

START_TEST(batches_are_a_function_of_seed_and_step)
{
    uint32_t a[256], b[256], c[256];
    mlp_batch_indices(1, 10, 1000, 256, a);
    mlp_batch_indices(1, 10, 1000, 256, b);
    mlp_batch_indices(1, 11, 1000, 256, c);
    ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
    ck_assert_int_ne(memcmp(a, c, sizeof a), 0);
    mlp_batch_indices(2, 10, 1000, 256, c);
    ck_assert_int_ne(memcmp(a, c, sizeof a), 0);
    /* In range and spread: 256 draws from 3 values hit each. */
    size_t seen[3] = {0, 0, 0};
    mlp_batch_indices(5, 0, 3, 256, c);
    for (size_t i = 0; i < 256; i++) {
        ck_assert_uint_lt(c[i], 3);
        seen[c[i]]++;
    }
    ck_assert(seen[0] > 40 && seen[1] > 40 && seen[2] > 40);
}
END_TEST

/* ---- the rotation task (self-supervised pre-training) ----------------------------------- */

/* A 28 x 28 image with distinct-looking pixels (no symmetry a wrong rotation could hide in). */
static void random_image(uint64_t seed, uint8_t *img)
{
    for (size_t i = 0; i < FM_PIXELS; i++)
        img[i] = (uint8_t)(mlp_mix64(seed, i) >> 56);
}

START_TEST(rotating_four_quarter_turns_gives_the_image_back)
{
    uint8_t img[FM_PIXELS], a[FM_PIXELS], b[FM_PIXELS];
    random_image(5, img);
    memcpy(a, img, FM_PIXELS);
    for (int turn = 0; turn < 4; turn++) {
        fm_rotate(a, b, 1);
        /* After 1, 2, 3 turns a generic image differs from the original. */
        ck_assert_int_eq(memcmp(b, img, FM_PIXELS) == 0, turn == 3);
        memcpy(a, b, FM_PIXELS);
    }
    ck_assert_mem_eq(a, img, FM_PIXELS);
    /* Two half turns, and quarter_turns taken mod 4. */
    fm_rotate(img, a, 2);
    fm_rotate(a, b, 2);
    ck_assert_mem_eq(b, img, FM_PIXELS);
    fm_rotate(img, a, 4);
    ck_assert_mem_eq(a, img, FM_PIXELS);
    fm_rotate(img, a, 5);
    fm_rotate(img, b, 1);
    ck_assert_mem_eq(a, b, FM_PIXELS);
}
END_TEST

/* Clockwise, as documented: one quarter turn takes (r, c) to (c, 27 - r), a half turn to
 * (27 - r, 27 - c), three quarter turns to (27 - c, r). */
START_TEST(a_quarter_turn_moves_each_pixel_to_the_documented_place)
{
    static const size_t spots[][2] = {{0, 0}, {0, 27}, {27, 0}, {3, 11}, {20, 6}, {13, 14}};
    uint8_t img[FM_PIXELS], out[FM_PIXELS];
    for (size_t s = 0; s < sizeof spots / sizeof spots[0]; s++) {
        size_t r = spots[s][0], c = spots[s][1];
        size_t expect[4][2] = {{r, c}, {c, 27 - r}, {27 - r, 27 - c}, {27 - c, r}};
        memset(img, 0, sizeof img);
        img[r * 28 + c] = 200;
        for (unsigned k = 0; k < 4; k++) {
            fm_rotate(img, out, k);
            for (size_t i = 0; i < FM_PIXELS; i++) {
                int lit = i == expect[k][0] * 28 + expect[k][1];
                ck_assert_msg(out[i] == (lit ? 200 : 0), "(%zu, %zu) turned %u: pixel %zu is %u",
                              r, c, k, i, out[i]);
            }
        }
    }
    /* The top row (left to right) becomes the right-most column (top to bottom). */
    memset(img, 0, sizeof img);
    for (size_t c = 0; c < 28; c++)
        img[c] = (uint8_t)(c + 1);
    fm_rotate(img, out, 1);
    for (size_t r = 0; r < 28; r++)
        ck_assert_uint_eq(out[r * 28 + 27], r + 1);
}
END_TEST

START_TEST(rotation_task_labels_are_balanced_and_match_the_rotation)
{
    enum { N = 3 };
    uint8_t pixels[N * FM_PIXELS], labels[N] = {7, 7, 2}, turned[FM_PIXELS];
    for (size_t i = 0; i < N; i++)
        random_image(100 + i, pixels + i * FM_PIXELS);
    fm_set s = {N, pixels, labels, 0}, task;
    ck_assert_int_eq(fm_rotation_task(&s, 0, &task), 0);
    ck_assert_uint_eq(task.n, 4 * N);
    size_t count[4] = {0, 0, 0, 0};
    for (size_t j = 0; j < task.n; j++) {
        ck_assert_uint_lt(task.labels[j], 4);
        count[task.labels[j]]++;
        size_t i = j / 4;
        ck_assert_uint_eq(task.labels[j], j % 4);
        /* Label k: image i turned by k quarter turns (label 0: the image itself). */
        fm_rotate(pixels + i * FM_PIXELS, turned, task.labels[j]);
        ck_assert_mem_eq(task.pixels + j * FM_PIXELS, turned, FM_PIXELS);
        if (task.labels[j] == 0)
            ck_assert_mem_eq(task.pixels + j * FM_PIXELS, pixels + i * FM_PIXELS, FM_PIXELS);
        else
            ck_assert(memcmp(task.pixels + j * FM_PIXELS, pixels + i * FM_PIXELS, FM_PIXELS));
    }
    for (int k = 0; k < 4; k++)
        ck_assert_uint_eq(count[k], N);
    fm_set_free(&task);

    /* max_n takes the first images only; the source set is left as it was. */
    ck_assert_int_eq(fm_rotation_task(&s, 2, &task), 0);
    ck_assert_uint_eq(task.n, 8);
    ck_assert_mem_eq(task.pixels + 4 * FM_PIXELS, pixels + FM_PIXELS, FM_PIXELS);
    ck_assert_uint_eq(labels[0], 7);
    fm_set_free(&task);

    fm_set empty = {0, NULL, NULL, 0};
    ck_assert_int_eq(fm_rotation_task(&empty, 0, &task), IDX_EINVAL);
    ck_assert_int_eq(fm_rotation_task(NULL, 0, &task), IDX_EINVAL);
    ck_assert_int_eq(fm_rotation_task(&s, 0, NULL), IDX_EINVAL);
}
END_TEST

/* ---- subspace path on real data ------------------------------------------------------- */

/* T-shirt/top (0) vs trouser (1) from Debian's dataset: a 784-32-2 network trained only
 * in a d = 200 Fastfood subspace (and with SAID) must separate them on held-out images. */
START_TEST(two_class_subset_learns_through_subspace)
{
    fm_set train_all, test_all;
    char err[512];
    int rc = fm_load(FM_DEFAULT_DIR, &train_all, &test_all, err, sizeof err);
    ck_assert_msg(rc == 0, "Fashion-MNIST is needed (apt-get install dataset-fashion-mnist): %s",
                  err);
    fm_set split = fm_view(&train_all, 0, 50000), val_split = fm_view(&train_all, 50000, 10000);
    fm_set pool, val;
    ck_assert_int_eq(fm_select(&split, 0, 1, 1, 4000, &pool), 0);
    ck_assert_int_eq(fm_select(&val_split, 0, 1, 1, 1000, &val), 0);
    fm_set train_eval = fm_view(&pool, 0, 1000);
    const size_t widths[3] = {FM_PIXELS, 32, 2};
    problem pb;
    ck_assert_int_eq(problem_init(&pb, 3, widths, &pool, &train_eval, &val, NULL, 64, 150, 1), 0);
    pb.quiet = 1;
    pb.proj_threads = 1;
    trial t;
    memset(&t, 0, sizeof t);
    double untrained = 0.0;
    ck_assert_int_eq(fm_accuracy(&pb.host, pb.theta0, &val, &untrained), 0);

    t.kind = INTDIM_PROJ_FASTFOOD;
    t.d = 200;
    t.lr = 3e-2;
    t.seed = 4;
    rc = run_trial(&pb, &t, 0);
    ck_assert_msg(rc == INTDIM_OK, "trial failed: %s: %s", intdim_strerror(rc),
                  intdim_last_error());
    ck_assert_msg(t.val_acc > 0.9, "val accuracy %.3f (untrained %.3f)", t.val_acc, untrained);
    ck_assert(t.train_acc > 0.9);
    ck_assert(isnan(t.test_acc)); /* not asked for */
    ck_assert_uint_eq(pb.host.grad_calls, 150);
    /* The host buffer holds theta0 + P(theta_d): training moved it. */
    double moved = 0.0;
    for (size_t i = 0; i < pb.D; i++)
        moved += fabs((double)pb.theta[i] - pb.theta0[i]);
    ck_assert(moved > 0.0);

    /* SAID over Fastfood through the same path (groups = the 4 weight/bias blocks). */
    memset(&t, 0, sizeof t);
    t.kind = INTDIM_PROJ_FASTFOOD;
    t.said = 1;
    t.d = 200;
    t.lr = 3e-2;
    t.seed = 4;
    rc = run_trial(&pb, &t, 0);
    ck_assert_msg(rc == INTDIM_OK, "SAID trial failed: %s: %s", intdim_strerror(rc),
                  intdim_last_error());
    ck_assert_msg(t.val_acc > 0.9, "SAID val accuracy %.3f", t.val_acc);

    problem_free(&pb);
    fm_set_free(&pool);
    fm_set_free(&val);
    fm_set_free(&train_all);
    fm_set_free(&test_all);
}
END_TEST

static Suite *fmnist_suite(void)
{
    Suite *s = suite_create("fmnist");
    TCase *io = tcase_create("idx");
    tcase_add_test(io, idx_reads_good_files);
    tcase_add_test(io, idx_refuses_broken_files);
    tcase_add_test(io, dataset_loader_validates_pairs);
    suite_add_tcase(s, io);
    TCase *model = tcase_create("mlp");
    tcase_add_test(model, mlp_layout_and_init);
    tcase_add_test(model, mlp_gradient_matches_finite_differences);
    tcase_add_test(model, batches_are_a_function_of_seed_and_step);
    suite_add_tcase(s, model);
    TCase *rot = tcase_create("rotation");
    tcase_add_test(rot, rotating_four_quarter_turns_gives_the_image_back);
    tcase_add_test(rot, a_quarter_turn_moves_each_pixel_to_the_documented_place);
    tcase_add_test(rot, rotation_task_labels_are_balanced_and_match_the_rotation);
    suite_add_tcase(s, rot);
    TCase *sub = tcase_create("subspace");
    tcase_set_timeout(sub, 300);
    tcase_add_test(sub, two_class_subset_learns_through_subspace);
    suite_add_tcase(s, sub);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(fmnist_suite());
    srunner_run_all(sr, CK_NORMAL);
    /* failed also when no test ran (a CK_RUN_CASE naming nothing) */
    int failed = srunner_ntests_failed(sr) + (srunner_ntests_run(sr) == 0);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
