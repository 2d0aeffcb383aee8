"""Corner-aimed property tests of the ReLU ANN, ANN→SNN conversion, CBA gradients and the
data-set certification bookkeeping (evsnn.ann, evsnn.convert, evsnn.grad.cba,
certify.distributed).

Corners: one-unit layers, one sample, duplicated rows, exactly-zero pre-activations (the ReLU
kink, derivative 0 by convention), saturated softmax (exactly-zero gradients), silent layers,
percentile at 100 and near 0, saturating IF layers, float32 networks, radii tied with the
evaluation radii, floats at the ends of float64 (subnormals, the largest finite, -0.0) in files.

Oracles (independent of the code under test unless said otherwise):

* ``_ann_twin``: a per-sample, per-unit loop implementation of the forward pass, the softmax
  cross-entropy and its backward pass, written from the formulas of evsnn/ann.py's docstrings.
* Central finite differences in float64 (conftest.RTOL_FINITE_DIFF).
* Exact arithmetic: dyadic weights and inputs (multiples of 1/4 and 1/8, a few bits each) make
  every forward product and sum exact, so permutation invariance is checked bit for bit;
  scaling by a power of two commutes with every rounding, so those invariances are bit for bit.
* Closed forms of IF neurons with reset by subtraction under a constant input current I
  (hand derivation): the membrane stays in [0, θ) while 0 ≤ I < θ, so the count after T steps is
  floor(T·I/θ); with I ≥ θ it spikes at every step (T); with I ≤ 0 never.
* Brute-force counts for the certified accuracy; repr/JSON for the files' floats.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import ATOL_TWIN, RTOL_FINITE_DIFF, RTOL_TWIN
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reference.helpers import central_differences, example_count

from certify.distributed import (
    CertificationTable,
    certified_accuracy,
    certify_dataset,
    data_digest,
)
from certify.smoothing import ABSTAIN, NORMALS, NoiseModel, certified_radius, rsc_fixed
from evsnn.ann import ANN, accuracy, backward, forward, loss_and_grad, predict
from evsnn.clock import Network, simulate
from evsnn.convert import activation_scales, convert
from evsnn.encoders import current
from evsnn.grad import loss_and_grad as snn_loss_and_grad
from evsnn.grad.cba import ann_gradient, cba_gradients
from evsnn.params import IF, Readout


# --------------------------------------------------------------------------- the plain twin
def _ann_twin(weights, biases, x, labels):
    """Loss, weight/bias/input gradients of the mean softmax cross-entropy, one sample and one
    unit at a time (no matrix products)."""
    B = len(x)
    L = len(weights)
    gw = [np.zeros_like(w, dtype=np.float64) for w in weights]
    gb = [np.zeros(w.shape[0]) for w in weights]
    gx = np.zeros((B, weights[0].shape[1]))
    logits = np.zeros((B, weights[-1].shape[0]))
    loss = 0.0
    for s in range(B):
        hs, zs = [list(map(float, x[s]))], []
        for li in range(L):
            w, b = weights[li], biases[li]
            z = []
            for i in range(w.shape[0]):
                acc = 0.0 if b is None else float(b[i])
                for j in range(w.shape[1]):
                    acc += float(w[i, j]) * hs[-1][j]
                z.append(acc)
            zs.append(z)
            hs.append(z if li == L - 1 else [max(v, 0.0) for v in z])
        z = zs[-1]
        logits[s] = z
        m = max(z)
        lse = m + math.log(sum(math.exp(v - m) for v in z))
        loss += (lse - z[labels[s]]) / B
        d = [(math.exp(v - lse) - (1.0 if k == labels[s] else 0.0)) / B for k, v in enumerate(z)]
        for li in range(L - 1, -1, -1):
            w = weights[li]
            for i in range(w.shape[0]):
                gb[li][i] += d[i]
                for j in range(w.shape[1]):
                    gw[li][i, j] += d[i] * hs[li][j]
            d = [sum(d[i] * float(w[i, j]) for i in range(w.shape[0])) for j in range(w.shape[1])]
            if li > 0:
                d = [v if zs[li - 1][j] > 0 else 0.0 for j, v in enumerate(d)]
        gx[s] = d
    return loss, logits, gw, gb, gx


def _close(got, want, what, rtol=RTOL_TWIN, atol=0.0):
    """Twin comparison: relative, and absolute relative to the largest entry (sums of a few
    terms in another order), plus ``atol`` (per entry: a bound on the rounding of sums that
    cancel)."""
    want = np.asarray(want, dtype=np.float64)
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    if np.ndim(atol) == 0:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=ATOL_TWIN + rtol * scale + atol,
                                   err_msg=what)
        return
    got = np.asarray(got, dtype=np.float64)  # per-entry atol: assert_allclose takes a scalar
    assert got.shape == want.shape, (what, got.shape, want.shape)
    bound = ATOL_TWIN + rtol * scale + atol + rtol * np.abs(want)
    assert np.all(np.abs(got - want) <= bound), (what, got, want, bound)


# --------------------------------------------------------------------------- strategies
# weights with exact zeros and ±1 among them (zero pre-activations: the ReLU kink)
# (magnitudes below 2^-30 are left out: no researcher's weight or pixel, and products near
# the subnormal range would break the bit-exact power-of-two invariances)
_TINY = 2.0**-30
_WEIGHT = st.one_of(st.sampled_from([0.0, 1.0, -1.0, 0.5]),
                    st.floats(-2, 2).filter(lambda v: v == 0 or abs(v) >= _TINY))


@st.composite
def nets(draw, max_layers=3, max_width=4, bias=None, dyadic=False, min_layers=1):
    sizes = draw(st.lists(st.integers(1, max_width), min_size=min_layers + 1,
                          max_size=max_layers + 1))
    if bias is None:
        bias = draw(st.booleans())
    if dyadic:  # multiples of 1/4 in [-2, 2]: exact products and sums
        elem = st.integers(-8, 8).map(lambda k: k / 4)
    else:
        elem = _WEIGHT
    ws = [np.array(draw(st.lists(st.lists(elem, min_size=a, max_size=a), min_size=b,
                                 max_size=b)), dtype=np.float64).reshape(b, a)
          for a, b in zip(sizes[:-1], sizes[1:])]
    bs = None
    if bias:
        bs = [np.array(draw(st.lists(elem, min_size=b, max_size=b)), dtype=np.float64)
              for b in sizes[1:]]
    return ANN(ws, bs)


@st.composite
def batches(draw, n_in, max_rows=4, dyadic=False, high=1.0):
    """A batch with duplicated rows: rows drawn from a small pool."""
    elem = (st.integers(0, 8).map(lambda k: high * k / 8) if dyadic
            else st.one_of(st.sampled_from([0.0, high]),
                           st.floats(0, high).filter(lambda v: v == 0 or v >= _TINY)))
    pool = draw(st.lists(st.lists(elem, min_size=n_in, max_size=n_in), min_size=1, max_size=3))
    idx = draw(st.lists(st.integers(0, len(pool) - 1), min_size=1, max_size=max_rows))
    return np.array([pool[i] for i in idx], dtype=np.float64).reshape(len(idx), n_in)


def _labels(draw, n_out, B):
    return np.array(draw(st.lists(st.integers(0, n_out - 1), min_size=B, max_size=B)))


# --------------------------------------------------------------------------- ANN
@settings(max_examples=example_count(40))
@given(st.data())
def test_ann_loss_and_grad_equal_the_loop_twin(data):
    ann = data.draw(nets())
    x = data.draw(batches(ann.n_in))
    y = _labels(data.draw, ann.n_out, len(x))
    r = loss_and_grad(ann, x, y)
    loss, logits, gw, gb, gx = _ann_twin(ann.weights, ann.biases, x, y)
    _close(r.logits, logits, "logits")
    _close(r.loss, loss, "loss")
    _close(r.grads.input, gx, "dL/dx")
    for li in range(len(ann.weights)):
        _close(r.grads.weights[li], gw[li], f"dL/dW[{li}]")
        if ann.biases[li] is None:
            assert r.grads.biases[li] is None
        else:
            _close(r.grads.biases[li], gb[li], f"dL/db[{li}]")
    # ``correct`` is the argmax of the library's own logits; the twin's argmax must agree where
    # its top two logits are apart by more than the rounding of sums in another order (a random
    # run drew two logits equal up to the last bit, 1 + 0.701 + δ and 0 + 1.701 + δ)
    np.testing.assert_array_equal(r.correct, np.argmax(r.logits, axis=1) == y)
    if logits.shape[1] > 1:
        top2 = np.sort(logits, axis=1)[:, -2:]
        scale = float(np.max(np.abs(logits)))
        apart = top2[:, 1] - top2[:, 0] > 2 * (ATOL_TWIN + RTOL_TWIN * scale)
        np.testing.assert_array_equal(r.correct[apart], (np.argmax(logits, axis=1) == y)[apart])


@settings(max_examples=example_count(25))
@given(st.data())
def test_ann_gradient_equals_central_finite_differences(data):
    ann = data.draw(nets(max_width=3))
    x = data.draw(batches(ann.n_in, max_rows=2))
    y = _labels(data.draw, ann.n_out, len(x))
    fwd = forward(ann, x)
    # away from the ReLU kinks: a step H moves a pre-activation by at most ~4H
    assume(all(np.min(np.abs(z)) > 1e-3 for z in fwd.pre[:-1]))
    r = loss_and_grad(ann, x, y)
    xs = x.copy()
    want = central_differences(lambda: loss_and_grad(ann, xs, y).loss, xs)
    np.testing.assert_allclose(r.grads.input, want, rtol=RTOL_FINITE_DIFF, atol=1e-8)
    ws = [w.copy() for w in ann.weights]
    for li in range(len(ws)):
        want = central_differences(lambda: loss_and_grad(ANN(ws, ann.biases), x, y).loss,
                                  ws[li])
        np.testing.assert_allclose(r.grads.weights[li], want, rtol=RTOL_FINITE_DIFF, atol=1e-8)


@settings(max_examples=example_count(30))
@given(st.data(), st.integers(-30, 30))
def test_ann_power_of_two_rebalancing_is_bit_exact(data, k):
    # ReLU is positively homogeneous: W_l·2^k with W_m·2^-k (l < m, no biases) gives the same
    # logits bit for bit (each product and sum is scaled exactly), dL/dW_l·2^-k, dL/dW_m·2^k and
    # the same input gradient
    ann = data.draw(nets(bias=False, min_layers=2))
    x = data.draw(batches(ann.n_in))
    y = _labels(data.draw, ann.n_out, len(x))
    L = len(ann.weights)
    l = data.draw(st.integers(0, L - 2))
    m = data.draw(st.integers(l + 1, L - 1))
    ws = list(ann.weights)
    ws[l] = ws[l] * 2.0**k
    ws[m] = ws[m] * 2.0**-k
    a, b = loss_and_grad(ann, x, y), loss_and_grad(ANN(ws), x, y)
    np.testing.assert_array_equal(b.logits, a.logits)
    assert b.loss == a.loss
    np.testing.assert_array_equal(b.grads.input, a.grads.input)
    for li in range(L):
        f = 2.0**-k if li == l else 2.0**k if li == m else 1.0
        np.testing.assert_array_equal(b.grads.weights[li], a.grads.weights[li] * f)


@settings(max_examples=example_count(30))
@given(st.data())
def test_ann_hidden_permutation_invariance(data):
    ann = data.draw(nets(dyadic=True, min_layers=2))
    x = data.draw(batches(ann.n_in, dyadic=True))
    y = _labels(data.draw, ann.n_out, len(x))
    perm = np.array(data.draw(st.permutations(range(ann.weights[0].shape[0]))))
    ws = list(ann.weights)
    bs = list(ann.biases)
    ws[0], ws[1] = ws[0][perm], ws[1][:, perm]
    if bs[0] is not None:
        bs[0] = bs[0][perm]
    other = ANN(ws, bs)
    a, b = loss_and_grad(ann, x, y), loss_and_grad(other, x, y)
    # dyadic values of a few bits: the forward pass is exact, whatever the summation order
    np.testing.assert_array_equal(b.logits, a.logits)
    np.testing.assert_array_equal(predict(other, x), predict(ann, x))
    _close(b.grads.weights[0], a.grads.weights[0][perm], "dL/dW0 permuted")
    _close(b.grads.weights[1], a.grads.weights[1][:, perm], "dL/dW1 permuted")
    _close(b.grads.input, a.grads.input, "dL/dx")


@settings(max_examples=example_count(30))
@given(st.data())
def test_predict_and_accuracy_against_brute_force(data):
    ann = data.draw(nets(dyadic=True))
    x = data.draw(batches(ann.n_in, dyadic=True))
    y = _labels(data.draw, ann.n_out, len(x))
    _, logits, *_ = _ann_twin(ann.weights, ann.biases, x, y)
    # ties (dyadic logits tie often) go to the lowest index
    want = [min(k for k in range(ann.n_out) if row[k] == max(row)) for row in logits]
    assert predict(ann, x).tolist() == want
    assert accuracy(ann, x, y) == sum(int(p == t) for p, t in zip(want, y)) / len(y)


def test_saturated_softmax_gives_exactly_zero_gradients():
    # logit gap 2000: exp(-2000) underflows, p is exactly one-hot, every gradient exactly 0
    ann = ANN([np.array([[1000.0], [-1000.0]])])
    r = loss_and_grad(ann, np.array([[1.0]]), np.array([0]))
    assert r.loss == 0.0
    assert not r.grads.input.any() and not r.grads.weights[0].any()
    # the wrong label: finite loss (2000) and gradient, no overflow
    r = loss_and_grad(ann, np.array([[1.0]]), np.array([1]))
    assert r.loss == 2000.0
    np.testing.assert_array_equal(r.grads.weights[0], [[1.0], [-1.0]])


def test_backward_at_the_relu_kink_takes_derivative_zero():
    # z = 0 exactly at the hidden unit: the documented convention ReLU'(0) = 0 stops the
    # gradient; just above (z > 0) it passes
    ann = ANN([np.array([[1.0, -1.0]]), np.array([[1.0], [0.0]])])
    fwd = forward(ann, np.array([[0.5, 0.5]]))
    g = backward(ann, fwd, np.array([[1.0, 0.0]]))
    assert fwd.pre[0][0, 0] == 0.0
    np.testing.assert_array_equal(g.input, [[0.0, 0.0]])
    fwd = forward(ann, np.array([[0.75, 0.5]]))
    np.testing.assert_array_equal(backward(ann, fwd, np.array([[1.0, 0.0]])).input, [[1.0, -1.0]])


# --------------------------------------------------------------------------- conversion
def _positive_max(values):
    pos = [v for v in values if v > 0]
    return max(pos) if pos else 1.0


@settings(max_examples=example_count(30))
@given(st.data())
def test_activation_scales_at_100_are_the_brute_force_maxima(data):
    ann = data.draw(nets(dyadic=True))
    x = data.draw(batches(ann.n_in, dyadic=True))
    # every pre-activation of every layer, from the twin's loops (exact on dyadic values)
    L = len(ann.weights)
    pres = [[] for _ in range(L)]
    for row in x:
        h = list(row)
        for li in range(L):
            w, b = ann.weights[li], ann.biases[li]
            z = [(0.0 if b is None else b[i]) + sum(w[i, j] * h[j] for j in range(len(h)))
                 for i in range(w.shape[0])]
            pres[li] += z
            h = [max(v, 0.0) for v in z]
    want = [_positive_max(p) for p in pres]
    got = activation_scales(ann, x)
    assert got.tolist() == want
    assert activation_scales(ann, x, percentile=100).tolist() == want
    # lower percentiles lie between the smallest positive activation and the maximum, and do
    # not decrease with the percentile
    ps = sorted(data.draw(st.lists(st.floats(1e-9, 100), min_size=2, max_size=4)))
    prev = None
    for p in ps:
        s = activation_scales(ann, x, percentile=p)
        for li in range(L):
            pos = [v for v in pres[li] if v > 0]
            lo = min(pos) if pos else 1.0
            assert lo <= s[li] <= want[li]
        if prev is not None:
            assert np.all(s >= prev)
        prev = s


def _normalised_relu_via_snn_weights(c, x, rtol=0.0):
    """ã^l = ReLU((W_SNN ã^(l-1) + b_SNN) / θ), ã^0 = x / input_max: what the converted weights
    say the IF rates should be (before saturation; the last layer without ReLU).

    With ``rtol``, also a bound on each entry's rounding: ``rtol`` times the size of its terms
    ``(|W_SNN| ã^(l-1) + |b_SNN|) / θ``, plus the bound of the layer below carried through
    ``|W_SNN| / θ`` (ReLU does not enlarge it). A sum that cancels is known only to its terms'
    rounding: a 1,200-example run (stop 42) met 100 − 99.999 (θ = 1e-3, a bias of −0.99999
    against a normalised input of 1e-5), 4.8e-12 from the ANN's normalised value 1."""
    h = x / c.scales[0]
    h_tol = np.zeros(h.shape)
    out, tols = [], []
    for li, layer in enumerate(c.network.layers):
        z = h @ layer.weight.T
        size = np.abs(h) @ np.abs(layer.weight.T)
        if layer.bias is not None:
            z = z + layer.bias
            size = size + np.abs(layer.bias)
        z = z / c.theta
        tol = (rtol * size + h_tol @ np.abs(layer.weight.T)) / c.theta
        out.append(z)
        tols.append(tol)
        h, h_tol = np.maximum(z, 0), tol
    return (out, tols) if rtol else out


