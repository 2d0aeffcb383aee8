"""Corner-aimed property tests of certify.smoothing and certify.bernoulli.

Each test aims at a corner the broader property tests of test_smoothing.py / test_bernoulli.py
are unlikely to draw: n0 or n of 1 or 2, counts all in one class or in none, ties in the
selection, alpha near its ends, many classes, pixels at 0 or 1, p_A = 1, T = 1.

Oracles (independent of the code under test unless said otherwise):

* Clopper–Pearson: scipy 1.17 ``binomtest(k, n, alternative="greater").proportion_ci(
  confidence_level=1 - alpha, method="exact").low`` -- the one-sided bound at level 1 − α,
  which equals the lower end of the two-sided interval at level 1 − 2α that the code uses --
  and the closed forms 0 (k = 0) and α^{1/n} (k = n: the α quantile of Beta(n, 1)).
* Exact radii of threshold classifiers on one pixel, derived in each test's comment.
* Neyman–Pearson: the fractional knapsack on the full pattern space {0,1}^{T·d} (at most 2^9
  patterns) in exact rational arithmetic, without the atom grouping the code uses.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from unittest import mock

import numpy as np
import pytest
from conftest import RTOL_RENYI_BOUND
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reference.helpers import (
    ATOL_BRENTQ,
    NOISE_FACTORIES,
    example_count,
    quantile_classifier,
)
from scipy.stats import binom, binomtest, norm

from certify import bernoulli
from certify.bernoulli import certified_radii, certify_poisson, neyman_pearson_check
from certify.smoothing import (
    ABSTAIN,
    certified_radius,
    certify,
    gaussian,
    lower_confidence_bound,
    predict,
    rsc_fresh,
    sample_counts,
)

# Below this alpha scipy's exact interval is not accurate to ATOL_BRENTQ: its root function
# binom.sf(k - 1, n, p) - alpha loses digits by cancellation at tiny p (k = 1:
# 1 - (1 - p)^n), e.g. n = 2, k = 2, alpha = 1e-12 gives 9.99989e-07 against the exact
# alpha^(1/2) = 1e-06 (scipy 1.17.1; max error over n <= 6 is 3.7e-8 at alpha = 1e-12,
# 1.5e-10 at 1e-9, 4.7e-13 at 1e-6). Smaller alphas are checked against closed forms only.
ALPHA_SCIPY_ACCURATE = 1e-6
# The code's float64 NP values against exact rationals: masses are sums of at most 2^9 products
# of 9 factors (rounding ~1e-15 relative each) and binomial pmfs via scipy (~1e-14 relative);
# 1e-12 absolute on values in [0, 1] leaves margin.
ATOL_NP = 1e-12

SMALL = settings(max_examples=example_count(30))


# --------------------------------------------------------------------------- Clopper-Pearson
@SMALL
@given(
    n=st.integers(1, 6),
    data=st.data(),
    alpha=st.one_of(st.sampled_from([1e-12, 1e-6, 0.4999, 0.49999999]),
                    st.floats(1e-9, 0.4999)),
)
def test_lower_bound_small_n_against_scipy_one_sided(n, data, alpha):
    k = data.draw(st.integers(0, n))
    got = lower_confidence_bound(k, n, alpha)
    if alpha >= ALPHA_SCIPY_ACCURATE:
        want = binomtest(k, n, alternative="greater").proportion_ci(
            confidence_level=1 - alpha, method="exact").low
        assert got == pytest.approx(want, abs=ATOL_BRENTQ)
        if k > 0:  # valid: P_p(K >= k) <= alpha at p = the bound (defining property)
            assert binom.sf(k - 1, n, got) <= alpha * (1 + 1e-9)
    # closed forms, at every alpha: k = 0 -> 0; k = n -> P(K = n) = p^n = alpha;
    # k = 1 -> P(K >= 1) = 1 - (1 - p)^n = alpha, p = -expm1(log1p(-alpha)/n)
    if k == 0:
        assert got == 0.0
    if k == n:
        assert got == pytest.approx(alpha ** (1.0 / n), rel=1e-12)
    if k == 1:
        assert got == pytest.approx(-math.expm1(math.log1p(-alpha) / n), rel=1e-12)


@SMALL
@given(n=st.integers(1, 40), alpha=st.floats(1e-9, 0.4999), sigma=st.floats(0.01, 3.0),
       T=st.integers(1, 9), name=st.sampled_from(sorted(NOISE_FACTORIES)))
def test_radius_monotone_in_count_and_sigma_abstain_at_half(n, alpha, sigma, T, name):
    noise = NOISE_FACTORIES[name](sigma, T)
    noise2 = NOISE_FACTORIES[name](2 * sigma, T)
    prev = -1.0
    for k in range(n + 1):
        p = lower_confidence_bound(k, n, alpha)
        r = certified_radius(p, noise)
        assert r >= prev
        prev = r
        assert (r == 0.0) == (p <= 0.5)
        # radius doubles exactly with sigma (σ Φ⁻¹(p) · scale)
        assert certified_radius(p, noise2) == pytest.approx(2 * r, rel=1e-15, abs=0)
    # the bound at n_A = n tends to 1 but never reaches it: the radius is finite
    assert math.isfinite(prev)


# --------------------------------------------------------------------------- CERTIFY corners
@SMALL
@given(n0=st.integers(1, 3), n=st.integers(1, 3), seed=st.integers(0, 2**32 - 1),
       K=st.integers(2, 60), alpha=st.sampled_from([1e-9, 0.001, 0.25, 0.4999]),
       name=st.sampled_from(sorted(NOISE_FACTORIES)))
def test_certify_tiny_n_is_consistent_and_never_certifies_what_it_cannot(n0, n, seed, K, alpha,
                                                                        name):
    # K equiprobable classes; with n <= 3 the bound alpha^(1/n) at n_A = n exceeds 1/2 only
    # when alpha > 2^-n, so certificates are rare but must be exactly the formula
    clf = quantile_classifier(norm.ppf(np.arange(1, K) / K))
    noise = NOISE_FACTORIES[name](1.0, 2, clamp=False)
    cert = certify(clf, np.zeros(3), noise, n0=n0, n=n, alpha=alpha, num_classes=K, rng=seed)
    assert cert.counts.sum() == n and cert.counts_selection.sum() == n0
    top = cert.counts_selection.max()
    c_a = int(np.flatnonzero(cert.counts_selection == top)[0])  # ties: lowest label
    p = lower_confidence_bound(int(cert.counts[c_a]), n, alpha)
    assert cert.p_a_lower == p
    if p <= 0.5:
        assert cert.prediction == ABSTAIN and cert.radius == 0.0
    else:
        assert cert.prediction == c_a
        assert cert.radius == certified_radius(p, noise)
        assert cert.counts[c_a] == n and alpha > 2.0 ** -n  # only n_A = n can certify so little


@SMALL
@given(seed=st.integers(0, 2**32 - 1), K=st.integers(2, 12))
def test_selection_ties_go_to_the_lowest_label_even_if_estimation_disagrees(seed, K):
    # classifier that returns class (K-1) - (sample index parity) through a counter: the
    # selection phase (n0 = 2) sees each of two labels once, a tie; the lower label must be
    # chosen even though the estimation samples all belong to the higher one
    calls = {"phase": 0}

    def classify(seq):
        calls["phase"] += 1
        B = seq.shape[1]
        if calls["phase"] == 1:  # selection: one of each of K-2, K-1
            return np.array([K - 1, K - 2][:B], dtype=np.int64)
        return np.full(B, K - 1, dtype=np.int64)

    cert = certify(classify, np.zeros(2), gaussian(0.5, 1), n0=2, n=50, alpha=0.001,
                   num_classes=K, rng=seed)
    assert cert.counts_selection[K - 2] == cert.counts_selection[K - 1] == 1
    # the candidate is K - 2, which never occurs among the estimation samples: abstain
    assert cert.prediction == ABSTAIN and cert.p_a_lower == 0.0 and cert.radius == 0.0


@SMALL
@given(n=st.integers(1, 12), seed=st.integers(0, 2**32 - 1), K=st.integers(2, 30),
       alpha=st.floats(1e-9, 0.4999))
def test_predict_tiny_n_ties_and_p_value(n, seed, K, alpha):
    clf = quantile_classifier(norm.ppf(np.arange(1, K) / K))
    res = predict(clf, np.zeros(1), gaussian(1.0, 1, clamp=False), n=n, alpha=alpha,
                  num_classes=K, rng=seed)
    c = res.counts
    assert c.sum() == n
    order = sorted(range(K), key=lambda j: (-c[j], j))
    n_a, n_b = int(c[order[0]]), int(c[order[1]])
    want = binomtest(n_a, n_a + n_b, 0.5).pvalue
    assert res.p_value == pytest.approx(want, rel=1e-12)
    if n_a == n_b:  # a tie is never significant: p-value 1
        assert res.p_value == 1.0 and res.prediction == ABSTAIN
    # PREDICT at level alpha < 1/2 needs n_A + n_B >= 2 and the two-sided p-value 2^(1-n_A)
    # at n_B = 0 to be <= alpha
    if res.prediction != ABSTAIN:
        assert res.prediction == order[0] and res.p_value <= alpha
    else:
        assert res.p_value > alpha


# --------------------------------------------------------------------------- exact radii
@SMALL
@given(x=st.sampled_from([0.0, 1.0, 0.02, 0.98, 0.5]), thr=st.floats(0.05, 0.95),
       sigma=st.floats(0.05, 1.0), T=st.integers(1, 6), readout=st.sampled_from(["all", "any"]),
       seed=st.integers(0, 2**32 - 1))
def test_rsc_fresh_radius_below_exact_for_all_and_any_readouts(x, thr, sigma, T, readout,
                                                               seed):
    # one pixel, f = 1 when clamp(x + ε_t) >= thr at every step ("all") or some step ("any").
    # thr ∈ (0, 1), so the clamp never changes the event: P(one step) = Φ((x − thr)/σ) =: q,
    # p_1 = q^T ("all") or 1 − (1 − q)^T ("any"). The smoothed classifier at x' is class 1
    # iff p_1(x') > 1/2, i.e. x' > b with b = thr + σ Φ⁻¹(2^{-1/T}) ("all") or
    # thr − σ Φ⁻¹(2^{-1/T}) ("any"), so the exact image-space radius is |x − b| (the clamp
    # box does not matter: x' may be any real in Cohen et al.'s theorem; inside [0, 1] the
    # radius can only be larger). alpha = 1e-9: a violation by chance has probability 1e-9.
    noise = rsc_fresh(sigma, T)

    def classify(seq):
        hit = seq[:, :, 0] >= thr
        return (hit.all(axis=0) if readout == "all" else hit.any(axis=0)).astype(np.int64)

    shift = sigma * norm.ppf(2.0 ** (-1.0 / T))
    b = thr + shift if readout == "all" else thr - shift
    cert = certify(classify, np.array([x]), noise, n0=20, n=400, alpha=1e-9, num_classes=2,
                   rng=seed)
    if cert.prediction != ABSTAIN:
        assert cert.prediction == int(x > b)
        assert cert.radius <= abs(x - b) * (1 + 1e-12)


@SMALL
@given(x=st.sampled_from([0.0, 1.0, 0.0, 1.0, 0.03, 0.5]), thr=st.sampled_from([0.0, 1.0]),
       sigma=st.floats(0.05, 1.0), name=st.sampled_from(["gaussian", "rsc_fixed"]),
       seed=st.integers(0, 2**32 - 1))
def test_clamp_edge_thresholds_radius_below_exact(x, thr, sigma, name, seed):
    # thresholds at the clamp's edges, where the clamped law has atoms: f = 1[clamp(x+ε) >= 1]
    # (thr = 1) or f = 1[clamp(x+ε) > 0] (thr = 0). Both equal the unclamped events
    # {x + ε >= 1}, {x + ε > 0}: p_1 = Φ((x − thr)/σ), exact boundary x' = thr, exact radius
    # |x − thr| (Gaussian and RSC-I: F = f ∘ clamp is a base classifier on R^N).
    noise = NOISE_FACTORIES[name](sigma, 3)

    def classify(seq):
        z = seq[0, :, 0]
        return ((z >= 1.0) if thr == 1.0 else (z > 0.0)).astype(np.int64)

    cert = certify(classify, np.array([x]), noise, n0=20, n=400, alpha=1e-9, num_classes=2,
                   rng=seed)
    if cert.prediction != ABSTAIN:
        assert cert.radius <= abs(x - thr) * (1 + 1e-12)
        assert cert.prediction == int(x > thr) or (x == thr and cert.prediction == int(thr == 0))


# --------------------------------------------------------------------------- batch independence
@SMALL
@given(seed=st.integers(0, 2**32 - 1), n0=st.integers(1, 70), n=st.integers(1, 140),
       bs=st.lists(st.integers(1, 200), min_size=2, max_size=3),
       name=st.sampled_from(sorted(NOISE_FACTORIES)))
def test_certify_and_predict_identical_for_any_batch_size(seed, n0, n, bs, name):
    clf = quantile_classifier([-0.3, 0.4, 1.1])
    noise = NOISE_FACTORIES[name](0.7, 2, clamp=False)
    x = np.array([0.1, 0.9])
    certs = [certify(clf, x, noise, n0=n0, n=n, alpha=0.01, num_classes=4, rng=seed,
                     batch_size=b) for b in bs]
    preds = [predict(clf, x, noise, n=n, alpha=0.01, num_classes=4, rng=seed, batch_size=b)
             for b in bs]
    for c in certs[1:]:
        np.testing.assert_array_equal(c.counts, certs[0].counts)
        np.testing.assert_array_equal(c.counts_selection, certs[0].counts_selection)
        assert (c.prediction, c.radius, c.p_a_lower) == (
            certs[0].prediction, certs[0].radius, certs[0].p_a_lower)
    for p in preds[1:]:
        np.testing.assert_array_equal(p.counts, preds[0].counts)
    # a Generator seeded with the same int gives the same result as the same Generator state
    g1, g2 = np.random.default_rng(seed), np.random.default_rng(seed)
    a = certify(clf, x, noise, n0=n0, n=n, alpha=0.01, num_classes=4, rng=g1)
    b = certify(clf, x, noise, n0=n0, n=n, alpha=0.01, num_classes=4, rng=g2)
    np.testing.assert_array_equal(a.counts, b.counts)


@settings(max_examples=example_count(15))
@given(seed=st.integers(0, 2**32 - 1), bs=st.lists(st.integers(1, 150), min_size=2,
                                                      max_size=3),
       x=st.lists(st.sampled_from([0.0, 1.0, 0.3, 0.77]), min_size=1, max_size=3))
def test_certify_poisson_identical_for_any_batch_size(seed, bs, x):
    def classify(spikes):
        return (spikes.sum(axis=(0, 2)) % 3).astype(np.int64)

    certs = [certify_poisson(classify, np.array(x), n_steps=2, n0=5, n=130, alpha=0.01,
                             num_classes=3, rng=seed, batch_size=b, orders=[0.5, 1.0])
             for b in bs]
    for c in certs[1:]:
        np.testing.assert_array_equal(c.counts, certs[0].counts)
        np.testing.assert_array_equal(c.counts_selection, certs[0].counts_selection)
        assert c.radii == certs[0].radii


def test_sample_counts_chunk_boundary_batches_agree():
    # batch sizes that cut the 64-sample noise chunks everywhere vs one batch: same counts
    clf = quantile_classifier([0.0])
    counts = {b: sample_counts(clf, np.zeros(1), gaussian(1.0, 1, clamp=False), 257,
                               num_classes=2, rng=5, batch_size=b).tolist()
              for b in (1, 63, 64, 65, 128, 257, 1000)}
    assert len({tuple(v) for v in counts.values()}) == 1


# --------------------------------------------------------------------------- Bernoulli
def exact_worst(P, Q, p_a, p_b):
    """min Σφ Q s.t. Σφ P >= p_a and max Σφ Q s.t. Σφ P <= p_b over φ ∈ [0, 1]^patterns, in
    exact rational arithmetic. Each is a linear programme with one constraint (a fractional
    knapsack), solved exactly by taking patterns in order of P/Q (Dantzig 1957): decreasing for
    the min (Q = 0 first, P = 0 never), increasing for the max (P = 0 first, Q = 0 never
    needed). Patterns, not the code's grouped likelihood-ratio atoms; no float rounding."""

    def fill(order, target, need_p):
        got_p, got_q = Fraction(0), Fraction(0)
        for j in order:
            if need_p and got_p >= target:
                break
            room = target - got_p
            if P[j] == 0 or P[j] <= room:
                got_p += P[j]
                got_q += Q[j]
            else:
                frac = room / P[j]
                got_p += frac * P[j]
                got_q += frac * Q[j]
                break
        return got_q

    idx = range(len(P))
    inf = (1, Fraction(0))
    key = [inf if Q[j] == 0 else (0, P[j] / Q[j]) for j in idx]
    dec = sorted((j for j in idx if P[j] > 0), key=lambda j: key[j], reverse=True)
    lo = fill(dec, Fraction(p_a), True) if p_a > 0 else Fraction(0)
    inc = sorted((j for j in idx if Q[j] > 0), key=lambda j: key[j])
    hi = fill(inc, Fraction(p_b), False)
    return float(lo), float(hi)


