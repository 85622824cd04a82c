/* How close a set of generated points is to the data: the energy distance
 * (Szekely and Rizzo) and the k-nearest-neighbour precision and recall of
 * Kynkaanniemi et al. (2019), both by brute force over all pairs; and the
 * Frechet distance of the Gaussians fitted to two sets (FID's formula),
 * with the symmetric eigen-decomposition and the matrix square root it
 * needs (cyclic Jacobi rotations, in double).
 *
 * The energy distance and the k-NN figures read the points once into
 * double arrays: the rows as they are, and a transposed copy [D, cols]
 * (cols = the count rounded up to BLOCK, the padding zeros) so that the
 * squared distances from one point to BLOCK others are D passes over
 * contiguous columns. Work is split over the thread pool by rows, in
 * chunks of a fixed number of rows, and every sum runs in a fixed order:
 * the results are the same bits for any thread count. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ddpm.h"

#define BLOCK 256 /* columns per pass: 2 KiB of squared distances */
#define ROWS 16   /* rows per chunk of the thread pool */

typedef struct {
    int64_t n, d, cols;
    double *rows; /* [n, d] */
    double *tr;   /* [d, cols], columns n..cols-1 zero */
} point_set;

static size_t set_bytes(int64_t count) { return (size_t)count * sizeof(double); }

/* The points of x [n, d] (any strides) in double. */
static void set_load(point_set *s, const nd_tensor *x, const char *op) {
    s->n = x->shape[0];
    s->d = x->shape[1];
    s->cols = (s->n + BLOCK - 1) / BLOCK * BLOCK;
    if (s->cols > (int64_t)(SIZE_MAX / sizeof(double) / 2) / s->d)
        nd_fatal(op, "%lld points of %lld coordinates are too many", (long long)s->n,
                 (long long)s->d);
    s->rows = nd_alloc(set_bytes(s->n * s->d));
    s->tr = nd_alloc(set_bytes(s->cols * s->d));
    memset(s->tr, 0, set_bytes(s->cols * s->d));
    const float *p = nd_data(x);
    for (int64_t i = 0; i < s->n; i++)
        for (int64_t k = 0; k < s->d; k++) {
            double v = p[i * x->strides[0] + k * x->strides[1]];
            s->rows[i * s->d + k] = v;
            s->tr[k * s->cols + i] = v;
        }
}

static void set_free(point_set *s) {
    nd_dealloc(s->rows, set_bytes(s->n * s->d));
    nd_dealloc(s->tr, set_bytes(s->cols * s->d));
}

/* d2[j] = |x - point j0 + j of s|^2 for j in [0, BLOCK): the sum over the
 * coordinates k = 0, 1, ... of (x_k - y_k)^2, in that order. */
