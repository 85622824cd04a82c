/* Checkpoints: a model, AdamW, EMA and rng round-trip bit for bit, and
 * training resumed from a checkpoint takes exactly the steps the original
 * run takes; the file is a plain safetensors file with the model's names;
 * every defect of a file is refused with its own message and leaves the
 * model, optimizer, EMA and rng as they were; a file written on x86-64
 * loads to the same values and saves to the same bytes on every target. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint_x86_64.h"
#include "helpers.h"
#include "nn/nn.h"

static char dir[300];
static char paths[4][400];

static const char *in_dir(const char *name) {
    static int k;
    char *p = paths[k++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    return p;
}

static void make_dir(void) {
    t_dir_make(dir, sizeof dir, "nd-checkpoint");
}

static void remove_dir(const char *const *names, int n) {
    for (int i = 0; i < n; i++) unlink(in_dir(names[i]));
    ck_assert_int_eq(rmdir(dir), 0);
}

/* A small conv net with every kind of parameter the UNet has:
 * conv -> GroupNorm -> swish -> conv -> mean, a Linear on the side. */
typedef struct {
    nd_module base;
    nd_conv2d_layer *conv_in, *conv_out;
    nd_group_norm_layer *norm;
    nd_linear_layer *head;
} net;
static void net_destroy(nd_module *m) { nd_dealloc(m, sizeof(net)); }

static net *net_new(uint64_t seed) {
    nd_rng g = nd_rng_init(seed, 0);
    net *n = nd_alloc(sizeof *n);
    nd_module_init(&n->base, "Net", net_destroy);
    n->conv_in = nd_conv2d_new(2, 4, 3, 3, nd_conv2d_same(3), true, &g);
    nd_module_child(&n->base, "conv_in", &n->conv_in->base);
    n->norm = nd_group_norm_new(2, 4, 1e-6f, true);
    nd_module_child(&n->base, "norm", &n->norm->base);
    n->conv_out = nd_conv2d_new(4, 2, 3, 3, nd_conv2d_same(3), true, &g);
    nd_module_child(&n->base, "conv_out", &n->conv_out->base);
    n->head = nd_linear_new(2, 3, true, &g);
    nd_module_child(&n->base, "head", &n->head->base);
    return n;
}

/* One step of regression on data drawn from rng: the rng's offset moves,
 * so a resumed run must restore it to see the same batches. */
static void train_step(net *n, nd_optimizer *opt, nd_ema *ema, nd_rng *rng) {
    nd_scope *s = nd_scope_begin();
    nd_tensor *x = nd_randn(rng, ND_SHAPE(3, 2, 4, 4));
    nd_tensor *h = nd_conv2d_forward(n->conv_in, x);
    h = nd_conv2d_forward(n->conv_out, nd_silu(nd_group_norm_forward(n->norm, h)));
    nd_tensor *y = nd_linear_forward(n->head, nd_mean(h, ND_AXES(2, 3), false));
    nd_tensor *loss = nd_mean(nd_square(nd_sub(y, nd_full(ND_SHAPE(3, 3), 0.5f))), NULL,
                              0, false);
    nd_backward(loss);
    nd_clip_grad_norm(&n->base, 1.0);
    nd_optimizer_step(opt);
    nd_optimizer_zero_grad(opt);
    nd_ema_update(ema);
    nd_scope_end(s);
}

typedef struct {
    net *n;
    nd_optimizer *opt;
    nd_ema *ema;
    nd_rng rng;
} run;

static run run_new(uint64_t seed) {
    run r;
    r.n = net_new(seed);
    nd_optim_config c = nd_optim_defaults(ND_ADAMW);
    c.warmup_steps = 10;
    r.opt = nd_optimizer_new(&r.n->base, c);
    r.ema = nd_ema_new(&r.n->base, 0.9);
    r.rng = nd_rng_init(seed * 7, 3);
    return r;
}

static void run_free(run *r) {
    nd_ema_free(r->ema);
    nd_optimizer_free(r->opt);
    nd_module_free(&r->n->base);
}

static nd_checkpoint checkpoint_of(run *r, int64_t step) {
    return (nd_checkpoint){.model = &r->n->base, .optimizer = r->opt, .ema = r->ema,
                           .rng = &r->rng, .step = step};
}

