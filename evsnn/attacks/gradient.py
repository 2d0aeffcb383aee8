"""Gradient attacks: FGSM, BIM, PGD (L∞, L2, L1, L0), MIM, RFGSM and EOT-PGD.

They solve Ding 2025 Eq. 21, ``argmax_δ L(f(x + δ), y) s.t. ‖δ‖_p ≤ ε`` (and ``x + δ`` in
[0, 1]), with a gradient source (:mod:`evsnn.attacks.sources`) for ``∇_x L`` and a separate
model for success.
"""

from __future__ import annotations

import numpy as np

from evsnn._numba import njit
from evsnn.attacks._common import (
    L2_STEPS,
    RANDOM_STARTS,
    AttackResult,
    finite_grad_iv,
    is_stochastic,
    margin_of,
    model_fn,
    model_stochastic,
    random_start as _random_start,
    source_answer,
    source_iv,
    source_labels_iv,
    step_direction,
    streams,
    success_of,
    topk_sign_direction,
)
from evsnn.attacks._iv import (
    channels_iv,
    choice_iv,
    derived_iv,
    eps_iv,
    int_iv,
    labels_iv,
    real_iv,
    x_iv,
)
from evsnn.attacks.projections import (
    NORMS,
    Projector,
    _fit_rows,
    _l0_box_keep_ties,
    _toward,
    linf_bounds,
    norms_of,
    project_l1_ball,
)

__all__ = ["fgsm", "bim", "pgd", "mim", "rfgsm", "eot_pgd", "RFGSM_VARIANTS", "PGD_RULES"]

#: "paper": PGD as Ding 2025 writes it (Eq. 23–24) with exact ball ∩ box projections; "code":
#: the L1 and L0 attacks of the authors' repository (``pgdl1.py``, ``pgdl0.py``). See :func:`pgd`.
PGD_RULES = ("paper", "code")
#: the code's default L0 step (``PGDL0(eps=500)``) and start half-width (``kappa=0.5``)
_CODE_L0_STEP = 500.0
_CODE_L0_KAPPA = 0.5

#: "tramer": R+FGSM of Tramèr et al. (2018); "wong": FGSM from a uniform random start of Wong,
#: Rice & Kolter (2020). See :func:`rfgsm`.
RFGSM_VARIANTS = ("tramer", "wong")


def _setup(source, x, y, target, model, rng, draws):
    src = source_iv(source)
    x = x_iv(x)
    B = x.shape[0]
    y = labels_iv(y, B)
    if target is not None:
        target = labels_iv(target, B, "target")
    stochastic = is_stochastic(model, src)
    gens = streams(rng, B, draws or stochastic, lazy=not stochastic)
    source_labels_iv(src, y, target)
    scores = model_fn(model, src, y)
    return src, x, y, target, gens, scores


def _objective(src, y, target, gens, eot_samples=1, signs_only=False):
    """``f(x) -> (objective [B], gradient [B, N])``: the source's loss for ``y`` (untargeted) or
    minus its loss for ``target``; EOT averages over draws of the source's noise. The gradient
    is float64, except with ``signs_only`` and one draw: then it is the source's own array (the
    L∞ step reads only its signs, which a float64 copy would not change)."""
    lab = y if target is None else target
    sign = 1.0 if target is None else -1.0
    r = gens if src.stochastic else None
    as_is = signs_only and eot_samples == 1

    def f(x_adv):
        # checked on every answer: the first tells the classes of a source that declares none
        out = source_answer(lambda: src(x_adv, lab, rng=r), lab, y, target)
        loss = np.asarray(out.loss, dtype=np.float64)
        grad = np.asarray(out.grad)
        if not (as_is and grad.dtype.kind in "biuf"):  # object or complex: converted as before
            grad = np.asarray(grad, dtype=np.float64)
        for _ in range(eot_samples - 1):
            o = src(x_adv, lab, rng=r)
            loss = loss + o.loss
            grad = grad + o.grad
        if eot_samples > 1:
            loss, grad = loss / eot_samples, grad / eot_samples
        finite_grad_iv(grad)  # a non-finite draw leaves the average non-finite too
        if target is None:
            return loss, grad  # sign is 1: no copy
        return sign * loss, sign * grad

    return f


def _finish(name, x, x_adv, loss, y, target, scores_fn, gens, m_stoch, params,
            scores=None, channels=1):
    if scores is None:
        scores = scores_fn(x_adv, gens if m_stoch else None)
    return AttackResult(
        x_adv=x_adv, loss=loss, success=success_of(scores, y, target), scores=scores,
        norms=norms_of(x_adv, x, channels), attack=name, params=params,
    )


