/* The plain-C twins of the vectorized kernels: elementwise exp, log, tanh,
 * sigmoid, silu and gelu, the binary arithmetic rows, the lane reductions
 * and softmax. They are the specification: vmath_avx2.c and vmath_neon.c
 * run the same algorithms, step for step, on 8 or 4 lanes.
 *
 * No product here is fused with a sum: every a*b + c is written as two
 * statements, which neither gcc in C11 mode nor clang contracts into an
 * FMA. Each statement rounds its one operation to float (and constants
 * are floats, see vmath.h), also where float expressions are evaluated
 * wider (s390x). So this file rounds the same way on every machine
 * (docs/PORTABILITY.md). The SIMD files do use FMA in the polynomials;
 * their results may differ from these by an ulp or two
 * (tests/tensor/test_vmath.c states and checks by how much).
 * The arithmetic rows and the reductions use no FMA anywhere and give the
 * same bits in every kernel set.
 *
 * Error bounds against libm in double (tests/tensor/test_vmath.c asserts
 * them), in ulps of the float nearest the exact result (2^-149 for
 * subnormal results). Measured maxima over the tests' sweep (every 1/64
 * over the domain, every 2^-11 over the central part, every 2^-16 in
 * [-1, 1], 64 values in every binade of both signs, and the specials),
 * here / with FMA (AVX2; NEON matches it):
 *
 *   exp      2 ulp    (0.95 / 0.97)  0 below -103.97, +inf above 88.72
 *   log      2 ulp    (0.87 / 0.84)  log(+-0) = -inf, log(x < 0) = NaN,
 *                                    log(+inf) = +inf, subnormals in full
 *   tanh     2 ulp    (1.23 / 1.23)  tanh(+-0) = +-0
 *   sigmoid  3 ulp    (2.13 / 2.13)  subnormal results in full:
 *                                    sigma(-100) = 3.7e-44
 *   silu     4 ulp    (2.99 / 2.99)  silu(-inf) = -0 (the limit)
 *   gelu     relative 5e-7 (3.7e-7 / 3.7e-7), which is 7 ulp (5.3 / 5.6)
 *            at the worst place in a binade; subnormal results to
 *            gelu(-14.1); gelu(-inf) = -0
 *
 * NaN gives NaN everywhere. The SIMD sets, with their FMAs, differ from
 * these twins by at most 1 ulp for exp, log and tanh, 2 for sigmoid, 3
 * for silu and 8 for gelu (from its rational function, below), measured
 * over the sweep and every 2^-16 of [-16, 16] for gelu; the tests allow
 * 2 (exp to sigmoid), 4 (silu) and 10 (gelu).
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "vmath.h"

static inline uint32_t bits_of(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float float_of(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* a b + c with two roundings, as the twins define it */
static inline float mul_add(float a, float b, float c) {
    float p = a * b;
    return p + c;
}

/* ---- exp ---------------------------------------------------------------- */

/* e^(hi + lo) = p 2^n1 2^n2, with |lo| small (0 for exp itself).
 *
 *   n = round((hi + lo) log2 e)          (round half even, via 1.5 2^23)
 *   r = (hi - n ln2_hi) - n ln2_lo + lo  (the first difference is exact)
 *   p = 1 + r + r^2 E(r) ~ e^r,          |r| <= 0.347
 *
 * E is the degree-4 minimax fit of (e^r - 1 - r) / r^2 (relative error of
 * p 3e-9 in exact arithmetic), so what remains is the rounding of r and
 * of the last two additions: about one ulp. The scale 2^n is applied as
 * two powers of two, n1 = trunc(n/2) and n2 = n - n1, each a normal
 * float for n in [-174, 128]: p 2^n1 is exact and only the last product
 * rounds, which gives the subnormal results and the overflow to +inf
 * correctly. A NaN input makes r and p NaN; no integer conversion of a
 * float is done, so no input is undefined behaviour. */
