/* DEFLATE and gzip decoding: streams made by zlib (vectors.h, from
 * make_vectors.py), round trips through nd_deflate, hand-made corrupt
 * streams with their exact messages, and random truncations and byte
 * corruptions that must never crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "vectors.h"

/* The 200,000 bytes of make_vectors.py's mixed(): words, runs, random
 * bytes and copies from up to 32 KiB back, from xorshift32. */
static const char *const words[] = {"noise", "diffusion", "the", "model", "learns",
                                    "to", "remove", "step", "by", "a", "of", "image",
                                    "sample", "and", "reverse", "chain", "gaussian",
                                    "beta", "schedule", "x"};

static unsigned char *mixed_data(size_t n) {
    /* A segment adds at most 302 bytes past n. */
    unsigned char *out = malloc(n + 1024);
    size_t len = 0;
    uint32_t s = 2463534242u;
    while (len < n) {
        uint32_t kind = td_rand(&s) % 4;
        if (kind == 0) {
            for (uint32_t k = 5 + td_rand(&s) % 20; k > 0; k--) {
                const char *w = words[td_rand(&s) % 20];
                memcpy(out + len, w, strlen(w));
                len += strlen(w);
                out[len++] = ' ';
            }
        } else if (kind == 1) {
            unsigned char b = (unsigned char)(td_rand(&s) & 255);
            for (uint32_t k = 3 + td_rand(&s) % 300; k > 0; k--) out[len++] = b;
        } else if (kind == 2) {
            for (uint32_t k = 1 + td_rand(&s) % 64; k > 0; k--)
                out[len++] = (unsigned char)(td_rand(&s) & 255);
        } else if (len > 0) {
            size_t d = 1 + td_rand(&s) % (len < 32768 ? len : 32768);
            for (uint32_t k = 3 + td_rand(&s) % 300; k > 0; k--, len++) out[len] = out[len - d];
        }
    }
    return out;
}

static void inflate_ok(const void *z, size_t n, size_t max, nd_bytes *out, size_t *used) {
    nd_error err = {{0}};
    int rc = nd_inflate(z, n, max, out, used, &err);
    ck_assert_msg(rc == ND_OK, "inflate failed: %s", err.message);
}

START_TEST(test_zlib_vectors) {
    unsigned char *mix = mixed_data(MIXED_SIZE);
    ck_assert_uint_eq(nd_crc32(ND_CRC32_INIT, mix, MIXED_SIZE), MIXED_CRC);
    for (size_t i = 0; i < sizeof deflate_vectors / sizeof *deflate_vectors; i++) {
        const struct deflate_vector *v = &deflate_vectors[i];
        nd_bytes out;
        size_t used = 0;
        /* Exactly the room it needs, and a byte more of input after it. */
        unsigned char *z = malloc(v->zn + 1);
        memcpy(z, v->z, v->zn);
        z[v->zn] = 0xa5;
        inflate_ok(z, v->zn + 1, v->size, &out, &used);
        ck_assert_msg(out.size == v->size, "%s: %zu bytes, expected %zu", v->name, out.size,
                      v->size);
        ck_assert_uint_eq(used, v->zn);
        ck_assert_uint_eq(nd_crc32(ND_CRC32_INIT, out.data, out.size), v->crc);
        if (v->size == MIXED_SIZE) ck_assert(memcmp(out.data, mix, MIXED_SIZE) == 0);
        if (v->size == TEXT_SIZE) ck_assert(memcmp(out.data, text_plain, TEXT_SIZE) == 0);
        if (v->size && v->size <= 300) ck_assert(memcmp(out.data, text_plain, v->size) == 0 ||
                                                 strcmp(v->name, "one_byte") == 0);
        nd_bytes_free(&out);
        /* One byte less room. */
        if (v->size > 0) {
            nd_error err = {{0}};
            char want[128];
            ck_assert_int_eq(nd_inflate(z, v->zn, v->size - 1, &out, NULL, &err), ND_ERR);
            snprintf(want, sizeof want, "decompressed data larger than the maximum of %zu bytes",
                     v->size - 1);
            td_expect(&err, NULL, want);
            ck_assert_ptr_null(out.data);
            ck_assert_uint_eq(out.size, 0);
        }
        free(z);
    }
    free(mix);
}
END_TEST

