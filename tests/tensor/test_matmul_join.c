/* Matrix products, concat, stack, pad and indexing, checked element by
 * element against loops that read the inputs through their strides. */
#include <stdio.h>
#include <string.h>

#include "helpers.h"
#include "tensor/internal.h"

/* ---- independent helpers ------------------------------------------------ */


static void shape_text(const int64_t *shape, int ndim, char *buf, size_t len) {
    snprintf(buf, len, "(");
    for (int d = 0; d < ndim; d++)
        snprintf(buf + strlen(buf), len - strlen(buf), d ? ",%lld" : "%lld",
                 (long long)shape[d]);
    snprintf(buf + strlen(buf), len - strlen(buf), ")");
}

static void assert_shape(const nd_tensor *t, const int64_t *shape, int ndim) {
    bool same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char got[256], want[256];
        shape_text(t->shape, t->ndim, got, sizeof got);
        shape_text(shape, ndim, want, sizeof want);
        ck_abort_msg("shape is %s, expected %s", got, want);
    }
}

/* A random tensor of the given shape whose strides run backwards: made
 * with the reversed shape and viewed with its axes reversed. */
static nd_tensor *reversed(uint64_t seed, const int64_t *shape, int ndim) {
    int64_t rs[ND_MAX_DIMS];
    int perm[ND_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        rs[d] = shape[ndim - 1 - d];
        perm[d] = ndim - 1 - d;
    }
    nd_tensor *base = t_uniform(seed, rs, ndim, -1.0f, 1.0f);
    nd_tensor *x = nd_permute(base, perm, ndim);
    assert_shape(x, shape, ndim);
    return x;
}

/* A random tensor of the given shape that takes every other element
 * along axis, starting at the second. */
static nd_tensor *stepped(uint64_t seed, const int64_t *shape, int ndim, int axis) {
    int64_t big[ND_MAX_DIMS];
    memcpy(big, shape, (size_t)ndim * sizeof *big);
    big[axis] = 2 * shape[axis] + 1;
    nd_tensor *base = t_uniform(seed, big, ndim, -1.0f, 1.0f);
    nd_tensor *x = nd_slice(base, axis, 1, ND_END, 2);
    assert_shape(x, shape, ndim);
    return x;
}

/* ---- matmul ------------------------------------------------------------ */

/* nd_matmul(a, b) has shape eshape and, at every element, the double sum
 * of products of the operands' raw elements (batch axes broadcast). */
static void check_matmul(const nd_tensor *a, const nd_tensor *b,
                         const int64_t *eshape, int endim) {
    nd_tensor *y = nd_matmul(a, b);
    assert_shape(y, eshape, endim);
    int64_t n = a->ndim == 1 ? 1 : a->shape[a->ndim - 2];
    int64_t k = a->shape[a->ndim - 1];
    int64_t m = b->ndim == 1 ? 1 : b->shape[b->ndim - 1];
    int nba = a->ndim > 2 ? a->ndim - 2 : 0, nbb = b->ndim > 2 ? b->ndim - 2 : 0;
    int nb = nba > nbb ? nba : nbb;
    int64_t full[ND_MAX_DIMS + 2];
    for (int d = 0; d < nb; d++) {
        int64_t da = d >= nb - nba ? a->shape[d - (nb - nba)] : 1;
        int64_t db = d >= nb - nbb ? b->shape[d - (nb - nbb)] : 1;
        full[d] = da == 1 ? db : da;
    }
    full[nb] = n;
    full[nb + 1] = m;
    ck_assert_int_eq(t_count(full, nb + 2), t_count(eshape, endim));
    int64_t fi[ND_MAX_DIMS + 2], ai[ND_MAX_DIMS], bi[ND_MAX_DIMS], yi[ND_MAX_DIMS];
    for (int64_t f = 0, nf = t_count(full, nb + 2); f < nf; f++) {
        t_unravel(f, full, nb + 2, fi);
        for (int d = 0; d < nba; d++)
            ai[d] = a->shape[d] == 1 ? 0 : fi[d + nb - nba];
        for (int d = 0; d < nbb; d++)
            bi[d] = b->shape[d] == 1 ? 0 : fi[d + nb - nbb];
        double want = 0;
        for (int64_t p = 0; p < k; p++) {
            if (a->ndim == 1) {
                ai[0] = p;
            } else {
                ai[nba] = fi[nb];
                ai[nba + 1] = p;
            }
            if (b->ndim == 1) {
                bi[0] = p;
            } else {
                bi[nbb] = p;
                bi[nbb + 1] = fi[nb + 1];
            }
            want += t_raw(a, ai) * t_raw(b, bi);
        }
        int j = 0;
        for (int d = 0; d < nb; d++) yi[j++] = fi[d];
        if (a->ndim > 1) yi[j++] = fi[nb];
        if (b->ndim > 1) yi[j++] = fi[nb + 1];
        double got = t_raw(y, yi);
        if (!(fabs(got - want) <= 1e-5 * fmax(1.0, fabs(want))))
            ck_abort_msg("matmul element %lld: got %.9g, expected %.9g",
                         (long long)f, got, want);
    }
}

