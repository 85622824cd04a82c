/* The vectorized kernels (tensor/vmath_*.c):
 *   - each approximation against libm in double, over dense sweeps and the
 *     special values, within its stated bound (in ulps of the float result;
 *     gelu also in relative error), and the IEEE special values exactly;
 *   - every SIMD kernel against its scalar twin on random rows of odd
 *     sizes from unaligned starts, with the stated tolerance (0 where the
 *     twin is exact);
 *   - through the tensor ops: strided, broadcast and contiguous inputs
 *     give the same bits, and 1, 2 and 3 threads give the same bits.
 * ND_TEST_VERBOSE=1 prints the measured maxima. */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "tensor/kernels.h"

/* ---- the bounds stated in tensor/vmath_scalar.c --------------------------- */

#define EXP_ULP 2.0
#define LOG_ULP 2.0
#define TANH_ULP 2.0
#define SIGMOID_ULP 3.0
#define SILU_ULP 4.0
/* gelu is bounded in relative error (results from FLT_MIN up), and in
 * ulps everywhere, subnormal results included */
#define GELU_REL 5e-7
#define GELU_ULP 7.0
/* softmax against its twin: the exps differ by an ulp, which moves the
 * sum and the scale a little (1 ulp measured). */
#define SOFTMAX_TWIN_ULP 2.0
/* log_softmax against its twin, relative to max(1, |y|): the log of the
 * sum may move by an ulp, and the differences x - m are exact (equal bits
 * measured). */
#define LOG_SOFTMAX_TWIN_ABS 4e-7

static bool verbose(void) {
    const char *v = getenv("ND_TEST_VERBOSE");
    return v && *v && *v != '0';
}

/* |got - want| in ulps of the float nearest want (2^-149 for subnormal
 * results). NaN must give NaN and infinities (also a want beyond
 * FLT_MAX) must match exactly: 0 if they do, +inf if not. */
static double ulp_error(float got, double want) {
    if (isnan(want)) return isnan(got) ? 0.0 : INFINITY;
    if (isnan(got)) return INFINITY;
    float fw = (float)want;
    if (isinf(fw)) return got == fw ? 0.0 : INFINITY;
    if (want == 0.0) return got == 0.0f ? 0.0 : fabs((double)got) / ldexp(1.0, -149);
    int e;
    frexp(want, &e); /* |want| in [2^(e-1), 2^e) */
    double ulp = ldexp(1.0, (e - 1 < -126 ? -126 : e - 1) - 23);
    return fabs((double)got - want) / ulp;
}

static float ulp_diff(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0.0f : INFINITY;
    return (float)ulp_error(a, b);
}

/* ---- references in double --------------------------------------------- */

static double ref_exp(double x) { return exp(x); }
static double ref_log(double x) { return log(x); }
static double ref_tanh(double x) { return tanh(x); }
static double ref_sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}
/* limits at -inf: 0 (approached from below, -0) */
static double ref_silu(double x) { return isinf(x) && x < 0 ? -0.0 : x * ref_sigmoid(x); }
static double ref_gelu(double x) {
    return isinf(x) && x < 0 ? -0.0 : x * 0.5 * erfc(-x / sqrt(2.0));
}

typedef void (*unary_kernel)(int64_t n, const float *x, float *y);

static const struct approx {
    const char *name;
    size_t field; /* offset of the kernel in nd_kernels */
    double (*ref)(double);
    double bound;     /* ulps against libm */
    double rel_bound; /* relative, from FLT_MIN up (1 when stated in ulps only) */
    double twin;      /* ulps between a SIMD set and the twin (measured over the
                         sweep, and every 2^-16 of [-16, 16] for gelu: exp, log,
                         tanh 1, sigmoid 2, silu 3, gelu 8) */
    double lo, hi; /* the 1/64 sweep */
    double flo, fhi; /* a finer sweep, every 2^-16 */
    double mlo, mhi; /* a medium sweep, every 2^-11 */
} approxes[] = {
    {"exp", offsetof(nd_kernels, vexp), ref_exp, EXP_ULP, 1, 2, -110, 95, -1, 1, -104, 89},
    {"log", offsetof(nd_kernels, vlog), ref_log, LOG_ULP, 1, 2, -2, 1000, 0.5, 2, 0, 16},
    {"tanh", offsetof(nd_kernels, vtanh), ref_tanh, TANH_ULP, 1, 2, -20, 20, -1, 1, -10, 10},
    {"sigmoid", offsetof(nd_kernels, vsigmoid), ref_sigmoid, SIGMOID_ULP, 1, 2, -110, 110, -1, 1, -20, 20},
    {"silu", offsetof(nd_kernels, vsilu), ref_silu, SILU_ULP, 1, 4, -110, 110, -1, 1, -20, 20},
    {"gelu", offsetof(nd_kernels, vgelu), ref_gelu, GELU_ULP, GELU_REL, 10, -16, 16, -1, 1, -16, 16},
};
#define N_APPROX (int)(sizeof approxes / sizeof approxes[0])