@settings(max_examples=example_count(30))
@given(st.data(), st.sampled_from([1.0, 0.5, 3.0, 1e-3]), st.sampled_from([1.0, 2.0, 0.25]),
       st.sampled_from([100.0, 99.0, 50.0]))
def test_converted_weights_give_the_normalised_activations(data, theta, input_max, percentile):
    # Rueckauer et al. 2017 / Ding 2025 Eq. 14: the SNN's weights map normalised activations
    # a^(l-1)/max^(l-1) to a^(l)/max^(l) (times θ); with percentile 100 the calibration maximum
    # of every layer's normalised positive activation is 1
    ann = data.draw(nets())
    x = data.draw(batches(ann.n_in, high=input_max))
    c = convert(ann, x, theta=theta, input_max=input_max, percentile=percentile)
    pre = forward(ann, x).pre
    got, tols = _normalised_relu_via_snn_weights(c, x, rtol=1e-12)
    for li, (g, z, tol) in enumerate(zip(got, pre, tols)):
        _close(g, z / c.scales[li + 1], f"layer {li}", rtol=1e-12, atol=tol)
        if percentile == 100.0 and np.any(z > 0):
            k = np.unravel_index(np.argmax(g), g.shape)
            assert abs(g[k] - 1.0) <= 1e-12 + tol[k], (g[k], tol[k])
        assert c.network.layers[li].weight.dtype == ann.weights[li].dtype
    assert c.scales[0] == input_max and c.theta == theta and c.percentile == percentile


