/* softmax, log_softmax and softmax's backward pass on random shapes,
 * along a random axis, against the formulas in double, with every kernel
 * set and 1 to 3 threads. Fibres of 1 to 5000 elements, near the row
 * kernels' blocks (16 lanes, blocks of 32, SPLIT = 256 in AVX2) more
 * often than not; dense, permuted and sliced inputs, whose fibres the
 * library gathers through a scratch row; values around zero, far from it
 * in a cluster, or of any magnitude up to 3e38 (where x - max overflows
 * to -inf); entries of -inf, and whole fibres of -inf, for which the
 * library, as PyTorch, gives NaN (the maximum is -inf, and -inf - -inf is
 * NaN). The same bits with another thread count, with the prefetching
 * path taken or not, and from a contiguous copy of the input (softmax.c:
 * a value's result depends neither on the layout nor on the threads).
 *
 * Case i draws everything from the seed base + i, and a failure prints
 * that seed, so ND_SOFTMAX_SOAK_SEED=seed ND_SOFTMAX_SOAK=1 runs it
 * alone. ND_SOFTMAX_SOAK=n runs n cases instead of DEFAULT_CASES, and
 * ND_SOFTMAX_SOAK_SEED sets the base (default BASE_SEED). */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define DEFAULT_CASES 500
#define BASE_SEED 5000
#define CASES_PER_TEST 50 /* a test (a process, a timeout) per this many */

/* ---- drawing shapes ---------------------------------------------------------- */


/* Uniform in [-1, 1) with 24 bits, exact in float. */
static double unit(uint64_t *s) { return (double)(t_next_u64(s) >> 40) * 0x1p-23 - 1.0; }

/* A fibre length: mostly next to a multiple of a block of the row
 * kernels (8-float vectors, the 16 lanes of the sums, blocks of 32, AVX2's
 * SPLIT of 256 floats), just full, one short or one over; else any. */
static int64_t draw_length(uint64_t *s, int64_t hi) {
    static const int64_t sides[] = {8, 16, 32, 256};
    switch (t_draw(s, 0, 3)) {
    case 0: return t_draw(s, 1, t_min(hi, 40));
    case 1: return t_draw(s, 1, hi);
    default: {
        int64_t side = sides[t_draw(s, 0, 3)];
        int64_t v = side * t_draw(s, 1, t_max(1, hi / side)) + t_draw(s, -1, 1);
        return t_min(t_max(v, 1), hi);
    }
    }
}

enum { AROUND_ZERO, CLUSTER, ANY_MAGNITUDE, DISTS };
static const char *const dist_names[DISTS] = {"around zero", "in a cluster far from zero",
                                              "of any magnitude"};

/* How a tensor is stored: its logical axis perm[i] is storage axis i;
 * along logical axis d it takes every step[d]-th element from start[d]. */
typedef struct {
    int perm[4];
    int64_t step[4], start[4];
    bool moved, sliced;
} layout;

typedef struct {
    uint64_t seed;
    const char *family;
    int ndim, axis;
    int64_t shape[4];
    layout x, y, dy; /* x for the forward pass; y and dy for the backward */
    int dist, scale;
    int inf_eighths;    /* each element -inf with probability inf_eighths / 8 */
    bool inf_fibres;    /* a fibre in 8 all -inf */
    int threads, other; /* two thread counts, which must give the same bits */
    bool prefetch;      /* the prefetching path for the first run */
} rcase;

static void draw_layout(uint64_t *s, layout *l, int nd) {
    for (int i = 0; i < nd; i++) {
        l->perm[i] = i;
        l->step[i] = 1;
        l->start[i] = 0;
    }
    l->moved = l->sliced = false;
    if (t_draw(s, 0, 1)) return; /* dense half the time */
    if (t_draw(s, 0, 2))
        for (int i = nd - 1; i > 0; i--) {
            int j = (int)t_draw(s, 0, i), t = l->perm[i];
            l->perm[i] = l->perm[j];
            l->perm[j] = t;
        }
    for (int i = 0; i < nd; i++) l->moved = l->moved || l->perm[i] != i;
    if (!l->moved || t_draw(s, 0, 1))
        for (int i = 0; i < nd; i++) {
            l->step[i] = t_draw(s, 0, 1) ? 1 : t_draw(s, 2, 3);
            l->start[i] = t_draw(s, 0, 1);
            l->sliced = l->sliced || l->step[i] != 1 || l->start[i] != 0;
        }
}