static unary_kernel kernel_of(const nd_kernels *k, int a) {
    unary_kernel f;
    memcpy(&f, (const char *)k + approxes[a].field, sizeof f);
    return f;
}

/* The sweep: every 1/64 of [lo, hi], every 2^-16 of [flo, fhi], every
 * 2^-11 of [mlo, mhi], 64 mantissas of every binade of both signs
 * (subnormals included), and the special values (the overflow and
 * underflow thresholds, the tanh cut, the log reduction's bounds). Returns
 * the count; xs holds at least SWEEP_MAX. */
#define SWEEP_MAX 800000
static int64_t sweep(const struct approx *ap, float *xs) {
    int64_t n = 0;
    for (double v = ap->lo; v <= ap->hi; v += 1.0 / 64) xs[n++] = (float)v;
    for (double v = ap->flo; v <= ap->fhi; v += 1.0 / 65536) xs[n++] = (float)v;
    for (double v = ap->mlo; v <= ap->mhi; v += 1.0 / 2048) xs[n++] = (float)v;
    for (int e = -149; e <= 127; e++)
        for (int m = 0; m < 64; m++) {
            float v = (float)ldexp(1.0 + m / 64.0, e);
            if (e < -126) v = (float)ldexp(1.0 + m, e); /* subnormal bit patterns */
            xs[n++] = v;
            xs[n++] = -v;
        }
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN,
                             88.0f, -88.0f, 88.72f, -88.72f, 88.7228394f,
                             88.72283f, 88.7228317f, 89.0f, -87.33654f, -87.3365479f,
                             -103.0f, -103.97f, -103.972076f, -103.972084f, -104.0f,
                             -100.0f, -105.0f, -14.0f, -14.5f, -13.3f, -9.0f, 9.0f,
                             0.625f, -0.625f, 0.62499994f, 1e-30f, -1e-30f, 1e-40f,
                             -1e-40f, 1.4e-45f, -1.4e-45f, FLT_MIN, -FLT_MIN, FLT_MAX,
                             -FLT_MAX, 1.0f, -1.0f, 0.70710677f, 0.70710683f, 1.4142135f,
                             1.4142137f, 2.0f, 0.5f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) xs[n++] = special[i];
    return n;
}

START_TEST(approximations_against_libm) {
    const nd_kernels *sets[3];
    int nsets = t_kernel_sets(sets);
    float *xs = malloc(SWEEP_MAX * sizeof(float));
    float *ys = malloc(SWEEP_MAX * sizeof(float));
    float *twin = malloc(SWEEP_MAX * sizeof(float));
    for (int a = 0; a < N_APPROX; a++) {
        int64_t n = sweep(&approxes[a], xs);
        ck_assert_int_le(n, SWEEP_MAX);
        kernel_of(&nd__kernels_scalar, a)(n, xs, twin);
        for (int s = 0; s < nsets; s++) {
            kernel_of(sets[s], a)(n, xs, ys);
            /* the SIMD sets against the twin over the same sweep */
            float far = 0;
            float far_at = 0;
            for (int64_t i = 0; i < n; i++) {
                float d = ulp_diff(ys[i], twin[i]);
                if (d > far) far = d, far_at = xs[i];
            }
            if (verbose() && s > 0)
                printf("%-8s %-6s vs twin over the sweep: max %.0f ulp at %.9g\n",
                       approxes[a].name, sets[s]->name, (double)far, (double)far_at);
            ck_assert_msg(far <= approxes[a].twin, "%s (%s): %.0f ulp from the twin at x = %.9g",
                          approxes[a].name, sets[s]->name, (double)far, (double)far_at);
            double worst = 0, rel = 0;
            float at = 0;
            for (int64_t i = 0; i < n; i++) {
                double want = approxes[a].ref(xs[i]);
                double e = ulp_error(ys[i], want);
                if (e > worst) worst = e, at = xs[i];
                if (fabs(want) >= FLT_MIN && fabs(want) <= FLT_MAX)
                    rel = fmax(rel, fabs(ys[i] - want) / fabs(want));
            }
            if (verbose())
                printf("%-8s %-6s max %.3f ulp at %.9g, relative %.3g (%lld inputs)\n",
                       approxes[a].name, sets[s]->name, worst, (double)at, rel, (long long)n);
            if (verbose()) fflush(stdout);
            ck_assert_msg(worst <= approxes[a].bound,
                          "%s (%s): %.3f ulp at x = %.9g (%a), bound %.1f", approxes[a].name,
                          sets[s]->name, worst, (double)at, (double)at, approxes[a].bound);
            ck_assert_msg(rel <= approxes[a].rel_bound, "%s (%s): relative error %.3g, bound %.3g",
                          approxes[a].name, sets[s]->name, rel, approxes[a].rel_bound);
        }
    }
    free(xs);
    free(ys);
    free(twin);
}
END_TEST

