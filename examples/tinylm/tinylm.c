/* tinylm: pre-train a small character-level transformer on Debian fortunes, then measure
 * the intrinsic dimension (d90, SAID and DID-Fastfood) of fine-tuning it to classify an
 * entry's source file, through libintdim's trainer and search.
 *
 *   tinylm pretrain --out DIR [model and training flags]
 *       Next-token pre-training with the library's IDENTITY trainer (plain Adam over all
 *       D parameters). Writes DIR/ckpt_<step>.bin every --ckpt-every steps (step 0
 *       included) and DIR/pretrain.tsv (step, mean train loss since the last checkpoint,
 *       validation loss).
 *   tinylm d90 --ckpt FILE [--method both|said|did] [search flags]
 *       Full fine-tuning baseline, then a d90 grid search per method. Appends to
 *       <results-dir>/d90.tsv and <results-dir>/trials.tsv; journals per search.
 *   tinylm finetune --ckpt FILE --kind full|said|did [--d N] [--ft-lr LR]
 *       One fine-tuning run (for choosing learning rates).
 *
 * Only <intdim.h> from the library: the model and corpus are this example's own code.
 */
#include <errno.h>
#include <intdim.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "corpus.h"
#include "host.h"
#include "model.h"

/* ---- options ---------------------------------------------------------------------------- */

#define MAX_DS 64  /* items of --d-list */
#define MAX_LRS 16 /* items of --lrs */

typedef struct opts {
    const char *out, *ckpt, *method, *kind, *classes, *corpus_dir, *d_list, *lrs;
    const char *results_dir, *label;
    int layers, width, heads, ctx, batch, steps, ckpt_every, val_windows;
    int ft_batch, ft_steps, per_class, eval_train_max, d;
    double lr, ft_lr, sub_lr, cls_test_fraction, lm_val_fraction;
    long long seed, split_seed;
    size_t ds[MAX_DS], n_ds;      /* --d-list, parsed by parse_lists */
    double lr_list[MAX_LRS];
    size_t n_lrs;                 /* --lrs, likewise */
} opts;

static void opts_default(opts *o)
{
    memset(o, 0, sizeof *o);
    o->out = "out/tinylm/model";
    o->method = "both";
    o->kind = "said";
    o->classes = "definitions,politics,science,songs-poems";
    o->corpus_dir = "/usr/share/games/fortunes";
    o->d_list = "50,100,200,500,1000,2000,5000";
    o->lrs = "0.03";
    o->results_dir = "out/tinylm/results";
    o->label = "";
    o->layers = 2;
    o->width = 64;
    o->heads = 4;
    o->ctx = 64;
    o->batch = 16;
    o->steps = 1200;
    o->ckpt_every = 300;
    o->val_windows = 128;
    o->ft_batch = 16;
    o->ft_steps = 200;
    o->per_class = 0;
    o->eval_train_max = 400;
    o->d = 1000;
    o->lr = 3e-3;
    o->ft_lr = 1e-3;
    o->sub_lr = 3e-2;
    o->cls_test_fraction = 0.3;
    o->lm_val_fraction = 0.1;
    o->seed = 1;
    o->split_seed = 1;
}

/* Integers must lie in [min, max]; doubles strictly between min and max (max = HUGE_VAL:
 * any finite number above min). */
typedef struct opt_spec {
    const char *name;
    char type; /* s string, i int, d double, l long long */
    size_t offset;
    double min, max;
    const char *help;
} opt_spec;

/* Step counts stay below 1e9 so that step + ckpt-every never overflows an int; seeds below
 * 2^53, the largest the search takes (INTDIM_SEARCH_BASE_SEED is a double). Model sizes are
 * checked by tlm_config_check before pre-training, with its own message. */
