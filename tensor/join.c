/* Joining and padding: the output is allocated once and each input is
 * copied into a slice (a view) of it. */
#include <string.h>

#include "internal.h"

nd_tensor *nd_concat(const nd_tensor *const *xs, int n, int axis) {
    if (!xs) nd_fatal("concat", "tensor list is NULL");
    if (n < 1) nd_fatal("concat", "needs at least one tensor, got %d", n);
    for (int i = 0; i < n; i++) nd__check_tensor(xs[i], "concat");
    const nd_tensor *x0 = xs[0];
    int a = nd__axis(axis, x0->ndim, "concat");
    int64_t shape[ND_MAX_DIMS];
    memcpy(shape, x0->shape, sizeof shape);
    shape[a] = 0;
    for (int i = 0; i < n; i++) {
        bool ok = xs[i]->ndim == x0->ndim;
        for (int d = 0; ok && d < x0->ndim; d++)
            ok = d == a || xs[i]->shape[d] == x0->shape[d];
        if (!ok) {
            char s0[ND_SHAPE_STR_LEN], si[ND_SHAPE_STR_LEN];
            nd_fatal("concat", "shapes %s and %s differ outside axis %d",
                     nd_shape_str(x0->shape, x0->ndim, s0),
                     nd_shape_str(xs[i]->shape, xs[i]->ndim, si), axis);
        }
        shape[a] += xs[i]->shape[a];
    }
    nd_tensor *y = nd__new(shape, x0->ndim, "concat");
    int64_t at = 0;
    nd__quiet++;
    for (int i = 0; i < n; i++) {
        nd_tensor *part = nd_slice(y, a, at, at + xs[i]->shape[a], 1);
        nd_copy_(part, xs[i]);
        nd_free(part);
        at += xs[i]->shape[a];
    }
    nd__quiet--;
    nd_op_event e = {.op = ND_OP_CONCAT, .out = y, .in = xs, .nin = n, .axis = a};
    nd__emit(&e);
    return y;
}

nd_tensor *nd_stack(const nd_tensor *const *xs, int n, int axis) {
    if (!xs) nd_fatal("stack", "tensor list is NULL");
    if (n < 1) nd_fatal("stack", "needs at least one tensor, got %d", n);
    for (int i = 0; i < n; i++) {
        nd__check_tensor(xs[i], "stack");
        if (!nd_same_shape(xs[i], xs[0])) {
            char s0[ND_SHAPE_STR_LEN], si[ND_SHAPE_STR_LEN];
            nd_fatal("stack", "shapes %s and %s differ",
                     nd_shape_str(xs[0]->shape, xs[0]->ndim, s0),
                     nd_shape_str(xs[i]->shape, xs[i]->ndim, si));
        }
    }
    int nd = xs[0]->ndim;
    if (nd == ND_MAX_DIMS)
        nd_fatal("stack", "tensors already have %d dimensions", ND_MAX_DIMS);
    if (axis < -(nd + 1) || axis > nd)
        nd_fatal("stack", "axis %d is out of range for stacking %d-d tensors (%d..%d)",
                 axis, nd, -(nd + 1), nd);
    size_t bytes = (size_t)n * sizeof(nd_tensor *);
    nd_tensor **parts = nd__alloc(bytes, "stack");
    nd__quiet++;
    for (int i = 0; i < n; i++) parts[i] = nd_unsqueeze(xs[i], axis);
    nd_tensor *y = nd_concat((const nd_tensor *const *)parts, n, axis);
    for (int i = 0; i < n; i++) nd_free(parts[i]);
    nd__quiet--;
    nd__release(parts, bytes);
    nd_op_event e = {.op = ND_OP_STACK, .out = y, .in = xs, .nin = n,
                     .axis = axis < 0 ? axis + nd + 1 : axis};
    nd__emit(&e);
    return y;
}

nd_tensor *nd_pad(const nd_tensor *x, const int64_t *pads, float value) {
    nd__check_tensor(x, "pad");
    if (x->ndim > 0 && !pads) nd_fatal("pad", "pads is NULL");
    int64_t shape[ND_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        if (pads[2 * i] < 0 || pads[2 * i + 1] < 0)
            nd_fatal("pad", "axis %d: padding %lld before, %lld after; both must be >= 0",
                     i, (long long)pads[2 * i], (long long)pads[2 * i + 1]);
        shape[i] = x->shape[i] + pads[2 * i] + pads[2 * i + 1];
    }
    nd__quiet++;
    nd_tensor *y = nd_full(shape, x->ndim, value);
    nd_tensor *inner = nd__view_of(y, y->ndim, y->shape, y->strides, y->offset);
    for (int i = 0; i < x->ndim; i++) {
        nd_tensor *s = nd_slice(inner, i, pads[2 * i], pads[2 * i] + x->shape[i], 1);
        nd_free(inner);
        inner = s;
    }
    nd_copy_(inner, x);
    nd_free(inner);
    nd__quiet--;
    const nd_tensor *in[1] = {x};
    nd_op_event e = {.op = ND_OP_PAD, .out = y, .in = in, .nin = 1, .scalars = {value}};
    for (int i = 0; i < 2 * x->ndim; i++) e.args[i] = pads[i];
    nd__emit(&e);
    return y;
}