static rcase draw_case(uint64_t seed) {
    rcase k = {.seed = seed};
    uint64_t s = seed;
    /* most small, some past a chunk of the pool (ND_GRAIN = 65536 elements) */
    int64_t budget = (int64_t)1 << t_draw(&s, 6, t_draw(&s, 0, 3) ? 16 : 18);
    k.ndim = (int)t_draw(&s, 1, 4);
    k.axis = (int)t_draw(&s, 0, k.ndim - 1);
    int64_t len;
    if (t_draw(&s, 0, 3) == 0) {
        k.family = "long fibres";
        len = draw_length(&s, 5000);
    } else {
        k.family = "fibres within the budget";
        len = draw_length(&s, t_min(5000, budget));
    }
    k.shape[k.axis] = len;
    /* the other axes in a random order, each within what is left */
    int64_t room = t_max(1, budget / len), first = t_draw(&s, 0, k.ndim - 1);
    for (int j = 0; j < k.ndim; j++) {
        int d = (int)((first + j) % k.ndim);
        if (d == k.axis) continue;
        k.shape[d] = t_draw(&s, 1, t_max(1, t_min(room, 64)));
        room = t_max(1, room / k.shape[d]);
    }
    draw_layout(&s, &k.x, k.ndim);
    draw_layout(&s, &k.y, k.ndim);
    draw_layout(&s, &k.dy, k.ndim);
    k.dist = (int)t_draw(&s, 0, DISTS - 1);
    k.scale = (int)t_draw(&s, -4, 7);
    k.inf_eighths = t_draw(&s, 0, 1) ? 0 : (int)t_draw(&s, 1, 7);
    k.inf_fibres = t_draw(&s, 0, 2) == 0;
    k.threads = (int)t_draw(&s, 1, 3);
    k.other = k.threads % 3 + 1;
    k.prefetch = t_draw(&s, 0, 1);
    return k;
}

static int layout_text(const layout *l, int nd, char *buf, size_t size) {
    int used = 0;
    if (!l->moved && !l->sliced) return snprintf(buf, size, "dense");
    if (l->moved) {
        used += snprintf(buf + used, size - (size_t)used, "stored as axes");
        for (int i = 0; i < nd; i++)
            used += snprintf(buf + used, size - (size_t)used, "%s%d", i ? "," : " ", l->perm[i]);
    }
    if (l->sliced) {
        used += snprintf(buf + used, size - (size_t)used, "%ssliced", l->moved ? ", " : "");
        for (int i = 0; i < nd; i++)
            used += snprintf(buf + used, size - (size_t)used, "%s%lld::%lld", i ? "," : " ",
                             (long long)l->start[i], (long long)l->step[i]);
    }
    return used;
}

static void describe(const rcase *k, char *buf, size_t size) {
    char shape[80] = "", x[100], y[100], dy[100];
    for (int i = 0, used = 0; i < k->ndim; i++)
        used += snprintf(shape + used, sizeof shape - (size_t)used, "%s%lld", i ? "," : "",
                         (long long)k->shape[i]);
    layout_text(&k->x, k->ndim, x, sizeof x);
    layout_text(&k->y, k->ndim, y, sizeof y);
    layout_text(&k->dy, k->ndim, dy, sizeof dy);
    char values[64];
    if (k->dist == ANY_MAGNITUDE) snprintf(values, sizeof values, "%s", dist_names[k->dist]);
    else snprintf(values, sizeof values, "%s (spread 2^%d)", dist_names[k->dist], k->scale);
    snprintf(buf, size,
             "seed %llu (%s): x [%s] %s, axis %d, values %s, -inf in %d/8 of the elements%s; "
             "y %s, dy %s; %d and %d threads, prefetching %s first",
             (unsigned long long)k->seed, k->family, shape, x, k->axis, values, k->inf_eighths,
             k->inf_fibres ? " and in whole fibres" : "", y, dy, k->threads, k->other,
             k->prefetch ? "on" : "off");
}

