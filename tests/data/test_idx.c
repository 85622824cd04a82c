/* IDX files (MNIST, Fashion-MNIST): plain and gzip'd files read back to
 * the exact floats, padding, labels, one message per defect, and random
 * damage that must never crash. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "files.h"

static void be32(unsigned char *p, uint32_t v) {
    for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> (24 - 8 * k));
}

/* An images file of n images h x w with pixel bytes px; *size its size. */
static unsigned char *images_file(uint32_t n, uint32_t h, uint32_t w,
                                  const unsigned char *px, size_t *size) {
    size_t data = (size_t)n * h * w;
    unsigned char *b = malloc(16 + data);
    be32(b, 0x803);
    be32(b + 4, n);
    be32(b + 8, h);
    be32(b + 12, w);
    if (data) memcpy(b + 16, px, data);
    *size = 16 + data;
    return b;
}

static unsigned char *labels_file(uint32_t n, const unsigned char *l, size_t *size) {
    unsigned char *b = malloc(8 + n);
    be32(b, 0x801);
    be32(b + 4, n);
    if (n) memcpy(b + 8, l, n);
    *size = 8 + n;
    return b;
}

static unsigned char px[5 * 4 * 3];
static const unsigned char labels[5] = {9, 0, 3, 3, 7};

static void make_pixels(void) {
    for (int i = 0; i < 60; i++) px[i] = (unsigned char)(i * 37 % 256);
    px[0] = 0;
    px[1] = 255;
}

static void load_ok(const char *im, const char *lb, int pad, nd_dataset *d) {
    nd_error err = {{0}};
    int rc = nd_idx_load(im, lb, pad, d, &err);
    ck_assert_msg(rc == ND_OK, "load failed: %s", err.message);
}

static void check_dataset(const nd_dataset *d, int pad, bool with_labels) {
    int64_t ph = 4 + 2 * pad, pw = 3 + 2 * pad;
    ck_assert_int_eq(d->n, 5);
    ck_assert_int_eq(d->images->ndim, 4);
    ck_assert(d->images->shape[0] == 5 && d->images->shape[1] == 1 &&
              d->images->shape[2] == ph && d->images->shape[3] == pw);
    ck_assert_ptr_null(d->images->scope); /* outside every scope */
    const float *x = nd_data(d->images);
    for (int64_t i = 0; i < 5; i++)
        for (int64_t y = 0; y < ph; y++)
            for (int64_t c = 0; c < pw; c++) {
                int64_t iy = y - pad, ic = c - pad;
                bool inside = iy >= 0 && iy < 4 && ic >= 0 && ic < 3;
                /* x / 127.5 - 1, each step rounded to float as the reader
                 * rounds it, also where float arithmetic runs wider */
                float q = inside ? (float)px[i * 12 + iy * 3 + ic] / 127.5f : 0.0f;
                float want = inside ? q - 1.0f : -1.0f;
                ck_assert(x[(i * ph + y) * pw + c] == want);
            }
    ck_assert(x[pad * pw + pad] == -1.0f && x[pad * pw + pad + 1] == 1.0f);
    if (!with_labels) {
        ck_assert_ptr_null(d->labels);
        return;
    }
    ck_assert_int_eq(d->labels->ndim, 1);
    ck_assert_int_eq(d->labels->shape[0], 5);
    ck_assert_ptr_null(d->labels->scope);
    for (int i = 0; i < 5; i++) ck_assert(nd_data(d->labels)[i] == labels[i]);
}

START_TEST(test_idx_files) {
    td_make_dir();
    make_pixels();
    size_t ni, nl, ng, nlg;
    unsigned char *im = images_file(5, 4, 3, px, &ni), *lb = labels_file(5, labels, &nl);
    td_write(td_path("images"), im, ni);
    td_write(td_path("labels"), lb, nl);
    for (int level = 0; level <= 1; level++) {
        unsigned char *g = td_gzip(im, ni, level, &ng), *gl = td_gzip(lb, nl, level, &nlg);
        td_write(td_path(level ? "images1.gz" : "images0.gz"), g, ng);
        td_write(td_path(level ? "labels1.gz" : "labels0.gz"), gl, nlg);
        free(g);
        free(gl);
    }
    const char *sets[][2] = {{"images", "labels"}, {"images0.gz", "labels1.gz"},
                             {"images1.gz", "labels"}, {"images", "labels0.gz"}};
    for (int k = 0; k < 4; k++)
        for (int pad = 0; pad <= 2; pad += 2) {
            nd_dataset d;
            load_ok(td_path(sets[k][0]), td_path(sets[k][1]), pad, &d);
            check_dataset(&d, pad, true);
            nd_dataset_free(&d);
            ck_assert(d.images == NULL && d.labels == NULL && d.n == 0);
        }
    nd_dataset d;
    load_ok(td_path("images1.gz"), NULL, 2, &d);
    check_dataset(&d, 2, false);
    nd_dataset_free(&d);
    free(im);
    free(lb);
    td_remove_dir();
}
END_TEST

