"""Corner cases of the clock-mode encoders, the decoders and their VJPs, and the digits split,
aimed where tests/test_encoders.py, tests/test_decoders.py, tests/test_data.py and the encoder /
decoder part of tests/test_clock_corners.py do not go: float64 pixels on the grids k/255, k/100,
k/T (8-bit images, decimals), T = 1 and T up to 2^20, the generator's state after a Poisson call,
fused encoders' shared generator, real-valued outputs in any memory layout and batch, decoder
VJPs against finite differences, stratified splits of tiny classes, and bad arguments.

Oracles: Ding 2025's definitions (Eq. 9-13 and their discrete forms in "Encoding and decoding
schemes"), which tie RateSynS, RateSynE and TTFS of one pixel to the one number x·T; the
reference Poisson stream of tests/reference/encoders.py; sums written out in time order; central
finite differences; rational arithmetic.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from conftest import RTOL_FINITE_DIFF
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reference import encoders as ref_encoders
from reference.helpers import PAPER_PRESETS, PRESET_NAMES, example_count, step_ulps

from evsnn import data
from evsnn import decoders as dec
from evsnn import encoders as enc
from evsnn.conventions import Convention, get_convention
from evsnn.grad import decoder_vjp, input_gradient

# paper rules evaluated in the input's dtype: a Convention no preset bundles, but a valid one
PAPER_IN_INPUT_DTYPE = Convention(name="PAPER_INPUT_ARITH", encoder_arithmetic="input")


@st.composite
def grid_pixels(draw, T, dtype):
    """Pixels at and one or two ulps around k/den for den = T (where x·T is an integer), 255
    (8-bit images), 100 and 10 (decimals), 3, 16 (the digits data set), and 0, 1, the
    subnormal and tiny values."""
    den = draw(st.sampled_from([T, 255, 100, 10, 3, 16]))
    k = draw(st.integers(0, den))
    x = dtype(k / den)
    x = step_ulps(x, draw(st.sampled_from([0, 0, 0, -1, 1, -2, 2])), dtype)
    special = draw(st.sampled_from([None] * 6 + [0.0, 1.0, 5e-324, 1e-300, 1e-40]))
    if special is not None:
        x = dtype(special)
    return dtype(min(max(x, dtype(0)), dtype(1)))


def _product(x, T, conv):
    """x·T as the convention's arithmetic rounds it (float64, or the input's dtype)."""
    if conv.encoder_arithmetic == "float64":
        return np.float64(x) * np.float64(T)
    return x * x.dtype.type(T)


# --------------------------------------------------------------------------- RateSyn / TTFS
@settings(max_examples=example_count(60))
@given(st.integers(1, 300).flatmap(lambda T: st.sampled_from([np.float64, np.float32]).flatmap(
    lambda dt: st.tuples(st.just(T), st.just(dt),
                         st.lists(grid_pixels(T, dt), min_size=1, max_size=6)))),
       st.sampled_from(PAPER_PRESETS + [PAPER_IN_INPUT_DTYPE]))
def test_paper_rules_of_one_pixel_read_one_product(T_dtype_pixels, conv):
    """Ding 2025's discrete forms, t = 1..T with H(0) = 1: RateSynS spikes at every t <= xT
    (floor(xT) spikes, a prefix); RateSynE at every t >= (1 - x)T = T - xT, i.e. the
    floor(xT) + 1 steps T - floor(xT) .. T (all T when x = 1), a suffix; TTFS once, at RateSynE's
    first step. All three follow from the one number xT, so for every pixel RateSynE has
    min(T, S + 1) spikes and TTFS sits at step max(1, T - S), where S is RateSynS's count —
    whatever the rounding of xT (float64 pixels: rounded once; float32 pixels in float64: exact).
    """
    T, dtype, pixels = T_dtype_pixels
    conv = get_convention(conv)
    x = np.array([pixels], dtype=dtype)
    start = enc.ratesyn_start(x, T, convention=conv, dtype=bool)[:, 0]
    end = enc.ratesyn_end(x, T, convention=conv, dtype=bool)[:, 0]
    first = enc.ttfs(x, T, convention=conv, dtype=bool)[:, 0]
    for k, v in enumerate(x[0]):
        S = int(start[:, k].sum())
        assert start[:S, k].all() and not start[S:, k].any(), (v, T)
        assert S == math.floor(_product(v, T, conv)), (v, T)
        E = int(end[:, k].sum())
        assert E == min(T, S + 1), (v, T, S, E)
        assert end[T - E :, k].all(), (v, T)
        assert np.flatnonzero(first[:, k]).tolist() == [max(1, T - S) - 1], (v, T, S)
        if dtype == np.float32 and conv.encoder_arithmetic == "float64":
            assert S == math.floor(Fraction(float(v)) * T)  # exact for float32 pixels


def test_ratesyn_end_and_ttfs_at_a_third_regression():
    """Regression: RateSynE and TTFS (paper rules) rounded (1 - x)·T while RateSynS rounded
    x·T, so one float64 pixel got contradictory trains. x = 1/3 (= 85/255, an 8-bit pixel as
    load_mnist_idx returns it) at T = 30 (Ding 2025 Table 1, MNIST): fl(1/3)·30 rounds to 10,
    RateSynS spiked at t = 1..10; (1 - fl(1/3))·30 rounds to 20.000000000000004, so RateSynE
    spiked at t = 21..30 (10 spikes, not 11) and TTFS at t = 21. By hand from Eq. 10 with
    x T = 10: t >= 30 - 10 = 20, so t = 20..30 and the TTFS spike at t = 20 (index 19)."""
    x = np.array([[85 / 255, 1 / 3]])
    for name in ("DING2025_PAPER", "DEFAULT"):
        assert enc.ratesyn_start(x, 30, convention=name)[:, 0].sum(axis=0).tolist() == [10, 10]
        end = enc.ratesyn_end(x, 30, convention=name)[:, 0]
        assert [np.flatnonzero(end[:, k]).tolist() for k in (0, 1)] == [list(range(19, 30))] * 2
        first = enc.ttfs(x, 30, convention=name)[:, 0]
        assert [np.flatnonzero(first[:, k]).tolist() for k in (0, 1)] == [[19], [19]]


@settings(max_examples=example_count(8))
@given(st.sampled_from([2**16, 2**20, 10**6, 3 * 2**18 + 1]),
       st.lists(st.integers(0, 2**24), min_size=1, max_size=3))
def test_paper_rules_exact_for_float32_pixels_at_large_T(T, mantissas):
    """Float32 pixels m / 2^24 (and the float32 nearest to k/T) at T up to 2^20: x·T is exact
    in float64 (at most 24 + 20 significant bits), so the counts are floor(x T) in rational
    arithmetic and the trains are the prefix / suffix / single spike of the paper's rules."""
    pixels = [m / 2**24 for m in mantissas] + [np.float32(7 / T), np.float32((T - 1) / T)]
    x = np.array([pixels], dtype=np.float32)
    start = enc.ratesyn_start(x, T, convention="DING2025_PAPER", dtype=bool)[:, 0]
    end = enc.ratesyn_end(x, T, convention="DING2025_PAPER", dtype=bool)[:, 0]
    first = enc.ttfs(x, T, convention="DING2025_PAPER", dtype=bool)[:, 0]
    for k, v in enumerate(x[0]):
        S = math.floor(Fraction(float(v)) * T)
        assert start[:S, k].all() and int(start[:, k].sum()) == S
        E = min(T, S + 1)
        assert end[T - E :, k].all() and int(end[:, k].sum()) == E
        assert np.flatnonzero(first[:, k]).tolist() == [max(1, T - S) - 1]


