/* The tape's mechanics: what records, what does not, accumulation,
 * lifetimes, errors and the printout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "autograd/internal.h"
#include "helpers.h"

static nd_tensor *leaf(const float *v, const int64_t *shape, int ndim) {
    return nd_requires_grad(nd_from_buffer(v, shape, ndim), true);
}

static void assert_values(const nd_tensor *t, const float *want, int n) {
    ck_assert_int_eq(nd_numel(t), n);
    nd_tensor *c = nd_contiguous(t);
    for (int i = 0; i < n; i++)
        ck_assert_msg(nd_data(c)[i] == want[i], "element %d: %.9g, expected %.9g", i,
                      (double)nd_data(c)[i], (double)want[i]);
    nd_free(c);
}

static char *read_all(FILE *f) {
    static char buf[4096];
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    return buf;
}

START_TEST(records_one_per_op_and_prints_them) {
    nd_tensor *x = leaf((const float[]){1, 2, 3, 4, 5, 6}, ND_SHAPE(2, 3));
    nd_tensor *w = leaf((const float[]){1, 0, 0, 1, 1, 1}, ND_SHAPE(3, 2));
    nd_tensor *c = nd_full(ND_SHAPE(2), 0.5f); /* a constant: not on the tape */
    ck_assert_uint_eq(nd_tape_length(), 0);
    nd_tensor *h = nd_relu(nd_add(nd_matmul(x, w), c));
    nd_tensor *loss = nd_sum(h, NULL, 0, false);
    ck_assert_uint_eq(nd_tape_length(), 4);
    ck_assert(loss->requires_grad && loss->record && !x->record);
    FILE *f = tmpfile();
    nd_tape_print(f);
    ck_assert_str_eq(read_all(f),
                     "tape: 4 records (backward walks them bottom to top)\n"
                     "  #1    matmul       leaf[2,3], leaf[3,2] -> [2,2]\n"
                     "  #2    add          #1[2,2], const[2] -> [2,2]\n"
                     "  #3    relu         #2[2,2] -> [2,2]\n"
                     "  #4    sum          #3[2,2] -> []\n");
    nd_backward(loss);
    rewind(f);
    nd_tape_print(f);
    ck_assert(strstr(read_all(f), "#4    sum          #3[2,2] -> []  (has grad)\n"));
    fclose(f);
    /* d/dx sum(relu(x w + c)) with every pre-activation positive: dx = 1 w^T */
    assert_values(x->grad, (const float[]){1, 1, 2, 1, 1, 2}, 6);
    assert_values(w->grad, (const float[]){5, 5, 7, 7, 9, 9}, 6);
}
END_TEST

START_TEST(no_grad_records_nothing) {
    nd_tensor *x = leaf((const float[]){1, 2, 3}, ND_SHAPE(3));
    nd_tensor *plain = nd_from_buffer((const float[]){1, 2, 3}, ND_SHAPE(3));
    size_t before = nd_mem_live();
    nd_exp(plain);
    size_t cost_plain = nd_mem_live() - before;
    ck_assert(nd_is_grad_enabled());
    nd_no_grad_begin();
    nd_no_grad_begin(); /* nests */
    ck_assert(!nd_is_grad_enabled());
    before = nd_mem_live();
    nd_tensor *y = nd_exp(x);
    ck_assert_uint_eq(nd_mem_live() - before, cost_plain); /* no tape memory */
    nd_no_grad_end();
    ck_assert(!nd_is_grad_enabled());
    nd_no_grad_end();
    ck_assert(nd_is_grad_enabled());
    ck_assert(!y->requires_grad && !y->record);
    ck_assert_uint_eq(nd_tape_length(), 0);
    nd_tensor *z = nd_exp(x);
    ck_assert(z->requires_grad && z->record);
    ck_assert_uint_eq(nd_tape_length(), 1);
    EXPECT_FATAL(nd_no_grad_end(), "nanodiff: no_grad_end: no matching nd_no_grad_begin");
}
END_TEST

