/* nanodiff eval: the variational bound (Eq. 5) of test images in bits per
 * dimension, term by term, and the reverse process read as progressive
 * lossy coding (section 4.3, Figures 5 and 6). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_command_help help = {
    "nanodiff eval RUN [options]",
    "Measures a trained image model by the paper's variational bound (Eq. 5) on test "
    "images, in bits per dimension: L_T (the prior term), the sum of the L_{t-1} (KL "
    "between q(x_{t-1} | x_t, x_0) and p_theta(x_{t-1} | x_t)), and L_0 (the discretized "
    "decoder of Eq. 13), with p_theta's mean formed from the x_0 estimate clipped to [-1, 1] "
    "as the reference implementation does. With --t-samples 0 every one of the T terms is "
    "evaluated (exact, "
    "and slow: T network passes per image); with K > 1, L_0 and K - 1 others drawn at "
    "random, scaled to an unbiased estimate. Writes PREFIX-bpd.csv (each image's bound and "
    "its parts, and their mean), PREFIX.csv (per step t: the term, and the RMSE of the "
    "predicted x_0 on the [0, 255] scale; exact runs add the rate and distortion of "
    "progressive coding), PREFIX-terms.png, and for exact runs "
    "PREFIX-rate-distortion.png (the paper's Figure 5); PREFIX-progressive.png shows, for "
    "four images, x_t and the x_0 predicted from it at t = T ... 1 (coarse to fine, as in "
    "Figure 6)."};

static void on_progress(void *ctx, int64_t done, int64_t total) {
    (void)total;
    cli_progress_step(ctx, done, NAN);
}

typedef struct table_ctx {
    const nd_bpd *r;
    const double *rate, *distortion; /* by step, or NULL */
    const int64_t *order;            /* columns in increasing t */
} table_ctx;

/* PREFIX.csv: one line per step evaluated, in increasing t. */
static int write_terms(int fd, void *ctx) {
    const table_ctx *c = ctx;
    const nd_bpd *r = c->r;
    int64_t n = r->terms->shape[0], k = r->nsteps;
    char line[256];
    int len = snprintf(line, sizeof line, "t,term_bpd,x0_rmse%s\n",
                       c->rate ? ",rate_bpd,distortion_rmse" : "");
    int e = nd_write_all(fd, line, (size_t)len);
    for (int64_t q = 0; q < k && !e; q++) {
        int64_t j = c->order[q], i = (int64_t)nd_data(r->steps)[j];
        double term = 0, mse = 0;
        for (int64_t x = 0; x < n; x++) {
            term += nd_data(r->terms)[x * k + j];
            mse += nd_data(r->x0_mse)[x * k + j];
        }
        len = snprintf(line, sizeof line, "%lld,%.9g,%.9g", (long long)(i + 1), term / (double)n,
                       127.5 * sqrt(mse / (double)n));
        if (c->rate)
            len += snprintf(line + len, sizeof line - (size_t)len, ",%.9g,%.9g", c->rate[i],
                            c->distortion[i]);
        line[len++] = '\n';
        e = nd_write_all(fd, line, (size_t)len);
    }
    return e;
}

/* PREFIX-bpd.csv: each image's bound and its parts, then their mean. */
static int write_bpd(int fd, void *ctx) {
    const nd_bpd *r = ((const table_ctx *)ctx)->r;
    int64_t n = r->total->shape[0];
    char line[256];
    int len = snprintf(line, sizeof line, "image,total_bpd,prior_bpd,vb_bpd,l0_bpd\n");
    int e = nd_write_all(fd, line, (size_t)len);
    double sum[4] = {0, 0, 0, 0};
    const nd_tensor *parts[4] = {r->total, r->prior, r->vb, r->l0};
    for (int64_t x = 0; x <= n && !e; x++) {
        double v[4];
        for (int p = 0; p < 4; p++) {
            v[p] = x < n ? nd_data(parts[p])[x] : sum[p] / (double)n;
            if (x < n) sum[p] += v[p];
        }
        char name[32];
        snprintf(name, sizeof name, x < n ? "%lld" : "mean", (long long)x);
        len = snprintf(line, sizeof line, "%s,%.9g,%.9g,%.9g,%.9g\n", name, v[0], v[1], v[2], v[3]);
        e = nd_write_all(fd, line, (size_t)len);
    }
    return e;
}

