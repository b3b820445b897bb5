/* Fashion-MNIST loading, class subsets and the host callbacks. */
#include "data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idx.h"

/* 60000 x 784 is 47 MB: a header claiming more than 256 MB is corrupt, not a dataset. */
#define FM_MAX_BYTES ((size_t)256 << 20)

/* Read one image file and its label file into an owned set. */
static int load_pair(const char *dir, const char *images_name, const char *labels_name,
                     fm_set *out, char *err, size_t err_len)
{
    char path[4096];
    idx_array images, labels;
    snprintf(path, sizeof path, "%s/%s", dir, images_name);
    int status = idx_read(path, 3, FM_MAX_BYTES, &images, err, err_len);
    if (status != IDX_OK)
        return status;
    if (images.dims[1] != 28 || images.dims[2] != 28) {
        snprintf(err, err_len, "%s: images are %zu x %zu, expected 28 x 28", path, images.dims[1],
                 images.dims[2]);
        idx_free(&images);
        return IDX_EFORMAT;
    }
    snprintf(path, sizeof path, "%s/%s", dir, labels_name);
    status = idx_read(path, 1, FM_MAX_BYTES, &labels, err, err_len);
    if (status != IDX_OK) {
        idx_free(&images);
        return status;
    }
    if (labels.dims[0] != images.dims[0]) {
        snprintf(err, err_len, "%s: %zu labels for %zu images", path, labels.dims[0],
                 images.dims[0]);
        status = IDX_EFORMAT;
    }
    for (size_t i = 0; status == IDX_OK && i < labels.n_bytes; i++) {
        if (labels.data[i] >= FM_CLASSES) {
            snprintf(err, err_len, "%s: label %u at index %zu is not a class 0..9", path,
                     labels.data[i], i);
            status = IDX_EFORMAT;
        }
    }
    if (status != IDX_OK) {
        idx_free(&images);
        idx_free(&labels);
        return status;
    }
    out->n = images.dims[0];
    out->pixels = images.data; /* ownership moves to the set */
    out->labels = labels.data;
    out->owned = 1;
    return 0;
}

int fm_load(const char *dir, fm_set *train, fm_set *test, char *err, size_t err_len)
{
    if (dir == NULL || train == NULL || test == NULL)
        return IDX_EINVAL;
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    int status = load_pair(dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", train,
                           err, err_len);
    if (status != 0)
        return status;
    status = load_pair(dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", test, err,
                       err_len);
    if (status != 0)
        fm_set_free(train);
    return status;
}

fm_set fm_view(const fm_set *s, size_t start, size_t count)
{
    fm_set v = {0, NULL, NULL, 0};
    if (s == NULL || start >= s->n)
        return v;
    if (count > s->n - start)
        count = s->n - start;
    v.n = count;
    v.pixels = s->pixels + start * FM_PIXELS;
    v.labels = s->labels + start;
    return v;
}

int fm_select(const fm_set *s, unsigned lo, unsigned hi, int remap, size_t max_n, fm_set *out)
{
    if (s == NULL || out == NULL || lo > hi)
        return IDX_EINVAL;
    memset(out, 0, sizeof *out);
    size_t n = 0;
    for (size_t i = 0; i < s->n && (max_n == 0 || n < max_n); i++)
        n += s->labels[i] >= lo && s->labels[i] <= hi;
    if (n == 0)
        return IDX_EINVAL;
    out->pixels = malloc(n * FM_PIXELS);
    out->labels = malloc(n);
    out->owned = 1;
    if (out->pixels == NULL || out->labels == NULL) {
        fm_set_free(out);
        return IDX_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < s->n && k < n; i++) {
        unsigned label = s->labels[i];
        if (label < lo || label > hi)
            continue;
        memcpy(out->pixels + k * FM_PIXELS, s->pixels + i * FM_PIXELS, FM_PIXELS);
        out->labels[k] = (uint8_t)(remap ? label - lo : label);
        k++;
    }
    out->n = n;
    return 0;
}

void fm_set_free(fm_set *s)
{
    if (s == NULL)
        return;
    if (s->owned) {
        free(s->pixels);
        free(s->labels);
    }
    memset(s, 0, sizeof *s);
}

