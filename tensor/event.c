/* Op events: every op reports what it computed to one observer, which the
 * autograd layer installs to build its tape. The tensor layer itself does
 * nothing with them. */
#include "internal.h"

int nd__quiet;
static nd_op_observer observer;

nd_op_observer nd_set_op_observer(nd_op_observer obs) {
    nd_op_observer old = observer;
    observer = obs;
    return old;
}

void nd__emit(const nd_op_event *event) {
    if (observer && nd__quiet == 0) observer(event);
}

void nd__emit_simple(nd_op op, nd_tensor *out, const nd_tensor *a,
                     const nd_tensor *b) {
    if (!observer || nd__quiet) return;
    const nd_tensor *in[2] = {a, b};
    nd_op_event e = {.op = op, .out = out, .in = in, .nin = b ? 2 : 1};
    observer(&e);
}

static const char *const names[ND_OP_COUNT] = {
    [ND_OP_ADD] = "add", [ND_OP_SUB] = "sub", [ND_OP_MUL] = "mul",
    [ND_OP_DIV] = "div", [ND_OP_MAXIMUM] = "maximum", [ND_OP_MINIMUM] = "minimum",
    [ND_OP_EQ] = "eq", [ND_OP_NE] = "ne", [ND_OP_LT] = "lt", [ND_OP_LE] = "le",
    [ND_OP_GT] = "gt", [ND_OP_GE] = "ge", [ND_OP_WHERE] = "where",
    [ND_OP_ADD_SCALAR] = "add_scalar", [ND_OP_SUB_SCALAR] = "sub_scalar",
    [ND_OP_RSUB_SCALAR] = "rsub_scalar", [ND_OP_MUL_SCALAR] = "mul_scalar",
    [ND_OP_DIV_SCALAR] = "div_scalar", [ND_OP_POW_SCALAR] = "pow_scalar",
    [ND_OP_CLAMP] = "clamp", [ND_OP_NEG] = "neg", [ND_OP_EXP] = "exp",
    [ND_OP_LOG] = "log", [ND_OP_SQRT] = "sqrt", [ND_OP_RSQRT] = "rsqrt",
    [ND_OP_SQUARE] = "square", [ND_OP_ABS] = "abs", [ND_OP_SIN] = "sin",
    [ND_OP_COS] = "cos", [ND_OP_TANH] = "tanh", [ND_OP_SIGMOID] = "sigmoid",
    [ND_OP_SILU] = "silu", [ND_OP_ERF] = "erf", [ND_OP_GELU] = "gelu", [ND_OP_RELU] = "relu",
    [ND_OP_SUM] = "sum", [ND_OP_MEAN] = "mean", [ND_OP_MAX] = "max",
    [ND_OP_MIN] = "min", [ND_OP_VAR] = "var", [ND_OP_ARGMAX] = "argmax",
    [ND_OP_SOFTMAX] = "softmax", [ND_OP_LOG_SOFTMAX] = "log_softmax",
    [ND_OP_SOFTMAX_BACKWARD] = "softmax_backward",
    [ND_OP_MATMUL] = "matmul", [ND_OP_CONCAT] = "concat", [ND_OP_STACK] = "stack",
    [ND_OP_PAD] = "pad", [ND_OP_CONV2D] = "conv2d",
    [ND_OP_CONV2D_BACKWARD_INPUT] = "conv2d_backward_input",
    [ND_OP_CONV2D_BACKWARD_WEIGHT] = "conv2d_backward_weight",
    [ND_OP_VIEW] = "view", [ND_OP_PERMUTE] = "permute",
    [ND_OP_SLICE] = "slice", [ND_OP_EXPAND] = "expand", [ND_OP_SQUEEZE] = "squeeze",
    [ND_OP_UNSQUEEZE] = "unsqueeze", [ND_OP_CONTIGUOUS] = "contiguous",
    [ND_OP_CLONE] = "clone",
};

const char *nd_op_name(nd_op op) {
    if ((int)op < 0 || op >= ND_OP_COUNT || !names[op]) return "unknown op";
    return names[op];
}
