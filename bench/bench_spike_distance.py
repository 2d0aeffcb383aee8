"""Victor–Purpura distance: evsnn vs Elephant, measured in the same run (issue #7).

Run ``.venv/bin/python bench/bench_spike_distance.py`` (``--quick`` for fewer repetitions).

Cases
-----
* **matrix**: ``pairwise_victor_purpura`` of 100 trains, each ``Poisson(50)`` spikes uniform on
  [0, 1000) ms (4,950 distinct pairs), on 2 numba threads; Elephant:
  ``victor_purpura_distance(list_of_100_SpikeTrains, cost_factor=q / ms)`` (its default ``fast``
  algorithm), which returns the same 100 × 100 matrix.
* **pair**: two trains of 1,000 spikes uniform on [0, 10,000) ms; evsnn
  ``victor_purpura_distance(a, b, q)`` vs Elephant on the list of the two trains.

Each at ``q = 0.1 / ms`` (moves of up to 20 ms are worth making: about 2 neighbours per spike at
these rates) and at ``q = 0.001 / ms`` (2/q = 2 s exceeds the span, so every cell of the DP table
is in the band: the full O(n m) programme, which ``pairwise_victor_purpura`` solves 16 pairs at
a time with the table cells of the 16 pairs side by side, vectorised; a lone pair is evsnn's worst
case). Elephant's run time does not depend on ``q``.

Timing: evsnn calls the public wrapper (validation and sorting included) after one warm-up call
(numba compilation); median of the repetitions. Elephant gets its native input (``neo.SpikeTrain``
objects built before timing); median of its repetitions (one for the 100-train matrix, which
takes seconds). The speed-up is Elephant's median over evsnn's median (in brackets: over evsnn's
fastest call, which is less disturbed by other processes on a shared machine). Agreement:
``|evsnn - elephant| <= 1e-9 |elephant|`` elementwise.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time

import numba
import numpy as np

from certify.spike_distance import pairwise_victor_purpura, victor_purpura_distance

SEED = 20261122
THREADS = 2
RTOL = 1e-9
TARGETS = {"matrix": 1000.0, "pair": 25.0}


def _times(fn, reps):
    """(median seconds, min seconds, last result) of ``reps`` calls."""
    times = []
    out = None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), out


def _agree(got, want):
    got, want = np.asarray(got, float), np.asarray(want, float)
    err = np.abs(got - want)
    rel = float(np.max(err / np.maximum(np.abs(want), np.finfo(float).tiny)))
    return bool(np.all(err <= RTOL * np.abs(want))), rel


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in argv
    try:
        import elephant
        import neo
        import quantities as pq
        from elephant.spike_train_dissimilarity import victor_purpura_distance as el_vp
    except ImportError as exc:
        print(f"Elephant is needed for this benchmark ({exc}); "
              ".venv/bin/pip install elephant quantities", file=sys.stderr)
        return 1
    numba.set_num_threads(THREADS)
    rng = np.random.default_rng(SEED)
    trains = [np.sort(rng.uniform(0.0, 1000.0, rng.poisson(50))) for _ in range(100)]
    pair = [np.sort(rng.uniform(0.0, 10_000.0, 1000)) for _ in range(2)]
    st_trains = [neo.SpikeTrain(t * pq.ms, t_stop=1000.0 * pq.ms) for t in trains]
    st_pair = [neo.SpikeTrain(t * pq.ms, t_stop=10_000.0 * pq.ms) for t in pair]
    reps_ev = 5 if quick else 25
    reps_el_pair = 3 if quick else 10

    n_spikes = sum(t.size for t in trains)
    print(f"Python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}"
          f", elephant {elephant.__version__}, neo {neo.__version__}, quantities "
          f"{pq.__version__}; numba threads {numba.get_num_threads()} of "
          f"{numba.config.NUMBA_NUM_THREADS}; matrix: {n_spikes} spikes in 100 trains; pair: "
          "2 x 1000 spikes")
    print("load average (1, 5, 15 min) at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    qs = (0.1,) if quick else (0.1, 0.001)
    rows = []
    all_ok = True
    for q in qs:
        pairwise_victor_purpura(trains, q)  # warm-up (compiles on the first call)
        victor_purpura_distance(pair[0], pair[1], q)
        ev_m = _times(lambda: pairwise_victor_purpura(trains, q), reps_ev)
        ev_p = _times(lambda: victor_purpura_distance(pair[0], pair[1], q), reps_ev)
        # Elephant: the matrix once per q (seconds per call), the pair repeated
        el_m = _times(lambda: el_vp(st_trains, cost_factor=q / pq.ms), 1)
        el_p = _times(lambda: el_vp(st_pair, cost_factor=q / pq.ms), reps_el_pair)
        for case, ev, el, want in (
            ("matrix", ev_m, el_m, np.asarray(el_m[2])),
            ("pair", ev_p, el_p, float(np.asarray(el_p[2])[0, 1])),
        ):
            ok, rel = _agree(ev[2], want)
            all_ok &= ok
            rows.append((case, q, ev, el, ok, rel))
    print("load average (1, 5, 15 min) at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print()
    print("| case | q (1/ms) | evsnn ms median (min) | Elephant ms median | speed-up median (min) "
          "| target | met (median) | agree to 1e-9 | max rel. diff |")
    print("|---|---:|---:|---:|---:|---:|---|---|---:|")
    for case, q, ev, el, ok, rel in rows:
        r_med, r_min = el[0] / ev[0], el[0] / ev[1]
        target = TARGETS[case]
        print(f"| {case} | {q:g} | {1e3 * ev[0]:.3f} ({1e3 * ev[1]:.3f}) | {1e3 * el[0]:,.1f} | "
              f"{r_med:,.0f}x ({r_min:,.0f}x) | >= {target:,.0f}x | "
              f"{'yes' if r_med >= target else 'NO'} | {'yes' if ok else 'NO'} | {rel:.1e} |")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
