/* AVX2+FMA versions of the kernels in vmath_scalar.c, eight floats at a
 * time. This file is compiled for AVX2 and FMA, so nothing in it may run
 * before the dispatcher has checked the CPU.
 *
 * Each function follows its twin step for step; the comments there give
 * the math and the error bounds. Differences: the polynomials and the
 * reduction r = x - n ln2_lo use FMA (one rounding instead of two), so
 * the results may differ from the twins' by the ulps vmath_scalar.c
 * states (gelu the most, from the nine Horner steps of its rational
 * function). The
 * arithmetic rows and the lane reductions do exactly what the twins do
 * and give the same bits.
 *
 * Rows whose length is not a multiple of 8 finish with one padded vector.
 * Which path a vector takes (the fast exps below, or the general one)
 * depends on its neighbours, but the paths give the same bits, so the
 * result of an element never depends on where it sits in a row. */
#if defined(__x86_64__) || defined(_M_X64)
#include "avx2_target.h" /* the instruction sets, and immintrin.h */
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "vmath.h"

static inline __m256 set1(float v) { return _mm256_set1_ps(v); }

static inline __m256 sign_mask(void) {
    return _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
}

/* ---- exp ---------------------------------------------------------------- */

typedef struct {
    __m256 p, s1, s2;
} exp8_parts;

/* 2^n for integer lanes n in [-126, 127] */
static inline __m256 pow2i(__m256i n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
}

/* r = (x - n ln2_hi - n ln2_lo) + lo, the reduction of exp_split */
static inline __m256 exp8_reduce(__m256 x, __m256 nf, __m256 lo, bool has_lo) {
    __m256 r = _mm256_fnmadd_ps(nf, set1(ND_LN2_HI), x);
    r = _mm256_fnmadd_ps(nf, set1(ND_LN2_LO), r);
    return has_lo ? _mm256_add_ps(r, lo) : r;
}

/* e^r = 1 + r + r^2 E(r) */
static inline __m256 exp8_poly(__m256 r) {
    __m256 q = _mm256_fmadd_ps(set1(ND_EXP_E4), r, set1(ND_EXP_E3));
    q = _mm256_fmadd_ps(q, r, set1(ND_EXP_E2));
    q = _mm256_fmadd_ps(q, r, set1(ND_EXP_E1));
    q = _mm256_fmadd_ps(q, r, set1(ND_EXP_E0));
    __m256 p = _mm256_fmadd_ps(_mm256_mul_ps(r, r), q, r);
    return _mm256_add_ps(p, set1(1.0f));
}

/* How much of the clamp to [ND_EXP_LO, ND_EXP_HI] an argument needs. */
enum { EXP_CLAMP, EXP_NONPOSITIVE, EXP_IN_RANGE };

/* exp_split of vmath_scalar.c: e^(hi + lo) = p 2^n1 2^n2. The flags are
 * constants at every call: without lo (lo = 0), and for arguments known
 * to be <= 0 or inside the clamps, the steps that change nothing are left
 * out. */
static inline exp8_parts exp8_split(__m256 hi, __m256 lo, bool has_lo, int range) {
    __m256 x = hi;
    if (range != EXP_IN_RANGE) x = _mm256_max_ps(set1(ND_EXP_LO), x); /* LO > x ? LO : x */
    if (range == EXP_CLAMP) x = _mm256_min_ps(set1(ND_EXP_HI), x);   /* HI < x ? HI : x */
    __m256 t = _mm256_mul_ps(has_lo ? _mm256_add_ps(x, lo) : x, set1(ND_LOG2E));
    __m256 nf = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256i n = _mm256_cvtps_epi32(nf);
    __m256 p = exp8_poly(exp8_reduce(x, nf, lo, has_lo));
    /* n1 = trunc(n / 2), as in C: add 1 to negative n before the shift */
    __m256i n1 = _mm256_srai_epi32(_mm256_add_epi32(n, _mm256_srli_epi32(n, 31)), 1);
    __m256i n2 = _mm256_sub_epi32(n, n1);
    exp8_parts e = {p, pow2i(n1), pow2i(n2)};
    return e;
}

