/* Shapes, strides, broadcasting and the strided loop every kernel runs on. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

int64_t nd__prod(const int64_t *shape, int ndim) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

void nd__contiguous_strides(const int64_t *shape, int ndim, int64_t *strides) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i] > 0 ? shape[i] : 1;
    }
}

char *nd_shape_str(const int64_t *shape, int ndim, char *buf) {
    size_t n = 0;
    buf[n++] = '[';
    for (int i = 0; i < ndim && n < ND_SHAPE_STR_LEN - 24; i++)
        n += (size_t)snprintf(buf + n, ND_SHAPE_STR_LEN - n, i ? ",%lld" : "%lld",
                              (long long)shape[i]);
    snprintf(buf + n, ND_SHAPE_STR_LEN - n, "]");
    return buf;
}

static ND_NORETURN void values_released(const nd_tensor *t, const char *op) {
    char a[ND_SHAPE_STR_LEN];
    nd_fatal(op, "the values of this %s tensor were released: only references to "
             "its shape (nd_retain_shape) were left", nd_shape_str(t->shape, t->ndim, a));
}

void nd__check_tensor(const nd_tensor *t, const char *op) {
    if (!t) nd_fatal(op, "tensor is NULL");
}

void nd__check_values(const nd_tensor *t, const char *op) {
    nd__check_tensor(t, op);
    if (!t->storage) values_released(t, op);
}

void nd__check_shape(const int64_t *shape, int ndim, const char *op) {
    if (ndim < 0 || ndim > ND_MAX_DIMS)
        nd_fatal(op, "%d dimensions requested; between 0 and %d are supported",
                 ndim, ND_MAX_DIMS);
    if (ndim > 0 && !shape) nd_fatal(op, "shape is NULL");
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            char s[ND_SHAPE_STR_LEN];
            nd_fatal(op, "negative size in shape %s", nd_shape_str(shape, ndim, s));
        }
        if (shape[i] > 0 && n > INT64_MAX / shape[i]) {
            char s[ND_SHAPE_STR_LEN];
            nd_fatal(op, "shape %s has too many elements", nd_shape_str(shape, ndim, s));
        }
        n *= shape[i];
    }
}

int nd__axis(int axis, int ndim, const char *op) {
    if (axis < -ndim || axis >= ndim || (ndim == 0))
        nd_fatal(op, "axis %d is out of range for a %d-d tensor", axis, ndim);
    return axis < 0 ? axis + ndim : axis;
}

int nd__broadcast_shape(const int64_t *a, int na, const int64_t *b, int nb,
                        int64_t *out, const char *op) {
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : a[i - (n - na)];
        int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
        if (da != db && da != 1 && db != 1) {
            char sa[ND_SHAPE_STR_LEN], sb[ND_SHAPE_STR_LEN];
            nd_fatal(op, "shapes %s and %s do not broadcast",
                     nd_shape_str(a, na, sa), nd_shape_str(b, nb, sb));
        }
        out[i] = da == 1 ? db : da;
    }
    return n;
}

void nd__broadcast_strides(const nd_tensor *x, const int64_t *shape, int ndim,
                           int64_t *strides) {
    int lead = ndim - x->ndim;
    for (int i = 0; i < ndim; i++) {
        if (i < lead) strides[i] = 0;
        else if (x->shape[i - lead] == 1 && shape[i] != 1) strides[i] = 0;
        else strides[i] = x->strides[i - lead];
    }
}

/* The iteration space of nd__loop after coalescing: nd axes (the last is
 * the row), operand k's stride st[k][i] along axis i. */
typedef struct {
    int nops, nd;
    int64_t sh[ND_MAX_DIMS];
    int64_t st[ND_MAX_OPERANDS][ND_MAX_DIMS];
} loop_space;

/* Drop size-1 axes, then merge axis i into i+1 wherever, for every
 * operand, stepping once along i equals stepping shape[i+1] times along
 * i+1. Returns false for an empty shape. */
