/* Views: reshape, permute, transpose, slice, expand, squeeze, unsqueeze,
 * contiguous and flatten. Each result is checked for its shape, strides
 * and offset, for whether it shares the base's storage (writes go both
 * ways), and element by element against values worked out by hand from
 * the base, read through raw index arithmetic on the base's data. */
#include "helpers.h"

#define I64(...) ((const int64_t[]){__VA_ARGS__})

/* 0, 1, 2, ... in row-major order. */
static nd_tensor *iota(const int64_t *shape, int ndim) {
    nd_tensor *t = nd_empty(shape, ndim);
    float *p = nd_data(t);
    for (int64_t i = 0, n = nd_numel(t); i < n; i++) p[i] = (float)i;
    return t;
}

/* Shape, strides and offset. A size-1 axis is never stepped along, so any
 * stride is right for it and only the others are compared. */
static void check_layout(const nd_tensor *t, int ndim, const int64_t *shape,
                         const int64_t *strides, int64_t offset, int line) {
    ck_assert_msg(t->ndim == ndim, "line %d: ndim %d, expected %d", line,
                  t->ndim, ndim);
    for (int i = 0; i < ndim; i++) {
        ck_assert_msg(t->shape[i] == shape[i],
                      "line %d: shape[%d] = %lld, expected %lld", line, i,
                      (long long)t->shape[i], (long long)shape[i]);
        if (shape[i] != 1)
            ck_assert_msg(t->strides[i] == strides[i],
                          "line %d: strides[%d] = %lld, expected %lld", line, i,
                          (long long)t->strides[i], (long long)strides[i]);
    }
    ck_assert_msg(t->offset == offset, "line %d: offset %lld, expected %lld",
                  line, (long long)t->offset, (long long)offset);
}
#define LAYOUT(t, ndim, shape, strides, offset)                                \
    check_layout((t), (ndim), (shape), (strides), (offset), __LINE__)

/* Position of element idx of v in the data of base (v views base). */
static int64_t raw_pos(const nd_tensor *base, const nd_tensor *v,
                       const int64_t *idx) {
    int64_t pos = v->offset - base->offset;
    for (int d = 0; d < v->ndim; d++) pos += idx[d] * v->strides[d];
    return pos;
}

/* Every element of v, read through nd_get and by raw index arithmetic on
 * base's data, equals want[] (row-major over v's shape). */
static void check_values(const nd_tensor *base, const nd_tensor *v,
                         const float *want, int line) {
    ck_assert_msg(v->storage == base->storage, "line %d: not a view of base",
                  line);
    const float *data = nd_data(base);
    int64_t idx[ND_MAX_DIMS];
    for (int64_t i = 0, n = nd_numel(v); i < n; i++) {
        t_unravel(i, v->shape, v->ndim, idx);
        float raw = data[raw_pos(base, v, idx)];
        float got = nd_get(v, idx);
        ck_assert_msg(raw == want[i] && got == want[i],
                      "line %d: element %lld is %g (raw %g), expected %g", line,
                      (long long)i, (double)got, (double)raw, (double)want[i]);
    }
}
#define VALUES(base, v, want) check_values((base), (v), (want), __LINE__)

/* A view of base, or a copy that owns its own storage. */
#define SHARES(a, b) ck_assert_ptr_eq((a)->storage, (b)->storage)
#define OWNS(a, b) ck_assert_ptr_ne((a)->storage, (b)->storage)

/* ---- nd_view / nd_reshape on contiguous tensors ----------------------- */

START_TEST(test_view_contiguous) {
    nd_tensor *x = iota(ND_SHAPE(2, 3, 4));
    LAYOUT(x, 3, I64(2, 3, 4), I64(12, 4, 1), 0);
    float want[24];
    for (int i = 0; i < 24; i++) want[i] = (float)i;

    nd_tensor *a = nd_view(x, ND_SHAPE(6, 4));
    LAYOUT(a, 2, I64(6, 4), I64(4, 1), 0);
    nd_tensor *b = nd_view(x, ND_SHAPE(4, -1));
    LAYOUT(b, 2, I64(4, 6), I64(6, 1), 0);
    nd_tensor *c = nd_view(x, ND_SHAPE(-1));
    LAYOUT(c, 1, I64(24), I64(1), 0);
    nd_tensor *d = nd_view(x, ND_SHAPE(2, 1, 12, 1));
    LAYOUT(d, 4, I64(2, 1, 12, 1), I64(12, 0, 1, 0), 0);
    nd_tensor *e = nd_reshape(x, ND_SHAPE(3, -1, 2));
    LAYOUT(e, 3, I64(3, 4, 2), I64(8, 2, 1), 0);
    nd_tensor *f = nd_view(x, ND_SHAPE(2, 3, 4));
    LAYOUT(f, 3, I64(2, 3, 4), I64(12, 4, 1), 0);
    nd_tensor *g = nd_reshape(x, ND_SHAPE(1, 24));
    LAYOUT(g, 2, I64(1, 24), I64(24, 1), 0);
    nd_tensor *views[] = {a, b, c, d, e, f, g};
    for (int i = 0; i < 7; i++) {
        SHARES(views[i], x);
        VALUES(x, views[i], want);
    }

    /* Writes go both ways. */
    nd_set(a, I64(5, 3), -1.0f);
    ck_assert_float_eq(nd_data(x)[23], -1.0f);
    ck_assert_float_eq(nd_get(b, I64(3, 5)), -1.0f);
    ck_assert_float_eq(nd_get(e, I64(2, 3, 1)), -1.0f);
    nd_set(x, I64(1, 0, 2), 77.0f); /* flat 14 */
    ck_assert_float_eq(nd_get(c, I64(14)), 77.0f);
    ck_assert_float_eq(nd_get(d, I64(1, 0, 2, 0)), 77.0f);
    ck_assert_float_eq(nd_get(e, I64(1, 3, 0)), 77.0f);
    nd_fill_(c, 7.0f);
    for (int i = 0; i < 24; i++) ck_assert_float_eq(nd_data(x)[i], 7.0f);
}
END_TEST

START_TEST(test_view_errors) {
    nd_tensor *x = iota(ND_SHAPE(2, 3, 4));
    EXPECT_FATAL(nd_view(x, ND_SHAPE(-1, 4, -1)),
                 "nanodiff: view: only one size may be -1");
    EXPECT_FATAL(nd_view(x, ND_SHAPE(5, 5)),
                 "nanodiff: view: shape [5,5] has 25 elements; the tensor of "
                 "shape [2,3,4] has 24");
    EXPECT_FATAL(nd_view(x, ND_SHAPE(5, -1)),
                 "nanodiff: view: cannot infer -1 in [5,-1] for a tensor of "
                 "shape [2,3,4]");
    EXPECT_FATAL(nd_reshape(x, ND_SHAPE(7)),
                 "nanodiff: reshape: shape [7] has 7 elements; the tensor of "
                 "shape [2,3,4] has 24");
    EXPECT_FATAL(nd_reshape(x, ND_SHAPE(-2, -12)),
                 "nanodiff: reshape: invalid size -2 in [-2,-12]");
    EXPECT_FATAL(nd_reshape(x, ND_SHAPE(0, -1)),
                 "nanodiff: reshape: cannot infer -1 in [0,-1] for a tensor of "
                 "shape [2,3,4]");
}
END_TEST

