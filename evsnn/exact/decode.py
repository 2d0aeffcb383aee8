"""Exact-mode decoders and the gradients of decoded cross-entropy losses.

* ``first_spike``: first output spike time per neuron (``t_end`` if silent); the class score is
  ``-t_first`` (earliest spike wins; Ding 2025 Eq. 13 in continuous time ranks the same way).
* ``count``: number of output spikes (Eq. 12). Piecewise constant in every input and weight:
  its gradient is zero almost everywhere (and undefined where a spike appears or disappears),
  so :func:`loss_and_grad` returns zeros and says so in
  ``ExactLossGradient.zero_almost_everywhere``.
* ``max_membrane``: the maximum membrane of a non-spiking readout over the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evsnn._records import compact_repr
from evsnn.exact.simulate import ExactResult, simulate, vjp
from evsnn.grad.losses import cross_entropy

__all__ = ["decode", "loss_and_grad", "ExactLossGradient", "DECODERS"]

DECODERS = ("first_spike", "count", "max_membrane")


def _decoder_name_iv(method, name):
    if not isinstance(method, str) or method not in DECODERS:
        raise ValueError(f"{name}={method!r} is not a decoder; use one of {list(DECODERS)}")


def _decoder_iv(result, method, name="method"):
    if not isinstance(result, ExactResult):
        raise TypeError(f"result must be an ExactResult, got {type(result).__name__}")
    _decoder_name_iv(method, name)
    readout = result.network.layers[-1].readout
    if method == "max_membrane" and not readout:
        raise ValueError(f"{name}='max_membrane' needs a readout last layer (readout=True)")
    if method != "max_membrane" and readout:
        raise ValueError(f"{name}={method!r} needs a spiking last layer; use 'max_membrane'")


def decode(result, method="first_spike"):
    """Scores ``[B, n_out]``: ``-t_first`` (first_spike), spike counts, or readout maxima.

    Examples
    --------
    >>> from evsnn.exact import ExactDense, ExactNetwork, ExactNeuron, encoders, simulate
    >>> net = ExactNetwork([ExactDense([[2.0], [4.0]], ExactNeuron("if", "delta"))])
    >>> decode(simulate(net, encoders.current([[1.0]], 1.0)), "first_spike")
    array([[-0.5 , -0.25]])
    """
    _decoder_iv(result, method)
    last = result.layers[-1]
    if method == "first_spike":
        return -last.first_spike(result.t_end_ms)
    if method == "count":
        return last.counts.astype(np.float64)
    return result.readout_max.copy()


@dataclass(frozen=True)
class ExactLossGradient:
    """``loss`` (mean cross-entropy), ``scores`` [B, n_out], ``weights`` (dL/dW per layer),
    ``x`` (dL/dx [B, n_pixels] or None), ``flags`` [B] (nonzero: that sample's gradient is not
    the derivative of the loss -- a spike may appear or disappear, see
    :mod:`evsnn.exact.kernels`), ``zero_almost_everywhere`` (True for the count decoder)."""

    __repr__ = compact_repr  # arrays as dtype and shape

    loss: float
    scores: np.ndarray
    weights: tuple
    x: np.ndarray | None
    flags: np.ndarray
    zero_almost_everywhere: bool


def loss_and_grad(network, inputs, labels, *, decoder="first_spike", t_end_ms=None):
    """Cross-entropy of the decoded scores and its exact gradient w.r.t. weights and pixels.

    For ``first_spike`` a silent output neuron scores ``-t_end`` with zero gradient (and the
    sample is flagged: the loss jumps when that neuron's first spike enters the window).

    Examples
    --------
    >>> from evsnn.exact import ExactDense, ExactNetwork, ExactNeuron, encoders
    >>> net = ExactNetwork([ExactDense([[2.0], [4.0]], ExactNeuron("if", "delta"))])
    >>> g = loss_and_grad(net, encoders.current([[1.0]], 1.0), np.array([0]))

    By hand: first spikes ``t_i = theta / (w_i x)`` = 0.5, 0.25; loss ``log(1 + e^{0.25})``;
    ``dL/dx = -(p_1)(0.5) + p_1 (0.25)`` with ``p_1 = 1 / (1 + e^{-0.25})``:

    >>> round(g.loss, 6), g.x.round(6).tolist()
    (0.825939, [[-0.140544]])
    """
    _decoder_name_iv(decoder, "decoder")  # before the simulation it would waste
    result = simulate(network, inputs, t_end_ms=t_end_ms)
    _decoder_iv(result, decoder, "decoder")
    scores = decode(result, decoder)
    loss, g_scores = cross_entropy(scores, labels)
    L = len(network.layers)
    flags = result.flags.copy()
    if decoder == "count":
        zeros = tuple(np.zeros(l.weight.shape) for l in network.layers)
        gx = np.zeros((inputs.batch_size, inputs.n_in))
        return ExactLossGradient(float(loss), scores, zeros, gx, flags, True)
    grad_times = [None] * L
    grad_max = None
    if decoder == "first_spike":
        last = result.layers[-1]
        B = inputs.batch_size
        b_idx = np.repeat(np.arange(B), np.diff(last.offsets))
        first = last.ordinal == 0
        g = np.zeros(last.times.shape[0])
        g[first] = -g_scores[b_idx[first], last.neurons[first]]
        grad_times[-1] = g
        silent = last.counts == 0
        flags = flags | np.where(silent.any(axis=1), 2, 0)
    else:
        grad_max = g_scores
    grad = vjp(result, grad_times, grad_max)
    return ExactLossGradient(float(loss), scores, grad.weights, grad.x, flags, False)