START_TEST(test_matmul_hand_values) {
    const float av[] = {1, 2, 3, 4, 5, 6}, bv[] = {7, 8, 9, 10, 11, 12};
    nd_tensor *a = nd_from_buffer(av, ND_SHAPE(2, 3));
    nd_tensor *b = nd_from_buffer(bv, ND_SHAPE(3, 2));
    nd_tensor *y = nd_matmul(a, b);
    assert_shape(y, ND_SHAPE(2, 2));
    const float want[] = {58, 64, 139, 154};
    for (int i = 0; i < 4; i++) ck_assert_float_eq(nd_data(y)[i], want[i]);

    nd_tensor *u = nd_from_buffer(av, ND_SHAPE(3));
    nd_tensor *v = nd_from_buffer(av + 3, ND_SHAPE(3));
    nd_tensor *dot = nd_matmul(u, v); /* 1*4 + 2*5 + 3*6 */
    assert_shape(dot, NULL, 0);
    ck_assert_float_eq(nd_item(dot), 32.0f);

    nd_tensor *row = nd_matmul(u, b); /* [1,2,3] @ b */
    assert_shape(row, ND_SHAPE(2));
    ck_assert_float_eq(nd_data(row)[0], 58.0f);
    ck_assert_float_eq(nd_data(row)[1], 64.0f);
    nd_tensor *col = nd_matmul(a, v); /* a @ [4,5,6] */
    assert_shape(col, ND_SHAPE(2));
    ck_assert_float_eq(nd_data(col)[0], 32.0f);
    ck_assert_float_eq(nd_data(col)[1], 77.0f);
}
END_TEST

START_TEST(test_matmul_2d_odd_sizes) {
    const int64_t sizes[] = {1, 7, 17};
    uint64_t seed = 200;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            for (int l = 0; l < 3; l++) {
                int64_t n = sizes[i], k = sizes[j], m = sizes[l];
                nd_tensor *a = t_uniform(seed++, ND_SHAPE(n, k), -1.0f, 1.0f);
                nd_tensor *b = t_uniform(seed++, ND_SHAPE(k, m), -1.0f, 1.0f);
                check_matmul(a, b, ND_SHAPE(n, m));
            }
}
END_TEST

START_TEST(test_matmul_non_contiguous_operands) {
    /* transposed left, transposed right, both, and sliced with steps */
    nd_tensor *at = reversed(230, ND_SHAPE(17, 7));
    nd_tensor *bt = reversed(231, ND_SHAPE(7, 5));
    nd_tensor *a = t_uniform(232, ND_SHAPE(17, 7), -1.0f, 1.0f);
    nd_tensor *b = t_uniform(233, ND_SHAPE(7, 5), -1.0f, 1.0f);
    ck_assert(!nd_is_contiguous(at) && !nd_is_contiguous(bt));
    check_matmul(at, b, ND_SHAPE(17, 5));
    check_matmul(a, bt, ND_SHAPE(17, 5));
    check_matmul(at, bt, ND_SHAPE(17, 5));
    nd_tensor *as = stepped(234, ND_SHAPE(17, 7), 1);
    nd_tensor *bs = stepped(235, ND_SHAPE(7, 5), 0);
    check_matmul(as, bs, ND_SHAPE(17, 5));
    check_matmul(as, bt, ND_SHAPE(17, 5));
    /* a stride-0 (broadcast) operand */
    nd_tensor *r = t_uniform(236, ND_SHAPE(1, 7), -1.0f, 1.0f);
    nd_tensor *re = nd_expand(r, ND_SHAPE(4, 7));
    check_matmul(re, bt, ND_SHAPE(4, 5));
}
END_TEST

START_TEST(test_matmul_vectors) {
    nd_tensor *v = t_uniform(240, ND_SHAPE(7), -1.0f, 1.0f);
    nd_tensor *vs = stepped(241, ND_SHAPE(7), 0);
    nd_tensor *m = t_uniform(242, ND_SHAPE(7, 17), -1.0f, 1.0f);
    nd_tensor *mt = reversed(243, ND_SHAPE(17, 7));
    check_matmul(v, m, ND_SHAPE(17));
    check_matmul(vs, m, ND_SHAPE(17));
    check_matmul(mt, v, ND_SHAPE(17));
    check_matmul(mt, vs, ND_SHAPE(17));
    check_matmul(v, vs, NULL, 0);
    nd_tensor *w = t_uniform(244, ND_SHAPE(1), -1.0f, 1.0f);
    nd_tensor *c = t_uniform(245, ND_SHAPE(1, 7), -1.0f, 1.0f);
    check_matmul(w, c, ND_SHAPE(7));
    check_matmul(w, w, NULL, 0);
    nd_tensor *l = t_uniform(246, ND_SHAPE(17), -1.0f, 1.0f);
    nd_tensor *ls = stepped(247, ND_SHAPE(17), 0);
    check_matmul(l, ls, NULL, 0);
}
END_TEST

