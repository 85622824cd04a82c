/* PNG images (the PNG specification, ISO/IEC 15948): the signature, an
 * IHDR chunk, the pixels as one zlib stream (RFC 1950) split over IDAT
 * chunks, and IEND; each chunk carries the CRC-32 of its type and data.
 * Rows use filter type 0 (none): the fixed-Huffman matches of nd_deflate
 * already find the flat areas and repeated rows of samples and grids;
 * data that does not shrink goes in stored blocks. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "internal.h"

/* Longest IDAT written; a decoder joins them, any split is valid. */
#define IDAT_MAX 65536

static void put_be32(unsigned char *p, uint32_t v) {
    for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> (24 - 8 * k));
}

/* length, type, data, CRC-32 of type and data (section 5.3). */
static void put_chunk(nd_bytes *png, const char *type, const unsigned char *data,
                      size_t n) {
    unsigned char b[8];
    put_be32(b, (uint32_t)n);
    memcpy(b + 4, type, 4);
    nd__bytes_put(png, b, 8);
    nd__bytes_put(png, data, n);
    uint32_t crc = nd_crc32(nd_crc32(ND_CRC32_INIT, type, 4), data, n);
    put_be32(b, crc);
    nd__bytes_put(png, b, 4);
}

uint8_t nd_pixel_to_u8(float x) {
    double v = ((double)x + 1.0) * 127.5;
    if (!(v > 0)) return 0; /* NaN too */
    if (v >= 255) return 255;
    return (uint8_t)(v + 0.5); /* round half up */
}

int nd_png_write(const char *path, const uint8_t *pixels, int width, int height,
                 int channels, nd_error *err) {
    if (!path) nd_fatal("png_write", "path is NULL");
    if (!pixels) nd_fatal("png_write", "pixels is NULL");
    if (width < 1 || height < 1)
        nd_fatal("png_write", "image size %dx%d; both must be >= 1", width, height);
    if (channels != 1 && channels != 3)
        nd_fatal("png_write", "%d channels; PNG output takes 1 (gray) or 3 (RGB)",
                 channels);
    /* Each row: its filter type byte (0) and its pixels. */
    size_t row = (size_t)width * (size_t)channels;
    nd_bytes raw = {0};
    nd__bytes_reserve(&raw, (row + 1) * (size_t)height);
    for (int y = 0; y < height; y++) {
        raw.data[raw.size++] = 0;
        memcpy(raw.data + raw.size, pixels + (size_t)y * row, row);
        raw.size += row;
    }
    /* zlib (RFC 1950): CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (no
     * dictionary, FCHECK making 0x7801 a multiple of 31), the deflate
     * data, then the Adler-32 of the raw bytes, most significant first. */
    nd_bytes z = {0};
    nd__bytes_put(&z, "\x78\x01", 2);
    nd_deflate(raw.data, raw.size, 1, &z);
    /* Noise does not shrink: fixed-Huffman codes would make it up to 9/8
     * of its size, stored blocks add 5 bytes per 65535. */
    if (z.size - 2 > raw.size + 5 * (raw.size / 65535 + 1)) {
        z.size = 2;
        nd_deflate(raw.data, raw.size, 0, &z);
    }
    unsigned char b[13];
    put_be32(b, nd_adler32(ND_ADLER32_INIT, raw.data, raw.size));
    nd__bytes_put(&z, b, 4);
    nd_bytes_free(&raw);

    nd_bytes png = {0};
    nd__bytes_reserve(&png, z.size + z.size / IDAT_MAX * 12 + 64);
    nd__bytes_put(&png, "\x89PNG\r\n\x1a\n", 8);
    put_be32(b, (uint32_t)width);
    put_be32(b + 4, (uint32_t)height);
    b[8] = 8;                         /* bit depth */
    b[9] = channels == 1 ? 0 : 2;     /* colour type: greyscale, truecolour */
    b[10] = b[11] = b[12] = 0;        /* deflate, adaptive filtering, no interlace */
    put_chunk(&png, "IHDR", b, 13);
    for (size_t at = 0; at < z.size; at += IDAT_MAX)
        put_chunk(&png, "IDAT", z.data + at, z.size - at < IDAT_MAX ? z.size - at : IDAT_MAX);
    put_chunk(&png, "IEND", NULL, 0);
    nd_bytes_free(&z);

    const void *parts[] = {png.data};
    int rc = nd__write_atomic(path, parts, &png.size, 1, err);
    nd_bytes_free(&png);
    return rc;
}

/* Writes image c of x ([C, H, W] at data with strides s) into canvas at
 * (x0, y0), a canvas of cw pixels per row and the same channels. */
