/* cross-compare: are two result files the same numbers, or close enough?
 *
 *   cross-compare [--ulps N] [--abs X] A B
 *
 * A and B are two safetensors files (checkpoints) or two .npy files
 * (samples), told apart by their names' endings. Every tensor must have
 * the same name and shape in both, and safetensors metadata must match.
 * With no option every value must have the same bits (after decoding, so
 * a difference in the header's text alone would pass; `cmp` sees that).
 * Otherwise a value passes when it is within N units in the last place of
 * float32 (its neighbours counted across zero) or within X absolutely;
 * NaN passes only against NaN. docs/PORTABILITY.md says which results
 * are compared which way, and why.
 *
 * Prints one line per tensor that differs (values, how many differ, the
 * largest distance in ulps and absolutely) and a last line with the
 * verdict. Exit status: 0 within the tolerance, 1 outside it, 2 when a
 * file cannot be read or the files do not have the same tensors. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "tensor/tensor.h"

/* The float's place on the number line in ulps: the bit patterns of
 * positive floats grow with the value, those of negative ones shrink, and
 * both zeros sit at 0. */
static int64_t ordinal(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (u & 0x80000000u) ? -(int64_t)(u & 0x7fffffffu) : (int64_t)u;
}

typedef struct {
    int64_t ulps;     /* allowed distance in ulps (-1: bits only) */
    double abs;       /* allowed absolute difference (< 0: none) */
    int64_t tensors, values, differing, outside;
    int64_t max_ulps;
    double max_abs;
} tally;

/* Compares one pair of tensors, counting into t; 0, or -1 on a shape
 * mismatch. */
static int compare(const char *name, const nd_tensor *a, const nd_tensor *b, tally *t) {
    int64_t n = nd_numel(a);
    if (!nd_same_shape(a, b)) {
        printf("%s: the shapes differ\n", name);
        return -1;
    }
    const float *x = nd_data(a), *y = nd_data(b);
    int64_t differ = 0, outside = 0, max_ulps = 0;
    double max_abs = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t ux, uy;
        memcpy(&ux, &x[i], sizeof ux);
        memcpy(&uy, &y[i], sizeof uy);
        if (ux == uy) continue;
        differ++;
        int ok;
        if (isnan(x[i]) || isnan(y[i])) {
            ok = isnan(x[i]) && isnan(y[i]) && t->ulps >= 0;
            max_ulps = INT64_MAX;
            max_abs = INFINITY;
        } else {
            int64_t du = llabs(ordinal(x[i]) - ordinal(y[i]));
            double da = fabs((double)x[i] - (double)y[i]);
            if (du > max_ulps) max_ulps = du;
            if (da > max_abs) max_abs = da;
            ok = (t->ulps >= 0 && du <= t->ulps) || (t->abs >= 0 && da <= t->abs);
        }
        outside += !ok;
    }
    if (differ > 0)
        printf("%s: %" PRId64 " values, %" PRId64 " differ, at most %" PRId64
               " ulps and %.3g apart%s\n",
               name, n, differ, max_ulps, max_abs, outside ? "" : " (within the tolerance)");
    t->tensors++;
    t->values += n;
    t->differing += differ;
    t->outside += outside;
    if (max_ulps > t->max_ulps) t->max_ulps = max_ulps;
    if (max_abs > t->max_abs) t->max_abs = max_abs;
    return 0;
}

static int ends_with(const char *s, const char *end) {
    size_t n = strlen(s), m = strlen(end);
    return n >= m && strcmp(s + n - m, end) == 0;
}

static int compare_safetensors(const char *pa, const char *pb, tally *t) {
    nd_safetensors a = {0}, b = {0};
    nd_error err = {{0}};
    if (nd_safetensors_load(pa, &a, &err) != ND_OK ||
        nd_safetensors_load(pb, &b, &err) != ND_OK) {
        fprintf(stderr, "cross-compare: %s\n", err.message);
        nd_safetensors_free(&a);
        return 2;
    }
    int rc = 0;
    if (a.n != b.n || a.nmeta != b.nmeta) {
        printf("the files hold %d and %d tensors, %d and %d metadata entries\n", a.n, b.n,
               a.nmeta, b.nmeta);
        rc = 2;
    }
    for (int i = 0; rc == 0 && i < a.nmeta; i++) {
        const char *v = nd_safetensors_meta(&b, a.meta_keys[i]);
        if (!v || strcmp(v, a.meta_values[i]) != 0) {
            printf("metadata %s: \"%s\" and \"%s\"\n", a.meta_keys[i], a.meta_values[i],
                   v ? v : "(absent)");
            t->outside++;
        }
    }
    for (int i = 0; rc == 0 && i < a.n; i++) {
        const nd_tensor *tb = nd_safetensors_get(&b, a.names[i]);
        if (!tb) {
            printf("%s: not in %s\n", a.names[i], pb);
            rc = 2;
        } else if (compare(a.names[i], a.tensors[i], tb, t) != 0) {
            rc = 2;
        }
    }
    nd_safetensors_free(&a);
    nd_safetensors_free(&b);
    return rc;
}

static int compare_npy(const char *pa, const char *pb, tally *t) {
    nd_tensor *a = NULL, *b = NULL;
    nd_error err = {{0}};
    int rc = 0;
    if (nd_npy_load(pa, &a, &err) != ND_OK || nd_npy_load(pb, &b, &err) != ND_OK) {
        fprintf(stderr, "cross-compare: %s\n", err.message);
        rc = 2;
    } else if (compare("values", a, b, t) != 0) {
        rc = 2;
    }
    if (a) nd_free(a);
    if (b) nd_free(b);
    return rc;
}

static int usage(void) {
    fprintf(stderr, "usage: cross-compare [--ulps N] [--abs X] A B\n"
                    "  A, B: two .safetensors or two .npy files\n");
    return 2;
}

int main(int argc, char **argv) {
    tally t = {.ulps = -1, .abs = -1};
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        char *end;
        if (strcmp(argv[i], "--ulps") == 0) {
            long long v = strtoll(argv[i + 1], &end, 10);
            if (*end || end == argv[i + 1] || v < 0) return usage();
            t.ulps = v;
        } else if (strcmp(argv[i], "--abs") == 0) {
            double v = strtod(argv[i + 1], &end);
            if (*end || end == argv[i + 1] || !(v >= 0)) return usage();
            t.abs = v;
        } else {
            return usage();
        }
    }
    if (argc - i != 2) return usage();
    const char *pa = argv[i], *pb = argv[i + 1];
    int rc;
    if (ends_with(pa, ".npy") && ends_with(pb, ".npy")) rc = compare_npy(pa, pb, &t);
    else if (ends_with(pa, ".safetensors") && ends_with(pb, ".safetensors"))
        rc = compare_safetensors(pa, pb, &t);
    else return usage();
    if (rc != 0) return rc;
    if (t.differing == 0 && t.outside == 0) {
        printf("the same bits: %" PRId64 " values in %" PRId64 " tensors\n", t.values, t.tensors);
        return 0;
    }
    printf("%" PRId64 " of %" PRId64 " values differ, at most %" PRId64 " ulps and %.3g apart: %s\n",
           t.differing, t.values, t.max_ulps, t.max_abs,
           t.outside ? "outside the tolerance" : "within the tolerance");
    return t.outside ? 1 : 0;
}
