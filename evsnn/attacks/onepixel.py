"""One-pixel attack (Su et al. 2019; Ding 2023): black-box differential evolution over
(pixel index, colour) tuples, using only the model's scores."""

from __future__ import annotations

import numpy as np
from scipy.optimize import differential_evolution

from evsnn._checks import class_labels_iv
from evsnn.attacks._common import AttackResult, model_fn, streams, success_of
from evsnn.attacks._iv import channels_iv, int_iv, labels_iv, real_iv, x_iv
from evsnn.attacks.losses import _log_softmax
from evsnn.attacks.projections import norms_of

__all__ = ["one_pixel"]


def _apply(xb, cand, channels):
    """Images ``[S, N]`` from candidates ``[(1 + C)·pixels, S]``: per changed pixel its index
    p in ``[0, P)`` (floored) and its C channel values, written to entries ``c·P + p`` of the
    channel-major row (P = N / C pixels)."""
    N = xb.shape[0]
    P = N // channels
    S = cand.shape[1]
    out = np.repeat(xb[None], S, axis=0)
    rows = np.arange(S)
    w = 1 + channels
    for j in range(cand.shape[0] // w):
        p = np.clip(np.floor(cand[w * j]).astype(np.int64), 0, P - 1)
        for c in range(channels):
            out[rows, c * P + p] = np.clip(cand[w * j + 1 + c], 0.0, 1.0)
    return out


def one_pixel(model, x, y, *, pixels=1, popsize=400, maxiter=100, mutation=0.5,
              recombination=1.0, channels=1, target=None, rng):
    """One-pixel (few-pixel) attack by differential evolution.

    A candidate is ``(index_1, colour_1, ..., index_p, colour_p)`` — Su et al.'s
    ``(x, y, R, G, B)`` per pixel — with pixel indices in ``[0, P)`` (floored) and each colour
    ``channels`` values in [0, 1] that replace the pixel's value in every channel; the
    objective (minimised) is the model's softmax probability
    of the true class (untargeted) or minus that of the target (targeted). Following Su et al.,
    DE/rand/1 with F = ``mutation`` = 0.5 and no crossover (``recombination`` = 1: the trial is
    the mutant) from a uniform initial population of ``popsize`` candidates, for at most
    ``maxiter`` generations, stopping early once the best candidate succeeds. scipy's
    :func:`~scipy.optimize.differential_evolution` runs it, seeded with the sample's own
    generator spawned from ``rng``; the population is evaluated in one model call per
    generation.

    Parameters
    ----------
    model : callable or GradientSource
        ``model(x) -> scores [B, C]`` (or a source's ``predict``); only scores are used.
    x : array [B, N]
    y : int array [B]
    pixels : int, default 1
        Pixels changed (the L0 budget, in pixels).
    channels : int, default 1
        Channels per pixel of ``x`` flattened channel-major, ``N = channels·P`` in (C, H, W)
        order (a ConvNetwork's layout): the attack sets all C entries ``c·P + p`` of a pixel
        p, and ``norms["l0"]`` counts pixels. 1: every entry is a pixel.
    popsize, maxiter : int, default 400, 100 (Su et al.)
    mutation, recombination : float
    target : int array [B], optional
    rng : seed or Generator

    Returns
    -------
    AttackResult
        ``loss`` ``[maxiter + 1, B]``: the negated best objective per generation (the attack
        increases it; rows after an early stop repeat the last value).

    Examples
    --------
    >>> model = lambda x: np.stack([x[:, 0] - 0.5, x[:, 1]], axis=1)
    >>> r = one_pixel(model, np.array([[0.9, 0.2]]), np.array([0]), popsize=20, maxiter=5,
    ...               rng=0)
    >>> bool(r.success[0]), int(r.norms["l0"][0])
    (True, 1)
    """
    if model is None or not callable(model) and not hasattr(model, "predict"):
        raise TypeError(
            f"model must be a callable x -> scores or a GradientSource, got {type(model).__name__}"
        )
    if getattr(model, "has_predict", True) is False:
        raise TypeError(
            f"model is a {type(model).__name__} without predict(); one_pixel needs forward-only "
            "scores: pass CallableSource(..., predict=fn) or a plain callable x -> scores"
        )
    pixels = int_iv("pixels", pixels, low=1)
    popsize = int_iv("popsize", popsize, low=5)
    maxiter = int_iv("maxiter", maxiter, low=0)
    mutation = real_iv("mutation", mutation, high=2.0)
    recombination = real_iv("recombination", recombination, high=1.0)
    x = x_iv(x)
    B, N = x.shape
    if N == 0:
        raise ValueError("x has no pixels (N = 0); a one-pixel attack needs N >= 1")
    channels = channels_iv(channels, N)
    P = N // channels
    y = labels_iv(y, B)
    if target is not None:
        target = labels_iv(target, B, "target")
    gens = streams(rng, B, True)
    scores_fn = model_fn(model, None, y)
    stochastic = bool(getattr(model, "stochastic", False))
    w = 1 + channels
    dims = w * pixels
    bounds = ([(0.0, float(P))] + [(0.0, 1.0)] * channels) * pixels
    x_adv = x.copy()
    losses = np.empty((maxiter + 1, B))
    for b in range(B):
        g = gens[b]
        xb = x[b]
        k = y[b] if target is None else target[b]
        sign = 1.0 if target is None else -1.0
        r = [g] if stochastic else None

        def scores_of(imgs):
            rr = None if r is None else r * imgs.shape[0]
            return scores_fn(imgs.astype(x.dtype, copy=False), rr)

        def objective(cand):
            cand = np.atleast_2d(np.asarray(cand, dtype=np.float64).T).T
            s = np.asarray(scores_of(_apply(xb, cand, channels)), dtype=np.float64)
            if k >= s.shape[1]:  # 1-based labels would index past the scores
                class_labels_iv("y" if target is None else "target", [k], s.shape[1],
                                classes_of="the model's output")
            return sign * np.exp(_log_softmax(s)[:, k])

        def hit(cand):
            s = scores_of(_apply(xb, np.asarray(cand, dtype=np.float64)[:, None], channels))
            tb = None if target is None else target[b : b + 1]
            return bool(success_of(s, y[b : b + 1], tb)[0])

        init = np.empty((popsize, dims))
        init[:, 0::w] = g.random((popsize, pixels)) * P
        for c in range(channels):
            init[:, 1 + c :: w] = g.random((popsize, pixels))
        history = []

        def callback(intermediate_result):
            history.append(-intermediate_result.fun)
            return hit(intermediate_result.x)

        init_energy = objective(init.T)
        best0 = int(np.argmin(init_energy))
        history.append(-init_energy[best0])
        if hit(init[best0]) or maxiter == 0:
            best = init[best0]
        else:
            res = differential_evolution(
                objective, bounds, strategy="rand1bin", maxiter=maxiter, popsize=popsize,
                tol=0.0, atol=0.0, mutation=mutation, recombination=recombination, rng=g,
                callback=callback, polish=False, init=init, updating="deferred",
                vectorized=True,
            )
            best = res.x
        x_adv[b] = _apply(xb, np.asarray(best, dtype=np.float64)[:, None], channels)[0]
        hist = np.asarray(history[: maxiter + 1], dtype=np.float64)
        losses[: hist.size, b] = hist
        losses[hist.size :, b] = hist[-1]
    scores = scores_fn(x_adv, gens if stochastic else None)
    params = {"pixels": pixels, "popsize": popsize, "maxiter": maxiter, "mutation": mutation,
              "recombination": recombination, "channels": channels,
              "targeted": target is not None}
    return AttackResult(x_adv=x_adv, loss=losses, success=success_of(scores, y, target),
                        scores=scores, norms=norms_of(x_adv, x, channels), attack="one_pixel",
                        params=params)
