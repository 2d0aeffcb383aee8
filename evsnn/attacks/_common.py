"""Shared pieces of the attacks: the result record, the source, per-sample random streams,
random starts, step directions and success evaluation (argument validation:
:mod:`evsnn.attacks._iv`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from evsnn._checks import ClassRangeError, class_labels_iv
from evsnn._records import compact_repr
from evsnn._streams import SampleStreams
from evsnn.attacks.projections import l2_norm, project
from evsnn.attacks.sources import GradientSource, as_source

RANDOM_STARTS = ("uniform", "gaussian", None)
L2_STEPS = ("norm", "norm_squared")
#: what the classes of a gradient source's scores are called in the messages
SOURCE_OUTPUT = "the source's output"
#: ... and those of the evaluated model's (the source's own when no model is given)
MODEL_OUTPUT = "the model's output"


@dataclass(frozen=True)
class AttackResult:
    """Adversarial inputs and the record of the attack that made them.

    Attributes
    ----------
    x_adv : ndarray [B, N]
        Adversarial inputs, in [0, 1] and inside the attack's norm ball around ``x``.
    loss : ndarray [iters, B]
        The objective the attack increases, at the point where each gradient was taken (row 0:
        the starting point; for :func:`~evsnn.attacks.pgd`'s ``rule="code"`` see there).
        Untargeted: the source's per-sample loss (cross-entropy, or DLR for APGD-DLR; NaN rows
        for the samples :func:`~evsnn.attacks.apgd`'s ``rule="code"`` does not attack);
        targeted: its negative toward the target. Averaged over draws for EOT; for restarts,
        the trajectory of the restart that was kept. Attacks without gradient iterations
        (OnePixel) record their objective per generation.
    success : ndarray [B] of bool
        Untargeted: the model's prediction on ``x_adv`` differs from ``y``; targeted: it equals
        the target.
    scores : ndarray [B, C]
        The model's scores on ``x_adv``.
    norms : dict of ndarray [B]
        ``‖x_adv − x‖`` for "linf", "l2", "l1" and "l0", measured in float64 by
        :func:`~evsnn.attacks.norms_of`; "l0" counts changed pixels (entries unless the attack
        was given ``channels``). Every budgeted attack guarantees ``norms[norm] <= eps`` for
        these very numbers, in float32 as in float64 (all but the authors' L0 attack,
        ``pgd(..., norm="l0", rule="code")``, which keeps ties and can change more pixels).
    attack : str
    params : dict
        The attack's parameters (budget, step, iterations, ...).
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    x_adv: np.ndarray
    loss: np.ndarray
    success: np.ndarray
    scores: np.ndarray
    norms: dict
    attack: str
    params: dict = field(default_factory=dict)


# --- sources and random streams ----------------------------------------------------------------
def source_iv(source):
    return as_source(source, "source")


def streams(rng, B, needed, *, lazy=False):
    """One Generator per sample from ``SeedSequence.spawn`` (sample b always gets child b, so a
    sample's draws do not depend on the batch size); ``None`` when nothing is drawn. ``lazy``
    (for attacks whose source and model draw nothing): a non-negative integer seed gives a
    :class:`evsnn._streams.SampleStreams`, the same generators made when first read, whose
    uniform random starts are drawn without them."""
    if lazy and isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return SampleStreams(rng, B)
    if rng is None:
        if needed:
            raise ValueError(
                "rng is None but this attack draws random numbers (random start, stochastic "
                "source or model); pass rng= (a seed or numpy Generator)"
            )
        return None
    try:
        gen = np.random.default_rng(rng)
    except TypeError as exc:
        raise TypeError(
            f"rng must be a seed, SeedSequence, BitGenerator or Generator, got {type(rng).__name__}"
        ) from exc
    return gen.spawn(B)


# --- model evaluation --------------------------------------------------------------------------
def model_fn(model, source, y):
    """``scores(x, rngs)``: the evaluated model (``model``, else the source's own forward pass).
    A source without ``predict`` gives the scores of its loss for ``y``, checked against ``y``
    as its first answer would be (:func:`source_answer`)."""
    of = SOURCE_OUTPUT if model is None else MODEL_OUTPUT
    if model is None:
        model = source
    if isinstance(model, GradientSource):
        if model.has_predict:
            return lambda x, r: np.asarray(model.predict(x, rng=r if model.stochastic else None))
        return lambda x, r: np.asarray(source_answer(
            lambda: model(x, y, rng=r if model.stochastic else None), y, y, None, of).scores)
    if callable(model):
        return lambda x, r: np.asarray(model(x))
    raise TypeError(
        f"model must be a callable x -> scores [B, C] or a GradientSource, got "
        f"{type(model).__name__}"
    )


def model_stochastic(model, source):
    """Whether the evaluated model (``model``, else the source) draws random numbers, so that
    its scores need the sample streams."""
    m = source if model is None else model
    return bool(getattr(m, "stochastic", False))


def is_stochastic(model, source):
    """Whether the attack draws random numbers at all: the evaluated model or the gradient
    source does."""
    return model_stochastic(model, source) or bool(getattr(source, "stochastic", False))


# --- labels against the classes ------------------------------------------------------------------
def source_labels_iv(src, y, target=None):
    """Refuse labels ``y`` (and ``target``) at or past the classes the source declares
    (``n_out``), named as the attacks' arguments, before the source runs: a label >= C (1-based
    labels) would otherwise reach the score loss and be reported under that function's own
    argument names. A source that declares nothing is checked on its first answer
    (:func:`source_answer`), never by an extra call: a source with hidden state (its own
    generator, a counter) would answer the attack differently after one."""
    n = getattr(src, "n_out", None)
    if n is not None and np.size(y):
        scores_labels_iv(n, y, target)


def scores_labels_iv(n_classes, y, target=None, classes_of=SOURCE_OUTPUT):
    """:func:`evsnn._checks.class_labels_iv` for ``y`` and ``target`` against ``n_classes``
    classes of ``classes_of``."""
    class_labels_iv("y", y, n_classes, classes_of=classes_of)
    if target is not None:
        class_labels_iv("target", target, n_classes, classes_of=classes_of)


def source_answer(call, lab, y, target=None, classes_of=SOURCE_OUTPUT):
    """``call()``, a source's answer to the labels ``lab`` (``y``, or ``target`` when
    targeted), with ``y`` and ``target`` checked against its scores' classes.

    A source that did not declare its classes tells them in its answer, so the check follows
    the call; it still comes before the attack takes any loss. The source's own loss may refuse
    ``lab`` first: a refusal by evsnn's label check (:class:`evsnn._checks.ClassRangeError`,
    e.g. from :func:`~evsnn.attacks.losses.ce_loss` inside a ``fn(x, y)``) carries the class
    count and is renamed to the attack's argument; any other error of user code propagates as
    raised (declare ``n_out`` to have the labels checked before the source runs).
    """
    try:
        out = call()
    except ClassRangeError as exc:
        # only a refusal of the labels this attack handed over is renamed
        if exc.classes_of not in (SOURCE_OUTPUT, MODEL_OUTPUT) and np.array_equal(exc.labels,
                                                                                  lab):
            try:
                scores_labels_iv(exc.n_classes, y, target, classes_of)
            except ValueError as mine:
                raise mine from exc
        raise
    scores_labels_iv(np.shape(out.scores)[1], y, target, classes_of)
    return out


def finite_grad_iv(grad, what="the source's input gradient"):
    """``grad`` if every entry is finite, else a ValueError naming the first bad entry: a step
    along NaN or ±inf leaves NaN pixels, outside the norm ball and the [0, 1] box that every
    attack guarantees (and attacks would differ in how they skip it)."""
    g = np.asarray(grad)
    if g.dtype.kind in "fc" and not np.isfinite(g).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(g))[0])
        raise ValueError(
            f"{what} has the non-finite entry {g[bad].item()!r} at index {bad}; an attack steps "
            "along the gradient and needs it finite: check the source (float32 overflow in its "
            "model, NaN or infinite weights or inputs)"
        )
    return grad


