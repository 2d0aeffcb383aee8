"""Convolutional clock mode: kernels vs twins, convolution vs scipy.signal, pooling, batch-norm
folding, residual blocks, agreement with the dense simulator, conventions, errors."""

import numpy as np
import pytest
from conftest import ATOL_TWIN, RTOL_INDEPENDENT, RTOL_TWIN, SUM_ORDER_FLOAT32
from hypothesis import given, settings
from hypothesis import strategies as st

from evsnn.clock import Dense, Network, simulate
from evsnn.clock.conv import (
    AvgPool2d, BatchNorm2d, Conv2d, ConvNetwork, Flatten, Linear, MaxPool2d, Neuron, Residual,
    _active_lists_kernel, _conv_gather_kernel, _conv_out_kernel, _im2col_kernel, _maxpool_kernel,
    _neuron_layer, _spiking_neuron_kernel, basic_block, fold_batchnorm, im2col, sew_block,
    simulate_conv,
)
from evsnn.conventions import DING2025_PAPER, get_convention
from evsnn.params import DLIF, IF, LIF, Readout, TraceLIF
from reference import conv as ref
from reference.conv import pool_geometry, scipy_conv
from reference.helpers import example_count


# --------------------------------------------------------------------------- strategies
def _draw_window(draw, max_stride, max_size):
    """Kernel (1-3), stride, padding (0-2) and an input height and width that fit them."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, kh - 2 * ph), max_size))
    W = draw(st.integers(max(1, kw - 2 * pw), max_size))
    return (kh, kw), (sh, sw), (ph, pw), H, W


@st.composite
def conv_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    groups = draw(st.sampled_from([1, 1, 2]))
    cin = groups * draw(st.integers(1, 3))
    cout = groups * draw(st.integers(1, 3))
    (kh, kw), (sh, sw), (ph, pw), H, W = _draw_window(draw, max_stride=3, max_size=7)
    F = draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["spikes", "counts", "values"]))
    if kind == "spikes":
        x = (rng.random((F, cin, H, W)) < draw(st.floats(0.0, 1.0))).astype(float)
    elif kind == "counts":
        x = rng.integers(0, 3, (F, cin, H, W)).astype(float)
    else:
        x = rng.standard_normal((F, cin, H, W))
    w = rng.standard_normal((cout, cin // groups, kh, kw))
    bias = rng.standard_normal(cout) if draw(st.booleans()) else None
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    return Conv2d(w, (sh, sw), (ph, pw), groups, bias), x.astype(dtype), np.dtype(dtype)


# --------------------------------------------------------------------------- twins
@st.composite
def gather_cases(draw):
    """Convolutions with enough channels for the gather kernel's four-row passes and several
    (full and partial) blocks of output channels, inputs of any density."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin = groups * draw(st.integers(1, 12))
    cout = groups * draw(st.sampled_from([1, 2, 5, 127, 128, 129, 200, 257]))
    (kh, kw), (sh, sw), (ph, pw), H, W = _draw_window(draw, max_stride=2, max_size=5)
    F = draw(st.integers(1, 2))
    x = (rng.random((F, cin, H, W)) < draw(st.floats(0.0, 1.0))).astype(float)
    if draw(st.booleans()):  # non-binary inputs (SEW sums, forced event mode on currents)
        x *= rng.integers(0, 3, x.shape) if draw(st.booleans()) else rng.standard_normal(x.shape)
    w = rng.standard_normal((cout, cin // groups, kh, kw))
    bias = rng.standard_normal(cout) if draw(st.booleans()) else None
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    return Conv2d(w, (sh, sw), (ph, pw), groups, bias), x.astype(dtype), np.dtype(dtype)


def _lists(kernel, x, groups):
    F, C, H, W = x.shape
    ptr = np.full((F, H * W * groups + 1), -1, np.int64)
    chan = np.full((F, C * H * W + 1), -1, np.int32)
    binary = np.zeros(F, np.bool_)
    kernel(x, groups, ptr, chan, binary)
    return ptr, chan, binary


@given(st.one_of(conv_cases(), gather_cases()))
def test_active_lists_kernel_matches_twin(case):
    layer, x, _ = case
    got = _lists(_active_lists_kernel, x, layer.groups)
    want = _lists(ref._active_lists_kernel, x, layer.groups)
    for f in range(x.shape[0]):
        n = want[0][f, -1]
        assert n == np.count_nonzero(x[f])
        np.testing.assert_array_equal(got[0][f], want[0][f])
        np.testing.assert_array_equal(got[1][f, :n], want[1][f, :n])  # beyond n: unused
    np.testing.assert_array_equal(got[2], want[2])
    np.testing.assert_array_equal(want[2], [np.isin(x[f][x[f] != 0], [1]).all()
                                            for f in range(x.shape[0])])


@given(st.one_of(conv_cases(), gather_cases()))
def test_conv_gather_kernel_matches_twin(case):
    layer, x, dtype = case
    ptr, chan, binary = _lists(ref._active_lists_kernel, x, layer.groups)
    _, Ho, Wo = layer.out_shape(x.shape[1:])
    shape = (x.shape[0], Ho * Wo, layer.out_channels)
    a, b = np.full(shape, np.nan, dtype), np.full(shape, np.nan, dtype)
    args = (x, ptr, chan, binary, layer.gather_weight(dtype), *layer.weight.shape[2:],
            *layer.stride, *layer.padding, layer.groups)
    _conv_gather_kernel(*args, a)
    ref._conv_gather_kernel(*args, b)
    assert a.dtype == dtype
    np.testing.assert_array_equal(a, b)  # the same additions in the same order: exact


def test_gather_weight_blocks_hold_the_weight_matrix():
    rng = np.random.default_rng(4)
    layer = Conv2d(rng.standard_normal((2 * 130, 3, 2, 2)), groups=2)  # 130 = 128 + 2 per group
    wb = layer.gather_weight(np.float32)
    assert wb.shape == (4, 2 * 2 * 3, 128) and wb.dtype == np.float32
    wm = layer.matrix(np.float32)
    for blk, (o0, nk) in enumerate([(0, 128), (128, 2), (130, 128), (258, 2)]):
        np.testing.assert_array_equal(wb[blk, :, :nk], wm[o0:o0 + nk].T)
        assert not wb[blk, :, nk:].any()  # a group's last block is padded with zeros
    assert layer.gather_weight(np.float32) is wb  # cached


@given(conv_cases())
def test_im2col_kernel_matches_twin(case):
    layer, x, dtype = case
    _, Ho, Wo = layer.out_shape(x.shape[1:])
    shape = (x.shape[0], Ho, Wo) + layer.weight.shape[2:] + (x.shape[1],)
    a, b = np.full(shape, np.nan, dtype), np.full(shape, np.nan, dtype)
    args = (x, *layer.weight.shape[2:], *layer.stride, *layer.padding)
    _im2col_kernel(*args, a)
    ref._im2col_kernel(*args, b)
    np.testing.assert_array_equal(a, b)  # a copy: exact


@settings(max_examples=example_count(25))
@given(st.integers(0, 2**32 - 1), st.sampled_from([np.float64, np.float32]), st.booleans(),
       st.sampled_from(["none", "bn", "bn+pre"]))
def test_conv_out_kernel_matches_twin_and_numpy(seed, dtype, with_bias, bn):
    rng = np.random.default_rng(seed)
    F, P, C = rng.integers(1, 4), rng.integers(1, 10), rng.integers(1, 6)
    z = rng.standard_normal((F, P, C)).astype(dtype)
    none = np.zeros(0, dtype)
    bias = rng.standard_normal(C).astype(dtype) if with_bias else none
    alpha, shift = ((rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype))
                    if bn != "none" else (none, none))
    runs = []
    for kernel in (_conv_out_kernel, ref._conv_out_kernel):
        pre = np.full((F, C, P) if bn == "bn+pre" else (0, 0, 0), np.nan, dtype)
        out = np.full((F, C, P), np.nan, dtype)
        kernel(z, bias, alpha, shift, pre, out)
        runs.append((pre, out))
    for got, want in zip(*runs):
        np.testing.assert_array_equal(got, want)
    # the NumPy expressions the kernel replaces, bit for bit
    y = z.copy()
    if with_bias:
        y += bias
    y = y.transpose(0, 2, 1)
    if bn != "none":
        if bn == "bn+pre":
            np.testing.assert_array_equal(runs[0][0], y)
        y = y * alpha[:, None] + shift[:, None]
    np.testing.assert_array_equal(runs[0][1], y)


@st.composite
def neuron_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["lif", "if", "trace", "readout", "dlif"]))
    theta = draw(st.floats(0.2, 2.0))
    if kind == "lif":
        nrn = LIF(lam=draw(st.floats(0.0, 1.0)), theta=theta,
                  reset=draw(st.sampled_from(["hard", "soft"])),
                  v_rest=draw(st.floats(-0.5, 0.5)), v_init=draw(st.floats(-0.5, 0.5)))
    elif kind == "if":
        nrn = IF(theta=theta)
    elif kind == "trace":
        nrn = TraceLIF(tau_mem_ms=draw(st.floats(1.0, 20.0)), tau_syn_ms=draw(st.floats(1.0, 20.0)),
                       theta=theta, output=draw(st.sampled_from(["spike", "trace"])))
    elif kind == "readout":
        nrn = Readout(lam=draw(st.floats(0.0, 1.0)))
    else:
        nrn = DLIF(lam=draw(st.floats(0.0, 1.0)), theta=theta)
    T, B, N = draw(st.integers(1, 10)), draw(st.integers(1, 3)), draw(st.integers(1, 6))
    factors = rng.uniform(0.5, 1.5, T) if kind == "dlif" else None
    layer = Neuron(nrn, dlif_factors=factors, input_scale=draw(st.sampled_from([1.0, 0.5])))
    cur = rng.standard_normal((T, B, N)) * draw(st.floats(0.1, 3.0))
    dtype = np.dtype(draw(st.sampled_from([np.float64, np.float32])))
    conv = get_convention("DEFAULT").with_(
        spike_test=draw(st.sampled_from([">=", ">"])),
        dlif_factor=draw(st.sampled_from(["leak", "input"])))
    smooth = draw(st.sampled_from([0.0, 0.0, 4.0]))
    return layer, cur.astype(dtype), dtype, conv, smooth


