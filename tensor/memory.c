/* Memory: a counting allocator over a pool of reusable blocks, storage
 * reference counts, and scopes.
 *
 * Two lifetimes (DESIGN principle 4): tensors created outside any scope
 * live until nd_free; tensors created inside a scope are released together
 * when it ends, so one call frees everything a step allocated. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <malloc.h>
#endif

#include "internal.h"

/* Storage is aligned for the widest vector loads the kernels use. */
#define ND_ALIGN 64

/* ---- the system's memory ----------------------------------------------- */

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

/* ---- AddressSanitizer -------------------------------------------------- */

/* The pool hands out parts of larger blocks, which AddressSanitizer does
 * not see: it is told instead that the free parts and the headers between
 * blocks are out of bounds, so that an access past a tensor's end or after
 * its release is still reported. The pool's own code, which reads the
 * headers, is left unchecked. */
#if defined(__SANITIZE_ADDRESS__)
#define ND_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ND_ASAN 1
#endif
#endif
#ifdef ND_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#define POOL_CODE __attribute__((no_sanitize_address))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define POOL_CODE
#endif

/* ---- the pool ---------------------------------------------------------- */

/* Blocks of a page and more come from a pool rather than from the system
 * one by one: a step frees and allocates the same sizes every time, and
 * fresh pages cost a page fault each. The pool takes chunks from the
 * system and carves them into blocks, first fit in address order (chunks
 * in the order they were made), splitting a larger free block and merging
 * a freed one with its free neighbours. Freed space thus serves any later
 * size, so the pool grows to about the most bytes ever live at once, not
 * to the sum of each size's own peak. And a loop that repeats the same
 * allocations finds the same places and asks the system for nothing:
 * first fit takes a newer chunk only where no older one has room, so a
 * second step gets the first step's places (best fit may choose others,
 * and grow again).
 * Smaller blocks (tensor objects, records) are left to the C library.
 * What the pool holds is bounded by the most ever live, so it keeps every
 * free byte unless a cap is set: a cap below a step's needs gives memory
 * back at the step's end only to fault it in again at the next (a 1 GiB
 * cap did that to a batch-64 training step). Beyond a cap, a chunk that
 * becomes wholly free goes back to the system; nd_mem_trim returns every
 * such chunk. Figures: docs/PERFORMANCE.md, "Memory". */
#define POOL_MIN_BYTES ((size_t)4096)
#define POOL_MAX_BYTES ((size_t)1 << 30)
/* A new chunk holds at least a quarter of what the pool holds already:
 * few chunks, and a pool not much larger than its needs. */
#define CHUNK_MIN_BYTES ((size_t)4 << 20)
#define CHUNK_GROWTH 4
#define HEADER ND_ALIGN /* ahead of each chunk and of each block in it */

typedef struct pool_chunk pool_chunk;
typedef struct pool_block pool_block;

struct pool_block {
    size_t size;      /* header included: the next block starts this far on */
    pool_block *prev; /* the block before it in its chunk, NULL for the first */
    pool_chunk *chunk;
    pool_block *next_free, *prev_free; /* the free list, while free */
    bool free;
};

struct pool_chunk {
    size_t size;  /* as obtained from the system */
    uint64_t age; /* how many chunks were made before it */
    pool_chunk *next, *prev;
};

_Static_assert(sizeof(pool_block) <= HEADER && sizeof(pool_chunk) <= HEADER,
               "a header fits ahead of ND_ALIGN-aligned data");

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static size_t live_bytes, peak_bytes;
static size_t cached_bytes; /* the sizes of the free blocks, headers included */
static size_t pool_bytes;   /* the sizes of the chunks */
static size_t cache_limit = SIZE_MAX;
static pool_chunk *chunks; /* the newest first */
static uint64_t chunks_made;
static pool_block *free_list;

size_t nd_mem_live(void) { return live_bytes; }
size_t nd_mem_peak(void) { return peak_bytes; }
size_t nd_mem_cached(void) { return cached_bytes; }
void nd_mem_reset_peak(void) { peak_bytes = live_bytes; }

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

