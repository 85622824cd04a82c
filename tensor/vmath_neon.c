/* NEON versions of the kernels in vmath_scalar.c (aarch64, where Advanced
 * SIMD and FMA are always present), four floats at a time.
 *
 * Each function follows its twin step for step; the comments there give
 * the math and the error bounds. As in vmath_avx2.c the polynomials use
 * FMA, so the approximations may differ from the twins by the ulps
 * vmath_scalar.c states; the arithmetic rows and the lane reductions give the twins' bits. The
 * selections a < b ? a : b are spelled with compare and select, because
 * NEON's min and max treat NaNs and signed zeros differently from C's
 * conditional. Rows finish with one padded vector, so an element's result
 * does not depend on where it sits in a row. */
#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "internal.h"
#include "kernels.h"
#include "vmath.h"

typedef float32x4_t v4;

static inline v4 dup(float v) { return vdupq_n_f32(v); }
/* c ? a : b, lane by lane */
static inline v4 sel(uint32x4_t c, v4 a, v4 b) { return vbslq_f32(c, a, b); }
static inline uint32x4_t bits(v4 x) { return vreinterpretq_u32_f32(x); }
static inline v4 flt(uint32x4_t u) { return vreinterpretq_f32_u32(u); }
/* a + b c */
static inline v4 fma4(v4 a, v4 b, v4 c) { return vfmaq_f32(a, b, c); }

/* ---- exp ---------------------------------------------------------------- */

typedef struct {
    v4 p, s1, s2;
} exp4_parts;

static inline v4 pow2i(int32x4_t n) {
    return flt(vreinterpretq_u32_s32(vshlq_n_s32(vaddq_s32(n, vdupq_n_s32(127)), 23)));
}

static inline exp4_parts exp4_split(v4 hi, v4 lo) {
    v4 x = sel(vcgtq_f32(dup(ND_EXP_LO), hi), dup(ND_EXP_LO), hi);
    x = sel(vcltq_f32(dup(ND_EXP_HI), x), dup(ND_EXP_HI), x);
    v4 t = vmulq_f32(vaddq_f32(x, lo), dup(ND_LOG2E));
    v4 nf = vrndnq_f32(t);
    int32x4_t n = vcvtq_s32_f32(nf);
    v4 r = vfmsq_f32(x, nf, dup(ND_LN2_HI));
    r = vfmsq_f32(r, nf, dup(ND_LN2_LO));
    r = vaddq_f32(r, lo);
    v4 q = fma4(dup(ND_EXP_E3), dup(ND_EXP_E4), r);
    q = fma4(dup(ND_EXP_E2), q, r);
    q = fma4(dup(ND_EXP_E1), q, r);
    q = fma4(dup(ND_EXP_E0), q, r);
    v4 p = fma4(r, vmulq_f32(r, r), q);
    p = vaddq_f32(p, dup(1.0f));
    /* n1 = trunc(n / 2), as in C */
    int32x4_t n1 = vshrq_n_s32(vaddq_s32(n, vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_s32(n), 31))), 1);
    int32x4_t n2 = vsubq_s32(n, n1);
    exp4_parts e = {p, pow2i(n1), pow2i(n2)};
    return e;
}

static inline v4 exp4(v4 x) {
    exp4_parts e = exp4_split(x, vdupq_n_f32(0.0f));
    return vmulq_f32(vmulq_f32(e.p, e.s1), e.s2);
}

#define UNARY_ROW(name, f4)                                                    \
    void nd__##name##_neon(int64_t n, const float *x, float *y) {              \
        int64_t i = 0;                                                         \
        for (; i + 4 <= n; i += 4) vst1q_f32(y + i, f4(vld1q_f32(x + i)));     \
        if (i < n) {                                                           \
            float buf[4] = {0};                                                \
            size_t bytes = (size_t)(n - i) * sizeof(float);                    \
            memcpy(buf, x + i, bytes);                                         \
            vst1q_f32(buf, f4(vld1q_f32(buf)));                                \
            memcpy(y + i, buf, bytes);                                         \
        }                                                                      \
    }

UNARY_ROW(exp, exp4)

/* ---- log ---------------------------------------------------------------- */

