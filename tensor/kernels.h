/* The kernel sets: the scalar twins (the specification), AVX2+FMA and NEON.
 * Each set fills one table; the dispatcher picks the table once, at the
 * first use, from what the CPU offers and ND_KERNELS. Private to tensor/. */
#ifndef NANODIFF_TENSOR_KERNELS_H
#define NANODIFF_TENSOR_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct nd_kernels {
    const char *name;
    /* GEMM micro-kernel: an mr x nr tile of C (row-major, row stride ldc)
     *   C = (accumulate ? C : 0) + sum_p a[p*mr + i] * b[p*nr + j]
     * over p = 0..k-1 in order, from packed panels of A (mr rows) and B
     * (nr columns). */
    int gemm_mr, gemm_nr;
    void (*gemm_tile)(int64_t k, const float *a, const float *b, float *c,
                      int64_t ldc, bool accumulate);
} nd_kernels;

const nd_kernels *nd__kernels(void); /* the active set */
extern const nd_kernels nd__kernels_scalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const nd_kernels nd__kernels_avx2;
bool nd__cpu_has_avx2_fma(void);
#endif
#if defined(__aarch64__)
extern const nd_kernels nd__kernels_neon;
#endif

/* C[m,n] = (accumulate ? C : 0) + A[m,k] B[k,n], A(i,p) at a[i*rsa + p*csa],
 * B(p,j) at b[p*rsb + j*csb], C row-major with row stride ldc. Every C
 * element sums its k products in ascending p in one thread, so the result
 * does not depend on the thread count. */
void nd__sgemm(const nd_kernels *kern, int64_t m, int64_t n, int64_t k,
               const float *a, int64_t rsa, int64_t csa, const float *b,
               int64_t rsb, int64_t csb, float *c, int64_t ldc, bool accumulate);

#endif