START_TEST(test_matmul_batched_broadcast) {
    nd_tensor *a4 = t_uniform(250, ND_SHAPE(2, 1, 3, 4), -1.0f, 1.0f);
    nd_tensor *b3 = t_uniform(251, ND_SHAPE(5, 4, 2), -1.0f, 1.0f);
    check_matmul(a4, b3, ND_SHAPE(2, 5, 3, 2));
    nd_tensor *a3 = t_uniform(252, ND_SHAPE(3, 4, 5), -1.0f, 1.0f);
    nd_tensor *b2 = t_uniform(253, ND_SHAPE(5, 2), -1.0f, 1.0f);
    check_matmul(a3, b2, ND_SHAPE(3, 4, 2));
    nd_tensor *a2 = t_uniform(254, ND_SHAPE(4, 5), -1.0f, 1.0f);
    nd_tensor *b35 = t_uniform(255, ND_SHAPE(3, 5, 2), -1.0f, 1.0f);
    check_matmul(a2, b35, ND_SHAPE(3, 4, 2));
    nd_tensor *v4 = t_uniform(256, ND_SHAPE(4), -1.0f, 1.0f);
    nd_tensor *b342 = t_uniform(257, ND_SHAPE(3, 4, 2), -1.0f, 1.0f);
    check_matmul(v4, b342, ND_SHAPE(3, 2));
    nd_tensor *v5 = t_uniform(258, ND_SHAPE(5), -1.0f, 1.0f);
    check_matmul(a3, v5, ND_SHAPE(3, 4));
    /* size-1 batch axes on both sides */
    nd_tensor *p = t_uniform(259, ND_SHAPE(1, 3, 2, 4), -1.0f, 1.0f);
    nd_tensor *q = t_uniform(260, ND_SHAPE(2, 1, 4, 3), -1.0f, 1.0f);
    check_matmul(p, q, ND_SHAPE(2, 3, 2, 3));
    /* non-contiguous batches: reversed strides, and a sliced batch axis */
    nd_tensor *r = reversed(261, ND_SHAPE(2, 3, 4, 5));
    nd_tensor *s = stepped(262, ND_SHAPE(3, 5, 2), 0);
    check_matmul(r, s, ND_SHAPE(2, 3, 4, 2));
    nd_tensor *e = nd_expand(t_uniform(263, ND_SHAPE(1, 4, 5), -1.0f, 1.0f),
                             ND_SHAPE(3, 4, 5));
    check_matmul(e, s, ND_SHAPE(3, 4, 2));
}
END_TEST

START_TEST(test_matmul_empty) {
    /* k = 0: every element is the empty sum; the freed NaN tensor makes
     * it likely that the result lands on memory that is not zero */
    nd_tensor *a = nd_zeros(ND_SHAPE(3, 0));
    nd_tensor *b = nd_zeros(ND_SHAPE(0, 4));
    nd_free(nd_full(ND_SHAPE(3, 4), NAN));
    nd_tensor *y = nd_matmul(a, b);
    assert_shape(y, ND_SHAPE(3, 4));
    for (int i = 0; i < 12; i++) ck_assert(nd_data(y)[i] == 0.0f);
    nd_tensor *c = nd_zeros(ND_SHAPE(0, 3));
    nd_tensor *d = t_uniform(270, ND_SHAPE(3, 2), -1.0f, 1.0f);
    nd_tensor *z = nd_matmul(c, d);
    assert_shape(z, ND_SHAPE(0, 2));
    nd_tensor *e = nd_zeros(ND_SHAPE(2, 0, 3, 3));
    nd_tensor *w = nd_matmul(e, d);
    assert_shape(w, ND_SHAPE(2, 0, 3, 2));
}
END_TEST

START_TEST(test_matmul_errors) {
    nd_tensor *a = nd_zeros(ND_SHAPE(2, 3));
    nd_tensor *b = nd_zeros(ND_SHAPE(4, 5));
    EXPECT_FATAL(nd_matmul(a, b),
                 "nanodiff: matmul: shapes [2,3] and [4,5]: inner sizes 3 and 4 differ");
    nd_tensor *u = nd_zeros(ND_SHAPE(3));
    nd_tensor *v = nd_zeros(ND_SHAPE(4));
    EXPECT_FATAL(nd_matmul(u, v),
                 "nanodiff: matmul: shapes [3] and [4]: inner sizes 3 and 4 differ");
    EXPECT_FATAL(nd_matmul(v, a),
                 "nanodiff: matmul: shapes [4] and [2,3]: inner sizes 4 and 2 differ");
    EXPECT_FATAL(nd_matmul(a, v),
                 "nanodiff: matmul: shapes [2,3] and [4]: inner sizes 3 and 4 differ");
    nd_tensor *p = nd_zeros(ND_SHAPE(2, 3, 4));
    nd_tensor *q = nd_zeros(ND_SHAPE(3, 4, 5));
    EXPECT_FATAL(nd_matmul(p, q),
                 "nanodiff: matmul: shapes [2,3,4] and [3,4,5]: batch sizes 2 and 3 "
                 "do not broadcast");
    nd_tensor *r = nd_zeros(ND_SHAPE(6, 2, 3, 4));
    nd_tensor *s = nd_zeros(ND_SHAPE(5, 1, 4, 2));
    EXPECT_FATAL(nd_matmul(r, s),
                 "nanodiff: matmul: shapes [6,2,3,4] and [5,1,4,2]: batch sizes 6 and 5 "
                 "do not broadcast");
    nd_tensor *c = nd_scalar(2.0f);
    EXPECT_FATAL(nd_matmul(c, u),
                 "nanodiff: matmul: shapes [] and [3]: operands must have at least "
                 "1 dimension");
    EXPECT_FATAL(nd_matmul(a, c),
                 "nanodiff: matmul: shapes [2,3] and []: operands must have at least "
                 "1 dimension");
}
END_TEST

