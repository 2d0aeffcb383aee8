"""The ``evsnn`` command.

Every subcommand takes its options as flags or from a TOML file (``--config run.toml``: keys are
the option names with ``-`` or ``_``, at the top level or under a table named after the
subcommand, which wins over the top level; flags given on the command line win over both).
Every run writes one run folder (``--out``, default ``runs/<command>-<UTC time>``) atomically
through :class:`validation.report.Report`: ``report.md``, PNG plots, ``results.json`` (what
the seed and options determine: byte for byte the same on a rerun), ``timings.json``,
``config.json`` (the exact options and seeds) and any saved models — a failed run leaves no
folder behind.

Errors in the options are one line on stderr naming the option, the value and what is accepted,
with exit code 2.

``evsnn`` itself imports nothing from ``certify`` or ``validation`` at module level (the package
layering of DESIGN.md); the command is the top of the stack and imports them when a subcommand
needs them.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["main", "UsageError"]

DTYPES = {"float64": np.float64, "float32": np.float32}
#: the PyTorch frameworks of validation.crossval (its BACKENDS; named here so that the parser
#: does not import validation and torch for --help)
CROSSVAL_BACKENDS = ("spikingjelly", "snntorch", "norse")


class UsageError(Exception):
    """A bad option value: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse's own errors (an unknown option, ``--T 2.5``, a missing ``--model``) as one
    line like the others, instead of the usage lines argparse prints first and its own exit."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --- shared option handling ------------------------------------------------------------------
def _common(p, *, dtype=True, convention=True):
    p.add_argument("--config", help="TOML file with option values (flags override it)")
    p.add_argument("--out", help="run folder to write (default runs/<command>-<UTC time>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--seed", type=int, default=0, help="root seed of every random draw (0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    if dtype:
        p.add_argument("--dtype", default="float64", choices=sorted(DTYPES),
                       help="floating-point type of the simulation (float64)")
    if convention:
        p.add_argument("--convention", default="DEFAULT",
                       help="convention preset of evsnn.conventions (DEFAULT)")


def _config_value(where, key, value, action):
    """A TOML value for ``action``, checked as strictly as the flag would be: a string is
    parsed like the flag's text; no float truncated to an int, no bool taken as a number."""
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise UsageError(f"{where}: {key} = {value!r} must be true or false")
        return value
    if action.type is None:
        if not isinstance(value, str):
            raise UsageError(f"{where}: {key} = {value!r} must be a string; write {key} = "
                             f"\"{value}\"")
    elif isinstance(value, bool) or not isinstance(value, (str, int, float)) or (
            action.type is int and isinstance(value, float)):
        raise UsageError(f"{where}: {key} = {value!r} is not a valid "
                         f"{getattr(action.type, '__name__', 'value')}")
    else:
        try:
            value = action.type(value)
        except (TypeError, ValueError):
            raise UsageError(
                f"{where}: {key} = {value!r} is not a valid "
                f"{getattr(action.type, '__name__', 'value')}"
            ) from None
    if action.choices is not None and value not in action.choices:
        raise UsageError(f"{where}: {key} = {value!r} is not one of {list(action.choices)}")
    return value


def _apply_config(parser, sub, argv):
    """Reparse with defaults taken from the TOML file named by --config (flags still win).

    A required option (``--model``) may come from the file: the first parse, which only
    finds the file, does not require it."""
    required = [a for s in sub.values() for a in s._actions if a.required]
    for action in required:
        action.required = False
    try:
        args = parser.parse_args(argv)
    finally:
        for action in required:
            action.required = True
    if not getattr(args, "config", None):
        return parser.parse_args(argv)
    path = Path(args.config)
    where = f"--config {args.config!r}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: cannot read it as a UTF-8 TOML file ({exc})") from None
    # top-level keys apply to every command; the command's own table is more specific and wins
    table = {k: v for k, v in data.items() if not isinstance(v, dict)}
    if isinstance(data.get(args.command), dict):
        table.update(data[args.command])
    known = {a.dest: a for a in sub[args.command]._actions if a.dest not in ("help", "config")}
    defaults = {}
    for key, value in table.items():
        dest = key.replace("-", "_")
        if dest not in known:
            raise UsageError(
                f"{where}: unknown option {key!r} for 'evsnn {args.command}'; "
                f"accepted: {sorted(k.replace('_', '-') for k in known)}"
            )
        defaults[dest] = _config_value(where, key, value, known[dest])
    sub[args.command].set_defaults(**defaults)
    given = [a for a in sub[args.command]._actions if a.required and a.dest in defaults]
    for action in given:  # the file gave it
        action.required = False
    try:
        return parser.parse_args(argv)
    finally:
        for action in given:
            action.required = True


def _out(args):
    if args.out:
        return Path(args.out)
    return Path("runs") / f"{args.command}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def _config(args):
    return {k: v for k, v in vars(args).items() if k not in ("func",)}


def _positive(name, value):
    if value is None or not value > 0:  # NaN too
        raise UsageError(f"--{name} {value!r} must be positive")
    return value


def _count(name, value):
    # argparse takes any int; a negative --samples would slice the test set from its end
    if value < 1:
        raise UsageError(f"--{name} {value!r} must be an integer >= 1")
    return value


# integer options every subcommand that has them checks before any work, so that the message
# names the flag (the library would name its own parameter: sizes[1], n_steps; NumPy's seed
# check named nothing)
_COUNTS = ("hidden", "T", "n0", "n", "n_in", "n_out", "samples")


