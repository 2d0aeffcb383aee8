"""Every gradient method of ``evsnn.grad.conv.backward_conv`` against the reverse-mode tape with
the convolutional forward rebuilt on it (``tests/reference/conv_tape.py``).

Networks are drawn by hypothesis from two families: a sequential one (Conv2d with stride,
padding, groups and an optional bias → optional BatchNorm2d → neurons → optional average or max
pooling → Flatten → Linear → neurons or a readout) and a residual one (a convolutional stem,
then one spiking basic block or SEW block — ADD, AND or IAND — with or without a strided 1×1
downsample, Flatten, Linear, readout). Every neuron model (λ-LIF hard / soft, IF, DLIF,
trace-LIF emitting spikes or the trace), an ``input_scale`` of 1 or 0.5, spike test ``>=`` /
``>``, DLIF factor on the leak or on the input, and — sequential networks only — the one-step
input delay. As in ``test_grad_vs_tape``, *dyadic* parameters make every forward operation exact
(batch norm with σ² + ε = 1, 2×2 average pooling), so exact threshold ties occur; real-valued
examples with a membrane within 1e-9 of θ are rejected.

The backward is compared for a random upstream gradient ``g`` (loss ``Σ g · output``) with the
tolerance of the dense comparison (``RTOL_TAPE`` relative to each array's scale).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evsnn.clock.conv import (
    AvgPool2d, BatchNorm2d, Conv2d, ConvNetwork, Flatten, Linear, MaxPool2d, Neuron, basic_block,
    sew_block, simulate_conv,
)
from evsnn.conventions import get_convention
from evsnn.grad import Sigmoid, Triangle
from evsnn.grad.conv import backward_conv
from evsnn.params import DLIF, IF, LIF, Readout, TraceLIF
from reference.helpers import check, example_count, tempbp_options

KINDS = ("lif_hard", "lif_soft", "if", "trace_trace", "trace_spike", "dlif")


@st.composite
def cases(draw, kinds=KINDS, T=(1, 5)):
    dyadic = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    T_ = draw(st.integers(*T))
    B = draw(st.integers(1, 2))
    residual = draw(st.booleans())
    conv = get_convention("DEFAULT").with_(
        spike_test=draw(st.sampled_from([">=", ">"])),
        input_delay=0 if residual else draw(st.sampled_from([0, 1])),
        dlif_factor=draw(st.sampled_from(["leak", "input"])),
        rate_mean=draw(st.sampled_from(["sample", "batch"])),
        rate_steps=draw(st.sampled_from(["mean", "each"])),
    )

    def num(lo, hi, q=0.125):
        if dyadic:
            return float(rng.integers(round(lo / q), round(hi / q) + 1) * q)
        return float(rng.uniform(lo, hi))

    def arr(shape, lo, hi):
        return np.array([num(lo, hi) for _ in range(int(np.prod(shape)))]).reshape(shape)

    def neuron(readout=False):
        if readout:
            return Neuron(Readout(lam=float(rng.choice([0.5, 1.0])), v_init=num(-0.5, 0.5)))
        kind = draw(st.sampled_from(kinds))
        theta = float(rng.choice([0.5, 1.0])) if dyadic else float(rng.uniform(0.3, 1.2))
        lam = float(rng.choice([0.0, 0.5, 0.75, 1.0])) if dyadic else float(rng.uniform(0, 1))
        v_rest, v_init = num(-0.25, 0.25), num(-0.5, 0.5)
        scale = float(draw(st.sampled_from([1.0, 0.5])))
        factors = None
        if kind in ("lif_hard", "lif_soft"):
            nrn = LIF(lam=lam, theta=theta, reset=kind[4:], v_rest=v_rest, v_init=v_init)
        elif kind == "if":
            nrn = IF(theta=theta, v_init=v_init)
        elif kind == "dlif":
            nrn = DLIF(lam=lam, theta=theta, reset=draw(st.sampled_from(["hard", "soft"])),
                       v_rest=v_rest, v_init=v_init)
            factors = np.array([num(0.5, 1.5, 0.25) for _ in range(T_ + 1)])
        else:
            taus = [1.0, 2.0, 4.0]
            tm = float(rng.choice(taus)) if dyadic else float(rng.uniform(1, 8))
            ts = float(rng.choice(taus)) if dyadic else float(rng.uniform(1, 8))
            nrn = TraceLIF(tau_mem_ms=tm, tau_syn_ms=ts, theta=theta, u0=v_rest, v_init=v_init,
                           output=kind[6:])
        return Neuron(nrn, dlif_factors=factors, input_scale=scale)

    def bn(c):
        eps = 0.25
        var = np.full(c, 1.0 - eps) if dyadic else rng.uniform(0.5, 1.5, c)
        return BatchNorm2d(arr(c, -0.25, 0.25), var, weight=arr(c, 0.5, 1.5),
                           bias=arr(c, -0.25, 0.25), eps=eps)

    c_in = draw(st.integers(1, 2))
    H, W = draw(st.integers(4, 5)), draw(st.integers(4, 5))
    if not residual:
        groups = draw(st.sampled_from([1, 2])) if c_in == 2 else 1
        c_mid = 2 * draw(st.integers(1, 2))
        k = draw(st.sampled_from([1, 2, 3]))
        conv1 = Conv2d(arr((c_mid, c_in // groups, k, k), -1.5, 1.5) * 1.5,
                       stride=draw(st.sampled_from([1, 2])), padding=draw(st.integers(0, k // 2)),
                       groups=groups,
                       bias=arr(c_mid, -0.25, 0.25) if draw(st.booleans()) else None)
        layers = [conv1] + ([bn(c_mid)] if draw(st.booleans()) else []) + [neuron()]
        pool = draw(st.sampled_from(["none", "avg", "max"]))
        if pool != "none" and min(conv1.out_shape((c_in, H, W))[1:]) >= 2:
            cls = AvgPool2d if pool == "avg" else MaxPool2d
            layers.append(cls(2, stride=draw(st.sampled_from([1, 2]))))
    else:
        c_mid = 2
        layers = [Conv2d(arr((c_mid, c_in, 3, 3), -1.5, 1.5), padding=1), neuron()]
        connection = draw(st.sampled_from(["standard", "ADD", "AND", "IAND"]))
        c_out = draw(st.sampled_from([2, 3]))
        stride = draw(st.sampled_from([1, 2]))
        c1 = Conv2d(arr((c_out, c_mid, 3, 3), -1.5, 1.5) * 1.5, stride=stride, padding=1)
        c2 = Conv2d(arr((c_out, c_out, 3, 3), -1.5, 1.5) * 1.5, padding=1)
        down = ()
        if stride != 1 or c_out != c_mid:
            down = (Conv2d(arr((c_out, c_mid, 1, 1), -1.5, 1.5), stride=stride),)
        nrn = neuron()
        if connection == "standard":
            block = basic_block(c1, c2, nrn, bn2=bn(c_out) if draw(st.booleans()) else None,
                                downsample=down)
        else:
            block = sew_block(c1, c2, nrn, downsample=down + ((neuron(),) if down else ()),
                              connection=connection)
        layers.append(block)
    layers.append(Flatten())
    n_flat = ConvNetwork(layers, input_shape=(c_in, H, W)).output_shape[0]
    n_out = draw(st.integers(2, 3))
    layers += [Linear(arr((n_out, n_flat), -1.5, 1.5),
                      bias=arr(n_out, -0.25, 0.25) if draw(st.booleans()) else None),
               neuron(readout=residual or draw(st.booleans()))]
    net = ConvNetwork(layers, input_shape=(c_in, H, W))
    if draw(st.booleans()):
        seq = (rng.random((T_, B, c_in, H, W)) < 0.6).astype(np.float64)
    else:
        seq = arr((T_, B, c_in, H, W), 0, 1)
    g_out = rng.standard_normal((T_, B, n_out))
    return dict(net=net, seq=seq, conv=conv, g_out=g_out, dyadic=dyadic)


surrogates = st.one_of(
    st.builds(Sigmoid, st.sampled_from([1.0, 5.0]), st.sampled_from(["code", "paper"])),
    st.builds(Triangle, st.sampled_from([0.5, 1.0, 2.0])),
)


@settings(max_examples=example_count(40), deadline=None)
@given(cases(), surrogates, st.booleans())
def test_bptt_equals_tape(case, surrogate, detach):
    check(case, "bptt", surrogate=surrogate, detach_reset=detach)


@settings(max_examples=example_count(25), deadline=None)
@given(cases(), st.sampled_from([Triangle(1.0), Sigmoid(5.0, "code")]))
def test_hart_equals_prune_then_average_on_tape(case, surrogate):
    check(case, "hart", surrogate=surrogate)


@settings(max_examples=example_count(25), deadline=None)
@given(cases(), st.sampled_from(["rga", "bptr", "rate"]))
def test_rate_family_equals_tape(case, method):
    """The rate family's per-sample statistics (HART Eq. 10) run over the whole feature map."""
    check(case, method)


