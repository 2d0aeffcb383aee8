"""``Dense(..., input_trace=c)``: a layer that acts on its input's synaptic trace.

Ding 2025 Eq. 15 sums ``W a^(l−1)[t]`` over presynaptic traces; the authors' code filters the
encoded input of every trained SNN with the same kernel (``psp`` in
``global_tools/training/functions/loss_f.py``: ``syn ← syn − syn/τs + x[t]``, output
``syn/τs``). Checked here: the filter against that recursion and its closed form, its
transpose, the forward and every backward against compositions with the already tested
paths (pre-filtered inputs for the first layer; ``TraceLIF(output="trace")`` for a hidden
layer, whose emitted trace is the same filter), and every consumer of a layer's input.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import RTOL_FINITE_DIFF, RTOL_SUM_ORDER
from hypothesis import given, settings
from hypothesis import strategies as st
from reference.helpers import cases, example_count

from evsnn import io
from evsnn.attacks import SNNSource
from evsnn.clock import Dense, Network, simulate
from evsnn.clock.network import synaptic_trace, synaptic_trace_vjp
from evsnn.conventions import DEFAULT, get_convention
from evsnn.grad import Sigmoid, backward, loss_and_grad, stable_loss_and_grad
from evsnn.params import LIF, Readout, TraceLIF


def _code_psp(x, tau_s):
    """The authors' ``psp`` written out (their operation order)."""
    syn = np.zeros(x.shape[1:])
    out = np.empty(x.shape)
    for t in range(x.shape[0]):
        syn = syn - syn / tau_s + x[t]
        out[t] = syn / tau_s
    return out


def _filter_matrix(T, c):
    """F[t, k] = c (1 − c)^(t − k) for k <= t: a = F x along time."""
    t, k = np.meshgrid(np.arange(T), np.arange(T), indexing="ij")
    return np.where(k <= t, c * (1 - c) ** np.maximum(t - k, 0), 0.0)


def _close(a, b, rtol=RTOL_SUM_ORDER):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1e-300)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


def _layer(c=None, n_in=3, n_out=2, seed=0, neuron=None):
    w = np.random.default_rng(seed).normal(0, 1, (n_out, n_in))
    return Dense(w, neuron or LIF(lam=0.9, theta=0.5), input_trace=c)


# --------------------------------------------------------------------------- the filter
@settings(max_examples=example_count(20))
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.sampled_from([1.0, 2.0, 2.5, 10.0]))
def test_filter_is_the_code_psp_and_its_closed_form(seed, T, tau_s):
    x = np.random.default_rng(seed).random((T, 2, 3))
    layer = _layer(1.0 / tau_s)
    a = layer.filter_input(x, np.float64)
    _close(a, _code_psp(x, tau_s))
    _close(a, np.einsum("tk,kbn->tbn", _filter_matrix(T, 1.0 / tau_s), x))
    assert _layer().filter_input(x, np.float64) is x  # no trace: the input itself


@settings(max_examples=example_count(20))
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.floats(0.05, 1.0))
def test_input_vjp_is_the_transposed_filter(seed, T, c):
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((T, 2, 3))
    layer = _layer(c)
    _close(layer.input_vjp(g), np.einsum("tk,tbn->kbn", _filter_matrix(T, c), g))
    x = rng.standard_normal((T, 2, 3))
    lhs = np.sum(layer.filter_input(x, np.float64) * g)
    assert lhs == pytest.approx(np.sum(x * layer.input_vjp(g)), rel=1e-12, abs=1e-12)


def test_filter_keeps_the_run_dtype_and_reads_bool_and_repeated_inputs():
    x = np.random.default_rng(1).random((5, 2, 3)) < 0.5
    layer = _layer(0.25)
    a32 = layer.filter_input(x, np.float32)
    assert a32.dtype == np.float32
    _close(a32, layer.filter_input(x.astype(np.float64), np.float64), rtol=1e-6)
    frame = np.random.default_rng(2).random((2, 3))
    view = np.broadcast_to(frame, (5, 2, 3))
    np.testing.assert_array_equal(layer.filter_input(view, np.float64),
                                  layer.filter_input(np.array(view), np.float64))
    g = np.ones((5, 2, 3), dtype=np.float32)
    assert layer.input_vjp(g).dtype == np.float32


