"""``InputTrace(c)``: a ConvNetwork layer passing on the synaptic trace of its input.

Ding 2025's code filters the encoded input of every trained SNN, the convolutional ones
included, once before the first layer (``psp`` of ``global_tools/training/functions/loss_f.py``,
called in ``Network.forward`` of ``global_tools/training/network.py``). The filter and its
transpose are the dense layers' (``tests/test_input_trace.py`` checks them against ``psp`` and
the filter matrix). Checked here: the conv forward and every backward method against the plain
network run on the pre-filtered input (bit for bit), finite differences of the smooth forward,
a hidden trace against a trace-emitting neuron below, the attack source, c = 1 as no trace, and
the consumers that refuse it.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import RTOL_SUM_ORDER
from hypothesis import given, settings
from hypothesis import strategies as st
from reference.helpers import example_count, tempbp_options
from test_conv_grad import _check_fd, _rng_w
from test_conv_grad_vs_tape import cases as conv_cases

import evsnn.clock.conv as conv_mod
from evsnn import io
from evsnn.attacks import SNNSource
from evsnn.clock import Dense, Network, simulate
from evsnn.clock.conv import (
    AvgPool2d, BatchNorm2d, Conv2d, ConvNetwork, Flatten, InputTrace, Linear, Neuron,
    simulate_conv, update_running_stats,
)
from evsnn.clock.network import synaptic_trace, synaptic_trace_vjp
from evsnn.conventions import DING2025_PAPER
from evsnn.grad import Sigmoid
from evsnn.grad.conv import backward_conv
from evsnn.grad.encoder_rules import input_gradient
from evsnn.params import LIF, TraceLIF
from evsnn.train import rebuild_conv

CS = [0.1, 0.25, 0.5, 1.0]
RECORD_FIELDS = ("current", "m", "v", "spikes", "trace", "output")


def _close(a, b, rtol=RTOL_SUM_ORDER):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1e-300)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


def _traced(net, c):
    """``net`` with an InputTrace(c) before its first layer."""
    return ConvNetwork((InputTrace(c),) + net.layers, net.input_shape)


def _shifted(path):
    """A plain network's layer path in the traced one (one layer more at the top)."""
    return re.sub(r"^layers\[(\d+)\]", lambda m: f"layers[{int(m.group(1)) + 1}]", path)


def _assert_same_run(r, ref):
    np.testing.assert_array_equal(r.output, ref.output)
    assert r.names == tuple(_shifted(n) for n in ref.names)
    for u, v in zip(r.layers, ref.layers):
        for name in RECORD_FIELDS:
            if getattr(v, name) is None:
                assert getattr(u, name) is None
            else:
                np.testing.assert_array_equal(getattr(u, name), getattr(v, name))


def _small_net(rng, hidden_trace=False, top=None):
    """Conv → LIF → (InputTrace) → avg pool → Flatten → Linear → ``top`` (by default a
    trace-emitting LIF)."""
    top = top or TraceLIF(tau_mem_ms=4.0, tau_syn_ms=2.0, theta=0.4, output="trace")
    layers = [Conv2d(_rng_w(rng, 3, 2, 3, 3, scale=3), padding=1, bias=rng.normal(0, .1, 3)),
              Neuron(LIF(lam=0.8, theta=0.5)), AvgPool2d(2), Flatten(),
              Linear(_rng_w(rng, 3, 12, scale=3)), Neuron(top)]
    if hidden_trace:
        layers.insert(2, InputTrace(0.5))
    return ConvNetwork(layers, input_shape=(2, 4, 4))


# --------------------------------------------------------------------------- the layer
def test_layer_validation_shape_and_replace():
    for bad, kind in ((0, ValueError), (1.5, ValueError), (-0.1, ValueError),
                      (float("nan"), ValueError), (True, TypeError), ("0.5", TypeError)):
        with pytest.raises(kind, match=r"\bc\b"):
            InputTrace(bad)
    with pytest.raises(ValueError, match=r"c=2 must be finite and lie in \(0, 1\].*dt/tau_s"):
        InputTrace(2)
    layer = InputTrace(1)
    assert layer.c == 1.0 and isinstance(layer.c, float)
    assert layer.replace(c=0.25) == InputTrace(0.25)
    assert layer.out_shape((3, 5, 7)) == (3, 5, 7)


