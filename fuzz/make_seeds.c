/* Seed corpora for the fuzz targets: make_seeds DIR writes DIR/<target>/
 * for each target, with valid files made by the library's own writers
 * (nd_safetensors_save, nd_checkpoint_save, nd_npy_save, nd_deflate with
 * a gzip wrapper, zlib's streams from tests/data/vectors.h) or by hand in
 * the format (IDX, CIFAR-10, CSV), and corrupt variants of each made by
 * hand: truncated, lengths beyond the file, overlapping offsets, names
 * twice, NaN and fractions where integers belong, wrong magic numbers. The
 * seeds are made afresh each run, so they follow the writers and nothing
 * binary is kept in the tree. Inputs of the idx and cifar targets start
 * with option bytes (see those files). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data.h"
#include "fuzz.h"
#include "tests/data/vectors.h"

static char root[4096];
static const char *target;

static const char *seed_path(const char *name) {
    static char p[4400];
    snprintf(p, sizeof p, "%s/%s/%s", root, target, name);
    return p;
}

static void make_dir(const char *d) {
    if (mkdir(d, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "make_seeds: cannot make %s: %s\n", d, strerror(errno));
        exit(1);
    }
}

static void begin(const char *name) {
    target = name;
    char d[4200];
    snprintf(d, sizeof d, "%s/%s", root, name);
    make_dir(d);
}

static void put(const char *name, const void *data, size_t n) {
    FILE *f = fopen(seed_path(name), "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "make_seeds: cannot write %s\n", seed_path(name));
        exit(1);
    }
}

static void put_str(const char *name, const char *s) { put(name, s, strlen(s)); }

static unsigned char *get(const char *name, size_t *n) {
    FILE *f = fopen(seed_path(name), "rb");
    if (!f) exit(1);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    if (*n && fread(b, 1, *n, f) != *n) exit(1);
    fclose(f);
    return b;
}

static void ok(int rc, const nd_error *err) {
    if (rc != ND_OK) {
        fprintf(stderr, "make_seeds: %s\n", err->message);
        exit(1);
    }
}

/* Concatenation of parts into a malloc'd buffer. */
typedef struct buf {
    unsigned char *p;
    size_t n;
} buf;
static void add(buf *b, const void *p, size_t n) {
    b->p = realloc(b->p, b->n + n + 1);
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}

/* ---- safetensors --------------------------------------------------------- */

/* A file from header text and data; length_delta is added to the
 * header's true length in the 8-byte prefix. */
static void st_raw(const char *name, const char *json, const void *data, size_t ndata,
                   int64_t length_delta) {
    buf b = {0};
    unsigned char len[8];
    fz_put_le64(len, (uint64_t)((int64_t)strlen(json) + length_delta));
    add(&b, len, 8);
    add(&b, json, strlen(json));
    add(&b, data, ndata);
    put(name, b.p, b.n);
    free(b.p);
}

static const float some[16] = {1.0f, -2.5f, 3.25f, 0.0f, -0.0f, 1e-30f, 7.0f, 8.0f,
                               9.0f, 10.0f, 11.5f, 12.0f, -13.0f, 14.0f, 15.0f, 16.0f};

