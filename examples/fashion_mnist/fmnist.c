/*
 * fmnist: intrinsic dimension of a 784-200-200-10 MLP on Fashion-MNIST through libintdim.
 *
 *   fmnist --quick                 small honest run (minutes): baseline, d90 of every method
 *   fmnist --full [--out docs]     every experiment; writes OUT/results.md and OUT/img/
 *   fmnist methods|pretrain|width|speed [options]   one experiment, markdown on stdout
 *
 * Data splits (never mixed): train = first 50,000 training images, val = last 10,000
 * training images (every choice: lr, d90), test = the 10,000 t10k images (reported only).
 * Run `fmnist --help` for the options.
 */
#include <errno.h>
#include <intdim.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "data.h"
#include "exper.h"
#include "idx.h"
#include "mlp.h"

/* OpenBLAS's thread control when the BLAS is OpenBLAS; weak, so NULL with BLIS. */
#if defined(__GNUC__)
extern void openblas_set_num_threads(int num_threads) __attribute__((weak));
#endif

#define MAX_LIST 32
#define TRAIN_SPLIT 50000 /* the rest of the 60,000 training images is the validation split */

/* Everything that defines a run; printed with the results. */
typedef struct {
    const char *mode;
    const char *data_dir;
    const char *out_dir;   /* --full: where results.md and img/ go; NULL = stdout only */
    size_t n_pool;         /* training examples used (first of the train split) */
    size_t n_val;          /* validation examples used */
    size_t n_train_eval;   /* training examples whose accuracy gives acc_train */
    size_t batch;
    uint64_t steps;        /* optimizer steps per trial (baseline and subspace alike) */
    size_t n_seeds;
    uint64_t base_seed;
    uint64_t init_seed;    /* theta0 */
    size_t hidden;         /* hidden width of the main network */
    double full_lrs[MAX_LIST];
    size_t n_full_lrs;
    double sub_lrs[MAX_LIST];
    size_t n_sub_lrs;
    size_t ds[MAX_LIST];
    size_t n_ds;
    size_t dense_max_d;    /* dense trials only up to this d (D x d floats of memory) */
    int methods[4];        /* dense, sparse, fastfood, said-fastfood: 1 = run */
    uint64_t marks[MAX_LIST]; /* pretrain: checkpoints (steps of pre-training on task A) */
    int pre_task;          /* task A of pretrain and width: PRE_TASK_CLASSES04 or _ROTATION */
    size_t n_marks;
    size_t pre_ds[MAX_LIST];  /* d list for the transfer experiments */
    size_t n_pre_ds;
    size_t widths[MAX_LIST];
    size_t n_widths;
    uint64_t width_pre_steps; /* pre-training steps of the width experiment */
    uint64_t speed_steps;
    size_t speed_repeats;
    size_t proj_threads;   /* threads per projection; 1 by default (see exper.c) */
    size_t blas_threads;   /* OpenBLAS threads; 1 by default, 0 = leave OpenBLAS's choice */
} protocol;

/* Task A, the pre-training task of the transfer experiments. */
enum {
    PRE_TASK_CLASSES04 = 0, /* classify classes 0-4 (5-way); the default */
    PRE_TASK_ROTATION = 1   /* self-supervised: which of 4 rotations, pool images of all classes */
};

typedef struct {
    fm_set train_all, test_all; /* as loaded: 60,000 and 10,000 */
    fm_set train_split, val_split;
} dataset;

/* Markdown goes to stdout and, with --out, to the results file too. */
typedef struct {
    FILE *md;
} report;

static report rep = {NULL};

static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (rep.md != NULL) {
        va_start(ap, fmt);
        vfprintf(rep.md, fmt, ap);
        va_end(ap);
    }
    fflush(stdout);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- protocol presets ---------------------------------------------------------------- */

static void preset_common(protocol *p)
{
    memset(p, 0, sizeof *p);
    p->data_dir = FM_DEFAULT_DIR;
    p->batch = 128;
    p->n_seeds = 1;
    p->base_seed = 2018;
    p->init_seed = 1;
    p->hidden = 200;
    p->methods[0] = p->methods[1] = p->methods[2] = p->methods[3] = 1;
    p->speed_steps = 300;
    p->speed_repeats = 3;
    p->proj_threads = 1;
    p->blas_threads = 1;
}

/* Small but honest: the whole command stays within a few minutes on 2 shared cores. */
static void preset_quick(protocol *p)
{
    preset_common(p);
    p->mode = "quick";
    p->n_pool = 10000;
    p->n_val = 5000;
    p->n_train_eval = 2000;
    p->steps = 500;
    static const double full_lrs[] = {1e-3, 3e-3};
    static const double sub_lrs[] = {3e-2, 1e-1};
    static const size_t ds[] = {100, 300, 1000, 3000};
    memcpy(p->full_lrs, full_lrs, sizeof full_lrs);
    p->n_full_lrs = 2;
    memcpy(p->sub_lrs, sub_lrs, sizeof sub_lrs);
    p->n_sub_lrs = 2;
    memcpy(p->ds, ds, sizeof ds);
    p->n_ds = 4;
    /* Dense keeps D x d floats and streams them twice a step: d = 300 alone would cost
     * more than the rest of quick mode. */
    p->dense_max_d = 100;
    static const uint64_t marks[] = {0, 300, 1000};
    static const size_t pre_ds[] = {30, 100, 300, 1000, 3000};
    static const size_t widths[] = {50, 200, 800};
    memcpy(p->marks, marks, sizeof marks);
    p->n_marks = 3;
    memcpy(p->pre_ds, pre_ds, sizeof pre_ds);
    p->n_pre_ds = 5;
    memcpy(p->widths, widths, sizeof widths);
    p->n_widths = 3;
    p->width_pre_steps = 500;
}

/* The protocol of docs/results.md: what fits in about 20 CPU-minutes on the 2-core
 * machine it was run on. Longer runs override --steps, --seeds, --ds (see the README). */
static void preset_full(protocol *p)
{
    preset_common(p);
    p->mode = "full";
    p->n_pool = TRAIN_SPLIT;
    p->n_val = 10000;
    p->n_train_eval = 10000;
    p->steps = 1000;
    p->n_seeds = 1;
    static const double full_lrs[] = {1e-3, 3e-3};
    static const double sub_lrs[] = {3e-2, 1e-1, 3e-1};
    static const size_t ds[] = {100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000};
    static const uint64_t marks[] = {0, 100, 300, 1000, 3000};
    static const size_t pre_ds[] = {30, 100, 300, 1000, 3000};
    static const size_t widths[] = {50, 100, 200, 400, 800};
    memcpy(p->full_lrs, full_lrs, sizeof full_lrs);
    p->n_full_lrs = 2;
    memcpy(p->sub_lrs, sub_lrs, sizeof sub_lrs);
    p->n_sub_lrs = 3;
    memcpy(p->ds, ds, sizeof ds);
    p->n_ds = sizeof ds / sizeof ds[0];
    p->dense_max_d = 300;
    memcpy(p->marks, marks, sizeof marks);
    p->n_marks = sizeof marks / sizeof marks[0];
    memcpy(p->pre_ds, pre_ds, sizeof pre_ds);
    p->n_pre_ds = sizeof pre_ds / sizeof pre_ds[0];
    memcpy(p->widths, widths, sizeof widths);
    p->n_widths = sizeof widths / sizeof widths[0];
    p->width_pre_steps = 1000;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fmnist --quick | --full [--out DIR] | methods | pretrain | width | speed\n"
            "              [options]\n"
            "  --quick        baseline + d90 of dense/sparse/fastfood/SAID, small protocol\n"
            "  --full         every experiment with the full protocol; with --out DIR writes\n"
            "                 DIR/results.md and DIR/img/*.png (gnuplot)\n"
            "  methods        full-training baseline and d90 of each projection\n"
            "  pretrain       d90 on classes 5-9 from checkpoints pre-trained on task A\n"
            "                 (--pre-task classes04: classes 0-4, the default; rotation: which\n"
            "                 of 0/90/180/270 degrees an image of any class is turned by)\n"
            "  width          the same at hidden widths --widths after --pre-steps pre-training\n"
            "  speed          Fastfood d=1000 trial vs the host's own full training, same steps\n"
            "options (override the preset; lists are comma-separated):\n"
            "  --protocol quick|full (preset of a single experiment; default quick)\n"
            "  --data DIR --out DIR --steps N --batch N --pool N --val N --train-eval N\n"
            "  --seeds N --seed N --init-seed N --hidden N --ds LIST --lrs LIST --full-lrs LIST\n"
            "  --dense-max-d N --methods dense,sparse,fastfood,said --marks LIST\n"
            "  --pre-ds LIST --widths LIST --pre-steps N --speed-steps N --speed-repeats N\n"
            "  --pre-task classes04|rotation (task A of pretrain and width; default classes04)\n"
            "  --proj-threads N (threads of each projection; default 1, 0 = library default)\n"
            "  --blas-threads N (OpenBLAS threads; default 1, 0 = OpenBLAS's own default)\n");
}