/* The columns of the steps evaluated, in increasing t (qsort has no
 * context argument, hence the file-level pointer). */
static const float *sort_steps;
static int cmp_order(const void *a, const void *b) {
    float x = sort_steps[*(const int64_t *)a], y = sort_steps[*(const int64_t *)b];
    return (x > y) - (x < y);
}

/* Figure 6 of the paper on test images: rows of x_t and of the x_0 the
 * network predicts from it, at t = T ... 1, and x_0 itself at the end. */
static int progressive(const char *path, const cli_model *m, const nd_tensor *x0, uint64_t seed,
                       nd_var_type var, nd_error *err) {
    nd_scope *scope = nd_scope_begin();
    int64_t T = m->schedule.T, rows = x0->shape[0] < 4 ? x0->shape[0] : 4;
    enum { COLS = 8 };
    const double at[COLS] = {1.0, 0.75, 0.5, 0.35, 0.25, 0.15, 0.05, 0.0};
    nd_tensor *x = nd_slice(x0, 0, 0, rows, 1);
    nd_rng g = nd_rng_init(seed, 7);
    nd_tensor *eps = nd_randn(&g, x->shape, x->ndim);
    const nd_tensor *cells[2 * 4 * (COLS + 1)];
    bool was = m->module->training;
    nd_module_train(m->module, false);
    nd_no_grad_begin();
    for (int c = 0; c < COLS; c++) {
        int64_t i = (int64_t)llround(at[c] * (double)(T - 1));
        nd_tensor *t = nd_full(ND_SHAPE(rows), (float)i);
        nd_tensor *x_t = nd_q_sample(&m->schedule, x, t, eps), *x0_pred;
        nd_p_mean_variance(&m->schedule, nd_denoise(m->denoiser, x_t, t, NULL),
                           m->denoiser.predicts, x_t, t, var, true, &x0_pred);
        for (int64_t r = 0; r < rows; r++) {
            cells[(2 * r) * (COLS + 1) + c] = nd_slice(x_t, 0, r, r + 1, 1);
            cells[(2 * r + 1) * (COLS + 1) + c] = nd_slice(x0_pred, 0, r, r + 1, 1);
        }
    }
    nd_no_grad_end();
    nd_module_train(m->module, was);
    for (int64_t r = 0; r < rows; r++)
        cells[(2 * r) * (COLS + 1) + COLS] = cells[(2 * r + 1) * (COLS + 1) + COLS] =
            nd_slice(x, 0, r, r + 1, 1);
    int rc = cli_write_grid(path, nd_concat(cells, (int)(2 * rows * (COLS + 1)), 0),
                            (int)(2 * rows), COLS + 1, err);
    nd_scope_end(scope);
    return rc;
}

