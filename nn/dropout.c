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
