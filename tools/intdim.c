/* `intdim`: run a d90 search on the toy problem, report a journal (table, d90, plot through
 * gnuplot), merge journals written by separate processes. Uses only <intdim.h>. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "toy_search.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage:\n"
            "  intdim run-toy [options]                  d90 search on Li et al.'s toy problem\n"
            "  intdim report JOURNAL [--plot F.png|F.svg] [--bootstrap N]\n"
            "                                            table, d90 and a plot of a journal\n"
            "  intdim merge OUT IN...                    merge journals of one search into\n"
            "                                            OUT, a new file (never overwritten)\n"
            "  intdim version | --version\n"
            "  intdim help | --help | -h\n\n");
    toy_options_usage(out);
}

/* A line that names the library's warning, if the last call left one (callers clear the
 * message before that call: successful calls do not clear it). */
static void print_warning(void)
{
    const char *msg = intdim_last_error();
    if (strncmp(msg, "warning", 7) == 0)
        fprintf(stderr, "intdim: %s\n", msg);
}

/* ---- run-toy ------------------------------------------------------------------------- */

typedef struct progress_state {
    int show;
    int total_is_bound; /* adaptive: the planned total is an upper bound */
} progress_state;

static int show_progress(void *user, size_t done, size_t total, size_t d, double lr,
                         double eval_metric, double seconds_left)
{
    const progress_state *p = user;
    if (p->show)
        fprintf(stderr, "\r  trial %zu of %s%zu   d = %-6zu lr = %-8.3g metric = %-8.4g  ~%.0f s left  ",
                done, p->total_is_bound ? "<= " : "", total, d, lr, eval_metric, seconds_left);
    return 0;
}

/* Job-array slice: ask every trial at once and run only those with id % N == K. The others
 * stay outstanding; the shards' journals are merged afterwards. */
static int run_shard(intdim_search *s, toy_host *h, const toy_options *o)
{
    int rc = intdim_search_set(s, INTDIM_SEARCH_PARALLEL, 1048576);
    size_t ran = 0;
    while (rc == INTDIM_OK) {
        int what, kind, said;
        uint64_t id, seed;
        size_t d;
        double lr;
        rc = intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed);
        if (rc != INTDIM_OK || what != INTDIM_ASK_TRIAL)
            break;
        if (id % o->shard_count != o->shard_index)
            continue;
        double train, eval, seconds;
        uint64_t steps;
        int status;
        rc = toy_run_trial(s, h, d, kind, said, lr, seed, &train, &eval, &steps, &seconds,
                           &status);
        if (rc == INTDIM_OK)
            rc = intdim_search_tell(s, id, train, eval, steps, seconds, status);
        ran++;
    }
    if (rc != INTDIM_OK)
        return toy_fail("shard", rc);
    printf("shard %zu/%zu: %zu trials run, %zu in %s; merge the shards with `intdim merge`\n",
           o->shard_index, o->shard_count, ran, intdim_search_trials_done(s), o->journal);
    return 0;
}

static int cmd_run_toy(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    toy_options o;
    if (toy_options_parse(&o, argc, argv, 2) != 0)
        return 2;
    intdim_search *s;
    int rc = toy_search_create(&o, &s);
    if (rc != INTDIM_OK)
        return toy_fail("configuring the search", rc);
    if (o.journal != NULL) {
        intdim_clear_error(); /* so that a warning after it is this call's */
        rc = intdim_search_open_journal(s, o.journal);
        if (rc != INTDIM_OK) {
            intdim_search_destroy(s);
            return toy_fail(o.journal, rc);
        }
        print_warning();
        if (intdim_search_trials_done(s) > 0)
            fprintf(stderr, "intdim: resuming %s: %zu trials already done\n", o.journal,
                    intdim_search_trials_done(s));
    }
    toy_host *h = malloc(sizeof *h);
    if (h == NULL) {
        intdim_search_destroy(s);
        fprintf(stderr, "intdim: out of memory\n");
        return 1;
    }
    toy_host_init(h, &o);
    int exit_code = 0;
    if (o.shard_count > 0) {
        exit_code = run_shard(s, h, &o);
    } else {
        progress_state p = {!o.quiet && isatty(STDERR_FILENO),
                            o.strategy == INTDIM_STRATEGY_ADAPTIVE};
        rc = intdim_search_run(s, h->theta, h->theta0, toy_grad, toy_eval_neg_loss, toy_eval,
                               &h->problem, show_progress, &p);
        if (p.show)
            fprintf(stderr, "\n");
        if (rc != INTDIM_OK)
            exit_code = toy_fail("search", rc);
        else if ((rc = toy_print_report(s, stdout)) != INTDIM_OK)
            exit_code = toy_fail("report", rc);
    }
    free(h);
    intdim_search_destroy(s);
    return exit_code;
}

/* ---- report and plot ------------------------------------------------------------------ */

