"""Data: the embedded 8×8 digits, MNIST / Fashion-MNIST IDX files and ``.npz`` files.

All loaders return a :class:`Dataset` with images flattened to ``[n, features]`` float64 in
[0, 1] and integer labels. The file loaders check what they read: images must hold real numbers
(bools, integers or floats: TypeError else) that are finite and in [0, 1] once scaled (uint8 IDX
images by 1/255, ``.npz`` images by ``scale``), else ValueError; labels must be whole numbers
>= 0 (integers, bools, or floats such as 3.0), else ValueError.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass

import numpy as np

from evsnn._checks import class_labels_iv, int_iv, real_iv, samples_iv

__all__ = ["Dataset", "load_digits", "load_idx", "load_mnist_idx", "load_npz", "stratified_split"]


@dataclass(frozen=True)
class Dataset:
    """Images ``x`` ``[n, features]`` in [0, 1], labels ``y`` ``[n]`` (int64), a name and the
    image shape (e.g. ``(8, 8)``)."""

    x: np.ndarray
    y: np.ndarray
    name: str
    image_shape: tuple

    def __len__(self):
        return self.x.shape[0]

    @property
    def n_classes(self) -> int:
        return int(self.y.max()) + 1 if len(self.y) else 0

    def subset(self, index) -> "Dataset":
        return Dataset(self.x[index], self.y[index], self.name, self.image_shape)


def stratified_split(y, test_fraction, seed):
    """Indices ``(train, test)`` of a split that keeps each class's proportion; reproducible
    from ``seed`` (an integer >= 0). Each class contributes ``round(test_fraction · n_class)``
    test samples; a split that leaves either part empty is refused."""
    real_iv("test_fraction", test_fraction, hint="the share of each class in the test part")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction!r} must lie strictly between 0 and 1")
    # None would draw a fresh split on every call
    seed = int_iv("seed", seed, low=0, what="the split's seed")
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    if y.ndim != 1:  # np.unique would flatten one-hot labels into classes 0 and 1
        raise ValueError(f"y must be 1-D [n] (one class label per sample), got shape {y.shape}; "
                         "pass class indices (e.g. y.argmax(axis=1) for one-hot labels)")
    if y.dtype.kind in "fc" and np.isnan(y).any():  # y == NaN is False: in neither part
        raise ValueError(f"y holds {int(np.isnan(y).sum())} NaN labels, whose samples would be "
                         "in neither part; drop or relabel them")
    train, test = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(idx.size)]
        k = int(round(test_fraction * idx.size))
        test.append(idx[:k])
        train.append(idx[k:])
    # no class at all (empty y) gives two empty parts, not np.concatenate's error
    empty = [np.zeros(0, np.intp)]
    train, test = np.sort(np.concatenate(train or empty)), np.sort(np.concatenate(test or empty))
    for part, idx in (("test", test), ("train", train)):
        if idx.size == 0 and y.size:
            raise ValueError(
                f"test_fraction={test_fraction!r} leaves the {part} part empty (each of the "
                f"{np.unique(y).size} classes gives round(test_fraction · n_class) test "
                "samples); " + ("every class has a single sample, which no fraction splits: "
                                "pass more samples" if y.size == np.unique(y).size
                                else "choose a fraction nearer 0.5")
            )
    return train, test


def load_digits(split="train", *, test_fraction=0.25, seed=0):
    """The embedded data set: scikit-learn's 1,797 8×8 handwritten digits (shipped with
    scikit-learn, no download), pixels scaled from 0..16 to [0, 1].

    Parameters
    ----------
    split : {"train", "test", "all"}
        Which part of a fixed stratified split to return.
    test_fraction : float, default 0.25
    seed : int, default 0
        Seed of the split (the same seed always gives the same split).

    Examples
    --------
    >>> d = load_digits("test")
    >>> d.x.shape, float(d.x.max()), d.image_shape
    ((450, 64), 1.0, (8, 8))
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split={split!r} must be 'train', 'test' or 'all'")
    from sklearn.datasets import load_digits as _sk_digits

    raw = _sk_digits()
    x = raw.data.astype(np.float64) / 16.0
    y = raw.target.astype(np.int64)
    full = Dataset(x, y, "digits", (8, 8))
    if split == "all":
        return full
    train, test = stratified_split(y, test_fraction, seed)
    return full.subset(train if split == "train" else test)


_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def load_idx(path):
    """Read an IDX file (the MNIST / Fashion-MNIST format; ``.gz`` is decompressed).

    The header is two zero bytes, a type code, the number of dimensions, then one big-endian
    uint32 per dimension (LeCun et al., the MNIST database's file-format description).
    """
    path = os.fsdecode(path)  # a bytes path too (fspath would keep bytes, and ".gz" is str)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path!r} is not an IDX file (it must start with two zero bytes)")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path!r} has unknown IDX type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path!r} is truncated: its header needs {header} bytes")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{path!r} holds {len(data)} bytes but its header {shape} needs {expected}; "
            "the file is truncated or corrupt"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def _real_images_iv(x, what, fix):
    """The images ``x`` (``what`` names them) as float64: bools, integers or floats, else
    TypeError ending with ``fix`` (astype(float64) parsed strings and dropped a complex's
    imaginary part)."""
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold real numbers (bools, integers or floats), got dtype "
                        f"{x.dtype}; {fix}")
    return x.astype(np.float64)