def _counts_iv(args):
    seed = getattr(args, "seed", None)
    if seed is not None and seed < 0:
        raise UsageError(f"--seed {seed!r} must be an integer >= 0")
    for name in _COUNTS:
        value = getattr(args, name, None)
        if value is not None:
            _count(name.replace("_", "-"), value)  # the flag's spelling: --n-in


def _encoder_iv(args):
    """--encoder (train, attack, crossval) checked before any work, naming the flag: the library
    refused a bad name as its own ``method=`` or ``encoder=`` once training had begun or the
    model and data had been loaded. Not ``choices=``: 'fused:a+b' joins any of them."""
    from evsnn.encoders import ENCODERS, fused_parts

    encoder = getattr(args, "encoder", None)
    if encoder is None:  # attack, crossval: the model's, as 'evsnn train' recorded it
        return
    names = sorted(ENCODERS)
    parts = fused_parts(encoder)
    if parts == ():
        raise UsageError(f"--encoder {encoder!r} names no encoder after 'fused:'; join names "
                         f"from {names} with '+', e.g. --encoder fused:current+ttfs")
    bad = [p for p in parts or (encoder,) if p not in ENCODERS]
    if bad and parts:
        raise UsageError(f"--encoder {encoder!r}: {bad[0]!r} is not an encoder (fused encoders "
                         f"cannot be nested); join names from {names} with '+'")
    if bad:
        raise UsageError(f"--encoder {encoder!r} is not an encoder; use one of {names} or "
                         "'fused:a+b', e.g. --encoder fused:current+poisson")


def _sigma_iv(args, fix="drop --sigma"):
    """--sigma against --encoder, before any work: given to an encoder without noise (it was
    recorded while no noise was drawn; ``fix`` ends that message), or missing for an RSC
    encoder (named as the flag: the library said "needs sigma=")."""
    if args.sigma is not None and "rsc" not in (args.encoder or ""):
        raise UsageError(f"--sigma {args.sigma!r} is the noise of the RSC encoders, and "
                         f"--encoder {args.encoder!r} has none: {fix}")
    if args.sigma is None and "rsc" in (args.encoder or ""):
        raise UsageError(f"--encoder {args.encoder!r} needs --sigma, the std of its Gaussian "
                         "noise (e.g. --sigma 0.25)")


def _report(title, args):
    from validation.report import Report

    return Report(title, seed=args.seed, config=_config(args))


def _finish(report, args):
    try:
        out = report.write(_out(args), overwrite=args.overwrite)
    except (FileExistsError, NotADirectoryError) as exc:
        raise UsageError(f"--out: {exc}") from None
    except OSError as exc:
        raise UsageError(f"--out {str(_out(args))!r}: cannot write the run folder ({exc}); "
                         "choose a writable folder") from None
    print(f"report written to {out}/report.md")
    return 0


def _out_iv(args):
    from validation.report import check_run_folder

    try:
        check_run_folder(_out(args), overwrite=args.overwrite)
    except (FileExistsError, NotADirectoryError) as exc:
        raise UsageError(f"--out: {exc}") from None


# Options 'evsnn train' records in an SNN's model file (metadata "trained_with"): attack and
# certify take them from there unless given, so that a model is not run at another T or encoding
# without a word; these are the fallbacks for files without them.
TRAINED_WITH_DEFAULTS = {"T": 10, "encoder": "current", "sigma": None}


def _load_model(path, args=None, inherit=()):
    """The model of a file or run folder; each option in ``inherit`` that ``args`` leaves None
    is set from the file's "trained_with" metadata (else TRAINED_WITH_DEFAULTS)."""
    from evsnn import io

    p = Path(path)
    if p.is_dir():
        p = p / "model.npz"  # a run folder written by 'evsnn train'
        if not p.exists():
            raise UsageError(f"--model {str(path)!r} is a folder without model.npz: give a run "
                             "folder written by 'evsnn train', or the model file itself")
    if not p.exists():
        raise UsageError(
            f"--model {str(path)!r}: no such file or folder (write one with 'evsnn train')"
        )
    saved = io.load_saved(p)
    trained = saved.metadata.get("trained_with")
    trained = trained if isinstance(trained, dict) else {}
    for name in inherit:
        if getattr(args, name) is None:
            setattr(args, name, trained.get(name, TRAINED_WITH_DEFAULTS[name]))
    return saved.model


def _width_iv(args, n_in, n_pixels, encoder, fix):
    """A model of ``n_in`` inputs must take the images of ``--data`` (``n_pixels`` each, times
    the parts of a fused encoder, which concatenates one encoding per part)."""
    from evsnn.encoders import fused_parts

    parts = len(fused_parts(encoder) or ()) or 1
    if n_pixels * parts != n_in:
        per = f" ({parts} × {n_pixels} with the fused encoder)" if parts > 1 else ""
        raise UsageError(f"--model {args.model!r} takes {n_in} inputs but the images of --data "
                         f"{args.data!r} have {n_pixels} pixels{per}; {fix}")


