/* The kernel sets: the scalar twins (the specification), AVX2+FMA and NEON.
 * Each set fills one table; the dispatcher picks the table once, at the
 * first use, from what the CPU offers and ND_KERNELS. Private to tensor/. */
#ifndef NANODIFF_TENSOR_KERNELS_H
#define NANODIFF_TENSOR_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "vmath.h"

typedef struct nd_kernels {
    const char *name;
    /* GEMM micro-kernel: an mr x nr tile of C (row-major, row stride ldc)
     *   C = (accumulate ? C : 0) + sum_p a[p*mr + i] * b[p*ldb + j]
     * over p = 0..k-1 in order, from a packed panel of A (mr rows) and nr
     * columns of B, 4-byte aligned, rows ldb apart (nr for a packed panel,
     * the row stride for a row-major B read in place). */
    int gemm_mr, gemm_nr;
    void (*gemm_tile)(int64_t k, const float *a, const float *b, int64_t ldb,
                      float *c, int64_t ldc, bool accumulate);
    /* The same for the top-left rows x cols corner of the tile only
     * (1 <= rows <= mr, 1 <= cols <= nr; the A panel still has mr rows):
     * the rest of C is neither read nor written, and each element gets the
     * bits gemm_tile would give it. NULL in a set without one: the caller
     * runs gemm_tile on a scratch tile. */
    void (*gemm_edge)(int64_t k, const float *a, const float *b, int64_t ldb,
                      float *c, int64_t ldc, bool accumulate, int rows, int cols);
    /* Packs one full mr-row panel of a row-major A for the kernels:
     * dst[p * mr + i] = src[i * rs + p] for p < kc, i < mr. NULL: the
     * caller packs it. */
    void (*gemm_pack_a)(int64_t kc, const float *src, int64_t rs, float *dst);
    /* Packs one full nr-column panel of a column-major B (a transposed
     * operand, as in attention's w v^T or a Linear layer's x W^T):
     * dst[p * nr + j] = src[j * cs + p] for p < kc, j < nr. NULL: the
     * caller packs it. */
    void (*gemm_pack_bt)(int64_t kc, const float *src, int64_t cs, float *dst);
    /* As gemm_edge (rows <= mr, cols <= nr), but B row p is read in place
     * at b + boff[p] (nr floats readable there, whatever cols): the rows of
     * a convolution's padded input. NULL: conv2d lowers to im2col and the
     * GEMM instead. */
    void (*gemm_tile_rows)(int64_t k, const float *a, const float *b, const int64_t *boff,
                           float *c, int64_t ldc, bool accumulate, int rows, int cols);
    /* As gemm_edge, but A is read in place, A(i, p) at a[aoff[p] + roff[i]]
     * (roff has `rows` entries), and B is a packed panel (rows nr apart):
     * the weight gradient of a stride-1 convolution, p a position and i a
     * row (c, u, v) of im2col. NULL: conv2d uses im2col and the GEMM. */
    void (*gemm_tile_arows)(int64_t k, const float *a, const int64_t *aoff,
                            const int64_t *roff, const float *b, float *c, int64_t ldc,
                            bool accumulate, int rows, int cols);

    /* Elementwise approximations (vmath_*.c; bounds in vmath_scalar.c):
     * y[i] = f(x[i]) for i < n, contiguous rows; y may be x. An element's
     * result does not depend on where it sits in the row. */
    void (*vexp)(int64_t n, const float *x, float *y);
    void (*vlog)(int64_t n, const float *x, float *y);
    void (*vtanh)(int64_t n, const float *x, float *y);
    void (*vsigmoid)(int64_t n, const float *x, float *y);
    void (*vsilu)(int64_t n, const float *x, float *y);
    void (*vgelu)(int64_t n, const float *x, float *y);
    /* y[i] = a[i*sa] op b[i*sb] for i < n, sa and sb each 0 or 1 (same
     * shape, scalar and per-channel broadcasts); IEEE results, the same
     * bits in every set. */
    void (*vadd)(int64_t n, const float *a, int64_t sa, const float *b,
                 int64_t sb, float *y);
    void (*vsub)(int64_t n, const float *a, int64_t sa, const float *b,
                 int64_t sb, float *y);
    void (*vmul)(int64_t n, const float *a, int64_t sa, const float *b,
                 int64_t sb, float *y);
    void (*vdiv)(int64_t n, const float *a, int64_t sa, const float *b,
                 int64_t sb, float *y);
    /* Lane reductions over a contiguous row, element i into lane
     * i % ND_LANES (each lane in order), the same bits in every set:
     * sum_lanes adds x[i] in double, sumsq_lanes adds (x[i] - mean)^2 in
     * double, dotdev_lanes adds (x[i] - mean) y[i] in double (a product
     * and a sum, never fused); max_lanes / min_lanes keep the largest /
     * smallest non-NaN value per lane and return whether a NaN was seen. */
    void (*sum_lanes)(int64_t n, const float *x, double *lanes);
    void (*sumsq_lanes)(int64_t n, const float *x, double mean, double *lanes);
    void (*dotdev_lanes)(int64_t n, const float *x, double mean, const float *y,
                         double *lanes);
    bool (*max_lanes)(int64_t n, const float *x, float *lanes);
    bool (*min_lanes)(int64_t n, const float *x, float *lanes);
    /* acc[i] += x[i] in double for i < n: a row of x into one double
     * accumulator per column (sums over a leading axis); the same bits in
     * every set */
    void (*acc_double)(int64_t n, const float *x, double *acc);
    /* softmax and log_softmax of one contiguous row; y may be x. next is
     * NULL or the row the caller will pass next (n floats, contiguous): a
     * hint to load it into the cache while this row computes, never read
     * as data (the scalar twins ignore it). */
    void (*softmax)(int64_t n, const float *x, float *y, const float *next);
    void (*log_softmax)(int64_t n, const float *x, float *y, const float *next);
    /* dst[i] = src[i] for i < n with stores that bypass the caches
     * (non-temporal): an output too large to stay cached is then written
     * without first reading each of its lines in. stream_fence orders
     * those stores before the caller's later ones, so that other threads
     * see them. Both NULL in a set without such stores: outputs are
     * written in place. */
    void (*stream_copy)(int64_t n, const float *src, float *dst);
    void (*stream_fence)(void);
    /* Uniform numbers of Philox-4x32-10 (tensor/rng.c) for the blocks
     * index .. index + nblocks - 1 of (seed, stream): block b's counter
     * words q = 0..3 give dst[4 b + q] = (word >> 8) 2^-24, the bits of
     * nd_philox4x32_10 and nd_rand. NULL: rng.c makes them a block at a
     * time. */
    void (*philox_uniform)(uint64_t seed, uint32_t stream, uint64_t index, int64_t nblocks,
                           float *dst);
} nd_kernels;

const nd_kernels *nd__kernels(void); /* the active set */
/* Bytes of a core's L1 data cache (level 1), of its L2 (2), and of the
 * last-level cache (3). */
int64_t nd__cache_bytes(int level);
/* Makes nd__cache_bytes(level) answer `bytes` (0: what the C library
 * reports), so that tests reach both sides of a choice made on a size */
void nd__set_cache_bytes(int level, int64_t bytes);
/* Whether an input of `bytes` is larger than a core's L2: it then comes
 * from L3 or memory, and is worth prefetching ahead of use. */
bool nd__prefetch_input(int64_t bytes);
/* Whether an op that reads and writes `bytes` in all should write its
 * output with the set's streaming stores: when it has them and the bytes
 * exceed the last-level cache, so that no part of the output could
 * still be cached for the next op anyway. */
bool nd__stream_output(const nd_kernels *k, int64_t bytes);
/* Sets the byte count those two compare with (-1: the caches' sizes), so
 * that tests reach the streaming path on small tensors */
void nd__set_stream_threshold(int64_t bytes);
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
