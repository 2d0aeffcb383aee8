"""Training-mode batch norm and dropout in convolutional SNNs (``simulate_conv(train=True)``):
forward and running statistics against SpikingJelly / PyTorch (float64), backward against torch
autograd of the smooth forward and against central finite differences, dropout mask statistics,
inference unchanged, errors."""

import numpy as np
import pytest
from conftest import ATOL_TORCH_FLOAT64, RTOL_TORCH_FLOAT64

from evsnn.clock.conv import (
    AvgPool2d, BatchNorm2d, Conv2d, ConvNetwork, Dropout, Flatten, Linear, Neuron, Residual,
    sew_block, simulate_conv, update_running_stats,
)
from evsnn.grad import Sigmoid
from evsnn.grad.conv import backward_conv
from evsnn.params import LIF, Readout
from reference.helpers import RHO, assert_finite_differences



def _w(rng, *shape, scale=1.0):
    return rng.standard_normal(shape) * scale / np.sqrt(np.prod(shape[1:]))


def _bn(rng, c, momentum=0.1, eps=1e-5):
    return BatchNorm2d(rng.standard_normal(c) * 0.2, rng.uniform(0.5, 2.0, c),
                       rng.uniform(0.5, 1.5, c), rng.standard_normal(c) * 0.2, eps=eps,
                       momentum=momentum)


