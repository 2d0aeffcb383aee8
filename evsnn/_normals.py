"""Standard normals from PCG64 streams, compiled: the fast way of :mod:`certify.smoothing`.

Randomized smoothing with n = 100,000 draws of a 784-pixel image needs 78 million normals per
image. NumPy's ``Generator.standard_normal`` makes about one every 8 ns on one thread here
(bench/RESULTS_certify.md); this module makes the same law from the same PCG64 streams about four
times faster, inlined into a compiled loop. Its values are not NumPy's (NumPy's ziggurat tables
are its own), so :mod:`certify.smoothing` offers it as a named choice (``normals="compiled"``)
and records it.

Uniform bits: PCG64 (O'Neill 2014, "PCG: A family of simple fast space-efficient statistically
good algorithms for random number generation", the XSL-RR 128/64 member), as in
:class:`numpy.random.PCG64`: the 128-bit state advances as ``s ← s·M + inc (mod 2^128)`` and each
step outputs ``rotr64(hi(s) ⊕ lo(s), hi(s) >> 58)`` of the new state. Given a ``PCG64``'s state
(:func:`pcg64_state`), :func:`_pcg64_next_kernel` continues its ``random_raw()`` bit for
bit (tested).

Normals: the ziggurat method of Marsaglia & Tsang (2000, J. Stat. Softw. 5(8)) with 256 layers
of equal area ``v`` under ``f(x) = exp(−x²/2)``. The layer edges ``0 = x_0 < x_1 < … < x_255 = r``
satisfy ``f(x_{i−1}) = f(x_i) + v/x_i``; layer ``i ≥ 1`` is the box ``[0, x_i] × [f(x_i),
f(x_{i−1})]`` and layer 0 is the base ``[0, r] × [0, f(r)]`` plus the tail beyond ``r``, whose
area is also ``v = r f(r) + √(π/2) erfc(r/√2)``. With ``r`` = :data:`ZIGGURAT_R` (Marsaglia &
Tsang's value for 256 layers) the recursion closes at the top: ``x_1 (1 − f(x_1)) = v`` to about
1.4e-13 relative in double precision (tested), the size of the error in the resulting law.

One 64-bit draw ``b`` gives the layer ``i = b mod 256``, a sign (bit 8) and a 52-bit integer
``u = b >> 12``; the candidate is ``x = u · x_i / 2^52`` (in the base, ``u · (v/f(r)) / 2^52``,
the base's width stretched so that it has area ``v``). Then:

* ``x < x_{i−1}`` (``u`` below a precomputed integer bound): the point lies under the curve in
  every height of the box; accept (about 98.5 % of draws). In the base, ``x < r`` likewise.
* base, ``x ≥ r``: a draw from the tail, by Marsaglia's method: ``a = −ln(1 − U₁)/r``,
  ``c = −ln(1 − U₂)`` until ``2c > a²``; the value is ``r + a``.
* layer ``i ≥ 1``: a height ``y = f(x_i) + U (f(x_{i−1}) − f(x_i))``; accept when ``y < f(x)``,
  else start again with a new draw.

``U`` is ``(b >> 11) · 2⁻⁵³`` of a fresh draw, in [0, 1). The sign multiplies the accepted value.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from evsnn._numba import njit

__all__ = ["ZIGGURAT_R", "PCG64_MULTIPLIER", "pcg64_state", "standard_normal_chunks"]

#: PCG64's 128-bit LCG multiplier (O'Neill 2014; the one :class:`numpy.random.PCG64` uses).
PCG64_MULTIPLIER = 0x2360ED051FC65DA44385DF649FCCF645
_MULT_HI = np.uint64(PCG64_MULTIPLIER >> 64)
_MULT_LO = np.uint64(PCG64_MULTIPLIER & 0xFFFFFFFFFFFFFFFF)
#: Right edge of the ziggurat's last box for 256 layers (Marsaglia & Tsang 2000, Section 3).
ZIGGURAT_R = 3.6541528853610088
_LAYERS = 256
_TWO52 = 2.0**52
_TWO_M53 = 2.0**-53


def _ziggurat_tables(r=ZIGGURAT_R):
    """``(bound, width, height, x)`` of the 256 layers: ``width[i] = x_i / 2^52`` (base:
    ``v/f(r) / 2^52``); ``bound[i]`` the least integer ``b`` with ``b · width[i] > x_{i−1}``
    (base: ``> r``) in floating point, so that a candidate ``u · width[i]`` with ``u < b`` lies
    left of ``x_{i−1}`` (in the top layer only ``u = 0``: the others take the height test);
    ``height[i] = f(x_i)`` (``f(x_0) = 1``); and the edges ``x``."""
    f = lambda t: math.exp(-0.5 * t * t)  # noqa: E731
    v = r * f(r) + math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))
    x = np.zeros(_LAYERS)
    x[_LAYERS - 1] = r
    for i in range(_LAYERS - 2, 0, -1):
        x[i] = math.sqrt(-2.0 * math.log(f(x[i + 1]) + v / x[i + 1]))
    base = v / f(r)
    width = np.empty(_LAYERS)
    bound = np.zeros(_LAYERS, dtype=np.uint64)
    height = np.empty(_LAYERS)
    width[0] = base / _TWO52
    height[0] = 1.0
    for i in range(1, _LAYERS):
        width[i] = x[i] / _TWO52
        height[i] = f(x[i])
    for i in range(_LAYERS):
        edge = r if i == 0 else x[i - 1]
        b = math.floor(edge / width[i])
        while b > 0 and (b - 1) * width[i] > edge:  # products round: settle b on them
            b -= 1
        while b * width[i] <= edge:
            b += 1
        bound[i] = np.uint64(b)
    return bound, width, height, x


_BOUND, _WIDTH, _HEIGHT, _ = _ziggurat_tables()


def pcg64_state(seed):
    """The state ``[hi(s), lo(s), hi(inc), lo(inc)]`` (uint64) of ``numpy.random.PCG64(seed)``:
    the stream this module continues."""
    st = np.random.PCG64(seed).state["state"]
    s, inc = st["state"], st["inc"]
    mask = 0xFFFFFFFFFFFFFFFF
    return np.array([s >> 64, s & mask, inc >> 64, inc & mask], dtype=np.uint64)


@intrinsic
def _mulhi64(typingctx, a, b):
    """The high 64 bits of the 128-bit product of two uint64 (one ``mul`` on x86-64)."""
    if not (a == types.uint64 and b == types.uint64):
        return None

    def codegen(context, builder, signature, args):
        wide = ir.IntType(128)
        prod = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        return builder.trunc(builder.lshr(prod, ir.Constant(wide, 64)), ir.IntType(64))

    return types.uint64(types.uint64, types.uint64), codegen


@njit
def _pcg64_next_kernel(state):
    """Advance ``state`` (uint64[4]: hi, lo of s; hi, lo of inc) one step in place and return
    the step's 64-bit output."""
    s_hi, s_lo = state[0], state[1]
    lo = s_lo * _MULT_LO
    hi = _mulhi64(s_lo, _MULT_LO) + s_hi * _MULT_LO + s_lo * _MULT_HI
    new_lo = lo + state[3]
    carry = np.uint64(1) if new_lo < lo else np.uint64(0)
    new_hi = hi + state[2] + carry
    state[0], state[1] = new_hi, new_lo
    xored = new_hi ^ new_lo
    rot = new_hi >> np.uint64(58)
    return (xored >> rot) | (xored << ((np.uint64(64) - rot) & np.uint64(63)))


