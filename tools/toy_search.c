/* See toy_search.h. */
#include "toy_search.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void toy_options_usage(FILE *out)
{
    fprintf(out,
            "search options (run-toy and intdim-mpi):\n"
            "  --kind dense|sparse|fastfood   projection of the trials (default fastfood)\n"
            "  --said                         SAID: one scale per group of 100 (10 groups)\n"
            "  --block B                      Fastfood in stacked blocks of B rows (a power of\n"
            "                                 two; default: REFERENCE's single block)\n"
            "  --strategy grid|adaptive       full grid (default) or bracketing + bisection\n"
            "  --seeds N                      seeds per (d, lr) (default 3)\n"
            "  --lrs A,B,...                  learning rates, best per d counts (default 1,0.3,0.1)\n"
            "  --d-min N --d-max N --n-d N    log-spaced d grid (default 2 (11 with --said), 1000, 40)\n"
            "  --d-list A,B,...               explicit d values instead\n"
            "  --steps N                      Adam steps per trial, cosine decay (default 1000)\n"
            "  --fraction F                   target fraction of the baseline (default 0.9)\n"
            "  --baseline B                   given baseline (default: measure full training)\n"
            "  --base-seed N --toy-seed N     seeds of the trials / of the problem (default 0, 1)\n"
            "  --bootstrap N                  resamples for d90's spread (default 100)\n"
            "  --journal FILE                 crash-safe journal; an existing one is resumed\n"
            "  --shard K/N                    run only trials with id %% N == K (grid; job arrays)\n"
            "  --quiet                        no progress line\n");
}

/* A whole number written with digits only: strtoull alone would take " -1" (leading
 * space, then a sign it wraps to 2^64 - 1) or "12x". */
/* Digits only, at most max. */
static int parse_digits(const char *s, unsigned long long max, unsigned long long *v)
{
    if (s[0] < '0' || s[0] > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || x > max)
        return -1;
    *v = x;
    return 0;
}

int toy_parse_count(const char *s, size_t *v)
{
    /* every count and seed of the search reaches the library as a double, exact only up to
     * 2^53: a larger one would be rounded silently */
    unsigned long long x;
    if (parse_digits(s, SIZE_MAX < (1ULL << 53) ? SIZE_MAX : (1ULL << 53), &x) != 0)
        return -1;
    *v = (size_t)x;
    return 0;
}

/* A finite number, the whole string (no leading space). */
static int parse_num(const char *s, double *v)
{
    if (s[0] == '\0' || s[0] == ' ' || s[0] == '\t')
        return -1;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (*end != '\0' || errno == ERANGE || !isfinite(x))
        return -1;
    *v = x;
    return 0;
}

/* The items of a comma-separated list, refusing empty ones ("5,,7", a trailing comma):
 * calls item(text, index, ctx) for each; -1 on an empty item, too many, or a bad one. */
static int parse_list(const char *s, size_t max, int (*item)(const char *, size_t, void *),
                      void *ctx, size_t *count)
{
    size_t n = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char tok[64];
        if (len == 0 || len >= sizeof tok || n == max)
            return -1;
        memcpy(tok, p, len);
        tok[len] = '\0';
        if (item(tok, n, ctx) != 0)
            return -1;
        n++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *count = n;
    return 0;
}

static int lr_item(const char *tok, size_t i, void *ctx)
{
    return parse_num(tok, &((toy_options *)ctx)->lrs[i]);
}

static int d_item(const char *tok, size_t i, void *ctx)
{
    return toy_parse_count(tok, &((toy_options *)ctx)->ds[i]);
}

static int parse_lr_list(const char *s, toy_options *o)
{
    return parse_list(s, TOY_MAX_LRS, lr_item, o, &o->n_lrs);
}

static int parse_d_list(const char *s, toy_options *o)
{
    return parse_list(s, TOY_MAX_DS, d_item, o, &o->n_ds);
}

