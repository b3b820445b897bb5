/* tinylm: layers, forward and backward passes over one flat parameter buffer. */
#include "model.h"

#include <cblas.h> /* with BLIS, meson passes its directory as -isystem */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- vocabulary ------------------------------------------------------------------- */

int tlm_encode_byte(unsigned char c)
{
    if (c == '\n')
        return TLM_TOKEN_NEWLINE;
    if (c == '\t')
        c = ' ';
    if (c >= 32 && c <= 126)
        return 3 + (c - 32);
    return TLM_TOKEN_OTHER;
}

char tlm_decode_token(int token)
{
    if (token == TLM_TOKEN_NEWLINE)
        return '\n';
    if (token >= 3 && token < TLM_VOCAB)
        return (char)(32 + token - 3);
    return '?';
}

/* ---- configuration and layout -------------------------------------------------------- */

int tlm_config_check(const tlm_config *cfg, char *err, size_t errlen)
{
    const char *why = NULL;
    if (!cfg)
        why = "no configuration";
    else if (cfg->layers < 1 || cfg->layers > TLM_MAX_LAYERS)
        why = "layers must be in [1, 16]";
    else if (cfg->width < 1 || cfg->width > 4096)
        why = "width must be in [1, 4096]";
    else if (cfg->heads < 1 || cfg->width % cfg->heads != 0)
        why = "heads must be >= 1 and divide width";
    else if (cfg->ctx < 1 || cfg->ctx > 4096)
        why = "ctx must be in [1, 4096]";
    else if (cfg->n_classes < 1 || cfg->n_classes > 1024)
        why = "n_classes must be in [1, 1024]";
    if (why && err && errlen)
        snprintf(err, errlen, "%s", why);
    return why ? -1 : 0;
}

/* Append a tensor to the layout and return its offset. */
static size_t add_tensor(tlm_layout *lay, const char *name, int layer, size_t size)
{
    tlm_tensor *t = &lay->tensors[lay->n_tensors++];
    if (layer >= 0)
        snprintf(t->name, sizeof t->name, "h%d.%s", layer, name);
    else
        snprintf(t->name, sizeof t->name, "%s", name);
    t->offset = lay->total_size;
    t->size = size;
    lay->total_size += size;
    return t->offset;
}

void tlm_layout_init(tlm_layout *lay, const tlm_config *cfg)
{
    size_t C = (size_t)cfg->width;
    memset(lay, 0, sizeof *lay);
    lay->wte = add_tensor(lay, "wte", -1, (size_t)TLM_VOCAB * C);
    lay->wpe = add_tensor(lay, "wpe", -1, (size_t)cfg->ctx * C);
    for (int l = 0; l < cfg->layers; l++) {
        tlm_layer_offsets *o = &lay->layer[l];
        o->ln1_g = add_tensor(lay, "ln1_g", l, C);
        o->ln1_b = add_tensor(lay, "ln1_b", l, C);
        o->qkv_w = add_tensor(lay, "qkv_w", l, C * 3 * C);
        o->qkv_b = add_tensor(lay, "qkv_b", l, 3 * C);
        o->attproj_w = add_tensor(lay, "attproj_w", l, C * C);
        o->attproj_b = add_tensor(lay, "attproj_b", l, C);
        o->ln2_g = add_tensor(lay, "ln2_g", l, C);
        o->ln2_b = add_tensor(lay, "ln2_b", l, C);
        o->fc_w = add_tensor(lay, "fc_w", l, C * 4 * C);
        o->fc_b = add_tensor(lay, "fc_b", l, 4 * C);
        o->fcproj_w = add_tensor(lay, "fcproj_w", l, 4 * C * C);
        o->fcproj_b = add_tensor(lay, "fcproj_b", l, C);
    }
    lay->lnf_g = add_tensor(lay, "lnf_g", -1, C);
    lay->lnf_b = add_tensor(lay, "lnf_b", -1, C);
    lay->body_size = lay->total_size;
    lay->cls_w = add_tensor(lay, "cls_w", -1, C * (size_t)cfg->n_classes);
    lay->cls_b = add_tensor(lay, "cls_b", -1, (size_t)cfg->n_classes);
}

