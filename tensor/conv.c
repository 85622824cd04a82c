/* 2-d convolution (NCHW), forward and both backward passes, lowered to the
 * blocked SGEMM of tensor/gemm.c one tile of output positions at a time.
 *
 * Number the output positions of the whole batch q = n P + i OW + j, with
 * P = OH OW, and the weight's inner index r = (c KH + u) KW + v, with
 * K = C KH KW. For a tile of T consecutive positions (it may span images),
 * im2col gathers the inputs each position sees:
 *
 *   col[r, t] = x[n, c, i sh - pt + u, j sw - pl + v]   (0 outside x)
 *
 * for q = q0 + t, and then
 *
 *   forward:          Y[o, t]   = sum_r W[o, r] col[r, t] (+ b[o])
 *   backward weight:  dW[o, r] += sum_t col[r, t] dY[o, t]    (tiles in order;
 *                     computed as dW^T = col dY^T, whose A packs fastest)
 *   backward input:   dcol[r, t] = sum_o W[o, r] dY[o, t],
 *                     then dx[n, c, h, w] += dcol[r, t] (col2im)
 *
 * Scratch is a few tiles, never the whole batch's im2col. Threads work
 * inside nd__sgemm and over channels in im2col and col2im; every sum is
 * taken in an order fixed by the shapes alone (tiles ascending, then r),
 * so the bits do not depend on the thread count.
 *
 * With stride 1 all three passes skip im2col instead (conv_direct.c):
 * the kernels read a zero-padded copy of the input in place (forward and
 * backward input where the output's positions fill the kernel tiles;
 * the weight gradient through a table of position offsets, any width). */
#include <string.h>

#include "conv.h"

/* Tile width: as many columns as COL_BUDGET floats of col allow (1808 for
 * K = 576), within [TILE_MIN, TILE_MAX]. Wide tiles let the GEMM amortise
 * packing W, which it repacks for every block of columns it cuts; the
 * budget (4 MiB) keeps col in the last-level cache between im2col and the
 * GEMM's packing (the size was measured: docs/PERFORMANCE.md,
 * "Convolution"). */
#define COL_BUDGET (1024 * 1024)
#define TILE_MIN 256
#define TILE_MAX 4096

/* ---- checking ------------------------------------------------------------ */

static void check_rank(const char *op, const char *name, const nd_tensor *t,
                       int want, const char *layout) {
    nd__check_tensor(t, op);
    if (t->ndim != want) {
        char s[ND_SHAPE_STR_LEN];
        nd_fatal(op, "%s has shape %s; expected %d dimension%s %s", name,
                 nd_shape_str(t->shape, t->ndim, s), want, want == 1 ? "" : "s", layout);
    }
}

/* A shape passed as an array (x_shape, w_shape): sizes >= 0 whose product
 * fits in int64_t. */
static void check_sizes(const char *op, const char *name, const int64_t *shape) {
    if (!shape) nd_fatal(op, "%s is NULL", name);
    char s[ND_SHAPE_STR_LEN];
    for (int d = 0; d < 4; d++)
        if (shape[d] < 0)
            nd_fatal(op, "%s %s has a negative size", name, nd_shape_str(shape, 4, s));
    int64_t n = 1;
    for (int d = 0; d < 4; d++) {
        if (shape[d] > 0 && n > INT64_MAX / shape[d])
            nd_fatal(op, "%s %s has too many elements", name, nd_shape_str(shape, 4, s));
        n *= shape[d];
    }
}

/* The checks shared by the three ops, once the ranks are known: channels,
 * strides, pads and sizes. xs and ws name the shapes of x and w in the
 * messages ("x" or "x_shape", "w" or "w_shape"). Returns the geometry. */
