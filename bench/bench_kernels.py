"""Kernel-level timings behind the 2026-11-30 speed work (bench/RESULTS_*.md cite them).

Run ``.venv/bin/python bench/bench_kernels.py`` (``--quick`` for fewer repetitions). Each line is
the median wall time of one call on 2 threads (numba, BLAS), except where it says one thread:

* the second layer of the CERTIFY benchmark's network (500 → 10 λ-LIF, 2,000 noise draws,
  T = 10, 28.7 % of the hidden neuron-steps spiking), ``simulate`` float32;
* the 784-500-10 forward of ``bench_forward.py`` on one fixed Poisson raster, float32, without
  and with recording (what a backward pass needs);
* fresh Poisson coding of that batch (256 × 784 pixels, T = 10, float32), and the PCG64 draws
  alone per uniform;
* the 2 × 2 max-pooling backward kernel on the first pooling of ``bench_conv.py``'s VGG
  (128 frames × 64 channels × 32 × 32, float32), one thread;
* standard normals from one PCG64 stream, NumPy's ``standard_normal`` against evsnn's compiled
  ziggurat (``evsnn._normals.standard_normal_chunks``, ``normals="compiled"``), one thread;
* CERTIFY's noise stream for one batch (2,000 draws of 784 normals), and the whole sampler of
  ``bench_certify.py`` (n = 100,000) with a classifier that answers at once — the part of every
  CERTIFY run that the classifier does not control.
"""

from __future__ import annotations

import os

THREADS = 2
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "EVSNN_BLAS_THREADS", "MKL_NUM_THREADS",
             "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._host import blas_line  # noqa: E402
import evsnn  # noqa: E402,F401  (before NumPy: it sets OPENBLAS_THREAD_TIMEOUT)

import numpy as np  # noqa: E402

import numba  # noqa: E402

from bench import bench_certify, bench_forward  # noqa: E402
from bench.bench_forward import time_rounds  # noqa: E402
from certify.smoothing import _NoiseStream, certify, rsc_fixed  # noqa: E402
from evsnn import encoders  # noqa: E402
from evsnn._normals import pcg64_state, standard_normal_chunks  # noqa: E402
from evsnn.clock import Network, simulate  # noqa: E402
from evsnn.grad.conv import _pool_backward_kernel  # noqa: E402


class _AnswersAtOnce:
    """A classifier that costs nothing: what is left of a CERTIFY run is the sampler."""

    def classify_static(self, z, n_steps):
        return np.zeros(z.shape[0], dtype=np.int64)

    def __call__(self, seq):
        return np.zeros(seq.shape[1], dtype=np.int64)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    rounds = 5 if args.quick else 15
    rng = np.random.default_rng(20261130)
    f32 = np.float32

    cert_net, cert_x = bench_certify.make_problem()
    layer2 = Network([cert_net.layers[1]])
    hidden = (rng.random((bench_certify.T, bench_certify.BATCH, 500)) < 0.287).astype(f32)

    fwd_net, fwd_x = bench_forward.make_problem()
    fwd_x32 = fwd_x.astype(f32)
    raster = encoders.poisson(fwd_x32, bench_forward.T, rng=1, dtype=f32)
    gen = np.random.default_rng(2)
    buf = np.empty(1 << 17)

    pool_g = rng.standard_normal((128, 64, 16, 16)).astype(f32)
    pool_arg = rng.integers(0, 4, (128, 64, 16, 16)).astype(np.int8)
    pool_gx = np.empty((128, 64, 32, 32), f32)

    def pool_one_thread():
        numba.set_num_threads(1)
        try:
            _pool_backward_kernel(pool_g, pool_arg, 2, 2, 2, 2, 0, 0, pool_gx)
        finally:
            numba.set_num_threads(THREADS)

    normals = np.empty((1, 64 * 784))  # one noise chunk of 64 draws of 784 pixels
    normal_gen = np.random.default_rng(4)
    normal_state = np.stack([pcg64_state(4)])
    seed = np.random.SeedSequence(3)
    fns = {
        "certify layer 2 (500 -> 10), 2,000 draws": lambda: simulate(layer2, hidden, dtype=f32),
        "784-500-10 forward, Poisson raster": lambda: simulate(fwd_net, raster, dtype=f32),
        "784-500-10 forward, recorded": lambda: simulate(fwd_net, raster, record=True, dtype=f32),
        "Poisson coding, 256 x 784 x 10": lambda: encoders.poisson(fwd_x32, bench_forward.T,
                                                                    rng=gen, dtype=f32),
        "PCG64 uniforms, 131,072 (one thread)": lambda: gen.random(out=buf),
        "2x2 max-pool backward, VGG pool 1 (one thread)": pool_one_thread,
        "noise stream, 2,000 x 784 normals": lambda: _NoiseStream(seed, (784,)).take(0, 2000),
        "50,176 normals, NumPy (one thread)": lambda: normal_gen.standard_normal(out=normals[0]),
        "50,176 normals, compiled (one thread)": lambda: standard_normal_chunks(normal_state,
                                                                                normals),
    }
    med, _ = time_rounds(fns, rounds)

    noise = rsc_fixed(bench_certify.SIGMA, bench_certify.T)
    sampler = []
    for _ in range(3):
        t0 = time.perf_counter()
        certify(_AnswersAtOnce(), cert_x, noise, n0=bench_certify.N0, n=bench_certify.N,
                alpha=bench_certify.ALPHA, num_classes=bench_certify.N_OUT,
                rng=bench_certify.SEED, batch_size=bench_certify.BATCH)
        sampler.append(time.perf_counter() - t0)

    print(f"numba {numba.__version__}, numpy {np.__version__}, threads {THREADS}, "
          f"{rounds} calls per line (median); load average at end "
          "%.2f %.2f %.2f" % os.getloadavg())
    print(blas_line())
    print("| measurement | ms |")
    print("|---|---:|")
    for k, v in med.items():
        print(f"| {k} | {v * 1e3:.2f} |")
    per_draw = med["PCG64 uniforms, 131,072 (one thread)"] / buf.size * 1e9
    print(f"| PCG64, ns per uniform | {per_draw:.2f} |")
    for how in ("NumPy", "compiled"):
        per_normal = med[f"50,176 normals, {how} (one thread)"] / normals.size * 1e9
        print(f"| standard normal, {how}, ns each | {per_normal:.2f} |")
    print(f"| CERTIFY sampler alone, n = 100,000 (3 runs, s) | "
          f"{', '.join(f'{t:.2f}' for t in sampler)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