def _data(args):
    from evsnn.data import load_digits, load_npz

    if args.data == "digits":
        return load_digits("train"), load_digits("test")
    p = Path(args.data)
    if not p.exists():
        raise UsageError(f"--data {args.data!r}: no such file; use 'digits' or an .npz path")
    if not p.is_file():
        raise UsageError(f"--data {args.data!r} is a folder, not a file; use 'digits' or an "
                         ".npz path")
    # the arrays it holds, before load_npz: the message names every missing array and what the
    # file must hold; a file that is no zip archive is load_npz's to report, below
    try:
        with zipfile.ZipFile(p) as z:
            held = sorted(n[:-4] if n.endswith(".npy") else n for n in z.namelist())
    except (OSError, EOFError, zipfile.BadZipFile):
        held = None
    missing = [k for k in ("x", "y") if held is not None and k not in held]
    if missing:
        raise UsageError(f"--data {args.data!r} has no array{'s' * (len(missing) > 1)} "
                         f"{_and([repr(k) for k in missing])} (it holds {held}); the file "
                         "must hold images x [n, ...] in [0, 1] and labels y [n]: "
                         "numpy.savez(path, x=images, y=labels)")
    try:
        ds = load_npz(p)
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        # an empty or truncated file raised EOFError / BadZipFile with a traceback
        raise UsageError(f"--data {args.data!r} is not a readable .npz of images x and labels "
                         f"y ({type(exc).__name__}: {exc}); use 'digits' or such an .npz") from exc
    except ValueError as exc:  # a readable file whose arrays load_npz refuses (it says why)
        raise UsageError(f"--data {args.data!r}: {exc}") from exc
    return ds, ds


# --- subcommands ------------------------------------------------------------------------------
def _demo(args) -> int:
    from validation.demo import run_demo

    report = run_demo(size=args.size, seed=args.seed, progress=not args.no_progress,
                      backends=None if args.backend is None else [args.backend])
    report.config.update(_config(args))
    return _finish(report, args)


def _validate(args) -> int:
    from validation.claims import run_checks
    from validation.report import verdict_table

    verdicts = run_checks(args.select, seed=args.seed, progress=not args.no_progress)
    report = _report("evsnn validate: paper claims", args)
    verdict_table(report, verdicts)
    counts = {
        s: sum(v.status == s for v in verdicts) for s in ("violated", "holds", "not-applicable")
    }
    for v in verdicts:
        print(f"{v.status + (f' ({v.scope})' if v.scope else ''):<24}{v.check_id}")
    print(f"{counts['holds']} hold, {counts['violated']} violated, "
          f"{counts['not-applicable']} not applicable")
    return _finish(report, args)


def _train(args) -> int:
    from validation.demo import train_model, trained_with

    if args.epochs is not None:
        _count("epochs", args.epochs)  # was: --epochs 0 trained the default number of epochs
    # options the model would not use are refused, so config.json records only what ran
    if args.model == "ann" and args.T is not None:  # was recorded though an ANN has no steps
        raise UsageError(f"--T {args.T!r}: --model ann has no time steps; drop --T")
    if args.model != "ann" and args.T is None:
        args.T = 10
    if args.model in ("ann", "converted"):
        if args.method is not None:
            raise UsageError(f"--method {args.method!r}: --model {args.model} is not trained "
                             "with a gradient method of evsnn.grad; drop --method")
        if args.encoder != "current":
            raise UsageError(f"--encoder {args.encoder!r}: --model {args.model} "
                             + ("takes the images themselves" if args.model == "ann" else
                                "is converted from the ANN and runs with current coding")
                             + "; drop --encoder")
    _sigma_iv(args, "drop --sigma or use --encoder rsc_fixed / rsc_fresh")
    train, test = _data(args)
    model, summary = train_model(
        args.model, train, test, hidden=args.hidden, T=args.T, epochs=args.epochs,
        encoder=args.encoder, method=args.method, seed=args.seed,
        progress=not args.no_progress, sigma=args.sigma,
    )
    args.epochs = summary["epochs"]  # config.json records the epochs that ran, not null
    report = _report(f"evsnn train: {args.model}", args)
    if args.sigma is not None:
        summary = {**summary, "sigma": args.sigma}
    # an .npz has no test split: _data hands the same set to training and evaluation
    split = ("the test split" if args.data == "digits"
             else "the training data itself (an .npz has no test split)")
    report.add_table(["quantity", "value"], [[k, v] for k, v in summary.items()],
                     caption=f"Training run (accuracies on {split})")
    for k, v in summary.items():  # the wall time to timings.json: results.json is the seed's
        (report.add_timing if k == "training seconds" else report.add_result)(k, v)

    def save(folder):
        from evsnn import io

        # the convention trained with, and what attack and certify should run the model with
        meta = None if args.model == "ann" else trained_with(
            args.T, "current" if args.model == "converted" else args.encoder, args.sigma)
        io.save(model, Path(folder) / "model.npz", convention="DEFAULT", metadata=meta)

    report.add_artifact(save)
    print(", ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items()
    ))
    return _finish(report, args)


