"""Corner-aimed property tests of evsnn.metrics and evsnn.decoders.

Strategies aim at corners: empty batches, single steps/samples/neurons, all-silent and saturated
rasters, λ exactly 0 and 1, exactly-zero perturbations and gradients, ties, duplicated samples.
Oracles: the kernel twins (tests/reference/metrics.py), the papers' equations as naive loops on
tiny cases (Stable Eq. 11-14; Ding 2025 Eq. 25-33 and 36-37; Ding 2023 Eq. 20; RSC Eq. 6),
invariances that hold bit for bit (negation, powers of two, permutations, duplicated samples)
and the documented guarantees. Regression tests for the bugs these found end the file.
"""

import math

import numpy as np
import pytest
from conftest import ATOL_TWIN, RTOL_HAND, RTOL_TWIN
from hypothesis import given, settings
from hypothesis import strategies as st

from evsnn import decoders as dec
from evsnn.metrics import (
    TABLE2,
    LayerShape,
    _membrane_difference_kernel,
    _mppd_kernel,
    accuracy,
    attack_success_rate,
    cumulative_rate,
    directional_derivative,
    hidden_rate,
    layer_cost,
    loss_change_grid,
    membrane_difference,
    mppd,
    mppd_response,
    ms_mppd,
    perturbation_distribution,
    qte,
    sop,
    spike_train_distance,
    stability,
    step_factors,
    taacc,
    tasad,
    taylor_indicator,
    taylor_indicator_grid,
)
from reference import metrics as ref
from reference.helpers import example_count

SEEDS = st.integers(0, 2**32 - 1)
EPS = np.finfo(np.float64).eps


# --------------------------------------------------------------------------- strategies
@st.composite
def rasters(draw, n=1, T=(1, 6), B=(0, 3), N=(0, 4), tail=None):
    """``n`` 0/1 float rasters ``[T, B, N]`` of one shape; each all-silent, saturated, a single
    spike or random (sparse to dense). ``tail`` replaces ``(N,)`` by a drawn shape."""
    T = draw(st.integers(*T))
    B = draw(st.integers(*B))
    shape = (T, B) + ((draw(st.integers(*N)),) if tail is None else draw(tail))
    rng = np.random.default_rng(draw(SEEDS))
    out = []
    for _ in range(n):
        mode = draw(st.sampled_from(["silent", "full", "single", "random"]))
        s = np.zeros(shape)
        if mode == "full":
            s[...] = 1.0
        elif mode == "single" and s.size:
            s.flat[rng.integers(s.size)] = 1.0
        elif mode == "random":
            s = (rng.random(shape) < draw(st.sampled_from([0.1, 0.5, 0.9]))).astype(float)
        out.append(s)
    return out


@st.composite
def labelled_scores(draw, B=(1, 5), C=(1, 4)):
    """Scores ``[B, C]`` with many ties (small integers, constant rows) and labels ``[B]``."""
    B, C = draw(st.integers(*B)), draw(st.integers(*C))
    rng = np.random.default_rng(draw(SEEDS))
    scores = rng.integers(0, draw(st.sampled_from([1, 2, 3])), (B, C)).astype(float)
    return scores, rng.integers(0, C, B)


def _argmax_lowest(row):
    """Naive argmax with ties to the lowest index."""
    best = 0
    for j in range(1, len(row)):
        if row[j] > row[best]:
            best = j
    return best


# =========================================================================== MPPD (Stable Eq. 11)
@st.composite
def mppd_case(draw):
    T, B = draw(st.integers(1, 6)), draw(st.integers(0, 3))
    n_in, n_out = draw(st.integers(0, 4)), draw(st.integers(0, 3))
    rng = np.random.default_rng(draw(SEEDS))
    W = rng.uniform(-2, 2, (n_out, n_in))
    ds = rng.integers(-1, 2, (T, B, n_in)).astype(float)
    if draw(st.booleans()):
        ds *= rng.uniform(-1, 1, ds.shape)  # current differences of a current-coded layer
    lam = draw(st.sampled_from([0.0, 1.0, 0.5, 0.9]))
    return ds, W, lam


