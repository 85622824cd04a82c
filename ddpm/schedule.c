/* Noise schedules: the betas and the tables the forward process, the
 * posterior and the sampler read (Ho et al. 2020, Eqs. 4 and 6-7).
 *
 * Everything is computed in double: a float32 running product of 1000
 * alphas drifts in the sixth digit by the last step (4.0358325e-05
 * against 4.0358298e-05), which the x_0 estimate then divides by. */
#include <math.h>
#include <string.h>

#include "ddpm.h"

#define NTABLES 12

/* The tables in the order they are carved from one block. */
static void tables(nd_schedule *s, double **t[NTABLES]) {
    double **all[NTABLES] = {
        &s->betas, &s->alphas, &s->alphas_cumprod, &s->alphas_cumprod_prev,
        &s->sqrt_alphas_cumprod, &s->sqrt_one_minus_alphas_cumprod,
        &s->sqrt_recip_alphas_cumprod, &s->sqrt_recipm1_alphas_cumprod,
        &s->posterior_variance, &s->posterior_log_variance_clipped,
        &s->posterior_mean_coef1, &s->posterior_mean_coef2};
    memcpy(t, all, sizeof all);
}

void nd_schedule_free(nd_schedule *s) {
    if (!s) return;
    if (s->betas) nd_dealloc(s->betas, (size_t)(NTABLES * s->T) * sizeof(double));
    memset(s, 0, sizeof *s);
}

static int check_t(int64_t T, nd_error *err) {
    if (T < 2) return nd_error_set(err, "schedule: T = %lld, need at least 2 steps", (long long)T);
    if (T > (1 << 24))
        return nd_error_set(err, "schedule: T = %lld is more steps than float32 counts "
                            "exactly (2^24)", (long long)T);
    return ND_OK;
}

int nd_schedule_from_betas(nd_schedule *s, const double *betas, int64_t T, nd_error *err) {
    if (!s) return nd_error_set(err, "schedule: no schedule to fill");
    memset(s, 0, sizeof *s);
    if (check_t(T, err)) return ND_ERR;
    if (!betas) return nd_error_set(err, "schedule: no betas");
    for (int64_t i = 0; i < T; i++)
        if (!(isfinite(betas[i]) && betas[i] > 0.0 && betas[i] < 1.0))
            return nd_error_set(err, "schedule: beta_%lld = %g is not in (0, 1)",
                                (long long)i, betas[i]);
    /* one block, carved into the tables in the order of the struct */
    double *block = nd_alloc((size_t)(NTABLES * T) * sizeof(double));
    double **t[NTABLES];
    tables(s, t);
    for (int k = 0; k < NTABLES; k++) *t[k] = block + k * T;
    s->T = T;
    /* 1 - abar by its own recurrence, 1 - abar_i = (1 - abar_{i-1}) +
     * abar_{i-1} beta_i: no cancellation where abar is near 1, and exactly
     * beta_0 at i = 0, so that btilde_0 = 0, coef1_0 = 1 and coef2_0 = 0
     * hold exactly */
    double abar = 1.0, om = 0.0;
    for (int64_t i = 0; i < T; i++) {
        double beta = betas[i], alpha = 1.0 - beta, prev = abar, om_prev = om;
        abar *= alpha;
        om = om_prev + prev * beta;
        s->betas[i] = beta;
        s->alphas[i] = alpha;
        s->alphas_cumprod[i] = abar;
        s->alphas_cumprod_prev[i] = prev;
        s->sqrt_alphas_cumprod[i] = sqrt(abar);
        s->sqrt_one_minus_alphas_cumprod[i] = sqrt(om);
        s->sqrt_recip_alphas_cumprod[i] = sqrt(1.0 / abar);
        s->sqrt_recipm1_alphas_cumprod[i] = sqrt(om / abar);
        /* Eq. 7: btilde = beta (1 - abar_prev) / (1 - abar) */
        s->posterior_variance[i] = beta * om_prev / om;
        s->posterior_mean_coef1[i] = beta * sqrt(prev) / om;
        s->posterior_mean_coef2[i] = om_prev * sqrt(alpha) / om;
    }
    /* log(0) at i = 0: the reference code clips it to the next step's value */
    s->posterior_log_variance_clipped[0] = log(s->posterior_variance[1]);
    for (int64_t i = 1; i < T; i++)
        s->posterior_log_variance_clipped[i] = log(s->posterior_variance[i]);
    return ND_OK;
}