/* The fast path. Where |hi + lo| <= EXP_FAST, n lies in [-125, 125] and
 * p 2^n is a normal float, so p 2^n1 2^n2 = p 2^n exactly: a single
 * scale, applied by adding n to the exponent field of p, and no clamps.
 * Rounding t with the twin's 1.5 2^23 leaves n in the low bits of tm, so
 * tm << 23 is n in the exponent field. A vector takes this path when all
 * its lanes qualify, and gets the bits of the general one. It does less
 * work, and, with fewer steps on each lane's dependency chain, lets the
 * core overlap more vectors. */
#define EXP_FAST 86.0f

typedef struct {
    __m256 p;
    __m256i n23; /* n << 23 */
} exp8_fast_parts;

static inline bool all_within(__m256 x, float bound) { /* |x| <= bound, no NaN */
    __m256 a = _mm256_andnot_ps(sign_mask(), x);
    return _mm256_movemask_ps(_mm256_cmp_ps(a, set1(bound), _CMP_LE_OQ)) == 0xff;
}

static inline exp8_fast_parts exp8_fast_split(__m256 hi, __m256 lo, bool has_lo) {
    __m256 t = _mm256_mul_ps(has_lo ? _mm256_add_ps(hi, lo) : hi, set1(ND_LOG2E));
    __m256 tm = _mm256_add_ps(t, set1(ND_EXP_ROUND));
    __m256 nf = _mm256_sub_ps(tm, set1(ND_EXP_ROUND));
    exp8_fast_parts e = {exp8_poly(exp8_reduce(hi, nf, lo, has_lo)),
                         _mm256_slli_epi32(_mm256_castps_si256(tm), 23)};
    return e;
}

/* v 2^n, for v 2^n normal (or n = 0) */
static inline __m256 scale2n(__m256 v, __m256i n23) {
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(v), n23));
}

static inline __m256 exp8_fast(__m256 x) {
    exp8_fast_parts e = exp8_fast_split(x, x, false);
    return scale2n(e.p, e.n23);
}

static inline __m256 exp8(__m256 x) {
    if (all_within(x, EXP_FAST)) return exp8_fast(x);
    exp8_parts e = exp8_split(x, x, false, EXP_CLAMP);
    return _mm256_mul_ps(_mm256_mul_ps(e.p, e.s1), e.s2);
}

/* y[i] = f(x[i]) for the last n < 8 elements of a row, through one padded
 * vector */
#define TAIL8(f8, n, x, y)                                                     \
    do {                                                                       \
        float buf_[8] = {0};                                                   \
        size_t bytes_ = (size_t)(n) * sizeof(float);                           \
        memcpy(buf_, (x), bytes_);                                             \
        _mm256_storeu_ps(buf_, f8(_mm256_loadu_ps(buf_)));                     \
        memcpy((y), buf_, bytes_);                                             \
    } while (0)

/* y[i] = f(x[i]) over a row */
#define UNARY_ROW(name, f8)                                                    \
    void nd__##name##_avx2(int64_t n, const float *x, float *y) {              \
        int64_t i = 0;                                                         \
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f8(_mm256_loadu_ps(x + i))); \
        if (i < n) TAIL8(f8, n - i, x + i, y + i);                             \
    }

UNARY_ROW(exp, exp8)

/* ---- log ---------------------------------------------------------------- */

