/* Figures as PNG: a scatter plot of 2-D points, for diffusion on points,
 * and line plots (loss curves, a term per timestep, rate against
 * distortion), where people would rather look than read. Drawn into an
 * RGB buffer and written with nd_png_write. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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

/* ---- line plots -------------------------------------------------------- */

static const uint8_t white[3] = {255, 255, 255}, black[3] = {0, 0, 0},
                     grid[3] = {220, 220, 220}, minor_grid[3] = {240, 240, 240},
                     legend_edge[3] = {150, 150, 150};

#define MAX_TICKS 256
#define MAX_LEVELS 64 /* coarser and coarser ticks tried before giving up */
#define TOL 1e-9      /* on tick positions, in steps or decades */

/* An RGB image and the rectangle drawing is clipped to (inclusive). */
typedef struct canvas {
    uint8_t *rgb;
    int w, h;
    int x0, y0, x1, y1;
} canvas;

static void put(const canvas *c, int x, int y, const uint8_t color[3]) {
    if (x < c->x0 || x > c->x1 || y < c->y0 || y > c->y1) return;
    memcpy(c->rgb + 3 * ((size_t)y * (size_t)c->w + (size_t)x), color, 3);
}

static void fill(const canvas *c, int x0, int y0, int x1, int y1, const uint8_t color[3]) {
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) put(c, x, y, color);
}

/* Bresenham's line from (x0, y0) to (x1, y1), both ends drawn; thick adds
 * the pixel below (mostly horizontal lines) or to the right (steep ones). */
static void line(const canvas *c, int x0, int y0, int x1, int y1, const uint8_t color[3],
                 bool thick) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int e = dx + dy;
    bool steep = -dy > dx;
    for (;;) {
        put(c, x0, y0, color);
        if (thick) put(c, x0 + steep, y0 + !steep, color);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * e;
        if (e2 >= dy) {
            e += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            e += dx;
            y0 += sy;
        }
    }
}

/* Liang and Barsky: the part of the segment inside [x0, x1] x [y0, y1],
 * false when there is none. */
static bool clip(double *ax, double *ay, double *bx, double *by, double x0, double y0,
                 double x1, double y1) {
    double dx = *bx - *ax, dy = *by - *ay, t0 = 0.0, t1 = 1.0;
    const double p[4] = {-dx, dx, -dy, dy}, q[4] = {*ax - x0, x1 - *ax, *ay - y0, y1 - *ay};
    for (int k = 0; k < 4; k++) {
        if (p[k] == 0.0) {
            if (q[k] < 0.0) return false;
            continue;
        }
        double r = q[k] / p[k];
        if (p[k] < 0.0) {
            if (r > t1) return false;
            if (r > t0) t0 = r;
        } else {
            if (r < t0) return false;
            if (r < t1) t1 = r;
        }
    }
    double sx = *ax, sy = *ay; /* ends inside stay exactly as they were */
    if (t0 > 0.0) {
        *ax = sx + t0 * dx;
        *ay = sy + t0 * dy;
    }
    if (t1 < 1.0) {
        *bx = sx + t1 * dx;
        *by = sy + t1 * dy;
    }
    return true;
}

/* Pixel coordinates to pixels: halves go right, and up (to the lower row).
 * Anything far outside the image (a tick of a collapsed axis) stays far
 * outside, as an int. */
static double bounded(double v) { return v > -1e9 ? (v < 1e9 ? v : 1e9) : -1e9; }
static int nearest(double v) { return (int)floor(bounded(v) + 0.5); }
static int nearest_row(double v) { return (int)ceil(bounded(v) - 0.5); }

/* ---- axes: ranges, ticks and their labels ---- */

typedef struct tick {
    double at;     /* in axis units: the value, or its log10 on a log axis */
    char text[24]; /* the label; "" for a minor tick */
} tick;

typedef struct axis {
    bool log;
    double lo, hi; /* the range, in axis units */
    double p0, p1; /* the pixels (columns or rows) where lo and hi land */
    int nticks;
    tick ticks[MAX_TICKS];
} axis;

static double to_pixel(const axis *a, double u) {
    return a->p0 + (u - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0);
}

/* Whether v can be drawn on the axis: finite, and positive on a log axis. */
static bool usable(double v, bool log) { return isfinite(v) && (!log || v > 0.0); }

static double axis_units(double v, bool log) { return log ? log10(v) : v; }