/* ---- option parsing ------------------------------------------------------------------- */

/* The largest values the rest of the program and the library can use. Checked here so that
 * a bad value is refused before the data is read, not after the baseline has trained. */
#define MAX_STEPS ((uint64_t)1 << 53) /* the search takes step counts as a double */
#define MAX_SEED ((uint64_t)1 << 53)  /* and its base seed (INTDIM_SEARCH_BASE_SEED) too */
#define MAX_SEEDS 10000               /* the search's limit on seeds per (d, lr) */
#define MAX_WIDTH ((uint64_t)1 << 20) /* mlp_init's limit on a layer's width */
#define MAX_BATCH 100000
#define MAX_VAL 10000                 /* the validation split: the last 10,000 images */
#define MAX_THREADS 4096              /* the library's limit on INTDIM_PROJ_THREADS */
#define MAX_REPEATS 32                /* run_speed keeps at most 32 timings of each kind */
#define LIST_CHARS 1024
#define WHY_CHARS 160

/* A whole decimal number in [min, max]. Digits only: strtoull skips leading blanks and
 * negates a '-', so " -1" would wrap to 2^64 - 1; and ERANGE, or it saturates silently. */
static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *v)
{
    if (s[0] < '0' || s[0] > '9')
        return 1;
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end != '\0' || errno == ERANGE || x < min || x > max)
        return 1;
    *v = x;
    return 0;
}

/* A positive finite number, again without leading blanks (and so without "nan", "inf"). */
static int parse_positive(const char *s, double *v)
{
    if ((s[0] < '0' || s[0] > '9') && s[0] != '.')
        return 1;
    char *end = NULL;
    errno = 0;
    double x = strtod(s, &end);
    if (*end != '\0' || errno == ERANGE || !(x > 0.0) || !isfinite(x))
        return 1;
    *v = x;
    return 0;
}

/* Split a comma-separated list into buf, in place. Refuses an empty list or item ("5,,7",
 * "5,"), more than MAX_LIST items and a list longer than buf, rather than dropping any. */
