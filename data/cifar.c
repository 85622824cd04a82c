/* CIFAR-10 binary batches (data_batch_1.bin ... data_batch_5.bin,
 * test_batch.bin): records of 3073 bytes, a label 0..9 and a 32x32 image
 * as 1024 red, 1024 green and 1024 blue bytes, each row-major, which is
 * exactly the order of [3, 32, 32]. */
#include <string.h>

#include "internal.h"

#define SIDE 32
#define PIXELS (3 * SIDE * SIDE)
#define RECORD (1 + PIXELS)

/* The number of records in a file of size bytes, or ND_ERR. */
static int count_records(const char *path, uint64_t size, int64_t *records,
                         nd_error *err) {
    if (size == 0) return nd_error_set(err, "%s: the file is empty", path);
    if (size % RECORD)
        return nd_error_set(err, "%s: the file is %llu byte%s, not a whole number of "
                            "%d-byte records (%llu record%s and %llu byte%s over)", path,
                            (unsigned long long)size, size == 1 ? "" : "s", RECORD,
                            (unsigned long long)(size / RECORD),
                            size / RECORD == 1 ? "" : "s",
                            (unsigned long long)(size % RECORD),
                            size % RECORD == 1 ? "" : "s");
    /* Sizes are whole records from here. */
    *records = (int64_t)(size / RECORD);
    return ND_OK;
}

int nd_cifar10_load(const char *const *paths, int npaths, nd_dataset *out,
                    nd_error *err) {
    if (!paths) nd_fatal("cifar10_load", "paths is NULL");
    if (npaths < 1) nd_fatal("cifar10_load", "npaths is %d; it must be >= 1", npaths);
    if (!out) nd_fatal("cifar10_load", "out is NULL");
    for (int i = 0; i < npaths; i++)
        if (!paths[i]) nd_fatal("cifar10_load", "paths[%d] is NULL", i);
    memset(out, 0, sizeof *out);
    /* First the sizes of all files, so that the tensors are made once. */
    int64_t total = 0;
    for (int i = 0; i < npaths; i++) {
        uint64_t size;
        int64_t records = 0; /* set by count_records */
        if (nd__file_size(paths[i], &size, err)) return ND_ERR;
        if (count_records(paths[i], size, &records, err)) return ND_ERR;
        total += records;
    }
    nd_tensor *images = nd_persist(nd_empty(ND_SHAPE(total, 3, SIDE, SIDE)));
    nd_tensor *labels = nd_persist(nd_empty(ND_SHAPE(total)));
    float *x = nd_data(images), *l = nd_data(labels);
    int64_t k = 0;
    int rc = ND_OK;
    for (int i = 0; i < npaths && !rc; i++) {
        nd_bytes b;
        int64_t records = 0;
        rc = nd__read_file(paths[i], ND_DATA_MAX_BYTES, &b, err);
        if (!rc) rc = count_records(paths[i], b.size, &records, err);
        if (!rc && records > total - k)
            rc = nd_error_set(err, "%s: the file grew while being read", paths[i]);
        for (int64_t r = 0; r < records && !rc; r++, k++) {
            const unsigned char *p = b.data + r * RECORD;
            if (p[0] > 9) {
                rc = nd_error_set(err, "%s: record %lld (byte %lld): label %u is not a "
                                  "CIFAR-10 class (0..9)", paths[i], (long long)r,
                                  (long long)(r * RECORD), p[0]);
                break;
            }
            l[k] = p[0];
            for (int j = 0; j < PIXELS; j++) x[k * PIXELS + j] = nd__u8_to_pixel(p[1 + j]);
        }
        nd_bytes_free(&b);
    }
    if (!rc && k != total)
        rc = nd_error_set(err, "%s: a file shrank while being read", paths[npaths - 1]);
    if (rc) {
        nd_free(images);
        nd_free(labels);
        return rc;
    }
    out->images = images;
    out->labels = labels;
    out->n = total;
    return ND_OK;
}
