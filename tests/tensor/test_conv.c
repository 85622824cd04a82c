/* 2-d convolution: the forward and both backward passes against a naive
 * seven-loop reference in double, for every kernel set, with strided
 * inputs, with tiles that span images, with the same bits for any thread
 * count, with bounded scratch, and every error message. */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

typedef struct {
    const char *name;
    int64_t n, c, h, w, o, kh, kw;
    nd_conv2d_opts opt;
    bool bias;
} conv_case;

static const conv_case cases[] = {
    {"1x1", 2, 4, 5, 6, 3, 1, 1, {1, 1, 0, 0, 0, 0}, true},
    {"3x3 stride 1 pad 1", 1, 3, 8, 8, 4, 3, 3, {1, 1, 1, 1, 1, 1}, false},
    {"3x3 stride 2 SAME (pads 0,1,0,1)", 3, 2, 8, 6, 5, 3, 3, {2, 2, 0, 1, 0, 1}, true},
    {"5x3 stride (2,1) uneven pads", 1, 3, 9, 7, 2, 5, 3, {2, 1, 2, 1, 0, 2}, true},
    {"odd sizes, batch 3", 3, 3, 7, 9, 5, 3, 3, {1, 1, 1, 1, 1, 1}, true},
    {"odd sizes, batch 1, stride (1,2)", 1, 3, 7, 9, 5, 3, 3, {1, 2, 0, 2, 1, 0}, false},
    /* stride above the kernel size skips inputs; padding above the kernel
     * size makes whole output rows and columns read only zeros */
    {"2x2 stride 3, pads beyond the kernel", 2, 2, 4, 5, 3, 2, 2, {3, 3, 3, 2, 0, 4}, true},
    {"kernel as large as the input", 2, 3, 4, 3, 2, 4, 3, {1, 1, 0, 0, 0, 0}, true},
    /* stride 1 with rows at least a kernel tile wide (8 scalar, 16 AVX2)
     * takes the direct path: the kernels read a padded copy of the input */
    {"3x3 stride 1 pad 1, wide rows", 2, 3, 5, 37, 7, 3, 3, {1, 1, 1, 1, 1, 1}, true},
    {"5x5 stride 1 uneven pads, wide rows", 1, 2, 6, 20, 3, 5, 5, {1, 1, 1, 2, 0, 3}, false},
    {"2x3 stride 1 pads beyond the kernel, wide rows", 2, 2, 3, 18, 3, 2, 3,
     {1, 1, 3, 0, 4, 1}, true},
    {"1x1 stride 1, wide rows", 1, 5, 2, 16, 9, 1, 1, {1, 1, 0, 0, 0, 0}, true},
    /* 19 output channels: a whole column panel of dY^T (8 or 16 wide),
     * which the weight gradient packs with gemm_pack_bt when dy is dense,
     * and an edge panel */
    {"3x3 stride 1, 19 output channels, wide rows", 2, 3, 4, 17, 19, 3, 3,
     {1, 1, 1, 1, 1, 1}, true},
    /* forward and backward input in blocks of output rows, each padding
     * the rows it reads: of 8 (8, 8, 3) for a batch of 16, of 3 (3 x 6,
     * 1) for a batch of 2; 192 channels leave room for blocks of 7 (7, 4) */
    {"3x3 stride 1, 19 output rows in blocks of 8", 16, 3, 19, 16, 5, 3, 3,
     {1, 1, 1, 1, 1, 1}, true},
    {"3x3 stride 1, 19 output rows in blocks of 3", 2, 3, 19, 16, 5, 3, 3,
     {1, 1, 1, 1, 1, 1}, true},
    {"3x3 stride 1, 192 channels, shorter blocks", 16, 192, 11, 16, 1, 3, 3,
     {1, 1, 1, 1, 1, 1}, false},
    /* padded copies of x of more than a million floats: on kernels with
     * 8-wide tiles the weight gradient takes the images in groups (8 + 1) */
    {"3x3 stride 1, images in two groups", 9, 512, 14, 14, 2, 3, 3, {1, 1, 1, 1, 1, 1}, true},
    /* stride 1 with rows narrower than a tile whose positions fill the
     * tiles (within 1/8): forward and backward input read shifted planes
     * of the input, tiles running across output rows. 4x4: one tile of 16
     * (AVX2) or two of 8 per image; 8x8 in a batch of 1: blocks of 2 rows
     * (AVX2), K = 432 in two kc-slices, 13 output channels (an edge);
     * uneven pads and 6x5 outputs (30 positions, 32 in tiles); left pads
     * beyond the kernel width (5x9 outputs) */
    {"3x3 stride 1, 4x4 images", 5, 6, 4, 4, 7, 3, 3, {1, 1, 1, 1, 1, 1}, true},
    {"3x3 stride 1, 8x8 in blocks of rows, two kc-slices", 1, 48, 8, 8, 13, 3, 3,
     {1, 1, 1, 1, 1, 1}, true},
    {"5x3 stride 1 uneven pads, narrow rows", 2, 3, 6, 5, 4, 5, 3, {1, 1, 2, 2, 2, 0}, false},
    {"2x3 stride 1, left pad beyond the kernel, narrow rows", 2, 2, 3, 6, 3, 2, 3,
     {1, 1, 3, 0, 4, 1}, true},
    /* the weight gradient's groups of 2 images (2 + 1) on wide rows, each
     * summed over positions in ranges of kc-slices, the ranges in order */
    {"3x3 stride 1, groups and ranges of positions", 3, 10, 200, 200, 2, 3, 3,
     {1, 1, 1, 1, 1, 1}, false},
};

