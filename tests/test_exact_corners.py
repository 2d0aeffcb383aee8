"""Exact mode at its corners: property tests whose strategies aim at the cases the generic
strategies of ``tests/test_exact.py`` rarely draw.

* input events at identical times (several inputs at once, an input at a spike time or at the end
  of a refractory period), at t = 0 and at the window's end;
* jumps of exactly theta, theta (1 +- 1e-12), 2 theta (1 +- 1e-12), >= 2 theta, negative and zero
  weights (for current synapses: the same multiples of the weight that just grazes theta);
* t_ref = 0 and t_ref longer than the gaps between inputs; hard and soft reset; u0 != 0; v_init
  just below theta; tau_s within 2e-6 of tau_m (the two-exponential formula's degenerate case)
  and very small and large time constants; delta and current synapses; several layers.

Oracles (each can fail): kernels against their twins (RTOL_TWIN); state invariants (V < theta
outside refractoriness, refractory gaps); *flags clear => the spike pattern survives a
perturbation below the flags' tolerances* (the contract of ``ExactResult.flags``); exact
covariances (a time shift of every input shifts every spike; scaling amplitudes or time by a
power of two scales the result bit for bit); exact vs clock mode at small Δt on cases whose
spike counts are robust; spike-time gradients vs central finite differences; the membrane
formula near tau_s = tau_m against 50-digit mpmath.
"""

import dataclasses
import itertools
import math

import mpmath
import numpy as np
import pytest
from conftest import ATOL_TWIN, RTOL_FINITE_DIFF, RTOL_TWIN
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from evsnn.exact import ExactDense, ExactNetwork, ExactNeuron, decode, loss_and_grad, simulate, vjp
from evsnn.exact import encoders
from evsnn.exact import kernels as K
from evsnn.exact.convergence import convergence
from evsnn.exact.encoders import InputEvents
from evsnn.exact.kernels import _seg_kernel, _split_group_kernel, _stationary_kernel
from evsnn.exact.simulate import (
    TOL_T,
    TOL_V,
    _layer_backward_kernel,
    _layer_forward_kernel,
    _layer_input,
)
from reference import exact as ref
from reference.exact import spike_pattern
from reference.helpers import (
    central_differences,
    example_count,
    settled_difference,
    threshold_rounding,
)

T_END = 10.0
# the event-time grid: 0, the window's end, and times that coincide with each other, with
# t_ref after a spike at 0 (0.5, 2.5) and with refractory ends of spikes at 2.5 (5.0 = 2.5 + 2.5)
GRID = (0.0, 0.5, 1.0, 2.5, 5.0, T_END)
# Perturbations below the flags' tolerances (TOL_V = TOL_T = 1e-9): every weight moves by at
# most 1e-12 (times max(1, theta)), every movable input time by at most 1e-12 ms. With at most
# 8 inputs of unit-kernel size a weight change moves V by < 1e-11 << TOL_V.
EPS_W = 1e-12
EPS_T = 1e-12
# ... and the readout maximum moves continuously: by at most the weight change times the largest
# unit response (tau_s / C <= 2000 for IF with tau_s = 1000 ms) per input, plus |V'| EPS_T: far
# below 1e-6, while a jump of the maximum's location moves it by a sizeable part of a weight.
# Slow threshold crossings before it amplify the change (1 / V'); twice its first-order size,
# from the exact gradient, is allowed on top (_first_order_change).
TOL_READOUT_CONTINUOUS = 1e-6
# Time-shift covariance: t + shift rounds each event and spike time once (|t| <= 12 ms: 1.8e-15);
# a crossing found by Newton moves by a few ulps of itself. 1e-12 ms leaves margin and is far
# below any real spike-time change.
TOL_SHIFT_MS = 1e-12
# Exact vs clock (Euler), on cases whose spike counts survive a 1 % change of every weight: a
# spike is read at the end of its step and Euler's error is O(Δt) per interspike interval, so a
# train's k-th spike is off by O(k Δt) (a strong current fires dozens), and the quantisation makes
# the maximum error non-monotone between nearby Δt (measured: 2.78e-3 ms at both 2e-3 and 1e-3
# ms, then 3.7e-4 at 5e-4). First order over a decade: the error must shrink at least 5-fold
# (10-fold expected) once it exceeds a floor of 5 Δt per spike of the longest train, summed over
# the layers (quantisation <= Δt plus Euler's O(Δt) at a slow crossing, 2.9 Δt measured at
# Δt = 1e-4 with V' ~ 0.3/ms, for each interspike interval the error carries along).
# A floor of 5 Δt for the whole train was too low (HYPOTHESIS_PROFILE=random, stop 36): an
# alpha-synapse LIF firing 5 spikes was 6.1 Δt off at Δt = 1e-4, with error / Δt between 2.0
# and 6.1 at every Δt from 1e-3 to 1e-5 ms (first order, a pre-asymptotic decade); an 11-spike
# train stayed between 12 and 17 Δt from 1e-4 to 1e-5. Slow crossings make the first decade
# pre-asymptotic more often still; then the next decade is judged (assert_first_order).
CLOCK_DTS = (1e-3, 1e-4)
CLOCK_DECADE = 0.2
CLOCK_FLOOR_PER_SPIKE = 5.0
# The exponential-synapse membrane against 50-digit mpmath: a handful of roundings of O(1)
# terms; the formula is well conditioned in s, tau_s, tau_m at every tau_s != tau_m, so any
# error beyond a few ulps is cancellation in the evaluation.
TOL_MPMATH = 1e-14


def _events(times, sources, n_in, movable=True, t_enc=T_END):
    """One sample's InputEvents from raw (times, sources), sorted as the encoders sort them.
    ``movable``: dtime_dx = 1 (the times depend on a pixel), else 0 (RateSyn-like grid)."""
    times = np.asarray(times, dtype=np.float64)
    sources = np.asarray(sources, dtype=np.int64)
    order = np.lexsort((sources, times))
    return InputEvents(np.array([0, times.size], np.int64), times[order], sources[order],
                       np.full(times.size, 1.0 if movable else 0.0), None, n_in, t_enc)


def _unit_peak(nrn):
    """The largest membrane rise a unit input causes from rest (delta: 1)."""
    model, syn, tau_m, tau_s, r, c, *_ = nrn.kernel_args()
    if syn == 0:
        return 1.0
    if model == 0:
        return tau_s / c  # IF: V rises towards tau_s w / C
    se = _stationary_kernel(model, syn, tau_m, tau_s, r, c, 0.0, 0.0, 0.0, 1.0)
    return _seg_kernel(model, syn, tau_m, tau_s, r, c, 0.0, 0.0, 0.0, 1.0, se, False)[0]


# multiples of the weight that lifts V from u0 exactly to theta (delta) or grazes theta (current)
_W_FACTORS = (1.0, 1 + 1e-12, 1 - 1e-12, 2.0, 2 * (1 + 1e-12), 2 * (1 - 1e-12), 3.5, 0.6, 0.3,
              0.0, -0.5, -1.0)


@st.composite
def corner_neurons(draw, clock=False):
    model = draw(st.sampled_from(["lif", "if"]))
    syn = draw(st.sampled_from(["delta", "exponential"] + (["alpha"] if model == "lif" else [])))
    if clock and syn != "delta":
        model = "lif"  # the clock's TraceLIF is LIF with hard reset
    tau_m = draw(st.sampled_from([1.0, 10.0] if clock else [0.05, 1.0, 10.0, 1000.0]))
    if syn == "alpha":
        tau_s = tau_m
    elif model == "lif" and syn == "exponential":
        tau_s = tau_m * draw(st.sampled_from([1 + 2e-6, 1 - 2e-6, 1 + 1e-3, 0.5, 2.0]
                                             + ([] if clock else [0.01, 100.0])))
    else:
        tau_s = draw(st.sampled_from([1.0, 5.0] if clock else [0.05, 1.0, 10.0, 1000.0]))
    theta = draw(st.sampled_from([1.0, 0.25, 3.0]))
    u0 = theta * draw(st.sampled_from([0.0, -0.3, 0.4]))
    v_init = draw(st.sampled_from([u0, 0.0, theta * (1 - 1e-12), -theta, 0.9 * theta]))
    reset = "hard" if clock and syn != "delta" else draw(st.sampled_from(["hard", "soft"]))
    t_ref = 0.0 if clock else draw(st.sampled_from([0.0, 0.5, 2.5, 7.0]))
    rc = draw(st.sampled_from([1.0, 0.5, 2.0]))
    return ExactNeuron(model, syn, tau_m, tau_s, rc, rc, theta, u0, reset, t_ref, v_init)


@st.composite
def corner_networks(draw, clock=False, max_layers=3, readout=None):
    """(network, InputEvents): 1-3 layers of 1-3 neurons; weights from the corner factors;
    2-8 input events on the grid (with repeats), now and then one off the grid."""
    n_layers = draw(st.integers(1, max_layers))
    n_in = draw(st.integers(1, 3))
    same = draw(st.booleans())
    nrn0 = draw(corner_neurons(clock=clock))
    layers, width = [], n_in
    for k in range(n_layers):
        nrn = nrn0 if same or clock else draw(corner_neurons(clock=clock))
        if clock and k > 0:
            nrn = dataclasses.replace(nrn, synapse=nrn0.synapse, model=nrn0.model,
                                      tau_syn_ms=nrn0.tau_syn_ms if nrn0.synapse != "alpha"
                                      else nrn.tau_mem_ms, reset=nrn0.reset
                                      if nrn0.synapse == "delta" else "hard")
            if nrn.synapse == "exponential" and abs(nrn.tau_syn_ms - nrn.tau_mem_ms) < 1e-3:
                nrn = dataclasses.replace(nrn, tau_syn_ms=nrn.tau_mem_ms * 0.5)
        n_out = draw(st.integers(1, 3))
        unit = (nrn.theta - nrn.u0) / _unit_peak(nrn)
        w = np.array([[unit * draw(st.sampled_from(_W_FACTORS)) for _ in range(width)]
                      for _ in range(n_out)])
        is_ro = (draw(st.booleans()) if readout is None else readout) and k == n_layers - 1
        layers.append(ExactDense(w, nrn, readout=is_ro and not clock))
        width = n_out
    n_ev = draw(st.integers(2, 8))
    times = [draw(st.sampled_from(GRID)) for _ in range(n_ev)]
    if draw(st.booleans()):
        times[0] = draw(st.floats(0.0, T_END))
    sources = [draw(st.integers(0, n_in - 1)) for _ in range(n_ev)]
    movable = draw(st.booleans())
    return ExactNetwork(layers), _events(times, sources, n_in, movable)




