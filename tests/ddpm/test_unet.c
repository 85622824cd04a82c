/* The UNet: the paper's parameter count, the port's names and shapes,
 * DDPM's initialisation, its cost counted from the ops it runs, gradients
 * through the whole model by finite differences, and its refusals. */
#include <math.h>
#include <string.h>

#include "ddpm/ddpm.h"
#include "helpers.h"

static nd_unet *named(const char *name, uint64_t seed) {
    nd_unet_config c;
    nd_error err;
    ck_assert_int_eq(nd_unet_config_named(name, &c, &err), ND_OK);
    nd_rng g = nd_rng_init(seed, 0);
    return nd_unet_new(&c, &g);
}

static void expect_shape(const nd_module *m, const char *name, const int64_t *shape, int ndim) {
    const nd_tensor *p = nd_module_find(m, name);
    ck_assert_msg(p != NULL, "no parameter %s", name);
    char got[ND_SHAPE_STR_LEN], want[ND_SHAPE_STR_LEN];
    ck_assert_msg(p->ndim == ndim && !memcmp(p->shape, shape, (size_t)ndim * sizeof *shape),
                  "%s is %s, want %s", name, nd_shape_str(p->shape, p->ndim, got),
                  nd_shape_str(shape, ndim, want));
}

/* The paper's CIFAR-10 model has 35,746,307 parameters; the names and
 * shapes are those of the converted official checkpoint, skips and all
 * (up.1.block.2 takes 256 + 128 channels: the level-0 downsample's). */
START_TEST(cifar10_has_the_papers_parameters) {
    nd_unet *u = named("cifar10", 1);
    nd_module *m = nd_unet_module(u);
    ck_assert_int_eq(nd_num_parameters(m), 35746307);
    expect_shape(m, "temb.dense.0.weight", ND_SHAPE(512, 128));
    expect_shape(m, "temb.dense.1.bias", ND_SHAPE(512));
    expect_shape(m, "conv_in.weight", ND_SHAPE(128, 3, 3, 3));
    expect_shape(m, "down.0.block.1.conv2.weight", ND_SHAPE(128, 128, 3, 3));
    expect_shape(m, "down.0.downsample.conv.weight", ND_SHAPE(128, 128, 3, 3));
    expect_shape(m, "down.1.block.0.nin_shortcut.weight", ND_SHAPE(256, 128, 1, 1));
    expect_shape(m, "down.1.block.0.temb_proj.weight", ND_SHAPE(256, 512));
    expect_shape(m, "down.1.attn.1.proj_out.weight", ND_SHAPE(256, 256, 1, 1));
    expect_shape(m, "down.1.attn.0.norm.weight", ND_SHAPE(256));
    expect_shape(m, "mid.block_1.conv1.weight", ND_SHAPE(256, 256, 3, 3));
    expect_shape(m, "mid.attn_1.q.weight", ND_SHAPE(256, 256, 1, 1));
    expect_shape(m, "mid.block_2.norm2.bias", ND_SHAPE(256));
    expect_shape(m, "up.3.block.0.conv1.weight", ND_SHAPE(256, 512, 3, 3));
    expect_shape(m, "up.1.block.2.nin_shortcut.weight", ND_SHAPE(256, 384, 1, 1));
    expect_shape(m, "up.1.attn.2.k.weight", ND_SHAPE(256, 256, 1, 1));
    expect_shape(m, "up.1.upsample.conv.weight", ND_SHAPE(256, 256, 3, 3));
    expect_shape(m, "up.0.block.0.conv1.weight", ND_SHAPE(128, 384, 3, 3));
    expect_shape(m, "up.0.block.2.conv1.weight", ND_SHAPE(128, 256, 3, 3));
    expect_shape(m, "norm_out.weight", ND_SHAPE(128));
    expect_shape(m, "conv_out.weight", ND_SHAPE(3, 128, 3, 3));
    const char *absent[] = {"down.3.downsample.conv.weight", "up.0.upsample.conv.weight",
                            "down.0.attn.0.q.weight", "up.2.attn.0.q.weight",
                            "down.0.block.0.nin_shortcut.weight"};
    for (int k = 0; k < 5; k++) ck_assert_ptr_null(nd_module_find(m, absent[k]));
    /* the up levels come in the port's order, up.0 first */
    nd_param_list ps = nd_parameters(m);
    int first_up0 = -1, first_up3 = -1;
    for (int i = 0; i < ps.n; i++) {
        if (first_up0 < 0 && !strncmp(ps.items[i].name, "up.0.", 5)) first_up0 = i;
        if (first_up3 < 0 && !strncmp(ps.items[i].name, "up.3.", 5)) first_up3 = i;
    }
    ck_assert_int_lt(first_up0, first_up3);
    nd_param_list_free(&ps);
    nd_module_free(m);
}
END_TEST

