/* nanodiff interpolate: section 4.3 and Figure 8 of the paper. Two test
 * images are encoded by q to the same step t with the same noise, their
 * latents mixed, and the mixture decoded by the reverse process: small t
 * mixes the pixels, large t the content. */
#include <math.h>
#include <string.h>

#include "cli.h"

static const cli_command_help help = {
    "nanodiff interpolate RUN [options]",
    "Interpolates between two images of the data set as the paper's Figure 8 does: both "
    "are diffused to step t with the same noise, x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) "
    "eps, mixed as (1 - lambda) x_t + lambda x'_t (spherically at t = T, where the latents "
    "are Gaussian noise), and each mixture is taken back to x_0 by Algorithm 2 from step t, "
    "with the same noise for every lambda. Writes PREFIX.png: one row per t, the first "
    "image, lambda = 0 ... 1, the second image."};

/* (1 - l) a + l b, or spherical: sin((1 - l) w) / sin w a + sin(l w) / sin w b with w
 * the angle between a and b, which keeps the norm of Gaussian noise. */
static nd_tensor *mix(const nd_tensor *a, const nd_tensor *b, double l, bool spherical) {
    if (!spherical) return nd_add(nd_mul_scalar(a, (float)(1 - l)), nd_mul_scalar(b, (float)l));
    double ab = nd_item(nd_sum(nd_mul(a, b), NULL, 0, false));
    double aa = nd_item(nd_sum(nd_square(a), NULL, 0, false));
    double bb = nd_item(nd_sum(nd_square(b), NULL, 0, false));
    double w = acos(fmax(-1.0, fmin(1.0, ab / sqrt(aa * bb))));
    if (w < 1e-6) return mix(a, b, l, false);
    return nd_add(nd_mul_scalar(a, (float)(sin((1 - l) * w) / sin(w))),
                  nd_mul_scalar(b, (float)(sin(l * w) / sin(w))));
}

