/* The diffusion itself (Ho et al. 2020, section 2 and 3.2): the forward
 * process q and its posterior, the reverse process p_theta from a
 * denoiser's eps prediction, and the simplified loss L_simple.
 *
 * Every function takes one step per example, t [N], and reads the
 * schedule's double tables through nd_extract as [N, 1, ..., 1] factors;
 * they are built from ops, so a gradient flows through them to the
 * denoiser. */
#include <math.h>

#include "ddpm.h"

static void check_batch(const char *op, const nd_tensor *x, const nd_tensor *t) {
    char a[ND_SHAPE_STR_LEN], b[ND_SHAPE_STR_LEN];
    if (!x || !t) nd_fatal(op, "x or t is NULL");
    if (x->ndim < 1 || t->ndim != 1 || t->shape[0] != x->shape[0])
        nd_fatal(op, "x %s and t %s: t needs one step per example, [N]",
                 nd_shape_str(x->shape, x->ndim, a), nd_shape_str(t->shape, t->ndim, b));
}

static void check_same(const char *op, const nd_tensor *a, const nd_tensor *b) {
    char sa[ND_SHAPE_STR_LEN], sb[ND_SHAPE_STR_LEN];
    if (!a || !b) nd_fatal(op, "a tensor is NULL");
    if (!nd_same_shape(a, b))
        nd_fatal(op, "shapes %s and %s differ", nd_shape_str(a->shape, a->ndim, sa),
                 nd_shape_str(b->shape, b->ndim, sb));
}

/* table[t] as a factor for x */
static nd_tensor *at(const nd_schedule *s, const double *table, const nd_tensor *t,
                     const nd_tensor *x) {
    return nd_extract(s, table, t, x->ndim);
}

nd_denoiser nd_denoiser_with_labels(nd_denoiser d, const nd_tensor *labels, float guidance) {
    if (!isfinite(guidance)) nd_fatal("denoiser_with_labels", "guidance %g", guidance);
    d.labels = labels;
    d.guidance = guidance;
    return d;
}

/* out(x, none) + w (out(x, labels) - out(x, none)) (Ho and Salimans 2022);
 * w = 0 and w = 1 take one call and return its output as it is */
nd_tensor *nd_denoise(nd_denoiser d, const nd_tensor *x_t, const nd_tensor *t, nd_rng *rng) {
    if (!d.forward) nd_fatal("denoise", "the denoiser has no forward function");
    char a[ND_SHAPE_STR_LEN], b[ND_SHAPE_STR_LEN];
    if (d.labels && (!t || d.labels->ndim != 1 || d.labels->shape[0] != t->shape[0]))
        nd_fatal("denoise", "labels %s for steps %s: one label per example, [N]",
                 nd_shape_str(d.labels->shape, d.labels->ndim, a),
                 t ? nd_shape_str(t->shape, t->ndim, b) : "NULL");
    nd_tensor *out;
    if (!d.labels || d.guidance == 0.0f) {
        out = d.forward(d.self, x_t, t, NULL, rng);
    } else if (d.guidance == 1.0f) {
        out = d.forward(d.self, x_t, t, d.labels, rng);
    } else {
        nd_tensor *none = d.forward(d.self, x_t, t, NULL, rng);
        nd_tensor *cond = d.forward(d.self, x_t, t, d.labels, rng);
        check_same("denoise", none, x_t);
        out = nd_add(none, nd_mul_scalar(nd_sub(cond, none), d.guidance));
    }
    check_same("denoise", out, x_t);
    return out;
}

/* Eq. 4: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps */
nd_tensor *nd_q_sample(const nd_schedule *s, const nd_tensor *x0, const nd_tensor *t,
                       const nd_tensor *eps) {
    check_batch("q_sample", x0, t);
    check_same("q_sample", x0, eps);
    return nd_add(nd_mul(at(s, s->sqrt_alphas_cumprod, t, x0), x0),
                  nd_mul(at(s, s->sqrt_one_minus_alphas_cumprod, t, x0), eps));
}

/* Eq. 4 solved for x_0: x_0 = sqrt(1/abar_t) x_t - sqrt(1/abar_t - 1) eps */
nd_tensor *nd_predict_x0_from_eps(const nd_schedule *s, const nd_tensor *x_t,
                                  const nd_tensor *t, const nd_tensor *eps) {
    check_batch("predict_x0_from_eps", x_t, t);
    check_same("predict_x0_from_eps", x_t, eps);
    return nd_sub(nd_mul(at(s, s->sqrt_recip_alphas_cumprod, t, x_t), x_t),
                  nd_mul(at(s, s->sqrt_recipm1_alphas_cumprod, t, x_t), eps));
}

/* Eqs. 6-7: q(x_{t-1} | x_t, x_0) = N(coef1_t x_0 + coef2_t x_t, btilde_t I) */
nd_gaussian nd_q_posterior(const nd_schedule *s, const nd_tensor *x0, const nd_tensor *x_t,
                           const nd_tensor *t) {
    check_batch("q_posterior", x_t, t);
    check_same("q_posterior", x0, x_t);
    nd_gaussian g;
    g.mean = nd_add(nd_mul(at(s, s->posterior_mean_coef1, t, x_t), x0),
                    nd_mul(at(s, s->posterior_mean_coef2, t, x_t), x_t));
    g.variance = at(s, s->posterior_variance, t, x_t);
    g.log_variance = at(s, s->posterior_log_variance_clipped, t, x_t);
    return g;
}

/* (mean - coef2_t x_t) / coef1_t: the posterior mean of Eq. 7 solved for
 * x_0 (coef1_t > 0 at every step) */
