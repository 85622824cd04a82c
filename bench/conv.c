/* conv2d forward and both backward passes in GFLOP/s and % of the FMA
 * peak: batch 16, 64 -> 64 channels, 16x16 images, 3x3, padding 1, the
 * shape of a DDPM UNet block on small images. */
#include <stdio.h>

#include "common.h"
#include "tensor/tensor.h"

static const char help[] =
    "Times nd_conv2d, nd_conv2d_backward_input and nd_conv2d_backward_weight\n"
    "(batch 16, 64 -> 64 channels, 16x16, 3x3, pad 1) with 1 thread and with\n"
    "nd_get_num_threads(); each pass does 2 N O OH OW C KH KW flops. It\n"
    "measures in 5 rounds, each timing every pass at both thread counts, keeps\n"
    "the best of all rounds, and prints the speed-up of the three passes\n"
    "together.";

typedef struct {
    nd_tensor *x, *w, *dy, *out;
    nd_conv2d_opts o;
    int pass;
} conv_job;

static void run(void *ctx) {
    conv_job *j = ctx;
    if (j->pass == 0) j->out = nd_conv2d(j->x, j->w, NULL, j->o);
    else if (j->pass == 1) j->out = nd_conv2d_backward_input(j->dy, j->w, j->x->shape, j->o);
    else j->out = nd_conv2d_backward_weight(j->dy, j->x, j->w->shape, j->o);
}

static void cleanup(void *ctx) {
    conv_job *j = ctx;
    nd_free(j->out);
    j->out = NULL;
}

int main(int argc, char **argv) {
    bool quick = bench_parse_args(argc, argv, "conv", help);
    int64_t n = quick ? 2 : 16, c = quick ? 8 : 64, hw = quick ? 8 : 16;
    int nthreads = nd_get_num_threads();
    char env[512];
    printf("# conv: nd_conv2d 3x3 pad 1, batch %lld, %lld -> %lld channels, %lldx%lld; "
           "GFLOP/s = 2 N O OH OW C 9 / time, best of 5 rounds of the runs made in 0.2 s "
           "| %s\n",
           (long long)n, (long long)c, (long long)c, (long long)hw, (long long)hw,
           bench_environment(env, sizeof env, nd_kernels_name()));
    nd_rng g = nd_rng_init(3, 0);
    conv_job j = {.x = nd_randn(&g, ND_SHAPE(n, c, hw, hw)),
                  .w = nd_randn(&g, ND_SHAPE(c, c, 3, 3)),
                  .dy = nd_randn(&g, ND_SHAPE(n, c, hw, hw)),
                  .o = {1, 1, 1, 1, 1, 1}};
    double flops = 2.0 * (double)(n * c * hw * hw * c * 9);
    const char *names[3] = {"forward", "backward_input", "backward_weight"};
    int counts[2] = {1, nthreads}, ncounts = nthreads > 1 ? 2 : 1, rounds = quick ? 1 : 5;
    double peak[2], best[2][3];
    for (int k = 0; k < ncounts; k++) {
        peak[k] = bench_fma_peak(counts[k], quick);
        for (int pass = 0; pass < 3; pass++) best[k][pass] = 1e300;
    }
    /* In rounds, each timing every pass at both thread counts, keeping the
     * best of all rounds, so that the speed-up compares figures taken
     * moments apart. */
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < ncounts; k++) {
            nd_set_num_threads(counts[k]);
            for (int pass = 0; pass < 3; pass++) {
                j.pass = pass;
                double t = bench_best(run, cleanup, &j, !quick && r == 0, quick ? 1 : 1000,
                                      quick ? 0 : 0.2);
                best[k][pass] = t < best[k][pass] ? t : best[k][pass];
            }
        }
    bench_peak_recheck(peak, counts, ncounts, quick);
    double total[2] = {0, 0};
    for (int k = 0; k < ncounts; k++) {
        for (int pass = 0; pass < 3; pass++) {
            total[k] += best[k][pass];
            bench_figure(flops / best[k][pass] * 1e-9, "GFLOP/s", "conv_%s_t%d", names[pass],
                         counts[k]);
        }
        bench_figure(3 * flops / total[k] * 1e-9, "GFLOP/s", "conv_all_t%d", counts[k]);
        bench_figure(100 * 3 * flops / total[k] * 1e-9 / peak[k], "%", "conv_all_t%d_peak",
                     counts[k]);
    }
    if (ncounts > 1) bench_figure(total[0] / total[1], "x", "conv_all_speedup_t%d", nthreads);
    nd_free(j.x);
    nd_free(j.w);
    nd_free(j.dy);
    return 0;
}
