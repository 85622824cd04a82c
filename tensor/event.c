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

/* name, gradient kind and cost of every op, from ops.h */
static const struct {
    const char *name;
    nd_op_grad grad;
    bool arithmetic;
} ops[ND_OP_COUNT] = {
#define ND_OP_ENTRY(id, name, grad, cost)                                      \
    [ND_OP_##id] = {name, ND_GRAD_##grad, ND_COST_##cost},
#define ND_COST_MEMORY false
#define ND_COST_ARITH true
    ND_OP_LIST(ND_OP_ENTRY)
#undef ND_OP_ENTRY
};

static bool known(nd_op op) { return (int)op >= 0 && op < ND_OP_COUNT; }

const char *nd_op_name(nd_op op) { return known(op) ? ops[op].name : "unknown op"; }

nd_op_grad nd_op_grad_kind(nd_op op) {
    if (!known(op)) nd_fatal("op_grad_kind", "no op %d", (int)op);
    return ops[op].grad;
}

bool nd_op_arithmetic(nd_op op) { return known(op) && ops[op].arithmetic; }
