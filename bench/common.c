/* Timing, output and the machine's reference figures for the benches. */
#include "common.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int bench_online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

bool bench_parse_args(int argc, char **argv, const char *program,
                      const char *help) {
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s [--quick] [--help]\n\n%s\n"
                   "Output: one line per figure, \"name value unit\"; lines "
                   "starting with '#'\nsay what was measured, the kernel set "
                   "and the thread counts.\n\n"
                   "  --quick  small sizes and one repetition: checks that the "
                   "program runs;\n           the figures mean little\n"
                   "  --help   this text\n",
                   program, help);
            exit(0);
        } else {
            fprintf(stderr, "%s: unknown argument '%s'\nusage: %s [--quick] [--help]\n",
                    program, argv[i], program);
            exit(2);
        }
    }
    return quick;
}

void bench_print(const char *name, double value, const char *unit) {
    int digits = value >= 100 ? 1 : value >= 10 ? 2 : 3;
    printf("%s %.*f %s\n", name, digits, value, unit);
    fflush(stdout);
}

void bench_figure(double value, const char *unit, const char *name_fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, name_fmt);
    vsnprintf(name, sizeof name, name_fmt, ap);
    va_end(ap);
    bench_print(name, value, unit);
}

/* ---- FMA chains --------------------------------------------------------- */

/* Each kernel runs `iters` steps of ACC independent chains x = x * a + b.
 * An FMA has a latency of about 4 cycles and most cores issue two per
 * cycle, so at least 8 chains are needed to keep both pipes busy; 12 leave
 * a margin and still fit the 16 AVX2 registers with a and b. The chains
 * converge to b / (1 - a) and never reach denormals or infinities. The
 * result is returned so that no work can be discarded. */
#define ACC 12
#define CHAIN_A 0.9999990f
#define CHAIN_B 1e-6f

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static float fma_avx2(uint64_t iters,
                                                          float seed) {
    const __m256 a = _mm256_set1_ps(CHAIN_A), b = _mm256_set1_ps(CHAIN_B);
    __m256 x0 = _mm256_set1_ps(seed + 0.01f), x1 = _mm256_set1_ps(seed + 0.02f);
    __m256 x2 = _mm256_set1_ps(seed + 0.03f), x3 = _mm256_set1_ps(seed + 0.04f);
    __m256 x4 = _mm256_set1_ps(seed + 0.05f), x5 = _mm256_set1_ps(seed + 0.06f);
    __m256 x6 = _mm256_set1_ps(seed + 0.07f), x7 = _mm256_set1_ps(seed + 0.08f);
    __m256 x8 = _mm256_set1_ps(seed + 0.09f), x9 = _mm256_set1_ps(seed + 0.10f);
    __m256 x10 = _mm256_set1_ps(seed + 0.11f), x11 = _mm256_set1_ps(seed + 0.12f);
    for (uint64_t i = 0; i < iters; i++) {
        x0 = _mm256_fmadd_ps(x0, a, b);
        x1 = _mm256_fmadd_ps(x1, a, b);
        x2 = _mm256_fmadd_ps(x2, a, b);
        x3 = _mm256_fmadd_ps(x3, a, b);
        x4 = _mm256_fmadd_ps(x4, a, b);
        x5 = _mm256_fmadd_ps(x5, a, b);
        x6 = _mm256_fmadd_ps(x6, a, b);
        x7 = _mm256_fmadd_ps(x7, a, b);
        x8 = _mm256_fmadd_ps(x8, a, b);
        x9 = _mm256_fmadd_ps(x9, a, b);
        x10 = _mm256_fmadd_ps(x10, a, b);
        x11 = _mm256_fmadd_ps(x11, a, b);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3)),
                             _mm256_add_ps(_mm256_add_ps(x4, x5), _mm256_add_ps(x6, x7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(x8, x9), _mm256_add_ps(x10, x11)));
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] +
           lanes[6] + lanes[7];
}
#endif

