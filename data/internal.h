/* Shared inside the data layer: byte buffers, whole-file reads and atomic
 * writes, and the DEFLATE tables both directions use. */
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

/* Pixel conversions, the rules of data.h. */
static inline float nd__u8_to_pixel(unsigned char v) {
    return (float)v / 127.5f - 1.0f;
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