/* ---- concat and stack -------------------------------------------------- */

/* nd_concat(xs, n, axis) has shape eshape and each element comes from the
 * input that covers its position along axis. */
static void check_concat(const nd_tensor *const *xs, int n, int axis,
                         const int64_t *eshape, int endim) {
    nd_tensor *y = nd_concat(xs, n, axis);
    assert_shape(y, eshape, endim);
    int a = axis < 0 ? axis + endim : axis;
    int64_t idx[ND_MAX_DIMS], local[ND_MAX_DIMS];
    for (int64_t f = 0, nf = t_count(eshape, endim); f < nf; f++) {
        t_unravel(f, eshape, endim, idx);
        memcpy(local, idx, sizeof idx);
        int i = 0;
        while (local[a] >= xs[i]->shape[a]) local[a] -= xs[i++]->shape[a];
        double want = t_raw(xs[i], local), got = t_raw(y, idx);
        if (got != want)
            ck_abort_msg("concat axis %d element %lld: got %.9g, expected %.9g "
                         "(input %d)",
                         axis, (long long)f, got, want, i);
    }
}

/* Three inputs of shape [3,4,5] except along axis, where they have 2, 1
 * and 3 elements; the second runs backwards, the third is sliced. */
static void concat_three(int axis, uint64_t seed) {
    int a = axis < 0 ? axis + 3 : axis;
    int64_t s0[3] = {3, 4, 5}, s1[3] = {3, 4, 5}, s2[3] = {3, 4, 5};
    s0[a] = 2;
    s1[a] = 1;
    s2[a] = 3;
    const nd_tensor *xs[3] = {
        t_uniform(seed, s0, 3, -1.0f, 1.0f),
        reversed(seed + 1, s1, 3),
        stepped(seed + 2, s2, 3, (a + 1) % 3),
    };
    ck_assert(!nd_is_contiguous(xs[1]) && !nd_is_contiguous(xs[2]));
    int64_t e[3] = {3, 4, 5};
    e[a] = 6;
    check_concat(xs, 3, axis, e, 3);
}

START_TEST(test_concat_each_axis) {
    concat_three(0, 300);
    concat_three(1, 310);
    concat_three(2, 320);
    concat_three(-1, 330);
    concat_three(-2, 340);
    concat_three(-3, 350);
}
END_TEST

START_TEST(test_concat_hand_values) {
    const float av[] = {1, 2, 3, 4}, bv[] = {5, 6};
    nd_tensor *a = nd_from_buffer(av, ND_SHAPE(2, 2));
    nd_tensor *b = nd_from_buffer(bv, ND_SHAPE(2, 1));
    const nd_tensor *xs[2] = {a, b};
    nd_tensor *y = nd_concat(xs, 2, 1);
    assert_shape(y, ND_SHAPE(2, 3));
    const float want[] = {1, 2, 5, 3, 4, 6};
    for (int i = 0; i < 6; i++) ck_assert_float_eq(nd_data(y)[i], want[i]);
    nd_tensor *c = nd_from_buffer(bv, ND_SHAPE(1, 2));
    const nd_tensor *ys[2] = {c, a};
    nd_tensor *z = nd_concat(ys, 2, 0);
    assert_shape(z, ND_SHAPE(3, 2));
    const float wz[] = {5, 6, 1, 2, 3, 4};
    for (int i = 0; i < 6; i++) ck_assert_float_eq(nd_data(z)[i], wz[i]);
}
END_TEST