# --------------------------------------------------------------------------- kernels vs twins
@settings(max_examples=example_count(40))
@given(corner_networks(), st.integers(0, 2**31))
def test_corner_layer_kernels_match_twins(case, seed):
    net, inp = case
    res = simulate(net, inp, t_end_ms=T_END)
    rng = np.random.default_rng(seed)
    rec = np.array(sorted(set(GRID) | {0.25, 2.5 + 1e-12, 7.3}))
    for li, layer in enumerate(net.layers):
        off, times, src, causes = _layer_input(inp, res.layers[li - 1] if li else None)
        args = layer.neuron.kernel_args()
        ic = np.zeros((1, layer.n_out))
        outs = []
        for kern in (_layer_forward_kernel, ref._layer_forward_kernel):
            o = (np.zeros((1, layer.n_out, 64)), np.zeros((1, layer.n_out, 64), np.int64),
                 np.zeros((1, layer.n_out), np.int64), np.zeros((1, layer.n_out), np.int64),
                 np.zeros((1, layer.n_out)), np.zeros((1, layer.n_out, rec.size)))
            kern(*args, not layer.readout, T_END, off, times, src, causes, layer.weight, ic, rec,
                 TOL_V * max(1.0, layer.neuron.theta), TOL_T, 100, *o)
            outs.append(o)
        for a, b in zip(*outs):
            np.testing.assert_allclose(a, b, rtol=RTOL_TWIN, atol=ATOL_TWIN)
        g_spk = rng.standard_normal((1, layer.n_out, 64))
        g_max = rng.standard_normal((1, layer.n_out))
        grads = []
        for kern in (_layer_backward_kernel, ref._layer_backward_kernel):
            g = (np.zeros(layer.weight.shape), np.zeros((1, layer.n_out)), np.zeros(times.size))
            kern(*args, not layer.readout, T_END, off, times, src, causes, layer.weight, ic,
                 TOL_V * max(1.0, layer.neuron.theta), TOL_T, 64, g_spk, g_max, *g)
            grads.append(g)
        for a, b in zip(*grads):
            np.testing.assert_allclose(a, b, rtol=RTOL_TWIN, atol=ATOL_TWIN)


# --------------------------------------------------------------------------- invariants
@settings(max_examples=example_count(50))
@given(corner_networks(readout=False))
def test_membrane_below_threshold_outside_refractoriness(case):
    net, inp = case
    res = simulate(net, inp, t_end_ms=T_END)
    spikes = np.concatenate([l.times for l in res.layers])
    grid = np.unique(np.concatenate([np.linspace(0.0, T_END, 401), inp.times, spikes,
                                     np.minimum(spikes + 1e-9, T_END),
                                     np.maximum(spikes - 1e-9, 0.0)]))
    mem = simulate(net, inp, t_end_ms=T_END, record_times=grid).membrane
    for li, layer in enumerate(net.layers):
        ev = res.layers[li]
        t_ref = layer.neuron.t_ref_ms
        theta = layer.neuron.theta
        for i in range(layer.n_out):
            t = ev.times[ev.neurons == i]
            assert np.all(np.diff(t) >= 0) and np.all((t >= 0) & (t <= T_END))
            if t_ref > 0:
                # consecutive spikes at least t_ref apart (t_sp + t_ref rounds once)
                assert np.all(np.diff(t) >= t_ref * (1 - 1e-12) - 1e-12 * T_END), (t, t_ref)
            refr = np.zeros(grid.size, bool)
            for ts in t:
                refr |= (grid >= ts) & (grid < ts + t_ref)
            v = mem[li][0, i]
            # right-continuous membrane: after every event, reset and refractory end. V is
            # evaluated to a few ulps, so a time before a crossing may evaluate to theta if it
            # lies within 4 ulp(theta) / V' of the spike (V' from the record 1e-9 ms before it;
            # a 1200-example run found V = theta 9.8e-13 ms before an alpha-synapse crossing);
            # nothing else may.
            bad = ~refr & (v >= theta)
            for tb, vb in zip(grid[bad], v[bad]):
                nxt = t[t >= tb]
                assert vb - theta <= 2 * np.spacing(theta) and nxt.size, (tb, vb, t)
                before = v[np.searchsorted(grid, max(nxt[0] - 1e-9, 0.0))]
                slope = max((theta - before) / 1e-9, 1e-300)
                assert nxt[0] - tb <= 1e-15 * max(1.0, tb) + 4 * np.spacing(theta) / slope, (
                    tb, vb, t, slope)


def _trains(layer):
    """A layer's spike times ordered by sample, neuron, then the neuron's own spike index: the
    neurons' spike trains one after the other, whatever the order of simultaneous spikes."""
    sample = np.repeat(np.arange(layer.counts.shape[0]), np.diff(layer.offsets))
    return layer.times[np.lexsort((layer.ordinal, layer.neurons, sample))]


def _perturbed(net, inp, rng):
    ws = [l.weight + EPS_W * max(1.0, l.neuron.theta) * rng.choice([-1.0, 0.0, 1.0], l.weight.shape)
          for l in net.layers]
    times = inp.times.copy()
    if np.any(inp.dtime_dx):
        times = np.clip(times + EPS_T * rng.choice([-1.0, 0.0, 1.0], times.shape), 0.0, None)
    return net.with_weights(ws), _events(times, inp.sources, inp.n_in, bool(np.any(inp.dtime_dx)))


@settings(max_examples=example_count(50))
@given(corner_networks(), st.integers(0, 2**31))
def test_flags_clear_means_the_spike_pattern_survives_tiny_perturbations(case, seed):
    # ExactResult.flags: zero means no spike may appear or disappear (and no readout maximum
    # switch location) under a perturbation of the membrane below TOL_V or of a time below TOL_T.
    net, inp = case
    res = simulate(net, inp, t_end_ms=T_END)
    assume(res.flags[0] == 0)
    rng = np.random.default_rng(seed)
    for _ in range(4):
        pnet, pinp = _perturbed(net, inp, rng)
        pres = simulate(pnet, pinp, t_end_ms=T_END)
        for a, b in zip(spike_pattern(res), spike_pattern(pres)):
            np.testing.assert_array_equal(a, b)
        if res.readout_max is not None:
            moved = np.abs(pres.readout_max - res.readout_max)
            assert np.all(moved <= TOL_READOUT_CONTINUOUS + 2 * _first_order_change(
                net, inp, res, pnet, pinp)), (moved, res.readout_max)


def _first_order_change(net, inp, res, pnet, pinp):
    """``Σ |∂max_k/∂p| |Δp|`` per readout neuron k over the weights and input times p (exact
    gradients, ``vjp``): the change a continuous maximum can make to first order. A spike at a
    slow (near-asymptotic) crossing moves its time by ``ΔV / V'``, and chained ones multiply
    that: a 1,200-example run found hidden spikes moved by 1.3e-14, 1.8e-10 and 4e-6 ms by a
    1e-12 perturbation, and the readout maximum by 1.34e-6, a slope of ~1e6, not a jump."""
    bound = np.zeros(res.readout_max.shape[1])
    zero = [np.zeros(l.times.size) for l in res.layers]
    for k in range(bound.size):
        unit = np.zeros(res.readout_max.shape)
        unit[0, k] = 1.0
        g = vjp(res, zero, grad_max=unit)
        bound[k] = sum(float(np.sum(np.abs(gw) * np.abs(pl.weight - l.weight)))
                       for gw, pl, l in zip(g.weights, pnet.layers, net.layers))
        bound[k] += float(np.abs(g.input_times) @ np.abs(pinp.times - inp.times))
    return bound


# Found by a 1200-example random run (stop 40): hidden neurons 0 and 1 fire about 1e-12 ms before
# neuron 2 (weights 1 + 1e-12, 2 + 2e-12 against 1; ln 2 ms), so readout 2 gets +1, +1 and then
# -0.5 within TOL_T. Its maximum is the transient between them (2.0003); a 1e-12 weight
# perturbation that moves neuron 2 first gives 1.5003. Split groups covered only equal times,
# and the flags were 0; now a cluster of jumps less than tol_t apart is flagged when it can
# reach the maximum.
_NEAR_SIMULTANEOUS_JUMPS = (
    ExactNetwork((
        ExactDense(np.array([[1.000000000001], [2.000000000002], [1.0]]), ExactNeuron(
            "if", "exponential", 0.05, 1.0, 1.0, 1.0, 1.0, 0.0, "hard", 0.0, 0.0), False),
        ExactDense(np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, -0.5]]),
                   ExactNeuron("lif", "delta", tau_mem_ms=0.05), True),
    )),
    _events([0.0, 0.0], [0, 0], 1, movable=False),
)


def test_flags_cover_near_simultaneous_readout_jumps():
    net, inp = _NEAR_SIMULTANEOUS_JUMPS
    res = simulate(net, inp, t_end_ms=T_END)
    rng = np.random.default_rng(0)
    maxima = [simulate(*_perturbed(net, inp, rng), t_end_ms=T_END).readout_max
              for _ in range(4)]
    assert res.flags[0] != 0 or all(
        np.allclose(m, res.readout_max, rtol=0, atol=TOL_READOUT_CONTINUOUS) for m in maxima)


def test_flags_a_readout_maximum_that_a_split_group_lifts_from_a_plateau():
    # a 1,200-example run: an IF readout with an exponential synapse rests at 0 until +6 and
    # -20 arrive together at 0.5 ms, so its maximum is the plateau 0. If the +6 leads by δ, V
    # rises by 6δ before it falls: the maximum is a kink in the two times (one-sided
    # derivatives 0 and -6 for the +6's time), and the gradient, 0, was returned with flags 0
    nrn = ExactNeuron("if", "exponential", tau_mem_ms=0.05, tau_syn_ms=0.05)
    net = ExactNetwork([ExactDense([[6.0, -20.0]], nrn, readout=True)])
    times = np.array([0.5, 0.5, 9.875])
    res = simulate(net, _events(times, [0, 1, 0], 2), t_end_ms=T_END)
    h = 1e-6
    lead, lag = (simulate(net, _events(times + [d, 0.0, 0.0], [0, 1, 0], 2),
                          t_end_ms=T_END).readout_max[0, 0] for d in (-h, h))
    assert res.readout_max[0, 0] == 0.0 and lag == 0.0 and lead > 5 * h  # the kink
    assert res.flags[0] & K.FLAG_COINCIDENT