/* printf's exponent form made short: "1e+06" -> "1e6", "2.50e-05" ->
 * "2.5e-5". */
static void short_exponent(char *s, size_t n) {
    char *e = strchr(s, 'e');
    if (!e) return;
    int exponent = atoi(e + 1);
    char *end = e;
    if (memchr(s, '.', (size_t)(e - s))) {
        while (end[-1] == '0') end--;
        if (end[-1] == '.') end--;
    }
    snprintf(end, n - (size_t)(end - s), "e%d", exponent);
}

/* The label of linear tick t for ticks step apart, the largest of them
 * maxabs in magnitude: as many decimals as the step needs, or the
 * exponent form for very small steps and large values. */
static void linear_label(double t, double step, double maxabs, char *buf, size_t n) {
    int es = (int)floor(log10(step) + TOL);
    if (t == 0.0) snprintf(buf, n, "0");
    else if (step >= 1e-4 && maxabs < 1e6) snprintf(buf, n, "%.*f", es < 0 ? -es : 0, t);
    else {
        int digits = (int)floor(log10(maxabs) + TOL) - es;
        snprintf(buf, n, "%.*e", digits < 0 ? 0 : digits > 12 ? 12 : digits, t);
        short_exponent(buf, n);
    }
}

static void add_tick(axis *a, double at, const char *text) {
    if (a->nticks == MAX_TICKS) return;
    tick *t = &a->ticks[a->nticks++];
    t->at = at;
    snprintf(t->text, sizeof t->text, "%s", text);
}

/* 1, 2, 5 x 10^k: the smallest at least v, and the next one up. */
static double nice_at_least(double v) {
    double p = pow(10.0, floor(log10(v))), m = v / p; /* v in [1e-260, 1e300] */
    return (m <= 1.0 + TOL ? 1.0 : m <= 2.0 + TOL ? 2.0 : m <= 5.0 + TOL ? 5.0 : 10.0) * p;
}
static double nice_next(double step) { return nice_at_least(step * 1.5); }

/* Level 0 of a linear axis: ticks step apart, the range rounded out to
 * them unless fixed. */
static void linear_ticks(axis *a, double dlo, double dhi, bool fixed, double step) {
    a->lo = fixed ? dlo : floor(dlo / step + TOL) * step;
    a->hi = fixed ? dhi : ceil(dhi / step - TOL) * step;
    if (a->hi <= a->lo) a->hi = a->lo + step; /* data within TOL of one tick */
    double k0 = ceil(a->lo / step - TOL), k1 = floor(a->hi / step + TOL), span = k1 - k0 + 1;
    int count = span > MAX_TICKS ? MAX_TICKS : span >= 1.0 ? (int)span : 0;
    double maxabs = fmax(fabs(k0 * step), fabs(k1 * step));
    a->nticks = 0;
    for (int j = 0; j < count; j++) {
        double t = (k0 + j) * step;
        if (fabs(t) < step * 1e-6) t = 0.0; /* not 1e-17, nor -0 */
        char text[24];
        linear_label(t, step, maxabs, text, sizeof text);
        add_tick(a, t, text);
    }
}

/* A log axis at level 0: 1, 2 and 5 of each decade labelled; level 1:
 * every decade; then every 2nd, 5th, 10th, 20th... The other decades,
 * and 2..9 when decades are wide enough, are minor ticks. */
static void log_ticks(axis *a, double dlo, double dhi, bool fixed, int level, double length,
                      int scale) {
    a->lo = fixed ? dlo : floor(dlo + TOL);
    a->hi = fixed ? dhi : ceil(dhi - TOL);
    if (!fixed && a->hi - a->lo < 1.0) { /* one power of ten: a decade either side */
        a->lo -= 1.0;
        a->hi += 1.0;
    }
    double decades = a->hi - a->lo, every = 1.0;
    for (int l = 2; l <= level; l++) every = nice_next(every);
    bool minors = length / decades >= 60.0 * scale && decades <= 20.0;
    a->nticks = 0;
    double e0 = ceil(a->lo - TOL) - 1.0, e1 = floor(a->hi + TOL);
    if (e1 - e0 > 1000.0) e0 = e1 - 1000.0; /* beyond the double range anyway */
    for (double e = e0; e <= e1; e++)
        for (int m = 1; m <= 9; m++) {
            double u = e + log10((double)m);
            if (u < a->lo - TOL || u > a->hi + TOL) continue;
            bool labelled = level == 0 ? m == 1 || m == 2 || m == 5
                                       : m == 1 && fmod(fabs(e), every) == 0.0;
            if (!labelled && !(minors || (m == 1 && decades <= 200.0))) continue;
            char text[24] = "";
            if (labelled) {
                snprintf(text, sizeof text, "%g", m * pow(10.0, e));
                short_exponent(text, sizeof text);
            }
            add_tick(a, u, text);
        }
}

