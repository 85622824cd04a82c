/* The AVX2+FMA kernel set. This file is compiled with -mavx2 -mfma, so
 * nothing in it may run before the dispatcher has checked the CPU. */
#include <immintrin.h>

#include "kernels.h"

#define MR 6
#define NR 16

/* 6 x 16 tile: 12 accumulators of 8 floats; per p, two loads of B, six
 * broadcasts of A and twelve FMAs (two FMA ports: 6 cycles per p, while the
 * 4-cycle FMA latency is hidden by 12 independent chains). */
#define STEP(p)                                                                \
    do {                                                                       \
        __m256 b0 = _mm256_loadu_ps(b + (p) * ldb), b1 = _mm256_loadu_ps(b + (p) * ldb + 8); \
        __m256 ai = _mm256_broadcast_ss(a + (p) * MR + 0);                     \
        c00 = _mm256_fmadd_ps(ai, b0, c00);                                    \
        c01 = _mm256_fmadd_ps(ai, b1, c01);                                    \
        ai = _mm256_broadcast_ss(a + (p) * MR + 1);                            \
        c10 = _mm256_fmadd_ps(ai, b0, c10);                                    \
        c11 = _mm256_fmadd_ps(ai, b1, c11);                                    \
        ai = _mm256_broadcast_ss(a + (p) * MR + 2);                            \
        c20 = _mm256_fmadd_ps(ai, b0, c20);                                    \
        c21 = _mm256_fmadd_ps(ai, b1, c21);                                    \
        ai = _mm256_broadcast_ss(a + (p) * MR + 3);                            \
        c30 = _mm256_fmadd_ps(ai, b0, c30);                                    \
        c31 = _mm256_fmadd_ps(ai, b1, c31);                                    \
        ai = _mm256_broadcast_ss(a + (p) * MR + 4);                            \
        c40 = _mm256_fmadd_ps(ai, b0, c40);                                    \
        c41 = _mm256_fmadd_ps(ai, b1, c41);                                    \
        ai = _mm256_broadcast_ss(a + (p) * MR + 5);                            \
        c50 = _mm256_fmadd_ps(ai, b0, c50);                                    \
        c51 = _mm256_fmadd_ps(ai, b1, c51);                                    \
    } while (0)

static void gemm_tile(int64_t k, const float *a, const float *b, int64_t ldb,
                      float *c, int64_t ldc, bool accumulate) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int i = 0; i < MR; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    int64_t p = 0;
    for (; p + 4 <= k; p += 4, a += 4 * MR, b += 4 * ldb) {
        STEP(0);
        STEP(1);
        STEP(2);
        STEP(3);
    }
    for (; p < k; p++, a += MR, b += ldb) STEP(0);
    __m256 rows[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                          {c30, c31}, {c40, c41}, {c50, c51}};
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        if (accumulate) {
            rows[i][0] = _mm256_add_ps(rows[i][0], _mm256_loadu_ps(ci));
            rows[i][1] = _mm256_add_ps(rows[i][1], _mm256_loadu_ps(ci + 8));
        }
        _mm256_storeu_ps(ci, rows[i][0]);
        _mm256_storeu_ps(ci + 8, rows[i][1]);
    }
}

const nd_kernels nd__kernels_avx2 = {
    .name = "avx2",
    .gemm_mr = MR,
    .gemm_nr = NR,
    .gemm_tile = gemm_tile,
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
    .sumsq_lanes = nd__sumsq_lanes_avx2,
    .max_lanes = nd__max_lanes_avx2,
    .min_lanes = nd__min_lanes_avx2,
    .softmax = nd__softmax_avx2,
    .log_softmax = nd__log_softmax_avx2,
};
