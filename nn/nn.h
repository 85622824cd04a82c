/* nanodiff nn layer: modules with named parameters, the layers a DDPM UNet
 * is built from, initialisation, optimizers, EMA and checkpoints.
 *
 * A module is a plain struct that embeds an nd_module as its first field
 * (`base`). The base keeps the module's parameters and its children under
 * their names, so a model is a tree whose parameters have dotted names, as
 * keys of a PyTorch state_dict: `down.1.res.0.conv1.weight`. Parameters are
 * persistent tensors (outside every scope) that require grad; activations
 * a forward pass makes belong to the caller's scope, as any op's output.
 *
 * Every layer has a functional form (nd_linear, nd_group_norm, ...) taking
 * its parameters as arguments, and a module form (nd_linear_layer, ...)
 * that owns them: nd_<layer>_new builds one, nd_<layer>_forward runs it,
 * nd_module_free releases the whole tree. */
#ifndef NANODIFF_NN_H
#define NANODIFF_NN_H

#include "autograd/autograd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- modules ----------------------------------------------------------- */

#define ND_NAME_MAX 256 /* longest dotted name, with its terminating NUL */

typedef struct nd_module nd_module;
typedef struct nd_module_entry {
    char *name;
    nd_tensor *param;  /* a parameter ... */
    nd_module *child;  /* ... or a child module */
} nd_module_entry;
struct nd_module {
    const char *type;  /* "Conv2d", "GroupNorm", ...: for printing */
    bool training;     /* train mode (the default) or eval mode */
    int n, cap;        /* entries, in registration order */
    nd_module_entry *entries;
    /* The generator its random layers (dropout) draw from in train mode
     * when no rng is passed to their forward, or NULL; borrowed, not
     * owned. nd_module_set_rng sets it for a whole tree. */
    nd_rng *rng;
    /* One tensor in, one out, for the modules used that way (Linear,
     * Conv2d, GroupNorm, ...): what nd_module_forward and a Sequential
     * call. NULL for modules with other inputs (a residual block takes
     * the time embedding too). */
    nd_tensor *(*forward)(nd_module *self, const nd_tensor *x);
    /* Frees the struct that embeds this base (NULL: nothing to free). */
    void (*destroy)(nd_module *m);
};

/* Start an empty module of the given type, in train mode. */
void nd_module_init(nd_module *m, const char *type, void (*destroy)(nd_module *m));
/* Register a parameter under name ([A-Za-z0-9_]+, unique in m). The module
 * takes the tensor over: it leaves every scope and requires grad. Returns
 * the tensor. */
nd_tensor *nd_module_param(nd_module *m, const char *name, nd_tensor *value);
/* Register a child module under name; m takes it over. Returns child. */
nd_module *nd_module_child(nd_module *m, const char *name, nd_module *child);
/* The same, named by its index ("0", "1", ...), as in nn.ModuleList. */
nd_module *nd_module_child_at(nd_module *m, int index, nd_module *child);
/* A module of its own, for grouping children under a name, as PyTorch's
 * nn.Module() or nn.ModuleList() holding others; nd_module_free frees it. */
nd_module *nd_module_new(const char *type);
/* Free the parameters and children, then the module itself. NULL is fine. */
void nd_module_free(nd_module *m);

/* Train mode (dropout on) or eval mode (off), for the whole tree. */
void nd_module_train(nd_module *m, bool on);
/* The generator the tree's random layers draw from (NULL: none); every
 * module of the tree gets it, and a child registered later takes its
 * parent's. The caller keeps rng alive as long as the tree uses it. A
 * model that owns its generator keeps the nd_rng in its own struct. */
void nd_module_set_rng(nd_module *m, nd_rng *rng);
/* m->forward(m, x); stops if m has none. */
nd_tensor *nd_module_forward(nd_module *m, const nd_tensor *x);
/* fn(ctx, name, module) on m and every module below it, parents before
 * children, in registration order; name is the dotted path ("" for m),
 * the prefix of the module's parameters. The way to initialise by type
 * and name: if (!strcmp(mod->type, "Conv2d")) ... */
typedef void (*nd_module_visit_fn)(void *ctx, const char *name, nd_module *module);
void nd_module_apply(nd_module *m, nd_module_visit_fn fn, void *ctx);
/* A parameter of m itself (not of its children) by name, or NULL. */
nd_tensor *nd_module_param_get(const nd_module *m, const char *name);