int cli_eval(int argc, char **argv) {
    int64_t n = 32, ksteps = 0, seed = 0, threads = nd_get_num_threads();
    const char *data = "", *data_dir = "", *split = "test", *var = "large", *weights = "ema",
               *out = "", *prefix = "eval";
    cli_option o[] = {
        CLI_OPT_TEXT("--data", &data, NULL, "SET", "the images (default: the run's data set)"),
        CLI_OPT_TEXT("--data-dir", &data_dir, NULL, "DIR", "their folder, where needed"),
        CLI_OPT_TEXT("--split", &split, "test|train", "test|train", "which part of the set"),
        CLI_OPT_INT("--n", &n, 1, 100000, "N", "images evaluated (the split's first N)"),
        CLI_OPT_INT("--t-samples", &ksteps, 0, 100000, "K",
                    "0: all T terms (exact); K >= 2: an unbiased estimate from K"),
        CLI_OPT_INT("--seed", &seed, 0, (double)INT64_MAX, "N",
                    "seed of the noise and the t drawn"),
        CLI_OPT_TEXT("--var", &var, "large|small", "large|small",
                     "sigma_t^2 of p_theta: beta_t or beta-tilde_t"),
        CLI_OPTS_RUN_OUTPUT(&weights, &out, &prefix),
        CLI_OPT_INT("--threads", &threads, 1, 1024, "N", "threads"),
    };
    const int no = (int)(sizeof o / sizeof o[0]);
    nd_error err;
    const char *run;
    int pr = cli_parse_run(argc, argv, o, no, &help, &run, prefix, &err);
    if (pr == 1) return 0;
    if (pr == ND_OK && ksteps == 1)
        pr = nd_error_set(&err, "--t-samples 1: an estimate needs L_0 and at least one more");
    if (pr != ND_OK) return cli_usage_error("eval", &err);
    nd_set_num_threads((int)threads);
    char ckpt[1100], dir[1100];
    cli_spec s;
    if (cli_open_run(run, out,
                     ": bits per dimension are for 8-bit images (measure points with nanodiff "
                     "score)",
                     ckpt, dir, sizeof ckpt, &s, &err) != ND_OK)
        return cli_fail("eval", &err);
    cli_data d;
    cli_model m;
    int64_t trained = 0;
    if (cli_open_run_data(ckpt, &s, data, data_dir, !strcmp(split, "test"), !strcmp(weights, "ema"),
                          &d, &m, &trained, &err) != ND_OK)
        return cli_fail("eval", &err);
    int rc = cli_mkdir(dir, &err);
    if (rc == ND_OK) rc = cli_check_count(&d, n, split, &err);
    if (rc != ND_OK) goto done;

    nd_scope *scope = nd_scope_begin();
    nd_tensor *x0 = d.generated ? cli_data_batch(&d, (uint64_t)seed, 0, n, NULL)
                                : nd_slice(d.table, 0, 0, n, 1);
    nd_var_type vt = !strcmp(var, "small") ? ND_FIXED_SMALL : ND_FIXED_LARGE;
    cli_progress p;
    int64_t k = ksteps <= 0 || ksteps >= s.T ? s.T : ksteps;
    printf("the bound of %lld %s images of %s (step %lld, %s weights): %s\n", (long long)n, split,
           d.name, (long long)trained, weights,
           k == s.T ? "every one of the T terms (exact)" : "an estimate from a random subset of t");
    fflush(stdout);
    cli_progress_begin(&p, stderr, 0, k);
    nd_bpd_config bc = {.var = vt,
                        .clip = true, /* as the reference: p_theta's mean from the clipped x_0 */
                        .seed = (uint64_t)seed,
                        .steps = ksteps,
                        .progress = on_progress,
                        .progress_ctx = &p};
    double t0 = cli_now();
    nd_bpd r = nd_calc_bpd(&m.schedule, m.denoiser, x0, &bc);
    cli_progress_end(&p);
    double mean[4] = {0, 0, 0, 0}, sq = 0;
    const nd_tensor *parts[4] = {r.total, r.prior, r.vb, r.l0};
    for (int64_t x = 0; x < n; x++) {
        for (int q = 0; q < 4; q++) mean[q] += nd_data(parts[q])[x] / (double)n;
        sq += (double)nd_data(r.total)[x] * nd_data(r.total)[x];
    }
    double sd = n > 1 ? sqrt(fmax(sq / (double)n - mean[0] * mean[0], 0) * n / (n - 1.0)) : 0;
    printf("bits/dim %.4f (+- %.4f, the standard error over images) = L_T %.5f + sum of "
           "L_{t-1} %.4f + L_0 %.4f\n%s, %lld of T = %lld terms; %.1f s\n",
           mean[0], sd / sqrt((double)n), mean[1], mean[2], mean[3],
           r.estimated ? "estimated" : "exact", (long long)k, (long long)s.T, cli_now() - t0);

    int64_t *order = malloc(sizeof(int64_t) * (size_t)k);
    double *rate = NULL, *dist = NULL, *tx = malloc(sizeof(double) * (size_t)k),
           *ty = malloc(sizeof(double) * (size_t)k);
    if (!order || !tx || !ty) nd_fatal("eval", "out of memory");
    for (int64_t j = 0; j < k; j++) order[j] = j;
    sort_steps = nd_data(r.steps);
    qsort(order, (size_t)k, sizeof *order, cmp_order);
    if (!r.estimated) {
        rate = malloc(sizeof(double) * (size_t)s.T);
        dist = malloc(sizeof(double) * (size_t)s.T);
        if (!rate || !dist) nd_fatal("eval", "out of memory");
        rc = nd_rate_distortion(&r, rate, dist, &err);
    }
    table_ctx tc = {&r, rate, dist, order};
    char path[1200], name[300];
#define OUT(suffix)                                                                                \
    (snprintf(name, sizeof name, "%s%s", prefix, suffix),                                          \
     cli_path(path, sizeof path, dir, name, &err) == ND_OK)
    if (rc == ND_OK)
        rc = OUT("-bpd.csv") ? nd_write_file_atomic(path, write_bpd, &tc, &err) : ND_ERR;
    if (rc == ND_OK) rc = OUT(".csv") ? nd_write_file_atomic(path, write_terms, &tc, &err) : ND_ERR;
    for (int64_t q = 0; q < k; q++) { /* the mean term of each t */
        int64_t j = order[q];
        tx[q] = nd_data(r.steps)[j] + 1;
        ty[q] = 0;
        for (int64_t x = 0; x < n; x++) ty[q] += nd_data(r.terms)[x * k + j] / (double)n;
    }
    if (rc == ND_OK && OUT("-terms.png")) {
        nd_plot_series ser = {.x = tx,
                              .y = ty,
                              .n = k,
                              .color = {30, 60, 200},
                              .label = r.estimated ? "L_{t-1} (steps drawn)" : "L_{t-1}"};
        nd_plot pl = {.title = "the bound's terms (L_0 at t = 1)",
                      .xlabel = "t",
                      .ylabel = "bits per dimension",
                      .logy = true,
                      .width = 720,
                      .height = 440};
        rc = nd_png_plot(path, &pl, &ser, 1, &err);
    } else if (rc == ND_OK) {
        rc = ND_ERR;
    }
    if (rc == ND_OK && !r.estimated && OUT("-rate-distortion.png")) {
        /* Figure 5: distortion against rate, x_t received from T down to 1 */
        for (int64_t i = 0; i < s.T; i++) {
            tx[i] = rate[i];
            ty[i] = dist[i];
        }
        nd_plot_series ser = {.x = tx,
                              .y = ty,
                              .n = s.T,
                              .color = {200, 30, 30},
                              .label = "t from T to 1",
                              .thick = true};
        nd_plot pl = {.title = "progressive coding: distortion against rate",
                      .xlabel = "rate (bits per dimension)",
                      .ylabel = "distortion (RMSE, 0..255)",
                      .width = 720,
                      .height = 440};
        rc = nd_png_plot(path, &pl, &ser, 1, &err);
        if (rc == ND_OK)
            printf("progressive coding: x_T alone costs %.4f bits/dim at distortion %.1f; all but "
                   "L_0, %.4f bits/dim at %.2f\n",
                   rate[s.T - 1], dist[s.T - 1], rate[0], dist[0]);
    }
    if (rc == ND_OK && OUT("-progressive.png"))
        rc = progressive(path, &m, x0, (uint64_t)seed, vt, &err);
#undef OUT
    if (rc == ND_OK)
        printf("in %s/: %s-bpd.csv, %s.csv, %s-terms.png, %s%s%s-progressive.png\n", dir, prefix,
               prefix, prefix, r.estimated ? "" : prefix,
               r.estimated ? "" : "-rate-distortion.png, ", prefix);
    free(order);
    free(rate);
    free(dist);
    free(tx);
    free(ty);
    nd_bpd_free(&r);
    nd_scope_end(scope);
done:
    cli_model_free(&m);
    cli_data_close(&d);
    return rc == ND_OK ? 0 : cli_fail("eval", &err);
}
