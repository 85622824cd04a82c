/* Lifetimes: scopes, keep/persist, storage shared by views, and the
 * allocator's live and peak counters. */
#include <stdlib.h>

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

START_TEST(large_blocks_are_reused) {
    nd_mem_trim();
    ck_assert_uint_eq(nd_mem_cached(), 0);
    size_t before = nd_mem_live();
    nd_tensor *a = nd_persist(nd_full(ND_SHAPE(1 << 20), 1.0f)); /* 4 MiB */
    float *first = nd_data(a);
    nd_free(a);
    ck_assert_uint_eq(nd_mem_live(), before);
    ck_assert_uint_ge(nd_mem_cached(), (size_t)4 << 20);
    /* The same size again gets the same block back, with fresh values. */
    nd_tensor *b = nd_persist(nd_zeros(ND_SHAPE(1 << 20)));
    ck_assert_ptr_eq(nd_data(b), first);
    ck_assert(nd_data(b)[12345] == 0.0f);
    ck_assert_uint_eq(nd_mem_cached(), 0);
    ck_assert_uint_ge(nd_mem_live(), before + ((size_t)4 << 20));
    nd_free(b);
    nd_tensor *small = nd_persist(nd_zeros(ND_SHAPE(100)));
    nd_free(small);
    ck_assert_uint_ge(nd_mem_cached(), (size_t)4 << 20);
    nd_mem_trim();
    ck_assert_uint_eq(nd_mem_cached(), 0);
    ck_assert_uint_eq(nd_mem_live(), before);
    /* From 64 KiB up (an MLP's [256, 128] activations), and near sizes
     * share a block: 128 KiB and 128 KiB - 100 floats round alike. */
    nd_tensor *c = nd_persist(nd_zeros(ND_SHAPE(256, 128)));
    float *third = nd_data(c);
    nd_free(c);
    ck_assert_uint_ge(nd_mem_cached(), (size_t)128 << 10);
    nd_tensor *d = nd_persist(nd_zeros(ND_SHAPE(256 * 128 - 100)));
    ck_assert_ptr_eq(nd_data(d), third);
    nd_free(d);
    /* below 64 KiB nothing is kept */
    nd_mem_trim();
    nd_free(nd_persist(nd_zeros(ND_SHAPE(1000))));
    ck_assert_uint_eq(nd_mem_cached(), 0);
}
END_TEST

TCase *tcase_memory(void) {
    TCase *tc = nd_test_case("memory");
    tcase_add_test(tc, scope_frees_everything);
    tcase_add_test(tc, keep_and_persist);
    tcase_add_test(tc, views_keep_storage_alive);
    tcase_add_test(tc, wrapped_buffer_is_borrowed);
    tcase_add_test(tc, peak_tracks_the_high_water_mark);
    tcase_add_test(tc, steady_state_over_many_steps);
    tcase_add_test(tc, large_blocks_are_reused);
    return tc;
}
