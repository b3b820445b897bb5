/* tinylm example: every layer's backward against central finite differences, the whole
 * model's gradient likewise, the fortune reader on real and malformed files, and short
 * pre-training / subspace fine-tuning runs that must actually learn. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <intdim.h>

#include "../examples/tinylm/corpus.h"
#include "../examples/tinylm/host.h"
#include "../examples/tinylm/model.h"

#define FORTUNE_DIR "/usr/share/games/fortunes"

/* ---- helpers ---------------------------------------------------------------------- */

static uint64_t rng_state = 12345;

static double urand(void) /* in [0, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static float *rand_floats(size_t n, double scale)
{
    float *x = malloc(n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((2.0 * urand() - 1.0) * scale);
    return x;
}

static float *zeros(size_t n)
{
    float *x = calloc(n, sizeof *x);
    ck_assert_ptr_nonnull(x);
    return x;
}

static double dot_f(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* A scalar function of whatever inputs the closure points at. */
typedef double (*scalar_fn)(void *ctx);

/* Compare analytic[i] with the central difference of f along x[i] for every i (or every
 * stride-th i). The tolerance mixes an absolute floor (float rounding in f divided by
 * 2 eps) with a relative part (the eps^2 truncation error). */
static void check_coords(const char *what, float *x, size_t n, const float *analytic,
                         scalar_fn f, void *ctx, size_t stride, double eps, double atol,
                         double rtol)
{
    for (size_t i = 0; i < n; i += stride) {
        float saved = x[i];
        x[i] = saved + (float)eps;
        double lp = f(ctx);
        x[i] = saved - (float)eps;
        double lm = f(ctx);
        x[i] = saved;
        double numeric = (lp - lm) / (2.0 * eps);
        double err = fabs(numeric - analytic[i]);
        double tol = atol + rtol * fmax(fabs(numeric), fabs(analytic[i]));
        ck_assert_msg(err <= tol, "%s[%zu]: analytic %.6g numeric %.6g", what, i,
                      (double)analytic[i], numeric);
    }
}

/* ---- per-layer closures: loss = sum(out * w) for a fixed random w -------------------- */

enum { B_ = 2, T_ = 5, C_ = 8, H_ = 2 };

typedef struct ln_ctx {
    float *in, *g, *b, *out, *mean, *rstd, *w;
    int N, C;
} ln_ctx;

static double ln_loss(void *p)
{
    ln_ctx *c = p;
    tlm_layernorm_forward(c->out, c->mean, c->rstd, c->in, c->g, c->b, c->N, c->C);
    return dot_f(c->out, c->w, (size_t)c->N * c->C);
}

START_TEST(test_layernorm_backward)
{
    int N = 6, C = 7;
    ln_ctx c = {rand_floats((size_t)N * C, 2.0), rand_floats(C, 1.5), rand_floats(C, 1.0),
                zeros((size_t)N * C), zeros(N), zeros(N), rand_floats((size_t)N * C, 1.0), N, C};
    float *din = zeros((size_t)N * C), *dg = zeros(C), *db = zeros(C);
    ln_loss(&c);
    tlm_layernorm_backward(din, dg, db, c.w, c.in, c.g, c.mean, c.rstd, N, C);
    check_coords("ln.in", c.in, (size_t)N * C, din, ln_loss, &c, 1, 1e-3, 2e-3, 1e-2);
    check_coords("ln.g", c.g, C, dg, ln_loss, &c, 1, 1e-3, 2e-3, 1e-2);
    check_coords("ln.b", c.b, C, db, ln_loss, &c, 1, 1e-3, 2e-3, 1e-2);
    free(c.in); free(c.g); free(c.b); free(c.out); free(c.mean); free(c.rstd); free(c.w);
    free(din); free(dg); free(db);
}
END_TEST

typedef struct lin_ctx {
    float *in, *wt, *bias, *out, *w;
    int N, Cin, Cout;
} lin_ctx;

static double lin_loss(void *p)
{
    lin_ctx *c = p;
    tlm_linear_forward(c->out, c->in, c->wt, c->bias, c->N, c->Cin, c->Cout);
    return dot_f(c->out, c->w, (size_t)c->N * c->Cout);
}

START_TEST(test_linear_backward)
{
    int N = 5, Cin = 6, Cout = 4;
    lin_ctx c = {rand_floats((size_t)N * Cin, 1.0), rand_floats((size_t)Cin * Cout, 1.0),
                 rand_floats(Cout, 1.0), zeros((size_t)N * Cout),
                 rand_floats((size_t)N * Cout, 1.0), N, Cin, Cout};
    float *din = zeros((size_t)N * Cin), *dw = zeros((size_t)Cin * Cout), *db = zeros(Cout);
    tlm_linear_backward(din, dw, db, c.w, c.in, c.wt, N, Cin, Cout);
    /* Linear in every input: the central difference is exact up to rounding. */
    check_coords("lin.in", c.in, (size_t)N * Cin, din, lin_loss, &c, 1, 1e-2, 1e-3, 1e-3);
    check_coords("lin.w", c.wt, (size_t)Cin * Cout, dw, lin_loss, &c, 1, 1e-2, 1e-3, 1e-3);
    check_coords("lin.b", c.bias, Cout, db, lin_loss, &c, 1, 1e-2, 1e-3, 1e-3);
    free(c.in); free(c.wt); free(c.bias); free(c.out); free(c.w);
    free(din); free(dw); free(db);
}
END_TEST

