/* Fuzz target: nd_npy_load (data/data.h), NumPy .npy files.
 *
 * The input is the file. Beyond crashes, leaks and nd_fatal: on ND_OK the
 * file has the magic, version 1.0 or 2.0 and a header inside it; the data
 * after the header is exactly the tensor's elements as '<f4' (the same
 * bits) or '<f8' (rounded to float), whichever size fits; and the tensor
 * saved by nd_npy_save loads back with the same shape and bits. On ND_ERR
 * *out is NULL and the message names the file. */
#include <string.h>

#include "data/data.h"
#include "fuzz.h"

static void check_data(const unsigned char *b, size_t size, const nd_tensor *t) {
    FZ_CHECK(size >= 10 && memcmp(b, "\x93NUMPY", 6) == 0, "accepted a file without the magic");
    FZ_CHECK(b[7] == 0 && (b[6] == 1 || b[6] == 2), "accepted version %u.%u", b[6], b[7]);
    FZ_CHECK(b[6] == 1 || size >= 12, "accepted a truncated 2.0 preamble");
    size_t start = b[6] == 1 ? 10 : 12;
    uint64_t hlen = b[6] == 1 ? (uint64_t)b[8] | (uint64_t)b[9] << 8 : fz_le32(b + 8);
    FZ_CHECK(start + hlen <= size, "accepted a header longer than the file");
    uint64_t have = size - start - hlen, n = (uint64_t)nd_numel(t);
    FZ_CHECK(have == 4 * n || have == 8 * n, "accepted %llu bytes of data for %llu elements",
             (unsigned long long)have, (unsigned long long)n);
    const unsigned char *q = b + start + hlen;
    const float *x = n ? nd_data(t) : NULL;
    /* Only one of the two sizes fits, unless n is 0. */
    bool f8 = have == 8 * n && n > 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t got;
        memcpy(&got, &x[i], 4);
        if (!f8) {
            FZ_CHECK(got == fz_le32(q + 4 * i), "element %llu: other bits than the file's",
                     (unsigned long long)i);
        } else {
            uint64_t u = fz_le64(q + 8 * i);
            double d;
            memcpy(&d, &u, 8);
            float want = (float)d;
            uint32_t w;
            memcpy(&w, &want, 4);
            /* NaN payloads may change in the conversion; any NaN will do. */
            FZ_CHECK(got == w || (d != d && x[i] != x[i]),
                     "element %llu: %g, the file's double %g", (unsigned long long)i,
                     (double)x[i], d);
        }
    }
}

static void round_trip(const nd_tensor *t) {
    const char *out = fz_path(1);
    nd_error err = {{0}};
    FZ_CHECK(nd_npy_save(out, t, &err) == ND_OK, "nd_npy_save fails: %s", err.message);
    nd_tensor *back = NULL;
    FZ_CHECK(nd_npy_load(out, &back, &err) == ND_OK, "nd_npy_save's file does not load: %s",
             err.message);
    FZ_CHECK(nd_same_shape(back, t), "saved and loaded again, the shape differs");
    int64_t n = nd_numel(t);
    FZ_CHECK(n == 0 || memcmp(nd_data(back), nd_data(t), (size_t)n * 4) == 0,
             "saved and loaded again, the values differ");
    nd_free(back);
    fz_remove(1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_init();
    size_t base = fz_mem_begin();
    const char *path = fz_write(0, data, size);
    nd_tensor *t = (nd_tensor *)(uintptr_t)1;
    nd_error err = {{0}};
    int rc = nd_npy_load(path, &t, &err);
    fz_check_result("nd_npy_load", rc, &err, path);
    if (rc == ND_OK) {
        FZ_CHECK(t && t->ndim >= 0 && t->ndim <= ND_MAX_DIMS, "a tensor of %d dimensions",
                 t ? t->ndim : -1);
        check_data(data, size, t);
        round_trip(t);
        nd_free(t);
    } else {
        FZ_CHECK(t == NULL, "*out not NULL after ND_ERR");
    }
    fz_mem_end(base, "nd_npy_load");
    return 0;
}
