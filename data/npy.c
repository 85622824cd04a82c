/* NumPy .npy files (numpy.lib.format):
 *
 *   "\x93NUMPY" | major, minor | HEADER_LEN | header | data
 *
 * HEADER_LEN is a little-endian u16 in version 1.0, a u32 in 2.0. The
 * header is the text of a Python dict, {'descr': '<f4', 'fortran_order':
 * False, 'shape': (2, 3), }, padded with spaces and ended by a newline so
 * that the data starts at a multiple of 64 bytes (the format's alignment
 * for memory mapping). The data is the elements in C order. We write
 * version 1.0 and little-endian float32 whatever the host; we read 1.0 and
 * 2.0, float32 and float64, C order. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define ALIGN 64

/* The header text, padding and newline included, into h (at least 512
 * bytes: 8 sizes of 19 digits fit with room); returns its length. */
static size_t npy_header(const nd_tensor *x, char *h, size_t size) {
    size_t n = (size_t)snprintf(h, size, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int d = 0; d < x->ndim; d++)
        n += (size_t)snprintf(h + n, size - n, "%s%lld", d ? ", " : "",
                              (long long)x->shape[d]);
    /* A 1-tuple needs its comma: (5,) */
    n += (size_t)snprintf(h + n, size - n, "%s), }", x->ndim == 1 ? "," : "");
    while ((10 + n + 1) % ALIGN) h[n++] = ' ';
    h[n++] = '\n';
    return n;
}

int nd_npy_save(const char *path, const nd_tensor *x, nd_error *err) {
    if (!path) nd_fatal("npy_save", "path is NULL");
    if (!x) nd_fatal("npy_save", "x is NULL");
    char text[640];
    size_t hn = npy_header(x, text, sizeof text - ALIGN);
    unsigned char head[10 + sizeof text];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    head[8] = (unsigned char)hn;
    head[9] = (unsigned char)(hn >> 8);
    memcpy(head + 10, text, hn);

    /* The elements in row-major order, whatever x's strides. */
    int64_t count = nd_numel(x);
    size_t bytes = (size_t)count * 4;
    unsigned char *data = count ? nd_alloc(bytes) : NULL;
    int64_t index[ND_MAX_DIMS] = {0};
    const float *base = count ? nd_data(x) : NULL;
    for (int64_t i = 0; i < count; i++) {
        int64_t off = 0;
        for (int d = 0; d < x->ndim; d++) off += index[d] * x->strides[d];
        uint32_t u;
        memcpy(&u, &base[off], 4);
        for (int k = 0; k < 4; k++) data[4 * i + k] = (unsigned char)(u >> (8 * k));
        for (int d = x->ndim - 1; d >= 0 && ++index[d] == x->shape[d]; d--) index[d] = 0;
    }
    const void *parts[] = {head, data};
    size_t sizes[] = {10 + hn, bytes};
    int rc = nd__write_atomic(path, parts, sizes, count ? 2 : 1, err);
    if (data) nd_dealloc(data, bytes);
    return rc;
}

/* ---- reading ----------------------------------------------------------- */

#define SHOW_MAX 24 /* characters of header text quoted in a message */

/* The header text being parsed, and where its messages go. */
typedef struct lexer {
    const char *path;
    const unsigned char *p, *end;
    nd_error *err;
} lexer;

/* What the header says. */
typedef struct header {
    int itemsize; /* 4: '<f4', 8: '<f8' */
    int ndim;
    int64_t shape[ND_MAX_DIMS];
    bool has_descr, has_order, has_shape;
} header;

/* s[0..n) in quotes: at most SHOW_MAX characters, unprintable bytes as
 * '?', "..." when cut. buf holds SHOW_MAX + 8 bytes. */
static const char *quote(const unsigned char *s, size_t n, char *buf) {
    size_t k = n < SHOW_MAX ? n : SHOW_MAX;
    buf[0] = '\'';
    for (size_t i = 0; i < k; i++)
        buf[1 + i] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
    memcpy(buf + 1 + k, k < n ? "...'" : "'", k < n ? 5 : 2);
    return buf;
}

