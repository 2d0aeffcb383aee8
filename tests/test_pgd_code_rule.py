"""``pgd(..., rule="code")``: the L1 and L0 attacks of Ding 2025's repository
(DingJianhao/SNNEnhancingRobustness, ``global_tools/attack/pgdl1.py`` and ``pgdl0.py``).

The oracles below are NumPy transcriptions of those two files, written for these tests, in the
code's own order of operations (batched, the L0 projection in the code's (B, H·W, C) layout).
Two choices of evsnn are shared with them and documented in :func:`evsnn.attacks.pgd`: the
random start's ray ``U(0, ε)`` is drawn per sample (the code draws one for the batch), and
``torch.topk``'s choice among tied ``|g|`` (unspecified) is the lower index. The random numbers
are drawn from the per-sample streams in the order the attack documents.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ATOL_TWIN, RTOL_HAND, RTOL_TWIN
from hypothesis import given, settings
from hypothesis import strategies as st
from reference.helpers import example_count

from evsnn.attacks import CallableSource, SNNSource, pgd
from evsnn.attacks._common import topk_sign_direction
from evsnn.attacks.projections import _l0_box_keep_ties, project_l1, project_l1_ball
from evsnn.clock import Network
from evsnn.params import LIF

# project_l1 finds its threshold by bisection to float resolution (about N ulps of the O(1)
# offsets); the sort-based threshold is exact up to the cumulative sum's rounding.
ATOL_L1_BISECTION = 1e-12


# --- toy sources: any real input (the code's L1 gradient points leave the box) ----------------
def _linear(w):
    w = np.asarray(w, dtype=np.float64)

    def fn(x, y):
        f = x @ w
        return f, np.tile(w, (len(x), 1)), np.stack([f, -f], 1)

    return fn


def _quadratic(q, c):
    """loss Σ q_i (x_i − c_i)², q of either sign (a maximum, a minimum or a saddle)."""
    q, c = np.asarray(q, dtype=np.float64), np.asarray(c, dtype=np.float64)

    def fn(x, y):
        d = x - c
        f = (q * d * d).sum(1)
        return f, 2 * q * d, np.stack([f, -f], 1)

    return fn


# --- the oracles: pgdl1.py and pgdl0.py transcribed ---------------------------------------------
def _duchi_rows(v, z):
    """batch_l1_proj_flat: rows with ‖v‖₁ > z projected onto the L1 ball by sorting."""
    out = v.copy()
    for b in range(v.shape[0]):
        if not np.abs(v[b]).sum() > z:
            continue
        mu = sorted(np.abs(v[b]), reverse=True)
        st_, cs = [], 0.0
        for j, m in enumerate(mu):
            cs += m
            st_.append((cs - z) / (j + 1))
        run = 0
        while run < len(mu) and mu[run] - st_[run] > 0:
            run += 1
        theta = st_[max(run, 1) - 1]  # the code indexes st[run − 1]
        out[b] = np.maximum(np.abs(v[b]) - theta, 0.0) * np.sign(v[b])
    return out


def _pgdl1_code(fn, x, eps, alpha, steps, sparsity, starts):
    """PGDL1.forward; ``starts`` = per sample (laplace [N], ray) or None."""
    B, N = x.shape
    delta = np.zeros_like(x)
    if starts is not None:
        for b, (lap, ray) in enumerate(starts):
            delta[b] = lap * (1.0 / max(np.abs(lap).sum(), 1e-6)) * ray
        delta = np.clip(x + delta, 0, 1) - x
    m = int(np.round((1 - sparsity) * N))
    adv, losses = x.copy(), []
    for _ in range(steps):
        loss, g = fn(adv, None)[:2]
        losses.append(loss)
        d = np.zeros_like(g)
        for b in range(B):
            for i in sorted(range(N), key=lambda i: (-abs(g[b, i]), i))[:m]:
                d[b, i] = np.sign(g[b, i]) * (abs(g[b, i]) > 0)
        d = d * (1.0 / np.maximum(np.abs(d).sum(1), 1e-6))[:, None]
        delta = delta + alpha * d
        delta = _duchi_rows(delta, eps)
        delta = np.clip(x + delta, 0, 1) - x
        adv = adv + delta
    return np.clip(x + delta, 0, 1), np.array(losses).reshape(steps, B)


def _project_L0_box(y, k, lb, ub, C):
    """project_L0_box on rows flattened channel-major, in the code's (B, H·W, C) layout."""
    B, N = y.shape
    P = N // C

    def hwc(v):
        return v.reshape(B, C, P).transpose(0, 2, 1)

    yy, lo, hi = hwc(y), hwc(lb), hwc(ub)
    p1 = np.sum(yy ** 2, axis=-1)
    p2 = np.minimum(np.minimum(hi - yy, yy - lo), 0)
    p2 = np.sum(p2 ** 2, axis=-1)
    p3 = np.sort(p1 - p2, axis=1)[:, -k]
    xx = yy * ((lo <= yy) & (yy <= hi)) + lo * (lo > yy) + hi * (yy > hi)
    xx = xx * ((p1 - p2) >= p3[:, None])[..., None]
    return xx.transpose(0, 2, 1).reshape(B, N)


