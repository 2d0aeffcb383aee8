"""Corner-aimed property tests of evsnn.attacks and the robustness metrics of evsnn.metrics.

The broader tests (test_attacks.py, test_robustness_metrics.py) draw budgets, inputs and models
from wide ranges; these aim at the corners: ε = 0 and ε covering the whole box, pixels at 0 and
1, gradients exactly zero (flat losses, a dead SNN) or tiny (a dead SNN's surrogate gradients
are 1e-225), ties in the L1 / L0 projections, k = 0 and k >= P, batches of one sample, samples
already misclassified, restarts, APGD with one or two iterations, RandDel at p = 0 and 1, empty
batches and K = 1 in the metrics, SOP up to a TTFS decision at a tie.

Oracles: the ball of radius 0 is {x}; sign-corner closed forms; brute force over subsets (L0)
and the enumerated QP of reference.attacks (L1); scale invariance of normalised steps under powers
of two; per-sample random streams (a batch's prefix is attacked as the prefix alone); the
documented selection rules (best restart, APGD's highest-loss point); first-order gains of
spike edits under a fixed gradient; truncation of rasters at the decision step for SOP.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference.attacks import (
    l1_box_qp_brute, linear_source, noisy_linear_source, sym_diff_distance,
)
from reference.helpers import example_count

from evsnn.attacks import (
    CallableSource,
    GradientSource,
    MixedSource,
    SNNSource,
    SourceOutput,
    ann_source,
    apgd,
    bim,
    ce_loss,
    deepfool,
    dlr_loss,
    eot_pgd,
    fgsm,
    mim,
    norms_of,
    one_pixel,
    pgd,
    project,
    project_l0,
    project_l1,
    project_l2,
    rand_del,
    rfgsm,
    spike_attack,
)
from evsnn.ann import ANN
from evsnn.attacks._common import margin_of, random_start, step_direction
from evsnn.attacks.projections import l2_norm
from evsnn.clock import Network
from evsnn.decoders import cumulative, decision_times, decode
from evsnn.metrics import (
    LayerShape,
    accuracy,
    attack_success_rate,
    cumulative_rate,
    hidden_rate,
    perturbation_distribution,
    sop,
    stability,
    taacc,
    taylor_indicator,
    taylor_indicator_grid,
)
from evsnn.params import LIF

# Example counts for the default (ci) profile's 40; another profile scales them (the random
# profile's 300: 7.5 times as many), so HYPOTHESIS_PROFILE=random hunts further.
def _examples(n):
    return settings(max_examples=example_count(n))


SMALL = _examples(15)
TINY = _examples(6)
# Two float64 evaluations of g/‖g‖ for g and 2^k g: exact scaling except where the norm takes
# its scaled branch (m·sqrt(Σ(g/m)²) instead of sqrt(Σg²)), a few roundings apart.
RTOL_SCALED_NORM = 4 * np.finfo(np.float64).eps


def _edge_x(rng, B, N, dtype=np.float64):
    """Pixels mostly exactly at 0 or 1, some at 1/2 and some anywhere."""
    x = rng.choice([0.0, 1.0, 0.5], size=(B, N), p=[0.4, 0.4, 0.2])
    x = np.where(rng.random((B, N)) < 0.25, rng.random((B, N)), x)
    return x.astype(dtype)


def _fixed_grad_source(G, C=3, scale=1.0):
    """A source whose gradient is ``scale·G[b]`` whatever the input; the scores are linear with
    the gradient as weights for class 1, so the loss rises along G."""
    G = np.asarray(G, dtype=np.float64)

    def slg(x, score_loss):
        s = np.zeros((len(x), C))
        s[:, 1] = (x * G[: len(x)]).sum(1) * scale
        loss, gs = score_loss(s)
        return loss, gs[:, 1:2] * G[: len(x)] * scale, s

    return CallableSource(lambda x, y: slg(x, lambda s: ce_loss(s, y)), score_loss_grad=slg)


def _rowwise_linear_source(W, b=None):
    """Scores ``x Wᵀ + b`` as linear_source, with the products taken one row at a time: a
    matrix product's rounding may depend on the batch size (BLAS blocking), a row's does not."""
    W = np.asarray(W, dtype=np.float64)
    b = np.zeros(W.shape[0]) if b is None else np.asarray(b, dtype=np.float64)

    def scores(x):
        rows = [W @ row + b for row in np.asarray(x, dtype=np.float64)]
        return np.array(rows).reshape(-1, len(W))

    def slg(x, score_loss):
        s = scores(x)
        loss, gs = score_loss(s)
        return loss, np.array([row @ W for row in gs]).reshape(x.shape), s

    return CallableSource(lambda x, y: slg(x, lambda s: ce_loss(s, y)), score_loss_grad=slg,
                          predict=scores)


def _flat_source(C=3):
    """Loss with a gradient exactly 0 everywhere (constant scores)."""
    def slg(x, score_loss):
        s = np.zeros((len(x), C))
        loss, _ = score_loss(s)
        return loss, np.zeros(x.shape), s

    return CallableSource(lambda x, y: slg(x, lambda s: ce_loss(s, y)), score_loss_grad=slg,
                          predict=lambda x: np.zeros((len(x), C)))


def _budget_attacks(src, x, y, eps, k, start, seed, target=None, W=None):
    """Every budgeted attack (name -> thunk) with radius ε (k pixels for L0)."""
    out = {
        "fgsm": lambda: fgsm(src, x, y, eps=eps, target=target),
        "bim-linf": lambda: bim(src, x, y, eps=eps, steps=3, target=target),
        "bim-l2": lambda: bim(src, x, y, eps=eps, norm="l2", steps=3, target=target),
        "mim-linf": lambda: mim(src, x, y, eps=eps, steps=3, target=target),
        "mim-l2": lambda: mim(src, x, y, eps=eps, norm="l2", steps=3, target=target),
        "apgd-ce-linf": lambda: apgd(src, x, y, eps=eps, steps=3, random_start=start, rng=seed,
                                     target=target),
        "apgd-ce-l2": lambda: apgd(src, x, y, eps=eps, norm="l2", steps=3,
                                   random_start=start, rng=seed, target=target),
        "apgd-dlr-l2": lambda: apgd(src, x, y, eps=eps, norm="l2", steps=2, loss="dlr",
                                    random_start=start, rng=seed, target=target),
    }
    for norm in ("linf", "l2", "l1", "l0"):
        out[f"pgd-{norm}"] = (lambda n=norm: pgd(
            src, x, y, eps=k if n == "l0" else eps, norm=n, steps=3, random_start=start,
            restarts=2, rng=seed, target=target))
    if start is not None:  # random steps: never exactly at x unless ε = 0
        out["rfgsm-tramer"] = lambda: rfgsm(src, x, y, eps=eps, rng=seed, target=target)
        out["rfgsm-wong"] = lambda: rfgsm(src, x, y, eps=eps, variant="wong", rng=seed,
                                          target=target)
        if W is not None:
            out["eot_pgd-l2"] = lambda: eot_pgd(noisy_linear_source(W), x, y, eps=eps,
                                                norm="l2", eot_samples=2, steps=2, rng=seed,
                                                target=target)
    return out


# --- ε = 0: the ball is {x} ---------------------------------------------------------------------
@SMALL
@given(st.integers(0, 2**32 - 1), st.sampled_from([np.float64, np.float32, np.float16]),
       st.sampled_from(["uniform", "gaussian"]))
def test_zero_budget_returns_x_bit_for_bit(seed, dtype, start):
    """ε = 0 (k = 0 for L0): the ball ∩ box is {x}; random starts, steps and restarts must all
    land on x exactly, in x's dtype, for every budgeted attack."""
    rng = np.random.default_rng(seed)
    B, N, C = int(rng.integers(1, 4)), int(rng.integers(1, 6)), 4
    x = _edge_x(rng, B, N, dtype)
    W = rng.standard_normal((C, N)) * 3
    y = rng.integers(0, C, B)
    target = rng.integers(0, C, B) if rng.random() < 0.3 else None
    for name, run in _budget_attacks(linear_source(W), x, y, 0.0, 0, start, seed, target,
                                     W).items():
        r = run()
        assert r.x_adv.dtype == x.dtype, name
        np.testing.assert_array_equal(r.x_adv, x, err_msg=name)
        for key in ("linf", "l2", "l1", "l0"):
            assert np.all(r.norms[key] == 0), (name, key)
        # success is the evaluated model's verdict on x itself
        pred = np.argmax(r.scores, axis=1)
        np.testing.assert_array_equal(r.success, pred == target if target is not None
                                      else pred != y, err_msg=name)


