"""Exact mode: closed forms, crossings vs brentq and an ODE solver, kernels vs twins, gradients vs
central finite differences, clock-mode convergence, encoders, decoders, flags and errors."""

import math

import mpmath
import numpy as np
import pytest
from conftest import ATOL_TWIN, RTOL_FINITE_DIFF, RTOL_TWIN
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

from evsnn.clock import Dense, Network
from evsnn.clock import simulate as clock_simulate
from evsnn.exact import (
    ExactDense,
    ExactNetwork,
    ExactNeuron,
    decode,
    encoders,
    loss_and_grad,
    simulate,
    spike_time_jacobian,
    vjp,
)
from evsnn.exact import kernels as K
from evsnn.exact.convergence import clock_inputs, clock_network, convergence
from evsnn.exact.encoders import InputEvents
from evsnn.exact.kernels import (
    _crossing_kernel,
    _neuron_backward_kernel,
    _neuron_kernel,
    _seg_kernel,
    _spike_node_kernel,
    _stationary_kernel,
)
from evsnn.exact.simulate import (
    TOL_T,
    TOL_V,
    _input_causes,
    _layer_backward_kernel,
    _layer_forward_kernel,
    _layer_input,
)
from evsnn.params import IF, LIF, Readout, TraceLIF
from reference import exact as ref
from reference.exact import spike_pattern
from reference.helpers import example_count, settled_difference, threshold_rounding

# Closed forms evaluated by the simulator against the same formula written out in the test:
# a few roundings of exp/log apart, hence 1e-12 (the requirement).
TOL_CLOSED = 1e-12
# Membrane against scipy's LSODA-free RK45 (DOP853) at rtol = atol = 1e-12: the integrator's
# global error over ~30 ms is ~1e-10; 1e-8 leaves margin (independent method, looser tolerance).
TOL_ODE = 1e-8
# A crossing against brentq(xtol=1e-15, rtol=4 eps): both bracket the same simple root; they may
# differ by the last few ulps of the time (~1e-15 at t ~ 10 ms).
TOL_BRENTQ = 1e-13
# Convergence: measured order of clock -> exact spike times must lie in this band (Euler and the
# step quantisation are both first order; the max-error statistic scatters around slope 1).
ORDER_BAND = (0.75, 1.25)


def _lif(syn="delta", **kw):
    kw.setdefault("tau_mem_ms", 10.0)
    kw.setdefault("tau_syn_ms", 10.0 if syn == "alpha" else 5.0)
    return ExactNeuron("lif", syn, **kw)


# --------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("i_r, tau", [(2.0, 10.0), (1.25, 2.0), (5.0, 7.5)])
def test_lif_constant_current_closed_form(i_r, tau):
    # V(t) = I R (1 - e^{-t/tau}) (Eq. 5 with U0 = 0, V(0) = 0); first crossing
    # tau ln(IR/(IR-theta))
    net = ExactNetwork([ExactDense([[i_r]], _lif(tau_mem_ms=tau))])
    t_star = tau * math.log(i_r / (i_r - 1.0))
    times = np.array([0.1, 0.5, 0.99]) * t_star
    res = simulate(net, encoders.current([[1.0]], 2.5 * t_star), record_times=times)
    expect = i_r * (1 - np.exp(-times / tau))
    np.testing.assert_allclose(res.membrane[0][0, 0], expect, rtol=TOL_CLOSED, atol=0)
    spikes = res.layers[0].times
    # hard reset to 0: the same interval repeats
    np.testing.assert_allclose(spikes, t_star * np.arange(1, spikes.size + 1), rtol=TOL_CLOSED)
    assert spikes.size == 2


def test_if_constant_current_with_refractory_closed_form():
    # IF: V = I t / C; spike at C theta / I, clamped for t_ref, then again
    nrn = ExactNeuron("if", "delta", c_mf=2.0, theta=1.5, t_ref_ms=0.7)
    net = ExactNetwork([ExactDense([[3.0]], nrn)])
    res = simulate(net, encoders.current([[0.5]], 10.0), record_times=[2.2, 2.5, 3.2])
    period = 2.0 * 1.5 / 1.5  # I = 3 * 0.5 = 1.5
    expect = np.array([period, 2 * period + 0.7, 3 * period + 1.4])  # next would be 10.1 > 10
    np.testing.assert_allclose(res.layers[0].times, expect, rtol=TOL_CLOSED)
    # 2.2 and 2.5 lie in the refractory period [2.0, 2.7) (clamped at 0); at 3.2 the membrane
    # has integrated for 0.5 ms: 1.5 * 0.5 / 2
    np.testing.assert_allclose(res.membrane[0][0, 0], [0.0, 0.0, 0.375], rtol=TOL_CLOSED, atol=0)


def test_delta_synapse_lif_closed_form_and_soft_reset():
    # two input spikes at 2 and 5 ms with jumps 0.8 and 0.9: V(5-) = 0.8 e^{-3/tau}; spike at 5 if
    # 0.8 e^{-0.3} + 0.9 >= 1 (yes: 1.4927); soft reset leaves 0.4927
    nrn = _lif("delta", reset="soft")
    ev = encoders.ttfs([[0.8, 0.5]], 10.0)  # times 2, 5
    net = ExactNetwork([ExactDense([[0.8, 0.9]], nrn)])
    res = simulate(net, ev, record_times=[4.0, 5.0, 7.0])
    v5 = 0.8 * math.exp(-0.3) + 0.9 - 1.0
    expect = [0.8 * math.exp(-0.2), v5, v5 * math.exp(-0.2)]
    np.testing.assert_allclose(res.membrane[0][0, 0], expect, rtol=TOL_CLOSED)
    np.testing.assert_array_equal(res.layers[0].times, [5.0])


@pytest.mark.parametrize(
    "syn, tau_s", [("exponential", 3.0), ("exponential", 25.0), ("alpha", 10.0)]
)
def test_synaptic_membrane_matches_ode_solver(syn, tau_s):
    tau_m = 10.0
    nrn = _lif(syn, tau_mem_ms=tau_m, tau_syn_ms=tau_s, theta=50.0, u0=-0.2, v_init=0.3)
    w = np.array([[1.5, -0.7, 2.0]])
    x = np.array([[0.9, 0.6, 0.25]])
    ev = encoders.ttfs(x, 10.0)  # events at 1, 4, 7.5 ms
    net = ExactNetwork([ExactDense(w, nrn)])
    times = np.linspace(0.0, 20.0, 41)
    res = simulate(net, ev, t_end_ms=20.0, record_times=times)
    # independent: integrate the ODE piecewise between events with DOP853
    t_ev, src = ev.sample(0)
    y = np.array([0.3, 0.0])
    rhs = lambda t, y: [(-(y[0] + 0.2) + y[1]) / tau_m, -y[1] / tau_s]
    edges = np.concatenate([[0.0], t_ev, [20.0]])
    out = np.empty(times.shape)
    for k in range(edges.size - 1):
        a, b = edges[k], edges[k + 1]
        sel = (times >= a) & ((times < b) | ((k == edges.size - 2) & (times <= b)))
        sol = solve_ivp(rhs, (a, b), y, method="DOP853", rtol=1e-12, atol=1e-12, dense_output=True)
        out[sel] = sol.sol(times[sel])[0]
        y = sol.y[:, -1].copy()
        if k < t_ev.size:
            y[1] += w[0, src[k]]
    np.testing.assert_allclose(res.membrane[0][0, 0], out, rtol=0, atol=TOL_ODE)


# --------------------------------------------------------------------------- crossings
@st.composite
def segments(draw):
    model = draw(st.sampled_from([0, 1]))
    syn = draw(st.sampled_from([1, 2] if model == 1 else [1]))
    tau_m = draw(st.floats(1.0, 20.0))
    # syn 1: τs away from τm, or within 1e-15 to 1e-3 of it (relative), where the kernels take
    # their closed forms for nearly equal constants
    near = (st.tuples(st.floats(-15, -3), st.sampled_from([-1.0, 1.0]))
            .map(lambda p: tau_m * (1 + p[1] * 10 ** p[0])).filter(lambda t: t != tau_m))
    tau_s = (tau_m if syn == 2
             else draw(st.one_of(st.floats(0.5, 30.0).filter(lambda t: abs(t - tau_m) > 0.05),
                                 near)))
    u0 = draw(st.floats(-0.5, 0.5))
    theta = 1.0
    v0 = draw(st.floats(-1.0, 0.99))
    i0 = draw(st.floats(-5.0, 8.0))
    ic = draw(st.floats(-0.5, 1.5))
    length = draw(st.floats(0.01, 40.0))
    return model, syn, tau_m, tau_s, 1.0, draw(st.floats(0.5, 3.0)), u0, theta, ic, v0, i0, length


@given(segments())
def test_crossing_matches_brentq_and_is_the_first(seg):
    model, syn, tau_m, tau_s, r, c, u0, theta, ic, v0, i0, length = seg
    s, _ = _crossing_kernel(model, syn, tau_m, tau_s, r, c, u0, theta, ic, v0, i0, length, 1e-9)
    f = lambda t: _seg_kernel(model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0, t, False)[0] - theta
    grid = np.linspace(0.0, length, 4001)
    vals = np.array([f(t) for t in grid])
    if s < 0:
        assert np.all(vals < 1e-9)
        return
    # first crossing: below threshold on a fine grid before it
    assert np.all(vals[grid < s * (1 - 1e-9)] < 1e-9)
    lo = grid[grid < s][-1] if np.any(grid < s) else 0.0
    if f(lo) < 0 and f(s) >= 0 and s - lo > 0:
        root = brentq(f, lo, s, xtol=1e-15, rtol=4 * np.finfo(float).eps)
        assert abs(root - s) <= TOL_BRENTQ * max(1.0, s)
    assert abs(f(s)) <= 1e-12 * max(1.0, abs(theta))


