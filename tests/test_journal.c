/* The search journal: round trip, resume, torn last line, corrupt and mismatched rows and
 * headers, the d90 rule on hand-written rows, merge of journals written separately, and
 * allocation failures. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fail_alloc.h"
#include "search_impl.h"


static char g_dir[256];

static void make_dir(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/intdim_journal_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
}

static void remove_dir(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *path_in_dir(const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", g_dir, name);
    return buf;
}

static const size_t DS[] = {2, 4, 8, 16, 32};
static const double LRS[] = {0.01, 0.1};

static intdim_search *configured(size_t seeds)
{
    intdim_search *s;
    ck_assert_int_eq(intdim_search_create(&s, 64), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set_d_list(s, DS, 5), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set_lrs(s, LRS, 2), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_SEEDS, (double)seeds), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set_train_param(s, INTDIM_TRAIN_CLIP_NORM, 1.5), INTDIM_OK);
    return s; /* baseline measured: IDENTITY trials come first */
}

/* A metric that depends on (d, lr, seed index): rises with d, lr 0.1 better. */
static double metric(size_t d, int kind, double lr, uint64_t id, size_t seeds)
{
    if (kind == INTDIM_PROJ_IDENTITY)
        return 0.9 + 0.01 * (double)(id % seeds);
    return (lr == 0.1 ? 1.0 : 0.8) * (1.0 - 2.0 / (double)d) + 0.01 * (double)(id % seeds);
}

/* Ask/tell up to `limit` trials (all if 0). Returns the number told. */
static size_t run_some(intdim_search *s, size_t seeds, size_t limit)
{
    size_t told = 0;
    while (limit == 0 || told < limit) {
        int what, kind, said;
        uint64_t id, seed;
        size_t d;
        double lr;
        ck_assert_int_eq(intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed),
                         INTDIM_OK);
        if (what == INTDIM_ASK_DONE)
            break;
        ck_assert_int_eq(what, INTDIM_ASK_TRIAL);
        ck_assert_int_eq(intdim_search_tell(s, id, -0.5, metric(d, kind, lr, id, seeds), 7, 0.25,
                                            INTDIM_OK), INTDIM_OK);
        told++;
    }
    return told;
}

typedef struct outcome {
    size_t d90, lo, hi, trials;
    int reached;
    double baseline;
} outcome;

static outcome outcome_of(const intdim_search *s)
{
    outcome o;
    ck_assert_int_eq(intdim_search_result(s, &o.d90, &o.reached, &o.baseline, &o.lo, &o.hi),
                     INTDIM_OK);
    o.trials = intdim_search_trials_done(s);
    return o;
}

static void assert_same(outcome a, outcome b)
{
    ck_assert_uint_eq(a.d90, b.d90);
    ck_assert_int_eq(a.reached, b.reached);
    ck_assert_uint_eq(a.lo, b.lo);
    ck_assert_uint_eq(a.hi, b.hi);
    ck_assert_uint_eq(a.trials, b.trials);
    ck_assert(a.baseline == b.baseline);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

static void spit(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, n, f), n);
    fclose(f);
}

static void append_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "ab");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* A complete journal of the reference run, and its outcome. */
static outcome full_run(const char *path, size_t seeds)
{
    intdim_search *s = configured(seeds);
    if (path != NULL)
        ck_assert_int_eq(intdim_search_open_journal(s, path), INTDIM_OK);
    run_some(s, seeds, 0);
    outcome o = outcome_of(s);
    intdim_search_destroy(s);
    return o;
}

