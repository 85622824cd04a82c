/* SGEMM: C = A B (+ C), blocked and packed around a register-tiled
 * micro-kernel, in the manner of Goto and van de Geijn ("Anatomy of
 * high-performance matrix multiplication", TOMS 2008).
 *
 *   for each chunk of C (mc rows x nc columns)          <- one thread each
 *     for each kc-slice of the inner dimension
 *       pack B[slice, chunk cols] into nr-wide panels   (kc x nc: L2/L3)
 *       pack A[chunk rows, slice] into mr-tall panels   (mc x kc: L2)
 *       for each nr panel of B                          (kc x nr: L1)
 *         for each mr panel of A
 *           micro-kernel: mr x nr tile of C += panel A x panel B
 *
 * Packing reads A and B through any strides, so transposed and strided
 * operands cost nothing extra. (Reading a row-major B in place instead
 * was slower: rows a power of two apart collide in the same L1 sets.) Each C
 * element is summed in ascending k, in kc-slices fixed by k, by one thread:
 * the bits do not depend on the thread count. */
#include <string.h>

#include "internal.h"
#include "kernels.h"

#define KC_MAX 256
#define MC_MAX 120
#define NC_MAX 512
#define MIN_CHUNKS 8               /* enough to keep every thread busy */
#define PARALLEL_WORK (1 << 18)    /* m n k below this runs on one thread */

typedef struct {
    const nd_kernels *kern;
    int64_t m, n, k;
    const float *a, *b;
    int64_t rsa, csa, rsb, csb;
    float *c;
    int64_t ldc;
    bool accumulate;
    int64_t mc, nc, kc, nb; /* block sizes; nb column blocks */
    float *scratch;
    int64_t slot; /* floats of scratch per thread */
} gemm;

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

/* A[i0 .. i0+rows, p0 .. p0+kc] as mr-row panels, [panel][p][i], zero-padded */
static void pack_a(const gemm *g, int64_t i0, int64_t rows, int64_t p0, int64_t kc,
                   float *dst) {
    const int mr = g->kern->gemm_mr;
    for (int64_t ir = 0; ir < rows; ir += mr) {
        int64_t h = rows - ir < mr ? rows - ir : mr;
        const float *src = g->a + (i0 + ir) * g->rsa + p0 * g->csa;
        for (int64_t p = 0; p < kc; p++, dst += mr) {
            int64_t i = 0;
            for (; i < h; i++) dst[i] = src[i * g->rsa + p * g->csa];
            for (; i < mr; i++) dst[i] = 0.0f;
        }
    }
}

/* B[p0 .. p0+kc, j0 .. j0+cols] as nr-column panels, [panel][p][j] */
static void pack_b(const gemm *g, int64_t j0, int64_t cols, int64_t p0, int64_t kc,
                   float *dst) {
    const int nr = g->kern->gemm_nr;
    for (int64_t jr = 0; jr < cols; jr += nr) {
        int64_t w = cols - jr < nr ? cols - jr : nr;
        const float *src = g->b + p0 * g->rsb + (j0 + jr) * g->csb;
        for (int64_t p = 0; p < kc; p++, dst += nr) {
            const float *row = src + p * g->rsb;
            if (g->csb == 1 && w == nr) {
                memcpy(dst, row, sizeof(float) * (size_t)nr);
                continue;
            }
            int64_t j = 0;
            for (; j < w; j++) dst[j] = row[j * g->csb];
            for (; j < nr; j++) dst[j] = 0.0f;
        }
    }
}

/* An edge tile: run the kernel on a full-size buffer, copy the valid part. */
static void edge_tile(const gemm *g, int64_t kc, const float *pa, const float *pb,
                      int64_t ldb, float *c, int64_t h, int64_t w, bool acc) {
    const int nr = g->kern->gemm_nr;
    float tile[16 * 16];
    for (int64_t i = 0; i < h; i++)
        for (int64_t j = 0; j < w; j++) tile[i * nr + j] = acc ? c[i * g->ldc + j] : 0.0f;
    g->kern->gemm_tile(kc, pa, pb, ldb, tile, nr, acc);
    for (int64_t i = 0; i < h; i++)
        for (int64_t j = 0; j < w; j++) c[i * g->ldc + j] = tile[i * nr + j];
}