@given(segments())
def test_segment_kernels_match_twins(seg):
    model, syn, tau_m, tau_s, r, c, u0, theta, ic, v0, i0, length = seg
    for clamp in (False, True):
        np.testing.assert_allclose(
            _seg_kernel(model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0, length, clamp),
            ref._seg_kernel(model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0, length, clamp),
            rtol=RTOL_TWIN, atol=ATOL_TWIN,
        )
    a = _stationary_kernel(model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0)
    b = ref._stationary_kernel(model, syn, tau_m, tau_s, r, c, u0, ic, v0, i0)
    np.testing.assert_allclose(a, b, rtol=RTOL_TWIN, atol=ATOL_TWIN)
    a = _crossing_kernel(model, syn, tau_m, tau_s, r, c, u0, theta, ic, v0, i0, length, 1e-9)
    b = ref._crossing_kernel(model, syn, tau_m, tau_s, r, c, u0, theta, ic, v0, i0, length, 1e-9)
    np.testing.assert_allclose(a[0], b[0], rtol=RTOL_TWIN, atol=ATOL_TWIN)
    assert a[1] == b[1]


@pytest.mark.parametrize("typ, n_nd, n_spk, v, i", [(3, 0, 0, 0.0, 0.0), (4, 3, 2, -1.5, 2.25)])
@pytest.mark.parametrize("t", [0.0, 2.5, 19.75])
@pytest.mark.parametrize("before_end", [0.0, 5e-10, 1e-9, 1e-6])
def test_spike_node_matches_its_twin(typ, t, v, i, before_end, n_nd, n_spk):
    # the node record and the boundary flag; t_end is t plus 0 (at the end), a gap below or
    # exactly at tol_t (for t = 0) or a clear gap
    t_end = t + before_end
    outs = []
    for kern in (_spike_node_kernel, ref._spike_node_kernel):
        nd = [np.zeros(5, np.int64), np.zeros(5), np.zeros(5), np.zeros(5), np.zeros(5, np.int64)]
        spk = np.zeros(4)
        cause = np.zeros(4, np.int64)
        flag = kern(*nd, n_nd, spk, cause, n_spk, typ, t, v, i, 7, t_end, 1e-9)
        outs.append((flag, nd, spk, cause))
    (f1, nd1, s1, c1), (f2, nd2, s2, c2) = outs
    assert f1 == f2 == (K.FLAG_BOUNDARY if t_end - t <= 1e-9 else 0)
    for a, b in zip(nd1 + [s1, c1], nd2 + [s2, c2]):
        np.testing.assert_array_equal(a, b)
    assert (nd1[0][n_nd], nd1[1][n_nd], nd1[2][n_nd], nd1[3][n_nd], nd1[4][n_nd]) == (
        typ, t, v, i, n_spk)
    assert s1[n_spk] == t and c1[n_spk] == 7


@pytest.mark.parametrize("syn, tau_s", [(1, 1.0), (2, 3.0)])
def test_stationary_point_of_a_subnormal_current(syn, tau_s):
    # found by HYPOTHESIS_PROFILE=random (stop 21): i0 = 5e-324 makes the current's term
    # underflow to 0 (the twin divided by it: ZeroDivisionError; the kernel returned inf).
    # V is then one exponential, without an interior extremum.
    args = (1, syn, 3.0, tau_s, 1.0, 1.0, 0.5, 0.0, 0.0, 5e-324)
    assert _stationary_kernel(*args) == -1.0
    assert ref._stationary_kernel(*args) == -1.0


@pytest.mark.parametrize("tau_s, v0, i0", [
    (0.0005, 6.925401767128467e-06, 3.9398875e-317),  # tau_s < tau_m: q = 1.7e311, s < 0
    (0.1, -0.5, 4e-317),  # tau_s > tau_m: s = ln(q) / 10, about 72 ms
    (0.1, 0.5, 4e-317),  # a and b of one sign: q < 0
])
def test_stationary_point_of_a_subnormal_current_whose_quotient_overflows(tau_s, v0, i0):
    # found by a 1,200-example run (stop 41): with a subnormal i0 the current's term a is
    # subnormal but not 0, and q = -b tau_s / (a tau_m) overflowed (the twin's NumPy scalars
    # warned; the kernel got inf). Both now take ln q from the factors; mpmath is the reference.
    tau_m = 0.05
    args = (1, 1, tau_m, tau_s, 1.0, 1.0, 0.0, 0.0, np.float64(v0), np.float64(i0))
    with mpmath.workdps(60):
        a = mpmath.mpf(i0) * tau_s / (mpmath.mpf(tau_s) - tau_m)
        q = -(mpmath.mpf(v0) - a) * tau_s / (a * tau_m)
        s = mpmath.log(q) / (1 / mpmath.mpf(tau_m) - 1 / mpmath.mpf(tau_s)) if q > 0 else -1
        want = float(s) if s > 0 else -1.0
    for kern in (_stationary_kernel, ref._stationary_kernel):
        got = kern(*args)
        assert abs(got - want) <= 1e-14 * abs(want), (kern, got, want)


@pytest.mark.parametrize("ic, want", [(-1.0, -1.0), (-1e-320, -math.log(0.1))])  # tau_s = 1
def test_stationary_point_of_an_if_neuron_with_a_subnormal_current(ic, want):
    # IF, exponential synapse: V' = 0 where i0 e^{-s/tau_s} = -ic, s = -tau_s ln(-ic / i0); a
    # subnormal i0 = 1e-319 under ic = -1 overflowed the quotient (the twin warned, stop 42)
    args = (0, 1, 0.05, 1.0, 1.0, 1.0, 0.0, np.float64(ic), np.float64(0.5), np.float64(1e-319))
    for kern in (_stationary_kernel, ref._stationary_kernel):
        assert abs(kern(*args) - want) <= 1e-12, kern


def test_stationary_point_of_a_subnormal_alpha_current_is_none():
    # the alpha synapse's stationary point tau_m - b / k with k = 8e-316: b / k = -6e314
    # overflowed the same way; the point lies beyond 1e300 ms, so there is none in a segment
    args = (1, 2, 0.05, 0.05, 1.0, 1.0, 0.0, 0.0, np.float64(-0.5), np.float64(4e-317))
    assert _stationary_kernel(*args) == -1.0
    assert ref._stationary_kernel(*args) == -1.0


def test_stationary_point_is_where_the_slope_vanishes():
    # LIF, exponential synapse, one input at 0: extremum at ln(tau_m/tau_s)/(1/tau_s - 1/tau_m)
    s = _stationary_kernel(1, 1, 10.0, 5.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    assert abs(s - math.log(2.0) / 0.1) < 1e-12
    assert abs(_seg_kernel(1, 1, 10.0, 5.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, s, False)[1]) < 1e-15
    # alpha: the kernel s e^{-s/tau} peaks at tau
    assert abs(_stationary_kernel(1, 2, 4.0, 4.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0) - 4.0) < 1e-12


# --------------------------------------------------------------------------- generated networks
_SCALE = {("lif", "delta"): 0.9, ("lif", "exponential"): 6.0, ("lif", "alpha"): 4.0,
          ("if", "delta"): 0.7, ("if", "exponential"): 0.35}


@st.composite
def networks(draw, max_layers=3, max_width=4, readout=None):
    model, syn = draw(st.sampled_from(sorted(_SCALE)))
    reset = draw(st.sampled_from(["hard", "soft"]))
    t_ref = draw(st.sampled_from([0.0, 0.0, 0.6]))
    tau_m = draw(st.sampled_from([4.0, 10.0]))
    tau_s = tau_m if syn == "alpha" else draw(st.sampled_from([2.5, 7.0]))
    nrn = ExactNeuron(model, syn, tau_m, tau_s, 1.0, 1.0, 1.0, draw(st.sampled_from([0.0, -0.2])),
                      reset, t_ref, 0.0)
    n_layers = draw(st.integers(1, max_layers))
    n_in = draw(st.integers(2, 5))
    sizes = [n_in] + [draw(st.integers(1, max_width)) for _ in range(n_layers)]
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    is_readout = draw(st.booleans()) if readout is None else readout
    layers = []
    for k in range(n_layers):
        w = rng.uniform(-0.4, 1.0, (sizes[k + 1], sizes[k])) * _SCALE[(model, syn)]
        layers.append(ExactDense(w, nrn, readout=is_readout and k == n_layers - 1))
    enc = draw(st.sampled_from(["current", "ttfs", "ratesyn_start", "ratesyn_end", "poisson"]))
    B = draw(st.integers(1, 2))
    x = rng.uniform(0.05, 0.95, (B, n_in))
    if enc == "current":
        layers[0] = ExactDense(layers[0].weight * 2.5, nrn, readout=layers[0].readout)
    return ExactNetwork(layers), x, enc, int(rng.integers(0, 2**31))


def _encode(x, enc, seed):
    if enc == "poisson":
        return encoders.poisson(x, 10.0, rng=seed, max_rate_per_ms=0.6)
    if enc.startswith("ratesyn"):
        return encoders.encode(x, enc, 10.0, period_ms=2.5)
    return encoders.encode(x, enc, 10.0)


def _t_end(enc):
    return 10.0 if enc == "current" else 14.0


def _layer_args(layer):
    return layer.neuron.kernel_args()


@settings(max_examples=example_count(15))
@given(networks(max_layers=2, max_width=3))
def test_layer_kernels_match_twins(case):
    net, x, enc, seed = case
    inp = _encode(x, enc, seed)
    res = simulate(net, inp, t_end_ms=_t_end(enc))
    layer = net.layers[0]
    args = _layer_args(layer)
    B = x.shape[0]
    ic = inp.current @ layer.weight.T if inp.current is not None else np.zeros((B, layer.n_out))
    rec = np.array([0.0, 1.7, 5.0, 9.5])
    causes = _input_causes(inp)
    # room for every spike (simulate retries with more; a 1200-example run found 78 spikes in
    # one neuron, past the 64 this test once gave)
    cap = max(64, int(res.layers[0].counts.max(initial=0)) + 1)
    outs = []
    for kern in (_layer_forward_kernel, ref._layer_forward_kernel):
        spk = np.zeros((B, layer.n_out, cap))
        spk_cause = np.zeros((B, layer.n_out, cap), np.int64)
        n_spk = np.zeros((B, layer.n_out), np.int64)
        flags = np.zeros((B, layer.n_out), np.int64)
        vmax = np.zeros((B, layer.n_out))
        rec_v = np.zeros((B, layer.n_out, rec.size))
        kern(*args, not layer.readout, _t_end(enc), inp.offsets, inp.times, inp.sources, causes,
             layer.weight, ic, rec, 1e-9, 1e-9, 100, spk, spk_cause, n_spk, flags, vmax, rec_v)
        outs.append((spk, spk_cause, n_spk, flags, vmax, rec_v))
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=RTOL_TWIN, atol=ATOL_TWIN)
    # backward: a random cotangent on every spike and the readout maximum
    rng = np.random.default_rng(seed % 1000)
    g_spk = rng.standard_normal((B, layer.n_out, cap))
    g_max = rng.standard_normal((B, layer.n_out))
    grads = []
    for kern in (_layer_backward_kernel, ref._layer_backward_kernel):
        gw = np.zeros(layer.weight.shape)
        g_ic = np.zeros((B, layer.n_out))
        gt = np.zeros(inp.times.size)
        kern(*args, not layer.readout, _t_end(enc), inp.offsets, inp.times, inp.sources, causes,
             layer.weight, ic, 1e-9, 1e-9, cap, g_spk, g_max, gw, g_ic, gt)
        grads.append((gw, g_ic, gt))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=RTOL_TWIN, atol=ATOL_TWIN)
    assert res.layers[0].counts.sum() == outs[0][2].sum() or layer.readout


