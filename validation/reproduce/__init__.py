"""Small-scale reproductions of the papers' figures and tables on the embedded digits.

Each reproduction is a function ``reproduce_<name>(*, size="full", seed=0, progress=False)``
returning a :class:`validation.report.Report` (not yet written) with its table(s), figure(s), the
paper's qualitative claims quoted beside the measured numbers, and a verdict per claim computed
from those numbers. ``size="full"`` trains 64-100-10 networks on the whole digits split (at most
about two minutes each on two cores); ``size="small"`` runs in seconds (for tests). Models are
seeded and cached per process, so :func:`run_all` shares them between reproductions.

Examples
--------
>>> sorted(REPRODUCTIONS)[:2]
['ding2025_fig2d', 'ding2025_fig3b']
"""

from __future__ import annotations

from pathlib import Path

from validation.reproduce.hart import reproduce_hart_tables23
from validation.reproduce.rsc import reproduce_rsc_fig3
from validation.reproduce.stable import reproduce_stable_table1
from validation.reproduce.ding2025 import (
    reproduce_ding2025_fig2d,
    reproduce_ding2025_fig3b,
    reproduce_ding2025_fig4c,
    reproduce_ding2025_fig5f,
)

__all__ = ["REPRODUCTIONS", "run_all", "reproduce_ding2025_fig2d", "reproduce_ding2025_fig3b",
           "reproduce_ding2025_fig4c", "reproduce_ding2025_fig5f", "reproduce_hart_tables23",
           "reproduce_rsc_fig3", "reproduce_stable_table1"]

REPRODUCTIONS = {
    "ding2025_fig2d": reproduce_ding2025_fig2d,
    "ding2025_fig3b": reproduce_ding2025_fig3b,
    "ding2025_fig4c": reproduce_ding2025_fig4c,
    "ding2025_fig5f": reproduce_ding2025_fig5f,
    "hart_tables23": reproduce_hart_tables23,
    "rsc_fig3": reproduce_rsc_fig3,
    "stable_table1": reproduce_stable_table1,
}


def run_all(folder=None, *, names=None, size="full", seed=0, progress=False, overwrite=False):
    """Run reproductions (all, or ``names``) and return ``{name: Report}``; with ``folder``,
    write each report to ``folder/<name>`` (atomically, see :meth:`Report.write`).

    Raises
    ------
    ValueError
        An unknown name in ``names`` or an unknown ``size``.
    """
    from validation.reproduce._common import size_iv

    size_iv(size)
    names = list(REPRODUCTIONS) if names is None else list(names)
    unknown = [n for n in names if n not in REPRODUCTIONS]
    if unknown:
        raise ValueError(f"unknown reproduction(s) {unknown}; use names from {list(REPRODUCTIONS)}")
    out = {}
    for name in names:
        rep = REPRODUCTIONS[name](size=size, seed=seed, progress=progress)
        if folder is not None:
            rep.write(Path(folder) / name, overwrite=overwrite)
        out[name] = rep
    return out
