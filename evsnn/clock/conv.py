"""Convolutional and residual SNNs in clock mode: layers, the container and the simulator.

Arrays are time-major ``[T, B, C, H, W]`` (``[T, B, N]`` after :class:`Flatten`). A network is a
sequence of layers; synaptic layers (:class:`Conv2d`, :class:`Linear`, :class:`BatchNorm2d`,
pooling, :class:`Flatten`) act on every step independently, :class:`Neuron` layers integrate
over time with the same neuron models and conventions as :func:`evsnn.clock.simulate`
(``m = λ v + I``, spike test ``>=`` / ``>``, hard or soft reset; see :mod:`evsnn.params`), an
:class:`InputTrace` passes on the synaptic trace of its input (Ding 2025's input filter), and
:class:`Residual` blocks combine a body and a shortcut (ResNet basic block: the shortcut is added
to the current before the block's last neuron; SEW-ResNet: the spikes of both branches are
combined element-wise by ``ADD``, ``AND`` or ``IAND``).

Like the dense simulator, each layer runs over all T steps for every sample before the next one
runs; for a feed-forward network this is exactly the step-by-step result.

Training mode (``simulate_conv(..., train=True, rng=rng)``): :class:`BatchNorm2d` normalises
with the statistics of its input over (T, B, H, W) (SpikingJelly's multi-step BN) and
:class:`Dropout` applies a mask drawn from ``rng``; :func:`update_running_stats` folds the batch
statistics into the running ones. At inference both use their fixed parameters.

How a convolution is computed
-----------------------------
* **Event-driven** when its input is spikes (a neuron's output, max-pooled spikes, SEW sums)
  that are sparse enough (at most :data:`EVENT_DENSITY_MAX` nonzero; ``conv_mode="event"``
  forces it):
  the nonzero inputs of each frame are listed per position (:func:`_active_lists_kernel`) and
  every output sums the weight rows of the nonzero inputs in its window, each times its input
  value (:func:`_conv_gather_kernel`); the work grows with the number of spikes.
* **Dense** when its input is a current (encoded images, average-pooled maps, batch-normalised
  values): im2col (:func:`_im2col_kernel`) and one matrix product per group. A step whose input
  equals the previous step's (current coding) reuses the previous output.

Both give the cross-correlation PyTorch's ``conv2d`` computes (zero padding, stride, groups),
in a different summation order (different last bits).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evsnn._checks import dtype_range_iv, flag_iv, int_iv, real_iv
from evsnn._exp import _exp_like_kernel
from evsnn._numba import njit, run_range, run_split
from evsnn._records import compact_repr
from evsnn._scratch import scratch as _scratch  # im2col has a flag called scratch
from evsnn.clock.network import (
    NEURON_TYPES, _as_float_array, _nonempty, _trace_factor_iv, synaptic_trace,
    synaptic_trace_vjp,
)
from evsnn.clock.simulate import LayerRecord, SimulationResult, _all_finite, spike_events
from evsnn.conventions import DEFAULT, get_convention
from evsnn.params import DLIF, LIF

__all__ = [
    "Conv2d",
    "Linear",
    "AvgPool2d",
    "MaxPool2d",
    "Flatten",
    "BatchNorm2d",
    "Dropout",
    "InputTrace",
    "Neuron",
    "Residual",
    "basic_block",
    "sew_block",
    "fold_batchnorm",
    "ConvNetwork",
    "ConvSimulationResult",
    "simulate_conv",
    "update_running_stats",
    "CONV_MODES",
    "EVENT_DENSITY_MAX",
]

CONV_MODES = ("auto", "event", "dense")
# ``conv_mode="auto"`` takes the event (gather) path for spike inputs whose density (nonzeros
# per input element) is at most this; denser spike maps go through im2col + BLAS. Measured
# 2026-11-30 on 2 cores (AMD EPYC, numba + OpenBLAS 2 threads), 128 frames of the 3x3, padding 1
# layers of bench/bench_conv.py's VGG-11, float32, medians of 11 calls of each path timed
# separately, gather / dense ms at density 0.3 and 0.4: 64ch 16x16 -> 128: 23.1 / 28.7 vs 34.3;
# 128ch 8x8 -> 256: 18.7 / 23.9 vs 28.8; 256ch 8x8 -> 256: 35.9 / 46.3 vs 56.0; 256ch 4x4 -> 512:
# 19.2 / 25.0 vs 25.0; 512ch 4x4 -> 512: 38.0 / 49.6 vs 52.0; 512ch 2x2 -> 512: 5.7-13 / 6-16 vs
# 12.7 (noisy). Crossovers lie between 0.4 (256ch 4x4) and 0.5 (float64 alike: 0.43-0.5); the
# gather time grows linearly with the density, the dense one does not depend on it.
EVENT_DENSITY_MAX = 0.4
# The gather kernel's output-channel block (numbers per weight row) and frame chunk; measured
# on the benchmark's layer shapes (see EVENT_DENSITY_MAX).
_GATHER_BLOCK = 128
_GATHER_FRAMES = 16
# im2col buffers are built in chunks of frames holding at most this many numbers (32 MB float64)
_IM2COL_CHUNK = 4_000_000


def _pair(name, value, minimum):
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return (int_iv(name, value[0], low=minimum), int_iv(name, value[1], low=minimum))
    if isinstance(value, (tuple, list)):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    v = int_iv(name, value, low=minimum)
    return (v, v)


def _frozen(a):
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def _window_out(name, size, k, s, p):
    out = (size + 2 * p - k) // s + 1
    if out < 1:
        raise ValueError(
            f"{name}: kernel {k} with padding {p} does not fit an input of size {size}; "
            "use a smaller kernel or more padding"
        )
    return out


# =========================================================================== layers
@dataclass(frozen=True, eq=False)
class Conv2d:
    """2-D convolution (cross-correlation, as PyTorch's ``Conv2d``): synaptic input only.

    Parameters
    ----------
    weight : array, shape (C_out, C_in / groups, kH, kW)
        PyTorch's ``Conv2d.weight`` layout. Stored read-only.
    stride, padding : int or (int, int)
        Stride (>= 1) and zero padding (>= 0) per spatial axis.
    groups : int
        Input and output channels split into ``groups`` independent groups.
    bias : array, shape (C_out,), optional
        None by default, as in the papers' SNNs.
    """

    weight: np.ndarray
    stride: object = 1
    padding: object = 0
    groups: int = 1
    bias: np.ndarray | None = None

    def __post_init__(self):
        w = _nonempty("weight", _as_float_array("weight", self.weight, 4),
                      "C_out, C_in / groups, kH, kW")
        object.__setattr__(self, "weight", _frozen(w))
        object.__setattr__(self, "stride", _pair("stride", self.stride, 1))
        object.__setattr__(self, "padding", _pair("padding", self.padding, 0))
        g = int_iv("groups", self.groups, low=1)
        if w.shape[0] % g:
            raise ValueError(
                f"groups={g} does not divide the {w.shape[0]} output channels of weight; "
                "pick groups dividing C_out"
            )
        object.__setattr__(self, "groups", g)
        if self.bias is not None:
            b = _as_float_array("bias", self.bias, 1)
            if b.shape[0] != w.shape[0]:
                raise ValueError(
                    f"bias has {b.shape[0]} entries but weight has {w.shape[0]} output channels"
                )
            object.__setattr__(self, "bias", _frozen(b))  # (a run casts it: see Dense)
        object.__setattr__(self, "_cache", {})

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1] * self.groups

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    def out_shape(self, shape):
        if len(shape) != 3:
            raise ValueError(f"Conv2d needs [C, H, W] maps, got feature shape {shape}")
        c, h, w = shape
        if c != self.in_channels:
            raise ValueError(
                f"Conv2d takes {self.in_channels} input channels but receives {c}; "
                "the shapes must chain"
            )
        (kh, kw), (sh, sw), (ph, pw) = self.weight.shape[2:], self.stride, self.padding
        return (self.out_channels, _window_out("Conv2d", h, kh, sh, ph),
                _window_out("Conv2d", w, kw, sw, pw))

    def gather_weight(self, dtype):
        """``W`` in blocks of output channels for :func:`_conv_gather_kernel`: shape
        [groups · nb, kH · kW · C_in / groups, cb] with ``cb = min(_GATHER_BLOCK, C_out /
        groups)`` and ``nb`` blocks per group; block ``g · nb + b`` holds output channels
        ``g · C_out / groups + b · cb + k`` of group g, its rows in (ki, kj, c) order (the columns
        of :func:`im2col`), the missing channels of a group's last block zero (cached per
        dtype)."""
        key = ("gather", np.dtype(dtype).str)
        if key not in self._cache:
            g = self.groups
            wm = self.matrix(dtype)  # [C_out, kH kW C_in/g], rows o = g_i * cpg + o_local
            co, rows = wm.shape
            cpg = co // g
            cb = min(_GATHER_BLOCK, cpg)
            nb = -(-cpg // cb)
            wb = np.zeros((g, nb * cb, rows), dtype=dtype)
            wb[:, :cpg] = wm.reshape(g, cpg, rows)
            self._cache[key] = np.ascontiguousarray(
                wb.reshape(g, nb, cb, rows).transpose(0, 1, 3, 2).reshape(g * nb, rows, cb))
        return self._cache[key]

    def matrix(self, dtype):
        """``W`` as [C_out, kH · kW · C_in / groups] in (ki, kj, c) column order, the order of
        :func:`im2col` (cached per dtype)."""
        key = ("matrix", np.dtype(dtype).str)
        if key not in self._cache:
            self._cache[key] = np.ascontiguousarray(
                self.weight.transpose(0, 2, 3, 1).reshape(self.weight.shape[0], -1), dtype=dtype)
        return self._cache[key]

    def replace(self, **changes) -> "Conv2d":
        kw = dict(weight=self.weight, stride=self.stride, padding=self.padding,
                  groups=self.groups, bias=self.bias)
        kw.update(changes)
        return Conv2d(**kw)


@dataclass(frozen=True, eq=False)
class Linear:
    """Fully connected synaptic layer on ``[T, B, n_in]`` (after :class:`Flatten`).

    ``weight`` is ``[n_out, n_in]`` (PyTorch's layout); ``bias`` optional (none by default).
    """

    weight: np.ndarray
    bias: np.ndarray | None = None

    def __post_init__(self):
        w = _nonempty("weight", _as_float_array("weight", self.weight, 2), "n_out, n_in")
        object.__setattr__(self, "weight", _frozen(w))
        if self.bias is not None:
            b = _as_float_array("bias", self.bias, 1)
            if b.shape[0] != w.shape[0]:
                raise ValueError(
                    f"bias has {b.shape[0]} entries but weight has {w.shape[0]} output rows"
                )
            object.__setattr__(self, "bias", _frozen(b))  # (a run casts it: see Dense)

    def out_shape(self, shape):
        if len(shape) != 1:
            raise ValueError(
                f"Linear needs flat features, got feature shape {shape}; put a Flatten before it"
            )
        if shape[0] != self.weight.shape[1]:
            raise ValueError(
                f"Linear takes {self.weight.shape[1]} inputs but receives {shape[0]}; "
                "the shapes must chain"
            )
        return (self.weight.shape[0],)

    def replace(self, **changes) -> "Linear":
        kw = dict(weight=self.weight, bias=self.bias)
        kw.update(changes)
        return Linear(**kw)


@dataclass(frozen=True)
class _Pool:
    kernel_size: object
    stride: object = None
    padding: object = 0

    def __post_init__(self):
        k = _pair("kernel_size", self.kernel_size, 1)
        object.__setattr__(self, "kernel_size", k)
        s = k if self.stride is None else _pair("stride", self.stride, 1)
        object.__setattr__(self, "stride", s)
        p = _pair("padding", self.padding, 0)
        if p[0] > k[0] // 2 or p[1] > k[1] // 2:
            raise ValueError(
                f"padding={p} exceeds half the kernel {k} (PyTorch's rule); use less padding"
            )
        object.__setattr__(self, "padding", p)

    def out_shape(self, shape):
        name = type(self).__name__
        if len(shape) != 3:
            raise ValueError(f"{name} needs [C, H, W] maps, got feature shape {shape}")
        c, h, w = shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (c, _window_out(name, h, kh, sh, ph), _window_out(name, w, kw, sw, pw))


@dataclass(frozen=True)
class AvgPool2d(_Pool):
    """Average pooling; zero padding counts in the average (PyTorch's
    ``count_include_pad=True``), floor output size. ``stride`` defaults to the kernel size."""


@dataclass(frozen=True)
class MaxPool2d(_Pool):
    """Max pooling (padding with −∞, floor output size); ties go to the first maximum in
    row-major window order, as PyTorch's CPU kernel. ``stride`` defaults to the kernel size."""


@dataclass(frozen=True)
class Flatten:
    """``[T, B, C, H, W]`` → ``[T, B, C·H·W]`` in C order (PyTorch's ``flatten``)."""

    def out_shape(self, shape):
        return (int(np.prod(shape)),)


@dataclass(frozen=True, eq=False)
class BatchNorm2d:
    """Batch normalisation per channel.

    Inference (``simulate_conv(..., train=False)``) uses the fixed running statistics:
    ``y = x · α + (β − μ α)`` with ``α = γ / sqrt(σ² + ε)`` — the order PyTorch's CPU
    inference kernel evaluates. Use :func:`fold_batchnorm` to merge it into the convolution.

    Training (``train=True``) normalises with the statistics of the input batch over
    (T, B, H, W), as SpikingJelly's multi-step ``layer.BatchNorm2d`` (which runs
    ``torch.nn.BatchNorm2d`` on the ``[T·B, C, H, W]`` frames): ``y = γ (x − μ_B) /
    sqrt(σ²_B + ε) + β`` with the biased batch variance ``σ²_B``. :func:`update_running_stats`
    then applies PyTorch's update ``r ← (1 − momentum) r + momentum · s`` (the unbiased
    variance ``σ²_B n / (n − 1)`` for ``running_var``).

    Parameters
    ----------
    running_mean, running_var : array, shape (C,)
    weight, bias : array, shape (C,), optional
        γ (ones by default) and β (zeros by default).
    eps : float
        Added to the variance (PyTorch's default 1e-5).
    momentum : float
        Weight of the new batch statistics in the running update, in [0, 1] (PyTorch's
        default 0.1; PyTorch's ``momentum=None`` cumulative average is not supported).
    """

    running_mean: np.ndarray
    running_var: np.ndarray
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    eps: float = 1e-5
    momentum: float = 0.1

    def __post_init__(self):
        mean = _nonempty("running_mean", _as_float_array("running_mean", self.running_mean, 1),
                         "one per channel")
        var = _as_float_array("running_var", self.running_var, 1)
        c = mean.shape[0]
        if var.shape[0] != c or np.any(var < 0):
            raise ValueError(
                f"running_var must hold {c} non-negative variances, got {var!r}"
            )
        gamma = np.ones(c) if self.weight is None else _as_float_array("weight", self.weight, 1)
        beta = np.zeros(c) if self.bias is None else _as_float_array("bias", self.bias, 1)
        if gamma.shape[0] != c or beta.shape[0] != c:
            raise ValueError(
                f"weight and bias must have {c} entries (one per channel), got "
                f"{gamma.shape[0]} and {beta.shape[0]}"
            )
        eps = real_iv("eps", self.eps, low=0, low_open=True,
                      hint="it is added to the variance, PyTorch's default is 1e-5")
        for name, a in (("running_mean", mean), ("running_var", var), ("weight", gamma),
                        ("bias", beta)):
            object.__setattr__(self, name, _frozen(a))
        object.__setattr__(self, "eps", eps)
        object.__setattr__(self, "momentum", real_iv(
            "momentum", self.momentum, low=0, high=1,
            hint="the weight of the new batch statistics, PyTorch's default is 0.1 (its "
                 "cumulative average, momentum=None, is not supported)"))

    def replace(self, **changes) -> "BatchNorm2d":
        kw = dict(running_mean=self.running_mean, running_var=self.running_var,
                  weight=self.weight, bias=self.bias, eps=self.eps, momentum=self.momentum)
        kw.update(changes)
        return BatchNorm2d(**kw)

    def scale_shift(self, dtype):
        """(α, β − μ α) per channel, in ``dtype``."""
        dt = np.dtype(dtype).type
        invstd = dt(1) / np.sqrt(self.running_var.astype(dtype) + dt(self.eps))
        alpha = self.weight.astype(dtype) * invstd
        return alpha, self.bias.astype(dtype) - self.running_mean.astype(dtype) * alpha

    def out_shape(self, shape):
        if len(shape) != 3 or shape[0] != self.running_mean.shape[0]:
            raise ValueError(
                f"BatchNorm2d has {self.running_mean.shape[0]} channels but receives feature "
                f"shape {shape}"
            )
        return tuple(shape)


@dataclass(frozen=True)
class Dropout:
    """Dropout at training time; the identity at inference.

    With ``simulate_conv(..., train=True, rng=rng)`` every unit is kept with probability
    ``1 − p`` and kept units are scaled by ``1 / (1 − p)`` (PyTorch's inverted dropout), so the
    expected output equals the input.

    Parameters
    ----------
    p : float
        Probability of zeroing a unit, in [0, 1).
    shared_over_time : bool
        True (default): one mask per sample, applied at every step — SpikingJelly's multi-step
        ``layer.Dropout`` (Lee et al. 2020: the same sub-network for the whole sequence).
        False: a fresh mask at every step, as ``torch.nn.Dropout`` applied step by step.
    """

    p: float = 0.5
    shared_over_time: bool = True

    def __post_init__(self):
        object.__setattr__(self, "p", real_iv("p", self.p, low=0, high=1, high_open=True,
                                              hint="the probability of zeroing a unit, e.g. "
                                                   "p=0.5"))
        object.__setattr__(self, "shared_over_time",
                           flag_iv("shared_over_time", self.shared_over_time))

    def out_shape(self, shape):
        return tuple(shape)

    def draw_mask(self, T, B, shape, rng, dtype):
        """The scaled mask, values 0 or ``1 / (1 − p)``: shape ``(B, *shape)`` when shared over
        time, ``(T, B, *shape)`` otherwise. Kept where ``rng.random() >= p``."""
        size = ((B,) if self.shared_over_time else (T, B)) + tuple(shape)
        keep = rng.random(size) >= self.p
        dt = np.dtype(dtype).type
        return keep.astype(dtype) * (dt(1) / dt(1 - self.p))

    def replace(self, **changes) -> "Dropout":
        kw = dict(p=self.p, shared_over_time=self.shared_over_time)
        kw.update(changes)
        return Dropout(**kw)


def fold_batchnorm(conv, bn) -> Conv2d:
    """Merge inference batch normalisation into the convolution before it.

    ``BN(conv(x)) = conv'(x)`` with ``W' = W · α[c_out]`` and ``b' = (b − μ) α + β``,
    ``α = γ / sqrt(σ² + ε)``, computed in float64 and rounded once to the convolution's dtype
    (the weight's, and the bias's if it has one: a float32 conv stays float32). The result
    equals the unfolded pair up to rounding.

    Raises
    ------
    ValueError
        The folded weight or bias exceeds the range of the convolution's float32 dtype.

    Examples
    --------
    >>> import numpy as np
    >>> conv = Conv2d(np.ones((2, 1, 1, 1)))
    >>> bn = BatchNorm2d([0.0, 1.0], [3.75, 0.75], weight=[2.0, 1.0], bias=[0.0, 0.5], eps=0.25)
    >>> f = fold_batchnorm(conv, bn)
    >>> f.weight.ravel(), f.bias
    (array([1., 1.]), array([ 0. , -0.5]))
    """
    if not isinstance(conv, Conv2d):
        raise TypeError(f"conv must be a Conv2d, got {type(conv).__name__}")
    if not isinstance(bn, BatchNorm2d):
        raise TypeError(f"bn must be a BatchNorm2d, got {type(bn).__name__}")
    if bn.running_mean.shape[0] != conv.out_channels:
        raise ValueError(
            f"bn has {bn.running_mean.shape[0]} channels but conv has {conv.out_channels} "
            "output channels"
        )
    # in float64, rounded once to the conv's own dtypes (DESIGN: never silently change dtype)
    gamma, var, mean, beta = (a.astype(np.float64) for a in (bn.weight, bn.running_var,
                                                             bn.running_mean, bn.bias))
    alpha = gamma / np.sqrt(var + bn.eps)
    b_dtype = conv.weight.dtype if conv.bias is None else conv.bias.dtype
    b = np.zeros(conv.out_channels) if conv.bias is None else conv.bias.astype(np.float64)
    folded = {"weight": (conv.weight.astype(np.float64) * alpha[:, None, None, None],
                         conv.weight.dtype),
              "bias": ((b - mean) * alpha + beta, b_dtype)}
    for name, (value, dtype) in folded.items():
        dtype_range_iv(f"the folded {name}", value, dtype,
                       "cast the conv's weight (and bias) to float64 before folding")
    return conv.replace(**{name: value.astype(dtype, copy=False)
                           for name, (value, dtype) in folded.items()})


@dataclass(frozen=True)
class InputTrace:
    """The synaptic trace of the layer's input, elementwise: what the next layers act on.

    ``a[t] = a[t−1] + c (x[t] − a[t−1])`` from a[−1] = 0 for every entry of ``x`` [T, B, ...]
    (:func:`~evsnn.clock.network.synaptic_trace`, the filter of the dense layers'
    ``Dense(..., input_trace=c)``). Ding 2025 Eq. 15 sums ``W a^(l−1)[t]``, the presynaptic
    traces; the authors' code also filters the encoded input of every trained SNN, the
    convolutional ones included, once, before the first layer (``psp`` of its ``loss_f.py``,
    called in ``Network.forward`` of its ``network.py``; later layers take the traces their
    neurons emit). That network is ``ConvNetwork([InputTrace(dt_ms / tau_syn_ms), Conv2d(...),
    Neuron(TraceLIF(...)), ...])``; without an InputTrace (the default) the first layer takes
    the encoded input itself. A hidden layer's input trace is a ``TraceLIF(output="trace")``
    below it.

    Parameters
    ----------
    c : float in (0, 1]
        The trace factor Δt/τs (0.5 for Ding 2025's CIFAR-10: τs = 2 ms, Δt = 1 ms). c = 1
        passes the input on unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from evsnn.params import Readout
    >>> net = ConvNetwork([InputTrace(0.5), Conv2d(np.full((1, 1, 1, 1), 2.0)),
    ...                    Neuron(Readout(lam=0.0))], input_shape=(1, 1, 1))
    >>> simulate_conv(net, np.ones((3, 1, 1, 1, 1))).output.ravel()   # 2 · (0.5, 0.75, 0.875)
    array([1.  , 1.5 , 1.75])
    """

    c: float

    def __post_init__(self):
        object.__setattr__(self, "c", _trace_factor_iv("c", self.c))

    def out_shape(self, shape):
        return tuple(shape)

    def filter(self, x, dtype):
        """The trace of ``x`` [T, ...] in ``dtype`` (a new array)."""
        return synaptic_trace(x, self.c, dtype)

    def vjp(self, g):
        """dL/dx from dL/d(:meth:`filter`'s output) ``g`` (the transposed filter)."""
        return synaptic_trace_vjp(g, self.c)

    def replace(self, **changes) -> "InputTrace":
        return InputTrace(**dict(dict(c=self.c), **changes))


@dataclass(frozen=True, eq=False)
class Neuron:
    """A layer of spiking neurons, one per input element (any feature shape).

    Parameters
    ----------
    neuron : LIF, TraceLIF, DLIF or Readout
        The neuron record (``evsnn.params``); the update is the dense simulator's.
    dlif_factors : array, shape (T,), optional
        DLIF's per-step factors (required for DLIF, forbidden otherwise).
    input_scale : float
        Constant factor on the input current, ``m = λ v + input_scale · I`` (1 by default;
        ``1/τ`` maps SpikingJelly's ``LIFNode(decay_input=True)``).
    """

    neuron: object = field(default_factory=LIF)
    dlif_factors: np.ndarray | None = None
    input_scale: float = 1.0

    def __post_init__(self):
        if not isinstance(self.neuron, NEURON_TYPES):
            raise TypeError(
                f"neuron must be one of {[t.__name__ for t in NEURON_TYPES]}, "
                f"got {type(self.neuron).__name__}"
            )
        is_dlif = isinstance(self.neuron, DLIF)
        if is_dlif != (self.dlif_factors is not None):
            raise ValueError(
                "dlif_factors are required for a DLIF neuron and forbidden otherwise; got "
                f"{type(self.neuron).__name__} with dlif_factors={self.dlif_factors is not None}"
            )
        if is_dlif:
            object.__setattr__(self, "dlif_factors",
                               _frozen(_as_float_array("dlif_factors", self.dlif_factors, 1)))
        object.__setattr__(self, "input_scale", real_iv(
            "input_scale", self.input_scale, hint="the factor on the input current, 1 for none"))

    def out_shape(self, shape):
        return tuple(shape)

    def factors(self, T, convention, dtype):
        """Kernel arguments, per-step leak and gain (DLIF's factor on one of them)."""
        args = self.neuron.kernel_args()
        leak = np.full(T, args.lam, dtype=np.float64)
        gain = np.full(T, self.input_scale, dtype=np.float64)
        if args.dlif:
            f = self.dlif_factors
            if f.shape[0] < T:
                raise ValueError(
                    f"dlif_factors has {f.shape[0]} entries but the input has T = {T} steps; "
                    "give one factor per step"
                )
            if convention.dlif_factor == "leak":
                leak = args.lam * f[:T]
            else:
                gain = self.input_scale * f[:T]
        return args, np.ascontiguousarray(leak, dtype), np.ascontiguousarray(gain, dtype)


_CONNECTIONS = ("standard", "ADD", "AND", "IAND")


@dataclass(frozen=True, eq=False)
class Residual:
    """A residual block: ``body`` and ``shortcut`` (tuples of layers; an empty shortcut is the
    identity) applied to the same input, then combined.

    ``connection="standard"`` (spiking ResNet basic block): ``neuron(body(x) + shortcut(x))``,
    the sum is a current. ``"ADD"``, ``"AND"``, ``"IAND"`` (SEW-ResNet, Fang et al. 2021):
    ``shortcut(x) + body(x)``, ``shortcut(x) · body(x)``, ``shortcut(x) · (1 − body(x))`` on
    the branches' outputs (``neuron`` must be None).
    """

    body: tuple
    shortcut: tuple = ()
    connection: str = "standard"
    neuron: Neuron | None = None

    def __post_init__(self):
        if self.connection not in _CONNECTIONS:
            raise ValueError(
                f"connection={self.connection!r} is not a residual connection; use one of "
                f"{list(_CONNECTIONS)}"
            )
        if (self.connection == "standard") != isinstance(self.neuron, Neuron):
            raise ValueError(
                "a 'standard' block needs neuron=Neuron(...) after the sum; SEW connections "
                f"('ADD', 'AND', 'IAND') take none; got connection={self.connection!r} with "
                f"neuron={self.neuron!r}"
            )
        object.__setattr__(self, "body", _check_layers("body", self.body, allow_empty=False))
        object.__setattr__(self, "shortcut", _check_layers("shortcut", self.shortcut, True))

    def out_shape(self, shape):
        a = _chain_shape(self.body, shape, "body")
        b = _chain_shape(self.shortcut, shape, "shortcut")
        if a != b:
            raise ValueError(
                f"the body emits feature shape {a} but the shortcut {b}; add a downsampling "
                "shortcut (e.g. a strided 1x1 Conv2d) so they match"
            )
        return a


def basic_block(conv1, conv2, neuron, *, bn1=None, bn2=None, downsample=()):
    """Spiking ResNet basic block (SpikingJelly ``spiking_resnet.BasicBlock``):
    ``sn2(bn2(conv2(sn1(bn1(conv1(x))))) + downsample(x))``. ``neuron`` is a :class:`Neuron`
    used for both sn1 and sn2; ``downsample`` a tuple of layers (empty: identity)."""
    body = (conv1,) + ((bn1,) if bn1 is not None else ()) + (neuron, conv2)
    body += (bn2,) if bn2 is not None else ()
    return Residual(body, tuple(downsample), "standard", neuron)


def sew_block(conv1, conv2, neuron, *, bn1=None, bn2=None, downsample=(), connection="ADD"):
    """SEW-ResNet basic block (SpikingJelly ``sew_resnet.BasicBlock``):
    ``g(downsample(x), sn2(bn2(conv2(sn1(bn1(conv1(x)))))))``; a non-identity ``downsample``
    should end with its own :class:`Neuron` (SpikingJelly's ``downsample_sn``)."""
    body = (conv1,) + ((bn1,) if bn1 is not None else ()) + (neuron, conv2)
    body += ((bn2,) if bn2 is not None else ()) + (neuron,)
    return Residual(body, tuple(downsample), connection, None)


LAYER_TYPES = (Conv2d, Linear, AvgPool2d, MaxPool2d, Flatten, BatchNorm2d, Dropout, InputTrace,
               Neuron, Residual)


def _check_layers(name, layers, allow_empty):
    if not isinstance(layers, (tuple, list)):
        raise TypeError(f"{name} must be a tuple of layers, got {type(layers).__name__}")
    layers = tuple(layers)
    if not layers and not allow_empty:
        raise ValueError(f"{name} is empty; it needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, LAYER_TYPES):
            raise TypeError(
                f"{name}[{i}] must be one of {[t.__name__ for t in LAYER_TYPES]}, "
                f"got {type(layer).__name__}"
            )
    return layers


def _chain_shape(layers, shape, name):
    for i, layer in enumerate(layers):
        try:
            shape = layer.out_shape(shape)
        except ValueError as exc:
            raise ValueError(f"{name}[{i}]: {exc}") from None
    return tuple(shape)


def _neuron_layers(layers, prefix):
    """(path, Neuron) of every neuron layer in execution order."""
    found = []
    for i, layer in enumerate(layers):
        path = f"{prefix}[{i}]"
        if isinstance(layer, Neuron):
            found.append((path, layer))
        elif isinstance(layer, Residual):
            found += _neuron_layers(layer.body, path + ".body")
            found += _neuron_layers(layer.shortcut, path + ".shortcut")
            if layer.neuron is not None:
                found.append((path + ".neuron", layer.neuron))
    return found


@dataclass(frozen=True, eq=False)
class ConvNetwork:
    """A feed-forward stack of convolutional, pooling, dense, neuron and residual layers.

    Parameters
    ----------
    layers : sequence of layers
        :class:`Conv2d`, :class:`BatchNorm2d`, :class:`AvgPool2d`, :class:`MaxPool2d`,
        :class:`Flatten`, :class:`Linear`, :class:`Dropout`, :class:`InputTrace`,
        :class:`Neuron`, :class:`Residual`.
    input_shape : tuple of int
        Feature shape of one sample at one step, ``(C, H, W)`` (or ``(N,)``).

    Examples
    --------
    >>> import numpy as np
    >>> from evsnn.params import LIF
    >>> net = ConvNetwork([Conv2d(np.ones((4, 2, 3, 3)), padding=1), Neuron(LIF()),
    ...                    MaxPool2d(2), Flatten(), Linear(np.ones((10, 64))), Neuron(LIF())],
    ...                   input_shape=(2, 8, 8))
    >>> net.output_shape, len(net.neuron_layers())
    ((10,), 2)
    """

    layers: tuple
    input_shape: tuple

    def __post_init__(self):
        layers = _check_layers("layers", self.layers, allow_empty=False)
        shape = self.input_shape
        if not isinstance(shape, (tuple, list)):
            raise TypeError(f"input_shape must be a tuple of positive ints, got "
                            f"{type(shape).__name__} {shape!r}; e.g. (3, 32, 32)")
        if not shape:
            raise ValueError("input_shape=() must hold at least one size, e.g. (3, 32, 32)")
        shape = tuple(int_iv(f"input_shape[{i}]", s, low=1, hint="a sample's shape, e.g. "
                             "(3, 32, 32)") for i, s in enumerate(shape))
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "output_shape", _chain_shape(layers, shape, "layers"))

    def neuron_layers(self):
        """``[(path, Neuron), ...]`` in execution order (the order of the result's records)."""
        return _neuron_layers(self.layers, "layers")

    @property
    def has_residual(self) -> bool:
        return any(isinstance(layer, Residual) for layer in self.layers)


# =========================================================================== kernels
@njit
def _active_lists_kernel(x, groups, ptr, chan, binary):
    """The nonzero inputs of frames ``x`` [F, C, H, W], listed per frame channels-last.

    For input position ``s = i · W + j`` and channel group ``g`` (``C / groups`` channels each),
    ``chan[f, ptr[f, s · groups + g] : ptr[f, s · groups + g + 1]]`` are the channels ``c`` of
    the group (numbered within it) with ``x[f, g · C / groups + c, i, j] != 0``, ascending;
    ``ptr`` is [F, H · W · groups + 1] and ``chan`` [F, C · H · W + 1]. ``binary[f]`` tells
    whether every nonzero of frame f is exactly 1. Without branches on the data (a spike map's
    zeros and ones are unpredictable): every channel is written at the list's end, which only
    advances past a nonzero, so a zero's entry is overwritten by the next one (the last slot of
    ``chan`` takes the final such write).
    """
    F, C, H, W = x.shape
    cin_pg = C // groups
    for f in range(F):
        ones = True
        n = 0
        ptr[f, 0] = 0
        for i in range(H):
            for j in range(W):
                for g in range(groups):
                    for c in range(cin_pg):
                        v = x[f, g * cin_pg + c, i, j]
                        chan[f, n] = c
                        n += v != 0
                        ones &= (v == 0) | (v == 1)
                    ptr[f, (i * W + j) * groups + g + 1] = n
        binary[f] = ones


@njit
def _conv_gather_kernel(x, ptr, chan, binary, wb, kh, kw, sh, sw, ph, pw, groups, z):
    """Event-driven convolution without bias: ``z`` [F, Ho · Wo, C_out] (the layout of the
    dense path's matrix product, which :func:`_conv_out_kernel` finishes) from the nonzero
    inputs of frames ``x`` [F, C_in, H, W] listed by :func:`_active_lists_kernel` (``ptr``,
    ``chan``, ``binary``); ``wb`` is :meth:`Conv2d.gather_weight`.

    Summation order of every output ``z[f, p, o]``, position ``p = oi · Wo + oj`` of channel
    ``o`` in group ``g``: it starts at 0; the kernel offsets (ki, kj) are visited row-major, each
    where the input position ``(oi · sh − ph + ki, oj · sw − pw + kj)`` lies inside the input
    (zero padding adds nothing) and has active channels of group g. Their terms are summed into a
    partial sum ``a`` (from 0) in ascending channel order, four at a time as
    ``a += (t0 + t1) + (t2 + t3)``, the last one to three one at a time as ``a += t``, and then
    ``z += a``; ``t = W[o, c, ki, kj]`` (a weight row of ``wb``) in a frame whose nonzeros are
    all 1 and ``t = x · W[o, c, ki, kj]`` otherwise (the same numbers where ``x = 1``). The
    partial sum per offset keeps the rounding error nearer that of a pairwise sum than one
    running sum over all kH · kW · C_in terms would (in float32 the benchmark's VGG-11 had 2
    output spikes differing from float64 this way, 24 with one running sum, 8 on the dense path).

    Loop order (which does not change the sums): chunks of :data:`_GATHER_FRAMES` frames, then
    blocks of output channels, then offsets, so that one offset's weight rows of one block
    (C_in / groups rows of ``cb`` numbers) stay in cache while every frame of the chunk adds
    them into its outputs; the innermost loop runs over the block's channels (contiguous in
    ``wb`` and ``z``).
    """
    F, C, H, W = x.shape
    nblk, _, cb = wb.shape
    P, Co = z.shape[1], z.shape[2]
    Wo = (W + 2 * pw - kw) // sw + 1
    Ho = P // Wo
    cpg = Co // groups
    cin_pg = C // groups
    nb = nblk // groups
    acc = np.empty(cb, dtype=z.dtype)
    for f0 in range(0, F, _GATHER_FRAMES):
        f1 = min(F, f0 + _GATHER_FRAMES)
        for blk in range(nblk):
            g = blk // nb
            # max(0, .): known non-negative, so indexing with it needs no wraparound test
            # (which keeps the loops over k from being vectorised)
            o0 = max(0, g * cpg + (blk - g * nb) * cb)
            nk = min(cb, (g + 1) * cpg - o0)
            for f in range(f0, f1):
                for p in range(P):
                    for k in range(nk):
                        z[f, p, o0 + k] = 0
            for ki in range(kh):
                for kj in range(kw):
                    base = (ki * kw + kj) * cin_pg
                    for f in range(f0, f1):
                        ones = binary[f]
                        for oi in range(Ho):
                            i = oi * sh - ph + ki
                            if i < 0 or i >= H:
                                continue
                            for oj in range(Wo):
                                j = oj * sw - pw + kj
                                if j < 0 or j >= W:
                                    continue
                                q = (i * W + j) * groups + g
                                e = ptr[f, q]
                                end = ptr[f, q + 1]
                                p = oi * Wo + oj
                                if e == end:
                                    continue
                                for k in range(nk):
                                    acc[k] = 0
                                # rows indexed in place, never as views of the shared wb
                                # (an atomic reference-count update per view)
                                if ones:
                                    while e + 4 <= end:
                                        r0 = base + chan[f, e]
                                        r1 = base + chan[f, e + 1]
                                        r2 = base + chan[f, e + 2]
                                        r3 = base + chan[f, e + 3]
                                        for k in range(nk):
                                            acc[k] += ((wb[blk, r0, k] + wb[blk, r1, k])
                                                       + (wb[blk, r2, k] + wb[blk, r3, k]))
                                        e += 4
                                    while e < end:
                                        r0 = base + chan[f, e]
                                        for k in range(nk):
                                            acc[k] += wb[blk, r0, k]
                                        e += 1
                                else:
                                    c0 = g * cin_pg
                                    while e + 4 <= end:
                                        a0 = chan[f, e]
                                        a1 = chan[f, e + 1]
                                        a2 = chan[f, e + 2]
                                        a3 = chan[f, e + 3]
                                        v0 = x[f, c0 + a0, i, j]
                                        v1 = x[f, c0 + a1, i, j]
                                        v2 = x[f, c0 + a2, i, j]
                                        v3 = x[f, c0 + a3, i, j]
                                        r0, r1, r2, r3 = base + a0, base + a1, base + a2, base + a3
                                        for k in range(nk):
                                            acc[k] += ((v0 * wb[blk, r0, k] + v1 * wb[blk, r1, k])
                                                       + (v2 * wb[blk, r2, k]
                                                          + v3 * wb[blk, r3, k]))
                                        e += 4
                                    while e < end:
                                        a0 = chan[f, e]
                                        v0 = x[f, c0 + a0, i, j]
                                        r0 = base + a0
                                        for k in range(nk):
                                            acc[k] += v0 * wb[blk, r0, k]
                                        e += 1
                                for k in range(nk):
                                    z[f, p, o0 + k] += acc[k]


@njit
def _im2col_kernel(x, kh, kw, sh, sw, ph, pw, cols):
    """Patches of frames ``x`` [F, C, H, W] into ``cols`` [F, Ho, Wo, kH, kW, C] (zero outside
    the input: zero padding). Each frame is first copied channels-last into a per-frame buffer,
    so that every (position, offset) copies one contiguous run of C values."""
    F, C, H, W = x.shape
    Ho, Wo = cols.shape[1], cols.shape[2]
    for f in range(F):
        xl = np.empty((H, W, C), dtype=cols.dtype)
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    xl[i, j, c] = x[f, c, i, j]
        for oi in range(Ho):
            for oj in range(Wo):
                for ki in range(kh):
                    i = oi * sh - ph + ki
                    for kj in range(kw):
                        j = oj * sw - pw + kj
                        if 0 <= i < H and 0 <= j < W:
                            for c in range(C):
                                cols[f, oi, oj, ki, kj, c] = xl[i, j, c]
                        else:
                            for c in range(C):
                                cols[f, oi, oj, ki, kj, c] = 0


@njit
def _conv_out_kernel(z, bias, alpha, shift, pre, out):
    """Matrix-product output ``z`` [F, P, C] (positions × channels) into channel-major ``out``
    [F, C, P]: ``y = z + bias`` (``bias`` of length 0: none), then, with a batch norm
    (``alpha`` of length C), ``out = y · alpha + shift`` and ``pre`` [F, C, P] (length-0 first
    axis: not kept) receives ``y``; without, ``out = y``. The operations and their order are
    those of the NumPy expressions they replace (``z += bias``; ``x · α + shift``)."""
    F, P, C = z.shape
    has_bias = bias.shape[0] > 0
    has_bn = alpha.shape[0] > 0
    keep = pre.shape[0] > 0
    for f in range(F):
        for c in range(C):
            for p in range(P):
                y = z[f, p, c]
                if has_bias:
                    y = y + bias[c]
                if has_bn:
                    if keep:
                        pre[f, c, p] = y
                    out[f, c, p] = y * alpha[c] + shift[c]
                else:
                    out[f, c, p] = y


_NEURON_CHUNK = 2048  # neurons per block of _spiking_neuron_kernel (membranes stay in cache)


@njit
def _spiking_neuron_kernel(cur, leak, gain, theta, v_rest, hard_reset, spike_ge, v_init, out,
                           rec_m, rec_v):
    """:func:`_neuron_kernel` for the common case: spiking output, no trace, no smoothing.

    ``cur`` [T, M] is the input current of all ``M = B·N`` neurons (samples flattened), ``out``
    [T, M] receives the spikes. Blocks of neurons run all T steps each, with a contiguous inner
    loop free of per-neuron branches (the spike test and reset are selects), which vectorises;
    serial (one thread streams the arrays about as fast as two on strided pieces).
    ``rec_m`` / ``rec_v`` (shape [T, M], or [0, 0] for none) receive the membrane before and
    after reset. Same arithmetic as :func:`_neuron_kernel`: ``m = leak[t] v + gain[t] cur``.
    """
    T, M = cur.shape
    record = rec_m.shape[0] > 0
    n_chunks = (M + _NEURON_CHUNK - 1) // _NEURON_CHUNK
    for k in range(n_chunks):
        lo = k * _NEURON_CHUNK
        n = min(M, lo + _NEURON_CHUNK) - lo
        one = np.ones(1, dtype=out.dtype)[0]
        zero = one - one
        v = np.empty(n, dtype=out.dtype)
        for i in range(n):
            v[i] = v_init
        for t in range(T):
            lk = leak[t]
            gn = gain[t]
            for i in range(n):
                m = lk * v[i] + gn * cur[t, lo + i]
                fire = (m > theta) | (spike_ge & (m == theta))
                reset = v_rest if hard_reset else m - theta
                vn = reset if fire else m
                out[t, lo + i] = one if fire else zero
                v[i] = vn
                if record:
                    rec_m[t, lo + i] = m
                    rec_v[t, lo + i] = vn


@njit
def _neuron_kernel(
    cur, leak, gain, theta, v_rest, hard_reset, spike_ge, trace_coef, emit_trace, spiking,
    v_init, smooth_rho, record, out, rec_m, rec_v, rec_spikes, rec_trace, b_lo, b_hi,
):
    """One neuron layer over ``T`` steps for samples ``b_lo <= b < b_hi``: ``cur`` [T, B, N] is
    the input current (:func:`_neuron_layer` runs every sample, a piece per thread).

    ``m = leak[t] v + gain[t] cur``, spike ``m >= θ`` (``spike_ge``) or ``m > θ``; hard reset to
    ``v_rest`` or soft reset ``m − θ``; trace ``a ← a + c (s − a)``; the dense simulator's update.
    ``smooth_rho > 0`` replaces the spike by ``σ(ρ (m − θ))`` and the reset by
    ``v = m − s (m − v_rest)`` / ``m − s θ`` (the smooth forward whose exact gradient is the
    sigmoid-surrogate BPTT, for finite-difference checks).
    """
    T, B, N = cur.shape
    one = np.ones(1, dtype=out.dtype)[0]
    zero = one - one
    # work arrays shared by the samples of this piece (each sample starts them afresh)
    v = np.empty(N, dtype=out.dtype)
    a = np.empty(N, dtype=out.dtype)
    for b in range(b_lo, b_hi):
        for i in range(N):
            v[i] = v_init
            a[i] = zero
        for t in range(T):
            lk = leak[t]
            gn = gain[t]
            for i in range(N):
                m = lk * v[i] + gn * cur[t, b, i]
                if spiking:
                    if smooth_rho > 0:
                        e = _exp_like_kernel(-smooth_rho * (m - theta), a)
                        s = one / (one + e)
                        if hard_reset:
                            v[i] = m - s * (m - v_rest)
                        else:
                            v[i] = m - s * theta
                    else:
                        if spike_ge:
                            fire = m >= theta
                        else:
                            fire = m > theta
                        s = one if fire else zero
                        if fire:
                            v[i] = v_rest if hard_reset else m - theta
                        else:
                            v[i] = m
                    if trace_coef != 0:
                        a[i] = a[i] + trace_coef * (s - a[i])
                    out[t, b, i] = a[i] if emit_trace else s
                    if record:
                        rec_spikes[t, b, i] = s
                        rec_trace[t, b, i] = a[i]
                else:
                    v[i] = m
                    out[t, b, i] = m
                if record:
                    rec_m[t, b, i] = m
                    rec_v[t, b, i] = v[i]


def _neuron_layer(*args):
    """:func:`_neuron_kernel` (its arguments up to ``rec_trace``) on every sample, the samples
    split among the threads (each computed by one thread)."""
    run_range(_neuron_kernel, args[0].shape[1], *args)


# =========================================================================== forward ops
def _frames(x):
    return x.reshape((-1,) + x.shape[2:])


def im2col(x, kernel, stride, padding, dtype, scratch=False):
    """``[F, C, H, W]`` → ``[F·Ho·Wo, kH·kW·C]`` patches (rows f, oi, oj; columns ki, kj, c).
    ``scratch``: written into the reused work array "cols" (see :func:`evsnn._scratch.scratch`)."""
    F, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    shape = (F, Ho, Wo, kh, kw, C)
    cols = _scratch("cols", shape, dtype) if scratch else np.empty(shape, dtype=dtype)
    run_split(_im2col_kernel, F, (0, 7), x if x.dtype == dtype else x.astype(dtype), kh, kw, sh,
              sw, ph, pw, cols)
    return cols.reshape(F * Ho * Wo, kh * kw * C)


def _conv_dense_frames(layer, x, dtype, bn=None, keep_pre=False):
    """Dense path on frames [F, C, H, W]: im2col + one matrix product per group, in chunks.

    With ``bn`` (an inference :class:`BatchNorm2d` following the convolution) the batch norm is
    applied while the product is written out; returns ``(conv output or None, output)``, the
    convolution's own output only with ``keep_pre``."""
    F = x.shape[0]
    co, cin_pg, kh, kw = layer.weight.shape
    _, Ho, Wo = layer.out_shape(x.shape[1:])
    g = layer.groups
    wm = layer.matrix(dtype)
    out = np.empty((F, co, Ho * Wo), dtype=dtype)
    none = np.zeros(0, dtype=dtype)
    alpha, shift = bn.scale_shift(dtype) if bn is not None else (none, none)
    pre = (np.empty((F, co, Ho * Wo), dtype=dtype) if bn is not None and keep_pre
           else np.zeros((0, 0, 0), dtype=dtype))
    bias = none if layer.bias is None else layer.bias.astype(dtype)
    step = max(1, _IM2COL_CHUNK // max(Ho * Wo * cin_pg * kh * kw, 1))
    cpg = co // g
    for f0 in range(0, F, step):
        xs = x[f0:f0 + step]
        n = xs.shape[0]
        for gi in range(g):
            o = slice(gi * cpg, (gi + 1) * cpg)
            cols = im2col(xs[:, gi * cin_pg:(gi + 1) * cin_pg], (kh, kw), layer.stride,
                          layer.padding, dtype, scratch=True)
            z = np.matmul(cols, wm[o].T, out=_scratch("z", (cols.shape[0], cpg), dtype))
            run_split(_conv_out_kernel, n, (0, 4, 5), z.reshape(n, Ho * Wo, cpg),
                      bias[o] if bias.size else bias, alpha[o] if alpha.size else alpha,
                      shift[o] if shift.size else shift,
                      pre[f0:f0 + step, o] if pre.size else pre, out[f0:f0 + step, o])
    shape = (F, co, Ho, Wo)
    return (pre.reshape(shape) if pre.size else None), out.reshape(shape)


def _conv_event_frames(layer, x, dtype, bn=None, keep_pre=False):
    """Event path on frames [F, C, H, W]: the nonzero inputs listed per frame
    (:func:`_active_lists_kernel`), gathered into the pre-bias output
    (:func:`_conv_gather_kernel`), finished by :func:`_conv_out_kernel` as on the dense path;
    returns what :func:`_conv_dense_frames` returns."""
    x = np.ascontiguousarray(x, dtype=dtype)
    F, C, H, W = x.shape
    co, _, kh, kw = layer.weight.shape
    _, Ho, Wo = layer.out_shape(x.shape[1:])
    g = layer.groups
    ptr = _scratch("event ptr", (F, H * W * g + 1), np.int64)
    chan = _scratch("event chan", (F, C * H * W + 1), np.int32)
    binary = np.empty(F, dtype=np.bool_)
    run_split(_active_lists_kernel, F, (0, 2, 3, 4), x, g, ptr, chan, binary)
    z = _scratch("z", (F, Ho * Wo, co), dtype)
    run_split(_conv_gather_kernel, F, (0, 1, 2, 3, 12), x, ptr, chan, binary,
              layer.gather_weight(dtype), kh, kw, *layer.stride, *layer.padding, g, z)
    none = np.zeros(0, dtype=dtype)
    alpha, shift = bn.scale_shift(dtype) if bn is not None else (none, none)
    pre = (np.empty((F, co, Ho * Wo), dtype=dtype) if bn is not None and keep_pre
           else np.zeros((0, 0, 0), dtype=dtype))
    bias = none if layer.bias is None else layer.bias.astype(dtype)
    out = np.empty((F, co, Ho * Wo), dtype=dtype)
    run_split(_conv_out_kernel, F, (0, 4, 5), z, bias, alpha, shift, pre, out)
    shape = (F, co, Ho, Wo)
    return (pre.reshape(shape) if pre.size else None), out.reshape(shape)


def _same(a, b, chunk=1 << 16):
    """``np.array_equal(a, b)`` for equal shapes, stopping at the first differing chunk."""
    a, b = a.reshape(-1), b.reshape(-1)
    return all(np.array_equal(a[i:i + chunk], b[i:i + chunk]) for i in range(0, a.size, chunk))


def _use_events(layer, x, spikes, mode):
    return mode == "event" or (
        mode == "auto" and spikes and np.count_nonzero(x) <= EVENT_DENSITY_MAX * x.size)


def _conv_forward(layer, x, spikes, mode, dtype, bn=None, keep_pre=False):
    """The convolution of ``x`` [T, B, C, H, W]. With ``bn`` (an inference batch norm after
    it): ``(convolution output or None, batch-norm output)``, the first only with
    ``keep_pre``."""
    T, B = x.shape[:2]
    oshape = layer.out_shape(x.shape[2:])
    if _use_events(layer, x, spikes, mode):
        zs = _conv_event_frames(layer, _frames(x), dtype, bn, keep_pre)
        zs = [None if z is None else z.reshape((T, B) + oshape) for z in zs]
        return zs[1] if bn is None else tuple(zs)
    # dense: steps whose input equals the previous step's reuse its output (current coding)
    distinct = [0] + [t for t in range(1, T) if not _same(x[t], x[t - 1])]
    zs = _conv_dense_frames(layer, _frames(x[distinct]), dtype, bn, keep_pre)
    zs = [None if z is None else z.reshape((len(distinct), B) + oshape) for z in zs]
    if len(distinct) < T:
        rep = np.cumsum(np.isin(np.arange(T), distinct)) - 1  # step -> its distinct frame
        zs = [None if z is None else z[rep] for z in zs]
    return zs[1] if bn is None else tuple(zs)


def _pool_windows(x, pool, fill):
    """Padded input and the (ki, kj) slices of every window position."""
    (kh, kw), (sh, sw), (ph, pw) = pool.kernel_size, pool.stride, pool.padding
    _, Ho, Wo = pool.out_shape(x.shape[2:])
    if ph or pw:
        x = np.pad(x, ((0, 0),) * 3 + ((ph, ph), (pw, pw)), constant_values=fill)
    sl = [(ki, kj, (Ellipsis, slice(ki, ki + sh * (Ho - 1) + 1, sh),
                    slice(kj, kj + sw * (Wo - 1) + 1, sw)))
          for ki in range(kh) for kj in range(kw)]
    return x, sl


def _avgpool_forward(pool, x):
    xp, sl = _pool_windows(x, pool, 0)
    acc = None
    for _, _, s in sl:  # row-major window order, as PyTorch sums
        acc = xp[s].copy() if acc is None else acc + xp[s]
    kh, kw = pool.kernel_size
    return acc / x.dtype.type(kh * kw)


@njit
def _maxpool_kernel(x, kh, kw, sh, sw, ph, pw, out, arg):
    """Max pooling of frames ``x`` [F, C, H, W] into ``out`` [F, C, Ho, Wo]; ``arg`` receives the
    window offset ``ki · kW + kj`` of the maximum (``arg`` of shape [0, 0, 0, 0]: not kept; an
    integer type of any width that holds ``kH·kW − 1``). Window elements are visited in
    row-major order, padding counts as −∞, and only a strictly greater value replaces the
    current best (the first maximum wins, PyTorch's CPU rule). Windows inside the input skip the
    bounds tests, and 2×2 windows read their two rows directly (same comparisons)."""
    F, C, H, W = x.shape
    Ho, Wo = out.shape[2], out.shape[3]
    keep = arg.shape[0] > 0
    ninf = x.dtype.type(-np.inf)
    for fc in range(F * C):
        f = fc // C
        c = fc - f * C
        for oi in range(Ho):
            i0 = oi * sh - ph
            rows_in = i0 >= 0 and i0 + kh <= H
            if rows_in and kh == 2 and kw == 2:
                r0 = x[f, c, i0]
                r1 = x[f, c, i0 + 1]
                for oj in range(Wo):
                    j0 = oj * sw - pw
                    if j0 < 0 or j0 + 2 > W:
                        continue  # done below, with the bounds tests
                    best = r0[j0]
                    n_best = 0
                    w = r0[j0 + 1]
                    if w > best:
                        best = w
                        n_best = 1
                    w = r1[j0]
                    if w > best:
                        best = w
                        n_best = 2
                    w = r1[j0 + 1]
                    if w > best:
                        best = w
                        n_best = 3
                    out[f, c, oi, oj] = best
                    if keep:
                        arg[f, c, oi, oj] = n_best
            for oj in range(Wo):
                j0 = oj * sw - pw
                if rows_in and kh == 2 and kw == 2 and j0 >= 0 and j0 + 2 <= W:
                    continue  # done above
                best = ninf
                n_best = 0
                for ki in range(kh):
                    i = i0 + ki
                    for kj in range(kw):
                        j = j0 + kj
                        w = x[f, c, i, j] if 0 <= i < H and 0 <= j < W else ninf
                        if (ki == 0 and kj == 0) or w > best:
                            best = w
                            n_best = ki * kw + kj
                out[f, c, oi, oj] = best
                if keep:
                    arg[f, c, oi, oj] = n_best


def _maxpool_forward(pool, x, keep_arg=True):
    (kh, kw), (sh, sw), (ph, pw) = pool.kernel_size, pool.stride, pool.padding
    oshape = x.shape[:2] + pool.out_shape(x.shape[2:])
    out = np.empty(oshape, dtype=x.dtype)
    # the window offset of the maximum, in the narrowest type that holds it; only when kept
    arg = (np.empty(oshape, dtype=np.int8 if kh * kw <= 128 else np.int64) if keep_arg
           else np.zeros((0, 0, 0, 0), np.int8))
    run_split(_maxpool_kernel, out.shape[0] * out.shape[1], (0, 7, 8),
              np.ascontiguousarray(_frames(x)), kh, kw, sh, sw, ph, pw, _frames(out),
              _frames(arg) if keep_arg else arg)
    return out, (arg if keep_arg else None)


def _shift(x, d):
    """``x`` delayed by ``d`` steps (zeros first)."""
    if d == 0:
        return x
    y = np.zeros_like(x)
    y[d:] = x[:-d]
    return y


class _Run:
    """Mutable state of one forward pass."""

    def __init__(self, convention, dtype, record, mode, smooth_rho, teacher, train=False,
                 rng=None):
        self.train = train
        self.rng = rng
        self.batch_stats = {}
        self.conv = convention
        self.dtype = dtype
        self.record = record
        self.mode = mode
        self.smooth_rho = smooth_rho
        self.teacher = teacher
        self.records = []
        self.names = []
        self.tape = {}
        self.neuron_index = 0


def _neuron_forward(layer, x, path, run):
    dtype = run.dtype
    T, B = x.shape[:2]
    args, leak, gain = layer.factors(T, run.conv, dtype)
    cur = np.ascontiguousarray(x.reshape(T, B, -1), dtype=dtype)
    N = cur.shape[2]
    out = np.empty((T, B, N), dtype=dtype)
    rec = run.record or run.teacher is not None
    if args.spiking and args.trace_coef == 0 and not args.emit_trace and run.smooth_rho == 0:
        # the common case: spikes = output, no trace (the record's spikes share ``out``)
        empty = np.zeros((0, 0), dtype=dtype)
        mv = [np.empty((T, B * N), dtype=dtype) for _ in range(2)] if rec else [empty] * 2
        # one thread: the contiguous, vectorised loop is faster than two on strided pieces
        _spiking_neuron_kernel(
            cur.reshape(T, B * N), leak, gain, dtype.type(args.theta), dtype.type(args.v_rest),
            args.hard_reset, run.conv.spike_ge, dtype.type(args.v_init), out.reshape(T, B * N),
            *mv)
        recs = ([a.reshape(T, B, N) for a in mv] + [out, None]) if rec else None
    else:
        empty = np.zeros((0, 0, 0), dtype=dtype)
        recs = [np.empty((T, B, N), dtype=dtype) for _ in range(4)] if rec else [empty] * 4
        _neuron_layer(
            cur, leak, gain, dtype.type(args.theta), dtype.type(args.v_rest), args.hard_reset,
            run.conv.spike_ge, dtype.type(args.trace_coef), args.emit_trace, args.spiking,
            dtype.type(args.v_init), dtype.type(run.smooth_rho), bool(rec), out, *recs,
        )
    shape = x.shape
    if rec:
        m, v, s, a = (None if r is None else r.reshape(shape) for r in recs)
        record = LayerRecord(current=cur.reshape(shape), m=m, v=v,
                             spikes=s if args.spiking else None,
                             trace=a if args.trace_coef != 0 else None, output=out.reshape(shape))
        run.records.append(record)
        run.names.append(path)
        run.tape[path] = (record, leak, gain, args)
    y = out.reshape(shape)
    idx = run.neuron_index
    run.neuron_index += 1
    if run.teacher is not None and run.teacher[idx] is not None:
        y = np.asarray(run.teacher[idx], dtype=dtype)
        if y.shape != shape:
            raise ValueError(
                f"teacher[{idx}] has shape {y.shape}; neuron layer {path} emits {shape}"
            )
    is_spikes = args.spiking and not args.emit_trace and run.smooth_rho == 0
    return y, is_spikes


def _batchnorm_train_forward(layer, x, path, run):
    """Batch statistics over (T, B, H, W); records them, and on the tape ``("train", x̂,
    1/sqrt(σ² + ε))`` for the backward pass."""
    dt = run.dtype.type
    axes = (0, 1, 3, 4)
    n = x.size // x.shape[2]
    if n < 2:
        raise ValueError(
            f"BatchNorm2d {path} in train mode needs more than one value per channel, got "
            f"T·B·H·W = {n} (as torch.nn.BatchNorm2d); use more steps or samples, or train=False"
        )
    mean = x.mean(axis=axes)
    xc = x - mean[:, None, None]
    var = (xc * xc).mean(axis=axes)  # biased: what the normalisation uses
    invstd = dt(1) / np.sqrt(var + dt(layer.eps))
    xhat = xc * invstd[:, None, None]
    run.batch_stats[path] = (mean, var, n)
    if run.record:
        run.tape[path] = ("train", xhat, invstd)
    gamma = layer.weight.astype(run.dtype)
    beta = layer.bias.astype(run.dtype)
    return xhat * gamma[:, None, None] + beta[:, None, None]


def _delayed_outputs(layers):
    """Indices of the neuron layers whose output feeds a later synaptic (Linear, Conv2d) or
    neuron layer: under ``input_delay=1`` that layer receives it one step late. Only the
    output of a last neuron layer that nothing synaptic follows is left undelayed."""
    fed = False  # does a synaptic or neuron layer follow?
    out = set()
    for i in range(len(layers) - 1, -1, -1):
        if isinstance(layers[i], Neuron) and fed:
            out.add(i)
        fed = fed or isinstance(layers[i], (Neuron, Linear, Conv2d))
    return out


def _forward_layers(layers, x, spikes, prefix, run, top=False):
    delayed = _delayed_outputs(layers) if top and run.conv.input_delay else ()
    fused = None
    for i, layer in enumerate(layers):
        path = f"{prefix}[{i}]"
        if fused == path:  # applied with the convolution before it
            continue
        bn = None
        if (isinstance(layer, Conv2d) and not run.train and i + 1 < len(layers)
                and isinstance(layers[i + 1], BatchNorm2d)):
            fused = f"{prefix}[{i + 1}]"
            bn = (layers[i + 1], fused)
        x, spikes = _forward_layer(layer, x, spikes, path, run, bn)
        if i in delayed:
            # Ding 2025 Eq. 15: the next layer sees this output a step late
            x = _shift(x, run.conv.input_delay)
            if run.record:
                run.tape[("shift", path)] = True
    return x, spikes


def _forward_layer(layer, x, spikes, path, run, bn=None):
    dtype = run.dtype
    if isinstance(layer, Conv2d):
        if run.record:
            run.tape[path] = x
        if bn is not None:  # conv + inference batch norm in one pass (see _forward_layers)
            pre, y = _conv_forward(layer, x, spikes, run.mode, dtype, bn[0], run.record)
            if run.record:
                run.tape[bn[1]] = pre
            return y, False
        return _conv_forward(layer, x, spikes, run.mode, dtype), False
    if isinstance(layer, Linear):
        if run.record:
            run.tape[path] = x
        y = x @ layer.weight.astype(dtype, copy=False).T
        if layer.bias is not None:
            y += layer.bias.astype(dtype)
        return y, False
    if isinstance(layer, BatchNorm2d):
        if run.train:
            return _batchnorm_train_forward(layer, x, path, run), False
        if run.record:
            run.tape[path] = x
        alpha, shift = layer.scale_shift(dtype)
        return x * alpha[:, None, None] + shift[:, None, None], False
    if isinstance(layer, Dropout):
        if not run.train:
            if run.record:
                run.tape[path] = ("dropout", None)
            return x, spikes
        T, B = x.shape[:2]
        mask = layer.draw_mask(T, B, x.shape[2:], run.rng, dtype)
        if run.record:
            run.tape[path] = ("dropout", mask)
        # still sparse where the input was spikes (values 0 or 1/(1 − p)): the scatter path fits
        return x * mask, spikes
    if isinstance(layer, AvgPool2d):
        if run.record:
            run.tape[path] = x.shape
        return _avgpool_forward(layer, x), False
    if isinstance(layer, MaxPool2d):
        y, arg = _maxpool_forward(layer, x, keep_arg=run.record)
        if run.record:
            run.tape[path] = (arg, x.shape)
        return y, spikes
    if isinstance(layer, Flatten):
        if run.record:
            run.tape[path] = x.shape
        return x.reshape(x.shape[:2] + (-1,)), spikes
    if isinstance(layer, InputTrace):  # linear in x: the backward needs nothing recorded
        # a trace of spikes is no spike map (unless c = 1: the input itself)
        return layer.filter(x, dtype), spikes and layer.c == 1
    if isinstance(layer, Neuron):
        return _neuron_forward(layer, x, path, run)
    # Residual
    yb, sb = _forward_layers(layer.body, x, spikes, path + ".body", run)
    ys, ss = _forward_layers(layer.shortcut, x, spikes, path + ".shortcut", run)
    c = layer.connection
    if c == "standard":
        return _neuron_forward(layer.neuron, yb + ys, path + ".neuron", run)
    if run.record:
        run.tape[path] = (yb, ys)
    if c == "ADD":
        return ys + yb, sb and ss
    if c == "AND":
        return ys * yb, sb and ss
    return ys * (1 - yb), sb and ss


# =========================================================================== simulate
@dataclass(frozen=True)
class ConvSimulationResult(SimulationResult):
    """Result of :func:`simulate_conv`.

    Attributes
    ----------
    output : ndarray [T, B, ...]
        What the last layer emits each step.
    layers : tuple of LayerRecord, or None
        One record per neuron layer in execution order (``record=True``), arrays
        ``[T, B, *feature_shape]``: current, membrane before (``m``) and after (``v``) reset,
        spikes, trace, output.
    convention : Convention
    names : tuple of str
        The path of each recorded neuron layer (``"layers[3].body[2]"``).
    batch_stats : dict or None
        ``train=True`` only: ``{path: (mean, biased variance, count)}`` of every
        :class:`BatchNorm2d`'s input over (T, B, H, W) (count = T·B·H·W), the statistics the
        run normalised with; :func:`update_running_stats` folds them into the running ones.
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    names: tuple = ()
    tape: dict | None = field(default=None, repr=False, compare=False)
    batch_stats: dict | None = field(default=None, repr=False, compare=False)

    def spike_events(self, layer: int = -1):
        """Sorted events of a neuron layer; neuron index = C-order flat index of (C, H, W)."""
        if self.layers is None:
            raise ValueError("spike events need record=True in simulate_conv()")
        rec = self.layers[layer]
        if rec.spikes is None:
            raise ValueError(f"layer {layer} is a non-spiking readout; it has no spikes")
        T, B = rec.spikes.shape[:2]
        return spike_events(rec.spikes.reshape(T, B, -1))


def _has_dropout(layers):
    return any(isinstance(layer, Dropout) or (
        isinstance(layer, Residual) and (_has_dropout(layer.body) or _has_dropout(layer.shortcut)))
        for layer in layers)


def _simulate_conv_iv(network, inputs, dtype, mode, smooth_rho, teacher, convention, train=False,
                      rng=None, record=False):
    if not isinstance(network, ConvNetwork):
        raise TypeError(f"network must be an evsnn ConvNetwork, got {type(network).__name__}")
    flag_iv("record", record)
    train = flag_iv("train", train)
    if train and _has_dropout(network.layers):
        if rng is None:
            raise ValueError(
                "rng is required with train=True: the network has Dropout layers whose masks "
                "are drawn from it; pass rng=numpy.random.default_rng(seed)"
            )
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy.random.Generator, got {type(rng).__name__}; use "
                "numpy.random.default_rng(seed)"
            )
    if not isinstance(inputs, np.ndarray):
        inputs = np.asarray(inputs)
    if inputs.dtype.kind not in "biuf":
        raise TypeError(f"inputs must be numeric, got dtype {inputs.dtype}")
    want = network.input_shape
    if inputs.ndim != 2 + len(want) or inputs.shape[2:] != want:
        raise ValueError(
            f"inputs must be time-major [T, B, {', '.join(map(str, want))}], got shape "
            f"{inputs.shape}"
        )
    if inputs.shape[0] == 0 or inputs.shape[1] == 0:
        raise ValueError(f"inputs have shape {inputs.shape}; pass at least one step and sample")
    if inputs.dtype.kind == "f" and not _all_finite(inputs):
        raise ValueError("inputs hold NaN or infinite values; pass finite inputs")
    if dtype is None:
        dtype = inputs.dtype if inputs.dtype.kind == "f" else np.float64
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype={dtype} is not supported; use numpy.float64 or numpy.float32")
    if mode not in CONV_MODES:
        raise ValueError(f"conv_mode={mode!r} is not a mode; use one of {list(CONV_MODES)}")
    real_iv("smooth_rho", smooth_rho, low=0,
            hint="0: spikes; > 0: the sigmoid steepness of the smooth forward")
    n = len(network.neuron_layers())
    if teacher is not None and len(teacher) != n:
        raise ValueError(
            f"teacher has {len(teacher)} entries but the network has {n} neuron layers; give "
            "one per neuron layer (None keeps the simulated output)"
        )
    if convention.input_delay and network.has_residual:
        raise ValueError(
            f"convention {convention.name!r} delays every layer's input by one step "
            "(input_delay=1), which is not defined inside residual blocks; use a convention with "
            "input_delay=0"
        )
    return inputs, dtype


def simulate_conv(network, inputs, *, convention=DEFAULT, record=False, dtype=None,
                  conv_mode="auto", smooth_rho=0.0, teacher=None, train=False, rng=None):
    """Run a convolutional / residual SNN on a time-major input sequence.

    Parameters
    ----------
    network : ConvNetwork
    inputs : array, shape (T, B, *network.input_shape)
        Encoded input (spikes or currents).
    convention : Convention or str, default DEFAULT
        Spike test (``>=`` / ``>``), DLIF placement and input delay (``input_delay=1``: each
        neuron layer's output reaches the next synaptic layers one step late — a Linear or
        Conv2d after the last neuron layer too, as in :func:`evsnn.clock.simulate` — and the
        network input reaches the first one step late — Ding 2025 Eq. 15 read literally;
        sequential networks only).
    record : bool
        Keep every neuron layer's current, membranes, spikes and trace (and what
        :func:`evsnn.grad.conv.backward_conv` needs).
    dtype : numpy dtype, optional
        float64 or float32 (default: the input's float dtype, float64 for integer inputs).
    conv_mode : {"auto", "event", "dense"}
        ``auto``: event-driven convolution where the input is spikes with density at most
        :data:`EVENT_DENSITY_MAX`, dense otherwise; ``event`` / ``dense`` force one path.
    smooth_rho : float
        0 (default): spikes. ``ρ > 0``: every spike is replaced by ``σ(ρ (m − θ))`` (a smooth
        forward, for finite-difference checks of the sigmoid-surrogate gradient).
    teacher : list, optional
        One entry per neuron layer: an array to pass downstream instead of the layer's own
        output, or None. Cross-validation uses it to judge each layer on another
        implementation's upstream spikes.
    train : bool
        False (default): inference — :class:`BatchNorm2d` uses its running statistics and
        :class:`Dropout` is the identity. True: training mode — every BatchNorm2d normalises
        with the batch statistics of its input over (T, B, H, W) (returned in
        ``batch_stats``; see :func:`update_running_stats`) and every Dropout applies a mask
        drawn from ``rng`` (kept on the tape for :func:`evsnn.grad.conv.backward_conv`).
    rng : numpy.random.Generator, optional
        Source of the dropout masks; required when ``train=True`` and the network has a
        Dropout. Masks are drawn layer by layer in execution order.

    Returns
    -------
    ConvSimulationResult

    Notes
    -----
    The neuron update is :mod:`evsnn.params`' (HART Eq. 1-4, Stable Eq. 1, Ding 2025 Eq. 4,
    15-16); an :class:`InputTrace` layer passes on its input's synaptic trace. Residual blocks
    follow He et al. 2016 (spiking basic block) and Fang et al. 2021 (SEW connections), as
    implemented in SpikingJelly's ``spiking_resnet`` / ``sew_resnet``.

    Examples
    --------
    >>> import numpy as np
    >>> from evsnn.params import LIF
    >>> net = ConvNetwork([Conv2d(np.full((1, 1, 2, 2), 0.5)), Neuron(LIF(theta=1.0))],
    ...                   input_shape=(1, 3, 3))
    >>> x = np.zeros((2, 1, 1, 3, 3)); x[:, 0, 0, 1, 1] = 1; x[0, 0, 0, 0, 0] = 1
    >>> simulate_conv(net, x).output[:, 0, 0]      # the centre spike reaches all 4 outputs
    array([[[1., 0.],
            [0., 0.]],
    <BLANKLINE>
           [[0., 1.],
            [1., 1.]]])

    At step 0 the top-left output receives 0.5 from each of the two spikes and fires (hard
    reset to 0); the other three reach 0.5 and fire at step 1, when the top-left one is at 0.5.
    """
    convention = get_convention(convention)
    inputs, dtype = _simulate_conv_iv(network, inputs, dtype, conv_mode, smooth_rho, teacher,
                                      convention, train, rng, record)
    run = _Run(convention, dtype, bool(record), conv_mode, float(smooth_rho), teacher,
               bool(train), rng)
    x = np.ascontiguousarray(inputs, dtype=dtype)
    spikes = bool(np.all((x == 0) | (x == 1)))
    x = _shift(x, convention.input_delay)
    out, _ = _forward_layers(network.layers, x, spikes, "layers", run, top=True)
    return ConvSimulationResult(
        output=out, layers=tuple(run.records) if record else None, convention=convention,
        names=tuple(run.names) if record else (), tape=run.tape if record else None,
        batch_stats=run.batch_stats if train else None,
    )


def _update_layers(layers, prefix, stats, seen):
    out = []
    for i, layer in enumerate(layers):
        path = f"{prefix}[{i}]"
        if isinstance(layer, BatchNorm2d):
            if path not in stats:
                raise ValueError(
                    f"result has no batch statistics for the BatchNorm2d at {path}; it was "
                    "recorded on a different network: re-run simulate_conv(..., train=True)"
                )
            mean, var, n = stats[path]
            if np.shape(mean) != layer.running_mean.shape:
                raise ValueError(
                    f"the batch statistics of {path} have {np.size(mean)} channels but the "
                    f"layer has {layer.running_mean.shape[0]}; the result is from another network"
                )
            mom = layer.momentum
            dt = layer.running_mean.dtype
            unbiased = np.asarray(var, dtype=dt) * (n / (n - 1))
            # PyTorch's CPU order: momentum · new + (1 − momentum) · running
            layer = layer.replace(
                running_mean=mom * np.asarray(mean, dtype=dt) + (1 - mom) * layer.running_mean,
                running_var=mom * unbiased + (1 - mom) * layer.running_var)
            seen.add(path)
        elif isinstance(layer, Residual):
            layer = Residual(_update_layers(layer.body, path + ".body", stats, seen),
                             _update_layers(layer.shortcut, path + ".shortcut", stats, seen),
                             layer.connection, layer.neuron)
        out.append(layer)
    return tuple(out)


def update_running_stats(network, result) -> ConvNetwork:
    """The network with PyTorch's running-statistics update applied to every BatchNorm2d.

    Parameters
    ----------
    network : ConvNetwork
        The network ``result`` was computed with.
    result : ConvSimulationResult
        From ``simulate_conv(network, ..., train=True)``.

    Returns
    -------
    ConvNetwork
        A new network (layers are immutable); for each BatchNorm2d, with ``m`` its momentum and
        ``(μ_B, σ²_B, n)`` the batch statistics of the run,
        ``running_mean ← m μ_B + (1 − m) running_mean`` and
        ``running_var ← m σ²_B n / (n − 1) + (1 − m) running_var`` (``torch.nn.BatchNorm2d`` in
        train mode; Ioffe & Szegedy 2015, Alg. 2: the unbiased variance for inference).

    Examples
    --------
    >>> import numpy as np
    >>> net = ConvNetwork([BatchNorm2d([0.0], [1.0], momentum=0.5)], input_shape=(1, 1, 2))
    >>> x = np.array([1.0, 3.0]).reshape(1, 1, 1, 1, 2)       # mean 2, unbiased variance 2
    >>> new = update_running_stats(net, simulate_conv(net, x, train=True))
    >>> new.layers[0].running_mean, new.layers[0].running_var
    (array([1.]), array([1.5]))
    """
    if not isinstance(network, ConvNetwork):
        raise TypeError(f"network must be an evsnn ConvNetwork, got {type(network).__name__}")
    if not isinstance(result, ConvSimulationResult) or result.batch_stats is None:
        raise ValueError(
            "result must come from simulate_conv(..., train=True): it carries no batch statistics"
        )
    seen = set()
    layers = _update_layers(network.layers, "layers", result.batch_stats, seen)
    extra = set(result.batch_stats) - seen
    if extra:
        raise ValueError(
            f"result has batch statistics for {sorted(extra)}, which are not BatchNorm2d layers "
            "of this network; it was recorded on a different network"
        )
    return ConvNetwork(layers, network.input_shape)
