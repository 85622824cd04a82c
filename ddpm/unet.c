/* The DDPM UNet (Ho et al. 2020, section 3.4 and appendix B): a PixelCNN++
 * style UNet of wide ResNet blocks with GroupNorm, the timestep added to
 * every block, and self-attention at the listed resolutions.
 *
 *   temb = dense_1(swish(dense_0(sinusoid(t))))                [N, 4ch]
 *   h = conv_in(x); skips = [h]
 *   down, level l = 0..L-1 at resolution res / 2^l:
 *     num_res_blocks x { h = block(h, temb); h = attn(h) if listed; push h }
 *     then, but at the last level, h = downsample(h); push h
 *   mid: h = block_2(attn_1(block_1(h)))
 *   up, level l = L-1..0:
 *     num_res_blocks + 1 x { h = block(concat(h, pop), temb); h = attn(h) if listed }
 *     then, but at level 0, h = upsample(h)
 *   eps = conv_out(swish(norm_out(h)))
 *
 * Names follow the PyTorch port of the official checkpoints
 * (down.<l>.block.<j>.conv1.weight, mid.attn_1.q.bias, ...), with <l> the
 * resolution level on both paths. */
#include <math.h>
#include <string.h>

#include "ddpm.h"

#define MAX_BLOCKS 8 /* num_res_blocks + 1 blocks per up level at most */

typedef struct {
    nd_resblock_layer *block[MAX_BLOCKS + 1];
    nd_attention_layer *attn[MAX_BLOCKS + 1]; /* NULL at levels without */
    nd_downsample_layer *downsample;          /* NULL at the last level */
    nd_upsample_layer *upsample;              /* NULL at level 0 */
} level;

struct nd_unet {
    nd_module base;
    nd_unet_config c;
    nd_linear_layer *temb_dense[2];
    nd_conv2d_layer *conv_in, *conv_out;
    level down[ND_UNET_MAX_LEVELS], up[ND_UNET_MAX_LEVELS];
    nd_resblock_layer *mid_block_1, *mid_block_2;
    nd_attention_layer *mid_attn_1;
    nd_group_norm_layer *norm_out;
    nd_embedding_layer *label_emb; /* num_classes + 1 rows of 4 ch, or NULL */
};

/* ---- configurations ---------------------------------------------------- */

int nd_unet_config_named(const char *name, nd_unet_config *c, nd_error *err) {
    if (!name || !c) return nd_error_set(err, "unet: no configuration name");
    memset(c, 0, sizeof *c);
    if (!strcmp(name, "cifar10")) {
        *c = (nd_unet_config){.in_channels = 3, .out_channels = 3, .resolution = 32,
                              .ch = 128, .levels = 4, .ch_mult = {1, 2, 2, 2},
                              .num_res_blocks = 2, .nattn = 1, .attn_resolutions = {16},
                              .dropout = 0.1f, .groups = 32};
    } else if (!strcmp(name, "small")) {
        *c = (nd_unet_config){.in_channels = 1, .out_channels = 1, .resolution = 32,
                              .ch = 32, .levels = 3, .ch_mult = {1, 2, 2},
                              .num_res_blocks = 2, .nattn = 1, .attn_resolutions = {16},
                              .dropout = 0.1f, .groups = 8};
    } else if (!strcmp(name, "tiny")) {
        *c = (nd_unet_config){.in_channels = 1, .out_channels = 1, .resolution = 8,
                              .ch = 8, .levels = 2, .ch_mult = {1, 2},
                              .num_res_blocks = 1, .nattn = 1, .attn_resolutions = {4},
                              .dropout = 0.0f, .groups = 4};
    } else {
        return nd_error_set(err, "unet: no configuration named '%s' (cifar10, small, tiny)",
                            name);
    }
    return ND_OK;
}