/* ---- permute / transpose ---------------------------------------------- */

START_TEST(test_permute) {
    nd_tensor *x = iota(ND_SHAPE(2, 3, 4));
    float want[24];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 3; k++)
                want[(i * 2 + j) * 3 + k] = (float)(j * 12 + k * 4 + i);

    nd_tensor *p = nd_permute(x, ND_AXES(2, 0, 1));
    LAYOUT(p, 3, I64(4, 2, 3), I64(1, 12, 4), 0);
    SHARES(p, x);
    VALUES(x, p, want);
    nd_tensor *q = nd_permute(x, ND_AXES(-1, 0, -2));
    LAYOUT(q, 3, I64(4, 2, 3), I64(1, 12, 4), 0);
    VALUES(x, q, want);

    /* The identity and a permutation undone. */
    nd_tensor *id = nd_permute(x, ND_AXES(0, 1, 2));
    LAYOUT(id, 3, I64(2, 3, 4), I64(12, 4, 1), 0);
    nd_tensor *back = nd_permute(p, ND_AXES(1, 2, 0));
    LAYOUT(back, 3, I64(2, 3, 4), I64(12, 4, 1), 0);
    ck_assert(nd_is_contiguous(back));
    ck_assert(!nd_is_contiguous(p));

    nd_set(p, I64(3, 1, 2), -5.0f); /* x[1,2,3] */
    ck_assert_float_eq(nd_data(x)[23], -5.0f);
    nd_set(x, I64(0, 1, 2), 99.0f);
    ck_assert_float_eq(nd_get(p, I64(2, 0, 1)), 99.0f);

    EXPECT_FATAL(nd_permute(x, ND_AXES(0, 0, 1)),
                 "nanodiff: permute: axis 0 appears twice");
    EXPECT_FATAL(nd_permute(x, ND_AXES(1, 0)),
                 "nanodiff: permute: 2 axes given for a 3-d tensor");
    EXPECT_FATAL(nd_permute(x, ND_AXES(0, 1, 3)),
                 "nanodiff: permute: axis 3 is out of range for a 3-d tensor");
}
END_TEST

START_TEST(test_transpose) {
    nd_tensor *x = iota(ND_SHAPE(2, 3, 4));
    float want[24];

    nd_tensor *t = nd_transpose(x, 0, 2);
    LAYOUT(t, 3, I64(4, 3, 2), I64(1, 4, 12), 0);
    SHARES(t, x);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 2; k++)
                want[(i * 3 + j) * 2 + k] = (float)(k * 12 + j * 4 + i);
    VALUES(x, t, want);

    nd_tensor *u = nd_transpose(x, -1, -2);
    LAYOUT(u, 3, I64(2, 4, 3), I64(12, 1, 4), 0);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 3; k++)
                want[(i * 4 + j) * 3 + k] = (float)(i * 12 + k * 4 + j);
    VALUES(x, u, want);

    nd_tensor *same = nd_transpose(x, 1, 1);
    LAYOUT(same, 3, I64(2, 3, 4), I64(12, 4, 1), 0);

    /* A view with an offset keeps it. */
    nd_tensor *y = iota(ND_SHAPE(4, 5));
    nd_tensor *s = nd_slice(y, 0, 1, 3, 1);
    LAYOUT(s, 2, I64(2, 5), I64(5, 1), 5);
    nd_tensor *st = nd_transpose(s, 0, 1);
    LAYOUT(st, 2, I64(5, 2), I64(1, 5), 5);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 2; j++) want[i * 2 + j] = (float)((j + 1) * 5 + i);
    VALUES(y, st, want);

    nd_set(st, I64(4, 1), -3.0f); /* y[2,4] */
    ck_assert_float_eq(nd_data(y)[14], -3.0f);

    EXPECT_FATAL(nd_transpose(x, 0, 3),
                 "nanodiff: transpose: axis 3 is out of range for a 3-d tensor");
}
END_TEST

/* ---- slice ------------------------------------------------------------- */

START_TEST(test_slice_1d) {
    nd_tensor *x = iota(ND_SHAPE(10));
    /* start, stop, step -> length and first element of x[start:stop:step],
     * worked out with Python's rules. */
    static const struct {
        int64_t start, stop, step, len, first;
    } cases[] = {
        {2, 8, 2, 3, 2},         {-3, ND_END, 1, 3, 7},  {-100, 100, 3, 4, 0},
        {5, 2, 1, 0, 0},         {2, -2, 3, 2, 2},       {8, ND_END, 5, 1, 8},
        {12, ND_END, 1, 0, 0},   {-1, ND_END, 1, 1, 9},  {0, -11, 1, 0, 0},
        {-12, -8, 1, 2, 0},      {3, 4, 7, 1, 3},        {0, ND_END, 4, 3, 0},
        {0, 10, 1, 10, 0},       {-10, -9, 1, 1, 0},     {9, 10, 100, 1, 9},
        {4, 4, 1, 0, 0},         {7, -4, 1, 0, 0},       {1, ND_END, 3, 3, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nd_tensor *s = nd_slice(x, 0, cases[c].start, cases[c].stop, cases[c].step);
        ck_assert_msg(s->ndim == 1 && s->shape[0] == cases[c].len,
                      "case %zu: length %lld, expected %lld", c,
                      (long long)s->shape[0], (long long)cases[c].len);
        SHARES(s, x);
        if (cases[c].len > 1) ck_assert_int_eq(s->strides[0], cases[c].step);
        if (cases[c].len > 0) {
            ck_assert_int_eq(s->offset, cases[c].first);
            float want[10];
            for (int64_t i = 0; i < cases[c].len; i++)
                want[i] = (float)(cases[c].first + i * cases[c].step);
            VALUES(x, s, want);
        }
        nd_free(s);
    }
}
END_TEST

/* A step larger than the axis keeps just the first element (Python:
 * x[2::sys.maxsize] == [x[2]]), with no overflow on the way. */
START_TEST(test_slice_huge_step) {
    nd_tensor *x = iota(ND_SHAPE(10));
    nd_tensor *s = nd_slice(x, 0, 2, ND_END, INT64_MAX);
    ck_assert_int_eq(s->ndim, 1);
    ck_assert_int_eq(s->shape[0], 1);
    ck_assert_int_eq(s->offset, 2);
    ck_assert_float_eq(nd_item(s), 2.0f);
    nd_tensor *s2 = nd_slice(x, 0, 0, 10, INT64_MAX - 1);
    ck_assert_int_eq(s2->shape[0], 1);
    ck_assert_float_eq(nd_item(s2), 0.0f);

    nd_tensor *m = iota(ND_SHAPE(4, 5));
    nd_tensor *r = nd_slice(m, 0, 3, ND_END, INT64_MAX / 2);
    ck_assert(r->ndim == 2 && r->shape[0] == 1 && r->shape[1] == 5);
    LAYOUT(r, 2, I64(1, 5), I64(0, 1), 15);
    const float want[] = {15, 16, 17, 18, 19};
    VALUES(m, r, want);
}
END_TEST

START_TEST(test_slice_2d) {
    nd_tensor *x = iota(ND_SHAPE(4, 5));
    float want[20];

    nd_tensor *v = nd_slice(x, 1, 1, 4, 2);
    LAYOUT(v, 2, I64(4, 2), I64(5, 2), 1);
    SHARES(v, x);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++) want[i * 2 + j] = (float)(i * 5 + 1 + 2 * j);
    VALUES(x, v, want);
    nd_tensor *v2 = nd_slice(x, -1, -4, -1, 2);
    LAYOUT(v2, 2, I64(4, 2), I64(5, 2), 1);
    VALUES(x, v2, want);

    nd_tensor *w = nd_slice(v, 0, 1, ND_END, 2);
    LAYOUT(w, 2, I64(2, 2), I64(10, 2), 6);
    SHARES(w, x);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) want[i * 2 + j] = (float)((1 + 2 * i) * 5 + 1 + 2 * j);
    VALUES(x, w, want);

    /* A row and a column. */
    nd_tensor *row = nd_slice(x, 0, 2, 3, 1);
    LAYOUT(row, 2, I64(1, 5), I64(5, 1), 10);
    nd_tensor *col = nd_slice(x, 1, -1, ND_END, 1);
    LAYOUT(col, 2, I64(4, 1), I64(5, 1), 4);
    for (int i = 0; i < 4; i++) want[i] = (float)(i * 5 + 4);
    VALUES(x, col, want);

    /* fill_ through the slice writes exactly its elements. */
    nd_fill_(w, -1.0f);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 5; j++) {
            bool in = (i == 1 || i == 3) && (j == 1 || j == 3);
            ck_assert_float_eq(nd_data(x)[i * 5 + j], in ? -1.0f : (float)(i * 5 + j));
        }
    nd_set(x, I64(3, 3), 50.0f);
    ck_assert_float_eq(nd_get(w, I64(1, 1)), 50.0f);
    ck_assert_float_eq(nd_get(v, I64(3, 1)), 50.0f);

    EXPECT_FATAL(nd_slice(x, 0, 0, 2, 0), "nanodiff: slice: step 0 must be >= 1");
    EXPECT_FATAL(nd_slice(x, 1, 0, 2, -1), "nanodiff: slice: step -1 must be >= 1");
    EXPECT_FATAL(nd_slice(x, 2, 0, 2, 1),
                 "nanodiff: slice: axis 2 is out of range for a 2-d tensor");
    EXPECT_FATAL(nd_slice(x, -3, 0, 2, 1),
                 "nanodiff: slice: axis -3 is out of range for a 2-d tensor");
}
END_TEST