def fgsm(source, x, y, *, eps, target=None, model=None, rng=None):
    """Fast gradient sign method (Goodfellow et al. 2015; Ding 2025 Eq. 22):
    ``x_adv = clip(x + ε sign(∇_x L(x, y)), 0, 1)``, taken in ``x``'s dtype to the extreme
    values inside the measured ε-ball (:func:`evsnn.attacks.projections.linf_bounds`).

    Parameters
    ----------
    source : GradientSource or callable
        ``source(x, y, *, rng) -> (loss [B], grad [B, N], scores [B, C])``.
    x : array [B, N]
        Clean inputs in [0, 1].
    y : int array [B]
        True labels.
    eps : float
        L∞ budget ε ≥ 0.
    target : int array [B], optional
        Targeted attack: step against the gradient of the loss toward ``target``.
    model : callable or GradientSource, optional
        The evaluated model (scores for success); default the source's own model.
    rng : seed or Generator, optional
        Required when the source or the model is stochastic.

    Returns
    -------
    AttackResult
        ``loss`` has one row (at ``x``).

    Examples
    --------
    >>> from evsnn.attacks.sources import CallableSource
    >>> w = np.array([1.0, -2.0, 0.0])
    >>> src = CallableSource(lambda x, y: (x @ w, np.tile(w, (len(x), 1)),
    ...                                    np.stack([x @ w, -x @ w], 1)))
    >>> fgsm(src, np.full((1, 3), 0.5), np.array([1]), eps=0.1).x_adv
    array([[0.6, 0.4, 0.5]])
    """
    eps = real_iv("eps", eps)
    src, x, y, target, gens, scores_fn = _setup(source, x, y, target, model, rng, False)
    f, g = _objective(src, y, target, gens, signs_only=True)(x)
    x_adv = _linf_step(x, g, eps, *linf_bounds(x, eps))
    return _finish("fgsm", x, x_adv, f[None], y, target, scores_fn, gens,
                   model_stochastic(model, src), {"eps": eps, "norm": "linf",
                                                   "targeted": target is not None})


def _default_alpha(alpha, eps, steps, norm, rule="paper"):
    if alpha is None:
        if norm == "l0":
            return _CODE_L0_STEP if rule == "code" else 1.0
        return derived_iv(eps, 2.5 * eps / steps, "the step 2.5·eps/steps")
    return real_iv("alpha", alpha)


def _start_iv(eps, norm, random_start):
    """The uniform L∞ start draws from [−ε, ε]: its width 2ε must be finite."""
    if norm == "linf" and random_start == "uniform":
        derived_iv(eps, 2.0 * eps, "the random start's width 2·eps")


@njit
def _linf_step_kernel(x_adv, g, alpha, lo, hi, out):
    """``out = clip(x_adv + α sign(g), lo, hi)`` element by element (flat arrays): the float64
    operations of NumPy's ``np.sign``, ``*``, ``+`` and ``np.clip`` (``max`` with ``lo``, then
    ``min`` with ``hi``, NaN passed through, ties to the bound), then rounded to ``out``'s dtype.
    ``sign(g)·α`` is exact (±α or 0), so the sum rounds once, as NumPy's does."""
    for k in range(out.shape[0]):
        gk = np.float64(g[k])
        if gk > 0:
            s = 1.0
        elif gk < 0:
            s = -1.0
        elif gk == 0:
            s = 0.0
        else:
            s = gk  # NaN
        z = s * alpha + np.float64(x_adv[k])
        bound = np.float64(lo[k])
        if not (z > bound or z != z):
            z = bound
        bound = np.float64(hi[k])
        if not (z < bound or z != z):
            z = bound
        out[k] = z


_STEP_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _linf_step(x_adv, g, alpha, lo, hi):
    """One PGD-L∞ step, ``project_linf(x_adv + α sign(g), x, ε)`` in ``x_adv``'s dtype, with
    ``(lo, hi) = linf_bounds(x, ε)``: one pass of :func:`_linf_step_kernel` over the arrays
    (the NumPy form below, for float16 pixels, makes three passes and two temporaries; each pass
    costs about as much as its arithmetic on an attack's small arrays)."""
    if np.shape(g) != x_adv.shape:
        # the kernel reads g flat, element k for pixel k: another shape would be read past its
        # end or paired with the wrong pixels (NumPy's broadcast refused it before the kernel)
        raise ValueError(
            f"the source returned a gradient of shape {np.shape(g)} for x of shape "
            f"{x_adv.shape}; a gradient source returns grad [B, N], one gradient per sample of "
            "x's shape (reshape it to x.shape)"
        )
    if (x_adv.dtype in _STEP_DTYPES and g.dtype in _STEP_DTYPES
            and lo.dtype in _STEP_DTYPES and hi.dtype in _STEP_DTYPES):
        out = np.empty(x_adv.shape, dtype=x_adv.dtype)
        _linf_step_kernel(np.ascontiguousarray(x_adv).reshape(-1),
                          np.ascontiguousarray(g).reshape(-1), float(alpha),
                          np.ascontiguousarray(lo).reshape(-1),
                          np.ascontiguousarray(hi).reshape(-1), out.reshape(-1))
        return out
    z = np.sign(g, dtype=np.float64)
    z *= alpha
    z += x_adv
    return np.clip(z, lo, hi, out=z).astype(x_adv.dtype, copy=False)


