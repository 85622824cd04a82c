/* The whole tiny UNet against PyTorch: the output and the gradient of
 * every parameter element, from parameters and inputs that both sides
 * build from the same closed formula (tests/ddpm/reference.py computed
 * the reference in float64 and wrote reference_data.h). One network,
 * forward and backward, checks every layer in the places and shapes the
 * UNet uses them: the time embedding, GroupNorm, the residual blocks with
 * and without shortcut, attention, both resamplers, the skip concatenation
 * and its order. */
#include <stdlib.h>
#include <string.h>

#include "ddpm/ddpm.h"
#include "helpers.h"
#include "reference_data.h"

/* Tolerance, per element of a tensor r (the output, or one parameter's
 * gradient):  |c - r| <= RTOL * max(max|r|, FLOOR).
 * The error of float32 arithmetic follows the size of the terms that are
 * summed, not of their sum, so it scales with the tensor's largest value
 * rather than with each element: an element that nearly cancels carries
 * the absolute error of its neighbours (measured: per element, relative
 * errors approach 1e-3 on such elements, while the error over max|r|
 * stays below 3e-6 for every tensor, with either kernel set). FLOOR
 * matters only for the key projections' biases, whose exact gradient is
 * zero (adding a constant to every key adds q . b to a whole softmax row,
 * which softmax ignores), so that their max|r| is ~1e-16 and only float32
 * rounding, below 1e-7, is left on the C side. FLOOR lies below the
 * smallest max|r| of every other tensor (~0.1), so it loosens nothing
 * else. */
#define RTOL 1e-5
#define FLOOR 0.05

static const int64_t NBATCH = 2, RES = 8;
static const float STEPS[2] = {3.0f, 917.0f};

/* unit() of reference.py: an integer hash of (k, e) mapped to an odd
 * multiple of 2^-24 in (-1, 1), exact in float32 and never zero. */
static double unit(uint32_t k, uint32_t e) {
    uint32_t h = ((e + 1u) * 2654435761u) ^ ((k + 1u) * 2246822519u);
    h ^= h >> 15;
    h *= 2654435761u;
    h ^= h >> 13;
    return (double)((int32_t)(2u * (h >> 8) + 1u) - (1 << 24)) / (double)(1 << 24);
}

/* param_value() of reference.py. Only correctly rounded IEEE operations
 * (a division, a square root, one product; the power-of-two scales are
 * exact), so the float32 values are the very bits the script used. */
static float param_value(uint32_t k, uint32_t e, const nd_tensor *p, bool gn_weight) {
    if (p->ndim >= 2) {
        int64_t fan_in = 1;
        for (int d = 1; d < p->ndim; d++) fan_in *= p->shape[d];
        return (float)(unit(k, e) * sqrt(3.0 / (double)fan_in));
    }
    return (float)(gn_weight ? 1.0 + unit(k, e) / 8 : unit(k, e) / 8);
}

