/* Every op of the tensor layer, once: its identity and properties, from
 * which tensor.h makes the enum nd_op, event.c the names, elementwise.c
 * the choice of loop, and autograd/ its checks. Included by tensor.h.
 *
 * X(ID, name, grad, cost):
 *   ID    ND_OP_<ID> in the enum
 *   name  what nd_op_name returns, and errors and the tape show
 *   grad  RULE: autograd/ has a backward rule for it (it checks, at its
 *               first use, that each such op has one);
 *         NONE: no gradient flows through it (comparisons, an index):
 *               its output never requires grad;
 *         NEVER: a backward pass itself, with no rule on purpose (no
 *               double backward): it stops on tensors that require grad
 *   cost  MEMORY: an elementwise op whose time is its memory traffic, so
 *               that large outputs go through streaming stores;
 *         ARITH: one bound by its arithmetic, computed in place with its
 *               inputs prefetched; other ops say MEMORY (unused) */
#ifndef NANODIFF_TENSOR_OPS_H
#define NANODIFF_TENSOR_OPS_H

#define ND_OP_LIST(X)                                                           \
    X(ADD, "add", RULE, MEMORY)                                                 \
    X(SUB, "sub", RULE, MEMORY)                                                 \
    X(MUL, "mul", RULE, MEMORY)                                                 \
    X(DIV, "div", RULE, MEMORY)                                                 \
    X(MAXIMUM, "maximum", RULE, MEMORY)                                         \
    X(MINIMUM, "minimum", RULE, MEMORY)                                         \
    X(EQ, "eq", NONE, MEMORY)                                                   \
    X(NE, "ne", NONE, MEMORY)                                                   \
    X(LT, "lt", NONE, MEMORY)                                                   \
    X(LE, "le", NONE, MEMORY)                                                   \
    X(GT, "gt", NONE, MEMORY)                                                   \
    X(GE, "ge", NONE, MEMORY)                                                   \
    X(WHERE, "where", RULE, MEMORY)                                             \
    X(ADD_SCALAR, "add_scalar", RULE, MEMORY)                                   \
    X(SUB_SCALAR, "sub_scalar", RULE, MEMORY)                                   \
    X(RSUB_SCALAR, "rsub_scalar", RULE, MEMORY)                                 \
    X(MUL_SCALAR, "mul_scalar", RULE, MEMORY)                                   \
    X(DIV_SCALAR, "div_scalar", RULE, MEMORY)                                   \
    X(POW_SCALAR, "pow_scalar", RULE, ARITH)                                    \
    X(CLAMP, "clamp", RULE, MEMORY)                                             \
    X(NEG, "neg", RULE, MEMORY)                                                 \
    X(EXP, "exp", RULE, MEMORY)                                                 \
    X(LOG, "log", RULE, ARITH)                                                  \
    X(SQRT, "sqrt", RULE, ARITH)                                                \
    X(RSQRT, "rsqrt", RULE, ARITH)                                              \
    X(SQUARE, "square", RULE, MEMORY)                                           \
    X(ABS, "abs", RULE, MEMORY)                                                 \
    X(SIN, "sin", RULE, ARITH)                                                  \
    X(COS, "cos", RULE, ARITH)                                                  \
    X(TANH, "tanh", RULE, ARITH)                                                \
    X(SIGMOID, "sigmoid", RULE, ARITH)                                          \
    X(SILU, "silu", RULE, ARITH)                                                \
    X(ERF, "erf", RULE, ARITH)                                                  \
    X(GELU, "gelu", RULE, ARITH)                                                \
    X(RELU, "relu", RULE, MEMORY)                                               \
    X(SUM, "sum", RULE, MEMORY)                                                 \
    X(MEAN, "mean", RULE, MEMORY)                                               \
    X(MAX, "max", RULE, MEMORY)                                                 \
    X(MIN, "min", RULE, MEMORY)                                                 \
    X(VAR, "var", RULE, MEMORY)                                                 \
    X(ARGMAX, "argmax", NONE, MEMORY)                                           \
    X(SOFTMAX, "softmax", RULE, MEMORY)                                         \
    X(LOG_SOFTMAX, "log_softmax", RULE, MEMORY)                                 \
    X(SOFTMAX_BACKWARD, "softmax_backward", NEVER, MEMORY)                      \
    X(MATMUL, "matmul", RULE, MEMORY)                                           \
    X(CONCAT, "concat", RULE, MEMORY)                                           \
    X(STACK, "stack", RULE, MEMORY)                                             \
    X(PAD, "pad", RULE, MEMORY)                                                 \
    X(INDEX_SELECT, "index_select", RULE, MEMORY)                               \
    X(INDEX_ADD, "index_add", RULE, MEMORY)                                     \
    X(CONV2D, "conv2d", RULE, MEMORY)                                           \
    X(CONV2D_BACKWARD_INPUT, "conv2d_backward_input", NEVER, MEMORY)            \
    X(CONV2D_BACKWARD_WEIGHT, "conv2d_backward_weight", NEVER, MEMORY)          \
    X(VIEW, "view", RULE, MEMORY)                                               \
    X(PERMUTE, "permute", RULE, MEMORY)                                         \
    X(SLICE, "slice", RULE, MEMORY)                                             \
    X(EXPAND, "expand", RULE, MEMORY)                                           \
    X(SQUEEZE, "squeeze", RULE, MEMORY)                                         \
    X(UNSQUEEZE, "unsqueeze", RULE, MEMORY)                                     \
    X(CONTIGUOUS, "contiguous", RULE, MEMORY)                                   \
    X(CLONE, "clone", RULE, MEMORY)

#endif