typedef struct att_ctx {
    float *qkv, *out, *probs, *w;
} att_ctx;

static double att_loss(void *p)
{
    att_ctx *c = p;
    tlm_attention_forward(c->out, c->probs, c->qkv, B_, T_, C_, H_);
    return dot_f(c->out, c->w, (size_t)B_ * T_ * C_);
}

START_TEST(test_attention_backward)
{
    size_t nqkv = (size_t)B_ * T_ * 3 * C_, nout = (size_t)B_ * T_ * C_;
    att_ctx c = {rand_floats(nqkv, 1.5), zeros(nout), zeros((size_t)B_ * H_ * T_ * T_),
                 rand_floats(nout, 1.0)};
    float *dqkv = zeros(nqkv);
    att_loss(&c);
    /* Causality: every probability row sums to one and is zero above the diagonal. */
    for (int r = 0; r < B_ * H_ * T_; r++) {
        int t = r % T_;
        double s = 0.0;
        for (int t2 = 0; t2 < T_; t2++) {
            s += c.probs[r * T_ + t2];
            if (t2 > t)
                ck_assert_float_eq(c.probs[r * T_ + t2], 0.0f);
        }
        ck_assert_double_eq_tol(s, 1.0, 1e-5);
    }
    tlm_attention_backward(dqkv, c.w, c.qkv, c.probs, B_, T_, C_, H_);
    check_coords("att.qkv", c.qkv, nqkv, dqkv, att_loss, &c, 1, 1e-3, 2e-3, 1e-2);
    free(c.qkv); free(c.out); free(c.probs); free(c.w); free(dqkv);
}
END_TEST

typedef struct gelu_ctx {
    float *in, *out, *w;
    size_t n;
} gelu_ctx;

static double gelu_loss(void *p)
{
    gelu_ctx *c = p;
    tlm_gelu_forward(c->out, c->in, c->n);
    return dot_f(c->out, c->w, c->n);
}

START_TEST(test_gelu_backward)
{
    size_t n = 64;
    gelu_ctx c = {rand_floats(n, 4.0), zeros(n), rand_floats(n, 1.0), n};
    float *din = zeros(n);
    tlm_gelu_backward(din, c.in, c.w, n);
    check_coords("gelu.in", c.in, n, din, gelu_loss, &c, 1, 1e-3, 1e-3, 1e-2);
    /* GELU(0) = 0 and GELU(x) -> x for large x. */
    float x[2] = {0.0f, 8.0f}, y[2];
    tlm_gelu_forward(y, x, 2);
    ck_assert_float_eq_tol(y[0], 0.0f, 1e-7f);
    ck_assert_float_eq_tol(y[1], 8.0f, 1e-4f);
    free(c.in); free(c.out); free(c.w); free(din);
}
END_TEST

typedef struct emb_ctx {
    int *tokens;
    float *wte, *wpe, *out, *w;
    int V;
} emb_ctx;

static double emb_loss(void *p)
{
    emb_ctx *c = p;
    tlm_embed_forward(c->out, c->tokens, c->wte, c->wpe, B_, T_, C_);
    return dot_f(c->out, c->w, (size_t)B_ * T_ * C_);
}

START_TEST(test_embed_backward)
{
    int V = 6;
    int tokens[B_ * T_] = {0, 3, 3, 5, 1, 2, 2, 0, 4, 3}; /* repeats must accumulate */
    emb_ctx c = {tokens, rand_floats((size_t)V * C_, 1.0), rand_floats((size_t)T_ * C_, 1.0),
                 zeros((size_t)B_ * T_ * C_), rand_floats((size_t)B_ * T_ * C_, 1.0), V};
    float *dwte = zeros((size_t)V * C_), *dwpe = zeros((size_t)T_ * C_);
    tlm_embed_backward(dwte, dwpe, c.w, tokens, B_, T_, C_);
    check_coords("emb.wte", c.wte, (size_t)V * C_, dwte, emb_loss, &c, 1, 1e-2, 1e-3, 1e-3);
    check_coords("emb.wpe", c.wpe, (size_t)T_ * C_, dwpe, emb_loss, &c, 1, 1e-2, 1e-3, 1e-3);
    free(c.wte); free(c.wpe); free(c.out); free(c.w); free(dwte); free(dwpe);
}
END_TEST

typedef struct pool_ctx {
    float *in, *out, *w;
    const int *lengths;
} pool_ctx;

static double pool_loss(void *p)
{
    pool_ctx *c = p;
    tlm_meanpool_forward(c->out, c->in, c->lengths, B_, T_, C_);
    return dot_f(c->out, c->w, (size_t)B_ * C_);
}

