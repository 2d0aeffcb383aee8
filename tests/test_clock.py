"""Clock-mode simulator: kernel vs twin, an independent dense simulation, hand cases, errors."""

import importlib

import math

import numpy as np
import pytest
from conftest import (
    ATOL_TWIN,
    ATOL_TWIN_FLOAT32,
    RTOL_INDEPENDENT,
    RTOL_TWIN,
    RTOL_TWIN_FLOAT32,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from evsnn.clock import Dense, Network, simulate, spike_events
from evsnn.clock.simulate import (
    _all_finite, _constant_current, _count_nonfinite_kernel, _dense_layer,
)
from evsnn.conventions import DING2025_PAPER, HART_CODE, STABLE_CODE, STABLE_PAPER, get_convention
from evsnn.params import DLIF, IF, LIF, Readout, TraceLIF
from reference import clock as ref
from reference.clock import kernel_args, layer_cases, neurons
from reference.helpers import example_count

# the module (the package's name ``simulate`` is the function)
simulate_module = importlib.import_module("evsnn.clock.simulate")


# --------------------------------------------------------------------------- twin
@settings(max_examples=example_count(30))
@given(layer_cases(), st.sampled_from([(0, 5.0, 5.0), (0, 3.0, 1.0), (1, 0.7, 1.0)]),
       st.booleans())
# a membrane far below θ in float32: exp(−ρ(m − θ)) = exp(105) overflows to inf (σ = 0, the
# right limit, as in the kernel); the twin raised numpy's overflow RuntimeWarning (random hunt)
@example((Dense(np.array([[-20.0]], np.float32), LIF(lam=1.0, theta=1.0, reset="soft")),
          np.ones((1, 1, 1), np.float32), np.float32, False, 0, "leak"), (0, 5.0, 5.0), False)
def test_dense_layer_time_sums_match_twin(case, surrogate, booleans):
    """The time-sum mode (``simulate(..., record="time_sums")``): Σ_t ∂s/∂m(m[t]) accumulated
    in the forward kernel, against the twin; the output is the one of the plain run."""
    layer, x, dtype, spike_ge, delay, placement = case
    dtype = np.dtype(dtype)
    a = list(kernel_args(layer, x, dtype, spike_ge, delay, placement, record=False))
    b = list(kernel_args(layer, x, dtype, spike_ge, delay, placement, record=False))
    plain = list(kernel_args(layer, x, dtype, spike_ge, delay, placement, record=False))
    args = layer.neuron.kernel_args()
    if booleans and np.isin(x, (0, 1)).all():
        a[0] = x != 0
    kind, p, scale = surrogate
    shape = (x.shape[1], layer.n_out) if args.spiking else (0, 0)
    got, want = np.zeros(shape, dtype), np.zeros(shape, dtype)
    _dense_layer(*a, surrogate_sum=(kind, dtype.type(p), dtype.type(scale), got))
    ref._dense_layer_kernel(*b, None, kind, dtype.type(p), dtype.type(scale),
                            want if args.spiking else None)
    _dense_layer(*plain)
    np.testing.assert_array_equal(a[15], plain[15])
    if dtype == np.float64:
        np.testing.assert_allclose(got, want, rtol=RTOL_TWIN, atol=ATOL_TWIN)
    else:  # float32 exp: numba's and NumPy's may differ by an ulp
        np.testing.assert_allclose(got, want, rtol=RTOL_TWIN_FLOAT32, atol=ATOL_TWIN_FLOAT32)
    if args.spiking and dtype == np.float64:  # the sums are those of the recorded membrane
        rec = list(kernel_args(layer, x, dtype, spike_ge, delay, placement, record=True))
        _dense_layer(*rec)
        u = rec[17] - args.theta  # m before reset
        if kind == 0:
            sig = 1.0 / (1.0 + np.exp(-p * u))
            d = scale * sig * (1.0 - sig)
        else:
            d = np.maximum(0.0, p - np.abs(u)) / p**2
        np.testing.assert_allclose(got, d.sum(axis=0), rtol=RTOL_TWIN, atol=ATOL_TWIN)


@given(layer_cases(), st.sampled_from([(0, 5.0, 1.0), (1, 1.0, 1.0)]))
def test_time_sums_with_a_constant_current_equal_the_event_path(case, surrogate):
    """simulate(record="time_sums") on a time-constant input gives the kernel a ready current
    (``cur_const``) as well as the sums to fill: the same sums and output, bit for bit, as the
    event loop on the same input (the current is the same number either way)."""
    layer, x, dtype, spike_ge, delay, placement = case
    dtype = np.dtype(dtype)
    x = np.repeat(x[:1], x.shape[0], axis=0)  # every step equal to the first
    args = layer.neuron.kernel_args()
    shape = (x.shape[1], layer.n_out) if args.spiking else (0, 0)
    kind, p, scale = surrogate
    runs = []
    for const in (True, False):
        a = list(kernel_args(layer, x, dtype, spike_ge, delay, placement, record=False))
        cur = None
        if const:
            cur = np.empty((x.shape[1], layer.n_out), dtype)
            _constant_current(np.ascontiguousarray(a[0][0]), a[1], a[2], cur)
        sums = np.zeros(shape, dtype)
        _dense_layer(*a, cur_const=cur, surrogate_sum=(kind, dtype.type(p), dtype.type(scale),
                                                       sums))
        runs.append((a[15], sums))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


@given(layer_cases(), st.booleans(), st.booleans())
def test_dense_layer_matches_twin(case, record, booleans):
    # ``booleans``: a 0/1 input goes to the kernel as a bool raster and, for a plain spiking
    # layer (no trace) without recording, the kernel writes a bool output; the twin runs on floats
    layer, x, dtype, spike_ge, delay, placement = case
    a = list(kernel_args(layer, x, dtype, spike_ge, delay, placement, record=record))
    b = kernel_args(layer, x, dtype, spike_ge, delay, placement, record=record)
    args = layer.neuron.kernel_args()
    bool_out = (booleans and not record and args.spiking and args.trace_coef == 0
                and not args.emit_trace)
    if booleans and np.isin(x, (0, 1)).all():
        a[0] = x != 0
    if bool_out:
        a[15] = np.ones(a[15].shape, dtype=np.bool_)
    _dense_layer(*a)  # the samples split among the threads
    ref._dense_layer_kernel(*b)
    if bool_out:
        np.testing.assert_array_equal(a[15], b[15] != 0)
        return
    # without recording the kernel takes its fast path; only ``out`` is written then
    for got, want in zip(a[15:] if record else a[15:16], b[15:] if record else b[15:16]):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, rtol=RTOL_TWIN, atol=ATOL_TWIN, equal_nan=True)


