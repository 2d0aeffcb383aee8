"""Every explicit backward pass of ``evsnn.grad`` against the reverse-mode tape
(``tests/reference/tape.py``), and ``bptt`` against central finite differences of a smooth
forward.

The networks are drawn by hypothesis: 1-3 dense layers, every neuron model (λ-LIF hard / soft
reset, IF, trace-LIF emitting spikes or the trace, DLIF; optionally a non-spiking readout last),
with or without bias, every convention choice that changes the forward (spike test ``>=`` / ``>``,
input in the same step or one step late, DLIF factor on the leak or on the input), T = 1..12.

Two kinds of parameters are drawn. *Dyadic* networks (weights, λ, θ, inputs, DLIF factors and
trace coefficients are short binary fractions) make every forward operation exact in both the
simulator and the tape, so exact threshold ties ``m == θ`` occur and the ``>=`` / ``>`` choice
is exercised. *Real* networks use arbitrary floats; a near tie (``|m − θ| < 1e-9``) could be
decided differently by the simulator's per-event sums and the tape's BLAS product, so those
examples are rejected (``assume``).

The backward pass is compared for a random upstream gradient ``g = dL/d(output)`` — on the tape
the loss is ``Σ g · output`` — so that the comparison isolates the backward pass (a saturated
softmax loss has gradients far below its own rounding, see ``test_loss_chain_vs_tape``).
Agreement is ``|explicit − tape| ≤ RTOL_TAPE · (|tape| + max|tape|)`` per array: relative
1e-10, with the array's scale as the floor for entries that are sums cancelling to ~0.
"""

import numpy as np
import pytest
from conftest import RTOL_FINITE_DIFF, RTOL_INDEPENDENT, RTOL_TAPE
from hypothesis import given, settings
from hypothesis import strategies as st
from reference.helpers import (
    assert_tape, cases, compare, example_count, no_near_ties, run_tape, tape_surrogate,
    tempbp_options,
)

from evsnn.clock import Dense, Network, simulate
from evsnn.clock.simulate import LayerRecord, SimulationResult
from evsnn.conventions import get_convention
from evsnn.decoders import decode
from evsnn.grad import (
    Sigmoid,
    Triangle,
    backward,
    cross_entropy,
    decoder_vjp,
    loss_and_grad,
    ttfs_loss,
)
from evsnn.params import IF, TraceLIF
from reference import tape as tp

surrogates = st.one_of(
    st.builds(Sigmoid, st.sampled_from([1.0, 2.5, 5.0]), st.sampled_from(["code", "paper"])),
    st.builds(Triangle, st.sampled_from([0.3, 0.7, 1.0, 2.0])),
)


# --------------------------------------------------------------------------- the comparisons
@settings(max_examples=example_count(80))
@given(cases(), surrogates, st.booleans())
def test_bptt_equals_tape(case, surrogate, detach):
    res, ref = run_tape(case, "bptt", surrogate=tape_surrogate(surrogate), detach_reset=detach)
    compare(case, res, ref, method="bptt", surrogate=surrogate, detach_reset=detach)


@settings(max_examples=example_count(40))
@given(cases(), st.sampled_from([Triangle(0.5), Triangle(1.0), Sigmoid(5.0, "code")]))
def test_hart_equals_prune_then_average_on_tape(case, surrogate):
    """HART Eq. 13-14 defined on the tape: m(t+1) = leak·stop(v(t)) + gain·I(t+1), then the
    identity node that averages ∂L/∂m over t."""
    res, ref = run_tape(case, "hart", surrogate=tape_surrogate(surrogate))
    compare(case, res, ref, method="hart", surrogate=surrogate)


@settings(max_examples=example_count(30))
@given(cases(kinds=("lif_hard", "lif_soft", "if", "trace_spike"), allow_readout=False,
             delays=(0,)), st.sampled_from([Triangle(0.5), Triangle(1.0)]))
def test_hart_precalculated_equals_tape(case, surrogate):
    """The pre-calculated HART backward, run from the forward's time sums
    (``simulate(..., record="time_sums")``, no per-step state), equals the prune-then-average
    definition on the tape whenever it applies: an upstream gradient constant in time (rate
    decoding) reaching every layer unchanged — no trace output, no input delay (the last step
    of a delayed layer sends no gradient down), no DLIF layer."""
    case = dict(case)
    case["g_out"] = np.broadcast_to(case["g_out"][:1], case["g_out"].shape).copy()
    _, ref = run_tape(case, "hart", surrogate=tape_surrogate(surrogate))
    sums = simulate(case["net"], case["seq"], convention=case["conv"], record="time_sums",
                    surrogate=surrogate)
    assert sums.layers is None  # nothing per step to run from
    compare(case, sums, ref, method="hart", surrogate=surrogate, precalculate=True)


