/* CRC-32 and Adler-32: published check values, and agreement with the
 * plain definitions (a bit at a time; a modulo after every byte) on
 * random buffers fed whole and in random pieces. */
#include <stdlib.h>
#include <string.h>

#include "files.h"

/* CRC-32 one bit at a time, the definition behind the table. */
static uint32_t crc_bitwise(const unsigned char *p, size_t n) {
    uint32_t r = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        r ^= p[i];
        for (int k = 0; k < 8; k++) r = (r >> 1) ^ (0xEDB88320u & (0u - (r & 1)));
    }
    return ~r;
}

static uint32_t adler_plain(const unsigned char *p, size_t n) {
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < n; i++) {
        a = (a + p[i]) % 65521;
        b = (b + a) % 65521;
    }
    return b << 16 | a;
}

START_TEST(test_check_values) {
    const char *digits = "123456789", *fox = "The quick brown fox jumps over the lazy dog";
    ck_assert_uint_eq(nd_crc32(ND_CRC32_INIT, digits, 9), 0xCBF43926u);
    ck_assert_uint_eq(nd_crc32(ND_CRC32_INIT, fox, strlen(fox)), 0x414FA339u);
    ck_assert_uint_eq(nd_crc32(ND_CRC32_INIT, "", 0), 0);
    ck_assert_uint_eq(nd_crc32(ND_CRC32_INIT, NULL, 0), 0);
    ck_assert_uint_eq(nd_adler32(ND_ADLER32_INIT, "Wikipedia", 9), 0x11E60398u);
    ck_assert_uint_eq(nd_adler32(ND_ADLER32_INIT, "", 0), 1);
    ck_assert_uint_eq(nd_adler32(ND_ADLER32_INIT, NULL, 0), 1);
    /* Continued: the same as at once. */
    uint32_t c = nd_crc32(ND_CRC32_INIT, digits, 4);
    ck_assert_uint_eq(nd_crc32(c, digits + 4, 5), 0xCBF43926u);
    uint32_t a = nd_adler32(ND_ADLER32_INIT, "Wiki", 4);
    ck_assert_uint_eq(nd_adler32(a, "pedia", 5), 0x11E60398u);
}
END_TEST

/* All-0xff bytes push both Adler sums to their largest before each
 * modulo; lengths around the 5552-byte step. */
START_TEST(test_adler_worst_case) {
    size_t n = 3 * 5552 + 7;
    unsigned char *p = malloc(n);
    memset(p, 0xff, n);
    const size_t lengths[] = {1, 5551, 5552, 5553, 11104, 11105, n};
    for (int i = 0; i < 7; i++)
        ck_assert_uint_eq(nd_adler32(ND_ADLER32_INIT, p, lengths[i]),
                          adler_plain(p, lengths[i]));
    free(p);
}
END_TEST

START_TEST(test_random_buffers) {
    uint32_t s = 12345;
    for (int round = 0; round < 40; round++) {
        size_t n = td_rand(&s) % 20000;
        unsigned char *p = malloc(n + 1);
        for (size_t i = 0; i < n; i++) p[i] = (unsigned char)td_rand(&s);
        uint32_t crc = crc_bitwise(p, n), adler = adler_plain(p, n);
        ck_assert_uint_eq(nd_crc32(ND_CRC32_INIT, p, n), crc);
        ck_assert_uint_eq(nd_adler32(ND_ADLER32_INIT, p, n), adler);
        /* In random pieces. */
        uint32_t c = ND_CRC32_INIT, a = ND_ADLER32_INIT;
        for (size_t at = 0; at < n;) {
            size_t k = 1 + td_rand(&s) % 7000;
            if (k > n - at) k = n - at;
            c = nd_crc32(c, p + at, k);
            a = nd_adler32(a, p + at, k);
            at += k;
        }
        ck_assert_uint_eq(c, crc);
        ck_assert_uint_eq(a, adler);
        free(p);
    }
}
END_TEST

TCase *tcase_checksum(void) {
    TCase *tc = nd_test_case("checksum");
    tcase_add_test(tc, test_check_values);
    tcase_add_test(tc, test_adler_worst_case);
    tcase_add_test(tc, test_random_buffers);
    return tc;
}
