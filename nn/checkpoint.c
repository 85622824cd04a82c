/* Checkpoints: a model, its optimizer, its EMA and an rng in one
 * safetensors file (read and written by tensor/safetensors_read.c and
 * tensor/safetensors_write.c).
 *
 * Loading is all or nothing: every tensor and number is found and checked
 * first, and only then copied, so a bad file never leaves a model half
 * loaded. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

#define FORMAT "nanodiff checkpoint 1"
#define OPT_PREFIX "optimizer."
#define EMA_PREFIX "ema."
#define MAX_META 16

static const char *kind_name(nd_optim_kind k) {
    return k == ND_SGD ? "sgd" : k == ND_ADAM ? "adam" : "adamw";
}

/* ---- the entries of a checkpoint --------------------------------------- */

/* Every tensor a checkpoint of ck holds, under its key in the file. */
typedef struct {
    int n;
    char (*keys)[ND_NAME_MAX + 16];
    nd_tensor **tensors;
    nd_param_list lists[3]; /* model, optimizer, ema */
} entries;

static void entries_build(entries *e, const nd_checkpoint *ck, bool optimizer, bool ema) {
    memset(e, 0, sizeof *e);
    e->lists[0] = nd_parameters(ck->model);
    if (optimizer) e->lists[1] = nd_optimizer_state(ck->optimizer);
    if (ema) e->lists[2] = nd_ema_state(ck->ema);
    int total = e->lists[0].n + e->lists[1].n + e->lists[2].n;
    e->keys = nd_alloc((size_t)(total ? total : 1) * sizeof *e->keys);
    e->tensors = nd_alloc((size_t)(total ? total : 1) * sizeof *e->tensors);
    const char *prefix[3] = {"", OPT_PREFIX, EMA_PREFIX};
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < e->lists[l].n; i++) {
            snprintf(e->keys[e->n], sizeof e->keys[e->n], "%s%s", prefix[l],
                     e->lists[l].items[i].name);
            e->tensors[e->n++] = e->lists[l].items[i].value;
        }
}

static void entries_free(entries *e) {
    int cap = e->lists[0].n + e->lists[1].n + e->lists[2].n;
    nd_dealloc(e->keys, (size_t)(cap ? cap : 1) * sizeof *e->keys);
    nd_dealloc(e->tensors, (size_t)(cap ? cap : 1) * sizeof *e->tensors);
    for (int l = 0; l < 3; l++) nd_param_list_free(&e->lists[l]);
}

/* ---- save -------------------------------------------------------------- */

/* x in the fewest digits that read back as x (into buf[32]). */
static const char *shortest(double x, char *buf) {
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, 32, "%.*g", digits, x);
        if (strtod(buf, NULL) == x) break;
    }
    return buf;
}

int nd_checkpoint_save(const char *path, const nd_checkpoint *ck, nd_error *err) {
    if (!path) nd_fatal("checkpoint_save", "path is NULL");
    if (!ck || !ck->model) nd_fatal("checkpoint_save", "checkpoint or its model is NULL");
    entries e;
    entries_build(&e, ck, ck->optimizer != NULL, ck->ema != NULL);

    char values[MAX_META][64], decay_text[32];
    const char *keys[MAX_META], *vals[MAX_META];
    int m = 0;
#define META(key, ...)                                                         \
    do {                                                                       \
        keys[m] = (key);                                                       \
        snprintf(values[m], sizeof values[m], __VA_ARGS__);                    \
        vals[m] = values[m];                                                   \
        m++;                                                                   \
    } while (0)
    META("format", "%s", FORMAT);
    META("step", "%" PRId64, ck->step);
    if (ck->optimizer) {
        META("optimizer.kind", "%s", kind_name(nd_optimizer_config(ck->optimizer)->kind));
        META("optimizer.steps", "%" PRId64, nd_optimizer_steps(ck->optimizer));
    }
    if (ck->ema) {
        META("ema.decay", "%s", shortest(nd_ema_decay(ck->ema), decay_text));
        META("ema.updates", "%" PRId64, nd_ema_updates(ck->ema));
    }
    if (ck->rng) {
        META("rng.seed", "%" PRIu64, ck->rng->seed);
        META("rng.stream", "%" PRIu32, ck->rng->stream);
        META("rng.offset", "%" PRIu64, ck->rng->offset);
    }
#undef META
    if (ck->config) {
        keys[m] = "config";
        vals[m++] = ck->config;
    }
    const char *names[1024], **namep = names;
    if (e.n > 1024) namep = malloc((size_t)e.n * sizeof *namep);
    if (!namep) nd_fatal("checkpoint_save", "out of memory");
    for (int i = 0; i < e.n; i++) namep[i] = e.keys[i];
    int rc = nd_safetensors_save(path, namep, (const nd_tensor *const *)e.tensors, e.n,
                                 keys, vals, m, err);
    if (namep != names) free(namep);
    entries_free(&e);
    return rc;
}