def pgd(
    source, x, y, *, eps, norm="linf", alpha=None, steps=10, random_start="uniform",
    start_sigma=None, restarts=1, l2_step="norm", l1_quantile=None, eot_samples=1, channels=1,
    rule="paper", target=None, model=None, rng=None,
):
    """Projected gradient descent (Madry et al. 2018; Ding 2025 Eq. 23–24) in L∞, L2, L1 or L0.

    ``x^k = Π_{ε}(x^{k−1} + α · d(∇_x L(x^{k−1}, y)))`` with the direction ``d`` of
    :func:`evsnn.attacks._common.step_direction` and the projection onto the ball ∩ box of
    :mod:`evsnn.attacks.projections`.

    Parameters
    ----------
    source, x, y, target, model, rng
        As in :func:`fgsm`.
    eps : float (int for L0)
        Budget: the radius for L∞ / L2 / L1, the number of changed pixels k for L0. Finite, and
        so must be what is derived from it (the default ``alpha``, the uniform L∞ start's
        width 2ε): an eps near the float maximum that makes them overflow raises ValueError.
    norm : {"linf", "l2", "l1", "l0"}
    alpha : float, optional
        Step size; default ``2.5 ε / steps`` (L0: 1.0, in units of the normalised gradient;
        L0 with ``rule="code"``: 500, the code's step on ``g/‖g‖₁``).
    steps : int, default 10
    random_start : {"uniform", "gaussian", None}, default "uniform"
        The authors' code (torchattacks) starts uniformly in the ball; Ding 2025's text says
        Gaussian noise (σ = ``start_sigma``, see :func:`evsnn.attacks._common.random_start`).
        ``None``: start at ``x`` (that is BIM).
    start_sigma : float, optional
        With ``rule="code"`` and L0: the half-width κ of the code's start ``U(−κ, κ)``
        (default 0.5); with ``rule="code"`` and L1 it must be None.
    restarts : int, default 1
        Independent runs; per sample the best is kept (success first, then the lowest margin
        of the model's scores).
    l2_step : {"norm", "norm_squared"}, default "norm"
        ``α g/‖g‖₂`` (the authors' code) or ``α g/‖g‖₂²`` (Ding 2025 Eq. 24 as printed).
    l1_quantile : float in [0, 1], optional
        L1 only: coordinates with ``|g|`` at or above this quantile are stepped (SLIDE,
        Tramèr & Boneh 2019; Croce & Hein's L1-APGD); default 0.95. With ``rule="code"`` it is
        the code's ``sparsity`` (default 0.5): the ``round((1 − q)·N)`` entries of largest
        ``|g|`` are stepped (q = 1: none).
    eot_samples : int, default 1
        Gradients averaged per step (see :func:`eot_pgd`).
    channels : int, default 1
        Channels per pixel of ``x`` flattened channel-major, ``N = channels·H·W`` in (C, H, W)
        order (the layout of a ConvNetwork's :class:`~evsnn.attacks.SNNSource`). The L0 budget
        k counts pixels: the projection (:func:`~evsnn.attacks.projections.project_l0`), the
        random start and the reported ``norms["l0"]`` treat a pixel's channels together, as in
        Croce & Hein's sparse PGD, where k = 10 on a 3×32×32 image means 10 pixels (up to 30
        entries). 1: every entry is a pixel.
    rule : {"paper", "code"}, default "paper"
        ``"paper"``: the iteration above, as Ding 2025 writes it. ``"code"``: the L1 and L0
        attacks of the authors' repository (DingJianhao/SNNEnhancingRobustness,
        ``global_tools/attack/pgdl1.py`` and ``pgdl0.py``), L1 and L0 only; for L∞ the default
        already is the repository's ``pgd.py`` (uniform start, sign step, clip to ball and box).
        Run in float64; see Notes.

    Returns
    -------
    AttackResult
        ``loss`` is ``[steps, B]``, one row per gradient evaluation (``[steps − 1, B]`` for L0
        with ``rule="code"``, whose first iteration takes no gradient). ``x_adv`` is in ``x``'s
        dtype and ``norms[norm] <= eps`` holds exactly for the float64 norms of the returned
        arrays, except for L0 with ``rule="code"``, which keeps every pixel tied with the k-th
        and can change more than k pixels.

    Notes
    -----
    ``rule="code"``, L1 (``PGDL1``): the start is ``δ = clip(x + r·l/‖l‖₁, 0, 1) − x`` with
    ``l`` Laplace(0, 1) per entry and one ray ``r ~ U(0, ε)`` (for the whole batch in the code,
    per sample here, from the sample's stream, so that a result does not depend on its
    batch-mates); ``random_start=None`` starts at ``δ = 0``. The gradient is taken at a point
    ``a`` that starts at ``x`` itself and accumulates, ``a ← a + δ`` after each step (so
    ``a = x + δ₁ + … + δ_k``, which can leave the ball and the box: a source that refuses
    inputs outside [0, 1] raises), while ``δ ← clip(x + B(δ + α d), 0, 1) − x`` with ``d`` of
    :func:`~evsnn.attacks._common.topk_sign_direction` and ``B`` the projection onto the L1
    ball alone (:func:`~evsnn.attacks.projections.project_l1_ball`, Duchi et al. 2008), not the
    exact ball ∩ box projection of ``rule="paper"``. ``x_adv = clip(x + δ, 0, 1)``; ``loss``
    rows are at the points ``a``.

    ``rule="code"``, L0 (``PGDL0``, after Croce & Hein's code; ``eps`` is k, ``alpha`` the
    code's ``eps``, ``start_sigma`` its ``kappa``, 1 ≤ k ≤ P): start
    ``clip(x + U(−κ, κ), 0, 1)`` on every entry (``random_start=None``: at ``x``); iteration 0
    only projects; iteration i ≥ 1 steps
    ``a ← a + (u − 0.5)·10⁻¹² + α g/(10⁻¹⁰ + ‖g‖₁)`` (u ~ U[0, 1) per entry, ‖g‖₁ over the
    whole image) and every iteration projects ``a ← x +`` the code's L0 step on ``a − x``
    (:func:`~evsnn.attacks.projections._l0_box_keep_ties`: ties with the k-th pixel kept). An
    ``rng`` is required even without a random start (the 10⁻¹² jitter). In float64 the jitter
    separates most ties; in the code's float32 it is below the resolution of pixel values
    above 2⁻¹⁶ ≈ 1.5·10⁻⁵ (``a + jitter`` rounds back to ``a``) and separates none there.

    Examples
    --------
    >>> from evsnn.attacks.sources import CallableSource
    >>> w = np.array([3.0, 4.0])
    >>> src = CallableSource(lambda x, y: (x @ w, np.tile(w, (len(x), 1)),
    ...                                    np.stack([x @ w, -x @ w], 1)))
    >>> r = pgd(src, np.full((1, 2), 0.5), np.array([1]), eps=0.1, norm="l2", steps=5,
    ...         random_start=None)
    >>> np.round(r.x_adv, 12), np.round(r.norms["l2"], 12)
    (array([[0.56, 0.58]]), array([0.1]))

    The authors' L1 attack steps the larger half of ``|g|`` (entry 1); its third gradient is
    taken at the accumulated point (0.5, 0.65), outside the ball:

    >>> r = pgd(src, np.full((1, 2), 0.5), np.array([1]), eps=0.1, norm="l1", alpha=0.05,
    ...         steps=3, random_start=None, rule="code")
    >>> np.round(r.x_adv, 12), np.round(r.loss[:, 0], 12)
    (array([[0.5, 0.6]]), array([3.5, 3.7, 4.1]))
    """
    rule = choice_iv("rule", rule, PGD_RULES)
    norm = choice_iv("norm", norm, NORMS)
    eps = eps_iv(eps, norm)
    steps = int_iv("steps", steps, low=1)
    restarts = int_iv("restarts", restarts, low=1)
    eot_samples = int_iv("eot_samples", eot_samples, low=1)
    choice_iv("random_start", random_start, RANDOM_STARTS)
    choice_iv("l2_step", l2_step, L2_STEPS)
    code = rule == "code"
    if l1_quantile is None:
        l1_quantile = 0.5 if code else 0.95
    l1_quantile = real_iv("l1_quantile", l1_quantile, high=1.0)
    if code:
        start_sigma = _code_rule_iv(norm, random_start, start_sigma)
    elif start_sigma is not None:
        start_sigma = real_iv("start_sigma", start_sigma)
    alpha = _default_alpha(alpha, eps, steps, norm, rule)
    _start_iv(eps, norm, random_start)
    src, x, y, target, gens, scores_fn = _setup(
        source, x, y, target, model, rng, random_start is not None or (code and norm == "l0")
    )
    channels = channels_iv(channels, x.shape[1])
    if code and norm == "l0" and not 1 <= eps <= x.shape[1] // channels:
        raise ValueError(
            f"eps={eps!r} pixels with rule='code' and norm='l0': the code's projection needs "
            f"1 <= k <= {x.shape[1] // channels} (the pixels of an input; its k = 0 would keep "
            "them all); pass a k in that range"
        )
    m_stoch = model_stochastic(model, src)
    objective = _objective(src, y, target, gens, eot_samples,
                           signs_only=norm == "linf" and not code)
    B = x.shape[0]
    best_x = best_loss = best_scores = best_succ = best_margin = None
    P = Projector(x, eps, norm, channels)  # L∞: the bounds computed once, here
    for _ in range(restarts):
        if code and norm == "l1":
            x_adv, losses = _pgd_code_l1(objective, x, eps, alpha, steps, l1_quantile,
                                         random_start is not None, gens)
        elif code:
            x_adv, losses = _pgd_code_l0(objective, x, eps, alpha, steps, start_sigma,
                                         random_start is not None, gens, channels)
        else:
            x_adv, losses = _pgd_paper(objective, x, eps, alpha, steps, norm, random_start,
                                       start_sigma, l2_step, l1_quantile, gens, channels, P)
        scores = scores_fn(x_adv, gens if m_stoch else None)
        succ = success_of(scores, y, target)
        margin = margin_of(scores, y, target)
        if best_x is None:
            best_x, best_loss, best_scores = x_adv, losses, scores
            best_succ, best_margin = succ, margin
            continue
        better = (succ & ~best_succ) | ((succ == best_succ) & (margin < best_margin))
        best_x = np.where(better[:, None], x_adv, best_x)
        best_loss = np.where(better[None], losses, best_loss)
        best_scores = np.where(better[:, None], scores, best_scores)
        best_succ = np.where(better, succ, best_succ)
        best_margin = np.where(better, margin, best_margin)
    params = {
        "eps": eps, "norm": norm, "alpha": alpha, "steps": steps, "random_start": random_start,
        "start_sigma": start_sigma, "restarts": restarts, "l2_step": l2_step,
        "l1_quantile": l1_quantile, "eot_samples": eot_samples, "channels": channels,
        "targeted": target is not None, "rule": rule,
    }
    name = "eot_pgd" if eot_samples > 1 else ("bim" if random_start is None else "pgd")
    return _finish(name, x, best_x, best_loss, y, target, scores_fn, gens, m_stoch, params,
                   scores=best_scores, channels=channels)