def test_converted_weights_of_a_cancelling_sum_regression():
    # the 1,200-example case (stop 42): the output's pre-activation 1 - 0.99999 = 1e-5 is its
    # own maximum, so normalised it is 1; through the SNN weights (θ = 1e-3) it is 100 - 99.999,
    # 4.8e-12 from 1 -- within the rounding of terms of size 2e5, not of the value 1
    ann = ANN([np.array([[0.0]]), np.array([[0.0], [0.0]]), np.array([[1.0, 0.0]])],
              [np.array([0.0]), np.array([1.0, 0.0]), np.array([-0.99999])])
    x = np.array([[0.0]])
    c = convert(ann, x, theta=1e-3, input_max=1.0, percentile=100.0)
    got, tols = _normalised_relu_via_snn_weights(c, x, rtol=1e-12)
    assert abs(got[2][0, 0] - 1.0) > 1e-12  # the cancellation shows
    assert abs(got[2][0, 0] - 1.0) <= tols[2][0, 0]
    for li, (g, z, tol) in enumerate(zip(got, forward(ann, x).pre, tols)):
        _close(g, z / c.scales[li + 1], f"layer {li}", rtol=1e-12, atol=tol)


@settings(max_examples=example_count(30))
@given(st.data(), st.integers(-20, 20), st.sampled_from([100.0, 99.9, 37.5]))
def test_conversion_power_of_two_invariances_are_bit_exact(data, k, percentile):
    ann = data.draw(nets(min_layers=1))
    x = data.draw(batches(ann.n_in))
    pre = forward(ann, x).pre
    # a silent layer's scale is 1 by convention, not a maximum: it does not scale
    assume(all(np.any(z > 0) for z in pre))
    c = convert(ann, x, percentile=percentile)
    two = 2.0**k

    def same(other, factor=lambda li: 1.0):
        for li, (a, b) in enumerate(zip(c.network.layers, other.network.layers)):
            np.testing.assert_array_equal(b.weight, a.weight * factor(li))
            if a.bias is not None:
                np.testing.assert_array_equal(b.bias, a.bias * factor(li))

    # θ·2^k: every SNN weight and bias ·2^k
    same(convert(ann, x, percentile=percentile, theta=two), lambda li: two)
    # input_max·2^k: the first layer's weights ·2^k, the rest unchanged
    other = convert(ann, x, percentile=percentile, input_max=two)
    for li, (a, b) in enumerate(zip(c.network.layers, other.network.layers)):
        np.testing.assert_array_equal(b.weight, a.weight * (two if li == 0 else 1.0))
    # layer l (weights and bias) and every later bias ·2^k: activations from l on scale by 2^k,
    # so do their maxima, and the converted network is the same bit for bit
    l = data.draw(st.integers(0, len(ann.weights) - 1))
    ws = [w * two if li == l else w for li, w in enumerate(ann.weights)]
    bs = [None if b is None else (b * two if li >= l else b) for li, b in enumerate(ann.biases)]
    scaled = convert(ANN(ws, bs), x, percentile=percentile)
    same(scaled)
    np.testing.assert_array_equal(scaled.scales[l + 1:], c.scales[l + 1:] * two)
    # calibration images and input_max ·2^k (no biases): the same network
    if not ann.has_bias:
        same(convert(ann, x * two, percentile=percentile, input_max=two))


