"""Exact mode's encoders, decoders, pixel gradients and clock mapping at their corners.

Strategies aim at pixels exactly 0 and 1 and one ulp inside, subnormal pixels, pixels whose
product ``x t_enc`` lands on the RateSyn grid, periods one ulp beside ``t_enc / n``, tiny and
large windows, output ties and silent outputs.

Oracles (each can fail): the encoders' documented rules checked spike by spike (RateSyn: the k-th
spike is kept iff ``fl(k Δ) <= fl(x t_enc)``); exact scalings by powers of two (bit for bit);
the reparameterised Poisson times against themselves at x / 2; exact mode's events mapped onto
the clock grid at Δt = 1 ms (``clock_inputs``) against the clock encoders of
:mod:`evsnn.encoders`; permutation of output neurons; gradients against central finite
differences through the encoder (also for real-valued currents, whose clock limit is checked too);
argument errors that name the argument.
"""

import math

import numpy as np
import pytest
from conftest import RTOL_FINITE_DIFF, RTOL_SUM_ORDER
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reference.helpers import PNG_MAGIC, example_count
from test_exact_corners import CLOCK_DTS, _robust, assert_first_order

from evsnn import encoders as clock_encoders
from evsnn.exact import ExactDense, ExactNetwork, ExactNeuron, decode, loss_and_grad, simulate
from evsnn.exact import encoders
from evsnn.exact import kernels as K
from evsnn.exact.convergence import ConvergenceData, clock_inputs, clock_network, convergence
from evsnn.exact.simulate import spike_time_jacobian

ULP1 = float(np.nextafter(1.0, 0.0))  # one ulp inside 1
TINY = 5e-324  # the smallest subnormal


def _pixel_corners():
    return st.one_of(
        st.sampled_from([0.0, 1.0, ULP1, TINY, 2.2250738585072014e-308, 1e-17, 0.5, 1 / 3]),
        st.integers(0, 255).map(lambda i: i / 255.0),
        st.floats(0.0, 1.0, allow_nan=False),
    )


def _pixels(max_n=4):
    return st.lists(_pixel_corners(), min_size=1, max_size=max_n).map(
        lambda v: np.asarray([v], dtype=np.float64))


# --------------------------------------------------------------------------- RateSyn
def _ratesyn_expected(x, t_enc, period, at_end):
    """Brute force: the k-th spike (k = 0, 1, ...) exists iff fl(k Δ) <= fl(x t_enc), or, when
    t_enc is a whole number T of periods (fl(T Δ) == t_enc), iff k <= fl(x T)."""
    times, sources = [], []
    whole = [T for T in range(1, 100_000) if T * period == t_enc][:1]
    for i, xi in enumerate(x):
        xt = xi * t_enc
        k = 0
        while (k <= xi * whole[0]) if whole else (k * period <= xt):
            times.append(t_enc - k * period if at_end else k * period)
            sources.append(i)
            k += 1
    order = np.lexsort((sources, times))
    return np.asarray(times, dtype=np.float64)[order], np.asarray(sources, dtype=np.int64)[order]


@st.composite
def ratesyn_cases(draw):
    t_enc = draw(st.one_of(st.sampled_from([1e-6, 1.0, 10.0, 30.0, 1e6]),
                           st.floats(1e-3, 1e3)))
    n = draw(st.integers(1, 150))
    # periods that tile t_enc (n Δ = t_enc in real arithmetic), one ulp either side, or anything
    kind = draw(st.sampled_from(["tile", "up", "down", "free"]))
    period = t_enc / n
    if kind == "up":
        period = float(np.nextafter(period, np.inf))
    elif kind == "down":
        period = float(np.nextafter(period, 0.0))
    elif kind == "free":
        period = t_enc / draw(st.floats(0.5, 60.0))
    x = draw(st.lists(st.one_of(_pixel_corners(),
                                st.integers(0, n).map(lambda k: k / n)),  # x t_enc on the grid
                      min_size=1, max_size=3))
    return np.asarray([x]), t_enc, period


@settings(max_examples=example_count(150))
@given(ratesyn_cases(), st.booleans())
def test_ratesyn_spikes_follow_the_documented_rule_and_stay_in_the_window(case, at_end):
    x, t_enc, period = case
    ev = (encoders.ratesyn_end if at_end else encoders.ratesyn_start)(x, t_enc, period_ms=period)
    t, s = _ratesyn_expected(x[0], t_enc, period, at_end)
    np.testing.assert_array_equal(ev.times, t)
    np.testing.assert_array_equal(ev.sources, s)
    assert np.all((ev.times >= 0) & (ev.times <= t_enc))
    assert ev.dtime_dx.shape == ev.times.shape and not np.any(ev.dtime_dx)
    assert ev.offsets.tolist() == [0, t.size]


