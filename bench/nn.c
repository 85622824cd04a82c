/* Speed of the nn layers a DDPM UNet spends its time in, forward and
 * forward + backward: GroupNorm (memory-bound: GB/s against memcpy), the
 * attention block and the residual block (GFLOP/s of their matrix work
 * against the FMA peak), with 1 thread and with the default count. */
#include <stdio.h>

#include "common.h"
#include "nn/nn.h"

static const char help[] =
    "Times, on UNet-sized activations (batch 16, 128 channels):\n"
    "  group_norm   GroupNorm(32 groups) of [16, 128, 32, 32]: forward (reads\n"
    "               x, writes y: 8 bytes per element) and forward+backward\n"
    "               (adds reading x and dy, writing dx: 20 bytes per element\n"
    "               in all), as GB/s and % of memcpy bandwidth;\n"
    "  attention    the DDPM attention block on [16, 128, 16, 16], 1 head;\n"
    "  resblock     the DDPM residual block 128 -> 128 on [16, 128, 16, 16],\n"
    "               time embedding 512;\n"
    "both as GFLOP/s of their matrix products and convolutions (2 flops per\n"
    "multiply-add; a backward pass counts twice its forward) and % of the FMA\n"
    "peak at the same thread count. Best of several runs after a warm-up;\n"
    "each run is one scope, so its time includes freeing the activations.";

typedef enum { GN, ATTN, RES, NLAYERS } layer_kind;

typedef struct {
    layer_kind kind;
    bool backward;
    nd_tensor *x, *temb, *dy;
    nd_attention_layer *attn;
    nd_resblock_layer *res;
} job;

static void run(void *ctx) {
    job *j = ctx;
    nd_scope *s = nd_scope_begin();
    nd_tensor *y = NULL;
    switch (j->kind) {
    case GN: y = nd_group_norm(j->x, 32, j->attn->norm->weight, j->attn->norm->bias, 1e-6f);
        break;
    case ATTN: y = nd_attention_forward(j->attn, j->x); break;
    case RES: y = nd_resblock_forward(j->res, j->x, j->temb, NULL); break;
    case NLAYERS: break;
    }
    if (j->backward) nd_backward_with(y, j->dy);
    nd_scope_end(s);
}

/* Multiply-adds x 2 of one forward pass. */
static double forward_flops(layer_kind k, int64_t n, int64_t c, int64_t len, int64_t temb) {
    double conv3 = 2.0 * (double)(n * len) * (double)(c * c) * 9;
    switch (k) {
    case ATTN: /* four C x C projections, q^T k and v w^T */
        return 2.0 * (double)n * (4.0 * (double)(c * c * len) + 2.0 * (double)(c * len * len));
    case RES: return 2 * conv3 + 2.0 * (double)(n * temb * c);
    default: return 0;
    }
}

int main(int argc, char **argv) {
    bool quick = bench_parse_args(argc, argv, "nn", help);
    int reps = quick ? 1 : 10;
    double budget = quick ? 0 : 3.0;
    int nthreads = nd_get_num_threads();
    int counts[2] = {1, nthreads}, ncounts = nthreads > 1 ? 2 : 1;
    int64_t n = quick ? 2 : 16, c = quick ? 64 : 128, temb = 512;
    int64_t side[NLAYERS] = {quick ? 8 : 32, quick ? 8 : 16, quick ? 8 : 16};

    double peak[2], copy[2];
    for (int k = 0; k < ncounts; k++) {
        peak[k] = bench_fma_peak(counts[k], quick);
        copy[k] = bench_memcpy((size_t)(n * c * side[GN] * side[GN]) * sizeof(float),
                               counts[k], reps);
    }

    nd_rng g = nd_rng_init(3, 0);
    job j = {.attn = nd_attention_new(c, 1, 32, &g),
             .res = nd_resblock_new(c, c, temb, 32, 0.0f, &g)};
    j.temb = nd_persist(nd_randn(&g, ND_SHAPE(n, temb)));
    double rate[2][NLAYERS][2];
    for (int l = 0; l < NLAYERS; l++) {
        j.kind = (layer_kind)l;
        j.x = nd_persist(nd_requires_grad(nd_randn(&g, ND_SHAPE(n, c, side[l], side[l])), true));
        j.dy = nd_persist(nd_randn(&g, ND_SHAPE(n, c, side[l], side[l])));
        double elems = (double)nd_numel(j.x);
        for (int k = 0; k < ncounts; k++) {
            nd_set_num_threads(counts[k]);
            for (int b = 0; b < 2; b++) {
                j.backward = b;
                double t = bench_best(run, NULL, &j, !quick, reps, budget);
                double f = forward_flops(j.kind, n, c, side[l] * side[l], temb);
                rate[k][l][b] = l == GN ? (b ? 20.0 : 8.0) * elems / t * 1e-9
                                        : f * (b ? 3 : 1) / t * 1e-9;
            }
        }
        nd_free(j.x);
        nd_free(j.dy);
    }
    nd_set_num_threads(nthreads);

    char env[512], timing[96];
    bench_timing_text(timing, sizeof timing, quick, budget, reps);
    printf("# nn: layers on batch %lld, %lld channels; %s | %s | threads: 1 and %d\n",
           (long long)n, (long long)c, timing,
           bench_environment(env, sizeof env, nd_kernels_name()), nthreads);
    const char *names[NLAYERS] = {"group_norm", "attention", "resblock"};
    for (int k = 0; k < ncounts; k++) {
        bench_figure(copy[k], "GB/s", "memcpy_t%d", counts[k]);
        bench_figure(peak[k], "GFLOP/s", "fma_peak_t%d", counts[k]);
        for (int l = 0; l < NLAYERS; l++)
            for (int b = 0; b < 2; b++) {
                const char *pass = b ? "fwd_bwd" : "fwd";
                bool mem = l == GN;
                bench_figure(rate[k][l][b], mem ? "GB/s" : "GFLOP/s", "%s_%s_t%d",
                             names[l], pass, counts[k]);
                bench_figure(100.0 * rate[k][l][b] / (mem ? copy[k] : peak[k]), "%",
                             "%s_%s_t%d_%s", names[l], pass, counts[k],
                             mem ? "memcpy" : "peak");
            }
    }
    nd_free(j.temb);
    nd_module_free(&j.attn->base);
    nd_module_free(&j.res->base);
    return 0;
}
