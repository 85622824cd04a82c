/* Data drawn on the fly, for diffusion with no download: five sets of 2-D
 * points, small enough to train in seconds and to judge by eye, and a set
 * of 32x32 images of simple shapes. Every draw comes from the caller's
 * rng, so a seed fixes the data. */
#include <math.h>
#include <string.h>

#include "ddpm.h"

#define PI 3.14159265358979323846

/* Float arithmetic (the noise terms, the integer picks below) is done in
 * statements of its own, which round it to float: where float expressions
 * are evaluated wider (s390x), noise * e inside a double sum would stay
 * exact, and the points would differ in their last bits from every other
 * target's. */

/* u [n, k] uniform and z [n, k] normal from rng, as raw arrays */
typedef struct {
    nd_tensor *u, *z;
} draws;

static draws draw(nd_rng *rng, int64_t n, int64_t k, const char *op) {
    if (!rng) nd_fatal(op, "rng is NULL");
    if (n < 1) nd_fatal(op, "%lld points asked for", (long long)n);
    return (draws){nd_rand(rng, ND_SHAPE(n, k)), nd_randn(rng, ND_SHAPE(n, k))};
}

static void done(draws d) {
    nd_free(d.u);
    nd_free(d.z);
}

static void check_noise(float noise, const char *op) {
    if (!(noise >= 0.0f && noise < 1e3f)) nd_fatal(op, "noise %g is not a number >= 0", noise);
}

/* Two interleaved half circles of radius 1 (centres (0, 0) and (1, 0.5)),
 * alternate points on each, at uniform angles, plus Gaussian noise,
 * shifted so that the set's centre is the origin. */
nd_tensor *nd_toy_two_moons(int64_t n, float noise, nd_rng *rng) {
    check_noise(noise, "toy_two_moons");
    draws d = draw(rng, n, 2, "toy_two_moons");
    nd_tensor *x = nd_empty(ND_SHAPE(n, 2));
    const float *u = nd_data(d.u), *e = nd_data(d.z);
    float *p = nd_data(x);
    for (int64_t k = 0; k < n; k++) {
        double th = PI * u[2 * k];
        bool upper = k % 2 == 0;
        double px = upper ? cos(th) : 1.0 - cos(th);
        double py = upper ? sin(th) : 0.5 - sin(th);
        float nx = noise * e[2 * k], ny = noise * e[2 * k + 1];
        p[2 * k] = (float)(px - 0.5 + nx);
        p[2 * k + 1] = (float)(py - 0.25 + ny);
    }
    done(d);
    return x;
}

/* Point k from the Gaussian of centre k mod 8, at angle 2 pi c / 8 on the
 * unit circle, with standard deviation `noise` per coordinate. */
nd_tensor *nd_toy_ring(int64_t n, float noise, nd_rng *rng) {
    check_noise(noise, "toy_ring");
    draws d = draw(rng, n, 2, "toy_ring");
    nd_tensor *x = nd_empty(ND_SHAPE(n, 2));
    const float *e = nd_data(d.z);
    float *p = nd_data(x);
    for (int64_t k = 0; k < n; k++) {
        double a = 2.0 * PI * (double)(k % 8) / 8.0;
        float nx = noise * e[2 * k], ny = noise * e[2 * k + 1];
        p[2 * k] = (float)(cos(a) + nx);
        p[2 * k + 1] = (float)(sin(a) + ny);
    }
    done(d);
    return x;
}

/* Uniform over the dark cells of a 4 x 4 board on [-1.5, 1.5]^2: cell
 * (i, j), 0.75 wide, is dark when i + j is even. The point's column is
 * uniform over the board and its row uniform over that column's two dark
 * cells. */
nd_tensor *nd_toy_checkerboard(int64_t n, nd_rng *rng) {
    draws d = draw(rng, n, 3, "toy_checkerboard");
    nd_tensor *x = nd_empty(ND_SHAPE(n, 2));
    const float *u = nd_data(d.u);
    float *p = nd_data(x);
    for (int64_t k = 0; k < n; k++) {
        double gx = 4.0 * u[3 * k]; /* in cells, [0, 4) */
        int i = (int)gx, pick = u[3 * k + 1] < 0.5f;
        int j = 2 * pick + (i % 2); /* rows of the same parity as i */
        float row = (float)j + u[3 * k + 2]; /* a float sum, as on every target */
        double gy = row;
        p[2 * k] = (float)(gx * 0.75 - 1.5);
        p[2 * k + 1] = (float)(gy * 0.75 - 1.5);
    }
    done(d);
    return x;
}

/* Five arms that curl outwards (the pinwheel of Johnson et al. 2016): a
 * radius r = 1 + 0.3 z_1 and a tangential offset 0.1 z_2, rotated by the
 * arm's angle plus 0.25 e^r, so that points further out turn further;
 * scaled by 0.6 to lie within about [-1.5, 1.5]. */
nd_tensor *nd_toy_pinwheel(int64_t n, nd_rng *rng) {
    draws d = draw(rng, n, 2, "toy_pinwheel");
    nd_tensor *x = nd_empty(ND_SHAPE(n, 2));
    const float *e = nd_data(d.z);
    float *p = nd_data(x);
    for (int64_t k = 0; k < n; k++) {
        double r = 1.0 + 0.3 * e[2 * k], s = 0.1 * e[2 * k + 1];
        double a = 2.0 * PI * (double)(k % 5) / 5.0 + 0.25 * exp(r);
        p[2 * k] = (float)(0.6 * (r * cos(a) - s * sin(a)));
        p[2 * k + 1] = (float)(0.6 * (r * sin(a) + s * cos(a)));
    }
    done(d);
    return x;
}

