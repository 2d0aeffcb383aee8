"""Convolutional SpikingJelly models loaded into evsnn and cross-validated layer by layer.

A VGG-style network (conv-BN-LIF-pool ×2, flatten, linear-LIF) and a ResNet-style network (a
stem, one spiking-ResNet basic block, one SEW-ResNet ADD block with a strided downsample, pool,
linear) with random weights and random batch-norm statistics run on synthetic 32×32 inputs in
SpikingJelly 2.0.0 (torch 2.13.0, CPU) and in evsnn. In float64 every neuron layer must be
faithful (no real mismatch, membranes within the float64 tolerance) and the free-running spike
trains identical when there is no tie; float32 is reported and must have no real mismatch.
"""

import re

import numpy as np
import pytest

from evsnn.clock.conv import BatchNorm2d, Conv2d, Neuron, Residual, simulate_conv
from reference.conv import assert_faithful_run, assert_same_network, bn, gain

# the residual blocks are defined here because importing spikingjelly.activation_based.model
# pulls in torchvision, which does not import against torch 2.13.0 in this environment
_BLOCKS = {}


def _torch():
    torch = pytest.importorskip("torch", reason="torch is not installed; run `make crossval-deps`")
    pytest.importorskip("spikingjelly",
                        reason="spikingjelly is not installed; run `make crossval-deps`")
    from spikingjelly.activation_based import layer, neuron

    if not _BLOCKS:

        class BasicBlock(torch.nn.Module):
            """The structure and forward of spikingjelly 2.0.0 ``model/spiking_resnet.py``
            BasicBlock: sn2 fires on bn2's output plus the (downsampled) input."""

            def __init__(self, cin, cout, stride, downsample, make_neuron):
                super().__init__()
                self.conv1 = layer.Conv2d(cin, cout, 3, stride, 1, bias=False)
                self.bn1 = bn(torch, layer, cout)
                self.sn1 = make_neuron()
                self.conv2 = layer.Conv2d(cout, cout, 3, 1, 1, bias=False)
                self.bn2 = bn(torch, layer, cout)
                self.sn2 = make_neuron()
                self.downsample = downsample

            def forward(self, x):
                y = self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(x)))))
                return self.sn2(y + (x if self.downsample is None else self.downsample(x)))

        class SEWBlock(BasicBlock):
            """``model/sew_resnet.py`` BasicBlock: both branches spike, then ``cnf``."""

            def __init__(self, cin, cout, stride, downsample, make_neuron, cnf):
                super().__init__(cin, cout, stride, downsample, make_neuron)
                if downsample is not None:
                    self.downsample_sn = make_neuron()
                self.cnf = cnf

            def forward(self, x):
                y = self.sn2(self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(x))))))
                s = x if self.downsample is None else self.downsample_sn(self.downsample(x))
                return {"ADD": s + y, "AND": s * y, "IAND": s * (1.0 - y)}[self.cnf]

        SEWBlock.__name__ = "BasicBlock"
        _BLOCKS.update(standard=BasicBlock, sew=SEWBlock)
    return torch, layer, neuron


def _vgg(torch, layer, neuron):
    return gain(torch, torch.nn.Sequential(
        layer.Conv2d(3, 8, 3, padding=1, bias=False), bn(torch, layer, 8),
        neuron.LIFNode(tau=2.0, decay_input=False), layer.MaxPool2d(2),
        layer.Conv2d(8, 16, 3, padding=1, bias=False), bn(torch, layer, 16),
        neuron.LIFNode(tau=2.0), layer.AvgPool2d(2),  # decay_input=True: input scaled by 1/τ
        layer.Flatten(), layer.Linear(16 * 8 * 8, 10, bias=False),
        neuron.LIFNode(tau=4.0, v_reset=None, decay_input=False),
    ), 4.0)


