/* Fuzz target: DEFLATE and gzip decoding (nd_inflate, nd_gunzip in
 * data/data.h), and the encoder they must undo (nd_deflate).
 *
 * The input is decoded as a raw DEFLATE stream and as gzip data. Beyond
 * crashes, leaks and nd_fatal:
 *   - with zlib at hand (built with -DFZ_ZLIB), both decoders must agree
 *     with zlib's: the same verdict, the same bytes, and for nd_inflate
 *     the same count of input bytes used;
 *   - an output limit is honoured exactly: a stream that decodes to k
 *     bytes fails with max_out k - 1 and decodes the same with max_out k;
 *   - the input, as data, encoded by nd_deflate at levels 0 and 1 (raw,
 *     and wrapped as gzip) decodes back to itself, using every byte. */
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "fuzz.h"

#ifdef FZ_ZLIB
#include <zlib.h>
#endif

#define MAX_OUT ((size_t)1 << 26)

#ifdef FZ_ZLIB
/* zlib's verdict on in[0..n): raw DEFLATE (gzip false; *used its bytes)
 * or gzip members one after the other; the output in *out, a buffer kept
 * from call to call (page faults on fresh large buffers cost more than
 * the decoding). */
static bool zlib_decode(const unsigned char *in, size_t n, bool gzip, unsigned char **out,
                        size_t *size, size_t *used) {
    static unsigned char *keep;
    static size_t cap;
    *out = keep;
    *size = 0;
    size_t at = 0;
    if (gzip && n == 0) return false;
    do {
        z_stream z;
        memset(&z, 0, sizeof z);
        if (inflateInit2(&z, gzip ? 31 : -15) != Z_OK) abort();
        z.next_in = (unsigned char *)(uintptr_t)(at ? in + at : in); /* in may be NULL */
        z.avail_in = (uInt)(n - at);
        int ret;
        do {
            if (cap - *size < 4096) {
                cap = cap ? 2 * cap : 65536;
                *out = keep = realloc(keep, cap);
                if (!keep) abort();
            }
            z.next_out = *out + *size;
            z.avail_out = (uInt)(cap - *size);
            ret = inflate(&z, Z_NO_FLUSH);
            *size = cap - z.avail_out;
        } while (ret == Z_OK && *size <= MAX_OUT);
        at += z.total_in;
        inflateEnd(&z);
        if (ret != Z_STREAM_END || *size > MAX_OUT) return false;
    } while (gzip && at < n);
    if (used) *used = at;
    return true;
}
#endif

static void check_limits(const unsigned char *in, size_t n, const nd_bytes *full, bool gzip) {
    /* ISIZE drives a first guess at the buffer: the limit must hold anyway. */
    nd_bytes out;
    nd_error err = {{0}};
    int rc;
    if (full->size > 0) {
        size_t max = full->size - 1;
        rc = gzip ? nd_gunzip(in, n, max, &out, &err) : nd_inflate(in, n, max, &out, NULL, &err);
        fz_check_result("decoding under a limit", rc, &err, NULL);
        FZ_CHECK(rc == ND_ERR, "%s decoded %zu bytes under a limit of %zu",
                 gzip ? "nd_gunzip" : "nd_inflate", out.size, max);
        FZ_CHECK(out.data == NULL && out.size == 0, "output left after ND_ERR");
    }
    rc = gzip ? nd_gunzip(in, n, full->size, &out, &err)
              : nd_inflate(in, n, full->size, &out, NULL, &err);
    FZ_CHECK(rc == ND_OK, "%s fails with the limit at the output's size (%zu): %s",
             gzip ? "nd_gunzip" : "nd_inflate", full->size, err.message);
    FZ_CHECK(out.size == full->size && (out.size == 0 || !memcmp(out.data, full->data, out.size)),
             "decoding under a limit gives other bytes");
    nd_bytes_free(&out);
}

