/* Functions: ops defined above the tensor layer with their own backward
 * (nd_function_apply). A cube y = x^3 computed by hand, with dx = 3 x^2 dy
 * from a saved tensor, and a scaled copy whose scale travels in args. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "autograd/autograd.h"
#include "helpers.h"

/* y = x^3:  dx = 3 x^2 dy, with x^2 saved by the forward */
static void cube_backward(const nd_function_ctx *ctx, const nd_tensor *dy,
                          nd_tensor **grads) {
    grads[0] = nd_mul(nd_mul_scalar(ctx->saved[0], 3.0f), dy);
}
static const nd_function cube_fn = {.name = "cube", .backward = cube_backward};

static nd_tensor *cube(const nd_tensor *x) {
    nd_no_grad_begin();
    nd_tensor *sq = nd_mul(x, x);
    nd_tensor *y = nd_mul(sq, x);
    nd_no_grad_end();
    const nd_tensor *in[1] = {x}, *saved[1] = {sq};
    nd_function_apply(&cube_fn, y, in, 1, saved, 1, NULL, 0);
    nd_free(sq); /* the record keeps it alive */
    return y;
}

/* y = s a + b with s in args:  da = s dy, db = dy */
static void axpy_backward(const nd_function_ctx *ctx, const nd_tensor *dy,
                          nd_tensor **grads) {
    float s = *(const float *)ctx->args;
    grads[0] = nd_mul_scalar(dy, s);
    grads[1] = nd_clone(dy);
}
static const nd_function axpy_fn = {.name = "axpy", .backward = axpy_backward};

static nd_tensor *axpy(float s, const nd_tensor *a, const nd_tensor *b) {
    nd_no_grad_begin();
    nd_tensor *y = nd_add(nd_mul_scalar(a, s), b);
    nd_no_grad_end();
    const nd_tensor *in[2] = {a, b};
    return nd_function_apply(&axpy_fn, y, in, 2, NULL, 0, &s, sizeof s);
}

static nd_tensor *f_mix(nd_tensor *const *in, void *ctx) {
    (void)ctx;
    return nd_sum(cube(axpy(-1.5f, in[0], in[1])), ND_AXES(1), false);
}

START_TEST(function_gradients_match_differences) {
    nd_tensor *in[2] = {t_uniform(1, ND_SHAPE(3, 4), -1, 1),
                        t_uniform(2, ND_SHAPE(4), -1, 1)}; /* b broadcasts */
    nd_gradcheck_report rep;
    ck_assert(nd_gradcheck(f_mix, NULL, in, 2, 1e-2, 1e-3, 1e-2, &rep));
    ck_assert_int_eq(rep.checked, 16);
}
END_TEST

START_TEST(function_records_once_and_prints_its_name) {
    nd_tensor *x = nd_requires_grad(nd_persist(nd_from_buffer((const float[]){1, 2},
                                                              ND_SHAPE(2))), true);
    size_t before = nd_tape_length();
    nd_tensor *y = cube(x);
    ck_assert_uint_eq(nd_tape_length(), before + 1);
    char buf[512];
    FILE *f = t_print_begin();
    nd_tape_print(f);
    ck_assert_str_eq(t_print_end(f, buf, sizeof buf), "tape: 1 record (backward walks them bottom to top)\n"
                          "  #1    cube         leaf[2] -> [2]\n");
    nd_backward(nd_sum(y, NULL, 0, false));
    ck_assert_float_eq(nd_data(x->grad)[0], 3.0f);
    ck_assert_float_eq(nd_data(x->grad)[1], 12.0f);
    /* no input requires grad, or no-grad mode: nothing recorded */
    size_t n = nd_tape_length();
    nd_tensor *c = nd_from_buffer((const float[]){1}, ND_SHAPE(1));
    ck_assert(!cube(c)->record);
    nd_no_grad_begin();
    ck_assert(!cube(x)->record);
    nd_no_grad_end();
    ck_assert_uint_eq(nd_tape_length(), n);
    nd_free(x);
}
END_TEST

static void lazy_backward(const nd_function_ctx *ctx, const nd_tensor *dy,
                          nd_tensor **grads) {
    (void)ctx;
    (void)dy;
    (void)grads;
}
static const nd_function lazy_fn = {.name = "lazy", .backward = lazy_backward};

/* Stopping in the middle of backward leaves its scopes open, so this
 * check runs without the fixture's leak check, in a process of its own
 * (an exit test: one even where the runner does not fork). */
