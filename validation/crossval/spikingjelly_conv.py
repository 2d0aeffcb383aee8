"""Convolutional / residual SpikingJelly models beside evsnn: loading and cross-validation.

:func:`from_spikingjelly` builds an :class:`evsnn.clock.conv.ConvNetwork` from a SpikingJelly
2.0 model (module structure + state dict) and returns the convention that matches the framework;
:func:`run_spikingjelly` runs the framework model and reads every neuron layer's spikes and
membrane before reset; :func:`compare_conv` judges every neuron layer of evsnn on the
framework's own upstream spikes (``simulate_conv(..., teacher=...)``) and classifies each
difference as a rounding tie or a real mismatch, exactly as :func:`validation.crossval.compare`
does for dense networks.

Module mapping (read from spikingjelly 2.0.0 and torch 2.13.0)
---------------------------------------------------------------
* ``nn.Sequential`` (nested) is flattened; ``nn.Identity`` and ``Dropout`` in eval mode vanish.
* ``layer.Conv2d`` / ``nn.Conv2d`` → :class:`Conv2d` (weight, bias, stride, padding, groups;
  dilation 1 and zero padding mode only).
* ``layer.BatchNorm2d`` (eval mode: running statistics) → :class:`BatchNorm2d`, or folded into
  the preceding convolution with ``fold_bn=True`` (equal up to rounding: more ties).
* ``layer.AvgPool2d`` (``count_include_pad=True``, no ceil mode, no divisor override),
  ``layer.MaxPool2d`` (no dilation, no ceil mode), ``layer.Flatten`` (``start_dim=1``: in
  multi-step mode SpikingJelly flattens ``[T·B, C, H, W]`` from dim 1), ``layer.Linear``.
* ``neuron.IFNode`` → ``LIF(lam=1)``; ``v_reset=None`` is the soft reset, a float the hard
  reset to it. SpikingJelly starts the membrane at ``v_reset`` (0 for the soft reset): that is
  ``v_init``.
* ``neuron.LIFNode(tau)`` → ``LIF(lam=1 − 1/τ)``: ``decay_input=False`` charges
  ``V − V/τ + X`` (λ V + X up to rounding); ``decay_input=True`` (the default) charges
  ``V + (X − V)/τ``, i.e. :class:`Neuron` with ``input_scale = 1/τ``. Both need
  ``v_reset ∈ {0, None}``: SpikingJelly leaks towards ``v_reset``, evsnn towards 0.
* ``model.spiking_resnet.BasicBlock`` → :class:`Residual` ``"standard"`` (the shortcut is added
  to bn2's output before sn2); ``model.sew_resnet.BasicBlock`` → :class:`Residual` with its
  ``cnf`` (``ADD``, ``AND``, ``IAND``), shortcut ``downsample`` + ``downsample_sn``. Blocks are
  recognised by class name and parts (``conv1 … sn2, downsample``, ``cnf`` for SEW), not by
  importing ``spikingjelly.activation_based.model``: that package imports torchvision, which
  fails to import against torch 2.13 in this environment.
* Spike test ``H >= θ`` (``heaviside(x) = x >= 0``), reset in the same step, no input delay:
  :data:`SPIKINGJELLY` (time origin 0, as the code counts).
"""

from __future__ import annotations

import copy

import numpy as np

from evsnn.clock.conv import (
    AvgPool2d, BatchNorm2d, Conv2d, ConvNetwork, Flatten, Linear, MaxPool2d, Neuron, Residual,
    fold_batchnorm, simulate_conv,
)
from evsnn.conventions import DEFAULT, get_convention
from evsnn.params import LIF
from validation.crossval.backends import INSTALL_HINT, import_torch
from validation.crossval.core import TIE_RTOL, CrossvalReport, _classify_layer, _count_distance

__all__ = ["SPIKINGJELLY", "from_spikingjelly", "run_spikingjelly", "compare_conv",
           "SpikingJellyRun"]