@settings(max_examples=example_count(40))
@given(cases(), st.sampled_from(["rga", "bptr", "rate"]))
def test_rate_family_equals_tape(case, method):
    """RGA / BPTR / rate (HART Eq. 10) as the rate-approximation node on the tape."""
    res, ref = run_tape(case, method)
    compare(case, res, ref, method=method)


@settings(max_examples=example_count(60))
@given(cases(kinds=("trace_trace", "trace_spike")), tempbp_options())
def test_tempbp_equals_tape(case, opts):
    """Temp-BP (Ding 2025 Eq. 18-20) as straight-through spike-time terms on the tape, with
    every option."""
    res, ref = run_tape(case, "tempbp", **opts)
    if not isinstance(opts["kernel"], str) and not any(
            layer.neuron.kernel_args().emit_trace for layer in case["net"].layers):
        # no layer emits its trace: a kernel array would be read by none (nor by the tape),
        # so backward refuses it, and the comparison runs with the layers' own "trace"
        with pytest.raises(ValueError, match="no layer of this network emits its trace"):
            compare(case, res, ref, method="tempbp", **opts)
        opts = dict(opts, kernel="trace")
    compare(case, res, ref, method="tempbp", **opts)


def test_tempbp_tape_exercises_every_option():
    """A fixed case where every Temp-BP option acts, so the property above is not vacuous:
    changing any one changes the gradient, and each variant equals its tape. The second layer
    emits spikes: its silent low-trace neurons take the fallback gradient (the rule is about a
    neuron's trace, whatever the layer emits) and none with ``fallback=False``."""
    rng = np.random.default_rng(3)
    net = Network([Dense(rng.uniform(0.0, 0.8, (3, 4)),
                         TraceLIF(tau_mem_ms=4.0, tau_syn_ms=2.0, theta=0.5, output="trace")),
                   Dense(rng.standard_normal((2, 3)),
                         TraceLIF(tau_mem_ms=4.0, tau_syn_ms=2.0, theta=0.5, output="spike"))])
    seq = (rng.random((10, 2, 4)) < 0.5).astype(float)
    case = dict(net=net, seq=seq, conv=get_convention("DEFAULT"), dyadic=False, fixed=True,
                g_out=rng.standard_normal((10, 2, 2)))
    variants = {"default": {}, "intra": dict(intra=False), "clamp": dict(factor_clamp=1.0),
                "kernel": dict(kernel=(0.5, 0.25)), "off": dict(fallback=False),
                "level": dict(fallback_level=2.0), "rho": dict(fallback_rho=1.0),
                "scale": dict(fallback_scale="paper")}
    got = {}
    for name, opts in variants.items():
        res, ref = run_tape(case, "tempbp", **opts)
        got[name] = compare(case, res, ref, method="tempbp", **opts)
    for name in variants:
        if name != "default":
            assert not np.allclose(got[name].input, got["default"].input), name
    rec = simulate(net, seq, record=True).layers[1]
    silent_low = (rec.spikes == 0) & (rec.trace < 0.25 * 0.5)
    assert silent_low.any()
    assert np.all(got["default"].membrane[1][silent_low] != 0)
    assert np.all(got["off"].membrane[1][silent_low] == 0)


def test_tempbp_trace_kernel_is_the_layers_own_trace_kernel():
    """``kernel="trace"`` is c (1 − c)^k, c = Δt/τs (the authors' (1/τs)(1 − 1/τs)^k): given as
    an explicit array of T weights it gives the same gradient."""
    rng = np.random.default_rng(4)
    neuron = TraceLIF(tau_mem_ms=5.0, tau_syn_ms=4.0, theta=0.4, output="trace")
    net = Network([Dense(rng.uniform(0.0, 0.9, (3, 4)), neuron),
                   Dense(rng.uniform(-0.5, 1.0, (2, 3)), neuron)])
    seq = (rng.random((9, 2, 4)) < 0.5).astype(float)
    res = simulate(net, seq, record=True)
    g = rng.standard_normal(res.output.shape)
    c = neuron.trace_coef
    a = backward(net, seq, res, g, method="tempbp")
    b = backward(net, seq, res, g, method="tempbp", kernel=c * (1 - c) ** np.arange(9))
    assert_tape(b.input, a.input, "explicit kernel c(1 - c)^k vs 'trace'")
    for wb, wa in zip(b.weights, a.weights):
        assert_tape(wb, wa, "explicit kernel c(1 - c)^k vs 'trace'")