START_TEST(round_trip_rebuilds_the_search)
{
    make_dir();
    char p[512];
    path_in_dir("a.journal", p, sizeof p);
    outcome live = full_run(p, 3);
    ck_assert_uint_eq(live.trials, 3 * 2 * 6);
    intdim_search *r;
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_OK);
    assert_same(outcome_of(r), live);
    double v;
    ck_assert_int_eq(intdim_search_get(r, INTDIM_SEARCH_SEEDS, &v), INTDIM_OK);
    ck_assert_double_eq(v, 3);
    ck_assert_uint_eq(intdim_search_D(r), 64); /* from the header: what run() needs */
    ck_assert_int_eq(intdim_search_complete(r), 1);
    ck_assert_int_eq(intdim_search_complete(NULL), 0);
    ck_assert_uint_eq(intdim_search_D(NULL), 0);
    ck_assert_uint_eq(r->n_grid, 5);
    ck_assert_int_eq(r->train_set[INTDIM_TRAIN_CLIP_NORM], 1);
    ck_assert_double_eq(r->train_value[INTDIM_TRAIN_CLIP_NORM], 1.5);
    ck_assert_uint_eq(intdim_search_n_points(r), 5);
    const search_trial *t = &r->trials[7];
    ck_assert_double_eq(t->train_metric, -0.5);
    ck_assert_uint_eq(t->steps, 7);
    ck_assert_double_eq(t->seconds, 0.25);
    /* One header, then one row per trial, each ending in its 8-hex-digit checksum. */
    char *text = slurp(p, NULL);
    ck_assert(strncmp(text, "intdim-journal 1\n", 17) == 0);
    size_t rows = 0;
    for (char *line = strstr(text, "\nT "); line != NULL; line = strstr(line + 1, "\nT "))
        rows++;
    ck_assert_uint_eq(rows, live.trials);
    intdim_search_destroy(r);
    remove_dir();
}
END_TEST

START_TEST(resume_skips_finished_trials)
{
    make_dir();
    char p[512];
    path_in_dir("r.journal", p, sizeof p);
    outcome reference = full_run(NULL, 2);
    intdim_search *s = configured(2);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_OK);
    ck_assert_uint_eq(run_some(s, 2, 9), 9);
    ck_assert_int_eq(intdim_search_complete(s), 0);
    intdim_search_destroy(s); /* "crash" */
    s = configured(2);
    ck_assert_int_eq(intdim_search_complete(s), 0); /* not even frozen */
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_OK);
    ck_assert_uint_eq(intdim_search_trials_done(s), 9);
    ck_assert_int_eq(intdim_search_complete(s), 0);
    /* Every further ask is a trial the journal does not hold. */
    size_t rest = run_some(s, 2, 0);
    ck_assert_uint_eq(rest, reference.trials - 9);
    ck_assert_int_eq(intdim_search_complete(s), 1);
    assert_same(outcome_of(s), reference);
    intdim_search_destroy(s);
    intdim_search *r;
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_OK);
    assert_same(outcome_of(r), reference);
    intdim_search_destroy(r);
    remove_dir();
}
END_TEST

START_TEST(torn_last_line_is_dropped_with_a_warning)
{
    make_dir();
    char p[512];
    path_in_dir("t.journal", p, sizeof p);
    intdim_search *s = configured(1);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_OK);
    run_some(s, 1, 5);
    intdim_search_destroy(s);
    size_t before;
    slurp(p, &before);
    append_text(p, "T 5 64 0 0 0.1 1234"); /* killed mid-write: no newline */
    intdim_search *r;
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_OK);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "torn"));
    ck_assert_uint_eq(intdim_search_trials_done(r), 5);
    intdim_search_destroy(r);
    s = configured(1);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_OK);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "torn"));
    ck_assert_uint_eq(intdim_search_trials_done(s), 5);
    size_t after;
    slurp(p, &after);
    ck_assert_uint_eq(after, before); /* the fragment is gone before anything is appended */
    run_some(s, 1, 0);
    intdim_search_destroy(s);
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_OK);
    ck_assert_uint_eq(intdim_search_trials_done(r), 12);
    intdim_search_destroy(r);
    remove_dir();
}
END_TEST

/* Replace the first occurrence of `from` after the header with `to` (same length). */
static void corrupt(const char *path, const char *from, const char *to)
{
    size_t n;
    char *text = slurp(path, &n);
    char *rows = strstr(text, "\nT ");
    ck_assert_ptr_nonnull(rows);
    char *at = strstr(rows, from);
    ck_assert_ptr_nonnull(at);
    memcpy(at, to, strlen(to));
    spit(path, text, n);
}

