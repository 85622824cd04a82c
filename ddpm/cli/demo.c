/* nanodiff demo, the default: a tour of the layers (tensors, autograd, nn)
 * and DDPM on a set of 2-D points, small enough to watch. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "cli.h"

static void heading(const char *title) { printf("\n== %s\n", title); }

static void show(const char *expr, const nd_tensor *t) {
    printf("%s =\n", expr);
    nd_print(t);
}

/* A histogram of the samples next to the N(0, 1) density, as text. */
static void histogram(const nd_tensor *z) {
    enum { BINS = 24, WIDTH = 50 };
    const double lo = -4.0, hi = 4.0, w = (hi - lo) / BINS;
    int64_t count[BINS] = {0}, n = nd_numel(z);
    const float *p = nd_data(z);
    for (int64_t i = 0; i < n; i++) {
        int b = (int)floor((p[i] - lo) / w);
        if (b >= 0 && b < BINS) count[b]++;
    }
    double peak = 1.0 / sqrt(2.0 * 3.14159265358979323846); /* density at 0 */
    printf("  bin        samples  '#' = samples, '|' = N(0,1) density\n");
    for (int b = 0; b < BINS; b++) {
        double mid = lo + (b + 0.5) * w;
        double dens = peak * exp(-0.5 * mid * mid);
        int bar = (int)lround((double)count[b] / ((double)n * w) / peak * WIDTH);
        int mark = (int)lround(dens / peak * WIDTH);
        char line[WIDTH + 2];
        for (int i = 0; i <= WIDTH; i++) line[i] = i < bar ? '#' : ' ';
        if (mark <= WIDTH) line[mark] = '|';
        line[WIDTH + 1] = 0;
        printf("  %+5.2f %10lld  %s\n", mid, (long long)count[b], line);
    }
}

/* Points [n, 2] as a character plot of [-2, 2] x [-1.5, 1.5]: the more
 * points in a cell, the darker its character. */
static void scatter(const char *title, const nd_tensor *x) {
    enum { COLS = 56, ROWS = 18 };
    static const char shade[] = " .:-=+*#%@";
    int count[ROWS][COLS] = {{0}}, most = 0;
    int64_t n = x->shape[0], outside = 0;
    const float *p = nd_data(x);
    for (int64_t k = 0; k < n; k++) {
        int c = (int)floor((p[2 * k] + 2.0) / 4.0 * COLS);
        int r = (int)floor((1.5 - p[2 * k + 1]) / 3.0 * ROWS);
        if (c < 0 || c >= COLS || r < 0 || r >= ROWS) {
            outside++;
            continue;
        }
        if (++count[r][c] > most) most = count[r][c];
    }
    printf("%s (%lld points, %lld outside the frame)\n", title, (long long)n, (long long)outside);
    for (int r = 0; r < ROWS; r++) {
        char line[COLS + 1];
        for (int c = 0; c < COLS; c++) {
            int level = count[r][c] == 0 ? 0 : 1 + (int)((double)count[r][c] * 8 / (most + 1));
            line[c] = shade[level];
        }
        line[COLS] = 0;
        printf("  |%s|\n", line);
    }
}

/* The share of a's points with a point of b within r. */
static double share_near(const nd_tensor *a, const nd_tensor *b, double r) {
    const float *pa = nd_data(a), *pb = nd_data(b);
    int64_t near = 0;
    for (int64_t i = 0; i < a->shape[0]; i++)
        for (int64_t j = 0; j < b->shape[0]; j++)
            if (hypot(pa[2 * i] - pb[2 * j], pa[2 * i + 1] - pb[2 * j + 1]) < r) {
                near++;
                break;
            }
    return (double)near / (double)a->shape[0];
}

/* dir/name in buf */
static const char *in_dir(char *buf, size_t size, const char *dir, const char *name) {
    snprintf(buf, size, "%s/%s", dir, name);
    return buf;
}

