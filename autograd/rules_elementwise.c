/* Backward rules of the elementwise ops (forwards: tensor/elementwise.c).
 * Notation: y = op(a, b) or y = op(x); dy is the gradient of y; every
 * gradient is reduced to its input's shape by nd__accumulate. */
#include <math.h>

#include "internal.h"

#define A(r) ((r)->ins[0])
#define B(r) ((r)->ins[1])
#define X(r) ((r)->ins[0])
#define Y(r) ((r)->out)
#define S(r) ((r)->ev.scalars[0])

/* y = a + b:  da = dy, db = dy */
static void add_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, dy);
    nd__accumulate(r, 1, dy);
}

/* y = a - b:  da = dy, db = -dy */
static void sub_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, dy);
    nd__accumulate(r, 1, nd_neg(dy));
}

/* y = a b:  da = dy b, db = dy a */
static void mul_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_mul(dy, B(r)));
    nd__accumulate(r, 1, nd_mul(dy, A(r)));
}

/* y = a / b:  da = dy / b, db = -dy a / b^2 = -dy y / b */
static void div_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_div(dy, B(r)));
    nd__accumulate(r, 1, nd_neg(nd_div(nd_mul(dy, Y(r)), B(r))));
}

/* y = max(a, b):  dy goes to the larger input, half to each on a tie */
static void extremum_bw(const nd_record *r, const nd_tensor *dy, bool max) {
    nd_tensor *wins = max ? nd_gt(A(r), B(r)) : nd_lt(A(r), B(r));
    nd_tensor *to_a = nd_add(wins, nd_mul_scalar(nd_eq(A(r), B(r)), 0.5f));
    nd__accumulate(r, 0, nd_mul(dy, to_a));
    nd__accumulate(r, 1, nd_mul(dy, nd_rsub_scalar(to_a, 1.0f)));
}
static void maximum_bw(const nd_record *r, const nd_tensor *dy) { extremum_bw(r, dy, true); }
static void minimum_bw(const nd_record *r, const nd_tensor *dy) { extremum_bw(r, dy, false); }

/* y = cond ? a : b:  da = cond ? dy : 0, db = cond ? 0 : dy (no gradient
 * for cond) */
static void where_bw(const nd_record *r, const nd_tensor *dy) {
    nd_tensor *zero = nd_scalar(0.0f);
    nd__accumulate(r, 1, nd_where(r->ins[0], dy, zero));
    nd__accumulate(r, 2, nd_where(r->ins[0], zero, dy));
}

/* y = x + s, y = x - s:  dx = dy */
static void shift_bw(const nd_record *r, const nd_tensor *dy) { nd__accumulate(r, 0, dy); }
/* y = s - x:  dx = -dy */
static void rsub_scalar_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_neg(dy));
}
/* y = s x:  dx = s dy */
static void mul_scalar_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_mul_scalar(dy, S(r)));
}
/* y = x / s:  dx = dy / s */
static void div_scalar_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_div_scalar(dy, S(r)));
}
/* y = x^p:  dx = p x^(p-1) dy; for p = 0, y = 1 and dx = 0 everywhere,
 * x = 0 too, where the formula would give 0 * 0^-1 (as PyTorch) */
static void pow_scalar_bw(const nd_record *r, const nd_tensor *dy) {
    float p = S(r);
    if (p == 0.0f) {
        nd__accumulate(r, 0, nd_zeros_like(X(r)));
        return;
    }
    nd_tensor *d = p == 1.0f ? nd_full_like(X(r), 1.0f)
                             : nd_mul_scalar(nd_pow_scalar(X(r), p - 1.0f), p);
    nd__accumulate(r, 0, nd_mul(dy, d));
}
/* y = clamp(x, lo, hi):  dx = dy where lo <= x <= hi, else 0 */
static void clamp_bw(const nd_record *r, const nd_tensor *dy) {
    nd_tensor *inside = nd_mul(nd_ge(X(r), nd_scalar(r->ev.scalars[0])),
                               nd_le(X(r), nd_scalar(r->ev.scalars[1])));
    nd__accumulate(r, 0, nd_mul(dy, inside));
}

