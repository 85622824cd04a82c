/* Broadcasting and the elementwise ops. Results are compared with values
 * worked out by hand, or with the op's formula evaluated in double with
 * libm on inputs read by raw index arithmetic from their storage. */
#include <float.h>
#include <string.h>

#include "helpers.h"

#define I64(...) ((const int64_t[]){__VA_ARGS__})
#define F32(...) ((const float[]){__VA_ARGS__})

static nd_tensor *from(const float *values, const int64_t *shape, int ndim) {
    return nd_from_buffer(values, shape, ndim);
}

/* y has exactly this shape, is contiguous, and holds want[] (row-major):
 * exactly when rtol is 0, else to within rtol; NaN matches NaN. */
static void check_values(const nd_tensor *y, int ndim, const int64_t *shape,
                         const float *want, double rtol, int line) {
    ck_assert_msg(y->ndim == ndim, "line %d: ndim %d, expected %d", line,
                  y->ndim, ndim);
    for (int d = 0; d < ndim; d++)
        ck_assert_msg(y->shape[d] == shape[d],
                      "line %d: shape[%d] = %lld, expected %lld", line, d,
                      (long long)y->shape[d], (long long)shape[d]);
    ck_assert_msg(nd_is_contiguous(y), "line %d: result not contiguous", line);
    const float *p = nd_data(y);
    int64_t idx[ND_MAX_DIMS];
    for (int64_t i = 0, n = nd_numel(y); i < n; i++) {
        t_unravel(i, y->shape, y->ndim, idx);
        int64_t pos = 0;
        for (int d = 0; d < ndim; d++) pos += idx[d] * y->strides[d];
        float got = p[pos];
        bool ok = isnan(want[i]) ? isnan(got)
                  : rtol == 0   ? got == want[i]
                                : fabs((double)got - want[i]) <= rtol * fabs(want[i]);
        ck_assert_msg(ok, "line %d: element %lld is %.9g, expected %.9g", line,
                      (long long)i, (double)got, (double)want[i]);
    }
}
#define EXACT(y, ndim, shape, want)                                            \
    check_values((y), (ndim), (shape), (want), 0.0, __LINE__)
#define NEAR(y, ndim, shape, want)                                             \
    check_values((y), (ndim), (shape), (want), 1e-6, __LINE__)

/* ======================================================================
 * Broadcasting
 * ====================================================================== */

START_TEST(test_bcast_column_row) {
    nd_tensor *a = from(F32(1, 2, 3), ND_SHAPE(3, 1));
    nd_tensor *b = from(F32(10, 20, 30, 40), ND_SHAPE(1, 4));
    EXACT(nd_add(a, b), 2, I64(3, 4),
          F32(11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43));
    EXACT(nd_add(b, a), 2, I64(3, 4),
          F32(11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43));
    EXACT(nd_sub(b, a), 2, I64(3, 4),
          F32(9, 19, 29, 39, 8, 18, 28, 38, 7, 17, 27, 37));
    EXACT(nd_sub(a, b), 2, I64(3, 4),
          F32(-9, -19, -29, -39, -8, -18, -28, -38, -7, -17, -27, -37));
    EXACT(nd_mul(a, b), 2, I64(3, 4),
          F32(10, 20, 30, 40, 20, 40, 60, 80, 30, 60, 90, 120));
    EXACT(nd_div(b, a), 2, I64(3, 4),
          F32(10, 20, 30, 40, 5, 10, 15, 20, 10.0f / 3, 20.0f / 3, 10, 40.0f / 3));
    nd_tensor *c = from(F32(15, 2, 35, 1), ND_SHAPE(1, 4));
    EXACT(nd_maximum(a, c), 2, I64(3, 4), F32(15, 2, 35, 1, 15, 2, 35, 2, 15, 3, 35, 3));
    EXACT(nd_minimum(c, a), 2, I64(3, 4), F32(1, 1, 1, 1, 2, 2, 2, 1, 3, 2, 3, 1));
    EXACT(nd_lt(a, c), 2, I64(3, 4), F32(1, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0));
    EXACT(nd_eq(c, a), 2, I64(3, 4), F32(0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0));
}
END_TEST

START_TEST(test_bcast_3d_2d) {
    /* [2,1,3] * [4,1] -> [2,4,3]: y[i,j,k] = a[i,0,k] * b[j,0]. */
    const float av[] = {1, 2, 3, 4, 5, 6};
    const float bv[] = {1, -1, 2, 0.5f};
    nd_tensor *a = from(av, ND_SHAPE(2, 1, 3));
    nd_tensor *b = from(bv, ND_SHAPE(4, 1));
    float want[24], want_add[24];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 3; k++) {
                want[(i * 4 + j) * 3 + k] = av[i * 3 + k] * bv[j];
                want_add[(i * 4 + j) * 3 + k] = av[i * 3 + k] + bv[j];
            }
    EXACT(nd_mul(a, b), 3, I64(2, 4, 3), want);
    EXACT(nd_mul(b, a), 3, I64(2, 4, 3), want);
    EXACT(nd_add(b, a), 3, I64(2, 4, 3), want_add);
    /* Spot checks of the loop above. */
    ck_assert_float_eq(want[(1 * 4 + 1) * 3 + 2], -6.0f);
    ck_assert_float_eq(want[(0 * 4 + 3) * 3 + 1], 1.0f);
    ck_assert_float_eq(want_add[(1 * 4 + 2) * 3 + 0], 6.0f);
}
END_TEST

START_TEST(test_bcast_scalar) {
    nd_tensor *s = nd_scalar(2.0f);
    float xv[24], w_add[24], w_sub[24], w_rsub[24], w_div[24], w_rdiv[24];
    for (int i = 0; i < 24; i++) {
        xv[i] = (float)(i + 1);
        w_add[i] = (float)(i + 3);
        w_sub[i] = (float)(i - 1);
        w_rsub[i] = (float)(1 - i);
        w_div[i] = (float)(i + 1) / 2.0f;
        w_rdiv[i] = 2.0f / (float)(i + 1);
    }
    nd_tensor *x = from(xv, ND_SHAPE(2, 3, 4));
    EXACT(nd_add(s, x), 3, I64(2, 3, 4), w_add);
    EXACT(nd_add(x, s), 3, I64(2, 3, 4), w_add);
    EXACT(nd_sub(x, s), 3, I64(2, 3, 4), w_sub);
    EXACT(nd_sub(s, x), 3, I64(2, 3, 4), w_rsub);
    EXACT(nd_div(x, s), 3, I64(2, 3, 4), w_div);
    EXACT(nd_div(s, x), 3, I64(2, 3, 4), w_rdiv);

    /* Two 0-d tensors give a 0-d tensor; 0-d with [1] gives [1]. */
    nd_tensor *ss = nd_mul(s, nd_scalar(-3.5f));
    EXACT(ss, 0, NULL, F32(-7));
    ck_assert_float_eq(nd_item(ss), -7.0f);
    EXACT(nd_add(s, from(F32(5), ND_SHAPE(1))), 1, I64(1), F32(7));
    EXACT(nd_add(from(F32(5), ND_SHAPE(1, 1)), s), 2, I64(1, 1), F32(7));
}
END_TEST

