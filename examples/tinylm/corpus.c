/* tinylm corpus: reading fortune files and building disjoint, deterministic splits. */
#include "corpus.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model.h"

static int fail(int status, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

void tlm_corpus_init(tlm_corpus *c)
{
    memset(c, 0, sizeof *c);
}

void tlm_corpus_free(tlm_corpus *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_entries; i++)
        free(c->entries[i].text);
    free(c->entries);
    tlm_corpus_init(c);
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f' || ch == '\v';
}

/* FNV-1a over the text as a reader sees it: ASCII case folded, every run of whitespace one
 * space (the text is already trimmed). */
static uint64_t text_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (is_space((char)ch)) {
            while (i + 1 < n && is_space(s[i + 1]))
                i++;
            ch = ' ';
        } else if (ch >= 'A' && ch <= 'Z') {
            ch = (unsigned char)(ch - 'A' + 'a');
        }
        h ^= ch;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* A strong 64-bit mix, so hash-ordered selections look random and depend on the seed. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Read a whole file. *data is NUL-terminated. */
static int read_file(const char *path, char **data, size_t *size, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(TLM_EIO, err, errlen, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return fail(TLM_ENOMEM, err, errlen, "out of memory reading %s", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap >= TLM_MAX_FILE_BYTES) {
                free(buf);
                fclose(f);
                return fail(TLM_ETOOBIG, err, errlen, "%s is over %zu bytes", path,
                            TLM_MAX_FILE_BYTES);
            }
            char *bigger = realloc(buf, 2 * cap + 1);
            if (!bigger) {
                free(buf);
                fclose(f);
                return fail(TLM_ENOMEM, err, errlen, "out of memory reading %s", path);
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return fail(TLM_EIO, err, errlen, "read error on %s", path);
    }
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return TLM_OK;
}

/* Is [line, line + n) a separator line ("%", optionally followed by '\r')? */
static int is_separator(const char *line, size_t n)
{
    return (n == 1 && line[0] == '%') || (n == 2 && line[0] == '%' && line[1] == '\r');
}

/* Entries found in one file, before they are committed to the corpus. */
typedef struct pending {
    tlm_entry *items;
    size_t n, cap;
} pending;

static void pending_free(pending *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->items[i].text);
    free(p->items);
}

/* Trim [s, s + n) and, if anything is left, append it as an entry. */
static int add_pending(pending *p, const char *s, size_t n, int source, const char *path,
                       char *err, size_t errlen)
{
    while (n > 0 && is_space(s[0])) {
        s++;
        n--;
    }
    while (n > 0 && is_space(s[n - 1]))
        n--;
    if (n == 0)
        return TLM_OK;
    if (n > TLM_MAX_ENTRY_BYTES)
        return fail(TLM_EFORMAT, err, errlen, "%s: an entry of %zu bytes is over the %zu limit",
                    path, n, TLM_MAX_ENTRY_BYTES);
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        tlm_entry *bigger = realloc(p->items, cap * sizeof *bigger);
        if (!bigger)
            return fail(TLM_ENOMEM, err, errlen, "out of memory for entries of %s", path);
        p->items = bigger;
        p->cap = cap;
    }
    char *text = malloc(n + 1);
    if (!text)
        return fail(TLM_ENOMEM, err, errlen, "out of memory for an entry of %s", path);
    memcpy(text, s, n);
    text[n] = '\0';
    p->items[p->n++] = (tlm_entry){text, n, source, text_hash(text, n)};
    return TLM_OK;
}

