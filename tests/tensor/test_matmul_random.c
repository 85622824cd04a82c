/* Matrix products on random shapes: nd_matmul against a triple loop in
 * double, with every kernel set, 1 to 3 threads, and the same bits for
 * two thread counts. Batches of 0 to 3 axes of 1 to 4 that broadcast
 * (size 1 against any), 1-d operands on either side, operands stored
 * transposed, with their axes in any order, sliced with steps, or
 * broadcast along a batch axis (stride 0); rows, columns and the inner
 * size in 1 .. 130, near the micro-kernels' tile sides more often than
 * not, and in some cases an inner size next to a multiple of KC_MAX (384:
 * several kc-slices), rows next to a multiple of the row block, or cache
 * sizes that make the SGEMM pack B a panel at a time or piped ahead
 * (tensor/gemm.c).
 *
 * Case i draws everything from the seed base + i, and a failure prints
 * that seed, so ND_MATMUL_SOAK_SEED=seed ND_MATMUL_SOAK=1 runs it alone.
 * ND_MATMUL_SOAK=n runs n cases instead of DEFAULT_CASES, and
 * ND_MATMUL_SOAK_SEED sets the base (default BASE_SEED). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define DEFAULT_CASES 600
#define BASE_SEED 2000
#define CASES_PER_TEST 50 /* a test (a process, a timeout) per this many */

/* tensor/gemm.c */
#define KC_MAX 384
#define MC_MAX 192

/* ---- drawing shapes ---------------------------------------------------------- */


/* Half the time a size next to a multiple of a tile side of some kernel
 * set (rows: scalar 4, AVX2 6, NEON 8; columns: 8, 16, 12; B panels
 * packed two and four at a time: 32, 64; the inner loops unrolled by 8):
 * just full, one short or one over. Else any in [lo, hi]. */
static int64_t draw_size(uint64_t *s, int64_t lo, int64_t hi) {
    static const int64_t sides[] = {4, 6, 8, 12, 16, 24, 32, 48, 64};
    int64_t side = sides[t_draw(s, 0, 8)];
    if (t_draw(s, 0, 1) || side > hi + 1) return t_draw(s, lo, hi);
    int64_t v = side * t_draw(s, 1, t_max(1, (hi + 1) / side)) + t_draw(s, -1, 1);
    return t_min(t_max(v, lo), hi);
}

/* How an operand is stored: its logical axis perm[i] is storage axis i;
 * along logical axis d it takes every step[d]-th element from start[d];
 * the batch axes in `expanded` are one element broadcast (stride 0). */
typedef struct {
    int ndim;
    int64_t shape[5]; /* logical */
    int perm[5];
    int64_t step[5], start[5];
    unsigned expanded;
    const char *name; /* "dense", "transposed", ... (of the order) */
} layout;

enum { NO_CACHE, L1_ONE, L2_ONE, L2_UNDER_B, CACHES };
static const char *const cache_names[CACHES] = {
    "", ", L1d of 1 byte (B panels one at a time)", ", L2 of 1 byte (unshared B piped)",
    ", L2 just under B (unshared B piped in groups)"};

typedef struct {
    uint64_t seed;
    const char *family;
    int nb;            /* batch axes of the result */
    int64_t batch[3];  /* and their sizes */
    int64_t n, k, m;   /* (n, k) @ (k, m) */
    layout a, b;
    int threads, other; /* two thread counts, which must give the same bits */
    int cache;
} rcase;

/* The batch shape of an operand with `na` of the result's nb axes (the
 * last ones): each the result's size, or 1 (a third of the time). At
 * least one operand has each size > 1. */