START_TEST(detach_stops_the_gradient) {
    nd_tensor *x = leaf((const float[]){1, 2, 3}, ND_SHAPE(3));
    nd_tensor *d = nd_detach(x);
    ck_assert(d->storage == x->storage && !d->requires_grad && !d->record);
    /* y = sum(x * detach(x)): dx = detach(x) = x, not 2x */
    nd_backward(nd_sum(nd_mul(x, d), NULL, 0, false));
    assert_values(x->grad, (const float[]){1, 2, 3}, 3);
}
END_TEST

START_TEST(leaf_gradients_accumulate_until_zeroed) {
    nd_tensor *x = leaf((const float[]){1, -2}, ND_SHAPE(2));
    for (int i = 0; i < 2; i++) {
        nd_scope *s = nd_scope_begin();
        nd_backward(nd_sum(nd_mul_scalar(x, 3.0f), NULL, 0, false));
        nd_scope_end(s);
    }
    assert_values(x->grad, (const float[]){6, 6}, 2);
    nd_zero_grad(x);
    assert_values(x->grad, (const float[]){0, 0}, 2);
    nd_backward(nd_sum(nd_square(x), NULL, 0, false));
    assert_values(x->grad, (const float[]){2, -4}, 2);
}
END_TEST

START_TEST(second_backward_over_one_graph) {
    /* Leaves accumulate; a non-leaf's gradient belongs to one backward. */
    nd_tensor *x = leaf((const float[]){1, 2}, ND_SHAPE(2));
    nd_tensor *h = nd_mul(x, x);
    nd_tensor *y = nd_sum(nd_mul_scalar(h, 5.0f), NULL, 0, false);
    nd_backward(y);
    nd_backward(y);
    assert_values(x->grad, (const float[]){20, 40}, 2); /* 2 * (5 * 2x) */
    assert_values(h->grad, (const float[]){5, 5}, 2);
    assert_values(y->grad, (const float[]){1}, 1);
}
END_TEST

START_TEST(seed_gradient) {
    nd_tensor *x = leaf((const float[]){1, 2, 3, 4}, ND_SHAPE(2, 2));
    nd_tensor *y = nd_mul_scalar(nd_transpose(x, 0, 1), 2.0f);
    nd_backward_with(y, nd_from_buffer((const float[]){1, 10, 100, 1000}, ND_SHAPE(2, 2)));
    /* dx = 2 dy^T */
    assert_values(x->grad, (const float[]){2, 200, 20, 2000}, 4);
}
END_TEST

START_TEST(inputs_outlive_an_early_free) {
    /* The tape keeps its inputs alive: freeing an intermediate before
     * backward is safe (AddressSanitizer would see a use after free). */
    nd_tensor *x = leaf((const float[]){3, 4}, ND_SHAPE(2));
    nd_tensor *h = nd_mul(x, x);
    nd_tensor *y = nd_sum(nd_exp(nd_mul_scalar(h, 0.1f)), NULL, 0, false);
    nd_free(h);
    nd_backward(y);
    /* d/dx sum(exp(0.1 x^2)) = 0.2 x exp(0.1 x^2) */
    ck_assert_near(nd_data(x->grad)[0], 0.6 * exp(0.9), 1e-6);
    ck_assert_near(nd_data(x->grad)[1], 0.8 * exp(1.6), 1e-6);
}
END_TEST

START_TEST(freeing_releases_grad_and_record) {
    size_t before = nd_mem_live();
    nd_tensor *x = nd_persist(leaf((const float[]){1, 2, 3}, ND_SHAPE(3)));
    nd_scope *s = nd_scope_begin();
    nd_backward(nd_sum(nd_square(x), NULL, 0, false));
    ck_assert_uint_eq(nd_tape_length(), 2);
    nd_scope_end(s);
    ck_assert_uint_eq(nd_tape_length(), 0);
    ck_assert_ptr_nonnull(x->grad);
    nd_free(x);
    ck_assert_uint_eq(nd_mem_live(), before);
}
END_TEST

