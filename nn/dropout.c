/* Dropout (Srivastava et al. 2014), inverted: in training
 *   y = x m / (1 - p),  m_i ~ Bernoulli(1 - p)
 * so that E[y] = x and eval mode is the identity; dx = dy m / (1 - p).
 * The mask comes from a counter-based rng, element i from draw offset + i,
 * so backward draws it again from the saved (seed, stream, offset) instead
 * of keeping it: nothing of the size of x stays alive for backward. Both
 * passes draw and apply it in one loop, so no mask is ever stored. */
#include "nn.h"

typedef struct {
    nd_rng at; /* the generator as it was before the mask's draws */
    float p, scale;
} dropout_args;

enum { CHUNK = 4096 }; /* elements per task, a multiple of Philox's 4 */

typedef struct {
    const dropout_args *a;
    const float *in;
    float *out;
    int64_t n;
} mask_job;

/* out = in m / (1 - p) over one chunk, m drawn as it goes; each step
 * rounds as the ops ge, mul_scalar and mul did, for their bits */
static void mask_chunk(void *ctx, int64_t chunk, int worker) {
    (void)worker;
    const mask_job *j = ctx;
    int64_t lo = chunk * CHUNK, len = j->n - lo < CHUNK ? j->n - lo : CHUNK;
    float u[CHUNK];
    nd_rand_row(j->a->at.seed, j->a->at.stream, j->a->at.offset + (uint64_t)lo, len, u);
    for (int64_t i = 0; i < len; i++) {
        float kept = u[i] >= j->a->p ? 1.0f : 0.0f, m = kept * j->a->scale;
        j->out[lo + i] = j->in[lo + i] * m;
    }
}

/* out = in m / (1 - p), with the mask of args; out contiguous */
static void apply_mask(const dropout_args *a, const nd_tensor *in, nd_tensor *out) {
    nd_no_grad_begin(); /* the copy below is not an op of the model */
    nd_tensor *c = nd_contiguous(in);
    nd_no_grad_end();
    mask_job j = {a, nd_data(c), nd_data(out), nd_numel(in)};
    nd_parallel_for((j.n + CHUNK - 1) / CHUNK, mask_chunk, &j);
    nd_free(c);
}

static void dropout_backward(const nd_function_ctx *ctx, const nd_tensor *dy,
                             nd_tensor **grads) {
    grads[0] = nd_empty(dy->shape, dy->ndim);
    apply_mask(ctx->args, dy, grads[0]);
}

/* y again, for the conv that reads it, rather than keeping it */
static void dropout_recompute(const nd_function_ctx *ctx, nd_tensor *out) {
    apply_mask(ctx->args, ctx->in[0], out);
}

static const nd_function dropout_fn = {.name = "dropout",
                                       .backward = dropout_backward,
                                       .recompute = dropout_recompute,
                                       .recompute_reads_inputs = true};

nd_tensor *nd_dropout(const nd_tensor *x, float p, bool training, nd_rng *rng) {
    if (!x) nd_fatal("dropout", "input is NULL");
    if (!(p >= 0.0f && p <= 1.0f)) nd_fatal("dropout", "p = %g is not in [0, 1]", p);
    if (!training || p == 0.0f) return nd_view(x, x->shape, x->ndim);
    if (!rng) nd_fatal("dropout", "rng is NULL (needed in training mode)");
    dropout_args a = {*rng, p, p < 1.0f ? 1.0f / (1.0f - p) : 0.0f};
    nd_tensor *y = nd_empty(x->shape, x->ndim);
    apply_mask(&a, x, y);
    rng->offset += (uint64_t)nd_numel(x);
    return nd_function_apply(&dropout_fn, y, &x, 1, NULL, 0, &a, sizeof a);
}

static void destroy(nd_module *m) { nd_dealloc(m, sizeof(nd_dropout_layer)); }

static nd_tensor *forward(nd_module *m, const nd_tensor *x) {
    return nd_dropout_forward((nd_dropout_layer *)m, x);
}

nd_dropout_layer *nd_dropout_new(float p) {
    if (!(p >= 0.0f && p <= 1.0f)) nd_fatal("dropout_new", "p = %g is not in [0, 1]", p);
    nd_dropout_layer *l = nd_alloc(sizeof *l);
    nd_module_init(&l->base, "Dropout", destroy);
    l->base.forward = forward;
    l->p = p;
    return l;
}

nd_tensor *nd_dropout_forward(nd_dropout_layer *l, const nd_tensor *x) {
    if (!l) nd_fatal("dropout", "layer is NULL");
    if (l->base.training && l->p > 0.0f && !l->base.rng)
        nd_fatal("dropout", "the module has no generator: give its tree one with "
                 "nd_module_set_rng");
    return nd_dropout(x, l->p, l->base.training, l->base.rng);
}