def test_flags_a_delta_input_just_after_a_spike_that_starts_a_refractory_period():
    # a 1,200-example run: weight 1.3 at 0 fires a soft-reset LIF (refractory 2.5 ms) and a
    # second input 4.9e-294 ms later is dropped. Moved by 1e-12 onto 0, both arrive as one
    # group: V 2.6, reset to 1.6, held through the period, a second spike at 2.5 ms
    nrn = ExactNeuron("lif", "delta", tau_mem_ms=0.05, theta=1.0, u0=-0.3, reset="soft",
                      t_ref_ms=2.5)
    net = ExactNetwork([ExactDense([[1.3]], nrn)])
    res = simulate(net, _events([0.0, 4.86570414e-294], [0, 0], 1), t_end_ms=T_END)
    merged = simulate(net, _events([0.0, 0.0], [0, 0], 1), t_end_ms=T_END)
    assert res.layers[0].times.size == 1 and merged.layers[0].times.size == 2
    assert res.flags[0] & K.FLAG_COINCIDENT


# Two inputs at 0 into an IF neuron with an exponential synapse (tau_s = 1 ms): weight 1 fires
# at ln 2, weight 2 at ln(4/3) and, after its reset, again at ln 2 (found at 1200 examples).
_SIMULTANEOUS_TRAINS = (
    ExactNetwork((ExactDense(np.array([[1.0], [2.0]]), ExactNeuron(
        "if", "exponential", 0.05, 1.0, 1.0, 1.0, 1.0, 0.0, "hard", 0.0, 0.0), False),)),
    _events([0.0, 0.0], [0, 0], 1, movable=False),
)


@settings(max_examples=example_count(40))
@given(corner_networks(), st.sampled_from([0.75, 1.0, 2.5]))
@example(_SIMULTANEOUS_TRAINS, 0.75)
def test_shifting_every_input_shifts_every_spike(case, shift):
    net, inp = case
    # the membrane must rest until the first input for the covariance to hold
    net = ExactNetwork(tuple(ExactDense(l.weight, dataclasses.replace(l.neuron, v_init=l.neuron.u0),
                                        l.readout) for l in net.layers))
    # the shift must keep distinct input times distinct: a random run found inputs at 0 and at
    # 2.2e-313 ms, which both land on 0.75 ms. One group of simultaneous inputs is not two: a
    # hard reset after a group drops its excess (2 output spikes against 3, flags 0 in both).
    times = inp.times + shift
    assume(np.array_equal(np.diff(inp.times) == 0, np.diff(times) == 0))
    res = simulate(net, inp, t_end_ms=T_END)
    sh = simulate(net, dataclasses.replace(inp, times=times, t_enc_ms=T_END + shift),
                  t_end_ms=T_END + shift)
    assume(res.flags[0] == 0 and sh.flags[0] == 0)
    for a, b in zip(res.layers, sh.layers):
        np.testing.assert_array_equal(a.counts, b.counts)
        # each neuron's train, not the merged order: spikes of two neurons at one instant
        # (ln 2 in the @example) may round either way round in either run
        np.testing.assert_allclose(_trains(b) - shift, _trains(a), rtol=0, atol=TOL_SHIFT_MS)
    if res.readout_max is not None:
        np.testing.assert_allclose(sh.readout_max, res.readout_max, rtol=1e-12, atol=1e-12)


def _delta_lif_chain(widths):
    """Delta LIF layers (tau 0.05 ms, hard reset to 0) of all-ones weights of these widths."""
    nrn = ExactNeuron("lif", "delta", tau_mem_ms=0.05)
    return ExactNetwork(tuple(ExactDense(np.ones((n, m)), nrn, False)
                              for m, n in zip(widths[:-1], widths[1:])))


@settings(max_examples=example_count(40))
@given(corner_networks(), st.sampled_from([0.25, 8.0, 2.0**-20]))
@example((_delta_lif_chain([3, 3, 1, 1]), _events([0.0, 5e-324], [0, 0], 3, movable=False)), 0.25)
def test_power_of_two_scalings_are_exact(case, alpha):
    # V is linear in (V, U0, w, theta): scaling amplitudes by a power of two scales every
    # rounding with it, so spike times agree bit for bit. Likewise scaling every time constant,
    # t_ref, C and every time by a power of two.
    net, inp = case
    # ... as long as the input times scale exactly: a random run found inputs at 0 and 5e-324 ms,
    # which alpha = 0.25 makes one group at 0 (a hard reset then drops the second input's spike)
    assume(np.array_equal(inp.times * alpha / alpha, inp.times))
    res = simulate(net, inp, t_end_ms=T_END)

    def amp(l):
        n = l.neuron
        return ExactDense(l.weight * alpha, dataclasses.replace(
            n, theta=n.theta * alpha, u0=n.u0 * alpha, v_init=n.v_init * alpha), l.readout)

    def tim(l):
        n = l.neuron
        return ExactDense(l.weight, dataclasses.replace(
            n, tau_mem_ms=n.tau_mem_ms * alpha, tau_syn_ms=n.tau_syn_ms * alpha,
            c_mf=n.c_mf * alpha, t_ref_ms=n.t_ref_ms * alpha), l.readout)

    ra = simulate(ExactNetwork(tuple(amp(l) for l in net.layers)), inp, t_end_ms=T_END)
    rt = simulate(ExactNetwork(tuple(tim(l) for l in net.layers)),
                  dataclasses.replace(inp, times=inp.times * alpha, t_enc_ms=T_END * alpha),
                  t_end_ms=T_END * alpha)
    for a, b, c in zip(res.layers, ra.layers, rt.layers):
        np.testing.assert_array_equal(a.counts, b.counts)
        np.testing.assert_array_equal(a.times, b.times)
        np.testing.assert_array_equal(a.counts, c.counts)
        np.testing.assert_array_equal(a.times * alpha, c.times)
    if res.readout_max is not None:
        np.testing.assert_array_equal(res.readout_max * alpha, ra.readout_max)
        np.testing.assert_array_equal(res.readout_max, rt.readout_max)


# --------------------------------------------------------------------------- clock mode
def _robust(net, inp, res):
    """The spike counts survive a 1 % change of every weight (both signs): no threshold event
    lies close enough to theta for the O(Δt) clock error to flip it. Nor, for input events,
    does a spike follow within the coarsest Δt after the window: the clock's last step
    integrates the events at T_END for a whole Δt and reads a spike there as one at T_END (a
    constant current is defined up to T_END only, and has no such events)."""
    runs = [simulate(net.with_weights([l.weight * f for l in net.layers]), inp, t_end_ms=T_END)
            for f in (0.99, 1.01)]
    if inp.current is None:
        runs.append(simulate(net, inp, t_end_ms=T_END + CLOCK_DTS[0]))
    return all(np.array_equal(a, b) for r in runs
               for a, b in zip(spike_pattern(r), spike_pattern(res)))


def test_clock_limit_oracle_rejects_a_spike_just_after_the_window():
    # a 1,200-example run's case: V peaks at 0.989 inside the window; four inputs at T_END
    # lift it by 0.011 in the clock's last step of 1e-3 ms, a spike read at T_END that exact
    # mode places at 10.00099 ms, past the window. 1 % of the weights does not show it
    nrn = ExactNeuron("lif", "exponential", tau_mem_ms=1.0, tau_syn_ms=1.000002)
    net = ExactNetwork([ExactDense([[2.7182791101822]], nrn)])
    inp = _events([9.140625] + [T_END] * 4, [0] * 5, 1, movable=False)
    res = simulate(net, inp, t_end_ms=T_END)
    assert res.layers[0].times.size == 0 and res.flags[0] == 0
    assert not convergence(net, inp, dts_ms=CLOCK_DTS, t_end_ms=T_END).counts_match[0]
    assert not _robust(net, inp, res)


_SLOW_LAST_CROSSINGS = (  # 13 spikes, the last ones slow: 0.21 over the first decade
    ExactNetwork([ExactDense([[10.4]], ExactNeuron("lif", "exponential", tau_mem_ms=1.0,
                                                   tau_syn_ms=0.5, u0=-0.3, v_init=-1.0))]),
    _events([0.5, 1.0, 1.0, 2.5], [0, 0, 0, 0], 1, movable=False),
)


@settings(max_examples=example_count(20))
@given(corner_networks(clock=True, max_layers=2, readout=False))
@example(_SLOW_LAST_CROSSINGS)
def test_exact_mode_is_the_clock_limit_at_corners(case):
    net, inp = case
    # v_init != u0 and u0 != 0 stay; soft resets from V >= 2 theta are in
    res = simulate(net, inp, t_end_ms=T_END)
    assume(res.flags[0] == 0 and _robust(net, inp, res))
    # distinct input times closer than 10 Δt share a clock step (the clock cannot resolve them)
    gaps = np.diff(np.unique(inp.times))
    assume(gaps.size == 0 or gaps.min() >= 10 * CLOCK_DTS[0])
    # Open question (see the report of branch mend_exacthunt): a soft-reset burst -- k spikes of
    # one neuron at one instant -- reaches the next layer as one group of simultaneous events
    # (summed, then tested against theta), while the clock's Δt -> 0 limit spreads the burst over
    # k consecutive steps, so the next layer sees the sources' spikes interleaved by burst index;
    # with mixed-sign weights the counts differ at every Δt. Bursts into a layer are left out here.
    for ev in res.layers[:-1]:
        key = ev.neurons * 1e6 + ev.times
        assume(np.unique(key).size == key.size)
    data = convergence(net, inp, dts_ms=CLOCK_DTS, t_end_ms=T_END)
    assert np.all(data.counts_match), (spike_pattern(res), data)
    assert_first_order(net, inp, res, data, T_END)


