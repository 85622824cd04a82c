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
 * With stride 1 and output rows at least a kernel tile wide, all three
 * passes skip im2col instead (see "direct convolution" below): the
 * kernels read a zero-padded copy of the input in place, a group of
 * images at a time within the same budget. */
#include <string.h>

#include "internal.h"
#include "kernels.h"

/* Tile width: as many columns as COL_BUDGET floats of col allow (1808 for
 * K = 576), within [TILE_MIN, TILE_MAX]. Wide tiles let the GEMM amortise
 * packing W, which it repacks for every block of columns it cuts; the
 * budget (4 MiB) keeps col in the last-level cache between im2col and the
 * GEMM's packing. Measured on a 3x3, 64 -> 64 channel layer: 1 Mi floats
 * ran ~5% faster than 192 Ki (col within L2) and than 2 Mi. */
#define COL_BUDGET (1024 * 1024)
#define TILE_MIN 256
#define TILE_MAX 4096
/* Copies smaller than this (floats) are not worth waking the pool. */
#define PARALLEL_COPY (1 << 15)
/* The direct convolution: kc-slices of K as in the GEMM, and flops
 * (multiply-adds) below which it runs on one thread. */
#define DIRECT_KC 384
#define PARALLEL_WORK (1 << 18)

/* The workers run_chunks gives a job of `work` (floats copied, or
 * multiply-adds): the pool's threads when it reaches threshold, else this
 * thread alone, as worker 0 (also inside a job of the pool, where a loop
 * would run in place anyway). */
static int chunk_workers(int64_t work, int64_t threshold) {
    return work >= threshold && !nd__in_parallel() ? nd_get_num_threads() : 1;
}

/* fn(ctx, c, worker) for every chunk c < chunks, on chunk_workers. */
static void run_chunks(int64_t work, int64_t threshold, int64_t chunks, nd_chunk_fn fn,
                       void *ctx) {
    if (chunk_workers(work, threshold) > 1) nd__parallel_for(chunks, fn, ctx);
    else
        for (int64_t c = 0; c < chunks; c++) fn(ctx, c, 0);
}

typedef struct {
    int64_t n, c, h, w;     /* x */
    int64_t o, kh, kw;      /* w */
    int64_t oh, ow;         /* y */
    int64_t sh, sw, pt, pl; /* strides, top and left padding */
    int64_t k, p;           /* C KH KW; OH OW */
    int64_t cols, tile;     /* N P positions, in tiles of `tile` */
} geom;

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

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

static size_t floats(int64_t n) { return (size_t)max64(n, 1) * sizeof(float); }

/* ---- direct convolution, stride 1 ------------------------------------------- */

/* With stride 1, row r = (c, u, v) of im2col for the positions of one
 * output row (n, i) is input row (n, c, i + u - pt) shifted by v - pl. In a
 * zero-padded copy of the input the kernels read those rows in place,
 * through a table of row offsets: no im2col and no packing of B, and the
 * output rows are written where they belong. Backward input is the same
 * convolution of dy, padded by (KH - 1 - pt, KH - 1 - pb, KW - 1 - pl,
 * KW - 1 - pr), with the weight transposed and flipped: it writes dx
 * directly, with no col2im. Each output element is summed over r in
 * ascending order, in kc-slices fixed by K, by one thread.
 *
 * The padded copy is made where it is read, a chunk's rows at a time, into
 * the cache of the thread that reads them: padding a whole batch first is
 * a pass through memory that runs no faster on two threads than on one. */

/* Output rows per chunk of the forward pass, and the floats of a worker's
 * padded rows (every input channel) they may need. */
#define DIRECT_ROWS 8
#define DIRECT_SCRATCH (1 << 15)

/* An input [n, c, h, w] (strides s) seen zero-padded: pt rows above, pl
 * columns left, rows wp wide, and zeros below and right. */
typedef struct {
    const float *in;
    int64_t s[4];
    int64_t c, h, w;
    int64_t pt, pl, wp;
} padded;