static inline __m256 log8(__m256 x) {
    __m256 inf = set1(INFINITY);
    __m256 regular = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ),
                                   _mm256_cmp_ps(x, inf, _CMP_LT_OQ));
    __m256 sub = _mm256_cmp_ps(x, set1(1.17549435e-38f), _CMP_LT_OQ);
    __m256 xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, set1(8388608.0f)), sub);
    __m256 kadj = _mm256_and_ps(sub, set1(-23.0f));
    __m256i ix = _mm256_castps_si256(xs);
    __m256i tmp = _mm256_sub_epi32(ix, _mm256_set1_epi32((int)ND_LOG_OFF));
    __m256i k = _mm256_srai_epi32(tmp, 23);
    __m256i iz = _mm256_sub_epi32(ix, _mm256_and_si256(tmp, _mm256_set1_epi32((int)0xff800000u)));
    __m256 f = _mm256_sub_ps(_mm256_castsi256_ps(iz), set1(1.0f));
    __m256 q = _mm256_fmadd_ps(set1(ND_LOG_L8), f, set1(ND_LOG_L7));
    q = _mm256_fmadd_ps(q, f, set1(ND_LOG_L6));
    q = _mm256_fmadd_ps(q, f, set1(ND_LOG_L5));
    q = _mm256_fmadd_ps(q, f, set1(ND_LOG_L4));
    q = _mm256_fmadd_ps(q, f, set1(ND_LOG_L3));
    q = _mm256_fmadd_ps(q, f, set1(ND_LOG_L2));
    q = _mm256_fmadd_ps(q, f, set1(ND_LOG_L1));
    q = _mm256_fmadd_ps(q, f, set1(ND_LOG_L0));
    __m256 kf = _mm256_add_ps(_mm256_cvtepi32_ps(k), kadj);
    __m256 t = _mm256_mul_ps(_mm256_mul_ps(f, f), q);
    t = _mm256_fmadd_ps(kf, set1(ND_LN2_LO), t);
    t = _mm256_add_ps(t, f);
    __m256 y = _mm256_fmadd_ps(kf, set1(ND_LN2_HI), t);
    /* x == 0 -> -inf, x < 0 -> NaN, else (+inf, NaN) x itself */
    __m256 special = _mm256_blendv_ps(x, set1(NAN), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
    special = _mm256_blendv_ps(special, set1(-INFINITY),
                               _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_EQ_OQ));
    return _mm256_blendv_ps(special, y, regular);
}

UNARY_ROW(log, log8)

/* ---- tanh --------------------------------------------------------------- */

static inline __m256 tanh8(__m256 x) {
    __m256 a = _mm256_andnot_ps(sign_mask(), x);
    __m256 a2 = _mm256_mul_ps(a, a);
    __m256 q = _mm256_fmadd_ps(set1(ND_TANH_T4), a2, set1(ND_TANH_T3));
    q = _mm256_fmadd_ps(q, a2, set1(ND_TANH_T2));
    q = _mm256_fmadd_ps(q, a2, set1(ND_TANH_T1));
    q = _mm256_fmadd_ps(q, a2, set1(ND_TANH_T0));
    __m256 small = _mm256_fmadd_ps(a, _mm256_mul_ps(a2, q), a);
    __m256 e = exp8(_mm256_add_ps(a, a));
    __m256 large = _mm256_sub_ps(set1(1.0f), _mm256_div_ps(set1(2.0f), _mm256_add_ps(e, set1(1.0f))));
    __m256 y = _mm256_blendv_ps(large, small, _mm256_cmp_ps(a, set1(ND_TANH_CUT), _CMP_LT_OQ));
    return _mm256_or_ps(y, _mm256_and_ps(x, sign_mask()));
}

UNARY_ROW(tanh, tanh8)

/* ---- sigmoid, silu ------------------------------------------------------ */

static inline __m256 sigmoid8(__m256 x) {
    exp8_parts e = exp8_split(_mm256_or_ps(x, sign_mask()), x, false, EXP_NONPOSITIVE);
    __m256 s = _mm256_mul_ps(_mm256_mul_ps(e.p, e.s1), e.s2); /* e^{-|x|} */
    __m256 d = _mm256_add_ps(set1(1.0f), s);
    /* blendv reads the sign bit of x: x < 0 picks s. -0 picks s = 1 too,
     * the same 1/2 as the twin's x >= 0 branch. */
    __m256 num = _mm256_blendv_ps(set1(1.0f), s, x);
    return _mm256_div_ps(num, d);
}

static inline __m256 silu8(__m256 x) {
    exp8_parts e = exp8_split(_mm256_or_ps(x, sign_mask()), x, false, EXP_NONPOSITIVE);
    __m256 s = _mm256_mul_ps(_mm256_mul_ps(e.p, e.s1), e.s2);
    __m256 d = _mm256_add_ps(set1(1.0f), s);
    __m256 xc = _mm256_max_ps(set1(ND_SILU_XMIN), x);
    __m256 neg = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(xc, e.p), e.s1), e.s2);
    __m256 num = _mm256_blendv_ps(x, neg, x); /* by the sign bit; -0 gives -0 either way */
    return _mm256_div_ps(num, d);
}

