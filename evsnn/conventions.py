"""Paper-versus-code conventions, each an explicit named option.

The five papers and their authors' public code disagree in small ways that change spike trains.
evsnn never hides such a choice: every one is a field of :class:`Convention`, and the presets
below bundle the choices of each paper (as written) and of each authors' code (as run).

Fields
------
time_origin : {1, 0}
    The origin used when a time step is *reported* (papers count t = 1..T, the code t0 = 0..T-1).
    Arrays are always 0-based internally.
spike_test : {">=", ">"}
    Spike iff ``U >= theta`` (H(0) = 1: HART, Stable, RSC, Ding's Act-BP code, the HART code's
    STBP modes) or ``U > theta`` (Ding 2025 Methods text, Ding's Temp-BP code, the HART code's
    rate-gradient attack modes: HART_RATE_CODE).
poisson_rule : {"u<x", "u<=x"}
    Poisson spike iff the uniform draw is below the pixel (paper) or at most the pixel (code).
poisson_draw : {"fresh", "cached_per_step", "cached"}
    A fresh uniform per pixel and step; or a mask drawn once and reused for every later call
    (:class:`~evsnn.encoders.CachedPoissonEncoder`) with one uniform per pixel and step (the
    HART code, which repeats the image over the steps before drawing it) or one per pixel,
    reused at every step as well (issue 2's reading of the HART code).
ratesyn_rule : {"paper", "code"}
    RateSynS ``H(xT - t)``, t = 1..T (floor(xT) spikes) and RateSynE ``H(t - (1-x)T)`` (paper);
    or ``t0/T < x`` (ceil(xT) spikes) and ``t0/T > 1 - x`` (ceil(xT) - 1 spikes) (code).
ttfs_rule : {"paper", "code"}
    The first spike of the paper's RateSynE (paper), or one spike at ``t0 = floor((1-x)T)``, none
    for x = 0 (code).
encoder_arithmetic : {"float64", "input"}
    Evaluate the encoders' time products in float64 (exact for float32 inputs) or in the input's
    own dtype, as the code does (a float32 product can land one step early). The paper rules
    read the one product ``x T`` (RateSynE as ``x T >= T - t``), so where it rounds (float64
    pixels such as 1/3 or 0.7) RateSynS, RateSynE and TTFS of a pixel still agree.
input_delay : {0, 1}
    Ding 2025 Eq. 15 read literally (``U[t+1] = ... + W a[t]``) delivers a layer's input one step
    late (1); the code delivers it in the same step (0).
dlif_factor : {"leak", "input"}
    DLIF's per-step factor multiplies the leak (Stable paper, §3.3) or the input current (code).
mppd_reduction : {"sum", "mean"}
    MS-MPPD as a sum (Stable Eq. 14) or a mean (Stable code).
mppd_rule : {"paper", "code"}
    Stable's training regulariser (:func:`evsnn.grad.stable_loss_and_grad`): Eq. 11-17 as
    written, ε driven by layer L's DLIF factors and differentiated through both runs (paper);
    or as the authors' ``main_train-v2.py`` computes it (code): ε = ``simple_dynamic`` of the
    difference of the last LIF layer's input currents, without its DLIF factors p[t], and the
    clean run's currents detached, so the term's gradient flows through the perturbed run only.
rate_mean : {"sample", "batch"}
    The expectation E(r / W r) of HART Eq. 10 (``method="rate"``): per sample over the layer's
    neurons with a positive mean current (the paper read per sample), or pooled over the
    whole batch and layer, divided by their count + 0.001 (the HART code's ``RateBp3``).
rate_steps : {"mean", "each"}
    How the rate family (``method="rga"``, ``"bptr"``, ``"rate"``) hands its factor g to the
    steps: ``dL/dI[t] = g · mean_t dL/ds`` (mean: HART Eq. 11 on time-averaged rates) or
    ``g · dL/ds[t]`` at each step (each: the HART code's ``RateBp*`` autograd functions). The
    two agree when dL/ds is the same at every step (rate decoding).
asr_denominator : {"all", "clean_correct"}
    Attack success rate over all samples (Ding 2025 Eq. 28) or over clean-correct ones (HART code).
sigmoid_scale : {"paper", "code"}
    Sigmoid surrogate ``Sigmoid'(rho U)`` (Ding 2025 Eq. 17) or
    ``rho * sigma(rho (U - theta)) (1 - sigma(rho (U - theta)))`` (code): the scale of the
    default surrogate of :func:`evsnn.grad.backward` (``bptt``; an explicit ``surrogate=``
    wins). Ding 2025 is the only one of the five papers that defines a sigmoid surrogate, so
    only DING2025_PAPER takes "paper"; the HART, Stable and RSC papers define none (HART's own
    method uses the triangle, Eq. 15), and their presets, DEFAULT and a Convention built
    without this field take the scale of the authors' code, "code".
surrogate : {"sigmoid", "triangle"}
    The default surrogate ∂s/∂m of ``bptt`` (an explicit ``surrogate=`` wins; ``hart`` always
    defaults to its triangle): the sigmoid with ρ = 5 in ``sigmoid_scale`` (Ding 2025 Eq. 17),
    or the triangle ``max(0, 1 − |m − θ|)`` of width 1 — Stable Eq. 18 with ω = 1, "also used
    to craft white-box adversarial examples … or robustness evaluation", and the STBP
    surrogate of the Stable and HART authors' code (``ZIF``, ``act2(mem − thresh, 1, 1)``).
"""

