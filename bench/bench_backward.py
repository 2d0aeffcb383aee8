"""Forward + backward (bptt) of a 784-500-10 λ-LIF network against PyTorch autograd (issue #3).

Run ``.venv/bin/python bench/bench_backward.py`` (``--quick`` for a short run; ``--cpu-time`` for
one thread everywhere timed by process CPU time, backends interleaved). One timed call is
a whole training-style gradient evaluation on a fixed Poisson raster: forward pass (recorded),
rate decoding (output spike counts), mean cross-entropy, backward pass, giving dL/d(input
sequence) ``[T, B, 784]`` and dL/dW of both layers.

Setup (the same network, weights and inputs as ``bench_forward.py``): λ-LIF (λ = 0.9, hard reset
to 0, θ = 1) in both layers, T = 10, B = 256, pixel rates uniform in [0, 0.3] Poisson-encoded once
(the raster is the input of every timed call), weights N(0, (2/√n_in)²) from a fixed seed, labels
drawn uniformly from a fixed seed. 2 threads everywhere (numba, BLAS, torch).

Backends
--------
* evsnn float64 and float32: ``simulate(record="bptt")`` → ``decode("rate")`` →
  ``cross_entropy`` → ``decoder_vjp`` → ``evsnn.grad.backward(method="bptt",
  surrogate=Sigmoid(5, "code"))``. ``record="bptt"`` records what that backward reads (no current,
  no v), as ``evsnn.grad.loss_and_grad`` does for ``method="bptt"``; its gradients are those of
  ``record=True`` bit for bit (tests/test_clock.py).
* SpikingJelly 2.0 float32 (multi-step ``layer.Linear`` + ``neuron.LIFNode``, autograd).
* snnTorch 1.0 float32 (``nn.Linear`` + ``snn.Leaky`` in a Python loop over time, autograd).

Matched surrogates, so that all backends compute the same gradient
----------------------------------------------------------------------
* SpikingJelly ``surrogate.Sigmoid(alpha=5)``: ``g'(x) = α σ(αx)(1 − σ(αx))`` with x = H − θ, which
  is evsnn's ``Sigmoid(5, "code")``. ``LIFNode(detach_reset=False)`` differentiates the hard reset
  ``V = H (1 − S) + V_reset S`` through S as evsnn's bptt does by default (``∂v/∂m = 1 − s``,
  ``∂v/∂s = v_rest − m``). Charge ``H = V − V/τ + X`` with τ = 10 (λ = 0.9), spike test ``>=``.
* snnTorch ``surrogate.sigmoid(slope=5)``: the same derivative. ``Leaky`` computes its reset from
  the previous membrane *detached* (``mem_reset``), so its gradient is evsnn's bptt with
  ``detach_reset=True``; it fires on ``>`` (evsnn ``DEFAULT.with_(spike_test=">")``).

Before timing, each PyTorch backend's gradients are compared with evsnn's float32 gradients for
its convention on the same raster and weights (cosine similarity and relative L2 difference of
dL/dinput, dL/dW1, dL/dW2) and the output spike counts are compared.
"""

from __future__ import annotations

import os

import sys  # noqa: E402

# Thread counts must be fixed before numpy/numba/torch load their thread pools. ``--cpu-time``
# runs everything on one thread and times process CPU time, interleaving the backends call by
# call: much less sensitive to other load on the machine than wall time on 2 threads.
CPU_TIME = "--cpu-time" in sys.argv
THREADS = 1 if CPU_TIME else 2
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "EVSNN_BLAS_THREADS", "MKL_NUM_THREADS",
             "NUMBA_NUM_THREADS"):
    # assigned, not defaulted: an inherited count must not make one side run on other threads
    os.environ[_var] = str(THREADS)

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._host import blas_line  # noqa: E402
import evsnn  # noqa: E402,F401  (before NumPy: it sets OPENBLAS_THREAD_TIMEOUT)

import numpy as np  # noqa: E402