/* The same from s = e^{-|x|} of the fast path (|x| <= EXP_FAST): s is p
 * 2^n there, and x s = (x p) 2^n, so the bits are those above. */
static inline __m256 sigmoid8_from(__m256 x, __m256 s) {
    __m256 num = _mm256_blendv_ps(set1(1.0f), s, x);
    return _mm256_div_ps(num, _mm256_add_ps(set1(1.0f), s));
}

static inline __m256 silu8_from(__m256 x, __m256 s) {
    __m256 num = _mm256_blendv_ps(x, _mm256_mul_ps(x, s), x);
    return _mm256_div_ps(num, _mm256_add_ps(set1(1.0f), s));
}

/* sigmoid and silu go over a row in blocks of SPLIT floats, in two
 * passes: e^{-|x|} for the block into a buffer, then the quotients. In
 * one loop, every division waits for a whole exp and the core overlaps
 * too few vectors; split, each loop's chain is short. Vectors with a
 * lane beyond EXP_FAST take the general path in the second pass, and a
 * row's last n % 8 elements take it padded. */
#define SPLIT 256

static void exp_neg_abs_block(int64_t n, const float *x, float *s) {
    for (int64_t i = 0; i < n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (all_within(v, EXP_FAST)) _mm256_storeu_ps(s + i, exp8_fast(_mm256_or_ps(v, sign_mask())));
    }
}

#define SPLIT_ROW(name, f8, from8)                                             \
    void nd__##name##_avx2(int64_t n, const float *x, float *y) {              \
        float s[SPLIT];                                                        \
        int64_t i = 0;                                                         \
        while (n - i >= 8) {                                                   \
            int64_t m = n - i < SPLIT ? (n - i) / 8 * 8 : SPLIT;               \
            exp_neg_abs_block(m, x + i, s);                                    \
            for (int64_t j = 0; j < m; j += 8) {                               \
                __m256 v = _mm256_loadu_ps(x + i + j);                         \
                __m256 r = all_within(v, EXP_FAST) ? from8(v, _mm256_loadu_ps(s + j)) : f8(v); \
                _mm256_storeu_ps(y + i + j, r);                                \
            }                                                                  \
            i += m;                                                            \
        }                                                                      \
        if (i < n) TAIL8(f8, n - i, x + i, y + i);                             \
    }

SPLIT_ROW(sigmoid, sigmoid8, sigmoid8_from)
SPLIT_ROW(silu, silu8, silu8_from)

/* ---- gelu --------------------------------------------------------------- */

/* R(a) = P(a) / D(a) */
static inline __m256 mills8(__m256 a) {
    __m256 p = _mm256_fmadd_ps(set1(ND_GELU_P4), a, set1(ND_GELU_P3));
    __m256 d = _mm256_fmadd_ps(set1(ND_GELU_D5), a, set1(ND_GELU_D4));
    p = _mm256_fmadd_ps(p, a, set1(ND_GELU_P2));
    d = _mm256_fmadd_ps(d, a, set1(ND_GELU_D3));
    p = _mm256_fmadd_ps(p, a, set1(ND_GELU_P1));
    d = _mm256_fmadd_ps(d, a, set1(ND_GELU_D2));
    p = _mm256_fmadd_ps(p, a, set1(ND_GELU_P0));
    d = _mm256_fmadd_ps(d, a, set1(ND_GELU_D1));
    d = _mm256_fmadd_ps(d, a, set1(1.0f));
    return _mm256_div_ps(p, d);
}

/* -a^2/2 = hi + lo: hi = -ah^2/2 exactly, and lo = -(a^2 - ah^2)/2, the
 * twin's -(a + ah) al / 2, in one rounding */
