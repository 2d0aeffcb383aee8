"""CERTIFY (n = 100,000) for one image under RSC-I: evsnn vs a PyTorch network (issue 6).

Run ``.venv/bin/python bench/bench_certify.py`` (``--quick``: n = 20,000 and one repetition;
``--normals numpy``: the noise drawn by NumPy's ``standard_normal``, the default before
2026-12-05; the default ``compiled`` draws it from the same streams with evsnn's ziggurat).
Prints the wall time of one full :func:`certify.smoothing.certify` call per backend, the ratios
and the two targets: evsnn ≥ 3× faster than PyTorch, judged against the hoisted module (the
first layer's input once per draw, as issue #6 asks of evsnn; the per-step module is printed for
information), and ≤ 5 s per image on 2 cores (judged only at n = 100,000). If the backends'
counts differ on the same 4,000 draws nothing is timed and the script exits 1.

Setup: 784-500-10 network, λ-LIF in both layers (λ = 0.9, hard reset to 0, θ = 1, spike test
``m ≥ θ``), rate decoding (label = argmax of the output spike counts, ties to the lower class),
weights N(0, (SCALE/√n_in)²) from a fixed seed, float32. The image has 20 % of its pixels
uniform in [0.5, 1] and the rest 0 (an MNIST-like ink fraction). RSC-I noise (RSC Eq. 7, 10):
σ = 0.25, T = 10, clamp to [0, 1]; CERTIFY with n0 = 100, n = 100,000, α = 0.001, batches of
2,000. The hidden layer's spike rate on the noisy inputs is printed.

All four runs go through the same ``certify`` call with the same seed, so they draw the same
noise (the project's sampling: per-chunk SeedSequence streams, float64 standard normals, made by
``--normals``) and differ only in the classifier:

* evsnn: :class:`certify.smoothing.NetworkClassifier` (float32). The sampler hands it the noisy
  image once per draw; the first layer's input is formed once per draw (the default
  ``product="exact"``: the simulator's ordered sums, so labels do not depend on the batch;
  "evsnn blas": ``product="blas"``, one BLAS product per batch), the first layer runs T steps
  on that constant current (numba), the output layer is simulated event-driven.
* PyTorch, hoisted: the same structure in torch (``z @ W1.T`` once per draw, a λ-LIF loop over
  T, ``s @ W2.T`` per step); it also offers ``classify_static`` and ``static_dtype = float32``,
  so it gets the same input as evsnn (float32 noisy images, made by the sampler).
* PyTorch, per step: a plain multi-step module that receives the sampler's ``[T, B, N]``
  sequence and applies the first linear layer to every step (``[T·B, N] @ W1.T``) -- what a
  generic PyTorch SNN does when handed a repeated input.
* sampler alone: a classifier that answers at once. Its time plus the first layer's dense
  products at BLAS speed is a floor for every backend that uses this sampler and a dense first
  layer, printed with the largest ratio it allows. It is not a bound for every design: the
  sampling contract fixes only the normals (about 80 % of the sampler's time), and a sparse
  product could skip the zeros of clamp(x + ε) (bench/RESULTS_certify.md, stop 30).

Wall and CPU time (``time.process_time``, all threads of the process; spinning OpenMP workers
count) are printed per run, with the 1-minute load average: on a shared machine the wall time
depends on the other processes, the ratio of interleaved runs much less.

Threads: numba 2, OpenBLAS 2, torch 2 (``torch.set_num_threads(2)``), CPU only. The runs are
interleaved (evsnn, evsnn blas, torch hoisted, torch per step, repeated) so that load changes hit
all four.
"""

from __future__ import annotations

import os

THREADS = 2
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "EVSNN_BLAS_THREADS"):
    os.environ[_var] = str(THREADS)  # assigned: an inherited count must not tilt it

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._host import blas_line  # noqa: E402
import evsnn  # noqa: E402,F401  (before NumPy: it sets OPENBLAS_THREAD_TIMEOUT)

import numpy as np  # noqa: E402

from certify.smoothing import NORMALS, NetworkClassifier, certify, rsc_fixed  # noqa: E402
from evsnn.clock import Network  # noqa: E402
from evsnn.params import LIF  # noqa: E402

N_IN, N_HID, N_OUT = 784, 500, 10
LAM, THETA = 0.9, 1.0
T, SIGMA = 10, 0.25
N0, N, ALPHA, BATCH = 100, 100_000, 0.001, 2000
SCALE = 3.0
INK = 0.2
SEED = 20261130
TARGET_RATIO, TARGET_SECONDS = 3.0, 5.0


