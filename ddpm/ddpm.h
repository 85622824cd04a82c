/* nanodiff ddpm layer: Denoising Diffusion Probabilistic Models (Ho, Jain,
 * Abbeel 2020) as a library. Equation numbers are the paper's.
 *
 *   schedule.c   betas and every table derived from them, in float64
 *   diffusion.c  the forward process q, its posterior, the reverse
 *                process p_theta from an eps prediction, L_simple
 *   train.c      Algorithm 1: one whole training step per call
 *   sample.c     Algorithm 2: x_T ~ N(0, I) down to x_0
 *   unet.c       the paper's UNet, named as the official checkpoints
 *   mlp.c        a small denoiser for points in a few dimensions
 *   toy.c        2-D data sets drawn on the fly
 *   metrics.c    how close generated samples are to data: energy distance,
 *                k-NN precision and recall, the Frechet distance of features
 *   classifier.c a small image classifier whose features those scores use
 *   bound.c      the variational bound (Eq. 5) in bits per dimension
 *   ddim.c       fewer steps: DDIM and respacing
 *
 * The paper counts t = 1..T; the code counts i = t - 1 = 0..T-1 and hands
 * the network i, as the reference implementation does. A batch carries
 * one step per example: t is a float tensor [N] of whole numbers in
 * [0, T). Includes everything below (nn/nn.h). */
#ifndef NANODIFF_DDPM_H
#define NANODIFF_DDPM_H

#include "nn/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- schedules --------------------------------------------------------- */

/* Every table has T entries, indexed by i = t - 1, computed in double:
 *   alphas = 1 - betas;  alphas_cumprod abar_i = prod_{j <= i} alpha_j;
 *   alphas_cumprod_prev_i = abar_{i-1} (1 at i = 0);
 *   posterior_variance btilde_i = beta_i (1 - abar_{i-1}) / (1 - abar_i)  (Eq. 7);
 *   posterior_log_variance_clipped = log(btilde), with btilde_1 at i = 0
 *     (btilde_0 = 0);
 *   posterior_mean_coef1 = beta sqrt(abar_prev) / (1 - abar),
 *   posterior_mean_coef2 = (1 - abar_prev) sqrt(alpha) / (1 - abar)  (Eq. 7). */
typedef struct nd_schedule {
    int64_t T;
    double *betas, *alphas, *alphas_cumprod, *alphas_cumprod_prev;
    double *sqrt_alphas_cumprod, *sqrt_one_minus_alphas_cumprod;
    double *sqrt_recip_alphas_cumprod, *sqrt_recipm1_alphas_cumprod;
    double *posterior_variance, *posterior_log_variance_clipped;
    double *posterior_mean_coef1, *posterior_mean_coef2;
} nd_schedule;

/* The paper's: beta_i = beta_start + (beta_end - beta_start) i / (T - 1),
 * with (1e-4, 0.02) for T = 1000. */
int nd_schedule_linear(nd_schedule *s, int64_t T, double beta_start, double beta_end,
                       nd_error *err);
/* Nichol & Dhariwal 2021: abar(t) = f(t) / f(0), f(t) = cos^2((t/T + off) /
 * (1 + off) pi/2), beta_i = min(1 - abar(i+1) / abar(i), max_beta); they
 * use off = 0.008, max_beta = 0.999. */
int nd_schedule_cosine(nd_schedule *s, int64_t T, double offset, double max_beta,
                       nd_error *err);
/* Any betas: T >= 2, each finite and in (0, 1). */
int nd_schedule_from_betas(nd_schedule *s, const double *betas, int64_t T, nd_error *err);
/* On ND_ERR the schedule is left empty; freeing an empty one is fine. */
void nd_schedule_free(nd_schedule *s);

/* table[t_n] for each example, as float32 [N, 1, ..., 1] with ndim axes,
 * to broadcast against a batch [N, ...]. Stops unless t is [N] of whole
 * numbers in [0, T). */
nd_tensor *nd_extract(const nd_schedule *s, const double *table, const nd_tensor *t, int ndim);

/* ---- denoisers --------------------------------------------------------- */

/* Anything that maps (x_t, t) to an estimate of the noise eps in x_t (or
 * of x_0 or mu_tilde, as `predicts` says): a network (the UNet, the MLP, a
 * user's module) or a closed-form function.
 * rng draws dropout masks in train mode; it is NULL when sampling. module
 * is the network whose parameters train (NULL for a function without
 * parameters); the sampler switches it to eval mode. */
