/* Modules: dotted names, ownership, modes, init statistics, the walk over
 * modules, Sequential, the tree's generator, Embedding. */
#include <math.h>
#include <string.h>

#include "helpers.h"
#include "nn/nn.h"

/* A two-level model: "body" holds a Linear as "0" and a Conv2d as "1",
 * the root holds a parameter "scale" and a Linear "head". */
typedef struct {
    nd_module base;
    nd_tensor *scale;
} toy;
static void toy_destroy(nd_module *m) { nd_dealloc(m, sizeof(toy)); }

static nd_module *toy_new(nd_rng *g) {
    toy *t = nd_alloc(sizeof *t);
    nd_module_init(&t->base, "Toy", toy_destroy);
    t->scale = nd_module_param(&t->base, "scale", nd_ones(ND_SHAPE(1)));
    nd_module *body = nd_sequential_new();
    nd_sequential_add(body, &nd_linear_new(3, 4, true, g)->base);
    nd_sequential_add(body, &nd_conv2d_new(2, 5, 3, 3, nd_conv2d_same(3), false, g)->base);
    nd_module_child(&t->base, "body", body);
    nd_module_child(&t->base, "head", &nd_linear_new(4, 2, true, g)->base);
    return &t->base;
}

START_TEST(dotted_names_in_order) {
    nd_rng g = nd_rng_init(1, 0);
    nd_module *m = toy_new(&g);
    nd_param_list ps = nd_parameters(m);
    const char *want[] = {"scale", "body.0.weight", "body.0.bias", "body.1.weight",
                          "head.weight", "head.bias"};
    ck_assert_int_eq(ps.n, 6);
    for (int i = 0; i < 6; i++) {
        ck_assert_str_eq(ps.items[i].name, want[i]);
        ck_assert(ps.items[i].value->requires_grad);
        ck_assert_ptr_eq(nd_module_find(m, want[i]), ps.items[i].value);
    }
    ck_assert_ptr_null(nd_module_find(m, "body.0"));
    ck_assert_ptr_null(nd_module_find(m, "body.2.weight"));
    ck_assert_int_eq(nd_num_parameters(m), 1 + 12 + 4 + 5 * 2 * 9 + 8 + 2);
    nd_param_list_free(&ps);
    ck_assert_int_eq(ps.n, 0);
    nd_module_free(m);
}
END_TEST

START_TEST(parameters_outlive_scopes) {
    nd_rng g = nd_rng_init(1, 0);
    nd_scope *s = nd_scope_begin();
    nd_module *m = toy_new(&g);
    nd_scope_end(s); /* would free the parameters if they belonged to it */
    nd_tensor *w = nd_module_find(m, "head.weight");
    ck_assert_int_eq(w->ndim, 2);
    ck_assert(isfinite(nd_get(w, (int64_t[]){1, 3})));
    nd_module_free(m);
}
END_TEST

START_TEST(train_and_eval_reach_every_module) {
    nd_rng g = nd_rng_init(1, 0);
    nd_module *m = toy_new(&g);
    nd_module_train(m, false);
    nd_module *body = m->entries[1].child;
    ck_assert(!m->training && !body->training && !body->entries[1].child->training);
    nd_module_train(m, true);
    ck_assert(body->entries[0].child->training);
    nd_module_free(m);
}
END_TEST

START_TEST(print_lists_the_tree) {
    nd_rng g = nd_rng_init(1, 0);
    nd_module *m = toy_new(&g);
    char buf[1024];
    FILE *f = t_print_begin();
    nd_module_print(f, m);
    ck_assert_str_eq(t_print_end(f, buf, sizeof buf), "Toy  (117 parameters)\n"
                          "  scale [1]\n"
                          "  body: Sequential  (106 parameters)\n"
                          "    0: Linear  (16 parameters)\n"
                          "      weight [4,3]\n"
                          "      bias [4]\n"
                          "    1: Conv2d  (90 parameters)\n"
                          "      weight [5,2,3,3]\n"
                          "  head: Linear  (10 parameters)\n"
                          "    weight [2,4]\n"
                          "    bias [2]\n");
    nd_module_free(m);
}
END_TEST