static void sq_dists(const double *x, const point_set *s, int64_t j0, double *restrict d2) {
    const double *restrict c = s->tr + j0;
    for (int j = 0; j < BLOCK; j++) {
        double t = x[0] - c[j];
        d2[j] = t * t;
    }
    for (int64_t k = 1; k < s->d; k++) {
        const double *restrict ck = c + k * s->cols;
        double xk = x[k];
        for (int j = 0; j < BLOCK; j++) {
            double t = xk - ck[j];
            d2[j] += t * t;
        }
    }
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static void check_points(const nd_tensor *x, const char *what, const char *op) {
    char s[ND_SHAPE_STR_LEN];
    if (!x) nd_fatal(op, "%s is NULL", what);
    if (x->ndim != 2)
        nd_fatal(op, "%s has shape %s; want points [n, D]", what,
                 nd_shape_str(x->shape, x->ndim, s));
}

/* ---- energy distance ------------------------------------------------------ */

typedef struct {
    const point_set *x, *y;
    double *row_sums; /* [x->n]: sum_j |x_i - y_j| */
} pair_job;

static void pair_rows(void *ctx, int64_t chunk, int worker) {
    (void)worker;
    const pair_job *job = ctx;
    const point_set *x = job->x, *y = job->y;
    double d2[BLOCK];
    for (int64_t i = chunk * ROWS, end = min64(i + ROWS, x->n); i < end; i++) {
        double total = 0;
        for (int64_t j0 = 0; j0 < y->n; j0 += BLOCK) {
            sq_dists(x->rows + i * x->d, y, j0, d2);
            int64_t m = min64(BLOCK, y->n - j0), j = 0;
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (; j + 4 <= m; j += 4) {
                s0 += sqrt(d2[j]);
                s1 += sqrt(d2[j + 1]);
                s2 += sqrt(d2[j + 2]);
                s3 += sqrt(d2[j + 3]);
            }
            for (; j < m; j++) s0 += sqrt(d2[j]);
            total += (s0 + s1) + (s2 + s3);
        }
        job->row_sums[i] = total;
    }
}

/* sum over all i, j of |x_i - y_j| */
static double pair_sum(const point_set *x, const point_set *y) {
    pair_job job = {x, y, nd_alloc(set_bytes(x->n))};
    nd_parallel_for((x->n + ROWS - 1) / ROWS, pair_rows, &job);
    double total = 0;
    for (int64_t i = 0; i < x->n; i++) total += job.row_sums[i];
    nd_dealloc(job.row_sums, set_bytes(x->n));
    return total;
}

/* The V-statistic, the means over all n m, n^2 and m^2 ordered pairs,
 * each pair of a set with itself (distance 0) included:
 *   ED = 2/(n m) sum |a_i - b_j| - 1/n^2 sum |a_i - a_i'| - 1/m^2 sum |b_j - b_j'|.
 * It is the energy distance between the two empirical distributions, so
 * it is never negative (up to rounding), exactly 0 for two equal sets, and
 * defined for a single point (2 d for two points d apart); it is what
 * scipy.stats.energy_distance squares (for 1-D sets). The U-statistic,
 * which leaves out the i = i' pairs and divides by n (n - 1), is unbiased
 * but can come out negative and needs two points a set; the V-statistic's
 * bias, E|X - X'| / n + E|Y - Y'| / m, is the figure to expect from two
 * samples of one distribution.
 * Each sum is taken row by row (the rows in order) in the same way for
 * the three, so that a = b gives 2x - x - x = 0 exactly. */
double nd_energy_distance(const nd_tensor *a, const nd_tensor *b) {
    const char *op = "energy_distance";
    check_points(a, "a", op);
    check_points(b, "b", op);
    char s[ND_SHAPE_STR_LEN], t[ND_SHAPE_STR_LEN];
    if (a->shape[0] < 1 || b->shape[0] < 1 || a->shape[1] < 1 || a->shape[1] != b->shape[1])
        nd_fatal(op, "a %s and b %s need at least one point each, of the same D >= 1",
                 nd_shape_str(a->shape, 2, s), nd_shape_str(b->shape, 2, t));
    point_set pa, pb;
    set_load(&pa, a, op);
    set_load(&pb, b, op);
    double n = (double)pa.n, m = (double)pb.n;
    double ab = pair_sum(&pa, &pb) / (n * m);
    double aa = pair_sum(&pa, &pa) / (n * n);
    double bb = pair_sum(&pb, &pb) / (m * m);
    set_free(&pa);
    set_free(&pb);
    return 2.0 * ab - aa - bb;
}

/* ---- k-NN precision and recall -------------------------------------------- */

/* A max-heap of the k smallest values seen: h[0] is the k-th smallest. */
static void heap_sift_down(double *h, int64_t k, int64_t i) {
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, top = i;
        if (l < k && h[l] > h[top]) top = l;
        if (r < k && h[r] > h[top]) top = r;
        if (top == i) return;
        double v = h[i];
        h[i] = h[top];
        h[top] = v;
        i = top;
    }
}

