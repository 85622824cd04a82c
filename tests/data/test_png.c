/* PNG writing: files read back by the test suite's own reader (every CRC,
 * the Adler-32, the pixels), the float-to-byte rule, grids, failures that
 * leave the old file and no temporary behind, and misuse. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/resource.h>
#endif
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "png_read.h"

static void write_ok(int rc, const nd_error *err) {
    ck_assert_msg(rc == ND_OK, "write failed: %s", err->message);
}

static void read_ok(const char *path, png_image *img) {
    const char *bad = png_read_file(path, img);
    ck_assert_msg(bad == NULL, "%s: %s", path, bad);
}

START_TEST(test_png_gray_and_rgb) {
    td_make_dir();
    uint32_t s = 7;
    const int sizes[][2] = {{1, 1}, {37, 23}, {300, 200}, {64, 1}, {1, 50}};
    for (int k = 0; k < 5; k++)
        for (int c = 1; c <= 3; c += 2) {
            int w = sizes[k][0], h = sizes[k][1];
            size_t n = (size_t)w * (size_t)h * (size_t)c;
            unsigned char *px = malloc(n);
            /* Half random noise, half flat rows, so both literals and matches. */
            for (size_t i = 0; i < n; i++)
                px[i] = i < n / 2 ? (unsigned char)td_rand(&s) : (unsigned char)(i / (size_t)(w * c));
            nd_error err = {{0}};
            const char *path = td_path("a.png");
            write_ok(nd_png_write(path, px, w, h, c, &err), &err);
            png_image img;
            read_ok(path, &img);
            ck_assert_int_eq(img.width, w);
            ck_assert_int_eq(img.height, h);
            ck_assert_int_eq(img.channels, c);
            ck_assert(memcmp(img.pixels, px, n) == 0);
            /* 300x200 RGB noise needs several IDATs of 64 KiB. */
            if (k == 2 && c == 3) ck_assert_int_ge(img.idat_chunks, 2);
            free(img.pixels);
            free(px);
        }
    ck_assert_str_eq(td_listing(), "a.png");
    td_remove_dir();
}
END_TEST

/* The exact start of a file: signature, IHDR with its CRC. */
START_TEST(test_png_header_bytes) {
    td_make_dir();
    const unsigned char px[6] = {0, 1, 2, 3, 4, 5};
    nd_error err;
    const char *path = td_path("h.png");
    write_ok(nd_png_write(path, px, 2, 1, 3, &err), &err);
    size_t n;
    unsigned char *b = td_read(path, &n);
    const unsigned char want[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                    0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                    0, 0, 0, 2, 0, 0, 0, 1, 8, 2, 0, 0, 0};
    ck_assert_uint_ge(n, 33 + 12);
    ck_assert(memcmp(b, want, 29) == 0);
    uint32_t crc = nd_crc32(ND_CRC32_INIT, b + 12, 17);
    ck_assert_uint_eq((uint32_t)b[29] << 24 | (uint32_t)b[30] << 16 | (uint32_t)b[31] << 8 | b[32],
                      crc);
    /* IEND and its fixed CRC close the file. */
    ck_assert(memcmp(b + n - 12, "\0\0\0\0IEND\xae\x42\x60\x82", 12) == 0);
    /* The first IDAT at byte 33: its data starts with the zlib header
     * 78 01 and a final fixed-Huffman block (BFINAL 1, BTYPE 01). */
    ck_assert(memcmp(b + 37, "IDAT\x78\x01", 6) == 0);
    ck_assert_uint_eq(b[43] & 7, 3);
    free(b);
    /* Noise goes in stored blocks (BTYPE 00). */
    size_t np = 100 * 100 * 3;
    unsigned char *noise = malloc(np);
    uint32_t s = 1;
    for (size_t i = 0; i < np; i++) noise[i] = (unsigned char)td_rand(&s);
    write_ok(nd_png_write(path, noise, 100, 100, 3, &err), &err);
    b = td_read(path, &n);
    ck_assert(memcmp(b + 37, "IDAT\x78\x01", 6) == 0);
    ck_assert_uint_eq(b[43] & 6, 0);
    ck_assert_uint_lt(n, np + 101 + 200);
    free(b);
    png_image img;
    read_ok(path, &img);
    ck_assert(memcmp(img.pixels, noise, np) == 0);
    free(img.pixels);
    free(noise);
    td_remove_dir();
}
END_TEST

