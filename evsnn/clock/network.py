"""Layers and the feed-forward network container for clock-mode simulation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evsnn._checks import dtype_range_iv, flag_iv, real_iv, sizes_iv
from evsnn.params import DLIF, LIF, Readout, TraceLIF

__all__ = ["Dense", "Network", "NEURON_TYPES", "synaptic_trace", "synaptic_trace_vjp"]

NEURON_TYPES = (LIF, TraceLIF, DLIF, Readout)


def _as_float_array(name, value, ndim):
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except Exception as exc:  # pragma: no cover - numpy raises many kinds
            raise TypeError(f"{name} must be array-like, got {type(value).__name__}") from exc
    if value.dtype.kind not in "fiu" or value.dtype == np.bool_:
        raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
    if value.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {value.shape}")
    if not np.all(np.isfinite(value)):
        raise ValueError(f"{name} holds NaN or infinite values; pass finite numbers")
    if value.dtype.kind != "f":
        value = value.astype(np.float64)
    return value


def _nonempty(name, a, axes):
    """Refuse an array with an empty axis: a layer with no inputs or no outputs computes
    nothing (a zero-size convolution kernel gave an output larger than its input, all zeros)."""
    if 0 in a.shape:
        raise ValueError(
            f"{name} has shape {a.shape}; every axis ({axes}) needs at least one entry"
        )
    return a


def _trace_factor_iv(name, c, none=""):
    """``c`` validated as a synaptic-trace factor Δt/τs in (0, 1] (a float)."""
    return real_iv(
        name, c, low=0, high=1, low_open=True,
        hint="the trace factor c = dt/tau_s, e.g. 0.1 for Ding 2025's FashionMNIST "
             "(tau_s = 10 ms, dt = 1 ms), 0.5 for its CIFAR-10 (tau_s = 2 ms)" + none)


def _time_axis_iv(name, a):
    """Refuse an array without a time axis (the traces run along axis 0)."""
    if np.ndim(a) < 1:
        raise ValueError(f"{name} must be a sequence [T, ...] with time on axis 0, got a scalar "
                         f"{a!r}")


def synaptic_trace(x, c, dtype):
    """The synaptic trace of ``x`` along its first (time) axis, elementwise.

    Parameters
    ----------
    x : array [T, ...]
        The input sequence (spikes, currents; any numeric dtype, views allowed).
    c : float in (0, 1]
        The trace factor Δt/τs.
    dtype : numpy dtype
        The result's dtype; the arithmetic runs in it.

    Returns
    -------
    ndarray [T, ...]
        A new array, ``a[t] = a[t−1] + c (x[t] − a[t−1])`` from a[−1] = 0 (the arithmetic of
        :class:`~evsnn.params.TraceLIF`'s trace).

    Notes
    -----
    Ding 2025 Eq. 15's presynaptic trace; the authors' code applies it (``psp`` in its
    ``loss_f.py``: ``syn ← syn − syn/τs + x[t]``, output ``syn/τs``) to the encoded input of
    every trained SNN. For c = 1 the result is ``x`` itself, exactly, as ``psp`` at τs = Δt
    gives it (``(syn − syn) + x[t]``); the recursion can round ``a + (x − a)`` away from x.

    Examples
    --------
    >>> synaptic_trace(np.array([1.0, 0.0, 1.0]), 0.5, np.float64)
    array([0.5  , 0.25 , 0.625])
    """
    c = _trace_factor_iv("c", c)
    _time_axis_iv("x", x)
    if c == 1.0:
        return np.array(x, dtype=dtype)
    c = np.dtype(dtype).type(c)
    a = np.empty(np.shape(x), dtype=dtype)
    prev = np.zeros(a.shape[1:], dtype=dtype)
    for t in range(a.shape[0]):
        prev = prev + c * (np.asarray(x[t], dtype=dtype) - prev)
        a[t] = prev
    return a


def synaptic_trace_vjp(g, c):
    """The vector-Jacobian product of :func:`synaptic_trace`: dL/dx from ``g`` =
    dL/d(trace) [T, ...].

    Parameters
    ----------
    g : array [T, ...]
    c : float in (0, 1]

    Returns
    -------
    ndarray [T, ...]
        A new array of ``g``'s dtype (float64 for an integer or boolean ``g``), the
        transposed filter ``dL/dx[t] = c Σ_{k ≥ t} (1 − c)^(k − t) g[k]``, run backwards in
        time.

    Examples
    --------
    >>> synaptic_trace_vjp(np.array([0.0, 0.0, 1.0]), 0.5)   # c (1 − c)^(2 − t)
    array([0.125, 0.25 , 0.5  ])
    """
    g = np.asarray(g)
    _time_axis_iv("g", g)
    if g.dtype.kind != "f":  # c cast to an integer dtype would be 0
        g = g.astype(np.float64)
    c = g.dtype.type(_trace_factor_iv("c", c))
    out = np.empty_like(g)
    acc = np.zeros(g.shape[1:], dtype=g.dtype)  # Σ_{k ≥ t} (1 − c)^(k − t) g[k]
    for t in range(g.shape[0] - 1, -1, -1):
        acc = g[t] + (1 - c) * acc
        out[t] = c * acc
    return out


@dataclass(frozen=True, eq=False)
class Dense:
    """A fully connected layer followed by a neuron model.

    Parameters
    ----------
    weight : array, shape (n_out, n_in)
        Synaptic weights (PyTorch's ``Linear.weight`` layout). Stored read-only.
    neuron : LIF, TraceLIF, DLIF or Readout
        The neuron record (``evsnn.params``).
    bias : array, shape (n_out,), optional
        A constant input current added at every step (none by default, as in the papers),
        stored in its own float precision and cast to the run's dtype.
    dlif_factors : array, shape (T,), optional
        DLIF's per-step factors ``a[t]`` (required for a DLIF neuron, forbidden otherwise).
    input_trace : float in (0, 1], optional
        The synaptic-trace factor c = Δt/τs through which the layer receives its input: the
        weights act on ``a[t] = a[t−1] + c (x[t] − a[t−1])`` (a[−1] = 0) instead of x[t]
        (:meth:`filter_input`). Ding 2025 Eq. 15 sums ``W a^(l−1)[t]``, the presynaptic
        traces; the authors' code gives the first layer the trace of the encoded input too
        (``psp`` of its ``loss_f.py`` on the input of every trained SNN), which is
        ``Dense(W, TraceLIF(...), input_trace=dt_ms / tau_syn_ms)``. None (default): the
        layer takes x[t] itself. Gradients reach x through :meth:`input_vjp`.
    """

    weight: np.ndarray
    neuron: object = field(default_factory=LIF)
    bias: np.ndarray | None = None
    dlif_factors: np.ndarray | None = None
    input_trace: float | None = None

    def __post_init__(self):
        w = _nonempty("weight", _as_float_array("weight", self.weight, 2), "n_out, n_in")
        if not isinstance(self.neuron, NEURON_TYPES):
            raise TypeError(
                f"neuron must be one of {[t.__name__ for t in NEURON_TYPES]}, "
                f"got {type(self.neuron).__name__}"
            )
        w = np.array(w, copy=True)
        w.flags.writeable = False
        object.__setattr__(self, "weight", w)
        if self.bias is not None:
            # kept in its own precision (a run casts it, like the weight, to the run's dtype):
            # a float64 bias beside float32 weights is not rounded for a float64 run
            b = np.array(_as_float_array("bias", self.bias, 1), copy=True)
            if b.shape[0] != w.shape[0]:
                raise ValueError(
                    f"bias has {b.shape[0]} entries but weight has {w.shape[0]} output rows; "
                    "they must match"
                )
            b.flags.writeable = False
            object.__setattr__(self, "bias", b)
        is_dlif = isinstance(self.neuron, DLIF)
        if is_dlif and self.dlif_factors is None:
            raise ValueError(
                "a DLIF neuron needs dlif_factors (one factor a[t] per time step), got None; "
                "build the layer as Dense(weight, DLIF(...), dlif_factors=np.ones(T)) "
                "(Network.mlp makes no DLIF factors)"
            )
        if not is_dlif and self.dlif_factors is not None:
            raise ValueError(
                f"dlif_factors were given for a {type(self.neuron).__name__} neuron; "
                "they apply to DLIF neurons only"
            )
        if is_dlif:
            a = np.array(_as_float_array("dlif_factors", self.dlif_factors, 1), copy=True)
            a.flags.writeable = False
            object.__setattr__(self, "dlif_factors", a)
        if self.input_trace is not None:
            object.__setattr__(self, "input_trace", _trace_factor_iv(
                "input_trace", self.input_trace, none="; None for no input trace"))
        object.__setattr__(self, "_weight_t", {})

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]

    @property
    def spiking(self) -> bool:
        return not isinstance(self.neuron, Readout)

    def weight_t(self, dtype) -> np.ndarray:
        """``weight.T`` as a C-contiguous array of ``dtype`` (cached): row j is the fan-out of
        input j, which is what one input event adds to the layer's current."""
        key = np.dtype(dtype).str
        transposed = self._weight_t
        if key not in transposed:
            if np.dtype(dtype).itemsize < self.weight.dtype.itemsize and self.weight.size:
                dtype_range_iv("weight", self.weight, dtype,
                               "rescale the layer or run in float64")
            transposed[key] = np.ascontiguousarray(self.weight.T, dtype=dtype)
        return transposed[key]

    def filter_input(self, x, dtype):
        """What the weights act on: ``x`` [T, ...] itself without an input trace, else its
        synaptic trace (:func:`synaptic_trace`) in ``dtype``."""
        if self.input_trace is None:
            return x
        return synaptic_trace(x, self.input_trace, dtype)

    def input_vjp(self, g):
        """dL/dx from ``g`` = dL/d(:meth:`filter_input`'s output) [T, ...]: ``g`` itself
        without an input trace, else :func:`synaptic_trace_vjp`."""
        if self.input_trace is None:
            return g
        return synaptic_trace_vjp(g, self.input_trace)

    def replace(self, **changes) -> "Dense":
        """A new layer with some fields replaced (e.g. updated weights during training)."""
        kw = dict(
            weight=self.weight, neuron=self.neuron, bias=self.bias, dlif_factors=self.dlif_factors,
            input_trace=self.input_trace,
        )
        kw.update(changes)
        return Dense(**kw)


@dataclass(frozen=True, eq=False)
class Network:
    """A feed-forward stack of layers; layer l's output is layer l+1's input."""

    layers: tuple

    def __post_init__(self):
        layers = tuple(self.layers)
        if not layers:
            raise ValueError("layers is empty; a Network needs at least one Dense layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Dense):
                raise TypeError(f"layers[{i}] must be a Dense layer, got {type(layer).__name__}")
        for i in range(1, len(layers)):
            if layers[i].n_in != layers[i - 1].n_out:
                raise ValueError(
                    f"layers[{i}] takes {layers[i].n_in} inputs but layers[{i - 1}] emits "
                    f"{layers[i - 1].n_out}; the shapes must chain"
                )
        for i, layer in enumerate(layers[:-1]):
            if not layer.spiking:
                raise ValueError(
                    f"layers[{i}] is a non-spiking Readout; only the last layer may be a readout"
                )
        object.__setattr__(self, "layers", layers)

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    def weights(self) -> list:
        return [layer.weight for layer in self.layers]

    def with_weights(self, weights) -> "Network":
        """The same architecture with new weight matrices (one per layer)."""
        weights = list(weights)
        if len(weights) != len(self.layers):
            raise ValueError(
                f"got {len(weights)} weight matrices for {len(self.layers)} layers; pass one each"
            )
        return Network(tuple(l.replace(weight=w) for l, w in zip(self.layers, weights)))

    @staticmethod
    def mlp(sizes, neuron=None, *, readout=False, rng=None, scale=1.0) -> "Network":
        """A dense network of layer widths ``sizes`` (a sequence of at least two integers >= 1,
        input first) with weights drawn N(0, scale²/n_in) (``scale`` finite and > 0).

        ``readout=True`` makes the last layer a non-spiking :class:`Readout`.
        """
        sizes = sizes_iv(sizes)
        # a scale <= 0 drew sign-flipped or zero weights: the distribution named is for scale > 0
        scale = real_iv("scale", scale, low=0, low_open=True,
                        hint="the weights' standard deviation times sqrt(n_in)")
        readout = flag_iv("readout", readout)
        neuron = LIF() if neuron is None else neuron
        rng = np.random.default_rng(rng)
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            w = rng.standard_normal((n_out, n_in)) * (scale / np.sqrt(n_in))
            last = i == len(sizes) - 2
            layers.append(Dense(w, Readout() if (last and readout) else neuron))
        return Network(tuple(layers))