@settings(max_examples=example_count(30))
@given(st.data(), st.sampled_from([100.0, 99.0, 12.5]))
def test_conversion_hidden_permutation_is_bit_exact(data, percentile):
    ann = data.draw(nets(dyadic=True, min_layers=2))
    x = data.draw(batches(ann.n_in, dyadic=True))
    perm = np.array(data.draw(st.permutations(range(ann.weights[0].shape[0]))))
    ws, bs = list(ann.weights), list(ann.biases)
    ws[0], ws[1] = ws[0][perm], ws[1][:, perm]
    if bs[0] is not None:
        bs[0] = bs[0][perm]
    a = convert(ann, x, percentile=percentile)
    b = convert(ANN(ws, bs), x, percentile=percentile)
    np.testing.assert_array_equal(b.scales, a.scales)
    np.testing.assert_array_equal(b.network.layers[0].weight, a.network.layers[0].weight[perm])
    np.testing.assert_array_equal(b.network.layers[1].weight,
                                  a.network.layers[1].weight[:, perm])


@settings(max_examples=example_count(30))
@given(st.data(), st.sampled_from([1, 2, 7, 64, 255]), st.sampled_from([1.0, 0.25, 4.0]),
       st.sampled_from([1.0, 2.0, 0.5]), st.sampled_from([100.0, 60.0, 1.0]))
