/* Fuzz target: nd_checkpoint_load (nn/nn.h).
 *
 * The input is the file, loaded into the small fixed model of fuzz.h in
 * three ways: with AdamW, the EMA, the rng and room for the config; with
 * the model alone; with SGD (momentum) and the rng and a config buffer too
 * small for most configs. Beyond crashes, leaks and nd_fatal:
 *   - on ND_ERR the model's parameters, both optimizers' state and step
 *     counts, the EMA's shadows and update count, the rng, the step and
 *     the config buffer are unchanged, bit for bit;
 *   - on ND_OK every tensor holds the bits the file holds under its name,
 *     the whole numbers of the metadata it read are digits alone, and
 *     saving the checkpoint again and loading that gives the same state
 *     (then the model is put back as it was for the next input). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static fz_model M;

/* Everything a load may change. */
typedef struct state {
    unsigned char *bytes;
    size_t size;
    int64_t adamw_steps, sgd_steps, ema_updates, step;
    nd_rng rng;
} state;

static nd_param_list lists[4]; /* parameters, AdamW, SGD, EMA */

static void each_tensor(void (*fn)(nd_tensor *t, void *ctx), void *ctx) {
    for (int l = 0; l < 4; l++)
        for (int i = 0; i < lists[l].n; i++) fn(lists[l].items[i].value, ctx);
}

static void count_bytes(nd_tensor *t, void *ctx) {
    *(size_t *)ctx += (size_t)nd_numel(t) * 4;
}

typedef struct cursor {
    unsigned char *p;
    bool restore;
} cursor;

static void copy_bytes(nd_tensor *t, void *ctx) {
    cursor *c = ctx;
    size_t n = (size_t)nd_numel(t) * 4;
    if (c->restore) memcpy(nd_data(t), c->p, n);
    else memcpy(c->p, nd_data(t), n);
    c->p += n;
}

static void snapshot(state *s, int64_t step) {
    if (!s->bytes) {
        s->size = 0;
        each_tensor(count_bytes, &s->size);
        s->bytes = malloc(s->size);
    }
    cursor c = {s->bytes, false};
    each_tensor(copy_bytes, &c);
    s->adamw_steps = nd_optimizer_steps(M.adamw);
    s->sgd_steps = nd_optimizer_steps(M.sgd);
    s->ema_updates = nd_ema_updates(M.ema);
    s->rng = M.rng;
    s->step = step;
}

static void restore(const state *s) {
    cursor c = {s->bytes, true};
    each_tensor(copy_bytes, &c);
    nd_optimizer_set_steps(M.adamw, s->adamw_steps);
    nd_optimizer_set_steps(M.sgd, s->sgd_steps);
    nd_ema_set_updates(M.ema, s->ema_updates);
    M.rng = s->rng;
}

static bool equal(const state *a, const state *b) {
    return a->size == b->size && memcmp(a->bytes, b->bytes, a->size) == 0 &&
           a->adamw_steps == b->adamw_steps && a->sgd_steps == b->sgd_steps &&
           a->ema_updates == b->ema_updates && a->rng.seed == b->rng.seed &&
           a->rng.stream == b->rng.stream && a->rng.offset == b->rng.offset &&
           a->step == b->step;
}

static state initial, before, after, again;

/* Room for any config of an input (libFuzzer's inputs stay below 8 KB
 * unless run with a larger -max_len), and room for too little; the
 * pattern they hold before each load. */
static char config[1 << 13], small_config[16], pattern[sizeof config];

static void init(void) {
    fz_init();
    fz_model_new(&M);
    lists[0] = nd_parameters(M.model);
    lists[1] = nd_optimizer_state(M.adamw);
    lists[2] = nd_optimizer_state(M.sgd);
    lists[3] = nd_ema_state(M.ema);
    snapshot(&initial, 0);
    memset(pattern, 0x5a, sizeof pattern);
}