/* Every parameter of the tree, depth first in registration order, with
 * its dotted name. One call; free the list with nd_param_list_free. */
typedef struct nd_named_param {
    char name[ND_NAME_MAX];
    nd_tensor *value;
} nd_named_param;
typedef struct nd_param_list {
    int n;
    nd_named_param *items;
} nd_param_list;
nd_param_list nd_parameters(const nd_module *m);
void nd_param_list_free(nd_param_list *list);
/* The parameter with this dotted name, or NULL. */
nd_tensor *nd_module_find(const nd_module *m, const char *name);
int64_t nd_num_parameters(const nd_module *m); /* elements, all parameters */
void nd_module_zero_grad(nd_module *m);
/* The tree, one line per module and parameter, with shapes and counts. */
void nd_module_print(FILE *f, const nd_module *m);

/* ---- initialisation ---------------------------------------------------- */

/* fan_in and fan_out of a weight: [out, in] for Linear, [out, in, kh, kw]
 * for Conv2d (the receptive field kh kw multiplies both). */
void nd_fans(const nd_tensor *w, int64_t *fan_in, int64_t *fan_out);
/* t ~ U(lo, hi), in place, drawn from rng. */
void nd_init_uniform_(nd_tensor *t, float lo, float hi, nd_rng *rng);
/* PyTorch's default for Linear and Conv2d weights, kaiming_uniform with
 * a = sqrt(5): U(-b, b), b = 1 / sqrt(fan_in); the bias uses the same b. */
void nd_init_torch_default_(nd_tensor *w, nd_tensor *bias, nd_rng *rng);
/* DDPM's variance_scaling(scale, "fan_avg", "uniform"): w ~ U(-L, L) with
 * L = sqrt(3 scale / ((fan_in + fan_out) / 2)); scale 0 (the zero-init
 * layers) is taken as 1e-10, as the reference implementation does. The
 * bias, if given, is set to 0. */
void nd_init_variance_scaling_(nd_tensor *w, nd_tensor *bias, float scale, nd_rng *rng);

/* ---- layers ------------------------------------------------------------ */

/* Linear: y = x W^T + b.  x [..., in], W [out, in], b [out] -> y [..., out] */
nd_tensor *nd_linear(const nd_tensor *x, const nd_tensor *w, const nd_tensor *b);
typedef struct nd_linear_layer {
    nd_module base;
    int64_t in_features, out_features;
    nd_tensor *weight, *bias; /* bias NULL without one */
} nd_linear_layer;
nd_linear_layer *nd_linear_new(int64_t in_features, int64_t out_features,
                               bool bias, nd_rng *rng);
nd_tensor *nd_linear_forward(nd_linear_layer *l, const nd_tensor *x);

/* Conv2d over NCHW with per-side padding (nd_conv2d in tensor.h). */
typedef struct nd_conv2d_layer {
    nd_module base;
    int64_t in_channels, out_channels, kernel_h, kernel_w;
    nd_conv2d_opts opts;
    nd_tensor *weight, *bias; /* [out, in, kh, kw], [out] or NULL */
} nd_conv2d_layer;
nd_conv2d_layer *nd_conv2d_new(int64_t in_channels, int64_t out_channels,
                               int64_t kernel_h, int64_t kernel_w,
                               nd_conv2d_opts opts, bool bias, nd_rng *rng);
nd_tensor *nd_conv2d_forward(nd_conv2d_layer *l, const nd_tensor *x);
/* Stride 1 and padding k/2 on every side (a "same" odd kernel). */
nd_conv2d_opts nd_conv2d_same(int64_t kernel);

/* GroupNorm (Wu & He 2018): channels split into groups; each (n, g) is
 * normalised over its C/G channels and all positions, then scaled and
 * shifted per channel:
 *   y = (x - mean_{n,g}) / sqrt(var_{n,g} + eps) * gamma_c + beta_c
 * x [N, C, ...], gamma and beta [C] or NULL (no affine). One fused op,
 * with a hand-derived backward (nn/group_norm.c). */
nd_tensor *nd_group_norm(const nd_tensor *x, int64_t groups,
                         const nd_tensor *gamma, const nd_tensor *beta, float eps);
/* silu(nd_group_norm(...)) as one op with the same bits, keeping x and the
 * statistics for backward instead of the normalised values. */