static bool coalesce(int nops, int ndim, const int64_t *shape,
                     const int64_t (*strides)[ND_MAX_DIMS], loop_space *L) {
    L->nops = nops;
    int nd = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0) return false;
        if (shape[i] == 1) continue;
        L->sh[nd] = shape[i];
        for (int k = 0; k < nops; k++) L->st[k][nd] = strides[k][i];
        nd++;
    }
    if (nd == 0) {
        L->sh[0] = 1;
        for (int k = 0; k < nops; k++) L->st[k][0] = 0;
        nd = 1;
    }
    int m = 0;
    for (int i = 1; i < nd; i++) {
        bool merge = true;
        for (int k = 0; k < nops; k++)
            if (L->st[k][m] != L->st[k][i] * L->sh[i]) merge = false;
        if (merge) {
            L->sh[m] *= L->sh[i];
            for (int k = 0; k < nops; k++) L->st[k][m] = L->st[k][i];
        } else {
            m++;
            L->sh[m] = L->sh[i];
            for (int k = 0; k < nops; k++) L->st[k][m] = L->st[k][i];
        }
    }
    L->nd = m + 1;
    return true;
}

/* Rows first to first + count - 1 (row-major over the outer axes), each
 * from element `from` of the row, `len` elements long. */
static void run_rows(const loop_space *L, float *const *base, int64_t first,
                     int64_t count, int64_t from, int64_t len, nd_row_fn row,
                     void *ctx) {
    int nd = L->nd, nops = L->nops;
    int64_t idx[ND_MAX_DIMS] = {0};
    float *p[ND_MAX_OPERANDS];
    int64_t s[ND_MAX_OPERANDS];
    for (int64_t i = nd - 2, rest = first; i >= 0; i--) {
        idx[i] = rest % L->sh[i];
        rest /= L->sh[i];
    }
    for (int k = 0; k < nops; k++) {
        s[k] = L->st[k][nd - 1];
        p[k] = base[k] + from * s[k];
        for (int i = 0; i < nd - 1; i++) p[k] += idx[i] * L->st[k][i];
    }
    for (int64_t r = 0; r < count; r++) {
        row(ctx, len, p, s);
        if (r + 1 == count) break;
        for (int i = nd - 2; i >= 0; i--) {
            for (int k = 0; k < nops; k++) p[k] += L->st[k][i];
            if (++idx[i] < L->sh[i]) break;
            for (int k = 0; k < nops; k++) p[k] -= L->st[k][i] * L->sh[i];
            idx[i] = 0;
        }
    }
}

void nd__loop(int nops, int ndim, const int64_t *shape,
              const int64_t (*strides)[ND_MAX_DIMS], float *const *base,
              nd_row_fn row, void *ctx) {
    loop_space L;
    if (!coalesce(nops, ndim, shape, strides, &L)) return;
    run_rows(&L, base, 0, nd__prod(L.sh, L.nd - 1), 0, L.sh[L.nd - 1], row, ctx);
}

/* Chunk c of a parallel loop: rows_per_chunk whole rows, or (when a row
 * is longer than the grain) one piece of `piece` elements of one row. */
typedef struct {
    loop_space L;
    float *const *base;
    nd_row_fn row;
    void *ctx;
    int64_t nrows, n, rows_per_chunk, pieces, piece;
} parallel_loop;

static void loop_chunk(void *ctx, int64_t c, int worker) {
    (void)worker;
    const parallel_loop *pl = ctx;
    if (pl->pieces > 1) {
        int64_t from = (c % pl->pieces) * pl->piece;
        int64_t len = pl->n - from < pl->piece ? pl->n - from : pl->piece;
        run_rows(&pl->L, pl->base, c / pl->pieces, 1, from, len, pl->row, pl->ctx);
    } else {
        int64_t first = c * pl->rows_per_chunk;
        int64_t count = pl->nrows - first < pl->rows_per_chunk ? pl->nrows - first
                                                               : pl->rows_per_chunk;
        run_rows(&pl->L, pl->base, first, count, 0, pl->n, pl->row, pl->ctx);
    }
}