def make_problem():
    rng = np.random.default_rng(SEED)
    net = Network.mlp([N_IN, N_HID, N_OUT], LIF(lam=LAM, theta=THETA, reset="hard", v_rest=0.0),
                      rng=rng, scale=SCALE)
    net = net.with_weights([w.astype(np.float32) for w in net.weights()])
    # of 20 candidate images, the one the smoothed network is most sure about (a random network
    # is unsure about most inputs, and CERTIFY would abstain; the timing is the same either way)
    xs = np.where(rng.random((20, N_IN)) < INK, rng.uniform(0.5, 1.0, (20, N_IN)), 0.0)
    clf = NetworkClassifier(net, dtype=np.float32)
    eps = np.random.default_rng(SEED + 1).standard_normal((500, N_IN))
    top = [np.bincount(clf.classify_static(np.clip(x + SIGMA * eps, 0, 1), T)).max() for x in xs]
    return net, xs[int(np.argmax(top))]


class TorchLIF:
    """784-500-10 λ-LIF network in PyTorch (float32, CPU), rate decoding."""

    static_dtype = np.float32  # the sampler hands classify_static float32 images, as to evsnn

    def __init__(self, torch, net):
        self.torch = torch
        self.w1t = torch.from_numpy(np.ascontiguousarray(net.layers[0].weight.T))
        self.w2t = torch.from_numpy(np.ascontiguousarray(net.layers[1].weight.T))

    def _run(self, cur1_at):
        torch = self.torch
        with torch.no_grad():
            first = cur1_at(0)
            B = first.shape[0]
            v1 = torch.zeros(B, N_HID)
            v2 = torch.zeros(B, N_OUT)
            count = torch.zeros(B, N_OUT)
            for t in range(T):
                m1 = LAM * v1 + (first if t == 0 else cur1_at(t))
                s1 = (m1 >= THETA).to(torch.float32)
                v1 = m1 * (1.0 - s1)
                m2 = LAM * v2 + s1 @ self.w2t
                s2 = (m2 >= THETA).to(torch.float32)
                v2 = m2 * (1.0 - s2)
                count += s2
            return torch.argmax(count, dim=1).numpy()


class TorchHoisted(TorchLIF):
    def classify_static(self, z, n_steps):
        cur = self.torch.from_numpy(np.asarray(z, dtype=np.float32)) @ self.w1t
        return self._run(lambda t: cur)

    def __call__(self, seq):  # not used for RSC-I (the sampler calls classify_static)
        return self.classify_static(np.asarray(seq)[0], T)


class TorchPerStep(TorchLIF):
    def __call__(self, seq):
        seq = self.torch.from_numpy(np.asarray(seq, dtype=np.float32))
        Tn, B, n = seq.shape
        cur = (seq.reshape(Tn * B, n) @ self.w1t).reshape(Tn, B, N_HID)
        return self._run(lambda t: cur[t])


class SamplerOnly:
    """Answers class 0 at once: a ``certify`` call with it times the sampler every backend
    shares (normals, noisy images, counting), the part no classifier can avoid."""

    static_dtype = np.float32  # the images the float32 backends receive

    def classify_static(self, z, n_steps):
        return np.zeros(len(z), dtype=np.int64)

    def __call__(self, seq):
        return np.zeros(np.shape(seq)[1], dtype=np.int64)


