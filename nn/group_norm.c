/* GroupNorm (Wu & He 2018) as one fused op with a hand-derived backward.
 *
 * x [N, C, *] is viewed as [N, G, D] with D = (C / G) * (positions); each
 * row (n, g) is normalised over its D elements, then every channel c is
 * scaled and shifted:
 *   mu = mean(x_row), rstd = 1 / sqrt(mean((x_row - mu)^2) + eps)
 *   xhat = (x - mu) rstd,   y = gamma_c xhat + beta_c
 * Backward, with g = dy gamma_c and means taken over the row:
 *   dbeta_c  = sum_{n, positions} dy
 *   dgamma_c = sum_{n, positions} dy xhat
 *   dx       = rstd (g - mean(g) - xhat mean(g xhat))
 * (the last line is the chain rule through mu and rstd: d xhat / d x has
 * a rank-two correction, one term for the mean and one for the variance).
 * Rows are independent, so both passes run one row per chunk on the pool;
 * sums are in double in a fixed order, so the bits never depend on the
 * thread count.
 *
 * The mean, summed in double, is kept as two floats, mu = hi + lo (hi the
 * float nearest it, lo the rest), and x - mu is formed as x - hi with lo
 * folded into the per-channel shift:
 *   y = (x - hi) s + (beta - lo scale),   scale = rstd gamma, s = (float)scale
 * x - hi is exact for x within a factor of two of hi (Sterbenz), so a
 * small spread around a large mean keeps its digits, and a group whose
 * values are all equal (a group of one element, say) has hi = x and lo =
 * 0: y is exactly beta, as in PyTorch's float32. Folding the whole mean
 * into the shift, x s + (beta - mu s), left |mu| rstd 2^-24 of noise
 * instead: 0.00195 for one element of 77.7 with eps 1e-5, and misses of
 * 1e-4 for groups of two close values. (Forming each x - mu in double
 * rounds once less, but took a third longer in these scalar loops.) The
 * backward pass gets hi and lo and folds lo the same way.
 *
 * GroupNorm followed by swish, the UNet's norm-then-activation, runs as
 * one op too (nd_group_norm_silu): y = g sigma(g) with g the GroupNorm
 * output. It keeps x and the statistics, not g: backward computes g again
 * from them, with the forward's float s and t of each channel, turns dy
 * into dg = dy sigma(g) (1 + g (1 - sigma(g))), and goes on as above with
 * dg. Every step rounds as the two separate ops do, so the fused op gives
 * their bits, forward and backward. Both ops keep s and t, and with them
 * form their output again when the tape asks (recompute), bit for bit. */
#include <math.h>
#include <string.h>

#include "nn.h"

typedef struct {
    int64_t n, c, g, positions; /* x as [n, c, positions], g groups */
    float eps;
    bool affine, silu; /* silu: y = swish(GroupNorm(x)) */
} gn_args;

typedef struct {
    const gn_args *a;
    const float *x, *gamma, *beta, *dy;
    float *y, *mean, *rstd; /* mean [n, g, 2] (hi, lo), rstd [n, g] */
    float *dx;
    double *dgamma_nc, *dbeta_nc; /* per (n, c) partial sums [n, c] */
    float *scratch;               /* silu backward: a row per worker */
    float *st; /* each (n, c)'s float s and t of forward_row, [n, c, 2] */
} gn_job;

static int64_t row_len(const gn_args *a) { return a->c / a->g * a->positions; }

/* The row sums (in double, in a fixed order) are the tensor layer's
 * nd_row_*, which run the kernel set's SIMD lanes; the elementwise passes
 * are float loops with the per-channel constants folded in double. */
/* y = (x - hi) s + t over one row, each channel's s and t from j->st:
 * the forward, and its repetitions in backward and in recompute, round
 * alike (one rounding to float per step, also where float expressions are
 * evaluated wider, as on s390x: the same bits on every target) */
static void apply_row(const gn_job *j, int64_t row, float *y) {
    const gn_args *a = j->a;
    int64_t d = row_len(a), cpg = a->c / a->g, len = a->positions;
    const float *x = j->x + row * d;
    float hi = j->mean[2 * row];
    for (int64_t c = 0; c < cpg; c++) {
        float s = j->st[2 * (row * cpg + c)], t = j->st[2 * (row * cpg + c) + 1];
        for (int64_t p = c * len; p < (c + 1) * len; p++) {
            float xm = x[p] - hi, xs = xm * s;
            y[p] = xs + t;
        }
    }
}

