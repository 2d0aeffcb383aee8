"""Choosing HART's surrogate width γ (HART §4.3, Fig. 3) on a selection set.

HART tunes γ to balance rate and temporal information. evsnn keeps the choice honest: the search
takes an objective evaluated on a *selection* set (e.g. attack success of HART-FGSM on held-out
training images) and never sees the evaluation set; the caller must pass disjoint index sets and
the search refuses overlapping ones.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from evsnn._checks import int_iv, real_iv
from evsnn._records import compact_repr

__all__ = ["GammaSearch", "search_gamma"]

_GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class GammaSearch:
    """Result of :func:`search_gamma`: the best γ, its objective value and every evaluation."""

    __repr__ = compact_repr  # arrays as dtype and shape

    gamma: float
    value: float
    evaluated: tuple  # ((gamma, value), ...) in evaluation order
    method: str


def search_gamma(objective, *, selection_index, evaluation_index, method="grid",
                 grid=(0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0), bounds=(0.1, 4.0), iterations=12):
    """Maximise ``objective(gamma)`` over γ.

    Parameters
    ----------
    objective : callable
        ``objective(gamma) -> float`` computed on the selection set only (e.g. the attack success
        rate of HART with ``Triangle(gamma)`` on ``selection_index``).
    selection_index, evaluation_index : array of int
        The two disjoint sample sets, as non-negative indices into **one** pool of samples
        (e.g. both into ``load_digits("all")``); they are checked, so that γ is never chosen on
        the data it is evaluated on. Indices into two different arrays (a train and a test
        split) say nothing about overlap and are refused when their numbers coincide: index
        one pool instead.
    method : {"grid", "golden"}
        Exhaustive grid, or golden-section search on ``bounds`` (assumes a unimodal objective,
        as HART Fig. 3 suggests).

    Examples
    --------
    >>> r = search_gamma(lambda g: -(g - 1.2) ** 2, selection_index=[0, 1], evaluation_index=[2],
    ...                  method="golden", iterations=40)
    >>> round(r.gamma, 4)
    1.2
    """
    sel = _index_iv("selection_index", selection_index)
    ev = _index_iv("evaluation_index", evaluation_index)
    overlap = np.intersect1d(sel, ev)
    if overlap.size:
        raise ValueError(
            f"selection_index and evaluation_index share {overlap.size} samples "
            f"(e.g. {overlap[:5].tolist()}); "
            "choose γ on data disjoint from the evaluation set (both are indices into one pool "
            "of samples; for a train and a test split, index their concatenation, e.g. "
            "load_digits('all'))"
        )
    if sel.size == 0:
        raise ValueError("selection_index is empty; pass the samples the objective is computed on")
    evaluated = []

    def f(g):
        v = float(objective(float(g)))
        if math.isnan(v):  # max() cannot order a NaN: the first one would win or be skipped
            raise ValueError(
                f"objective(gamma={float(g)!r}) returned nan; the objective must return a number "
                "to maximise (e.g. an attack success rate on the selection set)"
            )
        evaluated.append((float(g), v))
        return v

    if method == "grid":
        if len(grid) == 0 or not all(
                isinstance(g, numbers.Real) and math.isfinite(g) and g > 0 for g in grid):
            raise ValueError(f"grid={tuple(grid)!r} must be non-empty and positive, finite γ "
                             "values")
        for g in grid:
            f(g)
    elif method == "golden":
        lo, hi = (real_iv("bounds", b, hint="the interval (low, high) of γ to search")
                  for b in bounds)
        if not 0 < lo < hi:
            raise ValueError(f"bounds={bounds!r} must satisfy 0 < low < high")
        iterations = int_iv("iterations", iterations, what="golden-section steps")
        a, b = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
        fa, fb = f(a), f(b)
        for _ in range(int(iterations)):
            if fa >= fb:
                hi, b, fb = b, a, fa
                a = hi - _GOLDEN * (hi - lo)
                fa = f(a)
            else:
                lo, a, fa = a, b, fb
                b = lo + _GOLDEN * (hi - lo)
                fb = f(b)
    else:
        raise ValueError(f"method={method!r} must be 'grid' or 'golden'")
    best = max(evaluated, key=lambda gv: gv[1])
    return GammaSearch(best[0], best[1], tuple(evaluated), method)


def _index_iv(name, index):
    """``index`` as a 1-D array of non-negative integer sample indices (a boolean mask would
    compare as the values 0 and 1, so two disjoint masks would look like overlapping index sets;
    a negative index names a sample counted from the pool's end, which the overlap check cannot
    match without the pool's size)."""
    arr = np.asarray(index)
    if arr.size and arr.dtype.kind not in "iu":
        hint = (" (a boolean mask: pass np.flatnonzero(mask))" if arr.dtype.kind == "b" else "")
        raise TypeError(
            f"{name} must be an array of integer sample indices, got dtype {arr.dtype}{hint}"
        )
    arr = arr.ravel()
    neg = arr[arr < 0]
    if neg.size:
        raise ValueError(
            f"{name} holds {neg.size} negative indices (e.g. {neg[:5].tolist()}); search_gamma "
            "does not know the pool's size, so it cannot tell which samples they name and could "
            f"miss one shared with the other set: pass non-negative indices ({name} % n_pool)"
        )
    return arr
