/* Sample quality for points: the energy distance against a plain triple
 * loop in double and against closed forms (single points, equal sets, two
 * Gaussians a shift apart, two samples of one distribution), and the k-NN
 * precision and recall against a sort-every-row reference and against
 * sets whose answer is known; both the same for any thread count. The
 * symmetric eigen-decomposition and square root against matrices built
 * from chosen eigenvalues, and the Frechet distance against closed forms
 * (diagonal, commuting and 2-D covariances) and a Newton-Schulz square
 * root. */
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

/* ---- symmetric eigen-decomposition and square root ------------------------ */

/* element i of a uniform stream in [-1, 1), in double */
static double unif(uint64_t seed, uint64_t i) { return 2.0 * nd_rand_at(seed, 3, i) - 1.0; }

/* a zero n x n matrix (n at most 1024) */
static double *new_mat(int64_t n) {
    ck_assert(n >= 1 && n <= 1024);
    return calloc((size_t)n * (size_t)n, sizeof(double));
}

/* A random symmetric n x n matrix, entries uniform in [-1, 1). */
static double *rand_symmetric(uint64_t seed, int64_t n) {
    double *a = new_mat(n);
    uint64_t c = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i; j < n; j++) a[i * n + j] = a[j * n + i] = unif(seed, c++);
    return a;
}

/* A random orthogonal n x n matrix: the rows of a Gaussian matrix made
 * orthonormal by Gram-Schmidt, run twice over each row. */
static double *rand_orthogonal(uint64_t seed, int64_t n) {
    double *q = new_mat(n);
    for (int64_t i = 0; i < n * n; i++) q[i] = nd_randn_at(seed, 4, (uint64_t)i);
    for (int64_t i = 0; i < n; i++) {
        double *qi = q + i * n;
        for (int pass = 0; pass < 2; pass++)
            for (int64_t j = 0; j < i; j++) {
                double dot = 0;
                for (int64_t k = 0; k < n; k++) dot += qi[k] * q[j * n + k];
                for (int64_t k = 0; k < n; k++) qi[k] -= dot * q[j * n + k];
            }
        double norm = 0;
        for (int64_t k = 0; k < n; k++) norm += qi[k] * qi[k];
        for (int64_t k = 0; k < n; k++) qi[k] /= sqrt(norm);
    }
    return q;
}

/* Q diag(w) Q^T */
static double *from_eigen(int64_t n, const double *q, const double *w) {
    double *a = new_mat(n);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            for (int64_t k = 0; k < n; k++) a[i * n + j] += q[i * n + k] * w[k] * q[j * n + k];
    return a;
}

/* z = x y, [n, n] */
static void mul(int64_t n, const double *x, const double *y, double *z) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t k = 0; k < n; k++) s += x[i * n + k] * y[k * n + j];
            z[i * n + j] = s;
        }
}

