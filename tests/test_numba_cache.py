"""Stale numba caches are dropped when any kernel package source changes (evsnn._numba)."""

import os

import numpy as np
import pytest

from evsnn._numba import drop_stale_cache


def _pkg(tmp_path):
    root = tmp_path / "pkg"
    (root / "sub" / "__pycache__").mkdir(parents=True)
    (root / "a.py").write_text("x = 1\n")
    (root / "sub" / "b.py").write_text("y = 2\n")
    return root


def _cached(root):
    for name in ("k.b-1.py311.nbi", "k.b-1.py311.1.nbc"):
        (root / "sub" / "__pycache__" / name).write_bytes(b"compiled")


def test_cache_survives_unchanged_sources_and_is_dropped_after_a_change(tmp_path):
    root = _pkg(tmp_path)
    _cached(root)
    assert drop_stale_cache([root]) == 2  # no stamp yet: unknown provenance, dropped
    _cached(root)
    assert drop_stale_cache([root]) == 0  # sources unchanged: the cache is kept
    assert len(list(root.rglob("*.nb?"))) == 2
    # a change in *another* module than the kernel's (the case numba's own check misses)
    (root / "a.py").write_text("x = 10\n")
    assert drop_stale_cache([root]) == 2
    assert not list(root.rglob("*.nb?"))


def test_mtime_change_alone_counts_as_a_change(tmp_path):
    root = _pkg(tmp_path)
    drop_stale_cache([root])
    _cached(root)
    st = os.stat(root / "sub" / "b.py")
    os.utime(root / "sub" / "b.py", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert drop_stale_cache([root]) == 2


# --------------------------------------------------------------------------- run_split
def test_run_split_cuts_the_listed_arrays_and_matches_one_call():
    import numba

    from evsnn._numba import njit, run_split

    @njit
    def double_plus_first(x, offset, out, spare):
        for i in range(x.shape[0]):
            for j in range(x.shape[1]):
                out[i, j] = 2 * x[i, j] + offset[0]
        if spare.shape[0] > 0:
            spare[0] = -1.0

    x = np.arange(35.0).reshape(7, 5)
    offset = np.arange(1.0, 8.0)  # length 7 = n but not listed: passed whole (offset[0] = 1)
    placeholder = np.zeros(0)  # listed, but not of length n: passed whole
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            out = np.full((7, 5), np.nan)  # rows: axis 0
            run_split(double_plus_first, 7, (0, 2, 3), x, offset, out, placeholder)
            np.testing.assert_array_equal(out, 2 * x + 1)
            out_t = np.full((5, 7), np.nan)  # columns: axis 1
            run_split(double_plus_first, 7, (0, 2, 3), x.T, offset, out_t, placeholder, axis=1)
            np.testing.assert_array_equal(out_t, 2 * x.T + 1)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def test_run_range_covers_the_range_once_with_whole_arrays():
    import numba

    from evsnn._numba import njit, run_range

    @njit
    def mark_middle_axis(x, out, lo, hi):
        for t in range(x.shape[0]):
            for b in range(lo, hi):
                out[t, b] += x[t, b] + 1.0  # += : a piece run twice would show

    x = np.arange(21.0).reshape(3, 7)
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            out = np.zeros((3, 7))
            run_range(mark_middle_axis, 7, x, out)
            np.testing.assert_array_equal(out, x + 1.0)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def test_run_split_raises_what_a_piece_raises():
    from evsnn._numba import run_split

    def failing(x):
        if x.shape[0] < 6:
            raise ValueError("piece too small")

    with pytest.raises(ValueError, match="piece too small"):
        run_split(failing, 6, (0,), np.zeros(6))


# --------------------------------------------------------------------------- error model
def test_kernels_use_numpys_error_model_so_divisions_vectorise():
    # with Python's error model every division checks for zero and raises, which keeps LLVM
    # from vectorising loops such as the sigmoid surrogate's 1 / (1 + e) in the BPTT kernel
    import re

    import numba

    from evsnn import _numba
    from evsnn.grad.backward import _bptt_layer_kernel

    assert _numba.ERROR_MODEL == "numpy"
    fresh = numba.njit(error_model=_numba.ERROR_MODEL, fastmath=_numba.FASTMATH)(
        _bptt_layer_kernel.py_func)
    dt = np.float32
    z = [np.zeros((3, 2, 16), dt) for _ in range(4)]
    fresh(z[0], z[1], z[2], np.ones(3, dt), dt(1), dt(0), True, True, False, dt(0), 0, dt(5),
          dt(1), False, False, z[3], 0, 2)
    ir = next(iter(fresh.inspect_llvm().values()))
    # a vector division: the surrogate's 1 / (1 + e) was vectorised
    assert re.search(r"fdiv <\d+ x float>", ir), "the BPTT recursion was not vectorised"
