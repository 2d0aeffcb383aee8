"""Corners of Stable's training framework (Ding et al., ICML 2024, §3.4, Eq. 11, 14, 16-18):
``evsnn.grad.stable_loss_and_grad``, ``evsnn.grad.losses.stable_loss`` and
``evsnn.train.fit_stable``, beyond what ``test_stable.py`` draws.

Oracles: the reverse-mode tape (``tests/reference/tape.py``, ``stable_gradients``) for every
neuron kind (trace-LIF and IF too, mixed), every gradient method that applies and the ttfs
decoder; central differences of the MS-MPPD term, a polynomial in W^L, a^L and — for L the
first layer on current coding — the image; the affine structure of Eq. 17 in χ and ρ (backward
is linear in its upstream gradient); exact invariances (x~ == x); the encoders' draws replayed
by hand; and ``fit_stable`` against a loop written out over ``stable_loss_and_grad``.
"""

import numpy as np
import pytest
from conftest import RTOL_FINITE_DIFF, RTOL_SUM_ORDER
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from reference import tape as tp
from reference.helpers import (
    assert_grads_equal_tape,
    assert_tape,
    cases,
    central_difference_rounding,
    central_differences,
    example_count,
    no_near_ties,
    tape_surrogate,
    tempbp_options,
)

from evsnn.clock import Dense, Network, simulate
from evsnn.conventions import get_convention
from evsnn.encoders import encode
from evsnn.grad import Sigmoid, Triangle, loss_and_grad, stable_loss_and_grad
from evsnn.grad.losses import stable_loss
from evsnn.params import DLIF, IF, LIF, Readout, TraceLIF

ALL_KINDS = ("lif_hard", "lif_soft", "if", "trace_trace", "trace_spike", "dlif")
PRESETS = ["DEFAULT", "STABLE_PAPER", "STABLE_CODE", "HART_CODE", "DING2025_PAPER"]


def _spiking(net):
    return any(layer.spiking for layer in net.layers)


def _perturbed(seq, rng):
    """A perturbed sequence that stays dyadic (spikes flipped, values mirrored)."""
    return np.where(rng.random(seq.shape) < 0.3, 1.0 - seq, seq)


def _grad_arrays(r):
    """Every gradient array of a StableLossGrad, flattened into one list (None skipped)."""
    g = r.grads
    out = [g.input]
    for field in ("weights", "biases", "dlif_factors"):
        out += [a for a in getattr(g, field) if a is not None]
    return out


def _tape_magnitude_arrays(ref, r):
    """The tape's magnitudes (per entry, the sum of |term| over its chain-rule terms) in the
    order of :func:`_grad_arrays` of ``r``."""
    mag, g = ref["magnitudes"], r.grads
    out = [mag["input"]]
    for field in ("weights", "biases", "dlif_factors"):
        out += [m for a, m in zip(getattr(g, field), mag[field]) if a is not None]
    return out


# --------------------------------------------------------------------------- against the tape
@settings(max_examples=example_count(50))
@given(cases(kinds=ALL_KINDS, T=(1, 6)), st.sampled_from(["bptt", "hart", "rga", "bptr", "rate"]),
       st.sampled_from(["rate", "membrane", "ttfs"]), st.sampled_from(["sum", "mean"]),
       st.sampled_from([0.0, 0.3, 1.0]), st.sampled_from([0.0, 1.0, 1e6]))
def test_every_kind_and_method_equals_tape(case, method, decoder, reduction, chi, rho):
    """Trace-LIF (spike or trace output), IF, LIF and DLIF layers mixed, any convention (input
    delay 0 / 1, either DLIF placement, either spike test), every surrogate / rate method:
    the composed gradient of Eq. 17 equals the tape's reverse mode of the whole expression
    under the same method (the method applied to one loss, not a sum of pieces)."""
    net, seq, conv, rng = case["net"], case["seq"], case["conv"], case["rng"]
    assume(_spiking(net))
    if decoder == "ttfs" and not net.layers[-1].spiking:
        decoder = "membrane"
    if decoder == "membrane" and net.layers[-1].spiking:
        decoder = "rate"
    seq_t = _perturbed(seq, rng)
    labels = rng.integers(0, net.n_out, seq.shape[1])
    if not case["dyadic"]:
        no_near_ties(net, seq, conv)
        no_near_ties(net, seq_t, conv)
    opts = {}
    if method in ("bptt", "hart"):
        opts["surrogate"] = ("triangle", 1.0)  # Stable's default, Eq. 18
    got = stable_loss_and_grad(net, seq, seq_t, labels, encoder=None, decoder=decoder,
                               method=method, convention=conv, chi=chi, rho=rho,
                               reduction=reduction)
    loss, ms, ref = tp.stable_gradients(net, seq, seq_t, labels, conv, chi=chi, rho=rho,
                                        reduction=reduction, decoder=decoder, mode=method, **opts)
    assert got.ms_mppd == pytest.approx(ms, rel=1e-12, abs=1e-14)
    assert got.loss == pytest.approx(loss, rel=1e-12, abs=1e-14)
    assert_grads_equal_tape(got.grads, ref, f"{method}/{decoder}")


@settings(max_examples=example_count(20))
@given(cases(kinds=("trace_trace", "trace_spike"), T=(1, 6)), tempbp_options(),
       st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([0.0, 2.0]))