/* Values that must come out exactly: IEEE special cases and limits. */
START_TEST(approximations_special_values) {
    const nd_kernels *sets[3];
    int nsets = t_kernel_sets(sets);
    const float inf = INFINITY;
    static const struct {
        int a;
        float x, want;
    } cases[] = {
        {0, 0.0f, 1.0f}, {0, -0.0f, 1.0f}, {0, -inf, 0.0f}, {0, inf, INFINITY},
        {0, 88.7228394f, INFINITY}, {0, -104.0f, 0.0f}, {0, -1000.0f, 0.0f},
        {0, 1000.0f, INFINITY},
        {1, 1.0f, 0.0f}, {1, 0.0f, -INFINITY}, {1, -0.0f, -INFINITY},
        {1, inf, INFINITY},
        {2, 0.0f, 0.0f}, {2, 30.0f, 1.0f}, {2, -30.0f, -1.0f}, {2, inf, 1.0f},
        {2, -inf, -1.0f}, {2, 1e-30f, 1e-30f}, {2, -1e-40f, -1e-40f},
        {3, 0.0f, 0.5f}, {3, inf, 1.0f}, {3, -inf, 0.0f}, {3, 100.0f, 1.0f},
        {3, -200.0f, 0.0f},
        {4, 0.0f, 0.0f}, {4, inf, INFINITY}, {4, -inf, -0.0f}, {4, 100.0f, 100.0f},
        {4, -1000.0f, -0.0f},
        {5, 0.0f, 0.0f}, {5, inf, INFINITY}, {5, -inf, -0.0f}, {5, 10.0f, 10.0f},
        {5, -20.0f, -0.0f},
    };
    const float neg[] = {-1.0f, -1e-40f, -inf};
    for (int s = 0; s < nsets; s++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            float y;
            kernel_of(sets[s], cases[i].a)(1, &cases[i].x, &y);
            ck_assert_msg(y == cases[i].want && signbit(y) == signbit(cases[i].want),
                          "%s(%g) = %.9g (%s), expected %.9g", approxes[cases[i].a].name,
                          (double)cases[i].x, (double)y, sets[s]->name,
                          (double)cases[i].want);
        }
        /* negative zeros keep their sign through the odd functions */
        const float mz = -0.0f;
        float y;
        for (int a = 2; a < N_APPROX; a++) {
            if (a == 3) continue; /* sigmoid(-0) = 0.5 */
            kernel_of(sets[s], a)(1, &mz, &y);
            ck_assert_msg(y == 0.0f && signbit(y), "%s(-0) = %g (%s)", approxes[a].name,
                          (double)y, sets[s]->name);
        }
        for (int a = 0; a < N_APPROX; a++) {
            const float nan = NAN;
            kernel_of(sets[s], a)(1, &nan, &y);
            ck_assert_msg(isnan(y), "%s(NaN) = %g (%s)", approxes[a].name, (double)y,
                          sets[s]->name);
        }
        for (int i = 0; i < 3; i++) {
            kernel_of(sets[s], 1)(1, &neg[i], &y);
            ck_assert_msg(isnan(y), "log(%g) = %g (%s)", (double)neg[i], (double)y,
                          sets[s]->name);
        }
        /* sigma(-100) = e^-100 / (1 + e^-100) = 3.72e-44, a subnormal */
        const float m100 = -100.0f;
        kernel_of(sets[s], 3)(1, &m100, &y);
        ck_assert_msg(y > 0 && ulp_error(y, exp(-100.0)) <= 1.0,
                      "sigmoid(-100) = %g (%s)", (double)y, sets[s]->name);
    }
}
END_TEST

/* ---- SIMD against the twins --------------------------------------------- */

/* Random floats in [lo, hi] with specials sprinkled in. */
static void random_row(uint64_t seed, float *x, int64_t n, float lo, float hi) {
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -1e-40f};
    for (int64_t i = 0; i < n; i++) {
        float u = nd_rand_at(seed, 11, (uint64_t)i);
        x[i] = lo + (hi - lo) * u;
        if (nd_rand_at(seed, 12, (uint64_t)i) < 0.02f) x[i] = special[i % 7];
    }
}

static const int64_t sizes[] = {1, 7, 17, 1023};
static const int offsets[] = {0, 1, 3};

