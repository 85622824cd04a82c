/* nanodiff tensor layer: strided float32 tensors over shared storage.
 *
 * A tensor is a view: shape + strides + offset into a reference-counted
 * storage. Views (reshape, permute, slice, expand, ...) share storage and
 * copy nothing; every other op returns a new contiguous tensor.
 *
 * Conventions
 *   - Shapes are passed as (const int64_t *shape, int ndim); ND_SHAPE(2,3)
 *     expands to exactly that pair. 0-d tensors (scalars) have ndim 0.
 *   - Axes may be negative (-1 is the last axis), as in NumPy and PyTorch.
 *   - Misuse of the API (bad shapes, bad axes, NULL tensors) stops the
 *     program with one line on stderr: "nanodiff: <op>: <what is wrong>".
 *     Functions that read the outside world return ND_OK / ND_ERR and fill
 *     an nd_error instead; they never stop the program.
 *   - Every op returns a new tensor object owned by the caller. It is
 *     released by nd_free, or at nd_scope_end if a scope was open when it
 *     was created.
 *   - The API is used from one thread; kernels may use several internally.
 */
#ifndef NANODIFF_TENSOR_H
#define NANODIFF_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ND_MAX_DIMS 8

#if defined(__cplusplus)
#define ND_NORETURN [[noreturn]]
#else
#define ND_NORETURN _Noreturn
#endif
#if defined(__MINGW32__)
/* MinGW: the messages go through its C99 printf (%zu, %lld), which
 * __USE_MINGW_ANSI_STDIO selects, not Microsoft's. */
#define ND_PRINTF(fmt_index, first_arg)                                        \
    __attribute__((format(gnu_printf, fmt_index, first_arg)))
#elif defined(__GNUC__) || defined(__clang__)
#define ND_PRINTF(fmt_index, first_arg)                                        \
    __attribute__((format(printf, fmt_index, first_arg)))
#else
#define ND_PRINTF(fmt_index, first_arg)
#endif

/* ND_SHAPE(2, 3) -> (const int64_t[]){2, 3}, 2 */
#define ND_SHAPE(...)                                                          \
    ((const int64_t[]){__VA_ARGS__}),                                          \
        ((int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
/* ND_AXES(0, 2) -> (const int[]){0, 2}, 2 */
#define ND_AXES(...)                                                           \
    ((const int[]){__VA_ARGS__}),                                              \
        ((int)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int)))
/* Slice stop meaning "to the end of the axis". */
#define ND_END INT64_MAX

typedef struct nd_storage nd_storage;
typedef struct nd_scope nd_scope;

/* Fields are public for reading; change them only through the API. */
typedef struct nd_tensor {
    int ndim;
    int64_t shape[ND_MAX_DIMS];
    int64_t strides[ND_MAX_DIMS]; /* in elements; 0 on broadcast axes */
    int64_t offset;               /* in elements, into storage */
    nd_storage *storage;
    /* lifetime: the scope that owns this tensor (if any) and the number of
     * references (its owner's, plus one per nd_retain) */
    nd_scope *scope;
    struct nd_tensor *scope_prev, *scope_next;
    int refs;
    /* Of refs, those that need only the shape (nd_retain_shape). Once they
     * are all that is left, the values are released (storage NULL), unless
     * keep_values says the record of the op that made t still reads them. */
    int shape_refs;
    bool keep_values;
    /* Carried for autograd/, never read here: whether gradients flow to
     * this tensor, its gradient, and the tape record of the op that made
     * it. The tensor owns both; they go through the release hook.
     * graph_freed marks a tensor whose record a backward freed. */
    bool requires_grad, graph_freed;
    struct nd_tensor *grad;
    struct nd_record *record;
} nd_tensor;

/* ---- errors ------------------------------------------------------------ */

/* Called with the whole message ("nanodiff: add: ...", no newline) when the
 * API is misused. The default prints it to stderr and exits with status 1.
 * A hook that returns leads to the same exit; one that longjmps out is
 * allowed (tests do) but leaves the op's partial work unreleased. */