def test_tempbp_equals_tape(case, opts, chi, rho):
    """Temp-BP (trace-LIF networks) with every option: the composed gradient equals the tape."""
    net, seq, conv, rng = case["net"], case["seq"], case["conv"], case["rng"]
    assume(_spiking(net))
    if not isinstance(opts["kernel"], str) and not any(
            layer.neuron.kernel_args().emit_trace for layer in net.layers):
        opts = dict(opts, kernel="trace")  # an array kernel read by no layer is refused
    seq_t = _perturbed(seq, rng)
    labels = rng.integers(0, net.n_out, seq.shape[1])
    if not case["dyadic"]:
        no_near_ties(net, seq, conv)
        no_near_ties(net, seq_t, conv)
    decoder = "rate" if net.layers[-1].spiking else "membrane"
    got = stable_loss_and_grad(net, seq, seq_t, labels, decoder=decoder, method="tempbp",
                               convention=conv, chi=chi, rho=rho, **opts)
    _, _, ref = tp.stable_gradients(net, seq, seq_t, labels, conv, chi=chi, rho=rho,
                                    reduction=conv.mppd_reduction, decoder=decoder,
                                    mode="tempbp", **opts)
    assert_grads_equal_tape(got.grads, ref, "tempbp")


def test_tempbp_kernel_with_no_trace_below_layer_L():
    """Regression: a Temp-BP ``kernel=`` the whole network reads (its last layer emits the
    trace) was passed on to the backward of ``layers[:L]`` too, which emits no trace, and that
    call refused it ("no layer of this network emits its trace"): the valid call failed. The
    kernel acts on trace outputs only, so the part below L does not get it; the gradient
    equals the tape's."""
    rng = np.random.default_rng(11)
    net = Network([
        Dense(rng.uniform(0.2, 1.2, (3, 4)), TraceLIF(tau_mem_ms=2.0, tau_syn_ms=4.0,
                                                      theta=0.5, output="spike")),
        Dense(rng.uniform(-0.5, 1.5, (2, 3)), TraceLIF(tau_mem_ms=4.0, tau_syn_ms=2.0,
                                                       theta=0.5, output="trace")),
    ])
    seq = (rng.random((5, 2, 4)) < 0.6).astype(float)
    seq_t = _perturbed(seq, rng)
    labels = np.array([0, 1])
    conv = get_convention("DEFAULT")
    opts = dict(kernel=(0.5, 0.25), fallback=False)
    got = stable_loss_and_grad(net, seq, seq_t, labels, method="tempbp", convention=conv,
                               **opts)
    assert got.layer == 1 and got.ms_mppd > 0
    _, _, ref = tp.stable_gradients(net, seq, seq_t, labels, conv, chi=0.5, rho=1.0,
                                    reduction="sum", mode="tempbp", **opts)
    assert_grads_equal_tape(got.grads, ref, "tempbp kernel")


# --------------------------------------------------------------------------- structure of Eq. 17
@settings(max_examples=example_count(25))
@given(cases(kinds=ALL_KINDS, T=(1, 5)), st.sampled_from(["bptt", "hart", "rga", "bptr", "rate"]),
       st.sampled_from([0.0, 0.25, 1.0]), st.sampled_from([0.5, 3.0, 1e6, 1e12]))
def test_affine_in_chi_and_rho(case, method, chi, rho):
    """For fixed runs, Eq. 17 is affine in (χ, ρ) and every backward is linear in its upstream
    gradient, so every gradient array is
    ``G(χ, ρ) = χ G(1, 0) + (1 − χ) G(0, 0) + ρ (G(·, 1) − G(·, 0))`` — ρ huge included —
    and the loss likewise; χ = 0 and χ = 1 are the end points exactly.

    Rounding: an entry is a sum of chain-rule terms, so each of the four runs lands within a few
    hundred roundings of its terms' absolute sum (the tape's magnitudes, as in every tape
    comparison), not of its own value. The two differ where the terms cancel: a DLIF factor
    shared by output neurons in equal states gets c·Σ_i dL/dm_i, and the cross-entropy gradient
    sums to zero over the classes (found by ``HYPOTHESIS_PROFILE=random``: 7.3e-18 in one run,
    0 in another, from terms of ~0.01)."""
    net, seq, conv, rng = case["net"], case["seq"], case["conv"], case["rng"]
    assume(_spiking(net))
    seq_t = _perturbed(seq, rng)
    labels = rng.integers(0, net.n_out, seq.shape[1])
    if not case["dyadic"]:  # the tape's magnitudes below must follow the simulator's spikes
        no_near_ties(net, seq, conv)
        no_near_ties(net, seq_t, conv)
    decoder = "rate" if net.layers[-1].spiking else "membrane"
    kw = dict(decoder=decoder, method=method, convention=conv)
    tape_opts = {"surrogate": ("triangle", 1.0)} if method in ("bptt", "hart") else {}

    def run(c, r):
        got = stable_loss_and_grad(net, seq, seq_t, labels, chi=c, rho=r, **kw)
        _, _, ref = tp.stable_gradients(net, seq, seq_t, labels, conv, chi=c, rho=r,
                                        reduction=conv.mppd_reduction, decoder=decoder,
                                        mode=method, **tape_opts)
        return got, _tape_magnitude_arrays(ref, got)

    (got, mg), (c1, m_c1), (c0, m_c0), (m1, m_m1) = (
        run(chi, rho), run(1.0, 0.0), run(0.0, 0.0), run(0.0, 1.0))
    assert got.ms_mppd == c1.ms_mppd == m1.ms_mppd  # the same runs
    assert got.task == pytest.approx(chi * c1.task + (1 - chi) * c0.task, rel=1e-14, abs=1e-300)
    assert got.loss == pytest.approx(got.task + rho * got.ms_mppd, rel=1e-15)
    arrays = zip(*map(_grad_arrays, (got, c1, c0, m1)), mg, m_c1, m_c0, m_m1)
    for g, a1, a0, b1, mag_g, mag_a1, mag_a0, mag_b1 in arrays:
        want = chi * a1 + (1 - chi) * a0 + rho * (b1 - a0)
        # the values' own size (ρ multiplies a difference of two sums) and, per entry, the
        # four runs' chain-rule terms combined as ``want`` combines the runs
        scale = np.max(np.abs(a1) + np.abs(a0) + rho * (np.abs(b1) + np.abs(a0)), initial=0.0)
        terms = mag_g + chi * mag_a1 + (1 - chi) * mag_a0 + rho * (mag_b1 + mag_a0)
        bound = 1e-12 * scale + RTOL_SUM_ORDER * terms
        with np.errstate(invalid="ignore"):  # inf − inf: equal infinities pass as equal
            ok = (np.abs(g - want) <= bound) | (g == want)
        assert ok.all(), (g, want, bound)


