/* Checkpoints of a trained subspace (format: docs/checkpoint.md). Little-endian fields,
 * CRC-32 over everything before it, written to a temporary file in the target directory,
 * fsync'd and renamed into place, then the directory fsync'd. Loading validates the whole
 * file (size, magic, version, CRC, values) into the trainer's spare arrays before any of
 * the trainer changes. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "optim.h"
#include "proj_impl.h"

#define CKPT_MAGIC "INTDIMCK"
/* 2: the layout of 1, but the Fastfood a description denotes changed (G rounded to
 * binary16), so a version-1 file would silently rebuild a different projection.
 * 3: the layout of 2; the u32 after per_group (reserved, always 0, in 2) holds log2 of
 * the Fastfood block length (0: one block). Version-2 files are read as block 0; a
 * version-2 reader refuses version 3 instead of dropping the blocks.
 * 4: the layout of 3; the u32 at offset 12 (reserved, always 0, before) is 1 for a
 * projection made from explicit Fastfood tables, whose seed field then holds a hash of the
 * tables. Earlier files are read with it 0; earlier readers refuse a 1. */
#define CKPT_VERSION 4u
#define CKPT_OLDEST_VERSION 2u
enum {
    MAGIC_BYTES = 8,
    N_SETTINGS = 16,     /* intdim_train_param values 0..15, stored in id order */
    CHUNK = 1u << 16,    /* I/O buffer */
    /* bytes before the group sizes: magic, version, reserved, kind, said, per_group,
     * log2 of the Fastfood block length, D, d, seed, density, memory budget, n_groups */
    FIXED_HEAD = MAGIC_BYTES + 4 * 6 + 8 * 6,
    /* bytes between the group sizes and the vectors: theta0 hash, n_settings, reserved,
     * settings, step, updates, skipped */
    FIXED_MID = 8 + 4 + 4 + 8 * N_SETTINGS + 8 * 3,
    CRC_BYTES = 4
};

/* Everything a checkpoint says besides the vectors. */
typedef struct ckpt_desc {
    uint32_t tables; /* 1: Fastfood from explicit tables, seed = their hash */
    uint32_t kind, said, per_group;
    uint32_t log2_block; /* FASTFOOD_BLOCK = 2^log2_block, or 0 when this is 0 */
    uint64_t D, d, seed, n_groups;
    double density, memory_budget;
    uint64_t *group_sizes; /* n_groups entries (owned) */
    uint64_t theta0_hash;
    double settings[N_SETTINGS];
    uint64_t step, updates, skipped;
} ckpt_desc;

static void desc_free(ckpt_desc *c)
{
    intdim__free(c->group_sizes);
    c->group_sizes = NULL;
}

/* The projection part of a description, read through the public getters. */
static int describe_proj(const intdim_proj *p, ckpt_desc *c)
{
    double said = 0, per_group = 0, density = 0, budget = 0, block = 0;
    /* creation parameters that do not apply to a kind read as 0 (or fail: also 0) */
    (void)intdim_proj_get(p, INTDIM_PROJ_SAID, &said);
    (void)intdim_proj_get(p, INTDIM_PROJ_FASTFOOD_PER_GROUP, &per_group);
    (void)intdim_proj_get(p, INTDIM_PROJ_FASTFOOD_BLOCK, &block);
    (void)intdim_proj_get(p, INTDIM_PROJ_SPARSE_DENSITY, &density);
    (void)intdim_proj_get(p, INTDIM_PROJ_MEMORY_BUDGET, &budget);
    c->kind = (uint32_t)intdim_proj_kind_of(p);
    c->said = said != 0;
    c->per_group = per_group != 0;
    c->log2_block = block >= 2.0 ? intdim__log2_exact((uint64_t)block) : 0;
    c->density = c->kind == INTDIM_PROJ_SPARSE ? density : 0.0;
    c->memory_budget = budget;
    c->D = intdim_proj_D(p);
    c->d = intdim_proj_d(p);
    c->tables = p->imported ? 1u : 0u;
    c->seed = p->imported ? p->tables_hash : intdim_proj_seed(p);
    c->n_groups = intdim_proj_n_groups(p);
    c->group_sizes = NULL;
    if (c->n_groups == 0)
        return INTDIM_OK;
    size_t *sizes = intdim__calloc(c->n_groups, sizeof(size_t));
    c->group_sizes = intdim__calloc(c->n_groups, sizeof(uint64_t));
    int status = INTDIM_OK;
    if (sizes == NULL || c->group_sizes == NULL)
        status = intdim__fail_nomem("the group sizes", c->n_groups * sizeof(uint64_t));
    else
        status = intdim_proj_group_sizes(p, sizes, c->n_groups);
    for (size_t g = 0; status == INTDIM_OK && g < c->n_groups; g++)
        c->group_sizes[g] = sizes[g];
    intdim__free(sizes);
    if (status != INTDIM_OK)
        desc_free(c);
    return status;
}