static void heap_push(double *h, int64_t count, double v) {
    int64_t i = count;
    h[i] = v;
    while (i > 0 && h[(i - 1) / 2] < h[i]) {
        int64_t p = (i - 1) / 2;
        h[i] = h[p];
        h[p] = v;
        i = p;
    }
}

typedef struct {
    const point_set *s;
    int64_t k;
    double *heaps; /* k per worker */
    double *r2;    /* [s->cols]: the squared radii, -1 in the padding */
} radius_job;

/* r2[i] = the squared distance from point i to its k-th nearest other
 * point (others at the same place count, at distance 0) */
static void radius_rows(void *ctx, int64_t chunk, int worker) {
    const radius_job *job = ctx;
    const point_set *s = job->s;
    int64_t k = job->k;
    double *h = job->heaps + (int64_t)worker * k;
    double d2[BLOCK];
    for (int64_t i = chunk * ROWS, end = min64(i + ROWS, s->n); i < end; i++) {
        int64_t count = 0;
        for (int64_t j0 = 0; j0 < s->n; j0 += BLOCK) {
            sq_dists(s->rows + i * s->d, s, j0, d2);
            int64_t m = min64(BLOCK, s->n - j0);
            for (int64_t j = 0; j < m; j++) {
                if (j0 + j == i) continue;
                if (count < k) {
                    heap_push(h, count++, d2[j]);
                } else if (d2[j] < h[0]) {
                    h[0] = d2[j];
                    heap_sift_down(h, k, 0);
                }
            }
        }
        job->r2[i] = h[0];
    }
}

typedef struct {
    const point_set *q, *c; /* queries, ball centres */
    const double *r2;       /* [c->cols] */
    int64_t *inside;        /* per chunk */
} cover_job;

/* How many of a chunk's queries lie in some ball: |q - c_j|^2 <= r2_j. */
static void cover_rows(void *ctx, int64_t chunk, int worker) {
    (void)worker;
    const cover_job *job = ctx;
    const point_set *q = job->q, *c = job->c;
    double d2[BLOCK];
    int64_t inside = 0;
    for (int64_t i = chunk * ROWS, end = min64(i + ROWS, q->n); i < end; i++) {
        for (int64_t j0 = 0; j0 < c->n; j0 += BLOCK) {
            sq_dists(q->rows + i * q->d, c, j0, d2);
            const double *r2 = job->r2 + j0;
            int hit = 0;
            for (int j = 0; j < BLOCK; j++) hit |= d2[j] <= r2[j];
            if (hit) {
                inside++;
                break;
            }
        }
    }
    job->inside[chunk] = inside;
}

/* The share of q's points inside the union of the balls of c's points,
 * each of radius the distance to its k-th nearest neighbour in c. */
static double coverage(const point_set *q, const point_set *c, int64_t k) {
    int threads = nd_get_num_threads();
    radius_job rj = {c, k, nd_alloc(set_bytes(threads * k)), nd_alloc(set_bytes(c->cols))};
    for (int64_t j = c->n; j < c->cols; j++) rj.r2[j] = -1.0;
    nd_parallel_for((c->n + ROWS - 1) / ROWS, radius_rows, &rj);
    nd_dealloc(rj.heaps, set_bytes(threads * k));

    int64_t chunks = (q->n + ROWS - 1) / ROWS;
    cover_job cj = {q, c, rj.r2, nd_alloc((size_t)chunks * sizeof(int64_t))};
    nd_parallel_for(chunks, cover_rows, &cj);
    int64_t inside = 0;
    for (int64_t ch = 0; ch < chunks; ch++) inside += cj.inside[ch];
    nd_dealloc(cj.inside, (size_t)chunks * sizeof(int64_t));
    nd_dealloc(rj.r2, set_bytes(c->cols));
    return (double)inside / (double)q->n;
}