nd_tensor *nd_group_norm_silu(const nd_tensor *x, int64_t groups, const nd_tensor *gamma,
                              const nd_tensor *beta, float eps);
typedef struct nd_group_norm_layer {
    nd_module base;
    int64_t groups, channels;
    float eps;
    nd_tensor *weight, *bias; /* gamma (ones) and beta (zeros), or NULL */
} nd_group_norm_layer;
nd_group_norm_layer *nd_group_norm_new(int64_t groups, int64_t channels, float eps,
                                       bool affine);
nd_tensor *nd_group_norm_forward(nd_group_norm_layer *l, const nd_tensor *x);
nd_tensor *nd_group_norm_silu_forward(nd_group_norm_layer *l, const nd_tensor *x);

/* Dropout: in training, zero each element with probability p and scale
 * the rest by 1 / (1 - p); the identity otherwise. The mask is drawn from
 * rng (counter-based), so a step replays exactly from the same state. */
nd_tensor *nd_dropout(const nd_tensor *x, float p, bool training, nd_rng *rng);
/* The module form: p fixed, the mask drawn from the module's generator
 * (nd_module_set_rng) in train mode. */
typedef struct nd_dropout_layer {
    nd_module base;
    float p;
} nd_dropout_layer;
nd_dropout_layer *nd_dropout_new(float p);
nd_tensor *nd_dropout_forward(nd_dropout_layer *l, const nd_tensor *x);

/* Embedding: y[n] = weight[ids[n]]; weight [num, dim] starts N(0, 1) as in
 * PyTorch; ids [N] whole numbers in [0, num) -> [N, dim]. */
typedef struct nd_embedding_layer {
    nd_module base;
    int64_t num_embeddings, dim;
    nd_tensor *weight;
} nd_embedding_layer;
nd_embedding_layer *nd_embedding_new(int64_t num_embeddings, int64_t dim, nd_rng *rng);
nd_tensor *nd_embedding_forward(nd_embedding_layer *l, const nd_tensor *ids);

/* Sequential: children "0", "1", ... run in order, each on the output of
 * the one before (PyTorch's nn.Sequential). Children must have a
 * one-input forward; nd_module_forward runs the whole. */
nd_module *nd_sequential_new(void);
nd_module *nd_sequential_add(nd_module *seq, nd_module *child); /* returns child */
/* A unary op as a module with no parameters, for a Sequential:
 * nd_activation_new("SiLU", nd_silu). */
nd_module *nd_activation_new(const char *type, nd_tensor *(*fn)(const nd_tensor *x));

/* Nearest-neighbour upsampling by 2: [N, C, H, W] -> [N, C, 2H, 2W]. */
nd_tensor *nd_upsample_nearest2x(const nd_tensor *x);

/* The DDPM UNet's resampling blocks, as the reference implementation
 * names them: Upsample = nearest x2 then a 3x3 conv ("conv"); Downsample
 * = a 3x3 conv with stride 2, padded 0 before and 1 after as TensorFlow's
 * "SAME" does on even sizes. */
typedef struct nd_upsample_layer {
    nd_module base;
    nd_conv2d_layer *conv;
} nd_upsample_layer;
nd_upsample_layer *nd_upsample_new(int64_t channels, nd_rng *rng);
nd_tensor *nd_upsample_forward(nd_upsample_layer *l, const nd_tensor *x);
typedef struct nd_downsample_layer {
    nd_module base;
    nd_conv2d_layer *conv;
} nd_downsample_layer;
nd_downsample_layer *nd_downsample_new(int64_t channels, nd_rng *rng);
nd_tensor *nd_downsample_forward(nd_downsample_layer *l, const nd_tensor *x);

/* Sinusoidal timestep embedding in the DDPM form (Vaswani et al. 2017,
 * section 3.5): half = dim / 2, f_i = exp(-i ln(10000) / (half - 1)),
 * emb = concat(sin(t f), cos(t f)) (sin first); an odd dim gets one zero
 * column at the end. t [N] -> [N, dim]. Carries no gradient. */
nd_tensor *nd_timestep_embedding(const nd_tensor *t, int64_t dim);

/* Self-attention over all H W positions, as in the DDPM UNet:
 *   h = GroupNorm(x); q, k, v = 1x1 projections of h (per head of C/heads
 *   channels); w = softmax(q^T k / sqrt(C/heads)) over the keys;
 *   out = x + proj_out(v w^T).  x [N, C, H, W] -> same. */
