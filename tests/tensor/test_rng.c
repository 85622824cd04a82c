/* Philox-4x32-10 and the uniform/normal draws built on it. Golden values
 * come from rng_golden.py, an independent Python implementation. */
#include <string.h>

#include "helpers.h"

START_TEST(philox_known_answers) {
    /* Random123's published known-answer vectors for Philox-4x32-10. */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
         0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
         0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int v = 0; v < 3; v++) {
        uint32_t out[4];
        nd_philox4x32_10(kat[v], kat[v] + 4, out);
        for (int i = 0; i < 4; i++)
            ck_assert_msg(out[i] == kat[v][6 + i], "vector %d word %d: %08x, expected %08x",
                          v, i, out[i], kat[v][6 + i]);
    }
}
END_TEST

typedef struct {
    uint64_t i;
    float u, z;
} golden;

static void check_golden(uint64_t seed, uint32_t stream, const golden *g, int n) {
    for (int k = 0; k < n; k++) {
        ck_assert_msg(nd_rand_at(seed, stream, g[k].i) == g[k].u,
                      "uniform %llu: %.9g, expected %.9g", (unsigned long long)g[k].i,
                      nd_rand_at(seed, stream, g[k].i), g[k].u);
        ck_assert_near(nd_randn_at(seed, stream, g[k].i), g[k].z, 1e-6);
    }
}

START_TEST(golden_values) {
    /* Uniform element 0 of seed 0, stream 0 is the top 24 bits of the
     * first known-answer word: 0x6627e8 / 2^24. */
    ck_assert(nd_rand_at(0, 0, 0) == (float)0x6627e8 / 16777216.0f);
    const golden s0[] = {
        {0, 0.3990464210510254f, 1.6511778831481934f},
        {1, 0.8805201649665833f, 0.845645546913147f},
        {2, 0.7357127666473389f, -0.10209859162569046f},
        {3, 0.6054818034172058f, -0.11563608795404434f},
        {4, 0.9722411632537842f, -0.17499223351478577f},
        {5, 0.362091064453125f, 0.3935258686542511f},
        {1000003, 0.6771454215049744f, -0.35043400526046753f},
        {1099511627781ull, 0.8785132765769958f, -1.4912261962890625f},
    };
    const golden s1[] = {
        {0, 0.04734867811203003f, -0.9282402992248535f},
        {1, 0.1372944712638855f, 0.5379495620727539f},
        {2, 0.5773690938949585f, 0.451030969619751f},
        {3, 0.7051280736923218f, 0.04714814946055412f},
        {4, 0.6256957054138184f, -1.0020912885665894f},
        {5, 0.8782402276992798f, -0.09436289221048355f},
        {1000003, 0.5279203057289124f, -0.34523525834083557f},
        {1099511627781ull, 0.9953559041023254f, -0.3152514398097992f},
    };
    const golden s2[] = {
        {0, 0.14566051959991455f, -0.9291618466377258f},
        {1, 0.6087927222251892f, 0.9974222779273987f},
        {2, 0.46803170442581177f, -0.19838209450244904f},
        {3, 0.9632316827774048f, -1.0155168771743774f},
        {4, 0.4808353781700134f, -0.8078916668891907f},
        {5, 0.7034818530082703f, -0.22717024385929108f},
        {1000003, 0.8861787915229797f, 1.194149136543274f},
        {1099511627781ull, 0.8773335218429565f, 0.7710683941841125f},
    };
    check_golden(0, 0, s0, 8);
    check_golden(20201216, 3, s1, 8);
    check_golden(UINT64_MAX, UINT32_MAX, s2, 8);
}
END_TEST

START_TEST(normal_moments) {
    /* 10^6 normals: the sample mean has standard error 1/sqrt(n), the
     * sample variance sqrt(2/n); both must land within 4 of them. */
    const int64_t n = 1000000;
    nd_rng g = nd_rng_init(1234, 0);
    nd_tensor *z = nd_randn(&g, ND_SHAPE(n));
    const float *p = nd_data(z);
    double s = 0, ss = 0;
    for (int64_t i = 0; i < n; i++) s += p[i];
    double mean = s / (double)n;
    for (int64_t i = 0; i < n; i++) ss += (p[i] - mean) * (p[i] - mean);
    double var = ss / (double)(n - 1);
    ck_assert_msg(fabs(mean) < 4.0 / sqrt((double)n), "mean %g", mean);
    ck_assert_msg(fabs(var - 1.0) < 4.0 * sqrt(2.0 / (double)n), "variance %g", var);
    ck_assert_uint_eq(g.offset, (uint64_t)n);
}
END_TEST

