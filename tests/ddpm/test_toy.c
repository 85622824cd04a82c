/* The toy data: each 2-D set lies where its definition puts it, in the
 * proportions it promises, and each shape image is the shape its label
 * names. */
#include <math.h>
#include <string.h>

#include "ddpm/ddpm.h"
#include "helpers.h"

#define PI 3.14159265358979323846
enum { N = 8000 };

/* Moons: every point lies within 5 noise deviations of its arc, and the
 * arcs are each half the set. */
START_TEST(moons_lie_on_their_arcs) {
    nd_rng g = nd_rng_init(1, 0);
    nd_tensor *x = nd_toy_two_moons(N, 0.05f, &g);
    const float *p = nd_data(x);
    for (int64_t k = 0; k < N; k++) {
        bool upper = k % 2 == 0;
        double cx = upper ? -0.5 : 0.5, cy = upper ? -0.25 : 0.25;
        double dx = p[2 * k] - cx, dy = p[2 * k + 1] - cy, r = hypot(dx, dy);
        ck_assert_msg(fabs(r - 1.0) < 5 * 0.05 * sqrt(2.0), "point %lld at radius %g", (long long)k, r);
        /* the upper arc opens downwards, the lower upwards */
        ck_assert_msg(upper ? dy > -0.3 : dy < 0.3, "point %lld on the wrong side", (long long)k);
    }
}
END_TEST

/* Ring: each centre takes one point in eight, within 5 deviations. */
START_TEST(ring_has_eight_gaussians) {
    nd_rng g = nd_rng_init(2, 0);
    nd_tensor *x = nd_toy_ring(N, 0.05f, &g);
    const float *p = nd_data(x);
    double sum[8][2] = {{0}};
    for (int64_t k = 0; k < N; k++) {
        double a = 2 * PI * (k % 8) / 8.0;
        ck_assert(hypot(p[2 * k] - cos(a), p[2 * k + 1] - sin(a)) < 5 * 0.05 * 1.5);
        sum[k % 8][0] += p[2 * k];
        sum[k % 8][1] += p[2 * k + 1];
    }
    for (int c = 0; c < 8; c++) {
        double a = 2 * PI * c / 8.0;
        ck_assert_near(sum[c][0] / (N / 8), cos(a), 0.01);
        ck_assert_near(sum[c][1] / (N / 8), sin(a), 0.01);
    }
}
END_TEST

/* Checkerboard: only dark cells, each of the 8 with an eighth of the
 * points (5 standard deviations), and uniform within: the mean of a cell
 * is its centre. */
START_TEST(checkerboard_fills_the_dark_cells) {
    nd_rng g = nd_rng_init(3, 0);
    nd_tensor *x = nd_toy_checkerboard(N, &g);
    const float *p = nd_data(x);
    int64_t count[4][4] = {{0}};
    double mx[4][4] = {{0}};
    for (int64_t k = 0; k < N; k++) {
        double gx = (p[2 * k] + 1.5) / 0.75, gy = (p[2 * k + 1] + 1.5) / 0.75;
        ck_assert(gx >= 0 && gx < 4 && gy >= 0 && gy < 4.0001);
        int i = (int)gx, j = gy >= 4 ? 3 : (int)gy;
        ck_assert_msg((i + j) % 2 == 0, "point (%g, %g) in a light cell", (double)p[2 * k],
                      (double)p[2 * k + 1]);
        count[i][j]++;
        mx[i][j] += gx - i;
    }
    double sd = sqrt(N * (1.0 / 8) * (7.0 / 8));
    for (int i = 0; i < 4; i++)
        for (int j = (i % 2); j < 4; j += 2) {
            ck_assert_msg(fabs(count[i][j] - N / 8.0) < 5 * sd, "cell (%d, %d): %lld", i, j,
                          (long long)count[i][j]);
            ck_assert_near(mx[i][j] / (double)count[i][j], 0.5, 0.05);
        }
}
END_TEST

/* Pinwheel: undoing the turn of each point's arm gives back a radius of
 * mean 1 and deviation 0.3, and an offset of deviation 0.1. */
START_TEST(pinwheel_arms_turn_with_the_radius) {
    nd_rng g = nd_rng_init(4, 0);
    nd_tensor *x = nd_toy_pinwheel(N, &g);
    const float *p = nd_data(x);
    double sr = 0, sr2 = 0, ss2 = 0;
    for (int64_t k = 0; k < N; k++) {
        double px = p[2 * k] / 0.6, py = p[2 * k + 1] / 0.6;
        /* r and s from the point: solve for the r whose turn brings the
         * point onto (r, s) with |s| small, by fixed-point iteration */
        double r = hypot(px, py), s = 0;
        for (int it = 0; it < 50; it++) {
            double a = 2 * PI * (k % 5) / 5.0 + 0.25 * exp(r);
            r = px * cos(a) + py * sin(a);
            s = -px * sin(a) + py * cos(a);
        }
        sr += r;
        sr2 += r * r;
        ss2 += s * s;
    }
    double mean = sr / N;
    ck_assert_near(mean, 1.0, 0.02);
    ck_assert_near(sqrt(sr2 / N - mean * mean), 0.3, 0.02);
    ck_assert_near(sqrt(ss2 / N), 0.1, 0.01);
}
END_TEST

