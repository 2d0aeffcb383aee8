"""snnTorch (version 1.0) beside evsnn.

The framework model is built from the evsnn network's own weights: a ``torch.nn.Linear`` per
layer followed by ``snntorch.Leaky``, stepped in a Python loop over time (snnTorch's idiom), and
compared layer by layer by :func:`validation.crossval.compare`.

Parameter mapping (read from snntorch 1.0.0: ``_neurons/leaky.py``, ``_neurons/neurons.py``,
``surrogate.py``)
-------------------------------------------------------------------------------------------
* **Decay.** ``Leaky`` charges ``mem = β.clamp(0, 1)·mem + input`` (``_base_state_function``):
  evsnn's ``m = λ v + I`` with ``β = λ`` and the input unscaled; the same two operations, so the
  charge is bit-identical given the same current. β and θ are passed as tensors of the model's
  dtype (a Python float would become a float32 buffer: ``β = float32(0.9)`` in a float64 model).
* **Reset timing.** With the default ``reset_delay=True`` the membrane ``Leaky`` stores and
  returns is the one *before* reset; at the next call it first computes
  ``reset = H(mem − θ)`` (detached, ``mem_reset``) and applies the reset of step t − 1 at step
  t, before charging. For ``reset_mechanism="zero"`` this is ``mem = β·(1 − reset)·mem + I``:
  exactly evsnn's hard reset to ``v_rest = 0`` at the end of step t − 1. For
  ``reset_mechanism="subtract"`` it is ``mem = β·mem + I − reset·θ``: θ is subtracted *after*
  the leak, while evsnn's soft reset ``v = m − θ`` is leaked with the rest
  (``m = λ(m − θ) + I``). The two agree only for λ = 1 (IF, up to the order of the two
  additions); a soft reset with λ < 1 raises ``ValueError``. snnTorch computes ``reset·θ`` in
  float32 (its reset signal is float32) even in a float64 model, so it subtracts float32(θ): in a
  float64 comparison a soft reset needs a θ that is a float32 number (``ValueError`` otherwise).
  A hard reset to ``v_rest ≠ 0`` has no snnTorch form (``"zero"`` only) and raises
  ``ValueError``. ``reset_delay=False`` (reset in the
  same call, ``spk − reset`` to avoid a double reset) is not used.
* **Threshold test.** Every snnTorch surrogate's forward is ``(x > 0).float()`` with
  ``x = mem − θ``: snnTorch fires on ``>``; a convention with ``spike_test=">="`` raises
  ``ValueError``.
* **Initial state.** ``mem`` is passed as ``v_init`` at the first call. Because that value is
  taken as a pre-reset membrane, ``v_init`` above θ would be reset at once: that raises
  ``ValueError``.
* **Trace** (:class:`evsnn.params.TraceLIF`): ``Leaky`` with ``β = 1 − Δt/τm`` and
  ``reset_mechanism="zero"`` (``u0 = 0`` required); snnTorch's ``Synaptic`` filters the *input*
  current, not the output spikes, so the trace ``a + c(s − a)`` is written with torch operations.
* **Readout** (:class:`evsnn.params.Readout`): ``Leaky(reset_mechanism="none")``; its membrane
  is the output.

Membranes before reset are the ``mem`` that ``Leaky`` returns (no recomputation).

Surrogates (``gradients``)
--------------------------
* ``surrogate.sigmoid(slope)`` has the backward ``k e^{−kx}/(e^{−kx} + 1)²`` = ``k σ'(kx)``:
  evsnn ``Sigmoid(rho=k, scale="code")``. snnTorch's ``triangular`` is a ±threshold step, not
  evsnn's triangle; there is no match for ``Triangle`` nor for ``Sigmoid(scale="paper")``.
* snnTorch detaches the reset (``mem_reset`` returns ``...clone().detach()``): compare with
  evsnn's ``bptt(detach_reset=True)`` (``SnnTorchBackend.detach_reset`` is True).
* Every snnTorch surrogate returns float32 spikes (``(x > 0).float()``), so in a float64 model
  the gradient reaching each spike, ``dL/ds``, is rounded to float32 inside snnTorch's backward,
  and ``Sigmoid.backward`` multiplies it by the slope in float32 before the float64 factor
  ``e^{−kx}/(e^{−kx} + 1)²``: float64 gradients agree with evsnn to about 1e-7 relative, not to
  float64 precision (exactly only when those products are exact, e.g. one layer, a float32
  ``g_output`` and a power-of-two slope). The adapter casts the spikes back to the model's dtype
  so that the next layer runs in it.
* In float32, ``e^{−kx}`` overflows for ``kx < −88`` (membranes far below θ, e.g.
  ``m − θ < −17.6`` at slope 5) and the backward returns ``inf/inf = NaN``; float64 overflows
  only below ``kx < −709``.

Examples
--------
>>> SnnTorchBackend.spike_test, SnnTorchBackend.detach_reset
('>', True)
"""

