"""Clock-mode gradient methods, losses and the encoders' input-gradient rules.

The entry point for attacks and training is :func:`loss_and_grad`: encode, simulate (recorded),
decode, loss, explicit backward, input-gradient rule. :func:`backward` is the layer-by-layer
backward pass for a given upstream gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evsnn.clock import simulate
from evsnn.conventions import DEFAULT, get_convention
from evsnn.decoders import decode
from evsnn.encoders import encode
from evsnn.grad.backward import METHODS, GradientResult, backward, rga_factor
from evsnn.grad.encoder_rules import input_gradient
from evsnn.grad.losses import (
    StableLoss,
    cross_entropy,
    decoder_vjp,
    e_rsct_loss,
    spike_count_loss,
    stable_loss,
    ttfs_loss,
)
from evsnn.grad.surrogates import Sigmoid, Triangle, surrogate_derivative

__all__ = [
    "LossGrad",
    "loss_and_grad",
    "backward",
    "GradientResult",
    "METHODS",
    "Sigmoid",
    "Triangle",
    "surrogate_derivative",
    "input_gradient",
    "cross_entropy",
    "ttfs_loss",
    "spike_count_loss",
    "decoder_vjp",
    "stable_loss",
    "StableLoss",
    "e_rsct_loss",
    "rga_factor",
    "mixed",
    "ann_gradient",
    "grade",
    "GradeResult",
    "GradientEstimate",
    "compare_gradients",
]


@dataclass(frozen=True)
class LossGrad:
    """Result of :func:`loss_and_grad`.

    Attributes
    ----------
    loss : float
        Mean loss over the batch.
    scores : ndarray [B, n_out]
        Decoded outputs.
    correct : ndarray [B] of bool
        ``argmax(scores) == label``.
    image : ndarray [B, n_in] or None
        dL/d(image) through the encoder's input-gradient rule (None when a sequence was given).
    grads : GradientResult
        dL/d(sequence), dL/dW, ...
    sequence : ndarray [T, B, n_in]
        The encoded input that was simulated.
    """

    loss: float
    scores: np.ndarray
    correct: np.ndarray
    image: np.ndarray | None
    grads: GradientResult
    sequence: np.ndarray


def loss_and_grad(
    network, x, labels, *, T=None, encoder=None, decoder="rate", loss="ce", method="bptt",
    convention=DEFAULT, rng=None, sigma=None, surrogate=None, **method_options,
):
    """Loss and gradients of an SNN on a batch.

    Parameters
    ----------
    network : Network
    x : array
        Images ``[B, n_in]`` in [0, 1] with ``encoder`` and ``T``, or an encoded sequence
        ``[T, B, n_in]`` with ``encoder=None``.
    labels : int array [B]
    decoder : {"rate", "ttfs", "membrane"}
    loss : {"ce"} or a TTFS variant ("double_softmax", "mse_onehot") for ``decoder="ttfs"``
    method : one of :data:`METHODS`, or ``"ann"``
        ``"ann"`` is CBA (Sharmin et al. 2019; HART's baseline): the gradient of the source ReLU
        ANN, passed as ``ann=<ANN or Conversion>`` (see :mod:`evsnn.grad.cba`); the loss, scores
        and correctness stay the SNN's.
    convention, rng, sigma
        Passed to the encoder and the simulator.
    surrogate, method_options
        Passed to :func:`backward`.

    Examples
    --------
    >>> from evsnn.clock import Network
    >>> from evsnn.params import LIF
    >>> net = Network.mlp([4, 3], LIF(lam=0.9, theta=0.5), rng=0, scale=2.0)
    >>> r = loss_and_grad(net, np.full((2, 4), 0.5), np.array([0, 1]), T=5, encoder="current")
    >>> r.image.shape, r.grads.weights[0].shape
    ((2, 4), (3, 4))
    """
    conv = get_convention(convention)
    if encoder is None:
        seq = np.asarray(x)
        if seq.ndim != 3:
            raise ValueError(
                f"x must be an encoded sequence [T, B, N] when encoder=None, got shape {seq.shape}"
            )
    else:
        if T is None:
            raise ValueError("T is required when an encoder is given")
        seq = encode(x, encoder, T, convention=conv, rng=rng, sigma=sigma)
    res = simulate(network, seq, convention=conv, record=True)
    scores = decode(res.output, decoder)
    labels = np.asarray(labels)
    if loss == "ce":
        value, g_scores = cross_entropy(scores, labels)
    elif decoder == "ttfs":
        value, g_scores = ttfs_loss(scores, labels, loss)
    else:
        raise ValueError(f"loss={loss!r} is not available for decoder={decoder!r}; use 'ce'")
    g_out = decoder_vjp(decoder, g_scores, res.output)
    if method == "ann":  # CBA (evsnn.grad.cba): the SNN's loss, the source ANN's gradient
        from evsnn.grad.cba import cba_gradients

        grads, image = cba_gradients(
            network, seq, None if encoder is None else x, labels, **method_options
        )
        correct = np.argmax(scores, axis=1) == labels
        return LossGrad(float(value), scores, correct, image, grads, seq)
    grads = backward(
        network, seq, res, g_out, method=method, surrogate=surrogate, **method_options
    )
    image = None if encoder is None else input_gradient(encoder, grads.input, seq)
    correct = np.argmax(scores, axis=1) == labels
    return LossGrad(float(value), scores, correct, image, grads, seq)


def mixed(beta, a, b):
    """HART Eq. A6: the mixed gradient ``β·a + (1 − β)·b`` of two gradients (arrays, or
    :class:`GradientResult` records combined field by field)."""
    if not 0 <= beta <= 1:
        raise ValueError(f"beta={beta!r} must lie in [0, 1]")
    if isinstance(a, GradientResult) and isinstance(b, GradientResult):

        def comb(u, v):
            return None if u is None else beta * u + (1 - beta) * v

        return GradientResult(
            input=comb(a.input, b.input),
            weights=[comb(u, v) for u, v in zip(a.weights, b.weights)],
            biases=[comb(u, v) for u, v in zip(a.biases, b.biases)],
            dlif_factors=[comb(u, v) for u, v in zip(a.dlif_factors, b.dlif_factors)],
            membrane=[comb(u, v) for u, v in zip(a.membrane, b.membrane)],
            method=f"mixed({beta}, {a.method}, {b.method})",
        )
    return beta * np.asarray(a) + (1 - beta) * np.asarray(b)


# the grader (evsnn.grad.grade) imports evsnn.exact lazily: evsnn.exact imports evsnn.grad.losses
from evsnn.grad.grade import GradeResult, GradientEstimate, compare_gradients, grade  # noqa: E402
from evsnn.grad.cba import ann_gradient  # noqa: E402  (CBA, method "ann")