START_TEST(small_has_its_parameters_and_cost) {
    nd_unet *u = named("small", 1);
    ck_assert_int_eq(nd_num_parameters(nd_unet_module(u)), 1623169);
    ck_assert_int_eq(nd_unet_macs(nd_unet_get_config(u)), 417800192);
    nd_module_free(nd_unet_module(u));
}
END_TEST

/* variance_scaling(1, fan_avg, uniform): U(-L, L), L = sqrt(3 / fan_avg),
 * so |w| <= L and the mean square is L^2 / 3; 1e-10 for conv2, proj_out
 * and conv_out; biases 0 and GroupNorm scales 1. */
START_TEST(initialisation_is_ddpms) {
    nd_unet *u = named("small", 2);
    nd_param_list ps = nd_parameters(nd_unet_module(u));
    int zero_init = 0;
    for (int i = 0; i < ps.n; i++) {
        const char *name = ps.items[i].name;
        const nd_tensor *p = ps.items[i].value;
        const float *v = nd_data(p);
        int64_t n = nd_numel(p);
        if (p->ndim >= 2) {
            int64_t fin, fout;
            nd_fans(p, &fin, &fout);
            size_t len = strlen(name);
            bool zero = (len >= 12 && !strcmp(name + len - 12, "conv2.weight")) ||
                        (len >= 15 && !strcmp(name + len - 15, "proj_out.weight")) ||
                        !strcmp(name, "conv_out.weight");
            zero_init += zero;
            double limit = sqrt(3.0 * (zero ? 1e-10 : 1.0) / ((fin + fout) / 2.0));
            double ms = 0;
            for (int64_t e = 0; e < n; e++) {
                ck_assert_msg(fabs(v[e]) <= limit * (1 + 1e-6), "%s[%lld] = %g beyond %g", name,
                              (long long)e, (double)v[e], limit);
                ms += (double)v[e] * v[e];
            }
            ms /= (double)n;
            /* within 6 standard errors of L^2/3 (the variance of U^2 is 4 L^4 / 45) */
            double se = sqrt(4.0 / 45.0 / (double)n) * limit * limit;
            ck_assert_msg(fabs(ms - limit * limit / 3) <= 6 * se, "%s: mean square %g, want %g",
                          name, ms, limit * limit / 3);
        } else {
            bool scale = strstr(name, "norm") && !strcmp(name + strlen(name) - 6, "weight");
            for (int64_t e = 0; e < n; e++)
                ck_assert_msg(v[e] == (scale ? 1.0f : 0.0f), "%s[%lld] = %g", name, (long long)e,
                              (double)v[e]);
        }
    }
    /* 2 + 2 + 2 + 3 + 3 + 3 blocks + 2 mid, 2 + 3 + 1 attentions, conv_out */
    ck_assert_int_eq(zero_init, 17 + 6 + 1);
    nd_param_list_free(&ps);
    /* so the model starts at eps = 0 */
    nd_rng g = nd_rng_init(3, 0);
    nd_tensor *x = nd_randn(&g, ND_SHAPE(2, 1, 32, 32));
    nd_tensor *eps = nd_unet_forward(u, x, nd_from_buffer((const float[]){0, 999}, ND_SHAPE(2)),
                                     &g);
    ck_assert_float_le(nd_item(nd_max(nd_abs(eps), NULL, 0, false)), 1e-3f);
    nd_module_free(nd_unet_module(u));
}
END_TEST

/* The multiply-adds of a forward, counted from the conv2d and matmul ops
 * it actually runs, equal nd_unet_macs. */