/* Whether the labels of a are too close: 0 no; 1 more intervals than
 * most; 2 neighbours nearer than their text needs. */
static int crowded(const axis *a, int most, bool horizontal, int scale) {
    int labelled = 0;
    const tick *prev = NULL;
    for (int i = 0; i < a->nticks; i++) {
        const tick *t = &a->ticks[i];
        if (!t->text[0]) continue;
        labelled++;
        if (prev) {
            double gap = fabs(to_pixel(a, t->at) - to_pixel(a, prev->at));
            double need = horizontal ? (nd__text_width(t->text, scale) +
                                        nd__text_width(prev->text, scale)) / 2.0 +
                                           2 * ND__GLYPH_ADVANCE * scale
                                     : (ND__GLYPH_H + 4) * scale;
            if (gap < need) return 2;
        }
        prev = t;
    }
    return labelled - 1 > most;
}

/* Ticks and (unless fixed) the range of an axis over pixels p0..p1 for
 * data in [dlo, dhi] (axis units, dlo < dhi): the finest ticks that are
 * not crowded. */
static void make_axis(axis *a, double dlo, double dhi, bool fixed, double p0, double p1,
                      bool horizontal, int scale) {
    a->p0 = p0;
    a->p1 = p1;
    double length = fabs(p1 - p0);
    int most = (int)(length / ((horizontal ? 70 : 40) * scale));
    most = most < 1 ? 1 : most > 50 ? 50 : most;
    double step = nice_at_least((dhi - dlo) / most);
    int level = a->log && (dhi - dlo) * 3.0 > most ? 1 : 0;
    for (int tries = 0; tries < MAX_LEVELS; tries++, level++, step = nice_next(step)) {
        if (a->log) log_ticks(a, dlo, dhi, fixed, level, length, scale);
        else linear_ticks(a, dlo, dhi, fixed, step);
        int c = crowded(a, most, horizontal, scale);
        if (!c) break;
        /* A step past the data's span would only widen the range and
         * squeeze the data: stop there, with one label if they overlap. */
        if (!a->log && !fixed && step >= dhi - dlo) {
            for (int i = 1; c == 2 && i < a->nticks; i++) a->ticks[i].text[0] = 0;
            break;
        }
    }
}

/* The range of the data on one axis: the axis units of the usable values
 * of every series on it (x when want_x), taking only points whose other
 * coordinate is usable too and, when inside, whose x is in [xlo, xhi].
 * False when there is no such point. */
static bool data_range(const nd_plot *plot, const nd_plot_series *series, int nseries,
                       bool want_x, bool inside, double xlo, double xhi, double *lo,
                       double *hi) {
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int s = 0; s < nseries; s++)
        for (int64_t i = 0; i < series[s].n; i++) {
            double x = series[s].x ? series[s].x[i] : (double)i, y = series[s].y[i];
            if (!usable(x, plot->logx) || !usable(y, plot->logy)) continue;
            double ux = axis_units(x, plot->logx);
            if (inside && (ux < xlo || ux > xhi)) continue;
            double u = want_x ? ux : axis_units(y, plot->logy);
            *lo = fmin(*lo, u);
            *hi = fmax(*hi, u);
        }
    return *lo <= *hi;
}

/* A range fixed by the caller: {0, 0} is none; else lo < hi, finite, and
 * positive on a log axis. */
static bool fixed_range(const double lim[2], bool log, const char *name) {
    if (lim[0] == 0.0 && lim[1] == 0.0) return false;
    if (!(isfinite(lim[0]) && isfinite(lim[1]) && lim[0] < lim[1] && (!log || lim[0] > 0.0)))
        nd_fatal("png_plot", "%s {%g, %g} is not a range (lo < hi, finite%s; {0, 0} for "
                 "one from the data)", name, lim[0], lim[1],
                 log ? ", positive on a log axis" : "");
    return true;
}

