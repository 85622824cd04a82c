/* Loading a safetensors file (the format: safetensors.h): nd_safetensors_load,
 * then lookups in what it loaded and freeing it. Loading trusts nothing in
 * the file: every size is checked against the file's size before anything
 * is allocated, and the whole header is validated before a tensor is
 * created. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <io.h>
#else
#include <unistd.h>
#endif

#include "internal.h"
#include "json.h"
#include "safetensors.h"

/* The reference reader's limit; real headers are a few hundred KB. */
#define HEADER_MAX 100000000u
/* A valid header nests 3 deep; this only bounds the checker's recursion. */
#define JSON_MAX_DEPTH 64

/* ---- little-endian bytes, whatever the host's order -------------------- */

static uint64_t get_u64(const unsigned char *b) {
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) v = v << 8 | b[k];
    return v;
}

/* In place: n floats stored as little-endian bytes become host floats. A
 * no-op on little-endian hosts, kept unconditional so that one path is
 * tested everywhere. */
static void decode_f32(float *x, int64_t n) {
    const unsigned char *b = (const unsigned char *)x;
    for (int64_t i = 0; i < n; i++) {
        const unsigned char *q = b + 4 * i;
        uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                     (uint32_t)q[3] << 24;
        memcpy(&x[i], &u, sizeof u);
    }
}

/* ---- loading: the header ----------------------------------------------- */

typedef struct entry {
    char *name;
    int ndim;
    int64_t shape[ND_MAX_DIMS];
    uint64_t begin, end;
    int order; /* in the header, so that sorting is deterministic */
} entry;


typedef struct pair {
    char *key, *value;
} pair;

typedef struct header {
    entry *e;
    int n, cap;
    pair *meta;
    int nmeta, metacap;
    bool has_meta;
} header;

typedef struct reader {
    const char *path;
    nd_error *err;
    nd__json j;
    uint64_t data_size; /* bytes after the header */
} reader;

/* The message quotes strings of the file: their control characters are
 * shown as '?', so that none reaches the terminal or breaks the line. */
