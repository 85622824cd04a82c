/* The variational bound: the Gaussian KL against numerical integration,
 * the discretized decoder's bins summing to 1 anywhere, the whole bound
 * of a point mass under its exact denoiser against closed forms, the
 * eps = 0 model's expected terms, and the random-subset estimate's mean. */
#include <math.h>
#include <string.h>

#include "ddpm/ddpm.h"
#include "helpers.h"
#include "models.h"

#define LN2 0.69314718055994530942
#define PI 3.14159265358979323846

static double gauss_pdf(double x, double m, double v) {
    return exp(-0.5 * (x - m) * (x - m) / v) / sqrt(2 * PI * v);
}

/* KL(p || q) = int p log(p / q), by Simpson's rule over p's +-12 sigma */
static double kl_numeric(double m1, double v1, double m2, double v2) {
    const int n = 20000;
    double lo = m1 - 12 * sqrt(v1), hi = m1 + 12 * sqrt(v1), h = (hi - lo) / n, sum = 0;
    for (int i = 0; i <= n; i++) {
        double x = lo + i * h, p = gauss_pdf(x, m1, v1);
        double f = p > 0 ? p * (log(p) - log(gauss_pdf(x, m2, v2))) : 0;
        sum += f * (i == 0 || i == n ? 1 : i % 2 ? 4 : 2);
    }
    return sum * h / 3;
}

START_TEST(normal_kl_matches_integration) {
    const double cases[][4] = {{0, 1, 0, 1},     {0.5, 1, 0, 1},   {0, 0.25, 0, 1},
                               {1, 2, -1, 0.5},  {0.1, 0.01, 0.2, 0.04}, {-2, 3, 1, 5}};
    for (int c = 0; c < 6; c++) {
        const double *k = cases[c];
        nd_tensor *kl = nd_normal_kl(nd_scalar((float)k[0]), nd_scalar((float)log(k[1])),
                                     nd_scalar((float)k[2]), nd_scalar((float)log(k[3])));
        double want = kl_numeric(k[0], k[1], k[2], k[3]);
        ck_assert_msg(fabs(nd_item(kl) - want) <= 1e-5 * (1 + want), "case %d: %.8g vs %.8g", c,
                      (double)nd_item(kl), want);
    }
    /* equal arguments: 0; a mean gap d over variance v: d^2 / (2 v) */
    nd_tensor *m = nd_linspace(-2, 2, 9), *lv = nd_full(ND_SHAPE(9), (float)log(0.3));
    nd_tensor *same = nd_normal_kl(m, lv, m, lv);
    for (int i = 0; i < 9; i++) ck_assert(fabsf(nd_data(same)[i]) <= 1e-7f);
    nd_tensor *gap = nd_normal_kl(m, lv, nd_zeros(ND_SHAPE(9)), lv);
    for (int i = 0; i < 9; i++) {
        double d = nd_data(m)[i];
        ck_assert_near(nd_data(gap)[i], d * d / (2 * 0.3), 1e-6);
    }
}
END_TEST

/* All 256 bins hold probability 1 together, for means far outside [-1, 1]
 * and scales from e^-12 to e^2, and no log-probability is infinite. */
