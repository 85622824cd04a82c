/* NumPy .npy files, format version 1.0 (numpy.lib.format):
 *
 *   "\x93NUMPY" | major 1, minor 0 | u16 little-endian HEADER_LEN | header | data
 *
 * The header is the text of a Python dict, {'descr': '<f4',
 * 'fortran_order': False, 'shape': (2, 3), }, padded with spaces and ended
 * by a newline so that the data starts at a multiple of 64 bytes (the
 * format's alignment for memory mapping). The data is the elements in C
 * order, little-endian float32 whatever the host. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define ALIGN 64

/* The header text, padding and newline included, into h (at least 512
 * bytes: 8 sizes of 19 digits fit with room); returns its length. */
static size_t npy_header(const nd_tensor *x, char *h, size_t size) {
    size_t n = (size_t)snprintf(h, size, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int d = 0; d < x->ndim; d++)
        n += (size_t)snprintf(h + n, size - n, "%s%lld", d ? ", " : "",
                              (long long)x->shape[d]);
    /* A 1-tuple needs its comma: (5,) */
    n += (size_t)snprintf(h + n, size - n, "%s), }", x->ndim == 1 ? "," : "");
    while ((10 + n + 1) % ALIGN) h[n++] = ' ';
    h[n++] = '\n';
    return n;
}

int nd_npy_save(const char *path, const nd_tensor *x, nd_error *err) {
    if (!path) nd_fatal("npy_save", "path is NULL");
    if (!x) nd_fatal("npy_save", "x is NULL");
    char text[640];
    size_t hn = npy_header(x, text, sizeof text - ALIGN);
    unsigned char head[10 + sizeof text];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    head[8] = (unsigned char)hn;
    head[9] = (unsigned char)(hn >> 8);
    memcpy(head + 10, text, hn);

    /* The elements in row-major order, whatever x's strides. */
    int64_t count = nd_numel(x);
    size_t bytes = (size_t)count * 4;
    unsigned char *data = count ? nd_alloc(bytes) : NULL;
    int64_t index[ND_MAX_DIMS] = {0};
    const float *base = count ? nd_data(x) : NULL;
    for (int64_t i = 0; i < count; i++) {
        int64_t off = 0;
        for (int d = 0; d < x->ndim; d++) off += index[d] * x->strides[d];
        uint32_t u;
        memcpy(&u, &base[off], 4);
        for (int k = 0; k < 4; k++) data[4 * i + k] = (unsigned char)(u >> (8 * k));
        for (int d = x->ndim - 1; d >= 0 && ++index[d] == x->shape[d]; d--) index[d] = 0;
    }
    const void *parts[] = {head, data};
    size_t sizes[] = {10 + hn, bytes};
    int rc = nd__write_atomic(path, parts, sizes, count ? 2 : 1, err);
    if (data) nd_dealloc(data, bytes);
    return rc;
}
