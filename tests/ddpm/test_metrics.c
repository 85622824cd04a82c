/* Sample quality for points: the energy distance against a plain triple
 * loop in double and against closed forms (single points, equal sets, two
 * Gaussians a shift apart, two samples of one distribution), and the k-NN
 * precision and recall against a sort-every-row reference and against
 * sets whose answer is known; both the same for any thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ddpm/ddpm.h"
#include "helpers.h"

#define PI 3.14159265358979323846

/* coordinate k of point i, read through the strides */
static double coord(const nd_tensor *x, int64_t i, int64_t k) {
    return nd_data(x)[i * x->strides[0] + k * x->strides[1]];
}

/* |x_i - y_j|^2 in double, the coordinates summed in order */
static double sq_dist(const nd_tensor *x, int64_t i, const nd_tensor *y, int64_t j) {
    double s = 0;
    for (int64_t k = 0; k < x->shape[1]; k++) {
        double t = coord(x, i, k) - coord(y, j, k);
        s += t * t;
    }
    return s;
}

/* mean over all i, j of |x_i - y_j| */
static double mean_dist(const nd_tensor *x, const nd_tensor *y) {
    double s = 0;
    for (int64_t i = 0; i < x->shape[0]; i++)
        for (int64_t j = 0; j < y->shape[0]; j++) s += sqrt(sq_dist(x, i, y, j));
    return s / ((double)x->shape[0] * (double)y->shape[0]);
}

static bool same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ---- energy distance ------------------------------------------------------ */

/* Against the triple loop on random sets: sizes across the 256-point
 * blocks and the 16-row chunks, D from 1 to 7, a strided view. The two
 * sum in different orders: within 1e-12 of the mean distance. */
START_TEST(energy_matches_brute_force) {
    const int64_t cases[][3] = {{1, 1, 1},   {1, 5, 2},   {7, 13, 3},   {17, 16, 1},
                                {300, 257, 2}, {40, 600, 5}, {256, 255, 7}, {513, 33, 2}};
    for (int c = 0; c < 8; c++) {
        int64_t n = cases[c][0], m = cases[c][1], d = cases[c][2];
        nd_tensor *a = t_uniform(10 + c, ND_SHAPE(n, d), -2.0f, 2.0f);
        nd_tensor *b = nd_add_scalar(t_uniform(50 + c, ND_SHAPE(m, d), -1.0f, 3.0f), 0.5f);
        double ab = mean_dist(a, b), aa = mean_dist(a, a), bb = mean_dist(b, b);
        double want = 2 * ab - aa - bb, got = nd_energy_distance(a, b);
        ck_assert_msg(fabs(got - want) <= 1e-12 * ab, "case %d: %.17g vs %.17g", c, got, want);
        ck_assert(got >= 0);
        /* symmetric, up to the order of the sums */
        ck_assert(fabs(nd_energy_distance(b, a) - got) <= 1e-12 * ab);
    }
    /* points [n, D] as the transpose of [D, n]: strides (1, n) */
    nd_tensor *at = t_uniform(3, ND_SHAPE(3, 300), -1.0f, 1.0f);
    nd_tensor *a = nd_transpose(at, 0, 1), *b = t_uniform(4, ND_SHAPE(290, 3), 0.0f, 1.0f);
    ck_assert(!nd_is_contiguous(a));
    double ab = mean_dist(a, b), want = 2 * ab - mean_dist(a, a) - mean_dist(b, b);
    ck_assert(fabs(nd_energy_distance(a, b) - want) <= 1e-12 * ab);
    ck_assert(same_bits(nd_energy_distance(a, b), nd_energy_distance(nd_contiguous(a), b)));
}
END_TEST

/* Closed forms: one point against one point d away gives 2 d; {0} against
 * {-1, 1} gives 2 - 0 - 1 = 1; a set against itself or an equal copy
 * gives exactly 0. */
