/* GroupNorm on random shapes: the forward pass and, through autograd, the
 * gradients of sum(y w) for a random w (dx, dgamma, dbeta) against the
 * formulas at the top of nn/group_norm.c evaluated in double, with every
 * kernel set, 1 to 3 threads, dense, permuted and sliced inputs. Batches
 * of 1 .. 70, channels in groups of any size that divides them, 0 to 3
 * spatial axes, with or without affine parameters; values of either sign
 * around zero or around a large mean with a small spread (where folding
 * the mean into float constants loses the digits that matter), and whole
 * groups of equal values, groups of one element among them, which must
 * give exactly beta. The thread count and the kernel set must not change
 * a bit.
 *
 * Case i draws everything from the seed base + i, and a failure prints
 * that seed, so ND_GN_SOAK_SEED=seed ND_GN_SOAK=1 runs it alone.
 * ND_GN_SOAK=n runs n cases instead of DEFAULT_CASES, and ND_GN_SOAK_SEED
 * sets the base (default BASE_SEED). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "nn/nn.h"

#define DEFAULT_CASES 600
#define BASE_SEED 3000
#define CASES_PER_TEST 50 /* a test (a process, a timeout) per this many */

/* ---- drawing shapes ---------------------------------------------------------- */


/* Uniform in [-1, 1) with 24 bits, exact in float. */
static double unit(uint64_t *s) { return (double)(t_next_u64(s) >> 40) * 0x1p-23 - 1.0; }

/* Half the time a size next to a multiple of the sixteen double lanes of
 * the row sums (nd_row_sum: element i into lane i % 16) or of a SIMD
 * vector (4, 8): just full, one short or one over. Else any in [lo, hi]. */
static int64_t draw_size(uint64_t *s, int64_t lo, int64_t hi) {
    static const int64_t sides[] = {4, 8, 16, 32};
    int64_t side = sides[t_draw(s, 0, 3)];
    if (t_draw(s, 0, 1) || side > hi + 1) return t_draw(s, lo, hi);
    int64_t v = side * t_draw(s, 1, t_max(1, (hi + 1) / side)) + t_draw(s, -1, 1);
    return t_min(t_max(v, lo), hi);
}

/* A divisor of c up to `most`, uniform among them. */
static int64_t draw_divisor(uint64_t *s, int64_t c, int64_t most) {
    int64_t divs[64], count = 0;
    for (int64_t d = 1; d <= t_min(c, most) && count < 64; d++)
        if (c % d == 0) divs[count++] = d;
    return divs[t_draw(s, 0, count - 1)];
}

enum { UNIFORM, OFFSET, DISTS };
static const char *const dist_names[DISTS] = {"around zero", "around large means"};
enum { DENSE, CHANNELS_LAST, PERMUTED, SLICED, LAYOUTS };
static const char *const layout_names[LAYOUTS] = {"dense", "channels last", "permuted",
                                                  "sliced"};

typedef struct {
    uint64_t seed;
    const char *family;
    int64_t n, c, groups;
    int nsp;         /* spatial axes, 0 .. 3 */
    int64_t sp[3];
    int64_t positions; /* product of sp */
    bool affine;
    float eps;
    int dist, scale; /* values: around zero times 2^scale, or around a mean */
    int layout;
    int perm[5];     /* storage axis k holds logical axis perm[k] */
    int threads;
} rcase;

static int ndim_of(const rcase *k) { return 2 + k->nsp; }

/* least .. 3 spatial axes, their sizes of a product of at most `room`
 * (each at least 1) */
static void draw_spatial(uint64_t *s, rcase *k, int least, int64_t room) {
    k->nsp = (int)t_draw(s, least, 3);
    k->positions = 1;
    for (int i = 0; i < k->nsp; i++) {
        k->sp[i] = draw_size(s, 1, t_max(1, t_min(40, room / k->positions)));
        k->positions *= k->sp[i];
    }
}

