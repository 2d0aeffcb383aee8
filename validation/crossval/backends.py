"""PyTorch backends for :func:`validation.crossval.compare`: lookup and the shared machinery.

``get_backend(name, dtype)`` returns a ready adapter for ``"spikingjelly"``, ``"snntorch"`` or
``"norse"`` (modules of the same names beside this one); ``available_backends()`` lists the ones
whose packages are installed. Torch and the frameworks are optional (``make crossval-deps``):
nothing here imports them until an adapter is made, so this module and the adapters import
without torch.

Every adapter is a :class:`TorchBackend`: ``run`` rebuilds the framework model from the evsnn
``Network`` (the same weights, cast to the adapter's torch dtype), feeds it the same inputs and
returns a :class:`~validation.crossval.BackendRun` with each layer's spikes and its membrane
before reset, read from the framework; ``gradients`` runs the same model under torch autograd
with the framework's own surrogate and returns ``(dL/dinput, [dL/dW per layer])`` for the upstream
gradient ``g_output`` on the last layer's output.

What the adapters share (and why)
---------------------------------
* Synaptic input is a ``torch.nn.Linear`` (or the framework's subclass of it) holding the evsnn
  weights (and bias); it sees the whole ``[T, B, n_in]`` sequence, as all three frameworks'
  multi-step idioms do. The current of a step is the same number up to summation order (BLAS
  against evsnn's per-event additions): spikes can differ only where the membrane is within
  rounding of θ, which :func:`~validation.crossval.compare` reports as ties.
* A layer's input arrives in the same step (``Convention.input_delay = 0``): none of the
  frameworks delays a layer by one step, so ``input_delay = 1`` (Ding 2025 Eq. 15 read
  literally) raises ``ValueError``. DLIF layers (a per-step factor) have no counterpart either.
* The synaptic trace of :class:`evsnn.params.TraceLIF` (``a ← a + c (s − a)``, Ding 2025
  Methods) is written with torch operations in exactly that order where the framework has no
  filter of this form (SpikingJelly, snnTorch); Norse has one (``LIBoxCell``).

Examples
--------
>>> sorted(BACKENDS)
['norse', 'snntorch', 'spikingjelly']
>>> get_backend("nest")
Traceback (most recent call last):
...
ValueError: name='nest' is not a crossval backend; use one of ['norse', 'snntorch', 'spikingjelly']
"""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np

from evsnn.clock import Network
from evsnn.conventions import get_convention
from evsnn.params import DLIF, LIF, Readout, TraceLIF

__all__ = ["get_backend", "available_backends", "backend_convention", "check_network", "BACKENDS",
           "TorchBackend", "INSTALL_HINT"]

# module name in validation.crossval, adapter class, distribution names that must be installed
BACKENDS = {
    "spikingjelly": ("validation.crossval.spikingjelly", "SpikingJellyBackend", ("spikingjelly",)),
    "snntorch": ("validation.crossval.snntorch", "SnnTorchBackend", ("snntorch",)),
    "norse": ("validation.crossval.norse", "NorseBackend", ("norse",)),
}

INSTALL_HINT = "install the optional PyTorch backends with `make crossval-deps`"


def _backend_class(name):
    if name not in BACKENDS:
        raise ValueError(f"name={name!r} is not a crossval backend; use one of {sorted(BACKENDS)}")
    module, cls, _ = BACKENDS[name]
    return getattr(importlib.import_module(module), cls)


def get_backend(name, dtype=np.float64, **options):
    """The adapter for a PyTorch framework, ready to pass to :func:`validation.crossval.compare`.

    Parameters
    ----------
    name : {"spikingjelly", "snntorch", "norse"}
    dtype : numpy.float64 or numpy.float32
        The torch dtype the framework model runs in.
    options
        Passed to the adapter's ``make`` (e.g. ``neuron_overrides``).

    Raises
    ------
    ValueError
        Unknown ``name`` or unsupported ``dtype``.
    ImportError
        torch or the framework is not installed (the message says ``make crossval-deps``).
    """
    return _backend_class(name).make(dtype=dtype, **options)


def available_backends():
    """Names of the backends whose packages (torch and the framework) are installed.

    Only looks the packages up; imports nothing.
    """
    if importlib.util.find_spec("torch") is None:
        return ()
    return tuple(n for n, (_, _, pkgs) in BACKENDS.items()
                 if all(importlib.util.find_spec(p) is not None for p in pkgs))


def backend_convention(name, convention):
    """``convention`` with backend ``name``'s spike test (each framework fires on one test;
    ``crossval_section`` runs evsnn with it so that both sides fire alike)."""
    conv = get_convention(convention)
    test = _backend_class(name).spike_test
    if conv.spike_test != test:
        conv = conv.with_(name=f"{conv.name}_{test}", spike_test=test)
    return conv


