"""Run every ``bench/bench_*.py`` script in turn: ``python -m bench [--quick]``.

Each script runs in its own interpreter (so one benchmark's thread settings and imports cannot
affect the next), without the environment's forced OpenBLAS kernel (:mod:`bench._host`);
``--quick`` is passed through. The exit status is non-zero if any script fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench._host import bench_environ, forced_kernel_settings


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    unknown = [a for a in argv if a != "--quick"]
    if unknown:
        print(f"usage: python -m bench [--quick]; unknown arguments {unknown}", file=sys.stderr)
        return 2
    here = Path(__file__).resolve().parent
    scripts = sorted(here.glob("bench_*.py"))
    if not scripts:
        print(f"no bench_*.py scripts in {here}", file=sys.stderr)
        return 1
    forced = forced_kernel_settings()
    if forced:
        print("removed for the benchmarks (OpenBLAS picks its kernel): "
              + ", ".join(f"{k}={v}" for k, v in forced.items()), flush=True)
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} {' '.join(argv)}".rstrip(), flush=True)
        rc = subprocess.call([sys.executable, str(script), *argv], cwd=here.parent,
                             env=bench_environ())
        if rc != 0:
            failed.append(f"{script.name} (exit {rc})")
    if failed:
        print("\nfailed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
