/* softmax and log_softmax along one axis, and softmax's backward pass.
 *
 * Forward: the kernel set's row kernel on every fibre along the axis
 * (max, e^{x - max} with the vectorized exp, summed in float over blocks
 * of 32 and in double over 16 lanes, then the scale or the log of the
 * sum; the math is in vmath_scalar.c). A fibre that is not contiguous in
 * x or y goes through a per-thread scratch row, so every fibre meets the
 * same kernel and a value's result does not depend on the layout. Fibres
 * run on the thread pool in chunks of about ND_GRAIN elements, each fibre
 * whole in one thread, so the thread count does not change a bit.
 * Outputs are written in place whatever their size: softmax is bound by
 * its arithmetic, so streaming stores through a row of scratch would only
 * add a copy (docs/PERFORMANCE.md, "Elementwise loops"). When x is larger
 * than L2, each contiguous fibre is passed the chunk's next one to
 * prefetch as it computes. */
#include <string.h>

#include "internal.h"
#include "kernels.h"

/* The fibres along one axis of up to three tensors of one shape, in
 * row-major order of the other axes, and a position among them. */
typedef struct {
    int nops, nouter;
    int64_t shape[ND_MAX_DIMS];   /* the other axes */
    int64_t os[3][ND_MAX_DIMS];   /* each operand's strides along them */
    int64_t n, fs[3];             /* fibre length, each operand's stride along it */
    int64_t count, per_chunk;     /* fibres; fibres per chunk of the pool */
} fibres;

typedef struct {
    int64_t idx[ND_MAX_DIMS];
    int64_t off[3]; /* each operand's fibre, from its first element */
} fibre_pos;

static void fibres_init(fibres *f, int axis, int nops, const nd_tensor *const *t) {
    const nd_tensor *x = t[0];
    f->nops = nops;
    f->nouter = 0;
    f->n = x->shape[axis];
    f->count = 1;
    for (int k = 0; k < nops; k++) f->fs[k] = f->n == 1 ? 1 : t[k]->strides[axis];
    for (int i = 0; i < x->ndim; i++) {
        if (i == axis) continue;
        for (int k = 0; k < nops; k++) f->os[k][f->nouter] = t[k]->strides[i];
        f->shape[f->nouter++] = x->shape[i];
        f->count *= x->shape[i];
    }
    f->per_chunk = f->n > 0 && f->n < ND_GRAIN ? ND_GRAIN / f->n : 1;
}

static void fibre_seek(const fibres *f, int64_t first, fibre_pos *p) {
    memset(p, 0, sizeof *p);
    for (int i = f->nouter - 1; i >= 0; i--) {
        p->idx[i] = first % f->shape[i];
        first /= f->shape[i];
        for (int k = 0; k < f->nops; k++) p->off[k] += p->idx[i] * f->os[k][i];
    }
}

/* to the next fibre: the outer index stepped like an odometer */
static void fibre_next(const fibres *f, fibre_pos *p) {
    for (int i = f->nouter - 1; i >= 0; i--) {
        for (int k = 0; k < f->nops; k++) p->off[k] += f->os[k][i];
        if (++p->idx[i] < f->shape[i]) return;
        for (int k = 0; k < f->nops; k++) p->off[k] -= p->idx[i] * f->os[k][i];
        p->idx[i] = 0;
    }
}

/* dst[i] = src[i * s] */
static void gather(int64_t n, const float *src, int64_t s, float *dst) {
    for (int64_t i = 0; i < n; i++) dst[i] = src[i * s];
}

static void scatter(int64_t n, const float *src, float *dst, int64_t s) {
    for (int64_t i = 0; i < n; i++) dst[i * s] = src[i];
}

/* ---- forward ------------------------------------------------------------ */

typedef struct {
    fibres f; /* operands x, y */
    void (*kernel)(int64_t n, const float *x, float *y, const float *next);
    const float *x;
    float *y;
    float *scratch; /* n floats per thread, or NULL */
    bool prefetch;  /* hint each fibre's successor */
} softmax_plan;

