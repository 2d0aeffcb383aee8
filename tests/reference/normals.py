"""Twins of ``evsnn._normals``: PCG64 in Python's unbounded integers (reduced mod 2^128 and
2^64 by hand) and the ziggurat's steps one draw at a time in Python floats (IEEE doubles, so each
operation rounds as the kernel's does)."""

import math

from evsnn._normals import PCG64_MULTIPLIER, ZIGGURAT_R

_M128 = (1 << 128) - 1
_M64 = (1 << 64) - 1


def _pcg64_next_kernel(state):
    s = ((int(state[0]) << 64) | int(state[1])) * PCG64_MULTIPLIER
    s = (s + ((int(state[2]) << 64) | int(state[3]))) & _M128
    state[0], state[1] = s >> 64, s & _M64
    hi, lo = s >> 64, s & _M64
    xored, rot = hi ^ lo, hi >> 58
    return ((xored >> rot) | (xored << (64 - rot))) & _M64


def _uniform_kernel(state):
    return (_pcg64_next_kernel(state) >> 11) * 2.0**-53


def _layer_edges(r=ZIGGURAT_R):
    """The layer edges ``x_0 = 0 < … < x_255 = r`` and the base's width ``v / f(r)``, from the
    recursion ``f(x_{i−1}) = f(x_i) + v/x_i`` of the module docstring (not the kernel's tables)."""
    v = r * _f(r) + math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))
    x = [0.0] * 256
    x[255] = r
    for i in range(254, 0, -1):
        x[i] = math.sqrt(-2.0 * math.log(_f(x[i + 1]) + v / x[i + 1]))
    return x, v / _f(r)


def _f(t):
    return math.exp(-0.5 * t * t)


_EDGES, _BASE_WIDTH = _layer_edges()


def _standard_normal_kernel(state, out):
    # one draw: layer i, sign, 52-bit u; the candidate u · width_i (width_i = x_i / 2^52, the
    # base's v/f(r) / 2^52) is accepted left of the box's inner edge x_{i−1} (the base: r),
    # else the tail (base) or the height test against f
    r = ZIGGURAT_R
    for j in range(len(out)):
        while True:
            b = _pcg64_next_kernel(state)
            i, negative, u = b % 256, (b >> 8) & 1, b >> 12
            x = float(u) * ((_BASE_WIDTH if i == 0 else _EDGES[i]) / 2.0**52)
            if x <= (r if i == 0 else _EDGES[i - 1]):
                break
            if i == 0:  # Marsaglia's tail beyond r
                while True:
                    a = -math.log(1.0 - _uniform_kernel(state)) / r
                    c = -math.log(1.0 - _uniform_kernel(state))
                    if c + c > a * a:
                        break
                x = r + a
                break
            y = _f(_EDGES[i]) + _uniform_kernel(state) * (_f(_EDGES[i - 1]) - _f(_EDGES[i]))
            if y < _f(x):
                break
        out[j] = -x if negative else x


def _standard_normal_chunks_kernel(states, out):
    for c in range(len(out)):
        row = [int(v) for v in states[c]]
        _standard_normal_kernel(row, out[c])
        states[c] = row
