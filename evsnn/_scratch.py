"""Per-thread work arrays reused from call to call.

A fresh array of several MiB costs the operating system's page faults and zeroing on its first
write, and glibc hands such arrays back to the system when they are freed (or cannot reuse the
freed blocks while a run keeps its recorded arrays). Code that rewrites the same large
intermediate arrays again and again -- the chunked im2col buffers and products of the
convolutions, an attack's gradient calls (one call of ``bench/bench_attack.py`` allocated
about 37 MB; bench/RESULTS_attack.md), CERTIFY's batches -- takes them from :func:`scratch`
instead. An array handed out under a name is overwritten by the next request under that name
in the same thread, so only code that never lets it escape may use it.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["scratch", "owns"]

_LOCAL = threading.local()


def scratch(name, shape, dtype):
    """An uninitialised C-contiguous array of ``shape`` and ``dtype``, kept for this thread
    under ``name`` (any hashable; use a tuple naming the owner) and reused by the next call
    (grown when too small). The caller must be done with it before the next call with the same
    name."""
    bufs = _LOCAL.__dict__.setdefault("bufs", {})
    n = int(np.prod(shape))
    key = (name, np.dtype(dtype).str)
    buf = bufs.get(key)
    if buf is None or buf.size < n:
        buf = bufs[key] = np.empty(n, dtype=dtype)
    return buf[:n].reshape(shape)


def owns(a):
    """Whether ``a`` may share memory with one of this thread's work arrays (a result that
    could be one must be copied before it is handed to the caller)."""
    bufs = _LOCAL.__dict__.get("bufs", {})
    return any(np.may_share_memory(a, buf) for buf in bufs.values())