START_TEST(function_without_gradient_stops_backward) {
    nd_tensor *x = nd_requires_grad(nd_persist(nd_ones(ND_SHAPE(2))), true);
    const nd_tensor *in[1] = {x};
    nd_tensor *y = nd_function_apply(&lazy_fn, nd_ones(ND_SHAPE(2)), in, 1, NULL, 0, NULL, 0);
    EXPECT_FATAL(nd_backward(nd_sum(y, NULL, 0, false)),
                 "nanodiff: lazy: backward gave no gradient for input 0, which requires grad");
}
END_TEST

START_TEST(function_misuse_stops) {
    nd_tensor *x = nd_requires_grad(nd_persist(nd_ones(ND_SHAPE(2))), true);
    const nd_tensor *in[1] = {x};
    EXPECT_FATAL(nd_function_apply(&lazy_fn, x, in, 1, NULL, 0, NULL, 0),
                 "nanodiff: lazy: the output must be a new tensor, not one already on the "
                 "tape or a leaf that requires grad");
    EXPECT_FATAL(nd_function_apply(&lazy_fn, nd_ones(ND_SHAPE(2)), in, 0, NULL, 0, NULL, 0),
                 "nanodiff: lazy: bad input list (nin 0, nsaved 0)");
    nd_free(x);
}
END_TEST

/* y = a + b (by hand) with both gradients 2 dy: `twice` gives both inputs
 * the same new tensor, `viewed` the second a view of the first's. */
static const nd_tensor *made; /* what the last backward returned first */
static void twice_backward(const nd_function_ctx *ctx, const nd_tensor *dy,
                           nd_tensor **grads) {
    (void)ctx;
    grads[0] = grads[1] = nd_mul_scalar(dy, 2.0f);
    made = grads[0];
}
static void viewed_backward(const nd_function_ctx *ctx, const nd_tensor *dy,
                            nd_tensor **grads) {
    (void)ctx;
    grads[0] = nd_mul_scalar(dy, 2.0f);
    grads[1] = nd_view(grads[0], dy->shape, dy->ndim);
    made = grads[0];
}
static const nd_function twice_fn = {.name = "twice", .backward = twice_backward};
static const nd_function viewed_fn = {.name = "viewed", .backward = viewed_backward};

static nd_tensor *sum_by_hand(const nd_function *fn, const nd_tensor *a, const nd_tensor *b) {
    nd_no_grad_begin();
    nd_tensor *y = nd_add(a, b);
    nd_no_grad_end();
    const nd_tensor *in[2] = {a, b};
    return nd_function_apply(fn, y, in, 2, NULL, 0, NULL, 0);
}

/* A gradient the backward made and nothing else holds becomes the first
 * input's own, not a copy; the same tensor handed to a second input, or a
 * view of it, is copied, so that adding into one gradient never changes
 * another. With the input twice, its gradient is the sum of both. */
START_TEST(function_gradients_are_kept_or_copied) {
    const float dyv[] = {1, -2, 3};
    const nd_function *fns[2] = {&twice_fn, &viewed_fn};
    for (int f = 0; f < 2; f++) {
        nd_tensor *a = nd_requires_grad(nd_persist(nd_zeros(ND_SHAPE(3))), true);
        nd_tensor *b = nd_requires_grad(nd_persist(nd_zeros(ND_SHAPE(3))), true);
        nd_scope *s = nd_scope_begin();
        nd_backward_with(sum_by_hand(fns[f], a, b), nd_from_buffer(dyv, ND_SHAPE(3)));
        nd_scope_end(s);
        ck_assert_msg((a->grad == made) == (f == 0), "%s: kept %d", fns[f]->name,
                      a->grad == made);
        ck_assert_ptr_ne(a->grad, b->grad);
        ck_assert_ptr_ne(nd_data(a->grad), nd_data(b->grad));
        nd_add_(a->grad, nd_ones(ND_SHAPE(3)));
        for (int i = 0; i < 3; i++) {
            ck_assert_float_eq(nd_data(a->grad)[i], 2.0f * dyv[i] + 1.0f);
            ck_assert_float_eq(nd_data(b->grad)[i], 2.0f * dyv[i]);
        }
        nd_free(a);
        nd_free(b);
    }
    nd_tensor *x = nd_requires_grad(nd_persist(nd_zeros(ND_SHAPE(3))), true);
    nd_scope *s = nd_scope_begin();
    nd_backward_with(sum_by_hand(&twice_fn, x, x), nd_from_buffer(dyv, ND_SHAPE(3)));
    nd_scope_end(s);
    for (int i = 0; i < 3; i++) ck_assert_float_eq(nd_data(x->grad)[i], 4.0f * dyv[i]);
    nd_free(x);
}
END_TEST

