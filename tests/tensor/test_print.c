/* Printing: the whole text nd_fprint writes, compared character for
 * character with the expected PyTorch-style output. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

/* nd_fprint into a temporary file, read back into buf. */
static const char *printed(const nd_tensor *t, char *buf, size_t size) {
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    nd_fprint(f, t);
    ck_assert_int_eq(fflush(f), 0);
    rewind(f);
    size_t n = fread(buf, 1, size - 1, f);
    ck_assert_msg(n < size - 1, "output longer than %zu bytes", size - 2);
    ck_assert_int_eq(ferror(f), 0);
    buf[n] = 0;
    fclose(f);
    return buf;
}

#define ASSERT_PRINTS(t, expected)                                             \
    do {                                                                       \
        char buf_[8192];                                                       \
        ck_assert_str_eq(printed((t), buf_, sizeof buf_), (expected));         \
    } while (0)

static nd_tensor *values(const float *v, const int64_t *shape, int ndim) {
    return nd_from_buffer(v, shape, ndim);
}

START_TEST(test_print_integers_2d) {
    nd_tensor *t = nd_view(nd_arange(0, 4, 1), ND_SHAPE(2, 2));
    ASSERT_PRINTS(t, "tensor([[0., 1.],\n"
                     "        [2., 3.]], shape=[2,2])\n");
}
END_TEST

START_TEST(test_print_integers_1d_and_zeros) {
    ASSERT_PRINTS(nd_arange(0, 5, 1), "tensor([0., 1., 2., 3., 4.], shape=[5])\n");
    ASSERT_PRINTS(nd_zeros(ND_SHAPE(3)), "tensor([0., 0., 0.], shape=[3])\n");
    /* Integers stay in integer form however wide their range is. */
    const float v[] = {1, 10000};
    ASSERT_PRINTS(values(v, ND_SHAPE(2)), "tensor([    1., 10000.], shape=[2])\n");
}
END_TEST

START_TEST(test_print_negative_alignment) {
    const float v[] = {-1, 20, 3, -400};
    ASSERT_PRINTS(values(v, ND_SHAPE(2, 2)), "tensor([[  -1.,   20.],\n"
                                             "        [   3., -400.]], shape=[2,2])\n");
    const float w[] = {-0.5f, 2.25f, -10.125f};
    ASSERT_PRINTS(values(w, ND_SHAPE(3)),
                  "tensor([ -0.5000,   2.2500, -10.1250], shape=[3])\n");
}
END_TEST

START_TEST(test_print_fractional) {
    const float v[] = {0.5f, -1.25f, 3.14159f};
    ASSERT_PRINTS(values(v, ND_SHAPE(3)), "tensor([ 0.5000, -1.2500,  3.1416], shape=[3])\n");
    const float w[] = {1.5f, 2.25f, 10.125f, -0.75f};
    ASSERT_PRINTS(values(w, ND_SHAPE(2, 2)), "tensor([[ 1.5000,  2.2500],\n"
                                             "        [10.1250, -0.7500]], shape=[2,2])\n");
    /* A zero among fractions takes the fixed format too. */
    const float z[] = {0.0f, 0.125f};
    ASSERT_PRINTS(values(z, ND_SHAPE(2)), "tensor([0.0000, 0.1250], shape=[2])\n");
}
END_TEST

START_TEST(test_print_scientific) {
    /* More than 1000x between the smallest and largest magnitude. */
    const float a[] = {0.5f, 1234.5f};
    ASSERT_PRINTS(values(a, ND_SHAPE(2)), "tensor([5.0000e-01, 1.2345e+03], shape=[2])\n");
    const float b[] = {1e-5f, 1.0f, 100.0f};
    ASSERT_PRINTS(values(b, ND_SHAPE(3)),
                  "tensor([1.0000e-05, 1.0000e+00, 1.0000e+02], shape=[3])\n");
    /* Tiny values, even when close to each other. */
    const float c[] = {1.5e-5f, -2.5e-5f};
    ASSERT_PRINTS(values(c, ND_SHAPE(2)), "tensor([ 1.5000e-05, -2.5000e-05], shape=[2])\n");
    /* Integers beyond 1e8. */
    const float d[] = {1e9f, 1.0f};
    ASSERT_PRINTS(values(d, ND_SHAPE(2)), "tensor([1.0000e+09, 1.0000e+00], shape=[2])\n");
    /* Just under 1000x stays fixed. */
    const float e[] = {0.5f, 499.75f};
    ASSERT_PRINTS(values(e, ND_SHAPE(2)), "tensor([  0.5000, 499.7500], shape=[2])\n");
}
END_TEST

