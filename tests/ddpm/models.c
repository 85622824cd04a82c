#include "models.h"

static void scale_destroy(nd_module *m) { nd_dealloc(m, sizeof(scale_model)); }

static nd_tensor *scale_forward(void *self, const nd_tensor *x, const nd_tensor *t,
                                const nd_tensor *y, nd_rng *r) {
    (void)y;
    (void)t;
    (void)r;
    return nd_mul(((scale_model *)self)->w, x);
}

scale_model *scale_model_new(float w) {
    scale_model *m = nd_alloc(sizeof *m);
    nd_module_init(&m->base, "Scale", scale_destroy);
    m->w = nd_module_param(&m->base, "w", nd_full(ND_SHAPE(1), w));
    return m;
}

nd_denoiser scale_model_denoiser(scale_model *m, nd_prediction predicts) {
    return (nd_denoiser){scale_forward, m, &m->base, predicts, NULL, 0};
}
