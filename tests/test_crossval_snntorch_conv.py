"""Convolutional snnTorch models loaded into evsnn, run step by step, compared layer by layer,
and evsnn networks exported back to snnTorch.

A VGG-style network (conv-BN-Leaky-pool ×2, flatten, linear-Leaky) and a ResNet-style network
(a stem, one identity residual block, one block with a strided downsample, pool, linear) with
random weights and random batch-norm statistics run on synthetic 32×32 inputs in snnTorch 1.0.0
(torch 2.13.0, CPU) and in evsnn. In float64 every neuron layer must be faithful (no real
mismatch, membranes within the float64 tolerance) and the free-running spike trains identical
when there is no tie; float32 must have no real mismatch. Export: ``from_snntorch(to_snntorch(
net))`` gives back every number exactly and the exported model is faithful to
``simulate_conv(net)``.
"""

import numpy as np
import pytest

from evsnn.clock.conv import BatchNorm2d, Conv2d, Neuron
from reference.conv import assert_faithful_run, assert_same_network, bn, gain

# snnTorch ships no residual block; this one has the parts and the forward that
# validation.crossval.snntorch_conv recognises (its module docstring)
_BLOCKS = {}


def _torch():
    torch = pytest.importorskip("torch", reason="torch is not installed; run `make crossval-deps`")
    snn = pytest.importorskip("snntorch",
                              reason="snntorch is not installed; run `make crossval-deps`")
    if not _BLOCKS:

        class SpikingBasicBlock(torch.nn.Module):
            """``lif2(bn2(conv2(lif1(bn1(conv1(x))))) + downsample(x))``."""

            def __init__(self, cin, cout, stride, downsample, make_neuron):
                super().__init__()
                self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
                self.bn1 = bn(torch, torch.nn, cout)
                self.lif1 = make_neuron()
                self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
                self.bn2 = bn(torch, torch.nn, cout)
                self.lif2 = make_neuron()
                self.downsample = downsample

            def forward(self, x):
                y = self.bn2(self.conv2(self.lif1(self.bn1(self.conv1(x)))))
                return self.lif2(y + (x if self.downsample is None else self.downsample(x)))

        _BLOCKS["block"] = SpikingBasicBlock
    return torch, snn


def _leaky(snn, beta, reset="zero", **kw):
    return snn.Leaky(beta=beta, init_hidden=True, reset_mechanism=reset, **kw)


def _vgg(torch, snn):
    nn = torch.nn
    return gain(torch, nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), bn(torch, torch.nn, 8), _leaky(snn, 0.5),
        nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(8, 16, 3, padding=1, bias=False), bn(torch, torch.nn, 16),
                      _leaky(snn, 0.9)),  # nested; β = float32(0.9)
        nn.AvgPool2d(2), nn.Dropout(0.3), nn.Flatten(), nn.Linear(16 * 8 * 8, 10, bias=False),
        _leaky(snn, 1.0, "subtract", threshold=0.5, output=True),  # IF, soft reset
    ), 4.0)


def _resnet(torch, snn):
    nn = torch.nn
    block = _BLOCKS["block"]
    down = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False), bn(torch, torch.nn, 16))
    return gain(torch, nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), bn(torch, torch.nn, 8),
        _leaky(snn, 1.0, "subtract"),
        block(8, 8, 1, None, lambda: _leaky(snn, 1.0)),
        block(8, 16, 2, down, lambda: _leaky(snn, 0.75)),
        nn.AvgPool2d(4), nn.Flatten(), nn.Linear(16 * 4 * 4, 10), nn.Identity(),
        _leaky(snn, 0.9),
    ), 3.0)


def _inputs(kind, T=5, B=2):
    rng = np.random.default_rng(0)
    img = rng.random((1, B, 3, 32, 32))
    if kind == "current":
        return np.repeat(img, T, axis=0)  # current coding: the image at every step
    return (rng.random((T, B, 3, 32, 32)) < img).astype(float)  # Poisson spikes


def _model(arch, torch, snn):
    torch.manual_seed(1 if arch == "vgg" else 2)
    return (_vgg if arch == "vgg" else _resnet)(torch, snn)


