/* Elementwise ops. Binary and ternary ops broadcast their inputs with
 * NumPy's rules (align shapes on the right; a size-1 axis repeats). Every
 * op returns a new contiguous tensor of the broadcast shape.
 *
 * Each op is one line below: its name and y as a function of x (unary),
 * of a and b (binary), with c[] holding scalar parameters.
 *
 * exp, log, tanh, sigmoid, silu and gelu run the active kernel set's
 * vectorized approximations (vmath_*.c, error bounds in vmath_scalar.c),
 * and add, sub, mul, div and their scalar forms its SIMD rows, on
 * contiguous rows and on rows where one operand is broadcast (stride 0).
 * Strided rows of the approximations go through a small buffer to the
 * same kernel, so a value gives the same bits whatever the layout; the
 * arithmetic ops on other strides use the same IEEE operation in C.
 * Large tensors are cut into chunks of ND_GRAIN elements on the thread
 * pool; every element is computed alone, so the thread count does not
 * change a bit. */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "kernels.h"

/* Outputs larger than the last-level cache: each row is computed into a
 * small buffer, which stays in L1, and copied out with streaming stores,
 * so the output's lines are never read in before being overwritten; the
 * contiguous inputs are prefetched STREAM_AHEAD buffers ahead. The values
 * are the row function's own.
 *
 * That pays only where memory is the bound. Ops whose arithmetic takes
 * longer than their memory traffic, ARITH in ops.h (nd_op_arithmetic),
 * would pay the copy for nothing and write in place; an input of theirs
 * beyond L2 is still prefetched, as the core issues no loads while busy
 * with the arithmetic and the hardware prefetchers stop at each 4 KiB
 * page. Figures: docs/PERFORMANCE.md, "Elementwise loops". */
#define STREAM_BLOCK 256
#define STREAM_AHEAD 2

typedef struct {
    nd_row_fn row;
    void *ctx;
    int nops;
    const nd_kernels *k;
    bool stream; /* through the buffer and streaming stores, else in place */
} streamed;

/* The row in blocks of STREAM_BLOCK, its contiguous inputs prefetched
 * STREAM_AHEAD blocks ahead */
static void streamed_row(void *ctx, int64_t n, float *const *p, const int64_t *s) {
    const streamed *w = ctx;
    if (s[0] != 1) {
        w->row(w->ctx, n, p, s);
        return;
    }
    _Alignas(32) float buf[STREAM_BLOCK];
    float *q[4];
    for (int64_t i = 0; i < n; i += STREAM_BLOCK) {
        int64_t m = n - i < STREAM_BLOCK ? n - i : STREAM_BLOCK;
        int64_t ahead = i + STREAM_AHEAD * STREAM_BLOCK;
        int64_t end = ahead + STREAM_BLOCK < n ? ahead + STREAM_BLOCK : n;
        q[0] = w->stream ? buf : p[0] + i;
        for (int k = 1; k < w->nops; k++) {
            q[k] = p[k] + i * s[k];
            if (s[k] == 1)
                for (int64_t j = ahead; j < end; j += 16) ND_PREFETCH(p[k] + j);
        }
        w->row(w->ctx, m, q, s);
        if (w->stream) w->k->stream_copy(m, buf, p[0] + i);
    }
    if (w->stream) w->k->stream_fence();
}

/* The row loop of op `id` with nops operands, y (contiguous, new) first */
static void run_map(nd_op id, int nops, const nd_tensor *y, const nd_tensor *const *in,
                    const int64_t (*st)[ND_MAX_DIMS], float *const *base, nd_row_fn row,
                    void *ctx) {
    int64_t in_bytes = 0, out_bytes = nd_numel(y) * (int64_t)sizeof(float);
    for (int i = 0; i < nops - 1; i++) in_bytes += nd_numel(in[i]) * (int64_t)sizeof(float);
    streamed w = {row, ctx, nops, nd__kernels(), false};
    bool arithmetic = nd_op_arithmetic(id);
    if (!arithmetic) w.stream = nd__stream_output(w.k, in_bytes + out_bytes);
    if (w.stream || (arithmetic && nd__prefetch_input(in_bytes))) {
        row = streamed_row;
        ctx = &w;
    }
    nd__loop_parallel(nops, y->ndim, y->shape, st, base, row, ctx, ND_GRAIN);
}