static geom check_geometry(const char *op, const char *xname, const int64_t *xs,
                           const char *wname, const int64_t *ws, nd_conv2d_opts o) {
    char a[ND_SHAPE_STR_LEN], b[ND_SHAPE_STR_LEN];
    if (xs[1] != ws[1])
        nd_fatal(op, "%s %s has %lld channels but %s %s expects %lld", xname,
                 nd_shape_str(xs, 4, a), (long long)xs[1], wname, nd_shape_str(ws, 4, b),
                 (long long)ws[1]);
    if (ws[2] < 1 || ws[3] < 1)
        nd_fatal(op, "%s %s has a %lldx%lld kernel; it must be at least 1x1", wname,
                 nd_shape_str(ws, 4, b), (long long)ws[2], (long long)ws[3]);
    if (o.stride_h < 1 || o.stride_w < 1)
        nd_fatal(op, "stride (%lld, %lld) must be >= 1 on both axes", (long long)o.stride_h,
                 (long long)o.stride_w);
    if (o.pad_top < 0 || o.pad_bottom < 0 || o.pad_left < 0 || o.pad_right < 0)
        nd_fatal(op, "padding (top %lld, bottom %lld, left %lld, right %lld) must be >= 0 "
                 "on every side", (long long)o.pad_top, (long long)o.pad_bottom,
                 (long long)o.pad_left, (long long)o.pad_right);
    const int64_t big = INT64_MAX / 4; /* keeps index arithmetic far from overflow */
    if (o.pad_top > big - xs[2] || o.pad_bottom > big - xs[2] - o.pad_top ||
        o.pad_left > big - xs[3] || o.pad_right > big - xs[3] - o.pad_left)
        nd_fatal(op, "padding (top %lld, bottom %lld, left %lld, right %lld) of %s %s is "
                 "too large", (long long)o.pad_top, (long long)o.pad_bottom,
                 (long long)o.pad_left, (long long)o.pad_right, xname, nd_shape_str(xs, 4, a));
    int64_t hp = xs[2] + o.pad_top + o.pad_bottom, wp = xs[3] + o.pad_left + o.pad_right;
    if (hp < ws[2] || wp < ws[3])
        nd_fatal(op, "%s %s padded to %lldx%lld is smaller than the %lldx%lld kernel of %s %s",
                 xname, nd_shape_str(xs, 4, a), (long long)hp, (long long)wp,
                 (long long)ws[2], (long long)ws[3], wname, nd_shape_str(ws, 4, b));
    geom g = {.n = xs[0], .c = xs[1], .h = xs[2], .w = xs[3], .o = ws[0], .kh = ws[2],
              .kw = ws[3], .sh = o.stride_h, .sw = o.stride_w, .pt = o.pad_top,
              .pl = o.pad_left};
    g.oh = (hp - g.kh) / g.sh + 1;
    g.ow = (wp - g.kw) / g.sw + 1;
    /* N OH OW positions (and with them y, whatever O) must be countable */
    if (g.oh > INT64_MAX / g.ow || (g.n > 0 && g.oh * g.ow > INT64_MAX / g.n) ||
        (g.o > 0 && g.n * g.oh * g.ow > INT64_MAX / g.o))
        nd_fatal(op, "the output [%lld,%lld,%lld,%lld] of %s %s and %s %s has too many "
                 "elements", (long long)g.n, (long long)g.o, (long long)g.oh, (long long)g.ow,
                 xname, nd_shape_str(xs, 4, a), wname, nd_shape_str(ws, 4, b));
    return g;
}

/* dy must have the shape [N, O, OH, OW] the forward would have produced. */
static void check_dy(const char *op, const nd_tensor *dy, const char *xname,
                     const int64_t *xs, const char *wname, const int64_t *ws, const geom *g) {
    int64_t want[4] = {g->n, g->o, g->oh, g->ow};
    if (dy->shape[0] != want[0] || dy->shape[1] != want[1] || dy->shape[2] != want[2] ||
        dy->shape[3] != want[3]) {
        char a[ND_SHAPE_STR_LEN], b[ND_SHAPE_STR_LEN], c[ND_SHAPE_STR_LEN],
            d[ND_SHAPE_STR_LEN];
        nd_fatal(op, "dy %s is not the output shape %s of %s %s and %s %s",
                 nd_shape_str(dy->shape, 4, a), nd_shape_str(want, 4, b), xname,
                 nd_shape_str(xs, 4, c), wname, nd_shape_str(ws, 4, d));
    }
}

