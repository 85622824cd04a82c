/* Line plots, read back with the suite's PNG reader: points land where
 * the documented mapping puts them inside the frame (found by its colour),
 * a constant is one row, a log axis spaces powers of ten evenly, gaps
 * leave nothing between their neighbours, lines stay inside the frame,
 * the legend avoids the data; and the font draws its glyphs. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"
#include "files.h"
#include "png_read.h"

static const uint8_t red[3] = {200, 30, 30}, blue[3] = {20, 40, 220}, green[3] = {30, 160, 60};

typedef struct plot_image {
    png_image img;
    int left, right, top, bottom; /* the data area: inside the frame */
} plot_image;

static const unsigned char *pixel(const plot_image *p, int x, int y) {
    return p->img.pixels + 3 * ((size_t)y * (size_t)p->img.width + (size_t)x);
}

static bool is(const plot_image *p, int x, int y, const uint8_t c[3]) {
    return memcmp(pixel(p, x, y), c, 3) == 0;
}

/* Pixels of colour c in [x0, x1] x [y0, y1]. */
static int count(const plot_image *p, const uint8_t c[3], int x0, int y0, int x1, int y1) {
    int n = 0;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) n += is(p, x, y, c);
    return n;
}

/* The longest run of black pixels along row y (dx 1) or column x. */
static int black_run(const plot_image *p, int at, bool row) {
    static const uint8_t black[3] = {0, 0, 0};
    int best = 0, run = 0, n = row ? p->img.width : p->img.height;
    for (int i = 0; i < n; i++) {
        run = is(p, row ? i : at, row ? at : i, black) ? run + 1 : 0;
        if (run > best) best = run;
    }
    return best;
}

/* Draws the plot, reads it back, and finds the frame: the rows and
 * columns that hold a black line across more than half the image. */
static plot_image render(const nd_plot *plot, const nd_plot_series *s, int n) {
    nd_error err;
    const char *path = td_path("plot.png");
    int rc = nd_png_plot(path, plot, s, n, &err);
    ck_assert_msg(rc == ND_OK, "%s", err.message);
    plot_image p;
    const char *bad = png_read_file(path, &p.img);
    ck_assert_msg(bad == NULL, "%s", bad);
    ck_assert_int_eq(p.img.width, plot->width);
    ck_assert_int_eq(p.img.height, plot->height);
    ck_assert_int_eq(p.img.channels, 3);
    int fy[2] = {-1, -1}, fx[2] = {-1, -1};
    for (int y = 0; y < p.img.height; y++)
        if (black_run(&p, y, true) > p.img.width / 2) fy[fy[0] < 0 ? 0 : 1] = y;
    for (int x = 0; x < p.img.width; x++)
        if (black_run(&p, x, false) > p.img.height / 2) fx[fx[0] < 0 ? 0 : 1] = x;
    ck_assert_msg(fx[0] >= 0 && fx[1] > fx[0] + 2 && fy[0] >= 0 && fy[1] > fy[0] + 2,
                  "no frame found");
    p.left = fx[0] + 1;
    p.right = fx[1] - 1;
    p.top = fy[0] + 1;
    p.bottom = fy[1] - 1;
    return p;
}

/* The documented mapping: lo to the first column (last row), hi to the
 * last column (first row), linear between, rounded halves up. */
static int col(const plot_image *p, double x, double lo, double hi) {
    return p->left + (int)floor((x - lo) / (hi - lo) * (p->right - p->left) + 0.5);
}
static int row(const plot_image *p, double y, double lo, double hi) {
    return p->bottom - (int)floor((y - lo) / (hi - lo) * (p->bottom - p->top) + 0.5);
}

