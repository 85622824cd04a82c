/* Embedding: a learned vector per id, y[n] = weight[ids[n]], as PyTorch's
 * nn.Embedding (and its N(0, 1) start). The lookup is index_select, whose
 * gradient adds dy's rows back into the rows of the ids that were read:
 *   dweight[i] = sum over n with ids[n] = i of dy[n]. */
#include "nn.h"

static void destroy(nd_module *m) { nd_dealloc(m, sizeof(nd_embedding_layer)); }

static nd_tensor *forward(nd_module *m, const nd_tensor *ids) {
    return nd_embedding_forward((nd_embedding_layer *)m, ids);
}

nd_embedding_layer *nd_embedding_new(int64_t num_embeddings, int64_t dim, nd_rng *rng) {
    if (num_embeddings < 1 || dim < 1)
        nd_fatal("embedding_new", "sizes must be positive, got %lld ids of %lld",
                 (long long)num_embeddings, (long long)dim);
    if (!rng) nd_fatal("embedding_new", "rng is NULL");
    nd_embedding_layer *l = nd_alloc(sizeof *l);
    nd_module_init(&l->base, "Embedding", destroy);
    l->base.forward = forward;
    l->num_embeddings = num_embeddings;
    l->dim = dim;
    l->weight = nd_module_param(&l->base, "weight", nd_randn(rng, ND_SHAPE(num_embeddings, dim)));
    return l;
}

nd_tensor *nd_embedding_forward(nd_embedding_layer *l, const nd_tensor *ids) {
    if (!l) nd_fatal("embedding", "layer is NULL");
    char s[ND_SHAPE_STR_LEN];
    if (!ids || ids->ndim != 1)
        nd_fatal("embedding", "ids %s must be [N]",
                 ids ? nd_shape_str(ids->shape, ids->ndim, s) : "NULL");
    return nd_index_select(l->weight, 0, ids);
}