# --- flat losses: no step -------------------------------------------------------------------------
@SMALL
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.1, 1.0, 7.0]))
def test_flat_loss_gives_no_step_without_a_random_start(seed, eps):
    """A gradient that is exactly 0 gives no step in every norm (sign(0) = 0; the L2, L1 and L0
    normalisations divide by a zero norm): the attacks started at x return x, with finite
    losses. DeepFool stops (every gradient difference vanishes)."""
    rng = np.random.default_rng(seed)
    B, N = int(rng.integers(1, 4)), int(rng.integers(1, 6))
    x = _edge_x(rng, B, N)
    y = rng.integers(0, 3, B)
    src = _flat_source()
    runs = _budget_attacks(src, x, y, eps, int(rng.integers(0, N + 2)), None, seed)
    runs["deepfool-l2"] = lambda: deepfool(src, x, y, steps=3)
    runs["deepfool-linf"] = lambda: deepfool(src, x, y, norm="linf", steps=3)
    for name, run in runs.items():
        r = run()
        np.testing.assert_array_equal(r.x_adv, x, err_msg=name)
        assert np.all(np.isfinite(r.loss)), name


def test_dead_snn_with_no_spikes_is_left_unchanged():
    """A dead network (all weights 0: no spike anywhere, so the input gradient is exactly 0)
    leaves x unchanged under the gradient attacks started at x."""
    net = Network.mlp([4, 5, 3], LIF(lam=0.9, theta=0.5), rng=1)
    net = net.with_weights([np.zeros_like(w) for w in net.weights()])
    src = SNNSource(net, T=4, encoder="current")
    x = np.array([[0.0, 1.0, 0.5, 0.25], [1.0, 1.0, 0.0, 0.0]])
    y = np.array([1, 2])
    assert np.all(src(x, y).grad == 0)
    for name, r in {
        "bim-l2": bim(src, x, y, eps=0.5, norm="l2", steps=2),
        "pgd-l1": pgd(src, x, y, eps=0.5, norm="l1", steps=2, random_start=None),
        "apgd-dlr": apgd(src, x, y, eps=0.5, loss="dlr", steps=2, random_start=None),
        "deepfool": deepfool(src, x, y, steps=2),
    }.items():
        np.testing.assert_array_equal(r.x_adv, x, err_msg=name)


# --- tiny and huge gradients: normalised steps are scale-free -------------------------------------
@settings(max_examples=example_count(30))
@given(st.integers(0, 2**32 - 1), st.integers(-1000, 1000))
def test_l2_step_direction_is_invariant_to_power_of_two_scaling(seed, k):
    """g/‖g‖₂ is the same for g and 2^k g (any k keeping the entries normal floats): a gradient
    of 1e-300 steps like one of 1. The L1-normalised L0 step and the sign step too."""
    rng = np.random.default_rng(seed)
    N = int(rng.integers(1, 8))
    g = rng.standard_normal((2, N)) * (rng.random((2, N)) < 0.7)
    g[:, 0] = np.where(g[:, 0] == 0, 1.0, g[:, 0])  # one nonzero entry per row
    g = np.where(np.abs(g) < 2.0**-20, 0.0, g)  # keep 2^k g out of the subnormals
    gk = np.ldexp(g, k)
    x_adv = np.full(g.shape, 0.5)
    for norm in ("l2", "l0", "linf"):
        np.testing.assert_allclose(step_direction(gk, x_adv, norm), step_direction(g, x_adv, norm),
                                   rtol=RTOL_SCALED_NORM, atol=0, err_msg=norm)
    np.testing.assert_allclose(l2_norm(gk, axis=1), np.ldexp(l2_norm(g, axis=1), k),
                               rtol=RTOL_SCALED_NORM, atol=0)


def test_l2_step_of_a_tiny_gradient_regression():
    # Σg² underflowed to 0 for ‖g‖ < 1.5e-162, so PGD-L2 / APGD-L2 / BIM-L2 took no step on a
    # nonzero gradient (a dead SNN's sigmoid-surrogate gradients are ~1e-225). Hand value:
    # g ∝ (3, 4) gives the direction (0.6, 0.8).
    g = np.array([[3e-170, 4e-170]])
    np.testing.assert_allclose(step_direction(g, np.full((1, 2), 0.5), "l2"), [[0.6, 0.8]],
                               rtol=RTOL_SCALED_NORM)
    src = _fixed_grad_source(g)
    r = bim(src, np.full((1, 2), 0.5), np.array([0]), eps=0.25, norm="l2", steps=1, alpha=0.25)
    np.testing.assert_allclose(r.x_adv, [[0.5 + 0.15, 0.5 + 0.2]], rtol=1e-15)


def test_l2_projection_of_a_far_point_regression():
    # Σd² overflowed to inf for ‖z − x‖ > 1.3e154, the scale ε/inf was 0 and the projection
    # returned x instead of the point on the sphere (Ding 2025 Eq. 24's step α g/‖g‖² is that
    # long for ‖g‖ ~ 1e-155). Hand value: x + ε (3, 4)/5.
    x = np.full((1, 2), 0.5)
    got = project_l2(x + np.array([[3e160, 4e160]]), x, 0.25)
    np.testing.assert_allclose(got, [[0.65, 0.7]], rtol=1e-15)


@SMALL
@given(st.integers(0, 2**32 - 1),
       # 2^-525 ≈ 1e-158 and 2^-1063 ≈ 1e-320: where ‖w'‖² and ‖w'‖₁ ran out of range
       st.one_of(st.sampled_from([-520, -525, -530, -540, -1040, -1063, -1070]),
                 st.integers(-1074, 0)),
       st.sampled_from(["l2", "linf"]))
def test_deepfool_stays_finite_in_the_box_for_any_gradient_scale(seed, k, norm):
    """DeepFool's step (|f'|/‖w'‖ + 1e-4) along w'/‖w'‖₂ (or sign(w')) must stay finite for gradient
    differences of any size down to the smallest subnormal: x_adv is finite and in [0, 1]; a
    sample moves exactly when its gradient differences are nonzero and the step is finite."""
    rng = np.random.default_rng(seed)
    B, N, C = int(rng.integers(1, 4)), int(rng.integers(1, 5)), 3
    x = _edge_x(rng, B, N)
    W = np.ldexp(rng.standard_normal((C, N)), k)
    r = deepfool(linear_source(W, b=rng.standard_normal(C)), x, rng.integers(0, C, B), norm=norm,
                 steps=3)
    assert np.all(np.isfinite(r.x_adv)) and np.all((r.x_adv >= 0) & (r.x_adv <= 1))
    assert np.all(np.isfinite(r.loss))


def test_deepfool_tiny_gradients_regression():
    # With the nudge on the score: gradient differences of 1e-158 gave (|f'| + 1e-4)/‖w'‖² = inf
    # (‖w'‖² = 1e-316), and inf · 0 = NaN in every coordinate with a zero gradient; at 1e-320
    # the L∞ form did the same. The step is now (|f'| + 1e-4)/‖w'‖ along w'/‖w'‖ (or sign(w')):
    # 1e154 long for 1e-158, clipped to the box (x_0 → 0); for 1e-320 it is 1e316, beyond
    # float64, so the sample stops where it is. Before the fix 1e-162 and 1e-200 did not move
    # (Σw'² = 0). With the nudge on the distance (the default) the step is |f'|/‖w'‖ + 1e-4 =
    # 0.5001 at every scale: x_0 → 0 even for 1e-320.
    x, y = np.array([[0.5, 0.0, 1.0, 0.3]]), np.array([0])
    for s, norm, nudge_on, x0 in (
        (1e-158, "l2", "score", 0.0), (1e-162, "l2", "score", 0.0), (1e-200, "l2", "score", 0.0),
        (1e-200, "linf", "score", 0.0), (1e-320, "l2", "score", 0.5),
        (1e-320, "linf", "score", 0.5), (1e-320, "l2", "distance", 0.0),
        (1e-320, "linf", "distance", 0.0),
    ):
        W = np.zeros((3, 4))
        W[0, 0] = s  # class 0 ahead of class 1 by s·x_0; class 2 far behind
        r = deepfool(linear_source(W, b=np.array([0.0, 0.0, -1.0])), x, y, norm=norm, steps=3,
                     nudge_on=nudge_on)
        np.testing.assert_array_equal(r.x_adv, [[x0, 0.0, 1.0, 0.3]],
                                      err_msg=f"{s} {norm} {nudge_on}")


def test_dead_snn_with_tiny_surrogate_gradients_still_steps_in_l2():
    """A network whose hidden layer never spikes (input weights −100·|W|) has sigmoid-surrogate
    input gradients of ~1e-225: nonzero, so PGD-L2 from x must move (it used to stay at x) and
    DeepFool must stay finite."""
    net = Network.mlp([6, 8, 4], LIF(lam=0.9, theta=0.5), rng=3, scale=2.5)
    w0, w1 = net.weights()
    net = net.with_weights([-100 * np.abs(w0), w1])
    src = SNNSource(net, T=4, encoder="current")
    x = np.random.default_rng(0).random((2, 6))
    y = np.array([1, 2])
    g = src(x, y).grad
    # sample 0: ~1e-225; sample 1: exactly 0 (the products underflow on the way back)
    assert np.all(src(x, y).scores == 0) and 0 < np.abs(g[0]).max() < 1e-200 and not g[1].any()
    r = bim(src, x, y, eps=0.1, norm="l2", steps=1, alpha=0.1)
    want = x[0] + 0.1 * g[0] / l2_norm(g[0])
    np.testing.assert_allclose(r.x_adv[0], np.clip(want, 0, 1), rtol=1e-14)
    np.testing.assert_array_equal(r.x_adv[1], x[1])
    df = deepfool(src, x, y, steps=2)
    assert np.all(np.isfinite(df.x_adv))