static inline v4 log4(v4 x) {
    v4 zero = dup(0.0f);
    uint32x4_t regular = vandq_u32(vcgtq_f32(x, zero), vcltq_f32(x, dup(INFINITY)));
    uint32x4_t sub = vcltq_f32(x, dup(1.17549435e-38f));
    v4 xs = sel(sub, vmulq_f32(x, dup(8388608.0f)), x);
    v4 kadj = sel(sub, dup(-23.0f), zero);
    uint32x4_t ix = bits(xs);
    uint32x4_t tmp = vsubq_u32(ix, vdupq_n_u32(ND_LOG_OFF));
    int32x4_t k = vshrq_n_s32(vreinterpretq_s32_u32(tmp), 23);
    uint32x4_t iz = vsubq_u32(ix, vandq_u32(tmp, vdupq_n_u32(0xff800000u)));
    v4 f = vsubq_f32(flt(iz), dup(1.0f));
    v4 q = fma4(dup(ND_LOG_L7), dup(ND_LOG_L8), f);
    q = fma4(dup(ND_LOG_L6), q, f);
    q = fma4(dup(ND_LOG_L5), q, f);
    q = fma4(dup(ND_LOG_L4), q, f);
    q = fma4(dup(ND_LOG_L3), q, f);
    q = fma4(dup(ND_LOG_L2), q, f);
    q = fma4(dup(ND_LOG_L1), q, f);
    q = fma4(dup(ND_LOG_L0), q, f);
    v4 kf = vaddq_f32(vcvtq_f32_s32(k), kadj);
    v4 t = vmulq_f32(vmulq_f32(f, f), q);
    t = fma4(t, kf, dup(ND_LN2_LO));
    t = vaddq_f32(t, f);
    v4 y = fma4(t, kf, dup(ND_LN2_HI));
    v4 special = sel(vcltq_f32(x, zero), dup(NAN), x);
    special = sel(vceqq_f32(x, zero), dup(-INFINITY), special);
    return sel(regular, y, special);
}

UNARY_ROW(log, log4)

/* ---- tanh --------------------------------------------------------------- */

static inline v4 tanh4(v4 x) {
    v4 a = vabsq_f32(x);
    v4 a2 = vmulq_f32(a, a);
    v4 q = fma4(dup(ND_TANH_T3), dup(ND_TANH_T4), a2);
    q = fma4(dup(ND_TANH_T2), q, a2);
    q = fma4(dup(ND_TANH_T1), q, a2);
    q = fma4(dup(ND_TANH_T0), q, a2);
    v4 small = fma4(a, a, vmulq_f32(a2, q));
    v4 e = exp4(vaddq_f32(a, a));
    v4 large = vsubq_f32(dup(1.0f), vdivq_f32(dup(2.0f), vaddq_f32(e, dup(1.0f))));
    v4 y = sel(vcltq_f32(a, dup(ND_TANH_CUT)), small, large);
    return flt(vorrq_u32(bits(y), vandq_u32(bits(x), vdupq_n_u32(0x80000000u))));
}

UNARY_ROW(tanh, tanh4)

/* ---- sigmoid, silu ------------------------------------------------------ */

static inline v4 sigmoid4(v4 x) {
    v4 s = exp4(vnegq_f32(vabsq_f32(x)));
    v4 d = vaddq_f32(dup(1.0f), s);
    return vdivq_f32(sel(vcgeq_f32(x, dup(0.0f)), dup(1.0f), s), d);
}

static inline v4 silu4(v4 x) {
    exp4_parts e = exp4_split(vnegq_f32(vabsq_f32(x)), vdupq_n_f32(0.0f));
    v4 s = vmulq_f32(vmulq_f32(e.p, e.s1), e.s2);
    v4 d = vaddq_f32(dup(1.0f), s);
    v4 xc = sel(vcgtq_f32(dup(ND_SILU_XMIN), x), dup(ND_SILU_XMIN), x);
    v4 neg = vmulq_f32(vmulq_f32(vmulq_f32(xc, e.p), e.s1), e.s2);
    return vdivq_f32(sel(vcgeq_f32(x, dup(0.0f)), x, neg), d);
}

UNARY_ROW(sigmoid, sigmoid4)
UNARY_ROW(silu, silu4)

/* ---- gelu --------------------------------------------------------------- */

/* R(a) = P(a) / D(a) */
static inline v4 mills4(v4 a) {
    v4 p = fma4(dup(ND_GELU_P3), dup(ND_GELU_P4), a);
    v4 d = fma4(dup(ND_GELU_D4), dup(ND_GELU_D5), a);
    p = fma4(dup(ND_GELU_P2), p, a);
    d = fma4(dup(ND_GELU_D3), d, a);
    p = fma4(dup(ND_GELU_P1), p, a);
    d = fma4(dup(ND_GELU_D2), d, a);
    p = fma4(dup(ND_GELU_P0), p, a);
    d = fma4(dup(ND_GELU_D1), d, a);
    d = fma4(dup(1.0f), d, a);
    return vdivq_f32(p, d);
}