START_TEST(corrupt_rows_are_refused)
{
    make_dir();
    char p[512];
    path_in_dir("c.journal", p, sizeof p);
    full_run(p, 1);
    size_t n;
    char saved[1 << 16];
    char *text = slurp(p, &n);
    memcpy(saved, text, n);

    corrupt(p, " 7 0.25 ", " 8 0.25 "); /* a changed digit: the row checksum catches it */
    intdim_search *r = NULL;
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_EFORMAT);
    ck_assert_ptr_null(r);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "checksum"));
    intdim_search *s = configured(1);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_EFORMAT);
    ck_assert_uint_eq(intdim_search_trials_done(s), 0);
    intdim_search_destroy(s);

    spit(p, saved, n);
    corrupt(p, "\nT ", "\nX "); /* damage the first row's tag (also breaks its checksum) */
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_EFORMAT);

    spit(p, saved, n);
    append_text(p, "garbage line\n"); /* complete but malformed last line */
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_EFORMAT);
    remove_dir();
}
END_TEST

/* Write one row by hand with the journal's documented layout and a correct checksum. */
static void hand_row(const char *path, uint64_t id, size_t d, int kind, const char *lr,
                     uint64_t seed, const char *eval, int status)
{
    char row[512];
    int n = snprintf(row, sizeof row, "T %llu %zu %d 0 %s %llu nan %s 10 0.5 %d",
                     (unsigned long long)id, d, kind, lr, (unsigned long long)seed, eval, status);
    snprintf(row + n, sizeof row - (size_t)n, " %08x\n",
             (unsigned)intdim__crc32(0, row, (size_t)n));
    append_text(path, row);
}

/* The header of configured(seeds) with no rows, and the plan's seeds. */
static intdim_search *header_only(const char *path, size_t seeds)
{
    intdim_search *s = configured(seeds);
    ck_assert_int_eq(intdim_search_open_journal(s, path), INTDIM_OK);
    return s;
}

START_TEST(rule_on_hand_written_rows)
{
    make_dir();
    char p[512];
    path_in_dir("h.journal", p, sizeof p);
    intdim_search *plan = header_only(p, 2);
    /* ids: (point * 2 lrs + lr) * 2 seeds + seed; point 0 = baseline, points 1..5 = DS.
     * Baseline: lr 0.01 mean 0.8, lr 0.1 mean 0.9 (best) -> threshold 0.81. */
    const char *vals[6][2][2] = {
        {{"0.8", "0.8"}, {"0.85", "0.95"}},
        {{"0.1", "0.2"}, {"0.3", "0.2"}},     /* d = 2 */
        {{"0.8", "0.8"}, {"0.5", "0.5"}},     /* d = 4 */
        {{"1.0", "0.6"}, {"0.5", "0.5"}},     /* d = 8: one seed 1.0, mean 0.8 -> fail */
        {{"0.9", "0.8"}, {"0.7", "-inf"}},    /* d = 16: lr 0.01 mean 0.85 passes */
        {{"0.95", "0.95"}, {"0.95", "0.95"}}, /* d = 32 */
    };
    for (size_t point = 0; point < 6; point++)
        for (size_t j = 0; j < 2; j++)
            for (size_t k = 0; k < 2; k++) {
                uint64_t id = (point * 2 + j) * 2 + k;
                const search_trial *t = &plan->trials[id];
                int failed = strcmp(vals[point][j][k], "-inf") == 0;
                hand_row(p, id, t->d, t->kind, j == 0 ? "0.01" : "0.10000000000000001", t->seed,
                         vals[point][j][k], failed ? INTDIM_ENONFINITE : INTDIM_OK);
            }
    intdim_search_destroy(plan);
    intdim_search *r;
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_OK);
    outcome o = outcome_of(r);
    ck_assert_double_eq_tol(o.baseline, 0.9, 1e-12);
    ck_assert_int_eq(o.reached, 1);
    ck_assert_uint_eq(o.d90, 16);
    double lr, mean;
    int pass;
    ck_assert_int_eq(intdim_search_point(r, 3, NULL, &lr, &mean, NULL, NULL, &pass), INTDIM_OK);
    ck_assert_double_eq(lr, 0.01); /* lr 0.1 failed one seed: mean -inf */
    ck_assert_double_eq_tol(mean, 0.85, 1e-12);
    ck_assert_int_eq(pass, 1);
    intdim_search_destroy(r);
    remove_dir();
}
END_TEST

