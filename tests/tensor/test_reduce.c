/* Reductions (sum, mean, max, min, var), argmax, softmax and log_softmax,
 * checked against plain loops that read the inputs through their strides
 * and accumulate in double. */
#include <stdio.h>
#include <string.h>

#include "helpers.h"
#include "tensor/internal.h"

#define MAX_OUT 512

/* ---- independent helpers ------------------------------------------------ */


static void assert_shape(const nd_tensor *t, const int64_t *shape, int ndim) {
    char got[ND_SHAPE_STR_LEN], want[ND_SHAPE_STR_LEN];
    bool same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        snprintf(got, sizeof got, "ndim %d", t->ndim);
        for (int d = 0; d < t->ndim; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), " %lld",
                     (long long)t->shape[d]);
        snprintf(want, sizeof want, "ndim %d", ndim);
        for (int d = 0; d < ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), " %lld",
                     (long long)shape[d]);
        ck_abort_msg("shape is (%s), expected (%s)", got, want);
    }
}

/* |got - want| <= tol * max(1, |want|); a NaN is only near a NaN. */
static bool near(double got, double want, double tol) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= tol * fmax(1.0, fabs(want));
}

/* [3,5,2,4], strides [6,72,4,18], offset 1: a random [5,4,3,6] tensor
 * permuted to (2,0,3,1) and sliced 1::4 along the third axis. */
static nd_tensor *strided4_range(uint64_t seed, float lo, float hi) {
    nd_tensor *base = t_uniform(seed, ND_SHAPE(5, 4, 3, 6), lo, hi);
    nd_tensor *p = nd_permute(base, ND_AXES(2, 0, 3, 1));
    nd_tensor *x = nd_slice(p, 2, 1, ND_END, 4);
    const int64_t shape[] = {3, 5, 2, 4}, strides[] = {6, 72, 4, 18};
    assert_shape(x, shape, 4);
    for (int d = 0; d < 4; d++) ck_assert_int_eq(x->strides[d], strides[d]);
    ck_assert_int_eq(x->offset, 1);
    return x;
}

static nd_tensor *strided4(uint64_t seed) { return strided4_range(seed, -2.0f, 3.0f); }

/* ---- the reduction reference ---------------------------------------- */

enum { OP_SUM, OP_MEAN, OP_MAX, OP_MIN, OP_VAR0, OP_VAR1, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"sum", "mean", "max",
                                               "min", "var0", "var1"};

static nd_tensor *run_op(int op, const nd_tensor *x, const int *axes,
                         int naxes, bool keepdim) {
    switch (op) {
    case OP_SUM: return nd_sum(x, axes, naxes, keepdim);
    case OP_MEAN: return nd_mean(x, axes, naxes, keepdim);
    case OP_MAX: return nd_max(x, axes, naxes, keepdim);
    case OP_MIN: return nd_min(x, axes, naxes, keepdim);
    case OP_VAR0: return nd_var(x, axes, naxes, 0, keepdim);
    default: return nd_var(x, axes, naxes, 1, keepdim);
    }
}

/* Runs op on x over axes and compares every output element (and the
 * output shape) with a loop over x's elements. */
static void check_reduce(const nd_tensor *x, const int *axes, int naxes,
                         bool keepdim, int op) {
    int nd = x->ndim;
    bool red[ND_MAX_DIMS] = {false};
    if (!axes) {
        for (int d = 0; d < nd; d++) red[d] = true;
    } else {
        for (int i = 0; i < naxes; i++) red[axes[i] < 0 ? axes[i] + nd : axes[i]] = true;
    }
    int64_t eshape[ND_MAX_DIMS], kshape[ND_MAX_DIMS];
    int en = 0, kn = 0;
    for (int d = 0; d < nd; d++) {
        if (red[d]) {
            if (keepdim) eshape[en++] = 1;
        } else {
            eshape[en++] = x->shape[d];
            kshape[kn++] = x->shape[d];
        }
    }
    int64_t nout = t_count(kshape, kn);
    ck_assert_int_le(nout, MAX_OUT);

    static double sum[MAX_OUT], cnt[MAX_OUT], mx[MAX_OUT], mn[MAX_OUT],
        ss[MAX_OUT];
    for (int64_t o = 0; o < nout; o++) {
        sum[o] = cnt[o] = ss[o] = 0;
        mx[o] = -INFINITY;
        mn[o] = INFINITY;
    }
    int64_t n = t_count(x->shape, nd), idx[ND_MAX_DIMS];
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t i = 0; i < n; i++) {
            t_unravel(i, x->shape, nd, idx);
            int64_t o = 0;
            for (int d = 0; d < nd; d++)
                if (!red[d]) o = o * x->shape[d] + idx[d];
            double v = t_raw(x, idx);
            if (pass == 0) {
                sum[o] += v;
                cnt[o] += 1;
                if (isnan(v) || v > mx[o]) mx[o] = isnan(mx[o]) ? mx[o] : v;
                if (isnan(v) || v < mn[o]) mn[o] = isnan(mn[o]) ? mn[o] : v;
            } else {
                double dv = v - sum[o] / cnt[o];
                ss[o] += dv * dv;
            }
        }
    }

    nd_tensor *y = run_op(op, x, axes, naxes, keepdim);
    assert_shape(y, eshape, en);
    int64_t kidx[ND_MAX_DIMS], yidx[ND_MAX_DIMS];
    for (int64_t o = 0; o < nout; o++) {
        t_unravel(o, kshape, kn, kidx);
        for (int d = 0, j = 0, k = 0; d < nd; d++) {
            if (!red[d]) yidx[j++] = kidx[k++];
            else if (keepdim) yidx[j++] = 0;
        }
        double got = t_raw(y, yidx), want;
        bool ok;
        switch (op) {
        case OP_SUM: want = sum[o]; break;
        case OP_MEAN: want = sum[o] / cnt[o]; break;
        case OP_MAX: want = mx[o]; break;
        case OP_MIN: want = mn[o]; break;
        case OP_VAR0: want = cnt[o] > 0 ? ss[o] / cnt[o] : NAN; break;
        default: want = cnt[o] > 1 ? ss[o] / (cnt[o] - 1) : NAN;
        }
        if (op == OP_MAX || op == OP_MIN)
            ok = isnan(want) ? isnan(got) : got == (double)(float)want;
        else
            ok = near(got, want, 1e-5);
        if (!ok)
            ck_abort_msg("%s over %d axes (keepdim %d), output %lld: got %.9g, "
                         "expected %.9g",
                         op_names[op], axes ? naxes : -1, (int)keepdim,
                         (long long)o, got, want);
    }
}