def test_layer_filter_and_vjp_are_the_dense_layers():
    """One implementation: the layer, Dense and the module functions give the same arrays."""
    rng = np.random.default_rng(0)
    x, g = rng.random((6, 2, 3)), rng.standard_normal((6, 2, 3))
    dense = Dense(np.ones((1, 3)), input_trace=0.25)
    layer = InputTrace(0.25)
    np.testing.assert_array_equal(layer.filter(x, np.float64), dense.filter_input(x, np.float64))
    np.testing.assert_array_equal(layer.filter(x, np.float64), synaptic_trace(x, 0.25, np.float64))
    np.testing.assert_array_equal(layer.vjp(g), dense.input_vjp(g))
    np.testing.assert_array_equal(layer.vjp(g), synaptic_trace_vjp(g, 0.25))


# --------------------------------------------------------------------------- forward
@settings(max_examples=example_count(30), deadline=None)
@given(conv_cases(), st.sampled_from(CS), st.sampled_from([np.float64, np.float32]),
       st.sampled_from(["auto", "dense"]))
def test_forward_is_the_plain_network_on_the_filtered_input(case, c, dtype, mode):
    """The encoded [T, B, C, H, W] input filtered elementwise, then the plain network: the
    same run bit for bit (output and every record), for sequential and residual networks,
    every neuron kind, both spike tests and the one-step input delay."""
    net, seq, conv = case["net"], case["seq"], case["conv"]
    a = synaptic_trace(seq, c, dtype)
    r = simulate_conv(_traced(net, c), seq, convention=conv, record=True, dtype=dtype,
                      conv_mode=mode)
    ref = simulate_conv(net, a, convention=conv, record=True, dtype=dtype, conv_mode=mode)
    _assert_same_run(r, ref)


def test_forward_filters_each_entry_over_time_by_hand():
    """One 1×1 convolution of weight 2 after InputTrace(0.5), a memoryless readout: the output
    is 2 a[t] per entry, a = (0.5, 0.75, 0.375) for x = (1, 1, 0) and (0, 0.5, 0.25) for
    x = (0, 1, 0) (a ← a + (x − a)/2 by hand)."""
    from evsnn.params import Readout

    net = ConvNetwork([InputTrace(0.5), Conv2d(np.full((1, 1, 1, 1), 2.0)),
                       Neuron(Readout(lam=0.0))], input_shape=(1, 1, 2))
    x = np.array([[1, 0], [1, 1], [0, 0]], dtype=float).reshape(3, 1, 1, 1, 2)
    out = simulate_conv(net, x).output.reshape(3, 2)
    np.testing.assert_array_equal(out, 2 * np.array([[0.5, 0], [0.75, 0.5], [0.375, 0.25]]))


# --------------------------------------------------------------------------- backward
METHODS = ["bptt", "hart", "rga", "bptr", "rate", "tempbp"]


