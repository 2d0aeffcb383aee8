"""Saving and loading trained models: one ``.npz`` file holding the arrays and a JSON description.

The file is a NumPy ``.npz`` archive with

* ``weight_<l>`` (and ``bias_<l>``, ``dlif_factors_<l>`` where a layer has them), in the dtype
  they had;
* ``meta``: a JSON string (a 0-d unicode array, readable without pickle) with the format name and
  version, the model kind (``"ann"`` or ``"network"``), each layer's shape, neuron kind and
  parameters, the convention (if given) and free-form metadata.

Files are written atomically (:func:`_atomic_write`, which :mod:`certify.distributed` uses too):
the archive goes to a temporary file in the target directory, is flushed to disk and then renamed
over ``path`` with :func:`os.replace`, so ``path`` holds either the old content or the complete new
one, never a half-written file. A symbolic link is followed (the file it points to is replaced and
the link kept), and an existing read-only file or a directory that is not writable is refused
before anything is written. :func:`load` validates everything (format, version, neuron kinds and
their parameters, missing or unexpected arrays, shapes) and raises ``ValueError`` naming the
problem; nothing is unpickled.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import uuid
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from evsnn.ann import ANN
from evsnn.clock import Dense, Network
from evsnn.conventions import Convention, get_convention
from evsnn.params import DLIF, LIF, Readout, TraceLIF

__all__ = ["save", "load", "load_saved", "SavedModel", "FORMAT", "VERSION", "NEURON_KINDS"]

FORMAT = "evsnn-model"
VERSION = 3
# Version 1 files record the convention's sigmoid_scale, but evsnn did not read it then: their
# gradients were computed with the authors' code scale whatever the file says (issue 3 wired it
# to the default bptt surrogate together with version 2). Version 3 adds a layer's
# ``input_trace``; a version 2 reader would have dropped it silently, so it refuses version 3.
_READABLE_VERSIONS = (1, 2, 3)
NEURON_KINDS = {"LIF": LIF, "TraceLIF": TraceLIF, "DLIF": DLIF, "Readout": Readout}


@dataclass(frozen=True)
class SavedModel:
    """Everything :func:`load_saved` reads: the ``model`` (ANN or Network), the ``convention``
    saved with it (or None) and the free-form ``metadata`` dict."""

    model: object
    convention: Convention | None
    metadata: dict


def _neuron_json(neuron):
    kind = type(neuron).__name__
    if kind not in NEURON_KINDS:  # pragma: no cover - Dense admits only these kinds
        raise TypeError(f"cannot save a {kind} neuron; known kinds: {sorted(NEURON_KINDS)}")
    return {"kind": kind, "params": dataclasses.asdict(neuron)}


def _describe(model):
    arrays, layers = {}, []
    if isinstance(model, ANN):
        kind = "ann"
        for i, (w, b) in enumerate(zip(model.weights, model.biases)):
            arrays[f"weight_{i}"] = w
            if b is not None:
                arrays[f"bias_{i}"] = b
            layers.append({"shape": list(w.shape), "bias": b is not None})
    elif isinstance(model, Network):
        kind = "network"
        for i, layer in enumerate(model.layers):
            arrays[f"weight_{i}"] = layer.weight
            if layer.bias is not None:
                arrays[f"bias_{i}"] = layer.bias
            if layer.dlif_factors is not None:
                arrays[f"dlif_factors_{i}"] = layer.dlif_factors
            layers.append({
                "shape": list(layer.weight.shape),
                "bias": layer.bias is not None,
                "dlif_factors": layer.dlif_factors is not None,
                "neuron": _neuron_json(layer.neuron),
                "input_trace": layer.input_trace,
            })
    else:
        raise TypeError(
            f"model must be an evsnn.ann.ANN or an evsnn.clock.Network, got "
            f"{type(model).__name__}; for a conversion result save its .network"
        )
    return kind, layers, arrays


def save(model, path, *, convention=None, metadata=None) -> str:
    """Write ``model`` (ANN or Network) to ``path`` atomically (see the module docstring).

    Parameters
    ----------
    model : ANN or Network
    path : str, bytes or os.PathLike
        The file to write, used exactly as given (no ``.npz`` suffix is appended); an existing
        file is replaced (atomically, keeping its permissions). A symbolic link is followed: the
        file it points to is written (also when it does not exist yet) and the link kept.
    convention : Convention or preset name, optional
        Stored with the model (all fields), returned by :func:`load_saved`.
    metadata : dict, optional
        JSON-serialisable notes (training settings, accuracies, ...) with string keys; tuples
        come back as lists.

    Returns
    -------
    str
        The path written (``path`` as given, not a link's target).

    Raises
    ------
    TypeError
        ``model`` is not an ANN or Network, or ``metadata`` is not a dict of JSON values with
        string keys.
    FileNotFoundError
        The directory of ``path`` (of a link's target) does not exist.
    PermissionError
        ``path`` (a link's target) is an existing file without its owner's write bit
        (read-only, e.g. ``chmod 444``), or its directory is not writable; nothing is written.
        ``chmod u+w`` it or choose another path.
    IsADirectoryError
        ``path`` (a link's target) is a directory; nothing is written.

    Examples
    --------
    >>> import tempfile, os
    >>> from evsnn.ann import ANN
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "m.npz")
    >>> _ = save(ANN([np.eye(2)]), p, metadata={"note": "identity"})
    >>> load(p).weights[0].tolist(), load_saved(p).metadata
    ([[1.0, 0.0], [0.0, 1.0]], {'note': 'identity'})
    """
    kind, layers, arrays = _describe(model)
    conv = None if convention is None else get_convention(convention).as_dict()
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    meta = {
        "format": FORMAT, "version": VERSION, "kind": kind, "layers": layers,
        "convention": conv, "metadata": {} if metadata is None else metadata,
    }
    try:
        text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"metadata must be JSON-serialisable (str, numbers, lists, dicts; finite floats): {exc}"
        ) from exc
    _string_keys(metadata, "metadata")
    path = os.fsdecode(os.fspath(path))  # bytes paths too, as open() takes them
    _atomic_write(path, lambda fh: np.savez(fh, meta=np.array(text), **arrays))
    return path


def _string_keys(value, where):
    """Refuse a dict key that is not a string anywhere in ``value``: ``json.dumps`` turns 1,
    0.5, True and None into "1", "0.5", "true" and "null", so the metadata loaded back would not
    be the metadata saved."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"metadata keys must be strings, got {k!r} ({type(k).__name__}) in {where}; "
                    f"JSON would store it as a string: use str keys, e.g. {str(k)!r}"
                )
            _string_keys(v, f"{where}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _string_keys(v, f"{where}[{i}]")


def _atomic_write(path, write):
    """Write a file atomically: ``write(fh)`` fills a new temporary file (binary) beside the
    file, which is flushed to disk and renamed over it with :func:`os.replace`, so readers see
    the old file or the whole new one, never part of one. On any error the temporary file is
    removed and the file is left as it was.

    A symbolic link ``path`` is followed to its final target, which is the file written (the
    temporary file goes to the target's directory), so the link survives; a dangling link
    writes the file it names. An existing file without its owner's write bit (``chmod 444``)
    and a directory in which the caller cannot create a file are refused with
    ``PermissionError``, a directory ``path`` with ``IsADirectoryError``, before anything is
    written. The file gets the permissions ``open(path, "w")`` would give it: an existing
    file's, else 0o666 minus the umask.
    """
    path = os.fsdecode(os.fspath(path))
    # renaming over a link would replace the link itself with a regular file
    target = os.path.realpath(path)
    shown = f"{path!r} (a symbolic link to {target!r})" if os.path.islink(path) else repr(path)
    directory, name = os.path.split(target)
    if not os.path.isdir(directory):  # else the error would name the temporary file
        raise FileNotFoundError(
            f"cannot write {shown}: the directory {directory!r} does not exist; create it first"
        )
    # else creating the temporary file fails with the OS's message naming it, not the path
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(
            f"cannot write {shown}: the directory {directory!r} is not writable (no file can "
            "be created in it); make it writable (chmod u+w) or choose another path"
        )
    if os.path.isdir(target):  # else found only by os.replace, after the temporary file
        raise IsADirectoryError(
            f"cannot write {shown}: it is a directory; pass a file path inside it, e.g. "
            f"{os.path.join(path, 'model.npz')!r}"
        )
    try:
        mode = os.stat(target).st_mode  # a link loop is an OSError here, before any write
    except FileNotFoundError:
        mode = None
    # the owner's write bit rather than os.access, which is always true for root: rename
    # ignores the file's mode, and a file made read-only is meant to be kept, also by root
    if mode is not None and stat.S_ISREG(mode) and not mode & stat.S_IWUSR:
        raise PermissionError(
            f"cannot write {shown}: the file is read-only (mode {stat.S_IMODE(mode):#o}); make "
            "it writable (chmod u+w) or choose another path"
        )
    # at most 48 characters of the name (192 bytes in UTF-8) beside the 38 added bytes: a valid
    # name must not become one past the file system's 255-byte limit
    tmp = os.path.join(directory, f".{name[:48]}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as fh:  # created 0o666 minus the umask, like open(path, "w")
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, stat.S_IMODE(mode) & 0o777)  # overwriting keeps the permissions
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _bad(path, problem):
    return ValueError(f"{path}: {problem}")


def _read(path):
    path = os.fspath(path)
    if os.path.isdir(path):
        inside = os.path.join(path, "model.npz")
        raise _bad(path, "a folder, not an evsnn model file; " + (
            f"load the model of this run folder, {inside!r}" if os.path.isfile(inside)
            else "pass the path of a .npz written by evsnn.io.save (or 'evsnn train')"))
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise _bad(path, f"not an evsnn model file (not a readable .npz archive: {exc})") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _bad(path, "not an evsnn model file (a single .npy array, not an .npz archive)")
    with archive:
        if "meta" not in archive.files:
            raise _bad(path, "not an evsnn model file: the 'meta' entry is missing")
        text = _entry(path, archive, "meta")
        try:
            meta = json.loads(str(text[()]))
        except (json.JSONDecodeError, ValueError) as exc:
            raise _bad(path, f"the 'meta' entry is not valid JSON ({exc})") from exc
        arrays = {k: _entry(path, archive, k) for k in archive.files if k != "meta"}
    return path, meta, arrays


def _entry(path, archive, key):
    """One array of the archive; a damaged entry (bad CRC, truncated data) or an object array
    (which would need pickle) is a ValueError naming the file and the entry."""
    try:
        return archive[key]
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as exc:
        raise _bad(path, f"the entry {key!r} cannot be read ({exc}); the file is damaged, or "
                         "holds an object array (evsnn files hold plain arrays, never pickles)"
                   ) from exc


def _neuron_from_json(path, i, spec):
    if not isinstance(spec, dict) or "kind" not in spec:
        raise _bad(path, f"layer {i}: the neuron description has no 'kind'")
    kind = spec["kind"]
    cls = NEURON_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise _bad(
            path, f"layer {i}: unknown neuron kind {kind!r}; known kinds: {sorted(NEURON_KINDS)}"
        )
    params = spec.get("params", {})
    if not isinstance(params, dict):
        raise _bad(path, f"layer {i}: the neuron parameters {params!r} are not an object "
                         "({name: value, ...})")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - names)
    if unknown:
        raise _bad(path, f"layer {i}: {kind} has no parameter(s) {unknown}; it takes {sorted(names)}")
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise _bad(path, f"layer {i}: invalid {kind} parameters ({exc})") from exc


def _array(path, arrays, key, shape=None):
    if key not in arrays:
        raise _bad(path, f"the array {key!r} is missing")
    a = arrays.pop(key)
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise _bad(path, f"{key!r} has shape {a.shape} but the description says {tuple(shape)}")
    return a


def load_saved(path) -> SavedModel:
    """Read a file written by :func:`save`: model, convention and metadata (validated)."""
    path, meta, arrays = _read(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _bad(path, f"not an evsnn model file (format {meta.get('format')!r} "
                         f"is not {FORMAT!r})" if isinstance(meta, dict) else "meta is not a dict")
    version = meta.get("version")
    if type(version) is not int or version not in _READABLE_VERSIONS:  # not True, not 2.0
        raise _bad(path, f"format version {version!r} is not supported "
                         f"(this evsnn reads versions {list(_READABLE_VERSIONS)})")
    for key in ("kind", "layers"):
        if key not in meta:
            raise _bad(path, f"the description has no {key!r} entry")
    kind, layers = meta["kind"], meta["layers"]
    if kind not in ("ann", "network"):
        raise _bad(path, f"unknown model kind {kind!r}; expected 'ann' or 'network'")
    if not isinstance(layers, list) or not layers:
        raise _bad(path, "the description lists no layers")
    weights, biases, built = [], [], []
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict) or "shape" not in spec:
            raise _bad(path, f"layer {i}: the description has no 'shape'")
        shape = spec["shape"]
        if not (isinstance(shape, list) and len(shape) == 2
                and all(type(n) is int and n >= 1 for n in shape)):
            raise _bad(path, f"layer {i}: the shape {shape!r} is not a list of two positive "
                             "integers [n_out, n_in]")
        for flag in ("bias", "dlif_factors"):
            if not isinstance(spec.get(flag, False), bool):
                raise _bad(path, f"layer {i}: {flag!r} must be true or false, got {spec[flag]!r}")
        w = _array(path, arrays, f"weight_{i}", spec["shape"])
        b = _array(path, arrays, f"bias_{i}", (w.shape[0],)) if spec.get("bias") else None
        if kind == "ann":
            weights.append(w)
            biases.append(b)
            continue
        if "neuron" not in spec:
            raise _bad(path, f"layer {i}: the description has no 'neuron'")
        neuron = _neuron_from_json(path, i, spec["neuron"])
        f = _array(path, arrays, f"dlif_factors_{i}") if spec.get("dlif_factors") else None
        try:  # Dense validates input_trace (a number in (0, 1] or null)
            built.append(Dense(w, neuron, bias=b, dlif_factors=f,
                               input_trace=spec.get("input_trace")))
        except (TypeError, ValueError) as exc:
            raise _bad(path, f"layer {i}: {exc}") from exc
    if arrays:
        raise _bad(path, f"unexpected arrays {sorted(arrays)} not in the description")
    try:
        if kind == "ann":
            model = ANN(weights, biases if any(b is not None for b in biases) else None)
        else:
            model = Network(tuple(built))
    except (TypeError, ValueError) as exc:
        raise _bad(path, str(exc)) from exc
    conv = meta.get("convention")
    if conv is not None:
        if version == 1 and isinstance(conv, dict) and "sigmoid_scale" in conv:
            # the scale a version-1 model's gradients were actually computed with
            conv = dict(conv, sigmoid_scale="code")
        try:
            conv = Convention(**conv)
        except (TypeError, ValueError) as exc:
            raise _bad(path, f"invalid convention ({exc})") from exc
    metadata = meta.get("metadata", {})
    return SavedModel(model, conv, metadata if isinstance(metadata, dict) else {})


def load(path):
    """Read the model (ANN or Network) of a file written by :func:`save` (validated; see
    :func:`load_saved` for the convention and metadata)."""
    return load_saved(path).model
