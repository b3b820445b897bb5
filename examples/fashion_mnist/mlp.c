/* Fully-connected ReLU network over one flat buffer; see mlp.h for the layout. */
#include "mlp.h"

#include <cblas.h> /* with BLIS, meson passes its directory as -isystem */
#include <math.h>
#include <stdlib.h>
#include <string.h>

uint64_t mlp_mix64(uint64_t a, uint64_t b)
{
    uint64_t z = a + 0x9E3779B97F4A7C15ull * (b + 1u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 24 random bits: exact in float. */
static float uniform01(uint64_t seed, uint64_t index)
{
    return (float)(mlp_mix64(seed, index) >> 40) * (1.0f / 16777216.0f);
}

int mlp_init(mlp *m, size_t n_widths, const size_t *widths, size_t max_batch)
{
    if (m == NULL)
        return MLP_EINVAL;
    memset(m, 0, sizeof *m);
    if (widths == NULL || n_widths < 2 || n_widths > MLP_MAX_LAYERS + 1 || max_batch == 0)
        return MLP_EINVAL;
    size_t max_width = 0;
    for (size_t i = 0; i < n_widths; i++) {
        /* 2^20 per layer keeps every product below far from size_t overflow. */
        if (widths[i] == 0 || widths[i] > ((size_t)1 << 20))
            return MLP_EINVAL;
        if (i > 0 && widths[i] > max_width)
            max_width = widths[i];
    }
    if (max_batch > ((size_t)1 << 20))
        return MLP_EINVAL;
    m->n_layers = n_widths - 1;
    size_t offset = 0;
    for (size_t l = 0; l < m->n_layers; l++) {
        m->widths[l] = widths[l];
        m->w_offset[l] = offset;
        offset += widths[l] * widths[l + 1];
        m->b_offset[l] = offset;
        offset += widths[l + 1];
        m->act_total += widths[l + 1];
    }
    m->widths[m->n_layers] = widths[m->n_layers];
    m->n_params = offset;
    m->max_batch = max_batch;
    m->acts = malloc(max_batch * m->act_total * sizeof(float));
    m->delta = malloc(max_batch * max_width * sizeof(float));
    m->delta2 = malloc(max_batch * max_width * sizeof(float));
    if (m->acts == NULL || m->delta == NULL || m->delta2 == NULL) {
        mlp_free(m);
        return MLP_ENOMEM;
    }
    return MLP_OK;
}

void mlp_free(mlp *m)
{
    if (m == NULL)
        return;
    free(m->acts);
    free(m->delta);
    free(m->delta2);
    memset(m, 0, sizeof *m);
}

size_t mlp_n_params(const mlp *m) { return m->n_params; }

size_t mlp_n_groups(const mlp *m) { return 2 * m->n_layers; }

size_t mlp_group_sizes(const mlp *m, size_t *sizes, size_t n)
{
    if (sizes == NULL || n < 2 * m->n_layers)
        return 0;
    for (size_t l = 0; l < m->n_layers; l++) {
        sizes[2 * l] = m->widths[l] * m->widths[l + 1];
        sizes[2 * l + 1] = m->widths[l + 1];
    }
    return 2 * m->n_layers;
}

void mlp_init_params(const mlp *m, float *params, uint64_t seed)
{
    for (size_t l = 0; l < m->n_layers; l++) {
        size_t fan_in = m->widths[l], fan_out = m->widths[l + 1];
        float a = (float)sqrt(6.0 / (double)(fan_in + fan_out));
        float *w = params + m->w_offset[l];
        uint64_t layer_seed = mlp_mix64(seed, l);
        for (size_t i = 0; i < fan_in * fan_out; i++)
            w[i] = a * (2.0f * uniform01(layer_seed, i) - 1.0f);
        memset(params + m->b_offset[l], 0, fan_out * sizeof(float));
    }
}

/* Output of layer l inside the activation workspace (n rows, w[l+1] columns). */
static float *layer_out(const mlp *m, size_t l, size_t n)
{
    size_t before = 0;
    for (size_t k = 0; k < l; k++)
        before += m->widths[k + 1];
    return m->acts + n * before;
}

/* Every layer: out = in W^T + b, then ReLU except on the last (logits). */
static void forward_layers(mlp *m, const float *params, const float *x, size_t n)
{
    const float *in = x;
    for (size_t l = 0; l < m->n_layers; l++) {
        int n_in = (int)m->widths[l], n_out = (int)m->widths[l + 1];
        float *out = layer_out(m, l, n);
        const float *bias = params + m->b_offset[l];
        /* Broadcast the bias first so sgemm accumulates onto it (beta = 1). */
        for (size_t r = 0; r < n; r++)
            memcpy(out + r * (size_t)n_out, bias, (size_t)n_out * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, n_out, n_in, 1.0f, in,
                    n_in, params + m->w_offset[l], n_in, 1.0f, out, n_out);
        if (l + 1 < m->n_layers) {
            for (size_t i = 0; i < n * (size_t)n_out; i++)
                out[i] = out[i] > 0.0f ? out[i] : 0.0f;
        }
        in = out;
    }
}

int mlp_forward(mlp *m, const float *params, const float *x, size_t n, float *out)
{
    if (m == NULL || m->acts == NULL || params == NULL || x == NULL || out == NULL || n == 0 ||
        n > m->max_batch)
        return MLP_EINVAL;
    forward_layers(m, params, x, n);
    size_t classes = m->widths[m->n_layers];
    memcpy(out, layer_out(m, m->n_layers - 1, n), n * classes * sizeof(float));
    return MLP_OK;
}

/* Softmax cross-entropy of the logits; writes (softmax - onehot) / n into delta when it
 * is non-NULL (the gradient of the mean loss with respect to the logits). */
static void softmax_xent(const float *logits, const uint8_t *y, size_t n, size_t classes,
                         float *delta, double *loss, size_t *correct)
{
    double total = 0.0;
    size_t hits = 0;
    for (size_t r = 0; r < n; r++) {
        const float *z = logits + r * classes;
        size_t best = 0;
        for (size_t c = 1; c < classes; c++)
            if (z[c] > z[best])
                best = c;
        hits += best == y[r];
        /* Subtract the max so exp never overflows. */
        double zmax = z[best], sum = 0.0;
        for (size_t c = 0; c < classes; c++)
            sum += exp((double)z[c] - zmax);
        double log_sum = log(sum);
        total += log_sum - ((double)z[y[r]] - zmax);
        if (delta != NULL) {
            float *dz = delta + r * classes;
            for (size_t c = 0; c < classes; c++) {
                double p = exp((double)z[c] - zmax - log_sum);
                dz[c] = (float)((p - (c == y[r] ? 1.0 : 0.0)) / (double)n);
            }
        }
    }
    if (loss != NULL)
        *loss = total / (double)n;
    if (correct != NULL)
        *correct = hits;
}

/* Back through every layer: delta holds dL/d(pre-activation) of the layer at hand. */
static void backward_layers(mlp *m, const float *params, float *grad, const float *x, size_t n)
{
    float *delta = m->delta, *prev = m->delta2;
    for (size_t l = m->n_layers; l-- > 0;) {
        int n_in = (int)m->widths[l], n_out = (int)m->widths[l + 1];
        const float *in = l > 0 ? layer_out(m, l - 1, n) : x;
        /* dW = delta^T in (n_out x n_in). */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_out, n_in, (int)n, 1.0f, delta,
                    n_out, in, n_in, 0.0f, grad + m->w_offset[l], n_in);
        /* db = column sums of delta, in a fixed row order. */
        float *db = grad + m->b_offset[l];
        memset(db, 0, (size_t)n_out * sizeof(float));
        for (size_t r = 0; r < n; r++)
            for (int c = 0; c < n_out; c++)
                db[c] += delta[r * (size_t)n_out + (size_t)c];
        if (l == 0)
            break; /* the input needs no gradient */
        /* prev = (delta W) masked by the ReLU of layer l-1 (its output > 0). */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, n_in, n_out, 1.0f, delta,
                    n_out, params + m->w_offset[l], n_in, 0.0f, prev, n_in);
        for (size_t i = 0; i < n * (size_t)n_in; i++)
            if (!(in[i] > 0.0f))
                prev[i] = 0.0f;
        float *t = delta;
        delta = prev;
        prev = t;
    }
}