/* ---- expand ------------------------------------------------------------ */

START_TEST(test_expand) {
    nd_tensor *x = iota(ND_SHAPE(3, 1));
    float want[24];

    nd_tensor *e = nd_expand(x, ND_SHAPE(2, 3, 4));
    LAYOUT(e, 3, I64(2, 3, 4), I64(0, 1, 0), 0);
    SHARES(e, x);
    for (int i = 0; i < 24; i++) want[i] = (float)((i / 4) % 3);
    VALUES(x, e, want);
    ck_assert(!nd_is_contiguous(e));

    nd_tensor *f = nd_expand(x, ND_SHAPE(-1, 5));
    LAYOUT(f, 2, I64(3, 5), I64(1, 0), 0);
    nd_tensor *g = nd_expand(x, ND_SHAPE(3, 1));
    LAYOUT(g, 2, I64(3, 1), I64(1, 1), 0);

    /* A write to the base shows at every position it is repeated to. */
    nd_set(x, I64(1, 0), 42.0f);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++)
            ck_assert_float_eq(nd_get(e, I64(i, 1, k)), 42.0f);
    ck_assert_float_eq(nd_get(e, I64(1, 2, 3)), 2.0f);

    /* A 0-d tensor to any shape. */
    nd_tensor *s = nd_scalar(2.5f);
    nd_tensor *se = nd_expand(s, ND_SHAPE(2, 3));
    LAYOUT(se, 2, I64(2, 3), I64(0, 0), 0);
    SHARES(se, s);
    for (int i = 0; i < 6; i++) want[i] = 2.5f;
    VALUES(s, se, want);

    /* Expanding a transposed view keeps its strides. */
    nd_tensor *y = iota(ND_SHAPE(2, 3));
    nd_tensor *yt = nd_transpose(y, 0, 1);
    nd_tensor *ye = nd_expand(yt, ND_SHAPE(4, 3, 2));
    LAYOUT(ye, 3, I64(4, 3, 2), I64(0, 1, 3), 0);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 2; k++) want[(i * 3 + j) * 2 + k] = (float)(k * 3 + j);
    VALUES(y, ye, want);

    EXPECT_FATAL(nd_expand(x, ND_SHAPE(4, 5)),
                 "nanodiff: expand: shape [3,1] cannot be broadcast to [4,5]");
    EXPECT_FATAL(nd_expand(x, ND_SHAPE(3)),
                 "nanodiff: expand: cannot expand shape [3,1] to a 1-d shape");
    EXPECT_FATAL(nd_expand(x, ND_SHAPE(-1, 3, 1)),
                 "nanodiff: expand: shape [3,1] cannot be broadcast to [-1,3,1]");
}
END_TEST

/* ---- squeeze / unsqueeze ---------------------------------------------- */

START_TEST(test_squeeze_unsqueeze) {
    nd_tensor *x = iota(ND_SHAPE(2, 1, 3));
    float want[6];
    for (int i = 0; i < 6; i++) want[i] = (float)i;

    nd_tensor *a = nd_squeeze(x, 1);
    LAYOUT(a, 2, I64(2, 3), I64(3, 1), 0);
    SHARES(a, x);
    VALUES(x, a, want);
    nd_tensor *b = nd_squeeze(x, -2);
    LAYOUT(b, 2, I64(2, 3), I64(3, 1), 0);
    EXPECT_FATAL(nd_squeeze(x, 0),
                 "nanodiff: squeeze: axis 0 of shape [2,1,3] has size 2, not 1");
    EXPECT_FATAL(nd_squeeze(x, 3),
                 "nanodiff: squeeze: axis 3 is out of range for a 3-d tensor");

    nd_tensor *u0 = nd_unsqueeze(a, 0);
    LAYOUT(u0, 3, I64(1, 2, 3), I64(0, 3, 1), 0);
    nd_tensor *u1 = nd_unsqueeze(a, 1);
    LAYOUT(u1, 3, I64(2, 1, 3), I64(3, 0, 1), 0);
    nd_tensor *u2 = nd_unsqueeze(a, 2);
    LAYOUT(u2, 3, I64(2, 3, 1), I64(3, 1, 0), 0);
    nd_tensor *um = nd_unsqueeze(a, -1);
    LAYOUT(um, 3, I64(2, 3, 1), I64(3, 1, 0), 0);
    nd_tensor *um3 = nd_unsqueeze(a, -3);
    LAYOUT(um3, 3, I64(1, 2, 3), I64(0, 3, 1), 0);
    nd_tensor *us[] = {u0, u1, u2, um, um3};
    for (int i = 0; i < 5; i++) {
        SHARES(us[i], x);
        VALUES(x, us[i], want);
        ck_assert(nd_is_contiguous(us[i]));
    }

    /* On a transposed view the other strides are kept. */
    nd_tensor *t = nd_transpose(a, 0, 1); /* [3,2], strides (1,3) */
    nd_tensor *tu = nd_unsqueeze(t, 1);
    LAYOUT(tu, 3, I64(3, 1, 2), I64(1, 0, 3), 0);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) want[i * 2 + j] = (float)(j * 3 + i);
    VALUES(x, tu, want);
    nd_tensor *ts = nd_squeeze(tu, 1);
    LAYOUT(ts, 2, I64(3, 2), I64(1, 3), 0);
    VALUES(x, ts, want);

    EXPECT_FATAL(nd_unsqueeze(a, 3),
                 "nanodiff: unsqueeze: axis 3 is out of range for a 2-d tensor "
                 "(-3..2)");
    EXPECT_FATAL(nd_unsqueeze(a, -4),
                 "nanodiff: unsqueeze: axis -4 is out of range for a 2-d tensor "
                 "(-3..2)");

    nd_set(tu, I64(2, 0, 1), -8.0f); /* x[1,0,2] */
    ck_assert_float_eq(nd_data(x)[5], -8.0f);
    nd_set(x, I64(0, 0, 1), 31.0f);
    ck_assert_float_eq(nd_get(u1, I64(0, 0, 1)), 31.0f);
}
END_TEST

