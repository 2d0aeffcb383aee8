"""Projections onto ``{z : ‖z − x‖_p ≤ ε} ∩ [0, 1]^N`` for p = ∞, 2, 1, 0, row by row.

All four return points inside the box exactly (a final ``clip``) and inside the ball up to the
rounding of one subtraction. For p = ∞ and p = 0 the result is the exact Euclidean projection
onto the intersection; for p = 1 too (see :func:`project_l1`); for p = 2 it is the projection
onto the ball followed by the box clip, which is feasible (clipping toward ``x`` ∈ [0, 1] never
lengthens a coordinate of ``z − x``) and is what PGD-L2 uses.
"""

from __future__ import annotations

import numpy as np

__all__ = ["project_linf", "linf_bounds", "project_l2", "project_l1", "project_l0", "project", "l1_threshold"]


def project_linf(z, x, eps):
    """``clip(clip(z, x − ε, x + ε), 0, 1)`` — separable, so exact.

    Examples
    --------
    >>> project_linf(np.array([[0.9, 0.0, 0.5]]), np.array([[0.5, 0.1, 0.95]]), 0.1)
    array([[0.6 , 0.  , 0.85]])
    """
    return np.clip(np.clip(z, x - eps, x + eps), 0.0, 1.0)


def linf_bounds(x, eps):
    """``(lo, hi)`` such that ``project_linf(z, x, eps)`` equals ``clip(z, lo, hi)`` for every
    ``z``: clamping to ``[x − ε, x + ε]`` and then to [0, 1] is clamping to the intersection of
    the two intervals, which is not empty (it holds ``x``). For iterative attacks, which project
    onto the same set at every step.

    Examples
    --------
    >>> lo, hi = linf_bounds(np.array([[0.5, 0.1, 0.95]]), 0.1)
    >>> np.clip(np.array([[0.9, 0.0, 0.5]]), lo, hi)
    array([[0.6 , 0.  , 0.85]])
    """
    return np.maximum(x - eps, 0.0), np.minimum(x + eps, 1.0)


def project_l2(z, x, eps):
    """Scale ``z − x`` onto the L2 ball of radius ε, then clip to the box.

    Examples
    --------
    >>> project_l2(np.array([[3.0, 4.0]]) / 10 + 0.2, np.full((1, 2), 0.2), 0.25)
    array([[0.35, 0.4 ]])
    """
    d = z - x
    n = np.sqrt((d * d).sum(axis=1, keepdims=True))
    scale = np.where(n > eps, eps / np.where(n > 0, n, 1.0), 1.0)
    return np.clip(x + d * scale, 0.0, 1.0)


def _l1_d(u, lam, lo, hi):
    return np.clip(np.sign(u) * np.maximum(np.abs(u) - lam, 0.0), lo, hi)


def l1_threshold(u, lo, hi, eps, iters=200):
    """The soft-threshold λ ≥ 0 of the L1-ball-and-box projection (see :func:`project_l1`):
    ``λ = 0`` if ``‖clip(u, lo, hi)‖₁ ≤ ε``, else the smallest λ (to float resolution, found by
    bisection from above) with ``‖clip(soft(u, λ), lo, hi)‖₁ ≤ ε``. Rows are independent."""
    u = np.asarray(u, dtype=np.float64)
    absu = np.abs(u)
    lam_lo = np.zeros(u.shape[0])
    lam_hi = absu.max(axis=1) if u.shape[1] else np.zeros(u.shape[0])
    s0 = np.abs(np.clip(u, lo, hi)).sum(axis=1)
    inside = s0 <= eps
    lam_hi = np.where(inside, 0.0, lam_hi)
    for _ in range(iters):
        mid = 0.5 * (lam_lo + lam_hi)
        active = (mid > lam_lo) & (mid < lam_hi)
        if not active.any():
            break
        s = np.abs(_l1_d(u, mid[:, None], lo, hi)).sum(axis=1)
        ok = s <= eps
        lam_hi = np.where(active & ok, mid, lam_hi)
        lam_lo = np.where(active & ~ok, mid, lam_lo)
    return lam_hi


def project_l1(z, x, eps):
    """Exact Euclidean projection of ``z`` onto the L1 ball of radius ε around ``x``
    intersected with the box [0, 1].

    Notes
    -----
    With ``d = z' − x``, the problem ``min ½‖d − u‖² s.t. ‖d‖₁ ≤ ε, −x ≤ d ≤ 1 − x``
    (``u = z − x``) has the Lagrangian ``½‖d − u‖² + λ(‖d‖₁ − ε)``, which separates over
    coordinates. For a fixed λ ≥ 0 each coordinate minimises the convex 1-D function
    ``½(d − u)² + λ|d|`` on the interval ``[−x, 1 − x]`` (which contains 0); its unconstrained
    minimiser is the soft threshold ``sign(u) max(|u| − λ, 0)`` and, the function being convex,
    the constrained minimiser is that value clipped to the interval. ``‖d(λ)‖₁`` is continuous
    and non-increasing in λ; complementary slackness gives λ = 0 when the clipped point is
    already inside the ball, otherwise the λ with ``‖d(λ)‖₁ = ε``, found by bisection
    (:func:`l1_threshold`; the upper end is kept, so the result is feasible). Duchi et al.
    (2008) solve the ball-only case by sorting; the box makes the breakpoints depend on the
    bounds, and bisection handles both.

    Examples
    --------
    >>> project_l1(np.array([[1.0, 0.6, 0.5]]), np.array([[0.5, 0.5, 0.5]]), 0.3)
    array([[0.8, 0.5, 0.5]])
    """
    z = np.asarray(z)
    x = np.asarray(x)
    u = (z - x).astype(np.float64)
    lo, hi = -x.astype(np.float64), 1.0 - x.astype(np.float64)
    lam = l1_threshold(u, lo, hi, eps)
    d = _l1_d(u, lam[:, None], lo, hi)
    return np.clip(x + d.astype(x.dtype), 0.0, 1.0)


def project_l0(z, x, k):
    """Exact Euclidean projection onto ``{z' : at most k coordinates differ from x} ∩ [0, 1]``.

    Each coordinate's best box value is ``clip(z_i, 0, 1)``; changing coordinate i lowers the
    squared distance by ``(z_i − x_i)² − (z_i − clip(z_i))²`` ≥ 0, so the k largest reductions
    are kept (ties to the lower index) and the rest are reset to ``x``.

    Examples
    --------
    >>> project_l0(np.array([[0.9, 1.7, 0.45]]), np.array([[0.5, 0.5, 0.5]]), 1)
    array([[0.5, 1. , 0.5]])
    """
    z = np.asarray(z)
    x = np.asarray(x)
    c = np.clip(z, 0.0, 1.0)
    gain = (z - x) ** 2 - (z - c) ** 2
    N = z.shape[1]
    k = int(k)
    if k >= N:
        return c
    out = x.copy()
    if k <= 0:
        return out
    order = np.argsort(-gain, axis=1, kind="stable")[:, :k]
    rows = np.arange(z.shape[0])[:, None]
    out[rows, order] = c[rows, order]
    return out


_PROJECTIONS = {"linf": project_linf, "l2": project_l2, "l1": project_l1, "l0": project_l0}


def project(z, x, eps, norm):
    """Dispatch to the projection of ``norm`` ("linf", "l2", "l1" or "l0")."""
    return _PROJECTIONS[norm](z, x, eps)