@settings(max_examples=example_count(30))
@given(mppd_case(), st.sampled_from([None, "leak", "input"]))
def test_mppd_kernel_matches_twin_at_corners(case, placement):
    ds, W, lam = case
    T = ds.shape[0]
    a = None if placement is None else np.linspace(0.0, 1.5, T)  # a[0] = 0: a dead first step
    f = step_factors(lam, T, dlif_factors=a, dlif_factor=placement or "leak")
    got = np.empty((T, ds.shape[1], W.shape[0]))
    want = np.empty_like(got)
    _mppd_kernel(ds, np.ascontiguousarray(W.T), f.leak, f.gain, got)
    ref._mppd_kernel(ds, np.ascontiguousarray(W.T), f.leak, f.gain, want)
    np.testing.assert_allclose(got, want, rtol=RTOL_TWIN, atol=ATOL_TWIN)
    np.testing.assert_allclose(got, ref.mppd_dense(ds, W, f.leak, f.gain), rtol=1e-9, atol=1e-12)


@settings(max_examples=example_count(30))
@given(mppd_case(), st.integers(-4, 4))
def test_mppd_response_is_odd_and_exactly_linear_in_powers_of_two(case, k):
    """ε is linear in Δs (Eq. 11): negating Δs or scaling it by 2^k changes no bit."""
    ds, W, lam = case
    e = mppd_response(ds, W, lam)
    np.testing.assert_array_equal(mppd_response(-ds, W, lam), -e)
    np.testing.assert_array_equal(mppd_response(ds * 2.0**k, W, lam), e * 2.0**k)
    np.testing.assert_array_equal(mppd_response(np.zeros_like(ds), W, lam), 0.0)


@settings(max_examples=example_count(30))
@given(mppd_case())
def test_mppd_lambda_zero_is_memoryless_and_lambda_one_is_a_running_sum(case):
    """λ = 0: ε[t] = W Δs[t] (the one-step response); λ = 1: ε[t] = ε[t-1] + W Δs[t], i.e. the
    running sum of the λ = 0 responses in time order (np.cumsum adds sequentially)."""
    ds, W, _ = case
    e0 = mppd_response(ds, W, 0.0)
    for t in range(ds.shape[0]):
        np.testing.assert_array_equal(e0[t], mppd_response(ds[t : t + 1], W, 0.5)[0])
    np.testing.assert_array_equal(mppd_response(ds, W, 1.0), np.cumsum(e0, axis=0))


@settings(max_examples=example_count(30))
@given(rasters(n=2, B=(1, 3), N=(1, 4)), SEEDS, st.sampled_from([0.0, 0.5, 1.0]))
def test_mppd_antisymmetric_zero_on_equal_runs_and_batch_permutation(pair, seed, lam):
    s, s_t = pair
    rng = np.random.default_rng(seed)
    W = rng.uniform(-1, 1, (3, s.shape[2]))
    e = mppd(s, s_t, W, lam)
    np.testing.assert_array_equal(mppd(s_t, s, W, lam), -e)
    np.testing.assert_array_equal(mppd(s, s, W, lam), 0.0)
    perm = rng.permutation(s.shape[1])
    np.testing.assert_array_equal(mppd(s[:, perm], s_t[:, perm], W, lam), e[:, perm])
    # a duplicated sample gets the same row
    dup = mppd(np.concatenate([s, s], 1), np.concatenate([s_t, s_t], 1), W, lam)
    np.testing.assert_array_equal(dup, np.concatenate([e, e], 1))


@settings(max_examples=example_count(20))
@given(mppd_case(), st.sampled_from(["leak", "input"]))
def test_dlif_with_unit_factors_is_plain_lif(case, placement):
    """a[t] = 1: λ·1 = λ and gain 1, so DLIF's dynamics are the λ-LIF ones bit for bit."""
    ds, W, lam = case
    ones = np.ones(ds.shape[0])
    np.testing.assert_array_equal(
        mppd_response(ds, W, lam, dlif_factors=ones, dlif_factor=placement),
        mppd_response(ds, W, lam),
    )


