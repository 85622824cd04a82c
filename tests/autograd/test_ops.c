/* Gradients of every differentiable op.
 *
 * Most checks run nd_gradcheck (backward against central differences) on
 * small inputs laid out in several ways: contiguous, permuted, sliced with
 * a step, expanded (stride 0) and 0-d, with broadcasting between inputs of
 * different shapes. Input values keep away from kinks and singularities by
 * more than the finite-difference step. A few gradients are also computed
 * by hand (ties, broadcasting, exact products), and the non-differentiable
 * ops are checked to record nothing. */
#include <stdio.h>
#include <string.h>

#include "helpers.h"
#include "autograd/autograd.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- shapes, layouts and input values ----------------------------------- */

typedef struct {
    int ndim;
    int64_t d[ND_MAX_DIMS];
} shp;

/* How an input is laid out over its storage. Every layout but L_CONTIG is
 * a view of a base tensor that does not require grad, so the input is
 * still a leaf. */
enum {
    L_CONTIG,       /* its own contiguous storage */
    L_PERM,         /* a base of the reversed shape, axes reversed */
    L_STRIDED,      /* last axis: base[-2n::2] of a base of 2n+1 */
    L_EXPANDED,     /* the first axis longer than 1 expanded from size 1 */
    L_PERM_STRIDED, /* reversed axes, then [-2n::2] along the first one */
    L_COUNT
};
static const char *const layout_names[L_COUNT] = {
    "contiguous", "permuted", "strided", "expanded", "permuted+strided"};

typedef struct {
    int layout;
    shp s;
} spec;

typedef struct {
    spec a, b;
} spec2;

/* The values of an input's storage. */
typedef struct {
    float lo, hi;     /* uniform in [lo, hi) ... */
    float kinks[2];   /* ... kept at least `margin` away from these ... */
    int nkinks;
    float margin;
    float grid;       /* ... or, grid > 0: grid_offset + grid k, jittered by
                       * at most 0.15 grid ... */
    float grid_offset;
    float spacing;    /* ... or, spacing > 0: distinct multiples of
                       * spacing, shuffled (no ties anywhere) */
} dist;

static const dist D_ANY = {.lo = -2.0f, .hi = 2.0f};

static nd_tensor *gen(uint64_t seed, const int64_t *shape, int ndim,
                      const dist *d) {
    nd_tensor *t = t_uniform(seed, shape, ndim, d->lo, d->hi);
    float *p = nd_data(t);
    int64_t n = nd_numel(t);
    if (d->spacing > 0) {
        for (int64_t i = 0; i < n; i++)
            p[i] = (float)((double)i - (double)(n - 1) / 2.0) * d->spacing;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)(nd_rand_at(seed, 13, (uint64_t)i) * (float)(i + 1));
            if (j > i) j = i;
            float tmp = p[i];
            p[i] = p[j];
            p[j] = tmp;
        }
    }
    if (d->grid > 0) {
        for (int64_t i = 0; i < n; i++) {
            float jitter = (2.0f * nd_rand_at(seed, 17, (uint64_t)i) - 1.0f) * 0.15f * d->grid;
            p[i] = d->grid_offset + d->grid * roundf(p[i] / d->grid) + jitter;
        }
    }
    for (int k = 0; k < d->nkinks; k++) {
        float kink = d->kinks[k];
        for (int64_t i = 0; i < n; i++)
            if (fabsf(p[i] - kink) < d->margin)
                p[i] = kink + (p[i] >= kink ? d->margin : -d->margin);
    }
    return t;
}

/* An input of shape s in the given layout; a leaf that does not require
 * grad yet. */
static nd_tensor *make_input(int layout, shp s, uint64_t seed, const dist *d) {
    int nd = s.ndim;
    int64_t bs[ND_MAX_DIMS];
    int perm[ND_MAX_DIMS];
    nd_tensor *x;
    if (layout == L_PERM_STRIDED && nd < 2) layout = L_STRIDED;
    if (layout == L_PERM && nd < 2) layout = L_CONTIG;
    if (layout == L_STRIDED && nd < 1) layout = L_CONTIG;
    switch (layout) {
    case L_PERM:
    case L_PERM_STRIDED:
        for (int i = 0; i < nd; i++) {
            bs[i] = s.d[nd - 1 - i];
            perm[i] = nd - 1 - i;
        }
        if (layout == L_PERM_STRIDED) bs[nd - 1] = 2 * s.d[0] + 1;
        x = nd_permute(gen(seed, bs, nd, d), perm, nd);
        if (layout == L_PERM_STRIDED) x = nd_slice(x, 0, -2 * s.d[0], ND_END, 2);
        break;
    case L_STRIDED:
        memcpy(bs, s.d, sizeof bs);
        bs[nd - 1] = 2 * s.d[nd - 1] + 1;
        x = nd_slice(gen(seed, bs, nd, d), -1, -2 * s.d[nd - 1], ND_END, 2);
        break;
    case L_EXPANDED: {
        memcpy(bs, s.d, sizeof bs);
        int i = 0;
        while (i < nd && s.d[i] <= 1) i++;
        if (i == nd) return gen(seed, s.d, nd, d);
        bs[i] = 1;
        x = nd_expand(gen(seed, bs, nd, d), s.d, nd);
        break;
    }
    default:
        return gen(seed, s.d, nd, d);
    }
    ck_assert_int_eq(x->ndim, nd);
    for (int i = 0; i < nd; i++) ck_assert_int_eq(x->shape[i], s.d[i]);
    ck_assert(!x->requires_grad && x->record == NULL);
    return x;
}

static char *spec_str(int layout, shp s, char *buf, size_t size) {
    char sh[ND_SHAPE_STR_LEN];
    snprintf(buf, size, "%s %s", layout_names[layout], nd_shape_str(s.d, s.ndim, sh));
    return buf;
}

/* ---- running gradcheck --------------------------------------------------- */

typedef struct {
    double eps, atol, rtol;
} tol;
static const tol TOL = {1e-2, 1e-3, 5e-3};

/* Failures are collected so that one test reports every failing case
 * (as many as fit in a Check message, which is limited to 4 KiB). */
static char fail_log[2800];
static int fail_count, run_count, fail_hidden;

static void gc_reset(void) {
    fail_log[0] = 0;
    fail_count = run_count = fail_hidden = 0;
}

static void gc_check(const char *label, nd_grad_fn f, void *ctx,
                     nd_tensor *const *inputs, int n, tol t) {
    nd_gradcheck_report rep;
    bool ok = nd_gradcheck(f, ctx, inputs, n, t.eps, t.atol, t.rtol, &rep);
    run_count++;
    if (ok && rep.checked > 0) return;
    fail_count++;
    char entry[512];
    int len = snprintf(entry, sizeof entry,
                       "\n  %s: %lld of %lld elements out of tolerance; worst: input %d "
                       "element %lld, analytic %.7g, numeric %.7g",
                       label, (long long)rep.failed, (long long)rep.checked,
                       rep.worst_input, (long long)rep.worst_index, rep.analytic,
                       rep.numeric);
    size_t used = strlen(fail_log);
    if (len > 0 && used + (size_t)len < sizeof fail_log)
        memcpy(fail_log + used, entry, (size_t)len + 1);
    else
        fail_hidden++;
}

static void gc_finish(void) {
    ck_assert_msg(fail_count == 0, "%d of %d gradchecks failed:%s%s", fail_count,
                  run_count, fail_log, fail_hidden ? "\n  (and more)" : "");
}

/* The gradient of x, expected to equal want elementwise within tol. */
static void expect_grad(const nd_tensor *x, const float *want, double tol_,
                        const char *what) {
    ck_assert_msg(x->grad != NULL, "%s: no gradient", what);
    ck_assert_msg(nd_same_shape(x->grad, x), "%s: gradient has the wrong shape", what);
    ck_assert(nd_is_contiguous(x->grad));
    const float *g = nd_data(x->grad);
    for (int64_t i = 0, n = nd_numel(x); i < n; i++)
        ck_assert_msg(fabs((double)g[i] - (double)want[i]) <= tol_,
                      "%s: grad[%lld] = %.9g, expected %.9g", what, (long long)i,
                      (double)g[i], (double)want[i]);
}

static nd_tensor *leaf(const float *values, const int64_t *shape, int ndim) {
    return nd_requires_grad(nd_from_buffer(values, shape, ndim), true);
}

/* ==== elementwise ========================================================= */

typedef nd_tensor *(*unary_fn)(const nd_tensor *);
typedef nd_tensor *(*binary_fn)(const nd_tensor *, const nd_tensor *);

static nd_tensor *add_s(const nd_tensor *x) { return nd_add_scalar(x, 1.5f); }
static nd_tensor *sub_s(const nd_tensor *x) { return nd_sub_scalar(x, 0.75f); }
static nd_tensor *rsub_s(const nd_tensor *x) { return nd_rsub_scalar(x, 2.5f); }
static nd_tensor *mul_s(const nd_tensor *x) { return nd_mul_scalar(x, -1.75f); }
static nd_tensor *div_s(const nd_tensor *x) { return nd_div_scalar(x, 0.6f); }
static nd_tensor *div_s_neg(const nd_tensor *x) { return nd_div_scalar(x, -4.0f); }
static nd_tensor *pow_2(const nd_tensor *x) { return nd_pow_scalar(x, 2.0f); }
static nd_tensor *pow_3(const nd_tensor *x) { return nd_pow_scalar(x, 3.0f); }
static nd_tensor *pow_1(const nd_tensor *x) { return nd_pow_scalar(x, 1.0f); }
static nd_tensor *pow_half(const nd_tensor *x) { return nd_pow_scalar(x, 0.5f); }
static nd_tensor *pow_m15(const nd_tensor *x) { return nd_pow_scalar(x, -1.5f); }
static nd_tensor *pow_m1(const nd_tensor *x) { return nd_pow_scalar(x, -1.0f); }
static nd_tensor *pow_25(const nd_tensor *x) { return nd_pow_scalar(x, 2.5f); }
static nd_tensor *clamp_mid(const nd_tensor *x) { return nd_clamp(x, -0.5f, 0.7f); }
static nd_tensor *clamp_low(const nd_tensor *x) { return nd_clamp(x, 0.0f, 100.0f); }

typedef struct {
    const char *name;
    unary_fn fn;
    dist d;
    double eps; /* 0: the default */
} unary_case;

