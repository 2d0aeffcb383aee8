"""Saving and loading trained models: one ``.npz`` file holding the arrays and a JSON description.

The file is a NumPy ``.npz`` archive with

* ``weight_<l>`` (and ``bias_<l>``, ``dlif_factors_<l>`` where a layer has them), in the dtype
  they had;
* ``meta``: a JSON string (a 0-d unicode array, readable without pickle) with the format name and
  version, the model kind (``"ann"`` or ``"network"``), each layer's shape, neuron kind and
  parameters, the convention (if given) and free-form metadata.

A :class:`~evsnn.clock.conv.ConvNetwork` (kind ``"conv_network"``, version 4) is described by its
``input_shape`` and a tree of layers: each ``{"type": "Conv2d", "params": {...}, "arrays":
{name: {"shape": [...], "dtype": "<f4"}}}`` (a :class:`~evsnn.clock.conv.Residual` holds
``body``, ``shortcut`` and ``neuron`` instead of arrays). Its arrays are named by layer path and
field, the paths of :func:`evsnn.train.rebuild_conv` and the simulation's records:
``layers[0].weight``, ``layers[3].body[1].running_var``, ``layers[3].neuron.dlif_factors``.

Files are written atomically (:func:`_atomic_write`, which :mod:`certify.distributed` uses too):
the archive goes to a temporary file in the target directory, is flushed to disk and then renamed
over ``path`` with :func:`os.replace`, so ``path`` holds either the old content or the complete new
one, never a half-written file. A symbolic link is followed (the file it points to is replaced and
the link kept), and an existing read-only file or a directory that is not writable is refused
before anything is written. An existing target that is not a regular file (a FIFO, a device such
as ``/dev/null``, ``/dev/stdout`` on a pipe) is written in place, as ``open(path, "wb")`` does.
:func:`load` validates everything (format, version, neuron kinds and their parameters, missing or
unexpected arrays, shapes) and raises ``ValueError`` naming the problem; nothing is unpickled.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import stat
import uuid
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from evsnn.ann import ANN
from evsnn.clock import Dense, Network
from evsnn.clock.conv import LAYER_TYPES, ConvNetwork, Neuron, Residual
from evsnn.conventions import Convention, get_convention
from evsnn.params import DLIF, LIF, Readout, TraceLIF

__all__ = ["save", "load", "load_saved", "SavedModel", "FORMAT", "VERSION", "NEURON_KINDS"]

FORMAT = "evsnn-model"
VERSION = 5
# Version 1 files record the convention's sigmoid_scale, but evsnn did not read it then: their
# gradients were computed with the authors' code scale whatever the file says (issue 3 wired it
# to the default bptt surrogate together with version 2). Version 3 adds a layer's
# ``input_trace``; a version 2 reader would have dropped it silently, so it refuses version 3.
# Version 4 adds the "conv_network" kind; a version 3 reader refuses it by its version, so
# every file is written as version 4 (kind "conv_network" needs version 4 or later). Version 5
# records the convention's ``surrogate`` (bptt's default surrogate), which a version 4 reader
# would refuse as an unknown field; a file of versions 1-4 reads as "sigmoid", the default its
# gradients were computed with under every preset.
_READABLE_VERSIONS = (1, 2, 3, 4, 5)
_CONV_KIND = "conv_network"
# Per ConvNetwork layer type: its fields stored as JSON parameters, its array fields always
# stored, and those stored when not None (None again on load). Residual is a tree of layers.
# tests/test_io_conv.py holds this table to the layers' dataclass fields.
_CONV_LAYERS = {
    "Conv2d": (("stride", "padding", "groups"), ("weight",), ("bias",)),
    "Linear": ((), ("weight",), ("bias",)),
    "AvgPool2d": (("kernel_size", "stride", "padding"), (), ()),
    "MaxPool2d": (("kernel_size", "stride", "padding"), (), ()),
    "Flatten": ((), (), ()),
    "BatchNorm2d": (("eps", "momentum"), ("running_mean", "running_var", "weight", "bias"), ()),
    "Dropout": (("p", "shared_over_time"), (), ()),
    "InputTrace": (("c",), (), ()),
    "Neuron": (("neuron", "input_scale"), (), ("dlif_factors",)),
}
_CONV_TYPES = {t.__name__: t for t in LAYER_TYPES}
NEURON_KINDS = {"LIF": LIF, "TraceLIF": TraceLIF, "DLIF": DLIF, "Readout": Readout}


@dataclass(frozen=True)
class SavedModel:
    """Everything :func:`load_saved` reads: the ``model`` (ANN, Network or ConvNetwork), the
    ``convention`` saved with it (or None) and the free-form ``metadata`` dict."""

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
    elif isinstance(model, ConvNetwork):
        kind = _CONV_KIND
        layers = _conv_describe(model.layers, "layers", arrays)
    else:
        raise TypeError(
            f"model must be an evsnn.ann.ANN or an evsnn.clock.Network or "
            f"evsnn.clock.conv.ConvNetwork, got {type(model).__name__}; for a conversion result "
            "save its .network"
        )
    return kind, layers, arrays


def _json_param(v):
    """A layer parameter as JSON: pairs as lists, a neuron record as {"kind", "params"}."""
    if isinstance(v, tuple(NEURON_KINDS.values())):
        return _neuron_json(v)
    return list(v) if isinstance(v, tuple) else v


def _conv_describe(layers, prefix, arrays):
    """The JSON descriptions of ConvNetwork ``layers`` at ``prefix``; their arrays go into
    ``arrays`` under ``<path>.<field>``."""
    return [_conv_layer_json(layer, f"{prefix}[{i}]", arrays) for i, layer in enumerate(layers)]


def _conv_layer_json(layer, path, arrays):
    name = type(layer).__name__
    if isinstance(layer, Residual):
        return {
            "type": name, "params": {"connection": layer.connection},
            "body": _conv_describe(layer.body, path + ".body", arrays),
            "shortcut": _conv_describe(layer.shortcut, path + ".shortcut", arrays),
            "neuron": None if layer.neuron is None
            else _conv_layer_json(layer.neuron, path + ".neuron", arrays),
        }
    fields, required, optional = _CONV_LAYERS[name]
    described = {}
    for f in required + optional:
        a = getattr(layer, f)
        if a is not None:
            arrays[f"{path}.{f}"] = a
            described[f] = {"shape": list(a.shape), "dtype": a.dtype.str}
    return {"type": name, "params": {f: _json_param(getattr(layer, f)) for f in fields},
            "arrays": described}


def save(model, path, *, convention=None, metadata=None) -> str:
    """Write ``model`` (ANN, Network or ConvNetwork) to ``path`` atomically (see the module
    docstring).

    Parameters
    ----------
    model : ANN, Network or ConvNetwork
        Everything the model holds is stored: every array in its dtype, every layer parameter
        (a ConvNetwork's residual nesting, batch-norm running statistics, dropout probability,
        pooling geometry, neuron records, trace factors) and a ConvNetwork's ``input_shape``.
        The model comes back with :func:`load`; it simulates bit for bit as the saved one.
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
        ``model`` is not an ANN, Network or ConvNetwork, or ``metadata`` is not a dict of JSON
        values with string keys.
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

    A ConvNetwork keeps every layer, its arrays named by layer path:

    >>> from evsnn.clock.conv import Conv2d, ConvNetwork, Dropout, Neuron
    >>> net = ConvNetwork([Conv2d(np.ones((2, 1, 3, 3), np.float32), padding=1), Dropout(0.25),
    ...                    Neuron()], input_shape=(1, 4, 4))
    >>> _ = save(net, p)
    >>> back = load(p)
    >>> back.layers[0].weight.dtype, back.layers[0].padding, back.layers[1].p, back.input_shape
    (dtype('float32'), (1, 1), 0.25, (1, 4, 4))
    >>> with np.load(p) as z:
    ...     sorted(z.files)
    ['layers[0].weight', 'meta']
    """
    kind, layers, arrays = _describe(model)
    conv = None if convention is None else get_convention(convention).as_dict()
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    meta = {
        "format": FORMAT, "version": VERSION, "kind": kind, "layers": layers,
        "convention": conv, "metadata": {} if metadata is None else metadata,
    }
    if kind == _CONV_KIND:
        meta["input_shape"] = list(model.input_shape)
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

    An existing ``path`` that is neither a regular file nor a directory (a FIFO, a character
    device such as ``/dev/null``, ``/dev/stdout`` when it is a pipe) is opened and written in
    place (``open(path, "wb")``): renaming would replace it with a regular file. The content is
    built in memory first, so an error in ``write`` sends nothing to it.
    """
    path = os.fsdecode(os.fspath(path))
    try:
        kind = os.stat(path).st_mode  # follows links: /dev/stdout -> /proc/self/fd/1 -> a pipe
    except OSError:  # missing, a dangling link or a loop: the checks below name it
        kind = None
    if kind is not None and not stat.S_ISREG(kind) and not stat.S_ISDIR(kind):
        buffer = io.BytesIO()
        write(buffer)  # whole first: a failing write sends nothing
        with open(path, "wb") as fh:
            fh.write(buffer.getbuffer())
        return
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


