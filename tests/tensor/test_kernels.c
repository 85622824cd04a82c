/* The kernel sets: every SIMD kernel against the scalar twin and against a
 * naive reference, and the same bits for any thread count. */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "tensor/kernels.h"

static float *random_floats(uint64_t seed, int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = 2.0f * nd_rand_at(seed, 3, (uint64_t)i) - 1.0f;
    return p;
}

/* C = A B through strides, every product summed in double. */
static void naive_gemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa,
                       int64_t csa, const float *b, int64_t rsb, int64_t csb, double *c) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) s += (double)a[i * rsa + p * csa] * b[p * rsb + j * csb];
            c[i * n + j] = s;
        }
}

START_TEST(sgemm_matches_naive_for_all_layouts) {
    const nd_kernels *sets[3];
    int nsets = t_kernel_sets(sets);
    static const int64_t sizes[] = {1, 7, 17, 64, 131};
    for (int ks = 0; ks < nsets; ks++)
        for (int si = 0; si < 5; si++)
            for (int sj = 0; sj < 5; sj++)
                for (int sk = 0; sk < 5; sk += (si + sj) % 2 ? 2 : 1)
                    for (int ta = 0; ta < 2; ta++)
                        for (int tb = 0; tb < 2; tb++) {
                            int64_t m = sizes[si], n = sizes[sj], k = sizes[sk];
                            /* A is m x k stored row-major, or its transpose
                             * (k x m) read through swapped strides; likewise
                             * B; C has a row stride wider than n. */
                            float *a = random_floats(1 + (uint64_t)si, m * k);
                            float *b = random_floats(2 + (uint64_t)sj, k * n);
                            int64_t rsa = ta ? 1 : k, csa = ta ? m : 1;
                            int64_t rsb = tb ? 1 : n, csb = tb ? k : 1;
                            int64_t ldc = n + 3;
                            float *c = malloc((size_t)(m * ldc) * sizeof(float));
                            for (int64_t i = 0; i < m * ldc; i++) c[i] = 0.5f;
                            double *ref = malloc((size_t)(m * n) * sizeof(double));
                            naive_gemm(m, n, k, a, rsa, csa, b, rsb, csb, ref);
                            bool acc = (m + n + k) % 2 == 1;
                            nd__sgemm(sets[ks], m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, acc);
                            int bad = 0;
                            for (int64_t i = 0; i < m; i++) {
                                for (int64_t j = 0; j < n; j++) {
                                    double want = ref[i * n + j] + (acc ? 0.5 : 0.0);
                                    /* float sums of k terms of size <= 1 */
                                    bad += fabs(c[i * ldc + j] - want) > 1e-6 * (double)(k + 1);
                                }
                                for (int64_t j = n; j < ldc; j++) bad += c[i * ldc + j] != 0.5f;
                            }
                            ck_assert_msg(bad == 0, "%s: m %lld n %lld k %lld ta %d tb %d: %d wrong",
                                          sets[ks]->name, (long long)m, (long long)n,
                                          (long long)k, ta, tb, bad);
                            free(a);
                            free(b);
                            free(c);
                            free(ref);
                        }
}
END_TEST

START_TEST(sgemm_simd_against_scalar_twin) {
    const nd_kernels *sets[3];
    int nsets = t_kernel_sets(sets);
    int64_t m = 123, n = 77, k = 301;
    float *a = random_floats(5, m * k), *b = random_floats(6, k * n);
    float *c0 = malloc((size_t)(m * n) * sizeof(float)), *c1 = malloc((size_t)(m * n) * sizeof(float));
    nd__sgemm(&nd__kernels_scalar, m, n, k, a, k, 1, b, n, 1, c0, n, false);
    for (int ks = 1; ks < nsets; ks++) {
        nd__sgemm(sets[ks], m, n, k, a, k, 1, b, n, 1, c1, n, false);
        double worst = 0;
        for (int64_t i = 0; i < m * n; i++) worst = fmax(worst, fabs((double)c0[i] - c1[i]));
        /* Both round k products of size <= 1 in float; FMA and a different
         * blocking move the result by a few ulps of the partial sums. */
        ck_assert_msg(worst < 2e-5, "%s differs from scalar by %g", sets[ks]->name, worst);
    }
    free(a);
    free(b);
    free(c0);
    free(c1);
}
END_TEST