def pattern_probs_exact(x, T):
    """Probability of every spike pattern {0,1}^{T·d} (row-major over (t, i)), in rationals
    (the floats' exact binary values)."""
    xr = [Fraction(v) for v in np.tile(np.asarray(x, dtype=float), T)]
    out = []
    for pat in itertools.product([0, 1], repeat=len(xr)):
        pr = Fraction(1)
        for s_, v in zip(pat, xr):
            pr *= v if s_ else 1 - v
        out.append(pr)
    return out


PIXEL = st.sampled_from([0.0, 1.0, 0.5, 0.1, 0.9, 0.37])


@SMALL
@given(data=st.data(), d=st.integers(1, 3), T=st.integers(1, 3),
       p_a=st.one_of(st.sampled_from([0.0, 1.0, 0.5, 0.999]), st.floats(0, 1)),
       b_frac=st.one_of(st.none(), st.sampled_from([0.0, 1.0]), st.floats(0, 1)))
def test_neyman_pearson_against_exact_rationals_on_all_patterns(data, d, T, p_a, b_frac):
    if d * T > 9:
        T = 9 // d
    x = data.draw(st.lists(PIXEL, min_size=d, max_size=d))
    xp = data.draw(st.lists(PIXEL, min_size=d, max_size=d))
    p_b = None if b_frac is None else b_frac * (1 - p_a)
    eff_b = 1 - p_a if p_b is None else p_b
    P, Q = pattern_probs_exact(x, T), pattern_probs_exact(xp, T)
    lo, hi = exact_worst(P, Q, p_a, eff_b)
    res = neyman_pearson_check(x, xp, n_steps=T, p_a_lower=p_a, p_b_upper=p_b)
    assert res.q_a_lower == pytest.approx(lo, abs=ATOL_NP)
    assert res.q_b_upper == pytest.approx(min(1.0, hi), abs=ATOL_NP)
    if abs(lo - hi) > 1e-9:
        assert res.certified == (lo > hi)


