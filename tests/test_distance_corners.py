"""Spike distances and L2 gains at their corners: property tests whose strategies aim at the
cases the generic strategies of ``tests/test_spike_distance.py`` and ``tests/test_l2gain.py``
rarely draw.

* Victor–Purpura: q = 0, q = inf, q exactly at 2/gap (a move ties with delete + insert) and one
  ulp either side, q far beyond every gap; empty trains, duplicated spikes (several spikes at one
  time), spikes at 0, times near 2^40 and 1e15 (coarse ulps) and at 2^±990 (q near its extremes);
  the band edge of the pairwise lanes kernel (q · span = 2); rasters at dt = 2^k and 0.1, spikes
  at the first and last step, event lists with duplicated events.
* L2 gain: zero weights, one neuron, T = 1, λ = 0 and 1, weights scaled by 2^k far from 1, zero
  rows and duplicated rows, DLIF factors; zero-energy perturbations of simulated networks.

Oracles (each can fail): exhaustive enumeration of all matchings of tiny trains (single- and
multi-unit), the kernels' twins, the textbook DP, closed forms (|n - m|, n + m - 2·#coincident,
the Hamming distance of rasters once one step costs >= 2, ‖W‖₂ at T = 1 or λ = 0, the λ = 1
singular value 1 / (2 sin(π / (4T + 2))), ‖W‖₂ / (1 - λ)), metric axioms, exact covariances
(scaling times by 2^k and q by 2^-k, shifting all times, permuting and rescaling W), the
documented guarantees (no input beats the gain; the gain grows with T to the H∞ norm; the
verdict of Theorem 3.1's check follows the dense SVD).
"""

import math

import numpy as np
import pytest
from conftest import ATOL_TWIN, RTOL_INDEPENDENT, RTOL_TWIN
from hypothesis import given, settings
from hypothesis import strategies as st

from certify.l2gain import (
    check_stated_bound,
    hinf_norm,
    l2_gain,
    mppd_adjoint,
    network_gains,
    perturbation_operator,
    stated_gain,
)
from certify.spike_distance import (
    multiunit_victor_purpura_distance,
    pairwise_victor_purpura,
    population_victor_purpura,
    van_rossum_distance,
    victor_purpura_distance,
)
from evsnn.clock import Dense, Network, SpikeEvents, spike_events
from evsnn.metrics import mppd_response, step_factors
from evsnn.params import LIF
from reference import l2gain as ref_gain
from reference import spike_distance as ref
from reference.helpers import example_count

# A VP distance is a sum of at most n + m <= 10 terms (1 per deletion or insertion, q·|Δt| < 2
# per move), so any two summation orders differ by at most ~10 · 10 · 2^-53 ≈ 1e-14; 1e-12 (the
# twin tolerance) leaves two orders of margin and still catches any wrong matching (>= 1e-3 off
# in these strategies unless two matchings tie).
SUM_SLACK = ATOL_TWIN


# --------------------------------------------------------------------------- oracles
def brute_force_vp(a, b, q, labels_a=None, labels_b=None, k=0.0):
    """Least edit cost over every partial matching of a's spikes to b's (no ordering
    constraint): n + m - 2·|M| + Σ_M (q |a_i - b_j| + k [labels differ]). A move between equal
    times costs 0 also at q = inf (the module's convention)."""
    n, m = len(a), len(b)
    best = math.inf

    def rec(i, used, matched, moves):
        nonlocal best
        if i == n:
            best = min(best, (n + m - 2 * matched) + moves)
            return
        rec(i + 1, used, matched, moves)
        for j in range(m):
            if not used >> j & 1:
                d = abs(a[i] - b[j])
                c = q * d if d > 0 else 0.0
                if labels_a is not None and labels_a[i] != labels_b[j]:
                    c += k
                rec(i + 1, used | 1 << j, matched + 1, moves + c)

    rec(0, 0, 0, 0.0)
    return best


# --------------------------------------------------------------------------- strategies
# (origin, unit): times are origin + unit · (small integer). 2^40 and 1e15 (ulp 1/8) keep the
# dyadic grid exact far from 0; 2^990 and 2^-1000 put q · gap = 2 at q near 2^-989 and 2^1001;
# (0.1, 0.3) has inexact differences (every oracle sees the same rounded times).
SCALES = [(0.0, 0.25), (2.0**40, 0.25), (1e15, 0.125), (0.0, 2.0**990), (0.0, 2.0**-1000),
          (0.1, 0.3)]


