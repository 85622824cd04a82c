/* 2-d convolution on random shapes: the forward and both backward passes
 * against a naive reference in double, with every kernel set, 1 to 3
 * threads, dense and strided inputs. Fixed cases (test_conv.c) pin the
 * paths that were thought of; these reach the combinations that were
 * not: tile edges, blocks of rows, slices and ranges of the weight
 * gradient, groups of images.
 *
 * Case i draws everything from the seed base + i, and a failure prints
 * that seed, so ND_CONV_SOAK_SEED=seed ND_CONV_SOAK=1 runs it alone.
 * ND_CONV_SOAK=n runs n cases instead of DEFAULT_CASES, and
 * ND_CONV_SOAK_SEED sets the base (default BASE_SEED). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define DEFAULT_CASES 240
#define BASE_SEED 1000
#define CASES_PER_TEST 40 /* a test (a process, a timeout) per this many */
/* Every GROUPS_EVERY-th seed draws a batch whose padded x passes the
 * million floats the weight gradient pads at a time (GROUP_BUDGET in
 * conv_direct.c), so that it takes the images in groups. */
#define GROUPS_EVERY 30

/* ---- drawing shapes ---------------------------------------------------------- */


/* Half the time a size next to a multiple of a tile side of some kernel
 * set (scalar 4 x 8, AVX2 6 x 16, NEON 8 x 12): the edges where a tile is
 * just full, one short or one over. Else any in [lo, hi]. */
static int64_t draw_size(uint64_t *s, int64_t lo, int64_t hi) {
    static const int64_t sides[] = {4, 6, 8, 12, 16};
    int64_t side = sides[t_draw(s, 0, 4)];
    if (t_draw(s, 0, 1) || side > hi + 1) return t_draw(s, lo, hi);
    int64_t v = side * t_draw(s, 1, t_max(1, (hi + 1) / side)) + t_draw(s, -1, 1);
    return t_min(t_max(v, lo), hi);
}

enum { DENSE, CHANNELS_LAST, TRANSPOSED, SLICED, LAYOUTS };
static const char *const layout_names[LAYOUTS] = {"dense", "channels last", "transposed",
                                                  "sliced"};

typedef struct {
    uint64_t seed;
    const char *family;
    int64_t n, c, h, w, o, kh, kw, oh, ow;
    nd_conv2d_opts opt;
    bool bias;
    int layout[3]; /* x, w, dy; a strided bias goes with a strided w */
    int threads;
} rcase;

/* The output sizes whose input size (stride 1, kernel k, pads a + b) lies
 * in [1, 40]: [first, last]. */
static int64_t clamp_out(int64_t size, int64_t k, int64_t pads) {
    int64_t first = t_max(1, 2 + pads - k), last = 41 + pads - k;
    return t_min(t_max(size, first), last);
}

/* An output size drawn in [lo, hi] near tile edges, then clamped so */
static int64_t draw_out(uint64_t *s, int64_t lo, int64_t hi, int64_t k, int64_t pads) {
    return clamp_out(draw_size(s, lo, hi), k, pads);
}

