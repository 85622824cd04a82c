/* Algorithm 2 without any training: with the exact eps of Gaussian data
 * the sampler must give back the data's mean and variance; and its
 * plumbing: one noise stream per example, no noise at the last step, the
 * callback, the EMA weights, and the same bits for any thread count. */
#include <math.h>
#include <string.h>

#include "ddpm/ddpm.h"
#include "helpers.h"

/* Data N(mu, s^2 I): x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps is Gaussian
 * too, and E[eps | x_t] = (x_t - sqrt(abar) mu) sqrt(1 - abar) /
 * (abar s^2 + 1 - abar): the best denoiser there is. */
typedef struct {
    const nd_schedule *s;
    double mu, s2;
} gaussian_data;

static nd_tensor *exact_eps(void *self, const nd_tensor *x, const nd_tensor *t,
                            const nd_tensor *y, nd_rng *r) {
    (void)y;
    (void)r;
    const gaussian_data *g = self;
    int64_t n = t->shape[0];
    nd_tensor *shift = nd_empty(ND_SHAPE(n, 1)), *gain = nd_empty(ND_SHAPE(n, 1));
    for (int64_t k = 0; k < n; k++) {
        double abar = g->s->alphas_cumprod[(int64_t)nd_get(t, &k)];
        nd_data(shift)[k] = (float)(sqrt(abar) * g->mu);
        nd_data(gain)[k] = (float)(sqrt(1 - abar) / (abar * g->s2 + 1 - abar));
    }
    return nd_mul(nd_sub(x, shift), gain);
}

/* With clipping off, a step maps x to a x + b + sigma z, a and b from the
 * tables: the mean and the variance of x_0 follow exactly, in double. */
static void exact_moments(const nd_schedule *s, const gaussian_data *g, nd_var_type var,
                          double *mean, double *variance) {
    double m = 0, v = 1;
    for (int64_t i = s->T - 1; i >= 0; i--) {
        double abar = s->alphas_cumprod[i];
        double c = sqrt(1 - abar) / (abar * g->s2 + 1 - abar);
        double r = s->sqrt_recip_alphas_cumprod[i], rm1 = s->sqrt_recipm1_alphas_cumprod[i];
        double c1 = s->posterior_mean_coef1[i], c2 = s->posterior_mean_coef2[i];
        double a = c1 * (r - rm1 * c) + c2, b = c1 * rm1 * c * sqrt(abar) * g->mu;
        double sigma2 = var == ND_FIXED_LARGE ? s->betas[i] : s->posterior_variance[i];
        m = a * m + b;
        v = a * a * v + (i > 0 ? sigma2 : 0.0);
    }
    *mean = m;
    *variance = v;
}

START_TEST(exact_eps_recovers_gaussian_data) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 1000, 1e-4, 0.02, &err), ND_OK);
    gaussian_data g = {&s, 0.3, 0.25};
    nd_denoiser d = {exact_eps, &g, NULL, ND_PRED_EPS, NULL, 0};
    const int64_t n = 500, dim = 16, count = n * dim;
    for (int var = 0; var < 2; var++) {
        nd_sample_config cfg = nd_sample_defaults();
        cfg.var = var == 0 ? ND_FIXED_LARGE : ND_FIXED_SMALL;
        cfg.clip = false;
        cfg.seed = 21;
        nd_tensor *x = nd_p_sample_loop(&s, d, ND_SHAPE(n, dim), &cfg);
        double m = 0, v = 0;
        for (int64_t k = 0; k < count; k++) m += nd_data(x)[k];
        m /= count;
        for (int64_t k = 0; k < count; k++) v += pow(nd_data(x)[k] - m, 2);
        v /= count - 1;
        double em, ev;
        exact_moments(&s, &g, cfg.var, &em, &ev);
        /* the chain itself is close, both ways: sigma^2 = beta adds a little
         * variance (0.3% here), btilde takes a little more away (1.6%) */
        bool large = cfg.var == ND_FIXED_LARGE;
        ck_assert_msg(fabs(em - g.mu) < 1e-4 && (large ? ev > g.s2 : ev < g.s2) &&
                          fabs(ev - g.s2) < (large ? 5e-3 : 2e-2) * g.s2,
                      "exact chain: mean %g, variance %g", em, ev);
        /* and the sampler is that chain: 5 standard errors */
        ck_assert_msg(fabs(m - em) <= 5 * sqrt(ev / count),
                      "%s: sample mean %g, chain %g", var ? "fixedsmall" : "fixedlarge", m, em);
        ck_assert_msg(fabs(v - ev) <= 5 * ev * sqrt(2.0 / count),
                      "%s: sample variance %g, chain %g", var ? "fixedsmall" : "fixedlarge", v,
                      ev);
        nd_free(x);
    }
    nd_schedule_free(&s);
}
END_TEST