def test_ratesyn_period_one_ulp_above_a_tiling_period_stays_in_the_window():
    # Δ = nextafter(10/67, inf): 10 / Δ rounds up to 67.0 but fl(67 Δ) = 10.000000000000002 > 10.
    # The count was floor(x t_enc / Δ) + 1 = 68, so RateSynS put a spike after the window's end
    # and RateSynE one at t = -1.8e-15, before its start (and the rule k Δ <= x t_enc broke).
    period = float(np.nextafter(10.0 / 67.0, np.inf))
    s = encoders.ratesyn_start([[1.0]], 10.0, period_ms=period)
    e = encoders.ratesyn_end([[1.0]], 10.0, period_ms=period)
    assert s.times.size == e.times.size == 67
    assert s.times.max() <= 10.0 and e.times.min() >= 0.0


def test_ratesyn_period_whose_quotient_rounds_down_keeps_the_last_spike():
    # Δ = nextafter(180.5 / 3, inf) = 60.16666666666667: fl(3 Δ) = 180.5 = x t_enc, so the rule
    # keeps k = 3, but floor(180.5 / Δ) = floor(2.9999999999999996) = 2 dropped it (RateSynE
    # lost its spike at t = 0)
    period = 60.16666666666667
    assert 3 * period == 180.5
    assert encoders.ratesyn_start([[1.0]], 180.5, period_ms=period).times.tolist()[-1] == 180.5
    assert encoders.ratesyn_end([[1.0]], 180.5, period_ms=period).times.tolist()[0] == 0.0


@settings(max_examples=example_count(60))
@given(ratesyn_cases(), st.integers(-30, 30), st.booleans())
def test_ratesyn_and_ttfs_scale_with_the_window_bit_for_bit(case, k, at_end):
    # x t_enc / Δ and every time are products and quotients of the scaled values: exact in binary
    x, t_enc, period = case
    f = 2.0 ** k
    fn = encoders.ratesyn_end if at_end else encoders.ratesyn_start
    a, b = fn(x, t_enc, period_ms=period), fn(x, t_enc * f, period_ms=period * f)
    np.testing.assert_array_equal(b.times, a.times * f)
    np.testing.assert_array_equal(b.sources, a.sources)
    a, b = encoders.ttfs(x, t_enc), encoders.ttfs(x, t_enc * f)
    np.testing.assert_array_equal(b.times, a.times * f)
    np.testing.assert_array_equal(b.dtime_dx, a.dtime_dx * f)


# --------------------------------------------------------------------------- TTFS
@settings(max_examples=example_count(80))
@given(_pixels(5), st.one_of(st.sampled_from([1e-300, 1e-6, 1.0, 30.0, 1e300]),
                             st.floats(1e-3, 1e4)))
def test_ttfs_times_derivatives_and_window(x, t_enc):
    ev = encoders.ttfs(x, t_enc)
    n = x.shape[1]
    assert ev.offsets.tolist() == [0, n] and sorted(ev.sources.tolist()) == list(range(n))
    t = np.empty(n)
    t[ev.sources] = ev.times
    np.testing.assert_array_equal(t, (1.0 - x[0]) * t_enc)
    assert np.all(ev.dtime_dx == -t_enc)
    assert np.all((ev.times >= 0) & (ev.times <= t_enc))
    assert np.all(np.diff(ev.times) >= 0)
    # x = 0 at the window's end, x = 1 at its start, one ulp inside 1: strictly after 0
    assert np.all(t[x[0] == 0.0] == t_enc) and np.all(t[x[0] == 1.0] == 0.0)
    assert np.all(t[x[0] == ULP1] > 0.0)


def test_ttfs_black_pixel_spike_at_the_window_end_is_flagged_boundary():
    # x = 0 puts the input at t_enc = t_end: a delta jump of 2 theta fires there, and the spike
    # leaves the window under any later perturbation
    net = ExactNetwork([ExactDense([[2.0], [0.5]], ExactNeuron("if", "delta"))])
    res = simulate(net, encoders.ttfs([[0.0]], 5.0))
    assert res.layers[0].times.tolist() == [5.0]
    assert res.flags[0] & K.FLAG_BOUNDARY
    g = loss_and_grad(net, encoders.ttfs([[0.0]], 5.0), np.array([0]))
    assert g.flags[0] & K.FLAG_BOUNDARY


# ------------------------------------------------------- exact events on the clock grid, Δt = 1
def _raster_at_dt1(ev, T):
    net = ExactNetwork([ExactDense(np.ones((1, ev.n_in)), ExactNeuron("if", "delta"))])
    return clock_inputs(ev, net, 1.0, T)[0][:, 0, :]