static int split_list(const char *s, char *buf, char **items, size_t *n)
{
    *n = 0;
    size_t len = strlen(s);
    if (len >= LIST_CHARS)
        return 1;
    memcpy(buf, s, len + 1);
    for (char *p = buf;;) {
        char *comma = strchr(p, ',');
        if (comma != NULL)
            *comma = '\0';
        if (*p == '\0' || *n == MAX_LIST)
            return 1;
        items[(*n)++] = p;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

/* The option helpers below parse one value and, when it is bad, say in why what it should
 * have been; parse_args prints that with the option and the value. */

static const char *range_text(char *buf, size_t n, uint64_t min, uint64_t max)
{
    if (max == UINT64_MAX || max == (uint64_t)SIZE_MAX) /* no limit; the library checks d <= D */
        snprintf(buf, n, "%llu or more", (unsigned long long)min);
    else
        snprintf(buf, n, "from %llu to %llu", (unsigned long long)min, (unsigned long long)max);
    return buf;
}

static int opt_u64(const char *s, uint64_t min, uint64_t max, uint64_t *v, char *why)
{
    if (parse_u64(s, min, max, v) == 0)
        return 0;
    char range[64];
    snprintf(why, WHY_CHARS, "a whole number %s", range_text(range, sizeof range, min, max));
    return 1;
}

static int opt_size(const char *s, uint64_t min, uint64_t max, size_t *v, char *why)
{
    uint64_t x = 0;
    if (max > (uint64_t)SIZE_MAX)
        max = (uint64_t)SIZE_MAX;
    if (opt_u64(s, min, max, &x, why))
        return 1;
    *v = (size_t)x;
    return 0;
}

static int opt_u64_list(const char *s, uint64_t min, uint64_t max, uint64_t *v, size_t *n,
                        char *why)
{
    char buf[LIST_CHARS], *items[MAX_LIST];
    int bad = split_list(s, buf, items, n);
    for (size_t i = 0; !bad && i < *n; i++)
        bad = parse_u64(items[i], min, max, &v[i]);
    char range[64];
    if (bad)
        snprintf(why, WHY_CHARS, "1 to %d comma-separated whole numbers %s", MAX_LIST,
                 range_text(range, sizeof range, min, max));
    return bad;
}

static int opt_size_list(const char *s, uint64_t max, size_t *v, size_t *n, char *why)
{
    uint64_t tmp[MAX_LIST];
    if (max > (uint64_t)SIZE_MAX)
        max = (uint64_t)SIZE_MAX;
    if (opt_u64_list(s, 1, max, tmp, n, why))
        return 1;
    for (size_t i = 0; i < *n; i++)
        v[i] = (size_t)tmp[i];
    return 0;
}

/* Checkpoints are taken in one pre-training run, so they must come in order. */
static int opt_marks(const char *s, uint64_t *v, size_t *n, char *why)
{
    int bad = opt_u64_list(s, 0, MAX_STEPS, v, n, why);
    for (size_t i = 1; !bad && i < *n; i++)
        bad = v[i] < v[i - 1];
    if (bad)
        snprintf(why, WHY_CHARS, "1 to %d comma-separated step counts from 0 to %llu, in "
                 "increasing order", MAX_LIST, (unsigned long long)MAX_STEPS);
    return bad;
}

static int opt_lrs(const char *s, double *v, size_t *n, char *why)
{
    char buf[LIST_CHARS], *items[MAX_LIST];
    int bad = split_list(s, buf, items, n);
    for (size_t i = 0; !bad && i < *n; i++)
        bad = parse_positive(items[i], &v[i]);
    if (bad)
        snprintf(why, WHY_CHARS, "1 to %d comma-separated positive numbers", MAX_LIST);
    return bad;
}

static int opt_pre_task(const char *s, int *task, char *why)
{
    if (strcmp(s, "classes04") == 0)
        *task = PRE_TASK_CLASSES04;
    else if (strcmp(s, "rotation") == 0)
        *task = PRE_TASK_ROTATION;
    else {
        snprintf(why, WHY_CHARS, "classes04 or rotation");
        return 1;
    }
    return 0;
}

/* At least one method: an empty list would train the baseline and print an empty table. */
static int opt_methods(const char *s, int *methods, char *why)
{
    static const char *names[4] = {"dense", "sparse", "fastfood", "said"};
    char buf[LIST_CHARS], *items[MAX_LIST];
    size_t n = 0;
    int bad = split_list(s, buf, items, &n);
    memset(methods, 0, 4 * sizeof *methods);
    for (size_t i = 0; !bad && i < n; i++) {
        int found = 0;
        for (int m = 0; m < 4; m++)
            if (strcmp(items[i], names[m]) == 0)
                methods[m] = found = 1;
        bad = !found;
    }
    if (bad)
        snprintf(why, WHY_CHARS, "one or more of dense,sparse,fastfood,said");
    return bad;
}

/* One "--name value" option; returns 0 if taken, 1 if the value is bad (why says what it
 * should be), 2 if the name is unknown. */
static int parse_option(protocol *p, const char *name, const char *value, char *why)
{
    if (strcmp(name, "--data") == 0) { p->data_dir = value; return 0; }
    if (strcmp(name, "--out") == 0) { p->out_dir = value; return 0; }
    if (strcmp(name, "--steps") == 0) return opt_u64(value, 1, MAX_STEPS, &p->steps, why);
    if (strcmp(name, "--batch") == 0) return opt_size(value, 1, MAX_BATCH, &p->batch, why);
    if (strcmp(name, "--pool") == 0) return opt_size(value, 1, TRAIN_SPLIT, &p->n_pool, why);
    if (strcmp(name, "--val") == 0) return opt_size(value, 1, MAX_VAL, &p->n_val, why);
    if (strcmp(name, "--train-eval") == 0)
        return opt_size(value, 1, TRAIN_SPLIT, &p->n_train_eval, why);
    if (strcmp(name, "--seeds") == 0) return opt_size(value, 1, MAX_SEEDS, &p->n_seeds, why);
    if (strcmp(name, "--seed") == 0) return opt_u64(value, 0, MAX_SEED, &p->base_seed, why);
    if (strcmp(name, "--init-seed") == 0)
        return opt_u64(value, 0, UINT64_MAX, &p->init_seed, why);
    if (strcmp(name, "--hidden") == 0) return opt_size(value, 1, MAX_WIDTH, &p->hidden, why);
    if (strcmp(name, "--ds") == 0) return opt_size_list(value, SIZE_MAX, p->ds, &p->n_ds, why);
    if (strcmp(name, "--lrs") == 0) return opt_lrs(value, p->sub_lrs, &p->n_sub_lrs, why);
    if (strcmp(name, "--full-lrs") == 0)
        return opt_lrs(value, p->full_lrs, &p->n_full_lrs, why);
    if (strcmp(name, "--dense-max-d") == 0)
        return opt_size(value, 0, SIZE_MAX, &p->dense_max_d, why);
    if (strcmp(name, "--methods") == 0) return opt_methods(value, p->methods, why);
    if (strcmp(name, "--marks") == 0) return opt_marks(value, p->marks, &p->n_marks, why);
    if (strcmp(name, "--pre-task") == 0) return opt_pre_task(value, &p->pre_task, why);
    if (strcmp(name, "--pre-ds") == 0)
        return opt_size_list(value, SIZE_MAX, p->pre_ds, &p->n_pre_ds, why);
    if (strcmp(name, "--widths") == 0)
        return opt_size_list(value, MAX_WIDTH, p->widths, &p->n_widths, why);
    if (strcmp(name, "--pre-steps") == 0)
        return opt_u64(value, 0, MAX_STEPS, &p->width_pre_steps, why);
    if (strcmp(name, "--speed-steps") == 0)
        return opt_u64(value, 1, MAX_STEPS, &p->speed_steps, why);
    if (strcmp(name, "--proj-threads") == 0)
        return opt_size(value, 0, MAX_THREADS, &p->proj_threads, why);
    if (strcmp(name, "--blas-threads") == 0)
        return opt_size(value, 0, MAX_THREADS, &p->blas_threads, why);
    if (strcmp(name, "--speed-repeats") == 0)
        return opt_size(value, 1, MAX_REPEATS, &p->speed_repeats, why);
    return 2;
}

/* ---- data ----------------------------------------------------------------------------- */

static int load_dataset(const protocol *p, dataset *ds)
{
    char err[512];
    memset(ds, 0, sizeof *ds);
    int status = fm_load(p->data_dir, &ds->train_all, &ds->test_all, err, sizeof err);
    if (status != 0) {
        fprintf(stderr, "fmnist: cannot load Fashion-MNIST: %s\n"
                        "  (Debian: apt-get install dataset-fashion-mnist, or --data DIR)\n",
                err);
        return 1;
    }
    if (ds->train_all.n <= TRAIN_SPLIT) {
        fprintf(stderr, "fmnist: %zu training images, need more than %d for a validation split\n",
                ds->train_all.n, TRAIN_SPLIT);
        fm_set_free(&ds->train_all);
        fm_set_free(&ds->test_all);
        return 1;
    }
    ds->train_split = fm_view(&ds->train_all, 0, TRAIN_SPLIT);
    ds->val_split = fm_view(&ds->train_all, TRAIN_SPLIT, ds->train_all.n - TRAIN_SPLIT);
    return 0;
}

static void free_dataset(dataset *ds)
{
    fm_set_free(&ds->train_all);
    fm_set_free(&ds->test_all);
}

static void print_protocol(const protocol *p, const char *what, int classes)
{
    out("Protocol (%s, %s): network 784-%zu-%zu-%d, theta0 = Glorot-uniform init seed %llu; "
        "Adam (beta 0.9/0.999, eps 1e-8), constant lr, batch %zu sampled with replacement "
        "from (seed, step), %llu steps per trial, identical for full and subspace training; "
        "train pool = first %zu of the 50,000-image train split, validation = first %zu of the "
        "last 10,000 training images, acc_train on the first %zu pool images, test = the 10,000 "
        "t10k images (reported only, never used for a choice); ",
        p->mode, what, p->hidden, p->hidden, classes, (unsigned long long)p->init_seed, p->batch,
        (unsigned long long)p->steps, p->n_pool, p->n_val, p->n_train_eval);
    out("full-training lr grid ");
    for (size_t i = 0; i < p->n_full_lrs; i++)
        out("%s%g", i ? "," : "", p->full_lrs[i]);
    out("; subspace lr grid ");
    for (size_t i = 0; i < p->n_sub_lrs; i++)
        out("%s%g", i ? "," : "", p->sub_lrs[i]);
    out("; best lr per d chosen on validation; %zu seed(s) per (d, lr) from base seed %llu "
        "(projection and minibatch stream); d90 = smallest d whose mean validation accuracy "
        "is > 0.9 x the full-training validation accuracy.\n\n",
        p->n_seeds, (unsigned long long)p->base_seed);
}

/* ---- experiment: baseline and d90 of each method -------------------------------------- */

/* Best full training over the lr grid, chosen on validation. */
static int measure_baseline(problem *pb, const protocol *p, trial *best)
{
    memset(best, 0, sizeof *best);
    best->val_acc = -1.0;
    for (size_t i = 0; i < p->n_full_lrs; i++) {
        trial t;
        memset(&t, 0, sizeof t);
        t.kind = INTDIM_PROJ_IDENTITY;
        t.lr = p->full_lrs[i];
        t.seed = mlp_mix64(p->base_seed, 0xF011u);
        /* Test accuracy: measured, only reported. */
        if (run_trial(pb, &t, 1) != INTDIM_OK)
            return t.status;
        if (t.val_acc > best->val_acc)
            *best = t;
    }
    return INTDIM_OK;
}

static void print_d90_table(const d90_result *r, size_t D)
{
    out("**%s**: d90 (val) = ", method_name(r->kind, r->said));
    if (r->d90_val)
        out("%zu (%.3f%% of D)", r->d90_val, 100.0 * (double)r->d90_val / (double)D);
    else
        out("not reached up to d = %zu", r->n_rows ? r->rows[r->n_rows - 1].d : 0);
    if (r->d90_val && (r->d90_lo != r->d90_val || r->d90_hi != r->d90_val))
        out(", bootstrap 5-95%%: %zu..%zu", r->d90_lo, r->d90_hi);
    out("; d90 (test) = ");
    if (r->d90_test)
        out("%zu", r->d90_test);
    else
        out("not reached");
    out(" — %zu trials, %.0f s\n\n", r->n_trials, r->seconds);
    out("| d | best lr (val) | acc_train | acc_val (mean ± spread) | acc_test | > 90%% (val) |\n");
    out("|---:|---:|---:|---:|---:|:---:|\n");
    for (size_t i = 0; i < r->n_rows; i++) {
        const d90_row *row = &r->rows[i];
        out("| %zu | %g | %.4f | %.4f ± %.4f | %.4f | %s |\n", row->d, row->best_lr,
            row->train_mean, row->val_mean, row->val_spread, row->test_mean,
            row->pass_val ? "yes" : "no");
    }
    out("\n");
}

static const int method_kinds[4] = {INTDIM_PROJ_DENSE, INTDIM_PROJ_SPARSE, INTDIM_PROJ_FASTFOOD,
                                    INTDIM_PROJ_FASTFOOD};
static const int method_said[4] = {0, 0, 0, 1};

typedef struct {
    trial baseline;
    d90_result methods[4];
    int ran[4];
} methods_result;

/* The d list a method can afford: dense stores D x d floats. */
static size_t method_ds(const protocol *p, int m, size_t *ds)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_ds; i++)
        if (m != 0 || p->ds[i] <= p->dense_max_d)
            ds[n++] = p->ds[i];
    return n;
}

