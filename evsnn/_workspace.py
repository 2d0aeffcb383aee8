"""Arrays reused by a computation that runs again and again on the same shapes and throws its
intermediate arrays away (an attack's gradient calls).

A fresh array of several MiB costs the operating system's page faults and zeroing on first
write, and glibc's allocator returns such arrays to the system when they are freed; one
gradient call of ``bench/bench_attack.py`` (784-500-10, T = 10, B = 256) allocated ~40 MiB of
records and gradients, and that cost 3-5 ms of its 19 ms (bench/RESULTS_attack.md). A
:class:`Workspace` hands out the same arrays again instead. An array it hands out is
overwritten by the next request under the same key, so only code that never lets one escape
may use it; each thread has its own (:func:`thread_workspace`).
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["Workspace", "thread_workspace"]


class Workspace:
    """Uninitialised arrays (like ``numpy.empty``) kept under keys and handed out again while
    the requested shape and dtype stay the same."""

    def __init__(self):
        self._arrays = {}

    def empty(self, key, shape, dtype):
        dtype = np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
        a = self._arrays.get(key)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = np.empty(shape, dtype=dtype)
            self._arrays[key] = a
        return a


_LOCAL = threading.local()


def thread_workspace(name):
    """The calling thread's workspace called ``name`` (made on first use)."""
    spaces = getattr(_LOCAL, "spaces", None)
    if spaces is None:
        spaces = _LOCAL.spaces = {}
    if name not in spaces:
        spaces[name] = Workspace()
    return spaces[name]