START_TEST(decoder_bins_sum_to_one) {
    nd_tensor *x = nd_add_scalar(nd_div_scalar(nd_arange(0, 256, 1), 127.5f), -1.0f);
    const float means[] = {0.0f, 0.3f, -1.0f, 1.0f, 0.999f, -2.5f, 3.0f, 50.0f, 0.00196f};
    const float log_scales[] = {-12.0f, -7.0f, -5.5f, -3.0f, -1.0f, 0.0f, 2.0f};
    for (int a = 0; a < 9; a++)
        for (int b = 0; b < 7; b++) {
            nd_tensor *lp = nd_discretized_gaussian_log_likelihood(
                x, nd_full(ND_SHAPE(256), means[a]), nd_full(ND_SHAPE(1), log_scales[b]));
            double sum = 0;
            for (int k = 0; k < 256; k++) {
                float v = nd_data(lp)[k];
                ck_assert_msg(isfinite(v) && v <= 0, "mean %g, log scale %g, bin %d: %g",
                              (double)means[a], (double)log_scales[b], k, (double)v);
                sum += exp((double)v);
            }
            ck_assert_msg(fabs(sum - 1) <= 1e-6, "mean %g, log scale %g: bins sum to %.9g",
                          (double)means[a], (double)log_scales[b], sum);
        }
    /* an interior bin at its centre: 1 - 2 Q(delta / s) */
    double s = 0.01, want = log(1 - erfc(1 / 255.0 / s / sqrt(2)));
    nd_tensor *lp = nd_discretized_gaussian_log_likelihood(
        nd_full(ND_SHAPE(1), (float)(128 / 127.5 - 1)), nd_full(ND_SHAPE(1), (float)(128 / 127.5 - 1)),
        nd_full(ND_SHAPE(1), (float)log(s)));
    ck_assert_near(nd_item(lp), want, 1e-6);
}
END_TEST

typedef struct {
    nd_tensor *x0;
    nd_tensor *log_scale;
} decoder_ctx;

static nd_tensor *decoder_f(nd_tensor *const *in, void *ctx) {
    decoder_ctx *c = ctx;
    return nd_discretized_gaussian_log_likelihood(c->x0, in[0], c->log_scale);
}

/* d log P / d mean against central differences, inside the data's range,
 * at the edges and in the tails. */
START_TEST(decoder_gradient_matches_differences) {
    float xs[8] = {-1.0f, -1.0f, (float)(3 / 127.5 - 1), 0.0f, (float)(200 / 127.5 - 1),
                   1.0f, 1.0f, (float)(250 / 127.5 - 1)};
    float ms[8] = {-0.98f, -1.2f, -0.95f, 0.01f, 0.6f, 0.97f, 1.3f, 0.9f};
    decoder_ctx c = {nd_from_buffer(xs, ND_SHAPE(8)), nd_full(ND_SHAPE(1), -3.5f)};
    nd_tensor *in[1] = {nd_persist(nd_from_buffer(ms, ND_SHAPE(8)))};
    nd_gradcheck_report rep;
    bool ok = nd_gradcheck(decoder_f, &c, in, 1, 1e-3, 1e-3, 1e-2, &rep);
    ck_assert_msg(ok, "element %lld: analytic %g, numeric %g", (long long)rep.worst_index,
                  rep.analytic, rep.numeric);
    nd_free(in[0]);
}
END_TEST

/* Data that is one fixed image x*: the exact denoiser, eps = (x_t -
 * sqrt(abar) x*) / sqrt(1 - abar), makes mu_theta equal mu_tilde, so
 *   L_{t-1} = 0 with sigma^2 = btilde, and 0.5 (-1 + log(beta / btilde) +
 *             btilde / beta) per dimension with sigma^2 = beta;
 *   L_0 = -log P(bin of x* | x*, sqrt(btilde_1)) (both variance choices
 *         use btilde_1 there): 1 - 2 Q(delta / s) inside, 1 - Q(delta / s)
 *         at -1 and 1;
 *   L_T = 0.5 (-1 - log(1 - abar_T) + (1 - abar_T) + abar_T x*^2). */
typedef struct {
    const nd_schedule *s;
    const nd_tensor *image; /* [1, ...] */
} point_mass;

static nd_tensor *point_mass_eps(void *self, const nd_tensor *x, const nd_tensor *t,
                                 const nd_tensor *y, nd_rng *r) {
    (void)y;
    (void)r;
    const point_mass *p = self;
    nd_tensor *a = nd_extract(p->s, p->s->sqrt_alphas_cumprod, t, x->ndim);
    nd_tensor *b = nd_extract(p->s, p->s->sqrt_one_minus_alphas_cumprod, t, x->ndim);
    return nd_div(nd_sub(x, nd_mul(a, p->image)), b);
}