# --- the whole box ------------------------------------------------------------------------------
@SMALL
@given(st.integers(0, 2**32 - 1), st.sampled_from([1.0, 2.5, 1e6]),
       st.sampled_from([np.float64, np.float32]))
def test_fgsm_with_a_budget_covering_the_box_reaches_the_sign_corner(seed, eps, dtype):
    """ε ≥ 1: FGSM's point is 1 where the gradient is positive, 0 where negative and x where
    it is 0 (closed form: the L∞ ball covers [0, 1]^N)."""
    rng = np.random.default_rng(seed)
    B, N = int(rng.integers(1, 4)), int(rng.integers(1, 7))
    x = _edge_x(rng, B, N, dtype)
    G = rng.choice([-1.0, 0.0, 2.0], size=(B, N))
    r = fgsm(_fixed_grad_source(G), x, np.ones(B, dtype=int), eps=eps)
    # y = 1 is the class the score rises with: its CE falls along G, so the ascent is −G
    want = np.where(G < 0, 1.0, np.where(G > 0, 0.0, x)).astype(dtype)
    np.testing.assert_array_equal(r.x_adv, want)


@SMALL
@given(st.integers(0, 2**32 - 1), st.sampled_from(["l2", "l1", "linf"]))
def test_projection_with_a_budget_beyond_the_box_is_the_box_clip(seed, norm):
    """A radius beyond the box's reach (‖1‖ in the norm: N or 1) makes the ball constraint
    inactive: the projection is clip(z, 0, 1) exactly in float64. L2 projects onto the ball
    before clipping (documented), so there the radius must also cover ‖z − x‖ (≤ 3√N here)."""
    rng = np.random.default_rng(seed)
    B, N = int(rng.integers(1, 4)), int(rng.integers(1, 7))
    x = _edge_x(rng, B, N)
    z = x + rng.choice([-3.0, -1.0, 0.0, 0.25, 1.0, 3.0], size=(B, N))
    eps = {"l2": 3 * np.sqrt(N), "l1": float(N), "linf": 1.0}[norm] * rng.choice([1.0, 1.5, 1e9])
    np.testing.assert_array_equal(project(z, x, eps, norm), np.clip(z, 0.0, 1.0))


# --- ties in the projections ----------------------------------------------------------------------
_GRID = np.array([0.0, 0.25, 0.5, 0.75, 1.0])


@settings(max_examples=example_count(25))
@given(st.integers(0, 2**32 - 1), st.integers(1, 4),
       st.sampled_from([0.0, 2.0**-40, 0.25, 0.5, 1.0, 4.0]))
def test_l1_projection_with_ties_matches_enumerated_qp(seed, n, eps):
    """Equal |z − x| entries, pixels on 0 and 1, radius 0 and beyond the box's reach: the L1
    projection is the enumerated QP optimum (reference.attacks.l1_box_qp_brute), in ball and box."""
    rng = np.random.default_rng(seed)
    x = rng.choice(_GRID, n)
    u = rng.choice([-1.5, -0.5, -0.25, 0.0, 0.25, 0.5, 1.5], n)  # repeated magnitudes
    z = x + u
    got = project_l1(z[None], x[None], eps)[0]
    want = x + l1_box_qp_brute(u, x, eps)
    # bisection to float resolution on λ: the error in d is below 1e-12 (slope ≤ n)
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert norms_of(got[None], x[None])["l1"][0] <= eps and np.all((got >= 0) & (got <= 1))
    if eps == 0:
        np.testing.assert_array_equal(got, x)


@settings(max_examples=example_count(30))
@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.sampled_from([1, 2]), st.integers(0, 7))
def test_l0_projection_with_ties_is_optimal_and_breaks_ties_to_the_lower_index(seed, P, C, k):
    """Gains with ties (values on a grid), k = 0 and k >= P: the result is optimal (brute force
    over pixel subsets), changes at most k pixels, and a pixel left unchanged never has a
    larger gain than a changed one, nor an equal gain at a lower index (the documented rule)."""
    rng = np.random.default_rng(seed)
    N = P * C
    x = rng.choice(_GRID, N)
    z = rng.choice(np.array([-0.5, 0.0, 0.5, 1.0, 1.5]), N)
    got = project_l0(z[None], x[None], k, channels=C)[0]
    cz = np.clip(z, 0, 1)

    def cost(S):
        keep = np.zeros(P, bool)
        keep[list(S)] = True
        v = np.where(np.tile(keep, C), cz, x)
        return float(((v - z) ** 2).sum())

    best = min(cost(S) for m in range(min(k, P) + 1) for S in itertools.combinations(range(P), m))
    assert float(((got - z) ** 2).sum()) == best
    changed = (got != x).reshape(C, P).any(axis=0)
    assert changed.sum() <= k and np.all((got >= 0) & (got <= 1))
    gain = (((z - x) ** 2 - (z - cz) ** 2).reshape(C, P)).sum(axis=0)
    for i in np.flatnonzero(changed):
        for j in np.flatnonzero(~changed & (gain > 0)):
            assert gain[j] < gain[i] or (gain[j] == gain[i] and j > i), (i, j, gain)
    if k == 0:
        np.testing.assert_array_equal(got, x)
    if k >= P:
        np.testing.assert_array_equal(got, cz)


# --- batches: per-sample streams, permutations, determinism ---------------------------------------
def _all_attacks(src, x, y, seed, W):
    runs = _budget_attacks(src, x, y, 0.2, 2, "uniform", seed, W=W)
    runs["pgd-l0-gauss"] = lambda: pgd(src, x, y, eps=1, norm="l0", steps=2,
                                       random_start="gaussian", rng=seed)
    runs["deepfool-l2"] = lambda: deepfool(src, x, y, steps=3)
    runs["deepfool-linf"] = lambda: deepfool(src, x, y, norm="linf", steps=3, candidates=1)
    runs["one_pixel"] = lambda: one_pixel(src, x, y, popsize=5, maxiter=1, rng=seed)
    return runs


@TINY
@given(st.integers(0, 2**32 - 1), st.sampled_from([np.float64, np.float32]))
def test_a_batch_prefix_is_attacked_as_the_prefix_alone(seed, dtype):
    """Sample b draws from child b of the rng's spawn, and every attack is per-sample: the
    first m rows of an attack on a batch equal the attack on those m rows (bit for bit), and a
    second call with the same seed repeats the first."""
    rng = np.random.default_rng(seed)
    B, N, C = 4, int(rng.integers(1, 6)), 4
    x = _edge_x(rng, B, N, dtype)
    y = rng.integers(0, C, B)
    W = rng.standard_normal((C, N)) * 2
    m = int(rng.integers(1, B))
    src = _rowwise_linear_source(W)
    full = {k: run() for k, run in _all_attacks(src, x, y, seed, W).items()}
    part = _all_attacks(src, x[:m], y[:m], seed, W)
    again = _all_attacks(src, x, y, seed, W)
    for name in ("fgsm", "pgd-linf", "pgd-l1", "pgd-l0", "apgd-dlr-l2", "rfgsm-wong",
                 "eot_pgd-l2", "deepfool-linf", "one_pixel", "pgd-l0-gauss", "mim-l2"):
        p = part[name]()
        np.testing.assert_array_equal(full[name].x_adv[:m], p.x_adv, err_msg=name)
        np.testing.assert_array_equal(full[name].success[:m], p.success, err_msg=name)
        if name != "deepfool-linf":  # DeepFool records until the whole batch has stopped
            np.testing.assert_array_equal(full[name].loss[:, :m], p.loss, err_msg=name)
    for name in full:
        np.testing.assert_array_equal(full[name].x_adv, again[name]().x_adv, err_msg=name)


@TINY
@given(st.integers(0, 2**32 - 1), st.permutations(range(4)))
def test_attacks_started_at_x_commute_with_permuting_the_batch(seed, perm):
    """Without random draws an attack is a function of each sample alone: permuting the batch
    permutes the result."""
    rng = np.random.default_rng(seed)
    perm = np.array(perm)
    B, N, C = 4, int(rng.integers(1, 6)), 4
    x = _edge_x(rng, B, N)
    x[1] = x[0]  # a duplicated row
    y = rng.integers(0, C, B)
    W = rng.standard_normal((C, N)) * 2
    src = _rowwise_linear_source(W)
    a = _budget_attacks(src, x, y, 0.3, 1, None, None)
    b = _budget_attacks(src, x[perm], y[perm], 0.3, 1, None, None)
    a["deepfool"] = lambda: deepfool(src, x, y, steps=4)
    b["deepfool"] = lambda: deepfool(src, x[perm], y[perm], steps=4)
    for name in a:
        np.testing.assert_array_equal(a[name]().x_adv[perm], b[name]().x_adv, err_msg=name)