@SMALL
@given(data=st.data(), d=st.integers(1, 3), T=st.integers(1, 3),
       p_a=st.one_of(st.sampled_from([1.0, 0.999999, 0.9]), st.floats(0.55, 1.0)))
def test_radii_sound_against_neyman_pearson_at_ball_vertices(data, d, T, p_a):
    # p_B = 1 − p_A (two effective classes): NP's q_b_upper = 1 − q_a_lower, so NP decides
    # exactly whether some base classifier flips at x'. Every x' in the certified L∞ ball
    # (its vertices: each pixel at lo_i or hi_i), the L1 ball (one pixel moved by r) and the
    # L0 ball (k pixels set to 0 or 1) must be certified by NP.
    x = np.array(data.draw(st.lists(PIXEL, min_size=d, max_size=d)))
    r = certified_radii(x, p_a, n_steps=T)
    cands = []
    if r.linf > 0:
        lo, hi = np.maximum(0, x - r.linf), np.minimum(1, x + r.linf)
        for choice in itertools.product([0, 1], repeat=d):
            cands.append(np.where(np.array(choice) == 1, hi, lo))
    if r.l1 > 0:
        for i in range(d):
            for s in (-1, 1):
                xp = x.copy()
                xp[i] = np.clip(x[i] + s * r.l1, 0, 1)
                cands.append(xp)
    if r.l0 > 0:
        for idx in itertools.combinations(range(d), r.l0):
            for vals in itertools.product([0.0, 1.0], repeat=r.l0):
                xp = x.copy()
                xp[list(idx)] = vals
                cands.append(xp)
    for xp in cands:
        res = neyman_pearson_check(x, xp, n_steps=T, p_a_lower=p_a)
        assert res.q_a_lower >= 0.5 - 1e-12, (x.tolist(), xp.tolist(), r)
        if not np.array_equal(xp, x):
            assert res.q_a_lower > res.q_b_upper - 1e-12, (x.tolist(), xp.tolist(), r)


