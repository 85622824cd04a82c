/* Gradients of every layer: nd_gradcheck (backward against central
 * differences) with respect to the input and every parameter, on small
 * shapes with odd sizes. GroupNorm's backward is hand-derived, so it is
 * checked alone too, with and without affine, on several group counts
 * and on permuted inputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "nn/nn.h"

typedef struct {
    nd_module *m;
    nd_tensor *(*forward)(nd_module *m, const nd_tensor *x, void *extra);
    void *extra;
} layer_ctx;

static nd_tensor *f_layer(nd_tensor *const *in, void *ctx) {
    layer_ctx *c = ctx;
    return c->forward(c->m, in[0], c->extra);
}

/* Checks d/dx and d/dparam for every parameter of m, and that every one
 * of them was compared. */
static void check_layer(nd_module *m, nd_tensor *x,
                        nd_tensor *(*fw)(nd_module *, const nd_tensor *, void *),
                        void *extra, double eps, double atol, double rtol,
                        const char *what) {
    nd_param_list ps = nd_parameters(m);
    nd_tensor *in[32];
    ck_assert_int_lt(ps.n, 31);
    in[0] = x;
    int64_t want = nd_numel(x);
    for (int i = 0; i < ps.n; i++) {
        in[i + 1] = ps.items[i].value;
        want += nd_numel(ps.items[i].value);
    }
    /* the inputs must be leaves that do not require grad yet */
    for (int i = 1; i <= ps.n; i++) nd_requires_grad(in[i], false);
    layer_ctx ctx = {m, fw, extra};
    nd_gradcheck_report rep;
    bool ok = nd_gradcheck(f_layer, &ctx, in, ps.n + 1, eps, atol, rtol, &rep);
    const char *worst = rep.worst_input == 0 ? "x" : ps.items[rep.worst_input - 1].name;
    ck_assert_msg(ok && rep.checked == want,
                  "%s: %lld of %lld (of %lld) out of tolerance; worst %s[%lld]: "
                  "analytic %.6g, numeric %.6g", what, (long long)rep.failed,
                  (long long)rep.checked, (long long)want, worst,
                  (long long)rep.worst_index, rep.analytic, rep.numeric);
    for (int i = 1; i <= ps.n; i++) nd_requires_grad(in[i], true);
    nd_param_list_free(&ps);
}

static nd_tensor *leaf(nd_tensor *t) { return nd_persist(t); }

/* Random parameters, so that gamma != 1 and beta != 0 take part. */
static void randomize(nd_module *m, uint64_t seed) {
    nd_param_list ps = nd_parameters(m);
    nd_rng g = nd_rng_init(seed, 7);
    for (int i = 0; i < ps.n; i++) nd_init_uniform_(ps.items[i].value, -0.8f, 0.8f, &g);
    nd_param_list_free(&ps);
}

/* ---- GroupNorm, the fused op ------------------------------------------- */

typedef struct {
    int64_t groups;
    bool affine;
    bool permuted;
} gn_case;

static nd_tensor *f_group_norm(nd_tensor *const *in, void *ctx) {
    const gn_case *c = ctx;
    const nd_tensor *x = c->permuted ? nd_permute(in[0], ND_AXES(1, 0, 2, 3)) : in[0];
    return nd_group_norm(x, c->groups, c->affine ? in[1] : NULL,
                         c->affine ? in[2] : NULL, 1e-5f);
}

START_TEST(group_norm_backward_matches_differences) {
    const gn_case cases[] = {{1, true, false}, {3, true, false}, {6, true, false},
                             {3, false, false}, {2, true, true}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        nd_scope *s = nd_scope_begin();
        const gn_case *c = &cases[i];
        /* [N, C, H, W] = [2, 6, 3, 5]; permuted: stored as [6, 2, 3, 5] */
        nd_tensor *x = c->permuted ? t_uniform(11 + i, ND_SHAPE(6, 2, 3, 5), -2, 2)
                                   : t_uniform(11 + i, ND_SHAPE(2, 6, 3, 5), -2, 2);
        nd_tensor *in[3] = {x, t_uniform(20 + i, ND_SHAPE(6), 0.5f, 1.5f),
                            t_uniform(30 + i, ND_SHAPE(6), -1, 1)};
        nd_gradcheck_report rep;
        bool ok = nd_gradcheck(f_group_norm, (void *)c, in, c->affine ? 3 : 1, 1e-2, 2e-3,
                               1e-2, &rep);
        ck_assert_msg(ok, "groups %lld affine %d permuted %d: %lld failed; worst input %d "
                      "[%lld]: analytic %.6g numeric %.6g", (long long)c->groups,
                      c->affine, c->permuted, (long long)rep.failed, rep.worst_input,
                      (long long)rep.worst_index, rep.analytic, rep.numeric);
        nd_scope_end(s);
    }
}
END_TEST