@settings(max_examples=example_count(20))
@given(mppd_case())
def test_membrane_difference_without_resets_is_mppd(case):
    """v = m (no neuron ever resets): the reset term is 0 and Eq. 9-10 reduce to Eq. 11; equal
    runs give ε = 0 with any membranes."""
    ds, W, lam = case
    T, B, _ = ds.shape
    rng = np.random.default_rng(7)
    m_c = rng.uniform(-1, 1, (T, B, W.shape[0]))
    m_p = rng.uniform(-1, 1, (T, B, W.shape[0]))
    s_t = np.zeros_like(ds)
    d = membrane_difference(ds, s_t, W, lam, m_clean=m_c, v_clean=m_c, m_pert=m_p, v_pert=m_p)
    np.testing.assert_array_equal(d.reset, 0.0)
    np.testing.assert_array_equal(d.eps, mppd(ds, s_t, W, lam))
    np.testing.assert_array_equal(d.synaptic[:1], d.eps[:1])
    v_c = m_c - 0.5 * (m_c > 0)  # some resets, identical in both runs
    same = membrane_difference(ds, ds, W, lam, m_clean=m_c, v_clean=v_c, m_pert=m_c, v_pert=v_c)
    np.testing.assert_array_equal(same.eps, 0.0)
    # the twin agrees at these corners too
    f = step_factors(lam, T)
    outs = [np.empty((T, B, W.shape[0])) for _ in range(3)]
    _membrane_difference_kernel(ds, np.ascontiguousarray(W.T), f.leak, f.gain, m_c, v_c, m_p,
                                m_p, *outs)
    twins = [np.empty_like(o) for o in outs]
    ref._membrane_difference_kernel(ds, np.ascontiguousarray(W.T), f.leak, f.gain, m_c, v_c,
                                    m_p, m_p, *twins)
    for o, w in zip(outs, twins):
        np.testing.assert_allclose(o, w, rtol=RTOL_TWIN, atol=ATOL_TWIN)


# =========================================================================== Stable Eq. 12-14
@settings(max_examples=example_count(30))
@given(st.integers(1, 4), st.integers(0, 3), st.integers(1, 4), SEEDS, st.integers(-3, 3))
def test_ms_mppd_is_eq14_and_scales_by_four_to_the_k(T, B, N, seed, k):
    eps = np.random.default_rng(seed).uniform(-3, 3, (T, B, N))
    s, m = ms_mppd(eps), ms_mppd(eps, reduction="mean")
    for b in range(B):
        naive = 0.0
        for i in range(N):
            for t in range(T):
                naive += eps[t, b, i] ** 2
        assert s[b] == pytest.approx(naive, rel=RTOL_HAND)
        assert m[b] == pytest.approx(naive / (T * N), rel=RTOL_HAND)
    np.testing.assert_array_equal(ms_mppd(eps * 2.0**k), s * 4.0**k)
    np.testing.assert_array_equal(ms_mppd(-eps), s)


@settings(max_examples=example_count(40))
@given(rasters(n=3, B=(1, 3), N=(0, 4)))
def test_tasad_and_std_are_eq12_eq13_and_pseudometrics(trio):
    a, b, c = trio
    T, B, N = a.shape
    ta, sd = tasad(a, b), spike_train_distance(a, b)
    for k in range(B):  # Eq. 12 and Eq. 13 as loops
        rate_sq = sum(((a[:, k, i].sum() - b[:, k, i].sum()) / T) ** 2 for i in range(N))
        sq = sum((a[t, k, i] - b[t, k, i]) ** 2 for t in range(T) for i in range(N))
        assert ta[k] == pytest.approx(math.sqrt(rate_sq), rel=RTOL_HAND, abs=0)
        assert sd[k] == pytest.approx(math.sqrt(sq), rel=RTOL_HAND, abs=0)
    np.testing.assert_array_equal(tasad(b, a), ta)
    np.testing.assert_array_equal(spike_train_distance(b, a), sd)
    np.testing.assert_array_equal(tasad(a, a), 0.0)
    np.testing.assert_array_equal(spike_train_distance(a, a), 0.0)
    slack = 1 + 8 * EPS
    assert np.all(spike_train_distance(a, c) <= (sd + spike_train_distance(b, c)) * slack)
    assert np.all(tasad(a, c) <= (ta + tasad(b, c)) * slack)
    # Cauchy-Schwarz over time: |Σ_t d| / T <= sqrt(Σ_t d²) / sqrt(T)
    assert np.all(ta <= sd / math.sqrt(T) * slack)
    # TASAD is blind to timing: reversing time in one run only moves spikes
    np.testing.assert_array_equal(tasad(a[::-1], b), ta)


