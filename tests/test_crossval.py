"""The cross-validation harness must find real differences: deliberate faults in a wrapped
backend are reported as real mismatches, while a faithful float32 backend shows ties only."""

import numpy as np
import pytest

from evsnn.clock import Dense, Network, simulate
from evsnn.conventions import get_convention
from evsnn.grad import Sigmoid, backward
from evsnn.params import LIF, TraceLIF
from validation.crossval import BackendRun, FunctionBackend, compare

CONV = get_convention("HART_CODE")


def _network(rng, dyadic=False):
    def w(shape):
        if dyadic:  # weights on a 1/4 grid and θ = 1: membranes hit θ exactly, often
            return rng.integers(-2, 5, shape) / 4.0
        return rng.normal(0, 1, shape) * 0.6

    return Network([
        Dense(w((40, 60)), LIF(lam=1.0 if dyadic else 0.9, theta=1.0, reset="hard")),
        Dense(w((10, 40)), LIF(lam=1.0 if dyadic else 0.8, theta=1.0, reset="soft")),
    ])


def _inputs(rng, T=12, B=8, n=60):
    return (rng.random((T, B, n)) < 0.3).astype(float)


def _evsnn_backend(name, *, dtype=np.float64, conv=CONV, net_fn=None, post=None):
    def run(network, inputs, convention):
        net = net_fn(network) if net_fn else network
        res = simulate(net, inputs.astype(dtype), convention=conv, record=True, dtype=dtype)
        spikes = [r.spikes for r in res.layers]
        ms = [r.m for r in res.layers]
        if post:
            spikes = post(spikes)
        return BackendRun(spikes, ms)

    return FunctionBackend(name, run, dtype=dtype)


def _shift(spikes):
    out = []
    for s in spikes:
        z = np.zeros_like(s)
        z[1:] = s[:-1]
        out.append(z)
    return out


def _swap_reset(network):
    flip = {"hard": "soft", "soft": "hard"}
    return Network(tuple(l.replace(neuron=LIF(lam=l.neuron.lam, theta=l.neuron.theta,
                                              reset=flip[l.neuron.reset])) for l in network.layers))


def _float32_leak(network):
    return Network(tuple(
        l.replace(neuron=LIF(lam=float(np.float32(l.neuron.lam)), theta=l.neuron.theta,
                             reset=l.neuron.reset))
        for l in network.layers
    ))


def test_identical_backend_has_no_difference():
    rng = np.random.default_rng(0)
    net, x = _network(rng), _inputs(rng)
    rep = compare(net, x, _evsnn_backend("self"), convention=CONV)
    assert rep.faithful and rep.ties == 0
    assert all(lc.max_membrane_error == 0 for lc in rep.layers)


def test_faithful_float32_backend_shows_ties_only():
    rng = np.random.default_rng(1)
    total_ties = 0
    for _ in range(5):
        net, x = _network(rng), _inputs(rng, T=20, B=16)
        rep = compare(net, x, _evsnn_backend("f32", dtype=np.float32), convention=CONV)
        assert rep.faithful, rep.layers
        # float32 rounds each of ~60 additions per step and the leak at ≤ 6e-8 of |m| ≤ ~10,
        # over 20 steps: a worst case of ~5e-5
        assert max(lc.max_membrane_error for lc in rep.layers) < 1e-4
        total_ties += rep.ties


def test_rounding_decided_spike_is_a_tie():
    # IF neuron, weight 0.1, one input spike per step, θ = 1: after 10 steps float64 holds
    # 0.9999999999999999 (no spike) while float32 holds 1.0000001 (spike): rounding decides.
    net = Network([Dense(np.array([[0.1]]), LIF(lam=1.0, theta=1.0, reset="hard"))])
    x = np.ones((10, 1, 1))
    assert simulate(net, x).output.sum() == 0
    assert simulate(net, x, dtype=np.float32).output.sum() == 1
    rep = compare(net, x, _evsnn_backend("f32", dtype=np.float32), convention=CONV)
    assert rep.ties == 1 and rep.real_mismatches == 0 and rep.faithful
    # the same flip in a backend that claims float64 is a real mismatch
    def flip(s):
        return [np.ones_like(s[0]) * (np.arange(10) == 9)[:, None, None]]

    rep64 = compare(net, x, _evsnn_backend("claims64", dtype=np.float64,
                                           net_fn=lambda n: n, post=flip),
                    convention=CONV)
    assert rep64.real_mismatches == 1


