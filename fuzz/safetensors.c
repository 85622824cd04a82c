/* Fuzz target: nd_safetensors_load (tensor/tensor.h).
 *
 * The input is the file. Beyond crashes, leaks (nd_mem_live and
 * LeakSanitizer) and nd_fatal, every input is also judged by a reader
 * written here from the format's description, on the second JSON reader
 * (refjson.c):
 *   - a file the loader accepts must be well formed: header length within
 *     the file, a JSON object, names unique, each entry exactly dtype F32,
 *     a shape and data_offsets of plain non-negative integers (no sign,
 *     fraction, exponent, NaN), offsets in order (begin <= end) holding
 *     exactly the shape's bytes, and the entries, sorted by offset, tiling
 *     the data section with no overlap, hole or trailing byte; metadata an
 *     object of strings. And it must hold what that reader reads: the same
 *     names, shapes, bit patterns and metadata.
 *   - a file that is well formed and within what nanodiff supports (F32
 *     only, at most 8 dimensions, names that saving accepts, no NUL in a
 *     string) must be accepted.
 *   - what the loader accepts, nd_safetensors_save must write again (not
 *     stop on a name the loader accepted) and the loader read back with the
 *     same names, shapes, bits and metadata. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "refjson.h"
#include "tensor/json.h"

/* ---- the reference reader ---------------------------------------------- */

typedef struct ref_tensor {
    const char *name; /* into the tree */
    int ndim;
    uint64_t shape[ND_MAX_DIMS];
    uint64_t begin, end;
} ref_tensor;

typedef struct ref {
    enum { VALID, INVALID, UNSUPPORTED } verdict;
    char why[160];
    rj_value root;
    bool parsed;
    ref_tensor *t;
    int n;
    const rj_value *meta;
    const unsigned char *data; /* the data section */
    uint64_t data_size;
} ref;

static int judge(ref *r, int verdict, const char *why) {
    if (r->verdict == VALID || (r->verdict == UNSUPPORTED && verdict == INVALID)) {
        r->verdict = verdict;
        snprintf(r->why, sizeof r->why, "%s", why);
    }
    return verdict;
}

static bool has_nul(const rj_value *s) { return strlen(s->str) != s->len; }

/* A tensor name nanodiff writes and reads (tensor/safetensors.h): not
 * empty, no control character, valid UTF-8 (JSON strings are). */
static bool name_supported(const rj_value *s) {
    if (s->len == 0 || has_nul(s)) return false;
    for (size_t k = 0; k < s->len; k++)
        if ((unsigned char)s->str[k] < 0x20 || s->str[k] == 0x7f) return false;
    return true;
}

/* An array of plain non-negative integers below 2^63 into v (at most
 * max); -1 when it is not one, else its length. */
static int uints(ref *r, const rj_value *a, uint64_t *v, int max, const char *what) {
    char why[96];
    if (a->kind != RJ_ARRAY) {
        snprintf(why, sizeof why, "%s is not an array", what);
        judge(r, INVALID, why);
        return -1;
    }
    for (size_t k = 0; k < a->n; k++) {
        bool big;
        uint64_t x;
        if (!rj_uint(&a->items[k], &x, &big)) {
            snprintf(why, sizeof why, "%s holds %.*s, not a non-negative integer", what,
                     (int)(a->items[k].text_len < 30 ? a->items[k].text_len : 30),
                     a->items[k].text);
            judge(r, INVALID, why);
            return -1;
        }
        if (big || x > INT64_MAX) {
            snprintf(why, sizeof why, "%s holds a number too large", what);
            judge(r, big ? INVALID : UNSUPPORTED, why);
            return -1;
        }
        if ((int)k < max) v[k] = x;
    }
    return (int)a->n;
}

static int by_offset(const void *pa, const void *pb) {
    const ref_tensor *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    return (a->end > b->end) - (a->end < b->end);
}

