"""``import evsnn`` tells glibc's malloc to serve arrays up to 32 MiB from its heap and to keep
up to 64 MiB of freed memory there (evsnn/_malloc.py), unless told not to."""

import os
import platform
import subprocess
import sys

import pytest

from evsnn._malloc import GLIBC_VARIABLES

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                                reason="the setting is glibc's")

# In a fresh interpreter: whether evsnn set the thresholds, then glibc's own account
# (mallinfo2) of a 20 MiB array: bytes in mmapped chunks while it lives, and free bytes kept in
# the heap after it is freed.
PROBE = """
import ctypes
import evsnn
import numpy as np

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
a = np.ones(20 * 2**20 // 8)
mmapped = mallinfo2().hblkhd
del a
kept = mallinfo2().fordblks
print(evsnn.malloc_configured(), mmapped, kept)
"""


def _probe(**env_vars):
    env = {k: v for k, v in os.environ.items() if k not in GLIBC_VARIABLES + ("EVSNN_MALLOC",)}
    env.update(env_vars)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] == "True", int(out[1]), int(out[2])


MiB = 2**20


def test_a_freed_array_stays_in_the_heap_for_the_next_call():
    configured, mmapped, kept = _probe()
    assert configured
    assert mmapped < 20 * MiB  # served from the heap, not from fresh mmapped pages
    assert kept >= 20 * MiB  # and still there after it was freed


def test_off_and_a_users_glibc_setting_leave_malloc_alone():
    # glibc's default: a 20 MiB array is mmapped and handed back when freed
    configured, mmapped, kept = _probe(EVSNN_MALLOC="off")
    assert not configured
    assert mmapped >= 20 * MiB and kept < 20 * MiB
    # dask's nanny sets MALLOC_TRIM_THRESHOLD_ in its workers: their allocator stays dask's
    assert not _probe(MALLOC_TRIM_THRESHOLD_="65536")[0]
    assert not _probe(GLIBC_TUNABLES="glibc.malloc.check=0")[0]


def test_a_bad_evsnn_malloc_is_refused_with_the_fix():
    env = {**os.environ, "EVSNN_MALLOC": "yes"}
    run = subprocess.run([sys.executable, "-c", "import evsnn"], env=env, capture_output=True,
                         text=True)
    assert run.returncode != 0
    assert "EVSNN_MALLOC='yes' is not a choice" in run.stderr and "'off'" in run.stderr

