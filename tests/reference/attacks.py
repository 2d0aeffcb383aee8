"""Naive twins of the numba kernels in evsnn.attacks (plain Python, element by element), and what
test_attacks and test_attack_corners share: the stand-in spike distance they pass to
``spike_attack``, linear softmax models as gradient sources and the L1-ball-and-box projection
by enumeration."""

from __future__ import annotations

import itertools

import numpy as np

from evsnn.attacks import CallableSource, ce_loss


def _linf_guess_kernel(x, eps, lo, hi, lo_bits, hi_bits, settled_lo, settled_hi):
    """Twin of :func:`evsnn.attacks.projections._linf_guess_kernel`: per coordinate, the ends
    ``max(x − ε, 0)`` and ``min(x + ε, 1)`` in ``x``'s dtype, moved one value toward ``x`` where
    rounding to nearest landed farther from ``x`` than the float64 end; and whether that value is
    within ε of ``x`` as measured in float64 and in [0, 1] while the next value outward is not.
    (``lo_bits``, ``hi_bits``: the kernel's integer views, unused here.)"""
    dt = x.dtype.type

    def feasible(v, x64):
        v = float(v)
        return abs(v - x64) <= eps and 0.0 <= v <= 1.0

    for k in range(x.shape[0]):
        x64 = float(x[k])
        for up, out, settled in ((False, lo, settled_lo), (True, hi, settled_hi)):
            end = min(x64 + eps, 1.0) if up else max(x64 - eps, 0.0)
            v = dt(end)
            if abs(float(v) - x64) > abs(end - x64):
                v = np.nextafter(v, x[k])
            out[k] = v
            outward = np.nextafter(v, dt(np.inf if up else -np.inf))
            settled[k] = feasible(v, x64) and not feasible(outward, x64)


def _linf_step_kernel(x_adv, g, alpha, lo, hi, out):
    """Twin of :func:`evsnn.attacks.gradient._linf_step_kernel`: the NumPy L∞ step as ``pgd``
    took it before the kernel (commit 9b6998b), ``clip(sign(g) · α + x_adv, lo, hi)`` on whole
    float64 arrays, then ``out``'s dtype. (Whole arrays, not scalars: NumPy's scalar ``clip``
    keeps ``-0.0`` against a bound ``+0.0`` where the array ``clip`` returns the bound.)"""
    z = np.sign(np.asarray(g, dtype=np.float64))
    z *= alpha
    z += x_adv
    out[:] = np.clip(z, lo, hi, out=z)


def sym_diff_distance(a, b):
    """Stand-in spike distance: the number of spike times in one train but not the other (the
    Victor–Purpura distance in the limit q → ∞, where shifting never beats delete + insert)."""
    return float(len(np.setxor1d(a, b)))


# --- a linear softmax model as a gradient source --------------------------------------------------
def linear_source(W, b=None):
    """Scores ``x Wᵀ + b`` with exact per-sample gradients of any score loss."""
    W = np.asarray(W, dtype=np.float64)
    b = np.zeros(W.shape[0]) if b is None else np.asarray(b, dtype=np.float64)

    def slg(x, score_loss):
        s = x @ W.T + b
        loss, g = score_loss(s)
        return loss, g @ W, s

    return CallableSource(lambda x, y: slg(x, lambda s: ce_loss(s, y)), score_loss_grad=slg,
                          predict=lambda x: x @ W.T + b)


def noisy_linear_source(W, noise=0.3):
    """A stochastic linear model: each call's weights get per-sample noise from the rngs."""
    W = np.asarray(W, dtype=np.float64)

    def fn(x, y, rng):
        Ws = np.stack([W + noise * g.standard_normal(W.shape) for g in rng])  # [B, C, N]
        s = np.einsum("bcn,bn->bc", Ws, x)
        loss, gs = ce_loss(s, y)
        return loss, np.einsum("bc,bcn->bn", gs, Ws), s

    return CallableSource(fn, uses_rng=True, predict=lambda x, rng=None: x @ W.T)


# --- projections by brute force -------------------------------------------------------------------
def l1_box_qp_brute(u, x, eps):
    """min ½‖d − u‖² s.t. ‖d‖₁ ≤ ε, −x ≤ d ≤ 1 − x by enumeration: each coordinate is at its
    lower bound, upper bound, zero, or free with a fixed sign; with the ball constraint
    inactive (λ = 0, free d = u) or active (free d = u ∓ λ, λ from ‖d‖₁ = ε). The optimum is one
    of these candidates; keep the best feasible one."""
    n = len(u)
    lo, hi = -x, 1.0 - x
    best, best_val = None, np.inf
    for states in itertools.product(range(5), repeat=n):
        for active in (False, True):
            fixed = np.array([{0: lo[i], 1: hi[i], 2: 0.0}.get(s, np.nan)
                              for i, s in enumerate(states)])
            sgn = np.array([{3: 1.0, 4: -1.0}.get(s, 0.0) for s in states])
            free = sgn != 0
            if active:
                if not free.any():
                    continue
                # Σ|fixed| + Σ_free sgn (u − sgn λ) = ε
                lam = (np.abs(fixed[~free]).sum() + (sgn[free] * u[free]).sum() - eps) / free.sum()
                if lam < 0:
                    continue
            else:
                lam = 0.0
            d = np.where(free, u - sgn * lam, fixed)
            if np.any(free & (np.sign(d) != sgn)):
                continue
            if np.any(d < lo - 1e-15) or np.any(d > hi + 1e-15) or np.abs(d).sum() > eps + 1e-12:
                continue
            val = 0.5 * ((d - u) ** 2).sum()
            if val < best_val:
                best, best_val = d, val
    return best