START_TEST(bound_of_a_point_mass_has_closed_forms) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 40, 1e-3, 0.3, &err), ND_OK);
    const int64_t d = 12;
    const float pix[12] = {-1, 1, (float)(127 / 127.5 - 1), (float)(10 / 127.5 - 1), (float)(250 / 127.5 - 1), -1,
                           (float)(128 / 127.5 - 1), 1, (float)(64 / 127.5 - 1), -1, 1,
                           (float)(190 / 127.5 - 1)};
    nd_tensor *image = nd_from_buffer(pix, ND_SHAPE(1, 1, 3, 4));
    point_mass pm = {&s, image};
    nd_denoiser den = {point_mass_eps, &pm, NULL, ND_PRED_EPS, NULL, 0};
    nd_tensor *x0 = nd_contiguous(nd_expand(image, ND_SHAPE(3, 1, 3, 4)));
    double sigma = sqrt(s.posterior_variance[1]), q = 0.5 * erfc(1 / 255.0 / sigma / sqrt(2));
    double l0 = 0, prior = 0, abar_T = s.alphas_cumprod[s.T - 1];
    for (int k = 0; k < d; k++) {
        bool edge = pix[k] == -1.0f || pix[k] == 1.0f;
        l0 += -log(edge ? 1 - q : 1 - 2 * q);
        prior += 0.5 * (-1 - log(1 - abar_T) + (1 - abar_T) + abar_T * pix[k] * pix[k]);
    }
    l0 /= d * LN2;
    prior /= d * LN2;
    double vb_large = 0;
    for (int64_t i = 1; i < s.T; i++) {
        double beta = s.betas[i], bt = s.posterior_variance[i];
        vb_large += 0.5 * (-1 + log(beta / bt) + bt / beta) / LN2;
    }
    for (int v = 0; v < 2; v++) {
        nd_bpd_config cfg = {.var = v ? ND_FIXED_SMALL : ND_FIXED_LARGE, .clip = true, .seed = 3};
        nd_bpd r = nd_calc_bpd(&s, den, x0, &cfg);
        ck_assert(!r.estimated);
        ck_assert_int_eq(r.nsteps, 40);
        for (int64_t e = 0; e < 3; e++) {
            ck_assert_near(nd_data(r.prior)[e], prior, 1e-5);
            ck_assert_near(nd_data(r.l0)[e], l0, 1e-5);
            ck_assert_near(nd_data(r.vb)[e], v ? 0.0 : vb_large, 2e-5);
            ck_assert_near(nd_data(r.total)[e], prior + l0 + (v ? 0.0 : vb_large), 3e-5);
            /* term by term, at their steps */
            for (int64_t j = 0; j < r.nsteps; j++) {
                int64_t i = (int64_t)nd_data(r.steps)[j];
                double beta = s.betas[i], bt = s.posterior_variance[i];
                double want = i == 0 ? l0 : v ? 0.0 : 0.5 * (-1 + log(beta / bt) + bt / beta) / LN2;
                ck_assert_msg(fabs(nd_data(r.terms)[e * r.nsteps + j] - want) <= 2e-6 + 1e-5 * want,
                              "%s, step %lld: %.8g vs %.8g", v ? "fixedsmall" : "fixedlarge",
                              (long long)i, (double)nd_data(r.terms)[e * r.nsteps + j], want);
            }
        }
        nd_bpd_free(&r);
    }
    nd_schedule_free(&s);
}
END_TEST

/* A model that always says eps = 0: x0_hat = x_t / sqrt(abar), so
 * mu_theta - mu_tilde = coef1 sqrt(1/abar - 1) eps, and per dimension
 *   E[L_{t-1}] = 0.5 (-1 + lv_p - lv_q + e^(lv_q - lv_p)
 *                     + coef1^2 (1/abar - 1) e^-lv_p),
 * whatever the data. The mean of 16,000 draws matches it. */