static int run_methods(const protocol *p, const dataset *data, methods_result *res)
{
    memset(res, 0, sizeof *res);
    fm_set pool = fm_view(&data->train_split, 0, p->n_pool);
    fm_set train_eval = fm_view(&pool, 0, p->n_train_eval);
    fm_set val = fm_view(&data->val_split, 0, p->n_val);
    size_t widths[4] = {FM_PIXELS, p->hidden, p->hidden, FM_CLASSES};
    problem pb;
    if (problem_init(&pb, 4, widths, &pool, &train_eval, &val, &data->test_all, p->batch,
                     p->steps, p->init_seed))
        return 1;
    pb.proj_threads = (int)p->proj_threads;
    out("## Baseline and d90 per projection\n\n");
    print_protocol(p, "methods", FM_CLASSES);
    out("D = %zu parameters in %zu groups (SAID: one scale per weight and per bias block, "
        "counted in d).\n\n", pb.D, pb.n_groups);
    fprintf(stderr, "fmnist: full-training baseline (lr grid of %zu)\n", p->n_full_lrs);
    int rc = measure_baseline(&pb, p, &res->baseline);
    if (rc != INTDIM_OK) {
        problem_free(&pb);
        return 1;
    }
    out("Full training (best lr %g on val): acc_train %.4f, acc_val %.4f, acc_test %.4f "
        "(%.1f s); 90%% thresholds: val %.4f, test %.4f.\n\n",
        res->baseline.lr, res->baseline.train_acc, res->baseline.val_acc, res->baseline.test_acc,
        res->baseline.seconds, 0.9 * res->baseline.val_acc, 0.9 * res->baseline.test_acc);
    int failed = 0;
    for (int m = 0; m < 4; m++) {
        if (!p->methods[m])
            continue;
        size_t ds[MAX_LIST];
        size_t n = method_ds(p, m, ds);
        if (n == 0)
            continue;
        fprintf(stderr, "fmnist: d90 search, %s\n", method_name(method_kinds[m], method_said[m]));
        rc = search_d90(&pb, method_kinds[m], method_said[m], ds, n, p->sub_lrs, p->n_sub_lrs,
                        p->n_seeds, p->base_seed, res->baseline.val_acc, res->baseline.test_acc,
                        &res->methods[m]);
        if (rc != INTDIM_OK) {
            failed = 1;
            continue;
        }
        res->ran[m] = 1;
        print_d90_table(&res->methods[m], pb.D);
    }
    out("### Summary\n\n| method | d90 (val) | d90 / D | d90 (test) |\n|---|---:|---:|---:|\n");
    for (int m = 0; m < 4; m++) {
        if (!res->ran[m])
            continue;
        const d90_result *r = &res->methods[m];
        size_t max_d = r->n_rows ? r->rows[r->n_rows - 1].d : 0;
        if (r->d90_val)
            out("| %s | %zu | %.2e |", method_name(r->kind, r->said), r->d90_val,
                (double)r->d90_val / (double)pb.D);
        else
            out("| %s | > %zu | > %.2e |", method_name(r->kind, r->said), max_d,
                (double)max_d / (double)pb.D);
        if (r->d90_test)
            out(" %zu |\n", r->d90_test);
        else
            out(" > %zu |\n", max_d);
    }
    out("\nD = %zu. Li et al. (2018) report d_int90 = 750 for this network on MNIST "
        "(a different, easier dataset, much longer training).\n\n", pb.D);
    problem_free(&pb);
    return failed;
}

/* ---- speed ------------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The host's own full training: gradient then Adam over all D parameters, no library. */
static double host_full_training(problem *pb, uint64_t steps, int with_update)
{
    size_t D = pb->D;
    float *m = calloc(D, sizeof(float)), *v = calloc(D, sizeof(float));
    if (m == NULL || v == NULL) {
        free(m);
        free(v);
        return NAN;
    }
    memcpy(pb->theta, pb->theta0, D * sizeof(float));
    pb->host.batch_seed = 7;
    const float lr = 1e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    double start = now_seconds(), loss = 0.0;
    for (uint64_t s = 0; s < steps; s++) {
        fm_grad(&pb->host, s, pb->theta, pb->grad, &loss);
        if (!with_update)
            continue;
        float c1 = 1.0f - powf(b1, (float)(s + 1)), c2 = 1.0f - powf(b2, (float)(s + 1));
        for (size_t i = 0; i < D; i++) {
            float g = pb->grad[i];
            m[i] = b1 * m[i] + (1.0f - b1) * g;
            v[i] = b2 * v[i] + (1.0f - b2) * g * g;
            pb->theta[i] -= lr * (m[i] / c1) / (sqrtf(v[i] / c2) + eps);
        }
    }
    double seconds = now_seconds() - start;
    free(m);
    free(v);
    return seconds;
}

/* A whole Fastfood trial's training (projection creation included), evaluation excluded. */
static double library_trial(problem *pb, size_t d, uint64_t steps, int *rc)
{
    double start = now_seconds();
    intdim_proj *p = NULL;
    intdim_trainer *tr = NULL;
    *rc = intdim_proj_create(&p, INTDIM_PROJ_FASTFOOD, pb->D, d, 7);
    if (*rc == INTDIM_OK && pb->proj_threads > 0)
        *rc = intdim_proj_set(p, INTDIM_PROJ_THREADS, pb->proj_threads);
    pb->host.batch_seed = 7;
    if (*rc == INTDIM_OK)
        *rc = intdim_trainer_create(&tr, p, pb->theta, pb->theta0, pb->grad,
                                    INTDIM_TRAINER_BORROW_THETA0, fm_grad, &pb->host);
    if (*rc == INTDIM_OK)
        *rc = intdim_trainer_set(tr, INTDIM_TRAIN_LR, 1e-2);
    if (*rc == INTDIM_OK)
        *rc = intdim_trainer_run(tr, steps, NULL, NULL, NULL, NULL, NULL);
    double seconds = now_seconds() - start;
    intdim_trainer_destroy(tr);
    intdim_proj_destroy(p);
    return seconds;
}

static int run_speed(const protocol *p, const dataset *data)
{
    fm_set pool = fm_view(&data->train_split, 0, p->n_pool);
    size_t widths[4] = {FM_PIXELS, p->hidden, p->hidden, FM_CLASSES};
    problem pb;
    if (problem_init(&pb, 4, widths, &pool, NULL, NULL, NULL, p->batch, p->speed_steps,
                     p->init_seed))
        return 1;
    pb.proj_threads = (int)p->proj_threads;
    size_t reps = p->speed_repeats > 32 ? 32 : p->speed_repeats;
    double grad_only[32], full[32], lib[32];
    int rc = INTDIM_OK;
    /* Interleaved so that load from other processes hits all three alike. */
    for (size_t r = 0; r < reps && rc == INTDIM_OK; r++) {
        grad_only[r] = host_full_training(&pb, p->speed_steps, 0);
        full[r] = host_full_training(&pb, p->speed_steps, 1);
        lib[r] = library_trial(&pb, 1000, p->speed_steps, &rc);
    }
    if (rc != INTDIM_OK) {
        fprintf(stderr, "fmnist: speed trial failed: %s: %s\n", intdim_strerror(rc),
                intdim_last_error());
        problem_free(&pb);
        return 1;
    }
    qsort(grad_only, reps, sizeof(double), cmp_double);
    qsort(full, reps, sizeof(double), cmp_double);
    qsort(lib, reps, sizeof(double), cmp_double);
    double g = grad_only[reps / 2], f = full[reps / 2], l = lib[reps / 2];
    out("## Speed: Fastfood d = 1000 trial vs the host alone\n\n");
    out("Network 784-%zu-%zu-10 (D = %zu), batch %zu, %llu steps, median of %zu interleaved "
        "repeats (minimum in brackets); %zu thread(s) per projection (0 = library default), "
        "%zu OpenBLAS thread(s) (0 = OpenBLAS default).\n\n",
        p->hidden, p->hidden, pb.D, p->batch, (unsigned long long)p->speed_steps, reps,
        p->proj_threads, p->blas_threads);
    out("| what | seconds | ms/step | ratio to host full training |\n|---|---:|---:|---:|\n");
    out("| host alone: loss + gradient only | %.3f [%.3f] | %.3f | %.3f |\n", g, grad_only[0],
        1e3 * g / (double)p->speed_steps, g / f);
    out("| host alone: full training (gradient + its own Adam over D) | %.3f [%.3f] | %.3f | 1 |\n",
        f, full[0], 1e3 * f / (double)p->speed_steps);
    out("| libintdim trial: Fastfood d = 1000 (creation + Adam on theta_d) | %.3f [%.3f] | %.3f | "
        "%.3f |\n\n", l, lib[0], 1e3 * l / (double)p->speed_steps, l / f);
    out("Target: trial <= 1.15 x host full training: %s (ratio %.3f; %.3f against the "
        "gradient alone).\n\n", l <= 1.15 * f ? "met" : "NOT met", l / f, l / g);
    problem_free(&pb);
    return 0;
}

