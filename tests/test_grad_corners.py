"""Corner cases of the clock-mode gradient methods (``evsnn.grad``): T = 1, silent layers and
layers that fire at every step, membranes exactly at θ, single neurons, a batch of one,
readout-only networks, the ends of Temp-BP's clamp and fallback, RGA's intervals and the rate
method's x̄ = 0 mask, HART's pre-calculation at its edges, ``mixed`` at β = 0 and 1, losses at
equal and one-hot logits, and the γ search with a one-sample selection set.

Networks here are *dyadic* (weights, λ, θ, inputs, trace coefficients and upstream gradients are
short binary fractions): every forward operation is exact, so ties ``m == θ`` are exact, and
with a triangle surrogate of dyadic γ the whole backward of bptt is exact as well. Oracles: the
reverse-mode tape (tests/reference/tape.py), closed forms at T = 1 and at silent / saturated
layers, exact invariances (scaling the upstream gradient by 2^k, negating it, a zero upstream
gradient, a sample alone vs in a batch), and HART's pre-calculated form against its definition.
"""

import numpy as np
import pytest
from conftest import RTOL_HAND, RTOL_SUM_ORDER
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reference.helpers import (
    assert_within,
    compare,
    example_count,
    run_tape,
    tape_surrogate,
)

from evsnn.clock import Dense, Network, simulate
from evsnn.conventions import get_convention
from evsnn.grad import (
    Sigmoid,
    Triangle,
    backward,
    cross_entropy,
    decoder_vjp,
    e_rsct_loss,
    input_gradient,
    mixed,
    rga_factor,
    spike_count_loss,
    ttfs_loss,
)
from evsnn.grad.encoder_rules import RULES
from evsnn.grad.gamma_search import search_gamma
from evsnn.params import DLIF, IF, LIF, Readout, TraceLIF

KINDS = ("lif_hard", "lif_soft", "if", "trace_trace", "trace_spike", "dlif")
REGIMES = ("silent", "saturated", "ties", "dyadic")