int nd_unet_config_check(const nd_unet_config *c, nd_error *err) {
    if (!c) return nd_error_set(err, "unet: no configuration");
    if (c->in_channels < 1 || c->out_channels < 1 || c->ch < 1 || c->resolution < 1)
        return nd_error_set(err, "unet: channels (in %lld, out %lld, ch %lld) and resolution "
                            "%lld must be positive", (long long)c->in_channels,
                            (long long)c->out_channels, (long long)c->ch,
                            (long long)c->resolution);
    if (c->levels < 1 || c->levels > ND_UNET_MAX_LEVELS)
        return nd_error_set(err, "unet: %d levels in ch_mult, need 1..%d", c->levels,
                            ND_UNET_MAX_LEVELS);
    if (c->num_res_blocks < 1 || c->num_res_blocks > MAX_BLOCKS)
        return nd_error_set(err, "unet: num_res_blocks %lld is not in 1..%d",
                            (long long)c->num_res_blocks, MAX_BLOCKS);
    if (c->nattn < 0 || c->nattn > ND_UNET_MAX_LEVELS)
        return nd_error_set(err, "unet: %d attention resolutions, at most %d", c->nattn,
                            ND_UNET_MAX_LEVELS);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return nd_error_set(err, "unet: dropout %g is not in [0, 1)", c->dropout);
    if (c->groups < 1) return nd_error_set(err, "unet: %lld groups", (long long)c->groups);
    if (c->num_classes < 0 || c->num_classes > (1 << 20))
        return nd_error_set(err, "unet: %lld classes", (long long)c->num_classes);
    if (c->ch % c->groups)
        return nd_error_set(err, "unet: %lld groups do not divide ch %lld",
                            (long long)c->groups, (long long)c->ch);
    for (int l = 0; l < c->levels; l++) {
        if (c->ch_mult[l] < 1)
            return nd_error_set(err, "unet: ch_mult[%d] = %lld is not positive", l,
                                (long long)c->ch_mult[l]);
        if (c->ch * c->ch_mult[l] % c->groups)
            return nd_error_set(err, "unet: %lld groups do not divide the %lld channels of "
                                "level %d", (long long)c->groups,
                                (long long)(c->ch * c->ch_mult[l]), l);
    }
    int64_t halvings = c->levels - 1;
    if (halvings >= 62 || c->resolution % ((int64_t)1 << halvings))
        return nd_error_set(err, "unet: resolution %lld does not halve evenly %lld times",
                            (long long)c->resolution, (long long)halvings);
    return ND_OK;
}

/* ---- construction ------------------------------------------------------ */

static bool attn_at(const nd_unet_config *c, int64_t res) {
    for (int k = 0; k < c->nattn; k++)
        if (c->attn_resolutions[k] == res) return true;
    return false;
}

static void destroy(nd_module *m) { nd_dealloc(m, sizeof(nd_unet)); }

/* DDPM's initialisation: variance_scaling(1, fan_avg, uniform) on every
 * dense and conv weight (the class embedding's too), zero biases, and
 * scale 0 (1e-10) on the last conv of each residual branch (conv2,
 * proj_out) and on conv_out, so that each block starts as the identity
 * and the network as eps = 0. */
static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static void ddpm_init_module(void *rng, const char *name, nd_module *m) {
    if (strcmp(m->type, "Conv2d") && strcmp(m->type, "Linear") && strcmp(m->type, "Embedding"))
        return;
    bool zero = ends_with(name, "conv2") || ends_with(name, "proj_out") ||
                !strcmp(name, "conv_out");
    nd_init_variance_scaling_(nd_module_param_get(m, "weight"), nd_module_param_get(m, "bias"),
                              zero ? 0.0f : 1.0f, rng);
}