START_TEST(unary_kernels_against_twins) {
    const nd_kernels *sets[3];
    int nsets = t_kernel_sets(sets);
    const float range[N_APPROX][2] = {{-110, 95}, {-1, 200}, {-12, 12},
                                      {-120, 120}, {-120, 120}, {-16, 16}};
    float *x = malloc(1100 * sizeof(float)), *y0 = malloc(1100 * sizeof(float));
    float *y1 = malloc(1100 * sizeof(float)), *y2 = malloc(1100 * sizeof(float));
    for (int a = 0; a < N_APPROX; a++)
        for (int s = 1; s < nsets; s++) {
            float worst = 0;
            for (int si = 0; si < 4; si++)
                for (int oi = 0; oi < 3; oi++) {
                    int64_t n = sizes[si];
                    int off = offsets[oi];
                    random_row(100 + (uint64_t)(a * 16 + si * 4 + oi), x, n + off,
                               range[a][0], range[a][1]);
                    for (int64_t i = 0; i < n + off + 8; i++) y1[i] = y2[i] = 7.0f;
                    kernel_of(&nd__kernels_scalar, a)(n, x + off, y0);
                    kernel_of(sets[s], a)(n, x + off, y1 + off);
                    for (int64_t i = 0; i < n; i++) {
                        float d = ulp_diff(y1[off + i], y0[i]);
                        worst = d > worst ? d : worst;
                        ck_assert_msg(d <= approxes[a].twin, "%s (%s) n %lld: x %.9g gives %.9g, "
                                      "twin %.9g", approxes[a].name, sets[s]->name,
                                      (long long)n, (double)x[off + i],
                                      (double)y1[off + i], (double)y0[i]);
                    }
                    /* nothing written outside the row */
                    for (int64_t i = 0; i < off; i++) ck_assert(y1[i] == 7.0f);
                    for (int64_t i = n + off; i < n + off + 8; i++) ck_assert(y1[i] == 7.0f);
                    /* an element's result does not depend on where it sits */
                    for (int64_t i = 0; i < n; i++) kernel_of(sets[s], a)(1, x + off + i, y2 + i);
                    ck_assert_msg(!memcmp(y2, y1 + off, (size_t)n * sizeof(float)),
                                  "%s (%s): alone and in a row differ", approxes[a].name,
                                  sets[s]->name);
                }
            if (verbose())
                printf("%-8s %-6s vs twin: max %.0f ulp\n", approxes[a].name, sets[s]->name,
                       (double)worst);
            if (verbose()) fflush(stdout);
        }
    free(x);
    free(y0);
    free(y1);
    free(y2);
}
END_TEST

/* The AVX2 set takes a faster path for a vector whose lanes all lie in a
 * central range (no clamps, one scale) and the general path otherwise,
 * promising the same bits: a row gives the same results when a far value
 * in every vector's last lane sends each vector to the general path. The
 * ranges reach the edges of the fast paths (|x| <= 86 for the exps, 12
 * for gelu). */
START_TEST(fast_and_general_paths_agree) {
    const nd_kernels *sets[3];
    int nsets = t_kernel_sets(sets);
    enum { N = 1024 };
    const float range[N_APPROX][2] = {{-86, 86}, {0.01f, 100}, {-43, 43},
                                      {-86, 86}, {-86, 86}, {-12, 12}};
    float *x = malloc(N * sizeof(float)), *xf = malloc(N * sizeof(float));
    float *y0 = malloc(N * sizeof(float)), *y1 = malloc(N * sizeof(float));
    for (int a = 0; a < N_APPROX; a++)
        for (int s = 0; s < nsets; s++) {
            for (int64_t i = 0; i < N; i++) {
                float u = nd_rand_at(40 + (uint64_t)a, 0, (uint64_t)i);
                x[i] = range[a][0] + (range[a][1] - range[a][0]) * u;
                if (i % 64 == 0) x[i] = range[a][i % 128 ? 1 : 0]; /* the edges */
                xf[i] = i % 8 == 7 ? 200.0f : x[i];
            }
            kernel_of(sets[s], a)(N, x, y0);
            kernel_of(sets[s], a)(N, xf, y1);
            for (int64_t i = 0; i < N; i++)
                if (i % 8 != 7)
                    ck_assert_msg(!memcmp(&y0[i], &y1[i], sizeof(float)),
                                  "%s (%s): x %.9g gives %.9g on the fast path, %.9g on "
                                  "the general one", approxes[a].name, sets[s]->name,
                                  (double)x[i], (double)y0[i], (double)y1[i]);
        }
    free(x);
    free(xf);
    free(y0);
    free(y1);
}
END_TEST

typedef void (*binary_kernel)(int64_t, const float *, int64_t, const float *, int64_t,
                              float *);