/* The twin's formula for a = |x| <= ND_GELU_CUT, as in vmath_avx2.c: one
 * FMA forms -a (a/2) - n ln2_hi exactly, and p 2^n is normal. */
static inline v4 gelu4_central(v4 x, v4 a) {
    v4 nf = vrndnq_f32(vmulq_f32(vmulq_f32(a, a), dup(-0.5f * ND_LOG2E)));
    v4 r = vfmsq_f32(vmulq_f32(nf, dup(-ND_LN2_HI)), vmulq_f32(a, dup(0.5f)), a);
    r = vfmsq_f32(r, nf, dup(ND_LN2_LO));
    v4 q = fma4(dup(ND_EXP_E3), dup(ND_EXP_E4), r);
    q = fma4(dup(ND_EXP_E2), q, r);
    q = fma4(dup(ND_EXP_E1), q, r);
    q = fma4(dup(ND_EXP_E0), q, r);
    v4 p = vaddq_f32(fma4(r, vmulq_f32(r, r), q), dup(1.0f));
    int32x4_t n23 = vshlq_n_s32(vcvtq_s32_f32(nf), 23);
    v4 e = flt(vreinterpretq_u32_s32(vaddq_s32(vreinterpretq_s32_u32(bits(p)), n23)));
    v4 xq = vmulq_f32(x, vmulq_f32(mills4(a), e));
    /* x - x Q for x >= 0, x Q for x < 0, by the sign bit: -0 gives -0 */
    uint32x4_t neg = vreinterpretq_u32_s32(vshrq_n_s32(vreinterpretq_s32_u32(bits(x)), 31));
    return sel(neg, xq, vsubq_f32(x, xq));
}

/* Beyond the cut: x itself for x > cut, +inf and NaN, and for x < -cut
 * the twin's tail x R 2^n1 p 2^n2. */
static inline v4 gelu4_general(v4 x) {
    v4 a = vabsq_f32(x);
    uint32x4_t within = vcleq_f32(a, dup(ND_GELU_CUT)); /* false for NaN */
    v4 y = gelu4_central(x, sel(within, a, dup(ND_GELU_CUT)));
    v4 at = sel(vcltq_f32(a, dup(ND_GELU_AMAX)), a, dup(ND_GELU_AMAX));
    v4 xn = sel(vcgtq_f32(dup(-ND_GELU_AMAX), x), dup(-ND_GELU_AMAX), x);
    v4 ah = flt(vandq_u32(bits(at), vdupq_n_u32(ND_GELU_SPLIT)));
    v4 hi = vmulq_f32(vmulq_f32(ah, ah), dup(-0.5f));
    /* lo = -(a^2 - ah^2)/2, the twin's -(a + ah) al / 2, in one rounding */
    v4 lo = vfmaq_f32(vnegq_f32(hi), vmulq_f32(at, dup(-0.5f)), at);
    exp4_parts e = exp4_split(hi, lo);
    v4 tail = vmulq_f32(vmulq_f32(vmulq_f32(vmulq_f32(xn, mills4(at)), e.s1), e.p), e.s2);
    y = sel(within, y, x);
    return sel(vandq_u32(vmvnq_u32(within), vcltq_f32(x, dup(0.0f))), tail, y);
}

static inline v4 gelu4(v4 x) {
    /* the largest |x| of the four; NaN if one is NaN */
    if (vmaxvq_f32(vabsq_f32(x)) <= ND_GELU_CUT) return gelu4_central(x, vabsq_f32(x));
    return gelu4_general(x);
}

UNARY_ROW(gelu, gelu4)

/* ---- binary arithmetic -------------------------------------------------- */

#define BINARY(name, vop, op)                                                  \
    void nd__##name##_neon(int64_t n, const float *a, int64_t sa,              \
                           const float *b, int64_t sb, float *y) {             \
        int64_t i = 0;                                                         \
        if (sa == 1 && sb == 1) {                                              \
            for (; i + 4 <= n; i += 4)                                         \
                vst1q_f32(y + i, vop(vld1q_f32(a + i), vld1q_f32(b + i)));     \
        } else if (sa == 1 && sb == 0) {                                       \
            v4 vb = vdupq_n_f32(*b);                                           \
            for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vop(vld1q_f32(a + i), vb)); \
        } else if (sa == 0 && sb == 1) {                                       \
            v4 va = vdupq_n_f32(*a);                                           \
            for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vop(va, vld1q_f32(b + i))); \
        }                                                                      \
        for (; i < n; i++) y[i] = a[i * sa] op b[i * sb];                      \
    }
