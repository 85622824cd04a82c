#include "png_read.h"

#include <stdlib.h>
#include <string.h>

#include "files.h"

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

const char *png_read(const unsigned char *b, size_t n, png_image *img) {
    memset(img, 0, sizeof *img);
    if (n < 8 || memcmp(b, "\x89PNG\r\n\x1a\n", 8) != 0) return "no PNG signature";
    size_t at = 8, idat_size = 0;
    unsigned char *idat = NULL;
    bool header = false, ended = false, idat_done = false;
    const char *bad = NULL;
    while (!bad && at < n) {
        if (ended) { bad = "bytes after IEND"; break; }
        if (n - at < 12) { bad = "a truncated chunk"; break; }
        uint32_t len = be32(b + at);
        const unsigned char *type = b + at + 4, *data = b + at + 8;
        if (len > n - at - 12) { bad = "a chunk longer than the file"; break; }
        if (nd_crc32(ND_CRC32_INIT, type, 4 + (size_t)len) != be32(data + len)) {
            bad = "a chunk CRC mismatch";
            break;
        }
        if (!header && memcmp(type, "IHDR", 4) != 0) bad = "the first chunk is not IHDR";
        else if (memcmp(type, "IHDR", 4) == 0) {
            if (header || len != 13) { bad = "a bad IHDR"; break; }
            header = true;
            img->width = (int)be32(data);
            img->height = (int)be32(data + 4);
            if (data[8] != 8) bad = "bit depth is not 8";
            else if (data[9] != 0 && data[9] != 2) bad = "colour type is not gray or RGB";
            else if (data[10] || data[11] || data[12]) bad = "unknown compression, filter or interlace";
            img->channels = data[9] == 2 ? 3 : 1;
            if (img->width < 1 || img->height < 1) bad = "an empty image";
        } else if (memcmp(type, "IDAT", 4) == 0) {
            if (idat_done) { bad = "IDAT chunks are not consecutive"; break; }
            idat = realloc(idat, idat_size + len + 1);
            memcpy(idat + idat_size, data, len);
            idat_size += len;
            img->idat_chunks++;
        } else if (memcmp(type, "IEND", 4) == 0) {
            if (len != 0) bad = "IEND has data";
            ended = true;
        } else if (!(type[0] & 0x20)) {
            bad = "an unknown critical chunk";
        }
        if (img->idat_chunks && memcmp(type, "IDAT", 4) != 0) idat_done = true;
        at += 12 + (size_t)len;
    }
    if (!bad && !ended) bad = "no IEND";
    if (!bad && !img->idat_chunks) bad = "no IDAT";
    /* The zlib stream (RFC 1950): CMF, FLG, deflate data, Adler-32. */
    if (!bad && (idat_size < 6 || (idat[0] & 15) != 8 || (idat[0] >> 4) > 7 ||
                 (idat[0] * 256 + idat[1]) % 31 != 0 || (idat[1] & 0x20)))
        bad = "a bad zlib header";
    size_t row = 0, raw_size = 0;
    nd_bytes raw = {0};
    if (!bad) {
        row = (size_t)img->width * (size_t)img->channels;
        raw_size = (row + 1) * (size_t)img->height;
        size_t used = 0;
        nd_error err;
        if (nd_inflate(idat + 2, idat_size - 2, raw_size, &raw, &used, &err) != ND_OK)
            bad = "the zlib stream does not inflate";
        else if (raw.size != raw_size) bad = "the image data has the wrong size";
        else if (idat_size - 2 - used != 4) bad = "no Adler-32 right after the deflate data";
        else if (be32(idat + 2 + used) != nd_adler32(ND_ADLER32_INIT, raw.data, raw.size))
            bad = "an Adler-32 mismatch";
    }
    if (!bad) {
        img->pixels = malloc(row * (size_t)img->height);
        for (int y = 0; y < img->height && !bad; y++) {
            const unsigned char *r = raw.data + (size_t)y * (row + 1);
            if (r[0] != 0) bad = "a filter type other than 0";
            else memcpy(img->pixels + (size_t)y * row, r + 1, row);
        }
    }
    nd_bytes_free(&raw);
    free(idat);
    if (bad) {
        free(img->pixels);
        img->pixels = NULL;
    }
    return bad;
}

const char *png_read_file(const char *path, png_image *img) {
    size_t n;
    unsigned char *b = td_read(path, &n);
    const char *bad = png_read(b, n, img);
    free(b);
    return bad;
}