static double max_abs(const double *x, int64_t count) {
    double m = 0;
    for (int64_t i = 0; i < count; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* max |x - y| over count entries */
static double max_diff(const double *x, const double *y, int64_t count) {
    double m = 0;
    for (int64_t i = 0; i < count; i++) m = fmax(m, fabs(x[i] - y[i]));
    return m;
}

static void eigen(int64_t n, const double *a, double *w, double *v) {
    nd_error err;
    int rc = nd_symmetric_eigen(n, a, w, v, &err);
    ck_assert_msg(rc == ND_OK, "%s", err.message);
}

/* w, v decompose a: w ascending, V^T V = I to 1e-12 and V diag(w) V^T = a
 * to 1e-10 of a's largest entry, each eigenvector signed as promised. */
static void check_decomposition(int64_t n, const double *a, const double *w, const double *v,
                                uint64_t seed) {
    for (int64_t k = 1; k < n; k++)
        ck_assert_msg(w[k - 1] <= w[k], "n %lld seed %llu: w[%lld] %.17g > w[%lld] %.17g",
                      (long long)n, (unsigned long long)seed, (long long)k - 1, w[k - 1],
                      (long long)k, w[k]);
    double orth = 0, rec = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double vtv = 0, vwv = 0;
            for (int64_t k = 0; k < n; k++) {
                vtv += v[k * n + i] * v[k * n + j];
                vwv += v[i * n + k] * w[k] * v[j * n + k];
            }
            orth = fmax(orth, fabs(vtv - (i == j)));
            rec = fmax(rec, fabs(vwv - a[i * n + j]));
        }
    /* each eigenvector's largest component (the first of equals) is positive */
    for (int64_t k = 0; k < n; k++) {
        int64_t big = 0;
        for (int64_t i = 1; i < n; i++)
            if (fabs(v[i * n + k]) > fabs(v[big * n + k])) big = i;
        ck_assert_msg(v[big * n + k] > 0, "n %lld seed %llu: eigenvector %lld", (long long)n,
                      (unsigned long long)seed, (long long)k);
    }
    double scale = max_abs(a, n * n);
    ck_assert_msg(orth <= 1e-12, "n %lld seed %llu: |V^T V - I| = %g", (long long)n,
                  (unsigned long long)seed, orth);
    ck_assert_msg(rec <= 1e-10 * scale, "n %lld seed %llu: |V diag(w) V^T - A| = %g of %g",
                  (long long)n, (unsigned long long)seed, rec, scale);
}

/* Random symmetric matrices of n = 1 to 40, three seeds each: sorted,
 * orthonormal, and reconstructing A. The values alone are the same bits,
 * and a may be the eigenvectors' buffer. */
START_TEST(eigen_random_symmetric) {
    for (int64_t n = 1; n <= 40; n++)
        for (uint64_t s = 0; s < 3; s++) {
            uint64_t seed = 1000 * (uint64_t)n + s;
            double *a = rand_symmetric(seed, n), *v = new_mat(n), *w = malloc(n * sizeof *w);
            double *w2 = malloc(n * sizeof *w2), *v2 = new_mat(n);
            eigen(n, a, w, v);
            check_decomposition(n, a, w, v, seed);
            eigen(n, a, w2, NULL);
            ck_assert_msg(memcmp(w, w2, n * sizeof *w) == 0, "n %lld seed %llu", (long long)n,
                          (unsigned long long)seed);
            memcpy(v2, a, n * n * sizeof *a);
            eigen(n, v2, w2, v2);
            ck_assert(memcmp(w, w2, n * sizeof *w) == 0 && memcmp(v, v2, n * n * sizeof *v) == 0);
            free(a), free(v), free(w), free(w2), free(v2);
        }
}
END_TEST

/* Eigenvalues known in advance: a diagonal matrix (no rotation: exact, the
 * eigenvectors the unit vectors, equal eigenvalues in their order); 2 x 2
 * matrices against (a + c)/2 -+ hypot((a - c)/2, b); and Q diag(w) Q^T for
 * a random orthogonal Q and chosen w, a threefold one among them, with
 * the eigenvectors Q's columns up to sign (the threefold one's span). */
START_TEST(eigen_known_values) {
    double d[25] = {0}, w[5], v[25];
    const double diag[5] = {3, -1, 2, 0, -1};
    for (int i = 0; i < 5; i++) d[i * 5 + i] = diag[i];
    eigen(5, d, w, v);
    const double want_w[5] = {-1, -1, 0, 2, 3};
    const int at[5] = {1, 4, 3, 2, 0}; /* eigenvector k is e_at[k] */
    for (int k = 0; k < 5; k++) {
        ck_assert(w[k] == want_w[k]);
        for (int i = 0; i < 5; i++) ck_assert(v[i * 5 + k] == (i == at[k] ? 1.0 : 0.0));
    }

    const double two[][3] = {{2, 1, 2},     {1, 1e-9, -3}, {0, -1, 0},
                             {5, 1e-300, 5}, {-4, 3, 7},    {1e-3, 2e-3, 1e3}};
    for (int c = 0; c < 6; c++) {
        double a = two[c][0], b = two[c][1], cc = two[c][2];
        double m[4] = {a, b, b, cc}, w2[2], v2[4];
        eigen(2, m, w2, v2);
        double h = hypot((a - cc) / 2, b), lo = (a + cc) / 2 - h, hi = (a + cc) / 2 + h;
        double scale = fmax(fabs(lo), fabs(hi));
        ck_assert_msg(fabs(w2[0] - lo) <= 1e-15 * scale && fabs(w2[1] - hi) <= 1e-15 * scale,
                      "case %d: %.17g %.17g, want %.17g %.17g", c, w2[0], w2[1], lo, hi);
        /* (b, hi - a) and (lo - cc, b) point along the eigenvectors */
        double u[2] = {hi - cc, b}, len = hypot(u[0], u[1]);
        if (len == 0) u[0] = 1, len = 1; /* b = 0 and cc the larger */
        double cosine = (v2[1] * u[0] + v2[3] * u[1]) / len;
        ck_assert_msg(fabs(fabs(cosine) - 1) <= 1e-14, "case %d: %.17g", c, cosine);
    }

    const int64_t n = 12;
    const double chosen[12] = {-3, -1e-3, 0, 0.5, 0.5, 0.5, 1, 2, 7, 7.5, 10, 100};
    double *q = rand_orthogonal(77, n);
    /* eigenvector k as column k of q, taken in a mixed order */
    const int col[12] = {5, 0, 11, 3, 8, 1, 10, 2, 7, 4, 9, 6};
    double wk[12];
    for (int k = 0; k < 12; k++) wk[col[k]] = chosen[k];
    double *a = from_eigen(n, q, wk), *vv = new_mat(n), ww[12];
    eigen(n, a, ww, vv);
    check_decomposition(n, a, ww, vv, 77);
    for (int k = 0; k < 12; k++) {
        ck_assert_msg(fabs(ww[k] - chosen[k]) <= 1e-13 * 100, "%d: %.17g", k, ww[k]);
        if (k >= 3 && k <= 5) continue;
        double cosine = 0;
        for (int64_t i = 0; i < n; i++) cosine += vv[i * n + k] * q[i * n + col[k]];
        ck_assert_msg(fabs(fabs(cosine) - 1) <= 1e-10, "%d: %.17g", k, cosine);
    }
    /* the projection onto the eigenspace of 0.5 */
    double worst = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double got = 0, want = 0;
            for (int k = 3; k <= 5; k++) {
                got += vv[i * n + k] * vv[j * n + k];
                want += q[i * n + col[k]] * q[j * n + col[k]];
            }
            worst = fmax(worst, fabs(got - want));
        }
    ck_assert_msg(worst <= 1e-10, "%g", worst);
    free(q), free(a), free(vv);
}
END_TEST

/* Scaled by 2^-1000 or 2^1000 (entries near the ends of double's range),
 * the eigenvalues scale exactly and the eigenvectors stay the same bits;
 * a sum beyond the range is ND_ERR. */
