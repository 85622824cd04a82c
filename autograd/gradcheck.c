/* Gradient checking: backward against central differences.
 *
 *   L(x) = sum_i w_i f(x)_i              (w fixed, random: all outputs count)
 *   numeric_j  = (L(x + h e_j) - L(x - h e_j)) / (2h)
 *   analytic_j = dL/dx_j from nd_backward_with(f(x), w)
 *
 * L is summed in double, and h is the step the float actually took
 * ((float)(x + eps) - x), so the difference quotient is as exact as the
 * float evaluation of f allows. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* L = sum_i w_i y_i, in double */
static double weighted(const nd_tensor *y, const nd_tensor *w) {
    nd_tensor *yc = nd_contiguous(y);
    const float *p = nd_data(yc), *q = nd_data(w);
    double s = 0;
    for (int64_t i = 0, n = nd_numel(yc); i < n; i++) s += (double)p[i] * q[i];
    nd_free(yc);
    return s;
}

static double evaluate(nd_grad_fn f, void *ctx, nd_tensor *const *inputs,
                       const nd_tensor *w) {
    nd_scope *s = nd_scope_begin();
    nd_no_grad_begin();
    double L = weighted(f(inputs, ctx), w);
    nd_no_grad_end();
    nd_scope_end(s);
    return L;
}

/* Storage offset of element i (row-major) of t. */
static int64_t storage_offset(const nd_tensor *t, int64_t i) {
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (i % t->shape[d]) * t->strides[d];
        i /= t->shape[d];
    }
    return off;
}

bool nd_gradcheck(nd_grad_fn f, void *ctx, nd_tensor *const *inputs, int n,
                  double eps, double atol, double rtol, nd_gradcheck_report *rep) {
    if (!f || (n > 0 && !inputs) || n < 0) nd_fatal("gradcheck", "f or inputs is NULL");
    if (!(eps > 0)) nd_fatal("gradcheck", "eps %g must be > 0", eps);
    nd_gradcheck_report local;
    if (!rep) rep = &local;
    memset(rep, 0, sizeof *rep);
    rep->worst_input = -1;
    bool was[64];
    if (n > 64) nd_fatal("gradcheck", "%d inputs; at most 64 are supported", n);
    for (int k = 0; k < n; k++) {
        if (!inputs[k]) nd_fatal("gradcheck", "input %d is NULL", k);
        was[k] = inputs[k]->requires_grad;
        nd_requires_grad(inputs[k], true);
        if (inputs[k]->grad) nd_zero_grad(inputs[k]);
    }

    /* Analytic: one backward with the weights as seed, with only the tape
     * holding f's intermediates, so that a rule that reads values its
     * record let go stops here. */
    nd_scope *s = nd_scope_begin();
    nd_scope *inner = nd_scope_begin();
    nd_tensor *y = f(inputs, ctx);
    if (y && y->scope == inner) nd_keep(y);
    nd_scope_end(inner);
    nd_rng g = nd_rng_init(0x9e3779b97f4a7c15ull, 0);
    nd_tensor *w = nd_persist(nd_rand(&g, y->shape, y->ndim));
    nd_tensor *w2 = nd_mul_scalar(w, 2.0f);
    nd_copy_(w, nd_sub_scalar(w2, 1.0f)); /* U[-1, 1) */
    if (!y->requires_grad)
        nd_fatal("gradcheck", "f's output does not depend on any input through "
                 "recorded ops");
    nd_backward_with(y, w);
    nd_scope_end(s);

    double worst = 0;
    for (int k = 0; k < n; k++) {
        nd_tensor *x = inputs[k];
        int64_t count = nd_numel(x);
        float *base = nd_data(x) - x->offset;
        const float *grad = x->grad ? nd_data(x->grad) : NULL;
        bool aliased = false;
        for (int d = 0; d < x->ndim; d++) aliased |= x->strides[d] == 0 && x->shape[d] > 1;
        for (int64_t i = 0; i < count; i++) {
            int64_t off = storage_offset(x, i);
            /* Elements aliasing one storage location (expanded views) are
             * checked once, at their first index, with their gradients
             * summed. */
            bool first = true;
            double analytic = grad ? grad[i] : 0.0;
            for (int64_t j = 0; aliased && j < count && first; j++) {
                if (j == i || storage_offset(x, j) != off) continue;
                if (j < i) first = false;
                else analytic += grad ? grad[j] : 0.0;
            }
            if (!first) continue;
            float x0 = base[off];
            float xp = (float)(x0 + eps), xm = (float)(x0 - eps);
            base[off] = xp;
            double Lp = evaluate(f, ctx, inputs, w);
            base[off] = xm;
            double Lm = evaluate(f, ctx, inputs, w);
            base[off] = x0;
            double numeric = (Lp - Lm) / ((double)xp - (double)xm);
            double err = fabs(analytic - numeric);
            double tol = atol + rtol * fabs(numeric);
            rep->checked++;
            if (!(err <= tol)) rep->failed++;
            double ratio = isnan(err) ? INFINITY : err / tol;
            if (rep->worst_input < 0 || ratio > worst) {
                worst = ratio;
                rep->worst_input = k;
                rep->worst_index = i;
                rep->analytic = analytic;
                rep->numeric = numeric;
            }
        }
    }
    nd_free(w);
    for (int k = 0; k < n; k++) {
        if (inputs[k]->grad) {
            nd_free(inputs[k]->grad);
            inputs[k]->grad = NULL;
        }
        inputs[k]->requires_grad = was[k];
    }
    return rep->failed == 0;
}
