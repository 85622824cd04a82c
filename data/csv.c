/* CSV files of points: one point per line, its coordinates separated by
 * commas. A person writes these by hand or from a script, so every defect
 * is reported with its line and field, and the text found there. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define FIELD_MAX 255 /* longer fields are not numbers */
#define SHOW_MAX 40   /* characters of a bad field quoted in a message */

static bool blank(unsigned char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* A field for a message: at most SHOW_MAX characters, unprintable bytes as
 * '?', "..." when cut. */
static const char *show(const unsigned char *p, size_t n, char *buf) {
    size_t k = n < SHOW_MAX ? n : SHOW_MAX;
    for (size_t i = 0; i < k; i++) buf[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    if (k < n) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = 0;
    return buf;
}

/* 1: p[0..n) is a number (*v); 0: it is not; -1: it is NaN or infinite;
 * -2: it is finite but beyond the float range. */
static int parse_number(const unsigned char *p, size_t n, float *v) {
    if (n == 0 || n > FIELD_MAX) return 0;
    char buf[FIELD_MAX + 1];
    memcpy(buf, p, n);
    buf[n] = 0;
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    if (end != buf + n || blank((unsigned char)buf[0])) return 0;
    if (isinf(d) && errno == ERANGE) return -2; /* 1e400: finite text, too large */
    if (!isfinite(d)) return -1;
    if (fabs(d) > FLT_MAX) return -2;
    *v = (float)d;
    return 1;
}

typedef struct field {
    const unsigned char *p;
    size_t n;
} field;

/* The fields of line [p, end), spaces around each trimmed, into *fields
 * (grown with nd_alloc); returns how many. */
static int split(const unsigned char *p, const unsigned char *end, field **fields,
                 int *cap) {
    int n = 0;
    for (;;) {
        const unsigned char *q = p;
        while (q < end && *q != ',') q++;
        const unsigned char *a = p, *b = q;
        while (a < b && blank(*a)) a++;
        while (b > a && blank(b[-1])) b--;
        if (n == *cap) {
            int c = *cap ? 2 * *cap : 16;
            field *f = nd_alloc((size_t)c * sizeof *f);
            if (n) memcpy(f, *fields, (size_t)n * sizeof *f);
            if (*fields) nd_dealloc(*fields, (size_t)*cap * sizeof **fields);
            *fields = f;
            *cap = c;
        }
        (*fields)[n++] = (field){a, (size_t)(b - a)};
        if (q == end) return n;
        p = q + 1;
    }
}

int nd_csv_load(const char *path, nd_tensor **out, nd_error *err) {
    if (!path) nd_fatal("csv_load", "path is NULL");
    if (!out) nd_fatal("csv_load", "out is NULL");
    *out = NULL;
    nd_bytes file;
    if (nd__read_file(path, ND_DATA_MAX_BYTES, &file, err)) return ND_ERR;
    nd_bytes values = {0};
    field *fields = NULL;
    int cap = 0, d = 0, first_line = 0, rc = ND_OK;
    bool header = false;
    int64_t rows = 0, line = 0;
    /* An empty file has data NULL: no pointer arithmetic on it. */
    const unsigned char *p = file.data, *end = file.size ? file.data + file.size : p;
    char shown[SHOW_MAX + 4];
    while (p < end && !rc) {
        const unsigned char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        line++;
        const unsigned char *a = p;
        p = eol < end ? eol + 1 : end;
        while (a < eol && blank(*a)) a++;
        if (a == eol || *a == '#') continue; /* blank or a comment */
        int n = split(a, eol, &fields, &cap);
        if (d == 0) {
            /* The first line: a header when none of its fields is a number. */
            first_line = (int)line;
            d = n;
            bool any = false;
            for (int i = 0; i < n && !any; i++) {
                float v;
                any = parse_number(fields[i].p, fields[i].n, &v) != 0;
            }
            if (!any) {
                header = true;
                continue;
            }
        } else if (n != d) {
            rc = nd_error_set(err, "%s: line %lld has %d field%s; line %d, the first, has "
                              "%d", path, (long long)line, n, n == 1 ? "" : "s",
                              first_line, d);
            break;
        }
        nd__bytes_reserve(&values, values.size + (size_t)n * sizeof(float));
        for (int i = 0; i < n; i++) {
            float v;
            int k = parse_number(fields[i].p, fields[i].n, &v);
            if (k == 1) {
                memcpy(values.data + values.size, &v, sizeof v);
                values.size += sizeof v;
                continue;
            }
            if (fields[i].n == 0)
                rc = nd_error_set(err, "%s: line %lld, field %d is empty", path,
                                  (long long)line, i + 1);
            else
                rc = nd_error_set(err, "%s: line %lld, field %d: '%s' is %s", path,
                                  (long long)line, i + 1,
                                  show(fields[i].p, fields[i].n, shown),
                                  k == 0    ? "not a number"
                                  : k == -1 ? "not a finite number"
                                            : "beyond the float range");
            break;
        }
        rows++;
    }
    if (!rc && rows == 0)
        rc = nd_error_set(err, "%s: no points: the file has %s", path,
                          header ? "a header and no data lines" : "no data lines");
    if (!rc) {
        *out = nd_persist(nd_from_buffer((const float *)(void *)values.data,
                                         ND_SHAPE(rows, d)));
    }
    if (fields) nd_dealloc(fields, (size_t)cap * sizeof *fields);
    nd_bytes_free(&values);
    nd_bytes_free(&file);
    return rc;
}