START_TEST(zero_model_terms_have_a_closed_form) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 1000, 1e-4, 0.02, &err), ND_OK);
    nd_rng g = nd_rng_init(5, 0);
    const int64_t n = 2000, d = 8;
    nd_tensor *x0 = nd_add_scalar(nd_mul_scalar(nd_rand(&g, ND_SHAPE(n, d)), 1.6f), -0.8f);
    const int64_t steps[3] = {10, 400, 950};
    for (int k = 0; k < 3; k++) {
        int64_t i = steps[k];
        nd_tensor *t = nd_full(ND_SHAPE(n), (float)i);
        nd_tensor *xt = nd_q_sample(&s, x0, t, nd_randn(&g, ND_SHAPE(n, d)));
        nd_tensor *terms = nd_vb_terms_bpd(&s, nd_zeros(ND_SHAPE(n, d)), ND_PRED_EPS, x0, xt, t,
                                           ND_FIXED_LARGE, false);
        double mean = nd_item(nd_mean(terms, NULL, 0, false)) * LN2;
        double abar = s.alphas_cumprod[i], lvp = log(s.betas[i]);
        double lvq = s.posterior_log_variance_clipped[i], c1 = s.posterior_mean_coef1[i];
        double gap = c1 * c1 * (1 / abar - 1) * exp(-lvp);
        double want = 0.5 * (-1 + lvp - lvq + exp(lvq - lvp) + gap);
        /* the gap term is a chi-square of n d degrees over n d: 5 standard errors */
        double tol = 5 * 0.5 * gap * sqrt(2.0 / (double)(n * d)) + 1e-6 * want;
        ck_assert_msg(fabs(mean - want) <= tol, "step %lld: mean %.8g, closed form %.8g",
                      (long long)i, mean, want);
    }
    nd_schedule_free(&s);
}
END_TEST

/* The random-subset estimate: L_0 always, distinct other steps, and on
 * average (over seeds) the exact sum. */
START_TEST(estimate_is_unbiased) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 20, 1e-3, 0.4, &err), ND_OK);
    nd_tensor *image = nd_from_buffer((const float[]){-1, 0, 1, (float)(100 / 127.5 - 1)},
                                      ND_SHAPE(1, 4));
    point_mass pm = {&s, image};
    nd_denoiser den = {point_mass_eps, &pm, NULL, ND_PRED_EPS, NULL, 0};
    nd_bpd_config cfg = {.var = ND_FIXED_LARGE, .clip = false, .seed = 1};
    nd_bpd exact = nd_calc_bpd(&s, den, image, &cfg);
    double want = nd_data(exact.vb)[0], sum = 0, sum2 = 0;
    const int runs = 200;
    cfg.steps = 5;
    for (int r = 0; r < runs; r++) {
        cfg.seed = 100 + (uint64_t)r;
        nd_bpd est = nd_calc_bpd(&s, den, image, &cfg);
        ck_assert(est.estimated);
        ck_assert_int_eq(est.nsteps, 5);
        ck_assert(nd_data(est.steps)[0] == 0.0f);
        for (int a = 1; a < 5; a++)
            for (int b = 0; b < a; b++) ck_assert(nd_data(est.steps)[a] != nd_data(est.steps)[b]);
        ck_assert_near(nd_data(est.l0)[0], nd_data(exact.l0)[0], 1e-6);
        double v = nd_data(est.vb)[0];
        sum += v;
        sum2 += v * v;
        nd_bpd_free(&est);
    }
    double mean = sum / runs, sd = sqrt(sum2 / runs - mean * mean);
    ck_assert_msg(sd > 0 && fabs(mean - want) <= 5 * sd / sqrt(runs), "estimate %g +- %g, exact %g",
                  mean, sd / sqrt(runs), want);
    cfg.steps = 1;
    EXPECT_FATAL(nd_calc_bpd(&s, den, image, &cfg),
                 "nanodiff: calc_bpd: an estimate needs at least 2 steps (L_0 and one more); 0 "
                 "means all");
    nd_bpd_free(&exact);
    nd_schedule_free(&s);
}
END_TEST

