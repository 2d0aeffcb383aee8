"""Corners of the convolutional clock mode (``evsnn.clock.conv``) and its gradients
(``evsnn.grad.conv``): degenerate geometries (1×1 images and kernels, a kernel as large as the
padded image, stride larger than the kernel, padding larger than the kernel so that outputs see
only padding, one channel, one sample, one step), all-zero and all-one inputs, the density at
which ``conv_mode="auto"`` switches from the event path to the dense one, membranes exactly on
the threshold, batch norm with zero variance, max-pooling ties, thread count and batch
composition.

Most oracles use *dyadic* numbers (small multiples of 1/8): every product and sum of them is
exact in float32 and float64, so results that differ only in summation order (event vs dense
path, fused vs unfused batch norm, float32 vs float64, scipy's correlation) must agree bit for
bit, and membranes land exactly on θ.
"""

import numba
import numpy as np
import pytest
from conftest import RTOL_INDEPENDENT, SUM_ORDER_FLOAT32
from hypothesis import given, settings
from hypothesis import strategies as st

import evsnn.clock.conv as conv_module
from evsnn.clock.conv import (
    AvgPool2d, BatchNorm2d, Conv2d, ConvNetwork, Dropout, Flatten, Linear, MaxPool2d, Neuron,
    _neuron_kernel, basic_block, fold_batchnorm, sew_block, simulate_conv,
)
from evsnn.conventions import get_convention
from evsnn.grad import Sigmoid, Triangle
from evsnn.grad.conv import backward_conv
from evsnn.params import IF, LIF
from reference.conv import scipy_conv
from reference.helpers import check as check_against_tape, example_count


def _dyadic(rng, shape, lo=-2.0, hi=2.0, q=0.125):
    return rng.integers(round(lo / q), round(hi / q) + 1, shape) * q


def _inputs(draw, rng, shape, dyadic=True):
    kind = draw(st.sampled_from(["zeros", "ones", "spikes", "values"]))
    if kind == "zeros":
        return np.zeros(shape)
    if kind == "ones":
        return np.ones(shape)
    if kind == "spikes":
        return (rng.random(shape) < draw(st.sampled_from([0.1, 0.5, 0.9]))).astype(float)
    return _dyadic(rng, shape, -1, 1, 0.25) if dyadic else rng.standard_normal(shape)