static void check_all_ops(const nd_tensor *x, const int *axes, int naxes) {
    for (int op = 0; op < OP_COUNT; op++) {
        check_reduce(x, axes, naxes, false, op);
        check_reduce(x, axes, naxes, true, op);
    }
}

/* ---- reductions ------------------------------------------------------- */

START_TEST(test_reduce_hand_values) {
    const float v[] = {1, 2, 3, 4, 5, 6};
    nd_tensor *x = nd_from_buffer(v, ND_SHAPE(2, 3));
    nd_tensor *s0 = nd_sum(x, ND_AXES(0), false);
    nd_tensor *s1 = nd_sum(x, ND_AXES(1), true);
    nd_tensor *m1 = nd_mean(x, ND_AXES(-1), false);
    nd_tensor *x0 = nd_max(x, ND_AXES(0), false);
    nd_tensor *n1 = nd_min(x, ND_AXES(1), false);
    nd_tensor *v0 = nd_var(x, ND_AXES(0), 0, false);
    nd_tensor *v1 = nd_var(x, ND_AXES(1), 1, false);
    nd_tensor *all = nd_var(x, NULL, 0, 1, false);
    assert_shape(s0, ND_SHAPE(3));
    assert_shape(s1, ND_SHAPE(2, 1));
    assert_shape(m1, ND_SHAPE(2));
    assert_shape(all, NULL, 0);
    const float es0[] = {5, 7, 9}, es1[] = {6, 15}, em1[] = {2, 5};
    const float ex0[] = {4, 5, 6}, en1[] = {1, 4}, ev0[] = {2.25f, 2.25f, 2.25f};
    for (int i = 0; i < 3; i++) {
        ck_assert_float_eq(nd_data(s0)[i], es0[i]);
        ck_assert_float_eq(nd_data(x0)[i], ex0[i]);
        ck_assert_float_eq(nd_data(v0)[i], ev0[i]);
    }
    for (int i = 0; i < 2; i++) {
        ck_assert_float_eq(nd_data(s1)[i], es1[i]);
        ck_assert_float_eq(nd_data(m1)[i], em1[i]);
        ck_assert_float_eq(nd_data(n1)[i], en1[i]);
        ck_assert_float_eq(nd_data(v1)[i], 1.0f);
    }
    ck_assert_near(nd_data(all)[0], 3.5, 1e-6);
}
END_TEST

START_TEST(test_reduce_each_single_axis) {
    nd_tensor *x = strided4(101);
    for (int a = -4; a < 4; a++) {
        int axes[1] = {a};
        check_all_ops(x, axes, 1);
    }
}
END_TEST

START_TEST(test_reduce_axis_sets) {
    nd_tensor *x = strided4(102);
    check_all_ops(x, ND_AXES(0, 2));
    check_all_ops(x, ND_AXES(1, 3));
    check_all_ops(x, ND_AXES(0, 1, 3));
    check_all_ops(x, ND_AXES(-1));
    check_all_ops(x, ND_AXES(3, 0));
    check_all_ops(x, ND_AXES(-4, -2));
    check_all_ops(x, ND_AXES(2, -1));
    check_all_ops(x, ND_AXES(1, 2, 3));
    check_all_ops(x, ND_AXES(3, 1, 0, 2));

    nd_tensor *s = nd_sum(x, ND_AXES(0, 2), false);
    assert_shape(s, ND_SHAPE(5, 4));
    nd_tensor *k = nd_mean(x, ND_AXES(0, 1, 3), true);
    assert_shape(k, ND_SHAPE(1, 1, 2, 1));
    nd_tensor *l = nd_var(x, ND_AXES(-1), 1, false);
    assert_shape(l, ND_SHAPE(3, 5, 2));
}
END_TEST

START_TEST(test_reduce_all_axes) {
    nd_tensor *x = strided4(103);
    check_all_ops(x, NULL, 0);
    nd_tensor *s = nd_sum(x, NULL, 0, false);
    assert_shape(s, NULL, 0);
    nd_tensor *k = nd_max(x, NULL, 0, true);
    assert_shape(k, ND_SHAPE(1, 1, 1, 1));
}
END_TEST

START_TEST(test_reduce_empty_axis_list_is_identity) {
    nd_tensor *x = strided4(104);
    const int none[1] = {0};
    check_all_ops(x, none, 0);
    int64_t idx[4];
    for (int op = OP_SUM; op <= OP_MIN; op++) {
        for (int kd = 0; kd < 2; kd++) {
            nd_tensor *y = run_op(op, x, none, 0, kd);
            assert_shape(y, x->shape, 4);
            for (int64_t i = 0; i < 120; i++) {
                t_unravel(i, x->shape, 4, idx);
                if (t_raw(y, idx) != t_raw(x, idx))
                    ck_abort_msg("%s over no axes changed element %lld",
                                 op_names[op], (long long)i);
            }
        }
    }
    nd_tensor *v0 = nd_var(x, none, 0, 0, false);
    nd_tensor *v1 = nd_var(x, none, 0, 1, true);
    assert_shape(v0, x->shape, 4);
    assert_shape(v1, x->shape, 4);
    for (int64_t i = 0; i < 120; i++) {
        ck_assert(nd_data(v0)[i] == 0.0f);
        ck_assert(isnan(nd_data(v1)[i]));
    }
}
END_TEST