def _pgdl0_code(fn, x, k, step, steps, C, start, jitters):
    """PGDL0.forward; ``start`` [B, N] the U(−κ, κ) draws or None, ``jitters[i − 1]`` the
    U[0, 1) draws of iteration i."""
    adv = x.copy()
    if start is not None:
        adv = np.clip(adv + start, 0, 1)
    losses = []
    for i in range(steps):
        if i > 0:
            loss, g = fn(adv, None)[:2]
            losses.append(loss)
            g = g / (1e-10 + np.sum(np.abs(g), axis=1).reshape(-1, 1))
            adv = adv + (jitters[i - 1] - 0.5) * 1e-12 + step * g
        adv = x + _project_L0_box(adv - x, k, -x, 1.0 - x, C)
    return adv, np.array(losses).reshape(steps - 1, x.shape[0])


def _streams(seed, B):
    return np.random.default_rng(seed).spawn(B)


# --- hypothesis cases ---------------------------------------------------------------------------
_PIXELS = st.sampled_from([0.0, 1.0, 0.25, 0.5, 0.9375])  # pinned at 0 / 1, and inside
_TIED = st.sampled_from([-2.0, -1.0, 0.0, 0.0, 1.0, 2.0])  # repeated values: ties, zeros


@st.composite
def _source_fn(draw, N):
    kind = draw(st.sampled_from(["linear", "quadratic", "zero"]))
    if kind == "zero":
        return _linear(np.zeros(N))
    w = draw(st.lists(_TIED, min_size=N, max_size=N))
    if kind == "linear":
        return _linear(w)
    c = draw(st.lists(_PIXELS, min_size=N, max_size=N))
    return _quadratic(np.array(w) * 0.75, c)


@settings(max_examples=example_count(60))
@given(data=st.data(), B=st.integers(1, 3), N=st.integers(1, 6), start=st.booleans(),
       eps=st.sampled_from([0.0, 0.1, 0.4, 1.0, 3.0]), steps=st.integers(1, 5),
       sparsity=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]),
       alpha=st.sampled_from([0.05, 0.3, 1.0]), seed=st.integers(0, 2**16))
def test_l1_code_rule_is_pgdl1_transcribed(data, B, N, start, eps, steps, sparsity, alpha,
                                           seed):
    fn = data.draw(_source_fn(N))
    x = np.array(data.draw(st.lists(_PIXELS, min_size=B * N, max_size=B * N))).reshape(B, N)
    r = pgd(CallableSource(fn), x, np.zeros(B, dtype=int), eps=eps, norm="l1", alpha=alpha,
            steps=steps, l1_quantile=sparsity, random_start="uniform" if start else None,
            rule="code", rng=seed)
    starts = None
    if start:
        starts = [(g.laplace(0.0, 1.0, N), g.uniform(0.0, eps)) for g in _streams(seed, B)]
    want_x, want_loss = _pgdl1_code(fn, x, eps, alpha, steps, sparsity, starts)
    np.testing.assert_allclose(r.x_adv, want_x, rtol=RTOL_TWIN, atol=ATOL_TWIN)
    np.testing.assert_allclose(r.loss, want_loss, rtol=RTOL_TWIN, atol=ATOL_TWIN)
    assert np.all(r.norms["l1"] <= eps) and np.all((r.x_adv >= 0) & (r.x_adv <= 1))


