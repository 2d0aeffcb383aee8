"""Gradient methods: kernels vs twins, HART pre-calculation, rate-family factors, encoder rules,
losses, and errors. (The independent check against the reverse-mode tape is in
tests/test_grad_vs_tape.py.)"""

import numpy as np
import pytest
from conftest import ATOL_TWIN, ATOL_TWIN_FLOAT32, RTOL_SUM_ORDER, RTOL_TWIN, RTOL_TWIN_FLOAT32
from hypothesis import given, settings
from hypothesis import strategies as st

from evsnn.clock import Dense, Network, SimulationResult, simulate
from evsnn.clock.simulate import _layer_factors
from evsnn.conventions import get_convention
from evsnn.grad import (
    Sigmoid,
    Triangle,
    backward,
    cross_entropy,
    decoder_vjp,
    input_gradient,
    loss_and_grad,
    mixed,
    rga_factor,
    spike_count_loss,
    surrogate_derivative,
    ttfs_loss,
)
from evsnn.grad.backward import _bptt_layer, _tempbp_layer
from evsnn.params import DLIF, IF, LIF, Readout, TraceLIF
from reference import grad as ref
from reference.helpers import assert_within, example_count


@st.composite
def recorded_layers(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    T, B, n_in, n_out = draw(st.integers(1, 12)), draw(st.integers(1, 3)), 4, 3
    kind = draw(st.sampled_from(["lif", "trace", "readout"]))
    if kind == "lif":
        neuron = LIF(lam=draw(st.floats(0, 1)), theta=0.5,
                     reset=draw(st.sampled_from(["hard", "soft"])),
                     v_rest=draw(st.floats(-0.3, 0.3)))
    elif kind == "trace":
        neuron = TraceLIF(tau_mem_ms=draw(st.floats(1, 8)), tau_syn_ms=draw(st.floats(1, 8)),
                          theta=0.5, output=draw(st.sampled_from(["spike", "trace"])))
    else:
        neuron = Readout(lam=draw(st.floats(0, 1)))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    net = Network([Dense(rng.standard_normal((n_out, n_in)) * 1.5, neuron)])
    x = (rng.random((T, B, n_in)) < 0.6).astype(dtype)
    res = simulate(net, x, record=True)
    g_out = rng.standard_normal((T, B, n_out)).astype(dtype)
    return net.layers[0], res.layers[0], g_out, dtype, draw(st.booleans()), draw(st.booleans())


def _assert_twin(got, want, dtype):
    """Temp-BP's twin agrees to rounding, not bit for bit, in both dtypes: it sums the trace
    kernel from its powers where the kernel runs the recursion. Its roundings are of the terms
    (G f and the carried intra term), which cancel to results far smaller than themselves, so
    the relative tolerance applies to each neuron's largest |dL/dm| over the steps: a random run
    (1200 examples) found float32 terms of 0.65 cancelling to -0.00592: the twin 1.4e-7 and the
    kernel 1.5e-8 from the value in float64, 1.2e-7 (an ulp of the terms) apart."""
    rtol, atol = (RTOL_TWIN_FLOAT32, ATOL_TWIN_FLOAT32) if dtype == np.float32 else (RTOL_TWIN,
                                                                                     ATOL_TWIN)
    size = np.where(np.isfinite(want), np.abs(want), 0)
    scale = np.maximum(size, size.max(axis=0, keepdims=True))
    assert_within(got, want, atol + rtol * scale, "Temp-BP kernel against its twin")


@given(recorded_layers(),
       st.sampled_from([Sigmoid(5.0, "code"), Sigmoid(3.0, "paper"), Triangle(0.7)]))
def test_bptt_kernel_matches_twin(case, surrogate):
    layer, rec, g_out, dtype, detach, prune = case
    dtype = np.dtype(dtype)
    args, leak, _ = _layer_factors(layer, rec.m.shape[0], get_convention("DEFAULT"), dtype)
    kind, p, scale = surrogate.kernel_args()
    spikes = rec.spikes if rec.spikes is not None else rec.m
    common = (g_out, rec.m, spikes, leak, dtype.type(args.theta), dtype.type(args.v_rest),
              args.hard_reset, args.spiking, args.emit_trace, dtype.type(args.trace_coef), kind,
              dtype.type(p), dtype.type(scale), detach, prune)
    got, want = np.full_like(rec.m, np.nan), np.full_like(rec.m, np.nan)
    _bptt_layer(*common, got)
    ref._bptt_layer_kernel(*common, want)
    assert got.dtype == dtype
    # bit for bit: the twin computes the surrogate with evsnn's exponential (tests/reference/exp.py)
    np.testing.assert_array_equal(got, want)


def _subnormal_band_case(seed, T, B, N, g_exp, hard, detach):
    """A float32 layer whose membranes sit mostly in [-17.5, -14] (θ = 1, ρ = 5: the sigmoid
    surrogate ~1e-37 to 1e-31), a few elsewhere, and a small upstream gradient: dL/ds · σ'
    and the λ dL/dm carried back through the steps land in the subnormal range."""
    rng = np.random.default_rng(seed)
    m = rng.uniform(-17.5, -14.0, (T, B, N))
    far = rng.random((T, B, N)) < 0.1
    m[far] = rng.uniform(-40.0, 3.0, far.sum())
    m = m.astype(np.float32)
    spikes = (m >= 1).astype(np.float32)
    g_out = (rng.standard_normal((T, B, N)) * 10.0**-g_exp).astype(np.float32)
    leak = rng.uniform(0.5, 1.0, T).astype(np.float32)
    f = np.float32
    return (g_out, m, spikes, leak, f(1.0), f(0.0), hard, True, False, f(0.0), 0, f(5.0), f(5.0),
            detach, False)


@settings(max_examples=example_count(60))
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 3), st.integers(1, 41),
       st.floats(0.0, 8.0), st.booleans(), st.booleans())
def test_bptt_float32_subnormal_band_matches_twin_bit_for_bit(seed, T, B, N, g_exp, hard, detach):
    """Where the float32 arithmetic meets subnormals (slow on Intel without FTZ/DAZ, which stay
    off) the kernel still gives the twin's bits, signs of zero included, along chains of steps:
    the pin for any rewrite that avoids subnormal multiplications (bench/RESULTS_attack.md)."""
    args = _subnormal_band_case(seed, T, B, N, g_exp, hard, detach)
    got, want = np.full_like(args[1], np.nan), np.full_like(args[1], np.nan)
    _bptt_layer(*args, got)
    ref._bptt_layer_kernel(*args, want)
    np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))


def test_bptt_float32_subnormal_band_case_meets_subnormals():
    """The generator above does reach the subnormal range (else the test would not test it):
    one of its cases, checked bit for bit, with subnormal dL/dm at more than one step."""
    args = _subnormal_band_case(7, 10, 2, 40, 3.0, True, False)
    got, want = np.empty_like(args[1]), np.empty_like(args[1])
    _bptt_layer(*args, got)
    ref._bptt_layer_kernel(*args, want)
    sub = (want != 0) & (np.abs(want) < np.finfo(np.float32).tiny)
    assert sub.sum() >= 20 and np.unique(np.nonzero(sub)[0]).size >= 2
    np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))


@given(recorded_layers(), st.booleans(), st.sampled_from([0, 1, 3, 13]),
       st.sampled_from([0.25, 1.5, -np.inf]), st.sampled_from([(5.0, 5.0), (0.5, 1.0)]),
       st.booleans())
