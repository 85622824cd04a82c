/* Optimizers (SGD with momentum, Adam, AdamW), linear learning-rate
 * warmup and global-norm gradient clipping.
 *
 * The update follows PyTorch's torch.optim (1.13) term by term so that a
 * checkpoint's state means the same thing in both: the scalars (lr_t, the
 * bias corrections, step_size) are computed in double as Python does, the
 * per-element work in float, one element at a time in index order. Each
 * float operation is its own statement, so no compiler fuses two of them
 * into one FMA and every build rounds the same way.
 *
 * DDPM trains with Adam, lr 2e-4, 5000 warmup steps and gradients clipped
 * to norm 1 (Ho et al. 2020, appendix B). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nn.h"

struct nd_optimizer {
    nd_module *model;
    nd_optim_config config;
    nd_param_list params;
    /* per parameter: 0 state tensors (plain SGD), 1 (momentum_buffer) or 2
     * (exp_avg, exp_avg_sq); the tensors of parameter i sit at
     * state[i * per_param ...] */
    int per_param;
    nd_named_param *state;
    int64_t steps;
};

nd_optim_config nd_optim_defaults(nd_optim_kind kind) {
    nd_optim_config c = {
        .kind = kind,
        .lr = 1e-3,
        .momentum = 0.0,
        .beta1 = 0.9,
        .beta2 = 0.999,
        .eps = 1e-8,
        .weight_decay = 0.0,
        .warmup_steps = 0,
    };
    if (kind == ND_SGD) c.lr = 1e-2;
    if (kind == ND_ADAMW) c.weight_decay = 1e-2;
    return c;
}

/* nd_fatal after releasing what was allocated: a caller that catches the
 * error (the tests do) must not be left holding the memory. */
static ND_NORETURN void fatal_freeing(nd_param_list *list, const char *op,
                                      const char *fmt, ...) ND_PRINTF(3, 4);
static void fatal_freeing(nd_param_list *list, const char *op, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    nd_param_list_free(list);
    nd_fatal(op, "%s", msg);
}

static void check_config(const nd_optim_config *c) {
    const char *op = "optimizer_new";
    if (c->kind != ND_SGD && c->kind != ND_ADAM && c->kind != ND_ADAMW)
        nd_fatal(op, "unknown optimizer kind %d", (int)c->kind);
    if (!(isfinite(c->lr) && c->lr >= 0.0f))
        nd_fatal(op, "learning rate %g is not a finite number >= 0", c->lr);
    if (!(isfinite(c->momentum) && c->momentum >= 0.0f))
        nd_fatal(op, "momentum %g is not a finite number >= 0", c->momentum);
    if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f))
        nd_fatal(op, "beta1 %g is outside [0, 1)", c->beta1);
    if (!(c->beta2 >= 0.0f && c->beta2 < 1.0f))
        nd_fatal(op, "beta2 %g is outside [0, 1)", c->beta2);
    if (!(isfinite(c->eps) && c->eps >= 0.0f))
        nd_fatal(op, "eps %g is not a finite number >= 0", c->eps);
    if (!(isfinite(c->weight_decay) && c->weight_decay >= 0.0f))
        nd_fatal(op, "weight_decay %g is not a finite number >= 0", c->weight_decay);
    if (c->warmup_steps < 0)
        nd_fatal(op, "warmup_steps %lld is negative", (long long)c->warmup_steps);
}

static const char *const adam_names[] = {"exp_avg", "exp_avg_sq"};
static const char *const sgd_names[] = {"momentum_buffer"};

nd_optimizer *nd_optimizer_new(nd_module *model, nd_optim_config config) {
    const char *op = "optimizer_new";
    check_config(&config);
    if (!model) nd_fatal(op, "model is NULL");
    nd_param_list params = nd_parameters(model);
    if (params.n == 0) fatal_freeing(&params, op, "the model (%s) has no parameters", model->type);

    int per_param = config.kind == ND_SGD ? (config.momentum > 0.0f ? 1 : 0) : 2;
    const char *const *names = config.kind == ND_SGD ? sgd_names : adam_names;
    /* Check everything before the first state tensor exists. */
    for (int i = 0; i < params.n; i++) {
        const nd_named_param *p = &params.items[i];
        if (!nd_is_contiguous(p->value))
            fatal_freeing(&params, op, "parameter %s is not contiguous", p->name);
        for (int k = 0; k < per_param; k++)
            if (strlen(p->name) + 1 + strlen(names[k]) >= ND_NAME_MAX)
                fatal_freeing(&params, op, "the state name %s.%s is longer than %d "
                              "characters", p->name, names[k], ND_NAME_MAX - 1);
    }

    nd_optimizer *opt = nd_alloc(sizeof *opt);
    memset(opt, 0, sizeof *opt);
    opt->model = model;
    opt->config = config;
    opt->params = params;
    opt->per_param = per_param;
    int n = params.n * per_param;
    if (n > 0) {
        opt->state = nd_alloc((size_t)n * sizeof *opt->state);
        /* Zeros from the start, not at the first step: a checkpoint can then
         * be loaded into a fresh optimizer through nd_optimizer_state. A
         * zero momentum buffer also gives PyTorch's "b = g at the first
         * step", since momentum * 0 + g = g exactly. */
        for (int i = 0; i < params.n; i++)
            for (int k = 0; k < per_param; k++) {
                nd_named_param *s = &opt->state[i * per_param + k];
                const nd_tensor *p = params.items[i].value;
                /* "<param>.<state>", its length checked above */
                size_t a = strlen(params.items[i].name), b = strlen(names[k]);
                memcpy(s->name, params.items[i].name, a);
                s->name[a] = '.';
                memcpy(s->name + a + 1, names[k], b + 1);
                s->value = nd_persist(nd_zeros(p->shape, p->ndim));
            }
    }
    return opt;
}

