/* Whole DDPM steps on the `small` UNet: Algorithm 1's training step and
 * one step of Algorithm 2's sampling chain, in ms per step, in GFLOP/s of
 * the network's multiply-adds and as % of the FMA peak, with the page
 * faults of each step; and the resident memory of a fresh process that
 * trains or samples, which the per-layer benches cannot show. */
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "autograd/internal.h" /* which inputs a record holds for their shape alone */
#include "common.h"
#include "ddpm/ddpm.h"

/* posix_spawn hands the child this process's environment, so that
 * ND_KERNELS, ND_THREADS and GLIBC_TUNABLES apply to it too. */
extern char **environ;

static const char help[] =
    "Times, on the `small` UNet (nd_unet_config_named: 1x32x32, ch 32, ch_mult\n"
    "1,2,2, 2 blocks, attention at 16, 8 groups, dropout 0.1), batches of 16\n"
    "and 64, with 1 thread and with nd_get_num_threads():\n"
    "  train   Algorithm 1, one nd_train_step (forward, backward, gradient\n"
    "          clipping, Adam, EMA) with nd_train_defaults() and a linear\n"
    "          schedule of T = 1000, on random images in [-1, 1];\n"
    "  sample  one step of Algorithm 2: nd_p_sample (fixedlarge, clipped) in\n"
    "          no-grad and eval mode, in a scope ended after each step.\n"
    "Each step's time includes ending its scope (freeing its activations).\n"
    "GFLOP/s = 2 x nd_unet_macs x batch / time, x3 for a training step (the\n"
    "forward product and the two of its backward), against the FMA peak\n"
    "measured before and after (the higher is kept). After 2 untimed steps of\n"
    "each, the bench runs rounds that each time every (pass, batch, threads)\n"
    "once, an untimed training step before each batch's share, and prints the\n"
    "median and the best of the rounds, and the median of each step's minor\n"
    "page faults (getrusage).\n"
    "Then, for each batch, a fresh process (this program run again) takes 20\n"
    "training steps, and for each batch and thread count another takes 20\n"
    "sampling steps; each reports its peak resident set (VmHWM, or\n"
    "ru_maxrss), nd_mem_peak() (the library's peak of live bytes),\n"
    "nd_mem_cached() after the steps, and its page faults per step after the\n"
    "first 2; a training process then takes one more step and reports the\n"
    "bytes it keeps for backward (the inputs of recorded ops whose values\n"
    "their rules read) by the kind of layer that made them: conv,\n"
    "group_norm (and the other functions: GroupNorm+swish, dropout), swish,\n"
    "attention, dropout, add, other (concatenations, upsampling, the loss);\n"
    "what functions save and what the tape forms again is not seen there.\n"
    "Last, \"# target\" lines give each goal for the `small` UNet (share of\n"
    "the FMA peak, speed-up, page faults, peak resident memory) as met or by\n"
    "how much it is missed. --quick uses the `tiny` UNet (1x8x8), batches 2\n"
    "and 4, one round and 3 steps.";

#define ROUNDS 9
#define WARMUP_STEPS 2
#define RSS_STEPS 20
#define RSS_WARMUP 2 /* steps of a fresh process before its faults count */
#define SEED 20200619u
#define SAMPLE_STEP 499 /* i = t - 1 mid-chain: the noise term is added */

enum { TRAIN, SAMPLE, NPASSES };
static const char *const pass_names[NPASSES] = {"train", "sample"};

typedef struct {
    nd_schedule sched;
    nd_unet *unet;
    nd_denoiser den;
    nd_trainer *trainer;
} model;

/* with_trainer false: the network alone, as a sampler holds it */
static void model_init(model *m, const nd_unet_config *cfg, bool with_trainer) {
    nd_error err;
    if (nd_schedule_linear(&m->sched, 1000, 1e-4, 0.02, &err) != ND_OK) {
        fprintf(stderr, "ddpm: %s\n", err.message);
        exit(1);
    }
    nd_rng g = nd_rng_init(SEED, 0);
    m->unet = nd_unet_new(cfg, &g);
    m->den = nd_unet_denoiser(m->unet);
    m->trainer = with_trainer ? nd_trainer_new(&m->sched, m->den, nd_train_defaults(), SEED)
                              : NULL;
}