/* The last step adds no noise whatever z says (line 3), and earlier steps
 * add exactly sigma_t z. */
START_TEST(noise_only_before_the_last_step) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 1000, 1e-4, 0.02, &err), ND_OK);
    gaussian_data g = {&s, 0.0, 1.0};
    nd_denoiser d = {exact_eps, &g, NULL, ND_PRED_EPS, NULL, 0};
    nd_rng r = nd_rng_init(2, 0);
    nd_tensor *x = nd_randn(&r, ND_SHAPE(3, 4));
    nd_tensor *z = nd_full(ND_SHAPE(3, 4), 100.0f);
    /* steps 0, 0, 10 read through a strided view */
    nd_tensor *t = nd_slice(nd_from_buffer((const float[]){0, 5, 0, 5, 10}, ND_SHAPE(5)), 0, 0,
                            ND_END, 2);
    nd_tensor *noisy = nd_p_sample(&s, d, x, t, z, ND_FIXED_SMALL, false, NULL);
    nd_tensor *mean = nd_p_sample(&s, d, x, t, NULL, ND_FIXED_SMALL, false, NULL);
    for (int64_t k = 0; k < 12; k++) {
        float got = nd_data(noisy)[k], m = nd_data(mean)[k];
        if (k < 8)
            ck_assert(got == m);
        else
            ck_assert_near(got, m + 100.0 * sqrt(s.posterior_variance[10]), 1e-5);
    }
    nd_schedule_free(&s);
}
END_TEST

/* A tiny UNet, seeded and given nonzero output weights so that its
 * output depends on its input. */
static nd_unet *tiny_unet(uint64_t seed) {
    nd_unet_config c;
    nd_error err;
    ck_assert_int_eq(nd_unet_config_named("tiny", &c, &err), ND_OK);
    nd_rng g = nd_rng_init(seed, 0);
    nd_unet *u = nd_unet_new(&c, &g);
    nd_param_list ps = nd_parameters(nd_unet_module(u));
    for (int i = 0; i < ps.n; i++)
        if (ps.items[i].value->ndim >= 2) nd_init_torch_default_(ps.items[i].value, NULL, &g);
    nd_param_list_free(&ps);
    return u;
}

static nd_schedule short_schedule(void) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 6, 0.05, 0.5, &err), ND_OK);
    return s;
}

/* Example k of a batch draws from stream first + k: sample j of a batch of
 * 64 is sample j drawn alone, bit for bit, through a real network. */
START_TEST(each_example_has_its_own_stream) {
    nd_schedule s = short_schedule();
    nd_unet *u = tiny_unet(1);
    nd_denoiser d = nd_unet_denoiser(u);
    nd_sample_config cfg = nd_sample_defaults();
    cfg.seed = 9;
    nd_tensor *batch = nd_p_sample_loop(&s, d, ND_SHAPE(64, 1, 8, 8), &cfg);
    const int64_t picks[3] = {0, 17, 63};
    for (int p = 0; p < 3; p++) {
        cfg.first_stream = (uint32_t)picks[p];
        nd_tensor *alone = nd_p_sample_loop(&s, d, ND_SHAPE(1, 1, 8, 8), &cfg);
        ck_assert_msg(memcmp(nd_data(alone), nd_data(batch) + picks[p] * 64,
                             64 * sizeof(float)) == 0,
                      "sample %lld differs drawn alone", (long long)picks[p]);
    }
    /* and another seed gives other samples */
    cfg.first_stream = 0;
    cfg.seed = 10;
    nd_tensor *other = nd_p_sample_loop(&s, d, ND_SHAPE(1, 1, 8, 8), &cfg);
    ck_assert(memcmp(nd_data(other), nd_data(batch), 64 * sizeof(float)) != 0);
    nd_module_free(nd_unet_module(u));
    nd_schedule_free(&s);
}
END_TEST