static void run_chunk(void *ctx, int64_t chunk, int worker) {
    const gemm *g = ctx;
    const int mr = g->kern->gemm_mr, nr = g->kern->gemm_nr;
    int64_t i0 = chunk / g->nb * g->mc, j0 = chunk % g->nb * g->nc;
    int64_t rows = g->m - i0 < g->mc ? g->m - i0 : g->mc;
    int64_t cols = g->n - j0 < g->nc ? g->n - j0 : g->nc;
    float *pa = g->scratch + (int64_t)worker * g->slot;
    float *pb = pa + round_up(round_up(g->mc, mr) * g->kc, 16); /* 64-byte aligned */
    for (int64_t p0 = 0; p0 < g->k; p0 += g->kc) {
        int64_t kc = g->k - p0 < g->kc ? g->k - p0 : g->kc;
        bool acc = g->accumulate || p0 > 0;
        pack_b(g, j0, cols, p0, kc, pb);
        pack_a(g, i0, rows, p0, kc, pa);
        for (int64_t jr = 0; jr < cols; jr += nr) {
            int64_t w = cols - jr < nr ? cols - jr : nr;
            const float *b = pb + jr * kc;
            for (int64_t ir = 0; ir < rows; ir += mr) {
                int64_t h = rows - ir < mr ? rows - ir : mr;
                float *c = g->c + (i0 + ir) * g->ldc + j0 + jr;
                const float *a = pa + ir * kc;
                if (h == mr && w == nr) g->kern->gemm_tile(kc, a, b, nr, c, g->ldc, acc);
                else edge_tile(g, kc, a, b, nr, c, h, w, acc);
            }
        }
    }
}

void nd__sgemm(const nd_kernels *kern, int64_t m, int64_t n, int64_t k,
               const float *a, int64_t rsa, int64_t csa, const float *b,
               int64_t rsb, int64_t csb, float *c, int64_t ldc, bool accumulate) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        if (!accumulate)
            for (int64_t i = 0; i < m; i++) memset(c + i * ldc, 0, (size_t)n * sizeof(float));
        return;
    }
    const int mr = kern->gemm_mr, nr = kern->gemm_nr;
    gemm g = {kern, m, n, k, a, b, rsa, csa, rsb, csb, c, ldc, accumulate, 0, 0, 0, 0, NULL, 0};
    g.kc = ceil_div(k, ceil_div(k, KC_MAX));
    int64_t mb = ceil_div(m, MC_MAX);
    g.mc = round_up(ceil_div(m, mb), mr);
    mb = ceil_div(m, g.mc);
    /* How C is cut into chunks changes which thread computes an element,
     * never how: only the kc-slicing of the sum (fixed by k) matters for
     * the bits. So the cut may follow the thread count; one thread takes
     * wide chunks and packs each A block once. */
    int threads = m * n * k >= PARALLEL_WORK ? nd_get_num_threads() : 1;
    int64_t nb = ceil_div(n, NC_MAX);
    if (threads > 1)
        while (mb * nb < MIN_CHUNKS * threads / 2 && ceil_div(n, nb * 2) >= 4 * nr) nb *= 2;
    g.nc = round_up(ceil_div(n, nb), nr);
    g.nb = ceil_div(n, g.nc);
    int64_t nchunks = mb * g.nb;
    if (threads > nchunks) threads = (int)nchunks;
    g.slot = round_up(round_up(g.mc, mr) * g.kc, 16) + round_up(g.kc * round_up(g.nc, nr), 16);
    size_t bytes = (size_t)(g.slot * nd_get_num_threads()) * sizeof(float);
    g.scratch = nd__alloc(bytes, "matmul");
    if (threads > 1) {
        nd__parallel_for(nchunks, run_chunk, &g);
    } else {
        for (int64_t ch = 0; ch < nchunks; ch++) run_chunk(&g, ch, 0);
    }
    nd__release(g.scratch, bytes);
}