START_TEST(energy_closed_forms) {
    nd_tensor *p = nd_from_buffer((float[]){0.25f}, ND_SHAPE(1, 1));
    nd_tensor *q = nd_from_buffer((float[]){-1.5f}, ND_SHAPE(1, 1));
    ck_assert(nd_energy_distance(p, q) == 3.5);
    ck_assert(nd_energy_distance(q, p) == 3.5);
    nd_tensor *o = nd_zeros(ND_SHAPE(1, 2));
    nd_tensor *f = nd_from_buffer((float[]){3.0f, -4.0f}, ND_SHAPE(1, 2));
    ck_assert(nd_energy_distance(o, f) == 10.0);
    nd_tensor *pm = nd_from_buffer((float[]){-1.0f, 1.0f}, ND_SHAPE(2, 1));
    ck_assert(nd_energy_distance(nd_zeros(ND_SHAPE(1, 1)), pm) == 1.0);

    nd_rng g = nd_rng_init(7, 0);
    nd_tensor *x = nd_randn(&g, ND_SHAPE(1000, 3));
    ck_assert(nd_energy_distance(x, x) == 0.0);
    ck_assert(nd_energy_distance(x, nd_clone(x)) == 0.0);
    ck_assert(nd_energy_distance(p, p) == 0.0);
    /* the same points in another order: the sums differ in order only */
    nd_tensor *rev = nd_empty(ND_SHAPE(1000, 3));
    for (int64_t i = 0; i < 1000; i++)
        for (int k = 0; k < 3; k++) nd_data(rev)[i * 3 + k] = nd_data(x)[(999 - i) * 3 + k];
    ck_assert(fabs(nd_energy_distance(x, rev)) <= 1e-12);
}
END_TEST

/* ED(N(0, 1), N(mu, 1)) in 1-D: X - Y ~ N(-mu, 2) and X - X' ~ N(0, 2),
 * with E|N(mu, s^2)| = s sqrt(2/pi) e^(-mu^2 / 2 s^2) + mu erf(mu / s sqrt 2),
 * so ED = 4/sqrt(pi) (e^(-mu^2/4) - 1) + 2 mu erf(mu/2); the V-statistic
 * adds E|X - X'| (1/n + 1/m) = 4 / (sqrt(pi) n) on average. Over 100 seeds
 * at n = m = 2000 the estimate strayed from that with standard deviation
 * 0.00076, 0.0089, 0.017, 0.032, 0.053 at mu = 0, 0.25, 0.5, 1, 2; the
 * test allows 5 of them, and asks that the estimate grow with mu. */
START_TEST(energy_of_shifted_gaussians) {
    const double mus[5] = {0, 0.25, 0.5, 1, 2}, sd[5] = {0.00076, 0.0089, 0.017, 0.032, 0.053};
    const int64_t n = 2000;
    double last = -1;
    for (int c = 0; c < 5; c++) {
        nd_rng g = nd_rng_init(31 + c, 0);
        nd_tensor *x = nd_randn(&g, ND_SHAPE(n, 1));
        nd_tensor *y = nd_add_scalar(nd_randn(&g, ND_SHAPE(n, 1)), (float)mus[c]);
        double mu = mus[c];
        double want = 4 / sqrt(PI) * (exp(-mu * mu / 4) - 1) + 2 * mu * erf(mu / 2) +
                      4 / (sqrt(PI) * (double)n);
        double got = nd_energy_distance(x, y);
        ck_assert_msg(fabs(got - want) <= 5 * sd[c], "mu %g: %g, expected %g", mu, got, want);
        ck_assert_msg(got > last, "mu %g: %g after %g", mu, got, last);
        last = got;
    }
}
END_TEST

/* Two samples of one distribution, the 2-D standard normal: E|X - X'| =
 * sqrt(pi), so the V-statistic's mean is sqrt(pi) (1/n + 1/m), 7.1e-4 at
 * n = m = 5000 (and 0 as n grows). Over 5000 seeds at n = 300, ED over
 * that mean averaged 1.00, exceeded 3 in 0.8% of them and 5 once; the
 * test allows 6. Then the toy sets: a fresh draw of the same set is far
 * closer than another set. */