START_TEST(eigen_scaled_matrices) {
    const int64_t n = 9;
    double *a = rand_symmetric(5, n), *s = new_mat(n), *v = new_mat(n), *vs = new_mat(n);
    double w[9], ws[9];
    eigen(n, a, w, v);
    const int powers[2] = {-1000, 1000};
    for (int p = 0; p < 2; p++) {
        for (int64_t i = 0; i < n * n; i++) s[i] = ldexp(a[i], powers[p]);
        eigen(n, s, ws, vs);
        for (int k = 0; k < n; k++) ck_assert(ws[k] == ldexp(w[k], powers[p]));
        ck_assert(memcmp(v, vs, n * n * sizeof *v) == 0);
    }
    double big[4] = {1e308, 1e308, 1e308, 1e308}, wb[2], vb[4];
    nd_error err;
    ck_assert_int_eq(nd_symmetric_eigen(2, big, wb, vb, &err), ND_ERR);
    ck_assert_str_eq(err.message, "symmetric eigen: an eigenvalue is beyond the range of double");
    ck_assert(isnan(wb[0]) && isnan(wb[1]) && isnan(vb[0]) && isnan(vb[3]));
    free(a), free(s), free(v), free(vs);
}
END_TEST

/* ND_ERR with a message, the outputs NaN: entries that are not finite, a
 * matrix that is not symmetric; a tiny asymmetry is averaged away; misuse
 * stops. */
START_TEST(eigen_errors) {
    double w[3], v[9];
    nd_error err;
    double a[9] = {1, 2, 3, 2, 5, NAN, 3, 6, 9};
    ck_assert_int_eq(nd_symmetric_eigen(3, a, w, v, &err), ND_ERR);
    ck_assert_str_eq(err.message, "symmetric eigen: a[1, 2] is nan");
    ck_assert(isnan(w[0]) && isnan(w[2]) && isnan(v[0]) && isnan(v[8]));
    a[5] = 6;
    a[6] = -INFINITY;
    ck_assert_int_eq(nd_symmetric_eigen(3, a, w, NULL, &err), ND_ERR);
    ck_assert_str_eq(err.message, "symmetric eigen: a[2, 0] is -inf");
    a[6] = 3.5;
    ck_assert_int_eq(nd_symmetric_eigen(3, a, w, v, &err), ND_ERR);
    ck_assert_str_eq(err.message, "symmetric eigen: a[0, 2] = 3 but a[2, 0] = 3.5; not "
                                  "symmetric (allowed: 1e-10 of the largest |entry|, 9)");
    ck_assert(isnan(w[1]) && isnan(v[4]));
    ck_assert_int_eq(nd_symmetric_eigen(3, a, w, v, NULL), ND_ERR);
    /* 1e-12 apart is rounding: decomposed as the average */
    a[6] = 3 + 1e-12;
    double avg[9], w2[3], v2[9];
    memcpy(avg, a, sizeof a);
    avg[2] = avg[6] = 0.5 * a[2] + 0.5 * a[6];
    eigen(3, a, w, v);
    eigen(3, avg, w2, v2);
    ck_assert(memcmp(w, w2, sizeof w) == 0 && memcmp(v, v2, sizeof v) == 0);

    EXPECT_FATAL(nd_symmetric_eigen(3, NULL, w, v, &err),
                 "nanodiff: symmetric_eigen: a or eigenvalues is NULL");
    EXPECT_FATAL(nd_symmetric_eigen(3, a, NULL, v, &err),
                 "nanodiff: symmetric_eigen: a or eigenvalues is NULL");
    EXPECT_FATAL(nd_symmetric_eigen(0, a, w, v, &err),
                 "nanodiff: symmetric_eigen: n = 0; want n >= 1");
    EXPECT_FATAL(nd_symmetric_eigen(-2, a, w, v, &err),
                 "nanodiff: symmetric_eigen: n = -2; want n >= 1");
}
END_TEST

static void sqrtm(int64_t n, const double *a, double *root) {
    nd_error err;
    int rc = nd_sqrtm_psd(n, a, root, &err);
    ck_assert_msg(rc == ND_OK, "%s", err.message);
}

/* A = Q diag(w) Q^T with w in [0.1, 10), n = 1 to 20: the root is Q
 * diag(sqrt w) Q^T to 1e-12, exactly symmetric, and squares back to A to
 * 1e-10 of A's largest entry; likewise B B^T for a random B. 9 -> 3
 * exactly; and the root may be written over a. */
START_TEST(sqrtm_of_spd) {
    for (int64_t n = 1; n <= 20; n++) {
        uint64_t seed = 300 + (uint64_t)n;
        double *q = rand_orthogonal(seed, n), *w = malloc(n * sizeof *w);
        double *r = malloc(n * sizeof *r);
        for (int64_t k = 0; k < n; k++) {
            w[k] = 5.05 + 4.95 * unif(seed, (uint64_t)k);
            r[k] = sqrt(w[k]);
        }
        double *a = from_eigen(n, q, w), *want = from_eigen(n, q, r);
        double *root = new_mat(n), *sq = new_mat(n);
        sqrtm(n, a, root);
        ck_assert_msg(max_diff(root, want, n * n) <= 1e-12 * max_abs(want, n * n),
                      "n %lld seed %llu: %g", (long long)n, (unsigned long long)seed,
                      max_diff(root, want, n * n));
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) ck_assert(root[i * n + j] == root[j * n + i]);
        mul(n, root, root, sq);
        ck_assert_msg(max_diff(sq, a, n * n) <= 1e-10 * max_abs(a, n * n),
                      "n %lld seed %llu: %g", (long long)n, (unsigned long long)seed,
                      max_diff(sq, a, n * n));
        /* in place */
        sqrtm(n, a, a);
        ck_assert(memcmp(a, root, n * n * sizeof *a) == 0);
        free(q), free(w), free(r), free(a), free(want), free(root), free(sq);
    }
    const int64_t n = 30;
    double *b = new_mat(n), *a = new_mat(n), *root = new_mat(n), *sq = new_mat(n);
    for (int64_t i = 0; i < n * n; i++) b[i] = unif(31, (uint64_t)i);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            for (int64_t k = 0; k < n; k++) a[i * n + j] += b[i * n + k] * b[j * n + k];
    sqrtm(n, a, root);
    mul(n, root, root, sq);
    ck_assert(max_diff(sq, a, n * n) <= 1e-10 * max_abs(a, n * n));
    double nine = 9, three;
    sqrtm(1, &nine, &three);
    ck_assert(three == 3);
    free(b), free(a), free(root), free(sq);
}
END_TEST

