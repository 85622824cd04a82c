/* Backward rules of the reductions and softmax (forwards: tensor/reduce.c).
 * Reductions send dy back to every input element that fed the output:
 * nd__unreduce views dy with x's shape. */
#include "internal.h"

static int64_t reduced_count(const nd_record *r) {
    int64_t n = 1;
    for (int i = 0; i < r->ins[0]->ndim; i++)
        if (r->ev.args[i]) n *= r->ins[0]->shape[i];
    return n;
}

static int reduced_axes(const nd_record *r, int *axes) {
    int n = 0;
    for (int i = 0; i < r->ins[0]->ndim; i++)
        if (r->ev.args[i]) axes[n++] = i;
    return n;
}

/* y = sum_i x_i:  dx_i = dy */
static void sum_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd__unreduce(r, dy));
}

/* y = (1/N) sum_i x_i:  dx_i = dy / N */
static void mean_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_div_scalar(nd__unreduce(r, dy), (float)reduced_count(r)));
}

/* y = max_i x_i:  dx_i = dy / m where x_i = y (m such ties), else 0 */
static void extremum_bw(const nd_record *r, const nd_tensor *dy) {
    int axes[ND_MAX_DIMS];
    int n = reduced_axes(r, axes);
    nd_tensor *hit = nd_eq(r->ins[0], nd__unreduce(r, r->out));
    nd_tensor *ties = nd_sum(hit, axes, n, true);
    nd__accumulate(r, 0, nd_div(nd_mul(nd__unreduce(r, dy), hit), ties));
}

/* y = sum_i (x_i - mean)^2 / (N - c):  dx_i = 2 (x_i - mean) dy / (N - c)
 * (the mean's own dependence on x_i sums to zero) */
static void var_bw(const nd_record *r, const nd_tensor *dy) {
    int axes[ND_MAX_DIMS];
    int n = reduced_axes(r, axes);
    const nd_tensor *x = r->ins[0];
    nd_tensor *centred = nd_sub(x, nd_mean(x, axes, n, true));
    float scale = 2.0f / (float)(reduced_count(r) - r->ev.correction);
    nd__accumulate(r, 0, nd_mul(nd__unreduce(r, dy), nd_mul_scalar(centred, scale)));
}

/* y = softmax(x):  dx = y (dy - sum_j dy_j y_j) */
static void softmax_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_softmax_backward(r->out, dy, r->ev.axis));
}

/* y = log_softmax(x):  dx = dy - softmax(x) sum_j dy_j, softmax = e^y */
static void log_softmax_bw(const nd_record *r, const nd_tensor *dy) {
    nd_tensor *total = nd_sum(dy, (int[]){r->ev.axis}, 1, true);
    nd__accumulate(r, 0, nd_sub(dy, nd_mul(nd_exp(r->out), total)));
}

void nd__rules_reduce(nd_rule *t) {
    t[ND_OP_SUM].backward = sum_bw;
    t[ND_OP_MEAN].backward = mean_bw;
    t[ND_OP_MAX].backward = extremum_bw;
    t[ND_OP_MIN].backward = extremum_bw;
    t[ND_OP_VAR].backward = var_bw;
    t[ND_OP_SOFTMAX].backward = softmax_bw;
    t[ND_OP_LOG_SOFTMAX].backward = log_softmax_bw;
    /* sum and mean read shapes only; the softmaxes read y alone */
    t[ND_OP_SUM].values_unread = t[ND_OP_MEAN].values_unread = ND_UNREAD_ALL;
    t[ND_OP_SOFTMAX].values_unread = t[ND_OP_LOG_SOFTMAX].values_unread = ND_UNREAD_ALL;
    t[ND_OP_MAX].reads_output = t[ND_OP_MIN].reads_output = true;
    t[ND_OP_SOFTMAX].reads_output = t[ND_OP_LOG_SOFTMAX].reads_output = true;
}
