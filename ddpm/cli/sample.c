/* nanodiff sample: a checkpoint in, pictures and arrays out, and the
 * reverse chain x_T -> x_0 shown as it goes. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

cli_draw cli_draw_defaults(const cli_spec *s) {
    nd_sample_config c = nd_sample_defaults();
    return (cli_draw){
        .n = 16, .clip = !strcmp(s->model, "unet"), .var = c.var, .seed = s->seed, .every = 1};
}

/* The callback of a respaced sampler, told the original step tau_i. */
typedef struct respaced_watch {
    nd_sample_callback callback;
    void *ctx;
    const int64_t *steps;
} respaced_watch;
static void respaced_see(void *ctx, int64_t i, const nd_tensor *x_t, const nd_tensor *x0_pred) {
    respaced_watch *w = ctx;
    w->callback(w->ctx, w->steps[i], x_t, x0_pred);
}

/* [n, D] points or [n, C, H, W] images: returns ndim. */
static int sample_shape(const cli_spec *s, int64_t n, int64_t shape[4]) {
    shape[0] = n;
    shape[1] = s->mlp.dim;
    if (strcmp(s->model, "unet")) return 2;
    shape[1] = s->unet.in_channels;
    shape[2] = shape[3] = s->unet.resolution;
    return 4;
}

static nd_tensor *draw_batch(const cli_model *m, const cli_spec *s, const cli_draw *d,
                             int64_t first, int64_t n) {
    nd_sample_config c = nd_sample_defaults();
    c.first_stream = (uint32_t)first;
    c.var = d->var;
    c.clip = d->clip;
    c.seed = d->seed;
    c.ema = d->ema;
    c.callback = d->callback;
    c.callback_ctx = d->ctx;
    c.every = d->every;
    int64_t shape[4];
    int ndim = sample_shape(s, n, shape);
    nd_denoiser den = m->denoiser;
    if (d->labels)
        den =
            nd_denoiser_with_labels(den, nd_slice(d->labels, 0, first, first + n, 1), d->guidance);
    int64_t S = d->steps <= 0 || d->steps > s->T ? s->T : d->steps;
    if (!d->ddim && S == s->T) return nd_p_sample_loop(&m->schedule, den, shape, ndim, &c);
    /* S of the T steps: DDIM on them, or Algorithm 2 with the betas that
     * keep abar on them (respacing) */
    int64_t *steps = malloc(sizeof(int64_t) * (size_t)S);
    if (!steps) nd_fatal("sample", "out of memory");
    nd_error err;
    if (nd_timestep_subsequence(s->T, S, d->spacing, steps, &err) != ND_OK)
        nd_fatal("sample", "%s", err.message); /* S in 2..T cannot fail */
    nd_tensor *x;
    if (d->ddim) {
        x = nd_ddim_sample_loop(&m->schedule, den, steps, S, d->eta, shape, ndim, &c);
    } else {
        nd_schedule rs;
        if (nd_schedule_respace(&m->schedule, steps, S, &rs, &err) != ND_OK)
            nd_fatal("sample", "%s", err.message);
        nd_respaced r = {.inner = den, .steps = steps, .S = S, .base = &m->schedule};
        respaced_watch w = {d->callback, d->ctx, steps};
        if (d->callback) {
            c.callback = respaced_see;
            c.callback_ctx = &w;
        }
        x = nd_p_sample_loop(&rs, nd_respaced_denoiser(&r), shape, ndim, &c);
        nd_schedule_free(&rs);
    }
    free(steps);
    return x;
}

nd_tensor *cli_draw_samples(const cli_model *m, const cli_spec *s, const cli_draw *d) {
    if (d->n > (int64_t)UINT32_MAX) nd_fatal("sample", "%lld samples", (long long)d->n);
    int64_t b = d->batch > 0 && d->batch < d->n ? d->batch : d->n;
    if (b == d->n) return draw_batch(m, s, d, 0, d->n);
    /* sample k draws from stream k whatever the batch, so batches of b
     * give the same samples as one batch of n, in bounded memory */
    int64_t shape[4];
    nd_tensor *out = nd_empty(shape, sample_shape(s, d->n, shape));
    int64_t row = nd_numel(out) / d->n;
    for (int64_t first = 0; first < d->n; first += b) {
        nd_scope *scope = nd_scope_begin();
        int64_t k = d->n - first < b ? d->n - first : b;
        nd_tensor *x = nd_contiguous(draw_batch(m, s, d, first, k));
        memcpy(nd_data(out) + first * row, nd_data(x), sizeof(float) * (size_t)(k * row));
        nd_scope_end(scope);
    }
    return out;
}