@st.composite
def corner_trains(draw, count, max_n=5):
    origin, unit = draw(st.sampled_from(SCALES))
    # few distinct grid points: duplicates within a train and coincidences across trains
    ints = st.lists(st.integers(0, 8), max_size=max_n)
    trains = [origin + np.array(draw(ints), float) * unit for _ in range(count)]
    return trains, unit


@st.composite
def corner_cost(draw, trains, unit):
    """q = 0, inf, 2/gap for a gap of the trains (a tie), one ulp either side, or random."""
    allt = np.concatenate(trains)
    gaps = np.abs(np.subtract.outer(allt, allt))
    gaps = np.unique(gaps[gaps > 0])
    kind = draw(st.sampled_from(["zero", "inf", "tie", "below", "above", "random"]))
    if kind in ("tie", "below", "above") and gaps.size:
        q = 2.0 / float(draw(st.sampled_from(list(gaps))))
        return {"tie": q, "below": np.nextafter(q, 0.0), "above": np.nextafter(q, np.inf)}[kind]
    if kind == "zero":
        return 0.0
    if kind == "inf":
        return math.inf
    return draw(st.floats(0.01, 10.0)) / unit


# --------------------------------------------------------------------------- Victor–Purpura
@settings(max_examples=example_count(80))
@given(st.data())
def test_vp_equals_exhaustive_matching_at_corners(data):
    (a, b), unit = data.draw(corner_trains(2))
    q = data.draw(corner_cost([a, b], unit))
    want = brute_force_vp(np.sort(a), np.sort(b), q)
    got = victor_purpura_distance(a, b, q)
    assert got == pytest.approx(want, rel=SUM_SLACK, abs=SUM_SLACK)
    assert got == pytest.approx(ref.twin_victor_purpura(a, b, q), rel=RTOL_TWIN, abs=ATOL_TWIN)
    assert got == pytest.approx(ref.textbook_victor_purpura(a, b, q), rel=SUM_SLACK, abs=SUM_SLACK)
    # the band of moves cheaper than delete + insert: |n - m| <= D <= n + m - 2·#coincident
    n, m = len(a), len(b)
    assert abs(n - m) <= got <= n + m - 2 * ref.coincidences(a, b)
    if q == 0.0:
        assert got == abs(n - m)
    # once every non-zero gap costs >= 2, only coincidences are kept: an exact integer
    gaps = np.abs(np.subtract.outer(a, b))
    if q == math.inf or (q > 0 and np.all(q * gaps[gaps > 0] >= 2.0)):
        assert got == n + m - 2 * ref.coincidences(a, b)


@settings(max_examples=example_count(60))
@given(st.data())
def test_vp_metric_axioms_at_corners(data):
    (a, b, c), unit = data.draw(corner_trains(3))
    q = data.draw(corner_cost([a, b, c], unit))
    d = lambda x, y: victor_purpura_distance(x, y, q)  # noqa: E731
    dab, dbc, dac = d(a, b), d(b, c), d(a, c)
    assert d(a, a) == 0.0 and dab >= 0.0
    assert dab == pytest.approx(d(b, a), rel=SUM_SLACK, abs=SUM_SLACK)
    # exact in real arithmetic; the three values carry <= 1e-14 of rounding each (SUM_SLACK)
    assert dac <= dab + dbc + SUM_SLACK
    # zero only for equal multisets -- unless q · gap underflows to 0 (q · 2^-1000 for q < 2^-74
    # never happens here: random q >= 0.01 / unit)
    if q > 0 and not np.array_equal(np.sort(a), np.sort(b)):
        assert dab > 0.0


# (origin 2^20 with j = -1000 is left out: 2^20 + 2^-1000 rounds to 2^20)
@pytest.mark.parametrize("j, origin", [(j, 0.0) for j in (-1000, -30, -2, 0, 3, 40, 990)]
                         + [(j, 2.0**20) for j in (-30, -2, 0, 3, 40, 990)])
