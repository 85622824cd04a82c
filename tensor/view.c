/* Views: new shape and strides over the same storage, nothing copied
 * (DESIGN principle 3). A write through a view is seen by every tensor
 * that shares its storage. */
#include <string.h>

#include "internal.h"

/* Resolve one -1 entry and check that the element count is preserved. */
static void infer_shape(const nd_tensor *x, const int64_t *shape, int ndim,
                        int64_t *out, const char *op) {
    nd__check_tensor(x, op);
    if (ndim < 0 || ndim > ND_MAX_DIMS)
        nd_fatal(op, "%d dimensions requested; between 0 and %d are supported",
                 ndim, ND_MAX_DIMS);
    if (ndim > 0 && !shape) nd_fatal(op, "shape is NULL");
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        out[i] = shape[i];
        if (shape[i] == -1) {
            if (infer >= 0) nd_fatal(op, "only one size may be -1");
            infer = i;
        } else if (shape[i] < 0) {
            char s[ND_SHAPE_STR_LEN];
            nd_fatal(op, "invalid size %lld in %s", (long long)shape[i],
                     nd_shape_str(shape, ndim, s));
        } else {
            known *= shape[i];
        }
    }
    int64_t n = nd_numel(x);
    if (infer >= 0) {
        if (known == 0 || n % known != 0) {
            char s[ND_SHAPE_STR_LEN], t[ND_SHAPE_STR_LEN];
            nd_fatal(op, "cannot infer -1 in %s for a tensor of shape %s",
                     nd_shape_str(shape, ndim, s), nd_shape_str(x->shape, x->ndim, t));
        }
        out[infer] = n / known;
    }
    if (nd__prod(out, ndim) != n) {
        char s[ND_SHAPE_STR_LEN], t[ND_SHAPE_STR_LEN];
        nd_fatal(op, "shape %s has %lld elements; the tensor of shape %s has %lld",
                 nd_shape_str(out, ndim, s), (long long)nd__prod(out, ndim),
                 nd_shape_str(x->shape, x->ndim, t), (long long)n);
    }
}

/* Strides that let `shape` walk x's elements in row-major order without a
 * copy, or false. x's axes fall into runs that are contiguous with each
 * other (stride[i] == stride[i+1] * shape[i+1]); a view exists when the
 * new axes split into consecutive groups whose sizes multiply to exactly
 * those runs. */
static bool view_strides(const nd_tensor *x, const int64_t *shape, int ndim,
                         int64_t *strides) {
    if (nd_numel(x) == 0) {
        nd__contiguous_strides(shape, ndim, strides);
        return true;
    }
    int64_t run_size[ND_MAX_DIMS], run_stride[ND_MAX_DIMS];
    int nruns = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (x->shape[i] == 1) continue;
        if (nruns > 0 && run_stride[nruns - 1] == x->strides[i] * x->shape[i]) {
            run_size[nruns - 1] *= x->shape[i];
            run_stride[nruns - 1] = x->strides[i];
        } else {
            run_size[nruns] = x->shape[i];
            run_stride[nruns] = x->strides[i];
            nruns++;
        }
    }
    int r = 0, first = 0;
    int64_t acc = 1;
    for (int j = 0; j < ndim; j++) {
        if (shape[j] == 1) continue;
        if (acc == 1) first = j;
        acc *= shape[j];
        if (r >= nruns || run_size[r] % acc != 0) return false;
        if (acc == run_size[r]) {
            int64_t s = run_stride[r];
            for (int k = j; k >= first; k--) {
                if (shape[k] == 1) continue;
                strides[k] = s;
                s *= shape[k];
            }
            r++;
            acc = 1;
        }
    }
    if (r != nruns || acc != 1) return false;
    /* Size-1 axes may take any stride; give them the contiguous one. */
    int64_t next = 1;
    for (int j = ndim - 1; j >= 0; j--) {
        if (shape[j] == 1) strides[j] = next;
        else next = strides[j] * shape[j];
    }
    return true;
}

