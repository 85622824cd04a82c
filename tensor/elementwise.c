/* Elementwise ops. Binary and ternary ops broadcast their inputs with
 * NumPy's rules (align shapes on the right; a size-1 axis repeats). Every
 * op returns a new contiguous tensor of the broadcast shape.
 *
 * Each op is one line below: its name and y as a function of x (unary),
 * of a and b (binary), with c[] holding scalar parameters. */
#include <math.h>
#include <string.h>

#include "internal.h"

static nd_tensor *map1(const nd_tensor *x, nd_row_fn row, const float *c, int nc,
                       const char *op, nd_op id) {
    nd__check_tensor(x, op);
    nd_tensor *y = nd__new(x->shape, x->ndim, op);
    int64_t st[2][ND_MAX_DIMS];
    memcpy(st[0], y->strides, sizeof st[0]);
    memcpy(st[1], x->strides, sizeof st[1]);
    float *base[2] = {nd_data(y), nd_data(x)};
    nd__loop(2, x->ndim, x->shape, (const int64_t(*)[ND_MAX_DIMS])st, base, row,
             (void *)c);
    const nd_tensor *in[1] = {x};
    nd_op_event e = {.op = id, .out = y, .in = in, .nin = 1};
    for (int i = 0; i < nc; i++) e.scalars[i] = c[i];
    nd__emit(&e);
    return y;
}