geom nd__conv_check_forward(const char *op, const nd_tensor *x, const nd_tensor *w,
                            const nd_tensor *bias, nd_conv2d_opts opts) {
    check_rank(op, "x", x, 4, "[N,C,H,W]");
    check_rank(op, "w", w, 4, "[O,C,KH,KW]");
    if (bias) check_rank(op, "bias", bias, 1, "[O]");
    geom g = check_geometry(op, "x", x->shape, "w", w->shape, opts);
    if (bias && bias->shape[0] != g.o) {
        char a[ND_SHAPE_STR_LEN], b[ND_SHAPE_STR_LEN];
        nd_fatal(op, "bias %s does not match the %lld output channels of w %s",
                 nd_shape_str(bias->shape, 1, a), (long long)g.o,
                 nd_shape_str(w->shape, 4, b));
    }
    return g;
}

geom nd__conv_check_backward_input(const char *op, const nd_tensor *dy, const nd_tensor *w,
                                   const int64_t *x_shape, nd_conv2d_opts opts) {
    check_rank(op, "dy", dy, 4, "[N,O,OH,OW]");
    check_rank(op, "w", w, 4, "[O,C,KH,KW]");
    check_sizes(op, "x_shape", x_shape);
    char a[ND_SHAPE_STR_LEN], b[ND_SHAPE_STR_LEN];
    if (dy->shape[1] != w->shape[0])
        nd_fatal(op, "dy %s has %lld channels but w %s has %lld output channels",
                 nd_shape_str(dy->shape, 4, a), (long long)dy->shape[1],
                 nd_shape_str(w->shape, 4, b), (long long)w->shape[0]);
    geom g = check_geometry(op, "x_shape", x_shape, "w", w->shape, opts);
    check_dy(op, dy, "x_shape", x_shape, "w", w->shape, &g);
    return g;
}

geom nd__conv_check_backward_weight(const char *op, const nd_tensor *dy, const nd_tensor *x,
                                    const int64_t *w_shape, nd_conv2d_opts opts) {
    check_rank(op, "dy", dy, 4, "[N,O,OH,OW]");
    check_rank(op, "x", x, 4, "[N,C,H,W]");
    check_sizes(op, "w_shape", w_shape);
    char a[ND_SHAPE_STR_LEN], b[ND_SHAPE_STR_LEN];
    if (dy->shape[1] != w_shape[0])
        nd_fatal(op, "dy %s has %lld channels but w_shape %s has %lld output channels",
                 nd_shape_str(dy->shape, 4, a), (long long)dy->shape[1],
                 nd_shape_str(w_shape, 4, b), (long long)w_shape[0]);
    geom g = check_geometry(op, "x", x->shape, "w_shape", w_shape, opts);
    check_dy(op, dy, "x", x->shape, "w_shape", w_shape, &g);
    return g;
}

/* Tiles depend on the shapes alone, never on the thread count. */
static void plan_tiles(geom *g) {
    g->k = g->c * g->kh * g->kw;
    g->p = g->oh * g->ow;
    g->cols = g->n * g->p;
    int64_t t = COL_BUDGET / max64(g->k, 1);
    t = min64(max64(t, TILE_MIN), TILE_MAX) / 16 * 16;
    g->tile = min64(t, g->cols);
}

/* ---- im2col and col2im ------------------------------------------------------ */

/* One tile: positions q0 .. q0 + tw - 1, stored as columns of row stride tw. */
typedef struct {
    const geom *g;
    const float *x;  /* im2col source, read through xs */
    int64_t xs[4];
    float *dx;       /* col2im destination, contiguous */
    float *col;
    int64_t q0, tw;
} tile;

/* The tile walked as runs along output rows: image n, output row i,
 * columns j0 .. j0 + len - 1, stored from column t of the tile. */
typedef struct {
    int64_t n, i, j0, len, t;
} run;

static run first_run(const tile *tl) {
    const geom *g = tl->g;
    run r = {.n = tl->q0 / g->p, .i = tl->q0 % g->p / g->ow, .j0 = tl->q0 % g->ow};
    r.len = min64(g->ow - r.j0, tl->tw);
    return r;
}

static void next_run(const tile *tl, run *r) {
    r->t += r->len;
    r->j0 = 0;
    if (++r->i == tl->g->oh) {
        r->i = 0;
        r->n++;
    }
    r->len = min64(tl->g->ow, tl->tw - r->t);
}

/* The first output column j whose input column j sw - pl + v is >= 0, and
 * the first whose input column is >= W: the run [jlo, jhi) reads x, the
 * rest of the row is padding. */