# --------------------------------------------------------------------------- forward vs torch
def test_train_batchnorm_matches_spikingjelly_and_running_stats_match_torch():
    torch = pytest.importorskip("torch")
    layer = pytest.importorskip("spikingjelly.activation_based.layer")
    rng = np.random.default_rng(0)
    T, B, C, Hh, W = 4, 3, 5, 6, 7
    ours = _bn(rng, C, momentum=0.3, eps=1e-3)
    sj = layer.BatchNorm2d(C, eps=1e-3, momentum=0.3, step_mode="m").double()
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(sj, name).copy_(torch.tensor(np.array(getattr(ours, name))))
    sj.train()
    net = ConvNetwork([ours], input_shape=(C, Hh, W))
    for step in range(2):  # two training steps: the second starts from updated running stats
        x = rng.standard_normal((T, B, C, Hh, W)) * 2 + rng.standard_normal((C, 1, 1))
        res = simulate_conv(net, x, train=True)
        with torch.no_grad():
            want = sj(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(res.output, want, rtol=RTOL_TORCH_FLOAT64,
                                   atol=ATOL_TORCH_FLOAT64)
        mean, var, n = res.batch_stats["layers[0]"]
        xt = torch.from_numpy(x).flatten(0, 1)
        v_t, m_t = torch.var_mean(xt, dim=(0, 2, 3), correction=0)  # biased, as torch's BN
        assert n == T * B * Hh * W
        np.testing.assert_allclose(mean, m_t.numpy(), rtol=RTOL_TORCH_FLOAT64,
                                   atol=ATOL_TORCH_FLOAT64)
        np.testing.assert_allclose(var, v_t.numpy(), rtol=RTOL_TORCH_FLOAT64)
        net = update_running_stats(net, res)
        bn = net.layers[0]
        np.testing.assert_allclose(bn.running_mean, sj.running_mean.numpy(),
                                   rtol=RTOL_TORCH_FLOAT64, atol=ATOL_TORCH_FLOAT64)
        np.testing.assert_allclose(bn.running_var, sj.running_var.numpy(), rtol=RTOL_TORCH_FLOAT64)
        assert bn.momentum == 0.3 and bn.eps == 1e-3
    # inference afterwards: SpikingJelly in eval mode uses the running statistics, as we do
    sj.eval()
    x = rng.standard_normal((T, B, C, Hh, W))
    with torch.no_grad():
        want = sj(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(simulate_conv(net, x).output, want, rtol=RTOL_TORCH_FLOAT64,
                               atol=ATOL_TORCH_FLOAT64)


def test_update_running_stats_reaches_residual_bodies_and_shortcuts():
    rng = np.random.default_rng(1)
    nrn = Neuron(LIF(lam=0.8, theta=0.5, reset="soft"))
    block = sew_block(Conv2d(_w(rng, 3, 2, 3, 3, scale=3), padding=1),
                      Conv2d(_w(rng, 3, 3, 3, 3, scale=3), padding=1), nrn,
                      bn1=_bn(rng, 3), bn2=_bn(rng, 3, momentum=0.5),
                      downsample=(Conv2d(_w(rng, 3, 2, 1, 1)), _bn(rng, 3, momentum=0.0), nrn))
    net = ConvNetwork([block, Flatten(), Linear(_w(rng, 2, 48))], input_shape=(2, 4, 4))
    x = rng.random((3, 2, 2, 4, 4))
    res = simulate_conv(net, x, train=True)
    paths = {"layers[0].body[1]", "layers[0].body[4]", "layers[0].shortcut[1]"}
    assert set(res.batch_stats) == paths
    new = update_running_stats(net, res)
    old_l, new_l = net.layers[0], new.layers[0]
    for path, old, upd in (("layers[0].body[1]", old_l.body[1], new_l.body[1]),
                           ("layers[0].body[4]", old_l.body[4], new_l.body[4]),
                           ("layers[0].shortcut[1]", old_l.shortcut[1], new_l.shortcut[1])):
        mean, var, n = res.batch_stats[path]
        assert n == 3 * 2 * 4 * 4
        m = old.momentum  # torch: r <- (1 - m) r + m * batch statistic (unbiased variance)
        np.testing.assert_allclose(upd.running_mean, (1 - m) * old.running_mean + m * mean,
                                   rtol=1e-15)
        np.testing.assert_allclose(upd.running_var,
                                   (1 - m) * old.running_var + m * var * n / (n - 1), rtol=1e-15)
        np.testing.assert_array_equal(upd.weight, old.weight)
    # momentum 0 keeps the running statistics; the rest of the network is unchanged
    np.testing.assert_array_equal(new_l.shortcut[1].running_var, old_l.shortcut[1].running_var)
    assert new_l.connection == "ADD" and new.layers[2] is net.layers[2]
    assert not np.allclose(new_l.body[1].running_mean, old_l.body[1].running_mean)


# --------------------------------------------------------------------------- dropout
def _dropout_net(shared, p=0.25):
    return ConvNetwork([Dropout(p, shared_over_time=shared), Flatten(), Dropout(p, shared)],
                       input_shape=(3, 10, 10))


@pytest.mark.parametrize("shared", [True, False])
def test_dropout_masks_shape_values_keep_rate_and_reproducibility(shared):
    T, B, p = 5, 8, 0.25
    net = _dropout_net(shared, p)
    x = np.ones((T, B, 3, 10, 10))
    res = simulate_conv(net, x, train=True, rng=np.random.default_rng(2), record=True)
    _, mask = res.tape["layers[0]"]
    _, mask2 = res.tape["layers[2]"]
    assert mask.shape == ((B, 3, 10, 10) if shared else (T, B, 3, 10, 10))
    assert mask2.shape == ((B, 300) if shared else (T, B, 300))
    assert set(np.unique(mask)) == {0.0, 1 / (1 - p)}  # inverted dropout: kept units scaled
    want = x * (mask[None] if shared else mask)
    np.testing.assert_array_equal(res.output, (want.reshape(T, B, -1)
                                               * (mask2[None] if shared else mask2)))
    # every step the same mask (SpikingJelly layer.Dropout) or a fresh one (nn.Dropout per step)
    same = all(np.array_equal(res.output[0], res.output[t]) for t in range(1, T))
    assert same == shared
    # keep rate: Binomial(N, 1 − p); 5 standard deviations (false-alarm probability < 1e-6)
    for m in (mask, mask2):
        n_kept, N = np.count_nonzero(m), m.size
        assert abs(n_kept - N * (1 - p)) <= 5 * np.sqrt(N * p * (1 - p))
    assert not np.array_equal(mask.reshape(mask2.shape), mask2)  # layers draw in turn
    # the same generator state gives the same masks; another seed different ones
    again = simulate_conv(net, x, train=True, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(again.output, res.output)
    other = simulate_conv(net, x, train=True, rng=np.random.default_rng(3))
    assert not np.array_equal(other.output, res.output)


def test_dropout_is_the_identity_at_inference_and_p0_at_training():
    rng = np.random.default_rng(4)
    layers = [Conv2d(_w(rng, 3, 2, 3, 3, scale=3), padding=1), _bn(rng, 3),
              Neuron(LIF(0.9, 0.5)), AvgPool2d(2), Flatten(), Linear(_w(rng, 4, 12, scale=3)),
              Neuron(Readout(0.9))]
    plain = ConvNetwork(layers, input_shape=(2, 4, 4))
    dropped = ConvNetwork(layers[:4] + [Dropout(0.5)] + layers[4:], input_shape=(2, 4, 4))
    x = rng.random((4, 3, 2, 4, 4))
    a = simulate_conv(plain, x, record=True)
    b = simulate_conv(dropped, x, record=True)  # no rng needed at inference
    np.testing.assert_array_equal(a.output, b.output)
    assert b.batch_stats is None and b.tape["layers[4]"] == ("dropout", None)
    # BN at inference uses the running statistics: x · α + (β − μ α)
    alpha, shift = layers[1].scale_shift(np.float64)
    conv_out = simulate_conv(ConvNetwork(layers[:1], (2, 4, 4)), x).output
    bn_out = simulate_conv(ConvNetwork(layers[:2], (2, 4, 4)), x).output
    np.testing.assert_array_equal(bn_out, conv_out * alpha[:, None, None] + shift[:, None, None])
    g = rng.standard_normal(a.output.shape)
    ga, gb = backward_conv(plain, x, a, g), backward_conv(dropped, x, b, g)
    np.testing.assert_array_equal(ga.input, gb.input)
    # p = 0 at training: every unit kept with scale 1
    zero = ConvNetwork([Dropout(0.0), Flatten()], input_shape=(2, 4, 4))
    np.testing.assert_array_equal(
        simulate_conv(zero, x, train=True, rng=np.random.default_rng(0)).output,
        x.reshape(4, 3, -1))


def test_dropout_after_spikes_event_and_dense_paths_agree():
    rng = np.random.default_rng(5)
    net = ConvNetwork([Neuron(LIF(0.9, 0.3)), Dropout(0.4), Conv2d(_w(rng, 3, 2, 3, 3, scale=3)),
                       Neuron(LIF(0.9, 0.5))], input_shape=(2, 6, 6))
    x = rng.random((5, 2, 2, 6, 6))
    outs = [simulate_conv(net, x, train=True, rng=np.random.default_rng(6), conv_mode=m).output
            for m in ("event", "dense")]
    np.testing.assert_array_equal(outs[0], outs[1])
    assert outs[0].any()


# --------------------------------------------------------------------------- backward
def _small_net(p, shared):
    """conv (bias) → BN (train) → LIF → avg pool → dropout → flatten → linear."""
    def build(prm):
        return ConvNetwork([
            Conv2d(prm["conv_w"], padding=1, bias=prm["conv_b"]),
            BatchNorm2d(np.zeros(4), np.ones(4), prm["bn_w"], prm["bn_b"], eps=1e-3),
            Neuron(LIF(lam=0.8, theta=0.5, reset="soft")), AvgPool2d(2),
            Dropout(p, shared_over_time=shared), Flatten(), Linear(prm["lin_w"]),
        ], input_shape=(2, 6, 6))
    return build


def _small_params(rng):
    return {"conv_w": _w(rng, 4, 2, 3, 3, scale=3), "conv_b": rng.standard_normal(4) * 0.1,
            "bn_w": rng.uniform(0.5, 1.5, 4), "bn_b": rng.standard_normal(4) * 0.3 + 0.3,
            "lin_w": _w(rng, 3, 36, scale=3)}


GRAD_KEYS = {"conv_w": ("layers[0]", "weight"), "conv_b": ("layers[0]", "bias"),
             "bn_w": ("layers[1]", "weight"), "bn_b": ("layers[1]", "bias"),
             "lin_w": ("layers[6]", "weight")}


@pytest.mark.parametrize("shared", [True, False])
def test_backward_matches_torch_autograd_of_the_smooth_forward(shared):
    torch = pytest.importorskip("torch")
    layer = pytest.importorskip("spikingjelly.activation_based.layer")
    F = torch.nn.functional
    rng = np.random.default_rng(7)
    prm = _small_params(rng)
    net = _small_net(0.3, shared)(prm)
    T, B = 5, 3
    x = rng.random((T, B, 2, 6, 6))
    res = simulate_conv(net, x, record=True, train=True, rng=np.random.default_rng(8),
                        smooth_rho=RHO)
    g_out = rng.standard_normal(res.output.shape)
    ours = backward_conv(net, x, res, g_out, surrogate=Sigmoid(RHO, "code"))
    _, mask = res.tape["layers[4]"]

    # the same computation in torch: SpikingJelly's train-mode BN, the smooth LIF written out,
    # SpikingJelly's Dropout holding our mask (shared) or the per-step mask applied directly
    tp = {k: torch.tensor(np.array(v), requires_grad=True) for k, v in prm.items()}
    xt = torch.tensor(x, requires_grad=True)
    bn = layer.BatchNorm2d(4, eps=1e-3, step_mode="m").double()
    with torch.no_grad():
        bn.weight.copy_(tp["bn_w"])
        bn.bias.copy_(tp["bn_b"])
    bn.train()
    z = F.conv2d(xt.flatten(0, 1), tp["conv_w"], tp["conv_b"], padding=1).view(T, B, 4, 6, 6)
    cur = bn(z)
    v, spikes = torch.zeros_like(cur[0]), []
    for t in range(T):
        m = 0.8 * v + cur[t]
        s = torch.sigmoid(RHO * (m - 0.5))
        v = m - s * 0.5
        spikes.append(s)
    pooled = F.avg_pool2d(torch.stack(spikes).flatten(0, 1), 2).view(T, B, 4, 3, 3)
    if shared:
        drop = layer.Dropout(0.3, step_mode="m")
        drop.train()
        drop.mask = torch.from_numpy(mask)
        dropped = drop(pooled)
    else:
        dropped = pooled * torch.from_numpy(mask)
    out = dropped.flatten(2) @ tp["lin_w"].T
    np.testing.assert_allclose(res.output, out.detach().numpy(), rtol=RTOL_TORCH_FLOAT64,
                               atol=ATOL_TORCH_FLOAT64)
    (out * torch.from_numpy(g_out)).sum().backward()
    tp["bn_w"].grad, tp["bn_b"].grad = bn.weight.grad, bn.bias.grad

    def close(a, b):
        scale = np.abs(b).max()
        assert scale > 1e-3  # not vacuous
        np.testing.assert_allclose(a, b, rtol=RTOL_TORCH_FLOAT64,
                                   atol=ATOL_TORCH_FLOAT64 * scale)

    close(ours.input, xt.grad.numpy())
    for key, (path, name) in GRAD_KEYS.items():
        if key != "conv_b":
            close(ours.params[path][name], tp[key].grad.numpy())
    # a bias before train-mode BN shifts the batch mean by the same amount: zero gradient
    scale = np.abs(ours.params["layers[0]"]["weight"]).max()
    assert np.abs(ours.params["layers[0]"]["bias"]).max() <= ATOL_TORCH_FLOAT64 * scale
    assert np.abs(tp["conv_b"].grad.numpy()).max() <= ATOL_TORCH_FLOAT64 * scale


def _fd_check(build, prm, x, grad_of, seed, n_coords=2, p_seed=9):
    """Directional and single-coordinate central differences of the smooth train-mode forward
    (dropout masks redrawn from the same seed every call, so they are fixed)."""
    rng = np.random.default_rng(seed)

    def run(pp, xx, record=False):
        return simulate_conv(build(pp), xx, train=True, rng=np.random.default_rng(p_seed),
                             smooth_rho=RHO, record=record)

    res = run(prm, x, record=True)
    # a loss of size O(1), the scale RTOL_FINITE_DIFF's rounding estimate (eps / h) assumes
    g_out = rng.standard_normal(res.output.shape) / np.sqrt(res.output.size)
    grads = backward_conv(build(prm), x, res, g_out, surrogate=Sigmoid(RHO, "code"))

    def check(an, f, value):
        assert_finite_differences(an, f, value, rng, n_coords)

    def loss(pp, xx):
        return float((run(pp, xx).output * g_out).sum())

    check(grads.input, lambda v: loss(prm, v), x)
    for key, (path, name) in grad_of.items():
        check(grads.params[path][name], lambda v, k=key: loss({**prm, k: v}, x), prm[key])
    assert np.abs(grads.input).max() > 1e-6


def test_backward_matches_finite_differences_of_the_smooth_forward():
    rng = np.random.default_rng(10)
    prm = _small_params(rng)
    x = rng.random((4, 2, 2, 6, 6))
    # the conv bias is left out: before train-mode BN its gradient is zero (see the torch test)
    keys = {k: v for k, v in GRAD_KEYS.items() if k != "conv_b"}
    for shared in (True, False):
        _fd_check(_small_net(0.3, shared), prm, x, keys, seed=11)


def test_backward_residual_with_train_batchnorm_matches_finite_differences():
    rng = np.random.default_rng(12)
    prm = {"c1": _w(rng, 3, 2, 3, 3, scale=3), "c2": _w(rng, 3, 3, 3, 3, scale=3),
           "down": _w(rng, 3, 2, 1, 1, scale=2), "g1": rng.uniform(0.5, 1.5, 3),
           "g2": rng.uniform(0.5, 1.5, 3), "gd": rng.uniform(0.5, 1.5, 3),
           "b1": rng.standard_normal(3) * 0.2 + 0.3, "lin": _w(rng, 2, 48, scale=2)}

    def build(pp):
        nrn = Neuron(LIF(lam=0.85, theta=0.5, reset="hard"))

        def bn(g, b=None):
            return BatchNorm2d(np.zeros(3), np.ones(3), g, b)

        block = Residual((Conv2d(pp["c1"], padding=1), bn(pp["g1"], pp["b1"]), nrn,
                          Dropout(0.2), Conv2d(pp["c2"], padding=1), bn(pp["g2"])),
                         (Conv2d(pp["down"]), bn(pp["gd"])), "standard", nrn)
        return ConvNetwork([block, Flatten(), Linear(pp["lin"]), Neuron(Readout(0.9))],
                           input_shape=(2, 4, 4))

    grad_of = {"c1": ("layers[0].body[0]", "weight"), "g1": ("layers[0].body[1]", "weight"),
               "b1": ("layers[0].body[1]", "bias"), "c2": ("layers[0].body[4]", "weight"),
               "g2": ("layers[0].body[5]", "weight"), "down": ("layers[0].shortcut[0]", "weight"),
               "gd": ("layers[0].shortcut[1]", "weight"), "lin": ("layers[2]", "weight")}
    _fd_check(build, prm, rng.random((4, 2, 2, 4, 4)), grad_of, seed=13, n_coords=1)


def test_train_batchnorm_float32_close_to_float64():
    rng = np.random.default_rng(14)
    net = ConvNetwork([Conv2d(_w(rng, 3, 2, 3, 3)), _bn(rng, 3), Neuron(Readout(0.9))],
                      input_shape=(2, 5, 5))
    x = rng.random((3, 2, 2, 5, 5))
    a = simulate_conv(net, x, train=True, record=True)
    b = simulate_conv(net, x.astype(np.float32), train=True, record=True)
    assert b.output.dtype == np.float32 and b.batch_stats["layers[1]"][0].dtype == np.float32
    # float32 rounding (eps 1.2e-7) over sums of 75 terms of size O(1)
    np.testing.assert_allclose(b.output, a.output, rtol=1e-5, atol=1e-5)
    g = rng.standard_normal(a.output.shape)
    ga, gb = backward_conv(net, x, a, g), backward_conv(net, x, b, g)
    assert gb.params["layers[1]"]["weight"].dtype == np.float32
    np.testing.assert_allclose(gb.input, ga.input, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- errors
def test_errors():
    with pytest.raises(ValueError, match=r"p=1\.0 must be finite and lie in \[0, 1\); the "
                                         "probability of zeroing a unit, e.g. p=0.5"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="p=-0.1"):
        Dropout(-0.1)
    with pytest.raises(TypeError, match="p must be a real number, got bool True"):
        Dropout(True)
    assert Dropout(np.float32(0.25)).p == 0.25 and type(Dropout(np.float32(0.25)).p) is float
    with pytest.raises(TypeError, match="shared_over_time must be True or False"):
        Dropout(0.5, shared_over_time="yes")
    with pytest.raises(ValueError, match=r"momentum=1\.5 must be finite and lie in \[0, 1\]; "
                                         "the weight of the new batch statistics"):
        BatchNorm2d([0.0], [1.0], momentum=1.5)
    with pytest.raises(TypeError, match=r"momentum must be a real number, got NoneType None; .*"
                                        r"momentum=None, is not supported"):
        BatchNorm2d([0.0], [1.0], momentum=None)
    with pytest.raises(ValueError, match="momentum=nan must be finite"):
        BatchNorm2d([0.0], [1.0], momentum=np.nan)
    net = ConvNetwork([BatchNorm2d([0.0], [1.0]), Dropout(0.5)], input_shape=(1, 2, 2))
    x = np.ones((2, 1, 1, 2, 2))
    with pytest.raises(ValueError, match="rng is required with train=True"):
        simulate_conv(net, x, train=True)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator, got int"):
        simulate_conv(net, x, train=True, rng=42)
    with pytest.raises(TypeError, match="train must be True or False"):
        simulate_conv(net, x, train="yes", rng=np.random.default_rng(0))
    one = ConvNetwork([BatchNorm2d([0.0], [1.0])], input_shape=(1, 1, 1))
    with pytest.raises(ValueError, match=r"more than one value per channel, got T·B·H·W = 1"):
        simulate_conv(one, np.ones((1, 1, 1, 1, 1)), train=True)
    res = simulate_conv(net, x, train=True, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="network must be an evsnn ConvNetwork"):
        update_running_stats("net", res)
    with pytest.raises(ValueError, match=r"simulate_conv\(\.\.\., train=True\)"):
        update_running_stats(net, simulate_conv(net, x))
    two = ConvNetwork([Dropout(0.5), BatchNorm2d([0.0], [1.0])], input_shape=(1, 2, 2))
    with pytest.raises(ValueError, match=r"no batch statistics for the BatchNorm2d at layers\[1\]"):
        update_running_stats(two, res)
    none = ConvNetwork([Dropout(0.5), Dropout(0.5)], input_shape=(1, 2, 2))
    with pytest.raises(ValueError, match="not BatchNorm2d layers of this network"):
        update_running_stats(none, res)
    wide = ConvNetwork([BatchNorm2d([0.0, 0.0], [1.0, 1.0])], input_shape=(2, 2, 2))
    with pytest.raises(ValueError, match="have 1 channels but the layer has 2"):
        update_running_stats(wide, res)