static bool pooled(size_t bytes) { return bytes >= POOL_MIN_BYTES && bytes <= POOL_MAX_BYTES; }

POOL_CODE static pool_block *first_block(pool_chunk *c) {
    return (pool_block *)((char *)c + HEADER);
}

POOL_CODE static pool_block *next_block(const pool_block *b) {
    char *end = (char *)b->chunk + b->chunk->size, *next = (char *)b + b->size;
    return next < end ? (pool_block *)next : NULL;
}

POOL_CODE static void free_list_add(pool_block *b) {
    b->free = true;
    b->prev_free = NULL;
    b->next_free = free_list;
    if (free_list) free_list->prev_free = b;
    free_list = b;
    cached_bytes += b->size;
}

POOL_CODE static void free_list_remove(pool_block *b) {
    if (b->prev_free) b->prev_free->next_free = b->next_free;
    else free_list = b->next_free;
    if (b->next_free) b->next_free->prev_free = b->prev_free;
    b->free = false;
    cached_bytes -= b->size;
}

/* Gives c back to the system if it is one free block. */
POOL_CODE static void release_if_empty(pool_chunk *c) {
    pool_block *b = first_block(c);
    if (!b->free || b->size != c->size - HEADER) return;
    free_list_remove(b);
    if (c->prev) c->prev->next = c->next;
    else chunks = c->next;
    if (c->next) c->next->prev = c->prev;
    pool_bytes -= c->size;
    UNPOISON(c, c->size);
    os_free(c);
}

/* Wholly free chunks go back, the newest (largest) first, until at most
 * keep free bytes are left or none is wholly free. */
POOL_CODE static void release_empty_chunks(size_t keep) {
    for (pool_chunk *c = chunks, *next; c && cached_bytes > keep; c = next) {
        next = c->next;
        release_if_empty(c);
    }
}

/* A chunk whose one free block holds need bytes; NULL if the system has
 * no memory even after the free chunks went back. */
POOL_CODE static pool_block *new_chunk(size_t need) {
    size_t size = round_up(HEADER + need, POOL_MIN_BYTES);
    if (size < CHUNK_MIN_BYTES) size = CHUNK_MIN_BYTES;
    if (size < pool_bytes / CHUNK_GROWTH)
        size = round_up(pool_bytes / CHUNK_GROWTH, POOL_MIN_BYTES);
    pool_chunk *c = os_alloc(size);
    if (!c) {
        release_empty_chunks(0);
        size = round_up(HEADER + need, POOL_MIN_BYTES);
        c = os_alloc(size);
    }
    if (!c) return NULL;
    /* the chunk's own header stays readable: LeakSanitizer finds the
     * chunks through it, and skips poisoned memory */
    POISON((char *)c + HEADER, size - HEADER);
    c->size = size;
    c->age = chunks_made++;
    c->prev = NULL;
    c->next = chunks;
    if (chunks) chunks->prev = c;
    chunks = c;
    pool_bytes += size;
    pool_block *b = first_block(c);
    b->size = size - HEADER;
    b->prev = NULL;
    b->chunk = c;
    free_list_add(b);
    return b;
}

/* a lies before b: in an older chunk, or lower in the same one */
POOL_CODE static bool before(const pool_block *a, const pool_block *b) {
    if (a->chunk != b->chunk) return a->chunk->age < b->chunk->age;
    return a < b;
}

/* The first free block that holds need bytes, header included, and what
 * it holds beyond them split off as a free block of its own. */
POOL_CODE static void *pool_alloc(size_t need) {
    pool_block *fit = NULL;
    for (pool_block *b = free_list; b; b = b->next_free)
        if (b->size >= need && (!fit || before(b, fit))) fit = b;
    if (!fit) fit = new_chunk(need);
    if (!fit) return NULL;
    free_list_remove(fit);
    if (fit->size - need >= HEADER + ND_ALIGN) {
        pool_block *rest = (pool_block *)((char *)fit + need);
        pool_block *after = next_block(fit);
        rest->size = fit->size - need;
        rest->prev = fit;
        rest->chunk = fit->chunk;
        if (after) after->prev = rest;
        fit->size = need;
        free_list_add(rest);
    }
    return (char *)fit + HEADER;
}