/* ---- writing ----------------------------------------------------------------------- */

typedef struct sink {
    int fd;
    const char *path; /* for messages */
    unsigned char *buf;
    size_t used;
    uint32_t crc;
    int status;
} sink;

static void sink_flush(sink *s)
{
    if (s->status == INTDIM_OK && s->used > 0)
        if (intdim__write_fully(s->fd, s->buf, s->used) != 0)
            s->status = intdim__fail(INTDIM_EIO, "writing %s: %s", s->path, strerror(errno));
    s->used = 0;
}

static void put_bytes(sink *s, const void *data, size_t n)
{
    const unsigned char *p = data;
    s->crc = intdim__crc32(s->crc, p, n);
    while (n > 0 && s->status == INTDIM_OK) {
        size_t take = CHUNK - s->used < n ? CHUNK - s->used : n;
        memcpy(s->buf + s->used, p, take);
        s->used += take;
        p += take;
        n -= take;
        if (s->used == CHUNK)
            sink_flush(s);
    }
}

static void put_u32(sink *s, uint32_t x)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(x >> (8 * i));
    put_bytes(s, b, 4);
}

static void put_u64(sink *s, uint64_t x)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(x >> (8 * i));
    put_bytes(s, b, 8);
}

static void put_f64(sink *s, double x)
{
    uint64_t bits;
    memcpy(&bits, &x, 8);
    put_u64(s, bits);
}

static void put_f32s(sink *s, const float *x, size_t n)
{
    for (size_t i = 0; i < n && s->status == INTDIM_OK; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], 4);
        put_u32(s, bits);
    }
}

static void put_desc(sink *s, const ckpt_desc *c)
{
    put_bytes(s, CKPT_MAGIC, MAGIC_BYTES);
    put_u32(s, CKPT_VERSION);
    put_u32(s, c->tables);
    put_u32(s, c->kind);
    put_u32(s, c->said);
    put_u32(s, c->per_group);
    put_u32(s, c->log2_block);
    put_u64(s, c->D);
    put_u64(s, c->d);
    put_u64(s, c->seed);
    put_f64(s, c->density);
    put_f64(s, c->memory_budget);
    put_u64(s, c->n_groups);
    for (uint64_t g = 0; g < c->n_groups; g++)
        put_u64(s, c->group_sizes[g]);
    put_u64(s, c->theta0_hash);
    put_u32(s, N_SETTINGS);
    put_u32(s, 0);
    for (int i = 0; i < N_SETTINGS; i++)
        put_f64(s, c->settings[i]);
    put_u64(s, c->step);
    put_u64(s, c->updates);
    put_u64(s, c->skipped);
}

static int write_file(const intdim_trainer *t, const ckpt_desc *c, const char *path)
{
    sink s = {.fd = -1, .path = path, .status = INTDIM_OK};
    s.buf = intdim__alloc(CHUNK);
    if (s.buf == NULL)
        return intdim__fail_nomem("the checkpoint write buffer", CHUNK);
    char *tmp = NULL, *target = NULL;
    int status = intdim__replace_target(path, &target);
    if (target != NULL)
        path = target;
    if (status == INTDIM_OK)
        status = intdim__open_temp(path, &tmp, &s.fd);
    if (status != INTDIM_OK) {
        intdim__free(s.buf);
        intdim__free(target);
        return status;
    }
    put_desc(&s, c);
    put_f32s(&s, t->theta_d, t->d);
    put_f32s(&s, t->m, t->d);
    put_f32s(&s, t->v, t->d);
    uint32_t crc = s.crc;
    put_u32(&s, crc);
    sink_flush(&s);
    status = intdim__commit_temp(s.fd, tmp, path, s.status);
    intdim__free(s.buf);
    intdim__free(target);
    return status;
}