/* ---- experiments on transfer: classes 0-4 -> classes 5-9 --------------------------------- */

/* Task B (classes 5-9, labels remapped to 0..4) and task A: classes 0-4 (remapped
 * likewise) or the rotation task on the same pool and validation images of all classes. */
typedef struct {
    fm_set a_pool, b_pool, b_train_eval, b_val, b_test, a_val;
    size_t a_classes; /* outputs of the pre-training head */
} transfer_data;

static int make_task_a(const protocol *p, const fm_set *pool, const fm_set *val,
                       transfer_data *td)
{
    if (p->pre_task == PRE_TASK_ROTATION) {
        td->a_classes = FM_ROTATIONS;
        int rc = fm_rotation_task(pool, 0, &td->a_pool);
        return rc == 0 ? fm_rotation_task(val, 0, &td->a_val) : rc;
    }
    td->a_classes = 5;
    int rc = fm_select(pool, 0, 4, 1, 0, &td->a_pool);
    return rc == 0 ? fm_select(val, 0, 4, 1, 0, &td->a_val) : rc;
}

static int make_transfer_data(const protocol *p, const dataset *data, transfer_data *td)
{
    memset(td, 0, sizeof *td);
    fm_set pool = fm_view(&data->train_split, 0, p->n_pool);
    fm_set val = fm_view(&data->val_split, 0, p->n_val);
    int rc = make_task_a(p, &pool, &val, td);
    if (rc == 0)
        rc = fm_select(&pool, 5, 9, 1, 0, &td->b_pool);
    if (rc == 0)
        rc = fm_select(&pool, 5, 9, 1, p->n_train_eval, &td->b_train_eval);
    if (rc == 0)
        rc = fm_select(&val, 5, 9, 1, 0, &td->b_val);
    if (rc == 0)
        rc = fm_select(&data->test_all, 5, 9, 1, 0, &td->b_test);
    if (rc != 0)
        fprintf(stderr, "fmnist: cannot build tasks A and B\n");
    return rc;
}

static void free_transfer_data(transfer_data *td)
{
    fm_set_free(&td->a_pool);
    fm_set_free(&td->b_pool);
    fm_set_free(&td->b_train_eval);
    fm_set_free(&td->b_val);
    fm_set_free(&td->b_test);
    fm_set_free(&td->a_val);
}

/* theta0 of task B's network (net) = the trunk (every layer but the output layer) of a
 * pre-trained checkpoint + the output layer of fresh (a new head for task B). The trunk
 * is laid out alike in both networks; only the heads differ (4 or 5 outputs on A). */
static void checkpoint_with_fresh_head(const mlp *net, float *theta0, const float *ckpt,
                                       const float *fresh)
{
    size_t start = net->w_offset[net->n_layers - 1];
    memcpy(theta0, ckpt, start * sizeof(float));
    memcpy(theta0 + start, fresh + start, (net->n_params - start) * sizeof(float));
}

static const char *task_a_name(const protocol *p)
{
    return p->pre_task == PRE_TASK_ROTATION ? "rotation prediction (all classes)"
                                            : "classes 0-4";
}

typedef struct {
    uint64_t pre_steps;
    double a_val;        /* task-A validation accuracy of the pre-trained network */
    d90_result r;
    double gap;          /* relative generalization gap at d90 (or the largest d) */
    double acc_train, acc_val;
} transfer_point;

/* Pre-train a 784-w-w-5 network on task A to every mark, then d90 on task B from each
 * checkpoint (with a fresh head). Baseline: full training on B from random init. */
static int transfer_d90(const protocol *p, const transfer_data *td, size_t width,
                        const uint64_t *marks, size_t n_marks, transfer_point *points,
                        trial *baseline, size_t *D_out)
{
    size_t widths[4] = {FM_PIXELS, width, width, 5};
    size_t a_widths[4] = {FM_PIXELS, width, width, td->a_classes};
    problem a, b;
    if (problem_init(&a, 4, a_widths, &td->a_pool, NULL, &td->a_val, NULL, p->batch, p->steps,
                     p->init_seed))
        return 1;
    if (problem_init(&b, 4, widths, &td->b_pool, &td->b_train_eval, &td->b_val, &td->b_test,
                     p->batch, p->steps, p->init_seed)) {
        problem_free(&a);
        return 1;
    }
    a.proj_threads = b.proj_threads = (int)p->proj_threads;
    *D_out = b.D;
    int rc = INTDIM_OK;
    float **ckpt = calloc(n_marks, sizeof *ckpt);
    for (size_t k = 0; ckpt != NULL && k < n_marks; k++)
        if ((ckpt[k] = malloc(a.D * sizeof(float))) == NULL)
            rc = INTDIM_ENOMEM;
    if (ckpt == NULL)
        rc = INTDIM_ENOMEM;
    /* Pre-training uses the first full-training lr on the grid that is 1e-3, else the first. */
    double pre_lr = p->full_lrs[0];
    for (size_t i = 0; i < p->n_full_lrs; i++)
        if (fabs(p->full_lrs[i] - 1e-3) < 1e-12)
            pre_lr = 1e-3;
    if (rc == INTDIM_OK) {
        fprintf(stderr, "fmnist: pre-training width %zu on %s to step %llu\n", width,
                task_a_name(p), (unsigned long long)marks[n_marks - 1]);
        rc = train_full_marks(&a, pre_lr, mlp_mix64(p->base_seed, 0xA11u), marks, n_marks, ckpt);
    }
    /* Baseline on B: full training from random init, lr grid on val. */
    if (rc == INTDIM_OK) {
        memset(baseline, 0, sizeof *baseline);
        baseline->val_acc = -1.0;
        for (size_t i = 0; i < p->n_full_lrs && rc == INTDIM_OK; i++) {
            trial t;
            memset(&t, 0, sizeof t);
            t.kind = INTDIM_PROJ_IDENTITY;
            t.lr = p->full_lrs[i];
            t.seed = mlp_mix64(p->base_seed, 0xF011u);
            rc = run_trial(&b, &t, 1);
            if (rc == INTDIM_OK && t.val_acc > baseline->val_acc)
                *baseline = t;
        }
    }
    float *random_init = malloc(b.D * sizeof(float));
    if (random_init == NULL)
        rc = INTDIM_ENOMEM;
    else
        memcpy(random_init, b.theta0, b.D * sizeof(float));
    for (size_t k = 0; rc == INTDIM_OK && k < n_marks; k++) {
        transfer_point *pt = &points[k];
        memset(pt, 0, sizeof *pt);
        pt->pre_steps = marks[k];
        fm_accuracy(&a.host, ckpt[k], &td->a_val, &pt->a_val);
        checkpoint_with_fresh_head(&b.net, b.theta0, ckpt[k], random_init);
        fprintf(stderr, "fmnist: width %zu, checkpoint %llu: d90 on classes 5-9\n", width,
                (unsigned long long)marks[k]);
        rc = search_d90(&b, INTDIM_PROJ_FASTFOOD, 0, p->pre_ds, p->n_pre_ds, p->sub_lrs,
                        p->n_sub_lrs, p->n_seeds, p->base_seed, baseline->val_acc,
                        baseline->test_acc, &pt->r);
        if (rc != INTDIM_OK || pt->r.n_rows == 0)
            break;
        /* Generalization gap of the subspace model at d90 (the largest d if not reached). */
        const d90_row *row = &pt->r.rows[pt->r.n_rows - 1];
        for (size_t i = 0; i < pt->r.n_rows; i++)
            if (pt->r.rows[i].d == pt->r.d90_val)
                row = &pt->r.rows[i];
        pt->acc_train = row->train_mean;
        pt->acc_val = row->val_mean;
        pt->gap = (row->train_mean - row->val_mean) / (1.0 - row->val_mean);
    }
    free(random_init);
    for (size_t k = 0; ckpt != NULL && k < n_marks; k++)
        free(ckpt[k]);
    free(ckpt);
    problem_free(&a);
    problem_free(&b);
    return rc != INTDIM_OK;
}