void nd__loop_parallel(int nops, int ndim, const int64_t *shape,
                       const int64_t (*strides)[ND_MAX_DIMS], float *const *base,
                       nd_row_fn row, void *ctx, int64_t grain) {
    parallel_loop pl = {.base = base, .row = row, .ctx = ctx};
    if (!coalesce(nops, ndim, shape, strides, &pl.L)) return;
    pl.n = pl.L.sh[pl.L.nd - 1];
    pl.nrows = nd__prod(pl.L.sh, pl.L.nd - 1);
    if (grain < 1) grain = 1;
    int64_t nchunks;
    if (pl.n > grain) {
        pl.piece = grain;
        pl.pieces = (pl.n + grain - 1) / grain;
        nchunks = pl.nrows * pl.pieces;
    } else {
        pl.pieces = 1;
        pl.rows_per_chunk = grain / pl.n;
        nchunks = (pl.nrows + pl.rows_per_chunk - 1) / pl.rows_per_chunk;
    }
    if (nchunks == 1) {
        run_rows(&pl.L, base, 0, pl.nrows, 0, pl.n, row, ctx);
        return;
    }
    nd__parallel_for(nchunks, loop_chunk, &pl);
}

/* ---- inspection -------------------------------------------------------- */

int64_t nd_numel(const nd_tensor *t) {
    nd__check_tensor(t, "numel");
    return nd__prod(t->shape, t->ndim);
}

int64_t nd_size(const nd_tensor *t, int axis) {
    nd__check_tensor(t, "size");
    return t->shape[nd__axis(axis, t->ndim, "size")];
}

bool nd_is_contiguous(const nd_tensor *t) {
    nd__check_tensor(t, "is_contiguous");
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] == 0) return true;
        if (t->shape[i] != 1 && t->strides[i] != expect) return false;
        expect *= t->shape[i];
    }
    return true;
}

bool nd_owns_storage(const nd_tensor *t) {
    nd__check_values(t, "owns_storage");
    const nd_storage *st = t->storage;
    return st->refcount == 1 && !st->borrowed && t->offset == 0 &&
           nd_numel(t) == st->size && nd_is_contiguous(t);
}

bool nd_same_shape(const nd_tensor *a, const nd_tensor *b) {
    nd__check_tensor(a, "same_shape");
    nd__check_tensor(b, "same_shape");
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

float *nd_data(const nd_tensor *t) {
    nd__check_values(t, "data");
    return t->storage->data + t->offset;
}

static int64_t element_offset(const nd_tensor *t, const int64_t *index,
                              const char *op) {
    nd__check_values(t, op);
    if (t->ndim > 0 && !index) nd_fatal(op, "index is NULL");
    int64_t off = t->offset;
    for (int i = 0; i < t->ndim; i++) {
        if (index[i] < 0 || index[i] >= t->shape[i]) {
            char s[ND_SHAPE_STR_LEN];
            nd_fatal(op, "index %lld is out of range for axis %d of shape %s",
                     (long long)index[i], i, nd_shape_str(t->shape, t->ndim, s));
        }
        off += index[i] * t->strides[i];
    }
    return off;
}

float nd_get(const nd_tensor *t, const int64_t *index) {
    int64_t off = element_offset(t, index, "get");
    return t->storage->data[off];
}

void nd_set(nd_tensor *t, const int64_t *index, float value) {
    int64_t off = element_offset(t, index, "set");
    t->storage->data[off] = value;
}

float nd_item(const nd_tensor *t) {
    nd__check_values(t, "item");
    if (nd_numel(t) != 1) {
        char s[ND_SHAPE_STR_LEN];
        nd_fatal("item", "tensor of shape %s has %lld elements, not one",
                 nd_shape_str(t->shape, t->ndim, s), (long long)nd_numel(t));
    }
    return t->storage->data[t->offset];
}