static void settings_to_array(const optim_settings *s, double *values)
{
    for (int i = 0; i < N_SETTINGS; i++)
        (void)intdim__optim_get(s, i, &values[i]);
}

INTDIM_API int intdim_trainer_save(const intdim_trainer *t, const char *path)
{
    if (t == NULL || path == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_save: %s is NULL",
                            t == NULL ? "trainer" : "path");
    ckpt_desc c;
    int status = describe_proj(t->proj, &c);
    if (status != INTDIM_OK)
        return status;
    c.theta0_hash = t->theta0_hash;
    settings_to_array(&t->settings, c.settings);
    c.step = t->step;
    c.updates = t->updates;
    c.skipped = t->skipped;
    status = write_file(t, &c, path);
    desc_free(&c);
    return status;
}

/* ---- reading ----------------------------------------------------------------------- */

typedef struct source {
    int fd;
    const char *path;
    unsigned char *buf;
    size_t have, pos;
    uint32_t crc;
    int status;
} source;

static int refuse_format(const char *path, const char *why)
{
    return intdim__fail(INTDIM_EFORMAT, "checkpoint %s refused: %s", path, why);
}

/* Fill dst with n bytes; on a short read or I/O error dst is zeroed and status set. */
static void get_bytes(source *s, void *dst, size_t n)
{
    unsigned char *out = dst;
    while (n > 0) {
        if (s->status != INTDIM_OK) {
            memset(out, 0, n);
            return;
        }
        if (s->pos == s->have) {
            ssize_t r = read(s->fd, s->buf, CHUNK);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                s->status = intdim__fail(INTDIM_EIO, "reading %s: %s", s->path, strerror(errno));
            else if (r == 0)
                s->status = refuse_format(s->path, "truncated");
            s->have = r > 0 ? (size_t)r : 0;
            s->pos = 0;
            continue;
        }
        size_t take = s->have - s->pos < n ? s->have - s->pos : n;
        memcpy(out, s->buf + s->pos, take);
        s->crc = intdim__crc32(s->crc, out, take);
        s->pos += take;
        out += take;
        n -= take;
    }
}

static uint32_t get_u32(source *s)
{
    unsigned char b[4];
    get_bytes(s, b, 4);
    uint32_t x = 0;
    for (int i = 0; i < 4; i++)
        x |= (uint32_t)b[i] << (8 * i);
    return x;
}

static uint64_t get_u64(source *s)
{
    unsigned char b[8];
    get_bytes(s, b, 8);
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x |= (uint64_t)b[i] << (8 * i);
    return x;
}

static double get_f64(source *s)
{
    uint64_t bits = get_u64(s);
    double x;
    memcpy(&x, &bits, 8);
    return x;
}

/* n floats into dst, or only through the CRC when dst is NULL. */
static void get_f32s(source *s, float *dst, uint64_t n)
{
    for (uint64_t i = 0; i < n && s->status == INTDIM_OK; i++) {
        uint32_t bits = get_u32(s);
        if (dst != NULL)
            memcpy(&dst[i], &bits, 4);
    }
}

/* The fixed head up to n_groups; checks magic and version. */
static void get_head(source *s, ckpt_desc *c)
{
    char magic[MAGIC_BYTES];
    get_bytes(s, magic, MAGIC_BYTES);
    uint32_t version = get_u32(s);
    c->tables = get_u32(s);
    c->kind = get_u32(s);
    c->said = get_u32(s);
    c->per_group = get_u32(s);
    c->log2_block = get_u32(s);
    c->D = get_u64(s);
    c->d = get_u64(s);
    c->seed = get_u64(s);
    c->density = get_f64(s);
    c->memory_budget = get_f64(s);
    c->n_groups = get_u64(s);
    if (s->status != INTDIM_OK)
        return;
    if (memcmp(magic, CKPT_MAGIC, MAGIC_BYTES) != 0)
        s->status = refuse_format(s->path, "not a libintdim checkpoint (bad magic)");
    else if (version < CKPT_OLDEST_VERSION || version > CKPT_VERSION)
        s->status = intdim__fail(INTDIM_EFORMAT, "checkpoint %s refused: version %u, this "
                                                 "library reads versions %u to %u", s->path,
                                 version, CKPT_OLDEST_VERSION, CKPT_VERSION);
    else if ((version < 3 && c->log2_block != 0) || (version < 4 && c->tables != 0))
        s->status = refuse_format(s->path, "a reserved field is not zero");
    else if (c->tables > 1 ||
             (c->tables && (c->kind != INTDIM_PROJ_FASTFOOD || c->said || c->per_group ||
                            c->log2_block != 0)))
        s->status = refuse_format(s->path, "the explicit-tables flag does not fit the "
                                           "projection it describes");
}