typedef struct {
    float p, s1, s2;
} exp_parts;

static inline exp_parts exp_split(float hi, float lo) {
    float x = hi;
    if (ND_EXP_LO > x) x = ND_EXP_LO; /* a NaN passes both */
    if (ND_EXP_HI < x) x = ND_EXP_HI;
    float t = x + lo;
    t = t * ND_LOG2E;
    float tm = t + ND_EXP_ROUND;
    float nf = tm - ND_EXP_ROUND;
    int32_t n = (int32_t)(bits_of(tm) - bits_of(ND_EXP_ROUND));
    float h = nf * ND_LN2_HI; /* exact */
    float r = x - h;          /* exact */
    float c = nf * ND_LN2_LO;
    r = r - c;
    r = r + lo;
    float q = mul_add(ND_EXP_E4, r, ND_EXP_E3);
    q = mul_add(q, r, ND_EXP_E2);
    q = mul_add(q, r, ND_EXP_E1);
    q = mul_add(q, r, ND_EXP_E0);
    float r2 = r * r;
    float p = mul_add(r2, q, r);
    p = p + 1.0f;
    int32_t n1 = n / 2, n2 = n - n1;
    exp_parts e = {p, float_of((uint32_t)(n1 + 127) << 23),
                   float_of((uint32_t)(n2 + 127) << 23)};
    return e;
}

static inline float exp1(float x) {
    exp_parts e = exp_split(x, 0.0f);
    float y = e.p * e.s1;
    return y * e.s2;
}

void nd__exp_scalar(int64_t n, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = exp1(x[i]);
}

/* ---- log ---------------------------------------------------------------- */

/* x = 2^k m, m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact):
 *
 *   log x = k ln2_hi + (f + (f^2 L(f) + k ln2_lo))
 *
 * L is the degree-8 minimax fit of (log1p(f) - f) / f^2 (relative error
 * 4e-9). k ln2_hi is exact, and f enters unrounded, so near x = 1 the
 * result keeps full relative accuracy. Subnormal x are scaled by 2^23
 * first. Zero, negatives, +inf and NaN take the IEEE values. */
static inline float log1(float x) {
    if (!(x > 0.0f && x < INFINITY)) return x == 0.0f ? -INFINITY : (x < 0.0f ? NAN : x);
    int32_t kadj = 0;
    if (x < FLT_MIN) { /* subnormal */
        x = x * 8388608.0f;
        kadj = -23;
    }
    uint32_t ix = bits_of(x);
    uint32_t tmp = ix - ND_LOG_OFF;
    /* k = tmp >> 23 as a signed (arithmetic) shift, spelled out */
    int32_t k = (int32_t)(tmp >> 23) - ((tmp >> 31) ? 512 : 0) + kadj;
    float m = float_of(ix - (tmp & 0xff800000u));
    float f = m - 1.0f;
    float q = mul_add(ND_LOG_L8, f, ND_LOG_L7);
    q = mul_add(q, f, ND_LOG_L6);
    q = mul_add(q, f, ND_LOG_L5);
    q = mul_add(q, f, ND_LOG_L4);
    q = mul_add(q, f, ND_LOG_L3);
    q = mul_add(q, f, ND_LOG_L2);
    q = mul_add(q, f, ND_LOG_L1);
    q = mul_add(q, f, ND_LOG_L0);
    float kf = (float)k;
    float f2 = f * f;
    float t = f2 * q;
    t = mul_add(kf, ND_LN2_LO, t);
    t = t + f;
    return mul_add(kf, ND_LN2_HI, t);
}

void nd__log_scalar(int64_t n, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = log1(x[i]);
}

/* ---- tanh --------------------------------------------------------------- */