/* Padded rows y0 .. y0 + rows - 1 of plane (image n, channel c), wp floats
 * apart from dst on: zeroed in one call, then the input rows copied in
 * blocks of 8 floats. Rows are a few tens of floats, where a call to
 * memcpy or memset per row (and two for the margins) cost more than the
 * copy. */
static void pad_rows(const padded *p, int64_t n, int64_t c, int64_t y0, int64_t rows,
                     float *restrict dst) {
    memset(dst, 0, (size_t)(rows * p->wp) * sizeof(float));
    const float *src = p->in + n * p->s[0] + c * p->s[1];
    int64_t h0 = max64(y0 - p->pt, 0), h1 = min64(y0 + rows - p->pt, p->h);
    for (int64_t h = h0; h < h1; h++) {
        float *restrict d = dst + (h + p->pt - y0) * p->wp + p->pl;
        const float *restrict s = src + h * p->s[2];
        int64_t j = 0;
        if (p->s[3] == 1)
            for (; j + 8 <= p->w; j += 8)
                for (int e = 0; e < 8; e++) d[j + e] = s[j + e];
        for (; j < p->w; j++) d[j] = s[j * p->s[3]];
    }
}

typedef struct {
    const nd_kernels *kern;
    padded in;
    int64_t cout, kh, kw, oh, ow;
    int64_t rows, hs, blocks; /* output rows per chunk, padded rows they read per
                                 channel (rows + kh - 1), chunks per image */
    int64_t k, kc, mp;        /* K = cin kh kw in kc-slices; cout rounded up to mr */
    const float *ap;          /* packed weights: slice p0 at ap + p0 mp */
    const int64_t *boff;      /* row r = (c, u, v) at c hs wp + u wp + v */
    float *scratch;           /* a worker's padded rows at worker cin hs wp */
    float *out;               /* [N, cout, oh, ow], contiguous */
    const float *bias;
    int64_t bias_stride;
} direct;

/* Chunk (image, block of output rows): pads the input rows the block
 * reads, then computes every output channel of it. */
static void direct_rows(void *ctx, int64_t chunk, int worker) {
    const direct *d = ctx;
    const int mr = d->kern->gemm_mr, nr = d->kern->gemm_nr;
    int64_t n = chunk / d->blocks, i0 = chunk % d->blocks * d->rows;
    int64_t i1 = min64(i0 + d->rows, d->oh), plane = d->hs * d->in.wp, ldc = d->oh * d->ow;
    float *pad = d->scratch + worker * d->in.c * plane;
    for (int64_t c = 0; c < d->in.c; c++)
        pad_rows(&d->in, n, c, i0, i1 - i0 + d->kh - 1, pad + c * plane);
    for (int64_t i = i0; i < i1; i++) {
        const float *base = pad + (i - i0) * d->in.wp;
        float *orow = d->out + n * d->cout * ldc + i * d->ow;
        for (int64_t p0 = 0; p0 < d->k; p0 += d->kc) {
            int64_t kc = min64(d->k - p0, d->kc);
            const float *as = d->ap + p0 * d->mp;
            for (int64_t j0 = 0; j0 < d->ow; j0 += nr)
                for (int64_t o = 0; o < d->cout; o += mr)
                    d->kern->gemm_tile_rows(kc, as + o * kc, base + j0, d->boff + p0,
                                            orow + o * ldc + j0, ldc, p0 > 0,
                                            (int)min64(mr, d->cout - o),
                                            (int)min64(nr, d->ow - j0));
        }
        if (d->bias)
            for (int64_t o = 0; o < d->cout; o++) {
                float b = d->bias[o * d->bias_stride], *y = orow + o * ldc;
                for (int64_t j = 0; j < d->ow; j++) y[j] += b;
            }
    }
}

/* The weight as the kernels' A: A(o, r) for o < cout, r < K, in mr-row
 * panels per kc-slice, zero-padded. Forward: A(o, r) = w[o, r]. Flipped
 * (backward input, o a channel of x, r = (o', u, v)):
 * A(o, r) = w[o', o, KH - 1 - u, KW - 1 - v]. */