static inline void gelu8_exp_arg(__m256 a, __m256 *hi, __m256 *lo) {
    __m256 ah = _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32((int)ND_GELU_SPLIT)));
    *hi = _mm256_mul_ps(_mm256_mul_ps(ah, ah), set1(-0.5f));
    *lo = _mm256_fmsub_ps(_mm256_mul_ps(a, set1(-0.5f)), a, *hi);
}

/* The twin's formula up to ND_GELU_CUT, for a = |x| <= ND_GELU_CUT:
 * e^{-a^2/2} = p 2^n with n = round(-a^2/2 log2 e) and p = e^r from the
 * polynomial of exp8_poly, where r = -a (a/2) - n ln2_hi - n ln2_lo. The
 * first FMA forms -a (a/2) - n ln2_hi exactly (n ln2_hi is exact) and
 * rounds once, which replaces the twin's split of a into 12-bit halves;
 * where -a^2/2 log2 e lies within a rounding of a half-integer, n may be
 * one off the twin's, which moves only roundings.
 * n >= -104 here, so p 2^n is normal and is formed by the exponent add. */
static inline __m256 gelu8_central_exp(__m256 a) { /* e^{-a^2/2} */
    __m256 tm = _mm256_fmadd_ps(_mm256_mul_ps(a, a), set1(-0.5f * ND_LOG2E), set1(ND_EXP_ROUND));
    __m256 nf = _mm256_sub_ps(tm, set1(ND_EXP_ROUND));
    __m256 r = _mm256_fnmadd_ps(_mm256_mul_ps(a, set1(0.5f)), a,
                                _mm256_mul_ps(nf, set1(-ND_LN2_HI)));
    r = _mm256_fnmadd_ps(nf, set1(ND_LN2_LO), r);
    return scale2n(exp8_poly(r), _mm256_slli_epi32(_mm256_castps_si256(tm), 23));
}

/* x - x Q for x >= 0, x Q for x < 0, with Q = R(a) e and e = e^{-a^2/2}.
 * As Q <= 1/2, that is the larger of the two: x - xQ >= x/2 >= xQ for
 * x >= 0, and the reverse for x < 0 (max returns its second operand, xQ,
 * for -0 and +0: gelu(-0) = -0). A max costs less than a blend by the
 * sign. Where xQ rounds
 * past x/2 (subnormal results, |x| < 2^-125), the max picks the value
 * nearer the true one, where the twin's choice by sign is 1 ulp off. */
static inline __m256 gelu8_central_from(__m256 x, __m256 a, __m256 e) {
    __m256 xq = _mm256_mul_ps(x, _mm256_mul_ps(mills8(a), e));
    return _mm256_max_ps(_mm256_sub_ps(x, xq), xq);
}

static inline __m256 gelu8_central(__m256 x, __m256 a) {
    return gelu8_central_from(x, a, gelu8_central_exp(a));
}

/* Vectors with a lane beyond the cut: the central formula on a clamped to
 * the cut (the same bits for the lanes within), x itself for x > cut, +inf
 * and NaN, and for x < -cut the twin's tail, x R 2^n1 p 2^n2 (hi lies in
 * [-105.2, 0], inside the clamps of exp_split, so neither is applied). */
static inline __m256 gelu8_general(__m256 x) {
    __m256 a = _mm256_andnot_ps(sign_mask(), x);
    __m256 y = gelu8_central(x, _mm256_min_ps(a, set1(ND_GELU_CUT)));
    __m256 at = _mm256_min_ps(a, set1(ND_GELU_AMAX)); /* NaN -> AMAX */
    __m256 xn = _mm256_max_ps(set1(-ND_GELU_AMAX), x);
    __m256 hi, lo;
    gelu8_exp_arg(at, &hi, &lo);
    exp8_parts e = exp8_split(hi, lo, true, EXP_IN_RANGE);
    __m256 tail = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(xn, mills8(at)), e.s1), e.p), e.s2);
    __m256 beyond = _mm256_cmp_ps(a, set1(ND_GELU_CUT), _CMP_NLE_UQ); /* or NaN */
    __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    y = _mm256_blendv_ps(y, x, beyond);
    return _mm256_blendv_ps(y, tail, _mm256_and_ps(beyond, neg));
}