static rcase draw_case(uint64_t seed) {
    rcase k = {.seed = seed};
    uint64_t s = seed;
    switch (t_draw(&s, 0, 3)) {
    case 0: { /* groups of one or two elements: one channel of one or two
               * positions, or two channels of one */
        k.family = "groups of 1 or 2";
        int64_t cpg = t_draw(&s, 1, 2);
        k.groups = t_draw(&s, 1, 32);
        k.c = k.groups * cpg;
        k.nsp = (int)t_draw(&s, 0, 3);
        k.positions = 1;
        for (int i = 0; i < k.nsp; i++) k.sp[i] = 1;
        if (cpg == 1 && k.nsp > 0 && t_draw(&s, 0, 1)) {
            k.sp[t_draw(&s, 0, k.nsp - 1)] = 2;
            k.positions = 2;
        }
        k.n = t_draw(&s, 1, 70);
        break;
    }
    case 1: { /* long rows: few groups of up to a few thousand elements */
        k.family = "long rows";
        k.c = draw_size(&s, 1, 64);
        k.groups = draw_divisor(&s, k.c, 4);
        draw_spatial(&s, &k, 1, t_max(1, t_draw(&s, 16, 5000) * k.groups / k.c));
        k.n = t_draw(&s, 1, 4);
        break;
    }
    default: { /* anything, within a budget of elements */
        k.family = "any";
        int64_t budget = (int64_t)1 << t_draw(&s, 6, 15);
        k.c = draw_size(&s, 1, 96);
        k.groups = draw_divisor(&s, k.c, k.c);
        if (t_draw(&s, 0, 1)) { /* the batch first, or the positions */
            k.n = t_draw(&s, 1, t_min(70, t_max(1, budget / k.c)));
            draw_spatial(&s, &k, 0, t_max(1, budget / (k.c * k.n)));
        } else {
            draw_spatial(&s, &k, 0, t_max(1, budget / k.c));
            k.n = t_draw(&s, 1, t_min(70, t_max(1, budget / (k.c * k.positions))));
        }
        break;
    }
    }
    k.affine = t_draw(&s, 0, 3) != 0;
    static const float epss[] = {1e-5f, 1e-6f, 1e-3f, 0.25f};
    k.eps = epss[t_draw(&s, 0, 3)];
    k.dist = (int)t_draw(&s, 0, DISTS - 1);
    k.scale = (int)t_draw(&s, -8, 8);
    int nd = ndim_of(&k);
    for (int i = 0; i < nd; i++) k.perm[i] = i;
    k.layout = t_draw(&s, 0, 1) ? DENSE : (int)t_draw(&s, 1, LAYOUTS - 1);
    if (k.layout == CHANNELS_LAST) { /* [N, *, C] */
        for (int i = 1; i < nd - 1; i++) k.perm[i] = i + 1;
        k.perm[nd - 1] = 1;
    } else if (k.layout == PERMUTED) { /* any order (Fisher-Yates) */
        for (int i = nd - 1; i > 0; i--) {
            int j = (int)t_draw(&s, 0, i), t = k.perm[i];
            k.perm[i] = k.perm[j];
            k.perm[j] = t;
        }
    }
    k.threads = (int)t_draw(&s, 1, 3);
    return k;
}

static void describe(const rcase *k, char *buf, size_t size) {
    char shape[96] = "", order[64] = "";
    int nd = ndim_of(k), used = 0;
    used += snprintf(shape + used, sizeof shape - (size_t)used, "[%lld,%lld", (long long)k->n,
                     (long long)k->c);
    for (int i = 0; i < k->nsp; i++)
        used += snprintf(shape + used, sizeof shape - (size_t)used, ",%lld", (long long)k->sp[i]);
    snprintf(shape + used, sizeof shape - (size_t)used, "]");
    if (k->layout == CHANNELS_LAST || k->layout == PERMUTED) {
        used = snprintf(order, sizeof order, " (stored as axes");
        for (int i = 0; i < nd; i++)
            used += snprintf(order + used, sizeof order - (size_t)used, "%s%d", i ? "," : " ",
                             k->perm[i]);
        snprintf(order + used, sizeof order - (size_t)used, ")");
    } else if (k->layout == SLICED) {
        snprintf(order, sizeof order, " (every axis from 1, the last in steps of 2)");
    }
    char values[64];
    if (k->dist == UNIFORM) snprintf(values, sizeof values, "in [-2^%d, 2^%d)", k->scale, k->scale);
    else snprintf(values, sizeof values, "%s", dist_names[k->dist]);
    snprintf(buf, size,
             "seed %llu (%s): x %s %s%s, %lld group%s of %lld, %s, eps %g, values %s, "
             "%d thread%s",
             (unsigned long long)k->seed, k->family, shape, layout_names[k->layout], order,
             (long long)k->groups, k->groups == 1 ? "" : "s",
             (long long)(k->c / k->groups * k->positions), k->affine ? "affine" : "no affine",
             (double)k->eps, values, k->threads, k->threads == 1 ? "" : "s");
}

