"""evsnn's compiled normals (``evsnn/_normals.py``): PCG64 against NumPy's own PCG64 bit for bit,
the ziggurat kernels against their twins in ``tests/reference/normals.py`` bit for bit, the
tables against their defining equations, and the law against N(0, 1)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import normals as ref
from scipy import stats

from evsnn import _normals
from evsnn._normals import (
    ZIGGURAT_R,
    _pcg64_next_kernel,
    _standard_normal_chunks_kernel,
    _standard_normal_kernel,
    _uniform_kernel,
    pcg64_state,
    standard_normal_chunks,
)

TABLES = (_normals._BOUND, _normals._WIDTH, _normals._HEIGHT)
SEEDS = st.integers(0, 2**128 - 1)


@given(seed=SEEDS, n=st.integers(1, 300))
@settings(max_examples=40)
def test_pcg64_outputs_are_numpys(seed, n):
    # the stream numpy.random.PCG64(seed).random_raw() gives (numpy's own implementation)
    state = pcg64_state(seed)
    out = _raw(state, n)
    bitgen = np.random.PCG64(seed)
    assert np.array_equal(out, bitgen.random_raw(n))
    assert np.array_equal(state, pcg64_state_after(bitgen))
    twin_state = [int(v) for v in pcg64_state(seed)]
    assert [ref._pcg64_next_kernel(twin_state) for _ in range(n)] == [int(v) for v in out]


def _raw(state, n):
    """The next n outputs of the stream ``state`` (advanced in place)."""
    return np.array([_pcg64_next_kernel(state) for _ in range(n)], dtype=np.uint64)


def pcg64_state_after(bitgen):
    st_ = bitgen.state["state"]
    mask = 2**64 - 1
    return np.array([st_["state"] >> 64, st_["state"] & mask, st_["inc"] >> 64,
                     st_["inc"] & mask], dtype=np.uint64)


@given(seed=SEEDS)
@settings(max_examples=20)
def test_next_and_uniform_are_the_twins(seed):
    state, twin = pcg64_state(seed), [int(v) for v in pcg64_state(seed)]
    assert int(_pcg64_next_kernel(state)) == ref._pcg64_next_kernel(twin)
    u = _uniform_kernel(state)
    assert u == ref._uniform_kernel(twin) and 0.0 <= u < 1.0
    assert [int(v) for v in state] == twin


@given(seed=SEEDS, n=st.integers(1, 2000))
@settings(max_examples=30)
def test_normals_are_the_twins(seed, n):
    state, twin_state = pcg64_state(seed), [int(v) for v in pcg64_state(seed)]
    out, twin = np.empty(n), [0.0] * n
    _standard_normal_kernel(state, out, *TABLES)
    ref._standard_normal_kernel(twin_state, twin)
    assert np.array_equal(out, np.array(twin))
    assert [int(v) for v in state] == twin_state  # the same draws consumed


def test_a_long_stream_with_tail_and_height_tests_is_the_twin():
    # 40,000 draws: about 10 from the tail (P(|X| > r) = 2.6e-4) and a few hundred height tests
    n = 40_000
    state = pcg64_state(20261205)
    out, twin = np.empty(n), [0.0] * n
    _standard_normal_kernel(state, out, *TABLES)
    ref._standard_normal_kernel([int(v) for v in pcg64_state(20261205)], twin)
    assert np.array_equal(out, np.array(twin))
    assert np.sum(np.abs(out) > ZIGGURAT_R) >= 3  # the tail branch ran
    # more draws than normals (rejected height tests, the uniforms of the slow paths)
    after_n = pcg64_state(20261205)
    _raw(after_n, n)
    assert not np.array_equal(state, after_n)


@given(seeds=st.lists(SEEDS, min_size=1, max_size=4), m=st.integers(1, 500))
@settings(max_examples=20)
def test_chunks_are_the_twin_and_each_row_its_own_stream(seeds, m):
    states = np.stack([pcg64_state(s) for s in seeds])
    out = standard_normal_chunks(states, np.empty((len(seeds), m)))
    twin_states, twin = np.stack([pcg64_state(s) for s in seeds]), [[0.0] * m for _ in seeds]
    ref._standard_normal_chunks_kernel(twin_states, twin)
    assert np.array_equal(out, np.array(twin)) and np.array_equal(states, twin_states)
    for c, s in enumerate(seeds):  # row c depends on states[c] alone
        row = np.empty(m)
        _standard_normal_kernel(pcg64_state(s), row, *TABLES)
        assert np.array_equal(out[c], row)
    alone = np.empty((1, m))
    _standard_normal_chunks_kernel(np.stack([pcg64_state(seeds[-1])]), alone, *TABLES)
    assert np.array_equal(alone[0], out[-1])


def test_tables_satisfy_their_definition():
    bound, width, height, x = _normals._ziggurat_tables()

    def f(t):
        return math.exp(-0.5 * t * t)

    r = ZIGGURAT_R
    # the area of each layer and of the base with its tail (module docstring)
    v = r * f(r) + math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))
    assert x[0] == 0.0 and x[-1] == r and np.all(np.diff(x) > 0)
    areas = [x[i] * (f(x[i - 1]) - f(x[i])) for i in range(1, 256)]
    # layers 2…255 by construction (rounding only); the top one closes to the precision r has
    assert max(abs(a / v - 1) for a in areas[1:]) < 1e-13
    assert abs(areas[0] / v - 1) < 2e-13
    assert width[0] * 2.0**52 * f(r) == pytest.approx(v, rel=1e-14)
    assert all(width[i] * 2.0**52 == x[i] for i in range(1, 256))
    assert all(height[i] == f(x[i]) for i in range(1, 256)) and height[0] == 1.0
    # the quick test u < bound accepts only candidates u · width left of x_{i-1} (base: r),
    # where the whole box lies under the curve, and nearly all of them
    assert bound[1] == 1  # x_0 = 0: only u = 0
    for i in range(256):
        edge = r if i == 0 else x[i - 1]
        # the least b with b · width > edge
        assert float(bound[i] - 1) * width[i] <= edge < float(bound[i]) * width[i]


def test_the_law_is_the_standard_normal():
    # 2 million draws from 32 streams: Kolmogorov-Smirnov against N(0, 1), the two tails
    # beyond r (2 P(X > r) = 2.58e-4: about 516 expected; 5 standard deviations is ±114), the
    # signs, and the mass in the top layer's band |x| < x_1
    states = np.stack([pcg64_state([7, c]) for c in range(32)])
    out = standard_normal_chunks(states, np.empty((32, 62_500))).ravel()
    assert stats.kstest(out, "norm").pvalue > 1e-3
    tail = np.sum(np.abs(out) > ZIGGURAT_R)
    expected = out.size * 2 * stats.norm.sf(ZIGGURAT_R)
    assert abs(tail - expected) < 5 * math.sqrt(expected)
    # the tail's own shape: |X| given |X| > r, against the truncated normal's CDF
    beyond = np.abs(out[np.abs(out) > ZIGGURAT_R])
    sf_r = stats.norm.sf(ZIGGURAT_R)
    assert stats.kstest(beyond, lambda t: 1 - stats.norm.sf(t) / sf_r).pvalue > 1e-3
    assert abs(np.mean(out > 0) - 0.5) < 5 * 0.5 / math.sqrt(out.size)
    x1 = _normals._ziggurat_tables()[3][1]
    p_top = 2 * (stats.norm.cdf(x1) - 0.5)
    band = np.mean(np.abs(out) < x1)
    assert abs(band - p_top) < 5 * math.sqrt(p_top * (1 - p_top) / out.size)
    assert abs(out.mean()) < 5 / math.sqrt(out.size) and abs(out.var() - 1) < 0.005


# --------------------------------------------------------------------------- in certify.smoothing
_PIXEL_NOISE = st.one_of(st.floats(-1e6, 1e6, width=64), st.sampled_from([0.0, -0.0, 1.0, 2.5]))


@given(data=st.data(), sigma=st.floats(1e-3, 10.0), clamp=st.booleans())
@settings(max_examples=60)
def test_noisy_image_kernel_is_numpys_clip_of_x_plus_sigma_eps(data, sigma, clamp):
    from hypothesis.extra import numpy as hnp
    from reference import smoothing as ref_smoothing

    from certify.smoothing import _noisy_image_kernel

    shape = data.draw(st.tuples(st.integers(1, 5), st.integers(1, 6)))
    z = data.draw(hnp.arrays(np.float64, shape, elements=_PIXEL_NOISE))
    x = data.draw(hnp.arrays(np.float64, shape[1:], elements=st.floats(-0.5, 1.5)))
    got, want = z.copy(), z.copy()
    _noisy_image_kernel(got, x, sigma, clamp, got)  # in place, as for float64 classifiers
    ref_smoothing._noisy_image_kernel(want, x, sigma, clamp, want)
    assert np.array_equal(got.view(np.uint64), want.view(np.uint64))  # the signs of zero too
    got32, want32 = np.empty(shape, np.float32), np.empty(shape, np.float32)
    _noisy_image_kernel(z, x, sigma, clamp, got32)
    ref_smoothing._noisy_image_kernel(z, x, sigma, clamp, want32)
    assert np.array_equal(got32.view(np.uint32), want32.view(np.uint32))


def test_noisy_image_kernel_keeps_negative_zero_and_nan_as_clip_does():
    from certify.smoothing import _noisy_image_kernel

    z, x = np.array([[-0.0, np.nan, -3.0, 3.0]]), np.array([-0.0, 0.5, 0.5, 0.5])
    _noisy_image_kernel(z, x, 1.0, True, z)
    want = np.clip(x + 1.0 * np.array([-0.0, np.nan, -3.0, 3.0]), 0.0, 1.0)
    assert np.signbit(z[0, 0]) and np.signbit(want[0]) and np.isnan(z[0, 1])
    assert np.array_equal(z[0, 2:], want[2:])


@pytest.mark.parametrize("normals", ["numpy", "compiled"])
def test_noise_stream_values_depend_on_the_sample_index_only(normals):
    import numba

    from certify.smoothing import NOISE_CHUNK, _NoiseStream

    seed = np.random.SeedSequence(20261205)
    whole = _NoiseStream(seed, (3, 5), normals).take(7, 7 + 5 * NOISE_CHUNK)
    pieces, start = [], 7
    stream = _NoiseStream(seed, (3, 5), normals)
    for size in (1, NOISE_CHUNK - 1, 2 * NOISE_CHUNK + 3, NOISE_CHUNK, NOISE_CHUNK - 3):
        pieces.append(stream.take(start, start + size))
        start += size
    assert np.array_equal(np.concatenate(pieces), whole)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one_thread = _NoiseStream(seed, (3, 5), normals).take(7, 7 + 5 * NOISE_CHUNK)
    finally:
        numba.set_num_threads(threads)
    assert np.array_equal(one_thread, whole)


def test_compiled_noise_stream_is_the_chunks_pcg64_stream_through_the_ziggurat():
    from certify.smoothing import NOISE_CHUNK, _child, _NoiseStream

    seed = np.random.SeedSequence(5)
    got = _NoiseStream(seed, (4,), "compiled").take(NOISE_CHUNK - 2, 3 * NOISE_CHUNK)
    want = np.empty((3, NOISE_CHUNK * 4))
    standard_normal_chunks(np.stack([pcg64_state(_child(seed, k)) for k in range(3)]), want)
    assert np.array_equal(got, want.reshape(-1, 4)[NOISE_CHUNK - 2 :])
    # into an array that is not C-contiguous too (a reshape there would copy)
    strided = np.empty((2 * (3 * NOISE_CHUNK - NOISE_CHUNK + 2), 4))[::2]
    _NoiseStream(seed, (4,), "compiled").take(NOISE_CHUNK - 2, 3 * NOISE_CHUNK, out=strided)
    assert np.array_equal(strided, got)
    # 'numpy' is Generator.standard_normal on the same chunk streams: other values
    numpy_values = _NoiseStream(seed, (4,), "numpy").take(0, NOISE_CHUNK)
    assert not np.array_equal(numpy_values, want[0].reshape(-1, 4))
    assert np.array_equal(numpy_values, np.random.default_rng(_child(seed, 0)).standard_normal(
        (NOISE_CHUNK, 4)))


class _Recorder:
    """A base classifier that keeps what it was shown and answers class 0."""

    def __init__(self, static):
        self.seen = []
        if static:
            self.classify_static = self._static

    def _static(self, z, n_steps):
        self.seen.append(np.array(z))
        return np.zeros(len(z), dtype=np.int64)

    def __call__(self, seq):
        self.seen.append(np.array(seq))
        return np.zeros(np.shape(seq)[1], dtype=np.int64)


@pytest.mark.parametrize("kind", ["rsc_fixed", "rsc_fresh", "gaussian_encoded"])
def test_sample_counts_draws_the_noise_models_normals(kind):
    from functools import partial

    from certify import smoothing
    from certify.smoothing import NOISE_CHUNK, _child, sample_counts

    sigma, T, n, x = 0.5, 3, 2 * NOISE_CHUNK + 5, np.array([0.2, 0.9])
    shape = (T, 2) if kind == "rsc_fresh" else (2,)
    seed = np.random.SeedSequence(11)
    eps = standard_normal_chunks(np.stack([pcg64_state(_child(seed, k)) for k in range(3)]),
                                 np.empty((3, NOISE_CHUNK * int(np.prod(shape)))))
    eps = eps.reshape((3 * NOISE_CHUNK,) + shape)[:n]
    for normals in ("compiled", "numpy"):
        if kind == "rsc_fixed":
            noise = smoothing.rsc_fixed(sigma, T, clamp=False, normals=normals)
        elif kind == "rsc_fresh":
            noise = smoothing.rsc_fresh(sigma, T, clamp=False, normals=normals)
        else:  # an encoder's path: _EncodedStream
            noise = smoothing.gaussian(sigma, T, clamp=False, normals=normals,
                                       encode=partial(_repeat_with_rng, T=T), encode_rng=True)
        clf = _Recorder(static=kind == "rsc_fixed")
        sample_counts(clf, x, noise, n, num_classes=2, rng=seed, batch_size=50)
        seen = np.concatenate(clf.seen, axis=0 if kind == "rsc_fixed" else 1)
        # back to [sample, *noise shape]: z itself, or the steps of the sequence
        got = (seen if kind == "rsc_fixed" else seen.transpose(1, 0, 2) if kind == "rsc_fresh"
               else seen[0])
        want = x + sigma * eps
        assert np.array_equal(got, want) == (normals == "compiled")


def _repeat_with_rng(z, T, rng):
    return np.repeat(np.asarray(z)[None], T, axis=0)


@pytest.mark.parametrize("normals", ["numpy", "compiled"])
def test_a_float32_classifier_gets_the_float64_images_rounded_once(normals):
    from certify.smoothing import NOISE_CHUNK, rsc_fixed, sample_counts

    x = np.linspace(0.0, 1.0, 7)
    noise = rsc_fixed(0.3, 4, normals=normals)
    n = 3 * NOISE_CHUNK + 9  # cut chunks at both ends of the batches
    wide = _Recorder(static=True)
    sample_counts(wide, x, noise, n, num_classes=2, rng=3, batch_size=70)
    narrow = _Recorder(static=True)
    narrow.static_dtype = np.float32
    sample_counts(narrow, x, noise, n, num_classes=2, rng=3, batch_size=70)
    z64, z32 = np.concatenate(wide.seen), np.concatenate(narrow.seen)
    assert z64.dtype == np.float64 and z32.dtype == np.float32
    assert np.array_equal(z32, z64.astype(np.float32))


@pytest.mark.parametrize("bad, error, match", [
    (np.int32, ValueError, "not supported"), (np.float16, ValueError, "not supported"),
    (object(), TypeError, "not a numpy dtype"),
])
def test_static_dtype_is_checked(bad, error, match):
    from certify.smoothing import rsc_fixed, sample_counts

    clf = _Recorder(static=True)
    clf.static_dtype = bad
    with pytest.raises(error, match=match):
        sample_counts(clf, np.zeros(3), rsc_fixed(0.3, 2), 5, num_classes=2, rng=0)
    clf.static_dtype = "float"  # numpy's name of float64
    sample_counts(clf, np.zeros(3), rsc_fixed(0.3, 2), 5, num_classes=2, rng=0)
    assert clf.seen[-1].dtype == np.float64


@pytest.mark.parametrize("normals", ["numpy", "compiled"])
def test_noise_stream_writes_into_an_array_that_is_not_contiguous(normals):
    from certify.smoothing import NOISE_CHUNK, _NoiseStream

    seed = np.random.SeedSequence(8)
    want = _NoiseStream(seed, (3,), normals).take(5, 2 * NOISE_CHUNK + 9)
    strided = np.empty((2 * len(want), 3))[::2]
    _NoiseStream(seed, (3,), normals).take(5, 2 * NOISE_CHUNK + 9, out=strided)
    assert np.array_equal(strided, want)


@pytest.mark.parametrize("states, out, error, match", [
    ([[1, 2, 3, 4]], np.empty((1, 3)), TypeError, "states must be a numpy uint64 array"),
    (np.zeros((1, 4), np.int64), np.empty((1, 3)), TypeError, "got ndarray int64"),
    (np.zeros((1, 4), np.uint64), np.empty((1, 3), np.float32), TypeError,
     "out must be a numpy float64 array"),
    (np.zeros((1, 3), np.uint64), np.empty((1, 3)), ValueError, r"got shape \(1, 3\)"),
    (np.zeros(4, np.uint64), np.empty((1, 3)), ValueError, "writable array"),
    (np.zeros((2, 4), np.uint64), np.empty((1, 3)), ValueError, "n_chunks = 2"),
    (np.zeros((2, 4), np.uint64), np.empty((2, 6))[:, ::2], ValueError, "not C order"),
    (np.zeros((1, 4), np.uint64), np.empty(3), ValueError, r"got shape \(3,\)"),
    # zeros gave all-zero "normals" without a word
    (np.zeros((1, 4), np.uint64), np.empty((1, 3)), ValueError,
     r"states\[:, 3\] \(the low word of each stream's increment\) must be odd"),
])
def test_standard_normal_chunks_checks_its_arrays(states, out, error, match):
    with pytest.raises(error, match=match):
        standard_normal_chunks(states, out)


def test_standard_normal_chunks_refuses_read_only_states():
    states = np.stack([pcg64_state(1)])
    states.setflags(write=False)
    with pytest.raises(ValueError, match="writable array"):
        standard_normal_chunks(states, np.empty((1, 3)))


def test_a_numpy_string_is_kept_as_a_plain_str():
    from certify.smoothing import rsc_fixed

    noise = rsc_fixed(0.25, 4, normals=np.str_("compiled"))
    assert type(noise.normals) is str and noise.parameters()["normals"] == "compiled"
