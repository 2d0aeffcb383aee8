"""Certifying a data set with randomized smoothing, in-process or on ``dask.distributed``.

:func:`certify_dataset` runs :func:`certify.smoothing.certify` on every image of a data set and
gathers the results into a :class:`CertificationTable`. Certification is embarrassingly
parallel: image ``i`` gets the random stream ``SeedSequence(seed).spawn(len(X))[i]``, whatever
runs it, so the table is identical for identical seeds in-process, on a ``LocalCluster`` with
any number of workers, or on a remote scheduler (DESIGN.md, "Arrays, dtypes, randomness").

dask is optional (the ``dist`` extra): it is imported only when a scheduler is asked for.

**The run's parameters travel with the results.** The table records everything needed to run
it again -- the noise model (kind, σ, T, clamp, encoder, normals), ``n0``, ``n``, ``alpha``,
``num_classes``, the seed (the root :class:`~numpy.random.SeedSequence`'s entropy, spawn key
and pool size, also when ``rng`` was None or a Generator), ``batch_size``, ``chunk_size``,
:data:`~certify.smoothing.NOISE_CHUNK`, a description and the dtype of the classifier, a
SHA-256 digest of the images, the scheduler, and the versions of evsnn, Python, NumPy, SciPy,
statsmodels and numba -- and writes it to both file formats (:meth:`CertificationTable.to_csv`,
:meth:`CertificationTable.to_json`). :meth:`CertificationTable.reproduce` runs it again from a
table read back from either file; the classifier (and a custom encoder) cannot be stored in a
file and are passed again, the images are checked against the digest.

**Picklability.** With a scheduler, the classifier, the noise model (and its ``encode``) travel
to the workers by pickle (dask uses cloudpickle). Pass a top-level function or an instance of a
top-level class; lambdas and closures work with cloudpickle only when the workers can import
everything they refer to. To build a large network on the worker instead of shipping it, pass a
:class:`ClassifierFactory`: its ``make(*args, **kwargs)`` is called once per task on the worker
and must return the classifier.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import numbers
import os
import platform
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np

from certify.smoothing import (
    ABSTAIN,
    NOISE_CHUNK,
    NOISE_MODELS,
    NoiseModel,
    _alpha_iv,
    _callable_iv,
    _describe_callable,
    _int_iv,
    _noise_iv,
    _normals_iv,
    _progress_bar,
    _radius_of,
    _real_iv,
    _seed_iv,
    certify,
)
from evsnn._checks import class_labels_iv, flag_iv, int_iv
from evsnn._records import compact_repr
from evsnn.io import _atomic_write

__all__ = [
    "TABLE_FORMAT",
    "ClassifierFactory",
    "CertificationTable",
    "certified_accuracy",
    "certify_dataset",
    "data_digest",
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
        If shapes differ, the data set is empty, a radius is negative or NaN, or ``radii`` are
        negative or not finite.

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
    # a NaN radius compared False with every r and was silently counted as not certified
    bad = np.isnan(rad) | (rad < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"radius[{i}]={rad[i].item()!r} must be >= 0 and not NaN (0 for an "
                         "abstention); pass the certificates' radii")
    r, scalar = _radii_iv(radii)
    acc = np.mean(cor[None, :] & (rad[None, :] >= r[:, None]), axis=1)
    return float(acc[0]) if scalar else acc


def _path_iv(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__} {path!r}")
    return Path(path)


def _write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`evsnn.io._atomic_write`: the old
    file stays whole on any error, a symbolic link is followed and kept, a read-only file or a
    folder that is not writable is refused with ``PermissionError``); returns the path."""
    path = _path_iv(path)
    _atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
    return path


#: Written as the ``format`` parameter; :meth:`CertificationTable.read_csv` and ``read_json``
#: accept it and files without it (written before the parameters were recorded).
TABLE_FORMAT = "evsnn.certification_table/2"
_CLASSIFIER_DESCRIPTION_MAX = 300


def _versions():
    import numba
    import scipy
    import statsmodels

    import evsnn

    return {"evsnn": evsnn.__version__, "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__,
            "statsmodels": statsmodels.__version__, "numba": numba.__version__}


