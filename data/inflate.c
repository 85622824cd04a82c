/* DEFLATE decoding (RFC 1951) and the gzip wrapper (RFC 1952).
 *
 * Nothing in the input is trusted: every bit is read through need(),
 * which stops at the end of the input; every output byte goes through a
 * check against the caller's maximum; every match distance is checked
 * against what this stream has written; every Huffman code is checked for
 * over-subscription and completeness before it is used. An error names
 * the defect and the input byte it was found at. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define MAXBITS 15       /* longest code, RFC 1951 section 3.2.2 */
#define FAST_BITS 9      /* codes up to this long decode by one lookup */
#define MAX_LIT 288      /* literal/length symbols, 286 and 287 unused */
#define MAX_DIST 32      /* distance symbols, 30 and 31 unused */
#define CORRUPT "corrupt deflate data: "

/* A canonical Huffman code (RFC 1951 section 3.2.2): the number of codes
 * of each length, the symbols in code order, and a table indexed by the
 * next FAST_BITS input bits giving (symbol << 4 | length) for codes no
 * longer than FAST_BITS, 0 for the rest (decoded bit by bit). */
typedef struct huff {
    unsigned short count[MAXBITS + 1];
    unsigned short symbol[MAX_LIT];
    unsigned short fast[1 << FAST_BITS];
    int max_len;
} huff;

typedef struct inflater {
    const unsigned char *in;
    size_t n, pos;   /* in[pos] is the next byte to load into bits */
    uint64_t bits;   /* loaded bits, the next one lowest */
    int nbits;
    size_t base;     /* where in[0] is in the caller's input, for messages */
    nd_bytes *out;
    size_t start;    /* out->size when this stream began: matches stop there */
    size_t max;
    nd_error *err;
    huff lit, dist;
} inflater;

/* The input byte holding the next unread bit. */
static size_t byte_at(const inflater *s) { return s->pos - (size_t)(s->nbits + 7) / 8; }

