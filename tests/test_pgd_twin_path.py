"""The L∞ attacks on an SNN source, pinned bit for bit against a twin path that calls the public
functions step by step (a source call, ``project_linf`` of the sign step, ``predict`` and
``norms_of`` at the end), so that removing overhead from ``pgd`` / ``fgsm`` (fused steps, fewer
conversions and copies) cannot change any output: ``x_adv``, the per-iteration loss, success,
scores and norms.

Provenance of the expected values: the twin path below, which is Madry et al.'s PGD-L∞ as
:func:`evsnn.attacks.pgd` documents it (uniform start in the ball drawn per sample from
``SeedSequence.spawn``, ``x ← Π(x + α sign ∇L)``, scores of the model at the end). The test
passed unchanged on main at 9b6998b, before the fused L∞ step of this change.
"""

import numpy as np
import pytest

from evsnn.attacks import SNNSource, bim, fgsm, norms_of, pgd, project_linf
from evsnn.clock import Network
from evsnn.grad import Sigmoid
from evsnn.params import LIF


def _problem(dtype, B=12, n_in=20, seed=3):
    rng = np.random.default_rng(seed)
    net = Network.mlp([n_in, 16, 4], LIF(lam=0.9, theta=1.0, reset="hard", v_rest=0.0), rng=rng,
                      scale=3.0)
    net = net.with_weights([w.astype(dtype) for w in net.weights()])
    x = rng.random((B, n_in)).astype(dtype)
    x[0, :3] = (0.0, 1.0, -0.0)  # pixels on the box's faces (and a signed zero)
    src = SNNSource(net, T=5, encoder="current", surrogate=Sigmoid(5.0, "code"))
    return src, x, np.argmax(src.predict(x), axis=1)


def _twin_pgd(src, x, y, eps, alpha, steps, seed):
    """PGD-L∞ from the public pieces, one call at a time."""
    B, N = x.shape
    if seed is None:  # BIM: start at x
        x_adv = x.copy()
    else:
        gens = np.random.default_rng(seed).spawn(B)
        z = np.stack([x[b].astype(np.float64) + gens[b].uniform(-eps, eps, N) for b in range(B)])
        x_adv = project_linf(z, x, eps)
    losses = []
    for _ in range(steps):
        out = src(x_adv, y)
        losses.append(np.asarray(out.loss, dtype=np.float64))
        x_adv = project_linf(x_adv + alpha * np.sign(out.grad.astype(np.float64)), x, eps)
    scores = src.predict(x_adv)
    return x_adv, np.stack(losses), scores


def _assert_same(r, x_adv, losses, scores, x, y):
    assert r.x_adv.dtype == x.dtype
    np.testing.assert_array_equal(r.x_adv, x_adv)
    np.testing.assert_array_equal(np.signbit(r.x_adv), np.signbit(x_adv))
    np.testing.assert_array_equal(r.loss, losses)
    np.testing.assert_array_equal(r.scores, scores)
    np.testing.assert_array_equal(r.success, np.argmax(scores, axis=1) != y)
    for k, v in norms_of(x_adv, x).items():
        np.testing.assert_array_equal(r.norms[k], v)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eps,alpha", [(0.05, 0.0125), (0.3, 0.1), (0.05, 0.0)])
def test_pgd_linf_equals_the_step_by_step_twin(dtype, eps, alpha):
    src, x, y = _problem(dtype)
    r = pgd(src, x, y, eps=eps, alpha=alpha, steps=6, random_start="uniform", rng=11)
    _assert_same(r, *_twin_pgd(src, x, y, eps, alpha, 6, 11), x, y)
    assert r.loss.shape == (6, x.shape[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bim_and_fgsm_equal_the_step_by_step_twin(dtype):
    src, x, y = _problem(dtype)
    r = bim(src, x, y, eps=0.1, alpha=0.03, steps=4)
    _assert_same(r, *_twin_pgd(src, x, y, 0.1, 0.03, 4, None), x, y)
    # FGSM is one step of size eps from x
    r = fgsm(src, x, y, eps=0.1)
    _assert_same(r, *_twin_pgd(src, x, y, 0.1, 0.1, 1, None), x, y)


def test_targeted_pgd_equals_the_step_by_step_twin():
    """Targeted: the step descends the loss toward the target; the record is its negative."""
    src, x, y = _problem(np.float32)
    t = (y + 1) % 4
    r = pgd(src, x, y, eps=0.1, alpha=0.03, steps=3, random_start=None, target=t)
    x_adv = x.copy()
    losses = []
    for _ in range(3):
        out = src(x_adv, t)
        losses.append(-np.asarray(out.loss, dtype=np.float64))
        x_adv = project_linf(x_adv - 0.03 * np.sign(out.grad.astype(np.float64)), x, 0.1)
    scores = src.predict(x_adv)
    np.testing.assert_array_equal(r.x_adv, x_adv)
    np.testing.assert_array_equal(r.loss, np.stack(losses))
    np.testing.assert_array_equal(r.success, np.argmax(scores, axis=1) == t)


@pytest.mark.parametrize("method", ["bptt", "hart"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_snn_source_without_the_unread_records_answers_bit_for_bit(monkeypatch, method, dtype):
    """The source's BPTT records neither the current nor v (``simulate(record="bptt")``); its
    loss, gradient and scores are those of the same source with every record kept."""
    import evsnn.attacks.sources as sources

    src, x, y = _problem(dtype)
    src = SNNSource(src.network, T=5, encoder="current", method=method)
    src._static = None  # the general path (a two-layer network's BPTT takes the fast path)
    seen = []
    lean = src(x, y)
    full_simulate = sources.simulate

    def full(*args, record=False, **kwargs):
        seen.append(record)
        return full_simulate(*args, record=True, **kwargs)

    monkeypatch.setattr(sources, "simulate", full)
    kept = src(x, y)
    assert seen == ["bptt"]
    for a, b in zip(lean, kept):
        np.testing.assert_array_equal(a, b)