#define RANGE(a, b) {.lo = (a), .hi = (b)}
#define KINK(a, b, k) {.lo = (a), .hi = (b), .kinks = {k}, .nkinks = 1, .margin = 0.05f}

static const unary_case unary_cases[] = {
    {"neg", nd_neg, RANGE(-2, 2), 0},
    {"exp", nd_exp, RANGE(-2, 2), 0},
    {"log", nd_log, RANGE(0.3f, 3), 0},
    {"sqrt", nd_sqrt, RANGE(0.3f, 3), 0},
    {"rsqrt", nd_rsqrt, RANGE(0.3f, 3), 3e-3},
    {"square", nd_square, RANGE(-2, 2), 0},
    {"abs", nd_abs, KINK(-2, 2, 0.0f), 0},
    {"sin", nd_sin, RANGE(-3, 3), 0},
    {"cos", nd_cos, RANGE(-3, 3), 0},
    {"erf", nd_erf, RANGE(-2, 2), 0},
    {"tanh", nd_tanh, RANGE(-2, 2), 0},
    {"sigmoid", nd_sigmoid, RANGE(-4, 4), 0},
    {"silu", nd_silu, RANGE(-4, 4), 0},
    {"gelu", nd_gelu, RANGE(-3, 3), 0},
    {"relu", nd_relu, KINK(-2, 2, 0.0f), 0},
    {"add_scalar 1.5", add_s, RANGE(-2, 2), 0},
    {"sub_scalar 0.75", sub_s, RANGE(-2, 2), 0},
    {"rsub_scalar 2.5", rsub_s, RANGE(-2, 2), 0},
    {"mul_scalar -1.75", mul_s, RANGE(-2, 2), 0},
    {"div_scalar 0.6", div_s, RANGE(-2, 2), 0},
    {"div_scalar -4", div_s_neg, RANGE(-2, 2), 0},
    {"pow_scalar 2", pow_2, RANGE(-2, 2), 0},
    {"pow_scalar 3", pow_3, RANGE(-2, 2), 0},
    {"pow_scalar 1", pow_1, RANGE(-2, 2), 0},
    {"pow_scalar 0.5", pow_half, RANGE(0.3f, 3), 0},
    {"pow_scalar -1.5", pow_m15, RANGE(0.5f, 2.5f), 3e-3},
    {"pow_scalar -1", pow_m1, RANGE(0.5f, 2.5f), 3e-3},
    {"pow_scalar 2.5", pow_25, RANGE(0.2f, 2), 0},
    {"clamp -0.5 0.7",
     clamp_mid,
     {.lo = -1.5f, .hi = 1.5f, .kinks = {-0.5f, 0.7f}, .nkinks = 2, .margin = 0.05f},
     0},
    {"clamp 0 100", clamp_low, KINK(-1, 1, 0.0f), 0},
};

static const spec unary_specs[] = {
    {L_CONTIG, {2, {3, 5}}},       {L_CONTIG, {0, {0}}},
    {L_CONTIG, {3, {1, 3, 1}}},    {L_PERM, {3, {2, 3, 4}}},
    {L_STRIDED, {2, {3, 5}}},      {L_EXPANDED, {2, {4, 3}}},
    {L_PERM_STRIDED, {2, {3, 4}}}, {L_STRIDED, {1, {7}}},
};

static nd_tensor *f_unary(nd_tensor *const *in, void *ctx) {
    const unary_case *c = ctx;
    return c->fn(in[0]);
}

START_TEST(test_grad_unary) {
    unary_case c = unary_cases[_i];
    tol t = TOL;
    if (c.eps > 0) t.eps = c.eps;
    gc_reset();
    for (int k = 0; k < COUNT(unary_specs); k++) {
        spec sp = unary_specs[k];
        nd_tensor *x = make_input(sp.layout, sp.s, 100 + (uint64_t)k, &c.d);
        char label[512], s[128];
        snprintf(label, sizeof label, "%s on %s", c.name,
                 spec_str(sp.layout, sp.s, s, sizeof s));
        gc_check(label, f_unary, &c, &x, 1, t);
    }
    gc_finish();
}
END_TEST

typedef struct {
    const char *name;
    binary_fn fn;
    dist da, db;
} binary_case;

/* maximum/minimum: a near 0.2 Z and b near 0.1 + 0.2 Z, so |a - b| >= 0.04
 * wherever they meet. div: |b| >= 0.5. */
#define GRID(off) {.lo = -2.0f, .hi = 2.0f, .grid = 0.2f, .grid_offset = (off)}
static const binary_case binary_cases[] = {
    {"add", nd_add, RANGE(-2, 2), RANGE(-2, 2)},
    {"sub", nd_sub, RANGE(-2, 2), RANGE(-2, 2)},
    {"mul", nd_mul, RANGE(-2, 2), RANGE(-2, 2)},
    {"div", nd_div, RANGE(-2, 2), {.lo = -2, .hi = 2, .kinks = {0}, .nkinks = 1, .margin = 0.5f}},
    {"maximum", nd_maximum, GRID(0.0f), GRID(0.1f)},
    {"minimum", nd_minimum, GRID(0.0f), GRID(0.1f)},
};

static const spec2 binary_specs[] = {
    {{L_CONTIG, {2, {3, 5}}}, {L_CONTIG, {2, {3, 5}}}},
    {{L_CONTIG, {2, {3, 1}}}, {L_CONTIG, {1, {4}}}},
    {{L_CONTIG, {1, {4}}}, {L_CONTIG, {2, {3, 1}}}},
    {{L_CONTIG, {2, {1, 4}}}, {L_CONTIG, {2, {3, 1}}}},
    {{L_CONTIG, {0, {0}}}, {L_CONTIG, {3, {2, 3, 4}}}},
    {{L_CONTIG, {3, {2, 3, 4}}}, {L_CONTIG, {0, {0}}}},
    {{L_CONTIG, {0, {0}}}, {L_CONTIG, {0, {0}}}},
    {{L_CONTIG, {3, {2, 1, 5}}}, {L_CONTIG, {2, {3, 1}}}},
    {{L_CONTIG, {3, {1, 3, 1}}}, {L_CONTIG, {2, {3, 5}}}},
    {{L_PERM, {2, {3, 4}}}, {L_STRIDED, {2, {3, 4}}}},
    {{L_EXPANDED, {2, {3, 4}}}, {L_PERM_STRIDED, {2, {3, 4}}}},
    {{L_STRIDED, {2, {3, 5}}}, {L_EXPANDED, {1, {5}}}},
    {{L_PERM, {3, {2, 3, 4}}}, {L_STRIDED, {2, {3, 1}}}},
    {{L_EXPANDED, {3, {2, 3, 4}}}, {L_PERM, {2, {1, 4}}}},
    {{L_PERM_STRIDED, {2, {5, 3}}}, {L_CONTIG, {0, {0}}}},
};

/* Two broadcast-compatible shapes with odd sizes, in random layouts: a
 * full shape of 1 to 3 axes of sizes 1, 3, 5 or 7 (at most 60 elements),
 * from which each operand drops some leading axes and sets some others
 * to 1. */
static spec2 random_pair(uint64_t seed) {
    uint64_t k = 0;
#define RINT(n) ((int)(nd_rand_at(seed, 23, k++) * (float)(n)) % (n))
    static const int64_t sizes[] = {1, 3, 5, 7};
    shp full;
    int64_t numel;
    do {
        full.ndim = 1 + RINT(3);
        numel = 1;
        for (int i = 0; i < full.ndim; i++) {
            full.d[i] = sizes[RINT(4)];
            numel *= full.d[i];
        }
    } while (numel > 60 || numel < 3);
    spec2 r;
    spec *ops[2] = {&r.a, &r.b};
    for (int o = 0; o < 2; o++) {
        int drop = RINT(full.ndim);
        spec *sp = ops[o];
        sp->layout = RINT(L_COUNT);
        sp->s.ndim = full.ndim - drop;
        for (int i = 0; i < sp->s.ndim; i++) {
            sp->s.d[i] = full.d[i + drop];
            if (RINT(3) == 0) sp->s.d[i] = 1;
        }
    }
#undef RINT
    return r;
}

static nd_tensor *f_binary(nd_tensor *const *in, void *ctx) {
    const binary_case *c = ctx;
    return c->fn(in[0], in[1]);
}

static void check_binary_pair(binary_case *c, spec2 sp, uint64_t seed) {
    nd_tensor *in[2] = {make_input(sp.a.layout, sp.a.s, seed, &c->da),
                        make_input(sp.b.layout, sp.b.s, seed + 1000, &c->db)};
    char label[512], s1[128], s2[128];
    snprintf(label, sizeof label, "%s(%s, %s)", c->name,
             spec_str(sp.a.layout, sp.a.s, s1, sizeof s1),
             spec_str(sp.b.layout, sp.b.s, s2, sizeof s2));
    gc_check(label, f_binary, c, in, 2, TOL);
}

START_TEST(test_grad_binary) {
    binary_case c = binary_cases[_i];
    gc_reset();
    for (int k = 0; k < COUNT(binary_specs); k++)
        check_binary_pair(&c, binary_specs[k], 200 + 2 * (uint64_t)k);
    for (int k = 0; k < 8; k++)
        check_binary_pair(&c, random_pair(300 + (uint64_t)k), 400 + 2 * (uint64_t)k);
    gc_finish();
}
END_TEST

/* op(x, x) and op(x, x^T): one input reaching both operands. For maximum
 * and minimum, op(x, x) ties everywhere: each side gets half. */
static nd_tensor *f_self(nd_tensor *const *in, void *ctx) {
    const binary_case *c = ctx;
    return c->fn(in[0], in[0]);
}

static nd_tensor *f_self_transposed(nd_tensor *const *in, void *ctx) {
    const binary_case *c = ctx;
    return c->fn(in[0], nd_transpose(in[0], 0, 1));
}

