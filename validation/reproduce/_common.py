"""Shared pieces of the reproductions: sizes, data, seeded model training (cached per process),
the black-box ANN gradient source, claims and verdicts, and the report layout.

Every reproduction splits into a *measurement* (``_measure_<name>(size, seed, progress) ->
dict``, the numbers) and a *judgement* (``_judge_<name>(measured) -> list[Claim]``, the
comparison of those numbers with the paper's qualitative claim). The verdict sentence in the
report is built from the judgement only, so it always follows the numbers of the run.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evsnn import ann as ann_mod
from evsnn.attacks import ann_source  # noqa: F401  (used as C.ann_source)
from evsnn.clock import Dense, Network
from evsnn.conventions import DEFAULT
from evsnn.convert import convert
from evsnn.data import load_digits
from evsnn.params import DLIF, LIF, TraceLIF
from evsnn.train import AdamW, fit_ann, fit_snn

PAPERS = Path(__file__).resolve().parents[3] / "shared" / "papers"
PAPER_FILES = {
    "ding2025": "neuromorphic-robustness-natcomm-2025.txt",
    "hart": "hart-attack-iclr-2024.txt",
    "rsc": "rsc-snn-mm-2024.txt",
    "stable": "robust-stable-snn-icml-2024.txt",
}


@dataclass(frozen=True)
class Size:
    """How much work a reproduction does.

    ``n_train`` / ``n_test``: images used (``None``: the whole split of
    :func:`evsnn.data.load_digits`, 1,347 / 450); ``epochs_ann`` / ``epochs_snn``: training
    epochs; ``n_sources``: black-box source ANNs (Ding 2025 averages over five); ``n_attack``:
    test images attacked with white-box iterative attacks.
    """

    n_train: int | None
    n_test: int | None
    epochs_ann: int
    epochs_snn: int
    n_sources: int
    n_attack: int


SIZES = {
    "full": Size(n_train=None, n_test=None, epochs_ann=30, epochs_snn=3, n_sources=3,
                 n_attack=200),
    "small": Size(n_train=160, n_test=40, epochs_ann=3, epochs_snn=1, n_sources=1, n_attack=16),
}


REPRODUCTION_DOC = """Every ``reproduce_<name>(*, size="full", seed=0, progress=False)``:

    Parameters
    ----------
    size : {"full", "small"}, default "full"
        ``"full"``: the whole digits split (at most about two minutes of CPU); ``"small"``: a
        few seconds, for tests (:data:`validation.reproduce._common.SIZES`).
    seed : int, default 0
        Root seed of the models, the encoders' draws and the attacks' random starts.
    progress : bool, default False
        Accepted for a uniform signature; the reproductions print nothing.

    Returns
    -------
    validation.report.Report
        Not yet written; ``report.write(folder)`` writes it.
    """


def size_iv(size):
    if size not in SIZES:
        raise ValueError(f"size={size!r} is not a reproduction size; use one of {sorted(SIZES)}")
    return SIZES[size]


@functools.lru_cache(maxsize=8)
def digits(size):
    """``(train, test)`` digits subsets for ``size`` (fixed stratified split, seed 0)."""
    cfg = size_iv(size)
    train, test = load_digits("train"), load_digits("test")
    if cfg.n_train is not None:
        train = train.subset(np.arange(cfg.n_train))
    if cfg.n_test is not None:
        test = test.subset(np.arange(cfg.n_test))
    return train, test


# --- models (cached: reproductions run in one process share them) -----------------------------
@functools.lru_cache(maxsize=32)
def trained_ann(size, seed, *, lr=3e-3, weight_decay=1e-4):
    """A ReLU ANN 64-100-10 trained with AdamW(``lr``, ``weight_decay``) (seeded); the Ding 2025
    reproductions pass the paper's values (:mod:`validation.reproduce.ding2025`)."""
    cfg = size_iv(size)
    train, _ = digits(size)
    rng = np.random.default_rng([seed, 1])
    res = fit_ann(ann_mod.ANN.mlp([train.x.shape[1], 100, 10], rng=rng), train.x, train.y,
                  rng=rng, epochs=cfg.epochs_ann,
                  optimizer=AdamW(lr=lr, weight_decay=weight_decay))
    return res.model