@SMALL
@given(data=st.data(), d=st.integers(1, 4), T=st.integers(1, 4),
       ps=st.lists(st.floats(0.5, 1.0), min_size=2, max_size=2))
def test_bernoulli_radii_monotone_in_p_a_and_in_t(data, d, T, ps):
    x = np.array(data.draw(st.lists(PIXEL, min_size=d, max_size=d)))
    p1, p2 = sorted(ps)
    orders = [0.1, 0.5, 0.9, 1.0, 2.0]
    r1 = certified_radii(x, p1, n_steps=T, orders=orders)
    r2 = certified_radii(x, p2, n_steps=T, orders=orders)
    r3 = certified_radii(x, p2, n_steps=T + 1, orders=orders)
    for nm in ("linf", "l1", "l0"):
        assert r1.radius(nm) <= r2.radius(nm)
        assert r3.radius(nm) <= r2.radius(nm)
    if p1 == 0.5:
        assert (r1.linf, r1.l1, r1.l0) == (0.0, 0.0, 0)
    # a pixel at 0 or 1 can be flipped to the other end: disjoint supports, L0 radius 0
    if np.any((x == 0) | (x == 1)):
        assert r2.l0 == 0


def l1_vertices(x, r):
    """Vertices of the L1 ball of radius r around x inside [0, 1]^d: in each orthant, some
    pixels pushed fully to their edge (cost c_i = distance to it), with total cost <= r, and
    the budget left spent on one more pixel (clipped at its edge)."""
    d = len(x)
    out = []
    for dirs in itertools.product([-1, 1], repeat=d):
        edge = np.where(np.array(dirs) == 1, 1.0, 0.0)
        cost = np.abs(edge - x)
        for full in itertools.product([0, 1], repeat=d):
            full = np.array(full, dtype=bool)
            spent = cost[full].sum()
            if spent > r:
                continue
            xp = np.where(full, edge, x)
            out.append(xp.copy())
            for j in np.flatnonzero(~full):
                xq = xp.copy()
                xq[j] = np.clip(x[j] + dirs[j] * (r - spent), 0.0, 1.0)
                out.append(xq)
    return out