from bench.bench_forward import (  # noqa: E402
    B, LAM, N_HID, N_IN, N_OUT, SEED, T, THETA, load_torch, make_problem, time_rounds, versions,
)
from evsnn import encoders  # noqa: E402
from evsnn.clock import simulate  # noqa: E402
from evsnn.conventions import DEFAULT  # noqa: E402
from evsnn.decoders import decode  # noqa: E402
from evsnn.grad import Sigmoid, backward, cross_entropy, decoder_vjp  # noqa: E402

RHO = 5.0
SURROGATE = Sigmoid(RHO, "code")
SJ_CONV = DEFAULT  # spike test ">=", reset differentiated
SNNTORCH_CONV = DEFAULT.with_(spike_test=">")  # reset detached (see the module docstring)
# Gradients of the same function computed in float32 by two libraries (different summation
# orders in the products) agree to float32 rounding; a cosine below this means a different
# function (e.g. an unmatched surrogate or reset).
COSINE_MIN = 0.9999
# and a relative L2 difference above this means a different scale (e.g. rates for counts),
# which the cosine cannot see; float32 rounding measured 7.5e-7 at most (RESULTS_backward.md)
REL_L2_MAX = 1e-4

TARGETS = (
    # (label, numerator, denominator, minimum ratio)
    ("evsnn f32 vs SpikingJelly f32", "evsnn float32", "SpikingJelly float32", 2.0),
    ("evsnn f64 vs SpikingJelly f32", "evsnn float64", "SpikingJelly float32", 1.0),
)


def evsnn_grad(net, s, y, dtype, conv, detach_reset):
    """Forward, rate decoding, mean cross-entropy, bptt backward; returns (loss, counts,
    dL/ds, [dL/dW1, dL/dW2])."""
    res = simulate(net, s, convention=conv, record="bptt", dtype=dtype)
    scores = decode(res.output, "rate")
    loss, g_scores = cross_entropy(scores, y)
    g_out = decoder_vjp("rate", g_scores, res.output)
    gr = backward(net, s, res, g_out, method="bptt", surrogate=SURROGATE,
                  detach_reset=detach_reset)
    return loss, scores, gr.input, gr.weights


class SpikingJellyGrad:
    def __init__(self, mods, w1, w2, dtype):
        torch = mods["torch"]
        functional, layer, neuron = mods["sj"]
        from spikingjelly.activation_based import surrogate

        self.torch, self.functional = torch, functional

        def lif():
            return neuron.LIFNode(
                tau=1.0 / (1.0 - LAM), decay_input=False, v_threshold=THETA, v_reset=0.0,
                surrogate_function=surrogate.Sigmoid(alpha=RHO), detach_reset=False,
                step_mode="m",
            )

        tdt = torch.float32 if dtype == np.float32 else torch.float64
        self.fc1 = layer.Linear(N_IN, N_HID, bias=False, step_mode="m").to(tdt)
        self.fc2 = layer.Linear(N_HID, N_OUT, bias=False, step_mode="m").to(tdt)
        self.lif1, self.lif2 = lif(), lif()
        with torch.no_grad():
            self.fc1.weight.copy_(torch.from_numpy(w1.astype(dtype)))
            self.fc2.weight.copy_(torch.from_numpy(w2.astype(dtype)))
        self.modules = (self.fc1, self.lif1, self.fc2, self.lif2)

    def __call__(self, s, y):
        torch = self.torch
        for m in self.modules:
            self.functional.reset_net(m)
        self.fc1.weight.grad = None
        self.fc2.weight.grad = None
        s = s.detach().requires_grad_(True)
        out = self.lif2(self.fc2(self.lif1(self.fc1(s))))
        counts = out.sum(0)
        loss = torch.nn.functional.cross_entropy(counts, y)
        loss.backward()
        return loss, counts, s.grad, [self.fc1.weight.grad, self.fc2.weight.grad]


