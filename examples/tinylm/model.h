/* tinylm: a small decoder-only transformer over one flat float buffer.
 *
 * Written in the spirit of llm.c: every layer is a plain forward function and a plain
 * backward function over contiguous arrays, and the model is those layers called in
 * order. All parameters live in one flat buffer (so a subspace trainer can write
 * theta0 + P(theta_d) into it directly); tlm_layout names the tensors inside it.
 *
 * Architecture (GPT-2 style, pre-LayerNorm):
 *   x = wte[token] + wpe[position]
 *   for each block: x += attn(ln1(x));  x += mlp(ln2(x))      (mlp: C -> 4C -> GELU -> C)
 *   h = lnf(x)
 *   language model: logits = h wte^T (tied embeddings), softmax cross-entropy
 *   classifier:     pooled = mean of h over the entry's tokens, logits = pooled W_cls + b_cls
 * Causal attention means padding after an entry's last token never changes its hidden
 * states, so classification batches can be padded freely.
 *
 * Linear weights are stored [in][out] row-major: out = in W + b (one sgemm).
 * The classifier head is the last two tensors of the buffer, so a pre-trained "body"
 * (the first tlm_body_size floats) is shared by every head size.
 */
#ifndef TINYLM_MODEL_H
#define TINYLM_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* Character-level vocabulary: 0 ends an entry, 1 stands for any byte we do not model
 * (control characters, non-ASCII), 2 is '\n', 3..97 are ' '..'~'. Tabs become spaces. */
#define TLM_VOCAB 98
#define TLM_TOKEN_END 0
#define TLM_TOKEN_OTHER 1
#define TLM_TOKEN_NEWLINE 2

/* Byte -> token and token -> byte ('?' for END/OTHER). */
int tlm_encode_byte(unsigned char c);
char tlm_decode_token(int token);

typedef struct tlm_config {
    int layers;    /* transformer blocks, >= 1 */
    int width;     /* channels C, a multiple of heads */
    int heads;     /* attention heads */
    int ctx;       /* context length T (positions) */
    int n_classes; /* classifier outputs K (the head is width x n_classes), >= 1 */
} tlm_config;

/* 0 if the configuration is usable, -1 otherwise (message in err[0..errlen) if err). */
int tlm_config_check(const tlm_config *cfg, char *err, size_t errlen);

/* One named parameter tensor inside the flat buffer. */
typedef struct tlm_tensor {
    char name[32];
    size_t offset;
    size_t size;
} tlm_tensor;

/* Offsets of every tensor, in buffer order (the order of the tensors array). */
typedef struct tlm_layer_offsets {
    size_t ln1_g, ln1_b, qkv_w, qkv_b, attproj_w, attproj_b;
    size_t ln2_g, ln2_b, fc_w, fc_b, fcproj_w, fcproj_b;
} tlm_layer_offsets;

#define TLM_MAX_LAYERS 16
#define TLM_TENSORS_PER_LAYER 12
#define TLM_MAX_TENSORS (2 + TLM_MAX_LAYERS * TLM_TENSORS_PER_LAYER + 4)

typedef struct tlm_layout {
    size_t wte, wpe;
    tlm_layer_offsets layer[TLM_MAX_LAYERS];
    size_t lnf_g, lnf_b, cls_w, cls_b;
    size_t body_size;  /* everything but the classifier head */
    size_t total_size; /* D */
    size_t n_tensors;
    tlm_tensor tensors[TLM_MAX_TENSORS];
} tlm_layout;

/* Fill the layout for a checked configuration. */
void tlm_layout_init(tlm_layout *lay, const tlm_config *cfg);

/* GPT-2 style initialisation from seed: embeddings and weights N(0, 0.02), residual
 * output projections N(0, 0.02 / sqrt(2 layers)), LayerNorm gains 1, biases 0. */
void tlm_init_params(const tlm_config *cfg, const tlm_layout *lay, float *params,
                     uint64_t seed);
/* Re-draw only the classifier head (N(0, 0.02) weights, zero bias) from seed. */
void tlm_init_head(const tlm_config *cfg, const tlm_layout *lay, float *params, uint64_t seed);