/* Sum of dx over a group is 0 and sum of dx xhat is 0 too (the output of a
 * normalisation does not move when its input shifts or scales), and
 * dbeta is the sum of dy over N and positions: identities a wrong
 * backward breaks. */
START_TEST(group_norm_backward_identities) {
    nd_tensor *x = nd_requires_grad(leaf(t_uniform(3, ND_SHAPE(3, 4, 5), -1, 1)), true);
    nd_tensor *gamma = nd_requires_grad(leaf(nd_ones(ND_SHAPE(4))), true);
    nd_tensor *beta = nd_requires_grad(leaf(nd_zeros(ND_SHAPE(4))), true);
    nd_tensor *y = nd_group_norm(x, 2, gamma, beta, 0.0f);
    nd_tensor *dy = t_uniform(4, ND_SHAPE(3, 4, 5), -1, 1);
    nd_backward_with(y, dy);
    for (int64_t n = 0; n < 3; n++)
        for (int64_t g = 0; g < 2; g++) {
            double sdx = 0, sdxy = 0;
            for (int64_t c = 2 * g; c < 2 * g + 2; c++)
                for (int64_t p = 0; p < 5; p++) {
                    int64_t i[3] = {n, c, p};
                    sdx += nd_get(x->grad, i);
                    sdxy += nd_get(x->grad, i) * nd_get(y, i);
                }
            ck_assert_near(sdx, 0, 1e-5);
            ck_assert_near(sdxy, 0, 1e-5);
        }
    nd_tensor *db = nd_sum(dy, ND_AXES(0, 2), false);
    ck_assert(nd_allclose(beta->grad, db, 1e-5, 1e-6, false));
    nd_tensor *dg = nd_sum(nd_mul(dy, y), ND_AXES(0, 2), false);
    ck_assert(nd_allclose(gamma->grad, dg, 1e-5, 1e-6, false));
    nd_free(x);
    nd_free(gamma);
    nd_free(beta);
}
END_TEST

/* Forward and backward against the formulas in double, on inputs far from
 * zero (a mean of 50 against a spread of 2, where folding the mean into
 * float constants could lose digits), with odd channel lengths. */
START_TEST(group_norm_matches_a_double_reference) {
    enum { N = 2, C = 6, P = 35, G = 3, CPG = C / G, D = CPG * P };
    nd_tensor *x = nd_requires_grad(leaf(t_uniform(7, ND_SHAPE(N, C, 5, 7), 48, 52)), true);
    nd_tensor *gamma = nd_requires_grad(leaf(t_uniform(8, ND_SHAPE(C), 0.5, 1.5)), true);
    nd_tensor *beta = nd_requires_grad(leaf(t_uniform(9, ND_SHAPE(C), -1, 1)), true);
    nd_tensor *dy = t_uniform(10, ND_SHAPE(N, C, 5, 7), -1, 1);
    nd_tensor *y = nd_group_norm(x, G, gamma, beta, 1e-5f);
    nd_backward_with(y, dy);
    const float *xv = nd_data(x), *gv = nd_data(gamma), *bv = nd_data(beta), *dv = nd_data(dy);
    double worst_y = 0, worst_dx = 0, dgamma[C] = {0}, dbeta[C] = {0};
    for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            const float *xr = xv + (n * C + g * CPG) * P, *dr = dv + (n * C + g * CPG) * P;
            double mu = 0, var = 0, sg = 0, sgx = 0;
            for (int i = 0; i < D; i++) mu += xr[i];
            mu /= D;
            for (int i = 0; i < D; i++) var += (xr[i] - mu) * (xr[i] - mu);
            double rstd = 1.0 / sqrt(var / D + 1e-5f);
            for (int i = 0; i < D; i++) {
                int c = g * CPG + i / P;
                double xhat = (xr[i] - mu) * rstd, gi = dr[i] * gv[c];
                double want = gv[c] * xhat + bv[c];
                worst_y = fmax(worst_y, fabs(nd_data(y)[(n * C + g * CPG) * P + i] - want));
                sg += gi;
                sgx += gi * xhat;
                dgamma[c] += dr[i] * xhat;
                dbeta[c] += dr[i];
            }
            for (int i = 0; i < D; i++) {
                int c = g * CPG + i / P;
                double xhat = (xr[i] - mu) * rstd;
                double want = rstd * (dr[i] * gv[c] - sg / D - xhat * sgx / D);
                worst_dx = fmax(worst_dx, fabs(nd_data(x->grad)[(n * C + g * CPG) * P + i] - want));
            }
        }
    if (getenv("ND_TEST_VERBOSE")) printf("group_norm: y off by %g, dx by %g\n", worst_y, worst_dx);
    /* y and dx are of size 1 (dx times rstd, about 1 here) */
    ck_assert_msg(worst_y < 1e-5, "y off by %g", worst_y);
    ck_assert_msg(worst_dx < 2e-6, "dx off by %g", worst_dx);
    for (int c = 0; c < C; c++) {
        ck_assert_double_eq_tol(nd_data(gamma->grad)[c], dgamma[c], 1e-4);
        ck_assert_double_eq_tol(nd_data(beta->grad)[c], dbeta[c], 1e-4);
    }
    nd_free(x);
    nd_free(gamma);
    nd_free(beta);
}
END_TEST