/* Large enough for several tiles: K = 32 * 9 = 288 rows of im2col, and
 * 37 images of 7x9 positions (2331 columns), so tiles start and end
 * inside images and inside output rows. */
static const conv_case big = {"several tiles", 37, 32, 7, 9, 6, 3, 3, {1, 1, 1, 1, 1, 1}, true};
/* The direct path with more work than one thread takes: K = 48 * 9 = 432
 * (two kc-slices), output rows of 20 (a tile and an edge) */
static const conv_case wide = {"wide rows", 5, 48, 6, 20, 13, 3, 3, {1, 1, 1, 1, 1, 1}, true};

static int64_t out_h(const conv_case *k) {
    return (k->h + k->opt.pad_top + k->opt.pad_bottom - k->kh) / k->opt.stride_h + 1;
}
static int64_t out_w(const conv_case *k) {
    return (k->w + k->opt.pad_left + k->opt.pad_right - k->kw) / k->opt.stride_w + 1;
}

/* ---- inputs ---------------------------------------------------------------- */

typedef struct {
    nd_tensor *x, *w, *b, *dy;
} inputs;

/* How the inputs are laid out over their storage. */
enum {
    CONTIGUOUS,
    /* x permuted from [N,H,W,C], w every other column of [O,C,KH,2KW], dy
     * transposed from [N,O,OW,OH], bias every other element of [2O] */
    PERMUTED,
    /* dense rows with gaps between them: x rows 1..H of [N,C,H+2,W], w
     * channels 0..C-1 of [O,C+1,KH,KW], dy columns 2..OW+1 of [N,O,OH,OW+3] */
    SLICED,
    LAYOUTS
};
static const char *const layout_names[LAYOUTS] = {"contiguous", "permuted", "sliced"};

static inputs make_inputs(const conv_case *k, int layout, uint64_t seed) {
    inputs in;
    int64_t oh = out_h(k), ow = out_w(k);
    in.b = k->bias ? t_uniform(seed + 3, ND_SHAPE(k->o), -1, 1) : NULL;
    if (layout == CONTIGUOUS) {
        in.x = t_uniform(seed, ND_SHAPE(k->n, k->c, k->h, k->w), -1, 1);
        in.w = t_uniform(seed + 1, ND_SHAPE(k->o, k->c, k->kh, k->kw), -1, 1);
        in.dy = t_uniform(seed + 2, ND_SHAPE(k->n, k->o, oh, ow), -1, 1);
    } else if (layout == PERMUTED) {
        in.x = nd_permute(t_uniform(seed, ND_SHAPE(k->n, k->h, k->w, k->c), -1, 1),
                          ND_AXES(0, 3, 1, 2));
        in.w = nd_slice(t_uniform(seed + 1, ND_SHAPE(k->o, k->c, k->kh, 2 * k->kw), -1, 1),
                        3, 0, ND_END, 2);
        in.dy = nd_transpose(t_uniform(seed + 2, ND_SHAPE(k->n, k->o, ow, oh), -1, 1), 2, 3);
        if (k->bias)
            in.b = nd_slice(t_uniform(seed + 3, ND_SHAPE(2 * k->o), -1, 1), 0, 0, ND_END, 2);
    } else {
        in.x = nd_slice(t_uniform(seed, ND_SHAPE(k->n, k->c, k->h + 2, k->w), -1, 1), 2, 1,
                        k->h + 1, 1);
        in.w = nd_slice(t_uniform(seed + 1, ND_SHAPE(k->o, k->c + 1, k->kh, k->kw), -1, 1),
                        1, 0, k->c, 1);
        in.dy = nd_slice(t_uniform(seed + 2, ND_SHAPE(k->n, k->o, oh, ow + 3), -1, 1), 3, 2,
                         ow + 2, 1);
    }
    ck_assert(layout == CONTIGUOUS || !nd_is_contiguous(in.x));
    return in;
}

/* The values of t in row-major order, read element by element. */
static double *values(const nd_tensor *t) {
    int64_t n = nd_numel(t), idx[ND_MAX_DIMS];
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        t_unravel(i, t->shape, t->ndim, idx);
        v[i] = nd_get(t, idx);
    }
    return v;
}

/* ---- the reference ----------------------------------------------------------- */

/* Each result with the sum of the magnitudes of its terms, the scale of
 * the rounding error of a float evaluation. */
typedef struct {
    double *y, *ys, *dx, *dxs, *dw, *dws;
} reference;

