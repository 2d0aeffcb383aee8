"""Spike distances (certify.spike_distance): kernels vs twins, independent methods, metric
axioms and limits, hand-computed cases, Elephant, and every error branch."""

import math

import mpmath
import numba
import numpy as np
import pytest
from conftest import ATOL_TWIN, RTOL_ELEPHANT, RTOL_TWIN
from hypothesis import example, given
from hypothesis import strategies as st

from certify.spike_distance import (
    PopulationDistance,
    _multiunit_victor_purpura_kernel,
    _pairwise_victor_purpura_kernel,
    _population_victor_purpura_kernel,
    _van_rossum_kernel,
    _victor_purpura_kernel,
    _victor_purpura_lanes_kernel,
    multiunit_victor_purpura_distance,
    pairwise_victor_purpura,
    population_victor_purpura,
    van_rossum_distance,
    victor_purpura_distance,
)
from evsnn.clock import spike_events
from reference import spike_distance as ref

# Rounding slack for inequalities that hold exactly in real arithmetic (triangle inequality,
# bounds): the values are sums of at most ~30 terms of size <= 30, so a few ulps of 30.
SLACK = ATOL_TWIN


def _vr_slack(*trains):
    """Rounding bound for van Rossum distances: D² sums (n + m)² kernel values of size <= 1, so
    it carries an absolute error of about (n + m)² eps, and D = sqrt(D²) near 0 up to its
    square root. ATOL_TWIN (1e-12) bounds (n + m)² eps for n + m <= 36 with margin."""
    total = sum(len(t) for t in trains)
    return math.sqrt(ATOL_TWIN) * max(total, 1)


# --------------------------------------------------------------------------- strategies
# Times on a dyadic grid (multiples of 1/4) make coincidences likely and keep shifts and
# power-of-two rescalings exact; continuous times exercise the general case.
grid_train = st.lists(st.integers(0, 60), max_size=12).map(lambda xs: np.array(xs, float) / 4.0)
# (rounded to 1e-6 so that q times a non-zero gap never underflows to 0)
real_train = st.lists(st.floats(0.0, 30.0, allow_nan=False, allow_infinity=False), max_size=12
                      ).map(lambda xs: np.round(np.array(xs, float), 6))
train = st.one_of(grid_train, real_train)
cost = st.one_of(st.just(0.0), st.just(math.inf), st.floats(1e-3, 20.0))
finite_cost = st.floats(1e-3, 20.0)


@st.composite
def near_pair(draw):
    """Two trains that differ little: a train, and a copy with a few spikes moved by 10^-k
    (k = 1..14), maybe one spike added and one removed, in any order."""
    a = draw(train)
    b = list(a)
    for _ in range(draw(st.integers(0, 3))):
        if b:
            i = draw(st.integers(0, len(b) - 1))
            step = 10.0 ** -draw(st.integers(1, 14))
            b[i] = abs(b[i] + draw(st.sampled_from([-step, step])))
    if b and draw(st.booleans()):
        b.pop(draw(st.integers(0, len(b) - 1)))
    if draw(st.booleans()):
        b.append(draw(st.floats(0.0, 30.0)))
    return a, np.array(draw(st.permutations(b)), float)


# The van Rossum kernel's D² against mpmath (reference.spike_distance.mp_van_rossum), relative,
# per spike of the pair: a sum of at most n + m non-negative terms; measured at most
# 0.94 (n + m) ε over 9,000 random near-equal pairs (stop 40). The pairwise sum it replaced was
# off by up to 7e14 (n + m) ε there.
RTOL_VR_PER_SPIKE = 8 * np.finfo(float).eps


def _vp(a, b, q):
    """The numba kernel on sorted copies (what the wrapper passes)."""
    a, b = np.sort(a), np.sort(b)
    return _victor_purpura_kernel(a, b, q, np.empty(b.size + 1))


def _csr(trains):
    trains = [np.sort(np.asarray(t, float)) for t in trains]
    offsets = np.zeros(len(trains) + 1, np.int64)
    offsets[1:] = np.cumsum([t.size for t in trains])
    return (np.concatenate(trains) if trains else np.zeros(0)), offsets


