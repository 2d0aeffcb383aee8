"""Stable's training framework (Ding et al., ICML 2024, §3.4, Eq. 14, 16-18):
``evsnn.grad.stable_loss_and_grad`` against the reverse-mode tape, the ρ term against central
differences, and ``evsnn.train.fit_stable``."""

import numpy as np
import pytest
from conftest import RTOL_FINITE_DIFF, RTOL_HAND
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import tape as tp
from reference.helpers import (
    assert_grads_equal_tape, assert_tape, cases, central_differences, example_count, no_near_ties,
    tape_surrogate,
)

from evsnn.ann import ANN
from evsnn.clock import Dense, Network
from evsnn.clock.conv import ConvNetwork, Flatten, Linear, Neuron
from evsnn.conventions import get_convention
from evsnn.data import load_digits
from evsnn.grad import Sigmoid, Triangle, loss_and_grad, stable_loss_and_grad
from evsnn.params import DLIF, LIF, Readout
from evsnn.train import SGD, AdamW, TrainResult, fit_snn, fit_stable


# --------------------------------------------------------------------------- the gradient
@settings(max_examples=example_count(60))
@given(cases(kinds=("lif_hard", "lif_soft", "dlif"), T=(1, 6)),
       st.sampled_from(["rate", "membrane"]), st.sampled_from(["sum", "mean"]),
       st.sampled_from([0.0, 0.25, 0.5, 1.0]),
       st.sampled_from([0.0, 0.5, 1.0, 2.0]),
       st.sampled_from([Triangle(1.0), Triangle(0.5), Sigmoid(5.0, "code")]))
def test_stable_gradient_equals_tape(case, decoder, reduction, chi, rho, surrogate):
    """The full gradient of Eq. 17 (both cross-entropies through the whole network on their
    runs, MS-MPPD through layers[:L] on both runs and directly into W^L, a^L) equals the tape's
    reverse mode of the same expression, x~ a constant; 1-3 layers, LIF / DLIF (either factor
    placement), with or without a Readout, rate and membrane decoding."""
    net, seq, conv, rng = case["net"], case["seq"], case["conv"], case["rng"]
    seq_t = np.where(rng.random(seq.shape) < 0.3, 1.0 - seq, seq)  # stays dyadic
    labels = rng.integers(0, net.n_out, seq.shape[1])
    kw = dict(encoder=None, decoder=decoder, convention=conv, chi=chi, rho=rho,
              reduction=reduction, surrogate=surrogate)
    if not any(layer.spiking for layer in net.layers):
        with pytest.raises(ValueError, match="no spiking layer"):
            stable_loss_and_grad(net, seq, seq_t, labels, **kw)
        return
    if not case["dyadic"]:
        no_near_ties(net, seq, conv)
        no_near_ties(net, seq_t, conv)
    got = stable_loss_and_grad(net, seq, seq_t, labels, **kw)
    loss, ms, ref = tp.stable_gradients(net, seq, seq_t, labels, conv, chi=chi, rho=rho,
                                        reduction=reduction, decoder=decoder,
                                        surrogate=tape_surrogate(surrogate))
    assert got.loss == pytest.approx(loss, rel=1e-12, abs=1e-14)
    assert got.ms_mppd == pytest.approx(ms, rel=1e-12, abs=1e-14)
    assert got.task + rho * got.ms_mppd == pytest.approx(got.loss, rel=1e-15)
    assert_grads_equal_tape(got.grads, ref)


def _dlif_net(rng, T, readout=True):
    """LIF → DLIF (→ Readout): L = 1, a middle layer when a readout follows."""
    layers = [Dense(rng.uniform(-0.5, 1.5, (4, 5)), LIF(lam=0.8, theta=0.6)),
              Dense(rng.uniform(-0.5, 1.5, (3, 4)), DLIF(lam=0.7, theta=0.5),
                    dlif_factors=rng.uniform(0.6, 1.4, T + 1))]
    if readout:
        layers.append(Dense(rng.standard_normal((2, 3)), Readout(lam=0.9)))
    return Network(layers)