/* ctx goes to row; c[0..nc-1] are the op's scalars, for its event */
static nd_tensor *map1(const nd_tensor *x, nd_row_fn row, void *ctx, const float *c,
                       int nc, const char *op, nd_op id) {
    nd__check_tensor(x, op);
    nd_tensor *y = nd__new(x->shape, x->ndim, op);
    int64_t st[2][ND_MAX_DIMS];
    memcpy(st[0], y->strides, sizeof st[0]);
    memcpy(st[1], x->strides, sizeof st[1]);
    float *base[2] = {nd_data(y), nd_data(x)};
    const nd_tensor *in[1] = {x};
    run_map(id, 2, y, in, (const int64_t(*)[ND_MAX_DIMS])st, base, row, ctx);
    nd_op_event e = {.op = id, .out = y, .in = in, .nin = 1};
    for (int i = 0; i < nc; i++) e.scalars[i] = c[i];
    nd__emit(&e);
    return y;
}

static nd_tensor *map2(const nd_tensor *a, const nd_tensor *b, nd_row_fn row,
                       void *ctx, const char *op, nd_op id) {
    nd__check_tensor(a, op);
    nd__check_tensor(b, op);
    int64_t shape[ND_MAX_DIMS], st[3][ND_MAX_DIMS];
    int n = nd__broadcast_shape(a->shape, a->ndim, b->shape, b->ndim, shape, op);
    nd_tensor *y = nd__new(shape, n, op);
    memcpy(st[0], y->strides, sizeof st[0]);
    nd__broadcast_strides(a, shape, n, st[1]);
    nd__broadcast_strides(b, shape, n, st[2]);
    float *base[3] = {nd_data(y), nd_data(a), nd_data(b)};
    const nd_tensor *in[2] = {a, b};
    run_map(id, 3, y, in, (const int64_t(*)[ND_MAX_DIMS])st, base, row, ctx);
    nd__emit_simple(id, y, a, b);
    return y;
}

#define ND_UNARY(name, expr)                                                   \
    static void name##_row(void *ctx, int64_t n, float *const *p,              \
                           const int64_t *s) {                                 \
        const float *c = ctx;                                                  \
        (void)c;                                                               \
        for (int64_t i = 0; i < n; i++) {                                      \
            float x = p[1][i * s[1]];                                          \
            p[0][i * s[0]] = (expr);                                           \
        }                                                                      \
    }

#define ND_BINARY(name, id, expr)                                                  \
    static void name##_row(void *ctx, int64_t n, float *const *p,              \
                           const int64_t *s) {                                 \
        (void)ctx;                                                             \
        for (int64_t i = 0; i < n; i++) {                                      \
            float a = p[1][i * s[1]], b = p[2][i * s[2]];                      \
            p[0][i * s[0]] = (expr);                                           \
        }                                                                      \
    }                                                                          \
    nd_tensor *nd_##name(const nd_tensor *a, const nd_tensor *b) {             \
        return map2(a, b, name##_row, NULL, #name, id);                        \
    }

typedef void (*unary_kernel)(int64_t n, const float *x, float *y);
typedef void (*binary_kernel)(int64_t n, const float *a, int64_t sa, const float *b,
                              int64_t sb, float *y);

/* The kernel's strides: 1 (a row) or 0 (a broadcast value). */
static inline bool unit_or_zero(int64_t s) { return s == 0 || s == 1; }

/* A row of a vectorized unary op: the kernel on a contiguous row, else
 * the kernel on the row gathered into a buffer, then scattered. */
static void kernel1_row(void *ctx, int64_t n, float *const *p, const int64_t *s) {
    unary_kernel f = *(const unary_kernel *)ctx;
    if (s[0] == 1 && s[1] == 1) {
        f(n, p[1], p[0]);
        return;
    }
    float buf[256];
    for (int64_t i = 0; i < n; i += 256) {
        int64_t m = n - i < 256 ? n - i : 256;
        for (int64_t j = 0; j < m; j++) buf[j] = p[1][(i + j) * s[1]];
        f(m, buf, buf);
        for (int64_t j = 0; j < m; j++) p[0][(i + j) * s[0]] = buf[j];
    }
}

/* A binary op on the SIMD rows when the strides allow (same shape,
 * scalar, per-channel: each input's stride 0 or 1), else the same IEEE
 * operation element by element. */
