/* Bandwidth of memory-bound ops on tensors larger than the last-level
 * cache, as GB/s of the bytes the op must move at least (each input read
 * once, the output written once) and as % of memcpy bandwidth at the same
 * thread count. */
#include <stdio.h>

#include "common.h"
#include "tensor/tensor.h"

static const char help[] =
    "Times memory-bound ops on float32 tensors of 64 Mi elements (256 MiB,\n"
    "beyond the last-level cache): add (read a, read b, write y: 12 bytes per\n"
    "element), mul_scalar, exp, silu, gelu (8 bytes per element), softmax\n"
    "along the last axis of [65536, 1024] (8 bytes per element), sum over the\n"
    "last axis of the same tensor (4 bytes per element), sum over the first\n"
    "axis of the tensor viewed as [16, 4 Mi] (a batch-broadcast gradient, 4\n"
    "bytes per element), and group statistics:\n"
    "nd_mean and nd_var over the last axis of a [16, 256, 128, 128] tensor\n"
    "viewed as [16, 32, 131072], as GroupNorm with 32 groups computes them (4\n"
    "bytes per element each). Prints GB/s of those bytes and % of memcpy\n"
    "bandwidth (256 MiB, read+write bytes, between buffers touched before) at\n"
    "the same thread count, with 1 thread and with nd_get_num_threads(). It\n"
    "measures in 5 rounds, each timing memcpy and every op twice, and keeps\n"
    "the best of all rounds, so that a moment when something else uses the\n"
    "memory bus costs one round. Each op allocates its output, so\n"
    "its time includes the first touch of fresh pages; memcpy_fresh_t1 shows\n"
    "what that costs memcpy itself.";

typedef enum {
    OP_ADD, OP_MUL_SCALAR, OP_EXP, OP_SILU, OP_GELU, OP_SOFTMAX, OP_SUM, OP_SUM_FIRST,
    OP_GROUP_STATS, OP_COUNT
} op_kind;

static const struct {
    const char *name;
    double bytes_per_elem; /* compulsory traffic per input element */
} ops[OP_COUNT] = {
    [OP_ADD] = {"add", 12},         [OP_MUL_SCALAR] = {"mul_scalar", 8},
    [OP_EXP] = {"exp", 8},          [OP_SILU] = {"silu", 8},
    [OP_GELU] = {"gelu", 8},        [OP_SOFTMAX] = {"softmax", 8},
    [OP_SUM] = {"sum_last", 4},     [OP_SUM_FIRST] = {"sum_first", 4},
    [OP_GROUP_STATS] = {"group_stats", 8},
};

typedef struct {
    op_kind op;
    nd_tensor *a, *b; /* flat inputs */
    nd_tensor *rows;  /* a as [rows, 1024] */
    nd_tensor *batch; /* a as [16, n / 16] */
    nd_tensor *groups; /* a as [B, G, C/G H W] */
    nd_tensor *y, *y2;
} mem_job;

static void run_op(void *ctx) {
    mem_job *j = ctx;
    switch (j->op) {
    case OP_ADD: j->y = nd_add(j->a, j->b); break;
    case OP_MUL_SCALAR: j->y = nd_mul_scalar(j->a, 1.5f); break;
    case OP_EXP: j->y = nd_exp(j->a); break;
    case OP_SILU: j->y = nd_silu(j->a); break;
    case OP_GELU: j->y = nd_gelu(j->a); break;
    case OP_SOFTMAX: j->y = nd_softmax(j->rows, -1); break;
    case OP_SUM: j->y = nd_sum(j->rows, ND_AXES(-1), false); break;
    case OP_SUM_FIRST: j->y = nd_sum(j->batch, ND_AXES(0), false); break;
    case OP_GROUP_STATS:
        j->y = nd_mean(j->groups, ND_AXES(-1), false);
        j->y2 = nd_var(j->groups, ND_AXES(-1), 0, false);
        break;
    case OP_COUNT: break;
    }
}

static void free_outputs(void *ctx) {
    mem_job *j = ctx;
    nd_free(j->y);
    nd_free(j->y2);
    j->y = j->y2 = NULL;
}