def checked_score_loss(score_loss, y, target=None):
    """``score_loss`` preceded by the check of ``y`` and ``target`` against the scores' classes
    (the losses the attacks hand to ``score_loss_grad`` would name their own arguments)."""
    def checked(s):
        scores_labels_iv(np.shape(s)[1], y, target)
        return score_loss(s)
    return checked


def success_of(scores, y, target):
    """Untargeted: the prediction differs from ``y``; targeted: it equals ``target``. Labels at
    or past the classes of ``scores`` (the evaluated model's) are refused, not counted."""
    if np.ndim(scores) == 2:
        scores_labels_iv(np.shape(scores)[1], y, target, MODEL_OUTPUT)
    pred = np.argmax(scores, axis=1)
    return pred == target if target is not None else pred != y


def margin_of(scores, y, target):
    """Lower is better for the attacker: untargeted ``z_y − max_{i≠y} z_i``; targeted
    ``max_{i≠t} z_i − z_t``."""
    z = np.asarray(scores, dtype=np.float64)
    rows = np.arange(z.shape[0])
    k = y if target is None else target
    other = z.copy()
    other[rows, k] = -np.inf
    best_other = other.max(axis=1) if z.shape[1] > 1 else np.full(z.shape[0], -np.inf)
    return z[rows, k] - best_other if target is None else best_other - z[rows, k]