typedef nd_tensor *(*nd_denoise_fn)(void *self, const nd_tensor *x_t, const nd_tensor *t,
                                    const nd_tensor *labels, nd_rng *rng);
/* What the network's output stands for (section 4.4, Table 2): the noise
 * eps (the paper's choice and the default), x_0 itself, or the posterior
 * mean mu_tilde(x_t, x_0), the reverse step's mean directly. */
typedef enum nd_prediction { ND_PRED_EPS = 0, ND_PRED_X0, ND_PRED_MEAN } nd_prediction;
typedef struct nd_denoiser {
    nd_denoise_fn forward;
    void *self;
    nd_module *module;
    nd_prediction predicts; /* ND_PRED_EPS unless set */
    /* Class conditioning: labels [N] (whole numbers 0..K-1, or -1 for "no
     * label"), or NULL for none; and the guidance weight w of
     * classifier-free guidance (Ho and Salimans 2022):
     *   out = out(x, none) + w (out(x, labels) - out(x, none)),
     * w = 0 the unconditional output, 1 the conditional one, > 1 guided.
     * nd_denoiser_with_labels sets both. */
    const nd_tensor *labels;
    float guidance;
} nd_denoiser;
nd_denoiser nd_denoiser_with_labels(nd_denoiser d, const nd_tensor *labels, float guidance);
/* The output at (x_t, t), with the labels and guidance d carries (a
 * second, unconditional call where guidance needs one). */
nd_tensor *nd_denoise(nd_denoiser d, const nd_tensor *x_t, const nd_tensor *t, nd_rng *rng);

/* ---- the forward process and its posterior ------------------------------ */

/* q(x_t | x_0) sampled (Eq. 4): sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps. */
nd_tensor *nd_q_sample(const nd_schedule *s, const nd_tensor *x0, const nd_tensor *t,
                       const nd_tensor *eps);
/* x_0 = sqrt(1 / abar_t) x_t - sqrt(1 / abar_t - 1) eps, Eq. 4 solved. */
nd_tensor *nd_predict_x0_from_eps(const nd_schedule *s, const nd_tensor *x_t,
                                  const nd_tensor *t, const nd_tensor *eps);

/* A Gaussian N(mean, variance I) per example: mean [N, ...], variance and
 * log_variance [N, 1, ..., 1]. */
typedef struct nd_gaussian {
    nd_tensor *mean, *variance, *log_variance;
} nd_gaussian;
/* q(x_{t-1} | x_t, x_0) = N(coef1 x_0 + coef2 x_t, btilde_t I)  (Eqs. 6-7). */
nd_gaussian nd_q_posterior(const nd_schedule *s, const nd_tensor *x0, const nd_tensor *x_t,
                           const nd_tensor *t);

/* ---- the reverse process ----------------------------------------------- */

/* sigma_t^2 of p_theta (section 3.2): beta_t ("fixedlarge", the paper's
 * CIFAR-10 choice; its log uses btilde_1 at i = 0, as the reference code
 * does) or btilde_t ("fixedsmall"). */
typedef enum nd_var_type { ND_FIXED_LARGE, ND_FIXED_SMALL } nd_var_type;

/* p_theta(x_{t-1} | x_t) = N(mu_theta, sigma_t^2 I)  (Eq. 1) from the
 * network's output `out`, as `predicts` reads it:
 *   eps:  x0_hat = nd_predict_x0_from_eps(out), mu_theta = mu_tilde(x0_hat,
 *         x_t), which is Eq. 11;
 *   x0:   x0_hat = out, mu_theta = mu_tilde(x0_hat, x_t);
 *   mean: mu_theta = out, x0_hat = nd_predict_x0_from_mean(out).
 * clip limits x0_hat to [-1, 1] before the mean is formed from it (the
 * reference sampler does, for images; it cannot change a predicted mean).
 * *x0_pred, if not NULL, receives x0_hat. */
nd_gaussian nd_p_mean_variance(const nd_schedule *s, const nd_tensor *out,
                               nd_prediction predicts, const nd_tensor *x_t, const nd_tensor *t,
                               nd_var_type var, bool clip, nd_tensor **x0_pred);
