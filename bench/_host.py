"""The host's BLAS as every benchmark reports it, and the environment ``python -m bench`` gives
the scripts.

Some hosts of the development workplace set ``OPENBLAS_CORETYPE`` (with ``OPENBLAS_L2_SIZE``) so
that old OpenBLAS builds pick kernels that work on their processor. NumPy's current OpenBLAS then
runs older kernels than it would choose: on the AMD EPYC (Zen 5, AVX-512) of 2026-12-04,
``Haswell`` (AVX2) instead of ``SkylakeX``, and a [2560 × 500] · [500 × 784] float32 product took
8.8 ms instead of 4.5 ms (bench/RESULTS.md). Tests and CI keep the variables; the benchmarks time
the kernel a user's NumPy picks, and print which one ran.
"""

from __future__ import annotations

import os

#: the variables that pin OpenBLAS to a kernel of the environment's choosing; removed together
FORCED_KERNEL_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def forced_kernel_settings(environ=None) -> dict[str, str]:
    """The variables of :data:`FORCED_KERNEL_ENV` set in ``environ`` (default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in FORCED_KERNEL_ENV if k in environ}


def bench_environ(environ=None) -> dict[str, str]:
    """A copy of ``environ`` without :data:`FORCED_KERNEL_ENV`: OpenBLAS chooses its kernel."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k not in FORCED_KERNEL_ENV}


def blas_line() -> str:
    """One line naming the OpenBLAS kernel this process runs and who chose it."""
    from evsnn import _blas

    forced = forced_kernel_settings()
    line = f"OpenBLAS kernel: {_blas.kernel()}"
    if forced:
        settings = ", ".join(f"{k}={v}" for k, v in forced.items())
        return (f"{line}, forced by {settings} (python -m bench removes them, so that OpenBLAS "
                "picks the kernel for this processor)")
    return f"{line}, OpenBLAS's own choice for this processor"
