/* Saving tensors as a safetensors file (the format: safetensors.h):
 * nd_safetensors_save checks its arguments, builds the JSON header and
 * writes a temporary file that it renames over the target, so the target
 * is always either the old file or the complete new one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "json.h"
#include "safetensors.h"

/* ---- little-endian bytes, whatever the host's order -------------------- */

static void put_u64(unsigned char *b, uint64_t v) {
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)(v >> (8 * k));
}

static void put_f32(unsigned char *b, float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    for (int k = 0; k < 4; k++) b[k] = (unsigned char)(u >> (8 * k));
}

/* ---- saving: checks ---------------------------------------------------- */

#define SAVE "safetensors_save"

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A string that appears twice in s[0..n), or NULL. */
static const char *find_duplicate(const char *const *s, int n) {
    if (n < 2) return NULL;
    size_t bytes = (size_t)n * sizeof *s;
    const char **sorted = nd__alloc(bytes, SAVE);
    memcpy(sorted, s, bytes);
    qsort(sorted, (size_t)n, sizeof *sorted, compare_strings);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) dup = sorted[i];
    nd__release(sorted, bytes);
    return dup;
}

static void check_name(const char *s, int i) {
    if (!s) nd_fatal(SAVE, "name %d is NULL", i);
    char why[64];
    if (!nd__safetensors_name_ok(s, why, sizeof why)) nd_fatal(SAVE, "name %d %s", i, why);
    if (strcmp(s, META_KEY) == 0)
        nd_fatal(SAVE, "name %d, '%s', is reserved for the metadata", i, s);
}

static void check_meta(const char *s, const char *what, int i) {
    if (!s) nd_fatal(SAVE, "metadata %s %d is NULL", what, i);
    if (!nd__json_utf8(s, strlen(s)))
        nd_fatal(SAVE, "metadata %s %d is not valid UTF-8", what, i);
}

static void check_save_args(const char *path, const char *const *names,
                            const nd_tensor *const *tensors, int n,
                            const char *const *keys, const char *const *values,
                            int nmeta) {
    if (!path) nd_fatal(SAVE, "path is NULL");
    if (n < 0) nd_fatal(SAVE, "n is %d; it must be >= 0", n);
    if (nmeta < 0) nd_fatal(SAVE, "nmeta is %d; it must be >= 0", nmeta);
    if (n > 0 && !names) nd_fatal(SAVE, "names is NULL");
    if (n > 0 && !tensors) nd_fatal(SAVE, "tensors is NULL");
    if (nmeta > 0 && !keys) nd_fatal(SAVE, "meta_keys is NULL");
    if (nmeta > 0 && !values) nd_fatal(SAVE, "meta_values is NULL");
    for (int i = 0; i < n; i++) {
        check_name(names[i], i);
        if (!tensors[i]) nd_fatal(SAVE, "tensor %d ('%s') is NULL", i, names[i]);
    }
    for (int i = 0; i < nmeta; i++) {
        check_meta(keys[i], "key", i);
        check_meta(values[i], "value", i);
    }
    const char *dup = find_duplicate(names, n);
    if (dup) nd_fatal(SAVE, "name '%s' appears twice", dup);
    dup = find_duplicate(keys, nmeta);
    if (dup) nd_fatal(SAVE, "metadata key '%s' appears twice", dup);
}

/* ---- saving: the header ------------------------------------------------ */

typedef struct text {
    char *p;
    size_t n, cap;
    bool failed; /* out of memory */
} text;

static void put(text *t, const char *s, size_t n) {
    if (t->failed) return;
    if (t->n + n > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->n + n) cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
}

static void put_str(text *t, const char *s) { put(t, s, strlen(s)); }

static void put_json_string(text *t, const char *s) {
    put(t, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            put(t, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            put(t, esc, 6);
        } else {
            put(t, (const char *)p, 1);
        }
    }
    put(t, "\"", 1);
}

static void put_int(text *t, uint64_t v) {
    char s[24];
    snprintf(s, sizeof s, "%llu", (unsigned long long)v);
    put_str(t, s);
}

/* {"__metadata__":{...},"name":{"dtype":"F32","shape":[..],"data_offsets":[b,e]},...}
 * padded with spaces so that the data section starts 8-byte aligned. */
