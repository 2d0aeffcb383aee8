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

float32 (:func:`_exp32_row_kernel`, :func:`_exp32_scalar_kernel`; the float32 kernels of evsnn
and :func:`exp` of a float32 array use it): the same steps in float32 arithmetic, with
``1.5 · 2^23``, ``LN2_HI_F32`` of 16 bits (``k·LN2_HI_F32`` exact for ``|k| < 2^8``), the Taylor
polynomial to degree 7 (truncation below ``5.3e-9`` relative) and the exponent-bit scaling on
[−86.5, 88]; outside it the float32 ``exp(r)`` is scaled by ``2^k`` exactly in float64 and rounded
once to float32 (inf above 89, 0 below −104). A row then runs in 8 float32 lanes instead of 4
float64 ones: the float32 BPTT kernel of ``_bptt_layer`` on [T=10, B=256, N=500] (2 threads)
took 1.25 ms against 4.08 ms when float32 rows went through the float64 exponential.

Accuracy (measured against the 80-bit ``np.longdouble`` exponential; ``tests/test_exp.py``):
float64 results within 1 ulp (about 90 % correctly rounded; the C library's is typically within
0.51 ulp). float32 results within 1.05 ulp, so at most one ulp from the correctly rounded float32:
over every float32 in [−104, 89] (an exhaustive run against the float64 exponential rounded once,
the 7 near-ties settled with ``np.longdouble``) the largest error is 1.047 ulp; 99.2 % of those
2.24e9 arguments give the correctly rounded result (most lie within 2^-10 of 0, where exp is 1 to
within a few ulps and the error stays below 0.502 ulp), 84 % to 93 % in each binade of |x|
from 1/4 to 128 (about 90 % from 1 up), 93.5 % of all the arguments with |x| ≥ 2^-10.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numpy as np

from evsnn._numba import njit

__all__ = ["exp"]

LOG2E = 1.4426950408889634  # the double nearest 1 / ln 2
LN2_HI = float.fromhex("0x1.62e42fee00000p-1")  # ln 2 to 32 bits: k·LN2_HI exact for |k| < 2^20
LN2_DIGITS = Decimal("0.69314718055994530941723212145817656807550013436025525")  # ln 2, 50 digits
with localcontext() as _ctx:
    _ctx.prec = 60
    LN2_LO = float(LN2_DIGITS - Decimal(LN2_HI))  # the double nearest ln 2 − LN2_HI
SHIFT = 6755399441055744.0  # 1.5 · 2^52: x + SHIFT rounds x to an integer in the low bits
SHIFT_BITS = int(np.array([SHIFT]).view(np.int64)[0])
# the range in which 2^k · exp(r) is a normal double, scaled by adding k to the exponent field
LO = -708.0
HI = 709.0
# 1/j! for j = 2 … 13 (each the double nearest the quotient of two exact doubles)
C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13 = (1.0 / math.factorial(j)
                                                       for j in range(2, 14))

# float32 (the same steps in float32 arithmetic, every constant a np.float32 so that numba keeps
# the arithmetic in float32)
LOG2E_F32 = np.float32(LOG2E)  # the float32 nearest 1 / ln 2
# ln 2 to 16 bits (float32 ln 2 with its 8 lowest mantissa bits cleared): k·LN2_HI_F32 exact for
# |k| < 2^8, and every k of the float32 range is below 151
LN2_HI_F32 = np.float32(float.fromhex("0x1.62e4p-1"))
with localcontext() as _ctx:
    _ctx.prec = 60
    LN2_LO_F32 = np.float32(float(LN2_DIGITS - Decimal(float(LN2_HI_F32))))
SHIFT_F32 = np.float32(1.5 * 2.0**23)  # x + SHIFT_F32 rounds x to an integer in the low bits
SHIFT_F32_BITS = np.int32(np.array([SHIFT_F32]).view(np.int32)[0])
# the range in which 2^k · exp(r) is a normal float32, scaled by adding k to the exponent field
# (k from −125 to 127); beyond it exp is inf above 89 and 0 below −104 (float32 rounding)
LO_F32 = np.float32(-86.5)
HI_F32 = np.float32(88.0)
OVER_F32 = np.float32(89.0)  # exp(89) > 3.4e38, the largest float32: inf above
UNDER_F32 = np.float32(-104.0)  # exp(-104) < 2^-150, half the smallest subnormal: 0 below
# 1/j! for j = 2 … 7 (each the double quotient rounded to float32, which is also the float32
# nearest 1/j!: tests/test_exp.py)
D2, D3, D4, D5, D6, D7 = (np.float32(1.0 / math.factorial(j)) for j in range(2, 8))
ONE_F32 = np.float32(1.0)


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