static void decode(const unsigned char *in, size_t n, bool gzip) {
    const char *what = gzip ? "nd_gunzip" : "nd_inflate";
    nd_bytes out;
    nd_error err = {{0}};
    size_t used = (size_t)-1;
    int rc = gzip ? nd_gunzip(in, n, MAX_OUT, &out, &err)
                  : nd_inflate(in, n, MAX_OUT, &out, &used, &err);
    fz_check_result(what, rc, &err, NULL);
    if (rc == ND_OK) {
        FZ_CHECK(out.size <= MAX_OUT && out.size <= out.cap, "%s: output of %zu bytes", what,
                 out.size);
        if (!gzip) FZ_CHECK(used >= 1 && used <= n, "nd_inflate used %zu of %zu bytes", used, n);
    } else {
        FZ_CHECK(out.data == NULL && out.size == 0, "%s: output left after ND_ERR", what);
    }
#ifdef FZ_ZLIB
    unsigned char *z;
    size_t zsize, zused = 0;
    bool zok = zlib_decode(in, n, gzip, &z, &zsize, &zused);
    FZ_CHECK(zok == (rc == ND_OK), "%s %s data that zlib %s%s%s", what,
             rc == ND_OK ? "decodes" : "refuses", zok ? "decodes" : "refuses",
             rc == ND_OK ? "" : ": ", rc == ND_OK ? "" : err.message);
    if (zok) {
        FZ_CHECK(zsize == out.size && (zsize == 0 || memcmp(z, out.data, zsize) == 0),
                 "%s gives %zu bytes, zlib %zu (or other bytes)", what, out.size, zsize);
        if (!gzip)
            FZ_CHECK(zused == used, "nd_inflate used %zu input bytes, zlib %zu", used, zused);
    }
#endif
    if (rc == ND_OK) check_limits(in, n, &out, gzip);
    nd_bytes_free(&out);
}

/* in[0..n) as gzip: a 10-byte header, nd_deflate's stream, the trailer. */
static void gzip_wrap(const unsigned char *in, size_t n, int level, nd_bytes *gz) {
    static const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
    memset(gz, 0, sizeof *gz);
    nd_bytes z = {0};
    nd_deflate(in, n, level, &z);
    unsigned char tail[8];
    fz_put_le32(tail, nd_crc32(ND_CRC32_INIT, in, n));
    fz_put_le32(tail + 4, (uint32_t)n);
    size_t total = sizeof head + z.size + sizeof tail;
    unsigned char *b = malloc(total);
    memcpy(b, head, sizeof head);
    memcpy(b + sizeof head, z.data, z.size);
    memcpy(b + sizeof head + z.size, tail, sizeof tail);
    gz->data = b;
    gz->size = gz->cap = total;
    nd_bytes_free(&z);
}

static void round_trip(const unsigned char *in, size_t n, int level) {
    nd_bytes z = {0}, back;
    nd_error err = {{0}};
    size_t used = 0;
    nd_deflate(in, n, level, &z);
    int rc = nd_inflate(z.data, z.size, n, &back, &used, &err);
    FZ_CHECK(rc == ND_OK, "nd_inflate fails on nd_deflate's level-%d stream: %s", level,
             err.message);
    FZ_CHECK(back.size == n && (n == 0 || memcmp(back.data, in, n) == 0),
             "nd_deflate level %d, then nd_inflate, gives other bytes", level);
    FZ_CHECK(used == z.size, "nd_inflate used %zu of the %zu bytes nd_deflate made", used,
             z.size);
    nd_bytes_free(&back);
#ifdef FZ_ZLIB
    unsigned char *zl;
    size_t zsize, zused;
    bool zok = zlib_decode(z.data, z.size, false, &zl, &zsize, &zused);
    FZ_CHECK(zok && zsize == n && (n == 0 || memcmp(zl, in, n) == 0),
             "zlib does not decode nd_deflate's level-%d stream to its input", level);
#endif
    nd_bytes_free(&z);

    nd_bytes gz;
    gzip_wrap(in, n, level, &gz);
    rc = nd_gunzip(gz.data, gz.size, n, &back, &err);
    FZ_CHECK(rc == ND_OK && back.size == n && (n == 0 || memcmp(back.data, in, n) == 0),
             "nd_gunzip does not undo gzip around nd_deflate level %d: %s", level,
             rc ? err.message : "other bytes");
    nd_bytes_free(&back);
    free(gz.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_init();
    size_t base = fz_mem_begin();
    /* The functions take NULL for no bytes; libFuzzer never passes it. */
    const unsigned char *in = size ? data : NULL;
    decode(in, size, false);
    decode(in, size, true);
    round_trip(in, size, 0);
    round_trip(in, size, 1);
    fz_mem_end(base, "inflate");
    return 0;
}