/* The header text from where the lexer is, for a message. */
static const char *show(const lexer *l, char *buf) {
    if (l->p >= l->end) return "the end of the header";
    return quote(l->p, (size_t)(l->end - l->p), buf);
}

/* Sets "<path>: .npy header: expected <what>, found <the text there>". */
static int expected(lexer *l, const char *what) {
    char buf[SHOW_MAX + 8];
    return nd_error_set(l->err, "%s: .npy header: expected %s, found %s", l->path, what,
                        show(l, buf));
}

static void skip_space(lexer *l) {
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r'))
        l->p++;
}

/* Skips spaces, then takes c if it comes next. */
static bool take(lexer *l, char c) {
    skip_space(l);
    if (l->p < l->end && *l->p == c) {
        l->p++;
        return true;
    }
    return false;
}

/* A Python string literal in single or double quotes, without escapes. */
static int string(lexer *l, const char *what, const unsigned char **s, size_t *n) {
    skip_space(l);
    if (l->p == l->end || (*l->p != '\'' && *l->p != '"')) return expected(l, what);
    unsigned char mark = *l->p;
    const unsigned char *q = l->p + 1;
    while (q < l->end && *q != mark && *q != '\\' && *q != '\n') q++;
    if (q == l->end || *q != mark) return expected(l, what);
    *s = l->p + 1;
    *n = (size_t)(q - *s);
    l->p = q + 1;
    return ND_OK;
}

static bool word(lexer *l, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(l->end - l->p) < n || memcmp(l->p, w, n) != 0) return false;
    const unsigned char *q = l->p + n;
    if (q < l->end && (*q == '_' || (*q >= '0' && *q <= '9') || ((*q | 0x20) >= 'a' &&
                                                                   (*q | 0x20) <= 'z')))
        return false; /* Trueish is not True */
    l->p = q;
    return true;
}

static int parse_descr(lexer *l, header *h) {
    const unsigned char *s;
    size_t n;
    if (string(l, "a dtype string such as '<f4' for 'descr'", &s, &n)) return ND_ERR;
    if (n == 3 && memcmp(s, "<f4", 3) == 0) h->itemsize = 4;
    else if (n == 3 && memcmp(s, "<f8", 3) == 0) h->itemsize = 8;
    else {
        char buf[SHOW_MAX + 8];
        return nd_error_set(l->err, "%s: dtype %s is not supported; only '<f4' (float32) and "
                            "'<f8' (float64, read as float32) are", l->path,
                            quote(s, n, buf));
    }
    return ND_OK;
}

static int parse_order(lexer *l) {
    skip_space(l);
    if (word(l, "False")) return ND_OK;
    if (word(l, "True"))
        return nd_error_set(l->err, "%s: the array is in Fortran order (fortran_order: True); "
                            "only C order is read", l->path);
    return expected(l, "True or False for 'fortran_order'");
}

/* A tuple of non-negative integers: (), (5,), (2, 3) or (2, 3,); a
 * Python 2 'L' after a number is allowed, as NumPy allows it. */