START_TEST(test_plot_points_land) {
    td_make_dir();
    const double x[3] = {1.0, 5.0, 9.0}, y[3] = {2.0, 8.0, 2.0};
    nd_plot_series s = {x, y, 3, {200, 30, 30}, NULL, false};
    nd_plot plot = {.title = "V", .xlabel = "x", .ylabel = "y", .xlim = {0, 10},
                    .ylim = {0, 10}, .width = 640, .height = 400};
    plot_image p = render(&plot, &s, 1);
    /* Room was left for text around the data area. */
    ck_assert_int_gt(p.left, 20);
    ck_assert_int_gt(p.top, 10);
    ck_assert_int_lt(p.bottom, 400 - 20);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(is(&p, col(&p, x[i], 0, 10), row(&p, y[i], 0, 10), red), "point %d", i);
    /* Joined: every column and every row the lines cross holds some red,
     * and none is elsewhere. */
    int c0 = col(&p, 1, 0, 10), c1 = col(&p, 9, 0, 10), r0 = row(&p, 8, 0, 10),
        r1 = row(&p, 2, 0, 10);
    for (int c = c0; c <= c1; c++) ck_assert_int_ge(count(&p, red, c, r0, c, r1), 1);
    for (int r = r0; r <= r1; r++) ck_assert_int_ge(count(&p, red, c0, r, c1, r), r > r0 ? 2 : 1);
    ck_assert_int_eq(count(&p, red, 0, 0, 639, 399), count(&p, red, c0, r0, c1, r1));
    ck_assert_int_eq(count(&p, red, c0, r0, c0, r0), 0); /* (1, 8): not on the V */
    free(p.img.pixels);

    /* Ranges from the data, rounded out to ticks: [0.3, 9.2] -> [0, 10]. */
    const double x2[2] = {0.3, 9.2}, y2[2] = {9.2, 0.3};
    s = (nd_plot_series){x2, y2, 2, {200, 30, 30}, NULL, false};
    plot = (nd_plot){.width = 500, .height = 300};
    p = render(&plot, &s, 1);
    ck_assert(is(&p, col(&p, 0.3, 0, 10), row(&p, 9.2, 0, 10), red));
    ck_assert(is(&p, col(&p, 9.2, 0, 10), row(&p, 0.3, 0, 10), red));
    ck_assert(!is(&p, p.left, p.top, red));
    /* x NULL: the steps 0, 1, 2 (range [0, 2] exactly). */
    const double y3[3] = {0.0, 10.0, 5.0};
    s = (nd_plot_series){NULL, y3, 3, {20, 40, 220}, NULL, false};
    free(p.img.pixels);
    p = render(&plot, &s, 1);
    ck_assert(is(&p, p.left, p.bottom, blue));
    ck_assert(is(&p, col(&p, 1, 0, 2), p.top, blue));
    ck_assert(is(&p, p.right, row(&p, 5, 0, 10), blue));
    free(p.img.pixels);
    td_remove_dir();
}
END_TEST

START_TEST(test_plot_constant_is_one_row) {
    td_make_dir();
    const double y[4] = {3.0, 3.0, 3.0, 3.0};
    for (int thick = 0; thick < 2; thick++) {
        nd_plot_series s = {NULL, y, 4, {30, 160, 60}, NULL, thick};
        nd_plot plot = {.ylim = {0, 10}, .width = 400, .height = 300};
        plot_image p = render(&plot, &s, 1);
        int r = row(&p, 3.0, 0, 10);
        int width = p.right - p.left + 1;
        ck_assert_int_eq(count(&p, green, p.left, r, p.right, r), width);
        if (thick) ck_assert_int_eq(count(&p, green, p.left, r + 1, p.right, r + 1), width);
        ck_assert_int_eq(count(&p, green, 0, 0, 399, 299), (1 + thick) * width);
        free(p.img.pixels);
    }
    /* One value and no range given: widened either side, drawn across the middle. */
    nd_plot_series s = {NULL, y, 4, {30, 160, 60}, NULL, false};
    nd_plot plot = {.width = 400, .height = 300};
    plot_image p = render(&plot, &s, 1);
    int rows = 0, at = -1;
    for (int r = p.top; r <= p.bottom; r++)
        if (count(&p, green, p.left, r, p.right, r) == p.right - p.left + 1) rows++, at = r;
    ck_assert_int_eq(rows, 1);
    ck_assert_int_gt(at, p.top);
    ck_assert_int_lt(at, p.bottom);
    free(p.img.pixels);
    td_remove_dir();
}
END_TEST

/* The row of the one full-width line of colour c. */
static int line_row(const plot_image *p, const uint8_t c[3]) {
    for (int r = p->top; r <= p->bottom; r++)
        if (count(p, c, p->left, r, p->right, r) == p->right - p->left + 1) return r;
    return -1;
}