@settings(max_examples=example_count(60))
@given(data=st.data(), B=st.integers(1, 3), P=st.integers(1, 4), C=st.integers(1, 2),
       start=st.booleans(), steps=st.integers(1, 4), step=st.sampled_from([0.1, 1.0, 500.0, 1e6]),
       kappa=st.sampled_from([0.0, 0.5, 2.0]), seed=st.integers(0, 2**16))
def test_l0_code_rule_is_pgdl0_transcribed(data, B, P, C, start, steps, step, kappa, seed):
    N = C * P
    k = data.draw(st.integers(1, P))
    fn = data.draw(_source_fn(N))
    x = np.array(data.draw(st.lists(_PIXELS, min_size=B * N, max_size=B * N))).reshape(B, N)
    r = pgd(CallableSource(fn), x, np.zeros(B, dtype=int), eps=k, norm="l0", alpha=step,
            steps=steps, start_sigma=kappa, channels=C,
            random_start="uniform" if start else None, rule="code", rng=seed)
    gens = _streams(seed, B)
    u0 = np.stack([g.uniform(-kappa, kappa, N) for g in gens]) if start else None
    jit = [np.stack([g.random(N) for g in gens]) for _ in range(steps - 1)]
    want_x, want_loss = _pgdl0_code(fn, x, k, step, steps, C, u0, jit)
    np.testing.assert_allclose(r.x_adv, want_x, rtol=RTOL_TWIN, atol=ATOL_TWIN)
    np.testing.assert_allclose(r.loss, want_loss, rtol=RTOL_TWIN, atol=ATOL_TWIN)
    assert np.all((r.x_adv >= 0) & (r.x_adv <= 1))


# --- the pieces -----------------------------------------------------------------------------------
@given(v=st.lists(st.floats(-0.45, 0.45), min_size=1, max_size=7),
       eps=st.sampled_from([0.0, 0.05, 0.2, 0.45]))
def test_l1_ball_sort_projection_is_the_exact_one_where_the_box_does_not_bind(v, eps):
    # around x = 0.5 an offset of L1 norm ≤ 0.45 stays in the box, so the exact ball ∩ box
    # projection (project_l1, bisection on the threshold) is the ball's projection
    d = np.array([v])
    got = project_l1_ball(d, eps)
    x = np.full_like(d, 0.5)
    want = project_l1(np.clip(x + d, 0, 1), x, eps) - x
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL_L1_BISECTION)
    assert np.abs(got).sum() <= eps * (1 + 1e-12) + 1e-300
    np.testing.assert_allclose(got, _duchi_rows(d, eps), rtol=RTOL_TWIN, atol=ATOL_TWIN)


def test_l1_ball_projection_hand_case():
    # μ = (0.5, 0.3, 0.1), ε = 0.4: θ_j = (0.1, 0.2, 0.1667); μ_j > θ_j for j = 1, 2 but not 3
    # (0.1 < 0.1667), so θ = 0.2 and the projection is (0.3, −0.1, 0) (norm 0.4)
    got = project_l1_ball(np.array([[0.5, -0.3, 0.1], [0.1, 0.1, 0.1]]), 0.4)
    np.testing.assert_allclose(got, [[0.3, -0.1, 0.0], [0.1, 0.1, 0.1]], rtol=RTOL_HAND,
                               atol=1e-15)
    assert np.array_equal(project_l1_ball(np.array([[0.5, -0.3]]), 0.0), [[0.0, 0.0]])