@settings(max_examples=example_count(30), deadline=None)
@given(st.data(), st.sampled_from(METHODS), st.sampled_from(CS))
def test_every_method_is_the_plain_backward_on_the_filtered_input(data, method, c):
    """Every method differentiates the linear filter exactly: the parameter gradients (conv,
    linear, batch norm, DLIF factors) and dL/dm equal the plain network's on the filtered
    input bit for bit, and dL/dinput is the transposed filter of its dL/d(filtered input)."""
    case = data.draw(conv_cases(kinds=("trace_trace", "trace_spike")) if method == "tempbp"
                     else conv_cases())
    net, seq, conv, g_out = case["net"], case["seq"], case["conv"], case["g_out"]
    opts = {}
    if method == "tempbp":
        opts = data.draw(tempbp_options())
        if not isinstance(opts["kernel"], str):
            opts["kernel"] = "trace"  # an array kernel needs a trace-emitting layer
    traced = _traced(net, c)
    a = synaptic_trace(seq, c, np.float64)
    r = simulate_conv(traced, seq, convention=conv, record=True)
    ref_r = simulate_conv(net, a, convention=conv, record=True)
    got = backward_conv(traced, seq, r, g_out, method=method, **opts)
    ref = backward_conv(net, a, ref_r, g_out, method=method, **opts)
    assert set(got.params) == {_shifted(p) for p in ref.params}
    for path, grads in ref.params.items():
        for key, v in grads.items():
            np.testing.assert_array_equal(got.params[_shifted(path)][key], v)
    for u, v in zip(got.membrane, ref.membrane):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(got.input, synaptic_trace_vjp(ref.input, c))


@pytest.mark.parametrize("convention", ["DEFAULT", DING2025_PAPER])
def test_finite_differences_through_the_trace(convention):
    """The smooth forward (σ(ρ(m − θ)) for the spike) differentiated numerically: dL/dinput
    through the transposed filter and every parameter gradient, with and without the input
    delay (which the filter commutes with)."""
    rng = np.random.default_rng(20)
    net = ConvNetwork((InputTrace(0.4),) + _small_net(rng).layers, input_shape=(2, 4, 4))
    x = rng.random((6, 2, 2, 4, 4))
    assert _check_fd(net, x, convention=convention, n_coords=2) == 3  # conv w, b; linear w


def test_finite_differences_with_batch_norm_and_a_hidden_trace():
    rng = np.random.default_rng(21)
    bn = BatchNorm2d(rng.normal(0, .1, 3), rng.uniform(0.5, 2, 3), rng.uniform(0.5, 2, 3),
                     rng.normal(0, .3, 3))
    base = _small_net(rng, hidden_trace=True)
    net = ConvNetwork((InputTrace(0.25), base.layers[0], bn) + base.layers[1:],
                      input_shape=(2, 4, 4))
    x = rng.random((5, 2, 2, 4, 4))
    assert _check_fd(net, x, n_coords=2) == 5  # conv w, b; BN γ, β; linear w


@settings(max_examples=example_count(20), deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["bptt", "hart", "rga", "bptr", "rate"]),
       st.sampled_from([1.0, 2.0, 4.0]))
def test_hidden_trace_equals_a_trace_emitting_neuron_below(seed, method, tau_s):
    """InputTrace(Δt/τs) after a spike-emitting TraceLIF is the trace that neuron emits with
    ``output="trace"``: the same run bit for bit and the same gradients (two summation
    orders of the same sums)."""
    rng = np.random.default_rng(seed)
    spike = TraceLIF(tau_mem_ms=2.0, tau_syn_ms=tau_s, theta=0.5, output="spike")
    conv1 = Conv2d(_rng_w(rng, 3, 2, 3, 3, scale=4), padding=1)
    top = [Flatten(), Linear(_rng_w(rng, 3, 48, scale=3)), Neuron(LIF(lam=0.8, theta=0.4))]
    via_layer = ConvNetwork([conv1, Neuron(spike), InputTrace(1.0 / tau_s)] + top, (2, 4, 4))
    via_neuron = ConvNetwork([conv1, Neuron(TraceLIF(tau_mem_ms=2.0, tau_syn_ms=tau_s,
                                                     theta=0.5, output="trace"))] + top,
                             (2, 4, 4))
    seq = (rng.random((6, 2, 2, 4, 4)) < 0.5).astype(float)
    g_out = rng.standard_normal((6, 2, 3))
    r_l = simulate_conv(via_layer, seq, record=True)
    r_n = simulate_conv(via_neuron, seq, record=True)
    np.testing.assert_array_equal(r_l.output, r_n.output)
    np.testing.assert_array_equal(r_l.layers[0].spikes, r_n.layers[0].spikes)
    g_l = backward_conv(via_layer, seq, r_l, g_out, method=method)
    g_n = backward_conv(via_neuron, seq, r_n, g_out, method=method)
    _close(g_l.params["layers[0]"]["weight"], g_n.params["layers[0]"]["weight"])
    _close(g_l.params["layers[4]"]["weight"], g_n.params["layers[3]"]["weight"])
    _close(g_l.input, g_n.input)