static void print_transfer_protocol(const protocol *p, const char *what)
{
    print_protocol(p, what, 5);
    if (p->pre_task == PRE_TASK_ROTATION)
        out("Transfer: task A = rotation prediction (self-supervised): every train-pool image "
            "of all 10 classes at 0, 90, 180 and 270 degrees clockwise, label = the rotation "
            "(4-way output, class labels unused; acc_val on A = rotation accuracy on the "
            "validation images, all classes, 4 rotations each), task B = classes 5-9 (labels "
            "remapped to 0..4, 5-way output). Pre-training: full training on A (Adam, lr 1e-3 "
            "if on the grid). Fine-tuning: Fastfood subspace training on B from the pre-trained "
            "hidden layers with a fresh output layer (the same one the random-init network "
            "has); d list ");
    else
        out("Transfer: task A = classes 0-4, task B = classes 5-9 (labels remapped to 0..4, "
            "5-way output). Pre-training: full training on A (Adam, lr 1e-3 if on the grid). "
            "Fine-tuning: Fastfood subspace training on B from the pre-trained weights with a "
            "fresh output layer (the same one the random-init network has); d list ");
    for (size_t i = 0; i < p->n_pre_ds; i++)
        out("%s%zu", i ? "," : "", p->pre_ds[i]);
    out(". Baseline for d90: full training on B from random init (lr grid on val). "
        "Relative generalization gap = (acc_train - acc_val) / (1 - acc_val) of the subspace "
        "model at d90 (at the largest d when d90 is not reached).\n\n");
}

static void fmt_d90(char *buf, size_t n, const d90_result *r)
{
    if (r->d90_val)
        snprintf(buf, n, "%zu", r->d90_val);
    else
        snprintf(buf, n, "> %zu", r->n_rows ? r->rows[r->n_rows - 1].d : 0);
}

/* d90 as a number for rank statistics: not reached ranks above every measured d. */
static double d90_value(const d90_result *r)
{
    if (r->d90_val)
        return (double)r->d90_val;
    return 2.0 * (double)(r->n_rows ? r->rows[r->n_rows - 1].d : 1);
}

static int run_pretrain(const protocol *p, const dataset *data, transfer_point *points,
                        size_t *n_points)
{
    transfer_data td;
    if (make_transfer_data(p, data, &td))
        return 1;
    trial baseline;
    size_t D = 0;
    if (p->pre_task == PRE_TASK_ROTATION)
        out("## Pre-training lowers d90 (rotation prediction on all images -> classes 5-9)\n\n");
    else
        out("## Pre-training lowers d90 (classes 0-4 -> classes 5-9)\n\n");
    print_transfer_protocol(p, "pretrain");
    int rc = transfer_d90(p, &td, p->hidden, p->marks, p->n_marks, points, &baseline, &D);
    *n_points = rc ? 0 : p->n_marks;
    if (!rc) {
        out("Network 784-%zu-%zu-5, D = %zu. Baseline (full training on B from random init, "
            "lr %g): acc_val %.4f, acc_test %.4f; 90%% of val = %.4f.\n\n",
            p->hidden, p->hidden, D, baseline.lr, baseline.val_acc, baseline.test_acc,
            0.9 * baseline.val_acc);
        out("| pre-training steps on A | acc_val on A | d90 on B (val) | d90 on B (test) |");
        for (size_t i = 0; i < p->n_pre_ds; i++)
            out(" acc_val d=%zu |", p->pre_ds[i]);
        out("\n|---:|---:|---:|---:|");
        for (size_t i = 0; i < p->n_pre_ds; i++)
            out("---:|");
        out("\n");
        for (size_t k = 0; k < *n_points; k++) {
            char buf[32];
            fmt_d90(buf, sizeof buf, &points[k].r);
            out("| %llu%s | %.4f | %s |", (unsigned long long)points[k].pre_steps,
                points[k].pre_steps == 0 ? " (random init)" : "", points[k].a_val, buf);
            if (points[k].r.d90_test)
                out(" %zu |", points[k].r.d90_test);
            else
                out(" not reached |");
            for (size_t i = 0; i < points[k].r.n_rows; i++)
                out(" %.4f |", points[k].r.rows[i].val_mean);
            out("\n");
        }
        out("\n");
    }
    free_transfer_data(&td);
    return rc;
}

/* Spearman rank correlation (average ranks for ties). */
static void ranks(const double *x, size_t n, double *r)
{
    for (size_t i = 0; i < n; i++) {
        double less = 0.0, equal = 0.0;
        for (size_t j = 0; j < n; j++) {
            less += x[j] < x[i];
            equal += x[j] == x[i];
        }
        r[i] = less + (equal + 1.0) / 2.0;
    }
}

static double spearman(const double *x, const double *y, size_t n)
{
    double rx[MAX_LIST], ry[MAX_LIST], mx = 0.0, my = 0.0;
    if (n < 2 || n > MAX_LIST)
        return NAN;
    ranks(x, n, rx);
    ranks(y, n, ry);
    for (size_t i = 0; i < n; i++) {
        mx += rx[i] / (double)n;
        my += ry[i] / (double)n;
    }
    double sxy = 0.0, sxx = 0.0, syy = 0.0;
    for (size_t i = 0; i < n; i++) {
        sxy += (rx[i] - mx) * (ry[i] - my);
        sxx += (rx[i] - mx) * (rx[i] - mx);
        syy += (ry[i] - my) * (ry[i] - my);
    }
    return sxx > 0.0 && syy > 0.0 ? sxy / sqrt(sxx * syy) : NAN;
}

typedef struct {
    size_t width, D;
    trial baseline;
    transfer_point pt;
} width_point;

static int run_width(const protocol *p, const dataset *data, width_point *points,
                     size_t *n_points)
{
    transfer_data td;
    if (make_transfer_data(p, data, &td))
        return 1;
    out("## Wider networks: d90 and generalization gap after the same pre-training\n\n");
    print_transfer_protocol(p, "width");
    out("Every width is pre-trained for %llu steps on A; its own full training on B from "
        "random init is its baseline.\n\n", (unsigned long long)p->width_pre_steps);
    *n_points = 0;
    int rc = 0;
    for (size_t i = 0; i < p->n_widths && !rc; i++) {
        width_point *w = &points[i];
        memset(w, 0, sizeof *w);
        w->width = p->widths[i];
        uint64_t mark = p->width_pre_steps;
        rc = transfer_d90(p, &td, w->width, &mark, 1, &w->pt, &w->baseline, &w->D);
        if (!rc)
            (*n_points)++;
    }
    out("| hidden width | D | baseline acc_val on B | d90 (val) | d90 / D | d90 (test) | "
        "acc_train @d90 | acc_val @d90 | relative gap |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    double d90s[MAX_LIST], gaps[MAX_LIST], ws[MAX_LIST];
    for (size_t i = 0; i < *n_points; i++) {
        const width_point *w = &points[i];
        char buf[32];
        fmt_d90(buf, sizeof buf, &w->pt.r);
        out("| %zu | %zu | %.4f | %s | %.2e | ", w->width, w->D, w->baseline.val_acc, buf,
            d90_value(&w->pt.r) / (double)w->D);
        if (w->pt.r.d90_test)
            out("%zu", w->pt.r.d90_test);
        else
            out("not reached");
        out(" | %.4f | %.4f | %.4f |\n", w->pt.acc_train, w->pt.acc_val, w->pt.gap);
        d90s[i] = d90_value(&w->pt.r);
        gaps[i] = w->pt.gap;
        ws[i] = (double)w->width;
    }
    if (*n_points >= 2)
        out("\nSpearman rank correlation (d90 not reached ranks highest): width vs d90 = %.2f "
            "(the finding predicts < 0); d90 vs relative gap = %.2f (predicts > 0).\n\n",
            spearman(ws, d90s, *n_points), spearman(d90s, gaps, *n_points));
    free_transfer_data(&td);
    return rc;
}

/* ---- plots and results.md ------------------------------------------------------------------ */

static int ensure_dir(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : 1;
    return mkdir(path, 0777) != 0;
}

static FILE *open_in(const char *dir, const char *name, const char *mode)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, mode);
    if (f == NULL)
        fprintf(stderr, "fmnist: cannot open %s\n", path);
    return f;
}

