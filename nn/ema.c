/* Exponential moving average of the parameters.
 *
 * DDPM samples from the averaged weights, decay 0.9999 (Ho et al. 2020,
 * appendix B), updated once per training step. The update is written as
 * TensorFlow's ExponentialMovingAverage (the reference implementation's)
 * writes it,
 *   shadow -= (1 - decay) (shadow - p),
 * which equals decay shadow + (1 - decay) p but leaves the shadow exactly
 * unchanged once it has reached p. */
#include <stdio.h>
#include <string.h>

#include "nn.h"

struct nd_ema {
    double decay;
    int64_t updates;
    nd_param_list params; /* the model's, followed by every update */
    nd_tensor **shadow;   /* one per parameter, same order */
};

nd_ema *nd_ema_new(nd_module *model, double decay) {
    const char *op = "ema_new";
    if (!(decay >= 0.0 && decay <= 1.0))
        nd_fatal(op, "decay %g is outside [0, 1]", decay);
    if (!model) nd_fatal(op, "model is NULL");
    nd_param_list params = nd_parameters(model);
    for (int i = 0; i < params.n; i++)
        if (!nd_is_contiguous(params.items[i].value)) {
            char name[ND_NAME_MAX];
            snprintf(name, sizeof name, "%s", params.items[i].name);
            nd_param_list_free(&params);
            nd_fatal(op, "parameter %s is not contiguous", name);
        }
    nd_ema *ema = nd_alloc(sizeof *ema);
    memset(ema, 0, sizeof *ema);
    ema->decay = decay;
    ema->params = params;
    if (params.n > 0) ema->shadow = nd_alloc((size_t)params.n * sizeof *ema->shadow);
    /* The shadows start as copies, so that nd_ema_copy_to before the first
     * update hands back the model's own weights. They are plain persistent
     * tensors (no requires_grad): nothing is ever recorded through them. */
    for (int i = 0; i < params.n; i++) {
        const nd_tensor *p = params.items[i].value;
        nd_tensor *s = nd_persist(nd_empty(p->shape, p->ndim));
        memcpy(nd_data(s), nd_data(p), (size_t)nd_numel(p) * sizeof(float));
        ema->shadow[i] = s;
    }
    return ema;
}

void nd_ema_free(nd_ema *ema) {
    if (!ema) return;
    for (int i = 0; i < ema->params.n; i++) nd_free(ema->shadow[i]);
    if (ema->shadow) nd_dealloc(ema->shadow, (size_t)ema->params.n * sizeof *ema->shadow);
    nd_param_list_free(&ema->params);
    nd_dealloc(ema, sizeof *ema);
}

static void check_ema(const nd_ema *ema, const char *op) {
    if (!ema) nd_fatal(op, "ema is NULL");
}

/* The first update copies p: the average then starts from trained weights,
 * not from zeros (which would need a bias correction) nor from the
 * initialisation (which would linger for ~1 / (1 - decay) steps). */
/* One shadow's update, in pieces of PIECE elements on the pool (each
 * element on its own: the split changes no bit). */
enum { PIECE = 16384 };

typedef struct {
    const float *p;
    float *s;
    int64_t n;
    float rate;
    bool first; /* the first update copies */
} ema_job;

static void update_piece(void *ctx, int64_t piece, int worker) {
    (void)worker;
    const ema_job *j = ctx;
    int64_t lo = piece * PIECE, hi = j->n - lo < PIECE ? j->n : lo + PIECE;
    if (j->first) {
        memcpy(j->s + lo, j->p + lo, (size_t)(hi - lo) * sizeof(float));
        return;
    }
    for (int64_t k = lo; k < hi; k++) {
        float d = j->s[k] - j->p[k];
        d = j->rate * d;
        j->s[k] = j->s[k] - d;
    }
}

void nd_ema_update(nd_ema *ema) {
    check_ema(ema, "ema_update");
    const float rate = (float)(1.0 - ema->decay);
    for (int i = 0; i < ema->params.n; i++) {
        ema_job j = {nd_data(ema->params.items[i].value), nd_data(ema->shadow[i]),
                     nd_numel(ema->shadow[i]), rate, ema->updates == 0};
        nd_parallel_for((j.n + PIECE - 1) / PIECE, update_piece, &j);
    }
    ema->updates++;
}

int64_t nd_ema_updates(const nd_ema *ema) {
    check_ema(ema, "ema_updates");
    return ema->updates;
}

void nd_ema_set_updates(nd_ema *ema, int64_t updates) {
    check_ema(ema, "ema_set_updates");
    if (updates < 0)
        nd_fatal("ema_set_updates", "update count %lld is negative", (long long)updates);
    ema->updates = updates;
}

double nd_ema_decay(const nd_ema *ema) {
    check_ema(ema, "ema_decay");
    return ema->decay;
}

nd_param_list nd_ema_state(const nd_ema *ema) {
    check_ema(ema, "ema_state");
    nd_param_list list = {0, NULL};
    if (ema->params.n == 0) return list;
    list.items = nd_alloc((size_t)ema->params.n * sizeof *list.items);
    for (int i = 0; i < ema->params.n; i++) {
        memcpy(list.items[i].name, ema->params.items[i].name, ND_NAME_MAX);
        list.items[i].value = ema->shadow[i];
    }
    list.n = ema->params.n;
    return list;
}

void nd_ema_copy_to(const nd_ema *ema, nd_module *model) {
    const char *op = "ema_copy_to";
    check_ema(ema, op);
    if (!model) nd_fatal(op, "model is NULL");
    nd_param_list target = nd_parameters(model);
    /* Check the whole structure before writing anything; the message is
     * built first so that the list can be freed before stopping. */
    char msg[2 * ND_NAME_MAX + 2 * ND_SHAPE_STR_LEN + 64] = "";
    int n = ema->params.n;
    for (int i = 0; i < n && i < target.n && !*msg; i++) {
        const nd_named_param *a = &ema->params.items[i], *b = &target.items[i];
        const nd_tensor *s = ema->shadow[i];
        char x[ND_SHAPE_STR_LEN], y[ND_SHAPE_STR_LEN];
        if (strcmp(a->name, b->name) != 0)
            snprintf(msg, sizeof msg, "parameter %d is %s in the model, %s in the average",
                     i, b->name, a->name);
        else if (!nd_same_shape(s, b->value))
            snprintf(msg, sizeof msg, "%s is %s in the model, %s in the average", a->name,
                     nd_shape_str(b->value->shape, b->value->ndim, x),
                     nd_shape_str(s->shape, s->ndim, y));
        else if (!nd_is_contiguous(b->value))
            snprintf(msg, sizeof msg, "%s is not contiguous in the model", a->name);
    }
    if (!*msg && target.n != n)
        snprintf(msg, sizeof msg, "the model has %d parameters, the average %d",
                 target.n, n);
    if (*msg) {
        nd_param_list_free(&target);
        nd_fatal(op, "%s", msg);
    }
    for (int i = 0; i < n; i++)
        memcpy(nd_data(target.items[i].value), nd_data(ema->shadow[i]),
               (size_t)nd_numel(ema->shadow[i]) * sizeof(float));
    nd_param_list_free(&target);
}