/* ---- inputs ---------------------------------------------------------------- */

/* Element i (row-major over t's shape) of a strided tensor's storage. */
static int64_t offset_of(const nd_tensor *t, int64_t i) {
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += i % t->shape[d] * t->strides[d];
        i /= t->shape[d];
    }
    return off;
}

/* A tensor of the case's shape in layout l holding vals (row-major), its
 * storage NaN outside the view: reading past it shows in the results. */
static nd_tensor *make_tensor(const rcase *k, const layout *l, const float *vals) {
    int nd = k->ndim, inv[4] = {0};
    int64_t st[4] = {0};
    for (int i = 0; i < nd; i++) {
        int d = l->perm[i];
        inv[d] = i;
        st[i] = l->start[d] + (k->shape[d] - 1) * l->step[d] + 1;
    }
    nd_tensor *t = nd_permute(nd_full(st, nd, NAN), inv, nd);
    for (int d = 0; d < nd; d++)
        if (l->step[d] != 1 || l->start[d] != 0)
            t = nd_slice(t, d, l->start[d], ND_END, l->step[d]);
    for (int d = 0; d < nd; d++) ck_assert_int_eq(t->shape[d], k->shape[d]);
    float *p = nd_data(t);
    for (int64_t i = 0, n = nd_numel(t); i < n; i++) p[offset_of(t, i)] = vals[i];
    return t;
}

/* x row-major: around zero, uniform in [-2^scale, 2^scale); in a cluster,
 * a centre of either sign in [1e3, 1e6) plus that; of any magnitude,
 * uniform in [-1, 1) times 2^-20 .. 2^128 (up to FLT_MAX, so that x - max
 * may overflow). Then -inf here and there, and whole fibres of it. */
static float *make_x(const rcase *k, int64_t count) {
    float *x = malloc((size_t)t_max(count, 1) * sizeof(float));
    ck_assert_ptr_nonnull(x);
    uint64_t s = k->seed ^ 0x9e3779b97f4a7c15u;
    double centre = (unit(&s) * 0.5 + 0.5) * 999e3 + 1e3;
    if (t_draw(&s, 0, 1)) centre = -centre;
    for (int64_t i = 0; i < count; i++) {
        double v = unit(&s) * ldexp(1.0, k->scale);
        if (k->dist == CLUSTER) v += centre;
        if (k->dist == ANY_MAGNITUDE) v = unit(&s) * ldexp(1.0, (int)t_draw(&s, -20, 128));
        x[i] = (float)v;
        if (k->inf_eighths && (int)t_draw(&s, 0, 7) < k->inf_eighths) x[i] = -INFINITY;
    }
    if (k->inf_fibres) { /* every eighth fibre, from a random first */
        int64_t len = k->shape[k->axis], inner = 1;
        for (int d = k->axis + 1; d < k->ndim; d++) inner *= k->shape[d];
        int64_t phase = t_draw(&s, 0, 7);
        for (int64_t i = 0; i < count; i++) {
            int64_t fibre = i / (len * inner) * inner + i % inner;
            if ((fibre + phase) % 8 == 0) x[i] = -INFINITY;
        }
    }
    return x;
}

/* ---- the reference ----------------------------------------------------------- */

#define U 0x1p-24 /* a half float ulp of 1 */

