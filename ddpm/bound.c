/* The variational bound on the negative log-likelihood (Ho et al. 2020,
 * Eq. 5), term by term, in bits per dimension:
 *
 *   L = L_T + sum_{t>1} L_{t-1} + L_0
 *   L_T     = KL(q(x_T | x_0) || N(0, I))
 *   L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t))
 *   L_0     = -log p_theta(x_0 | x_1), the discretized Gaussian of Eq. 13
 *
 * Each term is averaged over the dimensions of an example and divided by
 * ln 2, as the paper reports it. */
#include <math.h>
#include <string.h>

#include "ddpm.h"

#define LN2 0.69314718055994530942

/* KL(N(m1, e^lv1) || N(m2, e^lv2)) per element:
 *   0.5 (-1 + lv2 - lv1 + e^(lv1 - lv2) + (m1 - m2)^2 e^-lv2) */
nd_tensor *nd_normal_kl(const nd_tensor *mean1, const nd_tensor *logvar1,
                        const nd_tensor *mean2, const nd_tensor *logvar2) {
    if (!mean1 || !logvar1 || !mean2 || !logvar2) nd_fatal("normal_kl", "a tensor is NULL");
    nd_tensor *gap = nd_square(nd_sub(mean1, mean2));
    nd_tensor *sum = nd_add(nd_sub(logvar2, logvar1), nd_exp(nd_sub(logvar1, logvar2)));
    sum = nd_add(sum, nd_mul(gap, nd_exp(nd_neg(logvar2))));
    return nd_mul_scalar(nd_add_scalar(sum, -1.0f), 0.5f);
}

/* ---- the discretized Gaussian decoder (Eq. 13) -------------------------- */

/* log Q(u) = log P(Z > u) for Z ~ N(0, 1), in double, finite for every
 * finite u: erfc keeps its relative precision far into the tail, and past
 * u = 30 (where it would soon underflow) the asymptotic series
 * Q(u) = phi(u) / u (1 - 1/u^2 + 3/u^4 - 15/u^6 ...) takes over. */
static double log_q(double u) {
    if (u < 30.0) return log(0.5 * erfc(u / sqrt(2.0)));
    double v = 1.0 / (u * u);
    return -0.5 * u * u - log(u) - 0.5 * log(2.0 * 3.14159265358979323846) +
           log1p(v * (-1.0 + v * (3.0 - 15.0 * v)));
}

/* log phi(u), the standard normal density */
static double log_phi(double u) { return -0.5 * u * u - 0.5 * log(2.0 * 3.14159265358979323846); }

/* log(e^a - e^b) for a >= b; expm1 keeps the digits when b is near a */
static double log_diff(double a, double b) {
    return b == -INFINITY ? a : a + log(-expm1(b - a));
}

/* The bin of x on the 256-level grid of [-1, 1] is [x - 1/255, x + 1/255],
 * the outermost extended to -inf and +inf. x is first snapped to its grid
 * point k / 127.5 - 1 in double: a float32 grid point is off by up to
 * 6e-8, which left gaps or overlaps between the bins that a tiny scale
 * (e^-12 = 6e-6) turned into percent of probability. With a = (lo - m)/s
 * and b = (hi - m)/s, P = Phi(b) - Phi(a), taken from the tail on the side
 * away from the mean so that nothing cancels:
 *   both ends above 0: Q(a) - Q(b);  otherwise: Q(-b) - Q(-a). */
typedef struct {
    double logp, a, b; /* a, b: -inf / +inf at the outer edges */
} bin_prob;

static bin_prob bin_of(double x, double m, double log_scale) {
    const double half = 1.0 / 255.0;
    double k = nearbyint((x + 1.0) * 127.5);
    k = k < 0.0 ? 0.0 : k > 255.0 ? 255.0 : k;
    double xg = k / 127.5 - 1.0, inv = exp(-log_scale);
    bin_prob r;
    r.a = k == 0.0 ? -INFINITY : (xg - half - m) * inv;
    r.b = k == 255.0 ? INFINITY : (xg + half - m) * inv;
    if (r.a > 0.0)
        r.logp = log_diff(log_q(r.a), r.b == INFINITY ? -INFINITY : log_q(r.b));
    else
        r.logp = log_diff(log_q(-r.b), r.a == -INFINITY ? -INFINITY : log_q(-r.a));
    return r;
}

