/* .npy files: the header against the format's rules (magic, version 1.0,
 * a little-endian HEADER_LEN, the dict text, spaces and a newline up to a
 * multiple of 64 bytes), the exact bytes of a small file, the data in C
 * order from any strides, and failed saves. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "files.h"

/* Checks the file at path against x and the header rules. */
static void check_npy(const char *path, const nd_tensor *x, const char *shape_text) {
    size_t n;
    unsigned char *b = td_read(path, &n);
    ck_assert_uint_ge(n, 10);
    ck_assert(memcmp(b, "\x93NUMPY", 6) == 0);
    ck_assert_uint_eq(b[6], 1);
    ck_assert_uint_eq(b[7], 0);
    size_t hlen = b[8] | (size_t)b[9] << 8;
    ck_assert_uint_eq((10 + hlen) % 64, 0);
    ck_assert_uint_eq(n, 10 + hlen + 4 * (size_t)nd_numel(x));
    char dict[256];
    snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }",
             shape_text);
    size_t dn = strlen(dict);
    ck_assert_uint_ge(hlen, dn + 1);
    ck_assert(memcmp(b + 10, dict, dn) == 0);
    for (size_t i = 10 + dn; i < 10 + hlen - 1; i++) ck_assert_uint_eq(b[i], ' ');
    ck_assert_uint_eq(b[10 + hlen - 1], '\n');
    /* The padding is the least that aligns: fewer than 64 spaces. */
    ck_assert_uint_lt(hlen - dn - 1, 64);
    int64_t index[ND_MAX_DIMS], wrong = 0;
    for (int64_t i = 0; i < nd_numel(x); i++) {
        const unsigned char *q = b + 10 + hlen + 4 * i;
        uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                     (uint32_t)q[3] << 24;
        float got;
        memcpy(&got, &u, 4);
        t_unravel(i, x->shape, x->ndim, index);
        float want = nd_get(x, index);
        wrong += memcmp(&got, &want, 4) != 0;
    }
    ck_assert_int_eq(wrong, 0);
    free(b);
}

START_TEST(test_npy_shapes) {
    td_make_dir();
    nd_error err;
    const char *path = td_path("x.npy");
    nd_tensor *cube = t_uniform(4, ND_SHAPE(2, 3, 4), -1.0f, 1.0f);
    const struct {
        nd_tensor *x;
        const char *shape;
    } cases[] = {
        {nd_scalar(2.5f), "()"},
        {nd_arange(0, 5, 1), "(5,)"},
        {nd_zeros(ND_SHAPE(0)), "(0,)"},
        {cube, "(2, 3, 4)"},
        {nd_permute(cube, ND_AXES(2, 0, 1)), "(4, 2, 3)"},
        {nd_slice(cube, 2, 1, ND_END, 2), "(2, 3, 2)"},
        {nd_expand(nd_arange(0, 3, 1), ND_SHAPE(2, 3)), "(2, 3)"},
        {t_uniform(5, ND_SHAPE(16, 1, 32, 32), -1.0f, 1.0f), "(16, 1, 32, 32)"},
        {nd_zeros(ND_SHAPE(1, 1, 1, 1, 1, 1, 1, 1)), "(1, 1, 1, 1, 1, 1, 1, 1)"},
        {nd_zeros(ND_SHAPE(1000000000, 0)), "(1000000000, 0)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ck_assert_int_eq(nd_npy_save(path, cases[i].x, &err), ND_OK);
        check_npy(path, cases[i].x, cases[i].shape);
    }
    ck_assert_str_eq(td_listing(), "x.npy");
    td_remove_dir();
}
END_TEST

START_TEST(test_npy_exact_bytes) {
    td_make_dir();
    nd_error err;
    const char *path = td_path("two.npy");
    ck_assert_int_eq(nd_npy_save(path, nd_from_buffer((const float[]){1.0f, -2.0f}, ND_SHAPE(2)),
                                 &err),
                     ND_OK);
    /* The dict is 57 characters: 10 + 57 + 1 > 64, so the data starts at
     * 128 and HEADER_LEN is 118 (what np.save writes too). */
    unsigned char want[128 + 8];
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    ck_assert_uint_eq(strlen(dict), 57);
    memcpy(want, "\x93NUMPY\x01\x00\x76\x00", 10);
    memset(want + 10, ' ', 118);
    memcpy(want + 10, dict, strlen(dict));
    want[127] = '\n';
    memcpy(want + 128, "\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);
    size_t n;
    unsigned char *b = td_read(path, &n);
    ck_assert_uint_eq(n, sizeof want);
    ck_assert(memcmp(b, want, n) == 0);
    free(b);
    td_remove_dir();
}
END_TEST

START_TEST(test_npy_failures) {
    td_make_dir();
    nd_error err;
    char want[512];
    const char *path = td_path("keep.npy");
    ck_assert_int_eq(nd_npy_save(path, nd_ones(ND_SHAPE(3)), &err), ND_OK);
    const char *sub = td_path("sub");
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    ck_assert_int_eq(nd_npy_save(sub, nd_ones(ND_SHAPE(3)), &err), ND_ERR);
    snprintf(want, sizeof want, "cannot rename the temporary file: %s", strerror(EISDIR));
    td_expect(&err, sub, want);
    const char *lost = td_path("nowhere/x.npy");
    ck_assert_int_eq(nd_npy_save(lost, nd_ones(ND_SHAPE(3)), &err), ND_ERR);
    snprintf(want, sizeof want, "cannot create a temporary file beside it: %s", strerror(ENOENT));
    td_expect(&err, lost, want);
    check_npy(path, nd_ones(ND_SHAPE(3)), "(3,)");
    ck_assert_str_eq(td_listing(), "keep.npy sub");
    EXPECT_FATAL(nd_npy_save(NULL, nd_ones(ND_SHAPE(3)), NULL), "nanodiff: npy_save: path is NULL");
    EXPECT_FATAL(nd_npy_save(path, NULL, NULL), "nanodiff: npy_save: x is NULL");
    td_remove_dir();
}
END_TEST

TCase *tcase_npy(void) {
    TCase *tc = nd_test_case("npy");
    tcase_add_test(tc, test_npy_shapes);
    tcase_add_test(tc, test_npy_exact_bytes);
    tcase_add_test(tc, test_npy_failures);
    return tc;
}
