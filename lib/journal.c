/* The search journal: a plain-text, append-only record of finished trials.
 *
 *   intdim-journal 1
 *   config D=1000 strategy=0 fraction=0.90000000000000002 baseline=nan seeds=1 kind=3 ...
 *   dgrid log d_min=2 d_max=1000 n_d=40          (or: dgrid list)
 *   d 2 3 4 ...                                  (the resolved grid)
 *   lrs 0.01 0.029999999999999999 ...
 *   groups 100 100 ...                           (empty when none)
 *   train 0=1 8=2 ...                            (trainer settings, by intdim_train_param)
 *   header_crc 1a2b3c4d                          (CRC-32 of every byte above)
 *   # id d kind said lr seed train_metric eval_metric steps seconds status crc32
 *   T 5 10 3 0 0.01 1234 nan 1 300 0.0123 0 89abcdef
 *
 * Every row carries a CRC-32 of its own text, and its (d, kind, said, lr, seed) must be the
 * ones the configuration gives its id. Rows are written with one write() each and fsync'd,
 * so a process killed at any moment leaves at most one torn last line (no newline), which
 * readers drop with a warning. Doubles are printed with 17 significant digits: they read
 * back to the same bits, so a rebuilt search computes exactly the same d90. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "search_impl.h"

#define ROW_MAX 512

/* ---- a growable string --------------------------------------------------------------- */

typedef struct strbuf {
    char *data;
    size_t len, cap;
    int failed;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) INTDIM_PRINTF(2, 3);

static void sb_printf(strbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data != NULL ? b->data + b->len : NULL,
                          b->data != NULL ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->data != NULL && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap : 256);
        while (cap <= b->len + (size_t)n)
            cap *= 2;
        char *grown = intdim__alloc(cap);
        if (grown == NULL) {
            b->failed = 1;
            return;
        }
        if (b->data != NULL)
            memcpy(grown, b->data, b->len);
        intdim__free(b->data);
        b->data = grown;
        b->cap = cap;
    }
}

/* NaN prints as "nan" whatever its sign bit. */
static const char *fmt_double(char *buf, size_t n, double v)
{
    if (isnan(v))
        snprintf(buf, n, "nan");
    else
        snprintf(buf, n, "%.17g", v);
    return buf;
}

/* ---- header ---------------------------------------------------------------------------- */

#define COLUMNS_LINE "# id d kind said lr seed train_metric eval_metric steps seconds status crc32\n"

static int build_header(const intdim_search *s, strbuf *b)
{
    char x[64], y[64];
    double d_max;
    intdim_search_get(s, INTDIM_SEARCH_D_MAX, &d_max);
    sb_printf(b, "%s %d\n", INTDIM_JOURNAL_MAGIC, INTDIM_JOURNAL_VERSION);
    sb_printf(b, "config D=%zu strategy=%d fraction=%s baseline=%s seeds=%zu kind=%d said=%d "
                 "base_seed=%llu bootstrap=%zu steps=%llu",
              s->D, s->strategy, fmt_double(x, sizeof x, s->fraction),
              fmt_double(y, sizeof y, s->baseline_given), s->seeds, s->kind, s->said,
              (unsigned long long)s->base_seed, s->bootstrap, (unsigned long long)s->steps);
    /* only when set: journals of one-block searches keep the line they always had */
    if (s->ff_block > 0)
        sb_printf(b, " block=%zu", s->ff_block);
    if (s->label[0] != '\0') /* likewise only when set */
        sb_printf(b, " label=%s", s->label);
    sb_printf(b, "\n");
    if (s->d_list != NULL)
        sb_printf(b, "dgrid list\n");
    else
        sb_printf(b, "dgrid log d_min=%zu d_max=%zu n_d=%zu\n", s->d_min, (size_t)d_max, s->n_d);
    sb_printf(b, "d");
    for (size_t i = 0; i < s->n_grid; i++)
        sb_printf(b, " %zu", s->grid[i]);
    sb_printf(b, "\nlrs");
    for (size_t i = 0; i < s->n_lrs; i++)
        sb_printf(b, " %s", fmt_double(x, sizeof x, s->lrs[i]));
    sb_printf(b, "\ngroups");
    for (size_t i = 0; i < s->n_groups; i++)
        sb_printf(b, " %zu", s->groups[i]);
    sb_printf(b, "\ntrain");
    for (int k = 0; k < SEARCH_N_TRAIN_PARAMS; k++)
        if (s->train_set[k])
            sb_printf(b, " %d=%s", k, fmt_double(x, sizeof x, s->train_value[k]));
    sb_printf(b, "\n");
    uint32_t crc = b->failed ? 0 : intdim__crc32(0, b->data, b->len);
    sb_printf(b, "header_crc %08x\n%s", (unsigned)crc, COLUMNS_LINE);
    if (b->failed) {
        size_t wanted = b->cap * 2;
        intdim__free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
        return intdim__fail_nomem("the journal header", wanted);
    }
    return INTDIM_OK;
}