ND_PRINTF(3, 4) static int bad(inflater *s, size_t at, const char *fmt, ...) {
    char what[sizeof s->err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return nd_error_set(s->err, CORRUPT "%s at byte %zu", what, s->base + at);
}

static int end_of_input(inflater *s) {
    return nd_error_set(s->err, CORRUPT "unexpected end of input at byte %zu",
                        s->base + s->n);
}

/* ---- bits: least significant first within a byte (section 3.1.1) ------ */

static void refill(inflater *s) {
    while (s->nbits <= 56 && s->pos < s->n) {
        s->bits |= (uint64_t)s->in[s->pos++] << s->nbits;
        s->nbits += 8;
    }
}

/* At least k (<= 32) bits loaded, or the input has ended. */
static int need(inflater *s, int k) {
    if (s->nbits < k) refill(s);
    return s->nbits < k ? end_of_input(s) : ND_OK;
}

static unsigned take(inflater *s, int k) {
    unsigned v = (unsigned)(s->bits & ((1u << k) - 1));
    s->bits >>= k;
    s->nbits -= k;
    return v;
}

/* ---- Huffman codes ----------------------------------------------------- */

static unsigned reverse(unsigned code, int len) {
    unsigned r = 0;
    for (int k = 0; k < len; k++, code >>= 1) r = r << 1 | (code & 1);
    return r;
}

/* Which incomplete codes build() lets through: none at all (a block of
 * literals only needs no distance code, section 3.2.7) and a single code
 * of one bit (section 3.2.7 for distances; zlib accepts it for literal/
 * length codes too). */
enum { ALLOW_EMPTY = 1, ALLOW_SINGLE = 2 };

/* The code of n symbols with the given lengths (0: symbol unused). Over-
 * subscribed codes are refused, incomplete ones too unless allow says.
 * what names the code in messages; at is the byte its lengths began. */
static int build(inflater *s, huff *h, const unsigned char *len, int n,
                 const char *what, size_t at, int allow) {
    memset(h->count, 0, sizeof h->count);
    for (int i = 0; i < n; i++) h->count[len[i]]++;
    h->count[0] = 0;
    int left = 1, total = 0;
    h->max_len = 0;
    for (int l = 1; l <= MAXBITS; l++) {
        left = 2 * left - h->count[l];
        if (left < 0) return bad(s, at, "over-subscribed %s code", what);
        total += h->count[l];
        if (h->count[l]) h->max_len = l;
    }
    bool single = total == 1 && h->count[1] == 1;
    if (left > 0 && !((single && (allow & ALLOW_SINGLE)) ||
                      (total == 0 && (allow & ALLOW_EMPTY))))
        return bad(s, at, "incomplete %s code", what);
    /* Symbols in code order: by length, then by value (section 3.2.2),
     * with next_code[l] the code of the next symbol of length l. */
    unsigned short offset[MAXBITS + 2];
    unsigned next_code[MAXBITS + 1];
    offset[1] = 0;
    next_code[0] = 0;
    unsigned code = 0;
    for (int l = 1; l <= MAXBITS; l++) {
        offset[l + 1] = (unsigned short)(offset[l] + h->count[l]);
        code = (code + h->count[l - 1]) << 1;
        next_code[l] = code;
    }
    memset(h->fast, 0, sizeof h->fast);
    for (int i = 0; i < n; i++) {
        int l = len[i];
        if (!l) continue;
        h->symbol[offset[l]++] = (unsigned short)i;
        unsigned c = next_code[l]++;
        if (l > FAST_BITS) continue;
        /* The stream holds a code's bits from its most significant one
         * (section 3.1.1), so the lookup index is the code reversed, with
         * any FAST_BITS - l bits after it. */
        for (unsigned k = reverse(c, l); k < (1u << FAST_BITS); k += 1u << l)
            h->fast[k] = (unsigned short)(i << 4 | l);
    }
    return ND_OK;
}

/* The next symbol of code h into *sym. */
static int decode(inflater *s, const huff *h, const char *what, int *sym) {
    size_t at = byte_at(s);
    if (s->nbits < MAXBITS) refill(s);
    unsigned e = h->fast[s->bits & ((1u << FAST_BITS) - 1)];
    if (e && (int)(e & 15) <= s->nbits) {
        take(s, (int)(e & 15));
        *sym = (int)(e >> 4);
        return ND_OK;
    }
    /* Bit by bit: the codes of length l are the consecutive numbers from
     * first, so a code read so far is complete when it falls in
     * [first, first + count[l]). */
    int code = 0, first = 0, index = 0;
    for (int l = 1; l <= h->max_len; l++) {
        if (s->nbits == 0) return end_of_input(s);
        code |= (int)take(s, 1);
        int count = h->count[l];
        if (code >= first && code - first < count) {
            *sym = h->symbol[index + code - first];
            return ND_OK;
        }
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    return bad(s, at, "invalid %s code", what);
}

/* ---- blocks ------------------------------------------------------------ */

/* Room for k more output bytes, within the caller's maximum. */
static int room(inflater *s, size_t k) {
    nd_bytes *o = s->out;
    if (k > s->max - o->size)
        return nd_error_set(s->err, "decompressed data larger than the maximum of %zu "
                            "bytes", s->max);
    if (o->cap - o->size >= k) return ND_OK;
    size_t want = o->cap < s->max / 2 ? 2 * o->cap : s->max;
    if (want < o->size + k) want = o->size + k;
    nd__bytes_reserve(o, want);
    return ND_OK;
}

/* Section 3.2.4: to the byte boundary, LEN, NLEN = ~LEN, LEN raw bytes. */
static int stored(inflater *s) {
    take(s, s->nbits % 8);
    size_t at = byte_at(s);
    if (need(s, 32)) return ND_ERR;
    unsigned len = take(s, 16), nlen = take(s, 16);
    if (len != (~nlen & 0xffff))
        return bad(s, at, "stored block length %u does not match its complement "
                   "(LEN 0x%04x, NLEN 0x%04x)", len, len, nlen);
    /* Give back the whole bytes loaded ahead and copy from the input. */
    s->pos -= (size_t)s->nbits / 8;
    s->bits = 0;
    s->nbits = 0;
    if (s->n - s->pos < len) return end_of_input(s);
    if (room(s, len)) return ND_ERR;
    if (len) memcpy(s->out->data + s->out->size, s->in + s->pos, len);
    s->out->size += len;
    s->pos += len;
    return ND_OK;
}

/* Section 3.2.5: literals, and (length, distance) pairs that copy from
 * the output already written, until the end-of-block symbol 256. */
static int codes(inflater *s) {
    nd_bytes *o = s->out;
    for (;;) {
        size_t at = byte_at(s);
        int sym = 0; /* set by decode */
        if (decode(s, &s->lit, "literal/length", &sym)) return ND_ERR;
        if (sym < 256) {
            if ((o->size == o->cap || o->size == s->max) && room(s, 1)) return ND_ERR;
            o->data[o->size++] = (unsigned char)sym;
            continue;
        }
        if (sym == 256) return ND_OK;
        if (sym > 285) return bad(s, at, "invalid length symbol %d", sym);
        int k = sym - 257;
        if (need(s, nd__len_extra[k])) return ND_ERR;
        unsigned len = nd__len_base[k] + take(s, nd__len_extra[k]);
        size_t dat = byte_at(s);
        if (decode(s, &s->dist, "distance", &sym)) return ND_ERR;
        if (sym > 29) return bad(s, dat, "invalid distance symbol %d", sym);
        if (need(s, nd__dist_extra[sym])) return ND_ERR;
        size_t dist = nd__dist_base[sym] + take(s, nd__dist_extra[sym]);
        if (dist > o->size - s->start)
            return bad(s, dat, "distance %zu is too far back: only %zu byte%s written so far",
                       dist, o->size - s->start, o->size - s->start == 1 ? "" : "s");
        if (room(s, len)) return ND_ERR;
        unsigned char *d = o->data + o->size;
        const unsigned char *from = d - dist;
        if (dist >= len) memcpy(d, from, len);
        else for (unsigned i = 0; i < len; i++) d[i] = from[i]; /* overlapping: a run */
        o->size += len;
    }
}

/* Section 3.2.6. */
static int fixed(inflater *s) {
    unsigned char len[MAX_LIT];
    memset(len, 8, 144);
    memset(len + 144, 9, 112);
    memset(len + 256, 7, 24);
    memset(len + 280, 8, 8);
    size_t at = byte_at(s);
    if (build(s, &s->lit, len, MAX_LIT, "literal/length", at, 0)) return ND_ERR;
    memset(len, 5, MAX_DIST);
    if (build(s, &s->dist, len, MAX_DIST, "distance", at, 0)) return ND_ERR;
    return codes(s);
}

/* Section 3.2.7: the code lengths, themselves Huffman coded. */
static int dynamic(inflater *s) {
    static const unsigned char order[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                            11, 4,  12, 3, 13, 2, 14, 1, 15};
    size_t at = byte_at(s);
    if (need(s, 14)) return ND_ERR;
    int nlit = (int)take(s, 5) + 257, ndist = (int)take(s, 5) + 1;
    int ncode = (int)take(s, 4) + 4;
    if (nlit > 286)
        return bad(s, at, "HLIT gives %d literal/length codes, more than the 286 that "
                   "exist", nlit);
    if (ndist > 30)
        return bad(s, at, "HDIST gives %d distance codes, more than the 30 that exist",
                   ndist);
    unsigned char len[286 + 30];
    memset(len, 0, 19);
    for (int i = 0; i < ncode; i++) {
        if (need(s, 3)) return ND_ERR;
        len[order[i]] = (unsigned char)take(s, 3);
    }
    /* The code-length code must be complete: zlib refuses it otherwise. */
    huff *cl = &s->dist;
    if (build(s, cl, len, 19, "code-length", at, 0)) return ND_ERR;
    int total = nlit + ndist;
    for (int i = 0; i < total;) {
        size_t sat = byte_at(s);
        int sym;
        if (decode(s, cl, "code-length", &sym)) return ND_ERR;
        if (sym < 16) {
            len[i++] = (unsigned char)sym;
            continue;
        }
        unsigned char value = 0;
        int repeat;
        if (sym == 16) {
            if (i == 0)
                return bad(s, sat, "code length 16 repeats the previous length, but "
                           "there is none");
            value = len[i - 1];
            if (need(s, 2)) return ND_ERR;
            repeat = 3 + (int)take(s, 2);
        } else if (sym == 17) {
            if (need(s, 3)) return ND_ERR;
            repeat = 3 + (int)take(s, 3);
        } else {
            if (need(s, 7)) return ND_ERR;
            repeat = 11 + (int)take(s, 7);
        }
        if (repeat > total - i)
            return bad(s, sat, "code lengths repeat past the %d that HLIT and HDIST give",
                       total);
        memset(len + i, value, (size_t)repeat);
        i += repeat;
    }
    if (len[256] == 0)
        return bad(s, at, "no code for the end of the block (symbol 256 has length 0)");
    if (build(s, &s->lit, len, nlit, "literal/length", at, ALLOW_SINGLE)) return ND_ERR;
    if (build(s, &s->dist, len + nlit, ndist, "distance", at, ALLOW_SINGLE | ALLOW_EMPTY))
        return ND_ERR;
    return codes(s);
}

/* One whole stream from in[0..n), appended to out; *used its bytes. */
static int inflate_stream(const unsigned char *in, size_t n, size_t base,
                          size_t max_out, nd_bytes *out, size_t *used,
                          nd_error *err) {
    inflater *s = nd_alloc(sizeof *s);
    memset(s, 0, sizeof *s);
    s->in = in;
    s->n = n;
    s->base = base;
    s->out = out;
    s->start = out->size;
    s->max = max_out;
    s->err = err;
    int rc = ND_OK;
    bool last = false;
    while (!rc && !last) {
        size_t at = byte_at(s);
        if ((rc = need(s, 3))) break;
        last = take(s, 1);
        unsigned type = take(s, 2);
        if (type == 0) rc = stored(s);
        else if (type == 1) rc = fixed(s);
        else if (type == 2) rc = dynamic(s);
        else rc = bad(s, at, "invalid block type 3");
    }
    if (!rc && used) *used = s->pos - (size_t)s->nbits / 8;
    nd_dealloc(s, sizeof *s);
    return rc;
}

int nd_inflate(const void *in, size_t n, size_t max_out, nd_bytes *out,
               size_t *used, nd_error *err) {
    if (!in && n) nd_fatal("inflate", "in is NULL");
    if (!out) nd_fatal("inflate", "out is NULL");
    memset(out, 0, sizeof *out);
    size_t hint = n < SIZE_MAX / 4 ? 4 * n + 64 : n;
    if (hint > max_out) hint = max_out;
    if (hint) nd__bytes_reserve(out, hint);
    int rc = inflate_stream(in, n, 0, max_out, out, used, err);
    if (rc) nd_bytes_free(out);
    return rc;
}

/* ---- gzip (RFC 1952) --------------------------------------------------- */

enum { FTEXT = 1, FHCRC = 2, FEXTRA = 4, FNAME = 8, FCOMMENT = 16 };

static uint32_t get_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* The header of the member at in[at..n) (section 2.3); *data is where its
 * deflate data starts. */
static int gzip_header(const unsigned char *in, size_t n, size_t at, size_t *data,
                       nd_error *err) {
#define EARLY "gzip: the input ends inside a member's header (at byte %zu)"
    if (n - at < 10) return nd_error_set(err, EARLY, n);
    const unsigned char *h = in + at;
    if (h[0] != 0x1f || h[1] != 0x8b)
        return nd_error_set(err, "not gzip data: the bytes at %zu are %02x %02x, not the "
                            "magic 1f 8b", at, h[0], h[1]);
    if (h[2] != 8)
        return nd_error_set(err, "gzip: compression method %u is not deflate (8)", h[2]);
    unsigned flags = h[3];
    if (flags & 0xe0)
        return nd_error_set(err, "gzip: reserved flag bits 0x%02x are set", flags & 0xe0);
    /* MTIME, XFL and OS (bytes 4..9) say nothing the decoder needs; FTEXT
     * is only a hint. */
    size_t p = at + 10;
    if (flags & FEXTRA) {
        if (n - p < 2) return nd_error_set(err, EARLY, n);
        size_t xlen = (size_t)in[p] | (size_t)in[p + 1] << 8;
        p += 2;
        if (n - p < xlen) return nd_error_set(err, EARLY, n);
        p += xlen;
    }
    for (int field = 0; field < 2; field++) {
        if (!(flags & (field ? FCOMMENT : FNAME))) continue;
        const unsigned char *z = memchr(in + p, 0, n - p);
        if (!z)
            return nd_error_set(err, "gzip: the header's %s has no terminating zero byte",
                                field ? "comment" : "file name");
        p = (size_t)(z - in) + 1;
    }
    if (flags & FHCRC) {
        if (n - p < 2) return nd_error_set(err, EARLY, n);
        /* The two low bytes of the CRC-32 of the header before them. */
        unsigned stored_crc = (unsigned)in[p] | (unsigned)in[p + 1] << 8;
        unsigned crc = nd_crc32(ND_CRC32_INIT, in + at, p - at) & 0xffff;
        if (stored_crc != crc)
            return nd_error_set(err, "gzip: header CRC mismatch: stored 0x%04x, computed "
                                "0x%04x", stored_crc, crc);
        p += 2;
    }
    *data = p;
    return ND_OK;
#undef EARLY
}

int nd_gunzip(const void *in, size_t n, size_t max_out, nd_bytes *out,
              nd_error *err) {
    if (!in && n) nd_fatal("gunzip", "in is NULL");
    if (!out) nd_fatal("gunzip", "out is NULL");
    memset(out, 0, sizeof *out);
    const unsigned char *b = in;
    if (n == 0) return nd_error_set(err, "not gzip data: the input is empty");
    /* ISIZE, the last 4 bytes, is the size of a single member's output
     * modulo 2^32: a good first guess for the buffer, never trusted. */
    if (n >= 18) {
        size_t hint = get_le32(b + n - 4);
        if (hint > max_out) hint = max_out;
        /* A deflate stream expands at most 1032 to 1 (258 bytes from a
         * 2-bit match), so a corrupt ISIZE cannot ask for much more. */
        if (n < SIZE_MAX / 1032 && hint > 1032 * n) hint = 1032 * n;
        if (hint) nd__bytes_reserve(out, hint);
    }
    size_t at = 0;
    int rc = ND_OK;
    do {
        size_t data = 0, used = 0, start = out->size;
        if (at > 0 && (n - at < 2 || b[at] != 0x1f || b[at + 1] != 0x8b)) {
            rc = nd_error_set(err, "gzip: %zu byte%s after the last member (from byte %zu) "
                              "%s not a gzip member", n - at, n - at == 1 ? "" : "s", at,
                              n - at == 1 ? "is" : "are");
            break;
        }
        rc = gzip_header(b, n, at, &data, err);
        if (!rc) rc = inflate_stream(b + data, n - data, data, max_out, out, &used, err);
        if (rc) break;
        at = data + used;
        if (n - at < 8) {
            rc = nd_error_set(err, "gzip: the input ends inside a member's trailer (at "
                              "byte %zu)", n);
            break;
        }
        /* An empty member may leave out->data NULL: no pointer arithmetic on it. */
        uint32_t crc = out->size > start ? nd_crc32(ND_CRC32_INIT, out->data + start,
                                                    out->size - start)
                                         : ND_CRC32_INIT;
        uint32_t stored_crc = get_le32(b + at), isize = get_le32(b + at + 4);
        if (crc != stored_crc) {
            rc = nd_error_set(err, "gzip: CRC-32 mismatch: stored 0x%08x, the data gives "
                              "0x%08x", (unsigned)stored_crc, (unsigned)crc);
            break;
        }
        if (isize != (uint32_t)(out->size - start)) {
            rc = nd_error_set(err, "gzip: length mismatch: ISIZE says %u bytes, the data "
                              "has %zu", (unsigned)isize, out->size - start);
            break;
        }
        at += 8;
    } while (at < n);
    if (rc) nd_bytes_free(out);
    return rc;
}