# =========================================================================== Ding 2025 Eq. 25, 28
@settings(max_examples=example_count(40))
@given(labelled_scores(), SEEDS)
def test_accuracy_and_asr_brute_force_with_ties(case, seed):
    adv, y = case
    clean = np.random.default_rng(seed).integers(0, 2, adv.shape).astype(float)
    B = y.size
    pa = [_argmax_lowest(adv[b]) for b in range(B)]
    pc = [_argmax_lowest(clean[b]) for b in range(B)]
    assert accuracy(adv, y) == sum(pa[b] == y[b] for b in range(B)) / B
    np.testing.assert_array_equal(dec.predict(adv), pa)
    r_all = attack_success_rate(adv, y)
    r_cc = attack_success_rate(adv, y, clean=clean, denominator="clean_correct")
    assert r_all.n_success == sum(pa[b] != y[b] for b in range(B)) and r_all.n_attack == B
    assert r_all.rate == pytest.approx(1.0 - accuracy(adv, y), rel=RTOL_HAND, abs=EPS)
    eligible = [pc[b] == y[b] for b in range(B)]
    assert r_cc.n_attack == sum(eligible)
    assert r_cc.n_success == sum(eligible[b] and pa[b] != y[b] for b in range(B))
    assert not np.any(r_cc.success & ~r_all.success)  # a clean-correct success is a success
    if r_cc.n_attack == 0:
        assert math.isnan(r_cc.rate)
    else:
        assert 0.0 <= r_cc.rate <= 1.0
    # the model unchanged by the attack: no clean-correct sample flips
    same = attack_success_rate(clean, y, clean=clean, denominator="clean_correct")
    assert same.n_success == 0
    # predictions given as labels count the same as scores
    assert attack_success_rate(np.array(pa), y).n_success == r_all.n_success


# =========================================================================== TAAcc, Eq. 26
@settings(max_examples=example_count(40))
@given(rasters(B=(1, 4), N=(1, 3)), SEEDS, st.sampled_from(["rate", "ttfs", "membrane"]))
def test_taacc_is_accuracy_of_the_decoder_on_each_prefix(r, seed, decoder):
    """TAAcc[t] (Eq. 26) is the accuracy of the decoder run on steps 0..t only; TAAcc[T] is the
    final accuracy (Eq. 25). For rate and membrane the prefix scores are the same numbers; for
    TTFS the prefix weights differ from the full window's but rank first spikes the same way."""
    (s,) = r
    y = np.random.default_rng(seed).integers(0, s.shape[2], s.shape[1])
    acc = taacc(s, y, decoder=decoder)
    assert acc.shape == (s.shape[0],)
    for t in range(s.shape[0]):
        assert acc[t] == accuracy(dec.decode(s[: t + 1], decoder), y)
    assert acc[-1] == accuracy(dec.decode(s, decoder), y)
    if not s.any():  # all silent: every argmax is class 0 (ties to the lowest index)
        np.testing.assert_array_equal(acc, np.mean(y == 0))


# =========================================================================== stability, Eq. 27
@settings(max_examples=example_count(40))
@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 3), SEEDS)
def test_stability_brute_force_permutation_and_k1(K, B, C, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, B)
    runs = rng.integers(0, C, (K, B))
    r = stability(runs, y)
    hits = [[runs[k, b] == y[b] for b in range(B)] for k in range(K)]
    assert r.value == pytest.approx(sum(map(sum, hits)) / (K * B), rel=RTOL_HAND)
    assert r.consistent == sum(all(hits[k][b] for k in range(K)) for b in range(B)) / B
    assert r.consistent <= r.value and r.K == K
    p = stability(runs[rng.permutation(K)], y)
    assert (p.value, p.consistent) == (r.value, r.consistent)
    np.testing.assert_array_equal(p.sample_fraction, r.sample_fraction)
    one = stability(runs[:1], y)  # K = 1: Eq. 27 is the accuracy, and consistent equals it
    assert one.value == one.consistent == accuracy(runs[0], y) == one.run_accuracy[0]


# =========================================================================== ζ[t]
@settings(max_examples=example_count(40))
@given(rasters(n=2, B=(1, 3), N=(1, 4)), SEEDS)
def test_zeta_brute_force_sums_to_one_and_permutation_invariant(pair, seed):
    a, b = pair
    r = perturbation_distribution(a, b)
    T, B, N = a.shape
    counts = [sum(a[t, d, i] != b[t, d, i] for d in range(B) for i in range(N)) for t in range(T)]
    np.testing.assert_array_equal(r.counts, counts)
    assert r.total == sum(counts)
    rng = np.random.default_rng(seed)
    pb, pn = rng.permutation(B), rng.permutation(N)
    same = perturbation_distribution(a[:, pb][:, :, pn], b[:, pb][:, :, pn])
    twice = perturbation_distribution(np.concatenate([a, a], 1), np.concatenate([b, b], 1))
    if r.total == 0:
        assert np.all(np.isnan(r.zeta))
        return
    assert abs(r.zeta.sum() - 1.0) <= T * EPS
    assert np.all((r.zeta >= 0) & (r.zeta <= 1))
    np.testing.assert_array_equal(same.zeta, r.zeta)
    np.testing.assert_array_equal(twice.zeta, r.zeta)  # 2c / 2n = c / n exactly
    np.testing.assert_array_equal(perturbation_distribution(b, a).zeta, r.zeta)
    np.testing.assert_array_equal(perturbation_distribution(a[::-1], b[::-1]).zeta, r.zeta[::-1])