START_TEST(bad_names_stop) {
    nd_rng g = nd_rng_init(1, 0);
    nd_module *m = toy_new(&g);
    EXPECT_FATAL(nd_module_param(m, "scale", nd_ones(ND_SHAPE(1))),
                 "nanodiff: module_param: Toy already has an entry named \"scale\"");
    EXPECT_FATAL(nd_module_param(m, "a.b", nd_ones(ND_SHAPE(1))),
                 "nanodiff: module_param: name \"a.b\" in Toy: use letters, digits "
                 "and '_' only (dots join names)");
    EXPECT_FATAL(nd_module_param(m, "", nd_ones(ND_SHAPE(1))),
                 "nanodiff: module_param: empty name in Toy");
    EXPECT_FATAL(nd_module_child(m, "x", m),
                 "nanodiff: module_child: a module cannot contain itself");
    nd_module_free(m);
}
END_TEST

/* Moments of U(-b, b): mean 0, variance b^2 / 3; max |w| <= b. */
static void assert_uniform(const nd_tensor *w, double b) {
    double sum = 0, sq = 0, mx = 0;
    int64_t n = nd_numel(w);
    const float *p = nd_data(w);
    for (int64_t i = 0; i < n; i++) {
        sum += p[i];
        sq += (double)p[i] * p[i];
        mx = fmax(mx, fabs(p[i]));
    }
    ck_assert_msg(mx <= b && mx > 0.95 * b, "max %g, bound %g", mx, b);
    ck_assert_msg(fabs(sum / n) < 4 * b / sqrt(3.0 * n), "mean %g", sum / n);
    double var = sq / n;
    ck_assert_msg(fabs(var / (b * b / 3) - 1) < 0.05, "variance %g, want %g", var,
                  b * b / 3);
}

START_TEST(init_bounds_follow_the_fans) {
    nd_rng g = nd_rng_init(3, 0);
    nd_linear_layer *l = nd_linear_new(200, 300, true, &g);
    assert_uniform(l->weight, 1 / sqrt(200.0));
    nd_conv2d_layer *c = nd_conv2d_new(16, 32, 3, 3, nd_conv2d_same(3), true, &g);
    assert_uniform(c->weight, 1 / sqrt(16 * 9.0));
    int64_t fi, fo;
    nd_fans(c->weight, &fi, &fo);
    ck_assert_int_eq(fi, 144);
    ck_assert_int_eq(fo, 288);
    /* variance_scaling(1, fan_avg, uniform): L = sqrt(3 / ((144 + 288) / 2)) */
    nd_init_variance_scaling_(c->weight, c->bias, 1.0f, &g);
    assert_uniform(c->weight, sqrt(3.0 / 216.0));
    ck_assert(nd_allclose(c->bias, nd_zeros(ND_SHAPE(32)), 0, 0, false));
    /* scale 0 means 1e-10: tiny but not zero */
    nd_init_variance_scaling_(c->weight, NULL, 0.0f, &g);
    assert_uniform(c->weight, sqrt(3e-10 / 216.0));
    /* the same seed gives the same weights */
    nd_rng g1 = nd_rng_init(9, 0), g2 = nd_rng_init(9, 0);
    nd_linear_layer *a = nd_linear_new(5, 7, true, &g1), *b = nd_linear_new(5, 7, true, &g2);
    ck_assert(memcmp(nd_data(a->weight), nd_data(b->weight), 35 * sizeof(float)) == 0);
    ck_assert(memcmp(nd_data(a->bias), nd_data(b->bias), 7 * sizeof(float)) == 0);
    nd_module_free(&a->base);
    nd_module_free(&b->base);
    nd_module_free(&l->base);
    nd_module_free(&c->base);
}
END_TEST

/* the modules nd_module_apply visits, as "name:type" lines */
static void record_visit(void *ctx, const char *name, nd_module *m) {
    char *out = ctx;
    size_t n = strlen(out);
    snprintf(out + n, 512 - n, "%s:%s\n", name, m->type);
}

START_TEST(apply_visits_parents_first_with_dotted_names) {
    nd_rng g = nd_rng_init(1, 0);
    nd_module *m = toy_new(&g);
    char seen[512] = "";
    nd_module_apply(m, record_visit, seen);
    ck_assert_str_eq(seen, ":Toy\nbody:Sequential\nbody.0:Linear\nbody.1:Conv2d\nhead:Linear\n");
    ck_assert_ptr_eq(nd_module_param_get(m, "scale"), nd_module_find(m, "scale"));
    ck_assert_ptr_null(nd_module_param_get(m, "head")); /* a child, not a parameter */
    ck_assert_ptr_null(nd_module_param_get(m, "body.0.weight"));
    nd_module_free(m);
}
END_TEST

