"""evsnn.ann: the ReLU MLP, its explicit backward pass (finite differences), helpers, errors."""

import numpy as np
import pytest

from evsnn.ann import ANN, accuracy, backward, forward, loss_and_grad, predict
from evsnn.grad.losses import cross_entropy

from conftest import RTOL_FINITE_DIFF
from reference.helpers import central_differences

KINK_MARGIN = 1e-3  # no pre-activation this close to the ReLU kink, so ±H never crosses it


def _net(sizes, bias, seed):
    rng = np.random.default_rng(seed)
    ann = ANN.mlp(sizes, bias=bias, rng=rng)
    if bias:
        ann = ann.with_weights(ann.weights, [rng.standard_normal(n) * 0.3 for n in sizes[1:]])
    return ann


def _loss(ann, x, y):
    return float(cross_entropy(forward(ann, x).logits, y)[0])


@pytest.mark.parametrize("sizes,bias", [([5, 7, 3], False), ([4, 6, 5, 3], True), ([6, 4], True)])
def test_gradient_matches_central_finite_differences(sizes, bias):
    rng = np.random.default_rng(1)
    ann = _net(sizes, bias, seed=2)
    x = rng.random((4, sizes[0]))
    y = rng.integers(0, sizes[-1], 4)
    fwd = forward(ann, x)
    # the ReLU is not differentiable at 0: keep every hidden pre-activation away from it
    assert all(np.min(np.abs(z)) > KINK_MARGIN for z in fwd.pre[:-1])
    r = loss_and_grad(ann, x, y)

    xs = x.copy()
    fd_x = central_differences(lambda: _loss(ann, xs, y), xs)
    np.testing.assert_allclose(r.grads.input, fd_x, rtol=RTOL_FINITE_DIFF, atol=1e-9)

    ws = [np.array(w) for w in ann.weights]
    bs = [None if b is None else np.array(b) for b in ann.biases]

    def f():
        return _loss(ANN(ws, bs if bias else None), x, y)

    for li in range(len(ws)):
        fd_w = central_differences(f, ws[li])
        np.testing.assert_allclose(r.grads.weights[li], fd_w, rtol=RTOL_FINITE_DIFF, atol=1e-9)
        if bias:
            fd_b = central_differences(f, bs[li])
            np.testing.assert_allclose(r.grads.biases[li], fd_b, rtol=RTOL_FINITE_DIFF, atol=1e-9)
        else:
            assert r.grads.biases[li] is None


def test_single_layer_gradient_is_softmax_regression_closed_form():
    # one linear layer: dL/dx = (p - onehot) W / B, dL/dW = (p - onehot)^T x / B (hand derivation)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 4))
    x = rng.random((5, 4))
    y = np.array([0, 1, 2, 1, 0])
    r = loss_and_grad(ANN([w]), x, y)
    z = x @ w.T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d = (p - np.eye(3)[y]) / 5
    np.testing.assert_allclose(r.grads.input, d @ w, rtol=1e-12)
    np.testing.assert_allclose(r.grads.weights[0], d.T @ x, rtol=1e-12)
    np.testing.assert_allclose(r.loss, -np.mean(np.log(p[np.arange(5), y])), rtol=1e-12)


def test_relu_hidden_layer_and_linear_output():
    ann = ANN([np.array([[1.0, -1.0], [-1.0, 1.0]]), np.array([[1.0, -1.0]])])
    fwd = forward(ann, np.array([[0.25, 1.0]]))
    np.testing.assert_array_equal(fwd.pre[0], [[-0.75, 0.75]])
    np.testing.assert_array_equal(fwd.inputs[1], [[0.0, 0.75]])  # ReLU
    np.testing.assert_array_equal(fwd.logits, [[-0.75]])  # no ReLU on the output
    # gradient of the dead unit is zero
    g = backward(ann, fwd, np.array([[1.0]]))
    np.testing.assert_array_equal(g.weights[0][0], [0.0, 0.0])


