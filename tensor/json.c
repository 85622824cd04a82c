/* The strict JSON reader of json.h. The checker is the only part that sees
 * untrusted text; the cursor relies on it and stays simple, but still
 * never reads past the end. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct scan {
    const unsigned char *s;
    size_t n, i;
    int max_depth;
    char *why;
} scan;

static bool fail(scan *c, const char *why) {
    snprintf(c->why, 64, "%s", why);
    return false;
}

static bool is_ws(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void skip_ws(scan *c) {
    while (c->i < c->n && is_ws(c->s[c->i])) c->i++;
}

static int hex_digit(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Four hex digits at s (n bytes available), or -1. */
static long hex4(const unsigned char *s, size_t n) {
    if (n < 4) return -1;
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int d = hex_digit(s[k]);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static bool is_cont(const unsigned char *s, size_t n, size_t k, int lo, int hi) {
    return k < n && s[k] >= lo && s[k] <= hi;
}

/* The length of the well-formed UTF-8 sequence at c->i (lead byte >= 0x80),
 * or 0: no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_length(const scan *c) {
    const unsigned char *s = c->s;
    size_t i = c->i, n = c->n;
    unsigned b = s[i];
    if (b >= 0xc2 && b <= 0xdf) return is_cont(s, n, i + 1, 0x80, 0xbf) ? 2 : 0;
    if (b >= 0xe0 && b <= 0xef) {
        int lo = b == 0xe0 ? 0xa0 : 0x80, hi = b == 0xed ? 0x9f : 0xbf;
        return is_cont(s, n, i + 1, lo, hi) && is_cont(s, n, i + 2, 0x80, 0xbf) ? 3 : 0;
    }
    if (b >= 0xf0 && b <= 0xf4) {
        int lo = b == 0xf0 ? 0x90 : 0x80, hi = b == 0xf4 ? 0x8f : 0xbf;
        return is_cont(s, n, i + 1, lo, hi) && is_cont(s, n, i + 2, 0x80, 0xbf) &&
                       is_cont(s, n, i + 3, 0x80, 0xbf)
                   ? 4
                   : 0;
    }
    return 0;
}

/* c->i is just after a backslash. */
static bool check_escape(scan *c) {
    if (c->i >= c->n) return fail(c, "unterminated string");
    unsigned char e = c->s[c->i];
    if (e && strchr("\"\\/bfnrt", e)) {
        c->i++;
        return true;
    }
    if (e != 'u') return fail(c, "invalid escape in a string");
    long u = hex4(c->s + c->i + 1, c->n - c->i - 1);
    if (u < 0) return fail(c, "invalid \\u escape in a string");
    if (u >= 0xdc00 && u <= 0xdfff) return fail(c, "unpaired surrogate in a string");
    if (u >= 0xd800 && u <= 0xdbff) {
        size_t k = c->i + 5;
        long lo = k + 1 < c->n && c->s[k] == '\\' && c->s[k + 1] == 'u'
                      ? hex4(c->s + k + 2, c->n - k - 2)
                      : -1;
        if (lo < 0xdc00 || lo > 0xdfff) return fail(c, "unpaired surrogate in a string");
        c->i += 6;
    }
    c->i += 5;
    return true;
}

static bool check_string(scan *c) {
    c->i++; /* the opening quote */
    for (;;) {
        if (c->i >= c->n) return fail(c, "unterminated string");
        unsigned char b = c->s[c->i];
        if (b == '"') {
            c->i++;
            return true;
        }
        if (b == '\\') {
            c->i++;
            if (!check_escape(c)) return false;
        } else if (b < 0x20) {
            char why[64];
            snprintf(why, sizeof why, "control character 0x%02x in a string", b);
            return fail(c, why);
        } else if (b < 0x80) {
            c->i++;
        } else {
            size_t k = utf8_length(c);
            if (!k) return fail(c, "invalid UTF-8 in a string");
            c->i += k;
        }
    }
}

static size_t digits(scan *c) {
    size_t start = c->i;
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') c->i++;
    return c->i - start;
}

static bool check_number(scan *c) {
    if (c->s[c->i] == '-') c->i++;
    if (c->i < c->n && c->s[c->i] == '0') c->i++;
    else if (!digits(c)) return fail(c, "invalid number");
    if (c->i < c->n && c->s[c->i] == '.') {
        c->i++;
        if (!digits(c)) return fail(c, "invalid number");
    }
    if (c->i < c->n && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
        c->i++;
        if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-')) c->i++;
        if (!digits(c)) return fail(c, "invalid number");
    }
    return true;
}

static bool check_literal(scan *c, const char *word) {
    size_t k = strlen(word);
    if (c->n - c->i < k || memcmp(c->s + c->i, word, k) != 0)
        return fail(c, "unexpected character");
    c->i += k;
    return true;
}

static bool check_value(scan *c, int depth);

/* Arrays and objects: close is ']' or '}'. */
static bool check_container(scan *c, int depth, unsigned char close) {
    if (depth >= c->max_depth) {
        char why[64];
        snprintf(why, sizeof why, "nesting deeper than %d levels", c->max_depth);
        return fail(c, why);
    }
    c->i++;
    skip_ws(c);
    if (c->i < c->n && c->s[c->i] == close) {
        c->i++;
        return true;
    }
    for (;;) {
        skip_ws(c);
        if (close == '}') {
            if (c->i >= c->n) return fail(c, "unexpected end");
            if (c->s[c->i] != '"') return fail(c, "expected a string key");
            if (!check_string(c)) return false;
            skip_ws(c);
            if (c->i >= c->n || c->s[c->i] != ':') return fail(c, "expected ':'");
            c->i++;
        }
        if (!check_value(c, depth + 1)) return false;
        skip_ws(c);
        if (c->i >= c->n) return fail(c, "unexpected end");
        if (c->s[c->i] == close) {
            c->i++;
            return true;
        }
        if (c->s[c->i] != ',') return fail(c, close == '}' ? "expected ',' or '}'"
                                                         : "expected ',' or ']'");
        c->i++;
    }
}

static bool check_value(scan *c, int depth) {
    skip_ws(c);
    if (c->i >= c->n) return fail(c, "unexpected end");
    unsigned char b = c->s[c->i];
    switch (b) {
    case '{': return check_container(c, depth, '}');
    case '[': return check_container(c, depth, ']');
    case '"': return check_string(c);
    case 't': return check_literal(c, "true");
    case 'f': return check_literal(c, "false");
    case 'n': return check_literal(c, "null");
    default:
        if (b == '-' || (b >= '0' && b <= '9')) return check_number(c);
        return fail(c, "unexpected character");
    }
}

bool nd__json_check(const char *text, size_t len, int max_depth, size_t *at,
                    char *why) {
    scan c = {(const unsigned char *)text, len, 0, max_depth, why};
    bool ok = check_value(&c, 0);
    if (ok) {
        skip_ws(&c);
        if (c.i < c.n) ok = fail(&c, "unexpected text after the JSON value");
    }
    *at = c.i;
    return ok;
}

/* ---- the cursor -------------------------------------------------------- */

char nd__json_peek(nd__json *j) {
    while (j->p < j->end && is_ws((unsigned char)*j->p)) j->p++;
    return j->p < j->end ? *j->p : 0;
}

void nd__json_advance(nd__json *j) {
    if (j->p < j->end) j->p++;
}

/* UTF-8 of code point u into out; returns the byte count. */
static size_t put_utf8(unsigned long u, char *out) {
    if (u < 0x80) {
        out[0] = (char)u;
        return 1;
    }
    if (u < 0x800) {
        out[0] = (char)(0xc0 | (u >> 6));
        out[1] = (char)(0x80 | (u & 0x3f));
        return 2;
    }
    if (u < 0x10000) {
        out[0] = (char)(0xe0 | (u >> 12));
        out[1] = (char)(0x80 | ((u >> 6) & 0x3f));
        out[2] = (char)(0x80 | (u & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (u >> 18));
    out[1] = (char)(0x80 | ((u >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((u >> 6) & 0x3f));
    out[3] = (char)(0x80 | (u & 0x3f));
    return 4;
}

static char unescape_simple(char e) {
    switch (e) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    default: return e; /* '"', '\\', '/' */
    }
}

/* The end of the string starting at the quote p (just past its closing
 * quote). */
static const char *string_end(const char *p, const char *end) {
    for (p++; p < end && *p != '"'; p++)
        if (*p == '\\') p++;
    return p < end ? p + 1 : end;
}

char *nd__json_string(nd__json *j, size_t *len) {
    const char *stop = string_end(j->p, j->end);
    /* Unescaping never lengthens: "\uXXXX" is 6 bytes for at most 3 of
     * UTF-8, a surrogate pair 12 for 4. */
    char *out = malloc((size_t)(stop - j->p) + 1);
    if (!out) return NULL;
    size_t n = 0;
    for (const char *p = j->p + 1; p < stop - 1; p++) {
        if (*p != '\\') {
            out[n++] = *p;
        } else if (p[1] != 'u') {
            out[n++] = unescape_simple(*++p);
        } else {
            const unsigned char *h = (const unsigned char *)p + 2;
            const unsigned char *e = (const unsigned char *)stop;
            unsigned long u = (unsigned long)hex4(h, (size_t)(e - h));
            p += 5;
            if (u >= 0xd800 && u <= 0xdbff) {
                unsigned long lo = (unsigned long)hex4(h + 6, (size_t)(e - h - 6));
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            n += put_utf8(u, out + n);
        }
    }
    out[n] = 0;
    *len = n;
    j->p = stop;
    return out;
}

static bool is_number_char(char c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' ||
           c == 'E';
}

int nd__json_uint(nd__json *j, uint64_t *value) {
    const char *p = j->p;
    uint64_t v = 0;
    int kind = p < j->end && *p >= '0' && *p <= '9' ? ND__JSON_UINT : ND__JSON_NOT_UINT;
    for (; p < j->end && is_number_char(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (*p < '0' || *p > '9') kind = ND__JSON_NOT_UINT;
        else if (v > (UINT64_MAX - d) / 10) kind = kind ? kind : ND__JSON_TOO_LARGE;
        else v = v * 10 + d;
    }
    j->p = p;
    *value = v;
    return kind;
}

bool nd__json_utf8(const char *s, size_t len) {
    char why[64];
    scan c = {(const unsigned char *)s, len, 0, 0, why};
    while (c.i < c.n) {
        size_t k = c.s[c.i] < 0x80 ? 1 : utf8_length(&c);
        if (!k) return false;
        c.i += k;
    }
    return true;
}

const char *nd__json_describe(nd__json *j, char *buf, size_t size) {
    char b = nd__json_peek(j);
    if (b == '"') return "a string";
    if (b == '[') return "an array";
    if (b == '{') return "an object";
    size_t n = 0;
    while (j->p + n < j->end && n + 1 < size &&
           (is_number_char(j->p[n]) || (j->p[n] >= 'a' && j->p[n] <= 'z')))
        n++;
    memcpy(buf, j->p, n);
    buf[n] = 0;
    return buf;
}