# =========================================================================== Eq. 29-30
@settings(max_examples=example_count(40))
@given(rasters(B=(0, 3), N=(1, 4)))
def test_rates_brute_force(r):
    (s,) = r
    T, B, N = s.shape
    rate, per, hid = cumulative_rate(s), cumulative_rate(s, per_neuron=True), hidden_rate(s)
    for b in range(B):
        for t in range(T):
            total = sum(s[u, b, j] for u in range(t + 1) for j in range(N))
            assert rate[t, b] == total / (t + 1)
            assert hid[t, b] == pytest.approx(s[t, b].sum() / N, rel=RTOL_HAND)
            for j in range(N):
                assert per[t, b, j] == s[: t + 1, b, j].sum() / (t + 1)
    np.testing.assert_allclose(rate, per.sum(axis=2), rtol=RTOL_HAND)
    assert np.all((hid >= 0) & (hid <= 1))


@settings(max_examples=example_count(10))
@given(st.sampled_from([(2, 3), (1, 2, 2)]))
def test_rates_of_conv_rasters_flatten_the_neurons(tail):
    s = (np.random.default_rng(1).random((3, 2) + tail) < 0.5).astype(float)
    flat = s.reshape(3, 2, -1)
    np.testing.assert_array_equal(hidden_rate(s), hidden_rate(flat))
    np.testing.assert_array_equal(cumulative_rate(s), cumulative_rate(flat))


# =========================================================================== Eq. 31-32, Ding 2023
@settings(max_examples=example_count(30))
@given(st.integers(1, 4), st.integers(1, 3), SEEDS, st.sampled_from([0.05, -0.25, 2.0**-30]))
def test_directional_derivative_zero_gradient_and_linear_loss(B, N, seed, t):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (B, N))
    g = rng.integers(-2, 3, (B, N)).astype(float)  # some exact zeros
    loss = lambda z: (z * g).sum(axis=1)  # noqa: E731  linear, per sample
    r = directional_derivative(loss, x, grad=np.zeros_like(x), t=t)
    np.testing.assert_array_equal(r.value, 0.0)  # v = sign(0) = 0: x + t v is x
    np.testing.assert_array_equal(r.loss_perturbed, r.loss_clean)
    r = directional_derivative(loss, x, grad=g, t=t)
    np.testing.assert_array_equal(r.direction, np.sign(g))
    # linear loss: (L(x + t v) - L(x)) / t = g·sign(g) = ‖g‖₁ up to the rounding of x + t v
    np.testing.assert_allclose(r.value, np.abs(g).sum(axis=1), rtol=1e-6 if t < 1e-8 else 1e-12)


