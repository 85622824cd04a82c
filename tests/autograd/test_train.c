/* End to end through the tape: a 2-layer MLP learns XOR with plain SGD,
 * and linear least squares recovers its generating weights. */
#include "autograd/autograd.h"
#include "helpers.h"

/* p -= lr * p.grad, outside the tape */
static void sgd_step(nd_tensor *const *params, int n, float lr) {
    nd_no_grad_begin();
    for (int i = 0; i < n; i++) {
        nd_scope *s = nd_scope_begin();
        nd_copy_(params[i], nd_sub(params[i], nd_mul_scalar(params[i]->grad, lr)));
        nd_scope_end(s);
        nd_zero_grad(params[i]);
    }
    nd_no_grad_end();
}

static nd_tensor *param(nd_tensor *t) { return nd_requires_grad(nd_persist(t), true); }

START_TEST(mlp_learns_xor) {
    const float xs[8] = {0, 0, 0, 1, 1, 0, 1, 1}, ts[4] = {0, 1, 1, 0};
    nd_tensor *x = nd_persist(nd_from_buffer(xs, ND_SHAPE(4, 2)));
    nd_tensor *t = nd_persist(nd_from_buffer(ts, ND_SHAPE(4, 1)));
    nd_rng g = nd_rng_init(2024, 0);
    nd_tensor *p[4] = {
        param(nd_randn(&g, ND_SHAPE(2, 8))), /* W1 */
        param(nd_zeros(ND_SHAPE(8))),        /* b1 */
        param(nd_mul_scalar(nd_randn(&g, ND_SHAPE(8, 1)), 0.5f)), /* W2 */
        param(nd_zeros(ND_SHAPE(1))),        /* b2 */
    };
    float first = 0, last = 0;
    for (int step = 0; step < 1500; step++) {
        nd_scope *s = nd_scope_begin();
        /* out = tanh(x W1 + b1) W2 + b2;  loss = mean((out - t)^2) */
        nd_tensor *h = nd_tanh(nd_add(nd_matmul(x, p[0]), p[1]));
        nd_tensor *out = nd_add(nd_matmul(h, p[2]), p[3]);
        nd_tensor *loss = nd_mean(nd_square(nd_sub(out, t)), NULL, 0, false);
        nd_backward(loss);
        last = nd_item(loss);
        if (step == 0) first = last;
        nd_scope_end(s);
        sgd_step(p, 4, 0.2f);
    }
    ck_assert_msg(first > 0.1f, "initial loss %g", (double)first);
    ck_assert_msg(last < 1e-3f, "loss after 1500 steps: %g", (double)last);
    for (int i = 0; i < 4; i++) nd_free(p[i]);
    nd_free(x);
    nd_free(t);
}
END_TEST

START_TEST(least_squares_recovers_weights) {
    /* t = X w* + b* exactly; gradient descent on mean squared error must
     * find w* and b*. */
    nd_rng g = nd_rng_init(7, 1);
    nd_tensor *X = nd_persist(nd_randn(&g, ND_SHAPE(64, 3)));
    const float wstar[3] = {1.5f, -2.0f, 0.25f};
    nd_tensor *w_true = nd_persist(nd_from_buffer(wstar, ND_SHAPE(3, 1)));
    nd_tensor *t = nd_persist(nd_add_scalar(nd_matmul(X, w_true), 0.75f));
    nd_tensor *p[2] = {param(nd_zeros(ND_SHAPE(3, 1))), param(nd_zeros(ND_SHAPE(1)))};
    for (int step = 0; step < 400; step++) {
        nd_scope *s = nd_scope_begin();
        nd_tensor *err = nd_sub(nd_add(nd_matmul(X, p[0]), p[1]), t);
        nd_backward(nd_mean(nd_square(err), NULL, 0, false));
        nd_scope_end(s);
        sgd_step(p, 2, 0.1f);
    }
    for (int i = 0; i < 3; i++) ck_assert_near(nd_data(p[0])[i], wstar[i], 1e-4);
    ck_assert_near(nd_data(p[1])[0], 0.75, 1e-4);
    nd_free(p[0]);
    nd_free(p[1]);
    nd_free(X);
    nd_free(w_true);
    nd_free(t);
}
END_TEST

TCase *tcase_train(void) {
    TCase *tc = nd_test_case("train");
    tcase_add_test(tc, mlp_learns_xor);
    tcase_add_test(tc, least_squares_recovers_weights);
    return tc;
}
