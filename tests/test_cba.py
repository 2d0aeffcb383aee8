"""evsnn.grad.cba: the CBA gradient method ("ann") — the source ANN's gradient for its SNN."""

import numpy as np
import pytest

from evsnn.ann import ANN
from evsnn.ann import loss_and_grad as ann_loss_and_grad
from evsnn.clock import Network
from evsnn.convert import convert
from evsnn.encoders import encode
from evsnn.grad import Sigmoid, ann_gradient, loss_and_grad, mixed
from evsnn.grad.cba import cba_gradients
from evsnn.params import LIF

RNG = np.random.default_rng(7)
X = RNG.random((6, 5))
Y = np.array([0, 1, 2, 0, 1, 2])


@pytest.fixture(scope="module")
def conv():
    ann = ANN.mlp([5, 8, 3], bias=True, rng=1)
    ann = ann.with_weights(ann.weights,
                           [RNG.standard_normal(8) * 0.1, RNG.standard_normal(3) * 0.1])
    return convert(ann, X, theta=0.8)


def test_image_gradient_is_the_source_anns_and_loss_is_the_snns(conv):
    r = loss_and_grad(conv.network, X, Y, T=12, encoder="current", method="ann", ann=conv)
    ref = ann_loss_and_grad(conv.ann, X, Y)
    np.testing.assert_array_equal(r.image, ref.grads.input)
    # the sequence gradient spreads it evenly: the current-coding rule (sum over t) gives it back
    np.testing.assert_allclose(r.grads.input.sum(axis=0), ref.grads.input, rtol=1e-13)
    assert r.grads.method == "ann" and r.grads.membrane == [None, None]
    snn = loss_and_grad(conv.network, X, Y, T=12, encoder="current", method="bptt")
    assert r.loss == snn.loss  # the SNN's own loss and scores
    np.testing.assert_array_equal(r.scores, snn.scores)
    assert r.loss != pytest.approx(ref.loss)


def test_weight_gradients_are_chained_through_eq14(conv):
    # W_SNN = f W_ANN, b_SNN = b_ANN θ / max: dL/dW_SNN = dL/dW_ANN / f, dL/db_SNN = dL/db_ANN max/θ
    g = ann_gradient(conv, X, Y).grads
    ref = ann_loss_and_grad(conv.ann, X, Y).grads
    for gw, rw, f in zip(g.weights, ref.weights, conv.factors):
        np.testing.assert_allclose(gw, rw / f, rtol=1e-15)
    for gb, rb, s in zip(g.biases, ref.biases, conv.scales[1:]):
        np.testing.assert_allclose(gb, rb * s / 0.8, rtol=1e-15)
    bare = ann_gradient(conv.ann, X, Y).grads  # a bare ANN: factors 1
    np.testing.assert_array_equal(bare.weights[0], ref.weights[0])


def test_sequence_input_uses_the_input_rate(conv):
    seq = encode(X, "poisson", 40, rng=3)
    r = loss_and_grad(conv.network, seq, Y, method="ann", ann=conv)
    assert r.image is None
    ref = ann_loss_and_grad(conv.ann, seq.mean(axis=0), Y)
    np.testing.assert_allclose(r.grads.input.sum(axis=0), ref.grads.input, rtol=1e-13)


def test_mixed_with_cba_combines_defined_fields(conv):
    a = loss_and_grad(conv.network, X, Y, T=5, encoder="current", method="ann", ann=conv).grads
    b = loss_and_grad(conv.network, X, Y, T=5, encoder="current", method="bptt").grads
    m = mixed(0.25, a, b)
    np.testing.assert_allclose(m.input, 0.25 * a.input + 0.75 * b.input)
    assert m.membrane == [None, None]


def test_cba_errors(conv):
    with pytest.raises(TypeError, match="method='ann' needs ann=<evsnn.ann.ANN"):
        loss_and_grad(conv.network, X, Y, T=3, encoder="current", method="ann", ann="net")
    with pytest.raises(TypeError, match=r"^method='ann' needs ann=<evsnn.ann.ANN or "
                                        r"evsnn.convert.Conversion> .*pass it as"):
        loss_and_grad(conv.network, X, Y, T=3, encoder="current", method="ann")
    other = Network.mlp([5, 4, 3], LIF(), rng=0)
    with pytest.raises(ValueError, match=r"weight shapes \[\(8, 5\), \(3, 8\)\] differ"):
        loss_and_grad(other, X, Y, T=3, encoder="current", method="ann", ann=conv)
    with pytest.raises(TypeError, match="method='ann' needs ann="):
        ann_gradient(None, X, Y)
    with pytest.raises(TypeError, match="network must be an evsnn Network"):
        cba_gradients("net", np.zeros((2, 6, 5)), X, Y, ann=conv)


@pytest.mark.parametrize("option, exc, match", [
    (dict(surrogate=Sigmoid(50.0)), ValueError, r"^surrogate=Sigmoid\(rho=50.0, scale='code'\) is "
     r"not used by method='ann': CBA takes the source ANN's gradient and differentiates no "
     r"spike; drop surrogate= or use method='bptt' or method='hart'$"),
    (dict(detach_reset=True), ValueError, r"^detach_reset=True is not used by method='ann'.*"
     r"drop detach_reset= or use method='bptt'$"),
    (dict(precalculate=True), ValueError, r"^precalculate=True is not used by method='ann'"),
    (dict(factor_clamp=2.0), ValueError, r"^factor_clamp=2.0 is not used by method='ann'.*"
     r"use method='tempbp'$"),
    (dict(detach_reset=1), TypeError, "detach_reset must be True or False"),
    (dict(gamma=2.0), TypeError, r"^gamma= is not an option of any gradient method; the "
     r"options are \[.*'ann'"),
])
def test_cba_refuses_options_it_does_not_read(conv, option, exc, match):
    """CBA takes the source ANN's gradient: an option of a backward pass (a surrogate, a flag,
    a Temp-BP option) would be ignored, so it is refused as backward() refuses it for the other
    methods; an option left at its "not given" value is accepted."""
    with pytest.raises(exc, match=match):
        loss_and_grad(conv.network, X, Y, T=3, encoder="current", method="ann", ann=conv,
                      **option)
    want = loss_and_grad(conv.network, X, Y, T=3, encoder="current", method="ann", ann=conv)
    got = loss_and_grad(conv.network, X, Y, T=3, encoder="current", method="ann", ann=conv,
                        surrogate=None, precalculate=False, detach_reset=False, intra=None)
    np.testing.assert_array_equal(got.image, want.image)


def test_ann_option_needs_method_ann(conv):
    with pytest.raises(ValueError, match=r"^ann= is CBA's source ANN \(method='ann' only\), got "
                                        r"method='bptt': drop ann= or use method='ann'$"):
        loss_and_grad(conv.network, X, Y, T=3, encoder="current", method="bptt", ann=conv)