@given(layer_cases(), st.sampled_from([("current",), ("v",), ("current", "v")]))
def test_kernel_leaves_empty_records_unwritten_and_the_rest_unchanged(case, unread):
    """Empty current or v records (``simulate(record="bptt")``: backward's BPTT reads neither):
    the kernel leaves them unwritten and writes every other array bit for bit as the full
    record does, in both the plain and the general loop; its twin too."""
    layer, x, dtype, spike_ge, delay, placement = case
    full = list(kernel_args(layer, x, dtype, spike_ge, delay, placement, record=True))
    part = list(kernel_args(layer, x, dtype, spike_ge, delay, placement, record=True))
    twin = list(kernel_args(layer, x, dtype, spike_ge, delay, placement, record=True))
    names = ("out", "current", "m", "v", "spikes", "trace")
    for name in unread:
        part[15 + names.index(name)] = np.zeros((0, 0, 0), np.dtype(dtype))
        twin[15 + names.index(name)] = np.zeros((0, 0, 0), np.dtype(dtype))
    _dense_layer(*full)
    _dense_layer(*part)
    ref._dense_layer_kernel(*twin)
    for k, name in enumerate(names):
        if name in unread:
            assert part[15 + k].shape == (0, 0, 0)
            continue
        np.testing.assert_array_equal(part[15 + k], full[15 + k])
        np.testing.assert_allclose(twin[15 + k], full[15 + k], rtol=RTOL_TWIN, atol=ATOL_TWIN,
                                   equal_nan=True)