def assert_first_order(net, inp, res, data, t_end):
    """The clock's error shrinks at least CLOCK_DECADE-fold over the decade CLOCK_DTS, or is
    below the floor of CLOCK_FLOOR_PER_SPIKE Δt per spike of the longest trains; where that
    decade is not yet asymptotic, over the next one (Δt 1e-4 -> 1e-5). A 1,200-example run
    (stop 42) found a 13-spike LIF train whose slow last crossings gave errors of 106, 225, 171
    and 198 Δt at Δt = 1e-3 … 1e-6 ms: first order, but 0.21 over the first decade and 17 Δt
    per spike."""
    # the longest train of each layer: a spike inherits the errors of the intervals before it
    longest = sum(int(ev.counts.max(initial=0)) for ev in res.layers)
    err = data.max_error_ms
    floor = CLOCK_FLOOR_PER_SPIKE * max(longest, 1) * CLOCK_DTS[1]
    if err[1] <= max(CLOCK_DECADE * err[0], floor):
        return
    finer = convergence(net, inp, dts_ms=(CLOCK_DTS[1] / 10,), t_end_ms=t_end)
    assert np.all(finer.counts_match), (spike_pattern(res), data, finer)
    assert finer.max_error_ms[0] <= max(CLOCK_DECADE * err[1], floor / 10), (longest, data,
                                                                            finer)


# --------------------------------------------------------------------------- gradients vs FD
def _corner_fd_check(net, inp, jitter, seed, readout):
    """The gradient of a random weighted sum of the spike times (``readout``: of the readout
    maxima) in a random direction of the weights and movable input times, against
    ``settled_difference``, on a corner case whose flags are clear."""
    # the exact-tie weights are flagged (not differentiable); a common factor moves them off
    # the tie and keeps the rest of the corner (coincident times, refractoriness, constants)
    net = net.with_weights([l.weight * jitter for l in net.layers])
    res = simulate(net, inp, t_end_ms=T_END)
    assume(res.flags[0] == 0)
    rng = np.random.default_rng(seed)
    coef = [rng.standard_normal(l.times.size) for l in res.layers]
    c_max = rng.standard_normal(res.readout_max.shape) if readout else None
    assume(readout or sum(c.size for c in coef) > 0)
    if readout:
        coef = [np.zeros(c.size) for c in coef]  # the maxima alone
    movable = bool(np.any(inp.dtime_dx))
    W = [l.weight for l in net.layers]
    dW = [rng.standard_normal(w.shape) for w in W]
    dt = rng.standard_normal(inp.times.size) if movable else np.zeros(inp.times.size)

    def objective(step):
        ws = [w + step * d for w, d in zip(W, dW)]
        times = inp.times + step * dt
        assume(np.all(times >= 0) and np.all(times <= T_END))
        r = simulate(net.with_weights(ws), _events(times, inp.sources, inp.n_in, movable),
                     t_end_ms=T_END)
        assume(r.flags[0] == 0)
        assume(all(np.array_equal(a, b) for a, b in zip(spike_pattern(r), spike_pattern(res))))
        # the order of simultaneous events may change; spikes must stay near their places
        assume(all(np.max(np.abs(a.times - b.times), initial=0.0) < 1e-3
                   for a, b in zip(r.layers, res.layers)))
        assume(all(np.array_equal(a.neurons, b.neurons) for a, b in zip(r.layers, res.layers)))
        total = sum(float(c @ l.times) for c, l in zip(coef, r.layers))
        return total + (float(np.sum(c_max * r.readout_max)) if readout else 0.0)

    g = vjp(res, coef, grad_max=c_max)
    # input_times follows the sorted event order of inp (perturbed events keep it: equal times
    # only swap if their order changes, and then the adjoint of each is the same function)
    an = sum(float(np.sum(gw * d)) for gw, d in zip(g.weights, dW)) + float(g.input_times @ dt)
    gnorm = math.sqrt(sum(float(np.sum(gw * gw)) for gw in g.weights)
                      + float(g.input_times @ g.input_times))
    tol = RTOL_FINITE_DIFF * max(gnorm, 1e-3)
    scale = sum(float(np.abs(c) @ np.abs(l.times)) for c, l in zip(coef, res.layers))
    scale += float(np.sum(np.abs(c_max * res.readout_max))) if readout else 0.0
    noise = threshold_rounding(net, inp, res, coef, c_max)
    assume(noise is not None)  # a threshold a few ulps off changes the pattern: not judged
    fd = settled_difference(objective, tol, scale, noise)
    assume(fd is not None)  # no two steps agree: the difference quotient does not settle here
    assert abs(fd - an) <= tol, (fd, an, gnorm)


def test_settled_difference_keeps_to_steps_above_the_objectives_rounding():
    # the oracle itself: an objective of size 3.36 with slope 2.06e-3 (a 1,200-example run's
    # readout-maximum case) whose evaluations carry up to 4 ulps of noise; at steps 1e-6 …
    # 3e-8 the quotient's noise (~4e-9 at 1e-7) exceeds tol, so with the objective's scale the
    # settled value comes from larger steps, where it is exact to the noise
    F, g = 3.3563602357560596, 2.0584396916614144e-3
    tol = RTOL_FINITE_DIFF * 0.003302621582282547
    ulp = math.ulp(F)

    def noisy(step):  # deterministic noise of -4 … 4 ulps per evaluation point
        return F + g * step + (hash(step) % 9 - 4) * ulp

    fd = settled_difference(noisy, tol, abs(F))
    assert fd is not None and abs(fd - g) <= tol, fd


def test_settled_difference_sees_the_rounding_of_a_slow_crossing():
    # a 1,200-example run's case (stop 41): v_init 1e-12 below theta, IF, tau_s = 1000 ms; two
    # neurons cross at 1.3e-10 and 2.6e-10 ms with V' = 0.0078 / ms, so an ulp of V is 1.4e-14
    # ms of spike time. Without the threshold's rounding the quotients at 1e-7 and 3e-8 were
    # both exactly 0 (the times did not move) and "settled" there, against a gradient of 2e-8.
    nrn = ExactNeuron("if", "exponential", tau_mem_ms=0.05, tau_syn_ms=1000.0, u0=-0.3,
                      v_init=0.999999999999)
    w = np.array([[0.0013, 0.0013], [0.0026, 0.0013], [-0.00065, 0.0013]])
    net = ExactNetwork([ExactDense(w, nrn)])
    inp = _events([0.0, 0.0, 0.0], [0, 0, 0], 2, movable=False)
    res = simulate(net, inp, t_end_ms=T_END)
    assert res.flags[0] == 0 and res.layers[0].times.size == 2
    coef = [np.array([0.12573022, -0.13210486])]
    dW = np.array([[0.64042265, 0.10490012], [-0.53566937, 0.36159505], [1.30400005, 0.94708096]])

    def objective(step):
        r = simulate(net.with_weights([w + step * dW]), inp, t_end_ms=T_END)
        assert r.flags[0] == 0
        np.testing.assert_array_equal(r.layers[0].neurons, res.layers[0].neurons)
        return float(coef[0] @ r.layers[0].times)

    g = vjp(res, coef)
    an = float(np.sum(g.weights[0] * dW))
    tol = RTOL_FINITE_DIFF * max(float(np.linalg.norm(g.weights[0])), 1e-3)
    # the gradient is right: far above the rounding the central difference agrees with it
    assert abs((objective(1e-4) - objective(-1e-4)) / 2e-4 - an) <= tol, an
    scale = float(np.abs(coef[0]) @ res.layers[0].times)
    noise = threshold_rounding(net, inp, res, coef)
    fd = settled_difference(objective, tol, scale, noise)
    assert fd is None or abs(fd - an) <= tol, (fd, an, noise)


@settings(max_examples=example_count(40), suppress_health_check=[HealthCheck.filter_too_much])
@given(corner_networks(readout=False), st.integers(0, 2**31), st.floats(0.97, 1.03))
def test_corner_spike_time_gradients_match_finite_differences(case, seed, jitter):
    _corner_fd_check(*case, jitter, seed, readout=False)


@settings(max_examples=example_count(40), suppress_health_check=[HealthCheck.filter_too_much])
@given(corner_networks(readout=True), st.integers(0, 2**31), st.floats(0.97, 1.03))
def test_corner_readout_maximum_gradients_match_finite_differences(case, seed, jitter):
    # corners for the readout maximum: simultaneous inputs (grid repeats, hidden spikes of one
    # instant) whose weights include 0, a maximum at a group, at its left limit or at a kink
    _corner_fd_check(*case, jitter, seed, readout=True)


# --------------------------------------------------------------------------- tau_s ~ tau_m
def _mp_segment(tau_m, tau_s, v0, i0, s, u0=0.0, ic=0.0, r=1.0):
    """LIF, exponential synapse: V(s), dV/ds, dV/di0 in 50-digit arithmetic (Ding 2025 Eq. 5
    solved by hand: V = V_inf + a e^{-s/tau_s} + (v0 - V_inf - a) e^{-s/tau_m},
    a = r tau_s i0 / (tau_s - tau_m))."""
    with mpmath.workdps(50):
        tm, ts, S = mpmath.mpf(tau_m), mpmath.mpf(tau_s), mpmath.mpf(s)
        inf = mpmath.mpf(u0) + r * mpmath.mpf(ic)
        k = r * ts / (ts - tm)
        es, em = mpmath.exp(-S / ts), mpmath.exp(-S / tm)
        f = inf + k * i0 * es + (v0 - inf - k * i0) * em
        fs = (-(f - u0) + r * (i0 * es + ic)) / tm
        return float(f), float(fs), float(k * (es - em))


