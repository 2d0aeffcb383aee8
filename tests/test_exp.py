"""evsnn's own exponential (``evsnn/_exp.py``), float64 and float32: the kernels against their
twins in ``tests/reference/exp.py`` bit for bit, accuracy against the 80-bit ``np.longdouble``
exponential, the special arguments, the constants, and the array wrapper."""

import math
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference import exp as ref

from evsnn import _exp
from evsnn._exp import (
    _exp32_reduce_kernel,
    _exp32_row_kernel,
    _exp32_scalar_kernel,
    _exp_like_kernel,
    _exp_reduce_kernel,
    _exp_row_kernel,
    _exp_scalar_kernel,
    exp,
)

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


@pytest.mark.parametrize("kernel,dtype,values,moderate", [
    ("_exp_row_kernel", np.float64, ANY_DOUBLE, st.floats(-720.0, 720.0)),
    # a float32 out of the float64 kernel: the float64 value rounded once
    ("_exp_row_kernel", np.float32, ANY_SINGLE, st.floats(-720.0, 720.0, width=32)),
    ("_exp32_row_kernel", np.float32, ANY_SINGLE, st.floats(-110.0, 95.0, width=32)),
])
@given(data=st.data())
def test_exp_row_is_its_twin(kernel, dtype, values, moderate, data):
    """The kernel scales by two powers of two made from integer bits, the twin by ldexp: the
    same bits, also in place."""
    y = data.draw(hnp.arrays(dtype, st.integers(0, 40), elements=st.one_of(values, moderate)))
    out = np.empty_like(y)
    getattr(_exp, kernel)(y, out)
    twin = np.empty_like(y)
    getattr(ref, kernel)(y, twin)
    _same_bits(out, twin)
    in_place = y.copy()
    getattr(_exp, kernel)(in_place, in_place)
    _same_bits(in_place, twin)


@pytest.mark.parametrize("kernel,dtype,lo,hi", [
    ("_exp_row_kernel", np.float64, -745.0, 709.8), ("_exp32_row_kernel", np.float32, -104.0, 89.0),
])
def test_exp_row_is_its_twin_on_many_arguments(kernel, dtype, lo, hi):
    """Hypothesis's examples are few and favour special values; a change of the polynomial's
    grouping alters the float32 result of about one argument in 200, so compare 20000."""
    rng = np.random.default_rng(11)
    y = np.concatenate([rng.uniform(lo, hi, 10_000), rng.uniform(-2.0, 2.0, 10_000)]).astype(dtype)
    out = np.empty_like(y)
    getattr(_exp, kernel)(y, out)
    twin = np.empty_like(y)
    getattr(ref, kernel)(y, twin)
    _same_bits(out, twin)


@given(ANY_SINGLE)
@example(0.0)
@example(-0.0)
@example(-86.5)
@example(88.0)
@example(88.72283)  # exp rounds to the largest float32
@example(88.72284)  # to inf
@example(89.0)
@example(-87.33655)  # the smallest normal float32
@example(-103.27893)  # the smallest subnormal
@example(-103.97208)  # half of it: rounds to 0
@example(-104.0)
def test_exp32_scalar_is_its_twin(x):
    got = _exp32_scalar_kernel(np.float32(x))  # numba returns float32 results as Python floats
    assert math.isnan(got) or np.float32(got) == got
    _same_bits(np.float32(got), ref._exp32_scalar_kernel(np.float32(x)))


@given(st.floats(min_value=-104.0, max_value=89.0, width=32))
def test_exp32_reduce_is_its_twin(x):
    # the twin computes in NumPy float32: equal values say the kernel's arithmetic stayed float32
    got = [np.float32(v) for v in _exp32_reduce_kernel(np.float32(x))]
    assert got == list(ref._exp32_reduce_kernel(np.float32(x)))