static void forward_row(void *ctx, int64_t row, int worker) {
    (void)worker;
    const gn_job *j = ctx;
    const gn_args *a = j->a;
    int64_t d = row_len(a), cpg = a->c / a->g;
    const float *x = j->x + row * d;
    double mu = nd_row_sum(d, x) / (double)d;
    double rstd = 1.0 / sqrt(nd_row_sum_sq_dev(d, x, mu) / (double)d + a->eps);
    float hi = (float)mu, lo = (float)(mu - hi);
    j->mean[2 * row] = hi;
    j->mean[2 * row + 1] = lo;
    j->rstd[row] = (float)rstd;
    int64_t c0 = row % a->g * cpg;
    for (int64_t c = 0; c < cpg; c++) {
        /* y = (x - mu) scale + beta, scale = rstd gamma
         *   = (x - hi) s + (beta - lo scale) */
        double scale = rstd * (a->affine ? j->gamma[c0 + c] : 1.0f);
        double beta = a->affine ? j->beta[c0 + c] : 0.0f;
        j->st[2 * (row * cpg + c)] = (float)scale;
        j->st[2 * (row * cpg + c) + 1] = (float)(beta - lo * scale);
    }
    float *y = j->y + row * d;
    apply_row(j, row, y);
    if (a->silu) nd_row_silu(d, y, y);
}

/* The output again, from x and the statistics (the tape's recompute). */
static void recompute_row(void *ctx, int64_t row, int worker) {
    (void)worker;
    const gn_job *j = ctx;
    int64_t d = row_len(j->a);
    apply_row(j, row, j->y + row * d);
    if (j->a->silu) nd_row_silu(d, j->y + row * d, j->y + row * d);
}

/* silu's backward for one row, in place of the GroupNorm backward's dy:
 * g computed again as forward_row did, into dg; then
 *   dg = dy sigma(g) (1 + g (1 - sigma(g)))
 * rounded step by step as the separate ops round it. */
static void silu_backward_row(const gn_job *j, int64_t row, float *sig, float *dg) {
    int64_t d = row_len(j->a);
    const float *dy = j->dy + row * d;
    apply_row(j, row, dg);
    nd_row_sigmoid(d, dg, sig);
    for (int64_t p = 0; p < d; p++) {
        float one_minus = 1.0f - sig[p], g_term = dg[p] * one_minus, inner = g_term + 1.0f;
        float slope = sig[p] * inner;
        dg[p] = dy[p] * slope;
    }
}

static void backward_row(void *ctx, int64_t row, int worker) {
    const gn_job *j = ctx;
    const gn_args *a = j->a;
    int64_t d = row_len(a), cpg = a->c / a->g, c0 = row % a->g * cpg;
    int64_t n = row / a->g, len = a->positions;
    const float *x = j->x + row * d, *dy = j->dy + row * d;
    if (a->silu) { /* dy becomes dg, in dx's row; dx is then formed in place */
        silu_backward_row(j, row, j->scratch + worker * d, j->dx + row * d);
        dy = j->dx + row * d;
    }
    float hi = j->mean[2 * row], lo = j->mean[2 * row + 1];
    double mu = (double)hi + lo, rstd = j->rstd[row];
    double sum_g = 0, sum_gx = 0; /* sum(g), sum(g xhat) over the row */
    for (int64_t c = 0; c < cpg; c++) {
        double gamma = a->affine ? j->gamma[c0 + c] : 1.0;
        double sdy = nd_row_sum(len, dy + c * len);
        double sdyx = nd_row_dot_dev(len, x + c * len, mu, dy + c * len) * rstd;
        j->dbeta_nc[n * a->c + c0 + c] = sdy;
        j->dgamma_nc[n * a->c + c0 + c] = sdyx;
        sum_g += gamma * sdy;
        sum_gx += gamma * sdyx;
    }
    double mean_g = sum_g / (double)d, mean_gx = sum_gx / (double)d;
    float *dx = j->dx + row * d;
    for (int64_t c = 0; c < cpg; c++) {
        /* dx = rstd (gamma dy - mean_g - (x - mu) rstd mean_gx)
         *    = k_dy dy + k_x (x - hi) + (k_1 - k_x lo) */
        double gamma = a->affine ? j->gamma[c0 + c] : 1.0;
        float k_dy = (float)(rstd * gamma), k_x = (float)(-rstd * rstd * mean_gx);
        float k_1 = (float)(-rstd * mean_g - (double)k_x * lo);
        const float *xc = x + c * len, *dyc = dy + c * len;
        float *dxc = dx + c * len;
        for (int64_t p = 0; p < len; p++) { /* rounded per step, as forward_row */
            float g = k_dy * dyc[p], xm = xc[p] - hi, gx = k_x * xm, rest = gx + k_1;
            dxc[p] = g + rest;
        }
    }
}