static void draw_batches(uint64_t *s, rcase *k, int64_t *ab, int *na, int64_t *bb, int *nbb) {
    *na = (int)t_draw(s, 0, k->nb);
    *nbb = (int)t_draw(s, 0, k->nb);
    if (t_draw(s, 0, 1)) *na = k->nb;
    else *nbb = k->nb;
    for (int i = 0; i < k->nb; i++) {
        int ia = i - (k->nb - *na), ib = i - (k->nb - *nbb);
        bool a_one = ia >= 0 && t_draw(s, 0, 2) == 0, b_one = ib >= 0 && t_draw(s, 0, 2) == 0;
        if (a_one && b_one) b_one = false;
        if (ia < 0 && b_one) b_one = false; /* a has no such axis: b sets the size */
        if (ib < 0 && a_one) a_one = false;
        if (ia >= 0) ab[ia] = a_one ? 1 : k->batch[i];
        if (ib >= 0) bb[ib] = b_one ? 1 : k->batch[i];
    }
}

/* The storage order, slicing and broadcasting of an operand of logical
 * shape shape[0 .. nd), whose first nbatch axes are batch axes. */
static void draw_layout(uint64_t *s, layout *l, const int64_t *shape, int nd, int nbatch) {
    l->ndim = nd;
    memcpy(l->shape, shape, (size_t)nd * sizeof *shape);
    for (int i = 0; i < nd; i++) {
        l->perm[i] = i;
        l->step[i] = 1;
        l->start[i] = 0;
    }
    l->expanded = 0;
    l->name = "dense";
    int order = t_draw(s, 0, 1) ? 0 : (int)t_draw(s, 1, 3);
    if (order == 1 && nd >= 2) { /* the matrix stored transposed */
        l->perm[nd - 2] = nd - 1;
        l->perm[nd - 1] = nd - 2;
        l->name = "transposed";
    } else if (order == 2 && nbatch >= 2) { /* the batch axes in another order */
        for (int i = nbatch - 1; i > 0; i--) {
            int j = (int)t_draw(s, 0, i), t = l->perm[i];
            l->perm[i] = l->perm[j];
            l->perm[j] = t;
        }
        l->name = "batch axes permuted";
    } else if (order == 3 && nd >= 2) { /* any order */
        for (int i = nd - 1; i > 0; i--) {
            int j = (int)t_draw(s, 0, i), t = l->perm[i];
            l->perm[i] = l->perm[j];
            l->perm[j] = t;
        }
        l->name = "axes permuted";
    }
    bool moved = false;
    for (int i = 0; i < nd; i++) moved = moved || l->perm[i] != i;
    if (!moved) l->name = "dense";
    if (t_draw(s, 0, 3) == 0) /* sliced: steps of 1 to 3 from 0 or 1 on each axis */
        for (int i = 0; i < nd; i++) {
            l->step[i] = t_draw(s, 1, 3);
            l->start[i] = t_draw(s, 0, 1);
        }
    if (t_draw(s, 0, 5) == 0) /* some batch axes broadcast from one element */
        for (int i = 0; i < nbatch; i++)
            if (shape[i] > 1 && t_draw(s, 0, 1)) l->expanded |= 1u << i;
}

/* n, k and m in a random order, each within what the terms left allow:
 * (batch) n k m stays near `budget`. */
static void draw_nkm(uint64_t *s, rcase *k, int64_t budget, int64_t most) {
    int64_t *dims[3] = {&k->n, &k->k, &k->m};
    int first = (int)t_draw(s, 0, 2), flip = (int)t_draw(s, 0, 1);
    int64_t terms = 1;
    for (int i = 0; i < k->nb; i++) terms *= k->batch[i];
    for (int d = 0; d < 3; d++) *dims[d] = 1;
    for (int step = 0; step < 3; step++) {
        int d = step == 0 ? first : (first + (flip ? 3 - step : step)) % 3;
        *dims[d] = draw_size(s, 1, t_min(most, t_max(1, budget / terms)));
        terms *= *dims[d];
    }
}

