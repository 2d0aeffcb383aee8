"""Projections onto ``{z : ‖z − x‖_p ≤ ε} ∩ [0, 1]^N`` for p = ∞, 2, 1, 0, row by row.

Every projection returns its result in the dtype of the clean input ``x`` and inside the set
*exactly as evsnn measures it*: the float64 norm of ``x_adv − x`` that :func:`norms_of`
reports for the returned arrays is at most ε — no rounding slack — and every value lies in
[0, 1]. In float32 a point rounded to the
nearest representable value can sit outside the ball (``x + ε`` rounds up about half the time);
the projections therefore round toward ``x`` ("inward") when they leave float64. For p = ∞ the
ball's ends are the extreme representable values inside it (:func:`linf_bounds`); for p = 2 and
p = 1 the measured norm is checked and a row whose rounded sum lands above ε (common in float64
for a point on the sphere, where the sum is ε up to rounding) is shrunk toward ``x`` by a few
ulps (:func:`_fit_rows`).

For p = ∞ and p = 0 the result is the exact Euclidean projection onto the intersection (p = ∞ up
to the choice of the extreme representable value inside the ball); for p = 1 too, up to the
bisection's resolution (see :func:`project_l1`); for p = 2 it is the projection onto the ball
followed by the box clip, which is feasible (clipping toward ``x`` ∈ [0, 1] never lengthens a
coordinate of ``z − x``) and is what PGD-L2 uses.

Images with several channels are flattened channel-major, ``N = C·H·W`` in (C, H, W) order (the
layout of :class:`evsnn.clock.conv.ConvNetwork` and :class:`evsnn.attacks.SNNSource`); with
``channels=C`` the L0 budget counts *pixels* — a pixel changed in any of its C channels counts
once — as in the sparse attacks of Croce & Hein (2019).
"""

from __future__ import annotations

import numpy as np

from evsnn import _checks
from evsnn._numba import njit
from evsnn.attacks._iv import channels_iv, choice_iv, eps_iv, int_iv, real_iv

__all__ = [
    "NORMS", "project_linf", "linf_bounds", "project_l2", "project_l1", "project_l1_ball",
    "project_l0", "project", "l1_threshold", "norms_of", "l2_norm", "Projector",
]

_F64 = np.float64
#: the norms of the balls (and of the measurement :func:`norms_of`)
NORMS = ("linf", "l2", "l1", "l0")