@pytest.mark.parametrize("d, eps, match", [
    (np.array([0.5, -0.3]), 0.1, r"d must be a real array of offsets \[B, N\], got float64 of "
                                 r"shape \(2,\); reshape a single offset to \[1, N\]"),
    (np.array([["a", "b"]]), 0.1, r"d must be a real array of offsets"),
    (np.array([[np.nan, 0.0]]), 0.1, r"d holds NaN or infinite offsets"),
    (np.array([[0.5, 0.0]]), -1.0, r"eps"),
])
def test_l1_ball_projection_refuses_bad_input(d, eps, match):
    with pytest.raises(ValueError, match=match):
        project_l1_ball(d, eps)


def test_topk_direction_keeps_pinned_entries_and_skips_zero_gradients():
    # entry 0 is at x = 1 with g > 0 (evsnn's paper L1 step would skip it, the code does not);
    # the top-3 of |g| = (3, 3, 0, 1) by lower index are entries 0, 1, 3; none is zero
    g = np.array([[3.0, -3.0, 0.0, 1.0]])
    np.testing.assert_array_equal(topk_sign_direction(g, 3), [[1 / 3, -1 / 3, 0.0, 1 / 3]])
    # top-3 of (0, 0, 0, 2): only the nonzero one steps, with the whole unit
    np.testing.assert_array_equal(topk_sign_direction(np.array([[0.0, 0, 0, 2]]), 3),
                                  [[0.0, 0, 0, 1]])
    assert not topk_sign_direction(np.zeros((1, 4)), 2).any()
    assert not topk_sign_direction(g, 0).any()  # sparsity 1: round(0·N) = 0 entries


def test_l0_code_projection_keeps_ties_and_its_score_is_the_exact_gain():
    x = np.full((1, 4), 0.5)
    d = np.array([[0.3, -0.3, 0.1, 0.9]])  # scores 0.09, 0.09, 0.01, 0.81 − 0.16 = 0.65
    np.testing.assert_array_equal(_l0_box_keep_ties(d, x, 2), [[0.3, -0.3, 0.0, 0.5]])
    np.testing.assert_array_equal(_l0_box_keep_ties(d, x, 1), [[0.0, 0.0, 0.0, 0.5]])


# --- hand cases -----------------------------------------------------------------------------------
def test_l1_code_rule_hand_case():
    # linear loss w·x, w = (4, −3, 2, 1), x = 0.5, sparsity 0.5 → round(2) = 2 entries: d =
    # (½, −½, 0, 0). ε = 0.3, α = 0.2, no start.
    # step 1 at a = x: δ = (0.1, −0.1) (‖δ‖₁ = 0.2 ≤ ε); a = (0.6, 0.4, .5, .5)
    # step 2: δ + αd = (0.2, −0.2), ‖·‖₁ = 0.4 > ε: μ = (.2, .2, 0, 0), θ = (−.1, .05, ...),
    #         run 2 → θ = 0.05, δ = (0.15, −0.15); a = (0.75, 0.25, .5, .5)
    # step 3: (0.25, −0.25) → θ = 0.1 → δ = (0.15, −0.15); a would be (0.9, 0.1)
    # losses at a: 2.0, 2.7, 3.75; x_adv = x + δ = (0.65, 0.35, 0.5, 0.5)
    src = CallableSource(_linear([4.0, -3.0, 2.0, 1.0]))
    r = pgd(src, np.full((1, 4), 0.5), np.array([1]), eps=0.3, norm="l1", alpha=0.2, steps=3,
            random_start=None, rule="code")
    np.testing.assert_allclose(r.x_adv, [[0.65, 0.35, 0.5, 0.5]], rtol=RTOL_HAND)
    np.testing.assert_allclose(r.loss[:, 0], [2.0, 2.7, 3.75], rtol=RTOL_HAND)
    assert r.params["rule"] == "code" and r.params["l1_quantile"] == 0.5  # the code's sparsity