START_TEST(test_bcast_one_and_five) {
    nd_tensor *one = from(F32(10), ND_SHAPE(1));
    nd_tensor *five = from(F32(1, 2, 3, 4, 5), ND_SHAPE(5));
    EXACT(nd_add(one, five), 1, I64(5), F32(11, 12, 13, 14, 15));
    EXACT(nd_add(five, one), 1, I64(5), F32(11, 12, 13, 14, 15));
    EXACT(nd_sub(one, five), 1, I64(5), F32(9, 8, 7, 6, 5));
    EXACT(nd_sub(five, one), 1, I64(5), F32(-9, -8, -7, -6, -5));
    EXACT(nd_add(one, one), 1, I64(1), F32(20));
    EXACT(nd_ge(five, from(F32(3), ND_SHAPE(1))), 1, I64(5), F32(0, 0, 1, 1, 1));
    /* A [5] against a [3,1] gives [3,5]. */
    nd_tensor *col = from(F32(0, 100, 200), ND_SHAPE(3, 1));
    EXACT(nd_add(five, col), 2, I64(3, 5),
          F32(1, 2, 3, 4, 5, 101, 102, 103, 104, 105, 201, 202, 203, 204, 205));
}
END_TEST

START_TEST(test_same_shape) {
    nd_tensor *a = from(F32(1, -2, 3, 4.5f, 0, -6), ND_SHAPE(2, 3));
    nd_tensor *b = from(F32(2, 2, -1, 0.5f, 7, -6), ND_SHAPE(2, 3));
    nd_tensor *y = nd_add(a, b);
    EXACT(y, 2, I64(2, 3), F32(3, 0, 2, 5, 7, -12));
    ck_assert_ptr_ne(y->storage, a->storage);
    ck_assert_ptr_ne(y->storage, b->storage);
    EXACT(nd_mul(a, b), 2, I64(2, 3), F32(2, -4, -3, 2.25f, 0, 36));
    EXACT(nd_div(a, b), 2, I64(2, 3), F32(0.5f, -1, -3, 9, 0, 1));
    EXACT(nd_maximum(a, b), 2, I64(2, 3), F32(2, 2, 3, 4.5f, 7, -6));
    EXACT(nd_minimum(a, b), 2, I64(2, 3), F32(1, -2, -1, 0.5f, 0, -6));
    EXACT(nd_ne(a, b), 2, I64(2, 3), F32(1, 1, 1, 1, 1, 0));
    EXACT(nd_le(a, b), 2, I64(2, 3), F32(1, 1, 0, 0, 1, 1));
    EXACT(nd_gt(a, b), 2, I64(2, 3), F32(0, 0, 1, 1, 0, 0));
    /* The inputs are left alone. */
    EXACT(a, 2, I64(2, 3), F32(1, -2, 3, 4.5f, 0, -6));
    EXACT(b, 2, I64(2, 3), F32(2, 2, -1, 0.5f, 7, -6));
    /* An op of a tensor with itself. */
    EXACT(nd_sub(a, a), 2, I64(2, 3), F32(0, 0, 0, 0, 0, 0));
    EXACT(nd_mul(a, a), 2, I64(2, 3), F32(1, 4, 9, 20.25f, 0, 36));
}
END_TEST

START_TEST(test_bcast_noncontiguous) {
    /* Transposed: t[i,j] = m[j,i] with m = [[0,1],[2,3],[4,5]]. */
    nd_tensor *m = from(F32(0, 1, 2, 3, 4, 5), ND_SHAPE(3, 2));
    nd_tensor *t = nd_transpose(m, 0, 1); /* [2,3]: 0 2 4 / 1 3 5 */
    /* Sliced with a step: r = v[0:9:3] = 10, 40, 70. */
    nd_tensor *v = from(F32(10, 20, 30, 40, 50, 60, 70, 80, 90), ND_SHAPE(9));
    nd_tensor *r = nd_slice(v, 0, 0, 9, 3);
    EXACT(nd_add(t, r), 2, I64(2, 3), F32(10, 42, 74, 11, 43, 75));
    EXACT(nd_sub(r, t), 2, I64(2, 3), F32(10, 38, 66, 9, 37, 65));

    /* A column taken with a step, against the transposed matrix. */
    nd_tensor *w = from(F32(1, 2, 3, 4, 5, 6, 7, 8), ND_SHAPE(4, 2));
    nd_tensor *wc = nd_slice(nd_slice(w, 0, 0, ND_END, 2), 1, 1, 2, 1); /* [2,1]: 2, 6 */
    EXACT(nd_mul(t, wc), 2, I64(2, 3), F32(0, 4, 8, 6, 18, 30));

    /* Expanded: e[i,j] = col[i]. */
    nd_tensor *col = from(F32(1, 2), ND_SHAPE(2, 1));
    nd_tensor *e = nd_expand(col, ND_SHAPE(2, 3));
    EXACT(nd_add(e, t), 2, I64(2, 3), F32(1, 3, 5, 3, 5, 7));
    EXACT(nd_maximum(e, t), 2, I64(2, 3), F32(1, 2, 4, 2, 3, 5));
    /* Expanded against expanded, into a larger shape. */
    nd_tensor *row = nd_expand(from(F32(10, 20, 30), ND_SHAPE(3)), ND_SHAPE(1, 3));
    EXACT(nd_add(e, nd_unsqueeze(row, 0)), 3, I64(1, 2, 3),
          F32(11, 21, 31, 12, 22, 32));

    /* A transposed 3-d tensor against a stepped slice of a matrix. */
    float xv[24], yv[12], want[24];
    for (int i = 0; i < 24; i++) xv[i] = (float)i;
    for (int i = 0; i < 12; i++) yv[i] = (float)(100 * i);
    nd_tensor *x = from(xv, ND_SHAPE(2, 3, 4));
    nd_tensor *xp = nd_permute(x, ND_AXES(2, 0, 1)); /* [4,2,3] */
    nd_tensor *y = from(yv, ND_SHAPE(4, 3));
    nd_tensor *ys = nd_slice(y, 0, 1, ND_END, 2); /* rows 1, 3: [2,3] */
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 3; k++)
                want[(i * 2 + j) * 3 + k] =
                    xv[j * 12 + k * 4 + i] + yv[(1 + 2 * j) * 3 + k];
    EXACT(nd_add(xp, ys), 3, I64(4, 2, 3), want);
    ck_assert_float_eq(want[(3 * 2 + 1) * 3 + 2], 23.0f + 1100.0f);
}
END_TEST

