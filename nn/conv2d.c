/* The Conv2d layer: owns the weight [out, in, kh, kw] and bias [out] of
 * the nd_conv2d op (tensor/conv.c, backward in autograd/rules_conv.c). */
#include "nn.h"

static void destroy(nd_module *m) { nd_dealloc(m, sizeof(nd_conv2d_layer)); }

nd_conv2d_opts nd_conv2d_same(int64_t kernel) {
    int64_t p = kernel / 2;
    return (nd_conv2d_opts){1, 1, p, p, p, p};
}

static nd_tensor *forward(nd_module *m, const nd_tensor *x) {
    return nd_conv2d_forward((nd_conv2d_layer *)m, x);
}

nd_conv2d_layer *nd_conv2d_new(int64_t in_channels, int64_t out_channels,
                               int64_t kernel_h, int64_t kernel_w,
                               nd_conv2d_opts opts, bool bias, nd_rng *rng) {
    if (in_channels < 1 || out_channels < 1 || kernel_h < 1 || kernel_w < 1)
        nd_fatal("conv2d_new", "channels and kernel sizes must be positive, got "
                 "in %lld, out %lld, kernel %lldx%lld", (long long)in_channels,
                 (long long)out_channels, (long long)kernel_h, (long long)kernel_w);
    if (opts.stride_h < 1 || opts.stride_w < 1 || opts.pad_top < 0 ||
        opts.pad_bottom < 0 || opts.pad_left < 0 || opts.pad_right < 0)
        nd_fatal("conv2d_new", "strides must be positive and padding non-negative");
    if (!rng) nd_fatal("conv2d_new", "rng is NULL");
    nd_conv2d_layer *l = nd_alloc(sizeof *l);
    nd_module_init(&l->base, "Conv2d", destroy);
    l->base.forward = forward;
    l->in_channels = in_channels;
    l->out_channels = out_channels;
    l->kernel_h = kernel_h;
    l->kernel_w = kernel_w;
    l->opts = opts;
    l->weight = nd_module_param(
        &l->base, "weight", nd_empty(ND_SHAPE(out_channels, in_channels, kernel_h, kernel_w)));
    l->bias = bias ? nd_module_param(&l->base, "bias", nd_empty(ND_SHAPE(out_channels)))
                   : NULL;
    nd_init_torch_default_(l->weight, l->bias, rng);
    return l;
}

nd_tensor *nd_conv2d_forward(nd_conv2d_layer *l, const nd_tensor *x) {
    if (!l) nd_fatal("conv2d", "layer is NULL");
    return nd_conv2d(x, l->weight, l->bias, l->opts);
}