def _pgd_paper(objective, x, eps, alpha, steps, norm, random_start, start_sigma, l2_step,
               l1_quantile, gens, channels, P):
    """One run of ``rule="paper"``: ``(x_adv, loss [steps, B])``."""
    x_adv = _random_start(x, eps, norm, random_start, start_sigma, gens, channels, P)
    losses = np.empty((steps, x.shape[0]))
    for k in range(steps):
        f, g = objective(x_adv)
        losses[k] = f
        if norm == "linf":
            x_adv = _linf_step(x_adv, g, alpha, *P.bounds)
            continue
        d = step_direction(g, x_adv, norm, l2_step=l2_step, l1_quantile=l1_quantile)
        x_adv = P(x_adv + alpha * d)
    return x_adv, losses


def _code_rule_iv(norm, random_start, start_sigma):
    """The options ``rule="code"`` takes; returns the L0 start's half-width κ."""
    if norm not in ("l1", "l0"):
        raise ValueError(
            f"rule='code' with norm={norm!r}: the code rule is the authors' PGDL1 / PGDL0 and "
            "exists for norm 'l1' and 'l0' only; their L∞ pgd.py is what the default "
            "rule='paper' runs already: drop rule='code'"
        )
    if random_start == "gaussian":
        raise ValueError(
            f"random_start='gaussian' with rule='code' and norm={norm!r}: the code's start is "
            "its own ('uniform' here) or none (None); pass one of those"
        )
    if norm == "l1":
        if start_sigma is not None:
            raise ValueError(
                f"start_sigma={start_sigma!r} with rule='code' and norm='l1': the code's L1 "
                "start (a Laplace direction scaled to a U(0, eps) length) has no width; drop it"
            )
        return None
    if start_sigma is None:
        return _CODE_L0_KAPPA
    # the start draws U(−κ, κ): its width 2κ must be finite
    return real_iv("start_sigma", start_sigma, high=np.finfo(np.float64).max / 2)