/* Given baseline 1.0 (no baseline rows), one seed: rows[point-1][lr] as text. */
static intdim_search *hand_journal(const char *path, const char *const rows[5][2])
{
    unlink(path);
    intdim_search *plan = configured(1);
    ck_assert_int_eq(intdim_search_set(plan, INTDIM_SEARCH_BASELINE, 1.0), INTDIM_OK);
    ck_assert_int_eq(intdim_search_open_journal(plan, path), INTDIM_OK);
    for (size_t point = 1; point <= 5; point++)
        for (size_t j = 0; j < 2; j++) {
            uint64_t id = point * 2 + j;
            const search_trial *t = &plan->trials[id];
            hand_row(path, id, t->d, t->kind, j == 0 ? "0.01" : "0.10000000000000001", t->seed,
                     rows[point - 1][j], INTDIM_OK);
        }
    intdim_search_destroy(plan);
    intdim_search *r;
    ck_assert_int_eq(intdim_search_from_journal(&r, path), INTDIM_OK);
    return r;
}

START_TEST(rule_on_hand_written_rows_strict_ties_not_reached)
{
    make_dir();
    char p[512];
    path_in_dir("s.journal", p, sizeof p);
    /* d = 4 sits exactly on 0.9 x 1.0 and fails; d = 8 ties between the lrs and passes. */
    const char *const strict[5][2] = {
        {"0.5", "0.5"}, {"0.9", "0.9"}, {"0.95", "0.95"}, {"0.97", "0.99"}, {"1", "1"}};
    intdim_search *r = hand_journal(p, strict);
    outcome o = outcome_of(r);
    ck_assert_int_eq(o.reached, 1);
    ck_assert_uint_eq(o.d90, 8);
    double lr;
    int pass;
    ck_assert_int_eq(intdim_search_point(r, 1, NULL, NULL, NULL, NULL, NULL, &pass), INTDIM_OK);
    ck_assert_int_eq(pass, 0);
    ck_assert_int_eq(intdim_search_point(r, 2, NULL, &lr, NULL, NULL, NULL, &pass), INTDIM_OK);
    ck_assert_double_eq(lr, 0.01); /* a tie goes to the lr listed first */
    ck_assert_int_eq(pass, 1);
    ck_assert_int_eq(intdim_search_point(r, 3, NULL, &lr, NULL, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_double_eq(lr, 0.1);
    intdim_search_destroy(r);
    /* Nothing strictly above 0.9: "not reached", not the last d. */
    const char *const below[5][2] = {
        {"0.1", "0.2"}, {"0.3", "0.2"}, {"0.6", "0.5"}, {"0.8", "0.85"}, {"0.9", "0.89"}};
    r = hand_journal(p, below);
    o = outcome_of(r);
    ck_assert_int_eq(o.reached, 0);
    ck_assert_uint_eq(o.d90, 0);
    ck_assert_uint_eq(o.lo, 0);
    ck_assert_uint_eq(o.hi, 0);
    intdim_search_destroy(r);
    remove_dir();
}
END_TEST

START_TEST(mismatched_rows_and_headers_are_refused)
{
    make_dir();
    char p[512];
    path_in_dir("m.journal", p, sizeof p);
    intdim_search *plan = header_only(p, 1);
    const search_trial *t = &plan->trials[2];
    hand_row(p, 2, t->d, t->kind, "0.5", t->seed, "0.7", 0); /* lr 0.5 is not trial 2's */
    intdim_search *r;
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_EMISMATCH);
    intdim_search_destroy(plan);

    unlink(p);
    plan = header_only(p, 1);
    hand_row(p, 99999, 4, 3, "0.01", 1, "0.7", 0); /* an id outside the plan */
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_EMISMATCH);
    intdim_search_destroy(plan);

    unlink(p);
    plan = header_only(p, 1);
    t = &plan->trials[3];
    hand_row(p, 3, t->d, t->kind, "0.10000000000000001", t->seed, "0.7", 3); /* bad status */
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_EFORMAT);
    intdim_search_destroy(plan);

    /* A journal of another configuration: the header differs. */
    unlink(p);
    full_run(p, 1);
    intdim_search *other = configured(2);
    ck_assert_int_eq(intdim_search_open_journal(other, p), INTDIM_EMISMATCH);
    ck_assert_msg(strstr(intdim_last_error(), "has 'seeds=1' where this search has 'seeds=2'") != NULL,
                  "%s", intdim_last_error());
    intdim_search_destroy(other);

    /* A damaged header: its checksum no longer matches. */
    size_t n;
    char *text = slurp(p, &n);
    text[30] = text[30] == '1' ? '2' : '1';
    spit(p, text, n);
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_EFORMAT);

    spit(p, "hello\nworld\n", 12);
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_EFORMAT);
    spit(p, "intdim-journal 2\n", 17);
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_EFORMAT);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "version"));
    ck_assert_int_eq(intdim_search_from_journal(&r, "/nonexistent/dir/x"), INTDIM_EIO);
    remove_dir();
}
END_TEST