static nd_tensor *map2(const nd_tensor *a, const nd_tensor *b, nd_row_fn row,
                       const char *op, nd_op id) {
    nd__check_tensor(a, op);
    nd__check_tensor(b, op);
    int64_t shape[ND_MAX_DIMS], st[3][ND_MAX_DIMS];
    int n = nd__broadcast_shape(a->shape, a->ndim, b->shape, b->ndim, shape, op);
    nd_tensor *y = nd__new(shape, n, op);
    memcpy(st[0], y->strides, sizeof st[0]);
    nd__broadcast_strides(a, shape, n, st[1]);
    nd__broadcast_strides(b, shape, n, st[2]);
    float *base[3] = {nd_data(y), nd_data(a), nd_data(b)};
    nd__loop(3, n, shape, (const int64_t(*)[ND_MAX_DIMS])st, base, row, NULL);
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
        return map2(a, b, name##_row, #name, id);                              \
    }

/* NaN in, NaN out, as PyTorch's maximum/minimum/clamp/relu do. */
static inline float max_nan(float a, float b) { return a != a || b != b ? NAN : (a > b ? a : b); }
static inline float min_nan(float a, float b) { return a != a || b != b ? NAN : (a < b ? a : b); }
/* sigma(x) = 1 / (1 + e^-x), computed without overflow for large |x| */
static inline float sigmoidf(float x) {
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

/* ---- binary ------------------------------------------------------------ */

ND_BINARY(add, ND_OP_ADD, a + b)
ND_BINARY(sub, ND_OP_SUB, a - b)
ND_BINARY(mul, ND_OP_MUL, a * b)
ND_BINARY(div, ND_OP_DIV, a / b)
ND_BINARY(maximum, ND_OP_MAXIMUM, max_nan(a, b))
ND_BINARY(minimum, ND_OP_MINIMUM, min_nan(a, b))
ND_BINARY(eq, ND_OP_EQ, a == b ? 1.0f : 0.0f)
ND_BINARY(ne, ND_OP_NE, a != b ? 1.0f : 0.0f)
ND_BINARY(lt, ND_OP_LT, a < b ? 1.0f : 0.0f)
ND_BINARY(le, ND_OP_LE, a <= b ? 1.0f : 0.0f)
ND_BINARY(gt, ND_OP_GT, a > b ? 1.0f : 0.0f)
ND_BINARY(ge, ND_OP_GE, a >= b ? 1.0f : 0.0f)

/* ---- with scalar parameters c[] ---------------------------------------- */

ND_UNARY(add_scalar, x + c[0])
ND_UNARY(sub_scalar, x - c[0])
ND_UNARY(rsub_scalar, c[0] - x)
ND_UNARY(mul_scalar, x * c[0])
ND_UNARY(div_scalar, x / c[0])
ND_UNARY(pow_scalar, c[0] == 2.0f ? x * x : powf(x, c[0]))
ND_UNARY(clamp, x < c[0] ? c[0] : (x > c[1] ? c[1] : x))

nd_tensor *nd_add_scalar(const nd_tensor *x, float s) { return map1(x, add_scalar_row, &s, 1, "add_scalar", ND_OP_ADD_SCALAR); }
nd_tensor *nd_sub_scalar(const nd_tensor *x, float s) { return map1(x, sub_scalar_row, &s, 1, "sub_scalar", ND_OP_SUB_SCALAR); }
nd_tensor *nd_rsub_scalar(const nd_tensor *x, float s) { return map1(x, rsub_scalar_row, &s, 1, "rsub_scalar", ND_OP_RSUB_SCALAR); }
nd_tensor *nd_mul_scalar(const nd_tensor *x, float s) { return map1(x, mul_scalar_row, &s, 1, "mul_scalar", ND_OP_MUL_SCALAR); }
nd_tensor *nd_div_scalar(const nd_tensor *x, float s) { return map1(x, div_scalar_row, &s, 1, "div_scalar", ND_OP_DIV_SCALAR); }
nd_tensor *nd_pow_scalar(const nd_tensor *x, float p) { return map1(x, pow_scalar_row, &p, 1, "pow_scalar", ND_OP_POW_SCALAR); }

nd_tensor *nd_clamp(const nd_tensor *x, float lo, float hi) {
    if (!(lo <= hi)) nd_fatal("clamp", "lo %g must not exceed hi %g", lo, hi);
    const float c[2] = {lo, hi};
    return map1(x, clamp_row, c, 2, "clamp", ND_OP_CLAMP);
}

/* ---- unary ------------------------------------------------------------- */

ND_UNARY(neg, -x)
ND_UNARY(exp, expf(x))
ND_UNARY(log, logf(x))
ND_UNARY(sqrt, sqrtf(x))
ND_UNARY(rsqrt, 1.0f / sqrtf(x))
ND_UNARY(square, x * x)
ND_UNARY(abs, fabsf(x))
ND_UNARY(sin, sinf(x))
ND_UNARY(cos, cosf(x))
ND_UNARY(tanh, tanhf(x))
ND_UNARY(sigmoid, sigmoidf(x))
ND_UNARY(silu, x * sigmoidf(x))                                 /* x sigma(x) */
ND_UNARY(erf, erff(x))
ND_UNARY(gelu, 0.5f * x * (1.0f + erff(x * 0.70710678118654752f))) /* x Phi(x) */
ND_UNARY(relu, x < 0 ? 0.0f : x)

#define ND_UNARY_API(name, id)                                                 \
    nd_tensor *nd_##name(const nd_tensor *x) { return map1(x, name##_row, NULL, 0, #name, id); }
ND_UNARY_API(neg, ND_OP_NEG)
ND_UNARY_API(exp, ND_OP_EXP)
ND_UNARY_API(log, ND_OP_LOG)
ND_UNARY_API(sqrt, ND_OP_SQRT)
ND_UNARY_API(rsqrt, ND_OP_RSQRT)
ND_UNARY_API(square, ND_OP_SQUARE)
ND_UNARY_API(abs, ND_OP_ABS)
ND_UNARY_API(sin, ND_OP_SIN)
ND_UNARY_API(cos, ND_OP_COS)
ND_UNARY_API(tanh, ND_OP_TANH)
ND_UNARY_API(sigmoid, ND_OP_SIGMOID)
ND_UNARY_API(silu, ND_OP_SILU)
ND_UNARY_API(erf, ND_OP_ERF)
ND_UNARY_API(gelu, ND_OP_GELU)
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
    nd__loop(4, n, shape, (const int64_t(*)[ND_MAX_DIMS])st, base, where_row, NULL);
    const nd_tensor *in[3] = {cond, a, b};
    nd_op_event e = {.op = ND_OP_WHERE, .out = y, .in = in, .nin = 3};
    nd__emit(&e);
    return y;
}