START_TEST(test_plot_log_axes) {
    td_make_dir();
    /* 10, 100 and 1000 on a log y axis from the data: [10, 1000], each a
     * decade apart, so evenly spaced rows, the ends on the first and
     * last rows. */
    const double a[2] = {10, 10}, b[2] = {100, 100}, c[2] = {1000, 1000};
    nd_plot_series s[3] = {{NULL, a, 2, {200, 30, 30}, "10", false},
                           {NULL, b, 2, {20, 40, 220}, "100", false},
                           {NULL, c, 2, {30, 160, 60}, "1000", false}};
    nd_plot plot = {.logy = true, .width = 640, .height = 401};
    plot_image p = render(&plot, s, 3);
    int r10 = line_row(&p, red), r100 = line_row(&p, blue), r1000 = line_row(&p, green);
    ck_assert_int_eq(r10, p.bottom);
    ck_assert_int_eq(r1000, p.top);
    ck_assert_int_eq(r100, row(&p, 2.0, 1.0, 3.0));
    ck_assert_int_le(abs((r10 - r100) - (r100 - r1000)), 1);
    free(p.img.pixels);
    /* Log x, fixed [1, 1000]: 1, 10^1.5 and 1000 at the first, middle
     * and last columns; 0 and -1 are gaps, so 5 at x = 2 stands alone
     * as a 3 x 3 dot. */
    const double x[6] = {1, pow(10, 1.5), 1000, 0, 2, -1}, y[6] = {1, 2, 3, 4, 5, 6};
    nd_plot_series d = {x, y, 6, {200, 30, 30}, NULL, false};
    plot = (nd_plot){.logx = true, .xlim = {1, 1000}, .ylim = {0, 10}, .width = 640,
                     .height = 400};
    p = render(&plot, &d, 1);
    ck_assert(is(&p, p.left, row(&p, 1, 0, 10), red));
    ck_assert(is(&p, col(&p, 1.5, 0, 3), row(&p, 2, 0, 10), red));
    ck_assert(is(&p, p.right, row(&p, 3, 0, 10), red));
    int cx = col(&p, log10(2.0), 0, 3), cy = row(&p, 5, 0, 10);
    ck_assert_int_eq(count(&p, red, cx - 1, cy - 1, cx + 1, cy + 1), 9);
    ck_assert_int_eq(count(&p, red, cx - 3, cy - 3, cx + 3, cy + 3), 9);
    free(p.img.pixels);
    td_remove_dir();
}
END_TEST

START_TEST(test_plot_gaps) {
    td_make_dir();
    /* NaN and infinities break the line: nothing between the neighbours. */
    const double y[10] = {1, 2, 3, NAN, INFINITY, 6, 7, 8, -INFINITY, 10};
    nd_plot_series s = {NULL, y, 10, {20, 40, 220}, NULL, false};
    nd_plot plot = {.xlim = {0, 9}, .ylim = {0, 10}, .width = 640, .height = 400};
    plot_image p = render(&plot, &s, 1);
    int c2 = col(&p, 2, 0, 9), c5 = col(&p, 5, 0, 9), c7 = col(&p, 7, 0, 9),
        c9 = col(&p, 9, 0, 9);
    ck_assert(is(&p, c2, row(&p, 3, 0, 10), blue));
    ck_assert(is(&p, c5, row(&p, 6, 0, 10), blue));
    ck_assert_int_eq(count(&p, blue, c2 + 1, 0, c5 - 1, 399), 0);
    ck_assert_int_eq(count(&p, blue, c7 + 1, 0, c9 - 2, 399), 0);
    /* 10 at x = 9 has gaps on both sides: a dot, cut by the frame. */
    ck_assert_int_eq(count(&p, blue, c9 - 1, p.top, c9, p.top + 1), 4);
    free(p.img.pixels);
    td_remove_dir();
}
END_TEST

START_TEST(test_plot_clipped_to_frame) {
    td_make_dir();
    /* From inside to far outside, and a segment passing wholly outside. */
    const double x[4] = {2, 4, 100, 200}, y[4] = {5, 1e12, -50, -60};
    nd_plot_series s = {x, y, 4, {200, 30, 30}, NULL, true};
    nd_plot plot = {.xlim = {0, 10}, .ylim = {0, 10}, .width = 300, .height = 200};
    plot_image p = render(&plot, &s, 1);
    int inside = count(&p, red, p.left, p.top, p.right, p.bottom);
    ck_assert_int_gt(inside, 10);
    ck_assert_int_eq(count(&p, red, 0, 0, 299, 199), inside);
    /* The steep line leaves through the top row, near x = 2. */
    ck_assert_int_ge(count(&p, red, col(&p, 2, 0, 10), p.top, col(&p, 2.1, 0, 10), p.top), 1);
    free(p.img.pixels);
    td_remove_dir();
}
END_TEST