START_TEST(test_concat_single_empty_and_broadcast) {
    nd_tensor *a = reversed(360, ND_SHAPE(3, 4));
    const nd_tensor *one[1] = {a};
    check_concat(one, 1, 1, ND_SHAPE(3, 4));
    /* an input with no elements along the axis contributes nothing */
    nd_tensor *e = nd_zeros(ND_SHAPE(3, 0));
    nd_tensor *b = t_uniform(361, ND_SHAPE(3, 2), -1.0f, 1.0f);
    const nd_tensor *xs[4] = {e, a, e, b};
    check_concat(xs, 4, -1, ND_SHAPE(3, 6));
    /* a stride-0 view is read like any other */
    nd_tensor *r = t_uniform(362, ND_SHAPE(1, 4), -1.0f, 1.0f);
    nd_tensor *re = nd_expand(r, ND_SHAPE(2, 4));
    const nd_tensor *ys[2] = {re, a};
    check_concat(ys, 2, 0, ND_SHAPE(5, 4));
    /* 1-d */
    nd_tensor *u = t_uniform(363, ND_SHAPE(3), -1.0f, 1.0f);
    nd_tensor *v = stepped(364, ND_SHAPE(4), 0);
    const nd_tensor *zs[3] = {v, u, v};
    check_concat(zs, 3, 0, ND_SHAPE(11));
}
END_TEST

START_TEST(test_concat_errors) {
    nd_tensor *a = nd_zeros(ND_SHAPE(2, 3));
    nd_tensor *b = nd_zeros(ND_SHAPE(2, 4));
    nd_tensor *c = nd_zeros(ND_SHAPE(2, 3, 1));
    const nd_tensor *ab[2] = {a, b}, *ac[2] = {a, c};
    EXPECT_FATAL(nd_concat(ab, 2, 0),
                 "nanodiff: concat: shapes [2,3] and [2,4] differ outside axis 0");
    EXPECT_FATAL(nd_concat(ab, 2, -2),
                 "nanodiff: concat: shapes [2,3] and [2,4] differ outside axis -2");
    EXPECT_FATAL(nd_concat(ac, 2, 1),
                 "nanodiff: concat: shapes [2,3] and [2,3,1] differ outside axis 1");
    EXPECT_FATAL(nd_concat(ab, 2, 2),
                 "nanodiff: concat: axis 2 is out of range for a 2-d tensor");
    EXPECT_FATAL(nd_concat(ab, 0, 0),
                 "nanodiff: concat: needs at least one tensor, got 0");
    EXPECT_FATAL(nd_concat(NULL, 2, 0), "nanodiff: concat: tensor list is NULL");
    nd_tensor *s = nd_scalar(1.0f);
    const nd_tensor *ss[2] = {s, s};
    EXPECT_FATAL(nd_concat(ss, 2, 0),
                 "nanodiff: concat: axis 0 is out of range for a 0-d tensor");
}
END_TEST

/* nd_stack(xs, n, axis): element idx of the result is element idx minus
 * the stacked axis of input idx[axis]. */
static void check_stack(const nd_tensor *const *xs, int n, int axis,
                        const int64_t *eshape, int endim) {
    nd_tensor *y = nd_stack(xs, n, axis);
    assert_shape(y, eshape, endim);
    int a = axis < 0 ? axis + endim : axis;
    ck_assert_int_eq(eshape[a], n);
    int64_t idx[ND_MAX_DIMS], local[ND_MAX_DIMS];
    for (int64_t f = 0, nf = t_count(eshape, endim); f < nf; f++) {
        t_unravel(f, eshape, endim, idx);
        for (int d = 0, j = 0; d < endim; d++)
            if (d != a) local[j++] = idx[d];
        double want = t_raw(xs[idx[a]], local), got = t_raw(y, idx);
        if (got != want)
            ck_abort_msg("stack axis %d element %lld: got %.9g, expected %.9g",
                         axis, (long long)f, got, want);
    }
}

START_TEST(test_stack_axes) {
    const nd_tensor *xs[3] = {
        t_uniform(400, ND_SHAPE(2, 4), -1.0f, 1.0f),
        reversed(401, ND_SHAPE(2, 4)),
        stepped(402, ND_SHAPE(2, 4), 1),
    };
    check_stack(xs, 3, 0, ND_SHAPE(3, 2, 4));
    check_stack(xs, 3, 1, ND_SHAPE(2, 3, 4));
    check_stack(xs, 3, 2, ND_SHAPE(2, 4, 3));
    check_stack(xs, 3, -1, ND_SHAPE(2, 4, 3));
    check_stack(xs, 3, -2, ND_SHAPE(2, 3, 4));
    check_stack(xs, 3, -3, ND_SHAPE(3, 2, 4));
    check_stack(xs, 1, 1, ND_SHAPE(2, 1, 4));
}
END_TEST

START_TEST(test_stack_hand_values) {
    const float av[] = {1, 2, 3}, bv[] = {4, 5, 6};
    nd_tensor *a = nd_from_buffer(av, ND_SHAPE(3));
    nd_tensor *b = nd_from_buffer(bv, ND_SHAPE(3));
    const nd_tensor *xs[2] = {a, b};
    nd_tensor *r = nd_stack(xs, 2, 0);
    nd_tensor *c = nd_stack(xs, 2, -1);
    assert_shape(r, ND_SHAPE(2, 3));
    assert_shape(c, ND_SHAPE(3, 2));
    const float wr[] = {1, 2, 3, 4, 5, 6}, wc[] = {1, 4, 2, 5, 3, 6};
    for (int i = 0; i < 6; i++) {
        ck_assert_float_eq(nd_data(r)[i], wr[i]);
        ck_assert_float_eq(nd_data(c)[i], wc[i]);
    }
    /* scalars stack into a vector */
    const nd_tensor *ss[3] = {nd_scalar(7.0f), nd_scalar(-1.0f), nd_scalar(0.5f)};
    nd_tensor *v = nd_stack(ss, 3, 0);
    assert_shape(v, ND_SHAPE(3));
    ck_assert_float_eq(nd_data(v)[0], 7.0f);
    ck_assert_float_eq(nd_data(v)[1], -1.0f);
    ck_assert_float_eq(nd_data(v)[2], 0.5f);
}
END_TEST