/* ---- initialisation (a small private generator: splitmix64 + Box-Muller) ----------- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform_open(uint64_t *state)
{
    return ((double)(splitmix64(state) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static void fill_normal(float *x, size_t n, double stddev, uint64_t *state)
{
    for (size_t i = 0; i < n; i++) {
        double u1 = uniform_open(state), u2 = uniform_open(state);
        x[i] = (float)(stddev * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
}

static void fill_value(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        x[i] = v;
}

void tlm_init_params(const tlm_config *cfg, const tlm_layout *lay, float *params,
                     uint64_t seed)
{
    size_t C = (size_t)cfg->width;
    uint64_t state = seed ^ 0x746C6D2D696E6974ull; /* "tlm-init" */
    double proj_std = 0.02 / sqrt(2.0 * cfg->layers);
    fill_normal(params + lay->wte, (size_t)TLM_VOCAB * C, 0.02, &state);
    fill_normal(params + lay->wpe, (size_t)cfg->ctx * C, 0.02, &state);
    for (int l = 0; l < cfg->layers; l++) {
        const tlm_layer_offsets *o = &lay->layer[l];
        fill_value(params + o->ln1_g, C, 1.0f);
        fill_value(params + o->ln1_b, C, 0.0f);
        fill_normal(params + o->qkv_w, C * 3 * C, 0.02, &state);
        fill_value(params + o->qkv_b, 3 * C, 0.0f);
        fill_normal(params + o->attproj_w, C * C, proj_std, &state);
        fill_value(params + o->attproj_b, C, 0.0f);
        fill_value(params + o->ln2_g, C, 1.0f);
        fill_value(params + o->ln2_b, C, 0.0f);
        fill_normal(params + o->fc_w, C * 4 * C, 0.02, &state);
        fill_value(params + o->fc_b, 4 * C, 0.0f);
        fill_normal(params + o->fcproj_w, 4 * C * C, proj_std, &state);
        fill_value(params + o->fcproj_b, C, 0.0f);
    }
    fill_value(params + lay->lnf_g, C, 1.0f);
    fill_value(params + lay->lnf_b, C, 0.0f);
    tlm_init_head(cfg, lay, params, seed);
}

void tlm_init_head(const tlm_config *cfg, const tlm_layout *lay, float *params, uint64_t seed)
{
    uint64_t state = seed ^ 0x746C6D2D68656164ull; /* "tlm-head" */
    fill_normal(params + lay->cls_w, (size_t)cfg->width * (size_t)cfg->n_classes, 0.02, &state);
    fill_value(params + lay->cls_b, (size_t)cfg->n_classes, 0.0f);
}

/* ---- layers ------------------------------------------------------------------------- */

void tlm_embed_forward(float *out, const int *tokens, const float *wte, const float *wpe,
                       int B, int T, int C)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *o = out + ((size_t)b * T + t) * C;
            const float *e = wte + (size_t)tokens[b * T + t] * C;
            const float *p = wpe + (size_t)t * C;
            for (int c = 0; c < C; c++)
                o[c] = e[c] + p[c];
        }
}

void tlm_embed_backward(float *dwte, float *dwpe, const float *dout, const int *tokens, int B,
                        int T, int C)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *d = dout + ((size_t)b * T + t) * C;
            float *de = dwte + (size_t)tokens[b * T + t] * C;
            float *dp = dwpe + (size_t)t * C;
            for (int c = 0; c < C; c++) {
                de[c] += d[c];
                dp[c] += d[c];
            }
        }
}

#define TLM_LN_EPS 1e-5f

