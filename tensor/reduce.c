/* Reductions over a set of axes, and the per-axis ops softmax, log_softmax
 * and argmax. Every output element is computed from its inputs in one
 * fixed row-major order, in double, so results never depend on how work
 * is split. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* The axes being reduced, seen from x: a sub-tensor (shape, strides) that
 * is walked once per output element. */
typedef struct {
    const char *op;
    nd_op id;
    int nred;
    int64_t red_shape[ND_MAX_DIMS], red_strides[ND_MAX_DIMS];
    int64_t count; /* elements per output element */
    int correction;
    bool needs_values; /* max/min of no elements is undefined */
    double (*reduce)(const float *x, const void *plan);
} plan;

static void reduce_row(void *ctx, int64_t n, float *const *p, const int64_t *s) {
    const plan *pl = ctx;
    for (int64_t i = 0; i < n; i++)
        p[0][i * s[0]] = (float)pl->reduce(p[1] + i * s[1], pl);
}

static nd_tensor *reduce(const nd_tensor *x, const int *axes, int naxes,
                         bool keepdim, plan *pl) {
    nd__check_tensor(x, pl->op);
    bool red[ND_MAX_DIMS] = {false};
    if (!axes) {
        for (int i = 0; i < x->ndim; i++) red[i] = true;
    } else {
        if (naxes < 0 || naxes > ND_MAX_DIMS)
            nd_fatal(pl->op, "%d axes given", naxes);
        for (int i = 0; i < naxes; i++) {
            int a = nd__axis(axes[i], x->ndim, pl->op);
            if (red[a]) nd_fatal(pl->op, "axis %d appears twice", axes[i]);
            red[a] = true;
        }
    }
    /* Output: kept axes (and reduced ones as size 1 with keepdim). The
     * loop runs over x's full shape with reduced axes of size 1, so that
     * each step lands on one output element. */
    int64_t out_shape[ND_MAX_DIMS], loop_shape[ND_MAX_DIMS];
    int64_t loop_st[2][ND_MAX_DIMS];
    int nout = 0;
    pl->nred = 0;
    pl->count = 1;
    for (int i = 0; i < x->ndim; i++) {
        if (red[i]) {
            pl->red_shape[pl->nred] = x->shape[i];
            pl->red_strides[pl->nred++] = x->strides[i];
            pl->count *= x->shape[i];
            if (keepdim) out_shape[nout++] = 1;
        } else {
            out_shape[nout++] = x->shape[i];
        }
    }
    nd_tensor *y = nd__new(out_shape, nout, pl->op);
    int64_t ys[ND_MAX_DIMS];
    nd__contiguous_strides(out_shape, nout, ys);
    for (int i = 0, j = 0; i < x->ndim; i++) {
        loop_shape[i] = red[i] ? 1 : x->shape[i];
        loop_st[1][i] = x->strides[i];
        if (red[i]) loop_st[0][i] = 0, j += keepdim;
        else loop_st[0][i] = ys[j++];
    }
    if (pl->needs_values && pl->count == 0 && nd_numel(y) > 0) {
        char s[ND_SHAPE_STR_LEN];
        nd_free(y);
        nd_fatal(pl->op, "cannot reduce over an empty axis of shape %s",
                 nd_shape_str(x->shape, x->ndim, s));
    }
    float *base[2] = {nd_data(y), nd_data(x)};
    nd__loop(2, x->ndim, loop_shape, (const int64_t(*)[ND_MAX_DIMS])loop_st,
             base, reduce_row, pl);
    const nd_tensor *in[1] = {x};
    nd_op_event e = {.op = pl->id, .out = y, .in = in, .nin = 1, .keepdim = keepdim,
                     .correction = pl->correction};
    for (int i = 0; i < x->ndim; i++) e.args[i] = red[i];
    nd__emit(&e);
    return y;
}

/* Walking the reduced sub-tensor: each kind of reduction keeps a double
 * accumulator and sees every element once, in row-major order. */
typedef struct {
    double acc, mean;
    int kind; /* 0 sum, 1 max, 2 min, 3 sum of squared deviations */
} walk;

