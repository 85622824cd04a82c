/* Lifetimes: scopes, keep/persist, storage shared by views; the
 * allocator's live and peak counters, and its pool of reusable blocks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* A tensor of n floats costs its data plus bookkeeping; the data part is
 * what these tests measure. */
START_TEST(scope_frees_everything) {
    size_t before = nd_mem_live();
    nd_scope *s = nd_scope_begin();
    nd_tensor *a = nd_ones(ND_SHAPE(1000));
    nd_tensor *b = nd_add(a, a);
    nd_tensor *v = nd_transpose(nd_reshape(b, ND_SHAPE(10, 100)), 0, 1);
    (void)v;
    ck_assert_uint_ge(nd_mem_live(), before + 2 * 1000 * sizeof(float));
    nd_scope_end(s);
    ck_assert_uint_eq(nd_mem_live(), before);
}
END_TEST

START_TEST(keep_and_persist) {
    size_t before = nd_mem_live();
    nd_scope *outer = nd_scope_begin();
    nd_scope *inner = nd_scope_begin();
    nd_tensor *kept = nd_keep(nd_full(ND_SHAPE(4), 2.5f));
    nd_tensor *saved = nd_persist(nd_full(ND_SHAPE(4), 3.5f));
    nd_full(ND_SHAPE(4), 9.0f); /* dropped with inner */
    nd_scope_end(inner);
    /* kept now belongs to outer, saved to no scope: both readable. */
    ck_assert(nd_data(kept)[3] == 2.5f);
    ck_assert(nd_data(saved)[0] == 3.5f);
    size_t with_kept = nd_mem_live();
    nd_scope_end(outer);
    ck_assert(nd_data(saved)[2] == 3.5f);
    ck_assert_uint_lt(nd_mem_live(), with_kept);
    nd_free(saved);
    ck_assert_uint_eq(nd_mem_live(), before);
}
END_TEST

START_TEST(views_keep_storage_alive) {
    nd_scope *s = nd_scope_begin();
    nd_tensor *base = nd_persist(nd_arange(0, 12, 1));
    nd_tensor *view = nd_persist(nd_slice(nd_reshape(base, ND_SHAPE(3, 4)), 1, 1, 3, 1));
    nd_scope_end(s);
    size_t live = nd_mem_live();
    nd_free(base); /* only the object goes: the view still holds the data */
    ck_assert_uint_lt(nd_mem_live(), live);
    ck_assert_uint_gt(nd_mem_live(), 12 * sizeof(float));
    ck_assert(nd_get(view, (const int64_t[]){2, 1}) == 10.0f);
    nd_free(view);
    nd_free(NULL);
}
END_TEST

START_TEST(wrapped_buffer_is_borrowed) {
    float *mine = malloc(6 * sizeof(float));
    for (int i = 0; i < 6; i++) mine[i] = (float)i;
    size_t before = nd_mem_live();
    nd_tensor *t = nd_wrap_buffer(mine, ND_SHAPE(2, 3));
    /* The library counts its bookkeeping, not the caller's floats. */
    ck_assert_uint_lt(nd_mem_live() - before, 6 * sizeof(float) + 1024);
    nd_set(t, (const int64_t[]){1, 2}, 42.0f);
    ck_assert(mine[5] == 42.0f);
    nd_free(t);
    ck_assert_uint_eq(nd_mem_live(), before);
    ck_assert(mine[0] == 0.0f); /* still ours, still valid */
    free(mine);
}
END_TEST

START_TEST(peak_tracks_the_high_water_mark) {
    nd_mem_reset_peak();
    size_t base = nd_mem_live();
    ck_assert_uint_eq(nd_mem_peak(), base);
    nd_scope *s = nd_scope_begin();
    nd_zeros(ND_SHAPE(1 << 16));
    size_t high = nd_mem_live();
    nd_scope_end(s);
    ck_assert_uint_ge(high, base + (1 << 16) * sizeof(float));
    ck_assert_uint_eq(nd_mem_peak(), high);
    ck_assert_uint_eq(nd_mem_live(), base);
    nd_mem_reset_peak();
    ck_assert_uint_eq(nd_mem_peak(), base);
}
END_TEST