def _json_constant(name):
    """Python's json reads NaN, Infinity and -Infinity, which JSON lacks and save never writes
    (``allow_nan=False``, every version): metadata holding them would load but not re-save."""
    raise ValueError(f"{name} is not a JSON number; save writes finite numbers only: the file was "
                     "edited or damaged (write a finite number, or null, there)")


def _json_float(text):
    """A JSON number as a float, refused when it overflows to infinity (1e999)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text} overflows to {value}; save writes finite numbers "
                         "only: the file was edited or damaged (write a finite number there)")
    return value


def _read(path):
    path = os.fsdecode(os.fspath(path))  # bytes paths too, as in save (and as str in messages)
    if os.path.isdir(path):
        inside = os.path.join(path, "model.npz")
        raise _bad(path, "a folder, not an evsnn model file; " + (
            f"load the model of this run folder, {inside!r}" if os.path.isfile(inside)
            else "pass the path of a .npz written by evsnn.io.save (or 'evsnn train')"))
    try:
        fid = open(path, "rb")  # ours to close: np.load leaks it when zipfile raises
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _bad(path, f"not an evsnn model file (not a readable .npz archive: {exc})") from exc
    with fid:
        try:
            archive = np.load(fid, allow_pickle=False)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
            # EOFError: an empty file; NotImplementedError: zipfile's answer to a damaged
            # "version needed" field
            raise _bad(path, f"not an evsnn model file (not a readable .npz archive: "
                             f"{exc})") from exc
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise _bad(path, "not an evsnn model file (a single .npy array, not an .npz archive)")
        with archive:
            if "meta" not in archive.files:
                raise _bad(path, "not an evsnn model file: the 'meta' entry is missing")
            text = _entry(path, archive, "meta")
            try:
                meta = json.loads(str(text[()]), parse_constant=_json_constant,
                                  parse_float=_json_float)
            except (json.JSONDecodeError, ValueError, RecursionError) as exc:
                # RecursionError: nesting deeper than the parser's stack
                raise _bad(path, f"the 'meta' entry is not valid JSON ({exc})") from exc
            arrays = {k: _entry(path, archive, k) for k in archive.files if k != "meta"}
    return path, meta, arrays


def _entry(path, archive, key):
    """One array of the archive; a damaged entry (bad CRC, truncated data) or an object array
    (which would need pickle) is a ValueError naming the file and the entry."""
    try:
        return archive[key]
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError,
            NotImplementedError) as exc:
        raise _bad(path, f"the entry {key!r} cannot be read ({exc}); the file is damaged, or "
                         "holds an object array (evsnn files hold plain arrays, never pickles)"
                   ) from exc


def _neuron_from_json(path, where, spec):
    """The neuron record of ``spec`` ({"kind", "params"}); ``where`` names the layer in errors."""
    if not isinstance(spec, dict) or "kind" not in spec:
        raise _bad(path, f"{where}: the neuron description has no 'kind'")
    kind = spec["kind"]
    cls = NEURON_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise _bad(
            path, f"{where}: unknown neuron kind {kind!r}; known kinds: {sorted(NEURON_KINDS)}"
        )
    params = spec.get("params", {})
    if not isinstance(params, dict):
        raise _bad(path, f"{where}: the neuron parameters {params!r} are not an object "
                         "({name: value, ...})")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - names)
    if unknown:
        raise _bad(path, f"{where}: {kind} has no parameter(s) {unknown}; it takes {sorted(names)}")
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise _bad(path, f"{where}: invalid {kind} parameters ({exc})") from exc


def _array(path, arrays, key, shape=None):
    if key not in arrays:
        raise _bad(path, f"the array {key!r} is missing")
    a = arrays.pop(key)
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise _bad(path, f"{key!r} has shape {a.shape} but the description says {tuple(shape)}")
    return a


def _conv_model(path, meta, arrays):
    """The ConvNetwork of a ``"conv_network"`` description (arrays popped): every layer built by
    its own constructor, the whole chained by ConvNetwork's shape check."""
    if "input_shape" not in meta:
        raise _bad(path, "the description has no 'input_shape' entry (the feature shape of one "
                         "sample at one step, e.g. [3, 32, 32])")
    layers = _conv_layers(path, meta["layers"], "layers", arrays)
    try:
        return ConvNetwork(layers, meta["input_shape"])
    except (TypeError, ValueError) as exc:
        raise _bad(path, f"{exc}; the layers do not fit together: the file was edited or damaged, "
                         "re-save the model") from exc


