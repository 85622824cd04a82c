/* A denoiser for points in a few dimensions (the 2-D toy sets): a residual
 * MLP over sinusoidal embeddings of the coordinates and of the step.
 *
 *   e = concat(sinusoid(s x_1), ..., sinusoid(s x_D), sinusoid(t))   [N, (D+1) emb]
 *   h = in(e)                                                        [N, width]
 *   h = h + fc2_k(swish(fc1_k(swish(h))))      k = 0 .. depth-1
 *   eps = out(swish(h))                                              [N, D]
 *
 * Raw coordinates vary on a scale of 1 while the step runs to 1000; the
 * embeddings with the scale s put both on the same footing, which a
 * plain MLP on (x, t) learns far more slowly (Tancik et al. 2020). */
#include <string.h>

#include "ddpm.h"

#define MAX_DEPTH 64
#define MAX_DIM 63

struct nd_mlp {
    nd_module base;
    nd_mlp_config c;
    nd_linear_layer *in, *out;
    nd_linear_layer *fc1[MAX_DEPTH], *fc2[MAX_DEPTH];
};

static void destroy(nd_module *m) { nd_dealloc(m, sizeof(nd_mlp)); }

nd_mlp_config nd_mlp_defaults(int64_t dim) {
    return (nd_mlp_config){.dim = dim, .width = 128, .depth = 3, .emb = 32,
                           .input_scale = 25.0f};
}

nd_mlp *nd_mlp_new(const nd_mlp_config *c, nd_rng *rng) {
    const char *op = "mlp_new";
    if (!c || !rng) nd_fatal(op, "config or rng is NULL");
    if (c->dim < 1 || c->dim > MAX_DIM || c->width < 1 || c->depth < 0 || c->depth > MAX_DEPTH || c->emb < 4 ||
        c->emb % 2 || !(c->input_scale > 0.0f))
        nd_fatal(op, "dim %lld (1..%d), width %lld, depth %lld (0..%d), emb %lld (even, >= 4), "
                 "input_scale %g (> 0)", (long long)c->dim, MAX_DIM, (long long)c->width,
                 (long long)c->depth, MAX_DEPTH, (long long)c->emb, c->input_scale);
    nd_mlp *m = nd_alloc(sizeof *m);
    memset(m, 0, sizeof *m);
    nd_module_init(&m->base, "MLP", destroy);
    m->c = *c;
    nd_module *b = &m->base;
    m->in = (nd_linear_layer *)nd_module_child(
        b, "in", &nd_linear_new((c->dim + 1) * c->emb, c->width, true, rng)->base);
    nd_module *blocks = nd_module_child(b, "blocks", nd_module_new("ModuleList"));
    for (int k = 0; k < c->depth; k++) {
        nd_module *blk = nd_module_child_at(blocks, k, nd_module_new("Block"));
        m->fc1[k] = (nd_linear_layer *)nd_module_child(
            blk, "fc1", &nd_linear_new(c->width, c->width, true, rng)->base);
        m->fc2[k] = (nd_linear_layer *)nd_module_child(
            blk, "fc2", &nd_linear_new(c->width, c->width, true, rng)->base);
    }
    m->out = (nd_linear_layer *)nd_module_child(
        b, "out", &nd_linear_new(c->width, c->dim, true, rng)->base);
    /* the network starts at eps = 0, as the UNet does */
    nd_fill_(m->out->weight, 0.0f);
    nd_fill_(m->out->bias, 0.0f);
    return m;
}

nd_module *nd_mlp_module(nd_mlp *m) { return m ? &m->base : NULL; }

nd_tensor *nd_mlp_forward(nd_mlp *m, const nd_tensor *x, const nd_tensor *t) {
    if (!m) nd_fatal("mlp", "model is NULL");
    const nd_mlp_config *c = &m->c;
    char sx[ND_SHAPE_STR_LEN], st[ND_SHAPE_STR_LEN];
    if (!x || !t || x->ndim != 2 || x->shape[1] != c->dim || t->ndim != 1 ||
        t->shape[0] != x->shape[0])
        nd_fatal("mlp", "model for x [N,%lld] and t [N] got x %s and t %s",
                 (long long)c->dim, x ? nd_shape_str(x->shape, x->ndim, sx) : "NULL",
                 t ? nd_shape_str(t->shape, t->ndim, st) : "NULL");
    int64_t n = x->shape[0];
    nd_tensor *parts[MAX_DIM + 1];
    nd_tensor *scaled = nd_mul_scalar(nd_detach(x), c->input_scale);
    for (int64_t d = 0; d < c->dim; d++)
        parts[d] = nd_timestep_embedding(
            nd_reshape(nd_slice(scaled, 1, d, d + 1, 1), ND_SHAPE(n)), c->emb);
    parts[c->dim] = nd_timestep_embedding(t, c->emb);
    nd_tensor *h = nd_linear_forward(m->in, nd_concat((const nd_tensor *const *)parts,
                                                      (int)c->dim + 1, 1));
    for (int k = 0; k < c->depth; k++)
        h = nd_add(h, nd_linear_forward(m->fc2[k],
                                        nd_silu(nd_linear_forward(m->fc1[k], nd_silu(h)))));
    return nd_linear_forward(m->out, nd_silu(h));
}

static nd_tensor *mlp_denoise(void *self, const nd_tensor *x_t, const nd_tensor *t,
                              const nd_tensor *labels, nd_rng *rng) {
    (void)rng; /* no dropout */
    if (labels) nd_fatal("mlp", "the MLP takes no class labels");
    return nd_mlp_forward(self, x_t, t);
}

nd_denoiser nd_mlp_denoiser(nd_mlp *m) {
    if (!m) nd_fatal("mlp_denoiser", "model is NULL");
    return (nd_denoiser){.forward = mlp_denoise, .self = m, .module = &m->base};
}
