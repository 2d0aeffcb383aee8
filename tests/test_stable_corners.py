"""Corners of Stable's training framework (Ding et al., ICML 2024, §3.4, Eq. 11, 14, 16-18):
``evsnn.grad.stable_loss_and_grad``, ``evsnn.grad.losses.stable_loss`` and
``evsnn.train.fit_stable``, beyond what ``test_stable.py`` draws.

Oracles: the reverse-mode tape (``tests/reference/tape.py``, ``stable_gradients``) for every
neuron kind (trace-LIF and IF too, mixed), every gradient method that applies and the ttfs
decoder; central differences of the MS-MPPD term, a polynomial in W^L, a^L and — for L the
first layer on current coding — the image; the affine structure of Eq. 17 in χ and ρ (backward
is linear in its upstream gradient); exact invariances (x~ == x); the encoders' draws replayed
by hand; and ``fit_stable`` against a loop written out over ``stable_loss_and_grad``.
"""

import numpy as np
import pytest
from conftest import RTOL_FINITE_DIFF, RTOL_TAPE
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reference import tape as tp
from reference.helpers import (
    assert_tape, central_differences, example_count, tape_surrogate, tempbp_options,
)
from test_grad_vs_tape import cases

from evsnn.clock import Dense, Network, simulate
from evsnn.conventions import get_convention
from evsnn.encoders import encode
from evsnn.grad import Sigmoid, Triangle, loss_and_grad, stable_loss_and_grad
from evsnn.grad.losses import stable_loss
from evsnn.params import DLIF, IF, LIF, Readout, TraceLIF

ALL_KINDS = ("lif_hard", "lif_soft", "if", "trace_trace", "trace_spike", "dlif")
PRESETS = ["DEFAULT", "STABLE_PAPER", "STABLE_CODE", "HART_CODE", "DING2025_PAPER"]


def _spiking(net):
    return any(layer.spiking for layer in net.layers)


def _no_near_ties(net, seq, conv):
    for layer, rec in zip(net.layers, simulate(net, seq, convention=conv, record=True).layers):
        if rec.spikes is not None:
            assume(np.all(np.abs(rec.m - layer.neuron.theta) > 1e-9))


def _perturbed(seq, rng):
    """A perturbed sequence that stays dyadic (spikes flipped, values mirrored)."""
    return np.where(rng.random(seq.shape) < 0.3, 1.0 - seq, seq)


def _assert_grads(got, ref, what=""):
    assert_tape(got.grads.input, ref["input"], f"{what} dL/dinput")
    for k in range(len(ref["weights"])):
        assert_tape(got.grads.weights[k], ref["weights"][k], f"{what} dL/dW[{k}]")
        if ref["biases"][k] is not None:
            assert_tape(got.grads.biases[k], ref["biases"][k], f"{what} dL/db[{k}]")
        if ref["dlif_factors"][k] is not None:
            assert_tape(got.grads.dlif_factors[k], ref["dlif_factors"][k], f"{what} dL/da[{k}]")


def _grad_arrays(r):
    """Every gradient array of a StableLossGrad, flattened into one list (None skipped)."""
    g = r.grads
    out = [g.input]
    for field in ("weights", "biases", "dlif_factors"):
        out += [a for a in getattr(g, field) if a is not None]
    return out


# --------------------------------------------------------------------------- against the tape
@settings(max_examples=example_count(50))
@given(cases(kinds=ALL_KINDS, T=(1, 6)), st.sampled_from(["bptt", "hart", "rga", "bptr", "rate"]),
       st.sampled_from(["rate", "membrane", "ttfs"]), st.sampled_from(["sum", "mean"]),
       st.sampled_from([0.0, 0.3, 1.0]), st.sampled_from([0.0, 1.0, 1e6]))