static bool same_bits(const nd_tensor *a, const nd_tensor *b) {
    return nd_same_shape(a, b) &&
           memcmp(nd_data(a), nd_data(b), (size_t)nd_numel(a) * sizeof(float)) == 0;
}

/* Every parameter, optimizer state tensor and average of a and b agree
 * to the bit. */
static void assert_same_state(const run *a, const run *b) {
    nd_param_list la[3] = {nd_parameters(&a->n->base), nd_optimizer_state(a->opt),
                           nd_ema_state(a->ema)};
    nd_param_list lb[3] = {nd_parameters(&b->n->base), nd_optimizer_state(b->opt),
                           nd_ema_state(b->ema)};
    for (int l = 0; l < 3; l++) {
        ck_assert_int_eq(la[l].n, lb[l].n);
        for (int i = 0; i < la[l].n; i++) {
            ck_assert_str_eq(la[l].items[i].name, lb[l].items[i].name);
            ck_assert_msg(same_bits(la[l].items[i].value, lb[l].items[i].value),
                          "list %d: %s differs", l, la[l].items[i].name);
        }
        nd_param_list_free(&la[l]);
        nd_param_list_free(&lb[l]);
    }
    ck_assert_int_eq(nd_optimizer_steps(a->opt), nd_optimizer_steps(b->opt));
    ck_assert_int_eq(nd_ema_updates(a->ema), nd_ema_updates(b->ema));
    ck_assert(a->rng.seed == b->rng.seed && a->rng.stream == b->rng.stream &&
              a->rng.offset == b->rng.offset);
}

START_TEST(round_trip_and_resume_bit_exact) {
    make_dir();
    run a = run_new(1);
    for (int i = 0; i < 3; i++) train_step(a.n, a.opt, a.ema, &a.rng);
    nd_checkpoint ck = checkpoint_of(&a, 3);
    ck.config = "{\"ch\": 4, \"note\": \"caf\xc3\xa9\"}";
    nd_error err;
    ck_assert_int_eq(nd_checkpoint_save(in_dir("a.safetensors"), &ck, &err), ND_OK);

    run b = run_new(2); /* other weights, other rng */
    char config[64];
    nd_checkpoint cb = checkpoint_of(&b, 0);
    cb.config_out = config;
    cb.config_out_size = sizeof config;
    ck_assert_msg(nd_checkpoint_load(in_dir("a.safetensors"), &cb, &err) == ND_OK, "%s",
                  err.message);
    ck_assert_int_eq(cb.step, 3);
    ck_assert_str_eq(config, ck.config);
    assert_same_state(&a, &b);
    /* resumed training is the same training */
    for (int i = 0; i < 4; i++) {
        train_step(a.n, a.opt, a.ema, &a.rng);
        train_step(b.n, b.opt, b.ema, &b.rng);
    }
    assert_same_state(&a, &b);
    run_free(&a);
    run_free(&b);
    remove_dir((const char *[]){"a.safetensors"}, 1);
}
END_TEST