START_TEST(test_pixel_rule) {
    ck_assert_uint_eq(nd_pixel_to_u8(-1.0f), 0);
    ck_assert_uint_eq(nd_pixel_to_u8(1.0f), 255);
    ck_assert_uint_eq(nd_pixel_to_u8(0.0f), 128); /* 127.5: halves go up */
    ck_assert_uint_eq(nd_pixel_to_u8(-2.0f), 0);
    ck_assert_uint_eq(nd_pixel_to_u8(3.0f), 255);
    ck_assert_uint_eq(nd_pixel_to_u8(NAN), 0);
    ck_assert_uint_eq(nd_pixel_to_u8(INFINITY), 255);
    ck_assert_uint_eq(nd_pixel_to_u8(-INFINITY), 0);
    /* Every byte comes back from its own float, x / 127.5 - 1. */
    for (int v = 0; v < 256; v++) ck_assert_uint_eq(nd_pixel_to_u8((float)v / 127.5f - 1.0f), v);
    /* Against the rule in double, on a fine sweep. */
    for (int i = -1100; i <= 1100; i++) {
        float x = (float)i / 1000.0f;
        double v = ((double)x + 1.0) * 127.5;
        int want = v <= 0 ? 0 : v >= 255 ? 255 : (int)floor(v + 0.5);
        ck_assert_uint_eq(nd_pixel_to_u8(x), want);
    }
}
END_TEST

START_TEST(test_png_tensor) {
    td_make_dir();
    nd_error err;
    /* [H, W] gray. */
    const float v[6] = {-1.0f, 1.0f, 0.0f, -0.5f, 2.0f, NAN};
    const char *path = td_path("g.png");
    write_ok(nd_png_write_tensor(path, nd_from_buffer(v, ND_SHAPE(2, 3)), &err), &err);
    png_image img;
    read_ok(path, &img);
    ck_assert(img.width == 3 && img.height == 2 && img.channels == 1);
    const unsigned char want[6] = {0, 255, 128, 64, 255, 0};
    ck_assert(memcmp(img.pixels, want, 6) == 0);
    free(img.pixels);
    /* [3, H, W] RGB from a channels-last tensor, permuted: any strides. */
    nd_tensor *hwc = t_uniform(5, ND_SHAPE(5, 7, 3), -1.2f, 1.2f);
    nd_tensor *chw = nd_permute(hwc, ND_AXES(2, 0, 1));
    ck_assert(!nd_is_contiguous(chw));
    path = td_path("rgb.png");
    write_ok(nd_png_write_tensor(path, chw, &err), &err);
    read_ok(path, &img);
    ck_assert(img.width == 7 && img.height == 5 && img.channels == 3);
    for (int64_t i = 0; i < 5 * 7 * 3; i++)
        ck_assert_uint_eq(img.pixels[i], nd_pixel_to_u8(nd_data(hwc)[i]));
    free(img.pixels);
    /* [1, H, W] is gray. */
    path = td_path("one.png");
    write_ok(nd_png_write_tensor(path, nd_slice(chw, 0, 1, 2, 1), &err), &err);
    read_ok(path, &img);
    ck_assert(img.width == 7 && img.height == 5 && img.channels == 1);
    for (int64_t i = 0; i < 5 * 7; i++)
        ck_assert_uint_eq(img.pixels[i], nd_pixel_to_u8(nd_data(hwc)[3 * i + 1]));
    free(img.pixels);
    td_remove_dir();
}
END_TEST