/* The data area (where points land) and the pixel size of text. */
typedef struct layout {
    int scale;
    bool text;                     /* labels, title and legend drawn */
    int left, right, top, bottom;  /* the data area, inclusive */
} layout;

/* Where lines go in a series: the pixel of point i, false at a gap. */
static bool point_pixel(const nd_plot *plot, const nd_plot_series *s, int64_t i, const axis *ax,
                        const axis *ay, double *px, double *py) {
    double x = s->x ? s->x[i] : (double)i, y = s->y[i];
    if (!usable(x, plot->logx) || !usable(y, plot->logy)) return false;
    *px = to_pixel(ax, axis_units(x, plot->logx));
    *py = to_pixel(ay, axis_units(y, plot->logy));
    /* Farther out than any line could be drawn from (a range of 1e-300
     * and a value of 1e300): a gap rather than an overflow. */
    return fabs(*px) < 1e150 && fabs(*py) < 1e150;
}

static void draw_series(const canvas *area, const nd_plot *plot, const nd_plot_series *s,
                        const axis *ax, const axis *ay) {
    double lx = area->x0, ly = area->y0, hx = area->x1, hy = area->y1;
    double px = 0.0, py = 0.0;
    bool have_prev = false, prev_joined = false;
    for (int64_t i = 0; i <= s->n; i++) {
        double x = 0.0, y = 0.0;
        bool have = i < s->n && point_pixel(plot, s, i, ax, ay, &x, &y);
        if (have && have_prev) {
            double ax0 = px, ay0 = py, bx = x, by = y;
            if (clip(&ax0, &ay0, &bx, &by, lx, ly, hx, hy))
                line(area, nearest(ax0), nearest_row(ay0), nearest(bx), nearest_row(by),
                     s->color, s->thick);
        }
        /* A point with no neighbour to join: a 3 x 3 dot. */
        if (have_prev && !have && !prev_joined && px >= lx - 0.5 && px < hx + 0.5 &&
            py >= ly - 0.5 && py < hy + 0.5)
            fill(area, nearest(px) - 1, nearest_row(py) - 1, nearest(px) + 1,
                 nearest_row(py) + 1, s->color);
        prev_joined = have && have_prev;
        have_prev = have;
        px = x;
        py = y;
    }
}

/* Pixels of the data area in [x0, x1] x [y0, y1] that are not background:
 * what a legend there would hide. */
static int64_t ink(const canvas *c, int x0, int y0, int x1, int y1) {
    int64_t n = 0;
    for (int y = y0 > c->y0 ? y0 : c->y0; y <= y1 && y <= c->y1; y++)
        for (int x = x0 > c->x0 ? x0 : c->x0; x <= x1 && x <= c->x1; x++) {
            const uint8_t *p = c->rgb + 3 * ((size_t)y * (size_t)c->w + (size_t)x);
            n += memcmp(p, white, 3) && memcmp(p, grid, 3) && memcmp(p, minor_grid, 3);
        }
    return n;
}

/* A box of the labelled series in the corner of the data area where it
 * hides the least of them: a line of each series' colour and its label. */
static void draw_legend(const canvas *image, const canvas *area, const nd_plot_series *series,
                        int nseries, int scale) {
    int entries = 0, widest = 0;
    for (int s = 0; s < nseries; s++)
        if (series[s].label && series[s].label[0]) {
            entries++;
            int w = nd__text_width(series[s].label, scale);
            if (w > widest) widest = w;
        }
    if (!entries) return;
    int pad = 4 * scale, sample = 16 * scale, row = (ND__GLYPH_H + 2) * scale,
        inset = 6 * scale;
    int w = pad + sample + pad + widest + pad, h = pad + entries * row - 2 * scale + pad;
    int xs[2] = {area->x1 - inset - w + 1, area->x0 + inset},
        ys[2] = {area->y0 + inset, area->y1 - inset - h + 1};
    int bx = xs[0], by = ys[0];
    int64_t best = -1;
    for (int k = 0; k < 4; k++) { /* top right, top left, bottom right, bottom left */
        int x = xs[k & 1], y = ys[k >> 1];
        int64_t n = ink(area, x, y, x + w - 1, y + h - 1);
        if (best < 0 || n < best) {
            best = n;
            bx = x;
            by = y;
        }
    }
    fill(image, bx, by, bx + w - 1, by + h - 1, white);
    line(image, bx, by, bx + w - 1, by, legend_edge, false);
    line(image, bx, by + h - 1, bx + w - 1, by + h - 1, legend_edge, false);
    line(image, bx, by, bx, by + h - 1, legend_edge, false);
    line(image, bx + w - 1, by, bx + w - 1, by + h - 1, legend_edge, false);
    int y = by + pad;
    for (int s = 0; s < nseries; s++) {
        if (!series[s].label || !series[s].label[0]) continue;
        int mid = y + 7 * scale / 2;
        line(image, bx + pad, mid, bx + pad + sample - 1, mid, series[s].color, series[s].thick);
        nd__draw_text(image->rgb, image->w, image->h, bx + pad + sample + pad, y,
                      series[s].label, scale, false, black);
        y += row;
    }
}