@pytest.mark.crossval
@pytest.mark.parametrize("arch", ["vgg", "resnet"])
@pytest.mark.parametrize("kind", ["current", "poisson"])
def test_snntorch_conv_networks_are_faithful(arch, kind):
    torch, snn = _torch()
    from validation.crossval.snntorch_conv import compare_snntorch, from_snntorch

    model = _model(arch, torch, snn)
    net, conv = from_snntorch(model, (3, 32, 32))
    assert conv.spike_test == ">" and conv.input_delay == 0
    if arch == "resnet":
        assert [type(l).__name__ for l in net.layers][3:5] == ["Residual", "Residual"]
        assert net.layers[4].shortcut and not net.layers[3].shortcut
    x = _inputs(kind)
    rep, free = compare_snntorch(net, model, x, dtype=np.float64)
    assert rep.backend == "snntorch"
    rep32, _ = compare_snntorch(net, model, x, dtype=np.float32)
    assert_faithful_run(net, x, conv, rep, free, rep32)
    print(f"\n{arch}/{kind}: float64 ties={rep.ties} free-run differences={free}; "
          f"float32 ties={rep32.ties} real={rep32.real_mismatches}")


@pytest.mark.crossval
def test_folded_batchnorm_and_wrong_settings():
    torch, snn = _torch()
    from validation.crossval.snntorch_conv import compare_snntorch, from_snntorch

    model = _model("vgg", torch, snn)
    x = _inputs("poisson")
    folded, _ = from_snntorch(model, (3, 32, 32), fold_bn=True)
    assert not any(isinstance(l, BatchNorm2d) for l in folded.layers)
    assert all(l.bias is not None for l in folded.layers if isinstance(l, Conv2d))
    rep, _ = compare_snntorch(folded, model, x)
    assert rep.real_mismatches == 0, rep.layers
    net, conv = from_snntorch(model, (3, 32, 32))
    rep, _ = compare_snntorch(net, model, x, convention=conv.with_(spike_test=">="))
    assert rep.real_mismatches == 0  # random weights: no membrane lands exactly on θ
    layers = list(net.layers)
    layers[2] = Neuron(layers[2].neuron.__class__(lam=0.6, theta=1.0))  # wrong leak
    rep, _ = compare_snntorch(type(net)(tuple(layers), net.input_shape), model, x)
    assert rep.layers[0].real > 0 and rep.layers[0].membrane_real