/* Each step of the sampler: the progress line, and the chain every
 * `every` steps from x_T (and at the last). */
typedef struct sample_watch {
    cli_chain *chain;
    int64_t every, S, done;
    cli_progress progress;
} sample_watch;

static void watch_step(void *ctx, int64_t i, const nd_tensor *x_t, const nd_tensor *x0_pred) {
    sample_watch *w = ctx;
    if (w->every > 0 && w->done < w->S && (w->done % w->every == 0 || w->done == w->S - 1))
        cli_chain_see(w->chain, i, x_t, x0_pred);
    cli_progress_step(&w->progress, ++w->done, NAN);
}

/* ---- the command ------------------------------------------------------- */

static const cli_command_help help = {
    "nanodiff sample RUN [options]",
    "Draws samples from a trained model with Algorithm 2 (x_T ~ N(0, I), then T steps of "
    "x_{t-1} = mu_theta(x_t, t) + sigma_t z), or over S respaced steps with --steps. RUN is "
    "a training folder or a checkpoint file. Writes PREFIX.png (a grid of images, or the "
    "points in red over the data in gray), PREFIX.npy (float32, N x C x H x W in [-1, 1], or "
    "N x D), PREFIX.csv for points, PREFIX-labels.npy (the class of each sample) for "
    "class-conditional models, and with --chain the reverse chain: for images "
    "PREFIX-chain.png, rows of x_t from x_T to x_0 each with the predicted x_0 under it; for "
    "points PREFIX-chain-tNNNN.png, one scatter per step shown. Files are replaced whole."};

static int write_csv(int fd, void *ctx) {
    const nd_tensor *x = ctx;
    const float *p = nd_data(x);
    int64_t n = x->shape[0], dim = x->shape[1];
    char line[64 * 32];
    for (int64_t i = 0; i < n; i++) {
        size_t used = 0;
        for (int64_t j = 0; j < dim && used < sizeof line - 32; j++)
            used += (size_t)snprintf(line + used, sizeof line - used, "%s%.9g", j ? "," : "",
                                     (double)p[i * dim + j]);
        line[used++] = '\n';
        int rc = nd_write_all(fd, line, used);
        if (rc) return rc;
    }
    return 0;
}