START_TEST(test_meanpool_backward)
{
    int lengths[B_] = {2, 5};
    size_t nin = (size_t)B_ * T_ * C_;
    pool_ctx c = {rand_floats(nin, 1.0), zeros((size_t)B_ * C_), rand_floats((size_t)B_ * C_, 1.0),
                  lengths};
    float *din = zeros(nin);
    tlm_meanpool_backward(din, c.w, lengths, B_, T_, C_);
    check_coords("pool.in", c.in, nin, din, pool_loss, &c, 1, 1e-2, 1e-3, 1e-3);
    /* Padding positions of entry 0 (t >= 2) get no gradient at all. */
    for (int t = 2; t < T_; t++)
        for (int ch = 0; ch < C_; ch++)
            ck_assert_float_eq(din[(size_t)t * C_ + ch], 0.0f);
    free(c.in); free(c.out); free(c.w); free(din);
}
END_TEST

typedef struct ce_ctx {
    float *logits, *probs;
    const int *targets;
    int N, V;
} ce_ctx;

static double ce_loss(void *p)
{
    ce_ctx *c = p;
    return tlm_crossentropy_forward(c->probs, c->logits, c->targets, c->N, c->V);
}

START_TEST(test_crossentropy_backward)
{
    int N = 4, V = 5, targets[4] = {0, 4, 2, 2};
    ce_ctx c = {rand_floats((size_t)N * V, 3.0), zeros((size_t)N * V), targets, N, V};
    float *dlogits = zeros((size_t)N * V);
    double loss = ce_loss(&c);
    ck_assert(loss > 0.0);
    tlm_crossentropy_backward(dlogits, c.probs, targets, N, V);
    check_coords("ce.logits", c.logits, (size_t)N * V, dlogits, ce_loss, &c, 1, 1e-3, 1e-4, 1e-2);
    /* Uniform logits give exactly log V. */
    for (int i = 0; i < N * V; i++)
        c.logits[i] = 0.25f;
    ck_assert_double_eq_tol(ce_loss(&c), log((double)V), 1e-6);
    free(c.logits); free(c.probs); free(dlogits);
}
END_TEST

/* ---- the whole model -------------------------------------------------------------------- */

static const tlm_config small_cfg = {.layers = 2, .width = 8, .heads = 2, .ctx = 6, .n_classes = 3};

typedef struct model_ctx {
    tlm_model *m;
    float *params;
    int *tokens, *targets, *lengths, *labels;
    int B, T, cls;
} model_ctx;

static double model_loss(void *p)
{
    model_ctx *c = p;
    double loss = 0.0;
    int rc = c->cls ? tlm_cls_loss(c->m, c->params, NULL, c->tokens, c->lengths, c->labels, c->B,
                                   c->T, &loss, NULL)
                    : tlm_lm_loss(c->m, c->params, NULL, c->tokens, c->targets, c->B, c->T,
                                  &loss);
    ck_assert_int_eq(rc, 0);
    return loss;
}

/* For every tensor: a directional derivative along a random unit direction (all of the
 * tensor at once), plus single coordinates spread over it. */
static void check_model_grad(model_ctx *c, const float *grads, int skip_head)
{
    const tlm_layout *lay = &c->m->lay;
    for (size_t t = 0; t < lay->n_tensors; t++) {
        const tlm_tensor *ts = &lay->tensors[t];
        if (skip_head && ts->offset >= lay->body_size)
            continue;
        float *x = c->params + ts->offset;
        float *u = rand_floats(ts->size, 1.0);
        double norm = sqrt(dot_f(u, u, ts->size));
        for (size_t i = 0; i < ts->size; i++)
            u[i] = (float)(u[i] / norm);
        float *saved = malloc(ts->size * sizeof *saved);
        ck_assert_ptr_nonnull(saved);
        memcpy(saved, x, ts->size * sizeof *saved);
        double eps = 1e-2, l[2];
        for (int s = 0; s < 2; s++) {
            for (size_t i = 0; i < ts->size; i++)
                x[i] = saved[i] + (float)((s ? -eps : eps) * u[i]);
            l[s] = model_loss(c);
        }
        memcpy(x, saved, ts->size * sizeof *saved);
        double numeric = (l[0] - l[1]) / (2.0 * eps);
        double analytic = dot_f(grads + ts->offset, u, ts->size);
        ck_assert_msg(fabs(numeric - analytic) <= 1e-3 + 2e-2 * fabs(analytic),
                      "%s: directional analytic %.6g numeric %.6g", ts->name, analytic, numeric);
        size_t stride = ts->size > 5 ? ts->size / 5 : 1;
        check_coords(ts->name, x, ts->size, grads + ts->offset, model_loss, c, stride, 1e-2, 1e-3,
                     3e-2);
        free(u);
        free(saved);
    }
}

static void model_setup(tlm_model *m, float **params, float **grads)
{
    ck_assert_int_eq(tlm_model_init(m, &small_cfg, 3), 0);
    *params = zeros(m->lay.total_size);
    *grads = zeros(m->lay.total_size);
    tlm_init_params(&small_cfg, &m->lay, *params, 7);
    /* Larger weights than the 0.02 initialisation so every path carries real signal. */
    for (size_t i = 0; i < m->lay.total_size; i++)
        (*params)[i] += (float)((2.0 * urand() - 1.0) * 0.3);
}

