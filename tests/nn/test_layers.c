/* Forward values of the layers against PyTorch (tests/nn/reference.py
 * wrote reference_data.h), from inputs and parameters that both sides
 * fill with the same exact values. */
#include <math.h>
#include <string.h>

#include "helpers.h"
#include "nn/nn.h"
#include "reference_data.h"

/* fill() of reference.py: multiples of 1/16, exact in float32 */
static void fill(nd_tensor *t, int seed) {
    int64_t n = nd_numel(t);
    float *p = nd_data(t);
    for (int64_t i = 0; i < n; i++) p[i] = (float)((i * 37 + seed * 11) % 23 - 11) / 16.0f;
}
static nd_tensor *filled(const int64_t *shape, int ndim, int seed) {
    nd_tensor *t = nd_empty(shape, ndim);
    fill(t, seed);
    return t;
}

/* Parameters take seeds 1, 2, ... in nd_parameters order; names and
 * shapes must be the ones the script used (checked here). */
static void fill_params(nd_module *m, const char *const *names, int n) {
    nd_param_list ps = nd_parameters(m);
    ck_assert_int_eq(ps.n, n);
    for (int i = 0; i < n; i++) {
        ck_assert_str_eq(ps.items[i].name, names[i]);
        fill(ps.items[i].value, i + 1);
    }
    nd_param_list_free(&ps);
}

/* Every element within atol + rtol |ref|. */
static void expect_ref(const nd_tensor *y, const float *ref, int64_t n, double tol,
                       const char *what) {
    ck_assert_msg(nd_numel(y) == n, "%s: %lld elements, reference has %lld", what,
                  (long long)nd_numel(y), (long long)n);
    nd_tensor *c = nd_contiguous(y);
    const float *p = nd_data(c);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(p[i] - ref[i]) <= tol * (1 + fabs(ref[i])),
                      "%s[%lld] = %.9g, PyTorch %.9g", what, (long long)i, p[i], ref[i]);
}
#define REF(ref) ref, (int64_t)(sizeof ref / sizeof(float))
#define EXPECT_REF(y, ref, tol) expect_ref((y), (ref), sizeof(ref) / sizeof(float), (tol), #ref)

START_TEST(linear_matches_torch) {
    nd_rng g = nd_rng_init(0, 0);
    nd_linear_layer *l = nd_linear_new(5, 3, true, &g);
    fill_params(&l->base, (const char *[]){"weight", "bias"}, 2);
    EXPECT_REF(nd_linear_forward(l, filled(ND_SHAPE(2, 4, 5), 100)), ref_linear, 1e-6);
    nd_module_free(&l->base);
}
END_TEST