static int have_program(const char *name)
{
    const char *path = getenv("PATH");
    if (path == NULL)
        return 0;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *dir = strtok(buf, ":"); dir != NULL; dir = strtok(NULL, ":")) {
        char full[4352];
        snprintf(full, sizeof full, "%s/%s", dir, name);
        if (access(full, X_OK) == 0)
            return 1;
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Metric vs d (log x) with error bars, the baseline, the target line and d90 marked. */
/* A plot file name gnuplot can be given inside '...': .png or .svg, no quote or newline,
 * and not starting with '|' (gnuplot would run the rest as a shell command). */
static int plot_path_ok(const char *path)
{
    if (!ends_with(path, ".svg") && !ends_with(path, ".png")) {
        fprintf(stderr, "intdim: --plot needs a .png or .svg file name, not '%s'\n", path);
        return 0;
    }
    if (strpbrk(path, "'\n\r") != NULL || path[0] == '|') {
        fprintf(stderr, "intdim: --plot: the file name must not contain a quote or a newline, "
                        "nor start with '|'\n");
        return 0;
    }
    return 1;
}

/* gnuplot draws into tmp (a new file in out_path's directory, created here so a path that
 * cannot be written is reported before gnuplot runs: it would write the image to its
 * standard output instead), renamed onto out_path only once gnuplot succeeded, so a failed
 * plot never truncates an existing one. */
static int plot_temp_file(const char *out_path, char *tmp, size_t n)
{
    const char *slash = strrchr(out_path, '/');
    int dir_len = slash == NULL ? 0 : (int)(slash - out_path + 1);
    snprintf(tmp, n, "%.*s.intdim-plot.%ld%s", dir_len, out_path, (long)getpid(),
             ends_with(out_path, ".svg") ? ".svg" : ".png");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        fprintf(stderr, "intdim: --plot: cannot write %s: %s\n", out_path, strerror(errno));
        return 0;
    }
    close(fd);
    return 1;
}

static int plot(const intdim_search *s, const char *out_path)
{
    int svg = ends_with(out_path, ".svg");
    size_t d90 = 0;
    int reached = 0;
    double baseline = NAN, fraction = 0.9;
    intdim_search_get(s, INTDIM_SEARCH_FRACTION, &fraction);
    /* a search with nothing to plot fails the same with or without gnuplot */
    if (intdim_search_result(s, &d90, &reached, &baseline, NULL, NULL) != INTDIM_OK)
        return toy_fail("plot", INTDIM_ESTATE);
    if (!have_program("gnuplot")) {
        fprintf(stderr, "intdim: gnuplot not found: skipping the plot (install gnuplot-nox)\n");
        return 0;
    }
    char tmp[4200];
    if (strlen(out_path) > 4000 || !plot_temp_file(out_path, tmp, sizeof tmp))
        return 1;
    /* gnuplot's own output never mixes into ours (it prints the image there on failure) */
    FILE *g = popen("gnuplot > /dev/null", "w");
    if (g == NULL) {
        fprintf(stderr, "intdim: cannot start gnuplot\n");
        unlink(tmp);
        return 1;
    }
    fprintf(g, "set terminal %s size 900,560\n", svg ? "svg" : "pngcairo");
    fprintf(g, "set output '%s'\n", tmp);
    fprintf(g, "set logscale x\nset grid\nset key bottom right\nset offsets 0, 0, 0.05, 0.05\n");
    fprintf(g, "set xlabel 'd (trainable dimension, log scale)'\n");
    fprintf(g, "set ylabel 'eval metric (mean over seeds, best lr)'\n");
    if (reached) {
        fprintf(g, "set arrow from %zu, graph 0 to %zu, graph 1 nohead dt 2 lw 2 lc rgb 'red'\n",
                d90, d90);
        fprintf(g, "set label 'd90 = %zu' at %zu, graph 0.08 offset 0.5,0 tc rgb 'red'\n", d90,
                d90);
    }
    fprintf(g, "set title 'd90 search: %s'\n", reached ? "reached" : "not reached");
    fprintf(g, "$data << EOD\n");
    for (size_t i = 0; i < intdim_search_n_points(s); i++) {
        size_t d;
        double mean, spread;
        if (intdim_search_point(s, i, &d, NULL, &mean, &spread, NULL, NULL) == INTDIM_OK &&
            isfinite(mean))
            fprintf(g, "%zu %.10g %.10g\n", d, mean, isfinite(spread) ? spread : 0.0);
    }
    fprintf(g, "EOD\n");
    fprintf(g, "plot $data using 1:2:3 with yerrorlines lw 2 pt 7 title 'metric', "
               "%.10g with lines lc rgb 'black' title 'baseline (full training)', "
               "%.10g with lines dt 3 lc rgb 'blue' title '%g x baseline'\n",
            baseline, fraction * baseline, fraction);
    int status = pclose(g);
    if (status != 0) {
        if (status > 0 && WIFEXITED(status))
            fprintf(stderr, "intdim: gnuplot failed (exit status %d)\n", WEXITSTATUS(status));
        else
            fprintf(stderr, "intdim: gnuplot failed (wait status %d)\n", status);
        unlink(tmp);
        return 1;
    }
    if (rename(tmp, out_path) != 0) {
        fprintf(stderr, "intdim: --plot: cannot write %s: %s\n", out_path, strerror(errno));
        unlink(tmp);
        return 1;
    }
    printf("plot written to %s\n", out_path);
    return 0;
}