@settings(max_examples=example_count(25))
@given(cases(kinds=ALL_KINDS, T=(1, 6)), st.sampled_from(["bptt", "hart", "rga", "rate"]),
       st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([0.0, 1.0, 1e9]))
def test_identical_inputs_give_the_mixed_cross_entropy(case, method, chi, rho):
    """x~ == x: MS-MPPD is exactly 0 (ε = 0, whatever ρ), the loss is the clean
    cross-entropy, and every parameter gradient is loss_and_grad's (χ g + (1 − χ) g through the
    same run); the input gradient is χ times loss_and_grad's, x~ being a constant."""
    net, seq, conv, rng = case["net"], case["seq"], case["conv"], case["rng"]
    assume(_spiking(net))
    labels = rng.integers(0, net.n_out, seq.shape[1])
    kw = dict(decoder="rate" if net.layers[-1].spiking else "membrane", method=method,
              convention=conv, surrogate=Triangle(1.0) if method in ("bptt", "hart") else None)
    got = stable_loss_and_grad(net, seq, seq.copy(), labels, chi=chi, rho=rho, **kw)
    want = loss_and_grad(net, seq, labels, **kw)
    assert got.ms_mppd == 0.0
    assert got.loss == got.task == pytest.approx(want.loss, rel=1e-15)
    np.testing.assert_array_equal(got.scores, want.scores)
    np.testing.assert_array_equal(got.correct, want.correct)
    # x~ is a constant: only the clean run's χ share reaches the input
    assert_tape(got.grads.input, chi * want.grads.input, "dL/dinput")
    for field in ("weights", "biases", "dlif_factors"):
        for k, (u, v) in enumerate(zip(getattr(got.grads, field), getattr(want.grads, field))):
            if v is None:
                assert u is None, (field, k)
            else:
                assert_tape(u, v, f"{field}[{k}]")


# --------------------------------------------------------------------------- central differences
@settings(max_examples=example_count(25))
@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(1, 3),
       st.sampled_from(["DEFAULT", "STABLE_PAPER", "STABLE_CODE", "HART_CODE"]),
       st.sampled_from(["leak", "input"]), st.integers(0, 3), st.booleans(),
       st.sampled_from([0, 1]))
@example(656, 2, 1, "DEFAULT", "leak", 1, False, 0)  # a DLIF factor's derivative 2.5e-8 under
# an objective of 0.48: the central difference's rounding (1.7e-11 here) exceeds rtol 1e-6
def test_rho_term_is_the_derivative_of_ms_mppd(seed, T, B, preset, placement, extra, readout,
                                               delay):
    """The MS-MPPD term alone (the gradient at ρ = 1 minus that at ρ = 0) against central
    differences of ``ms_mppd``: a polynomial in W^L and a^L with the spikes below L fixed, and
    for L = 0 on current coding also in the image. DLIF factors up to 3 longer than T (the
    ones beyond T get exactly 0), pixels at the box bounds 0 and 1, T = 1, B = 1, either input
    delay, either DLIF placement, the reduction of each preset. The paper's MPPD rule: the
    code's (STABLE_CODE) detaches the clean run, so its term is not the derivative of ms_mppd
    (test_mppd_rule_code_is_the_authors_regulariser)."""
    rng = np.random.default_rng(seed)
    conv = get_convention(preset).with_(dlif_factor=placement, input_delay=delay,
                                        mppd_rule="paper")
    n_in = 3
    layers = []
    two = rng.random() < 0.5  # L = 1 (a LIF layer below) or L = 0
    if two:
        layers.append(Dense(rng.uniform(-0.5, 1.5, (4, n_in)), LIF(lam=0.8, theta=0.5)))
    n = layers[-1].n_out if layers else n_in
    layers.append(Dense(rng.uniform(-1, 1, (3, n)), DLIF(lam=float(rng.uniform(0, 1)), theta=0.5),
                        bias=rng.uniform(-0.2, 0.2, 3),
                        dlif_factors=rng.uniform(0.5, 1.5, T + extra)))
    if readout:
        layers.append(Dense(rng.standard_normal((2, 3)), Readout(lam=0.9)))
    net = Network(layers)
    L = len(layers) - 1 - readout
    x = rng.choice([0.0, 1.0, 0.3, 0.7], size=(B, n_in)) if rng.random() < 0.5 else rng.random(
        (B, n_in))
    x_t = np.clip(x + rng.choice([-0.25, 0.0, 0.25], size=x.shape), 0, 1)
    labels = rng.integers(0, net.n_out, B)
    kw = dict(T=T, encoder="current", decoder="membrane" if readout else "rate", convention=conv)
    g1 = stable_loss_and_grad(net, x, x_t, labels, rho=1.0, **kw)
    g0 = stable_loss_and_grad(net, x, x_t, labels, rho=0.0, **kw)
    assert g1.layer == L
    w = np.array(net.layers[L].weight)
    a = np.array(net.layers[L].dlif_factors)

    def ms(xx=x):
        ls = list(net.layers)
        ls[L] = ls[L].replace(weight=w.copy(), dlif_factors=a.copy())
        # the current encoding written out: x ± h leaves [0, 1] at the bounds
        seq, seq_t = (np.broadcast_to(v, (T,) + v.shape).copy() for v in (xx, x_t))
        return stable_loss_and_grad(Network(ls), seq, seq_t, labels, rho=1.0,
                                    **dict(kw, encoder=None)).ms_mppd

    assert ms() == g1.ms_mppd
    pairs = [(g1.grads.weights[L] - g0.grads.weights[L], central_differences(ms, w)),
             (g1.grads.dlif_factors[L] - g0.grads.dlif_factors[L], central_differences(ms, a))]
    if L == 0:
        xv = x.copy()
        pairs.append((g1.image - g0.image, central_differences(lambda: ms(xv), xv)))
    for an, fd in pairs:
        np.testing.assert_allclose(an, fd, rtol=RTOL_FINITE_DIFF,
                                   atol=RTOL_FINITE_DIFF * max(np.abs(fd).max(), 1e-8)
                                   + central_difference_rounding(g1.ms_mppd))
    # factors beyond T are not read: exactly no gradient, from either term
    assert np.all(g1.grads.dlif_factors[L][T:] == 0.0)
    # the layers above L get nothing from the ρ term
    for k in range(L + 1, len(layers)):
        np.testing.assert_array_equal(g1.grads.weights[k], g0.grads.weights[k])