static void safetensors_seeds(void) {
    begin("safetensors");
    nd_error err;
    ok(nd_safetensors_save(seed_path("valid-empty"), NULL, NULL, 0, NULL, NULL, 0, &err), &err);
    const char *keys[] = {"format", "note"}, *vals[] = {"pt", "quote \" backslash \\ e\xc3\xa9"};
    ok(nd_safetensors_save(seed_path("valid-meta-only"), NULL, NULL, 0, keys, vals, 2, &err),
       &err);
    nd_tensor *scalar = nd_persist(nd_full(NULL, 0, 0.5f));
    nd_tensor *a = nd_persist(nd_from_buffer(some, ND_SHAPE(2, 3)));
    nd_tensor *b = nd_persist(nd_from_buffer(some + 6, ND_SHAPE(4)));
    nd_tensor *z = nd_persist(nd_empty(ND_SHAPE(0, 5)));
    nd_tensor *c = nd_persist(nd_from_buffer(some, ND_SHAPE(1, 2, 1, 2, 1, 2, 1, 2)));
    const char *n1[] = {"x"};
    const nd_tensor *t1[] = {scalar};
    ok(nd_safetensors_save(seed_path("valid-scalar"), n1, t1, 1, NULL, NULL, 0, &err), &err);
    const char *n4[] = {"a", "b.c", "empty", "\xce\xb8.deep"};
    const nd_tensor *t4[] = {a, b, z, c};
    ok(nd_safetensors_save(seed_path("valid-four"), n4, t4, 4, keys, vals, 2, &err), &err);
    nd_free(scalar);
    nd_free(a);
    nd_free(b);
    nd_free(z);
    nd_free(c);

    /* By hand: valid, in ways the writer never takes. */
    const char *two = "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                      "\"a\":{\"data_offsets\":[0,8],\"shape\":[2],\"dtype\":\"F32\"}}";
    st_raw("valid-header-order-differs", two, some, 12, 0);
    st_raw("valid-escaped-names",
           " {\"\\u00e9\\ud83d\\ude00\\/n\" : { \"dtype\" : \"F32\" , \"shape\" : [ ] , "
           "\"data_offsets\" : [ 0 , 4 ] } , \"__metadata__\" : { \"k\\\"\" : \"\\t\" } }  ",
           some, 4, 0);
    st_raw("valid-zero-sized-twice",
           "{\"p\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
           "\"q\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[0,0]},"
           "\"r\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
           some, 4, 0);

    /* Corrupt. */
    size_t n;
    unsigned char *f = get("valid-four", &n);
    put("bad-truncated-data", f, n - 1);
    put("bad-truncated-header", f, 40);
    put("bad-truncated-length", f, 5);
    unsigned char *g = malloc(n + 1);
    memcpy(g, f, n);
    g[n] = 0;
    put("bad-trailing-byte", g, n + 1);
    fz_put_le64(g, fz_le64(f) + n);
    put("bad-header-length-beyond-file", g, n);
    fz_put_le64(g, 0);
    put("bad-header-length-zero", g, n);
    fz_put_le64(g, UINT64_MAX);
    put("bad-header-length-huge", g, n);
    free(g);
    free(f);
    st_raw("bad-header-length-plus-one", two, some, 12, 1);
    st_raw("bad-header-length-minus-one", two, some, 12, -1);
    static const struct {
        const char *name, *json;
        size_t ndata;
    } bad[] = {
        {"bad-overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12},
        {"bad-overlap-inside", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 12},
        {"bad-hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12},
        {"bad-offsets-reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4},
        {"bad-offsets-past-end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", 8},
        {"bad-size-mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 12},
        {"bad-duplicate-name", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8},
        {"bad-duplicate-escaped-name", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                       "\"\\u0061\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8},
        {"bad-duplicate-metadata", "{\"__metadata__\":{},\"__metadata__\":{}}", 0},
        {"bad-duplicate-metadata-key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0},
        {"bad-shape-nan", "{\"a\":{\"dtype\":\"F32\",\"shape\":[NaN],\"data_offsets\":[0,4]}}", 4},
        {"bad-shape-fraction", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4},
        {"bad-shape-exponent", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]}}", 4},
        {"bad-shape-negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4},
        {"bad-shape-2^64", "{\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551616,0],\"data_offsets\":[0,0]}}", 0},
        {"bad-shape-string", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4},
        {"bad-shape-9-dims", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4},
        {"bad-shape-overflow", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,0],\"data_offsets\":[0,0]}}", 0},
        {"bad-offsets-fraction", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.5]}}", 4},
        {"bad-offsets-infinity", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,Infinity]}}", 4},
        {"bad-offsets-three", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,4]}}", 4},
        {"bad-offsets-null", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":null}}", 4},
        {"bad-dtype-f64", "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8},
        {"bad-dtype-unknown", "{\"a\":{\"dtype\":\"F31\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4},
        {"bad-field-missing", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4},
        {"bad-field-extra", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4},
        {"bad-field-twice", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4},
        {"bad-name-nul", "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4},
        {"bad-name-empty", "{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4},
        {"bad-name-control", "{\"a\\nb\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4},
        {"bad-name-surrogate", "{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4},
        {"bad-name-utf8", "{\"\xc0\xaf\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4},
        {"bad-metadata-number", "{\"__metadata__\":{\"k\":1}}", 0},
        {"bad-metadata-array", "{\"__metadata__\":[]}", 0},
        {"bad-not-object", "[{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}]", 4},
        {"bad-json", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4},
        {"bad-json-trailing-comma", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,],\"data_offsets\":[0,4]}}", 4},
        {"bad-json-deep", "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        st_raw(bad[i].name, bad[i].json, some, bad[i].ndata, 0);
}

/* ---- json: the headers above, and more ----------------------------------- */

static void json_seeds(void) {
    /* The header text of each safetensors seed. */
    char list[4200];
    snprintf(list, sizeof list, "%s/safetensors", root);
    static const char *const from[] = {"valid-four", "valid-escaped-names", "valid-meta-only",
                                       "bad-json-deep", "bad-shape-2^64", "bad-name-surrogate",
                                       "bad-name-utf8", "bad-offsets-fraction"};
    for (size_t i = 0; i < sizeof from / sizeof *from; i++) {
        target = "safetensors";
        size_t n;
        unsigned char *f = get(from[i], &n);
        uint64_t len = fz_le64(f);
        target = "json";
        begin("json");
        put(from[i], f + 8, len < n - 8 ? (size_t)len : n - 8);
        free(f);
    }
    begin("json");
    put_str("literals", "[true,false,null, 0, -0, 0.5e-3, 1E+2, 18446744073709551615, "
                        "18446744073709551616, -1]");
    put_str("strings", "{\"\\\"\\\\\\/\\b\\f\\n\\r\\t\":\"\\u0000\\u00e9\\u20ac\\ud834\\udd1e\","
                       "\"\xf0\x9f\x98\x80\xe2\x82\xac\xc3\xa9\":\"\"}");
    put_str("bad-number", "[01, 1., .5, -, 1e, +1]");
    put_str("bad-escape", "\"\\x\"");
    put_str("bad-lone-low-surrogate", "\"\\udc00\"");
    put_str("bad-overlong", "\"\xe0\x80\xaf\"");
    put_str("bad-above-max", "\"\xf4\x90\x80\x80\"");
    put_str("bad-unterminated", "{\"a\":\"b");
    put("bad-nul-byte", "[\"a\0\"]", 6);
}

/* ---- checkpoints ----------------------------------------------------------- */

/* The file of seed from, loaded, changed by fn, saved as name. */
static void edit_checkpoint(const char *from, const char *name,
                            void (*fn)(nd_safetensors *st, void *ctx), void *ctx) {
    nd_safetensors st;
    nd_error err;
    ok(nd_safetensors_load(seed_path(from), &st, &err), &err);
    fn(&st, ctx);
    ok(nd_safetensors_save(seed_path(name), (const char *const *)st.names,
                           (const nd_tensor *const *)st.tensors, st.n,
                           (const char *const *)st.meta_keys,
                           (const char *const *)st.meta_values, st.nmeta, &err),
       &err);
    nd_safetensors_free(&st);
}

typedef struct meta_edit {
    const char *key, *value;
} meta_edit;

static void set_meta(nd_safetensors *st, void *ctx) {
    const meta_edit *e = ctx;
    for (int i = 0; i < st->nmeta; i++)
        if (strcmp(st->meta_keys[i], e->key) == 0) {
            free(st->meta_values[i]);
            st->meta_values[i] = strdup(e->value);
        }
}

static void drop_first_tensor(nd_safetensors *st, void *ctx) {
    (void)ctx;
    free(st->names[0]);
    nd_free(st->tensors[0]);
    memmove(st->names, st->names + 1, (size_t)(st->n - 1) * sizeof *st->names);
    memmove(st->tensors, st->tensors + 1, (size_t)(st->n - 1) * sizeof *st->tensors);
    st->n--;
}

static void rename_first_tensor(nd_safetensors *st, void *ctx) {
    free(st->names[0]);
    st->names[0] = strdup(ctx);
}

static void reshape_first_tensor(nd_safetensors *st, void *ctx) {
    (void)ctx;
    nd_tensor *t = st->tensors[0];
    nd_tensor *r = nd_persist(nd_reshape(t, (int64_t[]){nd_numel(t)}, 1));
    nd_tensor *c = nd_persist(nd_contiguous(r));
    nd_free(r);
    nd_free(t);
    st->tensors[0] = c;
}

static void checkpoint_seeds(void) {
    begin("checkpoint");
    fz_model m;
    fz_model_new(&m);
    nd_error err;
    nd_checkpoint full = {.model = m.model, .optimizer = m.adamw, .ema = m.ema, .rng = &m.rng,
                          .step = 42, .config = "{\"data\": \"moons\", \"lr\": 0.001}"};
    ok(nd_checkpoint_save(seed_path("valid-adamw-ema-rng"), &full, &err), &err);
    nd_checkpoint alone = {.model = m.model};
    ok(nd_checkpoint_save(seed_path("valid-model-alone"), &alone, &err), &err);
    nd_checkpoint sgd = {.model = m.model, .optimizer = m.sgd, .rng = &m.rng, .step = 3,
                         .config = "a config longer than sixteen bytes"};
    ok(nd_checkpoint_save(seed_path("valid-sgd-rng"), &sgd, &err), &err);
    fz_model_free(&m);

    const char *v = "valid-adamw-ema-rng";
    static const struct {
        const char *name, *key, *value;
    } metas[] = {
        {"bad-step-fraction", "step", "1.5"},
        {"bad-step-negative", "step", "-1"},
        {"bad-step-nan", "step", "nan"},
        {"bad-step-space", "step", " 5"},
        {"bad-step-tab", "step", "\t5"},
        {"bad-step-plus", "step", "+5"},
        {"bad-step-hex", "step", "0x10"},
        {"bad-step-2^63", "step", "9223372036854775808"},
        {"bad-step-2^64", "step", "18446744073709551616"},
        {"bad-step-empty", "step", ""},
        {"bad-optimizer-steps-exponent", "optimizer.steps", "1e3"},
        {"bad-optimizer-kind", "optimizer.kind", "sgd"},
        {"bad-ema-decay-nan", "ema.decay", "nan"},
        {"bad-ema-decay-other", "ema.decay", "0.99"},
        {"valid-ema-decay-as-float", "ema.decay", "0.999000013"},
        {"bad-ema-updates-negative", "ema.updates", "-3"},
        {"bad-rng-stream-2^32", "rng.stream", "4294967296"},
        {"bad-rng-seed-2^64", "rng.seed", "18446744073709551616"},
        {"bad-rng-offset-fraction", "rng.offset", "3.0"},
        {"bad-format", "format", "nanodiff checkpoint 2"},
    };
    for (size_t i = 0; i < sizeof metas / sizeof *metas; i++) {
        meta_edit e = {metas[i].key, metas[i].value};
        edit_checkpoint(v, metas[i].name, set_meta, &e);
    }
    edit_checkpoint(v, "bad-missing-tensor", drop_first_tensor, NULL);
    edit_checkpoint(v, "bad-unknown-tensor", rename_first_tensor, "0.weightt");
    edit_checkpoint(v, "bad-unknown-optimizer-tensor", rename_first_tensor, "optimizer.x");
    edit_checkpoint(v, "bad-wrong-shape", reshape_first_tensor, NULL);
    size_t n;
    unsigned char *f = get(v, &n);
    put("bad-truncated", f, n - 3);
    fz_put_le64(f, fz_le64(f) + 1000);
    put("bad-header-length-beyond-file", f, n);
    free(f);
}

/* ---- DEFLATE and gzip ---------------------------------------------------------- */

static void gzip_of(const char *name, const void *data, size_t n, int level, unsigned flags) {
    buf b = {0};
    unsigned char head[10] = {0x1f, 0x8b, 8, (unsigned char)flags, 0, 0, 0, 0, 0, 3};
    add(&b, head, 10);
    if (flags & 4) add(&b, "\x04\x00xy\x00\x01", 6);
    if (flags & 8) add(&b, "name.bin", 9);
    if (flags & 16) add(&b, "a comment", 10);
    if (flags & 2) {
        unsigned char crc[2];
        uint32_t c = nd_crc32(ND_CRC32_INIT, b.p, b.n);
        crc[0] = (unsigned char)c;
        crc[1] = (unsigned char)(c >> 8);
        add(&b, crc, 2);
    }
    nd_bytes z = {0};
    nd_deflate(data, n, level, &z);
    add(&b, z.data, z.size);
    nd_bytes_free(&z);
    unsigned char tail[8];
    fz_put_le32(tail, nd_crc32(ND_CRC32_INIT, data, n));
    fz_put_le32(tail + 4, (uint32_t)n);
    add(&b, tail, 8);
    put(name, b.p, b.n);
    free(b.p);
}

static void inflate_seeds(void) {
    begin("inflate");
    for (size_t i = 0; i < sizeof deflate_vectors / sizeof *deflate_vectors; i++) {
        const struct deflate_vector *d = &deflate_vectors[i];
        if (d->zn > 4096) continue; /* a large input slows every run */
        char name[64];
        snprintf(name, sizeof name, "zlib-%s", d->name);
        put(name, d->z, d->zn);
        snprintf(name, sizeof name, "zlib-%s-truncated", d->name);
        put(name, d->z, d->zn / 2);
    }
    put("gzip-plain", gz_plain, sizeof gz_plain);
    put("gzip-flags", gz_flags, sizeof gz_flags);
    put("gzip-two-members", gz_two, sizeof gz_two);
    put("gzip-empty", gz_empty, sizeof gz_empty);
    nd_bytes z = {0};
    nd_deflate(text_plain, 600, 1, &z);
    put("deflate-level1", z.data, z.size);
    z.data[0] |= 6; /* block type 3 */
    put("bad-block-type-3", z.data, z.size);
    nd_bytes_free(&z);
    nd_deflate(text_plain, 100, 0, &z);
    put("deflate-level0", z.data, z.size);
    z.data[1] ^= 1; /* LEN no longer ~NLEN */
    put("bad-stored-length", z.data, z.size);
    nd_bytes_free(&z);
    gzip_of("gzip-level1-all-flags", text_plain, 300, 1, 2 | 4 | 8 | 16);
    gzip_of("gzip-level0", text_plain, 50, 0, 0);
    gzip_of("bad-gzip-reserved-flag", text_plain, 50, 1, 32);
    size_t n;
    unsigned char *f = get("gzip-level0", &n);
    f[n - 5] ^= 1; /* the CRC */
    put("bad-gzip-crc", f, n);
    f[n - 5] ^= 1;
    f[n - 1] ^= 1; /* ISIZE */
    put("bad-gzip-isize", f, n);
    f[0] = 0x1e;
    put("bad-gzip-magic", f, n);
    free(f);
}

/* ---- IDX ----------------------------------------------------------------------- */

/* An IDX file: magic, sizes, then bytes (count of them). */
static void idx_file(buf *b, unsigned magic, const uint32_t *sizes, int ndim, size_t count) {
    unsigned char m[4] = {0, 0, (unsigned char)(magic >> 8), (unsigned char)magic};
    add(b, m, 4);
    for (int d = 0; d < ndim; d++) {
        unsigned char s[4] = {(unsigned char)(sizes[d] >> 24), (unsigned char)(sizes[d] >> 16),
                              (unsigned char)(sizes[d] >> 8), (unsigned char)sizes[d]};
        add(b, s, 4);
    }
    for (size_t i = 0; i < count; i++) {
        unsigned char v = (unsigned char)(i * 37 + 11);
        add(b, &v, 1);
    }
}

static void gzip_buf(buf *b) {
    nd_bytes z = {0};
    nd_deflate(b->p, b->n, 1, &z);
    buf g = {0};
    static const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    add(&g, head, 10);
    add(&g, z.data, z.size);
    unsigned char tail[8];
    fz_put_le32(tail, nd_crc32(ND_CRC32_INIT, b->p, b->n));
    fz_put_le32(tail + 4, (uint32_t)b->n);
    add(&g, tail, 8);
    nd_bytes_free(&z);
    free(b->p);
    *b = g;
}

/* An input of the idx target: options, then images (and labels). */
static void idx_input(const char *name, int pad, const buf *images, const buf *labels) {
    buf in = {0};
    unsigned char opt = (unsigned char)((labels ? 1 : 0) | pad << 1);
    add(&in, &opt, 1);
    if (labels) {
        unsigned char len[2] = {(unsigned char)images->n, (unsigned char)(images->n >> 8)};
        add(&in, len, 2);
    }
    add(&in, images->p, images->n);
    if (labels) add(&in, labels->p, labels->n);
    put(name, in.p, in.n);
    free(in.p);
}

static void idx_seeds(void) {
    begin("idx");
    uint32_t im[3] = {3, 4, 5}, lb[1] = {3}, lb2[1] = {2};
    buf images = {0}, labels = {0}, labels2 = {0}, gz = {0}, gzl = {0};
    idx_file(&images, 0x803, im, 3, 60);
    idx_file(&labels, 0x801, lb, 1, 3);
    idx_file(&labels2, 0x801, lb2, 1, 2);
    idx_input("images", 0, &images, NULL);
    idx_input("images-pad-2", 2, &images, NULL);
    idx_input("images-labels", 1, &images, &labels);
    add(&gz, images.p, images.n);
    gzip_buf(&gz);
    add(&gzl, labels.p, labels.n);
    gzip_buf(&gzl);
    idx_input("gzip-images-labels", 2, &gz, &gzl);
    idx_input("bad-count-mismatch", 0, &images, &labels2);
    idx_input("bad-labels-as-images", 0, &labels, NULL);
    buf t = {0};
    add(&t, images.p, images.n - 1);
    idx_input("bad-truncated", 0, &t, &labels);
    add(&t, images.p + images.n - 1, 1);
    add(&t, "x", 1);
    idx_input("bad-extra-byte", 0, &t, NULL);
    t.p[2] = 0x09;
    idx_input("bad-element-type", 0, &t, NULL);
    t.p[0] = 1;
    idx_input("bad-magic", 0, &t, NULL);
    free(t.p);
    uint32_t none[3] = {0, 4, 5}, huge[3] = {0xffffffffu, 0xffffffffu, 0xffffffffu};
    buf e = {0}, h = {0};
    idx_file(&e, 0x803, none, 3, 0);
    idx_input("bad-no-images", 0, &e, NULL);
    idx_file(&h, 0x803, huge, 3, 4);
    idx_input("bad-huge-sizes", 0, &h, NULL);
    gz.p[gz.n - 6] ^= 1; /* the CRC */
    idx_input("bad-gzip-crc", 0, &gz, NULL);
    free(images.p);
    free(labels.p);
    free(labels2.p);
    free(gz.p);
    free(gzl.p);
    free(e.p);
    free(h.p);
}

/* ---- CIFAR-10 ---------------------------------------------------------------- */

#define RECORD 3073

static void records(buf *b, int n, int first_label) {
    for (int r = 0; r < n; r++) {
        unsigned char rec[RECORD];
        rec[0] = (unsigned char)((first_label + r) % 10);
        for (int j = 1; j < RECORD; j++) rec[j] = (unsigned char)(j * 7 + r);
        add(b, rec, RECORD);
    }
}

static void cifar_input(const char *name, int nfiles, unsigned spec1, unsigned spec2,
                        const buf *files) {
    buf in = {0};
    unsigned char opt[3] = {(unsigned char)(nfiles - 1), (unsigned char)spec1,
                            (unsigned char)spec2};
    add(&in, opt, 3);
    add(&in, files->p, files->n);
    put(name, in.p, in.n);
    free(in.p);
}

static void cifar_seeds(void) {
    begin("cifar");
    buf one = {0}, three = {0};
    records(&one, 2, 0);
    records(&three, 3, 4);
    cifar_input("one-file", 1, 0, 0, &one);
    cifar_input("two-files", 2, 1, 0, &three);       /* 1 record, then 2 */
    cifar_input("three-files", 3, 1, 1, &three);     /* 1, 1, 1 */
    cifar_input("bad-partial-record", 2, 0x91, 0, &three); /* 1 record + 1 byte, then the rest */
    cifar_input("bad-empty-file", 3, 0, 1, &three);
    three.p[RECORD] = 10; /* the second record's label */
    cifar_input("bad-label-10", 1, 0, 0, &three);
    buf short_one = {0};
    add(&short_one, one.p, RECORD - 1);
    cifar_input("bad-short", 1, 0, 0, &short_one);
    free(one.p);
    free(three.p);
    free(short_one.p);
}

/* ---- CSV --------------------------------------------------------------------- */

static void csv_seeds(void) {
    begin("csv");
    put_str("points", "0.5,1\n-2.25,3e2\n");
    put_str("header-comments", "# made by hand\nx, y, z\n\n1,2,3\r\n  4 ,\t5, 6\n# end\n7,8,9");
    put_str("one-column", "1\n2\n3\n");
    put_str("bad-fields", "1,2\n3\n");
    put_str("bad-empty-field", "1,,2\n");
    put_str("bad-nan", "1,nan\n");
    put_str("bad-inf", "1,inf\n");
    put_str("bad-too-large", "1,1e39\n");
    put_str("bad-too-large-double", "1,1e400\n");
    put_str("bad-word", "1,2\nx,3\n");
    put_str("bad-header-only", "a,b\n");
    put_str("bad-empty", "");
    put("bad-nul", "1,2\0\n", 5);
}

/* ---- npy --------------------------------------------------------------------- */

static void npy_raw(const char *name, int major, const char *header, const void *data,
                    size_t ndata) {
    buf b = {0};
    unsigned char pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};
    size_t hl = strlen(header);
    if (major == 1) {
        pre[8] = (unsigned char)hl;
        pre[9] = (unsigned char)(hl >> 8);
        add(&b, pre, 10);
    } else {
        fz_put_le32(pre + 8, (uint32_t)hl);
        add(&b, pre, 12);
    }
    add(&b, header, hl);
    add(&b, data, ndata);
    put(name, b.p, b.n);
    free(b.p);
}

static void npy_seeds(void) {
    begin("npy");
    nd_error err;
    nd_tensor *t[] = {
        nd_persist(nd_full(NULL, 0, 2.5f)),
        nd_persist(nd_from_buffer(some, ND_SHAPE(5))),
        nd_persist(nd_from_buffer(some, ND_SHAPE(2, 3))),
        nd_persist(nd_empty(ND_SHAPE(0, 4))),
        nd_persist(nd_from_buffer(some, ND_SHAPE(1, 1, 1, 1, 1, 1, 1, 2))),
    };
    const char *names[] = {"saved-scalar", "saved-5", "saved-2x3", "saved-0x4", "saved-8-dims"};
    for (int i = 0; i < 5; i++) {
        ok(nd_npy_save(seed_path(names[i]), t[i], &err), &err);
        nd_free(t[i]);
    }
    const double d[3] = {1.5, -1e300, 3.0};
    npy_raw("f8", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n", d, 24);
    npy_raw("version-2", 2, "{\"shape\": (2,), \"fortran_order\": False, \"descr\": \"<f4\"}\n",
            some, 8);
    npy_raw("shape-long", 1, "{'descr':'<f4','fortran_order':False,'shape':(2L,1L)}", some, 8);
    npy_raw("bad-fortran", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }\n",
            some, 8);
    npy_raw("bad-big-endian", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n",
            some, 8);
    npy_raw("bad-shape-number", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2), }\n",
            some, 8);
    npy_raw("bad-shape-negative", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }\n",
            some, 8);
    npy_raw("bad-shape-fraction", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,), }\n",
            some, 8);
    npy_raw("bad-shape-huge", 1, "{'descr': '<f4', 'fortran_order': False, "
            "'shape': (4294967296, 4294967296, 0), }\n", some, 0);
    npy_raw("bad-shape-9-dims", 1, "{'descr': '<f4', 'fortran_order': False, "
            "'shape': (1,1,1,1,1,1,1,1,1), }\n", some, 4);
    npy_raw("bad-key-twice", 1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
            "'shape': (1,), }\n", some, 4);
    npy_raw("bad-missing-key", 1, "{'descr': '<f4', 'shape': (1,), }\n", some, 4);
    npy_raw("bad-truncated-data", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n",
            some, 11);
    npy_raw("bad-extra-data", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n",
            some, 13);
    size_t n;
    unsigned char *f = get("saved-2x3", &n);
    put("bad-truncated-header", f, 40);
    f[8] = 0xff;
    f[9] = 0xff;
    put("bad-header-length-beyond-file", f, n);
    f[6] = 3;
    put("bad-version", f, n);
    f[1] = 'n';
    put("bad-magic", f, n);
    free(f);
}