#define ND_BINARY_KERNEL(name, field, id, expr)                                \
    static void name##_row(void *ctx, int64_t n, float *const *p,              \
                           const int64_t *s) {                                 \
        if (s[0] == 1 && unit_or_zero(s[1]) && unit_or_zero(s[2])) {           \
            (*(const binary_kernel *)ctx)(n, p[1], s[1], p[2], s[2], p[0]);    \
            return;                                                            \
        }                                                                      \
        for (int64_t i = 0; i < n; i++) {                                      \
            float a = p[1][i * s[1]], b = p[2][i * s[2]];                      \
            p[0][i * s[0]] = (expr);                                           \
        }                                                                      \
    }                                                                          \
    nd_tensor *nd_##name(const nd_tensor *a, const nd_tensor *b) {             \
        binary_kernel f = nd__kernels()->field;                                \
        return map2(a, b, name##_row, &f, #name, id);                          \
    }

/* NaN in, NaN out, as PyTorch's maximum/minimum/clamp/relu do. */
static inline float max_nan(float a, float b) { return a != a || b != b ? NAN : (a > b ? a : b); }
static inline float min_nan(float a, float b) { return a != a || b != b ? NAN : (a < b ? a : b); }

/* ---- binary ------------------------------------------------------------ */

ND_BINARY_KERNEL(add, vadd, ND_OP_ADD, a + b)
ND_BINARY_KERNEL(sub, vsub, ND_OP_SUB, a - b)
ND_BINARY_KERNEL(mul, vmul, ND_OP_MUL, a * b)
ND_BINARY_KERNEL(div, vdiv, ND_OP_DIV, a / b)
ND_BINARY(maximum, ND_OP_MAXIMUM, max_nan(a, b))
ND_BINARY(minimum, ND_OP_MINIMUM, min_nan(a, b))
ND_BINARY(eq, ND_OP_EQ, a == b ? 1.0f : 0.0f)
ND_BINARY(ne, ND_OP_NE, a != b ? 1.0f : 0.0f)
ND_BINARY(lt, ND_OP_LT, a < b ? 1.0f : 0.0f)
ND_BINARY(le, ND_OP_LE, a <= b ? 1.0f : 0.0f)
ND_BINARY(gt, ND_OP_GT, a > b ? 1.0f : 0.0f)
ND_BINARY(ge, ND_OP_GE, a >= b ? 1.0f : 0.0f)

/* ---- with scalar parameters c[] ---------------------------------------- */

ND_UNARY(pow_scalar, c[0] == 2.0f ? x * x : powf(x, c[0]))
ND_UNARY(clamp, x < c[0] ? c[0] : (x > c[1] ? c[1] : x))

/* x op c (right) or c op x, on the binary SIMD rows with c broadcast;
 * strided rows through a buffer. */
typedef struct {
    binary_kernel f;
    float c;
    bool right;
} scalar_op;

static void scalar_op_run(const scalar_op *o, int64_t n, const float *x, int64_t sx,
                          float *y) {
    if (o->right) o->f(n, x, sx, &o->c, 0, y);
    else o->f(n, &o->c, 0, x, sx, y);
}

static void scalar_op_row(void *ctx, int64_t n, float *const *p, const int64_t *s) {
    const scalar_op *o = ctx;
    if (s[0] == 1 && unit_or_zero(s[1])) {
        scalar_op_run(o, n, p[1], s[1], p[0]);
        return;
    }
    float buf[256];
    for (int64_t i = 0; i < n; i += 256) {
        int64_t m = n - i < 256 ? n - i : 256;
        for (int64_t j = 0; j < m; j++) buf[j] = p[1][(i + j) * s[1]];
        scalar_op_run(o, m, buf, 1, buf);
        for (int64_t j = 0; j < m; j++) p[0][(i + j) * s[0]] = buf[j];
    }
}

static nd_tensor *map_scalar(const nd_tensor *x, binary_kernel f, float c, bool right,
                             const char *op, nd_op id) {
    scalar_op o = {f, c, right};
    return map1(x, scalar_op_row, &o, &c, 1, op, id);
}

nd_tensor *nd_add_scalar(const nd_tensor *x, float s) { return map_scalar(x, nd__kernels()->vadd, s, true, "add_scalar", ND_OP_ADD_SCALAR); }
nd_tensor *nd_sub_scalar(const nd_tensor *x, float s) { return map_scalar(x, nd__kernels()->vsub, s, true, "sub_scalar", ND_OP_SUB_SCALAR); }
nd_tensor *nd_rsub_scalar(const nd_tensor *x, float s) { return map_scalar(x, nd__kernels()->vsub, s, false, "rsub_scalar", ND_OP_RSUB_SCALAR); }
nd_tensor *nd_mul_scalar(const nd_tensor *x, float s) { return map_scalar(x, nd__kernels()->vmul, s, true, "mul_scalar", ND_OP_MUL_SCALAR); }
nd_tensor *nd_div_scalar(const nd_tensor *x, float s) { return map_scalar(x, nd__kernels()->vdiv, s, true, "div_scalar", ND_OP_DIV_SCALAR); }
nd_tensor *nd_pow_scalar(const nd_tensor *x, float p) { return map1(x, pow_scalar_row, &p, &p, 1, "pow_scalar", ND_OP_POW_SCALAR); }