static void gunzip_ok(const void *z, size_t n, nd_bytes *out) {
    nd_error err = {{0}};
    int rc = nd_gunzip(z, n, (size_t)1 << 30, out, &err);
    ck_assert_msg(rc == ND_OK, "gunzip failed: %s", err.message);
}

START_TEST(test_gzip_vectors) {
    nd_bytes out;
    gunzip_ok(gz_plain, sizeof gz_plain, &out);
    ck_assert_uint_eq(out.size, TEXT_SIZE);
    ck_assert(memcmp(out.data, text_plain, TEXT_SIZE) == 0);
    nd_bytes_free(&out);
    gunzip_ok(gz_flags, sizeof gz_flags, &out); /* every optional header field */
    ck_assert_uint_eq(out.size, 300);
    ck_assert(memcmp(out.data, text_plain, 300) == 0);
    nd_bytes_free(&out);
    gunzip_ok(gz_two, sizeof gz_two, &out); /* two members, one after the other */
    ck_assert_uint_eq(out.size, 20);
    ck_assert(memcmp(out.data, "first member\nsecond\n", 20) == 0);
    nd_bytes_free(&out);
    gunzip_ok(gz_empty, sizeof gz_empty, &out);
    ck_assert_uint_eq(out.size, 0);
    nd_bytes_free(&out);
    /* The library's own gzip, stored and fixed Huffman. */
    for (int level = 0; level <= 1; level++) {
        size_t n;
        unsigned char *gz = td_gzip(text_plain, TEXT_SIZE, level, &n);
        gunzip_ok(gz, n, &out);
        ck_assert_uint_eq(out.size, TEXT_SIZE);
        ck_assert(memcmp(out.data, text_plain, TEXT_SIZE) == 0);
        nd_bytes_free(&out);
        free(gz);
    }
}
END_TEST

/* Regression (found by fuzz/inflate.c): the CRC of an empty member was
 * taken over out->data + start with out->data still NULL, which is
 * undefined behaviour (clang's -fsanitize=undefined stops on it). Empty
 * members alone, twice, after data and under a limit of 0 bytes. */
START_TEST(test_gzip_empty_members) {
    unsigned char two[2 * sizeof gz_empty], after[sizeof gz_plain + sizeof gz_empty];
    memcpy(two, gz_empty, sizeof gz_empty);
    memcpy(two + sizeof gz_empty, gz_empty, sizeof gz_empty);
    memcpy(after, gz_plain, sizeof gz_plain);
    memcpy(after + sizeof gz_plain, gz_empty, sizeof gz_empty);
    nd_bytes out;
    nd_error err = {{0}};
    ck_assert_int_eq(nd_gunzip(gz_empty, sizeof gz_empty, 0, &out, &err), ND_OK);
    ck_assert_uint_eq(out.size, 0);
    nd_bytes_free(&out);
    gunzip_ok(two, sizeof two, &out);
    ck_assert_uint_eq(out.size, 0);
    nd_bytes_free(&out);
    gunzip_ok(after, sizeof after, &out);
    ck_assert_uint_eq(out.size, TEXT_SIZE);
    ck_assert(memcmp(out.data, text_plain, TEXT_SIZE) == 0);
    nd_bytes_free(&out);
}
END_TEST

/* Regression (found by fuzz/inflate.c): nd_deflate of no bytes at level
 * 0 computed in + 0 with in NULL, which the API allows when n is 0 and
 * clang's -fsanitize=undefined stops on. Both levels, decoded back from a
 * NULL-free stream to nothing. */
START_TEST(test_deflate_nothing) {
    for (int level = 0; level <= 1; level++) {
        nd_bytes z = {0}, out;
        nd_deflate(NULL, 0, level, &z);
        ck_assert_uint_gt(z.size, 0);
        size_t used;
        inflate_ok(z.data, z.size, 0, &out, &used);
        ck_assert_uint_eq(used, z.size);
        ck_assert_uint_eq(out.size, 0);
        nd_bytes_free(&z);
        nd_bytes_free(&out);
    }
}
END_TEST

/* nd_deflate at both levels, back through nd_inflate. */
static void round_trip(const unsigned char *p, size_t n) {
    for (int level = 0; level <= 1; level++) {
        nd_bytes z = {0}, out;
        nd_deflate(p, n, level, &z);
        size_t used;
        inflate_ok(z.data, z.size, n, &out, &used);
        ck_assert_uint_eq(used, z.size);
        ck_assert_uint_eq(out.size, n);
        if (n) ck_assert(memcmp(out.data, p, n) == 0);
        nd_bytes_free(&z);
        nd_bytes_free(&out);
    }
}