/* ---- load -------------------------------------------------------------- */

/* A whole decimal number in [0, max] written as the saver writes it:
 * digits only (no sign, space or other white space) and no leading zero
 * but for "0" itself. */
static bool parse_uint(const char *s, uint64_t max, uint64_t *out) {
    if (!s || !*s || (s[0] == '0' && s[1])) return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        uint64_t d = (uint64_t)(*p - '0');
        if (d > max || v > (max - d) / 10) return false;
        v = 10 * v + d;
    }
    *out = v;
    return true;
}

typedef struct {
    const char *path;
    const nd_safetensors *st;
    nd_error *err;
} loader;

static int meta_uint(const loader *ld, const char *key, uint64_t max, uint64_t *out) {
    const char *v = nd_safetensors_meta(ld->st, key);
    if (!v) return nd_error_set(ld->err, "%s: no \"%s\" in the metadata", ld->path, key);
    if (!parse_uint(v, max, out))
        return nd_error_set(ld->err, "%s: metadata \"%s\" is \"%.40s\", not a whole "
                            "number up to %" PRIu64, ld->path, key, v, max);
    return ND_OK;
}

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Every tensor the members need is in the file with its shape, and every
 * tensor of the file belongs to a member (the optimizer's and EMA's
 * tensors may be left over when those members were not asked for). */
static int check_tensors(const loader *ld, const entries *e, const nd_checkpoint *ck) {
    char a[ND_SHAPE_STR_LEN], b[ND_SHAPE_STR_LEN];
    for (int i = 0; i < e->n; i++) {
        const nd_tensor *t = nd_safetensors_get(ld->st, e->keys[i]);
        const nd_tensor *want = e->tensors[i];
        if (!t)
            return nd_error_set(ld->err, "%s: no tensor \"%s\" (shape %s) in the file",
                                ld->path, e->keys[i],
                                nd_shape_str(want->shape, want->ndim, b));
        if (!nd_same_shape(t, want))
            return nd_error_set(ld->err, "%s: tensor \"%s\" has shape %s in the file, "
                                "the %s wants %s", ld->path, e->keys[i],
                                nd_shape_str(t->shape, t->ndim, a),
                                has_prefix(e->keys[i], OPT_PREFIX) ? "optimizer"
                                : has_prefix(e->keys[i], EMA_PREFIX) ? "EMA" : "model",
                                nd_shape_str(want->shape, want->ndim, b));
    }
    for (int j = 0; j < ld->st->n; j++) {
        const char *name = ld->st->names[j];
        bool known = false;
        for (int i = 0; i < e->n && !known; i++) known = strcmp(name, e->keys[i]) == 0;
        if (known || (!ck->optimizer && has_prefix(name, OPT_PREFIX)) ||
            (!ck->ema && has_prefix(name, EMA_PREFIX)))
            continue;
        return nd_error_set(ld->err, "%s: tensor \"%s\" in the file is not %s", ld->path,
                            name,
                            has_prefix(name, OPT_PREFIX) ? "part of this optimizer's state"
                            : has_prefix(name, EMA_PREFIX) ? "an average of a parameter"
                                                           : "a parameter of the model");
    }
    return ND_OK;
}

