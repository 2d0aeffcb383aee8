"""Convolutional / residual snnTorch models beside evsnn: loading, running, export.

:func:`from_snntorch` builds an :class:`evsnn.clock.conv.ConvNetwork` from a snnTorch 1.0 model
(module structure + state dict) and returns :data:`SNNTORCH`, the convention that matches the
framework; :func:`run_snntorch` steps the model over time (snnTorch is single-step) and reads
every ``Leaky`` layer's spikes and membrane before reset; :func:`compare_snntorch` judges every
neuron layer of evsnn on the framework's own upstream spikes with the machinery of
:func:`validation.crossval.spikingjelly_conv.compare_conv_run` (ties vs real mismatches);
:func:`to_snntorch` writes an evsnn network back as a snnTorch model.

Module mapping (read from snntorch 1.0.0 ``_neurons/leaky.py``, ``_neurons/neurons.py``,
``surrogate.py``, ``utils.py``, and torch 2.13.0)
-----------------------------------------------------------------------------------------
* ``nn.Sequential`` (nested), ``nn.Identity``, ``nn.Dropout`` (eval mode; becomes
  ``Dropout(p, shared_over_time=False)``: snnTorch draws a mask at every step),
  ``nn.Conv2d``, ``nn.BatchNorm2d`` (eval; ``fold_bn=True`` folds it into the convolution
  before it), ``nn.AvgPool2d``, ``nn.MaxPool2d``, ``nn.Flatten``, ``nn.Linear``: as for
  SpikingJelly (the shared loader of :mod:`validation.crossval.spikingjelly_conv`; the same
  option limits). Any other module raises ``ValueError``.
* ``snn.Leaky`` (exactly that class) → :class:`Neuron` with :class:`evsnn.params.LIF`. The charge
  ``mem = β.clamp(0, 1)·mem + input`` is evsnn's ``m = λ v + I`` with ``λ = clamp(β, 0, 1)``
  read in float64 from the model (β given as a Python float is a float32 buffer: λ is that
  float32 value), θ = ``threshold``. The reset and threshold mapping is the dense adapter's
  (:mod:`validation.crossval.snntorch`, whose neuron checks are reused): ``"zero"`` is the hard
  reset to 0, ``"subtract"`` the soft reset and exact only for β = 1 (snnTorch subtracts θ
  after the leak); snnTorch fires on ``mem − θ > 0``: the spike test ``>``. ``init_hidden=True``
  is required (the state lives in the module, so it works inside ``nn.Sequential``; the
  membrane starts at 0, i.e. ``v_init = 0``); ``learn_beta`` / ``learn_threshold`` are fine
  (their current values are read); ``output=True`` only on the model's last module (the model
  then returns ``(spk, mem)``; spikes are compared). Refused with ``ValueError`` naming the
  option: ``init_hidden=False``, ``reset_mechanism="none"`` (fires without reset: no evsnn
  neuron), ``reset_delay=False`` (the stored membrane is the one *after* reset),
  ``inhibition=True``, ``state_quant``, ``graded_spikes_factor ≠ 1``, a per-neuron β or θ
  (more than one value), and — ``"subtract"`` in a float64 model — a θ that is not a float32
  number: snnTorch multiplies the float32 reset signal by θ (a 0-d tensor) in float32.
* **Residual block.** snnTorch ships none; a module (not a ``Sequential``) whose children are
  exactly ``conv1, bn1, lif1, conv2, bn2, lif2`` and optionally ``downsample`` (a module or
  None), with ``lif1``, ``lif2`` ``snn.Leaky``, is read as the spiking ResNet basic block
  (:class:`Residual` ``"standard"``) whose forward must be::

      y = bn2(conv2(lif1(bn1(conv1(x)))))
      return lif2(y + (x if downsample is None else downsample(x)))

  (``bn1``/``bn2`` may be ``nn.Identity``). The forward itself cannot be inspected: a block
  with these parts and another forward is misread, which :func:`compare_snntorch` reports as
  real mismatches. :func:`to_snntorch` writes this block (:func:`residual_block_class`).

Running
-------
:func:`run_snntorch` deep-copies the model, casts it to the dtype, resets every ``Leaky``
(``reset_mem()``: the membrane back to zeros; ``snntorch.utils.reset`` only looks at the
top-level children and resets every ``Leaky`` ever created) and calls it once per step.
Membranes before reset are the ``mem`` each ``Leaky`` stores after its call (``reset_delay=True``
applies the reset of step t − 1 at step t), checked against its spikes (``spk == (mem > θ)``).
snnTorch's surrogates return float32 spikes (``(x > 0).float()``) even in a float64 model,
where the next ``nn.Conv2d`` would refuse them: a forward hook on every ``Leaky`` casts its
spikes to the dtype of its input (the values are 0 and 1: exact). :func:`to_snntorch` installs
the same hook, so its model runs in float64 on its own.

Examples
--------
>>> SNNTORCH.spike_test, SNNTORCH.input_delay, SNNTORCH.time_origin
('>', 0, 0)
"""