typedef struct nd_attention_layer {
    nd_module base;
    int64_t channels, heads;
    nd_group_norm_layer *norm;
    nd_conv2d_layer *q, *k, *v, *proj_out; /* 1x1, [C, C, 1, 1] */
} nd_attention_layer;
nd_attention_layer *nd_attention_new(int64_t channels, int64_t heads,
                                     int64_t groups, nd_rng *rng);
nd_tensor *nd_attention_forward(nd_attention_layer *l, const nd_tensor *x);

/* The DDPM residual block with time-embedding injection:
 *   h = conv1(swish(norm1(x))) + temb_proj(swish(temb))[:, :, None, None]
 *   h = conv2(dropout(swish(norm2(h))))
 *   out = shortcut(x) + h   (shortcut: 1x1 conv when channels change)
 * x [N, in, H, W], temb [N, temb_dim] -> [N, out, H, W]. */
typedef struct nd_resblock_layer {
    nd_module base;
    int64_t in_channels, out_channels;
    float dropout;
    nd_group_norm_layer *norm1, *norm2;
    nd_conv2d_layer *conv1, *conv2, *nin_shortcut; /* shortcut NULL if in == out */
    nd_linear_layer *temb_proj;
} nd_resblock_layer;
nd_resblock_layer *nd_resblock_new(int64_t in_channels, int64_t out_channels,
                                   int64_t temb_dim, int64_t groups, float dropout,
                                   nd_rng *rng);
/* rng draws the dropout mask (used in train mode only); NULL: the
 * module's own generator (nd_module_set_rng). */
nd_tensor *nd_resblock_forward(nd_resblock_layer *l, const nd_tensor *x,
                               const nd_tensor *temb, nd_rng *rng);

/* Cross entropy, the classifier's loss: -1/N sum_n log softmax(logits_n)[y_n].
 * logits [N, K], labels [N] (whole numbers in [0, K)) -> a 0-d tensor. */
nd_tensor *nd_cross_entropy(const nd_tensor *logits, const nd_tensor *labels);

/* ---- optimizers -------------------------------------------------------- */

/* The update of every parameter p with gradient g = p.grad at step t
 * (counted from 1), with lr_t the learning rate after warmup, as
 * torch.optim computes it (scalars in double, elements in float):
 *   SGD:   g += weight_decay p;  b = momentum b + g (b = g at t = 1; no b
 *          when momentum is 0);  p -= lr_t b
 *   Adam:  g += weight_decay p;  m = beta1 m + (1 - beta1) g;
 *          v = beta2 v + (1 - beta2) g^2;
 *          p -= lr_t (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
 *   AdamW: p -= lr_t weight_decay p, then Adam's step without the decay
 *          term (Loshchilov & Hutter 2019).
 * Warmup: lr_t = lr min(1, t / warmup_steps), linear, as in DDPM; 0 steps
 * means none. Parameters without a gradient are skipped (their state does
 * not move either). t is the optimizer's step count, one for all
 * parameters: PyTorch counts steps per parameter, which agrees whenever
 * every parameter has a gradient at every step. Parameters and gradients
 * must be contiguous. */
typedef enum nd_optim_kind { ND_SGD, ND_ADAM, ND_ADAMW } nd_optim_kind;
typedef struct nd_optim_config {
    nd_optim_kind kind;
    double lr;
    double momentum;     /* SGD */
    double beta1, beta2; /* Adam, AdamW */
    double eps;
    double weight_decay;
    int64_t warmup_steps;
} nd_optim_config;
/* PyTorch's defaults for each kind: lr 1e-3 (SGD 1e-2), betas (0.9, 0.999),
 * eps 1e-8, weight_decay 0 (AdamW 1e-2), momentum 0, no warmup. */
nd_optim_config nd_optim_defaults(nd_optim_kind kind);

typedef struct nd_optimizer nd_optimizer;
/* An optimizer over all parameters of model (which must outlive it and
 * keep its parameters). The state tensors exist, as zeros, from here on.
 * Stops on a bad config: lr, momentum, eps, weight_decay finite and >= 0,
 * betas in [0, 1), warmup_steps >= 0, at least one parameter. */