from __future__ import annotations

import numpy as np

from dataclasses import dataclass, fields, replace

__all__ = [
    "Convention",
    "PRESETS",
    "get_convention",
    "DING2025_PAPER",
    "DING2025_CODE",
    "DING2025_TEMPBP_CODE",
    "HART_PAPER",
    "HART_CODE",
    "HART_RATE_CODE",
    "STABLE_PAPER",
    "STABLE_CODE",
    "RSC_PAPER",
    "DEFAULT",
]

_CHOICES = {
    "time_origin": (1, 0),
    "spike_test": (">=", ">"),
    "poisson_rule": ("u<x", "u<=x"),
    "poisson_draw": ("fresh", "cached_per_step", "cached"),
    "ratesyn_rule": ("paper", "code"),
    "ttfs_rule": ("paper", "code"),
    "encoder_arithmetic": ("float64", "input"),
    "input_delay": (0, 1),
    "dlif_factor": ("leak", "input"),
    "mppd_reduction": ("sum", "mean"),
    "mppd_rule": ("paper", "code"),
    "rate_mean": ("sample", "batch"),
    "rate_steps": ("mean", "each"),
    "asr_denominator": ("all", "clean_correct"),
    "sigmoid_scale": ("paper", "code"),
    "surrogate": ("sigmoid", "triangle"),
}


@dataclass(frozen=True)
class Convention:
    """A complete, explicit set of semantic choices (see the module docstring for each field)."""

    name: str
    time_origin: int = 1
    spike_test: str = ">="
    poisson_rule: str = "u<x"
    poisson_draw: str = "fresh"
    ratesyn_rule: str = "paper"
    ttfs_rule: str = "paper"
    encoder_arithmetic: str = "float64"
    input_delay: int = 0
    dlif_factor: str = "leak"
    mppd_reduction: str = "sum"
    mppd_rule: str = "paper"
    rate_mean: str = "sample"
    rate_steps: str = "mean"
    asr_denominator: str = "all"
    # "paper" only where a paper defines the sigmoid surrogate (Ding 2025 Eq. 17)
    sigmoid_scale: str = "code"
    surrogate: str = "sigmoid"

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty string, got {self.name!r}")
        for f in fields(self):
            if f.name == "name":
                continue
            value = getattr(self, f.name)
            allowed = _CHOICES[f.name]
            # of the choices' own kind: 1.0 and True compared equal to 1 and were taken
            kind = (int, np.integer) if isinstance(allowed[0], int) else str
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, kind) or (
                    value not in allowed):
                raise ValueError(
                    f"{f.name}={value!r} is not a valid convention choice; "
                    f"use one of {list(allowed)}"
                )

    @property
    def spike_ge(self) -> bool:
        """True when a spike is emitted at ``U == theta`` (the ``>=`` test)."""
        return self.spike_test == ">="

    def with_(self, **changes) -> "Convention":
        """A copy with some choices changed (the name gets a ``+`` suffix unless given)."""
        changes.setdefault("name", self.name + "+")
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


