/* Cross entropy of class scores against labels, the classifier's loss:
 *   loss = -1/N sum_n log softmax(logits_n)[label_n]
 * logits [N, K], labels [N] whole numbers in [0, K) -> a 0-d tensor. The
 * label picks its column through a one-hot mask, so the gradient,
 * softmax(logits_n) - onehot(label_n) over N, comes from the tape. */
#include <math.h>

#include "nn.h"

nd_tensor *nd_cross_entropy(const nd_tensor *logits, const nd_tensor *labels) {
    const char *op = "cross_entropy";
    char sl[ND_SHAPE_STR_LEN], sy[ND_SHAPE_STR_LEN];
    if (!logits || !labels || logits->ndim != 2 || labels->ndim != 1 ||
        labels->shape[0] != logits->shape[0] || logits->shape[0] < 1 || logits->shape[1] < 1)
        nd_fatal(op, "needs logits [N, K] and labels [N], N, K >= 1; got logits %s and labels %s",
                 logits ? nd_shape_str(logits->shape, logits->ndim, sl) : "NULL",
                 labels ? nd_shape_str(labels->shape, labels->ndim, sy) : "NULL");
    int64_t n = logits->shape[0], k = logits->shape[1];
    nd_tensor *y = nd_contiguous(labels);
    nd_tensor *onehot = nd_zeros(ND_SHAPE(n, k));
    for (int64_t i = 0; i < n; i++) {
        float c = nd_data(y)[i];
        if (!(c >= 0.0f && c < (float)k && c == floorf(c)))
            nd_fatal(op, "label %g of example %lld is not a class in 0..%lld", c, (long long)i,
                     (long long)k - 1);
        nd_data(onehot)[i * k + (int64_t)c] = 1.0f;
    }
    const int classes_axis[] = {1};
    nd_tensor *picked = nd_sum(nd_mul(nd_log_softmax(logits, 1), onehot), classes_axis, 1, false);
    return nd_neg(nd_mean(picked, NULL, 0, false));
}