@pytest.mark.parametrize("rel", [2e-6, -2e-6, 1e-5, 1e-4, 1e-3])
@pytest.mark.parametrize("s", [0.01, 3.0, 10.0, 40.0])
def test_exponential_synapse_near_tau_m_is_accurate(rel, s):
    # The textbook form a e^{-s/tau_s} + (v0 - V_inf - a) e^{-s/tau_m} with a ~ tau/(tau_s -
    # tau_m) cancels: at |tau_s - tau_m| = 2e-6 tau_m it lost ~6 digits (3e-11 relative error in
    # V and dV/di0, measured before the fix). ExactNeuron allows any |tau_s - tau_m| > 1e-6 tau_m.
    tau_m = 10.0
    tau_s = tau_m * (1 + rel)
    for v0, i0, u0, ic in ((0.0, 1.0, 0.0, 0.0), (0.3, -2.0, -0.2, 0.7), (0.9, 0.5, 0.1, 0.0)):
        got = _seg_kernel(1, 1, tau_m, tau_s, 1.0, 1.0, u0, ic, v0, i0, s, False)
        twin = ref._seg_kernel(1, 1, tau_m, tau_s, 1.0, 1.0, u0, ic, v0, i0, s, False)
        f, fs, fi = _mp_segment(tau_m, tau_s, v0, i0, s, u0, ic)
        scale = max(abs(v0), abs(i0), abs(u0) + abs(ic), 1.0)
        for out in (got, twin):
            assert abs(out[0] - f) <= TOL_MPMATH * scale, (out[0], f)
            assert abs(out[1] - fs) <= TOL_MPMATH * scale / tau_m, (out[1], fs)
            assert abs(out[3] - fi) <= TOL_MPMATH * max(abs(fi), 1.0), (out[3], fi)


# --------------------------------------------------------------------------- decoding
def test_first_spike_decoding_ties_and_silence():
    # two outputs fire at the same instant (one input event, equal jumps >= theta), a third is
    # silent: tied scores are equal, the silent one scores -t_end, and the loss says "boundary"
    nrn = ExactNeuron("lif", "delta")
    net = ExactNetwork([ExactDense([[1.5], [1.5], [0.0]], nrn)])
    inp = _events([2.5], [0], 1)
    res = simulate(net, inp, t_end_ms=T_END)
    np.testing.assert_array_equal(decode(res, "first_spike"), [[-2.5, -2.5, -T_END]])
    g = loss_and_grad(net, inp, np.array([0]), t_end_ms=T_END)
    assert g.flags[0] & K.FLAG_BOUNDARY
    # by hand: scores (-2.5, -2.5, -10), p_0 = p_1 = 1 / (2 + e^{-7.5}); dL/dt_0 = 1 - p_0,
    # dL/dt_1 = -p_1; the spike times are the input's time, so dL/dt_in = 1 - 2 p
    p = 1.0 / (2.0 + math.exp(-7.5))
    assert abs(g.x[0, 0] - (1.0 - 2.0 * p)) <= 1e-12


# --------------------------------------------------------------------------- regressions
@pytest.mark.parametrize("t_ref", [0.0, 0.5])
@pytest.mark.parametrize("model", ["lif", "if"])
def test_soft_reset_to_exactly_theta_is_flagged(t_ref, model):
    # Found by test_flags_clear_means_the_spike_pattern_survives_tiny_perturbations (random
    # profile). A jump from 0 to 2 theta with soft reset leaves V = theta: a second spike at once
    # (t_ref = 0) or when the refractory period ends. At 2 theta (1 - 1e-12) that spike is gone,
    # so the count is discontinuous at w = 2 theta; the flags were 0 on both sides (only the value
    # right after the jump was compared with theta, not the value after each soft reset).
    nrn = ExactNeuron(model, "delta", reset="soft", t_ref_ms=t_ref)
    for w, count in ((2.0, 2), (2.0 * (1 + 1e-12), 2), (2.0 * (1 - 1e-12), 1)):
        res = simulate(ExactNetwork([ExactDense([[w]], nrn)]), _events([1.0], [0], 1),
                       t_end_ms=T_END)
        assert res.layers[0].counts[0, 0] == count
        assert res.flags[0] & K.FLAG_GRAZING, (w, res.flags)
        np.testing.assert_array_equal(res.layers[0].times, [1.0, 1.0 + t_ref][:count])
    # far from the tie: no flag
    res = simulate(ExactNetwork([ExactDense([[2.5]], nrn)]), _events([1.0], [0], 1),
                   t_end_ms=T_END)
    assert res.layers[0].counts[0, 0] == 2 and res.flags[0] == 0


@pytest.mark.parametrize("factor", [1.0, 1 + 1e-12, 1 - 1e-12])
def test_threshold_reached_at_an_input_event_is_flagged(factor):
    # Found by test_exact_mode_is_the_clock_limit_at_corners (random profile; the clock error
    # shrank like sqrt(Δt)). Alpha synapse, tau = 1 ms: one input of weight e at 0 lifts V to
    # its peak e * (1/e) = theta exactly at t = 1, where a second input arrives. The spike falls
    # just before the event (tangentially) or just after it; its time is not differentiable in
    # the weights there, and the crossing search only flagged extrema strictly inside a segment.
    nrn = ExactNeuron("lif", "alpha", tau_mem_ms=1.0, tau_syn_ms=1.0)
    net = ExactNetwork([ExactDense([[math.e * factor]], nrn)])
    res = simulate(net, _events([0.0, 1.0], [0, 0], 1), t_end_ms=T_END)
    assert res.layers[0].counts[0, 0] >= 1
    assert abs(res.layers[0].times[0] - 1.0) < 1e-5
    assert res.flags[0] & K.FLAG_GRAZING, res.flags
    # a clear crossing before the event is not flagged
    net = ExactNetwork([ExactDense([[math.e * 1.5]], nrn)])
    assert simulate(net, _events([0.0, 1.0], [0, 0], 1), t_end_ms=T_END).flags[0] == 0


@pytest.mark.parametrize("tau_s", [(0.5, 0.5), (2.0, 0.5), (0.5, 2.0)])
def test_clock_mapping_with_a_synaptic_time_constant_per_layer(tau_s):
    # Found by test_exact_mode_is_the_clock_limit_at_corners (random profile). In exact mode the
    # synapse belongs to the receiving layer: layer 1's current decays with layer 1's tau_s.
    # clock_network gave layer 0's TraceLIF its own tau_s for the trace it emits, so with
    # tau_s (2, 0.5) / (0.5, 2) the counts differed at every Δt (exact 7/8 and 1/2 spikes).
    def nrn(ts):
        return ExactNeuron("lif", "exponential", 1.0, ts, 1.0, 1.0, 1.0, 0.0, "hard", 0.0, 0.0)

    net = ExactNetwork([ExactDense([[3.0]], nrn(tau_s[0])), ExactDense([[3.0]], nrn(tau_s[1]))])
    inp = _events([0.0, 0.3], [0, 0], 1, False)
    assert simulate(net, inp, t_end_ms=T_END).layers[0].counts.sum() > 0
    data = convergence(net, inp, dts_ms=(1e-2, 1e-3, 1e-4), t_end_ms=T_END)
    assert np.all(data.counts_match), data
    assert data.max_error_ms[-1] <= CLOCK_DECADE * data.max_error_ms[-2] + 2e-4, data


def test_asymptote_at_theta_crosses_at_the_start_of_the_plateau():
    # Found by test_membrane_below_threshold_outside_refractoriness (random profile). IF with an
    # exponential synapse: after the reset at ~1 ms the current 20 e^{-t/0.05} drives V towards
    # 20 * 0.05 / C = theta exactly; V rounds to theta from ~2.9 ms on. The crossing search took
    # its first midpoint (5.5 ms), found g == 0 there and returned it: a spike at 5.5 ms with V
    # = theta, unfired, on [2.9, 5.5). Now the first time at which V rounds to theta; flagged.
    nrn = ExactNeuron("if", "exponential", tau_mem_ms=0.05, tau_syn_ms=0.05)
    net = ExactNetwork([ExactDense([[20.0]], nrn)])
    inp = _events([0.0, 1.0], [0, 0], 1, False)
    res = simulate(net, inp, t_end_ms=T_END)
    times = res.layers[0].times
    assert res.flags[0] & K.FLAG_GRAZING
    assert times.size == 2 and abs(times[0] - 1.0) < 1e-6 and 2.0 < times[1] < 3.5, times
    grid = np.linspace(times[0], times[1], 2001)[:-1]
    v = simulate(net, inp, t_end_ms=T_END, record_times=grid).membrane[0][0, 0]
    assert np.all(v < 1.0)


def test_closed_form_asymptote_at_theta_crosses_where_v_rounds_to_theta():
    # Review finding: LIF, delta synapse, current 1 (R = W = x = theta = 1): V_inf = theta, so
    # the closed form log1p((theta - v0) / (V_inf - theta)) is infinite, and it was clamped to
    # the segment's end: a spike at t_end (400, 700, 1000 ms for those t_end). V = 1 - e^{-t/10}
    # rounds to theta from ~374.3 ms on; the closed form now keeps the search's convention (the
    # test above): the first time V rounds to theta, the same for every t_end, flagged.
    net = ExactNetwork([ExactDense([[1.0]], ExactNeuron("lif", "delta", tau_mem_ms=10.0))])
    first = [simulate(net, encoders.current([[1.0]], t)).layers[0].times[0] for t in (400, 700)]
    assert first[0] == first[1] and 374.0 < first[0] < 374.6, first
    res = simulate(net, encoders.current([[1.0]], 400.0))
    assert res.flags[0] & K.FLAG_GRAZING
    # the first float time (to a few ulps) at which the closed-form V is theta
    v = lambda t: 1.0 + (0.0 - 1.0) * math.exp(-t / 10.0)
    assert v(first[0]) >= 1.0 and v(first[0] - 1e-12 * first[0]) < 1.0
    args = (1, 0, 10.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 400.0, TOL_V)
    assert K._crossing_kernel(*args) == ref._crossing_kernel(*args) == (first[0], True)