/* The backward of the formulas at the top of this file: dbeta, dgamma
 * and dx = rstd (g - mean(g) - xhat mean(g xhat)) per row, g = dy gamma.
 * in: x, then gamma and beta when affine; saved: x contiguous, mean (hi,
 * lo), rstd, the s and t, then gamma contiguous if affine */
static void group_norm_backward(const nd_function_ctx *ctx, const nd_tensor *dy,
                                nd_tensor **grads) {
    const gn_args *a = ctx->args;
    nd_tensor *x = ctx->saved[0];
    nd_tensor *dyc = nd_contiguous(dy);
    nd_tensor *dx = nd_empty(x->shape, x->ndim);
    size_t nc_bytes = (size_t)(a->n * a->c) * sizeof(double);
    size_t scratch_bytes =
        a->silu ? (size_t)(nd_get_num_threads() * row_len(a)) * sizeof(float) : 0;
    gn_job j = {.a = a,
                .x = nd_data(x),
                .gamma = a->affine ? nd_data(ctx->saved[ctx->nsaved - 1]) : NULL,
                .st = nd_data(ctx->saved[3]),
                .dy = nd_data(dyc),
                .mean = nd_data(ctx->saved[1]),
                .rstd = nd_data(ctx->saved[2]),
                .dx = nd_data(dx),
                .dgamma_nc = nd_alloc(nc_bytes),
                .dbeta_nc = nd_alloc(nc_bytes),
                .scratch = scratch_bytes ? nd_alloc(scratch_bytes) : NULL};
    nd_parallel_for(a->n * a->g, backward_row, &j);
    if (scratch_bytes) nd_dealloc(j.scratch, scratch_bytes);
    grads[0] = dx;
    if (a->affine) {
        nd_tensor *dgamma = nd_empty(ND_SHAPE(a->c)), *dbeta = nd_empty(ND_SHAPE(a->c));
        for (int64_t c = 0; c < a->c; c++) {
            double sg = 0, sb = 0;
            for (int64_t n = 0; n < a->n; n++) {
                sg += j.dgamma_nc[n * a->c + c];
                sb += j.dbeta_nc[n * a->c + c];
            }
            nd_data(dgamma)[c] = (float)sg;
            nd_data(dbeta)[c] = (float)sb;
        }
        grads[1] = dgamma;
        grads[2] = dbeta;
    }
    nd_dealloc(j.dgamma_nc, nc_bytes);
    nd_dealloc(j.dbeta_nc, nc_bytes);
}

static void group_norm_recompute(const nd_function_ctx *ctx, nd_tensor *out) {
    gn_job j = {.a = ctx->args,
                .x = nd_data(ctx->saved[0]),
                .mean = nd_data(ctx->saved[1]),
                .st = nd_data(ctx->saved[3]),
                .y = nd_data(out)};
    nd_parallel_for(j.a->n * j.a->g, recompute_row, &j);
}

static const nd_function group_norm_fn = {
    .name = "group_norm", .backward = group_norm_backward, .recompute = group_norm_recompute};
static const nd_function group_norm_silu_fn = {
    .name = "group_norm_silu", .backward = group_norm_backward, .recompute = group_norm_recompute};

static void check_args(const nd_tensor *x, int64_t groups, const nd_tensor *gamma,
                       const nd_tensor *beta, float eps) {
    char s[ND_SHAPE_STR_LEN], t[ND_SHAPE_STR_LEN];
    if (!x) nd_fatal("group_norm", "input is NULL");
    if (x->ndim < 2)
        nd_fatal("group_norm", "input %s needs at least 2 axes [N, C, ...]",
                 nd_shape_str(x->shape, x->ndim, s));
    int64_t c = x->shape[1];
    if (groups < 1 || c % groups != 0)
        nd_fatal("group_norm", "%lld groups do not divide the %lld channels of %s",
                 (long long)groups, (long long)c, nd_shape_str(x->shape, x->ndim, s));
    if (!gamma != !beta)
        nd_fatal("group_norm", "give both gamma and beta, or neither");
    const nd_tensor *p[2] = {gamma, beta};
    for (int k = 0; k < 2; k++)
        if (p[k] && (p[k]->ndim != 1 || p[k]->shape[0] != c))
            nd_fatal("group_norm", "%s has shape %s; want [%lld] for input %s",
                     k ? "beta" : "gamma", nd_shape_str(p[k]->shape, p[k]->ndim, t),
                     (long long)c, nd_shape_str(x->shape, x->ndim, s));
    if (!(eps >= 0.0f)) nd_fatal("group_norm", "eps %g is negative", eps);
}

