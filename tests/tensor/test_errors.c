/* Error paths: every misuse of the API stops with exactly one line,
 * "nanodiff: <op>: <what is wrong>", through the error hook (caught here
 * with EXPECT_FATAL), and by default on stderr with exit status 1.
 * Recoverable errors go through nd_error_set instead. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include "helpers.h"

START_TEST(test_error_null_tensors) {
    nd_tensor *x = nd_zeros(ND_SHAPE(2, 3));
    EXPECT_FATAL(nd_add(NULL, x), "nanodiff: add: tensor is NULL");
    EXPECT_FATAL(nd_mul(x, NULL), "nanodiff: mul: tensor is NULL");
    EXPECT_FATAL(nd_neg(NULL), "nanodiff: neg: tensor is NULL");
    EXPECT_FATAL(nd_add_scalar(NULL, 1.0f), "nanodiff: add_scalar: tensor is NULL");
    EXPECT_FATAL(nd_clamp(NULL, 0.0f, 1.0f), "nanodiff: clamp: tensor is NULL");
    EXPECT_FATAL(nd_where(x, NULL, x), "nanodiff: where: tensor is NULL");
    EXPECT_FATAL(nd_sum(NULL, NULL, 0, false), "nanodiff: sum: tensor is NULL");
    EXPECT_FATAL(nd_softmax(NULL, 0), "nanodiff: softmax: tensor is NULL");
    EXPECT_FATAL(nd_argmax(NULL, 0, false), "nanodiff: argmax: tensor is NULL");
    EXPECT_FATAL(nd_matmul(x, NULL), "nanodiff: matmul: tensor is NULL");
    EXPECT_FATAL(nd_reshape(NULL, ND_SHAPE(6)), "nanodiff: reshape: tensor is NULL");
    EXPECT_FATAL(nd_view(NULL, ND_SHAPE(6)), "nanodiff: view: tensor is NULL");
    EXPECT_FATAL(nd_flatten(NULL), "nanodiff: flatten: tensor is NULL");
    EXPECT_FATAL(nd_permute(NULL, ND_AXES(1, 0)), "nanodiff: permute: tensor is NULL");
    EXPECT_FATAL(nd_transpose(NULL, 0, 1), "nanodiff: transpose: tensor is NULL");
    EXPECT_FATAL(nd_slice(NULL, 0, 0, 1, 1), "nanodiff: slice: tensor is NULL");
    EXPECT_FATAL(nd_expand(NULL, ND_SHAPE(2, 3)), "nanodiff: expand: tensor is NULL");
    EXPECT_FATAL(nd_squeeze(NULL, 0), "nanodiff: squeeze: tensor is NULL");
    EXPECT_FATAL(nd_unsqueeze(NULL, 0), "nanodiff: unsqueeze: tensor is NULL");
    EXPECT_FATAL(nd_contiguous(NULL), "nanodiff: contiguous: tensor is NULL");
    EXPECT_FATAL(nd_clone(NULL), "nanodiff: clone: tensor is NULL");
    EXPECT_FATAL(nd_zeros_like(NULL), "nanodiff: zeros_like: tensor is NULL");
    EXPECT_FATAL(nd_copy_(NULL, x), "nanodiff: copy_: tensor is NULL");
    EXPECT_FATAL(nd_fill_(NULL, 1.0f), "nanodiff: fill_: tensor is NULL");
    EXPECT_FATAL(nd_numel(NULL), "nanodiff: numel: tensor is NULL");
    EXPECT_FATAL(nd_size(NULL, 0), "nanodiff: size: tensor is NULL");
    EXPECT_FATAL(nd_data(NULL), "nanodiff: data: tensor is NULL");
    EXPECT_FATAL(nd_item(NULL), "nanodiff: item: tensor is NULL");
    EXPECT_FATAL(nd_allclose(x, NULL, 0.0, 0.0, false), "nanodiff: allclose: tensor is NULL");
    EXPECT_FATAL(nd_keep(NULL), "nanodiff: keep: tensor is NULL");
    EXPECT_FATAL(nd_persist(NULL), "nanodiff: persist: tensor is NULL");
    EXPECT_FATAL(nd_pad(NULL, NULL, 0.0f), "nanodiff: pad: tensor is NULL");
    const nd_tensor *xs[] = {x, NULL};
    EXPECT_FATAL(nd_concat(xs, 2, 0), "nanodiff: concat: tensor is NULL");
    EXPECT_FATAL(nd_stack(xs, 2, 0), "nanodiff: stack: tensor is NULL");
    EXPECT_FATAL(nd_fprint(stdout, NULL), "nanodiff: print: tensor is NULL");
    EXPECT_FATAL(nd_fprint(NULL, x), "nanodiff: print: stream is NULL");
    EXPECT_FATAL(nd_rand(NULL, ND_SHAPE(2)), "nanodiff: rand: generator is NULL");
    EXPECT_FATAL(nd_randn(NULL, ND_SHAPE(2)), "nanodiff: randn: generator is NULL");
}
END_TEST

/* nd_get and nd_set must check the tensor before reading through it. */
START_TEST(test_error_get_null_tensor) {
    const int64_t idx[] = {0, 0};
    EXPECT_FATAL(nd_get(NULL, idx), "nanodiff: get: tensor is NULL");
}
END_TEST

