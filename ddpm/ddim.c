/* Fewer steps than T: DDIM (Song, Meng and Ermon 2021) and the respaced
 * DDPM of Nichol and Dhariwal (2021), both on an increasing subsequence
 * tau_1 < ... < tau_S of the training steps.
 *
 * DDIM's step from tau_k to tau_{k-1} (their Eq. 12), with a = abar at
 * tau_k and a' = abar at tau_{k-1} (1 below the first step):
 *   x0_hat = (x - sqrt(1 - a) eps) / sqrt(a)
 *   sigma  = eta sqrt((1 - a') / (1 - a)) sqrt(1 - a / a')
 *   x'     = sqrt(a') x0_hat + sqrt(1 - a' - sigma^2) eps + sigma z
 * eta = 1 on the full schedule gives sigma^2 = btilde and the posterior
 * mean: Algorithm 2 with fixedsmall. eta = 0 is deterministic, a map from
 * x_T to x_0 that runs backwards too (nd_ddim_encode). */
#include <math.h>
#include <string.h>

#include "internal.h"

int nd_timestep_subsequence(int64_t T, int64_t S, nd_spacing spacing, int64_t *steps,
                            nd_error *err) {
    if (!steps) return nd_error_set(err, "steps: no array to fill");
    if (T < 2 || S < 2 || S > T)
        return nd_error_set(err, "steps: %lld of %lld steps, need 2 <= S <= T", (long long)S,
                            (long long)T);
    if (spacing != ND_SPACING_UNIFORM && spacing != ND_SPACING_QUADRATIC)
        return nd_error_set(err, "steps: unknown spacing %d", (int)spacing);
    for (int64_t k = 0; k < S; k++) {
        double f = (double)k / (double)(S - 1);
        if (spacing == ND_SPACING_QUADRATIC) f *= f;
        steps[k] = (int64_t)nearbyint(f * (double)(T - 1));
    }
    /* quadratic spacing crowds the first steps onto the same integers:
     * push each past the one before (the last stays T - 1 as S <= T) */
    for (int64_t k = 1; k < S; k++)
        if (steps[k] <= steps[k - 1]) steps[k] = steps[k - 1] + 1;
    for (int64_t k = S - 1; k > 0 && steps[k] > T - 1 - (S - 1 - k); k--)
        steps[k] = T - 1 - (S - 1 - k);
    return ND_OK;
}

static int check_steps(const nd_schedule *s, const int64_t *steps, int64_t S, nd_error *err) {
    if (!s || !s->betas || !steps) return nd_error_set(err, "steps: no schedule or no steps");
    if (S < 1) return nd_error_set(err, "steps: %lld steps", (long long)S);
    for (int64_t k = 0; k < S; k++) {
        if (steps[k] < 0 || steps[k] >= s->T)
            return nd_error_set(err, "steps: step %lld is %lld, outside [0, %lld)", (long long)k,
                                (long long)steps[k], (long long)s->T);
        if (k > 0 && steps[k] <= steps[k - 1])
            return nd_error_set(err, "steps: %lld then %lld do not increase",
                                (long long)steps[k - 1], (long long)steps[k]);
    }
    return ND_OK;
}

/* beta'_k = 1 - abar(tau_k) / abar(tau_{k-1}): the products of 1 - beta'
 * are abar on the subsequence */
int nd_schedule_respace(const nd_schedule *base, const int64_t *steps, int64_t S,
                        nd_schedule *out, nd_error *err) {
    if (out) memset(out, 0, sizeof *out);
    if (check_steps(base, steps, S, err)) return ND_ERR;
    if (S < 2) return nd_error_set(err, "steps: a respaced schedule needs at least 2 steps");
    double *betas = nd_alloc((size_t)S * sizeof *betas);
    double prev = 1.0;
    for (int64_t k = 0; k < S; k++) {
        double abar = base->alphas_cumprod[steps[k]];
        betas[k] = 1.0 - abar / prev;
        prev = abar;
    }
    int rc = nd_schedule_from_betas(out, betas, S, err);
    nd_dealloc(betas, (size_t)S * sizeof *betas);
    return rc;
}