START_TEST(test_reduce_broadcast_view) {
    /* stride-0 axes count every repeat */
    nd_tensor *b = t_uniform(105, ND_SHAPE(3, 1, 4), -1.0f, 1.0f);
    nd_tensor *x = nd_expand(b, ND_SHAPE(2, 3, 5, 4));
    ck_assert_int_eq(x->strides[0], 0);
    ck_assert_int_eq(x->strides[2], 0);
    for (int a = 0; a < 4; a++) {
        int axes[1] = {a};
        check_all_ops(x, axes, 1);
    }
    check_all_ops(x, ND_AXES(0, 2));
    check_all_ops(x, NULL, 0);
}
END_TEST

START_TEST(test_reduce_scalar) {
    nd_tensor *x = nd_scalar(-2.5f);
    const int none[1] = {0};
    for (int op = OP_SUM; op <= OP_MIN; op++) {
        nd_tensor *y = run_op(op, x, NULL, 0, false);
        assert_shape(y, NULL, 0);
        ck_assert_float_eq(nd_data(y)[0], -2.5f);
        nd_tensor *z = run_op(op, x, none, 0, true);
        assert_shape(z, NULL, 0);
        ck_assert_float_eq(nd_data(z)[0], -2.5f);
    }
    nd_tensor *v = nd_var(x, NULL, 0, 0, false);
    ck_assert_float_eq(nd_data(v)[0], 0.0f);
    EXPECT_FATAL(nd_sum(x, ND_AXES(0), false),
                 "nanodiff: sum: axis 0 is out of range for a 0-d tensor");
}
END_TEST

START_TEST(test_sum_accumulates_in_double) {
    /* in float, 1e8 + 1 rounds back to 1e8 and the sum would be 1 */
    const float v[] = {1e8f, 1.0f, -1e8f, 1.0f};
    nd_tensor *x = nd_from_buffer(v, ND_SHAPE(4));
    nd_tensor *s = nd_sum(x, NULL, 0, false);
    ck_assert_float_eq(nd_data(s)[0], 2.0f);
    nd_tensor *m = nd_mean(x, ND_AXES(0), false);
    ck_assert_float_eq(nd_data(m)[0], 0.5f);
}
END_TEST

/* nd_row_sum, nd_row_sum_sq_dev and nd_row_dot_dev: in double, so a
 * cancellation float sums would lose survives; the lane order of the
 * kernel sets, so every set gives the same bits; close to a long double
 * reference on random rows of odd lengths. */
START_TEST(test_row_sums) {
    const float v[] = {1e8f, 1.0f, -1e8f, 1.0f, 3.0f}, w[] = {10001.0f, 9999.0f};
    ck_assert(nd_row_sum(5, v) == 5.0);
    ck_assert(nd_row_sum_sq_dev(2, w, 10000.0) == 2.0);
    ck_assert(nd_row_dot_dev(2, w, 10000.0, (const float[]){3.0f, 5.0f}) == -2.0);
    ck_assert(nd_row_sum(0, NULL) == 0.0);
    static float x[1023], y[1023];
    for (int i = 0; i < 1023; i++) {
        x[i] = 3.0f + 2.0f * nd_rand_at(5, 0, (uint64_t)i) - 1.0f;
        y[i] = 2.0f * nd_rand_at(6, 0, (uint64_t)i) - 1.0f;
    }
    const int64_t lens[] = {1, 7, 17, 1023};
    const char *initial = nd_kernels_name();
    for (int li = 0; li < 4; li++) {
        int64_t n = lens[li];
        long double s = 0, q = 0, p = 0;
        for (int64_t i = 0; i < n; i++) s += x[i];
        long double mean = s / n;
        for (int64_t i = 0; i < n; i++) {
            q += (x[i] - mean) * (x[i] - mean);
            p += (x[i] - mean) * y[i];
        }
        double got[2][3];
        for (int k = 0; k < 2; k++) {
            nd_error err;
            ck_assert_int_eq(nd_set_kernels(k ? initial : "scalar", &err), ND_OK);
            got[k][0] = nd_row_sum(n, x);
            got[k][1] = nd_row_sum_sq_dev(n, x, (double)mean);
            got[k][2] = nd_row_dot_dev(n, x, (double)mean, y);
        }
        ck_assert_msg(!memcmp(got[0], got[1], sizeof got[0]), "n %lld: %s differs from scalar",
                      (long long)n, initial);
        /* terms of size <= 4: a double sum of n of them is within n ulps */
        ck_assert(fabsl(got[1][0] - s) <= 1e-15L * 4 * n * n);
        ck_assert(fabsl(got[1][1] - q) <= 1e-15L * 4 * n * n);
        ck_assert(fabsl(got[1][2] - p) <= 1e-15L * 4 * n * n);
    }
    EXPECT_FATAL(nd_row_sum(-1, x), "nanodiff: row_sum: row length -1 is negative");
    EXPECT_FATAL(nd_row_dot_dev(3, x, 0.0, NULL), "nanodiff: row_dot_dev: row is NULL");
}
END_TEST

/* x[k, j] for the lane-order tests: small integers, except 2^60 at k = 0
 * and -2^60 at k = 16, which cancel in lane 0 of the lane order, exactly.
 * A running sum would lose every small value added while 2^60 is in it
 * (a double's ulp there is 256). */
static float lane_value(int64_t k, int64_t j) {
    if (k == 0) return 0x1p60f;
    if (k == 16) return -0x1p60f;
    return (float)((k * 37 + j) % 11 - 5);
}