/* The point mass's exact x_0 denoiser: the image itself. */
static nd_tensor *point_mass_x0(void *self, const nd_tensor *x, const nd_tensor *t,
                                const nd_tensor *y, nd_rng *r) {
    (void)y;
    (void)t;
    (void)r;
    const point_mass *p = self;
    return nd_contiguous(nd_expand(p->image, x->shape, x->ndim));
}

/* L_vlb as a loss is the batch mean of the terms at the drawn steps: for
 * the exact x_0 denoiser of a point mass, the closed forms above. And a
 * training step with it reports that loss at the draws it made. */
START_TEST(vlb_loss_is_the_mean_of_the_terms) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 40, 1e-3, 0.3, &err), ND_OK);
    nd_tensor *image = nd_from_buffer((const float[]){-1, 1, (float)(60 / 127.5 - 1), 1},
                                      ND_SHAPE(1, 4));
    point_mass pm = {&s, image};
    nd_denoiser den = {point_mass_x0, &pm, NULL, ND_PRED_X0, NULL, 0};
    const float steps[4] = {0, 5, 20, 39};
    nd_tensor *t = nd_from_buffer(steps, ND_SHAPE(4));
    nd_tensor *x0 = nd_contiguous(nd_expand(image, ND_SHAPE(4, 4)));
    nd_rng g = nd_rng_init(2, 0);
    nd_tensor *loss = nd_loss_vlb_at(&s, den, x0, t, nd_randn(&g, ND_SHAPE(4, 4)),
                                     ND_FIXED_LARGE, NULL);
    double sigma = sqrt(s.posterior_variance[1]), q = 0.5 * erfc(1 / 255.0 / sigma / sqrt(2));
    double want = (-log(1 - q) * 3 - log(1 - 2 * q)) / (4 * LN2);
    for (int k = 1; k < 4; k++) {
        double beta = s.betas[(int)steps[k]], bt = s.posterior_variance[(int)steps[k]];
        want += 0.5 * (-1 + log(beta / bt) + bt / beta) / LN2;
    }
    ck_assert_near(nd_item(loss), want / 4, 1e-5);
    nd_schedule_free(&s);
}
END_TEST

/* eps_theta = w x_t, trained on L_vlb: the step's loss is nd_loss_vlb_at
 * at the step's own draws, and w moves. */
START_TEST(trainer_takes_the_vlb) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 100, 1e-3, 0.2, &err), ND_OK);
    scale_model *m = scale_model_new(0.5f);
    nd_denoiser d = scale_model_denoiser(m, ND_PRED_EPS);
    nd_train_config cfg = nd_train_defaults();
    cfg.loss = ND_LOSS_VLB;
    cfg.optim.warmup_steps = 0;
    nd_trainer *tr = nd_trainer_new(&s, d, cfg, 8);
    nd_rng g = nd_rng_init(4, 0);
    nd_tensor *u = nd_rand(&g, ND_SHAPE(8, 6)), *x0 = nd_empty(ND_SHAPE(8, 6));
    for (int64_t e = 0; e < 48; e++) /* on the 256-level grid */
        nd_data(x0)[e] = (float)(floor(nd_data(u)[e] * 256.0) / 127.5 - 1.0);
    nd_rng replay = tr->rng;
    nd_tensor *t = nd_sample_timesteps(&s, 8, &replay);
    nd_tensor *eps = nd_randn(&replay, ND_SHAPE(8, 6));
    nd_no_grad_begin();
    double want = nd_item(nd_loss_vlb_at(&s, d, x0, t, eps, ND_FIXED_LARGE, NULL));
    nd_no_grad_end();
    nd_train_stats st = nd_train_step(tr, x0);
    ck_assert(isfinite(st.loss) && st.loss > 0);
    ck_assert_near(st.loss, want, 1e-7);
    ck_assert(nd_data(m->w)[0] != 0.5f);
    nd_trainer_free(tr);
    nd_module_free(&m->base);
    nd_schedule_free(&s);
}
END_TEST