START_TEST(misuse_stops_with_a_message) {
    nd_tensor *x = leaf((const float[]){1, 2, 3}, ND_SHAPE(3));
    nd_tensor *c = nd_ones(ND_SHAPE(3));
    EXPECT_FATAL(nd_backward(nd_sum(c, NULL, 0, false)),
                 "nanodiff: backward: the tensor of shape [] does not require grad: no "
                 "recorded op produced it (no input required grad, or no-grad mode was on)");
    nd_no_grad_begin();
    nd_tensor *quiet = nd_sum(x, NULL, 0, false);
    nd_no_grad_end();
    EXPECT_FATAL(nd_backward(quiet),
                 "nanodiff: backward: the tensor of shape [] does not require grad: no "
                 "recorded op produced it (no input required grad, or no-grad mode was on)");
    EXPECT_FATAL(nd_backward(nd_exp(x)),
                 "nanodiff: backward: the loss has shape [3], not one element; use "
                 "nd_backward_with and a seed gradient");
    EXPECT_FATAL(nd_backward_with(nd_exp(x), nd_ones(ND_SHAPE(2))),
                 "nanodiff: backward: seed gradient of shape [2] for a tensor of shape [3]");
    EXPECT_FATAL(nd_requires_grad(nd_exp(x), true),
                 "nanodiff: requires_grad: tensor of shape [3] was computed by exp; only "
                 "leaves (tensors no recorded op produced) can be marked");
    EXPECT_FATAL(nd_backward(NULL), "nanodiff: backward: tensor is NULL");
    EXPECT_FATAL(nd_detach(NULL), "nanodiff: detach: tensor is NULL");
}
END_TEST

START_TEST(op_without_rule_stops_at_once) {
    /* Pretend exp had no rule: running it on a tensor that requires grad
     * must stop when it records, never give a silent zero gradient. */
    nd_tensor *x = leaf((const float[]){1, 2}, ND_SHAPE(2));
    nd_backward_fn saved = nd__rules[ND_OP_EXP].backward;
    nd__rules[ND_OP_EXP].backward = NULL;
    EXPECT_FATAL(nd_exp(x), "nanodiff: exp: has no backward rule, so it cannot run on "
                            "tensors that require grad (detach them, or use no-grad mode)");
    nd_tensor *ok = nd_exp(nd_detach(x)); /* without grad it runs */
    nd__rules[ND_OP_EXP].backward = saved;
    ck_assert(!ok->requires_grad);
    /* Every op is as tensor/ops.h lists it: a rule, no gradient, or (the
     * backward passes: no double backward) neither, so that it stops like
     * an op without one. */
    int never = 0;
    for (int op = 0; op < ND_OP_COUNT; op++) {
        nd_op_grad kind = nd_op_grad_kind((nd_op)op);
        ck_assert_msg((kind == ND_GRAD_RULE) == (nd__rules[op].backward != NULL) &&
                          (kind == ND_GRAD_NONE) == nd__rules[op].not_differentiable,
                      "op %s is not as ops.h lists it", nd_op_name((nd_op)op));
        never += kind == ND_GRAD_NEVER;
    }
    ck_assert_int_eq(never, 3);
    ck_assert_int_eq(nd_op_grad_kind(ND_OP_CONV2D_BACKWARD_INPUT), ND_GRAD_NEVER);
    ck_assert_int_eq(nd_op_grad_kind(ND_OP_EQ), ND_GRAD_NONE);
    /* and a rule missing from the table is caught before any op records */
    nd__rules[ND_OP_EXP].backward = NULL;
    EXPECT_FATAL(nd__rules_check(), "nanodiff: autograd: op exp is listed with a backward rule "
                                    "in tensor/ops.h but none is registered in "
                                    "autograd/rules_*.c");
    nd__rules[ND_OP_EXP].backward = saved;
    nd__rules[ND_OP_ARGMAX].backward = saved;
    EXPECT_FATAL(nd__rules_check(), "nanodiff: autograd: op argmax is listed without a backward "
                                    "rule in tensor/ops.h but one is registered in "
                                    "autograd/rules_*.c");
    nd__rules[ND_OP_ARGMAX].backward = NULL;
    nd__rules_check();
    nd_tensor *dy = leaf((const float[]){1, 2, 3, 4}, ND_SHAPE(1, 1, 2, 2));
    nd_tensor *w = nd_ones(ND_SHAPE(1, 1, 1, 1));
    const int64_t x_shape[4] = {1, 1, 2, 2};
    const nd_conv2d_opts o = {1, 1, 0, 0, 0, 0};
    EXPECT_FATAL(nd_conv2d_backward_input(dy, w, x_shape, o),
                 "nanodiff: conv2d_backward_input: has no backward rule, so it cannot run on "
                 "tensors that require grad (detach them, or use no-grad mode)");
}
END_TEST

