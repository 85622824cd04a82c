/* Private to the convolution files of tensor/: a convolution's geometry,
 * the pool helper both paths use, and the direct path (conv_direct.c)
 * that conv.c's ops call for stride 1. Not installed. */
#ifndef NANODIFF_TENSOR_CONV_H
#define NANODIFF_TENSOR_CONV_H

#include "internal.h"
#include "kernels.h"

/* Copies smaller than this (floats) are not worth waking the pool. */
#define PARALLEL_COPY (1 << 15)
/* Multiply-adds below which a convolution runs on one thread. */
#define PARALLEL_WORK (1 << 18)

typedef struct {
    int64_t n, c, h, w;     /* x */
    int64_t o, kh, kw;      /* w */
    int64_t oh, ow;         /* y */
    int64_t sh, sw, pt, pl; /* strides, top and left padding */
    int64_t k, p;           /* C KH KW; OH OW */
    int64_t cols, tile;     /* N P positions, in tiles of `tile` */
} geom;

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
/* Bytes of n floats, at least one (a zero-size block is still a block). */
static inline size_t floats(int64_t n) { return (size_t)max64(n, 1) * sizeof(float); }

/* The workers run_chunks gives a job of `work` (floats copied, or
 * multiply-adds): the pool's threads when it reaches threshold, else this
 * thread alone, as worker 0 (also inside a job of the pool, where a loop
 * would run in place anyway). */
static inline int chunk_workers(int64_t work, int64_t threshold) {
    return work >= threshold && !nd__in_parallel() ? nd_get_num_threads() : 1;
}

/* fn(ctx, c, worker) for every chunk c < chunks, on chunk_workers. */
static inline void run_chunks(int64_t work, int64_t threshold, int64_t chunks, nd_chunk_fn fn,
                              void *ctx) {
    if (chunk_workers(work, threshold) > 1) nd__parallel_for(chunks, fn, ctx);
    else
        for (int64_t c = 0; c < chunks; c++) fn(ctx, c, 0);
}

/* The argument checks of the three ops (shapes, channels, strides, pads;
 * nd_fatal naming op), shared by the fast paths and conv_reference.c.
 * Return the geometry (k, p, cols and tile not yet planned). */
geom nd__conv_check_forward(const char *op, const nd_tensor *x, const nd_tensor *w,
                            const nd_tensor *bias, nd_conv2d_opts opts);
geom nd__conv_check_backward_input(const char *op, const nd_tensor *dy, const nd_tensor *w,
                                   const int64_t *x_shape, nd_conv2d_opts opts);
geom nd__conv_check_backward_weight(const char *op, const nd_tensor *dy, const nd_tensor *x,
                                    const int64_t *w_shape, nd_conv2d_opts opts);

/* Whether the direct convolution applies: a kernel set with
 * gemm_tile_rows, stride 1, non-empty batch and channels, and an output
 * (height x width, of the convolution the direct path computes) whose
 * rows are at least a tile wide, or whose positions fill the tiles that
 * hold them to within 1/8 (8x8 and 4x4 in tiles of 16; not 7x7 or 2x2,
 * which im2col packs better). */
bool nd__conv_direct_fits(const nd_kernels *kern, const geom *g, int64_t height,
                          int64_t width);

/* out [n, cout, oh, ow] = the stride-1 convolution of in [n, cin, hin, win]
 * (strides is, padded by pt, pb, pl, pr) with the dense weight w
 * [cout, cin, kh, kw], + bias (NULL: none). flipped: w is [cin, cout, kh,
 * kw], the forward weight of the convolution whose input gradient this
 * computes, used transposed and rotated by 180 degrees. */
void nd__conv_direct(const nd_kernels *kern, const float *in, const int64_t *is, int64_t n,
                     int64_t cin, int64_t hin, int64_t win, int64_t pt, int64_t pb,
                     int64_t pl, int64_t pr, const float *w, bool flipped, int64_t cout,
                     int64_t kh, int64_t kw, const float *bias, int64_t bias_stride,
                     float *out, const char *op);

/* dwt [K, O] = dW^T of a stride-1 convolution of x (kernels with
 * gemm_tile_arows; positions are read through a table, so any width). */
void nd__conv_direct_weight_grad(const nd_kernels *kern, const geom *g, const nd_tensor *x,
                                 const nd_tensor *dy, const nd_conv2d_opts *opts, float *dwt,
                                 const char *op);

#endif