@SMALL
@given(data=st.data(), d=st.integers(1, 3), T=st.integers(1, 3),
       p_a=st.one_of(st.sampled_from([1.0, 0.999999, 0.99]), st.floats(0.55, 1.0)),
       seed=st.integers(0, 2**32 - 1))
def test_radii_sound_against_neyman_pearson_at_l1_vertices_and_random_points(data, d, T, p_a,
                                                                            seed):
    # as above with several pixels moved at once: every L1 vertex (the L1 bound's cheap-item
    # knapsack case) and random points of the L∞ and L1 balls must be certified by NP
    x = np.array(data.draw(st.lists(PIXEL, min_size=d, max_size=d)))
    r = certified_radii(x, p_a, n_steps=T)
    rng = np.random.default_rng(seed)
    cands = l1_vertices(x, r.l1) if r.l1 > 0 else []
    if r.linf > 0:
        cands += list(np.clip(x + rng.uniform(-r.linf, r.linf, size=(5, d)), 0, 1))
    if r.l1 > 0:
        u = rng.standard_exponential((5, d + 1))  # uniform on the L1 sphere's face, then sign
        cands += list(np.clip(x + r.l1 * (u[:, :d] / u.sum(axis=1, keepdims=True))
                              * rng.choice([-1, 1], size=(5, d)), 0, 1))
    for xp in cands:
        if np.array_equal(xp, x):
            continue
        res = neyman_pearson_check(x, xp, n_steps=T, p_a_lower=p_a)
        assert res.q_a_lower > res.q_b_upper - 1e-12, (x.tolist(), xp.tolist(), r)


