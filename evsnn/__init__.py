"""evsnn: a float64, event-driven reference simulator for SNN robustness research.

Importing evsnn before NumPy sets ``OPENBLAS_THREAD_TIMEOUT`` (see
:data:`BLAS_THREAD_TIMEOUT`) unless it is already set. Importing evsnn gives NumPy's OpenBLAS a
fixed number of threads, ``EVSNN_BLAS_THREADS`` (default 2; ``off`` leaves it alone), so that
products round alike in every process (:mod:`evsnn._blas`, :func:`blas_threads`). On glibc it
also tells malloc to keep freed arrays for reuse (:mod:`evsnn._malloc`; ``EVSNN_MALLOC=off``
leaves malloc alone).
"""

import os
import sys

__version__ = "0.1.0"

# evsnn alternates OpenBLAS products with its own kernels on the same cores (the convolution
# layers, the dense backward: evsnn._numba.run_split). After a product OpenBLAS's idle workers
# busy-wait before they sleep, and by default that wait is long enough to take a core from the
# kernel that follows. OPENBLAS_THREAD_TIMEOUT (OpenBLAS docs, "Runtime variables") sets the
# wait; 4 lets them sleep almost at once. Measured 2026-12-01 on 2 cores (Intel Xeon, AVX-512),
# float32, OpenBLAS's default vs 4: bench/bench_backward.py --quick 48.4 vs 30.9 ms
# (bench/RESULTS_backward.md), bench/bench_conv.py forward 212 vs 157 ms, forward + backward
# 847 vs 626 ms (bench/RESULTS_conv.md). OpenBLAS reads the variable once, when NumPy loads it:
# it is set here only while NumPy is not loaded yet, and never over a value the user chose.
BLAS_THREAD_TIMEOUT = "4"
if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", BLAS_THREAD_TIMEOUT)

# after the variable above: this loads NumPy (and with it OpenBLAS)
from evsnn import _blas, _malloc  # noqa: E402
from evsnn._blas import blas_threads  # noqa: E402,F401  (public)
from evsnn._malloc import malloc_configured  # noqa: E402,F401  (public)

_blas.pin_threads(_blas.requested_threads())
_malloc.keep_freed_memory()