START_TEST(test_bcast_zero_size) {
    nd_tensor *z = nd_zeros(ND_SHAPE(0, 3));
    nd_tensor *r = from(F32(1, 2, 3), ND_SHAPE(3));
    nd_tensor *y = nd_add(z, r);
    ck_assert(y->ndim == 2 && y->shape[0] == 0 && y->shape[1] == 3);
    nd_tensor *y2 = nd_mul(from(F32(1), ND_SHAPE(1, 1)), z);
    ck_assert(y2->ndim == 2 && y2->shape[0] == 0 && y2->shape[1] == 3);
    nd_tensor *y3 = nd_where(z, r, nd_scalar(0.0f));
    ck_assert(y3->ndim == 2 && y3->shape[0] == 0 && y3->shape[1] == 3);
    EXPECT_FATAL(nd_add(z, nd_zeros(ND_SHAPE(2, 3))),
                 "nanodiff: add: shapes [0,3] and [2,3] do not broadcast");
}
END_TEST

START_TEST(test_bcast_errors) {
    nd_tensor *a23 = nd_zeros(ND_SHAPE(2, 3));
    nd_tensor *a43 = nd_zeros(ND_SHAPE(4, 3));
    nd_tensor *a3 = nd_zeros(ND_SHAPE(3));
    nd_tensor *a4 = nd_zeros(ND_SHAPE(4));
    nd_tensor *a2 = nd_zeros(ND_SHAPE(2));
    nd_tensor *a41 = nd_zeros(ND_SHAPE(4, 1));
    nd_tensor *a523 = nd_zeros(ND_SHAPE(5, 2, 3));
    nd_tensor *a33 = nd_zeros(ND_SHAPE(3, 3));

    EXPECT_FATAL(nd_add(a23, a43),
                 "nanodiff: add: shapes [2,3] and [4,3] do not broadcast");
    EXPECT_FATAL(nd_add(a43, a23),
                 "nanodiff: add: shapes [4,3] and [2,3] do not broadcast");
    EXPECT_FATAL(nd_sub(a3, a4),
                 "nanodiff: sub: shapes [3] and [4] do not broadcast");
    EXPECT_FATAL(nd_mul(a523, a41),
                 "nanodiff: mul: shapes [5,2,3] and [4,1] do not broadcast");
    EXPECT_FATAL(nd_div(a23, a2),
                 "nanodiff: div: shapes [2,3] and [2] do not broadcast");
    EXPECT_FATAL(nd_maximum(a2, a523),
                 "nanodiff: maximum: shapes [2] and [5,2,3] do not broadcast");
    EXPECT_FATAL(nd_minimum(a43, a523),
                 "nanodiff: minimum: shapes [4,3] and [5,2,3] do not broadcast");
    EXPECT_FATAL(nd_eq(a23, a4), "nanodiff: eq: shapes [2,3] and [4] do not broadcast");
    EXPECT_FATAL(nd_ne(a23, a4), "nanodiff: ne: shapes [2,3] and [4] do not broadcast");
    EXPECT_FATAL(nd_lt(a23, a4), "nanodiff: lt: shapes [2,3] and [4] do not broadcast");
    EXPECT_FATAL(nd_le(a23, a4), "nanodiff: le: shapes [2,3] and [4] do not broadcast");
    EXPECT_FATAL(nd_gt(a23, a4), "nanodiff: gt: shapes [2,3] and [4] do not broadcast");
    EXPECT_FATAL(nd_ge(a23, a4), "nanodiff: ge: shapes [2,3] and [4] do not broadcast");
    /* The shapes as given, not as broadcast or as stored. */
    nd_tensor *t = nd_transpose(a23, 0, 1);
    EXPECT_FATAL(nd_add(a23, t),
                 "nanodiff: add: shapes [2,3] and [3,2] do not broadcast");
    /* where: the two values, and the condition against them. */
    EXPECT_FATAL(nd_where(a23, a3, a4),
                 "nanodiff: where: shapes [3] and [4] do not broadcast");
    EXPECT_FATAL(nd_where(a23, a33, a33),
                 "nanodiff: where: shapes [2,3] and [3,3] do not broadcast");
    EXPECT_FATAL(nd_where(a4, a3, a3),
                 "nanodiff: where: shapes [4] and [3] do not broadcast");
}
END_TEST

START_TEST(test_where_broadcast) {
    nd_tensor *cond = from(F32(1, 0, 2), ND_SHAPE(3, 1));
    nd_tensor *a = from(F32(1, 2, 3, 4), ND_SHAPE(1, 4));
    nd_tensor *b = nd_scalar(-1.0f);
    EXACT(nd_where(cond, a, b), 2, I64(3, 4),
          F32(1, 2, 3, 4, -1, -1, -1, -1, 1, 2, 3, 4));
    EXACT(nd_where(cond, b, a), 2, I64(3, 4),
          F32(-1, -1, -1, -1, 1, 2, 3, 4, -1, -1, -1, -1));
    /* A 0-d condition picks a whole operand. */
    nd_tensor *c5 = from(F32(5, 6, 7), ND_SHAPE(3));
    EXACT(nd_where(nd_scalar(0.0f), a, nd_unsqueeze(c5, 1)), 2, I64(3, 4),
          F32(5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7));
    /* The condition alone sets the shape. */
    nd_tensor *cc = from(F32(0, 1, 0, 1, 1, 0), ND_SHAPE(2, 1, 3));
    EXACT(nd_where(cc, nd_scalar(9.0f), nd_scalar(8.0f)), 3, I64(2, 1, 3),
          F32(8, 9, 8, 9, 9, 8));
}
END_TEST

