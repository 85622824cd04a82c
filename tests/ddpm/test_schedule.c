/* Schedules: the values DDPM.md pins for the paper's linear schedule, the
 * cosine schedule against its formula evaluated here in double, every
 * derived table against its definition, and the refusals. */
#include <math.h>
#include <string.h>

#include "ddpm/ddpm.h"
#include "helpers.h"

#define ck_assert_rel(a, b, tol)                                                         \
    do {                                                                                 \
        double a_ = (a), b_ = (b);                                                       \
        ck_assert_msg(fabs(a_ - b_) <= (tol) * fabs(b_), "%s = %.12g, expected %.12g", #a, \
                      a_, b_);                                                           \
    } while (0)

START_TEST(linear_matches_the_published_values) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 1000, 1e-4, 0.02, &err), ND_OK);
    ck_assert_int_eq(s.T, 1000);
    ck_assert_rel(s.betas[0], 1e-4, 1e-15);
    ck_assert_rel(s.betas[999], 0.02, 1e-15);
    /* the table of DDPM.md, to the digits it gives */
    ck_assert_rel(s.alphas_cumprod[0], 0.99990000, 1e-12);
    ck_assert_rel(s.alphas_cumprod[499], 0.078587243, 1e-8);
    ck_assert_rel(s.alphas_cumprod[999], 4.0358298e-05, 1e-7);
    ck_assert_rel(s.posterior_variance[1], 5.4531877e-05, 1e-7);
    ck_assert_rel(s.posterior_variance[999], 0.019999984, 1e-7);
    ck_assert_rel(s.posterior_log_variance_clipped[0], -9.8167251, 1e-8);
    ck_assert(s.posterior_mean_coef1[0] == 1.0);
    ck_assert(s.posterior_mean_coef2[0] == 0.0);
    ck_assert(s.posterior_variance[0] == 0.0);
    ck_assert(s.alphas_cumprod_prev[0] == 1.0);
    nd_schedule_free(&s);
}
END_TEST

/* Every table from its definition, with the product taken in long double
 * here: an independent route to the same numbers. */
static void check_tables(const nd_schedule *s) {
    long double abar = 1.0L;
    for (int64_t i = 0; i < s->T; i++) {
        long double beta = s->betas[i], prev = abar;
        abar *= 1.0L - beta;
        ck_assert_rel(s->alphas[i], (double)(1.0L - beta), 1e-15);
        ck_assert_rel(s->alphas_cumprod[i], (double)abar, 1e-12);
        ck_assert_rel(s->alphas_cumprod_prev[i], (double)prev, 1e-12);
        ck_assert_rel(s->sqrt_alphas_cumprod[i], sqrt((double)abar), 1e-12);
        ck_assert_rel(s->sqrt_one_minus_alphas_cumprod[i], sqrt((double)(1.0L - abar)), 1e-12);
        ck_assert_rel(s->sqrt_recip_alphas_cumprod[i], 1.0 / sqrt((double)abar), 1e-12);
        ck_assert_rel(s->sqrt_recipm1_alphas_cumprod[i], sqrt((double)(1.0L / abar - 1.0L)),
                      1e-11);
        double btilde = (double)(beta * (1.0L - prev) / (1.0L - abar));
        if (i > 0) {
            ck_assert_rel(s->posterior_variance[i], btilde, 1e-11);
            ck_assert_rel(s->posterior_log_variance_clipped[i], log(btilde), 1e-11);
        }
        ck_assert_rel(s->posterior_mean_coef1[i],
                      (double)(beta * sqrtl(prev) / (1.0L - abar)), 1e-11);
        ck_assert_msg(fabs(s->posterior_mean_coef2[i] -
                           (double)((1.0L - prev) * sqrtl(1.0L - beta) / (1.0L - abar))) <= 1e-11,
                      "coef2[%lld]", (long long)i);
    }
    ck_assert(s->posterior_log_variance_clipped[0] == s->posterior_log_variance_clipped[1]);
}

START_TEST(tables_follow_their_definitions) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 1000, 1e-4, 0.02, &err), ND_OK);
    check_tables(&s);
    nd_schedule_free(&s);
    ck_assert_int_eq(nd_schedule_linear(&s, 2, 0.1, 0.5, &err), ND_OK);
    check_tables(&s);
    nd_schedule_free(&s);
    ck_assert_int_eq(nd_schedule_cosine(&s, 300, 0.008, 0.999, &err), ND_OK);
    check_tables(&s);
    nd_schedule_free(&s);
}
END_TEST

/* abar(t) = f(t) / f(0), f(t) = cos^2((t/T + s) / (1 + s) pi/2): the
 * schedule's product of (1 - beta) gives it back wherever no beta was
 * capped, and the cap holds where one was. */
START_TEST(cosine_matches_its_formula) {
    const double pi = 3.14159265358979323846, off = 0.008;
    const int64_t T = 1000;
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_cosine(&s, T, off, 0.999, &err), ND_OK);
    double f0 = cos(off / (1 + off) * pi / 2);
    f0 *= f0;
    int capped = 0;
    for (int64_t i = 0; i < T; i++) {
        double f = cos(((double)(i + 1) / T + off) / (1 + off) * pi / 2);
        double want = f * f / f0;
        if (s.betas[i] == 0.999) {
            capped++;
            continue;
        }
        ck_assert_msg(fabs(s.alphas_cumprod[i] - want) <= 1e-12 * want + 1e-300,
                      "abar[%lld] = %.15g, formula %.15g", (long long)i, s.alphas_cumprod[i],
                      want);
    }
    /* f(T) = 0: the last beta alone reaches the cap */
    ck_assert_int_eq(capped, 1);
    ck_assert(s.betas[T - 1] == 0.999);
    ck_assert_rel(s.betas[0], 1.0 - (cos((1.0 / T + off) / (1 + off) * pi / 2) *
                                      cos((1.0 / T + off) / (1 + off) * pi / 2)) / f0, 1e-9);
    nd_schedule_free(&s);
}
END_TEST