START_TEST(test_model_lm_gradient)
{
    tlm_model m;
    float *params, *grads;
    model_setup(&m, &params, &grads);
    int B = 3, T = 6, tokens[18], targets[18];
    for (int i = 0; i < B * T; i++) {
        tokens[i] = (int)(urand() * TLM_VOCAB);
        targets[i] = (int)(urand() * TLM_VOCAB);
    }
    model_ctx c = {&m, params, tokens, targets, NULL, NULL, B, T, 0};
    double loss;
    ck_assert_int_eq(tlm_lm_loss(&m, params, grads, tokens, targets, B, T, &loss), 0);
    ck_assert_double_eq_tol(loss, model_loss(&c), 1e-12);
    /* The head takes no part in language modelling. */
    for (size_t i = m.lay.body_size; i < m.lay.total_size; i++)
        ck_assert_float_eq(grads[i], 0.0f);
    check_model_grad(&c, grads, 1);
    /* A shorter batch (T < ctx) works too. */
    ck_assert_int_eq(tlm_lm_loss(&m, params, grads, tokens, targets, 2, 4, &loss), 0);
    c.B = 2;
    c.T = 4;
    check_model_grad(&c, grads, 1);
    tlm_model_free(&m);
    free(params);
    free(grads);
}
END_TEST

START_TEST(test_model_cls_gradient)
{
    tlm_model m;
    float *params, *grads;
    model_setup(&m, &params, &grads);
    int B = 3, T = 6, tokens[18], lengths[3] = {6, 2, 4}, labels[3] = {2, 0, 1}, pred[3];
    for (int i = 0; i < B * T; i++)
        tokens[i] = (int)(urand() * TLM_VOCAB);
    model_ctx c = {&m, params, tokens, NULL, lengths, labels, B, T, 1};
    double loss;
    ck_assert_int_eq(tlm_cls_loss(&m, params, grads, tokens, lengths, labels, B, T, &loss, pred),
                     0);
    for (int b = 0; b < B; b++)
        ck_assert(pred[b] >= 0 && pred[b] < small_cfg.n_classes);
    check_model_grad(&c, grads, 0);
    /* Tokens after an entry's length change nothing (causal attention + masked pooling). */
    tokens[1 * T + 3] = (tokens[1 * T + 3] + 1) % TLM_VOCAB;
    ck_assert_double_eq_tol(model_loss(&c), loss, 1e-12);
    tlm_model_free(&m);
    free(params);
    free(grads);
}
END_TEST

START_TEST(test_model_rejects_bad_input)
{
    tlm_model m;
    tlm_config bad = small_cfg;
    bad.heads = 3; /* does not divide width 8 */
    char err[64] = "";
    ck_assert_int_eq(tlm_config_check(&bad, err, sizeof err), -1);
    ck_assert(strlen(err) > 0);
    ck_assert_int_eq(tlm_model_init(&m, &bad, 2), -1);
    float *params, *grads;
    model_setup(&m, &params, &grads);
    int tokens[12] = {0}, targets[12] = {0}, lengths[2] = {1, 1}, labels[2] = {0, 0};
    double loss;
    ck_assert_int_eq(tlm_lm_loss(&m, params, grads, tokens, targets, 4, 3, &loss), -1); /* B */
    ck_assert_int_eq(tlm_lm_loss(&m, params, grads, tokens, targets, 1, 7, &loss), -1); /* T */
    tokens[0] = TLM_VOCAB;
    ck_assert_int_eq(tlm_lm_loss(&m, params, grads, tokens, targets, 2, 6, &loss), -1);
    tokens[0] = 0;
    labels[1] = 3;
    ck_assert_int_eq(tlm_cls_loss(&m, params, grads, tokens, lengths, labels, 2, 6, &loss, NULL),
                     -1);
    labels[1] = 0;
    lengths[0] = 0;
    ck_assert_int_eq(tlm_cls_loss(&m, params, grads, tokens, lengths, labels, 2, 6, &loss, NULL),
                     -1);
    tlm_model_free(&m);
    free(params);
    free(grads);
}
END_TEST

START_TEST(test_vocabulary)
{
    ck_assert_int_eq(tlm_encode_byte('\n'), TLM_TOKEN_NEWLINE);
    ck_assert_int_eq(tlm_encode_byte('\t'), tlm_encode_byte(' '));
    ck_assert_int_eq(tlm_encode_byte(0xC3), TLM_TOKEN_OTHER);
    for (int c = 32; c <= 126; c++) {
        int t = tlm_encode_byte((unsigned char)c);
        ck_assert(t >= 3 && t < TLM_VOCAB);
        ck_assert_int_eq(tlm_decode_token(t), c);
    }
}
END_TEST


/* ---- the fortune reader --------------------------------------------------------------- */

