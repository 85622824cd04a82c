/* Algorithm 1 (Ho et al. 2020): training.
 *
 *   1: repeat
 *   2:   x_0 ~ q(x_0)
 *   3:   t ~ Uniform({1, ..., T})
 *   4:   eps ~ N(0, I)
 *   5:   take a gradient step on grad_theta || eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t) ||^2
 *   6: until converged
 *
 * nd_train_step is one pass of lines 2-5 as the reference code runs it:
 * Adam with a linear warmup, the gradient clipped by its global norm, and
 * an EMA of the weights updated after every step. */
#include <math.h>
#include <string.h>

#include "ddpm.h"

nd_train_config nd_train_defaults(void) {
    nd_train_config c;
    c.optim = nd_optim_defaults(ND_ADAM);
    c.optim.lr = 2e-4;
    c.optim.warmup_steps = 5000;
    c.grad_clip = 1.0;
    c.ema_decay = 0.9999;
    c.random_flip = false;
    c.loss = ND_LOSS_MSE;
    c.var = ND_FIXED_LARGE;
    c.label_drop = 0.1f;
    return c;
}

nd_trainer *nd_trainer_new(const nd_schedule *s, nd_denoiser d, nd_train_config config,
                           uint64_t seed) {
    const char *op = "trainer_new";
    if (!s || !s->betas) nd_fatal(op, "schedule is NULL or empty");
    if (!d.forward || !d.module) nd_fatal(op, "the denoiser has no module to train");
    if (!(config.grad_clip >= 0.0 && isfinite(config.grad_clip)))
        nd_fatal(op, "grad_clip %g is not a number >= 0", config.grad_clip);
    if (!(config.ema_decay >= 0.0 && config.ema_decay <= 1.0))
        nd_fatal(op, "ema_decay %g is not in [0, 1]", config.ema_decay);
    if (config.loss != ND_LOSS_MSE && config.loss != ND_LOSS_VLB)
        nd_fatal(op, "unknown loss type %d", (int)config.loss);
    if (!(config.label_drop >= 0.0f && config.label_drop <= 1.0f))
        nd_fatal(op, "label_drop %g is not in [0, 1]", config.label_drop);
    if (config.var != ND_FIXED_LARGE && config.var != ND_FIXED_SMALL)
        nd_fatal(op, "unknown variance type %d", (int)config.var);
    if ((unsigned)d.predicts > ND_PRED_MEAN)
        nd_fatal(op, "unknown prediction %d", (int)d.predicts);
    nd_optimizer *opt = nd_optimizer_new(d.module, config.optim); /* checks optim */
    nd_trainer *tr = nd_alloc(sizeof *tr);
    memset(tr, 0, sizeof *tr);
    tr->schedule = s;
    tr->denoiser = d;
    tr->config = config;
    tr->optimizer = opt;
    tr->ema = nd_ema_new(d.module, config.ema_decay);
    tr->rng = nd_rng_init(seed, 0);
    return tr;
}

void nd_trainer_free(nd_trainer *tr) {
    if (!tr) return;
    nd_optimizer_free(tr->optimizer);
    nd_ema_free(tr->ema);
    nd_dealloc(tr, sizeof *tr);
}

/* Each image of x [N, C, H, W] mirrored left-right with probability 1/2. */
static nd_tensor *random_flip(const nd_tensor *x, nd_rng *rng) {
    int64_t n = x->shape[0], rows = x->shape[1] * x->shape[2], w = x->shape[3];
    nd_tensor *coin = nd_rand(rng, ND_SHAPE(n));
    nd_tensor *src = nd_contiguous(x), *out = nd_empty(x->shape, x->ndim);
    const float *a = nd_data(src);
    float *b = nd_data(out);
    for (int64_t k = 0; k < n; k++) {
        bool flip = nd_data(coin)[k] < 0.5f;
        for (int64_t r = 0; r < rows; r++) {
            const float *in = a + (k * rows + r) * w;
            float *o = b + (k * rows + r) * w;
            for (int64_t j = 0; j < w; j++) o[j] = in[flip ? w - 1 - j : j];
        }
    }
    return out;
}