static const char *not_finite_name(double v) { return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

/* ND_ERR, "<name>: <what>[i, k] is nan", at the first coordinate of x that
 * is not finite */
static int check_finite(const nd_tensor *x, const char *what, const char *name, nd_error *err) {
    const float *p = nd_data(x);
    for (int64_t i = 0; i < x->shape[0]; i++)
        for (int64_t k = 0; k < x->shape[1]; k++) {
            float v = p[i * x->strides[0] + k * x->strides[1]];
            if (!isfinite(v))
                return nd_error_set(err, "%s: %s[%lld, %lld] is %s", name, what, (long long)i,
                                    (long long)k, not_finite_name(v));
        }
    return ND_OK;
}

int nd_knn_precision_recall(const nd_tensor *real, const nd_tensor *fake, int k,
                            double *precision, double *recall, nd_error *err) {
    const char *op = "knn_precision_recall";
    check_points(real, "real", op);
    check_points(fake, "fake", op);
    if (!precision || !recall) nd_fatal(op, "precision or recall is NULL");
    *precision = *recall = NAN;
    int64_t n = real->shape[0], m = fake->shape[0], d = real->shape[1];
    if (fake->shape[1] != d)
        return nd_error_set(err,
                            "knn precision/recall: real points have %lld coordinates, fake "
                            "points %lld",
                            (long long)d, (long long)fake->shape[1]);
    if (d < 1) return nd_error_set(err, "knn precision/recall: the points have no coordinates");
    if (k < 1) return nd_error_set(err, "knn precision/recall: k = %d; want k >= 1", k);
    if (k >= n || k >= m)
        return nd_error_set(err,
                            "knn precision/recall: k = %d needs more than k points in each "
                            "set; real has %lld, fake %lld",
                            k, (long long)n, (long long)m);
    const char *name = "knn precision/recall";
    if (check_finite(real, "real", name, err) || check_finite(fake, "fake", name, err))
        return ND_ERR;
    point_set pr, pf;
    set_load(&pr, real, op);
    set_load(&pf, fake, op);
    *precision = coverage(&pf, &pr, k);
    *recall = coverage(&pr, &pf, k);
    set_free(&pr);
    set_free(&pf);
    return ND_OK;
}

/* ---- symmetric eigen-decomposition and square root ------------------------ */

#define SWEEPS 100    /* Jacobi sweeps at most */
#define OFF_TOL 1e-14 /* off-diagonal norm accepted at the sweep cap, of the matrix's */
#define SYM_TOL 1e-10 /* |a_ij - a_ji| allowed, of the largest |entry| */
#define PSD_TOL 1e-10 /* negative eigenvalues taken for rounding, of the scale */

static size_t mat_bytes(int64_t n) { return (size_t)n * (size_t)n * sizeof(double); }

static void check_order(int64_t n, const char *op) {
    if (n < 1) nd_fatal(op, "n = %lld; want n >= 1", (long long)n);
    if (n > (int64_t)(SIZE_MAX / sizeof(double) / 4) / n)
        nd_fatal(op, "n = %lld is too large", (long long)n);
}

/* The Jacobi rotation of rows and columns p < q of the symmetric a [n, n]
 * (both triangles kept) that zeroes a_pq:
 *   theta = (a_qq - a_pp) / (2 a_pq),
 *   t = sign(theta) / (|theta| + sqrt(theta^2 + 1)) (the smaller angle),
 *   c = 1 / sqrt(t^2 + 1), s = t c;
 *   a_pp -= t a_pq, a_qq += t a_pq, a_pq = a_qp = 0,
 *   (a_rp, a_rq) = (c a_rp - s a_rq, s a_rp + c a_rq) for the other r;
 * and rows p and q of vt, the eigenvectors so far as rows, the same way
 * (V = V J). */
static void rotate(int64_t n, double *a, double *vt, int64_t p, int64_t q) {
    double apq = a[p * n + q], app = a[p * n + p], aqq = a[q * n + q];
    double theta = (aqq - app) / (2 * apq);
    /* beyond 1e150, theta^2 would overflow, and t = 1 / (2 theta) to double
     * precision */
    double t = fabs(theta) > 1e150
                   ? 0.5 / theta
                   : copysign(1.0, theta) / (fabs(theta) + sqrt(theta * theta + 1));
    double c = 1 / sqrt(t * t + 1), s = t * c;
    double *rp = a + p * n, *rq = a + q * n;
    for (int64_t r = 0; r < n; r++) {
        if (r == p || r == q) continue;
        double x = rp[r], y = rq[r];
        rp[r] = a[r * n + p] = c * x - s * y;
        rq[r] = a[r * n + q] = s * x + c * y;
    }
    rp[p] = app - t * apq;
    rq[q] = aqq + t * apq;
    rp[q] = rq[p] = 0;
    if (vt) {
        double *vp = vt + p * n, *vq = vt + q * n;
        for (int64_t r = 0; r < n; r++) {
            double x = vp[r], y = vq[r];
            vp[r] = c * x - s * y;
            vq[r] = s * x + c * y;
        }
    }
}

/* Cyclic Jacobi on the symmetric a [n, n], entries at most n in size:
 * sweeps over the pairs p < q row by row, rotating each a_pq that is not
 * negligible next to its diagonal, |a_pq| > 2^-52 sqrt(|a_pp|) sqrt(|a_qq|)
 * (the test of Demmel and Veselic 1992, which keeps small eigenvalues
 * accurate where the matrix determines them well), until a sweep rotates
 * nothing; the off-diagonal norm is then at most 2^-52 sqrt(n) times a's.
 * The eigenvalues are left on the diagonal. ND_ERR if SWEEPS sweeps leave
 * the off-diagonal norm above OFF_TOL of a's. */
static int jacobi(int64_t n, double *a, double *vt, const char *name, nd_error *err) {
    for (int sweep = 0; sweep < SWEEPS; sweep++) {
        int64_t rotations = 0;
        for (int64_t p = 0; p < n; p++)
            for (int64_t q = p + 1; q < n; q++) {
                double apq = fabs(a[p * n + q]);
                if (apq <= DBL_EPSILON * sqrt(fabs(a[p * n + p])) * sqrt(fabs(a[q * n + q])))
                    continue;
                rotate(n, a, vt, p, q);
                rotations++;
            }
        if (rotations == 0) return ND_OK;
    }
    double off = 0, diag = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double v = a[i * n + j] * a[i * n + j];
            if (i == j)
                diag += v;
            else
                off += v;
        }
    if (off <= OFF_TOL * OFF_TOL * (off + diag)) return ND_OK;
    return nd_error_set(err,
                        "%s: no convergence in %d Jacobi sweeps (off-diagonal norm %.3g of "
                        "the matrix's)",
                        name, SWEEPS, sqrt(off / (off + diag)));
}

