/* Gradients of the 2-d convolution: nd_gradcheck (backward against central
 * differences) with respect to x, w and the bias, on small odd shapes,
 * strides 1 and 2, symmetric and asymmetric padding, and strided inputs;
 * and its backward passes, which have no rule, stop when asked for a
 * second derivative. */
#include <stdio.h>
#include <string.h>

#include "helpers.h"
#include "autograd/autograd.h"

typedef struct {
    const char *name;
    int64_t n, c, h, w, o, kh, kw;
    nd_conv2d_opts opt;
    bool bias;
    bool strided; /* x and w as views with other strides */
} grad_case;

static const grad_case grad_cases[] = {
    {"3x3 stride 1 pad 1", 2, 3, 5, 7, 4, 3, 3, {1, 1, 1, 1, 1, 1}, true, false},
    {"3x3 stride 2 SAME-style pads", 2, 3, 6, 4, 3, 3, 3, {2, 2, 0, 1, 0, 1}, true, false},
    {"3x2 stride (2,1) asymmetric pads", 1, 3, 7, 5, 5, 3, 2, {2, 1, 2, 0, 1, 3}, true, true},
    {"1x3 stride (1,2), no bias", 3, 2, 3, 7, 3, 1, 3, {1, 2, 0, 1, 2, 0}, false, false},
    {"2x2 stride 2 no pad, strided", 2, 5, 5, 5, 3, 2, 2, {2, 2, 0, 0, 0, 0}, true, true},
};

static nd_tensor *f_conv(nd_tensor *const *in, void *ctx) {
    const grad_case *k = ctx;
    return nd_conv2d(in[0], in[1], k->bias ? in[2] : NULL, k->opt);
}

/* Values in [-1, 1); strided inputs are views of bases that do not
 * require grad (x permuted from [N,H,W,C], w every other column of
 * [O,C,KH,2KW]), so they are still leaves. */
static void make(const grad_case *k, uint64_t seed, nd_tensor **in) {
    if (k->strided) {
        in[0] = nd_permute(t_uniform(seed, ND_SHAPE(k->n, k->h, k->w, k->c), -1, 1),
                           ND_AXES(0, 3, 1, 2));
        in[1] = nd_slice(t_uniform(seed + 1, ND_SHAPE(k->o, k->c, k->kh, 2 * k->kw), -1, 1),
                         3, 1, ND_END, 2);
    } else {
        in[0] = t_uniform(seed, ND_SHAPE(k->n, k->c, k->h, k->w), -1, 1);
        in[1] = t_uniform(seed + 1, ND_SHAPE(k->o, k->c, k->kh, k->kw), -1, 1);
    }
    in[2] = t_uniform(seed + 2, ND_SHAPE(k->o), -1, 1);
}

START_TEST(test_grad_conv2d) {
    char log[4000] = "";
    int failed = 0;
    for (int i = 0; i < (int)(sizeof grad_cases / sizeof grad_cases[0]); i++) {
        const grad_case *k = &grad_cases[i];
        nd_scope *s = nd_scope_begin();
        nd_tensor *in[3];
        make(k, 40 + 10 * (uint64_t)i, in);
        /* The convolution is linear in each input, so central differences
         * are exact but for the float rounding of the loss; same
         * tolerances as the other ops. */
        nd_gradcheck_report rep;
        bool ok = nd_gradcheck(f_conv, (void *)k, in, k->bias ? 3 : 2, 1e-2, 2e-3, 1e-2, &rep);
        int64_t want = nd_numel(in[0]) + nd_numel(in[1]) + (k->bias ? nd_numel(in[2]) : 0);
        if (!ok || rep.checked != want) {
            failed++;
            size_t used = strlen(log);
            snprintf(log + used, sizeof log - used,
                     "\n  %s: %lld of %lld (of %lld) out of tolerance; worst: input %d element "
                     "%lld, analytic %.7g, numeric %.7g",
                     k->name, (long long)rep.failed, (long long)rep.checked, (long long)want,
                     rep.worst_input, (long long)rep.worst_index, rep.analytic, rep.numeric);
        }
        nd_scope_end(s);
    }
    ck_assert_msg(failed == 0, "%d conv2d gradchecks failed:%s", failed, log);
}
END_TEST

/* L = sum(conv2d(x, w, b)) with a 1x1 kernel of ones over one channel
 * and four output channels: dL/dy = 1 everywhere, so dx = 4 (each output
 * channel sees x with weight 1), dw[o] = sum of x, db[o] = N OH OW. */
START_TEST(test_conv2d_grads_by_hand) {
    nd_tensor *x = nd_requires_grad(nd_reshape(nd_arange(1, 13, 1), ND_SHAPE(2, 1, 2, 3)), true);
    nd_tensor *w = nd_requires_grad(nd_ones(ND_SHAPE(4, 1, 1, 1)), true);
    nd_tensor *b = nd_requires_grad(nd_zeros(ND_SHAPE(4)), true);
    nd_tensor *y = nd_conv2d(x, w, b, (nd_conv2d_opts){1, 1, 0, 0, 0, 0});
    ck_assert(y->requires_grad && y->record);
    nd_backward(nd_sum(y, NULL, 0, false));
    for (int i = 0; i < 12; i++) ck_assert(nd_data(x->grad)[i] == 4.0f);
    for (int o = 0; o < 4; o++) {
        ck_assert(nd_data(w->grad)[o] == 78.0f); /* 1 + 2 + ... + 12 */
        ck_assert(nd_data(b->grad)[o] == 12.0f);
    }
}
END_TEST

START_TEST(test_no_double_backward) {
    const nd_conv2d_opts o = {1, 1, 1, 1, 1, 1};
    nd_tensor *dy = nd_requires_grad(t_uniform(1, ND_SHAPE(1, 2, 3, 3), -1, 1), true);
    nd_tensor *x = t_uniform(2, ND_SHAPE(1, 3, 3, 3), -1, 1);
    nd_tensor *w = t_uniform(3, ND_SHAPE(2, 3, 3, 3), -1, 1);
    EXPECT_FATAL(nd_conv2d_backward_input(dy, w, x->shape, o),
                 "nanodiff: conv2d_backward_input: has no backward rule, so it cannot run on "
                 "tensors that require grad (detach them, or use no-grad mode)");
    EXPECT_FATAL(nd_conv2d_backward_weight(dy, x, w->shape, o),
                 "nanodiff: conv2d_backward_weight: has no backward rule, so it cannot run on "
                 "tensors that require grad (detach them, or use no-grad mode)");
    /* detached, or in no-grad mode, they run */
    nd_tensor *dx = nd_conv2d_backward_input(nd_detach(dy), w, x->shape, o);
    ck_assert(!dx->requires_grad);
    nd_no_grad_begin();
    nd_tensor *dw = nd_conv2d_backward_weight(dy, x, w->shape, o);
    nd_no_grad_end();
    ck_assert(!dw->requires_grad);
}
END_TEST

TCase *tcase_grad_conv(void) {
    TCase *tc = nd_test_case("grad_conv");
    tcase_add_test(tc, test_grad_conv2d);
    tcase_add_test(tc, test_conv2d_grads_by_hand);
    tcase_add_test(tc, test_no_double_backward);
    return tc;
}