static size_t format_row(const intdim_search *s, uint64_t id, char *row)
{
    const search_trial *t = &s->trials[id];
    char lr[64], train[64], eval[64];
    int n = snprintf(row, ROW_MAX, "T %llu %zu %d %d %s %llu %s %s %llu %.6g %d",
                     (unsigned long long)id, t->d, t->kind, t->said,
                     fmt_double(lr, sizeof lr, t->lr), (unsigned long long)t->seed,
                     fmt_double(train, sizeof train, t->train_metric),
                     fmt_double(eval, sizeof eval, t->eval_metric),
                     (unsigned long long)t->steps, t->seconds, t->status);
    uint32_t crc = intdim__crc32(0, row, (size_t)n);
    n += snprintf(row + n, ROW_MAX - (size_t)n, " %08x\n", (unsigned)crc);
    return (size_t)n;
}

/* ---- files ---------------------------------------------------------------------------- */

static int read_whole(const char *path, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return intdim__fail(INTDIM_EIO, "journal: cannot open %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = intdim__alloc(cap);
    int rc = buf == NULL ? intdim__fail_nomem("the journal text", cap) : INTDIM_OK;
    while (rc == INTDIM_OK) {
        if (n + 1 >= cap) {
            char *grown = intdim__alloc(cap * 2);
            if (grown == NULL) {
                rc = intdim__fail_nomem("the journal text", cap * 2);
                break;
            }
            memcpy(grown, buf, n);
            intdim__free(buf);
            buf = grown;
            cap *= 2;
        }
        errno = 0;
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                rc = intdim__fail(INTDIM_EIO, "journal: reading %s failed: %s", path,
                                  strerror(errno != 0 ? errno : EIO));
            break;
        }
    }
    fclose(f);
    if (rc != INTDIM_OK) {
        intdim__free(buf);
        return rc;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return INTDIM_OK;
}

/* Write text to path atomically (fileio.h). */
static int write_atomic(const char *path, const char *text, size_t len)
{
    char *tmp = NULL, *target = NULL;
    int fd = -1;
    int status = intdim__replace_target(path, &target);
    if (status == INTDIM_OK)
        status = intdim__open_temp(target != NULL ? target : path, &tmp, &fd);
    if (status != INTDIM_OK) {
        intdim__free(target);
        return status;
    }
    if (intdim__write_fully(fd, text, len) != 0)
        status = intdim__fail(INTDIM_EIO, "journal: writing %s: %s", tmp, strerror(errno));
    status = intdim__commit_temp(fd, tmp, target != NULL ? target : path, status);
    intdim__free(target);
    return status;
}

/* ---- parsing --------------------------------------------------------------------------- */

/* Split the next space-separated token of [*p, end). Returns 0 at the end of the line. */
static int next_token(const char **p, const char *end, char *tok, size_t cap)
{
    const char *q = *p;
    if (q >= end)
        return 0;
    const char *stop = memchr(q, ' ', (size_t)(end - q));
    if (stop == NULL)
        stop = end;
    size_t n = (size_t)(stop - q);
    if (n == 0 || n >= cap)
        return -1;
    memcpy(tok, q, n);
    tok[n] = '\0';
    *p = stop < end ? stop + 1 : end;
    return 1;
}

static int parse_u64(const char *tok, uint64_t *v)
{
    if (tok[0] < '0' || tok[0] > '9')
        return 0;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(tok, &end, 10);
    if (errno != 0 || *end != '\0')
        return 0;
    *v = x;
    return 1;
}

static int parse_int(const char *tok, int *v)
{
    char *end;
    errno = 0;
    long x = strtol(tok, &end, 10);
    if (errno != 0 || *end != '\0' || end == tok || x < -1000000 || x > 1000000)
        return 0;
    *v = (int)x;
    return 1;
}

static int parse_double(const char *tok, double *v)
{
    char *end;
    errno = 0;
    double x = strtod(tok, &end);
    if (end == tok || *end != '\0')
        return 0;
    *v = x;
    return 1;
}

/* "key=value" with the expected key. */
static int parse_kv(const char **p, const char *end, const char *key, char *value, size_t cap)
{
    char tok[128];
    if (next_token(p, end, tok, sizeof tok) != 1)
        return 0;
    size_t k = strlen(key);
    if (strncmp(tok, key, k) != 0 || tok[k] != '=' || strlen(tok + k + 1) >= cap)
        return 0;
    strcpy(value, tok + k + 1);
    return 1;
}

typedef struct line {
    const char *start, *end; /* end excludes the newline */
} line;

/* The header's lines (fixed count) and where the rows begin. */
enum { HEADER_LINES = 9 };

static int split_header(const char *path, const char *text, size_t len, line *lines,
                        size_t *rows_at)
{
    const char *p = text, *end = text + len;
    for (int i = 0; i < HEADER_LINES; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            return intdim__fail(INTDIM_EFORMAT, "journal %s: header is truncated (line %d)", path,
                                i + 1);
        lines[i].start = p;
        lines[i].end = nl;
        p = nl + 1;
        if (i == 0) {
            size_t m = strlen(INTDIM_JOURNAL_MAGIC);
            if ((size_t)(nl - lines[0].start) <= m ||
                strncmp(lines[0].start, INTDIM_JOURNAL_MAGIC " ", m + 1) != 0)
                return intdim__fail(INTDIM_EFORMAT, "journal %s: not an intdim journal", path);
            int version = 0;
            char tok[32];
            const char *q = lines[0].start + m + 1;
            if (next_token(&q, nl, tok, sizeof tok) != 1 || !parse_int(tok, &version) ||
                version != INTDIM_JOURNAL_VERSION)
                return intdim__fail(INTDIM_EFORMAT, "journal %s: format version '%.*s' is not %d",
                                    path, (int)(nl - lines[0].start - (ptrdiff_t)m - 1),
                                    lines[0].start + m + 1, INTDIM_JOURNAL_VERSION);
        }
    }
    char expect[32];
    uint32_t crc = intdim__crc32(0, text, (size_t)(lines[7].start - text));
    snprintf(expect, sizeof expect, "header_crc %08x", (unsigned)crc);
    if ((size_t)(lines[7].end - lines[7].start) != strlen(expect) ||
        memcmp(lines[7].start, expect, strlen(expect)) != 0)
        return intdim__fail(INTDIM_EFORMAT, "journal %s: header checksum does not match (corrupt "
                                            "header)", path);
    *rows_at = (size_t)(p - text);
    return INTDIM_OK;
}

static int bad_header(const char *path, int line_no)
{
    return intdim__fail(INTDIM_EFORMAT, "journal %s: header line %d is malformed", path, line_no);
}

/* A setter's refusal means a malformed header, but running out of memory stays ENOMEM. */
static int keep_nomem(int rc, const char *path, int line_no)
{
    if (rc == INTDIM_OK || rc == INTDIM_ENOMEM)
        return rc;
    return bad_header(path, line_no);
}

/* The config line's optional tail, in this order, each only when set: " block=N" (N > 0),
 * " label=TEXT". 1 when well formed. */
static int parse_optional_kvs(const char **p, const char *end, uint64_t *block, char *label,
                              size_t label_size)
{
    char v[64];
    const char *save = *p;
    if (*p != end && parse_kv(p, end, "block", v, sizeof v)) {
        if (!parse_u64(v, block) || *block == 0)
            return 0;
    } else {
        *p = save;
    }
    if (*p != end && !parse_kv(p, end, "label", label, label_size))
        return 0;
    return 1;
}

static int parse_config_line(const char *path, const line *l, intdim_search **out)
{
    const char *p = l->start;
    char tok[64], v[64], label[64] = "";
    uint64_t D, seeds, base_seed, bootstrap, steps, block = 0;
    int strategy, kind, said;
    double fraction, baseline;
    if (next_token(&p, l->end, tok, sizeof tok) != 1 || strcmp(tok, "config") != 0 ||
        !parse_kv(&p, l->end, "D", v, sizeof v) || !parse_u64(v, &D) ||
        !parse_kv(&p, l->end, "strategy", v, sizeof v) || !parse_int(v, &strategy) ||
        !parse_kv(&p, l->end, "fraction", v, sizeof v) || !parse_double(v, &fraction) ||
        !parse_kv(&p, l->end, "baseline", v, sizeof v) || !parse_double(v, &baseline) ||
        !parse_kv(&p, l->end, "seeds", v, sizeof v) || !parse_u64(v, &seeds) ||
        !parse_kv(&p, l->end, "kind", v, sizeof v) || !parse_int(v, &kind) ||
        !parse_kv(&p, l->end, "said", v, sizeof v) || !parse_int(v, &said) ||
        !parse_kv(&p, l->end, "base_seed", v, sizeof v) || !parse_u64(v, &base_seed) ||
        !parse_kv(&p, l->end, "bootstrap", v, sizeof v) || !parse_u64(v, &bootstrap) ||
        !parse_kv(&p, l->end, "steps", v, sizeof v) || !parse_u64(v, &steps) ||
        !parse_optional_kvs(&p, l->end, &block, label, sizeof label) || p != l->end)
        return bad_header(path, 2);
    if (D == 0 || D > ((uint64_t)1 << 40))
        return bad_header(path, 2);
    intdim_search *s;
    int rc = intdim_search_create(&s, (size_t)D);
    if (rc != INTDIM_OK)
        return rc;
    const struct {
        int param;
        double value;
    } settings[] = {
        {INTDIM_SEARCH_STRATEGY, strategy}, {INTDIM_SEARCH_FRACTION, fraction},
        {INTDIM_SEARCH_BASELINE, baseline}, {INTDIM_SEARCH_SEEDS, (double)seeds},
        {INTDIM_SEARCH_KIND, kind}, {INTDIM_SEARCH_SAID, said},
        {INTDIM_SEARCH_BASE_SEED, (double)base_seed},
        {INTDIM_SEARCH_BOOTSTRAP, (double)bootstrap}, {INTDIM_SEARCH_STEPS, (double)steps},
        {INTDIM_SEARCH_FASTFOOD_BLOCK, (double)block},
    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0] && rc == INTDIM_OK; i++)
        if (intdim_search_set(s, settings[i].param, settings[i].value) != INTDIM_OK)
            rc = bad_header(path, 2);
    if (rc == INTDIM_OK && label[0] != '\0' && intdim_search_set_label(s, label) != INTDIM_OK)
        rc = bad_header(path, 2);
    if (rc != INTDIM_OK) {
        intdim_search_destroy(s);
        return rc;
    }
    *out = s;
    return INTDIM_OK;
}

