"""Neuron parameter records: frozen, validated on construction, units in the names.

Every neuron model of the papers maps onto one discrete update, evaluated per neuron and step::

    m = leak[t] * v + gain[t] * I[t]            (charge; HART Eq. 1, Stable Eq. 1)
    s = H(m - theta)                             (fire; ">=" or ">" from the Convention)
    v = v_rest if s else m     (hard reset)      (HART Eq. 2-3)
    v = m - s * theta          (soft reset)
    a = a + trace_coef * (s - a)                 (synaptic trace, Ding 2025 Methods)

The leak acts on ``v`` itself (decay towards 0), exactly as HART Eq. 1 and Ding 2025 Eq. 15 write
it; ``v_rest`` enters only through the hard reset. HART Eq. 2-3 write the hard reset as
``v = m − s (m − v_rest)``: equal in exact arithmetic, but in floating point ``m − (m − v_rest)``
need not round to ``v_rest``, and can change a later spike; evsnn sets ``v_rest`` itself, as
SpikingJelly's hard reset does. ``kernel_args()`` turns a record into the
plain floats the kernels take.
"""

from __future__ import annotations

from dataclasses import dataclass

from evsnn._checks import real_iv

__all__ = [
    "LIF",
    "IF",
    "TraceLIF",
    "DLIF",
    "Readout",
    "NeuronKernelArgs",
    "DING2025_TABLE1",
    "ding2025_table1",
]

_RESETS = ("hard", "soft")


def _check_reset(reset):
    if reset not in _RESETS:
        raise ValueError(f"reset={reset!r} is not a reset mode; use 'hard' or 'soft'")
    return reset


def _check_lif_fields(neuron):
    """Check and normalise the λ-LIF fields that :class:`LIF` and :class:`DLIF` share."""
    object.__setattr__(neuron, "lam", real_iv("lam", neuron.lam, low=0, high=1))
    object.__setattr__(neuron, "theta", real_iv("theta", neuron.theta, low=0, low_open=True))
    _check_reset(neuron.reset)
    for name in ("v_rest", "v_init"):
        object.__setattr__(neuron, name,
                           real_iv(name, getattr(neuron, name), hint="pass a finite float"))


@dataclass(frozen=True)
class NeuronKernelArgs:
    """The plain values a layer kernel needs (see the module docstring for the update)."""

    lam: float
    theta: float
    v_rest: float
    hard_reset: bool
    trace_coef: float  # 0.0: no trace
    emit_trace: bool
    spiking: bool
    v_init: float
    dlif: bool


@dataclass(frozen=True)
class LIF:
    """λ-LIF neuron (HART Eq. 1-4, Stable Eq. 1, RSC Eq. 1).

    Parameters
    ----------
    lam : float
        Leak factor λ in [0, 1]; λ = 1 is a non-leaky IF neuron.
    theta : float
        Firing threshold θ > 0.
    reset : {"hard", "soft"}
        Hard reset to ``v_rest`` or soft reset (subtract θ).
    v_rest : float
        Potential after a hard reset.
    v_init : float
        Membrane potential before the first step (``v(0)``).
    """

    lam: float = 1.0
    theta: float = 1.0
    reset: str = "hard"
    v_rest: float = 0.0
    v_init: float = 0.0

    def __post_init__(self):
        _check_lif_fields(self)

    def kernel_args(self) -> NeuronKernelArgs:
        return NeuronKernelArgs(
            self.lam, self.theta, self.v_rest, self.reset == "hard", 0.0, False, True,
            self.v_init, False,
        )


def IF(theta: float = 1.0, v_init: float = 0.0) -> LIF:
    """Integrate-and-fire neuron with reset by subtraction (Ding 2025 Eq. 4 and Methods, as used
    for Rueckauer conversion): a λ-LIF with λ = 1 and soft reset."""
    return LIF(lam=1.0, theta=theta, reset="soft", v_init=v_init)


