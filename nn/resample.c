/* Changing resolution in the UNet: nearest upsampling by 2 (then a 3x3
 * conv) on the way up, a stride-2 3x3 conv on the way down. */
#include "nn.h"

/* y[n, c, i, j] = x[n, c, i / 2, j / 2]: each value repeated over a 2x2
 * block, as a broadcast of x with two size-1 axes (the tape sums each
 * block back in backward: dx = sum of dy over the block). */
nd_tensor *nd_upsample_nearest2x(const nd_tensor *x) {
    if (!x) nd_fatal("upsample_nearest2x", "input is NULL");
    if (x->ndim != 4) {
        char s[ND_SHAPE_STR_LEN];
        nd_fatal("upsample_nearest2x", "input %s is not [N, C, H, W]",
                 nd_shape_str(x->shape, x->ndim, s));
    }
    int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2], w = x->shape[3];
    nd_tensor *v = nd_view(x, ND_SHAPE(n, c, h, 1, w, 1));
    nd_tensor *e = nd_expand(v, ND_SHAPE(n, c, h, 2, w, 2));
    return nd_reshape(e, ND_SHAPE(n, c, 2 * h, 2 * w));
}

static void destroy_up(nd_module *m) { nd_dealloc(m, sizeof(nd_upsample_layer)); }
static void destroy_down(nd_module *m) { nd_dealloc(m, sizeof(nd_downsample_layer)); }

static nd_tensor *forward_up(nd_module *m, const nd_tensor *x) {
    return nd_upsample_forward((nd_upsample_layer *)m, x);
}

nd_upsample_layer *nd_upsample_new(int64_t channels, nd_rng *rng) {
    nd_upsample_layer *l = nd_alloc(sizeof *l);
    nd_module_init(&l->base, "Upsample", destroy_up);
    l->base.forward = forward_up;
    l->conv = nd_conv2d_new(channels, channels, 3, 3, nd_conv2d_same(3), true, rng);
    nd_module_child(&l->base, "conv", &l->conv->base);
    return l;
}

nd_tensor *nd_upsample_forward(nd_upsample_layer *l, const nd_tensor *x) {
    if (!l) nd_fatal("upsample", "layer is NULL");
    return nd_conv2d_forward(l->conv, nd_upsample_nearest2x(x));
}

static nd_tensor *forward_down(nd_module *m, const nd_tensor *x) {
    return nd_downsample_forward((nd_downsample_layer *)m, x);
}

nd_downsample_layer *nd_downsample_new(int64_t channels, nd_rng *rng) {
    nd_downsample_layer *l = nd_alloc(sizeof *l);
    nd_module_init(&l->base, "Downsample", destroy_down);
    l->base.forward = forward_down;
    /* TensorFlow's "SAME" for stride 2 on an even size pads 0 before and 1
     * after: output i sees inputs 2i, 2i + 1, 2i + 2. */
    nd_conv2d_opts same = {2, 2, 0, 1, 0, 1};
    l->conv = nd_conv2d_new(channels, channels, 3, 3, same, true, rng);
    nd_module_child(&l->base, "conv", &l->conv->base);
    return l;
}

nd_tensor *nd_downsample_forward(nd_downsample_layer *l, const nd_tensor *x) {
    if (!l) nd_fatal("downsample", "layer is NULL");
    return nd_conv2d_forward(l->conv, x);
}