static int64_t gcd_i(int64_t a, int64_t b) {
    while (b) {
        int64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* Draws c, o and n in a random order, each within what the terms left
 * allow: n o oh ow c kh kw stays near `budget` (above it only where one
 * image of one channel already is). */
static void draw_channels(uint64_t *s, rcase *k, int64_t budget) {
    int64_t *dims[3] = {&k->n, &k->c, &k->o};
    const int64_t most[3] = {70, 130, 130};
    int first = (int)t_draw(s, 0, 2), flip = (int)t_draw(s, 0, 1);
    int64_t terms = k->oh * k->ow * k->kh * k->kw;
    for (int d = 0; d < 3; d++) *dims[d] = 1;
    for (int step = 0; step < 3; step++) {
        int d = step == 0 ? first : (first + (flip ? 3 - step : step)) % 3;
        int64_t room = t_min(most[d], t_max(1, budget / terms));
        *dims[d] = d == 0 ? t_draw(s, 1, room) : draw_size(s, 1, room);
        terms *= *dims[d];
    }
}

static void finish_output(rcase *k) {
    const nd_conv2d_opts *o = &k->opt;
    k->oh = (k->h + o->pad_top + o->pad_bottom - k->kh) / o->stride_h + 1;
    k->ow = (k->w + o->pad_left + o->pad_right - k->kw) / o->stride_w + 1;
}

/* Any strides and pads; strided forces a stride of 2 or 3 (im2col). */
static void draw_any(uint64_t *s, rcase *k, bool strided) {
    nd_conv2d_opts *o = &k->opt;
    k->kh = t_draw(s, 1, 5);
    k->kw = t_draw(s, 1, 5);
    o->stride_h = t_draw(s, 1, 3);
    o->stride_w = t_draw(s, 1, 3);
    if (strided && o->stride_h == 1 && o->stride_w == 1) {
        if (t_draw(s, 0, 1)) o->stride_h = t_draw(s, 2, 3);
        else o->stride_w = t_draw(s, 2, 3);
    }
    o->pad_top = t_draw(s, 0, 3);
    o->pad_bottom = t_draw(s, 0, 3);
    o->pad_left = t_draw(s, 0, 3);
    o->pad_right = t_draw(s, 0, 3);
    k->h = draw_size(s, t_max(1, k->kh - o->pad_top - o->pad_bottom), 40);
    k->w = draw_size(s, t_max(1, k->kw - o->pad_left - o->pad_right), 40);
    finish_output(k);
}

/* Stride 1 (the direct path), output rows of `lo` .. `hi` columns; with
 * narrow rows, output heights that make whole tiles of 8, 12 or 16
 * positions (or one row more or less) more often than not. */
static void draw_stride1(uint64_t *s, rcase *k, int64_t lo, int64_t hi, bool narrow) {
    nd_conv2d_opts *o = &k->opt;
    k->kh = t_draw(s, 1, 5);
    k->kw = t_draw(s, 1, 5);
    o->stride_h = o->stride_w = 1;
    /* mostly pads below the kernel size, which backward input needs to
     * take the direct path too */
    bool inside = t_draw(s, 0, 2);
    o->pad_top = t_draw(s, 0, inside ? t_min(3, k->kh - 1) : 3);
    o->pad_bottom = t_draw(s, 0, inside ? t_min(3, k->kh - 1) : 3);
    o->pad_left = t_draw(s, 0, inside ? t_min(3, k->kw - 1) : 3);
    o->pad_right = t_draw(s, 0, inside ? t_min(3, k->kw - 1) : 3);
    int64_t ph = o->pad_top + o->pad_bottom, pw = o->pad_left + o->pad_right;
    int64_t ow = draw_out(s, lo, hi, k->kw, pw), oh;
    if (narrow && t_draw(s, 0, 2)) {
        static const int64_t tiles[] = {8, 12, 16};
        int64_t t = tiles[t_draw(s, 0, 2)], unit = t / gcd_i(t, ow);
        oh = clamp_out(unit * t_draw(s, 1, 4) + t_draw(s, -1, 1), k->kh, ph);
    } else {
        oh = draw_out(s, 1, 40, k->kh, ph);
    }
    k->h = oh + k->kh - 1 - ph;
    k->w = ow + k->kw - 1 - pw;
    finish_output(k);
}

/* A batch of 40 .. 70 images of 32 to 60 thousand floats, few output
 * channels and small kernels to keep the reference cheap. Half of them
 * 1x1 kernels on 64 or more channels: K <= 192 rows make one block, so
 * that each group's positions are cut into up to 16 ranges of kc-slices,
 * and a batch of whole groups (a million floats of x each, GROUP_BUDGET
 * in conv_direct.c) and a last one of a half to three quarters of a full
 * one, whose fewer slices may make more ranges. */
static void draw_groups(uint64_t *s, rcase *k) {
    nd_conv2d_opts *o = &k->opt;
    bool pointwise = t_draw(s, 0, 1);
    k->c = pointwise ? t_draw(s, 64, 130) : draw_size(s, 20, 130);
    int64_t plane = t_min(t_draw(s, 32000, 60000) / k->c, 1600);
    k->h = t_draw(s, t_max(1, (plane + 39) / 40), t_min(40, plane));
    k->w = t_min(t_max(plane / k->h, 1), 40);
    k->kh = pointwise ? 1 : t_draw(s, 1, 3);
    k->kw = pointwise ? 1 : t_draw(s, 1, 3);
    o->stride_h = o->stride_w = 1;
    o->pad_top = t_draw(s, 0, k->kh - 1);
    o->pad_bottom = t_draw(s, 0, k->kh - 1);
    o->pad_left = t_draw(s, 0, k->kw - 1);
    o->pad_right = t_draw(s, 0, k->kw - 1);
    k->o = draw_size(s, 1, t_max(1, 6 / (k->kh * k->kw)));
    k->n = t_draw(s, 40, 70);
    if (pointwise) { /* one of the batches in 40 .. 70 whose last group is so */
        int64_t group = ((int64_t)1 << 20) / (k->c * k->h * k->w), fits[31], count = 0;
        for (int64_t n = 40; n <= 70; n++)
            if (2 * (n % group) > group && 4 * (n % group) <= 3 * group) fits[count++] = n;
        if (count) k->n = fits[t_draw(s, 0, count - 1)];
    }
    finish_output(k);
}

static rcase draw_case(uint64_t seed) {
    rcase k = {.seed = seed};
    uint64_t s = seed;
    if (seed % GROUPS_EVERY == 0) {
        k.family = "groups of images";
        draw_groups(&s, &k);
    } else {
        /* most cases small, some past the pool's threshold (2^18) */
        int64_t budget = (int64_t)1 << t_draw(&s, 8, 20);
        switch (t_draw(&s, 0, 3)) {
        case 0:
            k.family = "any";
            draw_any(&s, &k, false);
            break;
        case 1:
            k.family = "strided";
            draw_any(&s, &k, true);
            break;
        case 2:
            k.family = "stride 1, wide rows";
            draw_stride1(&s, &k, 8, 40, false);
            break;
        default:
            k.family = "stride 1, narrow rows";
            draw_stride1(&s, &k, 1, 15, true);
            break;
        }
        draw_channels(&s, &k, budget);
    }
    k.bias = t_draw(&s, 0, 1);
    /* dense more often than not */
    for (int t = 0; t < 3; t++) k.layout[t] = t_draw(&s, 0, 1) ? DENSE : (int)t_draw(&s, 0, 3);
    k.threads = (int)t_draw(&s, 1, 3);
    return k;
}

static void describe(const rcase *k, char *buf, size_t size) {
    const nd_conv2d_opts *o = &k->opt;
    snprintf(buf, size,
             "seed %llu (%s): x [%lld,%lld,%lld,%lld] %s, w [%lld,%lld,%lld,%lld] %s, "
             "dy [%lld,%lld,%lld,%lld] %s, %s, stride (%lld,%lld), pads (top %lld, "
             "bottom %lld, left %lld, right %lld), %d thread%s",
             (unsigned long long)k->seed, k->family, (long long)k->n, (long long)k->c,
             (long long)k->h, (long long)k->w, layout_names[k->layout[0]], (long long)k->o,
             (long long)k->c, (long long)k->kh, (long long)k->kw, layout_names[k->layout[1]],
             (long long)k->n, (long long)k->o, (long long)k->oh, (long long)k->ow,
             layout_names[k->layout[2]],
             !k->bias ? "no bias" : k->layout[1] == DENSE ? "bias" : "strided bias",
             (long long)o->stride_h, (long long)o->stride_w, (long long)o->pad_top,
             (long long)o->pad_bottom, (long long)o->pad_left, (long long)o->pad_right,
             k->threads, k->threads == 1 ? "" : "s");
}

/* ---- inputs ---------------------------------------------------------------- */

/* Arrays kept from case to case, grown as needed: fresh pages took the
 * largest cases longer to fault in than their reference took to compute. */
enum { XV, WV, DYV, BV, Y, YS, DX, DXS, DW, DWS, ARRAYS };
static double *arrays[ARRAYS];
static int64_t array_len[ARRAYS];

static double *array(int slot, int64_t n) {
    if (array_len[slot] < t_max(n, 1)) {
        free(arrays[slot]);
        array_len[slot] = t_max(n, 1);
        arrays[slot] = malloc((size_t)array_len[slot] * sizeof(double));
        ck_assert_ptr_nonnull(arrays[slot]);
    }
    return arrays[slot];
}

static double *zeroed(int slot, int64_t n) {
    double *a = array(slot, n);
    memset(a, 0, (size_t)n * sizeof(double));
    return a;
}

static void free_arrays(void) {
    for (int i = 0; i < ARRAYS; i++) {
        free(arrays[i]);
        arrays[i] = NULL;
        array_len[i] = 0;
    }
}

/* n values in [-1, 1) with 24 bits, exact in float */
static double *uniform(int slot, uint64_t seed, int64_t n) {
    double *v = array(slot, n);
    uint64_t s = seed ^ (uint64_t)(slot + 1) << 56; /* apart from the shape's draws */
    for (int64_t i = 0; i < n; i++) v[i] = (double)(t_next_u64(&s) >> 40) * 0x1p-23 - 1.0;
    return v;
}

/* A [d0, d1, d2, d3] tensor holding vals (row-major) in the given layout.
 * The storage around a strided view holds NaNs: reading past the view
 * shows in the results. */
static nd_tensor *tensor_4d(const double *vals, const int64_t *d, int layout) {
    nd_tensor *base, *t;
    switch (layout) {
    case CHANNELS_LAST:
        base = nd_empty(ND_SHAPE(d[0], d[2], d[3], d[1]));
        t = nd_permute(base, ND_AXES(0, 3, 1, 2));
        break;
    case TRANSPOSED:
        base = nd_empty(ND_SHAPE(d[0], d[1], d[3], d[2]));
        t = nd_transpose(base, 2, 3);
        break;
    case SLICED: /* every axis offset, every other column */
        base = nd_full(ND_SHAPE(d[0] + 1, d[1] + 1, d[2] + 2, 2 * d[3] + 1), NAN);
        t = nd_slice(nd_slice(nd_slice(nd_slice(base, 0, 1, ND_END, 1), 1, 0, d[1], 1), 2, 1,
                              d[2] + 1, 1),
                     3, 1, ND_END, 2);
        break;
    default:
        t = base = nd_empty(d, 4);
    }
    float *p = nd_data(t);
    const int64_t *st = t->strides;
    for (int64_t a = 0, i = 0; a < d[0]; a++)
        for (int64_t b = 0; b < d[1]; b++)
            for (int64_t c = 0; c < d[2]; c++)
                for (int64_t e = 0; e < d[3]; e++, i++)
                    p[a * st[0] + b * st[1] + c * st[2] + e * st[3]] = (float)vals[i];
    for (int k = 0; k < 4; k++) ck_assert_int_eq(t->shape[k], d[k]);
    return t;
}

typedef struct {
    nd_tensor *x, *w, *b, *dy;
    const double *xv, *wv, *bv, *dyv;
} inputs;

static inputs make_inputs(const rcase *k) {
    inputs in;
    const int64_t xs[4] = {k->n, k->c, k->h, k->w}, ws[4] = {k->o, k->c, k->kh, k->kw};
    const int64_t ys[4] = {k->n, k->o, k->oh, k->ow};
    in.xv = uniform(XV, k->seed, t_count(xs, 4));
    in.wv = uniform(WV, k->seed, t_count(ws, 4));
    in.dyv = uniform(DYV, k->seed, t_count(ys, 4));
    in.x = tensor_4d(in.xv, xs, k->layout[0]);
    in.w = tensor_4d(in.wv, ws, k->layout[1]);
    in.dy = tensor_4d(in.dyv, ys, k->layout[2]);
    in.b = NULL;
    in.bv = NULL;
    if (k->bias) {
        in.bv = uniform(BV, k->seed, k->o);
        bool dense = k->layout[1] == DENSE;
        nd_tensor *base = nd_full(ND_SHAPE(dense ? k->o : 2 * k->o), NAN);
        in.b = dense ? base : nd_slice(base, 0, 0, ND_END, 2);
        for (int64_t o = 0; o < k->o; o++)
            nd_data(in.b)[o * in.b->strides[0]] = (float)in.bv[o];
    }
    return in;
}

/* ---- the reference ----------------------------------------------------------- */

/* Each result with the sum of the magnitudes of its terms: a float
 * evaluation's rounding error is a small multiple of it. */
typedef struct {
    double *y, *ys, *dx, *dxs, *dw, *dws;
} reference;

static reference compute_reference(const rcase *k, const inputs *in) {
    const nd_conv2d_opts *op = &k->opt;
    int64_t ny = k->n * k->o * k->oh * k->ow, nx = k->n * k->c * k->h * k->w,
            nw = k->o * k->c * k->kh * k->kw;
    reference r;
    r.y = zeroed(Y, ny);
    r.ys = zeroed(YS, ny);
    r.dx = zeroed(DX, nx);
    r.dxs = zeroed(DXS, nx);
    r.dw = zeroed(DW, nw);
    r.dws = zeroed(DWS, nw);
    if (in->bv)
        for (int64_t i = 0; i < ny; i++) {
            double b = in->bv[i / (k->oh * k->ow) % k->o];
            r.y[i] = b;
            r.ys[i] = fabs(b);
        }
    /* y[n, o, i, j] += w[o, c, u, v] x[n, c, i sh - pt + u, j sw - pl + v]
     * over the terms inside x, and the same products into dx and dw; an
     * image and a channel of x at a time, which the output rows of every
     * o then read from the cache */
    for (int64_t n = 0; n < k->n; n++)
        for (int64_t c = 0; c < k->c; c++)
            for (int64_t u = 0; u < k->kh; u++)
                for (int64_t v = 0; v < k->kw; v++)
                    for (int64_t o = 0; o < k->o; o++) {
                        int64_t wi = ((o * k->c + c) * k->kh + u) * k->kw + v;
                        double wv = in->wv[wi], dw = 0, dws = 0;
                        for (int64_t i = 0; i < k->oh; i++) {
                            int64_t h = i * op->stride_h - op->pad_top + u;
                            if (h < 0 || h >= k->h) continue;
                            int64_t y0 = ((n * k->o + o) * k->oh + i) * k->ow;
                            int64_t x0 = ((n * k->c + c) * k->h + h) * k->w;
                            for (int64_t j = 0; j < k->ow; j++) {
                                int64_t q = j * op->stride_w - op->pad_left + v;
                                if (q < 0 || q >= k->w) continue;
                                double xv = in->xv[x0 + q], dy = in->dyv[y0 + j];
                                r.y[y0 + j] += wv * xv;
                                r.ys[y0 + j] += fabs(wv * xv);
                                r.dx[x0 + q] += wv * dy;
                                r.dxs[x0 + q] += fabs(wv * dy);
                                dw += dy * xv;
                                dws += fabs(dy * xv);
                            }
                        }
                        r.dw[wi] += dw;
                        r.dws[wi] += dws;
                    }
    return r;
}

/* ---- checking ------------------------------------------------------------------ */

/* Within 1e-5 (84 float ulps of 1) of the sum of |terms|: the library
 * sums in blocks of at most 384 terms, whose rounding errors mostly
 * cancel. An element whose terms are all zero must be exactly 0 (or its
 * bias). */
#define REL_TOL 1e-5
#define ABS_TOL 1e-30

static void expect_close(const rcase *k, const char *what, const nd_tensor *got,
                         const int64_t *shape, const double *want, const double *scale) {
    char desc[512];
    bool shaped = got->ndim == 4;
    for (int d = 0; d < 4 && shaped; d++) shaped = got->shape[d] == shape[d];
    if (!shaped || !nd_is_contiguous(got)) {
        describe(k, desc, sizeof desc);
        ck_abort_msg("%s, kernels %s: %s has the wrong shape or layout", desc,
                     nd_kernels_name(), what);
    }
    /* one assertion for the lot: Check writes to a pipe for every one */
    const float *g = nd_data(got);
    int64_t bad = 0, first = 0;
    for (int64_t i = 0, n = nd_numel(got); i < n; i++)
        if (!(fabs(g[i] - want[i]) <= REL_TOL * scale[i] + ABS_TOL) && bad++ == 0) first = i;
    if (bad) {
        describe(k, desc, sizeof desc);
        int64_t idx[4];
        t_unravel(first, shape, 4, idx);
        ck_abort_msg("%s, kernels %s: %s[%lld,%lld,%lld,%lld] is %.9g, expected %.9g "
                     "(sum of |terms| %.6g; %lld of %lld wrong)",
                     desc, nd_kernels_name(), what, (long long)idx[0], (long long)idx[1],
                     (long long)idx[2], (long long)idx[3], (double)g[first], want[first],
                     scale[first], (long long)bad, (long long)nd_numel(got));
    }
}


static void check_case(uint64_t seed, const nd_kernels *const *sets, int nsets) {
    rcase k = draw_case(seed);
    nd_scope *scope = nd_scope_begin();
    inputs in = make_inputs(&k);
    reference ref = compute_reference(&k, &in);
    const int64_t xs[4] = {k.n, k.c, k.h, k.w}, ws[4] = {k.o, k.c, k.kh, k.kw};
    const int64_t ys[4] = {k.n, k.o, k.oh, k.ow};
    nd_set_num_threads(k.threads);
    nd_error err;
    for (int i = 0; i < nsets; i++) {
        ck_assert_int_eq(nd_set_kernels(sets[i]->name, &err), ND_OK);
        char desc[512];
        describe(&k, desc, sizeof desc);
        snprintf(t_running, sizeof t_running, "%s, kernels %s", desc, sets[i]->name);
        nd_scope *s = nd_scope_begin();
        expect_close(&k, "y", nd_conv2d(in.x, in.w, in.b, k.opt), ys, ref.y, ref.ys);
        expect_close(&k, "dx", nd_conv2d_backward_input(in.dy, in.w, xs, k.opt), xs, ref.dx,
                     ref.dxs);
        expect_close(&k, "dw", nd_conv2d_backward_weight(in.dy, in.x, ws, k.opt), ws, ref.dw,
                     ref.dws);
        nd_scope_end(s);
    }
    nd_scope_end(scope);
}

/* ---- the test ------------------------------------------------------------------ */

static void finish(int test) {
    (void)test;
    free_arrays();
}

static const t_random run = {"conv_random", "ND_CONV_SOAK", DEFAULT_CASES, CASES_PER_TEST,
                              BASE_SEED, check_case, finish};

START_TEST(random_shapes_match_naive_reference) { t_random_cases(&run, _i); }
END_TEST

TCase *tcase_conv_random(void) {
    return t_random_tcase(&run, random_shapes_match_naive_reference);
}
