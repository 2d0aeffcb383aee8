"""Exact-mode throughput and the cost of the exact gradient (issue #4).

Run ``.venv/bin/python bench/bench_exact.py`` (``--quick`` for a short run).

Setup: a 784-500-10 network of current-based LIF neurons with alpha synapses
(tau_m = tau_s = 10 ms, theta = 1, U0 = 0, hard reset: Ding 2025 Table 1, FashionMNIST column),
TTFS-coded inputs on t_enc = t_end = 10 ms (Eq. 11). Inputs are synthetic MNIST-like images:
each pixel is 0 with probability 0.8 (MNIST has ~19 % nonzero pixels) and uniform in (0, 1]
otherwise; a zero pixel spikes at t_enc (TTFS puts x = 0 at the end of the window), so every
sample has 784 input events. Weights are N(MU, (SIGMA/sqrt(n_in))^2) from a fixed seed, with MU
and SIGMA chosen so that a hidden neuron fires about once per sample and most output neurons
fire (realistic activity for a TTFS network). B = 32 samples per call, 2 numba threads.

Reported: input events/s (784 per sample divided by the forward time), synaptic events/s
(input events x fan-out 500, plus hidden spikes x 10), output spikes/s (hidden + output spikes),
and the time of ``loss_and_grad`` (forward + adjoint, first-spike cross-entropy) relative to
``simulate`` alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "2")

import numpy as np  # noqa: E402

from evsnn.exact import (  # noqa: E402
    ExactDense,
    ExactNetwork,
    ExactNeuron,
    encoders,
    loss_and_grad,
    simulate,
)

SEED = 20261122
B = 32
MU = (1.2, 0.4)  # mean weight x sqrt(n_in) per layer
SIGMA = (3.0, 3.0)


def build(rng):
    nrn = ExactNeuron("lif", "alpha", tau_mem_ms=10.0, tau_syn_ms=10.0, theta=1.0, u0=0.0)
    w1 = (MU[0] + SIGMA[0] * rng.standard_normal((500, 784))) / np.sqrt(784)
    w2 = (MU[1] + SIGMA[1] * rng.standard_normal((10, 500))) / np.sqrt(500)
    return ExactNetwork([ExactDense(w1, nrn), ExactDense(w2, nrn)])


def images(rng, n):
    x = rng.uniform(0.0, 1.0, (n, 784))
    x[rng.random((n, 784)) < 0.8] = 0.0
    return x


def timed(fn, repeats):
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 timed calls instead of 7")
    args = ap.parse_args(argv)
    repeats = 3 if args.quick else 7
    rng = np.random.default_rng(SEED)
    net = build(rng)
    x = images(rng, B)
    labels = rng.integers(0, 10, B)
    inp = encoders.ttfs(x, 10.0)
    res = simulate(net, inp)  # compile
    loss_and_grad(net, inp, labels)
    hidden = int(res.layers[0].counts.sum())
    output = int(res.layers[1].counts.sum())
    flagged = int(np.count_nonzero(res.flags))
    t_fwd, all_fwd = timed(lambda: simulate(net, encoders.ttfs(x, 10.0)), repeats)
    t_grad, all_grad = timed(lambda: loss_and_grad(net, encoders.ttfs(x, 10.0), labels), repeats)
    n_in_events = inp.times.size
    syn_events = n_in_events * 500 + hidden * 10
    print(f"batch B={B}: {n_in_events} input events, {hidden} hidden spikes "
          f"({hidden / (B * 500):.2f} per neuron), {output} output spikes "
          f"({np.count_nonzero(res.layers[1].counts)} of {B * 10} output neurons fire), "
          f"{flagged} samples flagged")
    print(f"forward  (simulate, encoding included): median {t_fwd * 1e3:.1f} ms "
          f"[{', '.join(f'{t * 1e3:.1f}' for t in all_fwd)}]")
    print(f"  {B / t_fwd:,.1f} samples/s, {n_in_events / t_fwd:,.0f} input events/s, "
          f"{syn_events / t_fwd / 1e6:,.2f} M synaptic events/s, "
          f"{(hidden + output) / t_fwd:,.0f} output spikes/s")
    print(f"loss_and_grad (forward + adjoint): median {t_grad * 1e3:.1f} ms "
          f"[{', '.join(f'{t * 1e3:.1f}' for t in all_grad)}]; "
          f"{t_grad / t_fwd:.2f} x the forward pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
