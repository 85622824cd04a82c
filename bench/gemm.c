/* nd_matmul throughput on square matrices and on the GEMMs a 3x3
 * convolution becomes (im2col: weights [C_out, 9 C_in] times columns
 * [9 C_in, batch H W]), with 1 thread and with the library's default
 * thread count, as GFLOP/s and as % of the FMA peak measured at the same
 * thread count. Built with -Dopenblas=enabled, it also times cblas_sgemm on
 * the same operands. */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "tensor/tensor.h"

#if defined(ND_BENCH_CBLAS)
#include <cblas.h>
#endif

static const char help[] =
    "Times nd_matmul (C = A B, A [M,K], B [K,N], float32, contiguous) on\n"
    "square sizes 256, 512, 1024 and on the GEMMs of a 3x3 convolution,\n"
    "batch 16, 16x16 images, C -> C channels for C = 64 and 128:\n"
    "M = C, N = 16*16*16 = 4096, K = 9 C. With 1 thread and with\n"
    "nd_get_num_threads() threads (ND_THREADS or the online CPUs), it prints\n"
    "GFLOP/s (2 M N K / time, best of 5 rounds of runs after a warm-up; each\n"
    "round times every shape at both thread counts), the %\n"
    "of the FMA peak measured at that thread count, and the speed-up of the\n"
    "threaded run. Built with -Dopenblas=enabled it also times cblas_sgemm.";

typedef struct {
    char label[32];
    int64_t m, n, k;
    bool conv;
} gemm_shape;

static double flops(const gemm_shape *s) {
    return 2.0 * (double)s->m * (double)s->n * (double)s->k;
}

typedef struct {
    nd_tensor *a, *b, *c;
    int64_t m, n, k;
} gemm_job;

static void run_matmul(void *ctx) {
    gemm_job *j = ctx;
    j->c = nd_matmul(j->a, j->b);
}

static void free_result(void *ctx) {
    gemm_job *j = ctx;
    nd_free(j->c);
    j->c = NULL;
}

#if defined(ND_BENCH_CBLAS)
static void run_sgemm(void *ctx) {
    gemm_job *j = ctx;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)j->m, (int)j->n,
                (int)j->k, 1.0f, nd_data(j->a), (int)j->k, nd_data(j->b), (int)j->n,
                0.0f, nd_data(j->c), (int)j->n);
}
#endif