START_TEST(file_is_a_state_dict) {
    make_dir();
    run a = run_new(1);
    train_step(a.n, a.opt, a.ema, &a.rng);
    nd_checkpoint ck = checkpoint_of(&a, 1);
    nd_error err;
    ck_assert_int_eq(nd_checkpoint_save(in_dir("a.safetensors"), &ck, &err), ND_OK);
    nd_safetensors st;
    ck_assert_int_eq(nd_safetensors_load(in_dir("a.safetensors"), &st, &err), ND_OK);
    /* 8 parameters, 16 AdamW moments, 8 averages */
    ck_assert_int_eq(st.n, 32);
    ck_assert(same_bits(nd_safetensors_get(&st, "conv_in.weight"), a.n->conv_in->weight));
    ck_assert(same_bits(nd_safetensors_get(&st, "norm.bias"), a.n->norm->bias));
    ck_assert_ptr_nonnull(nd_safetensors_get(&st, "optimizer.head.weight.exp_avg"));
    ck_assert_ptr_nonnull(nd_safetensors_get(&st, "optimizer.head.weight.exp_avg_sq"));
    ck_assert_ptr_nonnull(nd_safetensors_get(&st, "ema.head.bias"));
    ck_assert_str_eq(nd_safetensors_meta(&st, "format"), "nanodiff checkpoint 1");
    ck_assert_str_eq(nd_safetensors_meta(&st, "optimizer.kind"), "adamw");
    ck_assert_str_eq(nd_safetensors_meta(&st, "optimizer.steps"), "1");
    ck_assert_str_eq(nd_safetensors_meta(&st, "ema.decay"), "0.9");
    ck_assert_str_eq(nd_safetensors_meta(&st, "rng.seed"), "7");
    ck_assert_str_eq(nd_safetensors_meta(&st, "rng.stream"), "3");
    ck_assert_str_eq(nd_safetensors_meta(&st, "rng.offset"), "96");
    nd_safetensors_free(&st);

    /* the weights alone load into a bare model (the rest is left over) */
    net *bare = net_new(5);
    nd_checkpoint cb = {.model = &bare->base};
    ck_assert_int_eq(nd_checkpoint_load(in_dir("a.safetensors"), &cb, &err), ND_OK);
    ck_assert(same_bits(bare->head->weight, a.n->head->weight));
    ck_assert_int_eq(cb.step, 1);
    nd_module_free(&bare->base);
    run_free(&a);
    remove_dir((const char *[]){"a.safetensors"}, 1);
}
END_TEST

/* A checkpoint of `a` with one thing changed: tensors renamed, dropped,
 * added or reshaped, or metadata replaced. */
typedef struct {
    const char *drop;               /* a tensor left out */
    const char *rename_from, *rename_to;
    bool add_extra;                 /* one tensor no member owns */
    const char *reshape;            /* saved flattened */
    const char *meta_key, *meta_value; /* replaced, or removed if value NULL */
} defect;

static void write_defective(const run *a, const char *path, const defect *d) {
    nd_checkpoint ck = checkpoint_of((run *)a, 3);
    nd_error err;
    ck_assert_int_eq(nd_checkpoint_save(path, &ck, &err), ND_OK);
    nd_safetensors st;
    ck_assert_int_eq(nd_safetensors_load(path, &st, &err), ND_OK);
    const char *names[64];
    const nd_tensor *ts[64];
    int n = 0;
    for (int i = 0; i < st.n; i++) {
        const char *name = st.names[i];
        if (d->drop && strcmp(name, d->drop) == 0) continue;
        names[n] = d->rename_from && strcmp(name, d->rename_from) == 0 ? d->rename_to : name;
        ts[n++] = d->reshape && strcmp(name, d->reshape) == 0 ? nd_flatten(st.tensors[i])
                                                              : st.tensors[i];
    }
    if (d->add_extra) {
        names[n] = "mystery.weight";
        ts[n++] = nd_zeros(ND_SHAPE(2));
    }
    const char *keys[32], *vals[32];
    int m = 0;
    for (int i = 0; i < st.nmeta; i++) {
        keys[m] = st.meta_keys[i];
        vals[m] = st.meta_values[i];
        if (d->meta_key && strcmp(keys[m], d->meta_key) == 0) {
            if (!d->meta_value) continue;
            vals[m] = d->meta_value;
        }
        m++;
    }
    ck_assert_int_eq(nd_safetensors_save(path, names, ts, n, keys, vals, m, &err), ND_OK);
    nd_safetensors_free(&st);
}

