/* The NEON kernel set (aarch64, where Advanced SIMD is always present). */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "kernels.h"

#define MR 8
#define NR 12

/* 8 x 12 tile: 24 accumulators of 4 floats; per p, two loads of A, three
 * of B, and 24 FMAs by lane. */
#define ROW(i, av, lane)                                                       \
    c##i##0 = vfmaq_laneq_f32(c##i##0, b0, av, lane);                          \
    c##i##1 = vfmaq_laneq_f32(c##i##1, b1, av, lane);                          \
    c##i##2 = vfmaq_laneq_f32(c##i##2, b2, av, lane);
#define DECL(i)                                                                \
    float32x4_t c##i##0 = vdupq_n_f32(0), c##i##1 = vdupq_n_f32(0),            \
                c##i##2 = vdupq_n_f32(0);
#define STORE(i)                                                               \
    do {                                                                       \
        float *ci = c + (i) * ldc;                                             \
        if (accumulate) {                                                      \
            c##i##0 = vaddq_f32(c##i##0, vld1q_f32(ci));                       \
            c##i##1 = vaddq_f32(c##i##1, vld1q_f32(ci + 4));                   \
            c##i##2 = vaddq_f32(c##i##2, vld1q_f32(ci + 8));                   \
        }                                                                      \
        vst1q_f32(ci, c##i##0);                                                \
        vst1q_f32(ci + 4, c##i##1);                                            \
        vst1q_f32(ci + 8, c##i##2);                                            \
    } while (0)

static void gemm_tile(int64_t k, const float *a, const float *b, int64_t ldb,
                      float *c, int64_t ldc, bool accumulate) {
    DECL(0) DECL(1) DECL(2) DECL(3) DECL(4) DECL(5) DECL(6) DECL(7)
    for (int64_t p = 0; p < k; p++, a += MR, b += ldb) {
        float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        ROW(0, a0, 0) ROW(1, a0, 1) ROW(2, a0, 2) ROW(3, a0, 3)
        ROW(4, a1, 0) ROW(5, a1, 1) ROW(6, a1, 2) ROW(7, a1, 3)
    }
    STORE(0); STORE(1); STORE(2); STORE(3);
    STORE(4); STORE(5); STORE(6); STORE(7);
}

const nd_kernels nd__kernels_neon = {
    .name = "neon",
    .gemm_mr = MR,
    .gemm_nr = NR,
    .gemm_tile = gemm_tile,
    .vexp = nd__exp_neon,
    .vlog = nd__log_neon,
    .vtanh = nd__tanh_neon,
    .vsigmoid = nd__sigmoid_neon,
    .vsilu = nd__silu_neon,
    .vgelu = nd__gelu_neon,
    .vadd = nd__add_neon,
    .vsub = nd__sub_neon,
    .vmul = nd__mul_neon,
    .vdiv = nd__div_neon,
    .sum_lanes = nd__sum_lanes_neon,
    .acc_double = nd__acc_double_neon,
    .sumsq_lanes = nd__sumsq_lanes_neon,
    .dotdev_lanes = nd__dotdev_lanes_neon,
    .max_lanes = nd__max_lanes_neon,
    .min_lanes = nd__min_lanes_neon,
    .softmax = nd__softmax_neon,
    .log_softmax = nd__log_softmax_neon,
};

#else
typedef int nd__no_neon_here; /* other CPUs: nothing to compile */
#endif