def data_digest(X):
    """SHA-256 of the images as :func:`certify_dataset` sees them (float64, C order, -0.0 read
    as 0.0) and their shape; recorded in a :class:`CertificationTable` so that
    :meth:`~CertificationTable.reproduce` can tell whether it got the same images.

    Raises
    ------
    TypeError
        If ``X`` is not an array of real numbers (None, a string, ragged lists, objects).

    Examples
    --------
    >>> import numpy as np
    >>> from certify.distributed import data_digest
    >>> data_digest(np.zeros((2, 3))) == data_digest([[0, 0, 0], [0, 0, 0]])
    True
    >>> data_digest(np.zeros((2, 3))) == data_digest(np.zeros((3, 2)))
    False
    """
    if X is None or isinstance(X, (str, bytes)):
        raise TypeError(f"X must be an array of real numbers (the images), got "
                        f"{type(X).__name__} {X!r}")
    try:
        arr = np.asarray(X)
    except ValueError as exc:
        raise TypeError(f"X must be a rectangular array of real numbers: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"X must hold real numbers, got dtype {arr.dtype}")
    # + 0.0 turns -0.0 into 0.0: the same pixel to every encoder, so the same digest
    arr = np.ascontiguousarray(arr, dtype=np.float64) + 0.0
    h = hashlib.sha256(repr(arr.shape).encode("ascii"))
    h.update(arr.tobytes())
    return h.hexdigest()


def _describe_classifier(classify):
    if isinstance(classify, ClassifierFactory):
        text = (f"ClassifierFactory({_describe_callable(classify.make)}, args={classify.args!r}, "
                f"kwargs={classify.kwargs!r})")
    else:
        text = _describe_callable(classify)
    if len(text) > _CLASSIFIER_DESCRIPTION_MAX:
        text = text[: _CLASSIFIER_DESCRIPTION_MAX - 1] + "…"
    return text


def _classifier_dtype(classify):
    dtype = getattr(classify, "dtype", None)
    if dtype is None:
        return None
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


def _json_value(key, text):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"parameter {key!r} holds {text!r}, which is not a JSON value ({exc}); the file was "
            "edited or not written by CertificationTable.to_csv"
        ) from exc


def _column_iv(name, value, dtype):
    dtype = np.dtype(dtype)
    what = {"i": "integers", "b": "booleans", "f": "real numbers"}[dtype.kind]
    try:
        arr = np.asarray(value)
    except ValueError as exc:
        raise TypeError(f"{name} must be a 1-D array of {what}: {exc}") from exc
    if arr.size and arr.dtype.kind not in {"i": "iu", "b": "b", "f": "iuf"}[dtype.kind]:
        raise TypeError(f"{name} must hold {what}, got dtype {arr.dtype}; pass {dtype} values")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, one entry per image; got shape {arr.shape}")
    return arr.astype(dtype, copy=False)


def _optional(check, name, value, *args):
    return None if value is None else check(name, value, *args)


def _str_iv(name, value):
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string or None, got {type(value).__name__} {value!r}")
    return value


def _seed_ints_iv(name, value):
    """A non-negative int or a list of them (from a list or tuple), as a SeedSequence takes
    its entropy and spawn key; a bad item is named ``name[i]``."""
    hint = "pass what the SeedSequence of the run holds: a non-negative int or a list of them"
    if isinstance(value, (list, tuple)):
        return [int_iv(f"{name}[{i}]", v, hint=hint) for i, v in enumerate(value)]
    return int_iv(name, value, hint=hint)


def _versions_iv(versions):
    if not isinstance(versions, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in versions.items()):
        raise TypeError(f"versions must be a dict of library name -> version string, got "
                        f"{type(versions).__name__} {versions!r}; pass {{}} when they are unknown")
    return dict(versions)