/* The orders in which a chunk packs its B panels give the same bits:
 * one at a time, two at a time (chosen by the L1d size), and for a
 * row-major B beyond L2, the next panel or group of panels a part per
 * tile (L2 set to 1 byte: single panels; to just under B: groups of 4).
 * With 1, 13 and 44 rows of C (1, 3 and 8 tiles of 6 rows in AVX2), a
 * kc-slice of 350 rows, and 22 panels (the last masked, the last group
 * short). Through row- and column-major
 * B; all agree with the naive product. */
START_TEST(sgemm_packing_orders_keep_the_bits) {
    const nd_kernels *sets[3];
    int nsets = t_kernel_sets(sets);
    const int64_t ms[] = {1, 13, 44};
    const int64_t big = (int64_t)1 << 30;
    for (int ks = 0; ks < nsets; ks++)
        for (int im = 0; im < 3; im++)
            for (int tb = 0; tb < 2; tb++) {
                int64_t m = ms[im], n = 21 * sets[ks]->gemm_nr + 3, k = 700;
                float *a = random_floats(11, m * k), *b = random_floats(12, k * n);
                int64_t rsb = tb ? 1 : n, csb = tb ? k : 1;
                int64_t under_b = k * n * (int64_t)sizeof(float) - 1;
                /* L1d and L2 bytes for each order */
                const int64_t order[4][2] = {{1, big}, {big, big}, {big, 1}, {big, under_b}};
                float *c[4];
                for (int o = 0; o < 4; o++) {
                    c[o] = malloc((size_t)(m * n) * sizeof(float));
                    nd__set_cache_bytes(1, order[o][0]);
                    nd__set_cache_bytes(2, order[o][1]);
                    nd__sgemm(sets[ks], m, n, k, a, k, 1, b, rsb, csb, c[o], n, false);
                }
                nd__set_cache_bytes(1, 0);
                nd__set_cache_bytes(2, 0);
                double *ref = malloc((size_t)(m * n) * sizeof(double));
                naive_gemm(m, n, k, a, k, 1, b, rsb, csb, ref);
                int differ = 0, off = 0;
                for (int64_t i = 0; i < m * n; i++)
                    for (int o = 0; o < 4; o++) {
                        differ += memcmp(&c[o][i], &c[0][i], sizeof(float)) != 0;
                        off += fabs(c[o][i] - ref[i]) > 1e-6 * (double)(k + 1);
                    }
                ck_assert_msg(differ == 0 && off == 0,
                              "%s m %lld tb %d: %d differ, %d off the naive product",
                              sets[ks]->name, (long long)m, tb, differ, off);
                free(a);
                free(b);
                for (int o = 0; o < 4; o++) free(c[o]);
                free(ref);
            }
}
END_TEST

/* The transposing B packer: an exact copy, from unaligned columns of odd
 * lengths, with a remainder after the blocks of eight rows. */
START_TEST(pack_bt_copies_the_panel) {
    const nd_kernels *sets[3];
    int nsets = t_kernel_sets(sets);
    static const int64_t kcs[] = {1, 7, 8, 17, 385};
    for (int ks = 0; ks < nsets; ks++) {
        if (!sets[ks]->gemm_pack_bt) continue;
        int nr = sets[ks]->gemm_nr;
        for (int i = 0; i < 5; i++) {
            int64_t kc = kcs[i], cs = kc + 3;
            float *src = random_floats(40 + (uint64_t)i, nr * cs + 1);
            float *dst = malloc((size_t)(kc * nr) * sizeof(float));
            sets[ks]->gemm_pack_bt(kc, src + 1, cs, dst);
            for (int64_t p = 0; p < kc; p++)
                for (int j = 0; j < nr; j++)
                    ck_assert_msg(dst[p * nr + j] == src[1 + j * cs + p],
                                  "%s kc %lld: (%lld, %d)", sets[ks]->name, (long long)kc,
                                  (long long)p, j);
            free(src);
            free(dst);
        }
    }
}
END_TEST