/* One defect per file: its bytes and the message after "<path>: ". */
START_TEST(test_idx_corrupt) {
    td_make_dir();
    make_pixels();
    size_t n, nl, ng;
    unsigned char *good = images_file(5, 4, 3, px, &n);
    unsigned char *lb = labels_file(5, labels, &nl);
    unsigned char b[200];
    char want[512];
    const char *im_path = td_path("im"), *lb_path = td_path("lb");
    td_write(lb_path, lb, nl);
    nd_dataset d;
    nd_error err;
#define IDX_ERROR(bytes, size, what)                                             \
    do {                                                                         \
        td_write(im_path, (bytes), (size));                                      \
        memset(&d, 0xab, sizeof d);                                              \
        memset(&err, 0, sizeof err);                                             \
        ck_assert_int_eq(nd_idx_load(im_path, lb_path, 2, &d, &err), ND_ERR);    \
        td_expect(&err, im_path, (what));                                        \
        ck_assert(d.images == NULL && d.labels == NULL && d.n == 0);            \
    } while (0)
    IDX_ERROR(good, 0, "the file is empty");
    IDX_ERROR(good, 3, "the file is 3 bytes, too short for an IDX magic number");
    IDX_ERROR("PK\x03\x04zzzzzzzzzzzz", 16,
              "not an IDX file: the magic number is 0x504b0304 (IDX images files have "
              "0x00000803)");
    memcpy(b, good, n);
    b[2] = 0x0d;
    IDX_ERROR(b, n, "IDX element type 0x0d is not supported; MNIST files hold unsigned "
                    "bytes (0x08)");
    IDX_ERROR(lb, nl, "magic number 0x00000801 is that of a 1-dimensional IDX file; images "
                      "files have 0x00000803 (3 dimensions)");
    IDX_ERROR(good, 8, "truncated: the file is 8 bytes, shorter than the 16-byte header");
    IDX_ERROR(good, n - 1, "truncated: the header gives 5 images of 4x3, 60 bytes of data, "
                           "but the file has 59");
    memcpy(b, good, n);
    b[n] = 0;
    IDX_ERROR(b, n + 1, "wrong size: the header gives 5 images of 4x3, 60 bytes of data, but "
                        "the file has 61");
    memcpy(b, good, n);
    be32(b + 4, 0);
    IDX_ERROR(b, 16, "the file holds no images");
    memcpy(b, good, n);
    be32(b + 8, 0);
    IDX_ERROR(b, 16, "the image size 0x3 is empty");
    memcpy(b, good, n);
    be32(b + 4, 0xffffffffu);
    be32(b + 8, 0xffffffffu);
    be32(b + 12, 0xffffffffu);
    IDX_ERROR(b, n, "truncated: the header gives 4294967295 images of 4294967295x4294967295, "
                    "more bytes than a file can hold");
    /* gzip'd: the checks of the wrapper, then those of the contents. */
    unsigned char *g = td_gzip(good, n, 1, &ng);
    g[ng - 8] ^= 0xff;
    uint32_t crc = nd_crc32(ND_CRC32_INIT, good, n);
    snprintf(want, sizeof want, "gzip: CRC-32 mismatch: stored 0x%08x, the data gives 0x%08x",
             (unsigned)(crc ^ 0xff), (unsigned)crc);
    IDX_ERROR(g, ng, want);
    g[ng - 8] ^= 0xff;
    g[10] = 0x07;
    IDX_ERROR(g, ng, "corrupt deflate data: invalid block type 3 at byte 10");
    free(g);
    g = td_gzip(good, n, 1, &ng);
    snprintf(want, sizeof want, "corrupt deflate data: unexpected end of input at byte %zu",
             ng - 12);
    IDX_ERROR(g, ng - 12, want);
    free(g);
    g = td_gzip(good, n - 1, 0, &ng);
    IDX_ERROR(g, ng, "truncated: the header gives 5 images of 4x3, 60 bytes of data, but the "
                     "decompressed data has 59");
    free(g);
    g = td_gzip(good, 0, 1, &ng);
    IDX_ERROR(g, ng, "the decompressed data is empty");
    free(g);
    /* The labels file, and the two files together. */
    td_write(im_path, good, n);
    unsigned char *l4 = labels_file(4, labels, &nl);
    td_write(lb_path, l4, nl);
    ck_assert_int_eq(nd_idx_load(im_path, lb_path, 0, &d, &err), ND_ERR);
    snprintf(want, sizeof want, "%s holds 5 images but %s holds 4 labels", im_path, lb_path);
    td_expect(&err, NULL, want);
    td_write(lb_path, good, n);
    ck_assert_int_eq(nd_idx_load(im_path, lb_path, 0, &d, &err), ND_ERR);
    td_expect(&err, lb_path, "magic number 0x00000803 is that of a 3-dimensional IDX file; "
                             "labels files have 0x00000801 (1 dimension)");
    td_write(lb_path, l4, nl - 1);
    ck_assert_int_eq(nd_idx_load(im_path, lb_path, 0, &d, &err), ND_ERR);
    td_expect(&err, lb_path, "truncated: the header gives 4 labels, 4 bytes of data, but the "
                             "file has 3");
    const char *missing = td_path("missing");
    ck_assert_int_eq(nd_idx_load(missing, NULL, 0, &d, &err), ND_ERR);
    snprintf(want, sizeof want, "cannot open: %s", strerror(ENOENT));
    td_expect(&err, missing, want);
    ck_assert_int_eq(nd_idx_load(td_dir(), NULL, 0, &d, &err), ND_ERR);
    snprintf(want, sizeof want, "cannot read: %s", strerror(EISDIR));
    td_expect(&err, td_dir(), want);
    ck_assert_int_eq(nd_idx_load("/dev/null", NULL, 0, &d, &err), ND_ERR);
    td_expect(&err, "/dev/null", "not a regular file");
    EXPECT_FATAL(nd_idx_load(im_path, NULL, -1, &d, NULL),
                 "nanodiff: idx_load: pad is -1; it must be 0..1024");
    EXPECT_FATAL(nd_idx_load(NULL, NULL, 0, &d, NULL), "nanodiff: idx_load: images_path is NULL");
#undef IDX_ERROR
    free(l4);
    free(good);
    free(lb);
    td_remove_dir();
}
END_TEST