#define MAX_STEPS 1e9
#define MAX_SEED 9007199254740992.0
#define OPT(n, t, f, lo, hi, h) {n, t, offsetof(opts, f), lo, hi, h}
#define STR(n, f, h) OPT(n, 's', f, 0, 0, h)
static const opt_spec opt_table[] = {
    STR("out", out, "pretrain: output directory for checkpoints"),
    STR("ckpt", ckpt, "d90/finetune: pre-trained checkpoint file"),
    STR("method", method, "d90: both, said or did"),
    STR("kind", kind, "finetune: full, said or did"),
    STR("classes", classes, "comma-separated fortune files used as classes"),
    STR("corpus", corpus_dir, "fortune directory"),
    STR("d-list", d_list, "d90: comma-separated subspace dimensions"),
    STR("lrs", lrs, "d90: comma-separated subspace learning rates"),
    STR("results-dir", results_dir, "d90: where d90.tsv, trials.tsv and journals go"),
    STR("label", label, "d90: a name for this model in the result tables"),
    OPT("layers", 'i', layers, 1, INT_MAX, "transformer blocks"),
    OPT("width", 'i', width, 1, INT_MAX, "channels"),
    OPT("heads", 'i', heads, 1, INT_MAX, "attention heads"),
    OPT("ctx", 'i', ctx, 1, INT_MAX, "context length in characters"),
    OPT("batch", 'i', batch, 1, INT_MAX, "pretrain: sequences per step"),
    OPT("steps", 'i', steps, 0, MAX_STEPS, "pretrain: optimizer steps"),
    OPT("ckpt-every", 'i', ckpt_every, 1, MAX_STEPS, "pretrain: checkpoint interval in steps"),
    OPT("val-windows", 'i', val_windows, 1, INT_MAX,
        "pretrain: validation windows of ctx+1 tokens"),
    OPT("ft-batch", 'i', ft_batch, 1, INT_MAX, "fine-tuning: entries per step"),
    OPT("ft-steps", 'i', ft_steps, 1, MAX_STEPS,
        "fine-tuning: steps per run (baseline and trials)"),
    OPT("per-class", 'i', per_class, 0, INT_MAX, "entries per class (0 = smallest class)"),
    OPT("eval-train-max", 'i', eval_train_max, 1, INT_MAX,
        "training entries scored for train accuracy"),
    OPT("d", 'i', d, 1, INT_MAX, "finetune: subspace dimension"),
    OPT("lr", 'd', lr, 0, HUGE_VAL, "pretrain: peak Adam learning rate (cosine schedule)"),
    OPT("ft-lr", 'd', ft_lr, 0, HUGE_VAL, "full fine-tuning Adam learning rate"),
    OPT("sub-lr", 'd', sub_lr, 0, HUGE_VAL, "finetune: subspace Adam learning rate"),
    OPT("cls-test-fraction", 'd', cls_test_fraction, 0, 1, "fraction of each class held out"),
    OPT("lm-val-fraction", 'd', lm_val_fraction, 0, 1, "fraction of LM entries for validation"),
    OPT("seed", 'l', seed, 0, MAX_SEED, "initialisation, batches and projections"),
    OPT("split-seed", 'l', split_seed, 0, MAX_SEED, "corpus splits (stored in checkpoints)"),
};

static void usage(FILE *f)
{
    fprintf(f, "usage: tinylm pretrain|d90|finetune [--flag value ...]\n");
    for (size_t i = 0; i < sizeof opt_table / sizeof opt_table[0]; i++)
        fprintf(f, "  --%-18s %s\n", opt_table[i].name, opt_table[i].help);
}

/* A whole number in [min, max]: digits only, since strtoll would skip leading blanks and
 * take a sign, and (int) of what it returns wraps 4294967299 round to 3. */
static int parse_int(const char *v, long long min, long long max, long long *x)
{
    char *end = NULL;
    if (v[0] < '0' || v[0] > '9')
        return -1;
    errno = 0;
    *x = strtoll(v, &end, 10);
    return *end != '\0' || errno == ERANGE || *x < min || *x > max ? -1 : 0;
}

/* A finite number strictly between min and max, again without leading blanks or "nan". */
static int parse_double(const char *v, double min, double max, double *x)
{
    char *end = NULL;
    if ((v[0] < '0' || v[0] > '9') && v[0] != '.')
        return -1;
    errno = 0;
    *x = strtod(v, &end);
    return *end != '\0' || errno == ERANGE || !isfinite(*x) || !(*x > min && *x < max) ? -1 : 0;
}

/* Every option's value is checked here, before any file is read: a bad one is refused with
 * its name and text (main exits with status 2, as for other usage errors). */
static int parse_opts(opts *o, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const opt_spec *spec = NULL;
        if (strncmp(a, "--", 2) == 0)
            for (size_t k = 0; k < sizeof opt_table / sizeof opt_table[0]; k++)
                if (strcmp(a + 2, opt_table[k].name) == 0)
                    spec = &opt_table[k];
        if (!spec) {
            fprintf(stderr, "tinylm: unknown flag: %s\n", a);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "tinylm: --%s needs a value\n", spec->name);
            return -1;
        }
        const char *v = argv[++i];
        void *field = (char *)o + spec->offset;
        long long x = 0;
        int bad = 0;
        switch (spec->type) {
        case 's': *(const char **)field = v; break;
        case 'd': bad = parse_double(v, spec->min, spec->max, (double *)field); break;
        default: bad = parse_int(v, (long long)spec->min, (long long)spec->max, &x); break;
        }
        if (spec->type == 'i')
            *(int *)field = (int)x; /* within [min, max] unless bad */
        else if (spec->type == 'l')
            *(long long *)field = x;
        if (bad && spec->type == 'd' && isinf(spec->max))
            fprintf(stderr, "tinylm: bad value for --%s: '%s' (need a number > %g)\n",
                    spec->name, v, spec->min);
        else if (bad && spec->type == 'd')
            fprintf(stderr, "tinylm: bad value for --%s: '%s' (need a number > %g and < %g)\n",
                    spec->name, v, spec->min, spec->max);
        else if (bad)
            fprintf(stderr, "tinylm: bad value for --%s: '%s' (need a whole number from %.0f "
                            "to %.0f)\n", spec->name, v, spec->min, spec->max);
        if (bad)
            return -1;
    }
    return 0;
}

