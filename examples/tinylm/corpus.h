/* tinylm corpus: Debian fortune files, their entries, and the splits the example uses.
 *
 * A fortune file is plain text whose entries are separated by lines holding only "%"
 * (as strfile(1) reads them). Each file is one "source" (its name is the category of the
 * downstream classification task).
 *
 * Splits (all deterministic from a seed, none overlapping):
 *   - classification: for each chosen source, `per_class` entries whose text occurs only
 *     once in the whole corpus (deduplicated, so no entry is in two classes or in two
 *     splits); a fraction of each class is the classification test set. Balanced.
 *   - language model: every other distinct entry (duplicates kept once), split by a hash
 *     of the text into training and validation streams. Classification entries never
 *     appear in either stream, so the checkpoint evaluation and the downstream task are
 *     disjoint and pre-training never sees a downstream test entry.
 */
#ifndef TINYLM_CORPUS_H
#define TINYLM_CORPUS_H

#include <stddef.h>
#include <stdint.h>

/* Status codes of the corpus functions. */
enum {
    TLM_OK = 0,
    TLM_EINVAL = -1,  /* NULL or inconsistent argument */
    TLM_EIO = -2,     /* the file cannot be opened or read */
    TLM_EFORMAT = -3, /* not a fortune file: NUL bytes, no entries, an entry over the limit */
    TLM_ENOMEM = -4,
    TLM_ETOOBIG = -5  /* the file is over TLM_MAX_FILE_BYTES */
};

#define TLM_MAX_FILE_BYTES ((size_t)64 << 20)
#define TLM_MAX_ENTRY_BYTES ((size_t)64 << 10)
#define TLM_MAX_SOURCES 256

typedef struct tlm_entry {
    char *text;    /* trimmed entry text, NUL-terminated */
    size_t len;
    int source;    /* index into tlm_corpus.sources */
    uint64_t hash; /* FNV-1a of the text with case folded and whitespace runs collapsed, so
                      copies that differ only in line wrapping count as duplicates */
} tlm_entry;

typedef struct tlm_corpus {
    tlm_entry *entries;
    size_t n_entries, cap;
    char sources[TLM_MAX_SOURCES][64];
    size_t n_sources;
} tlm_corpus;

void tlm_corpus_init(tlm_corpus *c);
void tlm_corpus_free(tlm_corpus *c);

/* Append the entries of one fortune file under the source name `source` (NULL = the
 * file's base name). Empty entries are skipped; a final entry without a trailing "%" is
 * kept; "\r\n" line ends are accepted. On failure nothing is appended and err (if not
 * NULL) says why. Returns TLM_OK or a TLM_E* status. */
int tlm_corpus_add_file(tlm_corpus *c, const char *path, const char *source, char *err,
                        size_t errlen);

/* Add every fortune file of a directory (regular files whose name has no '.', so the
 * strfile .dat indexes and the .u8 links are skipped), in name order. Files that are not
 * fortune files (TLM_EFORMAT) are skipped and counted in *skipped (may be NULL). */
int tlm_corpus_add_dir(tlm_corpus *c, const char *dir, size_t *skipped, char *err,
                       size_t errlen);

/* Index of a source by name, or -1. */
int tlm_corpus_find_source(const tlm_corpus *c, const char *name);

/* Classification examples: tokens[i*T ..] holds entry i's first lengths[i] tokens, padded
 * with TLM_TOKEN_END up to T. */
typedef struct tlm_cls_set {
    int *tokens, *lengths, *labels;
    size_t *entry; /* index of each example's entry in the corpus */
    size_t n;
    int T;
} tlm_cls_set;

typedef struct tlm_split_config {
    const char *const *class_sources; /* source names of the classes */
    size_t n_classes;
    size_t per_class;         /* entries per class; 0 = as many as the smallest class has */
    double cls_test_fraction; /* of each class, in (0, 1) */
    double lm_val_fraction;   /* of the language-model entries, in (0, 1) */
    int T;                    /* classification length (entries are truncated) */
    uint64_t seed;
} tlm_split_config;

typedef struct tlm_splits {
    int *lm_train, *lm_val; /* token streams: entry tokens then TLM_TOKEN_END, repeated */
    size_t n_lm_train, n_lm_val;
    size_t lm_train_entries, lm_val_entries;
    tlm_cls_set cls_train, cls_test;
    size_t per_class;
    size_t duplicates; /* entries dropped as duplicates of an earlier one */
} tlm_splits;

/* Build the splits. TLM_EINVAL if a class source is unknown, listed twice, or has fewer
 * than 2 usable entries, or per_class exceeds a class's unique entries. */
int tlm_make_splits(const tlm_corpus *c, const tlm_split_config *cfg, tlm_splits *out,
                    char *err, size_t errlen);
void tlm_splits_free(tlm_splits *s);

/* Tokens of a text (tlm_encode_byte of every byte) into out[0..n). */
void tlm_encode_text(const char *text, size_t n, int *out);

#endif