/* x_0 from a posterior mean: (mean - coef2_t x_t) / coef1_t, Eq. 7 solved. */
nd_tensor *nd_predict_x0_from_mean(const nd_schedule *s, const nd_tensor *x_t,
                                   const nd_tensor *t, const nd_tensor *mean);
/* What a network that predicts `predicts` should output at x_t =
 * q_sample(x0, t, eps): eps, x0, or mu_tilde(x0, x_t). */
nd_tensor *nd_prediction_target(const nd_schedule *s, nd_prediction predicts, const nd_tensor *x0,
                                const nd_tensor *x_t, const nd_tensor *t, const nd_tensor *eps);

/* ---- the losses -------------------------------------------------------- */

/* Eq. 14 at given steps and noise: mean over all elements of
 * (eps - eps_theta(sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t))^2. A 0-d
 * tensor, differentiable through the denoiser. rng: dropout. For a
 * denoiser that predicts x_0 or mu_tilde, the same unweighted MSE against
 * that target (nd_prediction_target). */
nd_tensor *nd_loss_simple_at(const nd_schedule *s, nd_denoiser d, const nd_tensor *x0,
                             const nd_tensor *t, const nd_tensor *eps, nd_rng *rng);
/* t uniform over the T steps and eps ~ N(0, I), both drawn from rng (t
 * first, then eps, then the denoiser's dropout). */
nd_tensor *nd_loss_simple(const nd_schedule *s, nd_denoiser d, const nd_tensor *x0,
                          nd_rng *rng);
/* n steps uniform in [0, T), from rng. */
nd_tensor *nd_sample_timesteps(const nd_schedule *s, int64_t n, nd_rng *rng);
/* The true bound's terms as a loss (L_vlb, section 3.4 and Table 2): the
 * mean over the batch of nd_vb_terms_bpd at the drawn steps (L_{t-1}, or
 * L_0 at t = 0), with p_theta's variance `var` and no clipping; L_T has
 * no parameters and is left out. t, then eps, from rng. */
nd_tensor *nd_loss_vlb_at(const nd_schedule *s, nd_denoiser d, const nd_tensor *x0,
                          const nd_tensor *t, const nd_tensor *eps, nd_var_type var,
                          nd_rng *rng);
typedef enum nd_loss_type { ND_LOSS_MSE = 0, ND_LOSS_VLB } nd_loss_type;

/* ---- the variational bound (Eq. 5), in bits per dimension --------------- */

/* KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) per element, broadcast:
 * 0.5 (-1 + logvar2 - logvar1 + e^(logvar1 - logvar2) + (mean1 - mean2)^2
 * e^-logvar2). Differentiable. */
nd_tensor *nd_normal_kl(const nd_tensor *mean1, const nd_tensor *logvar1,
                        const nd_tensor *mean2, const nd_tensor *logvar2);
/* Eq. 13: log of the probability that N(means, e^(2 log_scales)) gives to
 * the bin of x, per element, for x on the 256-level grid of [-1, 1] (x =
 * k / 127.5 - 1): [x - 1/255, x + 1/255], the outermost bins reaching to
 * -inf and +inf. Computed in double from the tail away from the mean, so
 * it stays finite however far the mean or small the scale. Differentiable
 * in the means only. */
nd_tensor *nd_discretized_gaussian_log_likelihood(const nd_tensor *x, const nd_tensor *means,
                                                  const nd_tensor *log_scales);
/* L_T = KL(q(x_T | x_0) || N(0, I)), per example [N], bits per dimension. */
nd_tensor *nd_prior_bpd(const nd_schedule *s, const nd_tensor *x0);
/* Per example [N], bits per dimension: L_{t-1} = KL(q(x_{t-1} | x_t, x_0)
 * || p_theta(x_{t-1} | x_t)) where t > 0, and L_0 = -log p_theta(x_0 | x_1)
 * (the decoder above, at p_theta's mean and sigma_1) where t = 0, for
 * x_t drawn from q(x_t | x_0) and the network's output at (x_t, t). */
nd_tensor *nd_vb_terms_bpd(const nd_schedule *s, const nd_tensor *out, nd_prediction predicts,
                           const nd_tensor *x0, const nd_tensor *x_t, const nd_tensor *t,
                           nd_var_type var, bool clip);

