/* The search journal: round trip, resume, torn last line, corrupt and mismatched rows and
 * headers, the d90 rule on hand-written rows, merge of journals written separately, and
 * allocation failures. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fail_alloc.h"
#include "search_impl.h"
#include "test_threads.h"

/* Non-zero: the next open for appending fails with EACCES, as it does for a read-only file
 * (a test running as root, whom permissions do not stop, arms it). The library is linked in
 * statically and calls open64 (_FILE_OFFSET_BITS=64), which this definition interposes. */
static int g_fail_next_append_open;
/* Non-zero: the next open of a directory fails with EACCES, as for a directory its user may
 * write but not read (mode 0733), which a root test cannot meet otherwise. */
static int g_fail_next_dir_open;

int interposed_open64(const char *path, int flags, ...) __asm__("open64");
int interposed_open64(const char *path, int flags, ...)
{
    unsigned mode = 0;
    if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, unsigned);
        va_end(ap);
    }
    if (g_fail_next_append_open && (flags & O_APPEND) != 0) {
        g_fail_next_append_open = 0;
        errno = EACCES;
        return -1;
    }
    if (g_fail_next_dir_open && (flags & O_DIRECTORY) != 0) {
        g_fail_next_dir_open = 0;
        errno = EACCES;
        return -1;
    }
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}


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

/* The reference configuration without assertions (for allocation failures): its status,
 * *out NULL on failure. */
static int try_configured(size_t seeds, intdim_search **out)
{
    intdim_search *s = NULL;
    int rc = intdim_search_create(&s, 64);
    if (rc == INTDIM_OK)
        rc = intdim_search_set_d_list(s, DS, 5);
    if (rc == INTDIM_OK)
        rc = intdim_search_set_lrs(s, LRS, 2);
    if (rc == INTDIM_OK)
        rc = intdim_search_set(s, INTDIM_SEARCH_SEEDS, (double)seeds);
    if (rc == INTDIM_OK)
        rc = intdim_search_set_train_param(s, INTDIM_TRAIN_CLIP_NORM, 1.5);
    if (rc != INTDIM_OK) {
        intdim_search_destroy(s);
        s = NULL;
    }
    *out = s;
    return rc;
}

