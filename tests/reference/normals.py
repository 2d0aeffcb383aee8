"""Twins of ``evsnn._normals``: PCG64 in Python's unbounded integers (reduced mod 2^128 and
2^64 by hand) and the ziggurat's steps one draw at a time in Python floats (IEEE doubles, so each
operation rounds as the kernel's does)."""

import math

from evsnn._normals import PCG64_MULTIPLIER

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


def _standard_normal_kernel(state, out, bound, width, height):
    r = float(width[255]) * 2.0**52
    for j in range(len(out)):
        while True:
            b = _pcg64_next_kernel(state)
            i, negative, u = b % 256, (b >> 8) & 1, b >> 12
            x = float(u) * float(width[i])
            if u < int(bound[i]):
                break
            if i == 0:  # Marsaglia's tail beyond r
                while True:
                    a = -math.log(1.0 - _uniform_kernel(state)) / r
                    c = -math.log(1.0 - _uniform_kernel(state))
                    if c + c > a * a:
                        break
                x = r + a
                break
            y = float(height[i]) + _uniform_kernel(state) * (float(height[i - 1])
                                                              - float(height[i]))
            if y < math.exp(-0.5 * x * x):
                break
        out[j] = -x if negative else x


def _standard_normal_chunks_kernel(states, out, bound, width, height):
    for c in range(len(out)):
        row = [int(v) for v in states[c]]
        _standard_normal_kernel(row, out[c], bound, width, height)
        states[c] = row