START_TEST(every_defect_is_refused_and_nothing_changes) {
    make_dir();
    run a = run_new(1);
    for (int i = 0; i < 3; i++) train_step(a.n, a.opt, a.ema, &a.rng);
    const char *p = in_dir("bad.safetensors");
    struct {
        defect d;
        const char *message; /* after "<path>: " */
    } cases[] = {
        {{.drop = "norm.weight"}, "no tensor \"norm.weight\" (shape [4]) in the file"},
        {{.rename_from = "head.bias", .rename_to = "head.b"},
         "no tensor \"head.bias\" (shape [3]) in the file"},
        {{.reshape = "conv_in.weight"},
         "tensor \"conv_in.weight\" has shape [72] in the file, the model wants [4,2,3,3]"},
        {{.reshape = "optimizer.conv_out.weight.exp_avg_sq"},
         "tensor \"optimizer.conv_out.weight.exp_avg_sq\" has shape [72] in the file, "
         "the optimizer wants [2,4,3,3]"},
        {{.add_extra = true}, "tensor \"mystery.weight\" in the file is not a parameter "
                              "of the model"},
        {{.drop = "ema.conv_out.bias"}, "no tensor \"ema.conv_out.bias\" (shape [2]) in the "
                                        "file"},
        {{.meta_key = "format", .meta_value = "something else"},
         "format \"something else\" is not \"nanodiff checkpoint 1\""},
        {{.meta_key = "step", .meta_value = "-4"},
         "metadata \"step\" is \"-4\", not a whole number up to 9223372036854775807"},
        {{.meta_key = "optimizer.kind", .meta_value = "sgd"},
         "the file holds the state of a \"sgd\" optimizer, not \"adamw\""},
        {{.meta_key = "optimizer.kind"}, "no optimizer state in the file"},
        {{.meta_key = "optimizer.steps", .meta_value = "3x"},
         "metadata \"optimizer.steps\" is \"3x\", not a whole number up to "
         "9223372036854775807"},
        {{.meta_key = "ema.decay", .meta_value = "0.99"},
         "the file's EMA has decay 0.99, this one 0.9"},
        {{.meta_key = "ema.decay", .meta_value = "0.9x"},
         "the file's EMA has decay 0.9x, this one 0.9"},
        {{.meta_key = "ema.decay"}, "no EMA in the file"},
        {{.meta_key = "rng.stream", .meta_value = "4294967296"},
         "metadata \"rng.stream\" is \"4294967296\", not a whole number up to 4294967295"},
        {{.meta_key = "rng.offset"}, "no \"rng.offset\" in the metadata"},
        /* one rule for every integer: digits as the saver writes them */
        {{.meta_key = "step", .meta_value = "+5"},
         "metadata \"step\" is \"+5\", not a whole number up to 9223372036854775807"},
        {{.meta_key = "step", .meta_value = " 5"},
         "metadata \"step\" is \" 5\", not a whole number up to 9223372036854775807"},
        {{.meta_key = "step", .meta_value = "\t5"},
         "metadata \"step\" is \"\t5\", not a whole number up to 9223372036854775807"},
        {{.meta_key = "optimizer.steps", .meta_value = "\n5"},
         "metadata \"optimizer.steps\" is \"\n5\", not a whole number up to "
         "9223372036854775807"},
        {{.meta_key = "rng.offset", .meta_value = "007"},
         "metadata \"rng.offset\" is \"007\", not a whole number up to "
         "18446744073709551615"},
        {{.meta_key = "rng.seed", .meta_value = "18446744073709551616"},
         "metadata \"rng.seed\" is \"18446744073709551616\", not a whole number up to "
         "18446744073709551615"},
        {{.meta_key = "step", .meta_value = "5 "},
         "metadata \"step\" is \"5 \", not a whole number up to 9223372036854775807"},
    };
    run b = run_new(2);
    run before = run_new(2); /* b as it was, to compare with after each refusal */
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        nd_scope *s = nd_scope_begin();
        write_defective(&a, p, &cases[i].d);
        nd_checkpoint cb = checkpoint_of(&b, 0);
        nd_error err;
        ck_assert_int_eq(nd_checkpoint_load(p, &cb, &err), ND_ERR);
        char want[512];
        snprintf(want, sizeof want, "%s: %s", p, cases[i].message);
        ck_assert_str_eq(err.message, want);
        assert_same_state(&b, &before);
        nd_scope_end(s);
    }
    /* files from before the decay was a double hold its float value */
    {
        nd_scope *s = nd_scope_begin();
        defect old_decay = {.meta_key = "ema.decay", .meta_value = "0.899999976"};
        write_defective(&a, p, &old_decay);
        run c = run_new(2);
        nd_checkpoint cc = checkpoint_of(&c, 0);
        nd_error err;
        ck_assert_msg(nd_checkpoint_load(p, &cc, &err) == ND_OK, "%s", err.message);
        run_free(&c);
        nd_scope_end(s);
    }
    /* a broken file is refused by the safetensors reader with its message */
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("garbage", f);
    fclose(f);
    nd_checkpoint cb = checkpoint_of(&b, 0);
    nd_error err;
    ck_assert_int_eq(nd_checkpoint_load(p, &cb, &err), ND_ERR);
    char want[512];
    snprintf(want, sizeof want, "%s: the file is 7 bytes, too short for the 8-byte header "
             "length", p);
    ck_assert_str_eq(err.message, want);
    ck_assert_int_eq(nd_checkpoint_load(in_dir("missing.safetensors"), &cb, &err), ND_ERR);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory",
             in_dir("missing.safetensors"));
    ck_assert_str_eq(err.message, want);
    assert_same_state(&b, &before);
    run_free(&a);
    run_free(&b);
    run_free(&before);
    remove_dir((const char *[]){"bad.safetensors"}, 1);
}
END_TEST