ATTACKS = ("fgsm", "bim", "pgd", "mim", "rfgsm", "apgd", "deepfool", "one_pixel")
# options of some attacks only, and the attacks that take them: given for another attack, an
# error (they default to None, "not given"; the attack's own default applies)
ATTACK_OPTIONS = {
    "eps": ("fgsm", "bim", "pgd", "mim", "rfgsm", "apgd"),
    "steps": ("bim", "pgd", "mim", "apgd", "deepfool"),
    "norm": ("bim", "pgd", "mim", "apgd", "deepfool"),
    "variant": ("rfgsm",),
    "rule": ("pgd", "apgd"),
    "loss": ("apgd",),
    "channels": ("pgd", "one_pixel"),
    "pixels": ("one_pixel",),
    "popsize": ("one_pixel",),
    "maxiter": ("one_pixel",),
}
# the values of eps, steps and norm a taker runs with when they are not given, passed and
# recorded in config.json: the attack's own defaults (a test holds them to the signatures); the
# attacks have no default eps (a budget is the caller's choice), so the command's 0.1, an L∞
# radius in pixel units: under another --norm, --eps must be given
ATTACK_DEFAULTS = {
    "eps": dict.fromkeys(ATTACK_OPTIONS["eps"], 0.1),
    "steps": {"bim": 10, "pgd": 10, "mim": 10, "apgd": 10, "deepfool": 50},
    "norm": {"bim": "linf", "pgd": "linf", "mim": "linf", "apgd": "linf", "deepfool": "l2"},
}


def _and(names):
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _attack(args) -> int:
    from evsnn import attacks
    from evsnn.ann import ANN
    from evsnn.clock import Network
    from evsnn.metrics import accuracy, attack_success_rate

    own = {}  # the options of some attacks only: given, or a taker's default
    for name, takers in ATTACK_OPTIONS.items():
        value = getattr(args, name)
        if value is None:
            if name in ATTACK_DEFAULTS and args.attack in takers:
                own[name] = ATTACK_DEFAULTS[name][args.attack]
            continue
        if args.attack not in takers:
            raise UsageError(
                f"--{name} {value!r} is an option of --attack {_and(takers)} only, not "
                f"of --attack {args.attack}: drop --{name}"
            )
        own[name] = value
    if args.eps is None and "eps" in own and own.get("norm", "linf") != "linf":
        raise UsageError(
            f"--norm {own['norm']} needs --eps: the default 0.1 is an L∞ radius, not a "
            f"budget for {own['norm'].upper()}; give the {own['norm'].upper()} radius"
            + (" as a number of pixels, e.g. --eps 5" if own["norm"] == "l0" else ", e.g. --eps 1")
        )
    if "eps" in own:
        own["eps"] = _positive("eps", own["eps"])
        if own.get("norm") == "l0" and float(own["eps"]).is_integer():
            own["eps"] = int(own["eps"])  # the L0 budget is a number of pixels
    for name in ATTACK_DEFAULTS:  # config.json records the values the attack ran with
        setattr(args, name, own.get(name))
    # and the attack's own defaults of the options it takes but was not given (recorded as
    # null before: rfgsm's variant, apgd's loss and rule, one_pixel's pixels, ...)
    params = inspect.signature(getattr(attacks, args.attack)).parameters
    for name, takers in ATTACK_OPTIONS.items():
        if args.attack in takers and getattr(args, name) is None and name in params:
            setattr(args, name, params[name].default)
    _count("samples", args.samples)
    snn_given = {"--T": args.T, "--encoder": args.encoder, "--sigma": args.sigma,
                 "--method": None if args.method == "bptt" else args.method,
                 "--convention": None if args.convention == "DEFAULT" else args.convention,
                 "--pixel-range": None if args.pixel_range == "unit" else args.pixel_range,
                 "--product": None if args.product == "exact" else args.product}
    model = _load_model(args.model, args, inherit=("T", "encoder", "sigma"))
    if isinstance(model, ANN):
        given = [f"{k} {v!r}" for k, v in snn_given.items() if v is not None]
        if given:
            raise UsageError(f"{', '.join(given)}: options of an SNN, but --model {args.model!r} "
                             "holds an ANN, attacked through its own gradient; drop them")
        # config.json records what ran: none of the SNN's settings
        args.T = args.encoder = args.sigma = args.method = args.convention = None
        args.pixel_range = args.product = None
    elif args.product == "blas" and (args.encoder != "current" or not isinstance(model, Network)):
        what = (f"--encoder {args.encoder!r}" if args.encoder != "current"
                else f"--model {args.model!r}, a convolutional network")
        raise UsageError(f"--product blas forms the constant first-layer input of current "
                         f"coding in a dense network, and this run has {what}: drop --product")
    else:
        _sigma_iv(args)
    _, test = _data(args)
    x, y = test.x[: args.samples].astype(DTYPES[args.dtype]), test.y[: args.samples]
    args.samples = len(y)  # the images attacked (fewer when the test set is smaller)
    source = _source(model, args)
    kw = dict(own)
    kw["rng"] = args.seed  # every attack takes one (deepfool for a stochastic encoder)
    res = getattr(attacks, args.attack)(source, x, y, **kw)
    clean = (source.predict(x, rng=args.seed) if getattr(source, "stochastic", False)
             else source.predict(x))
    adv = (source.predict(res.x_adv, rng=args.seed) if getattr(source, "stochastic", False)
           else source.predict(res.x_adv))
    rows = [["clean accuracy", accuracy(clean, y)], ["adversarial accuracy", accuracy(adv, y)],
            ["ASR over all samples (Ding 2025 Eq. 28)",
             attack_success_rate(adv, y, denominator="all").rate],
            ["ASR over clean-correct samples (HART code)",
             attack_success_rate(adv, y, clean=clean, denominator="clean_correct").rate]]
    report = _report(f"evsnn attack: {args.attack}", args)
    setting = {"model": args.model, "attack": args.attack, **own, "samples": len(y)}
    if not isinstance(model, ANN):
        setting.update(T=args.T, encoder=args.encoder, sigma=args.sigma, method=args.method,
                       convention=getattr(source.convention, "name", args.convention))
    report.add_table(["quantity", "value"], rows, caption="; ".join(
        f"{k} {v}" for k, v in setting.items() if v is not None))
    report.add_result("setting", setting)
    for k, v in rows:
        report.add_result(k, v)
    print("; ".join(f"{k} {v:.4f}" for k, v in rows))
    return _finish(report, args)