/* Count the tokens after the line's keyword (which must be `keyword`). */
static int count_tokens(const line *l, const char *keyword, size_t *count)
{
    const char *p = l->start;
    char tok[64];
    if (next_token(&p, l->end, tok, sizeof tok) != 1 || strcmp(tok, keyword) != 0)
        return 0;
    size_t n = 0;
    int r;
    while ((r = next_token(&p, l->end, tok, sizeof tok)) == 1)
        n++;
    *count = n;
    return r == 0;
}

static int parse_dgrid(const char *path, const line *dgrid, const line *dline, intdim_search *s)
{
    const char *p = dgrid->start;
    char tok[64], v[64];
    if (next_token(&p, dgrid->end, tok, sizeof tok) != 1 || strcmp(tok, "dgrid") != 0 ||
        next_token(&p, dgrid->end, tok, sizeof tok) != 1)
        return bad_header(path, 3);
    if (strcmp(tok, "log") == 0) {
        uint64_t lo, hi, n;
        if (!parse_kv(&p, dgrid->end, "d_min", v, sizeof v) || !parse_u64(v, &lo) ||
            !parse_kv(&p, dgrid->end, "d_max", v, sizeof v) || !parse_u64(v, &hi) ||
            !parse_kv(&p, dgrid->end, "n_d", v, sizeof v) || !parse_u64(v, &n) ||
            p != dgrid->end || intdim_search_set(s, INTDIM_SEARCH_D_MIN, (double)lo) != 0 ||
            intdim_search_set(s, INTDIM_SEARCH_D_MAX, (double)hi) != 0 ||
            intdim_search_set(s, INTDIM_SEARCH_N_D, (double)n) != 0)
            return bad_header(path, 3);
        return INTDIM_OK;
    }
    if (strcmp(tok, "list") != 0 || p != dgrid->end)
        return bad_header(path, 3);
    size_t n;
    if (!count_tokens(dline, "d", &n) || n == 0 || n > SEARCH_MAX_D_LIST)
        return bad_header(path, 4);
    size_t *ds = intdim__alloc(n * sizeof *ds);
    if (ds == NULL)
        return intdim__fail_nomem("the d list", n * sizeof *ds);
    p = dline->start + 2;
    int rc = INTDIM_OK;
    for (size_t i = 0; i < n && rc == INTDIM_OK; i++) {
        uint64_t x = 0;
        if (next_token(&p, dline->end, tok, sizeof tok) != 1 || !parse_u64(tok, &x))
            rc = bad_header(path, 4);
        ds[i] = (size_t)x;
    }
    if (rc == INTDIM_OK)
        rc = keep_nomem(intdim_search_set_d_list(s, ds, n), path, 4);
    intdim__free(ds);
    return rc;
}