typedef struct {
    const direct *d;
    const float *w;
    bool flipped;
    float *ap;
} weight_pack;

/* Chunk: one mr-row panel of one kc-slice. */
static void pack_weight_panel(void *ctx, int64_t chunk, int worker) {
    (void)worker;
    const weight_pack *wp = ctx;
    const direct *d = wp->d;
    const int mr = d->kern->gemm_mr;
    int64_t kk = d->kh * d->kw, panels = d->mp / mr;
    int64_t p0 = chunk / panels * d->kc, o0 = chunk % panels * mr;
    int64_t kc = min64(d->k - p0, d->kc), rows = min64(mr, d->cout - o0);
    float *dst = wp->ap + p0 * d->mp + o0 * kc;
    if (!wp->flipped && rows == mr && d->kern->gemm_pack_a) {
        d->kern->gemm_pack_a(kc, wp->w + o0 * d->k + p0, d->k, dst);
        return;
    }
    /* flipped: r = (o', uv) with uv = u KW + v stepped along, no divisions */
    int64_t oc = p0 / kk, uv = p0 % kk;
    for (int64_t p = p0; p < p0 + kc; p++, dst += mr) {
        const float *src = wp->w + o0 * d->k + p;
        int64_t step = d->k;
        if (wp->flipped) {
            src = wp->w + (oc * d->cout + o0) * kk + kk - 1 - uv;
            step = kk;
            if (++uv == kk) uv = 0, oc++;
        }
        int64_t o = 0;
        for (; o < rows; o++) dst[o] = src[o * step];
        for (; o < mr; o++) dst[o] = 0.0f;
    }
}

static void direct_pack_weight(const direct *d, const float *w, bool flipped, float *ap) {
    weight_pack wp = {.d = d, .w = w, .flipped = flipped, .ap = ap};
    int64_t chunks = (d->k + d->kc - 1) / d->kc * (d->mp / d->kern->gemm_mr);
    run_chunks(d->mp * d->k, PARALLEL_COPY, chunks, pack_weight_panel, &wp);
}

/* Whether the direct convolution applies: a kernel set with
 * gemm_tile_rows, stride 1, and output rows at least a tile wide (narrower
 * rows would waste most of each tile; im2col packs several rows into one). */
static bool direct_fits(const nd_kernels *kern, const geom *g, int64_t width) {
    return kern->gemm_tile_rows && g->sh == 1 && g->sw == 1 && width >= kern->gemm_nr &&
           g->n > 0 && g->c > 0 && g->o > 0;
}

/* out = the stride-1 convolution of in (padded by pt, pb, pl, pr) with
 * the dense weight w (flipped: see direct_pack_weight), + bias. */