/* a = |x|, sign restored at the end (tanh is odd; -0 stays -0):
 *
 *   a <  0.625:  a + a (a^2 T(a^2))     no cancellation near 0
 *   a >= 0.625:  1 - 2 / (e^{2a} + 1)   tanh(0.625) = 0.55, so the
 *                                       subtraction loses under a bit
 *
 * T is the degree-4 minimax fit of (tanh(a) - a) / a^3 in a^2 (relative
 * error 5e-9). e^{2a} overflows to +inf beyond 44, giving exactly 1. */
static inline float tanh1(float x) {
    float a = fabsf(x), y;
    if (a < ND_TANH_CUT) {
        float a2 = a * a;
        float q = mul_add(ND_TANH_T4, a2, ND_TANH_T3);
        q = mul_add(q, a2, ND_TANH_T2);
        q = mul_add(q, a2, ND_TANH_T1);
        q = mul_add(q, a2, ND_TANH_T0);
        float t = a2 * q;
        y = mul_add(a, t, a);
    } else {
        float e = exp1(a + a);
        float d = e + 1.0f, q = 2.0f / d;
        y = 1.0f - q;
    }
    return float_of(bits_of(y) | (bits_of(x) & 0x80000000u));
}

void nd__tanh_scalar(int64_t n, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = tanh1(x[i]);
}

/* ---- sigmoid and silu --------------------------------------------------- */

/* s = e^{-|x|} in (0, 1]: sigma(x) = 1 / (1 + s) for x >= 0 and s / (1 + s)
 * for x < 0. Nothing overflows, and for x < 0 the result keeps the
 * relative accuracy of s, down to the subnormals: sigma(-100) = e^-100. */
static inline float sigmoid1(float x) {
    float s = exp1(-fabsf(x));
    float d = 1.0f + s;
    return (x >= 0.0f ? 1.0f : s) / d;
}

void nd__sigmoid_scalar(int64_t n, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = sigmoid1(x[i]);
}

/* silu(x) = x sigma(x) = x / (1 + s) for x >= 0 and x s / (1 + s) for
 * x < 0, s = e^{-|x|} = p 2^n1 2^n2. For x < 0 the numerator is formed as
 * ((x p) 2^n1) 2^n2, so that below x = -87 (where s is subnormal but
 * x s need not be) it is rounded once, not as a subnormal s scaled up
 * by |x|. x is floored at -200 there (see ND_SILU_XMIN). */
static inline float silu1(float x) {
    exp_parts e = exp_split(-fabsf(x), 0.0f);
    float s = e.p * e.s1;
    s = s * e.s2;
    float d = 1.0f + s;
    if (x >= 0.0f) return x / d;
    float num = ND_SILU_XMIN > x ? ND_SILU_XMIN : x; /* a NaN stays */
    num = num * e.p;
    num = num * e.s1;
    num = num * e.s2;
    return num / d;
}

void nd__silu_scalar(int64_t n, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = silu1(x[i]);
}

/* ---- gelu --------------------------------------------------------------- */

/* R(a) = P(a) / D(a) */
static inline float mills(float a) {
    float p = mul_add(ND_GELU_P4, a, ND_GELU_P3);
    p = mul_add(p, a, ND_GELU_P2);
    p = mul_add(p, a, ND_GELU_P1);
    p = mul_add(p, a, ND_GELU_P0);
    float d = mul_add(ND_GELU_D5, a, ND_GELU_D4);
    d = mul_add(d, a, ND_GELU_D3);
    d = mul_add(d, a, ND_GELU_D2);
    d = mul_add(d, a, ND_GELU_D1);
    d = mul_add(d, a, 1.0f);
    return p / d;
}