/* The file's exact size from its head, or 0 if the head's counts cannot describe a file. */
static uint64_t expected_size(const ckpt_desc *c)
{
    const uint64_t limit = UINT64_C(1) << 60;
    if (c->n_groups > limit / 8 || c->d > limit / 12)
        return 0;
    return FIXED_HEAD + 8 * c->n_groups + FIXED_MID + 12 * c->d + CRC_BYTES;
}

static void get_rest_of_desc(source *s, ckpt_desc *c)
{
    for (uint64_t g = 0; g < c->n_groups; g++)
        c->group_sizes[g] = get_u64(s);
    c->theta0_hash = get_u64(s);
    uint32_t n_settings = get_u32(s);
    uint32_t reserved = get_u32(s); /* 0 in every version */
    for (int i = 0; i < N_SETTINGS; i++)
        c->settings[i] = get_f64(s);
    c->step = get_u64(s);
    c->updates = get_u64(s);
    c->skipped = get_u64(s);
    if (s->status == INTDIM_OK && n_settings != N_SETTINGS)
        s->status = refuse_format(s->path, "unexpected number of settings");
    else if (s->status == INTDIM_OK && reserved != 0)
        s->status = refuse_format(s->path, "a reserved field is not zero");
}

/* Is value within the range intdim_proj_create_ex accepts for param? */
static int proj_param_ok(int param, double value)
{
    double lo, hi;
    return intdim_proj_param_bounds(param, &lo, &hi) == INTDIM_OK && value >= lo && value <= hi;
}

/* The creation parameters and shape a projection of this description could have had: what
 * intdim_proj_create_ex would refuse is a format error here, not an INTDIM_EINVAL from
 * recreating it later. */
static int projection_is_possible(const ckpt_desc *c)
{
    uint64_t d_lin = c->said ? c->d - c->n_groups : c->d; /* c->d > n_groups checked first */
    if (c->said && (c->n_groups == 0 || c->d <= c->n_groups)) /* SAID needs 1 <= m < d */
        return 0;
    if (!proj_param_ok(INTDIM_PROJ_MEMORY_BUDGET, c->memory_budget))
        return 0;
    if (c->kind == INTDIM_PROJ_SPARSE ? !proj_param_ok(INTDIM_PROJ_SPARSE_DENSITY, c->density)
                                      : c->density != 0.0)
        return 0;
    if (c->kind == INTDIM_PROJ_IDENTITY && d_lin != c->D) /* so SAID over it has d > D */
        return 0;
    if (c->per_group && (c->kind != INTDIM_PROJ_FASTFOOD || c->n_groups == 0))
        return 0;
    return d_lin >= 1 && c->d <= c->D; /* d counts SAID's scales too, and never exceeds D */
}

/* Values a valid writer never produces (checked after the CRC: a file whose CRC matches
 * but whose content is nonsense was made by something else). */
static int check_values(const ckpt_desc *c, optim_settings *settings, const char *path)
{
    intdim__optim_defaults(settings);
    for (int i = 0; i < N_SETTINGS; i++)
        if (intdim__optim_set(settings, i, c->settings[i]) != INTDIM_OK)
            return refuse_format(path, "a setting is out of range");
    if (c->kind > INTDIM_PROJ_FASTFOOD || c->said > 1 || c->per_group > 1 ||
        c->log2_block > 32 ||
        (c->log2_block != 0 && (c->kind != INTDIM_PROJ_FASTFOOD || c->per_group)) || c->D == 0 ||
        c->d == 0 || c->updates > c->step ||
        c->skipped > c->step || !projection_is_possible(c))
        return refuse_format(path, "inconsistent projection description or counters");
    uint64_t sum = 0;
    for (uint64_t g = 0; g < c->n_groups; g++) {
        /* each size <= D - sum: no wrap-around, and the sum never passes D */
        if (c->group_sizes[g] == 0 || c->group_sizes[g] > c->D - sum)
            return refuse_format(path, "bad group size");
        sum += c->group_sizes[g];
    }
    if (c->n_groups > 0 && sum != c->D)
        return refuse_format(path, "group sizes do not sum to D");
    return INTDIM_OK;
}