/* Positive semidefinite but singular: eigenvalues that come out a rounding
 * below 0 count as 0 (no NaN), the root squares back to A, and is Q
 * diag(sqrt w) Q^T to the 1e-8 that square roots near 0 allow. An
 * eigenvalue of -1e-15 next to 4 is rounding, -1e-3 is ND_ERR. */
START_TEST(sqrtm_of_singular_and_negative) {
    const int64_t n = 7;
    const double w[7] = {0, 0, 0, 1, 4, 9, 0}, r[7] = {0, 0, 0, 1, 2, 3, 0};
    for (uint64_t seed = 0; seed < 5; seed++) {
        double *q = rand_orthogonal(seed, n), *a = from_eigen(n, q, w);
        double *want = from_eigen(n, q, r), *root = new_mat(n), *sq = new_mat(n);
        sqrtm(n, a, root);
        mul(n, root, root, sq);
        ck_assert_msg(max_diff(sq, a, n * n) <= 1e-10 * max_abs(a, n * n), "seed %llu: %g",
                      (unsigned long long)seed, max_diff(sq, a, n * n));
        ck_assert_msg(max_diff(root, want, n * n) <= 1e-7, "seed %llu: %g",
                      (unsigned long long)seed, max_diff(root, want, n * n));
        free(q), free(a), free(want), free(root), free(sq);
    }
    double d[9] = {4, 0, 0, 0, -1e-15, 0, 0, 0, 1}, root[9];
    sqrtm(3, d, root);
    const double want[9] = {2, 0, 0, 0, 0, 0, 0, 0, 1};
    ck_assert(memcmp(root, want, sizeof root) == 0);
    d[4] = -1e-3;
    nd_error err;
    ck_assert_int_eq(nd_sqrtm_psd(3, d, root, &err), ND_ERR);
    ck_assert_str_eq(err.message,
                     "sqrtm: a has the eigenvalue -0.001, -0.00025 times its largest "
                     "|eigenvalue| (4), more negative than rounding (1e-10) explains: not "
                     "positive semidefinite");
    ck_assert(isnan(root[0]) && isnan(root[8]));
    double neg = -1, out;
    ck_assert_int_eq(nd_sqrtm_psd(1, &neg, &out, NULL), ND_ERR);
    ck_assert(isnan(out));
    d[4] = NAN;
    ck_assert_int_eq(nd_sqrtm_psd(3, d, root, &err), ND_ERR);
    ck_assert_str_eq(err.message, "sqrtm: a[1, 1] is nan");
    EXPECT_FATAL(nd_sqrtm_psd(3, NULL, root, &err), "nanodiff: sqrtm_psd: a or root is NULL");
    EXPECT_FATAL(nd_sqrtm_psd(3, d, NULL, &err), "nanodiff: sqrtm_psd: a or root is NULL");
    EXPECT_FATAL(nd_sqrtm_psd(0, d, root, &err), "nanodiff: sqrtm_psd: n = 0; want n >= 1");
}
END_TEST

/* ---- Frechet distance ----------------------------------------------------- */

/* The mean [d] and the unbiased covariance [d, d] of points x in double,
 * entry by entry. */
static void sample_stats(const nd_tensor *x, double *mu, double *cov) {
    int64_t n = x->shape[0], d = x->shape[1];
    for (int64_t k = 0; k < d; k++) {
        mu[k] = 0;
        for (int64_t i = 0; i < n; i++) mu[k] += coord(x, i, k);
        mu[k] /= (double)n;
    }
    for (int64_t j = 0; j < d; j++)
        for (int64_t k = 0; k < d; k++) {
            double s = 0;
            for (int64_t i = 0; i < n; i++)
                s += (coord(x, i, j) - mu[j]) * (coord(x, i, k) - mu[k]);
            cov[j * d + k] = s / (double)(n - 1);
        }
}

static double frechet(const nd_tensor *a, const nd_tensor *b) {
    nd_error err;
    double d2;
    int rc = nd_frechet_distance(a, b, &d2, &err);
    ck_assert_msg(rc == ND_OK, "%s", err.message);
    return d2;
}

/* n points mu + z L, z standard normal, mu [d] and L [d, d] uniform in
 * [-1, 1) (L's diagonal 1 more), from seed */
static nd_tensor *gaussian_set(uint64_t seed, int64_t n, int64_t d) {
    nd_rng g = nd_rng_init(seed, 0);
    nd_tensor *z = nd_randn(&g, ND_SHAPE(n, d)), *x = nd_empty(ND_SHAPE(n, d));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            double s = unif(seed, (uint64_t)(d * d + j));
            for (int64_t k = 0; k < d; k++)
                s += nd_data(z)[i * d + k] * (unif(seed, (uint64_t)(k * d + j)) + (k == j));
            nd_data(x)[i * d + j] = (float)s;
        }
    return x;
}