def _accumulated_objective(objective, a):
    """The objective at the code's accumulated L1 point ``a``, which may lie outside [0, 1]."""
    try:
        return objective(a)
    except ValueError as exc:
        if not (a.size and (a.min() < 0 or a.max() > 1)):
            raise
        raise ValueError(
            "pgd(rule='code', norm='l1') takes its gradients at the authors' accumulated point "
            f"x + δ₁ + … + δ_k, here with values in [{float(a.min())!r}, {float(a.max())!r}], "
            f"outside [0, 1], "
            f"and the source refused it ({exc}); use rule='paper', or a source that accepts "
            "inputs outside [0, 1] (SNNSource(..., encoder='current', pixel_range='real'))"
        ) from exc


def _pgd_code_l1(objective, x, eps, alpha, steps, sparsity, start, gens):
    """One run of ``rule="code"`` for L1 (see :func:`pgd`'s Notes): ``(x_adv, loss)``."""
    B, N = x.shape
    x64 = x.astype(np.float64)
    delta = np.zeros((B, N))
    if start:
        for b in range(B):
            lap = gens[b].laplace(0.0, 1.0, N)
            ray = gens[b].uniform(0.0, eps)
            delta[b] = lap * (1.0 / max(np.abs(lap).sum(), 1e-6)) * ray  # the code's order
        delta = np.clip(x64 + delta, 0.0, 1.0) - x64
    m = int(np.round((1.0 - sparsity) * N))  # the code's torch.topk count
    a = x64.copy()
    losses = np.empty((steps, B))
    for k in range(steps):
        f, g = _accumulated_objective(objective, a)
        losses[k] = f
        delta = project_l1_ball(delta + alpha * topk_sign_direction(g, m), eps)
        delta = np.clip(x64 + delta, 0.0, 1.0) - x64
        a = a + delta
    # the code's output; rounded toward x so that the measured norm is within eps
    return _fit_rows(_toward(np.clip(x64 + delta, 0.0, 1.0), x), x, eps, "l1"), losses


