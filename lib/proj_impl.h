/* The projection handle's layout and the contract between proj.c and the kind files.
 * proj.c validates arguments once, fills the common fields, then calls the kind's
 * create; kind files never check arguments again. SAID scaling lives in proj.c on top of
 * any kind. */
#ifndef INTDIM_PROJ_IMPL_H
#define INTDIM_PROJ_IMPL_H

#include <stdatomic.h>

#include "internal.h"

typedef struct proj_ops {
    /* y[0..D) = P x, x of length d_lin. work: work_floats floats (64-byte aligned). */
    void (*apply)(const intdim_proj *p, const float *x, float *y, float *work);
    /* x[0..d_lin) = P^T g, g of length D. */
    void (*adjoint)(const intdim_proj *p, const float *g, float *x, float *work);
    void (*destroy)(intdim_proj *p); /* free p->state */
    /* Optional: y = base + P x in one pass, the same bits as apply followed by
     * y[i] = base[i] + y[i]. NULL: proj.c does exactly that. */
    void (*apply_base)(const intdim_proj *p, const float *x, const float *base, float *y,
                       float *work);
} proj_ops;

struct intdim_proj {
    /* description: (kind, D, d, seed, groups, creation parameters) fully determine P */
    int kind;
    size_t D;
    size_t d;     /* trainable length (includes SAID scales) */
    size_t d_lin; /* coordinates fed to the linear map: d - m for SAID, else d */
    uint64_t seed;
    size_t n_groups;
    size_t *group_sizes;   /* n_groups entries, or NULL */
    size_t *group_offsets; /* n_groups + 1 entries, or NULL */
    int said;
    int per_group;
    size_t ff_block; /* FASTFOOD_BLOCK: chunk length (a power of two), 0 = one block */
    int imported;    /* Fastfood from explicit tables: not described by the seed */
    uint64_t tables_hash; /* imported: a hash of the tables as given (checkpoints) */
    double density; /* SPARSE: resolved density */
    double memory_budget;
    /* runtime */
    int threads; /* 0 = all */
    int kernel;  /* INTDIM_KERNEL_*, resolved at create to an available one when AUTO */
    /* kind state */
    const proj_ops *ops;
    void *state;
    size_t state_bytes; /* bytes the kind holds (for intdim_proj_bytes) */
    size_t work_floats; /* scratch the kind needs per call */
    /* One cached scratch block; a second concurrent caller allocates its own, so apply
     * and vjp stay thread-safe on a const handle without allocating in the common case. */
    float *work;
    atomic_flag work_busy;
};

/* Kind constructors: p's description fields are set and valid. Set ops, state,
 * state_bytes and work_floats; on failure free what they allocated and return a status
 * (with message). */
int intdim__identity_create(intdim_proj *p);
int intdim__dense_create(intdim_proj *p);
int intdim__sparse_create(intdim_proj *p);
int intdim__fastfood_create(intdim_proj *p);

/* REFERENCE's tables of one Fastfood block, L entries each (intdim_proj_create_fastfood_tables). */
typedef struct ff_tables {
    size_t D, L;
    const float *B;
    const int64_t *Pi;
    const float *G;
} ff_tables;
/* Checks the tables: INTDIM_EINVAL naming the first bad entry (Pi's duplicates through a
 * bitmap of L bits: INTDIM_ENOMEM if that cannot be had). */
int intdim__fastfood_check_tables(const ff_tables *t);
/* A single-block Fastfood from tables intdim__fastfood_check_tables accepted. */
int intdim__fastfood_create_from(intdim_proj *p, const ff_tables *t);
/* The tables of a seeded single-block Fastfood (t's arrays are outputs). */
int intdim__fastfood_export(const intdim_proj *p, float *B, int64_t *Pi, float *G);


#endif