/* x with its rows in reverse order */
static nd_tensor *reversed(const nd_tensor *x) {
    int64_t n = x->shape[0], d = x->shape[1];
    nd_tensor *r = nd_empty(ND_SHAPE(n, d));
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < d; k++) nd_data(r)[i * d + k] = (float)coord(x, n - 1 - i, k);
    return r;
}

/* A set against itself, an equal copy, or its rows reversed: 0 to 1e-9.
 * (What rounding leaves is about 2^-52 |S| cond(S): 2e-11 here, with tr S
 * 97 and cond(S) 2e4.) A strided view gives the same bits as its
 * contiguous copy. */
START_TEST(frechet_of_a_set_with_itself) {
    nd_tensor *x = gaussian_set(1, 1000, 16);
    double same = frechet(x, x);
    ck_assert_msg(same >= 0 && same <= 1e-9, "%g", same);
    ck_assert(same_bits(frechet(x, nd_clone(x)), same));
    double rev = frechet(x, reversed(x));
    ck_assert_msg(rev >= 0 && rev <= 1e-9, "%g", rev);
    nd_tensor *xt = nd_contiguous(nd_transpose(x, 0, 1));
    nd_tensor *view = nd_transpose(xt, 0, 1);
    ck_assert(!nd_is_contiguous(view));
    nd_tensor *y = gaussian_set(2, 300, 16);
    ck_assert(same_bits(frechet(view, y), frechet(x, y)));
    ck_assert(frechet(x, y) > 1);
}
END_TEST

/* n = 2^bits points whose coordinate j is mu_j + c_j w_2j+1(i) +
 * c'_j w_2j+2(i), w_s(i) = (-1)^popcount(i & s) the Walsh functions:
 * coordinates uncorrelated exactly, so the sample covariance is diagonal.
 * mu in eighths, c in sixteenths: exact in float. */
static double walsh(int64_t s, int64_t i) {
    int parity = 0;
    for (int64_t bits = s & i; bits; bits >>= 1) parity ^= (int)(bits & 1);
    return parity ? -1.0 : 1.0;
}

static nd_tensor *walsh_set(uint64_t seed, int bits, int64_t d) {
    int64_t n = (int64_t)1 << bits;
    nd_tensor *x = nd_empty(ND_SHAPE(n, d));
    for (int64_t j = 0; j < d; j++) {
        double mu = floor(16 * unif(seed, (uint64_t)(3 * j))) / 8;
        double c1 = (1 + floor(12 * (1 + unif(seed, (uint64_t)(3 * j + 1))))) / 16;
        double c2 = floor(12 * (1 + unif(seed, (uint64_t)(3 * j + 2)))) / 16;
        for (int64_t i = 0; i < n; i++) {
            double v = mu + c1 * walsh(2 * j + 1, i) + c2 * walsh(2 * j + 2, i);
            nd_data(x)[i * d + j] = (float)v;
        }
    }
    return x;
}

/* sum (mu_a - mu_b)^2 + sum (sqrt(s_a) - sqrt(s_b))^2 over the coordinates,
 * with s_a, s_b = diag(Q^T S Q): the distance when Q^T S_a Q and Q^T S_b Q
 * are diagonal (Q = NULL for I). */
static double commuting_form(const nd_tensor *a, const nd_tensor *b, const double *q) {
    int64_t d = a->shape[1];
    double *mu_a = malloc(d * sizeof *mu_a), *mu_b = malloc(d * sizeof *mu_b);
    double *s_a = new_mat(d), *s_b = new_mat(d);
    sample_stats(a, mu_a, s_a);
    sample_stats(b, mu_b, s_b);
    double sum = 0;
    for (int64_t k = 0; k < d; k++) {
        double t = mu_a[k] - mu_b[k], da = 0, db = 0;
        for (int64_t i = 0; i < d; i++)
            for (int64_t j = 0; j < d; j++) {
                double qq = q ? q[i * d + k] * q[j * d + k] : (i == k && j == k);
                da += qq * s_a[i * d + j];
                db += qq * s_b[i * d + j];
            }
        double r = sqrt(da) - sqrt(db);
        sum += t * t + r * r;
    }
    free(mu_a), free(mu_b), free(s_a), free(s_b);
    return sum;
}

/* Diagonal sample covariances: the closed form, from the sets' own
 * sample means and (n - 1) variances, to 1e-12. The sets differ in size
 * (16 and 64 points), so a covariance divided by n would show. */
START_TEST(frechet_diagonal_closed_form) {
    for (uint64_t seed = 0; seed < 4; seed++) {
        nd_tensor *a = walsh_set(10 + seed, 4, 5), *b = walsh_set(20 + seed, 6, 5);
        double mu[5], cov[25];
        sample_stats(a, mu, cov);
        for (int j = 0; j < 5; j++)
            for (int k = 0; k < 5; k++)
                ck_assert(j == k ? cov[j * 5 + k] > 0 : cov[j * 5 + k] == 0);
        double want = commuting_form(a, b, NULL), got = frechet(a, b);
        ck_assert_msg(fabs(got - want) <= 1e-12 * want, "seed %llu: %.17g vs %.17g",
                      (unsigned long long)seed, got, want);
        ck_assert(fabs(frechet(b, a) - want) <= 1e-12 * want);
    }
}
END_TEST

