/* The 2-d convolution as its definition: three plain loop nests, summed
 * in double, with the same arguments and checks as nd_conv2d and its two
 * backward passes. They are the specification the fast paths (conv.c,
 * conv_direct.c: im2col tiles, direct kernels, the GEMM) are tested
 * against, and the place to read what those compute. Nothing is recorded
 * for autograd. The kernel tap (u, v) of output (i, j) reads input row
 * h = i sh - pt + u and column q = j sw - pl + v; taps outside x read 0:
 *
 *   y[n,o,i,j]  = b[o] + sum_{c,u,v} w[o,c,u,v] x[n,c,h,q]
 *   dx[n,c,h,q] = sum_{o,u,v} w[o,c,u,v] dy[n,o,i,j]  over the (i, j) whose
 *                 tap (u, v) reads (h, q): the forward's transpose
 *   dw[o,c,u,v] = sum_{n,i,j} dy[n,o,i,j] x[n,c,h,q]: dy correlated with x */
#include <stdlib.h>

#include "conv.h"

/* The element at (a, b, c, d) of a 4-d tensor, through its strides. */
static double at4(const nd_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d) {
    const int64_t *s = t->strides;
    return nd_data(t)[a * s[0] + b * s[1] + c * s[2] + d * s[3]];
}

/* Input row (or column) read by output i at tap u; false outside x. */
static bool tap(int64_t i, int64_t stride, int64_t pad, int64_t u, int64_t size, int64_t *h) {
    *h = i * stride - pad + u;
    return *h >= 0 && *h < size;
}

/* A new tensor of the shape holding the double sums, rounded once. */
static nd_tensor *rounded(const int64_t *shape, const double *sum, const char *op) {
    nd_tensor *t = nd__new(shape, 4, op);
    for (int64_t k = 0; k < nd_numel(t); k++) nd_data(t)[k] = (float)sum[k];
    return t;
}

static double *sums(int64_t n, const char *op) {
    double *s = calloc((size_t)(n > 0 ? n : 1), sizeof *s);
    if (!s) nd_fatal(op, "out of memory for %lld sums", (long long)n);
    return s;
}

nd_tensor *nd_conv2d_reference(const nd_tensor *x, const nd_tensor *w, const nd_tensor *bias,
                               nd_conv2d_opts opts) {
    const char *op = "conv2d_reference";
    geom g = nd__conv_check_forward(op, x, w, bias, opts);
    int64_t shape[4] = {g.n, g.o, g.oh, g.ow};
    double *y = sums(g.n * g.o * g.oh * g.ow, op);
    for (int64_t n = 0; n < g.n; n++)
        for (int64_t o = 0; o < g.o; o++)
            for (int64_t i = 0; i < g.oh; i++)
                for (int64_t j = 0; j < g.ow; j++) {
                    double s = bias ? nd_data(bias)[o * bias->strides[0]] : 0.0;
                    for (int64_t c = 0; c < g.c; c++)
                        for (int64_t u = 0; u < g.kh; u++)
                            for (int64_t v = 0; v < g.kw; v++) {
                                int64_t h, q;
                                if (tap(i, g.sh, g.pt, u, g.h, &h) &&
                                    tap(j, g.sw, g.pl, v, g.w, &q))
                                    s += at4(w, o, c, u, v) * at4(x, n, c, h, q);
                            }
                    y[((n * g.o + o) * g.oh + i) * g.ow + j] = s;
                }
    nd_tensor *out = rounded(shape, y, op);
    free(y);
    return out;
}

nd_tensor *nd_conv2d_backward_input_reference(const nd_tensor *dy, const nd_tensor *w,
                                              const int64_t *x_shape, nd_conv2d_opts opts) {
    const char *op = "conv2d_backward_input_reference";
    geom g = nd__conv_check_backward_input(op, dy, w, x_shape, opts);
    double *dx = sums(g.n * g.c * g.h * g.w, op);
    /* every term of the forward sends w dy back to the x it read */
    for (int64_t n = 0; n < g.n; n++)
        for (int64_t o = 0; o < g.o; o++)
            for (int64_t i = 0; i < g.oh; i++)
                for (int64_t j = 0; j < g.ow; j++)
                    for (int64_t c = 0; c < g.c; c++)
                        for (int64_t u = 0; u < g.kh; u++)
                            for (int64_t v = 0; v < g.kw; v++) {
                                int64_t h, q;
                                if (tap(i, g.sh, g.pt, u, g.h, &h) &&
                                    tap(j, g.sw, g.pl, v, g.w, &q))
                                    dx[((n * g.c + c) * g.h + h) * g.w + q] +=
                                        at4(w, o, c, u, v) * at4(dy, n, o, i, j);
                            }
    nd_tensor *out = rounded(x_shape, dx, op);
    free(dx);
    return out;
}

nd_tensor *nd_conv2d_backward_weight_reference(const nd_tensor *dy, const nd_tensor *x,
                                               const int64_t *w_shape, nd_conv2d_opts opts) {
    const char *op = "conv2d_backward_weight_reference";
    geom g = nd__conv_check_backward_weight(op, dy, x, w_shape, opts);
    double *dw = sums(g.o * g.c * g.kh * g.kw, op);
    for (int64_t o = 0; o < g.o; o++)
        for (int64_t c = 0; c < g.c; c++)
            for (int64_t u = 0; u < g.kh; u++)
                for (int64_t v = 0; v < g.kw; v++) {
                    double s = 0.0;
                    for (int64_t n = 0; n < g.n; n++)
                        for (int64_t i = 0; i < g.oh; i++)
                            for (int64_t j = 0; j < g.ow; j++) {
                                int64_t h, q;
                                if (tap(i, g.sh, g.pt, u, g.h, &h) &&
                                    tap(j, g.sw, g.pl, v, g.w, &q))
                                    s += at4(dy, n, o, i, j) * at4(x, n, c, h, q);
                            }
                    dw[((o * g.c + c) * g.kh + u) * g.kw + v] = s;
                }
    nd_tensor *out = rounded(w_shape, dw, op);
    free(dw);
    return out;
}