/* OUT/img (created), or NULL without --out. */
static const char *img_dir(const protocol *p)
{
    static char img[4096];
    if (p->out_dir == NULL)
        return NULL;
    snprintf(img, sizeof img, "%s/img", p->out_dir);
    if (ensure_dir(p->out_dir) || ensure_dir(img)) {
        fprintf(stderr, "fmnist: cannot create %s\n", img);
        return NULL;
    }
    return img;
}

/* Run gnuplot on img/<name>.gp if it is installed; the data and script stay either way. */
static void run_gnuplot(const char *img, const char *name)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot %s.gp 2>/dev/null", img, name);
    if (system(cmd) != 0)
        fprintf(stderr, "fmnist: gnuplot failed or is missing; data and script are in %s\n", img);
}

static void plot_methods(const protocol *p, const methods_result *mr)
{
    const char *img = img_dir(p);
    if (img == NULL)
        return;
    char names[256] = "";
    int n_methods = 0;
    FILE *f = open_in(img, "fmnist_methods.dat", "w");
    if (f == NULL)
        return;
    for (int m = 0; m < 4; m++) {
        if (!mr->ran[m])
            continue;
        const char *name = method_name(mr->methods[m].kind, mr->methods[m].said);
        fprintf(f, "# %s: d, val acc, test acc (best lr on val)\n", name);
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                 n_methods ? " " : "", name);
        n_methods++;
        for (size_t i = 0; i < mr->methods[m].n_rows; i++)
            fprintf(f, "%zu %.5f %.5f\n", mr->methods[m].rows[i].d,
                    mr->methods[m].rows[i].val_mean, mr->methods[m].rows[i].test_mean);
        fprintf(f, "\n\n");
    }
    fclose(f);
    if (n_methods == 0 || (f = open_in(img, "fmnist_methods.gp", "w")) == NULL)
        return;
    fprintf(f,
            "# written by fmnist; run from this directory\n"
            "set terminal pngcairo size 800,500\n"
            "set output 'fmnist_methods.png'\n"
            "set logscale x\nset key bottom right\nset grid\n"
            "set title 'Fashion-MNIST 784-%zu-%zu-10: validation accuracy vs d'\n"
            "set xlabel 'd'\nset ylabel 'validation accuracy (best lr)'\n"
            "names = '%s'\n"
            "plot for [i=0:%d] 'fmnist_methods.dat' index i using 1:2 with linespoints "
            "title word(names, i + 1), %.5f title '90%% of full training' with lines dt 2\n",
            p->hidden, p->hidden, names, n_methods - 1, 0.9 * mr->baseline.val_acc);
    fclose(f);
    run_gnuplot(img, "fmnist_methods");
}

static void plot_pretrain(const protocol *p, const transfer_point *pp, size_t n)
{
    const char *img = img_dir(p);
    /* The rotation task gets its own files so it never overwrites the classes 0-4 plot. */
    int rotation = p->pre_task == PRE_TASK_ROTATION;
    const char *name = rotation ? "fmnist_pretrain_rotation" : "fmnist_pretrain";
    const char *on_a = rotation ? "rotation prediction" : "0-4";
    char file[128];
    FILE *f;
    snprintf(file, sizeof file, "%s.dat", name);
    if (img == NULL || n == 0 || (f = open_in(img, file, "w")) == NULL)
        return;
    /* Block 0: d90 per checkpoint; block k >= 1: val accuracy vs d from checkpoint k-1. */
    fprintf(f, "# pre-training steps, d90 on classes 5-9 (not reached: 2 x largest d)\n");
    for (size_t k = 0; k < n; k++)
        fprintf(f, "%llu %.1f\n", (unsigned long long)pp[k].pre_steps, d90_value(&pp[k].r));
    char titles[512] = "";
    for (size_t k = 0; k < n; k++) {
        fprintf(f, "\n\n# checkpoint %llu: d, val acc on B (best lr)\n",
                (unsigned long long)pp[k].pre_steps);
        for (size_t i = 0; i < pp[k].r.n_rows; i++)
            fprintf(f, "%zu %.5f\n", pp[k].r.rows[i].d, pp[k].r.rows[i].val_mean);
        snprintf(titles + strlen(titles), sizeof titles - strlen(titles), "%s%llu",
                 k ? " " : "", (unsigned long long)pp[k].pre_steps);
    }
    fclose(f);
    snprintf(file, sizeof file, "%s.gp", name);
    if ((f = open_in(img, file, "w")) == NULL)
        return;
    fprintf(f,
            "# written by fmnist; run from this directory\n"
            "set terminal pngcairo size 1100,450\n"
            "set output '%s.png'\nset grid\nset multiplot layout 1,2\n"
            "set title 'd90 on classes 5-9 vs pre-training steps on %s'\n"
            "set xlabel 'pre-training steps'\nset logscale y\n"
            "set ylabel 'd90 (not reached: 2 x largest d)'\n"
            "plot '%s.dat' index 0 using 1:2 with linespoints notitle\n"
            "unset logscale y\nset logscale x\nset key bottom right\n"
            "set title 'validation accuracy on classes 5-9 vs d'\n"
            "set xlabel 'd'\nset ylabel 'validation accuracy (best lr)'\n"
            "steps = '%s'\n"
            "plot for [k=1:%zu] '%s.dat' index k using 1:2 with linespoints "
            "title sprintf('pre-trained %%s steps', word(steps, k)), %.5f title '90%% of "
            "baseline' with lines dt 2\n"
            "unset multiplot\n",
            name, on_a, name, titles, n, name, 0.9 * pp[0].r.baseline_val);
    fclose(f);
    run_gnuplot(img, name);
}

static void plot_width(const protocol *p, const width_point *wp, size_t n)
{
    const char *img = img_dir(p);
    FILE *f;
    if (img == NULL || n == 0 || (f = open_in(img, "fmnist_width.dat", "w")) == NULL)
        return;
    fprintf(f, "# hidden width, d90 (not reached: 2 x largest d), relative generalization gap\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%zu %.1f %.5f\n", wp[i].width, d90_value(&wp[i].pt.r), wp[i].pt.gap);
    fclose(f);
    if ((f = open_in(img, "fmnist_width.gp", "w")) == NULL)
        return;
    /* d90 takes few distinct values: pad the log axis so none sits on the border. */
    double lo = INFINITY, hi = 0.0;
    for (size_t i = 0; i < n; i++) {
        lo = fmin(lo, d90_value(&wp[i].pt.r));
        hi = fmax(hi, d90_value(&wp[i].pt.r));
    }
    fprintf(f,
            "# written by fmnist; run from this directory\n"
            "set terminal pngcairo size 800,500\n"
            "set output 'fmnist_width.png'\nset grid\nset logscale x\nset logscale y\n"
            "set yrange [%g:%g]\nset offsets graph 0.05, graph 0.05, 0, 0\n"
            "set title 'd90 and relative generalization gap vs hidden width'\n"
            "set xlabel 'hidden width'\nset ylabel 'd90 (log)'\nset y2label 'relative gap'\n"
            "set y2tics\nset ytics nomirror\nset y2range [0:*]\nset key top left\n"
            "plot 'fmnist_width.dat' using 1:2 with linespoints title 'd90', "
            "'' using 1:3 axes x1y2 with linespoints title 'relative gap'\n",
            lo / 2.0, hi * 2.0);
    fclose(f);
    run_gnuplot(img, "fmnist_width");
}