/* Per element, row-major: softmax and log_softmax in double and their
 * tolerances. x - max rounds to float in the library, moving e^{x - max}
 * by up to |x - max| 2^-24 of itself; the exps are within 2 ulps, their
 * sum within 2^-23 (blocks of 32 in float), and the scale or the log of
 * the sum and the last product or difference round once more. The sum's
 * error reaches every element of the fibre: c = sum e_j (|d_j| + 4) / sum
 * e_j bounds it in units of 2^-24. The tolerances are these bounds, with
 * room to spare (in 10000 cases at most 0.39 of softmax's was used, 0.92
 * of log_softmax's, where x - max and the result both round by nearly
 * half an ulp, and 0.35 of the backward pass's). Fibres all -inf give
 * NaN. */
typedef struct {
    double *s, *stol, *l, *ltol;
} reference;

static reference compute_reference(const rcase *k, const float *x, int64_t count) {
    reference r;
    r.s = malloc((size_t)t_max(count, 1) * sizeof(double));
    r.stol = malloc((size_t)t_max(count, 1) * sizeof(double));
    r.l = malloc((size_t)t_max(count, 1) * sizeof(double));
    r.ltol = malloc((size_t)t_max(count, 1) * sizeof(double));
    ck_assert(r.s && r.stol && r.l && r.ltol);
    int64_t len = k->shape[k->axis], inner = 1;
    for (int d = k->axis + 1; d < k->ndim; d++) inner *= k->shape[d];
    for (int64_t f = 0; f < count / len; f++) {
        int64_t base = f / inner * len * inner + f % inner; /* element 0 of fibre f */
        double m = -INFINITY, z = 0, c = 0;
        for (int64_t i = 0; i < len; i++) m = fmax(m, x[base + i * inner]);
        for (int64_t i = 0; i < len; i++) {
            double d = x[base + i * inner] - m, e = exp(d);
            z += e;
            if (e > 0) c += e * (fabs(d) + 4);
        }
        c /= z;
        double lz = log(z);
        for (int64_t i = 0; i < len; i++) {
            int64_t at = base + i * inner;
            double d = x[at] - m;
            if (m == -INFINITY) { /* -inf - -inf */
                r.s[at] = r.l[at] = NAN;
                r.stol[at] = r.ltol[at] = 0;
                continue;
            }
            r.s[at] = exp(d) / z;
            r.stol[at] = r.s[at] * U * (2 * fabs(d) + 2 * c + 16) + 0x1p-146;
            r.l[at] = d - lz;
            r.ltol[at] = U * (2 * fabs(d) + 2 * fabs(lz) + 2 * c + 8);
        }
    }
    return r;
}

static void free_reference(reference *r) {
    free(r->s);
    free(r->stol);
    free(r->l);
    free(r->ltol);
}

/* dx = y (dy - sum_j dy_j y_j) along the axis, from the library's y, with
 * the sum of the magnitudes of its terms, |y| (|dy| + sum_j |dy_j y_j|). */
static void backward_reference(const rcase *k, const float *y, const float *dy, int64_t count,
                               double *dx, double *scale) {
    int64_t len = k->shape[k->axis], inner = 1;
    for (int d = k->axis + 1; d < k->ndim; d++) inner *= k->shape[d];
    for (int64_t f = 0; f < count / len; f++) {
        int64_t base = f / inner * len * inner + f % inner;
        double dot = 0, mag = 0;
        for (int64_t i = 0; i < len; i++) {
            double p = (double)dy[base + i * inner] * y[base + i * inner];
            dot += p;
            mag += fabs(p);
        }
        for (int64_t i = 0; i < len; i++) {
            int64_t at = base + i * inner;
            dx[at] = y[at] * (dy[at] - dot);
            scale[at] = fabs(y[at]) * (fabs(dy[at]) + mag);
        }
    }
}

/* ---- checking ------------------------------------------------------------------ */

/* the backward pass: within 8 units of 2^-24 of the sum of |terms| (it
 * rounds a product, the sum, a difference and a product), and 8 ulps of
 * the subnormals (2^-146), where those roundings are absolute */
#define BACKWARD_TOL (8 * U)

/* |error| / tolerance seen: softmax, log_softmax, backward; and the
 * elements checked in fibres of -inf, at -inf and beyond the floats; for
 * ND_TEST_VERBOSE */