@st.composite
def rasters(draw):
    T, B, N = draw(st.integers(0, 7)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    p = draw(st.sampled_from([0.1, 0.4, 0.8]))
    clean = (rng.random((T, B, N)) < p).astype(float)
    flip = rng.random((T, B, N)) < 0.2
    return clean, np.where(flip, 1.0 - clean, clean)


@st.composite
def labelled_pair(draw, max_spikes=6, units=3):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, m = draw(st.integers(0, max_spikes)), draw(st.integers(0, max_spikes))
    grid = draw(st.booleans())
    times = (lambda k: rng.integers(0, 12, k) / 2.0) if grid else (lambda k: rng.uniform(0, 6, k))
    return times(n), rng.integers(0, units, n), times(m), rng.integers(0, units, m)


# --------------------------------------------------------------------------- kernels vs twins
@given(train, train, cost)
def test_victor_purpura_kernel_matches_twin(a, b, q):
    np.testing.assert_allclose(_vp(a, b, q), ref.twin_victor_purpura(a, b, q), rtol=RTOL_TWIN,
                               atol=ATOL_TWIN)


# q * 30 < 2 for these costs, so every table of trains on [0, 30] lies wholly in the band
full_band_cost = st.floats(1e-3, 0.066)


@given(train, st.lists(train, min_size=1, max_size=20), full_band_cost)
def test_victor_purpura_lanes_kernel_matches_twin_and_pair_kernel(a, bs, q):
    a, bs = np.sort(a), [np.sort(b) for b in bs]
    w = len(bs)
    m = np.array([b.size for b in bs], np.int64)
    M = int(m.max())
    b = np.full((M, w), 7.0)  # padding, which must not matter
    for k, bk in enumerate(bs):
        b[: bk.size, k] = bk
    got = np.empty(w)
    _victor_purpura_lanes_kernel(a, b, m, q, np.empty((M + 1, w)), np.empty(w), np.empty(w), got)
    want = [0.0] * w
    ref._victor_purpura_lanes_kernel(a, b.tolist(), m.tolist(), q,
                                     [[0.0] * w for _ in range(M + 1)], [0.0] * w, [0.0] * w,
                                     want)
    np.testing.assert_allclose(got, want, rtol=RTOL_TWIN, atol=ATOL_TWIN)
    # the same float operations per cell as the banded kernel: equal to the last bit
    np.testing.assert_array_equal(got, [_vp(a, bk, q) for bk in bs])


@pytest.mark.parametrize("q, decimals", [(0.001, None), (0.019, None), (0.05, None),
                                         (0.3, None), (0.7, 1)])
def test_pairwise_equals_pair_kernel_exactly_and_for_any_thread_count(q, decimals):
    # 40 trains on [0, 100): q = 0.001 and 0.019 put every pair wholly in the band (lanes kernel
    # only), 0.05 some pairs (both kernels, groups of every width), 0.3 none. Times rounded to
    # 0.1 at q = 0.7 make pairs whose two argument orders differ in the last bit (review: the
    # docstring said every entry (i, j) equals the pair function of (i, j)); the matrix holds
    # the upper triangle's order on both sides
    rng = np.random.default_rng(11)
    trains = [np.sort(rng.uniform(0, 100, rng.integers(0, 30))) for _ in range(40)]
    if decimals is not None:
        trains = [np.round(t, decimals) for t in trains]
    trains[3] = np.zeros(0)
    want = np.array([[victor_purpura_distance(*sorted_pair, q) for sorted_pair in
                      ((x, y) if i <= j else (y, x) for j, y in enumerate(trains))]
                     for i, x in enumerate(trains)])
    swapped = np.array([[victor_purpura_distance(x, y, q) for y in trains] for x in trains])
    if decimals is not None:
        assert np.any(swapped != want)  # the case the rounded times are there for
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = pairwise_victor_purpura(trains, q)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = pairwise_victor_purpura(trains, q)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, want)
    np.testing.assert_array_equal(many, want)


@given(st.lists(train, max_size=6), cost)
def test_pairwise_victor_purpura_kernel_matches_twin(trains, q):
    times, offsets = _csr(trains)
    got, want = np.empty((len(trains),) * 2), np.empty((len(trains),) * 2)
    _pairwise_victor_purpura_kernel(times, offsets, q, got)
    ref._pairwise_victor_purpura_kernel(times, offsets, q, want)
    np.testing.assert_allclose(got, want, rtol=RTOL_TWIN, atol=ATOL_TWIN)


@given(rasters(), cost)
def test_population_victor_purpura_kernel_matches_twin(pair, q):
    clean, pert = pair
    T, B, N = clean.shape
    cells_a = [np.flatnonzero(clean[:, b, n]) * 0.5 for b in range(B) for n in range(N)]
    cells_b = [np.flatnonzero(pert[:, b, n]) * 0.5 for b in range(B) for n in range(N)]
    (ta, oa), (tb, ob) = _csr(cells_a), _csr(cells_b)
    got, want = np.empty((B, N)), np.empty((B, N))
    _population_victor_purpura_kernel(ta, oa, tb, ob, q, got)
    ref._population_victor_purpura_kernel(ta, oa, tb, ob, q, want)
    np.testing.assert_allclose(got, want, rtol=RTOL_TWIN, atol=ATOL_TWIN)


@given(labelled_pair(), cost, st.one_of(st.just(0.0), st.just(math.inf), st.floats(0.0, 3.0)))
def test_multiunit_victor_purpura_kernel_matches_twin(case, q, k):
    ta, la, tb, lb = case
    units, idx = np.unique(la, return_inverse=True)
    order = np.lexsort((ta, idx))
    a_off = np.zeros(units.size + 1, np.int64)
    a_off[1:] = np.cumsum(np.bincount(idx, minlength=units.size))
    ob = np.argsort(tb, kind="stable")
    b_lab = np.array([np.searchsorted(units, x) if x in units else -1 for x in lb[ob]], np.int64)
    args = (np.ascontiguousarray(ta[order]), a_off, np.ascontiguousarray(tb[ob]), b_lab, q, k)
    np.testing.assert_allclose(_multiunit_victor_purpura_kernel(*args),
                               ref._multiunit_victor_purpura_kernel(*args),
                               rtol=RTOL_TWIN, atol=ATOL_TWIN)


@given(train, train, st.one_of(st.just(math.inf), st.floats(1e-2, 50.0)))
def test_van_rossum_kernel_matches_twin(a, b, tau):
    np.testing.assert_allclose(_van_rossum_kernel(np.sort(a), np.sort(b), tau),
                               ref._van_rossum_kernel(np.sort(a), np.sort(b), tau),
                               rtol=RTOL_TWIN, atol=ATOL_TWIN)