START_TEST(test_copy_broadcast) {
    /* A row broadcast into every other column of a matrix. */
    nd_tensor *dst = nd_zeros(ND_SHAPE(3, 4));
    nd_tensor *cols = nd_slice(dst, 1, 1, 4, 2); /* columns 1 and 3 */
    nd_copy_(cols, from(F32(7, 8), ND_SHAPE(2)));
    EXACT(dst, 2, I64(3, 4), F32(0, 7, 0, 8, 0, 7, 0, 8, 0, 7, 0, 8));

    /* A column into a transposed view. */
    nd_tensor *tv = nd_transpose(dst, 0, 1); /* [4,3] */
    nd_copy_(tv, from(F32(1, 2, 3, 4), ND_SHAPE(4, 1)));
    EXACT(dst, 2, I64(3, 4), F32(1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4));

    /* A 0-d value into a stepped slice of rows. */
    nd_tensor *rows = nd_slice(dst, 0, 0, ND_END, 2);
    nd_copy_(rows, nd_scalar(-1.0f));
    EXACT(dst, 2, I64(3, 4), F32(-1, -1, -1, -1, 1, 2, 3, 4, -1, -1, -1, -1));

    /* A transposed source into a strided destination. */
    nd_tensor *src = nd_transpose(from(F32(10, 20, 30, 40, 50, 60), ND_SHAPE(2, 3)), 0, 1);
    nd_tensor *block = nd_slice(nd_slice(dst, 0, 0, 3, 1), 1, 0, 4, 2); /* [3,2] */
    nd_copy_(block, src);
    EXACT(dst, 2, I64(3, 4), F32(10, -1, 40, -1, 20, 2, 50, 4, 30, -1, 60, -1));

    /* Into a fresh [2,3,4] from a [3,1]. */
    nd_tensor *big = nd_zeros(ND_SHAPE(2, 3, 4));
    nd_copy_(big, from(F32(1, 2, 3), ND_SHAPE(3, 1)));
    float want[24];
    for (int i = 0; i < 24; i++) want[i] = (float)((i / 4) % 3 + 1);
    EXACT(big, 3, I64(2, 3, 4), want);

    /* Size-1 axes of stride 0 are fine to write. */
    nd_tensor *s = nd_scalar(0.0f);
    nd_tensor *se = nd_expand(s, ND_SHAPE(1, 1));
    nd_copy_(se, from(F32(3), ND_SHAPE(1)));
    ck_assert_float_eq(nd_item(s), 3.0f);
}
END_TEST

START_TEST(test_copy_errors) {
    nd_tensor *base = from(F32(1, 2, 3), ND_SHAPE(3, 1));
    nd_tensor *e = nd_expand(base, ND_SHAPE(3, 4));
    EXPECT_FATAL(nd_copy_(e, nd_zeros(ND_SHAPE(3, 4))),
                 "nanodiff: copy_: destination is a broadcast view (axis 1 has "
                 "stride 0)");
    nd_tensor *e0 = nd_expand(base, ND_SHAPE(2, 3, 1));
    EXPECT_FATAL(nd_copy_(e0, nd_scalar(5.0f)),
                 "nanodiff: copy_: destination is a broadcast view (axis 0 has "
                 "stride 0)");
    EXACT(base, 2, I64(3, 1), F32(1, 2, 3));

    nd_tensor *d3 = nd_zeros(ND_SHAPE(3));
    EXPECT_FATAL(nd_copy_(d3, nd_zeros(ND_SHAPE(2, 3))),
                 "nanodiff: copy_: source of shape [2,3] does not broadcast to "
                 "destination [3]");
    EXPECT_FATAL(nd_copy_(nd_zeros(ND_SHAPE(2, 1)), nd_zeros(ND_SHAPE(2, 3))),
                 "nanodiff: copy_: source of shape [2,3] does not broadcast to "
                 "destination [2,1]");
    EXPECT_FATAL(nd_copy_(d3, nd_zeros(ND_SHAPE(4))),
                 "nanodiff: copy_: shapes [3] and [4] do not broadcast");
}
END_TEST

START_TEST(test_add_in_place) {
    /* dst += src with src broadcast; dst may be a strided view */
    nd_tensor *base = nd_zeros(ND_SHAPE(3, 4));
    nd_tensor *dst = nd_slice(base, 1, 0, 4, 2); /* columns 0 and 2 */
    nd_tensor *row = nd_from_buffer((const float[]){1, 10}, ND_SHAPE(2));
    nd_add_(dst, row);
    nd_add_(dst, row);
    const float want[12] = {2, 0, 20, 0, 2, 0, 20, 0, 2, 0, 20, 0};
    for (int i = 0; i < 12; i++) ck_assert(nd_data(base)[i] == want[i]);
    EXPECT_FATAL(nd_add_(row, dst),
                 "nanodiff: add_: source of shape [3,2] does not broadcast to destination [2]");
    nd_tensor *bcast = nd_expand(nd_zeros(ND_SHAPE(1)), ND_SHAPE(3));
    EXPECT_FATAL(nd_add_(bcast, row), "nanodiff: add_: shapes [3] and [2] do not broadcast");
    EXPECT_FATAL(nd_add_(bcast, nd_ones(ND_SHAPE(3))),
                 "nanodiff: add_: destination is a broadcast view (axis 0 has stride 0)");
}
END_TEST

TCase *tcase_broadcast(void) {
    TCase *tc = nd_test_case("broadcast");
    tcase_add_test(tc, test_add_in_place);
    tcase_add_test(tc, test_bcast_column_row);
    tcase_add_test(tc, test_bcast_3d_2d);
    tcase_add_test(tc, test_bcast_scalar);
    tcase_add_test(tc, test_bcast_one_and_five);
    tcase_add_test(tc, test_same_shape);
    tcase_add_test(tc, test_bcast_noncontiguous);
    tcase_add_test(tc, test_bcast_zero_size);
    tcase_add_test(tc, test_bcast_errors);
    tcase_add_test(tc, test_where_broadcast);
    tcase_add_test(tc, test_copy_broadcast);
    tcase_add_test(tc, test_copy_errors);
    return tc;
}

/* ======================================================================
 * Elementwise ops against libm in double
 * ====================================================================== */

/* A few float ulps. */
#define RTOL 1e-6

/* A [5,6] view with strides (2,10) and offset 1 of a random [6,10] base:
 * x[i,j] = base[j, 1 + 2i]. */
#define SR 5
#define SC 6
static nd_tensor *strided_input(uint64_t seed, float lo, float hi,
                                nd_tensor **base) {
    *base = t_uniform(seed, ND_SHAPE(6, 10), lo, hi);
    nd_tensor *t = nd_transpose(*base, 0, 1);
    nd_tensor *x = nd_slice(t, 0, 1, ND_END, 2);
    nd_free(t);
    return x;
}
static float strided_at(const nd_tensor *base, int i, int j) {
    return nd_data(base)[j * 10 + 1 + 2 * i];
}