/* Write bytes to a fresh temporary file; returns its path (static buffer per call site). */
static void write_temp(char *path, size_t pathlen, const void *data, size_t n)
{
    snprintf(path, pathlen, "/tmp/tinylm_test_XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
    close(fd);
}

/* strfile(1) wrote each file's entry count, big-endian, at offset 4 of its .dat index:
 * an independent count to compare the reader with. */
static long strfile_count(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.dat", FORTUNE_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    unsigned char h[8];
    size_t got = fread(h, 1, 8, f);
    fclose(f);
    if (got != 8)
        return -1;
    return ((long)h[4] << 24) | ((long)h[5] << 16) | ((long)h[6] << 8) | (long)h[7];
}

START_TEST(test_corpus_real_files)
{
    tlm_corpus c;
    tlm_corpus_init(&c);
    char err[512] = "";
    size_t skipped = 99;
    ck_assert_int_eq(tlm_corpus_add_dir(&c, FORTUNE_DIR, &skipped, err, sizeof err), TLM_OK);
    ck_assert_int_eq(skipped, 0);
    ck_assert_uint_ge(c.n_sources, 10);
    ck_assert_uint_ge(c.n_entries, 5000);
    size_t per_source[TLM_MAX_SOURCES] = {0};
    for (size_t i = 0; i < c.n_entries; i++) {
        const tlm_entry *e = &c.entries[i];
        ck_assert_uint_gt(e->len, 0);
        ck_assert_uint_eq(strlen(e->text), e->len);
        ck_assert(e->text[0] != ' ' && e->text[0] != '\n');
        ck_assert(e->text[e->len - 1] != ' ' && e->text[e->len - 1] != '\n');
        ck_assert_msg(strstr(e->text, "\n%\n") == NULL, "separator inside an entry");
        per_source[e->source]++;
    }
    for (size_t s = 0; s < c.n_sources; s++)
        ck_assert_msg((long)per_source[s] == strfile_count(c.sources[s]),
                      "%s: %zu entries, strfile says %ld", c.sources[s], per_source[s],
                      strfile_count(c.sources[s]));
    /* The strfile index itself is binary: refused as not a fortune file. */
    size_t before = c.n_entries;
    ck_assert_int_eq(tlm_corpus_add_file(&c, FORTUNE_DIR "/fortunes.dat", "idx", err, sizeof err),
                     TLM_EFORMAT);
    ck_assert_uint_eq(c.n_entries, before);
    /* The same source twice is refused. */
    ck_assert_int_eq(tlm_corpus_add_file(&c, FORTUNE_DIR "/fortunes", NULL, err, sizeof err),
                     TLM_EINVAL);
    tlm_corpus_free(&c);
}
END_TEST

/* Parse text as one file; returns the status, entries (if OK) in c. */
static int parse_text(tlm_corpus *c, const char *text, size_t n, char *err, size_t errlen)
{
    char path[64];
    write_temp(path, sizeof path, text, n);
    tlm_corpus_init(c);
    int rc = tlm_corpus_add_file(c, path, "t", err, errlen);
    unlink(path);
    return rc;
}

START_TEST(test_corpus_malformed_files)
{
    tlm_corpus c;
    char err[256];
    /* Last entry without a trailing %, CRLF line ends, blank and empty entries, and lines
     * that merely start with % (not separators). */
    const char *text = "  first\n line\n%\n%\n\n%\r\nsecond\r\n%\r\n%% not a separator\n% nor this\n"
                       "%\nlast without separator";
    ck_assert_int_eq(parse_text(&c, text, strlen(text), err, sizeof err), TLM_OK);
    ck_assert_uint_eq(c.n_entries, 4);
    ck_assert_str_eq(c.entries[0].text, "first\n line");
    ck_assert_str_eq(c.entries[1].text, "second");
    ck_assert_str_eq(c.entries[2].text, "%% not a separator\n% nor this");
    ck_assert_str_eq(c.entries[3].text, "last without separator");
    tlm_corpus_free(&c);
    /* Copies that differ in case or line wrapping share a hash (deduplicated later). */
    const char *copies = "Hello  world,\nagain.\n%\nhello world, again.\n%\nhello world, again!\n";
    ck_assert_int_eq(parse_text(&c, copies, strlen(copies), err, sizeof err), TLM_OK);
    ck_assert_uint_eq(c.n_entries, 3);
    ck_assert(c.entries[0].hash == c.entries[1].hash);
    ck_assert(c.entries[1].hash != c.entries[2].hash);
    tlm_corpus_free(&c);
    /* Empty file, only separators, only blanks: no entries. */
    const char *empties[] = {"", "%\n%\n%\n", " \n\n\t\n%\n  \n"};
    for (int i = 0; i < 3; i++) {
        err[0] = '\0';
        ck_assert_int_eq(parse_text(&c, empties[i], strlen(empties[i]), err, sizeof err),
                         TLM_EFORMAT);
        ck_assert_uint_eq(c.n_entries, 0);
        ck_assert(strlen(err) > 0);
        tlm_corpus_free(&c);
    }
    /* A NUL byte means binary: refused, nothing added. */
    const char binary[] = "text\n%\nmore\0text\n";
    ck_assert_int_eq(parse_text(&c, binary, sizeof binary - 1, err, sizeof err), TLM_EFORMAT);
    ck_assert_uint_eq(c.n_entries, 0);
    tlm_corpus_free(&c);
    /* An entry over the size limit (e.g. a text file with no separators at all). */
    size_t big = TLM_MAX_ENTRY_BYTES + 10;
    char *huge = malloc(big);
    ck_assert_ptr_nonnull(huge);
    memset(huge, 'x', big);
    ck_assert_int_eq(parse_text(&c, huge, big, err, sizeof err), TLM_EFORMAT);
    ck_assert_uint_eq(c.n_entries, 0);
    tlm_corpus_free(&c);
    free(huge);
    /* Missing file and missing directory: I/O errors; NULL arguments: EINVAL. */
    tlm_corpus_init(&c);
    ck_assert_int_eq(tlm_corpus_add_file(&c, "/nonexistent/tinylm", NULL, err, sizeof err),
                     TLM_EIO);
    ck_assert_int_eq(tlm_corpus_add_dir(&c, "/nonexistent/tinylm", NULL, err, sizeof err),
                     TLM_EIO);
    ck_assert_int_eq(tlm_corpus_add_file(NULL, "/x", NULL, err, sizeof err), TLM_EINVAL);
    ck_assert_int_eq(tlm_corpus_add_file(&c, NULL, NULL, NULL, 0), TLM_EINVAL);
    ck_assert_uint_eq(c.n_entries, 0);
    ck_assert_uint_eq(c.n_sources, 0);
    tlm_corpus_free(&c);
}
END_TEST

/* Does the token sequence `needle` occur in `hay`? */
static int tokens_contain(const int *hay, size_t n, const int *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, m * sizeof *needle) == 0)
            return 1;
    return 0;
}