void fm_rotate(const uint8_t *src, uint8_t *dst, unsigned quarter_turns)
{
    for (size_t r = 0; r < FM_SIDE; r++) {
        for (size_t c = 0; c < FM_SIDE; c++) {
            /* Where (r, c) lands after quarter_turns clockwise turns of (r, c) -> (c, 27 - r). */
            size_t rr = r, cc = c;
            for (unsigned k = 0; k < quarter_turns % FM_ROTATIONS; k++) {
                size_t turned_r = cc;
                cc = FM_SIDE - 1 - rr;
                rr = turned_r;
            }
            dst[rr * FM_SIDE + cc] = src[r * FM_SIDE + c];
        }
    }
}

int fm_rotation_task(const fm_set *s, size_t max_n, fm_set *out)
{
    if (out == NULL)
        return IDX_EINVAL;
    memset(out, 0, sizeof *out);
    if (s == NULL || s->n == 0)
        return IDX_EINVAL;
    size_t n = max_n == 0 || max_n > s->n ? s->n : max_n;
    if (n > SIZE_MAX / (FM_ROTATIONS * FM_PIXELS))
        return IDX_ENOMEM;
    out->pixels = malloc(n * FM_ROTATIONS * FM_PIXELS);
    out->labels = malloc(n * FM_ROTATIONS);
    out->owned = 1;
    if (out->pixels == NULL || out->labels == NULL) {
        fm_set_free(out);
        return IDX_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        for (unsigned k = 0; k < FM_ROTATIONS; k++) {
            size_t j = i * FM_ROTATIONS + k;
            fm_rotate(s->pixels + i * FM_PIXELS, out->pixels + j * FM_PIXELS, k);
            out->labels[j] = (uint8_t)k;
        }
    }
    out->n = n * FM_ROTATIONS;
    return 0;
}

int fm_host_init(fm_host *h, mlp *net, const fm_set *pool, size_t batch, uint64_t batch_seed)
{
    if (h == NULL)
        return IDX_EINVAL;
    memset(h, 0, sizeof *h);
    if (net == NULL || pool == NULL || pool->n == 0 || batch == 0 || batch > net->max_batch ||
        net->widths[0] != FM_PIXELS)
        return IDX_EINVAL;
    h->net = net;
    h->pool = pool;
    h->batch = batch;
    h->batch_seed = batch_seed;
    h->x = malloc(net->max_batch * FM_PIXELS * sizeof(float));
    h->y = malloc(net->max_batch);
    h->idx = malloc(batch * sizeof(uint32_t));
    if (h->x == NULL || h->y == NULL || h->idx == NULL) {
        fm_host_free(h);
        return IDX_ENOMEM;
    }
    return 0;
}

void fm_host_free(fm_host *h)
{
    if (h == NULL)
        return;
    free(h->x);
    free(h->y);
    free(h->idx);
    memset(h, 0, sizeof *h);
}

/* Pixels scaled to [0, 1]. */
static void to_float(const uint8_t *pixels, float *x, size_t n)
{
    for (size_t i = 0; i < n * FM_PIXELS; i++)
        x[i] = (float)pixels[i] * (1.0f / 255.0f);
}

int fm_grad(void *user, uint64_t step, const float *theta, float *grad, double *loss)
{
    fm_host *h = user;
    const fm_set *pool = h->pool;
    mlp_batch_indices(h->batch_seed, step, pool->n, h->batch, h->idx);
    for (size_t i = 0; i < h->batch; i++) {
        to_float(pool->pixels + (size_t)h->idx[i] * FM_PIXELS, h->x + i * FM_PIXELS, 1);
        h->y[i] = pool->labels[h->idx[i]];
    }
    h->grad_calls++;
    return mlp_loss_grad(h->net, theta, grad, h->x, h->y, h->batch, loss, NULL) == MLP_OK ? 0 : 1;
}

int fm_accuracy(fm_host *h, const float *theta, const fm_set *set, double *accuracy)
{
    if (h == NULL || theta == NULL || set == NULL || set->n == 0 || accuracy == NULL)
        return 1;
    size_t chunk = h->net->max_batch, hits = 0;
    for (size_t start = 0; start < set->n; start += chunk) {
        size_t n = set->n - start < chunk ? set->n - start : chunk, correct = 0;
        to_float(set->pixels + start * FM_PIXELS, h->x, n);
        if (mlp_loss_grad(h->net, theta, NULL, h->x, set->labels + start, n, NULL, &correct) !=
            MLP_OK)
            return 1;
        hits += correct;
    }
    *accuracy = (double)hits / (double)set->n;
    return 0;
}

int fm_eval_accuracy(void *user, const float *theta, double *metric)
{
    fm_eval *e = user;
    return fm_accuracy(e->host, theta, e->set, metric);
}