/* INTDIM_SEARCH_FASTFOOD_BLOCK is part of the configuration: written to the header only
 * when set (one-block journals keep their line), read back, and a search with another
 * block refuses the journal. */
START_TEST(fastfood_block_is_in_the_header)
{
    make_dir();
    char p[512], q[512];
    path_in_dir("b.journal", p, sizeof p);
    path_in_dir("n.journal", q, sizeof q);
    intdim_search *s = configured(1);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_FASTFOOD_BLOCK, 16), INTDIM_OK);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_OK);
    run_some(s, 1, 3);
    intdim_search_destroy(s);
    ck_assert(strstr(slurp(p, NULL), " steps=1000 block=16\n") != NULL);
    intdim_search *r;
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_OK);
    double v = 0;
    ck_assert_int_eq(intdim_search_get(r, INTDIM_SEARCH_FASTFOOD_BLOCK, &v), INTDIM_OK);
    ck_assert_double_eq(v, 16);
    ck_assert_uint_eq(intdim_search_trials_done(r), 3);
    intdim_search_destroy(r);
    s = configured(1);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_FASTFOOD_BLOCK, 32), INTDIM_OK);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_EMISMATCH);
    intdim_search_destroy(s);
    s = configured(1);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_EMISMATCH);
    /* a word only one side has is shown against "(nothing)" */
    ck_assert_msg(strstr(intdim_last_error(), "has 'block=16' where this search has "
                                              "'(nothing)'") != NULL,
                  "%s", intdim_last_error());
    intdim_search_destroy(s);
    /* the default writes no block key at all */
    s = configured(1);
    ck_assert_int_eq(intdim_search_open_journal(s, q), INTDIM_OK);
    intdim_search_destroy(s);
    ck_assert(strstr(slurp(q, NULL), "block=") == NULL);
    remove_dir();
}
END_TEST

/* A search whose plan is already frozen (here rebuilt from a header-only journal) and whose
 * open_journal fails in the middle of the replay (valid rows, then a corrupt one) keeps none
 * of the replayed rows: nothing counts as done, the next journal opens, the first trial is
 * asked again. */
START_TEST(failed_open_of_a_frozen_search_keeps_no_rows)
{
    make_dir();
    char a[512], b[512], c[512];
    path_in_dir("fa.journal", a, sizeof a);
    path_in_dir("fb.journal", b, sizeof b);
    path_in_dir("fc.journal", c, sizeof c);
    intdim_search_destroy(header_only(a, 1));
    full_run(b, 1);
    FILE *f = fopen(b, "a");
    ck_assert_ptr_nonnull(f);
    fputs("T this row is not a row\n", f);
    fclose(f);
    intdim_search *r = NULL, *fresh = configured(1);
    ck_assert_int_eq(intdim_search_from_journal(&r, a), INTDIM_OK);
    ck_assert_uint_eq(intdim_search_trials_done(r), 0);
    ck_assert_int_eq(intdim_search_open_journal(r, b), INTDIM_EFORMAT);
    ck_assert_uint_eq(intdim_search_trials_done(r), 0);
    ck_assert_int_eq(intdim_search_open_journal(r, c), INTDIM_OK);
    int what, kind, said, fresh_kind;
    uint64_t id, seed, fresh_id;
    size_t d, fresh_d;
    double lr;
    ck_assert_int_eq(intdim_search_ask(r, &what, &id, &d, &kind, &said, &lr, &seed), INTDIM_OK);
    ck_assert_int_eq(intdim_search_ask(fresh, &what, &fresh_id, &fresh_d, &fresh_kind, &said,
                                       &lr, &seed),
                     INTDIM_OK);
    ck_assert_uint_eq(id, fresh_id); /* the plan's first trial, as for a search never opened */
    ck_assert_uint_eq(d, fresh_d);
    intdim_search_destroy(fresh);
    intdim_search_destroy(r);
    remove_dir();
}
END_TEST

