/* A small strict JSON reader (RFC 8259) for safetensors headers. Private
 * to tensor/; not installed.
 *
 * Reading is in two steps: nd__json_check validates the whole text once
 * (syntax, string escapes, UTF-8, nesting depth), allocating nothing; a
 * cursor then walks the checked text, so that the caller, which knows
 * what it expects, only has to deal with values of the wrong kind. */
#ifndef NANODIFF_TENSOR_JSON_H
#define NANODIFF_TENSOR_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Checks that text[0..len) is one JSON value surrounded only by JSON
 * whitespace, with at most max_depth nested arrays and objects. On failure
 * returns false with *at the offset of the first bad byte and why (at least
 * 64 bytes) saying what is wrong. */
bool nd__json_check(const char *text, size_t len, int max_depth, size_t *at,
                    char *why);

/* A cursor over text that nd__json_check accepted. */
typedef struct nd__json {
    const char *p, *end;
} nd__json;

/* Skips whitespace and returns the next byte without consuming it ('{',
 * '"', '-', '5', ',', ...), or 0 at the end of the text. */
char nd__json_peek(nd__json *j);
/* Consumes the byte nd__json_peek returned. */
void nd__json_advance(nd__json *j);
/* At '"': consumes the string and returns it unescaped as NUL-terminated
 * UTF-8 in malloc'd memory (NULL when out of memory), its length in *len;
 * it may contain NULs (from \u0000). */
char *nd__json_string(nd__json *j, size_t *len);
/* At a number: consumes it and says whether it is written as a plain
 * non-negative integer (no sign, fraction or exponent), in *value when it
 * is below 2^64. */
enum { ND__JSON_UINT, ND__JSON_NOT_UINT, ND__JSON_TOO_LARGE };
int nd__json_uint(nd__json *j, uint64_t *value);
/* Whether s[0..len) is well-formed UTF-8 (as the checker requires inside
 * strings). */
bool nd__json_utf8(const char *s, size_t len);
/* Describes the value at the cursor for a message, without consuming it:
 * the text of a number or literal (cut to fit buf, at least 32 bytes), or
 * "a string", "an array", "an object". */
const char *nd__json_describe(nd__json *j, char *buf, size_t size);

#endif
