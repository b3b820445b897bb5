/* libFuzzer target: checkpoint files as an attacker or a disk might write them. Each input
 * is written to a file, loaded into a small trainer (SAID over dense: every field of the
 * description matters) and rebuilt into a projection with intdim_checkpoint_proj.
 * Asserted, beyond what ASan, UBSan and LeakSanitizer check: a refused load leaves the
 * trainer's theta_d, step counter and settings as they were, a failed rebuild leaves *out
 * NULL, and whatever loads can step, apply and vjp. Allocations over 64 MiB fail (a described D may be huge): that is the
 * library's ENOMEM path, not a fuzzer out-of-memory. Build and run: scripts/fuzz.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "intdim.h"

enum { D = 16, DSUB = 5 };
static char g_path[128];
static float g_theta[D], g_theta0[D];
static intdim_proj *g_proj;
static intdim_trainer *g_trainer;

static int host_grad(void *user, uint64_t step, const float *theta, float *grad, double *loss)
{
    (void)user;
    (void)step;
    double l = 0.0;
    for (int i = 0; i < D; i++) {
        grad[i] = theta[i];
        l += (double)theta[i] * theta[i];
    }
    *loss = l;
    return 0;
}

/* A checkpoint of a projection made from explicit tables (a seeded one's, exported). */
static void write_tables_seed(const char *dir)
{
    enum { L = 16 }; /* nextpow2(D) */
    float B[L], G[L], theta[D], theta0[D] = {0};
    int64_t Pi[L];
    intdim_proj *seeded, *p;
    intdim_trainer *t;
    char path[512];
    snprintf(path, sizeof path, "%s/tables", dir);
    if (intdim_proj_create(&seeded, INTDIM_PROJ_FASTFOOD, D, DSUB, 7) != INTDIM_OK ||
        intdim_proj_fastfood_tables(seeded, B, Pi, G, L) != INTDIM_OK ||
        intdim_proj_create_fastfood_tables(&p, D, DSUB, L, B, Pi, G) != INTDIM_OK ||
        intdim_trainer_create(&t, p, theta, theta0, NULL, 0, host_grad, NULL) != INTDIM_OK ||
        intdim_trainer_run(t, 3, NULL, NULL, NULL, NULL, NULL) != INTDIM_OK ||
        intdim_trainer_save(t, path) != INTDIM_OK)
        abort();
    intdim_trainer_destroy(t);
    intdim_proj_destroy(p);
    intdim_proj_destroy(seeded);
}

/* FUZZ_WRITE_SEED=dir: write valid checkpoints there as the seed corpus, and exit. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(g_path, sizeof g_path, "/tmp/intdim_fuzz_%d.ckpt", (int)getpid());
    static const size_t groups[2] = {6, 10};
    if (intdim_set_allocator(capped_alloc, capped_free, NULL) != INTDIM_OK ||
        intdim_proj_create_said(&g_proj, INTDIM_PROJ_DENSE, D, DSUB, 2, groups, 5) != INTDIM_OK ||
        intdim_trainer_create(&g_trainer, g_proj, g_theta, g_theta0, NULL, 0, host_grad, NULL) !=
            INTDIM_OK)
        abort();
    const char *seed_dir = getenv("FUZZ_WRITE_SEED");
    if (seed_dir != NULL) {
        char path[512];
        snprintf(path, sizeof path, "%s/trained", seed_dir);
        if (intdim_trainer_run(g_trainer, 3, NULL, NULL, NULL, NULL, NULL) != INTDIM_OK ||
            intdim_trainer_save(g_trainer, path) != INTDIM_OK)
            abort();
        write_tables_seed(seed_dir);
        exit(0);
    }
    return 0;
}

/* What a load may change and a refused one must not: theta_d, the step counter and every
 * trainer setting (the optimizer's moments are not observable here without file writes). */
typedef struct observed {
    float theta_d[DSUB];
    uint64_t steps;
    double settings[64];
} observed;

static void observe(observed *o)
{
    memset(o, 0, sizeof *o);
    intdim_trainer_get_theta_d(g_trainer, o->theta_d, DSUB);
    o->steps = intdim_trainer_steps_done(g_trainer);
    for (int k = 0; k < 64 && intdim_trainer_param_bounds(k, NULL, NULL) == INTDIM_OK; k++)
        intdim_trainer_get(g_trainer, k, &o->settings[k]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_input(g_path, data, size);
    observed before, after;
    observe(&before);
    int status = intdim_trainer_load(g_trainer, g_path);
    observe(&after);
    if (status != INTDIM_OK && memcmp(&before, &after, sizeof before) != 0)
        abort(); /* refused, yet the trainer changed */
    if (status == INTDIM_OK)
        (void)intdim_trainer_step(g_trainer, NULL);

    intdim_proj *p = NULL;
    if (intdim_checkpoint_proj(&p, g_path) != INTDIM_OK) {
        if (p != NULL)
            abort();
        return 0;
    }
    size_t Dp = intdim_proj_D(p), dp = intdim_proj_d(p);
    if (Dp <= 4096) { /* a described projection may be legitimately large: skip those */
        float *x = calloc(dp, sizeof(float)), *y = calloc(Dp, sizeof(float));
        float *g = calloc(dp, sizeof(float)); /* vjp's output must not overlap theta_d */
        if (x != NULL && y != NULL && g != NULL && intdim_proj_init_theta(p, x) == INTDIM_OK &&
            (intdim_proj_apply(p, x, y) != INTDIM_OK || intdim_proj_vjp(p, x, y, g) != INTDIM_OK))
            abort();
        free(x);
        free(y);
        free(g);
    }
    intdim_proj_destroy(p);
    return 0;
}