nd_unet *nd_unet_new(const nd_unet_config *c, nd_rng *rng) {
    nd_error err;
    if (nd_unet_config_check(c, &err) != ND_OK) nd_fatal("unet_new", "%s", err.message);
    if (!rng) nd_fatal("unet_new", "rng is NULL");
    nd_unet *u = nd_alloc(sizeof *u);
    memset(u, 0, sizeof *u);
    nd_module_init(&u->base, "UNet", destroy);
    u->c = *c;
    nd_module *b = &u->base;
    int64_t ch = c->ch, temb_ch = 4 * ch, g = c->groups;

    nd_module *temb = nd_module_child(b, "temb", nd_module_new("TimestepEmbedding"));
    nd_module *dense = nd_module_child(temb, "dense", nd_module_new("ModuleList"));
    u->temb_dense[0] = (nd_linear_layer *)nd_module_child_at(
        dense, 0, &nd_linear_new(ch, temb_ch, true, rng)->base);
    u->temb_dense[1] = (nd_linear_layer *)nd_module_child_at(
        dense, 1, &nd_linear_new(temb_ch, temb_ch, true, rng)->base);
    if (c->num_classes > 0) {
        /* Ho and Salimans (2022): a learned vector per class, and one for
         * "no label", added to the time embedding */
        u->label_emb = (nd_embedding_layer *)nd_module_child(
            b, "label_emb", &nd_embedding_new(c->num_classes + 1, temb_ch, rng)->base);
    }
    u->conv_in = (nd_conv2d_layer *)nd_module_child(
        b, "conv_in", &nd_conv2d_new(c->in_channels, ch, 3, 3, nd_conv2d_same(3), true, rng)->base);

    /* the channels of every skip, pushed on the way down, popped going up */
    int64_t skips[1 + ND_UNET_MAX_LEVELS * (MAX_BLOCKS + 1)];
    int nskip = 0;
    skips[nskip++] = ch;
    int64_t cur = ch, res = c->resolution;
    nd_module *down = nd_module_child(b, "down", nd_module_new("ModuleList"));
    for (int l = 0; l < c->levels; l++) {
        level *lv = &u->down[l];
        int64_t out = ch * c->ch_mult[l];
        nd_module *node = nd_module_child_at(down, l, nd_module_new("DownLevel"));
        nd_module *blocks = nd_module_child(node, "block", nd_module_new("ModuleList"));
        nd_module *attns = attn_at(c, res) ? nd_module_child(node, "attn", nd_module_new("ModuleList"))
                                           : NULL;
        for (int j = 0; j < c->num_res_blocks; j++) {
            lv->block[j] = (nd_resblock_layer *)nd_module_child_at(
                blocks, j, &nd_resblock_new(cur, out, temb_ch, g, c->dropout, rng)->base);
            cur = out;
            if (attns)
                lv->attn[j] = (nd_attention_layer *)nd_module_child_at(
                    attns, j, &nd_attention_new(cur, 1, g, rng)->base);
            skips[nskip++] = cur;
        }
        if (l != c->levels - 1) {
            lv->downsample = (nd_downsample_layer *)nd_module_child(
                node, "downsample", &nd_downsample_new(cur, rng)->base);
            skips[nskip++] = cur;
            res /= 2;
        }
    }

    nd_module *mid = nd_module_child(b, "mid", nd_module_new("Mid"));
    u->mid_block_1 = (nd_resblock_layer *)nd_module_child(
        mid, "block_1", &nd_resblock_new(cur, cur, temb_ch, g, c->dropout, rng)->base);
    u->mid_attn_1 = (nd_attention_layer *)nd_module_child(
        mid, "attn_1", &nd_attention_new(cur, 1, g, rng)->base);
    u->mid_block_2 = (nd_resblock_layer *)nd_module_child(
        mid, "block_2", &nd_resblock_new(cur, cur, temb_ch, g, c->dropout, rng)->base);

    /* built from the last level up, as they run; registered as up.0, up.1,
     * ... afterwards, the order of the port's state_dict */
    nd_module *up_nodes[ND_UNET_MAX_LEVELS];
    for (int l = c->levels - 1; l >= 0; l--) {
        level *lv = &u->up[l];
        int64_t out = ch * c->ch_mult[l];
        nd_module *node = up_nodes[l] = nd_module_new("UpLevel");
        nd_module *blocks = nd_module_child(node, "block", nd_module_new("ModuleList"));
        nd_module *attns = attn_at(c, res) ? nd_module_child(node, "attn", nd_module_new("ModuleList"))
                                           : NULL;
        for (int j = 0; j <= c->num_res_blocks; j++) {
            int64_t in = cur + skips[--nskip];
            lv->block[j] = (nd_resblock_layer *)nd_module_child_at(
                blocks, j, &nd_resblock_new(in, out, temb_ch, g, c->dropout, rng)->base);
            cur = out;
            if (attns)
                lv->attn[j] = (nd_attention_layer *)nd_module_child_at(
                    attns, j, &nd_attention_new(cur, 1, g, rng)->base);
        }
        if (l != 0) {
            lv->upsample = (nd_upsample_layer *)nd_module_child(
                node, "upsample", &nd_upsample_new(cur, rng)->base);
            res *= 2;
        }
    }
    nd_module *up = nd_module_child(b, "up", nd_module_new("ModuleList"));
    for (int l = 0; l < c->levels; l++) nd_module_child_at(up, l, up_nodes[l]);

    u->norm_out = (nd_group_norm_layer *)nd_module_child(
        b, "norm_out", &nd_group_norm_new(g, cur, 1e-6f, true)->base);
    u->conv_out = (nd_conv2d_layer *)nd_module_child(
        b, "conv_out",
        &nd_conv2d_new(cur, c->out_channels, 3, 3, nd_conv2d_same(3), true, rng)->base);
    nd_module_apply(b, ddpm_init_module, rng);
    return u;
}