typedef void (*nd_error_hook)(const char *message);
nd_error_hook nd_set_error_hook(nd_error_hook hook); /* returns the old one */
ND_NORETURN void nd_fatal(const char *op, const char *fmt, ...) ND_PRINTF(2, 3);

/* Recoverable errors (files, user arguments). */
enum { ND_OK = 0, ND_ERR = -1 };
typedef struct nd_error {
    char message[512];
} nd_error;
int nd_error_set(nd_error *err, const char *fmt, ...) ND_PRINTF(2, 3);
/* returns ND_ERR; err may be NULL */

/* ---- memory ------------------------------------------------------------ */

/* Bytes currently held (tensor data, tensor objects, scopes) and the most
 * ever held at once since the last reset. A leak check and a teaching aid. */
size_t nd_mem_live(void);
/* Counted allocation for the layers above (tape records, optimizer
 * state): 64-byte aligned; stops on failure; free with the same size. */
void *nd_alloc(size_t bytes);
void nd_dealloc(void *p, size_t bytes);
size_t nd_mem_peak(void);
void nd_mem_reset_peak(void);
/* Freed blocks of 4 KiB and more are kept in a pool and reused by later
 * allocations of any size, sparing page faults; nd_mem_cached gives their
 * bytes (they are not live bytes). The pool grows to about the most bytes
 * live at once and keeps them. nd_mem_trim returns to the system the
 * pool's memory that holds no live block. nd_mem_set_cache_limit sets how
 * many free bytes are kept at most (SIZE_MAX, no limit, unless set; free
 * space in memory that also holds live blocks stays) and returns the
 * former limit. */
size_t nd_mem_cached(void);
void nd_mem_trim(void);
size_t nd_mem_set_cache_limit(size_t bytes);

/* Drop the owner's reference: the tensor is destroyed once no retained
 * reference is left either. NULL is allowed. */
void nd_free(nd_tensor *t);
nd_tensor *nd_retain(nd_tensor *t); /* one more reference */
void nd_release(nd_tensor *t);      /* drop a reference taken by nd_retain */
/* A reference to t's shape and gradient, not its values: the tape takes
 * one for an input whose values its rule never reads (an add's, say), so
 * that the values go as soon as the last reader that needs them does.
 * Reading a tensor whose values went stops with a message. */
nd_tensor *nd_retain_shape(nd_tensor *t);
void nd_release_shape(nd_tensor *t);
/* For a tape that computes released values again: t, whose values were
 * released, takes those of `from`, a contiguous tensor of t's shape; and
 * lets them go again if only shape references (and no keep_values) hold t. */
void nd_restore_values(nd_tensor *t, const nd_tensor *from);
void nd_release_unread_values(nd_tensor *t);

/* Scopes: every tensor created while a scope is open belongs to the
 * innermost one and is freed when it ends. Scopes nest and end in order. */
nd_scope *nd_scope_begin(void);
void nd_scope_end(nd_scope *scope);
nd_tensor *nd_keep(nd_tensor *t);    /* move t to the enclosing scope */
nd_tensor *nd_persist(nd_tensor *t); /* take t out of every scope */

/* ---- inspection -------------------------------------------------------- */

int64_t nd_numel(const nd_tensor *t);
int64_t nd_size(const nd_tensor *t, int axis);
bool nd_is_contiguous(const nd_tensor *t);
/* Whether t is the only view of its storage, covers all of it in order,
 * and the library allocated it (not nd_wrap_buffer): then whoever holds t
 * alone may keep its data rather than copy it. */
bool nd_owns_storage(const nd_tensor *t);
bool nd_same_shape(const nd_tensor *a, const nd_tensor *b);
float *nd_data(const nd_tensor *t); /* first element (storage + offset) */
float nd_get(const nd_tensor *t, const int64_t *index);
void nd_set(nd_tensor *t, const int64_t *index, float value);
float nd_item(const nd_tensor *t); /* the value of a one-element tensor */
/* "[2,3]" into buf (at least ND_SHAPE_STR_LEN bytes); returns buf. */
#define ND_SHAPE_STR_LEN 192
char *nd_shape_str(const int64_t *shape, int ndim, char *buf);
/* |a - b| <= atol + rtol * |b| elementwise (after broadcasting); NaNs
 * compare equal to NaNs only when equal_nan. */