/* ---- inputs ---------------------------------------------------------------- */

typedef struct {
    int64_t count;
    double *x, *w, *gamma, *beta; /* x and w row-major [n, c, positions] */
} values;

/* Around zero: uniform in [-2^scale, 2^scale). Around a mean: each group
 * a centre of either sign in [1, 1000) and a spread of 2^-6 .. 2^-22 of
 * it, rounded to float. Either way an eighth of the groups hold one value
 * throughout (variance exactly 0, as every group of one element). */
static values make_values(const rcase *k) {
    values v;
    int64_t d = k->c / k->groups * k->positions;
    v.count = k->n * k->c * k->positions;
    v.x = malloc((size_t)t_max(v.count, 1) * sizeof(double));
    v.w = malloc((size_t)t_max(v.count, 1) * sizeof(double));
    v.gamma = malloc((size_t)k->c * sizeof(double));
    v.beta = malloc((size_t)k->c * sizeof(double));
    ck_assert(v.x && v.w && v.gamma && v.beta);
    uint64_t s = k->seed ^ 0x5bd1e9955bd1e995u;
    for (int64_t row = 0; row < k->n * k->groups; row++) {
        double *x = v.x + row * d;
        double centre = 0, spread = ldexp(1.0, k->scale);
        if (k->dist == OFFSET) {
            centre = (float)((unit(&s) * 0.5 + 0.5) * 999 + 1) * (t_draw(&s, 0, 1) ? 1 : -1);
            spread = fabs(centre) * ldexp(1.0, -(int)t_draw(&s, 6, 22));
        }
        bool constant = t_draw(&s, 0, 7) == 0;
        double first = (float)(centre + spread * unit(&s));
        for (int64_t i = 0; i < d; i++)
            x[i] = constant ? first : (float)(centre + spread * unit(&s));
    }
    for (int64_t i = 0; i < v.count; i++) v.w[i] = unit(&s);
    bool signed_gamma = t_draw(&s, 0, 1);
    for (int64_t c = 0; c < k->c; c++) {
        v.gamma[c] = (float)(signed_gamma ? 2 * unit(&s) : 1.0 + 0.5 * unit(&s));
        v.beta[c] = unit(&s) * ldexp(1.0, (int)t_draw(&s, -4, 4));
    }
    return v;
}

static void free_values(values *v) {
    free(v->x);
    free(v->w);
    free(v->gamma);
    free(v->beta);
}

/* Element i (row-major over t's shape) of a strided tensor's storage. */
static int64_t offset_of(const nd_tensor *t, int64_t i) {
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += i % t->shape[d] * t->strides[d];
        i /= t->shape[d];
    }
    return off;
}

/* The logical shape [n, c, sp...] */
static void logical_shape(const rcase *k, int64_t *shape) {
    shape[0] = k->n;
    shape[1] = k->c;
    for (int i = 0; i < k->nsp; i++) shape[2 + i] = k->sp[i];
}

/* The storage a layout needs (NaN throughout: reading past the view shows
 * in the results), a leaf. */
static nd_tensor *storage_for(const rcase *k) {
    int64_t shape[5], st[5];
    int nd = ndim_of(k);
    logical_shape(k, shape);
    for (int i = 0; i < nd; i++) {
        int64_t size = shape[k->perm[i]];
        /* sliced: every axis one longer (starting at 1), the last twice as long */
        st[i] = k->layout != SLICED ? size : i == nd - 1 ? 2 * size + 1 : size + 1;
    }
    return nd_full(st, nd, NAN);
}

/* The logical view of storage_for's tensor (or of its gradient). */
static nd_tensor *view_of(const rcase *k, const nd_tensor *base) {
    int nd = ndim_of(k), inv[5];
    for (int i = 0; i < nd; i++) inv[k->perm[i]] = i;
    const nd_tensor *t = base;
    if (k->layout == SLICED)
        for (int i = 0; i < nd; i++)
            t = nd_slice(t, i, 1, ND_END, i == nd - 1 ? 2 : 1);
    return nd_permute(t, inv, nd);
}

/* ---- the reference ----------------------------------------------------------- */