static void fill_nan(double *x, int64_t count) {
    for (int64_t i = 0; i < count; i++) x[i] = NAN;
}

/* The eigenvalues w (ascending) and, if v is not NULL, the eigenvectors (as
 * the columns of v [n, n], each with its largest component positive) of
 * the symmetric part of a, (a + a^T) / 2. The matrix is scaled by a power
 * of two, so that its largest entry lies in [1/2, 1), before the rotations
 * and the eigenvalues scaled back: exact, and nothing overflows on the way.
 * ND_ERR (w and v NaN) for an entry that is not finite, a not symmetric
 * within SYM_TOL, no convergence, or an eigenvalue beyond double's range;
 * messages begin "<name>: ". a may be w or v. */
static int sym_eigen(int64_t n, const double *a, double *w, double *v, const char *name,
                     nd_error *err) {
    int rc = ND_OK;
    double amax = 0;
    for (int64_t i = 0; i < n && rc == ND_OK; i++)
        for (int64_t j = 0; j < n; j++) {
            double x = a[i * n + j];
            if (!isfinite(x)) {
                rc = nd_error_set(err, "%s: a[%lld, %lld] is %s", name, (long long)i,
                                  (long long)j, not_finite_name(x));
                break;
            }
            amax = fmax(amax, fabs(x));
        }
    for (int64_t i = 0; i < n && rc == ND_OK; i++)
        for (int64_t j = i + 1; j < n; j++) {
            double x = a[i * n + j], y = a[j * n + i];
            if (fabs(x - y) > SYM_TOL * amax) {
                rc = nd_error_set(err,
                                  "%s: a[%lld, %lld] = %.9g but a[%lld, %lld] = %.9g; not "
                                  "symmetric (allowed: %g of the largest |entry|, %.9g)",
                                  name, (long long)i, (long long)j, x, (long long)j,
                                  (long long)i, y, SYM_TOL, amax);
                break;
            }
        }
    if (rc != ND_OK) {
        fill_nan(w, n);
        if (v) fill_nan(v, n * n);
        return rc;
    }

    int e = 0;
    if (amax > 0) frexp(amax, &e);
    double *m = nd_alloc(mat_bytes(n)), *vt = v ? nd_alloc(mat_bytes(n)) : NULL;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double x = a[i * n + j], y = a[j * n + i];
            m[i * n + j] = ldexp(x == y ? x : 0.5 * x + 0.5 * y, -e);
        }
    if (vt) {
        memset(vt, 0, mat_bytes(n));
        for (int64_t i = 0; i < n; i++) vt[i * n + i] = 1;
    }
    rc = jacobi(n, m, vt, name, err);

    /* sort: order[k] = the index of the k-th smallest, equal ones in place */
    int64_t *order = nd_alloc((size_t)n * sizeof(int64_t));
    for (int64_t k = 0; k < n && rc == ND_OK; k++) {
        double x = m[k * n + k];
        int64_t i = k;
        for (; i > 0 && m[order[i - 1] * n + order[i - 1]] > x; i--) order[i] = order[i - 1];
        order[i] = k;
    }
    for (int64_t k = 0; k < n && rc == ND_OK; k++) {
        double x = ldexp(m[order[k] * n + order[k]], e);
        if (!isfinite(x))
            rc = nd_error_set(err, "%s: an eigenvalue is beyond the range of double", name);
        w[k] = x;
    }
    if (rc == ND_OK && v)
        for (int64_t k = 0; k < n; k++) {
            const double *u = vt + order[k] * n;
            int64_t big = 0;
            for (int64_t i = 1; i < n; i++)
                if (fabs(u[i]) > fabs(u[big])) big = i;
            double sign = u[big] < 0 ? -1.0 : 1.0;
            for (int64_t i = 0; i < n; i++) v[i * n + k] = sign * u[i];
        }
    if (rc != ND_OK) {
        fill_nan(w, n);
        if (v) fill_nan(v, n * n);
    }
    nd_dealloc(order, (size_t)n * sizeof(int64_t));
    nd_dealloc(m, mat_bytes(n));
    if (vt) nd_dealloc(vt, mat_bytes(n));
    return rc;
}