START_TEST(group_norm_same_bits_for_any_thread_count) {
    nd_tensor *x = nd_requires_grad(leaf(t_uniform(5, ND_SHAPE(4, 32, 8, 8), -3, 3)), true);
    nd_tensor *dy = t_uniform(6, ND_SHAPE(4, 32, 8, 8), -1, 1);
    nd_tensor *first = NULL, *first_dx = NULL;
    int saved = nd_get_num_threads();
    for (int threads = 1; threads <= 3; threads++) {
        nd_set_num_threads(threads);
        nd_tensor *y = nd_group_norm(x, 8, NULL, NULL, 1e-6f);
        nd_zero_grad(x);
        nd_backward_with(y, dy);
        if (!first) {
            first = y;
            first_dx = nd_clone(x->grad);
        } else {
            ck_assert(memcmp(nd_data(first), nd_data(y), 8192 * sizeof(float)) == 0);
            ck_assert(memcmp(nd_data(first_dx), nd_data(x->grad), 8192 * sizeof(float)) == 0);
        }
    }
    nd_set_num_threads(saved);
    nd_free(x);
}
END_TEST

/* ---- every layer ------------------------------------------------------- */

static nd_tensor *fw_linear(nd_module *m, const nd_tensor *x, void *e) {
    (void)e;
    return nd_linear_forward((nd_linear_layer *)m, x);
}
static nd_tensor *fw_conv(nd_module *m, const nd_tensor *x, void *e) {
    (void)e;
    return nd_conv2d_forward((nd_conv2d_layer *)m, x);
}
static nd_tensor *fw_group_norm(nd_module *m, const nd_tensor *x, void *e) {
    (void)e;
    return nd_group_norm_forward((nd_group_norm_layer *)m, x);
}
static nd_tensor *fw_attention(nd_module *m, const nd_tensor *x, void *e) {
    (void)e;
    return nd_attention_forward((nd_attention_layer *)m, x);
}
static nd_tensor *fw_up(nd_module *m, const nd_tensor *x, void *e) {
    (void)e;
    return nd_upsample_forward((nd_upsample_layer *)m, x);
}
static nd_tensor *fw_down(nd_module *m, const nd_tensor *x, void *e) {
    (void)e;
    return nd_downsample_forward((nd_downsample_layer *)m, x);
}
/* Dropout's mask must be the same in every evaluation: each call replays
 * the rng from the same state. */
typedef struct {
    const nd_tensor *temb;
    nd_rng rng;
} res_extra;
static nd_tensor *fw_resblock(nd_module *m, const nd_tensor *x, void *e) {
    res_extra *r = e;
    nd_rng g = r->rng;
    return nd_resblock_forward((nd_resblock_layer *)m, x, r->temb, &g);
}
static nd_tensor *fw_dropout(nd_module *m, const nd_tensor *x, void *e) {
    (void)m;
    nd_rng g = *(nd_rng *)e;
    return nd_dropout(x, 0.3f, true, &g);
}