int mlp_loss_grad(mlp *m, const float *params, float *grad, const float *x, const uint8_t *y,
                  size_t n, double *loss, size_t *correct)
{
    if (m == NULL || m->acts == NULL || params == NULL || x == NULL || y == NULL || n == 0 ||
        n > m->max_batch)
        return MLP_EINVAL;
    size_t classes = m->widths[m->n_layers];
    for (size_t r = 0; r < n; r++)
        if (y[r] >= classes)
            return MLP_EINVAL;
    forward_layers(m, params, x, n);
    softmax_xent(layer_out(m, m->n_layers - 1, n), y, n, classes, grad ? m->delta : NULL, loss,
                 correct);
    if (grad != NULL)
        backward_layers(m, params, grad, x, n);
    return MLP_OK;
}

void mlp_batch_indices(uint64_t seed, uint64_t step, size_t n_pool, size_t batch, uint32_t *idx)
{
    uint64_t step_seed = mlp_mix64(seed, step);
    for (size_t i = 0; i < batch; i++) {
        /* 64-bit multiply-shift: bias below 2^-40 for pools under 2^24, and cheap. */
        uint64_t r = mlp_mix64(step_seed, i) >> 32;
        idx[i] = (uint32_t)((r * (uint64_t)n_pool) >> 32);
    }
}