START_TEST(test_round_trip) {
    round_trip(NULL, 0);
    round_trip((const unsigned char *)"Z", 1);
    round_trip(text_plain, TEXT_SIZE);
    unsigned char *mix = mixed_data(MIXED_SIZE);
    round_trip(mix, MIXED_SIZE); /* stored: four blocks; fixed: far matches */
    /* Fixed Huffman shrinks repetitive data. */
    nd_bytes z = {0};
    nd_deflate(mix, MIXED_SIZE, 1, &z);
    ck_assert_uint_lt(z.size, MIXED_SIZE / 2);
    nd_bytes_free(&z);
    free(mix);
    uint32_t s = 99;
    for (int k = 0; k < 20; k++) {
        size_t n = td_rand(&s) % 70000;
        unsigned char *p = malloc(n + 1);
        /* Random bytes from a small alphabet, with runs: many matches. */
        for (size_t i = 0; i < n; i++)
            p[i] = i && td_rand(&s) % 4 == 0 ? p[i - 1] : (unsigned char)(td_rand(&s) % (k + 2));
        round_trip(p, n);
        free(p);
    }
}
END_TEST

/* ---- hand-made streams ------------------------------------------------- */

typedef struct bits {
    unsigned char b[512];
    size_t n; /* bits written */
} bits;

/* v in k bits, least significant first (RFC 1951 section 3.1.1). */
static void put(bits *w, unsigned v, int k) {
    for (int i = 0; i < k; i++, w->n++)
        if (v >> i & 1) w->b[w->n / 8] |= (unsigned char)(1u << (w->n % 8));
}

/* A Huffman code, most significant bit first. */
static void code(bits *w, unsigned c, int len) {
    for (int i = len - 1; i >= 0; i--) put(w, c >> i & 1, 1);
}

static size_t bytes_of(const bits *w) { return (w->n + 7) / 8; }

/* Fixed code (section 3.2.6) of literal/length v. */
static void fixed_sym(bits *w, unsigned v) {
    if (v < 144) code(w, 0x30 + v, 8);
    else if (v < 256) code(w, 0x190 + v - 144, 9);
    else if (v < 280) code(w, v - 256, 7);
    else code(w, 0xc0 + v - 280, 8);
}

/* A dynamic block header with HLIT hlit, HDIST hdist and a complete
 * code-length code of six symbols: 1 and 18 in 2 bits (00, 01); 0, 2, 16
 * and 17 in 3 (100, 101, 110, 111). */
static void dyn_header(bits *w, int hlit, int hdist) {
    static const int order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    int len[19] = {0};
    len[1] = len[18] = 2;
    len[0] = len[2] = len[16] = len[17] = 3;
    put(w, 1, 1);
    put(w, 2, 2);
    put(w, (unsigned)(hlit - 257), 5);
    put(w, (unsigned)(hdist - 1), 5);
    put(w, 18 - 4, 4);
    for (int i = 0; i < 18; i++) put(w, (unsigned)len[order[i]], 3);
}

/* Code-length symbol sym, with its extra bits. */
static void dyn_sym(bits *w, int sym, unsigned extra) {
    switch (sym) {
    case 1: code(w, 0, 2); break;
    case 18: code(w, 1, 2); put(w, extra, 7); break;
    case 0: code(w, 4, 3); break;
    case 2: code(w, 5, 3); break;
    case 16: code(w, 6, 3); put(w, extra, 2); break;
    case 17: code(w, 7, 3); put(w, extra, 3); break;
    default: ck_abort_msg("no code for %d", sym);
    }
}

/* The lengths len[0..n) (each 0, 1 or 2), runs of zeros as 17 and 18. */
static void dyn_lengths(bits *w, const unsigned char *len, int n) {
    for (int i = 0; i < n;) {
        int run = 0;
        while (i + run < n && len[i + run] == 0) run++;
        if (run >= 11) {
            int k = run < 138 ? run : 138;
            dyn_sym(w, 18, (unsigned)(k - 11));
            i += k;
        } else if (run >= 3) {
            dyn_sym(w, 17, (unsigned)(run - 3));
            i += run;
        } else {
            dyn_sym(w, len[i], 0);
            i++;
        }
    }
}

