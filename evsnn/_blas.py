"""NumPy's OpenBLAS on a fixed number of threads, so that evsnn's products round the same bits
whatever the machine or the process is configured with (README, "Threads and reproducibility").

Why: above a size threshold OpenBLAS computes a product on its thread pool, and the number of
threads changes the order of the additions. Measured on 2026-12-01 (OpenBLAS 0.3.31 of NumPy
2.4.6, SkylakeX kernels, ``OPENBLAS_NUM_THREADS`` 1, 2, 3 in turn):

* float32 products with an inner dimension of 500 or more (float64: 400 or more) differed between
  1 thread and 2 in 71-80 % of their entries, e.g. [2560 × 500] · [500 × 784] in 76 %; up to an
  inner dimension of 400 (float64: 384) they agreed;
* float64 [256 × K] · [K × 500] differed between 2 threads and 3 in 0.2-0.3 % of the entries for
  every K tried (100-784).

So no thread count is "the" answer; evsnn fixes one. dask's nanny starts its workers with
``OPENBLAS_NUM_THREADS=1``, so without this a process cluster and an in-process run would differ.

:func:`pin_threads` runs when evsnn is imported. ``EVSNN_BLAS_THREADS`` chooses the count
(default :data:`DEFAULT_THREADS`), or ``off`` to leave OpenBLAS as it is. Every OpenBLAS loaded
in the process is pinned (found in ``/proc/self/maps``, or elsewhere in the NumPy wheel's
``numpy.libs`` / ``numpy/.dylibs`` folder): NumPy's at import, SciPy's own when a module that
loads it calls :func:`pin_new_libraries` (``certify.l2gain``). With another BLAS (MKL,
Accelerate), or an OpenBLAS threaded with OpenMP (which takes its count from ``OMP_NUM_THREADS``
at every call), nothing is changed and :func:`blas_threads` returns None.

Why not threadpoolctl (which scikit-learn installs, but evsnn does not depend on): its
OpenBLAS limits are scoped, and since version 3.8 only the first Python thread that sets one (the
"controlling thread") may change it again; calls from any other thread are silently ignored
(threadpoolctl's README, "OpenBLAS with pthreads/Windows, and the controlling thread"). evsnn
pins once, process-wide, from whichever thread imports it, and again from whichever thread
imports ``certify.l2gain`` (a dask worker thread, say). Through threadpoolctl, SciPy's OpenBLAS
loaded in another thread kept its start-up count (checked with threadpoolctl 3.8.0, 2026-12-01),
and evsnn's standalone limit would make the importing thread the controller, silently disabling
``threadpool_limits`` in every other thread of the user's program. The calls here are
OpenBLAS's own ``openblas_set_num_threads``, which act from any thread
(``tests/test_blas_env.py`` checks a pin from a second thread).
"""

from __future__ import annotations

import ctypes
import glob
import os

ENV = "EVSNN_BLAS_THREADS"
#: The thread count evsnn gives NumPy's OpenBLAS unless ``EVSNN_BLAS_THREADS`` says otherwise:
#: the development machine's 2 cores, on which every benchmark in bench/RESULTS.md ran.
DEFAULT_THREADS = 2

# (set, get, threading model) symbols: the NumPy/SciPy wheels' ILP64 and LP64 builds (prefixed
# names), then a plain OpenBLAS
_SYMBOLS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_",
     "scipy_openblas_get_parallel64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads",
     "scipy_openblas_get_parallel"),
    ("openblas_set_num_threads", "openblas_get_num_threads", "openblas_get_parallel"),
)
# openblas_get_parallel's answer for a build threaded with OpenMP: such a build takes its thread
# count from OpenMP at every call (OMP_NUM_THREADS), whatever openblas_set_num_threads said
_OPENMP = 2

_pinned: int | None = None  # the count every loaded OpenBLAS was given, if any took it
_requested: int | None = None  # the count asked for at import (None: leave OpenBLAS alone)


