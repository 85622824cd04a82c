/* Constants and declarations shared by the vectorized math kernels:
 * vmath_scalar.c (the plain-C twins, which are the specification),
 * vmath_avx2.c and vmath_neon.c. Private to tensor/.
 *
 * The polynomial and rational coefficients come from
 * tensor/vmath_coefficients.py, which fits them in double (minimax in
 * relative error) and rounds them to float; see the derivations and the
 * error bounds in vmath_scalar.c.
 *
 * Constants that are not exact in float are cast to float, which C11
 * requires to round them: where float expressions are evaluated wider
 * (s390x, FLT_EVAL_METHOD 1), a bare 1.44269502f keeps its decimal value
 * to double precision, and t * 1.44269502f would not be the product of
 * two floats that every other target computes. */
#ifndef NANODIFF_TENSOR_VMATH_H
#define NANODIFF_TENSOR_VMATH_H

#include <stdbool.h>
#include <stdint.h>

/* ---- exp: x = n ln2 + r, |r| <= ln2/2, e^x = 2^n e^r ------------------- */

/* Inputs are clamped to [ND_EXP_LO, ND_EXP_HI] before the reduction, which
 * keeps n in [-174, 128] so that 2^n splits into two normal powers of two;
 * e^-104 < 2^-150 already rounds to 0, e^89 > FLT_MAX overflows, and the
 * margin below lets silu and gelu scale e^x by |x| up to 200 before the
 * last rounding (200 e^-120 is still far below 2^-150). */
#define ND_EXP_LO (-120.0f)
#define ND_EXP_HI 89.0f
#define ND_LOG2E ((float)1.44269502f)
/* 1.5 2^23: t + ND_EXP_ROUND - ND_EXP_ROUND is t rounded to an integer n
 * (|t| < 2^22), and the low bits of t + ND_EXP_ROUND hold n */
#define ND_EXP_ROUND 12582912.0f
/* ln2 = ND_LN2_HI + ND_LN2_LO; ND_LN2_HI has 15 significant bits, so n
 * ND_LN2_HI is exact for |n| < 512 (Cody and Waite's reduction). */
#define ND_LN2_HI 0.693145751953125f
#define ND_LN2_LO ((float)1.42860677e-06f)
/* e^r = 1 + r + r^2 (E0 + E1 r + E2 r^2 + E3 r^3 + E4 r^4) */
#define ND_EXP_E0 ((float)0.49999994f)
#define ND_EXP_E1 ((float)0.166665211f)
#define ND_EXP_E2 ((float)0.0416682549f)
#define ND_EXP_E3 ((float)0.00836866163f)
#define ND_EXP_E4 ((float)0.00138214533f)

/* ---- log: x = 2^k (1 + f), f in [sqrt(1/2) - 1, sqrt(2) - 1) ----------- */

/* The bits of sqrt(1/2): subtracting them from x's bits puts the mantissa
 * in [sqrt(1/2), sqrt(2)) and k in the exponent field. */
#define ND_LOG_OFF 0x3f3504f3u
/* log1p(f) = f + f^2 (L0 + L1 f + ... + L8 f^8) */
#define ND_LOG_L0 ((float)-0.499999881f)
#define ND_LOG_L1 ((float)0.333333254f)
#define ND_LOG_L2 ((float)-0.250016093f)
#define ND_LOG_L3 ((float)0.200020134f)
#define ND_LOG_L4 ((float)-0.166084543f)
#define ND_LOG_L5 ((float)0.141806036f)
#define ND_LOG_L6 ((float)-0.132470518f)
#define ND_LOG_L7 ((float)0.129145548f)
#define ND_LOG_L8 ((float)-0.0762485787f)

/* ---- tanh: a + a^3 T(a^2) below ND_TANH_CUT, 1 - 2/(e^{2a} + 1) above - */

#define ND_TANH_CUT 0.625f
#define ND_TANH_T0 ((float)-0.333332807f)
#define ND_TANH_T1 ((float)0.133314058f)
#define ND_TANH_T2 ((float)-0.0537365153f)
#define ND_TANH_T3 ((float)0.0206281673f)
#define ND_TANH_T4 ((float)-0.00569229666f)

/* ---- gelu: x Phi(x), Phi(-a) = Q(a) = e^{-a^2/2} P(a) / D(a), a >= 0 --- */

/* |x| is clamped to ND_GELU_AMAX, where x Q(x) is far below the smallest
 * subnormal (gelu(-14.5) = -7e-47). */
#define ND_GELU_AMAX 14.5f
#define ND_GELU_P0 0.5f
#define ND_GELU_P1 ((float)0.437599778f)
#define ND_GELU_P2 ((float)0.182693601f)
#define ND_GELU_P3 ((float)0.0404429547f)
#define ND_GELU_P4 ((float)0.00408576615f)
#define ND_GELU_D1 ((float)1.67308438f)
#define ND_GELU_D2 ((float)1.20031154f)
#define ND_GELU_D3 ((float)0.468034059f)
#define ND_GELU_D4 ((float)0.101382032f)
#define ND_GELU_D5 ((float)0.0102413744f)
/* Up to |x| = ND_GELU_CUT, gelu's factors are far from underflow and take
 * the short formula (vmath_scalar.c); the SIMD sets run it alone on
 * vectors whose lanes all lie within. */
