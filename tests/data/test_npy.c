/* .npy files: the header against the format's rules (magic, version 1.0,
 * a little-endian HEADER_LEN, the dict text, spaces and a newline up to a
 * multiple of 64 bytes), the exact bytes of a small file, the data in C
 * order from any strides, and failed saves; loading: round trips, files
 * written by hand (float64, version 2.0, the dict written other ways),
 * and broken files, each refused with its own message. */
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
    ck_assert_int_eq(t_mkdir(sub), 0);
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

/* Bits of a loaded tensor against want (same shape, contiguous). */
static void check_same(const nd_tensor *got, const nd_tensor *want) {
    ck_assert_int_eq(got->ndim, want->ndim);
    for (int d = 0; d < want->ndim; d++) ck_assert_int_eq(got->shape[d], want->shape[d]);
    ck_assert(nd_is_contiguous(got));
    int64_t index[ND_MAX_DIMS], wrong = 0;
    for (int64_t i = 0; i < nd_numel(want); i++) {
        t_unravel(i, want->shape, want->ndim, index);
        float a = nd_data(got)[i], b = nd_get(want, index);
        wrong += memcmp(&a, &b, 4) != 0;
    }
    ck_assert_int_eq(wrong, 0);
}

START_TEST(test_npy_load_round_trip) {
    td_make_dir();
    nd_error err;
    const char *path = td_path("x.npy");
    nd_tensor *cube = t_uniform(4, ND_SHAPE(2, 3, 4), -1.0f, 1.0f);
    const float odd[6] = {NAN, INFINITY, -INFINITY, -0.0f, 1e-45f, 3.4028235e38f};
    nd_tensor *cases[] = {
        nd_scalar(2.5f),
        nd_arange(0, 5, 1),
        nd_zeros(ND_SHAPE(0)),
        nd_zeros(ND_SHAPE(3, 0, 2)),
        cube,
        nd_permute(cube, ND_AXES(2, 0, 1)),
        nd_from_buffer(odd, ND_SHAPE(6)),
        t_uniform(5, ND_SHAPE(16, 1, 32, 32), -1.0f, 1.0f),
        nd_full(ND_SHAPE(1, 2, 1, 2, 1, 2, 1, 2), 7.0f),
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ck_assert_int_eq(nd_npy_save(path, cases[i], &err), ND_OK);
        nd_tensor *back = NULL;
        /* Loaded inside a scope, it outlives it. */
        nd_scope *inner = nd_scope_begin();
        ck_assert_msg(nd_npy_load(path, &back, &err) == ND_OK, "%s", err.message);
        nd_scope_end(inner);
        check_same(back, cases[i]);
        nd_free(back);
    }
    td_remove_dir();
}
END_TEST

/* A .npy file of the given version with dict text as its header, padded
 * with spaces and a newline to a multiple of 64 bytes unless raw, then
 * data. */
static void write_npy(const char *path, int major, const char *dict, bool raw,
                      const void *data, size_t n) {
    size_t pre = major == 1 ? 10 : 12, dn = strlen(dict), hlen = dn;
    if (!raw)
        for (hlen = dn + 1; (pre + hlen) % 64; hlen++) {}
    unsigned char *b = malloc(pre + hlen + n + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    for (size_t k = 0; k < pre - 8; k++) b[8 + k] = (unsigned char)(hlen >> (8 * k));
    memset(b + pre, ' ', hlen);
    memcpy(b + pre, dict, dn);
    if (!raw) b[pre + hlen - 1] = '\n';
    if (n) memcpy(b + pre + hlen, data, n);
    td_write(path, b, pre + hlen + n);
    free(b);
}

START_TEST(test_npy_load_by_hand) {
    td_make_dir();
    nd_error err;
    const char *path = td_path("h.npy");
    nd_tensor *x;
    /* float64, little-endian bytes whatever the host, rounded to float:
     * 0.1 to the nearest float, 1e300 to inf, 1e-50 to 0. */
    const double v[6] = {1.5, -2.25, 0.1, 1e300, -1e-50, 123456789.0};
    unsigned char le[48];
    for (int i = 0; i < 6; i++) {
        uint64_t u;
        memcpy(&u, &v[i], 8);
        for (int k = 0; k < 8; k++) le[8 * i + k] = (unsigned char)(u >> (8 * k));
    }
    write_npy(path, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", false,
              le, sizeof le);
    ck_assert_msg(nd_npy_load(path, &x, &err) == ND_OK, "%s", err.message);
    const float want[6] = {1.5f, -2.25f, 0.1f, INFINITY, -0.0f, 123456792.0f};
    check_same(x, nd_from_buffer(want, ND_SHAPE(2, 3)));
    nd_free(x);
    /* Version 2.0 (a u32 HEADER_LEN), the keys in another order, double
     * quotes, a Python 2 long, no trailing comma, no padding or newline. */
    const unsigned char f4[8] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}; /* 1, -2 */
    write_npy(path, 2, "{\"shape\":(1L,2),\"fortran_order\":False,\"descr\":\"<f4\"}", true, f4,
              8);
    ck_assert_msg(nd_npy_load(path, &x, &err) == ND_OK, "%s", err.message);
    check_same(x, nd_from_buffer((const float[]){1.0f, -2.0f}, ND_SHAPE(1, 2)));
    nd_free(x);
    /* A scalar: shape (). */
    write_npy(path, 1, "{'descr':'<f4','fortran_order':False,'shape':()}", false, f4 + 4, 4);
    ck_assert_msg(nd_npy_load(path, &x, &err) == ND_OK, "%s", err.message);
    ck_assert_int_eq(x->ndim, 0);
    ck_assert(nd_item(x) == -2.0f);
    nd_free(x);
    td_remove_dir();
}
END_TEST