static int parse_shape(lexer *l, header *h) {
    if (!take(l, '(')) return expected(l, "a tuple for 'shape'");
    h->ndim = 0;
    bool comma = false;
    while (!take(l, ')')) {
        if (h->ndim > 0 && !comma) return expected(l, "',' or ')' in 'shape'");
        skip_space(l);
        const unsigned char *at = l->p;
        if (l->p < l->end && *l->p == '-') {
            l->p++;
            while (l->p < l->end && *l->p >= '0' && *l->p <= '9') l->p++;
            char buf[SHOW_MAX + 8];
            return nd_error_set(l->err, "%s: .npy header: 'shape' holds a negative size %s",
                                l->path, quote(at, (size_t)(l->p - at), buf));
        }
        if (l->p == l->end || *l->p < '0' || *l->p > '9')
            return expected(l, "a size (a non-negative integer) in 'shape'");
        uint64_t v = 0;
        bool big = false;
        for (; l->p < l->end && *l->p >= '0' && *l->p <= '9'; l->p++) {
            unsigned digit = *l->p - '0';
            if (v > ((uint64_t)INT64_MAX - digit) / 10) big = true;
            else v = 10 * v + digit;
        }
        if (l->p < l->end && *l->p == 'L') l->p++;
        if (big) {
            char buf[SHOW_MAX + 8];
            return nd_error_set(l->err, "%s: .npy header: size %s in 'shape' is too large",
                                l->path, quote(at, (size_t)(l->p - at), buf));
        }
        if (h->ndim == ND_MAX_DIMS)
            return nd_error_set(l->err, "%s: 'shape' has more than %d dimensions, the most a "
                                "tensor has", l->path, ND_MAX_DIMS);
        h->shape[h->ndim++] = (int64_t)v;
        comma = take(l, ',');
    }
    /* (5) is the number 5 in Python, not a tuple. */
    if (h->ndim == 1 && !comma)
        return nd_error_set(l->err, "%s: .npy header: 'shape' is (%lld), a number, not a "
                            "tuple; a 1-tuple is written (%lld,)", l->path,
                            (long long)h->shape[0], (long long)h->shape[0]);
    /* The elements and their bytes must be counted in int64, zero sizes
     * or not (nd_empty is not asked for what cannot be). */
    int64_t n = 1;
    for (int d = 0; d < h->ndim; d++) {
        if (h->shape[d] > 0 && n > INT64_MAX / 8 / h->shape[d]) {
            char s[ND_SHAPE_STR_LEN];
            return nd_error_set(l->err, "%s: shape %s has too many elements", l->path,
                                nd_shape_str(h->shape, h->ndim, s));
        }
        if (h->shape[d] > 0) n *= h->shape[d];
    }
    return ND_OK;
}

/* The header dict: exactly the keys 'descr', 'fortran_order' and 'shape',
 * in any order, then only spaces. */
static int parse_header(lexer *l, header *h) {
    memset(h, 0, sizeof *h);
    if (!take(l, '{')) return expected(l, "a dict '{'");
    bool comma = true;
    while (!take(l, '}')) {
        if (!comma) return expected(l, "',' or '}' in the dict");
        const unsigned char *key;
        size_t n;
        if (string(l, "a key ('descr', 'fortran_order' or 'shape')", &key, &n)) return ND_ERR;
        bool *seen = n == 5 && memcmp(key, "descr", 5) == 0           ? &h->has_descr
                     : n == 13 && memcmp(key, "fortran_order", 13) == 0 ? &h->has_order
                     : n == 5 && memcmp(key, "shape", 5) == 0           ? &h->has_shape
                                                                        : NULL;
        char buf[SHOW_MAX + 8];
        if (!seen)
            return nd_error_set(l->err, "%s: .npy header: unexpected key %s (the keys are "
                                "'descr', 'fortran_order' and 'shape')", l->path,
                                quote(key, n, buf));
        if (*seen)
            return nd_error_set(l->err, "%s: .npy header: key %s appears twice", l->path,
                                quote(key, n, buf));
        *seen = true;
        if (!take(l, ':')) return expected(l, "':' after a key");
        int rc = seen == &h->has_descr ? parse_descr(l, h)
                 : seen == &h->has_order ? parse_order(l)
                                         : parse_shape(l, h);
        if (rc) return ND_ERR;
        comma = take(l, ',');
    }
    skip_space(l);
    if (l->p < l->end) return expected(l, "only spaces after the dict");
    const char *missing = !h->has_descr ? "descr" : !h->has_order ? "fortran_order"
                          : !h->has_shape ? "shape" : NULL;
    if (missing)
        return nd_error_set(l->err, "%s: .npy header: the dict has no '%s'", l->path, missing);
    return ND_OK;
}