START_TEST(energy_of_one_distribution_is_small) {
    const int64_t n = 5000;
    nd_rng g = nd_rng_init(2019, 0);
    nd_tensor *x = nd_randn(&g, ND_SHAPE(n, 2)), *y = nd_randn(&g, ND_SHAPE(n, 2));
    double mean = sqrt(PI) * 2 / (double)n, got = nd_energy_distance(x, y);
    ck_assert_msg(got >= 0 && got <= 6 * mean, "%g; the V-statistic's mean is %g", got, mean);

    nd_error err;
    nd_tensor *moons, *moons2, *ring;
    ck_assert_int_eq(nd_toy_points("moons", 2000, &g, &moons, &err), ND_OK);
    ck_assert_int_eq(nd_toy_points("moons", 2000, &g, &moons2, &err), ND_OK);
    ck_assert_int_eq(nd_toy_points("ring", 2000, &g, &ring, &err), ND_OK);
    double same = nd_energy_distance(moons, moons2), other = nd_energy_distance(moons, ring);
    ck_assert_msg(same < 0.01 && other > 20 * same, "moons-moons %g, moons-ring %g", same, other);
    nd_free(moons);
    nd_free(moons2);
    nd_free(ring);
}
END_TEST

/* The same bits with 1, 2, 3 and 5 threads. */
START_TEST(energy_same_for_any_thread_count) {
    int saved = nd_get_num_threads();
    nd_tensor *a = t_uniform(1, ND_SHAPE(777, 2), -1.0f, 1.0f);
    nd_tensor *b = t_uniform(2, ND_SHAPE(600, 2), -1.0f, 2.0f);
    nd_set_num_threads(1);
    double one = nd_energy_distance(a, b);
    const int counts[3] = {2, 3, 5};
    for (int c = 0; c < 3; c++) {
        nd_set_num_threads(counts[c]);
        ck_assert_msg(same_bits(nd_energy_distance(a, b), one), "%d threads", counts[c]);
    }
    nd_set_num_threads(saved);
}
END_TEST

START_TEST(energy_not_finite_gives_nan) {
    nd_tensor *a = t_uniform(1, ND_SHAPE(20, 2), -1.0f, 1.0f);
    nd_tensor *b = t_uniform(2, ND_SHAPE(30, 2), -1.0f, 1.0f);
    nd_data(a)[7] = NAN;
    ck_assert(isnan(nd_energy_distance(a, b)));
    nd_data(a)[7] = INFINITY;
    ck_assert(isnan(nd_energy_distance(a, b)));
    ck_assert(isnan(nd_energy_distance(b, a)));
}
END_TEST

START_TEST(energy_misuse_stops) {
    nd_tensor *a = nd_zeros(ND_SHAPE(4, 2)), *b3 = nd_zeros(ND_SHAPE(4, 3));
    EXPECT_FATAL(nd_energy_distance(NULL, a), "nanodiff: energy_distance: a is NULL");
    EXPECT_FATAL(nd_energy_distance(a, NULL), "nanodiff: energy_distance: b is NULL");
    EXPECT_FATAL(nd_energy_distance(nd_zeros(ND_SHAPE(4)), a),
                 "nanodiff: energy_distance: a has shape [4]; want points [n, D]");
    EXPECT_FATAL(nd_energy_distance(a, nd_zeros(ND_SHAPE(1, 4, 2))),
                 "nanodiff: energy_distance: b has shape [1,4,2]; want points [n, D]");
    EXPECT_FATAL(nd_energy_distance(a, b3),
                 "nanodiff: energy_distance: a [4,2] and b [4,3] need at least one point "
                 "each, of the same D >= 1");
    EXPECT_FATAL(nd_energy_distance(nd_zeros(ND_SHAPE(0, 2)), a),
                 "nanodiff: energy_distance: a [0,2] and b [4,2] need at least one point "
                 "each, of the same D >= 1");
    EXPECT_FATAL(nd_energy_distance(nd_zeros(ND_SHAPE(4, 0)), nd_zeros(ND_SHAPE(4, 0))),
                 "nanodiff: energy_distance: a [4,0] and b [4,0] need at least one point "
                 "each, of the same D >= 1");
}
END_TEST

/* ---- k-NN precision and recall -------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The share of q's points within the k-NN ball of some point of c, each
 * radius found by sorting the point's distances to all the others. */