def _neuron_args(layer, cur, dtype, conv, smooth, record):
    args, leak, gain = layer.factors(cur.shape[0], conv, dtype)
    shape = cur.shape if record else (0, 0, 0)
    outs = [np.full(cur.shape, np.nan, dtype)] + [np.full(shape, np.nan, dtype) for _ in range(4)]
    return (cur, leak, gain, dtype.type(args.theta), dtype.type(args.v_rest), args.hard_reset,
            conv.spike_ge, dtype.type(args.trace_coef), args.emit_trace, args.spiking,
            dtype.type(args.v_init), dtype.type(smooth), record, *outs)


@given(neuron_cases(), st.booleans())
def test_neuron_kernel_matches_twin(case, record):
    a = _neuron_args(*case, record)
    b = _neuron_args(*case, record)
    _neuron_layer(*a)  # the samples split among the threads
    ref._neuron_kernel(*b)
    for got, want in zip(a[13:], b[13:]):
        assert got.dtype == case[2]
        # exp in the smooth spike: numba's and NumPy's float32 exp may differ by an ulp
        np.testing.assert_allclose(got, want, rtol=RTOL_TWIN if case[2] == np.float64 else 1e-6,
                                   atol=ATOL_TWIN if case[2] == np.float64 else 1e-6,
                                   equal_nan=True)