# --- restarts and APGD's best point ---------------------------------------------------------------
@settings(max_examples=example_count(25))
@given(st.integers(0, 2**32 - 1), st.sampled_from(["linf", "l2", "l1", "l0"]),
       st.integers(2, 4), st.booleans())
def test_more_restarts_never_do_worse_than_one(seed, norm, restarts, targeted):
    """Restart 1 of a multi-restart run draws what a single run draws (the streams continue),
    and a later restart replaces it only when better (success first, then a lower margin): so
    per sample, R restarts are never worse than one."""
    rng = np.random.default_rng(seed)
    B, N, C = int(rng.integers(1, 4)), int(rng.integers(1, 6)), int(rng.integers(2, 5))
    x = _edge_x(rng, B, N)
    y = rng.integers(0, C, B)
    target = rng.integers(0, C, B) if targeted else None
    W = rng.standard_normal((C, N)) * rng.choice([0.3, 3.0])
    eps = int(rng.integers(0, N + 1)) if norm == "l0" else float(rng.choice([0.0, 0.05, 0.3, 2.0]))
    kw = dict(eps=eps, norm=norm, steps=int(rng.integers(1, 3)), rng=seed, target=target,
              random_start=str(rng.choice(["uniform", "gaussian"])))
    one = pgd(linear_source(W), x, y, restarts=1, **kw)
    many = pgd(linear_source(W), x, y, restarts=restarts, **kw)
    m1, mr = margin_of(one.scores, y, target), margin_of(many.scores, y, target)
    assert not np.any(one.success & ~many.success)
    same = one.success == many.success
    assert np.all(mr[same] <= m1[same])
    assert np.all(norms_of(many.x_adv, x)[norm] <= eps)


@settings(max_examples=example_count(25))
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.sampled_from(["linf", "l2"]),
       st.sampled_from(["ce", "dlr"]), st.booleans())
def test_apgd_returns_its_highest_loss_point(seed, steps, norm, loss, targeted):
    """APGD returns the best point (highest loss) it evaluated, x⁰ included: the objective at
    x_adv is the maximum of the loss record, bit for bit, for N_iter as small as 1."""
    rng = np.random.default_rng(seed)
    B, N, C = int(rng.integers(1, 4)), int(rng.integers(1, 6)), 4
    x = _edge_x(rng, B, N)
    y = rng.integers(0, C, B)
    target = rng.integers(0, C, B) if targeted else None
    src = linear_source(rng.standard_normal((C, N)) * rng.choice([0.3, 3.0]))
    eps = float(rng.choice([0.0, 0.05, 0.3, 2.0]))
    r = apgd(src, x, y, eps=eps, norm=norm, steps=steps, loss=loss, target=target, rng=seed,
             random_start=rng.choice(["uniform", None]))
    assert r.loss.shape == (steps + 1, B)
    if loss == "ce" and target is None:
        f = src(r.x_adv, y).loss
    elif loss == "ce":
        f = src.score_loss_grad(r.x_adv, lambda s: tuple(-a for a in ce_loss(s, target))).loss
    else:
        f = src.score_loss_grad(r.x_adv, lambda s: dlr_loss(s, y, target)).loss
    np.testing.assert_array_equal(f, r.loss.max(axis=0))
    assert np.all(norms_of(r.x_adv, x)[norm] <= eps)


# --- DeepFool on samples it need not move ---------------------------------------------------------
@SMALL
@given(st.integers(0, 2**32 - 1), st.sampled_from(["l2", "linf"]))
def test_deepfool_leaves_misclassified_samples_alone(seed, norm):
    """A sample the source already misclassifies (labels drawn to be wrong, or all of them) is
    returned unchanged with a constant loss record; the others move."""
    rng = np.random.default_rng(seed)
    B, N, C = int(rng.integers(1, 5)), int(rng.integers(1, 5)), 3
    x = _edge_x(rng, B, N)
    W = rng.standard_normal((C, N))
    b = rng.standard_normal(C)
    pred = np.argmax(x @ W.T + b, axis=1)
    wrong = rng.random(B) < 0.6
    y = np.where(wrong, (pred + 1) % C, pred)
    r = deepfool(linear_source(W, b), x, y, norm=norm, steps=3)
    np.testing.assert_array_equal(r.x_adv[wrong], x[wrong])
    assert np.all(r.loss[:, wrong] == r.loss[:1, wrong])
    assert np.all(r.success[wrong])


# --- non-finite gradients ------------------------------------------------------------------------
def _spoilt_source(W, spoil, uses_rng=False):
    """Linear scores ``x Wᵀ`` whose input gradients pass through ``spoil(grad)`` (declared
    stochastic with ``uses_rng``, for EOT; the draws are not used)."""
    W = np.asarray(W, dtype=np.float64)

    def slg(x, score_loss, rng=None):
        s = x @ W.T
        loss, gs = score_loss(s)
        return loss, spoil(gs @ W), s

    return CallableSource(lambda x, y, rng=None: slg(x, lambda s: ce_loss(s, y)),
                          score_loss_grad=slg, predict=lambda x, rng=None: x @ W.T,
                          uses_rng=uses_rng)


@SMALL
@given(st.integers(0, 2**32 - 1), st.sampled_from([np.nan, np.inf, -np.inf]), st.booleans())
def test_a_non_finite_gradient_is_refused_by_every_gradient_attack(seed, bad, every_entry):
    """A step along NaN or ±inf would leave NaN pixels outside the ball and the box (found by
    review: fgsm, pgd-L∞ and rfgsm returned NaN pixels, pgd-L2 and mim did for ±inf, others
    skipped the entry): every attack that follows a gradient refuses it, naming the entry."""
    rng = np.random.default_rng(seed)
    B, N = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    x, W = _edge_x(rng, B, N), rng.standard_normal((3, N))
    y = np.argmax(x @ W.T, axis=1)  # all correct: attacks that skip wrong samples take them all
    where = (int(rng.integers(B)), int(rng.integers(N)))

    def spoil(g):
        g = np.array(g, dtype=np.float64)
        if every_entry:
            g[...] = bad
        else:
            g[where] = bad
        return g

    src = _spoilt_source(W, spoil)
    runs = _budget_attacks(src, x, y, 0.2, 1, "uniform", seed)
    runs["rfgsm-tramer"] = lambda: rfgsm(src, x, y, eps=0.2, rng=seed)
    runs["apgd-code-linf"] = lambda: apgd(src, x, y, eps=0.2, steps=2, rule="code",
                                          random_start=None)
    runs["eot_pgd"] = lambda: eot_pgd(_spoilt_source(W, spoil, uses_rng=True), x, y, eps=0.2,
                                      eot_samples=2, steps=2, rng=seed)
    runs["deepfool-l2"] = lambda: deepfool(src, x, y, steps=2)
    runs["deepfool-linf"] = lambda: deepfool(src, x, y, norm="linf", steps=2)
    G = rng.choice([-1.0, 1.0], size=(2, B, N))
    G[(0,) + where] = bad

    def seq_source(seq, lab):  # the fixed sequence gradient G, whatever the sequence
        return np.zeros(B), G.copy(), np.zeros((B, 3))

    runs["spike_attack"] = lambda: spike_attack(seq_source, np.zeros((2, B, N)), y, budget=2)
    for name, run in runs.items():
        try:
            run()
        except ValueError as exc:
            assert re.search(r"non-finite entry (nan|inf|-inf) at index", str(exc)), (name, exc)
        else:
            pytest.fail(f"{name} took the {bad} gradient")


# --- spike-domain attacks -------------------------------------------------------------------------
def _linear_seq_source(G, C=3):
    """Loss Σ G·seq per sample with the fixed sequence gradient G [T, B, N]."""
    def fn(s, y):
        f = (s * G).sum(axis=(0, 2))
        return f, G + 0 * s, np.stack([f * c for c in range(C)], axis=1)

    return fn


@settings(max_examples=example_count(30))
@given(st.integers(0, 2**32 - 1), st.integers(0, 4), st.integers(1, 3), st.booleans())
def test_spike_attack_counts_and_budget_hold_on_ties(seed, budget, per_step, with_distance):
    """Fixed gradient with ties (values in {−1, 0, 1, 2}), empty or full rasters, budget 0:
    the Hamming distance to the input is deleted + inserted + 2·shifted, the spike count moves
    by inserted − deleted, the budget (edits, or the reported distance recomputed) holds, and
    every applied edit has a positive first-order gain, so the linear objective never falls."""
    rng = np.random.default_rng(seed)
    T, B, N = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    seq = (rng.random((T, B, N)) < rng.choice([0.0, 0.4, 1.0])).astype(float)
    G = rng.choice([-1.0, 0.0, 1.0, 2.0], size=(T, B, N))
    ops = [o for o in ("delete", "insert", "shift") if rng.random() < 0.6] or ["shift"]
    y = rng.integers(0, 3, B)

    kw = dict(operations=ops, per_step=per_step, max_shift=int(rng.integers(1, 3)))
    if with_distance:
        r = spike_attack(_linear_seq_source(G), seq, y, budget=budget / 2,
                         distance=sym_diff_distance, **kw)
        d = [sum(sym_diff_distance(np.flatnonzero(seq[:, b, n]),
                                   np.flatnonzero(r.seq_adv[:, b, n])) for n in range(N))
             for b in range(B)]
        np.testing.assert_array_equal(r.distance, d)
        assert np.all(r.distance <= budget / 2)
    else:
        r = spike_attack(_linear_seq_source(G), seq, y, budget=budget, **kw)
        assert np.all(r.changes <= budget)
    np.testing.assert_array_equal((r.seq_adv != seq).sum(axis=(0, 2)),
                                  r.deleted + r.inserted + 2 * r.shifted)
    np.testing.assert_array_equal(r.seq_adv.sum(axis=(0, 2)) - seq.sum(axis=(0, 2)),
                                  r.inserted - r.deleted)
    assert set(np.unique(r.seq_adv)) <= {0.0, 1.0}
    gain = ((r.seq_adv - seq) * G).sum(axis=(0, 2))
    assert np.all(gain[r.changes > 0] > 0) and np.all(gain[r.changes == 0] == 0)
    if budget == 0:
        np.testing.assert_array_equal(r.seq_adv, seq)