static void set_defaults(toy_options *o)
{
    memset(o, 0, sizeof *o);
    o->kind = INTDIM_PROJ_FASTFOOD;
    o->strategy = INTDIM_STRATEGY_GRID;
    o->seeds = 3;
    o->d_min = 2;
    o->d_max = 1000;
    o->n_d = 40;
    o->lrs[0] = 1.0;
    o->lrs[1] = 0.3;
    o->lrs[2] = 0.1;
    o->n_lrs = 3;
    o->steps = 1000;
    o->toy_seed = 1;
    o->fraction = 0.9;
    o->baseline = NAN;
    o->bootstrap = 100;
}

static int parse_one(toy_options *o, const char *opt, const char *val)
{
    size_t n;
    if (strcmp(opt, "--kind") == 0) {
        if (strcmp(val, "dense") == 0)
            o->kind = INTDIM_PROJ_DENSE;
        else if (strcmp(val, "sparse") == 0)
            o->kind = INTDIM_PROJ_SPARSE;
        else if (strcmp(val, "fastfood") == 0)
            o->kind = INTDIM_PROJ_FASTFOOD;
        else
            return -1;
    } else if (strcmp(opt, "--strategy") == 0) {
        if (strcmp(val, "grid") == 0)
            o->strategy = INTDIM_STRATEGY_GRID;
        else if (strcmp(val, "adaptive") == 0)
            o->strategy = INTDIM_STRATEGY_ADAPTIVE;
        else
            return -1;
    } else if (strcmp(opt, "--block") == 0) {
        return toy_parse_count(val, &o->block);
    } else if (strcmp(opt, "--seeds") == 0) {
        return toy_parse_count(val, &o->seeds);
    } else if (strcmp(opt, "--lrs") == 0) {
        return parse_lr_list(val, o);
    } else if (strcmp(opt, "--d-min") == 0) {
        return toy_parse_count(val, &o->d_min);
    } else if (strcmp(opt, "--d-max") == 0) {
        return toy_parse_count(val, &o->d_max);
    } else if (strcmp(opt, "--n-d") == 0) {
        return toy_parse_count(val, &o->n_d);
    } else if (strcmp(opt, "--d-list") == 0) {
        return parse_d_list(val, o);
    } else if (strcmp(opt, "--steps") == 0) {
        if (toy_parse_count(val, &n) != 0 || n == 0) /* cosine decay needs at least one step */
            return -1;
        o->steps = n;
    } else if (strcmp(opt, "--fraction") == 0) {
        return parse_num(val, &o->fraction);
    } else if (strcmp(opt, "--baseline") == 0) {
        return parse_num(val, &o->baseline);
    } else if (strcmp(opt, "--base-seed") == 0) {
        if (toy_parse_count(val, &n) != 0)
            return -1;
        o->base_seed = n;
    } else if (strcmp(opt, "--toy-seed") == 0) { /* the problem's own: any 64-bit seed */
        unsigned long long seed;
        if (parse_digits(val, UINT64_MAX, &seed) != 0)
            return -1;
        o->toy_seed = seed;
    } else if (strcmp(opt, "--bootstrap") == 0) {
        return toy_parse_count(val, &o->bootstrap);
    } else if (strcmp(opt, "--journal") == 0) {
        if (val[0] == '\0')
            return -1;
        o->journal = val;
    } else if (strcmp(opt, "--shard") == 0) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", val);
        char *slash = strchr(buf, '/');
        if (slash == NULL)
            return -1;
        *slash = '\0';
        if (toy_parse_count(buf, &o->shard_index) != 0 ||
            toy_parse_count(slash + 1, &o->shard_count) != 0 || o->shard_count == 0 ||
            o->shard_index >= o->shard_count)
            return -1;
    } else {
        return -2;
    }
    return 0;
}

static int create_search(const toy_options *o, intdim_search **out, const char **option);

/* fprintf to err, or nothing when err is NULL (the MPI driver's other ranks). */
static void report(FILE *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(err, fmt, ap);
    va_end(ap);
}

