"""Auto-PGD (APGD) of Croce & Hein (2020) with the CE and DLR losses (the Stable paper's
APGD-CE / APGD-DLR evaluations)."""

from __future__ import annotations

import numpy as np

from evsnn.attacks._common import (
    MODEL_OUTPUT,
    RANDOM_STARTS,
    SOURCE_OUTPUT,
    AttackResult,
    checked_score_loss,
    finite_grad_iv,
    is_stochastic,
    model_fn,
    model_stochastic,
    random_start as _random_start,
    scores_labels_iv,
    source_answer,
    source_iv,
    source_labels_iv,
    step_direction,
    streams,
    success_of,
)
from evsnn.attacks._iv import choice_iv, derived_iv, int_iv, labels_iv, real_iv, x_iv
from evsnn.attacks.losses import SCORE_LOSSES, ce_loss, dlr_loss
from evsnn.attacks.projections import Projector, norms_of

__all__ = ["apgd", "apgd_checkpoints", "apgd_code_checkpoints"]

RULES = ("paper", "code")


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


def apgd_code_checkpoints(steps):
    """The iterations after which the authors' APGD code (Croce & Hein's reference
    implementation, as vendored by torchattacks and the Stable repository's ``attack/apgd.py``)
    tests its step size: the first after ``k = max(⌊0.22 N⌋, 1)`` iterations, then after every
    ``k ← max(k − max(⌊0.03 N⌋, 1), max(⌊0.06 N⌋, 1))`` more. Counts of iterations done (1-based).

    Examples
    --------
    >>> apgd_code_checkpoints(100)
    [22, 41, 57, 70, 80, 87, 93, 99]
    >>> apgd_code_checkpoints(10)       # the paper's schedule: 3, 5, 6, 7, 8, 9, 10
    [2, 3, 4, 5, 6, 7, 8, 9, 10]
    """
    steps = int_iv("steps", steps, low=1)
    k = max(int(0.22 * steps), 1)
    k_min, k_decr = max(int(0.06 * steps), 1), max(int(0.03 * steps), 1)
    out, done = [], k
    while done <= steps:
        out.append(done)
        k = max(k - k_decr, k_min)
        done += k
    return out