from __future__ import annotations

import copy

import numpy as np

from evsnn.clock.conv import ConvNetwork, Neuron, Residual
from evsnn.conventions import get_convention
from evsnn.params import LIF
from validation.crossval.backends import import_torch
from validation.crossval.snntorch import SnnTorchBackend, _float32_exact
from validation.crossval.spikingjelly_conv import (
    SPIKINGJELLY, FrameworkRun, _dtype_iv, _Exporter, _np, _TorchLoader, compare_conv_run,
)

__all__ = ["SNNTORCH", "from_snntorch", "run_snntorch", "compare_snntorch", "to_snntorch",
           "residual_block_class"]

# SpikingJelly's code conventions (time origin 0, no input delay, sigmoid surrogate as coded)
# with snnTorch's threshold test, as the dense adapter declares it
SNNTORCH = SPIKINGJELLY.with_(name="SNNTORCH", spike_test=SnnTorchBackend.spike_test)

# the dense adapter's neuron checks (what snnTorch's Leaky can express); they use no torch
_DENSE = SnnTorchBackend.__new__(SnnTorchBackend)

_BLOCK_PARTS = ("conv1", "bn1", "lif1", "conv2", "bn2", "lif2")
# Leaky's update per reset mechanism (snntorch 1.0.0 _neurons/leaky.py)
_STATE_FUNCTIONS = {"_base_sub": "subtract", "_base_zero": "zero", "_base_int": "none"}


def _modules():
    """torch and snntorch, imported by the dense adapter (one error message)."""
    m = _DENSE._import()
    return m["torch"], m["snntorch"]


def _check_lif(neuron, where, index, conv):
    """The dense adapter's check of ``neuron`` against snnTorch's Leaky, its message naming
    ``where`` instead of the dense layer index."""
    try:
        _DENSE._check_neuron(index, neuron, conv)
    except ValueError as exc:
        raise ValueError(str(exc).replace(f"layers[{index}]", where, 1)) from None


def _spikes_in_input_dtype(module, inputs, output):
    """Forward hook: a Leaky's float32 spikes cast to its input's dtype (exact: 0 and 1)."""
    dt = inputs[0].dtype
    if isinstance(output, tuple):
        return (output[0].to(dt),) + tuple(output[1:])
    return output.to(dt)


_BLOCK_CLASS = {}


def residual_block_class():
    """The residual block :func:`to_snntorch` writes and :func:`from_snntorch` reads (see the
    module docstring): ``ResidualBlock(parts, downsample)`` with ``parts`` a dict of the six
    modules ``conv1, bn1, lif1, conv2, bn2, lif2`` and ``downsample`` a module or None."""
    if not _BLOCK_CLASS:
        torch = import_torch("snntorch")

        class ResidualBlock(torch.nn.Module):
            """Spiking ResNet basic block with snnTorch neurons:
            ``lif2(bn2(conv2(lif1(bn1(conv1(x))))) + downsample(x))``."""

            def __init__(self, parts, downsample=None):
                super().__init__()
                for name in _BLOCK_PARTS:
                    setattr(self, name, parts[name])
                self.downsample = downsample

            def forward(self, x):
                y = self.bn2(self.conv2(self.lif1(self.bn1(self.conv1(x)))))
                return self.lif2(y + (x if self.downsample is None else self.downsample(x)))

        _BLOCK_CLASS["block"] = ResidualBlock
    return _BLOCK_CLASS["block"]


