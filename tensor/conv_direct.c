/* The direct convolution, stride 1, for the three passes of conv.c.
 *
 * With stride 1, row r = (c, u, v) of im2col for the positions of one
 * output row (n, i) is input row (n, c, i + u - pt) shifted by v - pl. In a
 * zero-padded copy of the input the kernels read those rows in place,
 * through a table of row offsets: no im2col and no packing of B, and the
 * output rows are written where they belong. Backward input is the same
 * convolution of dy, padded by (KH - 1 - pt, KH - 1 - pb, KW - 1 - pl,
 * KW - 1 - pr), with the weight transposed and flipped: it writes dx
 * directly, with no col2im. Each output element is summed over r in
 * ascending order, in kc-slices fixed by K, by one thread.
 *
 * Forward and backward input make the padded copy where it is read, a
 * chunk's rows at a time, in the cache of the thread that reads them:
 * padding a whole batch first is a pass through memory that runs no
 * faster on two threads than on one. The weight gradient, whose chunks
 * all read every position, pads a group of images first.
 *
 * Output rows narrower than a tile (the 8x8 and 4x4 levels of a UNet)
 * would leave most of each tile's columns idle. There the copy holds KW
 * shifted planes instead, S_v[c, h, j] = padded x[c, h, j + v], rows
 * exactly OW wide: row r = (c, u, v) for the consecutive positions
 * i OW + j of a block of output rows is then one run of S_v starting at
 * row u, and a tile takes nr positions across output rows, as the output
 * rows lie in y. */
#include <string.h>

#include "conv.h"

/* K and the positions are summed in equal kc-slices of at most DIRECT_KC,
 * as in the GEMM. */
#define DIRECT_KC 384

/* Output rows per chunk of forward and backward input: at most
 * DIRECT_ROWS, fewer for a small batch so as to make about DIRECT_CHUNKS
 * chunks (the shapes alone decide), and fewer when a worker's padded rows
 * (every input channel) would pass DIRECT_SCRATCH floats. */
#define DIRECT_ROWS 8
#define DIRECT_CHUNKS 16
#define DIRECT_SCRATCH (1 << 15)

/* Row r = (c, u, v) of im2col at c plane + u wp + v of a padded copy,
 * or with `shifted` (narrow rows, rows wp = OW wide) at (v C + c) plane +
 * u wp of the shifted planes. */
static void row_offsets(int64_t *off, int64_t k, int64_t kh, int64_t kw, int64_t plane,
                        int64_t wp, bool shifted, int64_t cin) {
    for (int64_t r = 0; r < k; r++) {
        int64_t c = r / (kh * kw), u = r % (kh * kw) / kw, v = r % kw;
        off[r] = shifted ? (v * cin + c) * plane + u * wp : c * plane + u * wp + v;
    }
}

static int64_t slice_len(int64_t n) {
    int64_t slices = (n + DIRECT_KC - 1) / DIRECT_KC;
    return (n + slices - 1) / slices;
}

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

/* Rows y0 .. y0 + rows - 1 of the shifted plane S_v of (image n, channel
 * c), OW = p->wp floats each, from dst on. */
static void pad_shifted(const padded *p, int64_t n, int64_t c, int64_t y0, int64_t rows,
                        int64_t v, float *restrict dst) {
    memset(dst, 0, (size_t)(rows * p->wp) * sizeof(float));
    const float *src = p->in + n * p->s[0] + c * p->s[1];
    int64_t h0 = max64(y0 - p->pt, 0), h1 = min64(y0 + rows - p->pt, p->h);
    int64_t j0 = max64(p->pl - v, 0), j1 = min64(p->w + p->pl - v, p->wp);
    for (int64_t h = h0; h < h1; h++) {
        float *restrict d = dst + (h + p->pt - y0) * p->wp;
        const float *restrict s = src + h * p->s[2];
        for (int64_t j = j0; j < j1; j++) d[j] = s[(j + v - p->pl) * p->s[3]];
    }
}

