"""Certifying a data set with randomized smoothing, in-process or on ``dask.distributed``.

:func:`certify_dataset` runs :func:`certify.smoothing.certify` on every image of a data set and
gathers the results into a :class:`CertificationTable`. Certification is embarrassingly
parallel: image ``i`` gets the random stream ``SeedSequence(seed).spawn(len(X))[i]``, whatever
runs it, so the table is identical for identical seeds in-process, on a ``LocalCluster`` with
any number of workers, or on a remote scheduler (DESIGN.md, "Arrays, dtypes, randomness").

dask is optional (the ``dist`` extra): it is imported only when a scheduler is asked for.

**Picklability.** With a scheduler, the classifier, the noise model (and its ``encode``) travel
to the workers by pickle (dask uses cloudpickle). Pass a top-level function or an instance of a
top-level class; lambdas and closures work with cloudpickle only when the workers can import
everything they refer to. To build a large network on the worker instead of shipping it, pass a
:class:`ClassifierFactory`: its ``make(*args, **kwargs)`` is called once per task on the worker
and must return the classifier.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from certify.smoothing import (
    ABSTAIN,
    _alpha_iv,
    _callable_iv,
    _int_iv,
    _noise_iv,
    _progress_bar,
    _seed_iv,
    certify,
)

__all__ = [
    "ClassifierFactory",
    "CertificationTable",
    "certified_accuracy",
    "certify_dataset",
]

_DIST_HINT = "install the dist extra: pip install 'evsnn[dist]' (dask[distributed])"


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class ClassifierFactory:
    """Builds the classifier where it runs: ``make(*args, **kwargs) -> classify``.

    Attributes
    ----------
    make : callable
        A picklable (top-level) function or class returning ``classify(seq) -> labels``.
    args : tuple
        Positional arguments for ``make``.
    kwargs : dict
        Keyword arguments for ``make``.

    Examples
    --------
    >>> import numpy as np
    >>> from certify.distributed import ClassifierFactory
    >>> def make_constant(label):
    ...     return lambda seq: np.full(seq.shape[1], label)
    >>> factory = ClassifierFactory(make_constant, (2,))
    >>> factory.build()(np.zeros((1, 3, 4))).tolist()
    [2, 2, 2]
    """

    make: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        _callable_iv("make", self.make)
        if not isinstance(self.args, tuple):
            raise TypeError(f"args must be a tuple, got {type(self.args).__name__} {self.args!r}")
        if not isinstance(self.kwargs, dict):
            raise TypeError(
                f"kwargs must be a dict, got {type(self.kwargs).__name__} {self.kwargs!r}"
            )

    def build(self):
        """Call ``make`` and check that it returned a callable."""
        classify = self.make(*self.args, **self.kwargs)
        if not callable(classify):
            raise TypeError(
                f"ClassifierFactory.make returned {type(classify).__name__}, not a callable; "
                "make must return classify(seq) -> labels"
            )
        return classify


def _radii_iv(radii):
    try:
        r = np.asarray(radii)
    except ValueError as exc:
        raise TypeError(f"radii must be a 1-D array of real numbers: {exc}") from exc
    if r.dtype.kind not in "biuf":
        raise TypeError(f"radii must hold real numbers, got dtype {r.dtype}")
    scalar = r.ndim == 0
    r = np.atleast_1d(r).astype(np.float64)
    if r.ndim != 1:
        raise ValueError(f"radii must be a scalar or 1-D array, got shape {r.shape}")
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError(f"radii={radii!r} must be finite and >= 0")
    return r, scalar


def certified_accuracy(radius, correct, radii):
    """Certified accuracy curve: the fraction certified correct with radius ≥ r, for each r.

    Parameters
    ----------
    radius : array_like of float, shape (B,)
        Certified radii (0 for abstentions).
    correct : array_like of bool, shape (B,)
        Whether each certified prediction equals the label (False for abstentions).
    radii : float or array_like of float
        Radii ``r ≥ 0`` at which to evaluate.

    Returns
    -------
    float or numpy.ndarray
        ``mean(correct & (radius >= r))`` for each ``r`` (a float for a scalar ``radii``).

    Raises
    ------
    TypeError
        If an argument is not numeric (``correct`` not boolean).
    ValueError
        If shapes differ, the data set is empty, or radii are negative or not finite.

    Notes
    -----
    The "approximate certified test set accuracy" of Cohen et al. (2019), §4: an image counts at
    radius ``r`` when CERTIFY returned the correct class with radius ``R ≥ r``.

    Examples
    --------
    >>> from certify.distributed import certified_accuracy
    >>> certified_accuracy([0.0, 0.3, 0.6, 0.9], [False, True, False, True], [0, 0.5, 1]).tolist()
    [0.5, 0.25, 0.0]
    """
    rad = np.asarray(radius)
    cor = np.asarray(correct)
    if rad.dtype.kind not in "iuf":
        raise TypeError(f"radius must hold real numbers, got dtype {rad.dtype}")
    if cor.dtype.kind != "b":
        raise TypeError(f"correct must be boolean, got dtype {cor.dtype}; pass prediction == label")
    if rad.ndim != 1 or rad.shape != cor.shape or rad.size == 0:
        raise ValueError(
            f"radius and correct must be non-empty 1-D arrays of equal length, got shapes "
            f"{rad.shape} and {cor.shape}"
        )
    r, scalar = _radii_iv(radii)
    acc = np.mean(cor[None, :] & (rad[None, :] >= r[:, None]), axis=1)
    return float(acc[0]) if scalar else acc


def _path_iv(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__} {path!r}")
    return Path(path)


def _atomic_write_text(path, text):
    """Write ``text`` to a temporary file beside ``path``, then ``os.replace`` it: readers see
    the old file or the new one, never half of one."""
    path = _path_iv(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


_COLUMNS = ("label", "prediction", "correct", "radius", "p_a_lower")


@dataclass(frozen=True, eq=False)
class CertificationTable:
    """Per-image certificates of a data set (from :func:`certify_dataset`).

    Attributes
    ----------
    label : numpy.ndarray of int64, shape (B,)
        True labels.
    prediction : numpy.ndarray of int64, shape (B,)
        Certified class or :data:`certify.smoothing.ABSTAIN` (-1).
    correct : numpy.ndarray of bool, shape (B,)
        ``prediction == label`` (False when abstaining).
    radius : numpy.ndarray of float64, shape (B,)
        Certified L2 radius in image space (0 when abstaining).
    p_a_lower : numpy.ndarray of float64, shape (B,)
        Clopper–Pearson lower bounds of the selected class's probability.
    noise : str
        Noise model name.
    sigma : float
        Noise standard deviation.
    n_steps : int
        Time steps T.
    n0, n : int
        Selection and estimation samples per image.
    alpha : float
        Failure probability per image.
    """

    label: np.ndarray
    prediction: np.ndarray
    correct: np.ndarray
    radius: np.ndarray
    p_a_lower: np.ndarray
    noise: str
    sigma: float
    n_steps: int
    n0: int
    n: int
    alpha: float

    def __len__(self):
        return int(self.label.shape[0])

    def certified_accuracy(self, radii):
        """:func:`certified_accuracy` of this table at ``radii``."""
        return certified_accuracy(self.radius, self.correct, radii)

    def _meta(self):
        return {
            "noise": self.noise,
            "sigma": self.sigma,
            "n_steps": self.n_steps,
            "n0": self.n0,
            "n": self.n,
            "alpha": self.alpha,
        }

    def to_csv(self, path):
        """Write one row per image (``index,label,prediction,correct,radius,p_a_lower``),
        atomically; floats are written with ``repr`` so they read back exactly. Returns the
        path."""
        lines = ["index," + ",".join(_COLUMNS)]
        for i in range(len(self)):
            lines.append(
                f"{i},{int(self.label[i])},{int(self.prediction[i])},"
                f"{int(bool(self.correct[i]))},{float(self.radius[i])!r},"
                f"{float(self.p_a_lower[i])!r}"
            )
        return _atomic_write_text(path, "\n".join(lines) + "\n")

    def to_json(self, path):
        """Write the settings and the columns as JSON, atomically. Returns the path."""
        doc = dict(self._meta())
        doc["columns"] = {
            "label": self.label.tolist(),
            "prediction": self.prediction.tolist(),
            "correct": self.correct.tolist(),
            "radius": self.radius.tolist(),
            "p_a_lower": self.p_a_lower.tolist(),
        }
        return _atomic_write_text(path, json.dumps(doc, indent=1, allow_nan=False) + "\n")

    @classmethod
    def read_json(cls, path):
        """Read a table written by :meth:`to_json`."""
        with open(_path_iv(path), encoding="utf-8") as fh:
            doc = json.load(fh)
        cols = doc["columns"]
        return cls(
            label=np.asarray(cols["label"], dtype=np.int64),
            prediction=np.asarray(cols["prediction"], dtype=np.int64),
            correct=np.asarray(cols["correct"], dtype=bool),
            radius=np.asarray(cols["radius"], dtype=np.float64),
            p_a_lower=np.asarray(cols["p_a_lower"], dtype=np.float64),
            noise=doc["noise"],
            sigma=float(doc["sigma"]),
            n_steps=int(doc["n_steps"]),
            n0=int(doc["n0"]),
            n=int(doc["n"]),
            alpha=float(doc["alpha"]),
        )


# --------------------------------------------------------------------------- the work
def _certify_chunk(classify, X, seeds, noise, n0, n, alpha, num_classes, batch_size):
    """One task: certify the images ``X`` with their own seeds; returns plain arrays."""
    if isinstance(classify, ClassifierFactory):
        classify = classify.build()
    pred = np.empty(len(X), dtype=np.int64)
    radius = np.empty(len(X), dtype=np.float64)
    p_low = np.empty(len(X), dtype=np.float64)
    for i, (x, seed) in enumerate(zip(X, seeds)):
        cert = certify(
            classify,
            x,
            noise,
            n0=n0,
            n=n,
            alpha=alpha,
            num_classes=num_classes,
            rng=seed,
            batch_size=batch_size,
        )
        pred[i], radius[i], p_low[i] = cert.prediction, cert.radius, cert.p_a_lower
    return pred, radius, p_low


def _data_iv(X, y, num_classes):
    if X is None or isinstance(X, (str, bytes)):
        raise TypeError(f"X must be a 2-D array [B, N] of images, got {type(X).__name__}")
    try:
        X = np.asarray(X)
    except ValueError as exc:
        raise TypeError(f"X must be a rectangular array of real numbers: {exc}") from exc
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must hold real numbers, got dtype {X.dtype}")
    if X.ndim != 2 or 0 in X.shape:
        raise ValueError(
            f"X must be a non-empty 2-D array [B, N] of flattened images, got shape {X.shape}; "
            "pass X.reshape(len(X), -1)"
        )
    if not np.all(np.isfinite(X)):
        raise ValueError("X holds NaN or infinite values; pass finite pixel values")
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"y must hold integer labels, got dtype {y.dtype}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), one label per image; got {y.shape}")
    bad = y[(y < 0) | (y >= num_classes)]
    if bad.size:
        raise ValueError(
            f"y holds label {int(bad[0])} outside [0, num_classes={num_classes}); "
            "fix y or num_classes"
        )
    return np.ascontiguousarray(X, dtype=np.float64), y.astype(np.int64)


def _scheduler_iv(scheduler):
    if scheduler is None:
        return None
    if not isinstance(scheduler, str):
        raise TypeError(
            f"scheduler must be None (in-process), 'local' or a scheduler address string, got "
            f"{type(scheduler).__name__} {scheduler!r}"
        )
    if not scheduler.strip():
        raise ValueError(
            f"scheduler={scheduler!r} is empty; pass None (in-process), 'local' or an "
            "address such as 'tcp://127.0.0.1:8786'"
        )
    return scheduler


def _import_distributed(scheduler):
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"scheduler={scheduler!r} needs dask.distributed, which is not installed; {_DIST_HINT}"
        ) from exc
    return distributed


def _run_dask(distributed, client, tasks, sizes, bar):
    futures = [client.submit(_certify_chunk, *task, pure=False) for task in tasks]
    size_of = {fut.key: k for fut, k in zip(futures, sizes)}
    for fut in distributed.as_completed(futures):
        bar.update(size_of[fut.key])
    return client.gather(futures)


def certify_dataset(
    classify,
    X,
    y,
    noise,
    *,
    n0,
    n,
    alpha,
    num_classes,
    rng,
    scheduler=None,
    n_workers=2,
    processes=True,
    chunk_size=1,
    batch_size=1000,
    progress=True,
):
    """CERTIFY every image of a data set (Cohen et al. 2019), optionally on dask.distributed.

    Parameters
    ----------
    classify : callable or ClassifierFactory
        ``classify(seq[T, B, N']) -> labels[B]``, or a factory that builds it on each task.
        Must be picklable when ``scheduler`` is given (module docstring).
    X : array_like, shape (B, N)
        Flattened images.
    y : array_like of int, shape (B,)
        Labels in ``[0, num_classes)``.
    noise : NoiseModel
        From :func:`certify.smoothing.gaussian`, ``rsc_fixed`` or ``rsc_fresh``.
    n0, n : int
        Selection and estimation samples per image.
    alpha : float
        Failure probability per image, in (0, 0.5).
    num_classes : int
        Number of classes (≥ 2).
    rng : int, SeedSequence, Generator or None
        Anything :func:`numpy.random.default_rng` accepts; image ``i`` uses
        ``SeedSequence(rng).spawn(len(X))[i]`` (a Generator is first advanced once to seed a
        SeedSequence).
    scheduler : None, 'local' or str, default None
        ``None`` runs in this process; ``'local'`` starts a ``distributed.LocalCluster`` with
        ``n_workers`` workers on 127.0.0.1 and closes it afterwards; any other string is the
        address of a running scheduler (e.g. ``'tcp://10.0.0.5:8786'``).
    n_workers : int, default 2
        Workers of the local cluster (one thread each).
    processes : bool, default True
        Local cluster workers are processes (True) or threads (False).
    chunk_size : int, default 1
        Images per task.
    batch_size : int, default 1000
        Samples per call of ``classify``.
    progress : bool, default True
        Show a tqdm bar over images (if tqdm is installed).

    Returns
    -------
    CertificationTable
        Identical for identical seeds, whatever ``scheduler``, ``n_workers``, ``chunk_size``
        and ``batch_size``.

    Raises
    ------
    TypeError
        If an argument has the wrong kind.
    ValueError
        If an argument has a wrong value (shapes, ranges, an empty scheduler string).
    ImportError
        If a scheduler is asked for and dask.distributed is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> from certify.distributed import certify_dataset
    >>> from certify.smoothing import rsc_fixed
    >>> def brighter_half(seq):  # class 1 when the first pixel is brighter than the second
    ...     return (seq[0, :, 0] > seq[0, :, 1]).astype(np.int64)
    >>> X = np.array([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5]])
    >>> table = certify_dataset(brighter_half, X, [1, 0, 1], rsc_fixed(0.1, 4), n0=20, n=500,
    ...                         alpha=0.001, num_classes=2, rng=0, progress=False)
    >>> table.prediction.tolist(), table.correct.tolist()  # the last image sits on the boundary
    ([1, 0, -1], [True, True, False])
    >>> round(float(table.radius[0]), 3)  # 0.1 Φ⁻¹(0.001 ** (1/500)): all 500 votes agree
    0.221
    """
    if not isinstance(classify, ClassifierFactory):
        _callable_iv("classify", classify)
    noise = _noise_iv(noise)
    n0 = _int_iv("n0", n0, 1)
    n = _int_iv("n", n, 1)
    alpha = _alpha_iv(alpha)
    num_classes = _int_iv("num_classes", num_classes, 2)
    X, y = _data_iv(X, y, num_classes)
    scheduler = _scheduler_iv(scheduler)
    n_workers = _int_iv("n_workers", n_workers, 1)
    chunk_size = _int_iv("chunk_size", chunk_size, 1)
    batch_size = _int_iv("batch_size", batch_size, 1)
    for name, flag in (("processes", processes), ("progress", progress)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    seeds = _seed_iv(rng).spawn(len(X))

    starts = range(0, len(X), chunk_size)
    tasks = [
        (classify, X[s : s + chunk_size], seeds[s : s + chunk_size], noise, n0, n, alpha,
         num_classes, batch_size)
        for s in starts
    ]
    sizes = [min(chunk_size, len(X) - s) for s in starts]
    bar = _progress_bar(bool(progress), len(X), "certify_dataset", unit="image")
    try:
        if scheduler is None:
            if isinstance(classify, ClassifierFactory):
                built = classify.build()  # once: in one process there is nothing to ship
                tasks = [(built,) + task[1:] for task in tasks]
            parts = []
            for task, k in zip(tasks, sizes):
                parts.append(_certify_chunk(*task))
                bar.update(k)
        else:
            distributed = _import_distributed(scheduler)
            if scheduler == "local":
                with distributed.LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=bool(processes),
                    protocol="tcp://",  # threads would default to in-process comms
                    host="127.0.0.1",
                    dashboard_address=None,
                ) as cluster, distributed.Client(cluster) as client:
                    parts = _run_dask(distributed, client, tasks, sizes, bar)
            else:
                with distributed.Client(scheduler) as client:
                    parts = _run_dask(distributed, client, tasks, sizes, bar)
    finally:
        bar.close()

    pred = np.concatenate([p[0] for p in parts])
    radius = np.concatenate([p[1] for p in parts])
    p_low = np.concatenate([p[2] for p in parts])
    correct = (pred == y) & (pred != ABSTAIN)
    return CertificationTable(
        label=y,
        prediction=pred,
        correct=correct,
        radius=radius,
        p_a_lower=p_low,
        noise=noise.name,
        sigma=noise.sigma,
        n_steps=noise.n_steps,
        n0=n0,
        n=n,
        alpha=alpha,
    )