typedef struct nd_bpd_config {
    nd_var_type var;
    bool clip;
    uint64_t seed;  /* x_t's noise and the steps drawn */
    int64_t steps;  /* 0 (or >= T): all T terms, exact; else L_0 and steps - 1 of
                       the others, drawn without replacement and scaled by
                       (T - 1) / (steps - 1): an unbiased estimate */
    /* called after each step evaluated (done of total), or NULL */
    void (*progress)(void *ctx, int64_t done, int64_t total);
    void *progress_ctx;
} nd_bpd_config;
/* The bound of each example of x0 and its parts, persistent tensors [N]
 * (free with nd_bpd_free): total = prior (L_T) + vb (the L_{t-1}, t > 1,
 * summed or estimated) + l0; terms [N, nsteps] at the steps i in steps
 * [nsteps] (steps[0] = 0), and x0_mse [N, nsteps], the mean squared error
 * of the network's x_0 estimate there. In no-grad and eval mode. */
typedef struct nd_bpd {
    nd_tensor *total, *prior, *vb, *l0, *terms, *x0_mse, *steps;
    bool estimated;
    int64_t nsteps;
} nd_bpd;
nd_bpd nd_calc_bpd(const nd_schedule *s, nd_denoiser d, const nd_tensor *x0,
                   const nd_bpd_config *config);
void nd_bpd_free(nd_bpd *r);
/* Progressive lossy coding (section 4.3, Figure 5) from an exact bound:
 * for each step i (t = i + 1), once x_t is known, rate[i] = L_T + the
 * terms of the steps above i (bits per dimension, batch mean) and
 * distortion[i] = the RMSE of the x_0 estimate from x_t on the [0, 255]
 * scale. rate[0] + L_0 is the whole lossless code. Arrays of T. */
int nd_rate_distortion(const nd_bpd *r, double *rate, double *distortion, nd_error *err);

/* ---- Algorithm 1: training --------------------------------------------- */

/* The paper's defaults (section 4, appendix B): Adam, lr 2e-4, betas (0.9,
 * 0.999), eps 1e-8, warmup 5000 steps; clip the global gradient norm at
 * 1.0; EMA decay 0.9999; no flips (turn them on for images); L_simple
 * (the MSE, for an eps denoiser); fixedlarge where L_vlb needs a variance. */
typedef struct nd_train_config {
    nd_optim_config optim;
    double grad_clip;  /* global norm; 0: measured but not clipped */
    double ema_decay;  /* in [0, 1] */
    bool random_flip;  /* flip images [N, C, H, W] left-right, p = 1/2 each */
    nd_loss_type loss; /* MSE on the denoiser's target (L_simple for eps), or L_vlb */
    nd_var_type var;   /* p_theta's variance in L_vlb */
    float label_drop;  /* with labels: each replaced by "no label" (-1) with this
                          probability, so that one model learns both the
                          conditional and the unconditional output (0.1) */
} nd_train_config;
nd_train_config nd_train_defaults(void);

/* What trains: the model behind a denoiser, its optimizer, its EMA, and
 * the one rng every draw of a step comes from (flips, t, eps, dropout). */
typedef struct nd_trainer {
    const nd_schedule *schedule;
    nd_denoiser denoiser;
    nd_train_config config;
    nd_optimizer *optimizer;
    nd_ema *ema;
    nd_rng rng;
    int64_t step; /* steps taken */
} nd_trainer;
/* The denoiser must have a module. Stops on a bad config. */
nd_trainer *nd_trainer_new(const nd_schedule *s, nd_denoiser d, nd_train_config config,
                           uint64_t seed);
void nd_trainer_free(nd_trainer *tr);

typedef struct nd_train_stats {
    double loss;      /* L_simple of the batch */
    double grad_norm; /* global norm before clipping */
    double lr;        /* the learning rate the step used */
} nd_train_stats;
/* Algorithm 1, one iteration, on a batch x0 [N, ...]: draw t and eps,
 * L_simple, backward, clip, optimizer step (with warmup), EMA update.
 * The step's activations, tape and gradients are released before it
 * returns. */
nd_train_stats nd_train_step(nd_trainer *tr, const nd_tensor *x0);
/* The same with class labels [N] for a conditional denoiser: after the
 * flips, a coin per example (from the rng) drops its label with
 * probability config.label_drop; then t, eps and the loss as above. */
nd_train_stats nd_train_step_labels(nd_trainer *tr, const nd_tensor *x0,
                                    const nd_tensor *labels);
/* The whole state (model, optimizer, EMA, rng, step) as one checkpoint
 * (nn's format); load validates everything before changing anything. */
