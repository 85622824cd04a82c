/* Backward rules of the views, joins, indexing and matmul (forwards:
 * tensor/view.c, tensor/join.c, tensor/index.c, tensor/matmul.c). A view's
 * backward is the inverse view of dy; a join's is the matching slice of
 * dy; index_select and index_add are each other's backward. */
#include <string.h>

#include "internal.h"

#define X(r) ((r)->ins[0])

/* y = reshape(x):  dx = reshape(dy, x.shape) */
static void view_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_reshape(dy, X(r)->shape, X(r)->ndim));
}

/* y = permute(x, p):  dx = permute(dy, p^-1) */
static void permute_bw(const nd_record *r, const nd_tensor *dy) {
    int inverse[ND_MAX_DIMS];
    for (int i = 0; i < dy->ndim; i++) inverse[r->ev.args[i]] = i;
    nd__accumulate(r, 0, nd_permute(dy, inverse, dy->ndim));
}

/* y = x[start::step] along axis:  dx = zeros with dy scattered back */
static void slice_bw(const nd_record *r, const nd_tensor *dy) {
    const nd_tensor *x = X(r);
    int a = r->ev.axis;
    int64_t start = r->ev.args[0], step = r->ev.args[1];
    nd_tensor *dx = nd_zeros(x->shape, x->ndim);
    int64_t stop = start + (dy->shape[a] - 1) * step + 1;
    nd_tensor *window = nd_slice(dx, a, start, dy->shape[a] > 0 ? stop : start, step);
    nd_copy_(window, dy);
    nd__accumulate(r, 0, dx);
}

/* y = expand(x):  dx = dy summed over the repeated axes (nd__accumulate) */
static void expand_bw(const nd_record *r, const nd_tensor *dy) { nd__accumulate(r, 0, dy); }

/* y = squeeze(x, a):  dx = unsqueeze(dy, a), and the reverse */
static void squeeze_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_unsqueeze(dy, r->ev.axis));
}
static void unsqueeze_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, nd_squeeze(dy, r->ev.axis));
}

/* y = x (contiguous, clone):  dx = dy */
static void identity_bw(const nd_record *r, const nd_tensor *dy) { nd__accumulate(r, 0, dy); }

/* y = concat(x_0, x_1, ...) along a:  dx_k = dy[offset_k : offset_k + n_k] */
static void concat_bw(const nd_record *r, const nd_tensor *dy) {
    int a = r->ev.axis;
    int64_t at = 0;
    for (int k = 0; k < r->ev.nin; k++) {
        int64_t n = r->ins[k]->shape[a];
        nd__accumulate(r, k, nd_slice(dy, a, at, at + n, 1));
        at += n;
    }
}

/* y = stack(x_0, x_1, ...) along a:  dx_k = dy[k] along a */
static void stack_bw(const nd_record *r, const nd_tensor *dy) {
    int a = r->ev.axis;
    for (int k = 0; k < r->ev.nin; k++)
        nd__accumulate(r, k, nd_squeeze(nd_slice(dy, a, k, k + 1, 1), a));
}

/* y = pad(x):  dx = the interior of dy */
static void pad_bw(const nd_record *r, const nd_tensor *dy) {
    const nd_tensor *x = X(r);
    const nd_tensor *g = dy;
    for (int i = 0; i < x->ndim; i++) {
        int64_t before = r->ev.args[2 * i];
        g = nd_slice(g, i, before, before + x->shape[i], 1);
    }
    nd__accumulate(r, 0, g);
}

/* y[.., k, ..] = x[.., index[k], ..]:  dx = zeros, then dx[.., index[k], ..]
 * += dy[.., k, ..] (an index that repeats collects every slice it picked) */
static void index_select_bw(const nd_record *r, const nd_tensor *dy) {
    const nd_tensor *x = X(r);
    nd__accumulate(r, 0, nd_index_add(nd_zeros(x->shape, x->ndim), r->ev.axis, r->ins[1], dy));
}