START_TEST(open_journal_misuse)
{
    make_dir();
    char p[512];
    path_in_dir("o.journal", p, sizeof p);
    intdim_search *s = configured(1);
    ck_assert_int_eq(intdim_search_open_journal(NULL, p), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_open_journal(s, NULL), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_open_journal(s, "/nonexistent/dir/j"), INTDIM_EIO);
    /* a directory: EIO, and the message says why (errno's text) */
    ck_assert_int_eq(intdim_search_open_journal(s, "/tmp"), INTDIM_EIO);
    ck_assert_msg(strstr(intdim_last_error(), "directory") != NULL, "%s", intdim_last_error());
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_OK);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_ESTATE);
    intdim_search_destroy(s);
    s = configured(1);
    run_some(s, 1, 1);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_ESTATE); /* after an ask */
    intdim_search_destroy(s);
    /* An empty file (e.g. made by touch) is a new journal. */
    spit(p, "", 0);
    s = configured(1);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_OK);
    intdim_search_destroy(s);
    intdim_search *r;
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_OK);
    intdim_search_destroy(r);
    remove_dir();
}
END_TEST

static size_t count_rows(const char *path)
{
    size_t rows = 0;
    char *text = slurp(path, NULL);
    for (char *line = strstr(text, "\nT "); line != NULL; line = strstr(line + 1, "\nT "))
        rows++;
    return rows;
}

/* A tell whose fsync fails is EIO and leaves no row behind: the trial is still
 * outstanding, and telling it again (here with another result) gives a journal that
 * replays, resumes and merges, holding the second result. */
START_TEST(failed_fsync_takes_the_row_back)
{
    make_dir();
    char p[512], merged[512];
    path_in_dir("f.journal", p, sizeof p);
    path_in_dir("m.journal", merged, sizeof merged);
    intdim_search *s = configured(1);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_OK);
    int what, kind, said;
    uint64_t id, seed;
    size_t d;
    double lr;
    ck_assert_int_eq(intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed), INTDIM_OK);
    ck_assert_int_eq(what, INTDIM_ASK_TRIAL);
    g_fail_next_fsync = 1;
    ck_assert_int_eq(intdim_search_tell(s, id, -0.5, 0.25, 7, 0.5, INTDIM_OK), INTDIM_EIO);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "fsync"));
    ck_assert_int_eq(g_fail_next_fsync, 0); /* the failure really happened */
    ck_assert_uint_eq(count_rows(p), 0);
    ck_assert_uint_eq(intdim_search_trials_done(s), 0);
    ck_assert_int_eq(intdim_search_tell(s, id, -0.5, 0.75, 7, 0.5, INTDIM_OK), INTDIM_OK);
    ck_assert_uint_eq(count_rows(p), 1);
    intdim_search_destroy(s);

    intdim_search *r;
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_OK);
    ck_assert_uint_eq(intdim_search_trials_done(r), 1);
    ck_assert_double_eq(r->trials[id].eval_metric, 0.75);
    intdim_search_destroy(r);
    s = configured(1);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_OK);
    ck_assert_uint_eq(intdim_search_trials_done(s), 1);
    intdim_search_destroy(s);
    const char *inputs[] = {p};
    ck_assert_int_eq(intdim_journal_merge(inputs, 1, merged), INTDIM_OK);
    /* a merge whose output fails on the way leaves the previous output as it was */
    size_t n_before, n_after;
    char *text = slurp(merged, &n_before);
    char *before = malloc(n_before + 1);
    ck_assert_ptr_nonnull(before);
    memcpy(before, text, n_before + 1);
    s = configured(1); /* one more trial in the input: a different merge result */
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_OK);
    ck_assert_uint_eq(run_some(s, 1, 1), 1);
    intdim_search_destroy(s);
    g_fail_next_fsync = 1;
    ck_assert_int_eq(intdim_journal_merge(inputs, 1, merged), INTDIM_EIO);
    ck_assert_int_eq(g_fail_next_fsync, 0);
    text = slurp(merged, &n_after);
    ck_assert_uint_eq(n_after, n_before);
    ck_assert(memcmp(text, before, n_before) == 0);
    free(before);
    remove_dir();
}
END_TEST