static reference compute_reference(const conv_case *k, const inputs *in) {
    int64_t oh = out_h(k), ow = out_w(k);
    int64_t ny = k->n * k->o * oh * ow, nx = k->n * k->c * k->h * k->w,
            nw = k->o * k->c * k->kh * k->kw;
    double *x = values(in->x), *w = values(in->w), *dy = values(in->dy);
    double *b = in->b ? values(in->b) : NULL;
    reference r;
    r.y = calloc((size_t)ny, sizeof(double));
    r.ys = calloc((size_t)ny, sizeof(double));
    r.dx = calloc((size_t)nx, sizeof(double));
    r.dxs = calloc((size_t)nx, sizeof(double));
    r.dw = calloc((size_t)nw, sizeof(double));
    r.dws = calloc((size_t)nw, sizeof(double));
    /* the positions innermost: a plane of x and one of y stay cached
     * while (c, u, v) move on, where c innermost read a new line of x
     * and of dx per term */
    for (int64_t n = 0; n < k->n; n++)
        for (int64_t o = 0; o < k->o; o++) {
            int64_t y0 = (n * k->o + o) * oh * ow;
            for (int64_t p = 0; b && p < oh * ow; p++) {
                r.y[y0 + p] = b[o];
                r.ys[y0 + p] = fabs(b[o]);
            }
            for (int64_t c = 0; c < k->c; c++)
                for (int64_t u = 0; u < k->kh; u++)
                    for (int64_t v = 0; v < k->kw; v++) {
                        int64_t wi = ((o * k->c + c) * k->kh + u) * k->kw + v;
                        double wv = w[wi], dw = 0, dws = 0;
                        for (int64_t i = 0; i < oh; i++) {
                            int64_t h = i * k->opt.stride_h - k->opt.pad_top + u;
                            if (h < 0 || h >= k->h) continue;
                            for (int64_t j = 0; j < ow; j++) {
                                int64_t q = j * k->opt.stride_w - k->opt.pad_left + v;
                                if (q < 0 || q >= k->w) continue;
                                int64_t yi = y0 + i * ow + j;
                                int64_t xi = ((n * k->c + c) * k->h + h) * k->w + q;
                                r.y[yi] += wv * x[xi];
                                r.ys[yi] += fabs(wv * x[xi]);
                                r.dx[xi] += wv * dy[yi];
                                r.dxs[xi] += fabs(wv * dy[yi]);
                                dw += dy[yi] * x[xi];
                                dws += fabs(dy[yi] * x[xi]);
                            }
                        }
                        r.dw[wi] += dw;
                        r.dws[wi] += dws;
                    }
        }
    free(x);
    free(w);
    free(dy);
    free(b);
    return r;
}

static void free_reference(reference *r) {
    free(r->y);
    free(r->ys);
    free(r->dx);
    free(r->dxs);
    free(r->dw);
    free(r->dws);
}

/* Float sums of terms in [-1, 1]: within 2e-5 of the sum of the
 * magnitudes of the terms (plus 1e-6 where all terms are 0), a few ulps
 * of the partial sums for the sizes tested. */
#define REL_TOL 2e-5

static void expect_close(const char *what, const char *label, const nd_tensor *got,
                         const int64_t *shape, const double *want, const double *scale) {
    for (int d = 0; d < 4; d++)
        ck_assert_msg(got->ndim == 4 && got->shape[d] == shape[d], "%s: %s has the wrong shape",
                      label, what);
    /* one assertion for the lot: Check writes to a pipe for every one */
    const float *g = nd_data(got);
    int64_t bad = 0, first = 0;
    for (int64_t i = 0, n = nd_numel(got); i < n; i++)
        if (!(fabs(g[i] - want[i]) <= REL_TOL * scale[i] + 1e-6) && bad++ == 0) first = i;
    ck_assert_msg(bad == 0, "%s: %s element %lld is %.9g, expected %.9g (%lld wrong)", label,
                  what, (long long)first, (double)g[first], want[first], (long long)bad);
}

typedef struct {
    nd_tensor *y, *dx, *dw;
} results;

static results run(const conv_case *k, const inputs *in) {
    results r;
    r.y = nd_conv2d(in->x, in->w, in->b, k->opt);
    r.dx = nd_conv2d_backward_input(in->dy, in->w, in->x->shape, k->opt);
    r.dw = nd_conv2d_backward_weight(in->dy, in->x, in->w->shape, k->opt);
    return r;
}

/* The three passes with the active kernel set against ref. */
static void expect_results(const conv_case *k, int layout, const inputs *in,
                           const reference *ref) {
    char label[160];
    snprintf(label, sizeof label, "%s (%s, %s, kernels %s)", k->name, layout_names[layout],
             k->bias ? "bias" : "no bias", nd_kernels_name());
    results r = run(k, in);
    const int64_t y_shape[4] = {k->n, k->o, out_h(k), out_w(k)};
    expect_close("y", label, r.y, y_shape, ref->y, ref->ys);
    expect_close("dx", label, r.dx, in->x->shape, ref->dx, ref->dxs);
    expect_close("dw", label, r.dw, in->w->shape, ref->dw, ref->dws);
}