static void model_free(model *m) {
    if (m->trainer) nd_trainer_free(m->trainer);
    nd_module_free(nd_unet_module(m->unet));
    nd_schedule_free(&m->sched);
}

/* Images uniform in [-1, 1], the range the paper scales pixels to. */
static nd_tensor *random_images(nd_rng *g, int64_t n, const nd_unet_config *cfg) {
    nd_scope *s = nd_scope_begin();
    nd_tensor *u = nd_rand(g, ND_SHAPE(n, cfg->in_channels, cfg->resolution, cfg->resolution));
    nd_tensor *x = nd_persist(nd_sub_scalar(nd_mul_scalar(u, 2.0f), 1.0f));
    nd_scope_end(s);
    return x;
}

typedef struct {
    model *m;
    nd_tensor *x0;      /* train: the batch */
    nd_tensor *x_t, *t; /* sample: the chain's state at step SAMPLE_STEP */
    nd_tensor *z;
} batch_data;

static batch_data batch_init(model *m, nd_rng *g, int64_t n, const nd_unet_config *cfg) {
    batch_data b = {.m = m, .x0 = random_images(g, n, cfg)};
    b.x_t = nd_persist(nd_randn(g, ND_SHAPE(n, cfg->in_channels, cfg->resolution, cfg->resolution)));
    b.z = nd_persist(nd_randn(g, ND_SHAPE(n, cfg->in_channels, cfg->resolution, cfg->resolution)));
    b.t = nd_full(ND_SHAPE(n), (float)SAMPLE_STEP);
    return b;
}

static void batch_free(batch_data *b) {
    nd_free(b->x0);
    nd_free(b->x_t);
    nd_free(b->z);
    nd_free(b->t);
}

static void train_step(batch_data *b) { nd_train_step(b->m->trainer, b->x0); }

static void sample_step(batch_data *b) {
    nd_module *mod = nd_unet_module(b->m->unet);
    nd_no_grad_begin();
    nd_module_train(mod, false);
    nd_scope *s = nd_scope_begin();
    nd_p_sample(&b->m->sched, b->m->den, b->x_t, b->t, b->z, ND_FIXED_LARGE, true, NULL);
    nd_scope_end(s);
    nd_no_grad_end();
}

static void step(int pass, batch_data *b) {
    if (pass == TRAIN) train_step(b);
    else sample_step(b);
}

/* minor page faults of this process so far: each is a fresh page */
static long minor_faults(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : 0;
}

static double timed(int pass, batch_data *b, long *faults) {
    long f0 = minor_faults();
    double t0 = bench_now();
    step(pass, b);
    double t = bench_now() - t0;
    *faults = minor_faults() - f0;
    return t;
}

/* ---- what a training step keeps for backward ------------------------------ */

/* After a training step's forward pass (the loss of Algorithm 1, in
 * training mode), the tape holds what backward will read: every input
 * whose values a record's rule reads, and every tensor a function saved.
 * Each storage is counted once, under the kind of layer whose record
 * first holds it: conv (conv2d), group_norm, group_norm_swish (the fused
 * op), swish (silu alone), attention (its function, and its projections'
 * matmuls), dropout, add, other (concatenations, upsampling, the time
 * embedding, the loss). Parameters are not counted. Outputs that the tape
 * forms again before the rule that reads them are not kept, and not
 * counted. The total is the growth of the library's live bytes over the
 * forward pass, records and the loss included. */
enum { KEPT_CONV, KEPT_GROUP_NORM, KEPT_GROUP_NORM_SWISH, KEPT_SWISH, KEPT_ATTENTION,
       KEPT_DROPOUT, KEPT_ADD, KEPT_OTHER, NKEPT };
static const char *const kept_names[NKEPT] = {"conv",      "group_norm", "group_norm_swish",
                                              "swish",     "attention",  "dropout",
                                              "add",       "other"};
