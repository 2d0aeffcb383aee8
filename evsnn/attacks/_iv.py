"""Argument validation shared by the attacks and the projections.

A leaf module (NumPy and :mod:`evsnn._checks` only): :mod:`evsnn.attacks.projections`
validates with it, and :mod:`evsnn.attacks._common`, which imports the projections, could not
be imported by them.
"""

from __future__ import annotations

import math

import numpy as np

from evsnn import _checks


def x_iv(x):
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.kind not in "biuf" or x.dtype == np.bool_:
        raise TypeError(f"x must be a numeric array of pixels [B, N], got dtype {x.dtype}")
    if x.dtype.kind == "f" and x.dtype not in (np.float16, np.float32, np.float64):
        # budgets are guaranteed for the float64 measurement of x_adv − x; wider floats would
        # lose their extra bits in it
        raise TypeError(
            f"x has dtype {x.dtype}; the attacks take float16, float32 or float64 (or integer) "
            "pixels: convert with x.astype(np.float64)"
        )
    if x.ndim != 2:
        raise ValueError(f"x must be [B, N] (flattened images), got shape {x.shape}")
    _checks.pixels_in_unit_iv(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    return x


def labels_iv(y, B, name="y"):
    """Labels (or targets) of ``B`` samples; the upper end is checked once the number of
    classes is known (:func:`evsnn.attacks._common.source_labels_iv` for a declared ``n_out``,
    else :func:`~evsnn.attacks._common.source_answer` on the source's first answer; OnePixel
    on the model's scores)."""
    return _checks.class_labels_iv(name, y, batch=B)


def real_iv(name, value, *, low=0.0, high=np.inf, low_open=False):
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    return _checks.real_iv(name, value, low=low, high=high, low_open=low_open)


def int_iv(name, value, *, low=0, what=None):
    """``value`` as an int ``>= low``; ``what`` (what the integer counts) joins the messages."""
    return _checks.int_iv(name, value, low=low, what=what)


def choice_iv(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; use one of {list(choices)}")
    return value


def eps_iv(eps, norm):
    if norm == "l0":
        return int_iv("eps", eps, low=0)
    return real_iv("eps", eps)


def derived_iv(eps, value, what):
    """``value``, a length the attack derives from ``eps`` (``what`` says which), must be finite:
    a finite eps near the float maximum made a step infinite and the iterates NaN."""
    if not math.isfinite(value):
        raise ValueError(
            f"eps={eps!r} is too large: {what} overflows to {value}; pass a smaller eps (the "
            "ball covers the whole [0, 1] box from eps = 1 for L∞, √N for L2, N for L1)"
        )
    return value


def channels_iv(channels, N):
    """Validate the pixel grouping: ``channels`` C ≥ 1 must divide the ``N`` entries of a row."""
    channels = int_iv("channels", channels, low=1, what="channels per pixel")
    if N % channels:
        raise ValueError(
            f"channels={channels!r} does not divide the N={N} entries of each input; pass images "
            f"flattened channel-major (C, H, W) so that N = channels·H·W, or channels=1 to "
            "count entries"
        )
    return channels