/* ---- contiguous / flatten ---------------------------------------------- */

/* nd_owns_storage: true only for the sole, whole, contiguous view of
 * storage the library allocated. */
START_TEST(test_owns_storage) {
    nd_tensor *x = iota(ND_SHAPE(4, 3));
    ck_assert(nd_owns_storage(x));
    nd_tensor *v = nd_view(x, ND_SHAPE(12));
    ck_assert(!nd_owns_storage(x) && !nd_owns_storage(v));
    nd_free(v);
    ck_assert(nd_owns_storage(x));
    nd_tensor *t = nd_transpose(x, 0, 1), *row = nd_slice(x, 0, 1, 2, 1);
    ck_assert(!nd_owns_storage(t) && !nd_owns_storage(row));
    nd_free(x); /* t and row keep the storage: two views still */
    ck_assert(!nd_owns_storage(row));
    nd_free(t);
    ck_assert(!nd_owns_storage(row)); /* alone, but a part of it */
    nd_free(row);
    nd_tensor *src = iota(ND_SHAPE(2, 3)), *tt = nd_transpose(src, 0, 1);
    nd_tensor *tc = nd_contiguous(tt); /* a copy: storage of its own */
    ck_assert(nd_owns_storage(tc) && !nd_owns_storage(src));
    nd_free(tc);
    nd_free(tt);
    nd_free(src);
    float buf[6] = {0};
    nd_tensor *w = nd_wrap_buffer(buf, ND_SHAPE(2, 3));
    ck_assert(!nd_owns_storage(w));
    nd_free(w);
}
END_TEST

START_TEST(test_contiguous) {
    nd_tensor *x = iota(ND_SHAPE(4, 3));
    float want[12];

    /* Already contiguous: a view, even with an offset. */
    nd_tensor *c = nd_contiguous(x);
    LAYOUT(c, 2, I64(4, 3), I64(3, 1), 0);
    SHARES(c, x);
    nd_tensor *rows = nd_slice(x, 0, 1, 3, 1);
    nd_tensor *rc = nd_contiguous(rows);
    LAYOUT(rc, 2, I64(2, 3), I64(3, 1), 3);
    SHARES(rc, x);
    nd_set(rc, I64(1, 1), -1.0f);
    ck_assert_float_eq(nd_data(x)[7], -1.0f);
    nd_set(x, I64(7 / 3, 7 % 3), 7.0f);

    /* A size-1 axis with an unusual stride is still contiguous. */
    nd_tensor *one = nd_slice(x, 0, 2, 3, 1);   /* [1,3] */
    nd_tensor *onet = nd_transpose(one, 0, 1); /* [3,1], strides (1,3) */
    ck_assert(nd_is_contiguous(onet));
    nd_tensor *oc = nd_contiguous(onet);
    SHARES(oc, x);
    LAYOUT(oc, 2, I64(3, 1), I64(1, 1), 6);
    for (int i = 0; i < 3; i++) want[i] = (float)(6 + i);
    VALUES(x, oc, want);

    /* Transposed: a contiguous copy with the same values. */
    nd_tensor *t = nd_transpose(x, 0, 1);
    ck_assert(!nd_is_contiguous(t));
    nd_tensor *tc = nd_contiguous(t);
    OWNS(tc, x);
    LAYOUT(tc, 2, I64(3, 4), I64(4, 1), 0);
    ck_assert(nd_is_contiguous(tc));
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) want[i * 4 + j] = (float)(j * 3 + i);
    VALUES(tc, tc, want);
    for (int i = 0; i < 12; i++) ck_assert_float_eq(nd_data(tc)[i], want[i]);
    /* Independent of x from now on. */
    nd_fill_(tc, 0.0f);
    for (int i = 0; i < 12; i++) ck_assert_float_eq(nd_data(x)[i], (float)i);
    nd_set(x, I64(0, 1), 100.0f);
    ck_assert_float_eq(nd_get(tc, I64(1, 0)), 0.0f);

    /* Stepped slice and expanded view: copies. */
    nd_tensor *step = nd_slice(x, 0, 0, ND_END, 2); /* rows 0 and 2 */
    nd_tensor *sc = nd_contiguous(step);
    OWNS(sc, x);
    LAYOUT(sc, 2, I64(2, 3), I64(3, 1), 0);
    const float ws[] = {0, 100, 2, 6, 7, 8};
    VALUES(sc, sc, ws);

    nd_tensor *col = nd_slice(x, 1, 2, 3, 1); /* [4,1]: 2,5,8,11 */
    nd_tensor *ex = nd_expand(col, ND_SHAPE(4, 2));
    nd_tensor *ec = nd_contiguous(ex);
    OWNS(ec, x);
    LAYOUT(ec, 2, I64(4, 2), I64(2, 1), 0);
    const float we[] = {2, 2, 5, 5, 8, 8, 11, 11};
    VALUES(ec, ec, we);
}
END_TEST

/* Contiguous copies of larger transposed and permuted views: every
 * element checked against raw indexing of the source, with outer axes
 * and a permutation of four axes. */
