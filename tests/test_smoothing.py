"""Tests of certify.smoothing: PREDICT / CERTIFY (Cohen et al. 2019) with Gaussian, RSC-I and
RSC-II noise (RSC Eq. 7-10).

Expected numbers come from hand derivations written next to them, or from scipy (1.17) used as
an independent implementation of the Clopper-Pearson bound and the binomial test.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference.helpers import ATOL_BRENTQ, NOISE_FACTORIES, quantile_classifier
from scipy.stats import beta as beta_dist
from scipy.integrate import quad
from scipy.stats import binomtest, norm

from certify.smoothing import (
    ABSTAIN,
    NOISE_CHUNK,
    NoiseModel,
    certified_radius,
    certify,
    gaussian,
    lower_confidence_bound,
    predict,
    rsc_fixed,
    rsc_fresh,
    sample_counts,
)
from evsnn.encoders import poisson

# statsmodels' proportion_confint and scipy's binomtest(...).proportion_ci both evaluate the
# same beta quantile through scipy.special; observed differences are ~1e-14 relative (last bits
# of the inverse incomplete beta). Not in conftest.py: this module's owner may not edit it.
RTOL_CP = 1e-10
# Identities between two closed forms of the same number (Φ⁻¹(Φ(z)) = z): float64 round-off of
# norm.cdf / norm.ppf, which for |z| <= 5 stay well inside 1e-9 relative.
RTOL_CLOSED_FORM = 1e-9


# --------------------------------------------------------------------------- synthetic classifiers
def constant(label):
    def classify(seq):
        return np.full(seq.shape[1], label, dtype=np.int64)

    return classify


def linear_sign(w, b, readout="mean"):
    """Binary classifier 1[w · r(seq) + b > 0]; r = mean over time, or the first step only."""

    def classify(seq):
        r = seq.mean(axis=0) if readout == "mean" else seq[0]
        return (r @ w + b > 0).astype(np.int64)

    return classify


class Recorder:
    """Wraps a classifier and keeps every input it sees."""

    def __init__(self, inner):
        self.inner = inner
        self.seen = []

    def __call__(self, seq):
        self.seen.append(np.array(seq))
        return self.inner(seq)


# --------------------------------------------------------------------------- Clopper-Pearson
@given(
    n=st.integers(1, 2000),
    frac=st.floats(0.0, 1.0),
    alpha=st.floats(1e-6, 0.49),
)
def test_lower_bound_matches_scipy(n, frac, alpha):
    count = int(round(frac * n))
    got = lower_confidence_bound(count, n, alpha)
    # scipy: the one-sided exact interval at confidence 1 - alpha, found by root finding on the
    # binomial tail (brentq, absolute xtol 2e-12)
    ci = binomtest(count, n, alternative="greater").proportion_ci(
        confidence_level=1 - alpha, method="exact"
    )
    assert got == pytest.approx(ci.low, rel=RTOL_CP, abs=ATOL_BRENTQ)
    # and the defining beta quantile, Beta(count, n - count + 1) at alpha (0 for count = 0)
    expected = 0.0 if count == 0 else beta_dist.ppf(alpha, count, n - count + 1)
    assert got == pytest.approx(expected, rel=RTOL_CP, abs=1e-300)


def test_lower_bound_hand_values():
    # count = n: P(Beta(n, 1) <= p) = p^n = alpha, so p = alpha^(1/n)
    assert lower_confidence_bound(100, 100, 0.001) == pytest.approx(0.001 ** (1 / 100), rel=1e-12)
    # count = 0: the bound is 0
    assert lower_confidence_bound(0, 50, 0.05) == 0.0
    # count = 1, n = 1: Beta(1, 1) is uniform, the alpha quantile is alpha
    assert lower_confidence_bound(1, 1, 0.2) == pytest.approx(0.2, rel=1e-12)


# -log(0.4999) / 2**-54: from this n on alpha**(1/n) = exp(log(alpha)/n) is within half an ulp
# of 1 (the ulp below 1 is 2**-53) and its float64 value is 1.0 (found by bisection on n with
# statsmodels 0.14 / scipy 1.17; it agrees with the closed form to the last digit)
N_ROUNDS_TO_ONE = 12_490_232_776_368_630


def test_lower_bound_stays_below_one_for_huge_n():
    # count = n: the true bound is alpha**(1/n), and 1 - bound = -expm1(log(alpha)/n) exactly
    # enough (no cancellation); 10**17 is the first power of ten at which the float quantile
    # rounded to 1.0 for alpha = 0.4999 (gap 6.9e-18 < 2**-54; at 10**16 it is 6.9e-17)
    alpha = 0.4999
    below_one = 1.0 - 2.0**-53  # numpy.nextafter(1.0, 0.0)
    noise = gaussian(1.0, 1)
    ns = [10**15, 10**16, N_ROUNDS_TO_ONE - 1, N_ROUNDS_TO_ONE, 10**17, 10**18, 10**30]
    bounds = [lower_confidence_bound(n, n, alpha) for n in ns]
    radii = [certified_radius(p, noise) for p in bounds]
    for n, p, r in zip(ns, bounds, radii):
        gap = -math.expm1(math.log(alpha) / n)
        assert p < 1.0 and math.isfinite(r), n
        if gap < 2.0**-54:  # the quantile rounds to 1: clamped, strictly below the true bound
            assert p == below_one and 1.0 - p > gap, n
        else:  # the float quantile, within an ulp of the true bound
            assert abs((1.0 - p) - gap) <= 2.0**-53, n
    assert -math.expm1(math.log(alpha) / 10**16) > 2.0**-54 > -math.expm1(math.log(alpha) / 10**17)
    # monotone in n through the point where the quantile reaches 1, and finite: Φ⁻¹(1 - 2^-53)
    assert np.all(np.diff(bounds) >= 0) and np.all(np.diff(radii) >= 0)
    assert radii[-1] == pytest.approx(norm.isf(2.0**-53), rel=RTOL_CLOSED_FORM)
    # count < n rounds too (Beta(n - 1, 2) quantile, 1 - p ~ 1.7/n at alpha = 0.4999)
    assert lower_confidence_bound(10**18 - 1, 10**18, alpha) == below_one
    # the runner-up's upper bound 1 - lower(n - count) in certify_poisson: a class never seen
    # in 10**17 samples is bounded by 2**-53 > its true bound 6.9e-18, never by 0
    upper = 1.0 - lower_confidence_bound(10**17, 10**17, alpha)
    assert upper == 2.0**-53 > -math.expm1(math.log(alpha) / 10**17)


@given(
    n=st.integers(1, 500),
    data=st.data(),
    alpha=st.floats(1e-6, 0.49),
)
def test_lower_bound_monotone_in_count(n, data, alpha):
    c1 = data.draw(st.integers(0, n))
    c2 = data.draw(st.integers(c1, n))
    assert lower_confidence_bound(c1, n, alpha) <= lower_confidence_bound(c2, n, alpha)


@given(
    n=st.integers(1, 500),
    data=st.data(),
    a1=st.floats(1e-6, 0.49),
    a2=st.floats(1e-6, 0.49),
)
def test_radius_non_decreasing_in_alpha(n, data, a1, a2):
    # A larger failure probability alpha asks for less confidence: the lower bound, and with it
    # the radius, can only grow. (Equivalently the radius decreases as the confidence 1 - alpha
    # rises.)
    a_lo, a_hi = min(a1, a2), max(a1, a2)
    count = data.draw(st.integers(0, n))
    noise = gaussian(0.5, 1)
    lo, hi = lower_confidence_bound(count, n, a_lo), lower_confidence_bound(count, n, a_hi)
    assert lo <= hi
    assert certified_radius(lo, noise) <= certified_radius(hi, noise)


@given(
    p1=st.floats(0.0, 1.0),
    p2=st.floats(0.0, 1.0),
    sigma=st.floats(0.01, 2.0),
    T=st.integers(1, 16),
    name=st.sampled_from(sorted(NOISE_FACTORIES)),
)
def test_radius_non_decreasing_in_p_and_abstains_below_half(p1, p2, sigma, T, name):
    noise = NOISE_FACTORIES[name](sigma, T)
    lo, hi = min(p1, p2), max(p1, p2)
    assert certified_radius(lo, noise) <= certified_radius(hi, noise)
    if hi <= 0.5:
        assert certified_radius(hi, noise) == 0.0
    elif hi < 1.0:
        assert certified_radius(hi, noise) > 0.0


@given(p=st.floats(0.5001, 0.999999), sigma=st.floats(0.01, 2.0), T=st.integers(1, 16))
def test_radius_formulas(p, sigma, T):
    # Cohen Theorem 1: σ Φ⁻¹(p) for Gaussian and RSC-I; RSC-II divides by √T (module docstring)
    z = norm.ppf(p)
    assert certified_radius(p, gaussian(sigma, T)) == pytest.approx(sigma * z, rel=1e-12)
    assert certified_radius(p, rsc_fixed(sigma, T)) == pytest.approx(sigma * z, rel=1e-12)
    assert certified_radius(p, rsc_fresh(sigma, T)) == pytest.approx(
        sigma * z / math.sqrt(T), rel=1e-12
    )


# --------------------------------------------------------------------------- noise models
def test_rsc_fixed_holds_one_clamped_draw():
    rec = Recorder(constant(0))
    x = np.array([0.0, 0.5, 1.0, 0.2])
    sample_counts(rec, x, rsc_fixed(0.7, 5), 40, num_classes=2, rng=3)
    seq = rec.seen[0]
    assert seq.shape == (5, 40, 4) and seq.dtype == np.float64
    assert np.array_equal(seq, np.broadcast_to(seq[0], seq.shape))  # held for all T steps
    assert seq.min() >= 0.0 and seq.max() <= 1.0  # RSC Eq. 10
    # σ = 0.7 on x = 0 and x = 1: about half the draws hit each bound
    assert np.any(seq[0, :, 0] == 0.0) and np.any(seq[0, :, 2] == 1.0)


def test_rsc_fresh_draws_independent_steps():
    M, T, sigma = 20_000, 3, 0.4
    x = np.array([0.3, -1.0])
    rec = Recorder(constant(0))
    sample_counts(rec, x, rsc_fresh(sigma, T, clamp=False), M, num_classes=2, rng=11,
                  batch_size=M)
    eps = (rec.seen[0] - x) / sigma  # [T, M, N], should be i.i.d. N(0, 1)
    se = 1 / math.sqrt(M)
    # 5 standard errors per statistic: each fails with probability < 1e-6 under the model
    assert np.all(np.abs(eps.mean(axis=1)) < 5 * se)
    assert np.all(np.abs(eps.var(axis=1) - 1) < 5 * math.sqrt(2) * se)
    for t in range(1, T):
        corr = np.mean(eps[0] * eps[t], axis=0)
        assert np.all(np.abs(corr) < 5 * se)


def test_gaussian_passes_clamped_noisy_image_to_encoder():
    received = []

    def encode(z):
        received.append(z.copy())
        return np.stack([z, 1.0 - z])  # T = 2, N' = N

    rec = Recorder(constant(1))
    x = np.array([0.0, 1.0, 0.5])
    sample_counts(rec, x, gaussian(0.5, 2, encode=encode), 30, num_classes=2, rng=5)
    z = received[0]
    assert z.shape == (30, 3) and z.min() >= 0.0 and z.max() <= 1.0
    assert np.array_equal(rec.seen[0], np.stack([z, 1.0 - z]))
    # default encoder: current coding, the noisy image repeated over T
    rec2 = Recorder(constant(1))
    sample_counts(rec2, x, gaussian(0.5, 4), 30, num_classes=2, rng=5)
    assert np.array_equal(rec2.seen[0], np.broadcast_to(z, (4, 30, 3)))


def test_unclamped_noise_scale():
    rec = Recorder(constant(0))
    sample_counts(rec, np.array([2.0]), gaussian(3.0, 1, clamp=False), 10_000, num_classes=2,
                  rng=2, batch_size=10_000)
    eps = (rec.seen[0][0, :, 0] - 2.0) / 3.0
    # sample std of 10^4 N(0,1) draws: SE of the variance is sqrt(2/10^4) = 0.014; 5 SE
    assert abs(eps.var() - 1.0) < 5 * 0.0142
    # clamping z to [0, 1] would confine eps to [-2/3, -1/3]; 10^4 draws reach below -2
    assert eps.min() < -2.0 and eps.max() > 2.0


@pytest.mark.parametrize("name", sorted(NOISE_FACTORIES))
def test_results_independent_of_batch_size(name):
    noise = NOISE_FACTORIES[name](0.3, 3)
    x = np.array([0.4, 0.6, 0.5])
    clf = linear_sign(np.array([1.0, -1.0, 0.3]), -0.12)  # w·x + b = 0.03: p_A near 1/2
    n = 2 * NOISE_CHUNK + 40  # crosses two stream boundaries
    certs = [
        certify(clf, x, noise, n0=NOISE_CHUNK + 3, n=n, alpha=0.01, num_classes=2, rng=42,
                batch_size=bs)
        for bs in (1, 7, NOISE_CHUNK, 10_000)
    ]
    for c in certs[1:]:
        assert np.array_equal(c.counts, certs[0].counts)
        assert np.array_equal(c.counts_selection, certs[0].counts_selection)
        assert c.p_a_lower == certs[0].p_a_lower and c.radius == certs[0].radius
    # not a degenerate classifier: both classes occur
    assert np.all(certs[0].counts > 0)


def test_seeds_reproducible_and_distinct():
    clf = linear_sign(np.array([1.0]), -0.5)
    noise = gaussian(0.5, 2)
    x = np.array([0.5])  # p = 1/2 exactly: counts vary with the seed
    a = sample_counts(clf, x, noise, 500, num_classes=2, rng=1)
    b = sample_counts(clf, x, noise, 500, num_classes=2, rng=1)
    c = sample_counts(clf, x, noise, 500, num_classes=2, rng=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # a SeedSequence passed twice is not consumed by the first call
    ss = np.random.SeedSequence(7)
    d = sample_counts(clf, x, noise, 500, num_classes=2, rng=ss)
    e = sample_counts(clf, x, noise, 500, num_classes=2, rng=ss)
    assert np.array_equal(d, e)
    assert np.array_equal(d, sample_counts(clf, x, noise, 500, num_classes=2, rng=7))
    # a Generator is advanced: two calls draw different noise
    g = np.random.default_rng(3)
    f1 = sample_counts(clf, x, noise, 500, num_classes=2, rng=g)
    f2 = sample_counts(clf, x, noise, 500, num_classes=2, rng=g)
    assert not np.array_equal(f1, f2)


def test_progress_bar_and_without_tqdm(capsys, monkeypatch):
    clf = constant(1)
    x = np.zeros(2)
    a = certify(clf, x, gaussian(0.2, 1), n0=5, n=20, alpha=0.01, num_classes=2, rng=0,
                progress=True)
    assert "certify" in capsys.readouterr().err  # tqdm writes its bar to stderr
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` raise ImportError
    b = certify(clf, x, gaussian(0.2, 1), n0=5, n=20, alpha=0.01, num_classes=2, rng=0,
                progress=True)
    assert capsys.readouterr().err == ""
    assert a.p_a_lower == b.p_a_lower and a.prediction == b.prediction == 1


# --------------------------------------------------------------------------- stochastic encoders
def spikes_total_above(k):
    """Class 1 when the spike raster's total count exceeds k."""

    def classify(seq):
        return (seq.sum(axis=(0, 2)) > k).astype(np.int64)

    return classify


