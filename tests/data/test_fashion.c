/* The real Fashion-MNIST test set, as Debian's dataset-fashion-mnist
 * package installs it (.ci/run installs the package; without the files
 * this test fails, it does not skip). The expected figures were computed
 * from the same files with Python's gzip module. */
#include <stdio.h>

#include "files.h"

#define DIR "/usr/share/datasets/fashion-mnist/"
/* From Python: labels[0], labels[9999]; the bytes of image 0, of image
 * 9999 and of all 10,000 images, added up. */
#define LABEL_FIRST 9
#define LABEL_LAST 5
#define SUM_FIRST 33456
#define SUM_LAST 24390
#define SUM_ALL 573469082LL

START_TEST(test_fashion_mnist_t10k) {
    nd_dataset d;
    nd_error err = {{0}};
    int rc = nd_idx_load(DIR "t10k-images-idx3-ubyte.gz", DIR "t10k-labels-idx1-ubyte.gz", 2,
                         &d, &err);
    ck_assert_msg(rc == ND_OK, "%s (install the Debian package dataset-fashion-mnist)",
                  err.message);
    ck_assert_int_eq(d.n, 10000);
    ck_assert(d.images->shape[0] == 10000 && d.images->shape[1] == 1 &&
              d.images->shape[2] == 32 && d.images->shape[3] == 32);
    /* 1,000 of each of the ten classes. */
    int histogram[10] = {0}, odd = 0;
    for (int64_t i = 0; i < d.n; i++) {
        float l = nd_data(d.labels)[i];
        if (l >= 0 && l <= 9 && l == (int)l) histogram[(int)l]++;
        else odd++;
    }
    ck_assert_int_eq(odd, 0);
    for (int k = 0; k < 10; k++) ck_assert_int_eq(histogram[k], 1000);
    ck_assert(nd_data(d.labels)[0] == LABEL_FIRST && nd_data(d.labels)[9999] == LABEL_LAST);
    /* Sums of the bytes back from the floats; the 2-pixel frame is -1.
     * (Counted, then checked once: a check per pixel costs a write each.) */
    const float *x = nd_data(d.images);
    long long total = 0, first = 0, last = 0, frame_wrong = 0, not_byte = 0;
    for (int64_t i = 0; i < d.n; i++)
        for (int y = 0; y < 32; y++)
            for (int c = 0; c < 32; c++) {
                float v = x[(i * 32 + y) * 32 + c];
                if (y < 2 || y >= 30 || c < 2 || c >= 30) {
                    frame_wrong += v != -1.0f;
                    continue;
                }
                int b = nd_pixel_to_u8(v);
                /* the conversion's two steps, each rounded to float as the
                 * reader rounds them (one expression would keep double
                 * precision in between where float arithmetic runs wider,
                 * s390x, and miss the reader's value by an ulp) */
                float q = (float)b / 127.5f, want = q - 1.0f;
                not_byte += v != want;
                total += b;
                if (i == 0) first += b;
                if (i == 9999) last += b;
            }
    ck_assert_int_eq(frame_wrong, 0);
    ck_assert_int_eq(not_byte, 0);
    ck_assert_int_eq(first, SUM_FIRST);
    ck_assert_int_eq(last, SUM_LAST);
    ck_assert_int_eq(total, SUM_ALL);
    nd_dataset_free(&d);
}
END_TEST

TCase *tcase_fashion(void) {
    TCase *tc = nd_test_case("fashion");
    tcase_add_test(tc, test_fashion_mnist_t10k);
    return tc;
}