START_TEST(binary_kernels_match_twins_exactly) {
    const nd_kernels *sets[3];
    int nsets = t_kernel_sets(sets);
    float a[1030], b[1030], y0[1030], y1[1030];
    for (int s = 0; s < nsets; s++) {
        const binary_kernel f[4] = {sets[s]->vadd, sets[s]->vsub, sets[s]->vmul, sets[s]->vdiv};
        for (int op = 0; op < 4; op++)
            for (int si = 0; si < 4; si++)
                for (int oi = 0; oi < 3; oi++)
                    for (int st = 0; st < 4; st++) {
                        int64_t n = sizes[si], sa = st & 1, sb = st >> 1, off = offsets[oi];
                        random_row((uint64_t)(op * 100 + si * 10 + oi), a, n + off, -3, 3);
                        random_row((uint64_t)(op * 100 + si * 10 + oi + 5000), b, n + off, -3, 3);
                        f[op](n, a + off, sa, b + off, sb, y1);
                        for (int64_t i = 0; i < n; i++) {
                            float u = a[off + i * sa], v = b[off + i * sb];
                            y0[i] = op == 0 ? u + v : op == 1 ? u - v : op == 2 ? u * v : u / v;
                        }
                        for (int64_t i = 0; i < n; i++)
                            ck_assert_msg(y0[i] == y1[i] || (isnan(y0[i]) && isnan(y1[i])),
                                          "%s op %d n %lld strides (%lld,%lld) at %lld",
                                          sets[s]->name, op, (long long)n, (long long)sa,
                                          (long long)sb, (long long)i);
                    }
    }
}
END_TEST

START_TEST(lane_reductions_match_twins_exactly) {
    const nd_kernels *sets[3];
    int nsets = t_kernel_sets(sets);
    float x[1030];
    for (int s = 0; s < nsets; s++)
        for (int si = 0; si < 4; si++)
            for (int oi = 0; oi < 3; oi++) {
                int64_t n = sizes[si];
                int off = offsets[oi];
                random_row((uint64_t)(si * 10 + oi), x, n + off, -1000, 1000);
                for (int64_t i = 0; i < n + off; i++)
                    if (!isfinite(x[i])) x[i] = (float)i; /* finite for the sums */
                /* lanes start from arbitrary values, as in a running block */
                double l0[ND_LANES], l1[ND_LANES], q0[ND_LANES], q1[ND_LANES];
                for (int j = 0; j < ND_LANES; j++) l0[j] = l1[j] = q0[j] = q1[j] = j * 0.37;
                for (int64_t i = 0; i < n; i++) {
                    l0[i % ND_LANES] += x[off + i];
                    double d = (double)x[off + i] - 1.25;
                    double sq = d * d; /* not fused, as in the kernels */
                    q0[i % ND_LANES] += sq;
                }
                sets[s]->sum_lanes(n, x + off, l1);
                sets[s]->sumsq_lanes(n, x + off, 1.25, q1);
                /* acc_double: one accumulator per element, from 1/3 j */
                double a0[1030], a1[1030];
                for (int64_t i = 0; i < n; i++) a0[i] = a1[i] = (double)i / 3.0;
                for (int64_t i = 0; i < n; i++) a0[i] += x[off + i];
                sets[s]->acc_double(n, x + off, a1);
                ck_assert_msg(!memcmp(a0, a1, (size_t)n * sizeof(double)),
                              "acc_double (%s) n %lld", sets[s]->name, (long long)n);
                ck_assert_msg(!memcmp(l0, l1, sizeof l0), "sum_lanes (%s) n %lld",
                              sets[s]->name, (long long)n);
                ck_assert_msg(!memcmp(q0, q1, sizeof q0), "sumsq_lanes (%s) n %lld",
                              sets[s]->name, (long long)n);
                /* dotdev_lanes with the row shifted by one as y, and a mean of
                 * 53 bits, so that the products round (and fusing them shows) */
                double p0[ND_LANES], p1[ND_LANES];
                for (int j = 0; j < ND_LANES; j++) p0[j] = p1[j] = j * -0.21;
                const float *yr = x + off + 1; /* y[i] = x[off + 1 + i], shifted */
                int64_t m = n > 0 ? n - 1 : 0;
                for (int64_t i = 0; i < m; i++) {
                    double d = (double)x[off + i] - 1.0 / 3.0;
                    double pr = d * (double)yr[i]; /* not fused, as in the kernels */
                    p0[i % ND_LANES] += pr;
                }
                sets[s]->dotdev_lanes(m, x + off, 1.0 / 3.0, yr, p1);
                ck_assert_msg(!memcmp(p0, p1, sizeof p0), "dotdev_lanes (%s) n %lld",
                              sets[s]->name, (long long)m);
                /* max/min with NaNs: skipped in the lanes, reported */
                random_row((uint64_t)(si * 10 + oi + 77), x, n + off, -5, 5);
                float m0[ND_LANES], m1[ND_LANES], n0[ND_LANES], n1[ND_LANES];
                for (int j = 0; j < ND_LANES; j++) {
                    m0[j] = m1[j] = -INFINITY;
                    n0[j] = n1[j] = INFINITY;
                }
                bool nan0 = false;
                for (int64_t i = 0; i < n; i++) {
                    float v = x[off + i];
                    if (v != v) nan0 = true;
                    else {
                        if (v > m0[i % ND_LANES]) m0[i % ND_LANES] = v;
                        if (v < n0[i % ND_LANES]) n0[i % ND_LANES] = v;
                    }
                }
                bool nan1 = sets[s]->max_lanes(n, x + off, m1);
                bool nan2 = sets[s]->min_lanes(n, x + off, n1);
                ck_assert_msg(!memcmp(m0, m1, sizeof m0) && nan0 == nan1,
                              "max_lanes (%s) n %lld", sets[s]->name, (long long)n);
                ck_assert_msg(!memcmp(n0, n1, sizeof n0) && nan0 == nan2,
                              "min_lanes (%s) n %lld", sets[s]->name, (long long)n);
            }
}
END_TEST