static int parse_lrs(const char *path, const line *l, intdim_search *s)
{
    size_t n;
    if (!count_tokens(l, "lrs", &n) || n == 0 || n > 1000)
        return bad_header(path, 5);
    double lrs[1000];
    const char *p = l->start + 4;
    char tok[64];
    for (size_t i = 0; i < n; i++)
        if (next_token(&p, l->end, tok, sizeof tok) != 1 || !parse_double(tok, &lrs[i]))
            return bad_header(path, 5);
    return keep_nomem(intdim_search_set_lrs(s, lrs, n), path, 5);
}

static int parse_groups(const char *path, const line *l, intdim_search *s)
{
    size_t n;
    if (!count_tokens(l, "groups", &n) || n > s->D)
        return bad_header(path, 6);
    if (n == 0)
        return INTDIM_OK;
    size_t *sizes = intdim__alloc(n * sizeof *sizes);
    if (sizes == NULL)
        return intdim__fail_nomem("the group sizes", n * sizeof *sizes);
    const char *p = l->start + 7;
    char tok[64];
    int rc = INTDIM_OK;
    for (size_t i = 0; i < n && rc == INTDIM_OK; i++) {
        uint64_t x = 0;
        if (next_token(&p, l->end, tok, sizeof tok) != 1 || !parse_u64(tok, &x))
            rc = bad_header(path, 6);
        sizes[i] = (size_t)x;
    }
    if (rc == INTDIM_OK)
        rc = keep_nomem(intdim_search_set_groups(s, sizes, n), path, 6);
    intdim__free(sizes);
    return rc;
}