static double ref_coverage(const nd_tensor *q, const nd_tensor *c, int k) {
    int64_t n = c->shape[0];
    double *r2 = malloc((size_t)n * sizeof *r2), *row = malloc((size_t)n * sizeof *row);
    for (int64_t i = 0; i < n; i++) {
        int64_t cnt = 0;
        for (int64_t j = 0; j < n; j++)
            if (j != i) row[cnt++] = sq_dist(c, i, c, j);
        qsort(row, (size_t)cnt, sizeof *row, cmp_double);
        r2[i] = row[k - 1];
    }
    int64_t inside = 0;
    for (int64_t i = 0; i < q->shape[0]; i++)
        for (int64_t j = 0; j < n; j++)
            if (sq_dist(q, i, c, j) <= r2[j]) {
                inside++;
                break;
            }
    free(r2);
    free(row);
    return (double)inside / (double)q->shape[0];
}

static void knn(const nd_tensor *real, const nd_tensor *fake, int k, double *p, double *r) {
    nd_error err;
    int rc = nd_knn_precision_recall(real, fake, k, p, r, &err);
    ck_assert_msg(rc == ND_OK, "%s", err.message);
}

/* The fake set is the real one: every point is in its own ball. Also with
 * repeated points, and k = 1 and k = n - 1. */
START_TEST(knn_fake_equal_to_real) {
    nd_rng g = nd_rng_init(5, 0);
    nd_tensor *x = nd_randn(&g, ND_SHAPE(500, 2));
    const int ks[3] = {1, 5, 499};
    for (int c = 0; c < 3; c++) {
        double p, r;
        knn(x, x, ks[c], &p, &r);
        ck_assert_msg(p == 1.0 && r == 1.0, "k %d: %g, %g", ks[c], p, r);
        knn(x, nd_clone(x), ks[c], &p, &r);
        ck_assert(p == 1.0 && r == 1.0);
    }
    /* 100 points, each value 4 times: radii 0 for k <= 3 */
    nd_tensor *dup = nd_empty(ND_SHAPE(100, 3));
    for (int64_t i = 0; i < 300; i++) nd_data(dup)[i] = (float)((i / 3) % 25);
    double p, r;
    knn(dup, dup, 3, &p, &r);
    ck_assert(p == 1.0 && r == 1.0);
}
END_TEST

/* The fake set is the real one moved far away: no ball reaches the other
 * set. */
START_TEST(knn_fake_far_away) {
    nd_rng g = nd_rng_init(6, 0);
    nd_tensor *x = nd_randn(&g, ND_SHAPE(400, 2));
    nd_tensor *far = nd_add_scalar(nd_randn(&g, ND_SHAPE(300, 2)), 100.0f);
    double p, r;
    knn(x, far, 5, &p, &r);
    ck_assert_msg(p == 0.0 && r == 0.0, "%g, %g", p, r);
}
END_TEST

/* Four squares 10 apart, 250 uniform points each; the fake points cover
 * the first two only. As a subset of the real points: precision exactly 1,
 * recall exactly 1/2. As a fresh draw from those two squares: precision
 * near 1 (the few fresh points outside every ball lie near the edges),
 * recall near 1/2 and never above. */
static nd_tensor *squares(uint64_t seed, int64_t per, int count) {
    nd_tensor *x = t_uniform(seed, ND_SHAPE(per * count, 2), -0.5f, 0.5f);
    for (int64_t i = 0; i < per * count; i++) {
        int sq = (int)(i / per);
        nd_data(x)[2 * i] += 10.0f * (float)(sq % 2);
        nd_data(x)[2 * i + 1] += 10.0f * (float)(sq / 2);
    }
    return x;
}

START_TEST(knn_half_the_clusters) {
    nd_tensor *real = squares(1, 250, 4);
    nd_tensor *half = nd_slice(real, 0, 0, 500, 1);
    double p, r;
    knn(real, half, 5, &p, &r);
    ck_assert_msg(p == 1.0 && r == 0.5, "%g, %g", p, r);
    nd_tensor *fresh = squares(2, 250, 2);
    knn(real, fresh, 5, &p, &r);
    ck_assert_msg(p >= 0.95 && r >= 0.45 && r <= 0.5, "%g, %g", p, r);
    ck_assert(p == ref_coverage(fresh, real, 5) && r == ref_coverage(real, fresh, 5));
}
END_TEST

/* x rounded down to whole numbers, in place */
static nd_tensor *grid(nd_tensor *x) {
    for (int64_t i = 0; i < nd_numel(x); i++) nd_data(x)[i] = floorf(nd_data(x)[i]);
    return x;
}

