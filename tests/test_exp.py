"""evsnn's own exponential (``evsnn/_exp.py``): the kernels against their twins in
``tests/reference/exp.py`` bit for bit, accuracy against the 80-bit ``np.longdouble`` exponential,
the special arguments, the constants, and the array wrapper."""

import math
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference import exp as ref

from evsnn import _exp
from evsnn._exp import _exp_reduce_kernel, exp, _exp_row_kernel, _exp_scalar_kernel

# x86-64's long double carries 64 mantissa bits: 11 more than a double, enough to tell which way
# a double (or float32) result should round except in very rare near-ties
EXTENDED = np.finfo(np.longdouble).nmant >= 63
needs_extended = pytest.mark.skipif(not EXTENDED, reason="np.longdouble is not 80-bit here")

ANY_DOUBLE = st.floats(allow_nan=True, allow_infinity=True, width=64)
ANY_SINGLE = st.floats(allow_nan=True, allow_infinity=True, width=32)


def _same_bits(a, b):
    """Equal values with equal signs of zero, NaN equal to NaN."""
    a, b = np.atleast_1d(a), np.atleast_1d(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a.view(np.uint8), b.view(np.uint8)) or (
        np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b))
    ), (a, b)


@given(ANY_DOUBLE)
@example(0.0)
@example(-0.0)
@example(708.0)
@example(-708.0)
@example(709.0)
@example(709.7827128933840)
@example(709.79)
@example(-745.13321910194110)
@example(-745.2)
def test_exp_scalar_is_its_twin(x):
    _same_bits(np.float64(_exp_scalar_kernel(x)), np.float64(ref._exp_scalar_kernel(x)))


@given(st.floats(min_value=-746.0, max_value=710.0))
def test_exp_reduce_is_its_twin(x):
    assert [np.float64(v) for v in _exp_reduce_kernel(x)] == [np.float64(v) for v in
                                                        ref._exp_reduce_kernel(x)]


@pytest.mark.parametrize("dtype,values", [(np.float64, ANY_DOUBLE), (np.float32, ANY_SINGLE)])
@given(data=st.data())
def test_exp_row_is_its_twin(dtype, values, data):
    """In range the kernel scales by adding k to the exponent bits, outside it (and for NaN) it
    takes _exp_scalar_kernel: both must give the twin's ldexp result, also in place."""
    moderate = st.floats(-720.0, 720.0, width=32 if dtype == np.float32 else 64)
    y = data.draw(hnp.arrays(dtype, st.integers(0, 40), elements=st.one_of(values, moderate)))
    spare = data.draw(st.integers(0, 3))  # work arrays may be longer than the row
    out = np.empty_like(y)
    _exp_row_kernel(y, out, np.empty(y.size + spare), np.empty(y.size + spare))
    twin = np.empty_like(y)
    ref._exp_row_kernel(y, twin, None, None)
    _same_bits(out, twin)
    in_place = y.copy()
    _exp_row_kernel(in_place, in_place, np.empty(y.size), np.empty(y.size))
    _same_bits(in_place, twin)


def test_exp_row_float32_out_of_float64_arguments():
    y = np.array([0.5, -3.0, 100.0, -120.0, 89.0])
    out = np.empty(5, np.float32)
    _exp_row_kernel(y, out, np.empty(5), np.empty(5))
    twin = np.empty(5, np.float32)
    ref._exp_row_kernel(y, twin, None, None)
    _same_bits(out, twin)
    assert out[4] == np.inf and out[3] == 0.0


@needs_extended
def test_float64_within_one_ulp_of_the_exponential():
    rng = np.random.default_rng(20261202)
    x = np.concatenate([
        rng.uniform(-745.0, 709.78, 200_000),
        rng.uniform(-40.0, 40.0, 200_000),  # the surrogate's range
        rng.uniform(-1e-6, 1e-6, 20_000),
        np.linspace(-708.5, -707.5, 2001), np.linspace(708.5, 709.78, 2001),
    ])
    got = exp(x)
    true = np.exp(x.astype(np.longdouble))
    normal = true >= np.finfo(np.float64).tiny
    err = np.abs((got.astype(np.longdouble) - true) / np.spacing(got))[normal]
    assert err.max() < 1.0, err.max()
    # subnormal results: one rounding of the scaled value, so within an ulp of the subnormal grid
    sub = ~normal
    assert np.all(np.abs(got[sub] - true[sub]) <= np.finfo(np.float64).smallest_subnormal)


@needs_extended
def test_float32_is_correctly_rounded():
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-103.0, 88.7, 300_000),
                        rng.normal(0.0, 5.0, 300_000)]).astype(np.float32)
    got = exp(x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.exp(x.astype(np.longdouble)).astype(np.float32))


@pytest.mark.parametrize("x,want", [
    (0.0, 1.0), (-0.0, 1.0), (math.inf, math.inf), (-math.inf, 0.0), (709.79, math.inf),
    (-745.0, np.finfo(np.float64).smallest_subnormal), (-745.2, 0.0), (1e300, math.inf),
    (-1e300, 0.0),
])
def test_special_arguments(x, want):
    assert _exp_scalar_kernel(x) == want
    assert exp(np.array([x]))[0] == want
    if abs(x) < 3e38:  # representable in float32
        assert exp(np.array([x], np.float32))[0] == np.float32(want)


def test_nan_stays_nan():
    assert math.isnan(_exp_scalar_kernel(math.nan))
    assert np.isnan(exp(np.array([1.0, math.nan, -1.0]))).tolist() == [False, True, False]


def test_constants():
    hi_bits = int(np.array([_exp.LN2_HI]).view(np.int64)[0])
    assert hi_bits & ((1 << 20) - 1) == 0  # k·LN2_HI exact for |k| < 2^20
    with localcontext() as ctx:
        ctx.prec = 60
        ln2 = Decimal(2).ln()
        # LN2_LO is the double nearest ln 2 − LN2_HI: off by at most half its ulp (~1e-26; the
        # reduction then errs by |k| times that, below 1e-22 for |k| <= 1075)
        off = abs(Decimal(_exp.LN2_HI) + Decimal(_exp.LN2_LO) - ln2)
        assert off <= Decimal(float(np.spacing(_exp.LN2_LO))) / 2
    coeffs = [_exp.C2, _exp.C3, _exp.C4, _exp.C5, _exp.C6, _exp.C7, _exp.C8, _exp.C9, _exp.C10,
              _exp.C11, _exp.C12, _exp.C13]
    assert coeffs == [float(1 / Decimal(math.factorial(j))) for j in range(2, 14)]
    assert _exp.SHIFT == 1.5 * 2.0**52


def test_array_wrapper_keeps_float32_and_shape():
    x32 = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    assert exp(x32).dtype == np.float32 and exp(x32).shape == (3, 4)
    assert exp(np.arange(4)).dtype == np.float64
    assert exp(2.0).shape == () and float(exp(2.0)) == _exp_scalar_kernel(2.0)
    strided = np.linspace(-1, 1, 20)[::3]
    np.testing.assert_array_equal(exp(strided), [_exp_scalar_kernel(v) for v in strided])
