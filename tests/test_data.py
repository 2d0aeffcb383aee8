"""Data loaders: the embedded digits, IDX files written by the test, .npz."""

import gzip
import re

import numpy as np
import pytest

from evsnn import data


def test_digits_split_is_fixed_stratified_and_scaled():
    full = data.load_digits("all")
    assert full.x.shape == (1797, 64) and full.x.min() == 0 and full.x.max() == 1
    train, test = data.load_digits("train"), data.load_digits("test")
    assert len(train) + len(test) == 1797
    # stratified: each class's test share is round(0.25·n_class)
    for c in range(10):
        n_c = int((full.y == c).sum())
        assert int((test.y == c).sum()) == round(0.25 * n_c)
    again = data.load_digits("test")
    np.testing.assert_array_equal(again.x, test.x)
    other = data.load_digits("test", seed=1)
    assert not np.array_equal(other.x, test.x)
    assert test.n_classes == 10 and test.image_shape == (8, 8)


def _write_idx(path, arr, code):
    header = bytes([0, 0, code, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    payload = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(payload)


def test_idx_roundtrip_and_mnist_loader(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 5).astype(np.uint8)
    _write_idx(tmp_path / "img.idx.gz", images, 0x08)
    _write_idx(tmp_path / "lab.idx", labels, 0x08)
    np.testing.assert_array_equal(data.load_idx(tmp_path / "img.idx.gz"), images)
    floats = rng.standard_normal((2, 3)).astype(">f4")
    _write_idx(tmp_path / "f.idx", floats, 0x0D)
    np.testing.assert_array_equal(data.load_idx(tmp_path / "f.idx"), floats)
    ds = data.load_mnist_idx(tmp_path / "img.idx.gz", tmp_path / "lab.idx")
    assert ds.x.shape == (5, 12) and ds.image_shape == (4, 3)
    np.testing.assert_allclose(ds.x * 255, images.reshape(5, -1))


def test_idx_errors(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x00\x08\x01")
    with pytest.raises(ValueError, match="is not an IDX file"):
        data.load_idx(tmp_path / "bad")
    (tmp_path / "code").write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="unknown IDX type code 0x07"):
        data.load_idx(tmp_path / "code")
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x02\x00\x00")
    with pytest.raises(ValueError, match="is truncated: its header needs 12 bytes"):
        data.load_idx(tmp_path / "short")
    (tmp_path / "trunc").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02")
    with pytest.raises(ValueError, match="holds 10 bytes but its header"):
        data.load_idx(tmp_path / "trunc")
    _write_idx(tmp_path / "a", np.zeros((2, 2, 2), np.uint8), 0x08)
    _write_idx(tmp_path / "b", np.zeros(3, np.uint8), 0x08)
    _write_idx(tmp_path / "c", np.zeros((2, 2), np.uint8), 0x08)
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        data.load_mnist_idx(tmp_path / "a", tmp_path / "b")
    with pytest.raises(ValueError, match=r"expected images \[n, H, W\]"):
        data.load_mnist_idx(tmp_path / "c", tmp_path / "b")


def test_mnist_idx_checks_labels_and_pixel_range_as_load_npz_does_regression(tmp_path):
    # load_mnist_idx checked nothing: int8 labels kept -1, float labels [2.7, nan] became
    # [2, -2**63], int16 images exceeded 1 and float images in [0, 1] were divided by 255 again
    # (review 46, /tmp/rev_misc46/f3_load_mnist_idx_unchecked.py)
    img8 = np.arange(8, dtype=np.uint8).reshape(2, 2, 2) * 30
    _write_idx(tmp_path / "img8", img8, 0x08)
    _write_idx(tmp_path / "lab", np.array([3, 1], np.uint8), 0x08)
    # float images already in [0, 1] and 0/1 integer images are read as stored
    for arr, code in (((img8 / 255).astype(">f4"), 0x0D), ((img8 > 60).astype(">i2"), 0x0B)):
        _write_idx(tmp_path / "img", arr, code)
        ds = data.load_mnist_idx(tmp_path / "img", tmp_path / "lab")
        assert ds.x.dtype == np.float64 and ds.y.tolist() == [3, 1]
        np.testing.assert_array_equal(ds.x, arr.reshape(2, -1).astype(np.float64))
    _write_idx(tmp_path / "img", img8.astype(">i2") * 4, 0x0B)
    where = re.escape(repr(str(tmp_path / "img")))
    with pytest.raises(ValueError, match=rf"^images in {where} must be finite and in \[0, 1\], "
                                         r"got values in \[0\.0, 840\.0\] \(IDX images of type "
                                         r"int16 are read as stored: store 8-bit pixels as uint8, "
                                         r"type code 0x08, or scale the images to \[0, 1\]\)$"):
        data.load_mnist_idx(tmp_path / "img", tmp_path / "lab")
    _write_idx(tmp_path / "img", np.full((2, 2, 2), np.nan, ">f8"), 0x0E)
    with pytest.raises(ValueError, match=rf"^images in {where} must be finite and in \[0, 1\], "
                                         r"got values in \[nan, nan\]"):
        data.load_mnist_idx(tmp_path / "img", tmp_path / "lab")
    where = re.escape(repr(str(tmp_path / "bad")))
    _write_idx(tmp_path / "bad", np.array([3, -1], np.int8), 0x09)
    with pytest.raises(ValueError, match=rf"^labels in {where} holds the negative label -1; "
                                         r"labels are 0-based class indices >= 0; store the "
                                         r"labels as integers 0\.\.C-1$"):
        data.load_mnist_idx(tmp_path / "img8", tmp_path / "bad")
    for labels, shown in (([2.5, 1.0], "2.5"), ([1.0, np.nan], "nan")):
        _write_idx(tmp_path / "bad", np.array(labels, ">f4"), 0x0D)
        with pytest.raises(ValueError, match=rf"^labels in {where} must be integer class "
                                             rf"indices, got dtype float32 holding {shown}; "
                                             r"store the labels as integers 0\.\.C-1$"):
            data.load_mnist_idx(tmp_path / "img8", tmp_path / "bad")
    _write_idx(tmp_path / "bad", np.array([2.0, 0.0], ">f4"), 0x0D)  # whole floats are classes
    assert data.load_mnist_idx(tmp_path / "img8", tmp_path / "bad").y.tolist() == [2, 0]


@pytest.mark.parametrize("x", [np.array([["0.1", "0.2"]]), np.array([[0.1 + 9j, 0.2]])])
def test_npz_refuses_images_that_are_not_real_numbers_regression(tmp_path, x):
    # the float64 cast parsed string images and dropped a complex's imaginary part (review 46)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0]))
    where = re.escape(repr(str(tmp_path / "d.npz")))
    with pytest.raises(TypeError, match=rf"^images 'x' in {where} must hold real numbers "
                                        rf"\(bools, integers or floats\), got dtype {x.dtype}; "
                                        r"store x as real numbers \(x\.astype\(numpy\.float64\) "
                                        r"for numbers stored as text\)$"):
        data.load_npz(tmp_path / "d.npz")


def test_npz(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (4, 2, 2))
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(4))
    ds = data.load_npz(tmp_path / "d.npz", scale=255)
    assert ds.x.shape == (4, 4) and ds.image_shape == (2, 2)
    with pytest.raises(ValueError, match=rf"^images in {re.escape(repr(str(tmp_path / 'd.npz')))} "
                                         rf"must be finite and in \[0, 1\], got values in "
                                         rf"\[{x.min()}.0, {x.max()}.0\] \(pass scale=255"):
        data.load_npz(tmp_path / "d.npz")  # was: PosixPath('...') and no values
    # integer labels stored as floats load as before; fractional or NaN ones were truncated
    np.savez(tmp_path / "f.npz", x=np.zeros((3, 2)), y=np.array([0.0, 2.0, 1.0]))
    assert data.load_npz(tmp_path / "f.npz").y.tolist() == [0, 2, 1]
    for y, shown in (([0.0, 2.5, 1.0], "2.5"), ([0.0, np.nan, 1.0], "nan")):
        np.savez(tmp_path / "f.npz", x=np.zeros((3, 2)), y=np.array(y))
        with pytest.raises(ValueError, match=r"labels 'y' in .*f\.npz' must be integer class "
                                             rf"indices, got dtype float64 holding .*{shown}.*; "
                                             r"store y as integers 0\.\.C-1"):
            data.load_npz(tmp_path / "f.npz")
    with pytest.raises(ValueError, match=rf"^{re.escape(repr(str(tmp_path / 'd.npz')))} has "
                                         "no array 'images'"):  # was: PosixPath('...')
        data.load_npz(tmp_path / "d.npz", x_key="images")
    np.savez(tmp_path / "m.npz", x=np.zeros((3, 2)), y=np.arange(2))
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        data.load_npz(tmp_path / "m.npz")


def test_split_errors():
    with pytest.raises(ValueError, match="split='val' must be"):
        data.load_digits("val")
    with pytest.raises(ValueError, match="test_fraction=1.5 must lie strictly between 0 and 1"):
        data.stratified_split(np.zeros(4), 1.5, 0)


def test_npz_refuses_labels_and_images_it_used_to_keep_or_crash_on(tmp_path):
    # Found by probing load_npz with files a researcher could write: one-hot or column labels
    # loaded as a 2-D y (n_classes 2 for one-hot), negative labels were kept, a float label beyond
    # int64 cast to -2**63, a scalar x raised a bare IndexError and an empty x numpy's reshape
    # error.
    x = np.full((4, 3), 0.5)
    p = tmp_path / "d.npz"
    for y, shape in ((np.eye(3)[[0, 1, 2, 0]], r"\(4, 3\)"), (np.arange(4)[:, None], r"\(4, 1\)")):
        np.savez(p, x=x, y=y)
        with pytest.raises(ValueError, match=rf"labels 'y' in .*d\.npz' must be 1-D \[n\] \(one "
                                             rf"class index per image\), got shape {shape}; "
                                             r"store y\.ravel\(\) .* y\.argmax\(axis=1\)"):
            data.load_npz(p)
    np.savez(p, x=x, y=np.array([-1, 0, 1, 2]))
    with pytest.raises(ValueError, match=r"labels 'y' in .*d\.npz' holds the negative label -1; "
                                         r"labels are 0-based .*store y as integers 0\.\.C-1"):
        data.load_npz(p)
    np.savez(p, x=x, y=np.array([1e300, 0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"must be integer class indices, got dtype float64 "
                                         r"holding .*1e\+300"):
        data.load_npz(p)
    np.savez(p, x=np.array(0.5), y=np.array(1))
    with pytest.raises(ValueError, match=r"images 'x' in .*d\.npz' must be an array \[n, \.\.\.\] "
                                         r"with one image per row, got a scalar"):
        data.load_npz(p)
    np.savez(p, x=np.zeros((0, 3)), y=np.zeros(0, np.int64))
    with pytest.raises(ValueError, match=r"images 'x' in .*d\.npz' holds no samples \(shape "
                                         r"\(0, 3\)\); store at least one image"):
        data.load_npz(p)
    np.savez(p, x=x, y=np.array([True, False, True, True]))  # bool labels are still classes 0/1
    assert data.load_npz(p).y.tolist() == [1, 0, 1, 1]


def test_split_of_one_hot_labels_is_refused_and_of_no_labels_is_empty():
    # One-hot labels were flattened by np.unique into classes 0 and 1 and split as n·C samples
    # (indices past n); an empty y raised np.concatenate's "need at least one array" although
    # the emptiness check below it lets an empty y through.
    with pytest.raises(ValueError, match=r"y must be 1-D \[n\] \(one class label per sample\), "
                                         r"got shape \(2, 2\); .*y\.argmax\(axis=1\)"):
        data.stratified_split(np.eye(2), 0.5, 0)
    train, test = data.stratified_split(np.zeros(0, np.int64), 0.5, 0)
    assert train.shape == test.shape == (0,)


def test_split_refuses_nan_labels_and_says_when_no_fraction_can_work():
    # NaN labels: y == NaN is False, so their samples were silently in neither part
    # ([0, nan, 1, nan, 0, 1] at 0.5 returned train [4, 5], test [0, 2]); classes of one sample
    # each were told to "choose a fraction nearer 0.5" at 0.5 itself, where none works.
    with pytest.raises(ValueError, match=r"y holds 2 NaN labels, whose samples would be in "
                                         r"neither part; drop or relabel them"):
        data.stratified_split(np.array([0.0, np.nan, 1.0, np.nan, 0.0, 1.0]), 0.5, 0)
    with pytest.raises(ValueError, match=r"leaves the test part empty .*; every class has a "
                                         r"single sample, which no fraction splits"):
        data.stratified_split(np.arange(4), 0.5, 0)
    with pytest.raises(ValueError, match=r"leaves the test part empty .*; choose a fraction "
                                         r"nearer 0\.5$"):
        data.stratified_split(np.array([0, 0, 1, 1]), 0.1, 0)