# --------------------------------------------------------------------------- independent methods
@given(train, train, cost)
def test_victor_purpura_equals_textbook_dp(a, b, q):
    # Same recurrence, full table vs band + closed-form margins: only the order in which
    # integers are added differs, hence the twin tolerance.
    np.testing.assert_allclose(victor_purpura_distance(a, b, q),
                               ref.textbook_victor_purpura(a, b, q), rtol=RTOL_TWIN, atol=ATOL_TWIN)


@given(train, train, finite_cost)
def test_victor_purpura_equals_min_cost_matching(a, b, q):
    # Unconstrained bipartite matching (scipy's linear_sum_assignment): a different algorithm;
    # the result n + m + Σ(c - 2) is a sum of <= 24 terms of size <= 2, a few ulps of 24.
    np.testing.assert_allclose(victor_purpura_distance(a, b, q),
                               ref.assignment_victor_purpura(a, b, q), rtol=RTOL_TWIN,
                               atol=ATOL_TWIN)


@given(labelled_pair(), finite_cost, st.floats(0.0, 3.0))
def test_multiunit_equals_min_cost_matching(case, q, k):
    ta, la, tb, lb = case
    np.testing.assert_allclose(multiunit_victor_purpura_distance(ta, la, tb, lb, q, k),
                               ref.assignment_victor_purpura(ta, tb, q, la, lb, k),
                               rtol=RTOL_TWIN, atol=ATOL_TWIN)


# --------------------------------------------------------------------------- metric axioms
@given(train, train, train, cost)
def test_victor_purpura_metric_axioms(a, b, c, q):
    dab, dba = victor_purpura_distance(a, b, q), victor_purpura_distance(b, a, q)
    assert dab >= 0.0
    assert victor_purpura_distance(a, a, q) == 0.0
    np.testing.assert_allclose(dab, dba, rtol=RTOL_TWIN, atol=ATOL_TWIN)
    dac, dbc = victor_purpura_distance(a, c, q), victor_purpura_distance(b, c, q)
    assert dac <= dab + dbc + SLACK
    if not np.array_equal(np.sort(a), np.sort(b)) and q > 0:
        assert dab > 0.0


@given(labelled_pair(), labelled_pair(), finite_cost, st.floats(0.0, 3.0))
def test_multiunit_metric_axioms(x, y, q, k):
    ta, la, tb, lb = x
    tc, lc = y[0], y[1]
    d = lambda t1, l1, t2, l2: multiunit_victor_purpura_distance(t1, l1, t2, l2, q, k)  # noqa: E731
    dab = d(ta, la, tb, lb)
    assert dab >= 0.0 and d(ta, la, ta, la) == 0.0
    np.testing.assert_allclose(dab, d(tb, lb, ta, la), rtol=RTOL_TWIN, atol=ATOL_TWIN)
    assert d(ta, la, tc, lc) <= dab + d(tb, lb, tc, lc) + SLACK


# nine spikes at 0 in both and a tenth at 0 and 6.1e-5: the pairwise sum gave D(a, b) and D(b, a)
# 3.5e-10 apart relatively (HYPOTHESIS_PROFILE=random, stop 40)
_TENTH_MOVED = (np.zeros(10), np.r_[np.zeros(9), 6.103515625e-05], np.array([]), 1.0)


@given(train, train, train, st.floats(1e-2, 50.0))
@example(*_TENTH_MOVED)
def test_van_rossum_metric_axioms(a, b, c, tau):
    dab = van_rossum_distance(a, b, tau)
    assert dab >= 0.0 and van_rossum_distance(a, a, tau) == 0.0
    assert dab == van_rossum_distance(b, a, tau)  # every step of the sweep is odd in (u, c)
    dac, dbc = van_rossum_distance(a, c, tau), van_rossum_distance(b, c, tau)
    assert dac <= dab + dbc + _vr_slack(a, b, c)


@given(st.one_of(near_pair(), st.tuples(train, train)), st.floats(1e-2, 50.0))
@example(tuple(_TENTH_MOVED[:2]), 1.0)
@example((np.zeros(1), np.array([7.94838489e-261])), 1.0)  # 60 fixed digits gave D² = 0
def test_van_rossum_is_accurate_also_for_nearly_equal_trains(pair, tau):
    a, b = pair
    want = ref.mp_van_rossum(a, b, tau)
    got = van_rossum_distance(a, b, tau) ** 2
    if want == 0:
        assert got == 0.0
    else:
        err = abs(mpmath.mpf(got) - want) / want
        assert err <= RTOL_VR_PER_SPIKE * (len(a) + len(b)), (float(err), a, b, tau)


# --------------------------------------------------------------------------- limits and units
@given(train, train)
def test_q_zero_is_count_difference(a, b):
    assert victor_purpura_distance(a, b, 0.0) == abs(len(a) - len(b))
    assert ref.textbook_victor_purpura(a, b, 0.0) == abs(len(a) - len(b))


@given(train, train)
def test_q_inf_is_n_plus_m_minus_twice_coincidences(a, b):
    want = len(a) + len(b) - 2 * ref.coincidences(a, b)
    assert victor_purpura_distance(a, b, math.inf) == want
    assert ref.textbook_victor_purpura(a, b, math.inf) == want