static int64_t counted;
static nd_op_observer chained;
static void count_macs(const nd_op_event *e) {
    if (e->op == ND_OP_CONV2D) {
        const nd_tensor *w = e->in[1], *y = e->out;
        counted += nd_numel(y) * w->shape[1] * w->shape[2] * w->shape[3];
    } else if (e->op == ND_OP_MATMUL) {
        const nd_tensor *a = e->in[0];
        counted += nd_numel(e->out) * a->shape[a->ndim - 1];
    }
    if (chained) chained(e);
}

START_TEST(cost_counts_every_product) {
    const char *names[2] = {"tiny", "small"};
    for (int k = 0; k < 2; k++) {
        nd_unet *u = named(names[k], 4);
        const nd_unet_config *c = nd_unet_get_config(u);
        nd_tensor *x = nd_zeros(ND_SHAPE(3, c->in_channels, c->resolution, c->resolution));
        nd_module_train(nd_unet_module(u), false); /* no dropout masks */
        counted = 0;
        chained = nd_set_op_observer(count_macs);
        nd_no_grad_begin();
        nd_unet_forward(u, x, nd_zeros(ND_SHAPE(3)), NULL);
        nd_no_grad_end();
        nd_set_op_observer(chained);
        chained = NULL;
        ck_assert_int_eq(counted, 3 * nd_unet_macs(c));
        nd_module_free(nd_unet_module(u));
    }
}
END_TEST

/* L_simple at fixed draws, differentiated through the whole tiny model:
 * backward against central differences on parameters at both ends, the
 * middle and the time path. Nonzero weights everywhere, so that no
 * zero-initialised layer hides a gradient. */
typedef struct {
    nd_schedule *s;
    nd_unet *u;
    nd_tensor *x0, *t, *eps;
} loss_ctx;

static nd_tensor *unet_loss(nd_tensor *const *in, void *ctx) {
    (void)in; /* the parameters themselves, read by the model */
    loss_ctx *c = ctx;
    return nd_loss_simple_at(c->s, nd_unet_denoiser(c->u), c->x0, c->t, c->eps, NULL);
}

START_TEST(gradients_through_the_whole_model) {
    nd_schedule s;
    nd_error err;
    ck_assert_int_eq(nd_schedule_linear(&s, 1000, 1e-4, 0.02, &err), ND_OK);
    nd_unet *u = named("tiny", 5);
    nd_module *m = nd_unet_module(u);
    nd_rng g = nd_rng_init(6, 0);
    nd_param_list ps = nd_parameters(m);
    for (int i = 0; i < ps.n; i++) {
        nd_tensor *p = ps.items[i].value;
        if (p->ndim >= 2) nd_init_torch_default_(p, NULL, &g);
        else nd_init_uniform_(p, strstr(ps.items[i].name, "norm") ? 0.5f : -0.3f,
                              strstr(ps.items[i].name, "norm") ? 1.5f : 0.3f, &g);
    }
    loss_ctx c = {&s, u, nd_clamp(nd_randn(&g, ND_SHAPE(2, 1, 8, 8)), -1, 1),
                  nd_from_buffer((const float[]){40, 600}, ND_SHAPE(2)),
                  nd_randn(&g, ND_SHAPE(2, 1, 8, 8))};
    const char *names[] = {"conv_out.bias", "temb.dense.0.bias", "mid.attn_1.q.bias",
                           "down.1.block.0.norm1.weight", "up.0.block.1.temb_proj.bias",
                           "up.1.upsample.conv.bias", "down.0.downsample.conv.bias"};
    enum { K = 7 };
    nd_tensor *in[K];
    int64_t want = 0;
    for (int k = 0; k < K; k++) {
        in[k] = nd_module_find(m, names[k]);
        ck_assert_ptr_nonnull(in[k]);
        nd_requires_grad(in[k], false);
        want += nd_numel(in[k]);
    }
    nd_gradcheck_report rep;
    bool ok = nd_gradcheck(unet_loss, &c, in, K, 1e-2, 1e-4, 2e-2, &rep);
    ck_assert_msg(ok && rep.checked == want, "%lld of %lld out of tolerance; worst %s[%lld]: "
                  "analytic %.6g, numeric %.6g", (long long)rep.failed, (long long)rep.checked,
                  names[rep.worst_input], (long long)rep.worst_index, rep.analytic, rep.numeric);
    for (int k = 0; k < K; k++) nd_requires_grad(in[k], true);
    nd_param_list_free(&ps);
    nd_module_free(m);
    nd_schedule_free(&s);
}
END_TEST