int toy_options_parse_to(toy_options *o, int argc, char **argv, int first, FILE *err)
{
    set_defaults(o);
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--said") == 0) {
            o->said = 1;
            continue;
        }
        if (strcmp(argv[i], "--quiet") == 0) {
            o->quiet = 1;
            continue;
        }
        if (i + 1 >= argc) {
            toy_options scratch = *o; /* only to ask whether the name is known */
            if (parse_one(&scratch, argv[i], "") == -2)
                report(err, "intdim: unknown option %s\n", argv[i]);
            else
                report(err, "intdim: option %s needs a value\n", argv[i]);
            return -1;
        }
        int rc = parse_one(o, argv[i], argv[i + 1]);
        if (rc == -2) {
            report(err, "intdim: unknown option %s\n", argv[i]);
            return -1;
        }
        if (rc != 0) {
            report(err, "intdim: bad value '%s' for %s\n", argv[i + 1], argv[i]);
            return -1;
        }
        i++;
    }
    /* SAID spends one coordinate per group on its scales: start the grid just above them. */
    int d_min_given = 0;
    for (int i = first; i < argc; i++)
        d_min_given |= strcmp(argv[i], "--d-min") == 0;
    if (o->said && !d_min_given)
        o->d_min = TOY_GROUPS + 1;
    if (o->shard_count > 0 && o->strategy != INTDIM_STRATEGY_GRID) {
        report(err, "intdim: --shard needs --strategy grid (adaptive trials depend on each "
                        "other's results)\n");
        return -1;
    }
    if (o->shard_count > 0 && o->journal == NULL) {
        report(err, "intdim: --shard needs --journal (each shard writes its own)\n");
        return -1;
    }
    /* values the library refuses (out of range, an lr the trainer cannot take) are bad
     * options too: said here, before anything runs */
    intdim_search *probe;
    const char *option = NULL;
    int rc = create_search(o, &probe, &option);
    if (rc == INTDIM_EINVAL && option != NULL) {
        report(err, "intdim: bad value for %s: %s\n", option, intdim_last_error());
        return -1;
    }
    if (rc != INTDIM_OK)
        return 0; /* not the options' fault (memory): creating the search again will say */
    /* values each fine alone but not together (an empty d grid, SAID's d not above the
     * groups) are refused when the plan is made, at the first ask: make it here */
    int what, kind, said;
    uint64_t id, seed;
    size_t d;
    double lr;
    rc = intdim_search_ask(probe, &what, &id, &d, &kind, &said, &lr, &seed);
    if (rc == INTDIM_EINVAL)
        report(err, "intdim: these options do not make a search: %s\n", intdim_last_error());
    intdim_search_destroy(probe);
    return rc == INTDIM_EINVAL ? -1 : 0;
}

int toy_options_parse(toy_options *o, int argc, char **argv, int first)
{
    return toy_options_parse_to(o, argc, argv, first, stderr);
}

int toy_fail(const char *what, int status)
{
    fprintf(stderr, "intdim: %s: %s: %s\n", what, intdim_strerror(status), intdim_last_error());
    return 1;
}

/* The search the options describe; *option (when not NULL) names the option whose value
 * the library refused. */
