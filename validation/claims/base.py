"""Checks and verdicts: each stated claim of a paper becomes a :class:`Check` that returns a
:class:`Verdict` — ``holds``, ``violated`` (with the smallest counterexample found and the measured
numbers) or ``not-applicable`` (with why: the claim does not apply, or the evidence cannot decide
it). A verdict is what the evidence says; checks are never tuned toward the expected answer.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["Verdict", "Check", "REGISTRY", "register", "run_checks", "HOLDS", "VIOLATED", "NA",
           "SCOPES"]

HOLDS = "holds"
VIOLATED = "violated"
NA = "not-applicable"

# What a violation of a check shows about the paper; declared with the check, before it runs, so
# that a reader can tell "the paper is wrong" from "wrong under one reading of its text".
SCOPES = {
    "statement": "the paper's statement is false as written",
    "reading": "false under the reading given in the claim, while the paper's text admits "
               "another reading, named in the detail",
    "assumption": "an assumption of the paper does not describe the simulated neurons, and "
                  "the check is of the assumption itself or of a result resting on it",
    "code": "the paper's text holds; the authors' code follows a different convention",
}


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _finite_only(value):
    if isinstance(value, float) and not np.isfinite(value):
        return repr(value)  # "nan", "inf" or "-inf": what float() reads back
    if isinstance(value, dict):
        return {k: _finite_only(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_only(v) for v in value]
    return value


def json_text(value, **kwargs) -> str:
    """``json.dumps`` of ``value`` (made JSON-able by :func:`_jsonable`) that stays JSON: NaN and
    ±infinity become the strings "nan", "inf" and "-inf" instead of the tokens NaN and Infinity,
    which Python writes by default and strict JSON readers refuse."""
    return json.dumps(_finite_only(_jsonable(value)), allow_nan=False, **kwargs)


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check.

    Attributes
    ----------
    check_id : str
        E.g. ``"hart.eq8"``.
    paper : str
        Short name of the paper (DESIGN.md's table).
    claim : str
        What the paper states (quoted or paraphrased with equation number and conditions).
    status : {"holds", "violated", "not-applicable"}
        "not-applicable" also when the check cannot decide (e.g. ``stable.thm3_1`` with an
        inconclusive case and no violation); ``detail`` says why.
    measured : dict
        The numbers behind the verdict.
    counterexample : dict or None
        For ``violated``: the smallest counterexample found.
    detail : str
        One or two sentences a reader needs to interpret the verdict.
    seconds : float
    scope : str
        For ``violated``: what the violation shows (a key of :data:`SCOPES`, declared with the
        check); empty otherwise.
    """

    check_id: str
    paper: str
    claim: str
    status: str
    measured: dict = field(default_factory=dict)
    counterexample: dict | None = None
    detail: str = ""
    seconds: float = 0.0
    scope: str = ""

    def __post_init__(self):
        if self.status not in (HOLDS, VIOLATED, NA):
            raise ValueError(
                f"status={self.status!r} must be one of {HOLDS!r}, {VIOLATED!r}, {NA!r}"
            )
        if (self.status == VIOLATED) != (self.scope in SCOPES):
            raise ValueError(f"scope={self.scope!r} with status={self.status!r}: a violation needs "
                             f"one of {sorted(SCOPES)}, any other verdict the empty scope")
        object.__setattr__(self, "measured", _jsonable(self.measured))
        if self.counterexample is not None:
            object.__setattr__(self, "counterexample", _jsonable(self.counterexample))

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json_text(self.to_dict(), sort_keys=True)


@dataclass(frozen=True)
class Check:
    """A claim and the function that tests it: ``run(rng) -> (status, measured, counterexample,
    detail)``; ``if_violated`` is the :data:`SCOPES` key a violation gets."""

    check_id: str
    paper: str
    claim: str
    run: object
    if_violated: str = "statement"

    def __call__(self, rng=0) -> Verdict:
        rng = np.random.default_rng(rng)
        t0 = time.perf_counter()
        status, measured, counterexample, detail = self.run(rng)
        return Verdict(
            self.check_id, self.paper, self.claim, status, measured, counterexample, detail,
            time.perf_counter() - t0, self.if_violated if status == VIOLATED else "",
        )


REGISTRY: dict = {}


def register(check_id, paper, claim, *, if_violated="statement"):
    """Decorator: register ``run(rng)`` as the check ``check_id``; ``if_violated`` (a key of
    :data:`SCOPES`) says what a violation would show about the paper."""
    if if_violated not in SCOPES:
        raise ValueError(f"if_violated={if_violated!r} must be one of {sorted(SCOPES)}")

    def wrap(fn):
        if check_id in REGISTRY:
            raise ValueError(f"check_id={check_id!r} is registered twice")
        REGISTRY[check_id] = Check(check_id, paper, claim, fn, if_violated)
        fn.check = REGISTRY[check_id]
        return fn

    return wrap


def run_checks(select=None, *, seed=0, progress=False):
    """Run the registered checks (all, or those whose id starts with one of ``select``), each
    with its own stream spawned from ``seed``: the stream of a check is the same whichever
    others are selected, so a selected check reproduces its run among all of them; violations
    first in the returned list."""
    import validation.claims  # noqa: F401  (registers every module's checks)

    every = sorted(REGISTRY)
    stream_of = dict(zip(every, np.random.SeedSequence(seed).spawn(len(every))))
    ids = every
    if select:
        prefixes = (select,) if isinstance(select, str) else tuple(select)
        ids = [i for i in ids if i.startswith(prefixes)]
        if not ids:
            raise ValueError(f"select={select!r} matches no check; known ids: {sorted(REGISTRY)}")
    iterator = ((i, stream_of[i]) for i in ids)
    if progress:
        try:
            from tqdm import tqdm

            iterator = tqdm(list(iterator), desc="claims", unit="check")
        except ImportError:  # the report extra is optional
            pass
    verdicts = [REGISTRY[i](np.random.default_rng(s)) for i, s in iterator]
    order = {VIOLATED: 0, HOLDS: 1, NA: 2}
    return sorted(verdicts, key=lambda v: (order[v.status], v.check_id))