static void build_header(text *t, const char *const *names,
                         const nd_tensor *const *tensors, int n,
                         const char *const *keys, const char *const *values,
                         int nmeta) {
    put_str(t, "{");
    if (nmeta > 0) {
        put_str(t, "\"" META_KEY "\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) put_str(t, ",");
            put_json_string(t, keys[i]);
            put_str(t, ":");
            put_json_string(t, values[i]);
        }
        put_str(t, n ? "}," : "}");
    }
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const nd_tensor *x = tensors[i];
        if (i) put_str(t, ",");
        put_json_string(t, names[i]);
        put_str(t, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < x->ndim; d++) {
            if (d) put_str(t, ",");
            put_int(t, (uint64_t)x->shape[d]);
        }
        put_str(t, "],\"data_offsets\":[");
        put_int(t, offset);
        put_str(t, ",");
        offset += (uint64_t)nd_numel(x) * 4;
        put_int(t, offset);
        put_str(t, "]}");
    }
    put_str(t, "}");
    while ((8 + t->n) % 8) put_str(t, " ");
}

/* ---- saving: the file -------------------------------------------------- */

typedef struct writer {
    int fd;
    size_t n;
    unsigned char buf[16384];
} writer;

/* 0, or an errno value. */
static int flush(writer *w) {
    int e = nd_write_all(w->fd, w->buf, w->n);
    w->n = 0;
    return e;
}

static int write_bytes(writer *w, const void *p, size_t n) {
    const unsigned char *b = p;
    while (n > 0) {
        size_t k = sizeof w->buf - w->n < n ? sizeof w->buf - w->n : n;
        memcpy(w->buf + w->n, b, k);
        w->n += k;
        b += k;
        n -= k;
        if (w->n == sizeof w->buf) {
            int e = flush(w);
            if (e) return e;
        }
    }
    return 0;
}

/* x's elements in row-major order, whatever its strides. */
static int write_tensor(writer *w, const nd_tensor *x) {
    int64_t n = nd_numel(x);
    if (n == 0) return 0;
    int last = x->ndim - 1;
    int64_t inner = last >= 0 ? x->shape[last] : 1;
    int64_t step = last >= 0 ? x->strides[last] : 0;
    int64_t index[ND_MAX_DIMS] = {0};
    const float *base = nd_data(x);
    for (int64_t row = 0; row < n / inner; row++) {
        int64_t offset = 0;
        for (int d = 0; d < last; d++) offset += index[d] * x->strides[d];
        for (int64_t i = 0; i < inner; i++) {
            if (sizeof w->buf - w->n < 4) {
                int e = flush(w);
                if (e) return e;
            }
            put_f32(w->buf + w->n, base[offset + i * step]);
            w->n += 4;
        }
        for (int d = last - 1; d >= 0 && ++index[d] == x->shape[d]; d--) index[d] = 0;
    }
    return 0;
}

/* The whole file into fd, made durable; 0 or an errno value. */
typedef struct {
    const text *header;
    const nd_tensor *const *tensors;
    int n;
} save_job;

/* The file's bytes into fd (nd_write_file_atomic makes it durable) */
static int save_file(int fd, void *ctx) {
    const save_job *job = ctx;
    const text *header = job->header;
    const nd_tensor *const *tensors = job->tensors;
    int n = job->n;
    writer *w = malloc(sizeof *w);
    if (!w) return ENOMEM;
    w->fd = fd;
    w->n = 0;
    unsigned char len[8];
    put_u64(len, header->n);
    int e = write_bytes(w, len, 8);
    if (!e) e = write_bytes(w, header->p, header->n);
    for (int i = 0; i < n && !e; i++) e = write_tensor(w, tensors[i]);
    if (!e) e = flush(w);
    free(w);
    return e;
}

int nd_safetensors_save(const char *path, const char *const *names,
                        const nd_tensor *const *tensors, int n,
                        const char *const *meta_keys,
                        const char *const *meta_values, int nmeta,
                        nd_error *err) {
    check_save_args(path, names, tensors, n, meta_keys, meta_values, nmeta);
    text header = {0};
    build_header(&header, names, tensors, n, meta_keys, meta_values, nmeta);
    if (header.failed) {
        free(header.p);
        return nd_error_set(err, "%s: out of memory building the header", path);
    }
    save_job job = {&header, tensors, n};
    int rc = nd_write_file_atomic(path, save_file, &job, err);
    free(header.p);
    return rc;
}