def _resnet(torch, layer, neuron):
    down = torch.nn.Sequential(layer.Conv2d(8, 16, 1, stride=2, bias=False),
                               bn(torch, layer, 16))
    return gain(torch, torch.nn.Sequential(
        layer.Conv2d(3, 8, 3, padding=1, bias=False), bn(torch, layer, 8), neuron.IFNode(),
        _BLOCKS["standard"](8, 8, 1, None, neuron.IFNode),
        _BLOCKS["sew"](8, 16, 2, down, lambda: neuron.LIFNode(tau=2.0, decay_input=False), "ADD"),
        layer.AvgPool2d(4), layer.Flatten(), layer.Linear(16 * 4 * 4, 10),
        neuron.IFNode(v_reset=None),
    ), 3.0)


def _inputs(kind, T=6, B=2):
    rng = np.random.default_rng(0)
    img = rng.random((1, B, 3, 32, 32))
    if kind == "current":
        return np.repeat(img, T, axis=0)  # current coding: the image at every step
    return (rng.random((T, B, 3, 32, 32)) < img).astype(float)  # Poisson spikes


@pytest.mark.crossval
@pytest.mark.parametrize("arch", ["vgg", "resnet"])
@pytest.mark.parametrize("kind", ["current", "poisson"])
def test_spikingjelly_conv_networks_are_faithful(arch, kind):
    torch, layer, neuron = _torch()
    from validation.crossval.spikingjelly_conv import compare_conv, from_spikingjelly

    torch.manual_seed(1 if arch == "vgg" else 2)
    model = (_vgg if arch == "vgg" else _resnet)(torch, layer, neuron)
    net, conv = from_spikingjelly(model, (3, 32, 32))
    assert conv.spike_test == ">=" and conv.input_delay == 0
    if arch == "resnet":
        assert [type(l).__name__ for l in net.layers][3:5] == ["Residual", "Residual"]
        assert [l.connection for l in net.layers[3:5]] == ["standard", "ADD"]
    x = _inputs(kind)
    rep, free = compare_conv(net, model, x, dtype=np.float64)
    rep32, _ = compare_conv(net, model, x, dtype=np.float32)
    assert_faithful_run(net, x, conv, rep, free, rep32)
    print(f"\n{arch}/{kind}: float64 ties={rep.ties} free-run differences={free}; "
          f"float32 ties={rep32.ties} real={rep32.real_mismatches} "
          f"max membrane error={max(lc.max_membrane_error for lc in rep32.layers):.2e}")


@pytest.mark.crossval
def test_folded_batchnorm_model_agrees_up_to_ties():
    torch, layer, neuron = _torch()
    from validation.crossval.spikingjelly_conv import compare_conv, from_spikingjelly

    torch.manual_seed(1)
    model = _vgg(torch, layer, neuron)
    net, _ = from_spikingjelly(model, (3, 32, 32), fold_bn=True)
    assert not any(isinstance(l, BatchNorm2d) for l in net.layers)
    assert all(l.bias is not None for l in net.layers if isinstance(l, Conv2d))
    rep, _ = compare_conv(net, model, _inputs("poisson"), dtype=np.float64)
    assert rep.real_mismatches == 0, rep.layers


@pytest.mark.crossval
def test_misconfigured_network_is_a_real_mismatch():
    torch, layer, neuron = _torch()
    from validation.crossval.spikingjelly_conv import compare_conv, from_spikingjelly

    torch.manual_seed(1)
    model = _vgg(torch, layer, neuron)
    net, conv = from_spikingjelly(model, (3, 32, 32))
    rep, _ = compare_conv(net, model, _inputs("poisson"), convention=conv.with_(spike_test=">"),
                          dtype=np.float64)
    assert rep.real_mismatches == 0  # random weights: no membrane lands exactly on θ
    layers = list(net.layers)
    layers[2] = Neuron(layers[2].neuron.__class__(lam=0.6, theta=1.0))  # wrong leak
    wrong = type(net)(tuple(layers), net.input_shape)
    rep, _ = compare_conv(wrong, model, _inputs("poisson"), dtype=np.float64)
    assert rep.layers[0].real > 0 and rep.layers[0].membrane_real