/* Read and verify the whole file. The vectors go to theta_d/m/v (length dst_d) when the
 * file's d equals dst_d, else only through the CRC. On success c->group_sizes is owned by
 * the caller; on failure nothing is. */
static int read_file(const char *path, ckpt_desc *c, optim_settings *settings, float *theta_d,
                     float *m, float *v, uint64_t dst_d)
{
    memset(c, 0, sizeof *c);
    source s = {.fd = -1, .path = path, .status = INTDIM_OK};
    s.buf = intdim__alloc(CHUNK);
    if (s.buf == NULL)
        return intdim__fail_nomem("the checkpoint read buffer", CHUNK);
    s.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s.fd < 0) {
        int status = intdim__fail(INTDIM_EIO, "opening %s: %s", path, strerror(errno));
        intdim__free(s.buf);
        return status;
    }
    struct stat st;
    if (fstat(s.fd, &st) != 0)
        s.status = intdim__fail(INTDIM_EIO, "fstat of %s: %s", path, strerror(errno));
    get_head(&s, c);
    if (s.status == INTDIM_OK && (uint64_t)st.st_size != expected_size(c))
        s.status = refuse_format(path, "size does not match its header (truncated or corrupt)");
    if (s.status == INTDIM_OK && c->n_groups > 0) {
        c->group_sizes = intdim__calloc(c->n_groups, sizeof(uint64_t));
        if (c->group_sizes == NULL)
            s.status = intdim__fail_nomem("the group sizes", c->n_groups * sizeof(uint64_t));
    }
    if (s.status == INTDIM_OK)
        get_rest_of_desc(&s, c);
    int into = c->d == dst_d;
    get_f32s(&s, into ? theta_d : NULL, c->d);
    get_f32s(&s, into ? m : NULL, c->d);
    get_f32s(&s, into ? v : NULL, c->d);
    uint32_t computed = s.crc;
    uint32_t stored = get_u32(&s);
    if (s.status == INTDIM_OK && stored != computed)
        s.status = refuse_format(path, "CRC mismatch (corrupt)");
    if (s.status == INTDIM_OK)
        s.status = check_values(c, settings, path);
    if (s.status == INTDIM_OK && into &&
        !(intdim__all_finite(theta_d, c->d) && intdim__all_finite(m, c->d) &&
          intdim__all_finite(v, c->d)))
        s.status = refuse_format(path, "non-finite optimizer state");
    close(s.fd);
    intdim__free(s.buf);
    if (s.status != INTDIM_OK)
        desc_free(c);
    return s.status;
}

/* EMISMATCH unless the file's projection is the trainer's (budget excepted: it limits,
 * but does not define, the projection). */
static int check_same_proj(const ckpt_desc *file, const ckpt_desc *mine, const char *path)
{
    int same = file->tables == mine->tables && file->kind == mine->kind &&
               file->said == mine->said &&
               file->per_group == mine->per_group && file->log2_block == mine->log2_block &&
               file->D == mine->D &&
               file->d == mine->d && file->seed == mine->seed &&
               file->n_groups == mine->n_groups &&
               memcmp(&file->density, &mine->density, sizeof(double)) == 0;
    for (uint64_t g = 0; same && g < file->n_groups; g++)
        same = file->group_sizes[g] == mine->group_sizes[g];
    if (!same)
        return intdim__fail(INTDIM_EMISMATCH,
                            "checkpoint %s is for another projection (file: kind %u, D %llu, "
                            "d %llu, %s %llu; trainer: kind %u, D %llu, d %llu, %s %llu)",
                            path, file->kind, (unsigned long long)file->D,
                            (unsigned long long)file->d, file->tables ? "tables hash" : "seed",
                            (unsigned long long)file->seed, mine->kind,
                            (unsigned long long)mine->D, (unsigned long long)mine->d,
                            mine->tables ? "tables hash" : "seed",
                            (unsigned long long)mine->seed);
    return INTDIM_OK;
}