START_TEST(test_plot_legend) {
    td_make_dir();
    static const uint8_t edge[3] = {150, 150, 150};
    /* Data along the bottom: the legend takes the top right corner;
     * across the top corners: the bottom right one. */
    const double low[2] = {0, 0.5}, high[2] = {9.6, 9.6};
    for (int k = 0; k < 2; k++) {
        nd_plot_series s = {NULL, k ? high : low, 2, {200, 30, 30}, "series", false};
        nd_plot plot = {.ylim = {0, 10}, .width = 640, .height = 400};
        plot_image p = render(&plot, &s, 1);
        int midx = (p.left + p.right) / 2, midy = (p.top + p.bottom) / 2;
        int top = count(&p, edge, p.left, p.top, p.right, midy),
            bottom = count(&p, edge, midx, midy, p.right, p.bottom);
        ck_assert_int_gt(k ? bottom : top, 20);
        ck_assert_int_eq(k ? top : bottom, 0);
        /* The sample line in the series' colour sits in the box. */
        int line = k ? count(&p, red, p.left, midy, p.right, p.bottom - 10)
                     : count(&p, red, midx, p.top, p.right, midy);
        ck_assert_int_ge(line, 16);
        free(p.img.pixels);
    }
    td_remove_dir();
}
END_TEST

START_TEST(test_plot_failures) {
    td_make_dir();
    nd_error err;
    char want[512];
    const char *path = td_path("p.png");
    const double nan2[2] = {NAN, NAN}, neg[2] = {-1, 0}, ok[2] = {1, 2};
    nd_plot_series s = {NULL, nan2, 2, {0, 0, 0}, NULL, false};
    nd_plot plot = {.width = 640, .height = 400};
    ck_assert_int_eq(nd_png_plot(path, &plot, &s, 1, &err), ND_ERR);
    td_expect(&err, path, "nothing to plot: no point has a finite x and y");
    s.y = neg;
    plot.logy = true;
    ck_assert_int_eq(nd_png_plot(path, &plot, &s, 1, &err), ND_ERR);
    td_expect(&err, path, "nothing to plot: no point has a finite x and y (positive on a log "
                          "axis)");
    plot.logy = false;
    s.y = ok;
    const char *lost = td_path("nowhere/p.png");
    ck_assert_int_eq(nd_png_plot(lost, &plot, &s, 1, &err), ND_ERR);
    snprintf(want, sizeof want, "cannot create a temporary file beside it: %s", strerror(ENOENT));
    td_expect(&err, lost, want);
    plot.ylim[0] = -1e300;
    plot.ylim[1] = 1e300;
    ck_assert_int_eq(nd_png_plot(path, &plot, &s, 1, &err), ND_ERR);
    td_expect(&err, path, "the y range [-1e+300, 1e+300] is too wide to plot");
    ck_assert_str_eq(td_listing(), "");
    plot.ylim[0] = plot.ylim[1] = 0;
    EXPECT_FATAL(nd_png_plot(NULL, &plot, &s, 1, &err), "nanodiff: png_plot: path is NULL");
    EXPECT_FATAL(nd_png_plot(path, NULL, &s, 1, &err), "nanodiff: png_plot: plot is NULL");
    EXPECT_FATAL(nd_png_plot(path, &plot, NULL, 1, &err), "nanodiff: png_plot: series is NULL");
    EXPECT_FATAL(nd_png_plot(path, &plot, &s, 0, &err),
                 "nanodiff: png_plot: 0 series; at least 1 is needed");
    plot.width = 63;
    EXPECT_FATAL(nd_png_plot(path, &plot, &s, 1, &err),
                 "nanodiff: png_plot: size 63x400; width and height must be 64..8192");
    plot.width = 640;
    plot.height = 8193;
    EXPECT_FATAL(nd_png_plot(path, &plot, &s, 1, &err),
                 "nanodiff: png_plot: size 640x8193; width and height must be 64..8192");
    plot.height = 400;
    nd_plot_series bad[2] = {s, s};
    bad[1].n = -1;
    EXPECT_FATAL(nd_png_plot(path, &plot, bad, 2, &err),
                 "nanodiff: png_plot: series 1 has -1 points");
    bad[1].n = 2;
    bad[1].y = NULL;
    EXPECT_FATAL(nd_png_plot(path, &plot, bad, 2, &err), "nanodiff: png_plot: series 1: y is NULL");
    plot.xlim[0] = 1;
    EXPECT_FATAL(nd_png_plot(path, &plot, &s, 1, &err),
                 "nanodiff: png_plot: xlim {1, 0} is not a range (lo < hi, finite; {0, 0} for "
                 "one from the data)");
    plot.xlim[0] = 0;
    plot.xlim[1] = 1;
    plot.logx = true;
    EXPECT_FATAL(nd_png_plot(path, &plot, &s, 1, &err),
                 "nanodiff: png_plot: xlim {0, 1} is not a range (lo < hi, finite, positive on "
                 "a log axis; {0, 0} for one from the data)");
    ck_assert_str_eq(td_listing(), "");
    td_remove_dir();
}
END_TEST