START_TEST(non_leaf_gradients_are_kept_for_inspection) {
    nd_tensor *x = leaf((const float[]){0.5f, -1}, ND_SHAPE(2));
    nd_tensor *h = nd_tanh(x);
    nd_backward(nd_sum(nd_mul_scalar(h, 3.0f), NULL, 0, false));
    assert_values(h->grad, (const float[]){3, 3}, 2);
    ck_assert_near(nd_data(x->grad)[0], 3.0 * (1 - tanh(0.5) * tanh(0.5)), 1e-6);
    ck_assert_near(nd_data(x->grad)[1], 3.0 * (1 - tanh(-1.0) * tanh(-1.0)), 1e-6);
}
END_TEST

/* y = u + m, u = a + b, m = 5 a, a = 2 x, b = 3 x. add's rule hands dy
 * to both inputs, so u, m, a and b first get views of y's gradient; m's
 * rule then gives a a second gradient, which must be added out of place:
 * added into the shared storage, it would also turn b's gradient (and
 * u's, m's, y's) into 6 dy, and x's into 30 dy instead of 15 dy. */
START_TEST(shared_non_leaf_gradients_are_added_out_of_place) {
    nd_tensor *x = leaf((const float[]){1, -2, 0.5f}, ND_SHAPE(3));
    const float dyv[] = {1, 2, -4};
    nd_tensor *a = nd_mul_scalar(x, 2.0f), *b = nd_mul_scalar(x, 3.0f);
    nd_tensor *m = nd_mul_scalar(a, 5.0f);
    nd_tensor *u = nd_add(a, b);
    nd_tensor *y = nd_add(u, m);
    nd_backward_with(y, nd_from_buffer(dyv, ND_SHAPE(3)));
    ck_assert_ptr_ne(nd_data(y->grad), dyv); /* the seed is copied */
    ck_assert_ptr_eq(nd_data(u->grad), nd_data(y->grad));
    ck_assert_ptr_eq(nd_data(b->grad), nd_data(y->grad));
    ck_assert_ptr_ne(nd_data(a->grad), nd_data(y->grad));
    const nd_tensor *once[4] = {y->grad, u->grad, m->grad, b->grad};
    for (int i = 0; i < 4; i++) assert_values(once[i], dyv, 3);
    assert_values(a->grad, (const float[]){6, 12, -24}, 3);
    assert_values(x->grad, (const float[]){15, 30, -60}, 3);
    ck_assert(nd_owns_storage(x->grad));
    /* zeroing a shared gradient leaves the others alone */
    nd_zero_grad(b);
    assert_values(b->grad, (const float[]){0, 0, 0}, 3);
    assert_values(u->grad, dyv, 3);
    nd_zero_grad(x);
    assert_values(x->grad, (const float[]){0, 0, 0}, 3);
}
END_TEST