def test_spike_time_gradient_goes_to_the_triggering_input():
    # Found by test_corner_spike_time_gradients_match_finite_differences (random profile). Two
    # movable inputs at 0.5 ms with weights 2.1 (source 0) and 0.36 (source 1); V(0.5-) = -0.45,
    # so source 0 alone triggers the spike (not flagged coincident: correct) and the spike time
    # is source 0's time. The adjoint used to attribute dt_spike/dt_in = 1 to source 1 (the last
    # event of the group, the spike node's predecessor), and 0 to source 0.
    nrn = ExactNeuron("lif", "delta", 1.0, 0.05, 1.0, 1.0, 1.0, 0.4, "hard", 0.0, -1.0)
    net = ExactNetwork([ExactDense([[2.1, 0.36]], nrn)])
    res = simulate(net, _events([0.5, 0.5], [0, 1], 2), t_end_ms=T_END)
    assert res.flags[0] == 0 and res.layers[0].times.tolist() == [0.5]
    g = vjp(res, [np.ones(1)])
    np.testing.assert_array_equal(g.input_times, [1.0, 0.0])
    # the twin moves the trigger's node last as well: its layer adjoint gives the same
    inp = _events([0.5, 0.5], [0, 1], 2)
    layer = net.layers[0]
    g_spk = np.zeros((1, 1, 64))
    g_spk[0, 0, 0] = 1.0
    for kern in (_layer_backward_kernel, ref._layer_backward_kernel):
        gw, g_ic, gt = np.zeros(layer.weight.shape), np.zeros((1, 1)), np.zeros(2)
        kern(*layer.neuron.kernel_args(), True, T_END, inp.offsets, inp.times, inp.sources,
             np.arange(2), layer.weight, np.zeros((1, 1)), TOL_V, TOL_T, 64, g_spk,
             np.zeros((1, 1)), gw, g_ic, gt)
        np.testing.assert_array_equal(gt, [1.0, 0.0], err_msg=kern.__module__)


def test_group_whose_split_orders_graze_theta_is_flagged():
    # Found by test_flags_clear_means_the_spike_pattern_survives_tiny_perturbations (random
    # profile). Movable inputs at t = 0 with weights theta (1 - 1e-12) and 2 theta: the second
    # triggers the spike in every order, but the first alone misses theta by 1e-12, so a
    # perturbation of 1e-12 that brings it first and lifts it to theta gives two spikes. The
    # trigger test compared without tolerance, so the flags were 0.
    nrn = ExactNeuron("lif", "delta", tau_mem_ms=0.05)
    # the first misses by 1e-12; or the trigger (first) passes theta by only 2e-10 < tol
    for w in ([1 - 1e-12, 2.0], [1.0 + 2e-10, 0.5]):
        net = ExactNetwork([ExactDense([w], nrn)])
        res = simulate(net, _events([0.0, 0.0], [0, 1], 2), t_end_ms=T_END)
        assert res.layers[0].counts[0, 0] == 1 and res.flags[0] & K.FLAG_GRAZING, (w, res.flags)
    split = ExactNetwork([ExactDense([[1.0, 2.0]], nrn)])
    assert simulate(split, _events([0.0, 1e-12], [0, 1], 2), t_end_ms=T_END
                    ).layers[0].counts[0, 0] == 2
    # a margin above tol: not flagged
    clear = ExactNetwork([ExactDense([[0.9, 2.0]], nrn)])
    assert simulate(clear, _events([0.0, 0.0], [0, 1], 2), t_end_ms=T_END).flags[0] == 0
    # an unfired group whose best order misses theta by 1e-12: flagged too
    miss = ExactNetwork([ExactDense([[1 - 1e-12, -1.0]], nrn)])
    res = simulate(miss, _events([0.0, 0.0], [0, 1], 2), t_end_ms=T_END)
    assert res.layers[0].counts[0, 0] == 0 and res.flags[0] & K.FLAG_GRAZING


def test_hidden_spikes_of_one_instant_with_different_causes_are_flagged():
    # Hidden neuron 0 is fired by input 0 alone, hidden neuron 1 by input 1 alone, both inputs
    # at 0.5 ms: the two hidden spikes share an instant but move independently. The output
    # neuron (weights +1.2, -0.5) stays silent when they arrive together and fires when the
    # +1.2 comes first, so a 1e-12 ms shift of input 1 changes its count. The flags were 0
    # (hidden layers were never checked); now every spike carries the cause it moves with.
    nrn = ExactNeuron("lif", "delta", tau_mem_ms=0.05)
    net = ExactNetwork([ExactDense([[1.5, 0.0], [0.0, 1.5]], nrn),
                        ExactDense([[1.2, -0.5]], nrn)])
    res = simulate(net, _events([0.5, 0.5], [0, 1], 2), t_end_ms=T_END)
    split = simulate(net, _events([0.5, 0.5 + 1e-12], [0, 1], 2), t_end_ms=T_END)
    assert res.layers[1].counts[0, 0] == 0 and split.layers[1].counts[0, 0] == 1
    assert res.flags[0] != 0


def test_movable_input_at_a_refractory_end_is_flagged():
    # Found by test_flags_clear_means_the_spike_pattern_survives_tiny_perturbations (random
    # profile). A spike at 0.5 ms (soft reset to 0.5) starts a 0.5 ms refractory period; a delta
    # input of 0.6 at exactly 1.0 ms, the period's end, is applied (V = 1.1: a second spike) but
    # dropped when it comes 1e-12 ms earlier. The flags were 0.
    nrn = ExactNeuron("lif", "delta", tau_mem_ms=0.05, reset="soft", t_ref_ms=0.5)
    net = ExactNetwork([ExactDense([[1.5, 0.6]], nrn)])
    res = simulate(net, _events([0.5, 1.0], [0, 1], 2), t_end_ms=T_END)
    assert res.layers[0].times.tolist() == [0.5, 1.0] and res.flags[0] & K.FLAG_COINCIDENT
    early = simulate(net, _events([0.5, 1.0 - 1e-12], [0, 1], 2), t_end_ms=T_END)
    assert early.layers[0].times.tolist() == [0.5]
    # fixed (grid) times cannot split; an input clear of the period's end is not flagged
    assert simulate(net, _events([0.5, 1.0], [0, 1], 2, False), t_end_ms=T_END).flags[0] == 0
    assert simulate(net, _events([0.5, 1.2], [0, 1], 2), t_end_ms=T_END).flags[0] == 0


def test_unfired_group_that_fires_in_another_order_is_flagged():
    # Found by test_flags_clear_means_the_spike_pattern_survives_tiny_perturbations (random
    # profile). Movable inputs at one instant, weights +1 and -1, V = 0.9 before: the group sums
    # to 0.9 < theta (no spike), but the +1 arriving 1e-12 ms before the -1 fires. The
    # coincidence check ran only for groups that fired, so the flags were 0.
    nrn = ExactNeuron("lif", "delta", tau_mem_ms=0.05, v_init=0.9)
    net = ExactNetwork([ExactDense([[1.0, -1.0]], nrn)])
    res = simulate(net, _events([0.0, 0.0], [0, 1], 2), t_end_ms=T_END)
    assert res.layers[0].counts[0, 0] == 0 and res.flags[0] & K.FLAG_COINCIDENT
    split = simulate(net, _events([0.0, 1e-12], [0, 1], 2), t_end_ms=T_END)
    assert split.layers[0].counts[0, 0] == 1
    # fixed (grid) times cannot split: no flag; nor when no order reaches theta
    assert simulate(net, _events([0.0, 0.0], [0, 1], 2, False), t_end_ms=T_END).flags[0] == 0
    low = ExactNetwork([ExactDense([[0.05, -1.0]], nrn)])
    assert simulate(low, _events([0.0, 0.0], [0, 1], 2), t_end_ms=T_END).flags[0] == 0


def test_readout_maximum_that_a_split_group_would_raise_is_flagged():
    # An IF readout receiving +1 and -0.5 at one instant from movable inputs: V steps to 0.5 (its
    # maximum) when they arrive together, but peaks at 1 when the +1 comes 1e-12 ms first.
    # Nothing flagged the jump of the maximum before the spikes carried their causes.
    nrn = ExactNeuron("if", "delta")
    net = ExactNetwork([ExactDense([[1.0, -0.5]], nrn, readout=True)])
    res = simulate(net, _events([0.5, 0.5], [0, 1], 2), t_end_ms=T_END)
    split = simulate(net, _events([0.5 - 1e-12, 0.5], [0, 1], 2), t_end_ms=T_END)
    assert res.readout_max[0, 0] == 0.5 and split.readout_max[0, 0] == 1.0
    assert res.flags[0] & K.FLAG_COINCIDENT
    # fixed times cannot split; a maximum elsewhere above the transient is not affected
    assert simulate(net, _events([0.5, 0.5], [0, 1], 2, False), t_end_ms=T_END).flags[0] == 0
    higher = simulate(net, _events([0.5, 0.5, 1.0, 2.0], [0, 1, 0, 0], 2), t_end_ms=T_END)
    assert higher.readout_max[0, 0] == 2.5 and higher.flags[0] == 0


def test_simultaneous_inputs_of_one_cause_do_not_split():
    # Two hidden neurons fired by the same input at 0.5 ms spike together and move together
    # (one cause): the output's group (+0.6, +0.6) cannot split, so the tie between its two
    # equal weights is no coincidence; an input of another cause at the same instant can split
    # from them, and then the pair is a trigger only as a block: +1.2 fires after -0.1 too.
    nrn = ExactNeuron("lif", "delta", tau_mem_ms=0.05)
    net = ExactNetwork([ExactDense([[1.5, 0.0], [1.5, 0.0], [0.0, 1.5]], nrn),
                        ExactDense([[0.6, 0.6, -0.1]], nrn)])
    one = simulate(net, _events([0.5], [0], 2), t_end_ms=T_END)
    assert one.layers[1].times.tolist() == [0.5] and one.flags[0] == 0
    assert one.layers[0].causes[0] == one.layers[0].causes[1] == one.layers[1].causes[0] == 0
    two = simulate(net, _events([0.5, 0.5], [0, 1], 2), t_end_ms=T_END)
    assert two.layers[1].times.tolist() == [0.5] and two.flags[0] == 0
    # the spike's time is the block's: its adjoint reaches input 0, none input 1
    np.testing.assert_array_equal(vjp(two, [None, np.ones(1)]).input_times, [1.0, 0.0])