#define KEPT_SLOTS (1 << 16) /* storages of a step, well above */
static const nd_storage *kept_seen[KEPT_SLOTS];

/* Whether s was seen before; marks it seen. */
static bool seen_before(const nd_storage *s) {
    size_t i = ((uintptr_t)s >> 4) % KEPT_SLOTS;
    while (kept_seen[i] && kept_seen[i] != s) i = (i + 1) % KEPT_SLOTS;
    bool seen = kept_seen[i] != NULL;
    kept_seen[i] = s;
    return seen;
}

static int kept_kind(const char *name) {
    static const struct {
        const char *name;
        int kind;
    } kinds[] = {{"conv2d", KEPT_CONV},       {"group_norm", KEPT_GROUP_NORM},
                 {"group_norm_silu", KEPT_GROUP_NORM_SWISH},
                 {"silu", KEPT_SWISH},        {"attention", KEPT_ATTENTION},
                 {"matmul", KEPT_ATTENTION},  {"dropout", KEPT_DROPOUT},
                 {"add", KEPT_ADD}};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (strcmp(name, kinds[i].name) == 0) return kinds[i].kind;
    return KEPT_OTHER;
}

/* kept[kind] in bytes; returns the growth of the live bytes */
static double kept_for_backward(model *m, const nd_tensor *x0, double *kept) {
    nd_module *mod = nd_unet_module(m->unet);
    nd_module_train(mod, true);
    nd_rng g = nd_rng_init(SEED, 9);
    size_t before = nd_mem_live();
    nd_scope *s = nd_scope_begin();
    nd_tensor *t = nd_sample_timesteps(&m->sched, x0->shape[0], &g);
    nd_tensor *eps = nd_randn(&g, x0->shape, x0->ndim);
    nd_tensor *loss = nd_loss_simple_at(&m->sched, m->den, x0, t, eps, &g);
    double grown = (double)(nd_mem_live() - before);
    const nd_record *oldest = loss->record; /* the newest record; the walk goes back */
    while (oldest->prev) oldest = oldest->prev;
    for (const nd_record *r = oldest; r; r = r->next) {
        int kind = kept_kind(r->fn ? r->fn->name : nd_op_name(r->ev.op));
        for (int k = 0; k < r->ev.nin + r->nsaved; k++) {
            const nd_tensor *x = r->ins[k];
            bool value = k >= r->ev.nin || k >= 64 || !(r->shape_only >> k & 1);
            if (!value || !x->storage || (!x->record && x->requires_grad)) continue;
            if (!seen_before(x->storage)) kept[kind] += (double)nd_numel(x) * sizeof(float);
        }
    }
    nd_scope_end(s);
    return grown;
}

/* ---- peak resident memory ------------------------------------------------ */