/* Algorithm 1 for `steps` steps on batches from next(), with a line every
 * tenth of the way and the loss of each step kept for its picture. */
typedef nd_tensor *(*batch_fn)(void *ctx);
static void train_loop(nd_trainer *tr, uint64_t steps, batch_fn next, void *ctx,
                       cli_loss_log *log) {
    double avg = 0, t0 = cli_now();
    uint64_t every = steps >= 10 ? steps / 10 : 1, since = 0;
    for (uint64_t k = 1; k <= steps; k++) {
        nd_scope *step = nd_scope_begin();
        nd_train_stats st = nd_train_step(tr, next(ctx));
        nd_scope_end(step);
        cli_loss_push(log, (double)k, st.loss);
        avg += st.loss;
        since++;
        if (k % every == 0 || k == steps) {
            printf("  step %6llu: L_simple %.4f (mean of the last %llu), gradient norm %.3f, "
                   "%.0f steps/s\n",
                   (unsigned long long)k, avg / (double)since, (unsigned long long)since,
                   st.grad_norm, (double)k / (cli_now() - t0));
            fflush(stdout);
            avg = 0;
            since = 0;
        }
    }
}

typedef struct toy_batches {
    nd_rng rng;
    int64_t n, size;
} toy_batches;
static nd_tensor *next_moons(void *ctx) {
    toy_batches *b = ctx;
    return nd_toy_two_moons(b->n, 0.05f, &b->rng);
}
static nd_tensor *next_shapes(void *ctx) {
    toy_batches *b = ctx;
    return nd_toy_shapes(b->n, b->size, &b->rng, NULL);
}

/* DDPM end to end on points: T = 100 steps (the paper's betas scaled by
 * 1000 / T, so that x_T is as close to N(0, I)), the MLP denoiser,
 * Algorithm 1 for `steps` steps, Algorithm 2 from the EMA weights. */