/* The SIMD sets get a next row to prefetch (hint, NaNs that must neither
 * reach the result nor change) except in the in-place call, which must
 * give the same bits without it. */
START_TEST(softmax_kernels_against_twins) {
    const nd_kernels *sets[3];
    int nsets = t_kernel_sets(sets);
    float x[1030], y0[1030], y1[1030], hint[1030];
    for (int i = 0; i < 1030; i++) hint[i] = NAN;
    for (int s = 1; s < nsets; s++) {
        double worst = 0, worst_log = 0;
        for (int si = 0; si < 4; si++)
            for (int oi = 0; oi < 3; oi++) {
                int64_t n = sizes[si];
                int off = offsets[oi];
                for (int64_t i = 0; i < n + off; i++)
                    x[i] = 30.0f * (nd_rand_at(si * 10 + (uint64_t)oi, 5, (uint64_t)i) - 0.5f);
                nd__kernels_scalar.softmax(n, x + off, y0, NULL);
                sets[s]->softmax(n, x + off, y1, hint + off);
                double total = 0;
                for (int64_t i = 0; i < n; i++) {
                    total += y1[i];
                    worst = fmax(worst, ulp_diff(y1[i], y0[i]));
                    ck_assert_msg(ulp_diff(y1[i], y0[i]) <= SOFTMAX_TWIN_ULP,
                                  "softmax (%s) n %lld at %lld: %.9g, twin %.9g",
                                  sets[s]->name, (long long)n, (long long)i, (double)y1[i],
                                  (double)y0[i]);
                }
                ck_assert_msg(fabs(total - 1.0) < 1e-5, "softmax sums to %.9g", total);
                nd__kernels_scalar.log_softmax(n, x + off, y0, NULL);
                sets[s]->log_softmax(n, x + off, y1, hint + off);
                for (int64_t i = 0; i < n; i++) {
                    worst_log = fmax(worst_log, fabs((double)y1[i] - y0[i]) / fmax(1.0, fabs(y0[i])));
                    ck_assert_msg(fabs((double)y1[i] - y0[i]) <= LOG_SOFTMAX_TWIN_ABS * fmax(1.0, fabs(y0[i])),
                                  "log_softmax (%s) n %lld at %lld: %.9g, twin %.9g",
                                  sets[s]->name, (long long)n, (long long)i, (double)y1[i],
                                  (double)y0[i]);
                }
                /* in place */
                memcpy(y1, x + off, (size_t)n * sizeof(float));
                sets[s]->softmax(n, y1, y1, NULL);
                sets[s]->softmax(n, x + off, y0, hint + off);
                ck_assert(!memcmp(y0, y1, (size_t)n * sizeof(float)));
                for (int i = 0; i < 1030; i++) ck_assert(isnan(hint[i]));
            }
        if (verbose())
            printf("softmax  %-6s vs twin: max %.0f ulp; log_softmax %.3g\n", sets[s]->name,
                   worst, worst_log);
    }
}
END_TEST

/* ---- through the tensor ops ---------------------------------------------- */

static bool same_bits(const nd_tensor *a, const nd_tensor *b) {
    if (!nd_same_shape(a, b)) return false;
    nd_tensor *ca = nd_contiguous(a), *cb = nd_contiguous(b);
    bool same = !memcmp(nd_data(ca), nd_data(cb), (size_t)nd_numel(a) * sizeof(float));
    nd_free(ca);
    nd_free(cb);
    return same;
}

typedef nd_tensor *(*unary_op)(const nd_tensor *);
static const unary_op unary_ops[N_APPROX] = {nd_exp, nd_log, nd_tanh, nd_sigmoid,
                                             nd_silu, nd_gelu};

/* the names of the kernel sets this CPU has, for nd_set_kernels */
static int set_names(const char **names) {
    const nd_kernels *sets[3];
    int n = t_kernel_sets(sets);
    for (int i = 0; i < n; i++) names[i] = sets[i]->name;
    return n;
}