EDGE_PIXELS = [0.0, 1.0, 0.5, 1e-300, 5e-324, 1 - 2**-53, 2**-53, 0.25]


@pytest.mark.parametrize("preset", PRESET_NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_step_closed_forms(preset, dtype):
    """T = 1, t = 1 only. Paper: RateSynS spikes iff x·1 >= 1 (x = 1); RateSynE iff 1 >= 1 - x
    (always); TTFS is RateSynE's first spike (always). Code: RateSynS iff 0/1 < x (x > 0);
    RateSynE iff 0/1 > 1 - x (never, x <= 1); TTFS iff floor(1 - x) == 0 in the input dtype
    (x > 0 with 1 - x below 1; never for x = 0 nor when 1 - x rounds to 1). Poisson: x = 1
    always spikes, x = 0 never under u < x."""
    conv = get_convention(preset)
    x = np.array([EDGE_PIXELS], dtype=dtype)
    s = enc.ratesyn_start(x, 1, convention=conv)[0, 0]
    e = enc.ratesyn_end(x, 1, convention=conv)[0, 0]
    f = enc.ttfs(x, 1, convention=conv)[0, 0]
    p = enc.poisson(x, 1, rng=0, convention=conv)[0, 0]
    v = x[0]
    if conv.ratesyn_rule == "paper":
        np.testing.assert_array_equal(s, v == 1)
        np.testing.assert_array_equal(e, np.ones_like(v))
    else:
        np.testing.assert_array_equal(s, v > 0)
        np.testing.assert_array_equal(e, np.zeros_like(v))
    if conv.ttfs_rule == "paper":
        np.testing.assert_array_equal(f, np.ones_like(v))
    else:
        np.testing.assert_array_equal(f, np.floor(dtype(1) - v) == 0)
    assert p[v == 1].all()
    if conv.poisson_rule == "u<x":
        assert not p[v == 0].any()


# --------------------------------------------------------------------------- Poisson
@settings(max_examples=example_count(30))
@given(st.integers(1, 12), st.integers(1, 4), st.integers(1, 40), st.integers(0, 2**32 - 1),
       st.sampled_from(["DING2025_PAPER", "DING2025_CODE"]), st.sampled_from(["bytes", "uniform"]),
       st.sampled_from([np.float64, np.float32]), st.integers(0, 5))
def test_poisson_consumes_exactly_its_stream(T, B, N, seed, preset, sampler, dtype, skip):
    """Fresh Poisson coding, small batches (the serial path): the spikes are the sampler's
    definition and the generator is left exactly where that definition leaves it (the next
    draw of the caller's generator is the reference's next draw) — "bytes": a word per eight
    draws plus one per tie, "uniform": one per draw. Pixels include 0, 1, one ulp inside each
    and the byte grid j/256, where ties with the threshold's top byte are decided by low bits."""
    conv = get_convention(preset)
    rng = np.random.default_rng(seed)
    x = rng.choice(np.array([0.0, 1.0, 2.0**-53, 1 - 2.0**-53, 0.5, 3 / 256, rng.random()]),
                   size=(B, N)).astype(dtype)
    got_rng = np.random.default_rng(seed)
    want_rng = np.random.default_rng(seed)
    got_rng.random(skip)
    want_rng.random(skip)
    got = enc.poisson(x, T, rng=got_rng, convention=conv, sampler=sampler)
    if sampler == "bytes":
        want = ref_encoders.poisson_bytes_stream(want_rng, x, T, conv.poisson_rule != "u<x")
    else:
        u = want_rng.random((T,) + x.shape)
        want = u < x if conv.poisson_rule == "u<x" else u <= x
    np.testing.assert_array_equal(got, want.astype(dtype))
    assert got_rng.bit_generator.state == want_rng.bit_generator.state
    assert got[:, x == 1].all()


@settings(max_examples=example_count(20))
@given(st.integers(1, 6), st.integers(0, 2**32 - 1),
       st.lists(st.sampled_from(["poisson", "rsc_fresh", "rsc_fixed", "ttfs", "current"]),
                min_size=1, max_size=4))
def test_fused_members_draw_from_one_generator_in_order(T, seed, methods):
    """Ding 2025 fusion encoding as documented: the members' sequences side by side, stochastic
    members drawing from one generator in the listed order."""
    x = np.random.default_rng(seed).random((2, 3))
    x[0, :2] = [0.0, 1.0]
    got = enc.fused(x, T, methods, rng=seed, sigma=0.3)
    g = np.random.default_rng(seed)
    want = np.concatenate([enc.encode(x, m, T, rng=g, sigma=0.3) for m in methods], axis=2)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(enc.encode(x, "fused:" + "+".join(methods), T, rng=seed,
                                             sigma=0.3), want)


# --------------------------------------------------------------------------- decoders
def _time_ordered_sum(outputs):
    """Σ_t outputs[t] added in increasing t, as Ding 2025 Eq. 12 writes it."""
    acc = outputs[0].copy()
    for t in range(1, outputs.shape[0]):
        acc = acc + outputs[t]
    return acc


def _layout(o, how):
    """The same values in another memory layout ([T, B, N] C order, Fortran order, or a view of a
    [B, N, T] array, as a recorder keeping time last would hand it over)."""
    if how == "fortran":
        return np.asfortranarray(o)
    if how == "time_last":
        return np.ascontiguousarray(np.moveaxis(o, 0, -1)).transpose(2, 0, 1)
    return np.ascontiguousarray(o)


@settings(max_examples=example_count(60))
@given(st.integers(1, 40), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**32 - 1),
       st.sampled_from([np.float64, np.float32]), st.sampled_from(["c", "fortran", "time_last"]))