nd_tensor *nd_clamp(const nd_tensor *x, float lo, float hi) {
    if (!(lo <= hi)) nd_fatal("clamp", "lo %g must not exceed hi %g", lo, hi);
    float c[2] = {lo, hi};
    return map1(x, clamp_row, c, c, 2, "clamp", ND_OP_CLAMP);
}

/* ---- unary ------------------------------------------------------------- */

ND_UNARY(neg, -x)
ND_UNARY(sqrt, sqrtf(x))
ND_UNARY(rsqrt, 1.0f / sqrtf(x))
ND_UNARY(square, x * x)
ND_UNARY(abs, fabsf(x))
ND_UNARY(sin, sinf(x))
ND_UNARY(cos, cosf(x))
ND_UNARY(erf, erff(x))
ND_UNARY(relu, x < 0 ? 0.0f : x)

#define ND_UNARY_API(name, id)                                                 \
    nd_tensor *nd_##name(const nd_tensor *x) { return map1(x, name##_row, NULL, NULL, 0, #name, id); }
/* The vectorized approximations: y = f(x) by the active kernel set. */
#define ND_KERNEL_API(name, field, id)                                         \
    nd_tensor *nd_##name(const nd_tensor *x) {                                 \
        unary_kernel f = nd__kernels()->field;                                 \
        return map1(x, kernel1_row, &f, NULL, 0, #name, id);                   \
    }
ND_KERNEL_API(exp, vexp, ND_OP_EXP)
ND_KERNEL_API(log, vlog, ND_OP_LOG)
ND_KERNEL_API(tanh, vtanh, ND_OP_TANH)
ND_KERNEL_API(sigmoid, vsigmoid, ND_OP_SIGMOID) /* 1 / (1 + e^-x), stable form */
ND_KERNEL_API(silu, vsilu, ND_OP_SILU)          /* x sigma(x) */
ND_KERNEL_API(gelu, vgelu, ND_OP_GELU)          /* x Phi(x), erf form */
ND_UNARY_API(neg, ND_OP_NEG)
ND_UNARY_API(sqrt, ND_OP_SQRT)
ND_UNARY_API(rsqrt, ND_OP_RSQRT)
ND_UNARY_API(square, ND_OP_SQUARE)
ND_UNARY_API(abs, ND_OP_ABS)
ND_UNARY_API(sin, ND_OP_SIN)
ND_UNARY_API(cos, ND_OP_COS)
ND_UNARY_API(erf, ND_OP_ERF)
ND_UNARY_API(relu, ND_OP_RELU)

/* ---- where ------------------------------------------------------------- */

static void where_row(void *ctx, int64_t n, float *const *p, const int64_t *s) {
    (void)ctx;
    for (int64_t i = 0; i < n; i++)
        p[0][i * s[0]] = p[1][i * s[1]] != 0.0f ? p[2][i * s[2]] : p[3][i * s[3]];
}

nd_tensor *nd_where(const nd_tensor *cond, const nd_tensor *a, const nd_tensor *b) {
    nd__check_tensor(cond, "where");
    nd__check_tensor(a, "where");
    nd__check_tensor(b, "where");
    int64_t ab[ND_MAX_DIMS], shape[ND_MAX_DIMS], st[4][ND_MAX_DIMS];
    int nab = nd__broadcast_shape(a->shape, a->ndim, b->shape, b->ndim, ab, "where");
    int n = nd__broadcast_shape(cond->shape, cond->ndim, ab, nab, shape, "where");
    nd_tensor *y = nd__new(shape, n, "where");
    memcpy(st[0], y->strides, sizeof st[0]);
    nd__broadcast_strides(cond, shape, n, st[1]);
    nd__broadcast_strides(a, shape, n, st[2]);
    nd__broadcast_strides(b, shape, n, st[3]);
    float *base[4] = {nd_data(y), nd_data(cond), nd_data(a), nd_data(b)};
    const nd_tensor *in[3] = {cond, a, b};
    run_map(ND_OP_WHERE, 4, y, in, (const int64_t(*)[ND_MAX_DIMS])st, base, where_row, NULL);
    nd_op_event e = {.op = ND_OP_WHERE, .out = y, .in = in, .nin = 3};
    nd__emit(&e);
    return y;
}