POOL_CODE static void pool_free(void *p) {
    pool_block *b = (pool_block *)((char *)p - HEADER);
    pool_block *next = next_block(b);
    if (next && next->free) {
        free_list_remove(next);
        b->size += next->size;
        next = next_block(b);
        if (next) next->prev = b;
    }
    if (b->prev && b->prev->free) {
        pool_block *prev = b->prev;
        free_list_remove(prev);
        prev->size += b->size;
        if (next) next->prev = prev;
        b = prev;
    }
    free_list_add(b);
    if (cached_bytes > cache_limit) release_if_empty(b->chunk);
}

void nd_mem_trim(void) {
    pthread_mutex_lock(&lock);
    release_empty_chunks(0);
    pthread_mutex_unlock(&lock);
}

size_t nd_mem_set_cache_limit(size_t bytes) {
    pthread_mutex_lock(&lock);
    size_t old = cache_limit;
    cache_limit = bytes;
    release_empty_chunks(bytes);
    pthread_mutex_unlock(&lock);
    return old;
}

void *nd__alloc(size_t bytes, const char *op) {
    if (bytes > SIZE_MAX / 2) nd_fatal(op, "cannot allocate %zu bytes", bytes);
    size_t size = round_up(bytes ? bytes : 1, ND_ALIGN);
    bool pool = pooled(bytes);
    void *p = NULL;
    if (!pool) {
        p = os_alloc(size);
        if (!p) {
            nd_mem_trim();
            p = os_alloc(size);
        }
    }
    pthread_mutex_lock(&lock);
    if (pool) p = pool_alloc(HEADER + size);
    if (p) {
        live_bytes += bytes;
        if (live_bytes > peak_bytes) peak_bytes = live_bytes;
    }
    pthread_mutex_unlock(&lock);
    if (!p) nd_fatal(op, "out of memory allocating %zu bytes", bytes);
    if (pool) UNPOISON(p, bytes);
    return p;
}

void nd__release(void *p, size_t bytes) {
    if (!p) return;
    bool pool = pooled(bytes);
    if (pool) POISON(p, bytes);
    pthread_mutex_lock(&lock);
    live_bytes -= bytes;
    if (pool) pool_free(p);
    pthread_mutex_unlock(&lock);
    if (!pool) os_free(p);
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
    nd__check_values(base, "view");
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

static void release_values(nd_tensor *t) {
    nd_storage *s = t->storage;
    t->storage = NULL;
    if (s && --s->refcount == 0) {
        if (!s->borrowed) nd__release(s->data, (size_t)s->size * sizeof(float));
        nd__release(s, sizeof *s);
    }
}

nd_tensor *nd_retain_shape(nd_tensor *t) {
    nd__check_tensor(t, "retain_shape");
    t->refs++;
    t->shape_refs++;
    return t;
}

void nd_release_shape(nd_tensor *t) {
    if (!t) return;
    if (t->shape_refs <= 0) nd_fatal("release_shape", "no shape reference to release");
    t->shape_refs--;
    nd_release(t);
}

void nd_restore_values(nd_tensor *t, const nd_tensor *from) {
    nd__check_tensor(t, "restore_values");
    nd__check_values(from, "restore_values");
    if (t->storage) nd_fatal("restore_values", "the tensor still has its values");
    if (!nd_same_shape(t, from) || !nd_is_contiguous(from) || !nd_is_contiguous(t))
        nd_fatal("restore_values", "the values must come contiguous and of the same shape");
    t->storage = from->storage;
    t->storage->refcount++;
    t->offset = from->offset;
}

void nd_release_unread_values(nd_tensor *t) {
    nd__check_tensor(t, "release_unread_values");
    if (t->storage && t->refs == t->shape_refs && !t->keep_values) release_values(t);
}

void nd_release(nd_tensor *t) {
    if (!t) return;
    if (--t->refs > 0) {
        if (t->refs == t->shape_refs && !t->keep_values) release_values(t);
        return;
    }
    if ((t->grad || t->record) && release_hook) release_hook(t);
    release_values(t);
    nd__release(t, sizeof *t);
}