/* Each result with the sum of the magnitudes of its terms, which bounds
 * the error of a float evaluation up to a small factor. */
typedef struct {
    double *y, *ys, *dx, *dxs, *dg, *dgs, *db, *dbs;
    bool *exact; /* y must be exactly beta (or 0): x - mean is 0 throughout the group */
} reference;

static reference compute_reference(const rcase *k, const values *v) {
    int64_t cpg = k->c / k->groups, len = k->positions, d = cpg * len;
    reference r;
    r.y = malloc((size_t)t_max(v->count, 1) * sizeof(double));
    r.ys = malloc((size_t)t_max(v->count, 1) * sizeof(double));
    r.dx = malloc((size_t)t_max(v->count, 1) * sizeof(double));
    r.dxs = malloc((size_t)t_max(v->count, 1) * sizeof(double));
    r.exact = malloc((size_t)t_max(v->count, 1) * sizeof(bool));
    r.dg = calloc((size_t)k->c, sizeof(double));
    r.dgs = calloc((size_t)k->c, sizeof(double));
    r.db = calloc((size_t)k->c, sizeof(double));
    r.dbs = calloc((size_t)k->c, sizeof(double));
    ck_assert(r.y && r.ys && r.dx && r.dxs && r.exact && r.dg && r.dgs && r.db && r.dbs);
    for (int64_t row = 0; row < k->n * k->groups; row++) {
        const double *x = v->x + row * d, *w = v->w + row * d;
        int64_t c0 = row % k->groups * cpg, base = row * d;
        /* mu = mean(x), rstd = 1 / sqrt(mean((x - mu)^2) + eps) */
        double mu = 0, var = 0;
        bool constant = true;
        for (int64_t i = 0; i < d; i++) {
            mu += x[i];
            constant = constant && x[i] == x[0];
        }
        mu /= (double)d;
        for (int64_t i = 0; i < d; i++) var += (x[i] - mu) * (x[i] - mu);
        double rstd = 1.0 / sqrt(var / (double)d + (double)k->eps);
        /* y = gamma xhat + beta; g = w gamma, and the means of g and g xhat */
        double sg = 0, sgx = 0;
        for (int64_t i = 0; i < d; i++) {
            int64_t c = c0 + i / len;
            double gamma = k->affine ? v->gamma[c] : 1.0, beta = k->affine ? v->beta[c] : 0.0;
            double xhat = (x[i] - mu) * rstd, g = w[i] * gamma;
            r.y[base + i] = gamma * xhat + beta;
            r.ys[base + i] = fabs(gamma * xhat) + fabs(beta);
            r.exact[base + i] = constant;
            sg += g;
            sgx += g * xhat;
            r.dg[c] += w[i] * xhat;
            r.dgs[c] += fabs(w[i] * xhat);
            r.db[c] += w[i];
            r.dbs[c] += fabs(w[i]);
        }
        /* dx = rstd (g - mean(g) - xhat mean(g xhat)) */
        double mg = sg / (double)d, mgx = sgx / (double)d;
        for (int64_t i = 0; i < d; i++) {
            double gamma = k->affine ? v->gamma[c0 + i / len] : 1.0;
            double xhat = (x[i] - mu) * rstd, g = w[i] * gamma;
            r.dx[base + i] = rstd * (g - mg - xhat * mgx);
            r.dxs[base + i] = rstd * (fabs(g) + fabs(mg) + fabs(xhat * mgx));
        }
    }
    return r;
}

static void free_reference(reference *r) {
    free(r->y);
    free(r->ys);
    free(r->dx);
    free(r->dxs);
    free(r->exact);
    free(r->dg);
    free(r->dgs);
    free(r->db);
    free(r->dbs);
}

/* ---- checking ------------------------------------------------------------------ */

enum { Q_Y, Q_DX, Q_DG, Q_DB, QUANTITIES };
static const char *const quantity_names[QUANTITIES] = {"y", "dx", "dgamma", "dbeta"};

/* Tolerances, relative to the sum of |terms| (in units of 2^-24, a half
 * float ulp of 1): y rounds x - hi, its folded constants, a product and
 * a sum in float (8; at most 3.7 seen in 40000 cases); dx rounds
 * x - hi, three products and two sums in float and takes the float rstd
 * saved for it (16; at most 5.1 seen); dgamma and dbeta are sums in
 * double rounded once, times the float rstd (8; at most 2.0 seen).
 * y must be exactly beta (or 0) where x - mean is exactly 0 throughout
 * the group. */