START_TEST(same_bits_for_any_thread_count) {
    nd_rng g = nd_rng_init(17, 0);
    nd_tensor *a = nd_randn(&g, ND_SHAPE(3, 70, 200));
    nd_tensor *b = nd_randn(&g, ND_SHAPE(200, 150));
    nd_tensor *bt = nd_transpose(nd_randn(&g, ND_SHAPE(150, 200)), 0, 1);
    /* k cut into several kc-slices, with one row block (B packed panel by
     * panel) and with several (B packed once per column block, shared) */
    nd_tensor *a2 = nd_randn(&g, ND_SHAPE(100, 900)), *a3 = nd_randn(&g, ND_SHAPE(250, 900));
    nd_tensor *b2 = nd_randn(&g, ND_SHAPE(900, 170));
    /* batches of six or more: a matrix per thread (the last pair large
     * enough that its SGEMMs would use the threads on their own) */
    nd_tensor *a4 = nd_randn(&g, ND_SHAPE(8, 40, 60)), *b4 = nd_randn(&g, ND_SHAPE(8, 60, 50));
    nd_tensor *a5 = nd_randn(&g, ND_SHAPE(6, 100, 120)), *b5 = nd_randn(&g, ND_SHAPE(120, 90));
    nd_tensor *ref[7] = {NULL};
    for (int threads = 1; threads <= 3; threads++) {
        nd_set_num_threads(threads);
        nd_tensor *y[7] = {nd_matmul(a, b),   nd_matmul(a, bt), nd_matmul(a2, b2),
                           nd_matmul(a3, b2), nd_matmul(a4, b4), nd_matmul(a4, nd_squeeze(nd_slice(b4, 0, 3, 4, 1), 0)),
                           nd_matmul(a5, b5)};
        for (int i = 0; i < 7; i++) {
            if (!ref[i]) ref[i] = y[i];
            else ck_assert_msg(!memcmp(nd_data(ref[i]), nd_data(y[i]),
                                       (size_t)nd_numel(y[i]) * sizeof(float)),
                               "matmul %d differs with %d threads", i, threads);
        }
    }
}
END_TEST

START_TEST(stream_copy_copies_exactly_the_range) {
    const nd_kernels *sets[3];
    int nsets = t_kernel_sets(sets);
    static const int64_t ns[] = {0, 1, 7, 17, 1023, 1030};
    for (int ks = 0; ks < nsets; ks++) {
        if (!sets[ks]->stream_copy) continue;
        for (int i = 0; i < 6; i++)
            for (int off = 0; off < 9; off++) { /* every alignment of dst */
                int64_t n = ns[i];
                float *src = random_floats(50 + (uint64_t)i, n + 1);
                float *dst = malloc((size_t)(n + 18) * sizeof(float));
                for (int64_t j = 0; j < n + 18; j++) dst[j] = -7.0f;
                sets[ks]->stream_copy(n, src + 1, dst + off);
                sets[ks]->stream_fence();
                for (int64_t j = 0; j < n + 18; j++) {
                    float want = j >= off && j < off + n ? src[1 + j - off] : -7.0f;
                    ck_assert_msg(!memcmp(&dst[j], &want, sizeof want),
                                  "%s n %lld offset %d: element %lld", sets[ks]->name,
                                  (long long)n, off, (long long)j);
                }
                free(src);
                free(dst);
            }
    }
}
END_TEST

/* The first pass's outputs are kept in ref; later passes must match them
 * bit for bit. */
static void keep_or_compare(nd_tensor **ref, nd_tensor *const *y, int nops, int pass) {
    for (int i = 0; i < nops; i++) {
        if (!ref[i]) ref[i] = y[i];
        else ck_assert_msg(!memcmp(nd_data(ref[i]), nd_data(y[i]),
                                   (size_t)nd_numel(y[i]) * sizeof(float)),
                           "op %d differs in pass %d", i, pass);
    }
}

/* Outputs written through the streaming path (forced on small tensors)
 * hold the bits of the in-place path: contiguous and broadcast operands,
 * lengths that are not a multiple of the buffer, rows cut into pieces,
 * strided inputs. */