static void valid_columns(const geom *g, int64_t v, int64_t *jlo, int64_t *jhi) {
    int64_t first = g->pl - v; /* j sw >= first */
    *jlo = first <= 0 ? 0 : (first + g->sw - 1) / g->sw;
    int64_t last = g->w - 1 + g->pl - v; /* j sw <= last */
    *jhi = last < 0 ? 0 : min64(last / g->sw + 1, g->ow);
    if (*jhi < *jlo) *jhi = *jlo;
}

/* d[0 .. n) += s[0 .. n), for the short runs of col2im: unrolled by 8 so
 * that compilers vectorise it at -O2. */
static void add_run(float *restrict d, const float *restrict s, int64_t n) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int e = 0; e < 8; e++) d[j + e] += s[j + e];
    for (; j < n; j++) d[j] += s[j];
}

/* The part of a run that reads x, as offsets [a, b) into it: output
 * columns j0 + a .. j0 + b - 1 lie in [jlo, jhi). */
static void run_overlap(const run *rn, int64_t jlo, int64_t jhi, int64_t *a, int64_t *b) {
    *a = min64(max64(jlo - rn->j0, 0), rn->len);
    *b = max64(min64(jhi - rn->j0, rn->len), *a);
}

/* Rows r = c KH KW .. (c + 1) KH KW - 1 of col: channel c. */
static void im2col_channel(void *ctx, int64_t c, int worker) {
    (void)worker;
    const tile *tl = ctx;
    const geom *g = tl->g;
    const int64_t *xs = tl->xs;
    for (int64_t u = 0; u < g->kh; u++)
        for (int64_t v = 0; v < g->kw; v++) {
            float *row = tl->col + ((c * g->kh + u) * g->kw + v) * tl->tw;
            int64_t jlo, jhi;
            valid_columns(g, v, &jlo, &jhi);
            for (run rn = first_run(tl); rn.t < tl->tw; next_run(tl, &rn)) {
                float *d = row + rn.t; /* d[e]: output column j0 + e */
                int64_t h = rn.i * g->sh - g->pt + u, a, b;
                if (h < 0 || h >= g->h) {
                    memset(d, 0, (size_t)rn.len * sizeof(float));
                    continue;
                }
                run_overlap(&rn, jlo, jhi, &a, &b);
                for (int64_t e = 0; e < a; e++) d[e] = 0.0f;
                if (b > a) {
                    const float *s = tl->x + rn.n * xs[0] + c * xs[1] + h * xs[2] +
                                     ((rn.j0 + a) * g->sw - g->pl + v) * xs[3];
                    int64_t step = g->sw * xs[3];
                    if (step == 1) memcpy(d + a, s, (size_t)(b - a) * sizeof(float));
                    else if (step == 2) /* a constant stride, which the compiler vectorises */
                        for (int64_t e = 0; e < b - a; e++) d[a + e] = s[2 * e];
                    else
                        for (int64_t e = a; e < b; e++, s += step) d[e] = *s;
                }
                for (int64_t e = b; e < rn.len; e++) d[e] = 0.0f;
            }
        }
}

/* dx[n, c, h, w] += col[r, t] for channel c's rows, in ascending (u, v):
 * with the tiles taken in order, every element of dx sums its terms in one
 * fixed order. */
static void col2im_channel(void *ctx, int64_t c, int worker) {
    (void)worker;
    const tile *tl = ctx;
    const geom *g = tl->g;
    for (int64_t u = 0; u < g->kh; u++)
        for (int64_t v = 0; v < g->kw; v++) {
            const float *row = tl->col + ((c * g->kh + u) * g->kw + v) * tl->tw;
            int64_t jlo, jhi;
            valid_columns(g, v, &jlo, &jhi);
            for (run rn = first_run(tl); rn.t < tl->tw; next_run(tl, &rn)) {
                int64_t h = rn.i * g->sh - g->pt + u, a, b;
                if (h < 0 || h >= g->h) continue;
                run_overlap(&rn, jlo, jhi, &a, &b);
                if (b == a) continue;
                const float *s = row + rn.t + a;
                float *d = tl->dx + ((rn.n * g->c + c) * g->h + h) * g->w +
                           ((rn.j0 + a) * g->sw - g->pl + v);
                if (g->sw == 1) add_run(d, s, b - a);
                else if (g->sw == 2) /* as in im2col_channel */
                    for (int64_t e = 0; e < b - a; e++) d[2 * e] += s[e];
                else
                    for (int64_t e = 0; e < b - a; e++, d += g->sw) *d += s[e];
            }
        }
}