@pytest.mark.crossval
def test_loader_mapping_and_refusals():
    torch, layer, neuron = _torch()
    from validation.crossval.spikingjelly_conv import from_spikingjelly

    net, _ = from_spikingjelly(torch.nn.Sequential(
        layer.Conv2d(2, 4, 3, stride=2, padding=1, groups=2, bias=True), torch.nn.Identity(),
        neuron.LIFNode(tau=4.0), neuron.IFNode(v_reset=-0.5, v_threshold=0.5)), (2, 8, 8))
    c, lif, iff = net.layers
    assert c.stride == (2, 2) and c.padding == (1, 1) and c.groups == 2 and c.bias is not None
    assert lif.neuron.lam == 0.75 and lif.input_scale == 0.25 and lif.neuron.reset == "hard"
    assert (iff.neuron.lam, iff.neuron.theta, iff.neuron.v_rest, iff.neuron.v_init) == (
        1.0, 0.5, -0.5, -0.5)
    with pytest.raises(NotImplementedError, match="ReLU has no evsnn counterpart"):
        from_spikingjelly(torch.nn.Sequential(torch.nn.ReLU()), (1, 4, 4))
    with pytest.raises(ValueError, match="training mode"):
        from_spikingjelly(torch.nn.Sequential(layer.BatchNorm2d(1)), (1, 4, 4))
    with pytest.raises(ValueError, match="leaks towards v_reset"):
        from_spikingjelly(torch.nn.Sequential(neuron.LIFNode(v_reset=0.5)), (1, 4, 4))
    with pytest.raises(ValueError, match="only dilation 1"):
        from_spikingjelly(torch.nn.Sequential(layer.Conv2d(1, 1, 3, dilation=2)), (1, 8, 8))
    with pytest.raises(ValueError, match="count_include_pad=True"):
        from_spikingjelly(torch.nn.Sequential(layer.AvgPool2d(2, ceil_mode=True)), (1, 4, 4))
    with pytest.raises(ValueError, match="without dilation"):
        from_spikingjelly(torch.nn.Sequential(layer.MaxPool2d(2, ceil_mode=True)), (1, 4, 4))
    with pytest.raises(ValueError, match="start_dim=1"):
        from_spikingjelly(torch.nn.Sequential(layer.Flatten(start_dim=2)), (1, 4, 4))
    with pytest.raises(ValueError, match="Dropout is in training mode"):
        from_spikingjelly(torch.nn.Sequential(torch.nn.Dropout(0.5)), (1, 4, 4))
    assert isinstance(Residual, type)


@pytest.mark.crossval
def test_compare_conv_refusals():
    torch, layer, neuron = _torch()
    from validation.crossval.spikingjelly_conv import compare_conv, from_spikingjelly

    model = torch.nn.Sequential(layer.Conv2d(1, 2, 3), neuron.IFNode()).eval()
    net, _ = from_spikingjelly(model, (1, 5, 5))
    x = np.ones((2, 1, 1, 5, 5))
    with pytest.raises(ValueError, match="float16 is not supported"):
        compare_conv(net, model, x, dtype=np.float16)
    other, _ = from_spikingjelly(torch.nn.Sequential(layer.Conv2d(1, 2, 3), neuron.IFNode(),
                                                     neuron.IFNode()), (1, 5, 5))
    with pytest.raises(ValueError, match="the model has 1 neuron layers but the network has 2"):
        compare_conv(other, model, x)


# float64 gradients against SpikingJelly's autograd: the same surrogate (SpikingJelly's default
# surrogate.Sigmoid(alpha=4) is evsnn's Sigmoid(4, "code")), the same reset path (not detached);
# the two differ only in rounding (summation order of convolutions, V − V/τ vs λV), as for the
# dense adapters (tests/test_crossval_torch.py: GRAD_RTOL = 1e-9).
GRAD_RTOL = 1e-9