@settings(max_examples=example_count(20))
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(1, 3),
       st.sampled_from(["DEFAULT", "STABLE_PAPER", "STABLE_CODE", "HART_CODE", "DING2025_PAPER"]),
       st.sampled_from(["leak", "input"]), st.sampled_from([0, 1]), st.booleans())
def test_mppd_is_the_membrane_difference_where_nothing_spikes(seed, T, B, preset, placement,
                                                              delay, below):
    """Stable Eq. 7-8: where layer L spikes in neither run, its MPPD ε[t] is exactly the
    difference of its membrane potentials, so MS-MPPD (sum reduction) is Σ_t Σ_i (m − m~)².
    Under an input delay the layer integrates W s[t − d]: was, ε followed s[t] and gave 1.25
    for one neuron (w = 1, λ = 0.5, s = (1, 0), s~ = 0, d = 1) whose membranes differ by (0, 1)."""
    rng = np.random.default_rng(seed)
    conv = get_convention(preset).with_(dlif_factor=placement, input_delay=delay)
    n_in, layers = 3, []
    if below:  # a spiking layer below L, so that s and s~ are spike trains
        layers.append(Dense(rng.uniform(-0.5, 1.5, (4, n_in)), LIF(lam=0.8, theta=0.5)))
    n = layers[-1].n_out if layers else n_in
    factors = rng.uniform(0.5, 1.5, T)
    if conv.mppd_rule == "code":  # the code's ε leaves the factors out: equal only at a = 1
        factors = np.ones(T)
    layers.append(Dense(rng.uniform(-1, 1, (3, n)), DLIF(lam=float(rng.uniform(0, 1)),
                                                          theta=1e6),  # L never spikes
                        bias=rng.uniform(-0.2, 0.2, 3), dlif_factors=factors))
    layers.append(Dense(rng.standard_normal((2, 3)), Readout(lam=0.9)))
    net = Network(layers)
    x = rng.random((B, n_in))
    x_t = np.clip(x + rng.choice([-0.25, 0.0, 0.25], size=x.shape), 0, 1)
    r = stable_loss_and_grad(net, x, x_t, rng.integers(0, 2, B), T=T, encoder="current",
                             decoder="membrane", convention=conv, reduction="sum")
    L = r.layer
    m = [simulate(net, s, convention=conv, record=True).layers[L].m
         for s in (r.sequence, r.sequence_perturbed)]
    want = float(np.mean(np.sum((m[0] - m[1]) ** 2, axis=(0, 2))))
    np.testing.assert_allclose(r.ms_mppd, want, rtol=1e-12, atol=1e-14)


def test_mppd_rule_code_is_the_authors_regulariser():
    """STABLE_CODE's mppd_rule="code", main_train-v2.py's ``simple_dynamic(clean_input −
    adv_input)`` with ``clean_input = neuron_input['last'].detach()``, written out by hand.
    One DLIF neuron (input placement, a = (1, 0.5), λ = 0.5), w = 1, s = (1, 1), s~ = (0, 0):
    the code's ε = (1, 1.5) ignores a (MS-MPPD, mean over T = 2: 1.625); the paper's
    ε = (1, 0.5 + 0.5) = (1, 1) (1.0). Gradient of ρ·MS-MPPD (ρ = 1, χ = 1): g = 2ε/2 = ε,
    transposed recursion (1 + 0.5·1.5, 1.5) = (1.75, 1.5); dL/dW = −Σ g s~ = 0 (the paper's:
    g = (1 + 0.5·1, 1) = (1.5, 1), Σ g a Δs = 1.5 + 0.5 = 2); dL/db = −Σ g = −3.25; nothing
    reaches s or a."""
    net = Network([Dense([[1.0]], DLIF(lam=0.5, theta=10.0), bias=[0.0],
                         dlif_factors=[1.0, 0.5]),
                   Dense([[1.0]], Readout())])
    s, s_t = np.ones((2, 1, 1)), np.zeros((2, 1, 1))
    code = get_convention("STABLE_CODE")
    kw = dict(decoder="membrane", chi=1.0, rho=1.0)
    r = stable_loss_and_grad(net, s, s_t, [0], convention=code, **kw)
    assert r.ms_mppd == 1.625
    rp = stable_loss_and_grad(net, s, s_t, [0], convention=code.with_(mppd_rule="paper"), **kw)
    assert rp.ms_mppd == 1.0
    r0 = stable_loss_and_grad(net, s, s_t, [0], convention=code, **dict(kw, rho=0.0))
    term = {k: getattr(r.grads, k)[0] - getattr(r0.grads, k)[0]
            for k in ("weights", "biases", "dlif_factors")}
    assert term["weights"].tolist() == [[0.0]] and term["biases"].tolist() == [-3.25]
    assert term["dlif_factors"].tolist() == [0.0, 0.0]
    np.testing.assert_array_equal(r.grads.input, r0.grads.input)
    rp0 = stable_loss_and_grad(net, s, s_t, [0], convention=code.with_(mppd_rule="paper"),
                               **dict(kw, rho=0.0))
    assert (rp.grads.weights[0] - rp0.grads.weights[0]).tolist() == [[2.0]]