def _walk_with_twins(nrn_args, spiking, t_end, ic, ev_t, ev_src, w, movable, g_spk, g_max,
                     cap_nodes=40, cap_spk=None):
    """One neuron's walk (``_neuron_kernel``) and adjoint (``_neuron_backward_kernel``), run by
    the compiled kernels and by their twins; asserts the two agree (the walk's outputs, the
    nodes, spikes and spike causes it recorded, dL/dw, dL/d(input time), dL/d(constant
    current)) and returns the compiled side's ``(out, nodes, spikes, gw, gt)``. ``movable``:
    every input event is its own cause (encoder times that depend on pixels), else all fixed."""
    causes = np.arange(ev_t.size) if movable else np.full(ev_t.size, -1)
    sides = []
    for neuron, backward in ((_neuron_kernel, _neuron_backward_kernel),
                             (ref._neuron_kernel, ref._neuron_backward_kernel)):
        nd = [np.zeros(cap_nodes, np.int64), np.zeros(cap_nodes), np.zeros(cap_nodes),
              np.zeros(cap_nodes), np.zeros(cap_nodes, np.int64)]
        spk = np.zeros(len(g_spk) if cap_spk is None else cap_spk)
        spk_cause = np.zeros(spk.size, np.int64)
        out = neuron(*nrn_args, spiking, t_end, ic, ev_t, ev_src, causes, w, np.zeros(0), 1e-9,
                     1e-9, 100, *nd, spk, spk_cause, np.zeros(0))
        gw, gt = np.zeros(w.size), np.zeros(ev_t.size)
        a_ic = backward(*nrn_args[:9], ic, ev_src, *nd, out[0], g_spk, g_max, *out[4:8],
                        np.zeros(cap_nodes), np.zeros(cap_nodes), np.zeros(cap_nodes), gw, gt)
        n_nd, n_spk = out[0], out[1]
        sides.append((np.array(out, dtype=float), [a[:n_nd] for a in nd], spk[:n_spk], gw, gt,
                      a_ic, spk_cause[:n_spk]))
    for a, b in zip(*sides):
        if isinstance(a, list):
            for x, y in zip(a, b):
                np.testing.assert_allclose(x, y, rtol=RTOL_TWIN, atol=ATOL_TWIN)
        else:
            np.testing.assert_allclose(a, b, rtol=RTOL_TWIN, atol=ATOL_TWIN)
    return sides[0][:5]


def test_neuron_kernels_match_twins_directly():
    # one LIF neuron with an alpha synapse and refractoriness, three inputs: node arrays and the
    # adjoint walk of the compiled kernels against the twins
    nrn_args = (1, 2, 5.0, 5.0, 1.0, 1.0, 0.0, 1.0, True, 0.4, 0.0)
    out = _walk_with_twins(nrn_args, True, 12.0, 0.1, np.array([0.5, 1.0, 3.0, 3.0, 6.0]),
                           np.array([0, 1, 2, 0, 1]), np.array([3.0, 2.5, -1.0]), True,
                           np.ones(10), 0.0)[0]
    assert out[1] >= 2  # the case spikes (otherwise the comparison is empty)


# --------------------------------------------------------------------------- gradients vs FD
def _require(condition):
    assert condition


def _fd_case(net, x, enc, seed, with_readout, assume=assume):
    inp = _encode(x, enc, seed)
    t_end = _t_end(enc)
    res = simulate(net, inp, t_end_ms=t_end)
    assume(not np.any(res.flags))
    rng = np.random.default_rng(seed % 7919)
    coef = [rng.standard_normal(l.times.size) for l in res.layers]
    gmax = rng.standard_normal(res.readout_max.shape) if with_readout else None
    total = sum(c.size for c in coef)
    assume(total > 0 or with_readout)

    def objective(weights, xx):
        r = simulate(net.with_weights(weights), _encode(xx, enc, seed), t_end_ms=t_end)
        same = all(np.array_equal(a, b) for a, b in zip(spike_pattern(r), spike_pattern(res)))
        # two neurons' spikes that swap places in time swap their coefficients: a kink of this
        # objective, not of the spike times (a random run found two 1.8e-6 ms apart at h = 1e-6)
        same = same and all(np.array_equal(a.neurons, b.neurons)
                            for a, b in zip(r.layers, res.layers))
        if not same or np.any(r.flags):
            return None
        if max((np.max(np.abs(a.times - b.times), initial=0.0)
                for a, b in zip(r.layers, res.layers))) > 1e-3:
            return None  # a spike jumped (order of coincident-free events changed)
        val = sum(float(c @ l.times) for c, l in zip(coef, r.layers))
        if with_readout:
            val += float(np.sum(gmax * r.readout_max))
        return val

    g = vjp(res, coef, gmax)
    W = [l.weight for l in net.layers]
    dW = [rng.standard_normal(w.shape) for w in W]
    dx = (rng.standard_normal(x.shape) if enc in ("current", "ttfs", "poisson")
          else np.zeros(x.shape))
    norm = math.sqrt(sum(float(np.sum(d * d)) for d in dW) + float(np.sum(dx * dx)))
    dW = [d / norm for d in dW]
    dx = dx / norm
    an = sum(float(np.sum(gw * d)) for gw, d in zip(g.weights, dW)) + float(np.sum(g.x * dx))
    gnorm = math.sqrt(sum(float(np.sum(gw * gw)) for gw in g.weights) + float(np.sum(g.x ** 2)))
    tol = RTOL_FINITE_DIFF * max(gnorm, 1e-3)
    # the settled Richardson value is the oracle: a 1200-example run found 3 exponential-synapse
    # layers where the plain central difference at h = 1e-6 was 1.8e-5 off; it drifted with h
    # (-94.32502, -94.32513, -94.32545, -94.32653 at 1e-6 ... 3e-8, gradient -94.32676), a
    # near-tangent crossing that no step here resolves, so that case is not judged
    scale = sum(float(np.abs(c) @ np.abs(l.times)) for c, l in zip(coef, res.layers))
    scale += float(np.sum(np.abs(gmax * res.readout_max))) if with_readout else 0.0
    noise = threshold_rounding(net, inp, res, coef, gmax if with_readout else None)
    assume(noise is not None)  # a threshold a few ulps off changes the pattern: not judged
    fd = settled_difference(
        lambda s: objective([w + s * d for w, d in zip(W, dW)], x + s * dx), tol, scale, noise)
    assume(fd is not None)  # a step changed the spike pattern, or the quotient does not settle
    assert abs(fd - an) <= tol, (fd, an, gnorm)
    return gnorm


@settings(max_examples=example_count(60))
@given(networks(readout=False))
def test_spike_time_gradients_match_finite_differences(case):
    net, x, enc, seed = case
    _fd_case(net, x, enc, seed, with_readout=False)