def test_rate_and_membrane_scores_do_not_depend_on_batch_or_layout(T, B, N, seed, dtype, how):
    """Rate (Eq. 12) and membrane decoding of real-valued outputs (traces, potentials): the sum
    over t in time order, the same bits for a sample decoded alone or in a batch, for a neuron
    alone, and in any memory layout; ``cumulative(o)[t]`` is the decoding of the first t + 1
    steps, bit for bit (so TAAcc[T] is the final accuracy)."""
    o = np.random.default_rng(seed).standard_normal((T, B, N)).astype(dtype)
    arr = _layout(o, how)
    total = _time_ordered_sum(o)
    np.testing.assert_array_equal(dec.rate(arr), total)
    np.testing.assert_array_equal(dec.rate(arr, mean=True), total / dtype(T))
    np.testing.assert_array_equal(dec.membrane(arr), total / dtype(T))
    for b in range(B):
        for i in range(N):
            alone = np.ascontiguousarray(o[:, b : b + 1, i : i + 1])
            assert dec.membrane(alone)[0, 0] == dec.membrane(arr)[b, i]
            assert dec.rate(alone)[0, 0] == dec.rate(arr)[b, i]
    for method in ("rate", "membrane"):
        cum = dec.cumulative(arr, method)
        assert cum.dtype == dtype
        for t in range(T):
            np.testing.assert_array_equal(cum[t], dec.decode(o[: t + 1], method),
                                          err_msg=f"{method} t={t}")