START_TEST(test_sum_over_a_leading_axis_keeps_the_lane_order) {
    /* Over axis 0 the outputs are summed a batch of columns at a time;
     * over the last axis of the transposed copy, by the kernels. Both
     * must give the lane order's bits, here the exact integer sum. */
    const int64_t counts[] = {1, 7, 16, 17, 40, 1000}, cols = 67;
    for (int c = 0; c < 6; c++) {
        int64_t n = counts[c];
        nd_tensor *x = nd_empty(ND_SHAPE(n, cols));
        for (int64_t k = 0; k < n; k++)
            for (int64_t j = 0; j < cols; j++) nd_data(x)[k * cols + j] = lane_value(k, j);
        nd_tensor *t = nd_contiguous(nd_transpose(x, 0, 1));
        nd_tensor *s0 = nd_sum(x, ND_AXES(0), false), *s1 = nd_sum(t, ND_AXES(1), false);
        nd_tensor *m0 = nd_mean(x, ND_AXES(0), true), *m1 = nd_mean(t, ND_AXES(-1), false);
        for (int64_t j = 0; j < cols; j++) {
            double exact = 0;
            for (int64_t k = 0; k < n; k++)
                if (k != 0 && k != 16) exact += lane_value(k, j);
            if (n <= 16) exact += 0x1p60;
            ck_assert_msg(nd_data(s0)[j] == (float)exact && nd_data(s1)[j] == (float)exact,
                          "count %lld column %lld: %.9g and %.9g, expected %.9g",
                          (long long)n, (long long)j, (double)nd_data(s0)[j],
                          (double)nd_data(s1)[j], exact);
            ck_assert(nd_data(m0)[j] == nd_data(m1)[j]);
        }
    }
    /* two reduced axes, neither of stride 1: x [3, 7, 5] over (0, 1), element
     * k = 7 i + j, against the permuted copy [5, 3, 7] over (1, 2) */
    nd_tensor *x = nd_empty(ND_SHAPE(3, 7, 5));
    for (int64_t k = 0; k < 21; k++)
        for (int64_t j = 0; j < 5; j++) nd_data(x)[k * 5 + j] = lane_value(k, j);
    nd_tensor *p = nd_contiguous(nd_permute(x, ND_AXES(2, 0, 1)));
    nd_tensor *a = nd_sum(x, ND_AXES(0, 1), false), *b = nd_sum(p, ND_AXES(1, 2), false);
    for (int64_t j = 0; j < 5; j++) {
        double exact = 0;
        for (int64_t k = 1; k < 21; k++)
            if (k != 16) exact += lane_value(k, j);
        ck_assert_float_eq(nd_data(a)[j], (float)exact);
        ck_assert_float_eq(nd_data(b)[j], (float)exact);
    }
}
END_TEST

START_TEST(test_var_single_element_unbiased_is_nan) {
    nd_tensor *x = t_uniform(106, ND_SHAPE(3, 1), 0.0f, 1.0f);
    nd_tensor *v1 = nd_var(x, ND_AXES(1), 1, false);
    nd_tensor *v0 = nd_var(x, ND_AXES(1), 0, false);
    for (int i = 0; i < 3; i++) {
        ck_assert(isnan(nd_data(v1)[i]));
        ck_assert_float_eq(nd_data(v0)[i], 0.0f);
    }
    /* correction 2 on 5 elements divides by 3 */
    const float w[] = {1, 2, 3, 4, 5};
    nd_tensor *y = nd_from_buffer(w, ND_SHAPE(5));
    nd_tensor *v2 = nd_var(y, NULL, 0, 2, false);
    ck_assert_near(nd_data(v2)[0], 10.0 / 3.0, 1e-6);
}
END_TEST

START_TEST(test_max_min_propagate_nan) {
    float v[] = {1, 9, 2, 3,     /* row 0: no NaN */
                 5, NAN, 7, -1,  /* row 1: NaN in the middle */
                 NAN, 4, 8, 0,   /* row 2: NaN first */
                 2, 3, 50, NAN}; /* row 3: NaN last, after the maximum */
    nd_tensor *x = nd_from_buffer(v, ND_SHAPE(4, 4));
    nd_tensor *mx = nd_max(x, ND_AXES(1), false);
    nd_tensor *mn = nd_min(x, ND_AXES(-1), true);
    assert_shape(mn, ND_SHAPE(4, 1));
    ck_assert_float_eq(nd_data(mx)[0], 9.0f);
    ck_assert_float_eq(nd_data(mn)[0], 1.0f);
    for (int r = 1; r < 4; r++) {
        ck_assert(isnan(nd_data(mx)[r]));
        ck_assert(isnan(nd_data(mn)[r]));
    }
    /* columns: 0, 1 and 3 hold a NaN, column 2 does not */
    nd_tensor *cx = nd_max(x, ND_AXES(0), false);
    nd_tensor *cn = nd_min(x, ND_AXES(0), false);
    ck_assert(isnan(nd_data(cx)[0]) && isnan(nd_data(cn)[0]));
    ck_assert(isnan(nd_data(cx)[1]) && isnan(nd_data(cn)[1]));
    ck_assert_float_eq(nd_data(cx)[2], 50.0f);
    ck_assert_float_eq(nd_data(cn)[2], 2.0f);
    ck_assert(isnan(nd_data(cx)[3]) && isnan(nd_data(cn)[3]));
    nd_tensor *ax = nd_max(x, NULL, 0, false);
    nd_tensor *an = nd_min(x, NULL, 0, false);
    ck_assert(isnan(nd_data(ax)[0]));
    ck_assert(isnan(nd_data(an)[0]));

    /* through a transposed (non-contiguous) view, NaN in a later row */
    nd_tensor *t = nd_transpose(x, 0, 1);
    nd_tensor *tx = nd_max(t, ND_AXES(0), false);
    ck_assert_float_eq(nd_data(tx)[0], 9.0f);
    ck_assert(isnan(nd_data(tx)[1]));
    ck_assert(isnan(nd_data(tx)[3]));

    /* infinities are ordinary values */
    const float inf[] = {-INFINITY, -INFINITY, INFINITY, 1};
    nd_tensor *y = nd_from_buffer(inf, ND_SHAPE(2, 2));
    nd_tensor *yx = nd_max(y, ND_AXES(1), false);
    nd_tensor *yn = nd_min(y, ND_AXES(1), false);
    ck_assert(isinf(nd_data(yx)[0]) && nd_data(yx)[0] < 0);
    ck_assert(isinf(nd_data(yx)[1]) && nd_data(yx)[1] > 0);
    ck_assert(isinf(nd_data(yn)[0]) && nd_data(yn)[0] < 0);
    ck_assert_float_eq(nd_data(yn)[1], 1.0f);
}
END_TEST