/* Functions with a recompute: the tape lets their outputs' values go when
 * only rules hold them, forms them again just before a rule that reads
 * them runs (first the values that recompute reads, if they went too),
 * and lets them go again after. */
static int recomputes;
static void expo_backward(const nd_function_ctx *ctx, const nd_tensor *dy, nd_tensor **grads) {
    grads[0] = nd_mul(dy, nd_exp(ctx->saved[0])); /* d e^x = e^x dx */
}
static void expo_recompute(const nd_function_ctx *ctx, nd_tensor *out) {
    recomputes++;
    nd_copy_(out, nd_exp(ctx->in[0]));
}
static const nd_function expo_fn = {.name = "expo",
                                    .backward = expo_backward,
                                    .recompute = expo_recompute,
                                    .recompute_reads_inputs = true};

/* y = x / 2, keeping nothing: its recompute reads its input */
static void halve_backward(const nd_function_ctx *ctx, const nd_tensor *dy, nd_tensor **grads) {
    (void)ctx;
    grads[0] = nd_mul_scalar(dy, 0.5f);
}
static void halve_recompute(const nd_function_ctx *ctx, nd_tensor *out) {
    recomputes++;
    nd_copy_(out, nd_mul_scalar(ctx->in[0], 0.5f));
}
static const nd_function halve_fn = {.name = "halve",
                                     .backward = halve_backward,
                                     .recompute = halve_recompute,
                                     .recompute_reads_inputs = true};

static nd_tensor *halve(const nd_tensor *x) {
    nd_no_grad_begin();
    nd_tensor *y = nd_mul_scalar(x, 0.5f);
    nd_no_grad_end();
    const nd_tensor *in[1] = {x};
    return nd_function_apply(&halve_fn, y, in, 1, NULL, 0, NULL, 0);
}

static nd_tensor *expo(const nd_tensor *x) {
    nd_no_grad_begin();
    nd_tensor *y = nd_exp(x);
    nd_no_grad_end();
    const nd_tensor *in[1] = {x};
    return nd_function_apply(&expo_fn, y, in, 1, in, 1, NULL, 0);
}

static nd_tensor *f_expo_square(nd_tensor *const *in, void *ctx) {
    (void)ctx;
    return nd_square(halve(expo(halve(expo(in[0])))));
}

START_TEST(function_outputs_are_computed_again_when_read) {
    nd_tensor *x = nd_requires_grad(nd_persist(nd_from_buffer((const float[]){0.5f, -1, 2},
                                                              ND_SHAPE(3))),
                                    true);
    for (int walk = 0; walk < 2; walk++) {
        nd_scope *outer = nd_scope_begin();
        nd_scope *s = nd_scope_begin();
        nd_tensor *e = expo(x);
        nd_tensor *ee = halve(e);
        nd_tensor *loss = nd_keep(nd_sum(nd_square(ee), NULL, 0, false)); /* reads ee */
        nd_scope_end(s);
        ck_assert_ptr_null(e->storage); /* the tape holds both for their shapes */
        ck_assert_ptr_null(ee->storage);
        recomputes = 0;
        if (walk) nd_backward_free_graph(loss);
        else nd_backward(loss);
        ck_assert_int_eq(recomputes, 2); /* ee for square's rule, e for ee's recompute */
        if (!walk) {
            ck_assert_ptr_null(e->storage); /* and released again */
            ck_assert_ptr_null(ee->storage);
        }
        /* loss = sum (e^x / 2)^2: d/dx = e^2x / 2 */
        const float xs[3] = {0.5f, -1, 2};
        for (int i = 0; i < 3; i++) ck_assert_near(nd_data(x->grad)[i], exp(2.0 * xs[i]) / 2, 1e-5);
        nd_zero_grad(x);
        nd_scope_end(outer);
    }
    /* and through the gradient check, whose f's intermediates only the tape holds */
    nd_tensor *in[1] = {x};
    nd_gradcheck_report rep;
    ck_assert(nd_gradcheck(f_expo_square, NULL, in, 1, 1e-3, 1e-3, 1e-2, &rep));
    nd_free(x);
}
END_TEST

TCase *tcase_function(void) {
    TCase *tc = nd_test_case("function");
    tcase_add_test(tc, function_gradients_match_differences);
    tcase_add_test(tc, function_records_once_and_prints_its_name);
    tcase_add_test(tc, function_misuse_stops);
    tcase_add_test(tc, function_gradients_are_kept_or_copied);
    tcase_add_test(tc, function_outputs_are_computed_again_when_read);
    return tc;
}

TCase *tcase_function_unclean(void) {
    TCase *tc = tcase_create("function_unclean");
    tcase_add_exit_test(tc, function_without_gradient_stops_backward, 0);
    return tc;
}