@settings(max_examples=example_count(30), deadline=None)
@given(cases(kinds=("trace_trace", "trace_spike")), tempbp_options())
def test_tempbp_equals_tape(case, opts):
    """Every Temp-BP option (the strategy of the dense comparison)."""
    net = case["net"]
    if not isinstance(opts["kernel"], str) and not any(
            layer.neuron.kernel_args().emit_trace for _, layer in net.neuron_layers()):
        # no layer emits its trace: a kernel array would be read by none (nor by the tape), so
        # backward_conv refuses it, and the comparison runs with the layers' own "trace"
        res = simulate_conv(net, case["seq"], convention=case["conv"], record=True)
        with pytest.raises(ValueError, match="no layer of this network emits its trace"):
            backward_conv(net, case["seq"], res, case["g_out"], method="tempbp", **opts)
        opts = dict(opts, kernel="trace")
    check(case, "tempbp", **opts)


def test_methods_differ_on_a_fixed_residual_network():
    """The methods are not one rule under different names: on one SEW network every pair of
    methods gives a different input gradient, and each equals its tape."""
    rng = np.random.default_rng(5)
    nrn = Neuron(LIF(lam=0.8, theta=0.5, reset="soft"))
    block = sew_block(Conv2d(rng.uniform(-1, 1.5, (2, 2, 3, 3)), padding=1),
                      Conv2d(rng.uniform(-1, 1.5, (2, 2, 3, 3)), padding=1), nrn)
    net = ConvNetwork([Conv2d(rng.uniform(-0.5, 1.5, (2, 1, 3, 3)), padding=1), nrn, block,
                       Flatten(), Linear(rng.standard_normal((3, 32))), Neuron(Readout(0.9))],
                      input_shape=(1, 4, 4))
    case = dict(net=net, seq=(rng.random((5, 2, 1, 4, 4)) < 0.5).astype(float),
                conv=get_convention("DEFAULT"), g_out=rng.standard_normal((5, 2, 3)),
                dyadic=True)
    grads = {m: check(case, m).input for m in ("bptt", "hart", "rga", "bptr", "rate")}
    names = list(grads)
    for i, a in enumerate(names):
        assert np.abs(grads[a]).max() > 0, a
        for b in names[i + 1:]:
            assert not np.allclose(grads[a], grads[b]), (a, b)