def check_network(name, network, convention):
    """Raise ValueError when backend ``name`` cannot mirror ``network`` under ``convention``
    (:meth:`TorchBackend.check`), TypeError when ``network`` is not a dense ``Network``.

    Needs neither torch nor the framework: the checks read only the network and the convention,
    so a model is refused before anything is imported or run.

    Examples
    --------
    >>> from evsnn.clock import Network
    >>> from evsnn.params import LIF
    >>> net = Network.mlp([4, 3], LIF(lam=1.0, reset="soft"), rng=0)
    >>> check_network("norse", net, backend_convention("norse", "DEFAULT"))
    Traceback (most recent call last):
    ...
    ValueError: layers[0] is an IF neuron with reset by subtraction: Norse's IAFCell only resets to a value and LIFBoxCell needs a leak (lam < 1)
    """
    cls = _backend_class(name)
    return cls.__new__(cls).check(network, convention)  # no __init__: it imports torch


def import_torch(framework):
    """``torch``, or an ImportError that names the framework and ``make crossval-deps``."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"the {framework} crossval backend needs torch; {INSTALL_HINT}") from exc
    return torch


def _dtype_iv(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be a numpy float dtype, got {dtype!r}") from exc
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype={dt} is not supported; use numpy.float64 or numpy.float32")
    return dt


class TorchBackend:
    """Base of the PyTorch adapters (see the module docstring). Subclasses set ``name`` and
    ``spike_test`` and implement ``_import``, ``_check_neuron``, ``_surrogate`` and
    ``_neuron_forward``.

    Parameters
    ----------
    dtype : numpy.float64 or numpy.float32
    neuron_overrides : dict, optional
        Keyword arguments that replace the mapped ones in every framework neuron the adapter
        builds. Only for testing the harness: a deliberately mis-configured model must be
        reported as real mismatches.
    """

    name = "torch"
    spike_test = ">="  # the framework's threshold test
    detach_reset = False  # True when the framework's backward never flows through the reset

    def __init__(self, dtype=np.float64, *, neuron_overrides=None, _modules=None):
        self.dtype = _dtype_iv(dtype)
        self.neuron_overrides = dict(neuron_overrides or {})
        self._mods = _modules if _modules is not None else self._import()
        self.torch = self._mods["torch"]
        self.tdtype = self.torch.float64 if self.dtype == np.float64 else self.torch.float32

    @classmethod
    def make(cls, dtype=np.float64, **options):
        """Import torch and the framework (ImportError naming ``make crossval-deps`` when one is
        missing) and return the adapter."""
        return cls(dtype, **options)

    def __repr__(self):
        return f"{type(self).__name__}(dtype={self.dtype.name})"

    # ---------------------------------------------------------------- framework hooks
    def _import(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_neuron(self, li, neuron, conv):  # pragma: no cover - abstract
        raise NotImplementedError

    def _surrogate(self, surrogate):  # pragma: no cover - abstract
        raise NotImplementedError

    def _neuron_forward(self, li, neuron, current, surrogate):  # pragma: no cover - abstract
        """Run layer ``li``'s neurons on ``current`` [T, B, N]; return ``(spikes, m)``, both
        [T, B, N] in the adapter's dtype (``spikes`` None for a readout; ``m`` the membrane
        before reset, from the framework)."""
        raise NotImplementedError

    def _linear(self, layer):
        torch = self.torch
        lin = torch.nn.Linear(layer.n_in, layer.n_out, bias=layer.bias is not None,
                              dtype=self.tdtype)
        self._load_linear(lin, layer)
        return lin

    def _load_linear(self, lin, layer):
        torch = self.torch
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(np.array(layer.weight), dtype=self.tdtype))
            if layer.bias is not None:
                lin.bias.copy_(torch.tensor(np.array(layer.bias), dtype=self.tdtype))

    def _trace(self, li, spikes, coef):
        """Synaptic trace ``a ← a + c (s − a)`` from ``a = 0`` (Ding 2025 Methods)."""
        torch = self.torch
        c = torch.tensor(coef, dtype=self.tdtype)
        a = torch.zeros_like(spikes[0])
        out = []
        for s in spikes:
            a = a + c * (s - a)
            out.append(a)
        return torch.stack(out)

    # ---------------------------------------------------------------- checks
    def check(self, network, convention):
        """Raise ValueError when the framework cannot express ``network`` under ``convention``
        exactly (the message says what differs); TypeError for a wrong kind of argument."""
        if not isinstance(network, Network):
            raise TypeError(f"network must be an evsnn Network, got {type(network).__name__}")
        conv = get_convention(convention)
        if conv.input_delay != 0:
            raise ValueError(
                f"convention {conv.name!r} has input_delay=1 (a layer's input arrives one step "
                f"late); {self.name} delivers it in the same step — use input_delay=0"
            )
        for i, layer in enumerate(network.layers):
            if layer.input_trace is not None:
                raise ValueError(
                    f"layers[{i}] has input_trace={layer.input_trace!r}: the {self.name} mirror "
                    "feeds a layer its input itself, not the input's synaptic trace; compare a "
                    "network without input traces"
                )
        spiking = any(layer.spiking for layer in network.layers)
        if spiking and conv.spike_test != self.spike_test:
            raise ValueError(
                f"{self.name} fires on U {self.spike_test} theta but convention {conv.name!r} "
                f"has spike_test={conv.spike_test!r}; use a convention with "
                f"spike_test={self.spike_test!r} (e.g. get_convention(...).with_(spike_test="
                f"{self.spike_test!r}))"
            )
        for li, layer in enumerate(network.layers):
            if isinstance(layer.neuron, DLIF):
                raise ValueError(
                    f"layers[{li}] is a DLIF layer: {self.name} has no neuron with a per-step "
                    "factor on the leak or the input"
                )
            if not isinstance(layer.neuron, (LIF, TraceLIF, Readout)):  # pragma: no cover
                raise TypeError(f"layers[{li}] has an unknown neuron {layer.neuron!r}")
            self._check_neuron(li, layer.neuron, conv)
        return conv

    # ---------------------------------------------------------------- running
    def _forward(self, network, x, surrogate):
        """All layers; returns per-layer spikes, membranes and the last layer's output."""
        spikes_all, ms_all = [], []
        self.linears = []
        h = x
        for li, layer in enumerate(network.layers):
            lin = self._linear(layer)
            self.linears.append(lin)
            current = lin(h)
            spikes, m = self._neuron_forward(li, layer.neuron, current, surrogate)
            if spikes is None:  # readout: the membrane is the output
                out = m
            elif isinstance(layer.neuron, TraceLIF) and layer.neuron.output == "trace":
                out = self._trace(li, spikes, layer.neuron.trace_coef)
            else:
                out = spikes
            spikes_all.append(spikes)
            ms_all.append(m)
            h = out
        return spikes_all, ms_all, h

    def _inputs(self, network, inputs, requires_grad=False):
        x = np.asarray(inputs, dtype=self.dtype)
        if x.ndim != 3:
            raise ValueError(f"inputs must be [T, B, N], got shape {x.shape}")
        if x.shape[2] != network.n_in:
            raise ValueError(
                f"inputs have {x.shape[2]} features but the network takes {network.n_in}"
            )
        return self.torch.tensor(x, dtype=self.tdtype, requires_grad=requires_grad)

    def run(self, network, inputs, convention):
        """Run the framework model; a BackendRun with per-layer spikes and membranes before
        reset (float64 NumPy arrays holding the framework's values)."""
        self.check(network, convention)
        x = self._inputs(network, inputs)
        with self.torch.no_grad():
            spikes, ms, _ = self._forward(network, x, self._surrogate(None))
        from validation.crossval.core import BackendRun

        out_s, out_m = [], []
        for s, m in zip(spikes, ms):
            m_np = m.detach().cpu().numpy().astype(np.float64)
            out_m.append(m_np)
            out_s.append(np.zeros_like(m_np) if s is None
                         else s.detach().cpu().numpy().astype(np.float64))
        return BackendRun(out_s, out_m)

    def gradients(self, network, inputs, g_output, surrogate, convention):
        """``(dL/dinput, [dL/dW per layer])`` by torch autograd through the framework model,
        with ``L = Σ g_output · output`` on the last layer's output.

        Raises NotImplementedError when the framework has no surrogate equal to ``surrogate``
        (:func:`~validation.crossval.compare` then records the comparison as skipped).
        """
        self.check(network, convention)
        sur = self._surrogate(surrogate)
        x = self._inputs(network, inputs, requires_grad=True)
        _, _, out = self._forward(network, x, sur)
        g = self.torch.as_tensor(np.asarray(g_output, dtype=self.dtype), dtype=self.tdtype)
        if tuple(g.shape) != tuple(out.shape):
            raise ValueError(
                f"g_output has shape {tuple(g.shape)} but the network output is {tuple(out.shape)}"
            )
        out.backward(g)
        g_in = x.grad.detach().cpu().numpy().astype(np.float64)
        g_w = [lin.weight.grad.detach().cpu().numpy().astype(np.float64)
               for lin in self.linears]
        return g_in, g_w