int nd_trainer_save(const nd_trainer *tr, const char *path, const char *config,
                    nd_error *err);
int nd_trainer_load(nd_trainer *tr, const char *path, nd_error *err);

/* ---- Algorithm 2: sampling --------------------------------------------- */

/* Sees the chain at the first step (x_T), every `every` steps after it,
 * and at the last: i = t - 1, x_t (before the step) and the x_0 it
 * predicts. */
typedef void (*nd_sample_callback)(void *ctx, int64_t i, const nd_tensor *x_t,
                                   const nd_tensor *x0_pred);
typedef struct nd_sample_config {
    nd_var_type var;        /* default fixedlarge */
    bool clip;              /* clip the x_0 estimate to [-1, 1] (default on) */
    uint64_t seed;
    uint32_t first_stream;  /* example k draws from stream first_stream + k */
    const nd_ema *ema;      /* sample with these weights, if not NULL */
    nd_sample_callback callback;
    void *callback_ctx;
    int64_t every;          /* callback period in steps (>= 1) */
} nd_sample_config;
nd_sample_config nd_sample_defaults(void);

/* One step of Algorithm 2 at step i for every example (t [N] all i):
 * x_{t-1} = mu_theta(x_t, t) + sigma_t z, with no noise at i = 0. */
nd_tensor *nd_p_sample(const nd_schedule *s, nd_denoiser d, const nd_tensor *x_t,
                       const nd_tensor *t, const nd_tensor *z, nd_var_type var, bool clip,
                       nd_tensor **x0_pred);
/* Algorithm 2: x_T ~ N(0, I) of the given shape [N, ...], T steps down to
 * x_0, in no-grad and eval mode (the module's mode is restored). Example
 * k's noise, x_T first, then z for each step, comes from its own stream,
 * so it is the same drawn in any batch. */
nd_tensor *nd_p_sample_loop(const nd_schedule *s, nd_denoiser d, const int64_t *shape,
                            int ndim, const nd_sample_config *config);

/* ---- fewer steps: DDIM and respacing ------------------------------------ */

/* S increasing steps out of 0..T-1, the first 0 and the last T - 1:
 * uniform, round(k (T - 1) / (S - 1)), or quadratic, round((k / (S - 1))^2
 * (T - 1)), pushed apart where they would repeat. 2 <= S <= T. */
typedef enum nd_spacing { ND_SPACING_UNIFORM, ND_SPACING_QUADRATIC } nd_spacing;
int nd_timestep_subsequence(int64_t T, int64_t S, nd_spacing spacing, int64_t *steps,
                            nd_error *err);
/* The respaced schedule of Nichol and Dhariwal (2021): S steps whose betas,
 * 1 - abar(tau_k) / abar(tau_{k-1}), give back abar on the subsequence,
 * for Algorithm 2 over S steps. Its denoiser must see the original steps:
 * wrap it with nd_respaced_denoiser. */
int nd_schedule_respace(const nd_schedule *base, const int64_t *steps, int64_t S,
                        nd_schedule *out, nd_error *err);
typedef struct nd_respaced {
    nd_denoiser inner;
    const int64_t *steps; /* tau_0 .. tau_{S-1}, kept alive by the caller */
    int64_t S;
    /* the original schedule; needed when inner predicts the posterior
     * mean, which is the original one-step posterior's: the respaced
     * denoiser then gives the x_0 it implies (and says it predicts x_0) */
    const nd_schedule *base;
} nd_respaced;
nd_denoiser nd_respaced_denoiser(const nd_respaced *r);
/* DDIM (Song, Meng and Ermon 2021, Eq. 12) over the steps tau (increasing,
 * S of them), eta in [0, 1]: eta = 1 on all T steps is Algorithm 2 with
 * fixedsmall, eta = 0 is deterministic. The config as for
 * nd_p_sample_loop (var is not used; the callback's i is the step tau_k). */
nd_tensor *nd_ddim_sample_loop(const nd_schedule *s, nd_denoiser d, const int64_t *steps,
                               int64_t S, float eta, const int64_t *shape, int ndim,
                               const nd_sample_config *config);
/* eta = 0 both ways: x_0 -> x at tau_{S-1} (encode) and back (decode).
 * encode calls the callback at its S - 1 steps (i = tau_k, x the step's
 * input, the x_0 estimate), every config->every from the first, and at
 * the last. */