nd_tensor *nd_predict_x0_from_mean(const nd_schedule *s, const nd_tensor *x_t,
                                   const nd_tensor *t, const nd_tensor *mean) {
    check_batch("predict_x0_from_mean", x_t, t);
    check_same("predict_x0_from_mean", x_t, mean);
    return nd_div(nd_sub(mean, nd_mul(at(s, s->posterior_mean_coef2, t, x_t), x_t)),
                  at(s, s->posterior_mean_coef1, t, x_t));
}

nd_tensor *nd_prediction_target(const nd_schedule *s, nd_prediction predicts, const nd_tensor *x0,
                                const nd_tensor *x_t, const nd_tensor *t, const nd_tensor *eps) {
    switch (predicts) {
    case ND_PRED_EPS: return nd_view(eps, eps->shape, eps->ndim);
    case ND_PRED_X0: return nd_view(x0, x0->shape, x0->ndim);
    case ND_PRED_MEAN: {
        nd_gaussian q = nd_q_posterior(s, x0, x_t, t);
        return q.mean;
    }
    }
    nd_fatal("prediction_target", "unknown prediction %d", (int)predicts);
}

/* mu_theta = mu_tilde(x0_hat, x_t) with x0_hat from the network: the same
 * as Eq. 11, 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps_theta),
 * for an eps prediction that is not clipped. sigma_t^2 = beta_t or
 * btilde_t. */
nd_gaussian nd_p_mean_variance(const nd_schedule *s, const nd_tensor *out,
                               nd_prediction predicts, const nd_tensor *x_t, const nd_tensor *t,
                               nd_var_type var, bool clip, nd_tensor **x0_pred) {
    check_batch("p_mean_variance", x_t, t);
    if (var != ND_FIXED_LARGE && var != ND_FIXED_SMALL)
        nd_fatal("p_mean_variance", "unknown variance type %d", (int)var);
    nd_gaussian g;
    nd_tensor *x0;
    if (predicts == ND_PRED_MEAN) {
        x0 = nd_predict_x0_from_mean(s, x_t, t, out);
        if (clip) x0 = nd_clamp(x0, -1.0f, 1.0f);
        g = nd_q_posterior(s, x0, x_t, t);
        nd_free(g.mean);
        g.mean = nd_view(out, out->shape, out->ndim);
    } else if (predicts == ND_PRED_EPS || predicts == ND_PRED_X0) {
        x0 = predicts == ND_PRED_EPS ? nd_predict_x0_from_eps(s, x_t, t, out)
                                     : nd_view(out, out->shape, out->ndim);
        check_same("p_mean_variance", x_t, x0);
        if (clip) x0 = nd_clamp(x0, -1.0f, 1.0f);
        g = nd_q_posterior(s, x0, x_t, t);
    } else {
        nd_fatal("p_mean_variance", "unknown prediction %d", (int)predicts);
    }
    if (x0_pred) *x0_pred = x0;
    if (var == ND_FIXED_LARGE) {
        /* beta_t, but btilde_1 in the log at i = 0, as the reference code:
         * the log of beta_0 would make the last step's log-likelihood
         * term needlessly sharp */
        nd_free(g.variance);
        nd_free(g.log_variance);
        int64_t n = t->shape[0];
        g.variance = at(s, s->betas, t, x_t);
        g.log_variance = nd_empty(g.variance->shape, g.variance->ndim);
        float *lv = nd_data(g.log_variance);
        for (int64_t k = 0; k < n; k++) {
            int64_t i = (int64_t)nd_get(t, &k);
            lv[k] = (float)log(i == 0 ? s->posterior_variance[1] : s->betas[i]);
        }
    }
    return g;
}

nd_tensor *nd_sample_timesteps(const nd_schedule *s, int64_t n, nd_rng *rng) {
    if (!s || !rng) nd_fatal("sample_timesteps", "schedule or rng is NULL");
    if (n < 0) nd_fatal("sample_timesteps", "%lld steps asked for", (long long)n);
    return nd_randint(rng, 0, s->T, ND_SHAPE(n));
}

/* Eq. 14: || eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t) ||^2,
 * averaged over every element of the batch */
nd_tensor *nd_loss_simple_at(const nd_schedule *s, nd_denoiser d, const nd_tensor *x0,
                             const nd_tensor *t, const nd_tensor *eps, nd_rng *rng) {
    nd_tensor *x_t = nd_q_sample(s, x0, t, eps);
    nd_tensor *pred = nd_denoise(d, x_t, t, rng);
    nd_tensor *target = nd_prediction_target(s, d.predicts, x0, x_t, t, eps);
    return nd_mean(nd_square(nd_sub(target, pred)), NULL, 0, false);
}

nd_tensor *nd_loss_vlb_at(const nd_schedule *s, nd_denoiser d, const nd_tensor *x0,
                          const nd_tensor *t, const nd_tensor *eps, nd_var_type var,
                          nd_rng *rng) {
    nd_tensor *x_t = nd_q_sample(s, x0, t, eps);
    nd_tensor *out = nd_denoise(d, x_t, t, rng);
    return nd_mean(nd_vb_terms_bpd(s, out, d.predicts, x0, x_t, t, var, false), NULL, 0, false);
}

nd_tensor *nd_loss_simple(const nd_schedule *s, nd_denoiser d, const nd_tensor *x0,
                          nd_rng *rng) {
    if (!x0 || x0->ndim < 1) nd_fatal("loss_simple", "x0 is NULL or 0-d");
    nd_tensor *t = nd_sample_timesteps(s, x0->shape[0], rng);
    nd_tensor *eps = nd_randn(rng, x0->shape, x0->ndim);
    return nd_loss_simple_at(s, d, x0, t, eps, rng);
}