/* A gradient kept as a view is not copied into a leaf: the leaf's own
 * gradient takes later additions without touching the non-leaf's. */
START_TEST(leaf_gradients_own_their_storage) {
    nd_tensor *x = leaf((const float[]){1, 2}, ND_SHAPE(2));
    nd_tensor *h = nd_mul_scalar(x, 1.0f);
    nd_tensor *y = nd_add(x, h);
    nd_backward_with(y, nd_full(ND_SHAPE(2), 3.0f));
    ck_assert_ptr_eq(nd_data(h->grad), nd_data(y->grad));
    ck_assert(nd_owns_storage(x->grad));
    ck_assert_ptr_ne(nd_data(x->grad), nd_data(y->grad));
    assert_values(x->grad, (const float[]){6, 6}, 2);
    nd_add_(x->grad, nd_ones(ND_SHAPE(2)));
    assert_values(h->grad, (const float[]){3, 3}, 2);
    assert_values(y->grad, (const float[]){3, 3}, 2);
}
END_TEST

START_TEST(steady_memory_over_1000_steps) {
    /* A small model trained for 1000 steps: after every step, the live
     * bytes equal those after the first (parameters and their gradients
     * persist; activations, records and non-leaf gradients do not). */
    nd_rng g = nd_rng_init(11, 0);
    nd_tensor *w1 = nd_requires_grad(nd_persist(nd_randn(&g, ND_SHAPE(4, 16))), true);
    nd_tensor *w2 = nd_requires_grad(nd_persist(nd_randn(&g, ND_SHAPE(16, 2))), true);
    nd_tensor *x = nd_persist(nd_randn(&g, ND_SHAPE(8, 4)));
    size_t after_first = 0, peak_second = 0;
    for (int step = 1; step <= 1000; step++) {
        nd_scope *s = nd_scope_begin();
        nd_tensor *h = nd_silu(nd_matmul(x, w1));
        nd_tensor *p = nd_softmax(nd_matmul(h, w2), -1);
        nd_backward(nd_mean(nd_log(p), NULL, 0, false));
        nd_no_grad_begin();
        nd_copy_(w1, nd_sub(w1, nd_mul_scalar(w1->grad, 0.01f)));
        nd_copy_(w2, nd_sub(w2, nd_mul_scalar(w2->grad, 0.01f)));
        nd_no_grad_end();
        nd_zero_grad(w1);
        nd_zero_grad(w2);
        nd_scope_end(s);
        if (step == 1) after_first = nd_mem_live();
        /* From the second step on the gradients exist and are added to in
         * place, so the high-water mark stops moving too. */
        if (step == 2) peak_second = nd_mem_peak();
        if (step == 1000) {
            ck_assert_uint_eq(nd_mem_live(), after_first);
            ck_assert_uint_eq(nd_mem_peak(), peak_second);
            ck_assert_uint_eq(nd_tape_length(), 0);
        }
    }
    nd_free(w1);
    nd_free(w2);
    nd_free(x);
}
END_TEST

/* A small MLP whose input feeds two branches, with a broadcast bias:
 * enough fan-in and fan-out for the walk's order of frees to matter. */
static nd_tensor *branchy_loss(nd_tensor *x, nd_tensor *w, nd_tensor *b, nd_tensor **h_out) {
    nd_tensor *h = nd_silu(nd_add(nd_matmul(x, w), b));
    nd_tensor *p = nd_softmax(nd_mul(h, nd_tanh(x)), -1);
    *h_out = h;
    return nd_mean(nd_add(nd_log(p), nd_square(h)), NULL, 0, false);
}

