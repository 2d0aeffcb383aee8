"""The attack sources' fast path for current-coded two-layer networks (evsnn.grad.static,
evsnn.clock.static): its backward kernel against the twin, and SNNSource on the fast path
against the general path (the simulator's outputs bit for bit, gradients to rounding)."""

import numpy as np
import pytest
import reference.grad as ref
from conftest import RTOL_REORDERED, RTOL_REORDERED_FLOAT32
from hypothesis import given, settings
from hypothesis import strategies as st

from evsnn.attacks import SNNSource, pgd
from evsnn.attacks.losses import ce_loss
from evsnn.clock import Dense, Network, simulate
from evsnn.decoders import decode
from evsnn.grad import Sigmoid, Triangle, loss_and_grad
from evsnn.grad.static import (
    _bptt_row_kernel,
    _lif_readout_bptt,
    _lif_readout_bptt_kernel,
    _surrogate_row_kernel,
)
from evsnn.params import LIF, Readout, TraceLIF


def _backward_args(rng, B, n, n_out, T, dtype, hard_reset, spike_ge, hard_reset2, spiking2,
                   sur_kind, detach):
    cur = rng.uniform(-0.5, 1.8, (B, n)).astype(dtype)
    cur[0, : n // 2] = 1.0  # exactly at threshold from rest: the spike test decides
    w2 = rng.normal(0.0, 0.8, (n_out, n)).astype(dtype)
    m2 = rng.normal(0.8, 0.6, (T, B, n_out)).astype(dtype)
    s2 = (m2 >= 0.7).astype(dtype) if spiking2 else m2
    g_out = rng.normal(0.0, 1.0, (T, B, n_out)).astype(dtype)
    dt = np.dtype(dtype).type
    p, scale = (dt(4.0), dt(4.0)) if sur_kind == 0 else (dt(0.6), dt(1.0))
    return (cur, dt(0.9), dt(1.0), dt(0.0), dt(0.1), hard_reset, spike_ge, w2, dt(0.8),
            dt(0.7), dt(-0.1), hard_reset2, spiking2, m2, s2, g_out, sur_kind, p, scale, detach)


@settings(max_examples=40)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(1, 40), st.integers(1, 16),
       st.integers(1, 7), st.sampled_from([np.float64, np.float32]), st.booleans(),
       st.booleans(), st.booleans(), st.booleans(), st.sampled_from([0, 1]), st.booleans())
def test_lif_readout_bptt_kernel_matches_twin(seed, B, n, n_out, T, dtype, hard_reset, spike_ge,
                                              hard_reset2, spiking2, sur_kind, detach):
    # bit for bit: the twin runs the same recursions (reference _bptt_loops) and sums in the
    # same orders; random values, so another order would round differently
    args = _backward_args(np.random.default_rng(seed), B, n, n_out, T, dtype, hard_reset,
                          spike_ge, hard_reset2, spiking2, sur_kind, detach)
    got = np.full((B, n), np.nan, dtype)
    want = np.full((B, n), np.nan, dtype)
    _lif_readout_bptt(*args, got)
    ref._lif_readout_bptt_kernel(*args, want)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("b_lo,b_hi", [(0, 5), (1, 4), (4, 5)])
def test_lif_readout_bptt_kernel_pieces_write_only_their_samples(dtype, b_lo, b_hi):
    args = _backward_args(np.random.default_rng(8), 5, 30, 10, 6, dtype, True, True, True, True,
                          0, False)
    whole = np.empty((5, 30), dtype)
    ref._lif_readout_bptt_kernel(*args, whole)
    got = np.full((5, 30), np.nan, dtype)
    _lif_readout_bptt_kernel(*args, got, b_lo, b_hi)
    np.testing.assert_array_equal(got[b_lo:b_hi], whole[b_lo:b_hi])
    assert np.isnan(got[:b_lo]).all() and np.isnan(got[b_hi:]).all()


@settings(max_examples=30)
@given(st.integers(0, 2**32 - 1), st.integers(1, 50), st.sampled_from([np.float64, np.float32]),
       st.booleans(), st.booleans(), st.sampled_from([0, 1]))