static void direct_conv(const nd_kernels *kern, const float *in, const int64_t *is,
                        int64_t n, int64_t cin, int64_t hin, int64_t win, int64_t pt,
                        int64_t pb, int64_t pl, int64_t pr, const float *w, bool flipped,
                        int64_t cout, int64_t kh, int64_t kw, const float *bias,
                        int64_t bias_stride, float *out, const char *op) {
    const int mr = kern->gemm_mr, nr = kern->gemm_nr;
    direct d = {.kern = kern,
                .in = {.in = in, .c = cin, .h = hin, .w = win, .pt = pt, .pl = pl},
                .cout = cout, .kh = kh, .kw = kw, .out = out, .bias = bias,
                .bias_stride = bias_stride};
    memcpy(d.in.s, is, sizeof d.in.s);
    d.oh = pt + hin + pb - kh + 1;
    d.ow = pl + win + pr - kw + 1;
    /* every row readable nr floats from any output column */
    d.in.wp = (d.ow + nr - 1) / nr * nr + kw - 1;
    d.rows = min64(DIRECT_ROWS, d.oh);
    while (d.rows > 1 && cin * (d.rows + kh - 1) * d.in.wp > DIRECT_SCRATCH) d.rows--;
    d.hs = d.rows + kh - 1;
    d.blocks = (d.oh + d.rows - 1) / d.rows;
    d.k = cin * kh * kw;
    d.kc = (d.k + (d.k + DIRECT_KC - 1) / DIRECT_KC - 1) / ((d.k + DIRECT_KC - 1) / DIRECT_KC);
    d.mp = (cout + mr - 1) / mr * mr;
    int64_t plane = d.hs * d.in.wp, work = n * d.oh * cout * d.ow * d.k;
    int workers = chunk_workers(work, PARALLEL_WORK);
    size_t ap_bytes = floats(d.mp * d.k), off_bytes = (size_t)max64(d.k, 1) * sizeof(int64_t);
    size_t pad_bytes = floats(workers * cin * plane);
    float *ap = nd__alloc(ap_bytes, op), *pad = nd__alloc(pad_bytes, op);
    int64_t *boff = nd__alloc(off_bytes, op);
    for (int64_t r = 0; r < d.k; r++)
        boff[r] = r / (kh * kw) * plane + r % (kh * kw) / kw * d.in.wp + r % kw;
    direct_pack_weight(&d, w, flipped, ap);
    d.ap = ap;
    d.boff = boff;
    d.scratch = pad;
    run_chunks(work, PARALLEL_WORK, n * d.blocks, direct_rows, &d);
    nd__release(boff, off_bytes);
    nd__release(pad, pad_bytes);
    nd__release(ap, ap_bytes);
}

/* Backward weight, stride 1: dW^T[r, o] = sum_t A(r, t) dY^T[t, o] with
 * A(r, t) = im2col read in place from the padded copy of x, at
 * aoff[t] + roff[r], and dY^T packed in nr-column panels per group of
 * images. Chunks are blocks of rows r; each sums its elements over the
 * groups, then the kc-slices of each group's positions, in order. (Chunks
 * of whole channels that padded their own rows were up to 10% slower on
 * two threads than padding the group first: 11 or 16 chunks against 12.) */
#define WGRAD_ROWS 48 /* rows r per chunk */
/* Planes per padding chunk: some tens of KiB each. A chunk per plane
 * (a few hundred floats) made the threads fight over the pool's chunk
 * counter, and two threads padded slower than one. */
#define PAD_CHUNK (1 << 14)

typedef struct {
    const nd_kernels *kern;
    padded x;
    int64_t hp;            /* x's padded height */
    const nd_tensor *dy;
    int64_t oh, ow;
    int64_t n0, nplanes;   /* the group's first image, its planes */
    int64_t o, k;          /* O, K = C KH KW */
    int64_t t, tc;         /* positions of the group, in kc-slices */
    const int64_t *aoff, *roff;
    float *pad;            /* the group padded: image nl, channel c at (nl C + c) hp wp */
    float *bp;             /* dY^T of the group: o-panel at bp + panel t nr */
    float *dwt;            /* [K, O] */
    bool first;            /* the first group: no sums to add to */
} wgrad;

/* Chunk: one image's rows of one nr-column panel of dY^T for the group. */
static void wgrad_pack_dy(void *ctx, int64_t chunk, int worker) {
    (void)worker;
    const wgrad *wg = ctx;
    const int nr = wg->kern->gemm_nr;
    const float *base = nd_data(wg->dy);
    const int64_t *s = wg->dy->strides;
    int64_t p = wg->oh * wg->ow, nimg = wg->t / p;
    int64_t panel = chunk / nimg, nl = chunk % nimg;
    float *dst = wg->bp + panel * wg->t * nr;
    int64_t o0 = panel * nr, w = min64(nr, wg->o - o0);
    int64_t t = nl * p;
    if (w == nr && s[3] == 1 && s[2] == wg->ow && wg->kern->gemm_pack_bt) {
        /* the image's positions are one row per channel: a column-major panel */
        wg->kern->gemm_pack_bt(p, base + (wg->n0 + nl) * s[0] + o0 * s[1], s[1], dst + t * nr);
        return;
    }
    for (int64_t i = 0; i < wg->oh; i++)
        for (int64_t j = 0; j < wg->ow; j++, t++) {
            const float *src = base + (wg->n0 + nl) * s[0] + o0 * s[1] + i * s[2] + j * s[3];
            float *d = dst + t * nr;
            int64_t e = 0;
            for (; e < w; e++) d[e] = src[e * s[1]];
            for (; e < nr; e++) d[e] = 0.0f;
        }
}