int main(int argc, char **argv) {
    bool quick = bench_parse_args(argc, argv, "memory", help);
    int rounds = quick ? 1 : 5, reps = quick ? 1 : 2;
    int nthreads = nd_get_num_threads();

    /* n elements; softmax and sum see [n / 1024, 1024]; group statistics
     * see [B, C, H, W] as [B, G, C/G H W]. */
    int64_t n = quick ? (int64_t)1 << 18 : (int64_t)1 << 26;
    int64_t batch = 16, groups = 32, chans = quick ? 64 : 256, hw = quick ? 16 : 128;
    size_t copy_bytes = (size_t)n * sizeof(float);

    /* The machine's memory bandwidth drifts with what else runs on it, so
     * the measurement goes in rounds: each round times memcpy and then
     * every op, twice each, and the best of all rounds is kept, for memcpy
     * as for the ops. A slow moment then costs one round, not one op. */
    int counts[2] = {1, nthreads};
    int ncounts = nthreads > 1 ? 2 : 1;
    double copy[2] = {0, 0}, fresh = bench_memcpy_fresh(copy_bytes, reps);

    nd_rng g = nd_rng_init(7, 0);
    mem_job j = {.a = nd_rand(&g, ND_SHAPE(n)), .b = nd_rand(&g, ND_SHAPE(n))};
    j.rows = nd_view(j.a, ND_SHAPE(n / 1024, 1024));
    j.batch = nd_view(j.a, ND_SHAPE(16, n / 16));
    j.groups = nd_view(j.a, ND_SHAPE(batch, groups, chans / groups * hw * hw));
    double rate[2][OP_COUNT] = {{0}};
    for (int r = 0; r < rounds; r++)
        for (int c = 0; c < ncounts; c++) {
            double cp = bench_memcpy(copy_bytes, counts[c], reps);
            copy[c] = cp > copy[c] ? cp : copy[c];
            nd_set_num_threads(counts[c]);
            for (int op = 0; op < OP_COUNT; op++) {
                j.op = (op_kind)op;
                double t = bench_best(run_op, free_outputs, &j, !quick && r == 0, reps, 1e9);
                double v = ops[op].bytes_per_elem * (double)n / t * 1e-9;
                rate[c][op] = v > rate[c][op] ? v : rate[c][op];
            }
        }
    nd_set_num_threads(nthreads);
    nd_free(j.groups);
    nd_free(j.rows);
    nd_free(j.batch);
    nd_free(j.a);
    nd_free(j.b);
    double again = bench_memcpy_fresh(copy_bytes, reps);
    fresh = again > fresh ? again : fresh;

    char env[512], timing[96];
    if (quick)
        snprintf(timing, sizeof timing, "one run, no warm-up");
    else
        snprintf(timing, sizeof timing, "a warm-up, then the best of %d rounds of %d runs",
                 rounds, reps);
    printf("# memory: ops on %lld floats (%zu MiB per tensor), GB/s of compulsory "
           "traffic, %s, and %% of memcpy (best of the same rounds) at the same "
           "thread count | %s | threads: 1 and %d (nd_get_num_threads)\n",
           (long long)n, copy_bytes >> 20, timing,
           bench_environment(env, sizeof env, nd_kernels_name()), nthreads);
    printf("# softmax, sum_last: [%lld, 1024], last axis; sum_first: [16, %lld], first "
           "axis; group_stats: nd_mean + "
           "nd_var(correction 0) of [%lld, %lld, %lld, %lld] as [%lld, %lld, %lld]; "
           "reductions only read, so they can pass 100%% of memcpy\n",
           (long long)(n / 1024), (long long)(n / 16), (long long)batch, (long long)chans,
           (long long)hw, (long long)hw, (long long)batch, (long long)groups,
           (long long)(chans / groups * hw * hw));
    for (int c = 0; c < ncounts; c++)
        bench_figure(copy[c], "GB/s", "memcpy_t%d", counts[c]);
    bench_print("memcpy_fresh_t1", fresh, "GB/s");
    for (int c = 0; c < ncounts; c++) {
        for (int op = 0; op < OP_COUNT; op++) {
            bench_figure(rate[c][op], "GB/s", "%s_t%d", ops[op].name, counts[c]);
            bench_figure(100.0 * rate[c][op] / copy[c], "%", "%s_t%d_memcpy", ops[op].name,
                         counts[c]);
        }
    }
    return 0;
}