def test_stable_loss_detach_clean_by_hand():
    """λ = 0.5, w = 1, s = (1, 0), s~ = (0.5, 0): ε = (0.5, 0.25), g = 2ε = (1, 0.5) then
    (1 + 0.25, 0.5); dL/dW = Σ g Δs = 0.625 both ways in the paper, −Σ g s~ = −0.625 with the
    clean run detached; the perturbed input's gradient is −g W either way, the clean one's 0."""
    s = np.array([1.0, 0.0]).reshape(2, 1, 1)
    s_t = np.array([0.5, 0.0]).reshape(2, 1, 1)
    z, y = np.zeros((1, 2)), np.array([0])
    paper = stable_loss(z, z, y, s, s_t, [[1.0]], 0.5)
    code = stable_loss(z, z, y, s, s_t, [[1.0]], 0.5, detach_clean=True)
    assert paper.weight.tolist() == [[0.625]] and code.weight.tolist() == [[-0.625]]
    assert paper.bias is None and code.bias.tolist() == [-1.75]
    np.testing.assert_array_equal(code.input_clean, 0.0)
    np.testing.assert_array_equal(code.input_perturbed, paper.input_perturbed)
    assert code.ms_mppd == paper.ms_mppd == 0.3125
    with pytest.raises(TypeError, match="detach_clean must be True or False, got 1"):
        stable_loss(z, z, y, s, s_t, [[1.0]], 0.5, detach_clean=1)


def test_mppd_under_an_input_delay_regression():
    # the case written out: one neuron, w = 1, λ = 0.5, θ high; s = (1, 0), s~ = (0, 0), d = 1:
    # the membranes are (0, 1) and (0, 0), so ε = (0, 1) and MS-MPPD = 1 (was 1.25, ε = (1, 0.5))
    net = Network([Dense([[1.0]], LIF(lam=0.5, theta=10.0)), Dense([[1.0]], Readout())])
    conv = get_convention("DEFAULT").with_(input_delay=1)
    seq = np.array([1.0, 0.0]).reshape(2, 1, 1)
    r = stable_loss_and_grad(net, seq, np.zeros_like(seq), [0], convention=conv,
                             decoder="membrane", reduction="sum")
    assert r.ms_mppd == 1.0
    r1 = stable_loss_and_grad(net, seq[:1], np.zeros_like(seq[:1]), [0], convention=conv,
                              decoder="membrane", reduction="sum", rho=1.0, chi=1.0)
    assert r1.ms_mppd == 0.0  # T = 1: the delayed input never arrives


# --------------------------------------------------------------------------- dtypes
def _small_net(T, seed=0, n_in=4):
    rng = np.random.default_rng(seed)
    return Network([Dense(rng.normal(0, 1, (5, n_in)), DLIF(lam=0.9, theta=0.5),
                          dlif_factors=rng.uniform(0.8, 1.2, T)),
                    Dense(rng.normal(0, 1, (2, 5)), Readout())])


def test_mixed_run_dtypes_are_refused():
    """Regression: x in float64 and x~ in float32 (or the reverse) ran the two runs in
    different precisions and summed their gradients into the first array's dtype (float64
    parts silently rounded to float32): refused, naming x_tilde and the fix. Integer or bool
    x~ runs in float64, as a float64 x does, and is accepted."""
    T = 3
    net = _small_net(T)
    rng = np.random.default_rng(1)
    x = rng.random((2, 4))
    y = np.array([0, 1])
    x_t = np.clip(x + 0.2, 0, 1)
    for a, b in ((x, x_t.astype(np.float32)), (x.astype(np.float32), x_t)):
        with pytest.raises(ValueError, match=r"x_tilde runs in float\d+ but x in float\d+.*"
                                             r"x_tilde.astype\(x.dtype\)"):
            stable_loss_and_grad(net, a, b, y, T=T, encoder="current")
        with pytest.raises(ValueError, match="x_tilde runs in"):
            stable_loss_and_grad(net, np.broadcast_to(a, (T,) + a.shape),
                                 np.broadcast_to(b, (T,) + b.shape), y)
    ints = (x_t > 0.5).astype(int)
    r = stable_loss_and_grad(net, x, ints, y, T=T, encoder="current")
    f = stable_loss_and_grad(net, x, ints.astype(float), y, T=T, encoder="current")
    assert r.loss == f.loss