def test_the_composition_is_exercised():
    """A fixed case where every part of the gradient acts: the MS-MPPD term changes the
    gradients of every layer below L+1 (through layers[:L] and directly), and the perturbed
    run's cross-entropy changes them too (χ < 1)."""
    rng = np.random.default_rng(1)
    T = 6
    net = _dlif_net(rng, T)
    seq = (rng.random((T, 3, 5)) < 0.5).astype(float)
    seq_t = np.where(rng.random(seq.shape) < 0.3, 1.0 - seq, seq)
    labels = np.array([0, 1, 1])
    conv = get_convention("STABLE_PAPER")
    base = dict(encoder=None, convention=conv)
    r0 = stable_loss_and_grad(net, seq, seq_t, labels, chi=1.0, rho=0.0, **base)
    r1 = stable_loss_and_grad(net, seq, seq_t, labels, chi=1.0, rho=1.0, **base)
    r2 = stable_loss_and_grad(net, seq, seq_t, labels, chi=0.5, rho=0.0, **base)
    assert r1.ms_mppd > 0 and r1.layer == 1
    for k in (0, 1):
        assert not np.allclose(r1.grads.weights[k], r0.grads.weights[k]), k
        assert not np.allclose(r2.grads.weights[k], r0.grads.weights[k]), k
    assert not np.allclose(r1.grads.dlif_factors[1][:T], r0.grads.dlif_factors[1][:T])
    # the factor beyond T is not read by the run: no gradient
    assert r1.grads.dlif_factors[1][T] == 0.0
    # the readout above L gets no MS-MPPD gradient
    np.testing.assert_array_equal(r1.grads.weights[2], r0.grads.weights[2])
    _, _, ref = tp.stable_gradients(net, seq, seq_t, labels, conv, chi=1.0, rho=1.0,
                                    reduction="sum", surrogate=("triangle", 1.0))
    for k in range(3):
        assert_tape(r1.grads.weights[k], ref["weights"][k], f"dL/dW[{k}]",
                    ref["magnitudes"]["weights"][k])


def test_rho_term_against_central_differences():
    """The MS-MPPD term alone (the gradient at ρ = 1 minus that at ρ = 0, the same forward) is
    the derivative of ``ms_mppd``, a polynomial in W^L, a^L and — for L the first layer — the
    clean current input, with the runs' spikes below L fixed: central differences."""
    rng = np.random.default_rng(2)
    T = 5
    conv = get_convention("STABLE_PAPER")
    labels = np.array([1, 0])
    # L = 1 (a middle DLIF layer): its weight and factors
    net = _dlif_net(rng, T)
    seq = (rng.random((T, 2, 5)) < 0.5).astype(float)
    seq_t = np.where(rng.random(seq.shape) < 0.3, 1.0 - seq, seq)
    kw = dict(encoder=None, convention=conv, chi=0.5)
    g1 = stable_loss_and_grad(net, seq, seq_t, labels, rho=1.0, **kw).grads
    g0 = stable_loss_and_grad(net, seq, seq_t, labels, rho=0.0, **kw).grads
    w = np.array(net.layers[1].weight)
    a = np.array(net.layers[1].dlif_factors)

    def ms():
        layers = list(net.layers)
        layers[1] = layers[1].replace(weight=w.copy(), dlif_factors=a.copy())
        return stable_loss_and_grad(Network(layers), seq, seq_t, labels, rho=1.0,
                                    **kw).ms_mppd

    for an, fd in ((g1.weights[1] - g0.weights[1], central_differences(ms, w)),
                   (g1.dlif_factors[1] - g0.dlif_factors[1], central_differences(ms, a))):
        assert np.abs(an).max() > 0
        np.testing.assert_allclose(an, fd, rtol=RTOL_FINITE_DIFF,
                                   atol=RTOL_FINITE_DIFF * np.abs(fd).max())
    # L = 0 on current input: the clean sequence, x~ constant
    one = Network([Dense(rng.uniform(-0.5, 1.0, (3, 4)), DLIF(lam=0.6, theta=0.5),
                         dlif_factors=rng.uniform(0.6, 1.4, T))])
    x = rng.random((T, 2, 4))
    x_t = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0, 1)
    kw = dict(encoder=None, convention=conv.with_(dlif_factor="input"), chi=0.5,
              reduction="mean")
    an = (stable_loss_and_grad(one, x, x_t, labels, rho=1.0, **kw).grads.input
          - stable_loss_and_grad(one, x, x_t, labels, rho=0.0, **kw).grads.input)
    fd = central_differences(
        lambda: stable_loss_and_grad(one, x, x_t, labels, rho=1.0, **kw).ms_mppd, x)
    np.testing.assert_allclose(an, fd, rtol=RTOL_FINITE_DIFF,
                               atol=RTOL_FINITE_DIFF * np.abs(fd).max())