@pytest.mark.crossval
@pytest.mark.parametrize("arch", ["vgg", "resnet"])
def test_bptt_gradients_equal_spikingjelly_autograd(arch):
    torch, layer, neuron = _torch()
    from spikingjelly.activation_based import functional

    from evsnn.grad import Sigmoid
    from evsnn.grad.conv import backward_conv
    from validation.crossval.spikingjelly_conv import from_spikingjelly

    torch.manual_seed(1 if arch == "vgg" else 2)
    model = (_vgg if arch == "vgg" else _resnet)(torch, layer, neuron).to(torch.float64)
    net, conv = from_spikingjelly(model, (3, 32, 32))
    x = _inputs("poisson", T=4)
    rng = np.random.default_rng(5)
    res = simulate_conv(net, x, convention=conv, record=True)
    g = rng.standard_normal(res.output.shape)
    ours = backward_conv(net, x, res, g, surrogate=Sigmoid(4.0, "code"))

    functional.set_step_mode(model, "m")
    functional.reset_net(model)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = model(xt)
    np.testing.assert_array_equal(out.detach().numpy(), res.output)
    (out * torch.as_tensor(g)).sum().backward()
    scale = np.abs(ours.input).max()
    assert scale > 0
    np.testing.assert_allclose(ours.input, xt.grad.numpy(), rtol=0, atol=GRAD_RTOL * scale)
    # every convolution and linear weight, matched in execution order
    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    ev_paths = [p for p in ours.params if "weight" in ours.params[p]
                and ours.params[p]["weight"].ndim in (2, 4)]
    # torch registers a block's body (conv1, conv2) before its downsample
    ev_paths = sorted(ev_paths, key=lambda p: [int(n) for n in re.findall(
        r"\d+", p.replace("body", "[0]").replace("shortcut", "[1]"))])
    assert len(ev_paths) == len(convs)
    for p, m in zip(ev_paths, convs):
        want = m.weight.grad.numpy()
        got = ours.params[p]["weight"]
        np.testing.assert_allclose(got, want, rtol=0, atol=GRAD_RTOL * np.abs(want).max(),
                                   err_msg=p)


# --- export: to_spikingjelly --------------------------------------------------------------
@pytest.mark.crossval
@pytest.mark.parametrize("arch", ["vgg", "resnet"])
def test_to_spikingjelly_round_trip_and_forward(arch):
    torch, layer, neuron = _torch()
    from validation.crossval.spikingjelly_conv import (
        compare_conv_run, from_spikingjelly, run_spikingjelly, to_spikingjelly,
    )

    torch.manual_seed(1 if arch == "vgg" else 2)
    net, conv = from_spikingjelly((_vgg if arch == "vgg" else _resnet)(torch, layer, neuron),
                                  (3, 32, 32))
    model = to_spikingjelly(net)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    back, conv2 = from_spikingjelly(model, (3, 32, 32))
    assert conv2 == conv
    assert_same_network(back, net)  # every weight, statistic and neuron setting exactly
    # the exported model run in SpikingJelly is evsnn's forward (teacher-forced verdicts)
    x = _inputs("poisson")
    rep, free = compare_conv_run(net, run_spikingjelly(model, x), x)
    assert rep.faithful, rep.layers
    if rep.ties == 0:
        assert free == [0] * len(free)
    assert sum(lc.spikes_reference for lc in rep.layers) > 0
    # float32 export: same structure, rounded numbers, still no real mismatch
    m32 = to_spikingjelly(net, dtype=np.float32)
    assert all(p.dtype == torch.float32 for p in m32.parameters())
    rep32, _ = compare_conv_run(net, run_spikingjelly(m32, x, dtype=np.float32), x,
                                dtype=np.float32)
    assert rep32.real_mismatches == 0, rep32.layers