START_TEST(test_contiguous_large_transposes) {
    nd_tensor *x = t_uniform(91, ND_SHAPE(3, 37, 50), -1, 1);
    nd_tensor *y = nd_contiguous(nd_transpose(x, 1, 2)); /* [3, 50, 37] */
    const float *xd = nd_data(x), *yd = nd_data(y);
    for (int64_t b = 0; b < 3; b++)
        for (int64_t i = 0; i < 50; i++)
            for (int64_t j = 0; j < 37; j++)
                ck_assert(yd[(b * 50 + i) * 37 + j] == xd[(b * 37 + j) * 50 + i]);
    nd_tensor *x2 = t_uniform(92, ND_SHAPE(70, 16), -1, 1);
    nd_tensor *y2 = nd_contiguous(nd_transpose(x2, 0, 1)); /* [16, 70] */
    for (int64_t i = 0; i < 16; i++)
        for (int64_t j = 0; j < 70; j++)
            ck_assert(nd_data(y2)[i * 70 + j] == nd_data(x2)[j * 16 + i]);
    nd_tensor *x3 = t_uniform(93, ND_SHAPE(2, 18, 5, 17), -1, 1);
    const int perm[4] = {0, 2, 3, 1};
    nd_tensor *y3 = nd_contiguous(nd_permute(x3, perm, 4)); /* [2, 5, 17, 18] */
    for (int64_t a = 0; a < 2; a++)
        for (int64_t c = 0; c < 5; c++)
            for (int64_t d = 0; d < 17; d++)
                for (int64_t b = 0; b < 18; b++)
                    ck_assert(nd_data(y3)[((a * 5 + c) * 17 + d) * 18 + b] ==
                              nd_data(x3)[((a * 18 + b) * 5 + c) * 17 + d]);
}
END_TEST

START_TEST(test_flatten) {
    nd_tensor *x = iota(ND_SHAPE(2, 3, 4));
    float want[24];
    for (int i = 0; i < 24; i++) want[i] = (float)i;

    nd_tensor *f = nd_flatten(x);
    LAYOUT(f, 1, I64(24), I64(1), 0);
    SHARES(f, x);
    VALUES(x, f, want);
    nd_set(f, I64(13), -13.0f);
    ck_assert_float_eq(nd_get(x, I64(1, 0, 1)), -13.0f);
    nd_set(x, I64(1, 0, 1), 13.0f);
    ck_assert_float_eq(nd_get(f, I64(13)), 13.0f);

    /* Leading rows of a contiguous tensor flatten to a view. */
    nd_tensor *s = nd_slice(x, 0, 1, 2, 1);
    nd_tensor *sf = nd_flatten(s);
    LAYOUT(sf, 1, I64(12), I64(1), 12);
    SHARES(sf, x);
    VALUES(x, sf, want + 12);

    /* A column of a matrix flattens to a strided view. */
    nd_tensor *m = nd_view(x, ND_SHAPE(6, 4));
    nd_tensor *col = nd_slice(m, 1, 1, 2, 1);
    nd_tensor *cf = nd_flatten(col);
    LAYOUT(cf, 1, I64(6), I64(4), 1);
    SHARES(cf, x);
    for (int i = 0; i < 6; i++) want[i] = (float)(4 * i + 1);
    VALUES(x, cf, want);

    /* Transposed: a copy in the transposed row-major order. */
    nd_tensor *t = nd_permute(x, ND_AXES(2, 1, 0));
    nd_tensor *tf = nd_flatten(t);
    LAYOUT(tf, 1, I64(24), I64(1), 0);
    OWNS(tf, x);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 2; k++)
                want[(i * 3 + j) * 2 + k] = (float)(k * 12 + j * 4 + i);
    VALUES(tf, tf, want);

    /* 0-d: one element. */
    nd_tensor *z = nd_scalar(3.0f);
    nd_tensor *zf = nd_flatten(z);
    LAYOUT(zf, 1, I64(1), I64(1), 0);
    SHARES(zf, z);
    ck_assert_float_eq(nd_get(zf, I64(0)), 3.0f);
}
END_TEST

/* ---- reshape of non-contiguous tensors --------------------------------- */

START_TEST(test_reshape_permuted_view) {
    /* p = x.permute(1,2,0): shape [3,4,2], strides (4,1,12). Axes 0 and 1
     * are contiguous with each other (one run of 12, stride 1); axis 2 is
     * its own run. p(i,j,k) = x(k,i,j) = 12k + 4i + j. */
    nd_tensor *x = iota(ND_SHAPE(2, 3, 4));
    nd_tensor *p = nd_permute(x, ND_AXES(1, 2, 0));
    LAYOUT(p, 3, I64(3, 4, 2), I64(4, 1, 12), 0);
    float want[24];
    for (int f = 0; f < 24; f++) {
        int i = f / 8, j = (f / 2) % 4, k = f % 2;
        want[f] = (float)(12 * k + 4 * i + j);
    }

    nd_tensor *a = nd_reshape(p, ND_SHAPE(12, 2));
    LAYOUT(a, 2, I64(12, 2), I64(1, 12), 0);
    nd_tensor *a2 = nd_reshape(p, ND_SHAPE(-1, 2));
    LAYOUT(a2, 2, I64(12, 2), I64(1, 12), 0);
    nd_tensor *b = nd_reshape(p, ND_SHAPE(2, 6, 2));
    LAYOUT(b, 3, I64(2, 6, 2), I64(6, 1, 12), 0);
    nd_tensor *c = nd_reshape(p, ND_SHAPE(3, 2, 2, 2));
    LAYOUT(c, 4, I64(3, 2, 2, 2), I64(4, 2, 1, 12), 0);
    nd_tensor *d = nd_view(p, ND_SHAPE(1, 3, 4, 1, 2, 1));
    LAYOUT(d, 6, I64(1, 3, 4, 1, 2, 1), I64(0, 4, 1, 0, 12, 0), 0);
    nd_tensor *e = nd_view(p, ND_SHAPE(12, 2));
    LAYOUT(e, 2, I64(12, 2), I64(1, 12), 0);
    nd_tensor *views[] = {a, a2, b, c, d, e};
    for (int v = 0; v < 6; v++) {
        SHARES(views[v], x);
        VALUES(x, views[v], want);
    }
    nd_set(c, I64(2, 1, 0, 1), -4.0f); /* p(2,2,1) = x(1,2,2) */
    ck_assert_float_eq(nd_data(x)[22], -4.0f);
    nd_set(x, I64(0, 1, 3), 55.0f); /* p(1,3,0), flat 14 */
    ck_assert_float_eq(nd_get(a, I64(7, 0)), 55.0f);
}
END_TEST

