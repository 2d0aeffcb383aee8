"""Convolutional / residual SpikingJelly models beside evsnn: loading and cross-validation.

:func:`from_spikingjelly` builds an :class:`evsnn.clock.conv.ConvNetwork` from a SpikingJelly
2.0 model (module structure + state dict) and returns the convention that matches the framework;
:func:`run_spikingjelly` runs the framework model and reads every neuron layer's spikes and
membrane before reset; :func:`compare_conv` judges every neuron layer of evsnn on the
framework's own upstream spikes (``simulate_conv(..., teacher=...)``) and classifies each
difference as a rounding tie or a real mismatch, exactly as :func:`validation.crossval.compare`
does for dense networks (:func:`compare_conv_run` does the same on a run already made, e.g. by
:func:`validation.crossval.snntorch_conv.run_snntorch`). :func:`to_spikingjelly` writes an
evsnn network back as a SpikingJelly model (the inverse mapping; what SpikingJelly cannot
express raises ``ValueError``).

Module mapping (read from spikingjelly 2.0.0 and torch 2.13.0)
---------------------------------------------------------------
* ``nn.Sequential`` (nested) is flattened; ``nn.Identity`` vanishes. ``layer.Dropout`` (one mask
  per sequence) and ``nn.Dropout`` (a mask per step) become :class:`Dropout` with
  ``shared_over_time`` True / False: the identity at inference, active under
  ``simulate_conv(train=True)``. The model must be in eval mode (as for batch norm).
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
from dataclasses import dataclass

import numpy as np

from evsnn.clock.conv import (
    AvgPool2d, BatchNorm2d, Conv2d, ConvNetwork, Dropout, Flatten, InputTrace, Linear, MaxPool2d,
    Neuron, Residual, fold_batchnorm, simulate_conv,
)
from evsnn.conventions import DEFAULT, get_convention
from evsnn.params import LIF
from validation.crossval.spikingjelly import SpikingJellyBackend
from validation.crossval.core import TIE_RTOL, CrossvalReport, _classify_layer, _count_distance

__all__ = ["SPIKINGJELLY", "from_spikingjelly", "run_spikingjelly", "compare_conv",
           "compare_conv_run", "to_spikingjelly", "FrameworkRun"]

SPIKINGJELLY = DEFAULT.with_(name="SPIKINGJELLY", time_origin=0, spike_test=">=",
                             input_delay=0, sigmoid_scale="code")


def _modules():
    """torch and SpikingJelly's modules, imported by the dense adapter (one error message)."""
    m = SpikingJellyBackend._import(None)
    return m["torch"], m["functional"], m["layer"], m["neuron"]


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


class _TorchLoader:
    """What every PyTorch framework shares: ``nn.Sequential`` (flattened), ``nn.Identity`` and
    eval-mode dropout (vanish), ``nn.Conv2d``, ``nn.BatchNorm2d`` (eval), ``nn.AvgPool2d``,
    ``nn.MaxPool2d``, ``nn.Flatten``, ``nn.Linear`` (and the frameworks' subclasses of them).
    A framework's loader subclasses it and implements :meth:`framework_module` (its neurons and
    residual blocks) and :meth:`unsupported`."""

    dropout_types = ()  # the framework's own dropout classes (besides nn.Dropout)

    def __init__(self, torch, fold_bn):
        self.torch = torch
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

    def framework_module(self, m):  # pragma: no cover - abstract
        """The evsnn layers of a framework-specific module, or None if ``m`` is not one."""
        raise NotImplementedError

    def unsupported(self, m):  # pragma: no cover - abstract
        """The exception to raise for a module without evsnn counterpart."""
        raise NotImplementedError

    def module(self, m):
        nn = self.torch.nn
        if isinstance(m, nn.Sequential):
            return self.seq(list(m))
        if isinstance(m, nn.Identity):
            return []
        if isinstance(m, (nn.Dropout,) + tuple(self.dropout_types)):
            if m.training:
                raise ValueError("Dropout is in training mode; call model.eval() before loading")
            # kept for training with simulate_conv(train=True); the identity at inference
            return [Dropout(float(m.p), shared_over_time=isinstance(m, tuple(self.dropout_types)))]
        own = self.framework_module(m)
        if own is not None:
            return own
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
            if m.momentum is None:
                raise ValueError(
                    f"{m!r} has momentum=None (a cumulative running average), which evsnn's "
                    "BatchNorm2d does not implement; set a momentum in [0, 1]"
                )
            return [BatchNorm2d(_np(m.running_mean), _np(m.running_var),
                                None if m.weight is None else _np(m.weight),
                                None if m.bias is None else _np(m.bias), float(m.eps),
                                momentum=float(m.momentum))]
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
        raise self.unsupported(m)


