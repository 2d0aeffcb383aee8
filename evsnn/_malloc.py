"""glibc's malloc told to keep freed arrays for the next call instead of handing them back to the
system (README, "Memory between calls").

Why: every call of ``simulate(record=True)`` + ``backward`` on the 784-500-10 benchmark network
(B = 256, T = 10, float32) returns about 40 MB of fresh arrays (records, dL/dm, dL/dx, dL/dW).
glibc serves arrays above its ``mmap`` threshold with fresh pages, and returns freed memory at the
top of the heap above its trim threshold, so in a loop each call pays its page faults again. Both
thresholds adapt upwards as arrays are freed, but only to the largest array seen (here 8 MB,
trimming above 16 MB). Measured on 2026-12-01 (2 cores, Intel Xeon, glibc 2.36), that call
timed alone (``bench/bench_backward.py --only 'evsnn float32'``): 36.0 ms with glibc's defaults,
25.2 ms with the thresholds below (``bench/RESULTS_backward.md``).

:func:`keep_freed_memory` runs when evsnn is imported and sets the ``mmap`` threshold to 32 MiB
(the ceiling of glibc's own adaptation on 64-bit systems, mallopt(3)) and the trim threshold to
64 MiB: arrays up to 32 MiB come from the heap, and up to 64 MiB of freed memory stay there. It
changes nothing when ``EVSNN_MALLOC=off``, when the C library is not glibc, or when any of
glibc's own malloc variables is set (``MALLOC_TRIM_THRESHOLD_``, ``GLIBC_TUNABLES``, …): dask's
nanny sets ``MALLOC_TRIM_THRESHOLD_`` in its workers so that freed memory is returned and its
memory monitor sees it, and that choice is kept.
"""

from __future__ import annotations

import ctypes
import os
import platform

ENV = "EVSNN_MALLOC"
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 64 * 2**20
# mallopt's parameter numbers (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
# glibc's own settings; if the user (or dask) set one, the allocator is theirs to configure
GLIBC_VARIABLES = (
    "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
    "MALLOC_ARENA_MAX", "GLIBC_TUNABLES",
)

_applied = False


def keep_freed_memory() -> bool:
    """Set glibc's thresholds (see the module docstring); return whether they were set."""
    global _applied
    raw = os.environ.get(ENV, "on")
    if raw.strip().lower() not in ("on", "off"):
        raise ValueError(
            f"{ENV}={raw!r} is not a choice: set it to 'on' (the default: glibc keeps freed "
            "arrays for reuse) or 'off' (leave glibc's malloc as it is)"
        )
    _applied = False
    if raw.strip().lower() == "off" or any(v in os.environ for v in GLIBC_VARIABLES):
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success
    _applied = (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
    return _applied


def malloc_configured() -> bool:
    """Whether importing evsnn set glibc's thresholds."""
    return _applied