def test_hart_precalculation_with_a_first_trace_and_refused_with_a_hidden_one():
    """HART's pre-calculated form needs dL/ds equal at every step in every layer: a trace on
    the encoded input keeps it so above (dL/dinput then varies over the steps), a hidden
    trace spreads it over the steps below, which the pre-calculation refuses."""
    spiking = LIF(lam=0.9, theta=0.4)  # emits spikes: dL/ds = g_out, the same every step
    net = _small_net(np.random.default_rng(22), top=spiking)
    rng = np.random.default_rng(1)
    x = (rng.random((5, 2, 2, 4, 4)) < 0.5).astype(float)
    g_out = np.broadcast_to(rng.standard_normal((1, 2, 3)), (5, 2, 3))  # rate decoding
    traced = _traced(net, 0.5)
    a = synaptic_trace(x, 0.5, np.float64)
    got = backward_conv(traced, x, simulate_conv(traced, x, record=True), g_out,
                        method="hart", precalculate=True)
    ref = backward_conv(net, a, simulate_conv(net, a, record=True), g_out,
                        method="hart", precalculate=True)
    np.testing.assert_array_equal(got.params["layers[1]"]["weight"],
                                  ref.params["layers[0]"]["weight"])
    np.testing.assert_array_equal(got.input, synaptic_trace_vjp(ref.input, 0.5))
    assert not np.all(got.input == got.input[:1])
    hidden = _small_net(np.random.default_rng(22), hidden_trace=True, top=spiking)
    res = simulate_conv(hidden, x, record=True)
    with pytest.raises(ValueError, match="upstream gradient varies over time"):
        backward_conv(hidden, x, res, g_out, method="hart", precalculate=True)


# --------------------------------------------------------------------------- consumers
@pytest.mark.parametrize("encoder", ["current", "poisson"])
def test_attack_source_gradient_goes_through_the_trace(encoder):
    """SNNSource on a traced network: the plain network's sequence gradient at the filtered
    sequence, through the transposed filter, then the encoder's rule to the image."""
    rng = np.random.default_rng(23)
    net = _small_net(rng)
    x, y, T = rng.random((3, 2, 4, 4)), np.array([0, 2, 1]), 5
    kw = dict(T=T, encoder=encoder, surrogate=Sigmoid(5.0, "code"))
    src = SNNSource(_traced(net, 0.25), **kw)
    got = src(x, y, rng=7)
    seq = src.encode(x, rng=7)
    ref = SNNSource(net, **kw).sequence_loss_grad(synaptic_trace(seq, 0.25, np.float64), y)
    np.testing.assert_array_equal(got.loss, ref.loss)
    _close(got.grad, input_gradient(encoder, synaptic_trace_vjp(ref.grad, 0.25), seq))
    assert np.abs(got.grad).max() > 0