START_TEST(test_grad_binary_same_input) {
    binary_case c = binary_cases[_i];
    gc_reset();
    static const spec specs[] = {{L_CONTIG, {2, {3, 5}}},
                                 {L_PERM, {2, {3, 3}}},
                                 {L_EXPANDED, {2, {3, 4}}},
                                 {L_CONTIG, {0, {0}}}};
    for (int k = 0; k < COUNT(specs); k++) {
        nd_tensor *x = make_input(specs[k].layout, specs[k].s, 500 + (uint64_t)k, &c.db);
        char label[512], s[128];
        snprintf(label, sizeof label, "%s(x, x), x %s", c.name,
                 spec_str(specs[k].layout, specs[k].s, s, sizeof s));
        gc_check(label, f_self, &c, &x, 1, TOL);
    }
    /* x^T meets x: for maximum/minimum the diagonal ties, and the
     * off-diagonal pairs must differ by more than eps. */
    shp sq = {2, {3, 3}};
    dist d = c.db;
    if (c.da.grid > 0) d = (dist){.lo = -2, .hi = 2, .spacing = 0.1f};
    nd_tensor *x = make_input(L_CONTIG, sq, 510, &d);
    char label[512];
    snprintf(label, sizeof label, "%s(x, x^T), x [3,3]", c.name);
    gc_check(label, f_self_transposed, &c, &x, 1, TOL);
    gc_finish();
}
END_TEST

/* where: gradients reach a and b, never cond. */
static nd_tensor *f_where(nd_tensor *const *in, void *ctx) {
    const nd_tensor *cond = ctx;
    return nd_where(cond, in[0], in[1]);
}

/* cond computed from the inputs by a comparison (no gradient through it) */
static nd_tensor *f_where_cmp(nd_tensor *const *in, void *ctx) {
    (void)ctx;
    return nd_where(nd_gt(in[0], in[1]), nd_mul(in[0], in[1]), nd_sub(in[1], in[0]));
}

START_TEST(test_grad_where) {
    gc_reset();
    struct {
        float cond[12];
        shp c;
        spec a, b;
    } cases[] = {
        {{1, 0, 1}, {2, {3, 1}}, {L_CONTIG, {1, {4}}}, {L_CONTIG, {2, {3, 4}}}},
        {{1, 0, 0, 1, 2, 0, -1, 0, 1, 1, 0, 0},
         {2, {3, 4}},
         {L_CONTIG, {0, {0}}},
         {L_STRIDED, {1, {4}}}},
        {{1}, {0, {0}}, {L_PERM, {2, {2, 3}}}, {L_CONTIG, {1, {3}}}},
        {{0}, {0, {0}}, {L_CONTIG, {2, {2, 3}}}, {L_EXPANDED, {2, {2, 3}}}},
        {{0, 1, 1, 0, 1, 0}, {3, {2, 1, 3}}, {L_PERM, {2, {4, 3}}}, {L_CONTIG, {2, {4, 1}}}},
    };
    for (int k = 0; k < COUNT(cases); k++) {
        nd_tensor *cond = nd_from_buffer(cases[k].cond, cases[k].c.d, cases[k].c.ndim);
        nd_tensor *in[2] = {make_input(cases[k].a.layout, cases[k].a.s, 600 + (uint64_t)k, &D_ANY),
                            make_input(cases[k].b.layout, cases[k].b.s, 650 + (uint64_t)k, &D_ANY)};
        char label[512], s0[ND_SHAPE_STR_LEN], s1[128], s2[128];
        snprintf(label, sizeof label, "where(cond %s, %s, %s)",
                 nd_shape_str(cases[k].c.d, cases[k].c.ndim, s0),
                 spec_str(cases[k].a.layout, cases[k].a.s, s1, sizeof s1),
                 spec_str(cases[k].b.layout, cases[k].b.s, s2, sizeof s2));
        gc_check(label, f_where, cond, in, 2, TOL);
    }
    dist ga = GRID(0.0f), gb = GRID(0.1f);
    nd_tensor *in[2] = {make_input(L_CONTIG, (shp){2, {3, 1}}, 700, &ga),
                        make_input(L_PERM, (shp){3, {2, 3, 4}}, 701, &gb)};
    gc_check("where(a > b, a b, b - a), a contiguous [3,1], b permuted [2,3,4]",
             f_where_cmp, NULL, in, 2, TOL);
    gc_finish();
}
END_TEST

START_TEST(test_where_gives_cond_no_gradient) {
    nd_tensor *cond = leaf((const float[]){1, 0, 0, 2}, ND_SHAPE(4));
    nd_tensor *a = leaf((const float[]){1, 2, 3, 4}, ND_SHAPE(4));
    nd_tensor *b = leaf((const float[]){5, 6, 7, 8}, ND_SHAPE(4));
    nd_backward(nd_sum(nd_mul_scalar(nd_where(cond, a, b), 3.0f), NULL, 0, false));
    expect_grad(a, (const float[]){3, 0, 0, 3}, 0, "where: a");
    expect_grad(b, (const float[]){0, 3, 3, 0}, 0, "where: b");
    if (cond->grad) {
        const float zero[4] = {0};
        expect_grad(cond, zero, 0, "where: cond");
    }
}
END_TEST

/* y = x x + sin(x) x - x / (1 + x^2) + (x z) - e^(-z) x, x and z
 * broadcast against each other. */
static nd_tensor *f_composite(nd_tensor *const *in, void *ctx) {
    (void)ctx;
    const nd_tensor *x = in[0], *z = in[1];
    nd_tensor *t1 = nd_add(nd_mul(x, x), nd_mul(nd_sin(x), x));
    nd_tensor *t2 = nd_div(x, nd_add_scalar(nd_square(x), 1.0f));
    nd_tensor *t3 = nd_mul(x, z);
    nd_tensor *t4 = nd_mul(nd_exp(nd_neg(z)), x);
    return nd_sub(nd_add(nd_sub(t1, t2), t3), t4);
}

START_TEST(test_grad_composite_reuse) {
    gc_reset();
    static const spec2 specs[] = {
        {{L_CONTIG, {2, {3, 1}}}, {L_CONTIG, {1, {4}}}},
        {{L_CONTIG, {0, {0}}}, {L_CONTIG, {3, {2, 3, 4}}}},
        {{L_PERM, {3, {2, 3, 4}}}, {L_CONTIG, {0, {0}}}},
        {{L_STRIDED, {2, {3, 4}}}, {L_EXPANDED, {2, {3, 1}}}},
        {{L_PERM_STRIDED, {2, {2, 3}}}, {L_CONTIG, {1, {3}}}},
        {{L_EXPANDED, {2, {3, 4}}}, {L_PERM, {2, {3, 4}}}},
    };
    for (int k = 0; k < COUNT(specs); k++) {
        nd_tensor *in[2] = {make_input(specs[k].a.layout, specs[k].a.s, 800 + (uint64_t)k, &D_ANY),
                            make_input(specs[k].b.layout, specs[k].b.s, 850 + (uint64_t)k, &D_ANY)};
        char label[512], s1[128], s2[128];
        snprintf(label, sizeof label, "composite(x %s, z %s)",
                 spec_str(specs[k].a.layout, specs[k].a.s, s1, sizeof s1),
                 spec_str(specs[k].b.layout, specs[k].b.s, s2, sizeof s2));
        gc_check(label, f_composite, NULL, in, 2, TOL);
    }
    gc_finish();
}
END_TEST

START_TEST(test_sum_of_squares_grad_is_2x) {
    const float v[6] = {0.3f, -1.7f, 2.25f, 0.0f, -0.1f, 5.5f};
    nd_tensor *x = leaf(v, ND_SHAPE(2, 3));
    nd_backward(nd_sum(nd_mul(x, x), NULL, 0, false));
    float want[6];
    for (int i = 0; i < 6; i++) want[i] = 2.0f * v[i];
    expect_grad(x, want, 0, "sum(x x)");

    nd_tensor *z = leaf(v, ND_SHAPE(2, 3));
    nd_backward(nd_sum(nd_square(z), NULL, 0, false));
    expect_grad(z, want, 0, "sum(square(z))");
}
END_TEST

START_TEST(test_broadcast_add_grad_counts) {
    nd_tensor *a = leaf((const float[]){1, 2, 3}, ND_SHAPE(3, 1));
    nd_tensor *b = leaf((const float[]){4, 5, 6, 7}, ND_SHAPE(1, 4));
    nd_tensor *y = nd_add(a, b);
    ck_assert_int_eq(y->ndim, 2);
    ck_assert_int_eq(y->shape[0], 3);
    ck_assert_int_eq(y->shape[1], 4);
    nd_backward(nd_sum(y, NULL, 0, false));
    expect_grad(a, (const float[]){4, 4, 4}, 0, "a [3,1]");
    expect_grad(b, (const float[]){3, 3, 3, 3}, 0, "b [1,4]");

    /* a 0-d operand against a 3-d one collects every element's gradient */
    nd_tensor *s = leaf((const float[]){2.0f}, NULL, 0);
    nd_tensor *x = leaf((const float[]){1, 2, 3, 4, 5, 6}, ND_SHAPE(1, 2, 3));
    nd_backward(nd_sum(nd_mul(s, x), NULL, 0, false));
    expect_grad(s, (const float[]){21}, 0, "0-d s in s x");
    expect_grad(x, (const float[]){2, 2, 2, 2, 2, 2}, 0, "x in s x");
}
END_TEST

START_TEST(test_maximum_minimum_ties_split) {
    const float av[4] = {1, 2, 3, -1}, bv[4] = {1, 0, 5, -1};
    nd_tensor *a = leaf(av, ND_SHAPE(4)), *b = leaf(bv, ND_SHAPE(4));
    nd_backward(nd_sum(nd_maximum(a, b), NULL, 0, false));
    expect_grad(a, (const float[]){0.5f, 1, 0, 0.5f}, 0, "maximum: a");
    expect_grad(b, (const float[]){0.5f, 0, 1, 0.5f}, 0, "maximum: b");

    nd_tensor *c = leaf(av, ND_SHAPE(4)), *d = leaf(bv, ND_SHAPE(4));
    nd_backward(nd_sum(nd_minimum(c, d), NULL, 0, false));
    expect_grad(c, (const float[]){0.5f, 0, 1, 0.5f}, 0, "minimum: a");
    expect_grad(d, (const float[]){0.5f, 1, 0, 0.5f}, 0, "minimum: b");

    /* maximum(x, x) is x: the halves add up to 1 */
    nd_tensor *x = leaf(av, ND_SHAPE(4));
    nd_backward(nd_sum(nd_maximum(x, x), NULL, 0, false));
    expect_grad(x, (const float[]){1, 1, 1, 1}, 0, "maximum(x, x)");
}
END_TEST