START_TEST(linear_and_conv_layers) {
    nd_rng g = nd_rng_init(1, 0);
    nd_linear_layer *l = nd_linear_new(5, 3, true, &g);
    check_layer(&l->base, t_uniform(1, ND_SHAPE(2, 3, 5), -1, 1), fw_linear, NULL, 1e-2,
                2e-3, 1e-2, "Linear");
    nd_conv2d_layer *c = nd_conv2d_new(3, 2, 3, 3, (nd_conv2d_opts){2, 2, 0, 1, 0, 1},
                                       true, &g);
    check_layer(&c->base, t_uniform(2, ND_SHAPE(2, 3, 5, 6), -1, 1), fw_conv, NULL, 1e-2,
                2e-3, 1e-2, "Conv2d stride 2");
    nd_module_free(&l->base);
    nd_module_free(&c->base);
}
END_TEST

START_TEST(group_norm_layer) {
    nd_group_norm_layer *l = nd_group_norm_new(3, 9, 1e-5f, true);
    randomize(&l->base, 2);
    check_layer(&l->base, t_uniform(3, ND_SHAPE(2, 9, 3, 1), -2, 2), fw_group_norm, NULL,
                1e-2, 2e-3, 1e-2, "GroupNorm");
    nd_module_free(&l->base);
}
END_TEST

START_TEST(attention_layer) {
    nd_rng g = nd_rng_init(2, 0);
    for (int heads = 1; heads <= 3; heads += 2) {
        nd_attention_layer *l = nd_attention_new(6, heads, 3, &g);
        randomize(&l->base, 3);
        char what[32];
        snprintf(what, sizeof what, "Attention, %d head(s)", heads);
        check_layer(&l->base, t_uniform(4, ND_SHAPE(2, 6, 3, 1), -2, 2), fw_attention,
                    NULL, 1e-2, 3e-3, 1e-2, what);
        nd_module_free(&l->base);
    }
}
END_TEST

START_TEST(resampling_layers) {
    nd_rng g = nd_rng_init(3, 0);
    nd_upsample_layer *up = nd_upsample_new(2, &g);
    nd_downsample_layer *down = nd_downsample_new(3, &g);
    check_layer(&up->base, t_uniform(5, ND_SHAPE(1, 2, 3, 2), -1, 1), fw_up, NULL, 1e-2,
                2e-3, 1e-2, "Upsample");
    check_layer(&down->base, t_uniform(6, ND_SHAPE(2, 3, 4, 6), -1, 1), fw_down, NULL,
                1e-2, 2e-3, 1e-2, "Downsample");
    nd_module_free(&up->base);
    nd_module_free(&down->base);
}
END_TEST

START_TEST(resblock_layer_with_dropout) {
    nd_rng g = nd_rng_init(4, 0);
    nd_tensor *temb = t_uniform(7, ND_SHAPE(2, 5), -1, 1);
    for (int64_t cout = 3; cout <= 6; cout += 3) {
        nd_resblock_layer *l = nd_resblock_new(3, cout, 5, 3, 0.2f, &g);
        randomize(&l->base, 5);
        res_extra e = {temb, nd_rng_init(99, 1)};
        char what[32];
        snprintf(what, sizeof what, "ResnetBlock 3 -> %lld", (long long)cout);
        check_layer(&l->base, t_uniform(8, ND_SHAPE(2, 3, 3, 2), -1, 1), fw_resblock, &e,
                    1e-2, 3e-3, 1e-2, what);
        nd_module_free(&l->base);
    }
}
END_TEST

/* Dropout's output is formed again for a rule that reads it, from its
 * input: an input that nothing else can form again (a silu here) is kept
 * for it, and one that can (GroupNorm+swish) is formed first. Either way
 * the gradients equal those of a forward whose tensors the caller held. */
static nd_tensor *dropout_chain(nd_tensor *x, nd_tensor *w, int which, nd_rng *rng) {
    nd_tensor *h = which == 0 ? nd_silu(x) : nd_group_norm_silu(x, 2, NULL, NULL, 1e-5f);
    nd_tensor *d = nd_dropout(h, 0.3f, true, rng);
    nd_tensor *y = which == 2 ? nd_group_norm_silu(d, 2, NULL, NULL, 1e-5f) : d;
    return nd_sum(nd_matmul(y, w), NULL, 0, false); /* matmul reads y */
}

