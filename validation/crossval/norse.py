"""Norse (version 1.1) beside evsnn.

The framework model is built from the evsnn network's own weights: a ``torch.nn.Linear`` per
layer followed by a Norse feed-forward cell (``LIFBoxCell``, ``IAFCell``, ``LIBoxCell``) stepped
over time with explicit states, and compared layer by layer by
:func:`validation.crossval.compare`.

Parameter mapping (read from norse 1.1.0: ``torch/functional/lif_box.py``, ``iaf.py``,
``leaky_integrator_box.py``, ``reset.py``, ``threshold.py``, ``heaviside.py``)
----------------------------------------------------------------------------------------
* **Decay and input scaling.** ``LIFBoxCell`` (a LIF without a synaptic current) integrates
  ``v ← v + Δt·τ⁻¹·(x + v_leak − v)``: the Euler form with the input scaled by Δt/τ (what
  SpikingJelly calls ``decay_input=True``). With ``Δt = 1``, ``τ⁻¹ = 1 − λ`` and ``v_leak = 0``
  this is ``λ v + (1 − λ) x``, so the layer's current enters divided by ``1 − λ``
  (``x = I/(1 − λ)``, a fixed scaling between the ``Linear`` and the cell; the weights stay
  evsnn's): evsnn's ``m = λ v + I`` up to rounding (ties). Norse's current-based ``LIFCell``
  adds the input to a synaptic current that reaches the membrane in the same Euler step with the
  same Δt/τ scaling; ``LIFBoxCell`` is the direct form. λ = 1 has no ``LIFBox`` form (τ⁻¹ = 0
  cuts the input too) and uses ``IAFCell``: ``v ← v + x``, bit-identical to ``1·v + I``.
* **Reset.** ``LIFBoxParameters.reset_method``: ``reset_value``, ``(1 − z) v + z v_reset``
  (evsnn ``reset="hard"``, any ``v_rest``: Norse leaks towards ``v_leak = 0`` and resets to
  ``v_reset`` separately, as evsnn does), or ``reset_subtract``, ``(1 − z) v + z (v − θ)``
  (``reset="soft"``), both at the end of the same step. ``IAFCell`` has only the reset to a
  value, so an IF neuron with reset by subtraction (``evsnn.params.IF``) raises ``ValueError``.
* **Threshold test.** ``z = threshold(v − θ, method, α)``; every method's forward is
  ``heaviside(x) = (x > 0)`` (``heaviside.py``): Norse fires on ``>``; a convention with
  ``spike_test=">="`` raises ``ValueError``.
* **Initial state.** The first state is ``v = v_init``, passed explicitly.
* **Trace** (:class:`evsnn.params.TraceLIF`): the neuron is a ``LIFBoxCell`` with
  ``τ⁻¹ = Δt/τm`` and ``v_reset = u0``; the trace is Norse's box leaky integrator
  ``LIBoxCell`` (``v + Δt·τ⁻¹·((v_leak − v) + s)``) with ``τ⁻¹ = Δt/τs``, ``v_leak = 0``, fed the
  spikes: ``a + c·(s − a)``, bit-identical to evsnn's trace.
* **Readout** (:class:`evsnn.params.Readout`): λ < 1, ``LIBoxCell`` (input divided by 1 − λ as
  above); λ = 1, ``IAFCell`` with ``v_th = +inf`` (never fires, never resets). The cell's state
  ``v`` is the output.

Membrane before reset: ``LIFBoxCell`` passes the integrated membrane to its ``reset_method``;
the adapter gives it a recording wrapper around Norse's ``reset_value`` / ``reset_subtract``, so
the membrane is Norse's own value. ``IAFCell`` resets inline: its membrane is recomputed as
``v[t−1] + x[t]``, the single addition ``iaf_feed_forward_step`` performs, and checked against
the cell's spikes (``z == (m > θ)`` everywhere, else RuntimeError).

Surrogates (``gradients``)
--------------------------
* ``method="triangle"``: ``α·relu(1 − |x|)``; with ``α = 1`` this is evsnn ``Triangle(gamma=1)``
  (other γ have no Norse form: the width is fixed to 1).
* ``method="tanh"``: ``1 − tanh²(k x)``. Since ``ρ σ'(ρx) = (ρ/4)(1 − tanh²(ρx/2))``, this is
  evsnn ``Sigmoid(rho=4, scale="code")`` with ``k = 2`` and no other ρ.
* Norse has no sigmoid; ``super`` (SuperSpike), ``circ`` and ``heavi_erfc`` have no evsnn
  counterpart. The reset is not detached, as in evsnn's ``bptt`` default. Norse keeps the
  model's dtype throughout (``heaviside`` returns ``x``'s dtype).

Norse 1.1 decorates functions with ``torch.jit.script``, which torch 2.13 deprecates: its
import emits ``DeprecationWarning`` s, which the adapter silences around the import only.

Examples
--------
>>> NorseBackend.spike_test
'>'
"""

from __future__ import annotations

import warnings

import numpy as np

from evsnn.grad.surrogates import Sigmoid, Triangle
from evsnn.params import Readout
from validation.crossval.backends import INSTALL_HINT, TorchBackend, import_torch

__all__ = ["NorseBackend", "import_norse"]