def _pgd_code_l0(objective, x, k, alpha, steps, kappa, start, gens, channels):
    """One run of ``rule="code"`` for L0 (see :func:`pgd`'s Notes): ``(x_adv, loss)``."""
    B, N = x.shape
    x64 = x.astype(np.float64)
    a = x64.copy()
    u = np.empty((B, N))  # per-sample draws, in the order each sample's stream gives them
    if start:
        for b in range(B):
            u[b] = gens[b].uniform(-kappa, kappa, N)
        a = np.clip(x64 + u, 0.0, 1.0)
    losses = np.empty((steps - 1, B))
    for i in range(steps):
        if i > 0:
            f, g = objective(a)
            losses[i - 1] = f
            g = g / (1e-10 + np.abs(g).sum(axis=1, keepdims=True))
            for b in range(B):
                u[b] = gens[b].random(N)
            a = a + (u - 0.5) * 1e-12 + alpha * g
        a = x64 + _l0_box_keep_ties(a - x64, x64, k, channels)
    return a.astype(x.dtype, copy=False), losses


def bim(source, x, y, *, eps, norm="linf", alpha=None, steps=10, l2_step="norm", target=None,
        model=None, rng=None):
    """Basic iterative method (Kurakin et al. 2018): PGD started at ``x`` (Ding 2025: "BIM uses
    the raw input as the initial condition"), L∞ or L2. See :func:`pgd` for the parameters.

    Examples
    --------
    >>> from evsnn.attacks.sources import CallableSource
    >>> w = np.array([1.0, -1.0])
    >>> src = CallableSource(lambda x, y: (x @ w, np.tile(w, (len(x), 1)),
    ...                                    np.stack([x @ w, -x @ w], 1)))
    >>> bim(src, np.full((1, 2), 0.5), np.array([1]), eps=0.2, steps=4).x_adv
    array([[0.7, 0.3]])
    """
    norm = choice_iv("norm", norm, ("linf", "l2"))
    return pgd(source, x, y, eps=eps, norm=norm, alpha=alpha, steps=steps, random_start=None,
               l2_step=l2_step, target=target, model=model, rng=rng)