def _assert_same_bits(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # zeros' signs too


@given(layer_cases(), st.integers(0, 2**32 - 1))
def test_record_bptt_leaves_out_current_and_v_and_keeps_the_rest_bit_for_bit(case, seed):
    """``simulate(record="bptt")``: the current and v of a layer are None (a DLIF layer keeps
    them: its factors' gradient reads one), every other record and the output are those of
    ``record=True`` bit for bit, for the drawn layer and a LIF layer on top of it (not on top
    of a readout, which comes last)."""
    layer, x, dtype, spike_ge, delay, placement = case
    top = Dense(np.random.default_rng(seed).normal(0.0, 1.0, (3, layer.n_out)),
                LIF(lam=0.8, theta=0.5))
    net = Network([layer, top] if layer.spiking else [layer])  # a readout comes last
    conv = get_convention("DEFAULT").with_(spike_test=">=" if spike_ge else ">",
                                           input_delay=delay, dlif_factor=placement)
    full = simulate(net, x.astype(dtype), convention=conv, record=True)
    lean = simulate(net, x.astype(dtype), convention=conv, record="bptt")
    _assert_same_bits(lean.output, full.output)
    for la, lb, lay in zip(lean.layers, full.layers, net.layers):
        for name in ("current", "m", "v", "spikes", "trace", "output"):
            got, want = getattr(la, name), getattr(lb, name)
            if name in ("current", "v") and lay.dlif_factors is None:
                assert got is None
            elif want is None:
                assert got is None
            else:
                _assert_same_bits(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("neuron, dlif", [(LIF(lam=0.9, theta=0.5), False),
                                          (TraceLIF(theta=0.5, output="trace"), False),
                                          (DLIF(lam=0.9, theta=0.5), True)])
def test_record_bptt_gives_backward_and_loss_and_grad_the_same_gradients(monkeypatch, dtype,
                                                                         neuron, dlif):
    """``backward`` with ``method="bptt"`` (``detach_reset`` either way) and ``"hart"`` on a
    ``record="bptt"`` run returns the gradients of the ``record=True`` run bit for bit (DLIF
    factors included), and :func:`evsnn.grad.loss_and_grad` records that way for those two
    methods only (what it returns is unchanged)."""
    import evsnn.grad as grad_pkg
    from evsnn.grad import backward, loss_and_grad

    rng = np.random.default_rng(5)
    net = Network([
        Dense(rng.normal(0.0, 1.0, (n_out, n_in)), neuron,
              dlif_factors=rng.uniform(0.5, 1.5, 4) if dlif else None)
        for n_in, n_out in ((6, 5), (5, 3))
    ])
    x = (rng.random((4, 3, 6)) < 0.4).astype(dtype)
    g = rng.normal(0.0, 1.0, (4, 3, 3)).astype(dtype)
    full = simulate(net, x, record=True)
    lean = simulate(net, x, record="bptt")
    for method, kw in (("bptt", {}), ("bptt", {"detach_reset": True}), ("hart", {})):
        a = backward(net, x, lean, g, method=method, **kw)
        b = backward(net, x, full, g, method=method, **kw)
        for got, want in [(a.input, b.input), *zip(a.weights, b.weights),
                          *zip(a.membrane, b.membrane),
                          *[(u, v) for u, v in zip(a.dlif_factors, b.dlif_factors) if dlif]]:
            _assert_same_bits(got, want)
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs.get("record"))
        return simulate(*args, **kwargs)

    y = np.array([0, 1, 2])
    for method in ("bptt", "hart", "rga"):
        want = loss_and_grad(net, x, y, method=method)
        monkeypatch.setattr(grad_pkg, "simulate", spy)
        got = loss_and_grad(net, x, y, method=method)
        monkeypatch.undo()
        assert seen.pop() == ("bptt" if method in ("bptt", "hart") else True)
        assert got.loss == want.loss
        _assert_same_bits(got.scores, want.scores)
        for u, v in [(got.grads.input, want.grads.input),
                     *zip(got.grads.weights, want.grads.weights)]:
            _assert_same_bits(u, v)


@pytest.mark.parametrize("neuron, method, reads", [
    (LIF(lam=0.9, theta=0.5), "rga", "current"), (LIF(lam=0.9, theta=0.5), "rate", "current"),
    (TraceLIF(theta=0.5, output="trace"), "tempbp", "v"),
])
def test_backward_refuses_a_record_bptt_run_for_a_method_reading_what_it_left_out(neuron, method,
                                                                                   reads):
    """RGA and HART's rate method read the current, Temp-BP reads v: on a ``record="bptt"`` run
    (which leaves both out) ``backward`` says so and how to record instead of failing inside a
    kernel. BPTR reads only the spikes and gives the ``record=True`` gradients bit for bit; a
    DLIF network keeps both records, so RGA runs on it."""
    from evsnn.grad import backward

    rng = np.random.default_rng(6)

    def net_of(neuron, dlif):
        return Network([
            Dense(rng.normal(0.0, 1.0, (n_out, n_in)), neuron,
                  dlif_factors=rng.uniform(0.5, 1.5, 4) if dlif else None)
            for n_in, n_out in ((6, 5), (5, 3))
        ])

    x = (rng.random((4, 3, 6)) < 0.4).astype(np.float64)
    g = rng.normal(0.0, 1.0, (4, 3, 3))
    net = net_of(neuron, False)
    with pytest.raises(ValueError, match=rf"method='{method}' reads each spiking layer's "
                       rf"recorded {reads}.*record='bptt'.*record=True"):
        backward(net, x, simulate(net, x, record="bptt"), g, method=method)
    for net, method in ((net_of(LIF(lam=0.9, theta=0.5), False), "bptr"),
                        (net_of(DLIF(lam=0.9, theta=0.5), True), "rga")):
        a = backward(net, x, simulate(net, x, record="bptt"), g, method=method)
        b = backward(net, x, simulate(net, x, record=True), g, method=method)
        for got, want in [(a.input, b.input), *zip(a.weights, b.weights)]:
            _assert_same_bits(got, want)


@given(layer_cases(), st.booleans())
def test_boolean_raster_runs_uncopied_and_equals_its_float_raster(case, record):
    # a bool spike raster (the spike encoders' dtype=bool) goes to the kernel as it is, and every
    # output and record equals the run on the same raster in floats, bit for bit; the "constant"
    # inputs of layer_cases become dense constant rasters, which take the blocked product
    layer, x, dtype, spike_ge, delay, placement = case
    spikes = x != 0
    conv = get_convention("DEFAULT").with_(
        spike_test=">=" if spike_ge else ">", input_delay=delay, dlif_factor=placement
    )
    seen = []
    real = simulate_module._dense_layer

    def spy(*args, **kwargs):
        seen.append(args[0].dtype)
        return real(*args, **kwargs)

    net = Network([layer])
    with pytest.MonkeyPatch.context() as m:
        m.setattr(simulate_module, "_dense_layer", spy)
        got = simulate(net, spikes, convention=conv, record=record, dtype=dtype)
    assert seen == [np.dtype(np.bool_)]
    want = simulate(net, spikes.astype(dtype), convention=conv, record=record, dtype=dtype)
    assert got.output.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got.output, want.output)
    for a, b in zip(got.layers or (), want.layers or ()):
        for name in ("current", "m", "v", "spikes", "trace", "output"):
            if getattr(b, name) is not None:
                np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@given(st.integers(0, 2**32 - 1),
       st.lists(neurons().filter(lambda n: not isinstance(n, Readout)), min_size=1, max_size=2),
       neurons(), st.booleans(), st.sampled_from([np.float64, np.float32]),
       st.sampled_from([0, 1]))