@SMALL
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.3, 0.5, 1.0]),
       st.sampled_from([0.0, 0.3, 0.5, 1.0]))
def test_rand_del_is_monotone_in_p_and_per_sample(seed, p1, p2):
    """p = 0 keeps every spike, p = 1 deletes every spike; with one seed the deletions at a
    lower p are a subset of those at a higher p (one uniform draw per position, u < p); the
    counts are the spikes removed; a batch prefix is attacked as the prefix alone."""
    p1, p2 = min(p1, p2), max(p1, p2)
    rng = np.random.default_rng(seed)
    T, B, N = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 5))
    seq = (rng.random((T, B, N)) < rng.choice([0.3, 1.0])).astype(float)
    a, b = rand_del(seq, p1, rng=seed), rand_del(seq, p2, rng=seed)
    assert np.all(a.seq_adv >= b.seq_adv) and np.all(b.seq_adv <= seq)
    for r in (a, b):
        np.testing.assert_array_equal(r.deleted, (seq - r.seq_adv).sum(axis=(0, 2)))
        np.testing.assert_array_equal(r.changes, r.deleted)
    if p1 == 0:
        np.testing.assert_array_equal(a.seq_adv, seq)
    if p2 == 1:
        np.testing.assert_array_equal(b.seq_adv, 0)
    np.testing.assert_array_equal(rand_del(seq[:, :1], p2, rng=seed).seq_adv, b.seq_adv[:, :1])


# --- metrics --------------------------------------------------------------------------------------
@SMALL
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.5, 1.0]))
def test_asr_definitions_relate_on_degenerate_batches(seed, p_clean_correct):
    """"all" is 1 − adversarial accuracy; "clean_correct" counts a subset of those samples; with
    every clean sample correct they coincide; with none, the rate is NaN over 0 (documented),
    and with every adversarial sample wrong "all" is 1."""
    rng = np.random.default_rng(seed)
    B, C = int(rng.integers(1, 5)), 3
    y = rng.integers(0, C, B)
    clean = np.where(rng.random(B) < p_clean_correct, y, (y + 1) % C)
    adv = rng.integers(0, C, B)
    a = attack_success_rate(adv, y)
    c = attack_success_rate(adv, y, clean=clean, denominator="clean_correct")
    assert a.rate == 1 - accuracy(adv, y) or abs(a.rate - (1 - accuracy(adv, y))) <= 1e-15
    assert np.all(c.success <= a.success) and c.n_attack == int((clean == y).sum())
    if p_clean_correct == 1:
        assert (c.rate, c.n_success) == (a.rate, a.n_success)
    if p_clean_correct == 0:
        assert np.isnan(c.rate) and c.n_attack == 0 and not c.success.any()
    assert attack_success_rate((y + 1) % C, y).rate == 1.0


@SMALL
@given(st.integers(0, 2**32 - 1), st.integers(1, 4))
def test_stability_with_one_run_is_accuracy_and_ignores_run_order(seed, K):
    """K = 1: the mean over runs, the accuracy and the all-runs-correct fraction coincide; for
    any K the value is the mean of the run accuracies, consistent ≤ value, and permuting the
    runs changes nothing."""
    rng = np.random.default_rng(seed)
    B, C = int(rng.integers(1, 5)), 3
    y = rng.integers(0, C, B)
    runs = rng.integers(0, C, (K, B))
    s = stability(runs, y)
    if K == 1:
        assert s.value == accuracy(runs[0], y) == s.consistent
        assert set(np.unique(s.sample_fraction)) <= {0.0, 1.0}
    assert s.consistent <= s.value and s.K == K
    np.testing.assert_allclose(s.value, np.mean([accuracy(r, y) for r in runs]), rtol=1e-15)
    t = stability(runs[::-1], y)
    assert (t.value, t.consistent) == (s.value, s.consistent)


@SMALL
@given(st.integers(0, 2**32 - 1))
def test_ttfs_prediction_is_fixed_from_the_decision_step_and_sop_stops_there(seed):
    """Output rasters with ties at the first spike (two outputs firing in the same step): from
    the decision step on, the running TTFS score predicts the final label (ties to the lower
    index), TAAcc's last entry is the final accuracy for every decoder, and SOP with the
    decision times equals SOP of the rasters truncated after the decision step (all T steps
    when nothing fires)."""
    rng = np.random.default_rng(seed)
    T, B, C = int(rng.integers(1, 5)), int(rng.integers(1, 4)), 3
    out = (rng.random((T, B, C)) < rng.choice([0.0, 0.3, 0.7])).astype(float)
    y = rng.integers(0, C, B)
    d = decision_times(out)
    run = np.argmax(cumulative(out, "ttfs"), axis=2)  # [T, B]
    final = np.argmax(decode(out, "ttfs"), axis=1)
    for b in range(B):
        if d[b] >= 0:
            assert np.all(run[d[b]:, b] == final[b])
    for dec in ("rate", "ttfs", "membrane"):
        assert taacc(out, y, decoder=dec)[-1] == accuracy(decode(out, dec), y)
    inputs = [(rng.random((T, B, 3)) < 0.5).astype(float),
              (rng.random((T, B, 2, 2, 2)) < 0.5).astype(int)]
    shapes = [LayerShape.dense(3, 2), LayerShape(2, 3, 3, 2, 2)]
    r = sop(inputs, shapes, decision_times=d)
    for b in range(B):
        stop = T if d[b] < 0 else d[b] + 1
        alone = sop([a[:stop, b:b + 1] for a in inputs], shapes)
        np.testing.assert_array_equal(r.sop[:, b], alone.sop[:, 0])
        assert r.steps[b] == stop
    np.testing.assert_array_equal(sop(inputs, shapes, decision_times=np.full(B, T - 1)).sop,
                                  sop(inputs, shapes).sop)


def test_zeta_of_an_unchanged_input_is_nan_and_otherwise_sums_to_one():
    a = np.zeros((3, 2, 2))
    assert np.all(np.isnan(perturbation_distribution(a, a).zeta))
    b = a.copy()
    b[2, 1, 0] = 1.0
    np.testing.assert_array_equal(perturbation_distribution(a, b).zeta, [0.0, 0.0, 1.0])


def test_per_sample_metrics_of_an_empty_batch_regression():
    # B = 0 (e.g. no clean-correct sample left to analyse) crashed in reshape(T, 0, -1) with
    # numpy's "cannot reshape array of size 0" in the rates, SOP and the Taylor indicator;
    # they now return arrays with B = 0 columns.
    empty = np.zeros((3, 0, 4))
    assert cumulative_rate(empty).shape == (3, 0)
    assert cumulative_rate(empty, per_neuron=True).shape == (3, 0, 4)
    assert hidden_rate(empty).shape == (3, 0)
    r = sop([empty, np.zeros((3, 0, 2, 1, 1))], [LayerShape.dense(4, 2), LayerShape(2, 1, 1, 1, 1)],
            decision_times=np.zeros(0, dtype=int))
    assert r.sop.shape == (2, 0) and r.total.shape == (0,)
    assert taylor_indicator(empty, empty).shape == (0,)
    assert taylor_indicator_grid(empty, empty, empty, [0.5], [1.0, 2.0]).shape == (1, 2, 0)


def test_metrics_of_a_layer_with_no_neurons_regression():
    # N = 0: hidden_rate divided 0 spikes by 0 neurons (NaN and a RuntimeWarning), and SOP's ξ
    # likewise for a conv raster with an empty map; both now refuse it by name.
    with pytest.raises(ValueError, match=r"spikes has no neurons \(shape \(2, 1, 0\)\)"):
        hidden_rate(np.zeros((2, 1, 0)))
    with pytest.raises(ValueError, match=r"inputs\[0\] has shape \(2, 1, 2, 0, 1\), no neurons"):
        sop([np.zeros((2, 1, 2, 0, 1))], [LayerShape(2, 1, 1, 1, 1)])