def test_if_counts_are_the_floor_of_the_clipped_normalised_activation(
        data, T, theta, input_max, percentile):
    # one IF layer under current coding of x / input_max: a constant current
    # I = θ·ReLU-free ã with ã = (W x + b) / max^(1); counts = floor(T·min(max(ã, 0), 1))
    # (module docstring); percentile < 100 saturates some units (ã > 1: a spike every step)
    ann = data.draw(nets(max_layers=1, max_width=5))
    x = data.draw(batches(ann.n_in, high=input_max))
    c = convert(ann, x, theta=theta, input_max=input_max, percentile=percentile)
    res = simulate(c.network, current(x / input_max, T), record=True)
    counts = res.layers[0].spikes.sum(axis=0)
    a = forward(ann, x).pre[0] / c.scales[1]
    exact = T * np.clip(a, 0, 1)
    # skip values a rounding away from an integer count k in 1..T (the current θ·ã and the
    # membrane carry roundings; ã = 1 at the calibration maximum may give T - 1 or T)
    near = (np.abs(T * a - np.round(T * a)) < 1e-9) & (T * a > 0.5) & (T * a < T + 0.5)
    np.testing.assert_array_equal(counts[~near], np.floor(exact[~near]))
    assert np.all(np.abs(counts[near] - T * a[near]) <= 1)


@settings(max_examples=example_count(20))
@given(st.data(), st.sampled_from([1.0, 0.5]))
def test_readout_rate_error_is_within_the_explicit_one_over_T_bound(data, theta):
    # IF hidden layer (current coding, percentile 100: no saturation on the calibration images)
    # then an integrating Readout: V_T = W2_SNN·counts + T·b2_SNN, and with
    # 0 <= ã_j - counts_j/T < 1/T, |V_T/T - θ·z2/max^(2)| <= Σ_j |W2_SNN[i, j]| / T.
    # The bound shrinks as 1/T; at T = 4096 the error is checked to be below it too.
    ann = data.draw(nets(max_layers=2, min_layers=2, max_width=4))
    x = data.draw(batches(ann.n_in))
    c = convert(ann, x, theta=theta, readout=True)
    assert isinstance(c.network.layers[-1].neuron, Readout)
    assert c.network.layers[0].neuron == IF(theta=theta)
    want = theta * forward(ann, x).logits / c.scales[2]
    w2 = c.network.layers[1].weight
    for T in (1, 16, 4096):
        v = simulate(c.network, current(x, T)).output[-1]
        bound = np.abs(w2).sum(axis=1) / T
        assert np.all(np.abs(v / T - want) <= bound + 1e-12 * (1 + np.abs(want))), T


def test_convert_names_calibration_x_when_its_width_is_wrong():
    ann = ANN([np.ones((2, 3))])
    with pytest.raises(ValueError, match=r"calibration_x must be a non-empty \[n, 3\] array"):
        activation_scales(ann, np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"calibration_x must be a non-empty \[n, 3\] array"):
        convert(ann, np.ones((4, 2)))


# --------------------------------------------------------------------------- CBA
@settings(max_examples=example_count(20))
@given(st.data(), st.sampled_from([1.0, 0.8, 2.0]))
def test_cba_weight_gradients_are_derivatives_in_the_snn_weights(data, theta):
    # W_ANN = W_SNN / factor and b_ANN = b_SNN·max/θ: the ANN loss as a function of the SNN
    # parameters, differentiated by central differences, is what ann_gradient returns
    ann = data.draw(nets(max_width=3, min_layers=2, max_layers=2, bias=True))
    x = data.draw(batches(ann.n_in, max_rows=3))
    y = _labels(data.draw, ann.n_out, len(x))
    assume(all(np.min(np.abs(z)) > 1e-3 for z in forward(ann, x).pre[:-1]))
    assume(all(np.any(z > 0) for z in forward(ann, x).pre))
    c = convert(ann, x, theta=theta)
    g = ann_gradient(c, x, y).grads
    ws = [l.weight.copy() for l in c.network.layers]
    bs = [l.bias.copy() for l in c.network.layers]

    def loss():
        back = ANN([w / f for w, f in zip(ws, c.factors)],
                   [b * s / theta for b, s in zip(bs, c.scales[1:])])
        return loss_and_grad(back, x, y).loss

    h = 1e-6
    for params, grads in ((ws, g.weights), (bs, g.biases)):
        for arr, got in zip(params, grads):
            want = np.zeros_like(arr)
            for idx in np.ndindex(arr.shape):
                keep = arr[idx]
                arr[idx] = keep + h * max(1.0, abs(keep))
                up = loss()
                arr[idx] = keep - h * max(1.0, abs(keep))
                down = loss()
                arr[idx] = keep
                want[idx] = (up - down) / (2 * h * max(1.0, abs(keep)))
            np.testing.assert_allclose(got, want, rtol=RTOL_FINITE_DIFF, atol=1e-8)
    np.testing.assert_array_equal(g.input, loss_and_grad(ann, x, y).grads.input)


@pytest.mark.parametrize("source", ["ann", "conversion"])
def test_cba_gradients_keep_a_float32_networks_dtype(source):
    # was: dividing by the float64 factors (and multiplying the biases by the float64 scales)
    # turned a float32 ANN's weight and bias gradients into float64 (NumPy 2 promotes with a
    # float64 scalar), unlike every other gradient method of a float32 network
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((3, 2)).astype(np.float32),
          rng.standard_normal((2, 3)).astype(np.float32)]
    ann = ANN(ws, [np.full(3, 0.1, np.float32), np.zeros(2, np.float32)])
    x = np.array([[0.5, 0.25], [1.0, 0.0]], dtype=np.float32)
    y = np.array([0, 1])
    c = convert(ann, x, theta=0.75)
    src = ann if source == "ann" else c
    g = ann_gradient(src, x, y).grads
    ref = loss_and_grad(ann, x, y).grads
    f = np.ones(2) if source == "ann" else c.factors
    for li in range(2):
        assert g.weights[li].dtype == np.float32 and g.biases[li].dtype == np.float32
        # rounded once from the float64 quotient
        np.testing.assert_array_equal(
            g.weights[li], (ref.weights[li].astype(np.float64) / f[li]).astype(np.float32))
    r = snn_loss_and_grad(c.network, x, y, T=4, encoder="current", method="ann", ann=c)
    assert all(w.dtype == np.float32 for w in r.grads.weights)
    assert r.grads.input.dtype == np.float32


