"""SpikingJelly (``spikingjelly.activation_based``, version 2.0) beside evsnn.

The framework model is built from the evsnn network's own weights, runs in multi-step mode
(``step_mode="m"``, the ``[T, B, N]`` layout evsnn uses) on SpikingJelly's production nodes
``IFNode`` / ``LIFNode``, and is compared layer by layer by :func:`validation.crossval.compare`.

Parameter mapping (read from spikingjelly 2.0.0: ``activation_based/neuron/lif.py``,
``neuron/integrate_and_fire.py``, ``_ops/lif/reference.py``, ``_ops/lif/cpu.py``,
``_ops/reset.py``, ``surrogate.py``)
------------------------------------------------------------------------------------------
* **Decay.** ``LIFNode(decay_input=False)`` charges ``H = V − (V − V_reset)/τ + X``. With the
  leak towards 0 that evsnn's λ-LIF has (``m = λ v + I``, HART Eq. 1), this is
  ``τ = 1/(1 − λ)`` and ``V_reset = 0`` (hard) or ``None`` (soft, where SpikingJelly charges
  towards 0). ``V − V/τ`` is not bit-identical to ``λ·V``: membranes agree to a few ulps and
  spikes up to ties. λ = 1 uses ``IFNode`` (``H = V + X``, bit-identical to ``1·v + I``); λ = 0
  has no ``LIFNode`` (it asserts ``τ > 1``) and raises ``ValueError``.
* **Input scaling.** ``decay_input=True`` (SpikingJelly's default) would charge
  ``V + (X − (V − V_reset))/τ``, i.e. scale the input by 1 − λ: evsnn adds the input unscaled, so
  ``decay_input=False`` is the matching configuration.
* **Reset.** ``v_reset=float`` is the hard reset ``V = S·V_reset + (1 − S)·H`` (evsnn
  ``reset="hard"``, ``v_rest = V_reset``); ``v_reset=None`` the soft reset ``V = H − S·θ``
  (``reset="soft"``). Both act at the end of the same step, as in evsnn. Because ``LIFNode``
  charges towards ``V_reset`` while evsnn leaks towards 0, a hard reset to ``v_rest ≠ 0`` with
  λ < 1 is a different model and raises ``ValueError`` (with λ = 1 there is no leak and any
  ``v_rest`` maps).
* **Threshold test.** ``S = heaviside(H − θ)`` with ``heaviside(x) = (x >= 0)`` (and
  ``H >= θ`` in the float32 CPU kernel): SpikingJelly fires on ``>=``; a convention with
  ``spike_test=">"`` raises ``ValueError``.
* **Initial state.** The node's ``v`` memory is set to ``v_init`` before the run.
* **Trace** (:class:`evsnn.params.TraceLIF`): ``LIFNode`` with ``τ = τm/Δt``, hard reset to
  ``u0`` (0 required when λ < 1, see above); SpikingJelly's ``SynapseFilter`` computes
  ``I − (1 − S) I/τ + S``, not ``a + c(s − a)``, so the trace is written with torch operations.
* **Readout** (:class:`evsnn.params.Readout`): ``IFNode`` / ``LIFNode`` with
  ``v_threshold = +inf`` (never fires, never resets); the recorded membrane is the output.
  SpikingJelly's ``NonSpikingLIFNode`` charges ``V + (X − V)/τ`` (input scaled by 1/τ) and has no
  λ = 1 form, so it is not used.

Membrane before reset: the node runs with ``store_v_seq=True`` and reports ``V`` after each
reset; ``H[t]`` is recomputed from ``V[t−1]`` with SpikingJelly's own charge function
(``functional.lif_charge``, the expression both its reference and its CPU kernel evaluate;
``V + X`` for ``IFNode``), and every recomputed ``H`` is checked against the node's spikes
(``S == (H >= θ)`` everywhere, else RuntimeError).

Float32 and float64: float64 runs SpikingJelly's Torch reference path (autograd through the
surrogate); float32 runs its CPU kernel with the hand-written backward (``_ops/lif/cpu.py``).

Surrogates (``gradients``)
--------------------------
* ``surrogate.Sigmoid(alpha)`` has the backward ``α·σ(αx)(1 − σ(αx))`` (``sigmoid_backward``):
  evsnn ``Sigmoid(rho=α, scale="code")``. The paper scale (no factor ρ) has no SpikingJelly
  counterpart.
* ``surrogate.PiecewiseQuadratic(alpha)`` has the backward ``α − α²|x|`` for ``|x| ≤ 1/α``:
  evsnn ``Triangle(gamma)`` with ``α = 1/γ`` (``(γ − |x|)/γ²``).
* The reset is not detached (``detach_reset=False``), as in evsnn's ``bptt`` default.

Examples
--------
>>> SpikingJellyBackend.spike_test
'>='
"""

from __future__ import annotations

import math