@settings(max_examples=example_count(60))
@given(st.integers(1, 300), st.lists(st.integers(0, 255), min_size=1, max_size=8))
def test_exact_ttfs_lands_in_the_clock_ttfs_step_off_the_knife_edge(T, levels):
    # the clock's paper rule (spike at max(1, T - floor(fl(x T)))) and exact mode's (1 - x) T
    # mapped by clock_inputs (step ceil(t - 1e-9) - 1) agree for every 8-bit pixel whose time is
    # not within 1e-9 of an integer, and for x = 0 and 1 (times T and 0, exact); on the knife
    # edge they may differ by one step: the clock reads fl(x T), exact mode rounds (1 - x) T
    # (x = 155/255, T = 153: fl(x T) = 92.99999999999999, clock step 60; exact time
    # 60.00000000000001, step 59)
    x = np.asarray([levels + [0, 255]]) / 255.0
    ev = encoders.ttfs(x, float(T))
    got = np.argmax(_raster_at_dt1(ev, T), axis=0)
    want = np.argmax(clock_encoders.ttfs(x, T)[:, 0, :], axis=0)
    t = np.empty(x.shape[1])
    t[ev.sources] = ev.times
    edge = np.abs(t - np.round(t)) <= 1e-9 * T
    edge[-2:] = False
    np.testing.assert_array_equal(got[~edge], want[~edge])
    assert np.all(np.abs(got[edge] - want[edge]) <= 1)


@settings(max_examples=example_count(60))
@given(st.integers(1, 120), st.lists(st.one_of(st.integers(0, 255).map(lambda i: i / 255.0),
                                               _pixel_corners()), min_size=1, max_size=6))
def test_exact_ratesyn_agrees_with_clock_ratesyn_after_t0(T, xs):
    # at Δ = Δt = 1 ms and t_enc = T both read the product x T: exact mode's spikes at t >= 1
    # are the clock's spikes (1-based times); exact mode adds one spike at t = 0 for RateSynS
    # (every pixel, h(x t_enc - 0) = 1) and for RateSynE with x T >= T (t_enc - T Δ = 0), which
    # window="half_open" drops: its trains are the clock's, spike for spike
    x = np.asarray([xs])
    for exact_fn, clock_fn in ((encoders.ratesyn_start, clock_encoders.ratesyn_start),
                               (encoders.ratesyn_end, clock_encoders.ratesyn_end)):
        ev = exact_fn(x, float(T))
        clock = clock_fn(x, T)[:, 0, :]
        late = ev.times >= 1.0
        got = np.zeros_like(clock)
        np.add.at(got, (ev.times[late].astype(np.int64) - 1, ev.sources[late]), 1.0)
        np.testing.assert_array_equal(got, clock)
        at0 = np.bincount(ev.sources[ev.times == 0.0], minlength=x.shape[1])
        want0 = (np.ones(x.shape[1]) if exact_fn is encoders.ratesyn_start
                 else (x[0] * T >= T).astype(float))
        np.testing.assert_array_equal(at0, want0)
        half = exact_fn(x, float(T), window="half_open")
        np.testing.assert_array_equal(half.times, ev.times[ev.times > 0.0])
        np.testing.assert_array_equal(half.sources, ev.sources[ev.times > 0.0])


@pytest.mark.parametrize("dt", [0.1, 0.2, 0.01, 0.5, 1.0])
def test_half_open_ratesyn_is_the_clock_train_at_any_dt(dt):
    # Review finding: the module docstring promises the clock trains spike for spike at
    # period_ms = Δt, t_enc = T Δt, window="half_open", but fl(k Δ) <= fl(x t_enc) lost spikes
    # where Δt is no power of two (x = 0.3, T = 10, Δt = 0.1: 0.1, 0.2 for the clock's 0.1, 0.2,
    # 0.3; 380 of 2144 pixels differed). Pixels on the clock's own grid x = k / T, T = 1..64.
    for T in range(1, 65):
        x = (np.arange(T + 1) / T)[None, :]
        for exact_fn, clock_fn in ((encoders.ratesyn_start, clock_encoders.ratesyn_start),
                                   (encoders.ratesyn_end, clock_encoders.ratesyn_end)):
            ev = exact_fn(x, T * dt, period_ms=dt, window="half_open")
            step = np.rint(ev.times / dt).astype(np.int64)  # clock step t = 1..T of each spike
            np.testing.assert_allclose(ev.times, step * dt, rtol=1e-12)
            got = np.zeros((T, T + 1))
            np.add.at(got, (step - 1, ev.sources), 1.0)
            np.testing.assert_array_equal(got, clock_fn(x, T)[:, 0, :], err_msg=f"T={T}")


def test_exact_ratesyn_window_is_checked():
    with pytest.raises(ValueError, match="window='open' is not supported"):
        encoders.ratesyn_start([[0.5]], 10.0, window="open")


# --------------------------------------------------------------------------- Poisson
@settings(max_examples=example_count(40))
@given(_pixels(4), st.sampled_from([0.1, 1.0, 20.0]), st.sampled_from([0.5, 1.0, 3.0]),
       st.integers(0, 2 ** 32 - 1))
