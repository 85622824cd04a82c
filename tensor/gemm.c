/* SGEMM: C = A B (+ C), blocked and packed around a register-tiled
 * micro-kernel, in the manner of Goto and van de Geijn ("Anatomy of
 * high-performance matrix multiplication", TOMS 2008).
 *
 *   for each column block of C (its packed B within PACKED_B floats)
 *     pack B[all k, block cols] into nr-wide panels, once     (L3)
 *     for each chunk: mc rows x some block columns            <- one thread each
 *       for each kc-slice of the inner dimension
 *         pack A[chunk rows, slice] into mr-tall panels       (mc x kc: L2)
 *         for each nr panel of B                              (kc x nr: L1)
 *           for each mr panel of A
 *             micro-kernel: mr x nr tile of C += panel A x panel B
 *
 * mc is at most MC_MAX, or more when k is short (mc kc <= MC_MAX KC_MAX
 * floats, the same L2 budget). With a single row block no packed B is
 * shared: each chunk packs B panels right before their tiles use them,
 * while they sit in L1, and no thread waits for a packing phase. That is
 * how two threads split a 256^3 product: a column half each. Where two
 * panels fit in L1d they are packed two at a time, so that a row-major B
 * is read 128 bytes per row, the pair of lines the L2 fetches together. A
 * row-major B larger than L2 is another matter. In the conv-shaped GEMMs
 * its rows are 16 KiB apart: each row of a panel is a line of its own
 * page, all in the same few cache sets, so the lines are neither kept nor
 * fetched ahead by the hardware, and packing a panel stalled on memory.
 * There the chunk packs B in groups of up to PIPE_GROUP panels (in AVX2,
 * rows read 256 bytes at a time), the next group while the current one
 * computes: a part after each tile, with that part's rows prefetched
 * before the tile, so that a few lines are in flight at a time and arrive
 * while the FMAs run. B in L2, as in 256^3, keeps the pack-at-once order.
 * Only the packing order changes, never the bits. A shared packed B is
 * read panel after panel from L3; the next panel's lines are prefetched
 * into L2 a part per tile.
 * Tiles cut by the edges of C run the kernels' edge variant (fewer rows
 * computed, masked columns) rather than a full tile through a copy.
 *
 * Packing reads A and B through any strides, so transposed and strided
 * operands cost nothing extra. (A row-major B is not read in place: rows a
 * power of two apart collide in the same L1 sets.) Each C element is
 * summed in ascending k, in kc-slices fixed by k, by one thread: the bits
 * do not depend on the thread count. KC_MAX, MC_MAX, the packing
 * orders and the cut into chunks were chosen by measurement; the figures
 * are in docs/PERFORMANCE.md, "GEMM". */
#include <string.h>

#include "internal.h"
#include "kernels.h"

#define KC_MAX 384
#define MC_MAX 192
#define PACKED_B (1 << 20)         /* floats of packed B: k x column block */
#define PACK_ROWS 32               /* rows of B per packing chunk */
#define PIPE_GROUP 4               /* most B panels packed together, piped */
#define PARALLEL_WORK (1 << 18)    /* m n k below this runs on one thread */

typedef struct {
    const nd_kernels *kern;
    int64_t m, n, k;
    const float *a, *b;
    int64_t rsa, csa, rsb, csb;
    float *c;
    int64_t ldc;
    bool accumulate;
    int64_t kc, mc, mb;   /* kc-slices; mb row blocks of mc rows */
    /* the column block being computed: columns j0 .. j0 + cols - 1, packed
     * into bp (each kc-slice s at bp + s kc wp, wp = cols rounded up to nr),
     * cut into nsub chunks of sub columns */
    int64_t j0, cols, wp, nsub, sub;
    float *bp;
    float *pa; /* per thread: slot floats each */
    int64_t slot;
    bool piped;    /* pack unshared B a part per tile, ahead of its use */
    int64_t group; /* unshared B panels packed together */
} gemm;

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* A[i0 .. i0+rows, p0 .. p0+kc] as mr-row panels, [panel][p][i], zero-padded */
static void pack_a(const gemm *g, int64_t i0, int64_t rows, int64_t p0, int64_t kc,
                   float *dst) {
    const int mr = g->kern->gemm_mr;
    for (int64_t ir = 0; ir < rows; ir += mr, dst += mr * kc) {
        int64_t h = min64(rows - ir, mr);
        const float *src = g->a + (i0 + ir) * g->rsa + p0 * g->csa;
        if (g->csa == 1 && h == mr && g->kern->gemm_pack_a) {
            g->kern->gemm_pack_a(kc, src, g->rsa, dst);
            continue;
        }
        if (g->csa == 1) { /* row-major A: each row read in order */
            for (int64_t i = 0; i < h; i++) {
                const float *row = src + i * g->rsa;
                for (int64_t p = 0; p < kc; p++) dst[p * mr + i] = row[p];
            }
            for (int64_t i = h; i < mr; i++)
                for (int64_t p = 0; p < kc; p++) dst[p * mr + i] = 0.0f;
            continue;
        }
        float *d = dst;
        for (int64_t p = 0; p < kc; p++, d += mr) {
            int64_t i = 0;
            for (; i < h; i++) d[i] = src[i * g->rsa + p * g->csa];
            for (; i < mr; i++) d[i] = 0.0f;
        }
    }
}

