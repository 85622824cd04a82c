/* GroupNorm and swish as one op (nd_group_norm_silu) against the two ops
 * it replaces, on random shapes: the same bits for y, dx, dgamma and dbeta
 * with every kernel set and 1 or 2 threads, dense and permuted inputs,
 * with and without affine parameters. A failure prints the case's seed;
 * ND_GNS_SEED=seed runs that case alone. Its own gradient is also checked
 * against central differences, and what the tape keeps is measured. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "nn/nn.h"

#define CASES 60
#define BASE_SEED 7100

typedef struct {
    int64_t shape[5];
    int ndim;
    int64_t groups;
    bool affine, permuted;
} gcase;

static int64_t draw(uint64_t *s, int64_t lo, int64_t hi) {
    return lo + (int64_t)(t_next_u64(s) % (uint64_t)(hi - lo + 1));
}

static gcase draw_case(uint64_t seed) {
    uint64_t s = seed;
    gcase k = {.ndim = 2 + (int)draw(&s, 0, 2)};
    k.groups = draw(&s, 1, 4);
    k.shape[0] = draw(&s, 1, 5);
    k.shape[1] = k.groups * draw(&s, 1, 5);
    for (int i = 2; i < k.ndim; i++) k.shape[i] = draw(&s, 1, 9);
    k.affine = draw(&s, 0, 3) != 0;
    k.permuted = k.ndim == 4 && draw(&s, 0, 1);
    return k;
}

typedef struct {
    nd_tensor *y, *dx, *dgamma, *dbeta;
} result;

/* y and the gradients of sum(y w), fused or as the two ops */
static result run(const gcase *k, nd_tensor *x, nd_tensor *gamma, nd_tensor *beta,
                  const nd_tensor *w, bool fused) {
    nd_zero_grad(x);
    if (gamma) {
        nd_zero_grad(gamma);
        nd_zero_grad(beta);
    }
    const nd_tensor *in = k->permuted ? nd_permute(x, ND_AXES(0, 1, 3, 2)) : x;
    nd_tensor *y = fused ? nd_group_norm_silu(in, k->groups, gamma, beta, 1e-5f)
                         : nd_silu(nd_group_norm(in, k->groups, gamma, beta, 1e-5f));
    nd_backward_with(y, w);
    result r = {nd_clone(y), nd_clone(x->grad), NULL, NULL};
    if (gamma) {
        r.dgamma = nd_clone(gamma->grad);
        r.dbeta = nd_clone(beta->grad);
    }
    return r;
}

static void assert_same_bits(const nd_tensor *a, const nd_tensor *b, const char *what,
                             uint64_t seed, const char *run_name) {
    if (!a && !b) return;
    for (int64_t i = 0; i < nd_numel(a); i++) {
        float u = nd_data(a)[i], v = nd_data(b)[i];
        ck_assert_msg(memcmp(&u, &v, sizeof u) == 0,
                      "seed %llu, %s: %s[%lld] fused %.9g, separate ops %.9g",
                      (unsigned long long)seed, run_name, what, (long long)i, (double)u,
                      (double)v);
    }
}

static void check_case(uint64_t seed) {
    gcase k = draw_case(seed);
    int64_t shape[5];
    memcpy(shape, k.shape, sizeof shape);
    if (k.permuted) { /* x is stored with the last two axes swapped */
        shape[2] = k.shape[3];
        shape[3] = k.shape[2];
    }
    nd_tensor *x = nd_requires_grad(t_uniform(seed, shape, k.ndim, -3, 3), true);
    nd_tensor *gamma = NULL, *beta = NULL;
    if (k.affine) {
        gamma = nd_requires_grad(t_uniform(seed + 1, ND_SHAPE(k.shape[1]), 0.5f, 1.5f), true);
        beta = nd_requires_grad(t_uniform(seed + 2, ND_SHAPE(k.shape[1]), -1, 1), true);
    }
    nd_tensor *w = t_uniform(seed + 3, k.shape, k.ndim, -1, 1);
    const nd_kernels *sets[3];
    int nsets = t_kernel_sets(sets);
    int threads_were = nd_get_num_threads();
    char kernels_were[32];
    snprintf(kernels_were, sizeof kernels_were, "%s", nd_kernels_name());
    for (int i = 0; i < nsets; i++) {
        nd_error err;
        ck_assert_int_eq(nd_set_kernels(sets[i]->name, &err), ND_OK);
        for (int threads = 1; threads <= 2; threads++) {
            nd_set_num_threads(threads);
            char name[64];
            snprintf(name, sizeof name, "kernels %s, %d thread%s", sets[i]->name, threads,
                     threads == 1 ? "" : "s");
            nd_scope *s = nd_scope_begin();
            result f = run(&k, x, gamma, beta, w, true);
            result u = run(&k, x, gamma, beta, w, false);
            assert_same_bits(f.y, u.y, "y", seed, name);
            assert_same_bits(f.dx, u.dx, "dx", seed, name);
            assert_same_bits(f.dgamma, u.dgamma, "dgamma", seed, name);
            assert_same_bits(f.dbeta, u.dbeta, "dbeta", seed, name);
            nd_scope_end(s);
        }
    }
    nd_set_num_threads(threads_were);
    nd_error err;
    ck_assert_int_eq(nd_set_kernels(kernels_were, &err), ND_OK);
}

