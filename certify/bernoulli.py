"""Certificates for Poisson-coded SNNs: Bernoulli smoothing of the image.

With Poisson (rate) coding an image ``x ∈ [0, 1]^d`` is presented for ``T`` steps as a spike
pattern ``S ∈ {0, 1}^{T×d}`` whose ``T·d`` coordinates are independent, ``S[t, i] ~
Bernoulli(x_i)`` (RSC §3.3, Eq. 11: ``E[X_P] = x``, ``Σ = diag(x(1 - x))``). A network ``f`` fed
with such patterns is therefore a *smoothed classifier* of the image,

    g(x) = argmax_c P_x(f(S) = c),    P_x = ⊗_{t,i} Bernoulli(x_i),

exactly as Gaussian randomized smoothing is for RSC coding. This module certifies ``g``:

* :func:`certified_radii` -- sound radii against L∞, L1 and L0 perturbations of the image
  (inside the [0, 1] box) from a lower bound ``p_A`` on ``P_x(f = c_A)`` and an upper bound
  ``p_B`` on every other class, with a Rényi-divergence argument (derivation below);
* :func:`neyman_pearson_check` -- the exact worst case for one given perturbed image ``x'``:
  the smallest ``P_{x'}(f = c_A)`` (and largest ``P_{x'}(f = c_B)``) over *all* base classifiers
  with ``P_x(f = c_A) ≥ p_A`` (``P_x(f = c_B) ≤ p_B``), from the exact distribution of the
  likelihood ratio of the two product-Bernoulli laws;
* :func:`certify_poisson` -- CERTIFY for Poisson coding: Monte Carlo counts with
  :func:`certify.smoothing.sample_counts`, Clopper–Pearson bounds with
  :func:`certify.smoothing.lower_confidence_bound`, then :func:`certified_radii`.

Derivation of the radii (Notes of :func:`certified_radii` cite this)
--------------------------------------------------------------------
Let ``P = P_x``, ``Q = P_{x'}``. Rényi divergence of order α ∈ (0, 1) ∪ (1, ∞),
``D_α(Q‖P) = log Σ_s Q(s)^α P(s)^{1-α} / (α − 1)`` (α = 1: Kullback–Leibler).

1. *Data processing.* For any base classifier, the class distributions ``q = Q∘f⁻¹`` and
   ``p = P∘f⁻¹`` satisfy ``D_α(q‖p) ≤ D_α(Q‖P)`` (every α > 0).
2. *The smallest divergence to a flipped prediction.* Lump the classes into ``{A, B, rest}``
   with ``p = (p_A, p_B, p_R)``. Among 3-point ``q`` with ``q_A ≤ q_B`` the divergence
   ``D_α(q‖p)`` is minimised on ``q_A = q_B = m`` (convex problem, ``p`` outside the set).
   Setting the derivative of ``m^α (p_A^{1-α} + p_B^{1-α}) + (1 − 2m)^α p_R^{1-α}`` to zero
   gives ``m/(1 − 2m) = k/p_R`` with ``k = ((p_A^{1-α} + p_B^{1-α})/2)^{1/(1-α)}`` (the power
   mean of order 1 − α) and the minimum ``D_α = −log(1 − p_A − p_B + 2k)`` (the same value for
   α < 1, where the sum is maximised). For α = 1, ``k = √(p_A p_B)``. Call it ``β_α(p_A, p_B)``
   (:func:`renyi_bound`). This is Li, Chen, Wang & Carin (2019), "Certified adversarial
   robustness with additive noise" (NeurIPS), Theorem 1, re-derived here for all α > 0.
   ``∂k/∂p_A = (k/p_A)^α / 2 ≤ 1/2`` and ``∂k/∂p_B ≥ 1/2`` (k lies between p_B and p_A), so
   ``β_α`` increases with ``p_A`` and decreases with ``p_B``: a lower bound on ``p_A`` and an
   upper bound on the largest other class give a smaller, still valid ``β_α`` (any class C
   that could overtake A has ``p_C ≤ p_B``; apply step 2 to ``{A, C, rest}``).
3. *Additivity.* ``P`` and ``Q`` are products over ``T·d`` coordinates, so
   ``D_α(Q‖P) = T Σ_i δ_α(x'_i, x_i)`` with ``δ_α(a, b) = D_α(Bern(a)‖Bern(b)) =
   log(a^α b^{1-α} + (1−a)^α (1−b)^{1-α}) / (α − 1)`` (:func:`renyi_divergence_bernoulli`).
   Hence ``g(x') = c_A`` whenever ``T Σ_i δ_α(x'_i, x_i) < β_α(p_A, p_B)`` for some α.
4. *Worst case over the ball, per coordinate.* ``h(a) = a^α b^{1-α} + (1−a)^α (1−b)^{1-α}``
   is convex (α > 1) or concave (α < 1) with its extremum 1 at ``a = b``, so ``δ_α(·, b)``
   decreases on [0, b] and increases on [b, 1] (for every α): its maximum over an interval is
   at an end point.

   * L∞ ball ∩ box: coordinates are independent; the maximum is
     ``T Σ_i max(δ_α(lo_i, x_i), δ_α(hi_i, x_i))``, ``lo_i = max(0, x_i − ε)``,
     ``hi_i = min(1, x_i + ε)``. Exact.
   * L0 (k pixels changed, each anywhere in [0, 1]): ``T ×`` the sum of the k largest
     ``w_i = max(δ_α(0, x_i), δ_α(1, x_i))``. Exact.
   * L1 ball ∩ box, orders α ≤ 1 only. For α < 1, ``δ_α(·, b) = −log h / (1 − α)`` is convex
     (−log is convex and decreasing, ``h`` concave); KL is convex too. The objective is then a
     convex function on a polytope, maximised at a vertex. Within one orthant the polytope is
     ``{0 ≤ u_i ≤ c_i, Σ u_i ≤ r}`` (``u_i`` the move of pixel i towards its box edge,
     ``c_i`` the distance to that edge): at a vertex every pixel is unmoved or pushed to its
     edge, except at most one moved partially. Pushing a pixel fully costs ``c_i ≤ r``
     ("cheap" items). Let ``K(b)`` be the fractional-knapsack (LP) value of the cheap full
     pushes (value ``δ_α(edge, x_i)``, weight ``c_i``) with budget b, nondecreasing in b.
     A vertex whose partial pixel is cheap is worth at most ``K(r)`` (by convexity the partial
     value lies below the chord ``(u_j/c_j) δ_α(edge, x_j)``). A vertex whose partial pixel j
     is not cheap, moved by δ ≤ r, is worth at most ``g(δ) + K(r − δ)`` with
     ``g(δ) = max_j δ_α(x_j ± δ, x_j)`` (non-cheap j) nondecreasing; on the grid
     ``δ_m = r m/G`` (G = 32) the supremum over δ is at most ``max_m g(δ_{m+1}) + K(r − δ_m)``.
     The bound is the larger of the two. Sound always; **exact when no pixel is within r of
     an edge it can move to** (no cheap items: the only vertices are single moves, and the
     bound is ``g(r)``).
     For α > 1, ``δ_α(·, b)`` is not convex (α = 2: ``log(1 + (a − b)²/(b(1 − b)))``), the
     vertex argument fails, and those orders are not used for L1.

   Each worst case is nondecreasing in the radius (the balls are nested), so for each α the
   certified radius is found by bisection (the lower end of the final bracket is returned),
   and the reported radius is the largest over a grid of orders (:data:`DEFAULT_ORDERS`);
   every order is a valid certificate, so maximising over them is sound.

Pixels at 0 or 1 are deterministic (never / always spike). Moving such a pixel costs
``δ_α(ε, 0) = α/(1 − α) · (−log(1 − ε))`` for α < 1 (first order in ε) and ``+∞`` for α ≥ 1;
flipping it completely (L0) makes the supports disjoint, ``+∞`` for every α, so the L0 radius is
0 whenever such a pixel exists -- which is also the truth for the worst-case base classifier
("class B if that pixel ever spikes").

Floating point: divergences and bounds are evaluated in float64, and formed so that no digit
is lost where they are small. Near the certificate's boundary they always are: the radius is
where ``T Σ_i δ_α`` reaches ``β_α``, each term a divergence between two nearly equal
probabilities, and ``β_α`` is small whenever ``p_A`` is close to ``p_B``. Evaluated as written,
``log h`` with ``h ≈ 1`` (and ``−log(1 − p_A − p_B + 2k)`` with its argument ≈ 1) keep only
their absolute rounding, ~1e-16, of a value that may be 1e-20 or less: until 2026-12-04 such
radii came out too large, 30 times for 41 pixels at 1/2, T = 14 and ``p_A − p_B = 3.9e-7``
(the largest of 73 orders picked the luckiest rounding; tests/test_bernoulli.py keeps the
case). Now :func:`renyi_divergence_bernoulli` writes ``h − 1`` as ``(α − 1) Σ_i b_i χ(ℓ_i)``
with terms of one sign (``_renyi_kernel``) and :func:`renyi_bound` writes
``β_α = −log1p(−2(A − k))`` with ``A − k`` from a series of one sign or exprel forms
(``_power_mean_gap``); the L∞, L1 and L0 worst cases take the moves themselves (``x ± ε`` is
never rounded to a float). The kernel adds back the exact rounding errors of ``1 − b`` and,
in :func:`renyi_divergence_bernoulli`, of the shift ``a − b``, which otherwise dominate a small
``1 − a`` (until 2026-12-04: up to 7.7e-4 relative for a dark pixel moved nearly to 1, and
wrong by any factor in the public function). Against mpmath references they are within 44 and
5 ulps in 52,000 and 44,000 random draws over every regime, 20 ulps in 49,000 draws of moves
nearly to an edge, and the public function within 208 ulps (at α|ℓ| = 637) in 20,000 draws of
any two probabilities (the tests allow 32 + α|ℓ| and 16: the rounding of ``ℓ = log(a/b)`` is
carried into ``e^{αℓ}``). A radius is accepted only where the worst case
stays below ``β_α (1 − 1e-12)`` (:data:`_ROUNDING_GUARD`): far above those errors (near the
boundary the moves, and so α|ℓ|, are small) and the ~log2(d) ulps of summing d terms of one
sign, at a cost of ~1e-12 relative in divergence. Where the Rényi certificate is exact --
``p_A = 1`` with a pixel at 0 or 1, where every α < 1 gives the worst-case classifier's radius
-- the guard is what keeps the certified closed ball short of the tie point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from certify.smoothing import (
    ABSTAIN,
    _alpha_iv,
    _callable_iv,
    _frozen,
    _int_iv,
    _real_iv,
    _seed_iv,
    _child,
    _top_two,
    lower_confidence_bound,
    rsc_fresh,
    sample_counts,
)
from evsnn._checks import flag_iv, float_dtype_iv
from evsnn._numba import njit, run_split
from evsnn._records import compact_repr

__all__ = [
    "NORMS",
    "DEFAULT_ORDERS",
    "renyi_divergence_bernoulli",
    "renyi_bound",
    "worst_case_divergence",
    "BernoulliRadii",
    "certified_radii",
    "NeymanPearsonCheck",
    "neyman_pearson_check",
    "PoissonCertificate",
    "certify_poisson",
    "poisson_thresholds",
]

#: The perturbation norms certified.
NORMS = ("linf", "l1", "l0")
#: Rényi orders tried by :func:`certified_radii`: 0.001 … 0.999, 1 (KL), 1.001 … 64.
DEFAULT_ORDERS = tuple(
    np.concatenate(
        [np.geomspace(1e-3, 0.5, 24), 1.0 - np.geomspace(0.45, 1e-3, 24), [1.0],
         1.0 + np.geomspace(1e-3, 63.0, 24)]
    ).tolist()
)
#: Relative margin kept below β_α when radii are accepted (module docstring, Floating point).
_ROUNDING_GUARD = 1e-12
#: Bisection steps for the L∞ and L1 radii (2^-52 of the search interval).
_BISECT_STEPS = 52
#: Grid of the partial move in the L1 bound (module docstring, step 4).
_L1_GRID = 32
#: Smallest normal float64 (a ratio below it has lost digits).
_TINY = float(np.finfo(np.float64).tiny)
#: Default cap on the number of likelihood-ratio atoms in :func:`neyman_pearson_check`.
MAX_ATOMS = 2_000_000


# --------------------------------------------------------------------------- validation
def _unit_vector_iv(name, x):
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a 1-D array of pixel values in [0, 1], got {x!r}")
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"{name} must be one non-empty flattened image of shape [d], got shape {arr.shape}; "
            "pass x.ravel()"
        )
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError(
            f"{name} must hold finite pixel values in [0, 1] (spike probabilities), got "
            f"min {arr.min()!r}, max {arr.max()!r}; clip or rescale the image"
        )
    return arr


def _order_iv(order):
    return _real_iv("order", order, lo=0.0, lo_open=True)


#: Orders the radii accept: the divergences and bounds are measured accurate to a few ulps
#: there (tests/test_bernoulli.py, conftest.RTOL_RENYI_BOUND), well inside the rounding guard;
#: at α = 1e10 the divergence was 5e-10 off (review), 500 times the guard.
ORDER_RANGE = (1e-3, 100.0)


def _orders_iv(orders):
    if orders is None:
        return np.asarray(DEFAULT_ORDERS)
    try:
        arr = np.atleast_1d(np.asarray(orders, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"orders={orders!r} must be a list of real orders: {exc}") from exc
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"orders={orders!r} must be a non-empty list of finite orders > 0")
    lo, hi = ORDER_RANGE
    if np.any(arr < lo) or np.any(arr > hi):
        raise ValueError(
            f"orders={orders!r} leave [{lo}, {hi}], where the divergences are known accurate "
            f"to the radii's rounding guard; the default orders span [{min(DEFAULT_ORDERS):g}, "
            f"{max(DEFAULT_ORDERS):g}]"
        )
    return arr


def _probabilities_iv(name, v):
    """``v`` as a float64 array of probabilities: finite and in [0, 1] (a NaN divergence of 0
    would certify anything)."""
    try:
        arr = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be probabilities (real numbers), got {v!r}") from exc
    if not np.all((arr >= 0) & (arr <= 1)):  # NaN fails both
        raise ValueError(f"{name} must hold probabilities in [0, 1], got {v!r}")
    return arr


def _norm_iv(norm):
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r} is not supported; use one of {list(NORMS)}")
    return norm


def _pab_iv(p_a, p_b):
    p_a = _real_iv("p_a_lower", p_a, lo=0.0, hi=1.0)
    if p_b is None:
        p_b = 1.0 - p_a
    p_b = _real_iv("p_b_upper", p_b, lo=0.0, hi=1.0)
    # the runner-up can never exceed what p_A leaves
    return p_a, min(p_b, 1.0 - p_a)


# --------------------------------------------------------------------------- divergences
def renyi_divergence_bernoulli(a, b, order):
    """Rényi divergence ``D_α(Bernoulli(a) ‖ Bernoulli(b))``, elementwise.

    Parameters
    ----------
    a, b : array_like
        Probabilities in [0, 1] (broadcast together).
    order : float
        α > 0; α = 1 is the Kullback–Leibler divergence.

    Returns
    -------
    numpy.ndarray
        ``log(a^α b^{1−α} + (1−a)^α (1−b)^{1−α}) / (α − 1)``, with ``0^α = 0`` and, for α > 1,
        ``+∞`` where ``a > 0 = b`` (or ``a < 1 = b``); for α < 1 a term with ``b = 0`` is 0.

    Examples
    --------
    >>> import numpy as np
    >>> from certify.bernoulli import renyi_divergence_bernoulli as D
    >>> float(D(0.5, 0.5, 2.0))
    0.0
    >>> # α = 2: log(1 + (a - b)²/(b(1 - b))) = log(1 + 0.04/0.25) = log 1.16
    >>> bool(np.isclose(D(0.7, 0.5, 2.0), np.log(1.16), rtol=1e-14))
    True
    >>> bool(np.isclose(D(1.0, 0.5, 0.5), np.log(2), rtol=1e-14))  # -log b for a = 1
    True
    """
    order = _order_iv(order)
    a, b = _probabilities_iv("a", a), _probabilities_iv("b", b)
    # a - b exactly, as the float shift and its rounding error (Knuth's TwoSum): a rounded
    # shift would carry its rounding into 1 - a (a = 1 - 1e-12, b = 1e-3: 1.4e8 ulps in D)
    delta = a - b
    back = delta - a
    err = (a - (delta - back)) + (-b - back)
    return _renyi_shift(b, delta, order, err)


def _renyi_shift(b, delta, order, delta_err=0.0):
    """``D_α(Bernoulli(b + delta + delta_err) ‖ Bernoulli(b))``, broadcast (``order`` may hold
    one order per row in the radius searches); the shift is given, not ``b + delta``, so that a
    move smaller than an ulp of ``b`` keeps its size (``delta_err``: the exact rest of a shift
    that is not a float)."""
    shape = np.broadcast_shapes(np.shape(b), np.shape(delta), np.shape(order),
                                np.shape(delta_err))
    # writable float64 copies: one compiled signature whatever the caller passed
    b, delta, delta_err, order = (np.array(np.broadcast_to(v, shape), dtype=np.float64).ravel()
                                  for v in (b, delta, delta_err, order))
    out = np.empty(shape)
    # elementwise, so the pieces on the threads give the same values for any number of them
    run_split(_renyi_kernel, b.size, (0, 1, 2, 3, 4), b, delta, delta_err, order,
              out.reshape(-1))
    return out


@njit
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


def renyi_bound(p_a_lower, p_b_upper=None, order=1.0):
    """Largest Rényi divergence ``D_α(Q‖P)`` that cannot flip the prediction (step 2 of the
    module docstring): ``β_α = −log(1 − p_A − p_B + 2 ((p_A^{1−α} + p_B^{1−α})/2)^{1/(1−α)})``.

    Parameters
    ----------
    p_a_lower : float
        Lower bound on the top class probability.
    p_b_upper : float, optional
        Upper bound on every other class; default ``1 - p_a_lower``.
    order : float, default 1.0
        α > 0.

    Returns
    -------
    float
        ``β_α ≥ 0``; 0 when ``p_a_lower ≤ p_b_upper`` (nothing certified); ``inf`` when no
        ``q`` with ``q_A ≤ q_B`` has a finite divergence.

    Notes
    -----
    The boundary ``p_B = 0`` (also reached through ``p_A = 1``, where the default ``p_B`` is
    ``1 − p_A = 0``): for α ≥ 1 every ``q`` with ``q_B > 0`` has ``D_α(q‖p) = ∞``, the only
    candidate is ``q = (0, 0, 1)``, and ``β_α = −log(1 − p_A)`` (``∞`` at ``p_A = 1``: then
    ``f = c_A`` on the whole support of ``P_x``). For α < 1, ``k = p_A 2^{−1/(1−α)}`` and
    ``β_α = −log(1 − p_A + p_A 2^{−α/(1−α)})``, finite also at ``p_A = 1``, where it is
    ``α/(1−α) log 2``: with one pixel at 0 moved to ε this is the exact condition
    ``(1 − ε)^T > 1/2`` of the worst-case classifier ("c_B when that pixel ever spikes").
    Everything is evaluated in logs: ``2^{−1/(1−α)}`` underflows for α within ~1e-3 of 1,
    and ``rest + 2k`` with ``k`` rounded to 0 would give ``∞`` at ``p_A = 1`` -- an unsound
    bound.

    Examples
    --------
    >>> import math
    >>> from certify.bernoulli import renyi_bound
    >>> # KL, p_A = 0.9, p_B = 0.1: -log(1 - (√0.9 - √0.1)²) = -log(2·√0.09) = -log 0.6
    >>> math.isclose(renyi_bound(0.9, 0.1, 1.0), -math.log(0.6), rel_tol=1e-14)
    True
    >>> # p_A = 1 (so p_B = 0): α/(1-α) log 2 for α < 1, unbounded for α >= 1
    >>> math.isclose(renyi_bound(1.0, order=0.9999), 9999 * math.log(2), rel_tol=1e-12)
    True
    >>> renyi_bound(1.0, order=1.0)
    inf
    """
    p_a, p_b = _pab_iv(p_a_lower, p_b_upper)
    order = _order_iv(order)
    if p_a <= p_b:
        return 0.0
    gap = _power_mean_gap(p_a, p_b, order)
    if gap <= 0.25:
        # β = −log(1 − 2 (A − k)): no digit lost where p_A and p_B are close (or both small),
        # which the form below (1 − p_A − p_B + 2k ≈ 1) would round away
        return max(0.0, -math.log1p(-2.0 * gap))
    log_k = _log_power_mean_half(p_a, p_b, order)
    rest = max(0.0, 1.0 - p_a - p_b)  # >= 0 already: _pab_iv caps p_b at 1 - p_a
    # log(rest + 2k) without forming k, which underflows (2^(-1/(1-α)) for p_B = 0 and α near
    # 1) exactly where rest = 0 (p_A = 1) makes it the whole answer
    log_rest = math.log(rest) if rest > 0.0 else -math.inf
    log_inner = float(np.logaddexp(log_rest, math.log(2.0) + log_k))
    if log_inner == -math.inf:
        return math.inf
    return max(0.0, -log_inner)


def _power_mean_gap(p_a, p_b, order):
    """``A − k`` for ``p_A > p_B ≥ 0``, ``A = (p_A + p_B)/2`` and ``k`` the power mean of order
    ``s = 1 − α`` (:func:`_log_power_mean_half`), accurate also when ``p_A − p_B`` is tiny.

    With ``u = (p_A − p_B)/(p_A + p_B)`` and ``E = ((1 + u)^s + (1 − u)^s)/2``:
    ``k = A E^{1/s}``, so ``A − k = −A expm1(log1p(E − 1)/s)``, and ``(E − 1)/s`` is formed
    without cancellation: for ``u max(1, |s|) ≤ 1/2`` as ``Σ_{j≥1} c_j u^{2j}``,
    ``c_j = (s − 1)(s − 2)…(s − 2j + 1)/(2j)!`` (all of one sign), else from
    ``log(1 ± u) = log(p_{A,B}/A)`` -- as ``(λ₊ exprel(sλ₊) + λ₋ exprel(sλ₋))/2`` for
    α > 1/2, as ``(p_A expm1(−αλ₊) + p_B expm1(−αλ₋))/(2As)`` otherwise (``(1 ± u)^s =
    (1 ± u)(1 ± u)^{−α}``); each at most a few times the rounding of its terms. Where E
    overflows, ``log E`` is taken from the logs of its terms. ``p_B = 0``: ``A − k = p_A/2``
    from order 1, ``p_A (1 − 2^{−α/(1−α)})/2`` below it."""
    if p_b == 0.0:  # k = 0 from order 1; below it k = p_A 2^{−1/s}
        if order >= 1.0:
            return 0.5 * p_a
        return -0.5 * p_a * math.expm1(-order / (1.0 - order) * math.log(2.0))
    s = 1.0 - order
    mean = 0.5 * (p_a + p_b)
    u = (p_a - p_b) / (p_a + p_b)
    if u * max(1.0, abs(s)) <= 0.5:
        u2 = u * u
        # c_1 = (s − 1)/2 = −α/2, and s − i = −(α + i − 1): from α, as s − 1 would lose
        # the digits of a small α
        coef, power, q = -0.5 * order, u2, 0.0
        for j in range(1, 200):
            step = coef * power
            q += step
            if abs(step) <= 1e-17 * abs(q):
                break
            coef *= (order + 2 * j - 1) * (order + 2 * j) / ((2 * j + 1) * (2 * j + 2))
            power *= u2
    else:
        # log(1 ± u); log(p_B/A) where 1 − u has lost the digits of a small p_B
        lam_a = math.log1p(u)
        lam_b = math.log1p(-u) if u <= 0.5 else math.log(p_b / mean)
        if order > 0.5:
            q = 0.5 * (_exprel_times(s, lam_a) + _exprel_times(s, lam_b))
        else:
            q = (p_a * math.expm1(-order * lam_a) + p_b * math.expm1(-order * lam_b)) / (
                2.0 * mean * s)
        if not math.isfinite(q):  # E overflows (s < 0, p_B ≪ p_A): log E, far from 0
            return -mean * math.expm1(
                (float(np.logaddexp(s * lam_a, s * lam_b)) - math.log(2.0)) / s)
    y = s * q  # E − 1 >= −1/2
    log_e_over_s = q if y == 0.0 else q * (math.log1p(y) / y)
    return -mean * math.expm1(log_e_over_s)


def _exprel_times(s, lam):
    """``expm1(s λ)/s`` (λ at s = 0), without dividing by a tiny s; ``inf`` on overflow."""
    y = s * lam
    if y == 0.0:
        return lam
    if y > 709.0:
        return math.inf if lam > 0 else -math.inf
    return lam * (math.expm1(y) / y)


def _log_power_mean_half(p_a, p_b, order):
    """``log k``, ``k = ((p_A^s + p_B^s)/2)^{1/s}`` with ``s = 1 − α`` (``√(p_A p_B)`` at α = 1),
    for ``p_A > p_B ≥ 0``; ``-inf`` when ``k = 0`` (``p_B = 0`` and α ≥ 1).

    With ``a = s log p_A``, ``b = s log p_B``, ``m = max(a, b)``, ``d = |a − b|``:
    ``log((e^a + e^b)/2) = m + log1p(expm1(−d)/2)``, accurate also when ``d`` is tiny (α near
    1); ``m/s`` is ``log p_A`` for ``s > 0`` and ``log p_B`` for ``s < 0``.
    """
    la = math.log(p_a)
    lb = math.log(p_b) if p_b > 0.0 else -math.inf
    if order == 1.0:
        return 0.5 * (la + lb)
    s = 1.0 - order
    d = abs(s) * (la - lb)  # inf when p_B = 0: expm1(-inf) = -1, the term is -log 2
    return (la if s > 0.0 else lb) + math.log1p(math.expm1(-d) / 2.0) / s


def _linf_worst(x, eps, order, T):
    """Exact worst case over the L∞ ball; ``eps`` and ``order`` may be arrays [k] (rows)."""
    eps = np.asarray(eps, dtype=np.float64)[..., None]
    order = np.asarray(order, dtype=np.float64)[..., None]
    # the moves themselves, not the rounded end points x ± ε (a move below an ulp of x counts)
    down = -np.minimum(eps, x)
    up = np.minimum(eps, 1.0 - x)
    d = np.maximum(_renyi_shift(x, down, order), _renyi_shift(x, up, order))
    return T * np.sum(d, axis=-1)


def _l0_weights(x, order):
    order = np.asarray(order, dtype=np.float64)[..., None]
    return np.maximum(_renyi_shift(x, -x, order), _renyi_shift(x, 1.0 - x, order))


def _l0_worst(x, k, order, T):
    if k <= 0:
        return 0.0
    w = np.sort(_l0_weights(x, order))[::-1]
    return T * float(np.sum(w[: int(k)]))


def _l1_worst(x, r, order, T):
    """Upper bound over the L1 ball (exact without cheap items); ``r`` and ``order`` may be
    arrays [k] (rows); ``inf`` for orders > 1. Module docstring, step 4."""
    shape = np.broadcast(np.asarray(r), np.asarray(order)).shape
    r, order = np.broadcast_arrays(np.atleast_1d(np.asarray(r, dtype=np.float64)),
                                   np.atleast_1d(np.asarray(order, dtype=np.float64)))
    r_col, o_col = r[:, None], order[:, None]
    # an item's divergences depend on its pixel's value only: they are computed once per value
    # (an 8-bit image has at most 256) and the knapsack takes them per pixel
    values, of_pixel = np.unique(x, return_inverse=True)
    base = np.concatenate([values, values])
    value_caps = np.concatenate([1.0 - values, values])  # up to 1, down to 0
    sign = np.concatenate([np.ones_like(values), -np.ones_like(values)])
    cheap_value = (value_caps > 0.0) & (value_caps <= r_col)  # [k, 2 values]
    item = np.concatenate([of_pixel, of_pixel + values.size])  # per pixel and direction
    caps = value_caps[item]
    full = _renyi_shift(base, sign * value_caps, o_col)[:, item]
    cheap = (caps > 0.0) & (caps <= r_col)  # [k, 2d]
    # fractional knapsack K(b) over the full pushes of cheap items, as a function of budget b
    with np.errstate(divide="ignore", invalid="ignore"):
        density = np.where(cheap, full / np.where(caps > 0, caps, 1.0), -1.0)
    idx = np.argsort(-density, axis=-1, kind="stable")
    w_s = np.take_along_axis(np.where(cheap, caps, 0.0), idx, axis=-1)
    v_s = np.take_along_axis(np.where(cheap, full, 0.0), idx, axis=-1)
    before = np.cumsum(w_s, axis=-1) - w_s

    def knapsack(b):  # b [k, G] -> [k, G]
        # a subnormal cap (pixel 5e-324) overflows the fraction to inf, which the clip makes 1
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            frac = np.clip((b[..., None] - before[:, None, :])
                           / np.where(w_s > 0, w_s, 1.0)[:, None, :], 0.0, 1.0)
            take = np.where((w_s[:, None, :] > 0) & (frac > 0), frac * v_s[:, None, :], 0.0)
        return np.sum(take, axis=-1)

    # the partial move δ of one non-cheap item (c_j > r >= δ): g(δ) = max_j δ_α(x_j ± δ, x_j),
    # nondecreasing in δ; K is nondecreasing in the budget. On the grid δ_m = r m / G,
    # sup_δ g(δ) + K(r - δ) <= max_m g(δ_{m+1}) + K(r - δ_m).
    frac_grid = np.arange(_L1_GRID + 1) / _L1_GRID
    delta = r_col * frac_grid[None, :]  # [k, G+1]
    phi = _renyi_shift(base, sign * np.minimum(delta[..., None], value_caps),
                       o_col[..., None])
    g = np.max(np.where(cheap_value[:, None, :], 0.0, phi), axis=-1)  # [k, G+1]
    partial = np.max(g[:, 1:] + knapsack(r_col - delta[:, :-1]), axis=-1)
    # a vertex whose partial item is cheap: its chord keeps it inside the fractional knapsack
    out = T * np.maximum(knapsack(r_col)[:, 0], partial)
    out = np.where(order > 1.0, np.inf, np.where(r <= 0.0, 0.0, out))
    return out.reshape(shape)


def worst_case_divergence(x, radius, norm, *, n_steps, order):
    """Largest ``D_α(P_{x'} ‖ P_x)`` over the ball of ``radius`` around ``x`` inside [0, 1]^d.

    Parameters
    ----------
    x : array_like, shape (d,)
        Pixel values (spike probabilities) in [0, 1].
    radius : float
        Ball radius ≥ 0 (for ``"l0"``: the number of pixels that may change, an integer).
    norm : {'linf', 'l1', 'l0'}
    n_steps : int
        Number of time steps T (the divergence is T times the per-step one).
    order : float
        Rényi order α > 0.

    Returns
    -------
    float
        The exact maximum for L∞ and L0; for L1 an upper bound, exact when no pixel lies
        within ``radius`` of a box edge it can move to, and ``inf`` for α > 1 (module
        docstring, step 4).

    Examples
    --------
    >>> import numpy as np
    >>> from certify.bernoulli import worst_case_divergence, renyi_divergence_bernoulli as D
    >>> x = np.array([0.5, 0.2])
    >>> v = worst_case_divergence(x, 0.1, "linf", n_steps=3, order=1.0)
    >>> bool(np.isclose(v, 3 * (max(D(0.4, 0.5, 1.0), D(0.6, 0.5, 1.0))
    ...                         + max(D(0.1, 0.2, 1.0), D(0.3, 0.2, 1.0))), rtol=1e-14))
    True
    """
    x = _unit_vector_iv("x", x)
    norm = _norm_iv(norm)
    order = _order_iv(order)
    T = _int_iv("n_steps", n_steps, 1)
    if norm == "l0":
        k = _int_iv("radius", radius, 0)
        return _l0_worst(x, k, order, T)
    r = _real_iv("radius", radius, lo=0.0)
    if norm == "linf":
        return float(_linf_worst(x, r, order, T))
    return float(_l1_worst(x, r, order, T))


# --------------------------------------------------------------------------- radii
@dataclass(frozen=True)
class BernoulliRadii:
    """Certified radii for a Bernoulli-smoothed (Poisson-coded) classifier.

    Attributes
    ----------
    linf, l1 : float
        The smoothed prediction is certified on the closed ball of this radius (∩ [0, 1]^d).
    l0 : int
        Number of pixels that may be changed arbitrarily (within [0, 1]).
    order_linf, order_l1, order_l0 : float
        The Rényi order that gave each radius (nan when the radius is 0).
    p_a_lower, p_b_upper : float
        The probability bounds used.
    n_steps : int
        Number of time steps T.
    """

    linf: float
    l1: float
    l0: int
    order_linf: float
    order_l1: float
    order_l0: float
    p_a_lower: float
    p_b_upper: float
    n_steps: int

    def radius(self, norm):
        """The radius for ``norm`` in ``('linf', 'l1', 'l0')``."""
        return getattr(self, _norm_iv(norm))


def _bisect(worst, bound, hi):
    """Per row a radius r in [0, hi] with worst(r) < bound (worst nondecreasing in r; 0 where
    none), the largest over rows found as if every row were bisected to the end.
    ``bound`` [k] (one per order); ``worst(r, rows)`` gives worst at ``r[i]`` for the orders
    ``rows[i]``.

    Only the largest entry is used, so a row stops once its bracket lies below another row's
    certified lower end: its final lower end would be smaller still. Its entry is then the
    lower end it had (a radius, not its largest). The row that attains the maximum, and the
    maximum, are those of bisecting every row (the rows are computed independently), at a
    fraction of the cost: the rows share one tree of brackets, so after a few halvings only
    the leader's bracket and the one below it are still searched."""
    every = np.arange(bound.shape[0])
    lo = np.zeros_like(bound)
    hi = np.full_like(bound, hi)
    ok0 = worst(lo, every) < bound
    ok_hi = worst(hi, every) < bound
    if np.any(ok_hi):  # the whole interval: a row without it ends below, as worst(hi) fails
        return np.where(ok_hi, hi, 0.0)
    live = ok0.copy()
    for _ in range(_BISECT_STEPS):
        rows = np.flatnonzero(live)
        if rows.size == 0:  # no row certifies a radius above 0
            break
        mid = 0.5 * (lo[rows] + hi[rows])
        ok = worst(mid, rows) < bound[rows]
        lo[rows] = np.where(ok, mid, lo[rows])
        hi[rows] = np.where(ok, hi[rows], mid)
        # only rows strictly below the leader stop: a midpoint rounded up can carry a lower
        # end to its upper end, which could then tie, and ties go to the first row
        live &= hi >= np.max(np.where(ok0, lo, 0.0))
    return np.where(ok0, lo, 0.0)


def certified_radii(x, p_a_lower, p_b_upper=None, *, n_steps, orders=None, norms=NORMS):
    """Certified L∞, L1 and L0 radii of the Bernoulli-smoothed classifier at ``x``.

    Parameters
    ----------
    x : array_like, shape (d,)
        The image; pixel values are the spike probabilities, in [0, 1].
    p_a_lower : float
        Lower bound on ``P_x(f = c_A)``.
    p_b_upper : float, optional
        Upper bound on ``max_{c ≠ c_A} P_x(f = c)``; default ``1 - p_a_lower``.
    n_steps : int
        Number of Poisson time steps T.
    orders : sequence of float, optional
        Rényi orders to try (default :data:`DEFAULT_ORDERS`), each in :data:`ORDER_RANGE`.
    norms : sequence of str, default ('linf', 'l1', 'l0')
        Norms to compute; the others are reported as 0.

    Returns
    -------
    BernoulliRadii

    Raises
    ------
    TypeError
        If ``x`` is not an array of reals, a bound is not a real number or ``norms`` is a
        single string.
    ValueError
        If ``x`` is not 1-D in [0, 1], a bound is outside [0, 1], ``n_steps < 1``, an order is
        not positive, or a norm is unknown.

    Notes
    -----
    Every ``x'`` in the ball satisfies ``T Σ_i δ_α(x'_i, x_i) < β_α(p_A, p_B)`` for the
    reported order, hence (data processing, Li et al. 2019 Theorem 1) ``g(x') = c_A``.
    Derivation and the exactness of each worst case: module docstring. The Bernoulli model is
    RSC §3.3, Eq. 11.

    Examples
    --------
    One pixel at 1/2, T = 1, p_A = 0.99 (p_B = 0.01). At α = 1/2 the bound is
    ``−log(1 − 1 + 2·((√0.99 + √0.01)/2)²) = −log(0.5 (√0.99 + 0.1)²)``.

    >>> import numpy as np
    >>> from certify.bernoulli import certified_radii
    >>> r = certified_radii(np.array([0.5]), 0.99, n_steps=1, orders=[0.5])
    >>> # δ_½(a, ½) = -2 log(√(a/2) + √((1-a)/2)) reaches the bound at a = 0.99: ε = 0.49
    >>> round(r.linf, 9), round(r.l1, 9), r.l0
    (0.49, 0.49, 0)
    """
    # every worst case is symmetric in the pixels: sorted, the sums over them round alike for
    # any pixel order (review: the L1 radius moved in the last bits under permutations)
    x = np.sort(_unit_vector_iv("x", x))
    p_a, p_b = _pab_iv(p_a_lower, p_b_upper)
    T = _int_iv("n_steps", n_steps, 1)
    orders = _orders_iv(orders)
    if isinstance(norms, str):  # was iterated letter by letter: "norm='l' is not supported"
        raise TypeError(f"norms must be a sequence of norm names, got the string {norms!r}; "
                        f"pass norms=({norms!r},)")
    if norms is None or not hasattr(norms, "__iter__"):
        raise TypeError(f"norms must be a sequence of norm names such as ('linf', 'l1'), got "
                        f"{type(norms).__name__} {norms!r}")
    norms = tuple(_norm_iv(nm) for nm in norms)
    best = {"linf": (0.0, math.nan), "l1": (0.0, math.nan), "l0": (0, math.nan)}
    bounds = np.array([renyi_bound(p_a, p_b, float(o)) for o in orders])
    use = bounds > 0.0
    orders, bounds = orders[use], bounds[use] * (1.0 - _ROUNDING_GUARD)
    if orders.size:
        if "linf" in norms:
            r = _bisect(lambda e, rows: _linf_worst(x, e, orders[rows], T), bounds, 1.0)
            j = int(np.argmax(r))
            if r[j] > 0:
                best["linf"] = (float(r[j]), float(orders[j]))
        sub = orders <= 1.0
        if "l1" in norms and np.any(sub):
            l1_hi = float(np.sum(np.maximum(x, 1.0 - x)))
            o1 = orders[sub]
            r = _bisect(lambda e, rows: _l1_worst(x, e, o1[rows], T), bounds[sub], l1_hi)
            j = int(np.argmax(r))
            if r[j] > 0:
                best["l1"] = (float(r[j]), float(o1[j]))
        if "l0" in norms:
            w = -np.sort(-_l0_weights(x, orders), axis=-1)
            cum = T * np.cumsum(w, axis=-1)
            k = np.sum(cum < bounds[:, None], axis=-1)
            j = int(np.argmax(k))
            if k[j] > 0:
                best["l0"] = (int(k[j]), float(orders[j]))
    return BernoulliRadii(
        float(best["linf"][0]), float(best["l1"][0]), int(best["l0"][0]),
        best["linf"][1], best["l1"][1], best["l0"][1], p_a, p_b, T,
    )


# --------------------------------------------------------------------------- Neyman-Pearson
@dataclass(frozen=True)
class NeymanPearsonCheck:
    """Result of :func:`neyman_pearson_check`.

    Attributes
    ----------
    q_a_lower : float
        ``min P_{x'}(f = c_A)`` over all base classifiers with ``P_x(f = c_A) ≥ p_a_lower``.
    q_b_upper : float
        ``max P_{x'}(f = c)`` over all base classifiers with ``P_x(f = c) ≤ p_b_upper``.
    certified : bool
        ``q_a_lower > q_b_upper + margin``: every such classifier's smoothed prediction at
        ``x'`` is ``c_A``, also after the rounding of the masses.
    n_atoms : int
        Number of atoms of the likelihood-ratio distribution that were enumerated.
    margin : float
        Bound on the rounding error of ``q_a_lower − q_b_upper`` (the masses are
        ``exp(log-pmf)`` summed in float64): a gap within it is not certified.
    """

    q_a_lower: float
    q_b_upper: float
    certified: bool
    n_atoms: int
    margin: float = 0.0


def _ratio_atoms(x, xp, T, max_atoms):
    """log P and log Q of the atoms of the likelihood ratio (pixels grouped by (x_i, x'_i))."""
    changed = x != xp
    pairs = np.stack([x[changed], xp[changed]], axis=1)
    log_p = np.zeros(1)
    log_q = np.zeros(1)
    if pairs.shape[0] == 0:
        return log_p, log_q
    uniq, counts = np.unique(pairs, axis=0, return_counts=True)
    size = 1
    for m in counts:
        size *= int(m) * T + 1
        if size > max_atoms:
            raise ValueError(
                f"the likelihood ratio of x and x_prime has more than max_atoms={max_atoms} "
                "atoms (it grows like the product over distinct changed pixels of "
                "(#pixels·T + 1)); change fewer pixels, share values, or raise max_atoms"
            )
    for (a, b), m in zip(uniq, counts):
        n = int(m) * T
        k = np.arange(n + 1)
        lp = binom.logpmf(k, n, a)  # K = spikes of the group under P (x_i = a)
        lq = binom.logpmf(k, n, b)  # under Q (x'_i = b)
        keep = np.isfinite(lp) | np.isfinite(lq)
        lp, lq = lp[keep], lq[keep]
        log_p = (log_p[:, None] + lp[None, :]).ravel()
        log_q = (log_q[:, None] + lq[None, :]).ravel()
    return log_p, log_q


def _np_min_q(p, q, log_ratio, target, rest=False):
    """``min Σ φ_j q_j`` over ``φ ∈ [0, 1]^atoms`` with ``Σ φ_j p_j ≥ target`` (Neyman–Pearson).

    Atoms are taken in decreasing ``log_ratio = log(p/q)`` (``+inf``, i.e. ``q = 0``, first:
    they add P-mass at no Q-cost), the boundary atom fractionally. Atoms with ``P = 0``
    (``log_ratio = -inf``) never help to meet the constraint and are never taken -- also when
    ``target`` exceeds the float sum of the other atoms' P-masses by rounding (``target = 1``):
    then every atom with ``P > 0`` is taken, which is the exact answer at ``target = 1``.
    ``rest=True``: the Q-mass of what the optimum leaves out instead (see :func:`_fill_in_order`).
    """
    if target <= 0.0:
        return float(np.sum(q)) if rest else 0.0
    possible = log_ratio > -np.inf
    never = float(np.sum(q[~possible])) if rest else 0.0
    p, q, key = p[possible], q[possible], -log_ratio[possible]
    idx = np.lexsort((np.arange(key.size), key))
    # the first atom at which the P-mass reaches the target (cum[j] > cum[j-1], so p[j] > 0)
    return never + _fill_in_order(p[idx], q[idx], target, "left", rest)


def _np_max_q(p, q, log_ratio, target, rest=False):
    """``max Σ φ_j q_j`` over ``φ ∈ [0, 1]^atoms`` with ``Σ φ_j p_j ≤ target`` (Neyman–Pearson).

    Atoms are taken in increasing ``log_ratio``: every atom with ``P = 0`` (``-inf``) first, at
    no P-cost, *whatever* ``target`` is (also ``target = 0``), then atoms while their P-mass
    fits, the boundary atom fractionally. Atoms with ``Q = 0`` come last and add nothing.
    At ``target = 0`` only the ``P = 0`` atoms fit: an atom whose P-mass is positive but
    underflowed to 0.0 in ``exp`` (x = 2⁻¹⁰²², T = 2: P(two spikes) = 2⁻²⁰⁴⁴) is not free.
    ``rest=True``: the Q-mass of what the optimum leaves out instead (see :func:`_fill_in_order`).
    """
    if target <= 0.0:
        free = log_ratio == -np.inf
        return float(np.sum(q[~free] if rest else q[free]))
    idx = np.lexsort((np.arange(log_ratio.size), log_ratio))
    # every atom whose cumulated P-mass fits (side="right": also one that meets the target
    # exactly), then a fraction of the next one (p[j] > 0)
    return _fill_in_order(p[idx], q[idx], target, "right", rest)


def _fill_in_order(p, q, target, side, rest=False):
    """Q-mass of the atoms taken in the given order up to atom ``j``, the first whose cumulated
    P-mass reaches ``target`` (``searchsorted`` with ``side``), that one fractionally; with
    ``rest``, the Q-mass of the others (the complementary programme's optimum summed over its
    own atoms: ``1 −`` the taken mass is off by the rounding of Σ Q ≈ 1, ~1e-16, and turned
    an exact 0 into 2.2e-16 that outranked a q_B of 2e-18)."""
    cum = np.cumsum(p)
    j = int(np.searchsorted(cum, target, side=side))
    if j >= p.size:
        return 0.0 if rest else float(np.sum(q))
    before = cum[j - 1] if j > 0 else 0.0
    frac = min(1.0, max(0.0, (target - before) / p[j]))
    if rest:
        return float((1.0 - frac) * q[j] + np.sum(q[j + 1:]))
    return float(np.sum(q[:j]) + frac * q[j])


def neyman_pearson_check(x, x_prime, *, n_steps, p_a_lower, p_b_upper=None, max_atoms=MAX_ATOMS):
    """Exact worst case at one perturbed image ``x'`` (Neyman–Pearson).

    Parameters
    ----------
    x, x_prime : array_like, shape (d,)
        Clean and perturbed images in [0, 1].
    n_steps : int
        Number of Poisson time steps T.
    p_a_lower : float
        Lower bound on ``P_x(f = c_A)``.
    p_b_upper : float, optional
        Upper bound on every other class at ``x``; default ``1 - p_a_lower``.
    max_atoms : int, default 2,000,000
        Refuse (ValueError) when the likelihood ratio has more atoms than this.

    Returns
    -------
    NeymanPearsonCheck

    Raises
    ------
    TypeError, ValueError
        Invalid arguments; shapes of ``x`` and ``x_prime`` differ; too many atoms.

    Notes
    -----
    ``P = ⊗ Bern(x_i)``, ``Q = ⊗ Bern(x'_i)`` over ``T·d`` coordinates (RSC Eq. 11). The
    likelihood ratio ``P(S)/Q(S) = Π_i (x_i/x'_i)^{K_i} ((1−x_i)/(1−x'_i))^{T−K_i}`` depends on
    ``S`` only through the spike counts ``K_i``; pixels with equal ``(x_i, x'_i)`` share one
    binomial count ``K ~ Bin(m T, ·)``, unchanged pixels drop out. The atoms of the ratio are
    the combinations of these counts, with their exact P- and Q-masses.

    A (possibly randomised) base classifier puts class A on atom j with probability
    ``φ_j ∈ [0, 1]``. Neyman–Pearson lemma, i.e. the linear programme over φ:

    * ``q_a_lower = min Σ φ_j Q_j`` subject to ``Σ φ_j P_j ≥ p_A``. Take atoms in decreasing
      ``P/Q``: those with ``Q = 0`` (ratio ∞) first -- they buy P-mass for nothing -- and the
      boundary atom fractionally. Atoms with ``P = 0`` (ratio 0) are never taken: they add
      Q-cost and no P-mass. At ``p_A = 1`` every atom with ``P > 0`` is needed and the answer
      is ``1 − Q(P = 0)``. ``p_A = 0`` gives 0.
    * ``q_b_upper = max Σ φ_j Q_j`` subject to ``Σ φ_j P_j ≤ p_B`` (for any class other than
      A). Take atoms in increasing ``P/Q``: every atom with ``P = 0`` first, **also when**
      ``p_B = 0`` -- the worst-case classifier gives class B the patterns that cannot occur at
      ``x`` for free, so ``q_b_upper ≥ Q(P = 0)`` always -- then the others while their P-mass
      fits, the boundary atom fractionally.

    Both programmes are complements of each other (``φ → 1 − φ``): ``q_a_lower(p) = 1 −
    q_b_upper(1 − p)``; a target above 1/2 is solved through its complement, whose partial sums
    stay small and exact enough to resolve a target within 1e-16 of 1.

    Each optimum is a vertex of its polytope, with at most one fractional atom, so the greedy
    value equals the minimum (maximum) over all deterministic classifiers plus one randomised
    boundary atom; a target that ends exactly at an atom's edge takes that atom whole and
    nothing of the next. The value does not depend on how equal ratios are ordered (a
    fraction of an atom carries the same ratio). Cohen et al. (2019) use the same argument
    for Gaussians. ``certified`` compares the two bounds, each valid for its own class, so it
    is sound (the two worst cases need not be one classifier), and only beyond ``margin``, a
    bound on the rounding of the masses (``u (32 (1 + max |log mass|) + 2 n_atoms)``,
    u = 2⁻⁵²): an exact tie is not certified.

    Examples
    --------
    One pixel, T = 1, x = 1/2 → x' = 0.9: the worst classifier puts A on "no spike"
    (P = 0.5, Q = 0.1) first, then on "spike" (P/Q = 0.5/0.9).

    >>> import numpy as np
    >>> from certify.bernoulli import neyman_pearson_check
    >>> r = neyman_pearson_check([0.5], [0.9], n_steps=1, p_a_lower=0.75)
    >>> round(r.q_a_lower, 12)  # 0.1 + (0.25 / 0.5) * 0.9
    0.55
    >>> round(r.q_b_upper, 12), r.certified  # 1 - 0.55
    (0.45, True)

    A black pixel lit (x = 0 → x' = 1/2) with ``p_A = 1``: "spike" never occurs under ``x``
    (P = 0), so class B may take it although ``p_B = 0``: a tie, not certified.

    >>> r = neyman_pearson_check([0.0], [0.5], n_steps=1, p_a_lower=1.0)
    >>> r.q_a_lower, r.q_b_upper, r.certified
    (0.5, 0.5, False)
    """
    x = _unit_vector_iv("x", x)
    xp = _unit_vector_iv("x_prime", x_prime)
    if xp.shape != x.shape:
        raise ValueError(
            f"x_prime has shape {xp.shape} but x has shape {x.shape}; pass images of equal size"
        )
    T = _int_iv("n_steps", n_steps, 1)
    p_a, p_b = _pab_iv(p_a_lower, p_b_upper)
    max_atoms = _int_iv("max_atoms", max_atoms, 1)
    log_p, log_q = _ratio_atoms(x, xp, T, max_atoms)
    p, q = np.exp(log_p), np.exp(log_q)
    with np.errstate(invalid="ignore", divide="ignore"):
        lr = log_p - log_q  # +inf where Q = 0, -inf where P = 0
    # a target near 1 is lost in the rounding of the P-mass sums near 1 (p_A = 1 − 2⁻⁵³ gave
    # q_a = 0.248 against the exact 0.720): above 1/2 the complementary programme, whose
    # target 1 − p (exact in float64) is met by small sums, gives the same optimum; its
    # value is the Q-mass of the atoms it leaves out
    q_a = (_np_max_q(p, q, lr, 1.0 - p_a, rest=True) if p_a > 0.5
           else _np_min_q(p, q, lr, p_a))
    q_b = (_np_min_q(p, q, lr, 1.0 - p_b, rest=True) if p_b > 0.5
           else _np_max_q(p, q, lr, p_b))
    q_a = min(1.0, q_a)
    q_b = min(1.0, q_b)
    # the masses are exp(log-pmf), each log off by ~u·|log| (up to a few ulps of the pmf's own
    # arithmetic), and summed in float64 (at most ~n·u of the sum, which is <= 1): a gap
    # within that bound is rounding's, not the classifier's (an exact tie came out
    # 0.5 > 0.49999999999999994 and was certified; a worst case flipped by 2.4e-14 too). The
    # factor 32 leaves about 10x the errors a review measured (2.9e-14 at T = 68, 2e-13 at 600)
    u = np.finfo(np.float64).eps
    logs = np.concatenate([log_p[np.isfinite(log_p)], log_q[np.isfinite(log_q)]])
    scale = float(np.max(np.abs(logs))) if logs.size else 0.0
    margin = u * (32.0 * (1.0 + scale) + 2.0 * p.size)
    return NeymanPearsonCheck(q_a, q_b, bool(q_a - q_b > margin), int(p.size), margin)


# --------------------------------------------------------------------------- CERTIFY
def poisson_thresholds(x):
    """Thresholds ``c_i = Φ⁻¹(x_i)``: with ``ε ~ N(0, 1)``, ``1[ε < c_i] ~ Bernoulli(x_i)``.

    Used by :func:`certify_poisson` to turn the standard normals that
    :func:`certify.smoothing.sample_counts` draws into Poisson spikes (``c = -inf`` at 0,
    ``+inf`` at 1, so black and white pixels are exact).

    Examples
    --------
    >>> from certify.bernoulli import poisson_thresholds
    >>> poisson_thresholds([0.0, 0.5, 1.0]).tolist()
    [-inf, 0.0, inf]
    """
    from scipy.special import ndtri

    return ndtri(_unit_vector_iv("x", x))


class _SpikeClassifier:
    """``classify(spikes)`` seen through standard normals: ``spikes = 1[ε < Φ⁻¹(x)]``."""

    def __init__(self, classify, x, dtype):
        self._classify = classify
        self._c = poisson_thresholds(x)
        self._dtype = dtype

    def __call__(self, eps):
        spikes = (eps < self._c).astype(self._dtype)
        return self._classify(spikes)


@dataclass(frozen=True, eq=False)
class PoissonCertificate:
    """Result of :func:`certify_poisson`.

    Attributes
    ----------
    prediction : int
        The certified class, or :data:`certify.smoothing.ABSTAIN` (-1).
    radii : BernoulliRadii
        Certified L∞ / L1 / L0 radii (all 0 when abstaining).
    p_a_lower, p_b_upper : float
        Confidence bounds (jointly valid with probability ≥ 1 − alpha).
    counts, counts_selection : numpy.ndarray of int64
        Class counts of the ``n`` estimation and ``n0`` selection samples (read-only).
    n0, n : int
    alpha : float
    n_steps : int
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    prediction: int
    radii: BernoulliRadii
    p_a_lower: float
    p_b_upper: float
    counts: np.ndarray
    counts_selection: np.ndarray
    n0: int
    n: int
    alpha: float
    n_steps: int

    @property
    def abstained(self) -> bool:
        return self.prediction == ABSTAIN

    @property
    def linf(self) -> float:
        return self.radii.linf

    @property
    def l1(self) -> float:
        return self.radii.l1

    @property
    def l0(self) -> int:
        return self.radii.l0


def certify_poisson(
    classify, x, *, n_steps, n0, n, alpha, num_classes, rng, use_runner_up=True,
    orders=None, dtype=np.float64, batch_size=1000, progress=False,
):
    """CERTIFY for a Poisson-coded network: class and L∞ / L1 / L0 radii, or abstain.

    Parameters
    ----------
    classify : callable
        ``classify(spikes[T, B, d]) -> labels[B]`` on 0/1 spike rasters (dtype ``dtype``).
    x : array_like, shape (d,)
        The image, pixel values in [0, 1] (the spike probabilities).
    n_steps : int
        Number of time steps T.
    n0, n : int
        Selection and estimation samples.
    alpha : float
        Failure probability in (0, 0.5).
    num_classes : int
    rng : int, SeedSequence, Generator or None
        Keyword only; equal seeds give equal certificates.
    use_runner_up : bool, default True
        Also bound the runner-up: ``p_A`` at level ``alpha/2`` and every other class's upper
        bound at ``alpha / (2 (K − 1))`` (union bound), ``p_B`` the largest of those. With
        False, ``p_A`` at level ``alpha`` and ``p_B = 1 − p_A`` (Cohen et al.).
    orders : sequence of float, optional
        Rényi orders (default :data:`DEFAULT_ORDERS`).
    dtype : numpy dtype, default float64
        dtype of the spike rasters handed to ``classify``.
    batch_size : int, default 1000
    progress : bool, default False

    Returns
    -------
    PoissonCertificate

    Raises
    ------
    TypeError, ValueError
        On invalid arguments (as :func:`certify.smoothing.certify`, and ``x`` outside [0, 1]).

    Notes
    -----
    Sampling reuses :func:`certify.smoothing.sample_counts` with RSC-II noise of σ = 1 around
    the zero image without clamp, i.e. i.i.d. standard normals ``ε[t, i]`` from its
    reproducible, batch-size-independent streams; ``1[ε[t, i] < Φ⁻¹(x_i)]`` is then exactly a
    Bernoulli(x_i) spike (up to the rounding of ``Φ⁻¹``), independent over t and i -- Poisson
    coding (RSC Eq. 11). Selection with ``n0`` samples, estimation with ``n`` fresh samples
    (Cohen et al. 2019, Algorithm 1); abstain when ``p_A_lower ≤ p_B_upper``. Radii:
    :func:`certified_radii`.

    Examples
    --------
    >>> import numpy as np
    >>> from certify.bernoulli import certify_poisson
    >>> def first_pixel_fires(spikes):  # class 1 if pixel 0 spikes at least once
    ...     return (spikes[:, :, 0].max(axis=0) > 0).astype(np.int64)
    >>> cert = certify_poisson(first_pixel_fires, np.array([1.0, 0.3]), n_steps=4, n0=10,
    ...                        n=200, alpha=0.001, num_classes=2, rng=0)
    >>> cert.prediction, cert.counts.tolist()  # pixel 0 at 1 always spikes
    (1, [0, 200])
    >>> cert.l0  # x_0 = 1 can be flipped to 0: disjoint supports, no pixel certified
    0
    """
    classify = _callable_iv("classify", classify)
    x = _unit_vector_iv("x", x)
    T = _int_iv("n_steps", n_steps, 1)
    n0 = _int_iv("n0", n0, 1)
    n = _int_iv("n", n, 1)
    alpha = _alpha_iv(alpha)
    num_classes = _int_iv("num_classes", num_classes, 2)
    use_runner_up = flag_iv("use_runner_up", use_runner_up)
    orders = _orders_iv(orders)
    dtype = float_dtype_iv("dtype", dtype)
    seed = _seed_iv(rng)
    spike_classify = _SpikeClassifier(classify, x, dtype)
    noise = rsc_fresh(1.0, T, clamp=False)
    zero = np.zeros(x.shape[0])
    common = dict(num_classes=num_classes, batch_size=batch_size, progress=progress)
    counts0 = sample_counts(spike_classify, zero, noise, n0, rng=_child(seed, 0), **common)
    c_a = _top_two(counts0)[0]
    counts = sample_counts(spike_classify, zero, noise, n, rng=_child(seed, 1), **common)
    if use_runner_up:
        p_a = lower_confidence_bound(int(counts[c_a]), n, alpha / 2.0)
        a_other = alpha / (2.0 * (num_classes - 1))
        others = [c for c in range(num_classes) if c != c_a]
        p_b = max(1.0 - lower_confidence_bound(n - int(counts[c]), n, a_other) for c in others)
        p_b = min(p_b, 1.0 - p_a)
    else:
        p_a = lower_confidence_bound(int(counts[c_a]), n, alpha)
        p_b = 1.0 - p_a
    if p_a <= p_b:
        prediction = ABSTAIN
        radii = BernoulliRadii(0.0, 0.0, 0, math.nan, math.nan, math.nan, p_a, p_b, T)
    else:
        prediction = c_a
        radii = certified_radii(x, p_a, p_b, n_steps=T, orders=orders)
    return PoissonCertificate(
        prediction, radii, p_a, p_b, _frozen(counts), _frozen(counts0), n0, n, alpha, T
    )
