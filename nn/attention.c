/* Self-attention over the positions of a feature map, the DDPM UNet's
 * AttnBlock (Ho et al. 2020, appendix B; Vaswani et al. 2017, eq. 1):
 *   h = GroupNorm(x)                                   x [N, C, H, W]
 *   q, k, v = W_q h + b_q, ...   (1x1 convs)            [N, C, L], L = H W
 *   per head of d = C / heads channels:
 *     w = softmax_j(q_i . k_j / sqrt(d))                [N, heads, L, L]
 *     o_i = sum_j w_ij v_j                              [N, heads, d, L]
 *   out = x + W_o o + b_o
 * Built from matmul, softmax and views. The projections are 1x1 Conv2d
 * modules (weights [C, C, 1, 1]) so that the names and shapes match a
 * PyTorch port, applied as matrix products. The middle, from q, k, v to o,
 * is one function of the tape: its backward forms w again from q and k
 * instead of keeping it, since w is L times the size of a head's q (as
 * FlashAttention, Dao et al. 2022, does), and then runs the chain rule of
 * the two products and the softmax:
 *   dv = do w,   dw = do^T v,   ds = w (dw - rowsum(dw w)),
 *   dq = k ds^T / sqrt(d),   dk = q ds / sqrt(d)
 * with the scores s = q^T k / sqrt(d) formed as (q / sqrt(d))^T k. */
#include <math.h>

#include "nn.h"

/* w = softmax(qs^T k) for qs = q / sqrt(d) and k [..., d, L]: [..., L, L]
 * (the scale goes on q, d x L numbers, rather than on the L x L scores) */
static nd_tensor *attention_weights(const nd_tensor *qs, const nd_tensor *k) {
    return nd_softmax(nd_matmul(nd_transpose(qs, -2, -1), k), -1);
}

/* saved: qs, k, v; args: the scale */
static void attend_backward(const nd_function_ctx *ctx, const nd_tensor *dy,
                            nd_tensor **grads) {
    float scale = *(const float *)ctx->args;
    nd_tensor *qs = ctx->saved[0], *k = ctx->saved[1], *v = ctx->saved[2];
    nd_tensor *w = attention_weights(qs, k);
    grads[2] = nd_matmul(dy, w);
    nd_tensor *dw = nd_matmul(nd_transpose(dy, -2, -1), v);
    nd_tensor *ds = nd_softmax_backward(w, dw, -1); /* d loss / d (qs^T k) */
    grads[0] = nd_mul_scalar(nd_matmul(k, nd_transpose(ds, -2, -1)), scale);
    grads[1] = nd_matmul(qs, ds);
}

static const nd_function attend_fn = {.name = "attention", .backward = attend_backward};

/* o[:, i] = sum_j v[:, j] w[i, j] for q, k, v [..., d, L]: [d, L] @ [L, L]^T */
static nd_tensor *attend(const nd_tensor *q, const nd_tensor *k, const nd_tensor *v,
                         float scale) {
    nd_no_grad_begin(); /* one record for the whole of it, below */
    nd_scope *s = nd_scope_begin();
    nd_tensor *qs = nd_keep(nd_mul_scalar(q, scale));
    nd_tensor *o = nd_keep(nd_matmul(v, nd_transpose(attention_weights(qs, k), -2, -1)));
    nd_scope_end(s);
    nd_no_grad_end();
    const nd_tensor *in[3] = {q, k, v}, *saved[3] = {qs, k, v};
    nd_function_apply(&attend_fn, o, in, 3, saved, 3, &scale, sizeof scale);
    nd_free(qs); /* the record keeps it, if there is one */
    return o;
}

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
    nd_tensor *o = nd_reshape(attend(q, k, v, (float)(1.0 / sqrt((double)d))),
                              ND_SHAPE(n, c, len));
    nd_tensor *out = nd_view(project(l->proj_out, o), x->shape, x->ndim);
    return nd_add(x, out);
}
