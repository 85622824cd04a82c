/* Indexing along one axis by a list of positions: index_select picks
 * slices, index_add adds slices back at positions. Each is the other's
 * gradient (autograd/rules_shape.c). Indices are whole numbers stored as
 * floats, as labels and timesteps are everywhere in nanodiff. */
#include <math.h>

#include "internal.h"

/* index [K] of whole numbers in [0, size): read into a new array */
static int64_t *read_index(const nd_tensor *index, int64_t size, const char *op) {
    nd__check_tensor(index, op);
    char s[ND_SHAPE_STR_LEN];
    if (index->ndim != 1)
        nd_fatal(op, "index %s must be 1-d, [K]", nd_shape_str(index->shape, index->ndim, s));
    int64_t k = index->shape[0];
    int64_t *at = nd__alloc((size_t)(k ? k : 1) * sizeof *at, op);
    for (int64_t i = 0; i < k; i++) {
        float v = nd_get(index, &i);
        if (!(v == floorf(v) && v >= 0.0f && (double)v < (double)size)) {
            nd__release(at, (size_t)(k ? k : 1) * sizeof *at);
            nd_fatal(op, "index[%lld] = %g is not a whole number in [0, %lld)", (long long)i,
                     (double)v, (long long)size);
        }
        at[i] = (int64_t)v;
    }
    return at;
}

/* The slice of t at position i along axis a (a view). */
static nd_tensor *at_axis(const nd_tensor *t, int a, int64_t i) {
    return nd_slice(t, a, i, i + 1, 1);
}

/* y[..., k, ...] = x[..., index[k], ...]
 * x [..., D, ...], index [K] -> y [..., K, ...] (K at axis) */
nd_tensor *nd_index_select(const nd_tensor *x, int axis, const nd_tensor *index) {
    nd__check_tensor(x, "index_select");
    if (x->ndim == 0) nd_fatal("index_select", "x is 0-d: there is no axis to index");
    int a = nd__axis(axis, x->ndim, "index_select");
    int64_t *at = read_index(index, x->shape[a], "index_select");
    int64_t k = index->shape[0], shape[ND_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = d == a ? k : x->shape[d];
    nd_tensor *y = nd__new(shape, x->ndim, "index_select");
    nd__quiet++;
    for (int64_t i = 0; i < k; i++) {
        nd_tensor *dst = at_axis(y, a, i), *src = at_axis(x, a, at[i]);
        nd_copy_(dst, src);
        nd_free(dst);
        nd_free(src);
    }
    nd__quiet--;
    nd__release(at, (size_t)(k ? k : 1) * sizeof *at);
    const nd_tensor *in[2] = {x, index};
    nd_op_event e = {.op = ND_OP_INDEX_SELECT, .out = y, .in = in, .nin = 2, .axis = a};
    nd__emit(&e);
    return y;
}

/* y = x, then y[..., index[k], ...] += src[..., k, ...] for k = 0, 1, ...
 * (a repeated index adds each of its slices, in order)
 * x [..., D, ...], index [K], src [..., K, ...] -> y as x */
nd_tensor *nd_index_add(const nd_tensor *x, int axis, const nd_tensor *index,
                        const nd_tensor *src) {
    nd__check_tensor(x, "index_add");
    nd__check_tensor(src, "index_add");
    if (x->ndim == 0) nd_fatal("index_add", "x is 0-d: there is no axis to index");
    int a = nd__axis(axis, x->ndim, "index_add");
    int64_t *at = read_index(index, x->shape[a], "index_add");
    int64_t k = index->shape[0];
    bool ok = src->ndim == x->ndim;
    for (int d = 0; ok && d < x->ndim; d++) ok = src->shape[d] == (d == a ? k : x->shape[d]);
    if (!ok) {
        char sx[ND_SHAPE_STR_LEN], ss[ND_SHAPE_STR_LEN];
        nd__release(at, (size_t)(k ? k : 1) * sizeof *at);
        nd_fatal("index_add", "src %s must be x %s with %lld (the index's length) at axis %d",
                 nd_shape_str(src->shape, src->ndim, ss), nd_shape_str(x->shape, x->ndim, sx),
                 (long long)k, a);
    }
    nd_tensor *y = nd__new(x->shape, x->ndim, "index_add");
    nd__quiet++;
    nd_copy_(y, x);
    for (int64_t i = 0; i < k; i++) {
        nd_tensor *dst = at_axis(y, a, at[i]), *part = at_axis(src, a, i);
        nd_add_(dst, part);
        nd_free(dst);
        nd_free(part);
    }
    nd__quiet--;
    nd__release(at, (size_t)(k ? k : 1) * sizeof *at);
    const nd_tensor *in[3] = {x, index, src};
    nd_op_event e = {.op = ND_OP_INDEX_ADD, .out = y, .in = in, .nin = 3, .axis = a};
    nd__emit(&e);
    return y;
}