def test_poisson_corners_reproducible_and_reparameterised(x, t_enc, rate, seed):
    ev = encoders.poisson(x, t_enc, rng=seed, max_rate_per_ms=rate)
    again = encoders.poisson(x, t_enc, rng=np.random.default_rng(seed), max_rate_per_ms=rate)
    for a in ("offsets", "times", "sources", "dtime_dx"):
        np.testing.assert_array_equal(getattr(ev, a), getattr(again, a))
    assert np.all(np.isfinite(ev.times)) and np.all(np.isfinite(ev.dtime_dx))
    assert np.all((ev.times > 0) & (ev.times <= t_enc))
    # sorted by time, then source
    assert np.all((np.diff(ev.times) > 0) | ((np.diff(ev.times) == 0) & (np.diff(ev.sources) > 0)))
    assert not np.any(np.isin(ev.sources, np.flatnonzero(x[0] == 0.0)))  # rate 0: silent
    np.testing.assert_array_equal(ev.dtime_dx, -ev.times / x[0][ev.sources])
    # the same unit draws at x / 2 (exact halving: no subnormal pixels): every time doubles
    assume(np.all((x[0] == 0) | (x[0] > 1e-300)))
    half = encoders.poisson(x / 2, t_enc, rng=seed, max_rate_per_ms=rate)
    for i in range(x.shape[1]):
        t_full, t_half = ev.times[ev.sources == i], half.times[half.sources == i]
        np.testing.assert_array_equal(t_half, 2 * t_full[: t_half.size])
        assert t_half.size == np.count_nonzero(2 * t_full <= t_enc)


def test_poisson_empty_batch_and_subnormal_rate():
    ev = encoders.poisson(np.zeros((0, 3)), 10.0, rng=0)
    assert ev.offsets.tolist() == [0] and ev.times.size == 0
    # a subnormal rate: the unit draws / 5e-324 overflow to inf, past the window (this raised
    # 'RuntimeWarning: overflow encountered in divide', an error under -W error); a rate that
    # underflows to 0 (5e-324 * 0.5): no events and no 0/0 in dtime_dx
    for rate in (1.0, 0.5):
        ev = encoders.poisson([[TINY, 1.0]], 10.0, rng=0, max_rate_per_ms=rate)
        assert np.all(ev.sources == 1) and np.all(np.isfinite(ev.dtime_dx))


@pytest.mark.parametrize("name", sorted(encoders.EXACT_ENCODERS))
def test_a_negative_zero_pixel_is_a_zero_pixel(name):
    """-0.0 passes the [0, 1] check (np.clip keeps it): every exact encoder codes it as 0.0.
    Was (review): Poisson drew its times as draw / (-0.0 · rate) = -inf, kept them as inside
    the window, with dtime_dx -inf, and the exact simulator took them silently."""
    kw = {"rng": 3} if name == "poisson" else {}
    enc = encoders.EXACT_ENCODERS[name]
    x = np.array([[-0.0, 0.5, 1.0], [0.25, -0.0, -0.0]])
    got = enc(x, 10.0, **kw)
    want = enc(np.abs(x), 10.0, **kw)
    for field in ("offsets", "times", "sources", "dtime_dx"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field))
    assert np.all(np.isfinite(got.times)) and np.all(got.times >= 0)
    if got.current is not None:
        assert not np.any(np.signbit(got.current))


def test_simulate_refuses_input_events_it_cannot_merge():
    """Hand-built InputEvents: a time of -inf or NaN, a source outside the layer, or a sample's
    events out of order are refused, naming the entry; a later sample may start earlier than
    the one before ended, and empty samples anywhere are fine."""
    net = _net([[1.0, 1.0]], "exponential")

    def events(times, sources, offsets):
        n = len(times)
        return encoders.InputEvents(np.asarray(offsets, np.int64), np.asarray(times, float),
                                    np.asarray(sources, np.int64), np.zeros(n), None, 2, 10.0)

    ok = simulate(net, events([2.0, 5.0, 1.0], [0, 1, 1], [0, 0, 2, 2, 3, 3]))
    assert ok.flags.shape == (5,)
    for times, sources, match in (
        ([2.0, -np.inf], [0, 1], r"inputs.times\[1\] = -inf; input event times must be finite"),
        ([np.nan, 3.0], [0, 1], r"inputs.times\[0\] = nan"),
        ([-1e-300, 3.0], [0, 1], r"inputs.times\[0\] = -1e-300"),
        ([1.0, 3.0], [0, 2], r"inputs.sources holds indices in \[0, 2\] but the inputs have "
                             r"n_in = 2"),
        ([3.0, 1.0], [0, 1], r"inputs.times\[1\] = 1.0 comes before the event ahead of it"),
    ):
        with pytest.raises(ValueError, match=match):
            simulate(net, events(times, sources, [0, 2]))


# --------------------------------------------------------------------------- decoders
def _net(w, syn):
    tau_s = 10.0 if syn == "alpha" else 5.0
    nrn = ExactNeuron("lif", syn, tau_mem_ms=10.0, tau_syn_ms=tau_s)
    return ExactNetwork([ExactDense(np.asarray(w, dtype=np.float64), nrn)])