# --- labels beyond the classes --------------------------------------------------------------------
_Y_1BASED = np.array([1, 3])  # class indices counted from 1: 3 is past the 3 classes
_Y_OK = np.array([0, 1])
_1BASED_HINT = r"; labels are 0-based class indices in \[0, 2\] \(subtract 1 from 1-based labels\)"


def _beyond(arg, of="the source's output"):
    """The full message for the label 3 of argument ``arg`` against 3 classes of ``of``."""
    return rf"^{arg} holds the label 3 but {of} has 3 classes" + _1BASED_HINT + "$"


# every attack that takes labels, as run(source, x, y, target); None: the attack takes no target
_LABEL_ATTACKS = {
    "fgsm": lambda s, x, y, t: fgsm(s, x, y, eps=0.1, target=t, rng=0),
    "bim": lambda s, x, y, t: bim(s, x, y, eps=0.1, steps=1, target=t, rng=0),
    "pgd": lambda s, x, y, t: pgd(s, x, y, eps=0.1, steps=1, target=t, rng=0),
    "pgd-l0-code": lambda s, x, y, t: pgd(s, x, y, eps=1, norm="l0", rule="code", steps=2,
                                          target=t, rng=0),
    "mim": lambda s, x, y, t: mim(s, x, y, eps=0.1, steps=1, target=t, rng=0),
    "rfgsm": lambda s, x, y, t: rfgsm(s, x, y, eps=0.1, target=t, rng=0),
    "apgd-ce": lambda s, x, y, t: apgd(s, x, y, eps=0.1, steps=1, target=t, rng=0),
    "apgd-dlr": lambda s, x, y, t: apgd(s, x, y, eps=0.1, steps=1, loss="dlr", rng=0),
    "apgd-ce-code": lambda s, x, y, t: apgd(s, x, y, eps=0.1, steps=1, rule="code", rng=0),
    "deepfool": lambda s, x, y, t: deepfool(s, x, y, rng=0),
}
_UNTARGETED = {"apgd-dlr", "apgd-ce-code", "deepfool"}  # targeted DLR needs 4 classes
_LABEL_CASES = [(a, arg) for a in sorted(_LABEL_ATTACKS)
                for arg in (("y",) if a in _UNTARGETED else ("y", "target"))]


def _labels_for(arg):
    """(y, target) with the label 3 in argument ``arg``."""
    return (_Y_1BASED, None) if arg == "y" else (_Y_OK, _Y_1BASED)


@pytest.mark.parametrize("name, arg", _LABEL_CASES)
def test_attack_labels_beyond_the_classes_are_refused_regression(name, arg):
    # 1-based labels (y = C) crashed with numpy's "index 3 is out of bounds for axis 1 with
    # size 3"; then the score losses refused them as "labels holds the label 3 but scores has
    # 3 classes", their own names: now the attack names its argument and the source's output
    y, t = _labels_for(arg)
    with pytest.raises(ValueError, match=_beyond(arg)):
        _LABEL_ATTACKS[name](linear_source(np.eye(3)), np.full((2, 3), 0.5), y, t)


def _never_called(*args, **kwargs):
    raise AssertionError("the source's loss was computed")


class _UndeclaredLinear(GradientSource):
    """A linear model of 3 classes that does not declare them: the cross-entropy of its
    ``__call__`` (the base class's) is taken from the scores ``score_loss_grad`` computes."""

    def score_loss_grad(self, x, score_loss, *, rng=None):
        s = x @ np.eye(3).T
        loss, g = score_loss(s)
        return SourceOutput(loss, g @ np.eye(3), s)


def _undeclared_noisy(W):
    """A stochastic linear model (per-sample weight noise from the attack's streams) with every
    capability but ``n_out``."""
    def slg(x, score_loss, rng):
        Ws = np.stack([W + 0.5 * g.standard_normal(W.shape) for g in rng])
        s = np.einsum("bcn,bn->bc", Ws, x)
        loss, gs = score_loss(s)
        return loss, np.einsum("bc,bcn->bn", gs, Ws), s

    return CallableSource(lambda x, y, rng: slg(x, lambda s: ce_loss(s, y), rng),
                          score_loss_grad=slg, predict=lambda x, rng: x @ W.T, uses_rng=True)


def _label_sources():
    """Sources of 3 classes whose labels are refused before any loss value exists: declared
    (``n_out``: SNNSource, ann_source, a MixedSource of them), else on their first answer,
    whose loss (evsnn's, which refuses the labels and tells the class count) never returns;
    none is asked for an extra ``predict`` (there is no probe)."""
    net = Network.mlp([3, 3], LIF(lam=0.9, theta=0.5), rng=0, scale=2.0)
    W = np.eye(3)
    return {
        "snn": SNNSource(net, T=3, encoder="current"),
        "ann": ann_source(ANN([W])),
        "mixed": MixedSource(0.5, ann_source(ANN([W])), linear_source(W)),
        "undeclared-fn": linear_source(W),
        "undeclared-subclass": _UndeclaredLinear(),
        "undeclared-stochastic": _undeclared_noisy(W),
        "undeclared-mixed": MixedSource(0.5, linear_source(W), _UndeclaredLinear()),
    }


@pytest.mark.parametrize("kind", sorted(_label_sources()))
@pytest.mark.parametrize("name, arg", _LABEL_CASES)
def test_attack_labels_are_refused_before_any_loss(kind, name, arg):
    # the message is the attack's whatever the source, and comes before any loss value: the
    # declared classes at entry, else the refusal of the source's own loss renamed (the
    # predict probe that used to run first is gone: tests/test_attack_labels.py)
    y, t = _labels_for(arg)
    with pytest.raises(ValueError, match=_beyond(arg)):
        _LABEL_ATTACKS[name](_label_sources()[kind], np.full((2, 3), 0.5), y, t)


@pytest.mark.parametrize("name, arg", _LABEL_CASES)
def test_attack_labels_of_a_bare_source_are_checked_on_its_first_scores(name, arg):
    # a bare fn(x, y) / score_loss_grad source cannot tell its classes before it answers; one
    # that ignores the labels (no loss of its own indexes by them) is refused on its first scores
    W = np.eye(3)

    def slg(x, score_loss):
        return np.zeros(len(x)), np.zeros_like(x), x @ W.T

    src = CallableSource(lambda x, y: slg(x, None), score_loss_grad=slg)
    y, t = _labels_for(arg)
    # APGD's rule="code" first evaluates the model on the clean x: without model= that is the
    # source, named as such (it was "the model's output" when a predict probe ran first for
    # the sources that have predict and this path was reached only by those without)
    with pytest.raises(ValueError, match=_beyond(arg)):
        _LABEL_ATTACKS[name](src, np.full((2, 3), 0.5), y, t)


@pytest.mark.parametrize("arg", ["y", "target"])
def test_eot_pgd_labels_beyond_the_classes_are_refused(arg):
    y, t = _labels_for(arg)
    with pytest.raises(ValueError, match=_beyond(arg)):
        eot_pgd(noisy_linear_source(np.eye(3)), np.full((2, 3), 0.5), y, eps=0.1, steps=1,
                eot_samples=2, target=t, rng=0)


@pytest.mark.parametrize("arg", ["y", "target"])
def test_one_pixel_labels_beyond_the_classes_are_refused(arg):
    y, t = _labels_for(arg)
    with pytest.raises(ValueError, match=_beyond(arg, "the model's output")):
        one_pixel(linear_source(np.eye(3)), np.full((2, 3), 0.5), y, target=t, popsize=5,
                  maxiter=1, rng=0)


@pytest.mark.parametrize("arg", ["y", "target"])
def test_an_evaluated_model_with_fewer_classes_refuses_the_labels(arg):
    # a 4-class source and a 3-class model: the source takes label 3, the model cannot predict
    # it (success would silently be counted as "prediction differs" / "never the target")
    y, t = _labels_for(arg)
    with pytest.raises(ValueError, match=_beyond(arg, "the model's output")):
        pgd(linear_source(np.eye(4, 3)), np.full((2, 3), 0.5), y, eps=0.1, steps=1,
            target=t, model=lambda x: x @ np.eye(3), rng=0)


@pytest.mark.parametrize("arg", ["y", "target"])
@pytest.mark.parametrize("kind", ["snn", "fn"])
def test_spike_attack_labels_beyond_the_classes_are_refused(kind, arg):
    net = Network.mlp([3, 3], LIF(lam=0.9, theta=0.5), rng=0, scale=2.0)
    if kind == "snn":
        src = SNNSource(net, T=3, encoder="current")
    else:  # a callable tells its classes in its first answer (this one ignores the labels)
        def src(seq, lab):
            return np.zeros(seq.shape[1]), np.zeros_like(seq), seq.sum(axis=0) @ np.eye(3)
    y, t = _labels_for(arg)
    with pytest.raises(ValueError, match=_beyond(arg)):
        spike_attack(src, np.ones((3, 2, 3)), y, budget=1, target=t)


def test_rand_del_labels_beyond_the_classes_are_refused():
    # the model's scores index nothing by y: label 3 was silently counted as a success
    with pytest.raises(ValueError, match=_beyond("y", "the model's output")):
        rand_del(np.ones((3, 2, 3)), 0.5, rng=0, model=lambda s: s.sum(axis=0), y=_Y_1BASED)


