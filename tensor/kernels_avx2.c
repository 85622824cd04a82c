/* The AVX2+FMA kernel set. This file is compiled for AVX2 and FMA (the
 * flags, or the pragmas of avx2_target.h), so nothing in it may run before the
 * dispatcher has checked the CPU. */
#if defined(__x86_64__) || defined(_M_X64)
#include "avx2_target.h" /* the instruction sets, and immintrin.h */

#include "kernels.h"

#define MR 6
#define NR 16

/* Every tile function below is one body instantiated for a fixed number of
 * rows; the compilers need to inline it for that (a fallback keeps plain C
 * compilers working, only slower). */
#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE static inline
#endif

/* R x 16 tile, R <= 6: 2 R accumulators of 8 floats; per p, two loads of B,
 * R broadcasts of A and 2 R FMAs (for R = 6, two FMA ports: 6 cycles per p,
 * while the 4-cycle FMA latency is hidden by 12 independent chains). */
#define ROW(i, p)                                                              \
    if (R > (i)) {                                                             \
        __m256 ai = _mm256_broadcast_ss(a + (p) * MR + (i));                   \
        c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);                            \
        c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);                            \
    }
#define STEP(p)                                                                \
    do {                                                                       \
        __m256 b0 = _mm256_loadu_ps(b + (p) * ldb), b1 = _mm256_loadu_ps(b + (p) * ldb + 8); \
        ROW(0, p) ROW(1, p) ROW(2, p) ROW(3, p) ROW(4, p) ROW(5, p)            \
    } while (0)

/* Row i of the tile: its first `cols` columns (+)= lo, hi. */
ALWAYS_INLINE void store_row(float *ci, __m256 lo, __m256 hi, bool accumulate, int cols) {
    if (cols == NR) {
        if (accumulate) {
            lo = _mm256_add_ps(lo, _mm256_loadu_ps(ci));
            hi = _mm256_add_ps(hi, _mm256_loadu_ps(ci + 8));
        }
        _mm256_storeu_ps(ci, lo);
        _mm256_storeu_ps(ci + 8, hi);
        return;
    }
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lane);
    __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), lane);
    if (accumulate) {
        lo = _mm256_add_ps(lo, _mm256_maskload_ps(ci, m0));
        hi = _mm256_add_ps(hi, _mm256_maskload_ps(ci + 8, m1));
    }
    _mm256_maskstore_ps(ci, m0, lo);
    _mm256_maskstore_ps(ci + 8, m1, hi);
}

ALWAYS_INLINE void tile(const int R, int64_t k, const float *a, const float *b,
                        int64_t ldb, float *c, int64_t ldc, bool accumulate, int cols) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int i = 0; i < R; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    int64_t p = 0;
    for (; p + 8 <= k; p += 8, a += 8 * MR, b += 8 * ldb) {
        STEP(0);
        STEP(1);
        STEP(2);
        STEP(3);
        STEP(4);
        STEP(5);
        STEP(6);
        STEP(7);
    }
    for (; p < k; p++, a += MR, b += ldb) STEP(0);
    store_row(c, c00, c01, accumulate, cols);
    if (R > 1) store_row(c + ldc, c10, c11, accumulate, cols);
    if (R > 2) store_row(c + 2 * ldc, c20, c21, accumulate, cols);
    if (R > 3) store_row(c + 3 * ldc, c30, c31, accumulate, cols);
    if (R > 4) store_row(c + 4 * ldc, c40, c41, accumulate, cols);
    if (R > 5) store_row(c + 5 * ldc, c50, c51, accumulate, cols);
}

static void gemm_tile(int64_t k, const float *a, const float *b, int64_t ldb,
                      float *c, int64_t ldc, bool accumulate) {
    if (ldb == NR) tile(MR, k, a, b, NR, c, ldc, accumulate, NR); /* a packed panel */
    else tile(MR, k, a, b, ldb, c, ldc, accumulate, NR);
}

/* Only the rows x cols corner: fewer FMAs for fewer rows, masked stores
 * for fewer columns. Each element sees the same operations as in a full
 * tile, so the bits do not depend on where the tile edges fall. */