def test_exp32_row_rounds_float64_arguments_to_float32():
    y = np.array([0.1, -3.3, 88.1, 88.72284, -103.5, 1e-9])
    out = np.empty(6, np.float32)
    _exp32_row_kernel(y, out)
    _same_bits(out, np.array([_exp32_scalar_kernel(np.float32(v)) for v in y], np.float32))
    assert out[3] == np.inf and 0 < out[4] < np.finfo(np.float32).tiny


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(x=st.one_of(ANY_DOUBLE, st.floats(-110.0, 95.0)))
def test_exp_like_is_its_twin(dtype, x):
    """Float32 arrays get the float32 exponential of the argument rounded to float32, the
    others the float64 one."""
    like = np.empty(1, dtype)
    got = dtype(_exp_like_kernel(x, like))
    _same_bits(got, ref._exp_like_kernel(x, like))
    with np.errstate(over="ignore"):
        want = (_exp32_scalar_kernel(np.float32(x)) if dtype == np.float32
                else _exp_scalar_kernel(x))
    _same_bits(got, dtype(want))


def test_exp_row_float32_out_of_float64_arguments():
    y = np.array([0.5, -3.0, 100.0, -120.0, 89.0])
    out = np.empty(5, np.float32)
    _exp_row_kernel(y, out)
    twin = np.empty(5, np.float32)
    ref._exp_row_kernel(y, twin)
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


def test_exp_like_takes_the_float32_exponential_for_float32():
    """The two exponentials differ in the last bit on about one float32 argument in ten: on 2000
    arguments a float32 ``like`` must pick the float32 one every time."""
    x = np.random.default_rng(3).uniform(-20.0, 20.0, 2000).astype(np.float32)
    f32, f64 = np.empty(1, np.float32), np.empty(1)
    got = np.array([_exp_like_kernel(v, f32) for v in x], np.float32)
    _same_bits(got, np.array([_exp32_scalar_kernel(v) for v in x], np.float32))
    assert np.mean(got != np.array([_exp_scalar_kernel(v) for v in x]).astype(np.float32)) > 0.05
    _same_bits(np.array([_exp_like_kernel(v, f64) for v in x]),
               np.array([_exp_scalar_kernel(v) for v in x]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hard_reset", [True, False])
def test_bptt_kernel_takes_the_exponential_of_its_dtype(dtype, hard_reset):
    """The BPTT kernel's sigmoid row (exp by _exp32_row_kernel in float32) is its twin (exp by
    _exp_like_kernel) bit for bit; tests/test_grad.py compares float32 to a tolerance only."""
    from reference import grad as ref_grad

    from evsnn.grad.backward import _bptt_layer

    rng = np.random.default_rng(5)
    T, B, N = 6, 4, 300
    m = (rng.standard_normal((T, B, N)) * 2.0 + 0.5).astype(dtype)
    spikes = (m >= 1).astype(dtype)
    g = rng.standard_normal((T, B, N)).astype(dtype)
    args = (g, m, spikes, np.full(T, 0.9, dtype), dtype(1), dtype(0), hard_reset, True, False,
            dtype(0), 0, dtype(5), dtype(5), False, False)
    got, want = np.empty_like(g), np.empty_like(g)
    _bptt_layer(*args, got)
    ref_grad._bptt_layer_kernel(*args, want)
    _same_bits(got, want)


def _float32_errors(x):
    """evsnn's float32 exp of ``x``, the correctly rounded float32 exp (from the 80-bit one) and
    the error in float32 ulps of the correctly rounded value (the subnormal grid below)."""
    got = exp(x)
    assert got.dtype == np.float32
    true = np.exp(x.astype(np.longdouble))
    with np.errstate(over="ignore"):
        rounded = true.astype(np.float32)
    ulp = np.spacing(rounded).astype(np.longdouble)
    return got, rounded, np.abs((got.astype(np.longdouble) - true) / ulp)


@needs_extended
def test_float32_within_1_05_ulp_and_mostly_correctly_rounded():
    """The docstring's float32 accuracy (an exhaustive run over every float32 in [−104, 89] gave
    at most 1.047 ulp, and 90 % correctly rounded for |x| from 1 to 64): on a sample of the
    whole range and of the surrogate's, and on every float32 of [2, 4)."""
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-104.0, 89.0, 300_000), rng.uniform(-40.0, 40.0, 300_000),
                        rng.normal(0.0, 5.0, 300_000)]).astype(np.float32)
    got, rounded, err = _float32_errors(x)
    finite = np.isfinite(rounded)
    assert err[finite].max() <= 1.05, err[finite].max()
    assert np.array_equal(got[~finite], rounded[~finite])  # inf beyond the largest float32
    assert np.mean(got == rounded) >= 0.895, np.mean(got == rounded)
    every = np.arange(np.float32(2.0).view(np.int32), np.float32(4.0).view(np.int32),
                      dtype=np.int32).view(np.float32)
    got, rounded, err = _float32_errors(every)
    assert err.max() <= 1.05 and 0.895 <= np.mean(got == rounded) <= 0.905, (
        err.max(), np.mean(got == rounded))
    # near 0 the polynomial's first terms dominate: within half an ulp and +-0 gives exactly 1
    got, rounded, err = _float32_errors(rng.uniform(-2**-10, 2**-10, 100_000).astype(np.float32))
    assert err.max() <= 0.502 and np.mean(got == rounded) >= 0.998


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