static int moons_tour(uint64_t seed, uint64_t steps, int64_t points, const char *out,
                      nd_error *err) {
    nd_scope *scope = nd_scope_begin();
    char path[4096];
    int rc = ND_OK;
    nd_schedule s;
    if (nd_schedule_linear(&s, 100, 1e-3, 0.2, err) != ND_OK) nd_fatal("demo", "%s", err->message);

    heading("ddpm: the forward process q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)");
    toy_batches data = {nd_rng_init(seed, 10), 256, 0};
    nd_tensor *x0 = nd_toy_two_moons(2000, 0.05f, &data.rng);
    nd_rng noise = nd_rng_init(seed, 11);
    nd_tensor *eps = nd_randn(&noise, ND_SHAPE(2000, 2));
    const int64_t show_at[3] = {0, 15, 99};
    for (int k = 0; k < 3; k++) {
        char title[96], name[64];
        int64_t i = show_at[k];
        snprintf(title, sizeof title, "x_t at t = %lld, abar_t = %.4f", (long long)(i + 1),
                 s.alphas_cumprod[i]);
        nd_tensor *xt = nd_q_sample(&s, x0, nd_full(ND_SHAPE(2000), (float)i), eps);
        scatter(title, xt);
        snprintf(name, sizeof name, "moons_forward_t%03lld.png", (long long)(i + 1));
        if (rc == ND_OK)
            rc = nd_png_scatter(in_dir(path, sizeof path, out, name), x0, xt, 400, -2.5, 2.5, err);
    }

    heading("ddpm: Algorithm 1 trains an MLP to predict the noise (L_simple)");
    nd_mlp_config mc = nd_mlp_defaults(2);
    nd_rng gm = nd_rng_init(seed, 12);
    nd_mlp *mlp = nd_mlp_new(&mc, &gm);
    nd_train_config tc = nd_train_defaults();
    tc.optim.lr = 2e-3;
    tc.optim.warmup_steps = 100;
    tc.ema_decay = 0.995;
    nd_trainer *tr = nd_trainer_new(&s, nd_mlp_denoiser(mlp), tc, seed);
    printf("MLP: %lld parameters; Adam, lr 2e-3 after 100 warmup steps; batches of 256\n",
           (long long)nd_num_parameters(nd_mlp_module(mlp)));
    cli_loss_log log = {0};
    train_loop(tr, steps, next_moons, &data, &log);
    if (rc == ND_OK) rc = cli_loss_png(in_dir(path, sizeof path, out, "moons_loss.png"), &log, err);

    char title[96];
    snprintf(title, sizeof title,
             "ddpm: Algorithm 2 draws %lld points from the EMA weights, x_T -> x_0",
             (long long)points);
    heading(title);
    nd_sample_config sc = nd_sample_defaults();
    sc.clip = false; /* points, not pixels in [-1, 1] */
    sc.seed = seed;
    sc.ema = tr->ema;
    cli_chain chain = {0};
    sc.callback = cli_chain_see;
    sc.callback_ctx = &chain;
    sc.every = 25;
    nd_tensor *x = nd_p_sample_loop(&s, nd_mlp_denoiser(mlp), ND_SHAPE(points, 2), &sc);
    scatter("samples x_0", x);
    scatter("the data, for comparison", x0);
    printf("%.1f%% of the samples lie within 0.1 of a data point (2 standard deviations "
           "of the data's noise)\n",
           100.0 * share_near(x, x0, 0.1));
    if (rc == ND_OK)
        rc = nd_png_scatter(in_dir(path, sizeof path, out, "moons_samples.png"), x0, x, 400, -2.5,
                            2.5, err);
    for (int k = 0; rc == ND_OK && k < chain.n; k++) {
        char name[64];
        snprintf(name, sizeof name, "moons_chain_t%03lld.png", (long long)chain.t[k]);
        rc = nd_png_scatter(in_dir(path, sizeof path, out, name), x0, chain.xt[k], 400, -2.5, 2.5,
                            err);
    }
    if (rc == ND_OK) rc = nd_npy_save(in_dir(path, sizeof path, out, "moons_samples.npy"), x, err);
    cli_chain_free(&chain);
    cli_loss_free(&log);
    nd_trainer_free(tr);
    nd_module_free(nd_mlp_module(mlp));
    nd_schedule_free(&s);
    nd_scope_end(scope);
    return rc;
}

/* DDPM on pictures: the forward process on 32x32 shapes, then a small UNet
 * trained on 16x16 ones (small enough for a few minutes of a laptop) with
 * the paper's schedule, and Algorithm 2 drawing a grid of new shapes, the
 * chain x_T -> x_0 and the x_0 each step predicts. */
