"""Auto-PGD (APGD) of Croce & Hein (2020) with the CE and DLR losses (the Stable paper's
APGD-CE / APGD-DLR evaluations)."""

from __future__ import annotations

import numpy as np

from evsnn.attacks._common import (
    RANDOM_STARTS,
    AttackResult,
    is_stochastic,
    model_fn,
    random_start as _random_start,
    source_iv,
    step_direction,
    streams,
    success_of,
)
from evsnn.attacks._iv import choice_iv, derived_iv, int_iv, labels_iv, real_iv, x_iv
from evsnn.attacks.losses import SCORE_LOSSES, ce_loss, dlr_loss
from evsnn.attacks.projections import Projector, norms_of

__all__ = ["apgd", "apgd_checkpoints"]


def apgd_checkpoints(steps):
    """The iterations at which APGD may halve its step: ``w_j = ⌈p_j N_iter⌉`` with
    ``p_0 = 0``, ``p_1 = 0.22``, ``p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)``
    (Croce & Hein 2020, Sec. 3.2), computed in exact hundredths. Returns ``[w_0, w_1, ...]``
    up to the first ``w_j ≥ steps``.

    Examples
    --------
    >>> apgd_checkpoints(100)
    [0, 22, 41, 57, 70, 80, 87, 93, 99, 105]
    """
    steps = int_iv("steps", steps, low=1)
    p = [0, 22]
    while p[-1] * steps < 100 * steps:  # until p_j >= 1
        p.append(p[-1] + max(p[-1] - p[-2] - 3, 6))
    w = [-(-pj * steps // 100) for pj in p]
    out = []
    for wj in w:
        if not out or wj != out[-1]:
            out.append(wj)
        if wj >= steps:
            break
    return out


def apgd(source, x, y, *, eps, norm="linf", steps=10, loss="ce", random_start="uniform",
         rho=0.75, momentum=0.75, target=None, model=None, rng=None):
    """APGD (Croce & Hein 2020, Algorithm 1) in L∞ or L2 with the CE or DLR loss.

    ``z = P(x^k + η d(∇f(x^k)))``; ``x^{k+1} = P(x^k + α(z − x^k) + (1 − α)(x^k − x^{k−1}))``
    with momentum α = 0.75 (plain step for the first iteration); η starts at 2ε and is halved
    at a checkpoint ``w_j`` (:func:`apgd_checkpoints`) when

    1. the loss increased in fewer than ``ρ (w_j − w_{j−1})`` of the iterations since the last
       checkpoint, or
    2. neither η nor the best loss changed since the last checkpoint;

    after a halving the iterate restarts from the best point found. The best point (highest
    loss) is returned.

    Parameters
    ----------
    source, x, y, target, model, rng
        As in :func:`evsnn.attacks.fgsm`; ``loss="dlr"`` and targeted attacks need a source
        with ``score_loss_grad`` (e.g. :class:`SNNSource`).
    eps : float
        The radius; finite, and 2ε (the first step, the uniform start's width) must be finite
        too: an eps near the float maximum raises ValueError.
    norm : {"linf", "l2"}
    steps : int, default 10
        N_iter; the loss record has ``steps + 1`` rows (x⁰, x¹, ..., x^N_iter).
    loss : {"ce", "dlr"}
        Cross-entropy, or the difference of logits ratio (targeted form when ``target`` is
        given; :func:`evsnn.attacks.losses.dlr_loss`).
    random_start : {"uniform", "gaussian", None}, default "uniform"
    rho, momentum : float, default 0.75

    Returns
    -------
    AttackResult

    Examples
    --------
    >>> from evsnn.attacks.sources import CallableSource
    >>> w = np.array([1.0, -1.0])
    >>> src = CallableSource(lambda x, y: (x @ w, np.tile(w, (len(x), 1)),
    ...                                    np.stack([x @ w, -x @ w], 1)))
    >>> r = apgd(src, np.full((1, 2), 0.5), np.array([1]), eps=0.2, random_start=None)
    >>> np.round(r.x_adv, 12), r.loss.shape
    (array([[0.7, 0.3]]), (11, 1))
    """
    norm = choice_iv("norm", norm, ("linf", "l2"))
    eps = real_iv("eps", eps)
    derived_iv(eps, 2.0 * eps, "the first step 2·eps (and the random start's width)")
    steps = int_iv("steps", steps, low=1)
    choice_iv("loss", loss, SCORE_LOSSES)
    choice_iv("random_start", random_start, RANDOM_STARTS)
    rho = real_iv("rho", rho, high=1.0)
    momentum = real_iv("momentum", momentum, high=1.0)
    src = source_iv(source)
    x = x_iv(x)
    B = x.shape[0]
    y = labels_iv(y, B)
    if target is not None:
        target = labels_iv(target, B, "target")
    if (loss == "dlr" or target is not None) and not src.has_score_losses:
        raise ValueError(
            f"loss={loss!r}{' with a target' if target is not None else ''} needs a source that "
            "can differentiate losses of the scores (score_loss_grad); "
            f"{type(src).__name__} cannot — pass SNNSource or CallableSource(score_loss_grad=...)"
        )
    gens = streams(rng, B, random_start is not None or is_stochastic(model, src))
    scores_fn = model_fn(model, src, y)
    r = gens if src.stochastic else None

    if loss == "ce" and target is None:
        def objective(z):
            o = src(z, y, rng=r)
            return np.asarray(o.loss, dtype=np.float64), np.asarray(o.grad, dtype=np.float64)
    else:
        if loss == "ce":
            def score_loss(s):
                lo, g = ce_loss(s, target)
                return -lo, -g
        else:
            def score_loss(s):
                return dlr_loss(s, y, target)

        def objective(z):
            o = src.score_loss_grad(z, score_loss, rng=r)
            return np.asarray(o.loss, dtype=np.float64), np.asarray(o.grad, dtype=np.float64)

    P = Projector(x, eps, norm)

    def step(z, g, eta):
        return P(z + eta[:, None] * step_direction(g, z, norm))

    x_k = _random_start(x, eps, norm, random_start, None, gens, proj=P)
    f_k, g_k = objective(x_k)
    losses = [f_k]
    eta = np.full(B, 2.0 * eps)
    # k = 0: the plain step to x^1
    x_new = step(x_k, g_k, eta)
    f_new, g_new = objective(x_new)
    losses.append(f_new)
    increases = [f_new > f_k]
    better = f_new > f_k
    x_max = np.where(better[:, None], x_new, x_k)
    g_max = np.where(better[:, None], g_new, g_k)
    f_max = np.maximum(f_new, f_k)
    x_prev, x_k, f_k, g_k = x_k, x_new, f_new, g_new
    checkpoints = apgd_checkpoints(steps)
    w_prev = 0
    eta_prev, fmax_prev = eta.copy(), f_max.copy()
    for k in range(1, steps):
        z = step(x_k, g_k, eta)
        x_new = P(x_k + momentum * (z - x_k) + (1.0 - momentum) * (x_k - x_prev))
        f_new, g_new = objective(x_new)
        losses.append(f_new)
        increases.append(f_new > f_k)
        better = f_new > f_max
        x_max = np.where(better[:, None], x_new, x_max)
        g_max = np.where(better[:, None], g_new, g_max)
        f_max = np.where(better, f_new, f_max)
        x_prev, x_k, f_k, g_k = x_k, x_new, f_new, g_new
        if k in checkpoints:
            n_up = np.sum(increases[w_prev:k], axis=0)
            cond1 = n_up < rho * (k - w_prev)
            cond2 = (eta_prev == eta) & (fmax_prev == f_max)
            halve = cond1 | cond2
            eta_prev, fmax_prev = eta.copy(), f_max.copy()
            eta = np.where(halve, eta / 2.0, eta)
            x_k = np.where(halve[:, None], x_max, x_k)
            g_k = np.where(halve[:, None], g_max, g_k)
            f_k = np.where(halve, f_max, f_k)
            w_prev = k
    scores = scores_fn(x_max, gens if getattr(src if model is None else model, "stochastic",
                                              False) else None)
    params = {"eps": eps, "norm": norm, "steps": steps, "loss": loss,
              "random_start": random_start, "rho": rho, "momentum": momentum,
              "targeted": target is not None, "final_eta": eta}
    return AttackResult(
        x_adv=x_max, loss=np.stack(losses), success=success_of(scores, y, target),
        scores=scores, norms=norms_of(x_max, x), attack=f"apgd-{loss}", params=params,
    )
