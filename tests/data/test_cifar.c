/* CIFAR-10 binary batches: records read back to the exact floats in
 * [3, 32, 32] order, several files in order, one message per defect, and
 * random damage that must never crash. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"

#define RECORD 3073

/* n records: label (first + i) % 10, pixel j of record i = (i * 7 + j) % 256. */
static unsigned char *batch(int n, int first, size_t *size) {
    unsigned char *b = malloc((size_t)n * RECORD + 1);
    for (int i = 0; i < n; i++) {
        unsigned char *r = b + (size_t)i * RECORD;
        r[0] = (unsigned char)((first + i) % 10);
        for (int j = 0; j < 3072; j++) r[1 + j] = (unsigned char)((i * 7 + j) % 256);
    }
    *size = (size_t)n * RECORD;
    return b;
}

START_TEST(test_cifar_files) {
    td_make_dir();
    size_t n1, n2;
    unsigned char *a = batch(3, 0, &n1), *b = batch(2, 5, &n2);
    td_write(td_path("data_batch_1.bin"), a, n1);
    td_write(td_path("test_batch.bin"), b, n2);
    const char *paths[] = {td_path("data_batch_1.bin"), td_path("test_batch.bin")};
    nd_dataset d;
    nd_error err = {{0}};
    ck_assert_msg(nd_cifar10_load(paths, 2, &d, &err) == ND_OK, "%s", err.message);
    ck_assert_int_eq(d.n, 5);
    ck_assert(d.images->ndim == 4 && d.images->shape[0] == 5 && d.images->shape[1] == 3 &&
              d.images->shape[2] == 32 && d.images->shape[3] == 32);
    ck_assert_ptr_null(d.images->scope);
    ck_assert_ptr_null(d.labels->scope);
    const float want_labels[5] = {0, 1, 2, 5, 6};
    int64_t idx[4];
    for (int k = 0; k < 5; k++) {
        ck_assert(nd_data(d.labels)[k] == want_labels[k]);
        const unsigned char *r = (k < 3 ? a : b) + (size_t)(k < 3 ? k : k - 3) * RECORD;
        /* Red plane first, each plane row-major: [c, y, x] is byte 1 + c*1024 + y*32 + x. */
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y += 5)
                for (int x = 0; x < 32; x += 3) {
                    idx[0] = k, idx[1] = c, idx[2] = y, idx[3] = x;
                    /* x / 127.5 - 1, each step rounded to float as the
                     * reader rounds it, also where float arithmetic runs
                     * wider */
                    float q = (float)r[1 + c * 1024 + y * 32 + x] / 127.5f, want = q - 1.0f;
                    ck_assert(nd_get(d.images, idx) == want);
                }
    }
    nd_dataset_free(&d);
    free(a);
    free(b);
    td_remove_dir();
}
END_TEST

START_TEST(test_cifar_corrupt) {
    td_make_dir();
    size_t n;
    unsigned char *good = batch(3, 0, &n);
    const char *path = td_path("bad.bin"), *ok = td_path("ok.bin");
    td_write(ok, good, n);
    nd_dataset d;
    nd_error err;
    char want[512];
#define CIFAR_ERROR(bytes, size, what)                                           \
    do {                                                                         \
        td_write(path, (bytes), (size));                                         \
        const char *ps[] = {ok, path};                                           \
        memset(&d, 0xab, sizeof d);                                              \
        memset(&err, 0, sizeof err);                                             \
        ck_assert_int_eq(nd_cifar10_load(ps, 2, &d, &err), ND_ERR);              \
        td_expect(&err, path, (what));                                           \
        ck_assert(d.images == NULL && d.labels == NULL && d.n == 0);            \
    } while (0)
    CIFAR_ERROR(good, 0, "the file is empty");
    CIFAR_ERROR(good, 1, "the file is 1 byte, not a whole number of 3073-byte records (0 "
                         "records and 1 byte over)");
    CIFAR_ERROR(good, 3072, "the file is 3072 bytes, not a whole number of 3073-byte records "
                            "(0 records and 3072 bytes over)");
    CIFAR_ERROR(good, n - 1, "the file is 9218 bytes, not a whole number of 3073-byte records "
                             "(2 records and 3072 bytes over)");
    CIFAR_ERROR(good, RECORD + 5, "the file is 3078 bytes, not a whole number of 3073-byte "
                                  "records (1 record and 5 bytes over)");
    unsigned char *big = malloc(n + 1);
    memcpy(big, good, n);
    big[n] = 0;
    CIFAR_ERROR(big, n + 1, "the file is 9220 bytes, not a whole number of 3073-byte records "
                            "(3 records and 1 byte over)");
    free(big);
    good[RECORD] = 10;
    CIFAR_ERROR(good, n, "record 1 (byte 3073): label 10 is not a CIFAR-10 class (0..9)");
    good[RECORD] = 1;
    good[2 * RECORD] = 255;
    CIFAR_ERROR(good, n, "record 2 (byte 6146): label 255 is not a CIFAR-10 class (0..9)");
    good[2 * RECORD] = 2;
    good[0] = 0x80;
    CIFAR_ERROR(good, n, "record 0 (byte 0): label 128 is not a CIFAR-10 class (0..9)");
    good[0] = 0;
    unlink(path);
    const char *ps[] = {ok, path};
    ck_assert_int_eq(nd_cifar10_load(ps, 2, &d, &err), ND_ERR);
    snprintf(want, sizeof want, "cannot open: %s", strerror(ENOENT));
    td_expect(&err, path, want);
    const char *dir[] = {td_dir()};
    ck_assert_int_eq(nd_cifar10_load(dir, 1, &d, &err), ND_ERR);
    snprintf(want, sizeof want, "cannot read: %s", strerror(EISDIR));
    td_expect(&err, td_dir(), want);
    EXPECT_FATAL(nd_cifar10_load(ps, 0, &d, NULL),
                 "nanodiff: cifar10_load: npaths is 0; it must be >= 1");
    const char *null_path[] = {ok, NULL};
    EXPECT_FATAL(nd_cifar10_load(null_path, 2, &d, NULL),
                 "nanodiff: cifar10_load: paths[1] is NULL");
#undef CIFAR_ERROR
    free(good);
    td_remove_dir();
}
END_TEST

START_TEST(test_cifar_fuzz) {
    td_make_dir();
    size_t n;
    unsigned char *good = batch(2, 3, &n);
    unsigned char *b = malloc(n);
    const char *path = td_path("f.bin");
    const char *ps[] = {path};
    uint32_t s = 5;
    for (int r = 0; r < 300; r++) {
        memcpy(b, good, n);
        size_t len = n;
        if (r % 2) len = td_rand(&s) % (n + 1);
        else b[td_rand(&s) % n] ^= (unsigned char)(1 + td_rand(&s) % 255);
        td_write(path, b, len);
        nd_dataset d;
        nd_error err = {{0}};
        int rc = nd_cifar10_load(ps, 1, &d, &err);
        ck_assert(rc == ND_OK || rc == ND_ERR);
        if (rc == ND_ERR) ck_assert(d.images == NULL && err.message[0]);
        nd_dataset_free(&d);
    }
    free(b);
    free(good);
    td_remove_dir();
}
END_TEST

TCase *tcase_cifar(void) {
    TCase *tc = nd_test_case("cifar");
    tcase_add_test(tc, test_cifar_files);
    tcase_add_test(tc, test_cifar_corrupt);
    tcase_add_test(tc, test_cifar_fuzz);
    return tc;
}