/* Linear -> SiLU -> Dropout -> Linear as a Sequential equals the same
 * calls made by hand, in value and in every gradient */
START_TEST(sequential_runs_its_steps_in_order) {
    nd_rng g = nd_rng_init(2, 0);
    nd_module *seq = nd_sequential_new();
    nd_linear_layer *a = (nd_linear_layer *)nd_sequential_add(seq, &nd_linear_new(3, 5, true, &g)->base);
    nd_sequential_add(seq, nd_activation_new("SiLU", nd_silu));
    nd_dropout_layer *d = (nd_dropout_layer *)nd_sequential_add(seq, &nd_dropout_new(0.5f)->base);
    nd_linear_layer *b = (nd_linear_layer *)nd_sequential_add(seq, &nd_linear_new(5, 2, false, &g)->base);
    ck_assert_ptr_nonnull(nd_module_find(seq, "3.weight"));
    ck_assert_ptr_null(nd_module_find(seq, "3.bias"));
    nd_rng drop = nd_rng_init(9, 1), replay = drop;
    nd_module_set_rng(seq, &drop);
    ck_assert_ptr_eq(d->base.rng, &drop);
    nd_tensor *x = nd_rand(&g, ND_SHAPE(4, 3));

    nd_tensor *y = nd_module_forward(seq, x);
    nd_backward(nd_sum(nd_square(y), NULL, 0, false));
    nd_tensor *ga = nd_clone(a->weight->grad), *gb = nd_clone(b->weight->grad);
    nd_module_zero_grad(seq);
    nd_tensor *h = nd_dropout(nd_silu(nd_linear_forward(a, x)), 0.5f, true, &replay);
    nd_tensor *want = nd_linear_forward(b, h);
    nd_backward(nd_sum(nd_square(want), NULL, 0, false));
    ck_assert_uint_eq(drop.offset, replay.offset);
    ck_assert_mem_eq(nd_data(y), nd_data(want), 8 * sizeof(float));
    ck_assert_mem_eq(nd_data(ga), nd_data(a->weight->grad), 15 * sizeof(float));
    ck_assert_mem_eq(nd_data(gb), nd_data(b->weight->grad), 10 * sizeof(float));

    /* eval mode: dropout is the identity and draws nothing */
    nd_module_train(seq, false);
    uint64_t before = drop.offset;
    nd_tensor *e = nd_module_forward(seq, x);
    ck_assert_uint_eq(drop.offset, before);
    nd_no_grad_begin();
    nd_tensor *ew = nd_linear_forward(b, nd_silu(nd_linear_forward(a, x)));
    nd_no_grad_end();
    ck_assert_mem_eq(nd_data(e), nd_data(ew), 8 * sizeof(float));
    nd_module_free(seq);
}
END_TEST

START_TEST(generator_reaches_children_added_later) {
    nd_rng g = nd_rng_init(3, 0), tree = nd_rng_init(4, 0);
    nd_module *root = nd_module_new("Model");
    nd_module_set_rng(root, &tree);
    nd_module *group = nd_module_child(root, "blocks", nd_module_new("ModuleList"));
    nd_resblock_layer *r = (nd_resblock_layer *)nd_module_child_at(
        group, 0, &nd_resblock_new(4, 4, 8, 2, 0.3f, &g)->base);
    ck_assert_ptr_eq(r->base.rng, &tree);
    ck_assert_ptr_eq(r->conv2->base.rng, &tree);
    /* a block's forward without an rng draws from its tree's */
    nd_tensor *x = nd_randn(&g, ND_SHAPE(2, 4, 3, 3)), *temb = nd_randn(&g, ND_SHAPE(2, 8));
    nd_rng copy = tree;
    nd_tensor *own = nd_resblock_forward(r, x, temb, NULL);
    nd_tensor *given = nd_resblock_forward(r, x, temb, &copy);
    ck_assert_uint_eq(tree.offset, copy.offset);
    ck_assert_uint_gt(tree.offset, 0);
    ck_assert_mem_eq(nd_data(own), nd_data(given), 72 * sizeof(float));
    nd_module_set_rng(root, NULL);
    ck_assert_ptr_null(r->norm1->base.rng);
    nd_module_free(root);
}
END_TEST

