/* nanodiff forward: the forward process q(x_t | x_0) = N(sqrt(abar_t) x_0,
 * (1 - abar_t) I) (Eq. 4) on a few examples of any data set. */
#include <string.h>

#include "cli.h"

static const cli_command_help help = {
    "nanodiff forward [--data SET] [options]",
    "Shows how the forward process destroys data: for images, a strip with one row per "
    "image and one column per step t, x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps with "
    "the same eps along a row; for 2-D points, one scatter of x_t over the data per step. "
    "The schedule is the paper's unless given. SET as for nanodiff train."};

int cli_forward(int argc, char **argv) {
    const char *data = "shapes", *data_dir = "", *at = "1,50,100,250,500,750,1000",
               *out = "forward", *schedule = "linear";
    int64_t n = 6, seed = 0, T = 1000;
    double beta_start = 1e-4, beta_end = 0.02;
    cli_option o[] = {
        CLI_OPT_TEXT("--data", &data, NULL, "SET", "the data"),
        CLI_OPT_TEXT("--data-dir", &data_dir, NULL, "DIR", "its folder, where needed"),
        CLI_OPT_INT("--n", &n, 1, 64, "N", "images shown (points: 2000 drawn)"),
        CLI_OPT_TEXT("--t", &at, NULL, "LIST", "the steps t shown, 1..T"),
        CLI_OPT_TEXT("--schedule", &schedule, "linear|cosine", "NAME", "the betas"),
        CLI_OPT_INT("--timesteps", &T, 2, 100000, "T", "diffusion steps"),
        CLI_OPT_REAL("--beta-start", &beta_start, 1e-9, 0.5, "B", "linear: beta_1"),
        CLI_OPT_REAL("--beta-end", &beta_end, 1e-9, 0.999, "B", "linear: beta_T"),
        CLI_OPT_INT("--seed", &seed, 0, (double)INT64_MAX, "N", "which examples and noise"),
        CLI_OPT_TEXT("--out", &out, NULL, "PATH", "images: PATH.png; points: PATH-tNNNN.png"),
    };
    const int no = (int)(sizeof o / sizeof o[0]);
    nd_error err;
    const char *pos[1];
    int npos;
    int64_t steps[32];
    int nsteps = 0;
    int pr = cli_parse(argc, argv, o, no, &help, pos, 0, &npos, &err);
    if (pr == 1) return 0;
    if (pr == ND_OK) pr = cli_int_list("--t", at, 1, T, steps, 32, &nsteps, &err);
    if (pr != ND_OK) {
        fprintf(stderr, "nanodiff forward: %s\n(see nanodiff forward --help)\n", err.message);
        return CLI_EXIT_USAGE;
    }
    nd_schedule s;
    int rc = !strcmp(schedule, "cosine") ? nd_schedule_cosine(&s, T, 0.008, 0.999, &err)
                                         : nd_schedule_linear(&s, T, beta_start, beta_end, &err);
    if (rc != ND_OK) return cli_fail("forward", &err);
    cli_data d;
    if (cli_data_open(data, data_dir, false, &d, &err) != ND_OK) {
        nd_schedule_free(&s);
        return cli_fail("forward", &err);
    }
    nd_scope *scope = nd_scope_begin();
    int64_t count = d.points ? 2000 : n;
    nd_tensor *x0 = cli_data_batch(&d, (uint64_t)seed, 0, count, NULL);
    nd_rng g = nd_rng_init((uint64_t)seed, 2);
    nd_tensor *eps = nd_randn(&g, x0->shape, x0->ndim);
    char path[1100];
    printf("q(x_t | x_0) on %s; t, abar_t, sqrt(abar_t) (signal), sqrt(1 - abar_t) (noise):\n",
           d.name);
    for (int k = 0; k < nsteps; k++) {
        int64_t i = steps[k] - 1;
        printf("  t = %5lld  abar %.6f  signal %.4f  noise %.4f\n", (long long)steps[k],
               s.alphas_cumprod[i], s.sqrt_alphas_cumprod[i], s.sqrt_one_minus_alphas_cumprod[i]);
    }
    if (d.points) {
        for (int k = 0; rc == ND_OK && k < nsteps; k++) {
            nd_tensor *xt =
                nd_q_sample(&s, x0, nd_full(ND_SHAPE(count), (float)(steps[k] - 1)), eps);
            snprintf(path, sizeof path, "%s-t%04lld.png", out, (long long)steps[k]);
            rc = cli_write_samples_png(path, xt, &d, (uint64_t)seed, &err);
            if (rc == ND_OK) printf("%s\n", path);
        }
    } else {
        const nd_tensor **cells = nd_alloc(sizeof *cells * (size_t)(n * nsteps));
        for (int64_t r = 0; r < n; r++)
            for (int k = 0; k < nsteps; k++)
                cells[r * nsteps + k] = nd_q_sample(&s, nd_slice(x0, 0, r, r + 1, 1),
                                                    nd_full(ND_SHAPE(1), (float)(steps[k] - 1)),
                                                    nd_slice(eps, 0, r, r + 1, 1));
        snprintf(path, sizeof path, "%s.png", out);
        rc = cli_write_grid(path, nd_concat(cells, (int)(n * nsteps), 0), (int)n, nsteps, &err);
        nd_dealloc(cells, sizeof *cells * (size_t)(n * nsteps));
        if (rc == ND_OK)
            printf("%s: %lld rows (images) x %d columns (t as listed)\n", path, (long long)n,
                   nsteps);
    }
    nd_scope_end(scope);
    cli_data_close(&d);
    nd_schedule_free(&s);
    return rc == ND_OK ? 0 : cli_fail("forward", &err);
}
