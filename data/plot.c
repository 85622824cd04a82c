/* Figures as PNG: a scatter plot of 2-D points, for diffusion on points,
 * where people would rather look than read. Drawn into an RGB buffer and
 * written with nd_png_write. */
#include <math.h>
#include <string.h>

#include "data.h"

static void dot(uint8_t *rgb, int size, int px, int py, const uint8_t color[3]) {
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            int x = px + dx, y = py + dy;
            if (x < 0 || y < 0 || x >= size || y >= size) continue;
            memcpy(rgb + 3 * ((size_t)y * (size_t)size + (size_t)x), color, 3);
        }
}

/* (x, y) -> pixel column and row, y upwards; false outside the frame */
static bool place(double x, double y, int size, double lo, double hi, int *px, int *py) {
    double fx = (x - lo) / (hi - lo), fy = (hi - y) / (hi - lo);
    if (!(fx >= 0.0 && fx < 1.0 && fy >= 0.0 && fy < 1.0)) return false;
    *px = (int)(fx * (size - 1));
    *py = (int)(fy * (size - 1));
    return true;
}

static void check_points(const nd_tensor *p, const char *what) {
    char s[ND_SHAPE_STR_LEN];
    if (p && (p->ndim != 2 || p->shape[1] != 2))
        nd_fatal("png_scatter", "%s %s are not points [N, 2]", what,
                 nd_shape_str(p->shape, p->ndim, s));
}

int nd_png_scatter(const char *path, const nd_tensor *under, const nd_tensor *over, int size,
                   double lo, double hi, nd_error *err) {
    if (!path) nd_fatal("png_scatter", "path is NULL");
    if (size < 16 || size > 8192) nd_fatal("png_scatter", "size %d is not in 16..8192", size);
    if (!(isfinite(lo) && isfinite(hi) && lo < hi))
        nd_fatal("png_scatter", "bounds [%g, %g] are not an interval", lo, hi);
    check_points(under, "under");
    check_points(over, "over");
    static const uint8_t gray[3] = {170, 170, 170}, red[3] = {200, 30, 30},
                         frame[3] = {90, 90, 90};
    size_t bytes = 3 * (size_t)size * (size_t)size;
    uint8_t *rgb = nd_alloc(bytes);
    memset(rgb, 255, bytes);
    for (int k = 0; k < size; k++) { /* the frame, and the axes through 0 */
        int zx, zy;
        for (int e = 0; e < 4; e++) {
            int x = e == 0 ? k : e == 1 ? k : e == 2 ? 0 : size - 1;
            int y = e == 0 ? 0 : e == 1 ? size - 1 : k;
            memcpy(rgb + 3 * ((size_t)y * (size_t)size + (size_t)x), frame, 3);
        }
        if (place(0.0, 0.0, size, lo, hi, &zx, &zy)) {
            uint8_t *h = rgb + 3 * ((size_t)zy * (size_t)size + (size_t)k);
            uint8_t *v = rgb + 3 * ((size_t)k * (size_t)size + (size_t)zx);
            h[0] = h[1] = h[2] = v[0] = v[1] = v[2] = 225;
        }
    }
    const nd_tensor *sets[2] = {under, over};
    for (int s = 0; s < 2; s++) {
        if (!sets[s]) continue;
        for (int64_t k = 0; k < sets[s]->shape[0]; k++) {
            int64_t i0[2] = {k, 0}, i1[2] = {k, 1};
            int px, py;
            if (place(nd_get(sets[s], i0), nd_get(sets[s], i1), size, lo, hi, &px, &py))
                dot(rgb, size, px, py, s ? red : gray);
        }
    }
    int rc = nd_png_write(path, rgb, size, size, 3, err);
    nd_dealloc(rgb, bytes);
    return rc;
}