void tlm_layernorm_forward(float *out, float *mean, float *rstd, const float *in,
                           const float *g, const float *b, int N, int C)
{
    for (int n = 0; n < N; n++) {
        const float *x = in + (size_t)n * C;
        float *y = out + (size_t)n * C;
        double m = 0.0, v = 0.0;
        for (int c = 0; c < C; c++)
            m += x[c];
        m /= C;
        for (int c = 0; c < C; c++)
            v += (x[c] - m) * (x[c] - m);
        v /= C;
        float s = (float)(1.0 / sqrt(v + TLM_LN_EPS));
        for (int c = 0; c < C; c++)
            y[c] = ((x[c] - (float)m) * s) * g[c] + b[c];
        mean[n] = (float)m;
        rstd[n] = s;
    }
}

/* With xhat = (x - mean) rstd and y = g xhat + b:
 * dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = dy g. */
void tlm_layernorm_backward(float *din, float *dg, float *db, const float *dout,
                            const float *in, const float *g, const float *mean,
                            const float *rstd, int N, int C)
{
    for (int n = 0; n < N; n++) {
        const float *x = in + (size_t)n * C;
        const float *dy = dout + (size_t)n * C;
        float *dx = din + (size_t)n * C;
        double mean_dxhat = 0.0, mean_dxhat_xhat = 0.0;
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - mean[n]) * rstd[n];
            float dxhat = dy[c] * g[c];
            mean_dxhat += dxhat;
            mean_dxhat_xhat += dxhat * xhat;
            dg[c] += dy[c] * xhat;
            db[c] += dy[c];
        }
        mean_dxhat /= C;
        mean_dxhat_xhat /= C;
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - mean[n]) * rstd[n];
            float dxhat = dy[c] * g[c];
            dx[c] += rstd[n] * (dxhat - (float)mean_dxhat - xhat * (float)mean_dxhat_xhat);
        }
    }
}

void tlm_linear_forward(float *out, const float *in, const float *w, const float *b, int N,
                        int Cin, int Cout)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, Cout, Cin, 1.0f, in, Cin, w, Cout,
                0.0f, out, Cout);
    if (b)
        for (int n = 0; n < N; n++) {
            float *o = out + (size_t)n * Cout;
            for (int c = 0; c < Cout; c++)
                o[c] += b[c];
        }
}

void tlm_linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                         const float *w, int N, int Cin, int Cout)
{
    if (din) /* din += dout w^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, Cin, Cout, 1.0f, dout, Cout, w,
                    Cout, 1.0f, din, Cin);
    /* dw += in^T dout */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Cin, Cout, N, 1.0f, in, Cin, dout, Cout,
                1.0f, dw, Cout);
    if (db)
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * Cout;
            for (int c = 0; c < Cout; c++)
                db[c] += d[c];
        }
}

/* Causal softmax attention per head; head h reads channels [h hs, (h+1) hs) of q, k, v. */
void tlm_attention_forward(float *out, float *probs, const float *qkv, int B, int T, int C,
                           int H)
{
    int hs = C / H;
    float scale = 1.0f / sqrtf((float)hs);
    size_t row = 3 * (size_t)C;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                const float *q = qkv + ((size_t)b * T + t) * row + (size_t)h * hs;
                float *p = probs + (((size_t)b * H + h) * T + t) * T;
                float maxv = -INFINITY;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *k = qkv + ((size_t)b * T + t2) * row + C + (size_t)h * hs;
                    float s = 0.0f;
                    for (int i = 0; i < hs; i++)
                        s += q[i] * k[i];
                    s *= scale;
                    p[t2] = s;
                    if (s > maxv)
                        maxv = s;
                }
                float sum = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    p[t2] = expf(p[t2] - maxv);
                    sum += p[t2];
                }
                float inv = 1.0f / sum;
                for (int t2 = 0; t2 < T; t2++)
                    p[t2] = t2 <= t ? p[t2] * inv : 0.0f;
                float *o = out + ((size_t)b * T + t) * C + (size_t)h * hs;
                for (int i = 0; i < hs; i++)
                    o[i] = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *v = qkv + ((size_t)b * T + t2) * row + 2 * (size_t)C +
                                     (size_t)h * hs;
                    for (int i = 0; i < hs; i++)
                        o[i] += p[t2] * v[i];
                }
            }
}