def test_tempbp_kernel_matches_twin(case, intra, n_kern, level, fallback, code_rule):
    """Every Temp-BP option: the trace kernel by its recursion (n_kern = 0) or a given kernel
    (shorter or longer than T), fallback levels (−inf: off), sigmoid scales, both rules."""
    layer, rec, g_out, dtype, _, _ = case
    if rec.trace is None:
        return
    dtype = np.dtype(dtype)
    a = layer.neuron.kernel_args()
    kern = np.random.default_rng(n_kern).uniform(-1, 1, n_kern).astype(dtype)
    rho, mult = fallback
    common = (g_out, rec.m, rec.v, rec.spikes, rec.trace, dtype.type(a.v_init), dtype.type(a.lam),
              dtype.type(a.theta), dtype.type(a.v_rest), a.hard_reset, a.emit_trace,
              dtype.type(a.trace_coef), kern, dtype.type(8.0), dtype.type(level * a.trace_coef),
              dtype.type(rho), dtype.type(mult), intra, code_rule)
    got, want = np.full_like(rec.m, np.nan), np.full_like(rec.m, np.nan)
    _tempbp_layer(*common, got)
    ref._tempbp_layer_kernel(*common, want)
    _assert_twin(got, want, dtype)


def _net(rng, sizes=(6, 5, 4), neuron=None, readout=False):
    return Network.mlp(list(sizes), neuron or LIF(lam=0.8, theta=0.6, reset="soft"), rng=rng,
                       scale=2.0, readout=readout)


@given(st.integers(0, 2**32 - 1), st.integers(1, 10), st.floats(0.3, 2.0))
def test_hart_precalculated_equals_prune_then_average(seed, T, gamma):
    rng = np.random.default_rng(seed)
    net = _net(rng)
    x = rng.random((3, 6))
    y = rng.integers(0, 4, 3)
    full = loss_and_grad(net, x, y, T=T, encoder="current", method="hart",
                         surrogate=Triangle(gamma))
    pre = loss_and_grad(net, x, y, T=T, encoder="current", method="hart", surrogate=Triangle(gamma),
                        precalculate=True)
    for a, b in zip(full.grads.weights, pre.grads.weights):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(full.image, pre.image, rtol=1e-12, atol=1e-15)


def test_hart_gradient_is_constant_in_time_and_precalc_rejects_time_varying_upstream():
    rng = np.random.default_rng(0)
    net = _net(rng)
    r = loss_and_grad(net, rng.random((2, 6)), np.array([0, 1]), T=6, encoder="current",
                      method="hart")
    gm = r.grads.membrane[0]
    assert np.all(gm == gm[:1])  # HART Eq. 13: dL/ds^{l-1}(t) is the same for every t
    seq = (rng.random((6, 2, 6)) < 0.5).astype(float)
    res = simulate(net, seq, record="time_sums", surrogate=Triangle(1.0))
    g_out = rng.standard_normal((6, 2, 4))
    with pytest.raises(ValueError, match="HART pre-calculation needs dL/ds.*g_output varies"):
        backward(net, seq, res, g_out, method="hart", precalculate=True)