bool nd_allclose(const nd_tensor *a, const nd_tensor *b, double rtol,
                 double atol, bool equal_nan);

/* ---- creation ---------------------------------------------------------- */

nd_tensor *nd_empty(const int64_t *shape, int ndim); /* uninitialised */
nd_tensor *nd_zeros(const int64_t *shape, int ndim);
nd_tensor *nd_ones(const int64_t *shape, int ndim);
nd_tensor *nd_full(const int64_t *shape, int ndim, float value);
nd_tensor *nd_scalar(float value); /* 0-d */
nd_tensor *nd_zeros_like(const nd_tensor *x);
nd_tensor *nd_full_like(const nd_tensor *x, float value);
/* [start, stop) in steps of step; ceil((stop - start) / step) elements */
nd_tensor *nd_arange(double start, double stop, double step);
/* steps values from start to end inclusive, evenly spaced */
nd_tensor *nd_linspace(double start, double end, int64_t steps);
/* A contiguous copy of data (row-major, numel floats). */
nd_tensor *nd_from_buffer(const float *data, const int64_t *shape, int ndim);
/* A tensor over the caller's memory, no copy; the caller keeps it alive
 * for as long as the tensor and its views live, and frees it after. */
nd_tensor *nd_wrap_buffer(float *data, const int64_t *shape, int ndim);
nd_tensor *nd_clone(const nd_tensor *x); /* contiguous deep copy */

/* In place: dst[...] = src broadcast to dst's shape. dst must not be a
 * broadcast view (it would write one element several times). */
void nd_copy_(nd_tensor *dst, const nd_tensor *src);
void nd_fill_(nd_tensor *dst, float value);
void nd_add_(nd_tensor *dst, const nd_tensor *src); /* dst += src */

/* ---- views (no copy) --------------------------------------------------- */

/* Same elements, new shape; one entry may be -1 (inferred). nd_view stops
 * if the strides do not allow a view; nd_reshape then copies instead. */
nd_tensor *nd_view(const nd_tensor *x, const int64_t *shape, int ndim);
nd_tensor *nd_reshape(const nd_tensor *x, const int64_t *shape, int ndim);
nd_tensor *nd_flatten(const nd_tensor *x); /* 1-d, via nd_reshape */
nd_tensor *nd_permute(const nd_tensor *x, const int *perm, int ndim);
nd_tensor *nd_transpose(const nd_tensor *x, int axis0, int axis1);
/* Python-style x[start:stop:step] along axis: negative start/stop count
 * from the end, out-of-range values are clamped, step >= 1. */
nd_tensor *nd_slice(const nd_tensor *x, int axis, int64_t start,
                    int64_t stop, int64_t step);
/* Broadcast to shape (NumPy rules: align right, size-1 axes repeat with
 * stride 0, new leading axes); -1 keeps the size of that axis. */
nd_tensor *nd_expand(const nd_tensor *x, const int64_t *shape, int ndim);
nd_tensor *nd_squeeze(const nd_tensor *x, int axis);   /* axis of size 1 */
nd_tensor *nd_unsqueeze(const nd_tensor *x, int axis); /* new size-1 axis */
/* A contiguous tensor with x's values: a view when x already is one, a
 * copy otherwise. */
nd_tensor *nd_contiguous(const nd_tensor *x);

/* ---- elementwise, NumPy broadcasting ----------------------------------- */

nd_tensor *nd_add(const nd_tensor *a, const nd_tensor *b);
nd_tensor *nd_sub(const nd_tensor *a, const nd_tensor *b);
nd_tensor *nd_mul(const nd_tensor *a, const nd_tensor *b);
nd_tensor *nd_div(const nd_tensor *a, const nd_tensor *b);
nd_tensor *nd_maximum(const nd_tensor *a, const nd_tensor *b);
nd_tensor *nd_minimum(const nd_tensor *a, const nd_tensor *b);
/* Comparisons give 1.0f where true, 0.0f where false. */
nd_tensor *nd_eq(const nd_tensor *a, const nd_tensor *b);
nd_tensor *nd_ne(const nd_tensor *a, const nd_tensor *b);
nd_tensor *nd_lt(const nd_tensor *a, const nd_tensor *b);
nd_tensor *nd_le(const nd_tensor *a, const nd_tensor *b);
nd_tensor *nd_gt(const nd_tensor *a, const nd_tensor *b);
nd_tensor *nd_ge(const nd_tensor *a, const nd_tensor *b);
/* cond != 0 ? a : b, all three broadcast together */
nd_tensor *nd_where(const nd_tensor *cond, const nd_tensor *a,
                    const nd_tensor *b);

