"""BPTT for convolutional / residual networks: kernels vs twins, the adjoint identity of
col2im, central finite differences of the smooth forward pass (σ(ρ(m − θ)) in place of the
spike), agreement with the dense ``bptt`` on flattened networks, errors."""

import dataclasses
import re

import numpy as np
import pytest
from conftest import (
    ATOL_TWIN, ATOL_TWIN_FLOAT32, RTOL_INDEPENDENT, RTOL_TWIN, RTOL_TWIN_FLOAT32,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from evsnn.clock import Dense, Network, simulate
from evsnn.clock.conv import (
    AvgPool2d, BatchNorm2d, Conv2d, ConvNetwork, Flatten, Linear, MaxPool2d, Neuron,
    basic_block, im2col, sew_block, simulate_conv,
)
from evsnn.conventions import DING2025_PAPER, get_convention
from evsnn.grad import Sigmoid, Triangle, backward
from evsnn.grad.conv import (
    _batchnorm_backward_kernel, _channels_last_kernel, _col2im_kernel,
    _pool_backward_kernel, backward_conv,
)
from evsnn.params import DLIF, LIF, Readout, TraceLIF
from reference import conv as ref
from reference.conv import pool_geometry
from reference.helpers import RHO, assert_finite_differences, example_count


# --------------------------------------------------------------------------- twins
@st.composite
def col_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    C, kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw, ph, pw = (draw(st.integers(1, 2)), draw(st.integers(1, 2)),
                      draw(st.integers(0, 1)), draw(st.integers(0, 1)))
    Hh, W = draw(st.integers(max(1, kh - 2 * ph), 6)), draw(st.integers(max(1, kw - 2 * pw), 6))
    Ho, Wo = (Hh + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    F = draw(st.integers(1, 3))
    dtype = np.dtype(draw(st.sampled_from([np.float64, np.float32])))
    gcols = rng.standard_normal((F, Ho, Wo, kh, kw, C)).astype(dtype)
    return gcols, (sh, sw, ph, pw), (F, C, Hh, W), dtype


@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 7),
       st.sampled_from([np.float64, np.float32]))
def test_channels_last_kernel_matches_twin(F, C, P, dtype):
    g = np.random.default_rng(F * 100 + C * 10 + P).standard_normal((F, C, P)).astype(dtype)
    a, b = np.full((F, P, C), np.nan, dtype), np.full((F, P, C), np.nan, dtype)
    _channels_last_kernel(g, a)
    ref._channels_last_kernel(g, b)
    np.testing.assert_array_equal(a, b)  # a copy: exact
    np.testing.assert_array_equal(a, np.moveaxis(g, 1, 2))


@given(st.integers(0, 2**32 - 1), st.sampled_from([np.float64, np.float32]))
def test_batchnorm_backward_kernel_matches_twin_and_numpy(seed, dtype):
    rng = np.random.default_rng(seed)
    F, C, P = rng.integers(1, 5), rng.integers(1, 5), rng.integers(1, 9)
    g, x = (rng.standard_normal((F, C, P)).astype(dtype) for _ in range(2))
    mean, alpha = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    invstd = rng.uniform(0.5, 2.0, C).astype(dtype)
    runs = []
    for kernel in (_batchnorm_backward_kernel, ref._batchnorm_backward_kernel):
        for cl in (False, True):
            outs = (np.full((F, P, C) if cl else (F, C, P), np.nan, dtype),
                    np.full((F, C), np.nan, dtype), np.full((F, C), np.nan, dtype))
            kernel(g, x, mean, invstd, alpha, cl, *outs)
            runs.append(outs)
    for k in (2, 3):
        for got, want in zip(runs[k - 2], runs[k]):
            assert got.dtype == dtype
            np.testing.assert_array_equal(got, want)  # same operations in the same order: exact
    np.testing.assert_array_equal(runs[0][0], g * alpha[:, None])
    np.testing.assert_array_equal(runs[1][0], np.moveaxis(g * alpha[:, None], 1, 2))
    np.testing.assert_array_equal(runs[1][1], runs[0][1])
    if dtype == np.float64:  # the sums in NumPy's (different) order
        xhat = (x - mean[:, None]) * invstd[:, None]
        np.testing.assert_allclose(runs[0][1].sum(axis=0), (g * xhat).sum(axis=(0, 2)),
                                   rtol=RTOL_TWIN, atol=ATOL_TWIN)
        np.testing.assert_allclose(runs[0][2].sum(axis=0), g.sum(axis=(0, 2)), rtol=RTOL_TWIN,
                                   atol=ATOL_TWIN)