static rcase draw_case(uint64_t seed) {
    rcase k = {.seed = seed};
    uint64_t s = seed;
    /* most cases small, some past the SGEMM's threshold for threads (2^18) */
    int64_t budget = (int64_t)1 << t_draw(&s, 8, 21);
    k.nb = (int)t_draw(&s, 0, 3);
    for (int i = 0; i < k.nb; i++) k.batch[i] = t_draw(&s, 1, 4);
    int a_vec = 0, b_vec = 0; /* 1-d operands */
    switch (t_draw(&s, 0, 19)) {
    case 0: case 1: case 2: /* 1-d operands */
        k.family = "1-d operand";
        a_vec = t_draw(&s, 0, 2) != 1;
        b_vec = !a_vec || t_draw(&s, 0, 1);
        draw_nkm(&s, &k, budget, 130);
        break;
    case 3: case 4: { /* several kc-slices */
        k.family = "kc-slices";
        k.k = KC_MAX * t_draw(&s, 1, 2) + t_draw(&s, -1, 1);
        k.nb = (int)t_draw(&s, 0, 1);
        for (int i = 0; i < k.nb; i++) k.batch[i] = t_draw(&s, 1, 2);
        int64_t room = t_max(1, budget / k.k);
        k.n = draw_size(&s, 1, t_min(130, room));
        k.m = draw_size(&s, 1, t_min(130, t_max(1, room / k.n)));
        break;
    }
    case 5: case 6: { /* rows next to a multiple of the row block */
        k.family = "row blocks";
        k.nb = 0;
        k.k = draw_size(&s, 1, 130);
        int64_t kc = (k.k + (k.k + KC_MAX - 1) / KC_MAX - 1) / ((k.k + KC_MAX - 1) / KC_MAX);
        int64_t mc = t_max(MC_MAX, MC_MAX * KC_MAX / kc);
        k.n = t_max(1, mc * t_draw(&s, 1, 2) + t_draw(&s, -1, 1));
        k.m = draw_size(&s, 1, t_max(1, t_min(130, ((int64_t)1 << 21) / (k.n * k.k))));
        break;
    }
    case 7: /* a size of 0 somewhere */
        k.family = "empty";
        draw_nkm(&s, &k, budget, 130);
        switch (t_draw(&s, 0, k.nb > 0 ? 3 : 2)) {
        case 0: k.n = 0; break;
        case 1: k.k = 0; break;
        case 2: k.m = 0; break;
        default: k.batch[t_draw(&s, 0, k.nb - 1)] = 0;
        }
        break;
    case 8: case 9: case 10: /* the packing orders of B */
        k.family = "cache sizes";
        k.cache = (int)t_draw(&s, 1, CACHES - 1);
        draw_nkm(&s, &k, budget, 130);
        break;
    default:
        k.family = "any";
        draw_nkm(&s, &k, budget, 130);
    }
    /* the operands' shapes and layouts */
    int64_t ab[3], bb[3], shape[5];
    int na = 0, nbb = 0;
    draw_batches(&s, &k, ab, &na, bb, &nbb);
    if (a_vec) {
        na = 0;
        shape[0] = k.k;
        draw_layout(&s, &k.a, shape, 1, 0);
    } else {
        memcpy(shape, ab, (size_t)na * sizeof *ab);
        shape[na] = k.n;
        shape[na + 1] = k.k;
        draw_layout(&s, &k.a, shape, na + 2, na);
    }
    if (b_vec) {
        nbb = 0;
        shape[0] = k.k;
        draw_layout(&s, &k.b, shape, 1, 0);
    } else {
        memcpy(shape, bb, (size_t)nbb * sizeof *bb);
        shape[nbb] = k.k;
        shape[nbb + 1] = k.m;
        draw_layout(&s, &k.b, shape, nbb + 2, nbb);
    }
    if (a_vec) k.n = 1;
    if (b_vec) k.m = 1;
    /* a 1-d operand has no batch axes: the other one's make the result's */
    if (a_vec || b_vec) {
        const layout *o = a_vec ? &k.b : &k.a;
        k.nb = a_vec && b_vec ? 0 : o->ndim - 2;
        for (int i = 0; i < k.nb; i++) k.batch[i] = o->shape[i];
    }
    k.threads = (int)t_draw(&s, 1, 3);
    k.other = (int)(k.threads % 3 + 1);
    return k;
}