class _Loader(_TorchLoader):
    def __init__(self, fold_bn):
        torch, self.snn = _modules()
        super().__init__(torch, fold_bn)

    def unsupported(self, m):
        name = f"{type(m).__module__}.{type(m).__name__}"
        hint = ("use snn.Leaky (DeltaLeaky, Synaptic, Alpha, ... have no evsnn counterpart here)"
                if isinstance(m, self.snn.SpikingNeuron) else
                "supported: Sequential, Conv2d, BatchNorm2d, AvgPool2d, MaxPool2d, Flatten, "
                "Linear, Identity, Dropout (eval), snn.Leaky, and a residual block with children "
                "conv1, bn1, lif1, conv2, bn2, lif2[, downsample] (module docstring)")
        return ValueError(f"{name} has no evsnn counterpart; {hint}")

    def block(self, m):
        """True when ``m`` is a residual block by its parts (see the module docstring)."""
        if isinstance(m, self.torch.nn.Sequential) or not all(
                isinstance(getattr(m, a, None), self.torch.nn.Module) for a in _BLOCK_PARTS):
            return False
        if not (isinstance(m.lif1, self.snn.Leaky) and isinstance(m.lif2, self.snn.Leaky)):
            return False
        extra = sorted(set(dict(m.named_children())) - set(_BLOCK_PARTS) - {"downsample"})
        if extra:
            raise ValueError(
                f"{type(m).__name__} looks like a residual block (conv1, bn1, lif1, conv2, bn2, "
                f"lif2) but also has {extra}, which the recognised forward does not use; "
                "remove them or write the block as documented in validation.crossval."
                "snntorch_conv"
            )
        return True

    def framework_module(self, m):
        if self.block(m):
            body = self.seq([m.conv1, m.bn1, m.lif1, m.conv2, m.bn2])
            down = getattr(m, "downsample", None)
            short = self.seq([down]) if down is not None else []
            return [Residual(tuple(body), tuple(short), "standard", self.node(m.lif2))]
        if type(m) is self.snn.Leaky:
            return [self.node(m)]
        return None

    def node(self, m):
        def refuse(option, why, fix):
            return ValueError(f"snn.Leaky (neuron layer {len(self.nodes)}) has {option}: {why}; "
                              f"{fix}")

        if not m.init_hidden:
            raise refuse("init_hidden=False", "it returns (spk, mem) and keeps no state, so it "
                         "cannot sit in nn.Sequential", "build it with init_hidden=True")
        if m.inhibition:
            raise refuse("inhibition=True", "only the largest membrane may fire; evsnn has no "
                         "such neuron", "use inhibition=False")
        if m.state_quant:
            raise refuse(f"state_quant={m.state_quant!r}", "a quantised membrane has no evsnn "
                         "counterpart", "use state_quant=False")
        if not m.reset_delay:
            raise refuse("reset_delay=False", "the membrane it stores is the one after reset, "
                         "which the comparison cannot read", "use reset_delay=True (the default)")
        # the update Leaky runs is the state function chosen at construction (setting
        # reset_mechanism later changes the attribute, not the function)
        mech = _STATE_FUNCTIONS.get(getattr(m.state_function, "__name__", None))
        if mech is None:
            raise refuse(f"state_function={m.state_function!r}", "it is not one of snnTorch "
                         "1.0's three updates", "use snn.Leaky as constructed by snnTorch")
        if mech == "none":
            raise refuse("reset_mechanism='none'", "it fires without resetting; evsnn's LIF "
                         "always resets", "use 'zero' (hard reset to 0) or 'subtract'")
        values = {}
        for name in ("beta", "threshold", "graded_spikes_factor"):
            t = getattr(m, name)
            if t.numel() != 1:
                raise refuse(f"{t.numel()} values of {name}", "evsnn's LIF has one per layer",
                             f"give a single {name}")
            values[name] = float(_np(t).ravel()[0])
        if values["graded_spikes_factor"] != 1.0:
            raise refuse(f"graded_spikes_factor={values['graded_spikes_factor']!r}",
                         "graded spikes have no evsnn counterpart", "use 1.0")
        theta = values["threshold"]
        if mech == "subtract" and m.threshold.dtype == self.torch.float64 and not (
                _float32_exact(theta)):
            raise refuse(f"threshold={theta!r} (float64) with reset_mechanism='subtract'",
                         "snnTorch computes reset*threshold in float32 (the reset signal is "
                         "float32), so it subtracts float32(threshold), not threshold",
                         "use a threshold that is a float32 number")
        lam = min(max(values["beta"], 0.0), 1.0)  # Leaky uses beta.clamp(0, 1)
        lif = LIF(lam=lam, theta=theta, reset="hard" if mech == "zero" else "soft")
        where = f"snn.Leaky (neuron layer {len(self.nodes)})"
        _check_lif(lif, where, len(self.nodes), SNNTORCH)
        self.nodes.append(m)
        return Neuron(lif)