static void check_case(const conv_case *k, int layout, uint64_t seed) {
    inputs in = make_inputs(k, layout, seed);
    reference ref = compute_reference(k, &in);
    expect_results(k, layout, &in, &ref);
    free_reference(&ref);
}

/* Runs fn once with every kernel set this CPU has, then restores the
 * active one. */
static void for_each_kernel_set(void (*fn)(void)) {
    static const char *const names[] = {"scalar", "avx2", "neon"};
    char initial[32];
    snprintf(initial, sizeof initial, "%s", nd_kernels_name());
    nd_error err;
    int ran = 0;
    for (int i = 0; i < 3; i++) {
        if (nd_set_kernels(names[i], &err) != ND_OK) continue;
        nd_scope *s = nd_scope_begin();
        fn();
        nd_scope_end(s);
        ran++;
    }
    ck_assert_int_eq(nd_set_kernels(initial, &err), ND_OK);
    ck_assert_int_ge(ran, 1);
}

static void all_cases(void) {
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++)
        for (int layout = 0; layout < LAYOUTS; layout++)
            check_case(&cases[i], layout, 100 + 10 * (uint64_t)i);
}

START_TEST(matches_naive_reference) { for_each_kernel_set(all_cases); }
END_TEST

/* The library's plain references (tensor/conv_reference.c) against this
 * file's: both sum in double, so they differ by the final rounding to
 * float alone (half an ulp of the value, under 1e-7 of the terms' sum). */
static void expect_rounded(const char *what, const char *label, const nd_tensor *got,
                           const double *want, const double *scale) {
    const float *g = nd_data(got);
    int64_t bad = 0, first = 0;
    for (int64_t i = 0, n = nd_numel(got); i < n; i++)
        if (!(fabs(g[i] - want[i]) <= 1e-7 * scale[i] + 1e-30) && bad++ == 0) first = i;
    ck_assert_msg(bad == 0, "%s: reference %s element %lld is %.9g, expected %.9g (%lld wrong)",
                  label, what, (long long)first, (double)g[first], want[first], (long long)bad);
}

START_TEST(library_reference_is_the_definition) {
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++)
        for (int layout = 0; layout < LAYOUTS; layout++) {
            const conv_case *k = &cases[i];
            nd_scope *s = nd_scope_begin();
            inputs in = make_inputs(k, layout, 100 + 10 * (uint64_t)i);
            reference ref = compute_reference(k, &in);
            char label[160];
            snprintf(label, sizeof label, "%s (%s, %s)", k->name, layout_names[layout],
                     k->bias ? "bias" : "no bias");
            expect_rounded("y", label, nd_conv2d_reference(in.x, in.w, in.b, k->opt), ref.y,
                           ref.ys);
            expect_rounded("dx", label,
                           nd_conv2d_backward_input_reference(in.dy, in.w, in.x->shape, k->opt),
                           ref.dx, ref.dxs);
            expect_rounded("dw", label,
                           nd_conv2d_backward_weight_reference(in.dy, in.x, in.w->shape, k->opt),
                           ref.dw, ref.dws);
            free_reference(&ref);
            nd_scope_end(s);
        }
}
END_TEST

static void big_case(void) {
    for (int layout = 0; layout < LAYOUTS; layout++) {
        check_case(&big, layout, 500);
        check_case(&wide, layout, 600);
    }
}

START_TEST(several_tiles_across_images) { for_each_kernel_set(big_case); }
END_TEST

/* The weight gradient pads x a group of images at a time (a million
 * floats) and sums each group's positions in ranges of kc-slices, every
 * range after the first into partial sums of its own. A smaller last
 * group can make more ranges than the full ones: 10 + 6 images of
 * 96x32x32 (14 ranges, then 16), 42 + 22 of 96x16x16 (14, then 15). */
static const conv_case last_group[] = {
    {"1x1 stride 1, 32 channels, a last group in more ranges", 16, 96, 32, 32, 32, 1, 1,
     {1, 1, 0, 0, 0, 0}, false},
    {"1x1 stride 1, 64 channels, a last group in more ranges", 64, 96, 16, 16, 64, 1, 1,
     {1, 1, 0, 0, 0, 0}, false},
};

/* for_each_kernel_set's callback: one reference (50 and 100 million
 * terms) for every set */
static const conv_case *shared_case;
static const inputs *shared_inputs;
static const reference *shared_ref;

static void check_shared(void) {
    expect_results(shared_case, CONTIGUOUS, shared_inputs, shared_ref);
}

START_TEST(last_group_in_more_ranges) {
    const conv_case *k = &last_group[_i];
    inputs in = make_inputs(k, CONTIGUOUS, 1000 + 10 * (uint64_t)_i);
    reference ref = compute_reference(k, &in);
    shared_case = k;
    shared_inputs = &in;
    shared_ref = &ref;
    for_each_kernel_set(check_shared);
    free_reference(&ref);
}
END_TEST

/* The scalar twins and the active set on the same inputs: each result is
 * within REL_TOL x (sum of |terms|) of the exact value, so the two are
 * within twice that of each other. */