START_TEST(steady_state_over_many_steps) {
    /* The same work in a scope, 1000 times: nothing accumulates. */
    nd_tensor *w = nd_persist(t_uniform(5, ND_SHAPE(16, 16), -1, 1));
    size_t after_first = 0;
    for (int step = 1; step <= 1000; step++) {
        nd_scope *s = nd_scope_begin();
        nd_tensor *x = nd_softmax(nd_matmul(w, nd_transpose(w, 0, 1)), -1);
        nd_sum(nd_mul(x, x), NULL, 0, false);
        nd_scope_end(s);
        if (step == 1) after_first = nd_mem_live();
    }
    ck_assert_uint_eq(nd_mem_live(), after_first);
    nd_free(w);
}
END_TEST

/* Raw blocks from the pool, from 4 KiB up: what a wrong allocator gets
 * wrong shows in where blocks land and in what the cache counts. */
#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)

static char *block(size_t bytes) { return nd_alloc(bytes); }

START_TEST(freed_blocks_serve_other_sizes) {
    nd_mem_trim();
    ck_assert_uint_eq(nd_mem_cached(), 0);
    char *a = block(1 * MIB);
    nd_dealloc(a, 1 * MIB);
    size_t cached = nd_mem_cached();
    ck_assert_uint_ge(cached, 1 * MIB);
    /* A freed MiB is split among smaller blocks, first fit: the first
     * takes its place, the second follows it, both within it. */
    char *b = block(600 * KIB), *c = block(300 * KIB);
    ck_assert_ptr_eq(b, a);
    ck_assert(c > b && c + 300 * KIB <= a + 1 * MIB);
    /* Freed again, in either order, they merge back into one MiB. */
    nd_dealloc(b, 600 * KIB);
    nd_dealloc(c, 300 * KIB);
    ck_assert_uint_eq(nd_mem_cached(), cached);
    char *d = block(1 * MIB);
    ck_assert_ptr_eq(d, a);
    nd_dealloc(d, 1 * MIB);
    /* A larger block than any free one takes new memory, and the old
     * stays cached for later. */
    char *e = block(cached + 1 * MIB);
    ck_assert_uint_ge(nd_mem_cached(), cached);
    nd_dealloc(e, cached + 1 * MIB);
    nd_mem_trim();
    ck_assert_uint_eq(nd_mem_cached(), 0);
}
END_TEST

START_TEST(cache_counts_free_bytes) {
    nd_mem_trim();
    size_t live = nd_mem_live();
    char *a = block(3 * MIB + 100);
    size_t with_a = nd_mem_cached(); /* what the chunk holds beyond a */
    ck_assert_uint_eq(nd_mem_live(), live + 3 * MIB + 100);
    nd_dealloc(a, 3 * MIB + 100);
    /* a's bytes, rounded to 64, and its 64-byte header */
    ck_assert_uint_eq(nd_mem_cached() - with_a, 3 * MIB + 128 + 64);
    ck_assert_uint_eq(nd_mem_live(), live);
    /* Below 4 KiB blocks are the C library's, and nothing is kept. */
    nd_mem_trim();
    nd_dealloc(block(4095), 4095);
    ck_assert_uint_eq(nd_mem_cached(), 0);
    nd_dealloc(block(4096), 4096);
    ck_assert_uint_gt(nd_mem_cached(), 0);
    nd_mem_trim();
    ck_assert_uint_eq(nd_mem_cached(), 0);
}
END_TEST

START_TEST(blocks_are_aligned_and_apart) {
    /* Blocks of sizes around the pool's bounds, each filled with its own
     * byte and freed in a shuffled order: no two may overlap, each starts
     * on 64 bytes, and every byte comes back. */
    enum { N = 48 };
    static const size_t sizes[] = {1, 63, 64, 65, 4095, 4096, 4097, 5000, 65536, 100000,
                                   (1 << 20) + 4};
    const size_t nsizes = sizeof sizes / sizeof sizes[0];
    size_t live = nd_mem_live();
    char *p[N];
    size_t n[N];
    uint64_t seed = 7;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N; i++) {
            n[i] = sizes[t_next_u64(&seed) % nsizes];
            p[i] = block(n[i]);
            ck_assert_uint_eq((uintptr_t)p[i] % 64, 0);
            memset(p[i], i, n[i]);
        }
        for (int i = 0; i < N; i++) {
            for (size_t k = 0; k < n[i]; k += 997) ck_assert_int_eq(p[i][k], i);
            ck_assert_int_eq(p[i][n[i] - 1], i);
        }
        for (int i = 0; i < N; i++) {
            int j = (int)(t_next_u64(&seed) % (uint64_t)(N - i)) + i;
            char *tp = p[i];
            size_t tn = n[i];
            p[i] = p[j], n[i] = n[j];
            p[j] = tp, n[j] = tn;
            nd_dealloc(p[i], n[i]);
        }
        ck_assert_uint_eq(nd_mem_live(), live);
    }
    nd_mem_trim();
    ck_assert_uint_eq(nd_mem_cached(), 0);
}
END_TEST

