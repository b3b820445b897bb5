/* libFuzzer target: search journals. Each input is written to a file and replayed with
 * intdim_search_from_journal; a search that loads is driven on by ask/tell and read (result,
 * points); then the input is merged with itself (intdim_journal_merge) and resumed by searches
 * configured like the seeds' (intdim_search_open_journal). Asserted, beyond what
 * ASan, UBSan and LeakSanitizer check: a refused journal leaves *out NULL. Allocations over
 * 64 MiB fail (the library's ENOMEM path). Build and run: scripts/fuzz.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "intdim.h"

static char g_path[128], g_merged[128];

/* Ask and tell up to `limit` trials with a made-up metric that rises with d. */
static void drive(intdim_search *s, int limit)
{
    for (int i = 0; i < limit; i++) {
        int what, kind, said;
        uint64_t id, seed;
        size_t d;
        double lr;
        if (intdim_search_ask(s, &what, &id, &d, &kind, &said, &lr, &seed) != INTDIM_OK ||
            what != INTDIM_ASK_TRIAL)
            return;
        double metric = kind == INTDIM_PROJ_IDENTITY ? 0.9 : 1.0 - 2.0 / (double)(d + 1);
        if (intdim_search_tell(s, id, -0.5, metric, 7, 0.25, INTDIM_OK) != INTDIM_OK)
            return;
    }
}

/* The small grid or adaptive SAID search the seed journals come from (NULL if the
 * allocation cap refused it). */
static intdim_search *seed_search(int strategy)
{
    static const size_t ds[] = {3, 4, 8, 16, 32}, groups[] = {20, 44};
    static const double lrs[] = {0.01, 0.1};
    intdim_search *s;
    if (intdim_search_create(&s, 64) != INTDIM_OK)
        return NULL;
    if (intdim_search_set_d_list(s, ds, 5) != INTDIM_OK ||
        intdim_search_set_lrs(s, lrs, 2) != INTDIM_OK ||
        intdim_search_set(s, INTDIM_SEARCH_SEEDS, 2) != INTDIM_OK ||
        intdim_search_set(s, INTDIM_SEARCH_STRATEGY, strategy) != INTDIM_OK ||
        intdim_search_set(s, INTDIM_SEARCH_SAID, 1) != INTDIM_OK ||
        intdim_search_set_groups(s, groups, 2) != INTDIM_OK ||
        intdim_search_set_train_param(s, INTDIM_TRAIN_CLIP_NORM, 1.5) != INTDIM_OK) {
        intdim_search_destroy(s);
        return NULL;
    }
    return s;
}

/* A journal of 9 trials (baseline included) of a small grid or adaptive SAID search. */
static void write_seed(const char *path, int strategy)
{
    intdim_search *s = seed_search(strategy);
    if (s == NULL)
        abort();
    unlink(path);
    if (intdim_search_open_journal(s, path) != INTDIM_OK)
        abort();
    drive(s, 9);
    intdim_search_destroy(s);
}

/* FUZZ_WRITE_SEED=dir: write two valid journals there as the seed corpus, and exit. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(g_path, sizeof g_path, "/tmp/intdim_fuzz_%d.journal", (int)getpid());
    snprintf(g_merged, sizeof g_merged, "/tmp/intdim_fuzz_%d.merged", (int)getpid());
    const char *seed_dir = getenv("FUZZ_WRITE_SEED");
    if (seed_dir != NULL) {
        char path[512];
        snprintf(path, sizeof path, "%s/grid", seed_dir);
        write_seed(path, INTDIM_STRATEGY_GRID);
        snprintf(path, sizeof path, "%s/adaptive", seed_dir);
        write_seed(path, INTDIM_STRATEGY_ADAPTIVE);
        exit(0);
    }
    if (intdim_set_allocator(capped_alloc, capped_free, NULL) != INTDIM_OK)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_input(g_path, data, size);
    intdim_search *s = NULL;
    if (intdim_search_from_journal(&s, g_path) == INTDIM_OK) {
        drive(s, 20); /* appends to the journal */
        size_t d90, lo, hi, d, n;
        int reached;
        double baseline, lr, mean, spread;
        (void)intdim_search_result(s, &d90, &reached, &baseline, &lo, &hi);
        for (size_t i = 0; i < intdim_search_n_points(s); i++)
            (void)intdim_search_point(s, i, &d, &lr, &mean, &spread, &n, &reached);
        intdim_search_destroy(s);
    } else if (s != NULL) {
        abort();
    }
    write_input(g_path, data, size); /* the input again, as it was before the appends */
    const char *inputs[2] = {g_path, g_path};
    unlink(g_merged);
    (void)intdim_journal_merge(inputs, 2, g_merged);
    /* Resuming the input with the seeds' own configuration: its header compared word by
     * word with the search's (the mismatch message), its rows replayed and driven on. */
    write_input(g_path, data, size);
    for (int strategy = INTDIM_STRATEGY_GRID; strategy <= INTDIM_STRATEGY_ADAPTIVE; strategy++) {
        intdim_search *r = seed_search(strategy);
        if (r != NULL && intdim_search_open_journal(r, g_path) == INTDIM_OK)
            drive(r, 4);
        intdim_search_destroy(r);
    }
    return 0;
}
