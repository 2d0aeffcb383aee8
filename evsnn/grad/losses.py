"""Losses on decoded scores and the vector-Jacobian products of the decoders.

A loss returns ``(loss, dL/dscores)``; ``decoder_vjp`` maps ``dL/dscores`` ``[B, N]`` back to
``dL/doutputs`` ``[T, B, N]``. Losses are means over the batch.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "cross_entropy",
    "softmax",
    "log_softmax",
    "decoder_vjp",
    "ttfs_loss",
    "spike_count_loss",
    "TTFS_LOSSES",
]


def log_softmax(z):
    z = np.asarray(z)
    zmax = z.max(axis=1, keepdims=True)
    shifted = z - zmax
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(z):
    return np.exp(log_softmax(z))


def _labels_iv(labels, scores):
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != scores.shape[0]:
        raise ValueError(
            f"labels must be [B] with B = {scores.shape[0]}, got shape {labels.shape}"
        )
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(
            f"labels must lie in [0, {scores.shape[1] - 1}], got [{labels.min()}, {labels.max()}]"
        )
    return labels


def cross_entropy(scores, labels):
    """Mean cross-entropy of softmax(scores); returns ``(loss, dL/dscores)``.

    Examples
    --------
    >>> loss, g = cross_entropy(np.array([[0.0, 0.0]]), np.array([1]))
    >>> round(float(loss), 6), g.tolist()
    (0.693147, [[0.5, -0.5]])
    """
    scores = np.asarray(scores, dtype=np.result_type(scores, np.float32))
    if scores.ndim != 2:
        raise ValueError(f"scores must be [B, N], got shape {scores.shape}")
    labels = _labels_iv(labels, scores)
    B = scores.shape[0]
    logp = log_softmax(scores)
    loss = -logp[np.arange(B), labels].mean()
    grad = np.exp(logp)
    grad[np.arange(B), labels] -= 1.0
    return loss, grad / B


def ttfs_loss(scores, labels, variant="ce"):
    """TTFS-decoding losses of the Ding 2025 code.

    ``"ce"``: cross-entropy on the TTFS scores ω (Eq. 13). ``"double_softmax"``: cross-entropy applied to
    softmax(ω) — the code applies softmax twice (once explicitly, once inside the CE); kept to
    reproduce it and flagged as such. ``"mse_onehot"``: mean squared error between softmax(ω)
    and the one-hot label.
    """
    if variant == "ce":
        return cross_entropy(scores, labels)
    scores = np.asarray(scores, dtype=np.result_type(scores, np.float32))
    labels = _labels_iv(labels, scores)
    p = softmax(scores)
    B, N = scores.shape
    if variant == "double_softmax":
        loss, g_p = cross_entropy(p, labels)
    elif variant == "mse_onehot":
        onehot = np.zeros_like(p)
        onehot[np.arange(B), labels] = 1.0
        loss = ((p - onehot) ** 2).sum(axis=1).mean()
        g_p = 2.0 * (p - onehot) / B
    else:
        raise ValueError(
            f"variant={variant!r} is not a TTFS loss; use one of {sorted(TTFS_LOSSES)}"
        )
    # softmax vjp: g_z = p * (g_p - <g_p, p>)
    g = p * (g_p - (g_p * p).sum(axis=1, keepdims=True))
    return loss, g


TTFS_LOSSES = {"ce": "cross-entropy on ω", "double_softmax": "CE on softmax(ω) (softmax twice)",
               "mse_onehot": "MSE between softmax(ω) and the one-hot label"}


def spike_count_loss(counts, labels, *, desired_true, desired_false):
    """TSSL-BP spike-count loss (Zhang & Li 2020): ``½ Σ_i (count_i − target_i)²`` averaged over
    the batch, with target ``desired_true`` spikes for the label neuron and ``desired_false`` for
    the others. Returns ``(loss, dL/dcounts)``."""
    counts = np.asarray(counts, dtype=np.result_type(counts, np.float32))
    labels = _labels_iv(labels, counts)
    if desired_true < 0 or desired_false < 0:
        raise ValueError(
            f"desired counts must be >= 0, got desired_true={desired_true}, "
            f"desired_false={desired_false}"
        )
    B = counts.shape[0]
    target = np.full_like(counts, float(desired_false))
    target[np.arange(B), labels] = float(desired_true)
    diff = counts - target
    return 0.5 * (diff**2).sum(axis=1).mean(), diff / B


def decoder_vjp(method, g_scores, outputs):
    """``dL/doutputs`` ``[T, B, N]`` from ``dL/dscores`` for the decoders of
    :mod:`evsnn.decoders`.

    ``rate`` (sum over t): every step gets ``g``. ``membrane`` (mean): ``g / T``. ``ttfs``
    (``max_t (T − t0) s[t0]``): the whole gradient goes to the first step attaining the maximum,
    times its weight ``T − t0`` (for a silent neuron that is step 0, as ``argmax`` resolves ties).
    """
    outputs = np.asarray(outputs)
    T = outputs.shape[0]
    g_scores = np.asarray(g_scores, dtype=outputs.dtype)
    if method == "rate":
        return np.broadcast_to(g_scores, outputs.shape).copy()
    if method == "membrane":
        return np.broadcast_to(g_scores / T, outputs.shape).copy()
    if method == "ttfs":
        weights = np.arange(T, 0, -1, dtype=outputs.dtype).reshape(T, 1, 1)
        first = np.argmax(weights * outputs, axis=0)  # [B, N]
        g = np.zeros_like(outputs)
        b_idx, n_idx = np.indices(first.shape)
        g[first, b_idx, n_idx] = g_scores * (T - first)
        return g
    raise ValueError(f"method={method!r} is not a decoder; use 'rate', 'ttfs' or 'membrane'")
