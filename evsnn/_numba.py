"""The one place where numba options live.

``fastmath`` is never switched on: a reference simulator must not let the compiler reorder
floating-point arithmetic. Compiled functions are cached on disk so that the first command of a
session does not recompile everything; set ``EVSNN_NUMBA_CACHE=0`` to turn caching off (for
example when profiling compilation, or on a read-only install).
"""

from __future__ import annotations

import os

import numba

__all__ = ["njit", "prange", "CACHE", "FASTMATH"]

FASTMATH = False
CACHE = os.environ.get("EVSNN_NUMBA_CACHE", "1").strip().lower() not in {"0", "false", "no", "off"}

prange = numba.prange


def njit(func=None, *, parallel: bool = False):
    """Compile ``func`` in nopython mode with evsnn's fixed options.

    Use as ``@njit`` or ``@njit(parallel=True)``. Only ``parallel`` may vary per kernel; kernels
    that use ``prange`` must write per-thread outputs and reduce serially, so that results do not
    depend on the number of threads.
    """

    def wrap(f):
        compiled = numba.njit(cache=CACHE, fastmath=FASTMATH, parallel=parallel, nogil=True)(f)
        compiled.__evsnn_kernel__ = True
        return compiled

    if func is None:
        return wrap
    return wrap(func)
