/* Counter-based random numbers: Philox-4x32-10 (Salmon, Moraes, Dror and
 * Shaw, "Parallel Random Numbers: As Easy as 1, 2, 3", SC'11).
 *
 * A block is a pure function of (counter, key), so element i of a stream
 * is computed from i alone: the same numbers come out whether drawn one by
 * one, in bulk, or split across threads (DESIGN principle 6).
 *   key     = seed (64 bits)
 *   counter = (block index: 64 bits, stream: 32 bits, distribution: 32 bits)
 * Uniforms use one 32-bit word per element, 4 per block; normals use a
 * Box-Muller pair of words per element pair, 4 normals per block. The
 * distribution word keeps uniform and normal draws independent. */
#include <math.h>

#include "internal.h"
#include "kernels.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

void nd_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

enum { DIST_UNIFORM = 0, DIST_NORMAL = 1 };

static void block(uint64_t seed, uint32_t stream, uint32_t dist, uint64_t index,
                  uint32_t out[4]) {
    const uint32_t ctr[4] = {(uint32_t)index, (uint32_t)(index >> 32), stream, dist};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    nd_philox4x32_10(ctr, key, out);
}

/* The top 24 bits give a float in [0, 1) with every value exact. */
static float to_uniform(uint32_t w) { return (float)(w >> 8) * 0x1p-24f; }

/* Box-Muller: r = sqrt(-2 ln u1), z = (r cos 2 pi u2, r sin 2 pi u2) with
 * u1 in (0, 1] (so ln u1 is finite) and u2 in [0, 1). */
static void to_normal_pair(uint32_t w1, uint32_t w2, float *z0, float *z1) {
    double u1 = ((double)w1 + 1.0) * 0x1p-32;
    double u2 = (double)w2 * 0x1p-32;
    double r = sqrt(-2.0 * log(u1));
    double theta = 6.283185307179586476925 * u2;
    *z0 = (float)(r * cos(theta));
    *z1 = (float)(r * sin(theta));
}

float nd_rand_at(uint64_t seed, uint32_t stream, uint64_t i) {
    uint32_t w[4];
    block(seed, stream, DIST_UNIFORM, i / 4, w);
    return to_uniform(w[i % 4]);
}

float nd_randn_at(uint64_t seed, uint32_t stream, uint64_t i) {
    uint32_t w[4];
    float z[2];
    block(seed, stream, DIST_NORMAL, i / 4, w);
    int pair = (int)(i % 4) / 2;
    to_normal_pair(w[2 * pair], w[2 * pair + 1], &z[0], &z[1]);
    return z[i % 2];
}

/* Fill dst[0..n) with elements first..first+n-1, one block per 4 (whole
 * blocks of uniforms by the kernel set, where it has a loop for them). */
static void fill(uint64_t seed, uint32_t stream, uint32_t dist, uint64_t first,
                 float *dst, int64_t n) {
    const nd_kernels *k = nd__kernels();
    int64_t j = 0;
    while (j < n) {
        if (dist == DIST_UNIFORM && k->philox_uniform && (first + (uint64_t)j) % 4 == 0 &&
            n - j >= 4) {
            int64_t blocks = (n - j) / 4;
            k->philox_uniform(seed, stream, (first + (uint64_t)j) / 4, blocks, dst + j);
            j += 4 * blocks;
            continue;
        }
        uint64_t i = first + (uint64_t)j;
        uint32_t w[4];
        float v[4];
        block(seed, stream, dist, i / 4, w);
        if (dist == DIST_UNIFORM) {
            for (int q = 0; q < 4; q++) v[q] = to_uniform(w[q]);
        } else {
            to_normal_pair(w[0], w[1], &v[0], &v[1]);
            to_normal_pair(w[2], w[3], &v[2], &v[3]);
        }
        for (int q = (int)(i % 4); q < 4 && j < n; q++) dst[j++] = v[q];
    }
}

nd_rng nd_rng_init(uint64_t seed, uint32_t stream) {
    nd_rng g = {seed, stream, 0};
    return g;
}

static nd_tensor *draw(nd_rng *g, const int64_t *shape, int ndim, uint32_t dist,
                       const char *op) {
    if (!g) nd_fatal(op, "generator is NULL");
    nd_tensor *t = nd__new(shape, ndim, op);
    int64_t n = nd_numel(t);
    fill(g->seed, g->stream, dist, g->offset, nd_data(t), n);
    g->offset += (uint64_t)n;
    return t;
}

void nd_rand_row(uint64_t seed, uint32_t stream, uint64_t first, int64_t n, float *dst) {
    if (n < 0) nd_fatal("rand_row", "row length %lld is negative", (long long)n);
    if (n > 0 && !dst) nd_fatal("rand_row", "row is NULL");
    fill(seed, stream, DIST_UNIFORM, first, dst, n);
}

nd_tensor *nd_rand(nd_rng *g, const int64_t *shape, int ndim) {
    return draw(g, shape, ndim, DIST_UNIFORM, "rand");
}

nd_tensor *nd_randn(nd_rng *g, const int64_t *shape, int ndim) {
    return draw(g, shape, ndim, DIST_NORMAL, "randn");
}

/* floor(u (high - low)) + low for u ~ U[0, 1): each whole number in
 * [low, high) equally likely (to the 2^-24 grid of u). u has 24 bits and
 * the span at most 25, so their product in double is exact and its floor
 * stays below the span. */
nd_tensor *nd_randint(nd_rng *g, int64_t low, int64_t high, const int64_t *shape, int ndim) {
    const int64_t exact = (int64_t)1 << 24; /* floats hold every whole number up to it */
    if (!(low < high))
        nd_fatal("randint", "low %lld must be below high %lld", (long long)low, (long long)high);
    if (low < -exact || high > exact)
        nd_fatal("randint", "[%lld, %lld) reaches past +-2^24, beyond the whole numbers a "
                 "float holds", (long long)low, (long long)high);
    nd_tensor *t = draw(g, shape, ndim, DIST_UNIFORM, "randint");
    float *p = nd_data(t);
    double span = (double)(high - low);
    for (int64_t i = 0, n = nd_numel(t); i < n; i++)
        p[i] = (float)(low + (int64_t)floor((double)p[i] * span));
    return t;
}