static const tlm_corpus *sorted_entries;

static int compare_entry_text(const void *a, const void *b)
{
    return strcmp(sorted_entries->entries[*(const size_t *)a].text,
                  sorted_entries->entries[*(const size_t *)b].text);
}

START_TEST(test_corpus_splits)
{
    tlm_corpus c;
    tlm_corpus_init(&c);
    char err[512];
    ck_assert_int_eq(tlm_corpus_add_dir(&c, FORTUNE_DIR, NULL, err, sizeof err), TLM_OK);
    const char *classes[] = {"definitions", "politics", "science"};
    tlm_split_config cfg = {classes, 3, 0, 0.25, 0.1, 48, 7};
    tlm_splits a, b;
    ck_assert_int_eq(tlm_make_splits(&c, &cfg, &a, err, sizeof err), TLM_OK);
    /* Balanced: every class has per_class entries, split the same way. */
    ck_assert_uint_gt(a.per_class, 100);
    size_t n_test = (size_t)(0.25 * (double)a.per_class + 0.5);
    ck_assert_uint_eq(a.cls_test.n, 3 * n_test);
    ck_assert_uint_eq(a.cls_train.n, 3 * (a.per_class - n_test));
    size_t count[3] = {0};
    for (size_t i = 0; i < a.cls_test.n; i++)
        count[a.cls_test.labels[i]]++;
    for (int k = 0; k < 3; k++)
        ck_assert_uint_eq(count[k], n_test);
    /* Disjoint: no classification entry is in the other classification split, none has the
     * text of another, and none appears as a whole entry of either language-model stream. */
    unsigned char *used = calloc(c.n_entries, 1);
    ck_assert_ptr_nonnull(used);
    const tlm_cls_set *sets[2] = {&a.cls_test, &a.cls_train};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < sets[s]->n; i++) {
            size_t e = sets[s]->entry[i];
            ck_assert_uint_lt(e, c.n_entries);
            ck_assert_int_eq(used[e], 0);
            used[e] = 1;
            ck_assert_str_eq(c.sources[c.entries[e].source], classes[sets[s]->labels[i]]);
        }
    /* Sorted by text, equal texts are adjacent. */
    const char **texts = malloc(c.n_entries * sizeof *texts);
    ck_assert_ptr_nonnull(texts);
    for (size_t e = 0; e < c.n_entries; e++)
        texts[e] = c.entries[e].text;
    sorted_entries = &c;
    size_t *order = malloc(c.n_entries * sizeof *order);
    ck_assert_ptr_nonnull(order);
    for (size_t e = 0; e < c.n_entries; e++)
        order[e] = e;
    qsort(order, c.n_entries, sizeof *order, compare_entry_text);
    for (size_t j = 0; j + 1 < c.n_entries; j++)
        if (used[order[j]] || used[order[j + 1]])
            ck_assert_msg(strcmp(texts[order[j]], texts[order[j + 1]]) != 0,
                          "a classification entry's text is also entry %zu", order[j + 1]);
    free(order);
    free(texts);
    free(used);
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < 30; i++) {
            const tlm_entry *e = &c.entries[sets[s]->entry[i]];
            int *tok = malloc((e->len + 2) * sizeof *tok);
            ck_assert_ptr_nonnull(tok);
            tok[0] = TLM_TOKEN_END; /* whole entries sit between END tokens */
            tlm_encode_text(e->text, e->len, tok + 1);
            tok[e->len + 1] = TLM_TOKEN_END;
            ck_assert(!tokens_contain(a.lm_train, a.n_lm_train, tok, e->len + 2));
            ck_assert(!tokens_contain(a.lm_val, a.n_lm_val, tok, e->len + 2));
            /* nor as the very first entry of a stream */
            ck_assert(memcmp(a.lm_train, tok + 1, (e->len + 1) * sizeof *tok) != 0);
            ck_assert(memcmp(a.lm_val, tok + 1, (e->len + 1) * sizeof *tok) != 0);
            free(tok);
        }
    /* Streams are entries separated by END, and validation is about 10% of the entries. */
    ck_assert_int_eq(a.lm_train[a.n_lm_train - 1], TLM_TOKEN_END);
    double frac = (double)a.lm_val_entries / (double)(a.lm_val_entries + a.lm_train_entries);
    ck_assert(frac > 0.07 && frac < 0.13);
    ck_assert_uint_gt(a.duplicates, 0);
    /* Deterministic from the seed; another seed picks other entries. */
    ck_assert_int_eq(tlm_make_splits(&c, &cfg, &b, err, sizeof err), TLM_OK);
    ck_assert_uint_eq(a.n_lm_train, b.n_lm_train);
    ck_assert(memcmp(a.cls_test.tokens, b.cls_test.tokens, a.cls_test.n * 48 * sizeof(int)) == 0);
    tlm_splits_free(&b);
    cfg.seed = 8;
    ck_assert_int_eq(tlm_make_splits(&c, &cfg, &b, err, sizeof err), TLM_OK);
    ck_assert(memcmp(a.cls_test.tokens, b.cls_test.tokens, a.cls_test.n * 48 * sizeof(int)) != 0);
    tlm_splits_free(&b);
    tlm_splits_free(&a);
    /* Bad requests. */
    const char *unknown[] = {"definitions", "no-such-file"};
    const char *twice[] = {"science", "science"};
    tlm_split_config bad = cfg;
    bad.class_sources = unknown;
    bad.n_classes = 2;
    ck_assert_int_eq(tlm_make_splits(&c, &bad, &b, err, sizeof err), TLM_EINVAL);
    bad.class_sources = twice;
    ck_assert_int_eq(tlm_make_splits(&c, &bad, &b, err, sizeof err), TLM_EINVAL);
    bad = cfg;
    bad.per_class = 100000;
    ck_assert_int_eq(tlm_make_splits(&c, &bad, &b, err, sizeof err), TLM_EINVAL);
    bad = cfg;
    bad.cls_test_fraction = 1.0;
    ck_assert_int_eq(tlm_make_splits(&c, &bad, &b, err, sizeof err), TLM_EINVAL);
    tlm_corpus_free(&c);
}
END_TEST