void nd_optimizer_free(nd_optimizer *opt) {
    if (!opt) return;
    int n = opt->params.n * opt->per_param;
    for (int i = 0; i < n; i++) nd_free(opt->state[i].value);
    if (opt->state) nd_dealloc(opt->state, (size_t)n * sizeof *opt->state);
    nd_param_list_free(&opt->params);
    nd_dealloc(opt, sizeof *opt);
}

static void check_opt(const nd_optimizer *opt, const char *op) {
    if (!opt) nd_fatal(op, "optimizer is NULL");
}

/* Linear warmup as in DDPM: lr_t = lr min(1, t / warmup_steps). */
static double lr_at(const nd_optimizer *opt, int64_t t) {
    double lr = opt->config.lr;
    int64_t w = opt->config.warmup_steps;
    if (w > 0 && t < w) lr *= (double)t / (double)w;
    return lr;
}

/* torch.optim.SGD with dampening 0, nesterov off:
 *   g += weight_decay p;  b = momentum b + g;  p -= lr_t b
 * (no buffer when momentum is 0: p -= lr_t g). */
static void sgd_step(const nd_optim_config *c, double lr_t, int64_t n, float *p,
                     const float *grad, float *buf) {
    const float wd = c->weight_decay, mom = c->momentum, neg_lr = (float)-lr_t;
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i];
        if (wd != 0.0f) {
            float d = wd * p[i];
            g = g + d;
        }
        if (buf) {
            float b = buf[i] * mom;
            b = b + g;
            buf[i] = b;
            g = b;
        }
        float u = neg_lr * g;
        p[i] = p[i] + u;
    }
}

/* Adam (Kingma & Ba 2015, Algorithm 1) in PyTorch's arrangement, which
 * adds eps after the bias correction of sqrt(v):
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *   p -= (lr_t / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * Adam folds weight decay into the gradient (L2, g += wd p); AdamW
 * (Loshchilov & Hutter 2019) decays the weights apart from the gradient
 * statistics, p *= 1 - lr_t wd, before the step. */
static void adam_step(const nd_optim_config *c, double lr_t, int64_t t, int64_t n,
                      float *p, const float *grad, float *m, float *v) {
    const double b1 = c->beta1, b2 = c->beta2;
    const float beta1 = c->beta1, beta2 = c->beta2;
    const float one_minus_b1 = (float)(1.0 - b1), one_minus_b2 = (float)(1.0 - b2);
    const double bias1 = 1.0 - pow(b1, (double)t), bias2 = 1.0 - pow(b2, (double)t);
    const float neg_step_size = (float)-(lr_t / bias1);
    const float bias2_sqrt = (float)sqrt(bias2);
    const float eps = c->eps;
    const bool adamw = c->kind == ND_ADAMW;
    const float l2 = adamw ? 0.0f : c->weight_decay;
    const float decay = (float)(1.0 - lr_t * (double)c->weight_decay);
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i];
        if (adamw) p[i] = p[i] * decay;
        if (l2 != 0.0f) {
            float d = l2 * p[i];
            g = g + d;
        }
        float mi = m[i] * beta1;
        float dm = one_minus_b1 * g;
        mi = mi + dm;
        float vi = v[i] * beta2;
        float gg = g * g;
        float dv = one_minus_b2 * gg;
        vi = vi + dv;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bias2_sqrt;
        denom = denom + eps;
        float ratio = mi / denom;
        float u = neg_step_size * ratio;
        p[i] = p[i] + u;
    }
}

/* One parameter's update, in pieces of PIECE elements on the pool: the
 * update is elementwise, so the split changes no bit. */
enum { PIECE = 16384 };

typedef struct {
    const nd_optim_config *c;
    double lr_t;
    int64_t t, n;
    float *p, *m, *v; /* m: SGD's buffer or Adam's first moment (or NULL) */
    const float *g;
} update_job;