@given(neuron_cases(), st.booleans())
def test_spiking_neuron_kernel_matches_twin_and_the_general_kernel(case, record):
    layer, cur, dtype, conv, smooth = case
    args, leak, gain = layer.factors(cur.shape[0], conv, dtype)
    if not args.spiking or args.trace_coef != 0 or args.emit_trace:
        return  # the fast kernel covers spiking neurons without trace only
    T, B, N = cur.shape
    flat = cur.reshape(T, B * N)
    runs = []
    for kernel in (_spiking_neuron_kernel, ref._spiking_neuron_kernel):
        outs = [np.full((T, B * N) if k == 0 or record else (0, 0), np.nan, dtype)
                for k in range(3)]
        kernel(flat, leak, gain, dtype.type(args.theta), dtype.type(args.v_rest),
               args.hard_reset, conv.spike_ge, dtype.type(args.v_init), *outs)
        runs.append(outs)
    for got, want in zip(*runs):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)  # same operations in the same order: exact
    general = _neuron_args(layer, cur, dtype, conv, 0.0, True)
    _neuron_layer(*general)
    np.testing.assert_array_equal(runs[0][0].reshape(T, B, N), general[13])
    if record:
        np.testing.assert_array_equal(runs[0][1].reshape(T, B, N), general[14])
        np.testing.assert_array_equal(runs[0][2].reshape(T, B, N), general[15])


def test_spiking_neuron_kernel_across_work_item_boundaries():
    # more neurons than one parallel work item (_NEURON_CHUNK = 2048) and a ragged last one
    rng = np.random.default_rng(11)
    T, M = 5, 2 * 2048 + 77
    cur = rng.standard_normal((T, M)).astype(np.float32) * 2
    leak, gain = np.full(T, 0.5, np.float32), np.ones(T, np.float32)
    runs = []
    for kernel in (_spiking_neuron_kernel, ref._spiking_neuron_kernel):
        outs = [np.full((T, M), np.nan, np.float32) for _ in range(3)]
        kernel(cur, leak, gain, np.float32(1.0), np.float32(0.0), True, True, np.float32(0.0),
               *outs)
        runs.append(outs)
    for got, want in zip(*runs):
        np.testing.assert_array_equal(got, want)
    assert 0 < runs[0][0].mean() < 1  # some neurons fire, some do not


@st.composite
def pool_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    geom, shape, oshape, dtype = draw(pool_geometry())
    if draw(st.booleans()):  # spikes: many ties, where the first maximum must win
        x = (rng.random(shape) < 0.4).astype(dtype)
    else:
        x = rng.standard_normal(shape).astype(dtype)
    return x, geom, oshape, dtype


@given(pool_cases())
def test_maxpool_kernel_matches_twin_and_the_first_maximum_rule(case):
    x, geom, oshape, dtype = case
    runs = []
    for kernel in (_maxpool_kernel, ref._maxpool_kernel):
        out, arg = np.full(oshape, np.nan, dtype), np.full(oshape, -1, np.int64)
        kernel(x, *geom, out, arg)
        runs.append((out, arg))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])  # a selection: exact
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    # the offsets kept in int8 (what the forward records), or not kept at all: same values
    out8, arg8 = np.full(oshape, np.nan, dtype), np.full(oshape, -1, np.int8)
    _maxpool_kernel(x, *geom, out8, arg8)
    np.testing.assert_array_equal(arg8, runs[0][1])
    for kernel in (_maxpool_kernel, ref._maxpool_kernel):
        out0 = np.full(oshape, np.nan, dtype)
        kernel(x, *geom, out0, np.zeros((0, 0, 0, 0), np.int8))
        np.testing.assert_array_equal(out0, runs[0][0])
    # torch.nn.functional.max_pool2d's values and first-maximum indices (independent)
    torch = pytest.importorskip("torch")
    kh, kw, sh, sw, ph, pw = geom
    tv, ti = torch.nn.functional.max_pool2d(torch.as_tensor(x), (kh, kw), (sh, sw), (ph, pw),
                                            return_indices=True)
    np.testing.assert_array_equal(runs[0][0], tv.numpy())
    Ho, Wo = oshape[2:]
    oi, oj = np.arange(Ho)[:, None], np.arange(Wo)[None, :]
    arg = runs[0][1]
    flat = (oi * sh - ph + arg // kw) * x.shape[3] + (oj * sw - pw + arg % kw)
    np.testing.assert_array_equal(flat, ti.numpy())


# --------------------------------------------------------------------------- independent
@settings(max_examples=example_count(25))
@given(conv_cases())
def test_convolution_matches_scipy_correlate_on_both_paths(case):
    layer, x, dtype = case
    x = x.astype(np.float64)
    want = scipy_conv(layer, x)
    net = ConvNetwork([layer], input_shape=x.shape[1:])
    for mode in ("event", "dense"):
        got = simulate_conv(net, x[None], conv_mode=mode).output[0]
        np.testing.assert_allclose(got, want, rtol=RTOL_INDEPENDENT, atol=RTOL_INDEPENDENT)


@settings(max_examples=example_count(30))
@given(gather_cases())
def test_event_path_matches_dense_path(case):
    layer, x, dtype = case
    net = ConvNetwork([layer], input_shape=x.shape[1:])
    ev = simulate_conv(net, x[None], conv_mode="event", dtype=dtype).output
    de = simulate_conv(net, x[None], conv_mode="dense", dtype=dtype).output
    assert ev.dtype == de.dtype == dtype
    if dtype == np.float64:
        np.testing.assert_allclose(ev, de, rtol=RTOL_INDEPENDENT, atol=RTOL_INDEPENDENT)
        return
    # float32: both sums are within (terms) · eps · Σ|term| of the exact one (Higham's bound)
    bias = None if layer.bias is None else np.abs(layer.bias)
    mag = ConvNetwork([Conv2d(np.abs(layer.weight).astype(np.float64), layer.stride,
                              layer.padding, layer.groups, bias)], input_shape=x.shape[1:])
    scale = simulate_conv(mag, np.abs(x[None]).astype(np.float64), conv_mode="dense").output
    assert np.all(np.abs(ev.astype(np.float64) - de) <= SUM_ORDER_FLOAT32 * scale)


@pytest.mark.parametrize("keep_pre", [False, True])
def test_event_path_applies_bias_and_batch_norm_like_the_dense_path(keep_pre):
    from evsnn.clock.conv import _conv_forward

    rng = np.random.default_rng(12)
    layer = Conv2d(rng.standard_normal((6, 4, 3, 3)), stride=2, padding=1, groups=2,
                   bias=rng.standard_normal(6))
    bn = BatchNorm2d(rng.standard_normal(6), rng.uniform(0.5, 2, 6), rng.standard_normal(6),
                     rng.standard_normal(6))
    x = (rng.random((3, 2, 8, 7, 7)) < 0.3).astype(float)
    runs = [_conv_forward(layer, x, True, mode, np.float64, bn, keep_pre)
            for mode in ("event", "dense")]
    (pre_ev, out_ev), (pre_de, out_de) = runs
    np.testing.assert_allclose(out_ev, out_de, rtol=RTOL_INDEPENDENT, atol=RTOL_INDEPENDENT)
    conv = _conv_forward(layer, x, True, "dense", np.float64)
    if keep_pre:  # the convolution's own output (with bias), before the batch norm
        np.testing.assert_allclose(pre_ev, conv, rtol=RTOL_INDEPENDENT, atol=RTOL_INDEPENDENT)
        np.testing.assert_allclose(pre_de, conv, rtol=RTOL_INDEPENDENT, atol=RTOL_INDEPENDENT)
    else:
        assert pre_ev is None and pre_de is None
    alpha, shift = bn.scale_shift(np.float64)
    np.testing.assert_allclose(out_ev, conv * alpha[:, None, None] + shift[:, None, None],
                               rtol=RTOL_INDEPENDENT, atol=RTOL_INDEPENDENT)


def test_dense_path_reuses_repeated_steps_exactly():
    rng = np.random.default_rng(0)
    layer = Conv2d(rng.standard_normal((3, 2, 3, 3)), padding=1)
    img = rng.random((1, 2, 2, 6, 6))
    x = np.concatenate([img, img, rng.random((1, 2, 2, 6, 6)), img])
    net = ConvNetwork([layer], input_shape=(2, 6, 6))
    out = simulate_conv(net, x, conv_mode="dense").output
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], out[3])  # recomputed after a change: same numbers
    np.testing.assert_allclose(out[0, 1], scipy_conv(layer, x[0])[1], rtol=RTOL_INDEPENDENT)