static double worst[3];
static int64_t seen_nan, seen_inf, seen_beyond;

static void fail_at(const rcase *k, const char *what, int64_t i, double got, double want,
                    const char *why) {
    int64_t idx[4];
    t_unravel(i, k->shape, k->ndim, idx);
    char at[80] = "";
    for (int d = 0, used = 0; d < k->ndim; d++)
        used += snprintf(at + used, sizeof at - (size_t)used, "%s%lld", d ? "," : "",
                         (long long)idx[d]);
    ck_abort_msg("%s: %s[%s] is %.9g, expected %.9g%s", t_running, what, at, got, want, why);
}

/* got (contiguous) against want with absolute tolerances tol; NaN where
 * want is NaN; for log_softmax, -inf where x is -inf, and -inf or the
 * float next to it where the result is beyond the floats */
static void expect_close(const rcase *k, int q, const char *what, const nd_tensor *got,
                         const float *x, const double *want, const double *tol) {
    if (!nd_is_contiguous(got)) ck_abort_msg("%s: %s is not contiguous", t_running, what);
    for (int d = 0; d < k->ndim; d++)
        if (got->shape[d] != k->shape[d])
            ck_abort_msg("%s: %s has the wrong shape", t_running, what);
    const float *g = nd_data(got);
    for (int64_t i = 0, n = nd_numel(got); i < n; i++) {
        double v = g[i], w = want[i];
        if (isnan(w)) {
            seen_nan++;
            if (!isnan(v)) fail_at(k, what, i, v, w, " (the fibre is all -inf)");
        } else if (x && x[i] == -INFINITY) {
            seen_inf++;
            bool ok = q == 0 ? v == 0 : v == -INFINITY;
            if (!ok) fail_at(k, what, i, v, q == 0 ? 0.0 : -INFINITY, " exactly (x is -inf)");
        } else if (q == 1 && w < -FLT_MAX) {
            seen_beyond++;
            if (!(v <= -FLT_MAX)) fail_at(k, what, i, v, w, " (beyond the floats: -inf)");
        } else {
            double err = fabs(v - w);
            if (tol[i] > 0) worst[q] = fmax(worst[q], err / tol[i]);
            if (!(err <= tol[i])) {
                char why[80];
                snprintf(why, sizeof why, " (tolerance %.3g)", tol[i]);
                fail_at(k, what, i, v, w, why);
            }
        }
    }
}

static void expect_same_bits(const char *what, const nd_tensor *a, const nd_tensor *b,
                             const char *how) {
    int64_t n = nd_numel(a);
    if (memcmp(nd_data(a), nd_data(b), (size_t)n * sizeof(float))) {
        int64_t at = 0;
        while (!memcmp(nd_data(a) + at, nd_data(b) + at, sizeof(float))) at++;
        ck_abort_msg("%s: %s[%lld] is %.9g, but %.9g %s", t_running, what, (long long)at,
                     (double)nd_data(a)[at], (double)nd_data(b)[at], how);
    }
}

static void run_label(const char *desc, const char *set, int threads, bool prefetch) {
    snprintf(t_running, sizeof t_running, "%s; kernels %s, %d thread%s, prefetching %s", desc, set,
             threads, threads == 1 ? "" : "s", prefetch ? "on" : "off");
}