static void update_piece(void *ctx, int64_t piece, int worker) {
    (void)worker;
    const update_job *j = ctx;
    int64_t lo = piece * PIECE, n = j->n - lo < PIECE ? j->n - lo : PIECE;
    if (j->c->kind == ND_SGD)
        sgd_step(j->c, j->lr_t, n, j->p + lo, j->g + lo, j->m ? j->m + lo : NULL);
    else adam_step(j->c, j->lr_t, j->t, n, j->p + lo, j->g + lo, j->m + lo, j->v + lo);
}

void nd_optimizer_step(nd_optimizer *opt) {
    const char *op = "optimizer_step";
    check_opt(opt, op);
    const int64_t t = opt->steps + 1;
    const double lr_t = lr_at(opt, t);
    for (int i = 0; i < opt->params.n; i++) {
        const nd_named_param *np = &opt->params.items[i];
        nd_tensor *p = np->value;
        const nd_tensor *g = p->grad;
        if (!g) continue; /* no gradient: neither p nor its state moves */
        if (!nd_is_contiguous(p) || !nd_is_contiguous(g) || !nd_same_shape(p, g)) {
            char a[ND_SHAPE_STR_LEN], b[ND_SHAPE_STR_LEN];
            nd_fatal(op, "parameter %s %s and its gradient %s must be contiguous and "
                     "of one shape", np->name, nd_shape_str(p->shape, p->ndim, a),
                     nd_shape_str(g->shape, g->ndim, b));
        }
        nd_named_param *s = opt->state ? &opt->state[i * opt->per_param] : NULL;
        update_job j = {&opt->config, lr_t, t, nd_numel(p), nd_data(p),
                        opt->per_param > 0 ? nd_data(s[0].value) : NULL,
                        opt->per_param > 1 ? nd_data(s[1].value) : NULL, nd_data(g)};
        nd_parallel_for((j.n + PIECE - 1) / PIECE, update_piece, &j);
    }
    opt->steps = t;
}

void nd_optimizer_zero_grad(nd_optimizer *opt) {
    check_opt(opt, "optimizer_zero_grad");
    for (int i = 0; i < opt->params.n; i++) nd_zero_grad(opt->params.items[i].value);
}

int64_t nd_optimizer_steps(const nd_optimizer *opt) {
    check_opt(opt, "optimizer_steps");
    return opt->steps;
}

float nd_optimizer_lr(const nd_optimizer *opt) {
    check_opt(opt, "optimizer_lr");
    return (float)lr_at(opt, opt->steps + 1);
}

const nd_optim_config *nd_optimizer_config(const nd_optimizer *opt) {
    check_opt(opt, "optimizer_config");
    return &opt->config;
}

nd_param_list nd_optimizer_state(const nd_optimizer *opt) {
    check_opt(opt, "optimizer_state");
    nd_param_list list = {0, NULL};
    int n = opt->params.n * opt->per_param;
    if (n == 0) return list;
    list.items = nd_alloc((size_t)n * sizeof *list.items);
    memcpy(list.items, opt->state, (size_t)n * sizeof *list.items);
    list.n = n;
    return list;
}

void nd_optimizer_set_steps(nd_optimizer *opt, int64_t steps) {
    check_opt(opt, "optimizer_set_steps");
    if (steps < 0) nd_fatal("optimizer_set_steps", "step count %lld is negative",
                            (long long)steps);
    opt->steps = steps;
}

/* ---- gradient clipping ------------------------------------------------- */

/* torch.nn.utils.clip_grad_norm_ with the 2-norm: the norm over all
 * gradients as one vector, summed in double in parameter order. */
double nd_clip_grad_norm(nd_module *model, double max_norm) {
    const char *op = "clip_grad_norm";
    if (!model) nd_fatal(op, "model is NULL");
    if (!(max_norm > 0.0)) nd_fatal(op, "max_norm %g is not > 0", max_norm);
    nd_param_list params = nd_parameters(model);
    double sum = 0.0;
    for (int i = 0; i < params.n; i++) {
        const nd_tensor *g = params.items[i].value->grad;
        if (!g) continue;
        if (!nd_is_contiguous(g))
            fatal_freeing(&params, op, "the gradient of %s is not contiguous",
                          params.items[i].name);
        const float *d = nd_data(g);
        for (int64_t k = 0, n = nd_numel(g); k < n; k++) sum += (double)d[k] * d[k];
    }
    double norm = sqrt(sum);
    if (norm > max_norm) {
        const float coef = (float)(max_norm / (norm + 1e-6));
        for (int i = 0; i < params.n; i++) {
            nd_tensor *g = params.items[i].value->grad;
            if (!g) continue;
            float *d = nd_data(g);
            for (int64_t k = 0, n = nd_numel(g); k < n; k++) d[k] = d[k] * coef;
        }
    }
    nd_param_list_free(&params);
    return norm;
}