/* x Q^T: each point turned by Q, in float */
static nd_tensor *rotated(const nd_tensor *x, const double *q) {
    int64_t n = x->shape[0], d = x->shape[1];
    nd_tensor *r = nd_empty(ND_SHAPE(n, d));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            double s = 0;
            for (int64_t k = 0; k < d; k++) s += q[j * d + k] * coord(x, i, k);
            nd_data(r)[i * d + j] = (float)s;
        }
    return r;
}

/* Covariances that commute but are not diagonal: the Walsh sets turned by
 * one random rotation Q. The closed form holds in Q's frame, with the
 * rotated sets' own statistics (off-diagonal in that frame only by float
 * rounding, which moves the distance at second order): to 1e-9. */
START_TEST(frechet_commuting_closed_form) {
    const int64_t d = 6;
    for (uint64_t seed = 0; seed < 4; seed++) {
        double *q = rand_orthogonal(50 + seed, d);
        nd_tensor *a = rotated(walsh_set(30 + seed, 4, d), q);
        nd_tensor *b = rotated(walsh_set(40 + seed, 5, d), q);
        double mu[6], s_a[36], s_b[36];
        sample_stats(a, mu, s_a);
        sample_stats(b, mu, s_b);
        double off = 0, ab_ba = 0;
        for (int64_t i = 0; i < d; i++)
            for (int64_t j = 0; j < d; j++) {
                if (i != j) off = fmax(off, fabs(s_a[i * d + j]));
                double x = 0, y = 0;
                for (int64_t k = 0; k < d; k++) {
                    x += s_a[i * d + k] * s_b[k * d + j];
                    y += s_b[i * d + k] * s_a[k * d + j];
                }
                ab_ba = fmax(ab_ba, fabs(x - y));
            }
        ck_assert_msg(off > 0.05 && ab_ba < 1e-6, "seed %llu: %g, %g", (unsigned long long)seed,
                      off, ab_ba);
        double want = commuting_form(a, b, q), got = frechet(a, b);
        ck_assert_msg(fabs(got - want) <= 1e-9 * want, "seed %llu: %.17g vs %.17g",
                      (unsigned long long)seed, got, want);
        ck_assert(fabs(frechet(b, a) - want) <= 1e-9 * want);
        free(q);
    }
}
END_TEST

/* In 1-D, (mu_a - mu_b)^2 + (sd_a - sd_b)^2. In 2-D, with any covariances:
 * M = S_a^1/2 S_b S_a^1/2 has tr M = tr(S_a S_b) and det M = det S_a
 * det S_b, and for a 2 x 2 (tr M^1/2)^2 = tr M + 2 sqrt(det M); so
 *   d^2 = |mu_a - mu_b|^2 + tr S_a + tr S_b - 2 sqrt(tr(S_a S_b) + 2 sqrt(det S_a det S_b)).
 * Ten pairs of correlated sets of different sizes, to 1e-10. */
START_TEST(frechet_low_dimension_closed_forms) {
    for (uint64_t seed = 0; seed < 10; seed++) {
        int64_t n = 20 + 37 * (int64_t)seed, m = 400 - 23 * (int64_t)seed;
        nd_tensor *a = gaussian_set(60 + seed, n, 1), *b = gaussian_set(70 + seed, m, 1);
        double ma, va, mb, vb;
        sample_stats(a, &ma, &va);
        sample_stats(b, &mb, &vb);
        double want = (ma - mb) * (ma - mb) + (sqrt(va) - sqrt(vb)) * (sqrt(va) - sqrt(vb));
        double got = frechet(a, b);
        ck_assert_msg(fabs(got - want) <= 1e-10 * want, "1-D seed %llu: %.17g vs %.17g",
                      (unsigned long long)seed, got, want);

        a = gaussian_set(80 + seed, n, 2), b = gaussian_set(90 + seed, m, 2);
        double mu_a[2], mu_b[2], A[4], B[4];
        sample_stats(a, mu_a, A);
        sample_stats(b, mu_b, B);
        double tr_ab = A[0] * B[0] + A[1] * B[2] + A[2] * B[1] + A[3] * B[3];
        double det = (A[0] * A[3] - A[1] * A[2]) * (B[0] * B[3] - B[1] * B[2]);
        double dm = (mu_a[0] - mu_b[0]) * (mu_a[0] - mu_b[0]) +
                    (mu_a[1] - mu_b[1]) * (mu_a[1] - mu_b[1]);
        want = dm + A[0] + A[3] + B[0] + B[3] - 2 * sqrt(tr_ab + 2 * sqrt(det));
        got = frechet(a, b);
        ck_assert_msg(fabs(got - want) <= 1e-10 * want, "2-D seed %llu: %.17g vs %.17g",
                      (unsigned long long)seed, got, want);
        /* the covariances do not commute */
        double ab01 = A[0] * B[1] + A[1] * B[3], ba01 = B[0] * A[1] + B[1] * A[3];
        ck_assert(fabs(ab01 - ba01) > 0.01);
    }
}
END_TEST

/* The square root of a symmetric positive definite d x d matrix by the
 * coupled Newton-Schulz iteration on a / |a|_F: Y -> Y T, Z -> T Z with T
 * = (3 I - Z Y) / 2, Y -> (a / |a|_F)^1/2 and Z -> its inverse; it
 * converges quadratically at the end, and stops once T is within 1e-12 of
 * I (then rounding is all that is left). */