static int create_search(const toy_options *o, intdim_search **out, const char **option)
{
    intdim_search *s;
    int rc = intdim_search_create(&s, TOY_D);
    if (rc != INTDIM_OK)
        return rc;
    const char *at = NULL;
    const struct {
        int param;
        double value;
        const char *option;
    } settings[] = {
        {INTDIM_SEARCH_STRATEGY, o->strategy, "--strategy"},
        {INTDIM_SEARCH_FRACTION, o->fraction, "--fraction"},
        {INTDIM_SEARCH_BASELINE, o->baseline, "--baseline"},
        {INTDIM_SEARCH_SEEDS, (double)o->seeds, "--seeds"},
        {INTDIM_SEARCH_D_MIN, (double)o->d_min, "--d-min"},
        {INTDIM_SEARCH_D_MAX, (double)o->d_max, "--d-max"},
        {INTDIM_SEARCH_N_D, (double)o->n_d, "--n-d"},
        {INTDIM_SEARCH_KIND, o->kind, "--kind"},
        {INTDIM_SEARCH_SAID, o->said, "--said"},
        {INTDIM_SEARCH_BASE_SEED, (double)o->base_seed, "--base-seed"},
        {INTDIM_SEARCH_BOOTSTRAP, (double)o->bootstrap, "--bootstrap"},
        {INTDIM_SEARCH_STEPS, (double)o->steps, "--steps"},
        {INTDIM_SEARCH_FASTFOOD_BLOCK, (double)o->block, "--block"},
    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0] && rc == INTDIM_OK; i++) {
        rc = intdim_search_set(s, settings[i].param, settings[i].value);
        at = settings[i].option;
    }
    /* the problem is part of what the journal must match: a journal of toy seed 1 resumed
     * with --toy-seed 7 would mix two problems' trials */
    char label[48];
    snprintf(label, sizeof label, "toy:seed=%llu", (unsigned long long)o->toy_seed);
    if (rc == INTDIM_OK) {
        rc = intdim_search_set_label(s, label);
        at = "--toy-seed";
    }
    if (rc == INTDIM_OK && o->n_ds > 0) {
        rc = intdim_search_set_d_list(s, o->ds, o->n_ds);
        at = "--d-list";
    }
    if (rc == INTDIM_OK) {
        rc = intdim_search_set_lrs(s, o->lrs, o->n_lrs);
        at = "--lrs";
    }
    if (rc == INTDIM_OK && o->said) {
        at = "--said";
        size_t groups[TOY_GROUPS];
        for (int g = 0; g < TOY_GROUPS; g++)
            groups[g] = TOY_GROUP_SIZE;
        rc = intdim_search_set_groups(s, groups, TOY_GROUPS);
    }
    /* Adam (the trainer's default) with cosine decay: the decay lets trials settle within
     * the toy's 1e-3 tolerance instead of oscillating around the solution. */
    if (rc == INTDIM_OK) {
        rc = intdim_search_set_train_param(s, INTDIM_TRAIN_SCHEDULE, INTDIM_SCHED_COSINE);
        at = "the learning-rate schedule";
    }
    if (rc != INTDIM_OK) {
        if (option != NULL)
            *option = at;
        intdim_search_destroy(s);
        return rc;
    }
    *out = s;
    return INTDIM_OK;
}

int toy_search_create(const toy_options *o, intdim_search **out)
{
    return create_search(o, out, NULL);
}

void toy_host_init(toy_host *h, const toy_options *o)
{
    toy_init(&h->problem, o->toy_seed);
    toy_theta0(o->toy_seed + 1, h->theta0);
    memcpy(h->theta, h->theta0, sizeof h->theta);
}

int toy_run_trial(const intdim_search *s, toy_host *h, size_t d, int kind, int said, double lr,
                  uint64_t seed, double *train, double *eval, uint64_t *steps, double *seconds,
                  int *trial_status)
{
    return intdim_search_run_trial(s, h->theta, h->theta0, toy_grad, toy_eval_neg_loss, toy_eval,
                                   &h->problem, d, kind, said, lr, seed, train, eval, steps,
                                   seconds, trial_status);
}

static const char *kind_name(double kind, double said)
{
    if (said != 0)
        return kind == INTDIM_PROJ_DENSE ? "SAID over dense" : kind == INTDIM_PROJ_SPARSE
               ? "SAID over sparse" : "SAID over fastfood";
    return kind == INTDIM_PROJ_DENSE ? "dense" : kind == INTDIM_PROJ_SPARSE ? "sparse" : "fastfood";
}