def test_input_trace_validation_and_replace():
    for bad, kind in ((0, ValueError), (1.5, ValueError), (-0.1, ValueError),
                      (float("nan"), ValueError), (True, TypeError), ("0.1", TypeError)):
        with pytest.raises(kind, match="input_trace"):
            _layer(bad)
    layer = _layer(0.1)
    assert layer.replace(weight=np.zeros((2, 3))).input_trace == 0.1
    assert Network([layer]).with_weights([np.ones((2, 3))]).layers[0].input_trace == 0.1
    assert _layer(1).input_trace == 1.0


# --------------------------------------------------------------------------- forward and backward
@settings(max_examples=example_count(30))
@given(cases(), st.data(), st.sampled_from([np.float64, np.float32]))
def test_first_layer_trace_is_simulate_on_the_filtered_input(case, data, dtype):
    """A trace on the first layer only: the same run as the plain network on the filtered
    input, bit for bit (output and every record)."""
    net, seq, conv = case["net"], case["seq"], case["conv"]
    c = data.draw(st.sampled_from([0.1, 0.25, 0.5, 1.0]))
    traced = Network((net.layers[0].replace(input_trace=c),) + net.layers[1:])
    a = traced.layers[0].filter_input(seq, dtype)
    r = simulate(traced, seq, convention=conv, record=True, dtype=dtype)
    ref = simulate(net, a, convention=conv, record=True, dtype=dtype)
    np.testing.assert_array_equal(r.output, ref.output)
    for u, v in zip(r.layers, ref.layers):
        for name in ("current", "m", "v", "spikes", "trace", "output"):
            if getattr(v, name) is not None:
                np.testing.assert_array_equal(getattr(u, name), getattr(v, name))
    if seq.min() >= 0 and np.all(np.isin(seq, (0, 1))):  # a spike raster read as bool
        rb = simulate(traced, seq.astype(bool), convention=conv, dtype=dtype)
        np.testing.assert_array_equal(rb.output, ref.output)


METHODS = ["bptt", "hart", "rga", "bptr", "rate", "tempbp"]


@settings(max_examples=example_count(30))
@given(st.data(), st.sampled_from(METHODS))
def test_first_layer_trace_backward_is_the_transposed_filter(data, method):
    """Parameter gradients equal the plain network's on the filtered input bit for bit, and
    dL/dinput is the transposed filter of that run's dL/d(filtered input)."""
    case = data.draw(cases(kinds=("trace_trace", "trace_spike")) if method == "tempbp"
                     else cases())
    net, seq, conv, g_out = case["net"], case["seq"], case["conv"], case["g_out"]
    c = data.draw(st.sampled_from([0.1, 0.25, 0.5, 1.0]))
    traced = Network((net.layers[0].replace(input_trace=c),) + net.layers[1:])
    a = traced.layers[0].filter_input(seq, np.float64)
    got = backward(traced, seq, simulate(traced, seq, convention=conv, record=True), g_out,
                   method=method)
    ref = backward(net, a, simulate(net, a, convention=conv, record=True), g_out,
                   method=method)
    for name in ("weights", "biases", "dlif_factors", "membrane"):
        for u, v in zip(getattr(got, name), getattr(ref, name)):
            if v is None:
                assert u is None
            else:
                np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(got.input, traced.layers[0].input_vjp(ref.input))


