/* MNIST and Fashion-MNIST IDX files, plain or gzip'd.
 *
 * An IDX file is a big-endian magic number, 0x00 0x00, the element type
 * (0x08: unsigned byte) and the number of dimensions, then each size as a
 * big-endian u32, then the elements in row-major order. Images files have
 * 3 dimensions (N, rows, columns: magic 0x00000803), labels files one (N:
 * 0x00000801). */
#include <string.h>

#include "internal.h"

typedef struct idx {
    nd_bytes bytes; /* the whole file, decompressed */
    uint32_t size[3];
    const unsigned char *data;
} idx;

static uint32_t get_be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads and checks the IDX file at path of ndim dimensions (1: labels,
 * 3: images). */
static int idx_read(const char *path, int ndim, idx *f, nd_error *err) {
    memset(f, 0, sizeof *f);
    const char *what = ndim == 3 ? "images" : "labels";
    if (nd__read_file(path, ND_DATA_MAX_BYTES, &f->bytes, err)) return ND_ERR;
    nd_bytes *b = &f->bytes;
    bool gz = b->size >= 2 && b->data[0] == 0x1f && b->data[1] == 0x8b;
    if (gz) {
        nd_error e = {{0}};
        nd_bytes plain;
        int rc = nd_gunzip(b->data, b->size, ND_DATA_MAX_BYTES, &plain, &e);
        nd_bytes_free(b);
        if (rc) return nd_error_set(err, "%s: %s", path, e.message);
        *b = plain;
    }
    const char *the = gz ? "the decompressed data" : "the file";
    size_t n = b->size;
    if (n == 0) return nd_error_set(err, "%s: %s is empty", path, the);
    if (n < 4)
        return nd_error_set(err, "%s: %s is %zu bytes, too short for an IDX magic number",
                            path, the, n);
    uint32_t magic = get_be32(b->data), want = 0x800u | (uint32_t)ndim;
    if (b->data[0] || b->data[1])
        return nd_error_set(err, "%s: not an IDX file: the magic number is 0x%08x (IDX "
                            "%s files have 0x%08x)", path, (unsigned)magic, what,
                            (unsigned)want);
    if (b->data[2] != 0x08)
        return nd_error_set(err, "%s: IDX element type 0x%02x is not supported; MNIST "
                            "files hold unsigned bytes (0x08)", path, b->data[2]);
    if (magic != want)
        return nd_error_set(err, "%s: magic number 0x%08x is that of a %u-dimensional IDX "
                            "file; %s files have 0x%08x (%d dimension%s)", path,
                            (unsigned)magic, b->data[3], what, (unsigned)want, ndim,
                            ndim == 1 ? "" : "s");
    size_t header = 4 + 4 * (size_t)ndim;
    if (n < header)
        return nd_error_set(err, "%s: truncated: %s is %zu bytes, shorter than the "
                            "%zu-byte header", path, the, n, header);
    uint64_t need = 1;
    for (int d = 0; d < ndim; d++) {
        f->size[d] = get_be32(b->data + 4 + 4 * d);
        /* Three u32 sizes can overflow 64 bits: saturate, which reads as
         * truncated, as such a file must be. */
        if (f->size[d] && need > UINT64_MAX / f->size[d]) need = UINT64_MAX;
        else need *= f->size[d];
    }
    if (f->size[0] == 0) return nd_error_set(err, "%s: the file holds no %s", path, what);
    char dims[64] = "";
    if (ndim == 3) {
        if (f->size[1] == 0 || f->size[2] == 0)
            return nd_error_set(err, "%s: the image size %ux%u is empty", path,
                                (unsigned)f->size[1], (unsigned)f->size[2]);
        snprintf(dims, sizeof dims, " of %ux%u", (unsigned)f->size[1], (unsigned)f->size[2]);
    }
    uint64_t data = n - header;
    if (need == UINT64_MAX)
        return nd_error_set(err, "%s: truncated: the header gives %u %s%s, more bytes "
                            "than a file can hold", path, (unsigned)f->size[0], what, dims);
    if (data < need)
        return nd_error_set(err, "%s: truncated: the header gives %u %s%s, %llu bytes of "
                            "data, but %s has %llu", path, (unsigned)f->size[0], what, dims,
                            (unsigned long long)need, the, (unsigned long long)data);
    if (data > need)
        return nd_error_set(err, "%s: wrong size: the header gives %u %s%s, %llu bytes "
                            "of data, but %s has %llu", path, (unsigned)f->size[0], what,
                            dims, (unsigned long long)need, the, (unsigned long long)data);
    f->data = b->data + header;
    return ND_OK;
}

void nd_dataset_free(nd_dataset *d) {
    if (!d) return;
    nd_free(d->images);
    nd_free(d->labels);
    memset(d, 0, sizeof *d);
}

int nd_idx_load(const char *images_path, const char *labels_path, int pad,
                nd_dataset *out, nd_error *err) {
    if (!images_path) nd_fatal("idx_load", "images_path is NULL");
    if (!out) nd_fatal("idx_load", "out is NULL");
    if (pad < 0 || pad > 1024) nd_fatal("idx_load", "pad is %d; it must be 0..1024", pad);
    memset(out, 0, sizeof *out);
    idx im, lb;
    memset(&lb, 0, sizeof lb);
    if (idx_read(images_path, 3, &im, err)) {
        nd_bytes_free(&im.bytes);
        return ND_ERR;
    }
    int rc = labels_path ? idx_read(labels_path, 1, &lb, err) : ND_OK;
    if (!rc && labels_path && lb.size[0] != im.size[0])
        rc = nd_error_set(err, "%s holds %u images but %s holds %u labels", images_path,
                          (unsigned)im.size[0], labels_path, (unsigned)lb.size[0]);
    if (!rc) {
        int64_t n = im.size[0], h = im.size[1], w = im.size[2];
        int64_t ph = h + 2 * pad, pw = w + 2 * pad;
        out->n = n;
        out->images = nd_persist(nd_full(ND_SHAPE(n, 1, ph, pw), -1.0f));
        float *x = nd_data(out->images);
        const unsigned char *p = im.data;
        for (int64_t i = 0; i < n; i++)
            for (int64_t y = 0; y < h; y++) {
                float *row = x + (i * ph + y + pad) * pw + pad;
                for (int64_t c = 0; c < w; c++) row[c] = nd__u8_to_pixel(*p++);
            }
        if (labels_path) {
            out->labels = nd_persist(nd_empty(ND_SHAPE(n)));
            float *l = nd_data(out->labels);
            for (int64_t i = 0; i < n; i++) l[i] = lb.data[i];
        }
    }
    nd_bytes_free(&im.bytes);
    nd_bytes_free(&lb.bytes);
    return rc;
}