@settings(max_examples=example_count(20))
@given(st.integers(1, 3), SEEDS)
def test_loss_change_grid_zero_at_origin_and_symmetric_in_the_directions(N, seed):
    """On dyadic data every x + t1 v1 + t2 v2 is exact, so swapping (v1, t1) with (v2, t2)
    transposes LC exactly; LC(0, 0) = 0 (Eq. 32)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-4, 5, N) / 4
    v1, v2 = rng.integers(-1, 2, N).astype(float), rng.integers(-1, 2, N).astype(float)
    t1, t2 = np.array([-1.0, 0.0, 0.5]), np.array([0.0, 0.25])
    loss = lambda z: float(np.sum(z**2) + z[0])  # noqa: E731
    g = loss_change_grid(loss, x, v1, v2, t1=t1, t2=t2)
    assert g.change[1, 0] == 0.0 and g.change.shape == (3, 2)
    np.testing.assert_array_equal(loss_change_grid(loss, x, v2, v1, t1=t2, t2=t1).change,
                                  g.change.T)
    for i, a in enumerate(t1):
        for j, b in enumerate(t2):
            assert g.change[i, j] == loss(x + a * v1 + b * v2) - loss(x)


@settings(max_examples=example_count(30))
@given(st.integers(1, 3), st.integers(0, 3), st.integers(1, 4), SEEDS, st.integers(-3, 3))
def test_taylor_indicator_invariances_and_grid_corners(T, B, N, seed, k):
    rng = np.random.default_rng(seed)
    g = rng.uniform(-1, 1, (T, B, N))
    d = rng.integers(-1, 2, (T, B, N)).astype(float)
    ind = taylor_indicator(g, d)
    for b in range(B):  # Ding 2023 Eq. 20's first-order term, as a loop
        dot = sum(g[t, b, i] * d[t, b, i] for t in range(T) for i in range(N))
        assert ind[b] == pytest.approx(abs(dot), rel=1e-12, abs=1e-15)
    np.testing.assert_array_equal(taylor_indicator(g, -d), ind)
    np.testing.assert_array_equal(taylor_indicator(d, g), ind)
    np.testing.assert_array_equal(taylor_indicator(g, d * 2.0**k), ind * 2.0**k)
    np.testing.assert_array_equal(taylor_indicator(np.zeros_like(g), d), 0.0)
    perm = rng.permutation(B)
    np.testing.assert_array_equal(taylor_indicator(g[:, perm], d[:, perm]), ind[perm])
    # sample axis first gives the same numbers
    np.testing.assert_array_equal(
        taylor_indicator(np.moveaxis(g, 1, 0), np.moveaxis(d, 1, 0), batch_axis=0), ind)
    u = rng.integers(-1, 2, g.shape).astype(float)
    grid = taylor_indicator_grid(g, d, u, [0.0, 1.0], [0.0, 1.0])
    np.testing.assert_array_equal(grid[0, 0], 0.0)
    np.testing.assert_array_equal(grid[1, 0], ind)
    np.testing.assert_array_equal(grid[0, 1], taylor_indicator(g, u))


# =========================================================================== RSC Eq. 6
@settings(max_examples=example_count(40))
@given(st.sampled_from([0.0, 1.0, 8.0, 0.1, 255.0]), st.sampled_from([0.0, 1.0, 4.0, 16.0]),
       st.sampled_from([0.0, 1.0, 0.5, 0.9095]), st.sampled_from([0.0, 1.0, 0.1089]),
       st.integers(-3, 3))
def test_qte_trapezoid_symmetry_and_scaling(ea, eb, aa, ab, k):
    q = qte(ea, aa, eb, ab)
    assert q == pytest.approx(abs(eb - ea) * (aa + ab) / 2, rel=RTOL_HAND, abs=0)
    assert qte(eb, ab, ea, aa) == q
    assert qte(ea, aa, ea, ab) == 0.0
    assert qte(ea * 2.0**k, aa, eb * 2.0**k, ab) == q * 2.0**k
    assert 0.0 <= q <= abs(eb - ea)  # accuracies are fractions


# =========================================================================== SOP, energy
@settings(max_examples=example_count(40))
@given(rasters(n=2, T=(1, 5), B=(0, 3), N=(1, 4)), st.integers(1, 3), SEEDS)
def test_sop_decision_time_corners_and_brute_force(pair, n_out, seed):
    x, h = pair
    T, B, n_in = x.shape
    shapes = [LayerShape.dense(n_in, n_out), LayerShape.dense(n_in, 2)]
    plain = sop([x, h], shapes)
    # deciding at the last step, or never (-1), counts all T steps
    for d in (np.full(B, T - 1), np.full(B, -1)):
        r = sop([x, h], shapes, decision_times=d)
        np.testing.assert_array_equal(r.sop, plain.sop)
        np.testing.assert_array_equal(r.steps, T)
    d = np.random.default_rng(seed).integers(-1, T, B)
    r = sop([x, h], shapes, decision_times=d)
    cut_x, cut_h = x.copy(), h.copy()
    for b in range(B):
        if d[b] >= 0:  # nothing after the decision step counts
            cut_x[d[b] + 1 :, b] = 0
            cut_h[d[b] + 1 :, b] = 0
        count = cut_x[:, b].sum() * n_out + cut_h[:, b].sum() * 2  # accumulate operations
        assert r.total[b] == pytest.approx(count, rel=RTOL_HAND, abs=0)
    np.testing.assert_array_equal(sop([cut_x, cut_h], shapes).sop, r.sop)
    np.testing.assert_array_equal(sop([cut_x, cut_h], shapes, decision_times=d).sop, r.sop)
    assert np.all(r.total <= plain.total)


@settings(max_examples=example_count(20))
@given(rasters(T=(1, 5), B=(1, 3), N=(1, 4)))
def test_sop_with_decoder_decision_times_matches_ttfs_prefix(r):
    """decision_times (origin 0) is the first step with an output spike: the first step at
    which some running TTFS score is positive; SOP counts steps 0..t_d."""
    (out,) = r
    td = dec.decision_times(out)
    first = dec.cumulative(out, "ttfs").max(axis=2) > 0  # [T, B]
    for b in range(out.shape[1]):
        want = int(np.argmax(first[:, b])) if first[:, b].any() else -1
        assert td[b] == want
    s = sop([out], [LayerShape.dense(out.shape[2], 1)], decision_times=td)
    np.testing.assert_array_equal(s.steps, np.where(td < 0, out.shape[0], td + 1))


@settings(max_examples=example_count(30))
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from([0.0, 0.25, 1.0, 3.0]))
def test_snn_energy_affine_in_xi_and_delay_independent_of_it(c_in, c_out, k, hw, xi):
    """Eq. 36: E = w E_read + F ξ E_ac + P_leak T; Eq. 37: T has no ξ. So the compute energy is
    SOP · E_ac, and E(ξ) − E(0) = F ξ E_ac."""
    shape = LayerShape(c_in, c_out, k, hw, hw)
    c, c0 = layer_cost(shape, model="snn", xi=xi), layer_cost(shape, model="snn", xi=0.0)
    assert c.delay_ns == c0.delay_ns and c.read_energy_pj == c0.read_energy_pj
    assert c.leak_energy_pj == c0.leak_energy_pj and c0.compute_energy_pj == 0.0
    assert c.compute_energy_pj == pytest.approx(shape.flops * xi * TABLE2.e_ac_pj, rel=RTOL_HAND)
    assert c.energy_pj - c0.energy_pj == pytest.approx(c.compute_energy_pj, rel=1e-9, abs=1e-9)
    ann = layer_cost(shape, model="ann")
    assert ann.read_energy_pj == c.read_energy_pj  # same weights fetched


# =========================================================================== decoders
@settings(max_examples=example_count(40))
@given(rasters(B=(0, 3), N=(1, 4)), SEEDS)
def test_decoders_silent_outputs_ties_and_time_order(r, seed):
    (s,) = r
    T, B, N = s.shape
    for m in ("rate", "ttfs", "membrane"):
        np.testing.assert_array_equal(dec.cumulative(s, m)[-1], dec.decode(s, m))  # bit for bit
    silent = np.zeros_like(s)
    for m in ("rate", "ttfs", "membrane"):
        np.testing.assert_array_equal(dec.decode(silent, m), 0.0)
        np.testing.assert_array_equal(dec.predict(dec.decode(silent, m)), 0)
    np.testing.assert_array_equal(dec.decision_times(silent), -1)
    # Eq. 13 as a loop: the earliest spike t0 scores T - t0, a silent neuron 0
    tt = dec.ttfs(s)
    for b in range(B):
        for i in range(N):
            hits = np.flatnonzero(s[:, b, i])
            assert tt[b, i] == (T - hits[0] if hits.size else 0)
    # rate counts are integers: any order of the steps gives the same scores
    perm = np.random.default_rng(seed).permutation(T)
    np.testing.assert_array_equal(dec.rate(s[perm]), dec.rate(s))
    # ties go to the lowest index, whatever the tied value
    ties = np.repeat(dec.rate(s).max(axis=1, keepdims=True), N, axis=1)
    np.testing.assert_array_equal(dec.predict(ties), 0)


def test_decoders_keep_float32_and_sum_in_time_order():
    s = np.random.default_rng(0).uniform(-1, 1, (20, 2, 3)).astype(np.float32)
    for m in ("rate", "ttfs", "membrane"):
        assert dec.decode(s, m).dtype == np.float32
        assert dec.cumulative(s, m).dtype == np.float32
        np.testing.assert_array_equal(dec.cumulative(s, m)[-1], dec.decode(s, m))
    # a sample alone, or a time-last array's view, scores the same bits as the batch
    np.testing.assert_array_equal(dec.rate(s[:, :1]), dec.rate(s)[:1])
    np.testing.assert_array_equal(dec.membrane(s[:, 1:]), dec.membrane(s)[1:])
    view = np.moveaxis(np.ascontiguousarray(np.moveaxis(s, 0, 2)), 2, 0)  # time axis last in memory
    for m in ("rate", "membrane"):
        np.testing.assert_array_equal(dec.decode(view, m), dec.decode(s, m))


# =========================================================================== regression tests
def test_ms_mppd_refuses_empty_eps():
    """Was: ms_mppd(np.zeros((0, 1, 2)), reduction="mean") returned [nan] with a NumPy
    "Mean of empty slice" warning (an error under pytest), and reduction="sum" returned 0 for
    T = 0, which mppd never produces; the same for a layer of N = 0 neurons with "mean"."""
    with pytest.raises(ValueError, match=r"eps holds no time steps \(shape \(0, 1, 2\)\)"):
        ms_mppd(np.zeros((0, 1, 2)), reduction="mean")
    with pytest.raises(ValueError, match="eps holds no time steps"):
        ms_mppd(np.zeros((0, 1, 2)))
    with pytest.raises(ValueError, match=r'eps holds no neurons .*reduction="mean" divides'):
        ms_mppd(np.zeros((2, 1, 0)), reduction="mean")
    np.testing.assert_array_equal(ms_mppd(np.zeros((2, 1, 0))), [0.0])  # Eq. 14's empty sum


def test_perturbation_distribution_refuses_no_samples_or_no_pixels():
    """Was: zeta all NaN (0 changes divided by 0) for a batch of B = 0 samples or of samples
    with no pixels, as if nothing had changed; refused by name like ms_mppd's empty input."""
    with pytest.raises(ValueError, match=r"^seq_clean holds no samples \(shape \(4, 0, 3\)\); "
                                         r"ζ\[t\] is a share of the changes over the data set: "
                                         r"pass at least one sample$"):
        perturbation_distribution(np.zeros((4, 0, 3)), np.ones((4, 0, 3)))
    with pytest.raises(ValueError, match=r"^seq_clean has no pixels \(shape \(4, 2, 3, 0, 5\)\)"):
        perturbation_distribution(np.zeros((4, 2, 3, 0, 5)), np.zeros((4, 2, 3, 0, 5)))
    # one sample of [T, B] scalars still counts (each step's value is its one pixel)
    r = perturbation_distribution(np.zeros((2, 1)), np.array([[0.0], [1.0]]))
    np.testing.assert_array_equal(r.zeta, [0.0, 1.0])


