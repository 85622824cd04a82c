/* The machine's own limits, so that the other benches' figures can be read
 * as fractions of something: single-precision FMA throughput on 1 and on
 * all online CPUs, and memcpy bandwidth. Uses no part of the library. */
#include <stdio.h>

#include "common.h"

static const char help[] =
    "Measures this machine's single-precision FMA peak: independent chains\n"
    "x = x * a + b, 12 of them per thread (8-wide AVX2+FMA on x86-64 when the\n"
    "CPU has it, 4-wide NEON on aarch64, plain C otherwise), in GFLOP/s with\n"
    "1 thread and with one POSIX thread per online CPU; and memcpy bandwidth\n"
    "for a 256 MiB buffer in GB/s, counting bytes read plus bytes written,\n"
    "with 1 thread and with all of them.";

int main(int argc, char **argv) {
    bool quick = bench_parse_args(argc, argv, "peak", help);
    int ncpu = bench_online_cpus();
    int reps = quick ? 1 : 5;
    size_t bytes = quick ? (size_t)16 << 20 : (size_t)256 << 20;
    char env[512];

    printf("# peak: single-precision FMA chains (%s, 12 independent accumulators "
           "per thread), best of %d runs of %.0f ms; memcpy of %zu MiB, read+write "
           "bytes, best of %d | threads: 1 and %d (online CPUs) | %s\n",
           bench_fma_isa(), quick ? 1 : BENCH_PEAK_REPS,
           1000 * (quick ? 0.005 : BENCH_PEAK_SECONDS), bytes >> 20, reps, ncpu,
           bench_environment(env, sizeof env, NULL));

    bench_print("fma_peak_t1", bench_fma_peak(1, quick), "GFLOP/s");
    for (int t = 2; t <= ncpu; t *= 2) {
        bench_figure(bench_fma_peak(t, quick), "GFLOP/s", "fma_peak_t%d", t);
    }
    if (ncpu > 1 && (ncpu & (ncpu - 1)) != 0) {
        bench_figure(bench_fma_peak(ncpu, quick), "GFLOP/s", "fma_peak_t%d", ncpu);
    }
    bench_print("memcpy", bench_memcpy(bytes, 1, reps), "GB/s");
    if (ncpu > 1) {
        bench_figure(bench_memcpy(bytes, ncpu, reps), "GB/s", "memcpy_t%d", ncpu);
    }
    return 0;
}