BINARY(add, vaddq_f32, +)
BINARY(sub, vsubq_f32, -)
BINARY(mul, vmulq_f32, *)
BINARY(div, vdivq_f32, /)

/* ---- lane reductions ---------------------------------------------------- */

/* Sixteen double lanes in eight registers of two. */
void nd__sum_lanes_neon(int64_t n, const float *x, double *l) {
    float64x2_t a[8];
    for (int j = 0; j < 8; j++) a[j] = vld1q_f64(l + 2 * j);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int j = 0; j < 4; j++) {
            float32x4_t v = vld1q_f32(x + i + 4 * j);
            a[2 * j] = vaddq_f64(a[2 * j], vcvt_f64_f32(vget_low_f32(v)));
            a[2 * j + 1] = vaddq_f64(a[2 * j + 1], vcvt_high_f64_f32(v));
        }
    }
    for (int j = 0; j < 8; j++) vst1q_f64(l + 2 * j, a[j]);
    for (; i < n; i++) l[i % ND_LANES] += x[i];
}

void nd__acc_double_neon(int64_t n, const float *x, double *acc) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        vst1q_f64(acc + i, vaddq_f64(vld1q_f64(acc + i), vcvt_f64_f32(vget_low_f32(v))));
        vst1q_f64(acc + i + 2, vaddq_f64(vld1q_f64(acc + i + 2), vcvt_high_f64_f32(v)));
    }
    for (; i < n; i++) acc[i] += x[i];
}

void nd__sumsq_lanes_neon(int64_t n, const float *x, double mean, double *l) {
    float64x2_t a[8], vm = vdupq_n_f64(mean);
    for (int j = 0; j < 8; j++) a[j] = vld1q_f64(l + 2 * j);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int j = 0; j < 4; j++) {
            float32x4_t v = vld1q_f32(x + i + 4 * j);
            float64x2_t d0 = vsubq_f64(vcvt_f64_f32(vget_low_f32(v)), vm);
            float64x2_t d1 = vsubq_f64(vcvt_high_f64_f32(v), vm);
            a[2 * j] = vaddq_f64(a[2 * j], vmulq_f64(d0, d0));
            a[2 * j + 1] = vaddq_f64(a[2 * j + 1], vmulq_f64(d1, d1));
        }
    }
    for (int j = 0; j < 8; j++) vst1q_f64(l + 2 * j, a[j]);
    for (; i < n; i++) {
        double d = (double)x[i] - mean;
        double sq = d * d;
        l[i % ND_LANES] += sq;
    }
}

void nd__dotdev_lanes_neon(int64_t n, const float *x, double mean, const float *y,
                           double *l) {
    float64x2_t a[8], vm = vdupq_n_f64(mean);
    for (int j = 0; j < 8; j++) a[j] = vld1q_f64(l + 2 * j);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int j = 0; j < 4; j++) {
            float32x4_t v = vld1q_f32(x + i + 4 * j), w = vld1q_f32(y + i + 4 * j);
            float64x2_t d0 = vsubq_f64(vcvt_f64_f32(vget_low_f32(v)), vm);
            float64x2_t d1 = vsubq_f64(vcvt_high_f64_f32(v), vm);
            a[2 * j] = vaddq_f64(a[2 * j], vmulq_f64(d0, vcvt_f64_f32(vget_low_f32(w))));
            a[2 * j + 1] = vaddq_f64(a[2 * j + 1], vmulq_f64(d1, vcvt_high_f64_f32(w)));
        }
    }
    for (int j = 0; j < 8; j++) vst1q_f64(l + 2 * j, a[j]);
    for (; i < n; i++) {
        double d = (double)x[i] - mean;
        double p = d * (double)y[i];
        l[i % ND_LANES] += p;
    }
}