@st.composite
def pool_grad_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    geom, shape, oshape, dtype = draw(pool_geometry())
    g = rng.standard_normal(oshape).astype(dtype)
    arg = (np.zeros((0, 0, 0, 0), np.int64) if draw(st.booleans())
           else rng.integers(0, geom[0] * geom[1], oshape))
    return g, arg, geom, shape, dtype


@given(pool_grad_cases())
def test_pool_backward_kernel_matches_twin_and_is_the_adjoint_of_pooling(case):
    g, arg, geom, shape, dtype = case
    a, b = np.full(shape, np.nan, dtype), np.full(shape, np.nan, dtype)
    _pool_backward_kernel(g, arg, *geom, a)
    ref._pool_backward_kernel(g, arg, *geom, b)
    np.testing.assert_array_equal(a, b)  # same additions in the same order: exact
    # <pool(x), g> = <x, pool_backward(g)>, pooling written out independently (float64)
    kh, kw, sh, sw, ph, pw = geom
    x = np.random.default_rng(1).standard_normal(shape)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Ho, Wo = g.shape[2:]
    y = np.zeros(g.shape)
    for oi in range(Ho):
        for oj in range(Wo):
            win = xp[:, :, oi * sh:oi * sh + kh, oj * sw:oj * sw + kw].reshape(shape[:2] + (-1,))
            y[:, :, oi, oj] = (win.mean(axis=2) if arg.shape[0] == 0
                               else np.take_along_axis(win, arg[:, :, oi, oj, None], 2)[..., 0])
    g64 = np.empty(shape)
    _pool_backward_kernel(g.astype(np.float64), arg, *geom, g64)
    lhs, rhs = y.ravel() @ g.astype(np.float64).ravel(), x.ravel() @ g64.ravel()
    assert abs(lhs - rhs) <= RTOL_INDEPENDENT * max(1.0, abs(lhs))