def test_unrecorded_hidden_spike_rasters_are_boolean_and_change_nothing(
    seed, hidden, last, binary_input, dtype, delay
):
    # without recording, a plain spiking hidden layer (no trace) writes its spikes as a bool
    # raster for the next layer; the output must equal the recorded run's (float rasters
    # throughout), bit for bit
    layer_neurons = hidden + [last]
    rng = np.random.default_rng(seed)
    sizes = [int(n) for n in rng.integers(1, 7, len(layer_neurons) + 1)]
    net = Network([
        Dense(rng.standard_normal((sizes[i + 1], sizes[i])) * 1.5, nrn,
              dlif_factors=rng.uniform(0.5, 1.5, 6) if isinstance(nrn, DLIF) else None)
        for i, nrn in enumerate(layer_neurons)
    ])
    x = rng.random((6, 3, sizes[0]))
    x = (x < 0.4).astype(dtype) if binary_input else x.astype(dtype)
    conv = get_convention("DEFAULT").with_(input_delay=delay)
    seen = []
    real = simulate_module._dense_layer

    def spy(*args, **kwargs):
        seen.append(args[15].dtype)  # out
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(simulate_module, "_dense_layer", spy)
        got = simulate(net, x, convention=conv)
    want = simulate(net, x, convention=conv, record=True)
    np.testing.assert_array_equal(got.output, want.output)
    assert got.output.dtype == np.dtype(dtype)
    for layer, out_dtype in zip(net.layers[:-1], seen):
        a = layer.neuron.kernel_args()
        plain = a.spiking and a.trace_coef == 0 and not a.emit_trace
        assert out_dtype == (np.dtype(np.bool_) if plain else np.dtype(dtype))


# --------------------------------------------------------------------------- independent
def _dense_reference_network(network, x, spike_ge, delay):
    """Step-major simulation with matrix products (a different algorithm and summation order)."""
    T, B, _ = x.shape
    states = [np.full((B, l.n_out), l.neuron.kernel_args().v_init) for l in network.layers]
    traces = [np.zeros((B, l.n_out)) for l in network.layers]
    prev_out = [np.zeros((B, l.n_out)) for l in network.layers]
    ms = [np.zeros((T, B, l.n_out)) for l in network.layers]
    outs = [np.zeros((T, B, l.n_out)) for l in network.layers]
    for t in range(T):
        layer_in = x[t - delay] if t - delay >= 0 else np.zeros_like(x[0])
        new_outs = []
        for li, layer in enumerate(network.layers):
            args = layer.neuron.kernel_args()
            cur = layer_in @ layer.weight.T
            m = args.lam * states[li] + cur
            ms[li][t] = m
            if args.spiking:
                s = (m >= args.theta) if spike_ge else (m > args.theta)
                s = s.astype(float)
                states[li] = np.where(s > 0, args.v_rest if args.hard_reset else m - args.theta, m)
                traces[li] = traces[li] + args.trace_coef * (s - traces[li])
                o = traces[li] if args.emit_trace else s
            else:
                states[li] = m
                o = m
            outs[li][t] = o
            new_outs.append(o)
            # with a delay, the next layer sees this layer's output of the previous step
            layer_in = prev_out[li] if delay else o
        prev_out = new_outs
    return ms, outs


@given(st.integers(0, 2**32 - 1), st.booleans(), st.sampled_from([0, 1]))
def test_network_matches_dense_step_major_simulation(seed, spike_ge, delay):
    rng = np.random.default_rng(seed)
    T, B, sizes = 8, 3, [7, 6, 5, 4]
    layers = [
        Dense(rng.standard_normal((6, 7)), LIF(lam=0.8, theta=0.7, reset="hard")),
        Dense(rng.standard_normal((5, 6)), TraceLIF(tau_mem_ms=4, tau_syn_ms=3, theta=0.5)),
        Dense(rng.standard_normal((4, 5)), Readout(lam=0.9)),
    ]
    net = Network(layers)
    assert [net.n_in] + [l.n_out for l in layers] == sizes
    x = (rng.random((T, B, 7)) < 0.4).astype(float)
    conv = get_convention("DEFAULT").with_(spike_test=">=" if spike_ge else ">", input_delay=delay)
    res = simulate(net, x, convention=conv, record=True)
    ms, outs = _dense_reference_network(net, x, spike_ge, delay)
    near_tie = any(np.any(np.abs(m - l.neuron.kernel_args().theta) < 1e-9)
                   for m, l in zip(ms[:-1], layers[:-1]))
    if near_tie:  # a different summation order may flip a spike at an exact tie
        return
    for li, rec in enumerate(res.layers):
        np.testing.assert_allclose(rec.m, ms[li], rtol=RTOL_INDEPENDENT, atol=1e-12)
        np.testing.assert_allclose(rec.output, outs[li], rtol=RTOL_INDEPENDENT, atol=1e-12)


