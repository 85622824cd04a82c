/* Shared inside the data layer: byte buffers, whole-file reads and atomic
 * writes, the font of plots, and the DEFLATE tables both directions use. */
#ifndef NANODIFF_DATA_INTERNAL_H
#define NANODIFF_DATA_INTERNAL_H

#include "data.h"

/* Room for at least need bytes in b (cap doubles, from nd_alloc). */
void nd__bytes_reserve(nd_bytes *b, size_t need);
void nd__bytes_put(nd_bytes *b, const void *p, size_t n);

/* The whole regular file at path into *out (empty files included); at
 * most max bytes, else an error. Messages start with "<path>: ". */
int nd__read_file(const char *path, size_t max, nd_bytes *out, nd_error *err);
/* The size of the regular file at path, with the same messages. */
int nd__file_size(const char *path, uint64_t *size, nd_error *err);

/* Writes the concatenation of parts to path through a temporary file
 * beside it (fsync'd, renamed over path, the directory fsync'd): on ND_ERR
 * path is as it was and no temporary file is left. */
int nd__write_atomic(const char *path, const void *const *parts,
                     const size_t *sizes, int nparts, nd_error *err);

/* ---- text (font.c) ----------------------------------------------------- */

/* Glyphs are 5 x 9 font pixels: rows 0-6 from the top of the capitals to
 * the baseline, 7-8 below it; characters advance by 6. */
#define ND__GLYPH_W 5
#define ND__GLYPH_H 9
#define ND__GLYPH_ADVANCE 6
/* Row row (0 the top) of c's glyph as ND__GLYPH_W bits, the leftmost pixel
 * the highest; bytes outside ' '..'~' get a box. */
unsigned nd__glyph_row(char c, int row);
/* The width in image pixels of s drawn at scale (no space after the last
 * character; 0 for ""). Its height is ND__GLYPH_H * scale. */
int nd__text_width(const char *s, int scale);
/* Draws s in color into an RGB image of width x height pixels, each font
 * pixel a scale x scale square, clipped to the image. (x, y) is the
 * top-left corner of the text's box: nd__text_width wide and ND__GLYPH_H *
 * scale high, or when vertical, turned a quarter counterclockwise (to be
 * read upwards) and so ND__GLYPH_H * scale wide and nd__text_width high. */
void nd__draw_text(uint8_t *rgb, int width, int height, int x, int y, const char *s,
                   int scale, bool vertical, const uint8_t color[3]);

/* Pixel conversions, the rules of data.h. The quotient is rounded to
 * float before the subtraction (the assignment does it), also where
 * float expressions are evaluated wider (s390x): rounded once, in
 * double, some pixels would come out one ulp away from other targets'. */
static inline float nd__u8_to_pixel(unsigned char v) {
    float q = (float)v / 127.5f;
    return q - 1.0f;
}

/* ---- RFC 1951 section 3.2.5: lengths and distances --------------------- *
 * Length symbols 257..285 and distance symbols 0..29: the smallest value
 * each stands for and how many extra bits follow it. */
static const unsigned short nd__len_base[29] = {
    3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
    31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const unsigned char nd__len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1,
                                                1, 1, 2, 2, 2, 2, 3, 3, 3, 3,
                                                4, 4, 4, 4, 5, 5, 5, 5, 0};
static const unsigned short nd__dist_base[30] = {
    1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
    193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const unsigned char nd__dist_extra[30] = {0, 0, 0, 0, 1, 1, 2,  2,  3,  3,
                                                 4, 4, 5, 5, 6, 6, 7,  7,  8,  8,
                                                 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

#endif