nd_module *nd_unet_module(nd_unet *u) { return u ? &u->base : NULL; }
const nd_unet_config *nd_unet_get_config(const nd_unet *u) { return u ? &u->c : NULL; }

/* ---- forward ----------------------------------------------------------- */

nd_tensor *nd_unet_forward(nd_unet *u, const nd_tensor *x, const nd_tensor *t, nd_rng *rng) {
    return nd_unet_forward_labels(u, x, t, NULL, rng);
}

/* label_emb[label], row K for "no label" (-1) */
static nd_tensor *label_embedding(const nd_unet *u, const nd_tensor *labels, int64_t n) {
    int64_t k = u->c.num_classes;
    nd_tensor *rows = nd_empty(ND_SHAPE(n));
    for (int64_t e = 0; e < n; e++) {
        float y = labels ? nd_get(labels, &e) : -1.0f;
        if (!(y == floorf(y) && y >= -1.0f && y < (float)k))
            nd_fatal("unet", "label[%lld] = %g is not a class in 0..%lld or -1 (none)",
                     (long long)e, y, (long long)(k - 1));
        nd_data(rows)[e] = y < 0 ? (float)k : y;
    }
    return nd_embedding_forward(u->label_emb, rows);
}

/* Each block runs in a scope of its own that keeps only its output: in
 * no-grad mode (sampling) a block's temporaries are freed as it ends, and
 * only the skips stay for the way up, each until it is concatenated; with
 * grad the tape holds what backward reads either way. */
static nd_tensor *block_end(nd_scope *s, nd_tensor *out) {
    nd_keep(out);
    nd_scope_end(s);
    return out;
}

nd_tensor *nd_unet_forward_labels(nd_unet *u, const nd_tensor *x, const nd_tensor *t,
                                  const nd_tensor *labels, nd_rng *rng) {
    if (!u) nd_fatal("unet", "model is NULL");
    const nd_unet_config *c = &u->c;
    char sx[ND_SHAPE_STR_LEN], st[ND_SHAPE_STR_LEN];
    if (!x || !t || x->ndim != 4 || x->shape[1] != c->in_channels ||
        x->shape[2] != c->resolution || x->shape[3] != c->resolution || t->ndim != 1 ||
        t->shape[0] != x->shape[0])
        nd_fatal("unet", "model for [N,%lld,%lld,%lld] and t [N] got x %s and t %s",
                 (long long)c->in_channels, (long long)c->resolution,
                 (long long)c->resolution, x ? nd_shape_str(x->shape, x->ndim, sx) : "NULL",
                 t ? nd_shape_str(t->shape, t->ndim, st) : "NULL");

    nd_tensor *temb = nd_timestep_embedding(t, c->ch);
    temb = nd_linear_forward(u->temb_dense[0], temb);
    temb = nd_linear_forward(u->temb_dense[1], nd_silu(temb));
    if (labels && !u->label_emb) nd_fatal("unet", "labels given to a model without classes");
    if (u->label_emb) temb = nd_add(temb, label_embedding(u, labels, x->shape[0]));

    nd_tensor *skips[1 + ND_UNET_MAX_LEVELS * (MAX_BLOCKS + 1)];
    int nskip = 0;
    nd_tensor *h = skips[nskip++] = nd_conv2d_forward(u->conv_in, x);
    for (int l = 0; l < c->levels; l++) {
        level *lv = &u->down[l];
        for (int j = 0; j < c->num_res_blocks; j++) {
            nd_scope *s = nd_scope_begin();
            h = nd_resblock_forward(lv->block[j], h, temb, rng);
            if (lv->attn[j]) h = nd_attention_forward(lv->attn[j], h);
            skips[nskip++] = h = block_end(s, h);
        }
        if (lv->downsample) h = skips[nskip++] = nd_downsample_forward(lv->downsample, h);
    }

    nd_scope *s = nd_scope_begin();
    h = nd_resblock_forward(u->mid_block_1, h, temb, rng);
    h = nd_attention_forward(u->mid_attn_1, h);
    h = block_end(s, nd_resblock_forward(u->mid_block_2, h, temb, rng));

    for (int l = c->levels - 1; l >= 0; l--) {
        level *lv = &u->up[l];
        for (int j = 0; j <= c->num_res_blocks; j++) {
            s = nd_scope_begin();
            nd_tensor *skip = skips[--nskip];
            nd_tensor *in = nd_concat((const nd_tensor *[]){h, skip}, 2, 1);
            /* their last reader: without grad their memory goes now (with
             * grad the tape holds them for backward) */
            nd_free(h);
            nd_free(skip);
            h = nd_resblock_forward(lv->block[j], in, temb, rng);
            if (lv->attn[j]) h = nd_attention_forward(lv->attn[j], h);
            h = block_end(s, h);
        }
        if (lv->upsample) {
            s = nd_scope_begin();
            h = block_end(s, nd_upsample_forward(lv->upsample, h));
        }
    }
    s = nd_scope_begin();
    h = nd_group_norm_silu_forward(u->norm_out, h);
    return block_end(s, nd_conv2d_forward(u->conv_out, h));
}

