"""evsnn's own exponential: the same bits on every machine, and vectorised.

The sigmoid surrogate ``σ'(ρ(m − θ))`` needs ``exp`` once per neuron and step in every backward
pass. NumPy's and the C library's ``exp`` are each platform-specific (glibc, macOS and NumPy's
SIMD loops round differently in the last bit; float32 NumPy and glibc agree on only about 60 %
of the arguments of a BPTT-shaped array on the machine this was written on), and numba compiles
``np.exp`` to one scalar libm call per element. This module computes ``exp`` with IEEE 754
additions and multiplications only (no fused multiply-add: fastmath stays off), so a given
argument gives the same result on any machine, and the loop over a row vectorises.

Algorithm (for ``x`` in [−708, 709]; everything in float64):

* ``k = round(x / ln 2)`` by adding and subtracting ``1.5 · 2^52`` (round half to even);
* ``r = (x − k·LN2_HI) − k·LN2_LO`` (Cody and Waite's two-part reduction: ``LN2_HI`` has its 20
  lowest mantissa bits zero, so ``k·LN2_HI`` and the first subtraction are exact; ``LN2_LO`` is
  the double nearest ``ln 2 − LN2_HI``), ``|r| ≤ ln 2 / 2 + 2^-40``;
* ``exp(r) = 1 + (r + r²·Q(r))``, ``Q`` the Taylor polynomial ``Σ_{j=2}^{13} r^(j−2) / j!``
  evaluated by Estrin's scheme (independent products, short dependency chains); the truncation
  error ``r^14/14!`` is below ``6e-18`` relative;
* ``exp(x) = 2^k · exp(r)``, the power of two added to the exponent field (exact).

Outside [−708, 709], and for NaN, :func:`_exp_scalar_kernel` finishes with ``math.ldexp`` (one
correctly rounded scaling: subnormal results, 0, ``inf``).

Accuracy (measured against the 80-bit ``np.longdouble`` exponential; ``tests/test_exp.py``):
float64 results within 1 ulp (about 90 % correctly rounded; the C library's is typically within
0.51 ulp); float32 results are the float64 value rounded once, hence correctly rounded except
when the float64 value falls within an ulp of a float32 rounding boundary (about one argument in
2^28).
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numpy as np

from evsnn._numba import njit

__all__ = ["exp"]

LOG2E = 1.4426950408889634  # the double nearest 1 / ln 2
LN2_HI = float.fromhex("0x1.62e42fee00000p-1")  # ln 2 to 32 bits: k·LN2_HI exact for |k| < 2^20
with localcontext() as _ctx:
    _ctx.prec = 60
    # ln 2 to 50 digits (a mathematical constant), minus the exact LN2_HI
    LN2_LO = float(Decimal("0.69314718055994530941723212145817656807550013436025525")
                   - Decimal(LN2_HI))
SHIFT = 6755399441055744.0  # 1.5 · 2^52: x + SHIFT rounds x to an integer in the low bits
SHIFT_BITS = int(np.array([SHIFT]).view(np.int64)[0])
# the range in which 2^k · exp(r) is a normal double, scaled by adding k to the exponent field
LO = -708.0
HI = 709.0
# 1/j! for j = 2 … 13 (each the double nearest the quotient of two exact doubles)
C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13 = (1.0 / math.factorial(j)
                                                       for j in range(2, 14))


@njit
def _exp_reduce_kernel(x):
    """``(x + SHIFT, k, exp(r))`` for ``x = k ln 2 + r`` (``x`` a finite float64 of moderate
    size); ``exp(x) = 2^k · exp(r)``."""
    t = x * LOG2E + SHIFT
    k = t - SHIFT
    r = (x - k * LN2_HI) - k * LN2_LO
    r2 = r * r
    r4 = r2 * r2
    r8 = r4 * r4
    s0 = (C2 + C3 * r) + (C4 + C5 * r) * r2
    s1 = (C6 + C7 * r) + (C8 + C9 * r) * r2
    s2 = (C10 + C11 * r) + (C12 + C13 * r) * r2
    q = (s0 + s1 * r4) + s2 * r8
    return t, k, 1.0 + (r + r2 * q)


@njit
def _exp_scalar_kernel(x):
    """``exp(x)`` of one float64 (the same bits as :func:`_exp_row_kernel`)."""
    if x != x:
        return x
    if x > 710.0:
        return math.inf
    if x < -746.0:
        return 0.0
    _, k, p = _exp_reduce_kernel(x)
    return math.ldexp(p, int(k))


@njit
def _exp_row_kernel(y, out, work_p, work_k):
    """``out[i] = exp(y[i])`` for the 1-D float arrays ``y`` and ``out`` (``out`` may be ``y``;
    a float32 ``out`` gets the float64 value rounded once). ``work_p``, ``work_k``: float64 work
    arrays at least as long as ``y``. Three passes that vectorise (reduction and polynomial,
    exponent, store) and, only when an argument lies outside [−708, 709] or is NaN, a scalar
    pass that gives those arguments :func:`_exp_scalar_kernel`."""
    n = y.shape[0]
    n_out_of_range = 0
    for i in range(n):
        x = np.float64(y[i])
        n_out_of_range += not (x >= LO and x <= HI)
        t, _, p = _exp_reduce_kernel(min(max(x, LO), HI))
        work_p[i] = p
        work_k[i] = t
    p_bits = work_p[:n].view(np.int64)
    k_bits = work_k[:n].view(np.int64)
    for i in range(n):
        p_bits[i] += (k_bits[i] - SHIFT_BITS) << 52
    if n_out_of_range:
        for i in range(n):
            x = np.float64(y[i])
            if not (x >= LO and x <= HI):
                work_p[i] = _exp_scalar_kernel(x)
    for i in range(n):
        out[i] = work_p[i]


def exp(x):
    """``exp`` of an array (or scalar) by :func:`_exp_row_kernel`: float32 stays float32,
    everything else becomes float64."""
    x = np.asarray(x)
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    flat = np.ascontiguousarray(x, dtype=dtype).ravel()
    out = np.empty(flat.shape, dtype=dtype)
    _exp_row_kernel(flat, out, np.empty(flat.size), np.empty(flat.size))
    return out.reshape(x.shape)