def _source(model, args):
    from evsnn.ann import ANN
    from evsnn.attacks import SNNSource, ann_source

    if isinstance(model, ANN):
        return ann_source(model)
    return SNNSource(model, T=args.T, encoder=args.encoder, method=args.method,
                     convention=args.convention, sigma=args.sigma, pixel_range=args.pixel_range,
                     product=args.product)


def _certify(args) -> int:
    from certify import smoothing
    from certify.distributed import certified_accuracy, certify_dataset
    from validation.demo import snn_classifier, certified_accuracy_figure

    from evsnn.ann import ANN
    from evsnn.clock import Network

    _count("samples", args.samples)
    _count("workers", args.workers)
    model = _load_model(args.model, args, inherit=("T",))  # σ here is the smoothing noise's
    if not isinstance(model, Network):
        held = "an ANN" if isinstance(model, ANN) else f"a {type(model).__name__}"
        raise UsageError(f"--model {args.model!r} holds {held}; certify smooths an SNN given as a "
                         "dense clock-mode Network (its classifier takes flat inputs [T, B, N]; "
                         "train one with 'evsnn train --model lif')")
    _, test = _data(args)
    x, y = test.x[: args.samples], test.y[: args.samples]
    args.samples = len(y)  # the images certified (fewer when the test set is smaller)
    _width_iv(args, model.n_in, x.shape[1], None, "certify a model trained on these data")
    noise = {"gaussian": smoothing.gaussian, "rsc_fixed": smoothing.rsc_fixed,
             "rsc_fresh": smoothing.rsc_fresh}[args.noise](_positive("sigma", args.sigma), args.T,
                                                           normals=args.normals)
    scheduler = args.scheduler
    if scheduler is None and args.workers > 1:
        scheduler = "local"
    try:
        table = certify_dataset(
            snn_classifier(model, args.convention, DTYPES[args.dtype]), x, y, noise, n0=args.n0,
            n=args.n, alpha=args.alpha, num_classes=model.n_out, rng=args.seed,
            scheduler=scheduler, n_workers=args.workers, progress=not args.no_progress,
        )
    except OSError as exc:  # dask's connection timeout for an address nobody listens on
        if args.scheduler in (None, "local"):
            raise
        raise UsageError(f"--scheduler {args.scheduler!r}: cannot reach it ({exc}); start the "
                         "scheduler there, or drop --scheduler to run in this process") from None
    radii = np.linspace(0.0, 1.0, 11)
    acc = certified_accuracy(table.radius, table.correct, radii)
    report = _report(f"evsnn certify: {args.noise}, sigma {args.sigma}", args)
    setting = {"model": args.model, "noise": args.noise, "sigma": args.sigma, "T": args.T,
               "n0": args.n0, "n": args.n, "alpha": args.alpha, "samples": len(y),
               "convention": args.convention, "dtype": args.dtype, "normals": args.normals}
    report.add_table(["radius", "certified accuracy"], [[r, a] for r, a in zip(radii, acc)],
                     caption="; ".join(f"{k} {v}" for k, v in setting.items()))
    report.add_figure(certified_accuracy_figure({args.noise: (radii, acc)}), "certified_accuracy",
                      caption="Certified accuracy vs L2 radius")
    report.add_result("setting", setting)
    report.add_result("certified_accuracy", {"radii": radii, "accuracy": acc})
    # each image's certificate, so that a radius can be checked from the run folder
    report.add_result("per_image", {"label": table.label, "prediction": table.prediction,
                                    "p_a_lower": table.p_a_lower, "radius": table.radius})
    print(f"certified accuracy at radius 0: {acc[0]:.3f}, at 0.5: {acc[5]:.3f}")
    return _finish(report, args)