static void check_case(uint64_t seed, const nd_kernels *const *sets, int nsets) {
    rcase k = draw_case(seed);
    char desc[600];
    describe(&k, desc, sizeof desc);
    snprintf(t_running, sizeof t_running, "%s", desc);
    if (getenv("ND_TEST_VERBOSE") && atoi(getenv("ND_TEST_VERBOSE")) > 1) printf("%s\n", desc);
    int64_t count = t_count(k.shape, k.ndim);
    float *xv = make_x(&k, count);
    reference ref = compute_reference(&k, xv, count);
    float *dyv = malloc((size_t)count * sizeof(float));
    double *dx = malloc((size_t)count * sizeof(double));
    double *dxs = malloc((size_t)count * sizeof(double));
    ck_assert(dyv && dx && dxs);
    uint64_t s = seed ^ 0x2545f4914f6cdd1du;
    for (int64_t i = 0; i < count; i++) dyv[i] = (float)unit(&s);
    nd_scope *scope = nd_scope_begin();
    nd_tensor *x = make_tensor(&k, &k.x, xv), *xc = nd_from_buffer(xv, k.shape, k.ndim);
    nd_tensor *dyt = make_tensor(&k, &k.dy, dyv);
    nd_error err;
    for (int i = 0; i < nsets; i++) {
        ck_assert_int_eq(nd_set_kernels(sets[i]->name, &err), ND_OK);
        nd_scope *sc = nd_scope_begin();
        /* against the reference */
        nd_set_num_threads(k.threads);
        nd__set_stream_threshold(k.prefetch ? 0 : -1);
        run_label(desc, sets[i]->name, k.threads, k.prefetch);
        nd_tensor *sm = nd_softmax(x, k.axis), *lsm = nd_log_softmax(x, k.axis);
        expect_close(&k, 0, "softmax", sm, xv, ref.s, ref.stol);
        expect_close(&k, 1, "log_softmax", lsm, xv, ref.l, ref.ltol);
        /* the backward pass from the library's y, in its own layout */
        nd_tensor *y = make_tensor(&k, &k.y, nd_data(sm));
        backward_reference(&k, nd_data(sm), dyv, count, dx, dxs);
        nd_tensor *dxt = nd_softmax_backward(y, dyt, k.axis);
        for (int64_t j = 0; j < count; j++) dxs[j] = dxs[j] * BACKWARD_TOL + 0x1p-146;
        expect_close(&k, 2, "softmax_backward", dxt, NULL, dx, dxs);
        /* the same bits with the other thread count and prefetching */
        nd_set_num_threads(k.other);
        nd__set_stream_threshold(k.prefetch ? -1 : 0);
        run_label(desc, sets[i]->name, k.other, !k.prefetch);
        char how[80];
        snprintf(how, sizeof how, "with %d threads and prefetching %s", k.threads,
                 k.prefetch ? "on" : "off");
        expect_same_bits("softmax", nd_softmax(x, k.axis), sm, how);
        expect_same_bits("log_softmax", nd_log_softmax(x, k.axis), lsm, how);
        expect_same_bits("softmax_backward", nd_softmax_backward(y, dyt, k.axis), dxt, how);
        /* and from a contiguous copy of x */
        nd_set_num_threads(k.threads);
        nd__set_stream_threshold(k.prefetch ? 0 : -1);
        run_label(desc, sets[i]->name, k.threads, k.prefetch);
        snprintf(how, sizeof how, "from x in its layout");
        expect_same_bits("softmax of contiguous x", nd_softmax(xc, k.axis), sm, how);
        expect_same_bits("log_softmax of contiguous x", nd_log_softmax(xc, k.axis), lsm, how);
        nd_scope_end(sc);
    }
    nd__set_stream_threshold(-1);
    nd_scope_end(scope);
    free_reference(&ref);
    free(xv);
    free(dyv);
    free(dx);
    free(dxs);
}

/* ---- the test ------------------------------------------------------------------ */

static void finish(int test) {
    if (getenv("ND_TEST_VERBOSE"))
        printf("softmax_random %d: at most %.3g, %.3g and %.3g of the tolerances; %lld "
               "elements checked in fibres of -inf, %lld at -inf, %lld beyond the floats\n",
               test, worst[0], worst[1], worst[2], (long long)seen_nan, (long long)seen_inf,
               (long long)seen_beyond);
}

static const t_random run = {"softmax_random", "ND_SOFTMAX_SOAK", DEFAULT_CASES, CASES_PER_TEST,
                              BASE_SEED, check_case, finish};

START_TEST(random_shapes_match_double_reference) { t_random_cases(&run, _i); }
END_TEST

TCase *tcase_softmax_random(void) {
    return t_random_tcase(&run, random_shapes_match_double_reference);
}