#define ND_GELU_CUT 12.0f
/* a & ND_GELU_SPLIT keeps the top 12 significant bits of a, whose square
 * is exact in float (Dekker's splitting, done with a mask). */
#define ND_GELU_SPLIT 0xfffff000u

/* silu(x) = x sigma(x) uses max(x, ND_SILU_XMIN) as the factor x, so that
 * silu(-inf) is the limit -0 rather than -inf * 0 = NaN: below -120,
 * where e^x is clamped, 200 e^-120 is far below 2^-150 already. */
#define ND_SILU_XMIN (-200.0f)

/* ---- reductions --------------------------------------------------------- */

/* Reductions spread a row over ND_LANES accumulators: element i of a call
 * goes to lane i % ND_LANES, and each lane adds its elements in order. */
#define ND_LANES 16

/* The sum of the lanes in a fixed tree: lane j with j + 8, then + 4, + 2,
 * + 1. Every kernel set and every caller combines lanes this way
 * (reduce.c's sum_columns too, a column of outputs at a time). */
static inline double nd__combine_lanes(const double *l) {
    double t[8];
    for (int j = 0; j < 8; j++) t[j] = l[j] + l[j + 8];
    for (int j = 0; j < 4; j++) t[j] = t[j] + t[j + 4];
    for (int j = 0; j < 2; j++) t[j] = t[j] + t[j + 2];
    return t[0] + t[1];
}

/* The same tree for max (a > b ? a : b) and min (a < b ? a : b). */
static inline float nd__combine_max(const float *l) {
    float t[8];
    for (int j = 0; j < 8; j++) t[j] = l[j] > l[j + 8] ? l[j] : l[j + 8];
    for (int j = 0; j < 4; j++) t[j] = t[j] > t[j + 4] ? t[j] : t[j + 4];
    for (int j = 0; j < 2; j++) t[j] = t[j] > t[j + 2] ? t[j] : t[j + 2];
    return t[0] > t[1] ? t[0] : t[1];
}
static inline float nd__combine_min(const float *l) {
    float t[8];
    for (int j = 0; j < 8; j++) t[j] = l[j] < l[j + 8] ? l[j] : l[j + 8];
    for (int j = 0; j < 4; j++) t[j] = t[j] < t[j + 4] ? t[j] : t[j + 4];
    for (int j = 0; j < 2; j++) t[j] = t[j] < t[j + 2] ? t[j] : t[j + 2];
    return t[0] < t[1] ? t[0] : t[1];
}

/* ---- the kernels of each set (see struct nd_kernels) -------------------- */

#define ND_VMATH_DECLARE(isa)                                                  \
    void nd__exp_##isa(int64_t n, const float *x, float *y);                   \
    void nd__log_##isa(int64_t n, const float *x, float *y);                   \
    void nd__tanh_##isa(int64_t n, const float *x, float *y);                  \
    void nd__sigmoid_##isa(int64_t n, const float *x, float *y);               \
    void nd__silu_##isa(int64_t n, const float *x, float *y);                  \
    void nd__gelu_##isa(int64_t n, const float *x, float *y);                  \
    void nd__add_##isa(int64_t n, const float *a, int64_t sa, const float *b,  \
                       int64_t sb, float *y);                                  \
    void nd__sub_##isa(int64_t n, const float *a, int64_t sa, const float *b,  \
                       int64_t sb, float *y);                                  \
    void nd__mul_##isa(int64_t n, const float *a, int64_t sa, const float *b,  \
                       int64_t sb, float *y);                                  \
    void nd__div_##isa(int64_t n, const float *a, int64_t sa, const float *b,  \
                       int64_t sb, float *y);                                  \
    void nd__sum_lanes_##isa(int64_t n, const float *x, double *lanes);        \
    void nd__sumsq_lanes_##isa(int64_t n, const float *x, double mean,         \
                               double *lanes);                                 \
    void nd__dotdev_lanes_##isa(int64_t n, const float *x, double mean,        \
                                const float *y, double *lanes);                \
    bool nd__max_lanes_##isa(int64_t n, const float *x, float *lanes);         \
    bool nd__min_lanes_##isa(int64_t n, const float *x, float *lanes);         \
    void nd__acc_double_##isa(int64_t n, const float *x, double *acc);         \
    void nd__softmax_##isa(int64_t n, const float *x, float *y,                \
                           const float *next);                                 \
    void nd__log_softmax_##isa(int64_t n, const float *x, float *y,            \
                               const float *next);

ND_VMATH_DECLARE(scalar)
#if defined(__x86_64__) || defined(_M_X64)
ND_VMATH_DECLARE(avx2)
#endif
#if defined(__aarch64__)
ND_VMATH_DECLARE(neon)
#endif

#endif
