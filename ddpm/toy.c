/* Two-dimensional data drawn on the fly, for diffusion on points: small
 * enough to train in seconds and to judge by eye. */
#include <math.h>

#include "ddpm.h"

/* Two interleaved half circles of radius 1 (centres (0, 0) and (1, 0.5)),
 * each point at a uniform angle, plus Gaussian noise, shifted so that the
 * set's centre is the origin. */
nd_tensor *nd_toy_two_moons(int64_t n, float noise, nd_rng *rng) {
    if (!rng) nd_fatal("toy_two_moons", "rng is NULL");
    if (n < 1 || !(noise >= 0.0f))
        nd_fatal("toy_two_moons", "%lld points with noise %g", (long long)n, noise);
    const double pi = 3.14159265358979323846;
    nd_tensor *u = nd_rand(rng, ND_SHAPE(n));
    nd_tensor *z = nd_randn(rng, ND_SHAPE(n, 2));
    nd_tensor *x = nd_empty(ND_SHAPE(n, 2));
    const float *a = nd_data(u), *e = nd_data(z);
    float *p = nd_data(x);
    for (int64_t k = 0; k < n; k++) {
        double th = pi * a[k];
        bool upper = k % 2 == 0;
        double px = upper ? cos(th) : 1.0 - cos(th);
        double py = upper ? sin(th) : 0.5 - sin(th);
        p[2 * k] = (float)(px - 0.5 + noise * e[2 * k]);
        p[2 * k + 1] = (float)(py - 0.25 + noise * e[2 * k + 1]);
    }
    nd_free(u);
    nd_free(z);
    return x;
}