static nd_tensor *unet_denoise(void *self, const nd_tensor *x_t, const nd_tensor *t,
                               const nd_tensor *labels, nd_rng *rng) {
    return nd_unet_forward_labels(self, x_t, t, labels, rng);
}

nd_denoiser nd_unet_denoiser(nd_unet *u) {
    if (!u) nd_fatal("unet_denoiser", "model is NULL");
    return (nd_denoiser){.forward = unet_denoise, .self = u, .module = &u->base};
}

/* ---- cost ---------------------------------------------------------------- */

/* multiply-adds of a k x k conv to an s x s output */
static int64_t conv_macs(int64_t cin, int64_t cout, int64_t k, int64_t s) {
    return s * s * cout * cin * k * k;
}

static int64_t block_macs(int64_t in, int64_t out, int64_t temb, int64_t s) {
    return conv_macs(in, out, 3, s) + temb * out + conv_macs(out, out, 3, s) +
           (in != out ? conv_macs(in, out, 1, s) : 0);
}

/* q, k, v and the output projection, then q^T k and v w^T over L = s^2 */
static int64_t attn_macs(int64_t c, int64_t s) {
    int64_t len = s * s;
    return 4 * len * c * c + 2 * len * len * c;
}

int64_t nd_unet_macs(const nd_unet_config *c) {
    nd_error err;
    if (nd_unet_config_check(c, &err) != ND_OK) nd_fatal("unet_macs", "%s", err.message);
    int64_t ch = c->ch, temb = 4 * ch, res = c->resolution, cur = ch;
    int64_t macs = ch * temb + temb * temb + conv_macs(c->in_channels, ch, 3, res) +
                   (c->num_classes > 0 ? (c->num_classes + 1) * temb : 0);
    int64_t skips[1 + ND_UNET_MAX_LEVELS * (MAX_BLOCKS + 1)];
    int nskip = 0;
    skips[nskip++] = ch;
    for (int l = 0; l < c->levels; l++) {
        int64_t out = ch * c->ch_mult[l];
        for (int j = 0; j < c->num_res_blocks; j++) {
            macs += block_macs(cur, out, temb, res);
            cur = out;
            if (attn_at(c, res)) macs += attn_macs(cur, res);
            skips[nskip++] = cur;
        }
        if (l != c->levels - 1) {
            res /= 2;
            macs += conv_macs(cur, cur, 3, res);
            skips[nskip++] = cur;
        }
    }
    macs += 2 * block_macs(cur, cur, temb, res) + attn_macs(cur, res);
    for (int l = c->levels - 1; l >= 0; l--) {
        int64_t out = ch * c->ch_mult[l];
        for (int j = 0; j <= c->num_res_blocks; j++) {
            macs += block_macs(cur + skips[--nskip], out, temb, res);
            cur = out;
            if (attn_at(c, res)) macs += attn_macs(cur, res);
        }
        if (l != 0) {
            res *= 2;
            macs += conv_macs(cur, cur, 3, res);
        }
    }
    return macs + conv_macs(cur, c->out_channels, 3, res);
}