/* A second [5,6] layout: strides (12,2) over a random [5,12] base:
 * x[i,j] = base[i, 2j]. Where (i + j) % 3 == 0 the value is copied from
 * other (a strided_input base), so that comparisons see ties. */
static nd_tensor *strided_input2(uint64_t seed, float lo, float hi,
                                 const nd_tensor *other, nd_tensor **base) {
    *base = t_uniform(seed, ND_SHAPE(5, 12), lo, hi);
    float *p = nd_data(*base);
    for (int i = 0; i < SR; i++)
        for (int j = 0; j < SC; j++)
            if ((i + j) % 3 == 0) p[i * 12 + 2 * j] = strided_at(other, i, j);
    return nd_slice(*base, 1, 0, ND_END, 2);
}
static float strided2_at(const nd_tensor *base, int i, int j) {
    return nd_data(base)[i * 12 + 2 * j];
}

/* y is a fresh contiguous [5,6] tensor; its element (i,j), read through
 * its strides. */
static void check_out_layout(const nd_tensor *y, const nd_tensor *x,
                             const char *op) {
    ck_assert_msg(y->ndim == 2 && y->shape[0] == SR && y->shape[1] == SC,
                  "%s: wrong result shape", op);
    ck_assert_msg(nd_is_contiguous(y), "%s: result not contiguous", op);
    ck_assert_msg(y->storage != x->storage, "%s: result aliases its input", op);
}
static float out_at(const nd_tensor *y, int i, int j) {
    return nd_data(y)[i * y->strides[0] + j * y->strides[1]];
}

static bool close_to(double got, double want, double rtol, double atol) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= rtol * fabs(want) + atol;
}

typedef nd_tensor *(*binary_fn)(const nd_tensor *, const nd_tensor *);
typedef nd_tensor *(*unary_fn)(const nd_tensor *);

static double r_add(double a, double b) { return a + b; }
static double r_sub(double a, double b) { return a - b; }
static double r_mul(double a, double b) { return a * b; }
static double r_div(double a, double b) { return a / b; }
static double r_max(double a, double b) { return a > b ? a : b; }
static double r_min(double a, double b) { return a < b ? a : b; }
static double r_eq(double a, double b) { return a == b; }
static double r_ne(double a, double b) { return a != b; }
static double r_lt(double a, double b) { return a < b; }
static double r_le(double a, double b) { return a <= b; }
static double r_gt(double a, double b) { return a > b; }
static double r_ge(double a, double b) { return a >= b; }

static const struct {
    const char *name;
    binary_fn fn;
    double (*ref)(double, double);
    bool exact; /* comparisons: exactly 0 or 1 */
} binary_ops[] = {
    {"add", nd_add, r_add, false},          {"sub", nd_sub, r_sub, false},
    {"mul", nd_mul, r_mul, false},          {"div", nd_div, r_div, false},
    {"maximum", nd_maximum, r_max, true},   {"minimum", nd_minimum, r_min, true},
    {"eq", nd_eq, r_eq, true},              {"ne", nd_ne, r_ne, true},
    {"lt", nd_lt, r_lt, true},              {"le", nd_le, r_le, true},
    {"gt", nd_gt, r_gt, true},              {"ge", nd_ge, r_ge, true},
};
#define N_BINARY (int)(sizeof binary_ops / sizeof binary_ops[0])

static void check_binary_value(int op, float got, double want, int i, int j,
                               const char *form) {
    if (binary_ops[op].exact)
        ck_assert_msg(got == (float)want && !signbit(got) == !signbit((float)want),
                      "%s (%s) at (%d,%d): %.9g, expected %.9g",
                      binary_ops[op].name, form, i, j, (double)got, want);
    else
        ck_assert_msg(close_to(got, want, RTOL, 0),
                      "%s (%s) at (%d,%d): %.9g, expected %.9g",
                      binary_ops[op].name, form, i, j, (double)got, want);
}

START_TEST(test_binary_strided) {
    nd_tensor *abase, *bbase;
    nd_tensor *a = strided_input(11, -2.0f, 2.0f, &abase);
    nd_tensor *b = strided_input2(12, -2.0f, 2.0f, abase, &bbase);
    ck_assert(!nd_is_contiguous(a) && !nd_is_contiguous(b));
    /* A row [6] with stride 3 and a column [5,1] with stride 4. */
    nd_tensor *rbase = t_uniform(13, ND_SHAPE(18), 0.25f, 2.0f);
    nd_tensor *row = nd_slice(rbase, 0, 0, ND_END, 3);
    nd_tensor *cbase = t_uniform(14, ND_SHAPE(5, 4), -1.0f, 1.0f);
    nd_tensor *col = nd_slice(cbase, 1, 2, 3, 1);

    for (int op = 0; op < N_BINARY; op++) {
        nd_tensor *y = binary_ops[op].fn(a, b);
        nd_tensor *yr = binary_ops[op].fn(row, a);
        nd_tensor *yc = binary_ops[op].fn(a, col);
        check_out_layout(y, a, binary_ops[op].name);
        check_out_layout(yr, a, binary_ops[op].name);
        check_out_layout(yc, a, binary_ops[op].name);
        for (int i = 0; i < SR; i++)
            for (int j = 0; j < SC; j++) {
                double av = strided_at(abase, i, j);
                double bv = strided2_at(bbase, i, j);
                double rv = nd_data(rbase)[3 * j];
                double cv = nd_data(cbase)[4 * i + 2];
                check_binary_value(op, out_at(y, i, j), binary_ops[op].ref(av, bv),
                                   i, j, "strided");
                check_binary_value(op, out_at(yr, i, j), binary_ops[op].ref(rv, av),
                                   i, j, "row");
                check_binary_value(op, out_at(yc, i, j), binary_ops[op].ref(av, cv),
                                   i, j, "column");
            }
        nd_free(y);
        nd_free(yr);
        nd_free(yc);
    }
    /* The tie pattern did produce ties. */
    ck_assert_float_eq(strided_at(abase, 1, 2), strided2_at(bbase, 1, 2));
    ck_assert_float_ne(strided_at(abase, 1, 1), strided2_at(bbase, 1, 1));
}
END_TEST

