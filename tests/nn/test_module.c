/* Modules: dotted names, ownership, modes, init statistics. */
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
    nd_module *body = nd_alloc(sizeof(toy));
    nd_module_init(body, "Sequential", toy_destroy);
    nd_module_child_at(body, 0, &nd_linear_new(3, 4, true, g)->base);
    nd_module_child_at(body, 1, &nd_conv2d_new(2, 5, 3, 3, nd_conv2d_same(3), false, g)->base);
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
    char buf[1024] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    nd_module_print(f, m);
    fclose(f);
    ck_assert_str_eq(buf, "Toy  (117 parameters)\n"
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

TCase *tcase_module(void) {
    TCase *tc = nd_test_case("module");
    tcase_add_test(tc, dotted_names_in_order);
    tcase_add_test(tc, parameters_outlive_scopes);
    tcase_add_test(tc, train_and_eval_reach_every_module);
    tcase_add_test(tc, print_lists_the_tree);
    tcase_add_test(tc, bad_names_stop);
    tcase_add_test(tc, init_bounds_follow_the_fans);
    return tc;
}