/* With s = scale q.k, p = softmax(s), o = sum p v:
 * dv += p do;  dp = do.v;  ds = p (dp - sum_j p_j dp_j);  dq += scale ds k;  dk += scale ds q. */
void tlm_attention_backward(float *dqkv, const float *dout, const float *qkv,
                            const float *probs, int B, int T, int C, int H)
{
    int hs = C / H;
    float scale = 1.0f / sqrtf((float)hs);
    size_t row = 3 * (size_t)C;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                const float *p = probs + (((size_t)b * H + h) * T + t) * T;
                const float *d = dout + ((size_t)b * T + t) * C + (size_t)h * hs;
                const float *q = qkv + ((size_t)b * T + t) * row + (size_t)h * hs;
                float *dq = dqkv + ((size_t)b * T + t) * row + (size_t)h * hs;
                float dot = 0.0f; /* sum_j p_j dp_j */
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *v = qkv + ((size_t)b * T + t2) * row + 2 * (size_t)C +
                                     (size_t)h * hs;
                    float *dv = dqkv + ((size_t)b * T + t2) * row + 2 * (size_t)C +
                                (size_t)h * hs;
                    float dp = 0.0f;
                    for (int i = 0; i < hs; i++) {
                        dp += d[i] * v[i];
                        dv[i] += p[t2] * d[i];
                    }
                    dot += p[t2] * dp;
                }
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *v = qkv + ((size_t)b * T + t2) * row + 2 * (size_t)C +
                                     (size_t)h * hs;
                    const float *k = qkv + ((size_t)b * T + t2) * row + C + (size_t)h * hs;
                    float *dk = dqkv + ((size_t)b * T + t2) * row + C + (size_t)h * hs;
                    float dp = 0.0f;
                    for (int i = 0; i < hs; i++)
                        dp += d[i] * v[i];
                    float ds = p[t2] * (dp - dot) * scale;
                    for (int i = 0; i < hs; i++) {
                        dq[i] += ds * k[i];
                        dk[i] += ds * q[i];
                    }
                }
            }
}

#define TLM_GELU_K 0.7978845608028654f /* sqrt(2 / pi) */
#define TLM_GELU_A 0.044715f

void tlm_gelu_forward(float *out, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = in[i];
        out[i] = 0.5f * x * (1.0f + tanhf(TLM_GELU_K * (x + TLM_GELU_A * x * x * x)));
    }
}

void tlm_gelu_backward(float *din, const float *in, const float *dout, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = in[i];
        float th = tanhf(TLM_GELU_K * (x + TLM_GELU_A * x * x * x));
        float dth = (1.0f - th * th) * TLM_GELU_K * (1.0f + 3.0f * TLM_GELU_A * x * x);
        din[i] += dout[i] * (0.5f * (1.0f + th) + 0.5f * x * dth);
    }
}

void tlm_residual_forward(float *out, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

void tlm_residual_backward(float *da, float *db, const float *dout, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}

void tlm_meanpool_forward(float *out, const float *in, const int *lengths, int B, int T, int C)
{
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * C;
        for (int c = 0; c < C; c++)
            o[c] = 0.0f;
        for (int t = 0; t < lengths[b]; t++) {
            const float *x = in + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++)
                o[c] += x[c];
        }
        float inv = 1.0f / (float)lengths[b];
        for (int c = 0; c < C; c++)
            o[c] *= inv;
    }
}

void tlm_meanpool_backward(float *din, const float *dout, const int *lengths, int B, int T,
                           int C)
{
    for (int b = 0; b < B; b++) {
        const float *d = dout + (size_t)b * C;
        float inv = 1.0f / (float)lengths[b];
        for (int t = 0; t < lengths[b]; t++) {
            float *dx = din + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++)
                dx[c] += d[c] * inv;
        }
    }
}