START_TEST(test_comparisons_exact) {
    const float inf = INFINITY, nan = NAN;
    nd_tensor *a = from(F32(1, 2, 3, nan, nan, 0, -inf, inf, -1e-30f), ND_SHAPE(9));
    nd_tensor *b = from(F32(1, 3, 2, 1, nan, -0.0f, -inf, 1, 0), ND_SHAPE(9));
    EXACT(nd_eq(a, b), 1, I64(9), F32(1, 0, 0, 0, 0, 1, 1, 0, 0));
    EXACT(nd_ne(a, b), 1, I64(9), F32(0, 1, 1, 1, 1, 0, 0, 1, 1));
    EXACT(nd_lt(a, b), 1, I64(9), F32(0, 1, 0, 0, 0, 0, 0, 0, 1));
    EXACT(nd_le(a, b), 1, I64(9), F32(1, 1, 0, 0, 0, 1, 1, 0, 1));
    EXACT(nd_gt(a, b), 1, I64(9), F32(0, 0, 1, 0, 0, 0, 0, 1, 0));
    EXACT(nd_ge(a, b), 1, I64(9), F32(1, 0, 1, 0, 0, 1, 1, 1, 0));
    /* NaN on the left too. */
    EXACT(nd_lt(b, a), 1, I64(9), F32(0, 0, 1, 0, 0, 0, 0, 1, 0));
    /* The results are +0 or +1, never -0 or other truthy values. */
    nd_tensor *y = nd_ne(a, b);
    for (int i = 0; i < 9; i++) ck_assert(!signbit(nd_data(y)[i]));
}
END_TEST

static const float scalar_params[] = {1.75f, -0.3f, 2.5f, -3.25f, 0.7f};

START_TEST(test_scalar_ops) {
    nd_tensor *base;
    nd_tensor *x = strided_input(21, -3.0f, 3.0f, &base);
    for (int k = 0; k < 5; k++) {
        float s = scalar_params[k];
        nd_tensor *ys[5] = {nd_add_scalar(x, s), nd_sub_scalar(x, s),
                            nd_rsub_scalar(x, s), nd_mul_scalar(x, s),
                            nd_div_scalar(x, s)};
        static const char *names[5] = {"add_scalar", "sub_scalar", "rsub_scalar",
                                       "mul_scalar", "div_scalar"};
        for (int f = 0; f < 5; f++) {
            check_out_layout(ys[f], x, names[f]);
            for (int i = 0; i < SR; i++)
                for (int j = 0; j < SC; j++) {
                    double v = strided_at(base, i, j), sd = s, want;
                    switch (f) {
                    case 0: want = v + sd; break;
                    case 1: want = v - sd; break;
                    case 2: want = sd - v; break;
                    case 3: want = v * sd; break;
                    default: want = v / sd; break;
                    }
                    float got = out_at(ys[f], i, j);
                    ck_assert_msg(close_to(got, want, RTOL, 0),
                                  "%s(x, %g) at (%d,%d): %.9g, expected %.9g",
                                  names[f], (double)s, i, j, (double)got, want);
                }
            nd_free(ys[f]);
        }
    }
    /* Hand-computed. */
    nd_tensor *h = from(F32(1, -2, 4), ND_SHAPE(3));
    EXACT(nd_add_scalar(h, 0.5f), 1, I64(3), F32(1.5f, -1.5f, 4.5f));
    EXACT(nd_sub_scalar(h, 0.5f), 1, I64(3), F32(0.5f, -2.5f, 3.5f));
    EXACT(nd_rsub_scalar(h, 0.5f), 1, I64(3), F32(-0.5f, 2.5f, -3.5f));
    EXACT(nd_mul_scalar(h, -2.0f), 1, I64(3), F32(-2, 4, -8));
    EXACT(nd_div_scalar(h, 4.0f), 1, I64(3), F32(0.25f, -0.5f, 1));
    EXACT(nd_add_scalar(nd_scalar(1.0f), 2.0f), 0, NULL, F32(3));
}
END_TEST

START_TEST(test_pow_scalar) {
    static const float int_powers[] = {0, 1, 2, 3, -1, -2};
    static const float real_powers[] = {0.5f, -1.5f, 2.5f, 1.0f / 3.0f};
    nd_tensor *nbase, *pbase;
    nd_tensor *xn = strided_input(31, -2.0f, 2.0f, &nbase); /* any sign */
    nd_tensor *xp = strided_input(32, 0.1f, 3.0f, &pbase);  /* positive */
    for (int k = 0; k < 10; k++) {
        bool integral = k < 6;
        float p = integral ? int_powers[k] : real_powers[k - 6];
        const nd_tensor *x = integral ? xn : xp;
        const nd_tensor *base = integral ? nbase : pbase;
        nd_tensor *y = nd_pow_scalar(x, p);
        check_out_layout(y, x, "pow_scalar");
        for (int i = 0; i < SR; i++)
            for (int j = 0; j < SC; j++) {
                double v = strided_at(base, i, j);
                double want = pow(v, (double)p);
                float got = out_at(y, i, j);
                ck_assert_msg(close_to(got, want, RTOL, 0),
                              "pow_scalar(%.9g, %g) = %.9g, expected %.9g", v,
                              (double)p, (double)got, want);
            }
        nd_free(y);
    }
    NEAR(nd_pow_scalar(from(F32(-2, 3, 0.5f), ND_SHAPE(3)), 3.0f), 1, I64(3),
          F32(-8, 27, 0.125f));
    NEAR(nd_pow_scalar(from(F32(4, 9, 0.25f), ND_SHAPE(3)), 0.5f), 1, I64(3),
          F32(2, 3, 0.5f));
    EXACT(nd_pow_scalar(from(F32(-3, 0, 5), ND_SHAPE(3)), 2.0f), 1, I64(3),
          F32(9, 0, 25));
    EXACT(nd_pow_scalar(from(F32(-3, 0, 5), ND_SHAPE(3)), 0.0f), 1, I64(3),
          F32(1, 1, 1));
}
END_TEST

START_TEST(test_clamp) {
    nd_tensor *base;
    nd_tensor *x = strided_input(41, -2.0f, 2.0f, &base);
    static const float bounds[][2] = {{-0.5f, 0.75f}, {0.25f, 0.25f}, {-5, 5}, {1, 3}};
    for (int k = 0; k < 4; k++) {
        float lo = bounds[k][0], hi = bounds[k][1];
        nd_tensor *y = nd_clamp(x, lo, hi);
        check_out_layout(y, x, "clamp");
        for (int i = 0; i < SR; i++)
            for (int j = 0; j < SC; j++) {
                float v = strided_at(base, i, j);
                float want = v < lo ? lo : (v > hi ? hi : v);
                ck_assert_msg(out_at(y, i, j) == want,
                              "clamp(%.9g, %g, %g) = %.9g", (double)v, (double)lo,
                              (double)hi, (double)out_at(y, i, j));
            }
        nd_free(y);
    }
    EXACT(nd_clamp(from(F32(-3, -1, 0, 1, 3), ND_SHAPE(5)), -1, 2), 1, I64(5),
          F32(-1, -1, 0, 1, 2));
    EXPECT_FATAL(nd_clamp(x, 2.0f, 1.0f), "nanodiff: clamp: lo 2 must not exceed hi 1");
}
END_TEST

