/* intdim-mpi: the toy d90 search with trials spread over MPI ranks.
 *
 * Rank 0 owns the search and its journal: it asks for trials, sends each to an idle rank,
 * and tells results in whatever order they come back (the search's answer does not depend
 * on that order). Ranks 1..n-1 run trials through intdim_search_run_trial, the very code of
 * the local runner, so the metrics and d90 are the same bits as `intdim run-toy`. With a
 * single rank, rank 0 runs the search locally. Only this program links MPI, never the
 * library.
 *
 *   mpirun -np 4 intdim-mpi [run-toy options] --journal search.journal
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "../tools/toy_search.h"

enum { TAG_TRIAL = 1, TAG_RESULT = 2, TAG_STOP = 3 };
enum { TRIAL_WORDS = 6, RESULT_WORDS = 7 };

static uint64_t bits_of(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static double double_of(uint64_t u)
{
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* ---- worker ranks ---------------------------------------------------------------------- */

/* Fault injection for the driver's own test (mpi/check_agreement.sh): the trial whose id
 * INTDIM_MPI_FAIL_TRIAL names reports INTDIM_ECALLBACK instead of running, as a host whose
 * callback failed would. Unset in normal use. */
static int injected_failure(uint64_t id)
{
    const char *v = getenv("INTDIM_MPI_FAIL_TRIAL");
    return v != NULL && *v != '\0' && strtoull(v, NULL, 10) == id;
}

