"""Input-gradient rules of the encoders: dL/d(sequence) ``[T, B, ...]`` to dL/d(image) ``[B, ...]``.

Ding 2025 "Attack methods": a straight-through estimator summed over steps for Poisson coding;
for RateSynS / RateSynE / TTFS the sum over the steps where the pixel spikes (a pixel that emits
no spike — e.g. x = 0 under the code's TTFS rule — gets zero gradient); exact for current coding
(the sequence is x at every step) and for RSC coding through the clamp (zero where the noisy
value was clamped to 0 or 1).

Only the encoded values are known here, so an RSC value that lands exactly on 0 or 1 counts as
clamped: at an end of the clamp the one-sided derivative pointing out of [0, 1] is taken, 0
(PyTorch's ``clamp`` takes the inner one, 1). This is a set of measure zero under RSC's noise, but
with σ = 0 it zeroes the gradient of every pixel at 0 or 1, where current coding passes it, and in
float32 a noisy value within half an ulp below 1 rounds to 1.
"""

from __future__ import annotations

import numpy as np

from evsnn.encoders import fused_parts

__all__ = ["input_gradient", "RULES"]

RULES = {
    "current": "sum over steps (exact)",
    "poisson": "straight-through, sum over steps",
    "ratesyn_start": "sum over spiking steps",
    "ratesyn_end": "sum over spiking steps",
    "ttfs": "sum over spiking steps",
    "rsc_fixed": "sum over steps inside the clamp (exact)",
    "rsc_fresh": "sum over steps inside the clamp (exact)",
}


def _single(method, g_seq, seq):
    if method in ("current", "poisson"):
        return g_seq.sum(axis=0)
    if method in ("ratesyn_start", "ratesyn_end", "ttfs"):
        return (g_seq * (seq != 0)).sum(axis=0)
    if method in ("rsc_fixed", "rsc_fresh"):
        return (g_seq * ((seq > 0) & (seq < 1))).sum(axis=0)
    raise ValueError(f"method={method!r} has no input-gradient rule; use one of {sorted(RULES)} "
                     "or 'fused:a+b'")


def input_gradient(method, g_seq, seq):
    """dL/dx from dL/d(seq) under the encoder ``method`` (see the module docstring).

    ``seq`` is the encoded sequence the forward pass used (its spikes / clamp pattern decide the
    rule's mask). Fused encodings (``"fused:a+b"``) split the feature axis into equal parts and
    add the parts' rules.

    Examples
    --------
    >>> seq = np.array([[[1.0, 0.0]], [[0.0, 0.0]]])       # T=2, B=1: pixel 1 never spikes
    >>> input_gradient("ttfs", np.ones_like(seq), seq)
    array([[1., 0.]])
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be an encoder's name (one of {sorted(RULES)} or "
                        f"'fused:a+b'), got {type(method).__name__} {method!r}")
    g_seq = np.asarray(g_seq)
    seq = np.asarray(seq)
    if g_seq.shape != seq.shape:
        raise ValueError(f"g_seq has shape {g_seq.shape} but seq has {seq.shape}; they must match")
    parts = fused_parts(method)
    if parts is not None:
        if seq.ndim < 3:
            raise ValueError(
                f"seq has shape {seq.shape}; a fused sequence is [T, B, features...] with the "
                "members side by side on the first feature axis"
            )
        k = len(parts)
        if k == 0:  # as encode refuses it
            raise ValueError(f"method={method!r} names no encoder after 'fused:'; use e.g. "
                             "'fused:current+ttfs'")
        if seq.shape[2] % k:
            raise ValueError(
                f"a fused sequence with {seq.shape[2]} features cannot split into {k} parts"
            )
        n = seq.shape[2] // k
        return sum(
            _single(p, g_seq[:, :, j * n : (j + 1) * n], seq[:, :, j * n : (j + 1) * n])
            for j, p in enumerate(parts)
        )
    return _single(method, g_seq, seq)