static const double rel_tol[QUANTITIES] = {0x1p-21, 0x1p-20, 0x1p-21, 0x1p-21};
#define ABS_TOL 1e-30

/* The largest |error| / (sum of |terms|) seen, for ND_TEST_VERBOSE */
static double worst[QUANTITIES];


/* got (a strided view of the logical shape) against want, scale */
static void expect_close(int q, const nd_tensor *got, const double *want, const double *scale,
                         const bool *exact, const double *exact_value, int64_t len, int64_t c) {
    const char *what = quantity_names[q];
    const float *g = nd_data(got);
    int64_t bad = 0, first = 0, n = nd_numel(got);
    for (int64_t i = 0; i < n; i++) {
        double v = g[offset_of(got, i)];
        if (scale[i] > 0) worst[q] = fmax(worst[q], fabs(v - want[i]) / scale[i]);
        bool ok = exact && exact[i] ? v == (float)exact_value[i / len % c]
                                    : fabs(v - want[i]) <= rel_tol[q] * scale[i] + ABS_TOL;
        if (!ok && bad++ == 0) first = i;
    }
    if (bad) {
        int64_t idx[ND_MAX_DIMS];
        t_unravel(first, got->shape, got->ndim, idx);
        char at[96] = "";
        for (int d = 0, used = 0; d < got->ndim; d++)
            used += snprintf(at + used, sizeof at - (size_t)used, "%s%lld", d ? "," : "",
                             (long long)idx[d]);
        double v = g[offset_of(got, first)];
        if (exact && exact[first])
            ck_abort_msg("%s: %s[%s] is %.9g, expected exactly %.9g (x - mean is 0 in its "
                         "group; %lld of %lld wrong)",
                         t_running, what, at, v, (double)(float)exact_value[first / len % c],
                         (long long)bad, (long long)n);
        ck_abort_msg("%s: %s[%s] is %.9g, expected %.9g (sum of |terms| %.6g; %lld of %lld "
                     "wrong)",
                     t_running, what, at, v, want[first], scale[first], (long long)bad,
                     (long long)n);
    }
}

typedef struct {
    float *y, *dx, *dg, *db;
} bits;

static float *copy_floats(const nd_tensor *t) {
    int64_t n = nd_numel(t);
    float *p = malloc((size_t)t_max(n, 1) * sizeof(float));
    ck_assert_ptr_nonnull(p);
    for (int64_t i = 0; i < n; i++) p[i] = nd_data(t)[offset_of(t, i)];
    return p;
}

static void expect_same_bits(const char *what, const float *first, const nd_tensor *t,
                             const char *first_run) {
    for (int64_t i = 0, n = nd_numel(t); i < n; i++) {
        float v = nd_data(t)[offset_of(t, i)];
        if (memcmp(&v, &first[i], sizeof v))
            ck_abort_msg("%s: %s[%lld] is %.9g, but %.9g with %s", t_running, what, (long long)i,
                         (double)v, (double)first[i], first_run);
    }
}

