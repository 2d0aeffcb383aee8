"""Forward and BPTT backward of a VGG-11-style SNN: evsnn against SpikingJelly on CPU (issue 10).

Run ``.venv/bin/python bench/bench_conv.py`` (``--quick`` for fewer repetitions). Both
frameworks run in the same process, interleaved (one evsnn call, one SpikingJelly call, ...), and
the median of the repetitions is reported.

Network (VGG-11 feature configuration 64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M, as
in SpikingJelly's ``model/spiking_vgg.py``): each convolution is 3×3, padding 1, no bias, then
BatchNorm2d (eval mode, random running statistics) and an LIF neuron (τ = 2, ``decay_input=False``
↔ evsnn λ = 0.5, hard reset to 0, θ = 1); M is 2×2 max pooling; then Flatten and a 512→10 linear
layer with an LIF neuron. Input: T = 8, B = 16, 3×32×32 images, current-coded (the same image
at every step, pixel values uniform in [0, 1]). Weights: PyTorch's default initialisation times a
gain chosen so that every layer spikes (rates printed).

evsnn: the network loaded with :func:`validation.crossval.spikingjelly_conv.from_spikingjelly`;
forward ``simulate_conv(record=True)`` (what the backward needs; ``record=False`` timed too);
backward ``backward_conv`` with ``Sigmoid(4, "code")`` (input and every weight gradient).
SpikingJelly: multi-step mode, ``surrogate.Sigmoid(alpha=4)``; forward under ``torch.no_grad``
and, for the backward, a forward with autograd plus ``(out · g).sum().backward()`` with the input
requiring a gradient. Threads: 2 for numba, BLAS and torch.

``--omp-wait-policy PASSIVE`` sets ``OMP_WAIT_POLICY`` for the process (torch and numba share one
libgomp). Idle OpenMP workers spin for a while after every parallel region under the default
policy; evsnn's convolution kernels therefore run on Python threads (``evsnn._numba.run_split``)
rather than numba's OpenMP pool, but torch's workers still spin after each SpikingJelly call and
can slow the evsnn call that follows (the calls are interleaved). The option lets that be
measured; figures with and without it vary between runs.
"""

from __future__ import annotations

import os

THREADS = 2
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "EVSNN_BLAS_THREADS", "MKL_NUM_THREADS",
            "NUMBA_NUM_THREADS"):
    os.environ.setdefault(var, str(THREADS))

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._host import blas_line  # noqa: E402
import evsnn  # noqa: E402,F401  (before NumPy: it sets OPENBLAS_THREAD_TIMEOUT)

import numpy as np  # noqa: E402

CFG = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]
T, B = 8, 16
GAIN = 2.5