typedef struct {
    int64_t n;
} decoder_args;

/* d log P / d m = (phi(a) - phi(b)) / (s P), each ratio phi / P taken in
 * logs so that it stays finite where P is tiny */
static void decoder_backward(const nd_function_ctx *ctx, const nd_tensor *dy, nd_tensor **grads) {
    const nd_tensor *x = ctx->saved[0], *m = ctx->saved[1], *ls = ctx->saved[2];
    if (!ctx->in[1]->requires_grad) return;
    int64_t n = nd_numel(x);
    nd_tensor *g = nd_empty(x->shape, x->ndim);
    const float *px = nd_data(x), *pm = nd_data(m), *pl = nd_data(ls), *pd = nd_data(dy);
    float *pg = nd_data(g);
    for (int64_t e = 0; e < n; e++) {
        bin_prob r = bin_of(px[e], pm[e], pl[e]);
        double da = r.a == -INFINITY ? 0.0 : exp(log_phi(r.a) - r.logp);
        double db = r.b == INFINITY ? 0.0 : exp(log_phi(r.b) - r.logp);
        pg[e] = (float)((da - db) * exp(-(double)pl[e]) * pd[e]);
    }
    grads[1] = g;
}

static const nd_function decoder_fn = {.name = "discretized_gaussian_log_likelihood",
                                       .backward = decoder_backward};

/* log p(x | m, s) of the bin x falls in, per element, for data x on the
 * 256-level grid of [-1, 1] (x = k / 127.5 - 1). means and log_scales
 * broadcast to x's shape. Differentiable in the means. */
nd_tensor *nd_discretized_gaussian_log_likelihood(const nd_tensor *x, const nd_tensor *means,
                                                  const nd_tensor *log_scales) {
    const char *op = "discretized_gaussian_log_likelihood";
    if (!x || !means || !log_scales) nd_fatal(op, "a tensor is NULL");
    if (x->requires_grad || log_scales->requires_grad)
        nd_fatal(op, "x and log_scales carry no gradient here (data and fixed variances)");
    nd_tensor *xc = nd_contiguous(x);
    nd_tensor *m = nd_contiguous(nd_expand(nd_detach(means), x->shape, x->ndim));
    nd_tensor *ls = nd_contiguous(nd_expand(log_scales, x->shape, x->ndim));
    int64_t n = nd_numel(x);
    nd_tensor *out = nd_empty(x->shape, x->ndim);
    const float *px = nd_data(xc), *pm = nd_data(m), *pl = nd_data(ls);
    float *po = nd_data(out);
    for (int64_t e = 0; e < n; e++) po[e] = (float)bin_of(px[e], pm[e], pl[e]).logp;
    const nd_tensor *in[2] = {x, means};
    const nd_tensor *saved[3] = {xc, m, ls};
    decoder_args args = {n};
    return nd_function_apply(&decoder_fn, out, in, 2, saved, 3, &args, sizeof args);
}

/* ---- the terms ----------------------------------------------------------- */

/* mean over every axis but the first, in bits */
static nd_tensor *bits_per_dim(const nd_tensor *x) {
    int axes[ND_MAX_DIMS];
    for (int d = 1; d < x->ndim; d++) axes[d - 1] = d;
    nd_tensor *m = x->ndim > 1 ? nd_mean(x, axes, x->ndim - 1, false) : nd_view(x, x->shape, 1);
    return nd_mul_scalar(m, (float)(1.0 / LN2));
}