@pytest.mark.crossval
def test_to_spikingjelly_neurons_and_blocks():
    torch, layer, neuron = _torch()
    from evsnn.clock.conv import (
        AvgPool2d, ConvNetwork, Flatten, Linear, MaxPool2d, basic_block, sew_block,
    )
    from evsnn.params import LIF
    from validation.crossval.spikingjelly_conv import from_spikingjelly, to_spikingjelly

    rng = np.random.default_rng(3)
    w = lambda *s: rng.standard_normal(s)  # noqa: E731
    bn = BatchNorm2d(rng.random(4), rng.random(4) + 0.5, rng.random(4), rng.random(4), 1e-3)
    lam = 0.9  # 1 - 1/(1/(1 - 0.9)) != 0.9 in float64: the exporter finds an exact tau
    net = ConvNetwork([
        Conv2d(w(4, 1, 3, 3), stride=2, padding=1, groups=2, bias=w(4)), bn,
        Neuron(LIF(lam=lam, theta=0.5, reset="soft")),
        basic_block(Conv2d(w(4, 4, 3, 3), padding=1), Conv2d(w(4, 4, 3, 3), padding=1),
                    Neuron(LIF(lam=1.0, v_rest=-0.25, v_init=-0.25))),  # no batch norms
        sew_block(Conv2d(w(4, 4, 3, 3), padding=1), Conv2d(w(4, 4, 3, 3), padding=1),
                  Neuron(LIF(lam=0.5)), downsample=(Conv2d(w(4, 4, 1, 1)), Neuron(LIF())),
                  connection="IAND"),
        Neuron(LIF(lam=0.75), input_scale=0.25),  # LIFNode(tau=4, decay_input=True)
        MaxPool2d(3, 1, 1), AvgPool2d(2), Flatten(), Linear(w(3, 16), w(3)),
        Neuron(LIF(lam=1.0, reset="soft")),
    ], (2, 8, 8))
    model = to_spikingjelly(net)
    lif = model[2]
    assert isinstance(lif, neuron.LIFNode) and lif.v_reset is None and not lif.decay_input
    assert 1.0 - 1.0 / lif.tau == lam and lif.tau != 1.0 / (1.0 - lam)
    blk = model[3]
    assert isinstance(blk.bn1, torch.nn.Identity) and blk.downsample is None
    assert (blk.sn2.v_reset, blk.sn1.v_threshold) == (-0.25, 1.0)
    assert model[4].cnf == "IAND" and isinstance(model[4].downsample_sn, neuron.IFNode)
    assert model[5].decay_input and model[5].tau == 4.0
    back, _ = from_spikingjelly(model, (2, 8, 8))
    assert_same_network(back, net)