START_TEST(failed_save_keeps_the_old_file) {
    make_dir();
    run a = run_new(1);
    nd_checkpoint ck = checkpoint_of(&a, 0);
    nd_error err;
    ck_assert_int_eq(nd_checkpoint_save(in_dir("nodir/a.safetensors"), &ck, &err), ND_ERR);
    ck_assert_msg(strstr(err.message, "cannot create a temporary file beside it"), "%s",
                  err.message);
    run_free(&a);
    remove_dir(NULL, 0);
}
END_TEST

/* ---- a file from another byte order ------------------------------------ *
 * Checkpoints are little-endian on disk whatever the host. The bytes below
 * are what nd_checkpoint_save wrote on x86-64 for the state that
 * fill_portable sets: a Linear 2 -> 3 with bias, AdamW's moments, the EMA
 * and an rng whose numbers need 64 bits. No float reads the same in both
 * byte orders (check_tensor asserts it), so a value read or written in the
 * host's order on a big-endian machine (s390x) cannot pass for the right
 * one. */
/* The bits of element i of the k-th tensor of the checkpoint: normal
 * floats of either sign, 0.125 <= |x| < 2, with scrambled low bytes. */
static uint32_t portable_bits(int k, int64_t i) {
    uint32_t mix = (uint32_t)(k * 131 + i * 17 + 1) * 2654435761u;
    return ((uint32_t)((k + i) & 1) << 31) | 0x3e000000u | (mix & 0x01ffffffu);
}

typedef struct {
    nd_linear_layer *lin;
    nd_optimizer *opt;
    nd_ema *ema;
    nd_rng rng;
} portable;

static portable portable_new(void) {
    portable p;
    nd_rng g = nd_rng_init(0, 0);
    p.lin = nd_linear_new(2, 3, true, &g);
    p.opt = nd_optimizer_new(&p.lin->base, nd_optim_defaults(ND_ADAMW));
    p.ema = nd_ema_new(&p.lin->base, 0.999);
    p.rng = nd_rng_init(0, 0);
    return p;
}

static void portable_free(portable *p) {
    nd_ema_free(p->ema);
    nd_optimizer_free(p->opt);
    nd_module_free(&p->lin->base);
}

/* Calls f on each tensor of the checkpoint, in the order of the file:
 * parameters, optimizer state, averages. */
static void portable_each(const portable *p, void (*f)(int k, nd_tensor *t)) {
    nd_param_list l[3] = {nd_parameters(&p->lin->base), nd_optimizer_state(p->opt),
                          nd_ema_state(p->ema)};
    int k = 0;
    for (int j = 0; j < 3; j++) {
        for (int i = 0; i < l[j].n; i++) f(k++, l[j].items[i].value);
        nd_param_list_free(&l[j]);
    }
    ck_assert_int_eq(k, 8); /* 2 parameters, 4 moments, 2 averages */
}

static void fill_tensor(int k, nd_tensor *t) {
    for (int64_t i = 0; i < nd_numel(t); i++) {
        uint32_t u = portable_bits(k, i);
        memcpy(nd_data(t) + i, &u, sizeof u);
    }
}