START_TEST(streamed_outputs_keep_their_bits) {
    nd_rng g = nd_rng_init(23, 0);
    nd_tensor *a = nd_randn(&g, ND_SHAPE(3, 1023)), *b = nd_randn(&g, ND_SHAPE(3, 1023));
    nd_tensor *c = nd_randn(&g, ND_SHAPE(3, 1)), *long_row = nd_randn(&g, ND_SHAPE(140001));
    nd_tensor *at = nd_transpose(a, 0, 1);
    enum { NOPS = 11 };
    nd_tensor *ref[NOPS] = {NULL};
    for (int pass = 0; pass < 4; pass++) {
        nd_set_num_threads(pass % 2 ? 2 : 1);
        nd__set_stream_threshold(pass < 2 ? -1 : 0);
        nd_tensor *y[NOPS] = {nd_exp(a),          nd_exp(long_row),   nd_add(a, b),
                              nd_mul(a, c),       nd_mul_scalar(long_row, 3.0f),
                              nd_relu(at),        nd_where(a, b, c),  nd_sub(c, a),
                              nd_div(a, b),       nd_maximum(a, c),   nd_clamp(at, -0.5f, 0.5f)};
        keep_or_compare(ref, y, NOPS, pass);
    }
    nd__set_stream_threshold(-1);
}
END_TEST

/* Inputs prefetched ahead (forced on small tensors) leave the bits of
 * the plain path: the arithmetic-bound ops, which write in place, and
 * softmax, whose row kernel is handed the next fibre to prefetch; with
 * rows that fill a chunk, a short last row, outer axes out of order
 * (fibres stepped across two axes) and strided fibres (no hint). */
START_TEST(prefetched_inputs_keep_their_bits) {
    nd_rng g = nd_rng_init(29, 0);
    nd_tensor *rows = nd_randn(&g, ND_SHAPE(70, 1023)), *flat = nd_randn(&g, ND_SHAPE(140001));
    nd_tensor *cube = nd_permute(nd_randn(&g, ND_SHAPE(6, 7, 72)), ND_AXES(1, 0, 2));
    nd_tensor *at = nd_transpose(rows, 0, 1), *tall = nd_randn(&g, ND_SHAPE(7, 20000, 1));
    enum { NOPS = 11 };
    nd_tensor *ref[NOPS] = {NULL};
    for (int pass = 0; pass < 4; pass++) {
        nd_set_num_threads(pass % 2 ? 2 : 1);
        nd__set_stream_threshold(pass < 2 ? -1 : 0);
        nd_tensor *y[NOPS] = {nd_silu(flat),           nd_gelu(rows),
                              nd_sigmoid(at),          nd_tanh(flat),
                              nd_softmax(rows, -1),    nd_log_softmax(rows, -1),
                              nd_softmax(cube, -1),    nd_log_softmax(cube, -1),
                              nd_softmax(at, -1),      nd_softmax(rows, 0),
                              nd_softmax(tall, 1)};
        keep_or_compare(ref, y, NOPS, pass);
    }
    nd__set_stream_threshold(-1);
}
END_TEST

START_TEST(kernel_selection) {
    nd_error err;
    const char *initial = nd_kernels_name();
    ck_assert_int_eq(nd_set_kernels("scalar", &err), ND_OK);
    ck_assert_str_eq(nd_kernels_name(), "scalar");
    ck_assert_int_eq(nd_set_kernels("vax", &err), ND_ERR);
    ck_assert(strstr(err.message, "kernel set 'vax' is not available"));
    ck_assert_int_eq(nd_set_kernels(initial, &err), ND_OK);
    ck_assert_str_eq(nd_kernels_name(), initial);
}
END_TEST

TCase *tcase_kernels(void) {
    TCase *tc = nd_test_case("kernels");
    tcase_add_test(tc, sgemm_matches_naive_for_all_layouts);
    tcase_add_test(tc, sgemm_simd_against_scalar_twin);
    tcase_add_test(tc, sgemm_packing_orders_keep_the_bits);
    tcase_add_test(tc, pack_bt_copies_the_panel);
    tcase_add_test(tc, same_bits_for_any_thread_count);
    tcase_add_test(tc, stream_copy_copies_exactly_the_range);
    tcase_add_test(tc, streamed_outputs_keep_their_bits);
    tcase_add_test(tc, prefetched_inputs_keep_their_bits);
    tcase_add_test(tc, kernel_selection);
    return tc;
}
