"""Naive twins of the numba kernels in evsnn.attacks (plain Python, element by element), and the
stand-in spike distance the spike-attack tests pass to ``spike_attack``."""

from __future__ import annotations

import numpy as np


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


def sym_diff_distance(a, b):
    """Stand-in spike distance: the number of spike times in one train but not the other (the
    Victor–Purpura distance in the limit q → ∞, where shifting never beats delete + insert)."""
    return float(len(np.setxor1d(a, b)))