static void per_channel(const tile *tl, nd_chunk_fn fn) {
    run_chunks(tl->g->k * tl->tw, PARALLEL_COPY, tl->g->c, fn, (void *)tl);
}

/* Copies between the GEMM's [O, tw] matrices of a tile and the
 * [N, O, OH, OW] tensors, one output channel per chunk. */
typedef struct {
    const geom *g;
    int64_t q0, tw;
    const nd_tensor *dy; /* gather: dy into mat */
    float *y;            /* scatter: mat (+ bias) into y, contiguous */
    const float *bias;
    int64_t bias_stride;
    float *mat;
} chan_copy;

/* dY of one tile as the matrix dyt[o, t] = dy[n, o, i, j], q0 + t = (n, i, j):
 * row o. */
static void gather_dy_channel(void *ctx, int64_t o, int worker) {
    (void)worker;
    const chan_copy *cc = ctx;
    const geom *g = cc->g;
    const float *base = nd_data(cc->dy);
    const int64_t *s = cc->dy->strides;
    bool rows = s[3] == 1 && (s[2] == g->ow || g->oh == 1); /* each image plane dense */
    for (int64_t t = 0, q = cc->q0; t < cc->tw;) {
        int64_t n = q / g->p, p0 = q % g->p, len = min64(g->p - p0, cc->tw - t);
        float *d = cc->mat + o * cc->tw + t;
        const float *src = base + n * s[0] + o * s[1];
        if (rows) {
            memcpy(d, src + p0, (size_t)len * sizeof(float));
        } else {
            for (int64_t e = 0, i = p0 / g->ow, j = p0 % g->ow; e < len; e++) {
                d[e] = src[i * s[2] + j * s[3]];
                if (++j == g->ow) {
                    j = 0;
                    i++;
                }
            }
        }
        t += len;
        q += len;
    }
}

/* y[n, o, p] = out[o, t] + b[o], image by image: row o. */
static void scatter_y_channel(void *ctx, int64_t o, int worker) {
    (void)worker;
    const chan_copy *cc = ctx;
    const geom *g = cc->g;
    for (int64_t t = 0, q = cc->q0; t < cc->tw;) {
        int64_t n = q / g->p, p0 = q % g->p, len = min64(g->p - p0, cc->tw - t);
        float *d = cc->y + (n * g->o + o) * g->p + p0;
        const float *s = cc->mat + o * cc->tw + t;
        if (cc->bias) {
            float bo = cc->bias[o * cc->bias_stride];
            for (int64_t e = 0; e < len; e++) d[e] = s[e] + bo;
        } else {
            memcpy(d, s, (size_t)len * sizeof(float));
        }
        t += len;
        q += len;
    }
}

static void per_out_channel(const chan_copy *cc, nd_chunk_fn fn) {
    run_chunks(cc->g->o * cc->tw, PARALLEL_COPY, cc->g->o, fn, (void *)cc);
}

/* n floats from p set to zero, in chunks of ZERO_CHUNK */
#define ZERO_CHUNK (1 << 16)
typedef struct {
    float *p;
    int64_t n;
} zero_job;

static void zero_chunk(void *ctx, int64_t chunk, int worker) {
    (void)worker;
    const zero_job *z = ctx;
    int64_t i0 = chunk * ZERO_CHUNK;
    memset(z->p + i0, 0, (size_t)min64(z->n - i0, ZERO_CHUNK) * sizeof(float));
}

static void zero_floats(float *p, int64_t n) {
    zero_job z = {p, n};
    int64_t chunks = (n + ZERO_CHUNK - 1) / ZERO_CHUNK;
    if (n >= PARALLEL_COPY) nd__parallel_for(chunks, zero_chunk, &z);
    else if (n > 0) memset(p, 0, (size_t)n * sizeof(float));
}

/* A weight viewed as the dense matrix [O, K]: w itself when contiguous,
 * else a contiguous copy the caller frees. */
static nd_tensor *dense_weight(const nd_tensor *w) {
    nd__quiet++;
    nd_tensor *d = nd_contiguous(w);
    nd__quiet--;
    return d;
}

