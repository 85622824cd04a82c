/* The forward process, its posterior, the reverse mean and L_simple,
 * each against its equation evaluated here in double, or against the
 * moments of many draws. */
#include <math.h>

#include "ddpm/ddpm.h"
#include "helpers.h"
#include "models.h"

static nd_schedule linear1000(void) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 1000, 1e-4, 0.02, &err), ND_OK);
    return s;
}

/* x_t ~ N(sqrt(abar) x0, (1 - abar) I), per example: the mean and the
 * variance of 40,000 draws at each of three steps. */
START_TEST(q_sample_has_the_moments_of_eq4) {
    nd_schedule s = linear1000();
    const int64_t n = 40000;
    const float steps[3] = {0, 300, 999}, x0v[3] = {0.8f, -0.5f, 0.3f};
    nd_rng g = nd_rng_init(3, 0);
    nd_tensor *x0 = nd_empty(ND_SHAPE(3, n));
    for (int e = 0; e < 3; e++) nd_fill_(nd_slice(x0, 0, e, e + 1, 1), x0v[e]);
    nd_tensor *t = nd_from_buffer(steps, ND_SHAPE(3));
    nd_tensor *xt = nd_q_sample(&s, x0, t, nd_randn(&g, ND_SHAPE(3, n)));
    for (int e = 0; e < 3; e++) {
        const float *p = nd_data(xt) + e * n;
        double m = 0, v = 0;
        for (int64_t k = 0; k < n; k++) m += p[k];
        m /= n;
        for (int64_t k = 0; k < n; k++) v += (p[k] - m) * (p[k] - m);
        v /= n - 1;
        double abar = s.alphas_cumprod[(int)steps[e]];
        double want_m = sqrt(abar) * x0v[e], want_v = 1 - abar;
        /* 5 standard errors of the mean and of the variance */
        ck_assert_msg(fabs(m - want_m) <= 5 * sqrt(want_v / n) + 1e-6, "step %g: mean %g, want %g",
                      (double)steps[e], m, want_m);
        ck_assert_msg(fabs(v - want_v) <= 5 * want_v * sqrt(2.0 / n) + 1e-9,
                      "step %g: variance %g, want %g", (double)steps[e], v, want_v);
    }
    nd_schedule_free(&s);
}
END_TEST

/* predict_x0_from_eps undoes q_sample given the same eps; the posterior
 * mean from the true x0 is Eq. 11's form with the true eps; both checked
 * in double, element by element, at every step. */
START_TEST(posterior_mean_is_eq11_with_the_true_eps) {
    nd_schedule s = linear1000();
    nd_rng g = nd_rng_init(4, 0);
    const int64_t n = 1000, d = 6;
    nd_tensor *t = nd_arange(0, 1000, 1);
    nd_tensor *x0 = nd_add_scalar(nd_mul_scalar(nd_rand(&g, ND_SHAPE(n, d)), 2.0f), -1.0f);
    nd_tensor *eps = nd_randn(&g, ND_SHAPE(n, d));
    nd_tensor *xt = nd_q_sample(&s, x0, t, eps);
    nd_tensor *back = nd_predict_x0_from_eps(&s, xt, t, eps);
    nd_gaussian q = nd_q_posterior(&s, x0, xt, t);
    ck_assert_int_eq(q.variance->ndim, 2);
    const float *px0 = nd_data(x0), *pe = nd_data(eps), *pxt = nd_data(xt);
    for (int64_t i = 0; i < n; i++) {
        double beta = s.betas[i], abar = s.alphas_cumprod[i];
        ck_assert(nd_data(q.variance)[i] == (float)s.posterior_variance[i]);
        ck_assert(nd_data(q.log_variance)[i] == (float)s.posterior_log_variance_clipped[i]);
        for (int64_t k = 0; k < d; k++) {
            int64_t e = i * d + k;
            double xt_d = sqrt(abar) * px0[e] + sqrt(1 - abar) * pe[e];
            ck_assert_msg(fabs(pxt[e] - xt_d) <= 1e-6 * (1 + fabs(xt_d)), "x_t[%lld]", (long long)e);
            /* x_0 comes back up to the float rounding of x_t, times sqrt(1/abar) */
            double amp = 1.0 / sqrt(abar);
            ck_assert_msg(fabs(nd_data(back)[e] - px0[e]) <= 4e-7 * amp * (2 + fabs(pe[e])),
                          "x0 back at step %lld: %g vs %g", (long long)i,
                          (double)nd_data(back)[e], (double)px0[e]);
            /* Eq. 11 with the true eps, from the float x_t */
            double mu11 = (pxt[e] - beta / sqrt(1 - abar) * pe[e]) / sqrt(1 - beta);
            ck_assert_msg(fabs(nd_data(q.mean)[e] - mu11) <= 2e-6 * (1 + fabs(mu11)),
                          "posterior mean at step %lld: %.8g vs Eq. 11 %.8g", (long long)i,
                          (double)nd_data(q.mean)[e], mu11);
        }
    }
    nd_schedule_free(&s);
}
END_TEST