START_TEST(test_error_set_null_tensor) {
    const int64_t idx[] = {0, 0};
    EXPECT_FATAL(nd_set(NULL, idx, 1.0f), "nanodiff: set: tensor is NULL");
}
END_TEST

START_TEST(test_error_bad_shapes) {
    EXPECT_FATAL(nd_zeros(ND_SHAPE(2, -1)), "nanodiff: zeros: negative size in shape [2,-1]");
    EXPECT_FATAL(nd_empty(ND_SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1)),
                 "nanodiff: empty: 9 dimensions requested; between 0 and 8 are supported");
    EXPECT_FATAL(nd_full(NULL, -1, 0.0f),
                 "nanodiff: full: -1 dimensions requested; between 0 and 8 are supported");
    EXPECT_FATAL(nd_zeros(NULL, 2), "nanodiff: zeros: shape is NULL");
    EXPECT_FATAL(nd_empty(ND_SHAPE(INT64_MAX, 2)),
                 "nanodiff: empty: shape [9223372036854775807,2] has too many elements");
#if SIZE_MAX == UINT64_MAX
    EXPECT_FATAL(nd_empty(ND_SHAPE(INT64_C(1) << 62)),
                 "nanodiff: empty: tensor of 4611686018427387904 elements is too large");
#endif
    nd_rng g = nd_rng_init(1, 0);
    EXPECT_FATAL(nd_randn(&g, ND_SHAPE(-2)), "nanodiff: randn: negative size in shape [-2]");
    ck_assert_uint_eq(g.offset, 0);
    float buf[2] = {0};
    EXPECT_FATAL(nd_wrap_buffer(buf, ND_SHAPE(3, -3)),
                 "nanodiff: wrap_buffer: negative size in shape [3,-3]");
}
END_TEST

/* Every op of tensor/ops.h has its own name of lowercase letters, digits
 * and '_', and the ops bound by arithmetic are the ones measured so
 * (docs/PERFORMANCE.md, "Elementwise loops"), listed here one per line. */