int toy_print_report(const intdim_search *s, FILE *out)
{
    size_t n = intdim_search_n_points(s);
    double strategy = 0, kind = 0, said = 0, seeds_per = 1, steps = 0, block = 0;
    intdim_search_get(s, INTDIM_SEARCH_STRATEGY, &strategy);
    intdim_search_get(s, INTDIM_SEARCH_KIND, &kind);
    intdim_search_get(s, INTDIM_SEARCH_SAID, &said);
    intdim_search_get(s, INTDIM_SEARCH_SEEDS, &seeds_per);
    intdim_search_get(s, INTDIM_SEARCH_STEPS, &steps);
    intdim_search_get(s, INTDIM_SEARCH_FASTFOOD_BLOCK, &block);
    char blocks[48] = "";
    if (block > 0 && kind == INTDIM_PROJ_FASTFOOD)
        snprintf(blocks, sizeof blocks, " (blocks of %.0f rows)", block);
    fprintf(out, "d90 search: %s strategy, %s projection%s, %.0f seed(s) per (d, lr), %.0f steps "
                 "per trial\n", strategy == INTDIM_STRATEGY_ADAPTIVE ? "adaptive" : "grid",
            kind_name(kind, said), blocks, seeds_per, steps);
    fprintf(out, "%8s  %9s  %10s   %8s  %5s  %s\n", "d", "best lr", "mean", "spread", "seeds",
            "pass");
    for (size_t i = 0; i < n; i++) {
        size_t d, seeds;
        double lr, mean, spread;
        int pass;
        int rc = intdim_search_point(s, i, &d, &lr, &mean, &spread, &seeds, &pass);
        if (rc != INTDIM_OK)
            return rc;
        fprintf(out, "%8zu  %9.3g  %10.4f ± %8.4f  %5zu  %s\n", d, lr, mean, spread, seeds,
                pass ? "yes" : "no");
    }
    size_t d90, lo, hi;
    int reached;
    double baseline, fraction = 0.9;
    intdim_search_get(s, INTDIM_SEARCH_FRACTION, &fraction);
    intdim_clear_error();
    int rc = intdim_search_result(s, &d90, &reached, &baseline, &lo, &hi);
    if (rc == INTDIM_ESTATE && strstr(intdim_last_error(), "failed") != NULL) {
        /* every baseline trial diverged: nothing to measure against, and nothing to wait for */
        fprintf(out, "baseline (full training): every trial failed (diverged), trials %zu\n",
                intdim_search_trials_done(s));
        fprintf(out, "d90 = unknown (no baseline: try smaller learning rates, or give "
                     "--baseline)\n");
        return INTDIM_OK;
    }
    if (rc == INTDIM_ESTATE) { /* a shard or an interrupted run: report what is there */
        fprintf(out, "baseline (full training) not known yet, trials %zu\n",
                intdim_search_trials_done(s));
        fprintf(out, "d90 = unknown (the baseline's trials have not all finished)\n");
        return INTDIM_OK;
    }
    if (rc != INTDIM_OK)
        return rc;
    if (strncmp(intdim_last_error(), "warning: ", 9) == 0) /* e.g. a negative baseline */
        fprintf(stderr, "intdim: %s\n", intdim_last_error());
    double given = NAN;
    intdim_search_get(s, INTDIM_SEARCH_BASELINE, &given);
    fprintf(out, "baseline (%s) %.4f, threshold %.4g x baseline = %.4f, trials %zu\n",
            isnan(given) ? "full training" : "given", baseline, fraction, fraction * baseline,
            intdim_search_trials_done(s));
    double seeds = 1, resamples = 0;
    intdim_search_get(s, INTDIM_SEARCH_SEEDS, &seeds);
    intdim_search_get(s, INTDIM_SEARCH_BOOTSTRAP, &resamples);
    if (reached && seeds > 1 && resamples > 0) {
        /* a resample that never passes gives 0: the upper end is then "not reached" */
        char hi_text[32] = "not reached";
        if (hi != 0)
            snprintf(hi_text, sizeof hi_text, "%zu", hi);
        fprintf(out, "bootstrap over seeds, 5%%..95%%: d90 in %zu..%s\n", lo, hi_text);
    }
    if (reached)
        fprintf(out, "d90 = %zu\n", d90);
    else
        fprintf(out, "d90 = not reached\n");
    return INTDIM_OK;
}