@pytest.mark.parametrize("k", [(2, 2), (3, 2), (1, 1)])
@pytest.mark.parametrize("avg", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pool_backward_kernel_tiled_windows_match_twin(k, avg, dtype):
    # stride = window, no padding, H and W multiples of it: the direct-write path
    rng = np.random.default_rng(7)
    (kh, kw), (Ho, Wo) = k, (3, 4)
    shape = (2, 3, Ho * kh, Wo * kw)
    g = rng.standard_normal((2, 3, Ho, Wo)).astype(dtype)
    g[0, 0, 0, 0] = -0.0  # 0 + (−0) is +0, as in the zero-then-add path
    arg = (np.zeros((0, 0, 0, 0), np.int8) if avg
           else rng.integers(0, kh * kw, (2, 3, Ho, Wo)).astype(np.int8))
    a, b = np.full(shape, np.nan, dtype), np.full(shape, np.nan, dtype)
    _pool_backward_kernel(g, arg, kh, kw, kh, kw, 0, 0, a)
    ref._pool_backward_kernel(g, arg, kh, kw, kh, kw, 0, 0, b)
    np.testing.assert_array_equal(a, b)
    assert not np.signbit(a).any() or np.signbit(b[np.signbit(a)]).all()


@settings(max_examples=example_count(20))
@given(col_cases())
def test_col2im_kernel_matches_twin_and_is_the_adjoint_of_im2col(case):
    gcols, (sh, sw, ph, pw), shape, dtype = case
    a, b = np.full(shape, np.nan, dtype), np.full(shape, np.nan, dtype)
    _col2im_kernel(gcols, sh, sw, ph, pw, a)
    ref._col2im_kernel(gcols, sh, sw, ph, pw, b)
    f64 = dtype == np.float64
    np.testing.assert_allclose(a, b, rtol=RTOL_TWIN if f64 else RTOL_TWIN_FLOAT32,
                               atol=ATOL_TWIN if f64 else ATOL_TWIN_FLOAT32)
    # <im2col(x), c> = <x, col2im(c)>  (both on [F, C, H, W])
    x = np.random.default_rng(0).standard_normal(shape)
    cols = im2col(x, gcols.shape[3:5], (sh, sw), (ph, pw), np.float64)
    g64 = np.empty(shape)
    _col2im_kernel(gcols.astype(np.float64), sh, sw, ph, pw, g64)
    lhs, rhs = cols.ravel() @ gcols.astype(np.float64).ravel(), x.ravel() @ g64.ravel()
    assert abs(lhs - rhs) <= RTOL_INDEPENDENT * max(1.0, abs(lhs))


# --------------------------------------------------------------------------- finite differences
def _replace(layers, parts, key, value):
    (_, idx), rest = parts[0], parts[1:]
    layers = list(layers)
    layer = layers[idx]
    if rest:
        sub = rest[0][0]
        if sub == "neuron":
            layer = dataclasses.replace(layer, neuron=dataclasses.replace(layer.neuron,
                                                                          **{key: value}))
        else:
            layer = dataclasses.replace(layer, **{sub: tuple(_replace(getattr(layer, sub), rest,
                                                                       key, value))})
    else:
        layer = dataclasses.replace(layer, **{key: value})
    layers[idx] = layer
    return layers


def _parse(path):
    parts = []
    for name, idx in re.findall(r"(\w+)(?:\[(\d+)\])?", path):
        parts.append((name, int(idx) if idx else None))
    return parts


def _with_param(net, path, key, value):
    parts = _parse(path)
    if parts[-1][0] == "neuron":  # "layers[i].neuron": the post-sum neuron of a block
        parts = parts[:-1] + [("neuron", None)]
    return ConvNetwork(_replace(net.layers, parts, key, value), net.input_shape)


def _get_param(net, path, key):
    obj = None
    for name, idx in _parse(path):
        obj = getattr(net if obj is None else obj, name)
        if idx is not None:
            obj = obj[idx]
    return getattr(obj, key)


def _check_fd(net, x, convention="DEFAULT", n_coords=3, seed=0):
    rng = np.random.default_rng(seed)
    sim = dict(convention=convention, smooth_rho=RHO)
    res = simulate_conv(net, x, record=True, **sim)
    g_out = rng.standard_normal(res.output.shape)
    grads = backward_conv(net, x, res, g_out, surrogate=Sigmoid(RHO, "code"))

    def loss(n, xx):
        return float((simulate_conv(n, xx, **sim).output * g_out).sum())

    def check(an, f, value):
        assert_finite_differences(an, f, value, rng, n_coords)

    check(grads.input, lambda v: loss(net, v), x)
    checked = 0
    for path, pg in grads.params.items():
        for key, an in pg.items():
            value = np.asarray(_get_param(net, path, key), dtype=float)
            check(an, lambda v, p=path, k=key: loss(_with_param(net, p, k, v), x), value)
            checked += 1
    assert float(np.abs(grads.input).max()) > 1e-6  # not vacuous
    return checked


def _rng_w(rng, *shape, scale=1.0):
    return rng.standard_normal(shape) * scale / np.sqrt(np.prod(shape[1:]))


def test_fd_vgg_style_with_pools_bn_stride_groups():
    rng = np.random.default_rng(10)
    bn = BatchNorm2d(rng.standard_normal(4) * 0.1, rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 4),
                     rng.standard_normal(4) * 0.3)
    net = ConvNetwork([
        Conv2d(_rng_w(rng, 4, 2, 3, 3, scale=3), padding=1, bias=rng.standard_normal(4) * 0.1),
        bn, Neuron(LIF(lam=0.8, theta=0.6, reset="hard", v_rest=0.1)), MaxPool2d(2),
        Conv2d(_rng_w(rng, 4, 2, 3, 3, scale=4), stride=2, padding=1, groups=2),
        Neuron(LIF(lam=0.9, theta=0.5, reset="soft")), AvgPool2d(2, 1),
        Flatten(), Linear(_rng_w(rng, 3, 4, scale=3), bias=rng.standard_normal(3) * 0.1),
        Neuron(TraceLIF(tau_mem_ms=4.0, tau_syn_ms=3.0, theta=0.4, output="trace")),
    ], input_shape=(2, 6, 6))
    x = rng.random((5, 2, 2, 6, 6))
    assert _check_fd(net, x, n_coords=2) == 7  # conv (w, b), BN (γ, β), conv (w), linear (w, b)