int cli_sample(int argc, char **argv) {
    int64_t n = 64, batch = 0, seed = 0, steps = 0, chain_every = -1,
            threads = nd_get_num_threads(), klass = -1;
    double eta = 0.0, guidance = 1.0;
    const char *weights = "ema", *var = "large", *clip = "auto", *out = "", *prefix = "samples",
               *sampler = "ddpm", *spacing = "uniform";
    cli_option o[] = {
        CLI_OPT_INT("--n", &n, 1, 1 << 20, "N", "how many samples"),
        CLI_OPT_INT("--batch", &batch, 0, 1 << 20, "N",
                    "samples drawn together: memory grows with it, the samples do not change "
                    "(0: 8 images, or all points)"),
        CLI_OPT_INT("--seed", &seed, 0, (double)INT64_MAX, "N",
                    "seed of x_T and of each step's noise (sample k is the same in any batch)"),
        CLI_OPTS_RUN_OUTPUT(&weights, &out, &prefix),
        CLI_OPT_TEXT("--var", &var, "large|small", "large|small",
                     "sigma_t^2 = beta_t (large) or beta-tilde_t (small), section 3.2"),
        CLI_OPT_TEXT("--clip", &clip, "auto|on|off", "auto|on|off",
                     "clip the predicted x_0 to [-1, 1] (auto: on for images, off for points)"),
        CLI_OPT_TEXT("--sampler", &sampler, "ddpm|ddim", "ddpm|ddim",
                     "Algorithm 2, or DDIM (Song et al. 2021) over --steps"),
        CLI_OPT_INT("--steps", &steps, 0, 100000, "S",
                    "sample over S of the T steps (ddpm: respaced betas; 0: all T)"),
        CLI_OPT_TEXT("--spacing", &spacing, "uniform|quadratic", "NAME", "which S of the T steps"),
        CLI_OPT_REAL("--eta", &eta, 0, 1, "ETA",
                     "DDIM's noise: 0 deterministic, 1 as Algorithm 2 with beta-tilde"),
        CLI_OPT_INT("--class", &klass, -1, 1 << 20, "K",
                    "class-conditional models: draw class K (-1: one row of the grid per class)"),
        CLI_OPT_REAL("--guidance", &guidance, 0, 100, "W",
                     "classifier-free guidance: eps(x, none) + W (eps(x, K) - eps(x, none))"),
        CLI_OPT_INT("--chain", &chain_every, -1, 100000, "K",
                    "show the chain every K steps (-1: a tenth of the steps; 0: no chain)"),
        CLI_OPT_INT("--threads", &threads, 1, 1024, "N", "threads"),
    };
    const int no = (int)(sizeof o / sizeof o[0]);
    nd_error err;
    const char *run;
    int pr = cli_parse_run(argc, argv, o, no, &help, &run, prefix, &err);
    if (pr == 1) return 0;
    if (pr != ND_OK) return cli_usage_error("sample", &err);
    nd_set_num_threads((int)threads);
    char ckpt[1100], dir[1100];
    cli_spec s;
    if (cli_open_run(run, out, NULL, ckpt, dir, sizeof ckpt, &s, &err) != ND_OK)
        return cli_fail("sample", &err);
    if (steps == 1 || (steps > 0 && steps > s.T)) {
        nd_error_set(&err, "--steps %lld: use 2..%lld respaced steps, or 0 for all",
                     (long long)steps, (long long)s.T);
        fprintf(stderr, "nanodiff sample: %s\n", err.message);
        return CLI_EXIT_USAGE;
    }
    int64_t K = !strcmp(s.model, "unet") ? s.unet.num_classes : 0;
    if (K == 0 && (cli_find(o, no, "--class")->given || cli_find(o, no, "--guidance")->given))
        pr = nd_error_set(&err,
                          "--class and --guidance need a class-conditional model (nanodiff "
                          "train --classes); %s is not one",
                          ckpt);
    else if (K > 0 && klass >= K)
        pr = nd_error_set(&err, "--class %lld: the model knows classes 0..%lld", (long long)klass,
                          (long long)(K - 1));
    else if (strcmp(sampler, "ddim") && cli_find(o, no, "--eta")->given)
        pr = nd_error_set(&err, "--eta is DDIM's: give --sampler ddim");
    if (pr != ND_OK) {
        fprintf(stderr, "nanodiff sample: %s\n", err.message);
        return CLI_EXIT_USAGE;
    }
    cli_model m;
    int64_t trained = 0;
    if (cli_model_load(ckpt, &s, !strcmp(weights, "ema"), &m, &trained, &err) != ND_OK)
        return cli_fail("sample", &err);
    int rc = cli_mkdir(dir, &err);
    cli_data d = {0};
    bool points = !strcmp(s.model, "mlp");
    /* The data under the points' picture; a missing data set only loses that. */
    if (rc == ND_OK && points && s.mlp.dim == 2 &&
        cli_data_open(s.data, s.data_dir, false, &d, &err) != ND_OK) {
        fprintf(stderr, "nanodiff sample: (the data is not drawn under the samples: %s)\n",
                err.message);
        memset(&d, 0, sizeof d);
    }
    if (rc != ND_OK) goto done;

    cli_draw dr = cli_draw_defaults(&s);
    dr.n = n;
    dr.steps = steps;
    dr.seed = (uint64_t)seed;
    dr.var = !strcmp(var, "small") ? ND_FIXED_SMALL : ND_FIXED_LARGE;
    if (strcmp(clip, "auto")) dr.clip = !strcmp(clip, "on");
    dr.ddim = !strcmp(sampler, "ddim");
    dr.eta = (float)eta;
    dr.spacing = !strcmp(spacing, "quadratic") ? ND_SPACING_QUADRATIC : ND_SPACING_UNIFORM;
    int64_t S = steps > 0 && steps < s.T ? steps : s.T;
    /* labels: class K for all, or the grid's row r class r */
    int64_t cols = K > 0 && klass < 0 ? (n + K - 1) / K : 0;
    nd_tensor *labels = NULL;
    if (K > 0) {
        labels = nd_persist(nd_empty(ND_SHAPE(n)));
        for (int64_t j = 0; j < n; j++) nd_data(labels)[j] = (float)(klass >= 0 ? klass : j / cols);
        dr.labels = labels;
        dr.guidance = (float)guidance;
    }
    if (chain_every < 0) chain_every = S / 10 > 0 ? S / 10 : 1;
    if (batch == 0) batch = points ? n : 8;
    if (batch > n) batch = n;
    cli_chain ch = {.rows = (int)(batch < CLI_CHAIN_ROWS ? batch : CLI_CHAIN_ROWS)};
    sample_watch watch = {.chain = &ch, .every = chain_every, .S = S};
    dr.callback = watch_step;
    dr.ctx = &watch;
    dr.every = 1;
    dr.batch = batch;
    cli_progress_begin(&watch.progress, stderr, 0, S * ((n + batch - 1) / batch));
    printf("sampling %lld %s from %s (step %lld, %s weights) over %lld steps (%s), seed %lld\n",
           (long long)n, points ? "points" : "images", ckpt, (long long)trained, weights,
           (long long)S,
           dr.ddim   ? "DDIM"
           : S < s.T ? "Algorithm 2, respaced"
                     : "Algorithm 2",
           (long long)seed);
    if (K > 0)
        printf("%s, guidance w = %g\n", klass >= 0 ? "one class" : "one row per class", guidance);
    fflush(stdout);
    double t0 = cli_now();
    nd_scope *scope = nd_scope_begin();
    nd_tensor *x = cli_draw_samples(&m, &s, &dr);
    double secs = cli_now() - t0;
    cli_progress_end(&watch.progress);
    char path[1200], name[300];
    snprintf(name, sizeof name, "%s.npy", prefix);
    if ((rc = cli_path(path, sizeof path, dir, name, &err)) == ND_OK)
        rc = nd_npy_save(path, x, &err);
    if (rc == ND_OK && labels) { /* the class each sample was drawn for, for nanodiff score */
        snprintf(name, sizeof name, "%s-labels.npy", prefix);
        if ((rc = cli_path(path, sizeof path, dir, name, &err)) == ND_OK)
            rc = nd_npy_save(path, labels, &err);
    }
    if (rc == ND_OK && (!points || s.mlp.dim == 2)) {
        snprintf(name, sizeof name, "%s.png", prefix);
        if ((rc = cli_path(path, sizeof path, dir, name, &err)) == ND_OK)
            rc = cols ? cli_write_grid(path, x, (int)((n + cols - 1) / cols), (int)cols, &err)
                      : cli_write_samples_png(path, x, d.name[0] ? &d : NULL, s.seed, &err);
    }
    if (rc == ND_OK && points) {
        snprintf(name, sizeof name, "%s.csv", prefix);
        if ((rc = cli_path(path, sizeof path, dir, name, &err)) == ND_OK)
            rc = nd_write_file_atomic(path, write_csv, x, &err);
    }
    if (rc == ND_OK && chain_every > 0 && !points) {
        snprintf(name, sizeof name, "%s-chain.png", prefix);
        if ((rc = cli_path(path, sizeof path, dir, name, &err)) == ND_OK)
            rc = cli_chain_strip(path, &ch, x, &err);
    }
    for (int k = 0; rc == ND_OK && chain_every > 0 && points && s.mlp.dim == 2 && k < ch.n; k++) {
        snprintf(name, sizeof name, "%s-chain-t%04lld.png", prefix, (long long)ch.t[k]);
        if ((rc = cli_path(path, sizeof path, dir, name, &err)) == ND_OK)
            rc = cli_write_samples_png(path, ch.xt[k], d.name[0] ? &d : NULL, s.seed, &err);
    }
    nd_scope_end(scope);
    cli_chain_free(&ch);
    nd_free(labels);
    if (rc == ND_OK)
        printf("%.1f s (%.3f s a step). In %s/: %s.png, %s.npy%s%s%s%s\n", secs, secs / (double)S,
               dir, prefix, prefix, points ? ", .csv" : "", labels ? ", -labels.npy" : "",
               chain_every > 0 ? ", the chain as " : "",
               chain_every > 0 ? (points ? "-chain-tNNNN.png" : "-chain.png") : "");
done:
    if (d.name[0]) cli_data_close(&d);
    cli_model_free(&m);
    return rc == ND_OK ? 0 : cli_fail("sample", &err);
}