/* gelu(x) = x Phi(x), Phi the standard normal CDF. With a = |x| and
 * Q(a) = 1 - Phi(a) = erfc(a / sqrt2) / 2:
 *
 *   x >= 0:  gelu = x - x Q(a)         Q <= 1/2, no cancellation
 *   x <  0:  gelu = x Q(a)             relative accuracy to the end
 *
 * Q(a) = e^{-a^2/2} R(a), and R (a Mills ratio, smooth, 1/2 at 0 and
 * about 1 / (a sqrt(2 pi)) for large a) is the rational minimax fit
 * P(a) / D(a) of degrees 4 and 5 on [0, 14.5] (relative error 1.2e-8).
 * All its coefficients are positive, so no step cancels, but its nine
 * Horner steps round nine times (eighteen here, without FMA): that is
 * most of gelu's error, up to 4e-7 of R. Evaluating R in double would
 * bring gelu to 2.5 ulp but cost half as much again in the SIMD sets
 * (half as many double lanes per instruction), and gelu is already the
 * one op whose arithmetic, not memory, sets its speed; so float.
 *
 * e^{-a^2/2} needs -a^2/2 to more than float precision: a = ah + al with
 * ah the top 12 bits of a, so a^2 = ah^2 + (a + ah) al, where ah^2 is
 * exact and the second term is small; exp_split takes the two parts (the
 * SIMD sets instead let one FMA form -a (a/2) - n ln2_hi exactly before
 * its single rounding).
 *
 * Up to a = ND_GELU_CUT the factors stay far from underflow (e^{-72} and
 * |gelu(-12)| > 1e-32 are normal), so E = p 2^n1 2^n2 is exact and
 * gelu = x - x (R E) or x (R E), three roundings. Beyond the cut, x > 0
 * gives x itself (Q(12) < 2^-108: x - x Q rounds to x), and x < 0
 * multiplies in the order x R 2^n1 p 2^n2, so that a subnormal result is
 * rounded once, at the end. */
static inline exp_parts gelu_exp(float a) { /* e^{-a^2/2} */
    float ah = float_of(bits_of(a) & ND_GELU_SPLIT);
    float al = a - ah;
    float hi = ah * ah;
    hi = hi * -0.5f;
    float lo = a + ah;
    lo = lo * al;
    lo = lo * -0.5f;
    return exp_split(hi, lo);
}

static inline float gelu1(float x) {
    float a = fabsf(x);
    if (a <= ND_GELU_CUT) {
        exp_parts e = gelu_exp(a);
        float ex = e.p * e.s1; /* exact */
        ex = ex * e.s2;        /* exact */
        float q = mills(a) * ex;
        float xq = x * q;
        return signbit(x) ? xq : x - xq; /* -0 gives -0 */
    }
    if (!(x < 0.0f)) return x; /* x > ND_GELU_CUT, +inf and NaN */
    a = a < ND_GELU_AMAX ? a : ND_GELU_AMAX;
    float xn = -ND_GELU_AMAX > x ? -ND_GELU_AMAX : x;
    exp_parts e = gelu_exp(a);
    float t = xn * mills(a);
    t = t * e.s1; /* exact */
    t = t * e.p;
    return t * e.s2;
}

void nd__gelu_scalar(int64_t n, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = gelu1(x[i]);
}

/* ---- binary arithmetic -------------------------------------------------- */

/* y[i] = a[i sa] op b[i sb] with strides 0 or 1: the same IEEE operation
 * in every kernel set, so the same bits. */
#define BINARY(name, op)                                                       \
    void nd__##name##_scalar(int64_t n, const float *a, int64_t sa,            \
                             const float *b, int64_t sb, float *y) {           \
        for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] op b[i * sb];         \
    }
BINARY(add, +)
BINARY(sub, -)
BINARY(mul, *)
BINARY(div, /)

/* ---- lane reductions ---------------------------------------------------- */

/* lanes[i % 16] += x[i], in double: every float is exact in double, and
 * the sixteen partial sums are each formed in order. */
void nd__sum_lanes_scalar(int64_t n, const float *x, double *lanes) {
    for (int64_t i = 0; i < n; i++) lanes[i % ND_LANES] += x[i];
}

/* acc[i] += x[i], in double */
void nd__acc_double_scalar(int64_t n, const float *x, double *acc) {
    for (int64_t i = 0; i < n; i++) acc[i] += x[i];
}