/* Random truncations and byte changes of a plain and a gzip'd file. */
START_TEST(test_idx_fuzz) {
    td_make_dir();
    make_pixels();
    size_t n, nl, ng;
    unsigned char *im = images_file(5, 4, 3, px, &n), *lb = labels_file(5, labels, &nl);
    unsigned char *g = td_gzip(im, n, 1, &ng);
    const char *path = td_path("f"), *lpath = td_path("l");
    td_write(lpath, lb, nl);
    unsigned char *b = malloc(ng > n ? ng : n);
    uint32_t s = 11;
    for (int r = 0; r < 400; r++) {
        const unsigned char *src = r % 2 ? g : im;
        size_t len = r % 2 ? ng : n;
        memcpy(b, src, len);
        if (r % 4 < 2) len = td_rand(&s) % len;
        else b[td_rand(&s) % len] ^= (unsigned char)(1 + td_rand(&s) % 255);
        td_write(path, b, len);
        nd_dataset d;
        nd_error err = {{0}};
        int rc = nd_idx_load(path, lpath, 2, &d, &err);
        ck_assert(rc == ND_OK || rc == ND_ERR);
        if (rc == ND_OK) ck_assert_int_eq(d.n, 5);
        else ck_assert(d.images == NULL && err.message[0]);
        nd_dataset_free(&d);
    }
    free(b);
    free(g);
    free(im);
    free(lb);
    td_remove_dir();
}
END_TEST

TCase *tcase_idx(void) {
    TCase *tc = nd_test_case("idx");
    tcase_add_test(tc, test_idx_files);
    tcase_add_test(tc, test_idx_corrupt);
    tcase_add_test(tc, test_idx_fuzz);
    return tc;
}
