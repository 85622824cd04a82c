/* The scalar kernel set: plain C, the specification every SIMD twin is
 * tested against. */
#include "kernels.h"

#define MR 4
#define NR 8

/* C tile (+)= A panel B panel, one rank-1 update per p */
static void gemm_tile(int64_t k, const float *a, const float *b, float *c,
                      int64_t ldc, bool accumulate) {
    float acc[MR][NR] = {{0}};
    for (int64_t p = 0; p < k; p++, a += MR, b += NR)
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
};