/* Swiss roll: every point lies within 5 noise deviations of the curve. */
START_TEST(swiss_roll_lies_on_its_spiral) {
    nd_rng g = nd_rng_init(5, 0);
    nd_tensor *x = nd_toy_swiss_roll(500, 0.03f, &g);
    const float *p = nd_data(x);
    enum { M = 8000 };
    for (int64_t k = 0; k < 500; k++) {
        double best = 1e9;
        for (int m = 0; m <= M; m++) {
            double s = 1.5 * PI * (1 + 2.0 * m / M);
            best = fmin(best, hypot(p[2 * k] - s * cos(s) / 10, p[2 * k + 1] - s * sin(s) / 10));
        }
        ck_assert_msg(best < 5 * 0.03 * 1.5, "point %lld is %g from the curve", (long long)k, best);
    }
}
END_TEST

START_TEST(sets_by_name) {
    nd_rng a = nd_rng_init(6, 0), b = nd_rng_init(6, 0);
    nd_tensor *x;
    nd_error err;
    int names = 0;
    for (int i = 0; nd_toy_name(i); i++, names++) {
        ck_assert_int_eq(nd_toy_points(nd_toy_name(i), 10, &a, &x, &err), ND_OK);
        ck_assert_int_eq(x->shape[0], 10);
        ck_assert_int_eq(x->shape[1], 2);
    }
    ck_assert_int_eq(names, 5);
    /* the same draws as the function itself */
    a = nd_rng_init(6, 0);
    ck_assert_int_eq(nd_toy_points("ring", 16, &a, &x, &err), ND_OK);
    ck_assert(nd_allclose(x, nd_toy_ring(16, 0.05f, &b), 0, 0, false));
    ck_assert_int_eq(nd_toy_points("spiral", 10, &a, &x, &err), ND_ERR);
    ck_assert_ptr_null(x);
    ck_assert_str_eq(err.message, "toy data: no set named 'spiral' (moons, ring, checkerboard, "
                                  "pinwheel, swissroll)");
    ck_assert_int_eq(nd_toy_points("moons", 0, &a, &x, &err), ND_ERR);
    ck_assert_str_eq(err.message, "toy data: 0 points, need at least 1");
    EXPECT_FATAL(nd_toy_ring(4, -1.0f, &a), "nanodiff: toy_ring: noise -1 is not a number >= 0");
}
END_TEST

/* Each image holds one white shape, whole inside the frame, of the class
 * its label names: a square or a bar fills its bounding box (a bar 4-6
 * times as long as thick), a disc fills pi/4 of a square box. */
START_TEST(shapes_are_what_their_labels_say) {
    nd_rng g = nd_rng_init(7, 0);
    nd_tensor *labels = NULL;
    const int64_t n = 600, size = 32;
    nd_tensor *x = nd_toy_shapes(n, size, &g, &labels);
    ck_assert_int_eq(x->ndim, 4);
    ck_assert_int_eq(x->shape[1], 1);
    int seen[3] = {0};
    for (int64_t k = 0; k < n; k++) {
        const float *img = nd_data(x) + k * size * size;
        int64_t r0 = size, r1 = -1, c0 = size, c1 = -1, white = 0;
        for (int64_t i = 0; i < size; i++)
            for (int64_t j = 0; j < size; j++) {
                ck_assert(img[i * size + j] == 1.0f || img[i * size + j] == -1.0f);
                if (img[i * size + j] > 0) {
                    white++;
                    r0 = i < r0 ? i : r0;
                    r1 = i > r1 ? i : r1;
                    c0 = j < c0 ? j : c0;
                    c1 = j > c1 ? j : c1;
                }
            }
        ck_assert_int_gt(white, 0);
        int64_t h = r1 - r0 + 1, w = c1 - c0 + 1;
        int cls = (int)nd_data(labels)[k];
        seen[cls]++;
        double fill = (double)white / (double)(h * w);
        if (cls == 0) {
            ck_assert_msg(h == w && fabs(fill - PI / 4) < 0.08, "disc %lld: %lldx%lld, fill %g",
                          (long long)k, (long long)h, (long long)w, fill);
        } else if (cls == 1) {
            ck_assert_msg(h == w && fill == 1.0 && h >= size / 4 && h <= size / 2,
                          "square %lld: %lldx%lld, fill %g", (long long)k, (long long)h,
                          (long long)w, fill);
        } else {
            int64_t lo = h < w ? h : w, hi = h < w ? w : h;
            ck_assert_msg(fill == 1.0 && hi >= 4 * lo && hi <= 6 * lo,
                          "bar %lld: %lldx%lld, fill %g", (long long)k, (long long)h,
                          (long long)w, fill);
        }
    }
    for (int c = 0; c < 3; c++) ck_assert_msg(seen[c] > n / 5, "class %d: %d of %lld", c, seen[c], (long long)n);
    EXPECT_FATAL(nd_toy_shapes(4, 4, &g, NULL), "nanodiff: toy_shapes: size 4 is not in 8..4096");
}
END_TEST

TCase *tcase_toy(void) {
    TCase *tc = nd_test_case("toy");
    tcase_add_test(tc, moons_lie_on_their_arcs);
    tcase_add_test(tc, ring_has_eight_gaussians);
    tcase_add_test(tc, checkerboard_fills_the_dark_cells);
    tcase_add_test(tc, pinwheel_arms_turn_with_the_radius);
    tcase_add_test(tc, swiss_roll_lies_on_its_spiral);
    tcase_add_test(tc, sets_by_name);
    tcase_add_test(tc, shapes_are_what_their_labels_say);
    return tc;
}