@settings(max_examples=example_count(25))
@given(networks(max_layers=2, readout=True))
def test_readout_max_gradients_match_finite_differences(case):
    net, x, enc, seed = case
    _fd_case(net, x, enc, seed, with_readout=True)


@pytest.mark.parametrize("model, syn", sorted(_SCALE))
@pytest.mark.parametrize("enc", ["current", "ttfs", "poisson"])
def test_fixed_cases_have_nonzero_gradients_that_match(model, syn, enc):
    # deterministic cases that certainly spike, so the FD check above is not vacuous
    rng = np.random.default_rng(3)
    tau_s = 10.0 if syn == "alpha" else 5.0
    nrn = ExactNeuron(model, syn, tau_mem_ms=10.0, tau_syn_ms=tau_s)
    s = _SCALE[(model, syn)]
    w1 = rng.uniform(0.2, 1.0, (3, 4)) * s * (2.5 if enc == "current" else 1)
    net = ExactNetwork([ExactDense(w1, nrn), ExactDense(rng.uniform(0.3, 1.0, (2, 3)) * s, nrn)])
    x = rng.uniform(0.2, 0.9, (1, 4))
    res = simulate(net, _encode(x, enc, 11), t_end_ms=_t_end(enc))
    assert res.layers[-1].counts.sum() > 0 and not res.flags.any()
    gnorm = _fd_case(net, x, enc, 11, with_readout=False, assume=_require)
    assert gnorm > 1e-3


def test_loss_and_grad_first_spike_and_readout_match_fd():
    rng = np.random.default_rng(5)
    nrn = _lif("alpha")
    net = ExactNetwork([ExactDense(rng.uniform(0.5, 1.5, (4, 3)) * 4.0, nrn),
                        ExactDense(rng.uniform(0.6, 1.5, (3, 4)) * 4.0, nrn)])
    x = rng.uniform(0.3, 0.9, (2, 3))
    labels = np.array([0, 2])
    for readout in (False, True):
        n = net if not readout else ExactNetwork(
            [net.layers[0], ExactDense(net.layers[1].weight, nrn, readout=True)])
        dec = "max_membrane" if readout else "first_spike"
        g = loss_and_grad(n, encoders.ttfs(x, 10.0), labels, decoder=dec, t_end_ms=14.0)
        assert not g.flags.any()
        h = 1e-6
        d = rng.standard_normal(x.shape)
        lp = loss_and_grad(n, encoders.ttfs(x + h * d, 10.0), labels, decoder=dec, t_end_ms=14.0)
        lm = loss_and_grad(n, encoders.ttfs(x - h * d, 10.0), labels, decoder=dec, t_end_ms=14.0)
        fd = (lp.loss - lm.loss) / (2 * h)
        an = float(np.sum(g.x * d))
        assert abs(fd - an) <= RTOL_FINITE_DIFF * np.linalg.norm(g.x)
        dW = rng.standard_normal(n.layers[0].weight.shape)
        wp = n.with_weights([n.layers[0].weight + h * dW, n.layers[1].weight])
        wm = n.with_weights([n.layers[0].weight - h * dW, n.layers[1].weight])
        lp = loss_and_grad(wp, encoders.ttfs(x, 10.0), labels, decoder=dec, t_end_ms=14.0).loss
        lm = loss_and_grad(wm, encoders.ttfs(x, 10.0), labels, decoder=dec, t_end_ms=14.0).loss
        assert abs((lp - lm) / (2 * h) - float(np.sum(g.weights[0] * dW))) <= (
            RTOL_FINITE_DIFF * np.linalg.norm(g.weights[0]))


def test_count_decoder_gradient_is_zero_and_says_so():
    net = ExactNetwork([ExactDense([[2.0], [4.0]], ExactNeuron("if", "delta"))])
    g = loss_and_grad(net, encoders.current([[1.0]], 2.0), np.array([1]), decoder="count")
    assert g.zero_almost_everywhere
    assert g.scores.tolist() == [[4.0, 8.0]]  # 2 t / 1 and 4 t / 1 spikes at theta = 1 in [0, 2]
    assert not np.any(g.x) and not np.any(g.weights[0])


def test_first_spike_decoder_flags_silent_outputs():
    net = ExactNetwork([ExactDense([[2.0], [0.0]], ExactNeuron("if", "delta"))])
    g = loss_and_grad(net, encoders.current([[1.0]], 1.0), np.array([0]))
    assert g.scores.tolist() == [[-0.5, -1.0]] and g.flags[0] & K.FLAG_BOUNDARY


# --------------------------------------------------------------------------- flags
def _graze_weight():
    # LIF, exponential synapse, one input at t = 0: V peaks at w * 0.25 (tau_s = 5, tau_m = 10)
    return 4.0


@pytest.mark.parametrize("factor, spikes", [(1 + 1e-12, 1), (1 - 1e-12, 0)])
def test_tangential_crossing_and_near_miss_are_flagged(factor, spikes):
    net = ExactNetwork([ExactDense([[_graze_weight() * factor]], _lif("exponential"))])
    res = simulate(net, encoders.ttfs([[1.0]], 10.0), t_end_ms=30.0)
    assert res.layers[0].counts[0, 0] == spikes
    assert res.flags[0] & K.FLAG_GRAZING
    clear = simulate(ExactNetwork([ExactDense([[4.4]], _lif("exponential"))]),
                     encoders.ttfs([[1.0]], 10.0), t_end_ms=30.0)
    assert clear.flags[0] == 0 and clear.layers[0].counts[0, 0] == 1


def test_coincident_delta_spike_is_flagged_and_single_cause_is_not():
    nrn = _lif("delta")
    two = simulate(ExactNetwork([ExactDense([[0.6, 0.6]], nrn)]), encoders.ttfs([[0.5, 0.5]], 10.0))
    assert two.layers[0].counts[0, 0] == 1 and two.flags[0] & K.FLAG_COINCIDENT
    one = simulate(ExactNetwork([ExactDense([[1.2, 0.1]], nrn)]), encoders.ttfs([[0.5, 0.5]], 10.0))
    assert one.layers[0].counts[0, 0] == 1 and one.flags[0] == 0


def test_readout_tie_is_flagged():
    nrn = _lif("delta")
    # two equal jumps far apart after full decay: equal maxima at 0 and 9 ms... not equal (decay
    # between), so use equal jumps at a single time from two samples' view: two separate inputs
    # whose post-jump values coincide exactly: 0.5 at t=1, and 0.5 + (0.5 e^{-0.1}) ... instead
    # use a non-leaky IF readout where the membrane returns to the same value
    ifn = ExactNeuron("if", "delta")
    net = ExactNetwork([ExactDense([[0.5, -0.5, 0.5]], ifn, readout=True)])
    res = simulate(net, encoders.ttfs([[0.9, 0.7, 0.5]], 10.0))  # +0.5 at 1, -0.5 at 3, +0.5 at 5
    assert res.readout_max[0, 0] == 0.5 and res.flags[0] & K.FLAG_READOUT_TIE
    del nrn


# --------------------------------------------------------------------------- convergence
# seeds chosen (by a sweep over 0-3, reported in bench/RESULTS_exact.md) so that every spike
# count already matches at Δt = 0.1 ms; at Δt = 1 ms = tau/10 counts differ (not asserted)
@pytest.mark.parametrize("syn, enc, scale, seed", [
    ("delta", "ttfs", 0.9, 1), ("exponential", "ttfs", 2.5, 0), ("alpha", "current", 3.6, 1),
    ("delta", "current", 1.8, 1), ("alpha", "ttfs", 1.8, 0),
])
def test_clock_mode_converges_to_exact_mode_with_order_one(syn, enc, scale, seed):
    rng = np.random.default_rng(seed)
    nrn = _lif(syn, u0=0.0)
    w1 = rng.uniform(0.2, 1.0, (4, 5)) * scale
    s = scale / 2 if enc == "current" else scale
    net = ExactNetwork([ExactDense(w1, nrn), ExactDense(rng.uniform(0.3, 1.0, (3, 4)) * s, nrn)])
    x = rng.uniform(0.2, 0.9, (2, 5))
    inp = encoders.encode(x, enc, 10.0)
    data = convergence(net, inp, t_end_ms=10.0)
    assert simulate(net, inp).layers[-1].counts.sum() > 0
    assert np.all(data.counts_match[1:])
    assert np.all(np.diff(data.max_error_ms[1:]) < 0)
    assert data.max_error_ms[-1] < 5e-3
    assert ORDER_BAND[0] <= data.order <= ORDER_BAND[1], data


def test_clock_network_mapping():
    nrn = _lif("exponential", tau_mem_ms=10.0, tau_syn_ms=5.0, u0=-0.1)
    cnet = clock_network(ExactNetwork([ExactDense([[2.0]], nrn)]), 0.5)
    layer = cnet.layers[0]
    assert layer.neuron.lam == 0.95 and layer.neuron.trace_coef == 0.1
    assert layer.weight[0, 0] == 2.0 * 5.0 / 10.0  # R tau_s / tau_m
    assert layer.bias[0] == 0.05 * -0.1