START_TEST(kernel_sets_agree) {
    const conv_case *k = _i == 0 ? &big : &wide;
    inputs in = make_inputs(k, CONTIGUOUS, 700);
    reference ref = compute_reference(k, &in);
    char active[32];
    snprintf(active, sizeof active, "%s", nd_kernels_name());
    nd_error err;
    ck_assert_int_eq(nd_set_kernels("scalar", &err), ND_OK);
    results s = run(k, &in);
    ck_assert_int_eq(nd_set_kernels(active, &err), ND_OK);
    results a = run(k, &in);
    const nd_tensor *got[3][2] = {{s.y, a.y}, {s.dx, a.dx}, {s.dw, a.dw}};
    const double *scale[3] = {ref.ys, ref.dxs, ref.dws};
    for (int t = 0; t < 3; t++) {
        const float *p = nd_data(got[t][0]), *q = nd_data(got[t][1]);
        for (int64_t i = 0, n = nd_numel(got[t][0]); i < n; i++)
            ck_assert_msg(fabs(p[i] - q[i]) <= 2 * REL_TOL * scale[t][i] + 2e-6,
                          "result %d element %lld: scalar %.9g, %s %.9g", t, (long long)i,
                          (double)p[i], active, (double)q[i]);
    }
    free_reference(&ref);
}
END_TEST

START_TEST(same_bits_for_any_thread_count) {
    const conv_case *k = _i == 0 ? &big : &wide;
    int initial = nd_get_num_threads();
    inputs in[LAYOUTS];
    results ref[LAYOUTS];
    for (int layout = 0; layout < LAYOUTS; layout++) in[layout] = make_inputs(k, layout, 800);
    /* thread counts in the outer loop: the pool restarts once per count */
    for (int threads = 1; threads <= 3; threads++) {
        nd_set_num_threads(threads);
        for (int layout = 0; layout < LAYOUTS; layout++) {
            results r = run(k, &in[layout]);
            if (threads == 1) {
                ref[layout] = r;
                continue;
            }
            const nd_tensor *pairs[3][2] = {
                {ref[layout].y, r.y}, {ref[layout].dx, r.dx}, {ref[layout].dw, r.dw}};
            static const char *const what[3] = {"forward", "backward input", "backward weight"};
            for (int t = 0; t < 3; t++)
                ck_assert_msg(!memcmp(nd_data(pairs[t][0]), nd_data(pairs[t][1]),
                                      (size_t)nd_numel(pairs[t][0]) * sizeof(float)),
                              "%s differs with %d threads (%s)", what[t], threads,
                              layout_names[layout]);
        }
    }
    nd_set_num_threads(initial);
}
END_TEST

/* im2col of the whole batch would take K * N * OH * OW floats; the
 * tiles take a small fraction of that on top of inputs and outputs. One
 * thread, as the GEMM's own packing buffers grow with the thread count. */
START_TEST(scratch_stays_bounded) {
    nd_set_num_threads(1);
    const conv_case k = {"bounded", 128, 32, 16, 16, 8, 3, 3, {1, 1, 1, 1, 1, 1}, true};
    inputs in = make_inputs(&k, CONTIGUOUS, 900);
    size_t whole = (size_t)(k.c * k.kh * k.kw) * (size_t)(k.n * 16 * 16) * sizeof(float);
    size_t out_bytes = (size_t)(k.n * k.o * 16 * 16) * sizeof(float);
    size_t x_bytes = (size_t)(k.n * k.c * 16 * 16) * sizeof(float);
    size_t w_bytes = (size_t)(k.o * k.c * 9) * sizeof(float);
    for (int pass = 0; pass < 3; pass++) {
        nd_scope *s = nd_scope_begin();
        size_t before = nd_mem_live();
        nd_mem_reset_peak();
        nd_tensor *r = pass == 0   ? nd_conv2d(in.x, in.w, in.b, k.opt)
                       : pass == 1 ? nd_conv2d_backward_input(in.dy, in.w, in.x->shape, k.opt)
                                   : nd_conv2d_backward_weight(in.dy, in.x, in.w->shape, k.opt);
        size_t result = pass == 0 ? out_bytes : pass == 1 ? x_bytes : w_bytes;
        size_t scratch = nd_mem_peak() - before - result;
        ck_assert_msg(scratch < whole / 4, "pass %d: %zu bytes of scratch (whole im2col: %zu)",
                      pass, scratch, whole);
        /* only the result (and its tensor object) is left */
        ck_assert_uint_eq((size_t)nd_numel(r) * sizeof(float), result);
        ck_assert_uint_lt(nd_mem_live() - before - result, 1024);
        nd_scope_end(s);
    }
}
END_TEST

/* ---- events ------------------------------------------------------------------ */

static nd_op_event seen[4];
static const nd_tensor *seen_in[4][3];
static int nseen;

static void watch(const nd_op_event *e) {
    if (nseen < 4) {
        seen[nseen] = *e;
        for (int i = 0; i < e->nin && i < 3; i++) seen_in[nseen][i] = e->in[i];
    }
    nseen++;
}