typedef struct {
    const nd_kernels *kern;
    padded in;
    bool narrow;              /* rows narrower than a tile: shifted planes */
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

/* A worker's scratch: every channel's padded rows (KW shifted planes of
 * them for narrow rows), and nr zeros that the last tile of a narrow
 * block may read past its positions. */
static int64_t scratch_floats(const direct *d, int64_t rows) {
    int64_t plane = (rows + d->kh - 1) * d->in.wp;
    return d->narrow ? d->kw * d->in.c * plane + d->kern->gemm_nr : d->in.c * plane;
}

/* The output rows i0 .. i1 - 1 of image n as one run of positions, from
 * the shifted planes at pad: tiles of nr positions, across rows. */
static void narrow_rows(const direct *d, int64_t n, int64_t i0, int64_t i1, const float *pad) {
    const int mr = d->kern->gemm_mr, nr = d->kern->gemm_nr;
    int64_t ldc = d->oh * d->ow, len = (i1 - i0) * d->ow;
    float *out = d->out + n * d->cout * ldc + i0 * d->ow;
    for (int64_t p0 = 0; p0 < d->k; p0 += d->kc) {
        int64_t kc = min64(d->k - p0, d->kc);
        const float *as = d->ap + p0 * d->mp;
        for (int64_t q = 0; q < len; q += nr)
            for (int64_t o = 0; o < d->cout; o += mr)
                d->kern->gemm_tile_rows(kc, as + o * kc, pad + q, d->boff + p0,
                                        out + o * ldc + q, ldc, p0 > 0,
                                        (int)min64(mr, d->cout - o), (int)min64(nr, len - q));
    }
    if (d->bias)
        for (int64_t o = 0; o < d->cout; o++) {
            float b = d->bias[o * d->bias_stride], *y = out + o * ldc;
            for (int64_t j = 0; j < len; j++) y[j] += b;
        }
}

/* Chunk (image, block of output rows): pads the input rows the block
 * reads, then computes every output channel of it. */
static void direct_rows(void *ctx, int64_t chunk, int worker) {
    const direct *d = ctx;
    const int mr = d->kern->gemm_mr, nr = d->kern->gemm_nr;
    int64_t n = chunk / d->blocks, i0 = chunk % d->blocks * d->rows;
    int64_t i1 = min64(i0 + d->rows, d->oh), plane = d->hs * d->in.wp, ldc = d->oh * d->ow;
    float *pad = d->scratch + worker * scratch_floats(d, d->rows);
    if (d->narrow) {
        for (int64_t v = 0; v < d->kw; v++)
            for (int64_t c = 0; c < d->in.c; c++)
                pad_shifted(&d->in, n, c, i0, i1 - i0 + d->kh - 1, v,
                            pad + (v * d->in.c + c) * plane);
        narrow_rows(d, n, i0, i1, pad);
        return;
    }
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
    /* partial panels, flipped ones, or no gemm_pack_a; in a flipped one
     * r = (o', uv), with uv = u KW + v stepped along: no divisions */
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

bool nd__conv_direct_fits(const nd_kernels *kern, const geom *g, int64_t height,
                          int64_t width) {
    if (!kern->gemm_tile_rows || g->sh != 1 || g->sw != 1 || g->n <= 0 || g->c <= 0 ||
        g->o <= 0)
        return false;
    if (width >= kern->gemm_nr) return true;
    /* narrow rows: an image's positions in tiles of nr, at most 1/8 idle */
    int64_t p = height * width, nr = kern->gemm_nr;
    return p > 0 && 8 * ((p + nr - 1) / nr * nr - p) <= p;
}

static int64_t gcd64(int64_t a, int64_t b) {
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

void nd__conv_direct(const nd_kernels *kern, const float *in, const int64_t *is, int64_t n,
                     int64_t cin, int64_t hin, int64_t win, int64_t pt, int64_t pb,
                     int64_t pl, int64_t pr, const float *w, bool flipped, int64_t cout,
                     int64_t kh, int64_t kw, const float *bias, int64_t bias_stride,
                     float *out, const char *op) {
    const int mr = kern->gemm_mr, nr = kern->gemm_nr;
    direct d = {.kern = kern,
                .in = {.in = in, .c = cin, .h = hin, .w = win, .pt = pt, .pl = pl},
                .cout = cout, .kh = kh, .kw = kw, .out = out, .bias = bias,
                .bias_stride = bias_stride};
    memcpy(d.in.s, is, sizeof d.in.s);
    d.oh = pt + hin + pb - kh + 1;
    d.ow = pl + win + pr - kw + 1;
    d.narrow = d.ow < nr;
    /* every row readable nr floats from any output column; shifted planes
     * are exactly as wide as the output */
    d.in.wp = d.narrow ? d.ow : (d.ow + nr - 1) / nr * nr + kw - 1;
    if (d.oh <= 0 || d.ow <= 0) return; /* backward input of an empty dx */
    int64_t per_image = (DIRECT_CHUNKS + n - 1) / n;
    d.rows = max64(1, min64(DIRECT_ROWS, (d.oh + per_image - 1) / per_image));
    /* narrow rows: blocks of whole tiles where they fit, `unit` rows each */
    int64_t unit = d.narrow ? nr / gcd64(nr, d.ow) : 1;
    if (d.narrow) d.rows = min64(d.oh, (d.rows + unit - 1) / unit * unit);
    while (d.rows > unit && scratch_floats(&d, d.rows) > DIRECT_SCRATCH) d.rows -= unit;
    while (d.rows > 1 && scratch_floats(&d, d.rows) > DIRECT_SCRATCH) d.rows--;
    d.hs = d.rows + kh - 1;
    d.blocks = (d.oh + d.rows - 1) / d.rows;
    d.k = cin * kh * kw;
    d.kc = slice_len(d.k);
    d.mp = (cout + mr - 1) / mr * mr;
    int64_t plane = d.hs * d.in.wp, work = n * d.oh * cout * d.ow * d.k;
    int workers = chunk_workers(work, PARALLEL_WORK);
    size_t ap_bytes = floats(d.mp * d.k), off_bytes = (size_t)max64(d.k, 1) * sizeof(int64_t);
    size_t pad_bytes = floats(workers * scratch_floats(&d, d.rows));
    float *ap = nd__alloc(ap_bytes, op), *pad = nd__alloc(pad_bytes, op);
    if (d.narrow) memset(pad, 0, pad_bytes); /* the zeros past each worker's planes */
    int64_t *boff = nd__alloc(off_bytes, op);
    row_offsets(boff, d.k, kh, kw, plane, d.in.wp, d.narrow, cin);
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
 * images. A chunk is a block of rows r times a range of the group's
 * kc-slices of positions: range 0 sums onto dW^T, the others into partial
 * sums that are then added to it in range order. So the sum of an element
 * runs through the slices of each range in order, then the ranges in
 * order, then the groups, whatever the thread count. Blocks of rows alone
 * left a layer with few rows on one thread (K = 27 for an RGB input: one
 * block), and large blocks read the packed dY^T fewer times (3 reads of
 * 1 MiB for 64 -> 64 channels, where blocks of 48 rows made 12). */
#define WGRAD_ROWS 192       /* rows r per block */
#define WGRAD_CHUNKS 16      /* about this many chunks, when there are slices enough */
#define WGRAD_PARTS (1 << 18) /* at most this many floats of partial sums */
/* Planes per padding chunk: some tens of KiB each. A chunk per plane
 * (a few hundred floats) made the threads fight over the pool's chunk
 * counter, and two threads padded slower than one. */
#define PAD_CHUNK (1 << 14)
/* Floats of x padded at a time: a group of whole images (4 MiB). */
#define GROUP_BUDGET (1024 * 1024)

typedef struct {
    const nd_kernels *kern;
    padded x;
    int64_t hp;            /* x's padded height */
    const nd_tensor *dy;
    int64_t oh, ow;
    int64_t n0, nplanes;   /* the group's first image, its planes */
    int64_t o, k;          /* O, K = C KH KW */
    int64_t t, tc;         /* positions of the group, in kc-slices */
    int64_t spr, ranges;   /* slices per range, ranges of the group */
    const int64_t *aoff, *roff;
    float *pad;            /* the group padded: image nl, channel c at (nl C + c) hp wp */
    float *bp;             /* dY^T of the group: o-panel at bp + panel t nr */
    float *dwt;            /* [K, O] */
    float *part;           /* range j > 0 sums into part + (j - 1) K O */
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

/* Chunk: rows [b WGRAD_ROWS, ...) of block b, every column, summed over
 * the slices of range j (chunk = b ranges + j). */
static void wgrad_rows(void *ctx, int64_t chunk, int worker) {
    (void)worker;
    const wgrad *wg = ctx;
    const nd_kernels *kern = wg->kern;
    const int mr = kern->gemm_mr, nr = kern->gemm_nr;
    int64_t j = chunk % wg->ranges, r0 = chunk / wg->ranges * WGRAD_ROWS;
    int64_t r1 = min64(r0 + WGRAD_ROWS, wg->k);
    int64_t t_lo = j * wg->spr * wg->tc, t_hi = min64(t_lo + wg->spr * wg->tc, wg->t);
    float *c = j == 0 ? wg->dwt : wg->part + (j - 1) * wg->k * wg->o;
    for (int64_t t0 = t_lo; t0 < t_hi; t0 += wg->tc) {
        int64_t tc = min64(t_hi - t0, wg->tc);
        bool acc = t0 > t_lo || (j == 0 && !wg->first);
        for (int64_t o = 0; o < wg->o; o += nr) {
            const float *b = wg->bp + o / nr * wg->t * nr + t0 * nr;
            for (int64_t r = r0; r < r1; r += mr)
                kern->gemm_tile_arows(tc, wg->pad, wg->aoff + t0, wg->roff + r, b,
                                      c + r * wg->o + o, wg->o, acc, (int)min64(mr, r1 - r),
                                      (int)min64(nr, wg->o - o));
        }
    }
}

/* Chunk: rows [chunk WGRAD_ROWS, ...) of dW^T += the partial sums of
 * ranges 1, 2, ... in order. */
static void wgrad_add_parts(void *ctx, int64_t chunk, int worker) {
    (void)worker;
    const wgrad *wg = ctx;
    int64_t lo = chunk * WGRAD_ROWS * wg->o, hi = min64(lo + WGRAD_ROWS * wg->o, wg->k * wg->o);
    for (int64_t j = 1; j < wg->ranges; j++) {
        const float *restrict s = wg->part + (j - 1) * wg->k * wg->o;
        float *restrict d = wg->dwt;
        for (int64_t e = lo; e < hi; e++) d[e] += s[e];
    }
}

/* Cuts the positions of a group of nimg images into kc-slices, and those
 * into ranges: enough for about WGRAD_CHUNKS chunks with `blocks` blocks
 * of rows, within WGRAD_PARTS floats of partial sums of ko floats each.
 * Depends on the shapes alone. */
static void plan_ranges(wgrad *wg, int64_t nimg, int64_t blocks) {
    wg->t = nimg * wg->oh * wg->ow;
    wg->tc = slice_len(wg->t);
    int64_t slices = (wg->t + wg->tc - 1) / wg->tc;
    int64_t want = (WGRAD_CHUNKS + blocks - 1) / blocks;
    int64_t most = 1 + WGRAD_PARTS / max64(wg->k * wg->o, 1);
    int64_t ranges = max64(1, min64(min64(want, most), slices));
    wg->spr = (slices + ranges - 1) / ranges;
    wg->ranges = (slices + wg->spr - 1) / wg->spr;
}

void nd__conv_direct_weight_grad(const nd_kernels *kern, const geom *g, const nd_tensor *x,
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
    int64_t group = max64(1, min64(GROUP_BUDGET / max64(g->c * plane, 1), g->n));
    int64_t opanels = (g->o + nr - 1) / nr;
    size_t pad_bytes = floats(group * g->c * plane);
    size_t bp_bytes = floats(opanels * group * p * nr);
    size_t aoff_bytes = (size_t)(group * p) * sizeof(int64_t);
    size_t roff_bytes = (size_t)g->k * sizeof(int64_t);
    float *pad = nd__alloc(pad_bytes, op), *bp = nd__alloc(bp_bytes, op);
    int64_t *aoff = nd__alloc(aoff_bytes, op), *roff = nd__alloc(roff_bytes, op);
    row_offsets(roff, g->k, g->kh, g->kw, plane, wg.x.wp, false, g->c);
    for (int64_t t = 0, nl = 0; nl < group; nl++)
        for (int64_t i = 0; i < g->oh; i++)
            for (int64_t j = 0; j < g->ow; j++, t++) aoff[t] = nl * g->c * plane + i * wg.x.wp + j;
    wg.pad = pad;
    wg.bp = bp;
    wg.aoff = aoff;
    wg.roff = roff;
    int64_t blocks = (g->k + WGRAD_ROWS - 1) / WGRAD_ROWS;
    /* partial sums for the group cut into the most ranges: fewer slices
     * can make more ranges (17 slices in 9 ranges of 2, 16 in 16 of 1), so
     * the last, smaller group may need more than the full ones */
    plan_ranges(&wg, group, blocks);
    int64_t ranges = wg.ranges;
    plan_ranges(&wg, (g->n - 1) % group + 1, blocks); /* the last group */
    ranges = max64(ranges, wg.ranges);
    size_t part_bytes = floats((ranges - 1) * g->k * g->o);
    wg.part = nd__alloc(part_bytes, op);
    for (int64_t n0 = 0; n0 < g->n; n0 += group) {
        int64_t nimg = min64(group, g->n - n0);
        wg.n0 = n0;
        plan_ranges(&wg, nimg, blocks);
        wg.first = n0 == 0;
        wg.nplanes = nimg * g->c;
        int64_t per = pad_planes_per_chunk(&wg);
        run_chunks(wg.nplanes * plane, PARALLEL_COPY, (wg.nplanes + per - 1) / per, wgrad_pad, &wg);
        /* dY^T a panel and an image per chunk */
        run_chunks(nimg * g->o * p, PARALLEL_COPY, opanels * nimg, wgrad_pack_dy, &wg);
        run_chunks(wg.t * g->k * g->o, PARALLEL_WORK, blocks * wg.ranges, wgrad_rows, &wg);
        if (wg.ranges > 1)
            run_chunks((wg.ranges - 1) * g->k * g->o, PARALLEL_COPY, blocks, wgrad_add_parts,
                       &wg);
    }
    nd__release(wg.part, part_bytes);
    nd__release(roff, roff_bytes);
    nd__release(aoff, aoff_bytes);
    nd__release(bp, bp_bytes);
    nd__release(pad, pad_bytes);
}