static int parse_train(const char *path, const line *l, intdim_search *s)
{
    size_t n;
    if (!count_tokens(l, "train", &n))
        return bad_header(path, 7);
    const char *p = l->start + 5;
    if (p < l->end)
        p++;
    char tok[64];
    for (size_t i = 0; i < n; i++) {
        int k;
        double v;
        if (next_token(&p, l->end, tok, sizeof tok) != 1)
            return bad_header(path, 7);
        char *eq = strchr(tok, '=');
        if (eq == NULL)
            return bad_header(path, 7);
        *eq = '\0';
        if (!parse_int(tok, &k) || !parse_double(eq + 1, &v) ||
            intdim_search_set_train_param(s, k, v) != INTDIM_OK)
            return bad_header(path, 7);
    }
    return INTDIM_OK;
}

/* A search from a journal's header; the header must be exactly what that search writes. */
static int search_from_header(const char *path, const char *text, const line *lines,
                              intdim_search **out)
{
    intdim_search *s = NULL;
    int rc = parse_config_line(path, &lines[1], &s);
    if (rc != INTDIM_OK)
        return rc;
    rc = parse_dgrid(path, &lines[2], &lines[3], s);
    if (rc == INTDIM_OK)
        rc = parse_lrs(path, &lines[4], s);
    if (rc == INTDIM_OK)
        rc = parse_groups(path, &lines[5], s);
    if (rc == INTDIM_OK)
        rc = parse_train(path, &lines[6], s);
    if (rc == INTDIM_OK)
        rc = intdim__search_freeze(s);
    strbuf b = {0};
    if (rc == INTDIM_OK)
        rc = build_header(s, &b);
    size_t header_len = (size_t)(lines[HEADER_LINES - 1].end + 1 - text);
    if (rc == INTDIM_OK && (b.len != header_len || memcmp(b.data, text, b.len) != 0))
        rc = intdim__fail(INTDIM_EFORMAT, "journal %s: header is not in canonical form", path);
    intdim__free(b.data);
    if (rc != INTDIM_OK) {
        intdim_search_destroy(s);
        return rc;
    }
    *out = s;
    return INTDIM_OK;
}

/* ---- rows ------------------------------------------------------------------------------ */

enum dup_policy { DUP_STRICT, DUP_KEEP_FIRST };

typedef struct row_fields {
    uint64_t id, seed, steps;
    uint64_t d;
    int kind, said, status;
    double lr, train, eval, seconds;
} row_fields;

static int bad_row(const char *path, size_t row_no, const char *why)
{
    return intdim__fail(INTDIM_EFORMAT, "journal %s: row %zu is malformed (%s)", path, row_no,
                        why);
}

static int parse_row(const char *path, size_t row_no, const line *l, row_fields *f)
{
    const char *p = l->start;
    char tok[13][64];
    int n = 0, r;
    while (n < 13 && (r = next_token(&p, l->end, tok[n], sizeof tok[n])) == 1)
        n++;
    if (n != 13 || p != l->end)
        return bad_row(path, row_no, "expected 13 fields");
    /* The CRC covers everything before " crc32". */
    size_t covered = (size_t)(l->end - l->start) - strlen(tok[12]) - 1;
    char want[16];
    snprintf(want, sizeof want, "%08x", (unsigned)intdim__crc32(0, l->start, covered));
    if (strcmp(want, tok[12]) != 0)
        return bad_row(path, row_no, "checksum mismatch");
    if (strcmp(tok[0], "T") != 0 || !parse_u64(tok[1], &f->id) || !parse_u64(tok[2], &f->d) ||
        !parse_int(tok[3], &f->kind) || !parse_int(tok[4], &f->said) ||
        !parse_double(tok[5], &f->lr) || !parse_u64(tok[6], &f->seed) ||
        !parse_double(tok[7], &f->train) || !parse_double(tok[8], &f->eval) ||
        !parse_u64(tok[9], &f->steps) || !parse_double(tok[10], &f->seconds) ||
        !parse_int(tok[11], &f->status))
        return bad_row(path, row_no, "a field does not parse");
    if (f->status > INTDIM_OK || f->status < INTDIM_ENOTFOUND)
        return bad_row(path, row_no, "unknown status");
    if (f->status == INTDIM_OK ? !isfinite(f->eval) : f->eval != -INFINITY)
        return bad_row(path, row_no, "eval metric inconsistent with status");
    if (!(f->seconds >= 0) || !isfinite(f->seconds))
        return bad_row(path, row_no, "seconds");
    return INTDIM_OK;
}