START_TEST(test_print_nonfinite) {
    const float v[] = {NAN, INFINITY, -INFINITY, 1.0f, 2.5f};
    ASSERT_PRINTS(values(v, ND_SHAPE(5)),
                  "tensor([   nan,    inf,   -inf, 1.0000, 2.5000], shape=[5])\n");
    const float w[] = {1.0f, NAN, -INFINITY};
    ASSERT_PRINTS(values(w, ND_SHAPE(3)), "tensor([  1.,  nan, -inf], shape=[3])\n");
    const float x[] = {NAN, NAN};
    ASSERT_PRINTS(values(x, ND_SHAPE(2)), "tensor([nan, nan], shape=[2])\n");
    ASSERT_PRINTS(nd_scalar(-INFINITY), "tensor(-inf, shape=[])\n");
}
END_TEST

START_TEST(test_print_scalar) {
    ASSERT_PRINTS(nd_scalar(7.0f), "tensor(7., shape=[])\n");
    ASSERT_PRINTS(nd_scalar(3.5f), "tensor(3.5000, shape=[])\n");
    ASSERT_PRINTS(nd_scalar(-2.5e-7f), "tensor(-2.5000e-07, shape=[])\n");
    ASSERT_PRINTS(nd_scalar(NAN), "tensor(nan, shape=[])\n");
}
END_TEST

START_TEST(test_print_empty) {
    ASSERT_PRINTS(nd_zeros(ND_SHAPE(0)), "tensor([], shape=[0])\n");
    ASSERT_PRINTS(nd_zeros(ND_SHAPE(0, 3)), "tensor([], shape=[0,3])\n");
    nd_tensor *t = nd_transpose(nd_zeros(ND_SHAPE(0, 3)), 0, 1);
    ASSERT_PRINTS(t, "tensor([], shape=[3,0])\n");
}
END_TEST

START_TEST(test_print_noncontiguous) {
    nd_tensor *m = nd_view(nd_arange(0, 6, 1), ND_SHAPE(2, 3));
    ASSERT_PRINTS(nd_transpose(m, 0, 1), "tensor([[0., 3.],\n"
                                         "        [1., 4.],\n"
                                         "        [2., 5.]], shape=[3,2], strides=[1,3])\n");
    ASSERT_PRINTS(nd_slice(nd_arange(0, 10, 1), 0, 1, ND_END, 3),
                  "tensor([1., 4., 7.], shape=[3], strides=[3])\n");
    ASSERT_PRINTS(nd_expand(nd_arange(0, 3, 1), ND_SHAPE(2, 3)),
                  "tensor([[0., 1., 2.],\n"
                  "        [0., 1., 2.]], shape=[2,3], strides=[0,1])\n");
    /* A slice that is contiguous shows no strides. */
    ASSERT_PRINTS(nd_slice(m, 0, 1, 2, 1), "tensor([[3., 4., 5.]], shape=[1,3])\n");
}
END_TEST

START_TEST(test_print_3d) {
    nd_tensor *t = nd_view(nd_arange(0, 8, 1), ND_SHAPE(2, 2, 2));
    ASSERT_PRINTS(t, "tensor([[[0., 1.],\n"
                     "         [2., 3.]],\n"
                     "\n"
                     "        [[4., 5.],\n"
                     "         [6., 7.]]], shape=[2,2,2])\n");
}
END_TEST

START_TEST(test_print_summary_1d) {
    ASSERT_PRINTS(nd_arange(0, 2000, 1),
                  "tensor([   0.,    1.,    2., ..., 1997., 1998., 1999.], shape=[2000])\n");
    /* 1000 elements are still printed in full; 1001 are summarised. */
    char buf[8192];
    printed(nd_zeros(ND_SHAPE(1000)), buf, sizeof buf);
    ck_assert_ptr_null(strstr(buf, "..."));
    ASSERT_PRINTS(nd_zeros(ND_SHAPE(1001)),
                  "tensor([0., 0., 0., ..., 0., 0., 0.], shape=[1001])\n");
}
END_TEST

START_TEST(test_print_summary_2d) {
    nd_tensor *t = nd_view(nd_arange(0, 1600, 1), ND_SHAPE(40, 40));
    ASSERT_PRINTS(t, "tensor([[   0.,    1.,    2., ...,   37.,   38.,   39.],\n"
                     "        [  40.,   41.,   42., ...,   77.,   78.,   79.],\n"
                     "        [  80.,   81.,   82., ...,  117.,  118.,  119.],\n"
                     "        ...,\n"
                     "        [1480., 1481., 1482., ..., 1517., 1518., 1519.],\n"
                     "        [1520., 1521., 1522., ..., 1557., 1558., 1559.],\n"
                     "        [1560., 1561., 1562., ..., 1597., 1598., 1599.]], "
                     "shape=[40,40])\n");
    /* Short axes are printed in full even when the tensor is summarised. */
    nd_tensor *u = nd_view(nd_arange(0, 1002, 1), ND_SHAPE(2, 501));
    ASSERT_PRINTS(u, "tensor([[   0.,    1.,    2., ...,  498.,  499.,  500.],\n"
                     "        [ 501.,  502.,  503., ...,  999., 1000., 1001.]], "
                     "shape=[2,501])\n");
}
END_TEST