def test_float32_runs_give_float32_gradients():
    """Regression: with float32 runs the MS-MPPD was computed from the layer's float64 weight
    (stable_loss promotes), so dL/dinput and the image gradient came back float64 while the
    weight gradients were float32 (the float64 direct term rounded into them). The MS-MPPD
    now runs in the runs' arithmetic, as simulate casts W and a: every gradient is float32,
    and close to the float64 computation."""
    T = 3
    net = _small_net(T)
    rng = np.random.default_rng(4)
    x = rng.random((2, 4))
    x_t = np.clip(x + 0.2, 0, 1)
    y = np.array([0, 1])
    r32 = stable_loss_and_grad(net, x.astype(np.float32), x_t.astype(np.float32), y, T=T,
                               encoder="current")
    r64 = stable_loss_and_grad(net, x.astype(np.float32).astype(float),
                               x_t.astype(np.float32).astype(float), y, T=T, encoder="current")
    assert r32.layer == 0 and r32.ms_mppd > 0
    assert {a.dtype for a in _grad_arrays(r32) + [r32.image]} == {np.dtype(np.float32)}
    assert r32.ms_mppd == pytest.approx(r64.ms_mppd, rel=1e-5)
    for a, b in zip(_grad_arrays(r32), _grad_arrays(r64)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())


def test_fit_stable_gaussian_keeps_the_batch_dtype():
    """Regression: with float32 training images the "gaussian" perturbation returned float64
    images (the float64 noise promoted them), so every step ran the clean batch in float32 and
    the perturbed one in float64. Now it equals a callable that draws the same noise and
    returns the batch's dtype; a callable returning another float dtype is refused, and
    integer 0 / 1 images are taken in the batch's dtype."""
    from evsnn.train import SGD, fit_stable

    T = 3
    rng = np.random.default_rng(2)
    x = rng.random((10, 4)).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(int)
    kw = dict(T=T, rng=3, epochs=2, batch_size=4, decoder="membrane")

    def same(model, xb, yb, g):
        return np.clip(xb + 0.1 * g.standard_normal(xb.shape), 0, 1).astype(xb.dtype)

    a = fit_stable(_small_net(T), x, y, perturbation="gaussian", eps=0.1, optimizer=SGD(0.1), **kw)
    b = fit_stable(_small_net(T), x, y, perturbation=same, optimizer=SGD(0.1), **kw)
    np.testing.assert_array_equal(a.loss, b.loss)
    for u, v in zip(a.model.layers, b.model.layers):
        np.testing.assert_array_equal(u.weight, v.weight)
    with pytest.raises(ValueError, match="perturbation returned float64 images for a float32 "
                                         r"batch.*x_tilde.astype\(x.dtype\)"):
        fit_stable(_small_net(T), x, y, perturbation=lambda m, xb, yb, g: xb.astype(float),
                   **kw)
    x64 = x.astype(np.float64)
    i = fit_stable(_small_net(T), x64, y, perturbation=lambda m, xb, yb, g: (xb > 0.5).astype(
        np.uint8), optimizer=SGD(0.1), **kw)
    f = fit_stable(_small_net(T), x64, y, perturbation=lambda m, xb, yb, g: (xb > 0.5).astype(
        float), optimizer=SGD(0.1), **kw)
    np.testing.assert_array_equal(i.loss, f.loss)
    i32 = fit_stable(_small_net(T), x, y, perturbation=lambda m, xb, yb, g: (xb > 0.5).astype(
        int), optimizer=SGD(0.1), **kw)
    f32 = fit_stable(_small_net(T), x, y, perturbation=lambda m, xb, yb, g: (xb > 0.5).astype(
        np.float32), optimizer=SGD(0.1), **kw)
    np.testing.assert_array_equal(i32.loss, f32.loss)


# --------------------------------------------------------------------------- stochastic encoders
@settings(max_examples=example_count(15))
@given(st.integers(0, 2**32 - 1), st.sampled_from(["poisson", "rsc_fixed", "rsc_fresh",
                                                   "fused:current+poisson"]),
       st.sampled_from(["DEFAULT", "HART_CODE", "STABLE_CODE"]), st.integers(1, 4),
       st.integers(1, 3), st.booleans(), st.booleans())
def test_stochastic_encoders_draws(seed, encoder, preset, T, B, same, common):
    """``common_draws=True`` (the default): both encodings are encode() from the same
    generator state, a Generator passed in is left where the clean encode() call leaves it,
    and x~ == x gives identical sequences and MS-MPPD exactly 0. ``False``: one stream, the clean
    encoding's draws, then the perturbed one's, exactly as two encode() calls on one generator
    (with x~ == x, MS-MPPD is that of the encoder's own noise). Either way a seed reproduces the
    result and the image gradient is the encoder's rule applied to dL/d(clean sequence)."""
    from evsnn.grad import input_gradient

    rng = np.random.default_rng(seed)
    n = 4 if encoder.startswith("fused") else 2
    conv = get_convention(preset)
    net = Network([Dense(rng.normal(0, 1, (3, 2 * n if encoder.startswith("fused") else n)),
                         LIF(lam=0.9, theta=0.5)), Dense(rng.normal(0, 1, (2, 3)), Readout())])
    x = rng.choice([0.0, 1.0, 0.5, 0.3], size=(B, n))
    x_t = x.copy() if same else np.clip(x + rng.choice([-0.3, 0.3], size=x.shape), 0, 1)
    y = rng.integers(0, 2, B)
    sigma = 0.3 if "rsc" in encoder else None
    kw = dict(T=T, encoder=encoder, decoder="membrane", convention=conv, sigma=sigma,
              common_draws=common)
    g = np.random.default_rng(seed)
    r = stable_loss_and_grad(net, x, x_t, y, rng=g, **kw)
    ref = np.random.default_rng(seed)
    enc = dict(convention=conv, rng=ref, sigma=sigma)
    np.testing.assert_array_equal(r.sequence, encode(x, encoder, T, **enc))
    if common:
        enc["rng"] = np.random.default_rng(seed)
    np.testing.assert_array_equal(r.sequence_perturbed, encode(x_t, encoder, T, **enc))
    assert g.bit_generator.state == ref.bit_generator.state
    again = stable_loss_and_grad(net, x, x_t, y, rng=seed, **kw)
    assert again.loss == r.loss
    for u, v in zip(_grad_arrays(again), _grad_arrays(r)):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(r.image, input_gradient(encoder, r.grads.input, r.sequence))
    if same and common:
        np.testing.assert_array_equal(r.sequence_perturbed, r.sequence)
        assert r.ms_mppd == 0
    if same and not np.array_equal(r.sequence, r.sequence_perturbed):
        assert r.ms_mppd > 0