@pytest.mark.parametrize("syn, w_row, times, v_init", [
    # V after a group: a +1 and a weight-0 event at 0.5 ms, the 0 sorted last or first
    ("delta", [1.0, 1.0, 0.0], [0.1, 0.5, 0.5], 0.0),
    ("delta", [1.0, 0.0, 1.0], [0.1, 0.5, 0.5], 0.0),
    # the left limit before a group (V rising from v_init -1 towards rest): a -5 and a 0
    ("delta", [-5.0, 0.0], [0.5, 0.5], -1.0),
    ("delta", [0.0, -5.0], [0.5, 0.5], -1.0),
    # exponential synapse: the kink where a -5 turns the rise, beside a weight-0 event
    ("exponential", [1.0, 0.0, -5.0], [0.1, 0.5, 0.5], 0.0),
])
def test_readout_maximum_at_a_split_group_moves_with_its_nonzero_block_regression(
        syn, w_row, times, v_init):
    # A 1200-example run found dL/dx = [-0.25, 0.25] where the loss is constant: two hidden
    # neurons spiking at one instant (two causes) sent a readout +1 and a weight-0 event. The
    # walk took V after the +1 alone as a candidate at the weight-0 event, so the maximum's
    # adjoint moved with the weight-0 event's time (V(t_0) = e^{-(t_0 - t_1)/tau}).
    nrn = ExactNeuron("lif", syn, tau_mem_ms=10.0, v_init=v_init)
    net = ExactNetwork([ExactDense([w_row], nrn, readout=True)])
    sources = list(range(len(w_row)))
    res = simulate(net, _events(times, sources, len(w_row)), t_end_ms=T_END)
    # a delta input of weight 0 beside the jump is a kink in that weight (w < 0 arriving last
    # leaves V above the group's end), so the gradient as a whole is flagged; in the input times
    # alone the maximum is smooth, and that derivative is checked
    assert res.flags[0] == (K.FLAG_COINCIDENT if syn == "delta" else 0)
    got = vjp(res, [None], grad_max=np.ones((1, 1))).input_times
    # each event moved alone (each is its own cause), in the sorted order of times
    moved = np.array(times, dtype=np.float64)
    fd = central_differences(lambda: simulate(net, _events(moved, sources, len(w_row)),
                                              t_end_ms=T_END).readout_max[0, 0], moved)
    assert np.abs(fd).max() > 1e-3  # the maximum does move with some event
    np.testing.assert_allclose(got, fd, rtol=RTOL_FINITE_DIFF, atol=1e-9)
    # a weight-0 event does not move the maximum (to the rounding of V before and after it,
    # eps |V| / tau; the bug gave V / tau = 0.1)
    assert np.all(np.abs(got[np.array(w_row) == 0.0]) <= 1e-15)


def test_readout_maximum_after_the_regression_network_has_no_pixel_gradient():
    # the whole counterexample: hidden rows (1, 1) and (0, 2) both get the current 2 and spike
    # together; each readout gets a +1 from one of them and a weight-0 event from the other
    lif = ExactNeuron("lif", "delta", tau_mem_ms=10.0)
    net = ExactNetwork([ExactDense([[1.0, 1.0], [0.0, 0.0], [0.0, 2.0]], lif),
                        ExactDense([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], lif, readout=True)])
    inp = encoders.current([[1.0, 1.0]], T_END)
    res = simulate(net, inp, t_end_ms=T_END)
    # (flagged: the weight-0 entries of W2 are kinks; the pixels move only the spike times)
    assert res.layers[0].times[0] == res.layers[0].times[1]
    assert res.flags[0] == K.FLAG_COINCIDENT
    for j in range(2):
        g = np.zeros((1, 2))
        g[0, j] = 1.0
        np.testing.assert_array_equal(vjp(res, [None, None], grad_max=g).x, [[0.0, 0.0]])


@pytest.mark.parametrize("model, syn, w_row, times, v_init", [
    ("lif", "delta", [1.0, 1.0, 1.0], [0.1, 0.5, 0.5], 0.0),  # V after two +1: 1 + e^-|d|/tau
    ("lif", "delta", [-5.0, -5.0], [0.5, 0.5], -1.0),  # the left limit before two -5
    ("lif", "exponential", [1.0, -5.0, -5.0], [0.1, 0.5, 0.5], 0.0),  # the kink of two -5
])
def test_readout_maximum_at_a_split_group_of_two_nonzero_blocks_is_flagged(
        model, syn, w_row, times, v_init):
    # the maximum moves with whichever of the two blocks arrives last (first): its one-sided
    # derivatives in one block's time differ, so the gradient is flagged
    nrn = ExactNeuron(model, syn, tau_mem_ms=10.0, v_init=v_init)
    net = ExactNetwork([ExactDense([w_row], nrn, readout=True)])
    sources = list(range(len(w_row)))
    assert simulate(net, _events(times, sources, len(w_row)),
                    t_end_ms=T_END).flags[0] == K.FLAG_COINCIDENT
    h = 1e-6
    val = [simulate(net, _events(np.add(times, [0.0] * (len(w_row) - 1) + [d]), sources,
                                 len(w_row)), t_end_ms=T_END).readout_max[0, 0]
           for d in (-h, 0.0, h)]
    right, left = (val[2] - val[1]) / h, (val[1] - val[0]) / h
    assert abs(right - left) > 1e-3  # a kink, not a rounding


def test_readout_maximum_at_a_split_group_with_a_block_of_weight_zero_is_flagged():
    # The readout FD test (1200 examples) found W = [[1, 0]] with both inputs at 0.5 ms, two
    # causes, unflagged: the maximum is 1 + w_1 while they coincide, but 1 once the w_1 < 0
    # input arrives later, so it has no derivative in (w_1, t_1) jointly
    nrn = ExactNeuron("lif", "delta", tau_mem_ms=0.05)

    def top(w1, dt1):
        net = ExactNetwork([ExactDense([[1.0, w1]], nrn, readout=True)])
        res = simulate(net, _events([0.5, 0.5 + dt1], [0, 1], 2), t_end_ms=T_END)
        return res.readout_max[0, 0], res.flags[0]

    assert top(0.0, 0.0) == (1.0, K.FLAG_COINCIDENT)
    assert top(-1e-6, 0.0)[0] == 1.0 - 1e-6 and top(-1e-6, 1e-9)[0] == 1.0
    # +0.5 instead: at one instant the time kink of two nonzero blocks; 1 ms apart, no flag
    assert top(0.5, 0.0) == (1.5, K.FLAG_COINCIDENT)
    assert top(0.5, 1.0)[1] == 0


def test_readout_after_a_split_group_without_drift_is_not_flagged():
    # an IF readout without a current stays flat after two simultaneous +1: V = 2 in every order
    net = ExactNetwork([ExactDense([[1.0, 1.0]], ExactNeuron("if", "delta"), readout=True)])
    res = simulate(net, _events([0.5, 0.5], [0, 1], 2), t_end_ms=T_END)
    assert res.readout_max[0, 0] == 2.0 and res.flags[0] == 0
    np.testing.assert_array_equal(vjp(res, [None], grad_max=np.ones((1, 1))).input_times, 0.0)


@pytest.mark.parametrize("model, syn, v_init", [
    ("lif", "delta", 0.5),  # V falls from 0.5 at t = 0: max(V(0-), V(0-) + w) at the event at 0
    ("if", "exponential", 0.0),  # flat at rest: w tilts V after the event up or down
])
def test_readout_maximum_beside_an_input_of_weight_zero_is_a_tie_regression(model, syn, v_init):
    # The readout FD test found both (corner weights include 0): the maximum does not depend
    # on w to one side of 0 and grows with w to the other; the gradient was the one-sided 0
    nrn = ExactNeuron(model, syn, tau_mem_ms=0.05, tau_syn_ms=0.05, v_init=v_init)
    inp = _events([0.0, 0.0], [0, 0], 1, False)

    def top(w):
        res = simulate(ExactNetwork([ExactDense([[w]], nrn, readout=True)]), inp, t_end_ms=T_END)
        return res.readout_max[0, 0], res.flags[0]

    (m0, flag), (mp, _), (mm, _) = top(0.0), top(1e-6), top(-1e-6)
    assert abs((mp - m0) - (m0 - mm)) > 1e-9  # a kink in w (>= 1e-7 here), not a rounding
    assert flag == K.FLAG_READOUT_TIE
    assert top(0.5)[1] == 0 and top(-0.5)[1] == 0  # off the kink: no flag
    # an input of weight 0 at t_end tilts nothing inside the window
    late = _events([T_END], [0], 1, False)
    net = ExactNetwork([ExactDense([[0.0]], nrn, readout=True)])
    assert simulate(net, late, t_end_ms=T_END).flags[0] == 0


def test_readout_rise_to_inputs_at_the_window_end_is_its_maximum_regression():
    # A random run (flags test) found an IF readout with an exponential synapse that rises from
    # 0 towards 1 after +20 at t = 0, and gets -10, -10, +20 at t_end: the current after them
    # is exactly 0, so the state at t_end looked flat and V(t_end) = 1 was never a candidate
    # (the maximum was 0, flags 0). V(t_end) does not depend on the inputs at t_end.
    nrn = ExactNeuron("if", "exponential", tau_syn_ms=0.05)
    net = ExactNetwork([ExactDense([[-10.0, 20.0]], nrn, readout=True)])
    res = simulate(net, _events([0.0, T_END, T_END, T_END], [1, 0, 0, 1], 2, False),
                   t_end_ms=T_END, record_times=np.array([T_END]))
    assert res.flags[0] == 0
    assert res.readout_max[0, 0] == res.membrane[0][0, 0, 0] > 0.99
    # dV(t_end)/dw: the input at 0 lifts V by tau_s (1 - e^{-t_end / tau_s}) / C per unit weight
    np.testing.assert_allclose(vjp(res, [None], grad_max=np.ones((1, 1))).weights[0],
                               [[0.0, 0.05 * -math.expm1(-T_END / 0.05)]], rtol=1e-12)


@settings(max_examples=example_count(40))
@given(st.lists(st.integers(-12, 12), min_size=1, max_size=6), st.integers(0, 3),
       st.integers(-8, 7), st.data())