/* The smallest size: the frame and the line, no room for text. */
START_TEST(test_plot_small) {
    td_make_dir();
    const double y[3] = {1, 3, 2};
    nd_plot_series s = {NULL, y, 3, {200, 30, 30}, "label", false};
    nd_plot plot = {.title = "a title too long for the picture", .xlabel = "x", .ylabel = "y",
                    .width = 64, .height = 64};
    plot_image p = render(&plot, &s, 1);
    ck_assert_int_gt(count(&p, red, p.left, p.top, p.right, p.bottom), 10);
    free(p.img.pixels);
    td_remove_dir();
}
END_TEST

/* 'A' and '1' as drawn here; the font's own bitmaps must agree. */
static const char *const glyph_a[9] = {".###.", "#...#", "#...#", "#####", "#...#",
                                       "#...#", "#...#", ".....", "....."};
static const char *const glyph_1[9] = {"..#..", ".##..", "..#..", "..#..", "..#..",
                                       "..#..", ".###.", ".....", "....."};

START_TEST(test_font) {
    for (int r = 0; r < ND__GLYPH_H; r++)
        for (int i = 0; i < ND__GLYPH_W; i++) {
            ck_assert_uint_eq(nd__glyph_row('A', r) >> (4 - i) & 1, glyph_a[r][i] == '#');
            ck_assert_uint_eq(nd__glyph_row('1', r) >> (4 - i) & 1, glyph_1[r][i] == '#');
        }
    /* Every printable character has its own glyph; only ' ' is blank; any
     * other byte is the box of 0x7f. */
    unsigned rows[96][ND__GLYPH_H];
    for (int c = 0x20; c <= 0x7f; c++)
        for (int r = 0; r < ND__GLYPH_H; r++) rows[c - 0x20][r] = nd__glyph_row((char)c, r);
    for (int a = 0; a < 96; a++) {
        unsigned any = 0;
        for (int r = 0; r < ND__GLYPH_H; r++) any |= rows[a][r];
        ck_assert_msg((any == 0) == (a == 0), "glyph of 0x%02x", a + 0x20);
        for (int b = 0; b < a; b++)
            ck_assert_msg(memcmp(rows[a], rows[b], sizeof rows[a]) != 0, "0x%02x is 0x%02x",
                          a + 0x20, b + 0x20);
    }
    for (int r = 0; r < ND__GLYPH_H; r++) {
        ck_assert_uint_eq(nd__glyph_row('\n', r), rows[95][r]);
        ck_assert_uint_eq(nd__glyph_row((char)0xe9, r), rows[95][r]);
    }
    ck_assert_int_eq(nd__text_width("", 1), 0);
    ck_assert_int_eq(nd__text_width("A", 1), 5);
    ck_assert_int_eq(nd__text_width("abc", 2), 34);

    /* "1A" drawn at scale 2 from (3, 4): '1' then 'A' 12 pixels on, each
     * font pixel a 2 x 2 square; nothing else drawn, nothing outside. */
    enum { W = 40, H = 30 };
    static uint8_t img[3 * W * H];
    const uint8_t ink[3] = {1, 2, 3};
    memset(img, 255, sizeof img);
    nd__draw_text(img, W, H, 3, 4, "1A", 2, false, ink);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int fx = (x - 3) / 2, fy = (y - 4) / 2;
            bool want = false;
            if (x >= 3 && y >= 4 && fy < 9) {
                if (fx < 5) want = glyph_1[fy][fx] == '#';
                else if (fx >= 6 && fx < 11) want = glyph_a[fy][fx - 6] == '#';
            }
            const uint8_t *p = img + 3 * (y * W + x);
            ck_assert_msg(want ? memcmp(p, ink, 3) == 0 : p[0] == 255, "pixel (%d, %d)", x, y);
        }
    /* Vertical: turned a quarter counterclockwise, read upwards; the box
     * is 9 wide and 5 high, the glyph's top row in column 0. Clipped at
     * the image's edges without harm. */
    memset(img, 255, sizeof img);
    nd__draw_text(img, W, H, 10, 10, "A", 1, true, ink);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            bool want = x >= 10 && x < 19 && y >= 10 && y < 15 &&
                        glyph_a[x - 10][4 - (y - 10)] == '#';
            ck_assert_msg((img[3 * (y * W + x)] == 1) == want, "pixel (%d, %d)", x, y);
        }
    nd__draw_text(img, W, H, -7, 25, "clipped text", 3, false, ink);
    nd__draw_text(img, W, H, 35, -20, "clipped text", 3, true, ink);
}
END_TEST