START_TEST(test_reshape_sliced_view) {
    /* s = x[:, 0:6:2] of a [4,7] x: shape [4,3], strides (7,2), s(i,j) =
     * 7i + 2j. Its two axes are separate runs. */
    nd_tensor *x = iota(ND_SHAPE(4, 7));
    nd_tensor *s = nd_slice(x, 1, 0, 6, 2);
    LAYOUT(s, 2, I64(4, 3), I64(7, 2), 0);
    float want[12];
    for (int f = 0; f < 12; f++) want[f] = (float)(7 * (f / 3) + 2 * (f % 3));

    nd_tensor *a = nd_reshape(s, ND_SHAPE(2, 2, 3));
    LAYOUT(a, 3, I64(2, 2, 3), I64(14, 7, 2), 0);
    nd_tensor *b = nd_reshape(s, ND_SHAPE(4, 3, 1));
    LAYOUT(b, 3, I64(4, 3, 1), I64(7, 2, 0), 0);
    nd_tensor *c = nd_view(s, ND_SHAPE(1, 4, 1, 3));
    LAYOUT(c, 4, I64(1, 4, 1, 3), I64(0, 7, 0, 2), 0);
    nd_tensor *views[] = {a, b, c};
    for (int v = 0; v < 3; v++) {
        SHARES(views[v], x);
        VALUES(x, views[v], want);
    }
    nd_fill_(a, -1.0f);
    for (int i = 0; i < 28; i++) {
        bool in = i % 7 < 6 && i % 7 % 2 == 0;
        ck_assert_float_eq(nd_data(x)[i], in ? -1.0f : (float)i);
    }

    /* Merging the two runs needs a copy. */
    nd_tensor *x2 = iota(ND_SHAPE(4, 7));
    nd_tensor *s2 = nd_slice(x2, 1, 0, 6, 2);
    for (int k = 0; k < 2; k++) {
        nd_tensor *r = k == 0 ? nd_reshape(s2, ND_SHAPE(12))
                              : nd_reshape(s2, ND_SHAPE(3, 4));
        OWNS(r, x2);
        ck_assert(nd_is_contiguous(r));
        ck_assert_int_eq(nd_numel(r), 12);
        VALUES(r, r, want);
        nd_fill_(r, 9.0f);
        for (int i = 0; i < 28; i++) ck_assert_float_eq(nd_data(x2)[i], (float)i);
    }

    /* With rows of 6, x[:, 0:6:2] is evenly spaced: one run of 12 with
     * stride 2, so it flattens to a view. */
    nd_tensor *y = iota(ND_SHAPE(4, 6));
    nd_tensor *ys = nd_slice(y, 1, 0, 6, 2);
    LAYOUT(ys, 2, I64(4, 3), I64(6, 2), 0);
    nd_tensor *yf = nd_view(ys, ND_SHAPE(12));
    LAYOUT(yf, 1, I64(12), I64(2), 0);
    SHARES(yf, y);
    nd_tensor *yv = nd_view(ys, ND_SHAPE(2, 6));
    LAYOUT(yv, 2, I64(2, 6), I64(12, 2), 0);
    for (int f = 0; f < 12; f++) want[f] = (float)(2 * f);
    VALUES(y, yf, want);
    VALUES(y, yv, want);

    /* Rows with an offset, stepped along axis 0: [2,6] strides (12,1),
     * offset 6; each row is a run of 6. */
    nd_tensor *r = nd_slice(y, 0, 1, ND_END, 2);
    LAYOUT(r, 2, I64(2, 6), I64(12, 1), 6);
    nd_tensor *rv = nd_reshape(r, ND_SHAPE(2, 2, 3));
    LAYOUT(rv, 3, I64(2, 2, 3), I64(12, 3, 1), 6);
    SHARES(rv, y);
    for (int f = 0; f < 12; f++) want[f] = (float)(6 + 12 * (f / 6) + f % 6);
    VALUES(y, rv, want);
    nd_tensor *rc = nd_reshape(r, ND_SHAPE(4, 3));
    OWNS(rc, y);
    LAYOUT(rc, 2, I64(4, 3), I64(3, 1), 0);
    VALUES(rc, rc, want);
}
END_TEST

START_TEST(test_reshape_size_one_axes) {
    /* Size-1 axes with any stride do not break a run. */
    nd_tensor *x = iota(ND_SHAPE(3, 1, 4));
    nd_tensor *t = nd_transpose(x, 0, 1); /* [1,3,4] */
    ck_assert(nd_is_contiguous(t));
    nd_tensor *f = nd_view(t, ND_SHAPE(12));
    LAYOUT(f, 1, I64(12), I64(1), 0);
    SHARES(f, x);

    nd_tensor *y = iota(ND_SHAPE(4, 4));
    nd_tensor *row = nd_slice(y, 0, 1, 2, 1);    /* [1,4], offset 4 */
    nd_tensor *rt = nd_transpose(row, 0, 1);    /* [4,1], strides (1,4) */
    nd_tensor *rv = nd_view(rt, ND_SHAPE(2, 2)); /* elements 4..7 */
    LAYOUT(rv, 2, I64(2, 2), I64(2, 1), 4);
    SHARES(rv, y);
    const float w[] = {4, 5, 6, 7};
    VALUES(y, rv, w);

    /* A column: every axis but one has size 1. */
    nd_tensor *col = nd_slice(y, 1, 3, 4, 1); /* [4,1] strides (4,1) offset 3 */
    nd_tensor *cv = nd_view(col, ND_SHAPE(1, 2, 1, 2));
    LAYOUT(cv, 4, I64(1, 2, 1, 2), I64(0, 8, 0, 4), 3);
    const float wc[] = {3, 7, 11, 15};
    VALUES(y, cv, wc);
    nd_set(cv, I64(0, 1, 0, 1), -2.0f);
    ck_assert_float_eq(nd_data(y)[15], -2.0f);
}
END_TEST

START_TEST(test_reshape_expanded) {
    nd_tensor *x = iota(ND_SHAPE(3, 1));
    nd_tensor *e = nd_expand(x, ND_SHAPE(3, 4)); /* strides (1,0) */
    float want[12];
    for (int f = 0; f < 12; f++) want[f] = (float)(f / 4);

    /* Splitting the repeated axis keeps stride 0. */
    nd_tensor *v = nd_reshape(e, ND_SHAPE(3, 2, 2));
    LAYOUT(v, 3, I64(3, 2, 2), I64(1, 0, 0), 0);
    SHARES(v, x);
    VALUES(x, v, want);

    /* Merging it with a real axis copies. */
    nd_tensor *c = nd_reshape(e, ND_SHAPE(12));
    OWNS(c, x);
    LAYOUT(c, 1, I64(12), I64(1), 0);
    VALUES(c, c, want);
    nd_set(c, I64(5), 100.0f);
    ck_assert_float_eq(nd_get(c, I64(4)), 1.0f);
    ck_assert_float_eq(nd_data(x)[1], 1.0f);

    /* A fully expanded scalar stays one element. */
    nd_tensor *s = nd_scalar(4.0f);
    nd_tensor *se = nd_expand(s, ND_SHAPE(2, 3));
    nd_tensor *sv = nd_view(se, ND_SHAPE(6));
    LAYOUT(sv, 1, I64(6), I64(0), 0);
    SHARES(sv, s);
}
END_TEST

START_TEST(test_view_incompatible) {
    nd_tensor *x = iota(ND_SHAPE(2, 3, 4));
    nd_tensor *p = nd_permute(x, ND_AXES(1, 2, 0));
    EXPECT_FATAL(nd_view(p, ND_SHAPE(24)),
                 "nanodiff: view: shape [3,4,2] with strides [4,1,12] cannot be "
                 "viewed as [24]; use reshape (which copies) or contiguous first");
    EXPECT_FATAL(nd_view(p, ND_SHAPE(6, -1)),
                 "nanodiff: view: shape [3,4,2] with strides [4,1,12] cannot be "
                 "viewed as [6,4]; use reshape (which copies) or contiguous first");
    nd_tensor *t = nd_transpose(nd_view(x, ND_SHAPE(6, 4)), 0, 1);
    EXPECT_FATAL(nd_view(t, ND_SHAPE(2, 12)),
                 "nanodiff: view: shape [4,6] with strides [1,4] cannot be "
                 "viewed as [2,12]; use reshape (which copies) or contiguous first");
    nd_tensor *e = nd_expand(iota(ND_SHAPE(3, 1)), ND_SHAPE(3, 4));
    EXPECT_FATAL(nd_view(e, ND_SHAPE(4, 3)),
                 "nanodiff: view: shape [3,4] with strides [1,0] cannot be "
                 "viewed as [4,3]; use reshape (which copies) or contiguous first");

    /* reshape copies instead, in row-major order of the view. */
    nd_tensor *r = nd_reshape(p, ND_SHAPE(6, -1));
    LAYOUT(r, 2, I64(6, 4), I64(4, 1), 0);
    OWNS(r, x);
    float want[24];
    for (int f = 0; f < 24; f++) {
        int i = f / 8, j = (f / 2) % 4, k = f % 2;
        want[f] = (float)(12 * k + 4 * i + j);
    }
    VALUES(r, r, want);
    nd_tensor *tr = nd_reshape(t, ND_SHAPE(2, 12));
    OWNS(tr, x);
    for (int f = 0; f < 24; f++) want[f] = (float)((f % 6) * 4 + f / 6);
    VALUES(tr, tr, want);
}
END_TEST