@given(train, train, st.floats(1e-3, 10.0))
def test_q_limits_are_approached_by_the_dp(a, b, scale):
    n, m = len(a), len(b)
    span = max(np.ptp(np.r_[a, b]) if n + m else 0.0, 1.0)
    # small q: |n - m| <= D <= |n - m| + q · span · min(n, m) (match min(n, m) spikes, any way)
    q = 1e-9 * scale
    d = victor_purpura_distance(a, b, q)
    assert abs(n - m) <= d <= abs(n - m) + q * span * min(n, m) + SLACK
    # large q: once q times the smallest non-zero gap reaches 2, only coincidences are matched
    gaps = np.abs(np.subtract.outer(a, b))
    gaps = gaps[gaps > 0]
    q_big = 2.0 / gaps.min() * (1 + scale) if gaps.size else 1.0
    assert victor_purpura_distance(a, b, q_big) == n + m - 2 * ref.coincidences(a, b)


@given(grid_train, grid_train, cost, st.integers(0, 100))
def test_invariant_to_common_time_shift(a, b, q, shift):
    # dyadic times and an integer shift: every difference is exact, so equality is exact
    assert victor_purpura_distance(a + shift, b + shift, q) == victor_purpura_distance(a, b, q)
    assert van_rossum_distance(a + shift, b + shift, 3.0) == pytest.approx(
        van_rossum_distance(a, b, 3.0), rel=RTOL_TWIN, abs=ATOL_TWIN)


@given(train, train, finite_cost, st.sampled_from([0.25, 2.0, 8.0]), st.floats(0.1, 10.0))
def test_units_rescale_q(a, b, q, s, s_any):
    # times x s and q / s (tau x s): the same metric; exact for a power-of-two s, rounding only
    # otherwise
    d = victor_purpura_distance(a, b, q)
    assert victor_purpura_distance(a * s, b * s, q / s) == d
    np.testing.assert_allclose(victor_purpura_distance(a * s_any, b * s_any, q / s_any), d,
                               rtol=RTOL_TWIN, atol=ATOL_TWIN)
    np.testing.assert_allclose(van_rossum_distance(a * s_any, b * s_any, 2.0 * s_any),
                               van_rossum_distance(a, b, 2.0), rtol=RTOL_TWIN, atol=_vr_slack(a, b))


@given(rasters(), finite_cost, st.sampled_from([0.1, 0.5, 1.0, 3.0]))
def test_population_q_per_ms_times_dt_is_q_per_step(pair, q_ms, dt):
    clean, pert = pair
    in_ms = population_victor_purpura(clean, pert, q=q_ms, dt=dt)
    in_steps = population_victor_purpura(clean, pert, q=q_ms * dt, dt=1.0)
    np.testing.assert_allclose(in_ms.per_neuron, in_steps.per_neuron, rtol=RTOL_TWIN,
                               atol=ATOL_TWIN)


@given(train, train, cost, st.randoms(use_true_random=False))
def test_order_of_spikes_given_does_not_matter(a, b, q, rnd):
    pa, pb = list(a), list(b)
    rnd.shuffle(pa)
    rnd.shuffle(pb)
    assert victor_purpura_distance(pa, pb, q) == victor_purpura_distance(a, b, q)
    np.testing.assert_array_equal(pairwise_victor_purpura([pa, a[::-1], pb, b], q),
                                  pairwise_victor_purpura([np.sort(a), a, np.sort(b), b], q))


# --------------------------------------------------------------------------- hand-computed cases
@pytest.mark.parametrize(
    "a, b, q, want",
    [
        # move 1 -> 1.5 (0.5); 5 vs 9 would cost 4 > 2, so delete 5 and insert 9 (2)
        ([1.0, 5.0], [1.5, 9.0], 1.0, 2.5),
        # move 0 -> 3 (0.5 · 3 = 1.5) and delete 10 (1); deleting all and inserting costs 3
        ([0.0, 10.0], [3.0], 0.5, 2.5),
        # one spike moved by 4: q·4 = 1 < 2
        ([0.0], [4.0], 0.25, 1.0),
        # q·4 = 2: a move and delete + insert tie at 2
        ([0.0], [4.0], 0.5, 2.0),
        # shifting all three by 1 costs 3; delete 1, insert 4 and keep 2, 3 costs 2
        ([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], 1.0, 2.0),
        # the same at q = 0.5: shifting all costs 1.5 < 2
        ([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], 0.5, 1.5),
        # empty against three spikes: three insertions
        ([], [1.0, 2.0, 3.0], 7.0, 3.0),
    ],
)
def test_victor_purpura_hand_cases(a, b, q, want):
    assert victor_purpura_distance(a, b, q) == want
    assert ref.textbook_victor_purpura(a, b, q) == want


def test_pairwise_hand_case_and_consistency():
    trains = [[1.0, 5.0], [1.5, 9.0], [], [0.0, 10.0]]
    D = pairwise_victor_purpura(trains, q=1.0)
    # D[0,1]: first hand case (2.5). D[0,2] = D[1,2] = D[3,2] = 2 deletions.
    # D[0,3]: 1 -> 0 (1) and 5 vs 10 (2): 3; or delete/insert everything: 4.  D[1,3]: 1.5 -> 0
    # (1.5) + 2 = 3.5, or 9 -> 10 (1) + 2 = 3; both moves 2.5 but need 1.5 -> 0 and 9 -> 10: 2.5.
    want = np.array([[0, 2.5, 2, 3], [2.5, 0, 2, 2.5], [2, 2, 0, 2], [3, 2.5, 2, 0]], float)
    np.testing.assert_array_equal(D, want)
    for i in range(4):
        for j in range(4):
            assert D[i, j] == victor_purpura_distance(trains[i], trains[j], 1.0)