@settings(max_examples=example_count(40))
@given(st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 4.0]), min_size=2, max_size=4),
       st.sampled_from([0.25, 0.5, 1.0]), st.randoms(use_true_random=False))
def test_first_spike_decode_ties_silence_and_output_permutation(ws, x, rnd):
    # IF under a constant current: spikes at k theta C / (w x), ties for equal weights, silence
    # (score -t_end) for w x t_end < theta; t_end = 2.1 is no spike time (no BOUNDARY flag)
    net = ExactNetwork([ExactDense(np.asarray(ws)[:, None], ExactNeuron("if", "delta"))])
    inp = encoders.current([[x]], 2.1)
    scores = decode(simulate(net, inp), "first_spike")[0]
    for wi, si in zip(ws, scores):
        t = 1.0 / (wi * x) if wi * x > 0 else math.inf
        assert si == (-t if t <= 2.1 else -2.1)
    perm = list(range(len(ws)))
    rnd.shuffle(perm)
    pnet = ExactNetwork([ExactDense(np.asarray(ws)[perm, None], ExactNeuron("if", "delta"))])
    np.testing.assert_array_equal(decode(simulate(pnet, inp), "first_spike")[0], scores[perm])
    label = rnd.randrange(len(ws))
    g = loss_and_grad(net, inp, np.array([label]))
    gp = loss_and_grad(pnet, inp, np.array([perm.index(label)]))
    # the softmax sums in another order: equal up to RTOL_SUM_ORDER
    assert abs(g.loss - gp.loss) <= RTOL_SUM_ORDER * abs(g.loss)
    np.testing.assert_allclose(gp.weights[0], g.weights[0][perm], rtol=RTOL_SUM_ORDER, atol=0)
    # |dt/dx| <= t_end / x and the softmax weights sum to <= 2: the scale of the x terms
    np.testing.assert_allclose(gp.x, g.x, rtol=0, atol=RTOL_SUM_ORDER * 2 * 2.1 / x)
    # a silent output is flagged: its first spike may enter the window
    assert bool(g.flags[0] & K.FLAG_BOUNDARY) == any(wi * x * 2.1 < 1.0 for wi in ws)
    assert not g.flags[0] & ~K.FLAG_BOUNDARY


@st.composite
def fd_cases(draw):
    enc = draw(st.sampled_from(["ttfs", "poisson", "current"]))
    n_in = draw(st.integers(1, 3))
    n_out = draw(st.integers(1, 3))
    # pixels near the box's corners, h-inside: TTFS at t ~ 0 and ~ t_enc, Poisson near rate 0
    x = np.asarray([draw(st.lists(st.sampled_from([1e-3, 0.02, 0.5, 0.98, 1 - 1e-3]),
                                  min_size=n_in, max_size=n_in))])
    seed = draw(st.integers(0, 1000))
    w = draw(st.lists(st.floats(0.3, 3.0), min_size=n_in * n_out, max_size=n_in * n_out))
    syn = draw(st.sampled_from(["exponential", "alpha"]))
    scale = 6.0 if syn == "alpha" else 4.0
    if enc == "current":
        scale = 0.4  # LIF: R I = w x against theta = 1
    w = np.asarray(w).reshape(n_out, n_in) * scale * (1 if enc != "current" else 6.0)
    return enc, x, seed, w, syn


def _enc(enc, x, seed):
    if enc == "poisson":
        return encoders.poisson(x, 10.0, rng=seed)
    return encoders.encode(x, enc, 10.0)


