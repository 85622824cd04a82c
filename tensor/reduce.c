/* Reductions over a set of axes, and argmax along one (softmax, which
 * reduces per fibre too, is in softmax.c).
 *
 * The order of a sum. An output element's inputs are taken in row-major
 * order over the reduced axes and cut into blocks of ND_GRAIN elements.
 * In a block, element k goes to lane k % 16 of sixteen double
 * accumulators, each adding its elements in order (the kernel set's
 * sum_lanes, the same bits in every set); the lanes are combined in a
 * fixed tree, and the blocks' results are added in block order. That
 * order depends on the number of elements alone: not on the layout of the
 * input (strided rows are gathered into a buffer for the same kernels),
 * nor on the thread count (outputs, and the blocks of one long row, run
 * on the thread pool, and every result is combined in the fixed order).
 * max and min keep 16 float lanes the same way and are exact; a NaN
 * anywhere makes the result NaN. */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "kernels.h"

/* Floats of the next output's inputs to prefetch while the current one
 * sums: a row from memory otherwise arrives at the pace of the load
 * latency. */
#define PREFETCH_AHEAD 2048

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
    const nd_kernels *kern;
    int64_t run; /* x beyond L2, each output's inputs one contiguous run:
                    count, else 0 */
    bool ahead;  /* x beyond L2: sum_columns prefetches the next batch of columns */
} plan;

/* Sums and means over reduced axes whose last stride is not 1 (a leading
 * axis, as in the gradient of a broadcast), at most one block each: walked
 * one output at a time, each would read a column of x, a few floats per
 * call. Here COLS outputs go at once, reading rows of x in order (a
 * contiguous row with the kernel set's acc_double), and lane k % 16 of
 * each output adds its element k in order, exactly the order of walk_sub
 * (and of every kernel set's sum_lanes): the same bits. With fewer than
 * 16 elements per output the lanes past them stay +0.0, which the lane
 * tree may skip: a lane is never -0.0 (it starts at +0.0, and an exact
 * zero sum rounds to +0.0), so adding +0.0 to it changes no bit. */
#define COLS 128

static bool by_columns(const plan *pl, int64_t xs) {
    return (pl->id == ND_OP_SUM || pl->id == ND_OP_MEAN) && xs != 0 && pl->nred > 0 &&
           pl->count > 0 && pl->count <= ND_GRAIN && pl->red_strides[pl->nred - 1] != 1;
}

static void sum_columns(const plan *pl, int64_t n, float *y, int64_t ys, const float *x,
                        int64_t xs) {
    int live = pl->count < ND_LANES ? (int)pl->count : ND_LANES; /* lanes with elements */
    double lanes[ND_LANES][COLS];
    for (int64_t i0 = 0; i0 < n; i0 += COLS) {
        int64_t m = n - i0 < COLS ? n - i0 : COLS;
        memset(lanes, 0, (size_t)(live > 2 ? live : 2) * sizeof lanes[0]);
        int64_t idx[ND_MAX_DIMS] = {0}, off = 0;
        for (int64_t k = 0; k < pl->count; k++) {
            double *l = lanes[k % ND_LANES];
            const float *e = x + i0 * xs + off;
            if (xs == 1) {
                if (pl->ahead)
                    for (int64_t j = COLS; j < 2 * COLS && i0 + j < n; j += 16)
                        ND_PREFETCH(e + j);
                pl->kern->acc_double(m, e, l);
            } else
                for (int64_t i = 0; i < m; i++) l[i] += e[i * xs];
            /* the next element in row-major order over the reduced axes */
            for (int d = pl->nred - 1; d >= 0; d--) {
                off += pl->red_strides[d];
                if (++idx[d] < pl->red_shape[d]) break;
                off -= pl->red_strides[d] * pl->red_shape[d];
                idx[d] = 0;
            }
        }
        /* nd__combine_lanes's tree, a column per output, over the live lanes */
        for (int h = ND_LANES / 2, l = live; h >= 2; l = l < h ? l : h, h /= 2)
            for (int j = 0; j + h < l; j++)
                for (int64_t i = 0; i < m; i++) lanes[j][i] += lanes[j + h][i];
        for (int64_t i = 0; i < m; i++) {
            double acc = 0.0;
            acc += lanes[0][i] + lanes[1][i];
            if (pl->id == ND_OP_MEAN) acc /= (double)pl->count;
            y[(i0 + i) * ys] = (float)acc;
        }
    }
}

