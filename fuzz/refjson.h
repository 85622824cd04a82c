/* A second JSON reader (RFC 8259), written apart from tensor/json.c to be
 * compared with it: the json target checks that both accept the same
 * texts and read the same values, and the safetensors target judges the
 * files the loader accepts with it. It builds a tree, decodes UTF-8 into
 * code points (rather than checking byte ranges) and keeps each value's
 * text. Plain malloc; nothing here is fast or clever on purpose. */
#ifndef NANODIFF_FUZZ_REFJSON_H
#define NANODIFF_FUZZ_REFJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { RJ_NULL, RJ_TRUE, RJ_FALSE, RJ_NUMBER, RJ_STRING, RJ_ARRAY, RJ_OBJECT };

typedef struct rj_value {
    int kind;
    const char *text; /* the value's text in the input (after whitespace) */
    size_t text_len;
    char *str;        /* RJ_STRING: unescaped UTF-8, NUL-terminated; may hold NULs */
    size_t len;
    size_t n;                 /* RJ_ARRAY, RJ_OBJECT: members */
    struct rj_value *items;   /* their values */
    struct rj_value *keys;    /* RJ_OBJECT: their keys (RJ_STRING) */
} rj_value;

/* Parses text[0..len) as one JSON value with whitespace around it and at
 * most max_depth nested arrays and objects. On failure returns false and
 * *out is empty. */
bool rj_parse(const char *text, size_t len, int max_depth, rj_value *out);
void rj_free(rj_value *v);

/* Whether s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or
 * code points above U+10FFFF). */
bool rj_utf8(const char *s, size_t n);

/* For RJ_NUMBER: whether the text is a plain non-negative integer (digits
 * only), and its value in *v when below 2^64 (*big otherwise). */
bool rj_uint(const rj_value *v, uint64_t *value, bool *big);

/* The member of an object with the given key (the first one), or NULL. */
const rj_value *rj_get(const rj_value *obj, const char *key);

#endif