def test_no_bias_by_default_and_optional_bias():
    assert not ANN.mlp([3, 2], rng=0).has_bias
    ann = ANN.mlp([3, 4, 2], bias=True, rng=0)
    assert ann.has_bias and ann.sizes == (3, 4, 2)
    assert [b.shape for b in ann.biases] == [(4,), (2,)]
    x = np.random.default_rng(0).random((2, 3))
    shifted = ann.with_weights(ann.weights, [np.zeros(4), np.array([1.0, -1.0])])
    np.testing.assert_allclose(shifted.logits(x) - ann.logits(x), [[1.0, -1.0]] * 2)


def test_weights_are_frozen_copies():
    w = np.eye(2)
    ann = ANN([w])
    w[0, 0] = 5.0
    assert ann.weights[0][0, 0] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        ann.weights[0][0, 0] = 2.0


def test_float32_stays_float32():
    ann = ANN.mlp([4, 3, 2], rng=0)
    x = np.random.default_rng(0).random((2, 4)).astype(np.float32)
    r = loss_and_grad(ann, x, np.array([0, 1]))
    assert r.logits.dtype == np.float32 and r.grads.input.dtype == np.float32
    assert r.grads.weights[0].dtype == np.float32


def test_float16_input_is_read_as_float32_and_wider_floats_are_refused():
    # float16 input was computed in float16 (11-bit products); the encoders read it as float32
    ann = ANN.mlp([4, 3, 2], rng=0)
    x16 = np.random.default_rng(0).random((2, 4)).astype(np.float16)
    r = loss_and_grad(ann, x16, np.array([0, 1]))
    want = loss_and_grad(ann, x16.astype(np.float32), np.array([0, 1]))
    assert r.logits.dtype == np.float32 and r.grads.input.dtype == np.float32
    np.testing.assert_array_equal(r.logits, want.logits)
    np.testing.assert_array_equal(r.grads.weights[0], want.grads.weights[0])
    with pytest.raises(TypeError, match="the ANN takes float16, float32 or float64"):
        predict(ann, x16.astype(np.longdouble))


def test_float16_weights_are_read_as_float32_and_train_regression():
    # float16 weights were kept, so fit_ann trained in float16: AdamW's eps = 1e-8 is 0 there,
    # the step was inf and training died blaming weights[0] (review 46)
    from evsnn.train import fit_ann

    ref = ANN.mlp([4, 3, 2], bias=True, rng=0)
    w16 = [w.astype(np.float16) for w in ref.weights]
    b16 = [np.array([0.5, -0.25, 1.0], np.float16), np.array([0.125, 0.0], np.float16)]
    ann = ANN(w16, b16)
    for got, given in zip(ann.weights + ann.biases, w16 + b16):
        assert got.dtype == np.float32 and not got.flags.writeable
        np.testing.assert_array_equal(got, given.astype(np.float32))  # read exactly
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 4)), rng.integers(0, 2, 16)
    r = fit_ann(ann, x, y, rng=0, epochs=1, batch_size=8)
    assert r.model.weights[0].dtype == np.float32 and np.all(np.isfinite(r.model.weights[0]))
    with pytest.raises(TypeError, match=r"^biases\[1\] has dtype float128; the ANN takes float16, "
                                        r"float32 or float64 biases \(or integers\)"):
        ANN(w16, [None, np.zeros(2, np.longdouble)])


def test_predict_and_accuracy():
    ann = ANN([np.array([[1.0, 0.0], [0.0, 1.0]])])
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])  # the tie goes to the lowest index
    np.testing.assert_array_equal(predict(ann, x), [0, 1, 0])
    assert accuracy(ann, x, np.array([0, 0, 0])) == pytest.approx(2 / 3)