@pytest.mark.parametrize("connection", ["standard", "ADD", "AND", "IAND"])
def test_fd_residual_blocks(connection):
    rng = np.random.default_rng(11)
    nrn = Neuron(LIF(lam=0.85, theta=0.5, reset="soft"))
    c1, c2 = Conv2d(_rng_w(rng, 3, 2, 3, 3, scale=3), padding=1), Conv2d(
        _rng_w(rng, 3, 3, 3, 3, scale=3), padding=1)
    down = Conv2d(_rng_w(rng, 3, 2, 1, 1, scale=2))
    bn = BatchNorm2d(np.zeros(3), np.ones(3), rng.uniform(0.5, 1.5, 3), rng.standard_normal(3) * .1)
    if connection == "standard":
        block = basic_block(c1, c2, nrn, bn2=bn, downsample=(down,))
    else:
        block = sew_block(c1, c2, nrn, bn2=bn, downsample=(down, nrn), connection=connection)
    net = ConvNetwork([block, Flatten(), Linear(_rng_w(rng, 2, 48, scale=2)), Neuron(Readout(0.9))],
                      input_shape=(2, 4, 4))
    x = rng.random((4, 2, 2, 4, 4))
    assert _check_fd(net, x, n_coords=1) == 6  # 3 conv, BN (γ, β), linear


def test_fd_delay_convention_dlif_and_hard_reset():
    rng = np.random.default_rng(12)
    net = ConvNetwork([
        Conv2d(_rng_w(rng, 3, 1, 3, 3, scale=3)),
        Neuron(DLIF(lam=0.8, theta=0.5), dlif_factors=rng.uniform(0.6, 1.2, 6)),
        Flatten(), Linear(_rng_w(rng, 3, 6, scale=3)),
        Neuron(LIF(lam=0.7, theta=0.4, reset="hard", v_rest=-0.1), input_scale=0.5),
    ], input_shape=(1, 4, 3))
    x = rng.random((6, 2, 1, 4, 3))
    for conv in (DING2025_PAPER, get_convention("STABLE_CODE")):  # delay; DLIF on the input
        assert _check_fd(net, x, convention=conv, n_coords=2) == 3


def test_spike_input_takes_the_event_path_and_gets_the_same_gradient():
    rng = np.random.default_rng(13)
    net = ConvNetwork([Conv2d(_rng_w(rng, 3, 2, 3, 3, scale=4), padding=1),
                       Neuron(LIF(0.9, 0.5)), Conv2d(_rng_w(rng, 2, 3, 3, 3, scale=4)),
                       Neuron(LIF(0.9, 0.5))], input_shape=(2, 5, 5))
    x = (rng.random((6, 2, 2, 5, 5)) < 0.4).astype(float)
    g = rng.standard_normal((6, 2, 2, 3, 3))
    out = []
    for mode in ("event", "dense"):
        res = simulate_conv(net, x, record=True, conv_mode=mode)
        out.append(backward_conv(net, x, res, g, surrogate=Triangle(0.8)))
    np.testing.assert_allclose(out[0].input, out[1].input, rtol=RTOL_INDEPENDENT, atol=1e-12)
    assert np.abs(out[0].params["layers[2]"]["weight"]).max() > 0


def test_flattened_network_gradient_equals_dense_bptt():
    rng = np.random.default_rng(14)
    w1, w2 = _rng_w(rng, 10, 18, scale=3), _rng_w(rng, 4, 10, scale=3)
    nrn = [LIF(lam=0.9, theta=0.5, reset="soft"), TraceLIF(tau_mem_ms=3.0, theta=0.4)]
    x = (rng.random((7, 3, 2, 3, 3)) < 0.5).astype(float)
    g = rng.standard_normal((7, 3, 4))
    for conv, sur in (("DEFAULT", Sigmoid(5.0, "code")), (DING2025_PAPER, Triangle(1.0))):
        net = ConvNetwork([Flatten(), Linear(w1), Neuron(nrn[0]), Linear(w2), Neuron(nrn[1])],
                          input_shape=(2, 3, 3))
        res = simulate_conv(net, x, convention=conv, record=True)
        ours = backward_conv(net, x, res, g, surrogate=sur)
        dnet = Network([Dense(w1, nrn[0]), Dense(w2, nrn[1])])
        dres = simulate(dnet, x.reshape(7, 3, 18), convention=conv, record=True)
        np.testing.assert_array_equal(res.output, dres.output)
        want = backward(dnet, x.reshape(7, 3, 18), dres, g, surrogate=sur)
        np.testing.assert_allclose(ours.input.reshape(7, 3, 18), want.input,
                                   rtol=RTOL_INDEPENDENT, atol=1e-12)
        for path, w in (("layers[1]", want.weights[0]), ("layers[3]", want.weights[1])):
            np.testing.assert_allclose(ours.params[path]["weight"], w, rtol=RTOL_INDEPENDENT,
                                       atol=1e-12)
        assert np.abs(want.input).max() > 0