nd_tensor *nd_view(const nd_tensor *x, const int64_t *shape, int ndim) {
    int64_t s[ND_MAX_DIMS], st[ND_MAX_DIMS];
    infer_shape(x, shape, ndim, s, "view");
    if (!view_strides(x, s, ndim, st)) {
        char a[ND_SHAPE_STR_LEN], b[ND_SHAPE_STR_LEN], c[ND_SHAPE_STR_LEN];
        nd_fatal("view", "shape %s with strides %s cannot be viewed as %s; "
                 "use reshape (which copies) or contiguous first",
                 nd_shape_str(x->shape, x->ndim, a),
                 nd_shape_str(x->strides, x->ndim, b), nd_shape_str(s, ndim, c));
    }
    nd_tensor *y = nd__view_of(x, ndim, s, st, x->offset);
    nd__emit_simple(ND_OP_VIEW, y, x, NULL);
    return y;
}

nd_tensor *nd_reshape(const nd_tensor *x, const int64_t *shape, int ndim) {
    int64_t s[ND_MAX_DIMS], st[ND_MAX_DIMS];
    infer_shape(x, shape, ndim, s, "reshape");
    nd_tensor *y;
    if (view_strides(x, s, ndim, st)) {
        y = nd__view_of(x, ndim, s, st, x->offset);
    } else {
        nd__quiet++;
        nd_tensor *c = nd_contiguous(x);
        nd__quiet--;
        nd__contiguous_strides(s, ndim, st);
        y = nd__view_of(c, ndim, s, st, c->offset);
        nd_free(c);
    }
    nd__emit_simple(ND_OP_VIEW, y, x, NULL);
    return y;
}

nd_tensor *nd_flatten(const nd_tensor *x) {
    nd__check_tensor(x, "flatten");
    return nd_reshape(x, ND_SHAPE(-1));
}

nd_tensor *nd_permute(const nd_tensor *x, const int *perm, int ndim) {
    nd__check_tensor(x, "permute");
    if (ndim != x->ndim)
        nd_fatal("permute", "%d axes given for a %d-d tensor", ndim, x->ndim);
    if (ndim > 0 && !perm) nd_fatal("permute", "perm is NULL");
    int64_t shape[ND_MAX_DIMS], strides[ND_MAX_DIMS];
    bool seen[ND_MAX_DIMS] = {false};
    for (int i = 0; i < ndim; i++) {
        int a = nd__axis(perm[i], ndim, "permute");
        if (seen[a]) nd_fatal("permute", "axis %d appears twice", perm[i]);
        seen[a] = true;
        shape[i] = x->shape[a];
        strides[i] = x->strides[a];
    }
    nd_tensor *y = nd__view_of(x, ndim, shape, strides, x->offset);
    const nd_tensor *in[1] = {x};
    nd_op_event e = {.op = ND_OP_PERMUTE, .out = y, .in = in, .nin = 1};
    for (int i = 0; i < ndim; i++) e.args[i] = perm[i] < 0 ? perm[i] + ndim : perm[i];
    nd__emit(&e);
    return y;
}

nd_tensor *nd_transpose(const nd_tensor *x, int axis0, int axis1) {
    nd__check_tensor(x, "transpose");
    int a = nd__axis(axis0, x->ndim, "transpose");
    int b = nd__axis(axis1, x->ndim, "transpose");
    int perm[ND_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) perm[i] = i;
    perm[a] = b;
    perm[b] = a;
    return nd_permute(x, perm, x->ndim);
}

