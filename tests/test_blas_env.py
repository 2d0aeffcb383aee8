"""How evsnn sets up NumPy's OpenBLAS at import: the idle-thread wait (``import evsnn`` before
NumPy) and a fixed thread count (evsnn/_blas.py)."""

import os
import platform
import subprocess
import sys

import pytest

import evsnn

# In a fresh interpreter: the variable as seen after the imports, and the value the loaded
# OpenBLAS read at start-up (its exported ``openblas_thread_timeout``), "n/a" where the library
# or the symbol is not found (another BLAS build, or no /proc/self/maps).
PROBE = """
import ctypes, os
{imports}
import numpy
lib = "n/a"
try:
    maps = open("/proc/self/maps").read().splitlines()
except OSError:  # not Linux: the library is not looked for
    maps = []
for line in maps:
    if "openblas" in line and ".so" in line:
        try:
            f = getattr(ctypes.CDLL(line.split()[-1]), "openblas_thread_timeout")
            f.restype = ctypes.c_int
            lib = f()
            break
        except (OSError, AttributeError):
            pass
print(os.environ.get("OPENBLAS_THREAD_TIMEOUT", "unset"), lib)
"""


def _probe(imports, env_value=None):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if env_value is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = env_value
    out = subprocess.run([sys.executable, "-c", PROBE.format(imports=imports)], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0], out[1]


def test_importing_evsnn_first_sets_the_timeout_that_openblas_reads():
    var, lib = _probe("import evsnn")
    assert var == evsnn.BLAS_THREAD_TIMEOUT
    if lib != "n/a":
        assert int(lib) == int(evsnn.BLAS_THREAD_TIMEOUT)


def test_a_users_value_is_kept():
    var, lib = _probe("import evsnn", env_value="9")
    assert var == "9"
    if lib != "n/a":
        assert int(lib) == 9


def test_nothing_is_set_once_numpy_is_loaded():
    # OpenBLAS has read its environment already; evsnn leaves it alone
    var, lib = _probe("import numpy\nimport evsnn")
    assert var == "unset"
    if lib != "n/a":
        assert int(lib) == 0


# ``import evsnn`` fixes NumPy's OpenBLAS at EVSNN_BLAS_THREADS threads (evsnn/_blas.py). The
# probe prints the count evsnn reports, whether an OpenBLAS is loaded at all, and a digest of
# products whose inner dimension (512) is above the size where OpenBLAS's rounding has been seen
# to change with its thread count: the input gradient of a 300-512-10 network's backward
# (dL/dI · W), in float32 and float64.
PRODUCT_PROBE = """
import hashlib
import evsnn
import numpy as np
from evsnn.clock import Network, simulate
from evsnn.grad import backward
from evsnn.params import LIF
rng = np.random.default_rng(0)
net = Network.mlp([300, 512, 10], LIF(lam=0.9, theta=1.0), rng=1, scale=3.0)
digest = hashlib.sha256()
for dtype in (np.float32, np.float64):
    x = (rng.random((4, 16, 300)) < 0.3).astype(dtype)
    res = simulate(net, x, record=True, dtype=dtype)
    g = backward(net, x, res, rng.standard_normal((4, 16, 10)).astype(dtype))
    assert res.output.sum() > 0 and np.abs(g.input).max() > 0
    digest.update(g.input.tobytes())
print(evsnn.blas_threads(), bool(evsnn._blas._openblas_paths()), digest.hexdigest())
"""