@pytest.mark.parametrize("encoder", ["current", "poisson"])
@pytest.mark.parametrize("decoder", ["rate", "membrane"])
def test_chi_one_rho_zero_is_loss_and_grad_bit_for_bit(encoder, decoder):
    """χ = 1, ρ = 0: Eq. 17 is the clean cross-entropy; every gradient, the loss, the scores and
    the image gradient equal loss_and_grad's exactly (same surrogate, same seed: the clean
    encoding is drawn first)."""
    rng = np.random.default_rng(3)
    net = _dlif_net(rng, 4, readout=decoder == "membrane")
    x = rng.random((3, 5))
    x_t = np.clip(x + 0.3 * rng.standard_normal(x.shape), 0, 1)
    y = np.array([0, 1, 2]) % net.n_out
    kw = dict(T=4, encoder=encoder, decoder=decoder, surrogate=Triangle(1.0))
    want = loss_and_grad(net, x, y, rng=7, **kw)
    got = stable_loss_and_grad(net, x, x_t, y, rng=7, chi=1.0, rho=0.0, **kw)
    assert got.loss == want.loss and got.task == want.loss
    np.testing.assert_array_equal(got.sequence, want.sequence)
    np.testing.assert_array_equal(got.scores, want.scores)
    np.testing.assert_array_equal(got.correct, want.correct)
    np.testing.assert_array_equal(got.image, want.image)
    np.testing.assert_array_equal(got.grads.input, want.grads.input)
    for field in ("weights", "biases", "dlif_factors", "membrane"):
        for u, v in zip(getattr(got.grads, field), getattr(want.grads, field)):
            if v is None:
                assert u is None
            else:
                np.testing.assert_array_equal(u, v, err_msg=field)


def test_defaults_follow_stable_and_the_convention():
    """The surrogate default is Stable's triangle, ω = 1 (Eq. 18), not backward's sigmoid; the
    MS-MPPD reduction defaults to the convention's ``mppd_reduction`` (STABLE_PAPER: sum,
    STABLE_CODE: mean), an explicit ``reduction`` overriding it."""
    rng = np.random.default_rng(4)
    net = _dlif_net(rng, 4)
    seq = (rng.random((4, 2, 5)) < 0.5).astype(float)
    seq_t = 1.0 - seq
    y = np.array([0, 1])
    r = stable_loss_and_grad(net, seq, seq_t, y, convention="STABLE_PAPER")
    t = stable_loss_and_grad(net, seq, seq_t, y, convention="STABLE_PAPER",
                             surrogate=Triangle(1.0))
    s = stable_loss_and_grad(net, seq, seq_t, y, convention="STABLE_PAPER",
                             surrogate=Sigmoid(5.0, "code"))
    np.testing.assert_array_equal(r.grads.weights[0], t.grads.weights[0])
    assert not np.allclose(r.grads.weights[0], s.grads.weights[0])
    for name, red in (("STABLE_PAPER", "sum"), ("STABLE_CODE", "mean")):
        other = "mean" if red == "sum" else "sum"
        d = stable_loss_and_grad(net, seq, seq_t, y, convention=name)
        e = stable_loss_and_grad(net, seq, seq_t, y, convention=name, reduction=red)
        o = stable_loss_and_grad(net, seq, seq_t, y, convention=name, reduction=other)
        assert d.ms_mppd == e.ms_mppd != o.ms_mppd
    # sum over 4 steps and 3 neurons = 12 · mean (hand: Eq. 14 sum vs the code's mean)
    p = stable_loss_and_grad(net, seq, seq_t, y, convention="STABLE_PAPER", reduction="sum")
    m = stable_loss_and_grad(net, seq, seq_t, y, convention="STABLE_PAPER", reduction="mean")
    assert p.ms_mppd == pytest.approx(12 * m.ms_mppd, rel=RTOL_HAND)