def test_vp_one_move_at_the_tie_and_one_ulp_either_side(j, origin):
    """a = [t], b = [t + g] with g = 2^j and q = 2/g: the move costs exactly 2 (= delete +
    insert), q one ulp below costs q·g (just under 2), above the move is dropped. Extra far
    spikes around the pair must not change the pair's part (their own cost is 2 each)."""
    g = 2.0**j
    t = origin + g
    assert t != origin
    tie = 2.0 / g
    for q, want in [(tie, 2.0), (np.nextafter(tie, 0.0), np.nextafter(tie, 0.0) * g),
                    (np.nextafter(tie, np.inf), 2.0)]:
        assert victor_purpura_distance([origin], [t], q) == want
        assert ref.twin_victor_purpura([origin], [t], q) == want
        # pairwise: q · span = 2 is outside the lanes kernel's band, just below it is inside
        np.testing.assert_array_equal(pairwise_victor_purpura([[origin], [t], []], q),
                                      [[0, want, 1], [want, 0, 1], [1, 1, 0]])
    # far spikes on both sides (5 gaps away: moving costs 10)
    far = [origin + 5 * g * 2, origin + 5 * g * 3]
    a, b = [origin] + far[:1], [t] + far[1:]
    assert victor_purpura_distance(a, b, tie) == 4.0  # tie + delete + insert
    # (q·g + 2 is not representable: which way it rounds depends on the order of the sum)
    assert victor_purpura_distance(a, b, np.nextafter(tie, 0.0)) == pytest.approx(
        np.nextafter(tie, 0.0) * g + 2, rel=SUM_SLACK)


@settings(max_examples=example_count(60))
@given(st.data(), st.integers(-200, 200))
def test_vp_and_van_rossum_scale_by_powers_of_two_bit_for_bit(data, k):
    """Times · 2^k with q · 2^-k (τ · 2^k): every difference and product scales exactly (no
    overflow or subnormals for these ranges), so the distances are equal to the last bit."""
    ints = st.lists(st.integers(0, 12), max_size=5)
    a, b, c = (np.array(data.draw(ints), float) / 4 for _ in range(3))
    q = data.draw(corner_cost([a, b, c], 0.25))
    s = 2.0**k
    assert victor_purpura_distance(a * s, b * s, q / s) == victor_purpura_distance(a, b, q)
    np.testing.assert_array_equal(pairwise_victor_purpura([a * s, b * s, c * s], q / s),
                                  pairwise_victor_purpura([a, b, c], q))
    assert van_rossum_distance(a * s, b * s, 0.75 * s) == van_rossum_distance(a, b, 0.75)


@settings(max_examples=example_count(40))
@given(st.lists(st.integers(0, 40), max_size=8), st.lists(st.integers(0, 40), max_size=8),
       st.integers(0, 2**20), st.sampled_from([0, 10, 30, 44]), st.sampled_from(
           [0.0, 0.5, 1.0, 8.0, 2.0 / 3.0, math.inf]))
def test_vp_invariant_to_large_common_shifts(xs, ys, m, e, q):
    """Times on a 1/4 grid shifted by m · 2^e <= 2^64: when the shifted times stay exact (below
    2^51 here), every difference is exact and the distance is bit-identical."""
    a, b = np.array(xs, float) / 4, np.array(ys, float) / 4
    shift = float(m) * 2.0**e
    if shift + 40.0 >= 2.0**51:
        shift = 2.0**50
    assert victor_purpura_distance(a + shift, b + shift, q) == victor_purpura_distance(a, b, q)
    np.testing.assert_array_equal(pairwise_victor_purpura([a + shift, b + shift], q),
                                  pairwise_victor_purpura([a, b], q))
    assert van_rossum_distance(a + shift, b + shift, 2.0) == van_rossum_distance(a, b, 2.0)


@settings(max_examples=example_count(40))
@given(st.lists(st.lists(st.integers(0, 12), max_size=5), min_size=1, max_size=20),
       st.sampled_from([0.25, 1.0, 2.0**-30]),
       st.sampled_from(["span", "below", "above", "zero", "inf", "half"]))
def test_pairwise_equals_pair_distance_at_the_lanes_band_edge(ints, unit, kind):
    """Pairs whose q · span is just below 2 go to the lanes kernel, at or above 2 to the banded
    one: both must give the pair distance bit for bit, whichever side of the edge."""
    trains = [np.array(t, float) * unit for t in ints]
    allt = np.concatenate(trains)
    span = float(np.ptp(allt)) if allt.size else 1.0
    span = span or unit
    q = {"span": 2.0 / span, "below": np.nextafter(2.0 / span, 0.0),
         "above": np.nextafter(2.0 / span, np.inf), "zero": 0.0, "inf": math.inf,
         "half": 1.0 / span}[kind]
    D = pairwise_victor_purpura(trains, q)
    want = np.array([[victor_purpura_distance(x, y, q) for y in trains] for x in trains])
    np.testing.assert_array_equal(D, want)
    np.testing.assert_array_equal(D, D.T)
    assert np.all(np.diag(D) == 0.0)


