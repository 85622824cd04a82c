/* A run's settings as text in its checkpoint, and the model they build:
 * `nanodiff sample`, `info` and `train --resume` need nothing but the
 * checkpoint file. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_spec_defaults(cli_spec *s, const char *model) {
    memset(s, 0, sizeof *s);
    bool mlp = !strcmp(model, "mlp");
    snprintf(s->model, sizeof s->model, "%s", mlp ? "mlp" : "unet");
    snprintf(s->data, sizeof s->data, "%s", mlp ? "moons" : "shapes");
    s->mlp = nd_mlp_defaults(2);
    snprintf(s->unet_name, sizeof s->unet_name, "small");
    nd_unet_config_named("small", &s->unet, NULL);
    /* The paper's schedule (section 4) for both: points in [-2, 2] are as
     * far from N(0, I) after it as pixels in [-1, 1]. */
    snprintf(s->schedule, sizeof s->schedule, "linear");
    s->T = 1000;
    s->beta_start = 1e-4;
    s->beta_end = 0.02;
    snprintf(s->predicts, sizeof s->predicts, "eps");
    snprintf(s->loss, sizeof s->loss, "mse");
    s->label_drop = 0.1; /* Ho and Salimans 2022 */
    s->steps = 10000;
    s->clip = 1.0;
    s->seed = 0;
    if (mlp) { /* small, fast steps: a larger lr, a shorter EMA window */
        s->batch = 256;
        s->lr = 1e-3;
        s->warmup = 100;
        s->ema = 0.995;
        s->flip = false;
    } else { /* the paper's lr; an EMA window that suits runs of thousands of steps */
        s->batch = 16;
        s->lr = 2e-4;
        s->warmup = 500;
        s->ema = 0.999;
        s->flip = true;
    }
}

static void list_str(char *buf, size_t size, const int64_t *v, int n) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? "," : "", (long long)v[i]);
}

void cli_spec_format(const cli_spec *s, char *buf, size_t size) {
    size_t used = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (used < size) used += (size_t)snprintf(buf + used, size - used, __VA_ARGS__);           \
    } while (0)
    PUT("model=%s\n", s->model);
    PUT("data=%s\n", s->data);
    if (s->data_dir[0]) PUT("data_dir=%s\n", s->data_dir);
    if (!strcmp(s->model, "mlp")) {
        PUT("mlp.dim=%lld\nmlp.width=%lld\nmlp.depth=%lld\nmlp.emb=%lld\nmlp.input_scale=%.9g\n",
            (long long)s->mlp.dim, (long long)s->mlp.width, (long long)s->mlp.depth,
            (long long)s->mlp.emb, (double)s->mlp.input_scale);
    } else {
        const nd_unet_config *u = &s->unet;
        char mult[96], attn[96];
        list_str(mult, sizeof mult, u->ch_mult, u->levels);
        list_str(attn, sizeof attn, u->attn_resolutions, u->nattn);
        PUT("unet.config=%s\nunet.in_channels=%lld\nunet.out_channels=%lld\n"
            "unet.resolution=%lld\nunet.ch=%lld\nunet.ch_mult=%s\nunet.num_res_blocks=%lld\n"
            "unet.attn_resolutions=%s\nunet.dropout=%.9g\nunet.groups=%lld\n"
            "unet.num_classes=%lld\n",
            s->unet_name, (long long)u->in_channels, (long long)u->out_channels,
            (long long)u->resolution, (long long)u->ch, mult, (long long)u->num_res_blocks,
            u->nattn ? attn : "none", (double)u->dropout, (long long)u->groups,
            (long long)u->num_classes);
    }
    PUT("schedule=%s\nT=%lld\nbeta_start=%.17g\nbeta_end=%.17g\n", s->schedule, (long long)s->T,
        s->beta_start, s->beta_end);
    PUT("predicts=%s\nloss=%s\n", s->predicts, s->loss);
    if (!strcmp(s->model, "unet") && s->unet.num_classes > 0)
        PUT("label_drop=%.17g\n", s->label_drop);
    PUT("steps=%lld\nbatch=%lld\nlr=%.17g\nwarmup=%lld\nema=%.17g\nclip=%.17g\nflip=%d\n"
        "seed=%" PRIu64 "\n",
        (long long)s->steps, (long long)s->batch, s->lr, (long long)s->warmup, s->ema, s->clip,
        s->flip ? 1 : 0, s->seed);
#undef PUT
}

/* ---- parsing ------------------------------------------------------------- */