@dataclass(frozen=True)
class TraceLIF:
    """LIF with synaptic trace (Ding 2025 Eq. 6, 15-16 and Methods; Table 1).

    ``U[t+1] = (1 - dt/τm) U[t] + Σ W a_pre``, spike ``H(U - U_th)``, reset to ``u0``, trace
    ``a ← a + (dt/τs)(s - a)``. The layer emits the spikes ``s`` or the trace ``a``.

    Parameters
    ----------
    dt_ms, tau_mem_ms, tau_syn_ms : float
        Time step and membrane / synaptic time constants in ms (``dt_ms <= tau``).
    theta : float
        Threshold U_th.
    u0 : float
        Resting (reset) potential U_0.
    output : {"spike", "trace"}
        What the layer passes to the next one.
    """

    dt_ms: float = 1.0
    tau_mem_ms: float = 10.0
    tau_syn_ms: float = 10.0
    theta: float = 1.0
    u0: float = 0.0
    output: str = "trace"
    v_init: float = 0.0

    def __post_init__(self):
        for name in ("dt_ms", "tau_mem_ms", "tau_syn_ms", "theta"):
            object.__setattr__(self, name, real_iv(name, getattr(self, name), low=0,
                                                   low_open=True))
        for name in ("u0", "v_init"):
            object.__setattr__(self, name,
                               real_iv(name, getattr(self, name), hint="pass a finite float"))
        for tau in ("tau_mem_ms", "tau_syn_ms"):
            if self.dt_ms > getattr(self, tau):
                raise ValueError(
                    f"dt_ms={self.dt_ms!r} exceeds {tau}={getattr(self, tau)!r}: the Euler factor "
                    f"1 - dt/tau would be negative; use dt_ms <= {tau}"
                )
        if self.output not in ("spike", "trace"):
            raise ValueError(f"output={self.output!r} is not valid; use 'spike' or 'trace'")

    @property
    def lam(self) -> float:
        return 1.0 - self.dt_ms / self.tau_mem_ms

    @property
    def trace_coef(self) -> float:
        return self.dt_ms / self.tau_syn_ms

    def kernel_args(self) -> NeuronKernelArgs:
        return NeuronKernelArgs(
            self.lam, self.theta, self.u0, True, self.trace_coef, self.output == "trace", True,
            self.v_init, False,
        )


@dataclass(frozen=True)
class DLIF:
    """Dynamic LIF (Stable §3.3): λ-LIF with a per-layer, per-step factor ``a[t]``.

    The factors live on the layer (``Dense(..., dlif_factors=...)``). Where they act is a
    convention: on the leak, ``v = λ a[t] u + I`` (paper), or on the input, ``v = λ u + a[t] I``
    (the authors' code); see ``Convention.dlif_factor``.
    """

    lam: float = 1.0
    theta: float = 1.0
    reset: str = "hard"
    v_rest: float = 0.0
    v_init: float = 0.0

    def __post_init__(self):
        _check_lif_fields(self)

    def kernel_args(self) -> NeuronKernelArgs:
        return NeuronKernelArgs(
            self.lam, self.theta, self.v_rest, self.reset == "hard", 0.0, False, True,
            self.v_init, True,
        )


@dataclass(frozen=True)
class Readout:
    """Non-spiking readout: the membrane integrates ``m = lam * m + I`` and is the output
    (decoded by the mean over time, as several of the papers decode their last linear layer).

    The default ``lam = 1`` integrates the current. The HART and Stable code end in a
    memoryless ``nn.Linear`` whose output is averaged over time (``model(x).mean(0)``): that is
    ``Readout(lam=0.0)`` with the ``"membrane"`` decoder (the two rank classes differently when
    the currents vary over time)."""

    lam: float = 1.0
    v_init: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "lam", real_iv("lam", self.lam, low=0, high=1))
        object.__setattr__(self, "v_init",
                           real_iv("v_init", self.v_init, hint="pass a finite float"))

    def kernel_args(self) -> NeuronKernelArgs:
        return NeuronKernelArgs(self.lam, 1.0, 0.0, False, 0.0, False, False, self.v_init, False)


@dataclass(frozen=True)
class Table1Entry:
    """One column of Ding 2025 Table 1."""

    dataset: str
    neuron: object
    T: int
    dt_ms: float
    t_sim_ms: float


# Ding 2025 Table 1 ("Parameters for LIF/IF neuron models"): MNIST uses IF neurons (R = C = 1)
# with reset by subtraction for the converted SNN; FashionMNIST τm = τs = 10 ms; CIFAR-10 /
# ImageNet-100 τm = τs = 2 ms; U0 = 0, U_th = 1, Δt = 1 ms throughout.
DING2025_TABLE1 = {
    "MNIST": Table1Entry("MNIST", IF(theta=1.0), 30, 1.0, 30.0),
    "FashionMNIST": Table1Entry(
        "FashionMNIST", TraceLIF(dt_ms=1.0, tau_mem_ms=10.0, tau_syn_ms=10.0, theta=1.0), 10, 1.0,
        10.0,
    ),
    "CIFAR10": Table1Entry(
        "CIFAR10", TraceLIF(dt_ms=1.0, tau_mem_ms=2.0, tau_syn_ms=2.0, theta=1.0), 10, 1.0, 10.0
    ),
}


def ding2025_table1(dataset: str) -> Table1Entry:
    """Ding 2025 Table 1 parameters by data-set name ("MNIST", "FashionMNIST", "CIFAR10")."""
    aliases = {k.lower().replace("-", ""): k for k in DING2025_TABLE1}
    aliases.update({"cifar10": "CIFAR10", "imagenet100": "CIFAR10", "fmnist": "FashionMNIST"})
    key = aliases.get(str(dataset).lower().replace("-", "").replace("_", ""))
    if key is None:
        raise ValueError(
            f"dataset={dataset!r} has no Table 1 entry; use one of {sorted(DING2025_TABLE1)}"
        )
    return DING2025_TABLE1[key]