def apgd(source, x, y, *, eps, norm="linf", steps=10, loss="ce", random_start="uniform",
         rho=0.75, momentum=0.75, rule="paper", target=None, model=None, rng=None):
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
        Under ``rule="code"``, "uniform" is the code's start: L∞ ``x + ε t/‖t‖∞`` with
        ``t ~ U(−1, 1)^N`` (one entry at ±ε), L2 ``x + ε t/(‖t‖₂ + 1e-12)`` with Gaussian ``t``,
        clipped to [0, 1]; "gaussian" is refused.
    rho, momentum : float, default 0.75
    rule : {"paper", "code"}, default "paper"
        "paper": Croce & Hein (2020) Algorithm 1 and Sec. 3.2 as described above. "code": the
        authors' implementation that the Stable paper evaluates with (its repository's
        ``attack/apgd.py``, Croce & Hein's code as ported to torchattacks), which differs in
        six ways:

        1. the checkpoints are :func:`apgd_code_checkpoints` (integer fractions of N);
        2. condition 1 halves when the loss increased in *at most* ``ρ k`` of the last ``k``
           consecutive pairs of iterates x¹…x^N; at the first checkpoint the oldest of those
           pairs compares x¹'s loss with a record row not yet written (0), so a positive loss
           (CE) counts as an increase and a negative one (DLR of a correct sample) does not;
        3. condition 2 is "not halved at the previous checkpoint and the best loss not above
           its value there" (the first checkpoint never halves by it);
        4. only samples the model classifies correctly at ``x`` are attacked (the others are
           returned as ``x``; their loss rows are NaN);
        5. the result is the *last iterate the model misclassified* (from the same forward pass
           as that iterate's gradient), and ``x`` itself for a sample never misclassified —
           not the highest-loss point;
        6. L2: the step is ``g/(‖g‖₂ + 1e-12)`` and each projection is the code's
           ``clip(x + δ min(ε, ‖δ‖)/(‖δ‖ + 1e-12), 0, 1)``
           (scale into the ball, then clip to the box; the momentum step's uses
           ``min(ε, ‖δ‖ + 1e-12)``), not the Euclidean projection onto ball ∩ box. L∞: each
           projection is the code's clamp to ``[x − ε, x + ε]`` with those ends as rounded
           (one may lie an ulp outside the ball), then to [0, 1]. The returned point is passed
           through the exact projection, which moves it only if rounding left it outside the
           ball.

        The code attacks only untargeted (``target`` is refused) and draws its start per batch
        from a fixed seed; evsnn draws per sample from ``rng``.

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
    rule = choice_iv("rule", rule, RULES)
    if rule == "code" and target is not None:
        raise ValueError("rule='code' runs the authors' APGD, which attacks only untargeted; "
                         "pass target=None or rule='paper'")
    if rule == "code" and random_start == "gaussian":
        raise ValueError("rule='code' starts as the authors' code does (random_start='uniform') "
                         "or at x (None); random_start='gaussian' needs rule='paper'")
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
    source_labels_iv(src, y, target)
    scores_fn = model_fn(model, src, y)
    r = gens if src.stochastic else None

    def make_objective(y_, r_):
        """``z ↦ (loss, gradient, scores)`` for the samples with labels ``y_`` and streams
        ``r_`` (the code rule attacks a subset)."""
        if loss == "ce" and target is None:
            def call(z):
                return source_answer(lambda: src(z, y_, rng=r_), y_, y_)
        else:
            if loss == "ce":
                def score_loss(s):
                    lo, g = ce_loss(s, target)
                    return -lo, -g
            else:
                def score_loss(s):
                    return dlr_loss(s, y_, target)

            def call(z):
                # checked before the loss, and after the answer for a source whose
                # score_loss_grad does not hand its scores to the loss
                return source_answer(
                    lambda: src.score_loss_grad(z, checked_score_loss(score_loss, y_, target),
                                                rng=r_),
                    y_ if target is None else target, y_, target)

        def objective(z):
            o = call(z)
            grad = finite_grad_iv(np.asarray(o.grad, dtype=np.float64))
            return np.asarray(o.loss, dtype=np.float64), grad, np.asarray(o.scores)
        return objective

    m_stoch = model_stochastic(model, src)
    if rule == "code":
        return _apgd_code(src, x, y, eps, norm, steps, loss, random_start, rho, momentum,
                          gens, r, scores_fn, m_stoch, make_objective,
                          SOURCE_OUTPUT if model is None else MODEL_OUTPUT)
    objective3 = make_objective(y, r)

    def objective(z):
        return objective3(z)[:2]

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
    scores = scores_fn(x_max, gens if m_stoch else None)
    params = {"eps": eps, "norm": norm, "steps": steps, "loss": loss,
              "random_start": random_start, "rho": rho, "momentum": momentum, "rule": rule,
              "targeted": target is not None, "final_eta": eta}
    return AttackResult(
        x_adv=x_max, loss=np.stack(losses), success=success_of(scores, y, target),
        scores=scores, norms=norms_of(x_max, x), attack=f"apgd-{loss}", params=params,
    )


def _code_start(x, eps, norm, kind, gens):
    """The authors' APGD start (see :func:`apgd`, ``random_start``), per sample."""
    if kind is None:
        return x.astype(np.float64)
    B, N = x.shape
    z = np.empty((B, N))
    for b in range(B):
        if norm == "linf":
            t = 2.0 * gens[b].random(N) - 1.0
            d = eps * t / np.abs(t).max()
        else:
            t = gens[b].standard_normal(N)
            d = eps * t / (np.sqrt((t * t).sum()) + 1e-12)
        z[b] = x[b] + d
    return np.clip(z, 0.0, 1.0)


def _code_l2_fit(z, x, eps, guard):
    """The code's L2 'projection': scale ``z − x`` into the ball, then clip to the box;
    ``guard`` adds the 1e-12 its momentum step adds inside the min."""
    d = z - x
    n = np.sqrt((d * d).sum(axis=1, keepdims=True))
    return np.clip(x + d / (n + 1e-12) * np.minimum(eps, n + guard), 0.0, 1.0)


def _apgd_code(src, x, y, eps, norm, steps, loss, random_start, rho, momentum, gens, r,
               scores_fn, m_stoch, make_objective, classes_of):
    """APGD as the authors' code runs it (``apgd(rule="code")``; the six differences are listed
    in :func:`apgd`). The clean prediction picks the samples to attack; the loop then runs on
    those alone, each with its own stream."""
    B, N = x.shape
    clean = scores_fn(x, gens if m_stoch else None)
    # the attack's first scores: a label past them would leave its sample unattacked silently
    scores_labels_iv(np.shape(clean)[1], y, None, classes_of)
    clean_ok = np.argmax(clean, axis=1) == y
    idx = np.flatnonzero(clean_ok)
    x_adv_all = x.copy()
    losses = np.full((steps + 1, B), np.nan)
    eta_all = np.full(B, 2.0 * eps)
    if idx.size:
        xs = x[idx].astype(np.float64)
        g_s = [gens[i] for i in idx] if gens is not None else None
        objective = make_objective(y[idx], g_s if r is not None else None)
        lo, hi = (xs - eps, xs + eps) if norm == "linf" else (None, None)

        def fit(z, guard=0.0):
            # L∞: the code's min/max/clamp, its ball ends rounded as the code rounds them (an
            # end one ulp off the exact one flips a tie of two losses that a long DLR run can
            # reach); the returned point is projected exactly below
            if norm == "linf":
                return np.clip(np.minimum(np.maximum(z, lo), hi), 0.0, 1.0)
            return _code_l2_fit(z, xs, eps, guard)

        x_k = _code_start(xs, eps, norm, random_start, g_s)
        f_k, g_k, s_k = objective(x_k)
        fooled = np.argmax(s_k, axis=1) != y[idx]
        x_fool = x_k.copy()  # the code's x_best_adv starts at the start point
        x_best, g_best, f_best = x_k.copy(), g_k.copy(), f_k.copy()
        record = np.zeros((steps, idx.size))  # the code's loss_steps; unwritten rows read 0
        losses[0, idx] = f_k
        eta = np.full(idx.size, 2.0 * eps)
        x_old = x_k.copy()
        # iterations done at each check → the length k of the interval it closes
        checks = apgd_code_checkpoints(steps)
        intervals = dict(zip(checks, np.diff([0, *checks]).tolist()))
        best_at_check = f_best.copy()
        halved_at_check = np.ones(idx.size, dtype=bool)
        for i in range(steps):
            a = momentum if i > 0 else 1.0
            push = x_k - x_old
            x_old = x_k
            # the code's operation order, η·g first (an order a chaotic DLR run amplifies)
            if norm == "linf":
                z = fit(x_k + eta[:, None] * np.sign(g_k))
            else:  # the code's η g/(‖g‖ + 1e-12)
                n = np.sqrt((g_k * g_k).sum(axis=1, keepdims=True)) + 1e-12
                z = fit(x_k + eta[:, None] * g_k / n)
            x_k = fit(x_k + a * (z - x_k) + (1.0 - a) * push, 1e-12)
            f_k, g_k, s_k = objective(x_k)
            wrong = np.argmax(s_k, axis=1) != y[idx]
            fooled |= wrong
            x_fool[wrong] = x_k[wrong]
            record[i] = f_k
            losses[i + 1, idx] = f_k
            up = f_k > f_best
            x_best[up], g_best[up], f_best[up] = x_k[up], g_k[up], f_k[up]
            k = intervals.get(i + 1)
            if k is not None:
                # rows i−k+1..i against their predecessors; row −1 wraps as NumPy indexes
                n_up = sum(record[i - c] > record[i - c - 1] for c in range(k))
                halve = (n_up <= rho * k) | (~halved_at_check & (best_at_check >= f_best))
                halved_at_check = halve
                best_at_check = f_best.copy()
                eta = np.where(halve, eta / 2.0, eta)
                x_k = np.where(halve[:, None], x_best, x_k)
                g_k = np.where(halve[:, None], g_best, g_k)
        x_adv_all[idx] = np.where(fooled[:, None], x_fool, xs).astype(x.dtype, copy=False)
        eta_all[idx] = eta
    x_adv_all = Projector(x, eps, norm)(x_adv_all)  # moves a point only if rounding left the ball
    scores = scores_fn(x_adv_all, gens if m_stoch else None)
    params = {"eps": eps, "norm": norm, "steps": steps, "loss": loss,
              "random_start": random_start, "rho": rho, "momentum": momentum, "rule": "code",
              "targeted": False, "final_eta": eta_all, "attacked": clean_ok}
    return AttackResult(
        x_adv=x_adv_all, loss=losses, success=success_of(scores, y, None), scores=scores,
        norms=norms_of(x_adv_all, x), attack=f"apgd-{loss}", params=params,
    )