static int cmd_report(int argc, char **argv)
{
    if (argc < 3 || argv[2][0] == '-') { /* no journal named: --help, or an option first */
        int help = argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
        usage(help ? stdout : stderr);
        return help ? 0 : 2;
    }
    const char *plot_path = NULL;
    long bootstrap = -1;
    for (int i = 3; i < argc; i++) {
        int has_value = i + 1 < argc;
        if ((strcmp(argv[i], "--plot") == 0 || strcmp(argv[i], "--bootstrap") == 0) &&
            !has_value) {
            fprintf(stderr, "intdim: %s needs a value\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--plot") == 0) {
            plot_path = argv[++i];
            if (!plot_path_ok(plot_path))
                return 2;
        } else if (strcmp(argv[i], "--bootstrap") == 0) {
            const char *v = argv[++i];
            size_t n = 0;
            double lo, hi;
            intdim_search_param_bounds(INTDIM_SEARCH_BOOTSTRAP, &lo, &hi);
            if (toy_parse_count(v, &n) != 0 || (double)n < lo || (double)n > hi) {
                fprintf(stderr, "intdim: --bootstrap needs a whole number in [%.0f, %.0f], not "
                                "'%s'\n", lo, hi, v);
                return 2;
            }
            bootstrap = (long)n;
        } else {
            fprintf(stderr, "intdim: unknown report option %s\n", argv[i]);
            return 2;
        }
    }
    intdim_search *s;
    intdim_clear_error();
    int rc = intdim_search_from_journal(&s, argv[2]);
    if (rc != INTDIM_OK)
        return toy_fail(argv[2], rc);
    print_warning();
    if (bootstrap >= 0 && (rc = intdim_search_set(s, INTDIM_SEARCH_BOOTSTRAP, (double)bootstrap)))
        return toy_fail("--bootstrap", rc);
    int exit_code = 0;
    rc = toy_print_report(s, stdout);
    if (rc != INTDIM_OK)
        exit_code = toy_fail("report", rc);
    else if (!intdim_search_complete(s)) {
        printf("incomplete: %zu trials told and more are needed, so the result above is "
               "provisional (resume the run, or merge the other shards' journals)\n",
               intdim_search_trials_done(s));
        if (plot_path != NULL) {
            fprintf(stderr, "intdim: --plot: no plot of an incomplete search (%s not written)\n",
                    plot_path);
            exit_code = 1;
        }
    } else if (plot_path != NULL)
        exit_code = plot(s, plot_path);
    intdim_search_destroy(s);
    return exit_code;
}

/* Is OUT's directory there? (Else the library would report its temporary file's name.) */
static int parent_dir_exists(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL || slash == path)
        return 1;
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "intdim: merge: cannot write %s: no directory %s\n", path, dir);
        return 0;
    }
    return 1;
}

static int cmd_merge(int argc, char **argv)
{
    if (argc < 4) {
        usage(stderr);
        return 2;
    }
    /* OUT is written, never overwritten: `intdim merge a.journal b.journal` (OUT forgotten)
     * would otherwise replace shard a with shard b */
    struct stat st;
    if (lstat(argv[2], &st) == 0) { /* a dangling symlink too: it names something */
        fprintf(stderr, "intdim: merge: %s already exists; merge writes a new file: usage: "
                        "intdim merge OUT IN...\n", argv[2]);
        return 2;
    }
    if (errno != ENOENT) { /* e.g. ENOTDIR: a component of OUT's directory is a file */
        fprintf(stderr, "intdim: merge: cannot write %s: %s\n", argv[2], strerror(errno));
        return 2;
    }
    if (!parent_dir_exists(argv[2]))
        return 2;
    intdim_clear_error();
    int rc = intdim_journal_merge((const char *const *)(argv + 3), (size_t)(argc - 3), argv[2]);
    if (rc != INTDIM_OK)
        return toy_fail("merge", rc);
    print_warning();
    intdim_search *s;
    rc = intdim_search_from_journal(&s, argv[2]);
    if (rc != INTDIM_OK)
        return toy_fail(argv[2], rc);
    printf("merged %d journals into %s: %zu trials\n", argc - 3, argv[2],
           intdim_search_trials_done(s));
    intdim_search_destroy(s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "run-toy") == 0) {
        return cmd_run_toy(argc, argv);
    }
    if (strcmp(argv[1], "report") == 0)
        return cmd_report(argc, argv);
    if (strcmp(argv[1], "merge") == 0)
        return cmd_merge(argc, argv);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("intdim %s\n", intdim_version_string());
        return 0;
    }
    fprintf(stderr, "intdim: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