nd_tensor *nd_add_scalar(const nd_tensor *x, float s);  /* x + s */
nd_tensor *nd_sub_scalar(const nd_tensor *x, float s);  /* x - s */
nd_tensor *nd_rsub_scalar(const nd_tensor *x, float s); /* s - x */
nd_tensor *nd_mul_scalar(const nd_tensor *x, float s);  /* x * s */
nd_tensor *nd_div_scalar(const nd_tensor *x, float s);  /* x / s */
nd_tensor *nd_pow_scalar(const nd_tensor *x, float p);  /* x ^ p */
nd_tensor *nd_clamp(const nd_tensor *x, float lo, float hi);

nd_tensor *nd_neg(const nd_tensor *x);
nd_tensor *nd_exp(const nd_tensor *x);
nd_tensor *nd_log(const nd_tensor *x);
nd_tensor *nd_sqrt(const nd_tensor *x);
nd_tensor *nd_rsqrt(const nd_tensor *x);
nd_tensor *nd_square(const nd_tensor *x);
nd_tensor *nd_abs(const nd_tensor *x);
nd_tensor *nd_sin(const nd_tensor *x);
nd_tensor *nd_cos(const nd_tensor *x);
nd_tensor *nd_tanh(const nd_tensor *x);
nd_tensor *nd_sigmoid(const nd_tensor *x);
nd_tensor *nd_silu(const nd_tensor *x);
nd_tensor *nd_erf(const nd_tensor *x);
nd_tensor *nd_gelu(const nd_tensor *x); /* erf form: x Phi(x) */
nd_tensor *nd_relu(const nd_tensor *x);

/* ---- reductions -------------------------------------------------------- */

/* Reduce over the listed axes (axes == NULL: over all of them; an empty
 * list: over none). keepdim keeps reduced axes with size 1. Sums are
 * accumulated in double, in a fixed order. */
nd_tensor *nd_sum(const nd_tensor *x, const int *axes, int naxes,
                  bool keepdim);
nd_tensor *nd_mean(const nd_tensor *x, const int *axes, int naxes,
                   bool keepdim);
nd_tensor *nd_max(const nd_tensor *x, const int *axes, int naxes,
                  bool keepdim);
nd_tensor *nd_min(const nd_tensor *x, const int *axes, int naxes,
                  bool keepdim);
/* sum((x - mean)^2) / (N - correction); correction 1 is the unbiased
 * estimate (PyTorch's default), 0 the population variance. */
nd_tensor *nd_var(const nd_tensor *x, const int *axes, int naxes,
                  int correction, bool keepdim);
/* Index of the first maximum along axis (NaN counts as the maximum),
 * stored as float. */
nd_tensor *nd_argmax(const nd_tensor *x, int axis, bool keepdim);
nd_tensor *nd_softmax(const nd_tensor *x, int axis);
nd_tensor *nd_log_softmax(const nd_tensor *x, int axis);
/* The backward pass of y = softmax(x, axis), used by autograd: from y and
 * dy (y's shape), dx = y (dy - sum_axis(dy y)), the bits of nd_mul,
 * nd_sum (keepdim), nd_sub and nd_mul composed, in one pass over each
 * fibre. It has no backward rule of its own. */
nd_tensor *nd_softmax_backward(const nd_tensor *y, const nd_tensor *dy, int axis);

/* Sums over one contiguous row of n floats, for layers that fuse their
 * own loops (GroupNorm): in double, by the active kernel set, element i
 * into lane i % 16 and the lanes combined in a fixed order, so the bits
 * are the same in every kernel set. */