def import_norse():
    """``norse.torch`` imported with its ``torch.jit.script`` DeprecationWarnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import norse.torch
    return norse.torch


class NorseBackend(TorchBackend):
    """Norse 1.1 adapter (see the module docstring for the mapping).

    Use ``NorseBackend.make(dtype=np.float64)``; ``neuron_overrides`` (testing only) replaces
    fields of every ``LIFBoxParameters`` / ``IAFParameters`` built (e.g.
    ``{"reset_method": norse.torch.functional.reset.reset_subtract}``).
    """

    name = "norse"
    spike_test = ">"

    def _import(self):
        torch = import_torch("norse")
        try:
            nt = import_norse()
            from norse.torch.functional import reset
        except ImportError as exc:
            raise ImportError(f"the norse crossval backend needs norse 1.1 ({exc}); "
                              f"{INSTALL_HINT}") from exc
        return {"torch": torch, "norse": nt, "reset": reset}

    def _check_neuron(self, li, neuron, conv):
        if isinstance(neuron, Readout):
            return
        args = neuron.kernel_args()
        if args.lam == 1.0 and not args.hard_reset:
            raise ValueError(
                f"layers[{li}] is an IF neuron with reset by subtraction: Norse's IAFCell only "
                "resets to a value and LIFBoxCell needs a leak (lam < 1)"
            )

    def _surrogate(self, surrogate):
        if surrogate is None:
            return ("heaviside", 0.0)
        if isinstance(surrogate, Triangle) and surrogate.gamma == 1.0:
            return ("triangle", 1.0)
        if isinstance(surrogate, Sigmoid) and surrogate.scale == "code" and surrogate.rho == 4.0:
            return ("tanh", 2.0)
        raise NotImplementedError(
            f"Norse has no surrogate equal to evsnn's {surrogate!r}; it has Triangle(gamma=1) "
            "(method='triangle', alpha=1) and Sigmoid(rho=4, scale='code') (method='tanh', "
            "alpha=2)"
        )

    def _t(self, value):
        return self.torch.tensor(value, dtype=self.tdtype)

    def _step_cell(self, cell, x_seq, v0, state_cls):
        state = state_cls(v=v0)
        outs, vs = [], []
        for x in x_seq:
            z, state = cell(x, state)
            outs.append(z)
            vs.append(state.v)
        return self.torch.stack(outs), self.torch.stack(vs)

    def _neuron_forward(self, li, neuron, current, surrogate):
        torch = self.torch
        nt = self._mods["norse"]
        method, alpha = surrogate
        args = neuron.kernel_args()
        v0 = torch.full(current.shape[1:], args.v_init, dtype=self.tdtype)
        lam = args.lam
        if isinstance(neuron, Readout):
            if lam < 1.0:
                k = self._t(1.0 - lam)
                cell = nt.LIBoxCell(nt.LIBoxParameters(tau_mem_inv=k, v_leak=self._t(0.0)),
                                    dt=1.0)
                _, v = self._step_cell(cell, current / k, v0, nt.LIBoxState)
            else:
                p = nt.IAFParameters(v_th=self._t(np.inf), v_reset=self._t(0.0),
                                     method=method, alpha=alpha)
                _, v = self._step_cell(nt.IAFCell(p, dt=1.0), current, v0,
                                       nt.IAFFeedForwardState)
            return None, v
        if lam == 1.0:
            fields = dict(v_th=self._t(args.theta), v_reset=self._t(args.v_rest),
                          method=method, alpha=alpha)
            fields.update(self.neuron_overrides)
            z, v = self._step_cell(nt.IAFCell(nt.IAFParameters(**fields), dt=1.0), current, v0,
                                   nt.IAFFeedForwardState)
            v_prev = torch.cat([v0[None], v[:-1]])
            m = v_prev + current
            if not torch.equal(m > fields["v_th"], z.detach() != 0):
                raise RuntimeError(
                    f"layer {li}: v[t-1] + x[t] does not reproduce Norse's IAF spikes (Norse "
                    "changed its IAF update?)"
                )
            return z, m
        reset = self._mods["reset"]
        k = self._t(1.0 - lam)
        fields = dict(tau_mem_inv=k, v_leak=self._t(0.0), v_th=self._t(args.theta),
                      v_reset=self._t(args.v_rest if args.hard_reset else 0.0), method=method,
                      alpha=alpha,
                      reset_method=reset.reset_value if args.hard_reset else reset.reset_subtract)
        fields.update(self.neuron_overrides)
        recorded = []
        inner = fields["reset_method"]

        def recording_reset(z, v, v_reset, v_th):
            recorded.append(v)  # the integrated membrane, before reset
            return inner(z, v, v_reset, v_th)

        fields["reset_method"] = recording_reset
        cell = nt.LIFBoxCell(nt.LIFBoxParameters(**fields), dt=1.0)
        z, _ = self._step_cell(cell, current / k, v0, nt.LIFBoxFeedForwardState)
        return z, torch.stack(recorded)

    def _trace(self, li, spikes, coef):
        nt = self._mods["norse"]
        cell = nt.LIBoxCell(nt.LIBoxParameters(tau_mem_inv=self._t(coef), v_leak=self._t(0.0)),
                            dt=1.0)
        _, a = self._step_cell(cell, spikes, self.torch.zeros_like(spikes[0]), nt.LIBoxState)
        return a
