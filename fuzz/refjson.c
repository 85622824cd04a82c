/* The second JSON reader (refjson.h). */
#include "refjson.h"

#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const unsigned char *s;
    size_t n, i;
    int max_depth;
} parser;

/* The code point of the UTF-8 sequence at s[0..n), its length in *k; -1
 * when it is not well formed. */
static long decode_utf8(const unsigned char *s, size_t n, size_t *k) {
    unsigned b = s[0];
    size_t len;
    long cp, min;
    if (b < 0x80) {
        *k = 1;
        return (long)b;
    } else if ((b & 0xe0) == 0xc0) {
        len = 2, cp = b & 0x1f, min = 0x80;
    } else if ((b & 0xf0) == 0xe0) {
        len = 3, cp = b & 0x0f, min = 0x800;
    } else if ((b & 0xf8) == 0xf0) {
        len = 4, cp = b & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if (n < len) return -1;
    for (size_t j = 1; j < len; j++) {
        if ((s[j] & 0xc0) != 0x80) return -1;
        cp = cp << 6 | (s[j] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
    *k = len;
    return cp;
}

bool rj_utf8(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, k;
    while (i < n) {
        if (decode_utf8(u + i, n - i, &k) < 0) return false;
        i += k;
    }
    return true;
}

static void ws(parser *p) {
    while (p->i < p->n && strchr(" \t\n\r", p->s[p->i]) && p->s[p->i]) p->i++;
}

static void append(char **buf, size_t *len, size_t *cap, const char *b, size_t k) {
    if (*len + k + 1 > *cap) {
        *cap = (*len + k + 1) * 2;
        *buf = realloc(*buf, *cap);
        if (!*buf) abort();
    }
    memcpy(*buf + *len, b, k);
    *len += k;
    (*buf)[*len] = 0;
}

static size_t encode(long cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* \uXXXX at s[i] (the backslash), or -1. */
static long u_escape(const parser *p, size_t i) {
    if (p->n - i < 6 || p->s[i] != '\\' || p->s[i + 1] != 'u') return -1;
    long v = 0;
    for (size_t j = i + 2; j < i + 6; j++) {
        int c = p->s[j], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

static bool string(parser *p, rj_value *v) {
    v->kind = RJ_STRING;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    append(&buf, &len, &cap, "", 0);
    p->i++;
    for (;;) {
        if (p->i >= p->n) goto fail;
        unsigned char c = p->s[p->i];
        if (c == '"') {
            p->i++;
            break;
        }
        if (c < 0x20) goto fail;
        if (c != '\\') {
            size_t k;
            if (decode_utf8(p->s + p->i, p->n - p->i, &k) < 0) goto fail;
            append(&buf, &len, &cap, (const char *)p->s + p->i, k);
            p->i += k;
            continue;
        }
        if (p->n - p->i < 2) goto fail;
        char e = (char)p->s[p->i + 1], o[4];
        const char *simple = "\"\"\\\\//b\bf\fn\nr\rt\t";
        const char *hit = NULL;
        for (const char *q = simple; *q; q += 2)
            if (*q == e) hit = q;
        if (hit) {
            append(&buf, &len, &cap, hit + 1, 1);
            p->i += 2;
            continue;
        }
        long cp = u_escape(p, p->i);
        if (cp < 0) goto fail;
        p->i += 6;
        if (cp >= 0xdc00 && cp <= 0xdfff) goto fail;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            long lo = u_escape(p, p->i);
            if (lo < 0xdc00 || lo > 0xdfff) goto fail;
            p->i += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10 | (lo - 0xdc00));
        }
        append(&buf, &len, &cap, o, encode(cp, o));
    }
    v->str = buf;
    v->len = len;
    return true;
fail:
    free(buf);
    return false;
}

static bool is_digit(const parser *p) { return p->i < p->n && p->s[p->i] - '0' < 10u; }

static bool number(parser *p, rj_value *v) {
    v->kind = RJ_NUMBER;
    if (p->s[p->i] == '-') p->i++;
    if (!is_digit(p)) return false;
    if (p->s[p->i] == '0') p->i++;
    else while (is_digit(p)) p->i++;
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (!is_digit(p)) return false;
        while (is_digit(p)) p->i++;
    }
    if (p->i < p->n && (p->s[p->i] | 0x20) == 'e') {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (!is_digit(p)) return false;
        while (is_digit(p)) p->i++;
    }
    return true;
}

static bool value(parser *p, rj_value *v, int depth);

static void push(rj_value **a, size_t n, const rj_value *x) {
    *a = realloc(*a, (n + 1) * sizeof **a);
    if (!*a) abort();
    (*a)[n] = *x;
}

static bool container(parser *p, rj_value *v, int depth, bool object) {
    v->kind = object ? RJ_OBJECT : RJ_ARRAY;
    if (depth > p->max_depth) return false;
    char close = object ? '}' : ']';
    p->i++;
    ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        return true;
    }
    for (;;) {
        rj_value key = {0}, item = {0};
        ws(p);
        if (object) {
            if (p->i >= p->n || p->s[p->i] != '"') return false;
            key.text = (const char *)p->s + p->i;
            if (!string(p, &key)) return false;
            key.text_len = (size_t)((const char *)p->s + p->i - key.text);
            ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') {
                rj_free(&key);
                return false;
            }
            p->i++;
        }
        bool ok = value(p, &item, depth);
        if (object) push(&v->keys, v->n, &key);
        push(&v->items, v->n, &item);
        v->n++;
        if (!ok) return false;
        ws(p);
        if (p->i >= p->n) return false;
        if (p->s[p->i] == close) {
            p->i++;
            return true;
        }
        if (p->s[p->i] != ',') return false;
        p->i++;
    }
}

static bool value(parser *p, rj_value *v, int depth) {
    memset(v, 0, sizeof *v);
    ws(p);
    if (p->i >= p->n) return false;
    size_t start = p->i;
    v->text = (const char *)p->s + start;
    bool ok;
    unsigned char c = p->s[p->i];
    if (c == '{' || c == '[') ok = container(p, v, depth + 1, c == '{');
    else if (c == '"') ok = string(p, v);
    else if (c == '-' || (c >= '0' && c <= '9')) ok = number(p, v);
    else {
        static const char *const words[] = {"null", "true", "false"};
        static const int kinds[] = {RJ_NULL, RJ_TRUE, RJ_FALSE};
        ok = false;
        for (int k = 0; k < 3 && !ok; k++) {
            size_t w = strlen(words[k]);
            if (p->n - p->i >= w && memcmp(p->s + p->i, words[k], w) == 0) {
                v->kind = kinds[k];
                p->i += w;
                ok = true;
            }
        }
    }
    v->text_len = p->i - start;
    return ok;
}

bool rj_parse(const char *text, size_t len, int max_depth, rj_value *out) {
    parser p = {(const unsigned char *)text, len, 0, max_depth};
    bool ok = value(&p, out, 0);
    if (ok) {
        ws(&p);
        ok = p.i == p.n;
    }
    if (!ok) rj_free(out);
    return ok;
}

void rj_free(rj_value *v) {
    for (size_t k = 0; k < v->n; k++) {
        if (v->keys) rj_free(&v->keys[k]);
        rj_free(&v->items[k]);
    }
    free(v->keys);
    free(v->items);
    free(v->str);
    memset(v, 0, sizeof *v);
}

bool rj_uint(const rj_value *v, uint64_t *value, bool *big) {
    *value = 0;
    *big = false;
    if (v->kind != RJ_NUMBER) return false;
    for (size_t k = 0; k < v->text_len; k++)
        if (v->text[k] < '0' || v->text[k] > '9') return false;
    for (size_t k = 0; k < v->text_len; k++) {
        unsigned d = (unsigned)(v->text[k] - '0');
        if (*value > (UINT64_MAX - d) / 10) *big = true;
        else if (!*big) *value = *value * 10 + d;
    }
    return true;
}

const rj_value *rj_get(const rj_value *obj, const char *key) {
    if (obj->kind != RJ_OBJECT) return NULL;
    size_t n = strlen(key);
    for (size_t k = 0; k < obj->n; k++)
        if (obj->keys[k].len == n && memcmp(obj->keys[k].str, key, n) == 0) return &obj->items[k];
    return NULL;
}