double nd_row_sum(int64_t n, const float *x);                     /* sum x */
double nd_row_sum_sq_dev(int64_t n, const float *x, double mean); /* sum (x - mean)^2 */
double nd_row_dot_dev(int64_t n, const float *x, double mean,
                      const float *y);                            /* sum (x - mean) y */
/* f(x[i]) for i < n, as nd_sigmoid and nd_silu compute it (the same
 * bits); y may be x. */
void nd_row_sigmoid(int64_t n, const float *x, float *y);
void nd_row_silu(int64_t n, const float *x, float *y);

/* ---- linear algebra and joins ------------------------------------------ */

/* NumPy matmul: (..., n, k) @ (..., k, m) -> (..., n, m), batch axes
 * broadcast; a 1-d left operand is a row, a 1-d right operand a column,
 * and the added axis is removed from the result. */
nd_tensor *nd_matmul(const nd_tensor *a, const nd_tensor *b);
nd_tensor *nd_concat(const nd_tensor *const *xs, int n, int axis);
nd_tensor *nd_stack(const nd_tensor *const *xs, int n, int axis);
/* pads[2*i], pads[2*i+1]: elements added before and after along axis i
 * (ndim pairs, all >= 0), filled with value. */
nd_tensor *nd_pad(const nd_tensor *x, const int64_t *pads, float value);
/* Indexing along an axis by positions, index [K] of whole numbers (as
 * floats) in [0, D) where D is x's size on that axis (tensor/index.c):
 *   index_select: y[..., k, ...] = x[..., index[k], ...]   -> K at axis
 *   index_add:    y = x; y[..., index[k], ...] += src[..., k, ...]
 * (PyTorch's index_select and index_add). An embedding lookup is
 * nd_index_select(table, 0, ids). The index carries no gradient. */
nd_tensor *nd_index_select(const nd_tensor *x, int axis, const nd_tensor *index);
nd_tensor *nd_index_add(const nd_tensor *x, int axis, const nd_tensor *index,
                        const nd_tensor *src);

/* ---- convolution (NCHW) ------------------------------------------------ */

/* Stride and zero padding per side of a 2-d convolution. TensorFlow's
 * "SAME" with stride 2 on even sizes is {2, 2, 0, 1, 0, 1}. */
typedef struct nd_conv2d_opts {
    int64_t stride_h, stride_w;
    int64_t pad_top, pad_bottom, pad_left, pad_right;
} nd_conv2d_opts;

/* y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v] x[n, c, i sh - pt + u, j sw - pl + v]
 * x [N,C,H,W], w [O,C,KH,KW], bias [O] or NULL -> y [N,O,OH,OW] with
 * OH = (H + pt + pb - KH) / sh + 1 (likewise OW); out-of-range x are 0. */
nd_tensor *nd_conv2d(const nd_tensor *x, const nd_tensor *w, const nd_tensor *bias,
                     nd_conv2d_opts opts);
/* The two backward passes, used by autograd (dy has y's shape):
 *   dx[n,c,h,w] = sum_{o,u,v} w[o,c,u,v] dy[n,o,i,j] over h = i sh - pt + u ...
 *   dw[o,c,u,v] = sum_{n,i,j} dy[n,o,i,j] x[n, c, i sh - pt + u, j sw - pl + v] */
nd_tensor *nd_conv2d_backward_input(const nd_tensor *dy, const nd_tensor *w,
                                    const int64_t *x_shape, nd_conv2d_opts opts);
nd_tensor *nd_conv2d_backward_weight(const nd_tensor *dy, const nd_tensor *x,
                                     const int64_t *w_shape, nd_conv2d_opts opts);
/* The same three as plain loops over the formulas, summed in double
 * (tensor/conv_reference.c): the specification the fast paths above are
 * tested against. Same arguments and checks; nothing recorded. */
nd_tensor *nd_conv2d_reference(const nd_tensor *x, const nd_tensor *w, const nd_tensor *bias,
                               nd_conv2d_opts opts);
nd_tensor *nd_conv2d_backward_input_reference(const nd_tensor *dy, const nd_tensor *w,
                                              const int64_t *x_shape, nd_conv2d_opts opts);