/* L_T: q(x_T | x_0) = N(sqrt(abar_T) x_0, 1 - abar_T) against N(0, I) */
nd_tensor *nd_prior_bpd(const nd_schedule *s, const nd_tensor *x0) {
    if (!s || !x0 || x0->ndim < 1) nd_fatal("prior_bpd", "schedule or x0 is NULL or 0-d");
    int64_t n = x0->shape[0], last = s->T - 1;
    nd_tensor *t = nd_full(ND_SHAPE(n), (float)last);
    nd_tensor *mean = nd_mul(nd_extract(s, s->sqrt_alphas_cumprod, t, x0->ndim), x0);
    nd_tensor *lv = nd_full(ND_SHAPE(1), (float)log(1.0 - s->alphas_cumprod[last]));
    nd_tensor *zero = nd_zeros(ND_SHAPE(1));
    return bits_per_dim(nd_normal_kl(mean, nd_expand(lv, x0->shape, x0->ndim), zero, zero));
}

/* L_{t-1} where t > 0, L_0 where t = 0: per example, in bits per
 * dimension, for x_t drawn from q(x_t | x_0) by the caller. */
nd_tensor *nd_vb_terms_bpd(const nd_schedule *s, const nd_tensor *out, nd_prediction predicts,
                           const nd_tensor *x0, const nd_tensor *x_t, const nd_tensor *t,
                           nd_var_type var, bool clip) {
    nd_gaussian q = nd_q_posterior(s, x0, x_t, t);
    nd_gaussian p = nd_p_mean_variance(s, out, predicts, x_t, t, var, clip, NULL);
    nd_tensor *kl = bits_per_dim(nd_normal_kl(q.mean, q.log_variance, p.mean, p.log_variance));
    nd_tensor *half_lv = nd_mul_scalar(nd_detach(p.log_variance), 0.5f);
    nd_tensor *nll = bits_per_dim(
        nd_neg(nd_discretized_gaussian_log_likelihood(x0, p.mean, half_lv)));
    nd_tensor *first = nd_eq(t, nd_scalar(0.0f));
    return nd_where(first, nll, kl);
}

/* ---- the whole bound ------------------------------------------------------ */