def test_bptt_row_kernel_matches_twin(seed, n, dtype, hard_reset, detach, sur_kind):
    rng = np.random.default_rng(seed)
    m = rng.normal(1.0, 0.7, n).astype(dtype)
    s = (m >= 1.0).astype(dtype)
    g_s = rng.normal(0, 1, n).astype(dtype)
    gv0 = rng.normal(0, 1, n).astype(dtype)
    dt = np.dtype(dtype).type
    p, scale = (dt(5.0), dt(5.0)) if sur_kind == 0 else (dt(0.5), dt(1.0))
    out = {}
    for name, fn in (("kernel", _bptt_row_kernel), ("twin", ref._bptt_row_kernel)):
        gv, g_m = gv0.copy(), np.empty(n, dtype)
        fn(m, s, g_s, gv, g_m, dt(0.9), dt(1.0), dt(0.0), hard_reset, detach, sur_kind, p, scale,
           dt(1.0))
        out[name] = (g_m, gv)
    np.testing.assert_array_equal(out["kernel"][0], out["twin"][0])
    np.testing.assert_array_equal(out["kernel"][1], out["twin"][1])


@settings(max_examples=30)
@given(st.integers(0, 2**32 - 1), st.integers(0, 70), st.sampled_from([np.float64, np.float32]),
       st.sampled_from([0, 1]))
def test_surrogate_row_kernel_matches_twin(seed, n, dtype, sur_kind):
    m = np.random.default_rng(seed).normal(1.0, 2.0, n).astype(dtype)
    m[: n // 4] = 1.0  # at θ: the surrogate's peak
    dt = np.dtype(dtype).type
    p, scale = (dt(5.0), dt(5.0)) if sur_kind == 0 else (dt(0.5), dt(1.0))
    got, want = np.full(n, np.nan, dtype), np.full(n, np.nan, dtype)
    _surrogate_row_kernel(m, dt(1.0), sur_kind, p, scale, got, dt(1.0))
    ref._surrogate_row_kernel(m, dt(1.0), sur_kind, p, scale, want, dt(1.0))
    np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- SNNSource
def _net(rng, dtype, reset="hard", readout=False, bias=False, n_in=12, n_hid=9, n_out=4):
    first = Dense(rng.normal(0.3, 0.8, (n_hid, n_in)), LIF(lam=0.9, theta=1.0, reset=reset),
                  bias=rng.normal(0, 0.3, n_hid) if bias else None)
    neuron = Readout(lam=0.8) if readout else LIF(lam=0.85, theta=0.8, reset=reset)
    second = Dense(rng.normal(0.2, 0.9, (n_out, n_hid)), neuron,
                   bias=rng.normal(0, 0.3, n_out) if bias else None)
    net = Network([first, second])
    return net.with_weights([w.astype(dtype) for w in net.weights()])


def _general(src):
    """The same source with the fast path switched off."""
    src._static = None
    return src


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reset,readout,bias", [("hard", False, False), ("soft", False, True),
                                                ("hard", True, True)])
@pytest.mark.parametrize("surrogate", [Sigmoid(5.0, "code"), Triangle(1.0)])
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("decoder", ["rate", "membrane"])
def test_snn_source_fast_path_matches_the_general_path(dtype, reset, readout, bias, surrogate,
                                                       detach_reset, decoder):
    if readout and decoder == "rate":
        decoder = "membrane"  # a readout emits no spikes to count
    rng = np.random.default_rng(11)
    net = _net(rng, dtype, reset, readout, bias)
    x = rng.uniform(0, 1, (6, 12)).astype(dtype)
    y = rng.integers(0, 4, 6)
    kw = dict(T=7, encoder="current", decoder=decoder, surrogate=surrogate,
              detach_reset=detach_reset)
    fast = SNNSource(net, **kw)
    assert fast._static is not None
    slow = _general(SNNSource(net, **kw))
    a, b = fast(x, y), slow(x, y)
    # the forward pass is the simulator's, bit for bit; the gradient agrees to rounding
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.loss, b.loss)
    rtol = RTOL_REORDERED if dtype == np.float64 else RTOL_REORDERED_FLOAT32
    np.testing.assert_allclose(a.grad, b.grad, rtol=rtol, atol=rtol * np.abs(b.grad).max())
    assert a.grad.dtype == b.grad.dtype
    assert np.abs(b.grad).max() > 0  # a gradient that is there to compare
    np.testing.assert_array_equal(fast.predict(x), slow.predict(x))
    seq = np.repeat(x[None], 7, axis=0)
    want = decode(simulate(net, seq).output, decoder)
    np.testing.assert_array_equal(fast.predict(x), want)
    # any score loss (the path of APGD-DLR and the targeted losses)
    loss = lambda s: ce_loss(s, (y + 1) % 4)  # noqa: E731
    np.testing.assert_allclose(fast.score_loss_grad(x, loss).grad,
                               slow.score_loss_grad(x, loss).grad, rtol=rtol,
                               atol=rtol * np.abs(b.grad).max())