def test_l0_code_rule_hand_case():
    # linear loss w·x, w = (4, −2, 1, 0), x = 0.5, k = 1, step 2, no start.
    # iteration 0 projects δ = 0 (all scores 0 ≥ threshold 0: all kept, nothing changes);
    # iteration 1 at a = x (loss 1.5): g/‖g‖₁ = w/7, a = 0.5 + 2w/7, y = (8/7, −4/7, 2/7, 0)
    # (+ jitter); scores: 64/49 − (8/7 − ½)² = 0.8929, 16/49 − (4/7 − ½)² = 0.3214, 4/49, 0;
    # pixel 0 kept, clipped to 1.
    src = CallableSource(_linear([4.0, -2.0, 1.0, 0.0]))
    r = pgd(src, np.full((1, 4), 0.5), np.array([1]), eps=1, norm="l0", alpha=2.0, steps=2,
            random_start=None, rule="code", rng=0)
    np.testing.assert_array_equal(r.x_adv, [[1.0, 0.5, 0.5, 0.5]])
    np.testing.assert_allclose(r.loss, [[1.5]], rtol=RTOL_HAND)
    # the default step is the code's 500
    assert pgd(src, np.full((1, 4), 0.5), np.array([1]), eps=1, norm="l0", rule="code",
               rng=0).params["alpha"] == 500.0
    # one more iteration at a = (1, .5, .5, .5) (loss 3.5): y = (1.643, −0.286, 0.286, 0), pixel
    # 0 again the largest score, clipped to 1: the same point
    r3 = pgd(src, np.full((1, 4), 0.5), np.array([1]), eps=1, norm="l0", alpha=2.0, steps=3,
             random_start=None, rule="code", rng=0)
    np.testing.assert_array_equal(r3.x_adv, r.x_adv)
    np.testing.assert_allclose(r3.loss[:, 0], [1.5, 3.5], rtol=RTOL_HAND)


# --- where the code's attack differs from the paper's -------------------------------------------
def test_l1_code_rule_takes_gradients_at_the_accumulated_point_and_ends_weaker():
    # loss −(x₀ − 0.7)² from x = 0.5 with ε = 0.1: the best point in the ball is x₀ = 0.6
    # (loss −0.01). The paper's PGD steps 0.55, 0.6, 0.6, 0.6. The code's gradient points a
    # accumulate δ: a = 0.5, 0.55, 0.65, 0.75; at 0.75 the gradient points back (−0.1), so
    # δ = 0.1, 0.1 → 0.05 at the end: x_adv₀ = 0.55, loss −0.0225.
    src = CallableSource(_quadratic([-1.0, 0.0], [0.7, 0.0]))
    x, y = np.full((1, 2), 0.5), np.array([0])
    kw = dict(eps=0.1, norm="l1", alpha=0.05, steps=4, random_start=None, l1_quantile=0.5)
    paper = pgd(src, x, y, **kw)
    code = pgd(src, x, y, rule="code", **kw)
    np.testing.assert_allclose(paper.x_adv, [[0.6, 0.5]], rtol=RTOL_HAND)
    np.testing.assert_allclose(code.x_adv, [[0.55, 0.5]], rtol=RTOL_HAND)
    # loss rows at the gradient points: the code's last one, a₀ = 0.75, is 0.25 from x in L1
    np.testing.assert_allclose(code.loss[:, 0], [-0.04, -0.0225, -0.0025, -0.0025],
                               rtol=RTOL_HAND)
    np.testing.assert_allclose(paper.loss[:, 0], [-0.04, -0.0225, -0.01, -0.01], rtol=RTOL_HAND)


def test_l1_code_rule_first_gradient_is_at_x_whatever_the_start():
    # the paper's PGD takes its first gradient at the random start; the code at x itself, and
    # uses the start only as the δ its first step is added to
    src = CallableSource(_linear([1.0, -2.0, 0.5]))
    x = np.array([[0.2, 0.6, 0.9], [0.5, 0.5, 0.5]])
    y = np.array([0, 0])
    code = pgd(src, x, y, eps=0.5, norm="l1", steps=2, rule="code", rng=4)
    paper = pgd(src, x, y, eps=0.5, norm="l1", steps=2, rng=4)
    np.testing.assert_array_equal(code.loss[0], src(x, y).loss)
    assert not np.allclose(paper.loss[0], src(x, y).loss)
    none = pgd(src, x, y, eps=0.5, norm="l1", steps=2, rule="code", random_start=None)
    assert not np.array_equal(code.x_adv, none.x_adv)  # the start moved the iterate