static void paint(uint8_t *canvas, int cw, int channels, int x0, int y0,
                  const float *data, const int64_t *s, int64_t h, int64_t w) {
    for (int c = 0; c < channels; c++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                float v = data[c * s[0] + y * s[1] + x * s[2]];
                size_t at = ((size_t)(y0 + y) * (size_t)cw + (size_t)(x0 + x)) *
                                (size_t)channels + (size_t)c;
                canvas[at] = nd_pixel_to_u8(v);
            }
}

static void check_channels(const char *op, int64_t c, const nd_tensor *x) {
    if (c != 1 && c != 3) {
        char s[ND_SHAPE_STR_LEN];
        nd_fatal(op, "shape %s has %lld channels; PNG output takes 1 (gray) or 3 (RGB)",
                 nd_shape_str(x->shape, x->ndim, s), (long long)c);
    }
}

static void check_side(const char *op, int64_t v, const nd_tensor *x) {
    if (v < 1 || v > INT_MAX / 4) {
        char s[ND_SHAPE_STR_LEN];
        nd_fatal(op, "shape %s: image sides must be 1..%d", nd_shape_str(x->shape, x->ndim, s),
                 INT_MAX / 4);
    }
}

int nd_png_write_tensor(const char *path, const nd_tensor *image, nd_error *err) {
    const char *op = "png_write_tensor";
    if (!path) nd_fatal(op, "path is NULL");
    if (!image) nd_fatal(op, "image is NULL");
    if (image->ndim != 2 && image->ndim != 3) {
        char s[ND_SHAPE_STR_LEN];
        nd_fatal(op, "image has shape %s; it must be [H, W] or [C, H, W]",
                 nd_shape_str(image->shape, image->ndim, s));
    }
    bool chw = image->ndim == 3;
    int64_t c = chw ? image->shape[0] : 1, h = image->shape[chw], w = image->shape[chw + 1];
    check_channels(op, c, image);
    check_side(op, h, image);
    check_side(op, w, image);
    int64_t s[3] = {chw ? image->strides[0] : 0, image->strides[chw], image->strides[chw + 1]};
    size_t bytes = (size_t)(c * h * w);
    uint8_t *px = nd_alloc(bytes);
    paint(px, (int)w, (int)c, 0, 0, nd_data(image), s, h, w);
    int rc = nd_png_write(path, px, (int)w, (int)h, (int)c, err);
    nd_dealloc(px, bytes);
    return rc;
}

int nd_png_write_grid(const char *path, const nd_tensor *batch, int rows, int cols,
                      nd_error *err) {
    const char *op = "png_write_grid";
    if (!path) nd_fatal(op, "path is NULL");
    if (!batch) nd_fatal(op, "batch is NULL");
    char s[ND_SHAPE_STR_LEN];
    if (batch->ndim != 4)
        nd_fatal(op, "batch has shape %s; it must be [N, C, H, W]",
                 nd_shape_str(batch->shape, batch->ndim, s));
    int64_t n = batch->shape[0], c = batch->shape[1], h = batch->shape[2],
            w = batch->shape[3];
    check_channels(op, c, batch);
    check_side(op, h, batch);
    check_side(op, w, batch);
    if (cols <= 0) {
        cols = 1;
        while ((int64_t)cols * cols < n) cols++;
    }
    if (rows <= 0) rows = n > 0 ? (int)((n + cols - 1) / cols) : 1;
    if (n > (int64_t)rows * cols)
        nd_fatal(op, "%lld images do not fit in %d x %d cells (rows x columns)", (long long)n, rows,
                 cols);
    const int64_t b = ND_PNG_GRID_BORDER;
    int64_t cw = cols * (w + b) + b, ch = rows * (h + b) + b;
    if (cw > INT_MAX / 4 || ch > INT_MAX / 4)
        nd_fatal(op, "a grid of %d x %d images of %lldx%lld is too large", rows, cols,
                 (long long)h, (long long)w);
    size_t bytes = (size_t)(cw * ch * c);
    uint8_t *px = nd_alloc(bytes);
    memset(px, 255, bytes);
    const int64_t st[3] = {batch->strides[1], batch->strides[2], batch->strides[3]};
    for (int64_t k = 0; k < n; k++) {
        int64_t r = k / cols, q = k % cols;
        paint(px, (int)cw, (int)c, (int)(b + q * (w + b)), (int)(b + r * (h + b)),
              nd_data(batch) + k * batch->strides[0], st, h, w);
    }
    int rc = nd_png_write(path, px, (int)cw, (int)ch, (int)c, err);
    nd_dealloc(px, bytes);
    return rc;
}