# --------------------------------------------------------------------------- corner networks
@st.composite
def corners(draw, kinds=KINDS, n_layers=(1, 2), T=(1, 4), B=(1, 2), readout=True,
            regimes=REGIMES, delays=(0, 1)):
    """Small dyadic networks (1-3 neurons per layer, single neurons included) in one of three
    regimes: ``silent`` (no spiking neuron ever fires: inputs ≥ 0, weights and biases ≤ 0,
    v_init ≤ 0 < θ), ``saturated`` (every spiking neuron fires at every step: all-ones input,
    weights large enough for any trace or DLIF factor, no delay), ``ties`` (weights on a grid
    of 1/4, binary inputs, λ ∈ {0, 1}, v = 0 at the start and after a reset: membranes land
    exactly on θ often) or ``dyadic`` (short binary fractions)."""
    regime = draw(st.sampled_from(regimes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    L = draw(st.integers(*n_layers))
    T_, B_ = draw(st.integers(*T)), draw(st.integers(*B))
    sizes = [draw(st.integers(1, 3)) for _ in range(L + 1)]
    delay = 0 if regime == "saturated" else draw(st.sampled_from(delays))
    conv = get_convention("DEFAULT").with_(
        spike_test=draw(st.sampled_from([">=", ">"])), input_delay=delay,
        dlif_factor=draw(st.sampled_from(["leak", "input"])))

    def q(lo, hi, step=0.125):  # a multiple of step in [lo, hi]
        return float(rng.integers(round(lo / step), round(hi / step) + 1) * step)

    layers, c_prev = [], 1.0  # c_prev: the smallest first-step value of the layer's input
    with_readout = readout and regime != "saturated" and draw(st.booleans())
    for k in range(L):
        n_in, n_out = sizes[k], sizes[k + 1]
        theta = float(rng.choice([0.25, 0.5] if regime == "ties" else [0.25, 0.5, 1.0]))
        lam = float(rng.choice([0.0, 0.5, 0.75, 1.0]))
        v_init = q(-0.5, 0.0) if regime == "silent" else q(-0.5, 0.5)
        v_rest = q(-0.25, 0.25)
        if regime == "ties":
            lam, v_init, v_rest = float(rng.choice([0.0, 1.0])), 0.0, 0.0
        kind = "readout" if with_readout and k == L - 1 else draw(st.sampled_from(kinds))
        c = 0.0
        if kind == "readout":
            neuron = Readout(lam=lam, v_init=v_init)
        elif kind in ("lif_hard", "lif_soft"):
            neuron = LIF(lam=lam, theta=theta, reset=kind[4:], v_rest=v_rest, v_init=v_init)
        elif kind == "if":
            neuron = IF(theta=theta, v_init=v_init)
        elif kind == "dlif":
            neuron = DLIF(lam=lam, theta=theta, reset=draw(st.sampled_from(["hard", "soft"])),
                          v_rest=v_rest, v_init=v_init)
        else:
            tm, ts = float(rng.choice([1.0, 2.0, 4.0])), float(rng.choice([1.0, 2.0, 4.0]))
            neuron = TraceLIF(tau_mem_ms=tm, tau_syn_ms=ts, theta=theta, u0=v_rest,
                              v_init=v_init, output=kind[6:])
            c = neuron.trace_coef if kind == "trace_trace" else 0.0
        if regime == "silent":
            w = np.array([[q(-1.5, 0.0) for _ in range(n_in)] for _ in range(n_out)])
        elif regime == "saturated":  # I[t] >= 4 / c_prev * c_prev * factor >= 2 > θ
            w = np.full((n_out, n_in), 4.0 / c_prev)
        elif regime == "ties":
            w = rng.choice([0.0, 0.25, 0.25, 0.5], (n_out, n_in))
        else:
            w = np.array([[q(-1.5, 1.5) for _ in range(n_in)] for _ in range(n_out)])
        bias = None
        if regime not in ("saturated", "ties") and draw(st.booleans()):
            bias = np.array([q(-0.25, 0.0 if regime == "silent" else 0.25)
                             for _ in range(n_out)])
        factors = None
        if kind == "dlif":
            factors = np.array([q(0.5, 1.5, 0.25) for _ in range(T_ + draw(st.integers(0, 2)))])
        layers.append(Dense(w, neuron, bias=bias, dlif_factors=factors))
        c_prev = c if c else 1.0
    net = Network(layers)
    if regime == "saturated":
        seq = np.ones((T_, B_, sizes[0]))
    elif regime != "ties" and (regime == "silent" or draw(st.booleans())):
        seq = np.array([q(0, 1, 0.25) for _ in range(T_ * B_ * sizes[0])]).reshape(T_, B_, -1)
    else:
        seq = (rng.random((T_, B_, sizes[0])) < 0.5).astype(np.float64)
    # dyadic upstream gradient: products with dyadic forward values stay exact
    g_out = rng.integers(-8, 9, (T_, B_, sizes[-1])) / 8.0
    return dict(net=net, seq=seq, conv=conv, g_out=g_out, dyadic=True, rng=rng, regime=regime)


def _check_regime(case, res):
    """The regime the generator aimed at is the one simulated (so that the tests below do see
    silent and saturated layers)."""
    for rec in res.layers:
        if rec.spikes is None:
            continue
        if case["regime"] == "silent":
            assert not rec.spikes.any()
        elif case["regime"] == "saturated":
            assert rec.spikes.all()


def _fields(r):
    """(name, array) of every gradient a GradientResult holds (None fields left out)."""
    out = [("input", r.input)]
    for name in ("weights", "biases", "dlif_factors", "membrane"):
        out += [(f"{name}[{k}]", a) for k, a in enumerate(getattr(r, name)) if a is not None]
    return out


def _trace_only(net):
    return all(layer.neuron.kernel_args().trace_coef != 0 or not layer.neuron.kernel_args().spiking
               for layer in net.layers)


METHOD_OPTIONS = [
    ("bptt", dict(surrogate=Sigmoid(5.0, "code"))),
    ("bptt", dict(surrogate=Sigmoid(2.0, "paper"), detach_reset=True)),
    ("bptt", dict(surrogate=Triangle(0.5))),
    ("bptt", dict(surrogate=Triangle(1.0), detach_reset=True)),
    ("hart", dict(surrogate=Triangle(1.0))),
    ("hart", dict(surrogate=Triangle(0.25))),
    ("rga", {}), ("bptr", {}), ("rate", {}),
    ("tempbp", {}), ("tempbp", dict(fallback=False, intra=False)),
    ("tempbp", dict(factor_clamp=np.inf, fallback_level=1.5)),
]


def _method_case(case, method):
    """Temp-BP needs trace-LIF layers: its cases use only those (and readouts)."""
    return method != "tempbp" or _trace_only(case["net"])


def _tape_opts(opts):
    """A method's options as the tape takes them (its own surrogate spec)."""
    if "surrogate" not in opts:
        return dict(opts)
    return dict(opts, surrogate=tape_surrogate(opts["surrogate"]))


# --------------------------------------------------------------------------- against the tape
@settings(max_examples=example_count(60))
@given(corners(), st.sampled_from(METHOD_OPTIONS))
def test_corner_networks_equal_the_tape(case, method_opts):
    """Every method at the corners (silent, saturated, exact ties, T = 1, single neurons, a
    batch of one) against its definition on the tape."""
    method, opts = method_opts
    case = _usable(case, method, tau_syn_ms=2.0, output="spike")
    res, ref = run_tape(case, method, **_tape_opts(opts))
    _check_regime(case, res)
    compare(case, res, ref, method=method, **opts)


def _backward(case, method, opts, g=None, net=None, seq=None, res=None):
    net = case["net"] if net is None else net
    seq = case["seq"] if seq is None else seq
    if res is None:
        res = simulate(net, seq, convention=case["conv"], record=True)
    return backward(net, seq, res, case["g_out"] if g is None else g, method=method, **opts)


def _usable(case, method, tau_syn_ms=4.0, output="trace"):
    """The case itself, or for Temp-BP on a network with other neurons the same weights and
    biases with every layer a trace-LIF of the given synaptic time constant and output."""
    if _method_case(case, method):
        return case
    neuron = TraceLIF(tau_mem_ms=2.0, tau_syn_ms=tau_syn_ms, theta=0.5, output=output)
    return dict(case, net=Network([Dense(l.weight, neuron, bias=l.bias)
                                   for l in case["net"].layers]), regime="dyadic")


# --------------------------------------------------------------------------- exact invariances
@settings(max_examples=example_count(40))
@given(corners(T=(1, 5), B=(1, 3)), st.sampled_from(METHOD_OPTIONS),
       st.sampled_from([-40, -3, 1, 9, 40]))
def test_every_gradient_is_linear_in_the_upstream_gradient(case, method_opts, k):
    """Every method is linear in dL/d(output) (the forward pass fixes every factor): scaling
    it by 2^k scales every gradient bit for bit (a power of two is exact away from overflow
    and subnormals), negating it negates them, and a zero upstream gradient gives exactly
    zero everywhere — also where a sigmoid saturates or a layer is silent (no NaN from 0·inf)."""
    method, opts = method_opts
    case = _usable(case, method)
    res = simulate(case["net"], case["seq"], convention=case["conv"], record=True)
    base = _backward(case, method, opts, res=res)
    scaled = _backward(case, method, opts, g=case["g_out"] * 2.0**k, res=res)
    neg = _backward(case, method, opts, g=-case["g_out"], res=res)
    zero = _backward(case, method, opts, g=np.zeros_like(case["g_out"]), res=res)
    for (name, a), (_, s), (_, n), (_, z) in zip(_fields(base), _fields(scaled), _fields(neg),
                                                 _fields(zero)):
        np.testing.assert_array_equal(s, a * 2.0**k, err_msg=name)
        np.testing.assert_array_equal(n, -a, err_msg=name)
        assert np.all(z == 0), name


# A saturated 1-1-1 LIF network (a 1,200-example run): the batch's dL/dW[0] is -1.28e-22, the
# sum of per-step terms of size 1e-14 that cancel; the samples' sum differed by 7.9e-31, 6e-9
# of the value but 4e-17 of the terms. The sum order is judged against the terms' size.
_CANCELLING_BATCH = dict(
    net=Network([Dense(np.array([[4.0]]), LIF(lam=0.75, theta=0.5, reset="hard", v_rest=0.25,
                                              v_init=0.25)),
                 Dense(np.array([[4.0]]), LIF(lam=0.0, theta=0.25, reset="hard", v_rest=0.25,
                                              v_init=0.375))]),
    seq=np.ones((2, 3, 1)),
    conv=get_convention("DEFAULT").with_(spike_test=">=", input_delay=0, dlif_factor="leak"),
    g_out=np.array([[[-0.5], [-0.375], [0.75]], [[-0.125], [-0.5], [0.75]]]),
    dyadic=True, regime="saturated",
)


@settings(max_examples=example_count(40))
@given(corners(T=(1, 4), B=(2, 3)), st.sampled_from(METHOD_OPTIONS))
@example(_CANCELLING_BATCH, METHOD_OPTIONS[0])
def test_a_sample_alone_equals_its_row_in_the_batch(case, method_opts):
    """Every method is per sample (HART's time average and the rate method's layer mean are
    per sample too): a sample's dL/dm and dL/dinput run alone are its rows of the batch run,
    and the batch's weight, bias and DLIF-factor gradients are the sums of the samples'. The
    last layer's membrane gradient comes from a per-sample kernel: bit for bit; everything
    below passes through a product with a weight, which BLAS may block differently for
    another batch size (an ulp apart, README): to the sum order, which for an entry whose
    terms cancel is set by the terms (the tape's magnitudes), not by the entry."""
    method, opts = method_opts
    case = _usable(case, method)
    whole = _backward(case, method, opts)
    magnitudes = run_tape(case, method, **_tape_opts(opts))[1]["magnitudes"]
    B = case["seq"].shape[1]
    singles = [_backward(case, method, opts, g=case["g_out"][:, b:b + 1],
                         seq=case["seq"][:, b:b + 1]) for b in range(B)]
    for b, one in enumerate(singles):
        np.testing.assert_array_equal(one.membrane[-1][:, 0], whole.membrane[-1][:, b])
        for k in range(len(case["net"].layers) - 1):
            _close_sum_order(one.membrane[k][:, 0], whole.membrane[k][:, b],
                             f"sample {b}: dL/dm[{k}]")
        _close_sum_order(one.input[:, 0], whole.input[:, b], f"sample {b}: dL/dinput",
                         magnitudes["input"][:, b])
    for name in ("weights", "biases", "dlif_factors"):
        for k, want in enumerate(getattr(whole, name)):
            if want is not None:
                _close_sum_order(sum(getattr(one, name)[k] for one in singles), want,
                                 f"the samples' sum of {name}[{k}]", magnitudes[name][k])


def _close_sum_order(got, want, what, magnitude=0.0):
    """Within RTOL_SUM_ORDER of the entry, of the array's largest entry and of ``magnitude``
    (the entry's sum of |term|, conftest), entry by entry."""
    want = np.asarray(want)
    scale = np.max(np.abs(want)) if want.size else 0.0
    bound = RTOL_SUM_ORDER * (np.abs(want) + scale + np.asarray(magnitude))
    assert_within(got, want, bound, what)


# --------------------------------------------------------------------------- T = 1 closed forms
def _sigma_prime(z):
    s = 1.0 / (1.0 + np.exp(-z))
    return s * (1.0 - s)


def _closed_form_T1(layer, conv, x, g, method, opts):
    """dL/dm of one layer at T = 1 written from the methods' definitions (module docstring of
    evsnn.grad.backward, Temp-BP options in :func:`backward`): ``x`` [B, n_in], ``g`` [B, n_out]
    dL/d(output). Returns (dL/dm, gain) with the layer's gain at step 0."""
    a = layer.neuron.kernel_args()
    f0 = 1.0 if layer.dlif_factors is None else layer.dlif_factors[0]
    leak, gain = (a.lam * f0, 1.0) if conv.dlif_factor == "leak" else (a.lam, f0)
    I = np.zeros((x.shape[0], layer.n_out)) if conv.input_delay else x @ layer.weight.T
    if layer.bias is not None:
        I = I + layer.bias
    m = leak * a.v_init + gain * I
    if not a.spiking:
        return g, gain
    s = (m >= a.theta) if conv.spike_test == ">=" else (m > a.theta)
    c = a.trace_coef
    g_s = c * g if a.emit_trace else g  # a[0] = c s[0]
    if method in ("bptt", "hart"):
        sur = opts["surrogate"]
        if isinstance(sur, Triangle):
            d = np.maximum(0.0, sur.gamma - np.abs(m - a.theta)) / sur.gamma**2
        else:
            d = (sur.rho if sur.scale == "code" else 1.0) * _sigma_prime(sur.rho * (m - a.theta))
        return g_s * d, gain
    if method == "bptr":
        return g_s * s, gain
    if method == "rga":
        return g_s * rga_factor(gain * I, a.lam, a.theta), gain
    if method == "rate":  # per sample, the mean of r / x̄ over the neurons with x̄ > 0
        xbar = gain * I
        out = np.zeros_like(m)
        for b in range(m.shape[0]):
            pos = xbar[b] > 0
            if pos.any():
                out[b, pos] = np.mean(s[b, pos] / xbar[b, pos]) * g_s[b, pos]
        return out, gain
    # tempbp
    level = opts.get("fallback_level", 0.25) * c if opts.get("fallback", True) else -np.inf
    rho = opts.get("fallback_rho", 5.0)
    clamp = opts.get("factor_clamp", 8.0)
    du = m - a.v_init
    with np.errstate(divide="ignore"):
        f = np.where(du > 0, np.maximum(-1.0 / du, -clamp), 0.0)
    if np.isfinite(clamp):  # clamp(-1/0, -c, 0) = -c
        f = np.where(du == 0, -clamp, f)
    out = np.where(s, -g_s * f, 0.0)
    low = c * s < level
    return np.where(low, g_s * rho * _sigma_prime(rho * (m - a.theta)), out), gain


@settings(max_examples=example_count(60))
@given(corners(n_layers=(1, 1), T=(1, 1), B=(1, 3)), st.sampled_from(METHOD_OPTIONS))
def test_one_step_gradients_equal_their_closed_forms(case, method_opts):
    """At T = 1 nothing flows through time: dL/dm is the upstream gradient (through the trace
    a[0] = c s[0] when the layer emits it) times the method's activation gradient at the one
    membrane value — the surrogate (bptt, hart), the spike itself (bptr), RGA's function of
    x̄ = gain·I, the layer mean of s/x̄ (rate), Temp-BP's clamped spike-time factor or its
    low-trace sigmoid — and dL/dW = (gain dL/dm)ᵀ x, dL/dx = gain dL/dm W (both zero with
    the input one step late)."""
    method, opts = method_opts
    case = _usable(case, method)
    net, conv = case["net"], case["conv"]
    layer = net.layers[0]
    got = _backward(case, method, opts)
    g_m, gain = _closed_form_T1(layer, conv, case["seq"][0], case["g_out"][0], method, opts)
    hand = dict(rtol=RTOL_HAND, atol=RTOL_HAND * (np.max(np.abs(g_m)) if g_m.size else 0))
    np.testing.assert_allclose(got.membrane[0][0], g_m, **hand)
    g_cur = gain * g_m
    x = case["seq"][0] * (0.0 if conv.input_delay else 1.0)
    np.testing.assert_allclose(got.weights[0], g_cur.T @ x, rtol=RTOL_HAND,
                               atol=RTOL_HAND * np.max(np.abs(g_cur)) * np.max(x, initial=1.0))
    late = 0.0 if conv.input_delay else 1.0
    np.testing.assert_allclose(got.input[0], g_cur @ layer.weight * late,
                               rtol=RTOL_HAND, atol=RTOL_HAND * np.max(np.abs(g_cur)) * 2)
    if layer.bias is not None:
        np.testing.assert_allclose(got.biases[0], g_cur.sum(axis=0), rtol=RTOL_HAND,
                                   atol=RTOL_HAND * np.max(np.abs(g_cur)) * 4)


@settings(max_examples=example_count(30))
@given(corners(n_layers=(1, 3), T=(1, 1), B=(1, 2)),
       st.sampled_from([Triangle(0.25), Triangle(1.0), Sigmoid(5.0, "code"),
                        Sigmoid(3.0, "paper")]))
def test_hart_is_bptt_at_one_step(case, surrogate):
    """HART prunes the paths from step t to t + 1 and averages dL/dm over the steps; at T = 1
    there is neither, so it is surrogate BPTT with the same surrogate — bit for bit (with or
    without detach_reset, which acts only through step t + 1)."""
    hart = _backward(case, "hart", dict(surrogate=surrogate))
    for detach in (False, True):
        bptt = _backward(case, "bptt", dict(surrogate=surrogate, detach_reset=detach))
        for (name, h), (_, b) in zip(_fields(hart), _fields(bptt)):
            np.testing.assert_array_equal(h, b, err_msg=name)


# --------------------------------------------------------------------------- silent / saturated
def _spike_grad(layer, g):
    """dL/ds[t] of a spiking layer from dL/d(output): through a[t] = a[t−1] + c (s[t] − a[t−1])
    when it emits its trace, dL/ds[t] = c Σ_{k≥0} (1 − c)^k dL/da[t + k]."""
    a = layer.neuron.kernel_args()
    if not a.emit_trace:
        return g
    c, T = a.trace_coef, g.shape[0]
    return np.stack([c * sum((1 - c) ** k * g[t + k] for k in range(T - t)) for t in range(T)])


@settings(max_examples=example_count(40))
@given(corners(T=(1, 5), regimes=("silent", "saturated"), readout=False))
def test_bptr_at_silent_and_saturated_layers(case):
    """BPTR passes dL/dx̄ = Σ_t dL/ds[t] through neurons that fired at least once and nothing
    through the others: a silent network has exactly zero gradient everywhere, and the last
    layer of a network that fires at every step has dL/dm[t] = Σ_t dL/ds[t] / T."""
    res = simulate(case["net"], case["seq"], convention=case["conv"], record=True)
    _check_regime(case, res)
    got = backward(case["net"], case["seq"], res, case["g_out"], method="bptr")
    if case["regime"] == "silent":
        for name, a in _fields(got):
            assert np.all(a == 0), name
        return
    top = case["net"].layers[-1]
    want = _spike_grad(top, case["g_out"]).sum(axis=0) / case["seq"].shape[0]
    np.testing.assert_allclose(got.membrane[-1], np.broadcast_to(want, got.membrane[-1].shape),
                               rtol=RTOL_HAND, atol=RTOL_HAND * np.max(np.abs(want), initial=0))


@settings(max_examples=example_count(30))
@given(corners(kinds=("trace_trace", "trace_spike"), T=(1, 5), regimes=("silent",),
               readout=False), st.booleans())
def test_tempbp_at_silent_layers(case, intra):
    """A silent trace-LIF layer has a zero trace, below any positive fallback level: with the
    fallback its gradient is the sigmoid ``G ρ σ'(ρ(m − θ))`` at every step (the code scale),
    without it exactly zero everywhere (no spike, so no spike-time term)."""
    net, seq, conv, g = case["net"], case["seq"], case["conv"], case["g_out"]
    res = simulate(net, seq, convention=conv, record=True)
    _check_regime(case, res)
    off = backward(net, seq, res, g, method="tempbp", fallback=False, intra=intra)
    for name, a in _fields(off):
        assert np.all(a == 0), name
    on = backward(net, seq, res, g, method="tempbp", intra=intra, fallback_rho=2.0)
    top, rec = net.layers[-1], res.layers[-1]
    want = _spike_grad(top, g) * 2.0 * _sigma_prime(2.0 * (rec.m - top.neuron.theta))
    np.testing.assert_allclose(on.membrane[-1], want, rtol=RTOL_HAND,
                               atol=RTOL_HAND * np.max(np.abs(want), initial=0))


# --------------------------------------------------------------------------- readout-only nets
@settings(max_examples=example_count(20))
@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.sampled_from([0.0, 0.5, 1.0]),
       st.sampled_from([0, 1]))
def test_readout_only_network_is_differentiated_exactly_by_every_method(seed, T, lam, delay):
    """A network of one non-spiking readout is linear, ``m[t] = λ m[t−1] + I[t]``: every method
    gives its exact gradient ``dL/dm[t] = Σ_{k≥t} λ^(k−t) dL/dm_out[k]`` (the module docstring:
    readouts are differentiated exactly by every method), the same for all of them."""
    rng = np.random.default_rng(seed)
    n_in, n_out, B = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
    net = Network([Dense(rng.integers(-8, 9, (n_out, n_in)) / 8.0,
                         Readout(lam=lam, v_init=0.25), bias=rng.integers(-2, 3, n_out) / 8.0)])
    seq = rng.integers(0, 5, (T, B, n_in)) / 4.0
    g = rng.integers(-8, 9, (T, B, n_out)) / 8.0
    conv = get_convention("DEFAULT").with_(input_delay=delay)
    res = simulate(net, seq, convention=conv, record=True)
    want = np.zeros_like(g)
    acc = np.zeros_like(g[0])
    for t in range(T - 1, -1, -1):
        acc = g[t] + lam * acc
        want[t] = acc
    first = None
    for method, opts in METHOD_OPTIONS:
        got = backward(net, seq, res, g, method=method, **opts)
        np.testing.assert_array_equal(got.membrane[0], want)  # dyadic: exact
        if first is None:
            first = got
        for (name, a), (_, b) in zip(_fields(got), _fields(first)):
            np.testing.assert_array_equal(a, b, err_msg=f"{method}: {name}")
    w_want = np.einsum("tbo,tbi->oi", want[delay:], seq[:T - delay])
    np.testing.assert_array_equal(first.weights[0], w_want)
    np.testing.assert_array_equal(first.biases[0], want.sum(axis=(0, 1)))


# --------------------------------------------------------------------------- mixed (HART Eq. A6)
@settings(max_examples=example_count(20))
@given(corners(T=(1, 4)), st.sampled_from([0.0, 1.0, 0.25, 0.5]))
def test_mixed_gradient_at_its_ends_is_the_pure_method(case, beta):
    """HART Eq. A6, β·HART + (1 − β)·STBP: β = 1 gives HART and β = 0 STBP bit for bit; a
    dyadic β gives exactly β a + (1 − β) b, and swapping the two gradients with 1 − β gives
    the same record."""
    a = _backward(case, "hart", {})
    b = _backward(case, "bptt", {})
    m = mixed(beta, a, b)
    swapped = mixed(1 - beta, b, a)
    for (name, x), (_, y), (_, z), (_, w) in zip(_fields(m), _fields(a), _fields(b),
                                                 _fields(swapped)):
        if beta == 1:
            np.testing.assert_array_equal(x, y, err_msg=name)
        elif beta == 0:
            np.testing.assert_array_equal(x, z, err_msg=name)
        np.testing.assert_array_equal(x, beta * y + (1 - beta) * z, err_msg=name)
        np.testing.assert_array_equal(x, w, err_msg=name)


def test_mixed_with_cba_in_either_order():
    """Regression: ``mixed(β, bptt, cba)`` raised TypeError (``β·u + (1 − β)·None``) while
    ``mixed(β, cba, bptt)`` worked — a field was dropped only when the *first* record lacked
    it. CBA (method "ann") has no membrane gradient; the mix holds what both records hold, in
    either order, and the two orders agree."""
    from evsnn.ann import ANN
    from evsnn.grad import loss_and_grad

    net = Network.mlp([4, 3, 2], LIF(lam=0.75, theta=0.5), rng=0, scale=2.0)
    x, y = np.full((2, 4), 0.5), np.array([0, 1])
    cba = loss_and_grad(net, x, y, T=3, encoder="current", method="ann",
                        ann=ANN([layer.weight for layer in net.layers])).grads
    stbp = loss_and_grad(net, x, y, T=3, encoder="current", method="bptt").grads
    ab, ba = mixed(0.25, cba, stbp), mixed(0.75, stbp, cba)
    assert ab.membrane == ba.membrane == [None, None]
    np.testing.assert_array_equal(ba.input, 0.75 * stbp.input + 0.25 * cba.input)
    for u, v in zip(ab.weights, ba.weights):
        np.testing.assert_array_equal(u, v)


def test_mixed_refuses_what_it_cannot_mix():
    net = Network.mlp([2, 2], LIF(), rng=0)
    seq = np.ones((2, 1, 2))
    r = backward(net, seq, simulate(net, seq, record=True), np.ones((2, 1, 2)))
    deeper = Network.mlp([2, 2, 2], LIF(), rng=0)
    r2 = backward(deeper, seq, simulate(deeper, seq, record=True), np.ones((2, 1, 2)))
    with pytest.raises(TypeError, match="^mixed needs two GradientResult records or two arrays, "
                                        "got GradientResult and ndarray"):
        mixed(0.5, r, r.input)
    with pytest.raises(ValueError, match="^a holds the gradients of 1 layers and b of 2; mix"):
        mixed(0.5, r, r2)  # zip would silently drop the second layer
    with pytest.raises(TypeError, match="^beta must be a real number, got str '0.5'"):
        mixed("0.5", r, r)
    # no broadcasting: an image gradient [B, n] with a sequence gradient [T, B, n] is neither
    with pytest.raises(ValueError, match=r"^a has shape \(1, 2\) but b has shape \(2, 1, 2\); "
                                        "mixed combines two gradients of the same quantity"):
        mixed(0.5, r.input[0], r.input)
    with pytest.raises(ValueError, match=r"^a has shape \(\) but b has shape \(2, 1, 2\)"):
        mixed(0.5, 1.0, r.input)
    wider = Network.mlp([2, 3], LIF(), rng=0)
    seq3 = np.ones((3, 1, 2))
    r3 = backward(wider, seq3, simulate(wider, seq3, record=True), np.ones((3, 1, 3)))
    r_wide = backward(wider, seq, simulate(wider, seq, record=True), np.ones((2, 1, 3)))
    with pytest.raises(ValueError, match=r"^a.input has shape \(2, 1, 2\) but b.input has shape "
                                        r"\(3, 1, 2\)"):
        mixed(0.5, r_wide, r3)  # runs of T = 2 and T = 3
    with pytest.raises(ValueError, match=r"^a.weights\[0\] has shape \(2, 2\) but b.weights"
                                        r"\[0\] has shape \(3, 2\)"):
        mixed(0.5, r, r_wide)  # two networks of one depth, different widths
    with pytest.raises(ValueError, match=r"^beta=nan must be finite and lie in \[0, 1\]"):
        mixed(float("nan"), r, r)


# --------------------------------------------------------------------------- HART pre-calculation
@settings(max_examples=example_count(40))
@given(corners(kinds=("lif_hard", "lif_soft", "if", "trace_spike"), n_layers=(1, 3), T=(1, 4),
               readout=False), st.sampled_from([Triangle(0.5), Triangle(1.0), Triangle(2.0)]))
def test_hart_precalculated_equals_prune_then_average_at_corners(case, surrogate):
    """HART's pre-calculated backward (from the forward's time sums) against the prune-then-
    average form at the corners: T = 1 (also one step late, where no step reaches any
    current), silent and saturated layers, single neurons, a batch of one. Dyadic values, a
    triangle of dyadic γ and T a power of two make both exact: bit for bit. With the input one
    step late and T > 1 a layer above the first gets no gradient at its last step, which the
    pre-calculation refuses."""
    net, seq, conv = case["net"], case["seq"], case["conv"]
    T = seq.shape[0]
    g = np.broadcast_to(case["g_out"][:1], case["g_out"].shape)
    full = simulate(net, seq, convention=conv, record=True)
    sums = simulate(net, seq, convention=conv, record="time_sums", surrogate=surrogate)
    if conv.input_delay and T > 1 and len(net.layers) > 1:
        with pytest.raises(ValueError, match="with input_delay=1 the last step of layer"):
            backward(net, seq, sums, g, method="hart", precalculate=True)
        return
    want = backward(net, seq, full, g, method="hart", surrogate=surrogate)
    got = backward(net, seq, sums, g, method="hart", precalculate=True)
    exact = T in (1, 2, 4)
    for (name, a), (_, b) in zip(_fields(got), _fields(want)):
        if exact:
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            _close_sum_order(a, b, name)


# --------------------------------------------------------------------------- Temp-BP boundaries
def _one_trace_neuron(w, v_init, T_seq, tau_syn_ms=2.0):
    """One TraceLIF neuron (λ = 1 − 1/2, θ = 1/2, reset to 0) driven by one input of weight
    ``w``; ``T_seq`` the input values over time."""
    neuron = TraceLIF(tau_mem_ms=2.0, tau_syn_ms=tau_syn_ms, theta=0.5, v_init=v_init,
                      output="spike")
    net = Network([Dense(np.array([[w]]), neuron)])
    seq = np.asarray(T_seq, dtype=float).reshape(-1, 1, 1)
    return net, seq, simulate(net, seq, record=True)


@pytest.mark.parametrize("du, clamp, factor", [
    (1 / 16, 8.0, 8.0), (1 / 8, 8.0, 8.0), (1 / 4, 8.0, 4.0),   # at and on both sides of 1/8
    (1 / 16, np.inf, 16.0), (1 / 8, np.inf, 8.0),                 # no clamp
    (1 / 4, 4.0, 4.0), (1 / 8, 4.0, 4.0), (1 / 2, 1.0, 1.0),     # other clamps at their ends
])
def test_tempbp_spike_time_factor_at_the_clamp(du, clamp, factor):
    """Temp-BP's inter-neuron term ``dL/dm = −G clamp(−1/ΔU, −factor_clamp, 0)`` at a spike
    whose pre-reset increment is exactly ΔU = 1/16, 1/8, 1/4: one step, v_init = 1/2 − ΔU, so
    m = λ v_init + w = 1/2 = θ exactly (the spike test ``>=``) and ΔU = m − v_init (hand
    derivation; every value is a binary fraction, so exact)."""
    v_init = 0.5 - du
    net, seq, res = _one_trace_neuron(0.5 - 0.5 * v_init, v_init, [1.0])
    assert res.layers[0].spikes[0, 0, 0] == 1 and res.layers[0].m[0, 0, 0] == 0.5
    got = backward(net, seq, res, np.full((1, 1, 1), 0.75), method="tempbp", factor_clamp=clamp)
    assert got.membrane[0][0, 0, 0] == 0.75 * factor


def test_tempbp_factor_is_zero_for_a_spike_with_a_negative_increment():
    """A spike with ΔU < 0 (v_init = 1 above θ decays to m = 3/4, still above): −1/ΔU > 0, so
    clamp(−1/ΔU, −8, 0) = 0 and the spike-time term gives no gradient."""
    net, seq, res = _one_trace_neuron(0.25, 1.0, [1.0])
    assert res.layers[0].spikes[0, 0, 0] == 1 and res.layers[0].m[0, 0, 0] == 0.75
    got = backward(net, seq, res, np.ones((1, 1, 1)), method="tempbp")
    assert got.membrane[0][0, 0, 0] == 0


@pytest.mark.parametrize("clamp, factor", [(8.0, 8.0), (2.0, 2.0), (np.inf, 0.0)])
def test_tempbp_spike_with_zero_increment_takes_the_clamp(clamp, factor):
    """A spike whose membrane did not rise, ΔU = +0 (v_init = 1 above θ, λ = 1/2, w = 1/2: m =
    1 = v_init): clamp(−1/ΔU, −c, 0) = clamp(−inf) = −c, so dL/dm = c G (the code gave 0, the
    case the helper's corner hunt raised); without a clamp −1/0 has no finite value: 0."""
    net, seq, res = _one_trace_neuron(0.5, 1.0, [1.0])
    assert res.layers[0].spikes[0, 0, 0] == 1 and res.layers[0].m[0, 0, 0] == 1.0
    got = backward(net, seq, res, np.ones((1, 1, 1)), method="tempbp", factor_clamp=clamp)
    assert got.membrane[0][0, 0, 0] == factor


@pytest.mark.parametrize("level, first_fallback", [(0.25, 3), (0.5, 2), (1.0, 1)])
def test_tempbp_fallback_starts_strictly_below_its_level(level, first_fallback):
    """The low-trace fallback applies where the trace is *below* ``fallback_level · Δt/τs``
    (backward's docstring): with c = 1/2 and one spike at t = 0 the trace is 1/2, 1/4, 1/8,
    1/16 (exact), so at c·level = 1/8, 1/4, 1/2 the step whose trace equals the level keeps
    its own rule (silent: 0; the spike at t = 0: the factor 1/ΔU = 1, ΔU = m − v_init = 1)
    and the fallback ``ρ σ'(ρ(m − θ))``, ρ = 5, starts one step later (hand derivation)."""
    net, seq, res = _one_trace_neuron(1.0, 0.0, [1.0, 0.0, 0.0, 0.0])
    rec = res.layers[0]
    np.testing.assert_array_equal(rec.spikes[:, 0, 0], [1, 0, 0, 0])
    np.testing.assert_array_equal(rec.m[:, 0, 0], [1, 0, 0, 0])
    np.testing.assert_array_equal(rec.trace[:, 0, 0], [0.5, 0.25, 0.125, 0.0625])
    got = backward(net, seq, res, np.ones((4, 1, 1)), method="tempbp",
                   fallback_level=level).membrane[0][:, 0, 0]
    want = np.array([1.0, 0.0, 0.0, 0.0])
    want[first_fallback:] = 5.0 * _sigma_prime(5.0 * (0.0 - 0.5))
    np.testing.assert_allclose(got, want, rtol=RTOL_HAND, atol=0)


# --------------------------------------------------------------------------- RGA / rate
@pytest.mark.parametrize("lam, x, want", [
    # (0.8 + 0.2λ)/(λ + 1) on [1 − λ, 2] plus 0.2 on [0, 1 − λ] (both at x̄ = 1 − λ)
    (0.0, 0.0, 0.2), (0.0, 1.0, 1.0), (0.0, 2.0, 0.8), (0.0, np.nextafter(2.0, 3.0), 0.0),
    (0.0, np.nextafter(0.0, -1.0), 0.0), (0.0, np.nextafter(1.0, 2.0), 0.8),
    (1.0, 0.0, 0.7), (1.0, 5e-324, 0.5), (1.0, 2.0, 0.5), (1.0, np.nextafter(0.0, -1.0), 0.0),
])
def test_rga_factor_at_the_ends_of_its_intervals(lam, x, want):
    """RGA's two intervals at λ = 0 and 1, at their ends and one ulp outside (hand values from
    the formula in the docstring; (0.8 + 0.2λ)/(λ + 1) is 0.8 at λ = 0 and 0.5 at λ = 1)."""
    assert rga_factor(x, lam) == pytest.approx(want, rel=RTOL_HAND)


@given(st.lists(st.integers(-24, 24), min_size=1, max_size=6), st.sampled_from([0.0, 0.5, 1.0]),
       st.integers(-30, 30))
def test_rga_factor_reads_the_current_in_units_of_theta(num, lam, k):
    """rga_factor(x̄, λ, θ) depends on x̄/θ only: scaling both by 2^k changes nothing, bit for
    bit (the interval ends 1 − λ and 2 included, which multiples of 1/8 hit)."""
    x = np.array(num) / 8.0
    np.testing.assert_array_equal(rga_factor(x * 2.0**k, lam, 2.0**k), rga_factor(x, lam))


@settings(max_examples=example_count(30))
@given(corners(n_layers=(1, 1), T=(1, 4), B=(1, 2), readout=False))
def test_rate_factor_is_one_per_sample_and_zero_where_the_current_is_not_positive(case):
    """HART Eq. 10: ``g_rate`` is the layer's mean r/x̄ over the neurons with x̄ > 0, and 0
    where x̄ ≤ 0 (x̄ = 0 exactly included): dL/dm = g · Σ_t dL/ds[t] / T with one g per sample
    for every neuron of positive mean current, and exactly zero gradient for the others."""
    net, seq, conv = case["net"], case["seq"], case["conv"]
    layer = net.layers[0]
    res = simulate(net, seq, convention=conv, record=True)
    rec = res.layers[0]
    got = backward(net, seq, res, case["g_out"], method="rate").membrane[0]
    T = seq.shape[0]
    gain = (np.ones(T) if layer.dlif_factors is None or conv.dlif_factor == "leak"
            else layer.dlif_factors[:T])
    xbar = (gain[:, None, None] * rec.current).mean(axis=0)
    r = rec.spikes.mean(axis=0)
    per = _spike_grad(layer, case["g_out"]).sum(axis=0) / T
    for b in range(seq.shape[1]):
        pos = xbar[b] > 0
        assert np.all(got[:, b, ~pos] == 0)
        want = np.mean(r[b, pos] / xbar[b, pos]) * per[b, pos] if pos.any() else per[b, pos]
        np.testing.assert_allclose(got[:, b, pos], np.broadcast_to(want, (T, pos.sum())),
                                   rtol=RTOL_HAND, atol=RTOL_HAND * np.max(np.abs(want),
                                                                           initial=0))


# --------------------------------------------------------------------------- losses and decoders
LOSSES = {
    "ce": lambda z, y: cross_entropy(z, y),
    "double_softmax": lambda z, y: ttfs_loss(z, y, "double_softmax"),
    "scaled_ce": lambda z, y: ttfs_loss(z, y, "scaled_ce"),
    "spike_count": lambda z, y: spike_count_loss(z, y, desired_true=3, desired_false=0.5),
}


SOFTMAX_LOSSES = ("ce", "double_softmax", "scaled_ce")


@given(st.integers(1, 6), st.integers(1, 3), st.floats(-50, 50), st.sampled_from(SOFTMAX_LOSSES),
       st.integers(0, 2**32 - 1))
def test_softmax_losses_at_equal_logits(N, B, level, name, seed):
    """Equal logits (a tie of all classes, e.g. every output neuron silent under TTFS
    decoding): softmax is uniform, so with u = 1/N − onehot (hand derivation)
    CE: loss ln N, gradient u/B; double softmax (CE of softmax(2ω), whose logits are all 1/N):
    loss ln N, gradient (2/N)·u/B; scaled CE (CE of 2ω): loss ln N, gradient 2·u/B."""
    y = np.random.default_rng(seed).integers(0, N, B)
    loss, g = LOSSES[name](np.full((B, N), level), y)
    u = np.full((B, N), 1.0 / N)
    u[np.arange(B), y] -= 1.0
    want_loss, mult = {"ce": (np.log(N), 1.0), "double_softmax": (np.log(N), 2.0 / N),
                       "scaled_ce": (np.log(N), 2.0)}[name]
    assert float(loss) == pytest.approx(want_loss, rel=RTOL_HAND, abs=1e-15)
    np.testing.assert_allclose(g, mult * u / B, rtol=RTOL_HAND, atol=1e-16)


@given(st.integers(1, 4), st.integers(2, 5), st.sampled_from([-64.0, -1.0, 0.5, 2.0, 1024.0]),
       st.sampled_from(SOFTMAX_LOSSES), st.integers(0, 2**32 - 1))
def test_softmax_losses_are_invariant_to_a_shift_of_the_logits(B, N, shift, name, seed):
    """softmax(z + c) = softmax(z): for logits that are multiples of 1/8 and a power-of-two
    shift, z + c and (z + c) − max(z + c) are exact, so loss and gradient are the same bit
    for bit."""
    rng = np.random.default_rng(seed)
    z = rng.integers(-32, 33, (B, N)) / 8.0
    y = rng.integers(0, N, B)
    l0, g0 = LOSSES[name](z, y)
    l1, g1 = LOSSES[name](z + shift, y)
    assert l1 == l0
    np.testing.assert_array_equal(g1, g0)


@given(st.integers(1, 4), st.integers(1, 5), st.sampled_from(sorted(LOSSES)),
       st.integers(0, 2**32 - 1))
def test_losses_per_sample_rows_under_duplication_and_permutation(B, N, name, seed):
    """Every loss is a batch mean: a batch holding each sample twice has the same loss (to
    rounding) and exactly half the gradient rows (a power of two), and permuting the batch
    permutes the gradient rows bit for bit."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((B, N)) * 3
    y = rng.integers(0, N, B)
    loss, g = LOSSES[name](z, y)
    l2, g2 = LOSSES[name](np.concatenate([z, z]), np.concatenate([y, y]))
    assert float(l2) == pytest.approx(float(loss), rel=RTOL_HAND)
    np.testing.assert_array_equal(g2[:B], g / 2)
    np.testing.assert_array_equal(g2[B:], g / 2)
    perm = rng.permutation(B)
    _, gp = LOSSES[name](z[perm], y[perm])
    np.testing.assert_array_equal(gp, g[perm])


@pytest.mark.parametrize("B", [1, 3])
def test_cross_entropy_at_one_hot_logits(B):
    """Logits 800 apart (a saturated softmax): exp(−800) underflows to 0, so for the label at
    the maximum the loss and gradient are exactly 0, and for another label the loss is 800 and
    the gradient (e_max − e_label)/B exactly — no NaN from the underflow."""
    z = np.zeros((B, 3))
    z[:, 1] = 800.0
    loss, g = cross_entropy(z, np.full(B, 1))
    assert loss == 0 and np.all(g == 0)
    loss, g = cross_entropy(z, np.full(B, 2))
    assert loss == 800.0
    want = np.zeros((B, 3))
    want[:, 1], want[:, 2] = 1.0 / B, -1.0 / B
    np.testing.assert_array_equal(g, want)


def test_ttfs_decoder_gradient_goes_to_the_first_tied_step():
    """TTFS decoding ``max_t (T − t) o[t]``: when two steps attain the maximum (a trace output
    0.25 at t = 0 and 0.5 at t = 2 with T = 4: both 1.0) the gradient goes to the first one,
    times its weight T − t0 = 4; a silent neuron's gradient goes to step 0 (weight T), as
    decoder_vjp documents."""
    out = np.zeros((4, 1, 2))
    out[0, 0, 0], out[2, 0, 0] = 0.25, 0.5
    g = decoder_vjp("ttfs", np.array([[0.5, -1.0]]), out)
    want = np.zeros_like(out)
    want[0, 0, 0], want[0, 0, 1] = 0.5 * 4, -1.0 * 4
    np.testing.assert_array_equal(g, want)


def test_e_rsct_loss_refuses_zero_steps():
    """Regression: T = 0 step outputs raised IndexError (``o[0]`` of an empty axis)."""
    with pytest.raises(ValueError, match=r"^step_outputs has shape \(0, 1, 2\), T = 0 steps"):
        e_rsct_loss(np.zeros((0, 1, 2)), np.zeros((1, 2)), np.array([0]))


# --------------------------------------------------------------------------- γ search
@settings(max_examples=example_count(20))
@given(st.lists(st.sampled_from([0.125, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]), min_size=1,
                max_size=6, unique=True), st.integers(0, 2**32 - 1))
def test_gamma_grid_search_with_a_one_sample_selection_set(grid, seed):
    """A selection set of one sample is a valid selection set: the grid search evaluates each
    γ once, in grid order, and returns a best one with its value."""
    vals = dict(zip(grid, np.random.default_rng(seed).random(len(grid))))
    r = search_gamma(lambda g: vals[g], selection_index=[7], evaluation_index=[0, 1],
                     grid=tuple(grid))
    assert [g for g, _ in r.evaluated] == list(grid)
    assert r.value == max(vals.values()) and vals[r.gamma] == r.value


@pytest.mark.parametrize("iterations", [0, 1, 5])
def test_gamma_golden_search_evaluates_two_plus_one_per_iteration_inside_the_bounds(iterations):
    seen = []
    r = search_gamma(lambda g: seen.append(g) or -(g - 0.3) ** 2, selection_index=[0],
                     evaluation_index=[1], method="golden", bounds=(0.25, 0.5),
                     iterations=iterations)
    assert len(seen) == 2 + iterations and all(0.25 < g < 0.5 for g in seen)
    assert r.value == max(v for _, v in r.evaluated)


def test_gamma_search_refuses_nan_and_bad_arguments():
    """Regression: an objective returning NaN at the first γ made that γ the answer (nothing
    compares greater than NaN), a NaN or infinite grid value or bound was searched, a negative
    iteration count ran none, two disjoint boolean masks were reported as overlapping
    (their values 0 and 1 intersect), and negative indices slipped past the overlap check."""
    def obj(g):
        return float("nan") if g == 0.25 else -abs(g - 1.5)

    with pytest.raises(ValueError, match=r"^objective\(gamma=0.25\) returned nan; the objective"):
        search_gamma(obj, selection_index=[0], evaluation_index=[1])
    with pytest.raises(ValueError, match="must be non-empty and positive, finite γ values"):
        search_gamma(lambda g: g, selection_index=[0], evaluation_index=[1], grid=(np.nan, 1.0))
    with pytest.raises(ValueError, match="must be non-empty and positive, finite γ values"):
        search_gamma(lambda g: -g, selection_index=[0], evaluation_index=[1], grid=(np.inf, 1.0))
    with pytest.raises(ValueError, match="^bounds=inf must be finite; the interval"):
        search_gamma(lambda g: -g, selection_index=[0], evaluation_index=[1], method="golden",
                     bounds=(0.1, np.inf))
    with pytest.raises(ValueError, match=r"^iterations=-1 must be an integer >= 0"):
        search_gamma(lambda g: -g, selection_index=[0], evaluation_index=[1], method="golden",
                     iterations=-1)
    with pytest.raises(TypeError, match="^iterations must be an integer"):
        search_gamma(lambda g: -g, selection_index=[0], evaluation_index=[1], method="golden",
                     iterations=2.5)
    with pytest.raises(TypeError, match=r"^selection_index must be an array of integer sample "
                                        r"indices, got dtype bool \(a boolean mask: pass "
                                        r"np.flatnonzero\(mask\)\)$"):
        search_gamma(lambda g: g, selection_index=np.array([True, False]),
                     evaluation_index=np.array([1]))
    with pytest.raises(TypeError, match="^evaluation_index must be an array of integer sample "
                                        "indices, got dtype float64$"):
        search_gamma(lambda g: g, selection_index=[0], evaluation_index=[0.5])
    # -1 and -2 name the pool's last two samples, which the evaluation set also holds; without
    # the pool's size the overlap check cannot see it, so negative indices are refused
    n_pool = 10
    with pytest.raises(ValueError, match=r"^selection_index holds 2 negative indices \(e.g. "
                                        r"\[-1, -2\]\); search_gamma does not know the pool's "
                                        r"size.*\(selection_index % n_pool\)$"):
        search_gamma(lambda g: g, selection_index=[-1, -2],
                     evaluation_index=[n_pool - 1, n_pool - 2, 0])
    with pytest.raises(ValueError, match=r"^evaluation_index holds 1 negative indices"):
        search_gamma(lambda g: g, selection_index=[0], evaluation_index=[[1], [-3]])


# --------------------------------------------------------------------------- encoder rules
@given(st.integers(1, 4), st.integers(1, 2), st.integers(1, 3), st.integers(0, 2**32 - 1),
       st.sampled_from(sorted(RULES)))
def test_encoder_rules_on_constant_sequences(T, B, n, seed, rule):
    """Each rule is linear in dL/d(sequence) (a power-of-two scale passes bit for bit), and
    its masks decide at their ends as documented: on an all-ones sequence every rule but RSC's
    is the sum over steps (every pixel spikes at every step); RSC counts 0 and 1 as clamped,
    so all-ones and all-zeros sequences give exactly zero, as all-zeros does for the
    spike-mask rules."""
    g = np.random.default_rng(seed).integers(-8, 9, (T, B, n)) / 8.0
    ones, zeros = np.ones((T, B, n)), np.zeros((T, B, n))
    np.testing.assert_array_equal(input_gradient(rule, g * 2.0**-7, ones),
                                  input_gradient(rule, g, ones) * 2.0**-7)
    rsc = rule.startswith("rsc")
    np.testing.assert_array_equal(input_gradient(rule, g, ones), 0 * g[0] if rsc else g.sum(0))
    if rsc or rule in ("ratesyn_start", "ratesyn_end", "ttfs"):
        assert np.all(input_gradient(rule, g, zeros) == 0)
    fused = input_gradient(f"fused:{rule}+current", np.concatenate([g, g], axis=2),
                           np.concatenate([ones, ones], axis=2))
    np.testing.assert_array_equal(fused, input_gradient(rule, g, ones) + g.sum(0))


def test_rate_mean_batch_is_the_hart_code():
    """HART_CODE's rate_mean="batch" (the code's RateBp3: mean of r/x̄ over the whole batch and
    layer, divided by count + 0.001) against the paper read per sample, by hand: IF neurons
    (θ = 1, hard reset), T = 2; sample A drives x̄ = 1.5 and spikes at both steps (r = 1),
    sample B drives x̄ = 0.4 and stays silent (r = 0). Per sample: g = 1/1.5 and 0; pooled:
    (1/1.5 + 0) / 2.001 for both. With dL/ds = 1 at each step, dL/dm = g."""
    net = Network([Dense([[1.0]], LIF(lam=1.0, theta=1.0, reset="hard"))])
    seq = np.array([[[1.5], [0.4]], [[1.5], [0.4]]])
    g_out = np.ones((2, 2, 1))
    per = {}
    for name in ("HART_PAPER", "HART_CODE"):
        conv = get_convention(name)
        res = simulate(net, seq, convention=conv, record=True)
        assert res.layers[0].spikes[:, :, 0].tolist() == [[1.0, 0.0], [1.0, 0.0]]
        per[conv.rate_mean] = backward(net, seq, res, g_out, method="rate").membrane[0][:, :, 0]
    np.testing.assert_allclose(per["sample"], [[1 / 1.5, 0.0]] * 2, rtol=1e-15)
    np.testing.assert_allclose(per["batch"], [[(1 / 1.5) / 2.001] * 2] * 2, rtol=1e-15)


def test_rate_steps_each_is_the_hart_code():
    """rate_steps="each" (HART_CODE; the code's RateBp* return ``grad_output * factor``) hands
    each step its own dL/ds[t] times the factor; "mean" (HART Eq. 11 on time means) hands every
    step the factor times the mean. One IF neuron (θ = 1, hard reset), T = 2, x̄ = 1.5, spiking
    at both steps, one sample: the per-sample and the pooled factor are 1/1.5 and
    (1/1.5)/1.001; with dL/ds = (3, 1): each (3, 1)·g, mean (2, 2)·g — the same sum."""
    net = Network([Dense([[1.0]], LIF(lam=1.0, theta=1.0, reset="hard"))])
    seq = np.full((2, 1, 1), 1.5)
    g_out = np.array([3.0, 1.0]).reshape(2, 1, 1)
    got = {}
    for steps in ("mean", "each"):
        conv = get_convention("HART_CODE").with_(rate_steps=steps)
        res = simulate(net, seq, convention=conv, record=True)
        got[steps] = backward(net, seq, res, g_out, method="rate").membrane[0][:, 0, 0]
    g = (1 / 1.5) / 1.001
    np.testing.assert_allclose(got["each"], [3 * g, 1 * g], rtol=1e-15)
    np.testing.assert_allclose(got["mean"], [2 * g, 2 * g], rtol=1e-15)
    assert get_convention("HART_CODE").rate_steps == "each"
    assert get_convention("HART_PAPER").rate_steps == "mean"
