"""evsnn.grad.cba: the CBA gradient method ("ann") — the source ANN's gradient for its SNN."""

import numpy as np
import pytest

from evsnn.ann import ANN
from evsnn.ann import loss_and_grad as ann_loss_and_grad
from evsnn.clock import Network
from evsnn.convert import convert
from evsnn.encoders import encode
from evsnn.grad import ann_gradient, loss_and_grad, mixed
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
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'ann'"):
        loss_and_grad(conv.network, X, Y, T=3, encoder="current", method="ann")
    other = Network.mlp([5, 4, 3], LIF(), rng=0)
    with pytest.raises(ValueError, match=r"weight shapes \[\(8, 5\), \(3, 8\)\] differ"):
        loss_and_grad(other, X, Y, T=3, encoder="current", method="ann", ann=conv)
    with pytest.raises(TypeError, match="method='ann' needs ann="):
        ann_gradient(None, X, Y)
    with pytest.raises(TypeError, match="network must be an evsnn Network"):
        cba_gradients("net", np.zeros((2, 6, 5)), X, Y, ann=conv)