class _Loader(_TorchLoader):
    def __init__(self, fold_bn):
        torch, self.functional, self.layer, self.neuron = _modules()
        super().__init__(torch, fold_bn)
        self.dropout_types = (self.layer.Dropout,)

    def unsupported(self, m):
        return NotImplementedError(
            f"{type(m).__module__}.{type(m).__name__} has no evsnn counterpart; supported: "
            "Sequential, Conv2d, BatchNorm2d, AvgPool2d, MaxPool2d, Flatten, Linear, IFNode, "
            "LIFNode, spiking_resnet / sew_resnet BasicBlock, Identity, Dropout (eval)"
        )

    def framework_module(self, m):
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
        if isinstance(m, (self.neuron.IFNode, self.neuron.LIFNode)):
            return [self.node(m)]
        return None

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


@dataclass(frozen=True)
class FrameworkRun:
    """What a framework run reports, per neuron layer (evsnn's order): ``spikes`` and
    ``membranes`` (before reset), numpy float64 arrays ``[T, B, ...]``, and ``output`` of the
    model (:func:`run_spikingjelly`, :func:`validation.crossval.snntorch_conv.run_snntorch`)."""

    spikes: list
    membranes: list
    output: np.ndarray


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
    return FrameworkRun(spikes, membranes, _np(out))


def _dtype_iv(dtype):
    dtype = np.dtype(dtype)
    if dtype not in TIE_RTOL:
        raise ValueError(f"dtype={dtype} is not supported; use numpy.float32 or numpy.float64")
    return dtype


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
    get_convention(convention)
    dtype = _dtype_iv(dtype)
    inputs = np.asarray(inputs, dtype=np.float64)
    sj = run_spikingjelly(model, inputs, dtype=dtype)
    return compare_conv_run(network, sj, inputs, convention=convention, dtype=dtype,
                            distance=distance)


def compare_conv_run(network, run, inputs, *, convention=SPIKINGJELLY, dtype=np.float64,
                     distance=None, backend="spikingjelly"):
    """:func:`compare_conv` on a framework run already made: ``run`` is a
    :class:`FrameworkRun` (from :func:`run_spikingjelly` or
    :func:`validation.crossval.snntorch_conv.run_snntorch`) of the model on ``inputs`` in
    ``dtype``; ``backend`` names the framework in the report and in the error messages."""
    conv = get_convention(convention)
    dtype = _dtype_iv(dtype)
    inputs = np.asarray(inputs, dtype=np.float64)
    n = len(network.neuron_layers())
    if len(run.spikes) != n:
        raise ValueError(
            f"the model has {len(run.spikes)} neuron layers but the network has {n}; load the "
            f"network from this model with from_{backend}"
        )
    forced = simulate_conv(network, inputs, convention=conv, record=True, teacher=run.spikes)
    free = simulate_conv(network, inputs, convention=conv, record=True)
    distance = distance or _count_distance
    layers, free_run = [], []
    for li, ((_, layer), rec) in enumerate(zip(network.neuron_layers(), forced.layers)):
        T, B = rec.m.shape[:2]
        flat = lambda a: a.reshape(T, B, -1)  # noqa: E731
        ref_spikes = rec.spikes if rec.spikes is not None else np.zeros_like(rec.m)
        theta = layer.neuron.kernel_args().theta
        layers.append(_classify_layer(li, flat(ref_spikes), flat(rec.m), flat(run.spikes[li]),
                                      flat(run.membranes[li]), theta, TIE_RTOL[dtype], distance))
        free_run.append(int(np.sum(free.layers[li].spikes != run.spikes[li])))
    return CrossvalReport(backend, conv.name, layers), free_run


# =========================================================================== export
_EXPORT_BLOCKS = {}


