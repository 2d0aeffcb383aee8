"""The argument checks every module shares: a real number, an integer, a flag, pixel values.

A leaf module (standard library and NumPy only, nothing from evsnn), so that any module, the
records of :mod:`evsnn.params` and the leaf :mod:`evsnn.attacks._iv` included, can import it.
Each check returns the value as a plain Python ``float``/``int``/``bool`` and raises
``TypeError`` for a wrong kind, ``ValueError`` for a wrong value; the message names the argument,
echoes the value and the accepted set, and ``hint`` (what the value sets, the usual choice)
ends it.
"""

from __future__ import annotations

import math
import numbers
import sys

import numpy as np

__all__ = [
    "PIXEL_RANGES", "ClassRangeError", "class_labels_iv", "flag_iv", "int_iv",
    "pixels_in_unit_iv", "pixels_iv", "real_iv", "samples_iv",
]

#: what ``pixel_range=`` accepts: ``"unit"`` (images in [0, 1], the default everywhere) or
#: ``"real"`` (any finite value: current coding's input currents)
PIXEL_RANGES = ("unit", "real")


def _end(hint):
    return f"; {hint}" if hint else ""


def _shown(value, plain):
    """The value a message echoes: as given when a Python int or float (what the caller wrote),
    else its plain conversion (NumPy 2 would print ``np.float64(0.5)``)."""
    return value if type(value) in (int, float) else plain


def _span(low, high, low_open, high_open):
    """The accepted set in words: ``> 0``, ``<= 1``, ``lie in (0, 1]`` or ``''`` (no bound)."""
    has_low, has_high = low != -math.inf, high != math.inf
    if has_low and has_high:
        return f"lie in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if has_low:
        return f"{'>' if low_open else '>='} {low}"
    if has_high:
        return f"{'<' if high_open else '<='} {high}"
    return ""


def _unwrap_0d(value):
    """The scalar in a 0-d array (what ``np.load(npz)[key]`` and ``np.asarray(3.0)`` give for a
    number), anything else as it is; the kind checks then see a NumPy scalar."""
    return value[()] if isinstance(value, np.ndarray) and value.ndim == 0 else value


def real_iv(name, value, *, low=-math.inf, high=math.inf, low_open=False, high_open=False,
            allow_inf=False, hint=None):
    """``value`` as a float: a real number (Python or NumPy, a 0-d array included, not a bool)
    in the interval from ``low`` to ``high`` (each end closed unless ``low_open``/``high_open``),
    finite unless ``allow_inf`` (then an infinity is accepted where the bounds admit it; NaN never
    is). An integer past float's range raises ValueError.

    >>> real_iv("lam", 0.5, low=0, high=1)
    0.5
    >>> real_iv("tau", 0, low=0, low_open=True)
    Traceback (most recent call last):
    ...
    ValueError: tau=0 must be finite and > 0
    """
    end = _end(hint)
    given, value = value, _unwrap_0d(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(given).__name__} {given!r}{end}")
    span = _span(low, high, low_open, high_open)
    # an infinity is accepted only where allow_inf and a closed (or absent) bound admit it
    infs = [s for s, ok in (("-inf", low == -math.inf and not low_open),
                            ("inf", high == math.inf and not high_open)) if allow_inf and ok]
    if not infs:
        what = f"finite and {span}" if span else "finite"
    elif span:
        what = f"{span} ({' and '.join(infs)} allowed)"
    elif len(infs) == 2:
        what = "a number, not NaN"
    else:
        what = f"a number, not NaN ({infs[0]} allowed)"
    try:
        v = float(value)
    except OverflowError:  # an int past 1.8e308 (echoed by its size: str() of it may raise)
        size = (f"an integer of {value.bit_length()} bits" if isinstance(value, int)
                else f"a {type(value).__name__}")
        raise ValueError(f"{name} is {size}, past float's largest {sys.float_info.max!r}; it "
                         f"must be {what}{end}") from None
    low_ok = v > low if low_open else v >= low
    high_ok = v < high if high_open else v <= high
    if not (low_ok and high_ok) or (math.isinf(v) and not allow_inf):  # NaN fails low_ok
        raise ValueError(f"{name}={_shown(value, v)!r} must be {what}{end}")
    return v


def int_iv(name, value, *, low=0, high=None, what=None, hint=None):
    """``value`` as an int (Python or NumPy, a 0-d array included, not a bool) ``>= low`` and,
    given ``high``, ``<= high``. ``what`` (what the integer counts) joins the messages in
    parentheses.

    >>> int_iv("steps", 3, low=1)
    3
    >>> int_iv("steps", 0, low=1, what="iterations")
    Traceback (most recent call last):
    ...
    ValueError: steps=0 must be an integer >= 1 (iterations)
    """
    about, end = (f" ({what})" if what else ""), _end(hint)
    given, value = value, _unwrap_0d(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer{about}, got {type(given).__name__} {given!r}{end}"
        )
    if value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name}={_shown(value, int(value))!r} must be an integer "
                         f"{span}{about}{end}")
    return int(value)