def _load(model, fold_bn):
    loader = _Loader(fold_bn)
    layers = loader.module(model)
    for node in loader.nodes:
        if node.output and not (node is loader.nodes[-1] and layers
                                and isinstance(layers[-1], Neuron)):
            raise ValueError(
                "an snn.Leaky with output=True that is not the model's last module returns "
                "(spk, mem) to the next module; use output=False except on the last Leaky"
            )
    return loader, layers


def from_snntorch(model, input_shape, *, fold_bn=False):
    """An evsnn :class:`ConvNetwork` with the weights and structure of a snnTorch model.

    Parameters
    ----------
    model : torch.nn.Module
        A snnTorch 1.0 model built from the modules listed in the module docstring (an
        ``nn.Sequential`` of layers and ``snn.Leaky(init_hidden=True)``, in eval mode when it has
        batch norm or dropout).
    input_shape : tuple of int
        ``(C, H, W)`` of one sample at one step.
    fold_bn : bool
        Fold each ``BatchNorm2d`` into the convolution before it
        (:func:`evsnn.clock.conv.fold_batchnorm`; equal up to rounding: more ties).

    Returns
    -------
    network : ConvNetwork
    convention : Convention
        :data:`SNNTORCH` (spike test ``>``, no input delay, time origin 0).

    Raises
    ------
    ValueError
        A module or a ``Leaky`` option without evsnn counterpart (the message names it and the
        fix).
    """
    _, layers = _load(model, fold_bn)
    return ConvNetwork(tuple(layers), tuple(input_shape)), SNNTORCH