/* B[p0 .. p0+rows, j0 .. j0+cols] as nr-column panels, [panel][p][j],
 * zero-padded, panels `stride` floats apart */
static void pack_b(const gemm *g, int64_t j0, int64_t cols, int64_t p0, int64_t rows,
                   int64_t stride, float *dst) {
    const int nr = g->kern->gemm_nr;
    const float *src = g->b + p0 * g->rsb + j0 * g->csb;
    int64_t full = cols / nr * nr;
    if (g->csb == 1) { /* row-major B: rows read in order */
        for (int64_t p = 0; p < rows; p++) {
            const float *row = src + p * g->rsb;
            float *d = dst + p * nr;
            int64_t jr = 0;
            if (nr == 16)
                for (; jr < full; jr += 16, d += stride) memcpy(d, row + jr, 16 * sizeof(float));
            for (; jr < full; jr += nr, d += stride)
                memcpy(d, row + jr, (size_t)nr * sizeof(float));
            if (jr < cols)
                for (int64_t j = 0; j < nr; j++) d[j] = jr + j < cols ? row[jr + j] : 0.0f;
        }
        return;
    }
    for (int64_t jr = 0; jr < cols; jr += nr, dst += stride) {
        int64_t w = min64(cols - jr, nr);
        if (g->rsb == 1 && w == nr && g->kern->gemm_pack_bt) {
            g->kern->gemm_pack_bt(rows, src + jr * g->csb, g->csb, dst);
            continue;
        }
        if (g->rsb == 1) { /* column-major B: columns read in order */
            for (int64_t j = 0; j < w; j++) {
                const float *col = src + (jr + j) * g->csb;
                for (int64_t p = 0; p < rows; p++) dst[p * nr + j] = col[p];
            }
            for (int64_t j = w; j < nr; j++)
                for (int64_t p = 0; p < rows; p++) dst[p * nr + j] = 0.0f;
            continue;
        }
        for (int64_t p = 0; p < rows; p++) {
            const float *row = src + p * g->rsb + jr * g->csb;
            int64_t j = 0;
            for (; j < w; j++) dst[p * nr + j] = row[j * g->csb];
            for (; j < nr; j++) dst[p * nr + j] = 0.0f;
        }
    }
}

/* Starts loading into L2 the lines of a row-major B that a later pack_b
 * reads, rows `rows` from p0, columns j0 .. j0 + cols - 1 */
static void prefetch_b(const gemm *g, int64_t j0, int64_t cols, int64_t p0, int64_t rows) {
    const float *src = g->b + p0 * g->rsb + j0;
    for (int64_t p = 0; p < rows; p++, src += g->rsb)
        for (int64_t j = 0; j < cols; j += 16) ND_PREFETCH_L2(src + j);
}

/* Packing chunk: PACK_ROWS rows of one kc-slice of B, across the whole
 * column block, so that each row of a row-major B is read in one sweep. */
static void pack_b_chunk(void *ctx, int64_t chunk, int worker) {
    (void)worker;
    const gemm *g = ctx;
    int64_t per = ceil_div(g->kc, PACK_ROWS);
    int64_t p0 = chunk / per * g->kc, r0 = chunk % per * PACK_ROWS;
    int64_t kc = min64(g->k - p0, g->kc);
    if (r0 >= kc) return;
    pack_b(g, g->j0, g->cols, p0 + r0, min64(kc - r0, PACK_ROWS), g->kern->gemm_nr * kc,
           g->bp + p0 * g->wp + r0 * g->kern->gemm_nr);
}

/* An edge tile without a kernel for it: run the kernel on a full-size
 * buffer, copy the valid part. */