int nd_checkpoint_load(const char *path, nd_checkpoint *ck, nd_error *err) {
    if (!path) nd_fatal("checkpoint_load", "path is NULL");
    if (!ck || !ck->model) nd_fatal("checkpoint_load", "checkpoint or its model is NULL");
    nd_safetensors st;
    if (nd_safetensors_load(path, &st, err) != ND_OK) return ND_ERR;
    loader ld = {path, &st, err};
    entries e;
    entries_build(&e, ck, ck->optimizer != NULL, ck->ema != NULL);

    int rc = ND_OK;
    uint64_t step = 0, opt_steps = 0, ema_updates = 0, seed = 0, stream = 0, offset = 0;
    const char *format = nd_safetensors_meta(&st, "format");
    if (format && strcmp(format, FORMAT) != 0)
        rc = nd_error_set(err, "%s: format \"%.40s\" is not \"" FORMAT "\"", path, format);
    /* A file without "step" (weights saved by another program) starts at 0. */
    if (rc == ND_OK && nd_safetensors_meta(&st, "step"))
        rc = meta_uint(&ld, "step", INT64_MAX, &step);
    if (rc == ND_OK && ck->optimizer) {
        const char *kind = nd_safetensors_meta(&st, "optimizer.kind");
        const char *want = kind_name(nd_optimizer_config(ck->optimizer)->kind);
        if (!kind)
            rc = nd_error_set(err, "%s: no optimizer state in the file", path);
        else if (strcmp(kind, want) != 0)
            rc = nd_error_set(err, "%s: the file holds the state of a \"%.20s\" optimizer, "
                              "not \"%s\"", path, kind, want);
        else
            rc = meta_uint(&ld, "optimizer.steps", INT64_MAX, &opt_steps);
    }
    if (rc == ND_OK && ck->ema) {
        const char *decay = nd_safetensors_meta(&st, "ema.decay");
        char mine[32], *end = NULL;
        double want = nd_ema_decay(ck->ema), got = decay ? strtod(decay, &end) : NAN;
        shortest(want, mine);
        /* files written before the decay was a double hold its float value */
        bool same = decay && end != decay && *end == 0 &&
                    (got == want || (float)got == (float)want);
        if (!decay)
            rc = nd_error_set(err, "%s: no EMA in the file", path);
        else if (!same)
            rc = nd_error_set(err, "%s: the file's EMA has decay %.20s, this one %s", path,
                              decay, mine);
        else
            rc = meta_uint(&ld, "ema.updates", INT64_MAX, &ema_updates);
    }
    if (rc == ND_OK && ck->rng) {
        rc = meta_uint(&ld, "rng.seed", UINT64_MAX, &seed);
        if (rc == ND_OK) rc = meta_uint(&ld, "rng.stream", UINT32_MAX, &stream);
        if (rc == ND_OK) rc = meta_uint(&ld, "rng.offset", UINT64_MAX, &offset);
    }
    if (rc == ND_OK) rc = check_tensors(&ld, &e, ck);

    if (rc == ND_OK) { /* all checked: now write */
        nd_no_grad_begin();
        for (int i = 0; i < e.n; i++)
            nd_copy_(e.tensors[i], nd_safetensors_get(&st, e.keys[i]));
        nd_no_grad_end();
        if (ck->optimizer) nd_optimizer_set_steps(ck->optimizer, (int64_t)opt_steps);
        if (ck->ema) nd_ema_set_updates(ck->ema, (int64_t)ema_updates);
        if (ck->rng) *ck->rng = (nd_rng){seed, (uint32_t)stream, offset};
        ck->step = (int64_t)step;
        if (ck->config_out && ck->config_out_size) {
            const char *c = nd_safetensors_meta(&st, "config");
            snprintf(ck->config_out, ck->config_out_size, "%s", c ? c : "");
        }
    }
    entries_free(&e);
    nd_safetensors_free(&st);
    return rc;
}