def test_membrane_of_a_lone_neuron_regression():
    """Regression: ``membrane`` and ``rate`` summed with NumPy's reduction, which adds a
    contiguous time axis pairwise (one sample with one output neuron, or a time-last layout) and
    other layouts in time order, so the lone neuron's score differed in its last bits from the
    same neuron's score in a batch and from ``cumulative(...)[-1]``. Values 1, 2^-53 repeated:
    in time order each 2^-53 is lost against 1 (round half to even), pairwise partial sums of
    the small values survive."""
    o = np.array([1.0] + [2.0**-53] * 15).reshape(16, 1, 1)
    in_batch = np.concatenate([o, np.zeros_like(o)], axis=1)
    assert dec.rate(o)[0, 0] == 1.0 == dec.rate(in_batch)[0, 0]
    assert dec.membrane(o)[0, 0] == 1 / 16 == dec.cumulative(o, "membrane")[-1, 0, 0]


@settings(max_examples=example_count(40))
@given(st.integers(1, 10), st.integers(1, 3), st.integers(2, 4), st.integers(0, 2**32 - 1),
       st.sampled_from(["rate", "membrane", "ttfs_trace", "ttfs_spikes"]))
def test_decoder_vjp_equals_central_differences(T, B, N, seed, case):
    """``decoder_vjp`` against central finite differences of the decoders along a random
    direction d: <vjp(g), d> = d/dh <g, decode(o + h d)> (RTOL_FINITE_DIFF). TTFS is a maximum:
    differentiable where the maximum of (T - t0)·o[t0] is attained once (traces with distinct
    weighted values; spike rasters at a neuron's first spike, whose weight beats every later
    one), so d is zero on silent neurons."""
    rng = np.random.default_rng(seed)
    method = "ttfs" if case.startswith("ttfs") else case
    if case == "ttfs_spikes":
        o = (rng.random((T, B, N)) < 0.4).astype(np.float64)
    else:
        o = rng.random((T, B, N))
    d = rng.standard_normal((T, B, N))
    if method == "ttfs":
        weighted = np.arange(T, 0, -1).reshape(T, 1, 1) * o
        top2 = np.sort(weighted, axis=0)[-2:]
        margin = (top2[-1] - top2[0]).min() if T > 1 else np.inf
        silent = ~o.any(axis=0)
        d[:, silent] = 0.0
        assume(margin > 1e-3 or case == "ttfs_spikes")
        if case == "ttfs_spikes":
            assume((~silent).any())
    g = rng.standard_normal((B, N))
    h = 1e-7

    def f(step):
        return float((g * dec.decode(o + step * d, method)).sum())

    numeric = (f(h) - f(-h)) / (2 * h)
    analytic = float((decoder_vjp(method, g, o) * d).sum())
    scale = float(np.abs(decoder_vjp(method, g, o)).sum() * np.abs(d).max())
    assert abs(numeric - analytic) <= RTOL_FINITE_DIFF * max(scale, 1.0), (numeric, analytic)