def test_dyadic_cases_hit_exact_ties_under_both_spike_tests():
    """The dyadic generator produces membranes exactly at θ, and there ``>=`` and ``>`` differ,
    so the spike-test convention is exercised by the properties above."""
    net = Network([Dense([[0.5, 0.5]], IF(theta=1.0))])
    seq = np.ones((3, 1, 2))
    # IF, soft reset, I = 1 per step: ">=": m = 1, 1, 1 (reset to 0 each time), all spike;
    # ">": m = 1 (no spike), 2 (spike, v = 1), 2 (spike)
    for test, expect in ((">=", [1, 1, 1]), (">", [0, 1, 1])):
        conv = get_convention("DEFAULT").with_(spike_test=test)
        case = dict(net=net, seq=seq, conv=conv, dyadic=True, g_out=np.ones((3, 1, 1)))
        res, ref = run_tape(case, "bptt", surrogate=("sigmoid", 5.0, 5.0))
        assert res.output[:, 0, 0].tolist() == expect
        compare(case, res, ref, method="bptt", surrogate=Sigmoid(5.0, "code"))


# --------------------------------------------------------------------------- losses and decoders
@settings(max_examples=example_count(30))
@given(cases(T=(1, 8)), st.sampled_from(["rate", "membrane", "ttfs"]),
       st.sampled_from(["ce", "double_softmax", "scaled_ce"]))
def test_loss_chain_vs_tape(case, decoder, loss_name):
    """decode → loss → decoder_vjp → bptt against the tape's decoders and losses.

    Compared relative to the gradient's own scale plus the rounding of the loss gradient: a
    saturated softmax has ``p − 1`` with an absolute error ~1e-16 / B while its gradient can be
    far smaller, so there the loss gradient is only known to that absolute accuracy.
    """
    if decoder != "ttfs" and loss_name != "ce":
        loss_name = "ce"
    net, seq, conv = case["net"], case["seq"], case["conv"]
    B = seq.shape[1]
    labels = case["rng"].integers(0, net.n_out, B)
    res, _ = run_tape(case, "bptt", surrogate=("sigmoid", 5.0, 5.0))
    scores = decode(res.output, decoder)
    if loss_name == "ce":
        value, g_scores = cross_entropy(scores, labels)
    else:
        value, g_scores = ttfs_loss(scores, labels, loss_name)
    got = backward(net, seq, res, decoder_vjp(decoder, g_scores, res.output), method="bptt",
                   surrogate=Sigmoid(5.0, "code"))
    x = tp.leaf(seq)
    W = [tp.leaf(layer.weight) for layer in net.layers]
    b = [None if layer.bias is None else tp.const(layer.bias) for layer in net.layers]
    a = [None if layer.dlif_factors is None else tp.const(layer.dlif_factors)
         for layer in net.layers]
    out, _ = tp.build_network(net, x, W, b, a, conv, mode="bptt", surrogate=("sigmoid", 5.0, 5.0))
    sc = tp.decode(out, decoder)
    np.testing.assert_allclose(sc.value, scores, rtol=RTOL_INDEPENDENT, atol=RTOL_INDEPENDENT)
    lt = {"ce": tp.cross_entropy, "double_softmax": tp.ttfs_double_softmax,
          "scaled_ce": tp.ttfs_scaled_ce}[loss_name](sc, labels)
    assert value == pytest.approx(float(lt.value), rel=1e-12, abs=1e-15)
    want = tp.grad(lt, [x] + W)
    # the tape's gradient of the loss w.r.t. its scores, to size the rounding floor
    g_sc = tp.grad(lt, [sc])[0]
    np.testing.assert_allclose(g_scores, g_sc, rtol=1e-9, atol=1e-15)
    for g, w in zip([got.input] + got.weights, want):
        scale = np.max(np.abs(w)) if w.size else 0.0
        np.testing.assert_allclose(g, w, rtol=RTOL_TAPE, atol=RTOL_TAPE * scale + 1e-13)


@settings(max_examples=example_count(30))
@given(cases(T=(1, 8), delays=(0,)), st.sampled_from(["current", "rsc_fixed", "rsc_fresh"]),
       st.sampled_from(["bptt", "hart"]))