def test_every_kind_and_method_equals_tape(case, method, decoder, reduction, chi, rho):
    """Trace-LIF (spike or trace output), IF, LIF and DLIF layers mixed, any convention (input
    delay 0 / 1, either DLIF placement, either spike test), every surrogate / rate method:
    the composed gradient of Eq. 17 equals the tape's reverse mode of the whole expression
    under the same method (the method applied to one loss, not a sum of pieces)."""
    net, seq, conv, rng = case["net"], case["seq"], case["conv"], case["rng"]
    assume(_spiking(net))
    if decoder == "ttfs" and not net.layers[-1].spiking:
        decoder = "membrane"
    if decoder == "membrane" and net.layers[-1].spiking:
        decoder = "rate"
    seq_t = _perturbed(seq, rng)
    labels = rng.integers(0, net.n_out, seq.shape[1])
    if not case["dyadic"]:
        _no_near_ties(net, seq, conv)
        _no_near_ties(net, seq_t, conv)
    opts = {}
    if method in ("bptt", "hart"):
        opts["surrogate"] = ("triangle", 1.0)  # Stable's default, Eq. 18
    got = stable_loss_and_grad(net, seq, seq_t, labels, encoder=None, decoder=decoder,
                               method=method, convention=conv, chi=chi, rho=rho,
                               reduction=reduction)
    loss, ms, ref = tp.stable_gradients(net, seq, seq_t, labels, conv, chi=chi, rho=rho,
                                        reduction=reduction, decoder=decoder, mode=method, **opts)
    assert got.ms_mppd == pytest.approx(ms, rel=1e-12, abs=1e-14)
    assert got.loss == pytest.approx(loss, rel=1e-12, abs=1e-14)
    _assert_grads(got, ref, f"{method}/{decoder}")


@settings(max_examples=example_count(20))
@given(cases(kinds=("trace_trace", "trace_spike"), T=(1, 6)), tempbp_options(),
       st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([0.0, 2.0]))
def test_tempbp_equals_tape(case, opts, chi, rho):
    """Temp-BP (trace-LIF networks) with every option: the composed gradient equals the tape."""
    net, seq, conv, rng = case["net"], case["seq"], case["conv"], case["rng"]
    assume(_spiking(net))
    if not isinstance(opts["kernel"], str) and not any(
            layer.neuron.kernel_args().emit_trace for layer in net.layers):
        opts = dict(opts, kernel="trace")  # an array kernel read by no layer is refused
    seq_t = _perturbed(seq, rng)
    labels = rng.integers(0, net.n_out, seq.shape[1])
    if not case["dyadic"]:
        _no_near_ties(net, seq, conv)
        _no_near_ties(net, seq_t, conv)
    decoder = "rate" if net.layers[-1].spiking else "membrane"
    got = stable_loss_and_grad(net, seq, seq_t, labels, decoder=decoder, method="tempbp",
                               convention=conv, chi=chi, rho=rho, **opts)
    _, _, ref = tp.stable_gradients(net, seq, seq_t, labels, conv, chi=chi, rho=rho,
                                    reduction=conv.mppd_reduction, decoder=decoder,
                                    mode="tempbp", **opts)
    _assert_grads(got, ref, "tempbp")


def test_tempbp_kernel_with_no_trace_below_layer_L():
    """Regression: a Temp-BP ``kernel=`` the whole network reads (its last layer emits the
    trace) was passed on to the backward of ``layers[:L]`` too, which emits no trace, and that
    call refused it ("no layer of this network emits its trace"): the valid call failed. The
    kernel acts on trace outputs only, so the part below L does not get it; the gradient
    equals the tape's."""
    rng = np.random.default_rng(11)
    net = Network([
        Dense(rng.uniform(0.2, 1.2, (3, 4)), TraceLIF(tau_mem_ms=2.0, tau_syn_ms=4.0,
                                                      theta=0.5, output="spike")),
        Dense(rng.uniform(-0.5, 1.5, (2, 3)), TraceLIF(tau_mem_ms=4.0, tau_syn_ms=2.0,
                                                       theta=0.5, output="trace")),
    ])
    seq = (rng.random((5, 2, 4)) < 0.6).astype(float)
    seq_t = _perturbed(seq, rng)
    labels = np.array([0, 1])
    conv = get_convention("DEFAULT")
    opts = dict(kernel=(0.5, 0.25), fallback=False)
    got = stable_loss_and_grad(net, seq, seq_t, labels, method="tempbp", convention=conv,
                               **opts)
    assert got.layer == 1 and got.ms_mppd > 0
    _, _, ref = tp.stable_gradients(net, seq, seq_t, labels, conv, chi=0.5, rho=1.0,
                                    reduction="sum", mode="tempbp", **opts)
    _assert_grads(got, ref, "tempbp kernel")