/* The network was trained on the original steps: index k of the
 * respaced chain is step tau_k to it. */
static nd_tensor *respaced_forward(void *self, const nd_tensor *x_t, const nd_tensor *t,
                                   const nd_tensor *labels, nd_rng *rng) {
    const nd_respaced *r = self;
    int64_t n = t->shape[0];
    nd_tensor *orig = nd_empty(ND_SHAPE(n));
    for (int64_t e = 0; e < n; e++) {
        float k = nd_get(t, &e);
        if (!(k >= 0.0f && k < (float)r->S && k == floorf(k)))
            nd_fatal("respaced", "t[%lld] = %g is not a step of the %lld", (long long)e, k,
                     (long long)r->S);
        nd_data(orig)[e] = (float)r->steps[(int64_t)k];
    }
    nd_denoiser inner = r->inner;
    inner.labels = labels;
    inner.guidance = 1.0f; /* the guidance is the outer denoiser's */
    nd_tensor *out = nd_denoise(inner, x_t, orig, rng);
    /* A predicted mean is that of the original one-step posterior at
     * tau_k: as x_0, through the original schedule, it suits any step. */
    if (inner.predicts == ND_PRED_MEAN) out = nd_predict_x0_from_mean(r->base, x_t, orig, out);
    return out;
}

nd_denoiser nd_respaced_denoiser(const nd_respaced *r) {
    if (!r || !r->steps || r->S < 1) nd_fatal("respaced_denoiser", "no steps");
    if (r->inner.predicts == ND_PRED_MEAN && !r->base)
        nd_fatal("respaced_denoiser", "a denoiser that predicts the posterior mean needs the "
                 "original schedule (base) to be respaced");
    return (nd_denoiser){.forward = respaced_forward, .self = (void *)r,
                         .module = r->inner.module,
                         .predicts = r->inner.predicts == ND_PRED_MEAN ? ND_PRED_X0
                                                                       : r->inner.predicts,
                         .labels = r->inner.labels, .guidance = r->inner.guidance};
}

/* x0_hat and the eps that goes with it (re-derived after clipping, so
 * that the step stays on the line through x_t and x0_hat) */
static void estimate(const nd_schedule *s, nd_denoiser d, const nd_tensor *x, const nd_tensor *t,
                     bool clip, nd_tensor **x0, nd_tensor **eps) {
    nd_tensor *out = nd_denoise(d, x, t, NULL);
    nd_gaussian unused = nd_p_mean_variance(s, out, d.predicts, x, t, ND_FIXED_SMALL, clip, x0);
    (void)unused;
    if (d.predicts == ND_PRED_EPS && !clip) {
        *eps = out;
        return;
    }
    /* eps = (x / sqrt(abar) - x0) / sqrt(1 / abar - 1) */
    *eps = nd_div(nd_sub(nd_mul(nd_extract(s, s->sqrt_recip_alphas_cumprod, t, x->ndim), x), *x0),
                  nd_extract(s, s->sqrt_recipm1_alphas_cumprod, t, x->ndim));
}

static int64_t check_loop(const char *op, const nd_schedule *s, const int64_t *steps, int64_t S,
                          float eta) {
    nd_error err;
    if (check_steps(s, steps, S, &err)) nd_fatal(op, "%s", err.message);
    if (!(eta >= 0.0f && eta <= 1.0f)) nd_fatal(op, "eta %g is not in [0, 1]", eta);
    return S;
}

/* The chain from x at tau_S down to x_0, noise (where sigma > 0) from the
 * run's streams, as Algorithm 2 draws it, so that the two can be compared */