def test_common_draws_must_be_a_bool():
    net = Network([Dense(np.ones((2, 2)), LIF(lam=0.9, theta=0.5))])
    x = np.full((1, 2), 0.5)
    with pytest.raises(TypeError, match=r"common_draws must be True or False, got 'yes'"):
        stable_loss_and_grad(net, x, x, np.array([0]), T=2, encoder="poisson", rng=0,
                             decoder="membrane", common_draws="yes")


# --------------------------------------------------------------------------- the training loop
@pytest.mark.parametrize("perturbation, encoder, method, preset", [
    ("rfgsm", "poisson", "bptt", "STABLE_CODE"),
    ("gaussian", "rsc_fixed", "hart", "HART_CODE"),
    ("gaussian", "current", "rate", "STABLE_PAPER"),
])
def test_fit_stable_is_the_loop_written_out(perturbation, encoder, method, preset):
    """fit_stable against the loop written out over stable_loss_and_grad with plain SGD: one
    generator for a permutation per epoch, then per batch the perturbation's draws (R+FGSM's
    random step and its stochastic encodings, or the Gaussian noise), the clean and the
    perturbed encodings; a short last batch; weights, the bias and DLIF factors longer than T
    (their tail untouched) updated; the test accuracy from the same stream afterwards."""
    from evsnn.attacks import SNNSource, rfgsm
    from evsnn.train import SGD, fit_stable, snn_accuracy

    T, eps, lr, seed = 3, 0.1, 0.2, 7
    rng = np.random.default_rng(5)
    net = Network([Dense(rng.normal(0, 1, (5, 4)), DLIF(lam=0.8, theta=0.5),
                         bias=rng.uniform(-0.1, 0.1, 5), dlif_factors=rng.uniform(0.8, 1.2, T + 2)),
                   Dense(rng.normal(0, 1, (3, 5)), Readout(lam=0.9))])
    x = rng.random((11, 4))
    y = rng.integers(0, 3, 11)
    sigma = 0.2 if encoder.startswith("rsc") else None
    conv = get_convention(preset)
    kw = dict(T=T, encoder=encoder, decoder="membrane", method=method, convention=conv,
              sigma=sigma)
    got = fit_stable(net, x, y, rng=seed, perturbation=perturbation, eps=eps, chi=0.3, rho=2.0,
                     epochs=2, batch_size=4, optimizer=SGD(lr), x_test=x[:5], y_test=y[:5],
                     **kw)

    g = np.random.default_rng(seed)
    ws = [np.array(layer.weight) for layer in net.layers]
    bias = np.array(net.layers[0].bias)
    a = np.array(net.layers[0].dlif_factors)
    model = net
    losses = []
    for _ in range(2):
        order = g.permutation(11)
        total = 0.0
        for k in range(0, 11, 4):
            idx = order[k:k + 4]
            xb, yb = x[idx], y[idx]
            if perturbation == "rfgsm":
                src = SNNSource(model, T=T, encoder=encoder, decoder="membrane", convention=conv,
                                surrogate=Triangle(1.0), sigma=sigma)
                xt = rfgsm(src, xb, yb, eps=eps, rng=g).x_adv
            else:
                xt = np.clip(xb + eps * g.standard_normal(xb.shape), 0, 1)
            r = stable_loss_and_grad(model, xb, xt, yb, rng=g, chi=0.3, rho=2.0, **kw)
            for w, gw in zip(ws, r.grads.weights):
                w -= lr * gw
            bias -= lr * r.grads.biases[0]
            a -= lr * r.grads.dlif_factors[0]
            total += r.loss * len(idx)
            model = Network([net.layers[0].replace(weight=ws[0].copy(), bias=bias.copy(),
                                                   dlif_factors=a.copy()),
                             net.layers[1].replace(weight=ws[1].copy())])
        losses.append(total / 11)
    np.testing.assert_array_equal(got.loss, losses)
    for u, v in zip(got.model.layers, model.layers):
        np.testing.assert_array_equal(u.weight, v.weight)
    np.testing.assert_array_equal(got.model.layers[0].bias, bias)
    np.testing.assert_array_equal(got.model.layers[0].dlif_factors, a)
    np.testing.assert_array_equal(a[T:], net.layers[0].dlif_factors[T:])
    assert not np.array_equal(a[:T], net.layers[0].dlif_factors[:T])
    assert got.test_accuracy == snn_accuracy(model, x[:5], y[:5], T=T, encoder=encoder,
                                             decoder="membrane", convention=conv, rng=g,
                                             sigma=sigma)