#if defined(__aarch64__)
static float fma_neon(uint64_t iters, float seed) {
    const float32x4_t a = vdupq_n_f32(CHAIN_A), b = vdupq_n_f32(CHAIN_B);
    float32x4_t x0 = vdupq_n_f32(seed + 0.01f), x1 = vdupq_n_f32(seed + 0.02f);
    float32x4_t x2 = vdupq_n_f32(seed + 0.03f), x3 = vdupq_n_f32(seed + 0.04f);
    float32x4_t x4 = vdupq_n_f32(seed + 0.05f), x5 = vdupq_n_f32(seed + 0.06f);
    float32x4_t x6 = vdupq_n_f32(seed + 0.07f), x7 = vdupq_n_f32(seed + 0.08f);
    float32x4_t x8 = vdupq_n_f32(seed + 0.09f), x9 = vdupq_n_f32(seed + 0.10f);
    float32x4_t x10 = vdupq_n_f32(seed + 0.11f), x11 = vdupq_n_f32(seed + 0.12f);
    /* vfmaq_f32(b, x, a) = b + x * a */
    for (uint64_t i = 0; i < iters; i++) {
        x0 = vfmaq_f32(b, x0, a);
        x1 = vfmaq_f32(b, x1, a);
        x2 = vfmaq_f32(b, x2, a);
        x3 = vfmaq_f32(b, x3, a);
        x4 = vfmaq_f32(b, x4, a);
        x5 = vfmaq_f32(b, x5, a);
        x6 = vfmaq_f32(b, x6, a);
        x7 = vfmaq_f32(b, x7, a);
        x8 = vfmaq_f32(b, x8, a);
        x9 = vfmaq_f32(b, x9, a);
        x10 = vfmaq_f32(b, x10, a);
        x11 = vfmaq_f32(b, x11, a);
    }
    float32x4_t s = vaddq_f32(vaddq_f32(vaddq_f32(x0, x1), vaddq_f32(x2, x3)),
                              vaddq_f32(vaddq_f32(x4, x5), vaddq_f32(x6, x7)));
    s = vaddq_f32(s, vaddq_f32(vaddq_f32(x8, x9), vaddq_f32(x10, x11)));
    return vaddvq_f32(s);
}
#endif

/* Plain C: a multiply and an add per step (the compiler may or may not
 * fuse or vectorise them), counted as 2 flops. */
static float fma_scalar(uint64_t iters, float seed) {
    float x[ACC];
    for (int j = 0; j < ACC; j++) x[j] = seed + 0.01f * (float)(j + 1);
    for (uint64_t i = 0; i < iters; i++)
        for (int j = 0; j < ACC; j++) x[j] = x[j] * CHAIN_A + CHAIN_B;
    float s = 0;
    for (int j = 0; j < ACC; j++) s += x[j];
    return s;
}

enum { ISA_SCALAR, ISA_AVX2, ISA_NEON };

static int fma_isa(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return ISA_AVX2;
    return ISA_SCALAR;
#elif defined(__aarch64__)
    return ISA_NEON;
#else
    return ISA_SCALAR;
#endif
}

const char *bench_fma_isa(void) {
    switch (fma_isa()) {
    case ISA_AVX2: return "avx2+fma";
    case ISA_NEON: return "neon";
    default: return "scalar";
    }
}

/* Flops of one step of the chain loop. */
static double flops_per_iter(void) {
    switch (fma_isa()) {
    case ISA_AVX2: return 2.0 * 8 * ACC;
    case ISA_NEON: return 2.0 * 4 * ACC;
    default: return 2.0 * ACC;
    }
}

static float run_chains(uint64_t iters, float seed) {
    switch (fma_isa()) {
#if defined(__x86_64__)
    case ISA_AVX2: return fma_avx2(iters, seed);
#endif
#if defined(__aarch64__)
    case ISA_NEON: return fma_neon(iters, seed);
#endif
    default: return fma_scalar(iters, seed);
    }
}

