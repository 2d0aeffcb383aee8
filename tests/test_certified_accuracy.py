"""Tests of validation.reproduce.certified_accuracy: certified accuracy vs radius for Poisson
coding (certify.bernoulli) and RSC-I (certify.smoothing) on the embedded digits, with small
SNNs trained here by evsnn.grad.loss_and_grad + Adam."""

from __future__ import annotations

import math

import numpy as np
import pytest

from certify.smoothing import NetworkClassifier
from evsnn.data import load_digits
from evsnn.grad import loss_and_grad
from validation.reproduce.certified_accuracy import (
    certified_accuracy_curves,
    plot_certified_accuracy,
    train_snn,
)

T, SIGMA = 4, 0.25


@pytest.fixture(scope="module")
def trained():
    train, test = load_digits("train"), load_digits("test")
    x, y = train.x[:400], train.y[:400]
    before = loss_and_grad(
        train_snn(x, y, encoder="poisson", n_steps=T, hidden=40, epochs=0, rng=1),
        test.x[:200], test.y[:200], T=T, encoder="poisson", rng=0,
    )
    poi = train_snn(x, y, encoder="poisson", n_steps=T, hidden=40, epochs=5, lr=1e-2, rng=1)
    rsc = train_snn(x, y, encoder="rsc_fixed", sigma=SIGMA, n_steps=T, hidden=40, epochs=5,
                    lr=1e-2, rng=1)
    return poi, rsc, test, before


def test_training_learns(trained):
    poi, rsc, test, before = trained
    after = loss_and_grad(poi, test.x[:200], test.y[:200], T=T, encoder="poisson", rng=0)
    after_rsc = loss_and_grad(rsc, test.x[:200], test.y[:200], T=T, encoder="rsc_fixed",
                              sigma=SIGMA, rng=0)
    assert after.loss < before.loss
    # 10 classes: chance is 0.1; five epochs on 400 images get far above it (a trial run of
    # three epochs reached 0.47 / 0.39)
    assert after.correct.mean() > 0.3 and after_rsc.correct.mean() > 0.3


@pytest.fixture(scope="module")
def curves(trained):
    poi, rsc, test, _ = trained
    return certified_accuracy_curves(
        test.x[:12], test.y[:12], poisson_classify=NetworkClassifier(poi),
        rsc_classify=NetworkClassifier(rsc), n_steps=T, sigma=SIGMA, n0=50, n=600,
        alpha=0.01, rng=3, radii_linf=np.linspace(0, 0.2, 21), radii_l1=np.linspace(0, 2, 21),
    )


def test_curves_follow_the_certificates(curves):
    for arr in (curves.poisson_linf, curves.poisson_l1, curves.rsc_linf, curves.rsc_l1):
        assert np.all((arr >= 0) & (arr <= 1)) and np.all(np.diff(arr) <= 0)
    assert curves.poisson_linf[0] == curves.clean_poisson == curves.poisson_l1[0]
    assert curves.rsc_linf[0] == curves.clean_rsc
    assert curves.clean_poisson > 0 and curves.clean_rsc > 0  # something is certified
    # recompute one point of each curve from the per-image certificates
    y = curves.labels
    ok_p = curves.poisson["prediction"] == y
    r = curves.radii_l1[3]
    assert curves.poisson_l1[3] == np.mean(ok_p & (curves.poisson["l1"] >= r))
    ok_r = curves.rsc["prediction"] == y
    r = curves.radii_linf[2]
    assert curves.rsc_linf[2] == np.mean(ok_r & (curves.rsc["l2"] / math.sqrt(64) >= r))
    assert curves.params["d"] == 64


def test_results_are_seeded(trained):
    poi, rsc, test, _ = trained
    kw = dict(poisson_classify=NetworkClassifier(poi), rsc_classify=NetworkClassifier(rsc),
              n_steps=T, sigma=SIGMA, n0=20, n=100, alpha=0.01, rng=5, radii_linf=[0.0],
              radii_l1=[0.0])
    a = certified_accuracy_curves(test.x[:3], test.y[:3], **kw)
    b = certified_accuracy_curves(test.x[:3], test.y[:3], **kw)
    np.testing.assert_array_equal(a.poisson["linf"], b.poisson["linf"])
    np.testing.assert_array_equal(a.rsc["l2"], b.rsc["l2"])


def test_plot_is_written(curves, tmp_path):
    out = plot_certified_accuracy(curves, tmp_path / "curves.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_errors():
    kw = dict(poisson_classify=len, rsc_classify=len, n_steps=1, sigma=0.1, n0=1, n=1,
              alpha=0.1, rng=0, radii_linf=[0.0], radii_l1=[0.0])
    with pytest.raises(ValueError, match=r"x must be a batch of flattened images \[B, d\]"):
        certified_accuracy_curves(np.zeros(4), [0], **kw)
    with pytest.raises(ValueError, match="y must hold one label per image"):
        certified_accuracy_curves(np.zeros((2, 4)), [0], **kw)