def eot_pgd(source, x, y, *, eps, eot_samples=10, norm="linf", alpha=None, steps=10,
            random_start="uniform", target=None, model=None, rng=None, **pgd_options):
    """Expectation over transformation PGD (Athalye et al. 2018; RSC's EOTPGD): each step
    averages the loss gradient over ``eot_samples`` draws of the source's noise (the stochastic
    encoder or smoothing noise), every draw taken from the sample's own spawned stream.

    Raises ``ValueError`` for a deterministic source, where every draw is the same gradient.
    Other parameters as in :func:`pgd`.

    Examples
    --------
    >>> from evsnn.attacks.sources import CallableSource
    >>> def noisy(x, y, rng):
    ...     g = np.stack([[1.0, -1.0] + r.normal(0, 0.1, 2) for r in rng])
    ...     return (x * g).sum(1), g, np.stack([(x * g).sum(1), -(x * g).sum(1)], 1)
    >>> src = CallableSource(noisy, uses_rng=True)
    >>> r = eot_pgd(src, np.full((2, 2), 0.5), np.array([1, 1]), eps=0.1, rng=0)
    >>> r.loss.shape, bool(np.all(np.abs(r.x_adv - 0.5) <= 0.1 + 1e-12))
    ((10, 2), True)
    """
    src = source_iv(source)
    if not src.stochastic:
        raise ValueError(
            "eot_pgd averages over the source's noise but the source is deterministic "
            f"({type(src).__name__}); use pgd(), or a stochastic encoder / uses_rng=True"
        )
    eot_samples = int_iv("eot_samples", eot_samples, low=1)
    return pgd(src, x, y, eps=eps, norm=norm, alpha=alpha, steps=steps,
               random_start=random_start, eot_samples=eot_samples, target=target, model=model,
               rng=rng, **pgd_options)


def mim(source, x, y, *, eps, norm="linf", alpha=None, steps=10, decay=1.0, target=None,
        model=None, rng=None):
    """Momentum iterative method (Dong et al. 2018; Ding 2023): accumulate
    ``g_k = μ g_{k−1} + ∇/‖∇‖₁`` and step ``α sign(g_k)`` (L∞) or ``α g_k/‖g_k‖₂`` (L2), then
    project. ``alpha`` defaults to ``ε / steps`` (Dong et al.), ``decay`` μ to 1.

    Examples
    --------
    >>> from evsnn.attacks.sources import CallableSource
    >>> w = np.array([1.0, -1.0])
    >>> src = CallableSource(lambda x, y: (x @ w, np.tile(w, (len(x), 1)),
    ...                                    np.stack([x @ w, -x @ w], 1)))
    >>> mim(src, np.full((1, 2), 0.5), np.array([1]), eps=0.2, steps=4).x_adv
    array([[0.7, 0.3]])
    """
    norm = choice_iv("norm", norm, ("linf", "l2"))
    eps = real_iv("eps", eps)
    steps = int_iv("steps", steps, low=1)
    decay = real_iv("decay", decay)
    alpha = eps / steps if alpha is None else real_iv("alpha", alpha)
    src, x, y, target, gens, scores_fn = _setup(source, x, y, target, model, rng, False)
    objective = _objective(src, y, target, gens)
    B = x.shape[0]
    P = Projector(x, eps, norm)
    x_adv = x.copy()
    mom = np.zeros(x.shape)
    losses = np.empty((steps, B))
    for k in range(steps):
        f, g = objective(x_adv)
        losses[k] = f
        n1 = np.abs(g).sum(axis=1, keepdims=True)
        mom = decay * mom + np.where(n1 > 0, g / np.where(n1 > 0, n1, 1.0), 0.0)
        d = step_direction(mom, x_adv, norm)
        x_adv = P(x_adv + alpha * d)
    params = {"eps": eps, "norm": norm, "alpha": alpha, "steps": steps, "decay": decay,
              "targeted": target is not None}
    return _finish("mim", x, x_adv, losses, y, target, scores_fn, gens,
                   model_stochastic(model, src), params)