double tlm_crossentropy_forward(float *probs, const float *logits, const int *targets, int N,
                                int V)
{
    double total = 0.0;
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * V;
        float *p = probs + (size_t)n * V;
        float maxv = z[0];
        for (int v = 1; v < V; v++)
            if (z[v] > maxv)
                maxv = z[v];
        float z_target = z[targets[n]]; /* read before probs (which may alias z) is written */
        double sum = 0.0;
        for (int v = 0; v < V; v++) {
            p[v] = expf(z[v] - maxv);
            sum += p[v];
        }
        float inv = (float)(1.0 / sum);
        for (int v = 0; v < V; v++)
            p[v] *= inv;
        /* -log p[target] computed from the logits, so a tiny probability keeps precision. */
        total += -((double)z_target - maxv - log(sum));
    }
    return total / N;
}

void tlm_crossentropy_backward(float *dlogits, const float *probs, const int *targets, int N,
                               int V)
{
    float inv = 1.0f / (float)N;
    for (int n = 0; n < N; n++) {
        const float *p = probs + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        for (int v = 0; v < V; v++)
            d[v] = p[v] * inv;
        d[targets[n]] -= inv;
    }
}

/* ---- activations ---------------------------------------------------------------------- */

struct tlm_acts {
    float *encoded;                    /* [B T C] */
    float *ln1, *ln1_mean, *ln1_rstd;  /* [L B T C], [L B T] */
    float *qkv;                        /* [L B T 3C] */
    float *atty;                       /* [L B T C] */
    float *probs;                      /* [L B H T T] */
    float *attproj;                    /* [L B T C] */
    float *res2;                       /* [L B T C] after attention */
    float *ln2, *ln2_mean, *ln2_rstd;  /* [L B T C], [L B T] */
    float *fch, *fch_gelu;             /* [L B T 4C] */
    float *fcproj;                     /* [L B T C] */
    float *res3;                       /* [L B T C] after the MLP */
    float *lnf, *lnf_mean, *lnf_rstd;  /* [B T C], [B T] */
    float *logits;                     /* [B T V], softmax probabilities after the loss */
    float *pooled;                     /* [B C] */
    float *cls_logits;                 /* [B K] */
    float *block;
    size_t n_floats;
};

/* Lay the arrays out in one block (sizes for B sequences of ctx tokens). */
static int acts_alloc(tlm_acts *a, const tlm_config *cfg, int B)
{
    size_t L = (size_t)cfg->layers, T = (size_t)cfg->ctx, C = (size_t)cfg->width;
    size_t H = (size_t)cfg->heads, K = (size_t)cfg->n_classes, BT = (size_t)B * T;
    struct { float **p; size_t n; } parts[] = {
        {&a->encoded, BT * C},   {&a->ln1, L * BT * C},     {&a->ln1_mean, L * BT},
        {&a->ln1_rstd, L * BT},  {&a->qkv, L * BT * 3 * C}, {&a->atty, L * BT * C},
        {&a->probs, L * B * H * T * T}, {&a->attproj, L * BT * C}, {&a->res2, L * BT * C},
        {&a->ln2, L * BT * C},   {&a->ln2_mean, L * BT},    {&a->ln2_rstd, L * BT},
        {&a->fch, L * BT * 4 * C}, {&a->fch_gelu, L * BT * 4 * C}, {&a->fcproj, L * BT * C},
        {&a->res3, L * BT * C},  {&a->lnf, BT * C},         {&a->lnf_mean, BT},
        {&a->lnf_rstd, BT},      {&a->logits, BT * TLM_VOCAB}, {&a->pooled, (size_t)B * C},
        {&a->cls_logits, (size_t)B * K},
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        total += parts[i].n;
    a->block = calloc(total, sizeof(float));
    if (!a->block)
        return -1;
    a->n_floats = total;
    float *p = a->block;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        *parts[i].p = p;
        p += parts[i].n;
    }
    return 0;
}