/* A failed open_journal changes nothing: the plan can still be configured on the same
 * handle, and then opened. Once a journal is open, BOOTSTRAP (in its header) is fixed. */
START_TEST(failed_open_journal_leaves_the_plan_open)
{
    make_dir();
    char p[512];
    path_in_dir("b.journal", p, sizeof p);
    intdim_search *s = configured(1);
    ck_assert_int_eq(intdim_search_open_journal(s, "/nonexistent/dir/j"), INTDIM_EIO);
    ck_assert_int_eq(s->frozen, 0);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_SEEDS, 2), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_BOOTSTRAP, 50), INTDIM_OK);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_BOOTSTRAP, 60), INTDIM_ESTATE);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_PARALLEL, 4), INTDIM_OK);
    run_some(s, 2, 3);
    intdim_search_destroy(s);
    /* the same configuration resumes; the plan of the failed attempt (1 seed) does not */
    s = configured(2);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_BOOTSTRAP, 50), INTDIM_OK);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_OK);
    ck_assert_uint_eq(intdim_search_trials_done(s), 3);
    intdim_search_destroy(s);
    s = configured(1);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_BOOTSTRAP, 50), INTDIM_OK);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_EMISMATCH);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_SEEDS, 2), INTDIM_OK);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_OK);
    ck_assert_uint_eq(intdim_search_trials_done(s), 3);
    intdim_search_destroy(s);
    remove_dir();
}
END_TEST

/* Two "processes" run disjoint halves of the grid into their own journals; the merge is
 * the same search as one process running everything. */
static void run_half(const char *path, size_t half)
{
    intdim_search *s = configured(2);
    ck_assert_int_eq(intdim_search_open_journal(s, path), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_PARALLEL, 1000), INTDIM_OK);
    for (;;) {
        int what, kind, said;
        uint64_t id, seed;
        size_t d;
        double lr;
        ck_assert_int_eq(intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed), 0);
        if (what != INTDIM_ASK_TRIAL)
            break;
        if (id % 2 == half)
            ck_assert_int_eq(intdim_search_tell(s, id, -0.5, metric(d, kind, lr, id, 2), 7,
                                                0.25, INTDIM_OK), INTDIM_OK);
    }
    intdim_search_destroy(s);
}

START_TEST(merge_of_separate_journals)
{
    make_dir();
    char a[512], b[512], m[512], full[512], other[512];
    path_in_dir("a.journal", a, sizeof a);
    path_in_dir("b.journal", b, sizeof b);
    path_in_dir("m.journal", m, sizeof m);
    path_in_dir("full.journal", full, sizeof full);
    path_in_dir("other.journal", other, sizeof other);
    outcome reference = full_run(full, 2);
    run_half(a, 0);
    run_half(b, 1);
    intdim_search *r;
    ck_assert_int_eq(intdim_search_from_journal(&r, a), INTDIM_OK);
    ck_assert_uint_eq(intdim_search_trials_done(r), reference.trials / 2);
    ck_assert_int_eq(intdim_search_result(r, NULL, NULL, NULL, NULL, NULL), INTDIM_ESTATE);
    intdim_search_destroy(r);
    const char *inputs[] = {a, b};
    ck_assert_int_eq(intdim_journal_merge(inputs, 2, m), INTDIM_OK);
    ck_assert_int_eq(intdim_search_from_journal(&r, m), INTDIM_OK);
    assert_same(outcome_of(r), reference);
    intdim_search_destroy(r);
    /* Same rows as the single-process journal, byte for byte (rows sorted by id). */
    size_t n1, n2;
    char copy[1 << 16];
    char *merged = slurp(m, &n1);
    memcpy(copy, merged, n1);
    char *single = slurp(full, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert(memcmp(copy, single, n1) == 0);
    /* Overlapping inputs merge (identical rows once); a conflicting row keeps the first
     * input's and warns. */
    const char *overlap[] = {a, m, b};
    ck_assert_int_eq(intdim_journal_merge(overlap, 3, m), INTDIM_OK);
    ck_assert_int_eq(intdim_search_from_journal(&r, m), INTDIM_OK);
    assert_same(outcome_of(r), reference);
    intdim_search_destroy(r);
    intdim_search *plan = configured(2);
    ck_assert_int_eq(intdim__search_freeze(plan), INTDIM_OK);
    const search_trial *t = &plan->trials[1];
    path_in_dir("c.journal", other, sizeof other);
    intdim_search *c = configured(2);
    ck_assert_int_eq(intdim_search_open_journal(c, other), INTDIM_OK);
    intdim_search_destroy(c);
    hand_row(other, 1, t->d, t->kind, "0.01", t->seed, "0.123", 0);
    const char *conflict[] = {a, b, other};
    ck_assert_int_eq(intdim_journal_merge(conflict, 3, m), INTDIM_OK);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "warning"));
    ck_assert_int_eq(intdim_search_from_journal(&r, m), INTDIM_OK);
    ck_assert_double_ne(r->trials[1].eval_metric, 0.123);
    intdim_search_destroy(r);
    intdim_search_destroy(plan);
    /* A journal of another search cannot be merged. */
    intdim_search *s;
    ck_assert_int_eq(intdim_search_create(&s, 64), INTDIM_OK);
    path_in_dir("x.journal", other, sizeof other);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_D_MIN, 2), INTDIM_OK);
    ck_assert_int_eq(intdim_search_open_journal(s, other), INTDIM_OK);
    intdim_search_destroy(s);
    const char *mixed[] = {a, other};
    ck_assert_int_eq(intdim_journal_merge(mixed, 2, m), INTDIM_EMISMATCH);
    ck_assert_int_eq(intdim_journal_merge(NULL, 2, m), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_journal_merge(mixed, 0, m), INTDIM_EINVAL);
    remove_dir();
}
END_TEST