static intdim_search *configured(size_t seeds)
{
    intdim_search *s;
    int rc = try_configured(seeds, &s);
    ck_assert_msg(rc == INTDIM_OK, "configured: %s", intdim_last_error());
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

static size_t count_rows(const char *path);

/* A journal path that is a symbolic link to an empty file, or to nothing yet, gets its header
 * written into the file the link names (the link kept, as for a link to a journal with rows,
 * which is resumed through it); a FIFO or a directory is refused (EIO) and left as it was:
 * the header's atomic write would have renamed a file over the node itself. */
START_TEST(links_are_followed_and_special_files_refused)
{
    make_dir();
    char target[512], link_path[512], fifo[512], dangling[512], sub[512];
    path_in_dir("target.journal", target, sizeof target);
    path_in_dir("link.journal", link_path, sizeof link_path);
    path_in_dir("fifo.journal", fifo, sizeof fifo);
    path_in_dir("dangling.journal", dangling, sizeof dangling);
    path_in_dir("sub.journal", sub, sizeof sub);
    spit(target, "", 0);
    ck_assert_int_eq(symlink("target.journal", link_path), 0);
    intdim_search *s = configured(1);
    ck_assert_msg(intdim_search_open_journal(s, link_path) == INTDIM_OK, "%s",
                  intdim_last_error());
    size_t rows = run_some(s, 1, 3);
    intdim_search_destroy(s);
    struct stat st;
    ck_assert_int_eq(lstat(link_path, &st), 0);
    ck_assert_msg(S_ISLNK(st.st_mode), "the link was replaced");
    ck_assert_uint_eq(count_rows(target), rows); /* header and rows went to the target */
    s = configured(1); /* and it resumes through the link */
    ck_assert_int_eq(intdim_search_open_journal(s, link_path), INTDIM_OK);
    ck_assert_uint_eq(intdim_search_trials_done(s), rows);
    intdim_search_destroy(s);

    ck_assert_int_eq(symlink("missing.journal", dangling), 0);
    s = configured(1);
    ck_assert_msg(intdim_search_open_journal(s, dangling) == INTDIM_OK, "%s",
                  intdim_last_error());
    intdim_search_destroy(s);
    char missing[512];
    path_in_dir("missing.journal", missing, sizeof missing);
    intdim_search *r;
    ck_assert_int_eq(intdim_search_from_journal(&r, missing), INTDIM_OK); /* the header is there */
    intdim_search_destroy(r);

    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    s = configured(1);
    ck_assert_int_eq(intdim_search_open_journal(s, fifo), INTDIM_EIO);
    ck_assert_msg(strstr(intdim_last_error(), "not replaced") != NULL, "%s", intdim_last_error());
    intdim_search_destroy(s);
    s = configured(1);
    ck_assert_int_eq(intdim_search_open_journal(s, sub), INTDIM_EIO);
    intdim_search_destroy(s);
    /* a directory that may be written but not read cannot be opened to fsync the rename: the
     * new journal is complete all the same, so the open succeeds (it used to fail with EIO
     * and leave the file, which a second open then resumed) */
    char wx[512];
    path_in_dir("write-only-dir.journal", wx, sizeof wx);
    g_fail_next_dir_open = 1;
    s = configured(1);
    ck_assert_msg(intdim_search_open_journal(s, wx) == INTDIM_OK, "%s", intdim_last_error());
    ck_assert_int_eq(g_fail_next_dir_open, 0); /* the failure really happened */
    ck_assert_uint_eq(run_some(s, 1, 2), 2);
    intdim_search_destroy(s);
    ck_assert_uint_eq(count_rows(wx), 2);
    ck_assert_int_eq(lstat(fifo, &st), 0);
    ck_assert(S_ISFIFO(st.st_mode));
    ck_assert_int_eq(lstat(dangling, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(lstat(sub, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
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
static void run_half(const char *path, size_t half, size_t seeds)
{
    intdim_search *s = configured(seeds);
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
            ck_assert_int_eq(intdim_search_tell(s, id, -0.5, metric(d, kind, lr, id, seeds), 7,
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
    run_half(a, 0, 2);
    run_half(b, 1, 2);
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
    /* trial 1 (odd) is in b, the first input that holds it: b's value, not other's 0.123 */
    ck_assert_double_eq(r->trials[1].eval_metric, metric(t->d, t->kind, t->lr, 1, 2));
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

/* Fail the k-th allocation of merge, rebuild, result and both kinds of open_journal (an
 * existing journal replayed, a new one written) for every k until they all succeed: each
 * failure is ENOMEM and leaks nothing. Every handle is made and destroyed under the failing
 * allocator (intdim_set_allocator: no handle may exist when it changes), and the journals
 * exceed the 4 KiB that reading a journal starts with, so its buffer grows. */
START_TEST(allocation_failures_in_journal_functions)
{
    make_dir();
    char a[512], b[512], m[512], fresh[512];
    path_in_dir("a.journal", a, sizeof a);
    path_in_dir("b.journal", b, sizeof b);
    path_in_dir("m.journal", m, sizeof m);
    path_in_dir("fresh.journal", fresh, sizeof fresh);
    run_half(a, 0, 8); /* 8 seeds: 96 trials, about 4 KiB of rows per half */
    run_half(b, 1, 8);
    size_t len_a, len_b;
    slurp(a, &len_a);
    slurp(b, &len_b);
    ck_assert_uint_gt(len_a, 4096);
    ck_assert_uint_gt(len_b, 4096);
    int succeeded = 0;
    long failures = 0;
    for (long k = 1; k <= 2000 && !succeeded; k++) {
        unlink(fresh);
        fail_alloc_install(k);
        intdim_search *r = NULL, *s = NULL, *n = NULL;
        const char *inputs[] = {a, b};
        int rc = intdim_journal_merge(inputs, 2, m);
        if (rc == INTDIM_OK)
            rc = intdim_search_from_journal(&r, m);
        if (rc == INTDIM_OK)
            rc = intdim_search_result(r, NULL, NULL, NULL, NULL, NULL);
        if (rc == INTDIM_OK)
            rc = try_configured(8, &s);
        if (rc == INTDIM_OK)
            rc = intdim_search_open_journal(s, m);
        if (rc == INTDIM_OK)
            rc = try_configured(8, &n);
        if (rc == INTDIM_OK)
            rc = intdim_search_open_journal(n, fresh);
        if (rc == INTDIM_OK) {
            ck_assert_uint_eq(intdim_search_trials_done(r), 96);
            ck_assert_uint_eq(intdim_search_trials_done(s), 96);
        }
        intdim_search_destroy(n);
        intdim_search_destroy(s);
        intdim_search_destroy(r);
        fail_alloc_remove();
        ck_assert_msg(g_fail.allocs == g_fail.frees, "failing allocation %ld leaked %ld blocks "
                      "(status %d: %s)", k, g_fail.allocs - g_fail.frees, rc,
                      intdim_last_error());
        if (rc == INTDIM_OK) {
            succeeded = 1;
        } else {
            ck_assert_msg(rc == INTDIM_ENOMEM, "failing allocation %ld: status %d: %s", k, rc,
                          intdim_last_error());
            failures++;
        }
    }
    ck_assert(succeeded);
    ck_assert(failures >= 5); /* failures were really injected */
    size_t len_m;
    slurp(m, &len_m);
    ck_assert_uint_gt(len_m, 4096);
    remove_dir();
}
END_TEST

/* ---- SAID groups in the journal ---------------------------------------------------------- */

/* A SAID search: D = 64 in the given groups, d from 4 (above the 2 groups), 2 lrs, 2 seeds. */
static intdim_search *said_search(const size_t *groups, size_t n_groups)
{
    static const size_t ds[] = {4, 8, 16, 32};
    intdim_search *s;
    ck_assert_int_eq(intdim_search_create(&s, 64), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set_d_list(s, ds, 4), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set_lrs(s, LRS, 2), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_SEEDS, 2), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set(s, INTDIM_SEARCH_SAID, 1), INTDIM_OK);
    ck_assert_int_eq(intdim_search_set_groups(s, groups, n_groups), INTDIM_OK);
    return s;
}

/* One "process" of a SAID search: ask every trial, tell those with id % 2 == half. */
static void said_half(const char *path, const size_t *groups, size_t n_groups, size_t half)
{
    intdim_search *s = said_search(groups, n_groups);
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
        ck_assert_int_eq(said, kind != INTDIM_PROJ_IDENTITY);
        if (id % 2 == half)
            ck_assert_int_eq(intdim_search_tell(s, id, -0.5, metric(d, kind, lr, id, 2), 7,
                                                0.25, INTDIM_OK), INTDIM_OK);
    }
    intdim_search_destroy(s);
}

/* The same plan: SAID, the same groups, and trial for trial the same (d, kind, said, lr,
 * seed). */
static void assert_same_plan(const intdim_search *got, const intdim_search *want)
{
    ck_assert_int_eq(got->said, want->said);
    ck_assert_uint_eq(got->n_groups, want->n_groups);
    for (size_t i = 0; i < want->n_groups; i++)
        ck_assert_uint_eq(got->groups[i], want->groups[i]);
    ck_assert_uint_eq(got->n_trials, want->n_trials);
    for (size_t i = 0; i < want->n_trials; i++) {
        const search_trial *g = &got->trials[i], *w = &want->trials[i];
        ck_assert_uint_eq(g->d, w->d);
        ck_assert_int_eq(g->kind, w->kind);
        ck_assert_int_eq(g->said, w->said);
        ck_assert(g->lr == w->lr);
        ck_assert_uint_eq(g->seed, w->seed);
    }
}

/* A SAID search's groups are in its journal's header: a search rebuilt from it, a resumed
 * one and a merge have the same groups and plan; a journal of other groups is refused by
 * resume and merge with a message. */
START_TEST(said_groups_survive_the_journal)
{
    make_dir();
    char g0[512], g1[512], m[512], x[512];
    path_in_dir("g0.journal", g0, sizeof g0);
    path_in_dir("g1.journal", g1, sizeof g1);
    path_in_dir("m.journal", m, sizeof m);
    path_in_dir("x.journal", x, sizeof x);
    static const size_t groups[] = {24, 40}, swapped[] = {40, 24};
    intdim_search *plan = said_search(groups, 2);
    ck_assert_int_eq(intdim__search_freeze(plan), INTDIM_OK);
    ck_assert_uint_eq(plan->n_trials, 5 * 2 * 2);
    said_half(g0, groups, 2, 0);
    said_half(g1, groups, 2, 1);
    ck_assert_ptr_nonnull(strstr(slurp(g0, NULL), "\ngroups 24 40\n"));

    intdim_search *r;
    ck_assert_int_eq(intdim_search_from_journal(&r, g0), INTDIM_OK);
    assert_same_plan(r, plan);
    ck_assert_uint_eq(intdim_search_trials_done(r), 10);
    intdim_search_destroy(r);

    intdim_search *s = said_search(groups, 2); /* resume */
    ck_assert_int_eq(intdim_search_open_journal(s, g0), INTDIM_OK);
    ck_assert_uint_eq(intdim_search_trials_done(s), 10);
    assert_same_plan(s, plan);
    intdim_search_destroy(s);

    const char *inputs[] = {g0, g1};
    ck_assert_int_eq(intdim_journal_merge(inputs, 2, m), INTDIM_OK);
    ck_assert_int_eq(intdim_search_from_journal(&r, m), INTDIM_OK);
    assert_same_plan(r, plan);
    ck_assert_uint_eq(intdim_search_trials_done(r), 20);
    ck_assert_int_eq(intdim_search_complete(r), 1);
    intdim_search_destroy(r);

    /* Other groups (the same sizes in another order): another search. */
    s = said_search(swapped, 2);
    ck_assert_int_eq(intdim_search_open_journal(s, g0), INTDIM_EMISMATCH);
    ck_assert_msg(strstr(intdim_last_error(), "header line 6 has '24' where this search has "
                                              "'40'") != NULL, "%s", intdim_last_error());
    ck_assert_uint_eq(intdim_search_trials_done(s), 0);
    intdim_search_destroy(s);
    said_half(x, swapped, 2, 1);
    const char *mixed[] = {g0, x};
    ck_assert_int_eq(intdim_journal_merge(mixed, 2, m), INTDIM_EMISMATCH);
    ck_assert_msg(strstr(intdim_last_error(), "x.journal was written by another search: header "
                                              "line 6 has '40' where the first input has '24'") !=
                      NULL, "%s", intdim_last_error());
    intdim_search_destroy(plan);
    remove_dir();
}
END_TEST

/* ---- refused journals ----------------------------------------------------------------- */

/* A trial twice: the same row again is harmless; with another result the journal is
 * refused by a rebuild and by a resume, which then keeps nothing. */
START_TEST(a_trial_twice_with_different_results_is_refused)
{
    make_dir();
    char p[512];
    path_in_dir("d.journal", p, sizeof p);
    full_run(p, 1);
    size_t n;
    char saved[1 << 16];
    char *text0 = slurp(p, &n);
    memcpy(saved, text0, n);
    saved[n] = '\0';
    /* the first row, byte for byte, once more */
    char *first = strstr(saved, "\nT ") + 1, row[512];
    size_t row_len = (size_t)(strchr(first, '\n') + 1 - first);
    memcpy(row, first, row_len);
    row[row_len] = '\0';
    append_text(p, row);
    intdim_search *r = NULL;
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_OK);
    ck_assert_uint_eq(intdim_search_trials_done(r), 12);
    intdim_search_destroy(r);
    /* trial 0 again with another eval metric (0.5; the first row has 0.9) */
    spit(p, saved, n);
    intdim_search *plan = configured(1);
    ck_assert_int_eq(intdim__search_freeze(plan), INTDIM_OK);
    const search_trial *t = &plan->trials[0];
    hand_row(p, 0, t->d, t->kind, "0.01", t->seed, "0.5", INTDIM_OK);
    r = NULL;
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_EFORMAT);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(intdim_last_error(), "row 13: trial 0 appears twice with different "
                                              "results") != NULL, "%s", intdim_last_error());
    intdim_search *s = configured(1);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_EFORMAT);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "appears twice with different results"));
    ck_assert_uint_eq(intdim_search_trials_done(s), 0);
    intdim_search_destroy(s);
    intdim_search_destroy(plan);
    remove_dir();
}
END_TEST

/* The label (what the host trains on) is journaled with the configuration: a journal resumed
 * or merged under another label, or none, is refused naming both; the same label resumes;
 * text that would not survive as one word of the config line is refused when set. */
START_TEST(label_is_journaled_and_must_match)
{
    make_dir();
    char p[512], q[512], out[512];
    path_in_dir("labelled.journal", p, sizeof p);
    path_in_dir("other.journal", q, sizeof q);
    path_in_dir("merged.journal", out, sizeof out);
    intdim_search *s = configured(1);
    ck_assert_str_eq(intdim_search_label(s), "");
    ck_assert_int_eq(intdim_search_set_label(s, "mnist:seed=3,model=mlp-200"), INTDIM_OK);
    ck_assert_str_eq(intdim_search_label(s), "mnist:seed=3,model=mlp-200");
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_OK);
    ck_assert_uint_eq(run_some(s, 1, 3), 3);
    ck_assert_int_eq(intdim_search_set_label(s, "late"), INTDIM_ESTATE); /* plan frozen */
    intdim_search_destroy(s);

    intdim_search *r;
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_OK);
    ck_assert_str_eq(intdim_search_label(r), "mnist:seed=3,model=mlp-200");
    intdim_search_destroy(r);

    static const char *other[] = {"mnist:seed=4,model=mlp-200", ""};
    for (int i = 0; i < 2; i++) {
        s = configured(1);
        if (other[i][0] != '\0')
            ck_assert_int_eq(intdim_search_set_label(s, other[i]), INTDIM_OK);
        ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_EMISMATCH);
        ck_assert_msg(strstr(intdim_last_error(), "label=mnist:seed=3,model=mlp-200") != NULL,
                      "%s", intdim_last_error());
        intdim_search_destroy(s);
    }
    s = configured(1);
    ck_assert_int_eq(intdim_search_set_label(s, "mnist:seed=3,model=mlp-200"), INTDIM_OK);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_OK);
    ck_assert_uint_eq(intdim_search_trials_done(s), 3);
    intdim_search_destroy(s);

    /* merge: the same search under another label is another search */
    s = configured(1);
    ck_assert_int_eq(intdim_search_set_label(s, "mnist:seed=4,model=mlp-200"), INTDIM_OK);
    ck_assert_int_eq(intdim_search_open_journal(s, q), INTDIM_OK);
    ck_assert_uint_eq(run_some(s, 1, 2), 2);
    intdim_search_destroy(s);
    const char *inputs[2] = {p, q};
    ck_assert_int_eq(intdim_journal_merge(inputs, 2, out), INTDIM_EMISMATCH);

    /* bad labels: too long, a space, a quote, a newline, NULL */
    s = configured(1);
    char long_label[50];
    memset(long_label, 'a', 49);
    long_label[49] = '\0';
    const char *bad[] = {long_label, "two words", "it's", "a\nb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(intdim_search_set_label(s, bad[i]), INTDIM_EINVAL);
        ck_assert_str_eq(intdim_search_label(s), "");
    }
    long_label[48] = '\0';
    ck_assert_int_eq(intdim_search_set_label(s, long_label), INTDIM_OK); /* 48: the most */
    ck_assert_int_eq(intdim_search_set_label(s, NULL), INTDIM_EINVAL);
    ck_assert_int_eq(intdim_search_set_label(NULL, "x"), INTDIM_EINVAL);
    ck_assert_str_eq(intdim_search_label(NULL), "");
    intdim_search_destroy(s);
    remove_dir();
}
END_TEST