int tlm_model_init(tlm_model *m, const tlm_config *cfg, int max_batch)
{
    memset(m, 0, sizeof *m);
    if (tlm_config_check(cfg, NULL, 0) != 0 || max_batch < 1)
        return -1;
    m->cfg = *cfg;
    m->max_batch = max_batch;
    tlm_layout_init(&m->lay, cfg);
    m->acts = calloc(1, sizeof *m->acts);
    m->dacts = calloc(1, sizeof *m->dacts);
    if (!m->acts || !m->dacts || acts_alloc(m->acts, cfg, max_batch) != 0 ||
        acts_alloc(m->dacts, cfg, max_batch) != 0) {
        tlm_model_free(m);
        return -1;
    }
    return 0;
}

void tlm_model_free(tlm_model *m)
{
    if (!m)
        return;
    if (m->acts)
        free(m->acts->block);
    if (m->dacts)
        free(m->dacts->block);
    free(m->acts);
    free(m->dacts);
    m->acts = m->dacts = NULL;
}

/* ---- the whole model ------------------------------------------------------------------ */

/* Views of layer l's activations for a batch of B x T (arrays are strided by B*T). */
typedef struct layer_view {
    float *res_in, *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *probs, *attproj, *res2;
    float *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_gelu, *fcproj, *res3;
} layer_view;

static layer_view view_layer(const tlm_acts *a, const tlm_config *cfg, int l, int B, int T)
{
    size_t BT = (size_t)B * T, C = (size_t)cfg->width, H = (size_t)cfg->heads;
    size_t ll = (size_t)l;
    layer_view v;
    v.res_in = l == 0 ? a->encoded : a->res3 + (ll - 1) * BT * C;
    v.ln1 = a->ln1 + ll * BT * C;
    v.ln1_mean = a->ln1_mean + ll * BT;
    v.ln1_rstd = a->ln1_rstd + ll * BT;
    v.qkv = a->qkv + ll * BT * 3 * C;
    v.atty = a->atty + ll * BT * C;
    v.probs = a->probs + ll * (size_t)B * H * T * T;
    v.attproj = a->attproj + ll * BT * C;
    v.res2 = a->res2 + ll * BT * C;
    v.ln2 = a->ln2 + ll * BT * C;
    v.ln2_mean = a->ln2_mean + ll * BT;
    v.ln2_rstd = a->ln2_rstd + ll * BT;
    v.fch = a->fch + ll * BT * 4 * C;
    v.fch_gelu = a->fch_gelu + ll * BT * 4 * C;
    v.fcproj = a->fcproj + ll * BT * C;
    v.res3 = a->res3 + ll * BT * C;
    return v;
}

static int check_batch(const tlm_model *m, const float *params, const int *tokens, int B, int T)
{
    if (!m || !m->acts || !params || !tokens || B < 1 || B > m->max_batch || T < 1 ||
        T > m->cfg.ctx)
        return -1;
    for (size_t i = 0; i < (size_t)B * T; i++)
        if (tokens[i] < 0 || tokens[i] >= TLM_VOCAB)
            return -1;
    return 0;
}