START_TEST(test_reduce_empty_axis) {
    nd_tensor *x = nd_zeros(ND_SHAPE(2, 0, 3));
    EXPECT_FATAL(nd_max(x, ND_AXES(1), false),
                 "nanodiff: max: cannot reduce over an empty axis of shape [2,0,3]");
    EXPECT_FATAL(nd_min(x, ND_AXES(0, 1), true),
                 "nanodiff: min: cannot reduce over an empty axis of shape [2,0,3]");
    EXPECT_FATAL(nd_max(x, NULL, 0, false),
                 "nanodiff: max: cannot reduce over an empty axis of shape [2,0,3]");

    nd_tensor *s = nd_sum(x, ND_AXES(1), false);
    assert_shape(s, ND_SHAPE(2, 3));
    for (int i = 0; i < 6; i++) ck_assert(nd_data(s)[i] == 0.0f);
    nd_tensor *sk = nd_sum(x, ND_AXES(-2), true);
    assert_shape(sk, ND_SHAPE(2, 1, 3));
    for (int i = 0; i < 6; i++) ck_assert(nd_data(sk)[i] == 0.0f);
    nd_tensor *sa = nd_sum(x, NULL, 0, false);
    assert_shape(sa, NULL, 0);
    ck_assert(nd_data(sa)[0] == 0.0f);
    nd_tensor *m = nd_mean(x, ND_AXES(1), false);
    for (int i = 0; i < 6; i++) ck_assert(isnan(nd_data(m)[i]));

    /* reducing a non-empty axis of an empty tensor yields an empty tensor */
    nd_tensor *e = nd_max(x, ND_AXES(2), false);
    assert_shape(e, ND_SHAPE(2, 0));
}
END_TEST

START_TEST(test_reduce_bad_axes) {
    nd_tensor *x = strided4(107);
    EXPECT_FATAL(nd_sum(x, ND_AXES(1, -3), false),
                 "nanodiff: sum: axis -3 appears twice");
    EXPECT_FATAL(nd_max(x, ND_AXES(2, 0, 2), true),
                 "nanodiff: max: axis 2 appears twice");
    EXPECT_FATAL(nd_var(x, ND_AXES(3, -1), 1, false),
                 "nanodiff: var: axis -1 appears twice");
    EXPECT_FATAL(nd_mean(x, ND_AXES(4), false),
                 "nanodiff: mean: axis 4 is out of range for a 4-d tensor");
    EXPECT_FATAL(nd_min(x, ND_AXES(0, -5), false),
                 "nanodiff: min: axis -5 is out of range for a 4-d tensor");
    const int one[1] = {0};
    EXPECT_FATAL(nd_sum(x, one, -1, false),
                 "nanodiff: sum: -1 axes given");
    EXPECT_FATAL(nd_var(x, NULL, 0, -1, false),
                 "nanodiff: var: correction -1 must be >= 0");
}
END_TEST

/* ---- argmax ------------------------------------------------------------ */

/* Compares nd_argmax(x, axis, keepdim) with the first index of the
 * maximum (or of the first NaN) of each fibre. */
static void check_argmax(const nd_tensor *x, int axis, bool keepdim) {
    int nd = x->ndim, a = axis < 0 ? axis + nd : axis;
    int64_t eshape[ND_MAX_DIMS] = {0}, fshape[ND_MAX_DIMS] = {0};
    int en = 0;
    for (int d = 0; d < nd; d++) {
        fshape[d] = d == a ? 1 : x->shape[d];
        if (d != a) eshape[en++] = x->shape[d];
        else if (keepdim) eshape[en++] = 1;
    }
    nd_tensor *y = nd_argmax(x, axis, keepdim);
    assert_shape(y, eshape, en);
    int64_t idx[ND_MAX_DIMS], yidx[ND_MAX_DIMS];
    for (int64_t f = 0, nf = t_count(fshape, nd); f < nf; f++) {
        t_unravel(f, fshape, nd, idx);
        int64_t best = -1;
        double bv = 0;
        for (int64_t i = 0; i < x->shape[a]; i++) {
            idx[a] = i;
            double v = t_raw(x, idx);
            if (isnan(v)) {
                best = i;
                break;
            }
            if (best < 0 || v > bv) best = i, bv = v;
        }
        for (int d = 0, j = 0; d < nd; d++) {
            if (d != a) yidx[j++] = idx[d];
            else if (keepdim) yidx[j++] = 0;
        }
        double got = t_raw(y, yidx);
        if (got != (double)best)
            ck_abort_msg("argmax axis %d keepdim %d fibre %lld: got %g, expected %lld",
                         axis, (int)keepdim, (long long)f, got, (long long)best);
    }
}

START_TEST(test_argmax_each_axis_with_ties) {
    /* values in {0,1,2}: most fibres hold ties for the maximum */
    nd_tensor *base = t_uniform(108, ND_SHAPE(5, 4, 3, 6), 0.0f, 3.0f);
    float *p = nd_data(base);
    for (int i = 0; i < 360; i++) p[i] = floorf(p[i]);
    nd_tensor *q = nd_permute(base, ND_AXES(2, 0, 3, 1));
    nd_tensor *x = nd_slice(q, 2, 1, ND_END, 4);
    for (int a = -4; a < 4; a++) {
        check_argmax(x, a, false);
        check_argmax(x, a, true);
    }
    nd_tensor *r = strided4(109);
    for (int a = 0; a < 4; a++) {
        check_argmax(r, a, false);
        check_argmax(r, a, true);
    }
}
END_TEST