START_TEST(allocation_failures_in_journal_functions)
{
    make_dir();
    char a[512], b[512], m[512];
    path_in_dir("a.journal", a, sizeof a);
    path_in_dir("b.journal", b, sizeof b);
    path_in_dir("m.journal", m, sizeof m);
    run_half(a, 0);
    run_half(b, 1);
    int succeeded = 0;
    long failures = 0;
    for (long k = 1; k <= 500 && !succeeded; k++) {
        intdim_search *r = NULL, *s = configured(2);
        fail_alloc_install(k);
        const char *inputs[] = {a, b};
        int rc = intdim_journal_merge(inputs, 2, m);
        if (rc == INTDIM_OK)
            rc = intdim_search_from_journal(&r, m);
        if (rc == INTDIM_OK)
            rc = intdim_search_result(r, NULL, NULL, NULL, NULL, NULL);
        if (rc == INTDIM_OK)
            rc = intdim_search_open_journal(s, m);
        intdim_search_destroy(s);
        intdim_search_destroy(r);
        fail_alloc_remove();
        if (rc == INTDIM_OK) {
            succeeded = 1;
        } else {
            ck_assert_int_eq(rc, INTDIM_ENOMEM);
            failures++;
        }
    }
    ck_assert(succeeded);
    ck_assert(failures >= 5); /* failures were really injected */
    remove_dir();
}
END_TEST

static Suite *journal_suite(void)
{
    Suite *suite = suite_create("journal");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, round_trip_rebuilds_the_search);
    tcase_add_test(tc, resume_skips_finished_trials);
    tcase_add_test(tc, torn_last_line_is_dropped_with_a_warning);
    tcase_add_test(tc, corrupt_rows_are_refused);
    tcase_add_test(tc, rule_on_hand_written_rows);
    tcase_add_test(tc, rule_on_hand_written_rows_strict_ties_not_reached);
    tcase_add_test(tc, mismatched_rows_and_headers_are_refused);
    tcase_add_test(tc, fastfood_block_is_in_the_header);
    tcase_add_test(tc, failed_open_of_a_frozen_search_keeps_no_rows);
    tcase_add_test(tc, open_journal_misuse);
    tcase_add_test(tc, merge_of_separate_journals);
    tcase_add_test(tc, allocation_failures_in_journal_functions);
    tcase_add_test(tc, failed_fsync_takes_the_row_back);
    tcase_add_test(tc, failed_open_journal_leaves_the_plan_open);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(journal_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
