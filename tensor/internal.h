/* Private helpers shared by the files of tensor/. Not installed. */
#ifndef NANODIFF_TENSOR_INTERNAL_H
#define NANODIFF_TENSOR_INTERNAL_H

#include "tensor.h"

struct nd_storage {
    float *data;
    int64_t size;  /* elements */
    int refcount;  /* tensors viewing this storage */
    bool borrowed; /* caller's memory (nd_wrap_buffer): never freed here */
};

/* Counted allocation: every byte the layer holds goes through these. */
void *nd__alloc(size_t bytes, const char *op);
void nd__release(void *p, size_t bytes);

/* Opens path for reading and finds its size; directories, devices and
 * FIFOs are refused (without waiting on a FIFO's writer). Messages start
 * with the path; on ND_ERR nothing is left open. (tensor/file.c) */
int nd__open_regular(const char *path, int *fd, uint64_t *size, nd_error *err);
/* The most bytes one read() or write() is asked for: Windows counts them
 * in an int. */
#define ND_IO_CHUNK ((size_t)1 << 30)

/* What the library asks of the operating system, one file per system
 * (tensor/os_posix.c, tensor/os_windows.c). Files are binary; calls that
 * fail return -1 (open) or an errno value and leave errno set. */
/* Read-only, without waiting on a FIFO's writer; then blocking again. */
int nd__os_open_read(const char *path);
int nd__os_set_blocking(int fd);
/* A new file (fails if path exists), held so that nd__os_remove_unheld
 * from another process leaves it alone while this one has it open. */
int nd__os_create_locked(const char *path);
/* fd's bytes on the disk, not only in the system's cache. */
int nd__os_sync(int fd);
/* from renamed over to, in one step. */
int nd__os_replace(const char *from, const char *to);
/* Makes a rename in dir last (best effort). */
void nd__os_sync_folder(const char *dir);
long nd__os_pid(void);
bool nd__os_process_alive(long pid);
/* Removes path if it is a regular file that no process holds. */
void nd__os_remove_unheld(const char *path);
/* fn(ctx, name) for each entry of dir; nothing if dir cannot be read. */
void nd__os_list(const char *dir, void (*fn)(void *ctx, const char *name), void *ctx);
/* CPUs online, in 1..4096. */
int nd__os_cpu_count(void);

/* A new contiguous tensor with uninitialised data. */
nd_tensor *nd__new(const int64_t *shape, int ndim, const char *op);
/* A new tensor object viewing base's storage. */
nd_tensor *nd__view_of(const nd_tensor *base, int ndim, const int64_t *shape,
                       const int64_t *strides, int64_t offset);

void nd__contiguous_strides(const int64_t *shape, int ndim, int64_t *strides);
int64_t nd__prod(const int64_t *shape, int ndim);
void nd__check_tensor(const nd_tensor *t, const char *op);
void nd__check_values(const nd_tensor *t, const char *op); /* and its values are there */
void nd__check_shape(const int64_t *shape, int ndim, const char *op);
/* A possibly negative axis of an ndim-d tensor, made non-negative. */
int nd__axis(int axis, int ndim, const char *op);
/* Broadcast shapes a and b (NumPy rules); stops naming op if impossible. */
int nd__broadcast_shape(const int64_t *a, int na, const int64_t *b, int nb,
                        int64_t *out, const char *op);
/* The strides of x seen through shape (ndim >= x->ndim, broadcastable):
 * leading and stretched axes get stride 0. */
void nd__broadcast_strides(const nd_tensor *x, const int64_t *shape, int ndim,
                           int64_t *strides);

/* Op events. An op that runs other ops as steps of its own raises
 * nd__quiet around them, so that only the op itself is reported. */
extern int nd__quiet;
void nd__emit(const nd_op_event *event);
/* The common case: one or two inputs, no arguments. */
void nd__emit_simple(nd_op op, nd_tensor *out, const nd_tensor *a,
                     const nd_tensor *b);

/* Run fn(ctx, c, w) for every chunk c in [0, nchunks) on the thread pool;
 * w in [0, nd_get_num_threads()) names the thread, for per-thread scratch.
 * Chunks must be independent and cut without regard to the thread count. */
typedef void (*nd_chunk_fn)(void *ctx, int64_t chunk, int worker);
void nd__parallel_for(int64_t nchunks, nd_chunk_fn fn, void *ctx);
/* Whether the calling thread is running a chunk: a nested nd__parallel_for
 * then runs its chunks in place, one after the other. */
bool nd__in_parallel(void);

/* Strided loops. Calls row(ctx, n, p, s) once per innermost row, where
 * p[k] points at operand k's first element of the row and s[k] is its
 * stride along the row. Axes are first coalesced wherever every operand
 * allows it, so contiguous data arrives as one long row. Rows come in
 * row-major order. */
#define ND_MAX_OPERANDS 4
typedef void (*nd_row_fn)(void *ctx, int64_t n, float *const *p,
                          const int64_t *s);
void nd__loop(int nops, int ndim, const int64_t *shape,
              const int64_t (*strides)[ND_MAX_DIMS], float *const *base,
              nd_row_fn row, void *ctx);
/* nd__loop on the thread pool, for rows that are independent of each
 * other (each writes only its own elements): the coalesced rows are cut
 * into chunks of about `grain` elements, whole rows or pieces of one long
 * row, with bounds that depend only on the shapes. row may then run on
 * several threads at once, on any of the chunks. */
void nd__loop_parallel(int nops, int ndim, const int64_t *shape,
                       const int64_t (*strides)[ND_MAX_DIMS], float *const *base,
                       nd_row_fn row, void *ctx, int64_t grain);
/* The grain of elementwise ops, reductions and softmax: about a quarter
 * of a MiB of floats per chunk, large enough to hide the pool's overhead,
 * small enough to spread a tensor of a few MiB over the threads. */
#define ND_GRAIN 65536

/* Hints to start loading the cache line at p, into every level
 * (ND_PREFETCH) or into L2 and beyond, not L1 (ND_PREFETCH_L2); they
 * never fault. Where the compiler offers no such builtin, nothing. */
#if defined(__GNUC__) || defined(__clang__)
#define ND_PREFETCH(p) __builtin_prefetch(p)
#define ND_PREFETCH_L2(p) __builtin_prefetch((p), 0, 2)
#else
#define ND_PREFETCH(p) ((void)(p))
#define ND_PREFETCH_L2(p) ((void)(p))
#endif

#endif