static void walk_row(void *ctx, int64_t n, float *const *p, const int64_t *s) {
    walk *w = ctx;
    const float *x = p[0];
    switch (w->kind) {
    case 0:
        for (int64_t i = 0; i < n; i++) w->acc += x[i * s[0]];
        break;
    case 1:
        for (int64_t i = 0; i < n; i++) {
            double v = x[i * s[0]];
            if (v != v || v > w->acc) w->acc = v;
            if (w->acc != w->acc) return;
        }
        break;
    case 2:
        for (int64_t i = 0; i < n; i++) {
            double v = x[i * s[0]];
            if (v != v || v < w->acc) w->acc = v;
            if (w->acc != w->acc) return;
        }
        break;
    default:
        for (int64_t i = 0; i < n; i++) {
            double d = x[i * s[0]] - w->mean;
            w->acc += d * d;
        }
    }
}

static double walk_sub(const float *x, const plan *pl, int kind, double init,
                       double mean) {
    walk w = {init, mean, kind};
    float *base[1] = {(float *)x};
    nd__loop(1, pl->nred, pl->red_shape,
             (const int64_t(*)[ND_MAX_DIMS])pl->red_strides, base, walk_row, &w);
    return w.acc;
}

/* y = sum_i x_i */
static double r_sum(const float *x, const void *p) { return walk_sub(x, p, 0, 0.0, 0.0); }
/* y = (1/N) sum_i x_i */
static double r_mean(const float *x, const void *p) {
    return r_sum(x, p) / (double)((const plan *)p)->count;
}
/* y = max_i x_i (NaN if any x_i is NaN) */
static double r_max(const float *x, const void *p) { return walk_sub(x, p, 1, -INFINITY, 0.0); }
static double r_min(const float *x, const void *p) { return walk_sub(x, p, 2, INFINITY, 0.0); }
/* y = sum_i (x_i - mean)^2 / (N - correction), two passes for accuracy */
static double r_var(const float *x, const void *p) {
    const plan *pl = p;
    double mean = r_mean(x, p);
    double ss = walk_sub(x, p, 3, 0.0, mean);
    double dof = (double)(pl->count - pl->correction);
    return dof > 0 ? ss / dof : NAN;
}

nd_tensor *nd_sum(const nd_tensor *x, const int *axes, int naxes, bool keepdim) {
    plan pl = {.op = "sum", .id = ND_OP_SUM, .reduce = r_sum};
    return reduce(x, axes, naxes, keepdim, &pl);
}
nd_tensor *nd_mean(const nd_tensor *x, const int *axes, int naxes, bool keepdim) {
    plan pl = {.op = "mean", .id = ND_OP_MEAN, .reduce = r_mean};
    return reduce(x, axes, naxes, keepdim, &pl);
}
nd_tensor *nd_max(const nd_tensor *x, const int *axes, int naxes, bool keepdim) {
    plan pl = {.op = "max", .id = ND_OP_MAX, .reduce = r_max, .needs_values = true};
    return reduce(x, axes, naxes, keepdim, &pl);
}
nd_tensor *nd_min(const nd_tensor *x, const int *axes, int naxes, bool keepdim) {
    plan pl = {.op = "min", .id = ND_OP_MIN, .reduce = r_min, .needs_values = true};
    return reduce(x, axes, naxes, keepdim, &pl);
}
nd_tensor *nd_var(const nd_tensor *x, const int *axes, int naxes, int correction,
                  bool keepdim) {
    if (correction < 0) nd_fatal("var", "correction %d must be >= 0", correction);
    plan pl = {.op = "var", .id = ND_OP_VAR, .reduce = r_var, .correction = correction};
    return reduce(x, axes, naxes, keepdim, &pl);
}

/* ---- along one axis ---------------------------------------------------- */

/* Runs fn once per 1-d fibre of x along axis, with the matching fibre of
 * y (same shape as x, or size 1 along axis when y_len is 1). */
typedef struct {
    int64_t len, xs, ys;
    void (*fn)(const float *x, int64_t xs, float *y, int64_t ys, int64_t len);
} along;

static void along_row(void *ctx, int64_t n, float *const *p, const int64_t *s) {
    const along *a = ctx;
    for (int64_t i = 0; i < n; i++)
        a->fn(p[1] + i * s[1], a->xs, p[0] + i * s[0], a->ys, a->len);
}