def test_pairwise_accepts_2d_array_and_empty_list():
    np.testing.assert_array_equal(pairwise_victor_purpura(np.array([[0.0, 1.0], [0.0, 3.0]]), 1.0),
                                  [[0.0, 2.0], [2.0, 0.0]])  # 1 vs 3: move costs 2 (tie)
    assert pairwise_victor_purpura([], 1.0).shape == (0, 0)


def test_pairwise_does_not_depend_on_thread_count():
    rng = np.random.default_rng(7)
    trains = [np.sort(rng.uniform(0, 100, rng.poisson(20))) for _ in range(31)]
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = pairwise_victor_purpura(trains, 0.3)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = pairwise_victor_purpura(trains, 0.3)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, many)
    np.testing.assert_array_equal(one, one.T)


def test_multiunit_hand_cases():
    # spikes (1, u0), (2, u1) vs (1, u1), (2, u0): relabel both in place (2k = 0.8) beats moving
    # each onto its own unit's spike (1 + 1 = 2) and deleting/inserting everything (4)
    assert multiunit_victor_purpura_distance([1, 2], [0, 1], [1, 2], [1, 0], 1.0, 0.4) == 0.8
    # k = 5: relabelling is never worth it; the crossed moves cost 2
    assert multiunit_victor_purpura_distance([1, 2], [0, 1], [1, 2], [1, 0], 1.0, 5.0) == 2.0
    # crossing matches across units: u0 1 -> 2.25 (1.25) and u1 2 -> 1.25 (0.75): 2.0, while one
    # match and two deletions/insertions cost >= 3.25 and everything deleted/inserted 4
    assert multiunit_victor_purpura_distance([1, 2], [0, 1], [1.25, 2.25], [1, 0], 1.0, 5.0) == 2.0
    # the same spikes with labels ignored (k = 0): 0.25 + 0.25
    assert multiunit_victor_purpura_distance([1, 2], [0, 1], [1.25, 2.25], [1, 0], 1.0, 0.0) == 0.5
    # a unit that only train b has: (1, u7) vs (1, u0) costs k = 0.5 (relabel)
    assert multiunit_victor_purpura_distance([1.0], [0], [1.0], [7], 1.0, 0.5) == 0.5
    assert multiunit_victor_purpura_distance([], [], [1.0, 2.0], [3, 4], 1.0, 1.0) == 2.0


@given(labelled_pair(), finite_cost)
def test_multiunit_reduces_to_single_unit(case, q):
    ta, la, tb, lb = case
    # k = 0: labels do not matter, the pooled single-unit distance
    np.testing.assert_allclose(multiunit_victor_purpura_distance(ta, la, tb, lb, q, 0.0),
                               victor_purpura_distance(ta, tb, q), rtol=RTOL_TWIN, atol=ATOL_TWIN)
    # k >= 2: a relabel is never cheaper than delete + insert, so units separate
    per_unit = sum(victor_purpura_distance(ta[la == u], tb[lb == u], q) for u in range(3))
    np.testing.assert_allclose(multiunit_victor_purpura_distance(ta, la, tb, lb, q, 2.0),
                               per_unit, rtol=RTOL_TWIN, atol=ATOL_TWIN)
    # one unit only: the single-unit distance for any k
    zeros_a, zeros_b = np.zeros(ta.size, int), np.zeros(tb.size, int)
    np.testing.assert_allclose(multiunit_victor_purpura_distance(ta, zeros_a, tb, zeros_b, q, 1.3),
                               victor_purpura_distance(ta, tb, q), rtol=RTOL_TWIN, atol=ATOL_TWIN)


def test_van_rossum_hand_cases():
    # one spike vs none: D² = Σ_ii' e^0 = 1 (Elephant's normalisation; van Rossum 2001: 1/2)
    assert van_rossum_distance([3.0], [], tau=0.7) == 1.0
    # [0] vs [1], τ = 1: D² = 1 + 1 - 2 e^{-1}
    assert van_rossum_distance([0.0], [1.0], tau=1.0) == pytest.approx(
        math.sqrt(2 - 2 / math.e), rel=RTOL_TWIN)
    # [1] vs [1, 2], τ = 1: D² = 1 + (2 + 2e^{-1}) - 2(1 + e^{-1}) = 1
    assert van_rossum_distance([1.0], [1.0, 2.0], tau=1.0) == pytest.approx(1.0, rel=RTOL_TWIN)


@given(train, train)
def test_van_rossum_limits(a, b):
    # τ = inf: every kernel value is 1, D² = (n - m)²
    assert van_rossum_distance(a, b, math.inf) == pytest.approx(abs(len(a) - len(b)),
                                                                abs=ATOL_TWIN)
    # τ far below every non-zero gap: D² = n + m - 2·#coincident pairs (with multiplicity, each
    # equal pair counts once per ordered pair within a train too)
    tau = 1e-6
    sq = lambda x, y: float((np.subtract.outer(x, y) == 0).sum())  # noqa: E731
    gaps = np.abs(np.subtract.outer(np.r_[a, b], np.r_[a, b]))
    if not (gaps[gaps > 0] < 1e-3).any():
        want = math.sqrt(max(sq(a, a) + sq(b, b) - 2 * sq(a, b), 0.0))
        assert van_rossum_distance(a, b, tau) == pytest.approx(want, abs=1e-6)