/* Apply the rows of [text, text+len) to s. A last line without newline is torn: dropped,
 * *torn set, *good_len the length up to it. */
static int load_rows(const char *path, intdim_search *s, const char *text, size_t len,
                     enum dup_policy policy, int *torn, size_t *good_len, size_t *conflicts)
{
    const char *p = text, *end = text + len;
    size_t row_no = 0;
    *torn = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) {
            *torn = 1;
            break;
        }
        line l = {p, nl};
        row_no++;
        row_fields f;
        int rc = parse_row(path, row_no, &l, &f);
        if (rc != INTDIM_OK)
            return rc;
        if (f.id >= s->n_trials)
            return intdim__fail(INTDIM_EMISMATCH, "journal %s: row %zu: trial id %llu is not in "
                                                  "this search's plan", path, row_no,
                                (unsigned long long)f.id);
        const search_trial *t = &s->trials[f.id];
        if (f.d != t->d || f.kind != t->kind || f.said != t->said || f.lr != t->lr ||
            f.seed != t->seed)
            return intdim__fail(INTDIM_EMISMATCH, "journal %s: row %zu: trial %llu is (d %llu, "
                                                  "lr %g, seed %llu) but this search plans (d "
                                                  "%zu, lr %g, seed %llu)", path, row_no,
                                (unsigned long long)f.id, (unsigned long long)f.d, f.lr,
                                (unsigned long long)f.seed, t->d, t->lr,
                                (unsigned long long)t->seed);
        if (t->state == TRIAL_DONE) {
            char row[ROW_MAX];
            size_t n = format_row(s, f.id, row);
            int same = n == (size_t)(nl + 1 - p) && memcmp(row, p, n) == 0;
            if (!same && policy == DUP_STRICT)
                return intdim__fail(INTDIM_EFORMAT, "journal %s: row %zu: trial %llu appears "
                                                    "twice with different results", path,
                                    row_no, (unsigned long long)f.id);
            *conflicts += !same;
        } else {
            intdim__search_mark_done(s, f.id, f.train, f.eval, f.steps, f.seconds, f.status);
        }
        p = nl + 1;
    }
    *good_len = (size_t)(p - text);
    return INTDIM_OK;
}

static void reset_trials(intdim_search *s)
{
    for (size_t i = 0; i < s->n_trials; i++)
        s->trials[i].state = TRIAL_NEW;
    s->n_done = 0;
    s->n_out = 0;
    s->cursor = 0;
}

/* ---- public functions -------------------------------------------------------------------- */

void intdim__journal_close(intdim_search *s)
{
    if (s->journal_fd >= 0)
        close(s->journal_fd);
    s->journal_fd = -1;
}

int intdim__journal_append(intdim_search *s, uint64_t id)
{
    char row[ROW_MAX];
    size_t n = format_row(s, id, row);
    off_t before = lseek(s->journal_fd, 0, SEEK_END);
    const char *step = "appending";
    if (intdim__write_fully(s->journal_fd, row, n) == 0) {
        if (fsync(s->journal_fd) == 0)
            return INTDIM_OK;
        step = "fsync after";
    }
    /* Take the row back, whole or partial: the trial stays outstanding and may be told
     * again, and a kept row that a later tell repeated with other results would make the
     * journal unreadable (a trial twice with different results). */
    int saved = errno;
    if (before < 0 || ftruncate(s->journal_fd, before) != 0)
        return intdim__fail(INTDIM_EIO, "journal: %s trial %llu failed (%s), and the row could "
                                        "not be taken back: %s", step, (unsigned long long)id,
                            strerror(saved), strerror(errno));
    return intdim__fail(INTDIM_EIO, "journal: %s trial %llu failed: %s", step,
                        (unsigned long long)id, strerror(saved));
}