int nd_symmetric_eigen(int64_t n, const double *a, double *eigenvalues, double *eigenvectors,
                       nd_error *err) {
    const char *op = "symmetric_eigen";
    if (!a || !eigenvalues) nd_fatal(op, "a or eigenvalues is NULL");
    check_order(n, op);
    return sym_eigen(n, a, eigenvalues, eigenvectors, "symmetric eigen", err);
}

/* ND_ERR unless the smallest eigenvalue w0 of what is >= -PSD_TOL scale:
 * more negative than that is no rounding error. */
static int check_psd(double w0, double scale, const char *scale_name, const char *name,
                     const char *what, nd_error *err) {
    if (w0 >= -PSD_TOL * scale) return ND_OK;
    return nd_error_set(err,
                        "%s: %s has the eigenvalue %.6g, %.3g times %s (%.6g), more negative "
                        "than rounding (%g) explains: not positive semidefinite",
                        name, what, w0, w0 / scale, scale_name, scale, PSD_TOL);
}

/* root = V diag(sqrt(max(w, 0))) V^T [n, n], exactly symmetric, from the
 * eigenvectors v (columns) and the eigenvalues w: root_ij is the sum over
 * k of (v_ik sqrt(w_k)) v_jk, in order of k. */
static void psd_root(int64_t n, const double *v, const double *w, double *root) {
    double *b = nd_alloc(mat_bytes(n)), *r = nd_alloc((size_t)n * sizeof(double));
    for (int64_t k = 0; k < n; k++) r[k] = sqrt(fmax(w[k], 0));
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < n; k++) b[i * n + k] = v[i * n + k] * r[k];
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i; j < n; j++) {
            const double *bi = b + i * n, *vj = v + j * n;
            double s = 0;
            for (int64_t k = 0; k < n; k++) s += bi[k] * vj[k];
            root[i * n + j] = root[j * n + i] = s;
        }
    nd_dealloc(r, (size_t)n * sizeof(double));
    nd_dealloc(b, mat_bytes(n));
}

