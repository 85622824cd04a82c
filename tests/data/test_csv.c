/* CSV files of points: headers, comments, blank lines, spaces and CRLF;
 * one message per defect with its line and field; random damage that
 * must never crash. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"

static nd_tensor *load_ok(const char *text) {
    const char *path = td_path("p.csv");
    td_write(path, text, strlen(text));
    nd_tensor *t = NULL;
    nd_error err = {{0}};
    ck_assert_msg(nd_csv_load(path, &t, &err) == ND_OK, "%s", err.message);
    ck_assert_ptr_null(t->scope);
    return t;
}

static void expect_values(nd_tensor *t, int64_t n, int64_t d, const float *v) {
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[0], n);
    ck_assert_int_eq(t->shape[1], d);
    for (int64_t i = 0; i < n * d; i++)
        ck_assert_msg(nd_data(t)[i] == v[i], "value %lld is %g, expected %g", (long long)i,
                      nd_data(t)[i], v[i]);
    nd_free(t);
}

START_TEST(test_csv_files) {
    td_make_dir();
    expect_values(load_ok("1,2\n3,4\n"), 2, 2, (const float[]){1, 2, 3, 4});
    /* No newline at the end, one column. */
    expect_values(load_ok("0.5\n-1e-3"), 2, 1, (const float[]){0.5f, -1e-3f});
    /* A header, comments, blank lines, spaces, tabs, CRLF, exponents. */
    expect_values(load_ok("# two moons\r\n x , y ,label\r\n\r\n  \t\n1.5, -2 ,0\r\n"
                          "# a comment\n  # an indented one\n+3e2,\t4.25,1\n\n"),
                  2, 3, (const float[]){1.5f, -2, 0, 300, 4.25f, 1});
    /* Floats that round, and the extremes. */
    expect_values(load_ok("0.1,3.4028234e38,-1e-45\n"), 1, 3,
                  (const float[]){0.1f, 3.4028234e38f, -1e-45f});
    td_remove_dir();
}
END_TEST

START_TEST(test_csv_corrupt) {
    td_make_dir();
    const char *path = td_path("bad.csv");
    nd_tensor *t;
    nd_error err;
    char want[512];
#define CSV_ERROR(text, what)                                                    \
    do {                                                                         \
        td_write(path, (text), sizeof(text) - 1);                                \
        t = (nd_tensor *)&err;                                                   \
        memset(&err, 0, sizeof err);                                             \
        ck_assert_int_eq(nd_csv_load(path, &t, &err), ND_ERR);                   \
        td_expect(&err, path, (what));                                           \
        ck_assert_ptr_null(t);                                                   \
    } while (0)
    CSV_ERROR("", "no points: the file has no data lines");
    CSV_ERROR("# only\n\n   \n", "no points: the file has no data lines");
    CSV_ERROR("x,y\n", "no points: the file has a header and no data lines");
    CSV_ERROR("1,2\n3,4\n5,6\n7,abc\n", "line 4, field 2: 'abc' is not a number");
    CSV_ERROR("x,y\n1,2\n# c\n\n3,4,5\n", "line 5 has 3 fields; line 1, the first, has 2");
    CSV_ERROR("1,2\n3\n", "line 2 has 1 field; line 1, the first, has 2");
    CSV_ERROR("1,2\nx,y\n", "line 2, field 1: 'x' is not a number");
    CSV_ERROR("1,2\n3,\n", "line 2, field 2 is empty");
    CSV_ERROR("1,,2\n", "line 1, field 2 is empty");
    CSV_ERROR("x,1\n", "line 1, field 1: 'x' is not a number");
    CSV_ERROR("1,2\n3,inf\n", "line 2, field 2: 'inf' is not a finite number");
    CSV_ERROR("nan,2\n", "line 1, field 1: 'nan' is not a finite number");
    CSV_ERROR("1,2\n3,1e39\n", "line 2, field 2: '1e39' is beyond the float range");
    CSV_ERROR("1,2\n3,-1e400\n", "line 2, field 2: '-1e400' is beyond the float range");
    CSV_ERROR("1 2,3\n", "line 1, field 1: '1 2' is not a number");
    CSV_ERROR("1,2\n3,4;\n", "line 2, field 2: '4;' is not a number");
    CSV_ERROR("1,2\n3,\x01\xff\n", "line 2, field 2: '?\?' is not a number");
    CSV_ERROR("1,2\n3,4\0\n", "line 2, field 2: '4?' is not a number");
    CSV_ERROR("1,2\n3,4 # note\n", "line 2, field 2: '4 # note' is not a number");
    CSV_ERROR("1,12345678901234567890123456789012345678901234567890x\n",
              "line 1, field 2: '1234567890123456789012345678901234567890...' is not a "
              "number");
    const char *missing = td_path("missing.csv");
    ck_assert_int_eq(nd_csv_load(missing, &t, &err), ND_ERR);
    snprintf(want, sizeof want, "cannot open: %s", strerror(ENOENT));
    td_expect(&err, missing, want);
    EXPECT_FATAL(nd_csv_load(NULL, &t, NULL), "nanodiff: csv_load: path is NULL");
#undef CSV_ERROR
    td_remove_dir();
}
END_TEST

START_TEST(test_csv_fuzz) {
    td_make_dir();
    const char good[] = "# points\nx,y\n0.25,-1.5\n1e-2, 3\n\n-7,+8.5e1\n";
    size_t n = sizeof good - 1;
    char b[sizeof good];
    const char *path = td_path("f.csv");
    uint32_t s = 17;
    const char alphabet[] = "0123456789.,-+eE# \n\r\tx\0";
    for (int r = 0; r < 400; r++) {
        memcpy(b, good, n);
        size_t len = n;
        if (r % 2) len = td_rand(&s) % (n + 1);
        else b[td_rand(&s) % n] = alphabet[td_rand(&s) % (sizeof alphabet - 1)];
        td_write(path, b, len);
        nd_tensor *t = NULL;
        nd_error err = {{0}};
        int rc = nd_csv_load(path, &t, &err);
        ck_assert(rc == ND_OK || rc == ND_ERR);
        if (rc == ND_OK) {
            ck_assert_int_eq(t->ndim, 2);
            for (int64_t i = 0; i < nd_numel(t); i++) ck_assert(isfinite(nd_data(t)[i]));
            nd_free(t);
        } else {
            ck_assert(t == NULL && err.message[0]);
        }
    }
    td_remove_dir();
}
END_TEST

/* Regression (found by fuzz/csv.c): an empty file's end was computed as
 * file.data + 0 with file.data NULL, undefined behaviour (clang's
 * -fsanitize=undefined stops on it). Empty, and nothing but blanks. */
START_TEST(test_csv_empty_file) {
    td_make_dir();
    const char *path = td_path("empty.csv");
    const char *texts[] = {"", "\n", " \t\r\n\n"};
    for (int i = 0; i < 3; i++) {
        td_write(path, texts[i], strlen(texts[i]));
        nd_tensor *t = (nd_tensor *)&path;
        nd_error err = {{0}};
        ck_assert_int_eq(nd_csv_load(path, &t, &err), ND_ERR);
        td_expect(&err, path, "no points: the file has no data lines");
        ck_assert_ptr_null(t);
    }
    td_remove_dir();
}
END_TEST

TCase *tcase_csv(void) {
    TCase *tc = nd_test_case("csv");
    tcase_add_test(tc, test_csv_files);
    tcase_add_test(tc, test_csv_corrupt);
    tcase_add_test(tc, test_csv_fuzz);
    tcase_add_test(tc, test_csv_empty_file);
    return tc;
}