/* Embedding, blocks and final LayerNorm: fills acts up to lnf. */
static void forward_body(tlm_model *m, const float *params, const int *tokens, int B, int T)
{
    const tlm_config *cfg = &m->cfg;
    const tlm_layout *lay = &m->lay;
    tlm_acts *a = m->acts;
    int C = cfg->width, N = B * T;
    size_t NC = (size_t)N * C;
    tlm_embed_forward(a->encoded, tokens, params + lay->wte, params + lay->wpe, B, T, C);
    for (int l = 0; l < cfg->layers; l++) {
        const tlm_layer_offsets *o = &lay->layer[l];
        layer_view v = view_layer(a, cfg, l, B, T);
        tlm_layernorm_forward(v.ln1, v.ln1_mean, v.ln1_rstd, v.res_in, params + o->ln1_g,
                              params + o->ln1_b, N, C);
        tlm_linear_forward(v.qkv, v.ln1, params + o->qkv_w, params + o->qkv_b, N, C, 3 * C);
        tlm_attention_forward(v.atty, v.probs, v.qkv, B, T, C, cfg->heads);
        tlm_linear_forward(v.attproj, v.atty, params + o->attproj_w, params + o->attproj_b, N,
                           C, C);
        tlm_residual_forward(v.res2, v.res_in, v.attproj, NC);
        tlm_layernorm_forward(v.ln2, v.ln2_mean, v.ln2_rstd, v.res2, params + o->ln2_g,
                              params + o->ln2_b, N, C);
        tlm_linear_forward(v.fch, v.ln2, params + o->fc_w, params + o->fc_b, N, C, 4 * C);
        tlm_gelu_forward(v.fch_gelu, v.fch, 4 * NC);
        tlm_linear_forward(v.fcproj, v.fch_gelu, params + o->fcproj_w, params + o->fcproj_b, N,
                           4 * C, C);
        tlm_residual_forward(v.res3, v.res2, v.fcproj, NC);
    }
    layer_view last = view_layer(a, cfg, cfg->layers - 1, B, T);
    tlm_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, last.res3, params + lay->lnf_g,
                          params + lay->lnf_b, N, C);
}

/* Backward from dacts->lnf (already filled) down to the embeddings, into grads. */
static void backward_body(tlm_model *m, const float *params, float *grads, const int *tokens,
                          int B, int T)
{
    const tlm_config *cfg = &m->cfg;
    const tlm_layout *lay = &m->lay;
    const tlm_acts *a = m->acts;
    tlm_acts *d = m->dacts;
    int C = cfg->width, N = B * T;
    size_t NC = (size_t)N * C;
    layer_view last = view_layer(a, cfg, cfg->layers - 1, B, T);
    layer_view dlast = view_layer(d, cfg, cfg->layers - 1, B, T);
    tlm_layernorm_backward(dlast.res3, grads + lay->lnf_g, grads + lay->lnf_b, d->lnf, last.res3,
                           params + lay->lnf_g, a->lnf_mean, a->lnf_rstd, N, C);
    for (int l = cfg->layers - 1; l >= 0; l--) {
        const tlm_layer_offsets *o = &lay->layer[l];
        layer_view v = view_layer(a, cfg, l, B, T);
        layer_view dv = view_layer(d, cfg, l, B, T);
        tlm_residual_backward(dv.res2, dv.fcproj, dv.res3, NC);
        tlm_linear_backward(dv.fch_gelu, grads + o->fcproj_w, grads + o->fcproj_b, dv.fcproj,
                            v.fch_gelu, params + o->fcproj_w, N, 4 * C, C);
        tlm_gelu_backward(dv.fch, v.fch, dv.fch_gelu, 4 * NC);
        tlm_linear_backward(dv.ln2, grads + o->fc_w, grads + o->fc_b, dv.fch, v.ln2,
                            params + o->fc_w, N, C, 4 * C);
        tlm_layernorm_backward(dv.res2, grads + o->ln2_g, grads + o->ln2_b, dv.ln2, v.res2,
                               params + o->ln2_g, v.ln2_mean, v.ln2_rstd, N, C);
        tlm_residual_backward(dv.res_in, dv.attproj, dv.res2, NC);
        tlm_linear_backward(dv.atty, grads + o->attproj_w, grads + o->attproj_b, dv.attproj,
                            v.atty, params + o->attproj_w, N, C, C);
        tlm_attention_backward(dv.qkv, dv.atty, v.qkv, v.probs, B, T, C, cfg->heads);
        tlm_linear_backward(dv.ln1, grads + o->qkv_w, grads + o->qkv_b, dv.qkv, v.ln1,
                            params + o->qkv_w, N, C, 3 * C);
        tlm_layernorm_backward(dv.res_in, grads + o->ln1_g, grads + o->ln1_b, dv.ln1, v.res_in,
                               params + o->ln1_g, v.ln1_mean, v.ln1_rstd, N, C);
    }
    tlm_embed_backward(grads + lay->wte, grads + lay->wpe, d->encoded, tokens, B, T, C);
}