def _crossval(args) -> int:
    from validation.crossval.backends import BACKENDS, backend_convention, check_network
    from validation.demo import crossval_section

    from evsnn.clock import Network
    from evsnn.clock.conv import ConvNetwork
    from evsnn.data import load_digits

    _count("samples", args.samples)
    network = x = None
    if args.model is None:
        if args.data != "digits":
            raise UsageError(f"--data {args.data!r} needs --model: the random 64-100-10 network "
                             "takes the 64-pixel digits; give the model trained on these data")
        # the random network's setting, as before --model existed
        args.T = 10 if args.T is None else args.T
        args.encoder = args.encoder or "poisson"
        _sigma_iv(args)
    else:
        network = _load_model(args.model, args, inherit=("T", "encoder", "sigma"))
        if not isinstance(network, Network):
            conv = ("; a ConvNetwork is compared in Python with validation.crossval's "
                    "compare_conv / compare_snntorch" if isinstance(network, ConvNetwork) else "")
            raise UsageError(f"--model {args.model!r} holds a model of type "
                             f"{type(network).__name__}; crossval mirrors a dense clock-mode SNN "
                             "(a Network) in the frameworks: train one with 'evsnn train --model "
                             f"lif'{conv}")
        _sigma_iv(args)  # with the model's encoder, before the data are loaded
        conv = backend_convention(args.backend, args.convention)
        try:
            check_network(args.backend, network, conv)
        except ValueError as exc:
            def mirrors(name):
                try:
                    return check_network(name, network, backend_convention(name, args.convention))
                except ValueError:
                    return None

            others = [n for n in sorted(BACKENDS) if n != args.backend and mirrors(n)]
            if conv.input_delay != 0:  # no framework delays a layer's input
                fix = "give a --convention with input_delay=0, e.g. --convention DEFAULT"
            elif others:
                fix = f"cross-validate it with --backend {' or '.join(others)}"
            else:
                fix = "no crossval backend mirrors it; train a model without this feature"
            raise UsageError(f"--model {args.model!r}: --backend {args.backend} cannot mirror this "
                             f"model under convention {conv.name}: {exc}; {fix}") from None
        _, test = _data(args)
        x = test.x
        _width_iv(args, network.n_in, x.shape[1], args.encoder,
                  "cross-validate on the data the model was trained on")
    # the images that run, as attack and certify record them (--samples 5000 was recorded
    # while the 450 test digits ran)
    args.samples = min(args.samples, len(load_digits("test").x) if x is None else len(x))
    report = _report(f"evsnn crossval: {args.backend}", args)
    crossval_section(report, [args.backend], T=args.T, samples=args.samples, seed=args.seed,
                     dtype=DTYPES[args.dtype], convention=args.convention, network=network, x=x,
                     encoder=args.encoder, sigma=args.sigma)
    return _finish(report, args)


#: rows and columns of the random weight matrix ``evsnn gain`` draws without --weights
GAIN_SIZE = 20