/* Activations of one forward pass and their gradients, sized for at most max_batch
 * sequences of cfg->ctx tokens. Allocated once: the passes allocate nothing. */
typedef struct tlm_acts tlm_acts;

typedef struct tlm_model {
    tlm_config cfg;
    tlm_layout lay;
    int max_batch;
    tlm_acts *acts;  /* forward values */
    tlm_acts *dacts; /* their gradients */
} tlm_model;

/* 0 on success, -1 on a bad configuration or allocation failure. */
int tlm_model_init(tlm_model *m, const tlm_config *cfg, int max_batch);
void tlm_model_free(tlm_model *m);

/* Next-token loss on B sequences of T <= ctx tokens (tokens[b*T + t], targets likewise):
 * mean cross-entropy over the B*T positions into *loss. If grads is not NULL it receives
 * dloss/dparams (overwritten, length total_size; the head's entries are zero).
 * Returns 0, or -1 on bad sizes or a token outside the vocabulary. */
int tlm_lm_loss(tlm_model *m, const float *params, float *grads, const int *tokens,
                const int *targets, int B, int T, double *loss);

/* Classification loss on B sequences padded to T <= ctx tokens: entry b has lengths[b] in
 * [1, T] real tokens and label labels[b] in [0, K). Mean cross-entropy into *loss; if
 * predicted is not NULL it gets each entry's argmax class; if grads is not NULL it gets
 * dloss/dparams (overwritten). Returns 0, or -1 on bad sizes, lengths, labels or tokens. */
int tlm_cls_loss(tlm_model *m, const float *params, float *grads, const int *tokens,
                 const int *lengths, const int *labels, int B, int T, double *loss,
                 int *predicted);

/* ---- the layers, exposed for the finite-difference tests --------------------------
 * Shapes: N = rows (B*T), C = channels. Backward functions ADD into their gradient
 * outputs (d-inputs and d-parameters), so callers zero them first. */
void tlm_embed_forward(float *out, const int *tokens, const float *wte, const float *wpe,
                       int B, int T, int C);
void tlm_embed_backward(float *dwte, float *dwpe, const float *dout, const int *tokens, int B,
                        int T, int C);
void tlm_layernorm_forward(float *out, float *mean, float *rstd, const float *in,
                           const float *g, const float *b, int N, int C);
void tlm_layernorm_backward(float *din, float *dg, float *db, const float *dout,
                            const float *in, const float *g, const float *mean,
                            const float *rstd, int N, int C);
/* out[N][Cout] = in[N][Cin] w[Cin][Cout] + b (b may be NULL). */
void tlm_linear_forward(float *out, const float *in, const float *w, const float *b, int N,
                        int Cin, int Cout);
void tlm_linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                         const float *w, int N, int Cin, int Cout);
/* qkv[B][T][3C] (q, k, v side by side) -> out[B][T][C]; probs[B][H][T][T] is saved. */
void tlm_attention_forward(float *out, float *probs, const float *qkv, int B, int T, int C,
                           int H);
void tlm_attention_backward(float *dqkv, const float *dout, const float *qkv,
                            const float *probs, int B, int T, int C, int H);
void tlm_gelu_forward(float *out, const float *in, size_t n);
void tlm_gelu_backward(float *din, const float *in, const float *dout, size_t n);
void tlm_residual_forward(float *out, const float *a, const float *b, size_t n);
void tlm_residual_backward(float *da, float *db, const float *dout, size_t n);
/* Mean of in[b][0..lengths[b])[C] over positions -> out[B][C]. */
void tlm_meanpool_forward(float *out, const float *in, const int *lengths, int B, int T, int C);
void tlm_meanpool_backward(float *din, const float *dout, const int *lengths, int B, int T,
                           int C);
/* Softmax cross-entropy over rows of logits[N][V]: returns the mean loss, writes the
 * probabilities into probs (may alias logits). */
double tlm_crossentropy_forward(float *probs, const float *logits, const int *targets, int N,
                                int V);
/* dlogits = (probs - onehot(target)) / N (overwrites). */
void tlm_crossentropy_backward(float *dlogits, const float *probs, const int *targets, int N,
                               int V);

#endif