typedef struct lengths {
    unsigned char len[320];
} lengths;

static void expect_inflate_error(const bits *w, size_t max, const char *what) {
    nd_bytes out;
    nd_error err = {{0}};
    memset(&out, 0xab, sizeof out);
    ck_assert_int_eq(nd_inflate(w->b, bytes_of(w), max, &out, NULL, &err), ND_ERR);
    td_expect(&err, NULL, what);
    ck_assert(out.data == NULL && out.size == 0 && out.cap == 0);
}

START_TEST(test_hand_made_dynamic) {
    /* 'a' and end-of-block in one bit each, no distance code: "aaa". */
    bits w = {{0}, 0};
    lengths l = {{0}};
    l.len['a'] = l.len[256] = 1;
    dyn_header(&w, 257, 1);
    dyn_lengths(&w, l.len, 258);
    code(&w, 0, 1);
    code(&w, 0, 1);
    code(&w, 0, 1);
    code(&w, 1, 1);
    nd_bytes out;
    size_t used;
    inflate_ok(w.b, bytes_of(&w), 10, &out, &used);
    ck_assert_uint_eq(used, bytes_of(&w));
    ck_assert_uint_eq(out.size, 3);
    ck_assert(memcmp(out.data, "aaa", 3) == 0);
    nd_bytes_free(&out);
    /* With a match: 'a', then length 3 at distance 1 ("aaaa"); the only
     * distance code is one bit (allowed alone, section 3.2.7). */
    memset(&w, 0, sizeof w);
    memset(&l, 0, sizeof l);
    l.len['a'] = 1;
    l.len[256] = l.len[257] = 2;
    l.len[257 + 1] = 1; /* distance 0 */
    dyn_header(&w, 258, 1);
    dyn_lengths(&w, l.len, 259);
    code(&w, 0, 1);  /* a */
    code(&w, 3, 2);  /* 257: length 3 */
    code(&w, 0, 1);  /* distance 1 */
    code(&w, 2, 2);  /* end */
    inflate_ok(w.b, bytes_of(&w), 10, &out, NULL);
    ck_assert_uint_eq(out.size, 4);
    ck_assert(memcmp(out.data, "aaaa", 4) == 0);
    nd_bytes_free(&out);
}
END_TEST