START_TEST(test_png_grid) {
    td_make_dir();
    nd_error err;
    /* 5 gray images of 4x3 into 3 columns and 2 rows (picked): 17x14. */
    nd_tensor *batch = t_uniform(9, ND_SHAPE(5, 1, 4, 3), -1.0f, 1.0f);
    const char *path = td_path("grid.png");
    write_ok(nd_png_write_grid(path, batch, 0, 0, &err), &err);
    png_image img;
    read_ok(path, &img);
    ck_assert(img.width == 17 && img.height == 14 && img.channels == 1);
    const float *x = nd_data(batch);
    for (int y = 0; y < 14; y++)
        for (int c = 0; c < 17; c++) {
            int r = (y - 2) / 6, q = (c - 2) / 5, iy = (y - 2) % 6, ix = (c - 2) % 5;
            bool inside = y >= 2 && c >= 2 && iy < 4 && ix < 3 && r * 3 + q < 5;
            int want = inside ? nd_pixel_to_u8(x[(r * 3 + q) * 12 + iy * 3 + ix]) : 255;
            ck_assert_msg(img.pixels[y * 17 + c] == want, "pixel (%d, %d)", y, c);
        }
    free(img.pixels);
    /* RGB, 1 row of 4 columns, 2 images (the rest white), a sliced batch. */
    nd_tensor *rgb = t_uniform(10, ND_SHAPE(4, 3, 2, 2), -1.0f, 1.0f);
    write_ok(nd_png_write_grid(path, nd_slice(rgb, 0, 0, 4, 2), 1, 4, &err), &err);
    read_ok(path, &img);
    ck_assert(img.width == 4 * 4 + 2 && img.height == 6 && img.channels == 3);
    for (int k = 0; k < 4; k++)
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < 2; y++)
                for (int c = 0; c < 2; c++) {
                    int at = ((2 + y) * 18 + 2 + 4 * k + c) * 3 + ch;
                    int want = k < 2 ? nd_pixel_to_u8(nd_data(rgb)[(2 * k * 3 + ch) * 4 + y * 2 + c])
                                     : 255;
                    ck_assert_uint_eq(img.pixels[at], want);
                }
    free(img.pixels);
    /* 10 images: 4 columns (ceil sqrt 10), 3 rows. */
    write_ok(nd_png_write_grid(path, t_uniform(1, ND_SHAPE(10, 1, 3, 3), -1, 1), 0, 0, &err),
             &err);
    read_ok(path, &img);
    ck_assert(img.width == 4 * 5 + 2 && img.height == 3 * 5 + 2);
    free(img.pixels);
    td_remove_dir();
}
END_TEST

START_TEST(test_png_failures) {
    td_make_dir();
    const unsigned char small[4] = {10, 20, 30, 40};
    const char *path = td_path("old.png");
    nd_error err;
    char want[1024];
    write_ok(nd_png_write(path, small, 2, 2, 1, &err), &err);
#ifndef _WIN32 /* Windows has no file size limit to set */
    /* A write that fails half-way (the file size limit; it stops root too):
     * the old file stays, the temporary goes. */
    size_t n = 400 * 400 * 3;
    unsigned char *noise = malloc(n);
    uint32_t s = 3;
    for (size_t i = 0; i < n; i++) noise[i] = (unsigned char)td_rand(&s);
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = nd_png_write(path, noise, 400, 400, 3, &err);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    free(noise);
    ck_assert_int_eq(rc, ND_ERR);
    snprintf(want, sizeof want, "cannot write the temporary file: %s", strerror(EFBIG));
    td_expect(&err, path, want);
    png_image img;
    read_ok(path, &img);
    ck_assert(img.width == 2 && memcmp(img.pixels, small, 4) == 0);
    free(img.pixels);
    ck_assert_str_eq(td_listing(), "old.png");
#endif
    /* The target is a directory: the rename fails. */
    const char *sub = td_path("sub");
    ck_assert_int_eq(t_mkdir(sub), 0);
    ck_assert_int_eq(nd_png_write(sub, small, 2, 2, 1, &err), ND_ERR);
    snprintf(want, sizeof want, "cannot rename the temporary file: %s", strerror(EISDIR));
    td_expect(&err, sub, want);
    /* The directory does not exist. */
    const char *lost = td_path("nowhere/a.png");
    ck_assert_int_eq(nd_png_write_tensor(lost, nd_zeros(ND_SHAPE(2, 2)), &err), ND_ERR);
    snprintf(want, sizeof want, "cannot create a temporary file beside it: %s", strerror(ENOENT));
    td_expect(&err, lost, want);
    ck_assert_int_eq(nd_png_write_grid(lost, nd_zeros(ND_SHAPE(1, 1, 2, 2)), 1, 1, NULL),
                     ND_ERR);
    ck_assert_str_eq(td_listing(), "old.png sub");
    td_remove_dir();
}
END_TEST

/* A scatter plot: gray points under red ones at the pixels their
 * coordinates give, white elsewhere, points outside the square left out,
 * and the file read back whole. */