/* y = -x:  dx = -dy */
static void neg_bw(const nd_record *r, const nd_tensor *dy) { nd__accumulate(r, 0, nd_neg(dy)); }
/* y = e^x:  dx = y dy */
static void exp_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_mul(dy, Y(r)));
}
/* y = ln x:  dx = dy / x */
static void log_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_div(dy, X(r)));
}
/* y = sqrt x:  dx = dy / (2 y) */
static void sqrt_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_div(nd_mul_scalar(dy, 0.5f), Y(r)));
}
/* y = x^(-1/2):  dx = -y^3 dy / 2 */
static void rsqrt_bw(const nd_record *r, const nd_tensor *dy) {
    nd_tensor *y3 = nd_mul(nd_square(Y(r)), Y(r));
    nd__accumulate(r, 0, nd_mul(dy, nd_mul_scalar(y3, -0.5f)));
}
/* y = x^2:  dx = 2 x dy */
static void square_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_mul(dy, nd_mul_scalar(X(r), 2.0f)));
}
/* y = |x|:  dx = sign(x) dy (0 at 0) */
static void abs_bw(const nd_record *r, const nd_tensor *dy) {
    nd_tensor *zero = nd_scalar(0.0f);
    nd_tensor *sign = nd_sub(nd_gt(X(r), zero), nd_lt(X(r), zero));
    nd__accumulate(r, 0, nd_mul(dy, sign));
}
/* y = sin x:  dx = cos(x) dy */
static void sin_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_mul(dy, nd_cos(X(r))));
}
/* y = cos x:  dx = -sin(x) dy */
static void cos_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_mul(dy, nd_neg(nd_sin(X(r)))));
}
/* y = erf x:  dx = (2 / sqrt pi) e^(-x^2) dy */
static void erf_bw(const nd_record *r, const nd_tensor *dy) {
    nd_tensor *d = nd_mul_scalar(nd_exp(nd_neg(nd_square(X(r)))), 1.1283791670955126f);
    nd__accumulate(r, 0, nd_mul(dy, d));
}
/* y = tanh x:  dx = (1 - y^2) dy */
static void tanh_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_mul(dy, nd_rsub_scalar(nd_square(Y(r)), 1.0f)));
}
/* y = sigma(x):  dx = y (1 - y) dy */
static void sigmoid_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_mul(dy, nd_mul(Y(r), nd_rsub_scalar(Y(r), 1.0f))));
}
/* y = x sigma(x):  dx = sigma(x) (1 + x (1 - sigma(x))) dy */
static void silu_bw(const nd_record *r, const nd_tensor *dy) {
    nd_tensor *s = nd_sigmoid(X(r));
    nd_tensor *d = nd_mul(s, nd_add_scalar(nd_mul(X(r), nd_rsub_scalar(s, 1.0f)), 1.0f));
    nd__accumulate(r, 0, nd_mul(dy, d));
}
/* y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2:
 * dx = (Phi(x) + x phi(x)) dy, phi(x) = e^(-x^2/2) / sqrt(2 pi) */
static void gelu_bw(const nd_record *r, const nd_tensor *dy) {
    nd_tensor *x = X(r);
    nd_tensor *Phi = nd_mul_scalar(nd_add_scalar(nd_erf(nd_mul_scalar(x, 0.70710678118654752f)), 1.0f), 0.5f);
    nd_tensor *phi = nd_mul_scalar(nd_exp(nd_mul_scalar(nd_square(x), -0.5f)), 0.3989422804014327f);
    nd__accumulate(r, 0, nd_mul(dy, nd_add(Phi, nd_mul(x, phi))));
}
/* y = max(x, 0):  dx = dy where x > 0 */
static void relu_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_mul(dy, nd_gt(X(r), nd_scalar(0.0f))));
}

void nd__rules_elementwise(nd_rule *t) {
    t[ND_OP_ADD].backward = add_bw;
    t[ND_OP_SUB].backward = sub_bw;
    t[ND_OP_MUL].backward = mul_bw;
    t[ND_OP_DIV].backward = div_bw;
    t[ND_OP_MAXIMUM].backward = maximum_bw;
    t[ND_OP_MINIMUM].backward = minimum_bw;
    t[ND_OP_WHERE].backward = where_bw;
    t[ND_OP_ADD_SCALAR].backward = shift_bw;
    t[ND_OP_SUB_SCALAR].backward = shift_bw;
    t[ND_OP_RSUB_SCALAR].backward = rsub_scalar_bw;
    t[ND_OP_MUL_SCALAR].backward = mul_scalar_bw;
    t[ND_OP_DIV_SCALAR].backward = div_scalar_bw;
    t[ND_OP_POW_SCALAR].backward = pow_scalar_bw;
    t[ND_OP_CLAMP].backward = clamp_bw;
    t[ND_OP_NEG].backward = neg_bw;
    t[ND_OP_EXP].backward = exp_bw;
    t[ND_OP_LOG].backward = log_bw;
    t[ND_OP_SQRT].backward = sqrt_bw;
    t[ND_OP_RSQRT].backward = rsqrt_bw;
    t[ND_OP_SQUARE].backward = square_bw;
    t[ND_OP_ABS].backward = abs_bw;
    t[ND_OP_SIN].backward = sin_bw;
    t[ND_OP_COS].backward = cos_bw;
    t[ND_OP_ERF].backward = erf_bw;
    t[ND_OP_TANH].backward = tanh_bw;
    t[ND_OP_SIGMOID].backward = sigmoid_bw;
    t[ND_OP_SILU].backward = silu_bw;
    t[ND_OP_GELU].backward = gelu_bw;
    t[ND_OP_RELU].backward = relu_bw;
    /* rules that read no input values, or only some */
    const nd_op unread[] = {ND_OP_ADD,        ND_OP_SUB,        ND_OP_ADD_SCALAR,
                            ND_OP_SUB_SCALAR, ND_OP_RSUB_SCALAR, ND_OP_MUL_SCALAR,
                            ND_OP_DIV_SCALAR, ND_OP_NEG,        ND_OP_EXP,
                            ND_OP_SQRT,       ND_OP_RSQRT,      ND_OP_TANH,
                            ND_OP_SIGMOID};
    for (size_t i = 0; i < sizeof unread / sizeof *unread; i++)
        t[unread[i]].values_unread = ND_UNREAD_ALL;
    t[ND_OP_DIV].values_unread = 1u << 0;             /* reads b and y */
    t[ND_OP_WHERE].values_unread = 1u << 1 | 1u << 2; /* reads cond */
    /* rules that read y */
    const nd_op output[] = {ND_OP_DIV,   ND_OP_EXP,  ND_OP_SQRT,
                            ND_OP_RSQRT, ND_OP_TANH, ND_OP_SIGMOID};
    for (size_t i = 0; i < sizeof output / sizeof *output; i++) t[output[i]].reads_output = true;
}
