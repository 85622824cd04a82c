/* Shared pieces of the benchmark programs: timing, argument parsing, the
 * output format, and the two figures of the machine itself that every other
 * figure is compared with (the single-precision FMA peak and memcpy
 * bandwidth).
 *
 * Every figure is one line "name value unit"; lines starting with '#'
 * describe what was measured. */
#ifndef NANODIFF_BENCH_COMMON_H
#define NANODIFF_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Seconds on CLOCK_MONOTONIC. */
double bench_now(void);
/* Keeps `threads` threads busy for about `seconds`. */
void bench_busy(int threads, double seconds);

/* Online CPUs (at least 1). */
int bench_online_cpus(void);
/* The CPU's model name as /proc/cpuinfo gives it, or "unknown". */
void bench_cpu_model(char *buf, size_t size);

/* Parses the command line shared by all benches: --quick (small sizes, one
 * repetition) and --help (prints help, the text given, and exits 0). An
 * unknown argument prints the usage on stderr and exits 2. */
bool bench_parse_args(int argc, char **argv, const char *program,
                      const char *help);

/* One figure: "name value unit". */
void bench_print(const char *name, double value, const char *unit);
/* The same with the name made by printf from name_fmt and what follows. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
void bench_figure(double value, const char *unit, const char *name_fmt, ...);

/* What the FMA peak loop runs on this CPU: "avx2+fma", "neon" or
 * "scalar". */
const char *bench_fma_isa(void);

/* "one run, no warm-up" or "a warm-up, then the best of ..." into buf. */
void bench_timing_text(char *buf, size_t size, bool quick, double budget, int reps);

/* Writes into buf the part of the header common to all benches: the
 * library's kernel set (kernels, or NULL for a program that does not use
 * the library) and whether ND_KERNELS chose it, ND_THREADS if set, the
 * CPU's FMA instructions, whether this program was compiled with
 * optimisation, and the load average (other processes lower every
 * figure). Returns buf. */
const char *bench_environment(char *buf, size_t size, const char *kernels);

/* Best-of-repetitions timing of fn(ctx). One untimed warm-up call when
 * warmup is set, then timed calls until max_reps have run or budget seconds
 * have passed since the start (at least one timed call always runs).
 * cleanup(ctx), if not NULL, runs after each call outside the timing.
 * Returns the shortest time in seconds. */
double bench_best(void (*fn)(void *ctx), void (*cleanup)(void *ctx), void *ctx,
                  bool warmup, int max_reps, double budget);

/* The machine's single-precision FMA throughput in GFLOP/s (one FMA = 2
 * flops) with `threads` POSIX threads each running independent FMA chains:
 * the best of BENCH_PEAK_REPS runs of about BENCH_PEAK_SECONDS each (one
 * short run when quick). Many short runs rather than a few long ones, so
 * that other processes on the machine lower the figure less: a peak that
 * comes out low would make every "% of peak" look better than it is. */
#define BENCH_PEAK_REPS 20
#define BENCH_PEAK_SECONDS 0.02
double bench_fma_peak(int threads, bool quick);

/* The peak again after a bench's work, for each of ncounts thread counts
 * (counts[k] threads; peak[k] holds the reading from before): the higher
 * reading is kept, since a peak measured while another process held a
 * core would flatter every "% of peak". Prints the "# fma peak" line
 * with both. */
void bench_peak_recheck(double *peak, const int *counts, int ncounts, bool quick);

/* memcpy bandwidth in GB/s (1e9 bytes/s, counting bytes read plus bytes
 * written) for a buffer of `bytes`, split over `threads` POSIX threads:
 * the best of `reps` copies between buffers that were touched before. */
double bench_memcpy(size_t bytes, int threads, int reps);

/* Like bench_memcpy with one thread, but every copy goes to a freshly
 * allocated destination, so the first-touch page faults are included:
 * what a library op pays when it allocates its output. */
double bench_memcpy_fresh(size_t bytes, int reps);

#endif