START_TEST(dropout_output_is_formed_again_after_any_op) {
    nd_tensor *x = nd_requires_grad(t_uniform(31, ND_SHAPE(4, 12), -2, 2), true);
    nd_tensor *w = nd_requires_grad(t_uniform(32, ND_SHAPE(12, 5), -1, 1), true);
    for (int which = 0; which < 3; which++) {
        nd_tensor *grads[2][2];
        for (int held = 0; held < 2; held++) {
            nd_rng rng = nd_rng_init(77, 3);
            nd_scope *outer = nd_scope_begin();
            nd_scope *s = held ? NULL : nd_scope_begin();
            nd_tensor *loss = dropout_chain(x, w, which, &rng);
            if (!held) {
                nd_keep(loss);
                nd_scope_end(s); /* only the tape holds the chain now */
            }
            nd_backward(loss);
            grads[held][0] = nd_keep(nd_clone(x->grad));
            grads[held][1] = nd_keep(nd_clone(w->grad));
            nd_zero_grad(x);
            nd_zero_grad(w);
            nd_scope_end(outer);
        }
        for (int k = 0; k < 2; k++)
            for (int64_t i = 0; i < nd_numel(grads[0][k]); i++)
                ck_assert_msg(nd_data(grads[0][k])[i] == nd_data(grads[1][k])[i],
                              "chain %d, gradient %d, element %lld: %.9g, held %.9g", which,
                              k, (long long)i, (double)nd_data(grads[0][k])[i],
                              (double)nd_data(grads[1][k])[i]);
    }
}
END_TEST

START_TEST(dropout_gradient_is_the_mask) {
    nd_module dummy;
    nd_module_init(&dummy, "Dropout", NULL);
    nd_rng g = nd_rng_init(8, 2);
    check_layer(&dummy, t_uniform(9, ND_SHAPE(7, 3), -1, 1), fw_dropout, &g, 1e-2, 1e-3,
                1e-3, "Dropout");
    nd_module_free(&dummy);
}
END_TEST

/* ---- cross entropy ---------------------------------------------------- */

/* The loss against log-sum-exp in double, its gradient against
 * (softmax - onehot) / N, on logits large enough that a naive exp would
 * overflow; and labels outside 0..K-1 stop with the op's message. */
START_TEST(cross_entropy_matches_formula_and_gradient) {
    const int64_t N = 7, K = 5;
    nd_tensor *logits = nd_persist(t_uniform(21, ND_SHAPE(N, K), -4, 4));
    nd_data(logits)[3] = 95.0f; /* exp(95) overflows float */
    nd_data(logits)[K + 1] = -90.0f;
    nd_tensor *labels = nd_empty(ND_SHAPE(N));
    const float y[7] = {3, 0, 4, 1, 2, 4, 0};
    for (int64_t i = 0; i < N; i++) nd_data(labels)[i] = y[i];
    nd_requires_grad(logits, true);
    nd_tensor *loss = nd_cross_entropy(logits, labels);
    nd_backward(loss);
    double want = 0;
    for (int64_t i = 0; i < N; i++) {
        const float *row = nd_data(logits) + i * K;
        double top = row[0], z = 0;
        for (int64_t k = 1; k < K; k++)
            if (row[k] > top) top = row[k];
        for (int64_t k = 0; k < K; k++) z += exp((double)row[k] - top);
        double lse = top + log(z);
        want += (lse - row[(int)y[i]]) / (double)N;
        for (int64_t k = 0; k < K; k++) {
            double g = (exp((double)row[k] - lse) - (k == (int64_t)y[i])) / (double)N;
            ck_assert_near(nd_data(logits->grad)[i * K + k], g, 1e-6);
        }
    }
    ck_assert_near(nd_item(loss), want, 1e-6);
    nd_data(labels)[2] = 5.0f;
    EXPECT_FATAL(nd_cross_entropy(logits, labels),
                 "nanodiff: cross_entropy: label 5 of example 2 is not a class in 0..4");
    nd_data(labels)[2] = 1.5f;
    EXPECT_FATAL(nd_cross_entropy(logits, labels),
                 "nanodiff: cross_entropy: label 1.5 of example 2 is not a class in 0..4");
    EXPECT_FATAL(nd_cross_entropy(logits, nd_zeros(ND_SHAPE(N + 1))),
                 "nanodiff: cross_entropy: needs logits [N, K] and labels [N], N, K >= 1; got "
                 "logits [7,5] and labels [8]");
    nd_free(logits);
}
END_TEST