/* ---- training through libintdim ---------------------------------------------------------- */

static const tlm_config train_cfg = {.layers = 1, .width = 16, .heads = 2, .ctx = 32,
                                     .n_classes = 2};

typedef struct train_fixture {
    tlm_corpus corpus;
    tlm_splits sp;
    tlm_model m;
    float *params;
} train_fixture;

static void fixture_setup(train_fixture *f)
{
    char err[512];
    tlm_corpus_init(&f->corpus);
    ck_assert_int_eq(tlm_corpus_add_dir(&f->corpus, FORTUNE_DIR, NULL, err, sizeof err), TLM_OK);
    const char *classes[] = {"definitions", "songs-poems"};
    tlm_split_config cfg = {classes, 2, 160, 0.25, 0.1, train_cfg.ctx, 3};
    ck_assert_int_eq(tlm_make_splits(&f->corpus, &cfg, &f->sp, err, sizeof err), TLM_OK);
    ck_assert_int_eq(tlm_model_init(&f->m, &train_cfg, 32), 0);
    f->params = zeros(f->m.lay.total_size);
    tlm_init_params(&train_cfg, &f->m.lay, f->params, 11);
}

static void fixture_teardown(train_fixture *f)
{
    free(f->params);
    tlm_model_free(&f->m);
    tlm_splits_free(&f->sp);
    tlm_corpus_free(&f->corpus);
}