def test_l1_code_rule_evaluates_the_source_outside_the_box():
    seen = []
    fn = _linear([1.0, 1.0])

    def spy(x, y):
        seen.append(x.max())
        return fn(x, y)

    # sparsity 0.5: one entry (the tie of |g| to entry 0) steps 0.3, clipped at the face:
    # δ = (0.1, 0) after every step, so a₀ = 0.9, 1.0, 1.1: beyond 1
    r = pgd(CallableSource(spy), np.full((1, 2), 0.9), np.array([0]), eps=0.3, norm="l1",
            alpha=0.3, steps=3, random_start=None, rule="code")
    np.testing.assert_allclose(seen[:3], [0.9, 1.0, 1.1], rtol=RTOL_HAND)  # then the scores
    assert r.x_adv.max() <= 1.0
    # a source that encodes images refuses such points, and the error says why: here the loss
    # of class 0 falls along pixel 0 (its gradient is about −0.035 at x = 0.5), so δ₀ = −0.5
    # after each step and a₀ = 0.5, 0, −0.5
    net = Network.mlp([2, 3, 2], LIF(lam=0.9, theta=0.5), rng=0, scale=2.0)
    with pytest.raises(ValueError, match=r"accumulated point x \+ δ₁ \+ … \+ δ_k, here with "
                                         r"values in \[-0.5, 0.5\], outside \[0, 1\].*"
                                         r"rule='paper'"):
        pgd(SNNSource(net, T=3, encoder="current"), np.full((1, 2), 0.5), np.array([0]),
            eps=0.5, norm="l1", alpha=0.5, steps=4, random_start=None, rule="code")
    # with pixel_range="real" the source takes them: its gradients at a = (0.5, 0.5),
    # (0, 0.5), (−0.5, 0.5), (−1, 0.5) are those of the same network fed those currents
    seen = []

    class Spy(SNNSource):
        def __call__(self, x, y, *, rng=None):
            seen.append(np.array(x))
            return super().__call__(x, y, rng=rng)

    src = Spy(net, T=3, encoder="current", pixel_range="real")
    r = pgd(src, np.full((1, 2), 0.5), np.array([0]), eps=0.5, norm="l1", alpha=0.5, steps=4,
            random_start=None, rule="code")
    np.testing.assert_array_equal(np.concatenate(seen[:4]),
                                  [[0.5, 0.5], [0.0, 0.5], [-0.5, 0.5], [-1.0, 0.5]])
    np.testing.assert_array_equal(r.loss[:, 0], [src(p, np.array([0])).loss[0] for p in seen[:4]])
    np.testing.assert_array_equal(r.x_adv, [[0.0, 0.5]])


def test_l0_code_rule_changes_more_than_k_pixels_on_ties():
    # four equal gradients and equal pixels: with a step of 1e9 the 1e-12 jitter is lost in
    # rounding (ulp(2.5e8) = 3e-8), all four scores tie with the k-th and all are kept
    src = CallableSource(_linear([1.0, 1.0, 1.0, 1.0]))
    x, y = np.full((1, 4), 0.5), np.array([1])
    code = pgd(src, x, y, eps=1, norm="l0", alpha=1e9, steps=2, random_start=None,
               rule="code", rng=0)
    paper = pgd(src, x, y, eps=1, norm="l0", alpha=1e9, steps=2, random_start=None)
    assert code.norms["l0"][0] == 4 and paper.norms["l0"][0] == 1
    np.testing.assert_array_equal(code.x_adv, np.ones((1, 4)))


def test_l0_code_rule_first_iteration_takes_no_gradient():
    src = CallableSource(_linear([1.0, -1.0, 0.5]))
    x, y = np.full((2, 3), 0.5), np.array([0, 1])
    r = pgd(src, x, y, eps=1, norm="l0", steps=4, rule="code", rng=0)
    assert r.loss.shape == (3, 2)
    one = pgd(src, x, y, eps=1, norm="l0", steps=1, rule="code", rng=0)
    assert one.loss.shape == (0, 2) and np.all(one.norms["l0"] <= 3)