@settings(max_examples=example_count(40))
@given(fd_cases())
def test_pixel_gradients_match_finite_differences_through_the_encoder(case):
    enc, x, seed, w, syn = case
    net = _net(w, syn)
    t_end = 14.0 if enc != "current" else 10.0
    res = simulate(net, _enc(enc, x, seed), t_end_ms=t_end)
    assume(not res.flags.any() and res.layers[0].times.size > 0)
    # Poisson times go as 1/x: the central difference's truncation error is ~ (h / x)^2 relative;
    # its rounding error ~ ulp(f) / h sets the floor of the tolerance (1e-3 |f| at h = 1e-6):
    # |f| <= t_end for spike times, the loss itself for the loss (a single input shifts every
    # output spike alike, so dL/dx = 0 exactly while the difference sees a few ulps of L)
    h = 1e-6 * min(1.0, 10 * float(x.min())) if enc == "poisson" else 1e-6
    floor = 1e-9 / h
    # spike_time_jacobian's pixel columns against one-pixel central differences of every spike
    jac = spike_time_jacobian(res)
    for i in range(x.shape[1]):
        e = np.zeros_like(x)
        e[0, i] = h
        rp = simulate(net, _enc(enc, x + e, seed), t_end_ms=t_end)
        rm = simulate(net, _enc(enc, x - e, seed), t_end_ms=t_end)
        # the spike pattern, the input event count and the number of inputs before each spike
        # must survive the step: an input crossing a spike time is a kink (Poisson, x = 0.5,
        # dt/dx = -18: h = 1e-6 moves an input 1.8e-5 ms, across a spike 1.1e-5 ms before it)
        def before(r):
            return np.searchsorted(r.inputs.times, r.layers[0].times)
        assume(all(np.array_equal(r.layers[0].neurons, res.layers[0].neurons)
                   and r.inputs.times.size == res.inputs.times.size
                   and np.array_equal(before(r), before(res)) for r in (rp, rm)))
        fd = (rp.layers[0].times - rm.layers[0].times) / (2 * h)
        col = jac.x[:, 0, i]
        np.testing.assert_allclose(col, fd, rtol=0,
                                   atol=RTOL_FINITE_DIFF * max(np.linalg.norm(col), floor * t_end))
    # loss_and_grad's pixel gradient against the loss's central difference
    labels = np.array([0])
    g = loss_and_grad(net, _enc(enc, x, seed), labels, t_end_ms=t_end)
    assume(not g.flags.any())
    d = np.linspace(1.0, -0.5, x.shape[1])[None]
    lp = loss_and_grad(net, _enc(enc, x + h * d, seed), labels, t_end_ms=t_end).loss
    lm = loss_and_grad(net, _enc(enc, x - h * d, seed), labels, t_end_ms=t_end).loss
    an = float(np.sum(g.x * d))
    assert abs((lp - lm) / (2 * h) - an) <= RTOL_FINITE_DIFF * max(
        np.linalg.norm(g.x), floor * max(1.0, g.loss)
    )


# --------------------------------------------------------------------------- convergence
def _conv_net():
    return ExactNetwork([ExactDense([[2.0]], ExactNeuron("lif", "delta", tau_mem_ms=10.0))])


@pytest.mark.parametrize("dts, exc, match", [
    ((0.0,), ValueError, r"^dts_ms\[0\]=0.0 must be finite and lie in \(0, 10.0\]"),
    ((1.0, -1.0), ValueError, r"^dts_ms\[1\]=-1.0 must be finite"),
    ((float("nan"),), ValueError, r"^dts_ms\[0\]=nan must be finite"),
    ((20.0,), ValueError, r"^dts_ms\[0\]=20.0 must be finite and lie in \(0, 10.0\]"),
    ((3.0,), ValueError, r"^dts_ms\[0\]=3.0 does not divide the window t_end_ms=10.0"),
    (("1",), TypeError, r"^dts_ms\[0\] must be a real number, got str"),
    (1.0, TypeError, r"^dts_ms must be a sequence of clock steps in ms, got float 1.0"),
    ((), ValueError, r"^dts_ms is empty"),
])
def test_convergence_argument_errors_name_dts_ms(dts, exc, match):
    # before: ZeroDivisionError (0), 'lam=1.1 must lie in [0, 1]' (-1), 'cannot convert float
    # NaN to integer', "'float' object is not iterable", a numpy bitwise_and TypeError (()), and
    # Δt = 3 on a 10 ms window silently simulated 3 steps = 9 ms
    with pytest.raises(exc, match=match):
        convergence(_conv_net(), encoders.current([[1.0]], 10.0), dts_ms=dts)


@pytest.mark.parametrize("dt, exc, match", [
    (0.0, ValueError, r"^dt_ms=0.0 must be finite and > 0; the clock step in ms$"),
    (-1.0, ValueError, r"^dt_ms=-1.0 must be finite and > 0"),
    ("1", TypeError, r"^dt_ms must be a real number, got str '1'"),
])
def test_clock_network_and_clock_inputs_check_dt_ms(dt, exc, match):
    # before: dt_ms=0 returned a network with lam = 1 (no leak), -1 failed on 'lam=1.1'
    with pytest.raises(exc, match=match):
        clock_network(_conv_net(), dt)
    with pytest.raises(exc, match=match):
        clock_inputs(encoders.ttfs([[0.5]], 10.0), _conv_net(), dt, 10)


def test_clock_inputs_checks_n_steps_and_inputs():
    with pytest.raises(ValueError, match=r"^n_steps=-1 must be an integer >= 0 \(clock steps\)"):
        clock_inputs(encoders.ttfs([[0.5]], 10.0), _conv_net(), 1.0, -1)
    with pytest.raises(TypeError, match=r"^n_steps must be an integer \(clock steps\), got float"):
        clock_inputs(encoders.ttfs([[0.5]], 10.0), _conv_net(), 1.0, 10.0)
    with pytest.raises(TypeError, match=r"^inputs must be InputEvents"):
        clock_inputs(np.ones((1, 1)), _conv_net(), 1.0, 10)


