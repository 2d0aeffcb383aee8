"""evsnn's own exponential: the same bits on every machine, and vectorised.

The sigmoid surrogate ``σ'(ρ(m − θ))`` needs ``exp`` once per neuron and step in every backward
pass. NumPy's and the C library's ``exp`` are each platform-specific (glibc, macOS and NumPy's
SIMD loops round differently in the last bit; float32 NumPy and glibc agree on only about 60 %
of the arguments of a BPTT-shaped array on the machine this was written on), and numba compiles
``np.exp`` to one scalar libm call per element. This module computes ``exp`` with IEEE 754
additions and multiplications only (no fused multiply-add: fastmath stays off), so a given
argument gives the same result on any machine, and the loop over a row vectorises.

Algorithm (float64):

* ``k = round(x / ln 2)`` by adding and subtracting ``1.5 · 2^52`` (round half to even);
* ``r = (x − k·LN2_HI) − k·LN2_LO`` (Cody and Waite's two-part reduction: ``LN2_HI`` has its 20
  lowest mantissa bits zero, so ``k·LN2_HI`` and the first subtraction are exact; ``LN2_LO`` is
  the double nearest ``ln 2 − LN2_HI``), ``|r| ≤ ln 2 / 2 + 2^-40``;
* ``exp(r) = 1 + (r + r²·Q(r))``, ``Q`` the Taylor polynomial ``Σ_{j=2}^{13} r^(j−2) / j!``
  evaluated by Estrin's scheme (independent products, short dependency chains); the truncation
  error ``r^14/14!`` is below ``6e-18`` relative;
* ``exp(x) = 2^k · exp(r)``, as two multiplications by powers of two made from ``k``'s bits:
  ``2^k1`` with ``k1 = clamp(k, −512, 512)`` and ``2^(k − k1)``, the one that keeps the product
  normal first. The first product is exact and the second is IEEE 754's correctly rounded
  product, so the result is ``2^k · exp(r)`` rounded once, the same number as
  ``math.ldexp(exp(r), k)``: exact for normal results, rounded once to a subnormal, 0 or ``inf``
  at the ends. One formula for every argument: no branch, no scalar pass, and a loop that calls
  it vectorises.

The result is set by selects to ``inf`` above OVER (710) and to 0 below UNDER (−746), and NaN
is returned as it is. Above OVER the argument is clamped, below UNDER replaced by 0: what is
computed there is thrown away, and a subnormal intermediate would cost time (arithmetic with
subnormal results ran about 3.3 times slower on the Zen 5 host of 2026-12-04).

float32 (:func:`_exp32_scalar_kernel`; the float32 kernels of evsnn and :func:`exp` of a float32
array use it): the same steps in float32 arithmetic, with ``1.5 · 2^23``, ``LN2_HI_F32`` of 16 bits
(``k·LN2_HI_F32`` exact for ``|k| < 2^8``), the Taylor polynomial to degree 7 (truncation below
``5.3e-9`` relative), ``k1 = clamp(k, −64, 64)``, and 0 below −104 and ``inf`` above 89. A
sigmoid row then runs in 16 float32 lanes instead of 8 float64 ones.

The powers of two are built by reinterpreting integer bits as a float (:func:`_times_pow2`, a
numba intrinsic: LLVM's ``bitcast``); the previous kernels scaled by adding ``k`` to the exponent
field in a separate pass over the row and gave the rest to ``math.ldexp`` one argument at a time.
The results are the same bits (every float32 from −128 to 90, 2.24e9 arguments, compared on
2026-12-04; the float64 kernel against its ``ldexp`` twin in ``tests/test_exp.py``), and the
float32 BPTT kernel of bench/bench_attack.py's hidden layer, which now calls the exponential inside
its main loop, took 1.13 ms instead of 1.97 ms (one thread, medians of 31 in two runs of a
throwaway script; RESULTS_backward.md, stop 46).

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
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, overload

from evsnn._numba import ERROR_MODEL, FASTMATH, njit

__all__ = ["exp"]

LOG2E = 1.4426950408889634  # the double nearest 1 / ln 2
LN2_HI = float.fromhex("0x1.62e42fee00000p-1")  # ln 2 to 32 bits: k·LN2_HI exact for |k| < 2^20
LN2_DIGITS = Decimal("0.69314718055994530941723212145817656807550013436025525")  # ln 2, 50 digits
with localcontext() as _ctx:
    _ctx.prec = 60
    LN2_LO = float(LN2_DIGITS - Decimal(LN2_HI))  # the double nearest ln 2 − LN2_HI
SHIFT = 6755399441055744.0  # 1.5 · 2^52: x + SHIFT rounds x to an integer in the low bits
SHIFT_BITS = int(np.array([SHIFT]).view(np.int64)[0])
# beyond these exp is inf (exp(710) > 1.8e308, the largest double) and 0 (exp(-746) < 2^-1075,
# half the smallest subnormal): arguments are clamped to them, the result then set by a select
OVER = 710.0
UNDER = -746.0
# 2^k = 2^k1 · 2^(k − k1) with |k1| ≤ POW2_SPLIT: both factors and exp(r) · 2^(k − k1) normal
POW2_SPLIT = 512
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
POW2_SPLIT_F32 = 64  # k runs from −150 to 128 between UNDER_F32 and OVER_F32
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


@intrinsic
def _times_pow2(typingctx, p, t):
    """``p · 2^k`` for ``t = x·log2(e) + SHIFT`` (``k`` = the integer in ``t``'s low bits: the
    bits of ``t`` minus those of SHIFT), ``p`` and ``t`` both float32 or both float64: two
    multiplications by powers of two built from integer bits (``2^j`` is the float whose
    exponent field holds ``j`` + bias), ``2^k1`` with ``k1 = clamp(k, −s, s)`` and ``2^(k − k1)``,
    the one that keeps the product normal first (``s`` = POW2_SPLIT, POW2_SPLIT_F32). For
    ``p = exp(r)`` in [1/√2, √2] and ``k`` of an argument between UNDER and OVER the first
    product is exact and the second rounds once: ``math.ldexp(p, k)``. In integer arithmetic
    of the float's width, so that a loop calling it vectorises in as many lanes."""
    if not (isinstance(p, types.Float) and p == t):
        return None
    single = p == types.float32
    width, mant, bias = (32, 23, 127) if single else (64, 52, 1023)
    split = POW2_SPLIT_F32 if single else POW2_SPLIT
    shift_bits = int(SHIFT_F32_BITS) if single else SHIFT_BITS

    def codegen(context, builder, signature, args):
        ity = ir.IntType(width)
        fty = ir.FloatType() if single else ir.DoubleType()

        def const(v):
            return ir.Constant(ity, v)

        p_val, t_val = args
        k = builder.sub(builder.bitcast(t_val, ity), const(shift_bits))
        k1 = builder.select(builder.icmp_signed("<", k, const(-split)), const(-split), k)
        k1 = builder.select(builder.icmp_signed(">", k1, const(split)), const(split), k1)

        def pow2(j):
            return builder.bitcast(builder.shl(builder.add(j, const(bias)), const(mant)), fty)

        s1, s2 = pow2(k1), pow2(builder.sub(k, k1))
        # k < 0: the smaller factor last (p · 2^(k − k1) stays normal); else the larger last
        negative = builder.icmp_signed("<", k, const(0))
        first = builder.select(negative, s2, s1)
        last = builder.select(negative, s1, s2)
        return builder.fmul(builder.fmul(p_val, first), last)

    return p(p, t), codegen