START_TEST(test_stack_errors) {
    nd_tensor *a = nd_zeros(ND_SHAPE(2, 4));
    nd_tensor *b = nd_zeros(ND_SHAPE(4, 2));
    nd_tensor *c = nd_zeros(ND_SHAPE(2, 4, 1));
    const nd_tensor *ab[3] = {a, a, b}, *ac[2] = {a, c};
    EXPECT_FATAL(nd_stack(ab, 3, 0), "nanodiff: stack: shapes [2,4] and [4,2] differ");
    EXPECT_FATAL(nd_stack(ac, 2, 1), "nanodiff: stack: shapes [2,4] and [2,4,1] differ");
    EXPECT_FATAL(nd_stack(ab, 2, 3),
                 "nanodiff: stack: axis 3 is out of range for stacking 2-d tensors (-3..2)");
    EXPECT_FATAL(nd_stack(ab, 2, -4),
                 "nanodiff: stack: axis -4 is out of range for stacking 2-d tensors (-3..2)");
    EXPECT_FATAL(nd_stack(ab, 0, 0), "nanodiff: stack: needs at least one tensor, got 0");
    EXPECT_FATAL(nd_stack(NULL, 2, 0), "nanodiff: stack: tensor list is NULL");
}
END_TEST

/* ---- pad --------------------------------------------------------------- */

/* nd_pad(x, pads, value): inside the padded box the elements of x, value
 * everywhere else. */
static void check_pad(const nd_tensor *x, const int64_t *pads, float value) {
    int nd = x->ndim;
    int64_t eshape[ND_MAX_DIMS];
    for (int d = 0; d < nd; d++) eshape[d] = pads[2 * d] + x->shape[d] + pads[2 * d + 1];
    nd_tensor *y = nd_pad(x, pads, value);
    assert_shape(y, eshape, nd);
    int64_t idx[ND_MAX_DIMS], src[ND_MAX_DIMS];
    for (int64_t f = 0, nf = t_count(eshape, nd); f < nf; f++) {
        t_unravel(f, eshape, nd, idx);
        bool inside = true;
        for (int d = 0; d < nd; d++) {
            src[d] = idx[d] - pads[2 * d];
            if (src[d] < 0 || src[d] >= x->shape[d]) inside = false;
        }
        double want = inside ? t_raw(x, src) : (double)value, got = t_raw(y, idx);
        if (got != want)
            ck_abort_msg("pad element %lld: got %.9g, expected %.9g",
                         (long long)f, got, want);
    }
}

START_TEST(test_pad_values) {
    nd_tensor *x = reversed(500, ND_SHAPE(3, 4, 2));
    const int64_t p1[] = {1, 2, 0, 3, 2, 0};
    check_pad(x, p1, -7.5f);
    const int64_t p2[] = {0, 0, 2, 1, 0, 4};
    check_pad(x, p2, 0.0f);
    const int64_t p3[] = {0, 0, 0, 0, 0, 0};
    check_pad(x, p3, 3.0f);
    nd_tensor *s = stepped(501, ND_SHAPE(2, 3), 1);
    const int64_t p4[] = {3, 1, 1, 2};
    check_pad(s, p4, 1e30f);
    nd_tensor *e = nd_zeros(ND_SHAPE(0, 2));
    const int64_t p5[] = {1, 1, 0, 1};
    check_pad(e, p5, 4.0f);
}
END_TEST

START_TEST(test_pad_hand_values) {
    const float v[] = {1, 2};
    nd_tensor *x = nd_from_buffer(v, ND_SHAPE(2));
    const int64_t p[] = {2, 1};
    nd_tensor *y = nd_pad(x, p, 9.0f);
    assert_shape(y, ND_SHAPE(5));
    const float want[] = {9, 9, 1, 2, 9};
    for (int i = 0; i < 5; i++) ck_assert_float_eq(nd_data(y)[i], want[i]);

    const float m[] = {1, 2, 3, 4};
    nd_tensor *a = nd_from_buffer(m, ND_SHAPE(2, 2));
    const int64_t q[] = {0, 1, 1, 0};
    nd_tensor *b = nd_pad(a, q, -1.0f);
    assert_shape(b, ND_SHAPE(3, 3));
    const float wb[] = {-1, 1, 2, -1, 3, 4, -1, -1, -1};
    for (int i = 0; i < 9; i++) ck_assert_float_eq(nd_data(b)[i], wb[i]);

    /* zero padding still returns a new tensor */
    const int64_t z[] = {0, 0, 0, 0};
    nd_tensor *c = nd_pad(a, z, 5.0f);
    ck_assert(c->storage != a->storage);
    nd_data(c)[0] = 100.0f;
    ck_assert_float_eq(nd_data(a)[0], 1.0f);

    nd_tensor *s = nd_scalar(2.5f);
    nd_tensor *t = nd_pad(s, NULL, 0.0f);
    assert_shape(t, NULL, 0);
    ck_assert_float_eq(nd_item(t), 2.5f);
}
END_TEST