/* ---- dictionaries: tokens libFuzzer splices into inputs ----------------- */

/* DIR/<name>.dict, one token a line in libFuzzer's syntax. */
static void dict(const char *name, const char *const *tokens, size_t n) {
    char p[4200];
    snprintf(p, sizeof p, "%s/%s.dict", root, name);
    FILE *f = fopen(p, "w");
    if (!f) exit(1);
    for (size_t i = 0; i < n; i++) {
        fputc('"', f);
        for (const unsigned char *c = (const unsigned char *)tokens[i]; *c; c++) {
            if (*c == '"' || *c == '\\' || *c < 0x20 || *c >= 0x7f) fprintf(f, "\\x%02x", *c);
            else fputc(*c, f);
        }
        fputs("\"\n", f);
    }
    if (fclose(f) != 0) exit(1);
}

static void dictionaries(void) {
    static const char *const json[] = {
        "\"dtype\"", "\"F32\"", "\"F64\"", "\"shape\"", "\"data_offsets\"",
        "\"__metadata__\"", "{\"", "\":", "\",\"", "[0,0]", "[0,4]", "[]", "[1]", "\\u0000",
        "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\\"", "\xc3\xa9", "\xf0\x9f\x98\x80",
        "\xed\xa0\x80", "\xc0\xaf", "1e2", "1.5", "-1", "-0", "NaN", "Infinity", "true",
        "null", "18446744073709551615", "18446744073709551616", "9223372036854775807",
        "2305843009213693951", "4294967296"};
    dict("json", json, sizeof json / sizeof *json);
    dict("safetensors", json, sizeof json / sizeof *json);
    static const char *const ck[] = {
        "\"dtype\":\"F32\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"",
        "\"format\"", "\"nanodiff checkpoint 1\"", "\"step\"", "\"optimizer.kind\"",
        "\"adamw\"", "\"sgd\"", "\"optimizer.steps\"", "\"ema.decay\"", "\"0.999\"",
        "\"ema.updates\"", "\"rng.seed\"", "\"rng.stream\"", "\"rng.offset\"", "\"config\"",
        "\"0.weight\"", "\"0.bias\"", "\"1.weight\"", "\"optimizer.0.weight.exp_avg\"",
        "\"optimizer.0.bias.exp_avg_sq\"", "\"optimizer.1.weight.momentum_buffer\"",
        "\"ema.0.weight\"", "18446744073709551615", "4294967295", "9223372036854775807",
        "9223372036854775808", "1.5", "-1", "nan", " 1", "01"};
    dict("checkpoint", ck, sizeof ck / sizeof *ck);
    static const char *const npy[] = {
        "\x93NUMPY", "'descr'", "'<f4'", "'<f8'", "'>f4'", "'fortran_order'", "False",
        "True", "'shape'", "(1,)", "()", "(2, 3)", "L", "9223372036854775807",
        "2305843009213693952", "{", "}", ":", ", "};
    dict("npy", npy, sizeof npy / sizeof *npy);
    static const char *const csv[] = {
        "nan", "inf", "-inf", "1e39", "1e400", "3.4028235e38", "1e-46", "0x1p3", "# ", ",",
        "\r\n", " \t", "x,y", "-0", "+1", ".5", "5.", "1e"};
    dict("csv", csv, sizeof csv / sizeof *csv);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR\n"
                        "writes the fuzz targets' seed corpora into DIR/<target>/\n");
        return 2;
    }
    snprintf(root, sizeof root, "%s", argv[1]);
    make_dir(root);
    safetensors_seeds();
    json_seeds();
    checkpoint_seeds();
    inflate_seeds();
    idx_seeds();
    cifar_seeds();
    csv_seeds();
    npy_seeds();
    dictionaries();
    if (nd_mem_live() != 0) {
        fprintf(stderr, "make_seeds: %zu bytes of the library left\n", nd_mem_live());
        return 1;
    }
    return 0;
}