/* ---- edge shapes -------------------------------------------------------- */

START_TEST(test_zero_size) {
    nd_tensor *x = nd_zeros(ND_SHAPE(0, 3));
    ck_assert_int_eq(x->ndim, 2);
    ck_assert_int_eq(nd_numel(x), 0);
    ck_assert(nd_is_contiguous(x));

    nd_tensor *t = nd_transpose(x, 0, 1);
    ck_assert(t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 0);
    SHARES(t, x);
    nd_tensor *v = nd_view(x, ND_SHAPE(3, 0));
    ck_assert(v->ndim == 2 && v->shape[0] == 3 && v->shape[1] == 0);
    nd_tensor *f = nd_reshape(t, ND_SHAPE(-1));
    ck_assert(f->ndim == 1 && f->shape[0] == 0);
    nd_tensor *g = nd_view(x, ND_SHAPE(2, 0, 5));
    ck_assert(g->ndim == 3 && g->shape[0] == 2 && g->shape[1] == 0 &&
              g->shape[2] == 5);
    EXPECT_FATAL(nd_view(x, ND_SHAPE(0, -1)),
                 "nanodiff: view: cannot infer -1 in [0,-1] for a tensor of "
                 "shape [0,3]");
    EXPECT_FATAL(nd_view(x, ND_SHAPE(1)),
                 "nanodiff: view: shape [1] has 1 elements; the tensor of shape "
                 "[0,3] has 0");

    nd_tensor *s = nd_slice(x, 1, 1, ND_END, 1);
    ck_assert(s->ndim == 2 && s->shape[0] == 0 && s->shape[1] == 2);
    nd_tensor *y = iota(ND_SHAPE(4, 3));
    nd_tensor *empty = nd_slice(y, 0, 3, 1, 1);
    ck_assert(empty->shape[0] == 0 && empty->shape[1] == 3);
    ck_assert_int_eq(nd_numel(empty), 0);

    nd_tensor *e = nd_expand(iota(ND_SHAPE(1, 3)), ND_SHAPE(0, 3));
    ck_assert(e->shape[0] == 0 && e->shape[1] == 3);
    nd_tensor *u = nd_unsqueeze(x, 1);
    ck_assert(u->ndim == 3 && u->shape[0] == 0 && u->shape[1] == 1 &&
              u->shape[2] == 3);
    nd_tensor *q = nd_squeeze(u, 1);
    ck_assert(q->ndim == 2 && q->shape[0] == 0 && q->shape[1] == 3);

    nd_tensor *c = nd_contiguous(t);
    ck_assert(c->ndim == 2 && c->shape[0] == 3 && c->shape[1] == 0);
    nd_tensor *fl = nd_flatten(empty);
    ck_assert(fl->ndim == 1 && fl->shape[0] == 0);

    /* Filling nothing leaves the neighbours alone. */
    nd_fill_(empty, -1.0f);
    nd_fill_(t, -1.0f);
    for (int i = 0; i < 12; i++) ck_assert_float_eq(nd_data(y)[i], (float)i);
}
END_TEST

START_TEST(test_zero_d) {
    nd_tensor *s = nd_scalar(5.0f);
    ck_assert_int_eq(s->ndim, 0);
    ck_assert_int_eq(nd_numel(s), 1);
    ck_assert(nd_is_contiguous(s));
    ck_assert_float_eq(nd_item(s), 5.0f);
    ck_assert_float_eq(nd_get(s, NULL), 5.0f);

    nd_tensor *a = nd_view(s, ND_SHAPE(1, 1, 1));
    LAYOUT(a, 3, I64(1, 1, 1), I64(0, 0, 0), 0);
    SHARES(a, s);
    nd_tensor *b = nd_reshape(s, ND_SHAPE(-1));
    LAYOUT(b, 1, I64(1), I64(1), 0);
    nd_tensor *back = nd_view(a, NULL, 0);
    ck_assert_int_eq(back->ndim, 0);
    SHARES(back, s);
    nd_tensor *u = nd_unsqueeze(s, 0);
    LAYOUT(u, 1, I64(1), I64(1), 0);
    nd_tensor *uu = nd_unsqueeze(s, -1);
    LAYOUT(uu, 1, I64(1), I64(1), 0);
    nd_tensor *q = nd_squeeze(u, 0);
    ck_assert_int_eq(q->ndim, 0);
    SHARES(q, s);
    nd_tensor *p = nd_permute(s, NULL, 0);
    ck_assert_int_eq(p->ndim, 0);
    nd_tensor *c = nd_contiguous(s);
    ck_assert_int_eq(c->ndim, 0);
    SHARES(c, s);
    nd_tensor *e = nd_expand(s, NULL, 0);
    ck_assert_int_eq(e->ndim, 0);

    nd_set(a, I64(0, 0, 0), -6.0f);
    ck_assert_float_eq(nd_item(s), -6.0f);
    nd_fill_(s, 8.0f);
    ck_assert_float_eq(nd_get(b, I64(0)), 8.0f);
    ck_assert_float_eq(nd_item(q), 8.0f);

    /* A 0-d element of a larger tensor. */
    nd_tensor *x = iota(ND_SHAPE(2, 3));
    nd_tensor *one = nd_slice(nd_slice(x, 0, 1, 2, 1), 1, 2, 3, 1);
    nd_tensor *z = nd_view(one, NULL, 0);
    ck_assert_int_eq(z->ndim, 0);
    ck_assert_int_eq(z->offset, 5);
    ck_assert_float_eq(nd_item(z), 5.0f);
    nd_fill_(z, -1.0f);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(nd_data(x)[i], i == 5 ? -1.0f : (float)i);

    EXPECT_FATAL(nd_squeeze(s, 0),
                 "nanodiff: squeeze: axis 0 is out of range for a 0-d tensor");
    EXPECT_FATAL(nd_slice(s, 0, 0, 1, 1),
                 "nanodiff: slice: axis 0 is out of range for a 0-d tensor");
    EXPECT_FATAL(nd_view(s, ND_SHAPE(2)),
                 "nanodiff: view: shape [2] has 2 elements; the tensor of shape "
                 "[] has 1");
}
END_TEST