static inline __m256 gelu8(__m256 x) {
    if (!all_within(x, ND_GELU_CUT)) return gelu8_general(x);
    return gelu8_central(x, _mm256_andnot_ps(sign_mask(), x));
}

/* Two passes per block of SPLIT floats, as for silu: the exps of the
 * vectors within the cut into a buffer, then the rational function and
 * the products. Each loop's chain is shorter than the whole, so the core
 * overlaps more vectors (the same operations, so the same bits; checked
 * over all 2^32 inputs). */
void nd__gelu_avx2(int64_t n, const float *x, float *y) {
    float e[SPLIT];
    int64_t i = 0;
    while (n - i >= 8) {
        int64_t m = n - i < SPLIT ? (n - i) / 8 * 8 : SPLIT;
        for (int64_t j = 0; j < m; j += 8) {
            __m256 v = _mm256_loadu_ps(x + i + j);
            if (all_within(v, ND_GELU_CUT))
                _mm256_storeu_ps(e + j, gelu8_central_exp(_mm256_andnot_ps(sign_mask(), v)));
        }
        for (int64_t j = 0; j < m; j += 8) {
            __m256 v = _mm256_loadu_ps(x + i + j);
            __m256 r = all_within(v, ND_GELU_CUT)
                           ? gelu8_central_from(v, _mm256_andnot_ps(sign_mask(), v),
                                                _mm256_loadu_ps(e + j))
                           : gelu8_general(v);
            _mm256_storeu_ps(y + i + j, r);
        }
        i += m;
    }
    if (i < n) TAIL8(gelu8, n - i, x + i, y + i);
}

/* ---- binary arithmetic -------------------------------------------------- */

#define BINARY(name, vop, op)                                                  \
    void nd__##name##_avx2(int64_t n, const float *a, int64_t sa,              \
                           const float *b, int64_t sb, float *y) {             \
        int64_t i = 0;                                                         \
        if (sa == 1 && sb == 1) {                                              \
            for (; i + 8 <= n; i += 8)                                         \
                _mm256_storeu_ps(y + i, vop(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i))); \
        } else if (sa == 1 && sb == 0) {                                       \
            __m256 vb = _mm256_set1_ps(*b);                                    \
            for (; i + 8 <= n; i += 8)                                         \
                _mm256_storeu_ps(y + i, vop(_mm256_loadu_ps(a + i), vb));      \
        } else if (sa == 0 && sb == 1) {                                       \
            __m256 va = _mm256_set1_ps(*a);                                    \
            for (; i + 8 <= n; i += 8)                                         \
                _mm256_storeu_ps(y + i, vop(va, _mm256_loadu_ps(b + i)));      \
        }                                                                      \
        for (; i < n; i++) y[i] = a[i * sa] op b[i * sb];                      \
    }
BINARY(add, _mm256_add_ps, +)
BINARY(sub, _mm256_sub_ps, -)
BINARY(mul, _mm256_mul_ps, *)
BINARY(div, _mm256_div_ps, /)

/* ---- lane reductions ---------------------------------------------------- */

/* Lanes 0-3, 4-7, 8-11 and 12-15 live in four registers of four doubles;
 * each step converts 16 floats to double (exactly) and adds them. */
static inline void lanes_load(const double *l, __m256d a[4]) {
    for (int k = 0; k < 4; k++) a[k] = _mm256_loadu_pd(l + 4 * k);
}

static inline void lanes_store(double *l, const __m256d a[4]) {
    for (int k = 0; k < 4; k++) _mm256_storeu_pd(l + 4 * k, a[k]);
}

void nd__sum_lanes_avx2(int64_t n, const float *x, double *l) {
    __m256d a[4];
    lanes_load(l, a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 4; k++)
            a[k] = _mm256_add_pd(a[k], _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4 * k)));
    lanes_store(l, a);
    for (; i < n; i++) l[i % ND_LANES] += x[i];
}