def build_model(torch, layer, neuron, surrogate):
    torch.manual_seed(20261130)
    mods, cin = [], 3
    for v in CFG:
        if v == "M":
            mods.append(layer.MaxPool2d(2))
            continue
        conv = layer.Conv2d(cin, v, 3, padding=1, bias=False)
        bn = layer.BatchNorm2d(v)
        with torch.no_grad():
            conv.weight.mul_(GAIN)
            bn.running_mean.uniform_(-0.1, 0.1)
            bn.running_var.uniform_(0.5, 1.5)
            bn.bias.uniform_(0.0, 0.3)
        mods += [conv, bn, neuron.LIFNode(tau=2.0, decay_input=False,
                                          surrogate_function=surrogate.Sigmoid(alpha=4.0))]
        cin = v
    lin = layer.Linear(512, 10, bias=False)
    with torch.no_grad():
        lin.weight.mul_(GAIN * 2)
    mods += [layer.Flatten(), lin,
             neuron.LIFNode(tau=2.0, decay_input=False,
                            surrogate_function=surrogate.Sigmoid(alpha=4.0))]
    return torch.nn.Sequential(*mods).eval()


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--omp-wait-policy", choices=["PASSIVE", "ACTIVE"], default=None,
                    help="set OMP_WAIT_POLICY before torch and numba load libgomp (one OpenMP "
                         "runtime serves both); unset by default")
    args = ap.parse_args(argv)
    reps = 3 if args.quick else 7
    if args.omp_wait_policy:
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy

    import numba
    import torch
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    from evsnn.clock.conv import simulate_conv
    from evsnn.grad import Sigmoid
    from evsnn.grad.conv import backward_conv
    from validation.crossval.spikingjelly_conv import from_spikingjelly

    torch.set_num_threads(THREADS)
    model = build_model(torch, layer, neuron, surrogate)
    functional.set_step_mode(model, "m")
    net, conv = from_spikingjelly(model, (3, 32, 32))
    folded, _ = from_spikingjelly(model, (3, 32, 32), fold_bn=True)
    rng = np.random.default_rng(20261130)
    x = np.repeat(rng.random((1, B, 3, 32, 32)), T, axis=0)
    g_out = rng.standard_normal((T, B, 10))
    sur = Sigmoid(4.0, "code")

    results = {}
    for dtype in (np.float32, np.float64):
        tdtype = torch.float32 if dtype == np.float32 else torch.float64
        m = model.to(tdtype)
        xt = torch.as_tensor(x, dtype=tdtype)
        gt = torch.as_tensor(g_out, dtype=tdtype)
        xd = x.astype(dtype)

        def ev_fwd():
            return simulate_conv(net, xd, convention=conv, dtype=dtype)

        def ev_fwd_folded():
            return simulate_conv(folded, xd, convention=conv, dtype=dtype)

        def ev_fwd_rec():
            return simulate_conv(net, xd, convention=conv, dtype=dtype, record=True)

        def ev_fb():
            res = simulate_conv(net, xd, convention=conv, dtype=dtype, record=True)
            return res, backward_conv(net, xd, res, g_out, surrogate=sur)

        def sj_fwd():
            functional.reset_net(m)
            with torch.no_grad():
                return m(xt)

        def sj_fb():
            functional.reset_net(m)
            xi = xt.clone().requires_grad_(True)
            for p in m.parameters():
                p.grad = None
            out = m(xi)
            (out * gt).sum().backward()
            return out, xi.grad

        # agreement and activity (also the warm-up: numba compiles here)
        res, grads = ev_fb()
        sj_out, sj_gin = sj_fb()
        spikes_differ = int((res.output != sj_out.detach().numpy()).sum())
        rates = [float(r.spikes.mean()) for r in res.layers]
        gin = grads.input
        cos = float((gin * sj_gin.numpy()).sum() / (np.linalg.norm(gin) * np.linalg.norm(
            sj_gin.numpy())))
        ev_fwd()
        ev_fwd_folded()
        sj_fwd()
        times = {k: [] for k in ("evsnn fwd", "evsnn fwd folded", "evsnn fwd rec",
                                  "evsnn fwd+bwd", "sj fwd", "sj fwd+bwd")}
        for _ in range(reps):
            for name, fn in (("evsnn fwd", ev_fwd), ("sj fwd", sj_fwd),
                             ("evsnn fwd folded", ev_fwd_folded),
                             ("evsnn fwd rec", ev_fwd_rec), ("evsnn fwd+bwd", ev_fb),
                             ("sj fwd+bwd", sj_fb)):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        med = {k: float(np.median(v)) for k, v in times.items()}
        results[np.dtype(dtype).name] = dict(med=med, rates=rates, spikes_differ=spikes_differ,
                                             grad_cos=cos, n_out=int(res.output.sum()))

    print(f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
          f"torch {torch.__version__}, threads {THREADS}, reps {reps}, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}, OPENBLAS_THREAD_TIMEOUT="
          f"{os.environ.get('OPENBLAS_THREAD_TIMEOUT', '(unset)')}, numba threading layer "
          f"{numba.threading_layer()}")
    print(blas_line())
    for name, r in results.items():
        med = r["med"]
        print(f"\n{name}: spike rates per layer {[round(v, 3) for v in r['rates']]}; output "
              f"spikes {r['n_out']}, differing from SpikingJelly {r['spikes_differ']}; "
              f"input-gradient cosine {r['grad_cos']:.6f}")
        print("| measurement | evsnn ms | SpikingJelly ms | SJ / evsnn |")
        print("|---|---:|---:|---:|")
        print(f"| forward | {med['evsnn fwd'] * 1e3:.0f} | {med['sj fwd'] * 1e3:.0f} | "
              f"{med['sj fwd'] / med['evsnn fwd']:.2f} |")
        print(f"| forward, BN folded into the convolutions | {med['evsnn fwd folded'] * 1e3:.0f} "
              f"| — | {med['sj fwd'] / med['evsnn fwd folded']:.2f} |")
        rec = med["evsnn fwd rec"] * 1e3
        print(f"| forward (recording, as for backward) | {rec:.0f} | — | — |")
        print(f"| forward + bptt backward | {med['evsnn fwd+bwd'] * 1e3:.0f} | "
              f"{med['sj fwd+bwd'] * 1e3:.0f} | {med['sj fwd+bwd'] / med['evsnn fwd+bwd']:.2f} |")
    print("\nload average (1, 5, 15 min) at end: %.2f %.2f %.2f" % os.getloadavg())
    return 0


if __name__ == "__main__":
    sys.exit(main())