def test_stable_loss_and_grad_refusals():
    rng = np.random.default_rng(5)
    seq = np.ones((3, 2, 4))
    y = np.array([0, 1])
    cnet = ConvNetwork([Flatten(), Linear(np.full((2, 4), 0.3)), Neuron(LIF())],
                       input_shape=(1, 2, 2))
    with pytest.raises(TypeError, match="MS-MPPD training of a ConvNetwork is not implemented"
                                        ".*use a dense"):
        stable_loss_and_grad(cnet, np.ones((3, 2, 1, 2, 2)), np.ones((3, 2, 1, 2, 2)), y)
    ro = Network([Dense(rng.standard_normal((2, 4)), Readout())])
    with pytest.raises(ValueError, match="no spiking layer"):
        stable_loss_and_grad(ro, seq, seq, y)
    with pytest.raises(TypeError, match="network must be an evsnn Network, got ANN"):
        stable_loss_and_grad(ANN.mlp([4, 2], rng=0), seq, seq, y)
    net = Network([Dense(rng.standard_normal((2, 4)), LIF())])
    with pytest.raises(ValueError, match="x_tilde has shape .* but x has"):
        stable_loss_and_grad(net, seq, seq[:, :1], y)
    with pytest.raises(ValueError, match="chi"):
        stable_loss_and_grad(net, seq, seq, y, chi=1.5)
    with pytest.raises(ValueError, match="method='ann'"):
        stable_loss_and_grad(net, seq, seq, y, method="ann")
    with pytest.raises(ValueError, match="precalculate=True keeps only time sums"):
        stable_loss_and_grad(net, seq, seq, y, method="hart", precalculate=True)


# --------------------------------------------------------------------------- the training loop
TRAIN, TEST = load_digits("train"), load_digits("test")
X, Y = TRAIN.x[:512], TRAIN.y[:512]
XT, YT = TEST.x[:200], TEST.y[:200]


def _digits_net(T, seed=0):
    rng = np.random.default_rng(seed)
    return Network([Dense(rng.normal(0, 3 / 8, (100, 64)), DLIF(lam=0.9),
                          dlif_factors=np.ones(T)),
                    Dense(rng.normal(0, 0.1, (10, 100)), Readout())])


def test_fit_stable_gaussian_learns_and_lowers_ms_mppd():
    """Stable with Gaussian noise (ε = 8/255) on 512 digits, 3 epochs, against the same run with
    ρ = 0. Measured (this code, 2026-12-02): test accuracy 0.87 (ρ = 1) and 0.905 (ρ = 0); the
    MS-MPPD of the trained models on noisy test images 4.6 (ρ = 1) against 32.7 (ρ = 0). The
    assertions sit well inside: accuracy above half of 0.87 (chance 0.1), MS-MPPD at most half
    of the ρ = 0 model's."""
    T = 6
    kw = dict(T=T, rng=3, eps=8 / 255, decoder="membrane", epochs=3, batch_size=32,
              x_test=XT, y_test=YT)
    r1 = fit_stable(_digits_net(T), X, Y, rho=1.0, optimizer=AdamW(1e-2), **kw)
    r0 = fit_stable(_digits_net(T), X, Y, rho=0.0, optimizer=AdamW(1e-2), **kw)
    assert isinstance(r1, TrainResult) and r1.loss.shape == (3,)
    assert r1.loss[-1] < r1.loss[0]
    assert r1.test_accuracy > 0.45
    noisy = np.clip(XT + 8 / 255 * np.random.default_rng(9).standard_normal(XT.shape), 0, 1)
    ms = [stable_loss_and_grad(r.model, XT, noisy, YT, T=T, encoder="current",
                               decoder="membrane").ms_mppd for r in (r1, r0)]
    assert ms[0] < 0.5 * ms[1]
    # the DLIF factors were trained
    assert not np.array_equal(r1.model.layers[0].dlif_factors, np.ones(T))