/* v cmp m ? v : m by compare and select: a NaN v leaves m */
#define EXTREMUM(name, vcmp, cmp)                                              \
    bool nd__##name##_lanes_neon(int64_t n, const float *x, float *l) {        \
        v4 m[4];                                                               \
        for (int j = 0; j < 4; j++) m[j] = vld1q_f32(l + 4 * j);               \
        uint32x4_t ok = vdupq_n_u32(0xffffffffu);                              \
        int64_t i = 0;                                                         \
        for (; i + 16 <= n; i += 16) {                                         \
            for (int j = 0; j < 4; j++) {                                      \
                v4 v = vld1q_f32(x + i + 4 * j);                               \
                ok = vandq_u32(ok, vceqq_f32(v, v));                           \
                m[j] = sel(vcmp(v, m[j]), v, m[j]);                            \
            }                                                                  \
        }                                                                      \
        for (int j = 0; j < 4; j++) vst1q_f32(l + 4 * j, m[j]);                \
        bool any = vminvq_u32(ok) == 0;                                        \
        for (; i < n; i++) {                                                   \
            float v = x[i];                                                    \
            if (v != v) any = true;                                            \
            else if (v cmp l[i % ND_LANES]) l[i % ND_LANES] = v;               \
        }                                                                      \
        return any;                                                            \
    }
EXTREMUM(max, vcgtq_f32, >)
EXTREMUM(min, vcltq_f32, <)

/* ---- softmax ------------------------------------------------------------ */

static float row_max(int64_t n, const float *x) {
    float l[ND_LANES];
    for (int j = 0; j < ND_LANES; j++) l[j] = -INFINITY;
    nd__max_lanes_neon(n, x, l);
    return nd__combine_max(l);
}

/* The blocks prefetch the same stretch of `next`, as in vmath_avx2.c. */
static void exp_sum(int64_t n, const float *x, float m, float *y, double *l,
                    const float *next) {
    v4 vm = dup(m);
    float64x2_t a[8];
    for (int j = 0; j < 8; j++) a[j] = vdupq_n_f64(0.0);
    int64_t i = 0;
    /* blocks of 32 are summed in float first, as in the twin; floats 0-3
     * of the four 8-float quarters are vectors 0, 2, 4, 6, floats 4-7 the
     * odd ones */
    for (; i + 32 <= n; i += 32) {
        if (next) {
            ND_PREFETCH(next + i);
            ND_PREFETCH(next + i + 16);
        }
        v4 e[8];
        for (int k = 0; k < 8; k++) {
            e[k] = exp4(vsubq_f32(vld1q_f32(x + i + 4 * k), vm));
            if (y) vst1q_f32(y + i + 4 * k, e[k]);
        }
        for (int j = 0; j < 2; j++) {
            v4 q = vaddq_f32(vaddq_f32(e[j], e[j + 4]), vaddq_f32(e[j + 2], e[j + 6]));
            a[2 * j] = vaddq_f64(a[2 * j], vcvt_f64_f32(vget_low_f32(q)));
            a[2 * j + 1] = vaddq_f64(a[2 * j + 1], vcvt_high_f64_f32(q));
        }
    }
    for (; i + 16 <= n; i += 16) {
        for (int j = 0; j < 4; j++) {
            v4 e = exp4(vsubq_f32(vld1q_f32(x + i + 4 * j), vm));
            if (y) vst1q_f32(y + i + 4 * j, e);
            a[2 * j] = vaddq_f64(a[2 * j], vcvt_f64_f32(vget_low_f32(e)));
            a[2 * j + 1] = vaddq_f64(a[2 * j + 1], vcvt_high_f64_f32(e));
        }
    }
    for (int j = 0; j < 8; j++) vst1q_f64(l + 2 * j, a[j]);
    if (i < n) {
        float buf[16] = {0};
        int64_t r = n - i;
        memcpy(buf, x + i, (size_t)r * sizeof(float));
        for (int j = 0; j < 4; j++)
            vst1q_f32(buf + 4 * j, exp4(vsubq_f32(vld1q_f32(buf + 4 * j), vm)));
        for (int64_t j = 0; j < r; j++) {
            if (y) y[i + j] = buf[j];
            l[j] += buf[j];
        }
    }
}

void nd__softmax_neon(int64_t n, const float *x, float *y, const float *next) {
    double l[ND_LANES];
    exp_sum(n, x, row_max(n, x), y, l, next);
    float inv = (float)(1.0 / nd__combine_lanes(l));
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_f32(vld1q_f32(y + i), dup(inv)));
    for (; i < n; i++) y[i] = y[i] * inv;
}

void nd__log_softmax_neon(int64_t n, const float *x, float *y, const float *next) {
    double l[ND_LANES];
    float m = row_max(n, x);
    exp_sum(n, x, m, NULL, l, next);
    float ls = (float)log(nd__combine_lanes(l));
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vsubq_f32(vsubq_f32(vld1q_f32(x + i), dup(m)), dup(ls)));
    for (; i < n; i++) {
        float d = x[i] - m;
        y[i] = d - ls;
    }
}

#else
typedef int nd__no_neon_here; /* other CPUs: nothing to compile */
#endif