DING2025_PAPER = Convention(
    name="DING2025_PAPER",
    time_origin=1,
    spike_test=">",
    poisson_rule="u<x",
    poisson_draw="fresh",
    ratesyn_rule="paper",
    ttfs_rule="paper",
    encoder_arithmetic="float64",
    input_delay=1,
    asr_denominator="all",
    sigmoid_scale="paper",
)
DING2025_CODE = Convention(
    name="DING2025_CODE",
    time_origin=0,
    spike_test=">=",
    poisson_rule="u<=x",
    poisson_draw="fresh",
    ratesyn_rule="code",
    ttfs_rule="code",
    encoder_arithmetic="input",
    input_delay=0,
    asr_denominator="all",
    sigmoid_scale="code",
)
DING2025_TEMPBP_CODE = DING2025_CODE.with_(name="DING2025_TEMPBP_CODE", spike_test=">")
HART_PAPER = Convention(name="HART_PAPER", time_origin=1, spike_test=">=")
HART_CODE = Convention(
    name="HART_CODE",
    time_origin=0,
    spike_test=">=",
    poisson_rule="u<=x",
    poisson_draw="cached_per_step",
    ratesyn_rule="code",
    ttfs_rule="code",
    encoder_arithmetic="input",
    rate_mean="batch",
    rate_steps="each",
    asr_denominator="clean_correct",
    sigmoid_scale="code",
    surrogate="triangle",
)
# the HART code's rate-gradient attack modes (RateBp, RateBp2, RateBp3: bptr, rga, rate) fire on
# ``mem − 1 > 0``, its STBP modes (ZIF) on ``>= 0``: the same code under the other spike test
HART_RATE_CODE = HART_CODE.with_(name="HART_RATE_CODE", spike_test=">")
STABLE_PAPER = Convention(
    name="STABLE_PAPER", time_origin=1, spike_test=">=", dlif_factor="leak", mppd_reduction="sum",
    surrogate="triangle",
)
STABLE_CODE = Convention(
    name="STABLE_CODE",
    time_origin=0,
    spike_test=">=",
    poisson_rule="u<=x",
    ratesyn_rule="code",
    ttfs_rule="code",
    encoder_arithmetic="input",
    dlif_factor="input",
    mppd_reduction="mean",
    mppd_rule="code",
    sigmoid_scale="code",
    surrogate="triangle",
)
RSC_PAPER = Convention(name="RSC_PAPER", time_origin=1, spike_test=">=")

DEFAULT = HART_PAPER.with_(name="DEFAULT")

PRESETS = {
    c.name: c
    for c in (
        DING2025_PAPER,
        DING2025_CODE,
        DING2025_TEMPBP_CODE,
        HART_PAPER,
        HART_CODE,
        HART_RATE_CODE,
        STABLE_PAPER,
        STABLE_CODE,
        RSC_PAPER,
        DEFAULT,
    )
}


def get_convention(convention) -> Convention:
    """Return a :class:`Convention` from an instance or a preset name (case-insensitive)."""
    if isinstance(convention, Convention):
        return convention
    if isinstance(convention, str):
        key = convention.upper()
        if key in PRESETS:
            return PRESETS[key]
        raise ValueError(
            f"convention={convention!r} is not a known preset; use one of {sorted(PRESETS)} "
            "or pass a Convention instance"
        )
    raise TypeError(
        f"convention must be a Convention or a preset name, got {type(convention).__name__} "
        f"{convention!r}"
    )
