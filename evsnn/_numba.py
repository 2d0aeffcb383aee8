"""The one place where numba options live.

``fastmath`` is never switched on: a reference simulator must not let the compiler reorder
floating-point arithmetic. Compiled functions are cached on disk so that the first command of a
session does not recompile everything; set ``EVSNN_NUMBA_CACHE=0`` to turn caching off (for
example when profiling compilation, or on a read-only install).

Numba keys a cached kernel on its own source file only: a kernel that calls a kernel of another
module keeps running the old callee after that module changes. So at import, when any source
file of the packages that hold kernels has changed since the cache was written (size or
modification time), every cached kernel of those packages is dropped and recompiled on use.

Threads: evsnn's hot kernels (the dense layers, their backward passes, the convolutional
layers) are compiled serially and run on pieces of their data by :func:`run_split` /
:func:`run_range`, on a pool of Python threads. With numba's ``prange`` on its default OpenMP
layer, idle workers spin for a while after every kernel and take a core from what follows (an
OpenBLAS product, the Poisson encoder's threads, the next kernel): on 2 cores the float32 VGG
forward of ``bench/bench_conv.py`` measured about 700 ms that way, 520 ms with ``run_split``, and
the float32 dense forward + backward of ``bench/bench_backward.py`` 77-84 ms against 57-66 ms
(bench/RESULTS_backward.md). Idle pool threads sleep, and the pool may be entered from several
threads at once (numba's workqueue layer, which does not spin, aborts then). The price is a
thread wake-up per kernel call, which a workload of many short kernels with single-threaded BLAS
notices (bench/RESULTS_attack.md). OpenBLAS's idle workers busy-wait as well after each product;
importing evsnn before NumPy shortens that wait (``OPENBLAS_THREAD_TIMEOUT``, evsnn/__init__.py).

Kernels use NumPy's floating-point error model (``ERROR_MODEL``), as numba always does for
``prange`` bodies: under Python's model each division tests for zero and raises, and such loops
are not vectorised.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba

__all__ = [
    "njit", "prange", "run_pieces", "run_split", "run_range", "CACHE", "FASTMATH", "ERROR_MODEL",
]

FASTMATH = False
# NumPy's floating-point error model: a division by zero gives inf/nan (IEEE 754) instead of a
# Python ZeroDivisionError check in every division, which keeps loops with a division (the
# sigmoid surrogate's 1 / (1 + e)) from being vectorised. prange loop bodies are always compiled
# this way by numba, so serial kernels compute exactly what the parallel ones did.
ERROR_MODEL = "numpy"
CACHE = os.environ.get("EVSNN_NUMBA_CACHE", "1").strip().lower() not in {"0", "false", "no", "off"}

prange = numba.prange

_KERNEL_PACKAGES = ("evsnn", "certify")
_STAMP = "evsnn-numba-sources.stamp"


def _source_fingerprint(roots):
    h = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            st = path.stat()
            h.update(f"{path.relative_to(root.parent)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def drop_stale_cache(roots=None):
    """Delete numba's cached kernels (``*.nbi``/``*.nbc`` in ``__pycache__``) of the packages in
    ``roots`` when their sources changed since the last call; returns the number of files
    deleted. Failures (read-only install) are ignored: numba then recompiles or reuses as usual.
    """
    if roots is None:
        base = Path(__file__).resolve().parent.parent
        roots = [base / name for name in _KERNEL_PACKAGES if (base / name).is_dir()]
    roots = [Path(r) for r in roots]
    if not roots:
        return 0
    try:
        stamp = roots[0] / "__pycache__" / _STAMP
        fingerprint = _source_fingerprint(roots)
        if stamp.exists() and stamp.read_text() == fingerprint:
            return 0
        removed = 0
        for root in roots:
            for cached in [*root.rglob("__pycache__/*.nbi"), *root.rglob("__pycache__/*.nbc")]:
                cached.unlink()
                removed += 1
        stamp.parent.mkdir(exist_ok=True)
        stamp.write_text(fingerprint)
        return removed
    except OSError:
        return 0


if CACHE:
    drop_stale_cache()


def njit(func=None, *, parallel: bool = False):
    """Compile ``func`` in nopython mode with evsnn's fixed options.

    Use as ``@njit`` or ``@njit(parallel=True)``. Only ``parallel`` may vary per kernel; kernels
    that use ``prange`` must write per-thread outputs and reduce serially, so that results do not
    depend on the number of threads.
    """

    def wrap(f):
        compiled = numba.njit(cache=CACHE, fastmath=FASTMATH, error_model=ERROR_MODEL,
                              parallel=parallel, nogil=True)(f)
        compiled.__evsnn_kernel__ = True
        return compiled

    if func is None:
        return wrap
    return wrap(func)


_POOL = None
_POOL_PID = None
_POOL_LOCK = threading.Lock()


def _pool():
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or _POOL_PID != os.getpid():  # a forked child gets a pool of its own
            _POOL = ThreadPoolExecutor(max_workers=max(1, numba.config.NUMBA_NUM_THREADS - 1))
            _POOL_PID = os.getpid()
        return _POOL


def run_pieces(n, call):
    """``call(lo, hi)`` on ``numba.get_num_threads()`` contiguous pieces of ``range(n)`` at once:
    the calling thread runs the first piece, the pool the others (the engine of
    :func:`run_split` and :func:`run_range`; for calls that collect a result per piece)."""
    k = min(numba.get_num_threads(), n)
    if k <= 1:
        call(0, n)
        return
    bounds = [n * i // k for i in range(k + 1)]
    futures = [_pool().submit(call, bounds[i], bounds[i + 1]) for i in range(1, k)]
    call(bounds[0], bounds[1])
    for f in futures:
        f.result()


def run_split(kernel, n, sliced, *args, axis=0):
    """Call a serial kernel on ``numba.get_num_threads()`` contiguous pieces of ``range(n)`` at
    once: the calling thread runs the first piece, a pool of Python threads the others (kernels
    are compiled ``nogil``).

    ``sliced`` lists the positions in ``args`` of the arrays to cut along ``axis`` (those of
    length ``n`` there; a placeholder of another length is passed whole). The pieces must write
    disjoint outputs, so the result does not depend on the number of threads.

    Used for kernels that run between BLAS products or other threads' work: idle OpenMP workers
    (numba's default layer) spin after each ``prange`` kernel and slow what follows, idle pool
    threads sleep.
    """

    def piece(lo, hi):
        a = list(args)
        for j in sliced:
            arr = a[j]
            if arr.ndim > axis and arr.shape[axis] == n:
                a[j] = arr[lo:hi] if axis == 0 else arr[:, lo:hi]
        kernel(*a)

    run_pieces(n, piece)


def run_range(kernel, n, *args):
    """Call ``kernel(*args, lo, hi)`` on pieces ``[lo, hi)`` of ``range(n)`` as :func:`run_split`
    does, with the arrays passed whole: for kernels that index a middle axis (samples of a
    time-major ``[T, B, N]`` array), where a cut view would lose the C layout numba vectorises
    for. The pieces must write disjoint outputs.
    """
    run_pieces(n, lambda lo, hi: kernel(*args, lo, hi))