@settings(max_examples=example_count(20))
@given(st.data(), st.integers(1, 9))
def test_cba_sequence_gradient_spreads_the_image_gradient_evenly(data, T):
    ann = data.draw(nets(min_layers=2, max_layers=2))
    x = data.draw(batches(ann.n_in))
    y = _labels(data.draw, ann.n_out, len(x))
    c = convert(ann, x)
    seq = current(x, T)
    res, image = cba_gradients(c.network, seq, x, y, ann=c)
    ref = loss_and_grad(ann, x, y).grads.input
    np.testing.assert_array_equal(image, ref)
    assert res.input.shape == seq.shape and res.input.dtype == seq.dtype
    for t in range(T):
        np.testing.assert_array_equal(res.input[t], ref / T)
    # from the sequence alone: the ANN at the input rate, the per-step mean (which is x up to
    # the rounding of a mean of T equal terms)
    res2, image2 = cba_gradients(c.network, seq, None, y, ann=c)
    assert image2 is None
    res3, _ = cba_gradients(c.network, seq, seq.mean(axis=0), y, ann=c)
    np.testing.assert_array_equal(res2.input, res3.input)


# --------------------------------------------------------------------------- certified accuracy
@settings(max_examples=example_count(40))
@given(st.data())
def test_certified_accuracy_equals_the_brute_force_count(data):
    pool = data.draw(st.lists(st.sampled_from([0.0, 5e-324, 0.1, 0.5, 1.0, 1e308]) |
                              st.floats(0, 10), min_size=1, max_size=4))
    B = data.draw(st.integers(1, 9))
    radius = [data.draw(st.sampled_from(pool)) for _ in range(B)]
    correct = data.draw(st.lists(st.booleans(), min_size=B, max_size=B))
    # evaluation radii: tied with the data's radii, between them, 0 and beyond every radius
    radii = data.draw(st.lists(st.sampled_from(pool + [0.0, 0.3, 11.0, 1.7e308]),
                               min_size=0, max_size=5))
    got = certified_accuracy(np.array(radius), np.array(correct), radii)
    want = [sum(1 for rad, ok in zip(radius, correct) if ok and rad >= r) / B for r in radii]
    assert isinstance(got, np.ndarray) and got.tolist() == want
    for r, w in zip(radii, want):
        value = certified_accuracy(np.array(radius), np.array(correct), r)
        assert isinstance(value, float) and value == w
    # non-increasing in r
    order = np.argsort(radii, kind="stable")
    assert np.all(np.diff(got[order]) <= 0)


# --------------------------------------------------------------------------- table files
_TEXT = st.text(alphabet=st.sampled_from(list("ab ,:#\"'\\\n\r\t{}[]é…\u2028\x00")), max_size=12)


@st.composite
def tables(draw):
    B = draw(st.integers(0, 4))
    # the rows are what certify writes (the table checks it): ABSTAIN with p_a_lower <= 1/2 and
    # radius 0, or a class with p_a_lower > 1/2 and its certified radius; σ from the smallest
    # subnormal to 1e300 puts radii at every scale (denormal to 8e300)
    noise = NoiseModel(draw(st.sampled_from(["gaussian", "rsc_fixed", "rsc_fresh"])),
                       draw(st.sampled_from([5e-324, 1e-300, 0.25, 1 / 3, 1e300])),
                       draw(st.integers(1, 10**6)))
    p_abstain = st.sampled_from([0.0, 5e-324, 0.5]) | st.floats(0, 0.5)
    p_class = (st.sampled_from([math.nextafter(0.5, 1), 1 - 2**-53])
               | st.floats(0.5, 1, exclude_min=True, exclude_max=True))
    big = st.integers(0, 2**128)
    opt = lambda s: st.none() | s  # noqa: E731
    # num_classes, when recorded, bounds the labels and predictions (the table checks it)
    num_classes = draw(opt(st.integers(2, 2**40)))
    top = 2**63 - 1 if num_classes is None else num_classes - 1
    classes = st.sampled_from([0, 1]) | st.integers(0, top)
    label = draw(st.lists(classes, min_size=B, max_size=B))
    # a prediction is ABSTAIN or a class, often the label; the table checks that correct
    # follows from them
    prediction = [draw(st.sampled_from([ABSTAIN, lab]) | classes) for lab in label]
    p_low = [draw(p_abstain if p == ABSTAIN else p_class) for p in prediction]
    return CertificationTable(
        label=label, prediction=prediction,
        correct=[p == lab and p != ABSTAIN for p, lab in zip(prediction, label)],
        radius=[certified_radius(p, noise) for p in p_low], p_a_lower=p_low,
        noise=noise.name, sigma=noise.sigma, n_steps=noise.n_steps,
        n0=draw(st.integers(1, 2**40)),
        n=draw(st.integers(1, 2**40)), alpha=draw(st.sampled_from([5e-324, 1e-12, 0.001, 0.1,
                                                                   0.5 - 2**-54])),
        clamp=draw(st.booleans()), encoder=draw(opt(_TEXT)), encode_rng=draw(st.booleans()),
        normals=draw(st.sampled_from(NORMALS)),
        num_classes=num_classes,
        seed_entropy=draw(opt(big | st.lists(big, max_size=3))),
        seed_spawn_key=tuple(draw(st.lists(st.integers(0, 2**32), max_size=3))),
        seed_pool_size=draw(opt(st.integers(4, 8))),
        batch_size=draw(opt(st.integers(1, 10**9))), chunk_size=draw(opt(st.integers(1, 99))),
        noise_chunk=draw(opt(st.integers(1, 99))), classifier=draw(opt(_TEXT)),
        classifier_dtype=draw(opt(st.sampled_from(["float32", "float64"]))),
        n_features=draw(opt(st.integers(1, 10**6))), data_sha256=draw(opt(_TEXT)),
        scheduler=draw(opt(_TEXT)), n_workers=draw(opt(st.integers(1, 64))),
        processes=draw(opt(st.booleans())),
        versions=draw(st.dictionaries(_TEXT, _TEXT, max_size=2)),
    )