def _gain(args) -> int:
    from certify.l2gain import check_stated_bound, hinf_norm, l2_gain, stated_gain

    if not 0.0 <= args.lam <= 1.0:
        raise UsageError(f"--lam {args.lam!r} must lie in [0, 1]")
    if args.weights:
        try:
            W = np.load(args.weights)
        except (OSError, ValueError, EOFError) as exc:  # EOFError: an empty file
            raise UsageError(
                f"--weights {args.weights!r}: cannot read a .npy array ({exc})"
            ) from None
        if not isinstance(W, np.ndarray):  # an .npz archive
            W.close()
            raise UsageError(f"--weights {args.weights!r}: an .npz archive, not a .npy array; "
                             "save the matrix with numpy.save")
        if W.ndim != 2:
            raise UsageError(f"--weights {args.weights!r} holds an array of shape {W.shape}; "
                             "the gain needs a matrix [n_out, n_in]")
        # config.json records the shape that ran; a size given beside the file must be its own
        for flag, name, size in (("--n-out", "n_out", W.shape[0]), ("--n-in", "n_in", W.shape[1])):
            if getattr(args, name) not in (None, size):
                raise UsageError(f"{flag} {getattr(args, name)} differs from the {size} of the "
                                 f"matrix in --weights {args.weights!r} [{W.shape[0]}, "
                                 f"{W.shape[1]}]; drop {flag} or pass another file")
            setattr(args, name, size)
    else:
        args.n_in = GAIN_SIZE if args.n_in is None else args.n_in
        args.n_out = GAIN_SIZE if args.n_out is None else args.n_out
        W = (np.random.default_rng(args.seed).standard_normal((args.n_out, args.n_in))
             / np.sqrt(args.n_in))
    g = l2_gain(args.lam, args.T, W, rng=args.seed)
    rows = [["finite-horizon L2 gain (exact)", g.gain], ["Stable Theorem 3.1 stated gain",
            stated_gain(args.lam, W)]]
    if args.lam < 1.0:
        rows.append(["H-inf norm (T → ∞)", hinf_norm(args.lam, W).norm])
    for domain in ("real", "spike"):
        v = check_stated_bound(args.lam, args.T, W, rng=args.seed, domain=domain)
        rows.append([f"Theorem 3.1 bound, {domain} perturbations ({v.search} search)",
                     f"{v.status} (worst ratio {v.ratio:.4g})"])
    report = _report(f"evsnn gain: lam {args.lam}, T {args.T}", args)
    report.add_table(["quantity", "value"], rows)
    for k, v in rows:
        report.add_result(k, v)
    print("; ".join(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}" for k, v in rows))
    return _finish(report, args)


def _spike_times(name, text):
    try:
        return np.array([float(t) for t in text.replace(",", " ").split()], dtype=np.float64)
    except ValueError:
        raise UsageError(
            f"--{name} {text!r} must be spike times separated by commas or spaces"
        ) from None


def _distance(args) -> int:
    from certify.spike_distance import van_rossum_distance, victor_purpura_distance

    a, b = _spike_times("a", args.a), _spike_times("b", args.b)
    if not args.q >= 0:  # q = 0 is the spike-count difference (NaN fails too)
        raise UsageError(f"--q {args.q!r} must be >= 0")
    vp = victor_purpura_distance(a, b, q=args.q)
    vr = van_rossum_distance(a, b, tau=_positive("tau", args.tau))
    report = _report("evsnn distance", args)
    rows = [["Victor-Purpura (q)", vp], ["van Rossum (tau)", vr]]
    report.add_table(["distance", "value"], rows)
    for k, v in rows:
        report.add_result(k, v)
    print(f"Victor-Purpura {vp:.6g}; van Rossum {vr:.6g}")
    return _finish(report, args)


def _grade(args) -> int:
    from validation.demo import grade_section

    report = _report("evsnn grade: surrogate gradients vs exact spike-time gradients", args)
    grade_section(report, samples=args.samples, seed=args.seed)
    return _finish(report, args)


def _bench(args) -> int:
    import runpy

    root = Path(__file__).resolve().parent.parent
    if not (root / "bench" / "__main__.py").exists():
        raise UsageError("the benchmarks live in the source checkout's bench/; run from a clone")
    sys.path.insert(0, str(root))
    sys.argv = ["bench", *args.names]
    runpy.run_module("bench", run_name="__main__")
    return 0


# --- parser -----------------------------------------------------------------------------------
_TRAINED_WITH_HELP = "{} (default: the model's, as 'evsnn train' recorded it; else {})"


def _build_parser():
    from evsnn.attacks.gradient import RFGSM_VARIANTS
    from evsnn.encoders import ENCODERS

    p = _Parser(prog="evsnn", description="Reference SNN robustness simulator")
    sub_parsers = p.add_subparsers(dest="command", required=True)
    subs = {}

    def add(name, func, help_, **common):
        s = sub_parsers.add_parser(name, help=help_, description=help_)
        _common(s, **common)
        s.set_defaults(func=func)
        subs[name] = s
        return s

    d = add("demo", _demo, "the main job: train, attack, grade, certify and validate on the "
            "embedded digits, one report", dtype=False, convention=False)
    d.add_argument("--size", default="full", choices=["full", "small"],
                   help="'small' is a quick reduced run (the test uses it)")
    # choices: a bad name was refused only after the whole demo had run (its last section)
    d.add_argument("--backend", default=None, choices=CROSSVAL_BACKENDS,
                   help="the PyTorch backend to cross-validate (default: every installed one)")

    add("validate", _validate, "check every paper claim numerically", dtype=False,
        convention=False).add_argument(
        "--select", default=None, help="only checks whose id starts with this prefix")

    # training runs in float64 with the default convention: no --dtype or --convention to ignore
    t = add("train", _train, "train a model on the embedded digits (or an .npz) and save it",
            dtype=False, convention=False)
    t.add_argument("--model", default="lif", choices=["ann", "converted", "lif", "trace", "stable"],
                   help="stable: DLIF layers trained with Stable's framework (fit_stable)")
    t.add_argument("--data", default="digits", help="'digits' or an .npz with x and y")
    t.add_argument("--hidden", type=int, default=100)
    t.add_argument("--T", type=int, default=None, help="time steps of an SNN (default 10); an "
                   "ANN has none")
    t.add_argument("--epochs", type=int, default=None, help="default: the model's tested setting")
    t.add_argument("--encoder", default="current",
                   help=f"one of {sorted(ENCODERS)}, or 'fused:a+b' (default current)")
    t.add_argument("--method", default=None,
                   help="gradient method (default bptt, tempbp for trace)")
    t.add_argument("--sigma", type=float, default=None, help="noise std of the RSC encoders")

    a = add("attack", _attack, "attack a saved model and report accuracy and success rates")
    a.add_argument("--model", required=True,
                   help="a run folder written by 'evsnn train' (or its model.npz)")
    a.add_argument("--attack", default="pgd", choices=list(ATTACKS))
    a.add_argument("--eps", type=float, default=None,
                   help="fgsm, bim, pgd, mim, rfgsm, apgd: the perturbation budget (0.1 under "
                   "--norm linf; required under l2, l1, l0); "
                   "DeepFool seeks the nearest boundary, one_pixel's budget is --pixels")
    a.add_argument("--norm", default=None, choices=["linf", "l2", "l1", "l0"],
                   help="bim, pgd, mim, apgd, deepfool: the norm of the budget (the attack's "
                   "own: linf, deepfool l2)")
    a.add_argument("--steps", type=int, default=None,
                   help="bim, pgd, mim, apgd, deepfool: iterations (the attack's own: 10, "
                   "deepfool 50)")
    a.add_argument("--variant", default=None, choices=list(RFGSM_VARIANTS),
                   help="rfgsm: Tramèr et al.'s R+FGSM (tramer, default) or Wong et al.'s FGSM "
                   "from a uniform start (wong)")
    a.add_argument("--rule", default=None, choices=["paper", "code"],
                   help="pgd, apgd: the paper's algorithm (paper, default) or the authors' "
                   "code: Ding 2025's L1 / L0 attacks for pgd (with --norm l1 or l0), Croce & "
                   "Hein's reference APGD as the Stable authors ran it for apgd")
    a.add_argument("--loss", default=None, choices=["ce", "dlr"],
                   help="apgd: cross-entropy (ce, default) or the difference of logits ratio "
                   "(dlr), Stable's APGD-CE / APGD-DLR")
    a.add_argument("--pixel-range", default="unit", choices=["unit", "real"],
                   help="the inputs the model is evaluated at: images in [0, 1] (unit) or, "
                   "under current coding, any finite current (real), which pgd --rule code "
                   "--norm l1 needs for its accumulated gradient points")
    a.add_argument("--product", default="exact", choices=["exact", "blas"],
                   help="how a current-coded dense SNN forms its first layer's input W x: the "
                   "simulator's ordered sums (exact, batch-independent) or one BLAS product "
                   "(blas, faster, rounding depends on the batch)")
    a.add_argument("--channels", type=int, default=None,
                   help="pgd, one_pixel: channels per pixel of the flattened images, L0 counts "
                   "pixels (1)")
    a.add_argument("--pixels", type=int, default=None,
                   help="one_pixel: pixels changed, its L0 budget (1)")
    a.add_argument("--popsize", type=int, default=None,
                   help="one_pixel: differential evolution population (400, Su et al.)")
    a.add_argument("--maxiter", type=int, default=None,
                   help="one_pixel: differential evolution generations (100, Su et al.)")
    a.add_argument("--data", default="digits")
    a.add_argument("--samples", type=int, default=200)
    a.add_argument("--T", type=int, default=None, help=_TRAINED_WITH_HELP.format("T", "10"))
    a.add_argument("--encoder", default=None,
                   help=_TRAINED_WITH_HELP.format("encoder", "current"))
    a.add_argument("--method", default="bptt")
    a.add_argument("--sigma", type=float, default=None,
                   help=_TRAINED_WITH_HELP.format("noise std of the RSC encoders", "none"))

    c = add("certify", _certify, "randomized-smoothing certificates for a saved SNN")
    c.add_argument("--model", required=True,
                   help="a run folder written by 'evsnn train --model lif' (or its model.npz)")
    c.add_argument("--noise", default="rsc_fixed", choices=["gaussian", "rsc_fixed", "rsc_fresh"])
    c.add_argument("--sigma", type=float, default=0.25, help="std of the smoothing noise")
    # certify.smoothing.NORMALS (a test holds them equal; evsnn imports no certify up here)
    c.add_argument("--normals", default="numpy", choices=["numpy", "compiled"],
                   help="standard normals of each noise chunk's stream: numpy's sampler (the "
                   "values of earlier releases) or evsnn's compiled ziggurat (faster, other "
                   "values, the same law)")
    c.add_argument("--T", type=int, default=None, help=_TRAINED_WITH_HELP.format("T", "10"))
    c.add_argument("--n0", type=int, default=100)
    c.add_argument("--n", type=int, default=1000)
    c.add_argument("--alpha", type=float, default=0.001)
    c.add_argument("--data", default="digits")
    c.add_argument("--samples", type=int, default=50)
    c.add_argument("--workers", type=int, default=1, help="> 1 starts a local dask cluster")
    c.add_argument("--scheduler", default=None, help="address of a running dask scheduler")

    x = add("crossval", _crossval, "run a PyTorch backend beside evsnn and report differences")
    x.add_argument("--backend", required=True, choices=CROSSVAL_BACKENDS)
    x.add_argument("--model", default=None,
                   help="a run folder written by 'evsnn train' (or its model.npz) to "
                   "cross-validate (default: a random 64-100-10 λ-LIF network)")
    x.add_argument("--data", default="digits",
                   help="with --model: 'digits' (the test split) or an .npz with x and y")
    x.add_argument("--T", type=int, default=None,
                   help=_TRAINED_WITH_HELP.format("T", "10") + "; 10 without --model")
    x.add_argument("--encoder", default=None,
                   help=_TRAINED_WITH_HELP.format("encoder", "current") + "; poisson without "
                   "--model")
    x.add_argument("--sigma", type=float, default=None,
                   help=_TRAINED_WITH_HELP.format("noise std of the RSC encoders", "none"))
    x.add_argument("--samples", type=int, default=64)

    g = add("gain", _gain, "exact finite-horizon L2 gain vs Stable Theorem 3.1", dtype=False,
            convention=False)  # the gain is computed in float64 only
    g.add_argument("--lam", type=float, default=0.9)
    g.add_argument("--T", type=int, default=10)
    g.add_argument("--n-in", type=int, default=None,
                   help=f"inputs of the random weight matrix (default {GAIN_SIZE}); with "
                        "--weights, the matrix's own")
    g.add_argument("--n-out", type=int, default=None,
                   help=f"outputs of the random weight matrix (default {GAIN_SIZE}); with "
                        "--weights, the matrix's own")
    g.add_argument("--weights", default=None, help=".npy weight matrix [n_out, n_in]")

    s = add("distance", _distance, "Victor-Purpura and van Rossum distances of two spike trains",
            dtype=False, convention=False)
    s.add_argument("--a", required=True, help="spike times, e.g. '1,2.5,7'")
    s.add_argument("--b", required=True)
    s.add_argument("--q", type=float, default=1.0)
    s.add_argument("--tau", type=float, default=1.0)

    r = add("grade", _grade, "grade surrogate gradients against exact spike-time gradients",
            dtype=False, convention=False)
    r.add_argument("--samples", type=int, default=16)

    b = sub_parsers.add_parser("bench", help="run the benchmarks of bench/ (from a clone)")
    b.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    b.set_defaults(func=_bench, config=None)
    subs["bench"] = b
    return p, subs


def main(argv=None) -> int:
    parser, subs = _build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if a in subs), "")
    try:
        args = _apply_config(parser, subs, argv)
        _counts_iv(args)
        _encoder_iv(args)
        if getattr(args, "out", None):
            _out_iv(args)  # before the work: a refused folder must not cost the run
        return args.func(args)
    except (UsageError, ValueError, TypeError, FileExistsError) as exc:
        where = f"evsnn {command}" if command else "evsnn"
        print(f"{where}: error: {exc}".replace("  ", " "), file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