static void edge_tile(const gemm *g, int64_t kc, const float *pa, const float *pb,
                      float *c, int64_t h, int64_t w, bool acc) {
    const int nr = g->kern->gemm_nr;
    if (g->kern->gemm_edge) {
        g->kern->gemm_edge(kc, pa, pb, nr, c, g->ldc, acc, (int)h, (int)w);
        return;
    }
    float tile[16 * 16];
    for (int64_t i = 0; i < h; i++)
        for (int64_t j = 0; j < w; j++) tile[i * nr + j] = acc ? c[i * g->ldc + j] : 0.0f;
    g->kern->gemm_tile(kc, pa, pb, nr, tile, nr, acc);
    for (int64_t i = 0; i < h; i++)
        for (int64_t j = 0; j < w; j++) c[i * g->ldc + j] = tile[i * nr + j];
}

/* Compute chunk: rows of one row block times one sub-block of the column
 * block, every kc-slice in ascending order. B comes packed for the whole
 * column block (bp) or, when there is a single row block and nothing to
 * share, is packed by the chunk itself, `step` columns at a time: right
 * before their tiles use them, or, piped, the next group a part per tile
 * while the current one computes. */
static void run_chunk(void *ctx, int64_t chunk, int worker) {
    const gemm *g = ctx;
    const int mr = g->kern->gemm_mr, nr = g->kern->gemm_nr;
    int64_t i0 = chunk / g->nsub * g->mc, jc = chunk % g->nsub * g->sub;
    int64_t rows = min64(g->m - i0, g->mc), cols = min64(g->cols - jc, g->sub);
    float *pa = g->pa + (int64_t)worker * g->slot;
    float *groups[2]; /* packed B: the current group of panels and, piped, the next */
    groups[0] = pa + round_up(round_up(g->mc, mr) * g->kc, 16);
    groups[1] = groups[0] + g->group * round_up(g->kc * nr, 16);
    int64_t ntiles = ceil_div(rows, mr), step = g->group * nr;
    for (int64_t p0 = 0; p0 < g->k; p0 += g->kc) {
        /* a panel's lines, and how many of them to prefetch per tile */
        int64_t kc = min64(g->k - p0, g->kc), lines = ceil_div(kc * nr, 16);
        int64_t lp = ceil_div(lines, ntiles);
        bool acc = g->accumulate || p0 > 0;
        pack_a(g, i0, rows, p0, kc, pa);
        const float *bs = g->bp ? g->bp + p0 * g->wp : NULL;
        if (g->piped) pack_b(g, g->j0 + jc, min64(cols, step), p0, kc, nr * kc, groups[0]);
        for (int64_t jg = jc, cur = 0; jg < jc + cols; jg += step, cur ^= 1) {
            int64_t gcols = min64(jc + cols - jg, step);
            if (!bs && !g->piped) pack_b(g, g->j0 + jg, gcols, p0, kc, nr * kc, groups[0]);
            const float *gb = groups[g->piped ? cur : 0];
            /* piped: the rows of part t of the next group are prefetched
             * before the group's tile t and packed after it */
            int64_t jn = g->j0 + jg + step, wn = g->piped ? min64(jc + cols - jg - step, step) : 0;
            int64_t per = ceil_div(kc, ceil_div(gcols, nr) * ntiles), t = 0;
            float *next = groups[cur ^ 1];
            for (int64_t jr = jg; jr < jg + gcols; jr += nr) {
                int64_t w = min64(jc + cols - jr, nr);
                const float *b = bs ? bs + jr * kc : gb + (jr - jg) * kc;
                /* shared: part i of the next panel's lines into L2 before tile i */
                const float *bn = bs && jr + nr < jc + cols ? bs + (jr + nr) * kc : NULL;
                for (int64_t ir = 0, i = 0; ir < rows; ir += mr, i++, t++) {
                    int64_t h = min64(rows - ir, mr), r0 = t * per, rn = min64(per, kc - r0);
                    if (wn > 0 && rn > 0) prefetch_b(g, jn, wn, p0 + r0, rn);
                    if (bn)
                        for (int64_t q = i * lp; q < min64((i + 1) * lp, lines); q++)
                            ND_PREFETCH_L2(bn + q * 16);
                    float *c = g->c + (i0 + ir) * g->ldc + g->j0 + jr;
                    const float *a = pa + ir * kc;
                    if (h == mr && w == nr) g->kern->gemm_tile(kc, a, b, nr, c, g->ldc, acc);
                    else edge_tile(g, kc, a, b, c, h, w, acc);
                    if (wn > 0 && rn > 0) pack_b(g, jn, wn, p0 + r0, rn, nr * kc, next + r0 * nr);
                }
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
    gemm g = {.kern = kern, .m = m, .n = n, .k = k, .a = a, .b = b, .rsa = rsa,
              .csa = csa, .rsb = rsb, .csb = csb, .c = c, .ldc = ldc,
              .accumulate = accumulate};
    g.kc = ceil_div(k, ceil_div(k, KC_MAX));
    /* How C is cut into chunks changes which thread computes an element,
     * never how: only the kc-slicing of the sum (fixed by k) matters for
     * the bits. So the cut may follow the thread count; one thread takes
     * whole column blocks and packs each A block once per column block,
     * several cut narrow C (few column chunks) into more row blocks. */
    int threads = m * n * k >= PARALLEL_WORK && !nd__in_parallel() ? nd_get_num_threads() : 1;
    /* An A block of mc x kc stays within MC_MAX x KC_MAX floats (L2) */
    int64_t mc_max = MC_MAX * KC_MAX / g.kc > MC_MAX ? MC_MAX * KC_MAX / g.kc : MC_MAX;
    g.mb = ceil_div(m, mc_max);
    if (threads > 1) {
        int64_t col_chunks = n / (4 * nr) > 1 ? n / (4 * nr) : 1;
        int64_t want = ceil_div(threads, col_chunks);
        int64_t most = ceil_div(m, 4 * mr); /* row blocks of at least 4 panels */
        if (g.mb < want && g.mb < most) g.mb = min64(want, most);
        /* several row blocks: as many per thread, while each keeps 4 panels */
        if (g.mb > 1 && g.mb % threads && round_up(g.mb, threads) <= most)
            g.mb = round_up(g.mb, threads);
    }
    g.mc = round_up(ceil_div(m, g.mb), mr);
    g.mb = ceil_div(m, g.mc);
    /* Column blocks: with several row blocks, B is packed once per block,
     * all of k, and shared by every row block. */
    bool shared = g.mb > 1;
    /* Unshared B panels: piped (row-major B beyond L2) in groups of up to
     * PIPE_GROUP, two groups within half of L2; otherwise in pairs where
     * two fit in L1d, else one at a time. */
    int64_t panel_bytes = g.kc * nr * (int64_t)sizeof(float);
    g.piped = !shared && csb == 1 && k * n * (int64_t)sizeof(float) > nd__cache_bytes(2);
    g.group = 1;
    if (g.piped)
        while (g.group < PIPE_GROUP && 2 * (2 * g.group) * panel_bytes <= nd__cache_bytes(2) / 2)
            g.group *= 2;
    else if (2 * panel_bytes <= nd__cache_bytes(1))
        g.group = 2;
    int64_t nblocks = shared ? ceil_div(round_up(n, nr) * k, PACKED_B) : 1;
    int64_t width = round_up(ceil_div(n, nblocks), nr);
    nblocks = ceil_div(n, width);
    g.slot = round_up(round_up(g.mc, mr) * g.kc, 16) + 2 * g.group * round_up(g.kc * nr, 16);
    int64_t bp_floats = shared ? round_up(k * width, 16) : 0;
    size_t bytes = (size_t)(bp_floats + g.slot * threads) * sizeof(float); /* a slot per worker */
    float *scratch = nd__alloc(bytes, "matmul");
    g.bp = shared ? scratch : NULL;
    g.pa = scratch + bp_floats;
    for (int64_t jb = 0; jb < nblocks; jb++) {
        g.j0 = jb * width;
        g.cols = min64(n - g.j0, width);
        g.wp = round_up(g.cols, nr);
        /* At least a chunk per thread, and up to two while each keeps 16
         * panels of B: every chunk packs its A rows again, which costs
         * little against that much work, and more chunks even out a
         * thread that starts late. */
        g.nsub = 1;
        if (threads > 1)
            while (ceil_div(g.cols, g.nsub * 2) >= 4 * nr &&
                   (g.mb * g.nsub < threads ||
                    (g.mb * g.nsub < 2 * threads && ceil_div(g.cols, g.nsub * 2) >= 16 * nr)))
                g.nsub *= 2;
        g.sub = round_up(ceil_div(g.cols, g.nsub), nr);
        g.nsub = ceil_div(g.cols, g.sub);
        int64_t npack = ceil_div(k, g.kc) * ceil_div(g.kc, PACK_ROWS), nchunks = g.mb * g.nsub;
        if (!shared) npack = 0;
        if (threads > 1) {
            if (npack > 0) nd__parallel_for(npack, pack_b_chunk, &g);
            nd__parallel_for(nchunks, run_chunk, &g);
        } else {
            for (int64_t ch = 0; ch < npack; ch++) pack_b_chunk(&g, ch, 0);
            for (int64_t ch = 0; ch < nchunks; ch++) run_chunk(&g, ch, 0);
        }
    }
    nd__release(scratch, bytes);
}
