"""DeepFool (Moosavi-Dezfooli et al. 2016), multi-class, L2 and L∞ (Ding 2023)."""

from __future__ import annotations

import numpy as np

from evsnn.attacks._common import (
    AttackResult,
    finite_grad_iv,
    is_stochastic,
    model_fn,
    model_stochastic,
    scores_labels_iv,
    source_iv,
    source_labels_iv,
    streams,
    success_of,
)
from evsnn.attacks._iv import choice_iv, int_iv, labels_iv, real_iv, x_iv
from evsnn.attacks.projections import l2_norm, norms_of

__all__ = ["deepfool"]


def deepfool(source, x, y, *, norm="l2", steps=50, overshoot=0.02, nudge=1e-4, nudge_on="distance",
             candidates=None, model=None, rng=None):
    """DeepFool: iterated linearisation of the class scores toward the nearest decision boundary.

    At the current point ``x_i`` (while the source still predicts ``y``), with score
    differences ``f'_k = f_k − f_y`` and gradient differences ``w'_k = ∇f_k − ∇f_y`` for every
    other class k, the closest linearised boundary is ``l = argmin_k |f'_k| / ‖w'_k‖_q`` (q = 2
    for L2, q = 1 — the dual norm — for L∞) and the minimal step to it is

    * L2: ``r_i = (|f'_l| / ‖w'_l‖₂ + ν) · w'_l / ‖w'_l‖₂``,
    * L∞: ``r_i = (|f'_l| / ‖w'_l‖₁ + ν) · sign(w'_l)``

    with a small nudge ``ν`` (default 1e-4) added to the distance, so that a point exactly on a
    boundary still moves. Moosavi-Dezfooli et al. 2016, Algorithm 2, have no such term
    (``nudge=0``); the authors' released Python code adds 1e-4 to the L2 distance as above (the
    default, ``nudge_on="distance"``). ``nudge_on="score"`` adds it to the score difference
    instead, ``r_i = (|f'_l| + ν) / ‖w'_l‖₂² · w'_l`` (L∞: ``(|f'_l| + ν) / ‖w'_l‖₁ ·
    sign(w'_l)``), a shorter step wherever ``‖w'_l‖ > 1``. The steps
    accumulate, ``r = Σ r_i``, and ``x_{i+1} = clip(x + (1 + overshoot) r, 0, 1)``. A sample stops
    when the source's prediction leaves ``y``, when all gradient differences vanish (surrogate
    gradients can be zero) or are so small that the step is not finite in float64 (``‖w'_l‖``
    below about ``|f'_l| / 1.8e308``), or after ``steps`` iterations. The L2 norms are
    :func:`~evsnn.attacks.projections.l2_norm`'s, so gradients far below 1e-154 keep theirs.

    Parameters
    ----------
    source : GradientSource
        Must offer :meth:`~evsnn.attacks.sources.GradientSource.class_grad` (SNNSource does, via a
        one-hot upstream gradient on the decoded scores). A stochastic source is called with the
        same per-sample random state for every class of one iteration (common random numbers).
    x : array [B, N]
    y : int array [B]
    norm : {"l2", "linf"}
    steps : int, default 50
    overshoot : float, default 0.02
    nudge : float, default 1e-4
        The term ``ν`` above, ≥ 0; 0 gives the paper's step.
    nudge_on : {"distance", "score"}, default "distance"
        Where ``ν`` is added: to the distance ``|f'_l| / ‖w'_l‖`` (the authors' code) or to the
        score difference ``|f'_l|``.
    candidates : int, optional
        Only the ``candidates`` classes with the highest clean scores (besides y) are
        considered (the original implementation uses 10); default all.
    model, rng
        As in :func:`evsnn.attacks.fgsm`.

    Returns
    -------
    AttackResult
        ``loss`` ``[steps, B]`` is the source's score margin ``max_{k≠y} f_k − f_y`` at each
        iterate (the last value repeats once a sample has stopped).

    Examples
    --------
    >>> from evsnn.attacks.sources import CallableSource
    >>> W = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> def slg(x, score_loss):
    ...     s = x @ W.T
    ...     loss, g = score_loss(s)
    ...     return loss, g @ W, s
    >>> src = CallableSource(lambda x, y: None, score_loss_grad=slg, predict=lambda x: x @ W.T)
    >>> r = deepfool(src, np.array([[0.6, 0.4]]), np.array([0]))
    >>> bool(r.success[0]), np.round(r.x_adv, 6)   # x + 1.02 (0.2/√2 + 1e-4) (-1, 1)/√2
    (True, array([[0.497928, 0.502072]]))
    >>> r = deepfool(src, np.array([[0.6, 0.4]]), np.array([0]), nudge_on="score")
    >>> np.round(r.x_adv, 6)                         # x + 1.02 (0.2 + 1e-4)/2 (-1, 1)
    array([[0.497949, 0.502051]])
    """
    norm = choice_iv("norm", norm, ("l2", "linf"))
    steps = int_iv("steps", steps, low=1)
    overshoot = real_iv("overshoot", overshoot)
    nudge = real_iv("nudge", nudge, low=0.0)
    nudge_on = choice_iv("nudge_on", nudge_on, ("distance", "score"))
    src = source_iv(source)
    if not src.has_score_losses:
        raise ValueError(
            f"deepfool needs class score gradients (class_grad); {type(src).__name__} cannot "
            "give them — pass SNNSource or CallableSource(score_loss_grad=...)"
        )
    x = x_iv(x)
    B, N = x.shape
    y = labels_iv(y, B)
    if candidates is not None:
        candidates = int_iv("candidates", candidates, low=1)
    gens = streams(rng, B, is_stochastic(model, src))
    source_labels_iv(src, y)
    scores_fn = model_fn(model, src, y)
    rows = np.arange(B)

    def class_outputs(z):
        """Scores [B, C] and class gradients [C, B, N] at z (common random numbers)."""
        seeds = None
        if src.stochastic:
            seeds = [g.integers(2**63) for g in gens]
        mk = (lambda: [np.random.default_rng(s) for s in seeds]) if seeds else (lambda: None)
        first = src.class_grad(z, 0, rng=mk())
        C = first.scores.shape[1]
        # 1-based labels would index past the scores (a source that did not declare its
        # classes tells them here, in its first answer; no other class is asked for then)
        scores_labels_iv(C, y)
        grads = np.empty((C, B, N))
        grads[0] = first.grad
        for c in range(1, C):
            grads[c] = src.class_grad(z, c, rng=mk()).grad
        finite_grad_iv(grads, "the source's class gradients [C, B, N]")
        return np.asarray(first.scores, dtype=np.float64), grads

    r_tot = np.zeros((B, N))
    x_adv = x.copy()
    active = np.ones(B, dtype=bool)
    losses = np.empty((steps, B))
    allowed = None
    for i in range(steps):
        scores, grads = class_outputs(x_adv)
        C = scores.shape[1]
        if allowed is None:
            allowed = np.ones((B, C), dtype=bool)
            if candidates is not None and candidates < C - 1:
                masked = scores.copy()
                masked[rows, y] = -np.inf
                top = np.argsort(-masked, axis=1, kind="stable")[:, :candidates]
                allowed[:] = False
                allowed[rows[:, None], top] = True
            allowed[rows, y] = False
        # the recorded margin is over every class k != y (as documented): the candidates only
        # choose the step, and the prediction may move to a class outside them
        others = scores.copy()
        others[rows, y] = -np.inf
        losses[i] = others.max(axis=1) - scores[rows, y]
        active &= np.argmax(scores, axis=1) == y
        if not active.any():
            losses[i + 1:] = losses[i]
            break
        f = scores - scores[rows, y][:, None]  # [B, C]
        w = grads - grads[y, rows][None]  # [C, B, N]
        wn = l2_norm(w, axis=2) if norm == "l2" else np.abs(w).sum(axis=2)  # [C, B]
        wn = wn.T
        ok = allowed & (wn > 0)
        # the distance and the step's length along the unit direction overflow for gradient
        # differences below about |f'| / 1.8e308 (and inf · 0 entries would be NaN): no
        # finite step
        with np.errstate(over="ignore"):
            dist = np.where(ok, np.abs(f) / np.where(ok, wn, 1.0), np.inf)
            l = np.argmin(dist, axis=1)
            wnl = np.where(ok[rows, l], wn[rows, l], 1.0)
            if nudge_on == "distance":
                coef = np.abs(f[rows, l]) / wnl + nudge
            else:
                coef = (np.abs(f[rows, l]) + nudge) / wnl
        wl = w[l, rows]  # [B, N]
        stuck = ~np.isfinite(dist[rows, l]) | ~np.isfinite(coef)
        active &= ~stuck
        coef = np.where(stuck, 0.0, coef)
        unit = wl / wnl[:, None] if norm == "l2" else np.sign(wl)  # entries in [-1, 1]
        r_i = coef[:, None] * unit
        with np.errstate(over="ignore"):  # a finite but huge step clips to the box
            r_tot = np.where(active[:, None], r_tot + r_i, r_tot)
            x_adv = np.clip(x + (1.0 + overshoot) * r_tot, 0.0, 1.0).astype(x.dtype, copy=False)
    m_stoch = model_stochastic(model, src)
    final = scores_fn(x_adv, gens if m_stoch else None)
    params = {"norm": norm, "steps": steps, "overshoot": overshoot, "nudge": nudge,
              "nudge_on": nudge_on, "candidates": candidates}
    return AttackResult(x_adv=x_adv, loss=losses, success=success_of(final, y, None),
                        scores=final, norms=norms_of(x_adv, x), attack="deepfool", params=params)
