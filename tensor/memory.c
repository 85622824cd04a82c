/* Memory: a counting allocator, storage reference counts, and scopes.
 *
 * Two lifetimes (DESIGN principle 4): tensors created outside any scope
 * live until nd_free; tensors created inside a scope are released together
 * when it ends, so one call frees everything a step allocated. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Storage is aligned for the widest vector loads the kernels use. */
#define ND_ALIGN 64

static size_t live_bytes, peak_bytes;

size_t nd_mem_live(void) { return live_bytes; }
size_t nd_mem_peak(void) { return peak_bytes; }
void nd_mem_reset_peak(void) { peak_bytes = live_bytes; }

void *nd__alloc(size_t bytes, const char *op) {
    size_t rounded = (bytes + ND_ALIGN - 1) / ND_ALIGN * ND_ALIGN;
    if (rounded < bytes) nd_fatal(op, "cannot allocate %zu bytes", bytes);
    void *p = aligned_alloc(ND_ALIGN, rounded ? rounded : ND_ALIGN);
    if (!p) nd_fatal(op, "out of memory allocating %zu bytes", bytes);
    live_bytes += bytes;
    if (live_bytes > peak_bytes) peak_bytes = live_bytes;
    return p;
}

void nd__release(void *p, size_t bytes) {
    if (!p) return;
    live_bytes -= bytes;
    free(p);
}

void *nd_alloc(size_t bytes) { return nd__alloc(bytes, "alloc"); }
void nd_dealloc(void *p, size_t bytes) { nd__release(p, bytes); }

/* ---- scopes ------------------------------------------------------------ */

struct nd_scope {
    nd_tensor *head; /* tensors owned, most recent first */
    nd_scope *parent;
};

static nd_scope *innermost;

static void scope_link(nd_scope *s, nd_tensor *t) {
    t->scope = s;
    t->scope_prev = NULL;
    t->scope_next = s ? s->head : NULL;
    if (s) {
        if (s->head) s->head->scope_prev = t;
        s->head = t;
    }
}

static void scope_unlink(nd_tensor *t) {
    nd_scope *s = t->scope;
    if (!s) return;
    if (t->scope_prev) t->scope_prev->scope_next = t->scope_next;
    else s->head = t->scope_next;
    if (t->scope_next) t->scope_next->scope_prev = t->scope_prev;
    t->scope = NULL;
    t->scope_prev = t->scope_next = NULL;
}

nd_scope *nd_scope_begin(void) {
    nd_scope *s = nd__alloc(sizeof *s, "scope_begin");
    s->head = NULL;
    s->parent = innermost;
    innermost = s;
    return s;
}

void nd_scope_end(nd_scope *s) {
    if (!s) nd_fatal("scope_end", "scope is NULL");
    if (s != innermost)
        nd_fatal("scope_end", "scopes must end innermost first");
    while (s->head) nd_free(s->head);
    innermost = s->parent;
    nd__release(s, sizeof *s);
}

nd_tensor *nd_keep(nd_tensor *t) {
    nd__check_tensor(t, "keep");
    if (!t->scope) return t;
    nd_scope *parent = t->scope->parent;
    scope_unlink(t);
    scope_link(parent, t);
    return t;
}

nd_tensor *nd_persist(nd_tensor *t) {
    nd__check_tensor(t, "persist");
    scope_unlink(t);
    return t;
}

/* ---- tensors and storage ----------------------------------------------- */

static nd_tensor *tensor_object(void) {
    nd_tensor *t = nd__alloc(sizeof *t, "tensor");
    memset(t, 0, sizeof *t);
    t->refs = 1;
    scope_link(innermost, t);
    return t;
}

nd_tensor *nd__new(const int64_t *shape, int ndim, const char *op) {
    nd__check_shape(shape, ndim, op);
    int64_t n = nd__prod(shape, ndim);
    if ((uint64_t)n > SIZE_MAX / sizeof(float))
        nd_fatal(op, "tensor of %lld elements is too large", (long long)n);
    nd_storage *s = nd__alloc(sizeof *s, op);
    s->data = nd__alloc((size_t)n * sizeof(float), op);
    s->size = n;
    s->refcount = 1;
    s->borrowed = false;
    nd_tensor *t = tensor_object();
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    nd__contiguous_strides(shape, ndim, t->strides);
    t->offset = 0;
    t->storage = s;
    return t;
}

nd_tensor *nd__view_of(const nd_tensor *base, int ndim, const int64_t *shape,
                       const int64_t *strides, int64_t offset) {
    nd_tensor *t = tensor_object();
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->strides[i] = strides[i];
    }
    t->offset = offset;
    t->storage = base->storage;
    t->storage->refcount++;
    return t;
}

nd_tensor *nd_wrap_buffer(float *data, const int64_t *shape, int ndim) {
    nd__check_shape(shape, ndim, "wrap_buffer");
    if (!data) nd_fatal("wrap_buffer", "data is NULL");
    nd_storage *s = nd__alloc(sizeof *s, "wrap_buffer");
    s->data = data;
    s->size = nd__prod(shape, ndim);
    s->refcount = 1;
    s->borrowed = true;
    nd_tensor *t = tensor_object();
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    nd__contiguous_strides(shape, ndim, t->strides);
    t->storage = s;
    return t;
}

static nd_release_hook release_hook;

nd_release_hook nd_set_release_hook(nd_release_hook hook) {
    nd_release_hook old = release_hook;
    release_hook = hook;
    return old;
}

nd_tensor *nd_retain(nd_tensor *t) {
    nd__check_tensor(t, "retain");
    t->refs++;
    return t;
}

void nd_free(nd_tensor *t) {
    if (!t) return;
    scope_unlink(t);
    nd_release(t);
}

void nd_release(nd_tensor *t) {
    if (!t) return;
    if (--t->refs > 0) return;
    if ((t->grad || t->record) && release_hook) release_hook(t);
    nd_storage *s = t->storage;
    if (s && --s->refcount == 0) {
        if (!s->borrowed) nd__release(s->data, (size_t)s->size * sizeof(float));
        nd__release(s, sizeof *s);
    }
    nd__release(t, sizeof *t);
}