# --------------------------------------------------------------------------- runner-up bound
# certify_poisson(use_runner_up=True) certifies from p_B < 1 - p_A. Pixels: the edges 0 and 1,
# fixed interior values and any float. p_A stays 1e-6 below 1: neyman_pearson_check's q_a_lower
# sums P-masses in float64 up to p_A and cannot resolve p_A within the cumsum's rounding of 1
# (see test_bernoulli_radii_from_a_huge_all_agreeing_sample_exclude_the_box_corner).
# No subnormal pixels: the L1 knapsack divides by the distance to the box edge and overflows
# (a RuntimeWarning, an error under filterwarnings = error) for x_i = 5e-324 -- reported, not
# a soundness question.
RUNNER_UP_IMAGE = st.lists(st.one_of(PIXEL, st.floats(0.0, 1.0, allow_subnormal=False)),
                          min_size=1, max_size=3)
RUNNER_UP_P_A = st.one_of(st.sampled_from([0.999999, 0.99, 0.9, 0.6, 0.45, 0.35]),
                          st.floats(0.2, 0.999999))
# p_B as a fraction of 1 - p_A (strictly below it), from 0 and "much smaller" to nearly all
RUNNER_UP_B_FRAC = st.one_of(st.sampled_from([0.0, 1e-9, 1e-3, 0.5, 0.999]),
                             st.floats(0.0, 0.999))


def l0_points(x, k):
    """Images with ``k`` pixels of ``x`` changed: each to 0 or 1 (the extreme points) or 1/2."""
    out = []
    for idx in itertools.combinations(range(len(x)), k):
        for vals in itertools.product([0.0, 0.5, 1.0], repeat=k):
            xp = x.copy()
            xp[list(idx)] = vals
            out.append(xp)
    return out


@settings(max_examples=example_count(40))
@given(x=RUNNER_UP_IMAGE, T=st.integers(1, 3), p_a=RUNNER_UP_P_A, b_frac=RUNNER_UP_B_FRAC,
       seed=st.integers(0, 2**32 - 1))
