/* Private to autograd/: the tape record and the table of backward rules. */
#ifndef NANODIFF_AUTOGRAD_INTERNAL_H
#define NANODIFF_AUTOGRAD_INTERNAL_H

#include "autograd.h"

/* One entry of the tape (a Wengert list): the op's event, with the inputs
 * retained so they outlive any early nd_free, and the output that owns the
 * record. */
typedef struct nd_record {
    nd_op_event ev;   /* ev.in points at ins */
    nd_tensor **ins;  /* ev.nin inputs, then nsaved saved tensors */
    const nd_function *fn; /* a function's record (ev.op unused), or NULL */
    int nsaved;
    void *args;       /* the function's copy of its arguments */
    nd_tensor *out;
    uint64_t id;      /* order of recording, from 1 */
    size_t bytes;     /* of this allocation (record + ins) */
    bool reached;     /* from the tensor a walk starts at; only during it */
    uint64_t shape_only; /* bit k: ins[k] is held for its shape (nd_retain_shape) */
    uint64_t restore;    /* bit k: the rule reads ins[k], computed again before it runs */
    struct nd_record *prev, *next;
} nd_record;

/* A rule reads the record and the gradient dy of its output and adds the
 * gradients of the inputs with nd__accumulate. */
typedef void (*nd_backward_fn)(const nd_record *r, const nd_tensor *dy);
/* What a rule reads besides dy decides what its record keeps alive: an
 * input's values only where the rule reads them (an add's gradient needs
 * the shapes of its inputs, not their values), and the output's values
 * only where it reads them (exp's rule reads y = e^x). */
typedef struct {
    nd_backward_fn backward;
    bool not_differentiable; /* outputs never require grad: NONE in tensor/ops.h */
    uint64_t values_unread;  /* bit k (k < 64): the rule reads only input k's shape */
    bool reads_output;       /* the rule reads its output's values */
} nd_rule;
#define ND_UNREAD_ALL UINT64_MAX

/* "add", or a function's name. */
const char *nd__record_name(const nd_record *r);

/* The table, indexed by nd_op. Each rules_*.c fills its ops' entries. */
extern nd_rule nd__rules[ND_OP_COUNT];
void nd__rules_elementwise(nd_rule *table);
void nd__rules_reduce(nd_rule *table);
void nd__rules_shape(nd_rule *table);
void nd__rules_conv(nd_rule *table);
/* Marks the NONE ops of tensor/ops.h not differentiable, and stops unless
 * every RULE op has a backward and no other op has one. */
void nd__rules_check(void);

/* ins[k]->grad += g, with g summed over the axes that broadcasting added
 * or stretched; nothing if ins[k] does not require grad. */
void nd__accumulate(const nd_record *r, int k, const nd_tensor *g);
/* dy of a reduction, viewed with the reduced axes restored (size 1) and
 * broadcast to the input's shape. */
nd_tensor *nd__unreduce(const nd_record *r, const nd_tensor *dy);

#endif