/* A journal that can be read but not appended to (a read-only file) is refused by
 * open_journal, which changes nothing; it still rebuilds for a report. */
START_TEST(read_only_journal_is_not_resumed)
{
    make_dir();
    char p[512];
    path_in_dir("ro.journal", p, sizeof p);
    intdim_search *s = configured(1);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_OK);
    ck_assert_uint_eq(run_some(s, 1, 3), 3);
    intdim_search_destroy(s);
    size_t before, after;
    char saved[1 << 16];
    char *text = slurp(p, &before);
    memcpy(saved, text, before);
    ck_assert_int_eq(chmod(p, 0444), 0);
    if (geteuid() == 0) /* root may write any file: fail the open as the mode would */
        g_fail_next_append_open = 1;
    s = configured(1);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_EIO);
    char want[600];
    snprintf(want, sizeof want, "journal: cannot open %s for appending: %s", p, strerror(EACCES));
    ck_assert_msg(strstr(intdim_last_error(), want) != NULL, "%s", intdim_last_error());
    ck_assert_int_eq(g_fail_next_append_open, 0);
    ck_assert_int_eq(s->frozen, 0);
    ck_assert_uint_eq(intdim_search_trials_done(s), 0);
    text = slurp(p, &after);
    ck_assert_uint_eq(after, before);
    ck_assert(memcmp(text, saved, before) == 0);
    intdim_search *r;
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_OK);
    ck_assert_uint_eq(intdim_search_trials_done(r), 3);
    intdim_search_destroy(r);
    ck_assert_int_eq(chmod(p, 0644), 0);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_OK); /* the same handle */
    ck_assert_uint_eq(intdim_search_trials_done(s), 3);
    intdim_search_destroy(s);
    remove_dir();
}
END_TEST

