/* Fuzz target: nd_csv_load (data/data.h), CSV files of points.
 *
 * The input is the file. Beyond crashes, leaks and nd_fatal: on ND_OK the
 * tensor is [N, D] of finite floats and holds what a second reading here
 * finds (lines split at '\n'; blank lines, lines of blanks and lines whose
 * first non-blank is '#' skipped; an optional header first, no field of
 * it a number; D fields of strtod numbers per line, blanks around them
 * trimmed); on ND_ERR *out is NULL and the message names the file. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "fuzz.h"

static bool blank(unsigned char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Field [a, b) as a number. */
static bool number(const unsigned char *a, const unsigned char *b, double *v) {
    while (a < b && blank(*a)) a++;
    while (b > a && blank(b[-1])) b--;
    size_t n = (size_t)(b - a);
    if (n == 0 || n > 255) return false;
    char buf[256];
    memcpy(buf, a, n);
    buf[n] = 0;
    char *end;
    *v = strtod(buf, &end);
    return end == buf + n;
}

/* The reading: each value checked against x[0..rows*d) in order. */
static void second_reading(const unsigned char *p, size_t size, const nd_tensor *t) {
    const float *x = nd_data(t);
    int64_t rows = t->shape[0], d = t->shape[1], k = 0, line_no = 0;
    bool first = true;
    const unsigned char *end = p + size;
    while (p < end) {
        const unsigned char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        const unsigned char *a = p;
        p = eol < end ? eol + 1 : end;
        line_no++;
        while (a < eol && blank(*a)) a++;
        if (a == eol || *a == '#') continue;
        int64_t fields = 1;
        for (const unsigned char *q = a; q < eol; q++) fields += *q == ',';
        FZ_CHECK(fields == d, "accepted: line %lld has %lld fields, the tensor %lld columns",
                 (long long)line_no, (long long)fields, (long long)d);
        double *v = malloc((size_t)fields * sizeof *v);
        bool *num = malloc((size_t)fields * sizeof *num), any = false;
        const unsigned char *f = a;
        for (int64_t i = 0; i < fields; i++) {
            const unsigned char *g = f;
            while (g < eol && *g != ',') g++;
            num[i] = number(f, g, &v[i]);
            any = any || num[i];
            f = g + 1;
        }
        bool header = first && !any;
        first = false;
        for (int64_t i = 0; i < fields && !header; i++) {
            FZ_CHECK(num[i], "accepted: line %lld field %lld is not a number",
                     (long long)line_no, (long long)i + 1);
            FZ_CHECK(k < rows * d, "accepted: more values than the tensor holds");
            FZ_CHECK(x[k] == (float)v[i], "accepted: line %lld field %lld reads %.9g, the "
                     "tensor holds %.9g", (long long)line_no, (long long)i + 1,
                     (double)(float)v[i], (double)x[k]);
            k++;
        }
        free(v);
        free(num);
    }
    FZ_CHECK(k == rows * d, "accepted: %lld values read, the tensor holds %lld", (long long)k,
             (long long)(rows * d));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_init();
    size_t base = fz_mem_begin();
    const char *path = fz_write(0, data, size);
    nd_tensor *t = (nd_tensor *)(uintptr_t)1;
    nd_error err = {{0}};
    int rc = nd_csv_load(path, &t, &err);
    fz_check_result("nd_csv_load", rc, &err, path);
    if (rc == ND_OK) {
        FZ_CHECK(t && t->ndim == 2 && t->shape[0] > 0 && t->shape[1] > 0,
                 "a tensor that is not [N, D], N, D > 0");
        const float *x = nd_data(t);
        for (int64_t i = 0; i < nd_numel(t); i++)
            FZ_CHECK(isfinite(x[i]), "value %lld is not finite", (long long)i);
        second_reading(data, size, t);
        nd_free(t);
    } else {
        FZ_CHECK(t == NULL, "*out not NULL after ND_ERR");
    }
    fz_mem_end(base, "nd_csv_load");
    return 0;
}