def requested_threads() -> int | None:
    """The count ``EVSNN_BLAS_THREADS`` asks for (:data:`DEFAULT_THREADS` when unset), or None
    for ``off``."""
    raw = os.environ.get(ENV)
    if raw is None:
        return DEFAULT_THREADS
    if raw.strip().lower() == "off":
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(
            f"{ENV}={raw!r} is not a thread count: set it to a positive integer (the threads "
            "NumPy's OpenBLAS gets; the default is "
            f"{DEFAULT_THREADS}) or to 'off' to leave OpenBLAS as it is"
        )
    return n


def _openblas_in_maps(lines) -> list[str]:
    """The OpenBLAS library paths among ``/proc/self/maps`` lines."""
    paths = []
    for line in lines:
        # address, perms, offset, device, inode[, path]: the path may contain spaces
        fields = line.rstrip("\n").split(maxsplit=5)
        if len(fields) == 6 and "openblas" in os.path.basename(fields[5]).lower():
            paths.append(fields[5])
    return paths


def _openblas_paths() -> list[str]:
    """Paths of the OpenBLAS libraries loaded in this process (NumPy's among them)."""
    import numpy as np

    paths = []
    try:
        with open("/proc/self/maps") as maps:
            paths = _openblas_in_maps(maps)
    except OSError:  # not Linux: look where the NumPy wheels keep their OpenBLAS
        here = os.path.dirname(np.__file__)
        for pattern in ("../numpy.libs/*openblas*", ".dylibs/*openblas*"):
            paths += glob.glob(os.path.join(here, pattern))
    return list(dict.fromkeys(paths))


def _controls(path):
    """(set, get) thread-count functions of the OpenBLAS at ``path``, or None (not an OpenBLAS
    whose count can be set: not found, or threaded with OpenMP)."""
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    for set_name, get_name, parallel_name in _SYMBOLS:
        setter, getter = getattr(lib, set_name, None), getattr(lib, get_name, None)
        if setter is None or getter is None:
            continue
        parallel = getattr(lib, parallel_name, None)
        if parallel is not None:
            parallel.restype = ctypes.c_int
            if parallel() == _OPENMP:
                return None
        setter.argtypes = [ctypes.c_int64 if set_name.endswith("64_") else ctypes.c_int]
        getter.restype = ctypes.c_int
        return setter, getter
    return None


def pin_threads(n: int | None) -> int | None:
    """Give every loaded OpenBLAS ``n`` threads; return ``n`` if one was found and now reports
    ``n``, else None (``n`` None: change nothing)."""
    global _pinned, _requested
    _requested = n
    if n is None:
        _pinned = None
        return None
    done = False
    for path in _openblas_paths():
        controls = _controls(path)
        if controls is not None:
            controls[0](n)
            done = done or controls[1]() == n
    _pinned = n if done else None
    return _pinned


def pin_new_libraries() -> None:
    """Give OpenBLAS libraries loaded since import (SciPy's own, which ARPACK's vector operations
    use) the count chosen at import. Modules that import ``scipy.sparse.linalg`` or
    ``scipy.linalg`` call it after that import."""
    if _requested is not None:
        pin_threads(_requested)


def thread_counts() -> dict[str, int]:
    """Each loaded OpenBLAS's current thread count, by library path."""
    counts = {}
    for path in _openblas_paths():
        controls = _controls(path)
        if controls is not None:
            counts[path] = controls[1]()
    return counts


def kernel() -> str | None:
    """The processor name NumPy's OpenBLAS chose its kernels for (``openblas_get_corename``: for
    instance ``Haswell`` for AVX2, ``SkylakeX`` for AVX-512), or None if no loaded OpenBLAS says.

    A DYNAMIC_ARCH build picks it from the processor unless ``OPENBLAS_CORETYPE`` names one; the
    benchmarks print it, because the kernel sets the speed of every BLAS product (on an AVX-512
    host the AVX2 kernels run a float32 product at about half the speed).
    """
    for path in _openblas_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                     "openblas_get_corename"):
            corename = getattr(lib, name, None)
            if corename is not None:
                corename.restype = ctypes.c_char_p
                return corename().decode("ascii", "replace").strip()
    return None


def blas_threads() -> int | None:
    """The thread count evsnn gave the loaded OpenBLAS libraries (NumPy's at import), or None
    (another BLAS, or ``EVSNN_BLAS_THREADS=off``)."""
    return _pinned