START_TEST(test_kink_conventions) {
    /* relu and abs pass no gradient at 0; clamp passes it at its bounds */
    const float v[5] = {-1, 0, 0.5f, 2, 3};
    nd_tensor *x = leaf(v, ND_SHAPE(5));
    nd_backward(nd_sum(nd_relu(x), NULL, 0, false));
    expect_grad(x, (const float[]){0, 0, 1, 1, 1}, 0, "relu");
    nd_tensor *y = leaf(v, ND_SHAPE(5));
    nd_backward(nd_sum(nd_abs(y), NULL, 0, false));
    expect_grad(y, (const float[]){-1, 0, 1, 1, 1}, 0, "abs");
    nd_tensor *z = leaf(v, ND_SHAPE(5));
    nd_backward(nd_sum(nd_clamp(z, 0.0f, 2.0f), NULL, 0, false));
    expect_grad(z, (const float[]){0, 1, 1, 1, 0}, 0, "clamp(0, 2)");
    /* x * (x > 0): the mask is a constant */
    nd_tensor *w = leaf(v, ND_SHAPE(5));
    nd_backward(nd_sum(nd_mul(w, nd_gt(w, nd_scalar(0.0f))), NULL, 0, false));
    expect_grad(w, (const float[]){0, 0, 1, 1, 1}, 0, "x (x > 0)");
    /* x^0 is 1 everywhere: no gradient, at x = 0 too (not 0 * 0^-1) */
    nd_tensor *p = leaf(v, ND_SHAPE(5));
    nd_backward(nd_sum(nd_pow_scalar(p, 0.0f), NULL, 0, false));
    expect_grad(p, (const float[]){0, 0, 0, 0, 0}, 0, "pow(x, 0)");
}
END_TEST

START_TEST(test_comparisons_record_nothing) {
    nd_tensor *a = nd_requires_grad(t_uniform(31, ND_SHAPE(3, 4), -1, 1), true);
    nd_tensor *b = nd_requires_grad(t_uniform(32, ND_SHAPE(4), -1, 1), true);
    nd_tensor *c = t_uniform(33, ND_SHAPE(3, 1), -1, 1);
    nd_tensor *s = nd_requires_grad(nd_scalar(0.25f), true);
    static const struct {
        const char *name;
        binary_fn fn;
    } cmps[] = {{"eq", nd_eq}, {"ne", nd_ne}, {"lt", nd_lt},
                {"le", nd_le}, {"gt", nd_gt}, {"ge", nd_ge}};
    const nd_tensor *pairs[][2] = {{a, b}, {a, c}, {c, a}, {a, a}, {s, a}, {a, s}};
    size_t before = nd_tape_length();
    for (int k = 0; k < COUNT(cmps); k++)
        for (int p = 0; p < COUNT(pairs); p++) {
            nd_tensor *y = cmps[k].fn(pairs[p][0], pairs[p][1]);
            ck_assert_msg(!y->requires_grad, "%s (pair %d): output requires grad",
                          cmps[k].name, p);
            ck_assert_msg(y->record == NULL, "%s (pair %d): output has a record",
                          cmps[k].name, p);
            ck_assert_msg(nd_tape_length() == before, "%s (pair %d): tape grew to %zu",
                          cmps[k].name, p, nd_tape_length());
        }
    /* an op that uses a comparison's result records only itself */
    nd_tensor *m = nd_mul(a, nd_ge(a, b));
    ck_assert(m->requires_grad);
    ck_assert_ptr_nonnull(m->record);
    ck_assert_uint_eq(nd_tape_length(), before + 1);
}
END_TEST

TCase *tcase_grad_elementwise(void) {
    TCase *tc = nd_test_case("grad_elementwise");
    tcase_add_loop_test(tc, test_grad_unary, 0, COUNT(unary_cases));
    tcase_add_loop_test(tc, test_grad_binary, 0, COUNT(binary_cases));
    tcase_add_loop_test(tc, test_grad_binary_same_input, 0, COUNT(binary_cases));
    tcase_add_test(tc, test_grad_where);
    tcase_add_test(tc, test_where_gives_cond_no_gradient);
    tcase_add_test(tc, test_grad_composite_reuse);
    tcase_add_test(tc, test_sum_of_squares_grad_is_2x);
    tcase_add_test(tc, test_broadcast_add_grad_counts);
    tcase_add_test(tc, test_maximum_minimum_ties_split);
    tcase_add_test(tc, test_kink_conventions);
    tcase_add_test(tc, test_comparisons_record_nothing);
    return tc;
}

/* ==== reductions and softmax ============================================== */

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_VAR0, R_VAR1, R_COUNT };
static const char *const reduce_names[R_COUNT] = {"sum", "mean", "max",
                                                  "min", "var(c=0)", "var(c=1)"};

typedef struct {
    int op;
    const int *axes; /* NULL: all */
    int naxes;
    bool keepdim;
} reduce_ctx;

static nd_tensor *f_reduce(nd_tensor *const *in, void *ctx) {
    const reduce_ctx *r = ctx;
    switch (r->op) {
    case R_SUM: return nd_sum(in[0], r->axes, r->naxes, r->keepdim);
    case R_MEAN: return nd_mean(in[0], r->axes, r->naxes, r->keepdim);
    case R_MAX: return nd_max(in[0], r->axes, r->naxes, r->keepdim);
    case R_MIN: return nd_min(in[0], r->axes, r->naxes, r->keepdim);
    case R_VAR0: return nd_var(in[0], r->axes, r->naxes, 0, r->keepdim);
    default: return nd_var(in[0], r->axes, r->naxes, 1, r->keepdim);
    }
}

typedef struct {
    spec in;
    bool all;  /* axes NULL */
    int naxes; /* otherwise the list (possibly empty) */
    int axes[3];
} reduce_case;

static const reduce_case reduce_cases[] = {
    {{L_CONTIG, {3, {3, 4, 5}}}, false, 1, {0}},
    {{L_CONTIG, {3, {3, 4, 5}}}, false, 1, {1}},
    {{L_CONTIG, {3, {3, 4, 5}}}, false, 1, {2}},
    {{L_CONTIG, {3, {3, 4, 5}}}, false, 1, {-1}},
    {{L_CONTIG, {3, {3, 4, 5}}}, false, 1, {-3}},
    {{L_CONTIG, {3, {3, 4, 5}}}, false, 2, {0, 2}},
    {{L_CONTIG, {3, {3, 4, 5}}}, false, 2, {-1, 1}},
    {{L_CONTIG, {3, {3, 4, 5}}}, false, 3, {0, 1, 2}},
    {{L_CONTIG, {3, {3, 4, 5}}}, true, 0, {0}},
    {{L_CONTIG, {3, {3, 4, 5}}}, false, 0, {0}},
    {{L_PERM, {3, {3, 4, 5}}}, false, 1, {1}},
    {{L_PERM, {3, {3, 4, 5}}}, true, 0, {0}},
    {{L_STRIDED, {2, {3, 5}}}, false, 1, {-1}},
    {{L_STRIDED, {2, {3, 5}}}, false, 1, {0}},
    {{L_PERM_STRIDED, {2, {3, 4}}}, false, 2, {0, 1}},
    {{L_PERM_STRIDED, {3, {3, 2, 3}}}, false, 2, {2, 0}},
    {{L_EXPANDED, {2, {3, 4}}}, false, 1, {0}},
    {{L_EXPANDED, {2, {3, 4}}}, false, 1, {1}},
    {{L_EXPANDED, {2, {3, 4}}}, true, 0, {0}},
    {{L_CONTIG, {0, {0}}}, true, 0, {0}},
    {{L_CONTIG, {0, {0}}}, false, 0, {0}},
    {{L_CONTIG, {3, {1, 5, 1}}}, false, 2, {0, 2}},
    {{L_CONTIG, {3, {1, 5, 1}}}, false, 1, {1}},
    {{L_CONTIG, {3, {1, 5, 1}}}, false, 1, {0}},
    {{L_CONTIG, {1, {7}}}, false, 1, {0}},
};

static int64_t reduced_count(const reduce_case *c) {
    int64_t n = 1;
    if (c->all) {
        for (int i = 0; i < c->in.s.ndim; i++) n *= c->in.s.d[i];
        return n;
    }
    for (int k = 0; k < c->naxes; k++) {
        int a = c->axes[k] < 0 ? c->axes[k] + c->in.s.ndim : c->axes[k];
        n *= c->in.s.d[a];
    }
    return n;
}

START_TEST(test_grad_reduce) {
    int op = _i;
    /* max and min see distinct values, so no ties move under eps (ties
     * from expanded inputs alias one storage element and stay ties) */
    dist d = D_ANY;
    if (op == R_MAX || op == R_MIN) d = (dist){.spacing = 0.05f};
    gc_reset();
    for (int k = 0; k < COUNT(reduce_cases); k++) {
        const reduce_case *c = &reduce_cases[k];
        if (op == R_VAR1 && reduced_count(c) < 2) continue; /* 0/0 */
        for (int keep = 0; keep < 2; keep++) {
            nd_tensor *x = make_input(c->in.layout, c->in.s, 900 + (uint64_t)k, &d);
            reduce_ctx ctx = {op, c->all ? NULL : c->axes, c->all ? 0 : c->naxes, keep};
            char label[512], s[128], ax[64] = "NULL";
            if (!c->all) {
                ax[0] = 0;
                strcat(ax, "{");
                for (int i = 0; i < c->naxes; i++)
                    snprintf(ax + strlen(ax), sizeof ax - strlen(ax), "%s%d",
                             i ? "," : "", c->axes[i]);
                strcat(ax, "}");
            }
            snprintf(label, sizeof label, "%s over %s, keepdim %d, on %s",
                     reduce_names[op], ax, keep,
                     spec_str(c->in.layout, c->in.s, s, sizeof s));
            gc_check(label, f_reduce, &ctx, &x, 1, TOL);
        }
    }
    gc_finish();
}
END_TEST

typedef struct {
    spec in;
    int axis;
} softmax_case;

static const softmax_case softmax_cases[] = {
    {{L_CONTIG, {3, {3, 4, 5}}}, 0},    {{L_CONTIG, {3, {3, 4, 5}}}, 1},
    {{L_CONTIG, {3, {3, 4, 5}}}, 2},    {{L_CONTIG, {3, {3, 4, 5}}}, -1},
    {{L_CONTIG, {3, {3, 4, 5}}}, -3},   {{L_CONTIG, {1, {5}}}, 0},
    {{L_CONTIG, {2, {3, 1}}}, 1},       {{L_CONTIG, {2, {3, 1}}}, 0},
    {{L_CONTIG, {2, {1, 4}}}, -1},      {{L_PERM, {3, {3, 4, 5}}}, 1},
    {{L_STRIDED, {2, {3, 5}}}, -1},     {{L_STRIDED, {2, {3, 5}}}, 0},
    {{L_PERM_STRIDED, {2, {3, 4}}}, 0}, {{L_EXPANDED, {2, {3, 4}}}, 0},
    {{L_EXPANDED, {2, {3, 4}}}, 1},
};

