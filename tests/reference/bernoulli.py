"""References for ``certify.bernoulli``: the Neyman–Pearson worst case of
``neyman_pearson_check`` in exact rational arithmetic, by enumerating every vector of per-pixel
spike counts (small d and T only); the Rényi divergences and bounds in mpmath at a precision
that covers their cancellations; the twin of ``_renyi_kernel``."""

import itertools
import math
from fractions import Fraction

import mpmath
import numpy as np


def _binomial_mass(k, T, p):
    return math.comb(T, k) * p**k * (1 - p) ** (T - k)


def neyman_pearson_exact(x, x_prime, T, p_a, p_b):
    """``(q_a_lower, q_b_upper)`` as Fractions: the greedy optimum of each linear programme
    over the atoms ``K ∈ {0..T}^d`` with exact masses (floats read exactly)."""
    xs = [Fraction(float(v)) for v in x]
    xps = [Fraction(float(v)) for v in x_prime]
    atoms = []
    for ks in itertools.product(range(T + 1), repeat=len(xs)):
        P = math.prod(_binomial_mass(k, T, a) for k, a in zip(ks, xs))
        Q = math.prod(_binomial_mass(k, T, b) for k, b in zip(ks, xps))
        if P or Q:
            atoms.append((P, Q))
    p_a, p_b = Fraction(float(p_a)), Fraction(float(p_b))

    def fill(order, target, strict):
        """Q-mass taken in ``order`` until the P-mass reaches ``target``, boundary atom
        fractionally; ``strict`` (the p_A programme) skips atoms with P = 0."""
        got_p = got_q = Fraction(0)
        for P, Q in order:
            if strict and P == 0:
                continue
            if P == 0 or got_p + P <= target:
                got_p, got_q = got_p + P, got_q + Q
            else:
                return got_q + Q * (target - got_p) / P
            if strict and got_p >= target:
                return got_q
        return got_q

    def ratio(atom):  # P/Q with Q = 0 as +inf
        P, Q = atom
        return (1, 0) if Q == 0 else (0, P / Q)

    q_a = Fraction(0) if p_a <= 0 else fill(sorted(atoms, key=ratio, reverse=True), p_a, True)
    q_b = fill(sorted(atoms, key=ratio), p_b, False)
    return q_a, q_b


# --------------------------------------------------------------------------- Rényi, mpmath
def _digits(*scales):
    """Decimal digits for a reference whose result, relative to terms of size 1, is about the
    product of the small ``scales``: 40 plus the decades of each."""
    return 40 + sum(max(0, -math.floor(math.log10(max(abs(s), 5e-324)))) for s in scales)


def mp_renyi_divergence(b, delta, order):
    """``D_α(Bernoulli(b + delta) ‖ Bernoulli(b))`` from its definition
    ``log(a^α b^{1−α} + (1−a)^α (1−b)^{1−α})/(α − 1)`` (KL at α = 1), in mpmath, with the float
    ``1 − b`` standing for the edge 1 as the library's callers pass it (``delta == 1 − b``).
    ``h − 1`` is of order ``α (α − 1) δ²/(b(1 − b))``: the precision covers those decades."""
    edge_one = delta == 1.0 - b
    with mpmath.workdps(_digits(delta, delta, order, order - 1.0 if order != 1.0 else 1.0)):
        bb, al = mpmath.mpf(b), mpmath.mpf(order)
        # exactly (delta may be an mpf holding a shift that is not a float)
        aa = mpmath.mpf(1) if edge_one else mpmath.fadd(bb, delta, exact=True)
        pairs = ((aa, bb), (1 - aa, 1 - bb))
        if delta == 0:
            return mpmath.mpf(0)
        if any(u > 0 and v == 0 for u, v in pairs) and al >= 1:
            return mpmath.inf
        if al == 1:
            return sum(u * mpmath.log(u / v) for u, v in pairs if u > 0)
        h = sum(u**al * v ** (1 - al) for u, v in pairs if u > 0 and v > 0)
        return mpmath.inf if h == 0 else mpmath.log(h) / (al - 1)


