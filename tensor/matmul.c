/* Matrix product with NumPy's rules: each matrix of the batch goes to the
 * blocked SGEMM (tensor/gemm.c) of the active kernel set, which reads the
 * operands through their strides. A batch of small products (attention's
 * q^T k over the images of a batch) goes to the threads a matrix each,
 * every SGEMM on one thread: one parallel loop instead of one per matrix,
 * each with its packing and its wait. Either way each matrix gets the
 * bits of the single-threaded SGEMM. */
#include <string.h>

#include "internal.h"
#include "kernels.h"

/* Batches of products with m n k below this (and at least two matrices
 * per thread) run a matrix per thread. */
#define SMALL_PRODUCT (1 << 24)

typedef struct {
    const nd_kernels *kern;
    int64_t n, k, m;
    int64_t a0, a1, b0, b1; /* strides of a (rows, cols) and b */
} mm;

/* y[i,j] = sum_p a[i,p] b[p,j] for each matrix of the batch */
static void batch_row(void *ctx, int64_t count, float *const *p, const int64_t *s) {
    const mm *c = ctx;
    for (int64_t i = 0; i < count; i++)
        nd__sgemm(c->kern, c->n, c->m, c->k, p[1] + i * s[1], c->a0, c->a1,
                  p[2] + i * s[2], c->b0, c->b1, p[0] + i * s[0], c->m, false);
}

nd_tensor *nd_matmul(const nd_tensor *a, const nd_tensor *b) {
    nd__check_tensor(a, "matmul");
    nd__check_tensor(b, "matmul");
    char sa[ND_SHAPE_STR_LEN], sb[ND_SHAPE_STR_LEN];
    if (a->ndim == 0 || b->ndim == 0)
        nd_fatal("matmul", "shapes %s and %s: operands must have at least 1 dimension",
                 nd_shape_str(a->shape, a->ndim, sa), nd_shape_str(b->shape, b->ndim, sb));
    /* A 1-d a is the row (1, k); a 1-d b is the column (k, 1). */
    int64_t n = a->ndim == 1 ? 1 : a->shape[a->ndim - 2];
    int64_t k = a->shape[a->ndim - 1];
    int64_t kb = b->ndim == 1 ? b->shape[0] : b->shape[b->ndim - 2];
    int64_t m = b->ndim == 1 ? 1 : b->shape[b->ndim - 1];
    if (k != kb)
        nd_fatal("matmul", "shapes %s and %s: inner sizes %lld and %lld differ",
                 nd_shape_str(a->shape, a->ndim, sa), nd_shape_str(b->shape, b->ndim, sb),
                 (long long)k, (long long)kb);
    mm c = {.kern = nd__kernels(), .n = n, .k = k, .m = m};
    c.a0 = a->ndim == 1 ? 0 : a->strides[a->ndim - 2];
    c.a1 = a->strides[a->ndim - 1];
    c.b0 = b->ndim == 1 ? b->strides[0] : b->strides[b->ndim - 2];
    c.b1 = b->ndim == 1 ? 0 : b->strides[b->ndim - 1];

    /* Batch axes broadcast; view each operand's batch part as a tensor of
     * its own to reuse the broadcasting helpers. */
    int nba = a->ndim > 2 ? a->ndim - 2 : 0, nbb = b->ndim > 2 ? b->ndim - 2 : 0;
    int64_t batch[ND_MAX_DIMS];
    for (int i = 1; i <= nba && i <= nbb; i++) {
        int64_t da = a->shape[nba - i], db = b->shape[nbb - i];
        if (da != db && da != 1 && db != 1)
            nd_fatal("matmul", "shapes %s and %s: batch sizes %lld and %lld do not broadcast",
                     nd_shape_str(a->shape, a->ndim, sa), nd_shape_str(b->shape, b->ndim, sb),
                     (long long)da, (long long)db);
    }
    int nb = nd__broadcast_shape(a->shape, nba, b->shape, nbb, batch, "matmul");
    if (nb + 2 > ND_MAX_DIMS) nd_fatal("matmul", "result would exceed %d dimensions", ND_MAX_DIMS);
    nd_tensor ab = *a, bb = *b;
    ab.ndim = nba;
    bb.ndim = nbb;
    int64_t st[3][ND_MAX_DIMS];
    nd__broadcast_strides(&ab, batch, nb, st[1]);
    nd__broadcast_strides(&bb, batch, nb, st[2]);

    int64_t shape[ND_MAX_DIMS];
    int nout = 0;
    for (int i = 0; i < nb; i++) shape[nout++] = batch[i];
    if (a->ndim > 1) shape[nout++] = n;
    if (b->ndim > 1) shape[nout++] = m;
    nd_tensor *y = nd__new(shape, nout, "matmul");
    nd__contiguous_strides(batch, nb, st[0]);
    for (int i = 0; i < nb; i++) st[0][i] *= n * m;

    float *base[3] = {nd_data(y), nd_data(a), nd_data(b)};
    int64_t count = nd__prod(batch, nb);
    if (n > 0 && m > 0) {
        if (count >= 2 * nd_get_num_threads() && n * m * k < SMALL_PRODUCT)
            nd__loop_parallel(3, nb, batch, (const int64_t(*)[ND_MAX_DIMS])st, base, batch_row,
                              &c, 1);
        else
            nd__loop(3, nb, batch, (const int64_t(*)[ND_MAX_DIMS])st, base, batch_row, &c);
    }
    nd__emit_simple(ND_OP_MATMUL, y, a, b);
    return y;
}