# --------------------------------------------------------------------------- population
@st.composite
def raster_pair(draw):
    T, B, N = draw(st.integers(1, 6)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    p = draw(st.sampled_from([0.0, 0.3, 1.0]))
    clean = (rng.random((T, B, N)) < p).astype(float)
    pert = np.where(rng.random((T, B, N)) < 0.3, 1.0 - clean, clean)
    # spikes at the window's edges (first and last step) are common
    pert[[0, -1]] = np.where(rng.random((2, B, N)) < 0.5, 1.0, pert[[0, -1]])
    return clean, pert


@settings(max_examples=example_count(50))
@given(raster_pair(), st.sampled_from([2.0**-3, 0.1, 1.0, 3.0, 2.0**20]),
       st.sampled_from(["tie", "below", "zero", "inf", "random"]), st.floats(0.01, 1.9))
def test_population_closed_forms_and_forms_agree(pair, dt, kind, r):
    clean, pert = pair
    q = {"tie": 2.0 / dt, "below": np.nextafter(2.0 / dt, 0.0), "zero": 0.0, "inf": math.inf,
         "random": r / dt}[kind]
    res = population_victor_purpura(clean, pert, q=q, dt=dt)
    hamming = np.abs(clean - pert).sum(axis=0)
    counts = np.abs(clean.sum(axis=0) - pert.sum(axis=0))
    # moves are never worth more than delete + insert; each extra spike costs 1
    assert np.all(res.per_neuron <= hamming + SUM_SLACK)
    assert np.all(res.per_neuron >= counts)
    if q == 0.0:
        np.testing.assert_array_equal(res.per_neuron, counts)
    exact_grid = math.frexp(dt)[0] == 0.5  # dt = 2^k: step · dt and their differences exact
    if q == math.inf or (exact_grid and q * dt >= 2.0):
        # one step costs >= 2: only coincidences are kept, the Hamming distance of the rasters
        np.testing.assert_array_equal(res.per_neuron, hamming)
    # event lists, raster/event mixes and the pair function agree bit for bit
    ev_a, ev_b = spike_events(clean), spike_events(pert)
    N = clean.shape[2]
    for x, y, kw in ((ev_a, ev_b, {"n_neurons": N}), (ev_a, pert, {}), (clean, ev_b, {})):
        np.testing.assert_array_equal(population_victor_purpura(x, y, q=q, dt=dt, **kw)
                                      .per_neuron, res.per_neuron)
    for b in range(clean.shape[1]):
        for n in range(N):
            assert res.per_neuron[b, n] == victor_purpura_distance(
                np.flatnonzero(clean[:, b, n]) * dt, np.flatnonzero(pert[:, b, n]) * dt, q)


def test_population_event_list_with_duplicated_events_is_a_multiset():
    # two events of neuron 0 at step 1 against one clean spike at step 0: move one (q · 1) and
    # insert the other (1); a raster cannot hold this, the event list can
    clean = np.zeros((3, 1, 2))
    clean[0, 0, 0] = 1
    ev = SpikeEvents(np.array([0, 2]), np.array([1, 1]), np.array([0, 0]))
    got = population_victor_purpura(clean, ev, q=0.5).per_neuron
    np.testing.assert_array_equal(got, [[1.5, 0.0]])
    assert victor_purpura_distance([0.0], [1.0, 1.0], 0.5) == 1.5


# --------------------------------------------------------------------------- multi-unit
@settings(max_examples=example_count(60))
@given(st.data())
def test_multiunit_equals_exhaustive_matching_at_corners(data):
    (ta, tb), unit = data.draw(corner_trains(2, max_n=4))
    q = data.draw(corner_cost([ta, tb], unit))
    la = np.array(data.draw(st.lists(st.integers(0, 2), min_size=ta.size, max_size=ta.size)),
                  np.int64)
    lb = np.array(data.draw(st.lists(st.integers(0, 3), min_size=tb.size, max_size=tb.size)),
                  np.int64)
    gaps = np.abs(np.subtract.outer(ta, tb))
    move = float(q * gaps[gaps > 0].min()) if q > 0 and (gaps > 0).any() else 0.0
    # k = 0, the relabel tie k = 2, k = inf, and k = 2 - (cheapest move): relabel + move ties
    # with delete + insert
    k = data.draw(st.sampled_from([0.0, 2.0, math.inf, max(2.0 - move, 0.0), 0.7]))
    want = brute_force_vp(ta, tb, q, la, lb, k)
    got = multiunit_victor_purpura_distance(ta, la, tb, lb, q, k)
    assert got == pytest.approx(want, rel=SUM_SLACK, abs=SUM_SLACK)
    assert multiunit_victor_purpura_distance(tb, lb, ta, la, q, k) == pytest.approx(
        got, rel=SUM_SLACK, abs=SUM_SLACK)


# --------------------------------------------------------------------------- L2 gain
@st.composite
def corner_layer(draw, max_T=5, max_n=3):
    """λ at 0, 1 or inside; T from 1; W with zero rows, duplicated rows, rank one or all zero."""
    T = draw(st.integers(1, max_T))
    n_out, n_in = draw(st.integers(1, max_n)), draw(st.integers(1, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    W = rng.normal(size=(n_out, n_in))
    shape = draw(st.sampled_from(["generic", "zero-row", "dup-row", "rank-one", "zero", "int"]))
    if shape == "zero-row":
        W[0] = 0.0
    elif shape == "dup-row":
        W[-1] = W[0]
    elif shape == "rank-one":
        W = np.outer(rng.normal(size=n_out), rng.normal(size=n_in))
    elif shape == "zero":
        W[:] = 0.0
    elif shape == "int":
        W = np.round(W * 3)
    lam = draw(st.sampled_from([0.0, 1.0, 0.5, 0.99, draw(st.floats(0.0, 1.0))]))
    dlif = draw(st.sampled_from([None, None, "leak", "input"]))
    a = None if dlif is None else rng.uniform(0.0, 1.5, T)
    return lam, T, W, dict(dlif_factors=a, dlif_factor=dlif or "leak"), rng


@settings(max_examples=example_count(50))
@given(corner_layer(), st.sampled_from(["lanczos", "power"]))
def test_gain_matches_dense_svd_and_no_input_beats_it(case, method):
    lam, T, W, kw, rng = case
    f = step_factors(lam, T, **kw)
    M = ref_gain.dense_perturbation_matrix(W, f.leak, f.gain)
    sv = np.linalg.svd(M, compute_uv=False)
    want = float(sv[0])
    tol, max_iter = 1e-14, 100_000
    g = l2_gain(lam, T, W, rng=rng, method=method, tol=tol, max_iter=max_iter, **kw)
    if not g.converged:
        # Power iteration's residual falls as (σ₂/σ₁)^(2k) from about (1 - (σ₂/σ₁)²) σ₁²: with
        # σ₂/σ₁ = 1 - 1e-6 (a random run: λ = 1e-6, T = 2, W 1×1) tol is out of reach in
        # max_iter steps, and only then may it stop unconverged (for a start vector up to 1e3
        # times closer to v₂ than to v₁). Its estimate ‖A x‖ of a unit x is then at most σ₁ and
        # at least the smallest σⱼ whose component max_iter steps cannot have removed.
        ratio2 = (sv / sv[0]) ** 2 if sv[0] > 0 else np.zeros_like(sv)
        assert g.method == "power" and sv.size > 1, (g, sv)
        assert 1e3 * ratio2[1]**max_iter * (1 - ratio2[1]) > tol, (g, sv)
        kept = sv[1e3 * ratio2**max_iter >= 1e-16]
        assert kept.min() * (1 - RTOL_INDEPENDENT) <= g.gain <= want * (1 + RTOL_INDEPENDENT)
        return
    assert g.gain == pytest.approx(want, rel=RTOL_INDEPENDENT, abs=RTOL_INDEPENDENT * 1e-3)
    assert np.linalg.norm(g.maximiser) == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(g.response.ravel(), M @ g.maximiser.ravel(),
                               rtol=RTOL_INDEPENDENT, atol=RTOL_INDEPENDENT)
    # the documented guarantee: ‖A x‖ <= gain ‖x‖ for every x (Gaussian and spike-valued)
    X = np.concatenate([rng.normal(size=(20, M.shape[1])),
                        rng.integers(-1, 2, size=(20, M.shape[1])).astype(float)])
    X = X[np.abs(X).sum(axis=1) > 0]
    ratios = np.linalg.norm(X @ M.T, axis=1) / np.linalg.norm(X, axis=1)
    assert np.all(ratios <= g.gain * (1 + RTOL_INDEPENDENT) + 1e-300)
    # closed form: T = 1 or λ = 0 (leak 0 also with DLIF factors) is block diagonal with
    # blocks gain[t] W, so the gain is max|gain[t]| ‖W‖₂
    if T == 1 or lam == 0.0:
        assert g.gain == pytest.approx(np.abs(f.gain).max() * np.linalg.norm(W, 2),
                                       rel=RTOL_INDEPENDENT, abs=1e-300)


@settings(max_examples=example_count(30))
@given(corner_layer(), st.integers(-600, 600))
def test_gain_scales_with_the_weight_by_powers_of_two(case, k):
    """‖A(2^k W)‖ = 2^k ‖A(W)‖ (the map is linear in W). Weights far from 1 (2^±600) must not
    overflow or underflow the iteration's squared norms."""
    lam, T, W, kw, rng = case
    seed = int(rng.integers(2**32))
    g = l2_gain(lam, T, W, rng=seed, **kw)
    gk = l2_gain(lam, T, W * 2.0**k, rng=seed, **kw)
    assert gk.gain == pytest.approx(g.gain * 2.0**k, rel=RTOL_INDEPENDENT)
    assert gk.converged


@settings(max_examples=example_count(25))
@given(corner_layer(max_T=6), st.integers(0, 2**32 - 1))
def test_gain_grows_with_the_horizon_to_the_hinf_norm(case, seed):
    """Truncating a causal map to fewer steps is a compression (module docstring): the gain of
    the first τ steps (same DLIF prefix) never exceeds the gain over T; for constant λ < 1 it
    never exceeds ‖W‖₂ / (1 - λ) (H∞, both by the sweep and by hand); for λ = 1 and W = [[w]] it
    is |w| / (2 sin(π / (4T + 2))) (singular values of the all-ones lower triangle)."""
    lam, T, W, kw, _ = case
    gains = []
    for tau in range(1, T + 1):
        a = kw["dlif_factors"]
        kw_t = dict(kw, dlif_factors=None if a is None else a[:tau])
        gains.append(l2_gain(lam, tau, W, rng=seed, **kw_t).gain)
    assert np.all(np.diff(gains) >= -RTOL_INDEPENDENT * max(gains[-1], 1e-300))
    normW = float(np.linalg.norm(W, 2))
    if kw["dlif_factors"] is None and lam < 1.0:
        h = hinf_norm(lam, W).norm
        assert h == pytest.approx(normW / (1 - lam), rel=1e-12, abs=1e-300)
        assert gains[-1] <= h * (1 + RTOL_INDEPENDENT) + 1e-300
    if kw["dlif_factors"] is None and lam == 1.0:
        want = normW / (2 * math.sin(math.pi / (4 * T + 2)))
        assert gains[-1] == pytest.approx(want, rel=RTOL_INDEPENDENT, abs=1e-300)


def test_zero_weights_have_gain_zero_for_every_method_and_check():
    """W = 0 is the zero map: gain 0, any unit input a maximiser, response 0. (Was: ARPACK error
    -9 "Starting vector is zero" from svds for every W = 0 with T · N >= 2, and so from
    check_stated_bound and network_gains.)"""
    for shape, T in [((1, 1), 1), ((1, 1), 3), ((2, 3), 4), ((3, 1), 2)]:
        for method in ("lanczos", "power"):
            g = l2_gain(0.5, T, np.zeros(shape), rng=0, method=method)
            assert g.gain == 0.0 and g.converged
            assert g.maximiser.shape == (T, shape[1])
            assert np.linalg.norm(g.maximiser) == pytest.approx(1.0, rel=1e-12)
            np.testing.assert_array_equal(g.response, 0.0)
    for domain in ("real", "spike"):
        v = check_stated_bound(0.5, 3, np.zeros((2, 2)), rng=0, domain=domain)
        assert v.status == "holds" and v.ratio == 0.0 and v.exact_gain == 0.0
    net = Network([Dense(np.zeros((2, 3)), LIF(lam=0.8, theta=1.0))])
    x = np.zeros((4, 1, 3))
    r = network_gains(net, x, x + 0.5, rng=0).layers[0]
    assert r.exact_gain == 0.0 and r.mppd_ratio[0] == 0.0 and r.membrane_ratio[0] == 0.0


def test_gain_of_tiny_and_huge_weights():
    """‖A‖ of W = [[w]] over T = 1 is |w|. (Was: the power iteration squared norms in float64,
    so w = 1e-200 gave 0.0, w = 1e-160 gave 9.99994e-161 (a subnormal square), and w = 1e300
    overflowed into a NaN input; Lanczos failed with ARPACK error -9 for tiny weights.)"""
    for w in (1e-200, 1e-160, 1e300, -3e-310):
        assert l2_gain(0.5, 1, [[w]], rng=0).gain == pytest.approx(abs(w), rel=1e-12)
        W = np.array([[w, 0.0], [0.0, w / 2]])
        assert l2_gain(0.0, 3, W, rng=0).gain == pytest.approx(abs(w), rel=1e-12)


@settings(max_examples=example_count(25))
@given(corner_layer(max_T=4, max_n=2), st.integers(-40, 40), st.sampled_from(["real", "spike"]))
def test_stated_bound_verdict_follows_dense_svd_and_is_invariant(case, k, domain):
    """The verdict depends on W only through ‖A‖/‖W‖₂ (real) or the spike ratios/‖W‖₂: scaling
    W by 2^k, permuting and negating its rows and columns changes no verdict. In the real domain
    it is 'violated' exactly when the dense gain exceeds the stated one (up to the documented
    rtol; cases within 1e-8 of the edge are not judged)."""
    lam, T, W, _, rng = case
    seed = int(rng.integers(2**32))
    v = check_stated_bound(lam, T, W, rng=seed, domain=domain)
    P = rng.permutation(W.shape[0])
    Q = rng.permutation(W.shape[1])
    W2 = -(W[P][:, Q]) * 2.0**k
    v2 = check_stated_bound(lam, T, W2, rng=seed, domain=domain)
    f = step_factors(lam, T)
    dense = ref_gain.dense_l2_gain(W, f.leak, f.gain)
    stated = stated_gain(lam, W)
    assert v.exact_gain == pytest.approx(dense, rel=RTOL_INDEPENDENT, abs=1e-300)
    assert v.ratio <= v.exact_gain * (1 + RTOL_INDEPENDENT) + 1e-300
    if abs(dense - stated) > 1e-8 * max(stated, 1e-300) or stated == 0.0:
        if domain == "real":
            assert v.status == ("violated" if dense > stated else "holds")
        assert v2.status == v.status
        assert v2.ratio == pytest.approx(v.ratio * 2.0**k, rel=RTOL_INDEPENDENT, abs=1e-300)
    if lam == 0.0 and domain == "real":
        # λ = 0: the map is block diagonal and the bound ‖W‖₂ is attained
        assert v.status == "holds"
        assert v.ratio == pytest.approx(v.stated_gain, rel=RTOL_INDEPENDENT)
    if lam == 1.0:
        assert v.stated_gain == math.inf and v.status == "holds"


@pytest.mark.parametrize("lam, first", [(0.5, 3), (0.9, 6), (0.99, 17)])
def test_stated_bound_first_failing_horizon(lam, first):
    """The module docstring's horizons from which Theorem 3.1's bound fails (W = 1), by dense
    SVD of the Toeplitz factor and by the check."""
    for T in (first - 1, first):
        L = ref_gain.toeplitz_factor(np.full(T, lam), np.ones(T))
        assert (np.linalg.norm(L, 2) > 1 / math.sqrt(1 - lam)) == (T == first)
        v = check_stated_bound(lam, T, [[1.0]], rng=0)
        assert v.status == ("violated" if T == first else "holds")


# --------------------------------------------------------------------------- networks, adjoint
@settings(max_examples=example_count(20))
@given(st.integers(1, 5), st.sampled_from([0.0, 1.0, 0.6]), st.integers(0, 2**32 - 1),
       st.sampled_from([1e6, 0.3]))
def test_network_gains_at_zero_energy_and_one_neuron(T, lam, seed, theta):
    """Identical runs: Δs = 0 for every layer, so the ratios are NaN (documented) and the input
    norms 0; a perturbation of one input of a one-neuron layer that never fires: the membrane
    difference is the MPPD, and the ratio never exceeds the exact gain."""
    rng = np.random.default_rng(seed)
    net = Network([Dense(rng.normal(size=(1, 1)), LIF(lam=lam, theta=theta)),
                   Dense(rng.normal(size=(2, 1)), LIF(lam=lam, theta=theta))])
    x = rng.integers(0, 4, (T, 2, 1)) / 4.0  # dyadic: x + d - x == d exactly
    same = network_gains(net, x, x.copy(), rng=0)
    for g in same.layers:
        np.testing.assert_array_equal(g.input_norm, 0.0)
        assert np.all(np.isnan(g.mppd_ratio)) and np.all(np.isnan(g.membrane_ratio))
    d = np.zeros_like(x)
    d[-1, 0, 0] = 0.25  # at the window's last step
    g0 = network_gains(net, x, x + d, rng=0).layers[0]
    assert g0.input_norm[0] == 0.25 and g0.input_norm[1] == 0.0 and np.isnan(g0.mppd_ratio[1])
    # a last-step input moves ε[T] only: ratio |w| <= exact gain
    assert g0.mppd_ratio[0] == pytest.approx(abs(net.layers[0].weight[0, 0]), rel=1e-12)
    assert g0.mppd_ratio[0] <= g0.exact_gain * (1 + RTOL_INDEPENDENT)
    if theta == 1e6:
        assert g0.membrane_ratio[0] == pytest.approx(g0.mppd_ratio[0], rel=RTOL_INDEPENDENT)


@settings(max_examples=example_count(30))
@given(corner_layer(), st.integers(0, 3))
def test_adjoint_identity_at_corners(case, B):
    """⟨A x, y⟩ = ⟨x, Aᵀ y⟩ with B = 0 samples allowed, λ at 0 and 1, DLIF factors from 0."""
    lam, T, W, kw, rng = case
    x = rng.normal(size=(T, B, W.shape[1]))
    y = rng.normal(size=(T, B, W.shape[0]))
    lhs = float((mppd_response(x, W, lam, **kw) * y).sum())
    rhs = float((x * mppd_adjoint(y, W, lam, **kw)).sum())
    scale = float(np.abs(x).sum() * np.abs(y).sum() * max(1.0, np.abs(W).max()) * 2.0**T)
    assert abs(lhs - rhs) <= RTOL_INDEPENDENT * max(scale, 1e-300)
    A = perturbation_operator(lam, T, W, **kw)
    if B:
        np.testing.assert_allclose(
            A.rmatvec(y[:, 0].ravel()), mppd_adjoint(y[:, :1], W, lam, **kw)[:, 0].ravel(),
            rtol=RTOL_TWIN, atol=ATOL_TWIN)


def test_adjoint_refuses_non_finite_input():
    # (Was: NaN and inf in y went through silently, unlike every other input of the module.)
    for bad in (np.nan, np.inf):
        y = np.zeros((2, 1, 1))
        y[1, 0, 0] = bad
        with pytest.raises(ValueError, match=r"y holds NaN or infinite values; pass finite"):
            mppd_adjoint(y, [[1.0]], 0.5)


@pytest.mark.parametrize(
    "offsets, steps, neurons",
    [
        ([0, 1], [1, 2], [0, 0]),  # an event past offsets[-1] (was counted for sample 0)
        ([0, 2], [1, 2], [0]),  # one neuron index for two events (was broadcast to both)
        ([0, 3], [1, 2], [0, 0]),  # offsets past the events (was a numpy broadcast error)
        ([1, 2], [1, 2], [0, 0]),  # offsets not from 0
        ([0, 2, 1, 2], [1, 2], [0, 0]),  # decreasing offsets
        ([[0, 2]], [1, 2], [0, 0]),  # 2-D offsets (was "object too deep")
        ([], [], []),  # no offsets at all
    ],
)
def test_population_refuses_malformed_event_lists(offsets, steps, neurons):
    ev = SpikeEvents(np.array(offsets, np.int64), np.array(steps), np.array(neurons, np.int64))
    with pytest.raises(ValueError, match=r"raster_b is not a valid SpikeEvents: offsets must "
                                         r"rise from 0 to len\(steps\)"):
        population_victor_purpura(np.zeros((3, max(len(np.ravel(offsets)) - 1, 1), 2)), ev,
                                  n_neurons=2)


def test_population_vp_refuses_no_samples_and_no_neurons_regression():
    # B = 0 gave mean = NaN; N = 0 gave per_sample = 0 (a mean over no neurons) and mean 0
    samples = r"the mean over samples needs at least one sample$"
    neurons = r"the per-sample mean over neurons needs at least one neuron$"
    for a, b, match in (
        (np.zeros((3, 0, 2)), np.zeros((3, 0, 2)),
         r"^raster_a holds no samples \(shape \(3, 0, 2\)\); " + samples),
        (np.zeros((3, 2, 0)), np.zeros((3, 2, 0)),
         r"^raster_a holds no neurons \(shape \(3, 2, 0\)\); " + neurons),
        (spike_events(np.zeros((3, 0, 2))), np.zeros((3, 0, 2)),
         r"^raster_b holds no samples \(shape \(3, 0, 2\)\); " + samples),
    ):
        with pytest.raises(ValueError, match=match):
            population_victor_purpura(a, b, q=0.5)
    ev = spike_events(np.zeros((3, 0, 2)))
    with pytest.raises(ValueError, match=r"^raster_a \(an event list, shape \[B, N\]\) holds no "
                                         r"samples \(shape \(0, 2\)\); " + samples):
        population_victor_purpura(ev, ev, q=0.5, n_neurons=2)
    # no steps (T = 0) is no error: every train is empty, every distance 0
    r = population_victor_purpura(np.zeros((0, 2, 3)), np.zeros((0, 2, 3)), q=0.5)
    assert r.mean == 0.0 and r.per_neuron.shape == (2, 3)