/* Every tensor of ck holds the bits the file holds under its key. */
static void matches_file(const char *path, const nd_checkpoint *ck) {
    nd_safetensors st;
    nd_error err = {{0}};
    FZ_CHECK(nd_safetensors_load(path, &st, &err) == ND_OK,
             "the checkpoint loaded but the file does not: %s", err.message);
    const char *prefix[4] = {"", "optimizer.", "optimizer.", "ema."};
    bool member[4] = {true, ck->optimizer == M.adamw, ck->optimizer == M.sgd, ck->ema != NULL};
    for (int l = 0; l < 4; l++) {
        if (!member[l]) continue;
        for (int i = 0; i < lists[l].n; i++) {
            char key[ND_NAME_MAX + 16];
            snprintf(key, sizeof key, "%s%s", prefix[l], lists[l].items[i].name);
            const nd_tensor *f = nd_safetensors_get(&st, key), *t = lists[l].items[i].value;
            FZ_CHECK(f && nd_same_shape(f, t), "loaded, but '%s' is not in the file as it is",
                     key);
            FZ_CHECK(memcmp(nd_data(f), nd_data(t), (size_t)nd_numel(t) * 4) == 0,
                     "loaded, but '%s' does not hold the file's bits", key);
        }
    }
    /* The whole numbers it read were written plainly: digits only (no
     * sign, space, fraction or exponent). */
    const char *keys[] = {"step", "optimizer.steps", "ema.updates", "rng.seed", "rng.stream",
                          "rng.offset"};
    bool read[] = {true, ck->optimizer != NULL, ck->ema != NULL, ck->rng != NULL,
                   ck->rng != NULL, ck->rng != NULL};
    for (int k = 0; k < 6; k++) {
        const char *v = nd_safetensors_meta(&st, keys[k]);
        if (!read[k] || !v) continue;
        bool plain = *v != 0;
        for (const char *c = v; *c; c++) plain = plain && *c >= '0' && *c <= '9';
        FZ_CHECK(plain, "loaded, but metadata \"%s\" is \"%.40s\", not a plain whole number",
                 keys[k], v);
    }
    nd_safetensors_free(&st);
}

static void load(const char *path, nd_checkpoint ck, const char *what) {
    ck.step = -7; /* a step no file gives */
    snapshot(&before, ck.step);
    if (ck.config_out) memcpy(ck.config_out, pattern, ck.config_out_size);
    nd_error err = {{0}};
    int rc = nd_checkpoint_load(path, &ck, &err);
    fz_check_result(what, rc, &err, path);
    if (rc != ND_OK) {
        snapshot(&after, ck.step);
        FZ_CHECK(equal(&before, &after), "%s: ND_ERR (%s), but the model, optimizer, EMA, "
                 "rng or step changed", what, err.message);
        FZ_CHECK(!ck.config_out || memcmp(ck.config_out, pattern, ck.config_out_size) == 0,
                 "%s: ND_ERR (%s), but config_out changed", what, err.message);
        return;
    }
    if (ck.config_out)
        FZ_CHECK(memchr(ck.config_out, 0, ck.config_out_size) != NULL,
                 "%s: config_out is not terminated", what);
    snapshot(&after, ck.step);
    FZ_CHECK(ck.step >= 0, "%s: step %lld", what, (long long)ck.step);
    matches_file(path, &ck);

    /* Saved again and loaded again: the same state. The config goes with
     * it when it was read whole. */
    nd_checkpoint again_ck = ck;
    if (ck.config_out && strlen(ck.config_out) + 1 < ck.config_out_size)
        again_ck.config = ck.config_out;
    const char *out = fz_path(1);
    rc = nd_checkpoint_save(out, &again_ck, &err);
    FZ_CHECK(rc == ND_OK, "%s: saving a checkpoint just loaded fails: %s", what, err.message);
    restore(&initial);
    again_ck.config_out = NULL;
    rc = nd_checkpoint_load(out, &again_ck, &err);
    FZ_CHECK(rc == ND_OK, "%s: a checkpoint saved from a loaded one does not load: %s", what,
             err.message);
    snapshot(&again, again_ck.step);
    FZ_CHECK(equal(&after, &again), "%s: saved and loaded again, the state differs", what);
    fz_remove(1);
    restore(&initial);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool ready;
    if (!ready) init();
    ready = true;
    size_t base = fz_mem_begin();
    const char *path = fz_write(0, data, size);
    load(path, (nd_checkpoint){.model = M.model, .optimizer = M.adamw, .ema = M.ema,
                               .rng = &M.rng, .config_out = config,
                               .config_out_size = sizeof config},
         "nd_checkpoint_load (AdamW, EMA, rng)");
    load(path, (nd_checkpoint){.model = M.model}, "nd_checkpoint_load (model alone)");
    load(path, (nd_checkpoint){.model = M.model, .optimizer = M.sgd, .rng = &M.rng,
                               .config_out = small_config,
                               .config_out_size = sizeof small_config},
         "nd_checkpoint_load (SGD, rng)");
    fz_mem_end(base, "nd_checkpoint_load");
    return 0;
}