START_TEST(uniform_moments_and_range) {
    const int64_t n = 1000000;
    nd_rng g = nd_rng_init(99, 5);
    nd_tensor *u = nd_rand(&g, ND_SHAPE(1000, 1000));
    const float *p = nd_data(u);
    double s = 0, ss = 0;
    int64_t outside = 0;
    for (int64_t i = 0; i < n; i++) {
        outside += !(p[i] >= 0.0f && p[i] < 1.0f);
        s += p[i];
    }
    ck_assert_int_eq(outside, 0);
    double mean = s / (double)n;
    for (int64_t i = 0; i < n; i++) ss += (p[i] - mean) * (p[i] - mean);
    double var = ss / (double)(n - 1);
    /* U[0,1): mean 1/2 with s.e. sqrt(1/12n); variance 1/12 with s.e.
     * sqrt((1/80 - 1/144) / n). */
    ck_assert_msg(fabs(mean - 0.5) < 4.0 * sqrt(1.0 / 12.0 / (double)n), "mean %g", mean);
    ck_assert_msg(fabs(var - 1.0 / 12.0) < 4.0 * sqrt((1.0 / 80 - 1.0 / 144) / (double)n),
                  "variance %g", var);
}
END_TEST

START_TEST(randint_formula_range_and_counts) {
    /* element i is low + floor(u_i (high - low)) with u_i the uniform draw
     * at the same place of the stream */
    nd_rng g = nd_rng_init(31, 4);
    nd_tensor *skip = nd_rand(&g, ND_SHAPE(5));
    nd_tensor *r = nd_randint(&g, -3, 4, ND_SHAPE(700, 100));
    ck_assert_uint_eq(g.offset, 5 + 70000);
    int64_t count[7] = {0};
    for (int64_t i = 0; i < 70000; i++) {
        float v = nd_data(r)[i];
        double u = nd_rand_at(31, 4, 5 + (uint64_t)i);
        ck_assert_msg(v == (float)(-3 + (int64_t)floor(u * 7.0)), "element %lld: %g", (long long)i,
                      (double)v);
        ck_assert(v >= -3.0f && v < 4.0f && v == floorf(v));
        count[(int)v + 3]++;
    }
    /* each of 7 values 10,000 times on average, s.e. sqrt(70000 p (1 - p)) */
    double se = sqrt(70000.0 * (1.0 / 7) * (6.0 / 7));
    for (int k = 0; k < 7; k++)
        ck_assert_msg(fabs((double)count[k] - 10000.0) < 5.0 * se, "value %d drawn %lld times",
                      k - 3, (long long)count[k]);
    /* the widest span a float holds: both ends reachable, exact */
    nd_rng h = nd_rng_init(1, 1);
    nd_tensor *w = nd_randint(&h, -(1 << 24), 1 << 24, ND_SHAPE(1000));
    for (int i = 0; i < 1000; i++) {
        float v = nd_data(w)[i];
        ck_assert(v >= -16777216.0f && v < 16777216.0f && v == floorf(v));
    }
    nd_rng one = nd_rng_init(2, 0);
    nd_tensor *o = nd_randint(&one, 5, 6, ND_SHAPE(3));
    for (int i = 0; i < 3; i++) ck_assert_float_eq(nd_data(o)[i], 5.0f);
    nd_free(skip);
    EXPECT_FATAL(nd_randint(&one, 3, 3, ND_SHAPE(1)), "nanodiff: randint: low 3 must be below high 3");
    EXPECT_FATAL(nd_randint(&one, 0, (1 << 24) + 1, ND_SHAPE(1)),
                 "nanodiff: randint: [0, 16777217) reaches past +-2^24, beyond the whole "
                 "numbers a float holds");
    EXPECT_FATAL(nd_randint(NULL, 0, 2, ND_SHAPE(1)), "nanodiff: randint: generator is NULL");
}
END_TEST

START_TEST(alone_equals_bulk) {
    /* Element i does not depend on how many were drawn at once. */
    nd_rng g = nd_rng_init(7, 2);
    nd_tensor *a = nd_randn(&g, ND_SHAPE(3));     /* elements 0..2 */
    nd_tensor *b = nd_randn(&g, ND_SHAPE(5, 7));  /* elements 3..37 */
    nd_tensor *c = nd_rand(&g, ND_SHAPE(11));     /* elements 38..48 */
    ck_assert_uint_eq(g.offset, 49);
    for (int i = 0; i < 3; i++) ck_assert(nd_data(a)[i] == nd_randn_at(7, 2, (uint64_t)i));
    for (int i = 0; i < 35; i++) ck_assert(nd_data(b)[i] == nd_randn_at(7, 2, 3 + (uint64_t)i));
    for (int i = 0; i < 11; i++) ck_assert(nd_data(c)[i] == nd_rand_at(7, 2, 38 + (uint64_t)i));
    nd_rng h = nd_rng_init(7, 2);
    nd_tensor *all = nd_randn(&h, ND_SHAPE(38));
    ck_assert_mem_eq(nd_data(all), nd_data(a), 3 * sizeof(float));
    ck_assert_mem_eq(nd_data(all) + 3, nd_data(b), 35 * sizeof(float));
    /* rows from any first element, of any length, as nd_rand draws them */
    float row[13];
    for (uint64_t first = 38; first < 46; first++)
        for (int64_t n = 0; n <= 13 && first + (uint64_t)n <= 49; n++) {
            nd_rand_row(7, 2, first, n, row);
            for (int64_t i = 0; i < n; i++)
                ck_assert_msg(row[i] == nd_data(c)[first - 38 + (uint64_t)i],
                              "row from %llu, length %lld, element %lld",
                              (unsigned long long)first, (long long)n, (long long)i);
        }
    EXPECT_FATAL(nd_rand_row(7, 2, 0, -1, row), "nanodiff: rand_row: row length -1 is negative");
}
END_TEST