/* The text of a header-only journal of configured(1) up to (not including) its header_crc
 * line, in buf. */
static void header_text(const char *path, char *buf, size_t cap)
{
    intdim_search_destroy(header_only(path, 1));
    const char *text = slurp(path, NULL), *crc = strstr(text, "header_crc ");
    ck_assert_ptr_nonnull(crc);
    ck_assert_uint_lt((size_t)(crc - text), cap);
    memcpy(buf, text, (size_t)(crc - text));
    buf[crc - text] = '\0';
}

/* A journal of the header lines `lines` with from replaced by to, a correct header
 * checksum and the columns line. */
static void forged_header(const char *path, const char *lines, const char *from, const char *to)
{
    char text[4096];
    const char *at = strstr(lines, from);
    ck_assert_ptr_nonnull(at);
    int n = snprintf(text, sizeof text, "%.*s%s%s", (int)(at - lines), lines, to,
                     at + strlen(from));
    n += snprintf(text + n, sizeof text - (size_t)n, "header_crc %08x\n# id d kind said lr "
                  "seed train_metric eval_metric steps seconds status crc32\n",
                  (unsigned)intdim__crc32(0, text, (size_t)n));
    spit(path, text, (size_t)n);
}

/* A header cut short is "truncated" with the line it stops at; a header line that does
 * not parse, or whose values a search refuses, is "malformed" with its number, although
 * the header checksum matches. */
