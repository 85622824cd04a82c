#!/usr/bin/env python3
"""Derives the polynomial and rational coefficients of tensor/vmath_*.c.

Run with python3, numpy and mpmath (Debian: python3-numpy python3-mpmath):

    python3 tensor/vmath_coefficients.py

It prints each set as C float literals with the measured approximation
error (in double, before the float rounding of the evaluation). The library
and its tests never run this script: the numbers are copied into
tensor/vmath.h, which the scalar twins and the SIMD files share.

Method. Every approximation is linear in its unknown coefficients once the
exact leading terms are moved to the left:

    exp:   e^r      = 1 + r + r^2 (c0 + c1 r + ... + c4 r^4),  |r| <= ln2/2
    log:   log1p(f) = f + f^2 (c0 + c1 f + ... + c8 f^8),
                      f in [sqrt(1/2) - 1, sqrt(2) - 1]
    tanh:  tanh(a)  = a + a^3 (c0 + c1 a^2 + ... + c4 a^8),  0 <= a <= 0.625
    Phi:   Q(a) = erfc(a / sqrt2) / 2 = e^{-a^2/2} R(a),  0 <= a <= 14.5,
           R(a) = (p0 + p1 a + ... + p4 a^4) / (1 + d1 a + ... + d5 a^5)

The polynomials are fitted for the smallest maximum relative error with
Lawson's algorithm (iteratively reweighted least squares, which converges
to the minimax solution of a linear problem) on Chebyshev nodes. The
rational R = P / D is linearised as in Sanathanan and Koerner (1963):
P - R D = 0 weighted by 1 / (R D_previous), with Lawson's weights on top.

The coefficients are then rounded to float one at a time, lowest degree
first, and the ones not yet rounded are refitted with the rounded ones
held fixed, so that the float set is nearly as good as the double one.
"""

import math
import sys

import mpmath
import numpy as np

mpmath.mp.dps = 40


def chebyshev_nodes(lo, hi, n=4000):
    k = np.arange(n)
    x = np.cos(np.pi * (k + 0.5) / n)
    return np.sort(0.5 * (lo + hi) + 0.5 * (hi - lo) * x)


def lawson(A, b, w, iters=400):
    """min over c of max_i w_i |(A c)_i - b_i|."""
    Aw = A * w[:, None]
    bw = b * w
    lam = np.full(len(b), 1.0 / len(b))
    best = (math.inf, None)
    for _ in range(iters):
        s = np.sqrt(lam)
        c, *_ = np.linalg.lstsq(Aw * s[:, None], bw * s, rcond=None)
        e = np.abs(Aw @ c - bw)
        if e.max() < best[0]:
            best = (e.max(), c)
        lam = lam * e
        lam /= lam.sum()
    return best


def f32(v):
    return float(np.float32(v))


def fit_rounded(basis, target, weight, n):
    """Fits sum_j c_j basis_j ~ target (weighted), rounding c_j to float
    in turn and refitting the rest. Returns the float coefficients and the
    weighted maximum error of the final set."""
    fixed = []
    for j in range(n):
        rhs = target - sum(c * basis[i] for i, c in enumerate(fixed))
        A = np.vstack(basis[j:n]).T
        _, c = lawson(A, rhs, weight)
        fixed.append(f32(c[0]))
    err = np.abs((sum(c * basis[i] for i, c in enumerate(fixed)) - target) * weight)
    return fixed, err.max()


def fit_exp():
    r = chebyshev_nodes(-0.3466, 0.3466)
    basis = [r * r * r**j for j in range(5)]
    target = np.expm1(r) - r
    return fit_rounded(basis, target, np.exp(-r), 5)


def fit_log():
    f = chebyshev_nodes(math.sqrt(0.5) - 1, math.sqrt(2) - 1)
    f = f[np.abs(f) > 1e-6]
    basis = [f * f * f**j for j in range(9)]
    target = np.log1p(f) - f
    return fit_rounded(basis, target, 1 / np.abs(np.log1p(f)), 9)


def fit_tanh():
    a = chebyshev_nodes(1e-4, 0.625)
    basis = [a**3 * a ** (2 * j) for j in range(5)]
    target = np.tanh(a) - a
    return fit_rounded(basis, target, 1 / np.tanh(a), 5)


def mills(a):
    """R(a) = e^{a^2/2} erfc(a / sqrt2) / 2, to 40 digits."""
    a = mpmath.mpf(a)
    return float(mpmath.exp(a * a / 2) * mpmath.erfc(a / mpmath.sqrt(2)) / 2)


def fit_phi(m=4, n=5, iters=60):
    a = chebyshev_nodes(0.0, 14.5, 3000)
    R = np.array([mills(v) for v in a])
    names = [("p", j) for j in range(m + 1)] + [("d", j) for j in range(1, n + 1)]
    cols = [a**j for j in range(m + 1)] + [-R * a**j for j in range(1, n + 1)]
    fixed = {}

    def solve():
        d_prev = np.ones_like(a)
        lam = np.full(len(a), 1.0 / len(a))
        best = (math.inf, None)
        free = [k for k in range(len(names)) if k not in fixed]
        for _ in range(iters):
            rhs = R - sum(fixed[k] * cols[k] for k in fixed)
            w = np.sqrt(lam) / (R * d_prev)
            A = np.vstack([cols[k] for k in free]).T
            c, *_ = np.linalg.lstsq(A * w[:, None], rhs * w, rcond=None)
            coef = dict(fixed)
            coef.update(zip(free, c))
            P = sum(coef[k] * a ** names[k][1] for k in range(m + 1))
            D = 1 + sum(coef[k] * a ** names[k][1] for k in range(m + 1, len(names)))
            e = np.abs(P / D / R - 1)
            if e.max() < best[0]:
                best = (e.max(), coef)
            d_prev = D
            lam = lam * e
            lam /= lam.sum()
        return best

    for k in range(len(names)):
        _, coef = solve()
        fixed[k] = f32(coef[k])
    P = sum(fixed[k] * a ** names[k][1] for k in range(m + 1))
    D = 1 + sum(fixed[k] * a ** names[k][1] for k in range(m + 1, len(names)))
    err = np.abs(P / D / R - 1).max()
    return [fixed[k] for k in range(m + 1)], [fixed[k] for k in range(m + 1, len(names))], err


def literal(v):
    s = "%.9g" % v
    if "e" not in s and "." not in s:
        s += ".0"
    return s + "f"


def show(name, coefs, err):
    print("%s (max relative error of the fit in double: %.3g)" % (name, err))
    print("    " + ", ".join(literal(c) for c in coefs))


def main():
    show("exp: c0..c4 of 1 + r + r^2 (c0 + c1 r + ...)", *fit_exp())
    show("log: c0..c8 of f + f^2 (c0 + c1 f + ...)", *fit_log())
    show("tanh: c0..c4 of a + a^3 (c0 + c1 a^2 + ...)", *fit_tanh())
    p, d, err = fit_phi()
    show("Phi: p0..p4 of R(a) = P(a) / D(a), P(a) = p0 + p1 a + ...", p, err)
    show("Phi: d1..d5 of D(a) = 1 + d1 a + ...", d, err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
