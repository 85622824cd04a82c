/* nanodiff field: the score a model of 2-D points has learned, as arrows
 * over the plane. Section 3.2 reads eps_theta as a scaled score:
 * grad log q(x_t) ~ -eps_theta(x_t, t) / sqrt(1 - abar_t), and Algorithm
 * 2 as Langevin dynamics that follow it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_command_help help = {
    "nanodiff field RUN [options]",
    "Draws the score the model of 2-D points in RUN has learned, -eps_theta(x, t) / "
    "sqrt(1 - abar_t), as arrows on a grid over the data, one picture PREFIX-tNNNN.png per "
    "step t: far from the data (large t) the arrows point inwards to a blurred blob; near "
    "t = 1 they point at the nearest part of the data. Arrows are scaled in each picture "
    "so that the 90th percentile of their lengths is 90% of the grid spacing (longer ones "
    "are capped at twice that); the scale is printed."};

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int cli_field(int argc, char **argv) {
    int64_t grid = 25, seed = 0;
    const char *at = "", *weights = "ema", *out = "", *prefix = "field";
    cli_option o[] = {
        CLI_OPT_TEXT("--t", &at, NULL, "LIST", "the steps t shown (default: 1, T/20, T/4, T)"),
        CLI_OPT_INT("--grid", &grid, 4, 200, "N", "arrows per side"),
        CLI_OPTS_RUN_OUTPUT(&weights, &out, &prefix),
        CLI_OPT_INT("--seed", &seed, 0, (double)INT64_MAX, "N", "the data drawn under the arrows"),
    };
    const int no = (int)(sizeof o / sizeof o[0]);
    nd_error err;
    const char *run;
    int pr = cli_parse_run(argc, argv, o, no, &help, &run, prefix, &err);
    if (pr == 1) return 0;
    if (pr != ND_OK) return cli_usage_error("field", &err);
    char ckpt[1100], dir[1100];
    cli_spec s;
    if (cli_open_run(run, out, NULL, ckpt, dir, sizeof ckpt, &s, &err) != ND_OK)
        return cli_fail("field", &err);
    if (strcmp(s.model, "mlp") || s.mlp.dim != 2) {
        nd_error_set(&err, "%s is not a model of 2-D points: a score field is drawn on the plane",
                     ckpt);
        return cli_fail("field", &err);
    }
    int64_t steps[32];
    int nsteps = 4;
    steps[0] = 1, steps[1] = s.T / 20 > 1 ? s.T / 20 : 2, steps[2] = s.T / 4, steps[3] = s.T;
    if (at[0] && cli_int_list("--t", at, 1, s.T, steps, 32, &nsteps, &err) != ND_OK) {
        fprintf(stderr, "nanodiff field: %s\n", err.message);
        return CLI_EXIT_USAGE;
    }
    cli_model m;
    if (cli_model_load(ckpt, &s, !strcmp(weights, "ema"), &m, NULL, &err) != ND_OK)
        return cli_fail("field", &err);
    int rc = ND_OK;
    cli_data d = {0};
    if (rc == ND_OK) rc = cli_data_open(s.data, s.data_dir, false, &d, &err);
    if (rc == ND_OK) rc = cli_mkdir(dir, &err);
    if (rc != ND_OK) goto done;

    nd_scope *scope = nd_scope_begin();
    nd_tensor *under = d.generated ? cli_data_batch(&d, (uint64_t)seed, -1, 2000, NULL) : d.table;
    double extent = 0.5; /* as the samples' pictures frame the data */
    for (int64_t i = 0; i < nd_numel(under); i++)
        extent = fmax(extent, fmin(fabs((double)nd_data(under)[i]), 1e6));
    extent = 0.5 * ceil(2.5 * extent);
    int64_t M = grid * grid;
    nd_tensor *x = nd_empty(ND_SHAPE(M, 2));
    double spacing = 2.0 * extent / (double)grid;
    for (int64_t r = 0; r < grid; r++)
        for (int64_t c = 0; c < grid; c++) {
            nd_data(x)[2 * (r * grid + c)] = (float)(-extent + (c + 0.5) * spacing);
            nd_data(x)[2 * (r * grid + c) + 1] = (float)(-extent + (r + 0.5) * spacing);
        }
    double *len = malloc(sizeof(double) * (size_t)M);
    if (!len) nd_fatal("field", "out of memory");
    nd_module_train(m.module, false);
    nd_no_grad_begin();
    for (int k = 0; rc == ND_OK && k < nsteps; k++) {
        nd_scope *step = nd_scope_begin();
        int64_t i = steps[k] - 1;
        nd_tensor *t = nd_full(ND_SHAPE(M), (float)i);
        /* section 3.2: the score of q(x_t) is -eps / sqrt(1 - abar_t) */
        nd_tensor *score =
            nd_mul_scalar(nd_denoise(m.denoiser, x, t, NULL),
                          (float)(-1.0 / m.schedule.sqrt_one_minus_alphas_cumprod[i]));
        const float *v = nd_data(score);
        for (int64_t j = 0; j < M; j++) len[j] = hypot(v[2 * j], v[2 * j + 1]);
        qsort(len, (size_t)M, sizeof *len, cmp_double);
        double p90 = len[(M * 9) / 10], gain = p90 > 0 ? 0.9 * spacing / p90 : 1.0;
        nd_tensor *arrows = nd_mul_scalar(score, (float)gain);
        float *a = nd_data(arrows);
        for (int64_t j = 0; j < M; j++) { /* cap at twice the 90th percentile */
            double l = hypot(a[2 * j], a[2 * j + 1]), cap = 1.8 * spacing;
            if (l > cap) a[2 * j] *= (float)(cap / l), a[2 * j + 1] *= (float)(cap / l);
        }
        char name[300], path[1200];
        snprintf(name, sizeof name, "%s-t%04lld.png", prefix, (long long)steps[k]);
        rc = cli_path(path, sizeof path, dir, name, &err);
        if (rc == ND_OK) rc = nd_png_quiver(path, under, x, arrows, 560, -extent, extent, &err);
        if (rc == ND_OK)
            printf("%s: t = %lld, median |score| %.3g, 90th percentile %.3g; arrows x %.3g\n", path,
                   (long long)steps[k], len[M / 2], p90, gain);
        nd_scope_end(step);
    }
    nd_no_grad_end();
    free(len);
    nd_scope_end(scope);
done:
    cli_data_close(&d);
    cli_model_free(&m);
    return rc == ND_OK ? 0 : cli_fail("field", &err);
}
