"""Issue 3 training targets on the embedded digits: measured accuracy and time of each run.

Run ``.venv/bin/python bench/train_targets.py`` (``--only NAME[,NAME]`` for a subset; ``--list``
for the names). Every run is seeded, 64-100-10, T = 10 unless stated, trained on
``load_digits("train")`` (1,347 images) and evaluated once on ``load_digits("test")`` (450
images). Printed per run: the training time (``TrainResult.seconds``), the wall and the CPU
time of the whole run (training and evaluation; the CPU time is summed over threads, so on an
otherwise idle 2-core machine the wall time is at most about the CPU time), and the load average
(the machine may be shared: a wall time under load says little).

Targets (issue 3): ReLU ANN ≥ 95 %; converted IF SNN, current coding, T = 30, within 2 points of
its ANN; λ-LIF trained with ``bptt`` and current coding ≥ 92 %; trace-LIF trained with ``tempbp``
≥ 88 %; TTFS decoding trains (well above the 10 % chance level); each run < 1 minute on 2 cores.
Results are recorded in ``bench/RESULTS_train.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

from evsnn.ann import ANN
from evsnn.clock import Network
from evsnn.convert import convert
from evsnn.data import load_digits
from evsnn.grad import Sigmoid
from evsnn.params import LIF, TraceLIF
from evsnn.train import AdamW, CosineSchedule, fit_ann, fit_snn, snn_accuracy

TRAIN = load_digits("train")
TEST = load_digits("test")
SEED_INIT, SEED_TRAIN = 0, 1


def _cosine_adamw(lr, epochs, batch_size, weight_decay=0.0):
    steps = epochs * -(-len(TRAIN) // batch_size)
    return AdamW(CosineSchedule(lr, steps), weight_decay=weight_decay)


def _snn(name, net, *, epochs, batch_size, lr, target, **kw):
    r = fit_snn(net, TRAIN.x, TRAIN.y, T=kw.pop("T", 10), rng=SEED_TRAIN, epochs=epochs,
                batch_size=batch_size, optimizer=_cosine_adamw(lr, epochs, batch_size),
                x_test=TEST.x, y_test=TEST.y, **kw)
    return r.test_accuracy, r.seconds, target


def run_ann():
    t0 = time.perf_counter()
    r = fit_ann(ANN.mlp([64, 100, 10], rng=SEED_INIT), TRAIN.x, TRAIN.y, rng=SEED_TRAIN,
                epochs=30, batch_size=32, optimizer=_cosine_adamw(1e-2, 30, 32, 0.01),
                x_test=TEST.x, y_test=TEST.y)
    return r, time.perf_counter() - t0


RUNS = {}


def register(name, description):
    def wrap(f):
        RUNS[name] = (description, f)
        return f

    return wrap


_ANN_CACHE = {}


def _ann():
    if "r" not in _ANN_CACHE:
        _ANN_CACHE["r"] = run_ann()
    return _ANN_CACHE["r"]


@register("ann", "ReLU ANN 64-100-10, AdamW (wd 0.01) cosine lr 1e-2, 30 epochs, batch 32")
def _():
    r, seconds = _ann()
    return r.test_accuracy, seconds, ">= 0.95"


def _conversion(percentile):
    r, _ = _ann()
    t0 = time.perf_counter()
    c = convert(r.model, TRAIN.x, percentile=percentile)
    acc = snn_accuracy(c.network, TEST.x, TEST.y, T=30, encoder="current", decoder="rate")
    return acc, time.perf_counter() - t0, f">= {r.test_accuracy - 0.02:.4f} (ANN - 2 points)"


@register("convert", "the ANN above converted (max activation, Eq. 14), IF, current, T=30, rate")
def _():
    return _conversion(100.0)


@register("convert_p99.9", "the same with the 99.9th percentile")
def _():
    return _conversion(99.9)


@register("bptt_rate", "λ-LIF (λ=0.9, θ=1, hard reset), bptt sigmoid ρ=5, current, rate "
                       "decoding, init scale 3, AdamW cosine lr 1e-2, batch 64, 15 epochs")
def _():
    net = Network.mlp([64, 100, 10], LIF(lam=0.9), rng=SEED_INIT, scale=3.0)
    return _snn("bptt_rate", net, epochs=15, batch_size=64, lr=1e-2, target=">= 0.92")


@register("bptt_membrane", "as bptt_rate with a non-spiking readout, membrane decoding")
def _():
    net = Network.mlp([64, 100, 10], LIF(lam=0.9), readout=True, rng=SEED_INIT, scale=3.0)
    return _snn("bptt_membrane", net, epochs=15, batch_size=64, lr=1e-2, decoder="membrane",
                target=">= 0.92")


@register("tempbp_readout", "trace-LIF hidden layer (τm=τs=10 ms, Δt=1 ms, θ=1, emits the trace) "
                            "+ readout, tempbp, current, membrane decoding, lr 1e-2, batch 64, "
                            "15 epochs")
def _():
    net = Network.mlp([64, 100, 10], TraceLIF(), readout=True, rng=SEED_INIT, scale=3.0)
    return _snn("tempbp_readout", net, epochs=15, batch_size=64, lr=1e-2, method="tempbp",
                decoder="membrane", target=">= 0.88")


@register("tempbp_trace_rate", "trace-LIF in both layers (the output emits its trace), tempbp "
                               "with the fallback surrogate ρ=1 (fallback_rho=1.0), current, rate "
                               "decoding of the output trace, lr 1e-2, batch 64, 15 epochs")
def _():
    net = Network.mlp([64, 100, 10], TraceLIF(), rng=SEED_INIT, scale=3.0)
    return _snn("tempbp_trace_rate", net, epochs=15, batch_size=64, lr=1e-2, method="tempbp",
                fallback_rho=1.0, target=">= 0.88")


@register("tempbp_trace_rate_rho5", "as tempbp_trace_rate with the default fallback ρ=5")
def _():
    net = Network.mlp([64, 100, 10], TraceLIF(), rng=SEED_INIT, scale=3.0)
    return _snn("tempbp_trace_rate_rho5", net, epochs=15, batch_size=64, lr=1e-2,
                method="tempbp", target=">= 0.88")


@register("bptt_ttfs", "λ-LIF (λ=0.9) in both layers, bptt with a wide sigmoid surrogate ρ=1, "
                       "current, TTFS decoding, cross-entropy on the TTFS scores, lr 1e-2, "
                       "batch 64, 15 epochs")
def _():
    net = Network.mlp([64, 100, 10], LIF(lam=0.9), rng=SEED_INIT, scale=3.0)
    return _snn("bptt_ttfs", net, epochs=15, batch_size=64, lr=1e-2, decoder="ttfs",
                surrogate=Sigmoid(1.0), target="well above 0.10")


@register("bptt_ttfs_rho5", "as bptt_ttfs with the default surrogate ρ=5")
def _():
    net = Network.mlp([64, 100, 10], LIF(lam=0.9), rng=SEED_INIT, scale=3.0)
    return _snn("bptt_ttfs_rho5", net, epochs=15, batch_size=64, lr=1e-2, decoder="ttfs",
                target="well above 0.10")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated run names")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        for name, (desc, _) in RUNS.items():
            print(f"{name:20s} {desc}")
        return 0
    names = [n for n in args.only.split(",") if n] or list(RUNS)
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        print(f"unknown runs {unknown}; use --list", file=sys.stderr)
        return 2
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.node()} {platform.processor() or ''} "
          f"cpus={os.cpu_count()} load={load[0]:.1f} python {platform.python_version()} "
          f"numpy {np.__version__}", flush=True)
    print("| run | test accuracy | target | train s (wall) | run s (wall) | run s (CPU) | "
          "load (1 min) |")
    print("|---|---:|---|---:|---:|---:|---:|", flush=True)
    for name in names:
        desc, f = RUNS[name]
        w0, c0 = time.perf_counter(), time.process_time()
        acc, seconds, target = f()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"| {name} | {acc:.4f} | {target} | {seconds:.1f} | {wall:.1f} | {cpu:.1f} | "
              f"{load:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
