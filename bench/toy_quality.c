/* How close a file of generated 2-D points is to a toy set: the energy
 * distance and the k-NN precision and recall (k = 5) against a fresh draw
 * of the set, and the same three figures for a second fresh draw against
 * the first, the noise floor no model can go below at this n.
 *
 *   toy_quality NAME SAMPLES.npy [--seed N] [--n N]
 *
 * Unlike the other benches it takes a file, so it has no --quick run. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "data/data.h"
#include "ddpm/ddpm.h"

#define PROGRAM "toy_quality"
#define K 5
#define DEFAULT_N 5000
#define DEFAULT_SEED 12345
#define MAX_N 1000000 /* brute force over all pairs: n^2 work */

static const char usage[] = "usage: " PROGRAM " NAME SAMPLES.npy [--seed N] [--n N] [--help]\n";

static const char help[] =
    "Compares points a model generated (SAMPLES.npy, float32 or float64 [m, 2])\n"
    "with the toy set NAME (moons, ring, checkerboard, pinwheel, swissroll):\n"
    "draws n fresh points of the set with nd_toy_points from (seed, stream 0)\n"
    "and prints\n"
    "  energy_distance  nd_energy_distance(data, samples): 2 E|X-Y| - E|X-X'|\n"
    "                   - E|Y-Y'|, the V-statistic (0 only for equal sets)\n"
    "  knn_precision    share of samples inside the real points' k-NN balls\n"
    "  knn_recall       share of real points inside the samples' k-NN balls\n"
    "                   (nd_knn_precision_recall, k = 5)\n"
    "and the same three as floor_* for a second fresh draw (stream 1) in place\n"
    "of the samples: what a perfect model would score at this n. Then the\n"
    "seconds the whole run took.\n"
    "\n"
    "  --seed N  seed of the fresh draws (default 12345)\n"
    "  --n N     points per fresh draw, 6 to 1000000 (default 5000)\n"
    "  --help    this text\n"
    "\n"
    "Output: one line per figure, \"name value unit\"; lines starting with '#'\n"
    "say what was measured. Exit status 2 for bad arguments, 1 when the file\n"
    "cannot be used.\n";

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 1, 2)))
#endif
static _Noreturn void bad_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROGRAM ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n%s", usage);
    va_end(ap);
    exit(2);
}

/* A whole decimal number in [lo, hi], nothing else. */
static uint64_t parse_number(const char *option, const char *text, uint64_t lo, uint64_t hi) {
    if (!text) bad_usage("%s needs a value", option);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end || errno == ERANGE || v < lo || v > hi)
        bad_usage("%s '%s' is not a whole number from %" PRIu64 " to %" PRIu64, option, text,
                  lo, hi);
    return (uint64_t)v;
}

typedef struct {
    double energy, precision, recall;
} quality;

static int measure(const nd_tensor *data, const nd_tensor *other, quality *q, nd_error *err) {
    if (nd_knn_precision_recall(data, other, K, &q->precision, &q->recall, err) != ND_OK)
        return ND_ERR;
    q->energy = nd_energy_distance(data, other);
    return ND_OK;
}

static void figure(const char *name, double value, const char *unit) {
    printf("%s %.6g %s\n", name, value, unit);
}

int main(int argc, char **argv) {
    const char *name = NULL, *path = NULL;
    uint64_t seed = DEFAULT_SEED;
    int64_t n = DEFAULT_N;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s\n%s", usage, help);
            return 0;
        } else if (!strcmp(a, "--seed")) {
            seed = parse_number(a, i + 1 < argc ? argv[++i] : NULL, 0, UINT64_MAX);
        } else if (!strcmp(a, "--n")) {
            n = (int64_t)parse_number(a, i + 1 < argc ? argv[++i] : NULL, K + 1, MAX_N);
        } else if (a[0] == '-' && a[1] != '\0') {
            bad_usage("unknown option '%s'", a);
        } else if (!name) {
            name = a;
        } else if (!path) {
            path = a;
        } else {
            bad_usage("one file of samples only; '%s' is one too many", a);
        }
    }
    if (!path) bad_usage("%s", name ? "no file of samples given" : "no toy set and no file given");
    double start = bench_now();

    /* 0 when done, else the exit status; every path frees what it made */
    int status = 1;
    nd_error err;
    nd_rng g0 = nd_rng_init(seed, 0), g1 = nd_rng_init(seed, 1);
    nd_tensor *data = NULL, *floor_draw = NULL, *samples = NULL;
    quality model, floor;
    char shape[ND_SHAPE_STR_LEN];
    if (nd_toy_points(name, n, &g0, &data, &err) != ND_OK) {
        fprintf(stderr, PROGRAM ": %s\n%s", err.message, usage);
        status = 2;
        goto done;
    }
    if (nd_npy_load(path, &samples, &err) != ND_OK) {
        fprintf(stderr, PROGRAM ": %s\n", err.message);
        goto done;
    }
    nd_shape_str(samples->shape, samples->ndim, shape);
    if (samples->ndim != 2 || samples->shape[1] != 2 || samples->shape[0] <= K) {
        fprintf(stderr, PROGRAM ": %s: samples of shape %s; want 2-D points [m, 2], m > %d\n",
                path, shape, K);
        goto done;
    }
    const float *xy = nd_data(samples); /* contiguous, as loaded */
    for (int64_t i = 0; i < samples->shape[0]; i++)
        if (!isfinite(xy[2 * i]) || !isfinite(xy[2 * i + 1])) {
            fprintf(stderr, PROGRAM ": %s: sample %lld is (%g, %g), not a finite point\n", path,
                    (long long)i, (double)xy[2 * i], (double)xy[2 * i + 1]);
            goto done;
        }
    if (measure(data, samples, &model, &err) != ND_OK) {
        fprintf(stderr, PROGRAM ": %s: %s\n", path, err.message);
        goto done;
    }
    if (nd_toy_points(name, n, &g1, &floor_draw, &err) != ND_OK ||
        measure(data, floor_draw, &floor, &err) != ND_OK) {
        fprintf(stderr, PROGRAM ": %s\n", err.message);
        goto done;
    }
    double seconds = bench_now() - start;

    char cpu[256], env[512];
    bench_cpu_model(cpu, sizeof cpu);
    printf("# " PROGRAM ": %s %s against %lld fresh points of `%s` (nd_toy_points, seed %" PRIu64
           ", stream 0); floor_*: a second fresh draw (stream 1) against the first; k-NN "
           "k = %d | cpu: %s | %s | threads: %d\n",
           path, shape, (long long)n, name, seed, K, cpu,
           bench_environment(env, sizeof env, nd_kernels_name()), nd_get_num_threads());
    figure("n", (double)n, "points");
    figure("samples", (double)samples->shape[0], "points");
    figure("energy_distance", model.energy, "distance");
    figure("knn_precision", model.precision, "fraction");
    figure("knn_recall", model.recall, "fraction");
    figure("floor_energy_distance", floor.energy, "distance");
    figure("floor_knn_precision", floor.precision, "fraction");
    figure("floor_knn_recall", floor.recall, "fraction");
    figure("time", seconds, "s");
    status = 0;
done:
    nd_free(data);
    nd_free(floor_draw);
    nd_free(samples);
    return status;
}
