"""Exact mode: continuous-time, event-driven simulation with exact spike times and explicit
spike-time gradients (DESIGN.md, "Exact mode").

Public API: :class:`ExactNeuron`, :class:`ExactDense`, :class:`ExactNetwork` (records),
:mod:`evsnn.exact.encoders` (continuous-time encoders), :func:`simulate` (forward),
:func:`vjp` (adjoint over the events), :func:`decode` / :func:`loss_and_grad` (decoders and
cross-entropy gradients), :func:`spike_time_jacobian`, and :mod:`evsnn.exact.convergence`
(clock mode at Δt -> 0 against exact mode).
"""

from evsnn.exact import encoders
from evsnn.exact.decode import DECODERS, ExactLossGradient, decode, loss_and_grad
from evsnn.exact.neuron import ExactDense, ExactNetwork, ExactNeuron
from evsnn.exact.simulate import (
    ExactGradient,
    ExactLayerEvents,
    ExactResult,
    SpikeTimeJacobian,
    simulate,
    spike_time_jacobian,
    vjp,
)

__all__ = [
    "ExactNeuron",
    "ExactDense",
    "ExactNetwork",
    "encoders",
    "simulate",
    "vjp",
    "ExactResult",
    "ExactLayerEvents",
    "ExactGradient",
    "SpikeTimeJacobian",
    "spike_time_jacobian",
    "decode",
    "loss_and_grad",
    "ExactLossGradient",
    "DECODERS",
]

from evsnn.exact import convergence  # noqa: E402  (imports evsnn.clock; kept last)

__all__ += ["convergence"]
