/* The residual block of the DDPM UNet (Ho et al. 2020, appendix B; the
 * wide ResNet block of Zagoruyko & Komodakis 2016 with the timestep
 * injected between its two convolutions):
 *   h = conv1(swish(norm1(x))) + temb_proj(swish(temb))   broadcast over H, W
 *   h = conv2(dropout(swish(norm2(h))))
 *   out = shortcut(x) + h       shortcut: a 1x1 conv when channels change */
#include "nn.h"

static void destroy(nd_module *m) { nd_dealloc(m, sizeof(nd_resblock_layer)); }

nd_resblock_layer *nd_resblock_new(int64_t in_channels, int64_t out_channels,
                                   int64_t temb_dim, int64_t groups, float dropout,
                                   nd_rng *rng) {
    if (!(dropout >= 0.0f && dropout < 1.0f))
        nd_fatal("resblock_new", "dropout %g is not in [0, 1)", dropout);
    nd_resblock_layer *l = nd_alloc(sizeof *l);
    nd_module_init(&l->base, "ResnetBlock", destroy);
    l->in_channels = in_channels;
    l->out_channels = out_channels;
    l->dropout = dropout;
    nd_module *b = &l->base;
    nd_conv2d_opts same = nd_conv2d_same(3);
    l->norm1 = nd_group_norm_new(groups, in_channels, 1e-6f, true);
    nd_module_child(b, "norm1", &l->norm1->base);
    l->conv1 = nd_conv2d_new(in_channels, out_channels, 3, 3, same, true, rng);
    nd_module_child(b, "conv1", &l->conv1->base);
    l->temb_proj = nd_linear_new(temb_dim, out_channels, true, rng);
    nd_module_child(b, "temb_proj", &l->temb_proj->base);
    l->norm2 = nd_group_norm_new(groups, out_channels, 1e-6f, true);
    nd_module_child(b, "norm2", &l->norm2->base);
    l->conv2 = nd_conv2d_new(out_channels, out_channels, 3, 3, same, true, rng);
    nd_module_child(b, "conv2", &l->conv2->base);
    l->nin_shortcut = NULL;
    if (in_channels != out_channels) {
        l->nin_shortcut =
            nd_conv2d_new(in_channels, out_channels, 1, 1, nd_conv2d_same(1), true, rng);
        nd_module_child(b, "nin_shortcut", &l->nin_shortcut->base);
    }
    return l;
}

nd_tensor *nd_resblock_forward(nd_resblock_layer *l, const nd_tensor *x,
                               const nd_tensor *temb, nd_rng *rng) {
    if (!l) nd_fatal("resblock", "layer is NULL");
    char s[ND_SHAPE_STR_LEN], t[ND_SHAPE_STR_LEN];
    if (!x || !temb || x->ndim != 4 || temb->ndim != 2 || x->shape[0] != temb->shape[0] ||
        x->shape[1] != l->in_channels || temb->shape[1] != l->temb_proj->in_features)
        nd_fatal("resblock", "block %lld -> %lld channels, temb %lld, got x %s and "
                 "temb %s", (long long)l->in_channels, (long long)l->out_channels,
                 (long long)l->temb_proj->in_features,
                 x ? nd_shape_str(x->shape, x->ndim, s) : "NULL",
                 temb ? nd_shape_str(temb->shape, temb->ndim, t) : "NULL");
    nd_tensor *h = nd_conv2d_forward(l->conv1, nd_group_norm_silu_forward(l->norm1, x));
    nd_tensor *e = nd_linear_forward(l->temb_proj, nd_silu(temb));
    h = nd_add(h, nd_view(e, ND_SHAPE(x->shape[0], l->out_channels, 1, 1)));
    h = nd_group_norm_silu_forward(l->norm2, h);
    h = nd_conv2d_forward(l->conv2,
                          nd_dropout(h, l->dropout, l->base.training, rng ? rng : l->base.rng));
    nd_tensor *skip = l->nin_shortcut ? nd_conv2d_forward(l->nin_shortcut, x)
                                      : (nd_tensor *)x;
    return nd_add(skip, h);
}