def product_seconds(net, n, reps=11):
    """BLAS time of the first layer's input for n draws, ``z · W1ᵀ`` in float32 batch by batch
    (median batch time times the batch count): the least a classifier of this network with a
    dense first-layer product does."""
    w1t = np.ascontiguousarray(net.layers[0].weight.T, dtype=np.float32)
    z = np.random.default_rng(0).random((BATCH, N_IN), dtype=np.float32)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        z @ w1t
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * -(-(N0 + n) // BATCH)


def hidden_rate(net, x):
    from evsnn.clock import simulate

    eps = np.random.default_rng(1).standard_normal((200, N_IN))
    z = np.clip(x + SIGMA * eps, 0, 1).astype(np.float32)
    rec = simulate(net, np.repeat(z[None], T, axis=0), record=True).layers
    return float(rec[0].spikes.mean()), float(rec[1].spikes.mean())


def run(name, classify, x, n, results, normals):
    noise = rsc_fixed(SIGMA, T, normals=normals)
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    cert = certify(classify, x, noise, n0=N0, n=n, alpha=ALPHA, num_classes=N_OUT, rng=SEED,
                   batch_size=BATCH)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    results.setdefault(name, []).append(dt)
    print(f"  {name:22s} {dt:7.2f} s wall  {cpu:7.2f} s CPU (all threads)  load {load:4.1f}  "
          f"prediction {cert.prediction}  p_A_lower {cert.p_a_lower:.5f}  radius "
          f"{cert.radius:.4f}", flush=True)
    return cert


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--normals", choices=NORMALS, default="compiled",
                    help="how the sampler makes its standard normals (certify.smoothing)")
    args = ap.parse_args(argv)
    n = 20_000 if args.quick else N
    reps = args.reps or (1 if args.quick else 2)

    import numba
    import torch

    torch.set_num_threads(THREADS)
    net, x = make_problem()
    evs = NetworkClassifier(net, dtype=np.float32)  # product="exact", the default
    evs_blas = NetworkClassifier(net, dtype=np.float32, product="blas")
    hoisted, per_step = TorchHoisted(torch, net), TorchPerStep(torch, net)
    h1, h2 = hidden_rate(net, x)
    print(f"date {time.strftime('%Y-%m-%d %H:%M:%S')}  cores {os.cpu_count()}  load "
          f"{os.getloadavg()[0]:.1f}  python {platform.python_version()}  numpy {np.__version__}"
          f"  numba {numba.__version__} ({numba.get_num_threads()} threads)  torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads)  OPENBLAS_THREAD_TIMEOUT "
          f"{os.environ.get('OPENBLAS_THREAD_TIMEOUT', '(unset)')}")
    print(blas_line())
    print(f"784-500-10 λ-LIF, T = {T}, σ = {SIGMA}, n0 = {N0}, n = {n:,}, batch {BATCH}; "
          f"spike rate per neuron-step on noisy inputs: hidden {h1:.3f}, output {h2:.3f}; "
          f"normals {args.normals}")

    # warm-up (compilation, allocator) and agreement check on the same draws
    small = {}
    c_e = run("warm-up evsnn", evs, x, 4000, small, args.normals)
    c_b = run("warm-up evsnn blas", evs_blas, x, 4000, small, args.normals)
    c_h = run("warm-up torch hoisted", hoisted, x, 4000, small, args.normals)
    c_p = run("warm-up torch per step", per_step, x, 4000, small, args.normals)
    agree = [np.array_equal(c_e.counts, c.counts) for c in (c_b, c_h, c_p)]
    print(f"identical counts on 4,000 draws: evsnn vs evsnn blas {agree[0]}, vs torch hoisted "
          f"{agree[1]}, vs torch per step {agree[2]}")
    if not all(agree):  # the backends would be timed computing different classifiers
        print("FAIL: the backends disagree on the same draws; nothing timed")
        return 1

    results = {}
    for r in range(reps):
        print(f"repetition {r + 1} (load {os.getloadavg()[0]:.1f})")
        run("evsnn", evs, x, n, results, args.normals)
        run("evsnn blas", evs_blas, x, n, results, args.normals)
        run("torch hoisted", hoisted, x, n, results, args.normals)
        run("torch per step", per_step, x, n, results, args.normals)
        run("sampler alone", SamplerOnly(), x, n, results, args.normals)

    best = {k: min(v) for k, v in results.items()}
    print("\nbest of the repetitions (s per image):")
    for k, v in best.items():
        print(f"  {k:16s} {v:7.2f}")
    # the ratio target is judged against the hoisted module, which like evsnn forms the first
    # layer's input once per draw (issue #6); the per-step module forms it T times
    for ours in ("evsnn", "evsnn blas"):
        ratio = best["torch hoisted"] / best[ours]
        verdict = "PASS" if ratio >= TARGET_RATIO else "MISS"
        print(f"{ours} vs torch hoisted (like for like): {ratio:.2f}x (target >= "
              f"{TARGET_RATIO}x) {verdict}")
        print(f"  (info) {ours} vs torch per step (first layer T times per draw): "
              f"{best['torch per step'] / best[ours]:.2f}x")
        if n == N:
            verdict = "PASS" if best[ours] <= TARGET_SECONDS else "MISS"
        else:
            verdict = f"n/a (the target is for n = {N:,}; this run drew {n:,})"
        print(f"{ours} {best[ours]:.2f} s per image (target <= {TARGET_SECONDS} s) {verdict}")
    # the floor of a backend that shares this sampler and forms the first layer's input densely
    floor = best["sampler alone"] + product_seconds(net, n)
    print(f"floor with this sampler and a dense first layer: sampler "
          f"{best['sampler alone']:.2f} s + first-layer products at BLAS speed "
          f"{floor - best['sampler alone']:.2f} s = {floor:.2f} s per image; so torch hoisted / "
          f"such a backend <= {best['torch hoisted'] / floor:.2f}x, torch per step / such a "
          f"backend <= {best['torch per step'] / floor:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