/* Against the sort-every-row reference, exactly (the same squared
 * distances compared): sizes across the blocks and chunks, D 1 to 6, k
 * from 1 to n - 1, points on a coarse grid (ties everywhere), a strided
 * view; and the same for 1, 2 and 3 threads. */
START_TEST(knn_matches_brute_force) {
    const int64_t cases[][4] = {{2, 2, 1, 1},    {10, 7, 2, 3},    {300, 260, 2, 5},
                                {257, 513, 3, 1}, {100, 90, 6, 10}, {60, 40, 1, 39},
                                {33, 300, 2, 32}};
    int saved = nd_get_num_threads();
    for (int c = 0; c < 7; c++) {
        int64_t n = cases[c][0], m = cases[c][1], d = cases[c][2];
        int k = (int)cases[c][3];
        nd_tensor *real = t_uniform(20 + c, ND_SHAPE(n, d), -1.0f, 1.0f);
        nd_tensor *fake = nd_add_scalar(t_uniform(40 + c, ND_SHAPE(m, d), -1.0f, 1.0f), 0.3f);
        double want_p = ref_coverage(fake, real, k), want_r = ref_coverage(real, fake, k);
        for (int th = 1; th <= 3; th++) {
            nd_set_num_threads(th);
            double p, r;
            knn(real, fake, k, &p, &r);
            ck_assert_msg(p == want_p && r == want_r, "case %d, %d threads: %g, %g vs %g, %g",
                          c, th, p, r, want_p, want_r);
        }
    }
    nd_set_num_threads(saved);
    /* points on grids of 5 x 5 and 6 x 6: many equal distances and radii */
    nd_tensor *gr = grid(t_uniform(8, ND_SHAPE(200, 2), 0.0f, 5.0f));
    nd_tensor *gf = grid(t_uniform(9, ND_SHAPE(150, 2), 0.0f, 6.0f));
    for (int k = 1; k <= 20; k += 3) {
        double p, r;
        knn(gr, gf, k, &p, &r);
        ck_assert(p == ref_coverage(gf, gr, k) && r == ref_coverage(gr, gf, k));
    }
    /* real as the transpose of [2, n] */
    nd_tensor *rt = nd_transpose(t_uniform(10, ND_SHAPE(2, 300), -1.0f, 1.0f), 0, 1);
    nd_tensor *f = t_uniform(11, ND_SHAPE(280, 2), -1.0f, 1.2f);
    double p, r;
    knn(rt, f, 4, &p, &r);
    ck_assert(p == ref_coverage(f, rt, 4) && r == ref_coverage(rt, f, 4));
    ck_assert(p > 0.5 && p < 1 && r > 0.5 && r < 1);
}
END_TEST

/* ND_ERR with a message, both figures NaN: bad k, sets of different D or
 * none, coordinates that are not finite. */
