"""One report writer for Markdown + PNG + JSON, used by ``validate``, ``crossval``, the
reproductions and the demo.

A :class:`Report` collects sections in memory and :meth:`Report.write` puts them on disk
atomically: everything goes to a temporary folder beside the target, which is renamed into place
only when complete — a half-written run folder never appears under the target name. Every
report records the seeds, the configuration and the package versions of the run that wrote it.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

__all__ = ["Report", "package_versions", "verdict_table"]


def package_versions():
    """Versions of Python and the packages a result may depend on (absent ones omitted), and
    the git commit of evsnn's source when it runs from a checkout (``+dirty`` with uncommitted
    changes): the package version alone does not say which code ran."""
    out = {"python": platform.python_version()}
    for name in ("evsnn", "numpy", "numba", "scipy", "statsmodels", "scikit-learn", "matplotlib",
                 "dask", "torch", "spikingjelly", "snntorch", "norse"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    commit = _source_commit()
    if commit is not None:
        out["evsnn commit"] = commit
    return out


def _source_commit():
    """The git commit of the checkout evsnn is imported from, with ``+dirty`` if its tracked
    files differ from it; None outside a git checkout (an installed wheel) or without git."""
    import subprocess

    import evsnn

    root = Path(evsnn.__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _fmt(value):
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


class Report:
    """An in-memory report, written atomically by :meth:`write`.

    Parameters
    ----------
    title : str
    seed : int or None
        The run's root seed (recorded).
    config : dict, optional
        The exact configuration (recorded in ``config.json``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> r = Report("demo", seed=0, config={"T": 10})
    >>> r.add_table(["a", "b"], [[1, 2.5]], caption="numbers")
    >>> r.add_result("answer", 42)
    >>> out = r.write(pathlib.Path(tempfile.mkdtemp()) / "run")
    >>> sorted(p.name for p in out.iterdir())
    ['config.json', 'report.md', 'results.json', 'timings.json']

    ``results.json`` holds only what the seed and the configuration determine, so two runs with
    the same seed write it byte for byte alike; wall and CPU times go to ``timings.json``
    (:meth:`add_timing`).
    """

    def __init__(self, title, *, seed=None, config=None):
        self.title = title
        self.seed = seed
        self.config = dict(config or {})
        self._blocks = []
        self._figures = {}
        self._timings = {}
        self._results = {}
        self._artifacts = []
        self._started = time.time()

    def add_text(self, markdown: str):
        self._blocks.append(markdown.rstrip() + "\n")

    def add_heading(self, text: str, level: int = 2):
        self._blocks.append("#" * level + " " + text + "\n")

    def add_table(self, headers, rows, *, caption=None):
        lines = []
        if caption:
            lines.append(f"*{caption}*\n")
        lines.append("| " + " | ".join(str(h) for h in headers) + " |")
        lines.append("|" + "|".join("---" for _ in headers) + "|")
        for row in rows:
            if len(row) != len(headers):
                raise ValueError(
                    f"a table row has {len(row)} cells but there are {len(headers)} headers"
                )
            lines.append("| " + " | ".join(_fmt(c).replace("|", "\\|") for c in row) + " |")
        self._blocks.append("\n".join(lines) + "\n")

    def add_figure(self, fig, name: str, *, caption: str = ""):
        """A matplotlib figure, saved as ``name.png`` and linked from the Markdown."""
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(
                f"name={name!r} must be letters, digits, '-' or '_' (it becomes a file name)"
            )
        if name in self._figures:
            raise ValueError(f"a figure named {name!r} was already added")
        self._figures[name] = fig
        self._blocks.append(f"![{caption or name}]({name}.png)\n\n*{caption}*\n" if caption
                            else f"![{name}]({name}.png)\n")

    def add_image(self, name: str, write, *, caption: str = ""):
        """A PNG written by ``write(path)`` (e.g. a result's own ``plot`` method) when the report
        is written, linked from the Markdown like :meth:`add_figure`."""
        if not callable(write):
            raise TypeError(f"write must be a callable write(path), got {type(write).__name__}")
        self.add_figure(_PNGWriter(write), name, caption=caption)

    def add_result(self, key: str, value):
        """A machine-readable result (goes to ``results.json``)."""
        from validation.claims.base import _jsonable

        self._results[key] = _jsonable(value)

    def add_timing(self, key: str, seconds):
        """A wall or CPU time of the run, a number or a dict of them (goes to ``timings.json``,
        never to ``results.json``; ``elapsed_s`` is the writer's own)."""
        from validation.claims.base import _jsonable

        if not isinstance(key, str) or not key or key == "elapsed_s":
            raise ValueError(f"key={key!r} must be a non-empty string other than 'elapsed_s' "
                             "(the run's wall time, which write records itself)")
        self._timings[key] = _jsonable(seconds)

    def add_artifact(self, write):
        """Extra files (e.g. saved models): ``write(folder)`` is called with the run's temporary
        folder during :meth:`write`, so they appear atomically with the report."""
        if not callable(write):
            raise TypeError(f"write must be a callable write(folder), got {type(write).__name__}")
        self._artifacts.append(write)

    @property
    def results(self):
        return dict(self._results)

    def markdown(self) -> str:
        head = [f"# {self.title}\n"]
        meta = {"seed": self.seed, "written": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
        head.append("Run: " + ", ".join(f"{k} {v}" for k, v in meta.items()) + ".\n")
        tail = ["## Provenance\n", "Package versions: " + ", ".join(
            f"{k} {v}" for k, v in package_versions().items()) + ".\n"]
        return "\n".join(head + self._blocks + tail)

    def write(self, folder, *, overwrite=False) -> Path:
        """Write report.md, results.json, timings.json, config.json and the PNGs into ``folder``
        atomically."""
        from validation.claims.base import json_text

        folder = check_run_folder(folder, overwrite=overwrite)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.incomplete-", dir=folder.parent))
        try:
            (tmp / "report.md").write_text(self.markdown())
            payload = {"title": self.title, "seed": self.seed, "results": self._results,
                       "versions": package_versions()}
            (tmp / "results.json").write_text(json_text(payload, indent=2, sort_keys=True))
            timings = {"elapsed_s": round(time.time() - self._started, 3), **self._timings}
            (tmp / "timings.json").write_text(json_text(timings, indent=2, sort_keys=True))
            (tmp / "config.json").write_text(json_text(
                {"config": self.config, "seed": self.seed}, indent=2, sort_keys=True, default=str))
            for name, fig in self._figures.items():
                fig.savefig(tmp / f"{name}.png", dpi=110, bbox_inches="tight")
            for write in self._artifacts:
                write(tmp)
            if folder.exists():
                # the old run moves aside until the new one is in place, and comes back if
                # that fails: an overwrite never leaves neither
                old = tmp.with_name(tmp.name.replace(".incomplete-", ".replaced-"))
                os.replace(folder, old)
                try:
                    os.replace(tmp, folder)
                except BaseException:
                    os.replace(old, folder)
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder


def check_run_folder(folder, *, overwrite=False) -> Path:
    """Raise unless :meth:`Report.write` may write ``folder``: not a file, under no file, and
    absent unless ``overwrite``, which replaces only an empty folder or a run folder (one
    holding config.json and results.json). The command calls it before the work, so that a run
    is not computed only to be refused at the end."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(
            f"{str(folder)!r} is a file, not a run folder; choose another folder (even "
            "overwrite=True does not replace a file with a run folder)"
        )
    for parent in folder.parents:
        if parent.exists() and not parent.is_dir():
            raise NotADirectoryError(
                f"{str(folder)!r} lies under {str(parent)!r}, which is a file; choose a "
                "folder whose parents are folders"
            )
    if folder.exists() and not overwrite:
        raise FileExistsError(
            f"{str(folder)!r} exists; choose another folder or pass overwrite=True (--overwrite)"
        )
    if folder.exists() and any(folder.iterdir()) and not all(
            (folder / name).is_file() for name in ("config.json", "results.json")):
        # overwrite replaces a run folder: any other folder (a thesis, a data set) was deleted
        raise FileExistsError(
            f"{str(folder)!r} is not a run folder (it has no config.json and results.json), so "
            "overwrite=True (--overwrite) does not replace it; choose another folder"
        )
    return folder


class _PNGWriter:
    """Adapts ``write(path)`` to the ``savefig`` call :meth:`Report.write` makes."""

    def __init__(self, write):
        self._write = write

    def savefig(self, path, **_):
        self._write(path)


def verdict_table(report, verdicts):
    """Add the claims verdict table (violations first, each with its scope) and each violation's
    counterexample."""
    from validation.claims.base import SCOPES, json_text

    rows = [[v.status + (f" ({v.scope})" if v.scope else ""), v.check_id, v.paper,
             v.claim[:120] + ("…" if len(v.claim) > 120 else "")] for v in verdicts]
    report.add_table(["verdict", "check", "paper", "claim"], rows,
                     caption="Paper claims checked numerically (violations first)")
    scopes = sorted({v.scope for v in verdicts if v.scope})
    if scopes:
        report.add_text("What a violation shows: " + "; ".join(
            f"*{k}*: {SCOPES[k]}" for k in scopes) + ".")
    for v in verdicts:
        if v.status == "violated":
            report.add_text(
                f"**{v.check_id}** — violated, *{v.scope}*: {SCOPES[v.scope]}. {v.detail}\n\n"
                "Counterexample: "
                f"`{json_text(v.counterexample, sort_keys=True)}`\n\nMeasured: "
                f"`{json_text(v.measured, sort_keys=True)}`"
            )
    report.add_result("claims", [{k: x for k, x in v.to_dict().items() if k != "seconds"}
                                 for v in verdicts])
    report.add_timing("claims_seconds", {v.check_id: v.seconds for v in verdicts})