# --------------------------------------------------------------------------- hand cases
def test_if_soft_reset_constant_current_hand_computed():
    # IF, θ = 1, constant input 0.3: U = 0.3, 0.6, 0.9, 1.2 -> spike, 0.5, 0.8, 1.1 -> spike,
    # 0.4, 0.7, 1.0 -> spike in exact arithmetic (floor(0.3·10) = 3 spikes).
    net = Network([Dense(np.array([[1.0]]), IF(theta=1.0))])
    x = np.full((10, 1, 1), 0.3)
    res = simulate(net, x, record=True)
    steps = np.flatnonzero(res.output[:, 0, 0])
    # In float64 (checked by hand in Python) the potential at t0 = 9 is 0.9999999999999998 < 1:
    # the third spike is lost to rounding. A reference must expose this, not hide it.
    np.testing.assert_array_equal(steps, [3, 6])
    assert res.layers[0].m[9, 0, 0] == 0.9999999999999998
    assert res.layers[0].m[9, 0, 0] < 1.0


def test_hard_reset_goes_to_v_rest_exactly_and_leak_acts_on_v():
    net = Network([Dense(np.array([[1.0]]), LIF(lam=0.5, theta=1.0, reset="hard", v_rest=-0.25))])
    x = np.array([1.5, 0.0, 1.0, 0.0]).reshape(4, 1, 1)
    rec = simulate(net, x, record=True).layers[0]
    # t0=0: m = 1.5 spike, v = -0.25; t0=1: m = -0.125; t0=2: m = -0.0625 + 1 = 0.9375 no spike
    np.testing.assert_array_equal(rec.m[:, 0, 0], [1.5, -0.125, 0.9375, 0.46875])
    np.testing.assert_array_equal(rec.spikes[:, 0, 0], [1, 0, 0, 0])
    np.testing.assert_array_equal(rec.v[:, 0, 0], [-0.25, -0.125, 0.9375, 0.46875])


def test_spike_test_convention_at_exact_threshold():
    net = Network([Dense(np.array([[0.5, 0.5]]), LIF(lam=1.0, theta=1.0, reset="hard"))])
    x = np.ones((1, 1, 2))
    # the recorded loop of a plain spiking layer has spike tests of its own
    for record in (False, True, "bptt"):
        assert simulate(net, x, convention=HART_CODE, record=record).output[0, 0, 0] == 1.0  # >=
        assert simulate(net, x, convention=DING2025_PAPER.with_(input_delay=0),
                        record=record).output[0, 0, 0] == 0.0


def test_trace_follows_ding_synaptic_dynamics():
    neuron = TraceLIF(dt_ms=1.0, tau_mem_ms=2.0, tau_syn_ms=2.0, theta=1.0, output="trace")
    net = Network([Dense(np.array([[2.0]]), neuron)])
    x = np.array([1.0, 0.0, 0.0]).reshape(3, 1, 1)
    rec = simulate(net, x, record=True).layers[0]
    # spike at t0=0 (m = 2), a = 0 + 0.5·(1 - 0) = 0.5, then a = 0.5 + 0.5·(0 - 0.5) = 0.25, 0.125
    np.testing.assert_array_equal(rec.trace[:, 0, 0], [0.5, 0.25, 0.125])
    np.testing.assert_array_equal(rec.output[:, 0, 0], [0.5, 0.25, 0.125])


@given(st.integers(0, 2**32 - 1))
def test_input_delay_shifts_output_by_one_step_per_layer(seed):
    rng = np.random.default_rng(seed)
    net = Network.mlp([5, 4, 3], LIF(lam=0.9, theta=0.5), rng=rng, scale=2.0)
    x = (rng.random((9, 2, 5)) < 0.5).astype(float)
    now = simulate(net, x, convention="HART_CODE").output
    late = simulate(net, x, convention=HART_CODE.with_(input_delay=1)).output
    np.testing.assert_array_equal(late[:2], 0.0)
    np.testing.assert_array_equal(late[2:], now[:-2])


def test_dlif_placements():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 6))
    x = (rng.random((7, 2, 6)) < 0.5).astype(float)
    a = rng.uniform(0.5, 1.5, 7)
    lif = Network([Dense(w, LIF(lam=0.8, theta=0.6))])
    ones = Network([Dense(w, DLIF(lam=0.8, theta=0.6), dlif_factors=np.ones(7))])
    for conv in (STABLE_PAPER, STABLE_CODE):  # a[t] = 1 is plain LIF under both placements
        np.testing.assert_array_equal(
            simulate(ones, x, convention=conv, record=True).layers[0].m,
            simulate(lif, x, convention=conv, record=True).layers[0].m,
        )
    dlif = Network([Dense(w, DLIF(lam=0.8, theta=0.6), dlif_factors=a)])
    leak = simulate(dlif, x, convention=STABLE_PAPER, record=True).layers[0]
    inp = simulate(dlif, x, convention=STABLE_CODE, record=True).layers[0]
    for t in range(1, 7):  # paper: m = 0.8 a[t] v + I ; code: m = 0.8 v + a[t] I
        np.testing.assert_allclose(leak.m[t], 0.8 * a[t] * leak.v[t - 1] + leak.current[t],
                                   rtol=1e-15)
        np.testing.assert_allclose(inp.m[t], 0.8 * inp.v[t - 1] + a[t] * inp.current[t],
                                   rtol=1e-15)


