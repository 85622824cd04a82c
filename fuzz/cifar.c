/* Fuzz target: nd_cifar10_load (data/data.h), CIFAR-10 binary batches.
 *
 * Input: three bytes of options, then the files one after the other:
 *   byte 0     the number of files, 1 + byte % 3
 *   bytes 1-2  for files 1 and 2 (when there are more after them): low
 *              nibble, whole 3073-byte records; high nibble h, h - 8
 *              bytes more (h = 0: none), so that lengths near a record's
 *              are common. Each file is cut to what there is; the last
 *              file is the rest.
 * Beyond crashes, leaks and nd_fatal: on ND_OK the records of all files,
 * in order, are in images [N, 3, 32, 32] (x / 127.5 - 1) and labels [N];
 * on ND_ERR *out is empty and the message names a file. */
#include <string.h>

#include "data/data.h"
#include "fuzz.h"

#define RECORD 3073

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_init();
    if (size < 3) return 0;
    size_t base = fz_mem_begin();
    int nfiles = 1 + data[0] % 3;
    const unsigned char *p = data + 3;
    size_t left = size - 3;
    const char *paths[3];
    const unsigned char *parts[3];
    size_t sizes[3];
    for (int i = 0; i < nfiles; i++) {
        size_t n = left;
        if (i + 1 < nfiles) {
            unsigned spec = data[1 + i], h = spec >> 4;
            long want = (long)(spec & 15) * RECORD + (h ? (long)h - 8 : 0);
            n = want < 0 ? 0 : (size_t)want < left ? (size_t)want : left;
        }
        parts[i] = p;
        sizes[i] = n;
        paths[i] = fz_write(i, p, n);
        p += n;
        left -= n;
    }
    nd_dataset d;
    memset(&d, 0xab, sizeof d);
    nd_error err = {{0}};
    int rc = nd_cifar10_load(paths, nfiles, &d, &err);
    fz_check_result("nd_cifar10_load", rc, &err, NULL);
    if (rc == ND_OK) {
        int64_t total = 0;
        for (int i = 0; i < nfiles; i++) {
            FZ_CHECK(sizes[i] > 0 && sizes[i] % RECORD == 0,
                     "accepted file %d of %zu bytes, not whole records", i, sizes[i]);
            total += (int64_t)(sizes[i] / RECORD);
        }
        FZ_CHECK(d.n == total && d.images->ndim == 4 && d.images->shape[0] == total &&
                     d.images->shape[1] == 3 && d.images->shape[2] == 32 &&
                     d.images->shape[3] == 32 && d.labels->ndim == 1 &&
                     d.labels->shape[0] == total,
                 "images or labels of the wrong shape for %lld records", (long long)total);
        const float *x = nd_data(d.images), *l = nd_data(d.labels);
        int64_t k = 0;
        for (int i = 0; i < nfiles; i++)
            for (size_t r = 0; r < sizes[i] / RECORD; r++, k++) {
                const unsigned char *rec = parts[i] + r * RECORD;
                FZ_CHECK(rec[0] <= 9, "accepted label %u", rec[0]);
                FZ_CHECK(l[k] == (float)rec[0], "label %lld is %g, the file holds %u",
                         (long long)k, l[k], rec[0]);
                for (int j = 0; j < RECORD - 1; j++) {
                    /* each step rounded to float, as the reader rounds it */
                    float q = (float)rec[1 + j] / 127.5f, want = q - 1.0f;
                    FZ_CHECK(x[k * (RECORD - 1) + j] == want, "record %lld byte %d read wrong",
                             (long long)k, j);
                }
            }
        nd_dataset_free(&d);
    } else {
        bool named = false;
        for (int i = 0; i < nfiles; i++) named = named || strstr(err.message, paths[i]);
        FZ_CHECK(named, "the message names no file: %s", err.message);
        FZ_CHECK(d.images == NULL && d.labels == NULL && d.n == 0, "*out not empty after ND_ERR");
    }
    fz_mem_end(base, "nd_cifar10_load");
    return 0;
}