# --------------------------------------------------------------------------- population
def test_population_hand_case_ding2023_fig3e_averages():
    # sample 0: neuron 0 spikes at step 1 (clean) and 2 (perturbed): move 1 ms at q = 0.5 -> 0.5;
    # neuron 1 gains a spike: 1. Sample 1: neuron 0 loses its spike: 1; neuron 1 silent: 0.
    clean = np.zeros((4, 2, 2))
    pert = np.zeros((4, 2, 2))
    clean[1, 0, 0] = pert[2, 0, 0] = pert[3, 0, 1] = 1
    clean[0, 1, 0] = 1
    r = population_victor_purpura(clean, pert, q=0.5, dt=1.0)
    assert isinstance(r, PopulationDistance)
    np.testing.assert_array_equal(r.per_neuron, [[0.5, 1.0], [1.0, 0.0]])
    np.testing.assert_array_equal(r.per_sample, [0.75, 0.5])
    assert r.mean == 0.625 and r.q == 0.5 and r.dt_ms == 1.0
    # dt = 4 ms: the move is 4 ms and costs 2 (tie with delete + insert)
    assert population_victor_purpura(clean, pert, q=0.5, dt=4.0).per_neuron[0, 0] == 2.0


@given(rasters(), cost, st.sampled_from([0.5, 1.0, 2.0]))
def test_population_equals_pairwise_per_neuron(pair, q, dt):
    clean, pert = pair
    T, B, N = clean.shape
    r = population_victor_purpura(clean, pert, q=q, dt=dt)
    for b in range(B):
        for n in range(N):
            assert r.per_neuron[b, n] == victor_purpura_distance(
                np.flatnonzero(clean[:, b, n]) * dt, np.flatnonzero(pert[:, b, n]) * dt, q)
    np.testing.assert_allclose(r.per_sample, r.per_neuron.mean(axis=1), rtol=RTOL_TWIN)
    assert r.mean == pytest.approx(r.per_neuron.mean(), rel=RTOL_TWIN)


@given(rasters(), finite_cost)
def test_population_accepts_event_lists(pair, q):
    clean, pert = pair
    N = clean.shape[2]
    want = population_victor_purpura(clean, pert, q=q, dt=0.5).per_neuron
    ev_a, ev_b = spike_events(clean), spike_events(pert)
    for a, b, kw in ((ev_a, ev_b, {"n_neurons": N}), (ev_a, pert, {}), (clean, ev_b, {})):
        np.testing.assert_array_equal(population_victor_purpura(a, b, q=q, dt=0.5, **kw)
                                      .per_neuron, want)


def test_population_accepts_bool_and_int_rasters():
    clean = np.zeros((3, 1, 2), bool)
    clean[0, 0, 0] = True
    r = population_victor_purpura(clean, clean.astype(np.int8), q=1.0)
    np.testing.assert_array_equal(r.per_neuron, [[0.0, 0.0]])


# --------------------------------------------------------------------------- Elephant
def _elephant_trains(trains, unit):
    neo = pytest.importorskip("neo")
    t_stop = max([float(np.max(t)) for t in trains if len(t)] + [0.0]) + 1.0
    return [neo.SpikeTrain(np.asarray(t, float) * unit, t_stop=t_stop * unit) for t in trains]


@st.composite
def poisson_trains(draw, max_trains=6, rate=0.5, horizon=40.0):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    K = draw(st.integers(2, max_trains))
    return [np.sort(rng.uniform(0, horizon, rng.poisson(rate * horizon / 2))) for _ in range(K)]


@given(poisson_trains(), st.floats(0.01, 5.0))
def test_victor_purpura_matches_elephant(trains, q):
    # elephant 1.2.1: elephant.spike_train_dissimilarity.victor_purpura_distance(trains,
    # cost_factor=q / ms) with the default (fast) algorithm; times in ms
    pytest.importorskip("elephant")
    import quantities as pq
    from elephant.spike_train_dissimilarity import victor_purpura_distance as el_vp

    want = np.asarray(el_vp(_elephant_trains(trains, pq.ms), cost_factor=q / pq.ms))
    np.testing.assert_allclose(pairwise_victor_purpura(trains, q), want, rtol=RTOL_ELEPHANT)


@given(poisson_trains(), st.floats(0.1, 20.0))
def test_van_rossum_matches_elephant(trains, tau):
    # elephant 1.2.1: van_rossum_distance(trains, time_constant=tau * ms); times in ms. Trains
    # are independent Poisson draws, so no pair is close enough for D² to cancel badly.
    pytest.importorskip("elephant")
    import quantities as pq
    from elephant.spike_train_dissimilarity import van_rossum_distance as el_vr

    want = np.asarray(el_vr(_elephant_trains(trains, pq.ms), time_constant=tau * pq.ms))
    got = np.array([[van_rossum_distance(a, b, tau) for b in trains] for a in trains])
    np.testing.assert_allclose(got, want, rtol=RTOL_ELEPHANT)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "bad, exc, match",
    [
        (None, TypeError, r"a must be a 1-D array of spike times, got NoneType"),
        ("1 2", TypeError, r"a must be a 1-D array of spike times, got str"),
        (3.0, TypeError, r"a must be a 1-D array of spike times, got float"),
        ([[1.0], [2.0, 3.0]], TypeError, r"a must be a 1-D array of spike times: "),
        (["x"], TypeError, r"a must hold real numbers, got dtype <U1"),
        ([[1.0, 2.0]], ValueError, r"a must be a 1-D array of spike times, got shape \(1, 2\)"),
        ([1.0, np.nan], ValueError, r"a holds NaN or infinite spike times"),
        ([1.0, np.inf], ValueError, r"a holds NaN or infinite spike times"),
        ([1.0, -0.5], ValueError, r"a holds negative spike times \(min -0.5\)"),
    ],
)
def test_train_errors(bad, exc, match):
    with pytest.raises(exc, match=match):
        victor_purpura_distance(bad, [1.0])