/* y = x; y[.., index[k], ..] += src[.., k, ..]:  dx = dy,
 * dsrc[.., k, ..] = dy[.., index[k], ..] */
static void index_add_bw(const nd_record *r, const nd_tensor *dy) {
    nd__accumulate(r, 0, dy);
    if (r->ins[2]->requires_grad)
        nd__accumulate(r, 2, nd_index_select(dy, r->ev.axis, r->ins[1]));
}

/* y = a b (batched), y[i,j] = sum_p a[i,p] b[p,j] (tensor/matmul.c):
 *   da[i,p] = sum_j dy[i,j] b[p,j] = (dy b^T)[i,p],  db = a^T dy,
 * each summed over the batch axes its operand was broadcast along. A 1-d
 * a is the row (1, k) and a 1-d b the column (k, 1); dy gets those axes
 * back first. */
static void matmul_bw(const nd_record *r, const nd_tensor *dy) {
    const nd_tensor *a = r->ins[0], *b = r->ins[1];
    const nd_tensor *a2 = a->ndim == 1 ? nd_unsqueeze(a, 0) : a;
    const nd_tensor *b2 = b->ndim == 1 ? nd_unsqueeze(b, 1) : b;
    int64_t full[ND_MAX_DIMS];
    int nb = dy->ndim - (a->ndim > 1) - (b->ndim > 1);
    memcpy(full, dy->shape, sizeof(int64_t) * (size_t)nb);
    full[nb] = a2->shape[a2->ndim - 2];
    full[nb + 1] = b2->shape[b2->ndim - 1];
    nd_tensor *g = nd_reshape(dy, full, nb + 2);
    if (a->requires_grad) {
        nd_tensor *da = nd_matmul(g, nd_transpose(b2, -1, -2));
        nd__accumulate(r, 0, a->ndim == 1 ? nd_squeeze(da, -2) : da);
    }
    if (b->requires_grad) {
        nd_tensor *db = nd_matmul(nd_transpose(a2, -1, -2), g);
        nd__accumulate(r, 1, b->ndim == 1 ? nd_squeeze(db, -1) : db);
    }
}

void nd__rules_shape(nd_rule *t) {
    t[ND_OP_VIEW].backward = view_bw;
    t[ND_OP_PERMUTE].backward = permute_bw;
    t[ND_OP_SLICE].backward = slice_bw;
    t[ND_OP_EXPAND].backward = expand_bw;
    t[ND_OP_SQUEEZE].backward = squeeze_bw;
    t[ND_OP_UNSQUEEZE].backward = unsqueeze_bw;
    t[ND_OP_CONTIGUOUS].backward = identity_bw;
    t[ND_OP_CLONE].backward = identity_bw;
    t[ND_OP_CONCAT].backward = concat_bw;
    t[ND_OP_STACK].backward = stack_bw;
    t[ND_OP_PAD].backward = pad_bw;
    t[ND_OP_INDEX_SELECT].backward = index_select_bw;
    t[ND_OP_INDEX_ADD].backward = index_add_bw;
    t[ND_OP_MATMUL].backward = matmul_bw;
    /* moving values around needs the shapes alone (and the indices) */
    const nd_op unread[] = {ND_OP_VIEW,       ND_OP_PERMUTE,   ND_OP_SLICE,
                            ND_OP_EXPAND,     ND_OP_SQUEEZE,   ND_OP_UNSQUEEZE,
                            ND_OP_CONTIGUOUS, ND_OP_CLONE,     ND_OP_CONCAT,
                            ND_OP_STACK,      ND_OP_PAD};
    for (size_t i = 0; i < sizeof unread / sizeof *unread; i++)
        t[unread[i]].values_unread = ND_UNREAD_ALL;
    t[ND_OP_INDEX_SELECT].values_unread = 1u << 0;
    t[ND_OP_INDEX_ADD].values_unread = 1u << 0 | 1u << 2;
}