START_TEST(truncated_and_malformed_headers_are_refused)
{
    make_dir();
    char p[512], lines[2048];
    path_in_dir("h.journal", p, sizeof p);
    header_text(p, lines, sizeof lines);
    intdim_search *r = NULL;
    /* the first four lines only (killed while writing the header) */
    const char *cut = lines;
    for (int i = 0; i < 4; i++)
        cut = strchr(cut, '\n') + 1;
    spit(p, lines, (size_t)(cut - lines));
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_EFORMAT);
    ck_assert_msg(strstr(intdim_last_error(), "header is truncated (line 5)") != NULL, "%s",
                  intdim_last_error());
    spit(p, "intdim-journal 1\n", 17);
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_EFORMAT);
    ck_assert_msg(strstr(intdim_last_error(), "header is truncated (line 2)") != NULL, "%s",
                  intdim_last_error());
    intdim_search *s = configured(1);
    ck_assert_int_eq(intdim_search_open_journal(s, p), INTDIM_EFORMAT);
    ck_assert_ptr_nonnull(strstr(intdim_last_error(), "header is truncated"));
    intdim_search_destroy(s);

    static const struct {
        const char *from, *to, *message;
    } cases[] = {
        {" seeds=1 ", " seeds=x ", "header line 2 is malformed"}, /* does not parse */
        {" seeds=1 ", " seeds=0 ", "header line 2 is malformed"}, /* refused by the search */
        {"\ngroups\n", "\ngroups 30 x\n", "header line 6 is malformed"},
        {"\ngroups\n", "\ngroups 30 30\n", "header line 6 is malformed"}, /* sum 60, not 64 */
        {"\ntrain 11=1.5\n", "\ntrain 11=x\n", "header line 7 is malformed"},
        {" seeds=1 ", " seeds=01 ", "header is not in canonical form"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        forged_header(p, lines, cases[i].from, cases[i].to);
        r = NULL;
        ck_assert_msg(intdim_search_from_journal(&r, p) == INTDIM_EFORMAT, "case %zu: %s", i,
                      intdim_last_error());
        ck_assert_ptr_null(r);
        ck_assert_msg(strstr(intdim_last_error(), cases[i].message) != NULL, "case %zu: %s", i,
                      intdim_last_error());
    }
    /* the unchanged forgery is accepted: only the changes above are at fault */
    forged_header(p, lines, " seeds=1 ", " seeds=1 ");
    ck_assert_int_eq(intdim_search_from_journal(&r, p), INTDIM_OK);
    intdim_search_destroy(r);
    remove_dir();
}
END_TEST

