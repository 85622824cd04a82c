/* Fuzz target: nd_idx_load (data/data.h), MNIST / Fashion-MNIST IDX files,
 * plain or gzip.
 *
 * Input: one byte of options, then the images file, then (when asked) the
 * labels file:
 *   byte 0  bit 0: a labels file follows; bits 1-2: pad (0..3)
 *   bytes 1-2 (with labels only): the images file's length, little-endian
 *             (cut to what there is); the labels file is the rest.
 * Beyond crashes, leaks and nd_fatal: on ND_OK the images are
 * [N, 1, H + 2 pad, W + 2 pad] with the file's pixels as x / 127.5 - 1
 * inside a border of -1, the labels [N] the file's bytes; on ND_ERR *out
 * is empty. */
#include <string.h>

#include "data/data.h"
#include "fuzz.h"

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The file as plain bytes (gunzipped when it starts with 1f 8b). */
static void plain(const unsigned char *p, size_t n, nd_bytes *out) {
    memset(out, 0, sizeof *out);
    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
        nd_error err;
        FZ_CHECK(nd_gunzip(p, n, ND_DATA_MAX_BYTES, out, &err) == ND_OK,
                 "nd_idx_load accepted gzip data that nd_gunzip refuses: %s", err.message);
    } else {
        out->data = (unsigned char *)(uintptr_t)p;
        out->size = n;
    }
}

static void check_images(const nd_dataset *d, const unsigned char *p, size_t n, int pad) {
    nd_bytes b;
    plain(p, n, &b);
    FZ_CHECK(b.size >= 16 && be32(b.data) == 0x803, "accepted images without the magic");
    uint32_t N = be32(b.data + 4), H = be32(b.data + 8), W = be32(b.data + 12);
    FZ_CHECK(N > 0 && H > 0 && W > 0, "accepted an empty images file");
    FZ_CHECK((uint64_t)N * H * W == b.size - 16, "accepted images of the wrong size");
    const nd_tensor *x = d->images;
    int64_t ph = (int64_t)H + 2 * pad, pw = (int64_t)W + 2 * pad;
    FZ_CHECK(d->n == N && x && x->ndim == 4 && x->shape[0] == N && x->shape[1] == 1 &&
                 x->shape[2] == ph && x->shape[3] == pw,
             "images of the wrong shape");
    const float *v = nd_data(x);
    const unsigned char *px = b.data + 16;
    for (int64_t i = 0; i < (int64_t)N; i++)
        for (int64_t r = 0; r < ph; r++)
            for (int64_t c = 0; c < pw; c++) {
                bool inside = r >= pad && r < pad + (int64_t)H && c >= pad && c < pad + (int64_t)W;
                /* each step rounded to float, as the reader rounds it */
                float q = inside ? (float)*px++ / 127.5f : 0.0f, want = inside ? q - 1.0f : -1.0f;
                float got = v[(i * ph + r) * pw + c];
                FZ_CHECK(got == want, "image %lld pixel (%lld, %lld) is %g, not %g",
                         (long long)i, (long long)r, (long long)c, got, want);
            }
    if (b.data != p) nd_bytes_free(&b);
}

static void check_labels(const nd_dataset *d, const unsigned char *p, size_t n) {
    nd_bytes b;
    plain(p, n, &b);
    FZ_CHECK(b.size >= 8 && be32(b.data) == 0x801, "accepted labels without the magic");
    uint32_t N = be32(b.data + 4);
    FZ_CHECK(N == b.size - 8 && N == d->n, "accepted labels of the wrong size or count");
    FZ_CHECK(d->labels && d->labels->ndim == 1 && d->labels->shape[0] == N,
             "labels of the wrong shape");
    const float *l = nd_data(d->labels);
    for (uint32_t i = 0; i < N; i++)
        FZ_CHECK(l[i] == (float)b.data[8 + i], "label %u is %g, the file holds %u", (unsigned)i,
                 l[i], b.data[8 + i]);
    if (b.data != p) nd_bytes_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_init();
    if (size < 1) return 0;
    size_t base = fz_mem_begin();
    bool labels = data[0] & 1;
    int pad = (data[0] >> 1) & 3;
    const unsigned char *im = data + 1, *lb = NULL;
    size_t nim = size - 1, nlb = 0;
    if (labels) {
        if (size < 3) return 0;
        size_t want = (size_t)data[1] | (size_t)data[2] << 8;
        im = data + 3;
        nim = size - 3 < want ? size - 3 : want;
        lb = im + nim;
        nlb = size - 3 - nim;
    }
    const char *ipath = fz_write(0, im, nim);
    const char *lpath = labels ? fz_write(1, lb, nlb) : NULL;
    nd_dataset d;
    memset(&d, 0xab, sizeof d);
    nd_error err = {{0}};
    int rc = nd_idx_load(ipath, lpath, pad, &d, &err);
    fz_check_result("nd_idx_load", rc, &err, NULL);
    if (rc == ND_OK) {
        check_images(&d, im, nim, pad);
        if (labels) check_labels(&d, lb, nlb);
        else FZ_CHECK(d.labels == NULL, "labels without a labels file");
        nd_dataset_free(&d);
    } else {
        FZ_CHECK(strstr(err.message, ipath) || (lpath && strstr(err.message, lpath)),
                 "the message names neither file: %s", err.message);
        FZ_CHECK(d.images == NULL && d.labels == NULL && d.n == 0, "*out not empty after ND_ERR");
    }
    fz_mem_end(base, "nd_idx_load");
    return 0;
}