static void ref_read(ref *r, const unsigned char *file, size_t size) {
    memset(r, 0, sizeof *r);
    if (size < 8) {
        judge(r, INVALID, "shorter than the header length");
        return;
    }
    uint64_t len = fz_le64(file);
    if (len > size - 8) {
        judge(r, INVALID, "header length beyond the file");
        return;
    }
    r->data = file + 8 + len;
    r->data_size = size - 8 - len;
    if (!rj_parse((const char *)file + 8, (size_t)len, 64, &r->root)) {
        judge(r, INVALID, "the header is not JSON");
        return;
    }
    r->parsed = true;
    const rj_value *h = &r->root;
    if (h->kind != RJ_OBJECT) {
        judge(r, INVALID, "the header is not an object");
        return;
    }
    for (size_t i = 0; i < h->n; i++)
        for (size_t k = 0; k < i; k++)
            if (h->keys[i].len == h->keys[k].len &&
                memcmp(h->keys[i].str, h->keys[k].str, h->keys[i].len) == 0)
                judge(r, INVALID, "a name appears twice");
    r->t = calloc(h->n + 1, sizeof *r->t);
    for (size_t i = 0; i < h->n; i++) {
        const rj_value *key = &h->keys[i], *v = &h->items[i];
        if (has_nul(key)) judge(r, UNSUPPORTED, "a name holds NUL");
        if (strcmp(key->str, "__metadata__") == 0 && !has_nul(key)) {
            r->meta = v;
            if (v->kind != RJ_OBJECT) {
                judge(r, INVALID, "__metadata__ is not an object");
                continue;
            }
            for (size_t k = 0; k < v->n; k++) {
                if (v->items[k].kind != RJ_STRING) judge(r, INVALID, "a metadata value is not a string");
                else if (has_nul(&v->items[k])) judge(r, UNSUPPORTED, "a metadata value holds NUL");
                if (has_nul(&v->keys[k])) judge(r, UNSUPPORTED, "a metadata key holds NUL");
                for (size_t m = 0; m < k; m++)
                    if (v->keys[k].len == v->keys[m].len &&
                        memcmp(v->keys[k].str, v->keys[m].str, v->keys[k].len) == 0)
                        judge(r, INVALID, "a metadata key appears twice");
            }
            continue;
        }
        if (!name_supported(key)) judge(r, UNSUPPORTED, "a name saving refuses");
        ref_tensor *t = &r->t[r->n++];
        t->name = key->str;
        if (v->kind != RJ_OBJECT) {
            judge(r, INVALID, "an entry is not an object");
            continue;
        }
        const rj_value *dtype = rj_get(v, "dtype"), *shape = rj_get(v, "shape"),
                       *offsets = rj_get(v, "data_offsets");
        if (!dtype || !shape || !offsets) {
            judge(r, INVALID, "an entry lacks a field");
            continue;
        }
        if (v->n != 3) judge(r, UNSUPPORTED, "an entry has other fields, or one twice");
        if (dtype->kind != RJ_STRING) {
            judge(r, INVALID, "a dtype is not a string");
        } else if (strcmp(dtype->str, "F32") != 0 || has_nul(dtype)) {
            static const char *const known[] = {"BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3",
                                                "I16",  "U16", "F16", "BF16",    "I32",
                                                "U32",  "F64", "I64", "U64"};
            bool k = false;
            for (size_t d = 0; d < sizeof known / sizeof *known; d++)
                k = k || (strcmp(dtype->str, known[d]) == 0 && !has_nul(dtype));
            judge(r, k ? UNSUPPORTED : INVALID, "a dtype other than F32");
        }
        int nd = uints(r, shape, t->shape, ND_MAX_DIMS, "a shape");
        if (nd > ND_MAX_DIMS) judge(r, UNSUPPORTED, "more than 8 dimensions");
        t->ndim = nd < 0 ? 0 : nd > ND_MAX_DIMS ? ND_MAX_DIMS : nd;
        uint64_t off[2];
        int no = uints(r, offsets, off, 2, "data_offsets");
        if (no >= 0 && no != 2) judge(r, INVALID, "data_offsets is not [begin, end]");
        if (nd < 0 || no != 2) continue;
        t->begin = off[0];
        t->end = off[1];
        if (t->begin > t->end) judge(r, INVALID, "data_offsets end before they begin");
        /* The product of the sizes other than 0, in 128 bits (saturating
         * past 2^64); nanodiff refuses shapes where it passes
         * INT64_MAX / 4, even with a 0 among the sizes. */
        unsigned __int128 count = 1;
        bool zero = false;
        for (int d = 0; d < nd && d < ND_MAX_DIMS; d++) {
            if (t->shape[d] == 0) zero = true;
            else if (count <= ((unsigned __int128)1 << 64)) count *= t->shape[d];
        }
        if (count > (uint64_t)INT64_MAX / 4) {
            judge(r, zero ? UNSUPPORTED : INVALID, "a shape with too many elements");
            continue;
        }
        if (zero) count = 0;
        if (t->begin <= t->end && t->end - t->begin != (uint64_t)count * 4)
            judge(r, INVALID, "a shape whose size does not match its bytes");
    }
    if (r->verdict == INVALID) return;
    qsort(r->t, (size_t)r->n, sizeof *r->t, by_offset);
    uint64_t at = 0;
    for (int i = 0; i < r->n; i++) {
        if (r->t[i].begin != at) judge(r, INVALID, r->t[i].begin < at ? "overlapping data"
                                                                      : "a hole in the data");
        at = r->t[i].end;
    }
    if (at != r->data_size) judge(r, INVALID, "the data section is not covered exactly");
}

static void ref_free(ref *r) {
    if (r->parsed) rj_free(&r->root);
    free(r->t);
}

/* ---- comparing --------------------------------------------------------- */