static nd_tensor *formula_tensor(uint32_t k, double scale) {
    nd_tensor *t = nd_empty(ND_SHAPE(NBATCH, 1, RES, RES));
    float *p = nd_data(t);
    for (int64_t e = 0; e < nd_numel(t); e++) p[e] = (float)(scale * unit(k, (uint32_t)e));
    return t;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* The tiny UNet with every parameter overwritten by the formula, after
 * checking that names, order and shapes are the ones the script used. */
static nd_unet *golden_unet(void) {
    nd_unet_config c;
    nd_error err;
    ck_assert_int_eq(nd_unet_config_named("tiny", &c, &err), ND_OK);
    nd_rng rng = nd_rng_init(7, 0);
    nd_unet *u = nd_unet_new(&c, &rng);
    nd_param_list ps = nd_parameters(nd_unet_module(u));
    ck_assert_int_eq(ps.n, REF_NUM_PARAMS);
    int64_t total = 0;
    double sum = 0, abs_sum = 0;
    for (int k = 0; k < ps.n; k++) {
        const ref_param *r = &ref_params[k];
        nd_tensor *p = ps.items[k].value;
        ck_assert_msg(!strcmp(ps.items[k].name, r->name), "parameter %d is %s, PyTorch's is %s",
                      k, ps.items[k].name, r->name);
        bool same_shape = p->ndim == r->ndim;
        for (int d = 0; same_shape && d < p->ndim; d++) same_shape = p->shape[d] == r->shape[d];
        ck_assert_msg(same_shape, "%s does not have PyTorch's shape", r->name);
        ck_assert(nd_is_contiguous(p));
        float *v = nd_data(p);
        bool gn_weight = p->ndim == 1 && ends_with(r->name, "weight");
        for (int64_t e = 0; e < nd_numel(p); e++) {
            v[e] = param_value((uint32_t)k, (uint32_t)e, p, gn_weight);
            sum += v[e];
            abs_sum += fabs(v[e]);
        }
        total += nd_numel(p);
    }
    nd_param_list_free(&ps);
    ck_assert_int_eq(total, REF_NUM_ELEMENTS);
    ck_assert_int_eq(nd_num_parameters(nd_unet_module(u)), REF_NUM_ELEMENTS);
    /* The same values summed in another order differ by rounding only; a
     * different fill would differ by far more. */
    ck_assert_msg(fabs(sum - ref_param_sum) <= 1e-12 * ref_param_abs_sum &&
                      fabs(abs_sum - ref_param_abs_sum) <= 1e-12 * ref_param_abs_sum,
                  "the parameters differ from the script's: sum %.17g (%.17g), sum |p| %.17g "
                  "(%.17g)", sum, ref_param_sum, abs_sum, ref_param_abs_sum);
    return u;
}

/* One forward and backward pass; what it gives, copied out. */
typedef struct {
    double loss;
    float out[128];
    float *grad; /* REF_NUM_ELEMENTS, ref_params order */
} run_result;

static void run(nd_unet *u, run_result *res) {
    ck_assert_int_eq(NBATCH * RES * RES, (int64_t)(sizeof res->out / sizeof res->out[0]));
    nd_scope *scope = nd_scope_begin();
    nd_module *m = nd_unet_module(u);
    nd_module_zero_grad(m);
    nd_module_train(m, true); /* dropout is 0: train mode must not change a thing */
    nd_rng rng = nd_rng_init(11, 0);
    nd_tensor *x = formula_tensor(1000, 2.0), *w = formula_tensor(2000, 1.0);
    nd_tensor *t = nd_from_buffer(STEPS, ND_SHAPE(NBATCH));
    nd_tensor *out = nd_unet_forward(u, x, t, &rng);
    nd_tensor *loss = nd_sum(nd_mul(out, w), NULL, 0, false);
    nd_backward(loss);
    res->loss = nd_item(loss);
    ck_assert_int_eq(nd_numel(out), NBATCH * RES * RES);
    memcpy(res->out, nd_data(nd_contiguous(out)), sizeof res->out);
    res->grad = malloc(REF_NUM_ELEMENTS * sizeof(float));
    ck_assert_ptr_nonnull(res->grad);
    nd_param_list ps = nd_parameters(m);
    int64_t off = 0;
    for (int k = 0; k < ps.n; k++) {
        nd_tensor *g = ps.items[k].value->grad;
        ck_assert_msg(g != NULL, "%s has no gradient", ps.items[k].name);
        int64_t n = nd_numel(g);
        ck_assert_int_le(off + n, REF_NUM_ELEMENTS);
        memcpy(res->grad + off, nd_data(nd_contiguous(g)), (size_t)n * sizeof(float));
        off += n;
    }
    nd_param_list_free(&ps);
    ck_assert_int_eq(off, REF_NUM_ELEMENTS);
    nd_scope_end(scope);
}

/* The worst element of c against r under the tolerance, named. */
static void expect_close(const char *what, const float *c, const double *r, int64_t n,
                         const ref_param *shape_of) {
    double max_r = 0;
    for (int64_t i = 0; i < n; i++) max_r = fmax(max_r, fabs(r[i]));
    double tol = RTOL * fmax(max_r, FLOOR), worst = -1;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)c[i] - r[i]);
        if (isnan(err)) { /* a NaN is the worst there is */
            worst = INFINITY;
            at = i;
            break;
        }
        if (err > worst) {
            worst = err;
            at = i;
        }
    }
    if (worst <= tol) return;
    char index[96] = "";
    if (shape_of) {
        int64_t idx[4];
        t_unravel(at, shape_of->shape, shape_of->ndim, idx);
        int len = 0;
        for (int d = 0; d < shape_of->ndim; d++)
            len += snprintf(index + len, sizeof index - (size_t)len, "%s%lld", d ? "," : " [",
                            (long long)idx[d]);
        snprintf(index + len, sizeof index - (size_t)len, "]");
    }
    ck_abort_msg("%s[%lld]%s = %.9g, PyTorch %.9g: off by %.3g, tolerance %.3g "
                 "(max |ref| %.3g)", what, (long long)at, index, c[at], r[at], worst, tol, max_r);
}