nd_tensor *nd_conv2d_backward_weight_reference(const nd_tensor *dy, const nd_tensor *x,
                                               const int64_t *w_shape, nd_conv2d_opts opts);

/* ---- random numbers: Philox-4x32-10 ------------------------------------ */

/* One block of the Philox-4x32-10 counter-based generator (Salmon et al.,
 * SC'11): out = philox(ctr, key). */
void nd_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                      uint32_t out[4]);

/* A generator is (seed, stream) plus the index of the next element. Element
 * i of a stream depends only on (seed, stream, i): not on how many were
 * drawn at once, nor on the thread count. */
typedef struct nd_rng {
    uint64_t seed;
    uint32_t stream;
    uint64_t offset; /* index of the next element */
} nd_rng;
nd_rng nd_rng_init(uint64_t seed, uint32_t stream);
nd_tensor *nd_rand(nd_rng *rng, const int64_t *shape, int ndim);  /* U[0,1) */
nd_tensor *nd_randn(nd_rng *rng, const int64_t *shape, int ndim); /* N(0,1) */
/* Whole numbers uniform in [low, high), as floats (so |low|, |high| <=
 * 2^24): one U[0,1) draw each, floor(u (high - low)) + low. */
nd_tensor *nd_randint(nd_rng *rng, int64_t low, int64_t high, const int64_t *shape, int ndim);
/* Element i alone. */
float nd_rand_at(uint64_t seed, uint32_t stream, uint64_t i);
float nd_randn_at(uint64_t seed, uint32_t stream, uint64_t i);
/* Elements first .. first + n - 1 of the U[0,1) sequence into dst: what
 * nd_rand draws there, for loops that use the numbers as they come. */
void nd_rand_row(uint64_t seed, uint32_t stream, uint64_t first, int64_t n, float *dst);

/* ---- kernels ----------------------------------------------------------- */

/* The kernel set in use: "avx2" (x86-64 with AVX2+FMA), "neon" (aarch64) or
 * "scalar" (the plain-C twins, always there). Chosen at the first use from
 * the CPU, or from ND_KERNELS; nd_set_kernels switches (ND_ERR if the CPU
 * lacks it). */
const char *nd_kernels_name(void);
int nd_set_kernels(const char *name, nd_error *err);

/* ---- threads ----------------------------------------------------------- */

/* Kernels split large work over a pool of threads: ND_THREADS, or this
 * call, or by default the number of online CPUs. Results are bit-identical
 * for any count. */
int nd_get_num_threads(void);
void nd_set_num_threads(int n);
/* For kernels written above this layer: run fn(ctx, c, w) for every chunk
 * c in [0, nchunks) on the pool; w in [0, nd_get_num_threads()) names the
 * thread (for per-thread scratch). Chunks must be independent and cut by
 * the problem's shape, never by the thread count, so that results stay
 * bit-identical. A call from inside a chunk runs serially. */
typedef void (*nd_chunk_fn)(void *ctx, int64_t chunk, int worker);
void nd_parallel_for(int64_t nchunks, nd_chunk_fn fn, void *ctx);

/* ---- op events: how the layer above sees what ran ---------------------- */

/* The ops, one entry each in tensor/ops.h with their properties. */
typedef enum nd_op {
#define ND_OP_ENUM(id, name, grad, cost) ND_OP_##id,
    ND_OP_LIST(ND_OP_ENUM)
#undef ND_OP_ENUM
    ND_OP_COUNT
} nd_op;
const char *nd_op_name(nd_op op); /* "add", "matmul", ... */
/* How a gradient passes an op (ops.h): through a backward rule, not at all,
 * or never (a backward pass: no double backward). */
typedef enum nd_op_grad { ND_GRAD_RULE, ND_GRAD_NONE, ND_GRAD_NEVER } nd_op_grad;
nd_op_grad nd_op_grad_kind(nd_op op);
/* Whether an elementwise op is bound by its arithmetic rather than by
 * memory traffic (ops.h). */
bool nd_op_arithmetic(nd_op op);

/* What an op reports once its output is computed. Creation, in-place
 * writes (nd_copy_, nd_fill_, nd_set) and the random draws report nothing. */