def _spike_then_trace(draw):
    """A network whose layer 1 reads the trace of layer 0's spikes, written two ways:
    layer 0 emits spikes and layer 1 has ``input_trace = dt/τs``; or layer 0 emits its trace
    (``TraceLIF(output="trace")``, the already tested path)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    T, B, n = draw(st.integers(1, 10)), draw(st.integers(1, 3)), (3, 4, 2)
    tau_s = draw(st.sampled_from([1.0, 2.0, 4.0, 10.0]))
    neuron = TraceLIF(tau_mem_ms=draw(st.sampled_from([2.0, 5.0])), tau_syn_ms=tau_s,
                      theta=0.5, output="spike")
    w0, w1 = rng.normal(0, 1.5, (n[1], n[0])), rng.normal(0, 1.5, (n[2], n[1]))
    top = Readout(lam=0.5) if draw(st.booleans()) else LIF(lam=0.8, theta=0.4)
    via_input = Network([Dense(w0, neuron), Dense(w1, top, input_trace=1.0 / tau_s)])
    via_output = Network([Dense(w0, dataclasses.replace(neuron, output="trace")),
                          Dense(w1, top)])
    seq = (rng.random((T, B, n[0])) < 0.6).astype(np.float64)
    return via_input, via_output, seq, rng.standard_normal((T, B, n[2]))


@settings(max_examples=example_count(30))
@given(st.data(), st.sampled_from(["bptt", "hart", "rga", "bptr", "rate"]),
       st.sampled_from(["DEFAULT", "DING2025_PAPER", "DING2025_CODE"]))
def test_hidden_layer_trace_equals_a_trace_emitting_layer_below(data, method, preset):
    """The trace TraceLIF(output="trace") emits is a ← a + (dt/τs)(s − a) from a = 0, the
    same filter: the two networks run alike and have the same gradients (to the rounding of
    two summation orders in the backward)."""
    via_input, via_output, seq, g_out = _spike_then_trace(data.draw)
    conv = get_convention(preset)
    r_in = simulate(via_input, seq, convention=conv, record=True)
    r_out = simulate(via_output, seq, convention=conv, record=True)
    np.testing.assert_array_equal(r_in.output, r_out.output)
    np.testing.assert_array_equal(r_in.layers[0].spikes, r_out.layers[0].spikes)
    g_in = backward(via_input, seq, r_in, g_out, method=method)
    g_ref = backward(via_output, seq, r_out, g_out, method=method)
    for u, v in zip(g_in.weights, g_ref.weights):
        _close(u, v)
    _close(g_in.input, g_ref.input)


def test_hidden_trace_refuses_hart_precalculation_and_first_layer_trace_runs_it():
    rng = np.random.default_rng(3)
    seq = (rng.random((6, 2, 3)) < 0.5).astype(np.float64)
    y = np.array([0, 1])
    top = Dense(rng.normal(0, 1, (2, 4)), LIF(lam=0.8, theta=0.3), input_trace=0.5)
    net = Network([Dense(rng.normal(0, 1.5, (4, 3)), LIF(lam=0.8, theta=0.3)), top])
    with pytest.raises(ValueError, match="layer 1 receives its input's synaptic trace"):
        loss_and_grad(net, seq, y, method="hart", precalculate=True)
    first = Network([net.layers[0].replace(input_trace=0.25), net.layers[1].replace(
        input_trace=None)])
    pre = loss_and_grad(first, seq, y, method="hart", precalculate=True)
    step = loss_and_grad(first, seq, y, method="hart")
    for u, v in zip(pre.grads.weights, step.grads.weights):
        _close(u, v)
    _close(pre.grads.input, step.grads.input)
    assert not np.all(pre.grads.input == pre.grads.input[:1])  # it varies over the steps


# --------------------------------------------------------------------------- consumers
def _digits_like(seed=0, B=4, n=6, T=5):
    rng = np.random.default_rng(seed)
    net = Network([Dense(rng.normal(0, 1.5, (5, n)), LIF(lam=0.9, theta=0.3),
                         input_trace=0.25),
                   Dense(rng.normal(0, 1.5, (3, 5)), LIF(lam=0.9, theta=0.3))])
    return net, rng.random((B, n)), rng.integers(0, 3, B), T


@pytest.mark.parametrize("encoder", ["current", "poisson", "ttfs"])
def test_attack_source_gradient_equals_loss_and_grad(encoder):
    """SNNSource's input-only backward (its own layer loop, and its summed-over-steps shortcut
    for current coding) gives loss_and_grad's image gradient through the input trace."""
    net, x, y, T = _digits_like()
    src = SNNSource(net, T=T, encoder=encoder, surrogate=Sigmoid(5, "code"))
    ref = loss_and_grad(net, x, y, T=T, encoder=encoder, rng=4, surrogate=Sigmoid(5, "code"))
    got = src(x, y, rng=4)
    _close(got.grad, ref.image * len(y))  # the source's: each sample's own loss, not the mean


