/* Creating tensors, copying into them, and comparing them. */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "kernels.h"

nd_tensor *nd_empty(const int64_t *shape, int ndim) {
    return nd__new(shape, ndim, "empty");
}

static nd_tensor *filled(const int64_t *shape, int ndim, float value, const char *op) {
    nd_tensor *t = nd__new(shape, ndim, op);
    nd_fill_(t, value);
    return t;
}

nd_tensor *nd_full(const int64_t *shape, int ndim, float value) {
    return filled(shape, ndim, value, "full");
}

nd_tensor *nd_zeros(const int64_t *shape, int ndim) {
    nd_tensor *t = nd__new(shape, ndim, "zeros");
    memset(nd_data(t), 0, (size_t)nd_numel(t) * sizeof(float));
    return t;
}

nd_tensor *nd_ones(const int64_t *shape, int ndim) { return filled(shape, ndim, 1.0f, "ones"); }
nd_tensor *nd_scalar(float value) { return filled(NULL, 0, value, "scalar"); }

nd_tensor *nd_zeros_like(const nd_tensor *x) {
    nd__check_tensor(x, "zeros_like");
    return filled(x->shape, x->ndim, 0.0f, "zeros_like");
}

nd_tensor *nd_full_like(const nd_tensor *x, float value) {
    nd__check_tensor(x, "full_like");
    return filled(x->shape, x->ndim, value, "full_like");
}

nd_tensor *nd_arange(double start, double stop, double step) {
    if (!(step != 0) || !isfinite(step) || !isfinite(start) || !isfinite(stop))
        nd_fatal("arange", "start %g, stop %g, step %g: need finite values and "
                 "a nonzero step", start, stop, step);
    double count = ceil((stop - start) / step);
    if (count < 0) count = 0;
    if (count > 1e12) nd_fatal("arange", "%g elements is too many", count);
    int64_t n = (int64_t)count;
    nd_tensor *t = nd__new(ND_SHAPE(n), "arange");
    float *p = nd_data(t);
    for (int64_t i = 0; i < n; i++) p[i] = (float)(start + (double)i * step);
    return t;
}

nd_tensor *nd_linspace(double start, double end, int64_t steps) {
    if (steps < 0 || !isfinite(start) || !isfinite(end))
        nd_fatal("linspace", "start %g, end %g, steps %lld: need finite ends and "
                 "steps >= 0", start, end, (long long)steps);
    nd_tensor *t = nd__new(ND_SHAPE(steps), "linspace");
    float *p = nd_data(t);
    double d = steps > 1 ? (end - start) / (double)(steps - 1) : 0.0;
    /* Count from the nearer end so that both ends are exact. */
    for (int64_t i = 0; i < steps; i++)
        p[i] = (float)(i < steps / 2 ? start + (double)i * d
                                     : end - (double)(steps - 1 - i) * d);
    return t;
}

nd_tensor *nd_from_buffer(const float *data, const int64_t *shape, int ndim) {
    nd__check_shape(shape, ndim, "from_buffer");
    int64_t n = nd__prod(shape, ndim);
    if (n > 0 && !data) nd_fatal("from_buffer", "data is NULL");
    nd_tensor *t = nd__new(shape, ndim, "from_buffer");
    if (n > 0) memcpy(nd_data(t), data, (size_t)n * sizeof(float));
    return t;
}

/* In-place copies, sums and fills run on the thread pool in chunks of
 * ND_GRAIN elements: they are how gradients are cloned, accumulated into
 * and zeroed, a pass over memory per parameter and step. Every element is
 * computed alone, so the thread count changes no bit. Rows of unit stride
 * on both sides take memmove, and the kernel set's add (a broadcast
 * source too); the strided loops serve the rest. */
static void copy_row(void *ctx, int64_t n, float *const *p, const int64_t *s) {
    (void)ctx;
    float *y = p[0];
    const float *x = p[1];
    if (s[0] == 1 && s[1] == 1) {
        memmove(y, x, (size_t)n * sizeof(float)); /* y may be x */
        return;
    }
    for (int64_t i = 0; i < n; i++) y[i * s[0]] = x[i * s[1]];
}

static void check_writable(const nd_tensor *dst, const char *op) {
    for (int i = 0; i < dst->ndim; i++)
        if (dst->strides[i] == 0 && dst->shape[i] > 1)
            nd_fatal(op, "destination is a broadcast view (axis %d has stride 0)", i);
}

static void add_row(void *ctx, int64_t n, float *const *p, const int64_t *s) {
    const nd_kernels *k = ctx;
    float *y = p[0];
    const float *x = p[1];
    if (s[0] == 1 && (s[1] == 1 || s[1] == 0)) {
        k->vadd(n, y, 1, x, s[1], y); /* y + x, an element at a time in place */
        return;
    }
    for (int64_t i = 0; i < n; i++) y[i * s[0]] += x[i * s[1]];
}

/* The destination checks of nd_copy_ and nd_add_; returns src's strides
 * seen through dst's shape. */