START_TEST(strided_and_contiguous_give_the_same_bits) {
    const char *names[3];
    int nsets = set_names(names);
    const char *initial = nd_kernels_name();
    nd_error err;
    for (int s = 0; s < nsets; s++) {
        ck_assert_int_eq(nd_set_kernels(names[s], &err), ND_OK);
        /* [7, 37] read through a transpose and a step of 3 */
        nd_tensor *base = t_uniform(31, ND_SHAPE(111, 7), -6.0f, 6.0f);
        nd_tensor *t = nd_transpose(base, 0, 1);
        nd_tensor *x = nd_slice(t, 1, 1, ND_END, 3);
        nd_tensor *xc = nd_contiguous(x);
        ck_assert(!nd_is_contiguous(x));
        for (int a = 0; a < N_APPROX; a++) {
            nd_tensor *y = unary_ops[a](x), *yc = unary_ops[a](xc);
            ck_assert_msg(same_bits(y, yc), "%s (%s): strided input differs",
                          approxes[a].name, names[s]);
            /* a broadcast input (stride 0) too */
            nd_tensor *col = nd_slice(xc, 1, 0, 1, 1);
            nd_tensor *e = nd_expand(col, ND_SHAPE(7, 37));
            nd_tensor *ye = unary_ops[a](e), *yec = unary_ops[a](nd_contiguous(e));
            ck_assert_msg(same_bits(ye, yec), "%s (%s): broadcast input differs",
                          approxes[a].name, names[s]);
        }
        /* per-channel and scalar broadcasts against the expanded copies */
        nd_tensor *img = t_uniform(32, ND_SHAPE(2, 3, 5, 7), -2.0f, 2.0f);
        nd_tensor *ch = t_uniform(33, ND_SHAPE(1, 3, 1, 1), 0.5f, 2.0f);
        nd_tensor *chx = nd_contiguous(nd_expand(ch, ND_SHAPE(2, 3, 5, 7)));
        nd_tensor *(*const bin[4])(const nd_tensor *, const nd_tensor *) = {nd_add, nd_sub,
                                                                              nd_mul, nd_div};
        for (int op = 0; op < 4; op++) {
            ck_assert(same_bits(bin[op](img, ch), bin[op](img, chx)));
            ck_assert(same_bits(bin[op](ch, img), bin[op](chx, img)));
            ck_assert(same_bits(bin[op](x, xc), bin[op](xc, xc)));
        }
        nd_tensor *three = nd_full(ND_SHAPE(7, 37), 3.0f);
        ck_assert(same_bits(nd_add_scalar(x, 3.0f), nd_add(xc, three)));
        ck_assert(same_bits(nd_sub_scalar(x, 3.0f), nd_sub(xc, three)));
        ck_assert(same_bits(nd_rsub_scalar(x, 3.0f), nd_sub(three, xc)));
        ck_assert(same_bits(nd_mul_scalar(x, 3.0f), nd_mul(xc, three)));
        ck_assert(same_bits(nd_div_scalar(x, 3.0f), nd_div(xc, three)));
        ck_assert(same_bits(nd_div_scalar(xc, 3.0f), nd_div(x, nd_scalar(3.0f))));
        /* reductions and softmax along each axis of a strided tensor */
        nd_tensor *big = t_uniform(34, ND_SHAPE(40, 9, 60), -3.0f, 3.0f);
        nd_tensor *bp = nd_permute(big, ND_AXES(2, 0, 1)); /* [60, 40, 9] */
        nd_tensor *bs = nd_slice(bp, 0, 2, ND_END, 3);     /* [20, 40, 9] */
        nd_tensor *bsc = nd_contiguous(bs);
        for (int axis = 0; axis < 3; axis++) {
            int ax[1] = {axis};
            ck_assert(same_bits(nd_sum(bs, ax, 1, false), nd_sum(bsc, ax, 1, false)));
            ck_assert(same_bits(nd_var(bs, ax, 1, 1, false), nd_var(bsc, ax, 1, 1, false)));
            ck_assert(same_bits(nd_max(bs, ax, 1, false), nd_max(bsc, ax, 1, false)));
            ck_assert(same_bits(nd_softmax(bs, axis), nd_softmax(bsc, axis)));
            ck_assert(same_bits(nd_log_softmax(bs, axis), nd_log_softmax(bsc, axis)));
        }
        ck_assert(same_bits(nd_sum(bs, NULL, 0, false), nd_sum(bsc, NULL, 0, false)));
        ck_assert(same_bits(nd_min(bs, ND_AXES(0, 2), true), nd_min(bsc, ND_AXES(0, 2), true)));
        ck_assert(same_bits(nd_mean(bs, ND_AXES(2, 0), true), nd_mean(bsc, ND_AXES(2, 0), true)));
    }
    ck_assert_int_eq(nd_set_kernels(initial, &err), ND_OK);
}
END_TEST