START_TEST(embedding_rows_and_their_gradient) {
    nd_rng g = nd_rng_init(5, 0), same = g;
    nd_embedding_layer *e = nd_embedding_new(4, 3, &g);
    nd_tensor *want = nd_randn(&same, ND_SHAPE(4, 3)); /* N(0, 1), as nn.Embedding */
    ck_assert_mem_eq(nd_data(e->weight), nd_data(want), 12 * sizeof(float));
    const float ids[] = {3, 1, 3, 0, 3};
    nd_tensor *y = nd_module_forward(&e->base, nd_from_buffer(ids, ND_SHAPE(5)));
    const float dyv[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    nd_tensor *dy = nd_from_buffer(dyv, ND_SHAPE(5, 3));
    for (int n = 0; n < 5; n++)
        for (int j = 0; j < 3; j++)
            ck_assert_float_eq(nd_data(y)[n * 3 + j], nd_data(e->weight)[(int)ids[n] * 3 + j]);
    nd_backward(nd_sum(nd_mul(y, dy), NULL, 0, false));
    /* row i collects dy of every n with ids[n] = i; row 2 was not read */
    const float grad[] = {10, 11, 12, 4, 5, 6, 0, 0, 0, 1 + 7 + 13, 2 + 8 + 14, 3 + 9 + 15};
    for (int i = 0; i < 12; i++) ck_assert_float_eq(nd_data(e->weight->grad)[i], grad[i]);
    EXPECT_FATAL(nd_embedding_forward(e, nd_zeros(ND_SHAPE(2, 1))),
                 "nanodiff: embedding: ids [2,1] must be [N]");
    EXPECT_FATAL(nd_embedding_forward(e, nd_full(ND_SHAPE(1), 4.0f)),
                 "nanodiff: index_select: index[0] = 4 is not a whole number in [0, 4)");
    nd_module_free(&e->base);
}
END_TEST

START_TEST(container_misuse_stops) {
    nd_rng g = nd_rng_init(6, 0);
    nd_module *seq = nd_sequential_new();
    EXPECT_FATAL(nd_module_forward(seq, nd_zeros(ND_SHAPE(1))),
                 "nanodiff: sequential: the Sequential is empty");
    nd_resblock_layer *r = nd_resblock_new(4, 4, 8, 2, 0.0f, &g);
    EXPECT_FATAL(nd_sequential_add(seq, &r->base),
                 "nanodiff: sequential_add: a ResnetBlock has no one-input forward and cannot "
                 "be a step of a Sequential");
    EXPECT_FATAL(nd_module_forward(&r->base, nd_zeros(ND_SHAPE(1))),
                 "nanodiff: module_forward: a ResnetBlock has no one-input forward; call its "
                 "own forward function");
    nd_module *group = nd_module_new("ModuleList"), *silu = nd_activation_new("SiLU", nd_silu);
    EXPECT_FATAL(nd_sequential_add(group, silu),
                 "nanodiff: sequential_add: the container is not a Sequential");
    nd_module_free(silu);
    nd_dropout_layer *d = nd_dropout_new(0.1f);
    EXPECT_FATAL(nd_dropout_forward(d, nd_zeros(ND_SHAPE(2))),
                 "nanodiff: dropout: the module has no generator: give its tree one with "
                 "nd_module_set_rng");
    EXPECT_FATAL(nd_dropout_new(1.5f), "nanodiff: dropout_new: p = 1.5 is not in [0, 1]");
    nd_module_free(&d->base);
    nd_module_free(group);
    nd_module_free(&r->base);
    nd_module_free(seq);
}
END_TEST

TCase *tcase_module(void) {
    TCase *tc = nd_test_case("module");
    tcase_add_test(tc, dotted_names_in_order);
    tcase_add_test(tc, parameters_outlive_scopes);
    tcase_add_test(tc, train_and_eval_reach_every_module);
    tcase_add_test(tc, print_lists_the_tree);
    tcase_add_test(tc, bad_names_stop);
    tcase_add_test(tc, init_bounds_follow_the_fans);
    tcase_add_test(tc, apply_visits_parents_first_with_dotted_names);
    tcase_add_test(tc, sequential_runs_its_steps_in_order);
    tcase_add_test(tc, generator_reaches_children_added_later);
    tcase_add_test(tc, embedding_rows_and_their_gradient);
    tcase_add_test(tc, container_misuse_stops);
    return tc;
}