void nd__acc_double_avx2(int64_t n, const float *x, double *acc) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_pd(acc + i, _mm256_add_pd(_mm256_loadu_pd(acc + i),
                                                _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
        _mm256_storeu_pd(acc + i + 4, _mm256_add_pd(_mm256_loadu_pd(acc + i + 4),
                                                    _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
    }
    for (; i < n; i++) acc[i] += x[i];
}

/* (x - mean) y and (x - mean)^2 as a product and a sum, never fused, as in
 * the twins */
static inline __m256d dev(const float *x, __m256d mean) {
    return _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x)), mean);
}

void nd__dotdev_lanes_avx2(int64_t n, const float *x, double mean, const float *y,
                           double *l) {
    __m256d a[4], vm = _mm256_set1_pd(mean);
    lanes_load(l, a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 4; k++) {
            __m256d yk = _mm256_cvtps_pd(_mm_loadu_ps(y + i + 4 * k));
            a[k] = _mm256_add_pd(a[k], _mm256_mul_pd(dev(x + i + 4 * k, vm), yk));
        }
    lanes_store(l, a);
    for (; i < n; i++) {
        double d = (double)x[i] - mean;
        double p = d * (double)y[i];
        l[i % ND_LANES] += p;
    }
}

void nd__sumsq_lanes_avx2(int64_t n, const float *x, double mean, double *l) {
    __m256d a[4], vm = _mm256_set1_pd(mean);
    lanes_load(l, a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 4; k++) {
            __m256d d = dev(x + i + 4 * k, vm);
            a[k] = _mm256_add_pd(a[k], _mm256_mul_pd(d, d));
        }
    lanes_store(l, a);
    for (; i < n; i++) {
        double d = (double)x[i] - mean;
        double sq = d * d;
        l[i % ND_LANES] += sq;
    }
}

/* _mm256_max_ps(v, m) is v > m ? v : m: a NaN v leaves m, as the twin
 * skips it; the NaNs are counted apart. */
#define EXTREMUM(name, vop, cmp)                                               \
    bool nd__##name##_lanes_avx2(int64_t n, const float *x, float *l) {        \
        __m256 m0 = _mm256_loadu_ps(l), m1 = _mm256_loadu_ps(l + 8);           \
        __m256 nan = _mm256_setzero_ps();                                      \
        int64_t i = 0;                                                         \
        for (; i + 16 <= n; i += 16) {                                         \
            __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8); \
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(v0, v1, _CMP_UNORD_Q));      \
            m0 = vop(v0, m0);                                                  \
            m1 = vop(v1, m1);                                                  \
        }                                                                      \
        _mm256_storeu_ps(l, m0);                                               \
        _mm256_storeu_ps(l + 8, m1);                                           \
        bool any = _mm256_movemask_ps(nan) != 0;                               \
        for (; i < n; i++) {                                                   \
            float v = x[i];                                                    \
            if (v != v) any = true;                                            \
            else if (v cmp l[i % ND_LANES]) l[i % ND_LANES] = v;               \
        }                                                                      \
        return any;                                                            \
    }
EXTREMUM(max, _mm256_max_ps, >)
EXTREMUM(min, _mm256_min_ps, <)

/* ---- softmax ------------------------------------------------------------ */

static float row_max(int64_t n, const float *x) {
    float l[ND_LANES];
    for (int j = 0; j < ND_LANES; j++) l[j] = -INFINITY;
    nd__max_lanes_avx2(n, x, l);
    return nd__combine_max(l);
}

static inline __m256d add_halves_lo(__m256d acc, __m256 e) {
    return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
}
static inline __m256d add_halves_hi(__m256d acc, __m256 e) {
    return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
}

/* The exps of one block of 32, x_i - m for x_i in x[0..32), into e. The
 * four vectors take the fast exp together when every x_i - m >=
 * -EXP_FAST (x_i - m is <= 0, or NaN). */
static inline void exp_block(const float *x, __m256 vm, float *e) {
    __m256 d[4];
    __m256 ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    for (int k = 0; k < 4; k++) {
        d[k] = _mm256_sub_ps(_mm256_loadu_ps(x + 8 * k), vm);
        ok = _mm256_and_ps(ok, _mm256_cmp_ps(d[k], set1(-EXP_FAST), _CMP_GE_OQ));
    }
    if (_mm256_movemask_ps(ok) == 0xff)
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(e + 8 * k, exp8_fast(d[k]));
    else
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(e + 8 * k, exp8(d[k]));
}