static void into(nd_tensor *dst, const nd_tensor *src, int64_t (*st)[ND_MAX_DIMS],
                 const char *op) {
    nd__check_tensor(dst, op);
    nd__check_tensor(src, op);
    int64_t shape[ND_MAX_DIMS];
    int n = nd__broadcast_shape(dst->shape, dst->ndim, src->shape, src->ndim,
                                shape, op);
    bool fits = n == dst->ndim;
    for (int i = 0; fits && i < n; i++) fits = shape[i] == dst->shape[i];
    if (!fits) {
        char a[ND_SHAPE_STR_LEN], b[ND_SHAPE_STR_LEN];
        nd_fatal(op, "source of shape %s does not broadcast to destination %s",
                 nd_shape_str(src->shape, src->ndim, b),
                 nd_shape_str(dst->shape, dst->ndim, a));
    }
    check_writable(dst, op);
    memcpy(st[0], dst->strides, sizeof st[0]);
    nd__broadcast_strides(src, dst->shape, dst->ndim, st[1]);
}

/* Whether the elements of dst may be written in any order: src lies in
 * other storage, or each element of dst reads only itself. Otherwise (a
 * view overlapping dst another way) the copy or sum keeps the one serial
 * order it has always had. */
static bool any_order(const nd_tensor *dst, const nd_tensor *src,
                      const int64_t (*st)[ND_MAX_DIMS]) {
    if (dst->storage != src->storage) return true;
    if (dst->offset != src->offset) return false;
    for (int i = 0; i < dst->ndim; i++)
        if (dst->shape[i] > 1 && st[0][i] != st[1][i]) return false;
    return true;
}

static void run_into(nd_tensor *dst, const nd_tensor *src, int64_t (*st)[ND_MAX_DIMS],
                     nd_row_fn row, void *ctx) {
    float *base[2] = {nd_data(dst), nd_data(src)};
    const int64_t(*cst)[ND_MAX_DIMS] = (const int64_t(*)[ND_MAX_DIMS])st;
    if (any_order(dst, src, cst))
        nd__loop_parallel(2, dst->ndim, dst->shape, cst, base, row, ctx, ND_GRAIN);
    else nd__loop(2, dst->ndim, dst->shape, cst, base, row, ctx);
}

void nd_copy_(nd_tensor *dst, const nd_tensor *src) {
    int64_t st[2][ND_MAX_DIMS];
    into(dst, src, st, "copy_");
    run_into(dst, src, st, copy_row, NULL);
}

void nd_add_(nd_tensor *dst, const nd_tensor *src) {
    int64_t st[2][ND_MAX_DIMS];
    into(dst, src, st, "add_");
    run_into(dst, src, st, add_row, (void *)nd__kernels());
}

static void fill_row(void *ctx, int64_t n, float *const *p, const int64_t *s) {
    float v = *(const float *)ctx;
    float *y = p[0];
    if (s[0] == 1) {
        for (int64_t i = 0; i < n; i++) y[i] = v;
        return;
    }
    for (int64_t i = 0; i < n; i++) y[i * s[0]] = v;
}

void nd_fill_(nd_tensor *dst, float value) {
    nd__check_tensor(dst, "fill_");
    float *base[1] = {nd_data(dst)};
    const int64_t(*st)[ND_MAX_DIMS] = (const int64_t(*)[ND_MAX_DIMS])dst->strides;
    bool broadcast = false; /* elements written more than once: one thread */
    for (int i = 0; i < dst->ndim; i++) broadcast |= dst->strides[i] == 0 && dst->shape[i] > 1;
    if (broadcast) nd__loop(1, dst->ndim, dst->shape, st, base, fill_row, &value);
    else nd__loop_parallel(1, dst->ndim, dst->shape, st, base, fill_row, &value, ND_GRAIN);
}

nd_tensor *nd_clone(const nd_tensor *x) {
    nd__check_tensor(x, "clone");
    nd_tensor *y = nd__new(x->shape, x->ndim, "clone");
    nd_copy_(y, x);
    nd__emit_simple(ND_OP_CLONE, y, x, NULL);
    return y;
}

struct close_ctx {
    double rtol, atol;
    bool equal_nan, all;
};

static void close_row(void *ctx, int64_t n, float *const *p, const int64_t *s) {
    struct close_ctx *c = ctx;
    for (int64_t i = 0; i < n && c->all; i++) {
        double a = p[0][i * s[0]], b = p[1][i * s[1]];
        if (isnan(a) || isnan(b)) c->all = c->equal_nan && isnan(a) && isnan(b);
        else if (isinf(a) || isinf(b)) c->all = a == b;
        else c->all = fabs(a - b) <= c->atol + c->rtol * fabs(b);
    }
}

bool nd_allclose(const nd_tensor *a, const nd_tensor *b, double rtol,
                 double atol, bool equal_nan) {
    nd__check_tensor(a, "allclose");
    nd__check_tensor(b, "allclose");
    int64_t shape[ND_MAX_DIMS], st[2][ND_MAX_DIMS];
    int n = nd__broadcast_shape(a->shape, a->ndim, b->shape, b->ndim, shape,
                                "allclose");
    nd__broadcast_strides(a, shape, n, st[0]);
    nd__broadcast_strides(b, shape, n, st[1]);
    struct close_ctx c = {rtol, atol, equal_nan, true};
    float *base[2] = {nd_data(a), nd_data(b)};
    nd__loop(2, n, shape, (const int64_t(*)[ND_MAX_DIMS])st, base, close_row, &c);
    return c.all;
}