def test_image_gradient_through_exact_encoders_vs_tape(case, encoder, method):
    """``loss_and_grad`` with current and RSC coding (exact input-gradient rules, RSC through
    the clamp) against the tape with the encoder itself on the tape: the image is the leaf,
    ``I[t] = x`` or ``clamp(x + σ ε, 0, 1)`` with the encoder's own draws."""
    net, conv, rng = case["net"], case["conv"], case["rng"]
    B = case["seq"].shape[1]
    T = case["seq"].shape[0]
    x = rng.random((B, net.n_in))
    labels = rng.integers(0, net.n_out, B)
    seed = int(rng.integers(0, 2**32))
    sigma = 0.4
    sur = Sigmoid(5.0, "code") if method == "bptt" else Triangle(1.0)
    r = loss_and_grad(net, x, labels, T=T, encoder=encoder, convention=conv, method=method,
                      rng=seed, sigma=sigma if encoder != "current" else None, surrogate=sur)
    xv = tp.leaf(x)
    if encoder == "current":
        seq = tp.stack([xv] * T)
    else:
        noise_rng = np.random.default_rng(seed)  # the encoder's draws, in its order
        shape = x.shape if encoder == "rsc_fixed" else (T,) + x.shape
        eps = sigma * noise_rng.standard_normal(shape)
        if encoder == "rsc_fixed":
            seq = tp.stack([tp.clip01(tp.add(xv, eps))] * T)
        else:
            seq = tp.stack([tp.clip01(tp.add(xv, eps[t])) for t in range(T)])
    np.testing.assert_array_equal(seq.value, r.sequence)  # the same encoded input
    W = [tp.const(layer.weight) for layer in net.layers]
    b = [None if layer.bias is None else tp.const(layer.bias) for layer in net.layers]
    a = [None if layer.dlif_factors is None else tp.const(layer.dlif_factors)
         for layer in net.layers]
    no_near_ties(net, r.sequence, conv)
    opts = dict(surrogate=tape_surrogate(sur))
    out, _ = tp.build_network(net, seq, W, b, a, conv, mode=method, **opts)
    loss = tp.cross_entropy(tp.decode(out, "rate"), labels)
    assert r.loss == pytest.approx(float(loss.value), rel=1e-12)
    want = tp.grad(loss, [xv])[0]
    # as in test_loss_chain_vs_tape: a saturated softmax fixes its gradient only to ~1e-16
    np.testing.assert_allclose(r.image, want, rtol=RTOL_TAPE,
                               atol=RTOL_TAPE * np.max(np.abs(want)) + 1e-13)


# --------------------------------------------------------------------------- finite differences
def _smooth_record(net, seq, conv, rho):
    """Forward with every spike replaced by σ(ρ(m − θ)) (tape values), as a SimulationResult."""
    out, recs = tp.build_network(net, tp.const(seq), [tp.const(l.weight) for l in net.layers],
                                 [None if l.bias is None else tp.const(l.bias) for l in net.layers],
                                 [None if l.dlif_factors is None else tp.const(l.dlif_factors)
                                  for l in net.layers], conv, mode="smooth", smooth_rho=rho)
    return out, recs