def _unit_images_iv(x, what, fix):
    """Raise unless the float images ``x`` (``what`` names them) are finite and in [0, 1];
    ``fix`` (how to scale or store them) ends the message."""
    if not np.all(np.isfinite(x)) or (x.size and (x.min() < 0 or x.max() > 1)):
        raise ValueError(f"{what} must be finite and in [0, 1], got values in "
                         f"[{np.min(x)}, {np.max(x)}] ({fix})")


def _file_labels_iv(y, what, fix):
    """The labels ``y`` read from a file (``what`` names them) as int64 class indices: integers,
    bools, or floats holding whole numbers (3.0); each >= 0. ``fix`` ends the messages."""
    # 2.5 or NaN would be truncated silently, and 1e300 (beyond int64) cast to -2**63 with only
    # a RuntimeWarning
    if y.dtype.kind == "f":
        whole = np.isfinite(y) & (y == np.round(y)) & (np.abs(y) < 2.0**63)
        bad = None if whole.all() else y[~whole][0].item()
    else:
        bad = None if y.dtype.kind in "iub" else y.ravel()[0].item()
    if bad is not None:  # item(): NumPy 2 echoed np.float32(nan)
        raise ValueError(f"{what} must be integer class indices, got dtype {y.dtype} holding "
                         f"{bad!r}; {fix}")
    # negative labels were kept (n_classes from y.max() ignores them); uint64 labels go as they
    # are, so a label past int64 is named as stored, not wrapped
    return class_labels_iv(what, y if y.dtype.kind in "iu" else y.astype(np.int64), hint=fix)


def load_mnist_idx(images_path, labels_path, *, name="mnist"):
    """MNIST or Fashion-MNIST from IDX files on disk, images flattened.

    uint8 images (type code 0x08, as MNIST stores them) are divided by 255; images of any other
    IDX type are read as stored and must already lie in [0, 1] (floats scaled beforehand, 0/1
    integers). Labels must be integer class indices >= 0 (float labels only whole numbers).

    Raises
    ------
    ValueError
        Images not ``[n, H, W]``, labels not ``[n]``, or their counts differ; images not finite
        or outside [0, 1] (after the division of uint8 ones); negative, fractional or NaN labels.
    """
    images = load_idx(images_path)
    labels = load_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise ValueError(
            f"expected images [n, H, W] and labels [n], got {images.shape} and {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels; they must match")
    x = images.reshape(images.shape[0], -1).astype(np.float64)
    # only uint8 is 8-bit pixels: float images already in [0, 1] were divided by 255 again
    # and int16 ones left above 1
    if images.dtype == np.uint8:
        x = x / 255.0
    _unit_images_iv(x, f"images in {os.fsdecode(images_path)!r}",
                    f"IDX images of type {images.dtype} are read as stored: store 8-bit pixels "
                    "as uint8, type code 0x08, or scale the images to [0, 1]")
    y = _file_labels_iv(labels, f"labels in {os.fsdecode(labels_path)!r}",
                        "store the labels as integers 0..C-1")
    return Dataset(x, y, name, images.shape[1:])


def load_npz(path, *, x_key="x", y_key="y", name=None, scale=None):
    """Images and labels from a ``.npz`` file. Images are flattened; ``scale`` divides them
    (e.g. 255); the result must lie in [0, 1].

    Raises
    ------
    TypeError
        Images of a kind other than bools, integers or floats (complex, strings).
    ValueError
        A missing key; images not finite or outside [0, 1] (after ``scale``), none, or a
        scalar; labels not 1-D, not one per image, negative, fractional or NaN.
    """
    # the file opened here: np.load left its own handle open when the zip was unreadable
    where = os.fspath(path)  # the path as text in messages, not a PosixPath(...) repr
    with open(where, "rb") as fh, np.load(fh, allow_pickle=False) as f:
        for key in (x_key, y_key):
            if key not in f:
                raise ValueError(f"{where!r} has no array {key!r}; it holds {sorted(f.files)}")
        x = np.asarray(f[x_key])
        y = np.asarray(f[y_key])
    x = _real_images_iv(x, f"images {x_key!r} in {where!r}",
                        "store x as real numbers (x.astype(numpy.float64) for numbers stored "
                        "as text)")
    if x.ndim == 0:  # x.shape[0] below would raise a bare IndexError
        raise ValueError(f"images {x_key!r} in {where!r} must be an array [n, ...] with one image "
                         "per row, got a scalar")
    samples_iv(f"images {x_key!r} in {where!r}", x.shape, "store at least one image")
    if scale is not None:
        scale = real_iv("scale", scale, low=0, low_open=True,
                        hint="the pixels' full scale, e.g. 255 for 8-bit images")
        x = x / scale
    if y.ndim != 1:  # one-hot labels [n, C] were kept as a 2-D y (n_classes 2)
        raise ValueError(f"labels {y_key!r} in {where!r} must be 1-D [n] (one class index per "
                         f"image), got shape {y.shape}; store y.ravel() for a column of labels, "
                         "y.argmax(axis=1) for one-hot ones")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{x.shape[0]} images but {y.shape[0]} labels; they must match")
    _unit_images_iv(x, f"images in {where!r}", "pass scale=255 for 8-bit images; the evsnn "
                    "command reads x as stored: save x / 255")
    # integer labels stored as floats (3.0) are kept
    y = _file_labels_iv(y, f"labels {y_key!r} in {where!r}", "store y as integers 0..C-1")
    image_shape = x.shape[1:]
    return Dataset(x.reshape(x.shape[0], -1), y, name or "npz", image_shape)