def _naive_pool(x, k, s, p, op):
    F, C, H, W = x.shape
    fill = 0.0 if op == "avg" else -np.inf
    xp = np.full((F, C, H + 2 * p, W + 2 * p), fill)
    xp[:, :, p:p + H, p:p + W] = x
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    out = np.empty((F, C, Ho, Wo))
    for f in range(F):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    win = xp[f, c, i * s:i * s + k, j * s:j * s + k]
                    out[f, c, i, j] = win.mean() if op == "avg" else win.max()
    return out


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 1, 0)])
@pytest.mark.parametrize("op", ["avg", "max"])
def test_pooling_matches_naive_windows(k, s, p, op):
    x = np.random.default_rng(k * 10 + s + p).standard_normal((2, 3, 7, 6))
    pool = (AvgPool2d if op == "avg" else MaxPool2d)(k, s, p)
    net = ConvNetwork([pool], input_shape=(3, 7, 6))
    got = simulate_conv(net, x[None]).output[0]
    np.testing.assert_allclose(got, _naive_pool(x, k, s, p, op), rtol=1e-15, atol=1e-15)


def test_batchnorm_fold_keeps_the_convolutions_dtype():
    # a float32 conv stays float32 (its bias-less fold got float64 arrays from the default
    # γ, β and the missing bias): the float64 fold rounded once
    rng = np.random.default_rng(2)
    w32 = rng.standard_normal((2, 1, 2, 2)).astype(np.float32)
    bn = BatchNorm2d(np.float32([0.5, -1.0]), np.float32([2.0, 0.5]))  # default γ = 1, β = 0
    f64 = fold_batchnorm(Conv2d(w32.astype(np.float64)), bn)
    for bias in (None, np.float32([0.25, 1.0])):
        f32 = fold_batchnorm(Conv2d(w32, bias=bias), bn)
        assert f32.weight.dtype == f32.bias.dtype == np.float32
        np.testing.assert_array_equal(f32.weight, f64.weight.astype(np.float32))
        if bias is None:
            np.testing.assert_array_equal(f32.bias, f64.bias.astype(np.float32))
    # a float64 conv with a float32 bias keeps each array's dtype
    mixed = fold_batchnorm(Conv2d(w32.astype(np.float64), bias=np.float32([0.0, 0.0])), bn)
    assert (mixed.weight.dtype, mixed.bias.dtype) == (np.float64, np.float32)
    with pytest.raises(ValueError, match=r"the folded weight holds a value of magnitude .*, past "
                                         r"float32's largest .*; cast the conv's weight \(and "
                                         r"bias\) to float64 before folding"):
        fold_batchnorm(Conv2d(np.float32([[[[1e30]]]])), BatchNorm2d([0.0], [1e-20], eps=1e-20))