static void softmax_chunk(void *ctx, int64_t c, int worker) {
    const softmax_plan *sp = ctx;
    const fibres *f = &sp->f;
    int64_t first = c * f->per_chunk;
    int64_t count = f->count - first < f->per_chunk ? f->count - first : f->per_chunk;
    float *scratch = sp->scratch ? sp->scratch + (int64_t)worker * f->n : NULL;
    fibre_pos p;
    fibre_seek(f, first, &p);
    for (int64_t i = 0; i < count; i++) {
        const float *x = sp->x + p.off[0];
        float *y = sp->y + p.off[1];
        fibre_next(f, &p);
        const float *hint = sp->prefetch && f->fs[0] == 1 && i + 1 < count ? sp->x + p.off[0]
                                                                           : NULL;
        const float *src = x;
        float *dst = f->fs[1] == 1 ? y : scratch;
        if (f->fs[0] != 1) {
            gather(f->n, x, f->fs[0], scratch);
            src = scratch;
        }
        sp->kernel(f->n, src, dst, hint);
        if (f->fs[1] != 1) scatter(f->n, scratch, y, f->fs[1]);
    }
}

static nd_tensor *softmax_like(const nd_tensor *x, int axis, const char *op, nd_op id,
                               bool log_form) {
    nd__check_tensor(x, op);
    int a = nd__axis(axis, x->ndim, op);
    nd_tensor *y = nd__new(x->shape, x->ndim, op);
    const nd_kernels *k = nd__kernels();
    softmax_plan sp = {.kernel = log_form ? k->log_softmax : k->softmax,
                       .x = nd_data(x), .y = nd_data(y)};
    const nd_tensor *ops[2] = {x, y};
    fibres_init(&sp.f, a, 2, ops);
    if (sp.f.n > 0 && sp.f.count > 0) {
        size_t scratch_bytes = 0;
        if (sp.f.fs[0] != 1 || sp.f.fs[1] != 1) {
            scratch_bytes = (size_t)nd_get_num_threads() * (size_t)sp.f.n * sizeof(float);
            sp.scratch = nd__alloc(scratch_bytes, op);
        }
        sp.prefetch = nd__prefetch_input(nd_numel(x) * (int64_t)sizeof(float));
        nd__parallel_for((sp.f.count + sp.f.per_chunk - 1) / sp.f.per_chunk, softmax_chunk,
                         &sp);
        if (sp.scratch) nd__release(sp.scratch, scratch_bytes);
    }
    const nd_tensor *in[1] = {x};
    nd_op_event e = {.op = id, .out = y, .in = in, .nin = 1, .axis = a};
    nd__emit(&e);
    return y;
}

nd_tensor *nd_softmax(const nd_tensor *x, int axis) {
    return softmax_like(x, axis, "softmax", ND_OP_SOFTMAX, false);
}

nd_tensor *nd_log_softmax(const nd_tensor *x, int axis) {
    return softmax_like(x, axis, "log_softmax", ND_OP_LOG_SOFTMAX, true);
}

/* ---- backward ----------------------------------------------------------- */

/* dx = y (dy - sum_j dy_j y_j) along the axis, fibre by fibre, with the
 * operations and order of nd_mul, nd_sum (keepdim), nd_sub and nd_mul
 * composed: the products rounded to float, summed in blocks of ND_GRAIN
 * of sixteen double lanes (the kernel set's sum_lanes), the blocks added
 * in order and the total rounded to float; then the difference and the
 * product, each rounded once. Four passes and three temporaries become
 * one pass over a fibre held in the cache (the attention block's
 * [N, heads, L, L] weights). Pieces of PIECE floats, a multiple of the
 * lanes, keep each element in its lane. */
#define PIECE 1024

typedef struct {
    fibres f; /* operands y, dy, dx */
    const nd_kernels *k;
    const float *y, *dy;
    float *dx;
    float *scratch; /* 3 n floats per thread (y, dy, dx gathered), or NULL */
} softmax_bw_plan;