def _export_blocks(torch):
    """Residual block classes shaped like SpikingJelly's ``spiking_resnet`` / ``sew_resnet``
    ``BasicBlock`` (same class name, parts and forward; defined here because importing
    ``spikingjelly.activation_based.model`` pulls in torchvision), so that
    :func:`from_spikingjelly` recognises what :func:`to_spikingjelly` writes."""
    if not _EXPORT_BLOCKS:

        class BasicBlock(torch.nn.Module):
            """``sn2(bn2(conv2(sn1(bn1(conv1(x))))) + downsample(x))`` (spiking ResNet)."""

            def __init__(self, parts, downsample):
                super().__init__()
                for name, mod in parts.items():
                    setattr(self, name, mod)
                self.downsample = downsample

            def forward(self, x):
                y = self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(x)))))
                return self.sn2(y + (x if self.downsample is None else self.downsample(x)))

        class SEWBasicBlock(torch.nn.Module):
            """``cnf(downsample_sn(downsample(x)), sn2(bn2(conv2(sn1(bn1(conv1(x)))))))``
            (SEW-ResNet; ``cnf`` one of ADD, AND, IAND)."""

            def __init__(self, parts, downsample, downsample_sn, cnf):
                super().__init__()
                for name, mod in parts.items():
                    setattr(self, name, mod)
                self.downsample = downsample
                if downsample is not None:
                    self.downsample_sn = downsample_sn
                self.cnf = cnf

            def forward(self, x):
                y = self.sn2(self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(x))))))
                s = x if self.downsample is None else self.downsample_sn(self.downsample(x))
                if self.cnf == "ADD":
                    return s + y
                if self.cnf == "AND":
                    return s * y
                return s * (1.0 - y)

        SEWBasicBlock.__name__ = SEWBasicBlock.__qualname__ = "BasicBlock"
        _EXPORT_BLOCKS.update(standard=BasicBlock, sew=SEWBasicBlock)
    return _EXPORT_BLOCKS


def _exact_tau(lam, input_scale):
    """τ with ``1 − 1/τ == lam`` exactly (and ``1/τ == input_scale`` when that is not 1), so
    that :func:`from_spikingjelly` reads the same λ and input scale back; None if no float
    within a few ulps of ``1/(1 − λ)`` does."""
    candidates = [1.0 / (1.0 - lam)]
    if input_scale != 1.0:
        candidates.append(1.0 / input_scale)
    for tau0 in candidates:
        for k in range(-4, 5):
            tau = float(tau0 + k * np.spacing(tau0))
            if tau > 1.0 and 1.0 - 1.0 / tau == lam and input_scale in (1.0, 1.0 / tau):
                return tau
    return None