START_TEST(test_size_one_dims) {
    nd_tensor *x = iota(ND_SHAPE(1, 3, 1, 2));
    nd_tensor *p = nd_permute(x, ND_AXES(3, 2, 1, 0)); /* [2,1,3,1] */
    LAYOUT(p, 4, I64(2, 1, 3, 1), I64(1, 0, 2, 0), 0);
    float want[6];
    for (int f = 0; f < 6; f++) want[f] = (float)((f % 3) * 2 + f / 3);
    VALUES(x, p, want);
    ck_assert(!nd_is_contiguous(p));

    nd_tensor *v = nd_view(p, ND_SHAPE(2, 3));
    LAYOUT(v, 2, I64(2, 3), I64(1, 2), 0);
    VALUES(x, v, want);
    nd_tensor *q = nd_squeeze(nd_squeeze(p, 3), 1);
    LAYOUT(q, 2, I64(2, 3), I64(1, 2), 0);
    VALUES(x, q, want);

    nd_tensor *e = nd_expand(x, ND_SHAPE(2, 3, 4, 2));
    LAYOUT(e, 4, I64(2, 3, 4, 2), I64(0, 2, 0, 1), 0);
    nd_tensor *sl = nd_slice(x, 2, 0, ND_END, 5); /* size-1 axis, big step */
    LAYOUT(sl, 4, I64(1, 3, 1, 2), I64(0, 2, 0, 1), 0);
    SHARES(sl, x);
    for (int f = 0; f < 6; f++) want[f] = (float)f;
    VALUES(x, sl, want);
    nd_tensor *sl0 = nd_slice(x, 0, 1, ND_END, 1);
    ck_assert_int_eq(sl0->shape[0], 0);

    nd_tensor *ones = nd_ones(ND_SHAPE(1, 1, 1));
    nd_tensor *ov = nd_reshape(ones, ND_SHAPE(1));
    LAYOUT(ov, 1, I64(1), I64(1), 0);
    SHARES(ov, ones);
    nd_tensor *ot = nd_permute(ones, ND_AXES(2, 0, 1));
    ck_assert(nd_is_contiguous(ot));
    nd_tensor *oc = nd_contiguous(ot);
    SHARES(oc, ones);
}
END_TEST

/* nd_copy_, nd_add_ and nd_fill_ run on the pool: on tensors several
 * ND_GRAIN chunks long, with 1, 2 and 3 threads, each element is what a
 * plain loop over the raw data gives, through a contiguous, a transposed
 * and a strided destination and sources broadcast across and along rows;
 * a view overlapping its destination another way (a copy shifted by one)
 * keeps the serial memmove result, and a tensor added to itself doubles. */
START_TEST(test_in_place_on_threads) {
    int64_t n = 3 * 100003, rows = 700, cols = 300;
    nd_tensor *a = t_uniform(61, ND_SHAPE(n), -4, 4), *b = t_uniform(62, ND_SHAPE(n), -4, 4);
    nd_tensor *m = t_uniform(63, ND_SHAPE(rows, cols), -4, 4);
    nd_tensor *r = t_uniform(64, ND_SHAPE(rows), -4, 4);
    const float *pa = nd_data(a), *pb = nd_data(b), *pm = nd_data(m), *pr = nd_data(r);
    int initial = nd_get_num_threads();
    for (int threads = 1; threads <= 3; threads++) {
        nd_set_num_threads(threads);
        nd_tensor *c = nd_clone(a);
        nd_add_(c, b);
        const float *pc = nd_data(c);
        int bad = 0;
        for (int64_t i = 0; i < n; i++) bad += pc[i] != pa[i] + pb[i];
        nd_add_(c, c);
        for (int64_t i = 0; i < n; i++) bad += pc[i] != 2.0f * (pa[i] + pb[i]);
        ck_assert_msg(bad == 0, "%d threads: add_ of a clone: %d wrong", threads, bad);

        /* base [cols, rows] written through its transpose, then added a
         * row vector broadcast over its first axis */
        nd_tensor *base = nd_zeros(ND_SHAPE(cols, rows));
        nd_tensor *bt = nd_transpose(base, 0, 1);
        nd_copy_(bt, m);
        nd_add_(base, r);
        const float *pbase = nd_data(base);
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++)
                bad += pbase[j * rows + i] != pm[i * cols + j] + pr[i];
        ck_assert_msg(bad == 0, "%d threads: transposed copy_, broadcast add_: %d wrong",
                      threads, bad);
        /* and a column broadcast along rows: a source stride of 0 within a row */
        nd_tensor *mc = nd_clone(m);
        nd_add_(mc, nd_reshape(r, ND_SHAPE(rows, 1)));
        const float *pmc = nd_data(mc);
        for (int64_t i = 0; i < rows * cols; i++) bad += pmc[i] != pm[i] + pr[i / cols];
        ck_assert_msg(bad == 0, "%d threads: add_ of a column: %d wrong", threads, bad);

        /* every other element of c set, the rest kept */
        nd_tensor *odd = nd_slice(c, 0, 1, n, 2);
        nd_fill_(odd, 0.5f);
        for (int64_t i = 0; i < n; i++)
            bad += pc[i] != (i % 2 ? 0.5f : 2.0f * (pa[i] + pb[i]));
        ck_assert_msg(bad == 0, "%d threads: fill_ of a strided view: %d wrong", threads, bad);

        nd_tensor *s = nd_clone(a);
        nd_copy_(nd_slice(s, 0, 1, n, 1), nd_slice(s, 0, 0, n - 1, 1));
        const float *ps = nd_data(s);
        for (int64_t i = 0; i < n; i++) bad += ps[i] != pa[i > 0 ? i - 1 : 0];
        ck_assert_msg(bad == 0, "%d threads: copy_ shifted by one in place: %d wrong",
                      threads, bad);
    }
    nd_set_num_threads(initial);
}
END_TEST

TCase *tcase_views(void) {
    TCase *tc = nd_test_case("views");
    tcase_add_test(tc, test_view_contiguous);
    tcase_add_test(tc, test_in_place_on_threads);
    tcase_add_test(tc, test_view_errors);
    tcase_add_test(tc, test_permute);
    tcase_add_test(tc, test_transpose);
    tcase_add_test(tc, test_slice_1d);
    tcase_add_test(tc, test_slice_huge_step);
    tcase_add_test(tc, test_slice_2d);
    tcase_add_test(tc, test_expand);
    tcase_add_test(tc, test_squeeze_unsqueeze);
    tcase_add_test(tc, test_owns_storage);
    tcase_add_test(tc, test_contiguous);
    tcase_add_test(tc, test_contiguous_large_transposes);
    tcase_add_test(tc, test_flatten);
    tcase_add_test(tc, test_reshape_permuted_view);
    tcase_add_test(tc, test_reshape_sliced_view);
    tcase_add_test(tc, test_reshape_size_one_axes);
    tcase_add_test(tc, test_reshape_expanded);
    tcase_add_test(tc, test_view_incompatible);
    tcase_add_test(tc, test_zero_size);
    tcase_add_test(tc, test_zero_d);
    tcase_add_test(tc, test_size_one_dims);
    return tc;
}