SPIKINGJELLY = DEFAULT.with_(name="SPIKINGJELLY", time_origin=0, spike_test=">=",
                             input_delay=0, sigmoid_scale="code")


def _modules():
    torch = import_torch("spikingjelly")
    try:
        from spikingjelly.activation_based import functional, layer, neuron
    except ImportError as exc:
        raise ImportError(f"loading SpikingJelly models needs spikingjelly 2.0 ({exc}); "
                          f"{INSTALL_HINT}") from exc
    return torch, functional, layer, neuron


_BLOCK_PARTS = ("conv1", "bn1", "sn1", "conv2", "bn2", "sn2", "downsample")


def _block_kind(m):
    """'sew' / 'standard' for a module shaped like SpikingJelly's ``sew_resnet`` /
    ``spiking_resnet`` ``BasicBlock`` (recognised by its parts: importing
    ``spikingjelly.activation_based.model`` pulls in torchvision, which may not match the
    installed torch), else None."""
    if type(m).__name__ != "BasicBlock" or not all(hasattr(m, a) for a in _BLOCK_PARTS):
        return None
    return "sew" if hasattr(m, "cnf") else "standard"


def _np(t):
    return t.detach().cpu().double().numpy()


class _Loader:
    def __init__(self, fold_bn):
        self.torch, self.functional, self.layer, self.neuron = _modules()
        self.fold_bn = fold_bn
        self.nodes = []  # framework neuron modules, in evsnn's execution order

    def seq(self, modules):
        out = []
        for m in modules:
            out += self.module(m)
        if self.fold_bn:
            folded = []
            for layer in out:
                if isinstance(layer, BatchNorm2d) and folded and isinstance(folded[-1], Conv2d):
                    folded[-1] = fold_batchnorm(folded[-1], layer)
                else:
                    folded.append(layer)
            out = folded
        return out

    def module(self, m):
        nn = self.torch.nn
        if isinstance(m, nn.Sequential):
            return self.seq(list(m))
        if isinstance(m, nn.Identity):
            return []
        if isinstance(m, (nn.Dropout, self.layer.Dropout)):
            if m.training:
                raise ValueError("Dropout is in training mode; call model.eval() before loading")
            return []
        kind = _block_kind(m)
        if kind == "standard":
            body = self.seq([m.conv1, m.bn1, m.sn1, m.conv2, m.bn2])
            short = self.seq([m.downsample]) if m.downsample is not None else []
            post = self.node(m.sn2)
            return [Residual(tuple(body), tuple(short), "standard", post)]
        if kind == "sew":
            body = self.seq([m.conv1, m.bn1, m.sn1, m.conv2, m.bn2, m.sn2])
            short = (self.seq([m.downsample, m.downsample_sn]) if m.downsample is not None
                     else [])
            return [Residual(tuple(body), tuple(short), m.cnf, None)]
        if isinstance(m, nn.Conv2d):
            if tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros" or isinstance(
                    m.padding, str):
                raise ValueError(
                    f"{m!r}: only dilation 1, numeric zero padding map to evsnn's Conv2d"
                )
            return [Conv2d(_np(m.weight), tuple(m.stride), tuple(m.padding), m.groups,
                           None if m.bias is None else _np(m.bias))]
        if isinstance(m, nn.BatchNorm2d):
            if m.training or not m.track_running_stats:
                raise ValueError(
                    f"{m!r} is in training mode (batch statistics); call model.eval() so that "
                    "the running statistics are used"
                )
            return [BatchNorm2d(_np(m.running_mean), _np(m.running_var),
                                None if m.weight is None else _np(m.weight),
                                None if m.bias is None else _np(m.bias), float(m.eps))]
        if isinstance(m, nn.AvgPool2d):
            if m.ceil_mode or not m.count_include_pad or m.divisor_override is not None:
                raise ValueError(f"{m!r}: only floor mode, count_include_pad=True map")
            return [AvgPool2d(m.kernel_size, m.stride, m.padding)]
        if isinstance(m, nn.MaxPool2d):
            if m.ceil_mode or m.dilation not in (1, (1, 1)) or m.return_indices:
                raise ValueError(f"{m!r}: only floor mode without dilation maps")
            return [MaxPool2d(m.kernel_size, m.stride, m.padding)]
        if isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise ValueError(f"{m!r}: only Flatten(start_dim=1, end_dim=-1) maps")
            return [Flatten()]
        if isinstance(m, nn.Linear):
            return [Linear(_np(m.weight), None if m.bias is None else _np(m.bias))]
        if isinstance(m, (self.neuron.IFNode, self.neuron.LIFNode)):
            return [self.node(m)]
        raise NotImplementedError(
            f"{type(m).__module__}.{type(m).__name__} has no evsnn counterpart; supported: "
            "Sequential, Conv2d, BatchNorm2d, AvgPool2d, MaxPool2d, Flatten, Linear, IFNode, "
            "LIFNode, spiking_resnet / sew_resnet BasicBlock, Identity, Dropout (eval)"
        )

    def node(self, m):
        theta = float(m.v_threshold)
        v_reset = m.v_reset
        reset = "soft" if v_reset is None else "hard"
        v_rest = 0.0 if v_reset is None else float(v_reset)
        if isinstance(m, self.neuron.IFNode):
            layer = Neuron(LIF(lam=1.0, theta=theta, reset=reset, v_rest=v_rest, v_init=v_rest))
        else:
            tau = float(m.tau)
            if v_rest != 0.0:
                raise ValueError(
                    f"{m!r} leaks towards v_reset={v_reset!r}; evsnn's LIF leaks towards 0, so "
                    "only v_reset=0.0 or None map"
                )
            layer = Neuron(LIF(lam=1.0 - 1.0 / tau, theta=theta, reset=reset),
                           input_scale=1.0 / tau if m.decay_input else 1.0)
        self.nodes.append(m)
        return layer