@njit
def _uniform_kernel(state):
    """A double in [0, 1) from the top 53 bits of the next output."""
    return np.float64(_pcg64_next_kernel(state) >> np.uint64(11)) * _TWO_M53


@njit
def _standard_normal_kernel(state, out, bound, width, height):
    """Fill ``out`` (float64, 1-d) with standard normals from the stream ``state`` (advanced in
    place), by the ziggurat of the module docstring with the tables of ``_ziggurat_tables``."""
    r = width[_LAYERS - 1] * _TWO52
    for j in range(out.shape[0]):
        while True:
            b = _pcg64_next_kernel(state)
            i = np.intp(b & np.uint64(_LAYERS - 1))
            negative = (b >> np.uint64(8)) & np.uint64(1)
            u = b >> np.uint64(12)
            x = np.float64(u) * width[i]
            if u >= bound[i]:
                if i == 0:
                    while True:
                        a = -math.log(1.0 - _uniform_kernel(state)) / r
                        c = -math.log(1.0 - _uniform_kernel(state))
                        if c + c > a * a:
                            break
                    x = r + a
                else:
                    y = height[i] + _uniform_kernel(state) * (height[i - 1] - height[i])
                    if not y < math.exp(-0.5 * x * x):
                        continue
            out[j] = -x if negative else x
            break


@njit
def _standard_normal_chunks_kernel(states, out, bound, width, height):
    """Row ``c`` of ``out`` [n_chunks, m] from the stream ``states[c]`` (advanced in place)."""
    for c in range(out.shape[0]):
        _standard_normal_kernel(states[c], out[c], bound, width, height)


def standard_normal_chunks(states, out):
    """Fill row ``c`` of ``out`` (float64 [n_chunks, m], C order) with standard normals from the
    PCG64 stream whose state is ``states[c]`` (uint64 [n_chunks, 4], from :func:`pcg64_state`;
    advanced in place). Row ``c`` depends on ``states[c]`` alone.

    Raises
    ------
    TypeError
        ``states`` not a uint64 array, or ``out`` not a float64 array.
    ValueError
        ``states`` not of shape [n_chunks, 4], ``out`` not [n_chunks, m] in C order,
        ``states`` not writable (the streams advance in it), or a row that is no PCG64 state
        (an even increment).
    """
    if not (isinstance(states, np.ndarray) and states.dtype == np.uint64):
        raise TypeError(f"states must be a numpy uint64 array [n_chunks, 4] (pcg64_state "
                        f"rows), got {type(states).__name__} {getattr(states, 'dtype', '')}")
    if not (isinstance(out, np.ndarray) and out.dtype == np.float64):
        raise TypeError(f"out must be a numpy float64 array [n_chunks, m], got "
                        f"{type(out).__name__} {getattr(out, 'dtype', '')}")
    if states.ndim != 2 or states.shape[1] != 4 or not states.flags.writeable:
        raise ValueError(f"states must be a writable array [n_chunks, 4] (one pcg64_state per "
                         f"row), got shape {states.shape}")
    if out.ndim != 2 or out.shape[0] != states.shape[0] or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-order array [n_chunks, m] with n_chunks = "
                         f"{states.shape[0]} (one row per state), got shape {out.shape}"
                         f"{'' if out.flags.c_contiguous else ', not C order'}; pass "
                         "numpy.empty((len(states), m))")
    if not np.all(states[:, 3] & np.uint64(1)):
        # an even increment is no PCG64 stream (zeros: every draw would be 0)
        raise ValueError("states[:, 3] (the low word of each stream's increment) must be odd, "
                         "as every PCG64 stream's is; make the rows with pcg64_state(seed)")
    _standard_normal_chunks_kernel(states, out, _BOUND, _WIDTH, _HEIGHT)
    return out