static int layout_text(const layout *l, char *buf, size_t size) {
    int used = snprintf(buf, size, "[");
    for (int i = 0; i < l->ndim; i++)
        used += snprintf(buf + used, size - (size_t)used, "%s%lld", i ? "," : "",
                         (long long)l->shape[i]);
    used += snprintf(buf + used, size - (size_t)used, "] %s", l->name);
    if (strcmp(l->name, "dense")) {
        used += snprintf(buf + used, size - (size_t)used, " (stored as axes");
        for (int i = 0; i < l->ndim; i++)
            used += snprintf(buf + used, size - (size_t)used, "%s%d", i ? "," : " ", l->perm[i]);
        used += snprintf(buf + used, size - (size_t)used, ")");
    }
    bool sliced = false;
    for (int i = 0; i < l->ndim; i++) sliced = sliced || l->step[i] != 1 || l->start[i] != 0;
    if (sliced) {
        used += snprintf(buf + used, size - (size_t)used, ", sliced");
        for (int i = 0; i < l->ndim; i++)
            used += snprintf(buf + used, size - (size_t)used, "%s%lld::%lld", i ? "," : " ",
                             (long long)l->start[i], (long long)l->step[i]);
    }
    if (l->expanded) {
        used += snprintf(buf + used, size - (size_t)used, ", broadcast along axes");
        for (int i = 0; i < l->ndim; i++)
            if (l->expanded & 1u << i) used += snprintf(buf + used, size - (size_t)used, " %d", i);
    }
    return used;
}

static void describe(const rcase *k, char *buf, size_t size) {
    char a[200], b[200];
    layout_text(&k->a, a, sizeof a);
    layout_text(&k->b, b, sizeof b);
    snprintf(buf, size, "seed %llu (%s): a %s, b %s; n %lld k %lld m %lld, %d and %d threads%s",
             (unsigned long long)k->seed, k->family, a, b, (long long)k->n, (long long)k->k,
             (long long)k->m, k->threads, k->other, cache_names[k->cache]);
}

/* ---- inputs ---------------------------------------------------------------- */

/* Element i (row-major over t's shape) of a strided tensor's storage. */
static int64_t offset_of(const nd_tensor *t, int64_t i) {
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += i % t->shape[d] * t->strides[d];
        i /= t->shape[d];
    }
    return off;
}

/* An operand in its layout, its storage NaN outside the view (reading past
 * it shows in the results), its values uniform in [-1, 1) with 24 bits,
 * exact in float; and those values in row-major order in *vals (which
 * repeat along broadcast axes). */
static nd_tensor *make_operand(const layout *l, uint64_t seed, double **vals) {
    int nd = l->ndim, inv[5] = {0};
    int64_t st[5] = {0};
    for (int i = 0; i < nd; i++) {
        int d = l->perm[i];
        inv[d] = i;
        bool one = l->expanded & 1u << d;
        st[i] = one ? 1 : l->start[d] + t_max(l->shape[d] - 1, 0) * l->step[d] + 1;
    }
    nd_tensor *t = nd_permute(nd_full(st, nd, NAN), inv, nd);
    for (int d = 0; d < nd; d++)
        if (!(l->expanded & 1u << d)) {
            int64_t stop = l->shape[d] ? l->start[d] + (l->shape[d] - 1) * l->step[d] + 1
                                       : l->start[d];
            t = nd_slice(t, d, l->start[d], stop, l->step[d]);
        }
    if (l->expanded) t = nd_expand(t, l->shape, nd);
    for (int d = 0; d < nd; d++) ck_assert_int_eq(t->shape[d], l->shape[d]);
    int64_t count = nd_numel(t);
    float *p = nd_data(t);
    uint64_t s = seed;
    for (int64_t i = 0; i < count; i++)
        p[offset_of(t, i)] = (float)((double)(t_next_u64(&s) >> 40) * 0x1p-23 - 1.0);
    *vals = malloc((size_t)t_max(count, 1) * sizeof(double));
    ck_assert_ptr_nonnull(*vals);
    for (int64_t i = 0; i < count; i++) (*vals)[i] = p[offset_of(t, i)];
    return t;
}