# --- batches, dtypes, restarts ------------------------------------------------------------------
@pytest.mark.parametrize("norm, eps", [("l1", 0.4), ("l0", 2)])
def test_code_rule_sample_does_not_depend_on_its_batch(norm, eps):
    # the code draws one L1 ray for the whole batch; evsnn draws it per sample
    src = CallableSource(_quadratic([1.0, -0.5, 2.0, 0.25], [0.3, 0.6, 0.1, 0.9]))
    x = np.random.default_rng(1).random((3, 4))
    y = np.zeros(3, dtype=int)
    full = pgd(src, x, y, eps=eps, norm=norm, steps=3, rule="code", rng=7)
    first = pgd(src, x[:1], y[:1], eps=eps, norm=norm, steps=3, rule="code", rng=7)
    np.testing.assert_array_equal(full.x_adv[:1], first.x_adv)
    np.testing.assert_array_equal(full.loss[:, :1], first.loss)


def test_l1_code_rule_float32_output_is_inside_the_measured_ball():
    src = CallableSource(_linear(np.linspace(-1, 1, 7)))
    x = np.random.default_rng(2).random((4, 7)).astype(np.float32)
    r = pgd(src, x, np.zeros(4, dtype=int), eps=0.3, norm="l1", alpha=0.2, steps=6,
            rule="code", rng=0, restarts=2)
    assert r.x_adv.dtype == np.float32 and r.loss.shape == (6, 4)
    assert np.all(r.norms["l1"] <= 0.3) and np.any(r.norms["l1"] > 0.29)


# --- validation -----------------------------------------------------------------------------------
_SRC = CallableSource(_linear([1.0, -1.0, 0.5]))
_X, _Y = np.full((1, 3), 0.5), np.array([0])


@pytest.mark.parametrize("kw, match", [
    (dict(rule="torch", norm="l1", eps=0.1), r"rule='torch' is not supported; use one of "
                                             r"\['paper', 'code'\]"),
    (dict(rule="code", norm="linf", eps=0.1), r"norm='linf'.*'l1' and 'l0' only.*drop "
                                              r"rule='code'"),
    (dict(rule="code", norm="l2", eps=0.1), r"norm='l2'.*'l1' and 'l0' only"),
    (dict(rule="code", norm="l1", eps=0.1, random_start="gaussian"),
     r"random_start='gaussian' with rule='code'"),
    (dict(rule="code", norm="l1", eps=0.1, start_sigma=0.2), r"start_sigma=0.2 with "
                                                             r"rule='code' and norm='l1'"),
    (dict(rule="code", norm="l0", eps=1, start_sigma=-0.5), r"start_sigma"),
    (dict(rule="code", norm="l0", eps=0), r"eps=0 pixels with rule='code'.*1 <= k <= 3"),
    (dict(rule="code", norm="l0", eps=4), r"eps=4 pixels with rule='code'.*1 <= k <= 3"),
    (dict(rule="code", norm="l1", eps=0.1, l1_quantile=1.5), r"l1_quantile"),
])
def test_code_rule_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        pgd(_SRC, _X, _Y, steps=2, rng=0, **kw)


def test_l0_code_rule_needs_an_rng_even_without_a_start():
    with pytest.raises(ValueError, match="rng is None but this attack draws"):
        pgd(_SRC, _X, _Y, eps=1, norm="l0", random_start=None, rule="code")
    # L1 without a start draws nothing
    r = pgd(_SRC, _X, _Y, eps=0.1, norm="l1", random_start=None, rule="code", steps=2)
    assert r.params["random_start"] is None and r.params["rule"] == "code"


def test_paper_rule_records_its_defaults():
    r = pgd(_SRC, _X, _Y, eps=0.1, norm="l1", steps=2, rng=0)
    assert r.params["rule"] == "paper" and r.params["l1_quantile"] == 0.95
