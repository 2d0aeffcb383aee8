"""The claim checks: the framework, verdicts derived independently, and checks that catch faults."""

import json

import numpy as np
import pytest

from evsnn.clock import Dense, Network
from evsnn.params import LIF
from validation.claims import REGISTRY, Verdict, run_checks
from validation.claims import hart as hart_claims
from validation.claims.rsc import clamped_gaussian_moments


def test_every_check_runs_and_returns_a_valid_verdict():
    verdicts = run_checks(seed=0)
    assert {v.check_id for v in verdicts} == set(REGISTRY)
    order = [v.status for v in verdicts]
    # violations first
    assert order == sorted(order, key=lambda s: {"violated": 0, "holds": 1, "not-applicable": 2}[s])
    for v in verdicts:
        json.dumps(v.to_dict())  # every verdict is serialisable
        if v.status == "violated":
            assert v.counterexample is not None


def test_hart_fig1_spike_times_hand_derived():
    # W = [1.5, -0.5], θ = 1, soft reset, λ = 1, spike iff m >= 1:
    # case 2: m = 1.5 (s, v=.5), 2.0 (s, 1.0), 2.5 (s, 1.5), 1.0 (s, 0), -0.5, -1.0 -> 1, 2, 3, 4
    # case 3: m = -0.5, -1.0, -1.5, 0.0, 1.5 (s, .5), 2.0 (s) -> 5, 6
    cases = hart_claims.fig1_cases()
    assert cases == {"case1_alternating": [1, 3, 5], "case2_positive_first": [1, 2, 3, 4],
                     "case3_negative_first": [5, 6]}


def test_eq8_identity_fails_under_hard_reset():
    # the check's computation must detect a broken premise: with hard reset Eq. 8 does not hold
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 10))
    net = Network([Dense(w, LIF(lam=0.8, theta=1.0, reset="hard"))])
    s_in = (rng.random((20, 4, 10)) < 0.5).astype(float)
    r, wr, resid, rec = hart_claims._eq8_residuals(net, s_in)
    assert rec.spikes.sum() > 0
    assert np.max(np.abs(r - (wr - resid))) > 1e-3
    soft = Network([Dense(w, LIF(lam=0.8, theta=1.0, reset="soft"))])
    r, wr, resid, _ = hart_claims._eq8_residuals(soft, s_in)
    assert np.max(np.abs(r - (wr - resid))) < 1e-12


def test_clamped_gaussian_moments_match_monte_carlo():
    rng = np.random.default_rng(1)
    for mu, sigma in ((0.0, 0.25), (0.5, 0.1), (0.95, 0.5)):
        s = np.clip(mu + sigma * rng.standard_normal(400_000), 0, 1)
        mean, var = clamped_gaussian_moments(mu, sigma)
        assert abs(s.mean() - mean) < 6 * s.std() / np.sqrt(s.size)
        assert abs(s.var() - var) < 6 * np.sqrt(np.var((s - s.mean()) ** 2) / s.size)
    # far from the edges the clamp does nothing: N(0.5, 0.01²)
    mean, var = clamped_gaussian_moments(0.5, 0.01)
    assert mean == pytest.approx(0.5, abs=1e-15) and var == pytest.approx(1e-4, rel=1e-9)


def test_select_and_errors():
    vs = run_checks("hart.fig", seed=0)
    assert [v.check_id for v in vs] == ["hart.fig1"]
    with pytest.raises(ValueError, match="matches no check"):
        run_checks("nope.")
    with pytest.raises(ValueError, match="status='maybe' must be one of"):
        Verdict("x", "p", "c", "maybe")


def test_hart_thm1_truncated_integral_matches_quadrature():
    from scipy.integrate import quad

    a, b, c, lam, T, d = 0.8, 0.3, 1.5, 0.7, 6, 0.05
    k = ((T - 1) * (1 - lam) ** 2 + 1) / (6 * c * T**2)
    f = lambda x: (a * x + b) ** 2 / x**2  # noqa: E731
    numeric = k * (quad(f, d, c)[0] + quad(f, -c, -d)[0])
    assert hart_claims.thm1_integral(a, b, c, lam, T, d) == pytest.approx(numeric, rel=1e-10)
    # with b = 0 the closed form is right: a²/3 · ((T−1)(1−λ)²+1)/T²
    assert hart_claims.thm1_closed_form(a, 0.0, c, lam, T) == pytest.approx(
        a * a / 3 * ((T - 1) * (1 - lam) ** 2 + 1) / T**2, rel=1e-14)
