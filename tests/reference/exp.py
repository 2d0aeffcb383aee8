"""Twins of ``evsnn._exp``: the same exponential as plain Python float arithmetic, one argument
at a time (Python floats are IEEE 754 doubles, so each operation rounds as the kernel's does), and
the float32 one in NumPy float32 scalar arithmetic (each operation rounded to float32)."""

import math

import numpy as np

from evsnn._exp import (
    C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13, D2, D3, D4, D5, D6, D7, LN2_HI,
    LN2_HI_F32, LN2_LO, LN2_LO_F32, LOG2E, LOG2E_F32, SHIFT, SHIFT_F32,
)


def _exp_reduce_kernel(x):
    t = x * LOG2E + SHIFT
    k = t - SHIFT
    r = (x - k * LN2_HI) - k * LN2_LO
    r2 = r * r
    r4 = r2 * r2
    r8 = r4 * r4
    # Σ_{j=2}^{13} r^(j-2) / j!, grouped as the kernel groups it (Estrin's scheme)
    s0 = (C2 + C3 * r) + (C4 + C5 * r) * r2
    s1 = (C6 + C7 * r) + (C8 + C9 * r) * r2
    s2 = (C10 + C11 * r) + (C12 + C13 * r) * r2
    q = (s0 + s1 * r4) + s2 * r8
    return t, k, 1.0 + (r + r2 * q)


def _exp_scalar_kernel(x):
    x = float(x)
    if math.isnan(x):
        return x
    if x > 710.0:
        return math.inf
    if x < -746.0:
        return 0.0
    _, k, p = _exp_reduce_kernel(x)
    with np.errstate(over="ignore"):  # 2^k · p beyond the doubles is inf
        return float(np.ldexp(p, int(k)))


def _exp_row_kernel(y, out):
    with np.errstate(over="ignore"):  # a float32 out rounds the double once, maybe to inf
        for i in range(y.shape[0]):
            out[i] = _exp_scalar_kernel(y[i])


def _exp32_reduce_kernel(x):
    x = np.float32(x)
    t = x * LOG2E_F32 + SHIFT_F32
    k = t - SHIFT_F32
    r = (x - k * LN2_HI_F32) - k * LN2_LO_F32
    r2 = r * r
    r4 = r2 * r2
    q = ((D2 + D3 * r) + (D4 + D5 * r) * r2) + (D6 + D7 * r) * r4
    return t, k, np.float32(1.0) + (r + r2 * q)


def _exp32_scalar_kernel(x):
    with np.errstate(over="ignore"):  # a double beyond the float32 range rounds to ±inf
        x = np.float32(x)
    if math.isnan(x):
        return x
    if x > 89.0:
        return np.float32(math.inf)
    if x < -104.0:
        return np.float32(0.0)
    _, k, p = _exp32_reduce_kernel(x)
    with np.errstate(over="ignore"):  # 2^k · p beyond the float32 range is inf
        return np.float32(np.ldexp(np.float64(p), int(k)))


def _exp32_row_kernel(y, out):
    for i in range(y.shape[0]):
        out[i] = _exp32_scalar_kernel(y[i])


def _exp_like_kernel(x, like):
    if like.dtype == np.float32:
        return _exp32_scalar_kernel(x)
    return like.dtype.type(_exp_scalar_kernel(x))