def run_snntorch(model, inputs, *, dtype=np.float64):
    """Run a snnTorch model (a copy, cast to ``dtype``) step by step on ``inputs``
    ``[T, B, C, H, W]`` and read every ``Leaky``'s spikes and membrane before reset.

    Returns
    -------
    FrameworkRun
        Per ``Leaky`` in evsnn's execution order (the order of
        ``from_snntorch(model)[0].neuron_layers()``): ``spikes`` and ``membranes``
        ``[T, B, ...]`` (float64 NumPy arrays of the framework's values), and ``output``, the
        model's output per step (its spikes when the last Leaky has ``output=True``).
    """
    torch, _ = _modules()
    dt = _dtype_iv(dtype)
    tdtype = torch.float64 if dt == np.float64 else torch.float32
    m = copy.deepcopy(model).to(tdtype).eval()
    loader, _ = _load(m, False)
    captured = {id(node): [] for node in loader.nodes}

    def record(mod, inp, out):
        spk = out[0] if isinstance(out, tuple) else out
        captured[id(mod)].append((spk.detach().clone(), mod.mem.detach().clone()))

    handles = []
    for node in loader.nodes:
        node.reset_mem()
        handles.append(node.register_forward_hook(record))
        handles.append(node.register_forward_hook(_spikes_in_input_dtype))
    x = torch.as_tensor(np.asarray(inputs), dtype=tdtype)
    if x.ndim < 3:
        raise ValueError(
            f"inputs must be time-major [T, B, C, H, W] (or [T, B, N]), got shape "
            f"{tuple(x.shape)}; add the time and batch axes"
        )
    outs = []
    try:
        with torch.no_grad():
            for t in range(x.shape[0]):
                out = m(x[t])
                outs.append(out[0] if isinstance(out, tuple) else out)
    finally:
        for h in handles:
            h.remove()
    spikes, membranes = [], []
    for node in loader.nodes:
        S = torch.stack([s for s, _ in captured[id(node)]])
        H = torch.stack([v for _, v in captured[id(node)]])
        if not torch.equal(H > node.threshold, S != 0):
            raise RuntimeError(
                "a Leaky's spikes are not (mem > threshold) for its stored membrane "
                "(snnTorch changed its update?)"
            )
        spikes.append(_np(S))
        membranes.append(_np(H))
    return FrameworkRun(spikes, membranes, _np(torch.stack(outs)))


def compare_snntorch(network, model, inputs, *, convention=SNNTORCH, dtype=np.float64,
                     distance=None):
    """Cross-validate a :class:`ConvNetwork` against the snnTorch model it was loaded from:
    :func:`run_snntorch`, then :func:`validation.crossval.spikingjelly_conv.compare_conv_run`
    (teacher-forced per-layer verdicts; ties vs real mismatches).

    Returns
    -------
    report : CrossvalReport
    free_run : list of int
        Per neuron layer, spikes that differ between a free evsnn run and the framework.
    """
    get_convention(convention)
    dt = _dtype_iv(dtype)
    inputs = np.asarray(inputs, dtype=np.float64)
    run = run_snntorch(model, inputs, dtype=dt)
    return compare_conv_run(network, run, inputs, convention=convention, dtype=dt,
                            distance=distance, backend="snntorch")


class _SnnTorchExporter(_Exporter):
    def __init__(self, dtype, convention, spike_grad):
        torch, self.snn = _modules()
        tdtype = torch.float64 if dtype == np.float64 else torch.float32
        super().__init__(torch, tdtype, convention, torch.nn, "snnTorch")
        self.spike_grad = spike_grad

    def dropout(self, layer, path):
        if layer.shared_over_time:
            raise ValueError(
                f"{path} is a Dropout shared over time: snnTorch steps a torch nn.Dropout, which "
                "draws a fresh mask every step; use Dropout(p, shared_over_time=False)"
            )
        return super().dropout(layer, path)

    def neuron(self, layer, path, index):
        nrn = layer.neuron
        if type(nrn) is not LIF:
            raise ValueError(
                f"{path} is a {type(nrn).__name__} neuron: snnTorch's Leaky has no counterpart "
                "for it in a convolutional model; only evsnn.params.LIF exports"
            )
        if layer.input_scale != 1.0:
            raise ValueError(
                f"{path} has input_scale={layer.input_scale!r}: snnTorch's Leaky charges "
                "beta*mem + input; fold the scale into the weights before it"
            )
        if nrn.v_init != 0.0:
            raise ValueError(
                f"{path} has v_init={nrn.v_init!r}: a Leaky with init_hidden=True starts at 0; "
                "set v_init=0"
            )
        _check_lif(nrn, path, index, self.conv)
        soft = nrn.reset == "soft"
        if soft and self.tdtype == self.torch.float64 and not _float32_exact(nrn.theta):
            raise ValueError(
                f"{path} has a soft reset with theta={nrn.theta!r}, not a float32 number: "
                "snnTorch's 'subtract' computes reset*threshold in float32; use a float32 theta"
            )
        lif = self.snn.Leaky(beta=self.tensor(nrn.lam), threshold=self.tensor(nrn.theta),
                             spike_grad=self.spike_grad, init_hidden=True,
                             reset_mechanism="subtract" if soft else "zero")
        lif.register_forward_hook(_spikes_in_input_dtype)
        return lif

    def residual(self, layer, path):
        if layer.connection != "standard":
            raise ValueError(
                f"{path} is a SEW block (connection={layer.connection!r}): the snnTorch residual "
                "block read by from_snntorch is the standard one; export it with to_spikingjelly"
            )
        parts = self.parts(layer, path, ("conv1", "bn1", "lif1", "conv2", "bn2"), False)
        short = self.layers(layer.shortcut, path + ".shortcut")
        parts["lif2"] = self.layer(layer.neuron, path + ".neuron")
        return residual_block_class()(parts, self.torch.nn.Sequential(*short) if short else None)