static void check_tensor(int k, nd_tensor *t) {
    for (int64_t i = 0; i < nd_numel(t); i++) {
        uint32_t u, want = portable_bits(k, i);
        uint32_t swapped = want >> 24 | (want >> 8 & 0xff00u) | (want << 8 & 0xff0000u) | want << 24;
        ck_assert_uint_ne(want, swapped);
        memcpy(&u, nd_data(t) + i, sizeof u);
        ck_assert_msg(u == want, "tensor %d, element %lld: bits 0x%08x, expected 0x%08x", k,
                      (long long)i, u, want);
    }
}

#define PORTABLE_SEED 0x0123456789abcdefull
#define PORTABLE_OFFSET 0xfedcba9876543210ull

static nd_checkpoint portable_checkpoint(portable *p) {
    return (nd_checkpoint){.model = &p->lin->base, .optimizer = p->opt, .ema = p->ema,
                           .rng = &p->rng, .step = 1234567890123, .config = "x86-64"};
}

static void fill_portable(portable *p) {
    portable_each(p, fill_tensor);
    nd_optimizer_set_steps(p->opt, 77);
    nd_ema_set_updates(p->ema, 76);
    p->rng = nd_rng_init(PORTABLE_SEED, 0xdeadbeefu);
    p->rng.offset = PORTABLE_OFFSET;
}

/* The file's bytes equal the x86-64 ones. */
static void assert_x86_64_bytes(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char got[sizeof checkpoint_x86_64 + 1];
    size_t n = fread(got, 1, sizeof got, f);
    fclose(f);
    ck_assert_uint_eq(n, sizeof checkpoint_x86_64);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == checkpoint_x86_64[i], "byte %zu is 0x%02x, x86-64 wrote 0x%02x",
                      i, got[i], checkpoint_x86_64[i]);
}

START_TEST(x86_64_checkpoint_loads_and_saves_the_same_bytes) {
    make_dir();
    FILE *f = fopen(in_dir("x86_64.safetensors"), "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(checkpoint_x86_64, 1, sizeof checkpoint_x86_64, f),
                      sizeof checkpoint_x86_64);
    ck_assert_int_eq(fclose(f), 0);

    /* loaded here, every value and number is the one x86-64 saved */
    portable p = portable_new();
    char config[16];
    nd_checkpoint ck = portable_checkpoint(&p);
    ck.config_out = config;
    ck.config_out_size = sizeof config;
    nd_error err;
    ck_assert_msg(nd_checkpoint_load(in_dir("x86_64.safetensors"), &ck, &err) == ND_OK, "%s",
                  err.message);
    portable_each(&p, check_tensor);
    ck_assert(ck.step == 1234567890123);
    ck_assert_str_eq(config, "x86-64");
    ck_assert_int_eq(nd_optimizer_steps(p.opt), 77);
    ck_assert_int_eq(nd_ema_updates(p.ema), 76);
    ck_assert(nd_ema_decay(p.ema) == 0.999);
    ck_assert(p.rng.seed == PORTABLE_SEED && p.rng.stream == 0xdeadbeefu &&
              p.rng.offset == PORTABLE_OFFSET);

    /* saved again here, the bytes are x86-64's */
    ck = portable_checkpoint(&p);
    ck_assert_int_eq(nd_checkpoint_save(in_dir("again.safetensors"), &ck, &err), ND_OK);
    assert_x86_64_bytes(in_dir("again.safetensors"));
    portable_free(&p);

    /* and so are those of the same state built here */
    portable q = portable_new();
    fill_portable(&q);
    ck = portable_checkpoint(&q);
    ck_assert_int_eq(nd_checkpoint_save(in_dir("built.safetensors"), &ck, &err), ND_OK);
    assert_x86_64_bytes(in_dir("built.safetensors"));
    portable_free(&q);
    remove_dir((const char *[]){"x86_64.safetensors", "again.safetensors",
                                "built.safetensors"},
               3);
}
END_TEST

TCase *tcase_checkpoint(void) {
    TCase *tc = nd_test_case("checkpoint");
    tcase_add_test(tc, round_trip_and_resume_bit_exact);
    tcase_add_test(tc, file_is_a_state_dict);
    tcase_add_test(tc, every_defect_is_refused_and_nothing_changes);
    tcase_add_test(tc, failed_save_keeps_the_old_file);
    tcase_add_test(tc, x86_64_checkpoint_loads_and_saves_the_same_bytes);
    return tc;
}