/* Progressive coding: for the point mass's exact denoiser x_0 is known
 * exactly from any x_t (distortion 0) and the rate is L_T plus the
 * closed-form terms above each step; for the eps = 0 model, x0_hat =
 * x_t / sqrt(abar), so the mean squared error at step i is 1/abar_i - 1,
 * whatever the data. */
static nd_tensor *zero_eps(void *self, const nd_tensor *x, const nd_tensor *t,
                           const nd_tensor *y, nd_rng *r) {
    (void)y;
    (void)self;
    (void)t;
    (void)r;
    return nd_zeros_like(x);
}

START_TEST(rate_distortion_follows_the_terms) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 20, 1e-3, 0.4, &err), ND_OK);
    nd_tensor *image = nd_from_buffer((const float[]){-1, 1, (float)(70 / 127.5 - 1), 1},
                                      ND_SHAPE(1, 4));
    point_mass pm = {&s, image};
    nd_denoiser den = {point_mass_eps, &pm, NULL, ND_PRED_EPS, NULL, 0};
    nd_bpd_config cfg = {.var = ND_FIXED_LARGE, .clip = false, .seed = 2};
    nd_bpd r = nd_calc_bpd(&s, den, image, &cfg);
    double rate[20], dist[20];
    ck_assert_int_eq(nd_rate_distortion(&r, rate, dist, &err), ND_OK);
    double above = nd_data(r.prior)[0];
    for (int64_t i = 19; i >= 0; i--) {
        ck_assert_near(rate[i], above, 1e-5);
        ck_assert_msg(dist[i] < 1e-3, "distortion %g at step %lld", dist[i], (long long)i);
        double beta = s.betas[i], bt = s.posterior_variance[i];
        if (i > 0) above += 0.5 * (-1 + log(beta / bt) + bt / beta) / LN2;
    }
    nd_bpd_free(&r);
    nd_rng g = nd_rng_init(3, 0);
    nd_tensor *x0 = nd_add_scalar(nd_mul_scalar(nd_rand(&g, ND_SHAPE(500, 8)), 1.6f), -0.8f);
    nd_denoiser zero = {zero_eps, NULL, NULL, ND_PRED_EPS, NULL, 0};
    r = nd_calc_bpd(&s, zero, x0, &cfg);
    ck_assert_int_eq(nd_rate_distortion(&r, rate, dist, &err), ND_OK);
    for (int64_t i = 0; i < 20; i++) {
        double want = 127.5 * sqrt(1 / s.alphas_cumprod[i] - 1);
        ck_assert_msg(fabs(dist[i] - want) <= 0.05 * want, "step %lld: RMSE %g, want %g",
                      (long long)i, dist[i], want);
    }
    nd_bpd_free(&r);
    cfg.steps = 5;
    r = nd_calc_bpd(&s, zero, x0, &cfg);
    ck_assert_int_eq(nd_rate_distortion(&r, rate, dist, &err), ND_ERR);
    ck_assert_str_eq(err.message, "rate-distortion: needs every step's term, not an estimate");
    nd_bpd_free(&r);
    nd_schedule_free(&s);
}
END_TEST

TCase *tcase_bound(void) {
    TCase *tc = nd_test_case("bound");
    tcase_add_test(tc, normal_kl_matches_integration);
    tcase_add_test(tc, decoder_bins_sum_to_one);
    tcase_add_test(tc, decoder_gradient_matches_differences);
    tcase_add_test(tc, bound_of_a_point_mass_has_closed_forms);
    tcase_add_test(tc, zero_model_terms_have_a_closed_form);
    tcase_add_test(tc, estimate_is_unbiased);
    tcase_add_test(tc, vlb_loss_is_the_mean_of_the_terms);
    tcase_add_test(tc, trainer_takes_the_vlb);
    tcase_add_test(tc, rate_distortion_follows_the_terms);
    return tc;
}