def rfgsm(source, x, y, *, eps, alpha=None, variant="tramer", target=None, model=None, rng):
    """Single-step L∞ attacks that take a random step before the gradient-sign step.

    * ``variant="tramer"`` (default) — R+FGSM of Tramèr et al. (2018, "Ensemble adversarial
      training", Eq. 7): a random sign step ``x' = clip(x + α sign(N(0, I)), 0, 1)``, then a
      gradient-sign step of the rest of the budget, ``x_adv = Π(x' + (ε − α) sign(∇L(x')))``.
      ``alpha`` defaults to ε/2 and must not exceed ε.
    * ``variant="wong"`` — FGSM with a random start of Wong, Rice & Kolter (2020, "Fast is
      better than free", Alg. 3): ``δ ~ U(−ε, ε)^N``, ``x' = Π(x + δ)``, then
      ``x_adv = Π(x' + α sign(∇L(x')))``; ``alpha`` defaults to 1.25 ε (their choice) and may
      exceed ε.

    ``Π`` is the projection onto the L∞ ball of radius ε around ``x`` and the [0, 1] box
    (:func:`~evsnn.attacks.projections.project_linf`; Wong et al. clamp both ``x + δ`` and
    the result to the image range too).

    Which one is "RFGSM"? The issue defines it as "a small random step then a gradient-sign
    step" and credits Wong et al.; the Stable paper (Ding et al., ICML 2024, §4.1) writes that its
    adversarial training "follows RFGSM methods (Wong et al., 2019), with an initial random step
    of 0.001 and a fast-gradient-sign step with ε = 4/255". A small random step α followed by a
    gradient step is Tramèr et al.'s two-step form — Wong et al.'s start is uniform over the
    whole ε-ball, not small — so the default is ``"tramer"``, and Wong et al.'s attack, the one
    the citation names, is ``"wong"``. The authors' code (DingJianhao/stable-snn,
    ``main_train-v2.py``) does neither exactly: it adds ``0.001 · N(0, I)`` (Gaussian, not its
    sign), steps ``ε sign(g)`` from there and clips to [0, 1] only, so its output can leave the
    ε-ball by the random step; evsnn keeps every output inside its ball and does not offer that
    form.

    Parameters
    ----------
    source, x, y, target, model
        As in :func:`fgsm`.
    eps : float
        L∞ budget ε ≥ 0; for ``"wong"`` 1.25 ε and 2ε (the default step, the start's width) must
        be finite too (ValueError).
    alpha : float, optional
        Random step (``"tramer"``) or gradient step (``"wong"``); defaults ε/2 and 1.25 ε.
    variant : {"tramer", "wong"}, default "tramer"
    rng : seed or Generator
        Required: both variants draw their random step from it (sample b from its own spawned
        stream).

    Returns
    -------
    AttackResult
        ``loss`` has one row: the objective at ``x'``.

    Examples
    --------
    >>> from evsnn.attacks.sources import CallableSource
    >>> w = np.array([1.0, -1.0])
    >>> src = CallableSource(lambda x, y: (x @ w, np.tile(w, (len(x), 1)),
    ...                                    np.stack([x @ w, -x @ w], 1)))
    >>> x, y = np.full((3, 2), 0.5), np.array([1, 1, 1])
    >>> r = rfgsm(src, x, y, eps=0.25, rng=0)
    >>> bool(np.all(np.abs(r.x_adv - 0.5) <= 0.25)), r.params["alpha"]
    (True, 0.125)
    >>> rfgsm(src, x, y, eps=0.25, variant="wong", rng=0).x_adv   # 1.25 ε step: at the corner
    array([[0.75, 0.25],
           [0.75, 0.25],
           [0.75, 0.25]])
    """
    variant = choice_iv("variant", variant, RFGSM_VARIANTS)
    eps = real_iv("eps", eps)
    if variant == "tramer":
        alpha = eps / 2 if alpha is None else real_iv("alpha", alpha, high=eps)
    else:
        alpha = (derived_iv(eps, 1.25 * eps, "the step 1.25·eps") if alpha is None
                 else real_iv("alpha", alpha))
        _start_iv(eps, "linf", "uniform")
    src, x, y, target, gens, scores_fn = _setup(source, x, y, target, model, rng, True)
    B, N = x.shape
    P = Projector(x, eps, "linf")  # the ball's ends computed once
    if variant == "tramer":
        noise_sign = (np.stack([np.sign(g.standard_normal(N)) for g in gens]) if B
                      else np.zeros((0, N)))
        x1 = np.clip(x + alpha * noise_sign, 0.0, 1.0).astype(x.dtype, copy=False)
        step = eps - alpha
    else:
        x1 = _random_start(x, eps, "linf", "uniform", None, gens, proj=P)
        step = alpha
    f, g = _objective(src, y, target, gens)(x1)
    x_adv = P(x1 + step * np.sign(g))
    return _finish("rfgsm", x, x_adv, f[None], y, target, scores_fn, gens,
                   model_stochastic(model, src),
                   {"eps": eps, "alpha": alpha, "variant": variant, "norm": "linf",
                    "targeted": target is not None})