def test_gradient_of_a_bare_linear_readout_equals_a_readout_neuron_under_delay():
    # input_delay=1: a Linear after the last neuron layer gets its input a step late, forward
    # and backward, exactly as Linear + Neuron(Readout(lam=0)) (whose output is its current)
    rng = np.random.default_rng(17)
    w1, w2 = _rng_w(rng, 6, 8, scale=3), _rng_w(rng, 3, 6, scale=3)
    hidden = [Flatten(), Linear(w1), Neuron(LIF(lam=0.8, theta=0.5))]
    x = (rng.random((6, 2, 2, 2, 2)) < 0.5).astype(float)
    g = rng.standard_normal((6, 2, 3))
    out = []
    for tail in ([Linear(w2)], [Linear(w2), Neuron(Readout(lam=0.0))]):
        net = ConvNetwork(hidden + tail, input_shape=(2, 2, 2))
        res = simulate_conv(net, x, convention=DING2025_PAPER, record=True)
        out.append((res.output, backward_conv(net, x, res, g, surrogate=Triangle(1.0))))
    (y_bare, g_bare), (y_ro, g_ro) = out
    np.testing.assert_array_equal(y_bare, y_ro)
    np.testing.assert_allclose(g_bare.input, g_ro.input, rtol=RTOL_INDEPENDENT, atol=1e-12)
    for path in ("layers[1]", "layers[3]"):
        np.testing.assert_allclose(g_bare.params[path]["weight"], g_ro.params[path]["weight"],
                                   rtol=RTOL_INDEPENDENT, atol=1e-12)
    assert np.abs(g_bare.input).max() > 0 and np.abs(y_bare).max() > 0


def test_input_gradient_is_its_own_array_when_the_network_starts_with_a_neuron():
    # gain 1 (default convention, LIF): dL/dI = dL/dm, computed once; the result must not
    # hand the same memory out twice (nor g_output, which a Flatten-only path passes down)
    rng = np.random.default_rng(16)
    net = ConvNetwork([Neuron(LIF(0.9, 0.5)), Flatten(), Linear(_rng_w(rng, 3, 8, scale=4)),
                       Neuron(LIF(0.9, 0.5))], input_shape=(2, 2, 2))
    x = rng.random((5, 2, 2, 2, 2)) * 2
    res = simulate_conv(net, x, record=True)
    assert np.all(res.tape["layers[0]"][2] == 1)  # the gain-1 case this test is about
    out = backward_conv(net, x, res, rng.standard_normal(res.output.shape),
                        surrogate=Sigmoid(4.0, "code"))
    np.testing.assert_array_equal(out.input, out.membrane[0])  # the values: dL/dI = dL/dm
    assert np.abs(out.input).max() > 0
    assert not np.shares_memory(out.input, out.membrane[0])
    before = out.membrane[0].copy()
    out.input[...] = 0
    np.testing.assert_array_equal(out.membrane[0], before)


def test_detach_reset_changes_only_the_reset_path():
    rng = np.random.default_rng(15)
    net = ConvNetwork([Flatten(), Linear(_rng_w(rng, 6, 8, scale=4)), Neuron(LIF(1.0, 0.5))],
                      input_shape=(8,))
    x = (rng.random((8, 2, 8)) < 0.5).astype(float)
    res = simulate_conv(net, x, record=True)
    g = rng.standard_normal(res.output.shape)
    a = backward_conv(net, x, res, g, detach_reset=False).input
    b = backward_conv(net, x, res, g, detach_reset=True).input
    assert not np.allclose(a, b)
    # at the last step nothing comes from the future: equal there
    np.testing.assert_array_equal(a[-1], b[-1])