static void emit(nd_op op, nd_tensor *out, const nd_tensor *a, const nd_tensor *b,
                 const nd_tensor *c, nd_conv2d_opts o) {
    const nd_tensor *in[3] = {a, b, c};
    nd_op_event e = {.op = op, .out = out, .in = in, .nin = c ? 3 : 2};
    e.args[0] = o.stride_h;
    e.args[1] = o.stride_w;
    e.args[2] = o.pad_top;
    e.args[3] = o.pad_bottom;
    e.args[4] = o.pad_left;
    e.args[5] = o.pad_right;
    nd__emit(&e);
}

/* ---- the three ops -------------------------------------------------------- */

nd_tensor *nd_conv2d(const nd_tensor *x, const nd_tensor *w, const nd_tensor *bias,
                     nd_conv2d_opts opts) {
    const char *op = "conv2d";
    geom g = nd__conv_check_forward(op, x, w, bias, opts);
    plan_tiles(&g);
    nd_tensor *y = nd__new(ND_SHAPE(g.n, g.o, g.oh, g.ow), op);
    nd_tensor *wd = dense_weight(w);
    const nd_kernels *kern = nd__kernels();
    if (nd__conv_direct_fits(kern, &g, g.oh, g.ow)) {
        nd__conv_direct(kern, nd_data(x), x->strides, g.n, g.c, g.h, g.w, g.pt,
                        opts.pad_bottom, g.pl, opts.pad_right, nd_data(wd), false, g.o, g.kh,
                        g.kw, bias ? nd_data(bias) : NULL, bias ? bias->strides[0] : 0,
                        nd_data(y), op);
        nd_free(wd);
        emit(ND_OP_CONV2D, y, x, w, bias, opts);
        return y;
    }
    size_t col_bytes = floats(g.k * g.tile), out_bytes = floats(g.o * g.tile);
    float *col = nd__alloc(col_bytes, op), *out = nd__alloc(out_bytes, op);
    tile tl = {.g = &g, .x = nd_data(x), .col = col};
    memcpy(tl.xs, x->strides, sizeof tl.xs);
    const float *b = bias ? nd_data(bias) : NULL;
    float *yd = nd_data(y);
    for (int64_t q0 = 0; q0 < g.cols; q0 += g.tile) {
        tl.q0 = q0;
        tl.tw = min64(g.tile, g.cols - q0);
        per_channel(&tl, im2col_channel);
        /* out[O, tw] = W[O, K] col[K, tw] */
        nd__sgemm(kern, g.o, tl.tw, g.k, nd_data(wd), g.k, 1, col, tl.tw, 1, out, tl.tw,
                  false);
        chan_copy cc = {.g = &g, .q0 = q0, .tw = tl.tw, .y = yd, .bias = b,
                        .bias_stride = bias ? bias->strides[0] : 0, .mat = out};
        per_out_channel(&cc, scatter_y_channel);
    }
    nd__release(out, out_bytes);
    nd__release(col, col_bytes);
    nd_free(wd);
    emit(ND_OP_CONV2D, y, x, w, bias, opts);
    return y;
}

nd_tensor *nd_conv2d_backward_input(const nd_tensor *dy, const nd_tensor *w,
                                    const int64_t *x_shape, nd_conv2d_opts opts) {
    const char *op = "conv2d_backward_input";
    geom g = nd__conv_check_backward_input(op, dy, w, x_shape, opts);
    plan_tiles(&g);
    nd_tensor *dx = nd__new(x_shape, 4, op);
    nd_tensor *wd = dense_weight(w);
    const nd_kernels *kern = nd__kernels();
    if (nd__conv_direct_fits(kern, &g, g.h, g.w) && opts.pad_top < g.kh && opts.pad_bottom < g.kh &&
        opts.pad_left < g.kw && opts.pad_right < g.kw && g.cols > 0) {
        nd__conv_direct(kern, nd_data(dy), dy->strides, g.n, g.o, g.oh, g.ow,
                        g.kh - 1 - g.pt, g.kh - 1 - opts.pad_bottom, g.kw - 1 - g.pl,
                        g.kw - 1 - opts.pad_right, nd_data(wd), true, g.c, g.kh, g.kw, NULL,
                        0, nd_data(dx), op);
        nd_free(wd);
        emit(ND_OP_CONV2D_BACKWARD_INPUT, dx, dy, w, NULL, opts);
        return dx;
    }
    zero_floats(nd_data(dx), nd_numel(dx));
    size_t col_bytes = floats(g.k * g.tile), dyt_bytes = floats(g.o * g.tile);
    float *col = nd__alloc(col_bytes, op), *dyt = nd__alloc(dyt_bytes, op);
    tile tl = {.g = &g, .dx = nd_data(dx), .col = col};
    for (int64_t q0 = 0; q0 < g.cols; q0 += g.tile) {
        tl.q0 = q0;
        tl.tw = min64(g.tile, g.cols - q0);
        chan_copy cc = {.g = &g, .q0 = q0, .tw = tl.tw, .dy = dy, .mat = dyt};
        per_out_channel(&cc, gather_dy_channel);
        /* dcol[K, tw] = W^T dY: A(r, o) = W[o, r] */
        nd__sgemm(kern, g.k, tl.tw, g.o, nd_data(wd), 1, g.k, dyt, tl.tw, 1, col, tl.tw,
                  false);
        per_channel(&tl, col2im_channel);
    }
    nd__release(dyt, dyt_bytes);
    nd__release(col, col_bytes);
    nd_free(wd);
    emit(ND_OP_CONV2D_BACKWARD_INPUT, dx, dy, w, NULL, opts);
    return dx;
}