static void gemm_edge(int64_t k, const float *a, const float *b, int64_t ldb, float *c,
                      int64_t ldc, bool accumulate, int rows, int cols) {
    switch (rows) {
    case 1: tile(1, k, a, b, ldb, c, ldc, accumulate, cols); break;
    case 2: tile(2, k, a, b, ldb, c, ldc, accumulate, cols); break;
    case 3: tile(3, k, a, b, ldb, c, ldc, accumulate, cols); break;
    case 4: tile(4, k, a, b, ldb, c, ldc, accumulate, cols); break;
    case 5: tile(5, k, a, b, ldb, c, ldc, accumulate, cols); break;
    default: tile(6, k, a, b, ldb, c, ldc, accumulate, cols); break;
    }
}

/* The same with B row p at b + boff[p]: a convolution's input rows read in
 * place. One offset load more per p, otherwise the tile above. */
#define STEP_ROWS(p)                                                           \
    do {                                                                       \
        const float *bp = b + boff[p];                                         \
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);         \
        ROW(0, p) ROW(1, p) ROW(2, p) ROW(3, p) ROW(4, p) ROW(5, p)            \
    } while (0)

ALWAYS_INLINE void tile_rows(const int R, int64_t k, const float *a, const float *b,
                             const int64_t *boff, float *c, int64_t ldc, bool accumulate,
                             int cols) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int i = 0; i < R; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    int64_t p = 0;
    for (; p + 8 <= k; p += 8, a += 8 * MR, boff += 8) {
        STEP_ROWS(0);
        STEP_ROWS(1);
        STEP_ROWS(2);
        STEP_ROWS(3);
        STEP_ROWS(4);
        STEP_ROWS(5);
        STEP_ROWS(6);
        STEP_ROWS(7);
    }
    for (; p < k; p++, a += MR, boff++) STEP_ROWS(0);
    store_row(c, c00, c01, accumulate, cols);
    if (R > 1) store_row(c + ldc, c10, c11, accumulate, cols);
    if (R > 2) store_row(c + 2 * ldc, c20, c21, accumulate, cols);
    if (R > 3) store_row(c + 3 * ldc, c30, c31, accumulate, cols);
    if (R > 4) store_row(c + 4 * ldc, c40, c41, accumulate, cols);
    if (R > 5) store_row(c + 5 * ldc, c50, c51, accumulate, cols);
}

static void gemm_tile_rows(int64_t k, const float *a, const float *b, const int64_t *boff,
                           float *c, int64_t ldc, bool accumulate, int rows, int cols) {
    switch (rows) {
    case 1: tile_rows(1, k, a, b, boff, c, ldc, accumulate, cols); break;
    case 2: tile_rows(2, k, a, b, boff, c, ldc, accumulate, cols); break;
    case 3: tile_rows(3, k, a, b, boff, c, ldc, accumulate, cols); break;
    case 4: tile_rows(4, k, a, b, boff, c, ldc, accumulate, cols); break;
    case 5: tile_rows(5, k, a, b, boff, c, ldc, accumulate, cols); break;
    default: tile_rows(6, k, a, b, boff, c, ldc, accumulate, cols); break;
    }
}

/* The same with A read in place: A(i, p) at a[aoff[p] + roff[i]] (a
 * convolution's padded input, p a position, i a row (c, u, v) of im2col),
 * B a packed panel (rows NR apart). */
#define ROW_A(i)                                                               \
    if (R > (i)) {                                                             \
        __m256 ai = _mm256_broadcast_ss(ap + r##i);                            \
        c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);                            \
        c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);                            \
    }
#define STEP_A(p)                                                              \
    do {                                                                       \
        const float *ap = a + aoff[p];                                         \
        __m256 b0 = _mm256_loadu_ps(b + (p) * NR), b1 = _mm256_loadu_ps(b + (p) * NR + 8); \
        ROW_A(0) ROW_A(1) ROW_A(2) ROW_A(3) ROW_A(4) ROW_A(5)                  \
    } while (0)

