/* The feature classifier: its shape rules, that an image's features do
 * not depend on the batch it is in (scores feed batches of any size),
 * that the features are what the logits are computed from, and that
 * training it with nd_cross_entropy and Adam learns the shapes set. */
#include <math.h>

#include "ddpm/ddpm.h"
#include "helpers.h"

START_TEST(features_and_logits_shapes_and_batch_independence) {
    nd_rng g = nd_rng_init(3, 0);
    nd_classifier_config c = {.in_channels = 2, .classes = 4, .width = 8};
    nd_classifier *m = nd_classifier_new(&c, &g);
    ck_assert_int_eq(nd_classifier_features_dim(m), 32);
    nd_tensor *x = t_uniform(5, ND_SHAPE(5, 2, 13, 10), -1, 1);
    nd_tensor *f = nd_classifier_features(m, x);
    ck_assert_int_eq(f->ndim, 2);
    ck_assert_int_eq(f->shape[0], 5);
    ck_assert_int_eq(f->shape[1], 32);
    nd_tensor *logits = nd_classifier_logits(m, f);
    ck_assert_int_eq(logits->shape[1], 4);
    for (int64_t i = 0; i < 5; i++) {
        nd_tensor *fi = nd_classifier_features(m, nd_slice(x, 0, i, i + 1, 1));
        for (int64_t k = 0; k < 32; k++)
            ck_assert_near(nd_data(fi)[k], nd_data(f)[i * 32 + k], 1e-5);
    }
    /* the logits are a linear map of the features: doubling the features'
     * distance from zero doubles the logits' distance from the bias */
    nd_tensor *zero = nd_classifier_logits(m, nd_zeros(ND_SHAPE(1, 32)));
    nd_tensor *twice = nd_classifier_logits(m, nd_mul_scalar(f, 2.0f));
    for (int64_t i = 0; i < 5; i++)
        for (int64_t k = 0; k < 4; k++) {
            double b = nd_data(zero)[k], l = nd_data(logits)[i * 4 + k];
            ck_assert_near(nd_data(twice)[i * 4 + k] - b, 2 * (l - b), 1e-5);
        }
    EXPECT_FATAL(nd_classifier_features(m, nd_zeros(ND_SHAPE(1, 3, 8, 8))),
                 "nanodiff: classifier: model for x [N,2,H,W] (H, W >= 4) got x [1,3,8,8]");
    EXPECT_FATAL(nd_classifier_logits(m, nd_zeros(ND_SHAPE(1, 31))),
                 "nanodiff: classifier: logits from features [N,32] got [1,31]");
    nd_classifier_config bad = {.in_channels = 1, .classes = 3, .width = 12};
    EXPECT_FATAL(nd_classifier_new(&bad, &g),
                 "nanodiff: classifier_new: in_channels 1 (>= 1), classes 3 (>= 2), width 12 (a "
                 "multiple of 8)");
    nd_module_free(nd_classifier_module(m));
}
END_TEST

/* Discs, squares and bars: a few hundred Adam steps take the classifier
 * from chance (1/3) to nearly every fresh image right. */
START_TEST(training_learns_the_shapes) {
    nd_rng g = nd_rng_init(1, 0), data = nd_rng_init(2, 0);
    nd_classifier_config c = nd_classifier_defaults(1, 3);
    c.width = 8;
    nd_classifier *m = nd_classifier_new(&c, &g);
    nd_module *net = nd_classifier_module(m);
    nd_optim_config oc = nd_optim_defaults(ND_ADAM);
    oc.lr = 3e-3;
    nd_optimizer *opt = nd_optimizer_new(net, oc);
    double first = 0, last = 0;
    const int steps = 150;
    for (int step = 0; step < steps; step++) {
        nd_scope *s = nd_scope_begin();
        nd_tensor *labels;
        nd_tensor *x = nd_toy_shapes(16, 16, &data, &labels);
        nd_tensor *loss = nd_cross_entropy(nd_classifier_logits(m, nd_classifier_features(m, x)),
                                           labels);
        nd_optimizer_zero_grad(opt);
        nd_backward(loss);
        nd_optimizer_step(opt);
        if (step < 10) first += nd_item(loss) / 10;
        if (step >= steps - 10) last += nd_item(loss) / 10;
        nd_scope_end(s);
    }
    nd_optimizer_free(opt);
    nd_module_train(net, false);
    nd_tensor *labels;
    nd_tensor *x = nd_toy_shapes(300, 16, &data, &labels);
    nd_tensor *pred = nd_argmax(nd_classifier_logits(m, nd_classifier_features(m, x)), 1, false);
    int right = 0;
    for (int i = 0; i < 300; i++) right += nd_data(pred)[i] == nd_data(labels)[i];
    ck_assert_msg(first > 0.9 && last < 0.25 * first && right >= 270,
                  "loss %.3f -> %.3f, %d of 300 fresh shapes right", first, last, right);
    nd_module_free(net);
}
END_TEST

TCase *tcase_classifier(void) {
    TCase *tc = nd_test_case("classifier");
    tcase_add_test(tc, features_and_logits_shapes_and_batch_independence);
    tcase_add_test(tc, training_learns_the_shapes);
    return tc;
}