typedef struct line_ctx {
    const char *key, *value;
    int line;
    nd_error *err;
} line_ctx;

static int bad(line_ctx *c, const char *what) {
    return nd_error_set(c->err, "config line %d: %s=%.60s: %s", c->line, c->key, c->value, what);
}

static int get_int(line_ctx *c, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(c->value, &end, 10);
    if (!cli_plain_integer(c->value) || *end || errno) return bad(c, "not a whole number");
    if (v < lo || v > hi) return bad(c, "out of range");
    *out = v;
    return ND_OK;
}

static int get_real(line_ctx *c, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(c->value, &end);
    if (!*c->value || *end || errno || !isfinite(v)) return bad(c, "not a number");
    if (v < lo || v > hi) return bad(c, "out of range");
    *out = v;
    return ND_OK;
}

static int get_text(line_ctx *c, const char *choices, char *out, size_t size) {
    size_t n = strlen(c->value);
    if (n == 0 || n >= size) return bad(c, "empty or too long");
    if (choices) {
        bool ok = false;
        for (const char *p = choices; *p;) {
            size_t len = strcspn(p, "|");
            if (len == n && !strncmp(p, c->value, n)) ok = true;
            p += len + (p[len] == '|');
        }
        if (!ok) return bad(c, choices);
    }
    memcpy(out, c->value, n + 1);
    return ND_OK;
}

static int get_list(line_ctx *c, int64_t *out, int *n, bool none_ok) {
    if (none_ok && !strcmp(c->value, "none")) {
        *n = 0;
        return ND_OK;
    }
    nd_error e;
    if (cli_int_list(c->key, c->value, 1, 1 << 20, out, ND_UNET_MAX_LEVELS, n, &e) != ND_OK)
        return bad(c, "not a list of whole numbers");
    return ND_OK;
}

static int apply(cli_spec *s, line_ctx *c) {
    const char *k = c->key;
    int64_t i = 0;
    double r = 0;
    int rc;
    if (!strcmp(k, "model")) return get_text(c, "mlp|unet", s->model, sizeof s->model);
    if (!strcmp(k, "data")) return get_text(c, NULL, s->data, sizeof s->data);
    if (!strcmp(k, "data_dir")) return get_text(c, NULL, s->data_dir, sizeof s->data_dir);
    if (!strcmp(k, "schedule"))
        return get_text(c, "linear|cosine", s->schedule, sizeof s->schedule);
    if (!strcmp(k, "predicts")) return get_text(c, "eps|x0|mean", s->predicts, sizeof s->predicts);
    if (!strcmp(k, "loss")) return get_text(c, "mse|vlb", s->loss, sizeof s->loss);
    if (!strcmp(k, "unet.config")) return get_text(c, NULL, s->unet_name, sizeof s->unet_name);
    if (!strcmp(k, "unet.ch_mult")) return get_list(c, s->unet.ch_mult, &s->unet.levels, false);
    if (!strcmp(k, "unet.attn_resolutions"))
        return get_list(c, s->unet.attn_resolutions, &s->unet.nattn, true);
    if (!strcmp(k, "seed")) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(c->value, &end, 10);
        if (!cli_plain_integer(c->value) || *c->value == '-' || *end || errno)
            return bad(c, "not a seed");
        s->seed = v;
        return ND_OK;
    }
    static const struct {
        const char *key;
        size_t offset;
        int64_t lo, hi;
    } ints[] = {
        {"mlp.dim", offsetof(cli_spec, mlp.dim), 1, 4096},
        {"mlp.width", offsetof(cli_spec, mlp.width), 1, 1 << 16},
        {"mlp.depth", offsetof(cli_spec, mlp.depth), 0, 256},
        {"mlp.emb", offsetof(cli_spec, mlp.emb), 2, 4096},
        {"unet.in_channels", offsetof(cli_spec, unet.in_channels), 1, 64},
        {"unet.out_channels", offsetof(cli_spec, unet.out_channels), 1, 64},
        {"unet.resolution", offsetof(cli_spec, unet.resolution), 1, 4096},
        {"unet.ch", offsetof(cli_spec, unet.ch), 1, 4096},
        {"unet.num_res_blocks", offsetof(cli_spec, unet.num_res_blocks), 1, 16},
        {"unet.groups", offsetof(cli_spec, unet.groups), 1, 4096},
        {"unet.num_classes", offsetof(cli_spec, unet.num_classes), 0, 1 << 20},
        {"T", offsetof(cli_spec, T), 2, 100000},
        {"steps", offsetof(cli_spec, steps), 1, INT64_C(1) << 40},
        {"batch", offsetof(cli_spec, batch), 1, 1 << 20},
        {"warmup", offsetof(cli_spec, warmup), 0, INT64_C(1) << 40},
        {"flip", 0, 0, 1},
    };
    for (size_t n = 0; n < sizeof ints / sizeof ints[0]; n++)
        if (!strcmp(k, ints[n].key)) {
            if ((rc = get_int(c, ints[n].lo, ints[n].hi, &i)) != ND_OK) return rc;
            if (!strcmp(k, "flip"))
                s->flip = i != 0;
            else
                memcpy((char *)s + ints[n].offset, &i, sizeof i);
            return ND_OK;
        }
    static const struct {
        const char *key;
        double lo, hi;
    } reals[] = {{"beta_start", 1e-12, 0.999999},
                 {"beta_end", 1e-12, 0.999999},
                 {"lr", 0, 10},
                 {"label_drop", 0, 1},
                 {"ema", 0, 1},
                 {"clip", 0, 1e30},
                 {"mlp.input_scale", 1e-6, 1e6},
                 {"unet.dropout", 0, 0.999}};
    for (size_t n = 0; n < sizeof reals / sizeof reals[0]; n++)
        if (!strcmp(k, reals[n].key)) {
            if ((rc = get_real(c, reals[n].lo, reals[n].hi, &r)) != ND_OK) return rc;
            if (!strcmp(k, "beta_start"))
                s->beta_start = r;
            else if (!strcmp(k, "beta_end"))
                s->beta_end = r;
            else if (!strcmp(k, "lr"))
                s->lr = r;
            else if (!strcmp(k, "ema"))
                s->ema = r;
            else if (!strcmp(k, "clip"))
                s->clip = r;
            else if (!strcmp(k, "mlp.input_scale"))
                s->mlp.input_scale = (float)r;
            else
                s->unet.dropout = (float)r;
            return ND_OK;
        }
    return bad(c, "unknown setting");
}