START_TEST(test_corrupt_deflate) {
#define C "corrupt deflate data: "
    bits w = {{0}, 0};
    expect_inflate_error(&w, 10, C "unexpected end of input at byte 0");
    put(&w, 1, 1);
    put(&w, 3, 2);
    expect_inflate_error(&w, 10, C "invalid block type 3 at byte 0");

    /* An empty stored block that is not the last, then type 3. */
    memset(&w, 0, sizeof w);
    put(&w, 0, 3);
    put(&w, 0, 5);
    put(&w, 0, 16);
    put(&w, 0xffff, 16);
    put(&w, 1, 1);
    put(&w, 3, 2);
    expect_inflate_error(&w, 10, C "invalid block type 3 at byte 5");

    memset(&w, 0, sizeof w);
    put(&w, 1, 8);
    put(&w, 5, 16);
    put(&w, 0, 16);
    expect_inflate_error(&w, 10, C "stored block length 5 does not match its complement "
                                 "(LEN 0x0005, NLEN 0x0000) at byte 1");
    memset(&w, 0, sizeof w);
    put(&w, 1, 8);
    put(&w, 5, 16);
    put(&w, 0xfffa, 16);
    put(&w, 'a', 8);
    put(&w, 'b', 8);
    expect_inflate_error(&w, 10, C "unexpected end of input at byte 7");

    /* Fixed Huffman: 'a', then length 3 at distance 2. */
    memset(&w, 0, sizeof w);
    put(&w, 1, 1);
    put(&w, 1, 2);
    fixed_sym(&w, 'a');
    fixed_sym(&w, 257);
    code(&w, 1, 5);
    fixed_sym(&w, 256);
    expect_inflate_error(&w, 10, C "distance 2 is too far back: only 1 byte written so far "
                                 "at byte 2");
    memset(&w, 0, sizeof w);
    put(&w, 1, 1);
    put(&w, 1, 2);
    fixed_sym(&w, 286);
    expect_inflate_error(&w, 10, C "invalid length symbol 286 at byte 0");
    memset(&w, 0, sizeof w);
    put(&w, 1, 1);
    put(&w, 1, 2);
    fixed_sym(&w, 'a');
    fixed_sym(&w, 'b');
    fixed_sym(&w, 257);
    code(&w, 30, 5);
    expect_inflate_error(&w, 10, C "invalid distance symbol 30 at byte 3");
    /* Cut inside a 9-bit literal. */
    memset(&w, 0, sizeof w);
    put(&w, 1, 1);
    put(&w, 1, 2);
    fixed_sym(&w, 'a');
    fixed_sym(&w, 200);
    w.n = 16;
    expect_inflate_error(&w, 10, C "unexpected end of input at byte 2");
    /* No end-of-block. */
    w.n = 11;
    w.b[1] &= 0x07;
    expect_inflate_error(&w, 10, C "unexpected end of input at byte 2");
    /* "aaaa" into 3 bytes. */
    memset(&w, 0, sizeof w);
    put(&w, 1, 1);
    put(&w, 1, 2);
    fixed_sym(&w, 'a');
    fixed_sym(&w, 257);
    code(&w, 0, 5);
    fixed_sym(&w, 256);
    expect_inflate_error(&w, 3, "decompressed data larger than the maximum of 3 bytes");

    /* Dynamic blocks: the counts. */
    memset(&w, 0, sizeof w);
    put(&w, 1, 1);
    put(&w, 2, 2);
    put(&w, 30, 5);
    put(&w, 0, 9);
    expect_inflate_error(&w, 10, C "HLIT gives 287 literal/length codes, more than the 286 "
                                 "that exist at byte 0");
    memset(&w, 0, sizeof w);
    put(&w, 1, 1);
    put(&w, 2, 2);
    put(&w, 0, 5);
    put(&w, 31, 5);
    put(&w, 0, 4);
    expect_inflate_error(&w, 10, C "HDIST gives 32 distance codes, more than the 30 that "
                                 "exist at byte 0");
    /* The code-length code: 19 codes of one bit; one code of one bit. */
    memset(&w, 0, sizeof w);
    put(&w, 1, 1);
    put(&w, 2, 2);
    put(&w, 0, 10);
    put(&w, 15, 4);
    for (int i = 0; i < 19; i++) put(&w, 1, 3);
    expect_inflate_error(&w, 10, C "over-subscribed code-length code at byte 0");
    memset(&w, 0, sizeof w);
    put(&w, 1, 1);
    put(&w, 2, 2);
    put(&w, 0, 10);
    put(&w, 0, 4);
    put(&w, 0, 9);
    put(&w, 1, 3);
    expect_inflate_error(&w, 10, C "incomplete code-length code at byte 0");
    /* The code lengths. */
    memset(&w, 0, sizeof w);
    dyn_header(&w, 257, 1);
    dyn_sym(&w, 16, 0);
    expect_inflate_error(&w, 10, C "code length 16 repeats the previous length, but there "
                                 "is none at byte 8");
    memset(&w, 0, sizeof w);
    dyn_header(&w, 257, 1);
    dyn_sym(&w, 18, 127);
    dyn_sym(&w, 18, 127);
    expect_inflate_error(&w, 10, C "code lengths repeat past the 258 that HLIT and HDIST "
                                 "give at byte 10");
    lengths l = {{0}};
    l.len['a'] = l.len['b'] = 1;
    memset(&w, 0, sizeof w);
    dyn_header(&w, 257, 1);
    dyn_lengths(&w, l.len, 258);
    expect_inflate_error(&w, 10, C "no code for the end of the block (symbol 256 has "
                                 "length 0) at byte 0");
    l.len[256] = 1;
    memset(&w, 0, sizeof w);
    dyn_header(&w, 257, 1);
    dyn_lengths(&w, l.len, 258);
    expect_inflate_error(&w, 10, C "over-subscribed literal/length code at byte 0");
    memset(&l, 0, sizeof l);
    l.len['a'] = 1;
    l.len[256] = 2;
    memset(&w, 0, sizeof w);
    dyn_header(&w, 257, 1);
    dyn_lengths(&w, l.len, 258);
    expect_inflate_error(&w, 10, C "incomplete literal/length code at byte 0");
    memset(&l, 0, sizeof l);
    l.len['a'] = l.len[256] = 1;
    l.len[257] = l.len[258] = l.len[259] = 1;
    memset(&w, 0, sizeof w);
    dyn_header(&w, 257, 3);
    dyn_lengths(&w, l.len, 260);
    expect_inflate_error(&w, 10, C "over-subscribed distance code at byte 0");
    memset(&l, 0, sizeof l);
    l.len['a'] = l.len[256] = 1;
    l.len[257] = l.len[258] = 2;
    memset(&w, 0, sizeof w);
    dyn_header(&w, 257, 2);
    dyn_lengths(&w, l.len, 259);
    expect_inflate_error(&w, 10, C "incomplete distance code at byte 0");
    /* A lone one-bit code leaves the other bit invalid. */
    memset(&l, 0, sizeof l);
    l.len[256] = 1;
    memset(&w, 0, sizeof w);
    dyn_header(&w, 257, 1);
    dyn_lengths(&w, l.len, 258);
    size_t at = w.n / 8;
    code(&w, 1, 1);
    char want[128];
    snprintf(want, sizeof want, C "invalid literal/length code at byte %zu", at);
    expect_inflate_error(&w, 10, want);
    memset(&l, 0, sizeof l);
    l.len['a'] = 1;
    l.len[256] = l.len[257] = 2;
    l.len[258] = 1;
    memset(&w, 0, sizeof w);
    dyn_header(&w, 258, 1);
    dyn_lengths(&w, l.len, 259);
    code(&w, 0, 1);
    code(&w, 3, 2);
    at = w.n / 8;
    code(&w, 1, 1);
    snprintf(want, sizeof want, C "invalid distance code at byte %zu", at);
    expect_inflate_error(&w, 10, want);
#undef C
}
END_TEST

