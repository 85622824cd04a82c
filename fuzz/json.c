/* Fuzz target: the safetensors header's JSON reader (tensor/json.h).
 *
 * The input is the JSON text. nd__json_check must accept exactly what the
 * second reader (refjson.c) accepts, at the loader's depth limit and at a
 * small one; its failure offset must lie inside the text. On text it
 * accepted, the cursor walks every value and must read what the second
 * reader read: the same strings unescaped (and valid UTF-8), the same
 * integers, each number consumed whole. nd__json_utf8 must agree with the
 * second reader's UTF-8 check on the raw input. The reader allocates with
 * malloc (LeakSanitizer's part), nd_mem_live must not move either. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "refjson.h"
#include "tensor/json.h"

static void walk(nd__json *j, const rj_value *v);

static void walk_string(nd__json *j, const rj_value *v) {
    FZ_CHECK(nd__json_peek(j) == '"', "cursor: expected a string at '%.20s'", v->text);
    size_t len = 12345;
    char *s = nd__json_string(j, &len);
    FZ_CHECK(s != NULL, "nd__json_string returned NULL");
    FZ_CHECK(len == v->len && memcmp(s, v->str, len) == 0 && s[len] == 0,
             "nd__json_string read %zu bytes, the reference %zu, from %.*s", len, v->len,
             (int)(v->text_len < 60 ? v->text_len : 60), v->text);
    FZ_CHECK(nd__json_utf8(s, len), "an unescaped string is not valid UTF-8");
    FZ_CHECK(j->p == v->text + v->text_len, "nd__json_string stopped at the wrong byte");
    free(s);
}

static void walk(nd__json *j, const rj_value *v) {
    char c = nd__json_peek(j);
    FZ_CHECK(j->p == v->text, "cursor: %td bytes from where the value starts", j->p - v->text);
    char buf[32];
    const char *d = nd__json_describe(j, buf, sizeof buf);
    FZ_CHECK(d && strlen(d) < 64, "nd__json_describe gave nothing usable");
    FZ_CHECK(j->p == v->text, "nd__json_describe moved the cursor");
    switch (v->kind) {
    case RJ_STRING: walk_string(j, v); return;
    case RJ_NUMBER: {
        uint64_t got = 0, want;
        bool big, uint = rj_uint(v, &want, &big);
        int kind = nd__json_uint(j, &got);
        int expect = !uint ? ND__JSON_NOT_UINT : big ? ND__JSON_TOO_LARGE : ND__JSON_UINT;
        FZ_CHECK(kind == expect, "nd__json_uint says %d for %.*s, expected %d", kind,
                 (int)v->text_len, v->text, expect);
        if (kind == ND__JSON_UINT)
            FZ_CHECK(got == want, "nd__json_uint read %llu for %.*s",
                     (unsigned long long)got, (int)v->text_len, v->text);
        FZ_CHECK(j->p == v->text + v->text_len, "nd__json_uint did not consume %.*s whole",
                 (int)v->text_len, v->text);
        return;
    }
    case RJ_NULL:
    case RJ_TRUE:
    case RJ_FALSE:
        FZ_CHECK(c == v->text[0], "cursor: peek gave '%c' at a literal", c);
        for (size_t k = 0; k < v->text_len; k++) nd__json_advance(j);
        return;
    default: break;
    }
    bool object = v->kind == RJ_OBJECT;
    FZ_CHECK(c == (object ? '{' : '['), "cursor: peek gave '%c' at a container", c);
    nd__json_advance(j);
    if (v->n == 0) {
        FZ_CHECK(nd__json_peek(j) == (object ? '}' : ']'), "cursor: an empty container");
        nd__json_advance(j);
        return;
    }
    for (size_t k = 0; k < v->n; k++) {
        if (object) {
            walk_string(j, &v->keys[k]);
            FZ_CHECK(nd__json_peek(j) == ':', "cursor: no ':' after a key");
            nd__json_advance(j);
        }
        walk(j, &v->items[k]);
        char e = nd__json_peek(j);
        FZ_CHECK(e == (k + 1 < v->n ? ',' : object ? '}' : ']'),
                 "cursor: '%c' after member %zu", e, k);
        nd__json_advance(j);
    }
}

static void check_at(const char *text, size_t n, int depth) {
    size_t at = (size_t)-1;
    char why[64];
    memset(why, 'x', sizeof why);
    bool ok = nd__json_check(text, n, depth, &at, why);
    rj_value v;
    bool ref = rj_parse(text, n, depth, &v);
    FZ_CHECK(ok == ref, "nd__json_check %s a text the reference %s (depth limit %d)%s%.*s",
             ok ? "accepts" : "refuses", ref ? "accepts" : "refuses", depth,
             ok ? "" : ": ", ok ? 0 : (int)strnlen(why, sizeof why), why);
    FZ_CHECK(at <= n, "nd__json_check's offset %zu is past the end (%zu)", at, n);
    if (!ok) {
        FZ_CHECK(strnlen(why, sizeof why) < sizeof why && why[0],
                 "nd__json_check's reason is empty or not terminated");
        return;
    }
    nd__json j = {text, text + n};
    walk(&j, &v);
    FZ_CHECK(nd__json_peek(&j) == 0 && j.p == j.end, "cursor: text left after the value");
    rj_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_init();
    size_t base = fz_mem_begin();
    /* A copy of exactly size bytes, so that ASan sees any read past it. */
    char *text = malloc(size ? size : 1);
    if (size) memcpy(text, data, size);
    check_at(text, size, 64);
    check_at(text, size, 2);
    FZ_CHECK(nd__json_utf8(text, size) == rj_utf8(text, size),
             "nd__json_utf8 and the reference disagree on the input");
    free(text);
    fz_mem_end(base, "the JSON reader");
    return 0;
}