def test_step_factors_names_an_unknown_dtype():
    """Was: step_factors(0.5, 3, dtype="foo") raised NumPy's "data type 'foo' not understood",
    naming neither the argument nor the accepted dtypes."""
    with pytest.raises(TypeError, match="dtype='foo' is not a numpy dtype; use numpy.float64"):
        step_factors(0.5, 3, dtype="foo")
    with pytest.raises(ValueError, match="dtype=float16 is not supported"):
        step_factors(0.5, 3, dtype=np.float16)
    assert step_factors(0.5, 3, dtype=None).leak.dtype == np.float64


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_decoders_refuse_non_finite_outputs(bad):
    """Was: rate / ttfs / membrane / cumulative returned NaN or infinite scores silently, and
    decision_times counted a NaN as a spike (decision at step 0 for an all-NaN output)."""
    out = np.zeros((2, 1, 2))
    out[0, 0, 0] = bad
    for f in (dec.rate, dec.ttfs, dec.membrane, lambda o: dec.cumulative(o, "rate")):
        with pytest.raises(ValueError, match="outputs holds NaN or infinite values"):
            f(out)
    with pytest.raises(ValueError, match="spikes holds NaN or infinite values"):
        dec.decision_times(np.full((2, 1, 1), bad))


def test_decoders_name_a_non_string_method_and_non_numeric_scores():
    """Was: decode(outputs, ["rate"]) raised "unhashable type: 'list'", and predict ranked
    strings lexicographically (predict([["a", "b"]]) returned [1])."""
    with pytest.raises(TypeError, match=r"method must be a decoder name, one of .*got \['rate'\]"):
        dec.decode(np.zeros((1, 1, 1)), ["rate"])
    with pytest.raises(TypeError, match=r"method must be a decoder name"):
        dec.cumulative(np.zeros((1, 1, 1)), None)
    with pytest.raises(TypeError, match="scores must be numeric, got dtype <U1"):
        dec.predict([["a", "b"]])


def test_taylor_indicator_grid_needs_its_strengths():
    """Was: eps1=None / eps2=None silently used loss_change_grid's default of 21 strengths over
    [-1, 1] (a 21 x 21 grid), though the grid's strengths are required arguments."""
    g = np.ones((1, 2))
    with pytest.raises(TypeError, match="eps1 must be an array of real numbers, got NoneType"):
        taylor_indicator_grid(g, g, g, None, [0.5], batch_axis=0)
    with pytest.raises(TypeError, match="eps2 must be an array of real numbers, got NoneType"):
        taylor_indicator_grid(g, g, g, [0.5], None, batch_axis=0)