def from_spikingjelly(model, input_shape, *, fold_bn=False):
    """An evsnn :class:`ConvNetwork` with the weights and structure of a SpikingJelly model.

    Parameters
    ----------
    model : torch.nn.Module
        A SpikingJelly 2.0 model built from the modules listed in the module docstring
        (``nn.Sequential`` at the top, in eval mode when it has batch norm or dropout).
    input_shape : tuple of int
        ``(C, H, W)`` of one sample at one step.
    fold_bn : bool
        Fold each ``BatchNorm2d`` into the convolution before it (:func:`fold_batchnorm`).

    Returns
    -------
    network : ConvNetwork
    convention : Convention
        :data:`SPIKINGJELLY` (spike test ``>=``, no input delay, time origin 0).
    """
    loader = _Loader(fold_bn)
    return ConvNetwork(tuple(loader.module(model)), tuple(input_shape)), SPIKINGJELLY


class SpikingJellyRun:
    """Per neuron layer (evsnn's order): ``spikes`` and ``membranes`` (before reset), numpy
    float64 arrays ``[T, B, ...]``, and ``output`` of the model."""

    def __init__(self, spikes, membranes, output):
        self.spikes = spikes
        self.membranes = membranes
        self.output = output


def run_spikingjelly(model, inputs, *, dtype=np.float64):
    """Run a SpikingJelly model (a copy, cast to ``dtype``, multi-step mode) on ``inputs``
    ``[T, B, C, H, W]`` and read every IF/LIF node's spikes and membrane before reset.

    The membrane before reset is recomputed from the node's input ``X`` and its stored ``V``
    after the previous step with SpikingJelly's own charge (``functional.lif_charge``;
    ``V + X`` for ``IFNode``) and checked against the node's spikes (``S == (H >= θ)``).
    """
    torch, functional, _, neuron = _modules()
    tdtype = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}[
        np.dtype(dtype)]
    m = copy.deepcopy(model).to(tdtype).eval()
    loader = _Loader(False)
    loader.module(m)  # the nodes in evsnn's order
    functional.set_step_mode(m, "m")
    functional.reset_net(m)
    captured = {}

    def hook(mod, inp, out):
        captured[id(mod)] = (inp[0].detach(), out.detach(), mod.v_seq.detach())

    handles = []
    for node in loader.nodes:
        node.store_v_seq = True
        handles.append(node.register_forward_hook(hook))
    x = torch.as_tensor(np.asarray(inputs), dtype=tdtype)
    with torch.no_grad():
        out = m(x)
    for h in handles:
        h.remove()
    spikes, membranes = [], []
    for node in loader.nodes:
        X, S, v_seq = captured[id(node)]
        v0 = torch.full_like(X[0], 0.0 if node.v_reset is None else float(node.v_reset))
        v_prev = torch.cat([v0[None], v_seq[:-1]])
        if isinstance(node, neuron.LIFNode):
            H = functional.lif_charge(X, v_prev, node.tau, node.decay_input, node.v_reset)
        else:
            H = v_prev + X
        if not torch.equal(H >= node.v_threshold, S != 0):
            raise RuntimeError(
                "the membrane recomputed with SpikingJelly's charge does not reproduce the "
                "node's spikes (SpikingJelly changed its update?)"
            )
        spikes.append(_np(S))
        membranes.append(_np(H))
    return SpikingJellyRun(spikes, membranes, _np(out))