# certified L0 radii of 1 and 2 of 3 pixels (the drawn examples rarely certify any)
@example(x=[0.5, 0.37, 0.9], T=2, p_a=0.999, b_frac=1e-3, seed=0)
@example(x=[0.5, 0.37, 0.9], T=2, p_a=0.999, b_frac=0.5, seed=1)
def test_radii_with_runner_up_bound_sound_against_neyman_pearson(x, T, p_a, b_frac, seed):
    # Every x' in each certified ball must be certified by NP with the same (p_A, p_B). NP is
    # exact for the question the certificate answers (module docstring, step 2: can a class
    # C with P_x(C) <= p_B overtake A, the other classes lumped and free): its two optima are
    # one classifier, A on the highest-P/Q atoms and B on the lowest (disjoint, as
    # p_A + p_B <= 1), the rest to a third class. So a failure here is a real counterexample.
    # The Rényi condition T Σ δ_α(x'_i, x_i) < β_α is tightest where the divergence is
    # largest; δ_α(·, x_i) grows away from x_i (step 4), so at the L∞ box vertices (each pixel
    # at lo_i or hi_i), the L1 vertices (pixels pushed to an edge plus one partial move) and
    # the L0 points with pixels at 0 or 1. NP's margin is not proven extreme there, so random
    # points of each ball (and L0 values 1/2) are checked too.
    x = np.array(x)
    d = x.size
    p_b = b_frac * (1.0 - p_a)
    r = certified_radii(x, p_a, p_b, n_steps=T)
    assert r.p_b_upper == p_b < 1.0 - p_a
    if p_a <= p_b:  # abstain: nothing is certified
        assert (r.linf, r.l1, r.l0) == (0.0, 0.0, 0)
        return
    rng = np.random.default_rng(seed)
    cands = []
    if r.linf > 0:
        lo, hi = np.maximum(0, x - r.linf), np.minimum(1, x + r.linf)
        cands += [np.where(np.array(c) == 1, hi, lo) for c in itertools.product([0, 1], repeat=d)]
        cands += list(rng.uniform(lo, hi, size=(5, d)))
    if r.l1 > 0:
        cands += l1_vertices(x, r.l1)
        u = rng.standard_exponential((5, d + 1))  # inside the L1 ball, random signs
        cands += list(np.clip(x + r.l1 * (u[:, :d] / u.sum(axis=1, keepdims=True))
                              * rng.choice([-1, 1], size=(5, d)), 0, 1))
    if r.l0 > 0:
        cands += l0_points(x, r.l0)
    for xp in cands:
        res = neyman_pearson_check(x, xp, n_steps=T, p_a_lower=p_a, p_b_upper=p_b)
        assert res.q_a_lower > res.q_b_upper - ATOL_NP, (x.tolist(), xp.tolist(), p_a, p_b, r)


@settings(max_examples=example_count(40))
@given(x=RUNNER_UP_IMAGE, T=st.integers(1, 3), p_a=RUNNER_UP_P_A,
       fracs=st.lists(RUNNER_UP_B_FRAC, min_size=2, max_size=2))
@example(x=[0.5, 0.37, 0.9], T=2, p_a=0.999, fracs=[1e-3, 0.5])  # L0: 2, 1, 1 pixels
# a random run: β_0.001(p_A, 0) came out 0.9 ulp low and β_0.001(p_A, 4.7e-285) 0.5 ulp high,
# one step of the bisection apart: L∞ 0.29289297366359124 < 0.29289297366359146
@example(x=[0.0], T=2, p_a=0.999999, fracs=[0.0, 4.6581721826022324e-279])
def test_radii_never_shrink_with_a_smaller_runner_up_bound(x, T, p_a, fracs):
    # β_α(p_A, p_B) decreases in p_B (module docstring, step 2) and the worst cases do not
    # depend on it, so every radius is nonincreasing in p_B, down from p_B = 1 - p_A (the
    # default, Cohen et al.'s two-class bound). In floating point each β is within
    # RTOL_RENYI_BOUND = r of its value, so the larger p_B's β lowered by 2r is at most the
    # smaller's; and each radius is nondecreasing in the computed β exactly (the bisection's
    # decisions, the max over orders and the L0 count all are). So the radii of the larger
    # p_B under a rounding guard raised by 2r must not exceed those of the smaller p_B.
    x = np.array(x)
    small, large = sorted(f * (1.0 - p_a) for f in fracs)
    p_bs = (small, large, 1.0 - p_a)
    radii = [certified_radii(x, p_a, p_b, n_steps=T) for p_b in p_bs]
    guard = bernoulli._ROUNDING_GUARD + 2.0 * RTOL_RENYI_BOUND
    with mock.patch.object(bernoulli, "_ROUNDING_GUARD", guard):
        lowered = [certified_radii(x, p_a, p_b, n_steps=T) for p_b in p_bs]
    for nm in ("linf", "l1", "l0"):
        got = [rr.radius(nm) for rr in radii]
        low = [rr.radius(nm) for rr in lowered]
        assert got[0] >= low[1] and got[1] >= low[2], (nm, x.tolist(), p_a, p_bs, got, low)
        assert all(a >= b for a, b in zip(got, low)), (nm, got, low)  # a larger guard: smaller