/* The reverse process from an eps prediction: its mean is the posterior
 * mean of the (optionally clipped) x_0 estimate; its variance beta_t or
 * btilde_t, with btilde_1 in fixedlarge's log at i = 0. */
START_TEST(p_mean_variance_follows_the_variance_choice) {
    nd_schedule s = linear1000();
    nd_rng g = nd_rng_init(5, 0);
    nd_tensor *t = nd_from_buffer((const float[]){0, 1, 500, 999}, ND_SHAPE(4));
    nd_tensor *xt = nd_mul_scalar(nd_randn(&g, ND_SHAPE(4, 3, 2, 2)), 1.5f);
    nd_tensor *eps = nd_randn(&g, ND_SHAPE(4, 3, 2, 2));
    for (int clip = 0; clip < 2; clip++) {
        nd_tensor *x0 = NULL;
        nd_gaussian large = nd_p_mean_variance(&s, eps, ND_PRED_EPS, xt, t, ND_FIXED_LARGE, clip, &x0);
        nd_gaussian small = nd_p_mean_variance(&s, eps, ND_PRED_EPS, xt, t, ND_FIXED_SMALL, clip, NULL);
        nd_tensor *raw = nd_predict_x0_from_eps(&s, xt, t, eps);
        for (int64_t e = 0; e < nd_numel(x0); e++) {
            float want = nd_data(raw)[e];
            if (clip) want = fminf(fmaxf(want, -1.0f), 1.0f);
            ck_assert(nd_data(x0)[e] == want);
        }
        nd_gaussian post = nd_q_posterior(&s, x0, xt, t);
        ck_assert(nd_allclose(large.mean, post.mean, 0, 0, false));
        ck_assert(nd_allclose(small.mean, post.mean, 0, 0, false));
        for (int64_t k = 0; k < 4; k++) {
            int64_t i = (int64_t)nd_data(t)[k];
            ck_assert(nd_data(large.variance)[k] == (float)s.betas[i]);
            ck_assert(nd_data(small.variance)[k] == (float)s.posterior_variance[i]);
            double lv = i == 0 ? log(s.posterior_variance[1]) : log(s.betas[i]);
            ck_assert(nd_data(large.log_variance)[k] == (float)lv);
            ck_assert(nd_data(small.log_variance)[k] ==
                      (float)s.posterior_log_variance_clipped[i]);
        }
    }
    EXPECT_FATAL(nd_p_mean_variance(&s, eps, ND_PRED_EPS, xt, t, (nd_var_type)7, false, NULL),
                 "nanodiff: p_mean_variance: unknown variance type 7");
    nd_schedule_free(&s);
}
END_TEST