/* Split a file's bytes into entries at separator lines. */
static int parse_fortunes(pending *p, const char *data, size_t size, int source,
                          const char *path, char *err, size_t errlen)
{
    if (memchr(data, '\0', size))
        return fail(TLM_EFORMAT, err, errlen, "%s holds NUL bytes: not a fortune text file", path);
    size_t entry_start = 0, pos = 0;
    while (pos < size) {
        const char *nl = memchr(data + pos, '\n', size - pos);
        size_t line_end = nl ? (size_t)(nl - data) : size;
        if (is_separator(data + pos, line_end - pos)) {
            int rc = add_pending(p, data + entry_start, pos - entry_start, source, path, err,
                                 errlen);
            if (rc != TLM_OK)
                return rc;
            entry_start = line_end + 1 < size ? line_end + 1 : size;
        }
        pos = nl ? line_end + 1 : size;
    }
    int rc = add_pending(p, data + entry_start, size - entry_start, source, path, err, errlen);
    if (rc != TLM_OK)
        return rc;
    if (p->n == 0)
        return fail(TLM_EFORMAT, err, errlen, "%s has no entries", path);
    return TLM_OK;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int tlm_corpus_find_source(const tlm_corpus *c, const char *name)
{
    if (!c || !name)
        return -1;
    for (size_t i = 0; i < c->n_sources; i++)
        if (strcmp(c->sources[i], name) == 0)
            return (int)i;
    return -1;
}

int tlm_corpus_add_file(tlm_corpus *c, const char *path, const char *source, char *err,
                        size_t errlen)
{
    if (!c || !path)
        return fail(TLM_EINVAL, err, errlen, "NULL corpus or path");
    const char *name = source ? source : base_name(path);
    if (strlen(name) == 0 || strlen(name) >= sizeof c->sources[0])
        return fail(TLM_EINVAL, err, errlen, "source name '%s' is empty or too long", name);
    if (tlm_corpus_find_source(c, name) >= 0)
        return fail(TLM_EINVAL, err, errlen, "source '%s' was already added", name);
    if (c->n_sources == TLM_MAX_SOURCES)
        return fail(TLM_EINVAL, err, errlen, "more than %d sources", TLM_MAX_SOURCES);
    char *data = NULL;
    size_t size = 0;
    int rc = read_file(path, &data, &size, err, errlen);
    if (rc != TLM_OK)
        return rc;
    pending p = {0};
    rc = parse_fortunes(&p, data, size, (int)c->n_sources, path, err, errlen);
    free(data);
    if (rc == TLM_OK && c->n_entries + p.n > c->cap) {
        size_t cap = c->cap ? c->cap : 1024;
        while (cap < c->n_entries + p.n)
            cap *= 2;
        tlm_entry *bigger = realloc(c->entries, cap * sizeof *bigger);
        if (!bigger)
            rc = fail(TLM_ENOMEM, err, errlen, "out of memory for the corpus");
        else {
            c->entries = bigger;
            c->cap = cap;
        }
    }
    if (rc != TLM_OK) {
        pending_free(&p);
        return rc;
    }
    memcpy(c->entries + c->n_entries, p.items, p.n * sizeof *p.items);
    c->n_entries += p.n;
    free(p.items); /* the texts now belong to the corpus */
    snprintf(c->sources[c->n_sources], sizeof c->sources[0], "%s", name);
    c->n_sources++;
    return TLM_OK;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int tlm_corpus_add_dir(tlm_corpus *c, const char *dir, size_t *skipped, char *err,
                       size_t errlen)
{
    if (!c || !dir)
        return fail(TLM_EINVAL, err, errlen, "NULL corpus or directory");
    DIR *d = opendir(dir);
    if (!d)
        return fail(TLM_EIO, err, errlen, "cannot open directory %s: %s", dir, strerror(errno));
    char *names[TLM_MAX_SOURCES];
    size_t n = 0;
    int rc = TLM_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strchr(e->d_name, '.'))
            continue;
        if (n == TLM_MAX_SOURCES) {
            rc = fail(TLM_EINVAL, err, errlen, "%s has more than %d files", dir, TLM_MAX_SOURCES);
            break;
        }
        names[n] = strdup(e->d_name);
        if (!names[n]) {
            rc = fail(TLM_ENOMEM, err, errlen, "out of memory listing %s", dir);
            break;
        }
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], compare_names);
    size_t skip = 0;
    for (size_t i = 0; i < n && rc == TLM_OK; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        rc = tlm_corpus_add_file(c, path, names[i], err, errlen);
        if (rc == TLM_EFORMAT) {
            skip++;
            rc = TLM_OK;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    if (skipped)
        *skipped = skip;
    return rc;
}

void tlm_encode_text(const char *text, size_t n, int *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = tlm_encode_byte((unsigned char)text[i]);
}

/* ---- splits ------------------------------------------------------------------------- */

typedef struct keyed {
    uint64_t key;
    size_t index;
} keyed;

static int compare_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* How many entries share entry i's hash (hashes sorted in `sorted`). */
static size_t hash_count(const uint64_t *sorted, size_t n, uint64_t h)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t count = 0;
    while (lo + count < n && sorted[lo + count] == h)
        count++;
    return count;
}

static int cls_set_alloc(tlm_cls_set *s, size_t n, int T)
{
    s->n = n;
    s->T = T;
    s->tokens = malloc((n ? n : 1) * (size_t)T * sizeof(int));
    s->lengths = malloc((n ? n : 1) * sizeof(int));
    s->labels = malloc((n ? n : 1) * sizeof(int));
    s->entry = malloc((n ? n : 1) * sizeof(size_t));
    return s->tokens && s->lengths && s->labels && s->entry ? TLM_OK : TLM_ENOMEM;
}

static void cls_set_put(tlm_cls_set *s, size_t i, const tlm_entry *e, size_t index, int label)
{
    s->entry[i] = index;
    int T = s->T;
    int len = e->len < (size_t)T ? (int)e->len : T;
    int *tok = s->tokens + i * (size_t)T;
    tlm_encode_text(e->text, (size_t)len, tok);
    for (int t = len; t < T; t++)
        tok[t] = TLM_TOKEN_END;
    s->lengths[i] = len;
    s->labels[i] = label;
}