START_TEST(bad_configs_and_inputs_are_refused) {
    nd_unet_config c;
    nd_error err;
    ck_assert_int_eq(nd_unet_config_named("cifar100", &c, &err), ND_ERR);
    ck_assert_str_eq(err.message, "unet: no configuration named 'cifar100' (cifar10, small, tiny)");
    ck_assert_int_eq(nd_unet_config_named("tiny", &c, &err), ND_OK);
    ck_assert_int_eq(nd_unet_config_check(&c, &err), ND_OK);
    nd_unet_config bad = c;
    bad.groups = 3;
    ck_assert_int_eq(nd_unet_config_check(&bad, &err), ND_ERR);
    ck_assert_str_eq(err.message, "unet: 3 groups do not divide ch 8");
    bad = c;
    bad.resolution = 6;
    bad.levels = 3;
    bad.ch_mult[2] = 2;
    ck_assert_int_eq(nd_unet_config_check(&bad, &err), ND_ERR);
    ck_assert_str_eq(err.message, "unet: resolution 6 does not halve evenly 2 times");
    bad = c;
    bad.levels = 0;
    ck_assert_int_eq(nd_unet_config_check(&bad, &err), ND_ERR);
    ck_assert_str_eq(err.message, "unet: 0 levels in ch_mult, need 1..8");
    bad = c;
    bad.dropout = 1.0f;
    ck_assert_int_eq(nd_unet_config_check(&bad, &err), ND_ERR);
    ck_assert_str_eq(err.message, "unet: dropout 1 is not in [0, 1)");
    bad = c;
    bad.ch_mult[1] = 0;
    ck_assert_int_eq(nd_unet_config_check(&bad, &err), ND_ERR);
    ck_assert_str_eq(err.message, "unet: ch_mult[1] = 0 is not positive");
    nd_rng g = nd_rng_init(0, 0);
    bad = c;
    bad.num_res_blocks = 0;
    EXPECT_FATAL(nd_unet_new(&bad, &g),
                 "nanodiff: unet_new: unet: num_res_blocks 0 is not in 1..8");
    nd_unet *u = nd_unet_new(&c, &g);
    EXPECT_FATAL(nd_unet_forward(u, nd_zeros(ND_SHAPE(2, 1, 16, 16)), nd_zeros(ND_SHAPE(2)), NULL),
                 "nanodiff: unet: model for [N,1,8,8] and t [N] got x [2,1,16,16] and t [2]");
    EXPECT_FATAL(nd_unet_forward(u, nd_zeros(ND_SHAPE(2, 1, 8, 8)), nd_zeros(ND_SHAPE(3)), NULL),
                 "nanodiff: unet: model for [N,1,8,8] and t [N] got x [2,1,8,8] and t [3]");
    nd_module_free(nd_unet_module(u));
}
END_TEST

/* A class-conditional tiny UNet: one more parameter, label_emb.weight
 * [K + 1, 4 ch]; its row for each label added to the time embedding, so
 * that the label changes the output, -1 is "no label" (the same as none
 * given), and bad labels are refused. */