START_TEST(streams_and_seeds_differ) {
    /* Different keys or counters give unrelated sequences: the sample
     * correlation of 10^5 pairs stays within 5 standard errors of 0. */
    const int n = 100000;
    const uint64_t seeds[3] = {1, 1, 2};
    const uint32_t streams[3] = {0, 1, 0};
    float *z[3];
    for (int k = 0; k < 3; k++) {
        nd_rng g = nd_rng_init(seeds[k], streams[k]);
        z[k] = nd_data(nd_randn(&g, ND_SHAPE(n)));
    }
    for (int a = 0; a < 3; a++)
        for (int b = a + 1; b < 3; b++) {
            double sab = 0;
            int same = 0;
            for (int i = 0; i < n; i++) {
                sab += (double)z[a][i] * z[b][i];
                same += z[a][i] == z[b][i];
            }
            ck_assert_int_lt(same, 3);
            ck_assert_msg(fabs(sab / n) < 5.0 / sqrt((double)n), "corr %g", sab / n);
        }
    /* Uniform and normal draws of the same stream use different counters. */
    int close = 0;
    for (uint64_t i = 0; i < 1000; i++)
        close += fabsf(nd_rand_at(1, 0, i) - nd_randn_at(1, 0, i)) < 1e-6f;
    ck_assert_int_lt(close, 3);
}
END_TEST

START_TEST(normal_tails_are_finite) {
    /* u1 is never 0, so ln u1 is finite: scan a million draws. */
    nd_rng g = nd_rng_init(3, 9);
    nd_tensor *z = nd_randn(&g, ND_SHAPE(1 << 20));
    const float *p = nd_data(z);
    float mx = 0;
    int64_t bad = 0;
    for (int64_t i = 0; i < (1 << 20); i++) {
        bad += !isfinite(p[i]);
        mx = fmaxf(mx, fabsf(p[i]));
    }
    ck_assert_int_eq(bad, 0);
    /* Box-Muller with 32-bit u1 cannot exceed sqrt(2 ln 2^32) = 6.66. */
    ck_assert(mx < 6.67f);
    ck_assert(mx > 4.0f); /* 2^20 draws reach past 4 sigma almost surely */
}
END_TEST

START_TEST(every_kernel_set_draws_the_same_bits) {
    /* Rows drawn in bulk (eight blocks at a time in the AVX2 set) against
     * element i alone, at offsets of any alignment, long and short, and
     * where the block index crosses 2^32 (the counter's second word). */
    const nd_kernels *sets[3];
    int nsets = t_kernel_sets(sets);
    char was[32];
    snprintf(was, sizeof was, "%s", nd_kernels_name());
    const uint64_t firsts[] = {0, 1, 3, 4, 37, 1000003, (UINT64_C(1) << 34) - 45};
    const int64_t lengths[] = {1, 4, 5, 31, 32, 33, 257};
    float row[257];
    for (int k = 0; k < nsets; k++) {
        nd_error err;
        ck_assert_int_eq(nd_set_kernels(sets[k]->name, &err), ND_OK);
        for (size_t f = 0; f < sizeof firsts / sizeof *firsts; f++)
            for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++) {
                uint64_t seed = 0x9E3779B97F4A7C15ull * (f + 1) + l;
                uint32_t stream = (uint32_t)(f * 7 + l);
                nd_rand_row(seed, stream, firsts[f], lengths[l], row);
                for (int64_t i = 0; i < lengths[l]; i++)
                    ck_assert_msg(row[i] == nd_rand_at(seed, stream, firsts[f] + (uint64_t)i),
                                  "kernels %s, first %llu, length %lld: element %lld",
                                  sets[k]->name, (unsigned long long)firsts[f],
                                  (long long)lengths[l], (long long)i);
            }
    }
    nd_error err;
    ck_assert_int_eq(nd_set_kernels(was, &err), ND_OK);
}
END_TEST

TCase *tcase_rng(void) {
    TCase *tc = nd_test_case("rng");
    tcase_add_test(tc, philox_known_answers);
    tcase_add_test(tc, golden_values);
    tcase_add_test(tc, normal_moments);
    tcase_add_test(tc, randint_formula_range_and_counts);
    tcase_add_test(tc, uniform_moments_and_range);
    tcase_add_test(tc, alone_equals_bulk);
    tcase_add_test(tc, every_kernel_set_draws_the_same_bits);
    tcase_add_test(tc, streams_and_seeds_differ);
    tcase_add_test(tc, normal_tails_are_finite);
    return tc;
}
