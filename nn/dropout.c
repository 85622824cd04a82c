/* Dropout (Srivastava et al. 2014), inverted: in training
 *   y = x m / (1 - p),  m_i ~ Bernoulli(1 - p)
 * so that E[y] = x and eval mode is the identity; dx = dy m / (1 - p).
 * The mask comes from a counter-based rng, element i from draw offset + i,
 * so backward draws it again from the saved (seed, stream, offset) instead
 * of keeping it: nothing of the size of x stays alive for backward. */
#include "nn.h"

typedef struct {
    nd_rng at; /* the generator as it was before the mask's draws */
    float p, scale;
} dropout_args;

/* m / (1 - p) of x's shape, drawn from rng */
static nd_tensor *scaled_mask(nd_rng *rng, const dropout_args *a, const nd_tensor *x) {
    nd_tensor *u = nd_rand(rng, x->shape, x->ndim);
    return nd_mul_scalar(nd_ge(u, nd_scalar(a->p)), a->scale);
}

static void dropout_backward(const nd_function_ctx *ctx, const nd_tensor *dy,
                             nd_tensor **grads) {
    const dropout_args *a = ctx->args;
    nd_rng again = a->at;
    grads[0] = nd_mul(dy, scaled_mask(&again, a, dy));
}

static const nd_function dropout_fn = {"dropout", dropout_backward};

nd_tensor *nd_dropout(const nd_tensor *x, float p, bool training, nd_rng *rng) {
    if (!x) nd_fatal("dropout", "input is NULL");
    if (!(p >= 0.0f && p <= 1.0f)) nd_fatal("dropout", "p = %g is not in [0, 1]", p);
    if (!training || p == 0.0f) return nd_view(x, x->shape, x->ndim);
    if (!rng) nd_fatal("dropout", "rng is NULL (needed in training mode)");
    dropout_args a = {*rng, p, p < 1.0f ? 1.0f / (1.0f - p) : 0.0f};
    nd_no_grad_begin(); /* one record for the whole op, below */
    nd_scope *s = nd_scope_begin();
    nd_tensor *y = nd_keep(nd_mul(x, scaled_mask(rng, &a, x)));
    nd_scope_end(s);
    nd_no_grad_end();
    return nd_function_apply(&dropout_fn, y, &x, 1, NULL, 0, &a, sizeof a);
}

static void destroy(nd_module *m) { nd_dealloc(m, sizeof(nd_dropout_layer)); }

static nd_tensor *forward(nd_module *m, const nd_tensor *x) {
    return nd_dropout_forward((nd_dropout_layer *)m, x);
}

nd_dropout_layer *nd_dropout_new(float p) {
    if (!(p >= 0.0f && p <= 1.0f)) nd_fatal("dropout_new", "p = %g is not in [0, 1]", p);
    nd_dropout_layer *l = nd_alloc(sizeof *l);
    nd_module_init(&l->base, "Dropout", destroy);
    l->base.forward = forward;
    l->p = p;
    return l;
}

nd_tensor *nd_dropout_forward(nd_dropout_layer *l, const nd_tensor *x) {
    if (!l) nd_fatal("dropout", "layer is NULL");
    if (l->base.training && l->p > 0.0f && !l->base.rng)
        nd_fatal("dropout", "the module has no generator: give its tree one with "
                 "nd_module_set_rng");
    return nd_dropout(x, l->p, l->base.training, l->base.rng);
}