@pytest.mark.parametrize("fault", ["time_shift", "swapped_reset", "float32_leak"])
def test_seeded_faults_are_real_mismatches(fault):
    rng = np.random.default_rng(2)
    net, x = _network(rng), _inputs(rng)
    backend = {
        "time_shift": _evsnn_backend("shift", post=_shift),
        "swapped_reset": _evsnn_backend("reset", net_fn=_swap_reset),
        "float32_leak": _evsnn_backend("leak32", net_fn=_float32_leak),
    }[fault]
    rep = compare(net, x, backend, convention=CONV)
    assert not rep.faithful
    if fault == "float32_leak":
        # λ = float32(0.9) perturbs membranes by ~1e-8 relative: few spikes flip, but the membrane
        # error is far above the float64 tolerance — a real difference in the dynamics
        assert rep.membrane_mismatches > 0
        assert rep.layers[0].max_membrane_error > 1e3 * rep.layers[0].membrane_tolerance
    else:
        assert rep.real_mismatches > 0
        assert rep.layers[0].first_real is not None or rep.layers[1].first_real is not None


def test_spike_test_fault_is_real_not_tie():
    rng = np.random.default_rng(3)
    net, x = _network(rng, dyadic=True), _inputs(rng)
    strict = _evsnn_backend("strict", conv=CONV.with_(spike_test=">"))
    rep = compare(net, x, strict, convention=CONV)
    assert rep.real_mismatches > 0 and rep.ties == 0
    lc = next(lc for lc in rep.layers if lc.first_real)
    assert (lc.first_real["reference_membrane"] == lc.first_real["theta"]
            == lc.first_real["backend_membrane"])


def test_trace_layers_are_isolated_and_gradients_compared():
    rng = np.random.default_rng(4)
    net = Network([Dense(rng.normal(0, 1, (8, 10)),
                         TraceLIF(tau_mem_ms=4, tau_syn_ms=2, theta=0.5)),
                   Dense(rng.normal(0, 1, (3, 8)), TraceLIF(tau_mem_ms=4, tau_syn_ms=2, theta=0.5,
                                                            output="spike"))])
    x = _inputs(rng, n=10)

    def grads(network, inputs, g_out, surrogate, convention):
        res = simulate(network, inputs, convention=convention, record=True)
        g = backward(network, inputs, res, g_out, method="bptt", surrogate=surrogate)
        return g.input, g.weights

    def run(network, inputs, convention):
        res = simulate(network, inputs, convention=convention, record=True)
        return BackendRun([r.spikes for r in res.layers], [r.m for r in res.layers])

    rep = compare(net, x, FunctionBackend("self", run, grad_fn=grads), convention=CONV,
                  surrogate=Sigmoid(5.0), rng=0)
    assert rep.faithful and rep.ties == 0
    assert rep.gradient["input_cosine"] == pytest.approx(1.0)
    assert rep.gradient["input_max_rel_error"] == 0


def test_compare_errors():
    rng = np.random.default_rng(0)
    net, x = _network(rng), _inputs(rng)
    with pytest.raises(TypeError, match="network must be an evsnn Network"):
        compare("net", x, _evsnn_backend("s"))
    with pytest.raises(TypeError, match="backend must have a 'run' attribute"):
        compare(net, x, type("NoRun", (), {"name": "x", "dtype": np.float64})())
    with pytest.raises(ValueError, match="backend.dtype=float16 is not supported"):
        compare(net, x, FunctionBackend("h", None, dtype=np.float16))
    one = FunctionBackend("one", lambda n, i, c: BackendRun([np.zeros((12, 8, 40))]))
    with pytest.raises(ValueError, match="returned 1 layers of spikes; the network has 2"):
        compare(net, x, one)
    bad = FunctionBackend("bad", lambda n, i, c: BackendRun([np.zeros((2, 2, 2))] * 2))
    with pytest.raises(ValueError, match=r"backend layer 0 spikes have shape \(2, 2, 2\)"):
        compare(net, x, bad)
    rep = compare(net, x, _evsnn_backend("s"), surrogate=Sigmoid(5.0))
    assert rep.gradient == {"skipped": "backend 's' offers no gradients"}