static void newton_schulz_sqrt(int64_t d, const double *a, double *root) {
    double norm = 0;
    for (int64_t i = 0; i < d * d; i++) norm += a[i] * a[i];
    norm = sqrt(norm);
    double *y = new_mat(d), *z = new_mat(d), *t = new_mat(d), *u = new_mat(d);
    for (int64_t i = 0; i < d * d; i++) y[i] = a[i] / norm;
    for (int64_t i = 0; i < d; i++) z[i * d + i] = 1;
    int it = 0;
    for (; it < 200; it++) {
        mul(d, z, y, t);
        double change = 0;
        for (int64_t i = 0; i < d; i++)
            for (int64_t j = 0; j < d; j++) {
                double want = (i == j), x = ((i == j) * 3.0 - t[i * d + j]) / 2;
                change = fmax(change, fabs(x - want));
                t[i * d + j] = x;
            }
        mul(d, y, t, u);
        memcpy(y, u, d * d * sizeof *u);
        mul(d, t, z, u);
        memcpy(z, u, d * d * sizeof *u);
        if (change < 1e-12) break; /* the step just taken squared that */
    }
    ck_assert_msg(it < 200, "Newton-Schulz did not converge");
    for (int64_t i = 0; i < d * d; i++) root[i] = y[i] * sqrt(norm);
    free(y), free(z), free(t), free(u);
}

/* In 8, 24 and 64 dimensions, covariances that neither commute nor are
 * diagonal: against the formula with both square roots by Newton-Schulz
 * from the sample statistics, to 1e-9; and a and b swapped. */
START_TEST(frechet_matches_newton_schulz) {
    const int64_t dims[3] = {8, 24, 64}, sizes[3][2] = {{300, 500}, {200, 150}, {700, 1000}};
    for (int c = 0; c < 3; c++) {
        int64_t d = dims[c];
        nd_tensor *a = gaussian_set(100 + c, sizes[c][0], d);
        nd_tensor *b = gaussian_set(200 + c, sizes[c][1], d);
        double *mu_a = malloc(d * sizeof *mu_a), *mu_b = malloc(d * sizeof *mu_b);
        double *s_a = new_mat(d), *s_b = new_mat(d), *r = new_mat(d), *t = new_mat(d);
        double *mm = new_mat(d), *rm = new_mat(d);
        sample_stats(a, mu_a, s_a);
        sample_stats(b, mu_b, s_b);
        newton_schulz_sqrt(d, s_a, r);
        mul(d, r, s_b, t);
        mul(d, t, r, mm);
        newton_schulz_sqrt(d, mm, rm);
        double want = 0;
        for (int64_t k = 0; k < d; k++)
            want += (mu_a[k] - mu_b[k]) * (mu_a[k] - mu_b[k]) + s_a[k * d + k] +
                    s_b[k * d + k] - 2 * rm[k * d + k];
        double got = frechet(a, b), swapped = frechet(b, a);
        ck_assert_msg(fabs(got - want) <= 1e-9 * want, "D %lld: %.17g vs %.17g", (long long)d,
                      got, want);
        ck_assert_msg(fabs(swapped - got) <= 1e-12 * got, "D %lld: %.17g swapped %.17g",
                      (long long)d, got, swapped);
        free(mu_a), free(mu_b), free(s_a), free(s_b), free(r), free(t), free(mm), free(rm);
    }
}
END_TEST

/* Twice the points, four times the distance, exactly: every step scales by
 * a power of two. */
START_TEST(frechet_scales_with_the_points) {
    nd_tensor *a = gaussian_set(7, 200, 10), *b = gaussian_set(8, 150, 10);
    double d2 = frechet(a, b);
    ck_assert(same_bits(frechet(nd_mul_scalar(a, 2.0f), nd_mul_scalar(b, 2.0f)), 4 * d2));
}
END_TEST

/* Singular covariances: fewer points than dimensions (against itself
 * reversed: 0 up to the 1e-8 of tr S that square roots near 0 allow);
 * points on lines, across each other or not (the 2-D closed form, to
 * 1e-6); a set of one point repeated (|mu_a - mu_b|^2 + tr S_b). No
 * eigenvalue that rounding takes below 0 is an error. */
START_TEST(frechet_singular_covariances) {
    nd_tensor *x = gaussian_set(9, 10, 20);
    double mu[20], cov[400], tr = 0;
    sample_stats(x, mu, cov);
    for (int k = 0; k < 20; k++) tr += cov[k * 20 + k];
    double same = frechet(x, reversed(x));
    ck_assert_msg(same >= 0 && same <= 1e-6 * tr, "%g of %g", same, tr);

    /* a along (1, 2), b along (-2, 1) or (1, 1) */
    const float dirs[2][2] = {{-2, 1}, {1, 1}};
    for (int c = 0; c < 2; c++) {
        nd_tensor *a = nd_empty(ND_SHAPE(50, 2)), *b = nd_empty(ND_SHAPE(70, 2));
        for (int64_t i = 0; i < 50; i++) {
            float t = nd_rand_at(11, 0, (uint64_t)i);
            nd_data(a)[2 * i] = t;
            nd_data(a)[2 * i + 1] = 2 * t + 0.5f;
        }
        for (int64_t i = 0; i < 70; i++) {
            float t = nd_rand_at(12, 0, (uint64_t)i);
            nd_data(b)[2 * i] = dirs[c][0] * t;
            nd_data(b)[2 * i + 1] = dirs[c][1] * t;
        }
        double mu_a[2], mu_b[2], A[4], B[4];
        sample_stats(a, mu_a, A);
        sample_stats(b, mu_b, B);
        double tr_ab = A[0] * B[0] + A[1] * B[2] + A[2] * B[1] + A[3] * B[3];
        double det = fmax(0, (A[0] * A[3] - A[1] * A[2]) * (B[0] * B[3] - B[1] * B[2]));
        double want = (mu_a[0] - mu_b[0]) * (mu_a[0] - mu_b[0]) +
                      (mu_a[1] - mu_b[1]) * (mu_a[1] - mu_b[1]) + A[0] + A[3] + B[0] + B[3] -
                      2 * sqrt(fmax(0, tr_ab) + 2 * sqrt(det));
        double got = frechet(a, b);
        ck_assert_msg(fabs(got - want) <= 1e-6 * want, "%d: %.17g vs %.17g", c, got, want);
    }

    nd_tensor *p = nd_full(ND_SHAPE(5, 3), 0.25f), *y = gaussian_set(13, 40, 3);
    double mu_y[3], s_y[9];
    sample_stats(y, mu_y, s_y);
    double want = 0;
    for (int k = 0; k < 3; k++) want += (0.25 - mu_y[k]) * (0.25 - mu_y[k]) + s_y[k * 3 + k];
    ck_assert(fabs(frechet(p, y) - want) <= 1e-12 * want);
    ck_assert(fabs(frechet(y, p) - want) <= 1e-12 * want);
    ck_assert(frechet(p, p) == 0);
}
END_TEST