@pytest.mark.crossval
def test_to_spikingjelly_refusals():
    _torch()
    from evsnn.clock.conv import ConvNetwork, Residual, basic_block, sew_block
    from evsnn.params import DLIF, LIF, Readout, TraceLIF
    from validation.crossval.spikingjelly_conv import SPIKINGJELLY, to_spikingjelly

    c = Conv2d(np.ones((1, 1, 1, 1)))

    def net(*layers):
        return ConvNetwork([c, *layers], (1, 4, 4))

    with pytest.raises(ValueError, match="spike_test='>'.*use spike_test='>='"):
        to_spikingjelly(net(Neuron(LIF())), convention=SPIKINGJELLY.with_(spike_test=">"))
    with pytest.raises(ValueError, match="input_delay=1"):
        to_spikingjelly(net(Neuron(LIF())), convention=SPIKINGJELLY.with_(input_delay=1))
    with pytest.raises(ValueError, match=r"layers\[1\] is a Readout neuron"):
        to_spikingjelly(net(Neuron(Readout())))
    with pytest.raises(ValueError, match="TraceLIF neuron"):
        to_spikingjelly(net(Neuron(TraceLIF(tau_mem_ms=2.0, tau_syn_ms=1.0))))
    with pytest.raises(ValueError, match="is a DLIF neuron"):
        to_spikingjelly(net(Neuron(DLIF(), dlif_factors=np.ones(3))))
    with pytest.raises(ValueError, match=r"v_init=0.5: SpikingJelly starts .* set v_init=0.0"):
        to_spikingjelly(net(Neuron(LIF(v_init=0.5))))
    with pytest.raises(ValueError, match="leaks towards v_reset.*use v_rest=0 or lam=1"):
        to_spikingjelly(net(Neuron(LIF(lam=0.5, v_rest=0.2, v_init=0.2))))
    with pytest.raises(ValueError, match="input_scale=0.3.*no tau gives these"):
        to_spikingjelly(net(Neuron(LIF(lam=0.5), input_scale=0.3)))
    with pytest.raises(ValueError, match="IFNode charges V \\+ X"):
        to_spikingjelly(net(Neuron(LIF(lam=1.0), input_scale=0.5)))
    with pytest.raises(ValueError, match=r"layers\[1\]: the residual body .* is not a "
                                         "SpikingJelly basic block"):
        to_spikingjelly(net(Residual((c, Neuron(LIF())), (), "standard", Neuron(LIF()))))
    with pytest.raises(ValueError, match="shortcut must end with its neuron"):
        to_spikingjelly(net(sew_block(c, c, Neuron(LIF()), downsample=(c,))))
    with pytest.raises(TypeError, match="network must be an evsnn ConvNetwork"):
        to_spikingjelly([c])
    with pytest.raises(ValueError, match="float16 is not supported"):
        to_spikingjelly(net(basic_block(c, c, Neuron(LIF()))), dtype=np.float16)


@pytest.mark.crossval
def test_dropout_and_batchnorm_momentum_load_and_export():
    """SpikingJelly's ``layer.Dropout`` (one mask per sequence) and ``nn.Dropout`` (a mask per
    element and step) load as evsnn ``Dropout`` with ``shared_over_time`` True / False and export
    back to the same classes; a batch norm's momentum survives the round trip, and torch's
    cumulative average (momentum None) is refused."""
    torch, layer, neuron = _torch()
    from evsnn.clock.conv import Dropout
    from validation.crossval.spikingjelly_conv import from_spikingjelly, to_spikingjelly

    model = torch.nn.Sequential(layer.Conv2d(1, 2, 3, padding=1, bias=False),
                                layer.BatchNorm2d(2, momentum=0.3), neuron.IFNode(),
                                layer.Dropout(0.25), torch.nn.Dropout(0.4)).eval()
    net, _ = from_spikingjelly(model, (1, 4, 4))
    bn, d_seq, d_step = net.layers[1], net.layers[3], net.layers[4]
    assert bn.momentum == pytest.approx(0.3)
    assert (type(d_seq), d_seq.p, d_seq.shared_over_time) == (Dropout, 0.25, True)
    assert (type(d_step), d_step.p, d_step.shared_over_time) == (Dropout, 0.4, False)
    exported = to_spikingjelly(net)
    assert isinstance(exported[3], layer.Dropout) and exported[3].p == 0.25
    assert type(exported[4]) is torch.nn.Dropout and exported[4].p == 0.4
    assert exported[1].momentum == pytest.approx(0.3)
    again, _ = from_spikingjelly(exported, (1, 4, 4))
    assert [(type(x).__name__, getattr(x, "shared_over_time", None)) for x in again.layers] == [
        (type(x).__name__, getattr(x, "shared_over_time", None)) for x in net.layers]
    x = (np.random.default_rng(0).random((3, 2, 1, 4, 4)) < 0.5).astype(float)
    np.testing.assert_array_equal(simulate_conv(net, x).output, simulate_conv(again, x).output)
    with pytest.raises(ValueError, match="momentum=None"):
        from_spikingjelly(torch.nn.Sequential(layer.BatchNorm2d(1, momentum=None)).eval(),
                          (1, 4, 4))
