/* tinylm hosts: batches, losses and metrics for libintdim's callbacks. */
#include "host.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

uint64_t tlm_mix3(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t z = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull) * 0xD1B54A32D192ED03ull ^
                 (c + 0x8CB92BA72F3D8DD7ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

size_t tlm_lm_window_offset(uint64_t seed, uint64_t step, uint64_t slot, size_t n, int T)
{
    return (size_t)(tlm_mix3(seed, step, slot) % (n - (size_t)T));
}

int tlm_lm_host_init(tlm_lm_host *h, tlm_model *m, const tlm_splits *sp, int B, int T,
                     uint64_t seed)
{
    memset(h, 0, sizeof *h);
    if (!m || !sp || B < 1 || B > m->max_batch || T < 1 || T > m->cfg.ctx ||
        sp->n_lm_train < (size_t)T + 2 || sp->n_lm_val < (size_t)T + 2)
        return -1;
    *h = (tlm_lm_host){m, sp, B, T, seed, malloc((size_t)B * T * sizeof(int)),
                       malloc((size_t)B * T * sizeof(int)), 0.0, 0};
    if (!h->tokens || !h->targets) {
        tlm_lm_host_free(h);
        return -1;
    }
    return 0;
}

void tlm_lm_host_free(tlm_lm_host *h)
{
    free(h->tokens);
    free(h->targets);
    h->tokens = h->targets = NULL;
}

/* Copy window [off, off + T] of a stream into batch slot b (inputs and shifted targets). */
static void put_window(tlm_lm_host *h, int b, const int *stream, size_t off)
{
    memcpy(h->tokens + (size_t)b * h->T, stream + off, (size_t)h->T * sizeof(int));
    memcpy(h->targets + (size_t)b * h->T, stream + off + 1, (size_t)h->T * sizeof(int));
}

int tlm_lm_grad(void *user, uint64_t step, const float *theta, float *grad, double *loss)
{
    tlm_lm_host *h = user;
    for (int b = 0; b < h->B; b++)
        put_window(h, b, h->sp->lm_train,
                   tlm_lm_window_offset(h->seed, step, (uint64_t)b, h->sp->n_lm_train, h->T));
    if (tlm_lm_loss(h->m, theta, grad, h->tokens, h->targets, h->B, h->T, loss) != 0)
        return 1;
    h->loss_sum += *loss;
    h->loss_count++;
    return 0;
}

double tlm_lm_val_loss(tlm_lm_host *h, const float *params, int n_windows)
{
    if (n_windows < 1)
        return NAN;
    size_t span = h->sp->n_lm_val - (size_t)h->T - 1;
    double total = 0.0;
    for (int done = 0; done < n_windows;) {
        int nb = n_windows - done < h->B ? n_windows - done : h->B;
        for (int b = 0; b < nb; b++)
            put_window(h, b, h->sp->lm_val,
                       (size_t)((double)(done + b) * (double)span / n_windows));
        double loss = 0.0;
        if (tlm_lm_loss(h->m, params, NULL, h->tokens, h->targets, nb, h->T, &loss) != 0)
            return NAN;
        total += loss * nb;
        done += nb;
    }
    return total / n_windows;
}

int tlm_cls_host_init(tlm_cls_host *h, tlm_model *m, const tlm_cls_set *train,
                      const tlm_cls_set *test, int B, int eval_batch, size_t eval_train_max,
                      uint64_t seed)
{
    memset(h, 0, sizeof *h);
    if (!m || !train || !test || train->n == 0 || test->n == 0 || train->T != m->cfg.ctx ||
        test->T != m->cfg.ctx || B < 1 || B > m->max_batch || eval_batch < 1 ||
        eval_batch > m->max_batch)
        return -1;
    size_t nb = (size_t)(B > eval_batch ? B : eval_batch);
    *h = (tlm_cls_host){m, train, test, B, eval_batch, eval_train_max, seed,
                        malloc(nb * (size_t)train->T * sizeof(int)), malloc(nb * sizeof(int)),
                        malloc(nb * sizeof(int)), malloc(nb * sizeof(int)), NAN};
    if (!h->tokens || !h->lengths || !h->labels || !h->pred) {
        tlm_cls_host_free(h);
        return -1;
    }
    return 0;
}

void tlm_cls_host_free(tlm_cls_host *h)
{
    free(h->tokens);
    free(h->lengths);
    free(h->labels);
    free(h->pred);
    h->tokens = h->lengths = h->labels = h->pred = NULL;
}

int tlm_cls_grad(void *user, uint64_t step, const float *theta, float *grad, double *loss)
{
    tlm_cls_host *h = user;
    size_t T = (size_t)h->train->T;
    for (int b = 0; b < h->B; b++) {
        size_t i = tlm_mix3(h->seed, step, (uint64_t)b) % h->train->n;
        memcpy(h->tokens + (size_t)b * T, h->train->tokens + i * T, T * sizeof(int));
        h->lengths[b] = h->train->lengths[i];
        h->labels[b] = h->train->labels[i];
    }
    return tlm_cls_loss(h->m, theta, grad, h->tokens, h->lengths, h->labels, h->B, (int)T, loss,
                        NULL) != 0;
}

int tlm_cls_accuracy(tlm_cls_host *h, const float *theta, const tlm_cls_set *set, size_t n,
                     double *acc)
{
    size_t correct = 0, T = (size_t)set->T;
    if (n == 0 || n > set->n)
        return 1;
    for (size_t i0 = 0; i0 < n; i0 += (size_t)h->eval_batch) {
        int nb = n - i0 < (size_t)h->eval_batch ? (int)(n - i0) : h->eval_batch;
        double loss;
        if (tlm_cls_loss(h->m, theta, NULL, set->tokens + i0 * T, set->lengths + i0,
                         set->labels + i0, nb, (int)T, &loss, h->pred) != 0)
            return 1;
        for (int b = 0; b < nb; b++)
            correct += h->pred[b] == set->labels[i0 + (size_t)b];
    }
    *acc = (double)correct / (double)n;
    return 0;
}

int tlm_cls_eval_test(void *user, const float *theta, double *metric)
{
    tlm_cls_host *h = user;
    return tlm_cls_accuracy(h, theta, h->test, h->test->n, metric);
}

int tlm_cls_eval_train(void *user, const float *theta, double *metric)
{
    tlm_cls_host *h = user;
    size_t n = h->train->n < h->eval_train_max ? h->train->n : h->eval_train_max;
    int rc = tlm_cls_accuracy(h, theta, h->train, n, metric);
    h->last_train_acc = rc == 0 ? *metric : NAN;
    return rc;
}

double tlm_majority_fraction(const tlm_cls_set *set, int n_classes)
{
    size_t best = 0;
    for (int k = 0; k < n_classes; k++) {
        size_t count = 0;
        for (size_t i = 0; i < set->n; i++)
            count += set->labels[i] == k;
        if (count > best)
            best = count;
    }
    return set->n ? (double)best / (double)set->n : 0.0;
}
