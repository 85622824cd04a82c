/* CRC-32 and Adler-32, the checksums of gzip and PNG (CRC-32) and of zlib
 * streams (Adler-32). */
#include <pthread.h>

#include "data.h"

/* ---- CRC-32 ------------------------------------------------------------ *
 * The CRC of RFC 1952 section 8 and PNG's annex D: the polynomial
 * x^32 + x^26 + ... + 1 with bits taken least significant first, so the
 * register shifts right and the polynomial appears reflected, 0xEDB88320.
 * The register starts at all ones and the result is complemented; taking
 * the complement on the way in and out of every call lets a CRC continue
 * from the value a previous call returned. A table of the 256 one-byte
 * remainders processes a byte per step. */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void make_crc_table(void) {
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t r = b;
        for (int k = 0; k < 8; k++) r = r & 1 ? 0xEDB88320u ^ (r >> 1) : r >> 1;
        crc_table[b] = r;
    }
}

uint32_t nd_crc32(uint32_t crc, const void *buf, size_t n) {
    if (n == 0) return crc;
    if (!buf) nd_fatal("crc32", "buf is NULL");
    pthread_once(&crc_once, make_crc_table);
    const unsigned char *p = buf;
    uint32_t r = ~crc;
    for (size_t i = 0; i < n; i++) r = crc_table[(r ^ p[i]) & 0xff] ^ (r >> 8);
    return ~r;
}

/* ---- Adler-32 ---------------------------------------------------------- *
 * RFC 1950 section 8.2: s1 = 1 + sum of the bytes, s2 = sum of the
 * successive s1, both mod 65521 (the largest prime below 2^16), packed as
 * s2 << 16 | s1. The modulo is taken every NMAX bytes only: 5552 is the
 * largest n for which s2 cannot overflow 32 bits from values below 65521,
 * 255 n (n + 1) / 2 + (n + 1) 65520 <= 2^32 - 1. */

#define ADLER_BASE 65521u
#define ADLER_NMAX 5552

uint32_t nd_adler32(uint32_t adler, const void *buf, size_t n) {
    if (n == 0) return adler;
    if (!buf) nd_fatal("adler32", "buf is NULL");
    const unsigned char *p = buf;
    uint32_t s1 = adler & 0xffff, s2 = adler >> 16;
    while (n > 0) {
        size_t k = n < ADLER_NMAX ? n : ADLER_NMAX;
        n -= k;
        for (size_t i = 0; i < k; i++) {
            s1 += p[i];
            s2 += s1;
        }
        p += k;
        s1 %= ADLER_BASE;
        s2 %= ADLER_BASE;
    }
    return s2 << 16 | s1;
}