def test_an_undeclared_stochastic_source_gives_the_declared_result():
    # a stochastic source without n_out was probed with predict on copies of the streams; it
    # is no longer probed at all: the attack's result is that of the same source declaring n_out
    W = np.array([[1.0, -1.0, 0.5], [-0.5, 1.0, 0.0], [0.0, 0.3, -1.0]])

    def slg(x, score_loss, rng):
        Ws = np.stack([W + 0.5 * g.standard_normal(W.shape) for g in rng])
        s = np.einsum("bcn,bn->bc", Ws, x)
        loss, gs = score_loss(s)
        return loss, np.einsum("bc,bcn->bn", gs, Ws), s

    def predict(x, rng):
        return slg(x, lambda s: (np.zeros(len(s)), np.zeros_like(s)), rng)[2]

    def make(n_out=None):
        return CallableSource(lambda x, y, rng: slg(x, lambda s: ce_loss(s, y), rng),
                              score_loss_grad=slg, predict=predict, uses_rng=True, n_out=n_out)

    declared = make(n_out=3)
    x, y = np.full((2, 3), 0.5), np.array([0, 1])
    probed = pgd(make(), x, y, eps=0.2, steps=3, rng=5)
    plain = pgd(declared, x, y, eps=0.2, steps=3, rng=5)
    np.testing.assert_array_equal(probed.x_adv, plain.x_adv)
    np.testing.assert_array_equal(probed.loss, plain.loss)


def test_mixed_source_of_models_with_different_classes_is_refused_regression():
    # a 4-class a and a 3-class b: label 3 passed the check against a's n_out, then b's loss
    # refused it as "labels holds the label 3 but scores has 3 classes" (its own names; DeepFool
    # even with valid labels, asking b for a's class 3); with labels below both counts the mix of
    # two models' losses ran silently. Found by the random-profile hunt's probing.
    a, b = ann_source(ANN([np.eye(4, 3)])), ann_source(ANN([np.eye(3)]))
    with pytest.raises(ValueError, match=r"^MixedSource's a and b have 4 and 3 classes \(their "
                                         r"n_out\); the mixed gradient \(HART Eq\. A6\) is of "
                                         r"two sources of one model: pass a and b with the same "
                                         r"outputs$"):
        MixedSource(0.5, a, b)
    # sources that do not declare n_out: refused at the first call, from their scores
    mix = MixedSource(0.5, linear_source(np.eye(3)), linear_source(np.eye(4, 3)))
    x, y = np.full((2, 3), 0.5), np.array([0, 2])
    for run in (lambda: pgd(mix, x, y, eps=0.1, steps=1, random_start=None),
                lambda: apgd(mix, x, y, eps=0.1, steps=1, loss="dlr", random_start=None),
                lambda: deepfool(mix, x, y, steps=1)):
        with pytest.raises(ValueError, match=r"^MixedSource's a and b have 3 and 4 classes "
                                             r"\(the widths of their scores\)"):
            run()


def test_uint64_labels_past_int64_are_named_as_given_regression():
    # np.uint64(2**63) became int64 -2**63 in the first label check: the attacks then refused
    # "the negative label -9223372036854775808" and one_pixel raised numpy's IndexError. Found
    # by the random-profile hunt's probing.
    y = np.array([0, 2**63], dtype=np.uint64)
    x = np.full((2, 3), 0.5)
    match = r"^y holds the label 9223372036854775808, past int64's maximum; labels are 0-based"
    for run in (lambda: fgsm(linear_source(np.eye(3)), x, y, eps=0.1),
                lambda: deepfool(linear_source(np.eye(3)), x, y, steps=1),
                lambda: one_pixel(lambda z: z @ np.eye(3), x, y, popsize=5, maxiter=1, rng=0)):
        with pytest.raises(ValueError, match=match):
            run()
    # the largest int64 still passes the first check (and is refused against the classes)
    big = np.array([0, 2**63 - 1], dtype=np.uint64)
    with pytest.raises(ValueError, match=r"^y holds the label 9223372036854775807 but the "
                                         r"source's output has 3 classes"):
        fgsm(linear_source(np.eye(3)), x, big, eps=0.1)


def test_metric_labels_beyond_the_classes_are_refused_regression():
    # with scores [B, C] a label >= C can never be predicted: accuracy, ASR, stability and
    # TAAcc silently counted it as wrong (1-based labels gave accuracy ~0 without a word)
    scores, y = np.eye(3)[:2], _Y_1BASED
    hint = r"labels are 0-based class indices in \[0, 2\] \(subtract 1 from 1-based labels\)"
    with pytest.raises(ValueError, match=r"y holds the label 3 but scores has 3 classes; " + hint):
        accuracy(scores, y)
    with pytest.raises(ValueError, match=r"y holds the label 3 but adv has 3 classes"):
        attack_success_rate(scores, y)
    with pytest.raises(ValueError, match=r"y holds the label 3 but clean has 3 classes"):
        attack_success_rate([0, 1], y, clean=scores, denominator="clean_correct")
    with pytest.raises(ValueError, match=r"y holds the label 3 but runs\[0\] has 3 classes"):
        stability(scores[None], y)
    with pytest.raises(ValueError, match=r"y holds the label 3 but outputs has 3 classes"):
        taacc(np.ones((2, 2, 3)), y)
    # integer predictions carry no class count: nothing to check, as before
    assert accuracy(np.array([1, 3]), y) == 1.0


@pytest.mark.parametrize("make", ["snn_batch_mean", "ann"])
def test_attacks_on_an_empty_batch_return_empty_results(make):
    # the batch-mean losses refuse B = 0; the sources that go through them (SNNSource with
    # input_only=False, ann_source) answer an empty batch with empty per-sample arrays
    if make == "ann":
        src = ann_source(ANN([np.ones((4, 6))]))
    else:
        net = Network.mlp([6, 8, 4], LIF(lam=0.9, theta=0.5), rng=3, scale=2.5)
        src = SNNSource(net, T=4, encoder="current", input_only=False)
    x, y = np.zeros((0, 6)), np.zeros(0, dtype=np.int64)
    out = src(x, y)
    assert out.loss.shape == (0,) and out.grad.shape == (0, 6) and out.scores.shape == (0, 4)
    for r in (fgsm(src, x, y, eps=0.1), pgd(src, x, y, eps=0.1, steps=2, rng=0),
              apgd(src, x, y, eps=0.1, steps=2, rng=0)):
        assert r.x_adv.shape == (0, 6) and r.success.shape == (0,)


@pytest.mark.parametrize("encoder", ["current", "ttfs", "poisson"])
def test_snn_source_reads_float16_pixels_as_float32(encoder):
    # the encoders refused float16, so every attack on float16 pixels (which the attacks take,
    # returning x_adv in float16) failed through an SNNSource; they read them as float32
    net = Network.mlp([6, 8, 4], LIF(lam=0.9, theta=0.5), rng=3, scale=2.5)
    src = SNNSource(net, T=6, encoder=encoder)
    x16 = np.random.default_rng(0).random((3, 6)).astype(np.float16)
    y = np.array([0, 1, 2])
    got, want = src(x16, y, rng=1), src(x16.astype(np.float32), y, rng=1)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    r = pgd(src, x16, y, eps=0.1, steps=2, rng=0)
    assert r.x_adv.dtype == np.float16 and np.all(r.norms["linf"] <= 0.1)


_HUGE_EPS = {
    # a finite eps whose derived step overflowed: the iterates became NaN or numpy raised
    # "high - low range exceeds valid bounds" (OverflowError) drawing the uniform start
    "pgd": (lambda s, x, y: pgd(s, x, y, eps=1e308, steps=3, rng=0), r"the step 2.5·eps/steps"),
    "pgd-l2": (lambda s, x, y: pgd(s, x, y, eps=1e308, norm="l2", rng=0),
               r"the step 2.5·eps/steps"),
    "bim": (lambda s, x, y: bim(s, x, y, eps=1e308), r"the step 2.5·eps/steps"),
    "pgd-alpha": (lambda s, x, y: pgd(s, x, y, eps=1e308, alpha=0.1, rng=0),
                  r"the random start's width 2·eps"),
    "apgd": (lambda s, x, y: apgd(s, x, y, eps=1e308, steps=3, rng=0), r"the first step 2·eps"),
    "apgd-l2": (lambda s, x, y: apgd(s, x, y, eps=1e308, norm="l2", rng=0),
                r"the first step 2·eps"),
    "rfgsm-wong": (lambda s, x, y: rfgsm(s, x, y, eps=1.5e308, variant="wong", rng=0),
                   r"the step 1.25·eps"),
}


@pytest.mark.parametrize("name", sorted(_HUGE_EPS))
def test_attacks_refuse_an_eps_whose_derived_step_overflows_regression(name):
    run, what = _HUGE_EPS[name]
    x, y = np.full((2, 3), 0.5), np.array([0, 1])
    eps = r"1\.5e\+308" if name == "rfgsm-wong" else r"1e\+308"
    with pytest.raises(ValueError, match=rf"^eps={eps} is too large: {what}.* overflows to inf; "
                                         r"pass a smaller eps"):
        run(linear_source(np.eye(3)), x, y)