/* Split "a,b,c" into up to max items (the string is copied into buf). */
static size_t split_list(const char *list, char *buf, size_t buflen, char **items, size_t max)
{
    snprintf(buf, buflen, "%s", list);
    size_t n = 0;
    for (char *tok = strtok(buf, ","); tok && n < max; tok = strtok(NULL, ","))
        items[n++] = tok;
    return n;
}

/* Split a comma-separated number list strictly: -1 for an empty list or item ("5,,7",
 * "5,"), more than max items, or a list too long for buf; split_list would drop those. */
static int split_strict(const char *list, char *buf, size_t buflen, char **items, size_t max,
                        size_t *n)
{
    *n = 0;
    size_t len = strlen(list);
    if (len >= buflen)
        return -1;
    memcpy(buf, list, len + 1);
    for (char *p = buf;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (*p == '\0' || *n == max)
            return -1;
        items[(*n)++] = p;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* --d-list and --lrs into o->ds and o->lr_list, before any work: parsed at the search they
 * were found bad only after the baseline fine-tuning, and "0.03x" was taken as 0.03. */
static int parse_lists(opts *o)
{
    char buf[1024], *items[MAX_DS];
    long long x = 0;
    int bad = split_strict(o->d_list, buf, sizeof buf, items, MAX_DS, &o->n_ds);
    for (size_t i = 0; !bad && i < o->n_ds; i++) {
        bad = parse_int(items[i], 1, INT_MAX, &x);
        o->ds[i] = (size_t)x;
    }
    if (bad) {
        fprintf(stderr, "tinylm: bad value for --d-list: '%s' (need 1 to %d comma-separated "
                        "whole numbers from 1 to %d)\n", o->d_list, MAX_DS, INT_MAX);
        return -1;
    }
    bad = split_strict(o->lrs, buf, sizeof buf, items, MAX_LRS, &o->n_lrs);
    for (size_t i = 0; !bad && i < o->n_lrs; i++)
        bad = parse_double(items[i], 0, HUGE_VAL, &o->lr_list[i]);
    if (bad) {
        fprintf(stderr, "tinylm: bad value for --lrs: '%s' (need 1 to %d comma-separated "
                        "numbers > 0)\n", o->lrs, MAX_LRS);
        return -1;
    }
    return 0;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

/* ---- checkpoints: the model body and what it was trained on --------------------------- */

#define CKPT_MAGIC "TLMCKPT1"

typedef struct ckpt_header {
    int32_t layers, width, heads, ctx;
    uint64_t step, split_seed, n_floats;
    double val_loss;
    char classes[256];
} ckpt_header;

static uint64_t fnv_bytes(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Written to a temporary name then renamed, so a reader never sees half a checkpoint. */
static int ckpt_save(const char *path, const ckpt_header *h, const float *body)
{
    char tmp[4200];
    int len = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (len < 0 || (size_t)len >= sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return -1;
    uint64_t hash = fnv_bytes(body, h->n_floats * sizeof(float));
    int ok = fwrite(CKPT_MAGIC, 8, 1, f) == 1 && fwrite(h, sizeof *h, 1, f) == 1 &&
             fwrite(body, sizeof(float), h->n_floats, f) == h->n_floats &&
             fwrite(&hash, sizeof hash, 1, f) == 1;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

/* Reads the header, and the body into *body (malloc'd) if body is not NULL. */
static int ckpt_load(const char *path, ckpt_header *h, float **body)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "tinylm: cannot open checkpoint %s: %s\n", path, strerror(errno));
        return -1;
    }
    char magic[8];
    int ok = fread(magic, 8, 1, f) == 1 && memcmp(magic, CKPT_MAGIC, 8) == 0 &&
             fread(h, sizeof *h, 1, f) == 1 && h->n_floats > 0 && h->n_floats < ((uint64_t)1 << 32);
    h->classes[sizeof h->classes - 1] = '\0';
    float *data = NULL;
    if (ok && body) {
        data = malloc(h->n_floats * sizeof *data);
        uint64_t hash = 0;
        ok = data && fread(data, sizeof *data, h->n_floats, f) == h->n_floats &&
             fread(&hash, sizeof hash, 1, f) == 1 &&
             hash == fnv_bytes(data, h->n_floats * sizeof *data);
    }
    fclose(f);
    if (!ok) {
        fprintf(stderr, "tinylm: %s is not a valid tinylm checkpoint (truncated or corrupt)\n",
                path);
        free(data);
        return -1;
    }
    if (body)
        *body = data;
    return 0;
}

/* ---- data ------------------------------------------------------------------------------- */

static int load_splits(const opts *o, tlm_corpus *c, tlm_splits *sp, const char *classes,
                       uint64_t split_seed, int T, size_t *n_classes)
{
    char err[512] = "", buf[512];
    char *names[16];
    size_t K = split_list(classes, buf, sizeof buf, names, 16);
    tlm_corpus_init(c);
    size_t skipped = 0;
    int rc = tlm_corpus_add_dir(c, o->corpus_dir, &skipped, err, sizeof err);
    if (rc != TLM_OK) {
        fprintf(stderr, "tinylm: reading %s: %s\n", o->corpus_dir, err);
        return -1;
    }
    tlm_split_config sc = {(const char *const *)names, K, (size_t)o->per_class,
                           o->cls_test_fraction, o->lm_val_fraction, T, split_seed};
    rc = tlm_make_splits(c, &sc, sp, err, sizeof err);
    if (rc != TLM_OK) {
        fprintf(stderr, "tinylm: splits: %s\n", err);
        tlm_corpus_free(c);
        return -1;
    }
    fprintf(stderr,
            "corpus: %zu entries from %zu files (%zu skipped); LM train %zu entries / %zu "
            "tokens, LM validation %zu / %zu, %zu duplicates dropped; classification %zu "
            "classes x %zu (train %zu, test %zu)\n",
            c->n_entries, c->n_sources, skipped, sp->lm_train_entries, sp->n_lm_train,
            sp->lm_val_entries, sp->n_lm_val, sp->duplicates, K, sp->per_class, sp->cls_train.n,
            sp->cls_test.n);
    *n_classes = K;
    return 0;
}

/* ---- pre-training ------------------------------------------------------------------ */

static int check_lib(int rc, const char *what)
{
    if (rc != INTDIM_OK)
        fprintf(stderr, "tinylm: %s: %s (%s)\n", what, intdim_strerror(rc), intdim_last_error());
    return rc;
}

static int cmd_pretrain(const opts *o)
{
    tlm_config cfg = {o->layers, o->width, o->heads, o->ctx, 1};
    char err[256];
    if (tlm_config_check(&cfg, err, sizeof err) != 0 || o->steps < 0 || o->ckpt_every < 1 ||
        o->batch < 1 || o->val_windows < 1) {
        fprintf(stderr, "tinylm: bad model or training flags: %s\n",
                tlm_config_check(&cfg, err, sizeof err) ? err : "steps/ckpt-every/batch");
        return 2;
    }
    tlm_corpus corpus;
    tlm_splits sp;
    size_t K;
    if (load_splits(o, &corpus, &sp, o->classes, (uint64_t)o->split_seed, o->ctx, &K) != 0)
        return 1;
    tlm_model m;
    if (tlm_model_init(&m, &cfg, o->batch) != 0) {
        fprintf(stderr, "tinylm: out of memory for the model\n");
        return 1;
    }
    size_t D = m.lay.total_size;
    float *params = malloc(D * sizeof *params);
    tlm_lm_host h;
    int host_rc = tlm_lm_host_init(&h, &m, &sp, o->batch, o->ctx, (uint64_t)o->seed);
    intdim_proj *p = NULL;
    intdim_trainer *t = NULL;
    int rc = 1;
    char path[4200];
    FILE *tsv = NULL;
    if (!params || host_rc != 0 || mkdir_p(o->out) != 0) {
        fprintf(stderr, "tinylm: out of memory or cannot create %s\n", o->out);
        goto done;
    }
    tlm_init_params(&cfg, &m.lay, params, (uint64_t)o->seed);
    /* Pre-training is ordinary training: the IDENTITY projection (d = D) through the same
     * trainer the subspace runs use. */
    if (check_lib(intdim_proj_create(&p, INTDIM_PROJ_IDENTITY, D, D, 0), "identity projection") ||
        check_lib(intdim_trainer_create(&t, p, params, NULL, NULL, 0, tlm_lm_grad, &h), "trainer"))
        goto done;
    int warmup = o->steps / 20;
    if (check_lib(intdim_trainer_set(t, INTDIM_TRAIN_OPTIMIZER, INTDIM_OPT_ADAM), "optimizer") ||
        check_lib(intdim_trainer_set(t, INTDIM_TRAIN_LR, o->lr), "lr") ||
        (o->steps > 0 &&
         (check_lib(intdim_trainer_set(t, INTDIM_TRAIN_SCHEDULE, INTDIM_SCHED_COSINE), "schedule") ||
          check_lib(intdim_trainer_set(t, INTDIM_TRAIN_TOTAL_STEPS, o->steps), "total steps") ||
          check_lib(intdim_trainer_set(t, INTDIM_TRAIN_WARMUP_STEPS, warmup), "warmup") ||
          check_lib(intdim_trainer_set(t, INTDIM_TRAIN_MIN_LR_RATIO, 0.1), "min lr"))) ||
        check_lib(intdim_trainer_set(t, INTDIM_TRAIN_CLIP_NORM, 1.0), "clip"))
        goto done;
    snprintf(path, sizeof path, "%s/pretrain.tsv", o->out);
    tsv = fopen(path, "w");
    if (!tsv) {
        fprintf(stderr, "tinylm: cannot write %s\n", path);
        goto done;
    }
    fprintf(tsv, "# layers=%d width=%d heads=%d ctx=%d D_body=%zu batch=%d lr=%g seed=%lld\n",
            o->layers, o->width, o->heads, o->ctx, m.lay.body_size, o->batch, o->lr, o->seed);
    fprintf(tsv, "step\ttrain_loss\tval_loss\tseconds\n");
    fprintf(stderr, "pretrain: D = %zu (body %zu), %d steps of %d x %d tokens\n", D,
            m.lay.body_size, o->steps, o->batch, o->ctx);
    double t0 = now_seconds();
    for (int step = 0;; step += o->ckpt_every) {
        if (step > o->steps)
            step = o->steps;
        if (step > 0) {
            int chunk = step - (int)intdim_trainer_steps_done(t);
            h.loss_sum = 0.0;
            h.loss_count = 0;
            if (check_lib(intdim_trainer_run(t, (uint64_t)chunk, NULL, NULL, NULL, NULL, NULL),
                          "pre-training") ||
                check_lib(intdim_trainer_sync(t), "sync"))
                goto done;
        }
        double val = tlm_lm_val_loss(&h, params, o->val_windows);
        double train = h.loss_count ? h.loss_sum / (double)h.loss_count : NAN;
        ckpt_header hd;
        memset(&hd, 0, sizeof hd);
        hd.layers = o->layers;
        hd.width = o->width;
        hd.heads = o->heads;
        hd.ctx = o->ctx;
        hd.step = (uint64_t)step;
        hd.split_seed = (uint64_t)o->split_seed;
        hd.n_floats = m.lay.body_size;
        hd.val_loss = val;
        snprintf(hd.classes, sizeof hd.classes, "%s", o->classes);
        snprintf(path, sizeof path, "%s/ckpt_%06d.bin", o->out, step);
        if (ckpt_save(path, &hd, params) != 0) {
            fprintf(stderr, "tinylm: cannot write %s\n", path);
            goto done;
        }
        double secs = now_seconds() - t0;
        fprintf(tsv, "%d\t%.4f\t%.4f\t%.1f\n", step, train, val, secs);
        fflush(tsv);
        fprintf(stderr, "step %6d  train loss %.4f  validation loss %.4f  (%.0f s) -> %s\n", step,
                train, val, secs, path);
        if (step == o->steps)
            break;
    }
    rc = 0;
done:
    if (tsv)
        fclose(tsv);
    intdim_trainer_destroy(t);
    intdim_proj_destroy(p);
    free(params);
    tlm_lm_host_free(&h);
    tlm_model_free(&m);
    tlm_splits_free(&sp);
    tlm_corpus_free(&corpus);
    return rc;
}

/* ---- fine-tuning --------------------------------------------------------------------- */

/* Everything a fine-tuning command needs, built from a checkpoint. */
typedef struct ft_setup {
    ckpt_header hd;
    tlm_config cfg;
    tlm_corpus corpus;
    tlm_splits sp;
    tlm_model m;
    float *theta0, *theta;
    size_t D;
    size_t group_sizes[TLM_MAX_TENSORS];
    tlm_cls_host host;
} ft_setup;

static void ft_free(ft_setup *s)
{
    free(s->theta0);
    free(s->theta);
    tlm_cls_host_free(&s->host);
    tlm_model_free(&s->m);
    tlm_splits_free(&s->sp);
    tlm_corpus_free(&s->corpus);
}

static int ft_init(ft_setup *s, const opts *o)
{
    memset(s, 0, sizeof *s);
    float *body = NULL;
    if (!o->ckpt) {
        fprintf(stderr, "tinylm: --ckpt is required\n");
        return -1;
    }
    if (ckpt_load(o->ckpt, &s->hd, &body) != 0)
        return -1;
    size_t K;
    /* The classes and split seed come from the checkpoint: pre-training excluded exactly
     * these classification entries. */
    if (load_splits(o, &s->corpus, &s->sp, s->hd.classes, s->hd.split_seed, s->hd.ctx, &K) != 0) {
        free(body);
        return -1;
    }
    s->cfg = (tlm_config){s->hd.layers, s->hd.width, s->hd.heads, s->hd.ctx, (int)K};
    int eval_batch = 32;
    int max_batch = o->ft_batch > eval_batch ? o->ft_batch : eval_batch;
    if (o->ft_batch < 1 || tlm_model_init(&s->m, &s->cfg, max_batch) != 0 ||
        s->m.lay.body_size != s->hd.n_floats) {
        fprintf(stderr, "tinylm: checkpoint %s does not match its model configuration\n", o->ckpt);
        free(body);
        return -1;
    }
    s->D = s->m.lay.total_size;
    s->theta0 = malloc(s->D * sizeof(float));
    s->theta = malloc(s->D * sizeof(float));
    int host_rc = tlm_cls_host_init(&s->host, &s->m, &s->sp.cls_train, &s->sp.cls_test,
                                    o->ft_batch, eval_batch, (size_t)o->eval_train_max,
                                    (uint64_t)o->seed);
    if (!s->theta0 || !s->theta || host_rc != 0) {
        free(body);
        fprintf(stderr, "tinylm: out of memory\n");
        return -1;
    }
    /* theta0 = pre-trained body + a fresh classifier head (the same head for every run). */
    memcpy(s->theta0, body, s->hd.n_floats * sizeof(float));
    free(body);
    tlm_init_head(&s->cfg, &s->m.lay, s->theta0, (uint64_t)o->seed);
    memcpy(s->theta, s->theta0, s->D * sizeof(float));
    /* SAID: one scale per parameter tensor, as in Aghajanyan et al. */
    for (size_t i = 0; i < s->m.lay.n_tensors; i++)
        s->group_sizes[i] = s->m.lay.tensors[i].size;
    return 0;
}

/* Fine-tune once (full: IDENTITY with d = D; said/did: Fastfood), from theta0. */
static int finetune_once(ft_setup *s, const opts *o, int kind, int said, size_t d, double lr,
                         double *train_acc, double *test_acc)
{
    intdim_proj *p = NULL;
    intdim_trainer *t = NULL;
    int rc;
    if (kind == INTDIM_PROJ_IDENTITY)
        rc = intdim_proj_create(&p, INTDIM_PROJ_IDENTITY, s->D, s->D, 0);
    else if (said)
        rc = intdim_proj_create_said(&p, kind, s->D, d, s->m.lay.n_tensors, s->group_sizes,
                                     (uint64_t)o->seed);
    else
        rc = intdim_proj_create(&p, kind, s->D, d, (uint64_t)o->seed);
    if (check_lib(rc, "projection") ||
        check_lib(intdim_trainer_create(&t, p, s->theta, s->theta0, NULL, 0, tlm_cls_grad, &s->host),
                  "trainer") ||
        check_lib(intdim_trainer_set(t, INTDIM_TRAIN_OPTIMIZER, INTDIM_OPT_ADAM), "optimizer") ||
        check_lib(intdim_trainer_set(t, INTDIM_TRAIN_LR, lr), "lr") ||
        check_lib(intdim_trainer_run(t, (uint64_t)o->ft_steps, NULL, NULL, NULL, NULL, NULL),
                  "fine-tuning") ||
        check_lib(intdim_trainer_evaluate(t, tlm_cls_eval_train, &s->host, train_acc), "train acc") ||
        check_lib(intdim_trainer_evaluate(t, tlm_cls_eval_test, &s->host, test_acc), "test acc"))
        rc = -1;
    else
        rc = 0;
    intdim_trainer_destroy(t);
    intdim_proj_destroy(p);
    return rc;
}

static int cmd_finetune(const opts *o)
{
    /* --kind first: a usage error is reported before the checkpoint and corpus are read. */
    int full = strcmp(o->kind, "full") == 0, said = strcmp(o->kind, "said") == 0;
    if (!full && !said && strcmp(o->kind, "did") != 0) {
        fprintf(stderr, "tinylm: --kind must be full, said or did\n");
        return 2;
    }
    ft_setup s;
    if (ft_init(&s, o) != 0) {
        ft_free(&s);
        return 1;
    }
    double tr = NAN, te = NAN, t0 = now_seconds();
    int rc = finetune_once(&s, o, full ? INTDIM_PROJ_IDENTITY : INTDIM_PROJ_FASTFOOD, said,
                           full ? s.D : (size_t)o->d, full ? o->ft_lr : o->sub_lr, &tr, &te);
    if (rc == 0)
        printf("%s D=%zu d=%zu lr=%g steps=%d: train acc %.4f test acc %.4f (majority %.4f) "
               "%.1f s\n",
               o->kind, s.D, full ? s.D : (size_t)o->d, full ? o->ft_lr : o->sub_lr, o->ft_steps,
               tr, te, tlm_majority_fraction(&s.sp.cls_test, s.cfg.n_classes), now_seconds() - t0);
    ft_free(&s);
    return rc == 0 ? 0 : 1;
}

/* ---- d90 ------------------------------------------------------------------------------ */

typedef struct trial_log {
    FILE *f;
    const char *label, *method;
    uint64_t step;
    tlm_cls_host *host;
} trial_log;

static int log_trial(void *user, size_t done, size_t total, size_t d, double lr, double eval,
                     double seconds_left)
{
    trial_log *tl = user;
    fprintf(stderr, "  [%s %s step %llu] trial %zu/%zu: d=%zu lr=%g train %.4f test %.4f "
                    "(about %.0f s left)\n",
            tl->label, tl->method, (unsigned long long)tl->step, done, total, d, lr,
            tl->host->last_train_acc, eval, seconds_left);
    fprintf(tl->f, "%s\t%llu\t%s\t%zu\t%g\t%.4f\t%.4f\n", tl->label,
            (unsigned long long)tl->step, tl->method, d, lr, tl->host->last_train_acc, eval);
    fflush(tl->f);
    return 0;
}

static FILE *open_table(const char *dir, const char *name, const char *header)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    int fresh = stat(path, &st) != 0 || st.st_size == 0;
    FILE *f = fopen(path, "a");
    if (f && fresh) {
        /* Flushed at once, so a second process appending to the same table sees a
         * non-empty file and does not write its own header. */
        fprintf(f, "%s\n", header);
        fflush(f);
    }
    return f;
}

/* 64-bit FNV-1a of n bytes, continuing from h. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t hash_cls_set(uint64_t h, const tlm_cls_set *c)
{
    h = fnv1a(h, &c->n, sizeof c->n);
    h = fnv1a(h, c->tokens, c->n * (size_t)c->T * sizeof(int));
    h = fnv1a(h, c->lengths, c->n * sizeof(int));
    return fnv1a(h, c->labels, c->n * sizeof(int));
}

/* The search label: a fingerprint of what the trials train on (theta0, the classification
 * data, the minibatch sequence), so a journal left by another checkpoint, corpus or split
 * is refused (INTDIM_EMISMATCH) instead of resumed with the wrong trials. */
static void task_label(const ft_setup *s, const opts *o, char *out, size_t cap)
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv1a(h, s->theta0, s->D * sizeof(float));
    h = hash_cls_set(h, &s->sp.cls_train);
    h = hash_cls_set(h, &s->sp.cls_test);
    long long settings[3] = {o->ft_batch, o->eval_train_max, o->seed};
    h = fnv1a(h, settings, sizeof settings);
    snprintf(out, cap, "tinylm:task=%016llx", (unsigned long long)h);
}

/* One d90 search over Fastfood (SAID or DID) with the given baseline. */
static int run_search(ft_setup *s, const opts *o, int said, double baseline, const char *label,
                      FILE *trials, FILE *results, double base_train)
{
    char buf[1024];
    const char *method = said ? "said" : "did";
    intdim_search *srch = NULL;
    int rc = check_lib(intdim_search_create(&srch, s->D), "search");
    if (rc == 0)
        rc = check_lib(intdim_search_set(srch, INTDIM_SEARCH_STRATEGY, INTDIM_STRATEGY_GRID),
                       "strategy") ||
             check_lib(intdim_search_set(srch, INTDIM_SEARCH_BASELINE, baseline), "baseline") ||
             check_lib(intdim_search_set(srch, INTDIM_SEARCH_KIND, INTDIM_PROJ_FASTFOOD), "kind") ||
             check_lib(intdim_search_set(srch, INTDIM_SEARCH_SAID, said), "said") ||
             check_lib(intdim_search_set(srch, INTDIM_SEARCH_SEEDS, 1), "seeds") ||
             check_lib(intdim_search_set(srch, INTDIM_SEARCH_BASE_SEED, (double)o->seed), "seed") ||
             check_lib(intdim_search_set(srch, INTDIM_SEARCH_STEPS, o->ft_steps), "steps") ||
             check_lib(intdim_search_set_d_list(srch, o->ds, o->n_ds), "d list") ||
             check_lib(intdim_search_set_lrs(srch, o->lr_list, o->n_lrs), "lrs") ||
             check_lib(intdim_search_set_groups(srch, s->group_sizes, s->m.lay.n_tensors),
                       "groups") ||
             check_lib(intdim_search_set_train_param(srch, INTDIM_TRAIN_OPTIMIZER, INTDIM_OPT_ADAM),
                       "optimizer");
    if (rc == 0) {
        task_label(s, o, buf, sizeof buf);
        rc = check_lib(intdim_search_set_label(srch, buf), "label");
    }
    if (rc == 0) {
        snprintf(buf, sizeof buf, "%s/journal_%s_step%06llu_%s.tsv", o->results_dir, label,
                 (unsigned long long)s->hd.step, method);
        rc = check_lib(intdim_search_open_journal(srch, buf), "journal");
    }
    trial_log tl = {trials, label, method, s->hd.step, &s->host};
    if (rc == 0)
        rc = check_lib(intdim_search_run(srch, s->theta, s->theta0, tlm_cls_grad, tlm_cls_eval_train,
                                         tlm_cls_eval_test, &s->host, log_trial, &tl),
                       "search");
    size_t d90 = 0;
    int reached = 0;
    if (rc == 0)
        rc = check_lib(intdim_search_result(srch, &d90, &reached, NULL, NULL, NULL), "result");
    if (rc == 0) {
        printf("%-10s step %6llu %-4s  baseline %.4f  target %.4f  d90 %s", label,
               (unsigned long long)s->hd.step, method, baseline, 0.9 * baseline,
               reached ? "" : "not reached (> largest d)");
        if (reached)
            printf("%zu", d90);
        printf("\n   d:");
        size_t np = intdim_search_n_points(srch);
        for (size_t i = 0; i < np; i++) {
            size_t d;
            double best_lr, mean;
            intdim_search_point(srch, i, &d, &best_lr, &mean, NULL, NULL, NULL);
            printf(" %zu:%.3f", d, mean);
        }
        printf("\n");
        fflush(stdout);
        fprintf(results, "%s\t%llu\t%d\t%d\t%zu\t%.4f\t%s\t%.4f\t%.4f\t%zu\t%d\n", label,
                (unsigned long long)s->hd.step, s->hd.layers, s->hd.width, s->D, s->hd.val_loss,
                method, baseline, base_train, reached ? d90 : 0, reached);
        fflush(results);
    }
    intdim_search_destroy(srch);
    return rc;
}

static int cmd_d90(const opts *o)
{
    int want_said = strcmp(o->method, "both") == 0 || strcmp(o->method, "said") == 0;
    int want_did = strcmp(o->method, "both") == 0 || strcmp(o->method, "did") == 0;
    if (!want_said && !want_did) {
        fprintf(stderr, "tinylm: --method must be both, said or did\n");
        return 2;
    }
    ft_setup s;
    if (ft_init(&s, o) != 0) {
        ft_free(&s);
        return 1;
    }
    char label[64];
    snprintf(label, sizeof label, "%s", o->label[0] ? o->label : "model");
    FILE *trials = NULL, *results = NULL;
    int rc = 1;
    if (mkdir_p(o->results_dir) != 0 ||
        !(trials = open_table(o->results_dir, "trials.tsv",
                              "label\tpretrain_step\tmethod\td\tlr\ttrain_acc\ttest_acc")) ||
        !(results = open_table(o->results_dir, "d90.tsv",
                               "label\tpretrain_step\tlayers\twidth\tD\tval_loss\tmethod\t"
                               "baseline_acc\tbaseline_train_acc\td90\treached"))) {
        fprintf(stderr, "tinylm: cannot write into %s\n", o->results_dir);
        goto done;
    }
    double t0 = now_seconds(), base_train = NAN, baseline = NAN;
    /* The baseline: full fine-tuning (IDENTITY, d = D) at its own learning rate, shared by
     * the SAID and DID searches so they aim at the same target. */
    if (finetune_once(&s, o, INTDIM_PROJ_IDENTITY, 0, s.D, o->ft_lr, &base_train, &baseline) != 0)
        goto done;
    fprintf(stderr, "  [%s step %llu] full fine-tuning (D = %zu): train %.4f test %.4f, "
                    "majority class %.4f (%.0f s)\n",
            label, (unsigned long long)s.hd.step, s.D, base_train, baseline,
            tlm_majority_fraction(&s.sp.cls_test, s.cfg.n_classes), now_seconds() - t0);
    fprintf(trials, "%s\t%llu\tfull\t%zu\t%g\t%.4f\t%.4f\n", label,
            (unsigned long long)s.hd.step, s.D, o->ft_lr, base_train, baseline);
    fflush(trials);
    if ((want_said && run_search(&s, o, 1, baseline, label, trials, results, base_train) != 0) ||
        (want_did && run_search(&s, o, 0, baseline, label, trials, results, base_train) != 0))
        goto done;
    fprintf(stderr, "  [%s step %llu] done in %.0f s\n", label, (unsigned long long)s.hd.step,
            now_seconds() - t0);
    rc = 0;
done:
    if (trials)
        fclose(trials);
    if (results)
        fclose(results);
    ft_free(&s);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    opts o;
    opts_default(&o);
    if (parse_opts(&o, argc - 2, argv + 2) != 0 || parse_lists(&o) != 0) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "pretrain") == 0)
        return cmd_pretrain(&o);
    if (strcmp(argv[1], "d90") == 0)
        return cmd_d90(&o);
    if (strcmp(argv[1], "finetune") == 0)
        return cmd_finetune(&o);
    fprintf(stderr, "tinylm: unknown command %s\n", argv[1]);
    usage(stderr);
    return 2;
}