@st.composite
def corner_geometry(draw):
    """(C_in, H, W), kernel, stride, padding at the corners: images of 1-3 pixels a side, the
    kernel 1, half or all of the padded image, the stride 1, just past the kernel or 5, the
    padding 0-3 (3 exceeds every 1×1 or 2×2 kernel: border outputs see only padding)."""
    H, W = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    kh = draw(st.sampled_from([1, max(1, (H + 2 * ph) // 2), H + 2 * ph]))
    kw = draw(st.sampled_from([1, max(1, (W + 2 * pw) // 2), W + 2 * pw]))
    sh, sw = draw(st.sampled_from([1, kh + 1, 5])), draw(st.sampled_from([1, kw + 1, 5]))
    return (H, W), (kh, kw), (sh, sw), (ph, pw)


@st.composite
def corner_convs(draw, dyadic=True):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    (H, W), k, s, p = draw(corner_geometry())
    c_in = draw(st.integers(1, 2))
    groups = draw(st.sampled_from([1, c_in]))
    c_out = groups * draw(st.integers(1, 2))
    shape = (c_out, c_in // groups) + k
    w = _dyadic(rng, shape) if dyadic else rng.standard_normal(shape)
    bias = None
    if draw(st.booleans()):
        bias = _dyadic(rng, c_out) if dyadic else rng.standard_normal(c_out)
    layer = Conv2d(w, s, p, groups, bias)
    T, B = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    return layer, _inputs(draw, rng, (T, B, c_in, H, W), dyadic)


# --------------------------------------------------------------------------- convolution
@settings(max_examples=example_count(60))
@given(corner_convs())
def test_corner_convolutions_are_exact_on_every_path_and_dtype(case):
    """Dyadic weights and inputs: every path sums exact numbers, so the event path, the dense
    path and ``auto`` in float64 and float32 all equal scipy.signal's correlation bit for bit
    (outputs fed by padding alone are the bias, or 0)."""
    layer, x = case
    net = ConvNetwork([layer], input_shape=x.shape[2:])
    want = np.stack([scipy_conv(layer, xt) for xt in x])
    for dtype in (np.float64, np.float32):
        for mode in ("event", "dense", "auto"):
            got = simulate_conv(net, x.astype(dtype), conv_mode=mode).output
            assert got.dtype == dtype
            np.testing.assert_array_equal(got, want, err_msg=f"{mode} {np.dtype(dtype)}")


@settings(max_examples=example_count(30))
@given(corner_convs(dyadic=False), st.sampled_from([np.float64, np.float32]))
def test_corner_convolutions_event_and_dense_agree_to_the_summation_order_bound(case, dtype):
    """Real weights: the two paths differ only in summation order (module docstring): within
    RTOL_INDEPENDENT in float64 and Higham's bound (SUM_ORDER_FLOAT32 · Σ|terms|) in float32."""
    layer, x = case
    net = ConvNetwork([layer], input_shape=x.shape[2:])
    ev, de = (simulate_conv(net, x.astype(dtype), conv_mode=m).output for m in ("event", "dense"))
    exact = np.stack([scipy_conv(layer, xt) for xt in x])
    bias = None if layer.bias is None else np.abs(layer.bias)
    mag = Conv2d(np.abs(layer.weight), layer.stride, layer.padding, layer.groups, bias)
    scale = np.stack([scipy_conv(mag, np.abs(xt)) for xt in x])
    tol = RTOL_INDEPENDENT if dtype == np.float64 else SUM_ORDER_FLOAT32
    for got in (ev, de):
        assert np.all(np.abs(got.astype(np.float64) - exact) <= tol * scale)


@settings(max_examples=example_count(30))
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.booleans())
def test_auto_mode_at_the_density_threshold_is_the_forced_path(seed, size, dyadic):
    """Spike maps with exactly ⌊EVENT_DENSITY_MAX · n⌋ nonzeros take the event path and one more
    the dense one: ``auto`` then equals the forced mode bit for bit; with dyadic weights the two
    paths are bit-for-bit equal (exact sums), with real ones within RTOL_INDEPENDENT."""
    rng = np.random.default_rng(seed)
    c = int(rng.integers(1, 3))
    n = size * c  # one step, one sample, a 1 × size image of c channels
    w = _dyadic(rng, (2, c, 1, 3)) if dyadic else rng.standard_normal((2, c, 1, 3))
    net = ConvNetwork([Conv2d(w, padding=(0, 1))], input_shape=(c, 1, size))
    k = int(np.floor(conv_module.EVENT_DENSITY_MAX * n))
    order = rng.permutation(n)
    for nnz, path in ((k, "event"), (k + 1, "dense")):
        if nnz > n:
            continue
        x = np.zeros(n)
        x[order[:nnz]] = 1.0
        x = x.reshape(1, 1, c, 1, size)
        auto = simulate_conv(net, x).output
        forced = {m: simulate_conv(net, x, conv_mode=m).output for m in ("event", "dense")}
        np.testing.assert_array_equal(auto, forced[path])
        if dyadic:
            np.testing.assert_array_equal(forced["event"], forced["dense"])
        else:
            np.testing.assert_allclose(forced["event"], forced["dense"], rtol=RTOL_INDEPENDENT,
                                       atol=RTOL_INDEPENDENT)


# --------------------------------------------------------------------------- threshold ties
def _brute_force_neuron(cur, lam, theta, v_rest, v_init, hard, ge):
    """The LIF update of evsnn.params written out per element: m = λ v + I, spike m ≥ θ / m > θ."""
    v = np.full(cur.shape[1:], v_init)
    out = np.zeros(cur.shape)
    for t in range(cur.shape[0]):
        m = lam * v + cur[t]
        fire = m >= theta if ge else m > theta
        out[t] = fire
        v = np.where(fire, v_rest if hard else m - theta, m)
    return out


@settings(max_examples=example_count(40))
@given(corner_convs(), st.sampled_from([">=", ">"]), st.sampled_from(["hard", "soft"]),
       st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([0.25, 0.5, 1.0]))
def test_membranes_exactly_on_the_threshold_follow_the_spike_test(case, test, reset, lam, theta):
    """Dyadic currents put membranes exactly on θ: spikes equal the brute-force LIF update for
    both spike tests and both resets, on both convolution paths, in float64 and float32 alike."""
    layer, x = case
    v_rest = 0.0 if reset == "soft" else -0.25
    nrn = LIF(lam=lam, theta=theta, reset=reset, v_rest=v_rest, v_init=0.125)
    net = ConvNetwork([layer, Neuron(nrn)], input_shape=x.shape[2:])
    conv = get_convention("DEFAULT").with_(spike_test=test)
    cur = np.stack([scipy_conv(layer, xt) for xt in x])
    want = _brute_force_neuron(cur, lam, theta, v_rest, 0.125, reset == "hard", test == ">=")
    for dtype in (np.float64, np.float32):
        for mode in ("event", "dense"):
            res = simulate_conv(net, x.astype(dtype), convention=conv, conv_mode=mode, record=True)
            np.testing.assert_array_equal(res.output, want, err_msg=f"{mode} {np.dtype(dtype)}")
            np.testing.assert_array_equal(res.layers[0].current, cur)


@settings(max_examples=example_count(40))
@given(st.integers(0, 2**32 - 1), st.sampled_from([">=", ">"]), st.sampled_from(["hard", "soft"]),
       st.sampled_from([np.float64, np.float32]))
def test_both_neuron_kernels_agree_with_brute_force_at_exact_ties(seed, test, reset, dtype):
    """The general neuron kernel (traces, readouts, the smooth forward) and the spiking one
    :func:`simulate_conv` uses for LIF decide ties alike: currents that are multiples of θ/4."""
    rng = np.random.default_rng(seed)
    T, B, N = int(rng.integers(1, 6)), int(rng.integers(1, 3)), int(rng.integers(1, 5))
    theta, lam = 0.5, float(rng.choice([0.5, 1.0]))
    cur = (rng.integers(-2, 7, (T, B, N)) * theta / 4).astype(dtype)
    hard, ge = reset == "hard", test == ">="
    want = _brute_force_neuron(cur.astype(float), lam, theta, 0.0, 0.0, hard, ge)
    leak, gain = np.full(T, lam, dtype), np.ones(T, dtype)
    out = np.full(cur.shape, np.nan, dtype)
    empty = np.zeros((0, 0, 0), dtype)
    d = np.dtype(dtype).type
    _neuron_kernel(cur, leak, gain, d(theta), d(0.0), hard, ge, d(0.0), False, True, d(0.0),
                   d(0.0), False, out, empty, empty, empty, empty, 0, B)
    np.testing.assert_array_equal(out, want)
    net = ConvNetwork([Neuron(LIF(lam=lam, theta=theta, reset=reset))], input_shape=(N,))
    conv = get_convention("DEFAULT").with_(spike_test=test)
    np.testing.assert_array_equal(simulate_conv(net, cur, convention=conv).output, want)


# --------------------------------------------------------------------------- batch norm
@settings(max_examples=example_count(40))
@given(corner_convs(), st.sampled_from([0.25, 1.0, 4.0]), st.booleans())
def test_zero_variance_batch_norm_fused_unfused_and_folded_agree_exactly(case, eps, zero_var):
    """Running variance 0 (a channel constant over the training set) and ε a power of 4, so
    α = γ / sqrt(σ² + ε) is exact: the batch norm fused into the convolution (both paths), the
    unfused one (an inference Dropout in between stops the fusion) and fold_batchnorm all equal
    the formula ``conv(x) · α + (β − μ α)`` bit for bit."""
    layer, x = case
    rng = np.random.default_rng(int(x.size))
    c = layer.out_channels
    var = np.zeros(c) if zero_var else np.full(c, 3 * eps)  # σ² + ε = ε or 4ε
    bn = BatchNorm2d(_dyadic(rng, c), var, weight=_dyadic(rng, c), bias=_dyadic(rng, c), eps=eps)
    alpha = bn.weight / np.sqrt(var + eps)
    conv_out = np.stack([scipy_conv(layer, xt) for xt in x])
    want = conv_out * alpha[:, None, None] + (bn.bias - bn.running_mean * alpha)[:, None, None]
    shape = x.shape[2:]
    nets = {"fused": ConvNetwork([layer, bn], shape),
            "unfused": ConvNetwork([layer, Dropout(0.5), bn], shape),
            "folded": ConvNetwork([fold_batchnorm(layer, bn)], shape)}
    for name, net in nets.items():
        for mode in ("event", "dense"):
            got = simulate_conv(net, x, conv_mode=mode).output
            np.testing.assert_array_equal(got, want, err_msg=f"{name} {mode}")


def test_train_mode_batch_norm_refuses_a_single_value_per_channel():
    net = ConvNetwork([Conv2d(np.ones((2, 1, 1, 1))), BatchNorm2d([0.0, 0.0], [1.0, 1.0])],
                      input_shape=(1, 1, 1))
    with pytest.raises(ValueError, match=r"BatchNorm2d layers\[1\] in train mode needs more than "
                                         r"one value per channel, got T·B·H·W = 1"):
        simulate_conv(net, np.ones((1, 1, 1, 1, 1)), train=True)
    # two values (the least torch accepts): equal ones normalise to β exactly
    res = simulate_conv(net, np.ones((2, 1, 1, 1, 1)), train=True)
    np.testing.assert_array_equal(res.output, 0.0)
    assert res.batch_stats["layers[1]"][2] == 2


# --------------------------------------------------------------------------- pooling ties
@st.composite
def tied_pools(draw):
    """Max pooling over inputs full of ties (constants, spikes, two levels), windows that overlap
    (stride < kernel), skip elements (stride > kernel) or reach into padding."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    H = draw(st.integers(max(1, kh - 2 * ph), 5))
    W = draw(st.integers(max(1, kw - 2 * pw), 5))
    T, B, C = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    level = draw(st.sampled_from(["constant", "spikes", "two"]))
    if level == "constant":
        x = np.full((T, B, C, H, W), draw(st.sampled_from([0.0, 1.0, -0.5])))
    elif level == "spikes":
        x = (rng.random((T, B, C, H, W)) < 0.5).astype(float)
    else:
        x = rng.choice([-1.0, 2.0], (T, B, C, H, W))
    return MaxPool2d((kh, kw), (sh, sw), (ph, pw)), x


def _first_maximum_routing(pool, x, g):
    """Brute force of the documented rule: each window's gradient goes to its first maximum in
    row-major window order, padding never being one."""
    (kh, kw), (sh, sw), (ph, pw) = pool.kernel_size, pool.stride, pool.padding
    gx = np.zeros(x.shape)
    T, B, C, Ho, Wo = g.shape
    for t, b, c, oi, oj in np.ndindex(T, B, C, Ho, Wo):
        cells = [(oi * sh - ph + ki, oj * sw - pw + kj) for ki in range(kh) for kj in range(kw)]
        cells = [(i, j) for i, j in cells if 0 <= i < x.shape[3] and 0 <= j < x.shape[4]]
        vals = [x[t, b, c, i, j] for i, j in cells]
        i, j = cells[vals.index(max(vals))]  # list.index: the first occurrence
        gx[t, b, c, i, j] += g[t, b, c, oi, oj]
    return gx


@settings(max_examples=example_count(40))
@given(tied_pools(), st.sampled_from([np.float64, np.float32]))
def test_max_pooling_ties_route_the_gradient_to_the_first_maximum(case, dtype):
    pool, x = case
    net = ConvNetwork([pool], input_shape=x.shape[2:])
    res = simulate_conv(net, x.astype(dtype), record=True)
    g = np.random.default_rng(x.size).integers(-8, 9, res.output.shape) / 4  # exact sums
    got = backward_conv(net, x.astype(dtype), res, g).input
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, _first_maximum_routing(pool, x, g))


# --------------------------------------------------------------------------- gradients vs tape
@st.composite
def corner_networks(draw, exact=False):
    """Small networks at the geometric corners for the tape comparison (dyadic, so ties occur):
    a corner convolution, optional zero-variance batch norm, a neuron, optional pooling or a
    residual block on the 1-3 pixel maps, then Flatten, Linear and a neuron.

    ``exact``: dyadic upstream gradients and last weights too, and batch-norm means on the grid
    of the convolution outputs (x − μ = 0 exactly occurs). Otherwise the comparison is relative
    to each gradient's own size, so exact zeros that the two passes reach with different
    rounding must not occur: real upstream gradients and last weights (no sum of them cancels
    exactly) and means off that grid (odd multiples of 1/64; currents are multiples of 1/32):
    the tape forms dL/dγ as ``(Σ g x − μ Σ g) / sqrt(σ² + ε)``, which at x = μ leaves rounding
    noise where evsnn's ``Σ g x̂`` is exactly 0."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    (H, W), k, s, p = draw(corner_geometry())
    c_in, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    theta = draw(st.sampled_from([0.5, 1.0]))

    def neuron():
        lam = draw(st.sampled_from([0.5, 1.0]))
        if draw(st.booleans()):
            return Neuron(IF(theta=theta))
        return Neuron(LIF(lam=lam, theta=theta, reset=draw(st.sampled_from(["hard", "soft"]))))

    def bn():
        mean = (_dyadic(rng, c, -0.5, 0.5) if exact
                else (2 * rng.integers(-16, 16, c) + 1) / 64)
        return BatchNorm2d(mean, np.zeros(c), weight=_dyadic(rng, c),
                           bias=_dyadic(rng, c, -0.5, 0.5), eps=0.25)

    bias = _dyadic(rng, c, -0.5, 0.5) if draw(st.booleans()) else None
    layers = [Conv2d(_dyadic(rng, (c, c_in) + k, -1.5, 1.5), s, p, bias=bias)]
    if draw(st.booleans()):
        layers.append(bn())
    layers.append(neuron())
    shape = ConvNetwork(layers, (c_in, H, W)).output_shape
    tail = draw(st.sampled_from(["none", "max", "avg", "standard", "ADD", "AND", "IAND"]))
    if tail in ("max", "avg"):
        kk = draw(st.integers(1, min(2, shape[1], shape[2])))
        layers.append((MaxPool2d if tail == "max" else AvgPool2d)(kk, draw(st.integers(1, 3))))
    elif tail != "none":
        c1 = Conv2d(_dyadic(rng, (c, c, 3, 3), -1.5, 1.5), padding=draw(st.sampled_from([1, 2])))
        if c1.out_shape(shape) != shape:  # padding 2: a larger map; shortcut of the same shape
            down = (Conv2d(_dyadic(rng, (c, c, 3, 3), -1.5, 1.5), padding=2),)
        else:
            down = ()
        c2 = Conv2d(_dyadic(rng, (c, c, 1, 1), -1.5, 1.5))
        nrn = neuron()
        if tail == "standard":
            layers.append(basic_block(c1, c2, nrn, bn2=bn() if draw(st.booleans()) else None,
                                      downsample=down))
        else:
            layers.append(sew_block(c1, c2, nrn, downsample=down + ((nrn,) if down else ()),
                                    connection=tail))
    layers.append(Flatten())
    n = ConvNetwork(layers, (c_in, H, W)).output_shape[0]
    n_out = draw(st.integers(1, 2))
    w = _dyadic(rng, (n_out, n), -1.5, 1.5) if exact else rng.uniform(-1.5, 1.5, (n_out, n))
    layers += [Linear(w), neuron()]
    net = ConvNetwork(layers, (c_in, H, W))
    T, B = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    seq = _inputs(draw, rng, (T, B, c_in, H, W))
    conv = get_convention("DEFAULT").with_(spike_test=draw(st.sampled_from([">=", ">"])))
    g_out = (_dyadic(rng, (T, B, n_out), -1, 1) if exact
             else rng.standard_normal((T, B, n_out)))
    return dict(net=net, seq=seq, conv=conv, g_out=g_out, dyadic=True)


@settings(max_examples=example_count(30))
@given(corner_networks(), st.sampled_from(["bptt", "hart", "rga", "bptr", "rate"]),
       st.sampled_from([Triangle(1.0), Sigmoid(5.0, "code")]))
def test_corner_network_gradients_equal_the_tape(case, method, surrogate):
    """Every method of backward_conv against the reverse-mode tape with the forward rebuilt on
    it (tests/reference/conv_tape.py), at RTOL_TAPE: spikes and membranes first, then dL/dinput
    and every parameter gradient."""
    kw = {"surrogate": surrogate} if method in ("bptt", "hart") else {}
    check_against_tape(case, method, **kw)


@settings(max_examples=example_count(20))
@given(corner_networks(exact=True), st.sampled_from(["bptt", "hart"]),
       st.sampled_from([0.5, 1.0, 2.0]))
def test_corner_network_gradients_equal_the_tape_with_exact_arithmetic(case, method, gamma):
    """Dyadic everything and the triangle surrogate (piecewise linear, dyadic slopes): both
    backward passes are exact, so they agree at exactly-zero gradients (x̂ = 0) as well."""
    check_against_tape(case, method, surrogate=Triangle(gamma))


# --------------------------------------------------------------------------- reproducibility
# with one thread the two runs below would be the same run: nothing to compare (as in
# tests/test_thread_count.py)
@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2,
                    reason="needs NUMBA_NUM_THREADS >= 2 to compare thread counts")
@settings(max_examples=example_count(15))
@given(corner_networks(), st.sampled_from(["event", "dense"]))
def test_forward_and_backward_do_not_depend_on_the_thread_count(case, mode):
    """README, "Threads and reproducibility": evsnn's kernels give the same bits for any number
    of threads (each piece of the batch is computed by one thread in a fixed order)."""
    net, x = case["net"], case["seq"]
    rng = np.random.default_rng(x.size)
    x = x + rng.standard_normal(x.shape) * 0.01  # real values: rounding order would show
    before = numba.get_num_threads()
    runs = []
    try:
        for n in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(n)  # the pieces of run_split / run_range
            res = simulate_conv(net, x, record=True, conv_mode=mode)
            g = backward_conv(net, x, res, case["g_out"], surrogate=Triangle(1.0))
            runs.append((res, g))
    finally:
        numba.set_num_threads(before)
    (r1, g1), (r2, g2) = runs
    np.testing.assert_array_equal(r1.output, r2.output)
    for a, b in zip(r1.layers, r2.layers):
        np.testing.assert_array_equal(a.m, b.m)
    np.testing.assert_array_equal(g1.input, g2.input)
    for path, grads in g1.params.items():
        for key, value in grads.items():
            np.testing.assert_array_equal(value, g2.params[path][key], err_msg=f"{path} {key}")


@settings(max_examples=example_count(20))
@given(corner_convs(dyadic=False), st.sampled_from([np.float64, np.float32]))
def test_event_path_gives_a_sample_the_same_bits_alone_and_in_a_batch(case, dtype):
    """The event path sums each output of a frame in an order fixed by that frame alone
    (:func:`_conv_gather_kernel`), and neurons and max pooling are per sample: with
    ``conv_mode="event"`` a sample's spikes and membranes do not depend on the rest of the batch.
    (The dense path's BLAS products and ``auto``'s density test over the whole batch do not
    promise this.)"""
    layer, x = case
    x = np.concatenate([x, np.abs(x[:, :1]) * 3], axis=1)  # one more sample, another density
    net = ConvNetwork([layer, Neuron(LIF(lam=0.5, theta=0.5, reset="soft")), MaxPool2d(1, 2),
                       Conv2d(np.full((1, layer.out_channels, 1, 1), 0.7)), Neuron(IF(theta=0.5))],
                      x.shape[2:])
    full = simulate_conv(net, x.astype(dtype), conv_mode="event", record=True)
    for b in range(x.shape[1]):
        alone = simulate_conv(net, x[:, b:b + 1].astype(dtype), conv_mode="event", record=True)
        for rec_a, rec_f in zip(alone.layers, full.layers):
            np.testing.assert_array_equal(rec_a.m[:, 0], rec_f.m[:, b])
            np.testing.assert_array_equal(rec_a.spikes[:, 0], rec_f.spikes[:, b])


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("build, match", [
    # a kernel of height 0 made a [1, 1, 4, 3] map of zeros from a 3×3 input
    (lambda: Conv2d(np.ones((1, 1, 0, 1))), r"weight has shape \(1, 1, 0, 1\); every axis "
                                            r"\(C_out, C_in / groups, kH, kW\) needs"),
    # no output channels: simulate_conv failed in a NumPy reshape ("cannot reshape array of
    # size 0 into shape (0,newaxis)")
    (lambda: Conv2d(np.ones((0, 1, 1, 1))), r"weight has shape \(0, 1, 1, 1\)"),
    # no output rows: an empty output, silently
    (lambda: Linear(np.ones((0, 9))), r"weight has shape \(0, 9\); every axis \(n_out, n_in\)"),
    (lambda: BatchNorm2d(np.zeros(0), np.zeros(0)), r"running_mean has shape \(0,\)"),
])
def test_empty_layers_are_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build()
