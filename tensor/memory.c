/* Memory: a counting allocator, storage reference counts, and scopes.
 *
 * Two lifetimes (DESIGN principle 4): tensors created outside any scope
 * live until nd_free; tensors created inside a scope are released together
 * when it ends, so one call frees everything a step allocated. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <malloc.h>
#endif

#include "internal.h"

/* Storage is aligned for the widest vector loads the kernels use. */
#define ND_ALIGN 64

/* Microsoft's C runtime has no aligned_alloc, and what its _aligned_malloc
 * returns must go back through _aligned_free. size is a multiple of
 * ND_ALIGN, as aligned_alloc asks. */
static void *os_alloc(size_t size) {
#ifdef _WIN32
    return _aligned_malloc(size, ND_ALIGN);
#else
    return aligned_alloc(ND_ALIGN, size);
#endif
}

static void os_free(void *p) {
#ifdef _WIN32
    _aligned_free(p);
#else
    free(p);
#endif
}

/* Blocks from 64 KiB up are kept for reuse instead of going back to the
 * system: a training step frees and allocates the same sizes every time,
 * and fresh pages cost a page fault each. Enough slots for every block of
 * a step (a guided sampling step, two UNet passes, frees more than 256):
 * too few, with the oldest evicted first, and every block comes fresh from
 * the system. Figures: docs/PERFORMANCE.md, "Memory". Cached bytes are
 * not live bytes; nd_mem_trim gives them back. */
#define CACHE_MIN_BYTES ((size_t)1 << 16)
#define CACHE_MAX_BYTES ((size_t)1 << 30)
#define CACHE_SLOTS 4096

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static size_t live_bytes, peak_bytes, cached_bytes;
static struct {
    void *p;
    size_t size;
} cache[CACHE_SLOTS];
static int ncached;

size_t nd_mem_live(void) { return live_bytes; }
size_t nd_mem_peak(void) { return peak_bytes; }
size_t nd_mem_cached(void) { return cached_bytes; }
void nd_mem_reset_peak(void) { peak_bytes = live_bytes; }

void nd_mem_trim(void) {
    pthread_mutex_lock(&lock);
    for (int i = 0; i < ncached; i++) os_free(cache[i].p);
    ncached = 0;
    cached_bytes = 0;
    pthread_mutex_unlock(&lock);
}

static size_t block_size(size_t bytes) {
    size_t r = (bytes + ND_ALIGN - 1) / ND_ALIGN * ND_ALIGN;
    /* Cached blocks in steps of 4 KiB below 1 MiB and of 64 KiB above, so
     * that near sizes share blocks. */
    if (r >= ((size_t)1 << 20)) r = (r + 0xffff) & ~(size_t)0xffff;
    else if (r >= CACHE_MIN_BYTES) r = (r + 0xfff) & ~(size_t)0xfff;
    return r ? r : ND_ALIGN;
}

void *nd__alloc(size_t bytes, const char *op) {
    if (bytes > SIZE_MAX / 2) nd_fatal(op, "cannot allocate %zu bytes", bytes);
    size_t size = block_size(bytes);
    void *p = NULL;
    pthread_mutex_lock(&lock);
    if (size >= CACHE_MIN_BYTES)
        for (int i = ncached - 1; i >= 0; i--)
            if (cache[i].size == size) {
                p = cache[i].p;
                cached_bytes -= size;
                cache[i] = cache[--ncached];
                break;
            }
    pthread_mutex_unlock(&lock);
    if (!p) p = os_alloc(size);
    if (!p) {
        nd_mem_trim();
        p = os_alloc(size);
    }
    if (!p) nd_fatal(op, "out of memory allocating %zu bytes", bytes);
    pthread_mutex_lock(&lock);
    live_bytes += bytes;
    if (live_bytes > peak_bytes) peak_bytes = live_bytes;
    pthread_mutex_unlock(&lock);
    return p;
}

void nd__release(void *p, size_t bytes) {
    if (!p) return;
    size_t size = block_size(bytes);
    pthread_mutex_lock(&lock);
    live_bytes -= bytes;
    if (size >= CACHE_MIN_BYTES && size <= CACHE_MAX_BYTES) {
        /* Make room: the oldest blocks go first. */
        while (ncached > 0 && (ncached == CACHE_SLOTS || cached_bytes + size > CACHE_MAX_BYTES)) {
            os_free(cache[0].p);
            cached_bytes -= cache[0].size;
            memmove(cache, cache + 1, (size_t)(--ncached) * sizeof cache[0]);
        }
        cache[ncached].p = p;
        cache[ncached++].size = size;
        cached_bytes += size;
        p = NULL;
    }
    pthread_mutex_unlock(&lock);
    os_free(p);
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