START_TEST(reports_one_event_per_op) {
    const conv_case *k = &cases[3];
    inputs in = make_inputs(k, PERMUTED, 40); /* the strided w is copied quietly */
    nd_op_observer old = nd_set_op_observer(watch);
    nseen = 0;
    nd_tensor *y = nd_conv2d(in.x, in.w, in.b, k->opt);
    nd_tensor *y2 = nd_conv2d(in.x, in.w, NULL, k->opt);
    nd_tensor *dx = nd_conv2d_backward_input(in.dy, in.w, in.x->shape, k->opt);
    nd_tensor *dw = nd_conv2d_backward_weight(in.dy, in.x, in.w->shape, k->opt);
    nd_set_op_observer(old);
    ck_assert_int_eq(nseen, 4);
    const nd_op want_op[4] = {ND_OP_CONV2D, ND_OP_CONV2D, ND_OP_CONV2D_BACKWARD_INPUT,
                              ND_OP_CONV2D_BACKWARD_WEIGHT};
    const nd_tensor *want_out[4] = {y, y2, dx, dw};
    const nd_tensor *want_in[4][3] = {
        {in.x, in.w, in.b}, {in.x, in.w, NULL}, {in.dy, in.w, NULL}, {in.dy, in.x, NULL}};
    const int want_nin[4] = {3, 2, 2, 2};
    for (int e = 0; e < 4; e++) {
        ck_assert_int_eq(seen[e].op, want_op[e]);
        ck_assert_ptr_eq(seen[e].out, want_out[e]);
        ck_assert_int_eq(seen[e].nin, want_nin[e]);
        for (int i = 0; i < want_nin[e]; i++) ck_assert_ptr_eq(seen_in[e][i], want_in[e][i]);
        const int64_t args[6] = {2, 1, 2, 1, 0, 2};
        for (int a = 0; a < 6; a++) ck_assert_int_eq(seen[e].args[a], args[a]);
    }
    ck_assert_str_eq(nd_op_name(ND_OP_CONV2D), "conv2d");
    ck_assert_str_eq(nd_op_name(ND_OP_CONV2D_BACKWARD_INPUT), "conv2d_backward_input");
    ck_assert_str_eq(nd_op_name(ND_OP_CONV2D_BACKWARD_WEIGHT), "conv2d_backward_weight");
}
END_TEST

START_TEST(empty_batch) {
    const nd_conv2d_opts o = {1, 1, 1, 1, 1, 1};
    nd_tensor *x = nd_zeros(ND_SHAPE(0, 3, 4, 4));
    nd_tensor *w = t_uniform(3, ND_SHAPE(2, 3, 3, 3), -1, 1);
    nd_tensor *y = nd_conv2d(x, w, NULL, o);
    ck_assert_int_eq(nd_numel(y), 0);
    ck_assert_int_eq(y->shape[1], 2);
    ck_assert_int_eq(y->shape[2], 4);
    nd_tensor *dx = nd_conv2d_backward_input(y, w, x->shape, o);
    ck_assert_int_eq(nd_numel(dx), 0);
    nd_tensor *dw = nd_conv2d_backward_weight(y, x, w->shape, o);
    ck_assert_int_eq(nd_numel(dw), 54);
    for (int i = 0; i < 54; i++) ck_assert(nd_data(dw)[i] == 0.0f);
    /* an input of height 0 whose padding (2 + 1) still makes one output
     * row: dy has rows, dx none, through the direct path (rows >= a tile) */
    const nd_conv2d_opts tall = {1, 1, 2, 1, 1, 1};
    nd_tensor *dy = t_uniform(4, ND_SHAPE(1, 2, 1, 16), -1, 1);
    nd_tensor *dx0 = nd_conv2d_backward_input(dy, w, (const int64_t[]){1, 3, 0, 16}, tall);
    ck_assert_int_eq(nd_numel(dx0), 0);
    ck_assert_int_eq(dx0->shape[2], 0);
    ck_assert_int_eq(dx0->shape[3], 16);
}
END_TEST

/* ---- errors ---------------------------------------------------------------------- */