static int shapes_tour(uint64_t seed, uint64_t steps, const char *out, nd_error *err) {
    nd_scope *scope = nd_scope_begin();
    char path[4096];
    nd_schedule s;
    if (nd_schedule_linear(&s, 1000, 1e-4, 0.02, err) != ND_OK)
        nd_fatal("demo", "%s", err->message);

    heading("ddpm: q(x_t | x_0) on images, t = 1, 50, 100, 250, 500, 750, 1000 (the paper's "
            "schedule)");
    enum { ROWS = 6, COLS = 7 };
    const float at[COLS] = {0, 49, 99, 249, 499, 749, 999};
    nd_rng g = nd_rng_init(seed, 13);
    nd_tensor *x0 = nd_toy_shapes(ROWS, 32, &g, NULL);
    nd_tensor *eps = nd_randn(&g, ND_SHAPE(ROWS, 1, 32, 32));
    const nd_tensor *cells[ROWS * COLS];
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < COLS; c++)
            cells[r * COLS + c] =
                nd_q_sample(&s, nd_slice(x0, 0, r, r + 1, 1), nd_full(ND_SHAPE(1), at[c]),
                            nd_slice(eps, 0, r, r + 1, 1));
    int rc = cli_write_grid(in_dir(path, sizeof path, out, "shapes_forward.png"),
                            nd_concat(cells, ROWS * COLS, 0), ROWS, COLS, err);
    for (int c = 0; c < COLS; c++)
        printf("  t = %4.0f: x_t = %.3f x_0 + %.3f eps\n", at[c] + 1,
               s.sqrt_alphas_cumprod[(int)at[c]], s.sqrt_one_minus_alphas_cumprod[(int)at[c]]);

    heading("ddpm: Algorithm 1 on 16x16 shapes with a small UNet");
    nd_unet_config uc = {.in_channels = 1,
                         .out_channels = 1,
                         .resolution = 16,
                         .ch = 16,
                         .levels = 2,
                         .ch_mult = {1, 2},
                         .num_res_blocks = 1,
                         .nattn = 1,
                         .attn_resolutions = {8},
                         .dropout = 0.0f,
                         .groups = 4};
    nd_rng gu = nd_rng_init(seed, 14);
    nd_unet *u = nd_unet_new(&uc, &gu);
    nd_train_config tc = nd_train_defaults();
    tc.optim.lr = 1e-3;
    tc.optim.warmup_steps = 100;
    tc.ema_decay = 0.99;
    tc.random_flip = true;
    nd_trainer *tr = nd_trainer_new(&s, nd_unet_denoiser(u), tc, seed);
    printf("UNet: %lld parameters, %.1f M multiply-adds per image; Adam, lr 1e-3; batches of "
           "32\n",
           (long long)nd_num_parameters(nd_unet_module(u)), 1e-6 * (double)nd_unet_macs(&uc));
    toy_batches data = {nd_rng_init(seed, 15), 32, 16};
    cli_loss_log log = {0};
    train_loop(tr, steps, next_shapes, &data, &log);
    if (rc == ND_OK)
        rc = cli_loss_png(in_dir(path, sizeof path, out, "shapes_loss.png"), &log, err);

    heading("ddpm: Algorithm 2 draws 16 shapes, 1000 steps from noise");
    nd_sample_config sc = nd_sample_defaults();
    sc.seed = seed;
    sc.ema = tr->ema;
    cli_chain chain = {.rows = CLI_CHAIN_ROWS};
    sc.callback = cli_chain_see;
    sc.callback_ctx = &chain;
    sc.every = 100;
    double t0 = cli_now();
    nd_tensor *x = nd_p_sample_loop(&s, nd_unet_denoiser(u), ND_SHAPE(16, 1, 16, 16), &sc);
    printf("  %.1f s\n", cli_now() - t0);
    if (rc == ND_OK)
        rc = cli_write_grid(in_dir(path, sizeof path, out, "shapes_samples.png"), x, 0, 0, err);
    if (rc == ND_OK)
        rc = cli_chain_strip(in_dir(path, sizeof path, out, "shapes_chain.png"), &chain, x, err);
    if (rc == ND_OK) rc = nd_npy_save(in_dir(path, sizeof path, out, "shapes_samples.npy"), x, err);
    cli_chain_free(&chain);
    cli_loss_free(&log);
    nd_trainer_free(tr);
    nd_module_free(nd_unet_module(u));
    nd_schedule_free(&s);
    nd_scope_end(scope);
    return rc;
}

static int ddpm_tour(uint64_t seed, uint64_t steps, uint64_t image_steps, int64_t points,
                     const char *out) {
    nd_error err;
    if (cli_mkdir(out, &err) != ND_OK) {
        fprintf(stderr, "nanodiff demo: %s\n", err.message);
        return ND_ERR;
    }
    int rc = moons_tour(seed, steps, points, out, &err);
    if (rc == ND_OK && image_steps > 0) rc = shapes_tour(seed, image_steps, out, &err);
    if (rc != ND_OK) {
        fprintf(stderr, "nanodiff demo: %s\n", err.message);
        return ND_ERR;
    }
    printf("\nthe pictures are in %s/:\n"
           "  moons_forward_t001.png, _t016.png, _t100.png   x_t (red) over the data (gray)\n"
           "  moons_loss.png                                 the loss while training\n"
           "  moons_samples.png, moons_samples.npy           samples over the data\n"
           "  moons_chain_t100.png ... _t001.png             the reverse chain, x_T to x_1\n"
           "  shapes_forward.png                             q(x_t | x_0) on images\n",
           out);
    if (image_steps > 0)
        printf("  shapes_loss.png                                the UNet's loss\n"
               "  shapes_samples.png, shapes_samples.npy         16 samples\n"
               "  shapes_chain.png                               x_t from x_T to x_0, each with\n"
               "                                                 the x_0 predicted under it\n");
    return ND_OK;
}

