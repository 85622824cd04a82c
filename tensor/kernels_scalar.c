/* The scalar kernel set: plain C, the specification every SIMD twin is
 * tested against. */
#include "kernels.h"

#define MR 4
#define NR 8

/* C tile (+)= A panel B panel, one rank-1 update per p */
static void gemm_tile(int64_t k, const float *a, const float *b, int64_t ldb,
                      float *c, int64_t ldc, bool accumulate) {
    float acc[MR][NR] = {{0}};
    for (int64_t p = 0; p < k; p++, a += MR, b += ldb)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) acc[i][j] += a[i] * b[j];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

const nd_kernels nd__kernels_scalar = {
    .name = "scalar",
    .gemm_mr = MR,
    .gemm_nr = NR,
    .gemm_tile = gemm_tile,
    .vexp = nd__exp_scalar,
    .vlog = nd__log_scalar,
    .vtanh = nd__tanh_scalar,
    .vsigmoid = nd__sigmoid_scalar,
    .vsilu = nd__silu_scalar,
    .vgelu = nd__gelu_scalar,
    .vadd = nd__add_scalar,
    .vsub = nd__sub_scalar,
    .vmul = nd__mul_scalar,
    .vdiv = nd__div_scalar,
    .sum_lanes = nd__sum_lanes_scalar,
    .sumsq_lanes = nd__sumsq_lanes_scalar,
    .max_lanes = nd__max_lanes_scalar,
    .min_lanes = nd__min_lanes_scalar,
    .softmax = nd__softmax_scalar,
    .log_softmax = nd__log_softmax_scalar,
};