/* e_i = e^{x_i - m} for the whole row, stored to y when y is not NULL,
 * and the sixteen lane sums of the e_i in l, blocks of 32 summed in float
 * first as in the twin. Up to SPLIT floats at a time go in two passes,
 * the exps (into y, or a buffer) and then their sums: in one loop the
 * sums lengthen each block's chain and the core overlaps fewer blocks
 * (the bits are the same). Each block also prefetches the same stretch of
 * `next`, so that the next row arrives while this one computes: the core
 * issues no loads of its own meanwhile, and the hardware prefetchers stop
 * at each new page. Figures: docs/PERFORMANCE.md, "Elementwise loops". */
static void exp_sum(int64_t n, const float *x, float m, float *y, double *l,
                    const float *next) {
    __m256 vm = set1(m);
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    float buf[SPLIT];
    int64_t i = 0;
    while (n - i >= 32) {
        int64_t len = n - i < SPLIT ? (n - i) / 32 * 32 : SPLIT;
        float *e = y ? y + i : buf;
        if (next) {
            int64_t end = n - (i + len) < 32 ? n : i + len; /* the last block: to the end */
            for (int64_t j = i; j < end; j += 16) _mm_prefetch((const char *)(next + j), _MM_HINT_T0);
        }
        for (int64_t j = 0; j < len; j += 32) exp_block(x + i + j, vm, e + j);
        for (int64_t j = 0; j < len; j += 32) {
            const float *b = e + j;
            __m256 q = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(b), _mm256_loadu_ps(b + 16)),
                                     _mm256_add_ps(_mm256_loadu_ps(b + 8), _mm256_loadu_ps(b + 24)));
            a0 = add_halves_lo(a0, q);
            a1 = add_halves_hi(a1, q);
        }
        i += len;
    }
    if (i + 16 <= n) {
        __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm));
        if (y) {
            _mm256_storeu_ps(y + i, e0);
            _mm256_storeu_ps(y + i + 8, e1);
        }
        a0 = add_halves_lo(a0, e0);
        a1 = add_halves_hi(a1, e0);
        a2 = add_halves_lo(a2, e1);
        a3 = add_halves_hi(a3, e1);
        i += 16;
    }
    _mm256_storeu_pd(l, a0);
    _mm256_storeu_pd(l + 4, a1);
    _mm256_storeu_pd(l + 8, a2);
    _mm256_storeu_pd(l + 12, a3);
    if (i < n) {
        float buf[16] = {0};
        int64_t r = n - i;
        memcpy(buf, x + i, (size_t)r * sizeof(float));
        _mm256_storeu_ps(buf, exp8(_mm256_sub_ps(_mm256_loadu_ps(buf), vm)));
        _mm256_storeu_ps(buf + 8, exp8(_mm256_sub_ps(_mm256_loadu_ps(buf + 8), vm)));
        for (int64_t j = 0; j < r; j++) {
            if (y) y[i + j] = buf[j];
            l[j] += buf[j];
        }
    }
}

void nd__softmax_avx2(int64_t n, const float *x, float *y, const float *next) {
    double l[ND_LANES];
    exp_sum(n, x, row_max(n, x), y, l, next);
    float inv = (float)(1.0 / nd__combine_lanes(l));
    __m256 vi = set1(inv);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), vi));
    for (; i < n; i++) y[i] = y[i] * inv;
}

void nd__log_softmax_avx2(int64_t n, const float *x, float *y, const float *next) {
    double l[ND_LANES];
    float m = row_max(n, x);
    exp_sum(n, x, m, NULL, l, next);
    float ls = (float)log(nd__combine_lanes(l));
    __m256 vm = set1(m), vl = set1(ls);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vl));
    for (; i < n; i++) {
        float d = x[i] - m;
        y[i] = d - ls;
    }
}

#if defined(ND_AVX2_TARGET_PUSHED)
#pragma clang attribute pop
#endif
#else
typedef int nd__no_avx2_here; /* other CPUs: nothing to compile */
#endif