/* The swiss roll in the plane: s = 1.5 pi (1 + 2 u), (s cos s, s sin s)
 * scaled by 1/10, plus Gaussian noise. */
nd_tensor *nd_toy_swiss_roll(int64_t n, float noise, nd_rng *rng) {
    check_noise(noise, "toy_swiss_roll");
    draws d = draw(rng, n, 2, "toy_swiss_roll");
    nd_tensor *x = nd_empty(ND_SHAPE(n, 2));
    const float *u = nd_data(d.u), *e = nd_data(d.z);
    float *p = nd_data(x);
    for (int64_t k = 0; k < n; k++) {
        double s = 1.5 * PI * (1.0 + 2.0 * u[2 * k]);
        float nx = noise * e[2 * k], ny = noise * e[2 * k + 1];
        p[2 * k] = (float)(s * cos(s) / 10.0 + nx);
        p[2 * k + 1] = (float)(s * sin(s) / 10.0 + ny);
    }
    done(d);
    return x;
}

static const char *const toy_names[] = {"moons", "ring", "checkerboard", "pinwheel", "swissroll"};

int nd_toy_points(const char *name, int64_t n, nd_rng *rng, nd_tensor **out, nd_error *err) {
    if (out) *out = NULL;
    if (!name || !out) return nd_error_set(err, "toy data: no name or no output");
    if (n < 1) return nd_error_set(err, "toy data: %lld points, need at least 1", (long long)n);
    if (!strcmp(name, "moons")) *out = nd_toy_two_moons(n, 0.05f, rng);
    else if (!strcmp(name, "ring")) *out = nd_toy_ring(n, 0.05f, rng);
    else if (!strcmp(name, "checkerboard")) *out = nd_toy_checkerboard(n, rng);
    else if (!strcmp(name, "pinwheel")) *out = nd_toy_pinwheel(n, rng);
    else if (!strcmp(name, "swissroll")) *out = nd_toy_swiss_roll(n, 0.03f, rng);
    else
        return nd_error_set(err, "toy data: no set named '%s' (moons, ring, checkerboard, "
                            "pinwheel, swissroll)", name);
    return ND_OK;
}

const char *nd_toy_name(int index) {
    return index >= 0 && index < (int)(sizeof toy_names / sizeof *toy_names) ? toy_names[index]
                                                                              : NULL;
}

/* Images [n, 1, size, size] in {-1, 1} (background -1): one white shape
 * each, its class in labels[k]: 0 a disc, 1 an axis-aligned square, 2 a
 * bar (horizontal or vertical, 4 to 6 times as long as it is thick), at a
 * random size and place, whole inside the frame. */
nd_tensor *nd_toy_shapes(int64_t n, int64_t size, nd_rng *rng, nd_tensor **labels) {
    const char *op = "toy_shapes";
    if (size < 8 || size > 4096) nd_fatal(op, "size %lld is not in 8..4096", (long long)size);
    draws d = draw(rng, n, 6, op);
    nd_tensor *x = nd_full(ND_SHAPE(n, 1, size, size), -1.0f);
    nd_tensor *lab = nd_empty(ND_SHAPE(n));
    const float *u = nd_data(d.u);
    for (int64_t k = 0; k < n; k++) {
        const float *v = u + 6 * k;
        float *img = nd_data(x) + k * size * size;
        float pick = v[0] * 3.0f;
        int cls = (int)pick;
        cls = cls > 2 ? 2 : cls;
        nd_data(lab)[k] = (float)cls;
        /* the shape's box, w x h, from a side of size/4 .. size/2 */
        float grow = v[1] * (float)(size / 4 + 1);
        int64_t side = size / 4 + (int64_t)grow;
        side = side > size / 2 ? size / 2 : side;
        int64_t w = side, h = side;
        if (cls == 2) {
            int64_t thick = side / 5 > 1 ? side / 5 : 2;
            float longer = v[2] * 3.0f;
            int64_t len = thick * (4 + (int64_t)longer);
            len = len > size - 2 ? size - 2 : len;
            bool vertical = v[3] < 0.5f;
            w = vertical ? thick : len;
            h = vertical ? len : thick;
        }
        float fx = v[4] * (float)(size - w + 1), fy = v[5] * (float)(size - h + 1);
        int64_t x0 = (int64_t)fx, y0 = (int64_t)fy;
        x0 = x0 > size - w ? size - w : x0;
        y0 = y0 > size - h ? size - h : y0;
        double c = ((double)side - 1.0) / 2.0, r2 = (double)side * side / 4.0;
        for (int64_t i = 0; i < h; i++)
            for (int64_t j = 0; j < w; j++) {
                bool in = true;
                if (cls == 0) { /* pixel centres within the inscribed circle */
                    double dy = (double)i - c, dx = (double)j - c;
                    in = dx * dx + dy * dy <= r2;
                }
                if (in) img[(y0 + i) * size + x0 + j] = 1.0f;
            }
    }
    done(d);
    if (labels)
        *labels = lab;
    else
        nd_free(lab);
    return x;
}