def _bits(a):
    return np.asarray(a, dtype=np.float64).view(np.int64).tolist()


@settings(max_examples=example_count(40))
@given(tables(), st.sampled_from(["csv", "json"]))
def test_table_files_round_trip_bit_for_bit(tmp_path_factory, table, fmt):
    path = tmp_path_factory.mktemp("t") / f"t.{fmt}"
    back = getattr(CertificationTable, f"read_{fmt}")(getattr(table, f"to_{fmt}")(path))
    assert len(back) == len(table)
    for name in ("label", "prediction", "correct"):
        got, want = getattr(back, name), getattr(table, name)
        assert got.dtype == want.dtype and got.tolist() == want.tolist(), name
    for name in ("radius", "p_a_lower"):
        assert getattr(back, name).dtype == np.float64
        assert _bits(getattr(back, name)) == _bits(getattr(table, name)), name
    got, want = back.parameters(), table.parameters()
    assert list(got) == list(want)
    for key in want:
        # JSON text of each value compares floats by repr (exact) and ints by value
        assert json.dumps(got[key]) == json.dumps(want[key]), key


# --------------------------------------------------------------------------- data digest
@settings(max_examples=example_count(30))
@given(st.data())
def test_data_digest_depends_on_values_and_shape_only(data):
    rows = data.draw(st.integers(1, 4))
    cols = data.draw(st.integers(1, 4))
    ints = np.array(data.draw(st.lists(st.integers(0, 255), min_size=rows * cols,
                                       max_size=rows * cols))).reshape(rows, cols)
    ref = data_digest(ints.astype(np.float64))
    # dtype and memory layout of the same values do not matter
    assert data_digest(ints) == ref
    assert data_digest(ints.astype(np.uint8)) == ref
    assert data_digest((ints / 1).astype(np.float32)) == ref
    assert data_digest(np.asfortranarray(ints)) == ref
    assert data_digest(ints.tolist()) == ref
    wide = np.zeros((rows, 2 * cols))
    wide[:, ::2] = ints
    assert data_digest(wide[:, ::2]) == ref  # a strided view
    assert data_digest(np.where(ints == 0, -0.0, ints.astype(np.float64))) == ref  # -0.0 is 0
    # the shape matters even for the same bytes, and so does one ulp of one pixel
    assert data_digest(ints.reshape(cols, rows)) != ref or rows == cols
    assert data_digest(ints.reshape(1, -1)) != ref or rows == 1
    i, j = data.draw(st.integers(0, rows - 1)), data.draw(st.integers(0, cols - 1))
    bumped = ints.astype(np.float64)
    bumped[i, j] = np.nextafter(bumped[i, j], np.inf)
    assert data_digest(bumped) != ref


def test_data_digest_reads_negative_zero_as_zero():
    # -0.0 and 0.0 were hashed as different images, so reproduce() refused a table whose images
    # had passed through a sign flip (-x of a black pixel) although every encoder sees the same
    assert data_digest(np.array([[-0.0, 0.5]])) == data_digest(np.array([[0.0, 0.5]]))
    assert data_digest(np.array([[-0.5, 0.5]])) != data_digest(np.array([[0.5, 0.5]]))


# --------------------------------------------------------------------------- certify_dataset
class SignOfMean:
    """Class 1 when the time-mean of pixel 0 exceeds pixel 1 (top level: picklable)."""

    def __call__(self, seq):
        m = seq.mean(axis=0)
        return (m[:, 0] > m[:, 1]).astype(np.int64)


def test_certify_dataset_is_independent_of_workers_and_chunks(tmp_path):
    pytest.importorskip("distributed")
    # corners: a pixel pair at the decision boundary (abstain), duplicated rows (same image,
    # different streams), pixels at 0 and 1, a single pixel pair per image
    X = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [1.0, 0.0], [0.6, 0.4]])
    y = np.array([1, 0, 1, 1, 0])
    kw = dict(n0=8, n=64, alpha=0.01, num_classes=2, rng=11, progress=False)
    noise = rsc_fixed(0.25, 2)
    ref = certify_dataset(SignOfMean(), X, y, noise, **kw)
    runs = [certify_dataset(SignOfMean(), X, y, noise, chunk_size=c, batch_size=b, **kw)
            for c, b in ((2, 7), (5, 1))]
    runs += [certify_dataset(SignOfMean(), X, y, noise, scheduler="local", n_workers=w,
                             processes=False, chunk_size=c, **kw) for w, c in ((1, 1), (2, 2))]
    for other in runs:
        for name in ("prediction", "correct", "radius", "p_a_lower"):
            assert _bits(getattr(other, name)) == _bits(getattr(ref, name)), name
    assert ref.prediction[2] == ABSTAIN and not ref.correct[2] and ref.radius[2] == 0.0
    # duplicated image: independent streams, yet here both certify class 1
    assert ref.prediction[0] == ref.prediction[3] == 1
    assert ref.correct.tolist() == [True, True, False, True, False]
    # the curve of the table is the brute-force count
    for r in (0.0, float(ref.radius.min()), float(ref.radius.max()), 1.0):
        want = sum(1 for rad, ok in zip(ref.radius, ref.correct) if ok and rad >= r) / len(X)
        assert ref.certified_accuracy(r) == want
    # the files hold the run bit for bit
    back = CertificationTable.read_csv(ref.to_csv(tmp_path / "r.csv"))
    assert _bits(back.radius) == _bits(ref.radius) and back.parameters() == ref.parameters()