# --- random starts and steps -------------------------------------------------------------------
def random_start(x, eps, norm, kind, sigma, gens, channels=1, proj=None):
    """A random starting point in the ball and box, drawn sample by sample from ``gens``.

    uniform: uniform in the L∞ / L2 / L1 ball (L0: k random pixels — all ``channels`` entries
    of each — set to uniform values in [0, 1]). gaussian: ``x + N(0, σ²I)`` (L0: on the
    entries of k random pixels), then projected; default σ: ε/2 (L∞), ε/√N (L2, expected norm
    ε), ε/N (L1), 0.5 (L0). Pixels are groups of ``channels`` entries of a row flattened
    channel-major (C, H, W); with ``channels=1`` a pixel is an entry. ``proj``: the attack's
    :class:`~evsnn.attacks.projections.Projector` for (x, ε, norm, channels), if it has one.
    A Gaussian start whose σ·N(0, 1) overflows (σ near the float maximum) raises ValueError.
    """
    B, N = x.shape
    if kind is None:
        return x.copy()
    if sigma is None:
        sigma = {"linf": eps / 2, "l2": eps / np.sqrt(max(N, 1)), "l1": eps / max(N, 1),
                 "l0": 0.5}[norm]
    if norm == "linf" and kind == "uniform" and isinstance(gens, SampleStreams) and (
            not math.isinf(2.0 * float(eps))):
        # every sample's draws in one compiled loop, the loop's values bit for bit
        z = x.astype(np.float64) + gens.uniform(-eps, eps, N)
        return project(z, x, eps, norm, channels) if proj is None else proj(z)
    z = np.empty((B, N), dtype=np.float64)
    for b in range(B):
        g = gens[b]
        xb = x[b].astype(np.float64)
        if norm == "l0":
            P = N // channels
            k = min(int(eps), P)
            pix = g.choice(P, size=k, replace=False) if k else np.zeros(0, dtype=np.int64)
            # entry c·P + p of pixel p; channel-major draws, so channels=1 draws as one entry each
            idx = (np.arange(channels)[:, None] * P + pix[None, :]).ravel()
            n = idx.size
            zb = xb.copy()
            zb[idx] = g.random(n) if kind == "uniform" else xb[idx] + sigma * g.standard_normal(n)
            z[b] = zb
            continue
        if kind == "gaussian":
            n = g.standard_normal(N)
            if N and math.isinf(float(sigma) * float(np.abs(n).max())):
                # an infinite offset has no point to project (inf − inf in the L2/L1 norms)
                raise ValueError(
                    f"the Gaussian random start's σ = {float(sigma)!r} (eps={eps!r}) is too large: "
                    "σ·N(0, 1) overflows; pass a smaller eps or start_sigma (the ball covers "
                    "the whole [0, 1] box from eps = 1 for L∞, √N for L2, N for L1)"
                )
            z[b] = xb + sigma * n
        elif norm == "linf":
            if math.isinf(2.0 * float(eps)):
                # NumPy refuses a range high − low that overflows; 2·U(−ε/2, ε/2) is exactly
                # U(−ε, ε) as NumPy draws it (a factor of 2 commutes with rounding)
                z[b] = xb + 2.0 * g.uniform(-eps / 2, eps / 2, N)
            else:
                z[b] = xb + g.uniform(-eps, eps, N)
        elif norm == "l2":
            v = g.standard_normal(N)
            n = np.sqrt(v @ v)
            r = eps * g.random() ** (1.0 / max(N, 1))
            z[b] = xb + (v / n * r if n > 0 else 0.0)
        else:  # l1: E_1..E_N / (E_1 + ... + E_{N+1}) is uniform on the simplex {Σ ≤ 1}
            e = g.standard_exponential(N + 1)
            signs = np.where(g.random(N) < 0.5, -1.0, 1.0)
            if math.isinf(float(eps) * float(e.max())):  # Python floats: inf, no warning
                # eps near the float maximum: eps·e overflows (a warning), the fractions do not
                z[b] = xb + eps * (signs * e[:N] / e.sum())
            else:  # the order the starts have always been drawn in, bit for bit
                z[b] = xb + eps * signs * e[:N] / e.sum()
    return project(z, x, eps, norm, channels) if proj is None else proj(z)


