/*
 * Reader for IDX files (the MNIST / Fashion-MNIST container), gzip'd or plain: zlib's
 * gzread reads both. Only unsigned-byte data (type 0x08) is accepted, which is what the
 * image and label files hold.
 *
 * Format: bytes 0,1 = 0; byte 2 = type (0x08); byte 3 = number of dimensions; then one
 * big-endian uint32 per dimension; then the data, row-major, nothing after it.
 *
 * Every failure returns a negative IDX_E* status and writes a one-line message naming
 * the file and what is wrong into err (if err_len > 0); nothing is allocated then.
 */
#ifndef FMNIST_IDX_H
#define FMNIST_IDX_H

#include <stddef.h>
#include <stdint.h>

#define IDX_MAX_DIMS 4

enum {
    IDX_OK = 0,
    IDX_EINVAL = -1,  /* NULL argument */
    IDX_EIO = -2,     /* cannot open or read the file (errno or zlib's message included) */
    IDX_EFORMAT = -3, /* bad magic, type, dimensions, truncated data or trailing bytes */
    IDX_ENOMEM = -4
};

typedef struct {
    size_t n_dims;
    size_t dims[IDX_MAX_DIMS];
    size_t n_bytes; /* product of dims */
    uint8_t *data;  /* n_bytes values, malloc'd: free with idx_free */
} idx_array;

/* Read the whole file into out. expect_dims: the required number of dimensions
 * (0 = any from 1 to IDX_MAX_DIMS). Files over max_bytes of data are refused as
 * IDX_EFORMAT (a corrupt header must not make us allocate gigabytes). */
int idx_read(const char *path, size_t expect_dims, size_t max_bytes, idx_array *out, char *err,
             size_t err_len);
void idx_free(idx_array *a); /* zeroes it; NULL fine */

#endif