const char *bench_environment(char *buf, size_t size, const char *kernels) {
    const char *kern = getenv("ND_KERNELS");
    const char *thr = getenv("ND_THREADS");
#if defined(__OPTIMIZE__)
    const char *opt = "optimised";
#else
    const char *opt = "NOT optimised, figures are meaningless";
#endif
    char load[32] = "";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        char first[16];
        if (fscanf(f, "%15s", first) == 1)
            snprintf(load, sizeof load, " | load average %s", first);
        fclose(f);
    }
    char what[96];
    if (!kernels)
        snprintf(what, sizeof what, "none (the library is not used)");
    else if (kern && *kern)
        snprintf(what, sizeof what, "%s (ND_KERNELS=%.32s)", kernels, kern);
    else
        snprintf(what, sizeof what, "%s (the CPU's best, ND_KERNELS unset)", kernels);
    /* glibc's malloc tunables change what a fresh output costs. */
    const char *tun = getenv("GLIBC_TUNABLES");
    snprintf(buf, size, "kernels: %s | cpu fma: %s%s%s%s%.96s | bench build: %s%s", what,
             bench_fma_isa(), thr && *thr ? " | ND_THREADS=" : "", thr && *thr ? thr : "",
             tun && *tun ? " | GLIBC_TUNABLES=" : "", tun && *tun ? tun : "", opt, load);
    return buf;
}

/* ---- timing --------------------------------------------------------------- */

double bench_best(void (*fn)(void *ctx), void (*cleanup)(void *ctx), void *ctx,
                  bool warmup, int max_reps, double budget) {
    double start = bench_now();
    if (warmup) {
        fn(ctx);
        if (cleanup) cleanup(ctx);
    }
    double best = 1e300;
    for (int r = 0; r < (max_reps < 1 ? 1 : max_reps); r++) {
        if (r > 0 && bench_now() - start > budget) break;
        double t0 = bench_now();
        fn(ctx);
        double t = bench_now() - t0;
        if (cleanup) cleanup(ctx);
        if (t < best) best = t;
    }
    return best;
}

/* Runs work(arg, i) on threads i = 0..n-1 that all start at once; returns
 * the wall time from the start signal until the last one has finished. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int ready, go;
    void (*work)(void *arg, int index);
    void *arg;
} gate;

typedef struct {
    gate *g;
    int index;
} worker_arg;

static void *gate_worker(void *p) {
    worker_arg *w = p;
    gate *g = w->g;
    pthread_mutex_lock(&g->lock);
    g->ready++;
    pthread_cond_broadcast(&g->cond);
    while (!g->go) pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    g->work(g->arg, w->index);
    return NULL;
}

static double run_threads(int n, void (*work)(void *arg, int index), void *arg) {
    gate g = {.ready = 0, .go = 0, .work = work, .arg = arg};
    pthread_mutex_init(&g.lock, NULL);
    pthread_cond_init(&g.cond, NULL);
    pthread_t *tid = malloc((size_t)n * sizeof *tid);
    worker_arg *wa = malloc((size_t)n * sizeof *wa);
    if (!tid || !wa) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    int started = 0;
    for (int i = 0; i < n; i++) {
        wa[i] = (worker_arg){.g = &g, .index = i};
        if (pthread_create(&tid[i], NULL, gate_worker, &wa[i]) != 0) {
            fprintf(stderr, "bench: cannot start thread %d of %d\n", i + 1, n);
            exit(1);
        }
        started++;
    }
    pthread_mutex_lock(&g.lock);
    while (g.ready < started) pthread_cond_wait(&g.cond, &g.lock);
    double t0 = bench_now();
    g.go = 1;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
    double t = bench_now() - t0;
    free(tid);
    free(wa);
    pthread_mutex_destroy(&g.lock);
    pthread_cond_destroy(&g.cond);
    return t;
}

static void busy_work(void *arg, int index) {
    (void)index;
    double end = bench_now() + *(const double *)arg;
    while (bench_now() < end) {
    }
}

void bench_busy(int threads, double seconds) {
    run_threads(threads < 1 ? 1 : threads, busy_work, &seconds);
}

/* ---- FMA peak ------------------------------------------------------------ */

static volatile float sink;

typedef struct {
    uint64_t iters;
    float result[1024];
} chains_job;

static void chains_work(void *arg, int index) {
    chains_job *j = arg;
    j->result[index % 1024] = run_chains(j->iters, (float)index);
}