/* A "Vm...:  N kB" line of /proc/self/status in KiB, or -1. */
static long proc_status_kib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kib = -1;
    size_t len = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, len) == 0 && line[len] == ':') {
            kib = strtol(line + len + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

/* The hidden child mode: a fresh process, so that its high-water mark is
 * that of one run of training or sampling alone and not of the parent's
 * timings. Prints "key value" lines that the parent reads through a pipe. */
static int rss_child(int argc, char **argv) {
    int pass = argc == 7 ? (strcmp(argv[2], "train") == 0   ? TRAIN
                            : strcmp(argv[2], "sample") == 0 ? SAMPLE
                                                              : -1)
                         : -1;
    if (pass < 0) {
        fprintf(stderr, "ddpm: --rss-child train|sample CONFIG BATCH THREADS STEPS\n");
        return 2;
    }
    nd_unet_config cfg;
    nd_error err;
    if (nd_unet_config_named(argv[3], &cfg, &err) != ND_OK) {
        fprintf(stderr, "ddpm: %s\n", err.message);
        return 2;
    }
    int64_t n = strtoll(argv[4], NULL, 10);
    int threads = atoi(argv[5]), steps = atoi(argv[6]);
    if (n < 1 || threads < 1 || steps <= RSS_WARMUP) {
        fprintf(stderr, "ddpm: bad --rss-child arguments\n");
        return 2;
    }
    nd_set_num_threads(threads);
    model m;
    model_init(&m, &cfg, pass == TRAIN);
    nd_rng g = nd_rng_init(SEED, 1);
    batch_data b = batch_init(&m, &g, n, &cfg);
    long setup_kib = proc_status_kib("VmRSS");
    long faults = 0;
    for (int i = 0; i < steps; i++) {
        if (i == RSS_WARMUP) faults = minor_faults();
        step(pass, &b);
    }
    faults = minor_faults() - faults;
    double kept[NKEPT] = {0}, kept_total = 0;
    if (pass == TRAIN) kept_total = kept_for_backward(&m, b.x0, kept);
    struct rusage ru;
    long maxrss_kib = getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1; /* KiB on Linux */
    printf("hwm_kib %ld\nmaxrss_kib %ld\nsetup_kib %ld\nmem_peak %zu\ncached %zu\n"
           "faults_per_step %.1f\n",
           proc_status_kib("VmHWM"), maxrss_kib, setup_kib, nd_mem_peak(), nd_mem_cached(),
           (double)faults / (steps - RSS_WARMUP));
    for (int k = 0; pass == TRAIN && k < NKEPT; k++) printf("kept_%s %.0f\n", kept_names[k], kept[k]);
    if (pass == TRAIN) printf("kept_total %.0f\n", kept_total);
    batch_free(&b);
    model_free(&m);
    return 0;
}

typedef struct {
    double hwm_mib, setup_mib, lib_peak_mib, cached_mib, faults_per_step;
    double kept_mib[NKEPT], kept_total_mib; /* training */
    bool from_status; /* VmHWM rather than ru_maxrss */
} rss_result;

/* Runs this program again in child mode and reads its figures; exits on
 * any failure, so that --quick under meson test checks this path too. */
static rss_result run_rss_child(const char *self, int pass, const char *cfg_name, int64_t n,
                                int threads, int steps) {
    char nbuf[24], tbuf[16], sbuf[16];
    snprintf(nbuf, sizeof nbuf, "%lld", (long long)n);
    snprintf(tbuf, sizeof tbuf, "%d", threads);
    snprintf(sbuf, sizeof sbuf, "%d", steps);
    char *args[] = {(char *)self, "--rss-child", (char *)pass_names[pass], (char *)cfg_name,
                    nbuf, tbuf, sbuf, NULL};
    int fd[2];
    if (pipe(fd) != 0) {
        perror("ddpm: pipe");
        exit(1);
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    posix_spawn_file_actions_addclose(&fa, fd[1]);
    pid_t pid;
    /* /proc/self/exe finds this very binary even when argv[0] was looked
     * up in PATH or is relative to a directory since left. */
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, args, environ);
    if (rc != 0) rc = posix_spawnp(&pid, self, &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    if (rc != 0) {
        fprintf(stderr, "ddpm: cannot run %s again: %s\n", self, strerror(rc));
        exit(1);
    }
    FILE *f = fdopen(fd[0], "r");
    if (!f) {
        perror("ddpm: fdopen");
        exit(1);
    }
    long hwm = -1, maxrss = -1, setup = -1;
    size_t peak = 0, cached = 0;
    double faults = 0, kept[NKEPT] = {0}, kept_total = 0;
    int got = 0;
    char line[128];
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "hwm_kib %ld", &hwm) == 1) got |= 1;
        else if (sscanf(line, "maxrss_kib %ld", &maxrss) == 1) got |= 2;
        else if (sscanf(line, "setup_kib %ld", &setup) == 1) got |= 4;
        else if (sscanf(line, "mem_peak %zu", &peak) == 1) got |= 8;
        else if (sscanf(line, "cached %zu", &cached) == 1) got |= 16;
        else if (sscanf(line, "faults_per_step %lf", &faults) == 1) got |= 32;
        else if (sscanf(line, "kept_total %lf", &kept_total) == 1) continue;
        else
            for (int k = 0; k < NKEPT; k++) {
                char key[32];
                double v;
                snprintf(key, sizeof key, "kept_%s %%lf", kept_names[k]);
                if (sscanf(line, key, &v) == 1) kept[k] = v;
            }
    }
    fclose(f);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            perror("ddpm: waitpid");
            exit(1);
        }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != 63) {
        fprintf(stderr, "ddpm: the memory run (%s, batch %lld) failed\n", pass_names[pass],
                (long long)n);
        exit(1);
    }
    rss_result r = {.from_status = hwm > 0};
    r.hwm_mib = (double)(hwm > 0 ? hwm : maxrss) / 1024.0;
    r.setup_mib = (double)setup / 1024.0;
    r.lib_peak_mib = (double)peak / (1024.0 * 1024.0);
    r.cached_mib = (double)cached / (1024.0 * 1024.0);
    r.faults_per_step = faults;
    for (int k = 0; k < NKEPT; k++) r.kept_mib[k] = kept[k] / (1024.0 * 1024.0);
    r.kept_total_mib = kept_total / (1024.0 * 1024.0);
    return r;
}

