"""House rules enforced by test: numba options in one place, and a twin for every kernel."""

import ast
import importlib
import pkgutil
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("evsnn", "certify", "validation")
TESTS = ROOT / "tests"


def _source_files():
    for pkg in PACKAGES:
        yield from sorted((ROOT / pkg).rglob("*.py"))


def test_numba_options_only_in_evsnn_numba():
    offenders = []
    for path in _source_files():
        if path == ROOT / "evsnn" / "_numba.py":
            continue
        text = path.read_text()
        for name in ("fastmath", "cache"):
            # a keyword argument (``njit(cache=True)``, ``**dict(fastmath=...)``), not a variable
            if re.search(rf"[(,]\s*{name}\s*=(?!=)", text):
                offenders.append(f"{path.relative_to(ROOT)}: {name}=")
        if re.search(r"^\s*(from numba import|import numba)", text, re.M) and re.search(
            r"numba\.(njit|jit)|\bfrom numba import .*\b(njit|jit)\b", text
        ):
            offenders.append(f"{path.relative_to(ROOT)}: compiles with numba directly")
    assert not offenders, "numba options belong in evsnn/_numba.py only: " + ", ".join(offenders)


def test_numba_module_never_enables_fastmath():
    from evsnn import _numba

    assert _numba.FASTMATH is False


def _kernels():
    """Every function compiled through evsnn._numba.njit, by module."""
    found = []
    for pkg_name in PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for info in pkgutil.walk_packages(pkg.__path__, pkg_name + "."):
            try:
                mod = importlib.import_module(info.name)
            except ImportError as exc:  # optional dependencies (e.g. torch) may be absent
                if "evsnn" in str(exc) or "certify" in str(exc) or "validation" in str(exc):
                    raise
                continue
            for name, obj in vars(mod).items():
                if (getattr(obj, "__evsnn_kernel__", False)
                        and getattr(obj, "__module__", None) == mod.__name__):
                    found.append((mod.__name__, name))
    return found


def _reference_functions():
    names = set()
    for path in (TESTS / "reference").glob("*.py"):
        tree = ast.parse(path.read_text())
        names |= {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    return names


def test_every_kernel_has_a_twin_and_a_test():
    kernels = _kernels()
    assert kernels, "no numba kernels found; the scan is broken"
    twins = _reference_functions()
    test_text = "\n".join(
        p.read_text() for p in TESTS.glob("test_*.py") if p.name != Path(__file__).name
    )
    missing_twin = [f"{m}.{n}" for m, n in kernels if n not in twins]
    untested = [f"{m}.{n}" for m, n in kernels if not re.search(rf"\b{re.escape(n)}\b", test_text)]
    assert not missing_twin, f"kernels without a twin in tests/reference/: {missing_twin}"
    assert not untested, f"kernels no test uses: {untested}"


def test_kernels_are_private_and_named_kernel():
    bad = [f"{m}.{n}" for m, n in _kernels() if not (n.startswith("_") and n.endswith("_kernel"))]
    assert not bad, f"numba kernels must be private and named _<name>_kernel: {bad}"


def test_kernels_pass_kernels_no_int_or_bool_literals():
    """Inside a kernel, a call of another kernel with a literal int or bool argument (``0``,
    ``False``) compiles a version of the callee for that literal value (numba types it
    ``Literal[int](0)``), beside the one for int64 or bool variables: more compile time for the
    same machine code. Pass ``np.int64(0)`` / ``np.bool_(False)`` or a variable holding one."""
    names = {n for _, n in _kernels()}
    hits = []
    for path in _source_files():
        for fn in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(fn, ast.FunctionDef) and fn.name in names):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) in names:
                    lits = [ast.unparse(a) for a in node.args
                            if isinstance(a, ast.Constant) and isinstance(a.value, (bool, int))]
                    if lits:
                        hits.append(f"{path.relative_to(ROOT)}:{node.lineno} {fn.name} calls "
                                    f"{node.func.id} with {lits}")
    assert not hits, "literal arguments between kernels: " + "; ".join(hits)