/* Zero the parameter gradients and the activation gradients for a fresh backward pass. */
static void zero_grads(tlm_model *m, float *grads)
{
    memset(grads, 0, m->lay.total_size * sizeof(float));
    memset(m->dacts->block, 0, m->dacts->n_floats * sizeof(float));
}

int tlm_lm_loss(tlm_model *m, const float *params, float *grads, const int *tokens,
                const int *targets, int B, int T, double *loss)
{
    if (check_batch(m, params, tokens, B, T) != 0 || !targets || !loss)
        return -1;
    int N = B * T, C = m->cfg.width, V = TLM_VOCAB;
    for (int i = 0; i < N; i++)
        if (targets[i] < 0 || targets[i] >= V)
            return -1;
    tlm_acts *a = m->acts;
    const float *wte = params + m->lay.wte;
    forward_body(m, params, tokens, B, T);
    /* Tied output embedding: logits = lnf wte^T. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, V, C, 1.0f, a->lnf, C, wte, C, 0.0f,
                a->logits, V);
    *loss = tlm_crossentropy_forward(a->logits, a->logits, targets, N, V);
    if (!grads)
        return 0;
    zero_grads(m, grads);
    tlm_acts *d = m->dacts;
    tlm_crossentropy_backward(d->logits, a->logits, targets, N, V);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, V, 1.0f, d->logits, V, wte, C,
                1.0f, d->lnf, C);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, C, N, 1.0f, d->logits, V, a->lnf, C,
                1.0f, grads + m->lay.wte, C);
    backward_body(m, params, grads, tokens, B, T);
    return 0;
}

int tlm_cls_loss(tlm_model *m, const float *params, float *grads, const int *tokens,
                 const int *lengths, const int *labels, int B, int T, double *loss,
                 int *predicted)
{
    if (check_batch(m, params, tokens, B, T) != 0 || !lengths || !labels || !loss)
        return -1;
    int C = m->cfg.width, K = m->cfg.n_classes;
    for (int b = 0; b < B; b++)
        if (lengths[b] < 1 || lengths[b] > T || labels[b] < 0 || labels[b] >= K)
            return -1;
    tlm_acts *a = m->acts;
    const tlm_layout *lay = &m->lay;
    forward_body(m, params, tokens, B, T);
    tlm_meanpool_forward(a->pooled, a->lnf, lengths, B, T, C);
    tlm_linear_forward(a->cls_logits, a->pooled, params + lay->cls_w, params + lay->cls_b, B, C,
                       K);
    if (predicted)
        for (int b = 0; b < B; b++) {
            const float *z = a->cls_logits + (size_t)b * K;
            int best = 0;
            for (int k = 1; k < K; k++)
                if (z[k] > z[best])
                    best = k;
            predicted[b] = best;
        }
    *loss = tlm_crossentropy_forward(a->cls_logits, a->cls_logits, labels, B, K);
    if (!grads)
        return 0;
    zero_grads(m, grads);
    tlm_acts *d = m->dacts;
    tlm_crossentropy_backward(d->cls_logits, a->cls_logits, labels, B, K);
    tlm_linear_backward(d->pooled, grads + lay->cls_w, grads + lay->cls_b, d->cls_logits,
                        a->pooled, params + lay->cls_w, B, C, K);
    tlm_meanpool_backward(d->lnf, d->pooled, lengths, B, T, C);
    backward_body(m, params, grads, tokens, B, T);
    return 0;
}
