/* A PNG reader for the tests, independent of the writer: it parses the
 * chunks, checks every CRC, joins the IDATs, inflates the zlib stream with
 * nd_inflate, checks its header and Adler-32, and undoes filter type 0.
 * It reads 8-bit gray and RGB without interlace, what the writer makes. */
#ifndef NANODIFF_TEST_PNG_READ_H
#define NANODIFF_TEST_PNG_READ_H

#include <stddef.h>

typedef struct png_image {
    int width, height, channels;
    unsigned char *pixels; /* malloc'd, rows of width * channels bytes */
    int idat_chunks;
} png_image;

/* NULL on success, or what is wrong (a static string). */
const char *png_read(const unsigned char *b, size_t n, png_image *img);
/* The same from a file. */
const char *png_read_file(const char *path, png_image *img);

#endif