static double r_neg(double x) { return -x; }
static double r_rsqrt(double x) { return 1.0 / sqrt(x); }
static double r_square(double x) { return x * x; }
static double r_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double r_silu(double x) { return x / (1.0 + exp(-x)); }
static double r_gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static double r_relu(double x) { return x > 0 ? x : 0.0; }

static const struct {
    const char *name;
    unary_fn fn;
    double (*ref)(double);
    float lo, hi;
    /* absolute slack per unit of |x|: the erf form of gelu cancels in
     * 1 + erf(x / sqrt 2) for negative x, where float erf is only good to
     * about an ulp of 1 */
    double xtol;
} unary_ops[] = {
    {"neg", nd_neg, r_neg, -3, 3, 0},
    {"exp", nd_exp, exp, -5, 5, 0},
    {"log", nd_log, log, 0.05f, 10, 0},
    {"sqrt", nd_sqrt, sqrt, 0, 9, 0},
    {"rsqrt", nd_rsqrt, r_rsqrt, 0.01f, 9, 0},
    {"square", nd_square, r_square, -3, 3, 0},
    {"abs", nd_abs, fabs, -3, 3, 0},
    {"sin", nd_sin, sin, -6, 6, 0},
    {"cos", nd_cos, cos, -6, 6, 0},
    {"erf", nd_erf, erf, -3, 3, 0},
    {"tanh", nd_tanh, tanh, -4, 4, 0},
    {"sigmoid", nd_sigmoid, r_sigmoid, -8, 8, 0},
    {"silu", nd_silu, r_silu, -8, 8, 0},
    {"gelu", nd_gelu, r_gelu, -4, 4, 1.5 * FLT_EPSILON},
    {"relu", nd_relu, r_relu, -3, 3, 0},
};
#define N_UNARY (int)(sizeof unary_ops / sizeof unary_ops[0])

START_TEST(test_unary_strided) {
    for (int op = 0; op < N_UNARY; op++) {
        nd_tensor *base;
        nd_tensor *x = strided_input(100 + (uint64_t)op, unary_ops[op].lo,
                                     unary_ops[op].hi, &base);
        float before[60];
        memcpy(before, nd_data(base), sizeof before);
        nd_tensor *y = unary_ops[op].fn(x);
        check_out_layout(y, x, unary_ops[op].name);
        for (int i = 0; i < SR; i++)
            for (int j = 0; j < SC; j++) {
                double v = strided_at(base, i, j);
                double want = unary_ops[op].ref(v);
                float got = out_at(y, i, j);
                ck_assert_msg(close_to(got, want, RTOL, unary_ops[op].xtol * fabs(v)),
                              "%s(%.9g) = %.9g, expected %.9g", unary_ops[op].name,
                              v, (double)got, want);
            }
        ck_assert_msg(memcmp(before, nd_data(base), sizeof before) == 0,
                      "%s changed its input", unary_ops[op].name);
        nd_free(y);
        nd_free(x);
        nd_free(base);
    }
}
END_TEST

START_TEST(test_unary_hand_values) {
    nd_tensor *x = from(F32(-2, -0.5f, 0, 0.5f, 2), ND_SHAPE(5));
    EXACT(nd_neg(x), 1, I64(5), F32(2, 0.5f, -0.0f, -0.5f, -2));
    EXACT(nd_abs(x), 1, I64(5), F32(2, 0.5f, 0, 0.5f, 2));
    EXACT(nd_square(x), 1, I64(5), F32(4, 0.25f, 0, 0.25f, 4));
    EXACT(nd_relu(x), 1, I64(5), F32(0, 0, 0, 0.5f, 2));
    EXACT(nd_sqrt(from(F32(0, 0.25f, 4, 16), ND_SHAPE(4))), 1, I64(4),
          F32(0, 0.5f, 2, 4));
    EXACT(nd_rsqrt(from(F32(0.25f, 4, 16), ND_SHAPE(3))), 1, I64(3),
          F32(2, 0.5f, 0.25f));
    nd_tensor *z = nd_scalar(0.0f);
    ck_assert_float_eq(nd_item(nd_exp(z)), 1.0f);
    ck_assert_float_eq(nd_item(nd_sigmoid(z)), 0.5f);
    ck_assert_float_eq(nd_item(nd_silu(z)), 0.0f);
    ck_assert_float_eq(nd_item(nd_gelu(z)), 0.0f);
    ck_assert_float_eq(nd_item(nd_tanh(z)), 0.0f);
    ck_assert_float_eq(nd_item(nd_cos(z)), 1.0f);
    ck_assert_float_eq(nd_item(nd_log(nd_scalar(1.0f))), 0.0f);
    ck_assert_float_eq(nd_item(nd_log(nd_scalar(0.0f))), -INFINITY);
    ck_assert(isnan(nd_item(nd_log(nd_scalar(-1.0f)))));
    ck_assert(isnan(nd_item(nd_sqrt(nd_scalar(-1.0f)))));
    ck_assert_float_eq(nd_item(nd_rsqrt(nd_scalar(0.0f))), INFINITY);
    /* gelu(1) = Phi(1) = 0.841344746..., gelu(-1) = -(1 - Phi(1)). */
    ck_assert_near(nd_item(nd_gelu(nd_scalar(1.0f))), 0.8413447460685429, 1e-6);
    ck_assert_near(nd_item(nd_gelu(nd_scalar(-1.0f))), -0.15865525393145707, 1e-6);
    /* Zero-size and 0-d shapes carry through. */
    nd_tensor *e = nd_exp(nd_zeros(ND_SHAPE(0, 3)));
    ck_assert(e->ndim == 2 && e->shape[0] == 0 && e->shape[1] == 3);
    ck_assert_int_eq(nd_relu(z)->ndim, 0);
}
END_TEST