def test_snn_source_fast_path_against_loss_and_grad():
    # the per-sample gradient is B times the batch mean's (SNNSource's contract), here on the
    # fast path against evsnn.grad.loss_and_grad, which runs simulate and backward
    rng = np.random.default_rng(3)
    net = _net(rng, np.float64)
    x = rng.uniform(0, 1, (5, 12))
    y = rng.integers(0, 4, 5)
    src = SNNSource(net, T=6, encoder="current")
    assert src._static is not None
    out = src(x, y)
    r = loss_and_grad(net, x, y, T=6, encoder="current")
    assert out.loss.mean() == pytest.approx(r.loss, rel=1e-13)
    np.testing.assert_allclose(out.grad, 5 * r.image, rtol=RTOL_REORDERED,
                               atol=RTOL_REORDERED * np.abs(5 * r.image).max())


def test_snn_source_fast_path_is_independent_of_batch_and_threads():
    import numba

    rng = np.random.default_rng(4)
    net = _net(rng, np.float32, n_in=40, n_hid=30)
    x = rng.uniform(0, 1, (9, 40)).astype(np.float32)
    y = rng.integers(0, 4, 9)
    src = SNNSource(net, T=5, encoder="current")
    full = src(x, y)
    for b in (0, 4, 8):
        # the kernels' results do not depend on the batch; the last product, dL/dI₁ W₁, is
        # BLAS's, which rounds one row (a matrix-vector product) unlike a row of a batch, as in
        # the general path
        one = src(x[b : b + 1], y[b : b + 1])
        np.testing.assert_array_equal(one.scores[0], full.scores[b])
        np.testing.assert_allclose(one.grad[0], full.grad[b], rtol=RTOL_REORDERED_FLOAT32,
                                   atol=RTOL_REORDERED_FLOAT32 * np.abs(full.grad).max())
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = src(x, y)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(single.grad, full.grad)


def test_snn_source_fast_path_applies_only_where_it_computes_the_same():
    rng = np.random.default_rng(5)
    net = _net(rng, np.float64)
    assert SNNSource(net, T=4, encoder="current")._static is not None
    # another encoder, method, input_only=False, three layers, a trace neuron, an input delay
    assert SNNSource(net, T=4, encoder="poisson")._static is None
    assert SNNSource(net, T=4, encoder="current", method="bptr")._static is None
    assert SNNSource(net, T=4, encoder="current", input_only=False)._static is None
    three = Network.mlp([12, 9, 6, 4], LIF(lam=0.9, theta=1.0), rng=rng)
    assert SNNSource(three, T=4, encoder="current")._static is None
    trace = Network([Dense(rng.normal(size=(9, 12)), TraceLIF(tau_mem_ms=10.0, tau_syn_ms=5.0)),
                     net.layers[1]])
    assert SNNSource(trace, T=4, encoder="current")._static is None
    assert SNNSource(net, T=4, encoder="current",
                     convention="DING2025_PAPER")._static is None
    # more than 16 outputs: the general path
    wide = Network.mlp([12, 9, 17], LIF(lam=0.9, theta=1.0), rng=rng)
    src = SNNSource(wide, T=4, encoder="current")
    x = rng.uniform(0, 1, (3, 12))
    y = np.array([0, 5, 16])
    assert src._static is not None and src._static._arrays(np.dtype(np.float64)) is None
    ref_out = loss_and_grad(wide, x, y, T=4, encoder="current")
    np.testing.assert_allclose(src(x, y).grad, 3 * ref_out.image, rtol=RTOL_REORDERED,
                               atol=RTOL_REORDERED * np.abs(ref_out.image).max() * 3)


def test_snn_source_fast_path_refuses_what_simulate_refuses():
    rng = np.random.default_rng(6)
    net = _net(rng, np.float64)
    src = SNNSource(net, T=4, encoder="current", pixel_range="real")
    y = np.zeros(2, dtype=int)
    with pytest.raises(ValueError, match="NaN or infinite"):
        src(np.array([[np.nan] * 12, [0.5] * 12]), y)
    big = Network([Dense(np.full((9, 12), 1e39), LIF(lam=0.9, theta=1.0)), net.layers[1]])
    with pytest.raises(ValueError, match="float32"):
        SNNSource(big, T=4, encoder="current")(np.full((2, 12), 0.5, np.float32), y)
    empty = src(np.zeros((0, 12)), np.zeros(0, dtype=int))
    assert empty.grad.shape == (0, 12) and empty.scores.shape == (0, 4)


