"""Output decoders: ``[T, B, N]`` outputs to ``[B, N]`` scores, per-step cumulative scores and
decision times. Vectorised NumPy (no compiled kernels).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "rate",
    "ttfs",
    "membrane",
    "decode",
    "cumulative",
    "decision_times",
    "predict",
    "DECODERS",
]


def _outputs_iv(outputs, name="outputs"):
    if not isinstance(outputs, np.ndarray):
        outputs = np.asarray(outputs)
    if outputs.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {outputs.dtype}")
    if outputs.ndim != 3:
        raise ValueError(f"{name} must be time-major [T, B, N], got shape {outputs.shape}")
    if outputs.shape[0] == 0:
        raise ValueError(f"{name} has T = 0 steps")
    if outputs.dtype.kind != "f":
        outputs = outputs.astype(np.float64)
    return outputs


def rate(outputs, *, mean=False):
    """Rate decoding, Ding 2025 Eq. 12: ``ω_i = Σ_t s_i[t]`` (or the mean over t).

    Examples
    --------
    >>> rate(np.array([[[1, 0]], [[1, 1]], [[0, 1]]]))
    array([[2., 2.]])
    """
    outputs = _outputs_iv(outputs)
    return outputs.mean(axis=0) if mean else outputs.sum(axis=0)


def _ttfs_weights(T, dtype):
    # Ding 2025 Eq. 13 discrete form: weight (T + 1 - t) for t = 1..T, i.e. T - t0 for t0 = 0..T-1
    return np.arange(T, 0, -1, dtype=dtype).reshape(T, 1, 1)


def ttfs(outputs):
    """TTFS decoding, Ding 2025 Eq. 13: ``ω_i = max_t (T + 1 - t) s_i[t]`` (t = 1..T); a silent
    neuron scores 0, the earliest spike scores highest.

    Examples
    --------
    >>> s = np.zeros((4, 1, 2)); s[1, 0, 0] = 1; s[3, 0, 0] = 1; s[2, 0, 1] = 1
    >>> ttfs(s)
    array([[3., 2.]])
    """
    outputs = _outputs_iv(outputs)
    return (_ttfs_weights(outputs.shape[0], outputs.dtype) * outputs).max(axis=0)


def membrane(outputs):
    """Membrane decoding: the mean over time of a non-spiking readout's potential."""
    return _outputs_iv(outputs).mean(axis=0)


DECODERS = {"rate": rate, "ttfs": ttfs, "membrane": membrane}


def _method_iv(method):
    if method not in DECODERS:
        raise ValueError(f"method={method!r} is not a decoder; use one of {sorted(DECODERS)}")


def decode(outputs, method="rate"):
    """Decode with the decoder named ``method`` ("rate", "ttfs" or "membrane")."""
    _method_iv(method)
    return DECODERS[method](outputs)


def cumulative(outputs, method="rate"):
    """Scores decoded from the first t+1 steps, for every t: ``[T, B, N]``.

    ``rate``: running spike count; ``membrane``: running mean; ``ttfs``: running maximum of
    ``(T + 1 - t) s[t]`` (the same first-spike ordering as the final TTFS scores). Used for the
    time-accumulated accuracy TAAcc[t] (Ding 2025 Eq. 26).

    Examples
    --------
    >>> cumulative(np.array([[[1.0]], [[0.0]], [[1.0]]]))[:, 0, 0]
    array([1., 1., 2.])
    """
    _method_iv(method)
    outputs = _outputs_iv(outputs)
    if method == "rate":
        return np.cumsum(outputs, axis=0)
    if method == "membrane":
        counts = np.arange(1, outputs.shape[0] + 1, dtype=outputs.dtype).reshape(-1, 1, 1)
        return np.cumsum(outputs, axis=0) / counts
    return np.maximum.accumulate(_ttfs_weights(outputs.shape[0], outputs.dtype) * outputs, axis=0)


def decision_times(spikes, *, origin=0):
    """Per-sample decision time: the step of the first output spike of any neuron.

    Returns an int array ``[B]`` with the given time origin (0: t0 = 0..T-1, 1: t = 1..T) and
    ``-1`` for a sample whose outputs never spike.

    Examples
    --------
    >>> s = np.zeros((3, 2, 2)); s[1, 0, 1] = 1; s[2, 0, 0] = 1
    >>> decision_times(s, origin=1)
    array([ 2, -1])
    """
    if origin not in (0, 1):
        raise ValueError(f"origin={origin!r} must be 0 or 1")
    spikes = _outputs_iv(spikes, "spikes")
    any_spike = spikes.any(axis=2)  # [T, B]
    first = np.argmax(any_spike, axis=0)
    fired = any_spike.any(axis=0)
    return np.where(fired, first + origin, -1).astype(np.int64)


def predict(scores):
    """Predicted class: the index of the largest score; ties go to the lowest index (as
    ``numpy.argmax`` and ``torch.argmax`` on CPU resolve them).
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [B, N], got shape {scores.shape}")
    return np.argmax(scores, axis=1)
