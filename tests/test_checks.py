"""evsnn._checks: the one real-number, integer, flag and pixel check every module shares."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from evsnn._checks import (
    class_labels_iv,
    flag_iv,
    float_input_iv,
    int_iv,
    pixels_in_unit_iv,
    pixels_iv,
    real_iv,
    samples_iv,
)


@pytest.mark.parametrize("value, kw, want", [
    (2, {}, 2.0), (np.float32(0.5), {}, 0.5), (np.int64(3), dict(low=3), 3.0),
    (1.0, dict(low=0, high=1), 1.0), (math.inf, dict(allow_inf=True), math.inf),
    (-math.inf, dict(allow_inf=True), -math.inf), (0.5, dict(low=0, high=1, high_open=True), 0.5),
])
def test_real_iv_returns_a_float(value, kw, want):
    got = real_iv("x", value, **kw)
    assert type(got) is float and got == want


@pytest.mark.parametrize("value, kw, exc, match", [
    (True, {}, TypeError, r"^x must be a real number, got bool True$"),
    (np.bool_(True), {}, TypeError, r"^x must be a real number, got bool_? (np\.)?True_?$"),
    ("1", dict(hint="the step"), TypeError, r"^x must be a real number, got str '1'; the step$"),
    (math.nan, {}, ValueError, r"^x=nan must be finite$"),
    (math.inf, {}, ValueError, r"^x=inf must be finite$"),
    (0, dict(low=0, low_open=True), ValueError, r"^x=0 must be finite and > 0$"),
    (-1, dict(low=0), ValueError, r"^x=-1 must be finite and >= 0$"),
    (2, dict(high=1), ValueError, r"^x=2 must be finite and <= 1$"),
    (1, dict(high=1, high_open=True), ValueError, r"^x=1 must be finite and < 1$"),
    (0.5, dict(low=0.0, high=0.5, low_open=True, high_open=True, hint="h"), ValueError,
     r"^x=0.5 must be finite and lie in \(0.0, 0.5\); h$"),
    (1.5, dict(low=0, high=1), ValueError, r"^x=1.5 must be finite and lie in \[0, 1\]$"),
    (math.nan, dict(low=0, low_open=True, allow_inf=True), ValueError,
     r"^x=nan must be > 0 \(inf allowed\)$"),
    (math.nan, dict(allow_inf=True), ValueError, r"^x=nan must be a number, not NaN$"),
    (math.inf, dict(high=1, allow_inf=True), ValueError, r"^x=inf must be <= 1 \(-inf allowed\)$"),
    # NumPy scalars are echoed as plain numbers
    (np.float64(-0.5), dict(low=0), ValueError, r"^x=-0.5 must be finite and >= 0$"),
    (np.int64(-1), dict(low=0), ValueError, r"^x=-1.0 must be finite and >= 0$"),
])
def test_real_iv_errors_name_the_value_and_the_accepted_set(value, kw, exc, match):
    with pytest.raises(exc, match=match):
        real_iv("x", value, **kw)


# the positive reals of the optimisers' and the gradient methods' options (they called
# params._positive_real, a wrapper of real_iv with low=0 that is gone)
_POS = dict(low=0, low_open=True)


@pytest.mark.parametrize("value, kw, want", [
    (2, _POS, 2.0), (np.float32(0.5), _POS, 0.5), (np.int64(3), _POS, 3.0),
    (0.0, dict(low=0), 0.0), (math.inf, dict(_POS, allow_inf=True), math.inf),
])
def test_real_iv_positive_accepts_python_and_numpy_reals(value, kw, want):
    got = real_iv("x", value, **kw)
    assert type(got) is float and got == want


@pytest.mark.parametrize("value, kw, exc, match", [
    (True, _POS, TypeError, r"^x must be a real number, got bool True$"),
    (np.bool_(False), _POS, TypeError, r"^x must be a real number, got bool_? (np\.)?False_?$"),
    ("1", dict(_POS, hint="the step"), TypeError,
     r"^x must be a real number, got str '1'; the step$"),
    (0, _POS, ValueError, r"^x=0 must be finite and > 0$"),
    (-1.0, dict(low=0), ValueError, r"^x=-1.0 must be finite and >= 0$"),
    (math.inf, _POS, ValueError, r"^x=inf must be finite and > 0$"),
    (math.nan, dict(_POS, allow_inf=True, hint="h"), ValueError,
     r"^x=nan must be > 0 \(inf allowed\); h$"),
])
def test_real_iv_positive_errors_name_the_value_and_the_bound(value, kw, exc, match):
    with pytest.raises(exc, match=match):
        real_iv("x", value, **kw)


def test_int_iv():
    assert type(int_iv("n", np.int32(4), low=1)) is int and int_iv("n", 4, low=1) == 4
    assert int_iv("n", 0) == 0 and int_iv("n", 5, low=1, high=5) == 5
    with pytest.raises(TypeError, match=r"^n must be an integer \(samples\), got float 1.0; h$"):
        int_iv("n", 1.0, what="samples", hint="h")
    with pytest.raises(TypeError, match=r"^n must be an integer, got bool True$"):
        int_iv("n", True)
    with pytest.raises(TypeError, match=r"^n must be an integer, got bool_? (np\.)?False_?$"):
        int_iv("n", np.bool_(False))
    with pytest.raises(ValueError, match=r"^n=0 must be an integer >= 1 \(samples\)$"):
        int_iv("n", 0, low=1, what="samples")
    with pytest.raises(ValueError, match=r"^n=6 must be an integer in \[1, 5\]; h$"):
        int_iv("n", 6, low=1, high=5, hint="h")
    with pytest.raises(ValueError, match=r"^n=-2 must be an integer >= 0$"):
        int_iv("n", np.int16(-2))


def test_flag_iv():
    assert flag_iv("f", np.bool_(True)) is True and flag_iv("f", False) is False
    for bad in (1, 0, None, "True"):
        with pytest.raises(TypeError, match=rf"^f must be True or False, got {bad!r}; pass "
                                            r"f=True or f=False$"):
            flag_iv("f", bad)


def test_pixels_in_unit_iv():
    for ok in (np.zeros((2, 3)), np.ones(4, np.float32), np.array([[0, 1]]), np.empty((0, 5))):
        assert pixels_in_unit_iv(ok) is None
    for bad in (np.array([0.5, np.nan]), np.array([[np.inf]])):
        with pytest.raises(ValueError, match=r"^x holds NaN or infinite values; pixels must be "
                                             r"finite and in \[0, 1\]$"):
            pixels_in_unit_iv(bad)
    for bad, lo, hi in ((np.array([-0.25, 0.5]), "-0.25", "0.5"), (np.array([[0.0, 255.0]]),
                                                                     "0.0", "255.0")):
        with pytest.raises(ValueError, match=rf"^x must lie in \[0, 1\], got values in "
                                             rf"\[{lo}, {hi}\]; "
                                             r"scale images to \[0, 1\] first \(e.g. divide 8-bit "
                                             r"images by 255\)$"):
            pixels_in_unit_iv(bad)


# the one label check of the metrics, the losses, the attacks and the certificates (each had its
# own, with different messages and no 1-based hint in most)
_FIX = r"labels are 0-based class indices in \[0, 2\] \(subtract 1 from 1-based labels\)"


@pytest.mark.parametrize("labels, kw, exc, match", [
    ([0.0, 1.0], {}, TypeError, r"^y must hold integer class labels, got dtype float64$"),
    ([[0, 1]], {}, ValueError, r"^y must be 1-D \[B\] \(one label per sample\), got shape "
                               r"\(1, 2\)$"),
    ([0, 1], dict(batch=3, hint="h"), ValueError,
     r"^y must have shape \(3,\) \(one label per sample\), got \(2,\); h$"),
    ([0, -2], {}, ValueError, r"^y holds the negative label -2; labels are 0-based class "
                              r"indices >= 0$"),
    ([0, -2], dict(n_classes=3), ValueError, r"^y holds the negative label -2; labels are "
                                             r"0-based class indices in \[0, 2\]$"),
    ([1, 3], dict(n_classes=3, classes_of="scores"), ValueError,
     r"^y holds the label 3 but scores has 3 classes; " + _FIX + "$"),
    # uint64 past int64 wrapped to the negative label -2**63 (random-profile hunt)
    (np.array([0, 2**63], dtype=np.uint64), {}, ValueError,
     r"^y holds the label 9223372036854775808, past int64's maximum; labels are 0-based class "
     r"indices >= 0$"),
    (np.array([0, 2**63], dtype=np.uint64), dict(n_classes=3, classes_of="scores"), ValueError,
     r"^y holds the label 9223372036854775808 but scores has 3 classes; " + _FIX + "$"),
])
def test_class_labels_iv_names_the_argument_the_label_and_the_fix(labels, kw, exc, match):
    with pytest.raises(exc, match=match):
        class_labels_iv("y", np.asarray(labels), **kw)


def test_class_labels_iv_returns_int64_labels():
    got = class_labels_iv("y", np.array([2, 0], dtype=np.uint8), 3, batch=2)
    assert got.dtype == np.int64 and got.tolist() == [2, 0]
    assert class_labels_iv("y", np.zeros(0, dtype=int), 3, batch=0).shape == (0,)


def test_samples_iv_refuses_an_empty_axis():
    samples_iv("x", (2, 0), "why", axis=0)  # two samples: nothing to refuse
    with pytest.raises(ValueError, match=r"^x holds no neurons \(shape \(2, 0\)\); why$"):
        samples_iv("x", (2, 0), "why", axis=1, what="neuron")


def test_float_input_iv_reads_each_dtype_as_evsnn_computes_it():
    # one rule for the encoders, the ANN and the decoders: ints -> float64, float16 -> float32
    # (exactly), float32/float64 kept as they are, wider floats refused naming the taker
    for given, want in ((np.int64, np.float64), (np.uint8, np.float64), (np.bool_, np.float64),
                        (np.float16, np.float32), (np.float32, np.float32),
                        (np.float64, np.float64)):
        x = np.array([0, 1, 0.5 if np.dtype(given).kind == "f" else 1], dtype=given)
        got = float_input_iv("x", x, "the encoders take", "pixels")
        assert got.dtype == want
        np.testing.assert_array_equal(got, x.astype(np.float64))
    same = np.zeros(3)
    assert float_input_iv("x", same, "the ANN takes", "input") is same  # no copy
    with pytest.raises(TypeError, match=r"outputs has dtype float128; the decoders take float16, "
                                        r"float32 or float64 outputs \(or integers\): pass "
                                        r"outputs.astype\(numpy.float64\)"):
        float_input_iv("outputs", np.zeros(2, np.longdouble), "the decoders take", "outputs")


def test_pixels_iv_prints_plain_numbers_regression():
    # NumPy 2 printed "got values in [np.float64(2.0), np.float64(2.0)]" (review)
    for x, shown in ((np.array([2.0]), r"\[2\.0, 2\.0\]"),
                     (np.array([3, 0], np.uint8), r"\[0, 3\]"),
                     (np.array([-0.5], np.float32), r"\[-0\.5, -0\.5\]")):
        with pytest.raises(ValueError, match=rf"^x must lie in \[0, 1\], got values in {shown};"):
            pixels_iv(x)


@pytest.mark.parametrize("x", [np.array([2 + 5j, 0]), np.array(["2", "0"]),
                               np.array([b"2", b"0"]), np.array([2.0, None], dtype=object),
                               np.array(["2024-01-01"], dtype="datetime64[D]")])
def test_float_input_iv_refuses_every_kind_but_real_numbers_regression(x):
    # astype(float64) dropped the imaginary part (a ComplexWarning only) and parsed str/bytes, so
    # the losses computed on such scores (review 46)
    dtype = re.escape(str(x.dtype))  # "|S1" and "[D]" are regex syntax
    with pytest.raises(TypeError, match=rf"^scores has dtype {dtype}; the losses take float16, "
                                        r"float32 or float64 scores \(or integers\), no other "
                                        r"kind: pass a real array \(scores\.real if the imaginary "
                                        r"parts are 0, scores\.astype\(numpy\.float64\) for "
                                        r"numbers stored as text or objects\)$"):
        float_input_iv("scores", x, "the losses take", "scores")


def test_real_iv_and_int_iv_take_0d_arrays_regression(tmp_path):
    # a 0-d array (np.load(npz)[key] of a saved number) was refused as "must be a real number"
    # with no fix (review 46)
    np.savez(tmp_path / "p.npz", theta=0.5, T=8)
    with np.load(tmp_path / "p.npz") as f:
        theta, T = f["theta"], f["T"]
    assert theta.shape == T.shape == ()
    got = real_iv("theta", theta, low=0, low_open=True)
    assert type(got) is float and got == 0.5
    got = int_iv("T", T, low=1)
    assert type(got) is int and got == 8
    assert real_iv("x", np.array(3, np.uint8)) == 3.0 and int_iv("n", np.array(2, np.int16)) == 2
    # the value is checked as the scalar would be, and echoed plainly
    with pytest.raises(ValueError, match=r"^theta=0.5 must be finite and > 1$"):
        real_iv("theta", theta, low=1, low_open=True)
    with pytest.raises(ValueError, match=r"^T=8 must be an integer in \[1, 4\]$"):
        int_iv("T", T, low=1, high=4)
    # a 0-d array of a wrong kind is refused as the scalar would be, echoing what was passed
    for bad, shown in ((np.array(True), r"array\(True\)"),
                       (np.array("a"), r"array\('a', dtype='<U1'\)")):
        with pytest.raises(TypeError, match=rf"^x must be a real number, got ndarray {shown}$"):
            real_iv("x", bad)
        with pytest.raises(TypeError, match=rf"^x must be an integer, got ndarray {shown}$"):
            int_iv("x", bad)
    with pytest.raises(TypeError, match=r"^T must be an integer, got ndarray array\(8\.\)$"):
        int_iv("T", np.array(8.0))
    with pytest.raises(TypeError, match=r"^x must be a real number, got ndarray array\(\[0\.5\]\)"):
        real_iv("x", np.array([0.5]))  # 1-D: not a number


def test_real_iv_names_an_int_past_float_range_regression():
    # 10**400 escaped float() as a bare OverflowError naming nothing (review 46)
    with pytest.raises(ValueError, match=r"^lam is an integer of 1329 bits, past float's largest "
                                         r"1\.7976931348623157e\+308; it must be finite and lie "
                                         r"in \[0, 1\]; h$"):
        real_iv("lam", 10**400, low=0, high=1, hint="h")


def test_flag_iv_takes_a_0d_bool_array():
    """A saved flag comes back from np.load as a 0-d array, as a saved number does (real_iv and
    int_iv unwrap it); a 0-d array of another kind is still refused."""
    assert flag_iv("progress", np.array(True)) is True
    assert flag_iv("progress", np.array(False)) is False
    with pytest.raises(TypeError, match="progress must be True or False"):
        flag_iv("progress", np.array(1))


def test_real_iv_says_inf_is_allowed_only_where_a_bound_admits_it():
    """allow_inf with an open bound at infinity admits no infinity: the message said
    '>= 0 (inf allowed)' while refusing inf."""
    with pytest.raises(ValueError, match=r"x=inf must be finite and >= 0$"):
        real_iv("x", math.inf, low=0, high=math.inf, high_open=True, allow_inf=True)
    assert real_iv("x", math.inf, low=0, allow_inf=True) == math.inf
    with pytest.raises(ValueError, match=r"x=nan must be >= 0 \(inf allowed\)$"):
        real_iv("x", math.nan, low=0, allow_inf=True)
    with pytest.raises(ValueError, match=r"x=nan must be >= -1 \(inf allowed\)$"):
        real_iv("x", math.nan, low=-1, high=math.inf, allow_inf=True)
    with pytest.raises(ValueError, match=r"x=-inf must be a number, not NaN \(inf allowed\)$"):
        real_iv("x", -math.inf, low=-math.inf, low_open=True, allow_inf=True)