def test_convergence_order_one_and_plot(tmp_path):
    # one spike at 10 ln 2: |error| <= Δt (the grid) + O(Δt) Euler error
    data = convergence(_conv_net(), encoders.current([[1.0]], 10.0), dts_ms=(0.1, 0.01, 0.001))
    assert data.counts_match.all() and np.all(data.max_error_ms <= 2 * data.dt_ms)
    assert np.all(data.max_error_ms > 0) and np.isfinite(data.order)
    for d in (data, ConvergenceData(np.array([1.0, 0.1]), np.array([math.inf, 0.0]),
                                    np.array([False, True]), math.nan)):
        p = d.plot(tmp_path / "c.png")
        assert p.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("decoder, readout, match", [
    ("FIRST_SPIKE", False, r"^decoder='FIRST_SPIKE' is not a decoder; use one of"),
    (np.array(["count"]), False, r"^decoder=array\(\['count'\].* is not a decoder"),
    ("max_membrane", False, r"^decoder='max_membrane' needs a readout last layer"),
    ("count", True, r"^decoder='count' needs a spiking last layer"),
])
def test_loss_and_grad_decoder_errors_name_decoder(decoder, readout, match):
    # the messages said 'method=...', the name of decode()'s argument, not loss_and_grad's; an
    # array decoder raised numpy's 'truth value of an array ... is ambiguous'
    net = ExactNetwork([ExactDense([[2.0], [1.0]], ExactNeuron("if", "delta"), readout=readout)])
    with pytest.raises(ValueError, match=match):
        loss_and_grad(net, encoders.current([[1.0]], 3.0), np.array([0]), decoder=decoder)


# --------------------------------------------------------------------------- real currents
# ``encoders.current(..., pixel_range="real")``: any finite current, as the clock encoder takes
# it. Nothing in the exact kernels may assume W x >= 0 or x <= 1: the clock limit (Euler, no
# such assumption) and finite differences are the oracles.
_REAL_PIXELS = (-2.0, -0.7, -0.05, 0.0, 0.4, 1.0, 1.3, 2.5, 4.0)


@st.composite
def real_current_cases(draw, readout=False):
    """(network, x): one or two LIF layers of 1-3 neurons, weights of both signs, pixels of both
    signs and above 1; the second layer takes the first's spikes. ``readout``: the last layer
    is a readout (its membrane maximum decoded)."""
    syn = draw(st.sampled_from(["delta", "exponential", "alpha"]))
    tau_s = 10.0 if syn == "alpha" else 5.0
    nrn = ExactNeuron("lif", syn, tau_mem_ms=10.0, tau_syn_ms=tau_s)
    n_in = draw(st.integers(1, 3))
    widths = [n_in] + [draw(st.integers(1, 3)) for _ in range(draw(st.integers(1, 2)))]
    layers = []
    for k in range(len(widths) - 1):
        w = draw(st.lists(st.floats(-1.5, 3.0), min_size=widths[k] * widths[k + 1],
                          max_size=widths[k] * widths[k + 1]))
        is_ro = readout and k == len(widths) - 2
        layers.append(ExactDense(np.reshape(w, (widths[k + 1], widths[k])), nrn, readout=is_ro))
    x = np.asarray([draw(st.lists(st.sampled_from(_REAL_PIXELS), min_size=n_in,
                                  max_size=n_in))])
    return ExactNetwork(layers), x


@settings(max_examples=example_count(20))
@given(real_current_cases())
def test_real_valued_current_is_the_clock_limit(case):
    net, x = case
    inp = encoders.current(x, 10.0, pixel_range="real")
    res = simulate(net, inp, t_end_ms=10.0)
    assume(res.layers[0].times.size > 0)  # a silent network would pass trivially
    assume(res.flags[0] == 0 and _robust(net, inp, res))
    data = convergence(net, inp, dts_ms=CLOCK_DTS, t_end_ms=10.0)
    assert np.all(data.counts_match), data
    # first order, with test_exact_corners' decade and per-spike floor (a current clipped to
    # [0, 1] anywhere moves the spikes by far more)
    assert_first_order(net, inp, res, data, 10.0)