START_TEST(test_pretraining_lowers_loss)
{
    train_fixture f;
    fixture_setup(&f);
    tlm_lm_host h;
    ck_assert_int_eq(tlm_lm_host_init(&h, &f.m, &f.sp, 8, train_cfg.ctx, 5), 0);
    double before = tlm_lm_val_loss(&h, f.params, 32);
    /* Near log(vocab) at initialisation. */
    ck_assert_double_eq_tol(before, log((double)TLM_VOCAB), 0.2);
    intdim_proj *p = NULL;
    intdim_trainer *t = NULL;
    size_t D = f.m.lay.total_size;
    ck_assert_int_eq(intdim_proj_create(&p, INTDIM_PROJ_IDENTITY, D, D, 0), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_create(&t, p, f.params, NULL, NULL, 0, tlm_lm_grad, &h),
                     INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_set(t, INTDIM_TRAIN_LR, 1e-2), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_run(t, 40, NULL, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_sync(t), INTDIM_OK);
    ck_assert_uint_eq(h.loss_count, 40);
    double after = tlm_lm_val_loss(&h, f.params, 32);
    ck_assert_msg(after < before - 0.5, "validation loss %.3f -> %.3f", before, after);
    /* The same windows every time: the validation loss is a pure function of params. */
    ck_assert_double_eq(after, tlm_lm_val_loss(&h, f.params, 32));
    intdim_trainer_destroy(t);
    intdim_proj_destroy(p);
    tlm_lm_host_free(&h);
    fixture_teardown(&f);
}
END_TEST

/* Every window of the training stream can be drawn, the last one included, and none runs
 * past the end (windows hold T + 1 tokens). Before session 10 the draw was modulo n-T-1
 * and the last window never came up. */
START_TEST(test_lm_windows_cover_stream)
{
    const int T = 8;
    for (size_t n = (size_t)T + 1; n <= (size_t)T + 4; n++) {
        int seen[4] = {0};
        for (uint64_t step = 0; step < 200; step++)
            for (uint64_t slot = 0; slot < 4; slot++) {
                size_t off = tlm_lm_window_offset(3, step, slot, n, T);
                ck_assert_uint_le(off + (size_t)T + 1, n);
                seen[off]++;
            }
        for (size_t off = 0; off < n - (size_t)T; off++)
            ck_assert_msg(seen[off] > 0, "n = %zu: window at %zu never drawn", n, off);
    }
}
END_TEST

START_TEST(test_subspace_finetune_beats_majority)
{
    train_fixture f;
    fixture_setup(&f);
    tlm_cls_host h;
    ck_assert_int_eq(tlm_cls_host_init(&h, &f.m, &f.sp.cls_train, &f.sp.cls_test, 16, 32, 120, 9),
                     0);
    double majority = tlm_majority_fraction(&f.sp.cls_test, 2), acc0 = 0.0, acc = 0.0;
    ck_assert_double_eq_tol(majority, 0.5, 1e-12);
    size_t D = f.m.lay.total_size, groups[TLM_MAX_TENSORS];
    for (size_t i = 0; i < f.m.lay.n_tensors; i++)
        groups[i] = f.m.lay.tensors[i].size;
    /* SAID over Fastfood, one scale per tensor, from the random initialisation. */
    intdim_proj *p = NULL;
    intdim_trainer *t = NULL;
    float *theta0 = malloc(D * sizeof *theta0);
    ck_assert_ptr_nonnull(theta0);
    memcpy(theta0, f.params, D * sizeof *theta0);
    ck_assert_int_eq(intdim_proj_create_said(&p, INTDIM_PROJ_FASTFOOD, D, 300, f.m.lay.n_tensors,
                                             groups, 4),
                     INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_create(&t, p, f.params, theta0, NULL, 0, tlm_cls_grad, &h),
                     INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_evaluate(t, tlm_cls_eval_test, &h, &acc0), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_set(t, INTDIM_TRAIN_LR, 0.1), INTDIM_OK);
    ck_assert_int_eq(intdim_trainer_run(t, 80, tlm_cls_eval_test, &h, NULL, NULL, &acc),
                     INTDIM_OK);
    ck_assert_msg(acc > majority + 0.1, "subspace fine-tune: test accuracy %.3f (start %.3f), "
                  "majority %.3f", acc, acc0, majority);
    intdim_trainer_destroy(t);
    intdim_proj_destroy(p);
    free(theta0);
    tlm_cls_host_free(&h);
    fixture_teardown(&f);
}
END_TEST

static Suite *tinylm_suite(void)
{
    Suite *s = suite_create("tinylm");
    TCase *layers = tcase_create("layers");
    tcase_add_test(layers, test_layernorm_backward);
    tcase_add_test(layers, test_linear_backward);
    tcase_add_test(layers, test_attention_backward);
    tcase_add_test(layers, test_gelu_backward);
    tcase_add_test(layers, test_embed_backward);
    tcase_add_test(layers, test_meanpool_backward);
    tcase_add_test(layers, test_crossentropy_backward);
    suite_add_tcase(s, layers);
    TCase *model = tcase_create("model");
    tcase_add_test(model, test_model_lm_gradient);
    tcase_add_test(model, test_model_cls_gradient);
    tcase_add_test(model, test_model_rejects_bad_input);
    tcase_add_test(model, test_vocabulary);
    suite_add_tcase(s, model);
    TCase *corpus = tcase_create("corpus");
    tcase_add_test(corpus, test_corpus_real_files);
    tcase_add_test(corpus, test_corpus_malformed_files);
    tcase_add_test(corpus, test_corpus_splits);
    suite_add_tcase(s, corpus);
    TCase *training = tcase_create("training");
    tcase_add_test(training, test_lm_windows_cover_stream);
    tcase_add_test(training, test_pretraining_lowers_loss);
    tcase_add_test(training, test_subspace_finetune_beats_majority);
    suite_add_tcase(s, training);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tinylm_suite());
    srunner_run_all(sr, CK_NORMAL);
    /* failed also when no test ran (a CK_RUN_CASE naming nothing) */
    int failed = srunner_ntests_failed(sr) + (srunner_ntests_run(sr) == 0);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