typedef struct {
    int calls;
    int64_t steps[16];
    bool x0_in_range;
    float first_x0[4];
} seen_chain;

static void watch(void *ctx, int64_t i, const nd_tensor *x_t, const nd_tensor *x0) {
    seen_chain *c = ctx;
    ck_assert(nd_same_shape(x_t, x0));
    if (c->calls < 16) c->steps[c->calls] = i;
    for (int64_t k = 0; k < nd_numel(x0); k++)
        if (fabsf(nd_data(x0)[k]) > 1.0f) c->x0_in_range = false;
    c->calls++;
}

/* The callback sees the first step (x_T), every `every`-th after it and
 * the last, with clipped x_0
 * estimates; the model leaves in the mode it came in. */
START_TEST(callback_sees_the_chain) {
    nd_schedule s = short_schedule();
    nd_unet *u = tiny_unet(2);
    nd_module *m = nd_unet_module(u);
    seen_chain c = {.x0_in_range = true};
    nd_sample_config cfg = nd_sample_defaults();
    cfg.callback = watch;
    cfg.callback_ctx = &c;
    cfg.every = 4;
    ck_assert(m->training);
    nd_tensor *x = nd_p_sample_loop(&s, nd_unet_denoiser(u), ND_SHAPE(2, 1, 8, 8), &cfg);
    ck_assert(m->training);
    ck_assert_int_eq(c.calls, 3);
    ck_assert_int_eq(c.steps[0], 5);
    ck_assert_int_eq(c.steps[1], 1);
    ck_assert_int_eq(c.steps[2], 0);
    ck_assert(c.x0_in_range);
    ck_assert_int_eq(x->shape[0], 2);
    nd_module_train(m, false);
    cfg.every = 1;
    c.calls = 0;
    nd_free(nd_p_sample_loop(&s, nd_unet_denoiser(u), ND_SHAPE(2, 1, 8, 8), &cfg));
    ck_assert(!m->training);
    ck_assert_int_eq(c.calls, 6);
    for (int k = 0; k < 6; k++) ck_assert_int_eq(c.steps[k], 5 - k);
    cfg.every = 0;
    EXPECT_FATAL(nd_p_sample_loop(&s, nd_unet_denoiser(u), ND_SHAPE(2, 1, 8, 8), &cfg),
                 "nanodiff: p_sample_loop: callback period 0 < 1");
    nd_module_free(m);
    nd_schedule_free(&s);
}
END_TEST

/* Sampling with the EMA equals sampling a copy that holds the averages,
 * and leaves the model's own weights as they were. */
START_TEST(samples_from_the_ema_weights) {
    nd_schedule s = short_schedule();
    nd_unet *u = tiny_unet(3), *copy = tiny_unet(4);
    nd_module *m = nd_unet_module(u);
    nd_ema *ema = nd_ema_new(m, 0.5f);
    nd_ema_update(ema);
    /* move the model away from its average */
    nd_param_list ps = nd_parameters(m);
    nd_no_grad_begin();
    for (int i = 0; i < ps.n; i++)
        nd_copy_(ps.items[i].value, nd_mul_scalar(ps.items[i].value, 1.5f));
    nd_no_grad_end();
    nd_ema_copy_to(ema, nd_unet_module(copy));
    nd_tensor *before = nd_clone(ps.items[3].value);
    nd_sample_config cfg = nd_sample_defaults();
    cfg.ema = ema;
    nd_tensor *a = nd_p_sample_loop(&s, nd_unet_denoiser(u), ND_SHAPE(2, 1, 8, 8), &cfg);
    cfg.ema = NULL;
    nd_tensor *b = nd_p_sample_loop(&s, nd_unet_denoiser(copy), ND_SHAPE(2, 1, 8, 8), &cfg);
    nd_tensor *own = nd_p_sample_loop(&s, nd_unet_denoiser(u), ND_SHAPE(2, 1, 8, 8), &cfg);
    ck_assert(nd_allclose(a, b, 0, 0, false));
    ck_assert(!nd_allclose(a, own, 0, 0, false));
    ck_assert(nd_allclose(ps.items[3].value, before, 0, 0, false));
    nd_param_list_free(&ps);
    nd_ema_free(ema);
    nd_module_free(m);
    nd_module_free(nd_unet_module(copy));
    nd_schedule_free(&s);
}
END_TEST