@functools.lru_cache(maxsize=16)
def converted(size, seed, *, lr=3e-3, weight_decay=1e-4):
    """The ANN of ``seed`` (trained with ``lr``, ``weight_decay``) converted to IF neurons, reset
    by subtraction (Ding 2025 Eq. 14)."""
    train, _ = digits(size)
    return convert(trained_ann(size, seed, lr=lr, weight_decay=weight_decay), train.x).network


NEURONS = {
    "lif": lambda: LIF(lam=0.9, theta=1.0, reset="hard"),
    # Ding 2025 Table 1, FashionMNIST column (the paper's Fig. 3-4 setting)
    "trace": lambda: TraceLIF(dt_ms=1.0, tau_mem_ms=10.0, tau_syn_ms=10.0, theta=1.0),
    # Ding 2025 Table 1, CIFAR-10/ImageNet-100 column (Methods: Fig. 5's SNN "utilizes the
    # neuron parameters listed in Table 1")
    "trace_cifar": lambda: TraceLIF(dt_ms=1.0, tau_mem_ms=2.0, tau_syn_ms=2.0, theta=1.0),
}


@functools.lru_cache(maxsize=64)
def trained_snn(size, seed, *, neuron="lif", method="bptt", encoder="current", decoder="rate",
                loss="ce", T=10, sigma=None, lam=0.9, reset="hard", lr=1e-2, scale=3.0,
                readout=False, weight_decay=0.0, convention=DEFAULT):
    """A 64-100-10 SNN trained with ``method`` on ``encoder`` / ``decoder`` (seeded), with
    AdamW(``lr``, ``weight_decay``) under ``convention`` (a preset the Ding 2025 reproductions
    pass; the other reproductions keep the defaults)."""
    cfg = size_iv(size)
    train, _ = digits(size)
    n_in = train.x.shape[1] * (len(encoder.split("+")) if encoder.startswith("fused:") else 1)
    rng = np.random.default_rng([seed, 2])
    if neuron == "lif":
        cell = LIF(lam=lam, theta=1.0, reset=reset)
    else:
        cell = NEURONS[neuron]()
    net = Network.mlp([n_in, 100, 10], cell, rng=rng, scale=scale, readout=readout)
    res = fit_snn(net, train.x, train.y, T=T, rng=rng, encoder=encoder, decoder=decoder,
                  loss=loss, method=method, epochs=cfg.epochs_snn, sigma=sigma,
                  optimizer=AdamW(lr=lr, weight_decay=weight_decay), convention=convention)
    return res.model


def fit_loop(net, x, y, *, T, rng, encoder, decoder, loss, method, epochs, lr, batch_size=64,
             grads_fn=None):
    """Mini-batch AdamW training of weights (and DLIF factors) with
    :func:`evsnn.grad.loss_and_grad` (as :func:`evsnn.train.fit_snn`, one permutation per epoch),
    or with ``grads_fn(net, xb, yb, rng) -> GradientResult`` when given: the Stable miniature's
    mixed clean/perturbed gradient plus the MS-MPPD term, which ``fit_snn`` (one loss of one
    forward pass) cannot express."""
    from evsnn.grad import loss_and_grad

    opt = AdamW(lr=lr, weight_decay=0.0)
    weights = [np.array(l.weight) for l in net.layers]
    factors = [None if l.dlif_factors is None else np.array(l.dlif_factors) for l in net.layers]
    params = weights + [f for f in factors if f is not None]
    for _ in range(epochs):
        order = rng.permutation(x.shape[0])
        for k in range(0, x.shape[0], batch_size):
            idx = order[k:k + batch_size]
            if grads_fn is None:
                g = loss_and_grad(net, x[idx], y[idx], T=T, encoder=encoder, decoder=decoder,
                                  loss=loss, method=method, rng=rng).grads
            else:
                g = grads_fn(net, x[idx], y[idx], rng)
            grads = list(g.weights) + [gf for gf, f in zip(g.dlif_factors, factors)
                                       if f is not None]
            opt.step(params, grads)
            net = Network(tuple(l.replace(weight=w, dlif_factors=f)
                                for l, w, f in zip(net.layers, weights, factors)))
    return net


