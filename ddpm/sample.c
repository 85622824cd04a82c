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

#include "ddpm.h"

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
static nd_tensor *draw_noise(nd_rng *streams, const int64_t *shape, int ndim) {
    int64_t n = shape[0], per = 1;
    for (int d = 1; d < ndim; d++) per *= shape[d];
    nd_tensor *z = nd_empty(shape, ndim);
    for (int64_t k = 0; k < n; k++) {
        nd_tensor *zk = nd_randn(&streams[k], ND_SHAPE(per));
        memcpy(nd_data(z) + k * per, nd_data(zk), (size_t)per * sizeof(float));
        nd_free(zk);
    }
    return z;
}

/* The model's weights swapped with another set of the same names and
 * shapes (the EMA's), in place; swapping again restores them. */
static void swap_weights(nd_module *model, const nd_ema *ema) {
    nd_param_list mine = nd_parameters(model), avg = nd_ema_state(ema);
    if (mine.n != avg.n) nd_fatal("p_sample_loop", "the EMA is of another model");
    for (int i = 0; i < mine.n; i++) {
        nd_tensor *a = mine.items[i].value, *b = avg.items[i].value;
        if (strcmp(mine.items[i].name, avg.items[i].name) || !nd_same_shape(a, b))
            nd_fatal("p_sample_loop", "the EMA's %s does not match the model's %s",
                     avg.items[i].name, mine.items[i].name);
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

nd_tensor *nd_p_sample_loop(const nd_schedule *s, nd_denoiser d, const int64_t *shape,
                            int ndim, const nd_sample_config *config) {
    const char *op = "p_sample_loop";
    if (!s || !shape || !config) nd_fatal(op, "schedule, shape or config is NULL");
    if (ndim < 1 || ndim > ND_MAX_DIMS || shape[0] < 1)
        nd_fatal(op, "shape needs [N, ...] with N >= 1");
    if (config->every < 1) nd_fatal(op, "callback period %lld < 1", (long long)config->every);
    if (config->ema && !d.module) nd_fatal(op, "EMA weights given for a denoiser without a module");
    int64_t n = shape[0];
    if ((uint64_t)config->first_stream + (uint64_t)n - 1 > UINT32_MAX)
        nd_fatal(op, "streams %u.. for %lld examples pass 2^32", config->first_stream,
                 (long long)n);
    nd_rng *streams = nd_alloc((size_t)n * sizeof *streams);
    for (int64_t k = 0; k < n; k++)
        streams[k] = nd_rng_init(config->seed, config->first_stream + (uint32_t)k);
    bool was_training = d.module && d.module->training;
    if (d.module) nd_module_train(d.module, false);
    if (config->ema) swap_weights(d.module, config->ema);
    nd_no_grad_begin();

    nd_tensor *x = draw_noise(streams, shape, ndim); /* line 1 */
    nd_tensor *t = nd_empty(ND_SHAPE(n));
    for (int64_t i = s->T - 1; i >= 0; i--) {        /* line 2 */
        nd_scope *step = nd_scope_begin();
        nd_fill_(t, (float)i);
        nd_tensor *z = i > 0 ? draw_noise(streams, shape, ndim) : NULL; /* line 3 */
        nd_tensor *x0_pred = NULL;
        nd_tensor *next = nd_p_sample(s, d, x, t, z, config->var, config->clip, &x0_pred);
        if (config->callback && (i % config->every == 0 || i == 0))
            config->callback(config->callback_ctx, i, x, x0_pred);
        nd_keep(next);
        nd_scope_end(step);
        nd_free(x);
        x = next;
    }
    nd_free(t);

    nd_no_grad_end();
    if (config->ema) swap_weights(d.module, config->ema);
    if (d.module) nd_module_train(d.module, was_training);
    nd_dealloc(streams, (size_t)n * sizeof *streams);
    return x; /* line 6 */
}