class SnnTorchGrad:
    def __init__(self, mods, w1, w2):
        torch = mods["torch"]
        snn = mods["snn"]
        from snntorch import surrogate

        self.torch = torch
        self.fc1 = torch.nn.Linear(N_IN, N_HID, bias=False)
        self.fc2 = torch.nn.Linear(N_HID, N_OUT, bias=False)
        sg = surrogate.sigmoid(slope=RHO)
        self.lif1 = snn.Leaky(beta=LAM, threshold=THETA, reset_mechanism="zero", spike_grad=sg)
        self.lif2 = snn.Leaky(beta=LAM, threshold=THETA, reset_mechanism="zero", spike_grad=sg)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.from_numpy(w1.astype(np.float32)))
            self.fc2.weight.copy_(torch.from_numpy(w2.astype(np.float32)))

    def __call__(self, s, y):
        torch = self.torch
        self.fc1.weight.grad = None
        self.fc2.weight.grad = None
        s = s.detach().requires_grad_(True)
        mem1 = torch.zeros(s.shape[1], N_HID)
        mem2 = torch.zeros(s.shape[1], N_OUT)
        counts = torch.zeros(s.shape[1], N_OUT)
        for t in range(s.shape[0]):
            spk1, mem1 = self.lif1(self.fc1(s[t]), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            counts = counts + spk2
        loss = torch.nn.functional.cross_entropy(counts, y)
        loss.backward()
        return loss, counts, s.grad, [self.fc1.weight.grad, self.fc2.weight.grad]


def cosine(a, b):
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def rel_l2(a, b):
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


BACKENDS = ("evsnn float64", "evsnn float32", "SpikingJelly float32", "SpikingJelly float64",
            "snnTorch float32")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="1 thread everywhere, process CPU time, backends interleaved")
    ap.add_argument("--only", metavar="BACKEND", choices=BACKENDS,
                    help="time this backend alone (quoted, e.g. 'evsnn float32'): no other "
                         "backend and no agreement check runs in the process, so the allocator's "
                         "state is this backend's own, as in a user's loop")
    args = ap.parse_args(argv)
    rounds = 5 if args.quick else 15

    import numba

    print(f"# bench_backward  {datetime.date.today()}  {platform.machine()}  "
          f"cpus={os.cpu_count()}  numba threads={numba.get_num_threads()}  "
          f"OpenBLAS threads (evsnn.blas_threads)={evsnn.blas_threads()}  OPENBLAS_THREAD_TIMEOUT="
          f"{os.environ.get('OPENBLAS_THREAD_TIMEOUT', '(unset)')}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    print("load average (1, 5, 15 min) at start: %.2f %.2f %.2f" % os.getloadavg())
    print(blas_line())
    net, x = make_problem()
    w1 = np.asarray(net.layers[0].weight)
    w2 = np.asarray(net.layers[1].weight)
    y = np.random.default_rng(SEED + 7).integers(0, N_OUT, B)
    s32 = encoders.poisson(x, T, rng=SEED + 1, dtype=np.float32)
    s64 = s32.astype(np.float64)
    mods, missing = load_torch()
    if "torch" in mods:
        mods["torch"].set_num_threads(THREADS)
        print(f"torch threads {mods['torch'].get_num_threads()}")
    for m in missing:
        print(f"MISSING backend: {m} -- its rows and targets are skipped")

    rec = simulate(net, s32, convention=SJ_CONV, record=True, dtype=np.float32).layers
    print(f"Poisson input: {int(s32.sum())} events, hidden spikes {int(rec[0].spikes.sum())}, "
          f"output spikes {int(rec[1].spikes.sum())}")

    fns = {
        "evsnn float64": lambda: evsnn_grad(net, s64, y, np.float64, SJ_CONV, False),
        "evsnn float32": lambda: evsnn_grad(net, s32, y, np.float32, SJ_CONV, False),
    }
    bad = 0
    if "torch" in mods:
        torch = mods["torch"]
        st32, yt = torch.from_numpy(s32), torch.from_numpy(y)
        checks = []
        if "sj" in mods:
            sj = SpikingJellyGrad(mods, w1, w2, np.float32)
            sj64 = SpikingJellyGrad(mods, w1, w2, np.float64)
            st64 = torch.from_numpy(s64)
            fns["SpikingJelly float32"] = lambda: sj(st32, yt)
            fns["SpikingJelly float64"] = lambda: sj64(st64, yt)
            checks.append(("SpikingJelly", sj, SJ_CONV, False))
        if "snn" in mods:
            sn = SnnTorchGrad(mods, w1, w2)
            fns["snnTorch float32"] = lambda: sn(st32, yt)
            checks.append(("snnTorch", sn, SNNTORCH_CONV, True))
        for name, model, conv, detach in ([] if args.only else checks):
            loss, counts, g_in, g_w = evsnn_grad(net, s32, y, np.float32, conv, detach)
            t_loss, t_counts, t_in, t_w = model(st32, yt)
            same_counts = np.array_equal(counts, t_counts.detach().numpy())
            parts = [("dL/dinput", g_in, t_in.numpy()), ("dL/dW1", g_w[0], t_w[0].numpy()),
                     ("dL/dW2", g_w[1], t_w[1].numpy())]
            msg = ", ".join(f"{k}: cos {cosine(a, b):.7f} relL2 {rel_l2(a, b):.1e}"
                            for k, a, b in parts)
            t_loss = float(t_loss.detach())
            print(f"evsnn f32 vs {name:<12} loss {loss:.6f} vs {t_loss:.6f}; output counts "
                  f"identical: {same_counts}; {msg}")
            low = [k for k, a, b in parts
                   if cosine(a, b) < COSINE_MIN or rel_l2(a, b) > REL_L2_MAX]
            if low or not same_counts:
                bad += 1
                print(f"  MISMATCH with {name}: {low or 'output counts'}")
        # float64 evsnn against the float32 reference of SpikingJelly (information)
        if "sj" in mods and not args.only:
            _, _, g64, gw64 = evsnn_grad(net, s64, y, np.float64, SJ_CONV, False)
            _, _, t_in, t_w = sj(st32, yt)
            print(f"evsnn f64 vs SpikingJelly f32: dL/dinput cos {cosine(g64, t_in.numpy()):.7f}, "
                  f"dL/dW1 cos {cosine(gw64[0], t_w[0].numpy()):.7f}")

    if args.only:
        if args.only not in fns:
            print(f"MISSING backend: {args.only}")
            return 1
        fns = {args.only: fns[args.only]}
    if CPU_TIME:
        for fn in fns.values():
            fn()
        cpu = {k: [] for k in fns}
        for _ in range(rounds):
            for k, fn in fns.items():
                t0 = time.process_time()
                fn()
                cpu[k].append(time.process_time() - t0)
        med = {k: statistics.median(v) for k, v in cpu.items()}
        what = "process CPU time, 1 thread, interleaved"
    else:
        med, _ = time_rounds(fns, rounds)
        what = "wall time"
    print(f"\nforward + backward, B = {B}, T = {T}, median of {rounds} calls (fixed raster), "
          f"{what}")
    print(f"| {'backend':<24} | {'ms/batch':>9} | {'samples/s':>10} |\n|{'-' * 26}|{'-' * 11}|"
          f"{'-' * 12}|")
    for k, v in med.items():
        print(f"| {k:<24} | {v * 1e3:9.2f} | {B / v:10.0f} |")

    print(f"\nTargets ({THREADS} threads)")
    ok = True
    for label, num, den, goal in TARGETS:
        if num not in med or den not in med:
            print(f"  {label:<34} target >= {goal:.2f}x   n/a ({den} missing)")
            continue
        ratio = med[den] / med[num]
        if CPU_TIME:  # the targets are on 2 threads: one thread's CPU time is a hint
            print(f"  {label:<34} target >= {goal:.2f}x   measured {ratio:5.2f}x   n/a "
                  "(1 thread, CPU time; the targets are on 2 threads)")
            continue
        ok &= ratio >= goal
        print(f"  {label:<34} target >= {goal:.2f}x   measured {ratio:5.2f}x   "
              f"{'PASS' if ratio >= goal else 'MISS'}")
    if "snnTorch float32" in med:
        ratio = med["snnTorch float32"] / med["evsnn float32"]
        print(f"  (info) evsnn f32 vs snnTorch f32: {ratio:.2f}x")
    print("load average (1, 5, 15 min) at end: %.2f %.2f %.2f" % os.getloadavg())
    if bad:
        print(f"\nFAIL: {bad} backend(s) disagree with evsnn's gradients (see above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