class _Exporter:
    """Shared by :func:`to_spikingjelly` and ``snntorch_conv.to_snntorch``: the synaptic layers
    as ``torch.nn`` modules (or the framework's subclasses, ``nn_layers``), float64 weights cast
    to ``tdtype``; the framework's neurons and blocks come from the subclass."""

    def __init__(self, torch, tdtype, convention, nn_layers, framework):
        self.torch = torch
        self.tdtype = tdtype
        self.conv = convention
        self.L = nn_layers
        self.framework = framework
        self.index = 0  # neuron layers exported so far

    def tensor(self, a):
        return self.torch.tensor(np.asarray(a), dtype=self.tdtype)

    def load(self, module, **arrays):
        """``module`` cast to the export dtype, then its tensors set to ``arrays`` (casting
        after the copy would round float64 numbers through the default float32)."""
        module = module.to(self.tdtype)
        with self.torch.no_grad():
            for name, a in arrays.items():
                if a is not None:
                    getattr(module, name).copy_(self.tensor(a))
        return module

    def layers(self, layers, prefix):
        return [self.layer(layer, f"{prefix}[{i}]") for i, layer in enumerate(layers)]

    def layer(self, layer, path):
        L = self.L
        if isinstance(layer, Conv2d):
            co, cin_pg, kh, kw = layer.weight.shape
            m = L.Conv2d(cin_pg * layer.groups, co, (kh, kw), stride=layer.stride,
                         padding=layer.padding, groups=layer.groups,
                         bias=layer.bias is not None)
            return self.load(m, weight=layer.weight, bias=layer.bias)
        if isinstance(layer, Linear):
            n_out, n_in = layer.weight.shape
            m = L.Linear(n_in, n_out, bias=layer.bias is not None)
            return self.load(m, weight=layer.weight, bias=layer.bias)
        if isinstance(layer, BatchNorm2d):
            m = L.BatchNorm2d(layer.running_mean.shape[0], eps=layer.eps,
                              momentum=layer.momentum)
            return self.load(m, **{name: getattr(layer, name) for name in (
                "running_mean", "running_var", "weight", "bias")}).eval()
        if isinstance(layer, AvgPool2d):
            return L.AvgPool2d(layer.kernel_size, layer.stride, layer.padding)
        if isinstance(layer, MaxPool2d):
            return L.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
        if isinstance(layer, Flatten):
            return L.Flatten()
        if isinstance(layer, Dropout):
            return self.dropout(layer, path).eval()
        if isinstance(layer, Neuron):
            i = self.index
            self.index += 1
            return self.neuron(layer, path, i)
        if isinstance(layer, InputTrace):
            raise ValueError(
                f"{path} is an InputTrace(c={layer.c!r}): the {self.framework} mirror feeds a "
                "layer its input itself, not the input's synaptic trace; compare a network "
                "without input traces"
            )
        return self.residual(layer, path)

    def neuron(self, layer, path, index):  # pragma: no cover - abstract
        raise NotImplementedError

    def dropout(self, layer, path):
        """The framework's dropout: one mask per sequence (SpikingJelly's ``layer.Dropout``)
        or a fresh one per element and step (``nn.Dropout``)."""
        if layer.shared_over_time:
            return self.L.Dropout(layer.p)
        return self.torch.nn.Dropout(layer.p)

    def residual(self, layer, path):  # pragma: no cover - abstract
        raise NotImplementedError

    def parts(self, layer, path, names, sew):
        """The body of ``layer`` as named block parts (``conv1, bn1, <neuron>1, conv2, bn2``
        and, for SEW, ``<neuron>2``); a missing batch norm becomes ``nn.Identity``."""
        body = list(layer.body)
        kinds = [Conv2d, BatchNorm2d, Neuron, Conv2d, BatchNorm2d] + ([Neuron] if sew else [])
        out, k = {}, 0
        for name, kind in zip(names, kinds):
            if k < len(body) and isinstance(body[k], kind):
                out[name] = self.layer(body[k], f"{path}.body[{k}]")
                k += 1
            elif kind is BatchNorm2d:
                out[name] = self.torch.nn.Identity()
            else:
                break
        if len(out) != len(names) or k != len(body):
            want = ", ".join(n for n in names)
            raise ValueError(
                f"{path}: the residual body {[type(b).__name__ for b in body]} is not a "
                f"{self.framework} basic block ({want}; batch norms optional); build the block "
                "with evsnn.clock.conv.basic_block / sew_block"
            )
        return out

    def finish(self, modules):
        return self.torch.nn.Sequential(*modules).to(self.tdtype).eval()


class _SJExporter(_Exporter):
    def __init__(self, dtype, convention):
        torch, self.functional, layer, self.neuron_mod = _modules()
        tdtype = torch.float64 if dtype == np.float64 else torch.float32
        super().__init__(torch, tdtype, convention, layer, "SpikingJelly")

    def neuron(self, layer, path, index):
        nrn = layer.neuron
        name = type(nrn).__name__
        if not isinstance(nrn, LIF):
            raise ValueError(
                f"{path} is a {name} neuron: SpikingJelly's IFNode / LIFNode have no "
                f"counterpart for it; only evsnn.params.LIF exports"
            )
        theta, v_rest, lam = nrn.theta, nrn.v_rest, nrn.lam
        soft = nrn.reset == "soft"
        start = 0.0 if soft else v_rest
        if nrn.v_init != start:
            raise ValueError(
                f"{path} has v_init={nrn.v_init!r}: SpikingJelly starts the membrane at v_reset "
                f"({start!r} here); set v_init={start!r}"
            )
        v_reset = None if soft else v_rest
        if lam == 1.0:
            if layer.input_scale != 1.0:
                raise ValueError(
                    f"{path} has input_scale={layer.input_scale!r}: SpikingJelly's IFNode "
                    "charges V + X; fold the scale into the weights before it"
                )
            return self.neuron_mod.IFNode(v_threshold=theta, v_reset=v_reset)
        if not soft and v_rest != 0.0:
            raise ValueError(
                f"{path} resets to v_rest={v_rest!r} with lam={lam!r}: SpikingJelly's LIFNode "
                "leaks towards v_reset, evsnn towards 0; use v_rest=0 or lam=1"
            )
        tau = _exact_tau(lam, layer.input_scale)
        if tau is None:
            raise ValueError(
                f"{path} has lam={lam!r}, input_scale={layer.input_scale!r}: SpikingJelly's "
                "LIFNode(tau) leaks by 1 - 1/tau and scales the input by 1 (decay_input=False) "
                "or 1/tau (decay_input=True); no tau gives these; use input_scale 1 or 1 - lam"
            )
        return self.neuron_mod.LIFNode(tau=tau, decay_input=layer.input_scale != 1.0,
                                       v_threshold=theta, v_reset=v_reset)

    def residual(self, layer, path):
        blocks = _export_blocks(self.torch)
        nn = self.torch.nn
        if layer.connection == "standard":
            parts = self.parts(layer, path, ("conv1", "bn1", "sn1", "conv2", "bn2"), False)
            short = self.layers(layer.shortcut, path + ".shortcut")
            parts["sn2"] = self.layer(layer.neuron, path + ".neuron")
            return blocks["standard"](parts, nn.Sequential(*short) if short else None)
        parts = self.parts(layer, path, ("conv1", "bn1", "sn1", "conv2", "bn2", "sn2"), True)
        short = layer.shortcut
        if short and not isinstance(short[-1], Neuron):
            raise ValueError(
                f"{path}: a SEW block's shortcut must end with its neuron (SpikingJelly's "
                f"downsample_sn), got {[type(s).__name__ for s in short]}"
            )
        mods = self.layers(short, path + ".shortcut")
        down = nn.Sequential(*mods[:-1]) if mods else None
        return blocks["sew"](parts, down, mods[-1] if mods else None, layer.connection)