/* ND_ERR with a message and *d2 NaN: too few points, sets of different D
 * or none, coordinates that are not finite; misuse stops. */
START_TEST(frechet_errors) {
    nd_tensor *a = t_uniform(1, ND_SHAPE(6, 2), 0.0f, 1.0f);
    nd_tensor *b = t_uniform(2, ND_SHAPE(5, 2), 0.0f, 1.0f);
    nd_error err;
    double d2 = 0;
    ck_assert_int_eq(nd_frechet_distance(nd_slice(a, 0, 0, 1, 1), b, &d2, &err), ND_ERR);
    ck_assert_str_eq(err.message,
                     "frechet distance: a covariance needs 2 points or more; a has 1, b 5");
    ck_assert(isnan(d2));
    d2 = 0;
    ck_assert_int_eq(nd_frechet_distance(a, nd_zeros(ND_SHAPE(0, 2)), &d2, &err), ND_ERR);
    ck_assert_str_eq(err.message,
                     "frechet distance: a covariance needs 2 points or more; a has 6, b 0");
    ck_assert(isnan(d2));
    ck_assert_int_eq(nd_frechet_distance(a, nd_zeros(ND_SHAPE(5, 3)), &d2, &err), ND_ERR);
    ck_assert_str_eq(err.message, "frechet distance: a's points have 2 coordinates, b's 3");
    ck_assert_int_eq(
        nd_frechet_distance(nd_zeros(ND_SHAPE(4, 0)), nd_zeros(ND_SHAPE(4, 0)), &d2, &err),
        ND_ERR);
    ck_assert_str_eq(err.message, "frechet distance: the points have no coordinates");
    nd_tensor *bad = nd_clone(b);
    nd_data(bad)[5] = NAN;
    ck_assert_int_eq(nd_frechet_distance(a, bad, &d2, &err), ND_ERR);
    ck_assert_str_eq(err.message, "frechet distance: b[2, 1] is nan");
    nd_data(bad)[5] = -INFINITY;
    d2 = 0;
    ck_assert_int_eq(nd_frechet_distance(bad, a, &d2, &err), ND_ERR);
    ck_assert_str_eq(err.message, "frechet distance: a[2, 1] is -inf");
    ck_assert(isnan(d2));
    ck_assert_int_eq(nd_frechet_distance(bad, a, &d2, NULL), ND_ERR);
    ck_assert_int_eq(nd_frechet_distance(a, b, &d2, NULL), ND_OK);

    EXPECT_FATAL(nd_frechet_distance(NULL, b, &d2, &err),
                 "nanodiff: frechet_distance: a is NULL");
    EXPECT_FATAL(nd_frechet_distance(a, NULL, &d2, &err),
                 "nanodiff: frechet_distance: b is NULL");
    EXPECT_FATAL(nd_frechet_distance(a, b, NULL, &err), "nanodiff: frechet_distance: d2 is NULL");
    EXPECT_FATAL(nd_frechet_distance(nd_zeros(ND_SHAPE(12)), b, &d2, &err),
                 "nanodiff: frechet_distance: a has shape [12]; want points [n, D]");
    EXPECT_FATAL(nd_frechet_distance(a, nd_zeros(ND_SHAPE(2, 3, 2)), &d2, &err),
                 "nanodiff: frechet_distance: b has shape [2,3,2]; want points [n, D]");
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
    tcase_add_test(tc, eigen_random_symmetric);
    tcase_add_test(tc, eigen_known_values);
    tcase_add_test(tc, eigen_scaled_matrices);
    tcase_add_test(tc, eigen_errors);
    tcase_add_test(tc, sqrtm_of_spd);
    tcase_add_test(tc, sqrtm_of_singular_and_negative);
    tcase_add_test(tc, frechet_of_a_set_with_itself);
    tcase_add_test(tc, frechet_diagonal_closed_form);
    tcase_add_test(tc, frechet_commuting_closed_form);
    tcase_add_test(tc, frechet_low_dimension_closed_forms);
    tcase_add_test(tc, frechet_matches_newton_schulz);
    tcase_add_test(tc, frechet_scales_with_the_points);
    tcase_add_test(tc, frechet_singular_covariances);
    tcase_add_test(tc, frechet_errors);
    return tc;
}