@njit
def _exp_scalar_kernel(x):
    """``exp(x)`` of one float64 (other arguments are converted first): 0 below UNDER, ``inf``
    above OVER, NaN as it is; branch-free, so a loop over it vectorises."""
    x = np.float64(x)
    # below UNDER the result is 0 whatever is computed: compute exp(0) rather than a subnormal
    # (arithmetic with subnormal results is several times slower on some processors)
    t, _, p = _exp_reduce_kernel(min(x if x >= UNDER else 0.0, OVER))
    y = _times_pow2(p, t)
    y = math.inf if x > OVER else y
    y = 0.0 if x < UNDER else y
    return y if x == x else x


@njit
def _exp_row_kernel(y, out):
    """``out[i] = exp(y[i])`` for the 1-D float arrays ``y`` and ``out`` (``out`` may be ``y``;
    a float32 ``out`` gets the float64 value rounded once)."""
    for i in range(y.shape[0]):
        out[i] = _exp_scalar_kernel(y[i])


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
    """``exp(x)`` of one float32 in float32 arithmetic (other arguments are rounded to float32
    first): 0 below UNDER_F32, ``inf`` above OVER_F32, NaN as it is; branch-free, so a loop over
    it vectorises in 16 float32 lanes."""
    x = np.float32(x)
    # below UNDER_F32 the result is 0: compute exp(0), not a subnormal (see _exp_scalar_kernel)
    t, _, p = _exp32_reduce_kernel(min(x if x >= UNDER_F32 else np.float32(0.0), OVER_F32))
    y = _times_pow2(p, t)
    y = np.float32(np.inf) if x > OVER_F32 else y
    y = np.float32(0.0) if x < UNDER_F32 else y
    return y if x == x else x


@njit
def _exp32_row_kernel(y, out):
    """``out[i] = exp(y[i])`` in float32 arithmetic for the 1-D arrays ``y`` and ``out``
    (``out`` may be ``y``; other ``y`` are rounded to float32 first)."""
    for i in range(y.shape[0]):
        out[i] = _exp32_scalar_kernel(y[i])


def _exp_like_kernel(x, like):
    """``exp(x)`` in the dtype of the array ``like``: :func:`_exp32_scalar_kernel` for float32,
    :func:`_exp_scalar_kernel` otherwise (the sites of kernels compiled for both). In a kernel
    the choice is made when it is compiled (:func:`_exp_like_typed`): a choice made at run time
    kept the loops that call it from vectorising (7.4 ms instead of 0.9 ms for 1.28 million
    float32 arguments, 2026-12-04)."""
    if like.dtype == np.float32:  # the kernel rounds x to float32 (a Python cast would warn)
        return np.float32(_exp32_scalar_kernel(x))
    return like.dtype.type(_exp_scalar_kernel(x))


@overload(_exp_like_kernel, jit_options={"fastmath": FASTMATH, "error_model": ERROR_MODEL})
def _exp_like_typed(x, like):
    if like.dtype == types.float32:
        return lambda x, like: _exp32_scalar_kernel(x)
    return lambda x, like: like.dtype.type(_exp_scalar_kernel(x))


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
        _exp32_row_kernel(flat, out)
        return out.reshape(x.shape)
    flat = np.ascontiguousarray(x, dtype=np.float64).ravel()
    out = np.empty(flat.shape)
    _exp_row_kernel(flat, out)
    return out.reshape(x.shape)