def test_c_one_is_no_trace_bit_for_bit(monkeypatch):
    """c = 1 passes the input on exactly (the code's psp at τs = Δt): inputs of different
    magnitudes, where the recursion a + (x − a) rounds (1e20 then 1: 1e20 + (1 − 1e20) = 0),
    and a spike raster, which keeps the event-driven convolution."""
    x = np.array([1e20, 1.0])
    np.testing.assert_array_equal(synaptic_trace(x, 1.0, np.float64), x)
    dense = Dense(np.ones((1, 1)), input_trace=1.0)
    np.testing.assert_array_equal(dense.filter_input(x[:, None, None], np.float64),
                                  x[:, None, None])
    rng = np.random.default_rng(24)
    net = _small_net(rng)
    real = rng.standard_normal((5, 2, 2, 4, 4)) * 10.0 ** rng.integers(-6, 6, (5, 2, 2, 4, 4))
    spikes = (rng.random((5, 2, 2, 4, 4)) < 0.3).astype(float)
    g_out = rng.standard_normal((5, 2, 3))
    calls = []
    event = conv_mod._conv_event_frames
    monkeypatch.setattr(conv_mod, "_conv_event_frames",
                        lambda *a, **k: calls.append(1) or event(*a, **k))
    for seq in (real, spikes):
        r = simulate_conv(_traced(net, 1.0), seq, record=True)
        ref = simulate_conv(net, seq, record=True)
        _assert_same_run(r, ref)
        got = backward_conv(_traced(net, 1.0), seq, r, g_out)
        want = backward_conv(net, seq, ref, g_out)
        np.testing.assert_array_equal(got.input, want.input)
        np.testing.assert_array_equal(got.params["layers[1]"]["weight"],
                                      want.params["layers[0]"]["weight"])
    assert len(calls) == 2  # the raster's first convolution, traced and plain: event path
    dnet = Network([Dense(rng.normal(0, 1, (3, 4)), LIF(lam=0.9, theta=0.3), input_trace=1.0)])
    plain = Network([dnet.layers[0].replace(input_trace=None)])
    xs = real.reshape(5, 2, -1)[:, :, :4]
    np.testing.assert_array_equal(simulate(dnet, xs).output, simulate(plain, xs).output)


def test_training_helpers_keep_the_layer():
    rng = np.random.default_rng(25)
    net = _traced(_small_net(rng), 0.5)
    w = np.zeros((3, 2, 3, 3))
    assert rebuild_conv(net, {"layers[1]": {"weight": w}}).layers[0] == InputTrace(0.5)
    bn_net = ConvNetwork([InputTrace(0.5), BatchNorm2d(np.zeros(2), np.ones(2))], (2, 2, 2))
    res = simulate_conv(bn_net, rng.random((3, 2, 2, 2, 2)), train=True)
    assert update_running_stats(bn_net, res).layers[0] == InputTrace(0.5)


def test_exporters_refuse_the_trace():
    """The SpikingJelly and snnTorch mirrors feed a layer its input itself."""
    pytest.importorskip("torch")  # the exporters import it before they read the layers
    from validation.crossval.snntorch_conv import to_snntorch
    from validation.crossval.spikingjelly_conv import to_spikingjelly

    net = ConvNetwork([InputTrace(0.5), Conv2d(np.ones((1, 1, 1, 1))), Neuron(LIF(theta=1.0))],
                      input_shape=(1, 2, 2))
    with pytest.raises(ValueError, match=r"layers\[0\] is an InputTrace\(c=0.5\): the "
                                         "SpikingJelly mirror feeds a layer its input itself"):
        to_spikingjelly(net)
    with pytest.raises(ValueError, match=r"layers\[0\] is an InputTrace\(c=0.5\): the "
                                         "snnTorch mirror feeds a layer its input itself"):
        to_snntorch(net)


def test_io_keeps_the_trace_of_a_conv_network(tmp_path):
    """evsnn.io stores a ConvNetwork with its InputTrace (format version 4; until then it was
    refused rather than written without its trace): the factor comes back and the loaded
    network runs the same."""
    net = ConvNetwork([InputTrace(0.375), Conv2d(np.ones((1, 1, 1, 1))), Neuron()], (1, 2, 2))
    io.save(net, tmp_path / "m.npz")
    back = io.load(tmp_path / "m.npz")
    assert back.layers[0] == InputTrace(0.375)
    x = np.random.default_rng(26).random((4, 2, 1, 2, 2))
    np.testing.assert_array_equal(simulate_conv(back, x).output, simulate_conv(net, x).output)
