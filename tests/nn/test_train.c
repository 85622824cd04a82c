/* End to end: a small UNet-like stack (conv, ResnetBlock with a timestep
 * embedding, attention, down and up sampling) learns to map noise to a
 * fixed target with AdamW; the tape, the fused GroupNorm, the optimizer
 * and the scopes work together, and memory does not grow with steps. */
#include "helpers.h"
#include "nn/nn.h"

typedef struct {
    nd_module base;
    nd_conv2d_layer *conv_in, *conv_out;
    nd_resblock_layer *res;
    nd_attention_layer *attn;
    nd_downsample_layer *down;
    nd_upsample_layer *up;
} tiny;
static void tiny_destroy(nd_module *m) { nd_dealloc(m, sizeof(tiny)); }

static tiny *tiny_new(nd_rng *g) {
    tiny *t = nd_alloc(sizeof *t);
    nd_module_init(&t->base, "Tiny", tiny_destroy);
    nd_module *b = &t->base;
    t->conv_in = (nd_conv2d_layer *)nd_module_child(
        b, "conv_in", &nd_conv2d_new(1, 8, 3, 3, nd_conv2d_same(3), true, g)->base);
    t->res = (nd_resblock_layer *)nd_module_child(
        b, "res", &nd_resblock_new(8, 8, 16, 4, 0.0f, g)->base);
    t->down = (nd_downsample_layer *)nd_module_child(b, "down", &nd_downsample_new(8, g)->base);
    t->attn = (nd_attention_layer *)nd_module_child(
        b, "attn", &nd_attention_new(8, 2, 4, g)->base);
    t->up = (nd_upsample_layer *)nd_module_child(b, "up", &nd_upsample_new(8, g)->base);
    t->conv_out = (nd_conv2d_layer *)nd_module_child(
        b, "conv_out", &nd_conv2d_new(8, 1, 3, 3, nd_conv2d_same(3), true, g)->base);
    return t;
}

static nd_tensor *tiny_forward(tiny *t, const nd_tensor *x, const nd_tensor *steps) {
    nd_tensor *temb = nd_timestep_embedding(steps, 16);
    nd_tensor *h = nd_conv2d_forward(t->conv_in, x);
    h = nd_resblock_forward(t->res, h, temb, NULL);
    h = nd_attention_forward(t->attn, nd_downsample_forward(t->down, h));
    h = nd_upsample_forward(t->up, h);
    return nd_conv2d_forward(t->conv_out, nd_silu(h));
}

START_TEST(tiny_unet_fits_a_target) {
    nd_rng g = nd_rng_init(11, 0);
    tiny *t = tiny_new(&g);
    nd_optim_config c = nd_optim_defaults(ND_ADAMW);
    c.lr = 3e-3;
    nd_optimizer *opt = nd_optimizer_new(&t->base, c);
    nd_tensor *x = nd_persist(nd_randn(&g, ND_SHAPE(2, 1, 8, 8)));
    nd_tensor *target = nd_persist(nd_mul_scalar(nd_sin(nd_mul_scalar(x, 2.0f)), 0.5f));
    nd_tensor *steps = nd_persist(nd_from_buffer((const float[]){3, 700}, ND_SHAPE(2)));
    float first = 0, last = 0;
    size_t live_after_first = 0;
    for (int step = 0; step < 150; step++) {
        nd_scope *s = nd_scope_begin();
        nd_tensor *loss = nd_mean(nd_square(nd_sub(tiny_forward(t, x, steps), target)),
                                  NULL, 0, false);
        nd_backward(loss);
        nd_clip_grad_norm(&t->base, 1.0);
        nd_optimizer_step(opt);
        nd_optimizer_zero_grad(opt);
        last = nd_item(loss);
        if (step == 0) first = last;
        nd_scope_end(s);
        if (step == 0) live_after_first = nd_mem_live();
    }
    ck_assert_msg(last < first / 1000, "loss %g -> %g in 150 steps", (double)first, (double)last);
    ck_assert_uint_eq(nd_mem_live(), live_after_first);
    nd_optimizer_free(opt);
    nd_module_free(&t->base);
    nd_free(x);
    nd_free(target);
    nd_free(steps);
}
END_TEST

TCase *tcase_train(void) {
    TCase *tc = nd_test_case("train");
    tcase_add_test(tc, tiny_unet_fits_a_target);
    return tc;
}