int nd_png_plot(const char *path, const nd_plot *plot, const nd_plot_series *series,
                int nseries, nd_error *err) {
    if (!path) nd_fatal("png_plot", "path is NULL");
    if (!plot) nd_fatal("png_plot", "plot is NULL");
    if (!series) nd_fatal("png_plot", "series is NULL");
    if (nseries < 1) nd_fatal("png_plot", "%d series; at least 1 is needed", nseries);
    int W = plot->width, H = plot->height;
    if (W < 64 || W > 8192 || H < 64 || H > 8192)
        nd_fatal("png_plot", "size %dx%d; width and height must be 64..8192", W, H);
    for (int s = 0; s < nseries; s++) {
        if (series[s].n < 0) nd_fatal("png_plot", "series %d has %lld points", s,
                                      (long long)series[s].n);
        if (series[s].n > 0 && !series[s].y) nd_fatal("png_plot", "series %d: y is NULL", s);
    }
    bool fixed_x = fixed_range(plot->xlim, plot->logx, "xlim"),
         fixed_y = fixed_range(plot->ylim, plot->logy, "ylim");

    /* The ranges of the data, in axis units. */
    double xlo, xhi, ylo, yhi;
    if (!data_range(plot, series, nseries, true, false, 0, 0, &xlo, &xhi))
        return nd_error_set(err, "%s: nothing to plot: no point has a finite x and y%s", path,
                            plot->logx || plot->logy ? " (positive on a log axis)" : "");
    if (fixed_x) {
        xlo = axis_units(plot->xlim[0], plot->logx);
        xhi = axis_units(plot->xlim[1], plot->logx);
    }
    if (fixed_y) {
        ylo = axis_units(plot->ylim[0], plot->logy);
        yhi = axis_units(plot->ylim[1], plot->logy);
    } else if (!data_range(plot, series, nseries, false, fixed_x, xlo, xhi, &ylo, &yhi)) {
        ylo = 0.0; /* no point inside xlim: an empty plot */
        yhi = 1.0;
    }
    /* Ticks are 1, 2, 5 x 10^k of the span: keep both far from the ends
     * of the double range. One value is widened a little either side. */
    double *ends[2][2] = {{&xlo, &xhi}, {&ylo, &yhi}};
    for (int k = 0; k < 2; k++) {
        double *lo = ends[k][0], *hi = ends[k][1], span = *hi - *lo;
        bool fixed = k ? fixed_y : fixed_x, log = k ? plot->logy : plot->logx;
        if (!(span <= 1e300) || (fixed && span < 1e-250))
            return nd_error_set(err, "%s: the %c range [%g, %g] is %s to plot", path,
                                k ? 'y' : 'x', *lo, *hi, span < 1e-250 ? "too narrow"
                                                                      : "too wide");
        if (span < 1e-250) {
            double d = log || fabs(*lo) * 0.1 < 1e-250 ? 1.0 : fabs(*lo) * 0.1;
            *lo -= d;
            *hi += d;
        }
    }

    /* The layout, from the outside in: title, x label, tick labels; the
     * y axis first, since the left margin holds its labels. */
    int small = W < H ? W : H;
    layout L = {small >= 1600 ? 3 : small >= 800 ? 2 : 1, true, 0, 0, 0, 0};
    axis axes[2], *ax = &axes[0], *ay = &axes[1];
    ax->log = plot->logx;
    ay->log = plot->logy;
    for (;;) {
        int s = L.scale, pad = 6 * s, tick_len = 4 * s, gap = 3 * s, text_h = ND__GLYPH_H * s;
        bool t = L.text;
        L.top = pad + (t && plot->title ? text_h + pad : 0) + (t ? 4 * s : 0) + 1;
        L.bottom = H - 1 - pad - (t && plot->xlabel ? text_h + 2 * gap : 0) -
                   (t ? text_h + gap : 0) - tick_len - 1;
        if (t && L.bottom - L.top < 16) {
            L.text = false; /* too small for text: the frame and lines alone */
            continue;
        }
        make_axis(ay, ylo, yhi, fixed_y, L.bottom, L.top, false, s);
        int widest = 0;
        for (int i = 0; i < ay->nticks; i++) {
            int w = nd__text_width(ay->ticks[i].text, s);
            if (w > widest) widest = w;
        }
        L.left = pad + (t && plot->ylabel ? text_h + 2 * gap : 0) + (t ? widest + gap : 0) +
                 tick_len + 1;
        /* The right margin holds half of the last x label: try, then fit. */
        int right_margin = 3 * pad;
        for (int pass = 0; pass < 2; pass++) {
            L.right = W - 1 - right_margin - 1;
            make_axis(ax, xlo, xhi, fixed_x, L.left, L.right, true, s);
            int over = 0; /* how far labels reach past the data area */
            for (int i = 0; i < ax->nticks; i++) {
                int w = nd__text_width(ax->ticks[i].text, s);
                int end = nearest(to_pixel(ax, ax->ticks[i].at)) - w / 2 + w - 1;
                if (w && end - L.right > over) over = end - L.right;
            }
            right_margin = t ? (over + pad > 2 * pad ? over + pad : 2 * pad) : pad;
        }
        if (!t || (L.right - L.left >= 16 && L.bottom - L.top >= 16)) break;
        L.text = false; /* too small for text: the frame and lines alone */
    }

    size_t bytes = 3 * (size_t)W * (size_t)H;
    uint8_t *rgb = nd_alloc(bytes);
    memset(rgb, 255, bytes);
    canvas image = {rgb, W, H, 0, 0, W - 1, H - 1};
    canvas area = {rgb, W, H, L.left, L.top, L.right, L.bottom};
    int s = L.scale, tick_len = 4 * s, gap = 3 * s, text_h = ND__GLYPH_H * s, pad = 6 * s;

    /* Grid lines, minor then major; the series over them. */
    for (int major = 0; major < 2; major++) {
        for (int i = 0; i < ax->nticks; i++)
            if (!ax->ticks[i].text[0] == !major) {
                int c = nearest(to_pixel(ax, ax->ticks[i].at));
                line(&area, c, L.top, c, L.bottom, major ? grid : minor_grid, false);
            }
        for (int i = 0; i < ay->nticks; i++)
            if (!ay->ticks[i].text[0] == !major) {
                int r = nearest_row(to_pixel(ay, ay->ticks[i].at));
                line(&area, L.left, r, L.right, r, major ? grid : minor_grid, false);
            }
    }
    for (int k = 0; k < nseries; k++) draw_series(&area, plot, &series[k], ax, ay);

    /* The frame around the data area, ticks outside it, their labels. */
    line(&image, L.left - 1, L.top - 1, L.right + 1, L.top - 1, black, false);
    line(&image, L.left - 1, L.bottom + 1, L.right + 1, L.bottom + 1, black, false);
    line(&image, L.left - 1, L.top - 1, L.left - 1, L.bottom + 1, black, false);
    line(&image, L.right + 1, L.top - 1, L.right + 1, L.bottom + 1, black, false);
    for (int i = 0; i < ax->nticks; i++) {
        const tick *t = &ax->ticks[i];
        int c = nearest(to_pixel(ax, t->at)), len = t->text[0] ? tick_len : tick_len / 2;
        line(&image, c, L.bottom + 2, c, L.bottom + 1 + len, black, false);
        if (L.text && t->text[0])
            nd__draw_text(rgb, W, H, c - nd__text_width(t->text, s) / 2,
                          L.bottom + 2 + tick_len + gap, t->text, s, false, black);
    }
    for (int i = 0; i < ay->nticks; i++) {
        const tick *t = &ay->ticks[i];
        int r = nearest_row(to_pixel(ay, t->at)), len = t->text[0] ? tick_len : tick_len / 2;
        line(&image, L.left - 2, r, L.left - 1 - len, r, black, false);
        if (L.text && t->text[0])
            nd__draw_text(rgb, W, H, L.left - 1 - tick_len - gap - nd__text_width(t->text, s),
                          r - 7 * s / 2, t->text, s, false, black);
    }
    if (L.text) {
        int mid = (L.left + L.right) / 2;
        if (plot->title)
            nd__draw_text(rgb, W, H, mid - nd__text_width(plot->title, s) / 2, pad,
                          plot->title, s, false, black);
        if (plot->xlabel)
            nd__draw_text(rgb, W, H, mid - nd__text_width(plot->xlabel, s) / 2,
                          H - pad - text_h, plot->xlabel, s, false, black);
        if (plot->ylabel)
            nd__draw_text(rgb, W, H, pad,
                          (L.top + L.bottom) / 2 - nd__text_width(plot->ylabel, s) / 2,
                          plot->ylabel, s, true, black);
        draw_legend(&image, &area, series, nseries, s);
    }
    int rc = nd_png_write(path, rgb, W, H, 3, err);
    nd_dealloc(rgb, bytes);
    return rc;
}