START_TEST(unet_matches_torch_forward_and_backward) {
    nd_unet *u = golden_unet();
    run_result res;
    run(u, &res);
    expect_close("out", res.out, ref_out, NBATCH * RES * RES, NULL);
    int64_t off = 0;
    for (int k = 0; k < REF_NUM_PARAMS; k++) {
        const ref_param *p = &ref_params[k];
        int64_t n = t_count(p->shape, p->ndim);
        char what[ND_NAME_MAX + 16];
        snprintf(what, sizeof what, "d loss / d %s", p->name);
        expect_close(what, res.grad + off, ref_grad + off, n, p);
        off += n;
    }
    free(res.grad);
    nd_module_free(nd_unet_module(u));
}
END_TEST

/* The first element whose bits differ, or -1. */
static int64_t first_difference(const float *a, const float *b, int64_t n) {
    if (!memcmp(a, b, (size_t)n * sizeof(float))) return -1;
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float))) return i;
    return -1;
}

START_TEST(unet_bits_do_not_depend_on_the_thread_count) {
    nd_unet *u = golden_unet();
    int saved = nd_get_num_threads();
    run_result first;
    nd_set_num_threads(1);
    run(u, &first);
    for (int threads = 2; threads <= 3; threads++) {
        run_result r;
        nd_set_num_threads(threads);
        run(u, &r);
        ck_assert_msg(memcmp(&r.loss, &first.loss, sizeof r.loss) == 0,
                      "%d threads: loss %.17g, 1 thread %.17g", threads, r.loss, first.loss);
        int64_t i = first_difference(r.out, first.out, NBATCH * RES * RES);
        if (i >= 0)
            ck_abort_msg("%d threads: out[%lld] = %.9g, 1 thread %.9g", threads, (long long)i,
                         r.out[i], first.out[i]);
        int64_t off = 0;
        for (int k = 0; k < REF_NUM_PARAMS; k++) {
            int64_t n = t_count(ref_params[k].shape, ref_params[k].ndim);
            i = first_difference(r.grad + off, first.grad + off, n);
            if (i >= 0)
                ck_abort_msg("%d threads: d loss / d %s[%lld] = %.9g, 1 thread %.9g", threads,
                             ref_params[k].name, (long long)i, r.grad[off + i],
                             first.grad[off + i]);
            off += n;
        }
        free(r.grad);
    }
    nd_set_num_threads(saved);
    ck_assert_int_eq(nd_get_num_threads(), saved);
    free(first.grad);
    nd_module_free(nd_unet_module(u));
}
END_TEST

TCase *tcase_golden(void) {
    TCase *tc = nd_test_case("golden");
    tcase_add_test(tc, unet_matches_torch_forward_and_backward);
    tcase_add_test(tc, unet_bits_do_not_depend_on_the_thread_count);
    return tc;
}
