/* Linear: y = x W^T + b  (x [..., in], W [out, in], b [out] -> [..., out]).
 * Built from matmul and add, so the tape differentiates it:
 *   dx = dy W,  dW = sum over rows of dy^T x,  db = sum over rows of dy. */
#include "nn.h"

nd_tensor *nd_linear(const nd_tensor *x, const nd_tensor *w, const nd_tensor *b) {
    if (!x || !w) nd_fatal("linear", "input or weight is NULL");
    char a[ND_SHAPE_STR_LEN], c[ND_SHAPE_STR_LEN];
    if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
        nd_fatal("linear", "input %s does not fit weight %s (want [..., in] and "
                 "[out, in])", nd_shape_str(x->shape, x->ndim, a),
                 nd_shape_str(w->shape, w->ndim, c));
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        nd_fatal("linear", "bias %s for weight %s (want [out])",
                 nd_shape_str(b->shape, b->ndim, a), nd_shape_str(w->shape, w->ndim, c));
    nd_tensor *y = nd_matmul(x, nd_transpose(w, 0, 1));
    return b ? nd_add(y, b) : y;
}

static void destroy(nd_module *m) { nd_dealloc(m, sizeof(nd_linear_layer)); }

static nd_tensor *forward(nd_module *m, const nd_tensor *x) {
    return nd_linear_forward((nd_linear_layer *)m, x);
}

nd_linear_layer *nd_linear_new(int64_t in_features, int64_t out_features, bool bias,
                               nd_rng *rng) {
    if (in_features < 1 || out_features < 1)
        nd_fatal("linear_new", "features must be positive, got in %lld, out %lld",
                 (long long)in_features, (long long)out_features);
    if (!rng) nd_fatal("linear_new", "rng is NULL");
    nd_linear_layer *l = nd_alloc(sizeof *l);
    nd_module_init(&l->base, "Linear", destroy);
    l->base.forward = forward;
    l->in_features = in_features;
    l->out_features = out_features;
    l->weight = nd_module_param(&l->base, "weight",
                                nd_empty(ND_SHAPE(out_features, in_features)));
    l->bias = bias ? nd_module_param(&l->base, "bias", nd_empty(ND_SHAPE(out_features)))
                   : NULL;
    nd_init_torch_default_(l->weight, l->bias, rng);
    return l;
}

nd_tensor *nd_linear_forward(nd_linear_layer *l, const nd_tensor *x) {
    if (!l) nd_fatal("linear", "layer is NULL");
    return nd_linear(x, l->weight, l->bias);
}