START_TEST(free_graph_gives_the_same_gradients) {
    nd_rng g = nd_rng_init(5, 0);
    nd_tensor *x = nd_requires_grad(nd_randn(&g, ND_SHAPE(6, 6)), true);
    nd_tensor *w = nd_requires_grad(nd_randn(&g, ND_SHAPE(6, 6)), true);
    nd_tensor *b = nd_requires_grad(nd_randn(&g, ND_SHAPE(6)), true);
    nd_tensor *leaves[3] = {x, w, b}, *kept[3];
    nd_tensor *h;
    float loss_kept = nd_item(branchy_loss(x, w, b, &h));
    nd_backward(branchy_loss(x, w, b, &h));
    for (int k = 0; k < 3; k++) {
        kept[k] = nd_clone(leaves[k]->grad);
        nd_zero_grad(leaves[k]);
    }
    size_t tape_before = nd_tape_length();
    nd_tensor *loss = branchy_loss(x, w, b, &h);
    size_t recorded = nd_tape_length() - tape_before;
    nd_backward_free_graph(loss);
    for (int k = 0; k < 3; k++) /* the same walk, so the same bits */
        for (int64_t i = 0; i < nd_numel(kept[k]); i++)
            ck_assert_msg(nd_data(leaves[k]->grad)[i] == nd_data(kept[k])[i],
                          "input %d element %lld: %.9g, expected %.9g", k, (long long)i,
                          (double)nd_data(leaves[k]->grad)[i], (double)nd_data(kept[k])[i]);
    ck_assert_uint_gt(recorded, 8);
    ck_assert_uint_eq(nd_tape_length(), tape_before); /* every record it walked is gone */
    ck_assert_float_eq(nd_item(loss), loss_kept);      /* values stay readable */
    ck_assert_ptr_null(loss->record);
    ck_assert_ptr_null(loss->grad);
    ck_assert_ptr_null(h->record);
    ck_assert_ptr_null(h->grad);
    ck_assert_ptr_nonnull(x->grad); /* leaves keep theirs */
}
END_TEST

START_TEST(free_graph_frees_as_it_walks) {
    /* A chain of 16 ops over 64 KiB each, its intermediates freed by the
     * forward so that only the tape holds them. Keeping the graph, backward
     * adds a gradient per op on top of the activations; freeing it, one op's
     * gradients and temporaries at a time, and at the end only the leaf and
     * its gradient stay. */
    enum { LEN = 16384, OPS = 16 };
    size_t bytes = LEN * sizeof(float);
    size_t grown[2];
    for (int free_graph = 0; free_graph < 2; free_graph++) {
        size_t base = nd_mem_live();
        nd_tensor *x = nd_persist(nd_requires_grad(nd_full(ND_SHAPE(LEN), 0.5f), true));
        nd_scope *s = nd_scope_begin();
        nd_tensor *h = x;
        for (int i = 0; i < OPS; i++) {
            nd_tensor *m = nd_mul_scalar(h, 1.1f), *next = nd_tanh(m);
            nd_free(m);
            if (h != x) nd_free(h);
            h = next;
        }
        nd_tensor *loss = nd_sum(h, NULL, 0, false);
        nd_free(h);
        size_t after_forward = nd_mem_live();
        nd_mem_reset_peak();
        if (free_graph) nd_backward_free_graph(loss);
        else nd_backward(loss);
        grown[free_graph] = nd_mem_peak() - after_forward;
        if (free_graph) {
            ck_assert_uint_eq(nd_tape_length(), 0);
            ck_assert_uint_lt(nd_mem_live() - base, 3 * bytes); /* x, x.grad, the loss */
        }
        nd_scope_end(s);
        nd_free(x);
        ck_assert_uint_eq(nd_mem_live(), base);
    }
    ck_assert_msg(grown[0] > (size_t)OPS * bytes, "keeping the graph grew by %zu", grown[0]);
    ck_assert_msg(grown[1] < 6 * bytes, "freeing the graph grew by %zu", grown[1]);
}
END_TEST