# field metadata of CertificationTable, from which the lists below are derived
_COLUMN = "column"  # a per-image column, with its dtype
_REPRODUCE = "reproduce"  # a parameter reproduce() cannot do without


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
        Noise model name (kind).
    sigma : float
        Noise standard deviation.
    n_steps : int
        Time steps T.
    n0, n : int
        Selection and estimation samples per image.
    alpha : float
        Failure probability per image.
    clamp : bool
        Whether noisy pixels were clamped to [0, 1].
    encoder : str or None
        The Gaussian noise model's encoder (:attr:`~certify.smoothing.NoiseModel.encoder`).
    encode_rng : bool
        Whether that encoder was stochastic.
    normals : {'numpy', 'compiled'}
        How the noise chunks' streams became standard normals
        (:attr:`~certify.smoothing.NoiseModel.normals`); 'numpy' for a file written before it
        was recorded (the only way there was).
    num_classes : int or None
        Number of classes.
    seed_entropy : int, list of int or None
        Entropy of the root :class:`~numpy.random.SeedSequence` (image ``i`` used its
        ``spawn(B)[i]``).
    seed_spawn_key : tuple of int
        Its spawn key.
    seed_pool_size : int or None
        Its pool size.
    batch_size, chunk_size : int or None
        Samples per call of the classifier and images per task (results do not depend on
        them).
    noise_chunk : int or None
        :data:`~certify.smoothing.NOISE_CHUNK` of the run (the layout of the noise streams).
    classifier : str or None
        Description of the classifier (its dotted name, or a factory with its arguments;
        at most 300 characters); not enough to rebuild it.
    classifier_dtype : str or None
        The classifier's ``dtype`` attribute (e.g. a
        :class:`~certify.smoothing.NetworkClassifier`'s simulation dtype), if it has one;
        :meth:`reproduce` refuses a classifier of another dtype.
    n_features : int or None
        Pixels per image (the images were ``len(table) x n_features``).
    data_sha256 : str or None
        :func:`data_digest` of the images.
    scheduler : str or None
        None (in-process), ``'local'`` or the scheduler address (results do not depend on it).
    n_workers : int or None
        Workers of a local cluster.
    processes : bool or None
        Whether a local cluster's workers were processes.
    versions : dict
        Versions of evsnn, Python, NumPy, SciPy, statsmodels and numba.

    The fields after ``alpha`` take their defaults (``clamp`` True, ``encode_rng`` False,
    ``normals`` 'numpy', ``seed_spawn_key`` and ``versions`` empty, the others None) for a
    table built by hand or read from a file written before they were recorded. Every field is
    checked on construction (``TypeError`` for a wrong kind, ``ValueError`` for a wrong value)
    and the columns are converted to their dtypes. The columns must agree as
    :func:`~certify.smoothing.certify` writes them: ``correct`` is prediction == label; a row
    that predicts a class has ``p_a_lower > 1/2`` and the radius
    :func:`~certify.smoothing.certified_radius` gives for the table's noise model (to 1e-12
    relative); an ABSTAIN row has ``p_a_lower <= 1/2`` and radius 0 (an edited radius would
    inflate :meth:`certified_accuracy`).
    """

    __repr__ = compact_repr  # arrays as dtype and shape

    label: np.ndarray = field(metadata={_COLUMN: np.int64})
    prediction: np.ndarray = field(metadata={_COLUMN: np.int64})
    correct: np.ndarray = field(metadata={_COLUMN: np.bool_})
    radius: np.ndarray = field(metadata={_COLUMN: np.float64})
    p_a_lower: np.ndarray = field(metadata={_COLUMN: np.float64})
    noise: str
    sigma: float
    n_steps: int
    n0: int
    n: int
    alpha: float
    clamp: bool = True
    encoder: str | None = None
    encode_rng: bool = False
    normals: str = "numpy"
    num_classes: int | None = field(default=None, metadata={_REPRODUCE: True})
    seed_entropy: int | list | None = field(default=None, metadata={_REPRODUCE: True})
    seed_spawn_key: tuple = ()
    seed_pool_size: int | None = field(default=None, metadata={_REPRODUCE: True})
    batch_size: int | None = field(default=None, metadata={_REPRODUCE: True})
    chunk_size: int | None = field(default=None, metadata={_REPRODUCE: True})
    noise_chunk: int | None = None
    classifier: str | None = None
    classifier_dtype: str | None = None
    n_features: int | None = None
    data_sha256: str | None = field(default=None, metadata={_REPRODUCE: True})
    scheduler: str | None = None
    n_workers: int | None = None
    processes: bool | None = None
    versions: dict = field(default_factory=dict)

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        for name, dtype in _COLUMNS.items():
            put(name, _column_iv(name, getattr(self, name), dtype))
        lengths = {name: len(getattr(self, name)) for name in _COLUMNS}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"the columns must have one entry per image, got lengths {lengths}")
        # what certify returns (0 when abstaining; a Clopper-Pearson bound), and what both file
        # formats hold: JSON has no NaN or inf
        bad = ~(np.isfinite(self.radius) & (self.radius >= 0))
        if bad.any():
            raise ValueError(f"radius[{int(np.argmax(bad))}]={float(self.radius[bad][0])!r} "
                             "must be finite and >= 0 (0 for an abstention)")
        # the columns must tell one story: an edited "correct" would inflate certified_accuracy
        bad = self.prediction < ABSTAIN
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"prediction[{i}]={int(self.prediction[i])} is neither a class "
                             f"(>= 0) nor ABSTAIN ({ABSTAIN})")
        bad = self.label < 0
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"label[{i}]={int(self.label[i])} is not a class (>= 0)")

        bad = self.correct != ((self.prediction == self.label) & (self.prediction != ABSTAIN))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"correct[{i}]={bool(self.correct[i])} but prediction[{i}]="
                f"{int(self.prediction[i])} and label[{i}]={int(self.label[i])}: correct must be "
                "prediction == label (False for an abstention); the table was built or edited "
                "inconsistently"
            )
        bad = (self.prediction == ABSTAIN) & (self.radius != 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"radius[{i}]={float(self.radius[i])!r} for an abstention; an "
                             "abstaining image certifies radius 0")
        bad = ~((self.p_a_lower >= 0) & (self.p_a_lower <= 1))
        if bad.any():
            raise ValueError(f"p_a_lower[{int(np.argmax(bad))}]="
                             f"{float(self.p_a_lower[bad][0])!r} must lie in [0, 1] (a lower "
                             "bound of a probability)")
        if not isinstance(self.noise, str):
            raise TypeError(f"noise must be a noise model's name, one of {list(NOISE_MODELS)}; "
                            f"got {type(self.noise).__name__} {self.noise!r}")
        if self.noise not in NOISE_MODELS:
            raise ValueError(f"noise={self.noise!r} is not a noise model; use one of "
                             f"{list(NOISE_MODELS)}")
        put("sigma", _real_iv("sigma", self.sigma, lo=0.0, lo_open=True))
        for name in ("n_steps", "n0", "n"):
            put(name, _int_iv(name, getattr(self, name), 1))
        put("alpha", _alpha_iv(self.alpha))
        put("clamp", flag_iv("clamp", self.clamp))
        put("encode_rng", flag_iv("encode_rng", self.encode_rng))
        put("normals", _normals_iv(self.normals))
        put("processes", _optional(flag_iv, "processes", self.processes))
        for name in ("encoder", "classifier", "classifier_dtype", "data_sha256", "scheduler"):
            _optional(_str_iv, name, getattr(self, name))
        # numpy's SeedSequence needs a pool of at least 4 words
        for name, lo in (("num_classes", 2), ("seed_pool_size", 4), ("batch_size", 1),
                         ("chunk_size", 1), ("noise_chunk", 1), ("n_features", 1),
                         ("n_workers", 1)):
            put(name, _optional(_int_iv, name, getattr(self, name), lo))
        if self.num_classes is not None:  # checked above to be an integer >= 2
            for name in ("label", "prediction"):
                col = getattr(self, name)
                bad = col >= self.num_classes
                if bad.any():
                    i = int(np.argmax(bad))
                    raise ValueError(f"{name}[{i}]={int(col[i])} but num_classes="
                                     f"{self.num_classes}: classes are 0 ... "
                                     f"{self.num_classes - 1}")
        self._radius_iv()
        put("seed_entropy", _optional(_seed_ints_iv, "seed_entropy", self.seed_entropy))
        if not isinstance(self.seed_spawn_key, (list, tuple)):
            raise TypeError(f"seed_spawn_key must be a tuple of non-negative integers, got "
                            f"{type(self.seed_spawn_key).__name__} {self.seed_spawn_key!r}")
        put("seed_spawn_key", tuple(_seed_ints_iv("seed_spawn_key", self.seed_spawn_key)))
        put("versions", _versions_iv(self.versions))

    def _radius_iv(self):
        """Each row as certify writes it: a class with p_a_lower > 1/2 and the radius
        :func:`~certify.smoothing.certified_radius` gives for the table's noise model (to 1e-12
        relative), or ABSTAIN with p_a_lower <= 1/2 and radius 0. An edited radius or bound
        would inflate certified_accuracy."""
        certified = self.prediction != ABSTAIN
        # certify predicts a class exactly when p_a_lower > 1/2, and abstains otherwise
        bad = certified != (self.p_a_lower > 0.5)
        if bad.any():
            i = int(np.argmax(bad))
            shown = (f"prediction[{i}]={int(self.prediction[i])}" if certified[i]
                     else f"prediction[{i}]=ABSTAIN ({ABSTAIN})")
            side, does = (("<=", f"abstains there (prediction ABSTAIN ({ABSTAIN}), radius 0)")
                          if certified[i] else (">", "predicts a class there, with a radius"))
            raise ValueError(
                f"{shown} with p_a_lower[{i}]={float(self.p_a_lower[i])!r} {side} 1/2: certify "
                f"{does}; the table was built or edited inconsistently"
            )
        noise = NoiseModel(self.noise, self.sigma, self.n_steps, self.clamp)
        with np.errstate(over="ignore"):  # a radius past the float range is refused below
            implied = np.where(certified, _radius_of(np.where(certified, self.p_a_lower, 1.0),
                                                     noise), 0.0)
        bad = certified & ~np.isclose(self.radius, implied, rtol=1e-12, atol=0.0)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"radius[{i}]={float(self.radius[i])!r} but p_a_lower[{i}]="
                f"{float(self.p_a_lower[i])!r} certifies radius {float(implied[i])!r} under the "
                f"table's noise model ({self.noise}, sigma={self.sigma!r}, n_steps="
                f"{self.n_steps}; σ Φ⁻¹(p_a_lower) · radius_scale, as "
                "certify.smoothing.certified_radius); the table was built or edited inconsistently"
            )

    def __len__(self):
        return int(self.label.shape[0])

    def certified_accuracy(self, radii):
        """:func:`certified_accuracy` of this table at ``radii``."""
        return certified_accuracy(self.radius, self.correct, radii)

    def parameters(self):
        """The run's parameters as a dict of JSON values (``format`` first, then the fields
        after the columns in the order they are declared): what :meth:`to_csv` and
        :meth:`to_json` write."""
        out = {"format": TABLE_FORMAT}
        for name in _PARAMETERS:
            value = getattr(self, name)
            if name == "seed_spawn_key":
                value = [int(v) for v in value]
            elif name == "versions":
                value = dict(value)
            out[name] = value
        return out

    def noise_model(self, encode=None):
        """The :class:`~certify.smoothing.NoiseModel` of the run, with ``encode`` (which a
        file cannot hold) passed again when the run used a custom encoder.

        Raises
        ------
        ValueError
            If ``encode`` is missing, superfluous, or described differently from the recorded
            :attr:`encoder`.
        """
        if self.encoder is None and encode is not None:
            raise ValueError(
                f"encode={_describe_callable(encode)} was passed but the run used no custom "
                f"encoder (noise {self.noise!r} with its own coding); drop encode="
            )
        if self.encoder is not None:
            if encode is None:
                raise ValueError(
                    f"the run's noise model used encode={self.encoder}, which a table cannot "
                    "store; pass the same encoder as encode="
                )
            got = _describe_callable(encode)
            if got != self.encoder:
                raise ValueError(
                    f"encode={got} differs from the run's encoder {self.encoder}; pass the "
                    "encoder the table was made with"
                )
        return NoiseModel(self.noise, self.sigma, self.n_steps, self.clamp, encode,
                          self.encode_rng, self.normals)

    def reproduce(self, classify, X, *, encode=None, scheduler=None, n_workers=2,
                  processes=True, progress=False):
        """Run :func:`certify_dataset` again with the recorded parameters.

        Parameters
        ----------
        classify : callable or ClassifierFactory
            The classifier of the run (files cannot hold it; :attr:`classifier` describes it).
        X : array_like, shape (len(self), n_features)
            The images of the run; checked against :attr:`data_sha256`.
        encode : callable, optional
            The run's custom encoder, when :attr:`encoder` is not None.
        scheduler, n_workers, processes, progress
            Where to run, as in :func:`certify_dataset` (the results do not depend on it).

        Returns
        -------
        CertificationTable
            Identical to this one (columns and parameters; ``scheduler``, ``n_workers``,
            ``processes`` and ``versions`` are those of the new run) when the classifier and
            the library versions are the same.

        Raises
        ------
        ValueError
            If a parameter needed to run again was not recorded, ``X`` is not the run's data,
            ``classify`` has a ``dtype`` other than the recorded :attr:`classifier_dtype`, or
            ``encode`` does not match.

        Warns
        -----
        UserWarning
            When a library version recorded with the run differs from this process's: the
            results may then differ (other rounding, other kernels), and the warning names them.
        """
        now = _versions()
        changed = {name: (old, now.get(name)) for name, old in self.versions.items()
                   if now.get(name) != old}
        if changed:
            import warnings

            warnings.warn(
                "reproducing with other library versions than the run's (name: (run, now)): "
                f"{changed}; results may differ", UserWarning, stacklevel=2)
        missing = [name for name in _NEEDED_TO_REPRODUCE if getattr(self, name) is None]
        if missing:
            raise ValueError(
                f"this table does not record {missing}, so the run cannot be reproduced; it was "
                "built by hand or read from a file written before the parameters were recorded"
            )
        if self.noise_chunk is not None and self.noise_chunk != NOISE_CHUNK:
            raise ValueError(
                f"the run used NOISE_CHUNK={self.noise_chunk}, this evsnn uses {NOISE_CHUNK}: "
                "the noise streams differ; reproduce with the evsnn version in versions="
                f"{self.versions!r}"
            )
        dtype = _classifier_dtype(classify)
        if None not in (dtype, self.classifier_dtype) and dtype != self.classifier_dtype:
            raise ValueError(
                f"classify has dtype {dtype} but the run's classifier had "
                f"{self.classifier_dtype}; pass the classifier the table was made with (its "
                "dtype changes the results)"
            )
        digest = data_digest(_data_iv(X, self.label, self.num_classes)[0])
        if digest != self.data_sha256:
            raise ValueError(
                f"X has SHA-256 {digest} but the run's images had {self.data_sha256} "
                f"({len(self)} x {self.n_features}); pass the images the table was made from"
            )
        rng = np.random.SeedSequence(self.seed_entropy, spawn_key=tuple(self.seed_spawn_key),
                                     pool_size=self.seed_pool_size)
        return certify_dataset(
            classify, X, self.label, self.noise_model(encode), n0=self.n0, n=self.n,
            alpha=self.alpha, num_classes=self.num_classes, rng=rng, scheduler=scheduler,
            n_workers=n_workers, processes=processes, chunk_size=self.chunk_size,
            batch_size=self.batch_size, progress=progress,
        )

    def to_csv(self, path):
        """Write the table as CSV, atomically (the old file stays whole on any error; a
        symbolic link is followed and kept, a read-only file or a folder that is not writable is
        refused with ``PermissionError``).

        Layout: the header ``index,label,prediction,correct,radius,p_a_lower``, then one
        comment line ``# key: value`` per parameter (:meth:`parameters`; the value as JSON),
        then one row per image. Floats are written with ``repr`` (JSON for parameters), so
        they read back exactly. The header comes first so that readers take it as the column
        names and skip the comments: ``numpy.genfromtxt(path, delimiter=",", names=True)``,
        ``numpy.loadtxt(path, delimiter=",", skiprows=1)``,
        ``pandas.read_csv(path, comment="#")``; :meth:`read_csv` reads the parameters too.
        Returns the path.
        """
        out = io.StringIO()
        out.write("index," + ",".join(_COLUMNS) + "\n")
        for key, value in self.parameters().items():
            out.write(f"# {key}: {json.dumps(value, allow_nan=False)}\n")
        # floats with repr, integers (0 and 1 for a bool) with str, as read_csv reads them
        columns = [(getattr(self, name), np.dtype(dtype).kind == "f")
                   for name, dtype in _COLUMNS.items()]
        for i in range(len(self)):
            cells = (repr(float(col[i])) if real else str(int(col[i])) for col, real in columns)
            out.write(f"{i}," + ",".join(cells) + "\n")
        return _write_text(path, out.getvalue())

    def to_json(self, path):
        """Write the parameters (:meth:`parameters`, as top-level keys) and the columns (under
        ``"columns"``) as JSON, atomically (the old file stays whole on any error; a symbolic link
        is followed and kept, a read-only file or a folder that is not writable is refused with
        ``PermissionError``). Returns the path."""
        doc = self.parameters()
        doc["columns"] = {name: getattr(self, name).tolist() for name in _COLUMNS}
        return _write_text(path, json.dumps(doc, indent=1, allow_nan=False) + "\n")

    @classmethod
    def _from_parts(cls, columns, params, path):
        fmt = params.get("format", TABLE_FORMAT)
        if fmt != TABLE_FORMAT:
            raise ValueError(
                f"{path} has format {fmt!r}; this evsnn reads {TABLE_FORMAT!r} (and files "
                "without a format); read it with the evsnn version that wrote it"
            )
        absent = [k for k in _REQUIRED if k not in params]
        if absent:
            raise ValueError(f"{path} lacks the parameters {absent}; it is not a certification "
                             "table written by CertificationTable.to_csv / to_json")
        unknown = sorted(set(params) - set(_PARAMETERS) - {"format", *_FORMERLY})
        if unknown:
            raise ValueError(f"{path} has unknown parameters {unknown}; it was written by "
                             "another evsnn version")
        rows = len(columns[next(iter(_COLUMNS))])
        if params.get("n_images") not in (None, rows):
            raise ValueError(f"{path} says n_images={params['n_images']!r} but holds {rows} "
                             "rows; the file was cut or edited")
        kw = {k: v for k, v in params.items() if k != "format" and k not in _FORMERLY}
        if kw.get("versions") is None:
            kw.pop("versions", None)
        lacking = [name for name in _COLUMNS if name not in columns]
        if lacking:
            raise ValueError(f"{path} lacks the columns {lacking}; it is not a certification "
                             "table written by CertificationTable.to_csv / to_json")
        extra = sorted(set(columns) - set(_COLUMNS))
        if extra:
            raise ValueError(f"{path} has unknown columns {extra}; expected {list(_COLUMNS)}")
        try:
            return cls(**{name: columns[name] for name in _COLUMNS}, **kw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path} holds an invalid table: {exc}") from exc

    @classmethod
    def read_json(cls, path):
        """Read a table written by :meth:`to_json` (also one written before the parameters
        after ``alpha`` were recorded: they then take their defaults, ``normals`` 'numpy')."""
        path = _path_iv(path)
        with open(path, encoding="utf-8") as fh:
            try:
                doc = json.load(fh)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path} is not valid JSON ({exc})") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("columns"), dict):
            raise ValueError(f"{path} is not a certification table written by "
                             "CertificationTable.to_json: it holds no object with 'columns'")
        columns = doc.pop("columns")
        return cls._from_parts(columns, doc, path)

    @classmethod
    def read_csv(cls, path):
        """Read a table written by :meth:`to_csv`, parameters included (a file without
        parameter lines needs at least ``noise, sigma, n_steps, n0, n, alpha``)."""
        path = _path_iv(path)
        params, rows = {}, []
        with open(path, encoding="utf-8", newline="") as fh:
            for line in fh:
                if line.startswith("#"):
                    key, sep, value = line[1:].strip().partition(": ")
                    if not sep:
                        raise ValueError(f"{path}: comment line {line.strip()!r} is not "
                                         "'# key: value'")
                    if key in params:  # an edited copy: which one would be the run's?
                        raise ValueError(f"{path}: the parameter {key!r} appears twice")
                    params[key] = _json_value(key, value)
                elif line.strip():
                    rows.append(line)
        reader = csv.DictReader(rows)
        if reader.fieldnames != ["index", *_COLUMNS]:
            raise ValueError(f"{path} has columns {reader.fieldnames}; expected "
                             f"{['index', *_COLUMNS]}")
        data = list(reader)
        # integers (0 and 1 for a bool) and floats written with repr
        parse = {"i": int, "b": lambda text: bool(int(text)), "f": float}
        columns = {name: [] for name in _COLUMNS}
        for i, r in enumerate(data):
            if None in r or None in r.values():  # cells past the header, or missing ones
                raise ValueError(f"{path}: data row {i} has {len(rows[i + 1].split(','))} "
                                 f"cells; the header has {len(reader.fieldnames)}")
            if r["index"] != str(i):
                raise ValueError(f"{path}: data row {i} has index {r['index']!r}; the rows "
                                 "must be numbered 0, 1, ... in order")
            for name, dtype in _COLUMNS.items():
                try:
                    columns[name].append(parse[np.dtype(dtype).kind](r[name]))
                except ValueError as exc:
                    raise ValueError(f"{path}: data row {i}, column {name!r}: {r[name]!r} is "
                                     f"not a {np.dtype(dtype).name} value") from exc
        return cls._from_parts(columns, params, path)


_FIELDS = fields(CertificationTable)
#: The per-image columns and their dtypes, in file order.
_COLUMNS = {f.name: f.metadata[_COLUMN] for f in _FIELDS if _COLUMN in f.metadata}
#: The fields that describe the run, in file order (after ``format``).
_PARAMETERS = tuple(f.name for f in _FIELDS if f.name not in _COLUMNS)
#: The parameters every file holds: those without a default.
_REQUIRED = tuple(f.name for f in _FIELDS if f.name not in _COLUMNS
                  and f.default is MISSING and f.default_factory is MISSING)
#: The parameters, beyond the required ones, that :meth:`CertificationTable.reproduce` needs.
_NEEDED_TO_REPRODUCE = tuple(f.name for f in _FIELDS if f.metadata.get(_REPRODUCE))
#: Parameters that files of this format held once and are read but not kept: ``n_images``
#: (always the number of rows; checked against it).
_FORMERLY = ("n_images",)


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


def _data_iv(X, y, num_classes, noise=None):
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
    if noise is not None and noise.clamp:
        # checked here for all rows, not by certify per image once earlier rows are certified
        out = np.flatnonzero((X.min(axis=1) < 0) | (X.max(axis=1) > 1))
        if out.size:
            row = X[out[0]]
            raise ValueError(
                f"X[{out[0]}] holds pixels in [{float(row.min())!r}, {float(row.max())!r}] "
                f"({out.size} of {X.shape[0]} rows leave [0, 1]), but the {noise.name} noise "
                "model clamps noisy pixels to [0, 1] (clamp=True); scale X to [0, 1], e.g. "
                "X / 255, or use clamp=False"
            )
    y = class_labels_iv("y", y, num_classes, batch=X.shape[0], classes_of="num_classes",
                        hint="one label per image of X; fix y or num_classes")
    return np.ascontiguousarray(X, dtype=np.float64), y


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


def _local_cluster(distributed, n_workers, processes):
    """The ``scheduler='local'`` cluster. Its worker processes are started by spawning, which
    re-imports the calling script: a script that calls :func:`certify_dataset` at module level
    starts a cluster inside every worker, and dask reports only "Nanny failed to start"."""
    try:
        return distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=processes,
            protocol="tcp://",  # threads would default to in-process comms
            host="127.0.0.1",
            dashboard_address=None,
        )
    except RuntimeError as exc:
        raise RuntimeError(
            f"scheduler='local' could not start its {n_workers} worker process(es) ({exc}). "
            "The workers re-import the script that calls certify_dataset: put the script's "
            "work under `if __name__ == \"__main__\":`, or pass processes=False (worker "
            "threads)"
        ) from exc


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
        Local cluster workers are processes (True) or threads (False). Worker processes
        re-import the calling script, so a script run with ``scheduler='local'`` keeps its
        work under ``if __name__ == "__main__":`` (otherwise the workers fail to start).
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
    X, y = _data_iv(X, y, num_classes, noise)
    scheduler = _scheduler_iv(scheduler)
    n_workers = _int_iv("n_workers", n_workers, 1)
    chunk_size = _int_iv("chunk_size", chunk_size, 1)
    batch_size = _int_iv("batch_size", batch_size, 1)
    processes = flag_iv("processes", processes)
    progress = flag_iv("progress", progress)
    root = _seed_iv(rng)
    # a SeedSequence keeps the entropy it was given: a NumPy integer too (JSON takes Python ints)
    entropy = root.entropy
    seed_entropy = (int(entropy) if isinstance(entropy, numbers.Integral)
                    else [int(v) for v in entropy])
    seed_spawn_key = tuple(int(v) for v in root.spawn_key)
    seeds = root.spawn(len(X))

    starts = range(0, len(X), chunk_size)
    tasks = [
        (classify, X[s : s + chunk_size], seeds[s : s + chunk_size], noise, n0, n, alpha,
         num_classes, batch_size)
        for s in starts
    ]
    sizes = [min(chunk_size, len(X) - s) for s in starts]
    bar = _progress_bar(progress, len(X), "certify_dataset", unit="image")
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
                with _local_cluster(distributed, n_workers, processes) as cluster, \
                        distributed.Client(cluster) as client:
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
        clamp=noise.clamp,
        encoder=noise.encoder,
        encode_rng=noise.encode_rng,
        normals=noise.normals,
        num_classes=num_classes,
        seed_entropy=seed_entropy,
        seed_spawn_key=seed_spawn_key,
        seed_pool_size=int(root.pool_size),
        batch_size=batch_size,
        chunk_size=chunk_size,
        noise_chunk=NOISE_CHUNK,
        classifier=_describe_classifier(classify),
        classifier_dtype=_classifier_dtype(classify),
        n_features=int(X.shape[1]),
        data_sha256=data_digest(X),
        scheduler=scheduler,
        n_workers=n_workers if scheduler == "local" else None,
        processes=processes if scheduler == "local" else None,
        versions=_versions(),
    )