# --- measuring and rounding ----------------------------------------------------------------------
def _pixels_changed(a, channels):
    """Per row: the number of pixels (groups of ``channels`` entries, channel-major) with a
    nonzero entry in ``a`` ``[B, N]``."""
    B, N = a.shape
    if channels == 1:
        return (a > 0).sum(axis=1)
    return (a.reshape(B, channels, N // channels) > 0).any(axis=1).sum(axis=1)


def norms_of(x_adv, x, channels=1):
    """``{"linf", "l2", "l1", "l0"}`` norms of ``x_adv − x`` per row, in float64: the one
    measurement the projections guarantee and every attack reports.

    ``x_adv`` and ``x`` are ``[B, N]``; ``d = float64(x_adv) − float64(x)`` (C-contiguous, so
    each row is summed the same way whatever the batch), ``linf = max |d|``,
    ``l2 = sqrt(Σ d²)``, ``l1 = Σ |d|``, and ``l0`` counts the changed entries, or with
    ``channels=C`` the changed pixels of rows flattened channel-major (C, H, W) — a pixel counts
    once however many of its C channels changed (Croce & Hein 2019; Su et al. 2019).

    Examples
    --------
    >>> x = np.zeros((1, 6))                       # 2 channels × 3 pixels
    >>> x_adv = np.array([[0.5, 0.0, 0.0, 0.25, 0.0, 0.0]])   # pixel 0, both channels
    >>> int(norms_of(x_adv, x)["l0"][0]), int(norms_of(x_adv, x, channels=2)["l0"][0])
    (2, 1)
    """
    x_adv, x = np.asarray(x_adv), np.asarray(x)
    channels = channels_iv(channels, x.shape[1])
    d = np.ascontiguousarray(np.asarray(x_adv, dtype=_F64) - np.asarray(x, dtype=_F64))
    a = np.abs(d)
    return {
        "linf": a.max(axis=1) if d.shape[1] else np.zeros(d.shape[0]),
        "l2": np.sqrt((d * d).sum(axis=1)),
        "l1": a.sum(axis=1),
        "l0": _pixels_changed(a, channels),
    }


def l2_norm(a, axis=-1, keepdims=False):
    """Euclidean norm of ``a`` along ``axis``, in float64, without spurious underflow or
    overflow: ``sqrt(Σ a²)`` as summed where ``Σ a²`` is a normal float, else
    ``m·sqrt(Σ (a/m)²)`` with ``m = max |a|``. The plain sum is 0 for gradients below about
    1.5e-162 (every square underflows) and infinite for distances above about 1.3e154; the
    scaled sum keeps their norm, and it is positive exactly when some entry is nonzero.

    Examples
    --------
    >>> float(l2_norm(np.array([3e-170, 4e-170]))), float(l2_norm(np.array([3e160, 4e160])))
    (5e-170, 5e+160)
    """
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"a must be an array of real numbers, got dtype {a.dtype}")
    a = a.astype(_F64, copy=False)
    with np.errstate(over="ignore", under="ignore"):  # the cases the scaled sum is for
        n2 = (a * a).sum(axis=axis, keepdims=True)
    n = np.sqrt(n2)
    plain = (n2 >= np.finfo(_F64).tiny) & (n2 < np.inf)
    if not plain.all() and a.shape[axis]:
        m = np.abs(a).max(axis=axis, keepdims=True)
        finite = (m > 0) & (m < np.inf)
        s = a / np.where(finite, m, 1.0)
        with np.errstate(over="ignore"):  # a norm beyond the largest float is inf
            scaled = np.where(finite, m * np.sqrt((s * s).sum(axis=axis, keepdims=True)), m)
        n = np.where(plain, n, scaled)
    return n if keepdims else np.squeeze(n, axis=axis)


def _toward(c, x):
    """``c`` (float64) in ``x``'s dtype, rounded toward ``x`` coordinate by coordinate, so that
    ``|v − x| ≤ |c − x|`` holds exactly (rounding to nearest may land farther from ``x``)."""
    v = np.asarray(c).astype(x.dtype)
    if x.dtype == _F64:
        return v
    # rounded away from x: step back one value toward x (never past it: x is representable)
    v64 = v.astype(_F64)
    away = np.abs(v64 - c) > 0
    away &= (v64 > c) == (c >= x)
    if away.any():
        v = np.where(away, np.nextafter(v, x), v)
    return v


def _fit_rows(v, x, eps, norm):
    """Rows of ``v`` (``x``'s dtype, in the box) whose measured ``norm`` exceeds ε, scaled toward
    ``x`` until it does not. The first rescale aims a few float64 ulps below ε (the measured sum
    of N terms is within about N ulps of the exact one), later ones twice as far each time; the
    measurement of :func:`norms_of` decides. ``x`` itself (distance 0) ends the loop at worst."""
    n = norms_of(v, x)[norm]
    bad = n > eps
    if not bad.any():
        return v
    v = v.copy()
    N = x.shape[1]
    x64 = x.astype(_F64)
    margin = (N + 4) * np.finfo(_F64).eps
    for _ in range(64):
        d = v[bad].astype(_F64) - x64[bad]
        s = eps * (1.0 - margin) / n[bad]
        v[bad] = _toward(x64[bad] + d * s[:, None], x[bad])
        n = norms_of(v, x)[norm]
        bad = n > eps
        if not bad.any():
            return v
        margin = min(2.0 * margin, 1.0)
    v[bad] = x[bad]
    return v


def _as_float(x):
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(_F64)


# --- L∞ ----------------------------------------------------------------------------------------
_INT = {np.dtype(np.float16): np.int16, np.dtype(np.float32): np.int32,
        np.dtype(np.float64): np.int64}


def _extreme(x, eps, g0, up):
    """Per coordinate, the largest (``up``) or smallest value ``v`` of ``x``'s dtype with
    ``v`` in [0, 1] and ``|float64(v) − float64(x)| ≤ ε``, starting from the guess ``g0`` (same
    dtype, between ``x`` and the box face).

    Which values are feasible is decided by the very float64 subtraction that measures the
    norm; it is monotone in ``v`` (rounding is), so the feasible values form one run that holds
    ``x``. The search runs on the bit patterns, which order non-negative floats like integers:
    gallop from ``g0`` (1, 2, 4, ... representable values) to bracket the last feasible value,
    then bisect. Near 0 the representable values are dense compared with the rounding of
    ``x − v``, so the answer can be many values away from ``g0``; the gallop keeps that
    logarithmic. A guess that is already the answer costs one check (its next value); the
    caller skips those it knows (:func:`_linf_guess_kernel`)."""
    it = _INT[x.dtype]
    shape = x.shape
    x = x.ravel()
    xs = x.astype(_F64)
    g0 = g0.ravel()
    face = int(np.array(x.dtype.type(1.0 if up else 0.0)).view(it))
    sgn = 1 if up else -1

    def feasible(iv):
        v = iv.astype(it).view(x.dtype).astype(_F64)
        return (np.abs(v - xs) <= eps) & (v >= 0.0) & (v <= 1.0)

    xi = x.view(it).astype(np.int64)
    gi = g0.view(it).astype(np.int64)
    ok = feasible(gi)
    a = np.where(ok, gi, xi)  # feasible
    b = np.where(ok, face + sgn, gi)  # infeasible (one past the face while unknown)
    # gallop outward from feasible guesses and inward from infeasible ones
    step = np.ones_like(a)
    out = ok & (a != face)
    inn = ~ok
    while out.any() or inn.any():
        c = np.where(out, a + sgn * step, b - sgn * step)
        if up:
            c = np.where(out, np.minimum(c, face), np.maximum(c, xi))
        else:
            c = np.where(out, np.maximum(c, face), np.minimum(c, xi))
        fc = feasible(c)
        moving = out | inn
        a = np.where(moving & fc, c, a)
        b = np.where(moving & ~fc, c, b)
        out = out & fc & (c != face)
        inn = inn & ~fc
        step = step * 2
    while True:
        gap = np.abs(b - a) > 1
        if not gap.any():
            break
        m = a + (b - a) // 2
        fm = feasible(m)
        a = np.where(gap & fm, m, a)
        b = np.where(gap & ~fm, m, b)
    return a.astype(it).view(x.dtype).reshape(shape)


@njit
def _linf_guess_kernel(x, eps, lo, hi, lo_bits, hi_bits, settled_lo, settled_hi):
    """The first guesses of :func:`linf_bounds` for the flat ``x`` (float32 or float64, no
    ``-0.0``), in three passes a side instead of :func:`_toward` and :func:`_extreme`'s checks
    over whole arrays: the ends ``max(x − ε, 0)`` into ``lo`` and ``min(x + ε, 1)`` into
    ``hi``, in ``x``'s dtype rounded toward ``x``, and whether each is already the extreme value
    as measured: feasible by :func:`_extreme`'s float64 test while the next value toward the box
    face is not; :func:`_extreme` searches for the others.

    Neighbouring values are taken on the bit patterns (``*_bits``: integer views of ``lo`` and
    ``hi``), which order non-negative floats like integers; every value here is in [0, 1]. One
    past the face is infeasible by itself: above 1, or below +0.0 the pattern of a NaN. Written
    without branches on the data, and in one function: a helper taking the arrays would update
    their reference counts (atomic) at every call.

    Each side runs in passes that never read one array through another's view (``out`` and
    ``out_bits`` are the same memory): a loop that does cannot be vectorised (its run-time
    overlap check fails), and the single loop that did took 5-6 ms per ``pgd`` of
    bench/bench_attack.py (200704 pixels). The one-value moves go to ``step_bits`` first, the
    next value outward is formed in ``nxt`` (with ``nxt_bits`` its integer view).
    """
    n = x.shape[0]
    step_bits = np.empty(n, dtype=lo_bits.dtype)
    nxt = np.empty(n, dtype=lo.dtype)
    nxt_bits = nxt.view(lo_bits.dtype)
    for side in range(2):
        up = side == 1
        out = hi if up else lo
        out_bits = hi_bits if up else lo_bits
        settled = settled_hi if up else settled_lo
        step = 1 if up else -1
        for k in range(n):
            x64 = np.float64(x[k])
            c = min(x64 + eps, 1.0) if up else max(x64 - eps, 0.0)
            v = out.dtype.type(c)  # to x's dtype, rounded to nearest
            out[k] = v
            v64 = np.float64(v)
            # rounded away from x: one value back toward it
            away = (v64 != c) & ((v64 > c) == (c >= x64))
            step_bits[k] = away * (1 - 2 * (v64 > x64))
        for k in range(n):
            bits = out_bits[k] + step_bits[k]
            out_bits[k] = bits
            nxt_bits[k] = bits + step
        for k in range(n):
            x64 = np.float64(x[k])
            v64 = np.float64(out[k])
            ok = (abs(v64 - x64) <= eps) & (v64 >= 0.0) & (v64 <= 1.0)
            n64 = np.float64(nxt[k])
            next_ok = (abs(n64 - x64) <= eps) & (n64 >= 0.0) & (n64 <= 1.0)
            settled[k] = ok & (not next_ok)


def linf_bounds(x, eps):
    """``(lo, hi)`` in ``x``'s dtype: per coordinate the smallest and the largest value ``v`` of
    that dtype in [0, 1] with ``|float64(v) − float64(x)| ≤ ε``, so that
    ``project_linf(z, x, eps)`` is ``clip(z, lo, hi)`` cast to the dtype. The interval holds
    ``x``, and by the monotonicity of rounding every value between the bounds is within ε as
    measured. Computed once, for iterative attacks that project onto the same set at every step.

    Examples
    --------
    >>> lo, hi = linf_bounds(np.array([[0.5, 0.1, 0.95]]), 0.1)
    >>> np.clip(np.array([[0.9, 0.0, 0.5]]), lo, hi)
    array([[0.6 , 0.  , 0.85]])
    >>> lo, hi = linf_bounds(np.array([[0.1]]), 0.2)   # 0.1 + 0.2 rounds to 0.30000000000000004
    >>> float(hi[0, 0]), float(hi[0, 0] - 0.1) <= 0.2
    (0.3, True)
    """
    # a negative or NaN radius: the search for the ends would never settle
    eps = _checks.real_iv("eps", eps, low=0, allow_inf=True,
                          hint="the radius of the L∞ ball (inf: the whole box [0, 1])")
    x = _as_float(x)
    if x.dtype not in _INT:
        raise TypeError(f"x must be float16, float32 or float64 for the L∞ ball, got {x.dtype}")
    x = np.ascontiguousarray(x + x.dtype.type(0.0))  # -0.0 -> +0.0: bit patterns stay ordered
    if x.dtype == np.float16:  # numba has no float16: the array passes
        x64 = x.astype(_F64)
        lo = _extreme(x, eps, _toward(np.maximum(x64 - eps, 0.0), x), up=False)
        hi = _extreme(x, eps, _toward(np.minimum(x64 + eps, 1.0), x), up=True)
        return lo, hi
    flat = x.reshape(-1)
    it = _INT[x.dtype]
    lo, hi = np.empty_like(flat), np.empty_like(flat)
    settled_lo = np.empty(flat.shape, dtype=np.bool_)
    settled_hi = np.empty(flat.shape, dtype=np.bool_)
    _linf_guess_kernel(flat, float(eps), lo, hi, lo.view(it), hi.view(it), settled_lo,
                       settled_hi)
    # the rest (near 0, where values are dense compared with the rounding of x − v) searched
    for bound, settled, up in ((lo, settled_lo, False), (hi, settled_hi, True)):
        idx = np.flatnonzero(~settled)
        if idx.size:
            bound[idx] = _extreme(flat[idx], eps, bound[idx], up)
    return lo.reshape(x.shape), hi.reshape(x.shape)


def project_linf(z, x, eps):
    """``clip(clip(z, x − ε, x + ε), 0, 1)`` — separable, so exact — with the ball's ends taken
    as the extreme values of ``x``'s dtype inside the measured ball (:func:`linf_bounds`).

    Examples
    --------
    >>> project_linf(np.array([[0.9, 0.0, 0.5]]), np.array([[0.5, 0.1, 0.95]]), 0.1)
    array([[0.6 , 0.  , 0.85]])
    """
    x = _as_float(x)
    lo, hi = linf_bounds(x, eps)
    return np.clip(z, lo, hi).astype(x.dtype, copy=False)


# --- L2 ----------------------------------------------------------------------------------------
def project_l2(z, x, eps):
    """Scale ``z − x`` onto the L2 ball of radius ε, then clip to the box.

    Examples
    --------
    >>> project_l2(np.array([[3.0, 4.0]]) / 10 + 0.2, np.full((1, 2), 0.2), 0.25)
    array([[0.35, 0.4 ]])
    """
    eps = real_iv("eps", eps)
    x = _as_float(x)
    x64 = x.astype(_F64)
    d = np.asarray(z, dtype=_F64) - x64
    n = l2_norm(d, axis=1, keepdims=True)  # a point 1e160 away still has a finite length
    scale = np.where(n > eps, eps / np.where(n > 0, n, 1.0), 1.0)
    far = np.isinf(n[:, 0]) & np.isfinite(d).all(axis=1)
    if far.any():
        # ‖d‖ beyond the largest float: eps/‖d‖ would be 0 and collapse the point onto x, so
        # scale d/max|d| (whose length r is in [1, √N]) by eps/r instead
        m = np.abs(d[far]).max(axis=1, keepdims=True)
        d = d.copy()
        d[far] = d[far] / m
        scale[far] = eps / l2_norm(d[far], axis=1, keepdims=True)
    c = np.clip(x64 + d * scale, 0.0, 1.0)
    return _fit_rows(_toward(c, x), x, eps, "l2")


# --- L1 ----------------------------------------------------------------------------------------
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
    eps = real_iv("eps", eps)
    x = _as_float(x)
    x64 = x.astype(_F64)
    u = np.asarray(z, dtype=_F64) - x64
    lo, hi = -x64, 1.0 - x64
    lam = l1_threshold(u, lo, hi, eps)
    d = _l1_d(u, lam[:, None], lo, hi)
    c = np.clip(x64 + d, 0.0, 1.0)
    return _fit_rows(_toward(c, x), x, eps, "l1")


def project_l1_ball(d, eps):
    """Euclidean projection of each row of ``d`` onto the L1 ball ``{‖d‖₁ ≤ ε}`` (no box), by
    sorting (Duchi et al. 2008, Fig. 1): the ball's projection of PGD-L1 in Ding 2025's code
    (``rule="code"`` of :func:`evsnn.attacks.pgd`). Rows already inside are returned as they are.

    With ``μ`` the magnitudes ``|d_i|`` sorted in decreasing order and
    ``θ_j = (μ_1 + … + μ_j − ε)/j``, the threshold is ``θ_ρ`` for ρ the length of the leading run
    of ``μ_j > θ_j`` (in exact arithmetic the largest such j), and the projection is
    ``sign(d) max(|d| − θ_ρ, 0)``. ρ is at least 1: for ε = 0 (where the run is empty) that gives
    ``θ = max |d|`` and the projection 0; the code would index ``θ_0`` and fail there.

    Parameters
    ----------
    d : array [B, N]
        Offsets ``x_adv − x``.
    eps : float
        Radius ε ≥ 0.

    Returns
    -------
    ndarray [B, N], float64

    Examples
    --------
    >>> project_l1_ball(np.array([[0.2, -0.2, 0.0], [0.1, 0.0, 0.0]]), 0.3)
    array([[ 0.15, -0.15,  0.  ],
           [ 0.1 ,  0.  ,  0.  ]])
    """
    eps = real_iv("eps", eps)
    d = np.asarray(d)
    if d.ndim != 2 or d.dtype.kind not in "biuf":
        raise ValueError(
            f"d must be a real array of offsets [B, N], got {d.dtype} of shape {d.shape}; "
            "reshape a single offset to [1, N]"
        )
    if not np.all(np.isfinite(d)):
        raise ValueError("d holds NaN or infinite offsets; the projection needs finite ones")
    d = d.astype(_F64)
    out = d.copy()
    rows = np.flatnonzero(np.abs(d).sum(axis=1) > eps)
    if not rows.size:
        return out
    v = d[rows]
    mu = -np.sort(-np.abs(v), axis=1)
    n = v.shape[1]
    theta = (np.cumsum(mu, axis=1) - eps) / np.arange(1, n + 1)
    above = mu - theta > 0
    run = np.where(above.all(axis=1), n, np.argmin(above, axis=1))  # first False ends the run
    th = theta[np.arange(rows.size), np.maximum(run, 1) - 1]
    out[rows] = np.sign(v) * np.maximum(np.abs(v) - th[:, None], 0.0)
    return out


# --- L0 ----------------------------------------------------------------------------------------
def project_l0(z, x, k, channels=1):
    """Exact Euclidean projection onto ``{z' : at most k pixels differ from x} ∩ [0, 1]``.

    A pixel is one entry (``channels=1``) or the ``channels`` entries ``c·P + p``,
    c = 0..C−1, of pixel p in a row flattened channel-major (C, H, W), P = H·W pixels.

    Notes
    -----
    Each entry's best box value is ``clip(z_i, 0, 1)`` and entries do not interact, so changing
    pixel p lowers the squared distance ``‖z' − z‖²`` by
    ``g_p = Σ_{i ∈ p} (z_i − x_i)² − (z_i − clip(z_i, 0, 1))²`` ≥ 0; the k pixels with the
    largest reductions are kept (ties to the lower index) and the rest are reset to ``x``.
    This is the L0-box projection of Croce & Hein (2019, "Sparse and imperceivable adversarial
    attacks", ICCV), which sums the per-channel reductions over a pixel's channels.

    Examples
    --------
    >>> project_l0(np.array([[0.9, 1.7, 0.45]]), np.array([[0.5, 0.5, 0.5]]), 1)
    array([[0.5, 1. , 0.5]])
    >>> project_l0(np.array([[0.9, 0.5, 0.9, 0.5]]), np.full((1, 4), 0.5), 1, channels=2)
    array([[0.9, 0.5, 0.9, 0.5]])
    """
    x = _as_float(x)
    z = np.asarray(z)
    B, N = x.shape
    channels = channels_iv(channels, N)
    P = N // channels
    c = np.clip(z, 0.0, 1.0).astype(x.dtype)
    x64 = x.astype(_F64)
    z64 = z.astype(_F64)
    gain = ((z64 - x64) ** 2 - (z64 - np.clip(z64, 0.0, 1.0)) ** 2).reshape(B, channels, P)
    gain = gain.sum(axis=1)
    k = int_iv("k", k, what="pixels that may change")
    if k >= P:
        return c
    out = x.copy()
    if k <= 0:
        return out
    order = np.argsort(-gain, axis=1, kind="stable")[:, :k]
    keep = np.zeros((B, P), dtype=bool)
    keep[np.arange(B)[:, None], order] = True
    keep = np.broadcast_to(keep[:, None, :], (B, channels, P)).reshape(B, N)
    out[keep] = c[keep]
    return out


def _l0_box_keep_ties(d, x, k, channels=1):
    """Ding 2025's code's L0-and-box step on offsets (``project_L0_box`` of its ``pgdl0.py``, after
    Croce & Hein's code): per pixel the score ``Σ_c d² − Σ_c min(1 − x − d, d + x, 0)²`` (the
    gain of :func:`project_l0` in exact arithmetic, computed on ``d = z − x`` as the code does),
    the threshold the k-th largest score, and EVERY pixel whose score is at or above it kept and
    clipped to the box; the rest get offset 0. Ties at the threshold are all kept, so more than
    ``k`` pixels can change (:func:`project_l0` keeps exactly k). ``1 ≤ k ≤ P`` (the caller
    checks).

    Parameters
    ----------
    d : array [B, N], float64
        Offsets, rows flattened channel-major (C, H, W).
    x : array [B, N], float64
        The clean inputs.
    k : int
    channels : int, default 1

    Returns
    -------
    ndarray [B, N], float64
        The new offsets.

    Examples
    --------
    >>> d = np.array([[0.2, -0.2, 0.1, 0.7]])    # scores 0.04, 0.04, 0.01, 0.45
    >>> _l0_box_keep_ties(d, np.full((1, 4), 0.5), 2)    # the tie at 0.04 kept: 3 pixels
    array([[ 0.2, -0.2,  0. ,  0.5]])
    """
    B, N = d.shape
    P = N // channels
    lo, hi = -x, 1.0 - x
    out = np.minimum(np.minimum(hi - d, d - lo), 0.0)  # minus the distance outside the box
    score = ((d * d).reshape(B, channels, P).sum(axis=1)
             - (out * out).reshape(B, channels, P).sum(axis=1))
    thr = np.sort(score, axis=1)[:, P - k]
    keep = np.broadcast_to((score >= thr[:, None])[:, None, :], (B, channels, P)).reshape(B, N)
    return np.where(keep, np.clip(d, lo, hi), 0.0)


_PROJECTIONS = {"linf": project_linf, "l2": project_l2, "l1": project_l1}


def project(z, x, eps, norm, channels=1):
    """Dispatch to the projection of ``norm`` ("linf", "l2", "l1" or "l0").

    ``channels`` groups the entries of rows flattened channel-major into pixels; it is
    validated for every norm (an integer ≥ 1 dividing N, as :func:`evsnn.attacks.pgd` takes it
    with any norm for its reported ``norms["l0"]``) and changes only the L0 ball
    (:func:`project_l0`): the L∞, L2 and L1 balls do not depend on the grouping.

    Examples
    --------
    >>> project(np.array([[0.9, 0.0]]), np.array([[0.5, 0.5]]), 0.1, "linf")
    array([[0.6, 0.4]])
    >>> project(np.array([[0.9, 0.0]]), np.array([[0.5, 0.5]]), 0.1, "l3")
    Traceback (most recent call last):
    ...
    ValueError: norm='l3' is not supported; use one of ['linf', 'l2', 'l1', 'l0']
    """
    norm = choice_iv("norm", norm, NORMS)
    x = _as_float(x)
    channels = channels_iv(channels, x.shape[-1])
    if norm == "l0":
        return project_l0(z, x, eps, channels)
    return _PROJECTIONS[norm](z, x, eps)


class Projector:
    """``z ↦ project(z, x, eps, norm, channels)``, for an attack that projects onto the same set
    at every step; for L∞ the ball's ends are computed once, here.

    Parameters are validated as :func:`project` validates them.

    Attributes
    ----------
    x : ndarray [B, N]
        The clean inputs (floating point; integers as float64).
    eps, norm, channels
        The ball (``channels`` as validated).
    bounds : (ndarray, ndarray) or None
        For ``norm="linf"`` the ``(lo, hi)`` of :func:`linf_bounds`, so that the projection is
        ``clip(z, lo, hi)`` (an attack can fuse it with its step); None for the other norms.

    Examples
    --------
    >>> P = Projector(np.array([[0.5, 0.5]]), 0.1, "linf")
    >>> P(np.array([[0.9, 0.0]])), P.bounds
    (array([[0.6, 0.4]]), (array([[0.4, 0.4]]), array([[0.6, 0.6]])))
    """

    def __init__(self, x, eps, norm, channels=1):
        self.norm = choice_iv("norm", norm, NORMS)
        self.x = _as_float(x)
        self.channels = channels_iv(channels, self.x.shape[-1])
        self.eps = eps_iv(eps, self.norm)
        self.bounds = linf_bounds(self.x, eps) if self.norm == "linf" else None

    def __call__(self, z):
        if self.bounds is None:
            return project(z, self.x, self.eps, self.norm, self.channels)
        lo, hi = self.bounds
        return np.clip(z, lo, hi).astype(self.x.dtype, copy=False)