def test_train_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"b holds negative"):
        van_rossum_distance([1.0], [-1.0])
    with pytest.raises(TypeError, match=r"trains\[1\] must hold real numbers"):
        pairwise_victor_purpura([[1.0], ["a"]])
    with pytest.raises(TypeError, match=r"trains must be a sequence of 1-D spike-time arrays"):
        pairwise_victor_purpura(None)
    with pytest.raises(ValueError, match=r"trains\[2\] holds NaN or infinite spike times"):
        pairwise_victor_purpura([[1.0], [2.0, 3.0], [4.0, np.nan]])
    with pytest.raises(ValueError, match=r"trains\[0\] holds negative spike times \(min -2.0\)"):
        pairwise_victor_purpura([[1.0, -2.0], [2.0, 3.0]])


@pytest.mark.parametrize(
    "q, exc, match",
    [
        ("1", TypeError, r"q must be a real number, got str '1'"),
        (True, TypeError, r"q must be a real number, got bool True"),
        (np.nan, ValueError, r"q=nan must be >= 0"),
        (-1.0, ValueError, r"q=-1.0 must be >= 0"),
        (-np.inf, ValueError, r"q=-inf must be >= 0"),
        (np.float32(-2), ValueError, r"^q=-2.0 must be >= 0 \(inf allowed\); the cost per unit "
                                     r"time of moving a spike; q=0 and q=inf are the limits"),
    ],
)
def test_q_errors(q, exc, match):
    with pytest.raises(exc, match=match):
        victor_purpura_distance([1.0], [2.0], q)


def test_tau_and_k_errors():
    with pytest.raises(ValueError, match=r"tau=0.0 must be > 0 \(inf allowed\); the filter's "
                                         r"time constant; tau=inf gives \|n - m\|$"):
        van_rossum_distance([1.0], [2.0], 0.0)
    with pytest.raises(ValueError, match=r"tau=nan must be > 0"):
        van_rossum_distance([1.0], [2.0], np.nan)
    with pytest.raises(TypeError, match=r"tau must be a real number, got bool True"):
        van_rossum_distance([1.0], [2.0], True)
    with pytest.raises(ValueError, match=r"k=-0.1 must be >= 0 \(inf allowed\); the cost of "
                                         r"changing a spike's label"):
        multiunit_victor_purpura_distance([1.0], [0], [2.0], [0], 1.0, -0.1)
    with pytest.raises(TypeError, match=r"k must be a real number, got str '1'"):
        multiunit_victor_purpura_distance([1.0], [0], [2.0], [0], 1.0, "1")
    # inf stays the documented limit: tau=inf gives |n - m|, k=inf never relabels (as k >= 2)
    assert van_rossum_distance([1.0, 3.0], [2.0], np.inf) == 1.0
    assert (multiunit_victor_purpura_distance([1.0, 2.0], [0, 1], [1.0, 2.0], [1, 0], 1.0, np.inf)
            == multiunit_victor_purpura_distance([1.0, 2.0], [0, 1], [1.0, 2.0], [1, 0], 1.0, 2.0))


@pytest.mark.parametrize(
    "dt, exc, match",
    [
        (None, TypeError, r"dt must be a real number, got NoneType None; the rasters' step in ms"),
        (0.0, ValueError, r"dt=0.0 must be finite and > 0"),
        (np.inf, ValueError, r"dt=inf must be finite and > 0"),
    ],
)
def test_dt_errors(dt, exc, match):
    r = np.zeros((2, 1, 1))
    with pytest.raises(exc, match=match):
        population_victor_purpura(r, r, 1.0, dt)


def test_raster_errors():
    r = np.zeros((3, 2, 4))
    with pytest.raises(TypeError, match=r"raster_a must be a \[T, B, N\] 0/1 raster or Spike"):
        population_victor_purpura(None, r)
    with pytest.raises(TypeError, match=r"raster_b must be a rectangular \[T, B, N\] raster"):
        population_victor_purpura(r, [[[0.0]], [[0.0, 1.0]]])
    with pytest.raises(TypeError, match=r"raster_a must hold 0/1 numbers, got dtype <U1"):
        population_victor_purpura(np.full((1, 1, 1), "1"), r)
    with pytest.raises(ValueError, match=r"raster_b must be a time-major \[T, B, N\] raster, got "
                                         r"shape \(3, 2\)"):
        population_victor_purpura(r, np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"raster_a must hold only 0 and 1, found 2.0"):
        population_victor_purpura(np.full((3, 2, 4), 2.0), r)
    with pytest.raises(ValueError, match=r"must have the same \[T, B, N\] shape, got \(3, 2, 4\) "
                                         r"and \(4, 2, 4\)"):
        population_victor_purpura(r, np.zeros((4, 2, 4)))