def test_float32_end_to_end_and_integer_rasters_default_to_float64():
    net = Network.mlp([4, 3, 2], LIF(lam=0.9, theta=0.3), rng=0)
    x32 = (np.random.default_rng(0).random((5, 2, 4)) < 0.5).astype(np.float32)
    res = simulate(net, x32, record=True)
    assert res.output.dtype == np.float32
    assert all(r.m.dtype == np.float32 for r in res.layers)
    assert simulate(net, x32.astype(bool)).output.dtype == np.float64
    assert simulate(net, x32, dtype=np.float64).output.dtype == np.float64


def test_spike_events_check_the_raster_the_sample_and_the_origin():
    """A review: sample(-1) returned an empty slice, sample(B) numpy's bare IndexError,
    times(1.0) float times, and a trace raster became events."""
    r = np.zeros((3, 2, 2))
    r[0, 1, 1] = r[2, 0, 0] = r[1, 1, 0] = 1
    ev = spike_events(r)
    assert [a.tolist() for a in ev.sample(1)] == [[0, 1], [1, 0]]
    assert ev.times(1).dtype == np.int64
    for b in (-1, 2):
        with pytest.raises(ValueError, match=rf"b={b} must be an integer in \[0, 1\]"):
            ev.sample(b)
    with pytest.raises(TypeError, match="origin must be an integer"):
        ev.times(1.0)
    with pytest.raises(ValueError, match=r"raster must hold spikes \(0 or 1 only\)"):
        spike_events(r * 0.25)
    assert spike_events(r.astype(bool)).steps.tolist() == ev.steps.tolist()


def test_spike_events_sorted_and_consistent_with_raster():
    rng = np.random.default_rng(1)
    net = Network.mlp([6, 5], LIF(lam=0.9, theta=0.4), rng=rng)
    res = simulate(net, (rng.random((10, 3, 6)) < 0.5).astype(float), record=True)
    ev = res.spike_events(0)
    raster = res.layers[0].spikes
    assert ev.offsets[-1] == raster.sum()
    for b in range(3):
        steps, neurons = ev.sample(b)
        assert np.all(np.diff(steps * 10 + neurons) > 0)
        rebuilt = np.zeros((10, 5))
        rebuilt[steps, neurons] = 1
        np.testing.assert_array_equal(rebuilt, raster[:, b])
    np.testing.assert_array_equal(ev.times(1), ev.steps + 1)