/* Line i (from 0) of a header text: its start and length (without the newline). */
static void header_line(const char *text, size_t len, int i, const char **start, size_t *n)
{
    const char *p = text, *end = text + len;
    for (int k = 0; k < i && p < end; k++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl != NULL ? nl + 1 : end;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *start = p;
    *n = (size_t)((nl != NULL ? nl : end) - p);
}

/* The next space-separated token of [*p, end): its start and length (0 at the end). */
static size_t next_word(const char **p, const char *end, const char **word)
{
    while (*p < end && **p == ' ')
        (*p)++;
    *word = *p;
    while (*p < end && **p != ' ')
        (*p)++;
    return (size_t)(*p - *word);
}

/* EMISMATCH naming the first word in which header line i of the journal (file) and of
 * the reference (ours: "this search", or a merge's first input) differ, e.g. "steps=10"
 * against "steps=20". */
static int header_mismatch(const char *path, int i, const char *file, size_t file_n,
                           const char *ours, size_t ours_n, const char *ours_name)
{
    const char *fp = file, *op = ours, *fw, *ow;
    for (;;) {
        size_t fn = next_word(&fp, file + file_n, &fw), on = next_word(&op, ours + ours_n, &ow);
        if (fn == 0 && on == 0)
            break;
        if (fn != on || memcmp(fw, ow, fn) != 0) {
            static const char nothing[] = "(nothing)";
            if (fn == 0)
                fw = nothing, fn = sizeof nothing - 1;
            if (on == 0)
                ow = nothing, on = sizeof nothing - 1;
            return intdim__fail(INTDIM_EMISMATCH, "journal %s was written by another search: "
                                                  "header line %d has '%.*s' where %s "
                                                  "has '%.*s'", path, i + 1,
                                (int)(fn > 100 ? 100 : fn), fw, ours_name,
                                (int)(on > 100 ? 100 : on), ow);
        }
    }
    return intdim__fail(INTDIM_EMISMATCH, "journal %s was written by another search: header "
                                          "line %d differs in spacing", path, i + 1);
}

/* OK when the journal's header (text, split into lines, rows starting at rows_at) is
 * byte for byte the reference header; otherwise EMISMATCH naming the first difference. */
static int same_header(const char *path, const char *text, const line *lines, size_t rows_at,
                       const strbuf *header, const char *ours_name)
{
    if (rows_at == header->len && memcmp(text, header->data, rows_at) == 0)
        return INTDIM_OK;
    for (int i = 0; i < HEADER_LINES; i++) {
        size_t n = (size_t)(lines[i].end - lines[i].start), ours_n;
        const char *ours;
        header_line(header->data, header->len, i, &ours, &ours_n);
        if (n != ours_n || memcmp(ours, lines[i].start, n) != 0)
            return header_mismatch(path, i, lines[i].start, n, ours, ours_n, ours_name);
    }
    return intdim__fail(INTDIM_EMISMATCH, "journal %s was written by another search than %s",
                        path, ours_name);
}

/* Validate an existing journal against s's header and replay its rows. */
static int replay_existing(intdim_search *s, const char *path, const char *text, size_t len,
                           const strbuf *header, int *torn, size_t *good_len)
{
    line lines[HEADER_LINES];
    size_t rows_at;
    int rc = split_header(path, text, len, lines, &rows_at);
    if (rc != INTDIM_OK)
        return rc;
    rc = same_header(path, text, lines, rows_at, header, "this search");
    if (rc != INTDIM_OK)
        return rc;
    size_t conflicts = 0;
    rc = load_rows(path, s, text + rows_at, len - rows_at, DUP_STRICT, torn, good_len,
                   &conflicts);
    *good_len += rows_at;
    return rc;
}

INTDIM_API int intdim_search_open_journal(intdim_search *s, const char *path)
{
    if (s == NULL || path == NULL || path[0] == '\0')
        return intdim__fail(INTDIM_EINVAL, "intdim_search_open_journal: search or path is NULL");
    if (s->busy)
        return intdim__search_refuse_if_busy(s, "intdim_search_open_journal");
    if (s->journal_fd >= 0)
        return intdim__fail(INTDIM_ESTATE, "intdim_search_open_journal: a journal is already "
                                           "open");
    if (s->n_done > 0 || s->n_out > 0)
        return intdim__fail(INTDIM_ESTATE, "intdim_search_open_journal: trials were already "
                                           "asked; open the journal before the first ask");
    int was_frozen = s->frozen;
    int rc = intdim__search_freeze(s);
    if (rc != INTDIM_OK)
        return rc;
    strbuf header = {0};
    rc = build_header(s, &header);
    if (rc != INTDIM_OK) {
        if (!was_frozen)
            intdim__search_unfreeze(s);
        return rc;
    }
    char *text = NULL;
    size_t len = 0;
    int torn = 0;
    size_t good_len = 0;
    struct stat st;
    int exists = stat(path, &st) == 0 && st.st_size > 0;
    if (!exists) {
        rc = write_atomic(path, header.data, header.len);
    } else {
        rc = read_whole(path, &text, &len);
        if (rc == INTDIM_OK)
            rc = replay_existing(s, path, text, len, &header, &torn, &good_len);
    }
    int fd = -1;
    if (rc == INTDIM_OK) {
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0)
            rc = intdim__fail(INTDIM_EIO, "journal: cannot open %s for appending: %s", path,
                              strerror(errno));
    }
    if (rc == INTDIM_OK && torn && (ftruncate(fd, (off_t)good_len) != 0 || fsync(fd) != 0))
        rc = intdim__fail(INTDIM_EIO, "journal: cannot drop the torn last line of %s: %s", path,
                          strerror(errno));
    intdim__free(text);
    intdim__free(header.data);
    if (rc != INTDIM_OK) {
        if (fd >= 0)
            close(fd);
        if (!was_frozen) /* a failed open changes nothing: the plan may still be set */
            intdim__search_unfreeze(s);
        else
            reset_trials(s);
        return rc;
    }
    s->journal_fd = fd;
    if (torn)
        intdim__fail(INTDIM_OK, "warning: journal %s: dropped a torn last line (a run was "
                                "killed while writing it); its trial will run again", path);
    return INTDIM_OK;
}