START_TEST(bad_arguments_are_refused) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 1, 1e-4, 0.02, &err), ND_ERR);
    ck_assert_str_eq(err.message, "schedule: T = 1, need at least 2 steps");
    ck_assert_ptr_null(s.betas);
    ck_assert_int_eq(nd_schedule_linear(&s, 10, 0.0, 0.02, &err), ND_ERR);
    ck_assert_str_eq(err.message,
                     "schedule: linear betas from 0 to 0.02, need 0 < start <= end < 1");
    ck_assert_int_eq(nd_schedule_linear(&s, 10, 0.1, 1.0, &err), ND_ERR);
    ck_assert_int_eq(nd_schedule_linear(&s, 10, 0.3, 0.2, &err), ND_ERR);
    ck_assert_int_eq(nd_schedule_linear(&s, 10, NAN, 0.2, &err), ND_ERR);
    ck_assert_int_eq(nd_schedule_cosine(&s, 10, 0.008, 1.0, &err), ND_ERR);
    ck_assert_str_eq(err.message, "schedule: cosine max_beta 1 is not in (0, 1)");
    ck_assert_int_eq(nd_schedule_cosine(&s, 10, -1.0, 0.999, &err), ND_ERR);
    ck_assert_int_eq(nd_schedule_cosine(&s, 0, 0.008, 0.999, &err), ND_ERR);
    double betas[4] = {0.1, 0.2, 0.3, 0.4};
    ck_assert_int_eq(nd_schedule_from_betas(&s, betas, 4, &err), ND_OK);
    nd_schedule_free(&s);
    double bad[][4] = {{0.1, 0.0, 0.3, 0.4}, {0.1, 1.0, 0.3, 0.4}, {0.1, -0.2, 0.3, 0.4},
                       {0.1, NAN, 0.3, 0.4}, {0.1, INFINITY, 0.3, 0.4}};
    for (int k = 0; k < 5; k++) {
        ck_assert_int_eq(nd_schedule_from_betas(&s, bad[k], 4, &err), ND_ERR);
        ck_assert_msg(strncmp(err.message, "schedule: beta_1 = ", 19) == 0 &&
                          strstr(err.message, "is not in (0, 1)"),
                      "%s", err.message);
        ck_assert_ptr_null(s.betas);
    }
    ck_assert_int_eq(nd_schedule_from_betas(&s, NULL, 4, &err), ND_ERR);
    nd_schedule_free(&s); /* an empty schedule frees fine */
}
END_TEST

START_TEST(extract_reads_one_step_per_example) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 1000, 1e-4, 0.02, &err), ND_OK);
    nd_tensor *t = nd_from_buffer((const float[]){0, 999, 499}, ND_SHAPE(3));
    nd_tensor *a = nd_extract(&s, s.alphas_cumprod, t, 4);
    ck_assert_int_eq(a->ndim, 4);
    ck_assert_int_eq(a->shape[0], 3);
    ck_assert_int_eq(a->shape[1] * a->shape[2] * a->shape[3], 1);
    ck_assert(nd_data(a)[0] == (float)s.alphas_cumprod[0]);
    ck_assert(nd_data(a)[1] == (float)s.alphas_cumprod[999]);
    ck_assert(nd_data(a)[2] == (float)s.alphas_cumprod[499]);
    /* a strided t */
    nd_tensor *ts = nd_slice(nd_from_buffer((const float[]){5, 0, 7, 0}, ND_SHAPE(4)), 0, 0,
                             ND_END, 2);
    nd_tensor *b = nd_extract(&s, s.betas, ts, 1);
    ck_assert(nd_data(b)[0] == (float)s.betas[5] && nd_data(b)[1] == (float)s.betas[7]);
    EXPECT_FATAL(nd_extract(&s, s.betas, nd_from_buffer((const float[]){1000}, ND_SHAPE(1)), 2),
                 "nanodiff: extract: t[0] = 1000 is not a step in [0, 1000)");
    EXPECT_FATAL(nd_extract(&s, s.betas, nd_from_buffer((const float[]){2.5f}, ND_SHAPE(1)), 2),
                 "nanodiff: extract: t[0] = 2.5 is not a step in [0, 1000)");
    EXPECT_FATAL(nd_extract(&s, s.betas, nd_from_buffer((const float[]){-1}, ND_SHAPE(1)), 2),
                 "nanodiff: extract: t[0] = -1 is not a step in [0, 1000)");
    EXPECT_FATAL(nd_extract(&s, s.betas, nd_zeros(ND_SHAPE(2, 1)), 2),
                 "nanodiff: extract: t [2,1] is not [N]");
    nd_schedule_free(&s);
}
END_TEST

TCase *tcase_schedule(void) {
    TCase *tc = nd_test_case("schedule");
    tcase_add_test(tc, linear_matches_the_published_values);
    tcase_add_test(tc, tables_follow_their_definitions);
    tcase_add_test(tc, cosine_matches_its_formula);
    tcase_add_test(tc, bad_arguments_are_refused);
    tcase_add_test(tc, extract_reads_one_step_per_example);
    return tc;
}