def step_direction(g, x_adv, norm, *, l2_step="norm", l1_quantile=0.95):
    """The ascent direction of one iteration for ``norm`` (before the step size).

    linf: ``sign(g)``. l2: ``g/‖g‖₂`` (``"norm"``, with the norm of
    :func:`~evsnn.attacks.projections.l2_norm`, so any nonzero gradient steps) or ``g/‖g‖₂²``
    (``"norm_squared"``, Ding 2025 Eq. 24 as printed; ``Σg²`` as summed, which is 0 — no step
    — for ``‖g‖ <`` about 1.5e-162, where the step would be over 1e162 long). l1: the sparse
    step of SLIDE / L1-APGD — among coordinates that can still move in the direction of their
    gradient (not pinned at 0 with g < 0 or at 1 with g > 0), those with ``|g|`` at or above
    the ``l1_quantile`` quantile get ``sign(g)/m``
    (m = their number), so ``‖direction‖₁ = 1``. l0: ``g · N / ‖g‖₁`` (mean absolute entry 1),
    the normalised step of sparse PGD (Croce & Hein 2019, who divide by the L1 norm of the whole
    image's gradient, all channels together; the pixel grouping enters only through the
    projection). A zero gradient gives no step.
    """
    g = np.asarray(g, dtype=np.float64)
    B, N = g.shape
    if norm == "linf":
        return np.sign(g)
    if norm == "l2":
        if l2_step == "norm":  # scaled where Σg² underflows: a gradient of 1e-170 still steps
            den = l2_norm(g, axis=1, keepdims=True)
        else:
            den = (g * g).sum(axis=1, keepdims=True)
        return np.where(den > 0, g / np.where(den > 0, den, 1.0), 0.0)
    if norm == "l0":
        n1 = np.abs(g).sum(axis=1, keepdims=True)
        return np.where(n1 > 0, g * N / np.where(n1 > 0, n1, 1.0), 0.0)
    free = ~(((x_adv <= 0) & (g < 0)) | ((x_adv >= 1) & (g > 0)))
    a = np.abs(g)
    out = np.zeros_like(g)
    for b in range(B):
        cand = free[b] & (a[b] > 0)
        if not cand.any():
            continue
        thr = np.quantile(a[b][cand], l1_quantile)
        sel = cand & (a[b] >= thr)
        out[b, sel] = np.sign(g[b, sel]) / sel.sum()
    return out


def topk_sign_direction(g, m):
    """The L1 step direction of Ding 2025's code (``PGDL1``, after advertorch's sparse L1
    descent): per row the ``m`` entries of largest ``|g|`` (ties to the lower index), of those
    the ones with ``g ≠ 0`` get ``sign(g)``, divided by their number ``n`` (by ``max(n, 1e-6)``
    in the code, so no step when ``n = 0``). Unlike :func:`step_direction`'s L1 step, entries
    pinned at a box face are not excluded. ``m = round((1 − sparsity)·N)`` is the caller's.

    Examples
    --------
    >>> topk_sign_direction(np.array([[4.0, -3.0, 3.0, 0.0]]), 2)
    array([[ 0.5, -0.5,  0. ,  0. ]])
    """
    g = np.asarray(g, dtype=np.float64)
    B, N = g.shape
    a = np.abs(g)
    top = np.argsort(-a, axis=1, kind="stable")[:, :m]
    sel = np.zeros((B, N), dtype=bool)
    sel[np.arange(B)[:, None], top] = True
    d = np.where(sel & (a > 0), np.sign(g), 0.0)
    return d / np.maximum(np.abs(d).sum(axis=1, keepdims=True), 1e-6)