ND_PRINTF(2, 3) static int bad(reader *r, const char *fmt, ...) {
    char what[sizeof r->err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    for (unsigned char *c = (unsigned char *)what; *c; c++)
        if (*c < 0x20 || *c == 0x7f) *c = '?';
    return nd_error_set(r->err, "%s: %s", r->path, what);
}

static int out_of_memory(reader *r) { return bad(r, "out of memory"); }

static void free_header(header *h) {
    for (int i = 0; i < h->n; i++) free(h->e[i].name);
    for (int i = 0; i < h->nmeta; i++) {
        free(h->meta[i].key);
        free(h->meta[i].value);
    }
    free(h->e);
    free(h->meta);
    memset(h, 0, sizeof *h);
}

/* Room for one more element in *p (n used of *cap). */
static bool grow(void **p, int *cap, int n, size_t size) {
    if (n < *cap) return true;
    int c = *cap ? 2 * *cap : 16;
    void *q = realloc(*p, (size_t)c * size);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

/* A string at the cursor, NULs refused (C strings cannot hold them); what
 * names it in the message. */
static int read_string(reader *r, char **s, const char *what) {
    size_t len;
    *s = nd__json_string(&r->j, &len);
    if (!*s) return out_of_memory(r);
    if (strlen(*s) == len) return ND_OK;
    int rc = bad(r, "%s '%s' contains a NUL character (\\u0000)", what, *s);
    free(*s);
    *s = NULL;
    return rc;
}

bool nd__safetensors_name_ok(const char *s, char *why, size_t size) {
    if (!*s) {
        snprintf(why, size, "is empty");
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) {
            snprintf(why, size, "contains the control character 0x%02x", *p);
            return false;
        }
    if (!nd__json_utf8(s, strlen(s))) {
        snprintf(why, size, "is not valid UTF-8");
        return false;
    }
    return true;
}

/* A key and its ':' (the JSON is already checked, so they are there). */
static int read_key(reader *r, char **s, const char *what) {
    nd__json_peek(&r->j);
    if (read_string(r, s, what)) return ND_ERR;
    nd__json_peek(&r->j);
    nd__json_advance(&r->j);
    return ND_OK;
}

/* At '{' or '[': consumes it; true when the container is empty (and
 * consumes its end too). */
static bool open_container(reader *r) {
    nd__json_advance(&r->j);
    char b = nd__json_peek(&r->j);
    if (b == '}' || b == ']') nd__json_advance(&r->j);
    return b == '}' || b == ']';
}

/* Consumes ',' or the closing bracket; true at the closing one. */
static bool at_end(reader *r) {
    char b = nd__json_peek(&r->j);
    nd__json_advance(&r->j);
    return b == '}' || b == ']';
}

static const char *describe(reader *r, char *buf) {
    return nd__json_describe(&r->j, buf, 40);
}

static int parse_metadata(reader *r, header *h) {
    char found[40];
    if (h->has_meta) return bad(r, "key '" META_KEY "' appears twice in the header");
    h->has_meta = true;
    if (nd__json_peek(&r->j) != '{')
        return bad(r, META_KEY " must be an object of strings, not %s",
                   describe(r, found));
    if (open_container(r)) return ND_OK;
    do {
        if (!grow((void **)&h->meta, &h->metacap, h->nmeta, sizeof *h->meta))
            return out_of_memory(r);
        pair *m = &h->meta[h->nmeta];
        if (read_key(r, &m->key, META_KEY " key")) return ND_ERR;
        h->nmeta++;
        m->value = NULL;
        if (nd__json_peek(&r->j) != '"')
            return bad(r, META_KEY " value of '%s' must be a string, not %s", m->key,
                       describe(r, found));
        if (read_string(r, &m->value, META_KEY " value")) return ND_ERR;
    } while (!at_end(r));
    return ND_OK;
}

static const char *const dtypes[] = {"BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3",
                                     "I16",  "U16", "F16", "BF16",    "I32",
                                     "U32",  "F32", "F64", "I64",     "U64"};

static int parse_dtype(reader *r, const entry *e) {
    char found[40], *dtype;
    if (nd__json_peek(&r->j) != '"')
        return bad(r, "tensor '%s': dtype must be a string, not %s", e->name,
                   describe(r, found));
    if (read_string(r, &dtype, "dtype")) return ND_ERR;
    bool known = false;
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        known = known || strcmp(dtype, dtypes[i]) == 0;
    int rc = ND_OK;
    if (!known) rc = bad(r, "tensor '%s': unknown dtype '%s'", e->name, dtype);
    else if (strcmp(dtype, "F32") != 0)
        rc = bad(r, "tensor '%s': dtype %s is not supported; nanodiff reads F32 only",
                 e->name, dtype);
    free(dtype);
    return rc;
}

/* One integer of an array (shape or data_offsets) into *v. */
static int read_uint(reader *r, const entry *e, const char *field, uint64_t *v) {
    char found[40];
    const char *text = describe(r, found);
    char b = nd__json_peek(&r->j);
    int kind = b == '-' || (b >= '0' && b <= '9') ? nd__json_uint(&r->j, v)
                                                  : ND__JSON_NOT_UINT;
    if (kind == ND__JSON_NOT_UINT)
        return bad(r, "tensor '%s': %s must hold non-negative integers, not %s",
                   e->name, field, text);
    if (kind == ND__JSON_TOO_LARGE || *v > INT64_MAX)
        return bad(r, "tensor '%s': %s value %s is too large", e->name, field, text);
    return ND_OK;
}

static int parse_shape(reader *r, entry *e) {
    char found[40];
    if (nd__json_peek(&r->j) != '[')
        return bad(r, "tensor '%s': shape must be an array, not %s", e->name,
                   describe(r, found));
    if (open_container(r)) return ND_OK;
    do {
        if (e->ndim == ND_MAX_DIMS)
            return bad(r, "tensor '%s': shape has more than %d dimensions", e->name,
                       ND_MAX_DIMS);
        uint64_t v;
        if (read_uint(r, e, "shape", &v)) return ND_ERR;
        e->shape[e->ndim++] = (int64_t)v;
    } while (!at_end(r));
    /* Zero sizes do not excuse an overflow: nd_empty refuses those too. */
    int64_t n = 1;
    for (int d = 0; d < e->ndim; d++) {
        if (e->shape[d] > 0 && n > INT64_MAX / 4 / e->shape[d]) {
            char s[ND_SHAPE_STR_LEN];
            return bad(r, "tensor '%s': shape %s has too many elements", e->name,
                       nd_shape_str(e->shape, e->ndim, s));
        }
        if (e->shape[d] > 0) n *= e->shape[d];
    }
    return ND_OK;
}

static int parse_offsets(reader *r, entry *e) {
    char found[40];
    if (nd__json_peek(&r->j) != '[')
        return bad(r, "tensor '%s': data_offsets must be an array, not %s", e->name,
                   describe(r, found));
    int count = 0;
    uint64_t v[2] = {0, 0};
    if (!open_container(r)) do {
            uint64_t x;
            if (read_uint(r, e, "data_offsets", &x)) return ND_ERR;
            if (count < 2) v[count] = x;
            count++;
        } while (!at_end(r));
    if (count != 2)
        return bad(r, "tensor '%s': data_offsets must be [begin, end]; it has %d %s",
                   e->name, count, count == 1 ? "entry" : "entries");
    e->begin = v[0];
    e->end = v[1];
    return ND_OK;
}

/* The checks that need the whole entry. */
static int check_entry(reader *r, const entry *e, unsigned seen) {
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    for (int k = 0; k < 3; k++)
        if (!(seen & 1u << k))
            return bad(r, "tensor '%s': missing field '%s'", e->name, fields[k]);
    unsigned long long b = e->begin, end = e->end;
    if (b > end)
        return bad(r, "tensor '%s': data_offsets [%llu,%llu] end before they begin",
                   e->name, b, end);
    if (end > r->data_size)
        return bad(r, "tensor '%s': data_offsets [%llu,%llu] reach past the end of the "
                   "data section (%llu bytes)", e->name, b, end,
                   (unsigned long long)r->data_size);
    uint64_t need = (uint64_t)nd__prod(e->shape, e->ndim) * 4;
    if (end - b != need) {
        char s[ND_SHAPE_STR_LEN];
        return bad(r, "tensor '%s': data_offsets [%llu,%llu] hold %llu bytes; shape %s "
                   "of F32 needs %llu", e->name, b, end, end - b,
                   nd_shape_str(e->shape, e->ndim, s), (unsigned long long)need);
    }
    return ND_OK;
}

/* One "key": value of the top-level object. */
static int parse_entry(reader *r, header *h) {
    char found[40], *name;
    if (read_key(r, &name, "tensor name")) return ND_ERR;
    if (strcmp(name, META_KEY) == 0) {
        free(name);
        return parse_metadata(r, h);
    }
    if (!grow((void **)&h->e, &h->cap, h->n, sizeof *h->e)) {
        free(name);
        return out_of_memory(r);
    }
    entry *e = &h->e[h->n];
    memset(e, 0, sizeof *e);
    e->name = name;
    e->order = h->n++;
    char why[64];
    if (!nd__safetensors_name_ok(name, why, sizeof why))
        return bad(r, "the name of tensor %d %s", e->order, why);
    if (nd__json_peek(&r->j) != '{')
        return bad(r, "tensor '%s': entry must be an object, not %s", e->name,
                   describe(r, found));
    unsigned seen = 0;
    if (!open_container(r)) do {
            char *field;
            if (read_key(r, &field, "field name")) return ND_ERR;
            int k = strcmp(field, "dtype") == 0          ? 0
                    : strcmp(field, "shape") == 0        ? 1
                    : strcmp(field, "data_offsets") == 0 ? 2
                                                         : -1;
            int rc = ND_OK;
            if (k < 0) rc = bad(r, "tensor '%s': unexpected field '%s'", e->name, field);
            else if (seen & 1u << k)
                rc = bad(r, "tensor '%s': field '%s' appears twice", e->name, field);
            free(field);
            if (rc) return rc;
            seen |= 1u << k;
            rc = k == 0 ? parse_dtype(r, e) : k == 1 ? parse_shape(r, e) : parse_offsets(r, e);
            if (rc) return rc;
        } while (!at_end(r));
    return check_entry(r, e, seen);
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A name that appears twice among n strings at stride bytes apart, or
 * NULL; *dup is set to it. ND_ERR only when out of memory. */
static int duplicate(reader *r, char *const *first, int n, size_t stride,
                     const char **dup) {
    *dup = NULL;
    if (n < 2) return ND_OK;
    char **s = malloc((size_t)n * sizeof *s);
    if (!s) return out_of_memory(r);
    for (int i = 0; i < n; i++)
        s[i] = *(char *const *)((const char *)first + (size_t)i * stride);
    qsort(s, (size_t)n, sizeof *s, compare_names);
    for (int i = 1; i < n && !*dup; i++)
        if (strcmp(s[i - 1], s[i]) == 0) *dup = s[i];
    free(s);
    return ND_OK;
}

static int parse_header(reader *r, header *h) {
    char found[40];
    if (nd__json_peek(&r->j) != '{')
        return bad(r, "the header must be a JSON object, not %s", describe(r, found));
    if (!open_container(r)) do {
            if (parse_entry(r, h)) return ND_ERR;
        } while (!at_end(r));
    const char *dup = NULL;
    if (h->n && duplicate(r, &h->e[0].name, h->n, sizeof *h->e, &dup)) return ND_ERR;
    if (dup) return bad(r, "key '%s' appears twice in the header", dup);
    if (h->nmeta && duplicate(r, &h->meta[0].key, h->nmeta, sizeof *h->meta, &dup))
        return ND_ERR;
    if (dup) return bad(r, META_KEY " key '%s' appears twice", dup);
    return ND_OK;
}

static int compare_offsets(const void *pa, const void *pb) {
    const entry *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return (a->order > b->order) - (a->order < b->order);
}

/* Sorts the entries by offset and checks that they tile the data section:
 * no overlap, no hole, nothing after the last. */
static int check_layout(reader *r, header *h) {
    if (h->n > 0) qsort(h->e, (size_t)h->n, sizeof *h->e, compare_offsets);
    uint64_t at = 0;
    for (int i = 0; i < h->n; i++) {
        const entry *e = &h->e[i];
        if (e->begin > at)
            return bad(r, "bytes %llu..%llu of the data section belong to no tensor",
                       (unsigned long long)at, (unsigned long long)e->begin);
        if (e->begin < at) {
            const entry *p = &h->e[i - 1];
            return bad(r, "tensors '%s' [%llu,%llu] and '%s' [%llu,%llu] overlap",
                       p->name, (unsigned long long)p->begin, (unsigned long long)p->end,
                       e->name, (unsigned long long)e->begin, (unsigned long long)e->end);
        }
        at = e->end;
    }
    if (at < r->data_size)
        return bad(r, "bytes %llu..%llu of the data section, after the last tensor, "
                   "belong to no tensor", (unsigned long long)at,
                   (unsigned long long)r->data_size);
    return ND_OK;
}

/* ---- loading: the file ------------------------------------------------- */

/* Reads exactly n bytes: ND_OK, or ND_ERR with the message. */
static int read_exact(reader *r, int fd, void *p, size_t n) {
    unsigned char *b = p;
    while (n > 0) {
        ssize_t k = read(fd, b, n < ND_IO_CHUNK ? n : ND_IO_CHUNK);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return bad(r, "cannot read: %s", strerror(errno));
        if (k == 0) return bad(r, "the file ended early (did it change while being read?)");
        b += k;
        n -= (size_t)k;
    }
    return ND_OK;
}

/* The header length, checked against the file's size. */
static int read_length(reader *r, int fd, uint64_t file_size, uint64_t *len) {
    if (file_size == 0) return bad(r, "the file is empty");
    if (file_size < 8)
        return bad(r, "the file is %llu bytes, too short for the 8-byte header length",
                   (unsigned long long)file_size);
    unsigned char b[8];
    if (read_exact(r, fd, b, 8)) return ND_ERR;
    *len = get_u64(b);
    if (*len > file_size - 8)
        return bad(r, "header length %llu is larger than the rest of the file "
                   "(%llu bytes)", (unsigned long long)*len,
                   (unsigned long long)(file_size - 8));
    if (*len > HEADER_MAX)
        return bad(r, "header length %llu is over the limit of %u bytes",
                   (unsigned long long)*len, HEADER_MAX);
    if (*len == 0) return bad(r, "the header is empty (length 0)");
    return ND_OK;
}

static int read_header(reader *r, int fd, uint64_t len, header *h) {
    char *text = malloc((size_t)len);
    if (!text) return out_of_memory(r);
    int rc = read_exact(r, fd, text, (size_t)len);
    size_t at;
    char why[64];
    if (!rc && !nd__json_check(text, (size_t)len, JSON_MAX_DEPTH, &at, why))
        rc = bad(r, "the header is not valid JSON: %s at byte %zu of the header", why, at);
    if (!rc) {
        r->j = (nd__json){text, text + len};
        rc = parse_header(r, h);
    }
    free(text);
    return rc;
}

/* Moves the sorted entries and the metadata into out, creating and
 * reading the tensors; out is complete or empty. */
static int read_tensors(reader *r, int fd, header *h, nd_safetensors *out) {
    int n = h->n, m = h->nmeta;
    out->names = calloc((size_t)n + 1, sizeof *out->names);
    out->tensors = calloc((size_t)n + 1, sizeof *out->tensors);
    out->meta_keys = calloc((size_t)m + 1, sizeof *out->meta_keys);
    out->meta_values = calloc((size_t)m + 1, sizeof *out->meta_values);
    if (!out->names || !out->tensors || !out->meta_keys || !out->meta_values)
        return out_of_memory(r);
    for (int i = 0; i < n; i++) {
        entry *e = &h->e[i];
        nd_tensor *t = nd_persist(nd_empty(e->shape, e->ndim));
        out->tensors[out->n] = t;
        out->names[out->n++] = e->name;
        e->name = NULL;
        if (read_exact(r, fd, nd_data(t), (size_t)(e->end - e->begin))) return ND_ERR;
        decode_f32(nd_data(t), nd_numel(t));
    }
    for (int i = 0; i < m; i++) {
        out->meta_keys[i] = h->meta[i].key;
        out->meta_values[i] = h->meta[i].value;
        h->meta[i].key = h->meta[i].value = NULL;
        out->nmeta++;
    }
    return ND_OK;
}

int nd_safetensors_load(const char *path, nd_safetensors *out, nd_error *err) {
    if (!path) nd_fatal("safetensors_load", "path is NULL");
    if (!out) nd_fatal("safetensors_load", "out is NULL");
    memset(out, 0, sizeof *out);
    reader r = {path, err, {NULL, NULL}, 0};
    header h = {0};
    int fd = -1;
    uint64_t size = 0, len = 0;
    int rc = nd__open_regular(path, &fd, &size, err);
    if (!rc) rc = read_length(&r, fd, size, &len);
    if (!rc) {
        r.data_size = size - 8 - len;
        rc = read_header(&r, fd, len, &h);
    }
    if (!rc) rc = check_layout(&r, &h);
    if (!rc) rc = read_tensors(&r, fd, &h, out);
    if (fd >= 0) close(fd);
    free_header(&h);
    if (rc) nd_safetensors_free(out);
    return rc;
}

void nd_safetensors_free(nd_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) {
        free(st->names[i]);
        nd_free(st->tensors[i]);
    }
    for (int i = 0; i < st->nmeta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->names);
    free(st->tensors);
    free(st->meta_keys);
    free(st->meta_values);
    memset(st, 0, sizeof *st);
}

nd_tensor *nd_safetensors_get(const nd_safetensors *st, const char *name) {
    if (!st) nd_fatal("safetensors_get", "st is NULL");
    if (!name) nd_fatal("safetensors_get", "name is NULL");
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->names[i], name) == 0) return st->tensors[i];
    return NULL;
}

const char *nd_safetensors_meta(const nd_safetensors *st, const char *key) {
    if (!st) nd_fatal("safetensors_meta", "st is NULL");
    if (!key) nd_fatal("safetensors_meta", "key is NULL");
    for (int i = 0; i < st->nmeta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}
