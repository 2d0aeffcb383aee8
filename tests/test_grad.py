"""Gradient methods: kernels vs twins, HART pre-calculation, rate-family factors, encoder rules,
losses, and errors. (The independent check against the reverse-mode tape is in
tests/test_grad_vs_tape.py.)"""

import numpy as np
import pytest
from conftest import ATOL_TWIN, ATOL_TWIN_FLOAT32, RTOL_TWIN, RTOL_TWIN_FLOAT32
from hypothesis import given
from hypothesis import strategies as st

from evsnn.clock import Dense, Network, simulate
from evsnn.clock.simulate import _layer_factors
from evsnn.conventions import get_convention
from evsnn.grad import (
    Sigmoid,
    Triangle,
    backward,
    cross_entropy,
    decoder_vjp,
    input_gradient,
    loss_and_grad,
    mixed,
    rga_factor,
    spike_count_loss,
    surrogate_derivative,
    ttfs_loss,
)
from evsnn.grad.backward import _bptt_layer, _tempbp_layer
from evsnn.params import LIF, Readout, TraceLIF
from reference import grad as ref


@st.composite
def recorded_layers(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    T, B, n_in, n_out = draw(st.integers(1, 12)), draw(st.integers(1, 3)), 4, 3
    kind = draw(st.sampled_from(["lif", "trace", "readout"]))
    if kind == "lif":
        neuron = LIF(lam=draw(st.floats(0, 1)), theta=0.5, reset=draw(st.sampled_from(["hard", "soft"])),
                     v_rest=draw(st.floats(-0.3, 0.3)))
    elif kind == "trace":
        neuron = TraceLIF(tau_mem_ms=draw(st.floats(1, 8)), tau_syn_ms=draw(st.floats(1, 8)), theta=0.5,
                          output=draw(st.sampled_from(["spike", "trace"])))
    else:
        neuron = Readout(lam=draw(st.floats(0, 1)))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    net = Network([Dense(rng.standard_normal((n_out, n_in)) * 1.5, neuron)])
    x = (rng.random((T, B, n_in)) < 0.6).astype(dtype)
    res = simulate(net, x, record=True)
    g_out = rng.standard_normal((T, B, n_out)).astype(dtype)
    return net.layers[0], res.layers[0], g_out, dtype, draw(st.booleans()), draw(st.booleans())


def _assert_twin(got, want, dtype):
    if dtype == np.float32:  # exp differs by an ulp between numba and NumPy in float32
        np.testing.assert_allclose(got, want, rtol=RTOL_TWIN_FLOAT32, atol=ATOL_TWIN_FLOAT32)
    else:
        np.testing.assert_allclose(got, want, rtol=RTOL_TWIN, atol=ATOL_TWIN)


@given(recorded_layers(), st.sampled_from([Sigmoid(5.0, "code"), Sigmoid(3.0, "paper"), Triangle(0.7)]))
def test_bptt_kernel_matches_twin(case, surrogate):
    layer, rec, g_out, dtype, detach, prune = case
    dtype = np.dtype(dtype)
    args, leak, _ = _layer_factors(layer, rec.m.shape[0], get_convention("DEFAULT"), dtype)
    kind, p, scale = surrogate.kernel_args()
    spikes = rec.spikes if rec.spikes is not None else rec.m
    common = (g_out, rec.m, rec.v, spikes, dtype.type(args.v_init), leak, dtype.type(args.theta),
              dtype.type(args.v_rest), args.hard_reset, args.spiking, args.emit_trace,
              dtype.type(args.trace_coef), kind, dtype.type(p), dtype.type(scale), detach, prune)
    got, want = np.full_like(rec.m, np.nan), np.full_like(rec.m, np.nan)
    _bptt_layer(*common, got)
    ref._bptt_layer_kernel(*common, want)
    assert got.dtype == dtype
    _assert_twin(got, want, dtype)


@given(recorded_layers(), st.booleans())
def test_tempbp_kernel_matches_twin(case, intra):
    layer, rec, g_out, dtype, _, _ = case
    if rec.trace is None:
        return
    dtype = np.dtype(dtype)
    a = layer.neuron.kernel_args()
    common = (g_out, rec.m, rec.v, rec.spikes, rec.trace, dtype.type(a.v_init), dtype.type(a.lam),
              dtype.type(a.theta), dtype.type(a.v_rest), a.hard_reset, a.emit_trace,
              dtype.type(a.trace_coef), dtype.type(8.0), dtype.type(a.trace_coef / 4),
              dtype.type(5.0), intra)
    got, want = np.full_like(rec.m, np.nan), np.full_like(rec.m, np.nan)
    _tempbp_layer(*common, got)
    ref._tempbp_layer_kernel(*common, want)
    _assert_twin(got, want, dtype)


def _net(rng, sizes=(6, 5, 4), neuron=None, readout=False):
    return Network.mlp(list(sizes), neuron or LIF(lam=0.8, theta=0.6, reset="soft"), rng=rng,
                       scale=2.0, readout=readout)


@given(st.integers(0, 2**32 - 1), st.integers(1, 10), st.floats(0.3, 2.0))
def test_hart_precalculated_equals_prune_then_average(seed, T, gamma):
    rng = np.random.default_rng(seed)
    net = _net(rng)
    x = rng.random((3, 6))
    y = rng.integers(0, 4, 3)
    full = loss_and_grad(net, x, y, T=T, encoder="current", method="hart", surrogate=Triangle(gamma))
    pre = loss_and_grad(net, x, y, T=T, encoder="current", method="hart", surrogate=Triangle(gamma),
                        precalculate=True)
    for a, b in zip(full.grads.weights, pre.grads.weights):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(full.image, pre.image, rtol=1e-12, atol=1e-15)


def test_hart_gradient_is_constant_in_time_and_precalc_rejects_time_varying_upstream():
    rng = np.random.default_rng(0)
    net = _net(rng)
    r = loss_and_grad(net, rng.random((2, 6)), np.array([0, 1]), T=6, encoder="current", method="hart")
    gm = r.grads.membrane[0]
    assert np.all(gm == gm[:1])  # HART Eq. 13: dL/ds^{l-1}(t) is the same for every t
    seq = (rng.random((6, 2, 6)) < 0.5).astype(float)
    res = simulate(net, seq, record=True)
    g_out = rng.standard_normal((6, 2, 4))
    with pytest.raises(ValueError, match="HART pre-calculation needs dL/ds"):
        backward(net, seq, res, g_out, method="hart", precalculate=True)


def test_rga_factor_hand_computed():
    lam = 0.5  # (0.8 + 0.2·0.5)/1.5 = 0.6 on [1-λ, 2] = [0.5, 2]; 0.2 on [0, 0.5]
    np.testing.assert_allclose(rga_factor([-0.1, 0.25, 0.5, 1.0, 2.0, 2.5], lam),
                               [0, 0.2, 0.8, 0.6, 0.6, 0])  # 0.5 lies in both intervals: 0.2 + 0.6


def test_rate_family_structure():
    rng = np.random.default_rng(4)
    net = _net(rng, (5, 4, 3))
    x = rng.random((2, 5))
    y = np.array([0, 2])
    for method in ("rga", "bptr", "rate"):
        r = loss_and_grad(net, x, y, T=8, encoder="current", method=method)
        gm = r.grads.membrane[0]
        assert np.all(gm == gm[:1])  # spread uniformly over time
    # BPTR: no gradient through a neuron that never fired
    res = simulate(net, np.broadcast_to(x, (8, 2, 5)).copy(), record=True)
    silent = res.layers[0].spikes.sum(axis=0) == 0
    r = loss_and_grad(net, x, y, T=8, encoder="current", method="bptr")
    assert np.all(r.grads.membrane[0][0][silent] == 0)


def test_surrogates_hand_computed():
    # σ'(0) = 1/4: code scale ρ/4 at the threshold, paper scale 1/4; triangle peak 1/γ
    assert surrogate_derivative(Sigmoid(5.0, "code"), 1.0, 1.0) == pytest.approx(1.25)
    assert surrogate_derivative(Sigmoid(5.0, "paper"), 1.0, 1.0) == pytest.approx(0.25)
    assert surrogate_derivative(Triangle(0.5), 1.0, 1.0) == pytest.approx(2.0)
    assert surrogate_derivative(Triangle(0.5), 1.6, 1.0) == 0.0


def test_losses_hand_computed():
    loss, g = cross_entropy(np.log(np.array([[1.0, 3.0]])), np.array([1]))
    assert loss == pytest.approx(-np.log(0.75))
    np.testing.assert_allclose(g, [[0.25, -0.25]])
    loss, g = spike_count_loss(np.array([[3.0, 1.0]]), np.array([0]), desired_true=5, desired_false=0)
    assert loss == 0.5 * (4 + 1) and g.tolist() == [[-2.0, 1.0]]
    # double softmax: CE of softmax(ω); at ω = 0 with 2 classes p = (½, ½) and the CE is that of
    # logits (½, ½): ln 2
    loss, g = ttfs_loss(np.zeros((1, 2)), np.array([0]), "double_softmax")
    assert loss == pytest.approx(np.log(2))
    loss, _ = ttfs_loss(np.zeros((1, 2)), np.array([0]), "mse_onehot")
    assert loss == pytest.approx(0.5)


@given(st.integers(0, 2**32 - 1))
def test_softmax_losses_match_finite_differences(seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((3, 4))
    y = rng.integers(0, 4, 3)
    for f in (lambda s: cross_entropy(s, y), lambda s: ttfs_loss(s, y, "double_softmax"),
              lambda s: ttfs_loss(s, y, "mse_onehot")):
        _, g = f(z)
        h = 1e-6
        num = np.zeros_like(z)
        for idx in np.ndindex(z.shape):
            e = np.zeros_like(z)
            e[idx] = h
            num[idx] = (f(z + e)[0] - f(z - e)[0]) / (2 * h)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


def test_decoder_vjp():
    out = np.zeros((4, 1, 2))
    out[2, 0, 0] = 1
    g = decoder_vjp("ttfs", np.array([[1.0, 1.0]]), out)
    # neuron 0 first spikes at t0 = 2: weight T - t0 = 2; neuron 1 silent: step 0, weight 4
    assert g[2, 0, 0] == 2 and g[0, 0, 1] == 4 and g.sum() == 6
    np.testing.assert_array_equal(decoder_vjp("membrane", np.ones((1, 2)), out), np.full((4, 1, 2), 0.25))
    with pytest.raises(ValueError, match="is not a decoder"):
        decoder_vjp("mode", np.ones((1, 2)), out)


def test_encoder_rules():
    seq = np.array([[[1.0, 0.0, 0.5]], [[0.0, 0.0, 1.0]]])
    g = np.ones_like(seq)
    np.testing.assert_array_equal(input_gradient("poisson", g, seq), [[2, 2, 2]])
    np.testing.assert_array_equal(input_gradient("ratesyn_end", g, seq), [[1, 0, 2]])
    np.testing.assert_array_equal(input_gradient("rsc_fresh", g, seq), [[0, 0, 1]])
    fused = np.concatenate([seq, seq], axis=2)
    np.testing.assert_array_equal(input_gradient("fused:current+ttfs", np.ones_like(fused), fused),
                                  [[3, 2, 4]])
    with pytest.raises(ValueError, match="has no input-gradient rule"):
        input_gradient("morse", g, seq)
    with pytest.raises(ValueError, match="cannot split into 2 parts"):
        input_gradient("fused:current+ttfs", g, seq)
    with pytest.raises(ValueError, match="g_seq has shape"):
        input_gradient("current", g[:1], seq)


def test_mixed():
    assert mixed(0.25, np.array([4.0]), np.array([8.0]))[0] == 7.0
    with pytest.raises(ValueError, match="beta=2 must lie in"):
        mixed(2, 1.0, 1.0)


def test_backward_errors():
    rng = np.random.default_rng(0)
    net = _net(rng)
    seq = np.zeros((3, 1, 6))
    res = simulate(net, seq, record=True)
    g = np.zeros((3, 1, 4))
    with pytest.raises(TypeError, match="network must be an evsnn Network"):
        backward("net", seq, res, g)
    with pytest.raises(ValueError, match=r"result must come from simulate\(..., record=True\)"):
        backward(net, seq, simulate(net, seq), g)
    with pytest.raises(ValueError, match="is not a gradient method"):
        backward(net, seq, res, g, method="magic")
    with pytest.raises(ValueError, match="inputs have shape"):
        backward(net, seq[:2], res, g)
    with pytest.raises(ValueError, match="g_output has shape"):
        backward(net, seq, res, g[:, :, :2])
    with pytest.raises(TypeError, match="surrogate must be evsnn.grad.Sigmoid or Triangle"):
        backward(net, seq, res, g, surrogate="sigmoid")
    with pytest.raises(ValueError, match="method='tempbp' needs trace-LIF layers"):
        backward(net, seq, res, g, method="tempbp")
    with pytest.raises(ValueError, match="rho=0 must be finite and > 0"):
        Sigmoid(0)
    with pytest.raises(ValueError, match="scale='both' must be"):
        Sigmoid(5.0, "both")
    with pytest.raises(TypeError, match="rho must be a real number"):
        Sigmoid("5")
    with pytest.raises(ValueError, match="gamma=-1 must be finite and > 0"):
        Triangle(-1)
    with pytest.raises(TypeError, match="gamma must be a real number"):
        Triangle(None)
    with pytest.raises(ValueError, match="T is required when an encoder is given"):
        loss_and_grad(net, np.zeros((1, 6)), [0], encoder="current")
    with pytest.raises(ValueError, match=r"must be an encoded sequence \[T, B, N\]"):
        loss_and_grad(net, np.zeros((1, 6)), [0])
    with pytest.raises(ValueError, match="loss='mse_onehot' is not available for decoder='rate'"):
        loss_and_grad(net, seq, np.array([0]), loss="mse_onehot")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\]"):
        cross_entropy(np.zeros((1, 4)), np.array([7]))
    with pytest.raises(ValueError, match=r"labels must be \[B\] with B = 1"):
        cross_entropy(np.zeros((1, 4)), np.array([0, 1]))
    with pytest.raises(TypeError, match="labels must be integers"):
        cross_entropy(np.zeros((1, 4)), np.array([0.5]))
    with pytest.raises(ValueError, match=r"scores must be \[B, N\]"):
        cross_entropy(np.zeros(4), np.array([0]))
    with pytest.raises(ValueError, match="variant='hinge' is not a TTFS loss"):
        ttfs_loss(np.zeros((1, 2)), np.array([0]), "hinge")
    with pytest.raises(ValueError, match="desired counts must be >= 0"):
        spike_count_loss(np.zeros((1, 2)), np.array([0]), desired_true=-1, desired_false=0)


def test_gamma_search():
    from evsnn.grad.gamma_search import search_gamma

    r = search_gamma(lambda g: -abs(g - 1.5), selection_index=[0, 1], evaluation_index=[2, 3])
    assert r.gamma == 1.5 and len(r.evaluated) == 7
    seen = []
    r = search_gamma(lambda g: seen.append(g) or -(g - 0.7) ** 2, selection_index=[0],
                     evaluation_index=[1], method="golden", iterations=30)
    assert abs(r.gamma - 0.7) < 1e-5 and len(seen) == 32
    with pytest.raises(ValueError, match="share 1 samples"):
        search_gamma(lambda g: 0.0, selection_index=[0, 1], evaluation_index=[1, 2])
    with pytest.raises(ValueError, match="selection_index is empty"):
        search_gamma(lambda g: 0.0, selection_index=[], evaluation_index=[1])
    with pytest.raises(ValueError, match="must be non-empty and positive"):
        search_gamma(lambda g: 0.0, selection_index=[0], evaluation_index=[1], grid=(0.0,))
    with pytest.raises(ValueError, match="must satisfy 0 < low < high"):
        search_gamma(lambda g: 0.0, selection_index=[0], evaluation_index=[1], method="golden",
                     bounds=(2.0, 1.0))
    with pytest.raises(ValueError, match="method='bisect' must be 'grid' or 'golden'"):
        search_gamma(lambda g: 0.0, selection_index=[0], evaluation_index=[1], method="bisect")


@pytest.mark.parametrize("layout", ["repeated view", "fortran order", "time-strided slice"])
def test_backward_and_simulate_do_not_depend_on_the_input_layout(layout):
    # the input gradient is written through a reshaped view of a fresh array; with the input's
    # own layout (np.empty_like) a non-C-ordered input left it unwritten. A view repeating one
    # frame over time also takes simulate's no-copy path.
    net = Network.mlp([6, 8, 4], LIF(lam=0.9, theta=0.5), rng=3, scale=2.5)
    rng = np.random.default_rng(0)
    frame = rng.random((5, 6))
    if layout == "repeated view":
        x = np.broadcast_to(frame, (6, 5, 6))
    elif layout == "fortran order":
        x = np.asfortranarray(rng.random((6, 5, 6)))
    else:
        x = rng.random((12, 5, 6))[::2]
    c = np.ascontiguousarray(x)
    res, res_c = simulate(net, x, record=True), simulate(net, c, record=True)
    for la, lb in zip(res.layers, res_c.layers):
        for field in ("current", "m", "v", "output"):
            np.testing.assert_array_equal(getattr(la, field), getattr(lb, field))
    g_out = rng.standard_normal(res.output.shape)
    got = backward(net, x, res, g_out, method="bptt")
    want = backward(net, c, res_c, g_out, method="bptt")
    np.testing.assert_array_equal(got.input, want.input)
    for a, b in zip(got.weights, want.weights):
        np.testing.assert_array_equal(a, b)