/* Read a journal into a new search (rows applied with the given duplicate policy). */
static int load_journal(const char *path, intdim_search **out, int *torn)
{
    char *text;
    size_t len;
    int rc = read_whole(path, &text, &len);
    if (rc != INTDIM_OK)
        return rc;
    line lines[HEADER_LINES];
    size_t rows_at, good_len, conflicts = 0;
    intdim_search *s = NULL;
    rc = split_header(path, text, len, lines, &rows_at);
    if (rc == INTDIM_OK)
        rc = search_from_header(path, text, lines, &s);
    if (rc == INTDIM_OK)
        rc = load_rows(path, s, text + rows_at, len - rows_at, DUP_STRICT, torn, &good_len,
                       &conflicts);
    intdim__free(text);
    if (rc != INTDIM_OK) {
        intdim_search_destroy(s);
        return rc;
    }
    *out = s;
    return INTDIM_OK;
}

INTDIM_API int intdim_search_from_journal(intdim_search **out, const char *path)
{
    if (out == NULL || path == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_search_from_journal: out or path is NULL");
    *out = NULL;
    int torn = 0;
    int rc = load_journal(path, out, &torn);
    if (rc == INTDIM_OK && torn)
        intdim__fail(INTDIM_OK, "warning: journal %s: dropped a torn last line", path);
    return rc;
}

/* Rows of every input are merged into `into` (the first input's search). */
static int merge_one(intdim_search *into, const strbuf *header, const char *path,
                     size_t *conflicts, int *torn)
{
    char *text;
    size_t len, rows_at, good_len;
    int rc = read_whole(path, &text, &len);
    if (rc != INTDIM_OK)
        return rc;
    line lines[HEADER_LINES];
    rc = split_header(path, text, len, lines, &rows_at);
    if (rc == INTDIM_OK)
        rc = same_header(path, text, lines, rows_at, header, "the first input");
    int this_torn = 0;
    if (rc == INTDIM_OK)
        rc = load_rows(path, into, text + rows_at, len - rows_at, DUP_KEEP_FIRST, &this_torn,
                       &good_len, conflicts);
    *torn += this_torn;
    intdim__free(text);
    return rc;
}

INTDIM_API int intdim_journal_merge(const char *const *inputs, size_t n_inputs,
                                    const char *output)
{
    if (inputs == NULL || n_inputs == 0 || output == NULL)
        return intdim__fail(INTDIM_EINVAL, "intdim_journal_merge: no inputs or no output");
    for (size_t i = 0; i < n_inputs; i++)
        if (inputs[i] == NULL)
            return intdim__fail(INTDIM_EINVAL, "intdim_journal_merge: input %zu is NULL", i);
    intdim_search *s = NULL;
    int torn = 0;
    int rc = load_journal(inputs[0], &s, &torn);
    if (rc != INTDIM_OK)
        return rc;
    strbuf text = {0};
    rc = build_header(s, &text);
    size_t conflicts = 0;
    for (size_t i = 1; i < n_inputs && rc == INTDIM_OK; i++)
        rc = merge_one(s, &text, inputs[i], &conflicts, &torn);
    for (size_t id = 0; id < s->n_trials && rc == INTDIM_OK; id++) {
        if (s->trials[id].state != TRIAL_DONE)
            continue;
        char row[ROW_MAX];
        format_row(s, id, row);
        sb_printf(&text, "%s", row);
        if (text.failed)
            rc = intdim__fail_nomem("the merged journal", text.cap * 2);
    }
    if (rc == INTDIM_OK)
        rc = write_atomic(output, text.data, text.len);
    intdim__free(text.data);
    intdim_search_destroy(s);
    if (rc == INTDIM_OK && (conflicts > 0 || torn > 0))
        intdim__fail(INTDIM_OK, "warning: journal merge: %zu trials had different results in "
                                "different inputs (the first input's row was kept); %d torn "
                                "last lines dropped", conflicts, torn);
    return rc;
}