START_TEST(test_png_scatter) {
    td_make_dir();
    const float a[6] = {0.5f, 0.5f, -1.9f, 1.9f, 5.0f, 0.0f}, b[2] = {-1.0f, -1.0f};
    nd_tensor *under = nd_from_buffer(a, ND_SHAPE(3, 2)), *over = nd_from_buffer(b, ND_SHAPE(1, 2));
    nd_error err;
    const char *path = td_path("scatter.png");
    write_ok(nd_png_scatter(path, under, over, 101, -2.0, 2.0, &err), &err);
    png_image img;
    read_ok(path, &img);
    ck_assert_int_eq(img.width, 101);
    ck_assert_int_eq(img.channels, 3);
    /* (x, y) -> column (x + 2) / 4 * 100, row (2 - y) / 4 * 100 */
    const unsigned char *p = img.pixels;
#define AT(col, row) (p + 3 * ((row) * 101 + (col)))
    ck_assert(AT(62, 37)[0] == 170 && AT(62, 37)[1] == 170);   /* (0.5, 0.5), gray */
    ck_assert(AT(2, 2)[0] == 170);                             /* (-1.9, 1.9) */
    ck_assert(AT(25, 75)[0] == 200 && AT(25, 75)[1] == 30);    /* (-1, -1), red */
    ck_assert(AT(80, 20)[0] == 255 && AT(80, 20)[2] == 255);   /* nothing there */
    ck_assert(AT(0, 50)[0] == 90);                             /* the frame */
    int colored = 0;
    for (int e = 0; e < 101 * 101; e++) colored += p[3 * e] == 200 || p[3 * e] == 170;
    ck_assert_int_eq(colored, 3 * 4); /* three 2x2 dots; (5, 0) is outside */
#undef AT
    free(img.pixels);
    EXPECT_FATAL(nd_png_scatter(path, nd_zeros(ND_SHAPE(3, 3)), NULL, 64, -1, 1, &err),
                 "nanodiff: png_scatter: under [3,3] are not points [N, 2]");
    EXPECT_FATAL(nd_png_scatter(path, NULL, NULL, 64, 1, 1, &err),
                 "nanodiff: png_scatter: bounds [1, 1] are not an interval");
    td_remove_dir();
}
END_TEST

START_TEST(test_png_misuse) {
    const unsigned char px[12] = {0};
    EXPECT_FATAL(nd_png_write("x.png", px, 2, 2, 2, NULL),
                 "nanodiff: png_write: 2 channels; PNG output takes 1 (gray) or 3 (RGB)");
    EXPECT_FATAL(nd_png_write("x.png", px, 0, 2, 1, NULL),
                 "nanodiff: png_write: image size 0x2; both must be >= 1");
    EXPECT_FATAL(nd_png_write(NULL, px, 1, 1, 1, NULL), "nanodiff: png_write: path is NULL");
    EXPECT_FATAL(nd_png_write("x.png", NULL, 1, 1, 1, NULL),
                 "nanodiff: png_write: pixels is NULL");
    EXPECT_FATAL(nd_png_write_tensor("x.png", nd_zeros(ND_SHAPE(2, 4, 4)), NULL),
                 "nanodiff: png_write_tensor: shape [2,4,4] has 2 channels; PNG output takes "
                 "1 (gray) or 3 (RGB)");
    EXPECT_FATAL(nd_png_write_tensor("x.png", nd_zeros(ND_SHAPE(4)), NULL),
                 "nanodiff: png_write_tensor: image has shape [4]; it must be [H, W] or "
                 "[C, H, W]");
    EXPECT_FATAL(nd_png_write_tensor("x.png", nd_zeros(ND_SHAPE(0, 4)), NULL),
                 "nanodiff: png_write_tensor: shape [0,4]: image sides must be 1..536870911");
    EXPECT_FATAL(nd_png_write_grid("x.png", nd_zeros(ND_SHAPE(3, 1, 2, 2)), 1, 2, NULL),
                 "nanodiff: png_write_grid: 3 images do not fit in 1 x 2 cells (rows x columns)");
    EXPECT_FATAL(nd_png_write_grid("x.png", nd_zeros(ND_SHAPE(3, 2, 2)), 1, 2, NULL),
                 "nanodiff: png_write_grid: batch has shape [3,2,2]; it must be [N, C, H, W]");
    ck_assert_int_eq(access("x.png", F_OK), -1);
}
END_TEST

TCase *tcase_png(void) {
    TCase *tc = nd_test_case("png");
    tcase_add_test(tc, test_png_gray_and_rgb);
    tcase_add_test(tc, test_png_header_bytes);
    tcase_add_test(tc, test_pixel_rule);
    tcase_add_test(tc, test_png_tensor);
    tcase_add_test(tc, test_png_grid);
    tcase_add_test(tc, test_png_failures);
    tcase_add_test(tc, test_png_misuse);
    tcase_add_test(tc, test_png_scatter);
    return tc;
}
