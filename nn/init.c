/* Parameter initialisation: PyTorch's defaults and DDPM's variance
 * scaling. Every draw comes from a caller's nd_rng, so a seed fixes the
 * model. */
#include <math.h>

#include "nn.h"

void nd_fans(const nd_tensor *w, int64_t *fan_in, int64_t *fan_out) {
    if (!w) nd_fatal("fans", "tensor is NULL");
    if (w->ndim < 2) {
        char s[ND_SHAPE_STR_LEN];
        nd_fatal("fans", "a weight has at least 2 axes [out, in, ...], got %s",
                 nd_shape_str(w->shape, w->ndim, s));
    }
    int64_t field = 1; /* the receptive field: kh kw for a conv */
    for (int i = 2; i < w->ndim; i++) field *= w->shape[i];
    if (fan_in) *fan_in = w->shape[1] * field;
    if (fan_out) *fan_out = w->shape[0] * field;
}

void nd_init_uniform_(nd_tensor *t, float lo, float hi, nd_rng *rng) {
    if (!t || !rng) nd_fatal("init_uniform", "tensor or rng is NULL");
    if (!(lo <= hi)) nd_fatal("init_uniform", "empty range [%g, %g)", lo, hi);
    nd_scope *s = nd_scope_begin();
    nd_no_grad_begin();
    nd_tensor *u = nd_rand(rng, t->shape, t->ndim);
    nd_copy_(t, nd_add_scalar(nd_mul_scalar(u, hi - lo), lo));
    nd_no_grad_end();
    nd_scope_end(s);
}

/* kaiming_uniform(a = sqrt(5)) has gain sqrt(2 / (1 + a^2)) = sqrt(1/3)
 * and bound gain sqrt(3 / fan_in) = 1 / sqrt(fan_in). */
void nd_init_torch_default_(nd_tensor *w, nd_tensor *bias, nd_rng *rng) {
    int64_t fan_in;
    nd_fans(w, &fan_in, NULL);
    float b = fan_in > 0 ? (float)(1.0 / sqrt((double)fan_in)) : 0.0f;
    nd_init_uniform_(w, -b, b, rng);
    if (bias) nd_init_uniform_(bias, -b, b, rng);
}

void nd_init_variance_scaling_(nd_tensor *w, nd_tensor *bias, float scale, nd_rng *rng) {
    if (!(scale >= 0.0f)) nd_fatal("init_variance_scaling", "scale %g is negative", scale);
    int64_t fan_in, fan_out;
    nd_fans(w, &fan_in, &fan_out);
    double s = scale == 0.0f ? 1e-10 : scale;
    double fan_avg = (double)(fan_in + fan_out) / 2.0;
    float limit = fan_avg > 0 ? (float)sqrt(3.0 * s / fan_avg) : 0.0f;
    nd_init_uniform_(w, -limit, limit, rng);
    if (bias) nd_fill_(bias, 0.0f);
}