ALWAYS_INLINE void tile_arows(const int R, int64_t k, const float *a, const int64_t *aoff,
                              const int64_t *roff, const float *b, float *c, int64_t ldc,
                              bool accumulate, int cols) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    const int64_t r0 = roff[0], r1 = R > 1 ? roff[1] : 0, r2 = R > 2 ? roff[2] : 0;
    const int64_t r3 = R > 3 ? roff[3] : 0, r4 = R > 4 ? roff[4] : 0, r5 = R > 5 ? roff[5] : 0;
    for (int i = 0; i < R; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    int64_t p = 0;
    for (; p + 8 <= k; p += 8, aoff += 8, b += 8 * NR) {
        STEP_A(0);
        STEP_A(1);
        STEP_A(2);
        STEP_A(3);
        STEP_A(4);
        STEP_A(5);
        STEP_A(6);
        STEP_A(7);
    }
    for (; p < k; p++, aoff++, b += NR) STEP_A(0);
    store_row(c, c00, c01, accumulate, cols);
    if (R > 1) store_row(c + ldc, c10, c11, accumulate, cols);
    if (R > 2) store_row(c + 2 * ldc, c20, c21, accumulate, cols);
    if (R > 3) store_row(c + 3 * ldc, c30, c31, accumulate, cols);
    if (R > 4) store_row(c + 4 * ldc, c40, c41, accumulate, cols);
    if (R > 5) store_row(c + 5 * ldc, c50, c51, accumulate, cols);
}

static void gemm_tile_arows(int64_t k, const float *a, const int64_t *aoff,
                            const int64_t *roff, const float *b, float *c, int64_t ldc,
                            bool accumulate, int rows, int cols) {
    switch (rows) {
    case 1: tile_arows(1, k, a, aoff, roff, b, c, ldc, accumulate, cols); break;
    case 2: tile_arows(2, k, a, aoff, roff, b, c, ldc, accumulate, cols); break;
    case 3: tile_arows(3, k, a, aoff, roff, b, c, ldc, accumulate, cols); break;
    case 4: tile_arows(4, k, a, aoff, roff, b, c, ldc, accumulate, cols); break;
    case 5: tile_arows(5, k, a, aoff, roff, b, c, ldc, accumulate, cols); break;
    default: tile_arows(6, k, a, aoff, roff, b, c, ldc, accumulate, cols); break;
    }
}

/* r[i] becomes column i of the 8 x 8 block whose rows were r[0..7] */
static inline void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* One 6-row panel of a row-major A: dst[p * 6 + i] = src[i * rs + p]. Eight
 * columns at a time: six rows loaded, transposed as an 8 x 8 block with two
 * zero rows, each column stored as 8 floats whose last two the next column
 * overwrites (the last column of a block stores only its 6). */
static void gemm_pack_a(int64_t kc, const float *src, int64_t rs, float *dst) {
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8, dst += 8 * MR) {
        __m256 r[8];
        for (int i = 0; i < MR; i++) r[i] = _mm256_loadu_ps(src + i * rs + p);
        r[6] = r[7] = _mm256_setzero_ps();
        transpose8(r);
        for (int j = 0; j < 7; j++) _mm256_storeu_ps(dst + j * MR, r[j]);
        _mm_storeu_ps(dst + 7 * MR, _mm256_castps256_ps128(r[7]));
        _mm_storel_pi((__m64 *)(dst + 7 * MR + 4), _mm256_extractf128_ps(r[7], 1));
    }
    for (; p < kc; p++, dst += MR)
        for (int i = 0; i < MR; i++) dst[i] = src[i * rs + p];
}

/* One 16-column panel of a column-major B, dst[p * 16 + j] = src[j * cs + p]:
 * eight rows of two groups of eight columns at a time, each an 8 x 8
 * transpose in registers (eight loads, 24 shuffles, eight stores in place
 * of 64 scalar copies). */
static void gemm_pack_bt(int64_t kc, const float *src, int64_t cs, float *dst) {
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8)
        for (int jg = 0; jg < NR; jg += 8) {
            const float *s = src + jg * cs + p;
            float *d = dst + p * NR + jg;
            __m256 r[8];
            for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(s + j * cs);
            transpose8(r);
            for (int i = 0; i < 8; i++) _mm256_storeu_ps(d + i * NR, r[i]);
        }
    for (dst += p * NR; p < kc; p++, dst += NR)
        for (int j = 0; j < NR; j++) dst[j] = src[j * cs + p];
}

/* Plain stores up to dst's first 32-byte boundary and after its last,
 * non-temporal ones between (they need the alignment). */