nd_train_stats nd_train_step(nd_trainer *tr, const nd_tensor *x0) {
    return nd_train_step_labels(tr, x0, NULL);
}

nd_train_stats nd_train_step_labels(nd_trainer *tr, const nd_tensor *x0,
                                    const nd_tensor *labels) {
    if (!tr) nd_fatal("train_step", "trainer is NULL");
    if (!x0 || x0->ndim < 1 || x0->shape[0] < 1)
        nd_fatal("train_step", "x0 needs a batch [N, ...] with N >= 1");
    if (labels && (labels->ndim != 1 || labels->shape[0] != x0->shape[0]))
        nd_fatal("train_step", "labels need one per example, [N]");
    char shape[ND_SHAPE_STR_LEN];
    if (tr->config.random_flip && x0->ndim != 4)
        nd_fatal("train_step", "random flips need images [N, C, H, W], got %s",
                 nd_shape_str(x0->shape, x0->ndim, shape));
    nd_train_stats st;
    nd_module *model = tr->denoiser.module;
    bool was_training = model->training;
    nd_module_train(model, true);
    nd_scope *step = nd_scope_begin();
    if (tr->config.random_flip) x0 = random_flip(x0, &tr->rng);      /* line 2 */
    nd_denoiser d = tr->denoiser;
    if (labels) {
        /* Ho and Salimans (2022): the same model learns the unconditional
         * output from the examples whose label is dropped */
        nd_tensor *coin = nd_rand(&tr->rng, ND_SHAPE(x0->shape[0]));
        nd_tensor *kept = nd_ge(coin, nd_scalar(tr->config.label_drop));
        nd_tensor *y = nd_where(kept, nd_reshape(labels, ND_SHAPE(x0->shape[0])), nd_scalar(-1.0f));
        d = nd_denoiser_with_labels(d, y, 1.0f);
    }
    /* lines 3-4 (t, then eps) and the loss of line 5 */
    nd_tensor *t = nd_sample_timesteps(tr->schedule, x0->shape[0], &tr->rng);
    nd_tensor *eps = nd_randn(&tr->rng, x0->shape, x0->ndim);
    nd_tensor *loss =
        tr->config.loss == ND_LOSS_VLB
            ? nd_loss_vlb_at(tr->schedule, d, x0, t, eps, tr->config.var, &tr->rng)
            : nd_loss_simple_at(tr->schedule, d, x0, t, eps, &tr->rng);
    st.loss = nd_item(loss);
    nd_backward_free_graph(loss);                                      /* line 5 */
    st.grad_norm = nd_clip_grad_norm(model, tr->config.grad_clip > 0.0 ? tr->config.grad_clip
                                                                       : INFINITY);
    st.lr = nd_optimizer_lr(tr->optimizer);
    nd_optimizer_step(tr->optimizer);
    nd_optimizer_zero_grad(tr->optimizer);
    nd_ema_update(tr->ema);
    nd_scope_end(step);
    nd_module_train(model, was_training);
    tr->step++;
    return st;
}

int nd_trainer_save(const nd_trainer *tr, const char *path, const char *config,
                    nd_error *err) {
    if (!tr) return nd_error_set(err, "no trainer to save");
    nd_checkpoint ck = {.model = tr->denoiser.module, .optimizer = tr->optimizer,
                        .ema = tr->ema, .rng = (nd_rng *)&tr->rng, .step = tr->step,
                        .config = config};
    return nd_checkpoint_save(path, &ck, err);
}

int nd_trainer_load(nd_trainer *tr, const char *path, nd_error *err) {
    if (!tr) return nd_error_set(err, "no trainer to load into");
    nd_checkpoint ck = {.model = tr->denoiser.module, .optimizer = tr->optimizer,
                        .ema = tr->ema, .rng = &tr->rng};
    if (nd_checkpoint_load(path, &ck, err) != ND_OK) return ND_ERR;
    tr->step = ck.step;
    return ND_OK;
}