def to_spikingjelly(network, *, dtype=np.float64, convention=SPIKINGJELLY):
    """A SpikingJelly 2.0 model with the weights and neurons of an evsnn :class:`ConvNetwork`
    (the inverse of :func:`from_spikingjelly`).

    Parameters
    ----------
    network : ConvNetwork
    dtype : numpy.float64 or numpy.float32
        The model's dtype (float64: :func:`from_spikingjelly` reads every number back exactly).
    convention : Convention or str
        The semantics ``network`` is run with; SpikingJelly fires on ``>=`` and delivers a
        layer's input in the same step, so it must have ``spike_test=">="`` and
        ``input_delay=0`` (:data:`SPIKINGJELLY`).

    Returns
    -------
    torch.nn.Sequential
        In eval mode and multi-step mode (input ``[T, B, C, H, W]``). Layers become
        ``layer.Conv2d``, ``layer.BatchNorm2d``, ``layer.AvgPool2d``, ``layer.MaxPool2d``,
        ``layer.Flatten``, ``layer.Linear``; ``LIF(lam=1)`` an ``IFNode`` (``v_reset`` None for
        the soft reset, ``v_rest`` for the hard one), ``LIF(lam<1)`` a ``LIFNode`` with
        ``1 − 1/τ = λ`` (``decay_input=True`` when ``input_scale = 1/τ``); residual blocks a
        ``BasicBlock`` shaped like ``spiking_resnet`` / ``sew_resnet``'s (the body must be
        ``conv1, [bn1], neuron, conv2, [bn2]`` (+ neuron for SEW), as
        :func:`evsnn.clock.conv.basic_block` / ``sew_block`` build it).

    Raises
    ------
    ValueError
        What SpikingJelly cannot express, named: a convention with ``spike_test=">"`` or
        ``input_delay=1``; a DLIF, TraceLIF or Readout neuron; ``v_init`` other than the reset
        value; a leaky neuron resetting to ``v_rest ≠ 0``; an input scale other than 1 and 1/τ;
        a residual body that is not a basic block; an :class:`~evsnn.clock.conv.InputTrace`.

    Notes
    -----
    The model reproduces :func:`simulate_conv` (``convention``) up to rounding: SpikingJelly's
    LIF charges ``V − V/τ + X`` (or ``V + (X − V)/τ``), evsnn ``λ V + X`` (``λ V + X/τ``), so
    spikes can differ where a membrane is within rounding of θ (ties).
    """
    if not isinstance(network, ConvNetwork):
        raise TypeError(f"network must be an evsnn ConvNetwork, got {type(network).__name__}")
    conv = get_convention(convention)
    if conv.spike_test != ">=" or conv.input_delay != 0:
        raise ValueError(
            f"convention {conv.name!r} has spike_test={conv.spike_test!r}, "
            f"input_delay={conv.input_delay!r}: SpikingJelly fires on V >= threshold with the "
            "input in the same step; use spike_test='>=' and input_delay=0 (SPIKINGJELLY)"
        )
    ex = _SJExporter(_dtype_iv(dtype), conv)
    model = ex.finish(ex.layers(network.layers, "layers"))
    ex.functional.set_step_mode(model, "m")
    return model