def test_a_bad_rng_is_named():
    """Regression: ``rng="abc"`` failed inside NumPy ("SeedSequence expects int or sequence of
    ints") without naming the argument; now the encoders' check names ``rng`` and what it
    accepts."""
    net = _small_net(2)
    x = np.full((1, 4), 0.5)
    with pytest.raises(TypeError, match="rng must be a seed, SeedSequence, BitGenerator or "
                                        "Generator, got str"):
        stable_loss_and_grad(net, x, x, np.array([0]), T=2, encoder="poisson", rng="abc")
    from evsnn.train import fit_stable

    with pytest.raises(TypeError, match="rng must be a seed.*got str"):
        fit_stable(net, x, np.array([0]), T=2, rng="abc", epochs=1, decoder="membrane")


# --------------------------------------------------------------------------- stable_loss itself
@settings(max_examples=example_count(30))
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 3),
       st.sampled_from(["sum", "mean"]), st.sampled_from(["leak", "input", None]),
       st.sampled_from([0.0, 1.0, 0.37]), st.sampled_from([0.0, 1.0, 1e6]),
       st.sampled_from([0.0, 1.0, 0.6]))
def test_stable_loss_gradient_is_its_derivative(seed, T, B, reduction, placement, chi, rho, lam):
    """stable_loss is smooth in every input: its returned gradients (scores, both layer
    inputs, W, a) against central differences; ε against the recursion of Eq. 11 written out;
    the input gradients each other's negatives. λ at 0 and 1, χ at 0 and 1, ρ = 0 and huge,
    T = 1, B = 1."""
    rng = np.random.default_rng(seed)
    n_in, n_out, C = 3, 2, 3
    sc, sp = rng.normal(0, 2, (B, C)), rng.normal(0, 2, (B, C))
    s, s_t = rng.random((T, B, n_in)), rng.random((T, B, n_in))
    w = rng.normal(0, 1, (n_out, n_in))
    a = rng.uniform(0.5, 1.5, T) if placement else None
    y = rng.integers(0, C, B)
    kw = dict(chi=chi, rho=rho, reduction=reduction, dlif_factor=placement or "leak")

    def f():
        return stable_loss(sc, sp, y, s, s_t, w, lam, dlif_factors=a, **kw)

    r = f()
    eps, e = [], np.zeros((B, n_out))
    for t in range(T):  # Eq. 11 with the DLIF factor on the leak or on the input
        leak = lam * (a[t] if placement == "leak" else 1.0)
        gain = a[t] if placement == "input" else 1.0
        e = leak * e + gain * (s[t] - s_t[t]) @ w.T
        eps.append(e)
    eps = np.stack(eps)
    np.testing.assert_allclose(r.eps, eps, rtol=1e-13, atol=1e-15)
    per = (eps ** 2).sum(axis=(0, 2)) / (1 if reduction == "sum" else T * n_out)
    assert r.ms_mppd == pytest.approx(per.mean(), rel=1e-13)
    assert r.loss == pytest.approx(r.task + rho * r.ms_mppd, rel=1e-15)
    np.testing.assert_array_equal(r.input_perturbed, -r.input_clean)
    # each term differenced on its own: with ρ = 1e6 the loss's rounding would swamp the
    # task term's differences; the ρ term's gradient is ρ times that of ms_mppd
    pairs = [(r.scores_clean, sc, "task"), (r.scores_perturbed, sp, "task")]
    for an, arr in [(r.input_clean, s), (r.input_perturbed, s_t), (r.weight, w)] + (
            [] if a is None else [(r.dlif_factors, a)]):
        if rho == 0:
            assert np.all(an == 0)
        else:
            pairs.append((an / rho, arr, "ms_mppd"))
    if a is None:
        assert r.dlif_factors is None
    for an, arr, term in pairs:
        fd = central_differences(lambda: getattr(f(), term), arr)
        np.testing.assert_allclose(an, fd, rtol=RTOL_FINITE_DIFF,
                                   atol=RTOL_FINITE_DIFF * max(np.abs(fd).max(), 1e-6))


def test_stable_loss_refuses_inputs_of_another_batch():
    """Regression: scores of B = 2 samples with layer inputs of B = 1 were accepted, the
    cross-entropies averaged over 2 samples and the MS-MPPD over 1: a loss of two batches."""
    s = np.array([1.0, 0.0]).reshape(2, 1, 1)
    with pytest.raises(ValueError, match=r"s_clean holds 1 samples .* but scores_clean 2; "
                                         "the layer inputs and the scores must come from the "
                                         "same batch"):
        stable_loss(np.zeros((2, 2)), np.zeros((2, 2)), np.array([0, 1]), s, np.zeros_like(s),
                    [[1.0]], 0.5)
    # and the two runs' inputs of different shapes are named as stable_loss's arguments
    with pytest.raises(ValueError, match=r"s_clean has shape \(2, 1, 1\) but s_perturbed has "
                                         r"\(1, 1, 1\)"):
        stable_loss(np.zeros((1, 2)), np.zeros((1, 2)), np.array([0]), s, s[:1], [[1.0]], 0.5)


def test_unknown_options_are_named():
    """Regression: ``loss=`` (fit_snn's habit) fell through **method_options into backward(),
    which failed with "backward() got an unexpected keyword argument 'loss'", naming neither
    this function nor the options it takes; fit_stable passes its options on, so it failed the
    same way."""
    from evsnn.train import fit_stable

    net = _small_net(2)
    x = np.full((1, 4), 0.5)
    y = np.array([0])
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['loss'\] for "
                                        r"stable_loss_and_grad.*no loss=.*detach_reset"):
        stable_loss_and_grad(net, x, x, y, T=2, encoder="current", loss="ce")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['loss'\]"):
        fit_stable(net, x, y, T=2, rng=0, epochs=1, decoder="membrane", loss="ce")