START_TEST(free_graph_cannot_be_walked_again) {
    nd_tensor *x = leaf((const float[]){1, 2}, ND_SHAPE(2));
    nd_tensor *h = nd_exp(x);
    nd_tensor *y = nd_sum(h, NULL, 0, false);
    nd_tensor *z = nd_sum(nd_square(h), NULL, 0, false); /* shares h with y */
    nd_backward_free_graph(y);
    ck_assert_near(nd_data(x->grad)[1], exp(2.0), 1e-6);
    const char *msg = "nanodiff: backward: the tensor of shape %s was on a graph that "
                      "nd_backward_free_graph has freed; walk a graph more than once "
                      "with nd_backward";
    char want[256];
    snprintf(want, sizeof want, msg, "[]");
    EXPECT_FATAL(nd_backward_free_graph(y), want);
    EXPECT_FATAL(nd_backward(y), want);
    snprintf(want, sizeof want, msg, "[2]");
    EXPECT_FATAL(nd_backward(z), want);
    EXPECT_FATAL(nd_backward_free_graph(nd_exp(x)),
                 "nanodiff: backward: the loss has shape [2], not one element; use "
                 "nd_backward_with and a seed gradient");
    /* Declared a leaf again, h takes gradients as one. */
    nd_requires_grad(h, true);
    nd_backward(nd_sum(nd_mul_scalar(h, 3.0f), NULL, 0, false));
    assert_values(h->grad, (const float[]){3, 3}, 2);
}
END_TEST

START_TEST(records_keep_only_the_values_their_rules_read) {
    /* exp's rule reads its output, not its input; sum's reads neither. */
    nd_tensor *x = leaf((const float[]){0.5f, -1, 2, 0}, ND_SHAPE(4));
    nd_tensor *m = nd_mul(x, x);
    nd_tensor *e = nd_exp(m);
    nd_tensor *loss = nd_sum(e, NULL, 0, false);
    size_t before = nd_mem_live();
    nd_free(m); /* only exp's record holds m now, for its shape */
    nd_free(e); /* sum's record holds e for its shape, exp's keeps its values */
    ck_assert_ptr_null(m->storage);
    ck_assert_ptr_nonnull(e->storage);
    ck_assert_uint_lt(nd_mem_live(), before);
    EXPECT_FATAL(nd_data(m), "nanodiff: data: the values of this [4] tensor were released: "
                             "only references to its shape (nd_retain_shape) were left");
    nd_backward(loss);
    const float xs[4] = {0.5f, -1, 2, 0};
    for (int i = 0; i < 4; i++) /* d/dx sum exp(x^2) = 2 x exp(x^2) */
        ck_assert_near(nd_data(x->grad)[i], 2.0 * xs[i] * exp((double)xs[i] * xs[i]), 1e-5);
}
END_TEST

TCase *tcase_tape(void) {
    TCase *tc = nd_test_case("tape");
    tcase_add_test(tc, records_one_per_op_and_prints_them);
    tcase_add_test(tc, no_grad_records_nothing);
    tcase_add_test(tc, detach_stops_the_gradient);
    tcase_add_test(tc, leaf_gradients_accumulate_until_zeroed);
    tcase_add_test(tc, second_backward_over_one_graph);
    tcase_add_test(tc, seed_gradient);
    tcase_add_test(tc, inputs_outlive_an_early_free);
    tcase_add_test(tc, freeing_releases_grad_and_record);
    tcase_add_test(tc, misuse_stops_with_a_message);
    tcase_add_test(tc, op_without_rule_stops_at_once);
    tcase_add_test(tc, non_leaf_gradients_are_kept_for_inspection);
    tcase_add_test(tc, shared_non_leaf_gradients_are_added_out_of_place);
    tcase_add_test(tc, leaf_gradients_own_their_storage);
    tcase_add_test(tc, steady_memory_over_1000_steps);
    tcase_add_test(tc, free_graph_gives_the_same_gradients);
    tcase_add_test(tc, free_graph_frees_as_it_walks);
    tcase_add_test(tc, free_graph_cannot_be_walked_again);
    tcase_add_test(tc, records_keep_only_the_values_their_rules_read);
    return tc;
}