START_TEST(test_argmax_hand_values) {
    const float v[] = {3, 7, 7, 1,  /* tie: first 7 at 1 */
                       -5, -2, -9, -2, /* tie: first -2 at 1 */
                       4, 4, 4, 4,  /* all equal: 0 */
                       0, 1, 2, 8}; /* last */
    nd_tensor *x = nd_from_buffer(v, ND_SHAPE(4, 4));
    nd_tensor *r = nd_argmax(x, 1, false);
    nd_tensor *c = nd_argmax(x, 0, true);
    assert_shape(r, ND_SHAPE(4));
    assert_shape(c, ND_SHAPE(1, 4));
    const float er[] = {1, 1, 0, 3}, ec[] = {2, 0, 0, 3};
    for (int i = 0; i < 4; i++) {
        ck_assert_float_eq(nd_data(r)[i], er[i]);
        ck_assert_float_eq(nd_data(c)[i], ec[i]);
    }

    /* 1-d input: a 0-d result without keepdim, [1] with it */
    const float w[] = {2, 5, NAN, 9, NAN};
    nd_tensor *y = nd_from_buffer(w, ND_SHAPE(5));
    nd_tensor *a0 = nd_argmax(y, 0, false);
    nd_tensor *a1 = nd_argmax(y, -1, true);
    assert_shape(a0, NULL, 0);
    assert_shape(a1, ND_SHAPE(1));
    ck_assert_float_eq(nd_data(a0)[0], 2.0f);
    ck_assert_float_eq(nd_data(a1)[0], 2.0f);

    const float u[] = {NAN, 1, 2, 3, 4, NAN};
    nd_tensor *z = nd_from_buffer(u, ND_SHAPE(2, 3));
    nd_tensor *az = nd_argmax(z, 1, false);
    ck_assert_float_eq(nd_data(az)[0], 0.0f);
    ck_assert_float_eq(nd_data(az)[1], 2.0f);
    nd_tensor *cz = nd_argmax(z, 0, false);
    ck_assert_float_eq(nd_data(cz)[0], 0.0f);
    ck_assert_float_eq(nd_data(cz)[1], 1.0f);
    ck_assert_float_eq(nd_data(cz)[2], 1.0f);
}
END_TEST

START_TEST(test_argmax_errors) {
    nd_tensor *x = nd_zeros(ND_SHAPE(2, 0));
    EXPECT_FATAL(nd_argmax(x, 1, false),
                 "nanodiff: argmax: axis 1 of shape [2,0] is empty");
    EXPECT_FATAL(nd_argmax(x, -1, true),
                 "nanodiff: argmax: axis -1 of shape [2,0] is empty");
    EXPECT_FATAL(nd_argmax(x, 2, false),
                 "nanodiff: argmax: axis 2 is out of range for a 2-d tensor");
    nd_tensor *e = nd_argmax(x, 0, false);
    assert_shape(e, ND_SHAPE(0));
}
END_TEST

/* ---- softmax and log_softmax ----------------------------------------- */

/* softmax and log_softmax along axis against the formula in double (to
 * relative tolerances stol and ltol); also that each softmax fibre sums
 * to 1. */
static void check_softmax(const nd_tensor *x, int axis, double stol, double ltol) {
    int nd = x->ndim, a = axis < 0 ? axis + nd : axis;
    nd_tensor *s = nd_softmax(x, axis);
    nd_tensor *l = nd_log_softmax(x, axis);
    assert_shape(s, x->shape, nd);
    assert_shape(l, x->shape, nd);
    int64_t fshape[ND_MAX_DIMS], idx[ND_MAX_DIMS];
    for (int d = 0; d < nd; d++) fshape[d] = d == a ? 1 : x->shape[d];
    for (int64_t f = 0, nf = t_count(fshape, nd); f < nf; f++) {
        t_unravel(f, fshape, nd, idx);
        double m = -INFINITY, z = 0, total = 0;
        for (int64_t i = 0; i < x->shape[a]; i++) {
            idx[a] = i;
            m = fmax(m, t_raw(x, idx));
        }
        for (int64_t i = 0; i < x->shape[a]; i++) {
            idx[a] = i;
            z += exp(t_raw(x, idx) - m);
        }
        for (int64_t i = 0; i < x->shape[a]; i++) {
            idx[a] = i;
            double xv = t_raw(x, idx);
            double ws = exp(xv - m) / z, wl = xv - m - log(z);
            double gs = t_raw(s, idx), gl = t_raw(l, idx);
            total += gs;
            if (!isfinite(gs) || !near(gs, ws, stol))
                ck_abort_msg("axis %d fibre %lld element %lld: softmax %.9g, "
                             "expected %.9g",
                             axis, (long long)f, (long long)i, gs, ws);
            if (!isfinite(gl) || !near(gl, wl, ltol))
                ck_abort_msg("axis %d fibre %lld element %lld: log_softmax %.9g, "
                             "expected %.9g",
                             axis, (long long)f, (long long)i, gl, wl);
        }
        if (!near(total, 1.0, 1e-5))
            ck_abort_msg("axis %d fibre %lld: softmax sums to %.9g", axis,
                         (long long)f, total);
    }
}

START_TEST(test_softmax_each_axis) {
    nd_tensor *x = strided4(110);
    for (int a = -4; a < 4; a++) check_softmax(x, a, 1e-5, 1e-5);
    nd_tensor *w = strided4_range(112, -12.0f, 18.0f);
    for (int a = 0; a < 4; a++) check_softmax(w, a, 1e-5, 1e-5);
}
END_TEST