def compare_conv(network, model, inputs, *, convention=SPIKINGJELLY, dtype=np.float64,
                 distance=None):
    """Cross-validate a :class:`ConvNetwork` against the SpikingJelly model it was loaded from.

    Every neuron layer of evsnn runs on the framework's upstream spikes (teacher forcing), so a
    difference in layer l is attributable to layer l; first differences per neuron are ties
    when evsnn's membrane is within ``TIE_RTOL[dtype]`` of θ, real otherwise (see
    :mod:`validation.crossval.core`).

    Returns
    -------
    report : CrossvalReport
        Per neuron layer (``LayerComparison.layer`` is its index in execution order).
    free_run : list of int
        Per neuron layer, the number of spikes that differ between a free evsnn run (no teacher)
        and the framework: 0 everywhere means the spike trains are identical end to end.
    """
    conv = get_convention(convention)
    dtype = np.dtype(dtype)
    if dtype not in TIE_RTOL:
        raise ValueError(f"dtype={dtype} is not supported; use numpy.float32 or numpy.float64")
    inputs = np.asarray(inputs, dtype=np.float64)
    sj = run_spikingjelly(model, inputs, dtype=dtype)
    n = len(network.neuron_layers())
    if len(sj.spikes) != n:
        raise ValueError(
            f"the model has {len(sj.spikes)} neuron layers but the network has {n}; load the "
            "network from this model with from_spikingjelly"
        )
    forced = simulate_conv(network, inputs, convention=conv, record=True, teacher=sj.spikes)
    free = simulate_conv(network, inputs, convention=conv, record=True)
    distance = distance or _count_distance
    layers, free_run = [], []
    for li, ((_, layer), rec) in enumerate(zip(network.neuron_layers(), forced.layers)):
        T, B = rec.m.shape[:2]
        flat = lambda a: a.reshape(T, B, -1)  # noqa: E731
        ref_spikes = rec.spikes if rec.spikes is not None else np.zeros_like(rec.m)
        theta = layer.neuron.kernel_args().theta
        layers.append(_classify_layer(li, flat(ref_spikes), flat(rec.m), flat(sj.spikes[li]),
                                      flat(sj.membranes[li]), theta, TIE_RTOL[dtype], distance))
        free_run.append(int(np.sum(free.layers[li].spikes != sj.spikes[li])))
    return CrossvalReport("spikingjelly", conv.name, layers), free_run