nd_tensor *nd_ddim_encode(const nd_schedule *s, nd_denoiser d, const int64_t *steps, int64_t S,
                          const nd_tensor *x0, const nd_sample_config *config);
nd_tensor *nd_ddim_decode(const nd_schedule *s, nd_denoiser d, const int64_t *steps, int64_t S,
                          const nd_tensor *x_T, const nd_sample_config *config);

/* ---- the UNet (section 3.4, appendix B) -------------------------------- */

#define ND_UNET_MAX_LEVELS 8
typedef struct nd_unet_config {
    int64_t in_channels, out_channels, resolution;
    int64_t ch;                              /* base channels */
    int levels;                              /* entries of ch_mult */
    int64_t ch_mult[ND_UNET_MAX_LEVELS];
    int64_t num_res_blocks;
    int nattn;                               /* entries of attn_resolutions */
    int64_t attn_resolutions[ND_UNET_MAX_LEVELS];
    float dropout;
    int64_t groups;                          /* GroupNorm groups (32) */
    int64_t num_classes;                     /* 0: unconditional; K: a learned embedding
                                                of K classes and "no label" added to
                                                the time embedding */
} nd_unet_config;
/* "cifar10" (the paper's, 35,746,307 parameters), "small" (1x32x32, ch 32,
 * ch_mult 1,2,2, 2 blocks, attention at 16, 8 groups), "tiny" (1x8x8,
 * ch 8, ch_mult 1,2, 1 block, attention at 4, 4 groups). */
int nd_unet_config_named(const char *name, nd_unet_config *c, nd_error *err);
/* Checks sizes, levels, groups dividing every width, the resolution
 * halving evenly down the levels. */
int nd_unet_config_check(const nd_unet_config *c, nd_error *err);
/* Multiply-adds per image of a forward pass: convs, dense layers and the
 * two products of each attention. */
int64_t nd_unet_macs(const nd_unet_config *c);

typedef struct nd_unet nd_unet;
/* Built and initialised as the reference: variance_scaling(1, fan_avg,
 * uniform) on every weight, 1e-10 on conv2, proj_out and conv_out, zero
 * biases. Stops on a bad config (see nd_unet_config_check). */
nd_unet *nd_unet_new(const nd_unet_config *c, nd_rng *rng);
nd_module *nd_unet_module(nd_unet *u);
const nd_unet_config *nd_unet_get_config(const nd_unet *u);
/* x [N, in, res, res], t [N] -> eps_theta [N, out, res, res]. */
nd_tensor *nd_unet_forward(nd_unet *u, const nd_tensor *x, const nd_tensor *t, nd_rng *rng);
/* The same for a model of num_classes > 0, labels [N] in 0..K-1 or -1 (no
 * label), or NULL (none for all); "label_emb.weight" [K + 1, 4 ch] row
 * label (row K for none) is added to the time embedding. */
nd_tensor *nd_unet_forward_labels(nd_unet *u, const nd_tensor *x, const nd_tensor *t,
                                  const nd_tensor *labels, nd_rng *rng);
nd_denoiser nd_unet_denoiser(nd_unet *u);

/* ---- the MLP denoiser --------------------------------------------------- */

/* For points x [N, dim]: each coordinate embedded as
 * nd_timestep_embedding(input_scale x_d, emb) and t as
 * nd_timestep_embedding(t, emb), concatenated, then
 *   h = in(e);  h += fc2_k(swish(fc1_k(swish(h)))) for each block k;
 *   eps = out(swish(h)), out zero-initialised. */
typedef struct nd_mlp_config {
    int64_t dim, width, depth, emb;
    float input_scale;
} nd_mlp_config;
nd_mlp_config nd_mlp_defaults(int64_t dim); /* width 128, depth 3, emb 32, scale 25 */
typedef struct nd_mlp nd_mlp;
nd_mlp *nd_mlp_new(const nd_mlp_config *c, nd_rng *rng);
nd_module *nd_mlp_module(nd_mlp *m);
nd_tensor *nd_mlp_forward(nd_mlp *m, const nd_tensor *x, const nd_tensor *t);
nd_denoiser nd_mlp_denoiser(nd_mlp *m);

/* ---- toy data ------------------------------------------------------------ */