START_TEST(class_labels_shift_the_time_embedding) {
    nd_unet_config c;
    nd_error err;
    ck_assert_int_eq(nd_unet_config_named("tiny", &c, &err), ND_OK);
    c.num_classes = 3;
    nd_rng g = nd_rng_init(12, 0);
    nd_unet *u = nd_unet_new(&c, &g);
    nd_module *m = nd_unet_module(u);
    ck_assert_int_eq(nd_num_parameters(m), 44969 + 4 * 32);
    expect_shape(m, "label_emb.weight", ND_SHAPE(4, 32));
    ck_assert_int_eq(nd_unet_macs(&c), nd_unet_macs(&(nd_unet_config){.in_channels = 1,
        .out_channels = 1, .resolution = 8, .ch = 8, .levels = 2, .ch_mult = {1, 2},
        .num_res_blocks = 1, .nattn = 1, .attn_resolutions = {4}, .groups = 4}) + 4 * 32);
    /* no zero-initialised branch, so that the output shows the embedding */
    nd_param_list ps = nd_parameters(m);
    for (int i = 0; i < ps.n; i++)
        if (ps.items[i].value->ndim >= 2 && strcmp(ps.items[i].name, "label_emb.weight"))
            nd_init_torch_default_(ps.items[i].value, NULL, &g);
    nd_param_list_free(&ps);
    nd_module_train(m, false);
    /* one image four times, so that only the labels tell the outputs apart */
    nd_tensor *x = nd_contiguous(nd_expand(nd_randn(&g, ND_SHAPE(1, 1, 8, 8)), ND_SHAPE(4, 1, 8, 8)));
    nd_tensor *t = nd_full(ND_SHAPE(4), 30);
    nd_tensor *y = nd_from_buffer((const float[]){0, 1, 2, -1}, ND_SHAPE(4));
    nd_tensor *out = nd_unet_forward_labels(u, x, t, y, NULL);
    nd_tensor *none = nd_unet_forward(u, x, t, NULL);
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < a; b++)
            ck_assert_msg(!nd_allclose(nd_slice(out, 0, a, a + 1, 1), nd_slice(out, 0, b, b + 1, 1),
                                       1e-4, 1e-4, false),
                          "labels %d and %d give the same output", a, b);
    /* "no label" (-1) is what a call without labels gives */
    ck_assert(nd_allclose(nd_slice(out, 0, 3, 4, 1), nd_slice(none, 0, 3, 4, 1), 0, 0, false));
    EXPECT_FATAL(nd_unet_forward_labels(u, x, t, nd_from_buffer((const float[]){0, 3, 0, 0},
                                                                ND_SHAPE(4)), NULL),
                 "nanodiff: unet: label[1] = 3 is not a class in 0..2 or -1 (none)");
    nd_module_free(m);
    nd_unet *plain = named("tiny", 1);
    EXPECT_FATAL(nd_unet_forward_labels(plain, x, t, y, NULL),
                 "nanodiff: unet: labels given to a model without classes");
    nd_module_free(nd_unet_module(plain));
}
END_TEST

/* Sampling keeps only what the way up needs: in no-grad mode each block's
 * temporaries are freed as it ends, so the forward leaves far less alive
 * in the caller's scope than with grad, where the tape keeps them all;
 * and the output is the same bits either way. */
START_TEST(no_grad_forward_frees_each_blocks_temporaries) {
    nd_unet *u = named("tiny", 9);
    const nd_unet_config *c = nd_unet_get_config(u);
    nd_module_train(nd_unet_module(u), false);
    nd_rng g = nd_rng_init(10, 0);
    nd_tensor *x = nd_randn(&g, ND_SHAPE(4, c->in_channels, c->resolution, c->resolution));
    nd_tensor *t = nd_full(ND_SHAPE(4), 100.0f);
    size_t held[2];
    nd_tensor *y[2];
    for (int grad = 0; grad < 2; grad++) {
        if (!grad) nd_no_grad_begin();
        size_t before = nd_mem_live();
        nd_scope *s = nd_scope_begin();
        y[grad] = nd_unet_forward(u, x, t, NULL);
        held[grad] = nd_mem_live() - before;
        nd_persist(y[grad]);
        nd_scope_end(s);
        if (!grad) nd_no_grad_end();
    }
    ck_assert_msg(2 * held[0] < held[1], "no-grad forward holds %zu bytes, with grad %zu",
                  held[0], held[1]);
    ck_assert_mem_eq(nd_data(y[0]), nd_data(y[1]), (size_t)nd_numel(y[0]) * sizeof(float));
    nd_free(y[0]);
    nd_free(y[1]);
    nd_module_free(nd_unet_module(u));
}
END_TEST

TCase *tcase_unet(void) {
    TCase *tc = nd_test_case("unet");
    tcase_add_test(tc, cifar10_has_the_papers_parameters);
    tcase_add_test(tc, small_has_its_parameters_and_cost);
    tcase_add_test(tc, initialisation_is_ddpms);
    tcase_add_test(tc, cost_counts_every_product);
    tcase_add_test(tc, gradients_through_the_whole_model);
    tcase_add_test(tc, bad_configs_and_inputs_are_refused);
    tcase_add_test(tc, class_labels_shift_the_time_embedding);
    tcase_add_test(tc, no_grad_forward_frees_each_blocks_temporaries);
    return tc;
}