int nd_sqrtm_psd(int64_t n, const double *a, double *root, nd_error *err) {
    const char *op = "sqrtm_psd", *name = "sqrtm";
    if (!a || !root) nd_fatal(op, "a or root is NULL");
    check_order(n, op);
    double *w = nd_alloc((size_t)n * sizeof(double)), *v = nd_alloc(mat_bytes(n));
    int rc = sym_eigen(n, a, w, v, name, err);
    if (rc == ND_OK)
        rc = check_psd(w[0], fmax(fabs(w[0]), fabs(w[n - 1])), "its largest |eigenvalue|", name,
                       "a", err);
    if (rc == ND_OK)
        psd_root(n, v, w, root);
    else
        fill_nan(root, n * n);
    nd_dealloc(v, mat_bytes(n));
    nd_dealloc(w, (size_t)n * sizeof(double));
    return rc;
}

/* ---- Frechet distance ----------------------------------------------------- */

/* The mean mu [d] and the unbiased covariance cov [d, d] (divided by
 * n - 1) of the points x [n, d], in double: the mean, then the sum of the
 * outer products of the centred points, row by row; exactly symmetric. */
static void fit_gaussian(const nd_tensor *x, double *mu, double *cov) {
    int64_t n = x->shape[0], d = x->shape[1], s0 = x->strides[0], s1 = x->strides[1];
    const float *p = nd_data(x);
    for (int64_t k = 0; k < d; k++) mu[k] = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < d; k++) mu[k] += p[i * s0 + k * s1];
    for (int64_t k = 0; k < d; k++) mu[k] /= (double)n;
    memset(cov, 0, mat_bytes(d));
    double *c = nd_alloc((size_t)d * sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        for (int64_t k = 0; k < d; k++) c[k] = p[i * s0 + k * s1] - mu[k];
        for (int64_t j = 0; j < d; j++) {
            double cj = c[j], *row = cov + j * d;
            for (int64_t k = j; k < d; k++) row[k] += cj * c[k];
        }
    }
    nd_dealloc(c, (size_t)d * sizeof(double));
    for (int64_t j = 0; j < d; j++)
        for (int64_t k = j; k < d; k++) cov[k * d + j] = cov[j * d + k] /= (double)(n - 1);
}

/* z = x y, all [d, d] */
static void mat_mul(int64_t d, const double *x, const double *y, double *z) {
    memset(z, 0, mat_bytes(d));
    for (int64_t i = 0; i < d; i++)
        for (int64_t k = 0; k < d; k++) {
            double xik = x[i * d + k], *zi = z + i * d;
            const double *yk = y + k * d;
            for (int64_t j = 0; j < d; j++) zi[j] += xik * yk[j];
        }
}