def test_fit_stable_is_seeded():
    T = 4
    kw = dict(T=T, eps=0.1, decoder="membrane", epochs=1, batch_size=64)
    a = fit_stable(_digits_net(T), X[:128], Y[:128], rng=5, optimizer=AdamW(1e-2), **kw)
    b = fit_stable(_digits_net(T), X[:128], Y[:128], rng=5, optimizer=AdamW(1e-2), **kw)
    c = fit_stable(_digits_net(T), X[:128], Y[:128], rng=6, optimizer=AdamW(1e-2), **kw)
    for u, v in zip(a.model.layers, b.model.layers):
        np.testing.assert_array_equal(u.weight, v.weight)
    np.testing.assert_array_equal(a.loss, b.loss)
    assert not np.array_equal(a.model.layers[0].weight, c.model.layers[0].weight)


def test_fit_stable_chi_one_rho_zero_is_fit_snn_bit_for_bit():
    """χ = 1, ρ = 0 is cross-entropy training. With a perturbation that draws nothing from
    ``rng`` and a deterministic encoder, both loops consume the same stream (one permutation
    per epoch), so whole runs agree bit for bit (the same surrogate given to both: fit_snn's
    bptt default is the sigmoid, fit_stable's Stable's triangle). With "gaussian" the streams
    differ after the first draw; one step's gradients are compared in
    test_chi_one_rho_zero_is_loss_and_grad_bit_for_bit."""
    T = 4
    kw = dict(T=T, rng=2, decoder="membrane", epochs=2, batch_size=48, x_test=XT, y_test=YT,
              surrogate=Triangle(1.0))
    a = fit_snn(_digits_net(T), X[:96], Y[:96], optimizer=SGD(0.1, momentum=0.9), **kw)
    b = fit_stable(_digits_net(T), X[:96], Y[:96], chi=1.0, rho=0.0,
                   perturbation=lambda m, x, y, rng: np.clip(x + 0.2, 0, 1),
                   optimizer=SGD(0.1, momentum=0.9), **kw)
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.train_accuracy, b.train_accuracy)
    assert a.test_accuracy == b.test_accuracy
    for u, v in zip(a.model.layers, b.model.layers):
        np.testing.assert_array_equal(u.weight, v.weight)
        if u.dlif_factors is not None:
            np.testing.assert_array_equal(u.dlif_factors, v.dlif_factors)


def test_fit_stable_chi_one_rho_zero_is_fit_snn_under_a_stochastic_encoder():
    """With common draws (the default) the perturbed batch is encoded with the clean one's
    draws, so the generator advances as in fit_snn and Poisson-coded training with χ = 1,
    ρ = 0 equals fit_snn bit for bit; with independent draws the streams part from the second
    batch on."""
    T = 4
    kw = dict(T=T, rng=3, encoder="poisson", decoder="membrane", epochs=2, batch_size=48,
              x_test=XT, y_test=YT, surrogate=Triangle(1.0))
    a = fit_snn(_digits_net(T), X[:96], Y[:96], optimizer=SGD(0.1, momentum=0.9), **kw)
    same = dict(chi=1.0, rho=0.0, perturbation=lambda m, x, y, rng: np.clip(x + 0.2, 0, 1))
    b = fit_stable(_digits_net(T), X[:96], Y[:96], optimizer=SGD(0.1, momentum=0.9), **same,
                   **kw)
    c = fit_stable(_digits_net(T), X[:96], Y[:96], optimizer=SGD(0.1, momentum=0.9), **same,
                   common_draws=False, **kw)
    np.testing.assert_array_equal(a.loss, b.loss)
    assert a.test_accuracy == b.test_accuracy
    for u, v in zip(a.model.layers, b.model.layers):
        np.testing.assert_array_equal(u.weight, v.weight)
    assert not np.array_equal(a.loss, c.loss)