START_TEST(test_pad_errors) {
    nd_tensor *x = nd_zeros(ND_SHAPE(2, 3));
    const int64_t p1[] = {0, 0, -1, 0};
    EXPECT_FATAL(nd_pad(x, p1, 0.0f),
                 "nanodiff: pad: axis 1: padding -1 before, 0 after; both must be >= 0");
    const int64_t p2[] = {1, -2, 0, 0};
    EXPECT_FATAL(nd_pad(x, p2, 0.0f),
                 "nanodiff: pad: axis 0: padding 1 before, -2 after; both must be >= 0");
    EXPECT_FATAL(nd_pad(x, NULL, 0.0f), "nanodiff: pad: pads is NULL");
}
END_TEST

/* ---- index_select and index_add ---------------------------------------- */

/* The flat position f of a shape as an index, row-major. */
static void unflatten(int64_t f, const int64_t *shape, int ndim, int64_t *idx) {
    for (int d = ndim - 1; d >= 0; d--) {
        idx[d] = shape[d] ? f % shape[d] : 0;
        f = shape[d] ? f / shape[d] : 0;
    }
}

/* index_select element by element: y[.., k, ..] = x[.., index[k], ..] */
static void check_index_select(const nd_tensor *x, int axis, const float *at, int64_t k) {
    nd_tensor *index = nd_from_buffer(at, ND_SHAPE(k));
    nd_tensor *y = nd_index_select(x, axis, index);
    int a = axis < 0 ? axis + x->ndim : axis;
    int64_t want[ND_MAX_DIMS], idx[ND_MAX_DIMS], src[ND_MAX_DIMS];
    memcpy(want, x->shape, sizeof want);
    want[a] = k;
    assert_shape(y, want, x->ndim);
    ck_assert(nd_is_contiguous(y));
    for (int64_t f = 0; f < nd_numel(y); f++) {
        unflatten(f, y->shape, y->ndim, idx);
        memcpy(src, idx, sizeof src);
        src[a] = (int64_t)at[idx[a]];
        if (t_raw(y, idx) != t_raw(x, src))
            ck_abort_msg("index_select axis %d element %lld: got %.9g, expected %.9g", axis,
                         (long long)f, t_raw(y, idx), t_raw(x, src));
    }
}

/* index_add against sums in double: y = x + sum over k with index[k] = i */
static void check_index_add(const nd_tensor *x, int axis, const float *at, int64_t k,
                            const nd_tensor *src) {
    nd_tensor *index = nd_from_buffer(at, ND_SHAPE(k));
    nd_tensor *y = nd_index_add(x, axis, index, src);
    int a = axis < 0 ? axis + x->ndim : axis;
    assert_shape(y, x->shape, x->ndim);
    int64_t idx[ND_MAX_DIMS], from[ND_MAX_DIMS];
    for (int64_t f = 0; f < nd_numel(y); f++) {
        unflatten(f, y->shape, y->ndim, idx);
        double want = t_raw(x, idx);
        memcpy(from, idx, sizeof from);
        for (int64_t j = 0; j < k; j++) {
            from[a] = j;
            if ((int64_t)at[j] == idx[a]) want += t_raw(src, from);
        }
        if (fabs(t_raw(y, idx) - want) > 1e-6 * (1.0 + fabs(want)))
            ck_abort_msg("index_add axis %d element %lld: got %.9g, expected %.9g", axis,
                         (long long)f, t_raw(y, idx), want);
    }
}

START_TEST(test_index_select_values) {
    nd_tensor *x = reversed(600, ND_SHAPE(3, 4, 5));
    const float a0[] = {2, 0, 2}, a1[] = {3, 1}, a2[] = {4, 4, 0, 1, 2, 3, 0};
    check_index_select(x, 0, a0, 3);
    check_index_select(x, 1, a1, 2);
    check_index_select(x, 2, a2, 7);
    check_index_select(x, -1, a2, 7);
    check_index_select(x, 1, a1, 0); /* an empty index: an empty axis */
    nd_tensor *s = stepped(601, ND_SHAPE(4, 3), 0);
    check_index_select(s, 0, a1, 2);
    /* the embedding lookup by hand: rows of a table */
    const float table[] = {1, 2, 3, 4, 5, 6}, ids[] = {2, 0, 2};
    nd_tensor *t = nd_from_buffer(table, ND_SHAPE(3, 2));
    nd_tensor *y = nd_index_select(t, 0, nd_from_buffer(ids, ND_SHAPE(3)));
    const float want[] = {5, 6, 1, 2, 5, 6};
    for (int i = 0; i < 6; i++) ck_assert_float_eq(nd_data(y)[i], want[i]);
}
END_TEST

