/* Dropout (Srivastava et al. 2014), inverted: in training
 *   y = x m / (1 - p),  m_i ~ Bernoulli(1 - p)
 * so that E[y] = x and eval mode is the identity. The mask is a tensor of
 * the tape like any other operand: dx = dy m / (1 - p). It is drawn from a
 * counter-based rng, so the same (seed, stream, offset) replays a step. */
#include "nn.h"

nd_tensor *nd_dropout(const nd_tensor *x, float p, bool training, nd_rng *rng) {
    if (!x) nd_fatal("dropout", "input is NULL");
    if (!(p >= 0.0f && p <= 1.0f)) nd_fatal("dropout", "p = %g is not in [0, 1]", p);
    if (!training || p == 0.0f) return nd_view(x, x->shape, x->ndim);
    if (!rng) nd_fatal("dropout", "rng is NULL (needed in training mode)");
    nd_tensor *u = nd_rand(rng, x->shape, x->ndim);
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    nd_tensor *mask = nd_mul_scalar(nd_ge(u, nd_scalar(p)), scale);
    return nd_mul(x, mask);
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