@njit
def _exp32_reduce_kernel(x):
    """The float32 twin of :func:`_exp_reduce_kernel`: ``(x + SHIFT_F32, k, exp(r))`` for a
    float32 ``x = k ln 2 + r`` of moderate size, all in float32 arithmetic, ``exp(r)`` by the
    degree-7 Taylor polynomial (truncation error below 5.3e-9 relative for |r| ≤ ln 2 / 2)."""
    t = x * LOG2E_F32 + SHIFT_F32
    k = t - SHIFT_F32
    r = (x - k * LN2_HI_F32) - k * LN2_LO_F32
    r2 = r * r
    r4 = r2 * r2
    q = ((D2 + D3 * r) + (D4 + D5 * r) * r2) + (D6 + D7 * r) * r4
    return t, k, ONE_F32 + (r + r2 * q)


@njit
def _exp32_scalar_kernel(x):
    """``exp(x)`` of one float32 in float32 arithmetic (the same bits as
    :func:`_exp32_row_kernel`); other arguments are rounded to float32 first. The scaling by
    ``2^k`` is exact in float64 and rounded once to float32 (subnormal results, 0, ``inf``)."""
    x = np.float32(x)
    if x != x:
        return x
    if x > OVER_F32:
        return np.float32(np.inf)
    if x < UNDER_F32:
        return np.float32(0.0)
    _, k, p = _exp32_reduce_kernel(x)
    return np.float32(math.ldexp(np.float64(p), int(k)))


@njit
def _exp32_row_kernel(y, out, work_p, work_k):
    """``out[i] = exp(y[i])`` in float32 arithmetic for the 1-D float32 arrays ``y`` and ``out``
    (``out`` may be ``y``; other ``y`` are rounded to float32 first). ``work_p``, ``work_k``:
    float32 work arrays at least as long as ``y``. The passes of :func:`_exp_row_kernel`, in
    8 float32 lanes where that one has 4 float64 lanes, and with fewer operations; the
    out-of-range test is a boolean OR (an int64 count limited the loop to 4 lanes).

    Beyond ``OVER_F32`` and ``UNDER_F32`` the scalar kernel's inf and 0 are set by a select in
    one vectorised pass; only NaN and the two narrow bands between the ranges take the scalar
    kernel. (Membranes far below θ, ``−ρ(m − θ)`` above 89, are common: two BPTT rows in three
    of bench/bench_attack.py's hidden layer hold one; the exponentials of its 2560 rows took
    3.86-3.88 ms with a scalar pass over every such row, 3.47-3.64 ms so, minima of 200, one
    thread, 2026-12-03.)"""
    n = y.shape[0]
    out_of_range = False
    needs_scalar = False
    for i in range(n):
        x = np.float32(y[i])
        inside = (x >= LO_F32) & (x <= HI_F32)
        out_of_range |= not inside
        needs_scalar |= not (inside | (x > OVER_F32) | (x < UNDER_F32))  # NaN, the bands
        t, _, p = _exp32_reduce_kernel(min(max(x, LO_F32), HI_F32))
        work_p[i] = p
        work_k[i] = t
    p_bits = work_p[:n].view(np.int32)
    k_bits = work_k[:n].view(np.int32)
    for i in range(n):
        p_bits[i] += (k_bits[i] - SHIFT_F32_BITS) << 23
    if out_of_range:
        inf = np.float32(np.inf)
        zero = np.float32(0.0)
        for i in range(n):
            x = np.float32(y[i])
            p = work_p[i]
            p = inf if x > OVER_F32 else p
            work_p[i] = zero if x < UNDER_F32 else p
    if needs_scalar:
        for i in range(n):
            x = np.float32(y[i])
            if not (x >= LO_F32 and x <= HI_F32):
                work_p[i] = _exp32_scalar_kernel(x)
    for i in range(n):
        out[i] = work_p[i]


@njit
def _exp_like_kernel(x, like):
    """``exp(x)`` in the dtype of the array ``like``: :func:`_exp32_scalar_kernel` for float32,
    :func:`_exp_scalar_kernel` otherwise (the scalar sites of kernels compiled for both)."""
    if like.itemsize == 4:
        return like.dtype.type(_exp32_scalar_kernel(np.float32(x)))
    return like.dtype.type(_exp_scalar_kernel(np.float64(x)))


def exp(x):
    """``exp`` of an array (or scalar): float32 by :func:`_exp32_row_kernel` (stays float32),
    everything else by :func:`_exp_row_kernel` (becomes float64). Real input only: a complex
    array would lose its imaginary part in the float64 conversion."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"exp takes real numbers, got x of dtype {x.dtype}; pass a float array "
                        "(a complex exponential is np.exp's)")
    if x.dtype == np.float32:
        flat = np.ascontiguousarray(x).ravel()
        out = np.empty(flat.shape, dtype=np.float32)
        _exp32_row_kernel(flat, out, np.empty(flat.size, np.float32),
                          np.empty(flat.size, np.float32))
        return out.reshape(x.shape)
    flat = np.ascontiguousarray(x, dtype=np.float64).ravel()
    out = np.empty(flat.shape)
    _exp_row_kernel(flat, out, np.empty(flat.size), np.empty(flat.size))
    return out.reshape(x.shape)
