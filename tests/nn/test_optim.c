/* Optimizers, warmup, gradient clipping and the parameter EMA, against
 * the update rules written out again here in double precision. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "nn/nn.h"

/* A module with up to two flat parameters, named by the caller. */
static void flat_destroy(nd_module *m) { nd_dealloc(m, sizeof *m); }

static nd_module *flat_new(const char *n1, const float *v1, int64_t s1, const char *n2,
                           const float *v2, int64_t s2) {
    nd_module *m = nd_alloc(sizeof *m);
    nd_module_init(m, "Flat", flat_destroy);
    nd_module_param(m, n1, nd_from_buffer(v1, ND_SHAPE(s1)));
    if (n2) nd_module_param(m, n2, nd_from_buffer(v2, ND_SHAPE(s2)));
    return m;
}

/* grad = g exactly: d/dp sum(p * g) = g. */
static void set_grad(nd_tensor *p, const float *g) {
    nd_scope *s = nd_scope_begin();
    nd_zero_grad(p);
    nd_tensor *c = nd_from_buffer(g, p->shape, p->ndim);
    nd_backward(nd_sum(nd_mul(p, c), NULL, 0, false));
    nd_scope_end(s);
}

/* |a - b| <= tol |b| (with |b| taken as at least 1e-3). */
#define ck_assert_rel(a, b, tol)                                               \
    do {                                                                       \
        double a_ = (a), b_ = (b);                                             \
        ck_assert_msg(fabs(a_ - b_) <= (tol) * fmax(1e-3, fabs(b_)),           \
                      "%s = %.9g, expected %.9g", #a, a_, b_);                 \
    } while (0)

static const float W0[3] = {0.5f, -1.25f, 2.0f};
static const float G[3][3] = {{0.3f, -0.7f, 1.1f}, {-0.2f, 0.4f, 0.9f}, {0.05f, -1.5f, 0.6f}};

/* The update rules of nn.h in double, one parameter of 3 elements; a is
 * the momentum buffer or m, b is v. */
typedef struct {
    double p[3], a[3], b[3];
} ref_state;

static void ref_step(const nd_optim_config *c, int64_t t, ref_state *r, const float *grad) {
    double lr = c->lr;
    if (c->warmup_steps > 0) lr *= fmin(1.0, (double)t / (double)c->warmup_steps);
    double wd = c->weight_decay, beta1 = c->beta1, beta2 = c->beta2;
    for (int i = 0; i < 3; i++) {
        double g = grad[i];
        if (c->kind == ND_SGD) {
            g += wd * r->p[i];
            if (c->momentum > 0) {
                r->a[i] = t == 1 ? g : c->momentum * r->a[i] + g;
                g = r->a[i];
            }
            r->p[i] -= lr * g;
            continue;
        }
        if (c->kind == ND_ADAMW) r->p[i] -= lr * wd * r->p[i];
        else g += wd * r->p[i];
        r->a[i] = beta1 * r->a[i] + (1 - beta1) * g;
        r->b[i] = beta2 * r->b[i] + (1 - beta2) * g * g;
        double m_hat = r->a[i] / (1 - pow(beta1, (double)t));
        double v_hat = r->b[i] / (1 - pow(beta2, (double)t));
        r->p[i] -= lr * m_hat / (sqrt(v_hat) + c->eps);
    }
}

static void check_against_reference(nd_optim_config c) {
    nd_module *m = flat_new("w", W0, 3, NULL, NULL, 0);
    nd_tensor *w = nd_module_find(m, "w");
    nd_optimizer *opt = nd_optimizer_new(m, c);
    ref_state r = {{W0[0], W0[1], W0[2]}, {0}, {0}};
    for (int64_t t = 1; t <= 3; t++) {
        set_grad(w, G[t - 1]);
        nd_optimizer_step(opt);
        ref_step(&c, t, &r, G[t - 1]);
        nd_param_list st = nd_optimizer_state(opt);
        for (int i = 0; i < 3; i++) {
            ck_assert_rel(nd_data(w)[i], r.p[i], 1e-6);
            if (st.n >= 1) ck_assert_rel(nd_data(st.items[0].value)[i], r.a[i], 1e-6);
            if (st.n == 2) ck_assert_rel(nd_data(st.items[1].value)[i], r.b[i], 1e-6);
        }
        nd_param_list_free(&st);
    }
    ck_assert_int_eq(nd_optimizer_steps(opt), 3);
    nd_optimizer_free(opt);
    nd_module_free(m);
}

START_TEST(sgd_matches_reference) {
    nd_optim_config c = nd_optim_defaults(ND_SGD);
    c.lr = 0.1;
    check_against_reference(c);
    c.weight_decay = 0.05;
    check_against_reference(c);
}
END_TEST

START_TEST(sgd_momentum_matches_reference) {
    nd_optim_config c = nd_optim_defaults(ND_SGD);
    c.lr = 0.1;
    c.momentum = 0.9;
    check_against_reference(c);
}
END_TEST

START_TEST(adam_matches_reference) {
    nd_optim_config c = nd_optim_defaults(ND_ADAM);
    c.lr = 0.1;
    check_against_reference(c);
    c.beta1 = 0.5;
    c.beta2 = 0.9;
    c.eps = 1e-3; /* large enough to matter */
    check_against_reference(c);
}
END_TEST

START_TEST(adam_weight_decay_matches_reference) {
    nd_optim_config c = nd_optim_defaults(ND_ADAM);
    c.lr = 0.1;
    c.weight_decay = 0.1;
    check_against_reference(c);
}
END_TEST

START_TEST(adamw_matches_reference) {
    nd_optim_config c = nd_optim_defaults(ND_ADAMW);
    c.lr = 0.1;
    c.weight_decay = 0.1;
    check_against_reference(c);
    c.warmup_steps = 2; /* the decay and the step both use lr_t */
    check_against_reference(c);
}
END_TEST

START_TEST(warmup_ramps_linearly) {
    /* SGD on a constant gradient 1 moves p by -lr_t, exactly in float */
    nd_module *m = flat_new("w", (float[]){0.0f}, 1, NULL, NULL, 0);
    nd_tensor *w = nd_module_find(m, "w");
    nd_optim_config c = nd_optim_defaults(ND_SGD);
    c.lr = 0.5;
    c.warmup_steps = 4;
    nd_optimizer *opt = nd_optimizer_new(m, c);
    const float want[5] = {0.125f, 0.25f, 0.375f, 0.5f, 0.5f}; /* lr {1/4, 1/2, 3/4, 1, 1} */
    float p = 0.0f;
    for (int t = 0; t < 5; t++) {
        ck_assert_float_eq(nd_optimizer_lr(opt), want[t]);
        set_grad(w, (float[]){1.0f});
        nd_optimizer_step(opt);
        p -= want[t];
        ck_assert_float_eq(nd_data(w)[0], p);
    }
    ck_assert_float_eq(nd_optimizer_lr(opt), 0.5f);
    ck_assert_int_eq(nd_optimizer_steps(opt), 5);
    ck_assert_int_eq(nd_optimizer_config(opt)->warmup_steps, 4);
    nd_optimizer_free(opt);
    /* no warmup: the full rate from the first step */
    c.warmup_steps = 0;
    opt = nd_optimizer_new(m, c);
    ck_assert_float_eq(nd_optimizer_lr(opt), 0.5f);
    nd_optimizer_free(opt);
    nd_module_free(m);
}
END_TEST

START_TEST(params_without_grad_are_skipped) {
    const float b0[2] = {7.0f, -3.0f};
    nd_optim_kind kinds[3] = {ND_SGD, ND_ADAM, ND_ADAMW};
    for (int k = 0; k < 3; k++) {
        nd_module *m = flat_new("w", W0, 3, "b", b0, 2);
        nd_tensor *w = nd_module_find(m, "w"), *b = nd_module_find(m, "b");
        nd_optim_config c = nd_optim_defaults(kinds[k]);
        c.momentum = 0.9;
        c.weight_decay = 0.1; /* would move b even with a zero gradient */
        nd_optimizer *opt = nd_optimizer_new(m, c);
        for (int t = 0; t < 2; t++) {
            set_grad(w, G[t]);
            nd_optimizer_step(opt);
        }
        ck_assert_ptr_null(b->grad);
        ck_assert(memcmp(nd_data(b), b0, sizeof b0) == 0);
        ck_assert(nd_data(w)[0] != W0[0]);
        nd_param_list st = nd_optimizer_state(opt);
        int per = kinds[k] == ND_SGD ? 1 : 2;
        ck_assert_int_eq(st.n, 2 * per);
        for (int s = per; s < 2 * per; s++) {
            ck_assert(strncmp(st.items[s].name, "b.", 2) == 0);
            for (int i = 0; i < 2; i++) ck_assert_float_eq(nd_data(st.items[s].value)[i], 0.0f);
        }
        nd_param_list_free(&st);
        nd_optimizer_free(opt);
        nd_module_free(m);
    }
}
END_TEST

START_TEST(state_is_named_and_zero_before_any_step) {
    const float b0[2] = {1.0f, 2.0f};
    nd_module *m = flat_new("w", W0, 3, "b", b0, 2);
    nd_optimizer *opt = nd_optimizer_new(m, nd_optim_defaults(ND_ADAM));
    nd_param_list st = nd_optimizer_state(opt);
    const char *want[] = {"w.exp_avg", "w.exp_avg_sq", "b.exp_avg", "b.exp_avg_sq"};
    ck_assert_int_eq(st.n, 4);
    for (int i = 0; i < 4; i++) {
        nd_tensor *s = st.items[i].value;
        ck_assert_str_eq(st.items[i].name, want[i]);
        ck_assert_int_eq(nd_numel(s), i < 2 ? 3 : 2);
        ck_assert(!s->requires_grad);
        for (int64_t k = 0; k < nd_numel(s); k++) ck_assert_float_eq(nd_data(s)[k], 0.0f);
    }
    nd_param_list_free(&st);
    nd_optimizer_free(opt);

    opt = nd_optimizer_new(m, nd_optim_defaults(ND_SGD)); /* plain SGD: none */
    st = nd_optimizer_state(opt);
    ck_assert_int_eq(st.n, 0);
    nd_optimizer_free(opt);
    nd_optim_config c = nd_optim_defaults(ND_SGD);
    c.momentum = 0.9;
    opt = nd_optimizer_new(m, c);
    st = nd_optimizer_state(opt);
    ck_assert_int_eq(st.n, 2);
    ck_assert_str_eq(st.items[0].name, "w.momentum_buffer");
    ck_assert_str_eq(st.items[1].name, "b.momentum_buffer");
    nd_param_list_free(&st);
    nd_optimizer_free(opt);
    nd_module_free(m);
}
END_TEST

/* Three steps on A; B (a copy of the model, a fresh optimizer) takes over
 * A's state tensors and step count; one more step on both must agree to
 * the bit, parameters and state. */
START_TEST(resume_from_state_is_bit_identical) {
    const float b0[2] = {0.25f, -0.75f};
    const float gb[4][2] = {{1.0f, -0.5f}, {0.3f, 0.2f}, {-0.4f, 0.8f}, {0.6f, -0.1f}};
    const float g4[3] = {0.7f, 0.1f, -0.9f};
    nd_optim_config cs[3] = {nd_optim_defaults(ND_ADAM), nd_optim_defaults(ND_ADAMW),
                             nd_optim_defaults(ND_SGD)};
    cs[0].warmup_steps = 10; /* the resumed step is still warming up */
    cs[2].momentum = 0.9;
    for (int k = 0; k < 3; k++) {
        nd_module *ma = flat_new("w", W0, 3, "b", b0, 2);
        nd_tensor *wa = nd_module_find(ma, "w"), *ba = nd_module_find(ma, "b");
        nd_optimizer *a = nd_optimizer_new(ma, cs[k]);
        for (int t = 0; t < 3; t++) {
            set_grad(wa, G[t]);
            set_grad(ba, gb[t]);
            nd_optimizer_step(a);
        }
        nd_module *mb = flat_new("w", W0, 3, "b", b0, 2);
        nd_tensor *wb = nd_module_find(mb, "w"), *bb = nd_module_find(mb, "b");
        nd_copy_(wb, wa);
        nd_copy_(bb, ba);
        nd_optimizer *b = nd_optimizer_new(mb, cs[k]);
        nd_param_list sa = nd_optimizer_state(a), sb = nd_optimizer_state(b);
        ck_assert_int_eq(sa.n, sb.n);
        for (int i = 0; i < sa.n; i++) {
            ck_assert_str_eq(sa.items[i].name, sb.items[i].name);
            nd_copy_(sb.items[i].value, sa.items[i].value);
        }
        nd_optimizer_set_steps(b, nd_optimizer_steps(a));
        ck_assert_float_eq(nd_optimizer_lr(a), nd_optimizer_lr(b));
        set_grad(wa, g4);
        set_grad(ba, gb[3]);
        set_grad(wb, g4);
        set_grad(bb, gb[3]);
        nd_optimizer_step(a);
        nd_optimizer_step(b);
        ck_assert(memcmp(nd_data(wa), nd_data(wb), 3 * sizeof(float)) == 0);
        ck_assert(memcmp(nd_data(ba), nd_data(bb), 2 * sizeof(float)) == 0);
        for (int i = 0; i < sa.n; i++)
            ck_assert(memcmp(nd_data(sa.items[i].value), nd_data(sb.items[i].value),
                             (size_t)nd_numel(sa.items[i].value) * sizeof(float)) == 0);
        ck_assert_int_eq(nd_optimizer_steps(b), 4);
        nd_param_list_free(&sa);
        nd_param_list_free(&sb);
        nd_optimizer_free(a);
        nd_optimizer_free(b);
        nd_module_free(ma);
        nd_module_free(mb);
    }
}
END_TEST

START_TEST(zero_grad_zeroes_every_gradient) {
    const float b0[2] = {1.0f, 2.0f};
    nd_module *m = flat_new("w", W0, 3, "b", b0, 2);
    nd_tensor *w = nd_module_find(m, "w"), *b = nd_module_find(m, "b");
    nd_optimizer *opt = nd_optimizer_new(m, nd_optim_defaults(ND_ADAM));
    set_grad(w, G[0]);
    nd_optimizer_zero_grad(opt);
    for (int i = 0; i < 3; i++) ck_assert_float_eq(nd_data(w->grad)[i], 0.0f);
    ck_assert_ptr_null(b->grad);
    nd_optimizer_free(opt);
    nd_module_free(m);
}
END_TEST

/* ---- clipping ---------------------------------------------------------- */

START_TEST(clip_scales_above_threshold) {
    /* the gradient (3, 0, 0 | 4, 0) spread over two parameters: norm 5 */
    const float b0[2] = {0.0f, 0.0f};
    nd_module *m = flat_new("w", W0, 3, "b", b0, 2);
    nd_tensor *w = nd_module_find(m, "w"), *b = nd_module_find(m, "b");
    set_grad(w, (float[]){3.0f, 0.0f, 0.0f});
    set_grad(b, (float[]){4.0f, 0.0f});
    ck_assert(nd_clip_grad_norm(m, 1.0) == 5.0);
    const float coef = (float)(1.0 / (5.0 + 1e-6));
    ck_assert_float_eq(nd_data(w->grad)[0], 3.0f * coef);
    ck_assert_float_eq(nd_data(b->grad)[0], 4.0f * coef);
    ck_assert_float_eq(nd_data(w->grad)[1], 0.0f);
    ck_assert_rel(nd_data(w->grad)[0], 0.6, 1e-6);
    ck_assert_rel(nd_data(b->grad)[0], 0.8, 1e-6);
    /* the clipped norm is max_norm (up to the 1e-6) */
    ck_assert_rel(nd_clip_grad_norm(m, 1.0), 1.0, 1e-6);
    nd_module_free(m);
}
END_TEST

START_TEST(clip_leaves_small_gradients) {
    nd_module *m = flat_new("w", W0, 3, "b", W0, 2);
    nd_tensor *w = nd_module_find(m, "w"), *b = nd_module_find(m, "b");
    const float g[3] = {3.0f, 4.0f, 0.0f};
    set_grad(w, g); /* b has no gradient: it takes no part */
    ck_assert(nd_clip_grad_norm(m, 10.0) == 5.0);
    ck_assert(nd_clip_grad_norm(m, 5.0) == 5.0); /* not above: untouched */
    ck_assert(memcmp(nd_data(w->grad), g, sizeof g) == 0);
    ck_assert_ptr_null(b->grad);
    EXPECT_FATAL(nd_clip_grad_norm(m, 0.0), "nanodiff: clip_grad_norm: max_norm 0 is not > 0");
    EXPECT_FATAL(nd_clip_grad_norm(m, -1.0),
                 "nanodiff: clip_grad_norm: max_norm -1 is not > 0");
    nd_module_free(m);
}
END_TEST

/* The scalars 1 - beta are formed in double from the double betas, as
 * torch.optim does with Python floats: 1 - 0.999 is 1e-3, where the same
 * in float (0.999f) gives 9.99987e-4 and every exp_avg_sq 1.3e-5 smaller;
 * likewise the EMA's 1 - decay. */
START_TEST(one_minus_beta_and_decay_in_double) {
    const float g = 0.75f;
    nd_module *m = flat_new("w", (float[]){0.5f}, 1, NULL, NULL, 0);
    nd_tensor *w = nd_module_find(m, "w");
    nd_optimizer *opt = nd_optimizer_new(m, nd_optim_defaults(ND_ADAM));
    set_grad(w, &g);
    nd_optimizer_step(opt);
    nd_param_list st = nd_optimizer_state(opt);
    ck_assert_rel(nd_data(st.items[1].value)[0], 1e-3 * g * g, 1e-7);
    ck_assert_rel(nd_data(st.items[0].value)[0], 0.1 * g, 1e-7);
    nd_param_list_free(&st);
    nd_optimizer_free(opt);
    /* shadow 0, then p = 1: shadow = (1 - decay) exactly as float(1e-4) */
    nd_ema *ema = nd_ema_new(m, 0.9999);
    nd_data(w)[0] = 0.0f;
    nd_ema_update(ema);
    nd_data(w)[0] = 1.0f;
    nd_ema_update(ema);
    st = nd_ema_state(ema);
    ck_assert_float_eq(nd_data(st.items[0].value)[0], 1e-4f);
    nd_param_list_free(&st);
    nd_ema_free(ema);
    nd_module_free(m);
}
END_TEST

/* ---- EMA --------------------------------------------------------------- */

START_TEST(ema_copies_then_averages) {
    nd_module *m = flat_new("w", (float[]){1.0f, 2.0f, 3.0f}, 3, NULL, NULL, 0);
    nd_tensor *w = nd_module_find(m, "w");
    nd_ema *ema = nd_ema_new(m, 0.9);
    ck_assert(nd_ema_decay(ema) == 0.9);
    ck_assert_int_eq(nd_ema_updates(ema), 0);
    nd_param_list st = nd_ema_state(ema);
    ck_assert_int_eq(st.n, 1);
    ck_assert_str_eq(st.items[0].name, "w");
    nd_tensor *s = st.items[0].value;
    nd_param_list_free(&st);
    ck_assert(!s->requires_grad);
    ck_assert_ptr_ne(s, w);

    memcpy(nd_data(w), (float[]){-1.0f, 0.5f, 4.0f}, 3 * sizeof(float));
    nd_ema_update(ema); /* the first update copies */
    ck_assert(memcmp(nd_data(s), nd_data(w), 3 * sizeof(float)) == 0);

    const float p2[3] = {2.0f, 4.0f, -1.0f};
    memcpy(nd_data(w), p2, sizeof p2);
    float want[3];
    const float rate = (float)(1.0 - 0.9);
    for (int i = 0; i < 3; i++) { /* the documented form, in float */
        float d = nd_data(s)[i] - p2[i];
        d = rate * d;
        want[i] = nd_data(s)[i] - d;
    }
    const double prev[3] = {-1.0, 0.5, 4.0};
    nd_ema_update(ema);
    for (int i = 0; i < 3; i++) {
        ck_assert_float_eq(nd_data(s)[i], want[i]);
        ck_assert_rel(nd_data(s)[i], 0.9 * prev[i] + 0.1 * p2[i], 1e-6);
    }
    ck_assert_int_eq(nd_ema_updates(ema), 2);
    nd_ema_set_updates(ema, 0); /* a restart copies again */
    nd_ema_update(ema);
    ck_assert(memcmp(nd_data(s), p2, sizeof p2) == 0);
    nd_ema_free(ema);
    nd_module_free(m);
}
END_TEST

/* Three steps of kind (momentum 0.9, weight decay 0.01) and of an EMA on
 * one parameter w0 of n elements with gradient g: the parameter, then
 * the EMA's shadow, into out[2 n]. */
static void three_steps(nd_optim_kind kind, const float *w0, const float *g, int64_t n,
                        float *out) {
    nd_module *m = flat_new("w", w0, n, NULL, NULL, 0);
    nd_tensor *w = nd_module_find(m, "w");
    nd_optim_config c = nd_optim_defaults(kind);
    c.momentum = 0.9f;
    c.weight_decay = 0.01f;
    nd_optimizer *opt = nd_optimizer_new(m, c);
    nd_ema *ema = nd_ema_new(m, 0.99);
    for (int step = 0; step < 3; step++) {
        set_grad(w, g);
        nd_optimizer_step(opt);
        nd_ema_update(ema);
    }
    nd_param_list st = nd_ema_state(ema);
    memcpy(out, nd_data(w), (size_t)n * sizeof(float));
    memcpy(out + n, nd_data(st.items[0].value), (size_t)n * sizeof(float));
    nd_param_list_free(&st);
    nd_ema_free(ema);
    nd_optimizer_free(opt);
    nd_module_free(m);
}

/* A parameter large enough to be updated in pieces on the pool: for every
 * optimizer and the EMA, the same bits on one thread and two, and at the
 * pieces' edges the bits of a small parameter updated in one piece. */
START_TEST(large_parameters_update_the_same_on_any_thread_count) {
    enum { N = 40000 + 123 }; /* pieces of 16384, the last one short */
    float *w0 = malloc(N * sizeof(float)), *g = malloc(N * sizeof(float));
    float *got[2] = {malloc(2 * N * sizeof(float)), malloc(2 * N * sizeof(float))};
    uint64_t seed = 91;
    for (int i = 0; i < N; i++) {
        w0[i] = (float)((double)(t_next_u64(&seed) >> 40) * 0x1p-24 - 0.5);
        g[i] = (float)((double)(t_next_u64(&seed) >> 40) * 0x1p-24 - 0.5);
    }
    const nd_optim_kind kinds[3] = {ND_SGD, ND_ADAM, ND_ADAMW};
    const int at[3] = {0, 16384, N - 1};
    int was = nd_get_num_threads();
    for (int k = 0; k < 3; k++) {
        for (int threads = 1; threads <= 2; threads++) {
            nd_set_num_threads(threads);
            three_steps(kinds[k], w0, g, N, got[threads - 1]);
        }
        ck_assert_msg(memcmp(got[0], got[1], 2 * N * sizeof(float)) == 0, "optimizer %d", k);
        float ws[3], gs[3], small[6];
        for (int i = 0; i < 3; i++) {
            ws[i] = w0[at[i]];
            gs[i] = g[at[i]];
        }
        three_steps(kinds[k], ws, gs, 3, small);
        for (int i = 0; i < 3; i++) {
            ck_assert_float_eq(got[1][at[i]], small[i]);
            ck_assert_float_eq(got[1][N + at[i]], small[3 + i]);
        }
    }
    nd_set_num_threads(was);
    free(w0);
    free(g);
    free(got[0]);
    free(got[1]);
}
END_TEST

START_TEST(ema_copy_to_checks_the_structure) {
    const float b0[2] = {5.0f, 6.0f};
    nd_module *m = flat_new("w", W0, 3, "b", b0, 2);
    nd_ema *ema = nd_ema_new(m, 0.9999f);
    nd_ema_update(ema);
    const float zeros[3] = {0};
    nd_module *target = flat_new("w", zeros, 3, "b", zeros, 2);
    nd_ema_copy_to(ema, target);
    ck_assert(memcmp(nd_data(nd_module_find(target, "w")), W0, sizeof W0) == 0);
    ck_assert(memcmp(nd_data(nd_module_find(target, "b")), b0, sizeof b0) == 0);

    nd_module *fewer = flat_new("w", zeros, 3, NULL, NULL, 0);
    nd_module *shape = flat_new("w", zeros, 3, "b", zeros, 3);
    nd_module *names = flat_new("w", zeros, 3, "bias", zeros, 2);
    EXPECT_FATAL(nd_ema_copy_to(ema, fewer),
                 "nanodiff: ema_copy_to: the model has 1 parameters, the average 2");
    EXPECT_FATAL(nd_ema_copy_to(ema, shape),
                 "nanodiff: ema_copy_to: b is [3] in the model, [2] in the average");
    EXPECT_FATAL(nd_ema_copy_to(ema, names),
                 "nanodiff: ema_copy_to: parameter 1 is bias in the model, b in the average");
    /* nothing was written before stopping */
    ck_assert(memcmp(nd_data(nd_module_find(names, "w")), zeros, sizeof zeros) == 0);
    nd_module_free(fewer);
    nd_module_free(shape);
    nd_module_free(names);
    nd_module_free(target);
    nd_ema_free(ema);
    nd_module_free(m);
}
END_TEST

/* ---- misuse ------------------------------------------------------------ */

START_TEST(bad_configs_stop) {
    nd_module *m = flat_new("w", W0, 3, NULL, NULL, 0);
    nd_optim_config c = nd_optim_defaults(ND_ADAM);
    c.lr = -1.0;
    EXPECT_FATAL(nd_optimizer_new(m, c),
                 "nanodiff: optimizer_new: learning rate -1 is not a finite number >= 0");
    c = nd_optim_defaults(ND_ADAM);
    c.beta2 = 1.0;
    EXPECT_FATAL(nd_optimizer_new(m, c), "nanodiff: optimizer_new: beta2 1 is outside [0, 1)");
    c = nd_optim_defaults(ND_ADAM);
    c.beta1 = -0.5;
    EXPECT_FATAL(nd_optimizer_new(m, c),
                 "nanodiff: optimizer_new: beta1 -0.5 is outside [0, 1)");
    c = nd_optim_defaults(ND_ADAMW);
    c.weight_decay = -0.01;
    EXPECT_FATAL(nd_optimizer_new(m, c), "nanodiff: optimizer_new: weight_decay -0.01 is "
                                         "not a finite number >= 0");
    c = nd_optim_defaults(ND_SGD);
    c.momentum = INFINITY;
    EXPECT_FATAL(nd_optimizer_new(m, c),
                 "nanodiff: optimizer_new: momentum inf is not a finite number >= 0");
    c = nd_optim_defaults(ND_ADAM);
    c.eps = -1e-8;
    EXPECT_FATAL(nd_optimizer_new(m, c),
                 "nanodiff: optimizer_new: eps -1e-08 is not a finite number >= 0");
    c = nd_optim_defaults(ND_ADAM);
    c.warmup_steps = -3;
    EXPECT_FATAL(nd_optimizer_new(m, c), "nanodiff: optimizer_new: warmup_steps -3 is negative");
    EXPECT_FATAL(nd_optimizer_new(NULL, nd_optim_defaults(ND_ADAM)),
                 "nanodiff: optimizer_new: model is NULL");
    nd_module empty;
    nd_module_init(&empty, "Empty", NULL);
    EXPECT_FATAL(nd_optimizer_new(&empty, nd_optim_defaults(ND_ADAM)),
                 "nanodiff: optimizer_new: the model (Empty) has no parameters");
    nd_module_free(&empty);

    nd_optimizer *opt = nd_optimizer_new(m, nd_optim_defaults(ND_ADAM));
    EXPECT_FATAL(nd_optimizer_set_steps(opt, -1),
                 "nanodiff: optimizer_set_steps: step count -1 is negative");
    nd_optimizer_free(opt);

    EXPECT_FATAL(nd_ema_new(m, 1.5f), "nanodiff: ema_new: decay 1.5 is outside [0, 1]");
    EXPECT_FATAL(nd_ema_new(m, -0.1f), "nanodiff: ema_new: decay -0.1 is outside [0, 1]");
    EXPECT_FATAL(nd_ema_new(NULL, 0.9f), "nanodiff: ema_new: model is NULL");
    nd_module_free(m);
}
END_TEST

START_TEST(defaults_follow_pytorch) {
    nd_optim_config s = nd_optim_defaults(ND_SGD), a = nd_optim_defaults(ND_ADAM),
                    w = nd_optim_defaults(ND_ADAMW);
    ck_assert(s.lr == 1e-2 && s.momentum == 0.0);
    ck_assert(a.lr == 1e-3 && a.beta1 == 0.9 && a.beta2 == 0.999 && a.eps == 1e-8);
    ck_assert(a.weight_decay == 0.0 && w.weight_decay == 1e-2);
    ck_assert(w.kind == ND_ADAMW && a.kind == ND_ADAM && s.kind == ND_SGD);
    ck_assert_int_eq(a.warmup_steps, 0);
}
END_TEST

TCase *tcase_optim(void) {
    TCase *tc = nd_test_case("optim");
    tcase_add_test(tc, sgd_matches_reference);
    tcase_add_test(tc, sgd_momentum_matches_reference);
    tcase_add_test(tc, adam_matches_reference);
    tcase_add_test(tc, adam_weight_decay_matches_reference);
    tcase_add_test(tc, adamw_matches_reference);
    tcase_add_test(tc, warmup_ramps_linearly);
    tcase_add_test(tc, params_without_grad_are_skipped);
    tcase_add_test(tc, state_is_named_and_zero_before_any_step);
    tcase_add_test(tc, resume_from_state_is_bit_identical);
    tcase_add_test(tc, zero_grad_zeroes_every_gradient);
    tcase_add_test(tc, clip_scales_above_threshold);
    tcase_add_test(tc, clip_leaves_small_gradients);
    tcase_add_test(tc, ema_copies_then_averages);
    tcase_add_test(tc, large_parameters_update_the_same_on_any_thread_count);
    tcase_add_test(tc, ema_copy_to_checks_the_structure);
    tcase_add_test(tc, bad_configs_stop);
    tcase_add_test(tc, defaults_follow_pytorch);
    tcase_add_test(tc, one_minus_beta_and_decay_in_double);
    return tc;
}