static void check_case(uint64_t seed, const nd_kernels *const *sets, int nsets) {
    rcase k = draw_case(seed);
    values v = make_values(&k);
    reference ref = compute_reference(&k, &v);
    nd_scope *scope = nd_scope_begin();
    int nd = ndim_of(&k);
    int64_t shape[5];
    logical_shape(&k, shape);
    /* x: a leaf in the drawn layout; w dense */
    nd_tensor *xbase = nd_requires_grad(storage_for(&k), true);
    nd_tensor *x = view_of(&k, xbase);
    {
        float *p = nd_data(x);
        for (int64_t i = 0; i < v.count; i++) p[offset_of(x, i)] = (float)v.x[i];
    }
    nd_tensor *w = nd_empty(shape, nd);
    for (int64_t i = 0; i < v.count; i++) nd_data(w)[i] = (float)v.w[i];
    nd_tensor *gamma = NULL, *beta = NULL;
    if (k.affine) {
        gamma = nd_requires_grad(nd_empty(ND_SHAPE(k.c)), true);
        beta = nd_requires_grad(nd_empty(ND_SHAPE(k.c)), true);
        for (int64_t c = 0; c < k.c; c++) {
            nd_data(gamma)[c] = (float)v.gamma[c];
            nd_data(beta)[c] = (float)v.beta[c];
        }
    }
    double *zero = calloc((size_t)k.c, sizeof(double));
    ck_assert_ptr_nonnull(zero);
    bits first = {0};
    char first_run[64] = "";
    int other = k.threads % 3 + 1; /* another thread count, for the bits */
    char desc[600];
    describe(&k, desc, sizeof desc);
    if (getenv("ND_TEST_VERBOSE") && atoi(getenv("ND_TEST_VERBOSE")) > 1) printf("%s\n", desc);
    for (int i = 0; i < nsets; i++) {
        nd_error err;
        ck_assert_int_eq(nd_set_kernels(sets[i]->name, &err), ND_OK);
        for (int pass = 0; pass < 2; pass++) {
            int threads = pass ? other : k.threads;
            nd_set_num_threads(threads);
            snprintf(t_running, sizeof t_running, "%s, kernels %s (%d thread%s)", desc,
                     sets[i]->name, threads, threads == 1 ? "" : "s");
            nd_scope *s = nd_scope_begin();
            nd_zero_grad(xbase);
            if (k.affine) {
                nd_zero_grad(gamma);
                nd_zero_grad(beta);
            }
            nd_tensor *y = nd_group_norm(x, k.groups, gamma, beta, k.eps);
            nd_backward(nd_sum(nd_mul(y, w), NULL, 0, false));
            nd_tensor *dx = view_of(&k, xbase->grad);
            int64_t len = k.positions;
            if (!first.y) { /* the first run against the reference, the others bit for bit */
                expect_close(Q_Y, y, ref.y, ref.ys, ref.exact, k.affine ? v.beta : zero, len,
                             k.c);
                expect_close(Q_DX, dx, ref.dx, ref.dxs, NULL, NULL, 1, 1);
                first.y = copy_floats(y);
                first.dx = copy_floats(dx);
                if (k.affine) {
                    expect_close(Q_DG, gamma->grad, ref.dg, ref.dgs, NULL, NULL, 1, 1);
                    expect_close(Q_DB, beta->grad, ref.db, ref.dbs, NULL, NULL, 1, 1);
                    first.dg = copy_floats(gamma->grad);
                    first.db = copy_floats(beta->grad);
                }
                snprintf(first_run, sizeof first_run, "kernels %s, %d thread%s", sets[i]->name,
                         threads, threads == 1 ? "" : "s");
            } else {
                expect_same_bits("y", first.y, y, first_run);
                expect_same_bits("dx", first.dx, dx, first_run);
                if (k.affine) {
                    expect_same_bits("dgamma", first.dg, gamma->grad, first_run);
                    expect_same_bits("dbeta", first.db, beta->grad, first_run);
                }
            }
            nd_scope_end(s);
        }
    }
    nd_scope_end(scope);
    free(first.y);
    free(first.dx);
    free(first.dg);
    free(first.db);
    free(zero);
    free_reference(&ref);
    free_values(&v);
}

/* ---- the test ------------------------------------------------------------------ */

static void finish(int test) {
    if (getenv("ND_TEST_VERBOSE"))
        for (int q = 0; q < QUANTITIES; q++)
            printf("group_norm_random %d: %s off by at most %.3g of the sum of |terms|\n", test,
                   quantity_names[q], worst[q]);
}

static const t_random run = {"group_norm_random", "ND_GN_SOAK", DEFAULT_CASES, CASES_PER_TEST,
                              BASE_SEED, check_case, finish};

START_TEST(random_shapes_match_double_reference) { t_random_cases(&run, _i); }
END_TEST

/* ---- the shapes that failed, kept ------------------------------------------------ */

/* Groups of one element: x - mean is exactly 0, so y is exactly beta
 * (PyTorch's float32 GroupNorm gives exactly 0 before beta). Folding the
 * mean into a float shift, x s + (beta - mean s), left |x| rstd 2^-24 of
 * noise instead: 0.00195 for x = 77.7 and eps 1e-5. */
