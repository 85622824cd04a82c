/* nanodiff encode: DDIM with eta = 0 is a deterministic map from x_0 to
 * x_T and back (Song et al. 2021, section 5.4): each image gets one latent,
 * and decoding it gives the image again, up to the error of the ODE's
 * discretisation over S steps. */
#include <math.h>
#include <string.h>

#include "cli.h"

static const cli_command_help help = {
    "nanodiff encode RUN [options]",
    "Encodes the first --n images of the data set to x_T with DDIM at eta = 0 (x at "
    "tau_{k+1} = sqrt(abar') x0_hat + sqrt(1 - abar') eps_theta, both read at tau_k; no "
    "clipping) over S steps, decodes the latents back the same way, and reports how well "
    "the images come back: the RMSE on [-1, 1] and on 0..255, and the largest error, for "
    "each S of --steps. Writes PREFIX.csv (S, rmse, rmse_255, max_abs, seconds) and "
    "PREFIX.png: the images, then for each S a row of latents and a row of "
    "reconstructions."};

typedef struct encode_watch {
    cli_progress *p;
    int64_t done;
} encode_watch;
static void see(void *ctx, int64_t i, const nd_tensor *x, const nd_tensor *x0) {
    (void)i, (void)x, (void)x0;
    encode_watch *w = ctx;
    cli_progress_step(w->p, ++w->done, NAN);
}

typedef struct encode_row {
    int64_t S;
    double rmse, max_abs, secs;
} encode_row;
static int write_csv(int fd, void *ctx) {
    const encode_row *r = ctx;
    char line[256];
    int n = snprintf(line, sizeof line, "S,rmse,rmse_255,max_abs,seconds\n");
    int rc = nd_write_all(fd, line, (size_t)n);
    for (; rc == 0 && r->S; r++) {
        n = snprintf(line, sizeof line, "%lld,%.9g,%.9g,%.9g,%.3f\n", (long long)r->S, r->rmse,
                     127.5 * r->rmse, r->max_abs, r->secs);
        rc = nd_write_all(fd, line, (size_t)n);
    }
    return rc;
}