START_TEST(test_index_add_values) {
    nd_tensor *x = reversed(610, ND_SHAPE(3, 4, 5));
    const float a0[] = {2, 0, 2, 2}, a1[] = {3, 1, 3}, a2[] = {4, 4, 0};
    check_index_add(x, 0, a0, 4, stepped(611, ND_SHAPE(4, 4, 5), 2));
    check_index_add(x, 1, a1, 3, reversed(612, ND_SHAPE(3, 3, 5)));
    check_index_add(x, -1, a2, 3, t_uniform(613, ND_SHAPE(3, 4, 3), -1.0f, 1.0f));
    check_index_add(x, 1, a1, 0, nd_zeros(ND_SHAPE(3, 0, 5))); /* nothing added */
    /* by hand: repeated positions add each of their slices, in order */
    const float v[] = {10, 20, 30}, at[] = {1, 1, 0}, add[] = {1, 2, 4};
    nd_tensor *y = nd_index_add(nd_from_buffer(v, ND_SHAPE(3)), 0,
                                nd_from_buffer(at, ND_SHAPE(3)), nd_from_buffer(add, ND_SHAPE(3)));
    const float want[] = {14, 23, 30};
    for (int i = 0; i < 3; i++) ck_assert_float_eq(nd_data(y)[i], want[i]);
    /* x is left as it was */
    ck_assert_float_eq(v[0], 10.0f);
}
END_TEST

START_TEST(test_index_errors) {
    nd_tensor *x = nd_zeros(ND_SHAPE(2, 3));
    const float bad[] = {0, 3}, half[] = {1.5f}, neg[] = {-1}, ok[] = {1, 0};
    EXPECT_FATAL(nd_index_select(x, 1, nd_from_buffer(bad, ND_SHAPE(2))),
                 "nanodiff: index_select: index[1] = 3 is not a whole number in [0, 3)");
    EXPECT_FATAL(nd_index_select(x, 0, nd_from_buffer(half, ND_SHAPE(1))),
                 "nanodiff: index_select: index[0] = 1.5 is not a whole number in [0, 2)");
    EXPECT_FATAL(nd_index_select(x, 0, nd_from_buffer(neg, ND_SHAPE(1))),
                 "nanodiff: index_select: index[0] = -1 is not a whole number in [0, 2)");
    EXPECT_FATAL(nd_index_select(x, 0, nd_zeros(ND_SHAPE(1, 1))),
                 "nanodiff: index_select: index [1,1] must be 1-d, [K]");
    EXPECT_FATAL(nd_index_select(x, 2, nd_from_buffer(ok, ND_SHAPE(2))),
                 "nanodiff: index_select: axis 2 is out of range for a 2-d tensor");
    EXPECT_FATAL(nd_index_select(nd_scalar(1.0f), 0, nd_from_buffer(ok, ND_SHAPE(1))),
                 "nanodiff: index_select: x is 0-d: there is no axis to index");
    EXPECT_FATAL(nd_index_add(x, 0, nd_from_buffer(ok, ND_SHAPE(2)), nd_zeros(ND_SHAPE(2, 2))),
                 "nanodiff: index_add: src [2,2] must be x [2,3] with 2 (the index's length) "
                 "at axis 0");
    EXPECT_FATAL(nd_index_add(x, 0, nd_from_buffer(bad, ND_SHAPE(2)), nd_zeros(ND_SHAPE(2, 3))),
                 "nanodiff: index_add: index[1] = 3 is not a whole number in [0, 2)");
}
END_TEST

TCase *tcase_matmul_join(void) {
    TCase *tc = nd_test_case("matmul_join");
    tcase_add_test(tc, test_matmul_hand_values);
    tcase_add_test(tc, test_matmul_2d_odd_sizes);
    tcase_add_test(tc, test_matmul_non_contiguous_operands);
    tcase_add_test(tc, test_matmul_vectors);
    tcase_add_test(tc, test_matmul_batched_broadcast);
    tcase_add_test(tc, test_matmul_empty);
    tcase_add_test(tc, test_matmul_errors);
    tcase_add_test(tc, test_concat_each_axis);
    tcase_add_test(tc, test_concat_hand_values);
    tcase_add_test(tc, test_concat_single_empty_and_broadcast);
    tcase_add_test(tc, test_concat_errors);
    tcase_add_test(tc, test_stack_axes);
    tcase_add_test(tc, test_stack_hand_values);
    tcase_add_test(tc, test_stack_errors);
    tcase_add_test(tc, test_pad_values);
    tcase_add_test(tc, test_pad_hand_values);
    tcase_add_test(tc, test_pad_errors);
    tcase_add_test(tc, test_index_select_values);
    tcase_add_test(tc, test_index_add_values);
    tcase_add_test(tc, test_index_errors);
    return tc;
}