def test_backward_errors():
    net = ConvNetwork([Conv2d(np.ones((1, 1, 1, 1))), Neuron()], (1, 2, 2))
    x = np.ones((2, 1, 1, 2, 2))
    res = simulate_conv(net, x, record=True)
    g = np.ones_like(res.output)
    with pytest.raises(TypeError, match="ConvNetwork"):
        backward_conv(Network.mlp([2, 2]), x, res, g)
    with pytest.raises(ValueError, match="record=True"):
        backward_conv(net, x, simulate_conv(net, x), g)
    dense = simulate(Network.mlp([4, 1]), np.ones((2, 1, 4)), record=True)
    with pytest.raises(
        TypeError,
        match=r"result must be the ConvSimulationResult of simulate_conv\(network, inputs, "
        r"record=True\), got SimulationResult; pass what simulate_conv\(..., record=True\) "
        r"returns \(for a Network's SimulationResult use backward\)",
    ):
        backward_conv(net, x, dense, g)
    with pytest.raises(TypeError, match="surrogate must be"):
        backward_conv(net, x, res, g, surrogate="sigmoid")
    with pytest.raises(ValueError, match="inputs have shape"):
        backward_conv(net, x[:1], res, g)
    with pytest.raises(ValueError, match="g_output has shape"):
        backward_conv(net, x, res, g[:1])
    other = ConvNetwork([Neuron(), Conv2d(np.ones((1, 1, 1, 1))), Neuron()], (1, 2, 2))
    with pytest.raises(ValueError, match="different network"):
        backward_conv(other, x, res, g)
    with pytest.raises(ValueError, match="method='adjoint' is not a gradient method"):
        backward_conv(net, x, res, g, method="adjoint")
    # the dense rules' own refusals reach the conv caller unchanged
    with pytest.raises(ValueError, match="method='tempbp' needs trace-LIF layers"):
        backward_conv(net, x, res, g, method="tempbp")
    with pytest.raises(ValueError, match="HART pre-calculation needs dL/ds"):
        backward_conv(net, x, res, np.arange(g.size, dtype=float).reshape(g.shape),
                      method="hart", precalculate=True)


@pytest.mark.parametrize("first", ["conv", "pool"])
def test_a_second_backward_call_leaves_the_first_results_alone(first):
    # convolutions, pooling and batch norm write dL/dx into per-layer work arrays: nothing the
    # caller receives may be one of them
    rng = np.random.default_rng(5)
    head = ([Conv2d(rng.standard_normal((4, 2, 3, 3)), padding=1)] if first == "conv"
            else [MaxPool2d(2), Conv2d(rng.standard_normal((4, 2, 3, 3)), padding=1)])
    layers = head + [
        BatchNorm2d(rng.uniform(0.5, 1.5, 4), rng.uniform(0.5, 1.5, 4), rng.standard_normal(4),
                    rng.standard_normal(4)),
        Neuron(LIF(lam=0.5, theta=0.5)), MaxPool2d(2),
        Conv2d(rng.standard_normal((3, 4, 3, 3)), padding=1), Neuron(LIF(lam=0.5, theta=0.5)),
    ]
    shape = (2, 8, 8) if first == "conv" else (2, 16, 16)
    net = ConvNetwork(layers, shape)
    x = rng.random((3, 2) + shape)
    res = simulate_conv(net, x, record=True)
    g1 = backward_conv(net, x, res, rng.standard_normal(res.output.shape))
    kept = (g1.input.copy(), [m.copy() for m in g1.membrane],
            {p: {k: v.copy() for k, v in d.items()} for p, d in g1.params.items()})
    g2 = backward_conv(net, x, res, rng.standard_normal(res.output.shape))
    assert not np.array_equal(g2.input, kept[0])  # the second call computed something else
    np.testing.assert_array_equal(g1.input, kept[0])
    for m, m0 in zip(g1.membrane, kept[1]):
        np.testing.assert_array_equal(m, m0)
    for p, d in kept[2].items():
        for k, v in d.items():
            np.testing.assert_array_equal(g1.params[p][k], v)