def test_fit_stable_perturbations():
    """"gaussian" is clip(x + ε N(0, I), 0, 1) from ``rng`` (seen through a callable that
    records what it is given); "rfgsm" stays in the ε-ball and the box; a callable gets the
    current model."""
    T = 3
    net = _digits_net(T)
    x, y = X[:16], Y[:16]
    seen = []

    def spy(model, xb, yb, rng):
        seen.append((model, xb.copy()))
        return np.clip(xb + 0.05 * rng.standard_normal(xb.shape), 0, 1)

    kw = dict(T=T, decoder="membrane", epochs=1, batch_size=8, optimizer=SGD(0.1))
    a = fit_stable(net, x, y, rng=4, perturbation=spy, **kw)
    b = fit_stable(net, x, y, rng=4, perturbation="gaussian", eps=0.05, **kw)
    np.testing.assert_array_equal(a.loss, b.loss)  # the same draws in the same order
    assert seen[0][0] is net and seen[1][0] is not net  # the second batch sees the updated model
    adv = []

    def record(model, xb, yb, rng):
        from evsnn.attacks import SNNSource, rfgsm

        src = SNNSource(model, T=T, encoder="current", decoder="membrane",
                        surrogate=Triangle(1.0))
        out = rfgsm(src, xb, yb, eps=0.1, rng=rng).x_adv
        adv.append((xb, out))
        return out

    c = fit_stable(net, x, y, rng=4, perturbation="rfgsm", eps=0.1, **kw)
    d = fit_stable(net, x, y, rng=4, perturbation=record, **kw)
    np.testing.assert_array_equal(c.loss, d.loss)
    assert len(adv) == 2  # one per batch: the loop below checks every perturbed batch
    for xb, out in adv:
        assert np.all(np.abs(out - xb) <= 0.1 + 1e-12) and out.min() >= 0 and out.max() <= 1
        assert np.any(out != xb)


def test_fit_stable_refusals():
    T = 3
    net = _digits_net(T)
    x, y = X[:8], Y[:8]
    kw = dict(T=T, rng=0, decoder="membrane", epochs=1)
    cnet = ConvNetwork([Flatten(), Linear(np.full((10, 64), 0.3)), Neuron(LIF())],
                       input_shape=(1, 8, 8))
    with pytest.raises(TypeError, match="fit_stable: MS-MPPD training of a ConvNetwork is not "
                                        "implemented.*use a dense evsnn.clock.Network"):
        fit_stable(cnet, x.reshape(8, 1, 8, 8), y, T=T, rng=0)
    ro = Network([Dense(np.ones((10, 64)), Readout())])
    with pytest.raises(ValueError, match="no spiking layer"):
        fit_stable(ro, x, y, **kw)
    with pytest.raises(ValueError, match="eps"):
        fit_stable(net, x, y, eps=-0.1, **kw)
    for chi in (-0.1, 1.5):
        with pytest.raises(ValueError, match="chi"):
            fit_stable(net, x, y, chi=chi, **kw)
    with pytest.raises(ValueError, match="rho"):
        fit_stable(net, x, y, rho=-1.0, **kw)
    with pytest.raises(ValueError, match=r"perturbation='uniform' is not a perturbation; use one "
                                         r"of \['gaussian', 'rfgsm'\]"):
        fit_stable(net, x, y, perturbation="uniform", **kw)
    with pytest.raises(ValueError, match="perturbation returned .* for a batch"):
        fit_stable(net, x, y, perturbation=lambda m, xb, yb, r: xb[:1], **kw)
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        fit_stable(net, x, y, perturbation=lambda m, xb, yb, r: xb + 2.0, **kw)
