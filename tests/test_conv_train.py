"""Convolutional networks in the training and attack entry points: loss_and_grad (against a
direct simulate_conv + backward_conv call, every method; finite differences on a smooth
network; fused encoding on channels), fit_snn / snn_accuracy (one SGD step equals one gradient
step in training mode, running statistics, learning a separable image problem), the attack
source (per-sample gradients, FGSM / PGD on a conv SNN), errors."""

import numpy as np
import pytest
from conftest import RTOL_FINITE_DIFF, RTOL_HAND

import evsnn.train as train_mod
from evsnn.attacks import SNNSource, fgsm, pgd
from evsnn.attacks.losses import ce_loss
from evsnn.clock import Network
from evsnn.clock.conv import (
    AvgPool2d, BatchNorm2d, Conv2d, ConvNetwork, Dropout, Flatten, Linear, Neuron, basic_block,
    simulate_conv, update_running_stats,
)
from evsnn.decoders import decode
from evsnn.encoders import encode
from evsnn.grad import METHODS, cross_entropy, decoder_vjp, input_gradient, loss_and_grad
from evsnn.grad.conv import backward_conv
from evsnn.params import DLIF, LIF, Readout, TraceLIF
from evsnn.train import SGD, AdamW, fit_snn, rebuild_conv, snn_accuracy

H = 1e-6  # central-difference step (see RTOL_FINITE_DIFF in conftest)
T = 4


def _w(rng, *shape, scale=1.0):
    return rng.standard_normal(shape) * scale / np.sqrt(np.prod(shape[1:]))


def small_net(seed=0, channels=2, bias=False, trace=False):
    """2×8×8 → conv 3×3 (4 maps) → LIF → avgpool 2 → flatten → linear 2 → LIF (TraceLIF
    emitting its trace with ``trace``, for tempbp)."""
    rng = np.random.default_rng(seed)

    def nrn(theta):
        return Neuron(TraceLIF(theta=theta) if trace else LIF(lam=0.9, theta=theta))

    return ConvNetwork([
        Conv2d(_w(rng, 4, channels, 3, 3, scale=3), padding=1,
               bias=rng.standard_normal(4) * 0.1 if bias else None),
        nrn(0.5), AvgPool2d(2), Flatten(),
        Linear(_w(rng, 2, 64, scale=2), bias=np.full(2, 0.2) if bias else None), nrn(0.5),
    ], input_shape=(channels, 8, 8))