START_TEST(test_print_summary_3d) {
    nd_tensor *t = nd_view(nd_arange(0, 1001, 1), ND_SHAPE(1001, 1, 1));
    ASSERT_PRINTS(t, "tensor([[[   0.]],\n"
                     "\n"
                     "        [[   1.]],\n"
                     "\n"
                     "        [[   2.]],\n"
                     "\n"
                     "        ...,\n"
                     "\n"
                     "        [[ 998.]],\n"
                     "\n"
                     "        [[ 999.]],\n"
                     "\n"
                     "        [[1000.]]], shape=[1001,1,1])\n");
}
END_TEST

START_TEST(test_print_summary_uses_visible_values) {
    /* The format follows the printed elements only: a fraction hidden in
     * the middle does not switch the output to fixed point. */
    nd_tensor *t = nd_arange(0, 2000, 1);
    nd_set(t, (const int64_t[]){1000}, 0.5f);
    ASSERT_PRINTS(t, "tensor([   0.,    1.,    2., ..., 1997., 1998., 1999.], shape=[2000])\n");
}
END_TEST

START_TEST(test_print_wrap_1d) {
    /* 73 columns after "tensor(" hold 14 fields of 3 + 2 characters. */
    ASSERT_PRINTS(nd_arange(0, 30, 1),
                  "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n"
                  "        14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27.,\n"
                  "        28., 29.], shape=[30])\n");
    /* Exactly one full line does not wrap. */
    ASSERT_PRINTS(nd_arange(10, 24, 1),
                  "tensor([10., 11., 12., 13., 14., 15., 16., 17., 18., 19., 20., 21., 22., 23.],"
                  " shape=[14])\n");
    ASSERT_PRINTS(nd_arange(10, 25, 1),
                  "tensor([10., 11., 12., 13., 14., 15., 16., 17., 18., 19., 20., 21., 22., 23.,\n"
                  "        24.], shape=[15])\n");
}
END_TEST

START_TEST(test_print_wrap_rows) {
    /* Rows start one column further in: 72 columns, 9 fields of 6 + 2. */
    ASSERT_PRINTS(nd_full(ND_SHAPE(2, 10), 0.5f),
                  "tensor([[0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000,\n"
                  "         0.5000],\n"
                  "        [0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000,\n"
                  "         0.5000]], shape=[2,10])\n");
}
END_TEST

START_TEST(test_print_wrap_summarised) {
    /* Wide fields: 73 / (11 + 2) = 5 per line, "..." counting as one. */
    nd_tensor *t = nd_mul_scalar(nd_arange(1, 2001, 1), -1.5e6f);
    ASSERT_PRINTS(t, "tensor([-1.5000e+06, -3.0000e+06, -4.5000e+06, ..., -2.9970e+09,\n"
                     "        -2.9985e+09, -3.0000e+09], shape=[2000])\n");
}
END_TEST

START_TEST(test_print_stdout) {
    nd_tensor *t = nd_arange(0, 3, 1);
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fileno(f), STDOUT_FILENO), 0);
    nd_print(t);
    fflush(stdout);
    ck_assert_int_ge(dup2(saved, STDOUT_FILENO), 0);
    close(saved);
    rewind(f);
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    ck_assert_str_eq(buf, "tensor([0., 1., 2.], shape=[3])\n");
}
END_TEST

START_TEST(test_print_leaves_tensor_alone) {
    nd_tensor *t = nd_transpose(nd_view(nd_arange(0, 6, 1), ND_SHAPE(2, 3)), 0, 1);
    size_t live = nd_mem_live();
    char buf[512];
    printed(t, buf, sizeof buf);
    ck_assert_uint_eq(nd_mem_live(), live);
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->strides[0], 1);
    ck_assert_int_eq(t->strides[1], 3);
    ck_assert_float_eq(nd_get(t, (const int64_t[]){2, 1}), 5.0f);
}
END_TEST

TCase *tcase_print(void) {
    TCase *tc = nd_test_case("print");
    tcase_add_test(tc, test_print_integers_2d);
    tcase_add_test(tc, test_print_integers_1d_and_zeros);
    tcase_add_test(tc, test_print_negative_alignment);
    tcase_add_test(tc, test_print_fractional);
    tcase_add_test(tc, test_print_scientific);
    tcase_add_test(tc, test_print_nonfinite);
    tcase_add_test(tc, test_print_scalar);
    tcase_add_test(tc, test_print_empty);
    tcase_add_test(tc, test_print_noncontiguous);
    tcase_add_test(tc, test_print_3d);
    tcase_add_test(tc, test_print_summary_1d);
    tcase_add_test(tc, test_print_summary_2d);
    tcase_add_test(tc, test_print_summary_3d);
    tcase_add_test(tc, test_print_summary_uses_visible_values);
    tcase_add_test(tc, test_print_wrap_1d);
    tcase_add_test(tc, test_print_wrap_rows);
    tcase_add_test(tc, test_print_wrap_summarised);
    tcase_add_test(tc, test_print_stdout);
    tcase_add_test(tc, test_print_leaves_tensor_alone);
    return tc;
}