/* Whether st holds exactly what r read. */
static void same_as_ref(const nd_safetensors *st, const ref *r, const char *what) {
    FZ_CHECK(st->n == r->n, "%s: %d tensors, the reference reads %d", what, st->n, r->n);
    for (int i = 0; i < r->n; i++) {
        const ref_tensor *t = &r->t[i];
        const nd_tensor *x = nd_safetensors_get(st, t->name);
        FZ_CHECK(x != NULL, "%s: no tensor '%s'", what, t->name);
        FZ_CHECK(x->ndim == t->ndim, "%s: '%s' has %d dimensions, the file %d", what, t->name,
                 x->ndim, t->ndim);
        for (int d = 0; d < t->ndim; d++)
            FZ_CHECK((uint64_t)x->shape[d] == t->shape[d], "%s: '%s' has another shape",
                     what, t->name);
        int64_t n = nd_numel(x);
        FZ_CHECK((uint64_t)n * 4 == t->end - t->begin, "%s: '%s' has %lld elements", what,
                 t->name, (long long)n);
        const float *v = n ? nd_data(x) : NULL;
        for (int64_t k = 0; k < n; k++) {
            uint32_t want = fz_le32(r->data + t->begin + 4 * k), got;
            memcpy(&got, &v[k], 4);
            FZ_CHECK(got == want, "%s: '%s'[%lld] is 0x%08x, the file holds 0x%08x", what,
                     t->name, (long long)k, (unsigned)got, (unsigned)want);
        }
    }
    const rj_value *m = r->meta;
    int nm = m ? (int)m->n : 0;
    FZ_CHECK(st->nmeta == nm, "%s: %d metadata pairs, the reference reads %d", what, st->nmeta,
             nm);
    for (int k = 0; k < nm; k++) {
        const char *v = nd_safetensors_meta(st, m->keys[k].str);
        FZ_CHECK(v && strcmp(v, m->items[k].str) == 0, "%s: metadata '%s' differs", what,
                 m->keys[k].str);
    }
}

/* Whether a and b hold the same names, shapes, bits and metadata. */
static void same(const nd_safetensors *a, const nd_safetensors *b) {
    FZ_CHECK(a->n == b->n && a->nmeta == b->nmeta, "saved again, %d tensors and %d metadata "
             "pairs read back as %d and %d", a->n, a->nmeta, b->n, b->nmeta);
    for (int i = 0; i < a->n; i++) {
        const nd_tensor *x = a->tensors[i], *y = nd_safetensors_get(b, a->names[i]);
        FZ_CHECK(y && nd_same_shape(x, y), "saved again, '%s' is lost or changed shape",
                 a->names[i]);
        int64_t n = nd_numel(x);
        FZ_CHECK(n == 0 || memcmp(nd_data(x), nd_data(y), (size_t)n * 4) == 0,
                 "saved again, '%s' changed values", a->names[i]);
    }
    for (int k = 0; k < a->nmeta; k++) {
        const char *v = nd_safetensors_meta(b, a->meta_keys[k]);
        FZ_CHECK(v && strcmp(v, a->meta_values[k]) == 0, "saved again, metadata '%s' differs",
                 a->meta_keys[k]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_init();
    size_t base = fz_mem_begin();
    const char *path = fz_write(0, data, size);
    nd_safetensors st;
    nd_error err = {{0}};
    int rc = nd_safetensors_load(path, &st, &err);
    fz_check_result("nd_safetensors_load", rc, &err, path);
    if (rc != ND_OK)
        FZ_CHECK(strncmp(err.message, path, strlen(path)) == 0,
                 "the message does not start with the path: %s", err.message);
    ref r;
    ref_read(&r, data, size);
    if (rc == ND_OK) {
        FZ_CHECK(r.verdict == VALID, "the loader accepts a malformed file: %s", r.why);
        same_as_ref(&st, &r, "loaded");

        const char *out = fz_path(1);
        rc = nd_safetensors_save(out, (const char *const *)st.names,
                                 (const nd_tensor *const *)st.tensors, st.n,
                                 (const char *const *)st.meta_keys,
                                 (const char *const *)st.meta_values, st.nmeta, &err);
        FZ_CHECK(rc == ND_OK, "nd_safetensors_save refuses what the loader read: %s",
                 err.message);
        nd_safetensors back;
        rc = nd_safetensors_load(out, &back, &err);
        FZ_CHECK(rc == ND_OK, "the loader refuses what nd_safetensors_save wrote: %s",
                 err.message);
        same(&st, &back);
        nd_safetensors_free(&back);
        fz_remove(1);
        nd_safetensors_free(&st);
    } else {
        FZ_CHECK(st.n == 0 && st.names == NULL && st.nmeta == 0, "*out not empty after ND_ERR");
        FZ_CHECK(r.verdict != VALID, "the loader refuses a well-formed file: %s", err.message);
    }
    ref_free(&r);
    fz_mem_end(base, "nd_safetensors_load");
    return 0;
}