INTDIM_API int intdim_trainer_load(intdim_trainer *t, const char *path)
{
    if (t == NULL || path == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_trainer_load: %s is NULL",
                            t == NULL ? "trainer" : "path");
    int status = intdim__trainer_refuse_if_busy(t, "intdim_trainer_load");
    if (status != INTDIM_OK)
        return status;
    ckpt_desc mine;
    status = describe_proj(t->proj, &mine);
    if (status != INTDIM_OK)
        return status;
    ckpt_desc file;
    optim_settings settings;
    /* the spare arrays are scratch between steps: stage the state there */
    status = read_file(path, &file, &settings, t->theta_d_next, t->m_next, t->v_next, t->d);
    if (status == INTDIM_OK)
        status = check_same_proj(&file, &mine, path);
    if (status == INTDIM_OK && file.theta0_hash != t->theta0_hash)
        status = intdim__fail(INTDIM_EMISMATCH, "checkpoint %s was trained from another "
                                                "theta0 (hash %016llx, trainer's %016llx)", path,
                              (unsigned long long)file.theta0_hash,
                              (unsigned long long)t->theta0_hash);
    if (status == INTDIM_OK) {
        intdim__trainer_commit_next(t);
        t->settings = settings;
        t->step = file.step;
        t->updates = file.updates;
        t->skipped = file.skipped;
    }
    desc_free(&file);
    desc_free(&mine);
    return status;
}

INTDIM_API int intdim_checkpoint_proj(intdim_proj **out, const char *path)
{
    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_checkpoint_proj: %s is NULL",
                            path == NULL ? "path" : "out");
    ckpt_desc c;
    optim_settings settings;
    int status = read_file(path, &c, &settings, NULL, NULL, NULL, UINT64_MAX);
    if (status == INTDIM_OK && c.tables)
        status = intdim__fail(INTDIM_EUNSUPPORTED, "checkpoint %s: its projection was made from "
                                                   "explicit Fastfood tables, which the file "
                                                   "does not hold; create it again with "
                                                   "intdim_proj_create_fastfood_tables and load "
                                                   "the checkpoint into a trainer over it", path);
    if (status != INTDIM_OK) {
        desc_free(&c);
        return status;
    }
    size_t *sizes = NULL;
    if (c.n_groups > 0) {
        sizes = intdim__calloc(c.n_groups, sizeof(size_t));
        if (sizes == NULL) {
            desc_free(&c);
            return intdim__fail_nomem("the group sizes", c.n_groups * sizeof(size_t));
        }
        for (uint64_t g = 0; g < c.n_groups; g++)
            sizes[g] = (size_t)c.group_sizes[g];
    }
    int ids[5];
    double values[5];
    size_t n = 0;
    ids[n] = INTDIM_PROJ_MEMORY_BUDGET, values[n++] = c.memory_budget;
    if (c.kind == INTDIM_PROJ_SPARSE)
        ids[n] = INTDIM_PROJ_SPARSE_DENSITY, values[n++] = c.density;
    if (c.said)
        ids[n] = INTDIM_PROJ_SAID, values[n++] = 1.0;
    if (c.per_group)
        ids[n] = INTDIM_PROJ_FASTFOOD_PER_GROUP, values[n++] = 1.0;
    if (c.log2_block != 0)
        ids[n] = INTDIM_PROJ_FASTFOOD_BLOCK, values[n++] = ldexp(1.0, (int)c.log2_block);
    status = intdim_proj_create_ex(out, (intdim_proj_kind)c.kind, (size_t)c.D, (size_t)c.d,
                                   c.seed, (size_t)c.n_groups, sizes, n, ids, values);
    intdim__free(sizes);
    desc_free(&c);
    if (status == INTDIM_EINVAL) { /* a description read_file missed: still the file's fault */
        char why[256];
        snprintf(why, sizeof why, "%s", intdim_last_error());
        status = intdim__fail(INTDIM_EFORMAT, "checkpoint %s: inconsistent projection "
                                              "description (%s)", path, why);
    }
    return status;
}