def test_batchnorm_fold_equals_conv_then_bn():
    rng = np.random.default_rng(1)
    conv = Conv2d(rng.standard_normal((4, 2, 3, 3)), padding=1, bias=rng.standard_normal(4))
    bn = BatchNorm2d(rng.standard_normal(4), rng.uniform(0.5, 2, 4), rng.standard_normal(4),
                     rng.standard_normal(4), eps=1e-5)
    x = (rng.random((3, 2, 2, 5, 5)) < 0.4).astype(float)
    two = simulate_conv(ConvNetwork([conv, bn], input_shape=(2, 5, 5)), x).output
    one = simulate_conv(ConvNetwork([fold_batchnorm(conv, bn)], input_shape=(2, 5, 5)), x).output
    # hand formula: (conv(x) − μ) γ / sqrt(σ² + ε) + β
    raw = simulate_conv(ConvNetwork([conv], input_shape=(2, 5, 5)), x).output
    c = (slice(None), None, None)
    hand = ((raw - bn.running_mean[c]) * bn.weight[c] / np.sqrt(bn.running_var[c] + 1e-5)
            + bn.bias[c])
    np.testing.assert_allclose(two, hand, rtol=RTOL_INDEPENDENT, atol=RTOL_INDEPENDENT)
    np.testing.assert_allclose(one, hand, rtol=RTOL_INDEPENDENT, atol=RTOL_INDEPENDENT)


def _run_layers(layers, x, shape):
    return simulate_conv(ConvNetwork(layers, input_shape=shape), x, record=True)


def test_standard_basic_block_is_neuron_of_the_summed_currents():
    rng = np.random.default_rng(2)
    nrn = Neuron(LIF(lam=0.8, theta=1.0, reset="soft"))
    c1, c2 = (Conv2d(rng.standard_normal((3, 3, 3, 3)) * 0.8, padding=1) for _ in range(2))
    x = (rng.random((6, 2, 3, 5, 5)) < 0.5).astype(float)
    res = _run_layers([basic_block(c1, c2, nrn)], x, (3, 5, 5))
    # by parts: body current, plus the identity, into the same neuron
    inner = _run_layers([c1, nrn, c2], x, (3, 5, 5)).output
    alone = _run_layers([nrn], inner + x, (3, 5, 5))
    np.testing.assert_array_equal(res.output, alone.output)
    assert res.names == ("layers[0].body[1]", "layers[0].neuron")
    assert 0 < res.output.sum() < res.output.size


@pytest.mark.parametrize("connection", ["ADD", "AND", "IAND"])
def test_sew_block_combines_spikes_elementwise(connection):
    rng = np.random.default_rng(3)
    nrn = Neuron(LIF(lam=0.9, theta=0.7))
    c1, c2 = (Conv2d(rng.standard_normal((3, 3, 3, 3)), padding=1) for _ in range(2))
    down = (Conv2d(rng.standard_normal((3, 3, 1, 1)), stride=1), nrn)
    x = (rng.random((5, 2, 3, 6, 6)) < 0.5).astype(float)
    res = _run_layers([sew_block(c1, c2, nrn, downsample=down, connection=connection)], x,
                      (3, 6, 6))
    body = _run_layers([c1, nrn, c2, nrn], x, (3, 6, 6)).output
    short = _run_layers(list(down), x, (3, 6, 6)).output
    want = {"ADD": short + body, "AND": short * body, "IAND": short * (1 - body)}[connection]
    np.testing.assert_array_equal(res.output, want)
    assert len(res.layers) == 3


def test_flatten_linear_network_equals_dense_simulator():
    rng = np.random.default_rng(4)
    w1, w2 = rng.standard_normal((12, 18)), rng.standard_normal((5, 12))
    nrn = [LIF(lam=0.9, theta=0.8, reset="soft"), TraceLIF(tau_mem_ms=4.0, theta=0.5)]
    x = (rng.random((9, 3, 2, 3, 3)) < 0.4).astype(float)
    for conv in ("DEFAULT", DING2025_PAPER):
        got = simulate_conv(ConvNetwork([Flatten(), Linear(w1), Neuron(nrn[0]), Linear(w2),
                                         Neuron(nrn[1])], input_shape=(2, 3, 3)), x,
                            convention=conv, record=True)
        dense = simulate(Network([Dense(w1, nrn[0]), Dense(w2, nrn[1])]), x.reshape(9, 3, 18),
                         convention=conv, record=True)
        for a, b in zip(got.layers, dense.layers):
            np.testing.assert_allclose(a.m, b.m, rtol=RTOL_INDEPENDENT, atol=RTOL_INDEPENDENT)
            np.testing.assert_array_equal(a.output, b.output)


def test_conv_network_matches_step_major_loop_with_delay():
    """Ding 2025 Eq. 15 literally (input_delay=1): a step-by-step loop written from the
    equation, U[t+1] = λU[t] + conv(s_prev[t]), agrees with the layer-major simulator."""
    rng = np.random.default_rng(5)
    conv1 = Conv2d(rng.standard_normal((2, 1, 3, 3)), padding=1)
    lin = Linear(rng.standard_normal((4, 2 * 4 * 4)))
    nrn = LIF(lam=0.7, theta=0.6, reset="hard")
    net = ConvNetwork([conv1, Neuron(nrn), Flatten(), Linear(lin.weight), Neuron(nrn)],
                      input_shape=(1, 4, 4))
    x = (rng.random((8, 2, 1, 4, 4)) < 0.5).astype(float)
    res = simulate_conv(net, x, convention=DING2025_PAPER, record=True)
    T, B = 8, 2
    u1, u2 = np.zeros((B, 2, 4, 4)), np.zeros((B, 4))
    s1_prev, x_prev = np.zeros((B, 2, 4, 4)), np.zeros((B, 1, 4, 4))
    out = np.zeros((T, B, 4))
    for t in range(T):
        m1 = 0.7 * u1 + scipy_conv(conv1, x_prev)
        m2 = 0.7 * u2 + s1_prev.reshape(B, -1) @ lin.weight.T
        s1, s2 = (m1 > 0.6).astype(float), (m2 > 0.6).astype(float)  # DING2025_PAPER: ">"
        u1, u2 = np.where(s1 > 0, 0.0, m1), np.where(s2 > 0, 0.0, m2)
        out[t] = s2
        x_prev, s1_prev = x[t], s1
    np.testing.assert_array_equal(res.output, out)
    assert out.sum() > 0