int nd_npy_load(const char *path, nd_tensor **out, nd_error *err) {
    if (!path) nd_fatal("npy_load", "path is NULL");
    if (!out) nd_fatal("npy_load", "out is NULL");
    *out = NULL;
    nd_bytes file;
    if (nd__read_file(path, ND_DATA_MAX_BYTES, &file, err)) return ND_ERR;
    const unsigned char *b = file.data;
    uint64_t size = file.size;
    int rc = ND_OK;
    size_t magic = size < 6 ? (size_t)size : 6;
    uint64_t start = 0, hlen = 0;
    if (size == 0)
        rc = nd_error_set(err, "%s: the file is empty, not a .npy file", path);
    else if (memcmp(b, "\x93NUMPY", magic) != 0)
        rc = nd_error_set(err, "%s: not a .npy file: it does not start with \\x93NUMPY", path);
    else if (size < 10)
        rc = nd_error_set(err, "%s: truncated: the file is %llu bytes, shorter than a .npy "
                          "preamble", path, (unsigned long long)size);
    else if (b[6] == 1 && b[7] == 0) {
        start = 10;
        hlen = b[8] | (uint64_t)b[9] << 8;
    } else if (b[6] == 2 && b[7] == 0 && size >= 12) {
        start = 12;
        hlen = b[8] | (uint64_t)b[9] << 8 | (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
    } else if (b[6] == 2 && b[7] == 0)
        rc = nd_error_set(err, "%s: truncated: the file is %llu bytes, shorter than a .npy "
                          "2.0 preamble", path, (unsigned long long)size);
    else
        rc = nd_error_set(err, "%s: .npy format version %u.%u is not supported (1.0 and 2.0 "
                          "are)", path, b[6], b[7]);
    if (!rc && start + hlen > size)
        rc = nd_error_set(err, "%s: truncated: the header is %llu bytes, the file ends after "
                          "%llu of them", path, (unsigned long long)hlen,
                          (unsigned long long)(size - start));
    header h;
    if (!rc) {
        /* Without the padding, so that messages quote no spaces. */
        const unsigned char *end = b + start + hlen;
        while (end > b + start && (end[-1] == ' ' || end[-1] == '\n')) end--;
        lexer l = {path, b + start, end, err};
        rc = parse_header(&l, &h);
    }
    if (rc) {
        nd_bytes_free(&file);
        return ND_ERR;
    }
    int64_t count = 1;
    for (int d = 0; d < h.ndim; d++) count *= h.shape[d];
    uint64_t have = size - start - hlen, need = (uint64_t)count * (uint64_t)h.itemsize;
    const char *dtype = h.itemsize == 4 ? "'<f4'" : "'<f8'";
    char s[ND_SHAPE_STR_LEN];
    if (have != need) {
        nd_shape_str(h.shape, h.ndim, s);
        if (have < need)
            rc = nd_error_set(err, "%s: truncated: shape %s of %s needs %llu bytes of data, "
                              "the file has %llu", path, s, dtype, (unsigned long long)need,
                              (unsigned long long)have);
        else
            rc = nd_error_set(err, "%s: %llu bytes follow the data (shape %s of %s is %llu "
                              "bytes)", path, (unsigned long long)(have - need), s, dtype,
                              (unsigned long long)need);
        nd_bytes_free(&file);
        return rc;
    }
    /* Byte by byte, little-endian, whatever the host. */
    nd_tensor *t = nd_persist(nd_empty(h.shape, h.ndim));
    float *x = nd_data(t);
    const unsigned char *q = b + start + hlen;
    for (int64_t i = 0; i < count; i++, q += h.itemsize) {
        uint64_t u = 0;
        for (int k = h.itemsize - 1; k >= 0; k--) u = u << 8 | q[k];
        if (h.itemsize == 4) {
            uint32_t u32 = (uint32_t)u;
            memcpy(&x[i], &u32, 4);
        } else {
            double v;
            memcpy(&v, &u, 8);
            x[i] = (float)v; /* rounded to nearest; beyond the float range: +-inf */
        }
    }
    nd_bytes_free(&file);
    *out = t;
    return ND_OK;
}