@settings(max_examples=example_count(10))
@given(cases(n_layers=(1, 2), T=(1, 6)), st.sampled_from([1.0, 3.0]), st.booleans())
def test_bptt_on_smooth_forward_matches_finite_differences(case, rho, detach):
    """With σ(ρ(m − θ)) as the spike in the forward, ``bptt`` with ``Sigmoid(ρ, "code")`` is the
    exact gradient (without ``detach_reset``): checked by central differences (h = 1e-6) on the
    input, every weight, bias and DLIF factor. With ``detach_reset`` it is the exact gradient
    of the same forward with the reset's spike held constant — the tape checks that, and the
    tape itself is checked against the same differences."""
    net, seq, conv, g_out = case["net"], case["seq"], case["conv"], case["g_out"]
    out, recs = _smooth_record(net, seq, conv, rho)
    layers = []
    for layer, r in zip(net.layers, recs):
        if not layer.spiking:
            o = r["m"]
        elif r["trace"] is not None and layer.neuron.output == "trace":
            o = r["trace"]
        else:
            o = r["s"]
        spiking = layer.spiking
        layers.append(LayerRecord(
            current=r["current"], m=r["m"], v=r["v"] if spiking else r["m"],
            spikes=r["s"] if spiking else None, trace=r["trace"] if spiking else None, output=o,
        ))
    res = SimulationResult(output=layers[-1].output, layers=tuple(layers), convention=conv)
    got = backward(net, seq, res, g_out, method="bptt", surrogate=Sigmoid(rho, "code"),
                   detach_reset=detach)

    # tape gradient of the smooth forward (with the same detach option)
    x = tp.leaf(seq)
    W = [tp.leaf(l.weight) for l in net.layers]
    b = [None if l.bias is None else tp.leaf(l.bias) for l in net.layers]
    a = [None if l.dlif_factors is None else tp.leaf(l.dlif_factors) for l in net.layers]
    o, _ = tp.build_network(net, x, W, b, a, conv, mode="smooth", smooth_rho=rho,
                            detach_reset=detach)
    loss = tp.total(tp.mul(tp.stack(o), g_out))
    tg, tm = tp.grad(loss, [x] + W), tp.grad(loss, [x] + W, magnitudes=True)
    for g, w, m in zip([got.input] + got.weights, tg, tm):
        assert_tape(g, w, "explicit bptt vs tape on the smooth forward", m)

    if detach:
        return

    def loss(seq_, net_):
        o, _ = _smooth_record(net_, seq_, conv, rho)
        return float(np.sum(np.stack([v.value for v in o]) * g_out))

    h = 1e-6

    def check(analytic, perturb, shape):
        num = np.zeros(shape)
        for idx in np.ndindex(shape):
            num[idx] = (perturb(idx, h) - perturb(idx, -h)) / (2 * h)
        scale = np.max(np.abs(num)) if num.size else 0.0
        np.testing.assert_allclose(analytic, num, rtol=RTOL_FINITE_DIFF,
                                   atol=RTOL_FINITE_DIFF * scale + 1e-9)

    def seq_pert(idx, d):
        s = seq.copy()
        s[idx] += d
        return loss(s, net)

    check(got.input, seq_pert, seq.shape)
    check(tg[0], seq_pert, seq.shape)
    for k, layer in enumerate(net.layers):
        def w_pert(idx, d, k=k):
            w = layer.weight.copy()
            w[idx] += d
            return loss(seq, Network(tuple(l.replace(weight=w) if j == k else l
                                           for j, l in enumerate(net.layers))))
        check(got.weights[k], w_pert, layer.weight.shape)
        if layer.bias is not None:
            def b_pert(idx, d, k=k):
                bb = layer.bias.copy()
                bb[idx] += d
                return loss(seq, Network(tuple(l.replace(bias=bb) if j == k else l
                                               for j, l in enumerate(net.layers))))
            check(got.biases[k], b_pert, layer.bias.shape)
        if layer.dlif_factors is not None:
            def a_pert(idx, d, k=k):
                aa = layer.dlif_factors.copy()
                aa[idx] += d
                return loss(seq, Network(tuple(l.replace(dlif_factors=aa) if j == k else l
                                               for j, l in enumerate(net.layers))))
            check(got.dlif_factors[k], a_pert, layer.dlif_factors.shape)


def test_tape_primitives_match_finite_differences():
    """The tape's own primitives (matrix product, take/stack, exp, sigmoid, log-softmax, pick,
    max, broadcasting products) against central differences on a composite function."""
    rng = np.random.default_rng(0)
    X0, W0 = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 4))
    c0 = rng.standard_normal(())

    def f(X, Wm, c, build=False):
        Xv, Wv, cv = (tp.leaf(X), tp.leaf(Wm), tp.leaf(c))
        steps = [tp.sigmoid(tp.linear(tp.take(Xv, t), Wv)) for t in range(3)]
        z = tp.add(tp.mul(cv, tp.total(tp.stack(steps), axis=0)),
                   tp.max_first(tp.stack(steps), axis=0))
        z = tp.sub(z, tp.scale(tp.exp(tp.linear(tp.take(Xv, 1), Wv)), 0.3))
        loss = tp.add(tp.cross_entropy(z, np.array([0, 2])), tp.ttfs_scaled_ce(z, np.array([1, 1])))
        return (loss, [Xv, Wv, cv]) if build else float(loss.value)

    loss, leaves = f(X0, W0, c0, build=True)
    grads = tp.grad(loss, leaves)
    for k, base in enumerate((X0, W0, c0)):
        num = np.zeros(np.shape(base))
        for idx in np.ndindex(np.shape(base)):
            args = [X0.copy(), W0.copy(), np.array(c0)]
            args[k][idx] += 1e-6
            up = f(*args)
            args[k][idx] -= 2e-6
            num[idx] = (up - f(*args)) / 2e-6
        np.testing.assert_allclose(grads[k], num, rtol=RTOL_FINITE_DIFF, atol=1e-10)