def _nearest_float32(d):
    """The float32 nearest the Decimal ``d`` (checked among three neighbours, so that a double
    rounding through float64 cannot hide)."""
    f = np.float32(float(d))
    near = [np.nextafter(f, np.float32(-np.inf)), f, np.nextafter(f, np.float32(np.inf))]
    return min(near, key=lambda c: abs(Decimal(float(c)) - d))


def test_float32_constants():
    assert all(type(c) is np.float32 for c in (
        _exp.LOG2E_F32, _exp.LN2_HI_F32, _exp.LN2_LO_F32, _exp.SHIFT_F32, _exp.UNDER_F32,
        _exp.OVER_F32, _exp.D2, _exp.D3, _exp.D4, _exp.D5, _exp.D6, _exp.D7, _exp.ONE_F32))
    hi_bits = int(np.array([_exp.LN2_HI_F32]).view(np.int32)[0])
    assert hi_bits & 0xFF == 0  # k·LN2_HI_F32 exact for |k| < 2^8
    with localcontext() as ctx:
        ctx.prec = 60
        ln2 = Decimal(2).ln()
        assert hi_bits == _nearest_float32(ln2).view(np.int32) & ~0xFF
        assert _exp.LN2_LO_F32 == _nearest_float32(ln2 - Decimal(float(_exp.LN2_HI_F32)))
        assert _exp.LOG2E_F32 == _nearest_float32(1 / ln2)
        coeffs = [_exp.D2, _exp.D3, _exp.D4, _exp.D5, _exp.D6, _exp.D7]
        assert coeffs == [_nearest_float32(1 / Decimal(math.factorial(j))) for j in range(2, 8)]
    assert _exp.SHIFT_F32 == 1.5 * 2.0**23
    assert _exp.SHIFT_F32_BITS == np.array([_exp.SHIFT_F32]).view(np.int32)[0]
    # over [UNDER_F32, OVER_F32] k runs from -150 to 128: 2^k splits into 2^k1 (|k1| ≤ 64) and
    # 2^(k - k1), both normal float32, and exp(r) · 2^(k - k1) (k < 0) is normal; and the
    # reduced |r| stays within ln 2 / 2 (+ rounding) where the degree-7 polynomial was bounded
    ks = [_exp32_reduce_kernel(_exp.UNDER_F32)[1], _exp32_reduce_kernel(_exp.OVER_F32)[1]]
    assert ks == [-150.0, 128.0] and _exp.POW2_SPLIT_F32 == 64
    assert np.float32(0.7) * np.float32(2.0**(-150 + 64)) >= np.finfo(np.float32).tiny
    ks = [_exp_reduce_kernel(_exp.UNDER)[1], _exp_reduce_kernel(_exp.OVER)[1]]
    assert ks == [-1076.0, 1024.0] and _exp.POW2_SPLIT == 512
    assert 0.7 * 2.0**(-1076 + 512) >= np.finfo(np.float64).tiny
    x = np.linspace(-104.0, 89.0, 100_001, dtype=np.float32)
    k = np.array([_exp32_reduce_kernel(v)[1] for v in x[::97]])
    r = x[::97].astype(np.float64) - k * math.log(2.0)
    assert np.abs(r).max() < math.log(2.0) / 2 + 1e-5