def test_bernoulli_radii_from_a_huge_all_agreeing_sample_exclude_the_box_corner():
    # n = 10**17 samples all of class A, alpha = 0.4999: the true bound is p = alpha**(1/n),
    # 1 - p = -expm1(log(alpha)/n) = 6.9e-18, which float64 rounds to p = 1. x = (1/2,), T = 60:
    # the classifier "B iff the pixel never spikes" has P_x(A) = 1 - 2^-60 >= p (consistent
    # with the data) and at x' = 0 says B with probability 1. So no sound certificate reaches
    # x' = 0; with p rounded to 1, every pattern has P_x > 0, beta is infinite for alpha >= 1,
    # and the radii covered the whole box (L∞ 1, L1 1/2, L0 1).
    n, alpha, T = 10**17, 0.4999, 60
    assert 2.0**-60 < -math.expm1(math.log(alpha) / n)
    p_a = lower_confidence_bound(n, n, alpha)
    assert p_a < 1.0
    r = certified_radii([0.5], p_a, n_steps=T)
    assert 0.0 < r.linf < 0.5 and 0.0 < r.l1 < 0.5 and r.l0 == 0
    # sound: with p_B = 1 - p_A, q_a_lower = 1 - q_b_upper (A takes what the other classes
    # cannot), so certified <=> q_b_upper < 1/2. Not res.certified: q_a_lower's greedy sums
    # P-masses up to p_A = 1 - 2^-53, below the rounding of that float cumsum, and comes out
    # wrong here (0.248 at x' = 1/2 - r.linf, against the exact 1 - 0.280 = 0.720 from rationals)
    for xp in (0.5 - r.linf, 0.5 + r.linf, 0.5 - r.l1, 0.5 + r.l1):
        assert neyman_pearson_check([0.5], [xp], n_steps=T, p_a_lower=p_a).q_b_upper < 0.5, xp
    # the runner-up bound of certify_poisson for a class never seen: > 0, so p_B = 0 (which
    # for alpha >= 1 makes beta = -log(1 - p_A) and ignores the runner-up) is never claimed
    assert 1.0 - lower_confidence_bound(n, n, alpha) > 0.0


@SMALL
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30), K=st.integers(2, 8),
       x=st.lists(st.sampled_from([0.0, 1.0, 0.5, 0.2]), min_size=1, max_size=3),
       use_runner_up=st.booleans(), alpha=st.sampled_from([1e-9, 0.01, 0.4999]))
def test_certify_poisson_bounds_follow_the_counts(seed, n, K, x, use_runner_up, alpha):
    # Clopper–Pearson at the documented levels, recomputed from the returned counts; abstain
    # exactly when p_A <= p_B; n tiny and pixels at 0 / 1
    def classify(spikes):
        return (spikes.sum(axis=(0, 2)).astype(np.int64) * 7 + 3) % K

    cert = certify_poisson(classify, np.array(x), n_steps=2, n0=2, n=n, alpha=alpha,
                           num_classes=K, rng=seed, use_runner_up=use_runner_up,
                           orders=[0.5, 1.0])
    c = cert.counts
    top = cert.counts_selection.max()
    c_a = int(np.flatnonzero(cert.counts_selection == top)[0])
    if use_runner_up:
        p_a = lower_confidence_bound(int(c[c_a]), n, alpha / 2)
        a_o = alpha / (2 * (K - 1))
        p_b = max(1 - lower_confidence_bound(n - int(c[j]), n, a_o) for j in range(K) if j != c_a)
        p_b = min(p_b, 1 - p_a)
    else:
        p_a = lower_confidence_bound(int(c[c_a]), n, alpha)
        p_b = 1 - p_a
    assert (cert.p_a_lower, cert.p_b_upper) == (p_a, p_b)
    assert cert.abstained == (p_a <= p_b)
    if cert.abstained:
        assert (cert.linf, cert.l1, cert.l0) == (0.0, 0.0, 0)
    else:
        assert cert.prediction == c_a