START_TEST(test_softmax_hand_values) {
    const float v[] = {0, 1, 2, 3, 3, 3};
    nd_tensor *x = nd_from_buffer(v, ND_SHAPE(2, 3));
    nd_tensor *s = nd_softmax(x, 1);
    nd_tensor *l = nd_log_softmax(x, -1);
    double z = 1 + exp(1.0) + exp(2.0);
    ck_assert_near(nd_data(s)[0], 1 / z, 1e-6);
    ck_assert_near(nd_data(s)[1], exp(1.0) / z, 1e-6);
    ck_assert_near(nd_data(s)[2], exp(2.0) / z, 1e-6);
    ck_assert_near(nd_data(l)[0], -log(z), 1e-6);
    ck_assert_near(nd_data(l)[2], 2 - log(z), 1e-6);
    for (int i = 3; i < 6; i++) {
        ck_assert_near(nd_data(s)[i], 1.0 / 3.0, 1e-6);
        ck_assert_near(nd_data(l)[i], -log(3.0), 1e-6);
    }
    /* along an axis of size 1: all ones, all zeros */
    nd_tensor *t = nd_unsqueeze(x, 0);
    nd_tensor *s0 = nd_softmax(t, 0);
    nd_tensor *l0 = nd_log_softmax(t, 0);
    for (int i = 0; i < 6; i++) {
        ck_assert_float_eq(nd_data(s0)[i], 1.0f);
        ck_assert_float_eq(nd_data(l0)[i], 0.0f);
    }
}
END_TEST

START_TEST(test_softmax_large_inputs) {
    /* the maximum is not the first element of every row or column */
    const float v[] = {-1000, 1000, 0, 1000, 1000, 999, -1000, -1001, -1000};
    nd_tensor *x = nd_from_buffer(v, ND_SHAPE(3, 3));
    nd_tensor *s = nd_softmax(x, 1);
    nd_tensor *l = nd_log_softmax(x, 1);
    for (int i = 0; i < 9; i++) {
        ck_assert(isfinite(nd_data(s)[i]));
        ck_assert(isfinite(nd_data(l)[i]));
    }
    double z = 2 + exp(-1.0);
    /* row 0: 1000 dominates completely */
    ck_assert_near(nd_data(s)[0], 0.0, 1e-6);
    ck_assert_near(nd_data(s)[1], 1.0, 1e-6);
    ck_assert_near(nd_data(s)[2], 0.0, 1e-6);
    ck_assert_near(nd_data(l)[0], -2000.0, 1e-6);
    ck_assert_near(nd_data(l)[1], 0.0, 1e-4);
    ck_assert_near(nd_data(l)[2], -1000.0, 1e-6);
    /* rows 1 and 2: the same values up to a shift */
    ck_assert_near(nd_data(s)[3], 1 / z, 1e-6);
    ck_assert_near(nd_data(s)[4], 1 / z, 1e-6);
    ck_assert_near(nd_data(s)[5], exp(-1.0) / z, 1e-6);
    ck_assert_near(nd_data(s)[6], 1 / z, 1e-6);
    ck_assert_near(nd_data(s)[7], exp(-1.0) / z, 1e-6);
    ck_assert_near(nd_data(s)[8], 1 / z, 1e-6);
    /* log_softmax to the resolution of a float near 1000 (6e-5); see
     * test_log_softmax_precision_far_from_zero for the exact values */
    ck_assert_near(nd_data(l)[3], -log(z), 1e-4);
    ck_assert_near(nd_data(l)[5], -1 - log(z), 1e-4);
    ck_assert_near(nd_data(l)[6], -log(z), 1e-4);
    ck_assert_near(nd_data(l)[7], -1 - log(z), 1e-4);
    check_softmax(x, 0, 1e-5, 1e-4);
    check_softmax(x, 1, 1e-5, 1e-4);
    nd_tensor *t = nd_transpose(x, 0, 1);
    check_softmax(t, 0, 1e-5, 1e-4);
    check_softmax(t, -1, 1e-5, 1e-4);
}
END_TEST

START_TEST(test_log_softmax_precision_far_from_zero) {
    /* log_softmax depends only on differences between the inputs: each
     * row of x gives [-log 2, -log 2], and [1000, 999, 0] gives
     * [-c, -1 - c, -1000 - c] with c = log(1 + 1/e), to float precision
     * when x - max is formed before the log of the sum is subtracted */
    const float v[] = {1e6f, 1e6f, -3e5f, -3e5f, 1000, 1000};
    nd_tensor *x = nd_from_buffer(v, ND_SHAPE(3, 2));
    nd_tensor *l = nd_log_softmax(x, 1);
    for (int i = 0; i < 6; i++) ck_assert_near(nd_data(l)[i], -log(2.0), 1e-5);
    nd_tensor *s = nd_softmax(x, 1);
    for (int i = 0; i < 6; i++) ck_assert_near(nd_data(s)[i], 0.5, 1e-6);
    const float w[] = {1000, 999, 0};
    nd_tensor *y = nd_from_buffer(w, ND_SHAPE(3));
    nd_tensor *ly = nd_log_softmax(y, 0);
    double c = log(1 + exp(-1.0));
    ck_assert_near(nd_data(ly)[0], -c, 1e-5);
    ck_assert_near(nd_data(ly)[1], -1 - c, 1e-5);
    ck_assert_near(nd_data(ly)[2], -1000 - c, 1e-6);
}
END_TEST

START_TEST(test_softmax_errors) {
    nd_tensor *x = strided4(111);
    EXPECT_FATAL(nd_softmax(x, 4),
                 "nanodiff: softmax: axis 4 is out of range for a 4-d tensor");
    EXPECT_FATAL(nd_log_softmax(x, -5),
                 "nanodiff: log_softmax: axis -5 is out of range for a 4-d tensor");
    nd_tensor *s = nd_scalar(1.0f);
    EXPECT_FATAL(nd_softmax(s, 0),
                 "nanodiff: softmax: axis 0 is out of range for a 0-d tensor");
}
END_TEST

/* softmax's backward pass holds the bits of the four ops it replaces,
 * dx = y (dy - sum(dy y)), for 1-3 threads: rows along the last axis,
 * fibres along a leading axis (gathered and scattered), strided y and dy,
 * fibres of one element, rows longer than a summation block (70001 >
 * ND_GRAIN), and a NaN and an inf in dy that must reach their rows only.
 * In one long row the products are 1 and as many 1e20 as -1e20 (y = 1,
 * in every block), so that the sum in double is what the ones leave
 * after the spikes cancel, which depends on the lane and block each
 * product joins: an order other than nd_sum's changes it. */