static void reduce_row(void *ctx, int64_t n, float *const *p, const int64_t *s) {
    const plan *pl = ctx;
    if (n > 1 && by_columns(pl, s[1])) {
        sum_columns(pl, n, p[0], s[0], p[1], s[1]);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        /* the start of the next output's run, loading while this one sums */
        if (pl->run && i + 1 < n)
            for (int64_t j = 0; j < pl->run && j < PREFETCH_AHEAD; j += 16)
                ND_PREFETCH(p[1] + (i + 1) * s[1] + j);
        p[0][i * s[0]] = (float)pl->reduce(p[1] + i * s[1], pl);
    }
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
    pl->kern = nd__kernels();
    pl->ahead = nd__prefetch_input(nd_numel(x) * (int64_t)sizeof(float));
    pl->run = pl->ahead ? pl->count : 0;
    int64_t want = 1;
    for (int i = pl->nred - 1; i >= 0; i--) {
        if (pl->red_shape[i] == 1) continue;
        if (pl->red_strides[i] != want) pl->run = 0;
        want *= pl->red_shape[i];
    }
    /* about ND_GRAIN input elements per chunk of outputs */
    int64_t grain = pl->count > 0 ? ND_GRAIN / pl->count : ND_GRAIN;
    nd__loop_parallel(2, x->ndim, loop_shape, (const int64_t(*)[ND_MAX_DIMS])loop_st,
                      base, reduce_row, pl, grain);
    const nd_tensor *in[1] = {x};
    nd_op_event e = {.op = pl->id, .out = y, .in = in, .nin = 1, .keepdim = keepdim,
                     .correction = pl->correction};
    for (int i = 0; i < x->ndim; i++) e.args[i] = red[i];
    nd__emit(&e);
    return y;
}

/* Walking the reduced sub-tensor: see the order of a sum at the top. */
enum { W_SUM, W_SUMSQ, W_MAX, W_MIN };
#define BUF 256      /* gather buffer for strided rows, a multiple of 16 */
#define GROUP 64     /* blocks of one long row run on the pool in groups */

typedef struct {
    const nd_kernels *k;
    int kind;
    double mean;           /* W_SUMSQ: sum of (x - mean)^2 */
    double dl[ND_LANES];   /* the lanes of the current block */
    float fl[ND_LANES];
    int64_t pos;           /* elements of the current block seen, a
                              multiple of 16 until the last call */
    double acc;            /* the blocks so far */
    bool nan;
    int nbuf;
    float buf[BUF];
} walk;

static void lanes_reset(walk *w) {
    for (int j = 0; j < ND_LANES; j++) {
        w->dl[j] = 0.0;
        w->fl[j] = w->kind == W_MAX ? -INFINITY : INFINITY;
    }
    w->pos = 0;
}

/* The kernel on n contiguous elements of the current block. */
static void lanes_add(walk *w, int64_t n, const float *x) {
    switch (w->kind) {
    case W_SUM: w->k->sum_lanes(n, x, w->dl); break;
    case W_SUMSQ: w->k->sumsq_lanes(n, x, w->mean, w->dl); break;
    case W_MAX: w->nan |= w->k->max_lanes(n, x, w->fl); break;
    default: w->nan |= w->k->min_lanes(n, x, w->fl);
    }
}

/* A block's result into the running one, in block order. */
static void fold(walk *w, double block) {
    switch (w->kind) {
    case W_MAX: w->acc = block > w->acc ? block : w->acc; break;
    case W_MIN: w->acc = block < w->acc ? block : w->acc; break;
    default: w->acc += block;
    }
}

static double lanes_result(const walk *w) {
    switch (w->kind) {
    case W_MAX: return nd__combine_max(w->fl);
    case W_MIN: return nd__combine_min(w->fl);
    default: return nd__combine_lanes(w->dl);
    }
}

static void close_block(walk *w) {
    fold(w, lanes_result(w));
    lanes_reset(w);
}

/* Whole blocks of a long contiguous row on the pool: block b of the
 * group computes alone into its slot; the slots are folded in order. */
typedef struct {
    const walk *proto;
    const float *x;
    double result[GROUP];
    bool nan[GROUP];
} block_group;

static void block_chunk(void *ctx, int64_t b, int worker) {
    (void)worker;
    block_group *g = ctx;
    walk w = {.k = g->proto->k, .kind = g->proto->kind, .mean = g->proto->mean};
    lanes_reset(&w);
    lanes_add(&w, ND_GRAIN, g->x + b * ND_GRAIN);
    g->result[b] = lanes_result(&w);
    g->nan[b] = w.nan;
}

/* n contiguous elements; w->pos is a multiple of 16 unless this is the
 * last call. Calls never cross a block boundary. */
