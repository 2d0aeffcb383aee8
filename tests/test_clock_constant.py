"""The blocked current of a time-constant input (current coding) in ``evsnn.clock.simulate``."""

import numpy as np
from conftest import ATOL_TWIN, ATOL_TWIN_FLOAT32, RTOL_TWIN, RTOL_TWIN_FLOAT32
from hypothesis import given
from hypothesis import strategies as st

from evsnn.clock import Dense, Network, simulate
from evsnn.clock.simulate import _constant_current, _constant_input, _dense_layer
from evsnn.params import LIF
from reference import clock as ref
from reference.clock import kernel_args, layer_cases


def _tols(dtype):
    if np.dtype(dtype) == np.float32:
        return dict(rtol=RTOL_TWIN_FLOAT32, atol=ATOL_TWIN_FLOAT32)
    return dict(rtol=RTOL_TWIN, atol=ATOL_TWIN)


@st.composite
def exact_rows(draw):
    # rows that fill whole blocks of samples (and pairs of samples with four nonzero inputs
    # each, beside pairs where only one has them), input counts that are not multiples of four,
    # inputs of exactly 1 (spikes), signed zeros, and infinite weights that only zero inputs meet
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    B, n_in, n_out = draw(st.integers(1, 21)), draw(st.integers(1, 13)), draw(st.integers(1, 40))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    x = rng.uniform(-1, 1, (B, n_in))
    x[rng.random(x.shape) < draw(st.sampled_from([0.0, 0.05, 0.3]))] = 0
    x[rng.random(x.shape) < 0.1] = -0.0
    x[rng.random(x.shape) < 0.1] = 1.0
    w = rng.standard_normal((n_in, n_out)) * 10.0 ** rng.integers(-3, 4, (n_in, n_out))
    w[rng.random(w.shape) < 0.1] = -0.0
    w[rng.random(w.shape) < 0.05] = 0.0
    # columns of zero weights keep a -0 bias's sign only while no +0 product is added, and
    # columns with infinite weights turn NaN where a zero input is not skipped
    cols = rng.random(n_out)
    w[:, cols < 0.2] = rng.choice([0.0, -0.0], (n_in, int((cols < 0.2).sum())))
    inf = (cols > 0.8) & (rng.random(w.shape) < 0.3)
    w[inf] = rng.choice([np.inf, -np.inf], int(inf.sum()))
    dead = np.flatnonzero((x == 0).all(axis=0))  # inputs no sample uses: any weight is skipped
    if dead.size:
        w[dead, :] = rng.choice([np.inf, -np.inf, np.nan], (dead.size, n_out))
    bias = np.where(rng.random(n_out) < 0.3, -0.0, rng.standard_normal(n_out))
    return x.astype(dtype), w.astype(dtype), bias.astype(dtype), dtype


@given(exact_rows())
def test_constant_current_is_the_twin_bit_for_bit(case):
    # the twin defines the arithmetic: the same products added in the same order, so equal bits
    # (signs of zeros included), not just close values
    x, w, bias, dtype = case
    got = np.full((x.shape[0], w.shape[1]), np.nan, dtype=dtype)
    want = got.copy()
    _constant_current(x, w, bias, got)
    with np.errstate(invalid="ignore", over="ignore"):
        ref._constant_current_kernel(x, w, bias, want)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


@given(layer_cases(), st.booleans())
def test_layer_kernel_with_constant_current_is_bit_identical(case, record):
    # the constant-current path must give exactly the event loop's result (same sums, same order)
    layer, x, dtype, spike_ge, delay, placement = case
    x = np.ascontiguousarray(np.broadcast_to(x[:1], x.shape))  # the same input at every step
    a = kernel_args(layer, x, dtype, spike_ge, delay, placement, record=record)
    b = kernel_args(layer, x, dtype, spike_ge, delay, placement, record=record)
    twin = kernel_args(layer, x, dtype, spike_ge, delay, placement, record=record)
    cur = np.empty((x.shape[1], layer.n_out), dtype=dtype)
    _constant_current(x[0], a[1], a[2], cur)
    _dense_layer(*a, cur_const=cur)
    _dense_layer(*b)
    ref._dense_layer_kernel(*twin, cur)
    for got, want, tw in zip(a[15:] if record else a[15:16], b[15:] if record else b[15:16],
                             twin[15:] if record else twin[15:16]):
        np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(got, tw, equal_nan=True, **_tols(dtype))


def test_constant_input_detection():
    x = np.full((3, 2, 4), 0.5)
    assert _constant_input(x)
    y = x.copy()
    y[2, 1, 3] = 0.25  # differs only at the last step
    assert not _constant_input(y)
    y = x.copy()
    y[1, 1, 3] = 0.25  # step 1 differs from step 0 past the first sample's row only
    assert not _constant_input(y)
    z = np.zeros((3, 2, 4))
    z[:, :, 0] = 1.0  # constant but mostly zero: the event loop is cheaper
    assert not _constant_input(z)


def test_simulate_current_coding_equals_the_event_loop():
    # simulate() takes the constant path for current coding; compare with a run whose last step
    # is perturbed in one unused way (a zero weight column), which forces the event loop
    rng = np.random.default_rng(5)
    w = rng.standard_normal((7, 12)) * 0.8
    w[:, -1] = 0.0  # input 11 has no effect on the network
    net = Network([Dense(w, LIF(lam=0.9, theta=1.0, reset="hard"))])
    img = rng.uniform(0.1, 1.0, (5, 12))
    x = np.repeat(img[None], 6, axis=0)
    assert _constant_input(x)
    x2 = x.copy()
    x2[-1, :, -1] = 0.05  # not constant any more; the current is unchanged (zero weights)
    assert not _constant_input(x2)
    for dtype in (np.float64, np.float32):
        r1 = simulate(net, x, record=True, dtype=dtype).layers[0]
        r2 = simulate(net, x2, record=True, dtype=dtype).layers[0]
        assert r1.spikes.sum() > 0
        np.testing.assert_array_equal(r1.spikes, r2.spikes)
        np.testing.assert_array_equal(r1.m, r2.m)