START_TEST(test_every_op_has_a_name_and_properties) {
    static const char *const arithmetic[] = {
        "pow_scalar",
        "log",
        "sqrt",
        "rsqrt",
        "sin",
        "cos",
        "tanh",
        "sigmoid",
        "silu",
        "erf",
        "gelu",
    };
    int marked = 0;
    for (int op = 0; op < ND_OP_COUNT; op++) {
        const char *name = nd_op_name((nd_op)op);
        ck_assert_msg(strcmp(name, "unknown op") != 0 && name[0] != 0, "op %d has no name", op);
        for (const char *c = name; *c; c++)
            ck_assert_msg((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_',
                          "op name '%s'", name);
        for (int other = 0; other < op; other++)
            ck_assert_msg(strcmp(name, nd_op_name((nd_op)other)) != 0, "two ops named %s", name);
        bool listed = false;
        for (size_t k = 0; k < sizeof arithmetic / sizeof *arithmetic; k++)
            listed |= strcmp(name, arithmetic[k]) == 0;
        ck_assert_msg(nd_op_arithmetic((nd_op)op) == listed, "%s: arithmetic %d", name,
                      (int)nd_op_arithmetic((nd_op)op));
        marked += listed;
    }
    ck_assert_int_eq(marked, (int)(sizeof arithmetic / sizeof *arithmetic));
    ck_assert_str_eq(nd_op_name(ND_OP_COUNT), "unknown op");
    ck_assert(!nd_op_arithmetic(ND_OP_COUNT));
    char past_end[64];
    snprintf(past_end, sizeof past_end, "nanodiff: op_grad_kind: no op %d", (int)ND_OP_COUNT);
    EXPECT_FATAL(nd_op_grad_kind(ND_OP_COUNT), past_end);
}
END_TEST

START_TEST(test_error_op_name_of_wrappers) {
    /* nd_ones is implemented with nd_full, but the message must name the
     * function that was called. */
    EXPECT_FATAL(nd_ones(ND_SHAPE(-1)), "nanodiff: ones: negative size in shape [-1]");
}
END_TEST

START_TEST(test_error_axes) {
    nd_tensor *x = nd_zeros(ND_SHAPE(2, 3));
    EXPECT_FATAL(nd_permute(x, ND_AXES(0, 2)),
                 "nanodiff: permute: axis 2 is out of range for a 2-d tensor");
    EXPECT_FATAL(nd_permute(x, ND_AXES(1, 1)), "nanodiff: permute: axis 1 appears twice");
    EXPECT_FATAL(nd_permute(x, ND_AXES(0, -2)), "nanodiff: permute: axis -2 appears twice");
    EXPECT_FATAL(nd_permute(x, ND_AXES(0)), "nanodiff: permute: 1 axes given for a 2-d tensor");
    EXPECT_FATAL(nd_permute(x, NULL, 2), "nanodiff: permute: perm is NULL");
    EXPECT_FATAL(nd_transpose(x, 0, 2),
                 "nanodiff: transpose: axis 2 is out of range for a 2-d tensor");
    EXPECT_FATAL(nd_transpose(x, -3, 0),
                 "nanodiff: transpose: axis -3 is out of range for a 2-d tensor");
    EXPECT_FATAL(nd_squeeze(x, 1), "nanodiff: squeeze: axis 1 of shape [2,3] has size 3, not 1");
    EXPECT_FATAL(nd_squeeze(x, -2), "nanodiff: squeeze: axis -2 of shape [2,3] has size 2, not 1");
    EXPECT_FATAL(nd_squeeze(nd_scalar(1.0f), 0),
                 "nanodiff: squeeze: axis 0 is out of range for a 0-d tensor");
    EXPECT_FATAL(nd_unsqueeze(x, 3),
                 "nanodiff: unsqueeze: axis 3 is out of range for a 2-d tensor (-3..2)");
    EXPECT_FATAL(nd_unsqueeze(x, -4),
                 "nanodiff: unsqueeze: axis -4 is out of range for a 2-d tensor (-3..2)");
    EXPECT_FATAL(nd_unsqueeze(nd_zeros(ND_SHAPE(1, 1, 1, 1, 1, 1, 1, 1)), 0),
                 "nanodiff: unsqueeze: tensor already has 8 dimensions");
    EXPECT_FATAL(nd_slice(x, 1, 0, 3, 0), "nanodiff: slice: step 0 must be >= 1");
    EXPECT_FATAL(nd_slice(x, 0, 2, 0, -1), "nanodiff: slice: step -1 must be >= 1");
    EXPECT_FATAL(nd_slice(x, 2, 0, 1, 1),
                 "nanodiff: slice: axis 2 is out of range for a 2-d tensor");
    EXPECT_FATAL(nd_size(x, 2), "nanodiff: size: axis 2 is out of range for a 2-d tensor");
    EXPECT_FATAL(nd_size(x, -3), "nanodiff: size: axis -3 is out of range for a 2-d tensor");
    EXPECT_FATAL(nd_softmax(x, 2), "nanodiff: softmax: axis 2 is out of range for a 2-d tensor");
    EXPECT_FATAL(nd_log_softmax(x, -3),
                 "nanodiff: log_softmax: axis -3 is out of range for a 2-d tensor");
    EXPECT_FATAL(nd_argmax(x, 5, true), "nanodiff: argmax: axis 5 is out of range for a 2-d tensor");
    EXPECT_FATAL(nd_sum(x, ND_AXES(0, -2), false), "nanodiff: sum: axis -2 appears twice");
    EXPECT_FATAL(nd_mean(x, ND_AXES(2), true), "nanodiff: mean: axis 2 is out of range for a 2-d tensor");
    EXPECT_FATAL(nd_max(x, (const int[]){0}, -1, false), "nanodiff: max: -1 axes given");
}
END_TEST

START_TEST(test_error_views) {
    nd_tensor *x = nd_view(nd_arange(0, 6, 1), ND_SHAPE(2, 3));
    nd_tensor *xt = nd_transpose(x, 0, 1);
    EXPECT_FATAL(nd_view(xt, ND_SHAPE(6)),
                 "nanodiff: view: shape [3,2] with strides [1,3] cannot be viewed as [6]; "
                 "use reshape (which copies) or contiguous first");
    EXPECT_FATAL(nd_view(x, ND_SHAPE(-1, 4)),
                 "nanodiff: view: cannot infer -1 in [-1,4] for a tensor of shape [2,3]");
    EXPECT_FATAL(nd_reshape(x, ND_SHAPE(0, -1)),
                 "nanodiff: reshape: cannot infer -1 in [0,-1] for a tensor of shape [2,3]");
    EXPECT_FATAL(nd_reshape(x, ND_SHAPE(-1, -1)), "nanodiff: reshape: only one size may be -1");
    EXPECT_FATAL(nd_view(x, ND_SHAPE(-2, 3)), "nanodiff: view: invalid size -2 in [-2,3]");
    EXPECT_FATAL(nd_reshape(x, ND_SHAPE(4, 2)),
                 "nanodiff: reshape: shape [4,2] has 8 elements; the tensor of shape [2,3] has 6");
    EXPECT_FATAL(nd_view(x, ND_SHAPE(7)),
                 "nanodiff: view: shape [7] has 7 elements; the tensor of shape [2,3] has 6");
    EXPECT_FATAL(nd_view(x, ND_SHAPE(1, 1, 1, 1, 1, 1, 1, 2, 3)),
                 "nanodiff: view: 9 dimensions requested; between 0 and 8 are supported");
    EXPECT_FATAL(nd_reshape(x, NULL, 2), "nanodiff: reshape: shape is NULL");
    EXPECT_FATAL(nd_expand(x, ND_SHAPE(4, 3)),
                 "nanodiff: expand: shape [2,3] cannot be broadcast to [4,3]");
    EXPECT_FATAL(nd_expand(x, ND_SHAPE(3)),
                 "nanodiff: expand: cannot expand shape [2,3] to a 1-d shape");
    EXPECT_FATAL(nd_expand(nd_arange(0, 3, 1), ND_SHAPE(-1, 3)),
                 "nanodiff: expand: shape [3] cannot be broadcast to [-1,3]");
    EXPECT_FATAL(nd_expand(x, ND_SHAPE(2, -2)),
                 "nanodiff: expand: shape [2,3] cannot be broadcast to [2,-2]");
}
END_TEST

START_TEST(test_error_creation) {
    EXPECT_FATAL(nd_arange(0, 5, 0),
                 "nanodiff: arange: start 0, stop 5, step 0: need finite values and a "
                 "nonzero step");
    EXPECT_FATAL(nd_arange(0, INFINITY, 1),
                 "nanodiff: arange: start 0, stop inf, step 1: need finite values and a "
                 "nonzero step");
    EXPECT_FATAL(nd_arange(NAN, 1, 0.5),
                 "nanodiff: arange: start nan, stop 1, step 0.5: need finite values and a "
                 "nonzero step");
    EXPECT_FATAL(nd_arange(0, 1e13, 1), "nanodiff: arange: 1e+13 elements is too many");
    EXPECT_FATAL(nd_linspace(0, 1, -1),
                 "nanodiff: linspace: start 0, end 1, steps -1: need finite ends and steps >= 0");
    EXPECT_FATAL(nd_linspace(-INFINITY, 1, 3),
                 "nanodiff: linspace: start -inf, end 1, steps 3: need finite ends and "
                 "steps >= 0");
    EXPECT_FATAL(nd_from_buffer(NULL, ND_SHAPE(2, 2)), "nanodiff: from_buffer: data is NULL");
    EXPECT_FATAL(nd_wrap_buffer(NULL, ND_SHAPE(2)), "nanodiff: wrap_buffer: data is NULL");
    /* No elements: no data needed. */
    nd_tensor *e = nd_from_buffer(NULL, ND_SHAPE(0, 4));
    ck_assert_int_eq(nd_numel(e), 0);
}
END_TEST

START_TEST(test_error_elementwise) {
    nd_tensor *a = nd_zeros(ND_SHAPE(2, 3)), *b = nd_zeros(ND_SHAPE(4, 3));
    EXPECT_FATAL(nd_add(a, b), "nanodiff: add: shapes [2,3] and [4,3] do not broadcast");
    EXPECT_FATAL(nd_ge(b, nd_zeros(ND_SHAPE(2))),
                 "nanodiff: ge: shapes [4,3] and [2] do not broadcast");
    EXPECT_FATAL(nd_where(nd_zeros(ND_SHAPE(5)), a, a),
                 "nanodiff: where: shapes [5] and [2,3] do not broadcast");
    EXPECT_FATAL(nd_clamp(a, 2.0f, 1.0f), "nanodiff: clamp: lo 2 must not exceed hi 1");
    EXPECT_FATAL(nd_clamp(a, NAN, 1.0f), "nanodiff: clamp: lo nan must not exceed hi 1");
    EXPECT_FATAL(nd_copy_(a, nd_zeros(ND_SHAPE(3, 2))),
                 "nanodiff: copy_: shapes [2,3] and [3,2] do not broadcast");
    EXPECT_FATAL(nd_copy_(nd_zeros(ND_SHAPE(1, 3)), a),
                 "nanodiff: copy_: source of shape [2,3] does not broadcast to destination [1,3]");
    EXPECT_FATAL(nd_copy_(a, nd_zeros(ND_SHAPE(1, 2, 3))),
                 "nanodiff: copy_: source of shape [1,2,3] does not broadcast to destination [2,3]");
    nd_tensor *bv = nd_expand(nd_zeros(ND_SHAPE(1, 3)), ND_SHAPE(2, 3));
    EXPECT_FATAL(nd_copy_(bv, a),
                 "nanodiff: copy_: destination is a broadcast view (axis 0 has stride 0)");
    EXPECT_FATAL(nd_allclose(a, b, 0.0, 0.0, false),
                 "nanodiff: allclose: shapes [2,3] and [4,3] do not broadcast");
}
END_TEST

START_TEST(test_error_inspection) {
    nd_tensor *x = nd_zeros(ND_SHAPE(2, 3));
    EXPECT_FATAL(nd_item(x), "nanodiff: item: tensor of shape [2,3] has 6 elements, not one");
    EXPECT_FATAL(nd_item(nd_zeros(ND_SHAPE(0))),
                 "nanodiff: item: tensor of shape [0] has 0 elements, not one");
    EXPECT_FATAL(nd_get(x, ((const int64_t[]){1, 3})),
                 "nanodiff: get: index 3 is out of range for axis 1 of shape [2,3]");
    EXPECT_FATAL(nd_get(x, ((const int64_t[]){-1, 0})),
                 "nanodiff: get: index -1 is out of range for axis 0 of shape [2,3]");
    EXPECT_FATAL(nd_get(x, NULL), "nanodiff: get: index is NULL");
    EXPECT_FATAL(nd_set(x, ((const int64_t[]){2, 0}), 1.0f),
                 "nanodiff: set: index 2 is out of range for axis 0 of shape [2,3]");
    /* Bounds follow the view, not the storage behind it. */
    nd_tensor *s = nd_slice(x, 1, 1, ND_END, 1);
    EXPECT_FATAL(nd_get(s, ((const int64_t[]){0, 2})),
                 "nanodiff: get: index 2 is out of range for axis 1 of shape [2,2]");
    /* A 0-d tensor takes no index at all. */
    ck_assert_float_eq(nd_get(nd_scalar(4.0f), NULL), 4.0f);
}
END_TEST

START_TEST(test_error_joins) {
    nd_tensor *a = nd_zeros(ND_SHAPE(2, 3)), *b = nd_zeros(ND_SHAPE(2, 4));
    nd_tensor *c = nd_zeros(ND_SHAPE(3, 2)), *v = nd_zeros(ND_SHAPE(3));
    const nd_tensor *ab[] = {a, b}, *av[] = {a, v}, *ac[] = {a, c};
    EXPECT_FATAL(nd_concat(ab, 2, 0),
                 "nanodiff: concat: shapes [2,3] and [2,4] differ outside axis 0");
    EXPECT_FATAL(nd_concat(av, 2, -1),
                 "nanodiff: concat: shapes [2,3] and [3] differ outside axis -1");
    EXPECT_FATAL(nd_concat(ab, 2, 2),
                 "nanodiff: concat: axis 2 is out of range for a 2-d tensor");
    EXPECT_FATAL(nd_concat(ab, 0, 0), "nanodiff: concat: needs at least one tensor, got 0");
    EXPECT_FATAL(nd_stack(ac, 2, 0), "nanodiff: stack: shapes [2,3] and [3,2] differ");
    EXPECT_FATAL(nd_stack(ab, -1, 0), "nanodiff: stack: needs at least one tensor, got -1");
    EXPECT_FATAL(nd_stack(ab, 1, 3), "nanodiff: stack: axis 3 is out of range for stacking 2-d tensors (-3..2)");
    EXPECT_FATAL(nd_pad(a, ((const int64_t[]){0, 0, -1, 2}), 0.0f),
                 "nanodiff: pad: axis 1: padding -1 before, 2 after; both must be >= 0");
    EXPECT_FATAL(nd_pad(a, ((const int64_t[]){1, -3, 0, 0}), 0.0f),
                 "nanodiff: pad: axis 0: padding 1 before, -3 after; both must be >= 0");
    EXPECT_FATAL(nd_pad(a, NULL, 0.0f), "nanodiff: pad: pads is NULL");
}
END_TEST

START_TEST(test_error_stack_too_many_dims) {
    /* Stacking 8-d tensors would give 9 dimensions: the error must name
     * stack and nothing the op allocated may stay behind. */
    nd_tensor *x = nd_zeros(ND_SHAPE(1, 1, 1, 1, 1, 1, 1, 1));
    const nd_tensor *xs[] = {x, x};
    size_t live = nd_mem_live();
    nd_test_catch_begin();
    if (setjmp(nd_test_jump) == 0) {
        nd_stack(xs, 2, 0);
        nd_test_catch_end();
        ck_abort_msg("stacking 8-d tensors did not stop");
    }
    nd_test_catch_end();
    size_t left = nd_mem_live() - live;
    bool named = strncmp(nd_test_message, "nanodiff: stack: ", 17) == 0;
    ck_assert_msg(named && left == 0, "message \"%s\" (%s), %zu bytes left behind",
                  nd_test_message, named ? "names stack" : "does not name stack", left);
}
END_TEST

START_TEST(test_error_matmul) {
    nd_tensor *a = nd_zeros(ND_SHAPE(2, 3)), *b = nd_zeros(ND_SHAPE(4, 5));
    EXPECT_FATAL(nd_matmul(a, b),
                 "nanodiff: matmul: shapes [2,3] and [4,5]: inner sizes 3 and 4 differ");
    EXPECT_FATAL(nd_matmul(nd_zeros(ND_SHAPE(3)), nd_zeros(ND_SHAPE(4))),
                 "nanodiff: matmul: shapes [3] and [4]: inner sizes 3 and 4 differ");
    EXPECT_FATAL(nd_matmul(a, nd_zeros(ND_SHAPE(2))),
                 "nanodiff: matmul: shapes [2,3] and [2]: inner sizes 3 and 2 differ");
    EXPECT_FATAL(nd_matmul(nd_scalar(1.0f), nd_zeros(ND_SHAPE(3))),
                 "nanodiff: matmul: shapes [] and [3]: operands must have at least 1 dimension");
    EXPECT_FATAL(nd_matmul(nd_zeros(ND_SHAPE(2, 3, 4)), nd_zeros(ND_SHAPE(5, 4, 2))),
                 "nanodiff: matmul: shapes [2,3,4] and [5,4,2]: batch sizes 2 and 5 do not "
                 "broadcast");
}
END_TEST

START_TEST(test_error_reductions) {
    nd_tensor *x = nd_zeros(ND_SHAPE(2, 3)), *e = nd_zeros(ND_SHAPE(0, 3));
    EXPECT_FATAL(nd_var(x, NULL, 0, -1, false), "nanodiff: var: correction -1 must be >= 0");
    EXPECT_FATAL(nd_max(e, ND_AXES(0), false),
                 "nanodiff: max: cannot reduce over an empty axis of shape [0,3]");
    EXPECT_FATAL(nd_min(e, NULL, 0, true),
                 "nanodiff: min: cannot reduce over an empty axis of shape [0,3]");
    EXPECT_FATAL(nd_argmax(e, 0, false), "nanodiff: argmax: axis 0 of shape [0,3] is empty");
    /* Reducing a size-0 axis is fine when nothing is left to compute. */
    ck_assert_int_eq(nd_numel(nd_max(e, ND_AXES(1), false)), 0);
    ck_assert_float_eq(nd_item(nd_sum(e, NULL, 0, false)), 0.0f);
}
END_TEST

START_TEST(test_error_scopes) {
    nd_scope *outer = nd_scope_begin();
    nd_scope *inner = nd_scope_begin();
    EXPECT_FATAL(nd_scope_end(outer), "nanodiff: scope_end: scopes must end innermost first");
    /* Nothing changed: both still end, in order. */
    nd_zeros(ND_SHAPE(4));
    nd_scope_end(inner);
    nd_scope_end(outer);
    EXPECT_FATAL(nd_scope_end(NULL), "nanodiff: scope_end: scope is NULL");
}
END_TEST

START_TEST(test_error_fatal_formats) {
    EXPECT_FATAL(nd_fatal("myop", "value %d of %s", 3, "x"), "nanodiff: myop: value 3 of x");
    char shape[ND_SHAPE_STR_LEN];
    EXPECT_FATAL(nd_fatal("op", "%s", nd_shape_str(ND_SHAPE(5, 0, 7), shape)),
                 "nanodiff: op: [5,0,7]");
}
END_TEST

static const char *seen_message;
static void record_hook(const char *message) { seen_message = message; }

START_TEST(test_error_hook_set_and_restore) {
    nd_error_hook original = nd_set_error_hook(record_hook);
    ck_assert(original != NULL);
    ck_assert(nd_set_error_hook(NULL) == record_hook);
    /* NULL put the default back. */
    ck_assert(nd_set_error_hook(original) == original);
    ck_assert(nd_set_error_hook(original) == original);
    /* EXPECT_FATAL leaves the hook as it found it. */
    EXPECT_FATAL(nd_neg(NULL), "nanodiff: neg: tensor is NULL");
    ck_assert(nd_set_error_hook(original) == original);
    ck_assert_ptr_null(seen_message);
}
END_TEST

START_TEST(test_error_set) {
    nd_error err;
    memset(&err, 'x', sizeof err);
    ck_assert_int_eq(ND_OK, 0);
    int r = nd_error_set(&err, "cannot open %s: %s (code %d)", "w.bin", "no such file", 2);
    ck_assert_int_eq(r, ND_ERR);
    ck_assert_int_eq(r, -1);
    ck_assert_str_eq(err.message, "cannot open w.bin: no such file (code 2)");
    ck_assert_int_eq(nd_error_set(&err, "%s", ""), ND_ERR);
    ck_assert_str_eq(err.message, "");
    ck_assert_int_eq(nd_error_set(NULL, "ignored %d %s", 1, "x"), ND_ERR);
    /* Long messages are cut to fit, still terminated. */
    char longer[700];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    ck_assert_int_eq(nd_error_set(&err, "%s!", longer), ND_ERR);
    ck_assert_uint_eq(strlen(err.message), sizeof err.message - 1);
    ck_assert_int_eq(strncmp(err.message, longer, sizeof err.message - 1), 0);
    /* Recoverable errors never go through the hook. */
    ck_assert_ptr_null(seen_message);
}
END_TEST

/* Without a hook, a misuse exits with status 1 (registered as an exit
 * test: Check runs it in a child process). */
START_TEST(test_error_default_exits) {
    if (!freopen("/dev/null", "w", stderr)) ck_abort_msg("cannot silence stderr");
    nd_set_error_hook(NULL);
    nd_tensor *a = nd_zeros(ND_SHAPE(2, 3)), *b = nd_zeros(ND_SHAPE(4, 3));
    nd_add(a, b);
    ck_abort_msg("nd_add returned after a misuse");
}
END_TEST

/* A hook that returns leads to the same exit. */
static void returning_hook(const char *message) { (void)message; }

START_TEST(test_error_returning_hook_exits) {
    nd_set_error_hook(returning_hook);
    nd_item(nd_zeros(ND_SHAPE(2)));
    ck_abort_msg("nd_item returned after a misuse");
}
END_TEST

#ifndef _WIN32 /* fork; on Windows the exit tests above run the same code */
/* Runs body in a child whose stderr goes into a pipe; returns what the
 * child wrote there and its wait status. */
static void run_child(void (*body)(void), char *out, size_t size, int *status) {
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    /* forked without worker threads, which earlier tests may have started
     * when they share the process (CK_FORK=no): under LeakSanitizer a
     * child forked from threads warns on the stderr this test reads */
    int threads = nd_get_num_threads();
    nd_set_num_threads(1);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        if (dup2(fds[1], STDERR_FILENO) < 0) _exit(98);
        close(fds[1]);
        body();
        _exit(99);
    }
    close(fds[1]);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fds[0], out + n, size - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
        if (n == size - 1) break;
    }
    out[n] = 0;
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, status, 0), pid);
    nd_set_num_threads(threads);
}