/* dx[i] = y[i] (dy[i] - dot) for n contiguous elements */
static void softmax_bw_fibre(const nd_kernels *k, int64_t n, const float *y, const float *dy,
                             float *dx) {
    float piece[PIECE];
    double acc = 0.0;
    for (int64_t b = 0; b < n; b += ND_GRAIN) {
        int64_t len = n - b < ND_GRAIN ? n - b : ND_GRAIN;
        double lanes[ND_LANES] = {0.0};
        for (int64_t i = b; i < b + len; i += PIECE) {
            int64_t m = b + len - i < PIECE ? b + len - i : PIECE;
            k->vmul(m, dy + i, 1, y + i, 1, piece);
            k->sum_lanes(m, piece, lanes);
        }
        acc += nd__combine_lanes(lanes);
    }
    float dot = (float)acc;
    for (int64_t i = 0; i < n; i += PIECE) {
        int64_t m = n - i < PIECE ? n - i : PIECE;
        k->vsub(m, dy + i, 1, &dot, 0, piece);
        k->vmul(m, y + i, 1, piece, 1, dx + i);
    }
}

static void softmax_bw_chunk(void *ctx, int64_t c, int worker) {
    const softmax_bw_plan *sp = ctx;
    const fibres *f = &sp->f;
    int64_t first = c * f->per_chunk, n = f->n;
    int64_t count = f->count - first < f->per_chunk ? f->count - first : f->per_chunk;
    float *gy = sp->scratch ? sp->scratch + 3 * (int64_t)worker * n : NULL;
    float *gdy = gy ? gy + n : NULL, *gdx = gy ? gy + 2 * n : NULL;
    fibre_pos p;
    fibre_seek(f, first, &p);
    for (int64_t i = 0; i < count; i++, fibre_next(f, &p)) {
        const float *y = sp->y + p.off[0], *dy = sp->dy + p.off[1];
        float *dx = sp->dx + p.off[2];
        if (f->fs[0] != 1) {
            gather(n, y, f->fs[0], gy);
            y = gy;
        }
        if (f->fs[1] != 1) {
            gather(n, dy, f->fs[1], gdy);
            dy = gdy;
        }
        if (f->fs[2] == 1) {
            softmax_bw_fibre(sp->k, n, y, dy, dx);
        } else {
            softmax_bw_fibre(sp->k, n, y, dy, gdx);
            scatter(n, gdx, dx, f->fs[2]);
        }
    }
}

nd_tensor *nd_softmax_backward(const nd_tensor *y, const nd_tensor *dy, int axis) {
    const char *op = "softmax_backward";
    nd__check_tensor(y, op);
    nd__check_tensor(dy, op);
    if (!nd_same_shape(y, dy)) {
        char a[ND_SHAPE_STR_LEN], b[ND_SHAPE_STR_LEN];
        nd_fatal(op, "dy has shape %s but y has shape %s", nd_shape_str(dy->shape, dy->ndim, a),
                 nd_shape_str(y->shape, y->ndim, b));
    }
    int a = nd__axis(axis, y->ndim, op);
    nd_tensor *dx = nd__new(y->shape, y->ndim, op);
    softmax_bw_plan sp = {.k = nd__kernels(), .y = nd_data(y), .dy = nd_data(dy),
                          .dx = nd_data(dx)};
    const nd_tensor *ops[3] = {y, dy, dx};
    fibres_init(&sp.f, a, 3, ops);
    if (sp.f.n > 0 && sp.f.count > 0) {
        size_t scratch_bytes = 0;
        if (sp.f.fs[0] != 1 || sp.f.fs[1] != 1 || sp.f.fs[2] != 1) {
            scratch_bytes = (size_t)nd_get_num_threads() * 3 * (size_t)sp.f.n * sizeof(float);
            sp.scratch = nd__alloc(scratch_bytes, op);
        }
        nd__parallel_for((sp.f.count + sp.f.per_chunk - 1) / sp.f.per_chunk,
                         softmax_bw_chunk, &sp);
        if (sp.scratch) nd__release(sp.scratch, scratch_bytes);
    }
    const nd_tensor *in[2] = {y, dy};
    nd_op_event e = {.op = ND_OP_SOFTMAX_BACKWARD, .out = dx, .in = in, .nin = 2, .axis = a};
    nd__emit(&e);
    return dx;
}
