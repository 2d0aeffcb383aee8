"""The main job (``evsnn demo`` / ``make demo``) and the building blocks the CLI shares with it.

:func:`run_demo` trains the four models of the papers on the embedded digits (ReLU ANN, its
converted IF SNN, a λ-LIF SNN trained with Act-BP / bptt, a trace-LIF SNN trained with Temp-BP),
attacks them under every encoder (and with the papers' and the authors' code's versions of
APGD and the L1 / L0 PGD), grades the surrogate gradients against exact spike-time
gradients, certifies smoothed SNNs, checks the papers' claims and cross-validates the installed
PyTorch backends — and returns one :class:`validation.report.Report` in which every number comes
from this run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from evsnn import ann as ann_mod
from evsnn._checks import int_iv
from evsnn.attacks import SNNSource, ann_source, apgd, fgsm, pgd
from evsnn.clock import Network, simulate
from evsnn.convert import convert
from evsnn.data import load_digits
from evsnn.encoders import encode, fused_parts
from evsnn.params import DLIF, LIF, TraceLIF
from evsnn.train import AdamW, CosineSchedule, fit_ann, fit_snn, fit_stable, snn_accuracy

__all__ = ["DemoSize", "SIZES", "run_demo", "train_model", "snn_classifier",
           "certified_accuracy_figure", "crossval_section", "grade_section"]

ENCODERS = ("current", "poisson", "ratesyn_start", "ratesyn_end", "ttfs", "rsc_fixed")
FUSED = "fused:current+poisson"
RSC_SIGMA = 0.25
# Stable §4.1: Gaussian noise of intensity ε = 8/255 and ρ = 1 (evsnn.train.fit_stable)
STABLE_EPS = 8 / 255
STABLE_RHO = 1.0


@dataclass(frozen=True)
class DemoSize:
    """How much work the demo does."""

    epochs_ann: int
    epochs_snn: int
    attack_samples: int
    certify_samples: int
    certify_n0: int
    certify_n: int
    grade_samples: int
    crossval_samples: int
    claims: bool


SIZES = {
    "full": DemoSize(epochs_ann=30, epochs_snn=15, attack_samples=200, certify_samples=60,
                     certify_n0=100, certify_n=2000, grade_samples=16, crossval_samples=64,
                     claims=True),
    "small": DemoSize(epochs_ann=3, epochs_snn=1, attack_samples=12, certify_samples=4,
                      certify_n0=20, certify_n=100, grade_samples=2, crossval_samples=4,
                      claims=False),
}


# --- models -------------------------------------------------------------------------------------
def train_model(kind, train, test, *, hidden=100, T=10, epochs=None, encoder="current",
                method=None, seed=0, progress=False, sigma=None):
    """Train one of the demo's models on a data set; returns ``(model, summary)``.

    ``kind`` is ``"ann"`` (ReLU MLP), ``"converted"`` (that ANN converted to IF neurons with reset
    by subtraction, Ding 2025 Eq. 14, evaluated with current coding at ``T``), ``"lif"`` (λ-LIF,
    λ = 0.9, hard reset, trained with ``bptt``), ``"trace"`` (trace LIF, Ding 2025 Table 1
    parameters, trained with ``tempbp``) or ``"stable"`` (DLIF layers, λ = 0.9, trained with
    Stable's framework, :func:`~evsnn.train.fit_stable`: Gaussian noise ε = 8/255, ρ = 1).
    """
    if kind not in ("ann", "converted", "lif", "trace", "stable"):
        raise ValueError(f"kind={kind!r} is not a demo model; use 'ann', 'converted', 'lif', "
                         "'trace' or 'stable'")
    if epochs is not None:  # before the schedule, whose error would name total_steps
        epochs = int_iv("epochs", epochs, low=1, hint="None for the recipe's number")
    parts = fused_parts(encoder) or (encoder,)
    sizes = [train.x.shape[1] * len(parts), hidden, int(train.y.max()) + 1]
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    n_train = train.x.shape[0]

    def adamw(lr, epochs, batch, weight_decay):
        steps = epochs * -(-n_train // batch)
        return AdamW(CosineSchedule(lr, steps), weight_decay=weight_decay)

    # The recipes of bench/train_targets.py (bench/RESULTS_train.md): ANN 97.3 %, converted
    # IF SNN at T = 30 97.8 %, λ-LIF bptt 94.9 %, trace LIF tempbp 94.0 % on the digits.
    if kind in ("ann", "converted"):
        epochs = 30 if epochs is None else epochs
        res = fit_ann(ann_mod.ANN.mlp(sizes, rng=rng), train.x, train.y, rng=rng, epochs=epochs,
                      batch_size=32, optimizer=adamw(1e-2, epochs, 32, 0.01),
                      x_test=test.x, y_test=test.y, progress=progress)
        summary = {"ANN test accuracy": res.test_accuracy}
        model = res.model
        if kind == "converted":
            model = convert(model, train.x).network
            summary["SNN test accuracy"] = snn_accuracy(
                model, test.x, test.y, T=T, encoder="current"
            )
            summary["T"] = T
    else:  # an SNN: λ-LIF, trace LIF, or DLIF trained with Stable's framework
        epochs = 15 if epochs is None else epochs
        neuron = TraceLIF() if kind == "trace" else LIF(lam=0.9, theta=1.0, reset="hard")
        net = Network.mlp(sizes, neuron, rng=rng, scale=3.0)
        loop = dict(T=T, rng=rng, encoder=encoder, epochs=epochs, batch_size=64,
                    optimizer=adamw(1e-2, epochs, 64, 0.0), sigma=sigma, x_test=test.x,
                    y_test=test.y, progress=progress)
        if kind == "stable":
            net = Network(tuple(  # the same initial weights, DLIF neurons with a[t] = 1
                l.replace(neuron=DLIF(lam=0.9, theta=1.0, reset="hard"), dlif_factors=np.ones(T))
                for l in net.layers))
            method = method or "bptt"
            res = fit_stable(net, train.x, train.y, perturbation="gaussian", eps=STABLE_EPS,
                             rho=STABLE_RHO, method=method, **loop)
        else:
            method = method or ("bptt" if kind == "lif" else "tempbp")
            options = {"fallback_rho": 1.0} if method == "tempbp" else {}
            res = fit_snn(net, train.x, train.y, method=method, **loop, **options)
        model = res.model
        summary = {"SNN test accuracy": res.test_accuracy, "T": T, "encoder": encoder,
                   "method": method + (" (Stable)" if kind == "stable" else "")}
    summary["epochs"] = epochs  # the recipe's number when None was given: what ran
    summary["training seconds"] = round(time.perf_counter() - t0, 2)
    return model, summary


def snn_classifier(network, convention="DEFAULT", dtype=np.float64):
    """``classify(seq[T, B, N]) -> labels`` of a clock-mode SNN with rate decoding (picklable,
    so :mod:`certify.distributed` can ship it to dask workers)."""
    from certify.smoothing import NetworkClassifier

    return NetworkClassifier(network, dtype=dtype, convention=convention)


# --- figures ------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def certified_accuracy_figure(curves):
    """Certified accuracy vs radius, one line per ``name -> (radii, accuracy)``: exact at the
    given radii, and between two of them the value at the larger (``where="pre"``). Certified
    accuracy never grows with the radius, so the line is a lower bound everywhere; holding the
    value at the smaller radius would show accuracy that was not certified."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, (radii, acc) in curves.items():
        ax.step(radii, acc, where="pre", label=name)
    ax.set_xlabel("radius")
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


# --- sections -----------------------------------------------------------------------------------
def crossval_section(report, backends, *, T=10, samples=64, seed=0, dtype=np.float64,
                     convention=None, network=None, x=None, encoder="poisson", sigma=None):
    """Cross-validate PyTorch backends on ``network`` driven by the images ``x`` coded with
    ``encoder``; adds a table per backend and returns the reports.

    By default a random 64-100-10 λ-LIF network on Poisson-coded digits. ``network`` (a saved
    model, say) runs on ``x[:samples]`` (its images, default the test digits) coded with
    ``encoder`` at ``T`` (``sigma``: the RSC encoders' noise std). Each backend runs evsnn under
    ``convention`` (default HART_CODE) with the backend's spike test; a ``network`` the backend
    cannot mirror raises ValueError (:func:`validation.crossval.backends.check_network`) before
    torch is imported.
    """
    from certify.spike_distance import victor_purpura_distance
    from validation.crossval import compare
    from validation.crossval.backends import (
        available_backends,
        backend_convention,
        check_network,
        get_backend,
    )

    report.add_heading("Cross-validation of PyTorch backends")
    names = available_backends() if backends is None else tuple(backends)
    if not names:
        report.add_text("No PyTorch backend is installed (`make crossval-deps` installs them); "
                        "skipped.")
        return {}
    given = network is not None
    if given:  # every backend's refusal before any run
        for name in names:
            check_network(name, network, backend_convention(name, convention or "HART_CODE"))
    x = (load_digits("test").x if x is None else np.asarray(x))[:samples]
    out = {}
    rows = []
    for name in names:
        backend = get_backend(name, dtype)
        conv = backend_convention(name, convention or "HART_CODE")
        net = network if given else Network.mlp([64, 100, 10], LIF(lam=0.9, theta=1.0,
                                                                   reset="hard"),
                                                rng=seed, scale=3.0)
        seq = encode(x, encoder, T, convention=conv, rng=seed, sigma=sigma)
        rep = compare(net, seq, backend, convention=conv, distance=victor_purpura_distance)
        out[name] = rep
        for r in rep.rows():
            rows.append([name, np.dtype(dtype).name, *r])
        report.add_result(f"crossval/{name}", {"faithful": rep.faithful, "ties": rep.ties,
                                               "real_mismatches": rep.real_mismatches})
        if given:
            report.add_text(f"{name}: evsnn ran under convention {conv.name} "
                            f"(spike test U {conv.spike_test} θ, the framework's).")
    conv_name = getattr(convention, "name", convention) or "HART_CODE"
    what = (f"images coded with {encoder}, the given network" if given
            else f"digits coded with {encoder}, a random untrained 64-100-10 λ-LIF network "
                 f"(λ = 0.9, hard reset, seed {seed}, weight scale 3)")
    report.add_table(["backend", "dtype", *rep.HEADERS], rows,
                     caption=f"{len(x)} {what}, T = {T}; evsnn under {conv_name} with each "
                     "backend's spike test; a tie is a membrane within "
                     "the dtype's tolerance of θ, a real mismatch is anything else")
    return out


def grade_section(report, *, samples=16, seed=0, dt_ms=0.1):
    """Grade the clock-mode surrogate gradients against exact spike-time gradients on
    TTFS-coded digits: a 64-20-10 network of Ding 2025 Table 1 neurons (LIF, alpha synapse,
    τm = τs = 10 ms), first-spike cross-entropy, clock counterpart at ``dt_ms``."""
    from evsnn.exact import ExactDense, ExactNetwork, ExactNeuron
    from evsnn.grad import grade

    report.add_heading("Gradient grader: surrogate gradients vs exact spike-time gradients")
    rng = np.random.default_rng(seed)
    test = load_digits("test")
    neuron = ExactNeuron("lif", "alpha", tau_mem_ms=10.0, tau_syn_ms=10.0)
    net = ExactNetwork([ExactDense(rng.uniform(-0.2, 1.0, (20, 64)) * 0.3, neuron),
                        ExactDense(rng.uniform(-0.2, 1.0, (10, 20)) * 0.4, neuron)])
    res = grade(net, test.x[:samples], test.y[:samples], dt_ms=dt_ms, t_enc_ms=10.0,
                t_end_ms=20.0)
    report.add_text(res.table())
    report.add_image("gradient_grades", res.plot, caption="Cosine similarity to the exact "
                     "gradient, per method and parameter block")
    # the clock networks graded above are Euler discretisations: their spike times converge to
    # exact mode's at first order in Δt
    from evsnn.exact import encoders as exact_encoders
    from evsnn.exact.convergence import convergence

    conv = convergence(net, exact_encoders.ttfs(test.x[: min(samples, 4)], 10.0), t_end_ms=20.0)
    report.add_table(["Δt (ms)", "max spike-time error (ms)", "spike counts match"],
                     [[d, e, bool(m)] for d, e, m in zip(conv.dt_ms, conv.max_error_ms,
                                                          conv.counts_match)],
                     caption=f"Clock mode vs exact mode on the same network and "
                     f"{min(samples, 4)} TTFS digits; measured order of convergence "
                     f"{conv.order:.3f} (Euler: 1), a least-squares slope over the Δt whose "
                     "spike counts match exact mode's (the error of the others is inf)")
    report.add_image("convergence", conv.plot, caption="Clock-mode spike times converge to exact "
                     "mode's as Δt → 0")
    report.add_result("convergence", {"dt_ms": conv.dt_ms, "max_error_ms": conv.max_error_ms,
                                      "order": conv.order})
    report.add_result("grade", {r.name: dict(zip(res.blocks, r.cosine)) for r in res.rows})
    return res


def run_demo(*, size="full", seed=0, progress=True, backends=None):
    """Run the main job; returns the :class:`~validation.report.Report` (not yet written)."""
    from validation.report import Report

    if size not in SIZES:
        raise ValueError(f"size={size!r} is not a demo size; use one of {sorted(SIZES)}")
    cfg = SIZES[size]
    report = Report("evsnn demo: robustness of SNNs on the embedded digits", seed=seed,
                    config={"size": size, **cfg.__dict__})
    train, test = load_digits("train"), load_digits("test")
    models = _models_section(report, train, test, cfg, seed, progress)
    _robustness_section(report, models, test, cfg, seed)
    _rules_section(report, models, test, cfg, seed)
    grade_section(report, samples=cfg.grade_samples, seed=seed)
    _certify_section(report, models, test, cfg, seed, progress)
    if cfg.claims:
        from validation.claims import run_checks
        from validation.report import verdict_table

        report.add_heading("Paper claims")
        verdict_table(report, run_checks(seed=seed, progress=progress))
    crossval_section(report, backends, samples=cfg.crossval_samples, seed=seed)
    return report


def trained_with(T, encoder, sigma=None):
    """The metadata saved with an SNN: the T, encoder and σ it was trained with, which
    ``evsnn attack`` and ``evsnn certify`` run it with unless told otherwise."""
    return {"trained_with": {"T": T, "encoder": encoder, "sigma": sigma}}


def _models_section(report, train, test, cfg, seed, progress):
    report.add_heading("Trained models")
    rows, models, metadata = [], {}, {}

    def keep(name, model, label, encoder, T, accuracy, seconds, sigma=None):
        models[name] = model
        rows.append([label, encoder, T, accuracy, seconds])
        if encoder != "-":  # an SNN
            metadata[name] = trained_with(T, encoder, sigma)

    ann, s = train_model("ann", train, test, epochs=cfg.epochs_ann, seed=seed, progress=progress)
    keep("ann", ann, "ReLU ANN 64-100-10", "-", "-", s["ANN test accuracy"],
         s["training seconds"])
    ann2, s2 = train_model("ann", train, test, epochs=cfg.epochs_ann, seed=seed + 1,
                           progress=progress)
    keep("ann_blackbox", ann2, "second ReLU ANN (black-box source)", "-", "-",
         s2["ANN test accuracy"], s2["training seconds"])
    started = time.perf_counter()
    conv = convert(ann, train.x).network
    keep("converted", conv, "converted IF SNN (reset by subtraction)", "current", 30,
         snn_accuracy(conv, test.x, test.y, T=30, encoder="current"),
         time.perf_counter() - started)  # the conversion's time: it is not trained
    for kind, label in (("lif", "λ-LIF, Act-BP (bptt)"), ("trace", "trace LIF, Temp-BP"),
                        ("stable", f"λ-DLIF, Stable (Gaussian ε = 8/255, ρ = {STABLE_RHO:g})")):
        m, s = train_model(kind, train, test, epochs=cfg.epochs_snn, seed=seed, progress=progress)
        keep(kind, m, label, "current", 10, s["SNN test accuracy"], s["training seconds"])
    m, s = train_model("lif", train, test, epochs=cfg.epochs_snn, seed=seed, encoder=FUSED,
                       progress=progress)
    keep("lif_fused", m, "λ-LIF, Act-BP, fused encoding (Ding 2025)", FUSED, 10,
         s["SNN test accuracy"], s["training seconds"])
    m, s = train_model("lif", train, test, epochs=cfg.epochs_snn, seed=seed, encoder="poisson",
                       progress=progress)
    keep("lif_poisson", m, "λ-LIF, Act-BP, Poisson coding", "poisson", 10,
         s["SNN test accuracy"], s["training seconds"])
    m, s = train_model("lif", train, test, epochs=cfg.epochs_snn, seed=seed, encoder="rsc_fixed",
                       sigma=RSC_SIGMA, progress=progress)
    keep("lif_rsc", m, f"λ-LIF trained on RSC-I noise (σ = {RSC_SIGMA})", "rsc_fixed", 10,
         s["SNN test accuracy"], s["training seconds"], sigma=RSC_SIGMA)
    report.add_table(["model", "encoder", "T", "test accuracy", "training s"], rows,
                     caption=f"Embedded digits: {len(train.x)} training, {len(test.x)} test "
                     "images; the converted network's seconds are the conversion's")
    report.add_result("models", [r[:-1] for r in rows])  # the seconds go to timings.json
    report.add_timing("training_seconds", {r[0]: r[-1] for r in rows})

    def save_models(folder):
        from evsnn import io

        (folder / "models").mkdir()
        for name, model in models.items():
            io.save(model, folder / "models" / f"{name}.npz", metadata=metadata.get(name))

    report.add_artifact(save_models)
    report.add_text("The trained models are saved in `models/` (`evsnn.io.load`).")
    return models


def _robustness_section(report, models, test, cfg, seed):
    report.add_heading("Robustness: encoders × attacks")
    x, y = test.x[: cfg.attack_samples], test.y[: cfg.attack_samples]
    eps = 0.1
    rows = []
    bb = ann_source(models["ann_blackbox"])
    cases = [("converted IF SNN", models["converted"], 30, enc) for enc in ENCODERS]
    cases += [("λ-LIF (Act-BP)", models["lif"], 10, "current"),
              ("trace LIF (Temp-BP)", models["trace"], 10, "current"),
              ("λ-DLIF (Stable)", models["stable"], 10, "current"),
              ("λ-LIF (Act-BP), fused", models["lif_fused"], 10, FUSED)]
    taacc = {}
    for label, net, T, enc in cases:
        kw = {"sigma": RSC_SIGMA} if "rsc" in enc else {}
        white = SNNSource(net, T=T, encoder=enc, **kw)
        hart = SNNSource(net, T=T, encoder=enc, method="hart", **kw)
        scores = white.predict(x, rng=seed)
        clean = scores.argmax(1) == y
        silent = float(np.mean(scores.sum(axis=1) == 0))  # no output spike: class 0 by default
        accs = [silent, clean.mean()]
        for src, attack in ((white, "fgsm"), (white, "pgd"), (bb, "fgsm"), (bb, "pgd"),
                            (hart, "pgd")):
            if attack == "fgsm":
                r = fgsm(src, x, y, eps=eps, model=white, rng=seed)
            else:
                r = pgd(src, x, y, eps=eps, steps=10, model=white, rng=seed)
            accs.append(1.0 - r.success.mean() if r.success is not None else np.nan)
        rows.append([label, enc, T, *accs])
        if label == "converted IF SNN":
            x_bb = fgsm(bb, x, y, eps=eps).x_adv
            taacc[enc] = {"clean": _taacc(net, x, y, T, enc, seed),
                          "black-box FGSM": _taacc(net, x_bb, y, T, enc, seed)}
    mute = [f"{r[0]} with {r[1]}" for r in rows if r[3] == 1.0]
    report.add_table(
        ["model", "encoder", "T", "silent (clean)", "clean", "FGSM (bptt)", "PGD-10 (bptt)",
         "FGSM black-box ANN", "PGD-10 black-box ANN", "PGD-10 (HART)"], rows,
        caption=f"Accuracy under L∞ attacks, ε = {eps}, {len(x)} test images; 'silent' is the "
        "fraction of clean images for which the network emits no output spike (its prediction "
        "then defaults to class 0)."
        + (f" {'; '.join(mute)}: silent on every image, so its accuracies are the share of "
           "class 0 among the labels and measure no robustness (the converted IF network reads "
           "firing rates; Ding 2025 trains TTFS networks directly)." if mute else ""))
    report.add_result("robustness", rows)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for i, (enc, curves) in enumerate(taacc.items()):
        color = f"C{i}"
        for kind, style in (("clean", "-"), ("black-box FGSM", "--")):
            c = curves[kind]
            ax.plot(np.arange(1, len(c) + 1), c, style, color=color,
                    label=enc if kind == "clean" else None)
    ax.set_xlabel("time step t")
    ax.set_ylabel("TAAcc[t]")
    ax.set_title(f"Converted IF SNN: TAAcc, clean (solid) and black-box FGSM ε = {eps} (dashed)",
                 fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    report.add_figure(fig, "taacc",
                      caption="Time-accumulated accuracy by encoder (Ding 2025 Eq. 26)")
    report.add_result("taacc", taacc)


# (label, attack, keyword arguments): the attacks whose authors' code departs from the paper
RULE_ATTACKS = (
    ("APGD-CE, 10 steps, L∞ ε = 0.1 (Stable's evaluation)", apgd,
     dict(eps=0.1, steps=10, loss="ce")),
    ("APGD-DLR, 10 steps, L∞ ε = 0.1 (Stable's evaluation)", apgd,
     dict(eps=0.1, steps=10, loss="dlr")),
    ("PGD-L1, 20 steps, ε = 4, α = 1, sparsity 0.5 (Ding 2025)", pgd,
     dict(eps=4.0, norm="l1", alpha=1.0, steps=20, l1_quantile=0.5)),
    ("PGD-L0, 20 steps, k = 3 pixels (Ding 2025)", pgd, dict(eps=3, norm="l0", steps=20)),
)


def _rules_section(report, models, test, cfg, seed):
    """Accuracy under each attack as the paper describes it and as the authors' code runs it
    (``rule="paper"`` / ``"code"``), on the directly coded Act-BP and Stable models."""
    report.add_heading("Attacks: the papers' algorithms vs the authors' code")
    x, y = test.x[: cfg.attack_samples], test.y[: cfg.attack_samples]
    rows = []
    for model_label, name in (("λ-LIF (Act-BP)", "lif"), ("λ-DLIF (Stable)", "stable")):
        # the code's L1 attack evaluates the model at accumulated points outside [0, 1]
        src = SNNSource(models[name], T=10, encoder="current", pixel_range="real")
        for label, attack, kw in RULE_ATTACKS:
            accs = []
            for rule in ("paper", "code"):
                r = attack(src, x, y, rule=rule, rng=seed, **kw)
                accs.append(float(np.mean(src.predict(r.x_adv).argmax(1) == y)))
            rows.append([model_label, label, *accs])
    report.add_table(
        ["model", "attack", "accuracy, paper's rule", "accuracy, authors' code"], rows,
        caption=f"{len(x)} test images, current coding, T = 10. The code's APGD (Croce & Hein's "
        "reference code) checks its step on integer checkpoints and returns the last "
        "misclassified iterate; the code's L1 PGD takes its gradients at an accumulating point "
        "and projects onto the L1 ball before the box; its L0 PGD keeps pixels tied with the "
        "k-th (README, 'Conventions')")
    report.add_result("attack_rules", rows)


def _taacc(net, x, y, T, enc, seed):
    from evsnn.metrics import taacc

    kw = {"sigma": RSC_SIGMA} if "rsc" in enc else {}
    seq = encode(x, enc, T, rng=seed, **kw)
    return taacc(simulate(net, seq).output, y)


def _certify_section(report, models, test, cfg, seed, progress):
    from certify import smoothing
    from certify.distributed import certified_accuracy, certify_dataset
    from validation.reproduce.certified_accuracy import (
        certified_accuracy_curves,
        plot_certified_accuracy,
    )

    report.add_heading("Certified accuracy")
    x, y = test.x[: cfg.certify_samples], test.y[: cfg.certify_samples]
    net = models["lif_rsc"]
    radii = np.linspace(0.0, 1.0, 21)
    curves = {}
    for name, noise in (("RSC-I", smoothing.rsc_fixed(RSC_SIGMA, 10)),
                        ("RSC-II", smoothing.rsc_fresh(RSC_SIGMA, 10))):
        table = certify_dataset(snn_classifier(net), x, y, noise, n0=cfg.certify_n0,
                                n=cfg.certify_n, alpha=0.001, num_classes=10, rng=seed,
                                progress=progress)
        curves[name] = (radii, certified_accuracy(table.radius, table.correct, radii))
    report.add_figure(certified_accuracy_figure(curves), "certified_accuracy",
                      caption="Certified L2 accuracy of the RSC-trained λ-LIF SNN, "
                      f"σ = {RSC_SIGMA}, "
                      f"{len(x)} test images (RSC-II's radius is σΦ⁻¹(p_A)/√T)")
    report.add_table(["L2 radius", *curves], [[radii[i], *(c[1][i] for c in curves.values())]
                                              for i in range(0, len(radii), 4)])
    report.add_result("certified_accuracy_l2", {"radii": radii,
                                                **{k: v[1] for k, v in curves.items()}})
    # Poisson coding as Bernoulli smoothing (certify.bernoulli) vs RSC-I, in L∞ and L1
    pc = certified_accuracy_curves(
        x, y, poisson_classify=snn_classifier(models["lif_poisson"]),
        rsc_classify=snn_classifier(net), n_steps=10, sigma=RSC_SIGMA, n0=cfg.certify_n0,
        n=cfg.certify_n, alpha=0.001, rng=seed,
        radii_linf=np.concatenate([[0.0], np.geomspace(1e-4, 0.05, 30)]),
        radii_l1=np.concatenate([[0.0], np.geomspace(1e-3, 1.0, 30)]))
    report.add_image("certified_accuracy_poisson", lambda path: plot_certified_accuracy(pc, path),
                     caption="Poisson coding (Bernoulli smoothing, Rényi-divergence radii) vs "
                     "RSC-I (L2 radius through norm inclusion), L∞ and L1. RSC-I is certified "
                     "again here with this comparison's own draws (one seed per image), so its "
                     "values can differ from the L2 table's within the sampling error")
    report.add_table(
        ["L∞ radius", "Poisson", "RSC-I"],
        [[r, a, b] for r, a, b in zip(pc.radii_linf, pc.poisson_linf, pc.rsc_linf)][::3],
        caption=f"Certified L∞ accuracy; certified clean accuracy Poisson {pc.clean_poisson:.3f}, "
        f"RSC-I {pc.clean_rsc:.3f} (the demo's two models, not matched in accuracy; "
        "validation.reproduce.certified_accuracy compares them at matched clean accuracy)")
    report.add_result("certified_accuracy_poisson", {
        "radii_linf": pc.radii_linf, "poisson_linf": pc.poisson_linf, "rsc_linf": pc.rsc_linf,
        "radii_l1": pc.radii_l1, "poisson_l1": pc.poisson_l1, "rsc_l1": pc.rsc_l1})