def choice_iv(name, value, allowed, *, what="valid", fix=None, hint=None):
    """``value`` as a ``str`` when it is one of the strings ``allowed``. The TypeError (not a
    string) ends with ``hint``; the ValueError says ``value`` is not ``what`` and ends with
    ``fix`` (default: the choices).

    >>> choice_iv("norm", "l2", ("linf", "l2"))
    'l2'
    >>> choice_iv("norm", "l3", ("linf", "l2"))
    Traceback (most recent call last):
    ...
    ValueError: norm='l3' is not valid; use one of ['linf', 'l2']
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {list(allowed)}; got "
                        f"{type(value).__name__} {value!r}{_end(hint)}")
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not {what}; "
                         f"{fix or f'use one of {list(allowed)}'}")
    return str(value)  # a plain str, also for a numpy.str_


def float_dtype_iv(name, dtype, hint=None):
    """``dtype`` as ``numpy.dtype`` float64 or float32: a TypeError for what NumPy cannot read
    as a dtype (its own message named nothing), a ValueError for another dtype.

    >>> float_dtype_iv("dtype", "float32")
    dtype('float32')
    """
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{name}={dtype!r} is not a numpy dtype; use numpy.float64 or "
                        f"numpy.float32{_end(hint)}") from exc
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"{name}={dt} is not supported; use numpy.float64 or "
                         f"numpy.float32{_end(hint)}")
    return dt


def spikes_iv(name, a, fix):
    """``a`` (an array) when every entry is a spike, 0 or 1 (a boolean array always is);
    ``fix`` ends the ValueError."""
    if a.dtype != np.bool_ and not np.all((a == 0) | (a == 1)):
        raise ValueError(f"{name} must hold spikes (0 or 1 only); {fix}")
    return a


def flag_iv(name, value):
    """``value`` as a bool: True or False (Python or NumPy, a 0-d array included), nothing else.
    Every flag argument."""
    value = _unwrap_0d(value)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}; pass {name}=True or "
                        f"{name}=False")
    return bool(value)


def sizes_iv(sizes):
    """The layer widths of an ``mlp`` constructor, input first: a sequence of at least two
    integers >= 1, as a list of ints."""
    if (isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__")
            or (isinstance(sizes, np.ndarray) and sizes.ndim != 1)):
        # mlp(64) raised "object of type 'int' has no len()"
        raise TypeError(f"sizes must be a sequence of layer widths, input first (e.g. "
                        f"[64, 100, 10]), got {type(sizes).__name__} {sizes!r}")
    if len(sizes) < 2:
        raise ValueError(f"sizes={sizes!r} needs at least an input and an output size, all >= 1")
    # int() truncated a float size (100.7 -> 100) and took True as 1
    return [int_iv(f"sizes[{i}]", s, low=1, what="layer width") for i, s in enumerate(sizes)]


def float_input_iv(name, x, takes, what):
    """The numeric array ``x`` in the float dtype evsnn computes it in: integers and bools as
    float64, float16 read exactly as float32 (nothing computes in float16, which counts only up
    to 2048), float32 and float64 as they are. Other floats (float128) and other kinds (complex,
    str, bytes, object, datetime) raise TypeError naming who refuses them and what
    (``takes="the encoders take"``, ``what="pixels"``). The encoders, the ANN, the decoders and
    the losses read their input with it."""
    if x.dtype.kind not in "biuf":
        # astype(float64) dropped a complex's imaginary part (a warning only) and parsed strings
        raise TypeError(f"{name} has dtype {x.dtype}; {takes} float16, float32 or float64 "
                        f"{what} (or integers), no other kind: pass a real array ({name}.real "
                        f"if the imaginary parts are 0, {name}.astype(numpy.float64) for numbers "
                        "stored as text or objects)")
    if x.dtype.kind != "f":
        return x.astype(np.float64)
    if x.dtype.itemsize < 4:
        return x.astype(np.float32)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} has dtype {x.dtype}; {takes} float16, float32 or float64 {what} "
                        f"(or integers): pass {name}.astype(numpy.float64)")
    return x


def dtype_range_iv(name, values, dtype, fix):
    """Refuse finite ``values`` (an array or a number, argument ``name``) that a cast to the
    float ``dtype`` would turn into ±inf (a float32 run of float64 data); ``fix`` ends the
    message.

    >>> dtype_range_iv("w", np.array([1e39]), np.float32, "run in float64")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: w holds a value of magnitude 1e+39, past float32's largest ...; run in float64
    """
    dtype = np.dtype(dtype)
    largest = float(np.finfo(dtype).max)
    big = abs(values) if isinstance(values, float) else float(np.max(np.abs(values)))
    if big > largest:
        raise ValueError(f"{name} holds a value of magnitude {big!r}, past {dtype}'s largest "
                         f"{largest!r}: a {dtype} run would make it inf; {fix}")


def pixels_iv(x, pixel_range="unit", *, name="x", hint=None):
    """Raise unless every value of the array ``x`` (argument ``name``) is finite and, with
    ``pixel_range="unit"``, in [0, 1]; ``"real"`` admits any finite value (NaN and infinities
    never pass). ``hint`` (how else to pass such values) ends the [0, 1] message.

    >>> pixels_iv(np.array([-0.5, 2.0]), "real") is None
    True
    >>> pixels_iv(np.array([np.inf]), "real")
    Traceback (most recent call last):
    ...
    ValueError: x holds NaN or infinite values; pixels must be finite (pixel_range='real')
    """
    if pixel_range == "unit" and x.size and x.min() >= 0 and x.max() <= 1:
        return  # two reductions; a NaN fails both comparisons and is named below
    if not np.all(np.isfinite(x)):
        what = ("finite and in [0, 1]" if pixel_range == "unit"
                else f"finite (pixel_range={pixel_range!r})")
        raise ValueError(f"{name} holds NaN or infinite values; pixels must be {what}")
    if pixel_range == "unit" and x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"{name} must lie in [0, 1], got values in [{x.min().item()!r}, "
            f"{x.max().item()!r}]; "
            f"scale images to [0, 1] first (e.g. divide 8-bit images by 255){_end(hint)}"
        )


def pixels_in_unit_iv(x):
    """Raise unless every value of the array ``x`` (images, argument ``x``) is finite and in
    [0, 1]. The attacks check their clean images with it."""
    pixels_iv(x, "unit")


class ClassRangeError(ValueError):
    """:func:`class_labels_iv`'s refusal of a label at or past the number of classes. It carries
    the refused ``labels`` (as given), ``n_classes`` and ``classes_of``: a caller that handed
    its labels to code which checks them (an attack calling a source whose loss refuses them)
    learns the class count from the refusal and can name the labels as its own arguments.
    Raised by other code without them (``ClassRangeError(message)``), the three are None."""

    labels = n_classes = classes_of = None


def class_labels_iv(name, labels, n_classes=None, *, batch=None, classes_of="the scores",
                    hint=None):
    """``labels`` (argument ``name``) as an int64 array ``[B]`` of 0-based class indices:
    integers (TypeError), of shape ``(batch,)`` when ``batch`` is given, else 1-D, each >= 0 and,
    given ``n_classes`` (the number of classes of ``classes_of``), < ``n_classes``. A label >= C
    (1-based labels) would index past the scores or never be predicted. The metrics, the losses,
    the attacks and the smoothing certificates check their labels with it.

    >>> class_labels_iv("y", [0, 3], 3, classes_of="scores")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    evsnn._checks.ClassRangeError: y holds the label 3 but scores has 3 classes; labels are ...
    """
    end = _end(hint)
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {labels.dtype}{end}")
    if batch is not None and labels.shape != (batch,):
        raise ValueError(f"{name} must have shape ({batch},) (one label per sample), got "
                         f"{labels.shape}{end}")
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D [B] (one label per sample), got shape "
                         f"{labels.shape}{end}")
    span = ">= 0" if n_classes is None else f"in [0, {n_classes - 1}]"
    if (n_classes is None and labels.dtype == np.uint64 and labels.size
            and labels.max() > np.iinfo(np.int64).max):
        # the int64 labels returned would wrap to negative ones, echoed as such by later checks
        # (given n_classes, the check below names the label as given)
        raise ValueError(f"{name} holds the label {int(labels.max())}, past int64's maximum; "
                         f"labels are 0-based class indices {span}{end}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"{name} holds the negative label {int(labels.min())}; labels are "
                         f"0-based class indices {span}{end}")
    if n_classes is not None and labels.size and labels.max() >= n_classes:
        exc = ClassRangeError(
            f"{name} holds the label {int(labels.max())} but {classes_of} has {n_classes} "
            f"classes; labels are 0-based class indices {span} (subtract 1 from 1-based "
            f"labels){end}"
        )
        # attributes, not constructor arguments: the exception still pickles (args = message)
        exc.labels, exc.n_classes, exc.classes_of = labels, int(n_classes), classes_of
        raise exc
    return labels.astype(np.int64, copy=False)


def samples_iv(name, shape, why, *, axis=0, what="sample"):
    """Raise unless axis ``axis`` of the array ``name`` (of shape ``shape``) holds at least one
    ``what``: a mean over an empty axis is NaN. ``why`` (what needs them, and the fix) ends the
    message.

    >>> samples_iv("scores", (0, 3), "a loss needs at least one sample")
    Traceback (most recent call last):
    ...
    ValueError: scores holds no samples (shape (0, 3)); a loss needs at least one sample
    """
    if shape[axis] == 0:
        raise ValueError(f"{name} holds no {what}s (shape {tuple(shape)}); {why}")
