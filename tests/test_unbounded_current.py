"""Current coding of pixels outside [0, 1] (``pixel_range="real"``) and Stable's unclipped
Gaussian training noise (``fit_stable(clip=False)``).

For direct ("current") coding a pixel is an input current, and the authors' code feeds values
outside the box: Stable's ``main_train-v2.py`` trains on ``images + GN / 255 * randn`` with no
clamp (its models repeat the affinely normalised image over T), and Ding 2025's L1 PGD
evaluates the model outside [0, 1]. Every other encoder reads a pixel as a probability, a
fraction, a time or an intensity and keeps refusing.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import RTOL_FINITE_DIFF, RTOL_HAND

from evsnn.attacks import SNNSource, fgsm
from evsnn.clock import Dense, Network
from evsnn.clock.conv import Conv2d, ConvNetwork, Flatten, Linear, Neuron
from evsnn.encoders import ENCODERS, current, encode, fused
from evsnn.grad import loss_and_grad, stable_loss_and_grad
from evsnn.params import DLIF, LIF, Readout
from evsnn.train import _perturbation, fit_snn, fit_stable, snn_accuracy

_NOT_CURRENT = sorted(set(ENCODERS) - {"current"})
_REFUSED = _NOT_CURRENT + ["fused:current+poisson", "fused:ttfs+current"]
_OUT = np.array([[-1.5, 0.25, 3.0, -0.125], [-2.0, 1.5, 1.75, -4.0]])  # outside the box


def _culprit(method):
    return next(p for p in method.removeprefix("fused:").split("+") if p != "current")


def _refusal(method):
    return (rf"^pixel_range='real' is for current \(direct\) coding only: encoder "
            rf"'{_culprit(method)}' reads a pixel as .*, which must lie in \[0, 1\]; use "
            r"pixel_range='unit' \(or encoder='current'\)$")


# --- the encoder -------------------------------------------------------------------------------
def test_current_repeats_out_of_box_values():
    # hand case: I[t] = x at every step (Ding 2025 Eq. 7), whatever the value
    want = np.array([[[-1.5, 0.25, 3.0, -0.125], [-2.0, 1.5, 1.75, -4.0]]] * 3)
    np.testing.assert_array_equal(current(_OUT, 3, pixel_range="real"), want)
    np.testing.assert_array_equal(encode(_OUT, "current", 3, pixel_range="real"), want)
    f32 = encode(_OUT.astype(np.float32), "current", 3, pixel_range="real")
    assert f32.dtype == np.float32
    np.testing.assert_array_equal(f32, want.astype(np.float32))
    both = fused(_OUT, 3, ("current", "current"), pixel_range="real")
    np.testing.assert_array_equal(both, np.concatenate([want, want], axis=2))


def test_default_still_refuses_out_of_box_pixels():
    msg = (r"^x must lie in \[0, 1\], got values in \[-4.0, 3.0\]; "
           r"scale images to \[0, 1\] first \(e.g. divide 8-bit images by 255\); current coding "
           r"takes any finite value with pixel_range='real'$")
    for call in (lambda: current(_OUT, 3), lambda: encode(_OUT, "current", 3),
                 lambda: encode(_OUT, "current", 3, pixel_range="unit")):
        with pytest.raises(ValueError, match=msg):
            call()
    net = Network.mlp([4, 3], LIF(lam=0.9, theta=0.5), rng=0, scale=2.0)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        SNNSource(net, T=3, encoder="current")(_OUT, [0, 1])
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        SNNSource(net, T=3, encoder="current").predict(_OUT)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        loss_and_grad(net, _OUT, [0, 1], T=3, encoder="current")
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        snn_accuracy(net, _OUT, np.array([0, 1]), T=3)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        fit_snn(net, _OUT, np.array([0, 1]), T=3, rng=0, epochs=1)
    x = np.full((2, 4), 0.5)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):  # x_tilde's check
        stable_loss_and_grad(net, x, _OUT, [0, 1], T=3, encoder="current")


@pytest.mark.parametrize("method", _REFUSED)
def test_every_other_encoder_refuses_the_opt_in(method):
    net = Network.mlp([4 * (2 if method.startswith("fused") else 1), 3], LIF(), rng=0)
    x = np.full((2, 4), 0.5)  # in the box: the option itself is refused
    with pytest.raises(ValueError, match=_refusal(method)):
        encode(x, method, 3, rng=0, sigma=0.1, pixel_range="real")
    with pytest.raises(ValueError, match=_refusal(method)):
        SNNSource(net, T=3, encoder=method, sigma=0.1, pixel_range="real")
    with pytest.raises(ValueError, match=_refusal(method)):
        loss_and_grad(net, x, [0, 1], T=3, encoder=method, rng=0, sigma=0.1,
                      pixel_range="real")
    with pytest.raises(ValueError, match=_refusal(method)):
        snn_accuracy(net, x, np.array([0, 1]), T=3, encoder=method, rng=0, sigma=0.1,
                     pixel_range="real")
    with pytest.raises(ValueError, match=_refusal(method)):
        fit_snn(net, x, np.array([0, 1]), T=3, rng=0, encoder=method, sigma=0.1, epochs=1,
                pixel_range="real")


def test_reasons_name_what_the_pixel_means():
    for method, meaning in (("poisson", "a firing probability per step"),
                            ("ratesyn_start", "the fraction of the T steps that spike"),
                            ("ttfs", r"a spike time, \(1 - x\)·T into the window"),
                            ("rsc_fresh", r"an intensity whose noisy copy is clamped to "
                                          r"\[0, 1\] \(RSC Eq. 10\)")):
        with pytest.raises(ValueError, match=f"reads a pixel as {meaning}, which"):
            encode(np.full((1, 2), 0.5), method, 2, rng=0, sigma=0.1, pixel_range="real")


def test_pixel_range_values():
    x = np.full((1, 2), 0.5)
    net = Network.mlp([2, 2], LIF(), rng=0)
    for bad in ("box", "REAL", ""):
        msg = (rf"^pixel_range={bad!r} is not a pixel range; use 'unit' \(images in \[0, 1\]\) "
               r"or 'real' \(any finite value, current coding only\)$")
        with pytest.raises(ValueError, match=msg):
            current(x, 2, pixel_range=bad)
        with pytest.raises(ValueError, match=msg):
            SNNSource(net, T=2, encoder="current", pixel_range=bad)
    for bad in (None, True, 1):
        with pytest.raises(TypeError, match=rf"^pixel_range must be 'unit' or 'real', got "
                                            rf"{type(bad).__name__} {bad!r}$"):
            encode(x, "current", 2, pixel_range=bad)


def test_nan_and_inf_stay_refused():
    msg = r"^x holds NaN or infinite values; pixels must be finite \(pixel_range='real'\)$"
    net = Network.mlp([2, 2], LIF(), rng=0)
    src = SNNSource(net, T=2, encoder="current", pixel_range="real")
    for bad in (np.nan, np.inf, -np.inf):
        x = np.array([[0.5, bad]])
        with pytest.raises(ValueError, match=msg):
            current(x, 2, pixel_range="real")
        with pytest.raises(ValueError, match=msg):
            encode(x, "current", 2, pixel_range="real")
        with pytest.raises(ValueError, match=msg):
            src(x, [0])
        with pytest.raises(ValueError, match=msg):
            src.predict(x)
        with pytest.raises(ValueError, match=msg):
            loss_and_grad(net, x, [0], T=2, encoder="current", pixel_range="real")


# --- gradients outside the box: the in-box formula continued ------------------------------------
def _scaled(W, c):
    """The first layer's weights times the per-pixel factors ``c`` (powers of two, signed): the
    network whose image ``x / c`` gives every product ``W_ij c_j · x_j / c_j = W_ij x_j``
    exactly, hence the same run bit for bit."""
    return W * c[None, :]


_C = np.array([-2.0, 2.0, 4.0, -4.0])  # maps each column of _OUT into [0, 1]


def _spiking_net(first):
    rng = np.random.default_rng(3)
    return Network([Dense(first, LIF(lam=0.8, theta=0.6)),
                    Dense(rng.normal(0, 0.8, (3, 5)), LIF(lam=0.8, theta=0.4))])


def test_snnsource_gradient_outside_the_box_is_the_in_box_formula_continued():
    W = np.random.default_rng(1).normal(0, 0.7, (5, 4))
    y = np.array([0, 2])
    x_in = _OUT / _C
    assert x_in.min() >= 0 and x_in.max() <= 1
    for input_only in (True, False):
        out = SNNSource(_spiking_net(W), T=6, encoder="current", input_only=input_only,
                        pixel_range="real")(_OUT, y)
        ref = SNNSource(_spiking_net(_scaled(W, _C)), T=6, encoder="current",
                        input_only=input_only)(x_in, y)
        # ℓ(x) = ℓ'(x / c): the same loss and scores, and dℓ/dx = (dℓ'/dx') / c (exact: c = ±2^k)
        np.testing.assert_array_equal(out.loss, ref.loss)
        np.testing.assert_array_equal(out.scores, ref.scores)
        np.testing.assert_array_equal(out.grad, ref.grad / _C)
    assert np.any(out.grad != 0)
    r = loss_and_grad(_spiking_net(W), _OUT, y, T=6, encoder="current", pixel_range="real")
    r_in = loss_and_grad(_spiking_net(_scaled(W, _C)), x_in, y, T=6, encoder="current")
    assert r.loss == r_in.loss
    np.testing.assert_array_equal(r.image, r_in.image / _C)
    assert (snn_accuracy(_spiking_net(W), _OUT, y, T=6, pixel_range="real")
            == snn_accuracy(_spiking_net(_scaled(W, _C)), x_in, y, T=6))


def test_conv_source_outside_the_box():
    rng = np.random.default_rng(2)
    Wc = rng.normal(0, 0.6, (2, 1, 3, 3))

    def net(w):
        return ConvNetwork([Conv2d(w, padding=1), Neuron(LIF(lam=0.9, theta=0.5)), Flatten(),
                            Linear(np.random.default_rng(4).normal(0, 0.4, (3, 32))),
                            Neuron(LIF(theta=0.3))], input_shape=(1, 4, 4))

    x = -4.0 * rng.random((2, 1, 4, 4))  # all in [-4, 0]: one factor c = -4 maps them into the box
    y = np.array([1, 2])
    out = SNNSource(net(Wc), T=4, encoder="current", pixel_range="real")(x.reshape(2, 16), y)
    ref = SNNSource(net(-4.0 * Wc), T=4, encoder="current")(x.reshape(2, 16) / -4.0, y)
    np.testing.assert_array_equal(out.loss, ref.loss)
    np.testing.assert_array_equal(out.grad, ref.grad / -4.0)
    assert np.any(out.grad != 0)


def test_gradient_outside_the_box_matches_finite_differences():
    # a network of one Readout layer (no spikes) is smooth in x: the source's gradient is the exact
    # gradient, and central differences at an out-of-box point check it there
    W = np.random.default_rng(5).normal(0, 0.5, (3, 4))
    net = Network([Dense(W, Readout(lam=0.7))])
    src = SNNSource(net, T=5, encoder="current", decoder="membrane", pixel_range="real")
    x, y = _OUT[:1], np.array([1])
    g = src(x, y).grad[0]
    h = 1e-6
    fd = np.empty(4)
    for i in range(4):
        e = np.zeros((1, 4))
        e[0, i] = h
        fd[i] = (src(x + e, y).loss[0] - src(x - e, y).loss[0]) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=RTOL_FINITE_DIFF, atol=RTOL_FINITE_DIFF * abs(g).max())


def test_attacks_keep_their_clean_image_check():
    # only the points the model is evaluated at may leave the box: the clean images are images
    src = SNNSource(Network.mlp([4, 3], LIF(), rng=0), T=3, encoder="current",
                    pixel_range="real")
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        fgsm(src, _OUT, np.array([0, 1]), eps=0.1)


# --- Stable's unclipped Gaussian noise ----------------------------------------------------------
def test_stable_loss_takes_an_out_of_box_x_tilde():
    # hand case, DEFAULT (Eq. 11 as written, sum): one LIF neuron, w = 1, λ = 0.5, T = 2,
    # x = 0.5, x~ = 1.5: ε[1] = w (x − x~) = −1, ε[2] = λ ε[1] − 1 = −1.5; MS-MPPD = 1 + 2.25
    net = Network([Dense(np.array([[1.0]]), LIF(lam=0.5, theta=10.0))])
    r = stable_loss_and_grad(net, np.array([[0.5]]), np.array([[1.5]]), np.array([0]), T=2,
                             encoder="current", pixel_range="real")
    assert r.ms_mppd == pytest.approx(3.25, rel=RTOL_HAND)
    np.testing.assert_array_equal(r.sequence_perturbed[:, 0, 0], [1.5, 1.5])


def _stable_net(T):
    rng = np.random.default_rng(0)
    return Network([Dense(rng.normal(0, 0.5, (8, 4)), DLIF(lam=0.9, theta=0.5),
                          dlif_factors=np.ones(T)),
                    Dense(rng.normal(0, 0.5, (2, 8)), Readout())])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unclipped_noise_is_the_clipped_noise_before_the_clip(dtype):
    xb = np.random.default_rng(7).random((6, 4)).astype(dtype)
    kw = dict(eps=0.3, T=3, encoder="current", decoder="rate", conv=None, sigma=None,
              pixel_range="unit")
    clipped = _perturbation("gaussian", clip=True, **kw)(None, xb, None,
                                                         np.random.default_rng(11))
    unclipped = _perturbation("gaussian", clip=False, **kw)(None, xb, None,
                                                            np.random.default_rng(11))
    assert unclipped.dtype == clipped.dtype == dtype
    assert unclipped.min() < 0 and unclipped.max() > 1  # ε = 0.3 leaves the box here
    np.testing.assert_array_equal(np.clip(unclipped, 0, 1), clipped)  # bit for bit
    z = np.random.default_rng(11).standard_normal(xb.shape)  # the same draws: x + ε z
    np.testing.assert_array_equal(unclipped, (xb + 0.3 * z).astype(dtype))


def test_fit_stable_unclipped_trains_on_the_code_noise():
    T = 4
    rng = np.random.default_rng(0)
    x = rng.random((16, 4))
    y = (x[:, 0] > 0.5).astype(int)
    kw = dict(T=T, rng=5, epochs=2, batch_size=8, decoder="membrane", eps=0.4)
    r = fit_stable(_stable_net(T), x, y, clip=False, **kw)

    def code_noise(model, xb, yb, g):  # the authors' x + ε·randn, drawn as the option draws it
        return xb + 0.4 * g.standard_normal(xb.shape)

    want = fit_stable(_stable_net(T), x, y, perturbation=code_noise, pixel_range="real", **kw)
    np.testing.assert_array_equal(r.loss, want.loss)
    for a, b in zip(r.model.layers, want.model.layers):
        np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_array_equal(r.model.layers[0].dlif_factors,
                                  want.model.layers[0].dlif_factors)
    clipped = fit_stable(_stable_net(T), x, y, **kw)
    assert not np.array_equal(r.loss, clipped.loss)  # the clip made a difference at ε = 0.4
    # current coding draws nothing in the encoder: the common-draws setting changes nothing
    other = fit_stable(_stable_net(T), x, y, clip=False, common_draws=False, **kw)
    np.testing.assert_array_equal(other.loss, r.loss)


def test_fit_stable_unclipped_refusals():
    T = 3
    x = np.full((4, 4), 0.5)
    y = np.array([0, 1, 0, 1])
    kw = dict(T=T, rng=0, epochs=1, batch_size=4, decoder="membrane")
    for method in ("poisson", "ttfs", "fused:current+ratesyn_end"):
        with pytest.raises(ValueError, match=(
                rf"^clip=False \(unclipped Gaussian noise\) is for current \(direct\) coding "
                rf"only: encoder '{_culprit(method)}' reads a pixel as .*; use "
                r"encoder='current' or clip=True$")):
            fit_stable(_stable_net(T), x, y, clip=False, encoder=method, **kw)
    with pytest.raises(ValueError, match=r"^clip=False is an option of perturbation='gaussian', "
                                         r"got perturbation='rfgsm'"):
        fit_stable(_stable_net(T), x, y, clip=False, perturbation="rfgsm", **kw)
    with pytest.raises(ValueError, match=r"got perturbation=a callable"):
        fit_stable(_stable_net(T), x, y, clip=False, perturbation=lambda m, a, b, g: a, **kw)
    with pytest.raises(TypeError, match=r"^clip must be True or False, got 0"):
        fit_stable(_stable_net(T), x, y, clip=0, **kw)
    # the clean images stay images: out of the box they are refused before any training
    with pytest.raises(ValueError, match=r"^x must lie in \[0, 1\]"):
        fit_stable(_stable_net(T), x + 1.0, y, clip=False, **kw)
    # a callable's x~ outside [0, 1] needs pixel_range='real'; NaN never passes
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*with pixel_range='real'"):
        fit_stable(_stable_net(T), x, y, perturbation=lambda m, a, b, g: a - 1.0, **kw)
    with pytest.raises(ValueError, match=r"^perturbation returned NaN or infinite pixels"):
        fit_stable(_stable_net(T), x, y, perturbation=lambda m, a, b, g: a * np.nan,
                   pixel_range="real", **kw)


def test_fit_snn_real_range():
    T = 3
    rng = np.random.default_rng(1)
    x = rng.random((12, 4))
    y = (x[:, 1] > 0.5).astype(int)
    net = Network.mlp([4, 6, 2], LIF(lam=0.9, theta=0.5), rng=0, scale=1.5)
    kw = dict(T=T, rng=2, epochs=1, batch_size=6)
    # in the box, the option changes nothing
    a = fit_snn(net, x, y, **kw)
    b = fit_snn(net, x, y, pixel_range="real", **kw)
    np.testing.assert_array_equal(a.loss, b.loss)
    # out of the box, training and the test evaluation take the currents
    x_out = 3.0 * x - 1.0
    r = fit_snn(net, x_out, y, x_test=x_out, y_test=y, pixel_range="real", **kw)
    assert np.all(np.isfinite(r.loss))
    assert r.test_accuracy == snn_accuracy(r.model, x_out, y, T=T, pixel_range="real")