static void feed(walk *w, int64_t n, const float *x) {
    while (n > 0) {
        if (w->pos == 0 && n >= 2 * ND_GRAIN) {
            int64_t nb = n / ND_GRAIN < GROUP ? n / ND_GRAIN : GROUP;
            block_group g = {.proto = w, .x = x};
            nd__parallel_for(nb, block_chunk, &g);
            for (int64_t b = 0; b < nb; b++) {
                fold(w, g.result[b]);
                w->nan |= g.nan[b];
            }
            x += nb * ND_GRAIN;
            n -= nb * ND_GRAIN;
            continue;
        }
        int64_t m = ND_GRAIN - w->pos < n ? ND_GRAIN - w->pos : n;
        lanes_add(w, m, x);
        w->pos += m;
        x += m;
        n -= m;
        if (w->pos == ND_GRAIN) close_block(w);
    }
}

static void walk_row(void *ctx, int64_t n, float *const *p, const int64_t *s) {
    walk *w = ctx;
    const float *x = p[0];
    int64_t st = s[0];
    while (n > 0) {
        if (w->nbuf == 0 && st == 1 && n >= 16) {
            int64_t m = n - n % 16;
            feed(w, m, x);
            x += m;
            n -= m;
            continue;
        }
        int64_t m = BUF - w->nbuf < n ? BUF - w->nbuf : n;
        for (int64_t j = 0; j < m; j++) w->buf[w->nbuf + j] = x[j * st];
        w->nbuf += (int)m;
        x += m * st;
        n -= m;
        if (w->nbuf == BUF) {
            feed(w, BUF, w->buf);
            w->nbuf = 0;
        }
    }
}

static double walk_sub(const float *x, const plan *pl, int kind, double mean) {
    /* field by field: an initializer would also clear buf, 1 KiB per
     * output, an eighth of the time of a sum over cached rows of 1024 */
    walk w;
    w.k = pl->kern;
    w.kind = kind;
    w.mean = mean;
    w.acc = kind == W_MAX ? -INFINITY : kind == W_MIN ? INFINITY : 0.0;
    w.nan = false;
    w.nbuf = 0;
    lanes_reset(&w);
    float *base[1] = {(float *)x};
    nd__loop(1, pl->nred, pl->red_shape,
             (const int64_t(*)[ND_MAX_DIMS])pl->red_strides, base, walk_row, &w);
    if (w.nbuf > 0) feed(&w, w.nbuf, w.buf);
    if (w.pos > 0) close_block(&w);
    return w.nan ? NAN : w.acc;
}

/* y = sum_i x_i */
static double r_sum(const float *x, const void *p) { return walk_sub(x, p, W_SUM, 0.0); }
/* y = (1/N) sum_i x_i */
static double r_mean(const float *x, const void *p) {
    return r_sum(x, p) / (double)((const plan *)p)->count;
}
/* y = max_i x_i (NaN if any x_i is NaN) */
static double r_max(const float *x, const void *p) { return walk_sub(x, p, W_MAX, 0.0); }
static double r_min(const float *x, const void *p) { return walk_sub(x, p, W_MIN, 0.0); }
/* y = sum_i (x_i - mean)^2 / (N - correction), two passes for accuracy */
static double r_var(const float *x, const void *p) {
    const plan *pl = p;
    double mean = r_mean(x, p);
    double ss = walk_sub(x, p, W_SUMSQ, mean);
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

/* ---- row sums for fused layers ------------------------------------------ */

static void check_row(int64_t n, const void *x, const char *op) {
    if (n < 0) nd_fatal(op, "row length %lld is negative", (long long)n);
    if (n > 0 && !x) nd_fatal(op, "row is NULL");
}

void nd_row_sigmoid(int64_t n, const float *x, float *y) {
    check_row(n, x, "row_sigmoid");
    check_row(n, y, "row_sigmoid");
    nd__kernels()->vsigmoid(n, x, y);
}

void nd_row_silu(int64_t n, const float *x, float *y) {
    check_row(n, x, "row_silu");
    check_row(n, y, "row_silu");
    nd__kernels()->vsilu(n, x, y);
}

double nd_row_sum(int64_t n, const float *x) {
    check_row(n, x, "row_sum");
    double l[ND_LANES] = {0};
    nd__kernels()->sum_lanes(n, x, l);
    return nd__combine_lanes(l);
}

double nd_row_sum_sq_dev(int64_t n, const float *x, double mean) {
    check_row(n, x, "row_sum_sq_dev");
    double l[ND_LANES] = {0};
    nd__kernels()->sumsq_lanes(n, x, mean, l);
    return nd__combine_lanes(l);
}

double nd_row_dot_dev(int64_t n, const float *x, double mean, const float *y) {
    check_row(n, x, "row_dot_dev");
    check_row(n, y, "row_dot_dev");
    double l[ND_LANES] = {0};
    nd__kernels()->dotdev_lanes(n, x, mean, y, l);
    return nd__combine_lanes(l);
}