def _blas_net(rng, layers):
    """A network for the product tests: the fast path's two layers (with a bias) or three."""
    if layers == 2:
        return _net(rng, np.float64, bias=True, n_in=50, n_hid=30)
    return Network.mlp([50, 30, 20, 4], LIF(lam=0.9, theta=1.0), rng=rng, scale=3.0)


def _blas_current(net, x):
    """The first layer's input ``x @ Wᵀ (+ b)`` as NumPy's BLAS product forms it."""
    first = net.layers[0]
    want = np.matmul(x, first.weight_t(np.float64))
    if first.bias is not None:
        want += first.bias
    return want


@pytest.mark.parametrize("layers", [2, 3])
def test_snn_source_blas_product(layers):
    # product="blas": the first layer's current by one BLAS product, on the fast path (two
    # layers) and in simulate (three); the same model up to the product's rounding
    rng = np.random.default_rng(7)
    net = _blas_net(rng, layers)
    x = rng.uniform(0, 1, (8, 50))
    y = rng.integers(0, 4, 8)
    exact = SNNSource(net, T=6, encoder="current")
    blas = SNNSource(net, T=6, encoder="current", product="blas")
    assert blas.product == "blas" and (blas._static is not None) == (layers == 2)
    a, b = blas(x, y), exact(x, y)
    # float64 products differ in the last bits only; with these weights no membrane sits
    # within that of a threshold, so the spikes and scores are the same
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-9, atol=1e-9 * np.abs(b.grad).max())
    np.testing.assert_array_equal(blas.predict(x), exact.predict(x))
    # and the current is BLAS's: x @ Wᵀ (+ b) as NumPy computes it, bit for bit
    want = _blas_current(net, x)
    if layers == 2:
        arrays = blas._static._arrays(np.dtype(np.float64))
        got = blas._static._forward(x, 6, arrays, None)[0]
    else:
        view = np.broadcast_to(x, (6,) + x.shape)
        got = simulate(net, view, record=True, _first_product="blas").layers[0].current[0]
    np.testing.assert_array_equal(got, want)
    r = pgd(blas, x, y, eps=0.05, alpha=0.02, steps=3, random_start="uniform", rng=0)
    assert np.abs(r.x_adv - x).max() <= 0.05


def test_snn_source_product_errors():
    rng = np.random.default_rng(9)
    net = _net(rng, np.float64)
    with pytest.raises(ValueError, match="product='fast' is not a first-layer product"):
        SNNSource(net, T=4, encoder="current", product="fast")
    with pytest.raises(TypeError, match="product must be 'exact' or 'blas', got int 1"):
        SNNSource(net, T=4, encoder="current", product=1)
    with pytest.raises(ValueError, match="needs encoder='current'"):
        SNNSource(net, T=4, encoder="poisson", product="blas")
    with pytest.raises(ValueError, match="input_only=True"):
        SNNSource(net, T=4, encoder="current", product="blas", input_only=False)


def test_snn_source_fast_path_survives_a_prediction_inside_the_score_loss():
    # the fast path's forward arrays are this thread's work arrays until its backward kernel
    # has read them; a prediction in between (here from the score loss) must not overwrite them
    rng = np.random.default_rng(12)
    net = _net(rng, np.float64)
    # the same batch size: the work arrays are reused only for the same shapes
    x, x2 = rng.uniform(0, 1, (4, 12)), rng.uniform(0, 1, (4, 12))
    y = rng.integers(0, 4, 4)
    src = SNNSource(net, T=5, encoder="current")
    plain = src.score_loss_grad(x, lambda s: ce_loss(s, y))

    def loss_with_prediction(s):
        src.predict(x2)
        return ce_loss(s, y)

    got = src.score_loss_grad(x, loss_with_prediction)
    np.testing.assert_array_equal(got.grad, plain.grad)
    np.testing.assert_array_equal(got.scores, plain.scores)


@pytest.mark.parametrize("layers", [2, 3])
def test_snn_source_blas_product_with_one_step(layers):
    # T = 1: the single step is the frame; both paths form its current by BLAS
    rng = np.random.default_rng(13)
    net = _blas_net(rng, layers)
    x = rng.uniform(0, 1, (5, 50))
    want = _blas_current(net, x)
    got = simulate(net, x[None], record=True, _first_product="blas").layers[0].current[0]
    np.testing.assert_array_equal(got, want)
    src = SNNSource(net, T=1, encoder="current", product="blas")
    fast = src._static._forward(x, 1, src._static._arrays(np.dtype(np.float64)), None)[0] \
        if layers == 2 else got
    np.testing.assert_array_equal(fast, want)
