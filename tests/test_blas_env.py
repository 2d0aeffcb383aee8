"""``import evsnn`` before NumPy shortens OpenBLAS's idle-thread wait (evsnn/__init__.py)."""

import os
import subprocess
import sys

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