/* The same samples, to the bit, with 1, 2 and 3 threads. */
START_TEST(same_bits_for_any_thread_count) {
    nd_schedule s = short_schedule();
    nd_unet *u = tiny_unet(5);
    int saved = nd_get_num_threads();
    nd_tensor *first = NULL;
    for (int th = 1; th <= 3; th++) {
        nd_set_num_threads(th);
        nd_sample_config cfg = nd_sample_defaults();
        cfg.seed = 33;
        nd_tensor *x = nd_p_sample_loop(&s, nd_unet_denoiser(u), ND_SHAPE(5, 1, 8, 8), &cfg);
        if (!first)
            first = x;
        else
            ck_assert_msg(memcmp(nd_data(x), nd_data(first), 5 * 64 * sizeof(float)) == 0,
                          "%d threads sample other bits than 1", th);
    }
    nd_set_num_threads(saved);
    nd_module_free(nd_unet_module(u));
    nd_schedule_free(&s);
}
END_TEST

/* ---- fewer steps ------------------------------------------------------- */

START_TEST(subsequences_are_increasing_and_span_the_chain) {
    int64_t st[64];
    nd_error err;
    ck_assert_int_eq(nd_timestep_subsequence(1000, 5, ND_SPACING_UNIFORM, st, &err), ND_OK);
    const int64_t want[5] = {0, 250, 500, 749, 999};
    for (int k = 0; k < 5; k++) ck_assert_int_eq(st[k], want[k]);
    for (int64_t S = 2; S <= 20; S++) {
        ck_assert_int_eq(nd_timestep_subsequence(20, S, ND_SPACING_QUADRATIC, st, &err), ND_OK);
        ck_assert_int_eq(st[0], 0);
        ck_assert_int_eq(st[S - 1], 19);
        for (int64_t k = 1; k < S; k++) ck_assert_int_gt(st[k], st[k - 1]);
    }
    /* quadratic spacing puts more steps early: the middle one well below T/2 */
    ck_assert_int_eq(nd_timestep_subsequence(1000, 11, ND_SPACING_QUADRATIC, st, &err), ND_OK);
    ck_assert_int_eq(st[5], 250);
    ck_assert_int_eq(nd_timestep_subsequence(10, 11, ND_SPACING_UNIFORM, st, &err), ND_ERR);
    ck_assert_str_eq(err.message, "steps: 11 of 10 steps, need 2 <= S <= T");
}
END_TEST

/* The respaced betas give back abar on the subsequence, to 1e-12; and
 * the respaced denoiser hands the network the original steps. */
static float seen_t[8];
static nd_tensor *record_t(void *self, const nd_tensor *x, const nd_tensor *t,
                           const nd_tensor *y, nd_rng *r) {
    (void)y;
    (void)self;
    (void)r;
    for (int64_t k = 0; k < t->shape[0] && k < 8; k++) seen_t[k] = nd_get(t, &k);
    return nd_zeros_like(x);
}

START_TEST(respacing_keeps_alphas_cumprod) {
    nd_schedule s, r;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 1000, 1e-4, 0.02, &err), ND_OK);
    int64_t st[50];
    ck_assert_int_eq(nd_timestep_subsequence(1000, 50, ND_SPACING_QUADRATIC, st, &err), ND_OK);
    ck_assert_int_eq(nd_schedule_respace(&s, st, 50, &r, &err), ND_OK);
    ck_assert_int_eq(r.T, 50);
    for (int k = 0; k < 50; k++)
        ck_assert_msg(fabs(r.alphas_cumprod[k] - s.alphas_cumprod[st[k]]) <=
                          1e-12 * s.alphas_cumprod[st[k]],
                      "abar at %d: %.17g vs %.17g", k, r.alphas_cumprod[k],
                      s.alphas_cumprod[st[k]]);
    nd_respaced rs = {{record_t, NULL, NULL, ND_PRED_EPS, NULL, 0}, st, 50, NULL};
    nd_denoiser d = nd_respaced_denoiser(&rs);
    nd_denoise(d, nd_zeros(ND_SHAPE(3, 2)), nd_from_buffer((const float[]){0, 7, 49}, ND_SHAPE(3)),
               NULL);
    ck_assert(seen_t[0] == (float)st[0] && seen_t[1] == (float)st[7] && seen_t[2] == (float)st[49]);
    nd_schedule_free(&r);
    const int64_t bad[3] = {0, 5, 5};
    ck_assert_int_eq(nd_schedule_respace(&s, bad, 3, &r, &err), ND_ERR);
    ck_assert_str_eq(err.message, "steps: 5 then 5 do not increase");
    nd_schedule_free(&s);
    ck_assert_int_eq(nd_schedule_respace(&s, st, 50, &r, &err), ND_ERR);
}
END_TEST