static void demo(uint64_t seed, uint64_t samples) {
    nd_scope *scope = nd_scope_begin();

    heading("views share storage");
    nd_tensor *x = nd_reshape(nd_arange(0, 12, 1), ND_SHAPE(3, 4));
    show("x = arange(12).reshape(3, 4)", x);
    nd_tensor *xt = nd_transpose(x, 0, 1);
    show("x.T (a view: strides swap, nothing is copied)", xt);
    nd_tensor *col = nd_slice(x, 1, 1, 4, 2);
    show("x[:, 1:4:2]", col);
    nd_fill_(col, -1.0f);
    show("x after x[:, 1:4:2] = -1 (written through the view)", x);

    heading("broadcasting");
    nd_tensor *c = nd_reshape(nd_arange(0, 3, 1), ND_SHAPE(3, 1));
    nd_tensor *r = nd_mul_scalar(nd_arange(0, 4, 1), 10.0f);
    show("[3,1] + [4]", nd_add(c, r));

    heading("reductions and softmax");
    nd_tensor *y = nd_reshape(nd_arange(0, 12, 1), ND_SHAPE(3, 4));
    show("sum over axis 0", nd_sum(y, ND_AXES(0), false));
    show("mean over axis 1, keepdim", nd_mean(y, ND_AXES(1), true));
    show("var (unbiased) of all", nd_var(y, NULL, 0, 1, false));
    show("softmax over axis 1", nd_softmax(y, 1));

    heading("matmul");
    show("x.T @ x", nd_matmul(xt, x));

    heading("random numbers (Philox-4x32-10)");
    nd_rng g = nd_rng_init(seed, 0);
    nd_tensor *z = nd_randn(&g, ND_SHAPE((int64_t)samples));
    double mean = nd_item(nd_mean(z, NULL, 0, false));
    double var = nd_item(nd_var(z, NULL, 0, 1, false));
    printf("%" PRIu64 " normals, seed %" PRIu64 ": mean %+.5f (expect 0 +- %.5f), "
           "variance %.5f (expect 1 +- %.5f)\n",
           samples, seed, mean, 1.0 / sqrt((double)samples), var, sqrt(2.0 / (double)samples));
    printf("element 7 alone: %.7f, in the bulk draw: %.7f\n", (double)nd_randn_at(seed, 0, 7),
           (double)nd_data(z)[samples > 7 ? 7 : 0]);
    histogram(z);

    heading("autograd: the tape and one backward pass");
    nd_rng gw = nd_rng_init(seed, 1);
    nd_tensor *w = nd_requires_grad(nd_randn(&gw, ND_SHAPE(4, 2)), true);
    nd_tensor *in = nd_div_scalar(nd_reshape(nd_arange(0, 12, 1), ND_SHAPE(3, 4)), 10.0f);
    nd_tensor *loss = nd_mean(nd_square(nd_tanh(nd_matmul(in, w))), NULL, 0, false);
    printf("loss = mean(tanh(x w)^2) = %.6f, with x [3,4] and w [4,2] a leaf\n",
           (double)nd_item(loss));
    nd_tape_print(stdout);
    nd_backward(loss);
    show("d loss / d w (walking the tape from the bottom up)", w->grad);

    heading("nn: a DDPM residual block and a few AdamW steps");
    nd_rng gm = nd_rng_init(seed, 2);
    nd_resblock_layer *block = nd_resblock_new(4, 8, 16, 2, 0.0f, &gm);
    nd_module_print(stdout, &block->base);
    nd_optimizer *opt = nd_optimizer_new(&block->base, nd_optim_defaults(ND_ADAMW));
    nd_tensor *img = nd_randn(&gm, ND_SHAPE(2, 4, 8, 8));
    nd_tensor *temb = nd_timestep_embedding(nd_arange(10, 12, 1), 16);
    nd_tensor *goal = nd_zeros(ND_SHAPE(2, 8, 8, 8));
    printf("fit the block's output to zeros, x [2,4,8,8], temb [2,16]:\n");
    for (int step = 1; step <= 5; step++) {
        nd_scope *s = nd_scope_begin();
        nd_tensor *out = nd_resblock_forward(block, img, temb, NULL);
        nd_tensor *l = nd_mean(nd_square(nd_sub(out, goal)), NULL, 0, false);
        nd_backward(l);
        double norm = nd_clip_grad_norm(&block->base, 1.0);
        nd_optimizer_step(opt);
        nd_optimizer_zero_grad(opt);
        printf("  step %d: loss %.6f, gradient norm %.4f\n", step, (double)nd_item(l), norm);
        nd_scope_end(s);
    }
    nd_optimizer_free(opt);
    nd_module_free(&block->base);

    heading("memory");
    printf("live %zu bytes, peak %zu bytes; ending the scope frees them all\n", nd_mem_live(),
           nd_mem_peak());
    nd_scope_end(scope);
    printf("live %zu bytes\n", nd_mem_live());
}