nd_optimizer *nd_optimizer_new(nd_module *model, nd_optim_config config);
void nd_optimizer_free(nd_optimizer *opt);
void nd_optimizer_step(nd_optimizer *opt);
void nd_optimizer_zero_grad(nd_optimizer *opt);
int64_t nd_optimizer_steps(const nd_optimizer *opt); /* steps taken */
float nd_optimizer_lr(const nd_optimizer *opt); /* lr_t of the next step */
const nd_optim_config *nd_optimizer_config(const nd_optimizer *opt);
/* The state as named tensors (the optimizer keeps ownership; free the
 * list with nd_param_list_free), for checkpoints: "<param>.exp_avg" and
 * "<param>.exp_avg_sq" (Adam, AdamW) or "<param>.momentum_buffer" (SGD
 * with momentum; plain SGD has none), as PyTorch calls them, in parameter
 * order. */
nd_param_list nd_optimizer_state(const nd_optimizer *opt);
/* Restore the step count (the tensors are restored in place through
 * nd_optimizer_state). */
void nd_optimizer_set_steps(nd_optimizer *opt, int64_t steps);

/* Global-norm gradient clipping: with n = sqrt(sum of all squared
 * gradient elements), scale every gradient by max_norm / (n + 1e-6) when
 * n > max_norm (> 0). Returns n (before clipping), as PyTorch's
 * clip_grad_norm_ does. The sum runs in double, in parameter order;
 * parameters without a gradient take no part. */
double nd_clip_grad_norm(nd_module *model, double max_norm);

/* ---- exponential moving average of the parameters ---------------------- */

/* shadow = decay shadow + (1 - decay) p after each step, computed as
 * shadow -= (1 - decay) (shadow - p) (TensorFlow's form, which DDPM used);
 * the first update copies p, so the average never starts from zero or from
 * the initial weights. decay is in [0, 1]; DDPM uses 0.9999. The shadows
 * are persistent tensors that do not require grad. */
typedef struct nd_ema nd_ema;
nd_ema *nd_ema_new(nd_module *model, double decay);
void nd_ema_free(nd_ema *ema);
void nd_ema_update(nd_ema *ema);
int64_t nd_ema_updates(const nd_ema *ema);
void nd_ema_set_updates(nd_ema *ema, int64_t updates);
double nd_ema_decay(const nd_ema *ema);
/* The averaged parameters under the model's names (owned by ema). */
nd_param_list nd_ema_state(const nd_ema *ema);
/* Copy the averages into a model of the same structure (for sampling):
 * the same parameter names, in the same order, of the same shapes; stops
 * at the first mismatch. */
void nd_ema_copy_to(const nd_ema *ema, nd_module *model);

/* ---- checkpoints ------------------------------------------------------- */

/* What a checkpoint holds, as one safetensors file (tensor.h):
 *   "<param>"            the model's parameters, under their dotted names,
 *                        so PyTorch reads them as a state_dict
 *   "optimizer.<state>"  the optimizer's state (nd_optimizer_state)
 *   "ema.<param>"        the moving averages
 * and in "__metadata__": format, step, config, the optimizer's kind and
 * step count, the EMA's decay and update count, the rng's seed, stream
 * and offset. Only the non-NULL members are saved, or loaded. */
typedef struct nd_checkpoint {
    nd_module *model;        /* required */
    nd_optimizer *optimizer; /* or NULL */
    nd_ema *ema;             /* or NULL */
    nd_rng *rng;             /* or NULL */
    int64_t step;            /* the training step; load sets it */
    const char *config;      /* save: free text kept as "config" (or NULL) */
    char *config_out;        /* load: receives "config" ("" when absent), */
    size_t config_out_size;  /*   truncated to fit; NULL: not wanted */
} nd_checkpoint;

/* Save atomically: a temporary file, fsync'd, renamed over path; on
 * ND_ERR the file already at path is untouched. */
int nd_checkpoint_save(const char *path, const nd_checkpoint *ck, nd_error *err);
/* Load into the members given. Everything is validated before anything
 * is written: the file itself, then that it holds exactly the model's
 * parameters with their shapes (no more, no fewer), and the state of each
 * member asked for. On ND_ERR the model, optimizer, EMA and rng are as
 * they were. */
int nd_checkpoint_load(const char *path, nd_checkpoint *ck, nd_error *err);

#ifdef __cplusplus
}
#endif
#endif