/* The exact eps of Gaussian data as the posterior mean it implies on the
 * original schedule: what a network trained with predicts = mean outputs. */
static nd_tensor *exact_mean(void *self, const nd_tensor *x, const nd_tensor *t,
                             const nd_tensor *y, nd_rng *r) {
    const gaussian_data *g = self;
    nd_tensor *x0 = nd_predict_x0_from_eps(g->s, x, t, exact_eps(self, x, t, y, r));
    return nd_q_posterior(g->s, x0, x, t).mean;
}

/* Respaced sampling with a denoiser of the posterior mean: the mean is the
 * original one-step posterior's, so the respaced chain must go through x_0
 * on the original schedule; then it is the chain of the eps denoiser from
 * the same noise (taken as a respaced mean, it is not). */
START_TEST(respaced_mean_denoiser_matches_eps) {
    nd_schedule s, r;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 1000, 1e-4, 0.02, &err), ND_OK);
    int64_t st[40];
    ck_assert_int_eq(nd_timestep_subsequence(1000, 40, ND_SPACING_UNIFORM, st, &err), ND_OK);
    ck_assert_int_eq(nd_schedule_respace(&s, st, 40, &r, &err), ND_OK);
    gaussian_data g = {&s, 0.3, 0.25};
    nd_respaced by_eps = {{exact_eps, &g, NULL, ND_PRED_EPS, NULL, 0}, st, 40, NULL};
    nd_respaced by_mean = {{exact_mean, &g, NULL, ND_PRED_MEAN, NULL, 0}, st, 40, &s};
    nd_sample_config cfg = nd_sample_defaults();
    cfg.clip = false;
    cfg.seed = 5;
    nd_tensor *a = nd_p_sample_loop(&r, nd_respaced_denoiser(&by_eps), ND_SHAPE(64, 4), &cfg);
    nd_tensor *b = nd_p_sample_loop(&r, nd_respaced_denoiser(&by_mean), ND_SHAPE(64, 4), &cfg);
    ck_assert_int_eq(nd_respaced_denoiser(&by_mean).predicts, ND_PRED_X0);
    for (int64_t k = 0; k < 256; k++)
        ck_assert_msg(fabsf(nd_data(a)[k] - nd_data(b)[k]) < 2e-4f * (1 + fabsf(nd_data(a)[k])),
                      "sample %lld: %g by eps, %g by the mean", (long long)k,
                      (double)nd_data(a)[k], (double)nd_data(b)[k]);
    by_mean.base = NULL;
    EXPECT_FATAL(nd_respaced_denoiser(&by_mean),
                 "nanodiff: respaced_denoiser: a denoiser that predicts the posterior mean needs "
                 "the original schedule (base) to be respaced");
    nd_free(a);
    nd_free(b);
    nd_schedule_free(&r);
    nd_schedule_free(&s);
}
END_TEST

/* DDIM with eta = 1 on the whole schedule is Algorithm 2 with fixedsmall:
 * from the same seed (the same x_T and z), the same chain up to rounding,
 * through a real network and with clipping. */