def _product_probe(**env_vars):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "EVSNN_BLAS_THREADS")}
    env.update(env_vars)
    out = subprocess.run([sys.executable, "-c", PRODUCT_PROBE], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    if out[1] != "True":
        pytest.skip("no OpenBLAS is loaded (NumPy uses another BLAS): nothing to pin")
    return (None if out[0] == "None" else int(out[0])), out[2]


def test_products_round_alike_whatever_openblas_was_started_with():
    # dask's nanny starts workers with OPENBLAS_NUM_THREADS=1; a shell may say anything else
    runs = [_product_probe(OPENBLAS_NUM_THREADS=n) for n in ("1", "3")]
    assert [threads for threads, _ in runs] == [2, 2]
    assert runs[0][1] == runs[1][1]


def test_evsnn_blas_threads_sets_the_count_or_leaves_openblas_alone():
    assert _product_probe(EVSNN_BLAS_THREADS="1")[0] == 1
    assert _product_probe(EVSNN_BLAS_THREADS="3")[0] == 3
    assert _product_probe(EVSNN_BLAS_THREADS="off")[0] is None


@pytest.mark.parametrize("value", ["0", "-2", "two", ""])
def test_a_bad_evsnn_blas_threads_is_refused_with_the_fix(value):
    env = {**os.environ, "EVSNN_BLAS_THREADS": value}
    run = subprocess.run([sys.executable, "-c", "import evsnn"], env=env, capture_output=True,
                         text=True)
    assert run.returncode != 0
    assert f"EVSNN_BLAS_THREADS={value!r} is not a thread count" in run.stderr
    assert "'off'" in run.stderr


def test_scipys_openblas_gets_the_same_count_once_l2gain_loads_it():
    # certify.l2gain's svds runs ARPACK on SciPy's own OpenBLAS, loaded after `import evsnn`
    probe = ("import evsnn, evsnn._blas as b\nimport certify.l2gain\n"
             "print(*sorted(set(b.thread_counts().values())), len(b.thread_counts()))")
    env = {**{k: v for k, v in os.environ.items() if k != "EVSNN_BLAS_THREADS"},
           "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    if out[-1] == "0":
        pytest.skip("no OpenBLAS is loaded (NumPy and SciPy use another BLAS): nothing to pin")
    assert out[:-1] == ["2"]


def test_scipys_openblas_is_pinned_also_when_l2gain_is_imported_in_another_thread():
    # a dask worker thread may be the first to import certify.l2gain; the pin must act from
    # any thread (threadpoolctl >= 3.8 ignores limits set outside its "controlling thread",
    # the reason evsnn/_blas.py calls OpenBLAS itself)
    probe = ("import threading, evsnn, evsnn._blas as b\n"
             "t = threading.Thread(target=lambda: __import__('certify.l2gain'))\n"
             "t.start(); t.join()\n"
             "print(*sorted(set(b.thread_counts().values())), len(b.thread_counts()))")
    env = {**{k: v for k, v in os.environ.items() if k != "EVSNN_BLAS_THREADS"},
           "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    if out[-1] in ("0", "1"):
        pytest.skip("SciPy has no OpenBLAS of its own here: nothing loaded in the thread to pin")
    assert out[:-1] == ["2"]


class _FakeOpenBLAS:
    """Stands in for a loaded OpenBLAS (plain symbol names) with a given threading model."""

    def __init__(self, parallel):
        self.threads = 1
        self.openblas_set_num_threads = lambda n: setattr(self, "threads", n)
        self.openblas_get_num_threads = lambda: self.threads
        self.openblas_get_parallel = lambda: parallel


@pytest.mark.parametrize("parallel, pinned", [(0, 2), (1, 2), (2, None)])
def test_an_openmp_openblas_is_not_claimed_as_pinned(monkeypatch, parallel, pinned):
    # OpenMP builds take their count from OMP_NUM_THREADS at every call, so setting it would
    # not hold; sequential (0) and pthreads (1) builds keep what they are given
    from evsnn import _blas

    lib = _FakeOpenBLAS(parallel)
    monkeypatch.setattr(_blas, "_openblas_paths", lambda: ["libopenblas.so"])
    monkeypatch.setattr(_blas.ctypes, "CDLL", lambda path: lib)
    before = (_blas._pinned, _blas._requested)
    try:
        assert _blas.pin_threads(2) == pinned
        assert lib.threads == (2 if pinned else 1)
    finally:
        _blas._pinned, _blas._requested = before


def test_library_paths_with_spaces_are_read_whole_from_the_maps():
    from evsnn._blas import _openblas_in_maps

    lines = [
        "7f00-7f10 r--p 00000000 08:01 123  /home/a user/env/numpy.libs/libscipy_openblas64_.so\n",
        "7f10-7f20 r-xp 00001000 08:01 124                /usr/lib/libm.so.6\n",
        "7f20-7f30 rw-p 00000000 00:00 0 \n",
        "7f30-7f40 rw-p 00000000 00:00 0\n",
    ]
    assert _openblas_in_maps(lines) == ["/home/a user/env/numpy.libs/libscipy_openblas64_.so"]


def _kernel_probe(environ):
    probe = ("import sys; sys.path.insert(0, '.')\nimport evsnn, evsnn._blas as b\n"
             "from bench._host import blas_line\nprint(b.blas_threads()); print(b.kernel()); "
             "print(blas_line())")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run([sys.executable, "-c", probe], env=environ, capture_output=True,
                          text=True, check=True, cwd=root).stdout.splitlines()


def test_the_kernel_openblas_runs_is_read_and_the_benchmarks_unforce_it():
    from bench._host import FORCED_KERNEL_ENV, bench_environ

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("OPENBLAS_CORETYPE=Nehalem names an x86-64 kernel")
    forced = {**os.environ, "OPENBLAS_CORETYPE": "Nehalem", "OPENBLAS_L2_SIZE": "512"}
    threads, kernel, line = _kernel_probe(forced)
    if threads == "None":
        pytest.skip("no OpenBLAS is loaded (NumPy uses another BLAS)")
    # every x86-64 processor runs Nehalem's kernels, so the forced name is the one reported
    assert kernel.lower() == "nehalem"
    assert "forced by OPENBLAS_CORETYPE=Nehalem, OPENBLAS_L2_SIZE=512" in line
    cleaned = bench_environ(forced)
    assert not set(FORCED_KERNEL_ENV) & set(cleaned)
    assert cleaned["PATH"] == forced["PATH"]
    _, kernel, line = _kernel_probe(cleaned)
    assert kernel and kernel != "None"
    assert line == f"OpenBLAS kernel: {kernel}, OpenBLAS's own choice for this processor"
