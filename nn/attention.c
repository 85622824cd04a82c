/* Self-attention over the positions of a feature map, the DDPM UNet's
 * AttnBlock (Ho et al. 2020, appendix B; Vaswani et al. 2017, eq. 1):
 *   h = GroupNorm(x)                                   x [N, C, H, W]
 *   q, k, v = W_q h + b_q, ...   (1x1 convs)            [N, C, L], L = H W
 *   per head of d = C / heads channels:
 *     w = softmax_j(q_i . k_j / sqrt(d))                [N, heads, L, L]
 *     o_i = sum_j w_ij v_j                              [N, heads, d, L]
 *   out = x + W_o o + b_o
 * Built from matmul, softmax and views, so the tape differentiates it. The
 * projections are 1x1 Conv2d modules (weights [C, C, 1, 1]) so that the
 * names and shapes match a PyTorch port, applied as matrix products. */
#include <math.h>

#include "nn.h"

static void destroy(nd_module *m) { nd_dealloc(m, sizeof(nd_attention_layer)); }

static nd_tensor *forward(nd_module *m, const nd_tensor *x) {
    return nd_attention_forward((nd_attention_layer *)m, x);
}

nd_attention_layer *nd_attention_new(int64_t channels, int64_t heads, int64_t groups,
                                     nd_rng *rng) {
    if (channels < 1 || heads < 1 || channels % heads != 0)
        nd_fatal("attention_new", "%lld heads do not divide %lld channels",
                 (long long)heads, (long long)channels);
    nd_attention_layer *l = nd_alloc(sizeof *l);
    nd_module_init(&l->base, "AttnBlock", destroy);
    l->base.forward = forward;
    l->channels = channels;
    l->heads = heads;
    l->norm = nd_group_norm_new(groups, channels, 1e-6f, true);
    nd_module_child(&l->base, "norm", &l->norm->base);
    nd_conv2d_layer **proj[4] = {&l->q, &l->k, &l->v, &l->proj_out};
    const char *names[4] = {"q", "k", "v", "proj_out"};
    for (int i = 0; i < 4; i++) {
        *proj[i] = nd_conv2d_new(channels, channels, 1, 1, nd_conv2d_same(1), true, rng);
        nd_module_child(&l->base, names[i], &(*proj[i])->base);
    }
    return l;
}

/* W h + b for a 1x1 conv over h [N, C, L]: [C, C] @ [N, C, L] + [C, 1] */
static nd_tensor *project(const nd_conv2d_layer *c, const nd_tensor *h) {
    int64_t ch = c->out_channels;
    nd_tensor *w = nd_view(c->weight, ND_SHAPE(ch, c->in_channels));
    return nd_add(nd_matmul(w, h), nd_view(c->bias, ND_SHAPE(ch, 1)));
}

nd_tensor *nd_attention_forward(nd_attention_layer *l, const nd_tensor *x) {
    if (!l) nd_fatal("attention", "layer is NULL");
    char s[ND_SHAPE_STR_LEN];
    if (!x || x->ndim != 4 || x->shape[1] != l->channels)
        nd_fatal("attention", "layer for %lld channels got input %s",
                 (long long)l->channels,
                 x ? nd_shape_str(x->shape, x->ndim, s) : "NULL");
    int64_t n = x->shape[0], c = l->channels, len = x->shape[2] * x->shape[3];
    int64_t heads = l->heads, d = c / heads;
    nd_tensor *h = nd_reshape(nd_group_norm_forward(l->norm, x), ND_SHAPE(n, c, len));
    nd_tensor *q = nd_view(project(l->q, h), ND_SHAPE(n, heads, d, len));
    nd_tensor *k = nd_view(project(l->k, h), ND_SHAPE(n, heads, d, len));
    nd_tensor *v = nd_view(project(l->v, h), ND_SHAPE(n, heads, d, len));
    /* scores[i, j] = q_i . k_j / sqrt(d): [L, d] @ [d, L] per head */
    nd_tensor *scores = nd_mul_scalar(nd_matmul(nd_transpose(q, 2, 3), k),
                                      (float)(1.0 / sqrt((double)d)));
    nd_tensor *w = nd_softmax(scores, -1);
    /* o[:, i] = sum_j v[:, j] w[i, j]: [d, L] @ [L, L]^T */
    nd_tensor *o = nd_reshape(nd_matmul(v, nd_transpose(w, 2, 3)), ND_SHAPE(n, c, len));
    nd_tensor *out = nd_view(project(l->proj_out, o), x->shape, x->ndim);
    return nd_add(x, out);
}