int cli_interpolate(int argc, char **argv) {
    int64_t first = 0, second = 1, nmix = 9, seed = 0, threads = nd_get_num_threads();
    const char *at = "", *data = "", *data_dir = "", *split = "test", *weights = "ema", *out = "",
               *prefix = "interpolate";
    cli_option o[] = {
        CLI_OPT_TEXT("--data", &data, NULL, "SET", "the images (default: the run's data set)"),
        CLI_OPT_TEXT("--data-dir", &data_dir, NULL, "DIR", "their folder, where needed"),
        CLI_OPT_TEXT("--split", &split, "test|train", "test|train", "which part of the set"),
        CLI_OPT_INT("--first", &first, 0, 1e12, "I", "the first image's index"),
        CLI_OPT_INT("--second", &second, 0, 1e12, "J", "the second image's index"),
        CLI_OPT_TEXT("--t", &at, NULL, "LIST",
                     "the steps t, one row each (default T/4, T/2, 3T/4, T)"),
        CLI_OPT_INT("--mix", &nmix, 2, 64, "N", "values of lambda from 0 to 1"),
        CLI_OPT_INT("--seed", &seed, 0, (double)INT64_MAX, "N", "the noise"),
        CLI_OPTS_RUN_OUTPUT(&weights, &out, &prefix),
        CLI_OPT_INT("--threads", &threads, 1, 1024, "N", "threads"),
    };
    const int no = (int)(sizeof o / sizeof o[0]);
    nd_error err;
    const char *run;
    int pr = cli_parse_run(argc, argv, o, no, &help, &run, prefix, &err);
    if (pr == 1) return 0;
    if (pr != ND_OK) return cli_usage_error("interpolate", &err);
    nd_set_num_threads((int)threads);
    char ckpt[1100], dir[1100];
    cli_spec s;
    if (cli_open_run(run, out, "; interpolation is shown on images", ckpt, dir, sizeof ckpt, &s,
                     &err) != ND_OK)
        return cli_fail("interpolate", &err);
    int64_t steps[16];
    int nsteps = 4;
    for (int k = 0; k < 4; k++) steps[k] = s.T * (k + 1) / 4 > 0 ? s.T * (k + 1) / 4 : 1;
    if (at[0] && cli_int_list("--t", at, 1, s.T, steps, 16, &nsteps, &err) != ND_OK) {
        fprintf(stderr, "nanodiff interpolate: %s\n", err.message);
        return CLI_EXIT_USAGE;
    }
    cli_data d;
    cli_model m;
    int64_t trained = 0;
    if (cli_open_run_data(ckpt, &s, data, data_dir, !strcmp(split, "test"), !strcmp(weights, "ema"),
                          &d, &m, &trained, &err) != ND_OK)
        return cli_fail("interpolate", &err);
    int rc = ND_OK;
    int64_t avail = d.generated ? INT64_MAX : d.table->shape[0];
    if (first >= avail || second >= avail)
        rc = nd_error_set(&err, "--first %lld, --second %lld: the %s split of %s has %lld images",
                          (long long)first, (long long)second, split, d.name, (long long)avail);
    if (rc == ND_OK) rc = cli_mkdir(dir, &err);
    if (rc != ND_OK) goto done;

    nd_scope *scope = nd_scope_begin();
    nd_tensor *pair = NULL, *a, *b;
    if (d.generated) {
        pair = cli_data_batch(&d, (uint64_t)seed, 0, (first > second ? first : second) + 1, NULL);
        a = nd_slice(pair, 0, first, first + 1, 1);
        b = nd_slice(pair, 0, second, second + 1, 1);
    } else {
        a = nd_slice(d.table, 0, first, first + 1, 1);
        b = nd_slice(d.table, 0, second, second + 1, 1);
    }
    nd_rng g = nd_rng_init((uint64_t)seed, 3);
    nd_tensor *eps = nd_randn(&g, a->shape, a->ndim); /* the same noise for both */
    int64_t cols = nmix + 2, total = 0, done_steps = 0;
    for (int k = 0; k < nsteps; k++) total += steps[k];
    const nd_tensor **cells = nd_alloc(sizeof *cells * (size_t)(nsteps * cols));
    cli_progress p;
    printf("interpolating image %lld and image %lld of %s (%s) at t = ", (long long)first,
           (long long)second, d.name, split);
    for (int k = 0; k < nsteps; k++) printf("%s%lld", k ? ", " : "", (long long)steps[k]);
    printf(": %lld network passes of %lld images\n", (long long)total, (long long)nmix);
    fflush(stdout);
    cli_progress_begin(&p, stderr, 0, total);
    nd_module_train(m.module, false);
    nd_no_grad_begin();
    for (int k = 0; k < nsteps; k++) {
        int64_t i = steps[k] - 1;
        nd_tensor *t1 = nd_full(ND_SHAPE(1), (float)i);
        nd_tensor *xa = nd_q_sample(&m.schedule, a, t1, eps),
                  *xb = nd_q_sample(&m.schedule, b, t1, eps);
        const nd_tensor *mixed[64];
        for (int64_t c = 0; c < nmix; c++)
            mixed[c] = mix(xa, xb, (double)c / (double)(nmix - 1), steps[k] == s.T);
        nd_tensor *x = nd_keep(nd_concat(mixed, (int)nmix, 0));
        /* Algorithm 2 from step t, each lambda with the same noise z */
        nd_rng gz = nd_rng_init((uint64_t)seed, 4);
        nd_tensor *t = nd_full(ND_SHAPE(nmix), 0.0f);
        for (int64_t j = i; j >= 0; j--) {
            nd_scope *step = nd_scope_begin();
            nd_fill_(t, (float)j);
            nd_tensor *z = NULL;
            if (j > 0) {
                nd_tensor *z1 = nd_randn(&gz, a->shape, a->ndim);
                const nd_tensor *zs[64];
                for (int64_t c = 0; c < nmix; c++) zs[c] = z1;
                z = nd_concat(zs, (int)nmix, 0);
            }
            nd_tensor *next =
                nd_keep(nd_p_sample(&m.schedule, m.denoiser, x, t, z, ND_FIXED_LARGE, true, NULL));
            nd_scope_end(step);
            nd_free(x);
            x = next;
            cli_progress_step(&p, ++done_steps, NAN);
        }
        cells[k * cols] = a;
        for (int64_t c = 0; c < nmix; c++) cells[k * cols + 1 + c] = nd_slice(x, 0, c, c + 1, 1);
        cells[k * cols + cols - 1] = b;
    }
    nd_no_grad_end();
    cli_progress_end(&p);
    char name[300], path[1200];
    snprintf(name, sizeof name, "%s.png", prefix);
    rc = cli_path(path, sizeof path, dir, name, &err);
    if (rc == ND_OK)
        rc = cli_write_grid(path, nd_concat(cells, (int)(nsteps * cols), 0), nsteps, (int)cols,
                            &err);
    if (rc == ND_OK)
        printf("%s: %d rows (t as listed), %lld columns (the first image, lambda = 0 ... 1, the "
               "second)\n",
               path, nsteps, (long long)cols);
    nd_dealloc(cells, sizeof *cells * (size_t)(nsteps * cols));
    nd_scope_end(scope);
done:
    cli_model_free(&m);
    cli_data_close(&d);
    return rc == ND_OK ? 0 : cli_fail("interpolate", &err);
}