/* L_simple = mean (eps - w x_t)^2 and dL/dw = -2 mean (eps - w x_t) x_t,
 * in double, at the same draws the loss makes: t first, then eps. */
START_TEST(loss_simple_is_eq14_and_differentiable) {
    nd_schedule s = linear1000();
    scale_model *m = scale_model_new(0.3f);
    nd_denoiser d = scale_model_denoiser(m, ND_PRED_EPS);
    nd_rng g = nd_rng_init(6, 0);
    nd_tensor *x0 = nd_add_scalar(nd_mul_scalar(nd_rand(&g, ND_SHAPE(64, 5)), 2.0f), -1.0f);
    nd_rng r = nd_rng_init(77, 3), replay = r;
    nd_tensor *loss = nd_loss_simple(&s, d, x0, &r);
    ck_assert_int_eq(loss->ndim, 0);
    nd_backward(loss);
    nd_tensor *t = nd_sample_timesteps(&s, 64, &replay);
    nd_tensor *eps = nd_randn(&replay, ND_SHAPE(64, 5));
    ck_assert_uint_eq(r.offset, replay.offset);
    double sum = 0, dsum = 0;
    for (int64_t i = 0; i < 64; i++) {
        int64_t step = (int64_t)nd_data(t)[i];
        double abar = s.alphas_cumprod[step];
        for (int64_t k = 0; k < 5; k++) {
            double e = nd_data(eps)[i * 5 + k];
            double xt = sqrt(abar) * nd_data(x0)[i * 5 + k] + sqrt(1 - abar) * e;
            double diff = e - 0.3 * xt;
            sum += diff * diff;
            dsum += -2 * diff * xt;
        }
    }
    ck_assert_near(nd_item(loss), sum / 320, 1e-6);
    ck_assert_near(nd_data(m->w->grad)[0], dsum / 320, 1e-5);
    nd_module_free(&m->base);
    nd_schedule_free(&s);
}
END_TEST

/* Steps are whole numbers, uniform on 0..T-1: 200,000 draws over T = 10
 * land within 5 standard deviations of 20,000 in every bin. */
START_TEST(timesteps_are_uniform) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 10, 0.01, 0.2, &err), ND_OK);
    nd_rng g = nd_rng_init(8, 0);
    const int64_t n = 200000;
    nd_tensor *t = nd_sample_timesteps(&s, n, &g);
    int64_t count[10] = {0};
    for (int64_t k = 0; k < n; k++) {
        float v = nd_data(t)[k];
        ck_assert(v >= 0 && v <= 9 && v == floorf(v));
        count[(int)v]++;
    }
    double sd = sqrt(n * 0.1 * 0.9);
    for (int b = 0; b < 10; b++)
        ck_assert_msg(fabs(count[b] - n * 0.1) <= 5 * sd, "bin %d: %lld", b, (long long)count[b]);
    nd_schedule_free(&s);
}
END_TEST

START_TEST(shape_errors_name_the_shapes) {
    nd_schedule s = linear1000();
    nd_tensor *x = nd_zeros(ND_SHAPE(2, 3));
    EXPECT_FATAL(nd_q_sample(&s, x, nd_zeros(ND_SHAPE(3)), x),
                 "nanodiff: q_sample: x [2,3] and t [3]: t needs one step per example, [N]");
    EXPECT_FATAL(nd_q_sample(&s, x, nd_zeros(ND_SHAPE(2)), nd_zeros(ND_SHAPE(2, 4))),
                 "nanodiff: q_sample: shapes [2,3] and [2,4] differ");
    EXPECT_FATAL(nd_predict_x0_from_eps(&s, x, nd_zeros(ND_SHAPE(1, 2)), x),
                 "nanodiff: predict_x0_from_eps: x [2,3] and t [1,2]: t needs one step per "
                 "example, [N]");
    nd_schedule_free(&s);
}
END_TEST