int cli_encode(int argc, char **argv) {
    int64_t n = 8, threads = nd_get_num_threads();
    const char *list = "", *data = "", *data_dir = "", *split = "test", *weights = "ema", *out = "",
               *prefix = "encode";
    cli_option o[] = {
        CLI_OPT_TEXT("--steps", &list, NULL, "LIST",
                     "the step counts S, 2..T (default 50, 100 and T, those up to T)"),
        CLI_OPT_INT("--n", &n, 1, 4096, "N", "how many images (the first N)"),
        CLI_OPT_TEXT("--data", &data, NULL, "SET", "the images (default: the run's data set)"),
        CLI_OPT_TEXT("--data-dir", &data_dir, NULL, "DIR", "their folder, where needed"),
        CLI_OPT_TEXT("--split", &split, "test|train", "test|train", "which part of the set"),
        CLI_OPTS_RUN_OUTPUT(&weights, &out, &prefix),
        CLI_OPT_INT("--threads", &threads, 1, 1024, "N", "threads"),
    };
    const int no = (int)(sizeof o / sizeof o[0]);
    nd_error err;
    const char *run;
    int pr = cli_parse_run(argc, argv, o, no, &help, &run, prefix, &err);
    if (pr == 1) return 0;
    if (pr != ND_OK) return cli_usage_error("encode", &err);
    nd_set_num_threads((int)threads);
    char ckpt[1100], dir[1100];
    cli_spec s;
    if (cli_open_run(run, out, "; encode is shown on images", ckpt, dir, sizeof ckpt, &s, &err) !=
        ND_OK)
        return cli_fail("encode", &err);
    int64_t S[16];
    int nS = 0;
    if (!list[0]) {
        const int64_t want[3] = {50, 100, s.T};
        for (int k = 0; k < 3; k++)
            if (want[k] <= s.T && (nS == 0 || want[k] > S[nS - 1])) S[nS++] = want[k];
    } else if (cli_int_list("--steps", list, 2, s.T, S, 16, &nS, &err) != ND_OK) {
        fprintf(stderr, "nanodiff encode: %s\n", err.message);
        return CLI_EXIT_USAGE;
    }
    cli_data d;
    cli_model m;
    int64_t trained = 0;
    if (cli_open_run_data(ckpt, &s, data, data_dir, !strcmp(split, "test"), !strcmp(weights, "ema"),
                          &d, &m, &trained, &err) != ND_OK)
        return cli_fail("encode", &err);
    int rc = cli_mkdir(dir, &err);
    if (rc == ND_OK) rc = cli_check_count(&d, n, split, &err);
    if (rc != ND_OK) goto done;

    nd_scope *scope = nd_scope_begin();
    nd_tensor *x0 = nd_contiguous(d.generated ? cli_data_batch(&d, 0, 0, n, NULL)
                                              : nd_slice(d.table, 0, 0, n, 1));
    int64_t total = 0;
    for (int k = 0; k < nS; k++) total += 2 * S[k] - 1; /* S - 1 down, S back */
    printf("encoding %lld images of %s (%s) to x_T and back with DDIM, eta = 0, %s weights of "
           "step %lld\n",
           (long long)n, d.name, split, weights, (long long)trained);
    fflush(stdout);
    cli_progress p;
    cli_progress_begin(&p, stderr, 0, total);
    encode_watch w = {&p, 0};
    nd_sample_config c = nd_sample_defaults();
    c.clip = false;
    c.callback = see;
    c.callback_ctx = &w;
    encode_row rows[17] = {{0}};
    const nd_tensor *cells[1 + 2 * 16];
    cells[0] = x0;
    for (int k = 0; k < nS; k++) {
        size_t bytes = sizeof(int64_t) * (size_t)S[k];
        int64_t *steps = nd_alloc(bytes);
        if ((rc = nd_timestep_subsequence(s.T, S[k], ND_SPACING_UNIFORM, steps, &err)) != ND_OK) {
            nd_dealloc(steps, bytes);
            break;
        }
        double t0 = cli_now();
        nd_tensor *xT = nd_ddim_encode(&m.schedule, m.denoiser, steps, S[k], x0, &c);
        nd_tensor *back = nd_ddim_decode(&m.schedule, m.denoiser, steps, S[k], xT, &c);
        rows[k].secs = cli_now() - t0;
        nd_dealloc(steps, bytes);
        rows[k].S = S[k];
        nd_tensor *diff = nd_sub(back, x0);
        rows[k].rmse = sqrt(nd_item(nd_mean(nd_square(diff), NULL, 0, false)));
        rows[k].max_abs = nd_item(nd_max(nd_abs(diff), NULL, 0, false));
        /* latents are N(0, I): shown over [-3, 3] */
        cells[1 + 2 * k] = nd_mul_scalar(xT, 1.0f / 3.0f);
        cells[2 + 2 * k] = back;
        cli_progress_note(&p, ""); /* the result on stdout, not over the progress line */
        printf("S = %4lld: RMSE %.5f (%.3f of 255), largest error %.4f, %.1f s\n", (long long)S[k],
               rows[k].rmse, 127.5 * rows[k].rmse, rows[k].max_abs, rows[k].secs);
        fflush(stdout);
    }
    cli_progress_end(&p);
    char path[1200], name[300];
    snprintf(name, sizeof name, "%s.csv", prefix);
    if (rc == ND_OK && (rc = cli_path(path, sizeof path, dir, name, &err)) == ND_OK)
        rc = nd_write_file_atomic(path, write_csv, rows, &err);
    snprintf(name, sizeof name, "%s.png", prefix);
    if (rc == ND_OK && (rc = cli_path(path, sizeof path, dir, name, &err)) == ND_OK) {
        nd_tensor *grid = nd_clamp(nd_concat(cells, 1 + 2 * nS, 0), -1.0f, 1.0f);
        rc = cli_write_grid(path, grid, 1 + 2 * nS, (int)n, &err);
    }
    if (rc == ND_OK) printf("In %s/: %s.csv, %s.png\n", dir, prefix, prefix);
    nd_scope_end(scope);
done:
    cli_data_close(&d);
    cli_model_free(&m);
    return rc == ND_OK ? 0 : cli_fail("encode", &err);
}