/* n points [n, 2] of two interleaved half circles, the "two moons" of
 * scikit-learn (radius 1, centres (0, 0) and (1, 0.5), alternate points on
 * each, at uniform angles), plus N(0, noise^2) per coordinate, shifted by
 * (-0.5, -0.25) so that the set is centred: it lies in [-1.5, 1.5] x
 * [-0.75, 0.75]. */
nd_tensor *nd_toy_two_moons(int64_t n, float noise, nd_rng *rng);
/* Eight Gaussians of standard deviation noise, centred on the unit circle
 * at angles 2 pi c / 8; point k from centre k mod 8. */
nd_tensor *nd_toy_ring(int64_t n, float noise, nd_rng *rng);
/* Uniform over the 8 dark cells of a 4 x 4 board on [-1.5, 1.5]^2 (cell
 * (i, j), 0.75 wide, dark when i + j is even). */
nd_tensor *nd_toy_checkerboard(int64_t n, nd_rng *rng);
/* Five arms curling outwards (Johnson et al. 2016): radius 1 + 0.3 z_1,
 * offset 0.1 z_2, turned by 2 pi a / 5 + 0.25 e^radius, scaled by 0.6;
 * point k on arm k mod 5. */
nd_tensor *nd_toy_pinwheel(int64_t n, nd_rng *rng);
/* (s cos s, s sin s) / 10 with s = 1.5 pi (1 + 2u), plus N(0, noise^2). */
nd_tensor *nd_toy_swiss_roll(int64_t n, float noise, nd_rng *rng);
/* A set by name, "moons", "ring", "checkerboard", "pinwheel" or
 * "swissroll", with its standard noise (0.05, 0.05, -, -, 0.03); ND_ERR
 * for another name. nd_toy_name(i) lists the names (NULL past the end). */
int nd_toy_points(const char *name, int64_t n, nd_rng *rng, nd_tensor **out, nd_error *err);
const char *nd_toy_name(int index);
/* n images [n, 1, size, size] in {-1, 1}, background -1, one white shape
 * each: a disc (class 0), a square (1) or a horizontal or vertical bar 4-6
 * times as long as thick (2), of a random size (a side of size/4 to size/2)
 * at a random place, whole inside the frame. *labels, if not NULL,
 * receives the classes as a float tensor [n]. */
nd_tensor *nd_toy_shapes(int64_t n, int64_t size, nd_rng *rng, nd_tensor **labels);

/* ---- sample quality for points ------------------------------------------- */

/* The energy distance (Szekely and Rizzo) between point sets a [n, D] and
 * b [m, D]: 2 E|X - Y| - E|X - X'| - E|Y - Y'|, Euclidean, with the
 * V-statistic's means over all pairs (a point with itself included), that
 * is the energy distance of the two empirical distributions: >= 0, 0 for
 * two equal sets, 2 d for one point against one point d away. Two samples
 * of one distribution give about E|X - X'| (1/n + 1/m), not 0. Computed
 * in double over all n m + n^2 + m^2 pairs, split over the thread pool,
 * the same bits for any thread count. NaN if a coordinate is not finite.
 * Stops unless both are [count >= 1, D >= 1] of the same D. */
double nd_energy_distance(const nd_tensor *a, const nd_tensor *b);
/* Improved precision and recall (Kynkaanniemi et al. 2019) of fake points
 * [m, D] against real points [n, D]: each point of a set has a ball of
 * radius the distance to its k-th nearest other point of that set;
 * precision is the share of fake points inside the union of the real
 * balls, recall the share of real points inside the union of the fake
 * balls (distance <= radius, compared as squared distances in double).
 * Brute force over all pairs, split over the thread pool (the same result
 * for any thread count). ND_ERR (both set to NaN) for k < 1, k >= n or
 * k >= m, a different D, D = 0, or a coordinate that is not finite. Stops
 * on NULL arguments or tensors that are not [count, D]. */
int nd_knn_precision_recall(const nd_tensor *real, const nd_tensor *fake, int k,
                            double *precision, double *recall, nd_error *err);