/* Whether the network predicts eps, x_0 or mu_tilde, the exact value of
 * each gives the same reverse step: the same mean and the same x_0
 * estimate (up to float rounding, which dividing by coef1 magnifies at
 * late steps), and the targets are those exact values. */
START_TEST(parameterizations_agree) {
    nd_schedule s = linear1000();
    nd_rng g = nd_rng_init(9, 0);
    nd_tensor *t = nd_from_buffer((const float[]){0, 1, 10, 300, 700, 999}, ND_SHAPE(6));
    nd_tensor *x0 = nd_add_scalar(nd_mul_scalar(nd_rand(&g, ND_SHAPE(6, 2, 3)), 1.8f), -0.9f);
    nd_tensor *eps = nd_randn(&g, ND_SHAPE(6, 2, 3));
    nd_tensor *xt = nd_q_sample(&s, x0, t, eps);
    nd_tensor *targets[3], *x0s[3];
    nd_gaussian p[3];
    for (int k = 0; k < 3; k++) {
        targets[k] = nd_prediction_target(&s, (nd_prediction)k, x0, xt, t, eps);
        p[k] = nd_p_mean_variance(&s, targets[k], (nd_prediction)k, xt, t, ND_FIXED_SMALL, false,
                                  &x0s[k]);
    }
    ck_assert(nd_allclose(targets[ND_PRED_EPS], eps, 0, 0, false));
    ck_assert(nd_allclose(targets[ND_PRED_X0], x0, 0, 0, false));
    ck_assert(nd_allclose(targets[ND_PRED_MEAN], nd_q_posterior(&s, x0, xt, t).mean, 0, 0, false));
    for (int k = 1; k < 3; k++) {
        ck_assert_msg(nd_allclose(p[k].mean, p[0].mean, 1e-5, 1e-5, false), "mean of %d", k);
        ck_assert(nd_allclose(p[k].variance, p[0].variance, 0, 0, false));
    }
    for (int64_t e = 0; e < 36; e++) {
        int64_t i = (int64_t)nd_data(t)[e / 6];
        /* x_0 from eps is amplified by sqrt(1/abar), from the mean by 1/coef1 */
        double amp = fmax(1 / sqrt(s.alphas_cumprod[i]), 1 / s.posterior_mean_coef1[i]);
        for (int k = 0; k < 3; k++)
            ck_assert_msg(fabs(nd_data(x0s[k])[e] - nd_data(x0)[e]) <= 1e-6 * amp * 4,
                          "x0 estimate %d at step %lld: %g vs %g", k, (long long)i,
                          (double)nd_data(x0s[k])[e], (double)nd_data(x0)[e]);
    }
    /* a predicted mean is the mean, clipped or not */
    nd_gaussian c = nd_p_mean_variance(&s, targets[2], ND_PRED_MEAN, xt, t, ND_FIXED_SMALL, true,
                                       NULL);
    ck_assert(nd_allclose(c.mean, targets[2], 0, 0, false));
    EXPECT_FATAL(nd_p_mean_variance(&s, eps, (nd_prediction)5, xt, t, ND_FIXED_SMALL, false, NULL),
                 "nanodiff: p_mean_variance: unknown prediction 5");
    nd_schedule_free(&s);
}
END_TEST

/* The MSE for an x_0 denoiser is against x_0: with the one-parameter
 * model out = w x_t, the loss and its gradient in double. */