def dlif_network(n_in, T, *, lam, rng, scale=3.0):
    """64-100-10 network: DLIF hidden layer (factors a[t] = 1) and a Readout."""
    base = Network.mlp([n_in, 100, 10], LIF(), rng=rng, scale=scale, readout=True)
    first = Dense(base.layers[0].weight, DLIF(lam=lam, theta=1.0, reset="hard"),
                  dlif_factors=np.ones(T))
    return Network((first, base.layers[1]))


# --- the black-box source ----------------------------------------------------------------------
def source_seeds(size, seed):
    """Seeds of the black-box source ANNs (independent of the victim's seed)."""
    return [1000 + 17 * seed + k for k in range(size_iv(size).n_sources)]


# --- claims and verdicts -----------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """One qualitative statement of a paper and what the run measured.

    ``supported`` is computed from the measured numbers (``True``/``False``), or ``None`` when
    the run cannot decide (e.g. a quantity is undefined).
    """

    quote: str
    source: str
    supported: bool | None
    evidence: str
    criterion: str

    @property
    def verdict(self) -> str:
        return {True: "supported", False: "not supported", None: "undecided"}[self.supported]

    def sentence(self) -> str:
        verb = {True: "supports", False: "does not support",
                None: "cannot decide"}[self.supported]
        return f"The measurement {verb} this claim: {self.evidence}"

    def to_dict(self):
        return {"quote": self.quote, "source": self.source, "supported": self.supported,
                "verdict": self.verdict, "evidence": self.evidence, "criterion": self.criterion}


def paper_quote(paper, fragment):
    """``fragment`` verbatim, checked to occur in the paper's text (whitespace-normalised) when
    the papers folder is present; the quoted text is never edited here."""
    path = PAPERS / PAPER_FILES[paper]
    if path.exists():
        text = " ".join(path.read_text().split())
        if " ".join(fragment.split()) not in text:
            raise ValueError(
                f"quote not found in {path.name}: {fragment[:60]!r}...; quote the paper verbatim"
            )
    return fragment


def overall(claims):
    vals = [c.supported for c in claims]
    if any(v is None for v in vals):
        return "undecided"
    if all(vals):
        return "supported"
    if any(vals):
        return "partly supported"
    return "not supported"


def write_claims(report, claims):
    """The claims section: each quote, the criterion, the measured evidence and the verdict."""
    report.add_heading("Paper claims vs measurement")
    for i, c in enumerate(claims, 1):
        report.add_text(
            f"**Claim {i}** ({c.source}):\n\n> {c.quote}\n\n"
            f"Criterion: {c.criterion}\n\n"
            f"**Verdict: {c.verdict}.** {c.sentence()}"
        )
    report.add_table(["#", "verdict", "evidence"],
                     [[i, c.verdict, c.evidence] for i, c in enumerate(claims, 1)],
                     caption="Verdicts (computed from the numbers above)")
    report.add_text(f"**Overall: {overall(claims)}.**")
    report.add_result("claims", [c.to_dict() for c in claims])
    report.add_result("overall", overall(claims))


def pct(v):
    return f"{100 * v:.1f} %"


# --- figures -------------------------------------------------------------------------------------
def subplots(*args, **kwargs):
    """``(figure, axes)`` of a :class:`matplotlib.figure.Figure` that pyplot does not track (a
    run makes many figures; the report keeps them until it is written)."""
    from matplotlib.figure import Figure

    figsize = kwargs.pop("figsize", None)
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


@dataclass
class Timer:
    """Wall-clock and CPU seconds of this process (CPU time is the fair figure on a loaded
    machine)."""

    start: float = field(default_factory=time.perf_counter)
    cpu_start: float = field(default_factory=time.process_time)

    def seconds(self):
        return round(time.perf_counter() - self.start, 2)

    def cpu(self):
        return round(time.process_time() - self.cpu_start, 2)