/* The Frechet distance between the Gaussians fitted to two sets of
 * feature vectors a [n, D] and b [m, D], FID's formula (Heusel et al.
 * 2017). *d2 is the SQUARED distance, as FID reports it:
 *   d^2 = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2),
 * mu and S a set's mean and unbiased covariance (divided by n - 1), all in
 * double, S_a^1/2 and the eigenvalues of the symmetric S_a^1/2 S_b S_a^1/2
 * from nd_symmetric_eigen. 0 for a set against itself and symmetric in a
 * and b, both up to rounding (a total that rounding takes below 0 is 0).
 * Two samples of one distribution give more than 0, the more the smaller
 * they are (FID's known bias): compare figures at equal n and m.
 * Rounding: the eigenvalues of S_a^1/2 S_b S_a^1/2 are good to about
 * 2^-52 |S_a| |S_b|, and their square roots magnify that where they are
 * small: a set against itself gives about 2^-52 |S| cond(S), not 0, and
 * where a covariance is singular (n <= D, or points in a subspace) about
 * 1e-8 of tr S. O((n + m) D^2 + D^3), one thread, the same bits every
 * run; meant for D up to a few hundred. ND_ERR (*d2 NaN) for n < 2 or
 * m < 2, a different D, D = 0 or a coordinate that is not finite. Stops
 * on NULL arguments or tensors that are not [count, D]. */
int nd_frechet_distance(const nd_tensor *a, const nd_tensor *b, double *d2, nd_error *err);
/* A = V diag(w) V^T for the symmetric n x n matrix a (row-major), in
 * double, by cyclic Jacobi rotations: eigenvalues [n] ascending;
 * eigenvectors [n, n] row-major (or NULL, for the values alone: the same
 * values), eigenvector k in column k, orthonormal, each with its largest
 * component (the first of equals) positive. Each sweep visits every pair
 * p < q and rotates a_pq away unless |a_pq| <= 2^-52 sqrt(|a_pp a_qq|);
 * it stops after a sweep with no rotation (the off-diagonal norm is then
 * below 1e-14 of the matrix's for n up to 2000), usually after 6 to 12
 * sweeps of O(n^3). a is first scaled by a power of two, exactly, so
 * entries anywhere in double's range are fine. The outputs may be a
 * itself, not each other. ND_ERR (outputs NaN) for an entry that is not
 * finite, a_ij and a_ji that differ by more than 1e-10 of the largest
 * |entry| (else the average of the two is taken), an eigenvalue beyond
 * double's range, or 100 sweeps that leave the off-diagonal norm above
 * 1e-14 of the matrix's. Stops for n < 1, or a or eigenvalues NULL. */
int nd_symmetric_eigen(int64_t n, const double *a, double *eigenvalues, double *eigenvectors,
                       nd_error *err);
/* The principal square root of the symmetric positive semidefinite n x n
 * matrix a: root = V diag(sqrt w) V^T from nd_symmetric_eigen, exactly
 * symmetric, root root = a up to rounding. Eigenvalues in [-1e-10 |w|max,
 * 0) are rounding and count as 0; a more negative one is ND_ERR, saying
 * how negative. Near 0 the square root magnifies rounding: an eigenvalue
 * off by e moves the root by up to sqrt(e) there. root may be a. ND_ERR
 * (root NaN) and stops as nd_symmetric_eigen too. */
int nd_sqrtm_psd(int64_t n, const double *a, double *root, nd_error *err);

/* ---- a feature network for scoring images ------------------------------ */

/* A small classifier (classifier.c): three 3x3 convs of width w, 2w, 4w
 * (the last two with stride 2), each with GroupNorm(8) and swish, the
 * mean over positions as features [N, 4w], then one linear layer to the
 * class scores. The Frechet distance between the features of samples and
 * of test images scores a model of images without any download. */
typedef struct nd_classifier_config {
    int64_t in_channels, classes, width; /* width: a multiple of 8 */
} nd_classifier_config;
typedef struct nd_classifier nd_classifier;
nd_classifier_config nd_classifier_defaults(int64_t in_channels, int64_t classes); /* w 32 */
nd_classifier *nd_classifier_new(const nd_classifier_config *c, nd_rng *rng);
nd_module *nd_classifier_module(nd_classifier *m); /* free with nd_module_free */
const nd_classifier_config *nd_classifier_get_config(const nd_classifier *m);
int64_t nd_classifier_features_dim(const nd_classifier *m); /* 4 w */
/* x [N, C, H, W] (H, W >= 4) -> features [N, 4w] */
nd_tensor *nd_classifier_features(nd_classifier *m, const nd_tensor *x);
/* features [N, 4w] -> class scores [N, classes] (train with nd_cross_entropy) */
nd_tensor *nd_classifier_logits(nd_classifier *m, const nd_tensor *features);

#ifdef __cplusplus
}
#endif
#endif