/* Applies each key=value line of text: the model line alone, or all the
 * others. */
static int each_line(const char *text, cli_spec *s, bool model_only, nd_error *err) {
    int line = 0;
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        line++;
        char buf[1100];
        if (len >= sizeof buf) return nd_error_set(err, "config line %d is too long", line);
        memcpy(buf, p, len);
        buf[len] = 0;
        p += len + (p[len] == '\n');
        if (!buf[0]) continue;
        char *eq = strchr(buf, '=');
        if (!eq) return nd_error_set(err, "config line %d: '%.60s' is not key=value", line, buf);
        *eq = 0;
        line_ctx c = {buf, eq + 1, line, err};
        if (model_only != !strcmp(buf, "model")) continue;
        if (apply(s, &c) != ND_OK) return ND_ERR;
    }
    return ND_OK;
}

int cli_spec_parse(const char *text, cli_spec *s, nd_error *err) {
    cli_spec probe;
    memset(&probe, 0, sizeof probe);
    if (each_line(text, &probe, true, err) != ND_OK) return ND_ERR;
    if (!probe.model[0]) return nd_error_set(err, "config has no model= line");
    cli_spec_defaults(s, probe.model);
    if (each_line(text, s, false, err) != ND_OK) return ND_ERR;
    if (!(s->beta_start <= s->beta_end))
        return nd_error_set(err, "config: beta_start %g is above beta_end %g", s->beta_start,
                            s->beta_end);
    if (!strcmp(s->model, "unet") && nd_unet_config_check(&s->unet, err) != ND_OK) return ND_ERR;
    if (!strcmp(s->model, "mlp") && s->mlp.emb % 2)
        return nd_error_set(err, "config: mlp.emb %lld is not even", (long long)s->mlp.emb);
    return ND_OK;
}

/* ---- the model ------------------------------------------------------------ */

nd_train_config cli_train_config(const cli_spec *s) {
    nd_train_config c = nd_train_defaults();
    c.optim.lr = s->lr;
    c.optim.warmup_steps = s->warmup;
    c.grad_clip = s->clip;
    c.ema_decay = s->ema;
    c.random_flip = s->flip;
    c.loss = !strcmp(s->loss, "vlb") ? ND_LOSS_VLB : ND_LOSS_MSE;
    c.label_drop = (float)s->label_drop;
    return c;
}