def test_linear_after_the_last_neuron_layer_gets_its_input_a_step_late():
    """With input_delay=1 a bare Linear after the last neuron layer sees that layer's spikes one
    step late, as a Linear + Readout(lam=0) layer does and as the dense simulator's readout does
    (its current is W s[t - 1]); it used to see them in the same step."""
    x = np.zeros((4, 1, 1))
    x[0, 0, 0] = 1.0  # reaches the hidden layer at step 1, which fires (2 > θ = 1)
    hidden = [Linear(np.array([[2.0]])), Neuron(LIF(theta=1.0))]
    bare = ConvNetwork(hidden + [Linear(np.array([[1.0]]))], input_shape=(1,))
    readout = ConvNetwork(hidden + [Linear(np.array([[1.0]])), Neuron(Readout(lam=0.0))],
                          input_shape=(1,))
    dense = Network([Dense(np.array([[2.0]]), LIF(theta=1.0)),
                     Dense(np.array([[1.0]]), Readout(lam=0.0))])
    got = simulate_conv(bare, x, convention=DING2025_PAPER).output[:, 0, 0]
    np.testing.assert_array_equal(got, [0.0, 0.0, 1.0, 0.0])  # hand derivation: steps 1 + 1
    np.testing.assert_array_equal(
        simulate_conv(readout, x, convention=DING2025_PAPER).output[:, 0, 0], got)
    np.testing.assert_array_equal(simulate(dense, x, convention=DING2025_PAPER).output[:, 0, 0],
                                  got)
    # without a later synaptic layer the last neuron layer's output is not delayed
    pooled = ConvNetwork([Conv2d(np.full((1, 1, 1, 1), 2.0)), Neuron(LIF(theta=1.0)),
                          AvgPool2d(1), Flatten()], input_shape=(1, 1, 1))
    np.testing.assert_array_equal(simulate_conv(pooled, x.reshape(4, 1, 1, 1, 1),
                                                convention=DING2025_PAPER).output[:, 0, 0],
                                  [0.0, 1.0, 0.0, 0.0])


def test_spike_test_convention_decides_exact_threshold():
    # dyadic weights: the membrane hits θ = 1 exactly
    net = ConvNetwork([Conv2d(np.full((1, 1, 1, 2), 0.5)), Neuron(LIF(theta=1.0))],
                      input_shape=(1, 1, 2))
    x = np.ones((1, 1, 1, 1, 2))
    assert simulate_conv(net, x, convention="HART_CODE").output.sum() == 1
    assert simulate_conv(net, x, convention="DING2025_TEMPBP_CODE").output.sum() == 0


def test_float32_end_to_end_and_events():
    rng = np.random.default_rng(6)
    net = ConvNetwork([Conv2d(rng.standard_normal((2, 1, 3, 3))), Neuron(IF(0.5))],
                      input_shape=(1, 5, 5))
    x = (rng.random((4, 2, 1, 5, 5)) < 0.5).astype(np.float32)
    res = simulate_conv(net, x, record=True)
    assert res.output.dtype == np.float32 and res.layers[0].m.dtype == np.float32
    ev = res.spike_events(0)
    steps, neurons = ev.sample(1)
    flat = res.layers[0].spikes[:, 1].reshape(4, -1)
    assert len(steps) == flat.sum() and np.all(flat[steps, neurons] == 1)


def test_teacher_replaces_what_is_passed_downstream():
    rng = np.random.default_rng(7)
    nrn = Neuron(LIF(theta=0.5))
    net = ConvNetwork([Conv2d(rng.standard_normal((2, 1, 3, 3)), padding=1), nrn, Flatten(),
                       Linear(rng.standard_normal((3, 32))), nrn], input_shape=(1, 4, 4))
    x = (rng.random((5, 2, 1, 4, 4)) < 0.5).astype(float)
    forced = np.zeros((5, 2, 2, 4, 4))
    res = simulate_conv(net, x, record=True, teacher=[forced, None])
    np.testing.assert_array_equal(res.layers[1].current, 0.0)  # the layer saw the teacher
    assert res.layers[0].spikes.sum() > 0  # the first layer still reports its own spikes


# --------------------------------------------------------------------------- errors
def _net():
    return ConvNetwork([Conv2d(np.ones((2, 1, 3, 3))), Neuron()], input_shape=(1, 4, 4))