def _conv_layers(path, specs, where, arrays):
    if not isinstance(specs, list):
        raise _bad(path, f"{where}: {specs!r} is not a list of layer descriptions")
    return tuple(_conv_layer(path, spec, f"{where}[{i}]", arrays) for i, spec in enumerate(specs))


def _exact_keys(path, where, what, given, expected):
    """Refuse ``given`` (the ``what`` of layer ``where``) unless it is an object whose keys are
    exactly ``expected``."""
    if not isinstance(given, dict):
        raise _bad(path, f"{where}: the {what} {given!r} are not an object ({{name: value}})")
    if set(given) != set(expected):
        missing, extra = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
        raise _bad(path, f"{where}: the {what} must be {sorted(expected)}; missing {missing}, "
                         f"unexpected {extra} (a file of another evsnn version, or edited)")


def _conv_layer(path, spec, where, arrays):
    """One layer of a ConvNetwork description at layer path ``where``."""
    if not isinstance(spec, dict):
        raise _bad(path, f"{where}: the layer description {spec!r} is not an object "
                         '({"type": ..., "params": ..., ...})')
    name = spec.get("type")
    cls = _CONV_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise _bad(path, f"{where}: unknown layer type {name!r}; known types: "
                         f"{sorted(_CONV_TYPES)} (a file of a newer evsnn, or edited)")
    residual = cls is Residual
    _exact_keys(path, where, "entries", spec, ("type", "params") + (
        ("body", "shortcut", "neuron") if residual else ("arrays",)))
    fields, required, optional = (("connection",), (), ()) if residual else _CONV_LAYERS[name]
    params = spec["params"]
    _exact_keys(path, where, f"{name} parameters", params, fields)
    kwargs = dict(params)
    if residual:
        kwargs["body"] = _conv_layers(path, spec["body"], where + ".body", arrays)
        kwargs["shortcut"] = _conv_layers(path, spec["shortcut"], where + ".shortcut", arrays)
        neuron = spec["neuron"]
        if neuron is not None:
            neuron = _conv_layer(path, neuron, where + ".neuron", arrays)
            if not isinstance(neuron, Neuron):
                raise _bad(path, f"{where}.neuron: a {type(neuron).__name__}, but a residual "
                                 "block's neuron is a Neuron layer (or null)")
        kwargs["neuron"] = neuron
    else:
        described = spec["arrays"]
        if not isinstance(described, dict):
            raise _bad(path, f"{where}: the arrays {described!r} are not an object")
        missing = sorted(set(required) - set(described))
        unknown = sorted(set(described) - set(required) - set(optional))
        if missing or unknown:
            raise _bad(path, f"{where}: a {name} has the arrays {list(required)}"
                             + (f" and optionally {list(optional)}" if optional else "")
                             + f"; missing {missing}, unexpected {unknown}")
        for field, desc in described.items():
            kwargs[field] = _conv_array(path, arrays, f"{where}.{field}", desc)
        if name == "Neuron":
            kwargs["neuron"] = _neuron_from_json(path, where, params["neuron"])
    try:  # the layer's own validation (channels, sizes, value ranges, DLIF factors)
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise _bad(path, f"{where}: invalid {name} ({exc})") from exc