def images(n, seed, signal=0.2, noise=0.8):
    """Separable 2-class images [n, 2, 8, 8]: uniform noise in [0, noise], plus ``signal`` on
    the left half of channel 0 (class 0) or on the right half of channel 1 (class 1), clipped
    to 1."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.random((n, 2, 8, 8)) * noise
    x[y == 0, 0, :, :4] += signal
    x[y == 1, 1, :, 4:] += signal
    return np.minimum(x, 1.0), y


def _params(net):
    """``{(path, key): array}`` of every trainable array (fit_snn's list)."""
    return {(p, k): a for p, k, a in train_mod._conv_params(net.layers)}


def _direct(net, x, y, encoder, method, decoder="rate", **kw):
    """encode → simulate_conv → decode → cross-entropy → backward_conv, written out."""
    seq = encode(x, encoder, T)
    res = simulate_conv(net, seq, record=True)
    scores = decode(res.output, decoder)
    value, g_scores = cross_entropy(scores, y)
    g = backward_conv(net, seq, res, decoder_vjp(decoder, g_scores, res.output), method=method,
                      **kw)
    return value, scores, seq, g


# --------------------------------------------------------------------------- loss_and_grad
@pytest.mark.parametrize("method", METHODS)
def test_loss_and_grad_equals_simulate_conv_plus_backward_conv(method):
    net = small_net(2, bias=True, trace=method == "tempbp")  # tempbp needs trace-LIF layers
    x, y = images(3, 2)
    r = loss_and_grad(net, x, y, T=T, encoder="current", method=method)
    value, scores, seq, g = _direct(net, x, y, "current", method)
    assert r.loss == value and r.grads.method == g.method
    np.testing.assert_array_equal(r.scores, scores)
    np.testing.assert_array_equal(r.sequence, seq)
    np.testing.assert_array_equal(r.grads.input, g.input)
    assert r.grads.params.keys() == g.params.keys() == {"layers[0]", "layers[4]"}
    for path, pg in g.params.items():
        assert r.grads.params[path].keys() == pg.keys() == {"weight", "bias"}
        for key in pg:
            np.testing.assert_array_equal(r.grads.params[path][key], pg[key])
    # the image gradient is the current encoder's rule (sum over steps), shape [B, C, H, W]
    assert r.image.shape == x.shape
    np.testing.assert_array_equal(r.image, g.input.sum(axis=0))
    np.testing.assert_array_equal(r.correct, scores.argmax(axis=1) == y)
    assert np.abs(r.image).max() > 0.05  # not vacuous (measured: 0.09 to 1.07 by method)
    # the decoders read the flat [T, B, n_out] output unchanged: rate = spike count
    np.testing.assert_array_equal(r.scores, r.simulation.output.sum(axis=0))


def test_options_reach_backward_conv():
    net = small_net(3)
    x, y = images(2, 4, signal=0.6)
    a = loss_and_grad(net, x, y, T=T, encoder="current", detach_reset=True)
    b = loss_and_grad(net, x, y, T=T, encoder="current", detach_reset=False)
    assert not np.array_equal(a.grads.input, b.grads.input)
    np.testing.assert_array_equal(
        a.grads.input, _direct(net, x, y, "current", "bptt", detach_reset=True)[3].input)


def smooth_net(seed=5):
    """No spikes anywhere (Readout neurons, inference BN): the loss is a smooth function of the
    image and of every parameter, so central differences apply directly."""
    rng = np.random.default_rng(seed)
    return ConvNetwork([
        Conv2d(_w(rng, 3, 2, 3, 3, scale=2), padding=1, bias=rng.standard_normal(3) * 0.1),
        BatchNorm2d(rng.standard_normal(3) * 0.1, rng.uniform(0.5, 2, 3),
                    rng.uniform(0.5, 1.5, 3), rng.standard_normal(3) * 0.1),
        Neuron(Readout(0.8)), AvgPool2d(2), Flatten(),
        Linear(_w(rng, 3, 48, scale=3), bias=rng.standard_normal(3) * 0.1),
        Neuron(Readout(0.9)),
    ], input_shape=(2, 8, 8))


def test_image_and_parameter_gradients_match_central_differences_on_a_smooth_network():
    net = smooth_net()
    x, _ = images(3, 6)
    y = np.array([0, 2, 1])
    kw = dict(T=T, encoder="current", decoder="membrane")
    r = loss_and_grad(net, x, y, **kw)
    rng = np.random.default_rng(7)

    def check(an, f, value):
        d = rng.standard_normal(value.shape)
        fd = (f(value + H * d) - f(value - H * d)) / (2 * H)
        # a directional derivative's natural scale is |grad| |d| (Cauchy-Schwarz)
        assert abs(fd - float((an * d).sum())) <= (
            RTOL_FINITE_DIFF * np.linalg.norm(an) * np.linalg.norm(d)), (fd, (an * d).sum())

    check(r.image, lambda v: loss_and_grad(net, v, y, **kw).loss, x)
    params = _params(net)
    assert set(params) == {(p, k) for p, pg in r.grads.params.items() for k in pg}
    assert len(params) == 6  # conv (w, b), BN (γ, β), linear (w, b)
    for (path, key), value in params.items():
        check(r.grads.params[path][key],
              lambda v, p=path, k=key: loss_and_grad(rebuild_conv(net, {p: {k: v}}), x, y,
                                                     **kw).loss,
              np.array(value))
    assert np.abs(r.image).max() > 1e-3


def test_fused_encoder_on_channels_splits_the_gradient():
    net = small_net(8, channels=4)  # K·C = 2·2 channels
    x, y = images(3, 9, signal=0.5)
    r = loss_and_grad(net, x, y, T=T, encoder="fused:current+ttfs")
    cur, tt = encode(x, "current", T), encode(x, "ttfs", T)
    np.testing.assert_array_equal(r.sequence, np.concatenate([cur, tt], axis=2))
    g = r.grads.input
    want = g[:, :, :2].sum(axis=0) + (g[:, :, 2:] * (tt != 0)).sum(axis=0)  # the two rules
    np.testing.assert_array_equal(r.image, want)
    np.testing.assert_array_equal(r.image, input_gradient("fused:current+ttfs", g, r.sequence))
    assert np.abs((g[:, :, 2:] * (tt != 0)).sum(axis=0)).max() > 0  # the TTFS half contributes


def test_fused_encoder_needs_a_channel_count_it_divides():
    # 3 input channels cannot hold 2 encodings of one image: one error naming input_shape[0]
    net = ConvNetwork([Conv2d(np.ones((1, 3, 1, 1))), Neuron(), Flatten()], (3, 2, 2))
    with pytest.raises(ValueError, match=r"^encoder='fused:current\+poisson' concatenates 2 "
                                         r"encodings of each image along the channel axis, so "
                                         r"the network's input_shape\[0\] must be a multiple of 2, "
                                         r"got input_shape\[0\]=3; build the network with "
                                         r"input_shape\[0\] = 2 × the image's channels$"):
        fit_snn(net, np.zeros((2, 3, 2, 2)), np.zeros(2, dtype=int), T=2, rng=0,
                encoder="fused:current+poisson")


def test_encoded_sequence_input_and_train_mode():
    net = small_net(10)
    x, y = images(2, 11)
    seq = encode(x, "poisson", T, rng=0)
    r = loss_and_grad(net, seq, y)  # encoder=None: the sequence itself
    assert r.image is None
    np.testing.assert_array_equal(r.grads.input, _direct_seq(net, seq, y).input)
    # train mode: batch-statistics BN; dropout masks drawn from rng (same rng, same masks)
    tnet = ConvNetwork(net.layers[:1] + (BatchNorm2d(np.zeros(4), np.ones(4)),)
                       + net.layers[1:3] + (Dropout(0.3),) + net.layers[3:], net.input_shape)
    a = loss_and_grad(tnet, x, y, T=T, encoder="current", train=True, rng=1)
    b = loss_and_grad(tnet, x, y, T=T, encoder="current", train=True, rng=1)
    c = loss_and_grad(tnet, x, y, T=T, encoder="current")
    np.testing.assert_array_equal(a.grads.input, b.grads.input)
    assert a.simulation.batch_stats and c.simulation.batch_stats is None
    assert not np.array_equal(a.simulation.layers[0].current, c.simulation.layers[0].current)


def _direct_seq(net, seq, y):
    res = simulate_conv(net, seq, record=True)
    scores = decode(res.output, "rate")
    _, g_scores = cross_entropy(scores, y)
    return backward_conv(net, seq, res, decoder_vjp("rate", g_scores, res.output))


# --------------------------------------------------------------------------- training
def residual_net(seed=12):
    """A basic block with BN (paths layers[1].body[k]), DLIF neurons (layers[1].neuron)."""
    rng = np.random.default_rng(seed)
    nrn = Neuron(DLIF(lam=0.8, theta=0.5), dlif_factors=rng.uniform(0.8, 1.2, T))
    block = basic_block(Conv2d(_w(rng, 3, 3, 3, 3, scale=3), padding=1),
                        Conv2d(_w(rng, 3, 3, 3, 3, scale=3), padding=1), nrn,
                        bn1=BatchNorm2d(np.zeros(3), np.ones(3), momentum=0.5),
                        bn2=BatchNorm2d(np.zeros(3), np.ones(3)))
    return ConvNetwork([Conv2d(_w(rng, 3, 2, 3, 3, scale=3), padding=1), block, AvgPool2d(4),
                        Flatten(), Linear(_w(rng, 2, 12, scale=3)), Neuron(Readout(0.9))],
                       input_shape=(2, 8, 8))


def test_rebuild_conv_replaces_nested_parameters_only():
    net = residual_net()
    new = {"layers[1].body[1]": {"weight": np.full(3, 2.0), "bias": np.full(3, -1.0)},
           "layers[1].neuron": {"dlif_factors": np.ones(T)},
           "layers[4]": {"weight": np.zeros((2, 12))}}
    out = rebuild_conv(net, new)
    blk, old = out.layers[1], net.layers[1]
    np.testing.assert_array_equal(blk.body[1].weight, np.full(3, 2.0))
    np.testing.assert_array_equal(blk.body[1].bias, np.full(3, -1.0))
    np.testing.assert_array_equal(blk.body[1].running_var, old.body[1].running_var)
    assert blk.body[1].momentum == 0.5
    np.testing.assert_array_equal(blk.neuron.dlif_factors, np.ones(T))
    np.testing.assert_array_equal(blk.body[2].dlif_factors, old.body[2].dlif_factors)
    np.testing.assert_array_equal(out.layers[4].weight, np.zeros((2, 12)))
    np.testing.assert_array_equal(out.layers[0].weight, net.layers[0].weight)
    assert out.input_shape == net.input_shape and net.layers[4].weight.any()  # input untouched
    with pytest.raises(ValueError, match=r"'layers\[2\]' has no trainable parameter"):
        rebuild_conv(net, {"layers[2]": {"weight": np.ones(1)}})
    with pytest.raises(TypeError, match="ConvNetwork"):
        rebuild_conv(Network.mlp([2, 2]), {})
    # an array in place of {name: array} was Python's "unhashable type: 'numpy.ndarray'"
    with pytest.raises(TypeError, match=r"^new\['layers\[4\]'\] must be a dict \{name: array\} "
                                        r"such as \{'weight': W\}, got ndarray; pass "
                                        r"\{'layers\[4\]': \{'weight': W\}\}"):
        rebuild_conv(net, {"layers[4]": np.zeros((2, 12))})
    with pytest.raises(TypeError, match=r"^new must be a dict \{layer path: \{name: array\}\} "
                                        r"such as \{'layers\[0\]': \{'weight': W\}\}, got list"):
        rebuild_conv(net, [("layers[4]", {"weight": np.zeros((2, 12))})])


def test_fit_snn_one_sgd_step_is_one_train_mode_gradient_step():
    net = residual_net()
    x, y = images(6, 13, signal=0.5)
    r = fit_snn(net, x, y, T=T, rng=0, decoder="membrane", epochs=1, batch_size=6,
                optimizer=SGD(0.3))
    gen = np.random.default_rng(0)
    order = gen.permutation(6)  # fit_snn's shuffle, then the same generator for the forward
    g = loss_and_grad(net, x[order], y[order], T=T, encoder="current", decoder="membrane",
                      train=True, rng=gen)
    assert r.loss[0] == g.loss
    params = _params(net)
    # conv, block (conv1, BN1 γ β, DLIF body[2], conv2, BN2 γ β, DLIF .neuron), linear
    assert len(params) == 10
    assert set(params) == {(p, k) for p, pg in g.grads.params.items() for k in pg}
    new = {}
    for (path, key), value in params.items():
        new.setdefault(path, {})[key] = value - 0.3 * g.grads.params[path][key]
    want = rebuild_conv(update_running_stats(net, g.simulation), new)
    got = _params(r.model)
    assert got.keys() == params.keys()
    for pk, value in _params(want).items():
        np.testing.assert_array_equal(got[pk], value)
        assert not np.array_equal(value, params[pk])  # every parameter moved
    for k in (1, 4):  # the running statistics moved (momentum 0.5 and 0.1), as PyTorch's rule
        bn, bn_want = r.model.layers[1].body[k], want.layers[1].body[k]
        assert not np.array_equal(bn.running_mean, np.zeros(3))
        np.testing.assert_array_equal(bn.running_mean, bn_want.running_mean)
        np.testing.assert_array_equal(bn.running_var, bn_want.running_var)


def test_fit_snn_learns_a_separable_image_problem_and_accuracy_matches_argmax():
    g = np.random.default_rng(0)
    net = ConvNetwork([
        Conv2d(g.standard_normal((4, 2, 3, 3)) * 0.3, padding=1),
        BatchNorm2d(np.zeros(4), np.ones(4)), Neuron(LIF(lam=0.9, theta=0.5)), AvgPool2d(2),
        Dropout(0.2), Flatten(), Linear(g.standard_normal((2, 64)) * 0.1), Neuron(Readout(0.9)),
    ], input_shape=(2, 8, 8))
    x, y = images(128, 0)
    xt, yt = images(64, 1)
    kw = dict(T=T, decoder="membrane")
    before = snn_accuracy(net, xt, yt, **kw)
    r = fit_snn(net, x, y, rng=0, epochs=3, batch_size=16, optimizer=AdamW(0.05), x_test=xt,
                y_test=yt, **kw)
    # measured 2026-11-30: 0.42 before, 0.95 after (64 test images; chance 0.5)
    assert before < 0.6
    assert r.test_accuracy >= 0.85
    assert r.loss[-1] < r.loss[0]
    # snn_accuracy is the inference-mode argmax (running BN statistics, no dropout), batched
    scores = decode(simulate_conv(r.model, encode(xt, "current", T)).output, "membrane")
    assert r.test_accuracy == np.mean(scores.argmax(axis=1) == yt)
    assert snn_accuracy(r.model, xt, yt, batch_size=5, **kw) == r.test_accuracy
    assert not np.array_equal(r.model.layers[1].running_mean, np.zeros(4))


# --------------------------------------------------------------------------- attacks
def test_snn_source_on_conv_net_gives_per_sample_gradients_in_the_given_layout():
    net = small_net(14, channels=4)
    x, y = images(3, 15, signal=0.5)
    src = SNNSource(net, T=T, encoder="fused:current+ttfs")
    out4 = src(x, y)
    flat = src(x.reshape(3, -1), y)
    assert out4.grad.shape == x.shape and flat.grad.shape == (3, 128)
    np.testing.assert_array_equal(flat.grad, out4.grad.reshape(3, -1))
    r = loss_and_grad(net, x, y, T=T, encoder="fused:current+ttfs")
    np.testing.assert_array_equal(out4.scores, r.scores)
    np.testing.assert_array_equal(out4.loss, ce_loss(r.scores, y)[0])
    # per-sample gradient: backward_conv of the per-sample cross-entropy (upstream p − onehot,
    # not divided by B), then the fused rule — written out here
    res = simulate_conv(net, r.sequence, record=True)
    _, g_scores = ce_loss(decode(res.output, "rate"), y)
    g_seq = backward_conv(net, r.sequence, res, decoder_vjp("rate", g_scores, res.output)).input
    np.testing.assert_array_equal(out4.grad, input_gradient("fused:current+ttfs", g_seq,
                                                            r.sequence))
    # ... which is B × loss_and_grad's batch-mean image gradient up to the 1/B rounding
    assert np.abs(out4.grad - 3 * r.image).max() <= RTOL_HAND * np.abs(out4.grad).max()
    full = SNNSource(net, T=T, encoder="fused:current+ttfs", input_only=False)(x, y)
    np.testing.assert_array_equal(full.grad, out4.grad)
    np.testing.assert_array_equal(src.predict(x), r.scores)
    np.testing.assert_array_equal(src.sequence_loss_grad(r.sequence, y).grad, g_seq)
    assert np.abs(g_seq).max() > 0


def test_pgd_and_fgsm_on_a_conv_snn_raise_the_loss_and_lower_accuracy():
    net = smooth_net(16)  # membrane decoding of a Readout: a loss the gradient can climb
    net = ConvNetwork(net.layers[:2] + (Neuron(LIF(lam=0.9, theta=0.3)),) + net.layers[3:],
                      net.input_shape)
    rng = np.random.default_rng(17)
    x = rng.random((8, 2, 8, 8))
    src = SNNSource(net, T=T, encoder="current", decoder="membrane")
    y = src.predict(x.reshape(8, -1)).argmax(axis=1)  # clean accuracy 1 by construction
    clean = src(x.reshape(8, -1), y)
    a = pgd(src, x.reshape(8, -1), y, eps=0.1, steps=10, rng=0)
    f = fgsm(src, x.reshape(8, -1), y, eps=0.1)
    # measured 2026-11-30: mean CE clean 0.31, after FGSM 2.26, after PGD 2.77; both attacks
    # flip all 8 predictions
    for res in (a, f):
        adv = src(res.x_adv, y)
        assert adv.loss.mean() > clean.loss.mean()
        assert np.mean(adv.scores.argmax(axis=1) == y) < 1.0
        assert np.abs(res.x_adv - x.reshape(8, -1)).max() <= 0.1 + 1e-12
    assert a.success.mean() >= f.success.mean() and a.success.mean() > 0.5


# --------------------------------------------------------------------------- errors
def test_errors():
    net = small_net(0)
    x, y = images(2, 0)
    with pytest.raises(ValueError, match=r"x must be images \[B, 2, 8, 8\].*got shape \(2, 128\)"):
        loss_and_grad(net, x.reshape(2, -1), y, T=T, encoder="current")
    with pytest.raises(ValueError, match=r"3 encodings along the channel axis.*2 input channels"):
        loss_and_grad(net, x, y, T=T, encoder="fused:current+ttfs+poisson")
    with pytest.raises(ValueError, match=r"encoded sequence \[T, B, 2, 8, 8\]"):
        loss_and_grad(net, x, y)
    with pytest.raises(ValueError, match="method='ann'.*ConvNetwork"):
        loss_and_grad(net, x, y, T=T, encoder="current", method="ann")
    with pytest.raises(ValueError, match="train=True is for a ConvNetwork"):
        loss_and_grad(Network.mlp([4, 2]), np.zeros((1, 4)), [0], T=T, encoder="current",
                      train=True)
    maps = ConvNetwork([Conv2d(np.ones((1, 2, 1, 1))), Neuron()], input_shape=(2, 8, 8))
    with pytest.raises(ValueError, match=r"emits feature shape \(1, 8, 8\).*Flatten"):
        loss_and_grad(maps, x, y, T=T, encoder="current")
    with pytest.raises(ValueError, match=r"emits feature shape \(1, 8, 8\).*Flatten"):
        fit_snn(maps, x, y, T=T, rng=0)
    with pytest.raises(ValueError, match=r"emits feature shape \(1, 8, 8\).*Flatten"):
        SNNSource(maps, T=T, encoder="current")
    with pytest.raises(ValueError, match=r"x must be \[n, 2, 8, 8\] for this model"):
        fit_snn(net, x[:, :1], y, T=T, rng=0)
    with pytest.raises(ValueError, match=r"x must be \[n, 2, 8, 8\] for this model"):
        snn_accuracy(net, x.reshape(2, -1), y, T=T)
    with pytest.raises(ValueError, match="decoder='membrane' needs a non-spiking readout"):
        fit_snn(net, x, y, T=T, rng=0, decoder="membrane")
    with pytest.raises(ValueError, match="decoder='ttfs' needs a spiking last layer"):
        fit_snn(smooth_net(), x, y, T=T, rng=0, decoder="ttfs")
    with pytest.raises(TypeError, match="Network or ConvNetwork"):
        snn_accuracy("net", x, y, T=T)
    with pytest.raises(TypeError, match="Network or ConvNetwork"):
        SNNSource("net", T=T, encoder="current")
    src = SNNSource(net, T=T, encoder="current")
    with pytest.raises(ValueError, match=r"x must be images \[B, 2, 8, 8\] or \[B, 128\]"):
        src(x[:, :, :4], y)
    with pytest.raises(ValueError, match=r"seq must be \[T, B, 2, 8, 8\]"):
        src.sequence_loss_grad(x, y)
    with pytest.raises(ValueError, match=r"concatenates 3 encodings.*2 input channels"):
        SNNSource(net, T=T, encoder="fused:current+ttfs+poisson", sigma=None)


def test_fit_snn_reports_a_missing_gradient(monkeypatch):
    net = small_net(0)
    x, y = images(2, 0)
    real = train_mod._snn_loss_grad

    def drop(*args, **kw):  # a gradient method that leaves one layer out
        r = real(*args, **kw)
        r.grads.params.pop("layers[4]")
        return r

    monkeypatch.setattr(train_mod, "_snn_loss_grad", drop)
    with pytest.raises(ValueError, match=r"gave no gradient for 'weight' of 'layers\[4\]'"):
        fit_snn(net, x, y, T=T, rng=0, epochs=1)
