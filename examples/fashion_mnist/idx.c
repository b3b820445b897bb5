/* IDX reader over zlib's gz* interface (gzip'd or plain files alike). */
#include "idx.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static int fail(char *err, size_t err_len, int status, const char *fmt, ...)
{
    if (err != NULL && err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* Read exactly n bytes; *got is what arrived before EOF or an error. Returns 0 on
 * success, or Z_* (negative) from gzerror on a stream error, or 1 on a clean short read. */
static int read_exact(gzFile f, void *buf, size_t n, size_t *got)
{
    unsigned char *p = buf;
    *got = 0;
    while (*got < n) {
        size_t want = n - *got;
        unsigned chunk = want > (size_t)(INT_MAX / 2) ? (unsigned)(INT_MAX / 2) : (unsigned)want;
        int r = gzread(f, p + *got, chunk);
        if (r < 0) {
            int zerr = Z_OK;
            gzerror(f, &zerr);
            return zerr != Z_OK ? zerr : Z_ERRNO;
        }
        if (r == 0) {
            /* End of input: a truncated gzip member shows up as Z_BUF_ERROR here. */
            int zerr = Z_OK;
            gzerror(f, &zerr);
            return zerr != Z_OK ? zerr : 1;
        }
        *got += (size_t)r;
    }
    return 0;
}

/* Explain a short or failed read of `what` (n bytes wanted, got arrived). */
static int read_failure(gzFile f, const char *path, const char *what, size_t n, size_t got,
                        int how, char *err, size_t err_len)
{
    if (how == Z_ERRNO)
        return fail(err, err_len, IDX_EIO, "%s: read error in %s: %s", path, what,
                    strerror(errno));
    if (how == 1 || how == Z_BUF_ERROR)
        return fail(err, err_len, IDX_EFORMAT,
                    "%s: truncated file: %s needs %zu bytes, only %zu present", path, what, n, got);
    int zerr = Z_OK;
    const char *msg = gzerror(f, &zerr);
    return fail(err, err_len, IDX_EFORMAT, "%s: corrupt compressed data in %s: %s", path, what,
                msg != NULL ? msg : "unknown zlib error");
}

static size_t be32(const unsigned char *b)
{
    return ((size_t)b[0] << 24) | ((size_t)b[1] << 16) | ((size_t)b[2] << 8) | (size_t)b[3];
}

/* Parse and check the magic and dimensions; fills out->n_dims, dims, n_bytes. */
static int read_header(gzFile f, const char *path, size_t expect_dims, size_t max_bytes,
                       idx_array *out, char *err, size_t err_len)
{
    unsigned char magic[4];
    size_t got = 0;
    int how = read_exact(f, magic, 4, &got);
    if (how != 0)
        return read_failure(f, path, "the header", 4, got, how, err, err_len);
    if (magic[0] != 0 || magic[1] != 0)
        return fail(err, err_len, IDX_EFORMAT,
                    "%s: not an IDX file (magic bytes %02x %02x, expected 00 00)", path, magic[0],
                    magic[1]);
    if (magic[2] != 0x08)
        return fail(err, err_len, IDX_EFORMAT,
                    "%s: IDX data type 0x%02x is not unsigned byte (0x08)", path, magic[2]);
    size_t n_dims = magic[3];
    if (n_dims == 0 || n_dims > IDX_MAX_DIMS || (expect_dims != 0 && n_dims != expect_dims))
        return fail(err, err_len, IDX_EFORMAT, "%s: %zu dimensions, expected %zu", path, n_dims,
                    expect_dims != 0 ? expect_dims : (size_t)IDX_MAX_DIMS);
    unsigned char dim_bytes[4 * IDX_MAX_DIMS];
    how = read_exact(f, dim_bytes, 4 * n_dims, &got);
    if (how != 0)
        return read_failure(f, path, "the dimension sizes", 4 * n_dims, got, how, err, err_len);
    size_t total = 1;
    for (size_t i = 0; i < n_dims; i++) {
        size_t dim = be32(dim_bytes + 4 * i);
        if (dim == 0)
            return fail(err, err_len, IDX_EFORMAT, "%s: dimension %zu is 0", path, i);
        /* dims are < 2^32, so the check below cannot overflow before it triggers. */
        if (dim > max_bytes / total)
            return fail(err, err_len, IDX_EFORMAT,
                        "%s: data size exceeds the limit of %zu bytes (dimension %zu = %zu)", path,
                        max_bytes, i, dim);
        total *= dim;
        out->dims[i] = dim;
    }
    out->n_dims = n_dims;
    out->n_bytes = total;
    return IDX_OK;
}

int idx_read(const char *path, size_t expect_dims, size_t max_bytes, idx_array *out, char *err,
             size_t err_len)
{
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if (out == NULL)
        return fail(err, err_len, IDX_EINVAL, "idx_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (path == NULL)
        return fail(err, err_len, IDX_EINVAL, "idx_read: path is NULL");
    if (expect_dims > IDX_MAX_DIMS)
        return fail(err, err_len, IDX_EINVAL, "idx_read: expect_dims %zu over %d", expect_dims,
                    IDX_MAX_DIMS);
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (f == NULL)
        return fail(err, err_len, errno == ENOMEM ? IDX_ENOMEM : IDX_EIO, "%s: cannot open: %s",
                    path, errno != 0 ? strerror(errno) : "zlib could not open it");
    idx_array a;
    memset(&a, 0, sizeof a);
    int status = read_header(f, path, expect_dims, max_bytes, &a, err, err_len);
    if (status == IDX_OK) {
        a.data = malloc(a.n_bytes);
        if (a.data == NULL)
            status = fail(err, err_len, IDX_ENOMEM, "%s: cannot allocate %zu bytes", path,
                          a.n_bytes);
    }
    if (status == IDX_OK) {
        size_t got = 0;
        int how = read_exact(f, a.data, a.n_bytes, &got);
        if (how != 0)
            status = read_failure(f, path, "the data", a.n_bytes, got, how, err, err_len);
    }
    if (status == IDX_OK) {
        /* The header fixes the size: anything after the data means the file is not what
         * it says (e.g. two files concatenated, or a wrong header). */
        unsigned char extra;
        size_t got = 0;
        int how = read_exact(f, &extra, 1, &got);
        if (got != 0)
            status = fail(err, err_len, IDX_EFORMAT, "%s: trailing bytes after %zu bytes of data",
                          path, a.n_bytes);
        else if (how == Z_BUF_ERROR)
            status = fail(err, err_len, IDX_EFORMAT,
                          "%s: truncated file: the gzip stream ends without its trailer", path);
        else if (how != 1)
            status = read_failure(f, path, "the end of the file", 0, 0, how, err, err_len);
    }
    gzclose(f);
    if (status != IDX_OK) {
        free(a.data);
        return status;
    }
    *out = a;
    return IDX_OK;
}

void idx_free(idx_array *a)
{
    if (a == NULL)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}