def test_accuracy_refuses_labels_that_no_prediction_can_equal():
    # was: float labels (0.5), booleans and labels beyond the classes were silently counted as
    # wrong (accuracy 0.5 below), where loss_and_grad and metrics.accuracy refuse them
    ann = ANN([np.eye(2)])
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert accuracy(ann, x, np.array([0, 1])) == 1.0
    with pytest.raises(TypeError, match="y must hold integer class labels, got dtype float64"):
        accuracy(ann, x, np.array([0.5, 1.0]))
    with pytest.raises(TypeError, match="y must hold integer class labels, got dtype bool"):
        accuracy(ann, x, np.array([True, False]))
    # the messages name the caller's arguments, not cross_entropy's "scores" (stop 29)
    with pytest.raises(ValueError, match=r"y holds the label 2 but the network's output has 2 "
                                         r"classes; labels are 0-based class indices in \[0, 1\]"):
        accuracy(ann, x, np.array([1, 2]))
    with pytest.raises(ValueError, match=r"labels holds the label 2 but the network's output"):
        loss_and_grad(ann, x, np.array([1, 2]))
    with pytest.raises(ValueError, match=r"y has shape \(1, 2\) but x has 2 samples"):
        accuracy(ann, x, np.array([[0, 1]]))


def test_calibration_x_errors_name_calibration_x():
    # was: the width, NaN and dtype errors named forward's argument x
    ann = ANN([np.ones((2, 3))])
    with pytest.raises(ValueError, match="calibration_x holds NaN or infinite values"):
        convert(ann, np.array([[np.nan, 0.0, 0.0]]))
    with pytest.raises(TypeError, match="calibration_x must hold real numbers, got dtype <U1"):
        activation_scales(ann, np.array([["a", "b", "c"]]))


def test_cba_evaluates_the_ann_where_the_snn_is_with_input_max():
    # One layer with an integrating readout: V_T / T = W_SNN·(x / input_max) + b_SNN is exactly
    # θ·ANN(x)/max^(1) (Eq. 14 with max^(0) = input_max), so the SNN fed x / input_max computes
    # the ANN at x. Was: CBA evaluated the ANN at the SNN's input x / input_max (another point,
    # other logits and another gradient direction) and returned its gradient unscaled.
    ann = ANN([np.array([[1.0, -1.0], [-1.0, 0.5]])], [np.array([0.25, -0.5])])
    x_ann = np.array([[2.0, 0.5], [0.25, 1.5]])  # images in [0, 2]
    y = np.array([1, 0])
    c = convert(ann, x_ann, input_max=2.0, readout=True)
    x_snn = x_ann / 2.0
    T = 8
    v = simulate(c.network, current(x_snn, T)).output[-1] / T
    np.testing.assert_allclose(v, forward(ann, x_ann).logits / c.scales[1], rtol=1e-14)
    res, image = cba_gradients(c.network, current(x_snn, T), x_snn, y, ann=c)
    want = 2.0 * loss_and_grad(ann, x_ann, y).grads.input  # d/dx L(ANN(2x))
    np.testing.assert_array_equal(image, want)
    np.testing.assert_array_equal(res.input, np.broadcast_to(want / T, res.input.shape))
    # ann_gradient takes the SNN's images too (review: it evaluated the ANN at x itself, so at
    # x_snn its weight gradients were up to 0.13 off the method's, its image gradient -0.154
    # against -0.367 in a 3-4-2 network with input_max 2.5)
    ref = ann_gradient(c, x_snn, y).grads
    for got, w in zip(res.weights, ref.weights):
        np.testing.assert_array_equal(got, w)
    np.testing.assert_array_equal(ref.input, want)
    r = snn_loss_and_grad(c.network, x_snn, y, T=T, encoder="current", decoder="membrane",
                          method="ann", ann=c)
    np.testing.assert_array_equal(r.image, want)


def test_certified_accuracy_refuses_nan_and_negative_radii():
    # was: a NaN radius compared False with every r (silently "not certified"), a negative one
    # was taken as it came; an infinite radius is certified at every radius and stays accepted
    with pytest.raises(ValueError, match=r"radius\[1\]=nan must be >= 0 and not NaN"):
        certified_accuracy([0.5, np.nan], [True, True], [0.0, 0.25])
    with pytest.raises(ValueError, match=r"radius\[0\]=-0.5 must be >= 0 and not NaN"):
        certified_accuracy(np.array([-0.5, 1.0]), np.array([True, True]), 0.0)
    with pytest.raises(ValueError, match=r"radius\[0\]=-1 must be >= 0"):
        certified_accuracy(np.array([-1, 2]), np.array([True, True]), 0.0)
    assert certified_accuracy([np.inf, 0.0], [True, True], [0.0, 1e308]).tolist() == [1.0, 0.5]
    assert certified_accuracy([-0.0], [True], 0.0) == 1.0


@pytest.mark.parametrize("mlp", [ANN.mlp, Network.mlp], ids=["ANN", "Network"])
def test_mlp_refuses_sizes_that_are_not_positive_integers(mlp):
    # was: ANN.mlp's int() truncated a float width (100.7 -> a layer of 100) and took True as
    # 1; Network.mlp raised numpy's "'float' object cannot be interpreted as an integer"
    with pytest.raises(TypeError, match=r"sizes\[1\] must be an integer \(layer width\), got "
                                        r"float 100.7"):
        mlp([3, 100.7, 2])
    with pytest.raises(TypeError, match=r"sizes\[0\] must be an integer \(layer width\), got "
                                        "bool True"):
        mlp([True, 2])
    with pytest.raises(ValueError, match=r"sizes\[2\]=0 must be an integer >= 1"):
        mlp([3, 2, 0])
    with pytest.raises(ValueError, match=r"sizes\[1\]=-1 must be an integer >= 1"):
        mlp([3, -1])
    assert ANN.mlp([np.int64(3), 2], rng=0).sizes == (3, 2)
    assert Network.mlp([np.int64(3), 2], rng=0).layers[0].weight.shape == (2, 3)
