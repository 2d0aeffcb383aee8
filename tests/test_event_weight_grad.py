"""The event-driven weight gradient of ``evsnn.grad.backward`` (dL/dW summed per input spike):
its kernels against their twins in ``tests/reference/grad.py`` (bit for bit: the same order of
additions), the whole against a float64 product, thread counts, corners, and where
``_weight_grad`` uses it."""

import importlib

import numba
import numpy as np
import pytest
from conftest import RTOL_SUM_ORDER
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import grad as ref
from reference.helpers import cases, compare, example_count, run_tape, tape_surrogate

from evsnn._numba import run_range
from evsnn.grad import Sigmoid, Triangle
from evsnn.grad.backward import (
    _event_count_kernel,
    _event_fill_kernel,
    _event_weight_grad,
    _event_weight_grad_kernel,
    _weight_grad,
)

# the module (``evsnn.grad.backward`` as an attribute is the function of that name)
bw = importlib.import_module("evsnn.grad.backward")
CHUNK = bw._EVENT_CHUNK_ROWS

DTYPES = [np.float32, np.float64]


def _raster(rng, R, n_in, density, dtype):
    return (rng.random((R, n_in)) < density).astype(dtype)


def _twin_weight_grad(g, x, chunk_rows):
    """The three twins in a row, as ``_event_weight_grad`` calls the kernels."""
    n_chunks = -(-x.shape[0] // chunk_rows)
    counts = np.zeros((n_chunks, x.shape[1]), dtype=np.int32)
    bad = np.zeros(n_chunks, dtype=np.int8)
    ref._event_count_kernel(x, chunk_rows, counts, bad)
    assert not bad.any()
    start = np.concatenate([[0], np.cumsum(counts.ravel())[:-1]]).reshape(counts.shape)
    rows = np.full(max(int(counts.sum()), 1), -1, dtype=np.int32)
    ref._event_fill_kernel(x, chunk_rows, start, rows)
    dw = np.full((g.shape[1], x.shape[1]), np.nan, dtype=g.dtype)
    ref._event_weight_grad_kernel(g, chunk_rows, start, counts, rows, dw)
    return dw


def _assert_same_bits(a, b):
    """Equal values, NaNs in the same places and zeros of the same sign."""
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


@st.composite
def problems(draw, graded=False):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    R = draw(st.sampled_from([1, 2, 9, 130, 300]))
    n_in = draw(st.integers(1, 40))
    n_out = draw(st.sampled_from([1, 5, 64, 130, 257]))  # 130, 257: a partial last block
    dtype = draw(st.sampled_from(DTYPES))
    x = _raster(rng, R, n_in, draw(st.sampled_from([0.0, 0.05, 0.3, 1.0])), dtype)
    if draw(st.booleans()):
        x[:, rng.random(n_in) < 0.3] = 0  # empty columns
    if graded:
        r, c = rng.integers(R), rng.integers(n_in)
        x[r, c] = draw(st.sampled_from([0.5, -1.0, 2.0, np.nan, np.inf]))
    g = rng.standard_normal((R, n_out)).astype(dtype)
    if draw(st.booleans()):
        # negative zeros: where every term is -0 the twins' sums, started from +0, give +0 (and
        # an empty column +0); _assert_same_bits compares the signs
        g[rng.random(g.shape) < draw(st.sampled_from([0.3, 1.0]))] = -0.0
    chunk_rows = draw(st.sampled_from([1, 7, CHUNK]))
    return g, x, chunk_rows


def _counts_equal_to_twin(x, chunk_rows):
    """The count kernel's ``(counts, bad)`` on ``x``, asserted equal to its twin's."""
    n_chunks = -(-x.shape[0] // chunk_rows)
    counts = np.full((n_chunks, x.shape[1]), -1, dtype=np.int32)
    bad = np.full(n_chunks, -1, dtype=np.int8)
    run_range(_event_count_kernel, n_chunks, x, chunk_rows, counts, bad)
    counts_t, bad_t = np.zeros_like(counts), np.zeros_like(bad)
    ref._event_count_kernel(x, chunk_rows, counts_t, bad_t)
    np.testing.assert_array_equal(counts, counts_t)
    np.testing.assert_array_equal(bad, bad_t)
    return counts, bad


@settings(max_examples=example_count(60))
@given(problems())
def test_event_kernels_equal_their_twins(case):
    g, x, chunk_rows = case
    R, n_in = x.shape
    n_chunks = -(-R // chunk_rows)
    counts, bad = _counts_equal_to_twin(x, chunk_rows)
    assert counts.sum() == np.count_nonzero(x) and not bad.any()

    start = np.zeros(counts.size, dtype=np.int64)
    np.cumsum(counts.ravel()[:-1], out=start[1:])
    start = start.reshape(counts.shape)
    n_ev = max(int(counts.sum()), 1)
    rows, rows_t = np.full(n_ev, -1, np.int32), np.full(n_ev, -1, np.int32)
    run_range(_event_fill_kernel, n_chunks, x, chunk_rows, start, rows)
    ref._event_fill_kernel(x, chunk_rows, start, rows_t)
    np.testing.assert_array_equal(rows, rows_t)

    dw = np.full((g.shape[1], n_in), np.nan, dtype=g.dtype)
    run_range(_event_weight_grad_kernel, -(-g.shape[1] // bw._EVENT_LANES), g, chunk_rows, start,
              counts, rows, dw)
    dw_t = np.full_like(dw, np.nan)
    ref._event_weight_grad_kernel(g, chunk_rows, start, counts, rows, dw_t)
    _assert_same_bits(dw, dw_t)  # the same additions in the same order


@settings(max_examples=example_count(40))
@given(problems(graded=True))
def test_count_kernel_flags_values_other_than_0_and_1_like_its_twin(case):
    _, x, chunk_rows = case
    _, bad = _counts_equal_to_twin(x, chunk_rows)
    assert bad.any() == bool(np.any((x != 0) & (x != 1)))


@settings(max_examples=example_count(60))
@given(problems())
def test_event_weight_grad_equals_the_twins_and_the_product(case):
    g, x, chunk_rows = case
    got = _event_weight_grad(g, x, chunk_rows)
    assert got.shape == (g.shape[1], x.shape[1]) and got.dtype == g.dtype
    assert got.flags.c_contiguous
    # every entry is its events' sum in ascending row order, chunk by chunk
    _assert_same_bits(got, _twin_weight_grad(g, x, chunk_rows))
    # independent check: one float64 product. Each entry is at most R = 300 additions of terms
    # |g|, so its rounding error is at most R ulp of the sum of absolute values
    want = g.astype(np.float64).T @ x.astype(np.float64)
    bound = x.shape[0] * np.finfo(g.dtype).eps * (np.abs(g).astype(np.float64).T @ x)
    assert np.all(np.abs(got - want) <= bound)


@pytest.mark.parametrize("dtype", DTYPES)
def test_event_weight_grad_does_not_depend_on_the_number_of_threads(dtype):
    n_max = numba.config.NUMBA_NUM_THREADS
    if n_max < 2:
        pytest.skip("needs NUMBA_NUM_THREADS >= 2 to compare thread counts")
    rng = np.random.default_rng(3)
    # 3 chunks of 256 rows and 5 blocks of 64 output units, the last ones partial
    x = _raster(rng, 601, 50, 0.15, dtype)
    g = rng.standard_normal((601, 300)).astype(dtype)
    runs = []
    try:
        for threads in (1, n_max):
            numba.set_num_threads(threads)
            runs.append(_event_weight_grad(g, x))
    finally:
        numba.set_num_threads(n_max)
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], _twin_weight_grad(g, x, CHUNK))


@pytest.mark.parametrize("dtype", DTYPES)
def test_event_weight_grad_corners(dtype):
    rng = np.random.default_rng(4)
    g = rng.standard_normal((40, 130)).astype(dtype)
    # all-zero raster: zeros, not a refusal
    zero = _event_weight_grad(g, np.zeros((40, 7), dtype=dtype))
    assert zero.shape == (130, 7) and np.all(zero == 0)
    # empty columns stay zero, a column spiking in every row is the column sum of g
    x = np.zeros((40, 3), dtype=dtype)
    x[:, 1] = 1
    dw = _event_weight_grad(g, x)
    assert np.all(dw[:, [0, 2]] == 0)
    np.testing.assert_array_equal(dw[:, 1], _twin_weight_grad(g, x, CHUNK)[:, 1])
    # 40 additions: within 40 ulp of the sum of |g| (Higham 2002, eq. 4.4)
    err = np.abs(dw[:, 1] - g.astype(np.float64).sum(axis=0))
    assert np.all(err <= 40 * np.finfo(dtype).eps * np.abs(g).astype(np.float64).sum(axis=0))
    # one row: dL/dW is that row's outer product, exactly
    x1 = np.array([[0, 1, 1, 0]], dtype=dtype)
    np.testing.assert_array_equal(_event_weight_grad(g[:1], x1), np.outer(g[0], x1[0]))
    # no rows at all
    empty = _event_weight_grad(g[:0], np.zeros((0, 4), dtype=dtype))
    assert empty.shape == (130, 4) and np.all(empty == 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_event_weight_grad_keeps_special_values_like_the_twins(dtype):
    # every count from 1 to 19 events per column (the last pass of 8 is topped up with a row of
    # zeros), -0 in g, and inf / nan in some columns' rows: the same bits as the twins
    rng = np.random.default_rng(9)
    R, n_in = 300, 19
    x = np.zeros((R, n_in), dtype=dtype)
    for c in range(n_in):
        x[rng.choice(CHUNK, c + 1, replace=False), c] = 1  # c + 1 events in the first chunk
        x[CHUNK + rng.choice(R - CHUNK, min(c, R - CHUNK), replace=False), c] = 1
    g = rng.standard_normal((R, 70)).astype(dtype)
    g[rng.random(g.shape) < 0.3] = -0.0
    g[:, 3] = -0.0  # an output unit whose every term is -0: +0 everywhere
    g[5, 10], g[7, 11], g[9, 12], g[9, 13] = np.inf, -np.inf, np.nan, np.inf
    g[11, 13] = -np.inf  # inf - inf
    got = _event_weight_grad(g, x)
    _assert_same_bits(got, _twin_weight_grad(g, x, CHUNK))
    assert not np.any(np.signbit(got[3])) and np.all(got[3] == 0)


@pytest.mark.parametrize("chunk_rows", [0, 257])
def test_event_weight_grad_refuses_chunks_larger_than_the_tile(chunk_rows):
    x = np.ones((4, 3))
    with pytest.raises(ValueError, match=rf"chunk_rows must be in \[1, 256\].*got {chunk_rows}"):
        _event_weight_grad(np.ones((4, 2)), x, chunk_rows)


@pytest.mark.parametrize("value", [0.5, -1.0, 2.0, np.nan, np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
def test_event_weight_grad_refuses_inputs_other_than_0_and_1(value, dtype):
    rng = np.random.default_rng(5)
    x = _raster(rng, 300, 20, 0.1, dtype)
    x[299, 19] = value  # the very last entry, in the last chunk
    assert _event_weight_grad(rng.standard_normal((300, 8)).astype(dtype), x) is None


def test_event_weight_grad_refuses_inputs_denser_than_max_density():
    x = np.zeros((10, 10))
    x.flat[:25] = 1  # density 0.25
    g = np.ones((10, 3))
    assert _event_weight_grad(g, x, max_density=0.24) is None
    np.testing.assert_array_equal(_event_weight_grad(g, x, max_density=0.25), g.T @ x)


def _always_events(mp):
    """Thresholds under which ``_weight_grad`` takes the event sum for every 0/1 input."""
    mp.setattr(bw, "_EVENT_MAX_DENSITY", {np.dtype(np.float32): 1.0, np.dtype(np.float64): 1.0})
    mp.setattr(bw, "_EVENT_MIN_OUT", 1)
    mp.setattr(bw, "_EVENT_MIN_WORK", 0)


def _spy(mp):
    """Record what ``_event_weight_grad`` returns to ``_weight_grad`` and ``backward``."""
    taken = []

    def spy(g, x, **kw):
        taken.append(_event_weight_grad(g, x, **kw))
        return taken[-1]

    mp.setattr(bw, "_event_weight_grad", spy)
    return taken


@pytest.mark.parametrize("dtype", DTYPES)
def test_weight_grad_dispatch(dtype):
    rng = np.random.default_rng(6)
    g = rng.standard_normal((2, 30, 9)).astype(dtype)  # [T, B, n_out]
    x = _raster(rng, 60, 11, 0.2, dtype).reshape(2, 30, 11)
    g2, x2 = g.reshape(60, 9), x.reshape(60, 11)
    with pytest.MonkeyPatch.context() as mp:
        taken = _spy(mp)
        np.testing.assert_array_equal(_weight_grad(g, x), g2.T @ x2)
        assert taken == []  # too small for the event sum at the default thresholds
        _always_events(mp)
        np.testing.assert_array_equal(_weight_grad(g, x), _twin_weight_grad(g2, x2, CHUNK))
        assert len(taken) == 1 and taken[0] is not None
        graded = x * 0.5
        np.testing.assert_array_equal(_weight_grad(g, graded), g2.T @ graded.reshape(60, 11))
        assert len(taken) == 2 and taken[1] is None
        mp.setattr(bw, "_EVENT_MAX_DENSITY",
                   {np.dtype(np.float32): 0.1, np.dtype(np.float64): 0.1})
        np.testing.assert_array_equal(_weight_grad(g, x), g2.T @ x2)
        assert len(taken) == 3 and taken[2] is None  # denser than allowed


@pytest.mark.parametrize("dtype", DTYPES)
def test_weight_grad_takes_the_event_sum_for_sparse_spikes_at_default_thresholds(dtype):
    # a first layer of the benchmark's kind (bench/bench_backward.py), smaller: 2^27
    # multiply-adds, 10 % spikes, 256 output units
    rng = np.random.default_rng(7)
    x = _raster(rng, 1024, 512, 0.10, dtype)
    g = rng.standard_normal((1024, 256)).astype(dtype)
    with pytest.MonkeyPatch.context() as mp:
        taken = _spy(mp)
        np.testing.assert_array_equal(_weight_grad(g, x), _event_weight_grad(g, x))
        assert len(taken) == 1 and taken[0] is not None
        # the output layer's shape (10 units, one block) keeps the product
        np.testing.assert_array_equal(_weight_grad(g[:, :10], x), g[:, :10].T @ x)
        assert len(taken) == 1


@settings(max_examples=example_count(40))
@given(cases(), st.sampled_from([Sigmoid(5.0, "code"), Triangle(1.0)]), st.booleans())
def test_backward_with_the_event_weight_gradient_equals_tape(case, surrogate, detach):
    # as tests/test_grad_vs_tape.py::test_bptt_equals_tape, every 0/1 layer input summed per event
    with pytest.MonkeyPatch.context() as mp:
        _always_events(mp)
        res, want = run_tape(case, "bptt", surrogate=tape_surrogate(surrogate),
                             detach_reset=detach)
        compare(case, res, want, method="bptt", surrogate=surrogate, detach_reset=detach)


def test_backward_takes_the_event_weight_gradient_when_allowed():
    from evsnn.clock import Network, simulate
    from evsnn.params import LIF

    rng = np.random.default_rng(8)
    net = Network.mlp([40, 30, 5], LIF(lam=0.9, theta=1.0), rng=1, scale=3.0)
    x = _raster(rng, 6 * 17, 40, 0.3, np.float64).reshape(6, 17, 40)
    res = simulate(net, x, record=True)
    g_out = rng.standard_normal(res.output.shape)
    plain = bw.backward(net, x, res, g_out)
    with pytest.MonkeyPatch.context() as mp:
        _always_events(mp)
        taken = _spy(mp)
        events = bw.backward(net, x, res, g_out)
    assert len(taken) == 2 and all(t is not None for t in taken)  # both layers' inputs are 0/1
    assert res.layers[0].spikes.sum() > 0
    for a, b in zip(plain.weights, events.weights):  # the same sums, perhaps in another order
        assert np.max(np.abs(a - b)) <= RTOL_SUM_ORDER * np.max(np.abs(a))
    np.testing.assert_array_equal(plain.input, events.input)