def poisson_noise(sigma, T, **kw):
    return gaussian(sigma, T, encode=functools.partial(poisson, T=T), encode_rng=True, **kw)


def test_stochastic_encoder_streams_by_definition():
    # sample i of a phase: chunk k = i // NOISE_CHUNK; its normals from child(phase, k) and its
    # Poisson spikes from child(phase, k, 0), the whole chunk encoded in one call (the
    # documented layout, written out here independently of _EncodedStream)
    from certify.smoothing import _child

    x, sigma, T = np.array([0.2, 0.5, 0.9]), 0.3, 3
    clf = spikes_total_above(4)
    n0, n = NOISE_CHUNK + 6, 2 * NOISE_CHUNK + 5  # both phases end inside a chunk
    cert = certify(clf, x, poisson_noise(sigma, T), n0=n0, n=n, alpha=0.01, num_classes=2,
                   rng=9, batch_size=50)
    root = np.random.SeedSequence(9)

    def by_definition(phase, n_samples):
        labels = []
        for k in range(-(-n_samples // NOISE_CHUNK)):
            seed = _child(_child(root, phase), k)
            eps = np.random.default_rng(seed).standard_normal((NOISE_CHUNK, 3))
            z = np.clip(x + sigma * eps, 0.0, 1.0)
            labels.append(clf(poisson(z, T, rng=np.random.default_rng(_child(seed, 0)))))
        return np.bincount(np.concatenate(labels)[:n_samples], minlength=2)

    np.testing.assert_array_equal(cert.counts_selection, by_definition(0, n0))
    np.testing.assert_array_equal(cert.counts, by_definition(1, n))
    assert np.all(cert.counts > 0)  # both classes occur: the counts carry information


def test_stochastic_encoder_reproducible_and_independent_of_batch_size():
    x = np.array([0.4, 0.6, 0.5, 0.3])
    noise = poisson_noise(0.2, 4)
    clf = spikes_total_above(7)
    kw = dict(n0=NOISE_CHUNK + 3, n=2 * NOISE_CHUNK + 40, alpha=0.01, num_classes=2)
    certs = [certify(clf, x, noise, rng=42, batch_size=bs, **kw)
             for bs in (1, 7, NOISE_CHUNK, 10_000)]
    for c in certs[1:]:
        np.testing.assert_array_equal(c.counts, certs[0].counts)
        np.testing.assert_array_equal(c.counts_selection, certs[0].counts_selection)
        assert c.p_a_lower == certs[0].p_a_lower and c.radius == certs[0].radius
    assert np.all(certs[0].counts > 0)
    again = certify(clf, x, noise, rng=42, **kw)
    np.testing.assert_array_equal(again.counts, certs[0].counts)
    other = certify(clf, x, noise, rng=43, **kw)
    assert not np.array_equal(other.counts, certs[0].counts)
    # predict draws from the same layout: batch-size independent too
    a = predict(clf, x, noise, n=150, alpha=0.01, num_classes=2, rng=5, batch_size=1)
    b = predict(clf, x, noise, n=150, alpha=0.01, num_classes=2, rng=5, batch_size=1000)
    np.testing.assert_array_equal(a.counts, b.counts)


def test_stochastic_encoder_sees_the_deterministic_path_noise():
    # an encoder that ignores its rng gives exactly the deterministic path's counts (same
    # normals per sample); with Poisson, chunks draw from different streams
    def repeat3(z, rng=None):
        return np.repeat(z[None], 3, axis=0)

    x = np.array([0.45, 0.55])
    clf = linear_sign(np.array([1.0, -1.0]), 0.0)
    kw = dict(num_classes=2, rng=4, batch_size=33)
    det = sample_counts(clf, x, gaussian(0.3, 3, encode=repeat3), 200, **kw)
    sto = sample_counts(clf, x, gaussian(0.3, 3, encode=repeat3, encode_rng=True), 200, **kw)
    np.testing.assert_array_equal(det, sto)
    rec = Recorder(constant(0))
    sample_counts(rec, np.full(3, 0.5), poisson_noise(1e-9, 5), 2 * NOISE_CHUNK, num_classes=2,
                  rng=4, batch_size=NOISE_CHUNK)
    # z = 1/2 up to 1e-9 in both chunks: equal spikes would mean a reused stream
    assert not np.array_equal(rec.seen[0], rec.seen[1])


def test_stochastic_encoder_spike_probability_is_the_clamped_noisy_pixel():
    # P(spike of pixel 0 at step 0) = E[clamp(x + σZ, 0, 1)] = ∫_0^1 Φ((x - t)/σ) dt (Poisson
    # coding of the clamped noisy image; scipy quad, abs. error < 1e-13); 20,000 samples, 6
    # binomial SE
    x0, sigma = 0.2, 0.3
    p, _ = quad(lambda t: norm.cdf((x0 - t) / sigma), 0.0, 1.0, epsabs=1e-13)

    def first_spike(seq):
        return (seq[0, :, 0] > 0).astype(np.int64)

    n = 20_000
    counts = sample_counts(first_spike, np.array([x0, 0.7]), poisson_noise(sigma, 2), n,
                           num_classes=2, rng=6, batch_size=5000)
    assert abs(counts[1] / n - p) <= 6 * math.sqrt(p * (1 - p) / n)
    # not vacuous: without the clamp the mean would be x0 = 0.2, ~15 SE below p = 0.24498
    assert abs(p - x0) > 14 * math.sqrt(p * (1 - p) / n)


# --------------------------------------------------------------------------- records
@pytest.mark.parametrize(
    "noise",
    [
        gaussian(0.4, 3),
        gaussian(0.4, 2, clamp=False, encode=lambda z: np.stack([z, z])),
        poisson_noise(0.25, 3),
        rsc_fixed(0.3, 5, clamp=False),
        rsc_fresh(0.5, 4),
    ],
    ids=["gaussian", "gaussian-encode", "gaussian-poisson", "rsc_fixed", "rsc_fresh"],
)
def test_certificate_and_prediction_record_the_noise_model(noise):
    x = np.array([0.3, 0.8])
    cert = certify(constant(1), x, noise, n0=5, n=100, alpha=0.01, num_classes=2, rng=0)
    pred = predict(constant(1), x, noise, n=20, alpha=0.01, num_classes=2, rng=0)
    for rec in (cert, pred):
        assert rec.noise == noise.name and rec.sigma == noise.sigma  # the existing fields
        assert rec.n_steps == noise.n_steps and rec.clamp == noise.clamp
        assert rec.encoder == noise.encoder and rec.encode_rng == noise.encode_rng
        assert rec.noise_parameters == noise.parameters()
    # the record alone gives the radius back (RSC-II's 1/√T needs T)
    scale = 1 / math.sqrt(cert.n_steps) if cert.noise == "rsc_fresh" else 1.0
    assert cert.radius == pytest.approx(cert.sigma * norm.ppf(cert.p_a_lower) * scale, rel=1e-12)


def test_noise_parameters_name_the_encoder():
    assert gaussian(0.5, 2).parameters() == {
        "kind": "gaussian", "sigma": 0.5, "n_steps": 2, "clamp": True, "encoder": None,
        "encode_rng": False, "normals": "numpy",
    }
    assert poisson_noise(0.5, 3).encoder == "functools.partial(evsnn.encoders.poisson, T=3)"
    assert gaussian(0.5, 2, encode=Recorder(None)).encoder.endswith("test_smoothing.Recorder(...)")
    assert rsc_fresh(0.1, 4, clamp=False).parameters()["clamp"] is False


@pytest.mark.parametrize("factory", [gaussian, rsc_fixed, rsc_fresh])
def test_normals_is_a_field_of_the_noise_model_and_of_its_results(factory):
    import certify.smoothing as smoothing

    assert smoothing.NORMALS == ("numpy", "compiled") and "NORMALS" in smoothing.__all__
    # the default is numpy's sampler, the only way of the releases before the field existed
    assert factory(0.4, 3).normals == "numpy"
    assert factory(0.4, 3).parameters()["normals"] == "numpy"
    x = np.array([0.3, 0.8])
    for normals in smoothing.NORMALS:
        noise = factory(0.4, 3, normals=normals)
        assert noise.normals == normals and noise.parameters()["normals"] == normals
        # the same noise otherwise, but not the same model: the values differ
        assert (noise == factory(0.4, 3)) == (normals == "numpy")
        cert = certify(constant(1), x, noise, n0=5, n=100, alpha=0.01, num_classes=2, rng=0)
        pred = predict(constant(1), x, noise, n=20, alpha=0.01, num_classes=2, rng=0)
        for rec in (cert, pred):
            assert rec.normals == normals
            assert rec.noise_parameters == noise.parameters()
            assert rec.noise_parameters["normals"] == normals
    # the field follows encode_rng, as it does in CertificationTable and the files
    names = [f.name for f in dataclasses.fields(NoiseModel)]
    assert names[names.index("encode_rng") + 1] == "normals"
    for record in (smoothing.Certificate, smoothing.Prediction):
        names = [f.name for f in dataclasses.fields(record)]
        assert names[-2:] == ["encode_rng", "normals"]


@pytest.mark.parametrize("factory", [gaussian, rsc_fixed, rsc_fresh])
@pytest.mark.parametrize(
    "value, exc, match",
    [
        (3, TypeError, r"^normals must be a string, one of \['numpy', 'compiled'\]; got int 3; "
                       r"pass normals='numpy' \(numpy's sampler\) or normals='compiled'$"),
        (None, TypeError, r"^normals must be a string, .* got NoneType None; pass normals="),
        (b"numpy", TypeError, r"^normals must be a string, .* got bytes b'numpy'; pass"),
        ("fast", ValueError, r"^normals='fast' is not a way to draw standard normals; pass one "
                             r"of \['numpy', 'compiled'\], e.g. normals='numpy'$"),
        ("NumPy", ValueError, r"^normals='NumPy' is not a way to draw standard normals"),
    ],
)
def test_normals_errors(factory, value, exc, match):
    with pytest.raises(exc, match=match):
        factory(0.5, 2, normals=value)
    with pytest.raises(exc, match=match):
        NoiseModel(factory(0.5, 2).name, 0.5, 2, normals=value)


# --------------------------------------------------------------------------- PREDICT
def test_predict_constant_classifier_hand_p_value():
    # all n = 10 samples vote 2: two-sided binomial p-value of 10/10 at p=1/2 is 2 * 2^-10
    res = predict(constant(2), np.zeros(3), rsc_fresh(0.5, 2), n=10, alpha=0.01, num_classes=4,
                  rng=0)
    assert res.p_value == pytest.approx(2 * 0.5**10, rel=1e-12)
    assert res.prediction == 2 and not res.abstained
    assert res.counts.tolist() == [0, 0, 10, 0]
    # 2^-9 = 0.00195 > alpha = 0.001: abstain
    res = predict(constant(2), np.zeros(3), rsc_fresh(0.5, 2), n=10, alpha=0.001, num_classes=4,
                  rng=0)
    assert res.prediction == ABSTAIN and res.abstained


def test_predict_abstains_on_tie():
    def alternate(seq):
        return np.arange(seq.shape[1]) % 2 + 1  # labels 1, 2, 1, 2, ...

    res = predict(alternate, np.zeros(1), gaussian(0.1, 1), n=100, alpha=0.1, num_classes=3,
                  rng=0, batch_size=100)
    assert res.counts.tolist() == [0, 50, 50]
    assert res.p_value == 1.0 and res.prediction == ABSTAIN


@given(p=st.floats(0.05, 0.95), seed=st.integers(0, 2**32 - 1))
def test_predict_p_value_is_scipy_binomtest(p, seed):
    clf = quantile_classifier([norm.ppf(p)])
    res = predict(clf, np.zeros(1), gaussian(1.0, 1, clamp=False), n=60, alpha=0.05,
                  num_classes=2, rng=seed)
    n_a, n_b = max(res.counts), min(res.counts)
    assert res.p_value == binomtest(int(n_a), int(n_a + n_b), 0.5).pvalue
    assert (res.prediction != ABSTAIN) == (res.p_value <= 0.05)
    if not res.abstained:
        assert res.counts[res.prediction] == n_a


# --------------------------------------------------------------------------- CERTIFY
@pytest.mark.parametrize("name, scale", [("gaussian", 1.0), ("rsc_fixed", 1.0), ("rsc_fresh", 0.5)])
def test_certify_constant_classifier_hand_radius(name, scale):
    # every sample votes 3: p_A_lower = alpha^(1/n) (Beta(n, 1) quantile), radius
    # σ Φ⁻¹(alpha^(1/n)) times 1 (Gaussian, RSC-I) or 1/√T = 1/2 (RSC-II, T = 4)
    cert = certify(constant(3), np.full(6, 0.5), NOISE_FACTORIES[name](0.25, 4), n0=10, n=500,
                   alpha=0.001, num_classes=5, rng=9)
    p = 0.001 ** (1 / 500)
    assert cert.prediction == 3 and cert.p_a_lower == pytest.approx(p, rel=1e-12)
    assert cert.radius == pytest.approx(0.25 * norm.ppf(p) * scale, rel=1e-12)
    assert cert.counts.tolist() == [0, 0, 0, 500, 0]
    assert cert.counts_selection.tolist() == [0, 0, 0, 10, 0]
    assert (cert.n0, cert.n, cert.alpha, cert.sigma, cert.noise) == (10, 500, 0.001, 0.25, name)
    with pytest.raises(ValueError, match="read-only"):
        cert.counts[0] = 1


@given(
    p0=st.floats(0.05, 0.95),
    p1=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 300),
)
def test_certify_abstention_and_consistency(p0, p1, seed, n):
    # three classes with P = (p0, (1 - p0) p1, (1 - p0)(1 - p1))
    cum0 = p0
    cum1 = p0 + (1 - p0) * p1
    clf = quantile_classifier([norm.ppf(cum0), norm.ppf(min(cum1, 1 - 1e-12))])
    cert = certify(clf, np.zeros(1), gaussian(1.0, 1, clamp=False), n0=20, n=n, alpha=0.05,
                   num_classes=3, rng=seed)
    c_hat = int(np.argmax(cert.counts_selection))  # argmax breaks ties to the lower label
    assert cert.p_a_lower == lower_confidence_bound(int(cert.counts[c_hat]), n, 0.05)
    if cert.p_a_lower <= 0.5:
        assert cert.prediction == ABSTAIN and cert.radius == 0.0 and cert.abstained
    else:
        assert cert.prediction == c_hat and cert.radius > 0.0
        assert cert.radius == certified_radius(cert.p_a_lower, gaussian(1.0, 1))
    assert cert.counts.sum() == n and cert.counts_selection.sum() == 20


# --------------------------------------------------------------------------- soundness (exact)
# Base classifier f(seq) = 1[w · r(seq) + b > 0] without clamp, with r = mean over time ("mean")
# or the first step ("first").
# * Gaussian / RSC-I: every step holds x + ε, so r = x + ε and P(f = 1 | x) = Φ(s(x) / (σ‖w‖)),
#   s(x) = w·x + b.
# * RSC-II, "mean": r = x + ε̄ with ε̄ ~ N(0, σ²/T I): P(f = 1 | x) = Φ(√T s(x) / (σ‖w‖)).
# * RSC-II, "first": r = x + ε_1: P(f = 1 | x) = Φ(s(x) / (σ‖w‖)).
# In every case P(f = 1 | x') > 1/2 exactly when s(x') > 0, so the smoothed classifier is the
# half-space classifier 1[s(x') > 0] and its exact robust L2 radius at x is the distance to the
# hyperplane, |s(x)| / ‖w‖.
def exact_linear(w, b, x, sigma, T, name, readout):
    s = float(w @ x + b)
    k = math.sqrt(T) if (name == "rsc_fresh" and readout == "mean") else 1.0
    p_true = norm.cdf(k * abs(s) / (sigma * np.linalg.norm(w)))
    return int(s > 0), abs(s) / np.linalg.norm(w), p_true


@given(
    w=st.lists(st.floats(-2, 2), min_size=3, max_size=3).filter(lambda v: np.linalg.norm(v) > 0.1),
    b=st.floats(-1, 1),
    x=st.lists(st.floats(0, 1), min_size=3, max_size=3),
    sigma=st.floats(0.05, 1.0),
    T=st.integers(1, 9),
    name=st.sampled_from(sorted(NOISE_FACTORIES)),
    readout=st.sampled_from(["mean", "first"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_certified_radius_never_exceeds_exact_linear(w, b, x, sigma, T, name, readout, seed):
    w, x = np.array(w), np.array(x)
    label, r_exact, p_true = exact_linear(w, b, x, sigma, T, name, readout)
    noise = NOISE_FACTORIES[name](sigma, T, clamp=False)
    # alpha = 1e-4: each of the 40 examples may fail with probability <= 1e-4 by design
    cert = certify(linear_sign(w, b, readout), x, noise, n0=50, n=2000, alpha=1e-4,
                   num_classes=2, rng=seed)
    if not cert.abstained:
        assert cert.prediction == label
        assert cert.radius <= r_exact * (1 + 1e-12)


@given(
    w=st.lists(st.floats(-2, 2), min_size=2, max_size=2).filter(lambda v: np.linalg.norm(v) > 0.1),
    b=st.floats(-1, 1),
    x=st.lists(st.floats(0, 1), min_size=2, max_size=2),
    sigma=st.floats(0.2, 1.0),
    T=st.integers(1, 9),
    name=st.sampled_from(sorted(NOISE_FACTORIES)),
)
def test_radius_at_true_p_is_exact_for_time_averaging_linear(w, b, x, sigma, T, name):
    # With the true p_A in place of its lower bound the formula reproduces the exact radius for
    # the time-averaging classifier: the radius is tight, and RSC-II's 1/√T is not too small.
    w, x = np.array(w), np.array(x)
    _, r_exact, p_true = exact_linear(w, b, x, sigma, T, name, "mean")
    if not 0.5 < p_true < 1:
        return  # on the hyperplane (radius 0), or Φ saturates
    # Φ⁻¹ at p_true magnifies the rounding of p_true: one ulp moves z by ulp(p)/φ(z). Only where
    # that stays below half the tolerance is the comparison a test of the formula (a random run
    # found z = 5.98, p = 1 - 1.1e-9, where one ulp is a relative 1.7e-9 of z)
    z = norm.ppf(p_true)
    if np.spacing(p_true) / (norm.pdf(z) * z) > RTOL_CLOSED_FORM / 2:
        return
    noise = NOISE_FACTORIES[name](sigma, T)
    assert certified_radius(p_true, noise) == pytest.approx(r_exact, rel=RTOL_CLOSED_FORM)


def test_rsc_fresh_without_sqrt_t_would_be_unsound():
    # The check above has power: the naive radius σ Φ⁻¹(p_A_lower) (no 1/√T) exceeds the exact
    # radius for RSC-II with T = 9 and a time-averaging linear classifier.
    w, b, x, sigma, T = np.array([1.0, 0.0]), -0.4, np.array([0.5, 0.5]), 0.5, 9
    label, r_exact, _ = exact_linear(w, b, x, sigma, T, "rsc_fresh", "mean")  # r_exact = 0.1
    cert = certify(linear_sign(w, b), x, rsc_fresh(sigma, T, clamp=False), n0=50, n=5000,
                   alpha=1e-3, num_classes=2, rng=0)
    assert cert.prediction == label == 1
    assert cert.radius <= r_exact
    naive = sigma * norm.ppf(cert.p_a_lower)
    assert naive == pytest.approx(3 * cert.radius, rel=1e-12) and naive > r_exact


# --------------------------------------------------------------------------- Monte Carlo guarantee
def violations_allowed(k, trials, alpha):
    """True unless a one-sided binomial test rejects 'violation rate <= alpha' at level 1e-3."""
    return binomtest(k, trials, alpha, alternative="greater").pvalue > 1e-3


@pytest.mark.slow
def test_monte_carlo_wrong_certificates_at_most_alpha():
    # Known class probabilities (0.6, 0.25, 0.15) via quantiles of ε ~ N(0, 1) on x = 0.
    probs = np.array([0.6, 0.25, 0.15])
    clf = quantile_classifier(norm.ppf(np.cumsum(probs)[:-1]))
    noise = gaussian(1.0, 1, clamp=False)
    trials, alpha, n = 2000, 0.05, 100
    wrong = naive_wrong = 0
    for seed in range(trials):
        cert = certify(clf, np.zeros(1), noise, n0=5, n=n, alpha=alpha, num_classes=3, rng=seed)
        c_hat = int(np.argmax(cert.counts_selection))
        wrong += cert.p_a_lower > probs[c_hat]
        naive_wrong += cert.counts[c_hat] / n > probs[c_hat]  # point estimate, not a bound
    assert violations_allowed(wrong, trials, alpha), (wrong, trials)
    # power: the same check rejects the point estimate (wrong about half the time)
    assert not violations_allowed(naive_wrong, trials, alpha), (naive_wrong, trials)


@pytest.mark.slow
def test_monte_carlo_rsc_fresh_radius_wrong_at_most_alpha():
    # RSC-II with T = 4 on a time-averaging linear classifier: exact radius |s| / ‖w‖ = 0.05
    # (exact_linear); a certificate is wrong when it names the other class or a larger radius.
    w, b, x, sigma, T = np.array([1.0]), -0.45, np.array([0.5]), 0.5, 4
    label, r_exact, p_true = exact_linear(w, b, x, sigma, T, "rsc_fresh", "mean")
    assert p_true == pytest.approx(norm.cdf(0.2), rel=1e-12)  # √4 · 0.05 / 0.5 = 0.2
    clf, noise = linear_sign(w, b), rsc_fresh(sigma, T, clamp=False)
    trials, alpha = 1500, 0.1
    wrong = naive_wrong = 0
    for seed in range(trials):
        cert = certify(clf, x, noise, n0=5, n=200, alpha=alpha, num_classes=2, rng=seed)
        if cert.abstained:
            continue
        wrong += cert.prediction != label or cert.radius > r_exact
        naive_wrong += cert.prediction != label or sigma * norm.ppf(cert.p_a_lower) > r_exact
    assert violations_allowed(wrong, trials, alpha), (wrong, trials)
    assert not violations_allowed(naive_wrong, trials, alpha), (naive_wrong, trials)


# --------------------------------------------------------------------------- errors
X1 = np.zeros(2)


def _cert(**kw):
    args = dict(classify=constant(0), x=X1, noise=gaussian(0.5, 1), n0=5, n=10, alpha=0.01,
                num_classes=2, rng=0)
    args.update(kw)
    classify, x, noise = args.pop("classify"), args.pop("x"), args.pop("noise")
    return certify(classify, x, noise, **args)


@pytest.mark.parametrize(
    "factory, args, kw, exc, match",
    [
        (gaussian, ("0.5", 1), {}, TypeError, r"sigma must be a real number, got str '0.5'"),
        (gaussian, (0.0, 1), {}, ValueError, r"sigma=0.0 must be finite and > 0.0"),
        (gaussian, (math.nan, 1), {}, ValueError, r"sigma=nan must be finite"),
        (rsc_fixed, (math.inf, 1), {}, ValueError, r"sigma=inf must be finite"),
        (rsc_fresh, (0.5, 2.0), {}, TypeError, r"n_steps must be an integer, got float 2.0"),
        (rsc_fresh, (0.5, True), {}, TypeError, r"n_steps must be an integer, got bool"),
        (rsc_fresh, (0.5, 0), {}, ValueError, r"n_steps=0 must be an integer >= 1"),
        (rsc_fixed, (0.5, 1), {"clamp": 1}, TypeError, r"clamp must be True or False, got 1"),
        (gaussian, (0.5, 1), {"encode": 3}, TypeError, r"encode must be callable, got int 3"),
    ],
)
def test_noise_model_errors(factory, args, kw, exc, match):
    with pytest.raises(exc, match=match):
        factory(*args, **kw)


def test_noise_model_record_errors():
    with pytest.raises(TypeError, match=r"name must be a string, one of \['gaussian'"):
        NoiseModel(3, 0.5, 1)
    with pytest.raises(ValueError, match=r"name='poisson' is not a noise model; use one of"):
        NoiseModel("poisson", 0.5, 1)
    with pytest.raises(ValueError, match=r"encode is only used by the 'gaussian' noise model"):
        NoiseModel("rsc_fresh", 0.5, 1, True, lambda z: z)
    with pytest.raises(TypeError, match=r"encode_rng must be True or False, got 'yes'"):
        gaussian(0.5, 1, encode=poisson, encode_rng="yes")
    with pytest.raises(ValueError, match=r"encode_rng=True needs a stochastic encoder, but "
                                         r"encode=None .* pass encode="):
        gaussian(0.5, 1, encode_rng=True)
    # RSC-I takes no encoder: "pass encode=..." would then be refused
    with pytest.raises(ValueError, match=r"encode_rng=True is only used with an encoder of the "
                                         r"'gaussian' noise model, got name='rsc_fixed'"):
        NoiseModel("rsc_fixed", 0.5, 1, True, None, True)


def _flag_calls():
    from certify.bernoulli import certify_poisson
    from certify.distributed import certify_dataset

    kw = dict(num_classes=2, rng=0)
    return {
        "clamp": lambda v: rsc_fixed(0.5, 1, clamp=v),
        "encode_rng": lambda v: gaussian(0.5, 1, encode=poisson, encode_rng=v),
        "progress": lambda v: sample_counts(constant(0), X1, rsc_fixed(0.5, 1), 4, progress=v,
                                            **kw),
        "use_runner_up": lambda v: certify_poisson(constant(0), [0.5], n_steps=1, n0=1, n=1,
                                                   alpha=0.1, use_runner_up=v, **kw),
        "processes": lambda v: certify_dataset(constant(0), np.zeros((1, 2)), [0],
                                               rsc_fixed(0.5, 1), n0=1, n=1, alpha=0.1,
                                               processes=v, **kw),
    }


@pytest.mark.parametrize("name", ["clamp", "encode_rng", "progress", "use_runner_up",
                                  "processes"])
@pytest.mark.parametrize("value", [1, "yes", None])
def test_flags_are_checked_by_evsnns_one_validator(name, value):
    # evsnn._checks.flag_iv: the message ends with the fix
    with pytest.raises(TypeError, match=rf"^{name} must be True or False, got {value!r}; pass "
                                        rf"{name}=True or {name}=False$"):
        _flag_calls()[name](value)


def test_stochastic_encoder_without_rng_keyword_is_refused_up_front():
    # encode_rng=True calls encode(z, rng=generator): checked on construction, not mid-sampling
    def repeat2(z):
        return np.repeat(z[None], 2, axis=0)

    with pytest.raises(TypeError, match=r"encode=.*repeat2 takes no keyword argument 'rng', "
                                        r"but encode_rng=True calls encode\(z, rng=generator\); "
                                        r"give the encoder an rng keyword, or drop encode_rng"):
        gaussian(0.5, 2, encode=repeat2, encode_rng=True)
    with pytest.raises(TypeError, match=r"functools.partial\(.*repeat2\) takes no keyword"):
        NoiseModel("gaussian", 0.5, 2, True, functools.partial(repeat2), True)
    # an rng keyword (also bound by a partial, or through **kwargs) passes; so does a callable
    # whose signature cannot be read (the builtin max): there is nothing to check
    for encode in (functools.partial(poisson, T=2), lambda z, rng=None: repeat2(z),
                   lambda z, **kw: repeat2(z), functools.partial(poisson, T=2, rng=None), max):
        assert gaussian(0.5, 2, encode=encode, encode_rng=True).encode_rng
    assert not gaussian(0.5, 2, encode=repeat2).encode_rng  # deterministic: no rng needed


def test_encoder_output_shape_error():
    noise = gaussian(0.5, 3, encode=lambda z: z[None])  # T = 1, not 3
    with pytest.raises(ValueError, match=r"encode returned shape \(1, 4, 2\); it must return"):
        sample_counts(constant(0), X1, noise, 4, num_classes=2, rng=0)
    # a stochastic encoder is called on whole chunks of NOISE_CHUNK samples
    noise = poisson_noise(0.5, 3)
    noise = gaussian(0.5, 2, encode=noise.encode, encode_rng=True)  # returns T = 3, not 2
    with pytest.raises(ValueError, match=r"encode returned shape \(3, 64, 2\); it must return"):
        sample_counts(constant(0), X1, noise, 4, num_classes=2, rng=0)


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        ({"classify": "f"}, TypeError, r"classify must be callable, got str 'f'"),
        ({"noise": "gaussian"}, TypeError, r"noise must be a NoiseModel .* got str 'gaussian'"),
        ({"x": None}, TypeError, r"x must be a 1-D array of real pixel values, got NoneType"),
        ({"x": "ab"}, TypeError, r"x must be a 1-D array of real pixel values, got str"),
        ({"x": [[0.1], [0.2, 0.3]]}, TypeError, r"x must be a rectangular array"),
        ({"x": np.zeros(2, complex)}, TypeError, r"x must hold real numbers, got dtype complex"),
        ({"x": np.zeros((2, 2))}, ValueError, r"x must be one non-empty flattened .* \(2, 2\)"),
        ({"x": np.zeros(0)}, ValueError, r"x must be one non-empty flattened image .* \(0,\)"),
        ({"x": [0.1, math.nan]}, ValueError, r"x holds NaN or infinite values"),
        ({"n0": 0}, ValueError, r"n0=0 must be an integer >= 1"),
        ({"n": 1.0}, TypeError, r"n must be an integer, got float 1.0"),
        ({"n": 0}, ValueError, r"n=0 must be an integer >= 1"),
        ({"alpha": 0.5}, ValueError, r"alpha=0.5 must be finite and lie in \(0.0, 0.5\)"),
        ({"alpha": 0.0}, ValueError, r"alpha=0.0 must be finite and lie in \(0.0, 0.5\)"),
        ({"alpha": "0.1"}, TypeError, r"alpha must be a real number, got str"),
        ({"num_classes": 1}, ValueError, r"num_classes=1 must be an integer >= 2"),
        ({"batch_size": 0}, ValueError, r"batch_size=0 must be an integer >= 1"),
        ({"progress": "yes"}, TypeError, r"progress must be True or False, got 'yes'"),
        ({"rng": "seed"}, TypeError, r"rng='seed' is not a seed; pass an int"),
        ({"rng": -1}, ValueError, r"rng=-1 is not a valid seed .* non-negative int"),
    ],
)
def test_certify_argument_errors(kw, exc, match):
    with pytest.raises(exc, match=match):
        _cert(**kw)


@pytest.mark.parametrize("name", sorted(NOISE_FACTORIES))
@pytest.mark.parametrize("x, lo, hi", [
    (np.array([0.0, 128.0, 255.0]), "0.0", "255.0"),  # 8-bit pixels, not divided by 255
    (np.array([-1.5, 0.2, 0.9]), "-1.5", "0.9"),  # standardised pixels
    (np.array([0, 2], dtype=np.uint8), "0.0", "2.0"),
])
@pytest.mark.parametrize("entry", ["sample_counts", "predict", "certify"])
def test_clamping_noise_refuses_pixels_outside_unit_box(entry, name, x, lo, hi):
    # was: the noise model clamps x + ε to [0, 1], so a 0..255 image was certified as the
    # clamped image of its noise without a word
    calls = {
        "sample_counts": lambda x, noise: sample_counts(constant(0), x, noise, 5, num_classes=2,
                                                        rng=0),
        "predict": lambda x, noise: predict(constant(0), x, noise, n=5, alpha=0.01,
                                            num_classes=2, rng=0),
        "certify": lambda x, noise: certify(constant(0), x, noise, n0=5, n=5, alpha=0.01,
                                            num_classes=2, rng=0),
    }
    match = (rf"x holds pixels in \[{lo}, {hi}\], but the {name} noise model clamps noisy "
             r"pixels to \[0, 1\] \(clamp=True\); scale x to \[0, 1\], e\.g\. x / 255, or "
             r"use clamp=False$")
    with pytest.raises(ValueError, match=match):
        calls[entry](x, NOISE_FACTORIES[name](0.5, 2))
    # without the clamp any finite real is accepted; with it, the box [0, 1] itself
    unclamped = calls[entry](x, NOISE_FACTORIES[name](0.5, 2, clamp=False))
    boxed = calls[entry](np.array([0.0, 0.5, 1.0]), NOISE_FACTORIES[name](0.5, 2))
    for res in (unclamped, boxed):  # constant(0): every draw is class 0
        counts = res if entry == "sample_counts" else res.counts
        assert counts.tolist() == [5, 0]


def test_predict_and_sample_counts_argument_errors():
    with pytest.raises(ValueError, match=r"n=0 must be an integer >= 1"):
        predict(constant(0), X1, gaussian(0.5, 1), n=0, alpha=0.01, num_classes=2, rng=0)
    with pytest.raises(ValueError, match=r"alpha=0.7 must be finite"):
        predict(constant(0), X1, gaussian(0.5, 1), n=5, alpha=0.7, num_classes=2, rng=0)
    with pytest.raises(ValueError, match=r"n_samples=0 must be an integer >= 1"):
        sample_counts(constant(0), X1, gaussian(0.5, 1), 0, num_classes=2, rng=0)


@pytest.mark.parametrize(
    "classify, exc, match",
    [
        (
            lambda s: np.zeros(s.shape[1]),
            TypeError,
            r"classify's output must hold integer class labels, got dtype float64; classify must "
            r"return one label per sample, e\.g\. scores\.argmax\(axis=-1\)",
        ),
        (
            lambda s: np.zeros((s.shape[1], 1), int),
            ValueError,
            r"classify's output must have shape \(\d+,\) \(one label per sample\), got "
            r"\(\d+, 1\)",
        ),
        (lambda s: np.full(s.shape[1], 2), ValueError,
         r"classify's output holds the label 2 but the classifier \(num_classes\) has 2 classes; "
         r"labels are 0-based class indices in \[0, 1\] .*; raise num_classes or fix the "
         r"classifier$"),
        (lambda s: np.full(s.shape[1], -1), ValueError,
         r"classify's output holds the negative label -1; labels are 0-based class indices in "
         r"\[0, 1\]"),
    ],
)
def test_classifier_output_errors(classify, exc, match):
    with pytest.raises(exc, match=match):
        _cert(classify=classify)


def test_statistics_argument_errors():
    with pytest.raises(ValueError, match=r"count=11 must be <= n=10"):
        lower_confidence_bound(11, 10, 0.01)
    with pytest.raises(ValueError, match=r"count=-1 must be an integer >= 0"):
        lower_confidence_bound(-1, 10, 0.01)
    with pytest.raises(ValueError, match=r"p_a_lower=1.5 must be finite and lie in \[0.0, 1.0\]"):
        certified_radius(1.5, gaussian(0.5, 1))
    with pytest.raises(TypeError, match=r"noise must be a NoiseModel"):
        certified_radius(0.9, 0.5)


@pytest.mark.parametrize("shape", [(7,), (3, 5)])
def test_noise_stream_reads_the_chunk_streams_whatever_the_ranges_and_threads(shape):
    # sample i is row i mod NOISE_CHUNK of chunk i // NOISE_CHUNK, drawn whole from its own
    # child stream; ranges that start and end inside chunks, span several, or fit in one
    import numba

    from certify.smoothing import NOISE_CHUNK, _child, _NoiseStream

    seed = np.random.SeedSequence(11)

    def by_definition(i):
        k = i // NOISE_CHUNK
        chunk = np.random.default_rng(_child(seed, k)).standard_normal((NOISE_CHUNK,) + shape)
        return chunk[i - k * NOISE_CHUNK]

    sizes = [1, NOISE_CHUNK - 1, NOISE_CHUNK, NOISE_CHUNK + 1, 3 * NOISE_CHUNK + 5, 2]
    want = np.array([by_definition(i) for i in range(sum(sizes))])
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            stream, pos = _NoiseStream(seed, shape), 0
            for n in sizes:
                np.testing.assert_array_equal(stream.take(pos, pos + n), want[pos:pos + n])
                pos += n
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