def test_attacks_keep_an_eps_above_one_whose_steps_are_finite():
    # eps > 1 is legal for L∞ (the box clips): 1e300 steps to the box corners
    src, x, y = linear_source(np.eye(3)), np.full((2, 3), 0.5), np.array([0, 1])
    for r in (pgd(src, x, y, eps=1e300, steps=2, rng=0), apgd(src, x, y, eps=1e300, rng=0),
              rfgsm(src, x, y, eps=1e300, variant="wong", rng=0), bim(src, x, y, eps=2.0)):
        assert np.all(np.isfinite(r.x_adv)) and np.all((r.x_adv >= 0) & (r.x_adv <= 1))


def _uniform_start(x, eps, norm, seeds):
    """random_start's uniform start around ``x``, sample b drawn from default_rng(seeds[b])."""
    return random_start(x, eps, norm, "uniform", None, [np.random.default_rng(s) for s in seeds])


def _l1_start_as_drawn_before(x, eps, seeds):
    """The uniform L1 start as random_start drew it before the overflow guard: per sample,
    E_1..E_{N+1} exponentials and N signs from the sample's stream, x + eps·s·E_i / ΣE, then the
    L1 projection into ball and box."""
    B, N = x.shape
    z = np.empty((B, N))
    for b, seed in enumerate(seeds):
        g = np.random.default_rng(seed)
        e = g.standard_exponential(N + 1)
        signs = np.where(g.random(N) < 0.5, -1.0, 1.0)
        z[b] = x[b] + eps * signs * e[:N] / e.sum()
    return project(z, x, eps, "l1")


def test_l1_uniform_start_near_the_float_maximum_is_warning_free_regression():
    # was: eps·e overflowed before the division by Σe, a RuntimeWarning (an error under the
    # suite's filterwarnings) although the projected start was right. The guard changes only
    # starts whose eps·e overflows: an ordinary eps gives the same bits as before
    x = np.random.default_rng(5).random((4, 7))
    seeds = [11, 12, 13, 14]
    for eps in (0.3, 2.0, 1e300):
        got = _uniform_start(x, eps, "l1", seeds)
        assert np.array_equal(got, _l1_start_as_drawn_before(x, eps, seeds))
    for eps in (1.7e308, float(np.finfo(np.float64).max)):
        z = _uniform_start(x, eps, "l1", seeds)
        assert np.all((z >= 0) & (z <= 1)) and np.all(norms_of(z, x)["l1"] <= eps)
        r = pgd(linear_source(np.eye(7)), x, np.arange(4), eps=eps, norm="l1", alpha=0.5,
                steps=2, rng=0)
        assert np.all((r.x_adv >= 0) & (r.x_adv <= 1)) and np.all(r.norms["l1"] <= eps)


def test_linf_uniform_start_near_the_float_maximum_regression():
    # was: NumPy's uniform(−ε, ε) refused the range 2ε (OverflowError "high - low range exceeds
    # valid bounds") for ε above half the float maximum. Such starts are now drawn as
    # 2·U(−ε/2, ε/2), the same bits; every other ε draws as before
    x = np.random.default_rng(5).random((4, 7))
    seeds = [11, 12, 13, 14]
    for eps in (0.3, 2.0, 1e300, 8e307):
        got = _uniform_start(x, eps, "linf", seeds)
        before = [x[b] + np.random.default_rng(s).uniform(-eps, eps, 7)
                  for b, s in enumerate(seeds)]
        assert np.array_equal(got, np.clip(np.array(before), 0.0, 1.0))
        halved = [x[b] + 2.0 * np.random.default_rng(s).uniform(-eps / 2, eps / 2, 7)
                  for b, s in enumerate(seeds)]
        assert np.array_equal(np.array(before), np.array(halved))  # the identity relied on
    for eps in (1.7e308, float(np.finfo(np.float64).max)):
        z = _uniform_start(x, eps, "linf", seeds)
        assert np.all((z >= 0) & (z <= 1)) and not np.array_equal(z, x)


def test_gaussian_start_that_overflows_is_refused_regression():
    # was: σ·N(0, 1) overflowed (a RuntimeWarning) and the L2 projection then divided by an
    # infinite norm; now a ValueError names σ, eps and the fix
    x = np.random.default_rng(5).random((2, 7))
    with pytest.raises(ValueError, match="start_sigma"):
        pgd(linear_source(np.eye(7)), x, np.arange(2), eps=1.7e308, norm="linf", alpha=0.5,
            steps=1, random_start="gaussian", rng=0)


def test_l2_projection_of_a_point_beyond_the_float_maximum_regression():
    # was: ‖z − x‖ overflowed to inf, eps/inf = 0 collapsed the point onto x (and warned);
    # the direction is kept as for the same direction at an ordinary distance
    x = np.full((1, 3), 0.5)
    far = project_l2(x + np.array([[1.5e308, -1.5e308, 1e300]]), x, 0.1)
    near = project_l2(x + np.array([[1.5, -1.5, 1e-8]]), x, 0.1)
    np.testing.assert_allclose(far, near, rtol=1e-15)
    assert not np.array_equal(far, x)


# --- CallableSource(n_out=) ----------------------------------------------------------------------
@pytest.mark.parametrize("n_out, exc, match", [
    (0, ValueError, r"^n_out=0 must be an integer >= 1 \(classes\)$"),
    (2.0, TypeError, r"^n_out must be an integer \(classes\), got float 2\.0$"),
    (True, TypeError, r"^n_out must be an integer \(classes\), got bool True$"),
])
def test_callable_source_n_out_is_validated(n_out, exc, match):
    with pytest.raises(exc, match=match):
        CallableSource(lambda x, y: None, n_out=n_out)


def test_callable_source_scores_of_another_width_than_n_out_are_refused():
    W = np.eye(3)

    def fn(x, y):
        return np.zeros(len(x)), np.zeros_like(x), x @ W.T

    def slg(x, score_loss):
        return fn(x, None)

    src = CallableSource(fn, score_loss_grad=slg, predict=lambda x: x @ W.T, n_out=4)
    x, y = np.full((2, 3), 0.5), np.array([0, 1])
    for name, call in (("fn", lambda: src(x, y)),
                       ("score_loss_grad", lambda: src.score_loss_grad(x, None)),
                       ("predict", lambda: src.predict(x))):
        with pytest.raises(ValueError, match=rf"^{name} returned scores of 3 classes but the "
                                             r"source declares n_out=4; "):
            call()


def test_a_declared_n_out_spares_the_predict_probe():
    # labels are checked against n_out: predict is never called for the check (an attack whose
    # success is evaluated on the source's scores calls it only after the steps)
    W = np.eye(3)
    calls = []

    def predict(x):
        calls.append(len(x))
        return x @ W.T

    src = CallableSource(_never_called, score_loss_grad=_never_called, predict=predict, n_out=3)
    with pytest.raises(ValueError, match=_beyond("y")):
        pgd(src, np.full((2, 3), 0.5), _Y_1BASED, eps=0.1, steps=1, rng=0)
    assert calls == []


def test_mixed_source_takes_the_declared_classes_of_either_source():
    W = np.eye(3)
    bare = linear_source(W)
    assert bare.n_out is None
    assert MixedSource(0.5, bare, ann_source(ANN([W]))).n_out == 3
    assert MixedSource(0.5, ann_source(ANN([W])), bare).n_out == 3
    assert MixedSource(0.5, bare, linear_source(W)).n_out is None


def test_class_grad_names_k_regression():
    # review (/tmp/rev_src/f1_class_grad_msgs.py): a bad k was reported as "labels holds ...
    # but scores has", or NumPy's broadcast message, after the model had run
    W = np.random.default_rng(0).standard_normal((4, 3))
    x = np.full((3, 3), 0.5)
    calls = []

    def slg(z, score_loss):
        calls.append(len(z))
        s = z @ W.T
        loss, gs = score_loss(s)
        return loss, gs @ W, s

    declared = CallableSource(lambda z, y: slg(z, lambda s: ce_loss(s, y)), score_loss_grad=slg,
                              n_out=4)
    with pytest.raises(ValueError, match=r"^k holds the label 4 but the source's output has 4 "
                                         r"classes"):
        declared.class_grad(x, 4)
    with pytest.raises(ValueError, match=r"^k must be one class index or one per sample \(3\), "
                                         r"got shape \(2,\)"):
        declared.class_grad(x, [0, 1])
    with pytest.raises(TypeError, match=r"^k must hold integer class labels"):
        declared.class_grad(x, 1.5)
    assert calls == []  # all refused before the model ran
    undeclared = CallableSource(lambda z, y: slg(z, lambda s: ce_loss(s, y)),
                                score_loss_grad=slg)
    with pytest.raises(ValueError, match=r"^k holds the label 4 but scores has 4 classes"):
        undeclared.class_grad(x, 4)
    out = declared.class_grad(x, [0, 1, 3])
    np.testing.assert_array_equal(out.grad, W[[0, 1, 3]])