START_TEST(test_nan_propagation) {
    const float nan = NAN, inf = INFINITY;
    nd_tensor *a = from(F32(nan, 1, nan, -inf, 2, inf), ND_SHAPE(6));
    nd_tensor *b = from(F32(1, nan, nan, nan, 3, 1), ND_SHAPE(6));
    EXACT(nd_maximum(a, b), 1, I64(6), F32(nan, nan, nan, nan, 3, inf));
    EXACT(nd_minimum(a, b), 1, I64(6), F32(nan, nan, nan, nan, 2, 1));
    EXACT(nd_maximum(b, a), 1, I64(6), F32(nan, nan, nan, nan, 3, inf));
    EXACT(nd_minimum(b, a), 1, I64(6), F32(nan, nan, nan, nan, 2, 1));
    /* A NaN broadcast over a whole tensor, from either side. */
    nd_tensor *r = from(F32(-1, 0, 1), ND_SHAPE(3));
    EXACT(nd_maximum(r, nd_scalar(nan)), 1, I64(3), F32(nan, nan, nan));
    EXACT(nd_minimum(nd_scalar(nan), r), 1, I64(3), F32(nan, nan, nan));
    /* NaN at the start and at the end of a strided row. */
    nd_tensor *m = from(F32(nan, 5, 0, 7, 8, nan), ND_SHAPE(2, 3));
    nd_tensor *mt = nd_transpose(m, 0, 1); /* nan 7 / 5 8 / 0 nan */
    EXACT(nd_maximum(mt, nd_scalar(6.0f)), 2, I64(3, 2), F32(nan, 7, 6, 8, 6, nan));
    EXACT(nd_minimum(mt, nd_scalar(6.0f)), 2, I64(3, 2), F32(nan, 6, 5, 6, 0, nan));

    nd_tensor *c = from(F32(nan, -5, 5, 0.5f, -inf, inf), ND_SHAPE(6));
    EXACT(nd_clamp(c, 0, 1), 1, I64(6), F32(nan, 0, 1, 0.5f, 0, 1));
    EXACT(nd_clamp(nd_transpose(m, 0, 1), 0, 6), 2, I64(3, 2), F32(nan, 6, 5, 6, 0, nan));
    EXACT(nd_relu(c), 1, I64(6), F32(nan, 0, 5, 0.5f, 0, inf));
    EXACT(nd_relu(mt), 2, I64(3, 2), F32(nan, 7, 5, 8, 0, nan));
    ck_assert(isnan(nd_item(nd_sigmoid(nd_scalar(nan)))));
    ck_assert(isnan(nd_item(nd_add(nd_scalar(nan), nd_scalar(1)))));
}
END_TEST

START_TEST(test_sigmoid_extremes) {
    const float xs[] = {-1000, -100, -30, -20, 0, 20, 30, 100, 1000};
    nd_tensor *x = from(xs, ND_SHAPE(9));
    nd_tensor *s = nd_sigmoid(x);
    nd_tensor *si = nd_silu(x);
    /* The smallest subnormal float: sigmoid(-100) = 3.7e-44 is one. */
    const double tiny = ldexp(1.0, -149);
    for (int i = 0; i < 9; i++) {
        double v = xs[i];
        float got = nd_data(s)[i], gsi = nd_data(si)[i];
        ck_assert_msg(isfinite(got) && got >= 0 && got <= 1, "sigmoid(%g) = %g", v,
                      (double)got);
        ck_assert_msg(close_to(got, r_sigmoid(v), RTOL, 2 * tiny),
                      "sigmoid(%g) = %.9g, expected %.9g", v, (double)got,
                      r_sigmoid(v));
        ck_assert_msg(isfinite(gsi), "silu(%g) = %g", v, (double)gsi);
        ck_assert_msg(close_to(gsi, r_silu(v), RTOL, 2 * tiny * fabs(v)),
                      "silu(%g) = %.9g, expected %.9g", v, (double)gsi, r_silu(v));
    }
    /* Not flushed to zero: e^-100 is representable. */
    ck_assert(nd_data(s)[1] > 0);
    ck_assert_float_eq(nd_data(s)[7], 1.0f);
    ck_assert_float_eq(nd_data(si)[7], 100.0f);
    ck_assert_float_eq(nd_data(s)[4], 0.5f);
}
END_TEST

START_TEST(test_where_values) {
    /* A strided condition with zeros of both signs, NaN and infinities. */
    const float nan = NAN, inf = INFINITY;
    const float cv[] = {0, -0.0f, 1, nan, -3, inf, 0.5f, 0, -inf, 1e-40f, 0, 2};
    nd_tensor *cbase = from(cv, ND_SHAPE(3, 4));
    nd_tensor *cond = nd_transpose(cbase, 0, 1); /* [4,3]: cond[i,j] = cv[j*4+i] */
    nd_tensor *abase = t_uniform(51, ND_SHAPE(4, 6), -1, 1);
    nd_tensor *a = nd_slice(abase, 1, 0, ND_END, 2); /* a[i,j] = abase[i*6+2j] */
    nd_tensor *bbase = t_uniform(52, ND_SHAPE(6), 5, 6);
    nd_tensor *b = nd_slice(bbase, 0, 1, ND_END, 2); /* [3]: b[j] = bbase[1+2j] */
    nd_tensor *y = nd_where(cond, a, b);
    ck_assert(y->ndim == 2 && y->shape[0] == 4 && y->shape[1] == 3);
    ck_assert(nd_is_contiguous(y));
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) {
            float c = cv[j * 4 + i];
            float want = c != 0 ? nd_data(abase)[i * 6 + 2 * j]
                                : nd_data(bbase)[1 + 2 * j];
            ck_assert_msg(nd_data(y)[i * y->strides[0] + j * y->strides[1]] == want,
                          "where at (%d,%d), cond %g", i, j, (double)c);
        }
    /* Which ones pick a: spelled out. */
    nd_tensor *picks = nd_where(cbase, nd_scalar(1), nd_scalar(0));
    EXACT(picks, 2, I64(3, 4), F32(0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1));
}
END_TEST

TCase *tcase_elementwise(void) {
    TCase *tc = nd_test_case("elementwise");
    tcase_add_test(tc, test_binary_strided);
    tcase_add_test(tc, test_comparisons_exact);
    tcase_add_test(tc, test_scalar_ops);
    tcase_add_test(tc, test_pow_scalar);
    tcase_add_test(tc, test_clamp);
    tcase_add_test(tc, test_unary_strided);
    tcase_add_test(tc, test_unary_hand_values);
    tcase_add_test(tc, test_nan_propagation);
    tcase_add_test(tc, test_sigmoid_extremes);
    tcase_add_test(tc, test_where_values);
    return tc;
}