def test_ann_errors():
    with pytest.raises(ValueError, match="weights is empty"):
        ANN([])
    with pytest.raises(TypeError, match="weights must be a sequence"):
        ANN(np.eye(2))
    with pytest.raises(ValueError, match=r"weights\[1\] takes 3 inputs"):
        ANN([np.ones((2, 2)), np.ones((1, 3))])
    with pytest.raises(ValueError, match=r"weights\[0\] must be 2-D"):
        ANN([np.ones(3)])
    with pytest.raises(ValueError, match="NaN or infinite"):
        ANN([np.array([[np.nan]])])
    with pytest.raises(TypeError, match="real numbers"):
        ANN([np.array([["a"]])])
    with pytest.raises(ValueError, match="biases has 1 entries for 2 layers"):
        ANN([np.ones((2, 2)), np.ones((1, 2))], [None])
    with pytest.raises(ValueError, match=r"biases\[0\] has 3 entries"):
        ANN([np.ones((2, 2))], [np.ones(3)])
    with pytest.raises(ValueError, match="needs at least an input and an output size"):
        ANN.mlp([3])


def test_mlp_and_with_weights_check_their_arguments_regression():
    # mlp(64) raised "object of type 'int' has no len()", scale=nan was blamed on weights[0],
    # bias='no' meant True; with_weights built any architecture, or blamed biases[0] the caller
    # never passed (review 46, /tmp/rev_misc46/f5_ann_mlp_with_weights_args.py)
    for bad, shown in ((64, "int 64"), ("64", "str '64'"), (np.array(64), r"ndarray array\(64\)")):
        with pytest.raises(TypeError, match=r"^sizes must be a sequence of layer widths, input "
                                            rf"first \(e\.g\. \[64, 100, 10\]\), got {shown}$"):
            ANN.mlp(bad)
    assert ANN.mlp(np.array([3, 2]), rng=0).sizes == (3, 2)
    for bad, shown in ((float("nan"), "nan"), (0.0, "0.0"), (-1.0, "-1.0")):
        with pytest.raises(ValueError, match=rf"^scale={shown} must be finite and > 0; the "
                                             r"weights' standard deviation times sqrt\(n_in\), "
                                             r"sqrt\(2\) for He initialisation$"):
            ANN.mlp([3, 2], scale=bad)
    with pytest.raises(TypeError, match=r"^bias must be True or False, got 'no'; pass bias=True "
                                        r"or bias=False$"):
        ANN.mlp([3, 2], bias="no")
    fix = r"; with_weights keeps the sizes \(3, 4, 2\); build ANN\(weights, biases\) for others$"
    for bias in (False, True):
        ann = ANN.mlp([3, 4, 2], bias=bias, rng=0)
        with pytest.raises(ValueError, match=r"^weights\[0\] has shape \(7, 3\) but this "
                                             r"network's layer 0 has \(4, 3\) \(n_out, n_in\)"
                                             + fix):
            ann.with_weights([np.ones((7, 3)), np.ones((1, 7))])
        with pytest.raises(ValueError, match=r"^weights has 1 layers but this network has 2" + fix):
            ann.with_weights([np.ones((4, 3))])
    same = ann.with_weights([2 * w for w in ann.weights])  # the shapes kept, the biases too
    assert same.sizes == ann.sizes
    np.testing.assert_array_equal(same.weights[1], 2 * ann.weights[1])
    np.testing.assert_array_equal(same.biases[1], ann.biases[1])


def test_forward_backward_errors():
    ann = ANN([np.ones((2, 3))])
    with pytest.raises(ValueError, match=r"x must be \[B, 3\]"):
        forward(ann, np.ones((2, 4)))
    with pytest.raises(TypeError, match="x must be numeric"):
        forward(ann, np.array([["a", "b", "c"]]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        forward(ann, np.array([[np.inf, 0, 0]]))
    with pytest.raises(TypeError, match="ann must be an evsnn.ann.ANN"):
        forward("net", np.ones((1, 3)))
    with pytest.raises(ValueError, match="g_logits has shape"):
        backward(ann, forward(ann, np.ones((1, 3))), np.ones((1, 3)))
    with pytest.raises(ValueError, match="y has shape"):
        accuracy(ann, np.ones((2, 3)), np.array([0]))