/* lanes[i % 16] += (x[i] - mean)^2, in double */
void nd__sumsq_lanes_scalar(int64_t n, const float *x, double mean, double *lanes) {
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - mean;
        double sq = d * d;
        lanes[i % ND_LANES] += sq;
    }
}

/* lanes[i % 16] += (x[i] - mean) y[i], in double */
void nd__dotdev_lanes_scalar(int64_t n, const float *x, double mean, const float *y,
                             double *lanes) {
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - mean;
        double p = d * (double)y[i];
        lanes[i % ND_LANES] += p;
    }
}

/* lanes[i % 16] = x[i] > lane ? x[i] : lane, NaNs skipped; returns whether
 * a NaN was seen (the caller makes the result NaN then). */
bool nd__max_lanes_scalar(int64_t n, const float *x, float *lanes) {
    bool nan = false;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (v != v) nan = true;
        else if (v > lanes[i % ND_LANES]) lanes[i % ND_LANES] = v;
    }
    return nan;
}

bool nd__min_lanes_scalar(int64_t n, const float *x, float *lanes) {
    bool nan = false;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (v != v) nan = true;
        else if (v < lanes[i % ND_LANES]) lanes[i % ND_LANES] = v;
    }
    return nan;
}

/* ---- softmax ------------------------------------------------------------ */

/* The maximum of a row, NaNs skipped (a NaN then spreads through the sum);
 * -inf for an empty row. */
static float row_max(int64_t n, const float *x) {
    float l[ND_LANES];
    for (int j = 0; j < ND_LANES; j++) l[j] = -INFINITY;
    nd__max_lanes_scalar(n, x, l);
    return nd__combine_max(l);
}

/* e_i = e^{x_i - m} for the row, stored to y when y is not NULL, and
 * their sum in sixteen double lanes, lane i % 16 as in the reductions,
 * except that each full block of 32 is first summed in float: lane j < 8
 * gets (e_{i+j} + e_{i+16+j}) + (e_{i+8+j} + e_{i+24+j}). Two roundings
 * of sums of positive numbers cost at most 2^-23 of the sum, and the SIMD
 * sets convert a quarter as many floats to double. */
static void exp_sum(int64_t n, const float *x, float m, float *y, double *l) {
    for (int j = 0; j < ND_LANES; j++) l[j] = 0.0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        float e[32];
        for (int j = 0; j < 32; j++) {
            e[j] = exp1(x[i + j] - m);
            if (y) y[i + j] = e[j];
        }
        for (int j = 0; j < 8; j++) {
            float a = e[j] + e[16 + j], b = e[8 + j] + e[24 + j];
            float block = a + b;
            l[j] += block;
        }
    }
    for (; i < n; i++) {
        float e = exp1(x[i] - m);
        if (y) y[i] = e;
        l[i % ND_LANES] += e;
    }
}

/* y_i = e^{x_i - m} / sum_j e^{x_j - m}, m = max_j x_j, scaled by the
 * float 1/sum. `next` only tells the SIMD sets what to prefetch. */
void nd__softmax_scalar(int64_t n, const float *x, float *y, const float *next) {
    (void)next;
    double l[ND_LANES];
    exp_sum(n, x, row_max(n, x), y, l);
    float inv = (float)(1.0 / nd__combine_lanes(l));
    for (int64_t i = 0; i < n; i++) y[i] = y[i] * inv;
}

/* y_i = (x_i - m) - log(sum_j e^{x_j - m}): x_i - m is formed first, so
 * the result keeps the precision of the differences when |x| is large */
void nd__log_softmax_scalar(int64_t n, const float *x, float *y, const float *next) {
    (void)next;
    float m = row_max(n, x);
    double l[ND_LANES];
    exp_sum(n, x, m, NULL, l);
    float ls = (float)log(nd__combine_lanes(l));
    for (int64_t i = 0; i < n; i++) {
        float d = x[i] - m;
        y[i] = d - ls;
    }
}
