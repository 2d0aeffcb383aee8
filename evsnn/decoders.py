"""Output decoders: ``[T, B, N]`` outputs to ``[B, N]`` scores, per-step cumulative scores and
decision times. Vectorised NumPy (no compiled kernels). Outputs must be numeric, time-major
``[T, B, N]`` with ``T >= 1`` and finite (ValueError for NaN or infinite values). Scores come in
the outputs' float dtype: float64 for integers, float32 for float16 (read exactly).
"""

from __future__ import annotations

import numpy as np

from evsnn._checks import flag_iv, float_input_iv, int_iv

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
    # a NaN would be a spike to decision_times and a score no argmax can rank
    if outputs.dtype.kind == "f" and not np.all(np.isfinite(outputs)):
        raise ValueError(
            f"{name} holds NaN or infinite values; pass finite outputs (check the network's "
            "weights and inputs for NaN or overflow)"
        )
    return float_input_iv(name, outputs, "the decoders take", "outputs")


def _time_sum(outputs):
    """``Σ_t outputs[t]`` added in increasing t, each (sample, neuron) on its own, so a score
    does not depend on the batch or the memory layout and equals :func:`cumulative`'s last step
    bit for bit. (NumPy's ``sum(axis=0)`` adds a contiguous time axis pairwise -- one sample with
    one neuron, or a time-last array -- and other layouts in time order.)"""
    total = outputs[0].copy()
    for t in range(1, outputs.shape[0]):
        total += outputs[t]
    return total


def rate(outputs, *, mean=False):
    """Rate decoding, Ding 2025 Eq. 12: ``ω_i = Σ_t s_i[t]`` (or the mean over t), summed in
    time order (the same bits for a sample alone or in any batch).

    Examples
    --------
    >>> rate(np.array([[[1, 0]], [[1, 1]], [[0, 1]]]))
    array([[2., 2.]])
    """
    mean = flag_iv("mean", mean)
    outputs = _outputs_iv(outputs)
    total = _time_sum(outputs)
    return total / outputs.dtype.type(outputs.shape[0]) if mean else total


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
    """Membrane decoding: the mean over time of a non-spiking readout's potential (summed in
    time order, as :func:`rate`)."""
    outputs = _outputs_iv(outputs)
    return _time_sum(outputs) / outputs.dtype.type(outputs.shape[0])


DECODERS = {"rate": rate, "ttfs": ttfs, "membrane": membrane}


def _method_iv(method):
    if not isinstance(method, str):
        raise TypeError(f"method must be a decoder name, one of {sorted(DECODERS)}; got {method!r}")
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
    # int_iv refuses True and 1.0, which `origin in (0, 1)` took as 1
    origin = int_iv("origin", origin, low=0, high=1, hint="0: t0 = 0..T-1, 1: t = 1..T")
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
    if scores.dtype.kind not in "biuf":  # argmax would rank strings or objects
        raise TypeError(f"scores must be numeric, got dtype {scores.dtype}; pass [B, N] scores")
    if scores.ndim != 2:
        raise ValueError(f"scores must be [B, N], got shape {scores.shape}")
    if scores.shape[1] == 0:
        raise ValueError(f"scores have no classes (shape {scores.shape}); pass [B, N] scores "
                         "with N >= 1")
    if scores.dtype.kind == "f":
        nan_rows = np.flatnonzero(np.isnan(scores).any(axis=1))
        if nan_rows.size:  # argmax would name the NaN's class
            raise ValueError(
                f"scores hold NaN (sample(s) {nan_rows[:10].tolist()}); a NaN score has no "
                "rank -- check the network's weights and outputs for NaN or overflow"
            )
    return np.argmax(scores, axis=1)