typedef struct {
    bool log;
    int axis;
} softmax_ctx;

static nd_tensor *f_softmax(nd_tensor *const *in, void *ctx) {
    const softmax_ctx *c = ctx;
    return c->log ? nd_log_softmax(in[0], c->axis) : nd_softmax(in[0], c->axis);
}

START_TEST(test_grad_softmax) {
    bool log = _i == 1;
    dist d = RANGE(-3, 3);
    gc_reset();
    for (int k = 0; k < COUNT(softmax_cases); k++) {
        const softmax_case *c = &softmax_cases[k];
        nd_tensor *x = make_input(c->in.layout, c->in.s, 1000 + (uint64_t)k, &d);
        softmax_ctx ctx = {log, c->axis};
        char label[512], s[128];
        snprintf(label, sizeof label, "%s over axis %d on %s",
                 log ? "log_softmax" : "softmax", c->axis,
                 spec_str(c->in.layout, c->in.s, s, sizeof s));
        gc_check(label, f_softmax, &ctx, &x, 1, TOL);
    }
    gc_finish();
}
END_TEST

START_TEST(test_max_min_ties_split) {
    nd_tensor *x = leaf((const float[]){1, 3, 3}, ND_SHAPE(3));
    nd_backward(nd_max(x, NULL, 0, false));
    expect_grad(x, (const float[]){0, 0.5f, 0.5f}, 0, "max [1,3,3]");

    nd_tensor *y = leaf((const float[]){2, 1, 5, 1}, ND_SHAPE(4));
    nd_backward(nd_min(y, ND_AXES(0), false));
    expect_grad(y, (const float[]){0, 0.5f, 0, 0.5f}, 0, "min [2,1,5,1]");

    /* per row, with and without keepdim */
    const float v[9] = {1, 4, 4, 7, 2, 7, 0, 5, 3};
    const float want[9] = {0, 0.5f, 0.5f, 0.5f, 0, 0.5f, 0, 1, 0};
    for (int keep = 0; keep < 2; keep++) {
        nd_tensor *z = leaf(v, ND_SHAPE(3, 3));
        nd_backward(nd_sum(nd_max(z, ND_AXES(1), keep), NULL, 0, false));
        expect_grad(z, want, 0, keep ? "max over axis 1, keepdim" : "max over axis 1");
    }

    /* over all axes: three ties share one gradient */
    nd_tensor *w = leaf((const float[]){3, 1, 3, 3}, ND_SHAPE(2, 2));
    nd_backward(nd_max(w, NULL, 0, true));
    const float third = 1.0f / 3.0f;
    expect_grad(w, (const float[]){third, 0, third, third}, 1e-7, "max over all, 3 ties");

    /* a seed other than 1 is split the same way */
    nd_tensor *u = leaf((const float[]){-2, 0, -2, 1, 1, 1}, ND_SHAPE(2, 3));
    nd_tensor *m = nd_min(u, ND_AXES(-1), false);
    nd_backward_with(m, nd_from_buffer((const float[]){4, 6}, ND_SHAPE(2)));
    expect_grad(u, (const float[]){2, 0, 2, 2, 2, 2}, 0, "min over axis -1, seed [4,6]");
}
END_TEST