def mp_renyi_bound(p_a, p_b, order):
    """``β_α = −log(1 − p_A − p_B + 2k)``, ``k = ((p_A^{1−α} + p_B^{1−α})/2)^{1/(1−α)}``
    (``√(p_A p_B)`` at α = 1; at ``p_B = 0``: ``p_A 2^{−1/(1−α)}`` below order 1, else 0), in
    mpmath, for ``p_A > p_B``; ``1 − inner`` is of order ``α (p_A − p_B)²``."""
    with mpmath.workdps(_digits(p_a - p_b, p_a - p_b, order)):
        pa, pb, al = mpmath.mpf(p_a), mpmath.mpf(p_b), mpmath.mpf(order)
        if al == 1:
            k = mpmath.sqrt(pa * pb)
        elif pb == 0:
            k = pa * mpmath.mpf(2) ** (-1 / (1 - al)) if al < 1 else mpmath.mpf(0)
        else:
            s = 1 - al
            k = ((pa**s + pb**s) / 2) ** (1 / s)
        inner = 1 - pa - pb + 2 * k
        return mpmath.inf if inner == 0 else -mpmath.log(inner)


def mp_l1_worst(x, r, order):
    """``max Σ_i D_α(Bernoulli(x'_i) ‖ Bernoulli(x_i))`` over ``‖x' − x‖₁ ≤ r``, ``x' ∈ [0, 1]^d``,
    for α ≤ 1, in mpmath: the objective is convex (certify.bernoulli's docstring, step 4), so
    the maximum is at a vertex of one orthant's ``{0 ≤ u_i ≤ c_i, Σ u_i ≤ r}``: every pixel
    unmoved or pushed to an edge, at most one moved part way by what the budget leaves. All of
    them are enumerated (3^d full-push patterns), moves and budget exact. Small d only."""
    r = mpmath.mpf(r)
    # per pixel, its two full pushes as (move, cost): up to 1, down to 0 (exact in mpmath)
    pushes = [((1 - mpmath.mpf(v), 1 - mpmath.mpf(v)), (-mpmath.mpf(v), mpmath.mpf(v)))
              for v in x]
    best = mpmath.mpf(0)
    for pattern in itertools.product((None, 0, 1), repeat=len(x)):
        cost = sum((pushes[i][k][1] for i, k in enumerate(pattern) if k is not None),
                   mpmath.mpf(0))
        if cost > r:
            continue
        value = sum((mp_renyi_divergence(x[i], pushes[i][k][0], order)
                     for i, k in enumerate(pattern) if k is not None), mpmath.mpf(0))
        left = r - cost
        partial = mpmath.mpf(0)
        for i, k in enumerate(pattern):
            if k is None and left > 0:
                for move, cap in pushes[i]:
                    if cap > left:
                        part = left if move > 0 else -left
                        partial = max(partial, mp_renyi_divergence(x[i], part, order))
        best = max(best, value + partial)
    return best


# --------------------------------------------------------------------------- radius search
def bisect_every_row(worst, bound, hi, steps):
    """certify.bernoulli's bisection without stopping rows early: per row the lower end of the
    final bracket of ``steps`` halvings of [0, hi] (``hi`` where worst(hi) < bound, 0 where
    worst(0) fails). ``worst(r[k]) -> [k]``."""
    lo = np.zeros_like(bound)
    hi = np.full_like(bound, hi)
    ok0 = worst(lo) < bound
    ok_hi = worst(hi) < bound
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        ok = worst(mid) < bound
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    return np.where(ok_hi, hi, np.where(ok0, lo, 0.0))