/* The squared Frechet distance: S_a^1/2 = V diag(sqrt w) V^T from S_a's
 * eigen-decomposition, M = S_a^1/2 S_b S_a^1/2 made exactly symmetric,
 * (M + M^T) / 2, and tr M^1/2 the sum of the square roots of M's
 * eigenvalues, smallest first. S_a and M are positive semidefinite, so
 * their eigenvalues below 0 are rounding, of order 2^-52 |S_a| and
 * D 2^-52 |S_a| |S_b|: those above -PSD_TOL times |S_a|, and times
 * |S_a| tr S_b (a bound on |S_a| |S_b|), count as 0. */
int nd_frechet_distance(const nd_tensor *a, const nd_tensor *b, double *d2, nd_error *err) {
    const char *op = "frechet_distance", *name = "frechet distance";
    check_points(a, "a", op);
    check_points(b, "b", op);
    if (!d2) nd_fatal(op, "d2 is NULL");
    *d2 = NAN;
    int64_t n = a->shape[0], m = b->shape[0], d = a->shape[1];
    if (b->shape[1] != d)
        return nd_error_set(err, "%s: a's points have %lld coordinates, b's %lld", name,
                            (long long)d, (long long)b->shape[1]);
    if (d < 1) return nd_error_set(err, "%s: the points have no coordinates", name);
    if (n < 2 || m < 2)
        return nd_error_set(err, "%s: a covariance needs 2 points or more; a has %lld, b %lld",
                            name, (long long)n, (long long)m);
    if (check_finite(a, "a", name, err) || check_finite(b, "b", name, err)) return ND_ERR;
    check_order(d, op);

    size_t vec = (size_t)d * sizeof(double);
    double *mu_a = nd_alloc(vec), *mu_b = nd_alloc(vec), *w = nd_alloc(vec);
    double *s_a = nd_alloc(mat_bytes(d)), *s_b = nd_alloc(mat_bytes(d));
    double *v = nd_alloc(mat_bytes(d)), *root = nd_alloc(mat_bytes(d));
    fit_gaussian(a, mu_a, s_a);
    fit_gaussian(b, mu_b, s_b);
    double mean2 = 0, tr_a = 0, tr_b = 0;
    for (int64_t k = 0; k < d; k++) {
        double t = mu_a[k] - mu_b[k];
        mean2 += t * t;
        tr_a += s_a[k * d + k];
        tr_b += s_b[k * d + k];
    }

    int rc = sym_eigen(d, s_a, w, v, name, err);
    double top_a = rc == ND_OK ? fmax(fabs(w[0]), fabs(w[d - 1])) : 0;
    if (rc == ND_OK)
        rc = check_psd(w[0], top_a, "its largest |eigenvalue|", name, "the covariance of a", err);
    if (rc == ND_OK) {
        psd_root(d, v, w, root);
        mat_mul(d, root, s_b, v); /* S_a^1/2 S_b */
        mat_mul(d, v, root, s_a); /* M */
        for (int64_t i = 0; i < d; i++)
            for (int64_t j = i + 1; j < d; j++)
                s_a[i * d + j] = s_a[j * d + i] = 0.5 * (s_a[i * d + j] + s_a[j * d + i]);
        rc = sym_eigen(d, s_a, w, NULL, name, err);
    }
    if (rc == ND_OK)
        rc = check_psd(w[0], top_a * tr_b, "|S_a| tr S_b", name, "S_a^1/2 S_b S_a^1/2", err);
    if (rc == ND_OK) {
        double tr_sqrt = 0;
        for (int64_t k = 0; k < d; k++) tr_sqrt += sqrt(fmax(w[k], 0));
        double dist = mean2 + (tr_a + tr_b - 2 * tr_sqrt);
        *d2 = dist > 0 ? dist : 0; /* below 0 by rounding only */
    }
    nd_dealloc(mu_a, vec);
    nd_dealloc(mu_b, vec);
    nd_dealloc(w, vec);
    nd_dealloc(s_a, mat_bytes(d));
    nd_dealloc(s_b, mat_bytes(d));
    nd_dealloc(v, mat_bytes(d));
    nd_dealloc(root, mat_bytes(d));
    return rc;
}