@pytest.mark.parametrize(
    "build, exc, match",
    [
        (lambda: Conv2d(np.ones((2, 1, 3))), ValueError, "weight must be 4-D"),
        (lambda: Conv2d(np.ones((2, 1, 3, 3)), stride=0), ValueError,
         r"stride=0 must be an integer >= 1"),
        (lambda: Conv2d(np.ones((2, 1, 3, 3)), padding=1.5), TypeError,
         "padding must be an integer, got float 1.5"),
        (lambda: Conv2d(np.ones((2, 1, 3, 3)), padding=(1, -1)), ValueError,
         "padding=-1 must be an integer >= 0"),
        (lambda: Conv2d(np.ones((2, 1, 3, 3)), groups=True), TypeError,
         "groups must be an integer, got bool True"),
        (lambda: Conv2d(np.ones((2, 1, 3, 3)), padding=(1, 2, 3)), TypeError, "pair of ints"),
        (lambda: Conv2d(np.ones((3, 1, 3, 3)), groups=2), ValueError, "groups=2 does not divide"),
        (lambda: Conv2d(np.ones((2, 1, 3, 3)), bias=[1.0]), ValueError, "bias has 1 entries"),
        (lambda: Linear(np.ones((2, 3)), bias=[1.0]), ValueError, "bias has 1 entries"),
        (lambda: MaxPool2d(2, padding=2), ValueError, "exceeds half the kernel"),
        (lambda: BatchNorm2d([0.0], [-1.0]), ValueError, "non-negative variances"),
        (lambda: BatchNorm2d([0.0], [1.0], weight=[1.0, 2.0]), ValueError, "one per channel"),
        (lambda: BatchNorm2d([0.0], [1.0], eps=0), ValueError,
         r"eps=0 must be finite and > 0; it is added to the variance, PyTorch's default is 1e-5"),
        (lambda: BatchNorm2d([0.0], [1.0], eps=np.inf), ValueError, "eps=inf must be finite"),
        (lambda: BatchNorm2d([0.0], [1.0], eps="1e-5"), TypeError,
         "eps must be a real number, got str '1e-5'"),
        (lambda: Neuron("lif"), TypeError, "neuron must be one of"),
        (lambda: Neuron(DLIF()), ValueError, "dlif_factors are required"),
        (lambda: Neuron(LIF(), input_scale=float("nan")), ValueError,
         "input_scale=nan must be finite; the factor on the input current, 1 for none"),
        (lambda: Neuron(LIF(), input_scale=None), TypeError,
         "input_scale must be a real number, got NoneType None"),
        (lambda: Residual((Neuron(),), connection="OR"), ValueError, "connection='OR'"),
        (lambda: Residual((Neuron(),), connection="standard"), ValueError, "needs neuron="),
        (lambda: Residual((Neuron(),), connection="ADD", neuron=Neuron()), ValueError,
         "needs neuron="),
        (lambda: Residual([], connection="ADD"), ValueError, "body is empty"),
        (lambda: Residual("x", connection="ADD"), TypeError, "body must be a tuple"),
        (lambda: ConvNetwork([Neuron(), "relu"], (1,)), TypeError, r"layers\[1\] must be one of"),
        (lambda: ConvNetwork([Neuron()], (0, 3)), ValueError,
         r"input_shape\[0\]=0 must be an integer >= 1; a sample's shape, e.g. \(3, 32, 32\)"),
        (lambda: ConvNetwork([Neuron()], (2, 3.0)), TypeError,
         r"input_shape\[1\] must be an integer, got float 3.0"),
        (lambda: ConvNetwork([Neuron()], ()), ValueError,
         r"input_shape=\(\) must hold at least one size"),
        (lambda: ConvNetwork([Neuron()], 4), TypeError,
         r"input_shape must be a tuple of positive ints, got int 4; e.g. \(3, 32, 32\)"),
        (lambda: ConvNetwork([Conv2d(np.ones((2, 3, 3, 3)))], (1, 5, 5)), ValueError,
         r"layers\[0\]: Conv2d takes 3 input channels but receives 1"),
        (lambda: ConvNetwork([Conv2d(np.ones((2, 1, 3, 3)))], (1, 2, 2)), ValueError,
         "does not fit an input of size 2"),
        (lambda: ConvNetwork([Conv2d(np.ones((2, 1, 3, 3)))], (4,)), ValueError,
         r"Conv2d needs \[C, H, W\]"),
        (lambda: ConvNetwork([AvgPool2d(2)], (4,)), ValueError, r"AvgPool2d needs \[C, H, W\]"),
        (lambda: ConvNetwork([Linear(np.ones((2, 3)))], (1, 2, 2)), ValueError, "put a Flatten"),
        (lambda: ConvNetwork([Linear(np.ones((2, 3)))], (4,)), ValueError, "takes 3 inputs"),
        (lambda: ConvNetwork([BatchNorm2d([0.0], [1.0])], (2, 3, 3)), ValueError,
         "BatchNorm2d has 1 channels"),
        (lambda: ConvNetwork([Residual((Conv2d(np.ones((2, 1, 1, 1))),), connection="ADD",
                                       )], (1, 3, 3)), ValueError, "add a downsampling shortcut"),
        (lambda: fold_batchnorm(Linear(np.ones((1, 1))), None), TypeError, "conv must be a Conv2d"),
        (lambda: fold_batchnorm(Conv2d(np.ones((1, 1, 1, 1))), None), TypeError, "bn must be"),
        (lambda: fold_batchnorm(Conv2d(np.ones((1, 1, 1, 1))), BatchNorm2d([0.0, 0.0], [1.0, 1.0])),
         ValueError, "bn has 2 channels"),
        (lambda: simulate_conv(Network.mlp([2, 2]), np.ones((1, 1, 2))), TypeError,
         "ConvNetwork"),
        (lambda: simulate_conv(_net(), np.ones((2, 1, 4, 4))), ValueError, "time-major"),
        (lambda: simulate_conv(_net(), np.ones((0, 1, 1, 4, 4))), ValueError,
         "at least one step"),
        (lambda: simulate_conv(_net(), np.full((1, 1, 1, 4, 4), np.nan)), ValueError, "NaN"),
        (lambda: simulate_conv(_net(), np.array([[["a"]]])), TypeError, "numeric"),
        (lambda: simulate_conv(_net(), np.ones((1, 1, 1, 4, 4)), dtype=np.float16), ValueError,
         "float16 is not supported"),
        (lambda: simulate_conv(_net(), np.ones((1, 1, 1, 4, 4)), conv_mode="fft"), ValueError,
         "conv_mode='fft'"),
        (lambda: simulate_conv(_net(), np.ones((1, 1, 1, 4, 4)), smooth_rho=-1.0), ValueError,
         r"smooth_rho=-1.0 must be finite and >= 0; 0: spikes"),
        (lambda: simulate_conv(_net(), np.ones((1, 1, 1, 4, 4)), smooth_rho=np.inf), ValueError,
         r"smooth_rho=inf must be finite"),
        (lambda: simulate_conv(_net(), np.ones((1, 1, 1, 4, 4)), smooth_rho="1"), TypeError,
         r"smooth_rho must be a real number, got str '1'"),
        # a flag is True or False: record="no" used to record
        (lambda: simulate_conv(_net(), np.ones((1, 1, 1, 4, 4)), record="no"), TypeError,
         "record must be True or False, got 'no'; pass record=True or record=False"),
        (lambda: simulate_conv(_net(), np.ones((1, 1, 1, 4, 4)), teacher=[]), ValueError,
         "teacher has 0 entries"),
        (lambda: simulate_conv(_net(), np.ones((1, 1, 1, 4, 4)), teacher=[np.ones(3)]),
         ValueError, r"teacher\[0\] has shape"),
        (lambda: simulate_conv(ConvNetwork([Residual((Neuron(),), connection="ADD")], (1, 2, 2)),
                               np.ones((1, 1, 1, 2, 2)), convention=DING2025_PAPER), ValueError,
         "input_delay=0"),
        (lambda: simulate_conv(ConvNetwork([Neuron(DLIF(), dlif_factors=[1.0])], (1,)),
                               np.ones((2, 1, 1))), ValueError, "dlif_factors has 1 entries"),
    ],
)
def test_errors(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


def test_numpy_scalar_options_are_accepted_as_python_numbers():
    # eps, momentum, input_scale, stride and smooth_rho take any real (integer) NumPy scalar
    # (float32 ones were refused before they shared real_iv) and are stored as Python numbers
    bn = BatchNorm2d([0.0], [1.0], eps=np.float32(0.5), momentum=np.float32(0.25))
    assert (bn.eps, bn.momentum) == (0.5, 0.25) and type(bn.eps) is type(bn.momentum) is float
    nrn = Neuron(LIF(), input_scale=np.float32(0.5))
    assert nrn.input_scale == 0.5 and type(nrn.input_scale) is float
    conv = Conv2d(np.ones((2, 1, 3, 3)), stride=np.int64(1), padding=(np.int32(1), 0))
    assert conv.stride == (1, 1) and conv.padding == (1, 0) and type(conv.padding[0]) is int
    net = ConvNetwork([conv, Neuron()], input_shape=(np.int64(1), 4, 4))
    assert net.input_shape == (1, 4, 4) and type(net.input_shape[0]) is int
    x = np.ones((2, 1, 1, 4, 4))
    np.testing.assert_array_equal(simulate_conv(net, x, smooth_rho=np.float32(0.0)).output,
                                  simulate_conv(net, x).output)


def test_im2col_layout_matches_weight_matrix():
    rng = np.random.default_rng(8)
    layer = Conv2d(rng.standard_normal((2, 3, 2, 2)), stride=2, padding=1)
    x = rng.standard_normal((1, 3, 4, 4))
    cols = im2col(x, (2, 2), (2, 2), (1, 1), np.float64)
    z = (cols @ layer.matrix(np.float64).T).reshape(1, 3, 3, 2).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(z, scipy_conv(layer, x), rtol=RTOL_INDEPENDENT)


def test_im2col_scratch_buffer_is_reused_and_grown():
    from evsnn._scratch import scratch as _scratch

    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 5, 5))
    want = im2col(x, (3, 3), (1, 1), (1, 1), np.float64)
    got = im2col(x, (3, 3), (1, 1), (1, 1), np.float64, scratch=True)
    np.testing.assert_array_equal(got, want)
    assert np.shares_memory(_scratch("cols", (4, 3), np.float64), got)  # the work array
    first = _scratch("test-only", (6, 5), np.float64)  # a name nothing else uses
    assert np.shares_memory(_scratch("test-only", (4, 3), np.float64), first)  # reused
    bigger = _scratch("test-only", (31,), np.float64)  # too small: a new array
    assert bigger.shape == (31,) and not np.shares_memory(bigger, first)
    assert not np.shares_memory(_scratch("test-only", (3,), np.float32), bigger)  # per dtype