START_TEST(a_repeated_step_reuses_its_places) {
    /* A step of tensors of several sizes, some freed before the step
     * ends: after the first, each step gets the same blocks and takes
     * nothing from the system (the cache ends each step the same). */
    nd_mem_trim();
    float *first[6] = {0};
    size_t cached_after = 0;
    for (int step = 0; step < 5; step++) {
        nd_scope *s = nd_scope_begin();
        nd_tensor *x = nd_full(ND_SHAPE(16, 32, 32, 32), 1.0f);  /* 2 MiB */
        nd_tensor *y = nd_mul_scalar(x, 2.0f);                   /* 2 MiB */
        nd_tensor *z = nd_reshape(nd_concat((const nd_tensor *[]){x, y}, 2, 1),
                                  ND_SHAPE(16, 64, 1024)); /* 4 MiB */
        nd_free(x);
        nd_tensor *w = nd_sum(z, ND_AXES(2), false); /* 4 KiB */
        nd_tensor *v = nd_full(ND_SHAPE(3, 100000), 0.5f); /* 1.1 MiB */
        nd_tensor *all[6] = {y, z, w, v, nd_zeros(ND_SHAPE(5000)), nd_zeros(ND_SHAPE(70000))};
        for (int i = 0; i < 6; i++) {
            if (step == 0) first[i] = nd_data(all[i]);
            else ck_assert_ptr_eq(nd_data(all[i]), first[i]);
        }
        ck_assert(nd_data(w)[0] == 1024.0f && nd_data(w)[32] == 2048.0f);
        nd_scope_end(s);
        if (step == 0) cached_after = nd_mem_cached();
        else ck_assert_uint_eq(nd_mem_cached(), cached_after);
    }
}
END_TEST

START_TEST(the_cache_follows_the_live_peak) {
    /* Steps of 8 blocks of a size that changes every step (0.5-1 MiB):
     * one cached block per size, as an exact-size cache keeps, would
     * hold 50 steps' worth; the pool holds about one step's. */
    nd_mem_trim();
    uint64_t seed = 11;
    size_t most = 0;
    for (int step = 0; step < 50; step++) {
        size_t bytes = 512 * KIB + (size_t)t_draw(&seed, 0, 8191) * 64;
        char *p[8];
        for (int i = 0; i < 8; i++) p[i] = block(bytes);
        if (8 * bytes > most) most = 8 * bytes;
        for (int i = 0; i < 8; i++) nd_dealloc(p[i], bytes);
    }
    ck_assert_uint_le(nd_mem_cached(), 2 * most);
    nd_mem_trim();
    ck_assert_uint_eq(nd_mem_cached(), 0);
}
END_TEST

START_TEST(the_cache_limit_holds) {
    nd_mem_trim();
    size_t old = nd_mem_set_cache_limit(0);
    ck_assert_uint_eq(old, SIZE_MAX);
    /* Nothing kept: a block's memory goes back as it is freed. */
    nd_dealloc(block(4 * MIB), 4 * MIB);
    ck_assert_uint_eq(nd_mem_cached(), 0);
    /* Up to 10 MiB kept of the 6 x 4 MiB freed. */
    nd_mem_set_cache_limit(10 * MIB);
    char *p[6];
    for (int i = 0; i < 6; i++) p[i] = block(4 * MIB);
    for (int i = 0; i < 6; i++) {
        nd_dealloc(p[i], 4 * MIB);
        ck_assert_uint_le(nd_mem_cached(), 10 * MIB);
    }
    ck_assert_uint_gt(nd_mem_cached(), 0);
    /* A lower limit gives back what lies beyond it at once. */
    nd_mem_set_cache_limit(0);
    ck_assert_uint_eq(nd_mem_cached(), 0);
    ck_assert_uint_eq(nd_mem_set_cache_limit(old), 0);
}
END_TEST