static void stream_copy(int64_t n, const float *src, float *dst) {
    int64_t i = 0;
    for (; i < n && (uintptr_t)(dst + i) % 32 != 0; i++) dst[i] = src[i];
    for (; i + 8 <= n; i += 8) _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
    for (; i < n; i++) dst[i] = src[i];
}

static void stream_fence(void) { _mm_sfence(); }

/* ---- Philox-4x32-10, eight blocks at a time ------------------------------ */

/* The high and low 32 bits of the 32 x 32-bit products m c, lane by lane:
 * _mm256_mul_epu32 multiplies the even lanes, so the odd ones go through
 * it shifted down, and the halves are blended back into place. */
static inline void mul_hi_lo(__m256i c, __m256i m, __m256i *hi, __m256i *lo) {
    __m256i even = _mm256_mul_epu32(c, m);
    __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(c, 32), m);
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

static void philox_uniform(uint64_t seed, uint32_t stream, uint64_t index, int64_t nblocks,
                           float *dst) {
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    const __m256 unit = _mm256_set1_ps(0x1p-24f);
    for (int64_t b = 0; b < nblocks; b += 8) {
        int here = nblocks - b < 8 ? (int)(nblocks - b) : 8; /* lanes past it: unused */
        uint32_t lo[8], hi[8];
        for (int l = 0; l < 8; l++) {
            uint64_t i = index + (uint64_t)(b + l);
            lo[l] = (uint32_t)i;
            hi[l] = (uint32_t)(i >> 32);
        }
        __m256i c0 = _mm256_loadu_si256((const __m256i *)lo);
        __m256i c1 = _mm256_loadu_si256((const __m256i *)hi);
        __m256i c2 = _mm256_set1_epi32((int)stream), c3 = _mm256_setzero_si256();
        uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
        for (int round = 0; round < 10; round++) {
            if (round > 0) {
                k0 += 0x9E3779B9u;
                k1 += 0xBB67AE85u;
            }
            __m256i hi0, lo0, hi1, lo1;
            mul_hi_lo(c0, m0, &hi0, &lo0);
            mul_hi_lo(c2, m1, &hi1, &lo1);
            c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
            c1 = lo1;
            c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
            c3 = lo0;
        }
        /* (w >> 8) is below 2^24: its conversion and the scaling are exact */
        float w[4][8];
        const __m256i words[4] = {c0, c1, c2, c3};
        for (int q = 0; q < 4; q++)
            _mm256_storeu_ps(w[q], _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(words[q], 8)),
                                                 unit));
        for (int l = 0; l < here; l++)
            for (int q = 0; q < 4; q++) dst[4 * (b + l) + q] = w[q][l];
    }
}

const nd_kernels nd__kernels_avx2 = {
    .name = "avx2",
    .gemm_mr = MR,
    .gemm_nr = NR,
    .gemm_tile = gemm_tile,
    .gemm_edge = gemm_edge,
    .gemm_pack_a = gemm_pack_a,
    .gemm_pack_bt = gemm_pack_bt,
    .gemm_tile_rows = gemm_tile_rows,
    .gemm_tile_arows = gemm_tile_arows,
    .vexp = nd__exp_avx2,
    .vlog = nd__log_avx2,
    .vtanh = nd__tanh_avx2,
    .vsigmoid = nd__sigmoid_avx2,
    .vsilu = nd__silu_avx2,
    .vgelu = nd__gelu_avx2,
    .vadd = nd__add_avx2,
    .vsub = nd__sub_avx2,
    .vmul = nd__mul_avx2,
    .vdiv = nd__div_avx2,
    .sum_lanes = nd__sum_lanes_avx2,
    .acc_double = nd__acc_double_avx2,
    .sumsq_lanes = nd__sumsq_lanes_avx2,
    .dotdev_lanes = nd__dotdev_lanes_avx2,
    .max_lanes = nd__max_lanes_avx2,
    .min_lanes = nd__min_lanes_avx2,
    .softmax = nd__softmax_avx2,
    .log_softmax = nd__log_softmax_avx2,
    .stream_copy = stream_copy,
    .stream_fence = stream_fence,
    .philox_uniform = philox_uniform,
};

#if defined(ND_AVX2_TARGET_PUSHED)
#pragma clang attribute pop
#endif
#else
typedef int nd__no_avx2_here; /* other CPUs: nothing to compile */
#endif