from evsnn.grad.surrogates import Sigmoid, Triangle
from evsnn.params import Readout
from validation.crossval.backends import INSTALL_HINT, TorchBackend, import_torch

__all__ = ["SpikingJellyBackend"]


class SpikingJellyBackend(TorchBackend):
    """SpikingJelly 2.0 adapter (see the module docstring for the mapping).

    Use ``SpikingJellyBackend.make(dtype=np.float64)``; ``neuron_overrides`` (testing only)
    replaces keyword arguments of every ``IFNode`` / ``LIFNode`` built (e.g.
    ``{"decay_input": True}``).
    """

    name = "spikingjelly"
    spike_test = ">="

    def _import(self):
        torch = import_torch("spikingjelly")
        try:
            from spikingjelly.activation_based import functional, layer, neuron, surrogate
        except ImportError as exc:
            raise ImportError(f"the spikingjelly crossval backend needs spikingjelly 2.0 "
                              f"({exc}); {INSTALL_HINT}") from exc
        return {"torch": torch, "functional": functional, "layer": layer, "neuron": neuron,
                "surrogate": surrogate}

    def _check_neuron(self, li, neuron, conv):
        lam = neuron.lam
        if lam == 0.0:  # a memoryless Readout(lam=0) too: it crashed in LIFNode's assert
            raise ValueError(
                f"layers[{li}] has lam=0: SpikingJelly's LIFNode needs tau = 1/(1 - lam) > 1; "
                "compare this network with the norse or snntorch backend"
            )
        if isinstance(neuron, Readout):
            return
        v_reset = neuron.kernel_args().v_rest
        hard = neuron.kernel_args().hard_reset
        if hard and lam < 1.0 and v_reset != 0.0:
            raise ValueError(
                f"layers[{li}] resets to v_rest={v_reset!r} with lam={lam!r}: SpikingJelly's "
                "LIFNode leaks towards v_reset, evsnn towards 0; only v_rest=0 (or lam=1) maps"
            )

    def _surrogate(self, surrogate):
        sj = self._mods["surrogate"]
        if surrogate is None:
            return sj.Sigmoid()  # forward is heaviside whatever the surrogate
        if isinstance(surrogate, Sigmoid):
            if surrogate.scale != "code":
                raise NotImplementedError(
                    "no SpikingJelly surrogate equals evsnn's Sigmoid(scale='paper') (no factor "
                    "rho); its Sigmoid(alpha) is alpha*sigma'(alpha x), evsnn's scale='code'"
                )
            return sj.Sigmoid(alpha=surrogate.rho)
        if isinstance(surrogate, Triangle):
            return sj.PiecewiseQuadratic(alpha=1.0 / surrogate.gamma)
        raise NotImplementedError(f"no SpikingJelly surrogate for {surrogate!r}")

    def _linear(self, layer):
        lin = self._mods["layer"].Linear(layer.n_in, layer.n_out, bias=layer.bias is not None,
                                         step_mode="m").to(self.tdtype)
        self._load_linear(lin, layer)
        return lin

    def _node(self, neuron, surrogate):
        nmod = self._mods["neuron"]
        args = neuron.kernel_args()
        lam = args.lam
        if isinstance(neuron, Readout):
            theta, v_reset = math.inf, 0.0
        else:
            theta = float(args.theta)
            v_reset = float(args.v_rest) if args.hard_reset else None
        kw = dict(v_threshold=theta, v_reset=v_reset, surrogate_function=surrogate,
                  detach_reset=False, step_mode="m", store_v_seq=True)
        if lam == 1.0:
            kw.update(self.neuron_overrides)
            if "tau" in kw:
                return nmod.LIFNode(**kw), True
            return nmod.IFNode(**kw), False
        kw.update(tau=1.0 / (1.0 - lam), decay_input=False)
        kw.update(self.neuron_overrides)
        return nmod.LIFNode(**kw), True

    def _neuron_forward(self, li, neuron, current, surrogate):
        torch = self.torch
        functional = self._mods["functional"]
        node, leaky = self._node(neuron, surrogate)
        v0 = torch.full(current.shape[1:], neuron.kernel_args().v_init, dtype=self.tdtype)
        node.v = v0
        spikes = node(current)
        v_after = node.v_seq  # V after each step's reset
        v_prev = torch.cat([v0[None], v_after[:-1]])
        if leaky:
            m = functional.lif_charge(current, v_prev, node.tau, node.decay_input, node.v_reset)
        else:
            m = v_prev + current
        fired = m >= node.v_threshold
        if not torch.equal(fired, spikes.detach() != 0):
            raise RuntimeError(
                f"layer {li}: the membrane recomputed with SpikingJelly's charge function does "
                "not reproduce the node's spikes (SpikingJelly changed its LIF update?)"
            )
        if isinstance(neuron, Readout):
            return None, v_after  # never reset: V after the step is the membrane
        return spikes, m