def to_snntorch(network, *, dtype=np.float64, convention=SNNTORCH, spike_grad=None):
    """A snnTorch 1.0 model with the weights and neurons of an evsnn :class:`ConvNetwork` (the
    inverse of :func:`from_snntorch`).

    Parameters
    ----------
    network : ConvNetwork
    dtype : numpy.float64 or numpy.float32
        The model's dtype (float64: :func:`from_snntorch` reads every number back exactly).
    convention : Convention or str
        The semantics ``network`` is run with: snnTorch fires on ``mem > θ`` with the input in
        the same step, so ``spike_test=">"`` and ``input_delay=0`` (:data:`SNNTORCH`).
    spike_grad : snnTorch surrogate, optional
        Passed to every ``Leaky`` (forward unaffected; default: snnTorch's ``atan``).

    Returns
    -------
    torch.nn.Sequential
        In eval mode, called once per step on ``[B, C, H, W]`` (see :func:`run_snntorch`):
        ``nn.Conv2d``, ``nn.BatchNorm2d``, ``nn.AvgPool2d``, ``nn.MaxPool2d``, ``nn.Flatten``,
        ``nn.Linear``; each :class:`Neuron` an ``snn.Leaky(beta=λ, threshold=θ,
        init_hidden=True)`` with ``reset_mechanism="zero"`` (hard reset) or ``"subtract"``
        (soft, λ = 1), whose spikes a forward hook casts to the model's dtype; standard residual
        blocks :func:`residual_block_class` (body ``conv1, [bn1], neuron, conv2, [bn2]``).

    Raises
    ------
    ValueError
        What snnTorch cannot express, named: a convention with ``spike_test=">="`` or
        ``input_delay=1``; a DLIF, TraceLIF or Readout neuron; ``input_scale ≠ 1``;
        ``v_init ≠ 0``; a hard reset to ``v_rest ≠ 0``; a soft reset with λ < 1 (or, in
        float64, a θ that is not a float32 number); a SEW block; a residual body that is not a
        basic block; an :class:`~evsnn.clock.conv.InputTrace`.

    Notes
    -----
    The hard reset charges exactly as evsnn (``β·((1 − r)·mem) + I``); the soft reset at λ = 1
    adds the current and subtracts θ in the other order than evsnn (``(m + I) − θ`` vs
    ``(m − θ) + I``), and torch's convolutions sum in another order: spikes can differ where a
    membrane is within rounding of θ (ties).
    """
    if not isinstance(network, ConvNetwork):
        raise TypeError(f"network must be an evsnn ConvNetwork, got {type(network).__name__}")
    conv = get_convention(convention)
    if conv.spike_test != SnnTorchBackend.spike_test or conv.input_delay != 0:
        raise ValueError(
            f"convention {conv.name!r} has spike_test={conv.spike_test!r}, "
            f"input_delay={conv.input_delay!r}: snnTorch fires on mem > threshold with the "
            "input in the same step; use spike_test='>' and input_delay=0 (SNNTORCH)"
        )
    ex = _SnnTorchExporter(_dtype_iv(dtype), conv, spike_grad)
    return ex.finish(ex.layers(network.layers, "layers"))