static int64_t pad_planes_per_chunk(const wgrad *wg) {
    return max64(PAD_CHUNK / (wg->hp * wg->x.wp), 1);
}

/* Chunk: planes [chunk per, (chunk + 1) per) of the group's, padded. */
static void wgrad_pad(void *ctx, int64_t chunk, int worker) {
    (void)worker;
    const wgrad *wg = ctx;
    int64_t per = pad_planes_per_chunk(wg), plane = wg->hp * wg->x.wp;
    for (int64_t i = chunk * per; i < (chunk + 1) * per && i < wg->nplanes; i++)
        pad_rows(&wg->x, wg->n0 + i / wg->x.c, i % wg->x.c, 0, wg->hp, wg->pad + i * plane);
}

/* Chunk: rows r of dW^T in [chunk WGRAD_ROWS, ...), every column. */
static void wgrad_rows(void *ctx, int64_t chunk, int worker) {
    (void)worker;
    const wgrad *wg = ctx;
    const nd_kernels *kern = wg->kern;
    const int mr = kern->gemm_mr, nr = kern->gemm_nr;
    int64_t r0 = chunk * WGRAD_ROWS, r1 = min64(r0 + WGRAD_ROWS, wg->k);
    for (int64_t t0 = 0; t0 < wg->t; t0 += wg->tc) {
        int64_t tc = min64(wg->t - t0, wg->tc);
        bool acc = !wg->first || t0 > 0;
        for (int64_t o = 0; o < wg->o; o += nr) {
            const float *b = wg->bp + o / nr * wg->t * nr + t0 * nr;
            for (int64_t r = r0; r < r1; r += mr)
                kern->gemm_tile_arows(tc, wg->pad, wg->aoff + t0, wg->roff + r, b,
                                      wg->dwt + r * wg->o + o, wg->o, acc,
                                      (int)min64(mr, r1 - r), (int)min64(nr, wg->o - o));
        }
    }
}