def test_a_backend_answer_that_cannot_be_compared_is_refused_regression():
    """Review (/tmp/rev_xval/): a NaN membrane made the layer's membrane error NaN, which
    passed the tolerance and hid every other membrane error (faithful=True); a backend
    returning fewer weight gradients had them compared by zip (an empty list looked clean);
    membranes of another shape broadcast; spikes of 2.0 were accepted and blamed the next layer."""
    rng = np.random.default_rng(0)
    net, x = _network(rng), _inputs(rng)

    def answered(spikes=None, membranes=None):
        def run(network, inputs, convention):
            res = simulate(network, inputs, convention=convention, record=True)
            s = [r.spikes for r in res.layers] if spikes is None else spikes(res)
            m = [r.m for r in res.layers] if membranes is None else membranes(res)
            return BackendRun(s, m)
        return run

    def nan_first_step(res):
        ms = [r.m.copy() for r in res.layers]
        ms[0][0] = np.nan
        ms[0][1:] += 0.3  # the real error the NaN hid
        return ms

    for name, run, match in (
        ("nan", answered(membranes=nan_first_step),
         r"backend layer 0 membranes hold NaN or infinite values"),
        ("flat", answered(membranes=lambda res: [r.m[0] for r in res.layers]),
         r"backend layer 0 membranes have shape \(8, 40\), expected \(12, 8, 40\)"),
        ("short", answered(membranes=lambda res: [res.layers[0].m]),
         r"returned 1 layers of membranes and 2 of spikes"),
        ("twos", answered(spikes=lambda res: [2 * r.spikes for r in res.layers]),
         r"backend layer 0 spikes hold values other than 0 and 1"),
    ):
        with pytest.raises(ValueError, match=match):
            compare(net, x, FunctionBackend(name, run), convention=CONV)

    def grads(drop=0, transpose=False, nan=False):
        def fn(network, inputs, g_out, surrogate, convention):
            res = simulate(network, inputs, convention=convention, record=True)
            g = backward(network, inputs, res, g_out, method="bptt", surrogate=surrogate)
            gw = [w.T if transpose else w for w in g.weights][: len(g.weights) - drop]
            return (np.full_like(g.input, np.nan) if nan else g.input), gw
        return fn

    def no_input_grad(network, inputs, g_out, surrogate, convention):
        return None, grads()(network, inputs, g_out, surrogate, convention)[1]

    with pytest.raises(ValueError, match=r"input gradient has shape None, expected"):
        compare(net, x, FunctionBackend("g", answered(), grad_fn=no_input_grad),
                convention=CONV, surrogate=Sigmoid(5.0), rng=0)
    for kw, match in (({"drop": 2}, r"returned 0 weight gradients; the network has 2 layers"),
                      ({"transpose": True}, r"weight gradient 0 has shape \(60, 40\), expected "
                                            r"\(40, 60\)"),
                      ({"nan": True}, r"input gradient holds NaN or infinite values")):
        with pytest.raises(ValueError, match=match):
            compare(net, x, FunctionBackend("g", answered(), grad_fn=grads(**kw)),
                    convention=CONV, surrogate=Sigmoid(5.0), rng=0)
    rep = compare(net, x, FunctionBackend("g", answered(), grad_fn=grads()), convention=CONV,
                  surrogate=Sigmoid(5.0), rng=0)
    assert rep.faithful and rep.gradient["input_max_rel_error"] == 0


def test_a_flip_the_backends_accumulated_rounding_explains_is_a_tie():
    """A float32 IF layer: evsnn's membrane 1.03e-5 below θ, the backend's 2.4e-7 above (it
    spiked), while the layer's membranes reach 66, so they agree within the membrane tolerance
    (6.6e-4). The flip was counted real against a window of 1e-5; a deviation beyond the
    tolerance stays real."""
    from validation.crossval.core import _classify_layer

    ref_m = np.array([[[1 - 1.03e-5, 66.0]]])
    ref_s = np.array([[[0.0, 1.0]]])
    b_s = np.array([[[1.0, 1.0]]])
    dist = lambda a, b: 0.0  # noqa: E731
    lc = _classify_layer(0, ref_s, ref_m, b_s, np.array([[[1 + 2.4e-7, 66.0]]]), 1.0, 1e-5, dist)
    assert (lc.ties, lc.real, lc.membrane_real) == (1, 0, False)
    lc = _classify_layer(0, ref_s, ref_m, b_s, np.array([[[1 + 2e-3, 66.0]]]), 1.0, 1e-5, dist)
    assert (lc.ties, lc.real, lc.membrane_real) == (0, 1, True)


def test_gradients_are_compared_with_the_reset_detached_when_the_backend_detaches_it():
    """snnTorch's backward never flows through the reset: compare() ran bptt with it and
    reported a 0.9 relative error for a faithful backend."""
    rng = np.random.default_rng(6)
    net, x = _network(rng), _inputs(rng)

    def grads(network, inputs, g_out, surrogate, convention):
        res = simulate(network, inputs, convention=convention, record=True)
        g = backward(network, inputs, res, g_out, method="bptt", surrogate=surrogate,
                     detach_reset=True)
        return g.input, g.weights

    def run(network, inputs, convention):
        res = simulate(network, inputs, convention=convention, record=True)
        return BackendRun([r.spikes for r in res.layers], [r.m for r in res.layers])

    be = FunctionBackend("detaching", run, grad_fn=grads, detach_reset=True)
    rep = compare(net, x, be, convention=CONV, surrogate=Sigmoid(5.0), rng=0)
    assert rep.gradient["input_max_rel_error"] == 0
    assert max(rep.gradient["weight_max_rel_error"]) == 0
    with pytest.raises(TypeError, match="detach_reset must be True or False, got 'no'"):
        FunctionBackend("x", run, grad_fn=grads, detach_reset="no")
    # the same gradients judged against the undetached bptt differ
    be = FunctionBackend("detaching", run, grad_fn=grads)
    rep = compare(net, x, be, convention=CONV, surrogate=Sigmoid(5.0), rng=0)
    assert rep.gradient["input_max_rel_error"] > 1e-3
