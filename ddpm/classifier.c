/* A small image classifier, trained with nanodiff itself, whose
 * penultimate layer gives the features that score samples (the Frechet
 * distance of metrics.c, as FID uses Inception's pool features):
 *
 *   h = swish(GN(conv3x3(x)))                 [N, w, H, W]
 *   h = swish(GN(conv3x3, stride 2 (h)))      [N, 2w, H/2, W/2]
 *   h = swish(GN(conv3x3, stride 2 (h)))      [N, 4w, H/4, W/4]
 *   f = mean of h over positions              [N, 4w]       the features
 *   logits = fc(f)                            [N, classes]
 *
 * The features must tell classes apart (so the training makes them carry
 * what a person sees in the picture) and are averaged over positions (so
 * they say what is there rather than where). */
#include <string.h>

#include "ddpm.h"

#define GROUPS 8

struct nd_classifier {
    nd_module base;
    nd_classifier_config c;
    nd_conv2d_layer *conv[3];
    nd_group_norm_layer *norm[3];
    nd_linear_layer *fc;
};

static void destroy(nd_module *m) { nd_dealloc(m, sizeof(nd_classifier)); }

nd_classifier_config nd_classifier_defaults(int64_t in_channels, int64_t classes) {
    return (nd_classifier_config){.in_channels = in_channels, .classes = classes, .width = 32};
}

nd_classifier *nd_classifier_new(const nd_classifier_config *c, nd_rng *rng) {
    const char *op = "classifier_new";
    if (!c || !rng) nd_fatal(op, "config or rng is NULL");
    if (c->in_channels < 1 || c->classes < 2 || c->width < GROUPS || c->width % GROUPS)
        nd_fatal(op, "in_channels %lld (>= 1), classes %lld (>= 2), width %lld (a multiple of %d)",
                 (long long)c->in_channels, (long long)c->classes, (long long)c->width, GROUPS);
    nd_classifier *m = nd_alloc(sizeof *m);
    memset(m, 0, sizeof *m);
    nd_module_init(&m->base, "Classifier", destroy);
    m->c = *c;
    nd_conv2d_opts half = {
        .stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
    int64_t ch[4] = {c->in_channels, c->width, 2 * c->width, 4 * c->width};
    nd_module *blocks = nd_module_child(&m->base, "blocks", nd_module_new("ModuleList"));
    for (int k = 0; k < 3; k++) {
        nd_module *b = nd_module_child_at(blocks, k, nd_module_new("Block"));
        m->conv[k] = (nd_conv2d_layer *)nd_module_child(
            b, "conv",
            &nd_conv2d_new(ch[k], ch[k + 1], 3, 3, k ? half : nd_conv2d_same(3), true, rng)->base);
        m->norm[k] = (nd_group_norm_layer *)nd_module_child(
            b, "norm", &nd_group_norm_new(GROUPS, ch[k + 1], 1e-5f, true)->base);
    }
    m->fc = (nd_linear_layer *)nd_module_child(&m->base, "fc",
                                               &nd_linear_new(ch[3], c->classes, true, rng)->base);
    return m;
}

nd_module *nd_classifier_module(nd_classifier *m) { return m ? &m->base : NULL; }

const nd_classifier_config *nd_classifier_get_config(const nd_classifier *m) {
    return m ? &m->c : NULL;
}

int64_t nd_classifier_features_dim(const nd_classifier *m) { return m ? 4 * m->c.width : 0; }

nd_tensor *nd_classifier_features(nd_classifier *m, const nd_tensor *x) {
    if (!m) nd_fatal("classifier", "model is NULL");
    char sx[ND_SHAPE_STR_LEN];
    if (!x || x->ndim != 4 || x->shape[1] != m->c.in_channels || x->shape[2] < 4 || x->shape[3] < 4)
        nd_fatal("classifier", "model for x [N,%lld,H,W] (H, W >= 4) got x %s",
                 (long long)m->c.in_channels, x ? nd_shape_str(x->shape, x->ndim, sx) : "NULL");
    nd_tensor *h = (nd_tensor *)x;
    for (int k = 0; k < 3; k++)
        h = nd_silu(nd_group_norm_forward(m->norm[k], nd_conv2d_forward(m->conv[k], h)));
    const int positions[] = {2, 3};
    return nd_mean(h, positions, 2, false);
}

nd_tensor *nd_classifier_logits(nd_classifier *m, const nd_tensor *features) {
    if (!m) nd_fatal("classifier", "model is NULL");
    char sf[ND_SHAPE_STR_LEN];
    if (!features || features->ndim != 2 || features->shape[1] != 4 * m->c.width)
        nd_fatal("classifier", "logits from features [N,%lld] got %s", (long long)4 * m->c.width,
                 features ? nd_shape_str(features->shape, features->ndim, sf) : "NULL");
    return nd_linear_forward(m->fc, features);
}
