/* The scalar kernel set: plain C, the specification every SIMD twin is
 * tested against.
 *
 * Each product is a statement of its own, rounded to float before it is
 * added: where float expressions are evaluated wider (s390x evaluates
 * them in double, FLT_EVAL_METHOD 1), acc += a * b in one expression would
 * round once, as an FMA does, and the scalar kernels would give other
 * bits there than on every other target (docs/PORTABILITY.md). */
#include "kernels.h"

#define MR 4
#define NR 8

/* The rows x cols corner of a C tile (+)= A panel B panel, one rank-1
 * update per p */
static void gemm_edge(int64_t k, const float *a, const float *b, int64_t ldb, float *c,
                      int64_t ldc, bool accumulate, int rows, int cols) {
    float acc[MR][NR] = {{0}};
    for (int64_t p = 0; p < k; p++, a += MR, b += ldb)
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) {
                float p_ij = a[i] * b[j];
                acc[i][j] += p_ij;
            }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

/* The whole tile */
static void gemm_tile(int64_t k, const float *a, const float *b, int64_t ldb,
                      float *c, int64_t ldc, bool accumulate) {
    gemm_edge(k, a, b, ldb, c, ldc, accumulate, MR, NR);
}

/* The rows x cols corner of a C tile (+)= A panel B, B row p at
 * b + boff[p] */
static void gemm_tile_rows(int64_t k, const float *a, const float *b, const int64_t *boff,
                           float *c, int64_t ldc, bool accumulate, int rows, int cols) {
    float acc[MR][NR] = {{0}};
    for (int64_t p = 0; p < k; p++, a += MR)
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) {
                float p_ij = a[i] * b[boff[p] + j];
                acc[i][j] += p_ij;
            }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

/* The rows x cols corner of a C tile (+)= A B panel, A(i, p) at
 * a[aoff[p] + roff[i]] */
static void gemm_tile_arows(int64_t k, const float *a, const int64_t *aoff,
                            const int64_t *roff, const float *b, float *c, int64_t ldc,
                            bool accumulate, int rows, int cols) {
    float acc[MR][NR] = {{0}};
    for (int64_t p = 0; p < k; p++, b += NR)
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) {
                float p_ij = a[aoff[p] + roff[i]] * b[j];
                acc[i][j] += p_ij;
            }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

/* One mr-row panel of a row-major A: dst[p * mr + i] = src[i * rs + p] */
static void gemm_pack_a(int64_t kc, const float *src, int64_t rs, float *dst) {
    for (int64_t p = 0; p < kc; p++, dst += MR)
        for (int i = 0; i < MR; i++) dst[i] = src[i * rs + p];
}

/* One nr-column panel of a column-major B: dst[p * nr + j] = src[j * cs + p] */
static void gemm_pack_bt(int64_t kc, const float *src, int64_t cs, float *dst) {
    for (int64_t p = 0; p < kc; p++, dst += NR)
        for (int j = 0; j < NR; j++) dst[j] = src[j * cs + p];
}

const nd_kernels nd__kernels_scalar = {
    .name = "scalar",
    .gemm_mr = MR,
    .gemm_nr = NR,
    .gemm_tile = gemm_tile,
    .gemm_edge = gemm_edge,
    .gemm_pack_a = gemm_pack_a,
    .gemm_pack_bt = gemm_pack_bt,
    .gemm_tile_rows = gemm_tile_rows,
    .gemm_tile_arows = gemm_tile_arows,
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
    .acc_double = nd__acc_double_scalar,
    .sumsq_lanes = nd__sumsq_lanes_scalar,
    .dotdev_lanes = nd__dotdev_lanes_scalar,
    .max_lanes = nd__max_lanes_scalar,
    .min_lanes = nd__min_lanes_scalar,
    .softmax = nd__softmax_scalar,
    .log_softmax = nd__log_softmax_scalar,
};