def _conv_array(path, arrays, key, desc):
    """The array ``key`` as described by ``desc`` ({"shape", "dtype"}: a float dtype)."""
    _exact_keys(path, key, "array description", desc, ("shape", "dtype"))
    shape, dtype = desc["shape"], desc["dtype"]
    if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
        raise _bad(path, f"{key}: the shape {shape!r} is not a list of non-negative integers")
    try:
        dtype = np.dtype(dtype) if isinstance(dtype, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind != "f":
        raise _bad(path, f"{key}: the dtype {desc['dtype']!r} is not a float dtype (evsnn saves "
                         "layer arrays as floats, e.g. '<f8')")
    a = _array(path, arrays, key, shape)
    if a.dtype != dtype:
        raise _bad(path, f"{key!r} holds {a.dtype} numbers but the description says {dtype}; "
                         "the file was edited or damaged")
    return a


def _dense_model(path, kind, layers, arrays):
    """The ANN or Network of a ``"ann"`` / ``"network"`` description (arrays popped)."""
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
        neuron = _neuron_from_json(path, f"layer {i}", spec["neuron"])
        f = _array(path, arrays, f"dlif_factors_{i}") if spec.get("dlif_factors") else None
        try:  # Dense validates input_trace (a number in (0, 1] or null)
            built.append(Dense(w, neuron, bias=b, dlif_factors=f,
                               input_trace=spec.get("input_trace")))
        except (TypeError, ValueError) as exc:
            raise _bad(path, f"layer {i}: {exc}") from exc
    try:
        if kind == "ann":
            return ANN(weights, biases if any(b is not None for b in biases) else None)
        return Network(tuple(built))
    except (TypeError, ValueError) as exc:
        raise _bad(path, str(exc)) from exc


def load_saved(path) -> SavedModel:
    """Read a file written by :func:`save`: model, convention and metadata (validated).

    A description without a ``metadata`` entry reads as ``{}`` (files of every version); one
    whose ``metadata`` is not an object (a list, a string, null, ...) raises ValueError naming
    the file, as every other invalid entry does; so does a description holding NaN, Infinity
    or a number past the float range (1e999), which JSON lacks and save never writes.
    """
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
    if kind not in ("ann", "network", _CONV_KIND):
        raise _bad(path, f"unknown model kind {kind!r}; expected 'ann', 'network' or "
                         f"{_CONV_KIND!r}")
    if kind == _CONV_KIND and version < 4:
        raise _bad(path, f"model kind {kind!r} needs format version 4 or later, the file says "
                         f"{version}; re-save the model with evsnn.io.save")
    if not isinstance(layers, list) or not layers:
        raise _bad(path, "the description lists no layers")
    if kind == _CONV_KIND:
        model = _conv_model(path, meta, arrays)
    else:
        model = _dense_model(path, kind, layers, arrays)
    if arrays:
        raise _bad(path, f"unexpected arrays {sorted(arrays)} not in the description")
    conv = meta.get("convention")
    if conv is not None:
        if version == 1 and isinstance(conv, dict) and "sigmoid_scale" in conv:
            # the scale a version-1 model's gradients were actually computed with
            conv = dict(conv, sigmoid_scale="code")
        if version < 5 and isinstance(conv, dict):
            # before version 5 bptt's default surrogate was the sigmoid under every preset
            conv = dict(conv, surrogate="sigmoid")
        try:
            conv = Convention(**conv)
        except (TypeError, ValueError) as exc:
            raise _bad(path, f"invalid convention ({exc})") from exc
    # every version of save writes the key, but a description without it has always read as {}
    metadata = meta.get("metadata", {})
    if not isinstance(metadata, dict):
        raise _bad(path, f"the metadata {metadata!r} is not an object ({{name: value, ...}}); "
                         "save writes a dict ({} for metadata=None): the file was edited or "
                         "damaged — re-save the model with evsnn.io.save")
    return SavedModel(model, conv, metadata)


def load(path):
    """Read the model (ANN, Network or ConvNetwork) of a file written by :func:`save`
    (validated; see :func:`load_saved` for the convention and metadata)."""
    return load_saved(path).model