@pytest.mark.crossval
def test_run_snntorch_records_membranes_before_reset():
    torch, snn = _torch()
    from validation.crossval.snntorch_conv import run_snntorch

    # one neuron, input 0.6 per step, β = 0.5, θ = 1, reset to zero: membranes
    # 0.6, 0.9, 1.05 (spike), 0.6, 0.9 (hand-computed; 0.5·0.9 + 0.6 = 1.05)
    model = torch.nn.Sequential(torch.nn.Flatten(), _leaky(snn, 0.5, output=True))
    x = np.full((5, 1, 1, 1, 1), 0.6)
    run = run_snntorch(model, x)
    np.testing.assert_allclose(run.membranes[0].ravel(), [0.6, 0.9, 1.05, 0.6, 0.9],
                               rtol=1e-15)
    np.testing.assert_array_equal(run.spikes[0].ravel(), [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(run.output.ravel(), run.spikes[0].ravel())
    again = run_snntorch(model, x)  # state is reset before every run
    np.testing.assert_array_equal(again.membranes[0], run.membranes[0])
    assert model[1].mem.numel() == 0  # the caller's model is not touched


@pytest.mark.crossval
@pytest.mark.parametrize("arch", ["vgg", "resnet"])
def test_to_snntorch_round_trip_and_forward(arch):
    torch, snn = _torch()
    from validation.crossval.spikingjelly_conv import compare_conv_run
    from validation.crossval.snntorch_conv import (
        SNNTORCH, from_snntorch, residual_block_class, run_snntorch, to_snntorch,
    )

    net, _ = from_snntorch(_model(arch, torch, snn), (3, 32, 32))
    model = to_snntorch(net)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    if arch == "resnet":
        assert isinstance(model[3], residual_block_class()) and model[3].downsample is None
    back, conv = from_snntorch(model, (3, 32, 32))
    assert conv == SNNTORCH
    assert_same_network(back, net)  # every weight, statistic and neuron setting exactly
    x = _inputs("poisson")
    # the model runs in float64 on its own (its Leaky layers' spikes are cast by a hook)
    with torch.no_grad():
        out = model(torch.as_tensor(x[0]))
    assert out.dtype == torch.float64
    rep, free = compare_conv_run(net, run_snntorch(model, x), x, convention=SNNTORCH,
                                 backend="snntorch")
    assert rep.faithful, rep.layers
    if rep.ties == 0:
        assert free == [0] * len(free)
    m32 = to_snntorch(net, dtype=np.float32)
    assert all(p.dtype == torch.float32 for p in m32.parameters())
    rep32, _ = compare_conv_run(net, run_snntorch(m32, x, dtype=np.float32), x,
                                convention=SNNTORCH, dtype=np.float32)
    assert rep32.real_mismatches == 0, rep32.layers


@pytest.mark.crossval
def test_loader_mapping_and_refusals():
    torch, snn = _torch()
    from validation.crossval.snntorch_conv import from_snntorch

    nn = torch.nn
    beta = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    net, _ = from_snntorch(nn.Sequential(
        nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2), nn.Identity(),
        _leaky(snn, beta, learn_beta=True),  # clamped to 1 as snnTorch's forward does
        _leaky(snn, 0.9, threshold=0.3)), (2, 8, 8))
    c, a, b = net.layers
    assert c.stride == (2, 2) and c.padding == (1, 1) and c.groups == 2 and c.bias is not None
    assert (a.neuron.lam, a.neuron.reset, a.neuron.v_init) == (1.0, "hard", 0.0)
    assert b.neuron.lam == float(np.float32(0.9)) and b.neuron.theta == float(np.float32(0.3))

    def load(*mods):
        return from_snntorch(nn.Sequential(*mods), (1, 4, 4))

    with pytest.raises(ValueError, match="torch.nn.modules.activation.ReLU has no evsnn "
                                         "counterpart; supported"):
        load(nn.ReLU())
    with pytest.raises(ValueError, match="snntorch._neurons.synaptic.Synaptic .* use snn.Leaky"):
        load(snn.Synaptic(alpha=0.5, beta=0.5, init_hidden=True))
    with pytest.raises(ValueError, match="init_hidden=False.*build it with init_hidden=True"):
        load(snn.Leaky(beta=0.5))
    with pytest.raises(ValueError, match="reset_mechanism='none'.*use 'zero'"):
        load(_leaky(snn, 0.5, "none"))
    with pytest.raises(ValueError, match="reset_delay=False.*use reset_delay=True"):
        load(_leaky(snn, 0.5, reset_delay=False))
    with pytest.raises(ValueError, match="inhibition=True"):
        with pytest.warns(UserWarning, match="Inhibition"):
            load(_leaky(snn, 0.5, inhibition=True))
    with pytest.raises(ValueError, match="state_quant=.*use state_quant=False"):
        load(_leaky(snn, 0.5, state_quant=lambda mem: mem))
    with pytest.raises(ValueError, match="graded_spikes_factor=2.0.*use 1.0"):
        load(_leaky(snn, 0.5, graded_spikes_factor=2.0))
    with pytest.raises(ValueError, match="2 values of beta.*give a single beta"):
        load(_leaky(snn, torch.tensor([0.5, 0.6])))
    with pytest.raises(ValueError, match=r"neuron layer 0\) has a soft reset with lam=0.5"):
        load(_leaky(snn, 0.5, "subtract"))
    with pytest.raises(ValueError, match="subtracts float32\\(threshold\\)"):
        load(_leaky(snn, 1.0, "subtract",
                    threshold=torch.tensor(0.3, dtype=torch.float64)))
    with pytest.raises(ValueError, match="output=True that is not the model's last module"):
        load(_leaky(snn, 0.5, output=True), _leaky(snn, 0.5))
    with pytest.raises(ValueError, match="training mode"):
        load(nn.BatchNorm2d(1))
    with pytest.raises(ValueError, match="Dropout is in training mode"):
        load(nn.Dropout(0.5))

    class Block(nn.Module):
        def __init__(self, extra):
            super().__init__()
            self.conv1, self.bn1, self.lif1 = nn.Conv2d(1, 1, 1), nn.Identity(), _leaky(snn, 1.0)
            self.conv2, self.bn2, self.lif2 = nn.Conv2d(1, 1, 1), nn.Identity(), _leaky(snn, 1.0)
            if extra:
                self.relu = nn.ReLU()

    blk, _ = load(Block(False))
    assert type(blk.layers[0]).__name__ == "Residual" and blk.layers[0].shortcut == ()
    with pytest.raises(ValueError, match=r"also has \['relu'\]"):
        load(Block(True))


@pytest.mark.crossval
def test_to_snntorch_refusals():
    _torch()
    from evsnn.clock.conv import ConvNetwork, Residual, basic_block, sew_block
    from evsnn.params import DLIF, LIF, Readout
    from validation.crossval.snntorch_conv import SNNTORCH, compare_snntorch, to_snntorch

    c = Conv2d(np.ones((1, 1, 1, 1)))

    def net(*layers):
        return ConvNetwork([c, *layers], (1, 4, 4))

    with pytest.raises(ValueError, match="spike_test='>='.*use spike_test='>'"):
        to_snntorch(net(Neuron(LIF())), convention="HART_CODE")
    with pytest.raises(ValueError, match="input_delay=1"):
        to_snntorch(net(Neuron(LIF())), convention=SNNTORCH.with_(input_delay=1))
    with pytest.raises(ValueError, match=r"layers\[1\] is a Readout neuron"):
        to_snntorch(net(Neuron(Readout())))
    with pytest.raises(ValueError, match="is a DLIF neuron"):
        to_snntorch(net(Neuron(DLIF(), dlif_factors=np.ones(3))))
    with pytest.raises(ValueError, match="input_scale=0.5.*fold the scale"):
        to_snntorch(net(Neuron(LIF(lam=0.5), input_scale=0.5)))
    with pytest.raises(ValueError, match="v_init=0.25.*set v_init=0"):
        to_snntorch(net(Neuron(LIF(v_init=0.25))))
    with pytest.raises(ValueError, match=r"layers\[1\] resets to v_rest=-0.5.*only v_rest=0"):
        to_snntorch(net(Neuron(LIF(v_rest=-0.5))))
    with pytest.raises(ValueError, match=r"layers\[1\].body\[1\] has a soft reset with lam=0.9"):
        to_snntorch(net(basic_block(c, c, Neuron(LIF(lam=0.9, reset="soft")))))
    with pytest.raises(ValueError, match="theta=0.3, not a float32 number"):
        to_snntorch(net(Neuron(LIF(theta=0.3, reset="soft"))))
    with pytest.raises(ValueError, match="SEW block.*export it with to_spikingjelly"):
        to_snntorch(net(sew_block(c, c, Neuron(LIF()))))
    with pytest.raises(ValueError, match="is not a snnTorch basic block"):
        to_snntorch(net(Residual((c, Neuron(LIF())), (), "standard", Neuron(LIF()))))
    with pytest.raises(TypeError, match="network must be an evsnn ConvNetwork"):
        to_snntorch([c])
    # the float32 exporter keeps a soft reset with a float64-only θ (float32 everywhere)
    assert to_snntorch(net(Neuron(LIF(theta=0.3, reset="soft"))), dtype=np.float32)
    model = to_snntorch(net(Neuron(LIF())))
    x = np.ones((2, 1, 1, 4, 4))
    with pytest.raises(ValueError, match="float16 is not supported"):
        compare_snntorch(net(Neuron(LIF())), model, x, dtype=np.float16)
    with pytest.raises(ValueError, match="the model has 1 neuron layers but the network has 2; "
                                         "load the network from this model with from_snntorch"):
        compare_snntorch(net(Neuron(LIF()), Neuron(LIF())), model, x)


@pytest.mark.crossval
def test_leaky_update_is_read_from_its_state_function_and_inputs_checked():
    torch, snn = _torch()
    from validation.crossval.snntorch_conv import from_snntorch, run_snntorch

    lif = _leaky(snn, 0.5, "subtract")
    lif.reset_mechanism = "zero"  # the attribute changes, the update Leaky runs does not
    with pytest.raises(ValueError, match="soft reset with lam=0.5"):
        from_snntorch(torch.nn.Sequential(lif), (1, 4, 4))
    with pytest.raises(ValueError, match=r"time-major .* got shape \(4, 4\)"):
        run_snntorch(torch.nn.Sequential(_leaky(snn, 0.5)), np.ones((4, 4)))


@pytest.mark.crossval
def test_dropout_loads_per_step_and_shared_dropout_does_not_export():
    """snnTorch calls ``nn.Dropout`` once per step: it loads as ``Dropout(p,
    shared_over_time=False)`` and exports back; a mask shared over time has no snnTorch form."""
    torch, snn = _torch()
    from evsnn.clock.conv import ConvNetwork, Dropout
    from evsnn.params import LIF
    from validation.crossval.snntorch_conv import from_snntorch, to_snntorch

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1, bias=False), torch.nn.Dropout(0.2),
                                _leaky(snn, 0.5)).eval()
    net, _ = from_snntorch(model, (1, 4, 4))
    d = net.layers[1]
    assert (type(d), d.p, d.shared_over_time) == (Dropout, 0.2, False)
    exported = to_snntorch(net)
    assert type(exported[1]) is torch.nn.Dropout and exported[1].p == 0.2
    shared = ConvNetwork([Conv2d(np.ones((1, 1, 1, 1))), Dropout(0.2), Neuron(LIF())], (1, 4, 4))
    with pytest.raises(ValueError, match=r"layers\[1\] is a Dropout shared over time"):
        to_snntorch(shared)