/* The ops go through the active set: the tensor results are the kernel's. */
START_TEST(ops_use_the_active_kernels) {
    nd_tensor *x = t_uniform(35, ND_SHAPE(1001), -20.0f, 20.0f);
    const nd_kernels *k = &nd__kernels_scalar;
    nd_error err;
    const char *initial = nd_kernels_name();
    ck_assert_int_eq(nd_set_kernels("scalar", &err), ND_OK);
    float *want = malloc(1001 * sizeof(float));
    for (int a = 0; a < N_APPROX; a++) {
        nd_tensor *y = unary_ops[a](x);
        kernel_of(k, a)(1001, nd_data(x), want);
        ck_assert_msg(!memcmp(nd_data(y), want, 1001 * sizeof(float)), "%s",
                      approxes[a].name);
    }
    nd_tensor *s = nd_softmax(x, 0);
    k->softmax(1001, nd_data(x), want, NULL);
    ck_assert(!memcmp(nd_data(s), want, 1001 * sizeof(float)));
    free(want);
    ck_assert_int_eq(nd_set_kernels(initial, &err), ND_OK);
}
END_TEST

/* Sums of a known answer: 1..n exactly, and cancellation in double. */
START_TEST(sums_are_exact_where_double_is) {
    const int64_t n = 300001; /* several blocks, a ragged tail */
    nd_tensor *x = nd_arange(1, (double)n + 1, 1);
    nd_tensor *s = nd_sum(x, NULL, 0, false);
    /* n (n + 1) / 2 = 45000450001, exact in double, rounded to float */
    ck_assert_float_eq(nd_item(s), (float)(45000450001.0));
    nd_tensor *m = nd_max(x, NULL, 0, false);
    ck_assert_float_eq(nd_item(m), (float)n);
    nd_data(x)[123456] = NAN;
    ck_assert(isnan(nd_item(nd_max(x, NULL, 0, false))));
    ck_assert(isnan(nd_item(nd_min(x, NULL, 0, false))));
    ck_assert(isnan(nd_item(nd_sum(x, NULL, 0, false))));
}
END_TEST

START_TEST(same_bits_for_one_two_three_threads) {
    const char *names[3];
    int nsets = set_names(names);
    const char *initial = nd_kernels_name();
    nd_error err;
    int saved = nd_get_num_threads();
    for (int s = 0; s < nsets; s++) {
        ck_assert_int_eq(nd_set_kernels(names[s], &err), ND_OK);
        nd_tensor *big = t_uniform(41, ND_SHAPE(300007), -5.0f, 5.0f);
        nd_tensor *mat = t_uniform(42, ND_SHAPE(300, 1003), -5.0f, 5.0f);
        nd_tensor *row = t_uniform(43, ND_SHAPE(1003), -1.0f, 1.0f);
        nd_tensor *ref[14] = {NULL};
        for (int threads = 1; threads <= 3; threads++) {
            nd_set_num_threads(threads);
            nd_tensor *y[14] = {
                nd_sum(big, NULL, 0, false),   nd_var(big, NULL, 0, 1, false),
                nd_max(big, NULL, 0, false),   nd_sum(mat, ND_AXES(1), false),
                nd_mean(mat, ND_AXES(0), false), nd_var(mat, ND_AXES(-1), 0, true),
                nd_min(mat, ND_AXES(1), false), nd_softmax(mat, 1),
                nd_log_softmax(mat, 1),        nd_softmax(mat, 0),
                nd_gelu(big),                  nd_add(mat, row),
                nd_mul_scalar(big, 1.5f),      nd_exp(mat),
            };
            for (int i = 0; i < 14; i++) {
                if (!ref[i]) ref[i] = y[i];
                else ck_assert_msg(same_bits(ref[i], y[i]), "result %d (%s) differs with "
                                   "%d threads", i, names[s], threads);
            }
        }
    }
    nd_set_num_threads(saved);
    ck_assert_int_eq(nd_set_kernels(initial, &err), ND_OK);
}
END_TEST

TCase *tcase_vmath(void) {
    TCase *tc = nd_test_case("vmath");
    tcase_add_test(tc, approximations_against_libm);
    tcase_add_test(tc, approximations_special_values);
    tcase_add_test(tc, unary_kernels_against_twins);
    tcase_add_test(tc, fast_and_general_paths_agree);
    tcase_add_test(tc, binary_kernels_match_twins_exactly);
    tcase_add_test(tc, lane_reductions_match_twins_exactly);
    tcase_add_test(tc, softmax_kernels_against_twins);
    tcase_add_test(tc, strided_and_contiguous_give_the_same_bits);
    tcase_add_test(tc, ops_use_the_active_kernels);
    tcase_add_test(tc, sums_are_exact_where_double_is);
    tcase_add_test(tc, same_bits_for_one_two_three_threads);
    return tc;
}