START_TEST(test_corrupt_gzip) {
    nd_error err;
    nd_bytes out;
    char want[256];
    size_t n = sizeof gz_plain;
    unsigned char *b = malloc(n + 16);
#define GZ_ERROR(len, what)                                                     \
    do {                                                                       \
        memset(&err, 0, sizeof err);                                           \
        ck_assert_int_eq(nd_gunzip(b, (len), 1 << 20, &out, &err), ND_ERR);    \
        td_expect(&err, NULL, (what));                                         \
        ck_assert(out.data == NULL && out.size == 0);                          \
        memcpy(b, gz_plain, n);                                                \
    } while (0)
    memcpy(b, gz_plain, n);
    GZ_ERROR(0, "not gzip data: the input is empty");
    b[1] = 0x8c;
    GZ_ERROR(n, "not gzip data: the bytes at 0 are 1f 8c, not the magic 1f 8b");
    b[2] = 7;
    GZ_ERROR(n, "gzip: compression method 7 is not deflate (8)");
    b[3] = 0x40;
    GZ_ERROR(n, "gzip: reserved flag bits 0x40 are set");
    GZ_ERROR(6, "gzip: the input ends inside a member's header (at byte 6)");
    b[3] = 4; /* FEXTRA, its length past the end */
    b[10] = 0xff;
    b[11] = 0xff;
    snprintf(want, sizeof want, "gzip: the input ends inside a member's header (at byte %zu)", n);
    GZ_ERROR(n, want);
    b[3] = 8; /* FNAME and no zero byte */
    memset(b + 10, 'x', n - 10);
    GZ_ERROR(n, "gzip: the header's file name has no terminating zero byte");
    b[10] = 0x07; /* a deflate block of type 3 */
    GZ_ERROR(n, "corrupt deflate data: invalid block type 3 at byte 10");
    b[n - 8] ^= 1;
    uint32_t crc = nd_crc32(ND_CRC32_INIT, text_plain, TEXT_SIZE);
    snprintf(want, sizeof want, "gzip: CRC-32 mismatch: stored 0x%08x, the data gives 0x%08x",
             (unsigned)(crc ^ 1), (unsigned)crc);
    GZ_ERROR(n, want);
    b[n - 4] ^= 1;
    snprintf(want, sizeof want, "gzip: length mismatch: ISIZE says %u bytes, the data has %u",
             (unsigned)(TEXT_SIZE ^ 1), (unsigned)TEXT_SIZE);
    GZ_ERROR(n, want);
    snprintf(want, sizeof want, "gzip: the input ends inside a member's trailer (at byte %zu)",
             n - 3);
    GZ_ERROR(n - 3, want);
    memcpy(b + n, "xyz", 3);
    snprintf(want, sizeof want, "gzip: 3 bytes after the last member (from byte %zu) are not "
             "a gzip member", n);
    GZ_ERROR(n + 3, want);
    memcpy(b + n, "\x1f", 1);
    snprintf(want, sizeof want, "gzip: 1 byte after the last member (from byte %zu) is not "
             "a gzip member", n);
    GZ_ERROR(n + 1, want);
    free(b);
#undef GZ_ERROR
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(nd_gunzip(gz_plain, n, 100, &out, &err), ND_ERR);
    td_expect(&err, NULL, "decompressed data larger than the maximum of 100 bytes");
    /* The header CRC (FHCRC) of the member with every field: 10 bytes,
     * XLEN and 8 bytes of extra field, a name of 12 and a comment of 19
     * with their zeros, then the CRC at 51. */
    unsigned char f[sizeof gz_flags];
    memcpy(f, gz_flags, sizeof f);
    unsigned computed = nd_crc32(ND_CRC32_INIT, f, 51) & 0xffff;
    ck_assert_uint_eq(f[51] | f[52] << 8, computed);
    f[51] ^= 1;
    snprintf(want, sizeof want, "gzip: header CRC mismatch: stored 0x%04x, computed 0x%04x",
             computed ^ 1, computed);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(nd_gunzip(f, sizeof f, 1 << 20, &out, &err), ND_ERR);
    td_expect(&err, NULL, want);
    /* The ISIZE of the second of two members. */
    unsigned char two[sizeof gz_two];
    memcpy(two, gz_two, sizeof two);
    two[sizeof two - 1] ^= 1;
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(nd_gunzip(two, sizeof two, 1 << 20, &out, &err), ND_ERR);
    td_expect(&err, NULL, "gzip: length mismatch: ISIZE says 16777223 bytes, the data has 7");
}
END_TEST