int cli_model_build(const cli_spec *s, cli_model *m, nd_error *err) {
    memset(m, 0, sizeof *m);
    int rc = !strcmp(s->schedule, "cosine")
                 ? nd_schedule_cosine(&m->schedule, s->T, 0.008, 0.999, err)
                 : nd_schedule_linear(&m->schedule, s->T, s->beta_start, s->beta_end, err);
    if (rc != ND_OK) return ND_ERR;
    nd_rng g = nd_rng_init(s->seed, 1);
    if (!strcmp(s->model, "mlp")) {
        m->mlp = nd_mlp_new(&s->mlp, &g);
        m->module = nd_mlp_module(m->mlp);
        m->denoiser = nd_mlp_denoiser(m->mlp);
    } else {
        if (nd_unet_config_check(&s->unet, err) != ND_OK) {
            nd_schedule_free(&m->schedule);
            return ND_ERR;
        }
        m->unet = nd_unet_new(&s->unet, &g);
        m->module = nd_unet_module(m->unet);
        m->denoiser = nd_unet_denoiser(m->unet);
    }
    m->denoiser.predicts = !strcmp(s->predicts, "x0")     ? ND_PRED_X0
                           : !strcmp(s->predicts, "mean") ? ND_PRED_MEAN
                                                          : ND_PRED_EPS;
    return ND_OK;
}

void cli_model_free(cli_model *m) {
    if (m->module) nd_module_free(m->module);
    nd_schedule_free(&m->schedule);
    memset(m, 0, sizeof *m);
}

int cli_checkpoint_spec(const char *path, cli_spec *s, nd_error *err) {
    nd_safetensors st;
    if (nd_safetensors_load(path, &st, err) != ND_OK) return ND_ERR;
    const char *text = nd_safetensors_meta(&st, "config");
    int rc;
    if (!text) {
        rc = nd_error_set(err, "%s holds no nanodiff train settings (no \"config\")", path);
    } else {
        rc = cli_spec_parse(text, s, err);
        if (rc != ND_OK) {
            nd_error e = *err;
            nd_error_set(err, "%s: %s", path, e.message);
        }
    }
    nd_safetensors_free(&st);
    return rc;
}

int cli_model_load(const char *ckpt, const cli_spec *s, bool ema_weights, cli_model *m,
                   int64_t *step, nd_error *err) {
    if (cli_model_build(s, m, err) != ND_OK) return ND_ERR;
    nd_ema *ema = nd_ema_new(m->module, s->ema);
    nd_checkpoint ck = {.model = m->module, .ema = ema};
    int rc = nd_checkpoint_load(ckpt, &ck, err);
    if (rc == ND_OK && ema_weights) {
        if (nd_ema_updates(ema) == 0)
            rc = nd_error_set(err, "%s has no EMA weights yet (no step taken); use --weights raw",
                              ckpt);
        else
            nd_ema_copy_to(ema, m->module);
    }
    nd_ema_free(ema);
    if (rc != ND_OK) {
        cli_model_free(m);
        return ND_ERR;
    }
    if (step) *step = ck.step;
    return ND_OK;
}

int cli_open_run_data(const char *ckpt, const cli_spec *s, const char *data, const char *data_dir,
                      bool test, bool ema_weights, cli_data *d, cli_model *m, int64_t *trained,
                      nd_error *err) {
    if (cli_data_open(data[0] ? data : s->data, data[0] ? data_dir : s->data_dir, test, d, err) !=
        ND_OK)
        return ND_ERR;
    if (cli_data_check_model(d, s, err) == ND_OK &&
        cli_model_load(ckpt, s, ema_weights, m, trained, err) == ND_OK)
        return ND_OK;
    cli_data_close(d);
    return ND_ERR;
}

int cli_open_run(const char *run, const char *out, const char *points_refused, char *ckpt,
                 char *dir, size_t size, cli_spec *s, nd_error *err) {
    if (cli_checkpoint_path(run, ckpt, size, err) != ND_OK ||
        cli_checkpoint_spec(ckpt, s, err) != ND_OK)
        return ND_ERR;
    cli_default_dir(ckpt, out, dir, size);
    if (points_refused && strcmp(s->model, "unet"))
        return nd_error_set(err, "%s is a model of points%s", ckpt, points_refused);
    return ND_OK;
}

int cli_check_count(const cli_data *d, int64_t n, const char *split, nd_error *err) {
    if (d->generated || n <= d->table->shape[0]) return ND_OK;
    return nd_error_set(err, "--n %lld: the %s split of %s has %lld images", (long long)n, split,
                        d->name, (long long)d->table->shape[0]);
}