def l1_worst_every_pixel(x, r, order, T, grid):
    """certify.bernoulli's L1 bound with each pixel's divergences computed for that pixel, not
    once per distinct value; rows as there (``r``, ``order`` [k])."""
    from certify.bernoulli import _renyi_shift

    r_col, o_col = r[:, None], order[:, None]
    caps = np.concatenate([1.0 - x, x])
    sign = np.concatenate([np.ones_like(x), -np.ones_like(x)])
    base = np.concatenate([x, x])
    cheap = (caps > 0.0) & (caps <= r_col)
    full = _renyi_shift(base, sign * caps, o_col) * np.ones(cheap.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        density = np.where(cheap, full / np.where(caps > 0, caps, 1.0), -1.0)
    idx = np.argsort(-density, axis=-1, kind="stable")
    w_s = np.take_along_axis(np.where(cheap, caps, 0.0), idx, axis=-1)
    v_s = np.take_along_axis(np.where(cheap, full, 0.0), idx, axis=-1)
    before = np.cumsum(w_s, axis=-1) - w_s

    def knapsack(b):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            frac = np.clip((b[..., None] - before[:, None, :])
                           / np.where(w_s > 0, w_s, 1.0)[:, None, :], 0.0, 1.0)
            take = np.where((w_s[:, None, :] > 0) & (frac > 0), frac * v_s[:, None, :], 0.0)
        return np.sum(take, axis=-1)

    delta = r_col * (np.arange(grid + 1) / grid)[None, :]
    phi = _renyi_shift(base, sign * np.minimum(delta[..., None], caps), o_col[..., None])
    g = np.max(np.where(cheap[:, None, :], 0.0, phi), axis=-1)
    partial = np.max(g[:, 1:] + knapsack(r_col - delta[:, :-1]), axis=-1)
    out = T * np.maximum(knapsack(r_col)[:, 0], partial)
    return np.where(order > 1.0, np.inf, np.where(r <= 0.0, 0.0, out))


# --------------------------------------------------------------------------- twin
_TINY = float(np.finfo(np.float64).tiny)


def _renyi_kernel(b, delta, delta_err, order, out):
    """``out[j] = D_α(Bernoulli(b[j] + delta[j]) ‖ Bernoulli(b[j]))`` with ``α = order[j]``, to a
    few ulps also where ``delta[j]`` is tiny (module docstring, "Floating point"). The shift is
    ``delta[j] + delta_err[j]`` exactly (``delta_err`` 0 for a shift that is a float, else the
    rounding error of ``delta = a − b``). The caller keeps ``b + delta`` in [0, 1] and passes
    ``delta = 1 − b`` (computed as here) for the edge 1.

    Per outcome i (spike: ``b_i = b``, ``δ_i = δ``; none: ``b_i = 1 − b``, ``δ_i = −δ``;
    ``a_i = b_i + δ_i``, ``ℓ_i = log(a_i/b_i)``): ``h = Σ_i b_i e^{α ℓ_i}``, and as
    ``Σ_i b_i (e^{ℓ_i} − 1) = 0``, ``h − 1 = (α − 1) C`` with ``C = Σ_i b_i χ(ℓ_i) ≥ 0``,
    ``χ(ℓ) = (e^{αℓ} − 1 − α(e^ℓ − 1))/(α − 1) = α Σ_{k≥2} G_{k−1} ℓ^k/k!``,
    ``G_m = 1 + α + … + α^{m−1}``. Then ``D = log1p((α − 1)C)/(α − 1)``. The terms of C are
    formed without the cancellations of ``log h``: the series for small ``|ℓ| max(1, α)``, else
    ``a_i ℓ exprel((α − 1)ℓ) − δ_i`` for α near 1, else ``(b_i expm1(αℓ) − α δ_i)/(α − 1)``
    (each, by a hand estimate, at most ~15 times the rounding of its terms).
    Where ``h < 1/2`` (or C overflows), ``log h`` is summed from the logs of its terms instead."""
    for j in range(b.shape[0]):
        al = order[j]
        if delta[j] == 0.0:
            out[j] = 0.0
            continue
        c_sum = 0.0  # C
        infinite = False
        for k in range(2):
            b_i = b[j] if k == 0 else 1.0 - b[j]
            d_i = delta[j] if k == 0 else -delta[j]
            a_i = b_i + d_i
            if d_i != -b_i or delta_err[j] != 0.0:  # (else the edge a_i = 0, as meant)
                # 1 - b and the shift may be rounded; where a_i is far below b_i their rounding
                # is a large part of it (a 1,200-example run: b = 1e-6, δ = 0.99986, 1 - b - δ
                # = 1.4e-4 off by 4e-13 relative, 102 ulps in D). Exact errors (|1| >= b) go
                # back in; d_i is the float nearest the shift either way.
                a_i += delta_err[j] if k == 0 else ((1.0 - b_i) - b[j]) - delta_err[j]
            if a_i <= 0.0:  # never happens under the perturbed law: a^α b^(1−α) = 0
                c_sum += b_i
                continue
            if b_i == 0.0:  # happens only under it: b^(1−α) = 0 below order 1, else D = ∞
                if al >= 1.0:
                    infinite = True
                    break
                c_sum += al * a_i / (1.0 - al)
                continue
            if abs(d_i) <= 0.5 * b_i:
                ell = math.log1p(d_i / b_i)
            elif a_i >= _TINY and b_i >= _TINY:  # two normal numbers <= 1: a normal ratio
                ell = math.log(a_i / b_i)
            else:  # a subnormal ratio would have lost digits, an overflowing one all
                ell = math.log(a_i) - math.log(b_i)
            if abs(ell) * max(1.0, al) <= 0.5:
                # α Σ_{k≥2} G_{k−1} ℓ^k/k!: one sign for ℓ > 0; for ℓ < 0 alternating, its
                # first term at least 3 times the rest (|t_3/t_2| = (1 + α)|ℓ|/3 ≤ 1/3)
                power = ell  # ℓ^m/m!
                g = 1.0  # G_{m−1}
                series = 0.0
                for m in range(2, 64):
                    power *= ell / m
                    step = g * power
                    series += step
                    if abs(step) <= 1e-17 * abs(series):
                        break
                    g = 1.0 + al * g
                c_i = b_i * al * series
            elif abs(al - 1.0) <= 0.5:
                y = (al - 1.0) * ell
                exprel = 1.0 if y == 0.0 else math.expm1(y) / y
                c_i = a_i * ell * exprel - d_i
            else:
                y = al * ell
                if y <= 700.0:
                    e = b_i * math.expm1(y)
                else:  # b_i e^y, overflowing to inf (then log h is used) without an exception
                    z = y + math.log(b_i)
                    e = math.exp(z) - b_i if z < 700.0 else np.inf
                c_i = (e - al * d_i) / (al - 1.0)
            c_sum += max(c_i, 0.0)
        if infinite:
            out[j] = np.inf
            continue
        y = (al - 1.0) * c_sum
        if abs(y) <= 0.5:
            out[j] = c_sum if y == 0.0 else c_sum * (math.log1p(y) / y)
        elif 0.5 < y < np.inf:  # log1p is well conditioned here
            out[j] = math.log1p(y) / (al - 1.0)
        else:  # h < 1/2, or C overflowed: log h from the logs of its terms
            log_h = -np.inf
            for k in range(2):
                b_i = b[j] if k == 0 else 1.0 - b[j]
                d_i = delta[j] if k == 0 else -delta[j]
                a_i = b_i + d_i
                if d_i != -b_i or delta_err[j] != 0.0:  # as above
                    a_i += delta_err[j] if k == 0 else ((1.0 - b_i) - b[j]) - delta_err[j]
                if a_i > 0.0 and b_i > 0.0:  # else the term is 0 (b_i = 0 reaches here at α < 1)
                    term = al * math.log(a_i) + (1.0 - al) * math.log(b_i)
                    hi = max(log_h, term)
                    log_h = hi + math.log1p(math.exp(-abs(log_h - term))) if hi > -np.inf else hi
            out[j] = max(log_h / (al - 1.0), 0.0)
