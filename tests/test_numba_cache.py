"""Stale numba caches are dropped when any kernel package source changes (evsnn._numba)."""

import os

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