/* Arrows: on [-1, 1]^2 at 101 pixels, 50 pixels a unit, the place (0, 0)
 * is pixel (50, 50); a vector (0.5, 0) is the row from 50 to 75, (0, 0.5)
 * the column from 50 up to 25; the heads sit back from the tips on both
 * sides, and nothing is drawn elsewhere. */
START_TEST(test_quiver) {
    static const uint8_t arrow[3] = {30, 60, 200};
    nd_tensor *at = nd_from_buffer((const float[]){0, 0, 0, 0, -2, -2}, ND_SHAPE(3, 2));
    nd_tensor *vec = nd_from_buffer((const float[]){0.5f, 0, 0, 0.5f, 1, 1}, ND_SHAPE(3, 2));
    nd_error err;
    td_make_dir();
    const char *path = td_path("quiver.png");
    ck_assert_int_eq(nd_png_quiver(path, NULL, at, vec, 101, -1.0, 1.0, &err), ND_OK);
    plot_image p;
    memset(&p, 0, sizeof p);
    const char *bad = png_read_file(path, &p.img);
    ck_assert_msg(bad == NULL, "%s", bad);
    ck_assert_int_eq(p.img.width, 101);
    ck_assert_int_eq(p.img.channels, 3);
    for (int x = 50; x <= 75; x++) ck_assert_msg(is(&p, x, 50, arrow), "row pixel %d", x);
    for (int y = 25; y <= 50; y++) ck_assert_msg(is(&p, 50, y, arrow), "column pixel %d", y);
    ck_assert(!is(&p, 76, 50, arrow) && !is(&p, 50, 24, arrow));
    /* the heads: 25/3 pixels back from the tips at 25 degrees */
    ck_assert(is(&p, 68, 47, arrow) || is(&p, 68, 46, arrow));
    ck_assert(is(&p, 68, 53, arrow) || is(&p, 68, 54, arrow));
    ck_assert(is(&p, 47, 32, arrow) || is(&p, 46, 32, arrow));
    /* the third place is outside the square, its arrow clipped away but
     * for the part that crosses into it: from (-2, -2) to (-1, -1), the
     * corner; everything else is white or the frame */
    int blue_pixels = count(&p, arrow, 0, 0, 100, 100);
    ck_assert_int_le(blue_pixels, 26 + 26 + 4 * 9 + 2);
    ck_assert_int_ge(blue_pixels, 26 + 25 + 4 * 5);
    free(p.img.pixels);
    nd_free(at);
    nd_free(vec);
    td_remove_dir();
}
END_TEST

TCase *tcase_plot(void) {
    TCase *tc = nd_test_case("plot");
    tcase_add_test(tc, test_plot_points_land);
    tcase_add_test(tc, test_plot_constant_is_one_row);
    tcase_add_test(tc, test_plot_log_axes);
    tcase_add_test(tc, test_plot_gaps);
    tcase_add_test(tc, test_plot_clipped_to_frame);
    tcase_add_test(tc, test_plot_legend);
    tcase_add_test(tc, test_plot_failures);
    tcase_add_test(tc, test_plot_small);
    tcase_add_test(tc, test_quiver);
    tcase_add_test(tc, test_font);
    return tc;
}