START_TEST(error_messages) {
    const nd_conv2d_opts o = {1, 1, 0, 0, 0, 0};
    nd_tensor *x = nd_zeros(ND_SHAPE(1, 3, 5, 5));
    nd_tensor *x3 = nd_zeros(ND_SHAPE(3, 5, 5));
    nd_tensor *w = nd_zeros(ND_SHAPE(4, 3, 3, 3));
    nd_tensor *w3 = nd_zeros(ND_SHAPE(4, 3, 3));
    nd_tensor *w2 = nd_zeros(ND_SHAPE(4, 2, 3, 3));
    nd_tensor *w0 = nd_zeros(ND_SHAPE(4, 3, 0, 3));
    nd_tensor *b = nd_zeros(ND_SHAPE(4));
    nd_tensor *b5 = nd_zeros(ND_SHAPE(5));
    nd_tensor *b2 = nd_zeros(ND_SHAPE(4, 1));
    nd_tensor *small = nd_zeros(ND_SHAPE(1, 3, 2, 2));
    nd_tensor *dy = nd_zeros(ND_SHAPE(1, 4, 3, 3));
    nd_tensor *dy3 = nd_zeros(ND_SHAPE(4, 3, 3));
    nd_tensor *dy5 = nd_zeros(ND_SHAPE(1, 5, 3, 3));
    nd_tensor *dy44 = nd_zeros(ND_SHAPE(1, 4, 4, 4));
    nd_tensor *dy2 = nd_zeros(ND_SHAPE(2, 4, 3, 3));
    const int64_t xs[4] = {1, 3, 5, 5}, ws[4] = {4, 3, 3, 3};

#define F "nanodiff: conv2d: "
    EXPECT_FATAL(nd_conv2d(NULL, w, b, o), F "tensor is NULL");
    EXPECT_FATAL(nd_conv2d(x, NULL, b, o), F "tensor is NULL");
    EXPECT_FATAL(nd_conv2d(x3, w, b, o),
                 F "x has shape [3,5,5]; expected 4 dimensions [N,C,H,W]");
    EXPECT_FATAL(nd_conv2d(x, w3, b, o),
                 F "w has shape [4,3,3]; expected 4 dimensions [O,C,KH,KW]");
    EXPECT_FATAL(nd_conv2d(x, w, b2, o), F "bias has shape [4,1]; expected 1 dimension [O]");
    EXPECT_FATAL(nd_conv2d(x, w2, NULL, o),
                 F "x [1,3,5,5] has 3 channels but w [4,2,3,3] expects 2");
    EXPECT_FATAL(nd_conv2d(x, w0, NULL, o),
                 F "w [4,3,0,3] has a 0x3 kernel; it must be at least 1x1");
    EXPECT_FATAL(nd_conv2d(x, w, b, ((nd_conv2d_opts){0, 1, 0, 0, 0, 0})),
                 F "stride (0, 1) must be >= 1 on both axes");
    EXPECT_FATAL(nd_conv2d(x, w, b, ((nd_conv2d_opts){1, -2, 0, 0, 0, 0})),
                 F "stride (1, -2) must be >= 1 on both axes");
    EXPECT_FATAL(nd_conv2d(x, w, b, ((nd_conv2d_opts){1, 1, 0, 0, -1, 0})),
                 F "padding (top 0, bottom 0, left -1, right 0) must be >= 0 on every side");
    EXPECT_FATAL(nd_conv2d(x, w, b, ((nd_conv2d_opts){1, 1, INT64_MAX, 0, 0, 0})),
                 F "padding (top 9223372036854775807, bottom 0, left 0, right 0) of x "
                   "[1,3,5,5] is too large");
    EXPECT_FATAL(nd_conv2d(x, w, b, ((nd_conv2d_opts){1, 1, 1LL << 60, 0, 1LL << 60, 0})),
                 F "the output [1,4,1152921504606846979,1152921504606846979] of x [1,3,5,5] "
                   "and w [4,3,3,3] has too many elements");
    EXPECT_FATAL(nd_conv2d(small, w, b, o),
                 F "x [1,3,2,2] padded to 2x2 is smaller than the 3x3 kernel of w [4,3,3,3]");
    EXPECT_FATAL(nd_conv2d(small, w, b, ((nd_conv2d_opts){1, 1, 1, 0, 0, 0})),
                 F "x [1,3,2,2] padded to 3x2 is smaller than the 3x3 kernel of w [4,3,3,3]");
    EXPECT_FATAL(nd_conv2d(x, w, b5, o),
                 F "bias [5] does not match the 4 output channels of w [4,3,3,3]");
#undef F

#define F "nanodiff: conv2d_backward_input: "
    EXPECT_FATAL(nd_conv2d_backward_input(NULL, w, xs, o), F "tensor is NULL");
    EXPECT_FATAL(nd_conv2d_backward_input(dy, NULL, xs, o), F "tensor is NULL");
    EXPECT_FATAL(nd_conv2d_backward_input(dy, w, NULL, o), F "x_shape is NULL");
    EXPECT_FATAL(nd_conv2d_backward_input(dy3, w, xs, o),
                 F "dy has shape [4,3,3]; expected 4 dimensions [N,O,OH,OW]");
    EXPECT_FATAL(nd_conv2d_backward_input(dy, w3, xs, o),
                 F "w has shape [4,3,3]; expected 4 dimensions [O,C,KH,KW]");
    EXPECT_FATAL(nd_conv2d_backward_input(dy, w, ((const int64_t[]){1, -3, 5, 5}), o),
                 F "x_shape [1,-3,5,5] has a negative size");
    const int64_t huge[4] = {1LL << 40, 1LL << 40, 1, 1};
    EXPECT_FATAL(nd_conv2d_backward_input(dy, w, huge, o),
                 F "x_shape [1099511627776,1099511627776,1,1] has too many elements");
    EXPECT_FATAL(nd_conv2d_backward_input(dy5, w, xs, o),
                 F "dy [1,5,3,3] has 5 channels but w [4,3,3,3] has 4 output channels");
    EXPECT_FATAL(nd_conv2d_backward_input(dy, w, ((const int64_t[]){1, 2, 5, 5}), o),
                 F "x_shape [1,2,5,5] has 2 channels but w [4,3,3,3] expects 3");
    EXPECT_FATAL(nd_conv2d_backward_input(dy, w, xs, ((nd_conv2d_opts){1, 0, 0, 0, 0, 0})),
                 F "stride (1, 0) must be >= 1 on both axes");
    EXPECT_FATAL(nd_conv2d_backward_input(dy, w, xs, ((nd_conv2d_opts){1, 1, 0, -1, 0, 0})),
                 F "padding (top 0, bottom -1, left 0, right 0) must be >= 0 on every side");
    EXPECT_FATAL(nd_conv2d_backward_input(dy, w, ((const int64_t[]){1, 3, 5, 2}), o),
                 F "x_shape [1,3,5,2] padded to 5x2 is smaller than the 3x3 kernel of w "
                   "[4,3,3,3]");
    EXPECT_FATAL(nd_conv2d_backward_input(dy44, w, xs, o),
                 F "dy [1,4,4,4] is not the output shape [1,4,3,3] of x_shape [1,3,5,5] and "
                   "w [4,3,3,3]");
    EXPECT_FATAL(nd_conv2d_backward_input(dy2, w, xs, o),
                 F "dy [2,4,3,3] is not the output shape [1,4,3,3] of x_shape [1,3,5,5] and "
                   "w [4,3,3,3]");
#undef F

#define F "nanodiff: conv2d_backward_weight: "
    EXPECT_FATAL(nd_conv2d_backward_weight(NULL, x, ws, o), F "tensor is NULL");
    EXPECT_FATAL(nd_conv2d_backward_weight(dy, NULL, ws, o), F "tensor is NULL");
    EXPECT_FATAL(nd_conv2d_backward_weight(dy, x, NULL, o), F "w_shape is NULL");
    EXPECT_FATAL(nd_conv2d_backward_weight(dy3, x, ws, o),
                 F "dy has shape [4,3,3]; expected 4 dimensions [N,O,OH,OW]");
    EXPECT_FATAL(nd_conv2d_backward_weight(dy, x3, ws, o),
                 F "x has shape [3,5,5]; expected 4 dimensions [N,C,H,W]");
    EXPECT_FATAL(nd_conv2d_backward_weight(dy, x, ((const int64_t[]){4, 3, -1, 3}), o),
                 F "w_shape [4,3,-1,3] has a negative size");
    EXPECT_FATAL(nd_conv2d_backward_weight(dy5, x, ws, o),
                 F "dy [1,5,3,3] has 5 channels but w_shape [4,3,3,3] has 4 output channels");
    EXPECT_FATAL(nd_conv2d_backward_weight(dy, x, ((const int64_t[]){4, 2, 3, 3}), o),
                 F "x [1,3,5,5] has 3 channels but w_shape [4,2,3,3] expects 2");
    EXPECT_FATAL(nd_conv2d_backward_weight(dy, x, ((const int64_t[]){4, 3, 3, 0}), o),
                 F "w_shape [4,3,3,0] has a 3x0 kernel; it must be at least 1x1");
    EXPECT_FATAL(nd_conv2d_backward_weight(dy, x, ws, ((nd_conv2d_opts){0, 0, 0, 0, 0, 0})),
                 F "stride (0, 0) must be >= 1 on both axes");
    EXPECT_FATAL(nd_conv2d_backward_weight(dy, x, ws, ((nd_conv2d_opts){1, 1, 0, 0, 0, -5})),
                 F "padding (top 0, bottom 0, left 0, right -5) must be >= 0 on every side");
    EXPECT_FATAL(nd_conv2d_backward_weight(dy, small, ws, o),
                 F "x [1,3,2,2] padded to 2x2 is smaller than the 3x3 kernel of w_shape "
                   "[4,3,3,3]");
    EXPECT_FATAL(nd_conv2d_backward_weight(dy, x, ws, ((nd_conv2d_opts){2, 2, 0, 0, 0, 0})),
                 F "dy [1,4,3,3] is not the output shape [1,4,2,2] of x [1,3,5,5] and w_shape "
                   "[4,3,3,3]");
#undef F
}
END_TEST

TCase *tcase_conv(void) {
    TCase *tc = nd_test_case("conv");
    tcase_add_test(tc, matches_naive_reference);
    tcase_add_test(tc, library_reference_is_the_definition);
    tcase_add_test(tc, several_tiles_across_images);
    tcase_add_loop_test(tc, last_group_in_more_ranges, 0, 2);
    tcase_add_loop_test(tc, kernel_sets_agree, 0, 2);
    tcase_add_loop_test(tc, same_bits_for_any_thread_count, 0, 2);
    tcase_add_test(tc, scratch_stays_bounded);
    tcase_add_test(tc, reports_one_event_per_op);
    tcase_add_test(tc, empty_batch);
    tcase_add_test(tc, error_messages);
    return tc;
}