START_TEST(fused_gives_the_bits_of_the_two_ops) {
    const char *one = getenv("ND_GNS_SEED");
    if (one) {
        check_case(strtoull(one, NULL, 10));
        return;
    }
    for (uint64_t i = 0; i < CASES; i++) {
        nd_scope *s = nd_scope_begin();
        check_case(BASE_SEED + i);
        nd_scope_end(s);
    }
}
END_TEST

static nd_tensor *f_gns(nd_tensor *const *in, void *ctx) {
    (void)ctx;
    return nd_group_norm_silu(in[0], 2, in[1], in[2], 1e-5f);
}

START_TEST(fused_gradient_matches_differences) {
    nd_tensor *in[3] = {t_uniform(11, ND_SHAPE(2, 4, 3, 2), -2, 2),
                        t_uniform(12, ND_SHAPE(4), 0.5f, 1.5f),
                        t_uniform(13, ND_SHAPE(4), -1, 1)};
    nd_gradcheck_report rep;
    ck_assert_msg(nd_gradcheck(f_gns, NULL, in, 3, 1e-2, 1e-3, 1e-2, &rep),
                  "input %d element %lld: analytic %g, numeric %g", rep.worst_input,
                  (long long)rep.worst_index, rep.analytic, rep.numeric);
    ck_assert_int_eq(rep.checked, 48 + 4 + 4);
}
END_TEST

START_TEST(normalised_values_are_computed_again_not_kept) {
    /* With only the tape holding them, neither the fused op nor GroupNorm
     * then swish keeps the normalised values (swish's rule reads them; the
     * tape forms them again from x when it runs): about x's bytes stay.
     * Held by the caller instead, they are read as they are: the gradients
     * must not change by a bit. */
    nd_tensor *x = nd_requires_grad(t_uniform(21, ND_SHAPE(4, 8, 16, 16), -1, 1), true);
    size_t bytes = (size_t)nd_numel(x) * sizeof(float);
    for (int fused = 0; fused < 2; fused++) {
        nd_tensor *grads[2];
        for (int held = 0; held < 2; held++) {
            size_t before = nd_mem_live();
            nd_scope *s = nd_scope_begin();
            nd_tensor *g = fused ? nd_group_norm_silu(x, 4, NULL, NULL, 1e-5f)
                                 : nd_group_norm(x, 4, NULL, NULL, 1e-5f);
            nd_tensor *y = fused ? g : nd_silu(g);
            nd_tensor *loss = nd_keep(nd_sum(nd_square(y), NULL, 0, false)); /* reads y */
            if (held) {
                nd_keep(y);
                if (!fused) nd_keep(g);
            }
            nd_scope_end(s);
            size_t kept = nd_mem_live() - before; /* the loss, records, what they keep */
            if (!held)
                ck_assert_msg(kept < bytes + bytes / 4, "%s: kept %zu for x of %zu",
                              fused ? "fused" : "separate", kept, bytes);
            nd_backward(loss);
            grads[held] = nd_clone(x->grad);
            nd_zero_grad(x);
            nd_free(loss);
            if (held) {
                nd_free(y);
                if (!fused) nd_free(g);
            }
        }
        ck_assert_mem_eq(nd_data(grads[0]), nd_data(grads[1]), bytes);
    }
}
END_TEST

TCase *tcase_group_norm_silu(void) {
    TCase *tc = nd_test_case("group_norm_silu");
    tcase_add_test(tc, fused_gives_the_bits_of_the_two_ops);
    tcase_add_test(tc, fused_gradient_matches_differences);
    tcase_add_test(tc, normalised_values_are_computed_again_not_kept);
    return tc;
}