START_TEST(ddim_eta_one_is_algorithm_two) {
    nd_schedule s = short_schedule();
    nd_unet *u = tiny_unet(8);
    nd_sample_config cfg = nd_sample_defaults();
    cfg.var = ND_FIXED_SMALL;
    cfg.seed = 12;
    const int64_t all[6] = {0, 1, 2, 3, 4, 5};
    nd_tensor *a = nd_p_sample_loop(&s, nd_unet_denoiser(u), ND_SHAPE(3, 1, 8, 8), &cfg);
    nd_tensor *b = nd_ddim_sample_loop(&s, nd_unet_denoiser(u), all, 6, 1.0f,
                                       ND_SHAPE(3, 1, 8, 8), &cfg);
    ck_assert_msg(nd_allclose(b, a, 1e-4, 1e-4, false), "DDIM eta = 1 left Algorithm 2's chain");
    /* and eta = 0 gives another, deterministic one */
    nd_tensor *c = nd_ddim_sample_loop(&s, nd_unet_denoiser(u), all, 6, 0.0f,
                                       ND_SHAPE(3, 1, 8, 8), &cfg);
    ck_assert(!nd_allclose(c, a, 1e-2, 1e-2, false));
    EXPECT_FATAL(nd_ddim_sample_loop(&s, nd_unet_denoiser(u), all, 6, 1.5f, ND_SHAPE(1, 1, 8, 8),
                                     &cfg),
                 "nanodiff: ddim_sample_loop: eta 1.5 is not in [0, 1]");
    nd_module_free(nd_unet_module(u));
    nd_schedule_free(&s);
}
END_TEST

/* With the exact eps of Gaussian data N(mu, s^2), the probability-flow
 * map that DDIM with eta = 0 follows takes x_0 to (x_0 - mu) / s at x_T
 * (abar_T is 4e-5), and back. DDIM is first-order in its step: measured,
 * the codes are off their exact values by 1.7% (relative RMS) with 100
 * steps and 0.24% with 1000, and decoding gives the data back to an RMSE
 * of 2.8e-2 and 3.0e-3 (5.5e-2 with 50 steps). */
START_TEST(ddim_encodes_and_decodes_gaussian_data) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 1000, 1e-4, 0.02, &err), ND_OK);
    gaussian_data g = {&s, 0.3, 0.25};
    nd_denoiser d = {exact_eps, &g, NULL, ND_PRED_EPS, NULL, 0};
    nd_rng r = nd_rng_init(14, 0);
    const int64_t n = 2000;
    nd_tensor *x0 = nd_add_scalar(nd_mul_scalar(nd_randn(&r, ND_SHAPE(n, 1)), 0.5f), 0.3f);
    nd_sample_config cfg = nd_sample_defaults();
    cfg.clip = false;
    const int64_t sizes[2] = {100, 1000};
    const double code_tol[2] = {0.03, 0.005}, back_tol[2] = {0.04, 0.005};
    int64_t st[1000];
    for (int q = 0; q < 2; q++) {
        int64_t S = sizes[q];
        ck_assert_int_eq(nd_timestep_subsequence(1000, S, ND_SPACING_UNIFORM, st, &err), ND_OK);
        nd_tensor *z = nd_ddim_encode(&s, d, st, S, x0, &cfg);
        nd_tensor *back = nd_ddim_decode(&s, d, st, S, z, &cfg);
        double ez = 0, eb = 0;
        for (int64_t k = 0; k < n; k++) {
            double x = nd_data(x0)[k], exact = (x - g.mu) / sqrt(g.s2);
            ez += pow(nd_data(z)[k] - exact, 2) / (1 + exact * exact);
            eb += pow(nd_data(back)[k] - x, 2);
        }
        ez = sqrt(ez / n);
        eb = sqrt(eb / n);
        ck_assert_msg(ez < code_tol[q] && eb < back_tol[q],
                      "S = %lld: code off by %g (relative RMS), data back off by %g (RMSE)",
                      (long long)S, ez, eb);
    }
    nd_schedule_free(&s);
}
END_TEST

TCase *tcase_sample(void) {
    TCase *tc = nd_test_case("sample");
    tcase_add_test(tc, exact_eps_recovers_gaussian_data);
    tcase_add_test(tc, noise_only_before_the_last_step);
    tcase_add_test(tc, each_example_has_its_own_stream);
    tcase_add_test(tc, callback_sees_the_chain);
    tcase_add_test(tc, samples_from_the_ema_weights);
    tcase_add_test(tc, same_bits_for_any_thread_count);
    tcase_add_test(tc, subsequences_are_increasing_and_span_the_chain);
    tcase_add_test(tc, respacing_keeps_alphas_cumprod);
    tcase_add_test(tc, respaced_mean_denoiser_matches_eps);
    tcase_add_test(tc, ddim_eta_one_is_algorithm_two);
    tcase_add_test(tc, ddim_encodes_and_decodes_gaussian_data);
    return tc;
}