void tlm_splits_free(tlm_splits *s)
{
    if (!s)
        return;
    free(s->lm_train);
    free(s->lm_val);
    tlm_cls_set *sets[2] = {&s->cls_train, &s->cls_test};
    for (int i = 0; i < 2; i++) {
        free(sets[i]->tokens);
        free(sets[i]->lengths);
        free(sets[i]->labels);
        free(sets[i]->entry);
    }
    memset(s, 0, sizeof *s);
}

static int check_split_config(const tlm_corpus *c, const tlm_split_config *cfg, int *class_of,
                              char *err, size_t errlen)
{
    if (!cfg->class_sources || cfg->n_classes < 2 || cfg->T < 1 ||
        !(cfg->cls_test_fraction > 0.0 && cfg->cls_test_fraction < 1.0) ||
        !(cfg->lm_val_fraction > 0.0 && cfg->lm_val_fraction < 1.0))
        return fail(TLM_EINVAL, err, errlen,
                    "need >= 2 classes, T >= 1 and both fractions in (0, 1)");
    for (size_t s = 0; s < c->n_sources; s++)
        class_of[s] = -1;
    for (size_t k = 0; k < cfg->n_classes; k++) {
        int s = tlm_corpus_find_source(c, cfg->class_sources[k]);
        if (s < 0)
            return fail(TLM_EINVAL, err, errlen, "class source '%s' is not in the corpus",
                        cfg->class_sources[k] ? cfg->class_sources[k] : "(null)");
        if (class_of[s] >= 0)
            return fail(TLM_EINVAL, err, errlen, "class source '%s' is listed twice",
                        cfg->class_sources[k]);
        class_of[s] = (int)k;
    }
    return TLM_OK;
}

/* Choose each class's entries: unique texts only, in seeded hash order, per_class each.
 * chosen[i] = 1 + rank within its class for chosen entries, 0 otherwise. */
static int choose_class_entries(const tlm_corpus *c, const tlm_split_config *cfg,
                                const int *class_of, const uint64_t *sorted_hashes,
                                size_t *chosen, size_t *per_class_out, char *err, size_t errlen)
{
    size_t n = c->n_entries, K = cfg->n_classes;
    keyed *cand = malloc((n ? n : 1) * sizeof *cand);
    size_t *count = calloc(K, sizeof *count);
    if (!cand || !count) {
        free(cand);
        free(count);
        return fail(TLM_ENOMEM, err, errlen, "out of memory choosing classes");
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int k = class_of[c->entries[i].source];
        if (k < 0 || hash_count(sorted_hashes, n, c->entries[i].hash) != 1)
            continue;
        /* Class first, then a seeded pseudo-random order within the class. */
        cand[m++] = (keyed){((uint64_t)k << 56) | (mix64(c->entries[i].hash ^ cfg->seed) >> 8), i};
        count[k]++;
    }
    size_t smallest = count[0];
    for (size_t k = 1; k < K; k++)
        if (count[k] < smallest)
            smallest = count[k];
    size_t per = cfg->per_class ? cfg->per_class : smallest;
    int rc = TLM_OK;
    if (per < 2 || per > smallest)
        rc = fail(TLM_EINVAL, err, errlen,
                  "per_class %zu impossible: the smallest class has %zu unique entries", per,
                  smallest);
    if (rc == TLM_OK) {
        qsort(cand, m, sizeof *cand, compare_keyed);
        size_t rank = 0;
        for (size_t j = 0; j < m; j++) {
            rank = (j > 0 && (cand[j].key >> 56) == (cand[j - 1].key >> 56)) ? rank + 1 : 0;
            if (rank < per)
                chosen[cand[j].index] = 1 + rank;
        }
        *per_class_out = per;
    }
    free(cand);
    free(count);
    return rc;
}

/* Append entry tokens then END to a stream. */
static void stream_put(int *stream, size_t *pos, const tlm_entry *e)
{
    tlm_encode_text(e->text, e->len, stream + *pos);
    *pos += e->len;
    stream[(*pos)++] = TLM_TOKEN_END;
}