double bench_fma_peak(int threads, bool quick) {
    int reps = quick ? 1 : BENCH_PEAK_REPS;
    double seconds = quick ? 0.005 : BENCH_PEAK_SECONDS;
    if (threads < 1) threads = 1;
    /* Calibrate on one thread (this also wakes the core up to speed). */
    uint64_t iters = 1u << 16;
    double t;
    for (;;) {
        double t0 = bench_now();
        sink = run_chains(iters, 1.0f);
        t = bench_now() - t0;
        if (t > 0.02 || iters > (UINT64_C(1) << 40)) break;
        iters *= 4;
    }
    double want = (double)iters * seconds / t;
    iters = want < 1 ? 1 : (uint64_t)want;

    static chains_job job;
    job.iters = iters;
    double best = 1e300;
    for (int r = 0; r < (reps < 1 ? 1 : reps); r++) {
        double tr = run_threads(threads, chains_work, &job);
        if (tr < best) best = tr;
    }
    for (int i = 0; i < threads && i < 1024; i++) sink += job.result[i];
    return (double)threads * (double)iters * flops_per_iter() / best * 1e-9;
}

/* ---- memcpy ---------------------------------------------------------------- */

static void *touched(size_t bytes, int value) {
    void *p = malloc(bytes);
    if (!p) {
        fprintf(stderr, "bench: cannot allocate %zu bytes\n", bytes);
        exit(1);
    }
    memset(p, value, bytes);
    return p;
}

typedef struct {
    char *dst;
    const char *src;
    size_t bytes;
    int threads;
} copy_job;

static void copy_work(void *arg, int index) {
    copy_job *j = arg;
    size_t per = j->bytes / (size_t)j->threads;
    size_t begin = per * (size_t)index;
    size_t n = index == j->threads - 1 ? j->bytes - begin : per;
    memcpy(j->dst + begin, j->src + begin, n);
}

double bench_memcpy(size_t bytes, int threads, int reps) {
    if (threads < 1) threads = 1;
    copy_job j = {.dst = touched(bytes, 0), .src = touched(bytes, 1), .bytes = bytes,
                  .threads = threads};
    double best = 1e300;
    for (int r = 0; r < (reps < 1 ? 1 : reps); r++) {
        double t = run_threads(threads, copy_work, &j);
        sink += (float)j.dst[bytes / 2];
        if (t < best) best = t;
    }
    free(j.dst);
    free((void *)j.src);
    return 2.0 * (double)bytes / best * 1e-9;
}

double bench_memcpy_fresh(size_t bytes, int reps) {
    char *src = touched(bytes, 1);
    double best = 1e300;
    for (int r = 0; r < (reps < 1 ? 1 : reps); r++) {
        double t0 = bench_now();
        char *dst = malloc(bytes);
        if (!dst) {
            fprintf(stderr, "bench: cannot allocate %zu bytes\n", bytes);
            exit(1);
        }
        memcpy(dst, src, bytes);
        double t = bench_now() - t0;
        sink += (float)dst[bytes / 2];
        free(dst);
        if (t < best) best = t;
    }
    free(src);
    return 2.0 * (double)bytes / best * 1e-9;
}

void bench_timing_text(char *buf, size_t size, bool quick, double budget, int reps) {
    if (quick)
        snprintf(buf, size, "one run, no warm-up");
    else
        snprintf(buf, size, "a warm-up, then the best of the runs made in %.0f s (at most %d)",
                 budget, reps);
}

void bench_peak_recheck(double *peak, const int *counts, int ncounts, bool quick) {
    for (int k = 0; k < ncounts; k++) {
        double again = bench_fma_peak(counts[k], quick);
        peak[k] = again > peak[k] ? again : peak[k];
    }
    printf("# fma peak (%s, higher of before and after):", bench_fma_isa());
    for (int k = 0; k < ncounts; k++)
        printf("%s t%d %.1f GFLOP/s", k ? "," : "", counts[k], peak[k]);
    printf("\n");
}

void bench_cpu_model(char *buf, size_t size) {
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *v = strchr(line, ':');
        if (!v) continue;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = '\0';
        snprintf(buf, size, "%s", v);
        break;
    }
    fclose(f);
}