from __future__ import annotations

import numpy as np

from evsnn.grad.surrogates import Sigmoid
from evsnn.params import Readout
from validation.crossval.backends import INSTALL_HINT, TorchBackend, import_torch


def _float32_exact(x):
    """Whether the float ``x`` is a float32 number (snnTorch subtracts float32(θ))."""
    return float(np.float32(x)) == x

__all__ = ["SnnTorchBackend"]


class SnnTorchBackend(TorchBackend):
    """snnTorch 1.0 adapter (see the module docstring for the mapping).

    Use ``SnnTorchBackend.make(dtype=np.float64)``; ``neuron_overrides`` (testing only)
    replaces keyword arguments of every ``snntorch.Leaky`` built (e.g.
    ``{"reset_mechanism": "subtract"}``).
    """

    name = "snntorch"
    spike_test = ">"
    detach_reset = True

    def _import(self):
        torch = import_torch("snntorch")
        try:
            import snntorch
            from snntorch import surrogate
        except ImportError as exc:
            raise ImportError(f"the snntorch crossval backend needs snntorch 1.0 ({exc}); "
                              f"{INSTALL_HINT}") from exc
        return {"torch": torch, "snntorch": snntorch, "surrogate": surrogate}

    def _check_neuron(self, li, neuron, conv):
        if isinstance(neuron, Readout):
            return
        args = neuron.kernel_args()
        if args.hard_reset and args.v_rest != 0.0:
            raise ValueError(
                f"layers[{li}] resets to v_rest={args.v_rest!r}: snnTorch's Leaky resets to zero "
                "('zero') or subtracts theta ('subtract'); only v_rest=0 maps"
            )
        if not args.hard_reset and args.lam != 1.0:
            raise ValueError(
                f"layers[{li}] has a soft reset with lam={args.lam!r}: snnTorch's 'subtract' "
                "removes theta after the leak (beta*mem + I - theta), evsnn before it "
                "(lam*(m - theta) + I); they agree only for lam=1"
            )
        theta = float(args.theta)
        # the dtype is unknown to the torch-free pre-check (check_network, the conv loader's
        # neuron check): then the run's own check decides
        dtype = getattr(self, "dtype", None)
        if (not args.hard_reset and dtype is not None and np.dtype(dtype) == np.float64
                and not _float32_exact(theta)):
            # as the conv loader refuses it: a float64 model still subtracts float32(theta)
            raise ValueError(
                f"layers[{li}] has a soft reset with theta={theta!r} in a float64 comparison: "
                "snnTorch multiplies its float32 reset signal by theta in float32, so it "
                "subtracts float32(theta), not theta; use a theta that is a float32 number "
                "(e.g. 1.0 or 1.25) or dtype=numpy.float32"
            )
        if args.v_init > args.theta:
            raise ValueError(
                f"layers[{li}] has v_init={args.v_init!r} > theta={args.theta!r}: snnTorch "
                "takes the initial mem as a pre-reset membrane and would reset it at once"
            )

    def _surrogate(self, surrogate):
        sur = self._mods["surrogate"]
        if surrogate is None:
            return sur.sigmoid()  # forward (x > 0) whatever the surrogate
        if isinstance(surrogate, Sigmoid) and surrogate.scale == "code":
            return sur.sigmoid(slope=surrogate.rho)
        raise NotImplementedError(
            f"snnTorch has no surrogate equal to evsnn's {surrogate!r} (its sigmoid(slope) is "
            "evsnn Sigmoid(rho=slope, scale='code'))"
        )

    def _neuron_forward(self, li, neuron, current, surrogate):
        torch = self.torch
        args = neuron.kernel_args()
        if isinstance(neuron, Readout):
            mechanism = "none"
        else:
            mechanism = "zero" if args.hard_reset else "subtract"
        kw = dict(beta=torch.tensor(args.lam, dtype=self.tdtype),
                  threshold=torch.tensor(args.theta, dtype=self.tdtype),
                  spike_grad=surrogate, reset_mechanism=mechanism)
        kw.update(self.neuron_overrides)
        lif = self._mods["snntorch"].Leaky(**kw)
        mem = torch.full(current.shape[1:], args.v_init, dtype=self.tdtype)
        spikes, ms = [], []
        for t in range(current.shape[0]):
            spk, mem = lif(current[t], mem)
            spikes.append(spk.to(self.tdtype))
            ms.append(mem)
        m = torch.stack(ms)
        if isinstance(neuron, Readout):
            return None, m
        return torch.stack(spikes), m