/* The attention layer keeps q, k and v for backward, not the [L, L]
 * weights, and its gradients equal those of the same math written as
 * separate ops (w kept by the tape) to float rounding. */
static nd_tensor *attention_as_ops(const nd_attention_layer *l, const nd_tensor *x) {
    int64_t n = x->shape[0], c = l->channels, len = x->shape[2] * x->shape[3];
    int64_t heads = l->heads, d = c / heads;
    nd_tensor *h = nd_reshape(nd_group_norm(x, l->norm->groups, l->norm->weight, l->norm->bias,
                                            l->norm->eps),
                              ND_SHAPE(n, c, len));
    const nd_conv2d_layer *proj[4] = {l->q, l->k, l->v, l->proj_out};
    nd_tensor *p[3];
    for (int i = 0; i < 3; i++)
        p[i] = nd_view(nd_add(nd_matmul(nd_view(proj[i]->weight, ND_SHAPE(c, c)), h),
                              nd_view(proj[i]->bias, ND_SHAPE(c, 1))),
                       ND_SHAPE(n, heads, d, len));
    nd_tensor *w = nd_softmax(nd_mul_scalar(nd_matmul(nd_transpose(p[0], 2, 3), p[1]),
                                            (float)(1.0 / sqrt((double)d))),
                              -1);
    nd_tensor *o = nd_reshape(nd_matmul(p[2], nd_transpose(w, 2, 3)), ND_SHAPE(n, c, len));
    nd_tensor *out = nd_add(nd_matmul(nd_view(proj[3]->weight, ND_SHAPE(c, c)), o),
                            nd_view(proj[3]->bias, ND_SHAPE(c, 1)));
    return nd_add(x, nd_view(out, x->shape, x->ndim));
}

START_TEST(attention_recomputes_its_weights) {
    nd_rng g = nd_rng_init(6, 0);
    for (int64_t heads = 1; heads <= 2; heads++) {
        nd_attention_layer *l = nd_attention_new(4, heads, 2, &g);
        randomize(&l->base, 7);
        nd_tensor *x = nd_requires_grad(t_uniform(8, ND_SHAPE(2, 4, 8, 8), -2, 2), true);
        nd_tensor *dy = t_uniform(9, ND_SHAPE(2, 4, 8, 8), -1, 1);
        nd_tensor *grads[2];
        size_t kept[2];
        for (int fused = 0; fused < 2; fused++) {
            size_t before = nd_mem_live();
            nd_scope *s = nd_scope_begin();
            nd_tensor *y = nd_keep(fused ? nd_attention_forward(l, x) : attention_as_ops(l, x));
            nd_scope_end(s);
            kept[fused] = nd_mem_live() - before;
            nd_backward_with(y, dy);
            grads[fused] = nd_clone(x->grad);
            nd_zero_grad(x);
            nd_module_zero_grad(&l->base);
            nd_free(y);
        }
        size_t weights_bytes = (size_t)(2 * heads * 64 * 64) * sizeof(float);
        ck_assert_msg(kept[0] >= kept[1] + weights_bytes, "as ops %zu, layer %zu", kept[0],
                      kept[1]);
        ck_assert_uint_lt(kept[1], weights_bytes);
        ck_assert(nd_allclose(grads[1], grads[0], 1e-5, 1e-6, false));
        nd_module_free(&l->base);
    }
}
END_TEST

TCase *tcase_layer_grad(void) {
    TCase *tc = nd_test_case("layer_grad");
    tcase_add_test(tc, group_norm_backward_matches_differences);
    tcase_add_test(tc, group_norm_backward_identities);
    tcase_add_test(tc, group_norm_same_bits_for_any_thread_count);
    tcase_add_test(tc, group_norm_matches_a_double_reference);
    tcase_add_test(tc, linear_and_conv_layers);
    tcase_add_test(tc, group_norm_layer);
    tcase_add_test(tc, attention_layer);
    tcase_add_test(tc, attention_recomputes_its_weights);
    tcase_add_test(tc, dropout_output_is_formed_again_after_any_op);
    tcase_add_test(tc, resampling_layers);
    tcase_add_test(tc, resblock_layer_with_dropout);
    tcase_add_test(tc, dropout_gradient_is_the_mask);
    tcase_add_test(tc, cross_entropy_matches_formula_and_gradient);
    return tc;
}