def test_auto_mode_gathers_sparse_spikes_only(monkeypatch):
    import evsnn.clock.conv as conv_module

    calls = []
    real = conv_module._conv_gather_kernel
    monkeypatch.setattr(conv_module, "_conv_gather_kernel",
                        lambda *a: (calls.append(a[0].shape), real(*a))[1])
    rng = np.random.default_rng(9)
    net = ConvNetwork([Conv2d(rng.standard_normal((2, 2, 3, 3)), padding=1)], (2, 10, 10))
    sparse = (rng.random((3, 2, 2, 10, 10)) < 0.05).astype(float)
    dense = (rng.random((3, 2, 2, 10, 10)) < 0.5).astype(float)
    frames = 3 * 2  # T·B; the kernel may be called on pieces of them (one per thread)
    simulate_conv(net, sparse)
    assert sum(s[0] for s in calls) == frames  # density 0.05 <= EVENT_DENSITY_MAX: events
    simulate_conv(net, dense)
    simulate_conv(net, sparse * 0.5)  # a current, however sparse: dense
    assert sum(s[0] for s in calls) == frames
    simulate_conv(net, dense, conv_mode="event")
    assert sum(s[0] for s in calls) == 2 * frames
    # the threshold itself: exactly EVENT_DENSITY_MAX nonzero -> events, one more -> dense
    n = int(np.floor(conv_module.EVENT_DENSITY_MAX * sparse.size))
    at = np.zeros(sparse.size)
    at[rng.choice(sparse.size, n + 1, replace=False)] = 1.0
    above = at.reshape(sparse.shape)
    at = above.copy()
    at.reshape(-1)[np.flatnonzero(at)[0]] = 0.0
    simulate_conv(net, at)
    assert sum(s[0] for s in calls) == 3 * frames
    simulate_conv(net, above)
    assert sum(s[0] for s in calls) == 3 * frames