static void worker(const intdim_search *s, toy_host *h)
{
    for (;;) {
        uint64_t msg[TRIAL_WORDS];
        MPI_Status st;
        MPI_Recv(msg, TRIAL_WORDS, MPI_UINT64_T, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
        if (st.MPI_TAG == TAG_STOP)
            return;
        double train = NAN, eval = NAN, seconds = 0;
        uint64_t steps = 0;
        int status = INTDIM_OK;
        int rc = injected_failure(msg[0])
                     ? INTDIM_ECALLBACK
                     : toy_run_trial(s, h, (size_t)msg[1], (int)msg[2], (int)msg[3],
                                     double_of(msg[4]), msg[5], &train, &eval, &steps, &seconds,
                                     &status);
        if (rc != INTDIM_OK)
            fprintf(stderr, "intdim-mpi: trial %llu: %s: %s\n", (unsigned long long)msg[0],
                    intdim_strerror(rc), intdim_last_error());
        uint64_t res[RESULT_WORDS] = {msg[0], bits_of(train), bits_of(eval), steps,
                                      bits_of(seconds), (uint64_t)(int64_t)status,
                                      (uint64_t)(int64_t)rc};
        MPI_Send(res, RESULT_WORDS, MPI_UINT64_T, 0, TAG_RESULT, MPI_COMM_WORLD);
    }
}

/* ---- rank 0 ------------------------------------------------------------------------------ */

static int send_next(intdim_search *s, int rank, int *what)
{
    uint64_t id, seed;
    size_t d;
    int kind, said;
    double lr;
    int rc = intdim_search_ask(s, what, &id, &d, &kind, &said, &lr, &seed);
    if (rc != INTDIM_OK || *what != INTDIM_ASK_TRIAL)
        return rc;
    uint64_t msg[TRIAL_WORDS] = {id, d, (uint64_t)kind, (uint64_t)said, bits_of(lr), seed};
    MPI_Send(msg, TRIAL_WORDS, MPI_UINT64_T, rank, TAG_TRIAL, MPI_COMM_WORLD);
    return INTDIM_OK;
}

/* Keep every worker busy while the search has trials; tell results as they arrive. After a
 * failure (a worker's trial could not run, a tell failed) no trial is sent any more, but the
 * trials still running are received and told: their results reach the journal, and no
 * worker is left with a send nobody receives. */
static int coordinate(intdim_search *s, int n_ranks, int show)
{
    int *idle = malloc((size_t)n_ranks * sizeof *idle);
    if (idle == NULL)
        return INTDIM_ENOMEM;
    int n_idle = 0, outstanding = 0, rc = INTDIM_OK, what = INTDIM_ASK_TRIAL;
    for (int r = n_ranks - 1; r >= 1; r--)
        idle[n_idle++] = r;
    for (;;) {
        while (n_idle > 0 && rc == INTDIM_OK) {
            rc = send_next(s, idle[n_idle - 1], &what);
            if (rc != INTDIM_OK || what != INTDIM_ASK_TRIAL)
                break;
            n_idle--;
            outstanding++;
        }
        if (outstanding == 0)
            break; /* DONE (or an error): nothing is running any more */
        uint64_t res[RESULT_WORDS];
        MPI_Status st;
        MPI_Recv(res, RESULT_WORDS, MPI_UINT64_T, MPI_ANY_SOURCE, TAG_RESULT, MPI_COMM_WORLD, &st);
        idle[n_idle++] = st.MPI_SOURCE;
        outstanding--;
        int run_rc = (int)(int64_t)res[6];
        int tell_rc = run_rc;
        if (run_rc == INTDIM_OK)
            tell_rc = intdim_search_tell(s, res[0], double_of(res[1]), double_of(res[2]), res[3],
                                         double_of(res[4]), (int)(int64_t)res[5]);
        if (rc == INTDIM_OK)
            rc = tell_rc; /* the first failure is the one reported */
        if (show && run_rc == INTDIM_OK)
            fprintf(stderr, "\r  trial %zu done (rank %d, eval %.4g)   ",
                    intdim_search_trials_done(s), st.MPI_SOURCE, double_of(res[2]));
    }
    if (show)
        fprintf(stderr, "\n");
    free(idle);
    if (rc == INTDIM_OK && what != INTDIM_ASK_DONE)
        rc = INTDIM_ESTATE;
    return rc;
}

static int rank0(intdim_search *s, const toy_options *o, toy_host *h, int n_ranks)
{
    int rc = INTDIM_OK;
    if (o->journal != NULL) {
        rc = intdim_search_open_journal(s, o->journal);
        if (rc != INTDIM_OK)
            return toy_fail(o->journal, rc);
        if (intdim_search_trials_done(s) > 0)
            fprintf(stderr, "intdim-mpi: resuming %s: %zu trials already done\n", o->journal,
                    intdim_search_trials_done(s));
    }
    int show = !o->quiet && isatty(STDERR_FILENO);
    if (n_ranks == 1) {
        rc = intdim_search_run(s, h->theta, h->theta0, toy_grad, toy_eval_neg_loss, toy_eval,
                               &h->problem, NULL, NULL);
    } else {
        rc = intdim_search_set(s, INTDIM_SEARCH_PARALLEL, n_ranks - 1);
        if (rc == INTDIM_OK)
            rc = coordinate(s, n_ranks, show);
    }
    if (rc != INTDIM_OK)
        return toy_fail("search", rc);
    printf("ranks: %d (%d running trials)\n", n_ranks, n_ranks > 1 ? n_ranks - 1 : 1);
    rc = toy_print_report(s, stdout);
    return rc == INTDIM_OK ? 0 : toy_fail("report", rc);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, n_ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            if (rank == 0) {
                printf("usage: mpirun -np N intdim-mpi [options] (no --shard)\n");
                toy_options_usage(stdout);
            }
            MPI_Finalize();
            return 0;
        }
    toy_options o;
    int exit_code = 0;
    /* every rank parses the same arguments; only rank 0 says what is wrong */
    if (toy_options_parse_to(&o, argc, argv, 1, rank == 0 ? stderr : NULL) != 0 ||
        o.shard_count > 0) {
        if (rank == 0)
            fprintf(stderr, "usage: mpirun -np N intdim-mpi [options] (no --shard)\n");
        MPI_Finalize();
        return 2;
    }
    /* Every rank builds the same search: workers need its trainer settings and groups. */
    intdim_search *s = NULL;
    int rc = toy_search_create(&o, &s);
    toy_host *h = malloc(sizeof *h);
    if (rc != INTDIM_OK || h == NULL) {
        if (rank == 0)
            toy_fail("configuring the search", rc != INTDIM_OK ? rc : INTDIM_ENOMEM);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    toy_host_init(h, &o);
    if (rank == 0) {
        exit_code = rank0(s, &o, h, n_ranks);
        for (int r = 1; r < n_ranks; r++)
            MPI_Send(NULL, 0, MPI_UINT64_T, r, TAG_STOP, MPI_COMM_WORLD);
    } else {
        worker(s, h);
    }
    free(h);
    intdim_search_destroy(s);
    MPI_Finalize();
    return exit_code;
}