/* conv, softmax and a sum of sizes from 4 KiB to 9 MiB */
static void compute(nd_tensor **out) {
    nd_tensor *x = t_uniform(3, ND_SHAPE(4, 16, 24, 24), -1, 1);
    nd_tensor *w = t_uniform(4, ND_SHAPE(16, 16, 3, 3), -0.3f, 0.3f);
    nd_tensor *y = nd_conv2d(x, w, NULL, (nd_conv2d_opts){1, 1, 1, 1, 1, 1});
    nd_tensor *a = nd_reshape(y, ND_SHAPE(4 * 16, 24 * 24));
    nd_tensor *sc = nd_matmul(nd_transpose(a, 0, 1), a);
    *out = nd_persist(nd_sum(nd_softmax(sc, -1), ND_AXES(0), false));
}

START_TEST(results_do_not_depend_on_the_memory) {
    /* The same work on fresh memory, on memory full of old values and
     * at other places (a block held in between shifts every later one),
     * on 1 and 2 threads: the same bits. */
    int threads = nd_get_num_threads();
    nd_mem_trim();
    nd_set_num_threads(1);
    nd_tensor *ref;
    compute(&ref);
    for (int k = 0; k < 4; k++) {
        nd_scope *s = nd_scope_begin();
        nd_full(ND_SHAPE(k * 3000 + 1024), NAN);
        nd_set_num_threads(1 + k % 2);
        nd_tensor *got;
        compute(&got);
        ck_assert_mem_eq(nd_data(got), nd_data(ref), (size_t)nd_numel(ref) * sizeof(float));
        nd_free(got);
        nd_scope_end(s);
    }
    nd_free(ref);
    nd_set_num_threads(threads);
}
END_TEST

#ifdef UNDER_ASAN
#include <sanitizer/asan_interface.h>

START_TEST(asan_sees_pooled_blocks) {
    /* A pooled block's bytes are addressable while it lives; the bytes
     * past its end, and all of it once freed, are not. */
    char *a = block(8 * KIB + 8), *b = block(8 * KIB);
    ck_assert(!__asan_region_is_poisoned(a, 8 * KIB + 8));
    ck_assert(__asan_address_is_poisoned(a + 8 * KIB + 8));
    ck_assert(__asan_address_is_poisoned(b - 1));
    ck_assert(__asan_address_is_poisoned(b + 8 * KIB));
    nd_dealloc(a, 8 * KIB + 8);
    ck_assert(__asan_address_is_poisoned(a));
    ck_assert(!__asan_region_is_poisoned(b, 8 * KIB));
    nd_dealloc(b, 8 * KIB);
    ck_assert(__asan_address_is_poisoned(b + 100));
}
END_TEST
#endif

TCase *tcase_memory(void) {
    TCase *tc = nd_test_case("memory");
    tcase_add_test(tc, scope_frees_everything);
    tcase_add_test(tc, keep_and_persist);
    tcase_add_test(tc, views_keep_storage_alive);
    tcase_add_test(tc, wrapped_buffer_is_borrowed);
    tcase_add_test(tc, peak_tracks_the_high_water_mark);
    tcase_add_test(tc, steady_state_over_many_steps);
    tcase_add_test(tc, freed_blocks_serve_other_sizes);
    tcase_add_test(tc, cache_counts_free_bytes);
    tcase_add_test(tc, blocks_are_aligned_and_apart);
    tcase_add_test(tc, a_repeated_step_reuses_its_places);
    tcase_add_test(tc, the_cache_follows_the_live_peak);
    tcase_add_test(tc, the_cache_limit_holds);
    tcase_add_test(tc, results_do_not_depend_on_the_memory);
#ifdef UNDER_ASAN
    tcase_add_test(tc, asan_sees_pooled_blocks);
#endif
    return tc;
}
