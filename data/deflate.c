/* DEFLATE encoding (RFC 1951) for the writers: stored blocks, or one
 * fixed-Huffman block with LZ77 matches found through a hash chain. Not
 * zlib's ratio, but images with flat areas and repeated rows (grids,
 * borders, dark backgrounds) shrink several times, with no code table to
 * send. */
#include <string.h>

#include "internal.h"

#define WINDOW 32768 /* farthest match distance, section 3.2.5 */
#define MIN_MATCH 3
#define MAX_MATCH 258
#define HASH_BITS 15
#define MAX_CHAIN 32 /* candidates tried per position */

/* Bits go out least significant first (section 3.1.1). */
typedef struct bit_writer {
    nd_bytes *out;
    uint64_t bits;
    int n;
} bit_writer;

static void put_bits(bit_writer *w, unsigned v, int k) {
    w->bits |= (uint64_t)v << w->n;
    w->n += k;
    if (w->n >= 32) {
        nd__bytes_reserve(w->out, w->out->size + 4);
        unsigned char *p = w->out->data + w->out->size;
        for (int i = 0; i < 4; i++) p[i] = (unsigned char)(w->bits >> (8 * i));
        w->out->size += 4;
        w->bits >>= 32;
        w->n -= 32;
    }
}

/* Out to the byte boundary, the last bits padded with zeros. */
static void flush_bits(bit_writer *w) {
    while (w->n > 0) {
        unsigned char b = (unsigned char)w->bits;
        nd__bytes_put(w->out, &b, 1);
        w->bits >>= 8;
        w->n = w->n > 8 ? w->n - 8 : 0;
    }
    w->bits = 0;
}

/* Huffman codes are sent from their most significant bit. */
static void put_code(bit_writer *w, unsigned code, int len) {
    unsigned r = 0;
    for (int k = 0; k < len; k++, code >>= 1) r = r << 1 | (code & 1);
    put_bits(w, r, len);
}

/* Section 3.2.4: at most 65535 bytes per block; an empty input is one
 * empty final block. */
static void deflate_stored(const unsigned char *in, size_t n, nd_bytes *out) {
    bit_writer w = {out, 0, 0};
    size_t at = 0;
    do {
        size_t k = n - at < 65535 ? n - at : 65535;
        put_bits(&w, at + k == n, 1); /* BFINAL */
        put_bits(&w, 0, 2);           /* BTYPE 00 */
        flush_bits(&w);
        unsigned char h[4] = {(unsigned char)k, (unsigned char)(k >> 8),
                              (unsigned char)~k, (unsigned char)(~k >> 8)};
        nd__bytes_put(out, h, 4);
        if (k) nd__bytes_put(out, in + at, k); /* in may be NULL when n is 0 */
        at += k;
    } while (at < n);
}

/* Section 3.2.6: the fixed literal/length code. */
static void put_literal_length(bit_writer *w, unsigned v) {
    if (v < 144) put_code(w, 0x30 + v, 8);
    else if (v < 256) put_code(w, 0x190 + v - 144, 9);
    else if (v < 280) put_code(w, v - 256, 7);
    else put_code(w, 0xc0 + v - 280, 8);
}

static void put_match(bit_writer *w, unsigned len, unsigned dist) {
    int k = 28;
    if (len < MAX_MATCH) /* 258 has a symbol of its own, 285 */
        for (k = 0; k < 27 && nd__len_base[k + 1] <= len; k++) {}
    put_literal_length(w, 257 + (unsigned)k);
    put_bits(w, len - nd__len_base[k], nd__len_extra[k]);
    int d = 0;
    while (d < 29 && nd__dist_base[d + 1] <= dist) d++;
    put_code(w, (unsigned)d, 5);
    put_bits(w, dist - nd__dist_base[d], nd__dist_extra[d]);
}

static unsigned hash3(const unsigned char *p) {
    uint32_t v = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    return (v * 2654435761u) >> (32 - HASH_BITS);
}

/* Greedy LZ77: at each position the longest match among the last
 * MAX_CHAIN earlier positions with the same 3-byte hash, within WINDOW. */
static void deflate_fixed(const unsigned char *in, size_t n, nd_bytes *out) {
    /* head[h]: 1 + the latest position with hash h (0: none); prev[i %
     * WINDOW]: 1 + the position before i with the same hash. */
    size_t table = ((size_t)1 << HASH_BITS) * sizeof(size_t);
    size_t chain = WINDOW * sizeof(size_t);
    size_t *head = nd_alloc(table), *prev = nd_alloc(chain);
    memset(head, 0, table);
    memset(prev, 0, chain);
    nd__bytes_reserve(out, out->size + n + n / 8 + 64);
    bit_writer w = {out, 0, 0};
    put_bits(&w, 1, 1); /* BFINAL: the only block */
    put_bits(&w, 1, 2); /* BTYPE 01, fixed Huffman */
    size_t i = 0;
    while (i < n) {
        size_t best = 0, best_dist = 0;
        if (n - i >= MIN_MATCH) {
            size_t limit = n - i < MAX_MATCH ? n - i : MAX_MATCH;
            unsigned h = hash3(in + i);
            size_t c = head[h];
            for (int tries = 0; c && tries < MAX_CHAIN; tries++) {
                size_t j = c - 1;
                if (i - j > WINDOW) break;
                size_t len = 0;
                while (len < limit && in[j + len] == in[i + len]) len++;
                if (len > best) {
                    best = len;
                    best_dist = i - j;
                    if (len == limit) break;
                }
                size_t p = prev[j % WINDOW];
                if (p == 0 || p - 1 >= j) break; /* a stale slot */
                c = p;
            }
        }
        size_t step = best >= MIN_MATCH ? best : 1;
        if (best >= MIN_MATCH) put_match(&w, (unsigned)best, (unsigned)best_dist);
        else put_literal_length(&w, in[i]);
        for (size_t k = 0; k < step; k++, i++) {
            if (n - i < MIN_MATCH) continue;
            unsigned h = hash3(in + i);
            prev[i % WINDOW] = head[h];
            head[h] = i + 1;
        }
    }
    put_literal_length(&w, 256); /* end of block */
    flush_bits(&w);
    nd_dealloc(head, table);
    nd_dealloc(prev, chain);
}

void nd_deflate(const void *in, size_t n, int level, nd_bytes *out) {
    if (!in && n) nd_fatal("deflate", "in is NULL");
    if (!out) nd_fatal("deflate", "out is NULL");
    if (level != 0 && level != 1) nd_fatal("deflate", "level is %d; it must be 0 or 1", level);
    if (level == 0) deflate_stored(in, n, out);
    else deflate_fixed(in, n, out);
}