/* dst[c, r] = src[r, c] for src [rows, cols]; chunk c: one row of dst */
typedef struct {
    const float *src;
    float *dst;
    int64_t rows, cols;
} transpose;

static void transpose_row(void *ctx, int64_t c, int worker) {
    (void)worker;
    const transpose *t = ctx;
    for (int64_t r = 0; r < t->rows; r++) t->dst[c * t->rows + r] = t->src[r * t->cols + c];
}

nd_tensor *nd_conv2d_backward_weight(const nd_tensor *dy, const nd_tensor *x,
                                     const int64_t *w_shape, nd_conv2d_opts opts) {
    const char *op = "conv2d_backward_weight";
    geom g = nd__conv_check_backward_weight(op, dy, x, w_shape, opts);
    plan_tiles(&g);
    nd_tensor *dw = nd__new(w_shape, 4, op);
    float *dwd = nd_data(dw);
    const nd_kernels *kern = nd__kernels();
    size_t dwt_bytes = floats(g.k * g.o);
    float *dwt = nd__alloc(dwt_bytes, op);
    if (g.cols == 0) {
        memset(dwt, 0, (size_t)(g.k * g.o) * sizeof(float));
    } else if (kern->gemm_tile_arows && g.sh == 1 && g.sw == 1) {
        nd__conv_direct_weight_grad(kern, &g, x, dy, &opts, dwt, op);
    } else {
        size_t col_bytes = floats(g.k * g.tile), dyt_bytes = floats(g.o * g.tile);
        float *col = nd__alloc(col_bytes, op), *dyt = nd__alloc(dyt_bytes, op);
        tile tl = {.g = &g, .x = nd_data(x), .col = col};
        memcpy(tl.xs, x->strides, sizeof tl.xs);
        for (int64_t q0 = 0; q0 < g.cols; q0 += g.tile) {
            tl.q0 = q0;
            tl.tw = min64(g.tile, g.cols - q0);
            per_channel(&tl, im2col_channel);
            chan_copy cc = {.g = &g, .q0 = q0, .tw = tl.tw, .dy = dy, .mat = dyt};
            per_out_channel(&cc, gather_dy_channel);
            /* dW^T[K, O] (+)= col[K, tw] dY^T: A = col read row by row (the
             * cheap way to pack), B(t, o) = dyt[o, t] (small) */
            nd__sgemm(kern, g.k, g.o, tl.tw, col, tl.tw, 1, dyt, 1, tl.tw, dwt, g.o, q0 > 0);
        }
        nd__release(dyt, dyt_bytes);
        nd__release(col, col_bytes);
    }
    /* dW[o, r] = dW^T[r, o] */
    transpose t = {.src = dwt, .dst = dwd, .rows = g.k, .cols = g.o};
    run_chunks(g.k * g.o, PARALLEL_COPY, g.o, transpose_row, &t);
    nd__release(dwt, dwt_bytes);
    emit(ND_OP_CONV2D_BACKWARD_WEIGHT, dw, dy, x, NULL, opts);
    return dw;
}