def test_event_list_errors():
    r = np.zeros((3, 2, 4))
    r[0, 1, 3] = 1
    ev = spike_events(r)
    with pytest.raises(ValueError, match=r"raster_a is an event list.*pass n_neurons=N"):
        population_victor_purpura(ev, ev)
    with pytest.raises(TypeError, match=r"n_neurons must be an integer \(the layer width\), got "
                                        r"float 4.0; pass the number of neurons of the layer"):
        population_victor_purpura(ev, ev, n_neurons=4.0)
    with pytest.raises(ValueError,
                       match=r"n_neurons=0 must be an integer >= 1 \(the layer width\)"):
        population_victor_purpura(ev, ev, n_neurons=0)
    with pytest.raises(ValueError, match=r"n_neurons=3 must be >= 1 and exceed every neuron index "
                                         r"of raster_a \(max 3\)"):
        population_victor_purpura(ev, ev, n_neurons=3)
    with pytest.raises(ValueError, match=r"different numbers of \(samples, neurons\): \(2, 4\) and "
                                         r"\(1, 4\)"):
        population_victor_purpura(ev, np.zeros((3, 1, 4)))
    bad = type(ev)(ev.offsets, ev.steps - 5, ev.neurons)
    with pytest.raises(ValueError, match=r"raster_b.steps must be finite and >= 0; got min -5"):
        population_victor_purpura(r, bad)


def test_multiunit_errors():
    with pytest.raises(TypeError, match=r"labels_a must be a 1-D array of integer unit labels"):
        multiunit_victor_purpura_distance([1.0], None, [1.0], [0])
    with pytest.raises(TypeError, match=r"labels_b must hold integer unit labels, got dtype float"):
        multiunit_victor_purpura_distance([1.0], [0], [1.0], [0.0])
    with pytest.raises(ValueError, match=r"labels_a must have one label per spike of times_a: "
                                         r"shape \(2,\) vs \(1,\)"):
        multiunit_victor_purpura_distance([1.0], [0, 1], [1.0], [0])
    with pytest.raises(TypeError, match=r"max_cells must be an integer \(cells of the DP table\), "
                                        r"got float 1000000000.0"):
        multiunit_victor_purpura_distance([1.0], [0], [1.0], [0], max_cells=1e9)
    with pytest.raises(ValueError, match=r"max_cells=0 must be an integer >= 1 \(cells of the DP "
                                         r"table\); the bound on the table's size"):
        multiunit_victor_purpura_distance([1.0], [0], [1.0], [0], max_cells=0)
    # 10 units with 5 spikes each: 6**10 · 51 cells, far beyond the default bound
    t = np.arange(50, dtype=float)
    lab = np.repeat(np.arange(10), 5)
    with pytest.raises(ValueError, match=r"needs a DP table of 3083774976 cells for 10 units.*"
                                         r"exponentially with the number of units"):
        multiunit_victor_purpura_distance(t, lab, t, lab)
    with pytest.raises(ValueError, match=r"more than max_cells=5"):
        multiunit_victor_purpura_distance([1.0, 2.0], [0, 1], [1.0], [0], max_cells=5)


def test_multiunit_picks_the_smaller_table():
    # a: 6 spikes in 6 units (2**6 · 2 = 128 cells as A); b: 1 spike in 1 unit (2 · 7 = 14)
    a, la = np.arange(6.0), np.arange(6)
    d = multiunit_victor_purpura_distance(a, la, [0.0], [0], 1.0, 1.0, max_cells=14)
    assert d == 5.0  # keep the coincident (0, u0) spike, delete the other five


def test_inputs_a_review_found_accepted():
    """A 0/1 raster row read as spike times 0 and 1 (distance 0.0 where the times give 1.0);
    uint64 label 2**64 - 1 wrapped to -1, another unit's label (0.0 where it is 2.0);
    n_neurons of any kind or width passed silently with two rasters."""
    a, b = np.array([True, False, False, True]), np.array([False, True, False, True])
    with pytest.raises(TypeError, match=r"^a is a boolean array \(a raster row\?\)"):
        victor_purpura_distance(a, b, q=1.0)
    with pytest.raises(TypeError, match="boolean array"):
        pairwise_victor_purpura(np.stack([a, b]), q=1.0)
    assert victor_purpura_distance(np.flatnonzero(a), np.flatnonzero(b), q=1.0) == 1.0
    with pytest.raises(ValueError, match=r"labels_a holds 18446744073709551615, past int64"):
        multiunit_victor_purpura_distance([1.0], np.array([2**64 - 1], np.uint64), [1.0], [-1],
                                          q=1.0, k=5.0)
    assert multiunit_victor_purpura_distance([1.0], np.array([7], np.uint64), [1.0], [-1],
                                             q=1.0, k=5.0) == 2.0
    r = np.zeros((3, 1, 2))
    r[0, 0, 0] = 1
    for bad, exc, match in (("abc", TypeError, "n_neurons must be an integer"),
                            (2.5, TypeError, "n_neurons must be an integer"),
                            (-3, ValueError, "n_neurons=-3 must be an integer >= 1"),
                            (7, ValueError, "n_neurons=7 but the rasters have N = 2 neurons")):
        with pytest.raises(exc, match=match):
            population_victor_purpura(r, r, q=1.0, dt=1.0, n_neurons=bad)
    assert population_victor_purpura(r, r, q=1.0, dt=1.0, n_neurons=2).mean == 0.0


def test_van_rossum_small_tau_limit_counts_repeated_times():
    # the docstring's n + m - 2 #coincident holds only without repeated times: the limit is
    # sum_t (n_a(t) - n_b(t))^2 (a review: [1, 1] against [] gives 4, not 2)
    assert van_rossum_distance([1.0, 1.0], [], tau=1e-4) ** 2 == pytest.approx(4.0)
    assert van_rossum_distance([2.0, 2.0, 2.0], [2.0], tau=1e-4) ** 2 == pytest.approx(4.0)