typedef struct nd_op_event {
    nd_op op;
    nd_tensor *out;
    const nd_tensor *const *in;
    int nin;
    int axis;        /* normalised: softmax, log_softmax, argmax, slice,
                        squeeze, unsqueeze, concat, stack (in the output) */
    bool keepdim;    /* reductions */
    int correction;  /* var */
    /* permute: the permutation; pad: the pads; slice: start, step (start
     * normalised and clamped); sum/mean/max/min/var: 1 for each reduced
     * input axis, 0 for the others; conv2d and its backward passes:
     * stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right */
    int64_t args[2 * ND_MAX_DIMS];
    float scalars[2]; /* the scalar ops' s, pow's p, clamp's lo and hi */
} nd_op_event;
typedef void (*nd_op_observer)(const nd_op_event *event);
nd_op_observer nd_set_op_observer(nd_op_observer observer); /* returns the old */
/* Called as a tensor carrying a grad or a record is destroyed, to release
 * them. */
typedef void (*nd_release_hook)(nd_tensor *t);
nd_release_hook nd_set_release_hook(nd_release_hook hook);

/* ---- files --------------------------------------------------------------- */

/* Writes path so that it is never left broken: write(fd, ctx) fills a
 * temporary file beside path (returning 0 or an errno value), which is
 * fsync'd and renamed over path, and the directory fsync'd. On ND_ERR the
 * file already at path is untouched and no temporary file is left; the
 * message starts with the path. Temporaries are named
 * NAME.nanodiff-tmp.PID.N; those that killed processes left in the folder
 * are removed by the next write into it (never one a live writer holds). */
typedef int (*nd_write_fn)(int fd, void *ctx);
int nd_write_file_atomic(const char *path, nd_write_fn write, void *ctx, nd_error *err);
/* All n bytes to fd, through short writes and EINTR: 0 or an errno value. */
int nd_write_all(int fd, const void *bytes, size_t n);

/* ---- safetensors files ------------------------------------------------ */

/* The format of Hugging Face's safetensors (PyTorch users read these files
 * with safetensors.torch.load_file): a little-endian u64 header length, a
 * JSON header naming each tensor's dtype, shape and byte range, then the
 * raw little-endian data. nanodiff writes and reads F32 only. */

/* A set of named tensors and string metadata, as read from or written to a
 * safetensors file. */
typedef struct nd_safetensors {
    int n;                 /* tensors, in file order of their data */
    char **names;
    nd_tensor **tensors;   /* contiguous float32, outside every scope; owned */
    int nmeta;
    char **meta_keys, **meta_values; /* the "__metadata__" object; owned */
} nd_safetensors;

/* Write n named tensors (any layout; stored as F32 row-major) and nmeta
 * metadata pairs (either array may be NULL when its count is 0). The file is
 * written beside path under a temporary name, flushed, fsync'd and renamed
 * over path (then the directory is fsync'd): a crash or an error never leaves
 * a broken file at path, and on ND_ERR the old file is untouched and no
 * temporary is left behind. Names must be unique, non-empty UTF-8 without
 * control characters, and not "__metadata__"; metadata is any UTF-8. */
int nd_safetensors_save(const char *path, const char *const *names,
                        const nd_tensor *const *tensors, int n,
                        const char *const *meta_keys,
                        const char *const *meta_values, int nmeta,
                        nd_error *err);
/* Read and validate a whole file. On ND_ERR *out is left empty (nothing to
 * free) and the message starts with the path. */
int nd_safetensors_load(const char *path, nd_safetensors *out, nd_error *err);
void nd_safetensors_free(nd_safetensors *st); /* frees all; st zeroed */
/* Lookups: NULL when absent. */
nd_tensor *nd_safetensors_get(const nd_safetensors *st, const char *name);
const char *nd_safetensors_meta(const nd_safetensors *st, const char *key);

/* ---- printing ---------------------------------------------------------- */

/* PyTorch-like: values (summarised with "..." beyond 1000 elements), the
 * shape, and the strides when the tensor is not contiguous. */
void nd_fprint(FILE *f, const nd_tensor *t);
void nd_print(const nd_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
