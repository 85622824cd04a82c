/* Byte buffers, whole-file reads and atomic writes for the data layer's
 * readers and writers. Writes go through nd_write_file_atomic (tensor/),
 * so the target is always either the old file or the complete new one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <io.h>
#else
#include <unistd.h>
#endif

#include "internal.h"
#include "tensor/internal.h"

/* ---- byte buffers ------------------------------------------------------ */

void nd__bytes_reserve(nd_bytes *b, size_t need) {
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : 2 * cap;
    unsigned char *p = nd_alloc(cap);
    if (b->size) memcpy(p, b->data, b->size);
    if (b->data) nd_dealloc(b->data, b->cap);
    b->data = p;
    b->cap = cap;
}

void nd__bytes_put(nd_bytes *b, const void *p, size_t n) {
    if (n == 0) return;
    nd__bytes_reserve(b, b->size + n);
    memcpy(b->data + b->size, p, n);
    b->size += n;
}

void nd_bytes_free(nd_bytes *b) {
    if (!b) return;
    if (b->data) nd_dealloc(b->data, b->cap);
    b->data = NULL;
    b->size = b->cap = 0;
}

/* ---- reading ----------------------------------------------------------- */

int nd__file_size(const char *path, uint64_t *size, nd_error *err) {
    int fd;
    if (nd__open_regular(path, &fd, size, err)) return ND_ERR;
    close(fd);
    return ND_OK;
}

int nd__read_file(const char *path, size_t max, nd_bytes *out, nd_error *err) {
    memset(out, 0, sizeof *out);
    int fd;
    uint64_t size64;
    if (nd__open_regular(path, &fd, &size64, err)) return ND_ERR;
    if (size64 > max) {
        close(fd);
        return nd_error_set(err, "%s: the file is %llu bytes, over the limit of %zu", path,
                            (unsigned long long)size64, max);
    }
    size_t size = (size_t)size64;
    int rc = ND_OK;
    if (size) nd__bytes_reserve(out, size);
    while (out->size < size) {
        size_t want = size - out->size;
        ssize_t k = read(fd, out->data + out->size, want < ND_IO_CHUNK ? want : ND_IO_CHUNK);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) rc = nd_error_set(err, "%s: cannot read: %s", path, strerror(errno));
        else if (k == 0)
            rc = nd_error_set(err, "%s: the file ended early (did it change while being "
                              "read?)", path);
        if (rc) break;
        out->size += (size_t)k;
    }
    close(fd);
    if (rc) nd_bytes_free(out);
    return rc;
}

/* ---- writing ----------------------------------------------------------- */

typedef struct {
    const void *const *parts;
    const size_t *sizes;
    int nparts;
} parts_job;

static int write_parts(int fd, void *ctx) {
    const parts_job *job = ctx;
    int e = 0;
    for (int i = 0; i < job->nparts && !e; i++) e = nd_write_all(fd, job->parts[i], job->sizes[i]);
    return e;
}

int nd__write_atomic(const char *path, const void *const *parts,
                     const size_t *sizes, int nparts, nd_error *err) {
    parts_job job = {parts, sizes, nparts};
    return nd_write_file_atomic(path, write_parts, &job, err);
}