int nd_schedule_linear(nd_schedule *s, int64_t T, double beta_start, double beta_end,
                       nd_error *err) {
    if (s) memset(s, 0, sizeof *s);
    if (check_t(T, err)) return ND_ERR;
    if (!(isfinite(beta_start) && isfinite(beta_end) && beta_start > 0.0 && beta_end < 1.0 &&
          beta_start <= beta_end))
        return nd_error_set(err, "schedule: linear betas from %g to %g, need 0 < start <= "
                            "end < 1", beta_start, beta_end);
    double *betas = nd_alloc((size_t)T * sizeof(double));
    for (int64_t i = 0; i < T; i++)
        betas[i] = beta_start + (beta_end - beta_start) * (double)i / (double)(T - 1);
    int rc = nd_schedule_from_betas(s, betas, T, err);
    nd_dealloc(betas, (size_t)T * sizeof(double));
    return rc;
}

int nd_schedule_cosine(nd_schedule *s, int64_t T, double offset, double max_beta,
                       nd_error *err) {
    if (s) memset(s, 0, sizeof *s);
    if (check_t(T, err)) return ND_ERR;
    if (!(isfinite(offset) && offset >= 0.0))
        return nd_error_set(err, "schedule: cosine offset %g is not a number >= 0", offset);
    if (!(max_beta > 0.0 && max_beta < 1.0))
        return nd_error_set(err, "schedule: cosine max_beta %g is not in (0, 1)", max_beta);
    const double pi = 3.14159265358979323846;
    double *betas = nd_alloc((size_t)T * sizeof(double));
    /* abar(t) = f(t) / f(0); beta_i = 1 - abar(i + 1) / abar(i), capped so
     * that the last steps, where abar reaches 0, stay below 1 */
    for (int64_t i = 0; i < T; i++) {
        double a = cos(((double)i / (double)T + offset) / (1.0 + offset) * pi / 2);
        double b = cos(((double)(i + 1) / (double)T + offset) / (1.0 + offset) * pi / 2);
        betas[i] = fmin(1.0 - (b * b) / (a * a), max_beta);
    }
    int rc = nd_schedule_from_betas(s, betas, T, err);
    nd_dealloc(betas, (size_t)T * sizeof(double));
    return rc;
}

nd_tensor *nd_extract(const nd_schedule *s, const double *table, const nd_tensor *t, int ndim) {
    const char *op = "extract";
    if (!s || !table || !t) nd_fatal(op, "schedule, table or t is NULL");
    char buf[ND_SHAPE_STR_LEN];
    if (t->ndim != 1)
        nd_fatal(op, "t %s is not [N]", nd_shape_str(t->shape, t->ndim, buf));
    if (ndim < 1 || ndim > ND_MAX_DIMS) nd_fatal(op, "%d axes asked for", ndim);
    int64_t n = t->shape[0], shape[ND_MAX_DIMS];
    shape[0] = n;
    for (int d = 1; d < ndim; d++) shape[d] = 1;
    nd_tensor *out = nd_empty(shape, ndim);
    float *o = nd_data(out);
    for (int64_t k = 0; k < n; k++) {
        float v = nd_get(t, &k);
        if (!(v >= 0.0f && v < (float)s->T && v == floorf(v))) {
            nd_free(out);
            nd_fatal(op, "t[%lld] = %g is not a step in [0, %lld)", (long long)k, v,
                     (long long)s->T);
        }
        o[k] = (float)table[(int64_t)v];
    }
    return out;
}
