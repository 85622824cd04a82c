/* nanodiff autograd layer: tape-based reverse mode.
 *
 * Every op of the tensor layer reports what it computed (tensor.h, "op
 * events"). When gradients are enabled and one of its inputs requires a
 * gradient, the op appends one record to the tape: the op, its inputs and
 * output, and its arguments. nd_backward(loss) seeds d loss = 1 and walks
 * the tape once in reverse; each record's rule turns the gradient of its
 * output into gradients of its inputs, which accumulate in their ->grad.
 *
 * Records and non-leaf gradients belong to the tensors they describe, so
 * ending the step's scope releases the whole tape at once; a training step
 * that needs neither after backward has nd_backward_free_graph release
 * each as soon as the walk is past it. */
#ifndef NANODIFF_AUTOGRAD_H
#define NANODIFF_AUTOGRAD_H

#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Mark a leaf (a tensor no recorded op produced: parameters, inputs) as
 * needing a gradient, or not. Returns t. */
nd_tensor *nd_requires_grad(nd_tensor *t, bool on);

/* Reverse pass from a one-element loss (d loss = 1), or from any y with a
 * seed gradient dy of y's shape. Gradients accumulate into ->grad of every
 * tensor on the way that requires one: leaves keep theirs until
 * nd_zero_grad; non-leaves are recomputed by each backward. */
void nd_backward(nd_tensor *loss);
void nd_backward_with(nd_tensor *y, const nd_tensor *dy);
/* nd_backward that frees the graph as it walks it (PyTorch's default,
 * retain_graph=False): each record, and its output's gradient, goes as soon
 * as its rule has run. Leaves' gradients accumulate as with nd_backward.
 * The tensors the walk passed keep their values but lose their records and
 * gradients: a later backward that reaches one of them (walking the same
 * graph twice, or a second loss that shares part of it) stops with an
 * error. A training step's peak memory is then its activations, not
 * activations plus every intermediate gradient. */
void nd_backward_free_graph(nd_tensor *loss);

/* Sets t->grad to zeros, if it has one (a non-leaf's gradient that shares
 * its storage with other gradients is replaced by a new one of zeros). */
void nd_zero_grad(nd_tensor *t);
/* A view of x's values that no gradient flows through. */
nd_tensor *nd_detach(const nd_tensor *x);

/* Functions: ops defined above the tensor layer.
 *
 * A layer that computes its output with its own fused loops (GroupNorm,
 * say) records it with nd_function_apply: one tape entry whose backward
 * is fn->backward. The entry keeps the saved tensors (what the backward
 * reads: the input's values, statistics) and a copy of args, plain data
 * such as sizes and eps. It holds the inputs and the output for their
 * shapes and gradients only: their values may be gone by the time
 * backward runs, so a backward that needs them saves them (recompute,
 * below, may read inputs too, and says so). Nothing is recorded in no-grad
 * mode or when no input requires grad. */
typedef struct nd_function_ctx {
    nd_tensor *const *in; /* the inputs, in the order given: shapes only */
    int nin;
    nd_tensor *const *saved;
    int nsaved;
    const nd_tensor *out; /* shape only */
    const void *args;
} nd_function_ctx;
typedef struct nd_function {
    const char *name; /* shown by nd_tape_print and in errors */
    /* Set grads[k] to d loss / d in[k], of in[k]'s shape, from dy = d loss /
     * d out; grads[k] may stay NULL when !ctx->in[k]->requires_grad. Tensors
     * made here are released after the call, but for a gradient that nothing
     * else holds or views: that one becomes in[k]'s gradient as it is. */
    void (*backward)(const nd_function_ctx *ctx, const nd_tensor *dy,
                     nd_tensor **grads);
    /* Optional: fill out (a new contiguous tensor of the output's shape)
     * with the output's values again, from the saved tensors and args,
     * and from the inputs' values if recompute_reads_inputs. With it, a
     * rule that reads the output (a conv reading its input, say) does not
     * keep it alive: the tape computes it again just before that rule
     * runs, and lets it go after (activation recomputation, Chen et al.
     * 2016). It must give the forward's bits. An input that recompute
     * reads is then held with its values, unless it can be computed again
     * itself, in which case the tape does so first. */
    void (*recompute)(const nd_function_ctx *ctx, nd_tensor *out);
    bool recompute_reads_inputs;
} nd_function;
/* Returns out, a tensor the caller just made (no op recorded it). */
nd_tensor *nd_function_apply(const nd_function *fn, nd_tensor *out,
                             const nd_tensor *const *in, int nin,
                             const nd_tensor *const *saved, int nsaved,
                             const void *args, size_t args_bytes);

/* No-grad mode (sampling runs in it): ops record nothing and allocate no
 * tape memory. Nests; each begin needs its end. */
void nd_no_grad_begin(void);
void nd_no_grad_end(void);
bool nd_is_grad_enabled(void);

/* The recorded ops in order, with shapes and where their inputs come
 * from: what backward will walk, in reverse. */
void nd_tape_print(FILE *f);
size_t nd_tape_length(void); /* records alive */

/* Gradient checking: central differences against backward.
 *
 * f maps the inputs to a tensor y; the check compares, for every element
 * of every input, d L / d x with L = sum_i w_i y_i for fixed random
 * weights w (so every output element takes part), computing L in double.
 * Inputs are perturbed in their storage: elements that share storage
 * (expanded views) are checked together. An element passes when
 * |analytic - numeric| <= atol + rtol * |numeric|. The inputs must be
 * leaves; they require grad during the check and are restored after. */
typedef nd_tensor *(*nd_grad_fn)(nd_tensor *const *inputs, void *ctx);
typedef struct nd_gradcheck_report {
    int64_t checked;     /* storage elements compared */
    int64_t failed;      /* of which out of tolerance */
    int worst_input;     /* largest violation (relative to its tolerance) */
    int64_t worst_index; /* element of that input (row-major) */
    double analytic, numeric;
} nd_gradcheck_report;
bool nd_gradcheck(nd_grad_fn f, void *ctx, nd_tensor *const *inputs, int n,
                  double eps, double atol, double rtol,
                  nd_gradcheck_report *report);

#ifdef __cplusplus
}
#endif
#endif