# --------------------------------------------------------------------------- HART pre-calculation
@st.composite
def precalc_cases(draw):
    """Networks where HART's pre-calculation applies: 1-3 spiking layers emitting spikes (λ-LIF
    hard / soft reset, IF, trace-LIF with spike output), with or without bias, spike or real
    inputs, either spike test, an input delay only for a single layer, T = 1..12."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    L = draw(st.integers(1, 3))
    T, B = draw(st.integers(1, 12)), draw(st.integers(1, 3))
    sizes = [draw(st.integers(2, 5)) for _ in range(L + 1)]
    layers = []
    for k in range(L):
        kind = draw(st.sampled_from(["lif_hard", "lif_soft", "if", "trace_spike"]))
        theta = float(rng.uniform(0.3, 1.2))
        if kind.startswith("lif"):
            neuron = LIF(lam=float(rng.uniform(0, 1)), theta=theta, reset=kind[4:],
                         v_rest=float(rng.uniform(-0.25, 0.25)))
        elif kind == "if":
            neuron = IF(theta=theta)
        else:
            neuron = TraceLIF(tau_mem_ms=float(rng.uniform(1, 8)),
                              tau_syn_ms=float(rng.uniform(1, 8)), theta=theta, output="spike")
        bias = rng.uniform(-0.25, 0.25, sizes[k + 1]) if draw(st.booleans()) else None
        w = rng.uniform(-1.5, 1.5, (sizes[k + 1], sizes[k])) * (1.0 if k == 0 else 1.5)
        layers.append(Dense(w, neuron, bias=bias))
    conv = get_convention("DEFAULT").with_(
        spike_test=draw(st.sampled_from([">=", ">"])),
        input_delay=draw(st.sampled_from([0, 1])) if L == 1 else 0,
    )
    if draw(st.booleans()):
        seq = (rng.random((T, B, sizes[0])) < 0.6).astype(np.float64)
    else:
        seq = rng.random((T, B, sizes[0]))
    g_out = np.broadcast_to(rng.standard_normal((1, B, sizes[-1])), (T, B, sizes[-1])).copy()
    surrogate = draw(st.sampled_from([Triangle(0.5), Triangle(1.0), Triangle(2.0),
                                      Sigmoid(5.0, "code"), Sigmoid(2.0, "paper")]))
    return Network(layers), seq, conv, g_out, surrogate


def _assert_sum_order(got, want):
    want = np.asarray(want)
    scale = np.max(np.abs(want)) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=RTOL_SUM_ORDER, atol=RTOL_SUM_ORDER * scale)


@settings(max_examples=example_count(60))
@given(precalc_cases())
def test_hart_precalculated_from_time_sums_equals_prune_then_average(case):
    """HART Eq. 13-15: the pre-calculated backward (forward time sums, one product per layer)
    equals the prune-then-average backward run step by step on the full record."""
    net, seq, conv, g_out, surrogate = case
    full = simulate(net, seq, convention=conv, record=True)
    sums = simulate(net, seq, convention=conv, record="time_sums", surrogate=surrogate)
    np.testing.assert_array_equal(sums.output, full.output)  # the same forward pass
    want = backward(net, seq, full, g_out, method="hart", surrogate=surrogate)
    got = backward(net, seq, sums, g_out, method="hart", precalculate=True)
    _assert_sum_order(got.input, want.input)
    for k in range(len(net.layers)):
        _assert_sum_order(got.weights[k], want.weights[k])
        _assert_sum_order(got.membrane[k], want.membrane[k])
        if want.biases[k] is not None:
            _assert_sum_order(got.biases[k], want.biases[k])


def test_hart_precalculated_work_does_not_depend_on_T():
    """Structural: the pre-calculated backward runs from a record with no per-step array, and
    its work does not grow with T. A run of T = 7 steps is given to it once as recorded and once
    as a record claiming T' = 7·2^40 steps whose time sums are 2^40 times larger (the 7-step
    sums repeated); per-step work or a [T', B, N] array would not finish. Scaling by a power of
    two is exact, so the gradients are bit for bit 2^40 times (weights, bias) or equal to
    (membrane, input) those of the 7-step run."""
    from evsnn.clock.simulate import LayerTimeSums, TimeSums

    rng = np.random.default_rng(5)
    net = Network([Dense(rng.uniform(-1, 1.5, (5, 4)), LIF(lam=0.7, theta=0.6),
                         bias=rng.uniform(-0.2, 0.2, 5)),
                   Dense(rng.uniform(-1, 1.5, (3, 5)), IF(theta=0.8))])
    seq = (rng.random((7, 2, 4)) < 0.5).astype(float)
    res = simulate(net, seq, record="time_sums", surrogate=Triangle(0.8))
    assert res.layers is None
    for ls in res.time_sums.layers:  # nothing per step in the record
        for a in (ls.input_sum, ls.surrogate_sum):
            assert a.ndim == 2 and a.shape[0] == 2
    g_out = np.broadcast_to(rng.standard_normal((2, 3)), (7, 2, 3))
    small = backward(net, seq, res, g_out, method="hart", precalculate=True)

    k = 2.0**40
    T_big = 7 * 2**40
    big_sums = TimeSums(tuple(LayerTimeSums(ls.input_sum * k, ls.surrogate_sum * k)
                              for ls in res.time_sums.layers), res.time_sums.surrogate)
    out_big = np.broadcast_to(res.output[0], (T_big,) + res.output.shape[1:])
    big = SimulationResult(output=out_big, layers=None, convention=res.convention,
                           time_sums=big_sums)
    got = backward(net, np.broadcast_to(seq[0], (T_big, 2, 4)), big,
                   np.broadcast_to(g_out[0], (T_big, 2, 3)), method="hart", precalculate=True)
    assert got.input.shape == (T_big, 2, 4)
    np.testing.assert_array_equal(got.input[0], small.input[0])
    for k_ in range(2):
        np.testing.assert_array_equal(got.weights[k_], k * small.weights[k_])
        np.testing.assert_array_equal(got.membrane[k_][0], small.membrane[k_][0])
    np.testing.assert_array_equal(got.biases[0], k * small.biases[0])


@pytest.mark.parametrize("T", [1, 6])
@pytest.mark.parametrize("bias", [False, True])
def test_hart_precalculated_accepts_a_memoryless_readout(T, bias):
    """Readout(lam=0) with "membrane" decoding (the HART authors' time-averaged nn.Linear) has
    dL/dm = g/T at every step, so the pre-calculation applies; it equals the per-step HART
    backward (the readout differentiated exactly, the hidden layers pruned and averaged) up to
    the summation order of the time sums (RTOL_SUM_ORDER)."""
    rng = np.random.default_rng(3)
    net = Network([Dense(rng.normal(size=(6, 4)) * 2, LIF(lam=0.9, theta=0.5)),
                   Dense(rng.normal(size=(5, 6)) * 1.5, LIF(lam=0.7, theta=0.4, reset="soft")),
                   Dense(rng.normal(size=(3, 5)), Readout(lam=0.0),
                         bias=rng.uniform(-0.3, 0.3, 3) if bias else None)])
    x, y = rng.random((4, 4)), np.array([0, 2, 1, 2])
    kw = dict(T=T, encoder="current", decoder="membrane", method="hart")
    want = loss_and_grad(net, x, y, **kw)
    got = loss_and_grad(net, x, y, precalculate=True, **kw)
    assert got.loss == want.loss
    for k in range(3):
        assert np.any(want.grads.weights[k] != 0)  # gradient reaches every layer
        _assert_sum_order(got.grads.weights[k], want.grads.weights[k])
        _assert_sum_order(got.grads.membrane[k], want.grads.membrane[k])
    if bias:
        _assert_sum_order(got.grads.biases[2], want.grads.biases[2])
    _assert_sum_order(got.image, want.image)
    # a lone readout under an input delay (DING2025_PAPER): the last step sends no gradient
    seq = (rng.random((T, 2, 4)) < 0.5).astype(float)
    lone = Network([Dense(rng.normal(size=(3, 4)), Readout(lam=0.0))])
    g = np.broadcast_to(rng.standard_normal((2, 3)), (T, 2, 3))
    full = simulate(lone, seq, convention="DING2025_PAPER", record=True)
    sums = simulate(lone, seq, convention="DING2025_PAPER", record="time_sums",
                    surrogate=Triangle(1.0))
    want = backward(lone, seq, full, g, method="hart")
    got = backward(lone, seq, sums, g, method="hart", precalculate=True)
    _assert_sum_order(got.weights[0], want.weights[0])
    _assert_sum_order(got.input, want.input)


def test_hart_precalculated_errors():
    rng = np.random.default_rng(1)
    net = _net(rng)
    seq = (rng.random((4, 2, 6)) < 0.5).astype(float)
    g = np.ones((4, 2, 4))
    full = simulate(net, seq, record=True)
    sums = simulate(net, seq, record="time_sums", surrogate=Triangle(1.0))
    with pytest.raises(ValueError,
                       match="precalculate=True runs from the forward pass's time sums"):
        backward(net, seq, full, g, method="hart", precalculate=True)
    with pytest.raises(ValueError, match="result holds only time sums"):
        backward(net, seq, sums, g, method="bptt")
    with pytest.raises(ValueError, match=r"surrogate=Triangle\(gamma=0.5\) differs"):
        backward(net, seq, sums, g, method="hart", surrogate=Triangle(0.5), precalculate=True)
    with pytest.raises(TypeError, match="record='time_sums' sums ∂s/∂m over time with a surrogate"):
        simulate(net, seq, record="time_sums")
    with pytest.raises(ValueError,
                       match="surrogate=Triangle.* is only read with record='time_sums'"):
        simulate(net, seq, record=True, surrogate=Triangle(1.0))
    with pytest.raises(ValueError, match="record='yes' is not valid"):
        simulate(net, seq, record="yes")
    with pytest.raises(TypeError, match="record must be False, True, 'bptt' or 'time_sums', got "
                                        "NoneType"):
        simulate(net, seq, record=None)

    def run(network, conv="DEFAULT", g_=None):
        s = simulate(network, seq, convention=conv, record="time_sums", surrogate=Triangle(1.0))
        g_ = np.ones(s.output.shape) if g_ is None else g_
        return backward(network, seq, s, g_, method="hart", precalculate=True)

    w1, w2 = rng.uniform(-1, 1, (5, 6)), rng.uniform(-1, 1, (4, 5))
    with pytest.raises(ValueError, match=r"layer 1 is a non-spiking readout with lam=0.5: its "
                       r"dL/dm\[t\] = .* accumulates over time.* use Readout\(lam=0.0\)"):
        run(Network([Dense(w1, LIF()), Dense(w2, Readout(lam=0.5))]))
    with pytest.raises(ValueError, match="layer 0 is a DLIF layer"):
        run(Network([Dense(w1, DLIF(), dlif_factors=np.ones(4)), Dense(w2, LIF())]))
    with pytest.raises(ValueError, match="layer 1 emits its synaptic trace"):
        run(Network([Dense(w1, LIF()), Dense(w2, TraceLIF(output="trace"))]))
    with pytest.raises(ValueError, match="with input_delay=1 the last step of layer 1"):
        run(Network([Dense(w1, LIF()), Dense(w2, LIF())]), conv="DING2025_PAPER")
    with pytest.raises(ValueError, match="time sums of 2 layers but the network has 1"):
        backward(Network([Dense(rng.uniform(-1, 1, (4, 6)), LIF())]), seq, sums, g,
                 method="hart", precalculate=True)
    # as deep, but narrower in the middle: the sums of the 6-5-4 run do not fit a 6-3-4 network
    with pytest.raises(ValueError, match=r"^the time sums of layer 1 have shapes \(2, 5\) and "
                       r"\(2, 4\), the layer needs \(2, 3\) and \(2, 4\); simulate this network "
                       r"with record='time_sums'$"):
        backward(_net(rng, sizes=(6, 3, 4)), seq, sums, g, method="hart", precalculate=True)
    # the sums of a run that ended in a readout (no surrogate sum) for a spiking last layer
    ro_sums = simulate(_net(rng, readout=True), seq, record="time_sums", surrogate=Triangle(1.0))
    with pytest.raises(ValueError, match=r"^the time sums of layer 1 have shapes \(2, 5\) and "
                       r"None, the layer needs \(2, 5\) and \(2, 4\)"):
        backward(net, seq, ro_sums, g, method="hart", precalculate=True)


def test_rga_factor_hand_computed():
    lam = 0.5  # (0.8 + 0.2·0.5)/1.5 = 0.6 on [1-λ, 2] = [0.5, 2]; 0.2 on [0, 0.5]
    np.testing.assert_allclose(rga_factor([-0.1, 0.25, 0.5, 1.0, 2.0, 2.5], lam),
                               [0, 0.2, 0.8, 0.6, 0.6, 0])  # 0.5 lies in both intervals: 0.2 + 0.6


def test_rate_family_structure():
    rng = np.random.default_rng(4)
    net = _net(rng, (5, 4, 3))
    x = rng.random((2, 5))
    y = np.array([0, 2])
    for method in ("rga", "bptr", "rate"):
        r = loss_and_grad(net, x, y, T=8, encoder="current", method=method)
        gm = r.grads.membrane[0]
        assert np.all(gm == gm[:1])  # spread uniformly over time
    # BPTR: no gradient through a neuron that never fired
    res = simulate(net, np.broadcast_to(x, (8, 2, 5)).copy(), record=True)
    silent = res.layers[0].spikes.sum(axis=0) == 0
    r = loss_and_grad(net, x, y, T=8, encoder="current", method="bptr")
    assert np.all(r.grads.membrane[0][0][silent] == 0)


def test_surrogates_hand_computed():
    # σ'(0) = 1/4: code scale ρ/4 at the threshold, paper scale 1/4; triangle peak 1/γ
    assert surrogate_derivative(Sigmoid(5.0, "code"), 1.0, 1.0) == pytest.approx(1.25)
    assert surrogate_derivative(Sigmoid(5.0, "paper"), 1.0, 1.0) == pytest.approx(0.25)
    assert surrogate_derivative(Triangle(0.5), 1.0, 1.0) == pytest.approx(2.0)
    assert surrogate_derivative(Triangle(0.5), 1.6, 1.0) == 0.0


def test_sigmoid_surrogate_far_below_threshold_is_zero_without_a_warning():
    # exp(−ρ(m − θ)) overflowed to inf (exp(105) in float32, exp(1005) in float64) and NumPy's
    # overflow RuntimeWarning escaped surrogate_derivative (the conv HART pre-calculated
    # backward calls it on recorded membranes); σ = 0 there, so the derivative is exactly 0
    got32 = surrogate_derivative(Sigmoid(5.0), np.array([-20.0], np.float32), 1.0)
    assert got32.dtype == np.float32 and got32[0] == 0.0
    assert surrogate_derivative(Sigmoid(5.0), np.array([-200.0]), 1.0)[0] == 0.0


def test_losses_hand_computed():
    loss, g = cross_entropy(np.log(np.array([[1.0, 3.0]])), np.array([1]))
    assert loss == pytest.approx(-np.log(0.75))
    np.testing.assert_allclose(g, [[0.25, -0.25]])
    loss, g = spike_count_loss(np.array([[3.0, 1.0]]), np.array([0]), desired_true=5,
                               desired_false=0)
    assert loss == 0.5 * (4 + 1) and g.tolist() == [[-2.0, 1.0]]
    # double softmax: CE of softmax(2ω); at ω = 0 with 2 classes p = (½, ½) and the CE is that of
    # logits (½, ½): ln 2
    loss, g = ttfs_loss(np.zeros((1, 2)), np.array([0]), "double_softmax")
    assert loss == pytest.approx(np.log(2))
    # scaled CE: CE of 2ω; ω = (1, 0), label 0: −ln(e² / (e² + 1)) = ln(1 + e⁻²)
    loss, _ = ttfs_loss(np.array([[1.0, 0.0]]), np.array([0]), "scaled_ce")
    assert loss == pytest.approx(np.log1p(np.exp(-2.0)))


@given(st.integers(0, 2**32 - 1))
def test_softmax_losses_match_finite_differences(seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((3, 4))
    y = rng.integers(0, 4, 3)
    for f in (lambda s: cross_entropy(s, y), lambda s: ttfs_loss(s, y, "double_softmax"),
              lambda s: ttfs_loss(s, y, "scaled_ce"),
              lambda s: ttfs_loss(s, y, "double_softmax", beta=0.7)):
        _, g = f(z)
        h = 1e-6
        num = np.zeros_like(z)
        for idx in np.ndindex(z.shape):
            e = np.zeros_like(z)
            e[idx] = h
            num[idx] = (f(z + e)[0] - f(z - e)[0]) / (2 * h)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


def test_decoder_vjp():
    out = np.zeros((4, 1, 2))
    out[2, 0, 0] = 1
    g = decoder_vjp("ttfs", np.array([[1.0, 1.0]]), out)
    # neuron 0 first spikes at t0 = 2: weight T - t0 = 2; neuron 1 silent: step 0, weight 4
    assert g[2, 0, 0] == 2 and g[0, 0, 1] == 4 and g.sum() == 6
    np.testing.assert_array_equal(decoder_vjp("membrane", np.ones((1, 2)), out),
                                  np.full((4, 1, 2), 0.25))
    with pytest.raises(ValueError, match="is not a decoder"):
        decoder_vjp("mode", np.ones((1, 2)), out)


def test_encoder_rules():
    seq = np.array([[[1.0, 0.0, 0.5]], [[0.0, 0.0, 1.0]]])
    g = np.ones_like(seq)
    np.testing.assert_array_equal(input_gradient("poisson", g, seq), [[2, 2, 2]])
    np.testing.assert_array_equal(input_gradient("ratesyn_end", g, seq), [[1, 0, 2]])
    np.testing.assert_array_equal(input_gradient("rsc_fresh", g, seq), [[0, 0, 1]])
    fused = np.concatenate([seq, seq], axis=2)
    np.testing.assert_array_equal(input_gradient("fused:current+ttfs", np.ones_like(fused), fused),
                                  [[3, 2, 4]])
    with pytest.raises(ValueError, match="has no input-gradient rule"):
        input_gradient("morse", g, seq)
    with pytest.raises(ValueError, match="cannot split into 2 parts"):
        input_gradient("fused:current+ttfs", g, seq)
    with pytest.raises(ValueError, match="g_seq has shape"):
        input_gradient("current", g[:1], seq)


def test_mixed():
    assert mixed(0.25, np.array([4.0]), np.array([8.0]))[0] == 7.0
    with pytest.raises(ValueError, match=r"beta=2 must be finite and lie in \[0, 1\]"):
        mixed(2, 1.0, 1.0)


def test_backward_errors():
    rng = np.random.default_rng(0)
    net = _net(rng)
    seq = np.zeros((3, 1, 6))
    res = simulate(net, seq, record=True)
    g = np.zeros((3, 1, 4))
    with pytest.raises(TypeError, match="network must be an evsnn Network"):
        backward("net", seq, res, g)
    with pytest.raises(ValueError, match=r"result must come from simulate\(..., record=True\)"):
        backward(net, seq, simulate(net, seq), g)
    with pytest.raises(
        TypeError,
        match=r"result must be the SimulationResult of simulate\(network, inputs, record=True\), "
        r"got dict; pass what simulate\(..., record=True\) returns",
    ):
        backward(net, seq, {"output": res.output}, g)
    with pytest.raises(ValueError, match="is not a gradient method"):
        backward(net, seq, res, g, method="magic")
    with pytest.raises(ValueError, match="inputs have shape"):
        backward(net, seq[:2], res, g)
    with pytest.raises(ValueError, match="g_output has shape"):
        backward(net, seq, res, g[:, :, :2])
    with pytest.raises(TypeError, match="surrogate must be evsnn.grad.Sigmoid or Triangle"):
        backward(net, seq, res, g, surrogate="sigmoid")
    with pytest.raises(ValueError, match="method='tempbp' needs trace-LIF layers"):
        backward(net, seq, res, g, method="tempbp")
    with pytest.raises(ValueError, match="rho=0 must be finite and > 0"):
        Sigmoid(0)
    with pytest.raises(ValueError, match="scale='both' must be"):
        Sigmoid(5.0, "both")
    with pytest.raises(TypeError, match="rho must be a real number"):
        Sigmoid("5")
    with pytest.raises(ValueError, match="gamma=-1 must be finite and > 0"):
        Triangle(-1)
    with pytest.raises(TypeError, match="gamma must be a real number"):
        Triangle(None)
    with pytest.raises(ValueError, match="T is required when an encoder is given"):
        loss_and_grad(net, np.zeros((1, 6)), [0], encoder="current")
    with pytest.raises(ValueError, match=r"must be an encoded sequence \[T, B, N\]"):
        loss_and_grad(net, np.zeros((1, 6)), [0])
    with pytest.raises(ValueError, match="loss='scaled_ce' is not available for decoder='rate'"):
        loss_and_grad(net, seq, np.array([0]), loss="scaled_ce")
    with pytest.raises(ValueError, match=r"labels holds the label 7 but scores has 4 classes; "
                                         r"labels are 0-based class indices in \[0, 3\]"):
        cross_entropy(np.zeros((1, 4)), np.array([7]))
    with pytest.raises(ValueError, match=r"labels must have shape \(1,\) \(one label per sample\)"):
        cross_entropy(np.zeros((1, 4)), np.array([0, 1]))
    with pytest.raises(TypeError, match="labels must hold integer class labels, got dtype float"):
        cross_entropy(np.zeros((1, 4)), np.array([0.5]))
    with pytest.raises(ValueError, match=r"scores must be \[B, N\]"):
        cross_entropy(np.zeros(4), np.array([0]))
    with pytest.raises(ValueError, match="variant='hinge' is not a TTFS loss"):
        ttfs_loss(np.zeros((1, 2)), np.array([0]), "hinge")
    with pytest.raises(ValueError, match="^desired_true=-1 must be finite and >= 0; the target "
                                         "spike count of the label neuron$"):
        spike_count_loss(np.zeros((1, 2)), np.array([0]), desired_true=-1, desired_false=0)
    with pytest.raises(ValueError, match="^desired_false=nan must be finite and >= 0; the target "
                                         "spike count of the other neurons$"):
        spike_count_loss(np.zeros((1, 2)), np.array([0]), desired_true=1, desired_false=np.nan)
    with pytest.raises(TypeError, match="^desired_true must be a real number, got bool True"):
        spike_count_loss(np.zeros((1, 2)), np.array([0]), desired_true=True, desired_false=0)


def test_gamma_search():
    from evsnn.grad.gamma_search import search_gamma

    r = search_gamma(lambda g: -abs(g - 1.5), selection_index=[0, 1], evaluation_index=[2, 3])
    assert r.gamma == 1.5 and len(r.evaluated) == 7
    seen = []
    r = search_gamma(lambda g: seen.append(g) or -(g - 0.7) ** 2, selection_index=[0],
                     evaluation_index=[1], method="golden", iterations=30)
    assert abs(r.gamma - 0.7) < 1e-5 and len(seen) == 32
    with pytest.raises(ValueError, match=r"share 1 samples.*indices into one pool"):
        search_gamma(lambda g: 0.0, selection_index=[0, 1], evaluation_index=[1, 2])
    with pytest.raises(ValueError, match="selection_index is empty"):
        search_gamma(lambda g: 0.0, selection_index=[], evaluation_index=[1])
    with pytest.raises(ValueError, match="must be non-empty and positive"):
        search_gamma(lambda g: 0.0, selection_index=[0], evaluation_index=[1], grid=(0.0,))
    with pytest.raises(ValueError, match="must satisfy 0 < low < high"):
        search_gamma(lambda g: 0.0, selection_index=[0], evaluation_index=[1], method="golden",
                     bounds=(2.0, 1.0))
    with pytest.raises(ValueError, match="method='bisect' must be 'grid' or 'golden'"):
        search_gamma(lambda g: 0.0, selection_index=[0], evaluation_index=[1], method="bisect")


@pytest.mark.parametrize("layout", ["repeated view", "fortran order", "time-strided slice"])
def test_backward_and_simulate_do_not_depend_on_the_input_layout(layout):
    # the input gradient is written through a reshaped view of a fresh array; with the input's
    # own layout (np.empty_like) a non-C-ordered input left it unwritten. A view repeating one
    # frame over time also takes simulate's no-copy path.
    net = Network.mlp([6, 8, 4], LIF(lam=0.9, theta=0.5), rng=3, scale=2.5)
    rng = np.random.default_rng(0)
    frame = rng.random((5, 6))
    if layout == "repeated view":
        x = np.broadcast_to(frame, (6, 5, 6))
    elif layout == "fortran order":
        x = np.asfortranarray(rng.random((6, 5, 6)))
    else:
        x = rng.random((12, 5, 6))[::2]
    c = np.ascontiguousarray(x)
    res, res_c = simulate(net, x, record=True), simulate(net, c, record=True)
    for la, lb in zip(res.layers, res_c.layers):
        for field in ("current", "m", "v", "output"):
            np.testing.assert_array_equal(getattr(la, field), getattr(lb, field))
    g_out = rng.standard_normal(res.output.shape)
    got = backward(net, x, res, g_out, method="bptt")
    want = backward(net, c, res_c, g_out, method="bptt")
    np.testing.assert_array_equal(got.input, want.input)
    for a, b in zip(got.weights, want.weights):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("input_only", [True, False])
def test_snn_source_hart_precalculated_runs_from_time_sums(monkeypatch, input_only):
    """An attack source with ``method="hart", precalculate=True`` records time sums (no per-step
    state) and gives the step-by-step HART gradient."""
    import evsnn.attacks.sources as sources_module
    import evsnn.grad as grad_module
    from evsnn.attacks.sources import SNNSource

    rng = np.random.default_rng(8)
    net = _net(rng)
    x, y = rng.random((3, 6)), np.array([0, 3, 1])
    want = SNNSource(net, T=6, encoder="poisson", method="hart", input_only=input_only)(x, y, rng=4)
    records = []
    for module in (sources_module, grad_module):
        real = module.simulate

        def spy(*a, _real=real, **kw):
            records.append(kw.get("record"))
            return _real(*a, **kw)

        monkeypatch.setattr(module, "simulate", spy)
    got = SNNSource(net, T=6, encoder="poisson", method="hart", precalculate=True,
                    input_only=input_only)(x, y, rng=4)
    assert records == ["time_sums"]
    np.testing.assert_array_equal(got.loss, want.loss)
    _assert_sum_order(got.grad, want.grad)


@pytest.mark.parametrize("convention, expected, other", [
    ("DING2025_PAPER", Sigmoid(5.0, "paper"), Sigmoid(5.0, "code")),
    ("DING2025_CODE", Sigmoid(5.0, "code"), Sigmoid(5.0, "paper")),
    ("DEFAULT", Sigmoid(5.0, "code"), Sigmoid(5.0, "paper")),
    # Stable Eq. 18 (ω = 1) and the Stable/HART authors' STBP: the triangle (was the sigmoid)
    ("STABLE_PAPER", Triangle(1.0), Sigmoid(5.0, "code")),
    ("STABLE_CODE", Triangle(1.0), Sigmoid(5.0, "code")),
    ("HART_CODE", Triangle(1.0), Sigmoid(5.0, "code")),
])
def test_default_surrogate_follows_the_convention(convention, expected, other):
    """Without ``surrogate=``, ``bptt`` uses the convention's: ``Triangle(1.0)`` where it says
    "triangle", else ``Sigmoid(5, convention.sigmoid_scale)`` (Ding 2025 Eq. 17 for "paper");
    an explicit surrogate wins. The two sigmoid scales differ by the chain factor ρ = 5 inside
    the recursion, so the gradients differ."""
    from evsnn.attacks.sources import SNNSource

    rng = np.random.default_rng(11)
    net = _net(rng)
    x, y = rng.random((3, 6)), np.array([0, 1, 2])
    kw = dict(T=6, encoder="current", convention=convention)
    default = loss_and_grad(net, x, y, **kw)
    same = loss_and_grad(net, x, y, surrogate=expected, **kw)
    other = loss_and_grad(net, x, y, surrogate=other, **kw)
    for a, b in zip(default.grads.weights, same.grads.weights):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(default.image, same.image)
    assert not np.allclose(default.image, other.image)
    for input_only in (True, False):  # the attack source reads the same default
        src = SNNSource(net, T=6, encoder="current", convention=convention, input_only=input_only)
        ref_src = SNNSource(net, T=6, encoder="current", convention=convention,
                            surrogate=expected, input_only=input_only)
        np.testing.assert_array_equal(src(x, y).grad, ref_src(x, y).grad)


def test_default_surrogate_of_the_conv_backward_follows_the_convention():
    from evsnn.clock.conv import Conv2d, ConvNetwork, Flatten, Linear, Neuron

    rng = np.random.default_rng(2)
    net = ConvNetwork([Conv2d(rng.uniform(0, 0.6, (2, 1, 3, 3))), Neuron(LIF(lam=0.9, theta=0.5)),
                       Flatten(), Linear(rng.uniform(-0.5, 0.8, (3, 8))), Neuron(LIF(theta=0.5))],
                      input_shape=(1, 4, 4))
    x, y = rng.random((2, 1, 4, 4)), np.array([0, 2])
    kw = dict(T=5, encoder="current", convention="DING2025_PAPER")
    default = loss_and_grad(net, x, y, **kw).image
    np.testing.assert_array_equal(default, loss_and_grad(net, x, y, surrogate=Sigmoid(5.0, "paper"),
                                                         **kw).image)
    assert not np.allclose(default,
                           loss_and_grad(net, x, y, surrogate=Sigmoid(5.0, "code"), **kw).image)


# --------------------------------------------------------------------------- option validation
_BAD_OPTIONS = [
    # (method, options, exception, message)
    ("tempbp", dict(factor_clamp=-1), ValueError, r"factor_clamp=-1 must be > 0 \(inf "
     r"allowed\); the spike-time factor is clamp\(−1/ΔU, −factor_clamp, 0\), the authors use "
     r"factor_clamp=8.0"),
    ("tempbp", dict(factor_clamp=float("nan")), ValueError,
     r"factor_clamp=nan must be > 0 \(inf allowed\)"),
    ("tempbp", dict(factor_clamp=0.0), ValueError, r"factor_clamp=0.0 must be > 0 \(inf allowed\)"),
    ("tempbp", dict(factor_clamp="8"), TypeError,
     r"factor_clamp must be a real number, got str '8'; the spike-time"),
    ("tempbp", dict(factor_clamp=True), TypeError,
     r"factor_clamp must be a real number, got bool True"),
    ("tempbp", dict(fallback_rho=-5), ValueError, r"fallback_rho=-5 must be finite and > 0; "
     r"the low-trace fallback is a sigmoid of steepness ρ, the authors use fallback_rho=5.0"),
    ("tempbp", dict(fallback_rho=float("inf")), ValueError,
     r"fallback_rho=inf must be finite and > 0"),
    ("tempbp", dict(intra="yes"), TypeError, r"intra must be True or False, got 'yes'; pass "
     r"intra=True or intra=False"),
    ("bptt", dict(detach_reset="no"), TypeError, r"detach_reset must be True or False, got 'no'"),
    ("hart", dict(precalculate=1), TypeError, r"precalculate must be True or False, got 1"),
    ("rga", dict(precalculate=True), ValueError, r"precalculate=True is HART's pre-calculation "
     r"\(method='hart' only\), got method='rga': drop precalculate= or use method='hart'"),
    ("bptt", dict(precalculate=True), ValueError, r"precalculate=True .* got method='bptt'"),
    ("rate", dict(detach_reset=True), ValueError, r"detach_reset=True applies to method='bptt' "
     r"only; method='rate' has no gradient path through the reset .*: drop detach_reset= or use "
     r"method='bptt'"),
    ("bptr", dict(detach_reset=True), ValueError, r"detach_reset=True applies to method='bptt'"),
    ("hart", dict(detach_reset=True), ValueError,
     r"method='hart' already prunes ∂m\(t\+1\)/∂s\(t\)"),
    ("tempbp", dict(detach_reset=True), ValueError,
     r"method='tempbp' takes the reset into account"),
    ("bptt", dict(factor_clamp=8.0), ValueError, r"factor_clamp=8.0 is a Temp-BP option; "
     r"method='bptt' does not use it: drop factor_clamp= or use method='tempbp'"),
    ("hart", dict(intra=False), ValueError, r"intra=False is a Temp-BP option; method='hart'"),
    ("rga", dict(surrogate=Sigmoid(5.0)), ValueError, r"surrogate=Sigmoid\(rho=5.0, scale='code'\) "
     r"is not used by method='rga': only 'bptt' and 'hart' differentiate the spike with a "
     r"surrogate; drop surrogate="),
    ("tempbp", dict(surrogate=Triangle(1.0)), ValueError,
     r"not used by method='tempbp'.*fallback_rho="),
    ("tempbp", dict(kernel="exp"), ValueError, r"kernel='exp' is not a synaptic kernel; use "
     r"'trace' \(each layer's c\(1 − c\)\^k, c = Δt/τs\) or a 1-D array"),
    ("tempbp", dict(kernel=[]), ValueError, r"kernel=\[\] must be a non-empty 1-D array"),
    ("tempbp", dict(kernel=[0.5, float("nan")]), ValueError,
     r"kernel=\[0.5, nan\] must be a non-empty"),
    ("tempbp", dict(kernel=[[0.5]]), ValueError, r"must be a non-empty 1-D array of finite"),
    ("tempbp", dict(kernel=object()), TypeError, r"kernel must be 'trace' or a 1-D array"),
    ("bptt", dict(kernel="trace"), ValueError,
     r"kernel='trace' is a Temp-BP option; method='bptt'"),
    ("tempbp", dict(fallback="no"), TypeError, r"fallback must be True or False, got 'no'"),
    ("tempbp", dict(fallback_level=-1), ValueError, r"fallback_level=-1 must be finite and >= "
     r"0; the fallback applies where the trace is below fallback_level·Δt/τs; the authors use "
     r"fallback_level=0.25"),
    ("tempbp", dict(fallback_level=float("inf")), ValueError,
     r"fallback_level=inf must be finite and >= 0"),
    ("tempbp", dict(fallback_level="0.25"), TypeError,
     r"fallback_level must be a real number, got str '0.25'; the fallback"),
    ("tempbp", dict(fallback_scale="both"), ValueError, r"fallback_scale='both' is not a sigmoid "
     r"scale; use 'code' .* or 'paper'"),
    ("tempbp", dict(fallback=False, fallback_rho=1.0), ValueError, r"fallback_rho=1.0 sets the "
     r"low-trace fallback, which fallback=False switches off: "
     r"drop fallback_rho= or fallback=False"),
    ("rate", dict(fallback=False), ValueError,
     r"fallback=False is a Temp-BP option; method='rate'"),
]


def _trace_net(rng):
    return Network([Dense(rng.uniform(0, 0.8, (5, 6)), TraceLIF(tau_syn_ms=2.0, output="trace")),
                    Dense(rng.uniform(-1, 1, (4, 5)), TraceLIF(tau_syn_ms=2.0))])


@pytest.mark.parametrize("method, options, exc, match", _BAD_OPTIONS)
def test_method_options_are_validated(method, options, exc, match):
    """Every method option, through every entry point: backward, backward_conv, loss_and_grad
    and SNNSource (at construction)."""
    from evsnn.attacks.sources import SNNSource
    from evsnn.clock.conv import Conv2d, ConvNetwork, Neuron, simulate_conv
    from evsnn.grad.conv import backward_conv

    rng = np.random.default_rng(0)
    net = _trace_net(rng)
    seq = (rng.random((4, 2, 6)) < 0.5).astype(float)
    res = simulate(net, seq, record=True)
    g = np.ones(res.output.shape)
    with pytest.raises(exc, match=match):
        backward(net, seq, res, g, method=method, **options)
    with pytest.raises(exc, match=match):
        loss_and_grad(net, seq, np.array([0, 1]), method=method, **options)
    surrogate = options.pop("surrogate", None)
    with pytest.raises(exc, match=match):
        SNNSource(net, T=4, encoder="poisson", method=method, surrogate=surrogate, **options)
    cnet = ConvNetwork([Conv2d(np.full((1, 1, 1, 1), 0.7)), Neuron(TraceLIF(tau_syn_ms=2.0))],
                       (1, 2, 2))
    x = np.ones((4, 1, 1, 2, 2))
    cres = simulate_conv(cnet, x, record=True)
    with pytest.raises(exc, match=match):
        backward_conv(cnet, x, cres, np.ones(cres.output.shape), method=method,
                      surrogate=surrogate, **options)


def test_method_options_accept_their_ranges_and_unknown_names_fail():
    rng = np.random.default_rng(0)
    net = _trace_net(rng)
    seq = (rng.random((4, 2, 6)) < 0.5).astype(float)
    res = simulate(net, seq, record=True)
    g = rng.standard_normal(res.output.shape)
    a = backward(net, seq, res, g, method="tempbp", factor_clamp=np.inf, intra=np.bool_(False))
    b = backward(net, seq, res, g, method="tempbp", factor_clamp=1e300, intra=False)
    np.testing.assert_array_equal(a.input, b.input)  # inf: no clamp
    for method in ("rga", "bptr", "rate", "hart", "tempbp"):  # the off values pass everywhere
        backward(net, seq, res, g, method=method, detach_reset=False, precalculate=False)
    with pytest.raises(TypeError, match="unexpected keyword argument 'fallback_sigma'"):
        backward(net, seq, res, g, method="tempbp", fallback_sigma=1.0)


def test_a_kernel_array_no_layer_reads_is_refused():
    """Temp-BP's kernel= weights dL/d(trace) of the layers that emit their trace; on a network
    whose layers all emit spikes nothing reads it, and every entry point says so."""
    from evsnn.attacks.sources import SNNSource
    from evsnn.clock.conv import Conv2d, ConvNetwork, Neuron, simulate_conv
    from evsnn.grad.conv import backward_conv

    rng = np.random.default_rng(0)
    neuron = TraceLIF(tau_syn_ms=2.0, output="spike")
    spiking = Network([Dense(rng.uniform(0, 0.8, (5, 6)), neuron),
                       Dense(rng.uniform(-1, 1, (4, 5)), neuron)])
    seq = (rng.random((4, 2, 6)) < 0.5).astype(float)
    res = simulate(spiking, seq, record=True)
    g = rng.standard_normal(res.output.shape)
    match = (r"^kernel=\(0.5, 0.25\) weights the gradient of a trace output on its way to the "
             r"spikes, but no layer of this network emits its trace "
             r"\(TraceLIF\(output='trace'\)\), so no layer would read it: drop kernel=$")
    with pytest.raises(ValueError, match=match):
        backward(spiking, seq, res, g, method="tempbp", kernel=(0.5, 0.25))
    with pytest.raises(ValueError, match=match):
        loss_and_grad(spiking, seq, np.array([0, 1]), method="tempbp", kernel=(0.5, 0.25))
    with pytest.raises(ValueError, match=match):
        SNNSource(spiking, T=4, encoder="poisson", method="tempbp", kernel=(0.5, 0.25))
    cnet = ConvNetwork([Conv2d(np.full((1, 1, 1, 1), 0.7)), Neuron(neuron)], (1, 2, 2))
    x = np.ones((4, 1, 1, 2, 2))
    cres = simulate_conv(cnet, x, record=True)
    with pytest.raises(ValueError, match=match):
        backward_conv(cnet, x, cres, np.ones(cres.output.shape), method="tempbp",
                      kernel=(0.5, 0.25))
    # the layers' own kernel is the default, and read by none here either: accepted
    assert backward(spiking, seq, res, g, method="tempbp", kernel="trace").method == "tempbp"
    # one layer emitting its trace reads the array: accepted, and it changes the gradient
    traced = _trace_net(np.random.default_rng(0))
    res = simulate(traced, seq, record=True)
    a = backward(traced, seq, res, g, method="tempbp", kernel=(0.5, 0.25))
    b = backward(traced, seq, res, g, method="tempbp")
    assert not np.allclose(a.input, b.input)
    cnet = ConvNetwork([Conv2d(np.full((1, 1, 1, 1), 0.7)),
                        Neuron(TraceLIF(tau_syn_ms=2.0, output="trace"))], (1, 2, 2))
    cres = simulate_conv(cnet, x, record=True)
    backward_conv(cnet, x, cres, np.ones(cres.output.shape), method="tempbp", kernel=(0.5, 0.25))


# a value other than the default for every option of METHOD_OPTIONS
_SET_OPTION = dict(
    surrogate=Sigmoid(2.0), detach_reset=True, precalculate=True, factor_clamp=2.0,
    kernel=(0.5,), fallback=False, fallback_level=0.5, fallback_rho=2.0, fallback_scale="paper",
    intra=False, rule="code",
)


def test_method_options_is_the_table_of_every_option_and_its_readers():
    """METHOD_OPTIONS names every method option of backward and backward_conv, and an option
    set to a non-default value is accepted exactly by the methods it lists."""
    import inspect

    from evsnn.grad.backward import METHOD_OPTIONS, METHODS, _method_options
    from evsnn.grad.conv import backward_conv

    for fn in (backward, backward_conv):
        kw = {n for n, p in inspect.signature(fn).parameters.items() if p.kind == p.KEYWORD_ONLY}
        assert kw - {"method"} == set(METHOD_OPTIONS) == set(_SET_OPTION), fn.__name__
    conv = get_convention("DEFAULT")
    for name, value in _SET_OPTION.items():
        for method in METHODS:
            if method in METHOD_OPTIONS[name]:
                _method_options(method, conv, **{name: value})
            else:
                with pytest.raises(ValueError, match=f"method={method!r}"):
                    _method_options(method, conv, **{name: value})


def test_option_validation_reads_its_readers_from_method_options(monkeypatch):
    """Which methods take an option is written once, in METHOD_OPTIONS: a method added to an
    option's readers there is accepted, and the refusal names the readers listed there."""
    import importlib

    bw = importlib.import_module("evsnn.grad.backward")  # the module, not the function
    conv = get_convention("DEFAULT")
    monkeypatch.setitem(bw.METHOD_OPTIONS, "detach_reset", ("bptt", "hart"))
    monkeypatch.setitem(bw.METHOD_OPTIONS, "precalculate", ("hart", "rga"))
    monkeypatch.setitem(bw.METHOD_OPTIONS, "intra", ("tempbp", "rate"))
    assert bw._method_options("hart", conv, detach_reset=True)["detach_reset"]
    assert bw._method_options("rga", conv, precalculate=True)["precalculate"]
    assert not bw._method_options("rate", conv, intra=False)["intra"]
    with pytest.raises(ValueError, match=r"applies to method='bptt' or method='hart' only"):
        bw._method_options("rate", conv, detach_reset=True)
    with pytest.raises(ValueError, match=r"use method='tempbp' or method='rate'$"):
        bw._method_options("bptt", conv, intra=False)


def _code_tsslbp_backward(I, g_delta, tau_m, tau_s_net, threshold, spike_output):
    """The Ding 2025 authors' ``TSSLBP`` forward and backward (global_tools/training/functions/
    tsslbp.py, with glv.syn_a the trace of one spike) written out with NumPy for one layer whose
    input currents are ``I`` [T, ...]: returns dL/dI."""
    T = I.shape[0]
    th_m = 1 / tau_m
    tau_s = 1.0 if spike_output else tau_s_net
    mem = np.zeros(I.shape[1:])
    syn = np.zeros(I.shape[1:])
    du, outs, us, syns = [], [], [], []
    for t in range(T):
        upd = -th_m * mem + I[t]
        mem = mem + upd
        out = (mem > threshold).astype(float)
        us.append(mem)
        mem = mem * (1 - out)
        outs.append(out)
        du.append(upd)
        syn = syn + (out - syn) / tau_s
        syns.append(syn)
    syn_a = np.array([(1 - 1 / tau_s_net) ** k / tau_s_net for k in range(T)])
    syn_a = syn_a.reshape((T,) + (1,) * (I.ndim - 1))
    partial_a = syn_a / (-tau_s)
    th = 1 / (4 * tau_s)
    grad = np.zeros_like(I)
    theta = 0.0
    for t in range(T - 1, -1, -1):
        n = T - t
        out = outs[t]
        with np.errstate(divide="ignore"):
            partial_u = np.clip(-1 / du[t], -8, 0) * out
        g = np.sum(partial_u[None] * partial_a[:n] * g_delta[t:] * tau_s, axis=0)
        if t != T - 1:
            g = g + theta * us[t] * (-1) * th_m * partial_u
            g = g + theta * (1 - th_m) * (1 - out)
        theta = g * out + theta * (1 - out) * (1 - th_m)
        grad_a = np.sum(syn_a[:n] * g_delta[t:], axis=0)
        f = np.exp(np.clip((-us[t] + threshold) / 0.2, -8, 8))
        grad_a = grad_a * f / ((1 + f) * (1 + f) * 0.2)
        low = syns[t] < th
        g = np.where(low, grad_a, g)
        grad[t] = g
    return grad


@settings(max_examples=example_count(30))
@given(st.integers(0, 2**32 - 1), st.integers(1, 10), st.sampled_from([1.5, 2.0, 4.0, 10.0]),
       st.sampled_from([1.5, 2.0, 4.0, 10.0]), st.booleans())
def test_tempbp_rule_code_is_the_authors_tsslbp(seed, T, tau_m, tau_s, spike_output):
    """rule="code" against the authors' TSSLBP backward written out: one trace-LIF layer (Δt =
    1, hard reset to 0, spike on U > θ as their forward fires), random currents and upstream
    gradients, emitting its trace or its spikes."""
    rng = np.random.default_rng(seed)
    I = rng.uniform(-0.2, 1.6, (T, 2, 3))
    g_out = rng.standard_normal((T, 2, 3))
    neuron = TraceLIF(tau_mem_ms=tau_m, tau_syn_ms=tau_s, theta=1.0,
                      output="spike" if spike_output else "trace")
    net = Network([Dense(np.eye(3), neuron)])
    res = simulate(net, I, convention="DING2025_TEMPBP_CODE", record=True)
    got = backward(net, I, res, g_out, method="tempbp", rule="code").membrane[0]
    want = _code_tsslbp_backward(I, g_out, tau_m, tau_s, 1.0, spike_output)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.max(np.abs(want),
                                                                              initial=1.0))


def test_tempbp_rule_code_by_hand_and_refusals():
    """One neuron, τm = τs = 2, θ = 1, I = (1.5, 0.3, 1.2), dL/da = (0, 0, 1): spikes at steps
    0 and 2. The code: dL/dI = (0.2024, 0.2381, 0.4762) to four places (the silent step 1
    gets the carried gradient of the spike at step 2, decayed by λ = 0.5); Eq. 18-20:
    (0.1659, 0, 0.4762)."""
    net = Network([Dense([[1.0]], TraceLIF(tau_mem_ms=2.0, tau_syn_ms=2.0, theta=1.0))])
    I = np.array([1.5, 0.3, 1.2]).reshape(3, 1, 1)
    g = np.array([0.0, 0.0, 1.0]).reshape(3, 1, 1)
    res = simulate(net, I, convention="DING2025_TEMPBP_CODE", record=True)
    code = backward(net, I, res, g, method="tempbp", rule="code").membrane[0][:, 0, 0]
    eq = backward(net, I, res, g, method="tempbp").membrane[0][:, 0, 0]
    np.testing.assert_allclose(code, [0.2024, 0.2381, 0.4762], atol=5e-5)
    np.testing.assert_allclose(eq, [0.1659, 0.0, 0.4762], atol=5e-5)
    with pytest.raises(ValueError, match="rule='tssl' is not a Temp-BP rule"):
        backward(net, I, res, g, method="tempbp", rule="tssl")
    with pytest.raises(ValueError, match="rule='code' is a Temp-BP option; method='bptt'"):
        backward(net, I, res, g, method="bptt", rule="code")