static const cli_command_help help = {
    "nanodiff [demo] [options]",
    "A tour of the tensor, autograd and nn layers: views, broadcasting, reductions, matmul, "
    "counter-based random numbers, a backward pass over the tape, and a DDPM residual block "
    "trained for a few AdamW steps; then DDPM on two moons (the forward process, Algorithm 1 "
    "on a small MLP, Algorithm 2 drawing points from it) and on pictures of shapes (the "
    "forward process, a small UNet, a grid of samples and the reverse chain). The pictures "
    "go to --out."};

int cli_demo(int argc, char **argv) {
    int64_t seed = 0, samples = 100000, steps = 1500, image_steps = 1500, points = 2000;
    const char *out = "nanodiff-demo";
    cli_option o[] = {
        CLI_OPT_INT("--seed", &seed, 0, (double)INT64_MAX, "N", "seed of the random numbers"),
        CLI_OPT_INT("--samples", &samples, 1, 100000000, "N",
                    "normal samples drawn for the histogram"),
        CLI_OPT_INT("--steps", &steps, 1, 1000000, "N", "training steps of the two-moons model"),
        CLI_OPT_INT("--image-steps", &image_steps, 0, 1000000, "N",
                    "training steps of the shapes UNet (0: skip it)"),
        CLI_OPT_INT("--points", &points, 1, 100000, "N", "points the two-moons model draws"),
        CLI_OPT_TEXT("--out", &out, NULL, "DIR", "folder for the pictures, made if missing"),
    };
    nd_error err;
    const char *pos[1];
    int npos;
    int pr = cli_parse(argc, argv, o, (int)(sizeof o / sizeof o[0]), &help, pos, 0, &npos, &err);
    if (pr == 1) return 0;
    if (pr != ND_OK) {
        fprintf(stderr, "nanodiff demo: %s\n(see nanodiff demo --help)\n", err.message);
        return CLI_EXIT_USAGE;
    }
    printf("nanodiff demo: the tensor, autograd, nn and ddpm layers (kernels: %s, "
           "threads: %d)\n",
           nd_kernels_name(), nd_get_num_threads());
    demo((uint64_t)seed, (uint64_t)samples);
    return ddpm_tour((uint64_t)seed, (uint64_t)steps, (uint64_t)image_steps, points, out) == ND_OK
               ? 0
               : 1;
}