static nd_tensor *softmax_backward_composed(const nd_tensor *y, const nd_tensor *dy, int axis) {
    nd_tensor *dot = nd_sum(nd_mul(dy, y), (int[]){axis}, 1, true);
    return nd_mul(y, nd_sub(dy, dot));
}

START_TEST(test_softmax_backward_matches_the_composed_ops) {
    nd_tensor *y = t_uniform(91, ND_SHAPE(7, 300), 0, 1), *dy = t_uniform(92, ND_SHAPE(7, 300), -2, 2);
    nd_tensor *yt = nd_transpose(t_uniform(93, ND_SHAPE(300, 7), 0, 1), 0, 1);
    nd_tensor *dys = nd_slice(t_uniform(94, ND_SHAPE(7, 600), -2, 2), 1, 0, ND_END, 2);
    nd_tensor *y3 = t_uniform(95, ND_SHAPE(3, 33, 5), 0, 1), *dy3 = t_uniform(96, ND_SHAPE(3, 33, 5), -1, 1);
    nd_tensor *yl = t_uniform(97, ND_SHAPE(2, 70001), 0, 1), *dyl = t_uniform(98, ND_SHAPE(2, 70001), -1, 1);
    nd_tensor *y1 = t_uniform(99, ND_SHAPE(5, 1), 0, 1), *dy1 = t_uniform(100, ND_SHAPE(5, 1), -1, 1);
    nd_tensor *ones = nd_full(ND_SHAPE(1, 70001), 1.0f), *spikes = nd_zeros(ND_SHAPE(1, 70001));
    for (int64_t i = 0; i < 70001; i++)
        nd_data(spikes)[i] = i % 37 == 0 ? 1e20f : i % 37 == 5 ? -1e20f : 1.0f;
    nd_data(dy)[2 * 300 + 17] = NAN;
    nd_data(dy)[4 * 300 + 5] = INFINITY;
    struct {
        const nd_tensor *y, *dy;
        int axis;
    } cases[] = {{y, dy, -1}, {y, dy, 0}, {yt, dy, 1}, {y, dys, -1}, {yt, dys, 0},
                 {y3, dy3, 1}, {y3, dy3, 2}, {yl, dyl, -1}, {y1, dy1, 1}, {y1, dy1, 0},
                 {ones, spikes, 1}};
    int initial = nd_get_num_threads();
    for (int threads = 1; threads <= 3; threads++) {
        nd_set_num_threads(threads);
        for (int c = 0; c < (int)(sizeof cases / sizeof cases[0]); c++) {
            nd_tensor *got = nd_softmax_backward(cases[c].y, cases[c].dy, cases[c].axis);
            nd_tensor *want = softmax_backward_composed(cases[c].y, cases[c].dy, cases[c].axis);
            ck_assert(nd_same_shape(got, want));
            ck_assert_msg(!memcmp(nd_data(got), nd_data(want),
                                  (size_t)nd_numel(got) * sizeof(float)),
                          "case %d differs from the composed ops with %d threads", c, threads);
        }
    }
    nd_set_num_threads(initial);
    nd_tensor *dx = nd_softmax_backward(y, dy, -1); /* the NaN and the inf stay in their rows */
    for (int64_t r = 0; r < 7; r++) {
        float v = nd_data(dx)[r * 300 + 100];
        ck_assert(r == 2 ? isnan(v) : r == 4 ? isinf(v) : isfinite(v));
    }
    ck_assert_str_eq(nd_op_name(ND_OP_SOFTMAX_BACKWARD), "softmax_backward");
    /* empty fibres, and no fibres: empty results */
    const nd_tensor *empty[2] = {nd_zeros(ND_SHAPE(3, 0)), nd_zeros(ND_SHAPE(0, 5))};
    for (int e = 0; e < 2; e++) {
        nd_tensor *s = nd_softmax(empty[e], -1), *l = nd_log_softmax(empty[e], -1);
        nd_tensor *b = nd_softmax_backward(empty[e], empty[e], -1);
        ck_assert(nd_same_shape(s, empty[e]) && nd_same_shape(l, empty[e]) &&
                  nd_same_shape(b, empty[e]));
    }
    EXPECT_FATAL(nd_softmax_backward(y, y3, 0),
                 "nanodiff: softmax_backward: dy has shape [3,33,5] but y has shape [7,300]");
    EXPECT_FATAL(nd_softmax_backward(y, dy, 2),
                 "nanodiff: softmax_backward: axis 2 is out of range for a 2-d tensor");
}
END_TEST

TCase *tcase_reduce(void) {
    TCase *tc = nd_test_case("reduce");
    tcase_add_test(tc, test_reduce_hand_values);
    tcase_add_test(tc, test_reduce_each_single_axis);
    tcase_add_test(tc, test_reduce_axis_sets);
    tcase_add_test(tc, test_reduce_all_axes);
    tcase_add_test(tc, test_reduce_empty_axis_list_is_identity);
    tcase_add_test(tc, test_reduce_broadcast_view);
    tcase_add_test(tc, test_reduce_scalar);
    tcase_add_test(tc, test_sum_accumulates_in_double);
    tcase_add_test(tc, test_row_sums);
    tcase_add_test(tc, test_sum_over_a_leading_axis_keeps_the_lane_order);
    tcase_add_test(tc, test_var_single_element_unbiased_is_nan);
    tcase_add_test(tc, test_max_min_propagate_nan);
    tcase_add_test(tc, test_reduce_empty_axis);
    tcase_add_test(tc, test_reduce_bad_axes);
    tcase_add_test(tc, test_argmax_each_axis_with_ties);
    tcase_add_test(tc, test_argmax_hand_values);
    tcase_add_test(tc, test_argmax_errors);
    tcase_add_test(tc, test_softmax_each_axis);
    tcase_add_test(tc, test_softmax_hand_values);
    tcase_add_test(tc, test_softmax_large_inputs);
    tcase_add_test(tc, test_log_softmax_precision_far_from_zero);
    tcase_add_test(tc, test_softmax_errors);
    tcase_add_test(tc, test_softmax_backward_matches_the_composed_ops);
    return tc;
}