# --------------------------------------------------------------------------- errors
def test_simulate_errors():
    net = Network.mlp([3, 2], rng=0)
    with pytest.raises(TypeError, match="network must be an evsnn Network"):
        simulate("net", np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match=r"time-major \[T, B, N\]"):
        simulate(net, np.zeros((1, 3)))
    with pytest.raises(ValueError, match="T = 0"):
        simulate(net, np.zeros((0, 1, 3)))
    with pytest.raises(ValueError, match="inputs have 4 features but the network takes 3"):
        simulate(net, np.zeros((2, 1, 4)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        simulate(net, np.full((2, 1, 3), np.nan))
    with pytest.raises(TypeError, match="inputs must be numeric"):
        simulate(net, np.array([[["a", "b", "c"]]]))
    with pytest.raises(ValueError, match="dtype=float16 is not supported"):
        simulate(net, np.zeros((2, 1, 3)), dtype=np.float16)
    with pytest.raises(ValueError, match="not a known preset"):
        simulate(net, np.zeros((2, 1, 3)), convention="nope")
    # a layer without outputs simulated silently to an empty output
    with pytest.raises(ValueError, match=r"weight has shape \(0, 3\); every axis \(n_out, n_in\)"):
        Dense(np.ones((0, 3)), LIF())
    res = simulate(net, np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match="record=True"):
        res.spike_events()
    ro = Network([Dense(np.ones((2, 3)), Readout())])
    with pytest.raises(ValueError, match="non-spiking readout; it has no spikes"):
        simulate(ro, np.zeros((2, 1, 3)), record=True).spike_events()
    dl = Network([Dense(np.ones((2, 3)), DLIF(), dlif_factors=np.ones(2))])
    with pytest.raises(ValueError, match="dlif_factors has 2 entries but the input has T = 3"):
        simulate(dl, np.zeros((3, 1, 3)))
    with pytest.raises(ValueError, match="record='BPTT' is not valid; use False, True, 'bptt' "
                                         r"\(the per-step state backward\(method='bptt'\) reads\)"):
        simulate(net, np.zeros((2, 1, 3)), record="BPTT")
    with pytest.raises(TypeError,
                       match="record must be False, True, 'bptt' or 'time_sums', got float 1.5"):
        simulate(net, np.zeros((2, 1, 3)), record=1.5)
    from evsnn.grad import Triangle

    with pytest.raises(ValueError, match=r"surrogate=Triangle\(gamma=1.0\) is only read with "
                                         r"record='time_sums' \(.*\); drop it or pass"):
        simulate(net, np.zeros((2, 1, 3)), record="bptt", surrogate=Triangle(1.0))
    with pytest.raises(ValueError, match="origin=2 must be an integer in \\[0, 1\\]"):
        simulate(net, np.zeros((2, 1, 3)), record=True).spike_events().times(2)
    with pytest.raises(ValueError, match=r"raster must be \[T, B, N\]"):
        spike_events(np.zeros((2, 3)))


def test_layer_and_network_errors():
    with pytest.raises(ValueError, match="weight must be 2-D"):
        Dense(np.ones(3))
    with pytest.raises(TypeError, match="weight must hold real numbers"):
        Dense(np.ones((2, 2), dtype=bool))
    with pytest.raises(ValueError, match="weight holds NaN"):
        Dense(np.array([[np.inf]]))
    with pytest.raises(TypeError, match="neuron must be one of"):
        Dense(np.ones((2, 2)), neuron="lif")
    with pytest.raises(ValueError, match="bias has 3 entries but weight has 2 output rows"):
        Dense(np.ones((2, 2)), bias=np.ones(3))
    with pytest.raises(ValueError, match="a DLIF neuron needs dlif_factors"):
        Dense(np.ones((2, 2)), DLIF())
    # Network.mlp(..., DLIF()) fails here too: the message says how to build the layer
    with pytest.raises(ValueError, match=r"got None; build the layer as Dense\(weight, "
                                         r"DLIF\(...\), dlif_factors=np.ones\(T\)\)"):
        Network.mlp([3, 2], DLIF(), rng=0)
    with pytest.raises(ValueError, match="they apply to DLIF neurons only"):
        Dense(np.ones((2, 2)), LIF(), dlif_factors=np.ones(3))
    with pytest.raises(ValueError, match="layers is empty"):
        Network(())
    with pytest.raises(TypeError, match=r"layers\[0\] must be a Dense layer"):
        Network((np.ones((2, 2)),))
    with pytest.raises(ValueError, match=r"layers\[1\] takes 3 inputs but layers\[0\] emits 2"):
        Network((Dense(np.ones((2, 4))), Dense(np.ones((1, 3)))))
    with pytest.raises(ValueError, match=r"layers\[0\] is a non-spiking Readout"):
        Network((Dense(np.ones((2, 4)), Readout()), Dense(np.ones((1, 2)))))
    net = Network.mlp([3, 2], rng=0)
    with pytest.raises(ValueError, match="got 2 weight matrices for 1 layers"):
        net.with_weights([np.ones((2, 3)), np.ones((2, 2))])
    with pytest.raises(ValueError, match="needs at least an input and an output size"):
        Network.mlp([3])
    # as ANN.mlp checks them (mlp(64) was a bare len() error, a scale <= 0 and readout='no'
    # were taken)
    with pytest.raises(TypeError, match="sizes must be a sequence of layer widths"):
        Network.mlp(64)
    for scale in (-1.0, 0.0, math.nan):
        with pytest.raises(ValueError, match=r"scale=.* must be finite and > 0"):
            Network.mlp([3, 2], scale=scale)
    with pytest.raises(TypeError, match="readout must be True or False, got 'no'"):
        Network.mlp([3, 2], readout="no")
    w = net.layers[0].weight
    assert not w.flags.writeable
    assert net.with_weights([np.zeros((2, 3))]).layers[0].weight.sum() == 0


def test_time_sums_records_check_their_arrays():
    from evsnn.clock import LayerTimeSums, TimeSums
    from evsnn.grad import Triangle

    net = Network.mlp([4, 3, 2], rng=0)
    x = np.ones((5, 2, 4))
    sums = simulate(net, x, record="time_sums", surrogate=Triangle(1.0)).time_sums
    a, b = sums.layers  # input [2, 4] / surrogate [2, 3], input [2, 3] / surrogate [2, 2]
    assert TimeSums([a, b], Triangle(1.0)).layers == (a, b)  # a list is taken as a tuple
    f32 = a.input_sum.astype(np.float32)
    bad_layers = [
        (dict(input_sum=[[1.0]], surrogate_sum=None), TypeError,
         r"^input_sum must be a NumPy array \[B, n_in\], got list$"),
        (dict(input_sum=np.ones((2, 4), dtype=int), surrogate_sum=None), TypeError,
         r"^input_sum must be float32 or float64 \(the run's dtype\), got int64$"),
        (dict(input_sum=np.ones(4), surrogate_sum=None), ValueError,
         r"^input_sum must be 2-D \[B, n_in\], got shape \(4,\)$"),
        (dict(input_sum=a.input_sum, surrogate_sum=np.ones((1, 2, 3))), ValueError,
         r"^surrogate_sum must be 2-D \[B, n_out\], got shape \(1, 2, 3\)$"),
        (dict(input_sum=f32, surrogate_sum=a.surrogate_sum), TypeError,
         r"^surrogate_sum is float64 but input_sum is float32: the sums of one run share"),
        (dict(input_sum=a.input_sum, surrogate_sum=np.ones((3, 3))), ValueError,
         r"^surrogate_sum has shape \(3, 3\) and input_sum \(2, 4\): both need the run's "
         r"batch size B"),
    ]
    for kw, exc, match in bad_layers:
        with pytest.raises(exc, match=match):
            LayerTimeSums(**kw)
    bad_sums = [
        (dict(layers=a, surrogate=Triangle(1.0)), TypeError,
         r"^layers must be a tuple of LayerTimeSums, one per layer, got LayerTimeSums"),
        (dict(layers=(), surrogate=Triangle(1.0)), ValueError,
         r"^layers=\(\) is empty: pass one LayerTimeSums per layer$"),
        (dict(layers=(a, "b"), surrogate=Triangle(1.0)), TypeError,
         r"^layers\[1\] must be a LayerTimeSums, got str$"),
        (dict(layers=(a, LayerTimeSums(b.input_sum[:1], None)), surrogate=Triangle(1.0)),
         ValueError, r"^layers\[1\].input_sum is float64 \(1, 3\) but layers\[0\].input_sum "
         r"is float64 \(2, 4\): the layers of one run share its dtype and batch size$"),
        (dict(layers=(a, LayerTimeSums(b.input_sum.astype(np.float32), None)),
              surrogate=Triangle(1.0)), ValueError, r"^layers\[1\].input_sum is float32"),
        (dict(layers=(a, a), surrogate=Triangle(1.0)), ValueError,
         r"^layers\[0\].surrogate_sum has 3 neurons but layers\[1\].input_sum has 4 inputs"),
        (dict(layers=(a, b), surrogate="triangle"), TypeError,
         r"^surrogate must be the evsnn.grad.Sigmoid or Triangle the sums were taken with, got "
         r"str 'triangle'$"),
    ]
    for kw, exc, match in bad_sums:
        with pytest.raises(exc, match=match):
            TimeSums(**kw)


@given(st.integers(0, 2**32 - 1), st.integers(0, 300), st.sampled_from([np.float32, np.float64]))
def test_count_nonfinite_kernel_matches_numpys_isfinite(seed, n, dtype):
    # NaNs of either sign and payload, ±inf, the largest finite values, subnormals, ±0
    rng = np.random.default_rng(seed)
    info = np.finfo(dtype)
    specials = np.array([np.nan, -np.nan, np.inf, -np.inf, info.max, -info.max, info.tiny / 4,
                         -0.0, 0.0], dtype=dtype)
    x = np.where(rng.random(n) < 0.3, rng.choice(specials, n), rng.standard_normal(n)).astype(dtype)
    uint = np.uint32 if dtype == np.float32 else np.uint64
    mask = uint(0x7F800000) if dtype == np.float32 else uint(0x7FF0000000000000)
    got = _count_nonfinite_kernel(x.view(uint), mask)
    assert got == ref._count_nonfinite_kernel(x.view(uint), mask)
    assert _all_finite(x) == bool(np.all(np.isfinite(x)))
    # a non-contiguous view takes NumPy's path
    assert _all_finite(x[::2]) == bool(np.all(np.isfinite(x[::2])))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_on_the_threads_pieces_finds_every_position(dtype):
    """From ``_FINITE_SPLIT`` values on, ``_all_finite`` counts pieces on the threads: a single
    NaN or inf is found wherever it sits (first, middle, last value)."""
    n = simulate_module._FINITE_SPLIT * 2 + 3
    x = np.random.default_rng(0).standard_normal(n).astype(dtype)
    assert _all_finite(x)
    for pos in (0, n // 2, n - 1):
        for bad in (np.nan, np.inf):
            y = x.copy()
            y[pos] = bad
            assert not _all_finite(y)
            assert not _all_finite(y.reshape(1, -1, 1))  # the raster's shape, C-contiguous


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_simulate_rejects_infinite_inputs(bad, dtype):
    x = np.zeros((2, 1, 3), dtype=dtype)
    x[1, 0, 2] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        simulate(Network.mlp([3, 2], rng=0), x)


def test_simulate_with_scratch_arrays_reuses_them_and_computes_the_same():
    net = Network.mlp([6, 8, 3], LIF(lam=0.9, theta=0.5), rng=1, scale=2.0)
    rng = np.random.default_rng(0)
    first = None
    for x in ((rng.random((5, 4, 6)) < 0.4).astype(float), rng.random((5, 4, 6))):
        got = simulate(net, x, record=True, _scratch_owner="test-simulate")
        want = simulate(net, x, record=True)
        np.testing.assert_array_equal(got.output, want.output)
        for a, b in zip(got.layers, want.layers):
            for name in ("current", "m", "v", "spikes"):
                np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        if first is None:
            first = got
        else:  # the second run wrote into the first run's arrays
            assert np.shares_memory(got.output, first.output)
            assert np.shares_memory(got.layers[0].m, first.layers[0].m)


def test_a_bias_keeps_its_precision_beside_float32_weights():
    # the layers cast a bias to the weight's dtype when built, so a float64 bias of 0.1 beside
    # float32 weights ran as float32(0.1) even in a float64 run; now only the run casts it
    from evsnn.clock.conv import Conv2d, Linear
    w32 = np.ones((1, 1), np.float32)
    dense = Dense(w32, LIF(theta=10.0), bias=np.array([0.1]))
    assert dense.bias.dtype == np.float64 and dense.bias[0] == 0.1
    rec = simulate(Network([dense]), np.zeros((1, 1, 1)), record=True)
    assert rec.layers[0].current[0, 0, 0] == 0.1
    assert simulate(Network([dense]), np.zeros((1, 1, 1)), record=True,
                    dtype=np.float32).layers[0].current[0, 0, 0] == np.float32(0.1)
    for layer in (Linear(w32, bias=np.array([0.1])), Conv2d(w32[:, :, None, None],
                                                            bias=np.array([0.1]))):
        assert layer.bias.dtype == np.float64 and layer.bias[0] == 0.1