static void direct_weight_grad(const nd_kernels *kern, const geom *g, const nd_tensor *x,
                               const nd_tensor *dy, const nd_conv2d_opts *opts, float *dwt,
                               const char *op) {
    const int nr = kern->gemm_nr;
    wgrad wg = {.kern = kern,
                .x = {.in = nd_data(x), .c = g->c, .h = g->h, .w = g->w, .pt = g->pt,
                      .pl = g->pl, .wp = g->pl + g->w + opts->pad_right},
                .hp = g->pt + g->h + opts->pad_bottom, .dy = dy, .oh = g->oh, .ow = g->ow,
                .o = g->o, .k = g->k, .dwt = dwt};
    memcpy(wg.x.s, x->strides, sizeof wg.x.s);
    int64_t plane = wg.hp * wg.x.wp, p = g->oh * g->ow;
    int64_t group = max64(1, min64(COL_BUDGET / max64(g->c * plane, 1), g->n));
    int64_t opanels = (g->o + nr - 1) / nr;
    size_t pad_bytes = floats(group * g->c * plane);
    size_t bp_bytes = floats(opanels * group * p * nr);
    size_t aoff_bytes = (size_t)(group * p) * sizeof(int64_t);
    size_t roff_bytes = (size_t)g->k * sizeof(int64_t);
    float *pad = nd__alloc(pad_bytes, op), *bp = nd__alloc(bp_bytes, op);
    int64_t *aoff = nd__alloc(aoff_bytes, op), *roff = nd__alloc(roff_bytes, op);
    for (int64_t r = 0; r < g->k; r++)
        roff[r] = r / (g->kh * g->kw) * plane + r % (g->kh * g->kw) / g->kw * wg.x.wp + r % g->kw;
    for (int64_t t = 0, nl = 0; nl < group; nl++)
        for (int64_t i = 0; i < g->oh; i++)
            for (int64_t j = 0; j < g->ow; j++, t++) aoff[t] = nl * g->c * plane + i * wg.x.wp + j;
    wg.pad = pad;
    wg.bp = bp;
    wg.aoff = aoff;
    wg.roff = roff;
    int64_t chunks = (g->k + WGRAD_ROWS - 1) / WGRAD_ROWS;
    for (int64_t n0 = 0; n0 < g->n; n0 += group) {
        int64_t nimg = min64(group, g->n - n0);
        wg.n0 = n0;
        wg.t = nimg * p;
        wg.tc = (wg.t + (wg.t + DIRECT_KC - 1) / DIRECT_KC - 1) / ((wg.t + DIRECT_KC - 1) / DIRECT_KC);
        wg.first = n0 == 0;
        wg.nplanes = nimg * g->c;
        int64_t per = pad_planes_per_chunk(&wg);
        run_chunks(wg.nplanes * plane, PARALLEL_COPY, (wg.nplanes + per - 1) / per, wgrad_pad, &wg);
        /* dY^T a panel and an image per chunk */
        run_chunks(nimg * g->o * p, PARALLEL_COPY, opanels * nimg, wgrad_pack_dy, &wg);
        run_chunks(wg.t * g->k * g->o, PARALLEL_WORK, chunks, wgrad_rows, &wg);
    }
    nd__release(roff, roff_bytes);
    nd__release(aoff, aoff_bytes);
    nd__release(bp, bp_bytes);
    nd__release(pad, pad_bytes);
}

/* ---- the three ops -------------------------------------------------------- */

nd_tensor *nd_conv2d(const nd_tensor *x, const nd_tensor *w, const nd_tensor *bias,
                     nd_conv2d_opts opts) {
    const char *op = "conv2d";
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
    plan_tiles(&g);
    nd_tensor *y = nd__new(ND_SHAPE(g.n, g.o, g.oh, g.ow), op);
    nd_tensor *wd = dense_weight(w);
    const nd_kernels *kern = nd__kernels();
    if (direct_fits(kern, &g, g.ow)) {
        direct_conv(kern, nd_data(x), x->strides, g.n, g.c, g.h, g.w, g.pt,
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
    plan_tiles(&g);
    nd_tensor *dx = nd__new(x_shape, 4, op);
    nd_tensor *wd = dense_weight(w);
    const nd_kernels *kern = nd__kernels();
    if (direct_fits(kern, &g, g.w) && opts.pad_top < g.kh && opts.pad_bottom < g.kh &&
        opts.pad_left < g.kw && opts.pad_right < g.kw && g.cols > 0) {
        direct_conv(kern, nd_data(dy), dy->strides, g.n, g.o, g.oh, g.ow, g.kh - 1 - g.pt,
                    g.kh - 1 - opts.pad_bottom, g.kw - 1 - g.pl, g.kw - 1 - opts.pad_right,
                    nd_data(wd), true, g.c, g.kh, g.kw, NULL, 0, nd_data(dx), op);
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
    plan_tiles(&g);
    nd_tensor *dw = nd__new(w_shape, 4, op);
    float *dwd = nd_data(dw);
    const nd_kernels *kern = nd__kernels();
    size_t dwt_bytes = floats(g.k * g.o);
    float *dwt = nd__alloc(dwt_bytes, op);
    if (g.cols == 0) {
        memset(dwt, 0, (size_t)(g.k * g.o) * sizeof(float));
    } else if (kern->gemm_tile_arows && g.sh == 1 && g.sw == 1 && g.ow >= kern->gemm_nr) {
        direct_weight_grad(kern, &g, x, dy, &opts, dwt, op);
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