/* ---- the reference ----------------------------------------------------------- */

/* The result's shape: the batch, then n if a is not 1-d, then m if b is
 * not. Returns its ndim. */
static int result_shape(const rcase *k, int64_t *shape) {
    int nd = 0;
    for (int i = 0; i < k->nb; i++) shape[nd++] = k->batch[i];
    if (k->a.ndim > 1) shape[nd++] = k->n;
    if (k->b.ndim > 1) shape[nd++] = k->m;
    return nd;
}

/* Row-major offset, in an operand's values, of its matrix for batch index
 * bi of the result (its own batch axes aligned right, size 1 broadcast). */
static int64_t matrix_offset(const rcase *k, const layout *l, const int64_t *bi) {
    int nbo = l->ndim > 2 ? l->ndim - 2 : 0;
    int64_t off = 0;
    for (int j = 0; j < nbo; j++) {
        int64_t i = l->shape[j] == 1 ? 0 : bi[k->nb - nbo + j];
        off = off * l->shape[j] + i;
    }
    return off * (l->ndim == 1 ? l->shape[0] : l->shape[l->ndim - 2] * l->shape[l->ndim - 1]);
}

/* y and the sum of |terms| of each of its elements, row-major */
static void compute_reference(const rcase *k, const double *av, const double *bv, double *y,
                              double *ys) {
    int64_t count = 1, bi[3];
    for (int i = 0; i < k->nb; i++) count *= k->batch[i];
    for (int64_t q = 0; q < count; q++) {
        t_unravel(q, k->batch, k->nb, bi);
        const double *a = av + matrix_offset(k, &k->a, bi), *b = bv + matrix_offset(k, &k->b, bi);
        double *yq = y + q * k->n * k->m, *sq = ys + q * k->n * k->m;
        for (int64_t i = 0; i < k->n * k->m; i++) yq[i] = sq[i] = 0;
        /* a[i, p] at a + i k + p (a row), b[p, j] at b + p m + j (a column
         * when m is 1) */
        for (int64_t i = 0; i < k->n; i++)
            for (int64_t p = 0; p < k->k; p++) {
                double x = a[i * k->k + p];
                const double *br = b + p * k->m;
                for (int64_t j = 0; j < k->m; j++) {
                    double t = x * br[j];
                    yq[i * k->m + j] += t;
                    sq[i * k->m + j] += fabs(t);
                }
            }
    }
}

/* ---- checking ------------------------------------------------------------------ */

/* Within 1e-5 (84 float ulps of 1) of the sum of |terms|: the library sums
 * in kc-slices of at most 384 terms, whose rounding errors mostly cancel
 * (at most 4e-7 seen in a soak of 10000 cases). An element without terms
 * (k = 0) must be exactly 0. */
#define REL_TOL 1e-5
#define ABS_TOL 1e-30

static double worst; /* |error| / sum of |terms|, for ND_TEST_VERBOSE */

static void expect_close(const nd_tensor *got, const int64_t *shape, int nd, const double *want,
                         const double *scale) {
    bool shaped = got->ndim == nd;
    for (int d = 0; d < nd && shaped; d++) shaped = got->shape[d] == shape[d];
    if (!shaped || !nd_is_contiguous(got))
        ck_abort_msg("%s: the result has the wrong shape or layout", t_running);
    const float *g = nd_data(got);
    int64_t bad = 0, first = 0, n = nd_numel(got);
    for (int64_t i = 0; i < n; i++) {
        if (scale[i] > 0) worst = fmax(worst, fabs(g[i] - want[i]) / scale[i]);
        if (!(fabs(g[i] - want[i]) <= REL_TOL * scale[i] + ABS_TOL) && bad++ == 0) first = i;
    }
    if (bad) {
        int64_t idx[ND_MAX_DIMS];
        t_unravel(first, shape, nd, idx);
        char at[96] = "";
        for (int d = 0, used = 0; d < nd; d++)
            used += snprintf(at + used, sizeof at - (size_t)used, "%s%lld", d ? "," : "",
                             (long long)idx[d]);
        ck_abort_msg("%s: y[%s] is %.9g, expected %.9g (sum of |terms| %.6g; %lld of %lld wrong)",
                     t_running, at, (double)g[first], want[first], scale[first], (long long)bad,
                     (long long)n);
    }
}