/* Random truncations and single-byte changes of valid streams: each must
 * decode or fail cleanly (ASan and UBSan watch every read), and never
 * give more than the maximum. */
static void fuzz(const unsigned char *valid, size_t n, bool gzip, uint32_t seed, int rounds) {
    unsigned char *b = malloc(n + 1);
    uint32_t s = seed;
    for (int r = 0; r < rounds; r++) {
        memcpy(b, valid, n);
        size_t len = n;
        if (r % 2 == 0) len = td_rand(&s) % n;
        else b[td_rand(&s) % n] ^= (unsigned char)(1 + td_rand(&s) % 255);
        size_t max = 1 + td_rand(&s) % 20000;
        nd_bytes out;
        nd_error err = {{0}};
        int rc = gzip ? nd_gunzip(b, len, max, &out, &err)
                      : nd_inflate(b, len, max, &out, NULL, &err);
        ck_assert(rc == ND_OK || rc == ND_ERR);
        if (rc == ND_OK) ck_assert_uint_le(out.size, max);
        else ck_assert(out.data == NULL && err.message[0]);
        nd_bytes_free(&out);
    }
    free(b);
}

START_TEST(test_fuzz_inflate) {
    fuzz(z_dynamic, sizeof z_dynamic, false, 1, 300);
    fuzz(z_fixed, sizeof z_fixed, false, 2, 300);
    fuzz(z_stored, sizeof z_stored, false, 3, 200);
    fuzz(z_mixed, 4000, false, 4, 200); /* the start of a long stream */
    fuzz(gz_flags, sizeof gz_flags, true, 5, 300);
    fuzz(gz_two, sizeof gz_two, true, 6, 200);
    nd_bytes z = {0};
    nd_deflate(text_plain, TEXT_SIZE, 1, &z);
    fuzz(z.data, z.size, false, 7, 300);
    nd_bytes_free(&z);
}
END_TEST

TCase *tcase_inflate(void) {
    TCase *tc = nd_test_case("inflate");
    tcase_add_test(tc, test_zlib_vectors);
    tcase_add_test(tc, test_gzip_vectors);
    tcase_add_test(tc, test_gzip_empty_members);
    tcase_add_test(tc, test_deflate_nothing);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_hand_made_dynamic);
    tcase_add_test(tc, test_corrupt_deflate);
    tcase_add_test(tc, test_corrupt_gzip);
    tcase_add_test(tc, test_fuzz_inflate);
    return tc;
}