START_TEST(knn_errors) {
    nd_tensor *a = t_uniform(1, ND_SHAPE(6, 2), 0.0f, 1.0f);
    nd_tensor *b = t_uniform(2, ND_SHAPE(4, 2), 0.0f, 1.0f);
    nd_error err;
    double p = 0, r = 0;
    ck_assert_int_eq(nd_knn_precision_recall(a, b, 0, &p, &r, &err), ND_ERR);
    ck_assert_str_eq(err.message, "knn precision/recall: k = 0; want k >= 1");
    ck_assert(isnan(p) && isnan(r));
    ck_assert_int_eq(nd_knn_precision_recall(a, b, -3, &p, &r, &err), ND_ERR);
    ck_assert_int_eq(nd_knn_precision_recall(a, b, 4, &p, &r, &err), ND_ERR);
    ck_assert_str_eq(err.message, "knn precision/recall: k = 4 needs more than k points in "
                                  "each set; real has 6, fake 4");
    ck_assert_int_eq(nd_knn_precision_recall(b, a, 4, &p, &r, &err), ND_ERR);
    ck_assert_str_eq(err.message, "knn precision/recall: k = 4 needs more than k points in "
                                  "each set; real has 4, fake 6");
    ck_assert_int_eq(nd_knn_precision_recall(a, a, 6, &p, &r, &err), ND_ERR);
    ck_assert_int_eq(nd_knn_precision_recall(a, a, 5, &p, &r, &err), ND_OK);
    ck_assert(p == 1.0 && r == 1.0);
    ck_assert_int_eq(nd_knn_precision_recall(a, nd_zeros(ND_SHAPE(0, 2)), 1, &p, &r, &err),
                     ND_ERR);
    ck_assert_int_eq(nd_knn_precision_recall(a, nd_zeros(ND_SHAPE(6, 3)), 1, &p, &r, &err),
                     ND_ERR);
    ck_assert_str_eq(err.message,
                     "knn precision/recall: real points have 2 coordinates, fake points 3");
    ck_assert(isnan(p) && isnan(r));
    ck_assert_int_eq(
        nd_knn_precision_recall(nd_zeros(ND_SHAPE(6, 0)), nd_zeros(ND_SHAPE(6, 0)), 1, &p, &r,
                                &err),
        ND_ERR);
    ck_assert_str_eq(err.message, "knn precision/recall: the points have no coordinates");
    nd_tensor *bad = nd_clone(b);
    nd_data(bad)[5] = -NAN;
    ck_assert_int_eq(nd_knn_precision_recall(a, bad, 1, &p, &r, &err), ND_ERR);
    ck_assert_str_eq(err.message, "knn precision/recall: fake[2, 1] is nan");
    nd_data(bad)[5] = INFINITY;
    ck_assert_int_eq(nd_knn_precision_recall(a, bad, 1, &p, &r, &err), ND_ERR);
    ck_assert_str_eq(err.message, "knn precision/recall: fake[2, 1] is inf");
    nd_data(bad)[5] = -INFINITY;
    ck_assert_int_eq(nd_knn_precision_recall(bad, a, 1, &p, &r, &err), ND_ERR);
    ck_assert_str_eq(err.message, "knn precision/recall: real[2, 1] is -inf");
    ck_assert(isnan(p) && isnan(r));
    /* err may be NULL */
    ck_assert_int_eq(nd_knn_precision_recall(a, b, 0, &p, &r, NULL), ND_ERR);
}
END_TEST

START_TEST(knn_misuse_stops) {
    nd_tensor *a = nd_zeros(ND_SHAPE(6, 2));
    double p, r;
    nd_error err;
    EXPECT_FATAL(nd_knn_precision_recall(NULL, a, 1, &p, &r, &err),
                 "nanodiff: knn_precision_recall: real is NULL");
    EXPECT_FATAL(nd_knn_precision_recall(a, NULL, 1, &p, &r, &err),
                 "nanodiff: knn_precision_recall: fake is NULL");
    EXPECT_FATAL(nd_knn_precision_recall(a, a, 1, NULL, &r, &err),
                 "nanodiff: knn_precision_recall: precision or recall is NULL");
    EXPECT_FATAL(nd_knn_precision_recall(a, a, 1, &p, NULL, &err),
                 "nanodiff: knn_precision_recall: precision or recall is NULL");
    EXPECT_FATAL(nd_knn_precision_recall(nd_zeros(ND_SHAPE(12)), a, 1, &p, &r, &err),
                 "nanodiff: knn_precision_recall: real has shape [12]; want points [n, D]");
    EXPECT_FATAL(nd_knn_precision_recall(a, nd_zeros(ND_SHAPE(2, 3, 2)), 1, &p, &r, &err),
                 "nanodiff: knn_precision_recall: fake has shape [2,3,2]; want points [n, D]");
}
END_TEST

TCase *tcase_metrics(void) {
    TCase *tc = nd_test_case("metrics");
    tcase_add_test(tc, energy_matches_brute_force);
    tcase_add_test(tc, energy_closed_forms);
    tcase_add_test(tc, energy_of_shifted_gaussians);
    tcase_add_test(tc, energy_of_one_distribution_is_small);
    tcase_add_test(tc, energy_same_for_any_thread_count);
    tcase_add_test(tc, energy_not_finite_gives_nan);
    tcase_add_test(tc, energy_misuse_stops);
    tcase_add_test(tc, knn_fake_equal_to_real);
    tcase_add_test(tc, knn_fake_far_away);
    tcase_add_test(tc, knn_half_the_clusters);
    tcase_add_test(tc, knn_matches_brute_force);
    tcase_add_test(tc, knn_errors);
    tcase_add_test(tc, knn_misuse_stops);
    return tc;
}