int main(int argc, char **argv) {
    bool quick = bench_parse_args(argc, argv, "gemm", help);
    int rounds = quick ? 1 : 5, reps = quick ? 1 : 20;
    double budget = quick ? 0 : 0.2; /* per round */
    int nthreads = nd_get_num_threads();

    /* Square sizes, then the convolutions: batch B, H x W images, C -> C. */
    const int64_t squares_full[] = {256, 512, 1024}, squares_quick[] = {32, 64};
    const int64_t chans_full[] = {64, 128}, chans_quick[] = {8, 16};
    const int64_t *squares = quick ? squares_quick : squares_full;
    const int64_t *chans = quick ? chans_quick : chans_full;
    int nsquares = quick ? 2 : 3, nchans = 2;
    int64_t batch = quick ? 2 : 16, hw = quick ? 4 : 16;

    gemm_shape shapes[8];
    int nshapes = 0;
    for (int i = 0; i < nsquares; i++) {
        gemm_shape *s = &shapes[nshapes++];
        snprintf(s->label, sizeof s->label, "%lld", (long long)squares[i]);
        s->m = s->n = s->k = squares[i];
        s->conv = false;
    }
    for (int i = 0; i < nchans; i++) {
        gemm_shape *s = &shapes[nshapes++];
        snprintf(s->label, sizeof s->label, "conv%lld", (long long)chans[i]);
        s->m = chans[i];
        s->n = batch * hw * hw;
        s->k = 9 * chans[i];
        s->conv = true;
    }

    /* The peak is measured before and after the GEMMs and the higher
     * figure kept: a peak measured while something else had the CPU would
     * flatter every percentage. */
    double peak[2];
    peak[0] = bench_fma_peak(1, quick);
    peak[1] = nthreads > 1 ? bench_fma_peak(nthreads, quick) : peak[0];

    int counts[2] = {1, nthreads};
    int ncounts = nthreads > 1 ? 2 : 1;
    nd_rng g = nd_rng_init(1, 0);
    gemm_job jobs[8];
    double rate[8][2] = {{0}};
    for (int i = 0; i < nshapes; i++) {
        const gemm_shape *s = &shapes[i];
        jobs[i] = (gemm_job){.a = nd_randn(&g, ND_SHAPE(s->m, s->k)),
                             .b = nd_randn(&g, ND_SHAPE(s->k, s->n)),
                             .m = s->m, .n = s->n, .k = s->k};
    }
#if defined(ND_BENCH_CBLAS)
    double blas_rate[8][2] = {{0}};
#if defined(ND_BENCH_OPENBLAS_THREADS)
    const char *blas = "openblas";
    int blas_counts = ncounts;
#else
    const char *blas = "cblas";
    int blas_counts = 1;
#endif
#endif
    /* In rounds, each timing every shape at every thread count (and the
     * BLAS on the same operands right after), keeping the best of all
     * rounds: the speed-ups and the ratios to the BLAS compare figures
     * taken moments apart, so a slow spell on a shared machine cannot make
     * one of them. */
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < nshapes; i++)
            for (int c = 0; c < ncounts; c++) {
                nd_set_num_threads(counts[c]);
                double t = bench_best(run_matmul, free_result, &jobs[i], !quick && r == 0,
                                      reps, budget);
                double v = flops(&shapes[i]) / t * 1e-9;
                rate[i][c] = v > rate[i][c] ? v : rate[i][c];
#if defined(ND_BENCH_CBLAS)
                if (c >= blas_counts) continue;
                jobs[i].c = nd_empty(ND_SHAPE(shapes[i].m, shapes[i].n));
#if defined(ND_BENCH_OPENBLAS_THREADS)
                openblas_set_num_threads(counts[c]);
#endif
                t = bench_best(run_sgemm, NULL, &jobs[i], !quick && r == 0, reps, budget);
                v = flops(&shapes[i]) / t * 1e-9;
                blas_rate[i][c] = v > blas_rate[i][c] ? v : blas_rate[i][c];
                nd_free(jobs[i].c);
                jobs[i].c = NULL;
                /* OpenBLAS's idle threads spin for a while after a call
                 * and would slow down whatever runs next: wait that out
                 * with the cores kept busy, so that none of them comes
                 * back from idle slow for the next figure */
                bench_busy(nthreads, 0.2);
#endif
            }
    nd_set_num_threads(nthreads);
    for (int i = 0; i < nshapes; i++) {
        nd_free(jobs[i].a);
        nd_free(jobs[i].b);
    }
    double again = bench_fma_peak(1, quick);
    peak[0] = again > peak[0] ? again : peak[0];
    if (nthreads > 1) {
        again = bench_fma_peak(nthreads, quick);
        peak[1] = again > peak[1] ? again : peak[1];
    }

    char env[512], timing[96];
    bench_timing_text(timing, sizeof timing, quick, budget, reps);
    if (!quick) {
        size_t used = strlen(timing);
        snprintf(timing + used, sizeof timing - used, ", in each of %d rounds", rounds);
    }
    printf("# gemm: nd_matmul C[M,N] = A[M,K] B[K,N], float32, GFLOP/s = 2MNK/time, "
           "%s, and %% of the FMA peak at the same thread count | %s | threads: 1 and %d "
           "(nd_get_num_threads)\n",
           timing, bench_environment(env, sizeof env, nd_kernels_name()), nthreads);
    printf("# fma peak (%s, higher of before and after): t1 %.1f GFLOP/s, t%d %.1f "
           "GFLOP/s\n", bench_fma_isa(), peak[0], nthreads, peak[1]);
    for (int i = 0; i < nshapes; i++)
        if (shapes[i].conv)
            printf("# %s: 3x3 convolution as one GEMM, batch %lld, %lld -> %lld "
                   "channels, %lldx%lld images: M = %lld, N = %lld, K = %lld\n",
                   shapes[i].label, (long long)batch, (long long)shapes[i].m,
                   (long long)shapes[i].m, (long long)hw, (long long)hw,
                   (long long)shapes[i].m, (long long)shapes[i].n, (long long)shapes[i].k);
#if defined(ND_BENCH_CBLAS)
#if defined(ND_BENCH_OPENBLAS_THREADS)
    /* The core OpenBLAS picked: on a CPU newer than the library it may
     * fall back to an older core's kernels (OPENBLAS_CORETYPE overrides) */
    printf("# openblas: cblas_sgemm on the same operands, openblas_set_num_threads "
           "to the same counts, core %s (OPENBLAS_CORETYPE picks another)\n",
           openblas_get_corename());
#else
    printf("# cblas: cblas_sgemm on the same operands, one figure with the BLAS's "
           "own threading\n");
#endif
#endif

    for (int i = 0; i < nshapes; i++) {
        const char *label = shapes[i].label;
        for (int c = 0; c < ncounts; c++) {
            bench_figure(rate[i][c], "GFLOP/s", "gemm_%s_t%d", label, counts[c]);
            bench_figure(100.0 * rate[i][c] / peak[c], "%", "gemm_%s_t%d_peak", label,
                         counts[c]);
        }
        if (ncounts > 1)
            bench_figure(rate[i][1] / rate[i][0], "x", "gemm_%s_speedup_t%d", label,
                         nthreads);
    }
#if defined(ND_BENCH_CBLAS)
    for (int i = 0; i < nshapes; i++) {
        const char *label = shapes[i].label;
        for (int c = 0; c < blas_counts; c++) {
            bench_figure(blas_rate[i][c], "GFLOP/s", "%s_%s_t%d", blas, label, counts[c]);
            bench_figure(100.0 * blas_rate[i][c] / peak[c], "%", "%s_%s_t%d_peak", blas,
                         label, counts[c]);
            bench_figure(100.0 * rate[i][c] / blas_rate[i][c], "%", "gemm_%s_t%d_of_%s",
                         label, counts[c], blas);
        }
    }
#endif
    return 0;
}