static void print_command(int argc, char **argv)
{
    out("Command: `");
    for (int i = 0; i < argc; i++)
        out("%s%s", i ? " " : "", argv[i]);
    out("` (libintdim %s)\n\n", intdim_version_string());
}

static int run_quick(const protocol *p, const dataset *data)
{
    static methods_result mr;
    int rc = run_methods(p, data, &mr);
    out("Quick mode is a smoke-sized protocol (a fifth of the training data, %llu steps per "
        "trial, one seed, dense only up to d = %zu); see docs/results.md for the full "
        "protocol.\n",
        (unsigned long long)p->steps, p->dense_max_d);
    return rc;
}

static int run_full(const protocol *p, const dataset *data, int argc, char **argv)
{
    if (p->out_dir != NULL) {
        if (ensure_dir(p->out_dir)) {
            fprintf(stderr, "fmnist: cannot create %s\n", p->out_dir);
            return 1;
        }
        rep.md = open_in(p->out_dir, "results.md", "w");
        if (rep.md == NULL)
            return 1;
    }
    out("# Fashion-MNIST results (generated by fmnist --full)\n\n");
    print_command(argc, argv);
    static methods_result mr;
    static transfer_point pp[MAX_LIST];
    static width_point wp[MAX_LIST];
    size_t n_pp = 0, n_wp = 0;
    int rc = run_methods(p, data, &mr);
    plot_methods(p, &mr);
    rc |= run_speed(p, data);
    rc |= run_pretrain(p, data, pp, &n_pp);
    plot_pretrain(p, pp, n_pp);
    rc |= run_width(p, data, wp, &n_wp);
    plot_width(p, wp, n_wp);
    if (rep.md != NULL) {
        out("Plots: ![d90 per method](img/fmnist_methods.png) "
            "![pre-training](img/fmnist_pretrain.png) ![width](img/fmnist_width.png)\n");
        fclose(rep.md);
        rep.md = NULL;
    }
    return rc;
}

/* ---- main --------------------------------------------------------------------------------- */

/* The command (first word, or --quick / --full) and the preset (--protocol, or the
 * command's own) come first so that every other option overrides single fields. */
static int pick_command(int argc, char **argv, const char **command, protocol *p)
{
    const char *preset = NULL;
    *command = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *c = NULL;
        if (i == 1 && a[0] != '-')
            c = a;
        else if (strcmp(a, "--quick") == 0 || strcmp(a, "--full") == 0)
            c = a + 2;
        else if (strcmp(a, "--protocol") == 0 && i + 1 < argc)
            preset = argv[++i];
        else if (a[0] == '-' && strcmp(a, "--help") != 0 && strcmp(a, "-h") != 0)
            i++; /* skip the option's value */
        if (c != NULL) {
            if (*command != NULL && strcmp(*command, c) != 0) {
                fprintf(stderr, "fmnist: '%s' conflicts with '%s'\n", c, *command);
                return 2;
            }
            *command = c;
        }
    }
    if (preset == NULL)
        preset = *command != NULL && strcmp(*command, "full") == 0 ? "full" : "quick";
    if (strcmp(preset, "quick") == 0)
        preset_quick(p);
    else if (strcmp(preset, "full") == 0)
        preset_full(p);
    else {
        fprintf(stderr, "fmnist: --protocol is quick or full, not '%s'\n", preset);
        return 2;
    }
    return 0;
}

static const char *const commands[] = {"quick", "full", "methods", "speed", "pretrain", "width"};

static int is_command(const char *word)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(word, commands[i]) == 0)
            return 1;
    return 0;
}

/* Every value is checked here, before the data is read: exit status 2 and a message naming
 * the option and its value. Returns 0, 1 after --help, or 2. */
static int parse_args(int argc, char **argv, protocol *p)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((i == 1 && a[0] != '-') || strcmp(a, "--quick") == 0 || strcmp(a, "--full") == 0)
            continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        /* The command is the first word only; a later word is a command out of place or
         * a stray value, not an option that lacks one. */
        if (a[0] != '-') {
            if (is_command(a))
                fprintf(stderr, "fmnist: the command must come first: fmnist %s [options], "
                                "not '%s' after an option\n", a, a);
            else
                fprintf(stderr, "fmnist: unexpected '%s' where an option (--name value) "
                                "should be\n", a);
            usage(stderr);
            return 2;
        }
        char why[WHY_CHARS] = "";
        if (i + 1 >= argc) {
            /* A scratch copy: only to tell an unknown name from a known one without value. */
            protocol scratch = *p;
            int known = strcmp(a, "--protocol") == 0 || parse_option(&scratch, a, "", why) != 2;
            fprintf(stderr, known ? "fmnist: option %s needs a value\n"
                                  : "fmnist: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        int r = strcmp(a, "--protocol") == 0 ? 0 : parse_option(p, a, argv[i + 1], why);
        if (r == 2)
            fprintf(stderr, "fmnist: unknown option %s\n", a);
        else if (r != 0)
            fprintf(stderr, "fmnist: bad value for %s: '%s' (need %s)\n", a, argv[i + 1], why);
        if (r != 0) {
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (p->n_train_eval > p->n_pool) {
        fprintf(stderr, "fmnist: --train-eval %zu is more than --pool %zu (its images are the "
                        "first of the pool)\n", p->n_train_eval, p->n_pool);
        return 2;
    }
    return 0;
}

/* methods, --quick and --full train the baseline, then each chosen method at the d it can
 * afford: refuse a choice that leaves no trial at all, rather than print an empty table. */
static int methods_have_trials(const protocol *p)
{
    size_t ds[MAX_LIST];
    for (int m = 0; m < 4; m++)
        if (p->methods[m] && method_ds(p, m, ds) > 0)
            return 1;
    return 0;
}

static int dispatch(const char *command, const protocol *p, const dataset *data, int argc,
                    char **argv)
{
    if (strcmp(command, "quick") == 0)
        return run_quick(p, data);
    if (strcmp(command, "full") == 0)
        return run_full(p, data, argc, argv);
    print_command(argc, argv);
    int rc;
    if (strcmp(command, "methods") == 0) {
        static methods_result mr;
        rc = run_methods(p, data, &mr);
        plot_methods(p, &mr);
    } else if (strcmp(command, "speed") == 0) {
        rc = run_speed(p, data);
    } else if (strcmp(command, "pretrain") == 0) {
        static transfer_point pp[MAX_LIST];
        size_t n = 0;
        rc = run_pretrain(p, data, pp, &n);
        plot_pretrain(p, pp, n);
    } else {
        static width_point wp[MAX_LIST];
        size_t n = 0;
        rc = run_width(p, data, wp, &n);
        plot_width(p, wp, n);
    }
    return rc;
}

int main(int argc, char **argv)
{
    protocol p;
    const char *command = NULL;
    if (pick_command(argc, argv, &command, &p))
        return 2;
    int r = parse_args(argc, argv, &p);
    if (r != 0)
        return r == 1 ? 0 : 2;
    if (command == NULL || !is_command(command)) {
        if (command != NULL)
            fprintf(stderr, "fmnist: unknown command '%s'\n", command);
        usage(stderr);
        return 2;
    }
    if (strcmp(command, "speed") != 0 && strcmp(command, "pretrain") != 0 &&
        strcmp(command, "width") != 0 && !methods_have_trials(&p)) {
        fprintf(stderr, "fmnist: --methods leaves no trial to run: dense runs only at the d of "
                        "--ds up to --dense-max-d %zu\n", p.dense_max_d);
        return 2;
    }
#if defined(__GNUC__)
    /* One BLAS thread by default: on a shared 2-core machine OpenBLAS's spinning threads
     * made a training step 6x slower (29 ms instead of 5 ms at batch 128). */
    if (p.blas_threads > 0 && openblas_set_num_threads != NULL)
        openblas_set_num_threads((int)p.blas_threads);
#endif
    dataset data;
    if (load_dataset(&p, &data))
        return 1;
    int rc = dispatch(command, &p, &data, argc, argv);
    free_dataset(&data);
    return rc ? 1 : 0;
}