START_TEST(conv2d_matches_torch_for_every_padding) {
    nd_rng g = nd_rng_init(0, 0);
    nd_tensor *x = filled(ND_SHAPE(2, 3, 6, 5), 100);
    struct {
        nd_conv2d_opts o;
        const float *ref;
        int64_t n;
        const char *what;
    } cases[] = {
        {{1, 1, 1, 1, 1, 1}, REF(ref_conv_same), "same"},
        {{1, 1, 0, 0, 0, 0}, REF(ref_conv_valid), "valid"},
        {{2, 2, 0, 1, 0, 1}, REF(ref_conv_s2_tf_same), "stride 2, TF SAME"},
        {{2, 2, 1, 1, 1, 1}, REF(ref_conv_s2_pad1), "stride 2, pad 1"},
        {{1, 1, 2, 0, 1, 3}, REF(ref_conv_asym), "asymmetric"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        nd_conv2d_layer *c = nd_conv2d_new(3, 4, 3, 3, cases[i].o, true, &g);
        fill_params(&c->base, (const char *[]){"weight", "bias"}, 2);
        expect_ref(nd_conv2d_forward(c, x), cases[i].ref, cases[i].n, 1e-6, cases[i].what);
        nd_module_free(&c->base);
    }
    nd_conv2d_layer *c = nd_conv2d_new(3, 2, 5, 3, (nd_conv2d_opts){1, 2, 2, 2, 1, 1},
                                       true, &g);
    fill_params(&c->base, (const char *[]){"weight", "bias"}, 2);
    EXPECT_REF(nd_conv2d_forward(c, x), ref_conv_rect, 1e-6);
    nd_module_free(&c->base);
}
END_TEST

START_TEST(group_norm_matches_torch) {
    nd_tensor *x = nd_add_scalar(nd_mul_scalar(filled(ND_SHAPE(2, 6, 3, 5), 100), 3), 0.5f);
    nd_group_norm_layer *l = nd_group_norm_new(3, 6, 1e-5f, true);
    fill_params(&l->base, (const char *[]){"weight", "bias"}, 2);
    EXPECT_REF(nd_group_norm_forward(l, x), ref_group_norm, 2e-6);
    EXPECT_REF(nd_group_norm(x, 2, NULL, NULL, 1e-5f), ref_group_norm_plain, 2e-6);
    /* a permuted (non-contiguous) input gives the same values */
    nd_tensor *xt = nd_permute(nd_contiguous(nd_permute(x, ND_AXES(0, 2, 3, 1))),
                               ND_AXES(0, 3, 1, 2));
    ck_assert(!nd_is_contiguous(xt));
    EXPECT_REF(nd_group_norm_forward(l, xt), ref_group_norm, 2e-6);
    nd_module_free(&l->base);
}
END_TEST

static const char *const attn_names[] = {
    "norm.weight", "norm.bias", "q.weight", "q.bias", "k.weight", "k.bias",
    "v.weight", "v.bias", "proj_out.weight", "proj_out.bias"};

START_TEST(attention_matches_torch) {
    nd_rng g = nd_rng_init(0, 0);
    nd_tensor *x = filled(ND_SHAPE(2, 4, 3, 3), 100);
    for (int heads = 1; heads <= 2; heads++) {
        nd_attention_layer *l = nd_attention_new(4, heads, 2, &g);
        fill_params(&l->base, attn_names, 10);
        nd_tensor *y = nd_attention_forward(l, x);
        if (heads == 1) EXPECT_REF(y, ref_attention, 2e-6);
        else EXPECT_REF(y, ref_attention_2heads, 2e-6);
        nd_module_free(&l->base);
    }
}
END_TEST

START_TEST(timestep_embedding_matches_torch) {
    const float ts[5] = {0, 1, 17, 500, 999};
    nd_tensor *t = nd_from_buffer(ts, ND_SHAPE(5));
    EXPECT_REF(nd_timestep_embedding(t, 16), ref_temb_16, 1e-6);
    EXPECT_REF(nd_timestep_embedding(t, 7), ref_temb_7, 1e-6);
    /* the formula itself, at one point: sin first, then cos */
    nd_tensor *e = nd_timestep_embedding(t, 16);
    double f3 = exp(-3 * log(10000.0) / 7);
    ck_assert_near(nd_get(e, (int64_t[]){2, 3}), sin(17 * f3), 1e-6);
    ck_assert_near(nd_get(e, (int64_t[]){2, 11}), cos(17 * f3), 1e-6);
}
END_TEST

static const char *const res_names[] = {
    "norm1.weight", "norm1.bias", "conv1.weight", "conv1.bias",
    "temb_proj.weight", "temb_proj.bias", "norm2.weight", "norm2.bias",
    "conv2.weight", "conv2.bias", "nin_shortcut.weight", "nin_shortcut.bias"};

START_TEST(resblock_matches_torch) {
    nd_rng g = nd_rng_init(0, 0);
    nd_tensor *x = filled(ND_SHAPE(2, 4, 4, 3), 100), *temb = filled(ND_SHAPE(2, 8), 200);
    nd_resblock_layer *a = nd_resblock_new(4, 6, 8, 2, 0.1f, &g);
    nd_resblock_layer *b = nd_resblock_new(4, 4, 8, 2, 0.0f, &g);
    fill_params(&a->base, res_names, 12);
    fill_params(&b->base, res_names, 10);
    nd_module_train(&a->base, false); /* dropout off, as the reference */
    EXPECT_REF(nd_resblock_forward(a, x, temb, NULL), ref_resblock_4_6, 5e-6);
    EXPECT_REF(nd_resblock_forward(b, x, temb, NULL), ref_resblock_4_4, 5e-6);
    nd_module_free(&a->base);
    nd_module_free(&b->base);
}
END_TEST

START_TEST(resampling_matches_torch) {
    nd_rng g = nd_rng_init(0, 0);
    nd_tensor *x = filled(ND_SHAPE(1, 2, 4, 4), 100);
    nd_upsample_layer *up = nd_upsample_new(2, &g);
    nd_downsample_layer *down = nd_downsample_new(2, &g);
    fill_params(&up->base, (const char *[]){"conv.weight", "conv.bias"}, 2);
    fill_params(&down->base, (const char *[]){"conv.weight", "conv.bias"}, 2);
    EXPECT_REF(nd_upsample_forward(up, x), ref_upsample, 1e-6);
    EXPECT_REF(nd_downsample_forward(down, x), ref_downsample, 1e-6);
    /* nearest x2 alone: every 2x2 block repeats its source */
    nd_tensor *u = nd_upsample_nearest2x(x);
    for (int64_t i = 0; i < 8; i++)
        for (int64_t j = 0; j < 8; j++)
            ck_assert_float_eq(nd_get(u, (int64_t[]){0, 1, i, j}),
                               nd_get(x, (int64_t[]){0, 1, i / 2, j / 2}));
    nd_module_free(&up->base);
    nd_module_free(&down->base);
}
END_TEST

START_TEST(dropout_masks_and_scales) {
    nd_rng g = nd_rng_init(5, 3);
    nd_tensor *x = nd_full(ND_SHAPE(100, 100), 2.0f);
    nd_rng start = g;
    size_t before = nd_mem_live();
    nd_mem_reset_peak();
    nd_tensor *y = nd_dropout(x, 0.25f, true, &g);
    /* drawn and applied as it goes: nothing but y is allocated */
    ck_assert_uint_le(nd_mem_peak() - before, 10000 * sizeof(float) + 1024);
    ck_assert_uint_eq(g.offset, 10000);
    int64_t zeros = 0;
    /* each assignment rounds to float, as the library's steps do, also
     * where float expressions are evaluated wider (FLT_EVAL_METHOD > 0) */
    const float scale = 1.0f / 0.75f;
    const float kept = 2.0f * scale;
    for (int64_t i = 0; i < 10000; i++) {
        float v = nd_data(y)[i];
        ck_assert_msg(v == 0.0f || v == kept, "value %g", v);
        zeros += v == 0.0f;
        /* element i is dropped exactly when its uniform draw is below p */
        ck_assert_int_eq(v == 0.0f, nd_rand_at(5, 3, (uint64_t)i) < 0.25f);
    }
    ck_assert_msg(zeros > 2300 && zeros < 2700, "%lld zeros of 10000", (long long)zeros);
    /* replaying from the same rng state gives the same mask */
    nd_tensor *y2 = nd_dropout(x, 0.25f, true, &start);
    ck_assert(memcmp(nd_data(y), nd_data(y2), 10000 * sizeof(float)) == 0);
    /* eval mode and p = 0 are the identity; p = 1 zeroes everything */
    ck_assert(nd_allclose(nd_dropout(x, 0.25f, false, NULL), x, 0, 0, false));
    ck_assert(nd_allclose(nd_dropout(x, 0.0f, true, &g), x, 0, 0, false));
    ck_assert(nd_allclose(nd_dropout(x, 1.0f, true, &g), nd_zeros_like(x), 0, 0, false));
    EXPECT_FATAL(nd_dropout(x, 1.5f, true, &g), "nanodiff: dropout: p = 1.5 is not in [0, 1]");
}
END_TEST

START_TEST(layer_misuse_stops) {
    nd_rng g = nd_rng_init(0, 0);
    nd_tensor *x = nd_zeros(ND_SHAPE(2, 6, 3, 3));
    EXPECT_FATAL(nd_group_norm(x, 4, NULL, NULL, 1e-5f),
                 "nanodiff: group_norm: 4 groups do not divide the 6 channels of [2,6,3,3]");
    nd_tensor *gamma = nd_ones(ND_SHAPE(5)), *beta = nd_zeros(ND_SHAPE(5));
    EXPECT_FATAL(nd_group_norm(x, 3, gamma, beta, 1e-5f),
                 "nanodiff: group_norm: gamma has shape [5]; want [6] for input [2,6,3,3]");
    EXPECT_FATAL(nd_group_norm(x, 3, gamma, NULL, 1e-5f),
                 "nanodiff: group_norm: give both gamma and beta, or neither");
    EXPECT_FATAL(nd_linear(x, nd_zeros(ND_SHAPE(4, 5)), NULL),
                 "nanodiff: linear: input [2,6,3,3] does not fit weight [4,5] (want "
                 "[..., in] and [out, in])");
    EXPECT_FATAL(nd_timestep_embedding(x, 8),
                 "nanodiff: timestep_embedding: timesteps [2,6,3,3] are not 1-d [N]");
    EXPECT_FATAL(nd_upsample_nearest2x(gamma),
                 "nanodiff: upsample_nearest2x: input [5] is not [N, C, H, W]");
    EXPECT_FATAL(nd_attention_new(6, 4, 2, &g),
                 "nanodiff: attention_new: 4 heads do not divide 6 channels");
    nd_attention_layer *a = nd_attention_new(4, 1, 2, &g);
    EXPECT_FATAL(nd_attention_forward(a, x),
                 "nanodiff: attention: layer for 4 channels got input [2,6,3,3]");
    nd_module_free(&a->base);
}
END_TEST

TCase *tcase_layers(void) {
    TCase *tc = nd_test_case("layers");
    tcase_add_test(tc, linear_matches_torch);
    tcase_add_test(tc, conv2d_matches_torch_for_every_padding);
    tcase_add_test(tc, group_norm_matches_torch);
    tcase_add_test(tc, attention_matches_torch);
    tcase_add_test(tc, timestep_embedding_matches_torch);
    tcase_add_test(tc, resblock_matches_torch);
    tcase_add_test(tc, resampling_matches_torch);
    tcase_add_test(tc, dropout_masks_and_scales);
    tcase_add_test(tc, layer_misuse_stops);
    return tc;
}
