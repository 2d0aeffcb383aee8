"""The ``evsnn`` command."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

__all__ = ["main"]


class UsageError(Exception):
    """A bad option value: reported as one line, exit code 2."""


def _demo(args) -> int:
    from evsnn import decoders, encoders
    from evsnn.clock import Network, simulate
    from evsnn.conventions import get_convention
    from evsnn.data import load_digits
    from evsnn.params import LIF

    conv = get_convention(args.convention)
    test = load_digits("test")
    x = test.x[: args.samples]
    net = Network.mlp([64, 100, 10], LIF(lam=0.9, theta=1.0, reset="hard"), rng=args.seed, scale=3.0)
    print(f"evsnn demo: {len(x)} embedded digits, 64-100-10 λ-LIF (random weights, seed "
          f"{args.seed}), T = {args.T}, convention {conv.name}")
    print(f"{'encoder':<14}{'input spikes':>14}{'hidden spikes':>15}{'output spikes':>15}{'ms':>8}")
    for name in ("current", "poisson", "ratesyn_start", "ratesyn_end", "ttfs", "rsc_fixed"):
        seq = encoders.encode(x, name, args.T, convention=conv, rng=args.seed, sigma=0.25)
        t0 = time.perf_counter()
        res = simulate(net, seq, convention=conv, record=True)
        ms = 1e3 * (time.perf_counter() - t0)
        n_in = int(np.count_nonzero(seq)) if name not in ("current", "rsc_fixed") else 0
        hidden = int(res.layers[0].spikes.sum())
        out = int(res.layers[1].spikes.sum())
        acc = float(np.mean(decoders.predict(decoders.rate(res.output)) == test.y[: len(x)]))
        print(f"{name:<14}{n_in:>14}{hidden:>15}{out:>15}{ms:>8.1f}   (untrained accuracy {acc:.2f})")
    return 0


def _validate(args) -> int:
    # evsnn never imports validation at module level (layering); the CLI is the top of the stack
    from validation.claims import run_checks
    from validation.report import Report, verdict_table

    verdicts = run_checks(args.select, seed=args.seed, progress=True)
    report = Report("evsnn validate: paper claims", seed=args.seed,
                    config={"select": args.select, "seed": args.seed})
    verdict_table(report, verdicts)
    out = report.write(args.out, overwrite=args.overwrite)
    counts = {s: sum(v.status == s for v in verdicts) for s in ("violated", "holds", "not-applicable")}
    for v in verdicts:
        print(f"{v.status:<15}{v.check_id}")
    print(f"{counts['holds']} hold, {counts['violated']} violated, "
          f"{counts['not-applicable']} not applicable; report in {out}")
    return 0


def _build_parser():
    p = argparse.ArgumentParser(prog="evsnn", description="Reference SNN robustness simulator")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run the main job on the embedded digits")
    d.add_argument("--samples", type=int, default=450)
    d.add_argument("--T", type=int, default=10)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--convention", default="DEFAULT")
    d.set_defaults(func=_demo)
    v = sub.add_parser("validate", help="check every paper claim numerically and write a report")
    v.add_argument("--out", default="runs/validate", help="run folder to write (default runs/validate)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--select", default=None, help="only checks whose id starts with this prefix")
    v.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    v.set_defaults(func=_validate)
    return p


def main(argv=None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ValueError, TypeError, FileExistsError) as exc:
        print(f"evsnn {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