static void add_mismatch(void) {
    nd_set_error_hook(NULL);
    nd_tensor *a = nd_zeros(ND_SHAPE(2, 3)), *b = nd_zeros(ND_SHAPE(4, 3));
    nd_add(a, b);
}

START_TEST(test_error_default_prints_one_line) {
    char out[1024];
    int status = 0;
    run_child(add_mismatch, out, sizeof out, &status);
    ck_assert_str_eq(out, "nanodiff: add: shapes [2,3] and [4,3] do not broadcast\n");
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 1);
}
END_TEST
#endif

TCase *tcase_errors(void) {
    TCase *tc = nd_test_case("errors");
    tcase_add_test(tc, test_error_null_tensors);
    tcase_add_test(tc, test_error_get_null_tensor);
    tcase_add_test(tc, test_error_set_null_tensor);
    tcase_add_test(tc, test_error_bad_shapes);
    tcase_add_test(tc, test_error_op_name_of_wrappers);
    tcase_add_test(tc, test_every_op_has_a_name_and_properties);
    tcase_add_test(tc, test_error_axes);
    tcase_add_test(tc, test_error_views);
    tcase_add_test(tc, test_error_creation);
    tcase_add_test(tc, test_error_elementwise);
    tcase_add_test(tc, test_error_inspection);
    tcase_add_test(tc, test_error_joins);
    tcase_add_test(tc, test_error_stack_too_many_dims);
    tcase_add_test(tc, test_error_matmul);
    tcase_add_test(tc, test_error_reductions);
    tcase_add_test(tc, test_error_scopes);
    tcase_add_test(tc, test_error_fatal_formats);
    tcase_add_test(tc, test_error_hook_set_and_restore);
    tcase_add_test(tc, test_error_set);
    tcase_add_exit_test(tc, test_error_default_exits, 1);
    tcase_add_exit_test(tc, test_error_returning_hook_exits, 1);
#ifndef _WIN32
    tcase_add_test(tc, test_error_default_prints_one_line);
#endif
    return tc;
}