/* ---- arrows -------------------------------------------------------------- */

int nd_png_quiver(const char *path, const nd_tensor *under, const nd_tensor *at,
                  const nd_tensor *vec, int size, double lo, double hi, nd_error *err) {
    if (!path) nd_fatal("png_quiver", "path is NULL");
    if (size < 16 || size > 8192) nd_fatal("png_quiver", "size %d is not in 16..8192", size);
    if (!(isfinite(lo) && isfinite(hi) && lo < hi))
        nd_fatal("png_quiver", "bounds [%g, %g] are not an interval", lo, hi);
    check_points(under, "under");
    check_points(at, "at");
    check_points(vec, "vec");
    if (!at || !vec || at->shape[0] != vec->shape[0])
        nd_fatal("png_quiver", "needs as many vectors as places");
    static const uint8_t gray[3] = {185, 185, 185}, blue[3] = {30, 60, 200},
                         frame[3] = {90, 90, 90};
    size_t bytes = 3 * (size_t)size * (size_t)size;
    uint8_t *rgb = nd_alloc(bytes);
    memset(rgb, 255, bytes);
    canvas c = {rgb, size, size, 0, 0, size - 1, size - 1};
    line(&c, 0, 0, size - 1, 0, frame, false);
    line(&c, 0, size - 1, size - 1, size - 1, frame, false);
    line(&c, 0, 0, 0, size - 1, frame, false);
    line(&c, size - 1, 0, size - 1, size - 1, frame, false);
    for (int64_t k = 0; under && k < under->shape[0]; k++) {
        int64_t i0[2] = {k, 0}, i1[2] = {k, 1};
        int px, py;
        if (place(nd_get(under, i0), nd_get(under, i1), size, lo, hi, &px, &py))
            dot(rgb, size, px, py, gray);
    }
    double scale = (size - 1) / (hi - lo); /* pixels per unit */
    for (int64_t k = 0; k < at->shape[0]; k++) {
        int64_t i0[2] = {k, 0}, i1[2] = {k, 1};
        double x = nd_get(at, i0), y = nd_get(at, i1), vx = nd_get(vec, i0), vy = nd_get(vec, i1);
        if (!(isfinite(x) && isfinite(y) && isfinite(vx) && isfinite(vy))) continue;
        /* pixel coordinates, y downwards */
        double ax = (x - lo) * scale, ay = (hi - y) * scale;
        double bx = ax + vx * scale, by = ay - vy * scale;
        line(&c, (int)lround(ax), (int)lround(ay), (int)lround(bx), (int)lround(by), blue, false);
        /* the head: two strokes a third of the length back, 25 degrees off */
        double len = hypot(bx - ax, by - ay);
        if (len < 2.0) continue;
        double ux = (ax - bx) / len, uy = (ay - by) / len, h = fmin(len / 3.0, 8.0);
        const double cs = 0.906307787, sn = 0.422618262; /* cos, sin of 25 degrees */
        for (int side = -1; side <= 1; side += 2) {
            double hx = ux * cs - side * uy * sn, hy = side * ux * sn + uy * cs;
            line(&c, (int)lround(bx), (int)lround(by), (int)lround(bx + h * hx),
                 (int)lround(by + h * hy), blue, false);
        }
    }
    int rc = nd_png_write(path, rgb, size, size, 3, err);
    nd_dealloc(rgb, bytes);
    return rc;
}