static nd_tensor *group_norm(const nd_tensor *x, int64_t groups, const nd_tensor *gamma,
                             const nd_tensor *beta, float eps, bool silu) {
    check_args(x, groups, gamma, beta, eps);
    gn_args a = {x->shape[0], x->shape[1], groups, 1, eps, gamma != NULL, silu};
    for (int i = 2; i < x->ndim; i++) a.positions *= x->shape[i];

    /* The kernel reads plain contiguous rows; copies made here are not
     * ops of the model, so they stay off the tape. */
    nd_no_grad_begin();
    nd_tensor *xc = nd_contiguous(x);
    nd_tensor *gc = gamma ? nd_contiguous(gamma) : NULL;
    nd_tensor *bc = beta ? nd_contiguous(beta) : NULL;
    nd_no_grad_end();
    nd_tensor *y = nd_empty(x->shape, x->ndim);
    nd_tensor *mean = nd_empty(ND_SHAPE(a.n, a.g, 2)), *rstd = nd_empty(ND_SHAPE(a.n, a.g));
    nd_tensor *st = nd_empty(ND_SHAPE(a.n, a.c, 2));
    gn_job j = {.a = &a,
                .x = nd_data(xc),
                .gamma = gc ? nd_data(gc) : NULL,
                .beta = bc ? nd_data(bc) : NULL,
                .y = nd_data(y),
                .mean = nd_data(mean),
                .rstd = nd_data(rstd),
                .st = nd_data(st)};
    if (nd_numel(x) > 0) nd_parallel_for(a.n * a.g, forward_row, &j);

    const nd_tensor *in[3] = {x, gamma, beta};
    const nd_tensor *saved[5] = {xc, mean, rstd, st, gc};
    int nsaved = gc ? 5 : 4;
    nd_function_apply(silu ? &group_norm_silu_fn : &group_norm_fn, y, in, gamma ? 3 : 1,
                      saved, nsaved, &a, sizeof a);
    nd_free(xc);
    nd_free(gc);
    nd_free(bc);
    nd_free(mean);
    nd_free(rstd);
    nd_free(st);
    return y;
}

nd_tensor *nd_group_norm(const nd_tensor *x, int64_t groups, const nd_tensor *gamma,
                         const nd_tensor *beta, float eps) {
    return group_norm(x, groups, gamma, beta, eps, false);
}

nd_tensor *nd_group_norm_silu(const nd_tensor *x, int64_t groups, const nd_tensor *gamma,
                              const nd_tensor *beta, float eps) {
    return group_norm(x, groups, gamma, beta, eps, true);
}

/* ---- the layer --------------------------------------------------------- */

static void destroy(nd_module *m) { nd_dealloc(m, sizeof(nd_group_norm_layer)); }

static nd_tensor *forward(nd_module *m, const nd_tensor *x) {
    return nd_group_norm_forward((nd_group_norm_layer *)m, x);
}

nd_group_norm_layer *nd_group_norm_new(int64_t groups, int64_t channels, float eps,
                                       bool affine) {
    if (groups < 1 || channels < 1 || channels % groups != 0)
        nd_fatal("group_norm_new", "%lld groups do not divide %lld channels",
                 (long long)groups, (long long)channels);
    if (!(eps >= 0.0f)) nd_fatal("group_norm_new", "eps %g is negative", eps);
    nd_group_norm_layer *l = nd_alloc(sizeof *l);
    nd_module_init(&l->base, "GroupNorm", destroy);
    l->base.forward = forward;
    l->groups = groups;
    l->channels = channels;
    l->eps = eps;
    l->weight = affine ? nd_module_param(&l->base, "weight", nd_ones(ND_SHAPE(channels)))
                       : NULL;
    l->bias = affine ? nd_module_param(&l->base, "bias", nd_zeros(ND_SHAPE(channels)))
                     : NULL;
    return l;
}

static void check_layer_input(const nd_group_norm_layer *l, const nd_tensor *x) {
    if (!l) nd_fatal("group_norm", "layer is NULL");
    if (x && x->ndim >= 2 && x->shape[1] != l->channels) {
        char s[ND_SHAPE_STR_LEN];
        nd_fatal("group_norm", "layer for %lld channels got input %s",
                 (long long)l->channels, nd_shape_str(x->shape, x->ndim, s));
    }
}

nd_tensor *nd_group_norm_forward(nd_group_norm_layer *l, const nd_tensor *x) {
    check_layer_input(l, x);
    return nd_group_norm(x, l->groups, l->weight, l->bias, l->eps);
}

nd_tensor *nd_group_norm_silu_forward(nd_group_norm_layer *l, const nd_tensor *x) {
    check_layer_input(l, x);
    return nd_group_norm_silu(x, l->groups, l->weight, l->bias, l->eps);
}