START_TEST(one_element_groups_give_exactly_beta) {
    nd_tensor *x = nd_full(ND_SHAPE(3, 4, 1, 1), 77.7f);
    nd_data(x)[5] = -1234.5678f;
    nd_data(x)[11] = 3.0e-3f;
    nd_tensor *gamma = nd_from_buffer((const float[]){1.0f, 0.75f, -2.0f, 1.5f}, ND_SHAPE(4));
    nd_tensor *beta = nd_from_buffer((const float[]){0.0f, 0.5f, -0.25f, 3.0f}, ND_SHAPE(4));
    nd_tensor *y = nd_group_norm(x, 4, gamma, beta, 1e-5f);
    nd_tensor *plain = nd_group_norm(x, 4, NULL, NULL, 1e-5f);
    for (int64_t i = 0; i < 12; i++) {
        ck_assert_msg(nd_data(y)[i] == nd_data(beta)[i % 4], "y[%lld] = %.9g, not beta %.9g",
                      (long long)i, (double)nd_data(y)[i], (double)nd_data(beta)[i % 4]);
        ck_assert_msg(nd_data(plain)[i] == 0.0f, "y[%lld] = %.9g without affine, not 0",
                      (long long)i, (double)nd_data(plain)[i]);
    }
}
END_TEST

/* Groups of two elements close together far from zero, eps 1e-5: the
 * neighbouring floats 12.5 and 12.5 + 2^-20, whose mean is not a float
 * (rstd 316, xhat = +-1.5e-4), and -700 and -700 + 2^-10 (rstd 312.5,
 * xhat = +-0.153). Folding the mean into a float shift put y off by
 * 3e-4 and 0.006, where float32 arithmetic done well is off by about
 * 1e-7; and the mean saved as one float moved xhat by 2^-21 rstd =
 * 1.5e-4 in the backward pass, a third of dgamma (7.5e-5 of 2.3e-4). */
START_TEST(two_element_groups_with_small_variance) {
    const float xs[] = {12.5f, 12.5f + 0x1p-20f, -700.0f, -700.0f + 0x1p-10f};
    nd_tensor *x = nd_requires_grad(nd_from_buffer(xs, ND_SHAPE(1, 2, 2)), true);
    nd_tensor *gamma =
        nd_requires_grad(nd_from_buffer((const float[]){1.25f, -0.5f}, ND_SHAPE(2)), true);
    nd_tensor *beta =
        nd_requires_grad(nd_from_buffer((const float[]){0.125f, 2.0f}, ND_SHAPE(2)), true);
    nd_tensor *w = nd_from_buffer((const float[]){0.5f, -1.0f, 0.25f, 0.75f}, ND_SHAPE(1, 2, 2));
    nd_tensor *y = nd_group_norm(x, 2, gamma, beta, 1e-5f);
    nd_backward(nd_sum(nd_mul(y, w), NULL, 0, false));
    for (int g = 0; g < 2; g++) {
        double x0 = xs[2 * g], x1 = xs[2 * g + 1], mu = (x0 + x1) / 2;
        double rstd = 1.0 / sqrt(((x0 - mu) * (x0 - mu) + (x1 - mu) * (x1 - mu)) / 2 + 1e-5f);
        double gm = nd_data(gamma)[g], bt = nd_data(beta)[g];
        double w0 = nd_data(w)[2 * g], w1 = nd_data(w)[2 * g + 1];
        double h0 = (x0 - mu) * rstd, h1 = (x1 - mu) * rstd;
        double mg = gm * (w0 + w1) / 2, mgx = gm * (w0 * h0 + w1 * h1) / 2;
        for (int i = 0; i < 2; i++) {
            double h = i ? h1 : h0, wi = i ? w1 : w0;
            ck_assert_near(nd_data(y)[2 * g + i], gm * h + bt, 1e-6);
            ck_assert_near(nd_data(x->grad)[2 * g + i], rstd * (gm * wi - mg - h * mgx), 1e-6);
        }
        double dgamma = w0 * h0 + w1 * h1;
        ck_assert_msg(fabs(nd_data(gamma->grad)[g] - dgamma) <= 1e-6 * fabs(dgamma),
                      "group %d: dgamma %.9g, expected %.9g", g, (double)nd_data(gamma->grad)[g],
                      dgamma);
        ck_assert_near(nd_data(beta->grad)[g], w0 + w1, 1e-6);
    }
}
END_TEST

TCase *tcase_group_norm_random(void) {
    TCase *tc = t_random_tcase(&run, random_shapes_match_double_reference);
    tcase_add_test(tc, one_element_groups_give_exactly_beta);
    tcase_add_test(tc, two_element_groups_with_small_variance);
    return tc;
}