/* Append `body` as a row with its correct checksum. */
static void forged_row(const char *path, const char *body)
{
    char row[512];
    snprintf(row, sizeof row, "%s %08x\n", body, (unsigned)intdim__crc32(0, body, strlen(body)));
    append_text(path, row);
}

/* Rows whose checksum matches but whose fields are wrong are refused, each with its
 * reason: the checksum only says the row is as written, not that it makes sense. */
START_TEST(malformed_rows_with_valid_checksums_are_refused)
{
    make_dir();
    char p[512];
    path_in_dir("w.journal", p, sizeof p);
    intdim_search *plan = header_only(p, 1);
    const search_trial *t = &plan->trials[2]; /* d = 2, lr 0.01 */
    size_t n;
    char saved[1 << 16];
    char *text0 = slurp(p, &n);
    memcpy(saved, text0, n);
    static const struct {
        const char *fields, *why;
    } cases[] = {
        /* id d kind said lr seed | train eval steps seconds status */
        {"T 2 2 3 0", "expected 13 fields"},
        {"nan 0.5 10 0.5 0 extra", "expected 13 fields"},
        {"abc 0.5 10 0.5 0", "a field does not parse"},
        {"nan 0.5 10 0.5 zero", "a field does not parse"},
        {"nan nan 10 0.5 0", "eval metric inconsistent with status"},  /* OK without a metric */
        {"nan 0.5 10 0.5 -5", "eval metric inconsistent with status"}, /* failed with one */
        {"nan 0.5 10 -1 0", "seconds"},
        {"nan 0.5 10 inf 0", "seconds"},
        {"nan 0.5 10 0.5 0", NULL}, /* well formed: accepted */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spit(p, saved, n);
        char body[400];
        if (strncmp(cases[i].fields, "T ", 2) == 0)
            snprintf(body, sizeof body, "%s", cases[i].fields);
        else
            snprintf(body, sizeof body, "T 2 %zu %d 0 0.01 %llu %s", t->d, t->kind,
                     (unsigned long long)t->seed, cases[i].fields);
        forged_row(p, body);
        intdim_search *r = NULL;
        int rc = intdim_search_from_journal(&r, p);
        if (cases[i].why == NULL) {
            ck_assert_msg(rc == INTDIM_OK, "case %zu: %s", i, intdim_last_error());
            ck_assert_uint_eq(intdim_search_trials_done(r), 1);
            intdim_search_destroy(r);
            continue;
        }
        ck_assert_msg(rc == INTDIM_EFORMAT, "case %zu (%s): status %d", i, body, rc);
        ck_assert_ptr_null(r);
        char want[128];
        snprintf(want, sizeof want, "row 1 is malformed (%s)", cases[i].why);
        ck_assert_msg(strstr(intdim_last_error(), want) != NULL, "case %zu: %s", i,
                      intdim_last_error());
    }
    intdim_search_destroy(plan);
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
    tcase_add_test(tc, links_are_followed_and_special_files_refused);
    tcase_add_test(tc, merge_of_separate_journals);
    tcase_add_test(tc, allocation_failures_in_journal_functions);
    tcase_add_test(tc, failed_fsync_takes_the_row_back);
    tcase_add_test(tc, failed_open_journal_leaves_the_plan_open);
    tcase_add_test(tc, said_groups_survive_the_journal);
    tcase_add_test(tc, a_trial_twice_with_different_results_is_refused);
    tcase_add_test(tc, read_only_journal_is_not_resumed);
    tcase_add_test(tc, label_is_journaled_and_must_match);
    tcase_add_test(tc, truncated_and_malformed_headers_are_refused);
    tcase_add_test(tc, malformed_rows_with_valid_checksums_are_refused);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(journal_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = runner_exit_status(runner) != EXIT_SUCCESS; /* also: no test ran */
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