/* ---- main ---------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) { /* n <= ROUNDS */
    double s[ROUNDS];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/* ---- targets ------------------------------------------------------------- */

/* The figures this program exists to drive, each against its goal for the
 * `small` UNet: useful FLOPs as a share of the FMA peak, the gain of a
 * second thread, page faults and peak resident memory. */
static int targets_met, targets_set;

static void target(const char *what, double value, const char *unit, bool at_least,
                   double goal) {
    bool met = at_least ? value >= goal : value <= goal;
    targets_set++;
    targets_met += met;
    printf("# target %-34s %9.3f %-4s want %s %g: %s", what, value, unit,
           at_least ? ">=" : "<=", goal, met ? "met" : "not met");
    if (!met) printf(", %.3f %s %s", fabs(value - goal), unit, at_least ? "short" : "over");
    printf("\n");
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--rss-child") == 0) return rss_child(argc, argv);
    bool quick = bench_parse_args(argc, argv, "ddpm", help);

    const char *cfg_name = quick ? "tiny" : "small";
    nd_unet_config cfg;
    nd_error err;
    if (nd_unet_config_named(cfg_name, &cfg, &err) != ND_OK) {
        fprintf(stderr, "ddpm: %s\n", err.message);
        return 1;
    }
    const int64_t batches[2] = {quick ? 2 : 16, quick ? 4 : 64};
    int nthreads = nd_get_num_threads();
    int counts[2] = {1, nthreads}, ncounts = nthreads > 1 ? 2 : 1;
    int rounds = quick ? 1 : ROUNDS, warmup = quick ? 0 : WARMUP_STEPS;
    int rss_steps = quick ? RSS_WARMUP + 1 : RSS_STEPS;
    double start = bench_now();

    model m;
    model_init(&m, &cfg, true);
    int64_t params = nd_num_parameters(nd_unet_module(m.unet));
    int64_t macs = nd_unet_macs(&cfg);
    char cpu[256], env[512];
    bench_cpu_model(cpu, sizeof cpu);
    printf("# ddpm: `%s` UNet (%lldx%lldx%lld, ch %lld, %d levels, %lld blocks), %lld "
           "parameters, %lld multiply-adds per image forward; train = nd_train_step "
           "(Adam, clip, EMA), sample = one nd_p_sample step (no-grad, eval); batches "
           "%lld and %lld; GFLOP/s = 2 x macs x batch (x3 to train) / time; %d untimed "
           "steps of each, then median and best of %d interleaved rounds (an untimed "
           "training step at each change of batch) | cpu: %s | %s | "
           "threads: 1 and %d\n",
           cfg_name, (long long)cfg.in_channels, (long long)cfg.resolution,
           (long long)cfg.resolution, (long long)cfg.ch, cfg.levels,
           (long long)cfg.num_res_blocks, (long long)params, (long long)macs,
           (long long)batches[0], (long long)batches[1], warmup, rounds, cpu,
           bench_environment(env, sizeof env, nd_kernels_name()), nthreads);

    double peak[2];
    for (int k = 0; k < ncounts; k++) peak[k] = bench_fma_peak(counts[k], quick);

    nd_rng g = nd_rng_init(SEED, 1);
    batch_data data[2];
    for (int b = 0; b < 2; b++) data[b] = batch_init(&m, &g, batches[b], &cfg);

    /* Warm-up: a process's first training steps run several times slower
     * (here 3-4x), their large blocks landing on fresh pages until glibc's
     * heap and the library's block cache hold them; two steps suffice. */
    for (int k = 0; k < ncounts; k++) {
        nd_set_num_threads(counts[k]);
        for (int b = 0; b < 2; b++)
            for (int pass = 0; pass < NPASSES; pass++)
                for (int i = 0; i < warmup; i++) step(pass, &data[b]);
    }

    /* Interleaved rounds: the machine is shared and its speed drifts over
     * minutes, so every configuration is timed once per round and the
     * figures compare times taken moments apart. Within a round the batch
     * changes once, followed by an untimed training step: the first
     * step at 64 after steps at 16 took 20,000-110,000 page faults (glibc
     * had handed the larger blocks back), up to +40%, which a run that
     * trains at one batch size never pays; the step after it took none. */
    double times[2][2][NPASSES][ROUNDS], faults[2][2][NPASSES][ROUNDS];
    double share[2][2][NPASSES] = {{{0}}}, speedup[2][NPASSES] = {{0}}, step_faults = 0;
    double rss[2][2] = {{0}}; /* [pass][batch], sampling on one thread */
    for (int r = 0; r < rounds; r++)
        for (int b = 0; b < 2; b++) {
            train_step(&data[b]);
            for (int k = 0; k < ncounts; k++) {
                nd_set_num_threads(counts[k]);
                for (int pass = 0; pass < NPASSES; pass++) {
                    long f;
                    times[k][b][pass][r] = timed(pass, &data[b], &f);
                    faults[k][b][pass][r] = (double)f;
                }
            }
            nd_set_num_threads(nthreads);
        }

    bench_peak_recheck(peak, counts, ncounts, quick);
    /* Each core reaches the one-thread peak on its own, so a lower sum
     * means that the cores were never both free at once. */
    if (ncounts > 1 && peak[1] < 0.75 * (double)nthreads * peak[0])
        printf("# warning: the t%d peak is under %.0f%% of %d x t1: other processes held "
               "cores, the t%d figures mean little\n",
               nthreads, 75.0, nthreads, nthreads);
    for (int k = 0; k < ncounts; k++)
        bench_figure(peak[k], "GFLOP/s", "fma_peak_t%d", counts[k]);

    for (int pass = 0; pass < NPASSES; pass++)
        for (int b = 0; b < 2; b++) {
            double flops = 2.0 * (double)macs * (double)batches[b] * (pass == TRAIN ? 3 : 1);
            double best_t[2] = {0, 0};
            for (int k = 0; k < ncounts; k++) {
                const double *v = times[k][b][pass];
                double best = v[0];
                for (int r = 1; r < rounds; r++) best = v[r] < best ? v[r] : best;
                double med = median(v, rounds);
                best_t[k] = best;
                const char *p = pass_names[pass];
                long long n = (long long)batches[b];
                int t = counts[k];
                bench_figure(1e3 * med, "ms", "%s_b%lld_t%d_median", p, n, t);
                bench_figure(1e3 * best, "ms", "%s_b%lld_t%d_best", p, n, t);
                bench_figure(flops / med * 1e-9, "GFLOP/s", "%s_b%lld_t%d_median_rate", p, n, t);
                bench_figure(flops / best * 1e-9, "GFLOP/s", "%s_b%lld_t%d_best_rate", p, n, t);
                bench_figure(100 * flops / med * 1e-9 / peak[k], "%", "%s_b%lld_t%d_median_peak",
                             p, n, t);
                bench_figure(100 * flops / best * 1e-9 / peak[k], "%", "%s_b%lld_t%d_best_peak",
                             p, n, t);
                bench_figure(median(faults[k][b][pass], rounds), "faults", "%s_b%lld_t%d_faults",
                             p, n, t);
                share[k][b][pass] = 100 * flops / med * 1e-9 / peak[k];
                if (pass == SAMPLE && b == 0 && k == 0) step_faults = median(faults[k][b][pass], rounds);
            }
            if (ncounts > 1) {
                speedup[b][pass] = best_t[0] / best_t[1];
                bench_figure(best_t[0] / best_t[1], "x", "%s_b%lld_speedup_t%d",
                             pass_names[pass], (long long)batches[b], nthreads);
            }
        }

    for (int b = 0; b < 2; b++) batch_free(&data[b]);
    model_free(&m);

    /* Memory last: the children run alone, after the timings. */
    printf("# memory: a fresh process per pass, batch (and for sampling thread count), %d "
           "steps; rss = its peak resident set (VmHWM, or ru_maxrss), setup = its resident "
           "set before the first step (the model; to train, Adam and EMA too), mem_peak = "
           "nd_mem_peak(), the library's peak of live bytes, cached = nd_mem_cached() after "
           "the steps, faults = minor page faults per step after the first %d; training "
           "on %d thread(s)\n",
           rss_steps, RSS_WARMUP, nthreads);
    for (int pass = 0; pass < NPASSES; pass++)
        for (int b = 0; b < 2; b++)
            for (int k = 0; k < ncounts; k++) {
                if (pass == TRAIN && k > 0) break;
                int t = pass == TRAIN ? nthreads : counts[k];
                rss_result r = run_rss_child(argv[0], pass, cfg_name, batches[b], t, rss_steps);
                const char *p = pass_names[pass];
                char name[64];
                if (pass == TRAIN) snprintf(name, sizeof name, "%s_b%lld", p, (long long)batches[b]);
                else snprintf(name, sizeof name, "%s_b%lld_t%d", p, (long long)batches[b], t);
                if (!r.from_status) printf("# no VmHWM in /proc/self/status: rss is ru_maxrss\n");
                bench_figure(r.hwm_mib, "MiB", "%s_rss", name);
                if (k == 0) rss[pass][b] = r.hwm_mib;
                bench_figure(r.setup_mib, "MiB", "%s_rss_setup", name);
                bench_figure(r.lib_peak_mib, "MiB", "%s_mem_peak", name);
                bench_figure(r.cached_mib, "MiB", "%s_cached", name);
                bench_figure(r.faults_per_step, "faults", "%s_faults_per_step", name);
                for (int j = 0; pass == TRAIN && j < NKEPT; j++)
                    bench_figure(r.kept_mib[j], "MiB", "%s_kept_%s", name, kept_names[j]);
                if (pass == TRAIN) bench_figure(r.kept_total_mib, "MiB", "%s_kept", name);
            }
    if (!quick) {
        /* Medians; the shares are of the FMA peak of the same run. */
        target("train_b16_t1_median_peak", share[0][0][TRAIN], "%", true, 85);
        target("train_b64_t1_median_peak", share[0][1][TRAIN], "%", true, 85);
        if (ncounts > 1) {
            target("train_b16_t2_median_peak", share[1][0][TRAIN], "%", true, 80);
            target("train_b64_t2_median_peak", share[1][1][TRAIN], "%", true, 80);
        }
        target("sample_b16_t1_median_peak", share[0][0][SAMPLE], "%", true, 75);
        target("sample_b16_t1_faults", step_faults, "", false, 0);
        if (ncounts > 1) {
            target("train_b16_speedup (best)", speedup[0][TRAIN], "x", true, 1.85);
            target("train_b64_speedup (best)", speedup[1][TRAIN], "x", true, 1.85);
            target("sample_b16_speedup (best)", speedup[0][SAMPLE], "x", true, 1.85);
        }
        target("train_b16_rss", rss[TRAIN][0], "MiB", false, 270);
        target("train_b64_rss", rss[TRAIN][1], "MiB", false, 620);
        target("sample_b16_t1_rss", rss[SAMPLE][0], "MiB", false, 80);
        bench_figure(targets_met, "of", "targets_met_of_%d", targets_set);
    }
    printf("# run time %.0f s\n", bench_now() - start);
    return 0;
}