static void set_cache(const rcase *k) {
    int64_t b_bytes = k->k * k->m * (int64_t)sizeof(float);
    switch (k->cache) {
    case L1_ONE: nd__set_cache_bytes(1, 1); break;
    case L2_ONE: nd__set_cache_bytes(2, 1); break;
    case L2_UNDER_B: nd__set_cache_bytes(2, t_max(1, b_bytes - 1)); break;
    default: break;
    }
}

static void check_case(uint64_t seed, const nd_kernels *const *sets, int nsets) {
    rcase k = draw_case(seed);
    char desc[600];
    describe(&k, desc, sizeof desc);
    snprintf(t_running, sizeof t_running, "%s", desc);
    if (getenv("ND_TEST_VERBOSE") && atoi(getenv("ND_TEST_VERBOSE")) > 1) printf("%s\n", desc);
    nd_scope *scope = nd_scope_begin();
    double *av, *bv;
    nd_tensor *a = make_operand(&k.a, seed ^ 0xa5a5a5a5a5a5a5a5u, &av);
    nd_tensor *b = make_operand(&k.b, seed ^ 0x5a5a5a5a5a5a5a5au, &bv);
    int64_t shape[5];
    int nd = result_shape(&k, shape);
    int64_t count = t_count(shape, nd);
    double *y = malloc((size_t)t_max(count, 1) * sizeof(double));
    double *ys = malloc((size_t)t_max(count, 1) * sizeof(double));
    ck_assert(y && ys);
    compute_reference(&k, av, bv, y, ys);
    set_cache(&k);
    nd_error err;
    for (int i = 0; i < nsets; i++) {
        ck_assert_int_eq(nd_set_kernels(sets[i]->name, &err), ND_OK);
        nd_scope *s = nd_scope_begin();
        nd_set_num_threads(k.threads);
        snprintf(t_running, sizeof t_running, "%s, kernels %s, %d thread%s", desc, sets[i]->name,
                 k.threads, k.threads == 1 ? "" : "s");
        nd_tensor *got = nd_matmul(a, b);
        expect_close(got, shape, nd, y, ys);
        nd_set_num_threads(k.other);
        snprintf(t_running, sizeof t_running, "%s, kernels %s, %d thread%s", desc, sets[i]->name,
                 k.other, k.other == 1 ? "" : "s");
        nd_tensor *again = nd_matmul(a, b);
        if (memcmp(nd_data(got), nd_data(again), (size_t)count * sizeof(float))) {
            int64_t at = 0;
            while (!memcmp(nd_data(got) + at, nd_data(again) + at, sizeof(float))) at++;
            ck_abort_msg("%s: element %lld is %.9g with %d threads, %.9g with %d", t_running,
                         (long long)at, (double)nd_data(got)[at], k.threads,
                         (double)nd_data(again)[at], k.other);
        }
        nd_scope_end(s);
    }
    nd__set_cache_bytes(1, 0);
    nd__set_cache_bytes(2, 0);
    nd_scope_end(scope);
    free(av);
    free(bv);
    free(y);
    free(ys);
}

/* ---- the test ------------------------------------------------------------------ */

static void finish(int test) {
    if (getenv("ND_TEST_VERBOSE"))
        printf("matmul_random %d: off by at most %.3g of the sum of |terms|\n", test, worst);
}

static const t_random run = {"matmul_random", "ND_MATMUL_SOAK", DEFAULT_CASES, CASES_PER_TEST,
                              BASE_SEED, check_case, finish};

START_TEST(random_shapes_match_naive_reference) { t_random_cases(&run, _i); }
END_TEST

TCase *tcase_matmul_random(void) {
    return t_random_tcase(&run, random_shapes_match_naive_reference);
}