START_TEST(test_npy_load_refused) {
    td_make_dir();
    nd_error err;
    const char *path = td_path("bad.npy");
    static const char good[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    const struct {
        const char *dict; /* NULL: the bytes below are the whole file */
        int major;
        size_t data;      /* bytes of data after the header */
        const char *bytes;
        size_t n;
        const char *message;
    } cases[] = {
        {NULL, 0, 0, "", 0, "the file is empty, not a .npy file"},
        {NULL, 0, 0, "\x93NUMPX\x01\x00\x00\x00", 10,
         "not a .npy file: it does not start with \\x93NUMPY"},
        {NULL, 0, 0, "PK\x03\x04", 4, "not a .npy file: it does not start with \\x93NUMPY"},
        {NULL, 0, 0, "\x93NUMPY\x01", 7,
         "truncated: the file is 7 bytes, shorter than a .npy preamble"},
        {NULL, 0, 0, "\x93NUMPY\x02\x00\x00\x00", 10,
         "truncated: the file is 10 bytes, shorter than a .npy 2.0 preamble"},
        {NULL, 0, 0, "\x93NUMPY\x03\x00\x00\x00\x00\x00", 12,
         ".npy format version 3.0 is not supported (1.0 and 2.0 are)"},
        {NULL, 0, 0, "\x93NUMPY\x01\x01\x00\x00", 10,
         ".npy format version 1.1 is not supported (1.0 and 2.0 are)"},
        {NULL, 0, 0, "\x93NUMPY\x01\x00\x76\x00{'descr'", 18,
         "truncated: the header is 118 bytes, the file ends after 8 of them"},
        {"['descr', '<f4']", 1, 0, NULL, 0,
         ".npy header: expected a dict '{', found '['descr', '<f4']'"},
        {"{'descr': '<f4', 'fortran_order': False}", 1, 0, NULL, 0,
         ".npy header: the dict has no 'shape'"},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", 1, 16, NULL, 0,
         "dtype '<i8' is not supported; only '<f4' (float32) and '<f8' (float64, read as "
         "float32) are"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 1, 8, NULL, 0,
         "dtype '>f4' is not supported; only '<f4' (float32) and '<f8' (float64, read as "
         "float32) are"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 1, 8, NULL, 0,
         ".npy header: expected a dtype string such as '<f4' for 'descr', found "
         "'[('a', '<f4')], 'fortran...'"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 1, 16, NULL, 0,
         "the array is in Fortran order (fortran_order: True); only C order is read"},
        {"{'descr': '<f4', 'fortran_order': Truth, 'shape': (2,), }", 1, 8, NULL, 0,
         ".npy header: expected True or False for 'fortran_order', found 'Truth, 'shape': "
         "(2,), }'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", 1, 0, NULL, 0,
         ".npy header: 'shape' holds a negative size '-3'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 1, 0,
         NULL, 0, ".npy header: size '99999999999999999999' in 'shape' is too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 1,
         0, NULL, 0, "shape [4294967296,4294967296] has too many elements"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 1, 4,
         NULL, 0, "'shape' has more than 8 dimensions, the most a tensor has"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", 1, 8, NULL, 0,
         ".npy header: 'shape' is (2), a number, not a tuple; a 1-tuple is written (2,)"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 1, 8, NULL, 0,
         ".npy header: expected a tuple for 'shape', found '[2], }'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", 1, 8, NULL, 0,
         ".npy header: expected ',' or ')' in 'shape', found '3), }'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 1, 8, NULL, 0,
         ".npy header: unexpected key 'x' (the keys are 'descr', 'fortran_order' and "
         "'shape')"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 1, 8,
         NULL, 0, ".npy header: key 'descr' appears twice"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", 1, 8, NULL, 0,
         ".npy header: expected ',' or '}' in the dict, found ''fortran_order': False, ...'"},
        {"{'descr: '<f4', 'fortran_order': False, 'shape': (2,)}", 1, 8, NULL, 0,
         ".npy header: unexpected key 'descr: ' (the keys are 'descr', 'fortran_order' and "
         "'shape')"},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (2,)}", 1, 8, NULL, 0,
         ".npy header: expected ':' after a key, found ''<f4', 'fortran_order': ...'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", 1, 8, NULL, 0,
         ".npy header: expected only spaces after the dict, found 'x'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", 1, 8, NULL, 0,
         ".npy header: expected ',' or '}' in the dict, found the end of the header"},
        {good, 1, 7, NULL, 0,
         "truncated: shape [2] of '<f4' needs 8 bytes of data, the file has 7"},
        {good, 2, 12, NULL, 0, "4 bytes follow the data (shape [2] of '<f4' is 8 bytes)"},
    };
    unsigned char data[16] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (cases[i].dict)
            write_npy(path, cases[i].major, cases[i].dict, false, data, cases[i].data);
        else
            td_write(path, cases[i].bytes, cases[i].n);
        nd_tensor *x = nd_scalar(1.0f);
        ck_assert_msg(nd_npy_load(path, &x, &err) == ND_ERR, "case %zu loaded", i);
        ck_assert_ptr_null(x);
        td_expect(&err, path, cases[i].message);
    }
    /* Every cut of a good file is refused; random bytes in its header are
     * refused or read, never read out of bounds. */
    const char *whole = td_path("whole.npy");
    ck_assert_int_eq(nd_npy_save(whole, nd_arange(0, 3, 1), &err), ND_OK);
    size_t n;
    unsigned char *b = td_read(whole, &n);
    for (size_t cut = 0; cut < n; cut++) {
        nd_tensor *x;
        td_write(path, b, cut);
        ck_assert_int_eq(nd_npy_load(path, &x, &err), ND_ERR);
        ck_assert(strncmp(err.message, path, strlen(path)) == 0);
    }
    uint32_t s = 11;
    for (int k = 0; k < 2000; k++) {
        unsigned char *m = malloc(n);
        memcpy(m, b, n);
        for (int j = 0; j < 3; j++) m[td_rand(&s) % 80] = (unsigned char)td_rand(&s);
        td_write(path, m, n);
        nd_tensor *x;
        if (nd_npy_load(path, &x, &err) == ND_OK) nd_free(x);
        else ck_assert(strncmp(err.message, path, strlen(path)) == 0);
        free(m);
    }
    free(b);
    /* What the file system refuses. */
    const char *none = td_path("none.npy");
    nd_tensor *x;
    ck_assert_int_eq(nd_npy_load(none, &x, &err), ND_ERR);
    char want[512];
    snprintf(want, sizeof want, "cannot open: %s", strerror(ENOENT));
    td_expect(&err, none, want);
    ck_assert_int_eq(nd_npy_load(td_dir(), &x, &err), ND_ERR);
    snprintf(want, sizeof want, "cannot read: %s", strerror(EISDIR));
    td_expect(&err, td_dir(), want);
    td_write(path, "\x93NUMPY", 6); /* err may be NULL */
    ck_assert_int_eq(nd_npy_load(path, &x, NULL), ND_ERR);
    EXPECT_FATAL(nd_npy_load(NULL, &x, &err), "nanodiff: npy_load: path is NULL");
    EXPECT_FATAL(nd_npy_load(path, NULL, &err), "nanodiff: npy_load: out is NULL");
    td_remove_dir();
}
END_TEST

TCase *tcase_npy(void) {
    TCase *tc = nd_test_case("npy");
    tcase_add_test(tc, test_npy_shapes);
    tcase_add_test(tc, test_npy_exact_bytes);
    tcase_add_test(tc, test_npy_failures);
    tcase_add_test(tc, test_npy_load_round_trip);
    tcase_add_test(tc, test_npy_load_by_hand);
    tcase_add_test(tc, test_npy_load_refused);
    return tc;
}
