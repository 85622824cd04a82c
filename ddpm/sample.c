/* Algorithm 2 (Ho et al. 2020): sampling.
 *
 *   1: x_T ~ N(0, I)
 *   2: for t = T, ..., 1 do
 *   3:   z ~ N(0, I) if t > 1, else z = 0
 *   4:   x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t/sqrt(1 - abar_t) eps_theta(x_t, t)) + sigma_t z
 *   5: end for
 *   6: return x_0
 *
 * Line 4's mean is computed as the reference code does, as the posterior
 * mean of an x_0 estimate (nd_p_mean_variance), which allows clipping it. */
#include <math.h>
#include <string.h>

#include "internal.h"

nd_sample_config nd_sample_defaults(void) {
    return (nd_sample_config){.var = ND_FIXED_LARGE, .clip = true, .every = 1};
}

/* line 4 for every example at step i; z NULL (or i = 0) adds no noise */
nd_tensor *nd_p_sample(const nd_schedule *s, nd_denoiser d, const nd_tensor *x_t,
                       const nd_tensor *t, const nd_tensor *z, nd_var_type var, bool clip,
                       nd_tensor **x0_pred) {
    nd_tensor *out = nd_denoise(d, x_t, t, NULL);
    nd_gaussian p = nd_p_mean_variance(s, out, d.predicts, x_t, t, var, clip, x0_pred);
    if (!z) return p.mean;
    char a[ND_SHAPE_STR_LEN], b[ND_SHAPE_STR_LEN];
    if (!nd_same_shape(z, x_t))
        nd_fatal("p_sample", "noise %s for x_t %s", nd_shape_str(z->shape, z->ndim, a),
                 nd_shape_str(x_t->shape, x_t->ndim, b));
    /* sigma_t = exp(log sigma_t^2 / 2), times 0 where t = 0 (line 3) */
    nd_tensor *sigma = nd_exp(nd_mul_scalar(p.log_variance, 0.5f));
    nd_tensor *nonzero = nd_gt(nd_reshape(t, sigma->shape, sigma->ndim), nd_scalar(0.0f));
    return nd_add(p.mean, nd_mul(nd_mul(nonzero, sigma), z));
}

/* N(0, I) for each example from its own stream, shape [N, ...] */
nd_tensor *nd__sampling_noise(nd__sampling *ss) {
    int64_t n = ss->shape[0], per = 1;
    for (int d = 1; d < ss->ndim; d++) per *= ss->shape[d];
    nd_tensor *z = nd_empty(ss->shape, ss->ndim);
    for (int64_t k = 0; k < n; k++) {
        nd_tensor *zk = nd_randn(&ss->streams[k], ND_SHAPE(per));
        memcpy(nd_data(z) + k * per, nd_data(zk), (size_t)per * sizeof(float));
        nd_free(zk);
    }
    return z;
}

/* The model's weights swapped with another set of the same names and
 * shapes (the EMA's), in place; swapping again restores them. */
static void swap_weights(nd_module *model, const nd_ema *ema, const char *op) {
    nd_param_list mine = nd_parameters(model), avg = nd_ema_state(ema);
    if (mine.n != avg.n) nd_fatal(op, "the EMA is of another model");
    for (int i = 0; i < mine.n; i++) {
        nd_tensor *a = mine.items[i].value, *b = avg.items[i].value;
        if (strcmp(mine.items[i].name, avg.items[i].name) || !nd_same_shape(a, b))
            nd_fatal(op, "the EMA's %s does not match the model's %s", avg.items[i].name,
                     mine.items[i].name);
        float *pa = nd_data(a), *pb = nd_data(b);
        for (int64_t e = 0, m = nd_numel(a); e < m; e++) {
            float tmp = pa[e];
            pa[e] = pb[e];
            pb[e] = tmp;
        }
    }
    nd_param_list_free(&mine);
    nd_param_list_free(&avg);
}

void nd__sampling_begin(nd__sampling *ss, const char *op, nd_denoiser d, const int64_t *shape,
                        int ndim, const nd_sample_config *config) {
    if (!shape || !config) nd_fatal(op, "shape or config is NULL");
    if (ndim < 1 || ndim > ND_MAX_DIMS || shape[0] < 1)
        nd_fatal(op, "shape needs [N, ...] with N >= 1");
    if (config->every < 1) nd_fatal(op, "callback period %lld < 1", (long long)config->every);
    if (config->ema && !d.module) nd_fatal(op, "EMA weights given for a denoiser without a module");
    int64_t n = shape[0];
    if ((uint64_t)config->first_stream + (uint64_t)n - 1 > UINT32_MAX)
        nd_fatal(op, "streams %u.. for %lld examples pass 2^32", config->first_stream,
                 (long long)n);
    ss->op = op;
    ss->d = d;
    ss->config = config;
    ss->shape = shape;
    ss->ndim = ndim;
    ss->streams = nd_alloc((size_t)n * sizeof *ss->streams);
    for (int64_t k = 0; k < n; k++)
        ss->streams[k] = nd_rng_init(config->seed, config->first_stream + (uint32_t)k);
    ss->was_training = d.module && d.module->training;
    if (d.module) nd_module_train(d.module, false);
    if (config->ema) swap_weights(d.module, config->ema, op);
    nd_no_grad_begin();
}

void nd__sampling_end(nd__sampling *ss) {
    nd_no_grad_end();
    if (ss->config->ema) swap_weights(ss->d.module, ss->config->ema, ss->op);
    if (ss->d.module) nd_module_train(ss->d.module, ss->was_training);
    nd_dealloc(ss->streams, (size_t)ss->shape[0] * sizeof *ss->streams);
}

nd_tensor *nd_p_sample_loop(const nd_schedule *s, nd_denoiser d, const int64_t *shape,
                            int ndim, const nd_sample_config *config) {
    if (!s) nd_fatal("p_sample_loop", "schedule is NULL");
    nd__sampling ss;
    nd__sampling_begin(&ss, "p_sample_loop", d, shape, ndim, config);
    nd_tensor *x = nd__sampling_noise(&ss);          /* line 1 */
    nd_tensor *t = nd_empty(ND_SHAPE(shape[0]));
    for (int64_t i = s->T - 1; i >= 0; i--) {        /* line 2 */
        nd_scope *step = nd_scope_begin();
        nd_fill_(t, (float)i);
        nd_tensor *z = i > 0 ? nd__sampling_noise(&ss) : NULL; /* line 3 */
        nd_tensor *x0_pred = NULL;
        nd_tensor *next = nd_p_sample(s, d, x, t, z, config->var, config->clip, &x0_pred);
        if (config->callback && ((s->T - 1 - i) % config->every == 0 || i == 0))
            config->callback(config->callback_ctx, i, x, x0_pred);
        nd_keep(next);
        nd_scope_end(step);
        nd_free(x);
        x = next;
    }
    nd_free(t);
    nd__sampling_end(&ss);
    return x; /* line 6 */
}