@example([2, -4, 8, 1], 1, 4, None)  # worked by hand: event 2's node last, V 0.5 + eighths
def test_group_last_kernel_moves_one_node_to_the_end(w8, e_first, pre8, data):
    # a group of simultaneous inputs [e_first, m), its nodes the last before n_nd (after
    # e_first + 1 earlier nodes): e_last's node goes last holding V after the group, the others
    # keep their order and hold the running sums in the new order; earlier nodes stay
    g = len(w8)
    m = e_first + g
    e_last = e_first + (data.draw(st.integers(0, g - 1)) if data is not None else 1)
    ev_src = np.arange(m)[::-1].copy()  # event e comes from source m - 1 - e
    w_row = np.zeros(m)
    w_row[ev_src[e_first:]] = np.array(w8) / 8  # (weights in eighths: every sum is exact)
    v_pre, v_end = pre8 / 8, pre8 / 8 + sum(w8) / 8
    n_nd = e_first + 1 + g
    head_v = np.arange(e_first + 1) / 16.0
    order = [e for e in range(e_first, m) if e != e_last] + [e_last]
    want_v = v_pre + np.cumsum([w_row[ev_src[e]] for e in order])
    want_v[-1] = v_end
    for kern in (K._group_last_kernel, ref._group_last_kernel):
        nd_v = np.concatenate([head_v, v_pre + np.cumsum(w_row[ev_src[e_first:]])])
        nd_aux = np.concatenate([np.arange(-1, e_first), np.arange(e_first, m)])
        kern(nd_v, nd_aux, w_row, ev_src, n_nd, e_first, m, v_pre, v_end, e_last)
        np.testing.assert_array_equal(nd_aux, [*range(-1, e_first), *order])
        np.testing.assert_array_equal(nd_v, [*head_v, *want_v])


def _fire(v, w, hard, u0, refractory):
    """``(V, spikes)`` after one delta input ``w`` arrives at ``v`` (theta = 1).
    ``refractory = [in a period, has periods]``, updated in place: an input inside a period is
    dropped; at most one spike with periods, else as many as the resets allow."""
    if refractory[0]:
        return v, 0
    v += w
    n = 0
    while v >= 1.0:
        n += 1
        v = u0 if hard else v - 1.0
        if refractory[1]:
            refractory[0] = True
            break
    return v, n


@settings(max_examples=example_count(60))
@given(st.lists(st.tuples(st.integers(-12, 12), st.integers(0, 3)), min_size=2, max_size=6),
       st.integers(-8, 7), st.booleans(), st.sampled_from([-0.5, 0.0, 0.375]),
       st.sampled_from([0.0, 1.0]))
def test_split_group_kernel_against_every_block_order(events, pre8, hard, u0, t_ref):
    # A group of simultaneous delta inputs (weights in eighths, so every sum is exact; V below
    # theta before it, as outside refractoriness it always is) whose events carry causes 0-3:
    # the kernel and its twin against all orders of the causes' blocks
    # (events of one cause arrive together). Fired group: the trigger is the block at which V
    # first reaches theta = 1, if it is the same in every order, and every order must give the
    # spike count of the group arriving at once (the blocks after the first spike may fire
    # again); V after it may differ by up to spread (blocks after the spike kept by a hard reset,
    # or dropped by a refractory period). Unfired: flagged if some order reaches theta. peak:
    # the highest partial sum v_pre + W_1 + ... of any order.
    w_row = np.array([w / 8 for w, _ in events])
    ev_src = np.arange(len(events))
    ev_cause = np.array([c for _, c in events])
    v_pre = pre8 / 8
    v0 = v_pre + w_row.sum()
    blocks = {c: w_row[ev_cause == c].sum() for c in set(ev_cause.tolist())}
    firsts, peak, ends = set(), v_pre, set()
    for order in itertools.permutations(blocks):
        v, first, spikes, refr = v_pre, None, 0, [False, t_ref > 0]
        peak = max([peak, *(v_pre + np.cumsum([blocks[c] for c in order]))])
        for c in order:
            v, n = _fire(v, blocks[c], hard, u0, refr)
            if first is None and n:
                first = c
            spikes += n
        firsts.add(first)
        ends.add((spikes, v))
    together = _fire(v_pre, w_row.sum(), hard, u0, [False, t_ref > 0])
    outs = [kern(w_row, ev_src, ev_cause, 0, len(events), v_pre, v0, 1.0, hard, u0, t_ref, 0.0)
            for kern in (_split_group_kernel, ref._split_group_kernel)]
    assert outs[0] == outs[1]
    flags, trig, got_peak, dom, n_sig, n_blk, spread = outs[0]
    assert got_peak == peak
    # the block of largest |W| (the lowest cause among equals: the kernel's block order) and the
    # count of blocks of nonzero weight (tol 0 here), for a readout maximum at the group
    big = max(abs(w) for w in blocks.values())
    assert dom == np.flatnonzero(ev_cause == min(c for c, w in blocks.items()
                                                 if abs(w) == big))[-1]
    assert n_sig == sum(w != 0.0 for w in blocks.values()) and n_blk == len(blocks)
    if v0 < 1.0:
        assert trig == -1 and bool(flags & K.FLAG_COINCIDENT) == (firsts != {None})
        assert spread == 0.0
        return
    unique = len(firsts) == 1
    firsts_block = next(iter(firsts))
    if unique:
        # the trigger is an event of that block: the block's last
        assert trig == np.flatnonzero(ev_cause == firsts_block)[-1]
    else:
        assert trig == -1
    several = not hard and v0 - 1.0 >= 1.0  # several soft-reset spikes at one instant
    counts = {n for n, _ in ends}
    assert bool(flags & K.FLAG_COINCIDENT) == (not unique or several or counts != {together[1]}), (
        ends, together)
    if unique and not several and counts == {together[1]}:
        # the kernel's bound: every block but the trigger's, of one sign, after the spike
        others = [w for c, w in blocks.items() if c != firsts_block]
        assert max(abs(v - together[0]) for _, v in ends) <= spread
        assert spread in (0.0, sum(w for w in others if w > 0), -sum(w for w in others if w < 0))


def test_blocks_after_the_trigger_of_a_split_group_are_flagged_regression():
    # The flags test (1200 examples) found a hard reset to u0 = 0.4 without refractoriness: +1.2
    # fires alone; the +0.6 of another cause, at the same instant, is absorbed before the reset,
    # but a perturbation that delays it lifts V from 0.4 to 1.0 again: a second spike, flags 0
    nrn = ExactNeuron("lif", "delta", tau_mem_ms=0.05, u0=0.4, v_init=0.0)
    net = ExactNetwork([ExactDense([[0.6, 1.2]], nrn)])
    res = simulate(net, _events([0.0, 0.0], [0, 1], 2), t_end_ms=T_END)
    later = simulate(net, _events([1e-12, 0.0], [0, 1], 2), t_end_ms=T_END)
    assert res.layers[0].times.size == 1 and later.layers[0].times.size == 2
    assert res.flags[0] & K.FLAG_COINCIDENT
    # a refractory period drops the late +0.6: one spike in every order, no flag
    ref_nrn = dataclasses.replace(nrn, t_ref_ms=1.0)
    res = simulate(ExactNetwork([ExactDense([[0.6, 1.2]], ref_nrn)]),
                   _events([0.0, 0.0], [0, 1], 2), t_end_ms=T_END)
    assert res.layers[0].times.size == 1 and res.flags[0] == 0


def test_spike_after_a_hard_reset_group_split_is_flagged():
    # +1.2 fires alone at 0.5 ms beside a +0.3 of another cause; a constant current then lifts
    # V to the next crossing. The +0.3 is absorbed before the hard reset when they coincide
    # (next spike 7.43 ms) but kept when it comes 1e-9 ms later (5.81 ms): the later spike time
    # jumps with the order, and was unflagged
    nrn = ExactNeuron("lif", "delta", tau_mem_ms=10.0)
    net = ExactNetwork([ExactDense([[1.2, 0.3, 2.0]], nrn)])

    def run(times, sources):
        inp = InputEvents(np.array([0, 2]), np.array(times), np.array(sources), np.ones(2),
                          np.array([[0.0, 0.0, 1.0]]), 3, T_END)
        return simulate(net, inp, t_end_ms=T_END)

    res, later = run([0.5, 0.5], [0, 1]), run([0.5, 0.5 + 1e-9], [0, 1])
    assert res.layers[0].times[1] - later.layers[0].times[1] > 1.0
    assert res.flags[0] & K.FLAG_COINCIDENT and later.flags[0] == 0


def test_movable_delta_input_at_the_window_end_is_flagged():
    # Found by the flags property test (random profile) once it compared readout maxima: a LIF
    # readout (tau_m 1 ms) gets +1 at 0 and +1 at t_end; its maximum, 1 + e^-10 right after the
    # second jump, falls to 1 when that input moves 1e-12 ms later, out of the window. Flags 0.
    nrn = ExactNeuron("lif", "delta", tau_mem_ms=1.0)
    net = ExactNetwork([ExactDense([[1.0]], nrn, readout=True)])
    res = simulate(net, _events([0.0, T_END], [0, 0], 1), t_end_ms=T_END)
    late = simulate(net, _events([0.0, T_END + 1e-12], [0, 0], 1, t_enc=T_END + 1.0),
                    t_end_ms=T_END)
    assert res.readout_max[0, 0] > 1.0 and late.readout_max[0, 0] == 1.0
    assert res.flags[0] & K.FLAG_BOUNDARY
    # ... and the other way: the input just after the window is pulled in by a perturbation
    assert late.flags[0] & K.FLAG_BOUNDARY
    spiking = ExactNetwork([ExactDense([[2.0]], nrn)])
    assert simulate(spiking, _events([T_END + 1e-12], [0], 1, t_enc=T_END + 1.0),
                    t_end_ms=T_END).flags[0] & K.FLAG_BOUNDARY
    # fixed times stay; a maximum elsewhere is not affected
    assert simulate(net, _events([0.0, T_END], [0, 0], 1, False), t_end_ms=T_END).flags[0] == 0
    early = simulate(net, _events([0.0, 0.0, T_END], [0, 0, 0], 1), t_end_ms=T_END)
    # (the two +1 at 0 are movable events of two causes: the maximum after both, 1 + e^-|d|/tau
    # when they split by d, is a kink in their times -- COINCIDENT, but no BOUNDARY)
    assert early.readout_max[0, 0] == 2.0 and early.flags[0] == K.FLAG_COINCIDENT
    once = simulate(ExactNetwork([ExactDense([[2.0, 1.0]], nrn, readout=True)]),
                    _events([0.0, T_END], [0, 1], 2), t_end_ms=T_END)
    assert once.readout_max[0, 0] == 2.0 and once.flags[0] == 0