nd_tensor *nd_slice(const nd_tensor *x, int axis, int64_t start, int64_t stop,
                    int64_t step) {
    nd__check_tensor(x, "slice");
    int a = nd__axis(axis, x->ndim, "slice");
    if (step < 1) nd_fatal("slice", "step %lld must be >= 1", (long long)step);
    int64_t n = x->shape[a];
    if (start < 0) start += n;
    if (stop < 0) stop += n;
    if (start < 0) start = 0;
    if (start > n) start = n;
    if (stop < start) stop = start;
    if (stop > n) stop = n;
    int64_t shape[ND_MAX_DIMS], strides[ND_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    memcpy(strides, x->strides, sizeof strides);
    int64_t len = stop - start;
    shape[a] = len == 0 ? 0 : 1 + (len - 1) / step; /* no overflow for huge steps */
    if (shape[a] > 1) strides[a] = x->strides[a] * step;
    int64_t offset = x->offset + (shape[a] > 0 ? start * x->strides[a] : 0);
    nd_tensor *y = nd__view_of(x, x->ndim, shape, strides, offset);
    const nd_tensor *in[1] = {x};
    nd_op_event e = {.op = ND_OP_SLICE, .out = y, .in = in, .nin = 1, .axis = a,
                     .args = {start, step}};
    nd__emit(&e);
    return y;
}

nd_tensor *nd_expand(const nd_tensor *x, const int64_t *shape, int ndim) {
    nd__check_tensor(x, "expand");
    if (ndim < x->ndim || ndim > ND_MAX_DIMS || (ndim > 0 && !shape)) {
        char a[ND_SHAPE_STR_LEN];
        nd_fatal("expand", "cannot expand shape %s to a %d-d shape",
                 nd_shape_str(x->shape, x->ndim, a), ndim);
    }
    int lead = ndim - x->ndim;
    int64_t out[ND_MAX_DIMS], strides[ND_MAX_DIMS];
    for (int i = 0; i < ndim; i++) {
        int64_t have = i < lead ? 1 : x->shape[i - lead];
        int64_t want = shape[i] == -1 && i >= lead ? have : shape[i];
        if (want < 0 || (have != want && have != 1)) {
            char a[ND_SHAPE_STR_LEN], b[ND_SHAPE_STR_LEN];
            nd_fatal("expand", "shape %s cannot be broadcast to %s",
                     nd_shape_str(x->shape, x->ndim, a), nd_shape_str(shape, ndim, b));
        }
        out[i] = want;
        strides[i] = (i < lead || have != want) ? 0 : x->strides[i - lead];
    }
    nd_tensor *y = nd__view_of(x, ndim, out, strides, x->offset);
    nd__emit_simple(ND_OP_EXPAND, y, x, NULL);
    return y;
}

nd_tensor *nd_squeeze(const nd_tensor *x, int axis) {
    nd__check_tensor(x, "squeeze");
    int a = nd__axis(axis, x->ndim, "squeeze");
    if (x->shape[a] != 1) {
        char s[ND_SHAPE_STR_LEN];
        nd_fatal("squeeze", "axis %d of shape %s has size %lld, not 1", axis,
                 nd_shape_str(x->shape, x->ndim, s), (long long)x->shape[a]);
    }
    int64_t shape[ND_MAX_DIMS], strides[ND_MAX_DIMS];
    for (int i = 0, j = 0; i < x->ndim; i++) {
        if (i == a) continue;
        shape[j] = x->shape[i];
        strides[j++] = x->strides[i];
    }
    nd_tensor *y = nd__view_of(x, x->ndim - 1, shape, strides, x->offset);
    const nd_tensor *in[1] = {x};
    nd_op_event e = {.op = ND_OP_SQUEEZE, .out = y, .in = in, .nin = 1, .axis = a};
    nd__emit(&e);
    return y;
}

nd_tensor *nd_unsqueeze(const nd_tensor *x, int axis) {
    nd__check_tensor(x, "unsqueeze");
    if (x->ndim == ND_MAX_DIMS)
        nd_fatal("unsqueeze", "tensor already has %d dimensions", ND_MAX_DIMS);
    if (axis < -(x->ndim + 1) || axis > x->ndim)
        nd_fatal("unsqueeze", "axis %d is out of range for a %d-d tensor (%d..%d)", axis,
                 x->ndim, -(x->ndim + 1), x->ndim);
    int a = axis < 0 ? axis + x->ndim + 1 : axis;
    int64_t shape[ND_MAX_DIMS], strides[ND_MAX_DIMS];
    for (int i = 0, j = 0; i <= x->ndim; i++) {
        if (i == a) {
            shape[i] = 1;
            strides[i] = j < x->ndim ? x->strides[j] * x->shape[j] : 1;
        } else {
            shape[i] = x->shape[j];
            strides[i] = x->strides[j++];
        }
    }
    nd_tensor *y = nd__view_of(x, x->ndim + 1, shape, strides, x->offset);
    const nd_tensor *in[1] = {x};
    nd_op_event e = {.op = ND_OP_UNSQUEEZE, .out = y, .in = in, .nin = 1, .axis = a};
    nd__emit(&e);
    return y;
}

nd_tensor *nd_contiguous(const nd_tensor *x) {
    nd__check_tensor(x, "contiguous");
    nd_tensor *y;
    if (nd_is_contiguous(x)) {
        int64_t st[ND_MAX_DIMS];
        nd__contiguous_strides(x->shape, x->ndim, st);
        y = nd__view_of(x, x->ndim, x->shape, st, x->offset);
    } else {
        nd__quiet++;
        y = nd_clone(x);
        nd__quiet--;
    }
    nd__emit_simple(ND_OP_CONTIGUOUS, y, x, NULL);
    return y;
}