# --------------------------------------------------------------------------- encoders
def test_encoders_times_counts_and_derivatives():
    ev = encoders.ttfs([[0.25, 0.0]], 8.0)
    assert ev.times.tolist() == [6.0, 8.0] and ev.dtime_dx.tolist() == [-8.0, -8.0]
    s = encoders.ratesyn_start([[0.0, 1.0]], 4.0, period_ms=2.0)
    assert s.times.tolist() == [0.0, 0.0, 2.0, 4.0] and s.sources.tolist() == [0, 1, 1, 1]
    e = encoders.ratesyn_end([[0.5]], 4.0, period_ms=1.0)
    assert e.times.tolist() == [2.0, 3.0, 4.0] and not np.any(e.dtime_dx)
    p1 = encoders.poisson([[0.5]], 50.0, rng=3)
    p2 = encoders.poisson([[0.25]], 50.0, rng=3)
    # reparameterised: the same unit draws, times scale with 1/x
    n = p2.times.size
    np.testing.assert_allclose(p2.times, 2 * p1.times[:n], rtol=1e-15)
    np.testing.assert_allclose(p1.dtime_dx, -p1.times / 0.5, rtol=1e-15)
    assert np.all(np.diff(p1.times) > 0) and p1.times.max() <= 50.0


def test_poisson_count_matches_rate():
    # mean count x * rate * t_enc = 0.4 * 1 * 100 = 40 per pixel; 500 pixels: sd of the mean
    # sqrt(40/500) = 0.28, the bound is 4 sd
    ev = encoders.poisson(np.full((1, 500), 0.4), 100.0, rng=1)
    assert abs(ev.times.size / 500 - 40.0) < 4 * math.sqrt(40 / 500)


def test_from_params_and_decode():
    n = ExactNeuron.from_params(TraceLIF(tau_mem_ms=10.0, tau_syn_ms=5.0, u0=0.0))
    assert (n.model, n.synapse, n.tau_syn_ms, n.reset) == ("lif", "exponential", 5.0, "hard")
    n = ExactNeuron.from_params(IF(theta=2.0))
    assert (n.model, n.synapse, n.reset, n.theta) == ("if", "delta", "soft", 2.0)
    net = ExactNetwork([ExactDense([[2.0], [4.0]], ExactNeuron("if", "delta"))])
    res = simulate(net, encoders.current([[1.0]], 1.0))
    np.testing.assert_array_equal(decode(res, "count"), [[2.0, 4.0]])
    np.testing.assert_allclose(decode(res, "first_spike"), [[-0.5, -0.25]], rtol=1e-15)
    np.testing.assert_allclose(res.layers[0].times, [0.25, 0.5, 0.5, 0.75, 1.0, 1.0], rtol=1e-15)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kw, exc, match", [
    (dict(model="adex"), ValueError, "model='adex'"),
    (dict(synapse="cuba"), ValueError, "synapse='cuba'"),
    (dict(reset="none"), ValueError, "reset='none'"),
    (dict(tau_mem_ms=-1.0), ValueError, "tau_mem_ms"),
    (dict(theta="1"), TypeError, "theta must be a real number"),
    (dict(t_ref_ms=-0.5), ValueError,
     r"^t_ref_ms=-0.5 must be finite and >= 0; the absolute refractory period, 0: none$"),
    (dict(t_ref_ms=np.inf), ValueError, r"^t_ref_ms=inf must be finite and >= 0"),
    (dict(u0=1.5), ValueError, "must lie below theta"),
    (dict(model="if", synapse="alpha", tau_syn_ms=10.0), ValueError, "needs model='lif'"),
    (dict(synapse="alpha", tau_syn_ms=5.0), ValueError, "tau_syn_ms == tau_mem_ms"),
    (dict(synapse="exponential", tau_syn_ms=10.0), ValueError, "tau_syn_ms != tau_mem_ms"),
])
def test_neuron_validation(kw, exc, match):
    with pytest.raises(exc, match=match):
        ExactNeuron(**kw)


@pytest.mark.parametrize("rel", [1e-6, 1e-9, 1e-12, 2e-16])
def test_exponential_synapse_near_tau_m_is_accepted_and_exact(rel):
    # Review finding: for 0 < |tau_s - tau_m| <= 1e-6 tau_m both synapses were refused, each
    # message recommending the other, so from_params(TraceLIF(tau_syn_ms=10.000001)) had no way
    # out. The exponential synapse is now accepted and its stationary point is written to keep
    # its digits there. Expected values: the closed form V(s) = w tau_s / (tau_s - tau_m)
    # (e^{-s/tau_s} - e^{-s/tau_m}) with the same float tau_s, solved with mpmath at 50 digits.
    tau_m, tau_s = 10.0, 10.0 * (1.0 + rel)
    assert tau_s != tau_m
    nrn = ExactNeuron.from_params(TraceLIF(tau_mem_ms=tau_m, tau_syn_ms=tau_s))
    assert nrn.synapse == "exponential" and nrn.tau_syn_ms == tau_s
    with mpmath.workdps(50):
        tm, ts = mpmath.mpf(tau_m), mpmath.mpf(tau_s)

        def v(w, t):
            return w * ts / (ts - tm) * (mpmath.exp(-t / ts) - mpmath.exp(-t / tm))

        t_spike = float(mpmath.findroot(lambda t: v(4, t) - 1, 2.0))
        t_peak = mpmath.findroot(lambda t: mpmath.diff(lambda u: v(2, u), t), 10.0)
        v_peak = float(v(2, t_peak))
    inp = encoders.ttfs([[1.0]], 30.0)  # one input at t = 0
    res = simulate(ExactNetwork([ExactDense([[4.0]], nrn)]), inp, t_end_ms=5.0)
    assert res.layers[0].times.size == 1
    assert abs(res.layers[0].times[0] - t_spike) <= 1e-12 * t_spike
    out = simulate(ExactNetwork([ExactDense([[2.0]], nrn, readout=True)]), inp)
    assert abs(out.readout_max[0, 0] - v_peak) <= 1e-14 and out.flags[0] == 0
    se = _stationary_kernel(1, 1, tau_m, tau_s, 1.0, 1.0, 0.0, 0.0, 0.0, 2.0)
    assert abs(se - float(t_peak)) <= 1e-12 * float(t_peak), (se, t_peak)


def test_clock_mapping_checks_tau_syn_only_where_the_synapse_uses_it():
    # Review finding: a delta-synapse LIF was refused over tau_syn_ms (ExactNeuron's default 5
    # ms), which its clock mapping (lam = 1 - dt / tau_m, W unchanged) never uses, and the
    # message did not echo the tau's value
    delta = ExactNetwork([ExactDense([[3.0]], ExactNeuron("lif", "delta", tau_mem_ms=20.0))])
    assert clock_network(delta, 8.0).layers[0].neuron.lam == pytest.approx(1 - 8.0 / 20.0)
    data = convergence(delta, encoders.current([[1.0]], 40.0), dts_ms=(8.0, 1.0, 0.1))
    assert data.counts_match[-1]
    with pytest.raises(ValueError, match=r"^dt_ms=21.0 exceeds layers\[0\].tau_mem_ms=20.0; use "
                                         r"dt_ms <= 20.0$"):
        clock_network(delta, 21.0)
    expo = ExactNetwork([ExactDense([[3.0]], ExactNeuron("lif", "exponential", tau_mem_ms=20.0,
                                                         tau_syn_ms=5.0))])
    with pytest.raises(ValueError, match=r"^dt_ms=8.0 exceeds layers\[0\].tau_syn_ms=5.0; use "
                                         r"dt_ms <= 5.0$"):
        clock_network(expo, 8.0)


def test_from_params_rejects_leaky_discrete_lif():
    with pytest.raises(TypeError, match="lam < 1 does not fix tau_m"):
        ExactNeuron.from_params(LIF(lam=0.9))


def test_layer_and_network_validation():
    with pytest.raises(TypeError, match="weight must hold real numbers"):
        ExactDense(np.array([["a"]]))
    with pytest.raises(ValueError, match="weight must be 2-D"):
        ExactDense(np.ones(3))
    with pytest.raises(ValueError, match="NaN or infinite"):
        ExactDense([[np.nan]])
    with pytest.raises(TypeError, match="neuron must be an ExactNeuron"):
        ExactDense([[1.0]], LIF())
    with pytest.raises(ValueError, match="layers is empty"):
        ExactNetwork(())
    with pytest.raises(TypeError, match=r"layers\[0\] must be an ExactDense"):
        ExactNetwork((1,))
    with pytest.raises(ValueError, match="shapes must chain"):
        ExactNetwork((ExactDense(np.ones((2, 3))), ExactDense(np.ones((1, 3)))))
    with pytest.raises(ValueError, match="only the last layer may be one"):
        ExactNetwork((ExactDense(np.ones((2, 3)), readout=True), ExactDense(np.ones((1, 2)))))
    net = ExactNetwork((ExactDense(np.ones((1, 2))),))
    with pytest.raises(ValueError, match="one each"):
        net.with_weights([])