def test_stable_mppd_follows_the_input_trace():
    """MS-MPPD of a first layer with an input trace: ε is the membrane difference where the
    layer never fires (θ huge), and the whole result equals the plain network's on the
    filtered sequences, with dL/dinput mapped through the transposed filter."""
    rng = np.random.default_rng(5)
    T, B = 6, 3
    w = rng.normal(0, 1, (4, 3))
    silent = Network([Dense(w, LIF(lam=0.7, theta=1e6), input_trace=0.5),
                      Dense(rng.normal(0, 1, (2, 4)), Readout())])
    s, s_t = rng.random((T, B, 3)), rng.random((T, B, 3))
    y = np.array([0, 1, 1])
    kw = dict(decoder="membrane", chi=0.5, rho=2.0, reduction="sum")
    r = stable_loss_and_grad(silent, s, s_t, y, **kw)
    m = [simulate(silent, q, record=True).layers[0].m for q in (s, s_t)]
    assert r.ms_mppd == pytest.approx(np.sum((m[0] - m[1]) ** 2) / B, rel=1e-12)
    plain = Network((silent.layers[0].replace(input_trace=None, neuron=LIF(lam=0.7, theta=0.4)),)
                    + silent.layers[1:])
    traced = Network((plain.layers[0].replace(input_trace=0.5),) + plain.layers[1:])
    f = traced.layers[0].filter_input
    got = stable_loss_and_grad(traced, s, s_t, y, **kw)
    ref = stable_loss_and_grad(plain, f(s, np.float64), f(s_t, np.float64), y, **kw)
    assert got.loss == ref.loss
    for u, v in zip(got.grads.weights, ref.grads.weights):
        np.testing.assert_array_equal(u, v)
    # F^T(a) + F^T(b) here against F^T(a + b) there: equal up to the rounding of the sum
    _close(got.grads.input, traced.layers[0].input_vjp(ref.grads.input))


def test_save_and_load_keep_the_input_trace(tmp_path):
    net, *_ = _digits_like()
    path = io.save(net, tmp_path / "m.npz")
    back = io.load(path)
    assert [l.input_trace for l in back.layers] == [0.25, None]
    x = np.random.default_rng(0).random((5, 2, 6))
    np.testing.assert_array_equal(simulate(back, x).output, simulate(net, x).output)


def test_load_refuses_a_bad_input_trace(tmp_path):
    from test_io import rewrite_npz

    net, *_ = _digits_like()
    path = io.save(net, tmp_path / "m.npz")
    rewrite_npz(path, lambda m: m["layers"][0].update(input_trace="0.25"))
    with pytest.raises(ValueError, match=r"layer 0: input_trace must be a real number, got str "
                                         r"'0.25'"):
        io.load(path)
    rewrite_npz(path, lambda m: m["layers"][0].update(input_trace=2.0))
    with pytest.raises(ValueError,
                       match=r"layer 0: input_trace=2.0 must be finite and lie in \(0, 1\]"):
        io.load(path)


def test_crossval_refuses_an_input_trace():
    from validation.crossval.backends import backend_convention, check_network

    net, *_ = _digits_like()
    with pytest.raises(ValueError, match=r"layers\[0\] has input_trace=0.25: the spikingjelly "
                                         "mirror feeds a layer its input itself"):
        check_network("spikingjelly", net, backend_convention("spikingjelly", DEFAULT))


def test_smoothing_classifier_and_l2_gains_see_the_trace():
    """CERTIFY's classifier leaves its constant-current fast path for a first layer with an
    input trace (the current is no longer constant) and labels as simulate does; the L2-gain
    check measures the layer's input as its weights see it, so with a silent layer the
    membrane and MPPD ratios coincide as without a trace."""
    from certify.l2gain import network_gains
    from certify.smoothing import NetworkClassifier

    net, x, _, T = _digits_like()
    clf = NetworkClassifier(net)
    assert not clf._fast
    z = np.random.default_rng(1).random((8, 6))
    seq = np.broadcast_to(z, (T,) + z.shape)
    np.testing.assert_array_equal(clf.classify_static(z, T), clf(seq))
    silent = Network([Dense(np.array([[0.1, 0.2]]), LIF(lam=0.5, theta=10.0), input_trace=0.5)])
    clean = np.random.default_rng(2).random((4, 1, 2))
    r = network_gains(silent, clean, clean + 0.5, rng=0)
    assert r.layers[0].membrane_ratio[0] == pytest.approx(r.layers[0].mppd_ratio[0],
                                                          rel=RTOL_FINITE_DIFF)


@pytest.mark.parametrize("call, match", [
    (lambda: synaptic_trace(np.ones(3), 0.0, np.float64), r"c=0\.0 .*trace factor"),
    (lambda: synaptic_trace(np.ones(3), 1.5, np.float64), r"c=1\.5"),
    (lambda: synaptic_trace(np.float64(1.0), 0.5, np.float64),
     r"x must be a sequence \[T, \.\.\.\] with time on axis 0, got a scalar"),
    (lambda: synaptic_trace_vjp(np.ones(3), np.nan), r"c=nan"),
    (lambda: synaptic_trace_vjp(np.float64(1.0), 0.5), r"g must be a sequence"),
])
def test_the_trace_functions_refuse_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()