static nd_tensor *ddim_run(nd__sampling *ss, const nd_schedule *s, const int64_t *steps,
                           int64_t S, float eta, nd_tensor *x) {
    const nd_sample_config *config = ss->config;
    nd_tensor *t = nd_empty(ND_SHAPE(x->shape[0]));
    for (int64_t k = S - 1; k >= 0; k--) {
        nd_scope *step = nd_scope_begin();
        int64_t i = steps[k];
        nd_fill_(t, (float)i);
        nd_tensor *x0, *eps;
        estimate(s, ss->d, x, t, config->clip, &x0, &eps);
        double a = s->alphas_cumprod[i], ap = k > 0 ? s->alphas_cumprod[steps[k - 1]] : 1.0;
        double sigma = eta * sqrt((1.0 - ap) / (1.0 - a)) * sqrt(1.0 - a / ap);
        double dir = sqrt(fmax(1.0 - ap - sigma * sigma, 0.0));
        nd_tensor *next = nd_add(nd_mul_scalar(x0, (float)sqrt(ap)), nd_mul_scalar(eps, (float)dir));
        if (sigma > 0.0) next = nd_add(next, nd_mul_scalar(nd__sampling_noise(ss), (float)sigma));
        if (config->callback && ((S - 1 - k) % config->every == 0 || k == 0))
            config->callback(config->callback_ctx, i, x, x0);
        nd_keep(next);
        nd_scope_end(step);
        nd_free(x);
        x = next;
    }
    nd_free(t);
    return x;
}

nd_tensor *nd_ddim_sample_loop(const nd_schedule *s, nd_denoiser d, const int64_t *steps,
                               int64_t S, float eta, const int64_t *shape, int ndim,
                               const nd_sample_config *config) {
    const char *op = "ddim_sample_loop";
    check_loop(op, s, steps, S, eta);
    nd__sampling ss;
    nd__sampling_begin(&ss, op, d, shape, ndim, config);
    nd_tensor *x = ddim_run(&ss, s, steps, S, eta, nd__sampling_noise(&ss));
    nd__sampling_end(&ss);
    return x;
}

nd_tensor *nd_ddim_decode(const nd_schedule *s, nd_denoiser d, const int64_t *steps, int64_t S,
                          const nd_tensor *x_T, const nd_sample_config *config) {
    const char *op = "ddim_decode";
    check_loop(op, s, steps, S, 0.0f);
    if (!x_T || x_T->ndim < 1) nd_fatal(op, "x_T is NULL or 0-d");
    nd__sampling ss;
    nd__sampling_begin(&ss, op, d, x_T->shape, x_T->ndim, config);
    nd_tensor *x = ddim_run(&ss, s, steps, S, 0.0f, nd_clone(x_T));
    nd__sampling_end(&ss);
    return x;
}

/* DDIM with eta = 0 run forwards: x at tau_{k+1} = sqrt(a') x0_hat +
 * sqrt(1 - a') eps with x0_hat and eps read at tau_k, starting from the
 * data itself at tau_1. */
nd_tensor *nd_ddim_encode(const nd_schedule *s, nd_denoiser d, const int64_t *steps, int64_t S,
                          const nd_tensor *x0, const nd_sample_config *config) {
    const char *op = "ddim_encode";
    check_loop(op, s, steps, S, 0.0f);
    if (!x0 || x0->ndim < 1) nd_fatal(op, "x0 is NULL or 0-d");
    nd__sampling ss;
    nd__sampling_begin(&ss, op, d, x0->shape, x0->ndim, config);
    nd_tensor *x = nd_clone(x0);
    nd_tensor *t = nd_empty(ND_SHAPE(x0->shape[0]));
    for (int64_t k = 0; k + 1 < S; k++) {
        nd_scope *step = nd_scope_begin();
        nd_fill_(t, (float)steps[k]);
        nd_tensor *xh, *eps;
        estimate(s, d, x, t, config->clip, &xh, &eps);
        double an = s->alphas_cumprod[steps[k + 1]];
        nd_tensor *next = nd_add(nd_mul_scalar(xh, (float)sqrt(an)),
                                 nd_mul_scalar(eps, (float)sqrt(1.0 - an)));
        if (config->callback && (k % config->every == 0 || k + 2 == S))
            config->callback(config->callback_ctx, steps[k], x, xh);
        nd_keep(next);
        nd_scope_end(step);
        nd_free(x);
        x = next;
    }
    nd_free(t);
    nd__sampling_end(&ss);
    return x;
}