START_TEST(mse_follows_the_prediction) {
    nd_schedule s = linear1000();
    scale_model *m = scale_model_new(0.7f);
    nd_denoiser d = scale_model_denoiser(m, ND_PRED_X0);
    nd_rng g = nd_rng_init(6, 1);
    nd_tensor *x0 = nd_add_scalar(nd_mul_scalar(nd_rand(&g, ND_SHAPE(32, 4)), 2.0f), -1.0f);
    nd_tensor *t = nd_sample_timesteps(&s, 32, &g);
    nd_tensor *eps = nd_randn(&g, ND_SHAPE(32, 4));
    nd_tensor *loss = nd_loss_simple_at(&s, d, x0, t, eps, NULL);
    nd_backward(loss);
    nd_tensor *xt = nd_q_sample(&s, x0, t, eps);
    double sum = 0, dsum = 0;
    for (int64_t e = 0; e < 128; e++) {
        double x = nd_data(xt)[e], diff = nd_data(x0)[e] - 0.7 * x;
        sum += diff * diff;
        dsum += -2 * diff * x;
    }
    ck_assert_near(nd_item(loss), sum / 128, 1e-6);
    ck_assert_near(nd_data(m->w->grad)[0], dsum / 128, 1e-5);
    nd_module_free(&m->base);
    nd_schedule_free(&s);
}
END_TEST

/* out(x, y) = y (each example's label, broadcast), out(x, none) = -5 */
static nd_tensor *label_echo(void *self, const nd_tensor *x, const nd_tensor *t,
                             const nd_tensor *y, nd_rng *r) {
    (void)self;
    (void)t;
    (void)r;
    if (!y) return nd_full_like(x, -5.0f);
    return nd_contiguous(nd_expand(nd_reshape(y, ND_SHAPE(x->shape[0], 1)), x->shape, x->ndim));
}

/* Classifier-free guidance: w = 0 is the unconditional output and w = 1
 * the conditional one, exactly; otherwise out_u + w (out_c - out_u). */
START_TEST(guidance_mixes_the_two_outputs) {
    nd_tensor *x = nd_zeros(ND_SHAPE(3, 2)), *t = nd_zeros(ND_SHAPE(3));
    nd_tensor *y = nd_from_buffer((const float[]){0, 4, -1}, ND_SHAPE(3));
    nd_denoiser d = {label_echo, NULL, NULL, ND_PRED_EPS, NULL, 0};
    nd_tensor *none = nd_denoise(d, x, t, NULL);
    ck_assert(nd_allclose(none, nd_full(ND_SHAPE(3, 2), -5), 0, 0, false));
    nd_tensor *w0 = nd_denoise(nd_denoiser_with_labels(d, y, 0.0f), x, t, NULL);
    ck_assert(nd_allclose(w0, none, 0, 0, false));
    nd_tensor *w1 = nd_denoise(nd_denoiser_with_labels(d, y, 1.0f), x, t, NULL);
    const float cond[6] = {0, 0, 4, 4, -1, -1};
    ck_assert(nd_allclose(w1, nd_from_buffer(cond, ND_SHAPE(3, 2)), 0, 0, false));
    nd_tensor *w3 = nd_denoise(nd_denoiser_with_labels(d, y, 3.0f), x, t, NULL);
    for (int e = 0; e < 6; e++) ck_assert_near(nd_data(w3)[e], -5 + 3 * (cond[e] + 5), 1e-6);
    EXPECT_FATAL(nd_denoise(nd_denoiser_with_labels(d, nd_zeros(ND_SHAPE(4)), 1.0f), x, t, NULL),
                 "nanodiff: denoise: labels [4] for steps [3]: one label per example, [N]");
}
END_TEST

TCase *tcase_diffusion(void) {
    TCase *tc = nd_test_case("diffusion");
    tcase_add_test(tc, q_sample_has_the_moments_of_eq4);
    tcase_add_test(tc, posterior_mean_is_eq11_with_the_true_eps);
    tcase_add_test(tc, p_mean_variance_follows_the_variance_choice);
    tcase_add_test(tc, loss_simple_is_eq14_and_differentiable);
    tcase_add_test(tc, timesteps_are_uniform);
    tcase_add_test(tc, shape_errors_name_the_shapes);
    tcase_add_test(tc, parameterizations_agree);
    tcase_add_test(tc, mse_follows_the_prediction);
    tcase_add_test(tc, guidance_mixes_the_two_outputs);
    return tc;
}