def test_encoder_validation():
    with pytest.raises(TypeError, match="numeric array"):
        encoders.ttfs([["a"]], 10.0)
    with pytest.raises(ValueError, match=r"\[B, n_pixels\]"):
        encoders.ttfs([0.5], 10.0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        encoders.ttfs([[np.nan]], 10.0)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        encoders.ttfs([[2.0]], 10.0)
    with pytest.raises(TypeError, match="t_enc_ms must be a real number"):
        encoders.ttfs([[0.5]], "10")
    with pytest.raises(ValueError, match="t_enc_ms=0.0 must be finite and > 0"):
        encoders.ttfs([[0.5]], 0.0)
    with pytest.raises(TypeError, match="period_ms must be a real number"):
        encoders.ratesyn_start([[0.5]], 10.0, period_ms=None)
    with pytest.raises(ValueError, match="period_ms=-1.0"):
        encoders.ratesyn_end([[0.5]], 10.0, period_ms=-1.0)
    with pytest.raises(TypeError, match="max_rate_per_ms must be a real number"):
        encoders.poisson([[0.5]], 10.0, rng=0, max_rate_per_ms="1")
    with pytest.raises(ValueError, match="max_rate_per_ms=0"):
        encoders.poisson([[0.5]], 10.0, rng=0, max_rate_per_ms=0)
    with pytest.raises(TypeError, match="rng must be a seed"):
        encoders.poisson([[0.5]], 10.0, rng="seed")
    with pytest.raises(TypeError, match="method must be an encoder name"):
        encoders.encode([[0.5]], 3, 10.0)
    with pytest.raises(ValueError, match="not an exact-mode encoder"):
        encoders.encode([[0.5]], "rsc_fixed", 10.0)
    with pytest.raises(ValueError, match="pass rng="):
        encoders.encode([[0.5]], "poisson", 10.0)


def test_hand_built_input_events_are_checked_for_offsets_lengths_and_current():
    # Review finding: offsets [1, 3] silently dropped event 0, [0, 3, 1] ran and failed later in
    # vjp, and a current of one row for two samples read memory past its end (2.94e-310)
    net = ExactNetwork([ExactDense(np.array([[0.6, 0.6]]), ExactNeuron("lif", "delta"))])
    t, s, d = np.array([1.0, 2.0, 3.0]), np.array([0, 1, 0]), np.zeros(3)
    good = simulate(net, InputEvents(np.array([0, 3]), t, s, d, None, 2, 10.0))
    assert good.layers[0].times.size == 1
    for off in ([1, 3], [0, 3, 1], [0, 2], [0, 4], [0, 2, 1, 3]):
        with pytest.raises(ValueError, match=rf"^inputs.offsets = \[{', '.join(map(str, off))}\] "
                                             r"must start at 0, never fall and end at the number "
                                             r"of events, 3 .*mend the field$"):
            simulate(net, InputEvents(np.array(off), t, s, d, None, 2, 10.0))
    with pytest.raises(ValueError, match=r"^inputs.times, inputs.sources and inputs.dtime_dx must "
                                         r"have one length .* got 3, 2 and 3; build"):
        simulate(net, InputEvents(np.array([0, 3]), t, s[:2], d, None, 2, 10.0))
    with pytest.raises(ValueError, match=r"^inputs.dtime_dx must be a 1-D array"):
        simulate(net, InputEvents(np.array([0, 3]), t, s, d[None], None, 2, 10.0))
    with pytest.raises(ValueError, match=r"^inputs.current has shape \(1, 2\) but the inputs "
                                         r"hold B = 2 samples .* it must be \(2, 2\)"):
        simulate(net, InputEvents(np.array([0, 0, 0]), np.zeros(0), np.zeros(0, np.int64),
                                  np.zeros(0), np.ones((1, 2)), 2, 10.0))


def test_simulate_and_vjp_validation():
    net = ExactNetwork((ExactDense(np.ones((1, 2))),))
    inp = encoders.ttfs([[0.5, 0.5]], 10.0)
    with pytest.raises(TypeError, match="network must be an ExactNetwork"):
        simulate(None, inp)
    with pytest.raises(TypeError, match="inputs must be InputEvents"):
        simulate(net, np.ones((1, 2)))
    with pytest.raises(ValueError, match="3 features but the network takes 2"):
        simulate(net, encoders.ttfs([[0.5, 0.5, 0.5]], 10.0))
    with pytest.raises(TypeError, match="t_end_ms must be a real number"):
        simulate(net, inp, t_end_ms="5")
    with pytest.raises(ValueError, match="t_end_ms=-1.0 must be finite"):
        simulate(net, inp, t_end_ms=-1.0)
    with pytest.raises(ValueError, match="exceeds the current-coding window"):
        simulate(net, encoders.current([[0.5, 0.5]], 10.0), t_end_ms=11.0)
    with pytest.raises(ValueError, match="record_times must be a 1-D array"):
        simulate(net, inp, record_times=[-1.0])
    with pytest.raises(ValueError, match="sorted ascending"):
        simulate(net, inp, record_times=[2.0, 1.0])
    res = simulate(net, inp)
    with pytest.raises(TypeError, match="result must be an ExactResult"):
        vjp(None, [None])
    with pytest.raises(ValueError, match="one entry"):
        vjp(res, [])
    with pytest.raises(ValueError, match=r"grad_times\[0\] has shape"):
        vjp(res, [np.ones(7)])
    rnet = ExactNetwork((ExactDense(np.ones((1, 2)), readout=True),))
    with pytest.raises(ValueError, match="grad_max must be"):
        vjp(simulate(rnet, inp), [None], np.ones((3, 3)))
    # review (/tmp/rev_exact/errs.py): with a spiking last layer grad_max was dropped without a
    # word, whatever its shape, and the caller got zero gradients
    with pytest.raises(ValueError, match=r"^grad_max is dL/d\(readout maximum\), but the last "
                                         r"layer is not a readout"):
        vjp(res, [None], np.zeros((1, 1)))


def test_decoder_and_convergence_validation():
    net = ExactNetwork((ExactDense(np.ones((1, 2))),))
    rnet = ExactNetwork((ExactDense(np.ones((1, 2)), readout=True),))
    inp = encoders.ttfs([[0.5, 0.5]], 10.0)
    with pytest.raises(TypeError, match="result must be an ExactResult"):
        decode(None)
    with pytest.raises(ValueError, match="not a decoder"):
        decode(simulate(net, inp), "rate")
    with pytest.raises(ValueError, match="needs a readout last layer"):
        decode(simulate(net, inp), "max_membrane")
    with pytest.raises(ValueError, match="needs a spiking last layer"):
        decode(simulate(rnet, inp), "count")
    with pytest.raises(TypeError, match="network must be an ExactNetwork"):
        clock_network(None, 1.0)
    with pytest.raises(ValueError, match="is a readout"):
        clock_network(rnet, 1.0)
    refr = ExactNetwork((ExactDense(np.ones((1, 2)), _lif(t_ref_ms=1.0)),))
    with pytest.raises(ValueError, match="no refractory period"):
        clock_network(refr, 1.0)
    with pytest.raises(ValueError, match="exceeds layers"):
        clock_network(ExactNetwork((ExactDense(np.ones((1, 2)), _lif(tau_mem_ms=0.5)),)), 1.0)
    mixed = ExactNetwork((ExactDense(np.ones((1, 2)), _lif("delta")),
                          ExactDense(np.ones((1, 1)), _lif("alpha"))))
    with pytest.raises(ValueError, match="share one synapse type"):
        clock_network(mixed, 1.0)
    soft = ExactNetwork((ExactDense(np.ones((1, 2)), _lif("alpha", reset="soft")),))
    with pytest.raises(ValueError, match="TraceLIF, which is LIF with hard reset"):
        clock_network(soft, 1.0)


def test_spike_time_jacobian_rows_are_single_spike_gradients():
    rng = np.random.default_rng(2)
    nrn = _lif("alpha")
    net = ExactNetwork([ExactDense(rng.uniform(0.5, 1.5, (3, 3)) * 4.0, nrn)])
    x = rng.uniform(0.3, 0.9, (1, 3))
    res = simulate(net, encoders.ttfs(x, 10.0), t_end_ms=14.0)
    jac = spike_time_jacobian(res)
    assert jac.x.shape == (res.layers[0].times.size, 1, 3) and res.layers[0].times.size > 0
    # FD of the first spike time in one pixel direction
    h = 1e-6
    d = np.array([[1.0, -0.5, 0.25]])
    tp = simulate(net, encoders.ttfs(x + h * d, 10.0), t_end_ms=14.0).layers[0].times[0]
    tm = simulate(net, encoders.ttfs(x - h * d, 10.0), t_end_ms=14.0).layers[0].times[0]
    g = jac.x[0]
    assert abs((tp - tm) / (2 * h) - float(np.sum(g * d))) <= RTOL_FINITE_DIFF * np.linalg.norm(g)
    with pytest.raises(TypeError, match="result must be an ExactResult"):
        spike_time_jacobian(None)
    with pytest.raises(ValueError, match=r"^layer=5 must be an integer in \[-1, 0\] \(a layer "
                                         r"index\); -1 is the last layer$"):
        spike_time_jacobian(res, 5)
    with pytest.raises(ValueError, match=r"^layer=-2 must be an integer in \[-1, 0\]"):
        spike_time_jacobian(res, np.int64(-2))
    with pytest.raises(TypeError, match=r"^layer must be an integer \(a layer index\), got float "
                                        r"0.0"):
        spike_time_jacobian(res, 0.0)
    np.testing.assert_array_equal(spike_time_jacobian(res, np.int64(0)).x, jac.x)


def test_near_miss_at_window_end_is_flagged():
    # LIF with constant current I R = 2: V(t) = 2 (1 - e^{-t/10}) reaches theta = 1 at 10 ln 2;
    # ending the window there (to 1e-13) leaves the spike on the edge of the window
    net = ExactNetwork([ExactDense([[2.0]], _lif())])
    t_star = 10 * math.log(2.0)
    for t_end in (t_star * (1 - 1e-13), t_star * (1 + 1e-13)):
        res = simulate(net, encoders.current([[1.0]], t_end))
        assert res.flags[0] & K.FLAG_BOUNDARY
    res = simulate(net, encoders.current([[1.0]], 0.9 * t_star))
    assert res.flags[0] == 0 and res.layers[0].counts[0, 0] == 0


# -------------------------------------------------------------------------- readout maxima at kinks
# With exponential or alpha synapses the membrane is continuous at an input event but its slope
# drops by w R / tau_m (IF: w / C); for w < 0 the maximum can sit exactly at the event.
# Each case: (model, synapse, tau_s, the unit-weight membrane kernel K(s) and its slope K'(s))
# for one input at s = 0 -- by hand from the closed forms of Ding 2025 Eq. 4-5 (R = C = 1,
# tau_m = 10): exponential K = tau_s/(tau_s - tau_m) (e^{-s/tau_s} - e^{-s/tau_m}), alpha
# K = (s/tau) e^{-s/tau}, IF K = tau_s (1 - e^{-s/tau_s}).
_KINK_CASES = {
    "lif-exponential": ("lif", "exponential", 5.0,
                        lambda s: math.exp(-s / 10) - math.exp(-s / 5),
                        lambda s: -0.1 * math.exp(-s / 10) + 0.2 * math.exp(-s / 5)),
    "lif-alpha": ("lif", "alpha", 10.0, lambda s: s / 10 * math.exp(-s / 10),
                  lambda s: (1 - s / 10) / 10 * math.exp(-s / 10)),
    "if-exponential": ("if", "exponential", 5.0, lambda s: 5.0 * (1 - math.exp(-s / 5)),
                       lambda s: math.exp(-s / 5)),
}
# The membrane recorded at a time against the readout maximum found there: the same closed
# form evaluated from the same node (the found time t_node + s may differ from the event time by
# an ulp, moving V by |V'| * 1e-15); 1e-12 as for the closed forms.
TOL_AT_MAX = 1e-12


def _readout_argmax(net, inp, res):
    """The readout maxima's locations as the kernel reports them: per (sample, neuron) the key
    ``(kind, node, input event)`` and the time ``t_node + s``."""
    layer = net.layers[-1]
    model, syn, tau_m, tau_s, r, c, u0, theta, hard, t_ref, v_init = layer.neuron.kernel_args()
    off, times, src, causes = _layer_input(inp, res.layers[-2] if len(net.layers) > 1 else None)
    B = off.size - 1
    ic = np.zeros((B, layer.n_out))
    if len(net.layers) == 1 and inp.current is not None:
        ic = inp.current @ layer.weight.T
    keys, t_max = {}, np.zeros((B, layer.n_out))
    empty = np.zeros(0)
    for b in range(B):
        lo, hi = off[b], off[b + 1]
        cap = hi - lo + 8
        for i in range(layer.n_out):
            nd = [np.zeros(cap, np.int64), np.zeros(cap), np.zeros(cap), np.zeros(cap),
                  np.zeros(cap, np.int64)]
            out = _neuron_kernel(model, syn, tau_m, tau_s, r, c, u0, theta, hard, t_ref, v_init,
                                 False, res.t_end_ms, ic[b, i], times[lo:hi], src[lo:hi],
                                 causes[lo:hi], layer.weight[i], empty, TOL_V * max(1.0, theta),
                                 TOL_T, 0, *nd, np.zeros(1), np.zeros(1, np.int64), empty)
            node, kind, s_max, ev = out[4:8]
            keys[b, i] = (kind, node, ev)
            t_max[b, i] = nd[1][node] + s_max
    return keys, t_max, (off, times)


def _check_readout_max_against_membrane(net, inp, res, t_max, events):
    """readout_max is the largest recorded membrane (fine grid + every input event time) and is
    the recorded membrane at the found time."""
    off, times = events
    t_end = res.t_end_ms
    for b in range(t_max.shape[0]):
        ev = times[off[b]:off[b + 1]]
        grid = np.unique(np.concatenate([np.linspace(0.0, t_end, 2001), ev[ev <= t_end],
                                         t_max[b]]))
        mem = simulate(net, inp, t_end_ms=t_end, record_times=grid).membrane[-1][b]
        vmax = res.readout_max[b]
        scale = np.maximum(1.0, np.abs(vmax))
        assert np.all(mem.max(axis=1) <= vmax + TOL_AT_MAX * scale), (mem.max(axis=1), vmax)
        at = mem[np.arange(vmax.size), np.searchsorted(grid, t_max[b])]
        np.testing.assert_allclose(at, vmax, rtol=0, atol=TOL_AT_MAX * scale.max())


@pytest.mark.parametrize("case", sorted(_KINK_CASES))
def test_readout_maximum_at_a_negative_weight_kink(case):
    # weights [1, -3], TTFS [[0.9, 0.7]] with t_enc = 10: inputs at 1 and 3 ms. The membrane rises
    # after 1 ms (K' > 0) and falls after the -3 input (I < 0): its maximum is V(3) = K(2).
    # Before the fix the readout reported V(0) = 0.
    model, syn, tau_s, kern, slope = _KINK_CASES[case]
    nrn = ExactNeuron(model, syn, tau_mem_ms=10.0, tau_syn_ms=tau_s)
    net = ExactNetwork([ExactDense([[1.0, -3.0]], nrn, readout=True)])
    inp = encoders.ttfs([[0.9, 0.7]], 10.0)
    res = simulate(net, inp)
    assert res.flags[0] == 0
    assert abs(res.readout_max[0, 0] - kern(2.0)) <= TOL_CLOSED
    keys, t_max, events = _readout_argmax(net, inp, res)
    assert keys[0, 0][0] == 2 and keys[0, 0][2] == 1  # left limit at input event 1 (t = 3)
    assert abs(t_max[0, 0] - 3.0) <= 1e-15 * 3
    _check_readout_max_against_membrane(net, inp, res, t_max, events)
    # the gradient by hand: V(3) = w1 K(t2 - t1), t_k = (1 - x_k) t_enc, so dV/dw = [K(2), 0]
    # (w2 arrives at the maximum and has not acted yet), dV/dx = t_enc w1 K'(2) [1, -1]
    g = vjp(res, [None], np.ones((1, 1)))
    np.testing.assert_allclose(g.weights[0], [[kern(2.0), 0.0]], rtol=TOL_CLOSED, atol=TOL_CLOSED)
    np.testing.assert_allclose(g.x, [[10 * slope(2.0), -10 * slope(2.0)]], rtol=TOL_CLOSED,
                               atol=TOL_CLOSED)
    # and the twins walk the same nodes to the same maximum and adjoint
    gt = _walk_with_twins(nrn.kernel_args(), False, 10.0, 0.0, inp.times, inp.sources,
                          np.array([1.0, -3.0]), False, np.zeros(1), 1.0, cap_nodes=8)[4]
    np.testing.assert_allclose(gt, [-slope(2.0), slope(2.0)], rtol=TOL_CLOSED)


@st.composite
def kink_readouts(draw):
    """Readouts with exponential or alpha synapses and many negative weights (1 or 2 layers)."""
    model, syn, tau_s = draw(st.sampled_from([("lif", "exponential", 5.0),
                                              ("lif", "exponential", 2.5),
                                              ("lif", "alpha", 10.0), ("if", "exponential", 5.0)]))
    nrn = ExactNeuron(model, syn, 10.0, tau_s, 1.0, 1.0, 1.0,
                      draw(st.sampled_from([0.0, -0.2])), "hard", 0.0, 0.0)
    n_layers = draw(st.integers(1, 2))
    n_in = draw(st.integers(2, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    s = _SCALE[(model, syn)]
    enc = draw(st.sampled_from(["ttfs", "poisson"] + (["current"] if n_layers == 2 else [])))
    layers = []
    if n_layers == 2:
        width = draw(st.integers(2, 4))
        w = rng.uniform(-0.2, 1.0, (width, n_in)) * s * (2.5 if enc == "current" else 1.0)
        layers.append(ExactDense(w, nrn))
    n_cls = draw(st.integers(2, 3))
    w = rng.uniform(-1.2, 1.0, (n_cls, layers[-1].n_out if layers else n_in)) * s
    layers.append(ExactDense(w, nrn, readout=True))
    B = draw(st.integers(1, 3))
    x = rng.uniform(0.05, 0.95, (B, n_in))
    labels = rng.integers(0, n_cls, B)
    return ExactNetwork(layers), x, labels, enc, int(rng.integers(0, 2**31))


@settings(max_examples=example_count(30))
@given(kink_readouts())
def test_readout_max_loss_gradient_with_negative_weights_matches_finite_differences(case):
    net, x, labels, enc, seed = case
    t_end = _t_end(enc)
    inp = _encode(x, enc, seed)
    res = simulate(net, inp, t_end_ms=t_end)
    assume(not res.flags.any())
    keys, t_max, events = _readout_argmax(net, inp, res)
    _check_readout_max_against_membrane(net, inp, res, t_max, events)
    g = loss_and_grad(net, inp, labels, decoder="max_membrane", t_end_ms=t_end)
    assert not g.flags.any()
    rng = np.random.default_rng(seed % 7919)
    h = 1e-6

    def loss(weights, xx):
        n = net.with_weights(weights)
        i = _encode(xx, enc, seed)
        r = simulate(n, i, t_end_ms=t_end)
        same = all(np.array_equal(a.counts, b.counts) for a, b in zip(r.layers, res.layers))
        # skip samples whose argmax location (kind, node, event) changes under the perturbation
        assume(same and not r.flags.any() and _readout_argmax(n, i, r)[0] == keys)
        return loss_and_grad(n, i, labels, decoder="max_membrane", t_end_ms=t_end).loss

    W = [l.weight for l in net.layers]
    dW = [rng.standard_normal(w.shape) for w in W]
    fd = (loss([w + h * d for w, d in zip(W, dW)], x)
          - loss([w - h * d for w, d in zip(W, dW)], x)) / (2 * h)
    an = sum(float(np.sum(gw * d)) for gw, d in zip(g.weights, dW))
    gnorm = math.sqrt(sum(float(np.sum(gw * gw)) for gw in g.weights))
    assert abs(fd - an) <= RTOL_FINITE_DIFF * max(gnorm, 1e-3), (fd, an, gnorm)
    dx = rng.standard_normal(x.shape)  # every encoder drawn here moves with the pixels
    fd = (loss(W, x + h * dx) - loss(W, x - h * dx)) / (2 * h)
    an = float(np.sum(g.x * dx))
    assert abs(fd - an) <= RTOL_FINITE_DIFF * max(float(np.linalg.norm(g.x)), 1e-3), (fd, an)


def test_readout_tie_flag_needs_a_tie_of_the_final_maximum():
    # LIF delta readout at rest (V = 0 until the first input at 1 ms): V(0) and V(1-) tie at 0,
    # but the maximum, 1 + 0.5 e^{-0.2} at 3 ms, is unique -- not a tie (flagged before the fix)
    net = ExactNetwork([ExactDense([[1.0, 0.5]], _lif("delta"), readout=True)])
    res = simulate(net, encoders.ttfs([[0.9, 0.7]], 10.0))
    assert abs(res.readout_max[0, 0] - (0.5 + math.exp(-0.2))) <= TOL_CLOSED
    assert res.flags[0] == 0


# Clock vs exact membrane of an IF readout with exponential synapses fed by input events: the
# Euler trace and the quantisation of event times to the step grid are both O(Δt). Measured
# (this test's case): max error 5.8e-2, 5.2e-3, 5.8e-4 at Δt = 0.1, 0.01, 0.001 ms on a membrane
# of size 3.85, i.e. 1.5e-4 of it at 1 us; 1e-3 leaves margin. A wrong input factor (LIF's
# Δt R / tau_m = Δt / 10 instead of Δt / C = Δt / 2) is off by a fixed factor and never converges.
TOL_EULER_IF_READOUT = 1e-3


def test_clock_inputs_if_exponential_first_layer_converges_to_exact():
    # C dV/dt = W I_syn: Euler gives V[n] = V[n-1] + (Δt / C) W a[n], so clock_inputs' factor for
    # filtered input events must be Δt / C (not LIF's Δt R / tau_m)
    nrn = ExactNeuron("if", "exponential", tau_mem_ms=10.0, tau_syn_ms=4.0, c_mf=2.0)
    rng = np.random.default_rng(4)
    net = ExactNetwork([ExactDense(rng.uniform(-0.5, 1.0, (3, 4)), nrn, readout=True)])
    x = rng.uniform(0.2, 0.9, (2, 4))
    inp = encoders.ttfs(x, 10.0)
    errs = []
    for dt in (0.1, 0.01, 0.001):
        n_steps = int(round(12.0 / dt))
        seq, scale = clock_inputs(inp, net, dt, n_steps)
        assert scale == dt / 2.0
        cnet = Network((Dense(net.layers[0].weight * scale, Readout(lam=1.0)),))
        v_clock = clock_simulate(cnet, seq).output  # [T, B, n]: V at the end of step n
        grid = (np.arange(n_steps) + 1) * dt
        v_exact = simulate(net, inp, t_end_ms=12.0, record_times=grid).membrane[0]
        errs.append(float(np.max(np.abs(v_clock - np.moveaxis(v_exact, 2, 0)))))
    scale_v = float(np.max(np.abs(v_exact)))
    assert scale_v > 0.5  # the case is not trivially small
    assert errs[-1] < TOL_EULER_IF_READOUT * scale_v, errs
    order = np.polyfit(np.log([0.1, 0.01, 0.001]), np.log(errs), 1)[0]
    assert ORDER_BAND[0] <= order <= ORDER_BAND[1], (errs, order)


def test_soft_reset_above_threshold_fires_when_refractoriness_ends():
    # The case hypothesis found for test_spike_time_gradients_match_finite_differences (stop 21):
    # the jumps at 0 and 2.5 ms lift V to 2.42 and 2.16 >= 2 theta, so the soft reset leaves V
    # above theta, clamped through the refractory period. The neuron used to sit above threshold
    # unfired; the crossing search (which assumes V < theta at a segment's start) then put a
    # spurious spike at the end of the next segment (5 ms), reset V to 0 and dropped the events
    # there, and that spike's weight gradient was 3.73 where finite differences give 0. Now it
    # fires when the period ends (0.6 and 3.1 ms); every spike time is an input event's or a
    # refractory end's, so every weight derivative is 0.
    W = np.array([[0.44257173, -0.02006874, -0.30837336, -0.33917518],
                  [0.6647205, 0.79007203, 0.40436108, 0.55916567]])
    nrn = ExactNeuron("lif", "delta", 4.0, 2.5, 1.0, 1.0, 1.0, 0.0, "soft", 0.6, 0.0)
    net = ExactNetwork((ExactDense(W, nrn, readout=False),))
    x = np.array([[0.53926249, 0.89156518, 0.7842682, 0.05246465]])
    inp = encoders.encode(x, "ratesyn_start", 10.0, period_ms=2.5)
    res = simulate(net, inp, t_end_ms=14.0)
    assert not np.any(res.flags)
    np.testing.assert_array_equal(res.layers[0].times, [0.0, 0.6, 2.5, 3.1, 5.0, 7.5])
    h = 1e-6
    for k in range(6):
        coef = np.zeros(6)
        coef[k] = 1.0
        g = vjp(res, [coef], None).weights[0]
        for i, j in np.ndindex(*W.shape):
            d = np.zeros_like(W)
            d[i, j] = h
            t_p = simulate(net.with_weights([W + d]), inp, t_end_ms=14.0).layers[0].times[k]
            t_m = simulate(net.with_weights([W - d]), inp, t_end_ms=14.0).layers[0].times[k]
            assert abs(g[i, j] - (t_p - t_m) / (2 * h)) <= 1e-6, (k, i, j, g[i, j])
    # the spikes at refractory ends move with the spike that began the period: shifting every
    # input event by δ shifts every spike by δ (V rests before the first events), so each spike
    # time's input-time gradient sums to 1, through the refractory-end spikes' chain as well
    import dataclasses

    for k in range(6):
        coef = np.zeros(6)
        coef[k] = 1.0
        assert abs(float(np.sum(vjp(res, [coef], None).input_times)) - 1.0) <= 1e-12, k
    shifted = [simulate(net, dataclasses.replace(inp, times=inp.times + d), t_end_ms=14.0)
               for d in (1.0 + h, 1.0 - h)]  # (encoded times start at 0: none may go below)
    np.testing.assert_allclose((shifted[0].layers[0].times - shifted[1].layers[0].times) / (2 * h),
                               np.ones(6), rtol=0, atol=1e-6)
    # the kernels and their twins walk the same nodes (a refractory-end spike after each soft
    # reset that leaves V >= theta) to the same spikes and adjoint
    lo, hi = inp.offsets[0], inp.offsets[1]
    _, nodes, spikes, _, _ = _walk_with_twins(
        nrn.kernel_args(), True, 14.0, 0.0, inp.times[lo:hi], inp.sources[lo:hi], W[1], False,
        np.arange(1.0, 7.0), 0.0, cap_spk=16)
    # node types: 1 input, 4 spike at an instant, 5 refractory end (4 after 5: it fires)
    np.testing.assert_array_equal(nodes[0], [0, 1, 1, 1, 1, 4, 5, 4, 5, 1, 1, 1, 4, 5, 4, 5, 1, 1,
                                             1, 4, 5, 1, 1, 4, 5])
    np.testing.assert_array_equal(spikes, [0.0, 0.6, 2.5, 3.1, 5.0, 7.5])


def test_neuron_kernel_compiles_one_version_of_each_callee():
    """_neuron_kernel passes its callees int64 and bool values, not literals: numba compiles a
    callee once per literal value it is passed (``n_spk = 0`` and the node types 3 and 4 once
    made six versions of _spike_node_kernel). Compiled afresh (no cache, so that numba types its
    body and its calls), it adds no Literal signature to any kernel it calls."""
    import numba  # noqa: PLC0415  (only this test compiles outside evsnn._numba)

    from evsnn import _numba  # noqa: PLC0415

    fresh = numba.njit(cache=False, fastmath=_numba.FASTMATH, error_model=_numba.ERROR_MODEL)(
        K._neuron_kernel.py_func)
    args = ExactNeuron("lif", "exponential", tau_mem_ms=2.0, tau_syn_ms=1.0).kernel_args()
    cap, empty = 16, np.zeros(0)
    nd = [np.zeros(cap, np.int64), np.zeros(cap), np.zeros(cap), np.zeros(cap),
          np.zeros(cap, np.int64)]
    fresh(*args, False, 10.0, 0.0, np.array([1.0, 2.0]), np.array([0, 0]), np.array([0, 1]),
          np.array([3.0]), empty, 1e-9, 1e-9, 0, *nd, np.zeros(4), np.zeros(4, np.int64), empty)
    literal = [f"{name}{sig}" for name, obj in vars(K).items()
               if getattr(obj, "__evsnn_kernel__", False)
               for sig in obj.signatures if any("Literal" in str(a) for a in sig)]
    assert not literal, literal