@settings(max_examples=example_count(30))
@given(st.integers(1, 8), st.integers(1, 3), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_decision_time_at_the_last_step_and_ties(T, B, N, seed):
    """A sample whose only output spike is at the last step decides at t0 = T - 1 (t = T with
    origin 1); silent samples give -1; equal scores (two neurons with the same train or the same
    potentials) go to the lowest index for every decoder."""
    rng = np.random.default_rng(seed)
    s = np.zeros((T, B, N))
    last = rng.integers(0, N)
    s[T - 1, 0, last] = 1
    np.testing.assert_array_equal(dec.decision_times(s), [T - 1] + [-1] * (B - 1))
    np.testing.assert_array_equal(dec.decision_times(s, origin=1), [T] + [-1] * (B - 1))
    v = rng.standard_normal((T, B, N))
    if N > 1:
        v[:, :, 1] = v[:, :, 0] = v.max(axis=2).max() + 1  # neurons 0 and 1 tie at the top
        for method in ("rate", "membrane", "ttfs"):
            assert (dec.predict(dec.decode(v, method)) == 0).all(), method


# --------------------------------------------------------------------------- the digits split
@settings(max_examples=example_count(40))
@given(st.lists(st.integers(1, 9), min_size=1, max_size=5), st.integers(0, 2**32 - 1),
       st.sampled_from([0.5, 0.25, 0.1, 0.9, 1 / 3, 0.75]))
def test_stratified_split_partitions_every_class(sizes, seed, fraction):
    """Train and test are disjoint, sorted, cover every index, and each class gives
    round(fraction · n_class) test samples (Python's round, half to even, as documented); the
    same seed gives the same split whatever the order of the labels' classes — or a clear error
    when a part would be empty."""
    y = np.repeat(np.arange(len(sizes)), sizes)
    y = y[np.random.default_rng(seed).permutation(y.size)]
    n_test = sum(round(fraction * n) for n in sizes)
    if n_test == 0 or n_test == y.size:
        with pytest.raises(ValueError, match=f"test_fraction={fraction!r} leaves the "
                                             f"{'test' if n_test == 0 else 'train'} part empty"):
            data.stratified_split(y, fraction, seed)
        return
    train, test = data.stratified_split(y, fraction, seed)
    assert np.intersect1d(train, test).size == 0
    np.testing.assert_array_equal(np.union1d(train, test), np.arange(y.size))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    for c, n in enumerate(sizes):
        assert int((y[test] == c).sum()) == round(fraction * n)
    again = data.stratified_split(list(y), fraction, seed)
    np.testing.assert_array_equal(again[1], test)


def test_digits_pixels_are_sixteenths_and_splits_are_rows_of_all():
    """load_digits scales 0..16 by 1/16: every pixel is an exact multiple of 1/16 in [0, 1] (so
    x·T is exact in float64 and every encoder rule is exact on it); train and test are the rows
    ``stratified_split`` names, with their labels."""
    full = data.load_digits("all")
    assert np.all(full.x * 16 == np.round(full.x * 16)) and full.x.min() == 0
    train_idx, test_idx = data.stratified_split(full.y, 0.3, 5)
    for part, idx in (("train", train_idx), ("test", test_idx)):
        d = data.load_digits(part, test_fraction=0.3, seed=5)
        np.testing.assert_array_equal(d.x, full.x[idx])
        np.testing.assert_array_equal(d.y, full.y[idx])


# --------------------------------------------------------------------------- float16 pixels
# float16 pixels were refused (TypeError "x has dtype float16; the encoders take float32 or
# float64 pixels"); they are read as float32, exactly, so they encode as those float32 values
_X16 = np.array([[0.0, 1.0, 0.5, 2.0**-24, 0.1, 0.3333, 0.9995, 0.7]], dtype=np.float16)


_SPIKES = ("poisson", "ratesyn_start", "ratesyn_end", "ttfs")  # the encoders with dtype=bool


@pytest.mark.parametrize("convention", PRESET_NAMES)
@pytest.mark.parametrize("method, dtype", [
    (m, d) for m in [*enc.ENCODERS, "fused:current+ttfs"]
    for d in (None, np.float64, np.float32, bool) if d is not bool or m in _SPIKES
])
def test_float16_pixels_encode_as_the_same_values_in_float32(method, convention, dtype):
    kw = dict(convention=convention, rng=3, sigma=0.2, dtype=dtype)
    got = enc.encode(_X16, method, 7, **kw)
    want = enc.encode(_X16.astype(np.float32), method, 7, **kw)
    assert got.dtype == want.dtype == (np.float32 if dtype is None else dtype)
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(got.view(np.uint8), want.view(np.uint8))  # bit for bit


def test_float_pixels_wider_than_float64_are_refused():
    if np.dtype(np.longdouble).itemsize <= 8:
        pytest.skip("long double is float64 on this platform")
    with pytest.raises(TypeError, match=r"x has dtype float\d+; the encoders take float16, "
                                        r"float32 or float64 pixels \(or integers\): pass "
                                        r"x.astype\(numpy.float64\)"):
        enc.current(np.array([[0.5]], dtype=np.longdouble), 3)


# --------------------------------------------------------------------------- bad arguments
BAD = [
    (lambda: enc.ttfs([[0.5]], 3, dtype="bogus"), TypeError,
     r"dtype='bogus' is not a numpy dtype; use numpy.float64, numpy.float32 or bool"),
    (lambda: enc.fused(np.array([0.5, 0.2]), 3, ("current", "ttfs")), ValueError,
     r"x has shape \(2,\); fusion stacks the encoders on the first feature axis, so x must be "
     r"\[B, features"),
    (lambda: enc.ttfs([[np.nan, 0.5]], 3), ValueError, "x holds NaN or infinite values"),
    (lambda: enc.poisson([[1 + 2**-52]], 3, rng=0), ValueError, r"x must lie in \[0, 1\]"),
    (lambda: enc.ratesyn_end([[-5e-324]], 3), ValueError, r"x must lie in \[0, 1\]"),
    (lambda: enc.ratesyn_start([[0.5]], 0), ValueError, r"T=0 must be an integer >= 1"),
    (lambda: enc.ratesyn_start([[0.5]], np.int64(-2)), ValueError, r"T=-2 must be an integer"),
    (lambda: input_gradient("fused:current+ttfs", np.zeros((2, 4)), np.zeros((2, 4))),
     ValueError, r"seq has shape \(2, 4\); a fused sequence is \[T, B, features"),
    (lambda: dec.predict(np.array([[0.1, np.nan, 0.5]])), ValueError,
     r"scores hold NaN \(sample\(s\) \[0\]\); "),
    (lambda: dec.predict(np.zeros((2, 0))), ValueError,
     r"scores have no classes \(shape \(2, 0\)\)"),
    (lambda: dec.rate(np.ones((2, 1, 1)), mean="no"), TypeError, "mean must be True or False"),
    (lambda: data.stratified_split(np.arange(4) % 2, "0.5", 0), TypeError,
     "test_fraction must be a real number"),
    (lambda: data.stratified_split(np.arange(4) % 2, 0.5, None), TypeError,
     r"seed must be an integer \(the split's seed\), got NoneType None"),
    (lambda: data.load_digits("test", test_fraction=0.001), ValueError,
     "test_fraction=0.001 leaves the test part empty"),
]


@pytest.mark.parametrize("call, exc, match", BAD, ids=range(len(BAD)))
def test_bad_arguments_raise_naming_them(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
