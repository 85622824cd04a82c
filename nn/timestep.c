/* The sinusoidal timestep embedding of the DDPM UNet (Ho et al. 2020,
 * appendix B, after Vaswani et al. 2017, section 3.5):
 *   half = dim / 2,  f_i = exp(-i ln(10000) / (half - 1)),  i < half
 *   emb[n] = concat(sin(t_n f), cos(t_n f))
 * The frequencies and the products t f are rounded to float32 as the
 * reference implementation computes them; that rounding moves sin(t f) by
 * up to ~1e-4 for t near 1000, more than sin's own error. */
#include <math.h>

#include "nn.h"

nd_tensor *nd_timestep_embedding(const nd_tensor *t, int64_t dim) {
    char s[ND_SHAPE_STR_LEN];
    if (!t) nd_fatal("timestep_embedding", "timesteps are NULL");
    if (t->ndim != 1)
        nd_fatal("timestep_embedding", "timesteps %s are not 1-d [N]",
                 nd_shape_str(t->shape, t->ndim, s));
    if (dim < 4) nd_fatal("timestep_embedding", "dim %lld is below 4", (long long)dim);
    int64_t n = t->shape[0], half = dim / 2;
    nd_tensor *emb = nd_zeros(ND_SHAPE(n, dim));
    float *e = nd_data(emb);
    float step = (float)(log(10000.0) / (double)(half - 1));
    for (int64_t r = 0; r < n; r++) {
        float tr = nd_get(t, &r);
        for (int64_t i = 0; i < half; i++) {
            /* each product rounded to float by its cast, also where the
             * compiler evaluates float arithmetic wider (FLT_EVAL_METHOD
             * 1 or 2: s390x, i686's x87) */
            float f = (float)exp((double)(float)(-(float)i * step));
            double arg = (double)(float)(tr * f);
            e[r * dim + i] = (float)sin(arg);
            e[r * dim + half + i] = (float)cos(arg);
        }
    }
    return emb;
}