# About 60 % of the drawn cases are flagged or have a zero gradient (600 judged, 1,860 and
# 2,101 rejected in two 1,200-example runs), which one random run's health check took for a
# failing strategy: the filter is the test's design, as in the other FD checks
@settings(max_examples=example_count(20), suppress_health_check=[HealthCheck.filter_too_much])
@given(real_current_cases(readout=True))
def test_real_valued_current_pixel_gradient_matches_finite_differences(case):
    net, x = case
    labels = np.array([0])
    enc = lambda v: encoders.current(v, 10.0, pixel_range="real")  # noqa: E731
    g = loss_and_grad(net, enc(x), labels, t_end_ms=10.0, decoder="max_membrane")
    # a readout whose maximum is its start (net negative input) has a zero gradient: no test
    assume(not g.flags.any() and np.abs(g.x).max() > 0)
    h = 1e-6
    d = np.linspace(1.0, -0.5, x.shape[1])[None]
    grid = np.linspace(0.0, 10.0, 1001)
    rp, rm, res = (simulate(net, enc(x + s * h * d), t_end_ms=10.0, record_times=grid)
                   for s in (1, -1, 0))
    # each readout's maximum must keep its place (to a grid step): a step across a place where
    # it jumps is a kink, no test of the derivative (a random run found a current 1.2e-7 from
    # balance, W = [[1, 6e-8]], x = [0, -2], which h = 1e-6 tilts the other way)
    peaks = [np.argmax(r.membrane[-1][0], axis=1) for r in (rp, rm, res)]
    assume(all(np.all(np.abs(p - peaks[2]) <= 1) for p in peaks[:2]))
    # the spike pattern must survive the step (a spike crossing the window's end is a jump)
    assume(all(np.array_equal(a.counts, b.counts)
               for r in (rp, rm) for a, b in zip(r.layers, res.layers)))
    lp, lm = (loss_and_grad(net, enc(x + s * h * d), labels, t_end_ms=10.0,
                            decoder="max_membrane").loss for s in (1, -1))
    an = float(np.sum(g.x * d))
    # rounding of the difference: ulp(L) / h; the loss is O(1)
    assert abs((lp - lm) / (2 * h) - an) <= RTOL_FINITE_DIFF * max(
        np.linalg.norm(g.x), 1e-9 / h * max(1.0, g.loss))


def test_readout_at_rest_under_a_balanced_current_is_flagged_regression():
    # a 1200-example run found W = [[0, 0], [0, 1], [-1, 0]], x = [-2, 0] unflagged: readout 1
    # gets W x = 0 and stays at rest on the whole window, so its maximum sits at t = 0 for
    # W x < 0 and at t_end for W x > 0 (a kink); the pixel gradient was the one-sided 0 (FD
    # -0.432 against -0.404 in the direction (1, -0.5))
    lif = ExactNeuron("lif", "delta", tau_mem_ms=10.0)
    w = np.array([[0.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    net = ExactNetwork([ExactDense(w[1:], lif, readout=True)])
    inp = encoders.current([[-2.0, 0.0]], 10.0, pixel_range="real")
    assert simulate(net, inp).flags[0] & K.FLAG_READOUT_TIE
    # off the balance the maximum has one place (t_end, or t = 0 for a falling membrane)
    for x in ([[-2.0, 1e-6]], [[-2.0, -1e-6]]):  # beyond TOL_V = 1e-9 of the start value
        assert simulate(net, encoders.current(x, 10.0, pixel_range="real")).flags[0] == 0
    # LIF in equilibrium away from 0 (v_init = u0 + R I) and IF at zero current: flagged too
    eq = ExactNeuron("lif", "delta", tau_mem_ms=10.0, u0=-0.5, v_init=0.0)
    res = simulate(ExactNetwork([ExactDense([[1.0]], eq, readout=True)]),
                   encoders.current([[0.5]], 10.0))
    assert res.flags[0] & K.FLAG_READOUT_TIE
    res = simulate(ExactNetwork([ExactDense([[1.0]], ExactNeuron("if", "delta"), readout=True)]),
                   encoders.current([[0.0]], 10.0))
    assert res.flags[0] & K.FLAG_READOUT_TIE
    # a readout behind spikes (no current) at rest before its first input is no kink
    hidden = ExactDense([[3.0]], lif)
    res = simulate(ExactNetwork([hidden, ExactDense([[-1.0]], lif, readout=True)]),
                   encoders.current([[1.0]], 10.0))
    assert res.layers[0].times.size > 0 and res.flags[0] == 0


def test_real_valued_current_range_errors_name_the_fix():
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*pixel_range='real'"):
        encoders.current([[-0.5]], 10.0)
    with pytest.raises(ValueError, match=r"^x holds NaN or infinite values; pixels must be "
                                         r"finite \(pixel_range='real'\)"):
        encoders.current([[np.inf]], 10.0, pixel_range="real")
    with pytest.raises(ValueError, match=r"^pixel_range='pixels' is not a pixel range"):
        encoders.current([[0.5]], 10.0, pixel_range="pixels")
    with pytest.raises(ValueError, match=r"^pixel_range='real' is for current \(direct\) coding "
                                         r"only: encoder 'ttfs'.*\(or method='current'\)$"):
        encoders.encode([[0.5]], "ttfs", 10.0, pixel_range="real")
    with pytest.raises(ValueError, match=r"encoder 'poisson'"):
        encoders.encode([[0.5]], "poisson", 10.0, rng=0, pixel_range="real")
    # "unit" is every encoder's own range: accepted and the same as without it
    a = encoders.encode([[0.25]], "ttfs", 10.0, pixel_range="unit")
    np.testing.assert_array_equal(a.times, encoders.ttfs([[0.25]], 10.0).times)
    got = encoders.encode([[-0.5, 2.0]], "current", 10.0, pixel_range="real").current
    np.testing.assert_array_equal(got, [[-0.5, 2.0]])