@pytest.mark.parametrize("kernel,dtype,ends", [
    ("_exp32_row_kernel", np.float32, [-104.0, 89.0, 88.72283, -103.27893, -103.97208, -87.33655,
                                       44.70799, 45.40114, 0.0]),
    ("_exp_row_kernel", np.float64, [-746.0, 710.0, 709.782712893384, -745.1332191019411,
                                     -708.3964185322641, 355.23793003697, 355.93107721753, 0.0]),
])
def test_exp_row_at_the_ends_and_the_split_is_the_twin(kernel, dtype, ends):
    """64 arguments either side (by bits) of each end of the clamp, of the largest finite
    result, of the smallest subnormal and normal results and of the arguments where k crosses
    ±POW2_SPLIT (2^k made of two factors from there on): the kernel's bits are the ldexp twin's."""
    ity = np.int32 if dtype == np.float32 else np.int64
    y = np.concatenate([np.arange(-64, 65, dtype=ity) + np.array([e], dtype).view(ity)
                        for e in ends]).view(dtype)
    y = np.concatenate([y, -y])  # k from ±64 to ±65 at ±64.5 ln 2 (float64: ±512.5 ln 2)
    out, twin = np.empty_like(y), np.empty_like(y)
    getattr(_exp, kernel)(y, out)
    getattr(ref, kernel)(y, twin)
    _same_bits(out, twin)
    tiny = np.finfo(dtype).tiny
    assert np.isinf(out).sum() > 0 and (out == 0).sum() > 0 and ((out > 0) & (out < tiny)).sum()


@pytest.mark.parametrize("band", ["over", "under", "upper band", "lower band", "nan", "mixed"])
def test_exp32_row_out_of_range_rows_are_the_twin(band):
    """Rows mostly in moderate arguments with some beyond 89 (inf) and below -104 (0), some in
    the bands where the result is near the float32 range's ends (two-factor scaling: subnormal
    or near overflow) and NaN, on their own and mixed in one row (the rows of a BPTT pass over
    membranes far below θ): the twin's bits, in place too."""
    rng = np.random.default_rng(5)
    pick = {
        "over": [(89.0, 300.0)], "under": [(-400.0, -104.0)], "upper band": [(88.0, 89.0)],
        "lower band": [(-104.0, -86.5)], "nan": [], "mixed": [(89.0, 300.0), (-400.0, -104.0),
                                                              (88.0, 89.0), (-104.0, -86.5)],
    }[band]
    rows = []
    for n in (1, 7, 8, 9, 500):
        y = rng.uniform(-80.0, 80.0, n).astype(np.float32)
        for lo, hi in pick:
            k = rng.integers(0, n, max(1, n // 20))
            y[k] = rng.uniform(lo, hi, k.size)
        if band in ("nan", "mixed"):
            y[rng.integers(0, n)] = np.nan
        if band == "mixed":
            y[rng.integers(0, n)] = np.inf
            y[rng.integers(0, n)] = -np.inf
            y[rng.integers(0, n)] = np.float32(89.0)  # the ends themselves
            y[rng.integers(0, n)] = np.float32(-104.0)
        rows.append(y)
    for y in rows:
        out = np.empty_like(y)
        _exp32_row_kernel(y, out)
        twin = np.empty_like(y)
        ref._exp32_row_kernel(y, twin)
        _same_bits(out, twin)
        in_place = y.copy()
        _exp32_row_kernel(in_place, in_place)
        _same_bits(in_place, twin)


def test_array_wrapper_keeps_float32_and_shape():
    x32 = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    assert exp(x32).dtype == np.float32 and exp(x32).shape == (3, 4)
    assert exp(np.arange(4)).dtype == np.float64
    assert exp(2.0).shape == () and float(exp(2.0)) == _exp_scalar_kernel(2.0)
    strided = np.linspace(-1, 1, 20)[::3]
    np.testing.assert_array_equal(exp(strided), [_exp_scalar_kernel(v) for v in strided])


@pytest.mark.parametrize("bad", [np.array([1 + 2j]), np.array(["1.0"]), np.array([None])])
def test_exp_refuses_what_is_not_real(bad):
    with pytest.raises(TypeError, match=f"dtype {bad.dtype}"):
        exp(bad)
