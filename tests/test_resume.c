/* Kill and resume for real: a child process runs a journaled d90 search on the toy problem,
 * is killed with SIGKILL in the middle, and the search is resumed from its journal. The
 * resumed search reruns no finished trial and reaches the same d90 as an uninterrupted run. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../examples/toy/toy_problem.h"
#include "intdim.h"
#include "test_threads.h"

static const size_t DS[] = {4, 6, 8, 10, 12, 14, 16, 20, 30, 50, 100};
#define N_DS (sizeof DS / sizeof DS[0])
static const double LRS[] = {1.0, 0.3};

/* No ck_assert here: the child process that also builds it runs outside Check. */
static intdim_search *toy_search(void)
{
    intdim_search *s;
    if (intdim_search_create(&s, TOY_D) != INTDIM_OK)
        return NULL;
    int rc = intdim_search_set_d_list(s, DS, N_DS);
    rc |= intdim_search_set_lrs(s, LRS, 2);
    rc |= intdim_search_set(s, INTDIM_SEARCH_SEEDS, 2);
    rc |= intdim_search_set(s, INTDIM_SEARCH_STEPS, 600);
    rc |= intdim_search_set_train_param(s, INTDIM_TRAIN_SCHEDULE, INTDIM_SCHED_COSINE);
    if (rc != 0) {
        intdim_search_destroy(s);
        return NULL;
    }
    return s;
}

typedef struct host {
    toy_problem problem;
    float theta0[TOY_D], theta[TOY_D];
} host;

static void host_init(host *h)
{
    toy_init(&h->problem, 11);
    toy_theta0(12, h->theta0);
    memcpy(h->theta, h->theta0, sizeof h->theta);
}

typedef struct counter {
    size_t trials;
    long sleep_ms;
} counter;

static int count_trials(void *user, size_t done, size_t total, size_t d, double lr,
                        double eval_metric, double seconds_left)
{
    counter *c = user;
    c->trials++;
    if (c->sleep_ms > 0) { /* widen the window in which the parent kills the child */
        struct timespec ts = {0, c->sleep_ms * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static int run(intdim_search *s, counter *c)
{
    static host h;
    host_init(&h);
    return intdim_search_run(s, h.theta, h.theta0, toy_grad, toy_eval_neg_loss, toy_eval,
                             &h.problem, count_trials, c);
}

/* The child: run the whole search into the journal, slowly. */
static int child_main(const char *journal)
{
    intdim_search *s = toy_search();
    if (s == NULL)
        return 4;
    int rc = intdim_search_open_journal(s, journal);
    counter c = {0, 40};
    if (rc == INTDIM_OK)
        rc = run(s, &c);
    intdim_search_destroy(s);
    return rc == INTDIM_OK ? 0 : 3;
}

static size_t count_rows(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    size_t rows = 0;
    int c, at_line_start = 1, row = 0;
    while ((c = fgetc(f)) != EOF) {
        if (at_line_start)
            row = c == 'T';
        if (c == '\n')
            rows += (size_t)row;
        at_line_start = c == '\n';
    }
    fclose(f);
    return rows;
}

/* One row of the search's table (intdim_search_point), compared as bytes. */
typedef struct point_row {
    size_t d, n_seeds;
    double best_lr, mean, spread;
    int pass, pad;
} point_row;

static size_t table_rows(const intdim_search *s, point_row *rows, size_t cap)
{
    size_t n = intdim_search_n_points(s);
    ck_assert_uint_le(n, cap);
    memset(rows, 0, cap * sizeof *rows);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(intdim_search_point(s, i, &rows[i].d, &rows[i].best_lr, &rows[i].mean,
                                             &rows[i].spread, &rows[i].n_seeds, &rows[i].pass),
                         INTDIM_OK);
    return n;
}

START_TEST(killed_search_resumes_to_the_same_d90)
{
    /* The uninterrupted reference. */
    intdim_search *ref = toy_search();
    ck_assert_ptr_nonnull(ref);
    counter c = {0, 0};
    ck_assert_int_eq(run(ref, &c), INTDIM_OK);
    size_t total = intdim_search_trials_done(ref), ref_d90;
    int ref_reached;
    ck_assert_int_eq(intdim_search_result(ref, &ref_d90, &ref_reached, NULL, NULL, NULL), 0);
    point_row ref_rows[N_DS + 1];
    size_t n_ref_rows = table_rows(ref, ref_rows, N_DS + 1);
    ck_assert_uint_ge(n_ref_rows, N_DS); /* a row per d at least */
    intdim_search_destroy(ref);
    ck_assert_uint_eq(total, (N_DS + 1) * 2 * 2);

    char dir[] = "/tmp/intdim_resume_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char journal[256];
    snprintf(journal, sizeof journal, "%s/search.journal", dir);

    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char *args[] = {"test_resume", "--child", journal, NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    /* Kill it once a good part, but not all, of the trials are in the journal. */
    for (int waited = 0; count_rows(journal) < total / 3 && waited < 120000; waited += 5) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            ck_abort_msg("the child ended early");
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "the child ended before it was killed (status %d)", status);
    size_t before = count_rows(journal);
    ck_assert_uint_ge(before, total / 3);
    ck_assert_uint_lt(before, total);

    /* Resume: only the missing trials run, and the answer is the reference's. */
    intdim_search *s = toy_search();
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(intdim_search_open_journal(s, journal), INTDIM_OK);
    ck_assert_uint_eq(intdim_search_trials_done(s), before);
    counter resumed = {0, 0};
    ck_assert_int_eq(run(s, &resumed), INTDIM_OK);
    ck_assert_uint_eq(resumed.trials, total - before);
    size_t d90;
    int reached;
    ck_assert_int_eq(intdim_search_result(s, &d90, &reached, NULL, NULL, NULL), INTDIM_OK);
    ck_assert_int_eq(reached, ref_reached);
    ck_assert_uint_eq(d90, ref_d90);
    /* and the whole table, bit for bit: every trial's seed and metric are the reference's */
    point_row rows[N_DS + 1];
    ck_assert_uint_eq(table_rows(s, rows, N_DS + 1), n_ref_rows);
    ck_assert(memcmp(rows, ref_rows, n_ref_rows * sizeof rows[0]) == 0);
    intdim_search_destroy(s);
    /* Every trial appears exactly once in the journal. */
    ck_assert_uint_eq(count_rows(journal), total);
    intdim_search *r;
    ck_assert_int_eq(intdim_search_from_journal(&r, journal), INTDIM_OK);
    ck_assert_uint_eq(intdim_search_trials_done(r), total);
    intdim_search_destroy(r);

    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2]);
    Suite *suite = suite_create("resume");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, killed_search_resumes_to_the_same_d90);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = runner_exit_status(runner) != EXIT_SUCCESS; /* also: no test ran */
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
