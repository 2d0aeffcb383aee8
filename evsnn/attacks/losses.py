"""Per-sample losses on scores for the attacks, with their gradients with respect to the scores.

A score loss maps scores ``[B, C]`` to ``(loss [B], dloss/dscores [B, C])``, row ``b`` being
the derivative of sample ``b``'s own loss (no division by the batch size, unlike the batch-mean
losses of :mod:`evsnn.grad.losses`). The attacks *increase* the loss they are given.
"""

from __future__ import annotations

import numpy as np

from evsnn.grad.losses import _labels_iv

__all__ = ["ce_loss", "dlr_loss", "class_score", "SCORE_LOSSES"]


def _log_softmax(z):
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def ce_loss(scores, labels):
    """Per-sample cross-entropy ``−log softmax(scores)[label]`` and its score gradient
    ``softmax(scores) − onehot(label)``.

    Examples
    --------
    >>> loss, g = ce_loss(np.array([[0.0, 0.0], [0.0, np.log(3.0)]]), np.array([1, 1]))
    >>> np.round(loss, 6).tolist(), np.round(g, 6).tolist()
    ([0.693147, 0.287682], [[0.5, -0.5], [0.25, -0.25]])
    """
    z = np.asarray(scores)
    B = z.shape[0]
    labels = _labels_iv(labels, z)  # a label >= C (1-based labels) would index past the scores
    logp = _log_softmax(z)
    rows = np.arange(B)
    loss = -logp[rows, labels]
    g = np.exp(logp)
    g[rows, labels] -= 1.0
    return loss, g


def dlr_loss(scores, labels, target=None):
    """Difference-of-logits-ratio loss of Croce & Hein (2020), per sample.

    Untargeted: ``−(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e-12)``; targeted:
    ``−(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12)``, with ``π`` the classes sorted by
    decreasing score. The 1e-12 keeps a constant score vector finite (the authors use the same
    guard). The gradient treats the sorting (which classes are π1, π3, π4, and the arg-max
    other class) as fixed, as automatic differentiation would.

    Examples
    --------
    >>> z = np.array([[3.0, 1.0, 0.0, -1.0]])
    >>> loss, g = dlr_loss(z, np.array([0]))
    >>> round(float(loss[0]), 9)            # -(3 - 1) / (3 - 0)
    -0.666666667
    """
    z = np.asarray(scores)
    B, C = z.shape
    need = 3 if target is None else 4
    if C < need:
        raise ValueError(
            f"the {'targeted ' if target is not None else ''}DLR loss needs at least {need} "
            f"classes, got scores with {C}; use loss='ce'"
        )
    labels = _labels_iv(labels, z)
    if target is not None:
        target = _labels_iv(target, z, "target")
    rows = np.arange(B)
    order = np.argsort(-z, axis=1, kind="stable")
    p1, p3 = order[:, 0], order[:, 2]
    g = np.zeros_like(z)
    if target is None:
        masked = z.copy()
        masked[rows, labels] = -np.inf
        other = np.argmax(masked, axis=1)
        num = z[rows, labels] - z[rows, other]
        den = z[rows, p1] - z[rows, p3] + 1e-12
        np.add.at(g, (rows, labels), -1.0 / den)
        np.add.at(g, (rows, other), 1.0 / den)
        np.add.at(g, (rows, p1), num / den**2)
        np.add.at(g, (rows, p3), -num / den**2)
    else:
        p4 = order[:, 3]
        num = z[rows, labels] - z[rows, target]
        den = z[rows, p1] - 0.5 * (z[rows, p3] + z[rows, p4]) + 1e-12
        np.add.at(g, (rows, labels), -1.0 / den)
        np.add.at(g, (rows, target), 1.0 / den)
        np.add.at(g, (rows, p1), num / den**2)
        np.add.at(g, (rows, p3), -0.5 * num / den**2)
        np.add.at(g, (rows, p4), -0.5 * num / den**2)
    return -num / den, g


def class_score(scores, k, *, name="k"):
    """The score of class ``k[b]`` of each sample and its (one-hot) gradient (``name``: what the
    caller calls ``k`` in its messages)."""
    z = np.asarray(scores)
    k = _labels_iv(k, z, name=name)
    rows = np.arange(z.shape[0])
    g = np.zeros_like(z)
    g[rows, k] = 1.0
    return z[rows, k].copy(), g


SCORE_LOSSES = ("ce", "dlr")