static int build_lm_streams(const tlm_corpus *c, const tlm_split_config *cfg,
                            const size_t *chosen, tlm_splits *out, char *err, size_t errlen)
{
    size_t n = c->n_entries;
    uint64_t *seen = malloc((n ? n : 1) * sizeof *seen);
    unsigned char *where = calloc(n ? n : 1, 1); /* 0 unused, 1 train, 2 validation */
    if (!seen || !where) {
        free(seen);
        free(where);
        return fail(TLM_ENOMEM, err, errlen, "out of memory for the language-model split");
    }
    /* Candidates: every entry not chosen for classification (those texts are unique). */
    size_t n_seen = 0, train_tokens = 0, val_tokens = 0;
    uint64_t threshold = (uint64_t)(cfg->lm_val_fraction * 18446744073709551615.0);
    for (size_t i = 0; i < n; i++) {
        const tlm_entry *e = &c->entries[i];
        if (chosen[i])
            continue;
        seen[n_seen++] = e->hash;
        /* The split depends on the text only, so every copy of a text lands on one side. */
        where[i] = mix64(e->hash ^ (cfg->seed + 0x5bd1e995u)) < threshold ? 2 : 1;
    }
    /* Drop later copies of a text: walk in order, remembering hashes in a sorted table. */
    qsort(seen, n_seen, sizeof *seen, compare_u64);
    unsigned char *first_done = calloc(n_seen ? n_seen : 1, 1);
    if (!first_done) {
        free(seen);
        free(where);
        return fail(TLM_ENOMEM, err, errlen, "out of memory for the language-model split");
    }
    for (size_t i = 0; i < n; i++) {
        if (!where[i])
            continue;
        uint64_t h = c->entries[i].hash;
        size_t lo = 0, hi = n_seen;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (seen[mid] < h)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (first_done[lo]) {
            where[i] = 0;
            out->duplicates++;
            continue;
        }
        first_done[lo] = 1;
        if (where[i] == 1) {
            train_tokens += c->entries[i].len + 1;
            out->lm_train_entries++;
        } else {
            val_tokens += c->entries[i].len + 1;
            out->lm_val_entries++;
        }
    }
    free(first_done);
    free(seen);
    out->lm_train = malloc((train_tokens ? train_tokens : 1) * sizeof(int));
    out->lm_val = malloc((val_tokens ? val_tokens : 1) * sizeof(int));
    if (!out->lm_train || !out->lm_val) {
        free(where);
        return fail(TLM_ENOMEM, err, errlen, "out of memory for the token streams");
    }
    for (size_t i = 0; i < n; i++) {
        if (where[i] == 1)
            stream_put(out->lm_train, &out->n_lm_train, &c->entries[i]);
        else if (where[i] == 2)
            stream_put(out->lm_val, &out->n_lm_val, &c->entries[i]);
    }
    free(where);
    return TLM_OK;
}

int tlm_make_splits(const tlm_corpus *c, const tlm_split_config *cfg, tlm_splits *out,
                    char *err, size_t errlen)
{
    if (!c || !cfg || !out)
        return fail(TLM_EINVAL, err, errlen, "NULL corpus, configuration or output");
    memset(out, 0, sizeof *out);
    int class_of[TLM_MAX_SOURCES];
    int rc = check_split_config(c, cfg, class_of, err, errlen);
    if (rc != TLM_OK)
        return rc;
    size_t n = c->n_entries;
    uint64_t *sorted = malloc((n ? n : 1) * sizeof *sorted);
    size_t *chosen = calloc(n ? n : 1, sizeof *chosen);
    if (!sorted || !chosen) {
        free(sorted);
        free(chosen);
        return fail(TLM_ENOMEM, err, errlen, "out of memory for the splits");
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = c->entries[i].hash;
    qsort(sorted, n, sizeof *sorted, compare_u64);
    rc = choose_class_entries(c, cfg, class_of, sorted, chosen, &out->per_class, err, errlen);
    free(sorted);
    size_t per = out->per_class, K = cfg->n_classes;
    size_t n_test = (size_t)(cfg->cls_test_fraction * (double)per + 0.5);
    if (rc == TLM_OK && (n_test < 1 || n_test >= per))
        rc = fail(TLM_EINVAL, err, errlen, "test fraction leaves an empty split of %zu", per);
    if (rc == TLM_OK && (cls_set_alloc(&out->cls_train, (per - n_test) * K, cfg->T) != TLM_OK ||
                         cls_set_alloc(&out->cls_test, n_test * K, cfg->T) != TLM_OK))
        rc = fail(TLM_ENOMEM, err, errlen, "out of memory for the classification sets");
    if (rc == TLM_OK) {
        /* Interleave classes in both sets (entry order then rank), so any prefix is
         * nearly balanced. */
        size_t i_train = 0, i_test = 0;
        for (size_t rank = 1; rank <= per; rank++)
            for (size_t i = 0; i < n; i++)
                if (chosen[i] == rank) {
                    int k = class_of[c->entries[i].source];
                    if (rank <= n_test)
                        cls_set_put(&out->cls_test, i_test++, &c->entries[i], i, k);
                    else
                        cls_set_put(&out->cls_train, i_train++, &c->entries[i], i, k);
                }
        rc = build_lm_streams(c, cfg, chosen, out, err, errlen);
    }
    free(chosen);
    if (rc != TLM_OK)
        tlm_splits_free(out);
    return rc;
}
