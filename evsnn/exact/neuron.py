"""Exact-mode neuron, layer and network records (continuous time, units in the names).

Membrane dynamics between input events (Ding 2025 Methods Eq. 4-5)::

    IF  : C dV/dt = I_syn(t) + I_c
    LIF : tau_m dV/dt = -(V - U0) + R (I_syn(t) + I_c)

``I_c`` is a constant current (current coding of the first layer, ``W x``). The synapse decides
what an input spike of weight ``w`` does:

* ``"delta"``: ``V`` jumps by ``w`` (a threshold crossing can only happen at an input event,
  unless a constant current drives the membrane between events);
* ``"exponential"``: ``I_syn`` jumps by ``w`` and decays, ``tau_s dI/dt = -I`` (``tau_s != tau_m``);
* ``"alpha"``: the same with ``tau_s = tau_m`` (Ding 2025 Table 1), whose membrane kernel is
  ``t e^{-t/tau}``.

A spike is emitted when ``V`` reaches ``theta``; the reset is hard (``V = U0``) or soft
(``V = V - theta``), followed by an optional absolute refractory period during which ``V`` is
clamped (delta inputs arriving then are lost; synaptic currents keep integrating). A soft reset
from ``V >= 2 theta`` (a delta jump) fires again at once without a refractory period, and leaves
``V`` above threshold through one: the neuron then fires when the period ends. Such a burst
of k spikes at one instant is what the clock simulator's k spikes on consecutive steps (it emits
at most one per step) tend to as Δt → 0; downstream, the burst arrives as one block (one cause),
and where its order against other inputs of that instant matters the spikes are flagged
COINCIDENT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evsnn._checks import real_iv
from evsnn.params import LIF, TraceLIF

__all__ = ["ExactNeuron", "ExactDense", "ExactNetwork", "MODELS", "SYNAPSES"]

MODELS = ("if", "lif")
SYNAPSES = ("delta", "exponential", "alpha")


@dataclass(frozen=True)
class ExactNeuron:
    """A continuous-time IF or LIF neuron with its synapse (see the module docstring).

    Parameters
    ----------
    model : {"lif", "if"}
        Leaky (Eq. 5) or non-leaky (Eq. 4) integration.
    synapse : {"delta", "exponential", "alpha"}
        Input-spike kernel; ``"alpha"`` requires ``tau_syn_ms == tau_mem_ms``, ``"exponential"``
        requires them to differ (the two-exponential closed form divides by their difference).
    tau_mem_ms, tau_syn_ms : float
        Membrane and synaptic time constants (ms); ``tau_mem_ms`` is unused by IF.
    r_ohm, c_mf : float
        Resistance R (LIF) and capacitance C (IF), Ding 2025 Table 1 (both 1.0 there).
    theta : float
        Threshold U_th (must exceed ``u0`` and ``v_init``).
    u0 : float
        Resting potential; the hard reset value.
    reset : {"hard", "soft"}
        Reset to ``u0`` or subtract ``theta``.
    t_ref_ms : float
        Absolute refractory period (0: none).
    v_init : float
        Membrane potential at t = 0.
    """

    model: str = "lif"
    synapse: str = "delta"
    tau_mem_ms: float = 10.0
    tau_syn_ms: float = 5.0
    r_ohm: float = 1.0
    c_mf: float = 1.0
    theta: float = 1.0
    u0: float = 0.0
    reset: str = "hard"
    t_ref_ms: float = 0.0
    v_init: float = 0.0

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model={self.model!r} is not a neuron model; use 'lif' or 'if'")
        if self.synapse not in SYNAPSES:
            raise ValueError(
                f"synapse={self.synapse!r} is not a synapse; use one of {list(SYNAPSES)}"
            )
        if self.reset not in ("hard", "soft"):
            raise ValueError(f"reset={self.reset!r} is not a reset mode; use 'hard' or 'soft'")
        for name in ("tau_mem_ms", "tau_syn_ms", "r_ohm", "c_mf", "theta"):
            object.__setattr__(self, name, real_iv(name, getattr(self, name), low=0,
                                                   low_open=True))
        for name in ("u0", "v_init"):
            object.__setattr__(self, name,
                               real_iv(name, getattr(self, name), hint="pass a finite float"))
        object.__setattr__(self, "t_ref_ms", real_iv(
            "t_ref_ms", self.t_ref_ms, low=0, hint="the absolute refractory period, 0: none"))
        if self.u0 >= self.theta or self.v_init >= self.theta:
            raise ValueError(
                f"u0={self.u0!r} and v_init={self.v_init!r} must lie below theta={self.theta!r}; "
                "a neuron must start and reset below threshold"
            )
        if self.model == "if" and self.synapse == "alpha":
            raise ValueError(
                "synapse='alpha' (tau_s = tau_m) needs model='lif'; an IF neuron has no tau_m, "
                "use synapse='exponential'"
            )
        if self.synapse == "alpha" and self.tau_syn_ms != self.tau_mem_ms:
            raise ValueError(
                f"synapse='alpha' needs tau_syn_ms == tau_mem_ms, got {self.tau_syn_ms!r} and "
                f"{self.tau_mem_ms!r}; use synapse='exponential' for different constants"
            )
        if self.model == "lif" and self.synapse == "exponential":
            # only equality is refused (the kernels divide by tau_s - tau_m, and write V near
            # tau_s = tau_m so that it keeps its digits): a tolerance here refused both synapses
            # for 0 < |tau_s - tau_m| <= 1e-6 tau_m, each message pointing at the other
            if self.tau_syn_ms == self.tau_mem_ms:
                raise ValueError(
                    f"synapse='exponential' needs tau_syn_ms != tau_mem_ms (got {self.tau_syn_ms!r}"
                    f" and {self.tau_mem_ms!r}); use synapse='alpha' for equal constants"
                )

    @classmethod
    def from_params(cls, params, *, synapse=None, t_ref_ms=0.0):
        """The continuous-time neuron whose Euler discretisation is ``params``.

        ``TraceLIF`` (Ding 2025 Eq. 15-16): LIF with hard reset to ``u0`` and an alpha
        (``tau_s = tau_m``) or exponential synapse. A ``LIF`` record with ``lam = 1`` and soft reset
        (``evsnn.params.IF``, Rueckauer conversion): IF with delta synapses, C = 1.

        Examples
        --------
        >>> from evsnn.params import TraceLIF, IF
        >>> ExactNeuron.from_params(TraceLIF(tau_mem_ms=10.0, tau_syn_ms=10.0)).synapse
        'alpha'
        >>> ExactNeuron.from_params(IF()).model
        'if'
        """
        if isinstance(params, TraceLIF):
            same = params.tau_syn_ms == params.tau_mem_ms
            syn = synapse or ("alpha" if same else "exponential")
            return cls(
                "lif", syn, params.tau_mem_ms, params.tau_syn_ms, 1.0, 1.0, params.theta,
                params.u0, "hard", t_ref_ms, params.v_init,
            )
        if isinstance(params, LIF) and params.lam == 1.0:
            return cls(
                "if", synapse or "delta", 10.0, 5.0, 1.0, 1.0, params.theta, params.v_rest,
                params.reset, t_ref_ms, params.v_init,
            )
        raise TypeError(
            f"params must be a TraceLIF or an IF (LIF with lam=1) record, got {params!r}; a "
            "discrete lam < 1 does not fix tau_m without dt -- build an ExactNeuron directly"
        )

    def kernel_args(self):
        """The plain values the exact kernels take, in their order."""
        return (
            MODELS.index(self.model), SYNAPSES.index(self.synapse), self.tau_mem_ms,
            self.tau_syn_ms, self.r_ohm, self.c_mf, self.u0, self.theta, self.reset == "hard",
            self.t_ref_ms, self.v_init,
        )


@dataclass(frozen=True, eq=False)
class ExactDense:
    """A dense layer of exact-mode neurons.

    Parameters
    ----------
    weight : array, shape (n_out, n_in)
        Weights (``Linear.weight`` layout): the jump of V (delta) or of I_syn per input spike,
        and the factor of the constant current ``W x`` under current coding.
    neuron : ExactNeuron
    readout : bool, default False
        A non-spiking readout (last layer only): the threshold is ignored and the decoded value
        is the maximum membrane over the window.
    """

    weight: np.ndarray
    neuron: ExactNeuron = ExactNeuron()
    readout: bool = False

    def __post_init__(self):
        w = np.asarray(self.weight)
        if w.dtype.kind not in "fiu" or w.dtype == np.bool_:
            raise TypeError(f"weight must hold real numbers, got dtype {w.dtype}")
        if w.ndim != 2:
            raise ValueError(f"weight must be 2-D (n_out, n_in), got shape {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError("weight holds NaN or infinite values; pass finite numbers")
        if not isinstance(self.neuron, ExactNeuron):
            raise TypeError(f"neuron must be an ExactNeuron, got {type(self.neuron).__name__}")
        w = np.array(w, dtype=np.float64, copy=True)
        w.flags.writeable = False
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "readout", bool(self.readout))

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]


@dataclass(frozen=True, eq=False)
class ExactNetwork:
    """A feed-forward stack of :class:`ExactDense` layers (a readout only as the last)."""

    layers: tuple

    def __post_init__(self):
        layers = tuple(self.layers)
        if not layers:
            raise ValueError("layers is empty; an ExactNetwork needs at least one ExactDense")
        for i, layer in enumerate(layers):
            if not isinstance(layer, ExactDense):
                raise TypeError(f"layers[{i}] must be an ExactDense, got {type(layer).__name__}")
            if i > 0 and layer.n_in != layers[i - 1].n_out:
                raise ValueError(
                    f"layers[{i}] takes {layer.n_in} inputs but layers[{i - 1}] emits "
                    f"{layers[i - 1].n_out}; the shapes must chain"
                )
            if layer.readout and i != len(layers) - 1:
                raise ValueError(f"layers[{i}] is a readout; only the last layer may be one")
        object.__setattr__(self, "layers", layers)

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    def with_weights(self, weights) -> "ExactNetwork":
        """The same architecture with new weight matrices (one per layer)."""
        weights = list(weights)
        if len(weights) != len(self.layers):
            raise ValueError(
                f"got {len(weights)} weight matrices for {len(self.layers)} layers; pass one each"
            )
        return ExactNetwork(
            tuple(ExactDense(w, l.neuron, l.readout) for l, w in zip(self.layers, weights))
        )