nd_bpd nd_calc_bpd(const nd_schedule *s, nd_denoiser d, const nd_tensor *x0,
                   const nd_bpd_config *config) {
    const char *op = "calc_bpd";
    if (!s || !x0 || !config) nd_fatal(op, "schedule, x0 or config is NULL");
    if (x0->ndim < 1 || x0->shape[0] < 1) nd_fatal(op, "x0 needs a batch [N, ...]");
    int64_t T = s->T, n = x0->shape[0];
    if (config->steps == 1)
        nd_fatal(op, "an estimate needs at least 2 steps (L_0 and one more); 0 means all");
    int64_t k = config->steps <= 0 || config->steps >= T ? T : config->steps;
    nd_bpd r;
    memset(&r, 0, sizeof r);
    r.estimated = k < T;
    r.nsteps = k;
    /* the steps evaluated: all of them, or L_0 and k - 1 of the T - 1
     * others drawn without replacement (a partial Fisher-Yates shuffle) */
    int64_t *steps = nd_alloc((size_t)T * sizeof *steps);
    for (int64_t i = 0; i < T; i++) steps[i] = i;
    nd_rng g = nd_rng_init(config->seed, 0);
    if (r.estimated) {
        nd_tensor *u = nd_rand(&g, ND_SHAPE(k));
        for (int64_t j = 1; j < k; j++) {
            float offset = nd_data(u)[j] * (float)(T - j); /* rounded as on every target */
            int64_t pick = j + (int64_t)offset;
            pick = pick >= T ? T - 1 : pick;
            int64_t tmp = steps[j];
            steps[j] = steps[pick];
            steps[pick] = tmp;
        }
        nd_free(u);
    }
    bool was_training = d.module && d.module->training;
    if (d.module) nd_module_train(d.module, false);
    nd_no_grad_begin();
    r.steps = nd_persist(nd_empty(ND_SHAPE(k)));
    r.terms = nd_persist(nd_empty(ND_SHAPE(n, k)));
    r.x0_mse = nd_persist(nd_empty(ND_SHAPE(n, k)));
    r.prior = nd_persist(nd_prior_bpd(s, x0));
    nd_tensor *t = nd_empty(ND_SHAPE(n));
    /* each of the T - 1 terms after L_0 is drawn with probability
     * (k - 1) / (T - 1): the scaled sum is unbiased */
    double scale = r.estimated ? (double)(T - 1) / (double)(k - 1) : 1.0;
    r.l0 = nd_persist(nd_zeros(ND_SHAPE(n)));
    r.vb = nd_persist(nd_zeros(ND_SHAPE(n)));
    for (int64_t j = 0; j < k; j++) {
        nd_scope *step = nd_scope_begin();
        int64_t i = steps[j];
        nd_data(r.steps)[j] = (float)i;
        nd_fill_(t, (float)i);
        nd_tensor *x_t = nd_q_sample(s, x0, t, nd_randn(&g, x0->shape, x0->ndim));
        nd_tensor *out = nd_denoise(d, x_t, t, NULL);
        nd_tensor *term = nd_vb_terms_bpd(s, out, d.predicts, x0, x_t, t, config->var,
                                          config->clip);
        nd_tensor *x0_pred;
        nd_p_mean_variance(s, out, d.predicts, x_t, t, config->var, config->clip, &x0_pred);
        nd_tensor *mse = nd_square(nd_sub(x0_pred, x0));
        if (mse->ndim > 1) {
            int axes[ND_MAX_DIMS];
            for (int a = 1; a < mse->ndim; a++) axes[a - 1] = a;
            mse = nd_mean(mse, axes, mse->ndim - 1, false);
        }
        for (int64_t e = 0; e < n; e++) {
            float v = nd_data(term)[e];
            nd_data(r.terms)[e * k + j] = v;
            nd_data(r.x0_mse)[e * k + j] = nd_data(mse)[e];
            if (i == 0)
                nd_data(r.l0)[e] = v;
            else
                nd_data(r.vb)[e] += (float)(scale * v);
        }
        nd_scope_end(step);
        if (config->progress) config->progress(config->progress_ctx, j + 1, k);
    }
    r.total = nd_persist(nd_add(nd_add(r.prior, r.vb), r.l0));
    nd_free(t);
    nd_no_grad_end();
    if (d.module) nd_module_train(d.module, was_training);
    nd_dealloc(steps, (size_t)T * sizeof *steps);
    return r;
}

/* Section 4.3: once the receiver holds x_t it has been sent L_T and the
 * terms of every step above t; its best guess of x_0 is the network's
 * x0_hat from x_t. Rate in bits per dimension, distortion as the RMSE of
 * x0_hat on the [0, 255] scale, both over the whole batch. */
int nd_rate_distortion(const nd_bpd *r, double *rate, double *distortion, nd_error *err) {
    if (!r || !r->terms || !rate || !distortion)
        return nd_error_set(err, "rate-distortion: no bound or no arrays");
    if (r->estimated)
        return nd_error_set(err, "rate-distortion: needs every step's term, not an estimate");
    int64_t n = r->terms->shape[0], k = r->nsteps;
    const float *terms = nd_data(r->terms), *mse = nd_data(r->x0_mse);
    for (int64_t i = k - 1; i >= 0; i--) {
        double sent = 0, err2 = 0;
        for (int64_t e = 0; e < n; e++) {
            sent += nd_data(r->prior)[e];
            for (int64_t j = i + 1; j < k; j++) sent += terms[e * k + j];
            err2 += mse[e * k + i];
        }
        rate[i] = sent / (double)n;
        distortion[i] = 127.5 * sqrt(err2 / (double)n);
    }
    return ND_OK;
}

void nd_bpd_free(nd_bpd *r) {
    if (!r) return;
    nd_free(r->x0_mse);
    nd_free(r->total);
    nd_free(r->prior);
    nd_free(r->vb);
    nd_free(r->l0);
    nd_free(r->terms);
    nd_free(r->steps);
    memset(r, 0, sizeof *r);
}