START_TEST(test_mean_var_by_hand) {
    nd_tensor *x = leaf((const float[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
                        ND_SHAPE(4, 3));
    nd_backward(nd_sum(nd_mean(x, ND_AXES(0), false), NULL, 0, false));
    float quarter[12];
    for (int i = 0; i < 12; i++) quarter[i] = 0.25f;
    expect_grad(x, quarter, 0, "mean over axis 0 of [4,3]");

    nd_tensor *a = leaf((const float[]){1, 2, 3, 4}, ND_SHAPE(4));
    nd_backward(nd_var(a, NULL, 0, 1, false));
    expect_grad(a, (const float[]){-1, -1.0f / 3, 1.0f / 3, 1}, 1e-6, "var(c=1) of 1..4");
    nd_tensor *b = leaf((const float[]){1, 2, 3, 4}, ND_SHAPE(4));
    nd_backward(nd_var(b, NULL, 0, 0, false));
    expect_grad(b, (const float[]){-0.75f, -0.25f, 0.25f, 0.75f}, 1e-6, "var(c=0) of 1..4");
}
END_TEST

START_TEST(test_softmax_by_hand) {
    /* the entries of a softmax sum to 1: no gradient */
    const float v[6] = {0.5f, -1, 2, 0, 0.25f, 3};
    nd_tensor *x = leaf(v, ND_SHAPE(2, 3));
    nd_backward(nd_sum(nd_softmax(x, 1), NULL, 0, false));
    const float zero[6] = {0};
    expect_grad(x, zero, 1e-6, "sum(softmax(x))");

    /* d/dx sum_j log_softmax(x)_j = 1 - n softmax(x) */
    nd_tensor *z = leaf(v, ND_SHAPE(2, 3));
    nd_backward(nd_sum(nd_log_softmax(z, -1), NULL, 0, false));
    float want[6];
    for (int r = 0; r < 2; r++) {
        double m = fmax(fmax(v[3 * r], v[3 * r + 1]), v[3 * r + 2]), s = 0;
        for (int j = 0; j < 3; j++) s += exp(v[3 * r + j] - m);
        for (int j = 0; j < 3; j++)
            want[3 * r + j] = (float)(1.0 - 3.0 * exp(v[3 * r + j] - m) / s);
    }
    expect_grad(z, want, 1e-6, "sum(log_softmax(z))");
}
END_TEST

START_TEST(test_argmax_records_nothing) {
    nd_tensor *x = nd_requires_grad(t_uniform(41, ND_SHAPE(3, 4, 5), -1, 1), true);
    size_t before = nd_tape_length();
    const int axes[] = {0, 1, 2, -1};
    for (int k = 0; k < COUNT(axes); k++)
        for (int keep = 0; keep < 2; keep++) {
            nd_tensor *y = nd_argmax(x, axes[k], keep);
            ck_assert_msg(!y->requires_grad, "argmax axis %d keepdim %d requires grad",
                          axes[k], keep);
            ck_assert_msg(y->record == NULL, "argmax axis %d keepdim %d has a record",
                          axes[k], keep);
            ck_assert_uint_eq(nd_tape_length(), before);
        }
    /* also on a recorded, non-leaf input */
    nd_tensor *h = nd_exp(x);
    ck_assert_uint_eq(nd_tape_length(), before + 1);
    nd_tensor *y = nd_argmax(h, 1, false);
    ck_assert(!y->requires_grad);
    ck_assert_ptr_null(y->record);
    ck_assert_uint_eq(nd_tape_length(), before + 1);
}
END_TEST

TCase *tcase_grad_reduce(void) {
    TCase *tc = nd_test_case("grad_reduce");
    tcase_add_loop_test(tc, test_grad_reduce, 0, R_COUNT);
    tcase_add_loop_test(tc, test_grad_softmax, 0, 2);
    tcase_add_test(tc, test_max_min_ties_split);
    tcase_add_test(tc, test_mean_var_by_hand);
    tcase_add_test(tc, test_softmax_by_hand);
    tcase_add_test(tc, test_argmax_records_nothing);
    return tc;
}

/* ==== matmul, joins and views ============================================ */

static nd_tensor *f_matmul(nd_tensor *const *in, void *ctx) {
    (void)ctx;
    return nd_matmul(in[0], in[1]);
}

static const spec2 matmul_specs[] = {
    {{L_CONTIG, {2, {3, 4}}}, {L_CONTIG, {2, {4, 5}}}},
    {{L_CONTIG, {4, {2, 1, 3, 4}}}, {L_CONTIG, {3, {5, 4, 2}}}},
    {{L_CONTIG, {1, {4}}}, {L_CONTIG, {2, {4, 3}}}},
    {{L_CONTIG, {2, {3, 4}}}, {L_CONTIG, {1, {4}}}},
    {{L_CONTIG, {1, {5}}}, {L_CONTIG, {1, {5}}}},
    {{L_CONTIG, {3, {2, 3, 4}}}, {L_CONTIG, {2, {4, 5}}}},
    {{L_CONTIG, {2, {3, 4}}}, {L_CONTIG, {3, {2, 4, 2}}}},
    {{L_CONTIG, {1, {4}}}, {L_CONTIG, {3, {2, 4, 3}}}},
    {{L_CONTIG, {3, {2, 3, 4}}}, {L_CONTIG, {1, {4}}}},
    {{L_CONTIG, {2, {1, 3}}}, {L_CONTIG, {2, {3, 1}}}},
    {{L_CONTIG, {3, {1, 1, 3}}}, {L_CONTIG, {3, {2, 3, 1}}}},
    {{L_PERM, {2, {3, 4}}}, {L_PERM, {2, {4, 5}}}},
    {{L_STRIDED, {2, {3, 4}}}, {L_PERM_STRIDED, {2, {4, 3}}}},
    {{L_EXPANDED, {3, {2, 3, 4}}}, {L_CONTIG, {3, {2, 4, 3}}}},
    {{L_CONTIG, {2, {3, 4}}}, {L_EXPANDED, {2, {4, 3}}}},
    {{L_PERM, {4, {2, 1, 3, 4}}}, {L_STRIDED, {3, {5, 4, 2}}}},
    {{L_STRIDED, {1, {5}}}, {L_PERM, {3, {2, 5, 3}}}},
};

START_TEST(test_grad_matmul) {
    dist d = RANGE(-1, 1);
    gc_reset();
    for (int k = 0; k < COUNT(matmul_specs); k++) {
        spec2 sp = matmul_specs[k];
        nd_tensor *in[2] = {make_input(sp.a.layout, sp.a.s, 1100 + (uint64_t)k, &d),
                            make_input(sp.b.layout, sp.b.s, 1150 + (uint64_t)k, &d)};
        char label[512], s1[128], s2[128];
        snprintf(label, sizeof label, "matmul(%s, %s)",
                 spec_str(sp.a.layout, sp.a.s, s1, sizeof s1),
                 spec_str(sp.b.layout, sp.b.s, s2, sizeof s2));
        gc_check(label, f_matmul, NULL, in, 2, TOL);
    }
    gc_finish();
}
END_TEST

START_TEST(test_matmul_vectors_by_hand) {
    const float av[3] = {1, -2, 0.5f}, bv[3] = {4, 0.25f, -3};
    nd_tensor *a = leaf(av, ND_SHAPE(3)), *b = leaf(bv, ND_SHAPE(3));
    nd_tensor *y = nd_matmul(a, b);
    ck_assert_int_eq(y->ndim, 0);
    nd_backward(y);
    expect_grad(a, bv, 0, "a in a . b");
    expect_grad(b, av, 0, "b in a . b");
}
END_TEST

/* One operand a constant that does not require grad (ctx), the other the
 * checked input: the rules must skip the constant. */
static nd_tensor *f_matmul_kx(nd_tensor *const *in, void *ctx) { return nd_matmul(ctx, in[0]); }
static nd_tensor *f_matmul_xk(nd_tensor *const *in, void *ctx) { return nd_matmul(in[0], ctx); }
static nd_tensor *f_div_kx(nd_tensor *const *in, void *ctx) { return nd_div(ctx, in[0]); }
static nd_tensor *f_mul_kx(nd_tensor *const *in, void *ctx) {
    return nd_sum(nd_mul(ctx, in[0]), ND_AXES(0), false);
}
static nd_tensor *f_concat_kx(nd_tensor *const *in, void *ctx) {
    const nd_tensor *xs[3] = {ctx, in[0], ctx};
    return nd_concat(xs, 3, -1);
}
static nd_tensor *f_where_kx(nd_tensor *const *in, void *ctx) {
    const nd_tensor *k = ctx;
    return nd_where(nd_gt(k, nd_scalar(0.0f)), k, in[0]);
}

START_TEST(test_grad_constant_operand) {
    static const struct {
        const char *name;
        nd_grad_fn f;
        shp k, x;
        float xlo;
    } cases[] = {
        {"matmul(k [3,4], x [2,4,5])", f_matmul_kx, {2, {3, 4}}, {3, {2, 4, 5}}, -1},
        {"matmul(x [4], k [2,4,3])", f_matmul_xk, {3, {2, 4, 3}}, {1, {4}}, -1},
        {"div(k [3,1], x [4])", f_div_kx, {2, {3, 1}}, {1, {4}}, 0.5f},
        {"sum(k [3,4] x [4], axis 0)", f_mul_kx, {2, {3, 4}}, {1, {4}}, -1},
        {"concat([k, x, k], -1), k [2,3], x [2,1]", f_concat_kx, {2, {2, 3}}, {2, {2, 1}}, -1},
        {"where(k > 0, k, x), k [3,4], x [4]", f_where_kx, {2, {3, 4}}, {1, {4}}, -1},
    };
    gc_reset();
    for (int c = 0; c < COUNT(cases); c++) {
        nd_tensor *k = t_uniform(1180 + (uint64_t)c, cases[c].k.d, cases[c].k.ndim, -1, 1);
        dist d = RANGE(cases[c].xlo, 2);
        nd_tensor *x = make_input(L_CONTIG, cases[c].x, 1190 + (uint64_t)c, &d);
        gc_check(cases[c].name, cases[c].f, k, &x, 1, TOL);
        ck_assert_ptr_null(k->grad);
    }
    gc_finish();
}
END_TEST

/* concat of three inputs along ctx's axis, or [x, y, x] with one input
 * twice (in[2] unused) */
typedef struct {
    int axis;
    bool repeat;
} join_ctx;

static nd_tensor *f_concat(nd_tensor *const *in, void *ctx) {
    const join_ctx *c = ctx;
    const nd_tensor *xs[3] = {in[0], in[1], c->repeat ? in[0] : in[2]};
    return nd_concat(xs, 3, c->axis);
}

static nd_tensor *f_stack(nd_tensor *const *in, void *ctx) {
    const join_ctx *c = ctx;
    const nd_tensor *xs[3] = {in[0], in[1], c->repeat ? in[0] : in[2]};
    return nd_stack(xs, 3, c->axis);
}

START_TEST(test_grad_concat) {
    static const struct {
        spec x[3];
        int axis;
        bool repeat;
    } cases[] = {
        {{{L_CONTIG, {2, {2, 3}}}, {L_CONTIG, {2, {2, 1}}}, {L_CONTIG, {2, {2, 4}}}}, -1, false},
        {{{L_CONTIG, {2, {1, 3}}}, {L_CONTIG, {2, {2, 3}}}, {L_CONTIG, {2, {3, 3}}}}, 0, false},
        {{{L_CONTIG, {2, {1, 3}}}, {L_CONTIG, {2, {2, 3}}}, {L_CONTIG, {2, {3, 3}}}}, -2, false},
        {{{L_PERM, {3, {2, 1, 3}}}, {L_STRIDED, {3, {2, 2, 3}}}, {L_EXPANDED, {3, {2, 3, 3}}}}, 1, false},
        {{{L_CONTIG, {1, {3}}}, {L_PERM_STRIDED, {1, {2}}}, {L_CONTIG, {1, {5}}}}, -1, false},
        {{{L_PERM, {2, {3, 2}}}, {L_CONTIG, {2, {3, 1}}}, {L_CONTIG, {0, {0}}}}, -1, true},
    };
    gc_reset();
    for (int k = 0; k < COUNT(cases); k++) {
        int n = cases[k].repeat ? 2 : 3;
        nd_tensor *in[3];
        char label[512], s[3][128];
        for (int i = 0; i < n; i++)
            in[i] = make_input(cases[k].x[i].layout, cases[k].x[i].s,
                               1200 + 3 * (uint64_t)k + (uint64_t)i, &D_ANY);
        for (int i = 0; i < n; i++)
            spec_str(cases[k].x[i].layout, cases[k].x[i].s, s[i], sizeof s[i]);
        if (cases[k].repeat)
            snprintf(label, sizeof label, "concat([x, y, x], %d), x %s, y %s",
                     cases[k].axis, s[0], s[1]);
        else
            snprintf(label, sizeof label, "concat([%s, %s, %s], %d)", s[0], s[1], s[2],
                     cases[k].axis);
        join_ctx ctx = {cases[k].axis, cases[k].repeat};
        gc_check(label, f_concat, &ctx, in, n, TOL);
    }
    gc_finish();
}
END_TEST

START_TEST(test_grad_stack) {
    static const struct {
        int layout[3];
        shp s;
        int axis;
        bool repeat;
    } cases[] = {
        {{L_CONTIG, L_CONTIG, L_CONTIG}, {2, {3, 4}}, 0, false},
        {{L_CONTIG, L_CONTIG, L_CONTIG}, {2, {3, 4}}, 1, false},
        {{L_CONTIG, L_CONTIG, L_CONTIG}, {2, {3, 4}}, 2, false},
        {{L_CONTIG, L_CONTIG, L_CONTIG}, {2, {3, 4}}, -1, false},
        {{L_CONTIG, L_CONTIG, L_CONTIG}, {2, {3, 4}}, -3, false},
        {{L_CONTIG, L_CONTIG, L_CONTIG}, {0, {0}}, 0, false},
        {{L_CONTIG, L_CONTIG, L_CONTIG}, {0, {0}}, -1, false},
        {{L_PERM, L_STRIDED, L_EXPANDED}, {2, {3, 4}}, 1, false},
        {{L_PERM_STRIDED, L_CONTIG, L_CONTIG}, {2, {2, 3}}, -2, true},
    };
    gc_reset();
    for (int k = 0; k < COUNT(cases); k++) {
        int n = cases[k].repeat ? 2 : 3;
        nd_tensor *in[3];
        for (int i = 0; i < n; i++)
            in[i] = make_input(cases[k].layout[i], cases[k].s,
                               1300 + 3 * (uint64_t)k + (uint64_t)i, &D_ANY);
        char label[512], sh[ND_SHAPE_STR_LEN];
        snprintf(label, sizeof label, "stack(%s, axis %d), inputs %s, layouts %s/%s/%s",
                 cases[k].repeat ? "[x, y, x]" : "[x, y, z]", cases[k].axis,
                 nd_shape_str(cases[k].s.d, cases[k].s.ndim, sh),
                 layout_names[cases[k].layout[0]], layout_names[cases[k].layout[1]],
                 cases[k].repeat ? "-" : layout_names[cases[k].layout[2]]);
        join_ctx ctx = {cases[k].axis, cases[k].repeat};
        gc_check(label, f_stack, &ctx, in, n, TOL);
    }
    gc_finish();
}
END_TEST

static nd_tensor *f_pad(nd_tensor *const *in, void *ctx) {
    const int64_t *pads = ctx;
    return nd_pad(in[0], in[0]->ndim ? pads : NULL, 0.5f);
}

/* index_select and index_add along ctx's axis, with repeated positions:
 * the gradient of a repeated row collects every slice that used it */
typedef struct {
    int axis;
    const float *at;
    int64_t k;
} index_ctx;

static nd_tensor *f_index_select(nd_tensor *const *in, void *ctx) {
    const index_ctx *c = ctx;
    return nd_index_select(in[0], c->axis, nd_from_buffer(c->at, ND_SHAPE(c->k)));
}

static nd_tensor *f_index_add(nd_tensor *const *in, void *ctx) {
    const index_ctx *c = ctx;
    return nd_index_add(in[0], c->axis, nd_from_buffer(c->at, ND_SHAPE(c->k)), in[1]);
}

START_TEST(test_grad_index) {
    static const float at[] = {2, 0, 2, 1, 2};
    static const struct {
        spec x;
        int axis;
        int64_t k;
        int src_layout;
    } cases[] = {
        {{L_CONTIG, {2, {3, 4}}}, 0, 5, L_CONTIG},
        {{L_PERM, {3, {2, 3, 4}}}, 1, 4, L_STRIDED},
        {{L_STRIDED, {2, {4, 3}}}, -1, 5, L_PERM},
        {{L_EXPANDED, {2, {3, 5}}}, 0, 3, L_PERM_STRIDED},
        {{L_CONTIG, {1, {3}}}, 0, 0, L_CONTIG},
    };
    gc_reset();
    for (int k = 0; k < COUNT(cases); k++) {
        const spec *x = &cases[k].x;
        int a = cases[k].axis < 0 ? cases[k].axis + x->s.ndim : cases[k].axis;
        index_ctx ctx = {cases[k].axis, at, cases[k].k};
        shp ss = x->s;
        ss.d[a] = cases[k].k;
        nd_tensor *in[2] = {make_input(x->layout, x->s, 1500 + 2 * (uint64_t)k, &D_ANY),
                            make_input(cases[k].src_layout, ss, 1501 + 2 * (uint64_t)k, &D_ANY)};
        char label[512], s[128];
        snprintf(label, sizeof label, "index_select(%s, axis %d, %lld positions)",
                 spec_str(x->layout, x->s, s, sizeof s), cases[k].axis, (long long)cases[k].k);
        gc_check(label, f_index_select, &ctx, in, 1, TOL);
        snprintf(label, sizeof label, "index_add(%s, axis %d, %lld positions, src %s)",
                 spec_str(x->layout, x->s, s, sizeof s), cases[k].axis, (long long)cases[k].k,
                 layout_names[cases[k].src_layout]);
        gc_check(label, f_index_add, &ctx, in, 2, TOL);
    }
    gc_finish();
}
END_TEST

START_TEST(test_grad_pad) {
    static const struct {
        spec in;
        int64_t pads[6];
    } cases[] = {
        {{L_CONTIG, {2, {3, 4}}}, {1, 2, 0, 3}},
        {{L_CONTIG, {3, {2, 3, 2}}}, {0, 0, 2, 1, 1, 0}},
        {{L_CONTIG, {1, {5}}}, {3, 0}},
        {{L_CONTIG, {0, {0}}}, {0}},
        {{L_PERM, {2, {3, 4}}}, {2, 0, 1, 1}},
        {{L_EXPANDED, {2, {3, 4}}}, {1, 1, 1, 1}},
        {{L_PERM_STRIDED, {2, {2, 3}}}, {0, 1, 2, 0}},
        {{L_CONTIG, {2, {2, 3}}}, {0, 0, 0, 0}},
    };
    gc_reset();
    for (int k = 0; k < COUNT(cases); k++) {
        nd_tensor *x = make_input(cases[k].in.layout, cases[k].in.s, 1400 + (uint64_t)k, &D_ANY);
        char label[512], s[128];
        snprintf(label, sizeof label, "pad(%s) case %d",
                 spec_str(cases[k].in.layout, cases[k].in.s, s, sizeof s), k);
        int64_t pads[6];
        memcpy(pads, cases[k].pads, sizeof pads);
        gc_check(label, f_pad, pads, &x, 1, TOL);
    }
    gc_finish();
}
END_TEST

/* ---- views ---------------------------------------------------------------- */

static nd_tensor *v_reshape_2_6(const nd_tensor *x) { return nd_reshape(x, ND_SHAPE(2, 6)); }
static nd_tensor *v_reshape_4_m1(const nd_tensor *x) { return nd_reshape(x, ND_SHAPE(4, -1)); }
static nd_tensor *v_reshape_12(const nd_tensor *x) { return nd_reshape(x, ND_SHAPE(12)); }
static nd_tensor *v_reshape_1_1(const nd_tensor *x) { return nd_reshape(x, ND_SHAPE(1, 1)); }
static nd_tensor *v_reshape_3(const nd_tensor *x) { return nd_reshape(x, ND_SHAPE(3)); }
static nd_tensor *v_view_6_4(const nd_tensor *x) { return nd_view(x, ND_SHAPE(6, 4)); }
static nd_tensor *v_view_3_2_2(const nd_tensor *x) { return nd_view(x, ND_SHAPE(3, 2, 2)); }
static nd_tensor *v_view_3_5_1(const nd_tensor *x) { return nd_view(x, ND_SHAPE(3, 5, 1)); }
static nd_tensor *v_view_1(const nd_tensor *x) { return nd_view(x, ND_SHAPE(1)); }
static nd_tensor *v_flatten(const nd_tensor *x) { return nd_flatten(x); }
static nd_tensor *v_permute_120(const nd_tensor *x) { return nd_permute(x, ND_AXES(1, 2, 0)); }
static nd_tensor *v_permute_neg(const nd_tensor *x) { return nd_permute(x, ND_AXES(-1, 0, 1)); }
static nd_tensor *v_transpose_0_m1(const nd_tensor *x) { return nd_transpose(x, 0, -1); }
static nd_tensor *v_transpose_0_2(const nd_tensor *x) { return nd_transpose(x, 0, 2); }
static nd_tensor *v_slice_neg_step2(const nd_tensor *x) { return nd_slice(x, 0, -6, ND_END, 2); }
static nd_tensor *v_slice_ax1_step3(const nd_tensor *x) { return nd_slice(x, 1, 1, -1, 3); }
static nd_tensor *v_slice_clamped(const nd_tensor *x) { return nd_slice(x, -1, -100, 100, 1); }
static nd_tensor *v_slice_step2(const nd_tensor *x) { return nd_slice(x, 0, 0, ND_END, 2); }
static nd_tensor *v_slice_ax1_step2(const nd_tensor *x) { return nd_slice(x, 1, -4, ND_END, 2); }
static nd_tensor *v_slice_inner(const nd_tensor *x) { return nd_slice(x, 0, 1, 5, 2); }
static nd_tensor *v_expand_2_3_4(const nd_tensor *x) { return nd_expand(x, ND_SHAPE(2, 3, 4)); }
static nd_tensor *v_expand_3_4(const nd_tensor *x) { return nd_expand(x, ND_SHAPE(3, 4)); }
static nd_tensor *v_expand_m1_4(const nd_tensor *x) { return nd_expand(x, ND_SHAPE(-1, 4)); }
static nd_tensor *v_expand_2_3(const nd_tensor *x) { return nd_expand(x, ND_SHAPE(2, 3)); }
static nd_tensor *v_squeeze_1(const nd_tensor *x) { return nd_squeeze(x, 1); }
static nd_tensor *v_squeeze_m2(const nd_tensor *x) { return nd_squeeze(x, -2); }
static nd_tensor *v_squeeze_0(const nd_tensor *x) { return nd_squeeze(x, 0); }
static nd_tensor *v_unsqueeze_0(const nd_tensor *x) { return nd_unsqueeze(x, 0); }
static nd_tensor *v_unsqueeze_1(const nd_tensor *x) { return nd_unsqueeze(x, 1); }
static nd_tensor *v_unsqueeze_m1(const nd_tensor *x) { return nd_unsqueeze(x, -1); }
static nd_tensor *v_contiguous(const nd_tensor *x) { return nd_contiguous(x); }
static nd_tensor *v_clone(const nd_tensor *x) { return nd_clone(x); }
/* a view of a view of a view, back to x's shape */
static nd_tensor *v_roundtrip(const nd_tensor *x) {
    nd_tensor *t = nd_unsqueeze(nd_transpose(x, 0, 1), 0); /* [1,4,3] */
    t = nd_reshape(t, ND_SHAPE(4, 1, 3));
    return nd_transpose(nd_squeeze(t, 1), 0, 1);
}

typedef struct {
    const char *name;
    unary_fn fn;
    spec in;
} view_case;

static const view_case view_cases[] = {
    {"reshape (2,6)", v_reshape_2_6, {L_CONTIG, {2, {3, 4}}}},
    {"reshape (2,6)", v_reshape_2_6, {L_PERM, {2, {3, 4}}}},
    {"reshape (2,6)", v_reshape_2_6, {L_EXPANDED, {2, {3, 4}}}},
    {"reshape (4,-1)", v_reshape_4_m1, {L_CONTIG, {3, {2, 3, 4}}}},
    {"reshape (4,-1)", v_reshape_4_m1, {L_PERM_STRIDED, {3, {2, 3, 4}}}},
    {"reshape (12)", v_reshape_12, {L_STRIDED, {2, {3, 4}}}},
    {"reshape (1,1)", v_reshape_1_1, {L_CONTIG, {0, {0}}}},
    {"reshape (3)", v_reshape_3, {L_CONTIG, {3, {1, 3, 1}}}},
    {"view (6,4)", v_view_6_4, {L_CONTIG, {3, {2, 3, 4}}}},
    {"view (3,2,2)", v_view_3_2_2, {L_PERM, {2, {3, 4}}}},
    {"view (3,5,1)", v_view_3_5_1, {L_STRIDED, {2, {3, 5}}}},
    {"view (1)", v_view_1, {L_CONTIG, {0, {0}}}},
    {"flatten", v_flatten, {L_CONTIG, {3, {2, 3, 4}}}},
    {"flatten", v_flatten, {L_PERM, {3, {2, 3, 4}}}},
    {"flatten", v_flatten, {L_CONTIG, {0, {0}}}},
    {"permute (1,2,0)", v_permute_120, {L_CONTIG, {3, {2, 3, 4}}}},
    {"permute (1,2,0)", v_permute_120, {L_EXPANDED, {3, {2, 3, 4}}}},
    {"permute (-1,0,1)", v_permute_neg, {L_STRIDED, {3, {2, 3, 4}}}},
    {"transpose (0,-1)", v_transpose_0_m1, {L_CONTIG, {2, {3, 4}}}},
    {"transpose (0,2)", v_transpose_0_2, {L_PERM, {3, {2, 3, 4}}}},
    {"slice 0 [-6::2]", v_slice_neg_step2, {L_CONTIG, {2, {7, 3}}}},
    {"slice 0 [-6::2]", v_slice_neg_step2, {L_PERM, {2, {7, 3}}}},
    {"slice 1 [1:-1:3]", v_slice_ax1_step3, {L_CONTIG, {2, {2, 9}}}},
    {"slice -1 [-100:100]", v_slice_clamped, {L_CONTIG, {2, {4, 5}}}},
    {"slice 0 [::2]", v_slice_step2, {L_PERM, {2, {5, 4}}}},
    {"slice 1 [-4::2]", v_slice_ax1_step2, {L_STRIDED, {2, {3, 5}}}},
    {"slice 0 [1:5:2]", v_slice_inner, {L_EXPANDED, {2, {6, 3}}}},
    {"expand (2,3,4)", v_expand_2_3_4, {L_CONTIG, {2, {3, 1}}}},
    {"expand (2,3,4)", v_expand_2_3_4, {L_EXPANDED, {2, {3, 4}}}},
    {"expand (3,4)", v_expand_3_4, {L_STRIDED, {1, {4}}}},
    {"expand (-1,4)", v_expand_m1_4, {L_CONTIG, {2, {3, 1}}}},
    {"expand (2,3)", v_expand_2_3, {L_CONTIG, {0, {0}}}},
    {"squeeze 1", v_squeeze_1, {L_CONTIG, {3, {3, 1, 4}}}},
    {"squeeze -2", v_squeeze_m2, {L_PERM, {3, {3, 1, 4}}}},
    {"squeeze 0", v_squeeze_0, {L_CONTIG, {1, {1}}}},
    {"squeeze 0", v_squeeze_0, {L_PERM, {3, {1, 3, 4}}}},
    {"unsqueeze 0", v_unsqueeze_0, {L_CONTIG, {2, {3, 4}}}},
    {"unsqueeze 0", v_unsqueeze_0, {L_CONTIG, {0, {0}}}},
    {"unsqueeze 1", v_unsqueeze_1, {L_STRIDED, {2, {3, 5}}}},
    {"unsqueeze -1", v_unsqueeze_m1, {L_EXPANDED, {2, {3, 4}}}},
    {"contiguous", v_contiguous, {L_CONTIG, {2, {3, 4}}}},
    {"contiguous", v_contiguous, {L_PERM, {2, {3, 4}}}},
    {"contiguous", v_contiguous, {L_EXPANDED, {2, {3, 4}}}},
    {"contiguous", v_contiguous, {L_CONTIG, {0, {0}}}},
    {"clone", v_clone, {L_CONTIG, {2, {3, 4}}}},
    {"clone", v_clone, {L_PERM_STRIDED, {2, {3, 5}}}},
    {"clone", v_clone, {L_EXPANDED, {2, {2, 3}}}},
    {"transpose, unsqueeze, reshape, squeeze, transpose", v_roundtrip, {L_PERM, {2, {3, 4}}}},
};

START_TEST(test_grad_views) {
    gc_reset();
    for (int k = 0; k < COUNT(view_cases); k++) {
        unary_case c = {view_cases[k].name, view_cases[k].fn, D_ANY, 0};
        spec sp = view_cases[k].in;
        nd_tensor *x = make_input(sp.layout, sp.s, 1500 + (uint64_t)k, &c.d);
        char label[512], s[128];
        snprintf(label, sizeof label, "%s on %s", c.name, spec_str(sp.layout, sp.s, s, sizeof s));
        gc_check(label, f_unary, &c, &x, 1, TOL);
    }
    gc_finish();
}
END_TEST

START_TEST(test_empty_slice_gives_zero_gradient) {
    nd_tensor *x = nd_requires_grad(t_uniform(1600, ND_SHAPE(3, 4), -1, 1), true);
    nd_tensor *y = nd_slice(x, 0, 10, ND_END, 1);
    ck_assert_int_eq(y->shape[0], 0);
    nd_backward_with(y, nd_zeros(y->shape, y->ndim));
    if (x->grad) {
        const float zero[12] = {0};
        expect_grad(x, zero, 0, "x[10:] of [3,4]");
    }
}
END_TEST

START_TEST(test_views_by_hand) {
    nd_tensor *x = leaf((const float[]){1, 2, 3, 4, 5, 6, 7}, ND_SHAPE(7));
    nd_tensor *y = nd_slice(x, 0, -6, ND_END, 2); /* x[1], x[3], x[5] */
    ck_assert_int_eq(y->shape[0], 3);
    nd_backward_with(y, nd_from_buffer((const float[]){10, 20, 30}, ND_SHAPE(3)));
    expect_grad(x, (const float[]){0, 10, 0, 20, 0, 30, 0}, 0, "x[-6::2]");

    nd_tensor *a = leaf((const float[]){1, 2, 3}, ND_SHAPE(3, 1));
    nd_backward(nd_sum(nd_expand(a, ND_SHAPE(2, 3, 4)), NULL, 0, false));
    expect_grad(a, (const float[]){8, 8, 8}, 0, "expand [3,1] -> [2,3,4]");

    nd_tensor *b = leaf((const float[]){1, 2, 3, 4}, ND_SHAPE(2, 2));
    const nd_tensor *twice[3] = {b, b, b};
    nd_backward(nd_sum(nd_concat(twice, 3, -1), NULL, 0, false));
    expect_grad(b, (const float[]){3, 3, 3, 3}, 0, "concat [b, b, b]");

    nd_tensor *c = leaf((const float[]){1, 2, 3, 4, 5, 6}, ND_SHAPE(2, 3));
    const int64_t pads[4] = {1, 0, 2, 2};
    nd_tensor *p = nd_pad(c, pads, 9.0f);
    ck_assert_int_eq(p->shape[0], 3);
    ck_assert_int_eq(p->shape[1], 7);
    nd_tensor *wt = nd_arange(0, 21, 1);
    nd_backward(nd_sum(nd_mul(p, nd_reshape(wt, ND_SHAPE(3, 7))), NULL, 0, false));
    expect_grad(c, (const float[]){9, 10, 11, 16, 17, 18}, 0, "pad: the interior's weights");

    nd_tensor *d = leaf((const float[]){1, 2, 3, 4, 5, 6}, ND_SHAPE(2, 3));
    nd_tensor *t = nd_transpose(d, 0, 1); /* [3,2] */
    nd_backward_with(t, nd_from_buffer((const float[]){1, 2, 3, 4, 5, 6}, ND_SHAPE(3, 2)));
    expect_grad(d, (const float[]){1, 3, 5, 2, 4, 6}, 0, "transpose");
}
END_TEST

/* A deeper chain: views, matmul, softmax and reductions, with x reaching
 * the output along several paths. x [2,3,5], w [5,4], b [4]. */
static nd_tensor *f_chain(nd_tensor *const *in, void *ctx) {
    (void)ctx;
    const nd_tensor *x = in[0], *w = in[1], *b = in[2];
    nd_tensor *h = nd_permute(x, ND_AXES(1, 0, 2));               /* [3,2,5] */
    h = nd_slice(h, 0, -2, ND_END, 1);                            /* [2,2,5] */
    h = nd_reshape(h, ND_SHAPE(-1, 5));                           /* [4,5] */
    h = nd_tanh(nd_add(nd_matmul(h, w), b));                      /* [4,4] */
    nd_tensor *p = nd_softmax(h, -1);
    nd_tensor *q = nd_log_softmax(nd_transpose(h, 0, 1), 0);
    nd_tensor *m = nd_mean(nd_mul(p, q), ND_AXES(0), true);       /* [1,4] */
    nd_tensor *v = nd_var(x, ND_AXES(0, 2), 1, false);            /* [3] */
    nd_tensor *e = nd_expand(nd_unsqueeze(v, 1), ND_SHAPE(3, 4)); /* [3,4] */
    nd_tensor *z = nd_mul(e, nd_squeeze(m, 0));                   /* [3,4] */
    const int64_t pads[6] = {0, 0, 1, 0, 0, 1};
    nd_tensor *mx = nd_max(nd_pad(x, pads, -10.0f), ND_AXES(-1), false); /* [2,4] */
    nd_tensor *zz = nd_add(nd_matmul(z, nd_transpose(mx, 0, 1)), nd_sum(x, NULL, 0, false));
    const nd_tensor *parts[2] = {zz, nd_exp(nd_neg(nd_square(zz)))};
    nd_tensor *s = nd_stack(parts, 2, 0);                         /* [2,3,2] */
    return nd_sum(nd_flatten(nd_contiguous(nd_permute(s, ND_AXES(2, 0, 1)))), NULL, 0, false);
}

/* The chain again, but return a non-scalar output through log_softmax and
 * a concat. */
static nd_tensor *f_chain2(nd_tensor *const *in, void *ctx) {
    (void)ctx;
    const nd_tensor *x = in[0], *w = in[1], *b = in[2];
    nd_tensor *flat = nd_reshape(nd_slice(x, 2, 0, ND_END, 1), ND_SHAPE(6, 5)); /* [6,5] */
    nd_tensor *h = nd_gelu(nd_add(nd_matmul(flat, w), b));                     /* [6,4] */
    nd_tensor *ls = nd_log_softmax(h, 0);
    nd_tensor *sg = nd_sigmoid(nd_matmul(w, b));                              /* [5] */
    nd_tensor *r = nd_mean(nd_mul(nd_unsqueeze(sg, 0), flat), ND_AXES(1), true); /* [6,1] */
    const nd_tensor *cat[3] = {ls, r, nd_clone(nd_slice(h, 1, 1, 3, 1))};
    return nd_concat(cat, 3, -1);                                              /* [6,7] */
}

START_TEST(test_grad_deep_chain) {
    gc_reset();
    static const int layouts[][3] = {{L_CONTIG, L_CONTIG, L_CONTIG},
                                     {L_PERM, L_STRIDED, L_EXPANDED}};
    shp xs = {3, {2, 3, 5}}, ws = {2, {5, 4}}, bs = {1, {4}};
    /* x's values are distinct, so the max in the chain has no near ties */
    dist dx = {.spacing = 0.06f}, d = RANGE(-1, 1);
    for (int k = 0; k < COUNT(layouts); k++) {
        nd_tensor *in[3] = {make_input(layouts[k][0], xs, 1700 + (uint64_t)k, &dx),
                            make_input(layouts[k][1], ws, 1710 + (uint64_t)k, &d),
                            make_input(layouts[k][2], bs, 1720 + (uint64_t)k, &d)};
        char label[128];
        snprintf(label, sizeof label, "chain, inputs %s/%s/%s", layout_names[layouts[k][0]],
                 layout_names[layouts[k][1]], layout_names[layouts[k][2]]);
        gc_check(label, f_chain, NULL, in, 3, TOL);
        snprintf(label, sizeof label, "chain2, inputs %s/%s/%s", layout_names[layouts[k][0]],
                 layout_names[layouts[k][1]], layout_names[layouts[k][2]]);
        gc_check(label, f_chain2, NULL, in, 3, TOL);
    }
    gc_finish();
}
END_TEST

TCase *tcase_grad_shape(void) {
    TCase *tc = nd_test_case("grad_shape");
    tcase_add_test(tc, test_grad_matmul);
    tcase_add_test(tc, test_matmul_vectors_by_hand);
    tcase_add_test(tc, test_grad_constant_operand);
    tcase_add_test(tc, test_grad_concat);
    tcase_add_test(tc, test_grad_stack);
    tcase_add_test(tc, test_grad_pad);
    tcase_add_test(tc, test_grad_index);
    tcase_add_test(tc, test_grad_views);
    tcase_add_test(tc, test_empty_slice_gives_zero_gradient);
    tcase_add_test(tc, test_views_by_hand);
    tcase_add_test(tc, test_grad_deep_chain);
    return tc;
}