static void run_along(const nd_tensor *x, nd_tensor *y, int axis, along *a) {
    int64_t shape[ND_MAX_DIMS], st[2][ND_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[axis] = 1;
    int64_t ys[ND_MAX_DIMS];
    nd__contiguous_strides(shape, x->ndim, ys);
    if (y->ndim == x->ndim) memcpy(ys, y->strides, sizeof ys);
    memcpy(st[0], ys, sizeof st[0]);
    memcpy(st[1], x->strides, sizeof st[1]);
    a->len = x->shape[axis];
    a->xs = x->strides[axis];
    a->ys = y->ndim == x->ndim ? y->strides[axis] : 0;
    float *base[2] = {nd_data(y), nd_data(x)};
    nd__loop(2, x->ndim, shape, (const int64_t(*)[ND_MAX_DIMS])st, base, along_row, a);
}

/* y_i = exp(x_i - m) / sum_j exp(x_j - m), m = max_j x_j (for range) */
static void softmax_fibre(const float *x, int64_t xs, float *y, int64_t ys, int64_t n) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = x[i * xs] > m ? x[i * xs] : m;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        float e = expf(x[i * xs] - m);
        y[i * ys] = e;
        sum += e;
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) y[i * ys] *= inv;
}

/* y_i = (x_i - m) - log(sum_j exp(x_j - m)); subtracting m first keeps
 * the small differences exact when |x| is large */
static void log_softmax_fibre(const float *x, int64_t xs, float *y, int64_t ys, int64_t n) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = x[i * xs] > m ? x[i * xs] : m;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += expf(x[i * xs] - m);
    float log_sum = (float)log(sum);
    for (int64_t i = 0; i < n; i++) y[i * ys] = (x[i * xs] - m) - log_sum;
}

/* y = the first i with x_i = max (or the first NaN) */
static void argmax_fibre(const float *x, int64_t xs, float *y, int64_t ys, int64_t n) {
    (void)ys;
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++) {
        float v = x[i * xs], b = x[best * xs];
        if (b != b) break;
        if (v != v || v > b) best = i;
    }
    *y = (float)best;
}

static nd_tensor *softmax_like(const nd_tensor *x, int axis, const char *op, nd_op id,
                               void (*fn)(const float *, int64_t, float *, int64_t, int64_t)) {
    nd__check_tensor(x, op);
    int a = nd__axis(axis, x->ndim, op);
    nd_tensor *y = nd__new(x->shape, x->ndim, op);
    along al = {.fn = fn};
    run_along(x, y, a, &al);
    const nd_tensor *in[1] = {x};
    nd_op_event e = {.op = id, .out = y, .in = in, .nin = 1, .axis = a};
    nd__emit(&e);
    return y;
}

nd_tensor *nd_softmax(const nd_tensor *x, int axis) {
    return softmax_like(x, axis, "softmax", ND_OP_SOFTMAX, softmax_fibre);
}

nd_tensor *nd_log_softmax(const nd_tensor *x, int axis) {
    return softmax_like(x, axis, "log_softmax", ND_OP_LOG_SOFTMAX, log_softmax_fibre);
}

nd_tensor *nd_argmax(const nd_tensor *x, int axis, bool keepdim) {
    nd__check_tensor(x, "argmax");
    int a = nd__axis(axis, x->ndim, "argmax");
    if (x->shape[a] == 0) {
        char s[ND_SHAPE_STR_LEN];
        nd_fatal("argmax", "axis %d of shape %s is empty", axis,
                 nd_shape_str(x->shape, x->ndim, s));
    }
    int64_t shape[ND_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (i != a) shape[n++] = x->shape[i];
        else if (keepdim) shape[n++] = 1;
    }
    nd_tensor *y = nd__new(shape, n, "argmax");
    /* run_along wants y with x's rank: view it with a size-1 axis. */
    nd__quiet++;
    nd_tensor *yv = keepdim ? y : nd_unsqueeze(y, a);
    nd__quiet--;
    along al = {.fn = argmax_fibre};
    run_along(x, yv, a, &al);
    if (yv != y) nd_free(yv);
    const nd_tensor *in[1] = {x};
    nd_op_event e = {.op = ND_OP_ARGMAX, .out = y, .in = in, .nin = 1, .axis = a,
                     .keepdim = keepdim};
    nd__emit(&e);
    return y;
}
