"""Tests of the static-input fast path of certify.smoothing (RSC-I / current coding): the
first layer's input product once per noise draw (issue 6), NetworkClassifier, and the kernel's
twin in tests/reference/clock.py."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certify.smoothing import (
    NetworkClassifier,
    certify,
    gaussian,
    rsc_fixed,
    rsc_fresh,
    sample_counts,
)
from evsnn.clock import Dense, Network, simulate
from evsnn.clock.static import _LANES, _constant_current_lif, _lif_readout, _lif_readout_kernel
from evsnn.conventions import DEFAULT
from evsnn.params import LIF, Readout, TraceLIF
from tests.conftest import ATOL_TWIN, RTOL_TWIN
from tests.reference import clock as ref


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("hard_reset,spike_ge", [(True, True), (False, False), (True, False)])
def test_kernel_matches_twin(dtype, hard_reset, spike_ge):
    rng = np.random.default_rng(3)
    cur = rng.uniform(-0.5, 1.5, size=(7, 11)).astype(dtype)
    cur[0, :3] = 1.0  # exactly at threshold from rest: the spike test decides
    args = (5, dtype(0.9), dtype(1.0), dtype(0.0), dtype(0.0), hard_reset, spike_ge)
    out = np.empty((5, 7, 11), dtype=dtype)
    twin = np.empty_like(out)
    _constant_current_lif(cur, *args, out)
    ref._constant_current_lif_kernel(cur, *args, twin)
    np.testing.assert_allclose(out, twin, rtol=RTOL_TWIN, atol=ATOL_TWIN)
    assert out[0, 0, 0] == (1.0 if spike_ge else 0.0)
    # the spikes as a bool raster (what classify_static uses): the same spikes, arithmetic
    # still in cur's dtype
    spikes = np.empty(out.shape, dtype=np.bool_)
    _constant_current_lif(cur, *args, spikes)
    np.testing.assert_array_equal(spikes, twin != 0)


@given(st.integers(0, 2**32 - 1), st.integers(1, 9), st.integers(1, 12), st.integers(1, 6),
       st.sampled_from([np.float64, np.float32]), st.booleans(), st.booleans(), st.booleans())
def test_kernel_matches_twin_on_drawn_shapes(seed, B, n, n_steps, dtype, hard_reset, spike_ge,
                                             bool_out):
    # several samples per thread piece: each starts from v_init again (the work array is shared)
    rng = np.random.default_rng(seed)
    cur = rng.uniform(-0.5, 1.5, size=(B, n)).astype(dtype)
    args = (n_steps, dtype(0.9), dtype(1.0), dtype(0.0), dtype(0.1), hard_reset, spike_ge)
    out = np.empty((n_steps, B, n), dtype=np.bool_ if bool_out else dtype)
    twin = np.empty_like(out)
    _constant_current_lif(cur, *args, out)
    ref._constant_current_lif_kernel(cur, *args, twin)
    np.testing.assert_array_equal(out, twin)


def test_kernel_equals_the_simulator_on_a_constant_current():
    # one layer with identity weights: simulate's current is the input itself
    rng = np.random.default_rng(0)
    z = rng.uniform(0, 1.2, size=(6, 5))
    net = Network([Dense(np.eye(5), LIF(lam=0.8, theta=1.0, reset="soft"))])
    sim = simulate(net, np.repeat(z[None], 7, axis=0)).output
    out = np.empty((7, 6, 5))
    _constant_current_lif(z, 7, 0.8, 1.0, 0.0, 0.0, False, True, out)
    np.testing.assert_array_equal(out, sim)


def _net(seed, first=None):
    rng = np.random.default_rng(seed)
    net = Network.mlp([20, 30, 4], LIF(lam=0.9, theta=1.0), rng=rng, scale=2.5)
    if first is not None:
        net = Network((net.layers[0].replace(neuron=first),) + net.layers[1:])
    return net


@pytest.mark.parametrize("product", ["exact", "blas"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_static_path_gives_the_simulators_labels(dtype, product):
    clf = NetworkClassifier(_net(1), dtype=dtype, product=product)
    z = np.random.default_rng(2).uniform(0, 1, size=(200, 20))
    fast = clf.classify_static(z, 6)
    slow = clf(np.repeat(z[None], 6, axis=0))
    np.testing.assert_array_equal(fast, slow)
    assert len(np.unique(fast)) > 1  # not a constant classifier


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exact_first_layer_current_is_the_simulators_and_each_rows_own(dtype):
    # product="exact": the first layer's input equals simulate's recorded current bit for bit,
    # and a row's current does not depend on the rows batched with it (BLAS rounds a row
    # differently with the batch's size and the row's position: float64 [B, 784] · [784, 500]
    # differs in ~1 % of the entries between batchings, bench/RESULTS_certify.md)
    rng = np.random.default_rng(5)
    net = Network.mlp([784, 500, 10], LIF(lam=0.9, theta=1.0), rng=rng, scale=3.0)
    x = (rng.random(784) < 0.2) * rng.random(784)
    z = np.clip(x + 0.25 * rng.standard_normal((70, 784)), 0, 1).astype(dtype)
    clf = NetworkClassifier(net, dtype=dtype)
    whole = clf._first_current(z, np.empty((70, 500), dtype))
    rec = simulate(Network(net.layers[:1]), np.repeat(z[None], 2, axis=0), record=True,
                   dtype=dtype).layers[0].current
    np.testing.assert_array_equal(whole, rec[0])
    perm = rng.permutation(70)
    for size in (1, 3, 7, 64):
        rows = [perm[i : i + size] for i in range(0, 70, size)]
        parts = [clf._first_current(z[r], np.empty((len(r), 500), dtype)) for r in rows]
        np.testing.assert_array_equal(np.concatenate(parts), whole[perm])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_counts_independent_of_batch_size_with_a_network_classifier(dtype):
    clf = NetworkClassifier(_net(3), dtype=dtype)
    x = np.random.default_rng(6).uniform(0, 1, 20)
    counts = [sample_counts(clf, x, rsc_fixed(0.3, 5), 400, num_classes=4, rng=2, batch_size=bs)
              for bs in (1, 7, 64, 400)]
    for c in counts[1:]:
        np.testing.assert_array_equal(c, counts[0])


@pytest.mark.parametrize("decoder", ["rate", "ttfs"])
def test_static_path_of_a_one_layer_network_decodes_its_bool_spikes(decoder):
    # no layer after the first: the labels come from the first layer's (bool) spikes directly
    net = Network.mlp([20, 6], LIF(lam=0.9, theta=1.0), rng=3, scale=2.5)
    clf = NetworkClassifier(net, decoder=decoder, dtype=np.float32)
    z = np.random.default_rng(4).uniform(0, 1, size=(300, 20))
    fast = clf.classify_static(z, 6)
    np.testing.assert_array_equal(fast, clf(np.repeat(z[None], 6, axis=0)))
    assert len(np.unique(fast)) > 1


def test_fallback_for_trace_neurons_and_bias():
    clf = NetworkClassifier(_net(4, TraceLIF()))
    z = np.random.default_rng(5).uniform(0, 1, size=(50, 20))
    np.testing.assert_array_equal(clf.classify_static(z, 4), clf(np.repeat(z[None], 4, axis=0)))
    net = _net(6)
    net = Network((net.layers[0].replace(bias=np.full(30, 0.2)),) + net.layers[1:])
    clf = NetworkClassifier(net)
    np.testing.assert_array_equal(clf.classify_static(z, 4), clf(np.repeat(z[None], 4, axis=0)))


@pytest.mark.parametrize("factory", [rsc_fixed, gaussian, rsc_fresh])
def test_sampling_uses_the_static_path_with_identical_counts(factory):
    clf = NetworkClassifier(_net(7))
    calls = {"static": 0}

    class Spy:
        def __call__(self, seq):
            return clf(seq)

        def classify_static(self, z, n_steps):
            calls["static"] += 1
            return clf.classify_static(z, n_steps)

    x = np.random.default_rng(8).uniform(0, 1, 20)
    noise = factory(0.3, 5)
    fast = sample_counts(Spy(), x, noise, 300, num_classes=4, rng=9, batch_size=64)
    plain = sample_counts(lambda seq: clf(seq), x, noise, 300, num_classes=4, rng=9,
                          batch_size=100)
    np.testing.assert_array_equal(fast, plain)
    # RSC-II has a fresh image every step: no static input
    assert calls["static"] == (0 if factory is rsc_fresh else 5)
    cert = certify(Spy(), x, noise, n0=20, n=100, alpha=0.01, num_classes=4, rng=1)
    cert2 = certify(lambda seq: clf(seq), x, noise, n0=20, n=100, alpha=0.01, num_classes=4,
                    rng=1)
    np.testing.assert_array_equal(cert.counts, cert2.counts)


def test_errors():
    with pytest.raises(TypeError, match="network must be an evsnn.clock.Network"):
        NetworkClassifier("net")
    with pytest.raises(ValueError, match="decoder='spikes' is not a decoder"):
        NetworkClassifier(_net(0), decoder="spikes")
    for decoder in (3, None, ["rate"]):
        with pytest.raises(TypeError, match=r"decoder must be a decoder's name, one of "
                                            r"\['rate', 'ttfs', 'membrane'\], got "
                                            rf"{type(decoder).__name__} "
                                            rf"{re.escape(repr(decoder))}"):
            NetworkClassifier(_net(0), decoder=decoder)
    with pytest.raises(ValueError, match="dtype=int32 is not supported"):
        NetworkClassifier(_net(0), dtype=np.int32)
    for dtype in ("nonsense", 3):
        with pytest.raises(TypeError, match=rf"^dtype={dtype!r} is not a numpy dtype; use "
                                            r"numpy.float64 or numpy.float32$"):
            NetworkClassifier(_net(0), dtype=dtype)
    with pytest.raises(TypeError, match="^convention must be a Convention or a preset name, got "
                                        "int 3$"):
        NetworkClassifier(_net(0), convention=3)
    with pytest.raises(ValueError, match="^convention='nope' is not a known preset"):
        NetworkClassifier(_net(0), convention="nope")
    clf = NetworkClassifier(_net(0))
    z = np.full((1, 20), 0.5)
    with pytest.raises(TypeError, match=r"^n_steps must be an integer \(time steps\), got float "
                                        r"2.5; the steps each input is presented for$"):
        clf.classify_static(z, 2.5)
    with pytest.raises(ValueError, match=r"^n_steps=0 must be an integer >= 1 \(time steps\)"):
        clf.classify_static(z, 0)
    assert clf.classify_static(z, np.int64(3)).tolist() == clf.classify_static(z, 3).tolist()
    # was: the fast path's kernel read past the weights for images wider than the network
    # (64-pixel digits on a 32-input model: labels from out-of-bounds memory, certify and
    # 'evsnn certify' ran to the end); narrower ones left weights unread
    for bad in (np.full((1, 40), 0.5), np.full((1, 10), 0.5), np.full(20, 0.5)):
        with pytest.raises(ValueError, match=rf"^z must be inputs \[B, 20\] for this network, "
                                             rf"got shape {re.escape(str(bad.shape))}; pass "
                                             r"images as wide as the network's input"):
            clf.classify_static(bad, 3)
    with pytest.raises(ValueError, match=r"z must be inputs \[B, 20\] for this network"):
        certify(clf, np.full(40, 0.5), rsc_fixed(0.25, 3), n0=5, n=20, alpha=0.01,
                num_classes=int(_net(0).n_out), rng=0)
    with pytest.raises(ValueError, match="product='gemm' is not a first-layer product; use "
                                         r"'exact' \(the simulator's sums\) or 'blas'"):
        NetworkClassifier(_net(0), product="gemm")
    for product in (3, None, ["exact"]):
        with pytest.raises(TypeError, match=rf"product must be 'exact' or 'blas', got "
                                            rf"{type(product).__name__} "
                                            rf"{re.escape(repr(product))}"):
            NetworkClassifier(_net(0), product=product)


# --------------------------------------------------------------------- the fused second layer
@settings(max_examples=50)
@given(st.integers(0, 2**32 - 1), st.integers(2, 7), st.integers(1, 40), st.integers(1, _LANES),
       st.integers(1, 6), st.sampled_from([np.float64, np.float32]), st.booleans(),
       st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_lif_readout_kernel_matches_twin(seed, B, n, n_out, n_steps, dtype, hard_reset,
                                         spike_ge, hard_reset2, spiking2, with_bias):
    # bit for bit: the twin adds the spiking neurons' rows one at a time in ascending order
    # (the simulator's sum); random weights, so another order rounds differently
    rng = np.random.default_rng(seed)
    cur = rng.uniform(-0.5, 1.5, size=(B, n)).astype(dtype)
    cur[0, : n // 3] = 1.0  # exactly at threshold from rest: the spike test decides
    cur[-1] = -10.0  # a silent sample: the second layer's first membrane is its bias
    w_pad = np.zeros((n, _LANES), dtype)
    w_pad[:, :n_out] = rng.normal(0.1, 0.7, size=(n, n_out))
    bias_pad = np.zeros(_LANES, dtype)
    if with_bias:
        bias_pad[:n_out] = rng.normal(0, 0.5, n_out)
        bias_pad[0] = 0.7  # that membrane exactly at the second threshold
    first = (n_steps, dtype(0.9), dtype(1.0), dtype(0.0), dtype(0.1), hard_reset, spike_ge)
    second = (w_pad.reshape(-1), bias_pad, dtype(0.8), dtype(0.7), dtype(-0.1), dtype(0.0),
              hard_reset2, spiking2)
    out = np.empty((n_steps, B, n_out), dtype)
    twin = np.empty_like(out)
    _lif_readout(cur, *first, *second, out)
    ref._lif_readout_kernel(cur, *first, *second, twin)
    np.testing.assert_array_equal(out, twin)
    # with the second layer's membrane recorded: the same output, and the twin's membranes
    rec, rec_twin = np.full_like(out, np.nan), np.full_like(out, np.nan)
    out_rec = np.empty_like(out)
    _lif_readout(cur, *first, *second, out_rec, rec_m=rec)
    ref._lif_readout_kernel(cur, *first, *second, twin, rec_twin)
    np.testing.assert_array_equal(out_rec, out)
    np.testing.assert_array_equal(rec, rec_twin)
    if with_bias and spiking2:
        assert out[0, -1, 0] == (1 if spike_ge else 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("b_lo,b_hi", [(0, 7), (0, 6), (1, 6), (2, 3), (3, 7), (6, 7)])
def test_lif_readout_kernel_pairs_of_unlike_samples(dtype, b_lo, b_hi):
    # the kernel runs samples in pairs (b, b + 1), an odd last one paired with itself; each
    # sample's rows in its own order (passes over both currents while both have eight rows,
    # then each one's rest). Neighbours with very different spike counts (silent, all 90
    # neurons at every step, 60, about a third, a few) in pieces of odd and even length
    rng = np.random.default_rng(5)
    n, n_out, n_steps = 90, 10, 4
    cur = rng.uniform(-0.5, 1.5, size=(7, n)).astype(dtype)
    cur[0] = -10.0  # silent
    cur[1] = 5.0  # every neuron at every step
    cur[3, 5:] = -10.0  # at most five spikes per step
    cur[4] = 5.0
    cur[4, ::3] = -10.0  # 60 spikes per step
    cur[6] = -10.0
    cur[6, [0, 17, 44, 89]] = 5.0  # four spikes per step: no pass of eight rows
    w_pad = np.zeros((n, _LANES), dtype)
    w_pad[:, :n_out] = rng.normal(0.1, 0.7, size=(n, n_out))
    bias_pad = np.zeros(_LANES, dtype)
    bias_pad[:n_out] = rng.normal(0, 0.5, n_out)
    first = (n_steps, dtype(0.9), dtype(1.0), dtype(0.0), dtype(0.1), True, True)
    for spiking2 in (False, True):
        second = (w_pad.reshape(-1), bias_pad, dtype(0.8), dtype(0.7), dtype(-0.1),
                  dtype(0.0), True, spiking2)
        out = np.full((n_steps, 7, n_out), np.nan, dtype)
        twin = np.empty_like(out)
        _lif_readout_kernel(cur, *first, *second, out, np.zeros((0, 0, 0), dtype), b_lo, b_hi)
        ref._lif_readout_kernel(cur, *first, *second, twin)
        np.testing.assert_array_equal(out[:, b_lo:b_hi], twin[:, b_lo:b_hi])
        assert np.isnan(out[:, :b_lo]).all() and np.isnan(out[:, b_hi:]).all()


def _two_layer_net(rng, n_in, n_hid, n_out, reset, second, with_bias):
    w1 = rng.normal(0.3, 0.8, size=(n_hid, n_in))
    w2 = rng.normal(0.1, 0.7, size=(n_out, n_hid))
    b1 = rng.normal(0, 0.3, n_hid) if with_bias else None
    b2 = rng.normal(0, 0.3, n_out) if with_bias else None
    return Network([Dense(w1, LIF(lam=0.9, theta=1.0, reset=reset), bias=b1),
                    Dense(w2, second, bias=b2)])


_SECOND = [LIF(lam=0.8, theta=0.7, reset="hard", v_rest=-0.1, v_init=0.05),
           LIF(lam=1.0, theta=1.0, reset="soft"), Readout(), Readout(lam=0.0, v_init=0.2)]


@settings(max_examples=40)
@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(1, 40), st.integers(1, _LANES),
       st.integers(1, 30), st.integers(1, 8), st.sampled_from([np.float64, np.float32]),
       st.sampled_from(["exact", "blas"]), st.sampled_from(["rate", "ttfs", "membrane"]),
       st.booleans(), st.sampled_from(["hard", "soft"]), st.sampled_from(_SECOND),
       st.booleans())
def test_fused_second_layer_is_the_simulators(seed, n_in, n_hid, n_out, B, n_steps, dtype,
                                             product, decoder, spike_ge, reset, second,
                                             with_bias):
    rng = np.random.default_rng(seed)
    net = _two_layer_net(rng, n_in, n_hid, n_out, reset, second, with_bias)
    convention = DEFAULT.with_(spike_test=">=" if spike_ge else ">")
    clf = NetworkClassifier(net, decoder=decoder, dtype=dtype, convention=convention,
                            product=product)
    assert clf._readout is not None  # the fused kernel runs
    z = rng.uniform(0, 1, size=(B, n_in))
    # what classify_static computed before: the first layer's spikes, simulated onwards
    cur = clf._first_current(z.astype(dtype), np.empty((B, n_hid), dtype))
    a = clf._args
    first = (cur, n_steps, dtype(a.lam), dtype(a.theta), dtype(a.v_rest), dtype(a.v_init),
             bool(a.hard_reset), spike_ge)
    spikes = np.empty((n_steps, B, n_hid), np.bool_)
    _constant_current_lif(*first, spikes)
    sim = simulate(clf._rest, spikes, convention=convention, dtype=dtype).output
    out = np.empty((n_steps, B, n_out), dtype)
    _lif_readout(*first, *clf._readout, out)
    np.testing.assert_array_equal(out, sim)
    # the recorded membrane is the simulator's record of the second layer (m before reset)
    rec_m = np.empty_like(out)
    _lif_readout(*first, *clf._readout, np.empty_like(out), rec_m=rec_m)
    sim_m = simulate(clf._rest, spikes, convention=convention, dtype=dtype, record=True)
    np.testing.assert_array_equal(rec_m, sim_m.layers[0].m)
    labels = clf.classify_static(z, n_steps)
    np.testing.assert_array_equal(labels, clf._labels(sim))
    if product == "exact":  # the whole network simulated on the repeated input
        seq = np.repeat(z[None], n_steps, axis=0)
        whole = simulate(net, seq, convention=convention, dtype=dtype).output
        np.testing.assert_array_equal(out, whole)
        np.testing.assert_array_equal(labels, clf(seq))


def test_second_layers_the_fused_kernel_does_not_take_are_simulated():
    rng = np.random.default_rng(11)
    z = rng.uniform(0, 1, size=(40, 12))
    plain = _two_layer_net(rng, 12, 20, 5, "hard", LIF(), True)
    wide = _two_layer_net(rng, 12, 20, _LANES + 1, "hard", LIF(), True)
    third = Dense(rng.normal(0, 1, (3, 5)), LIF())
    nets = [
        Network([plain.layers[0], plain.layers[1].replace(neuron=TraceLIF())]),
        Network([plain.layers[0], plain.layers[1].replace(input_trace=0.5)]),
        wide,
        Network(list(plain.layers) + [third]),
    ]
    for net in nets:
        clf = NetworkClassifier(net)
        assert clf._fast and clf._readout is None
        np.testing.assert_array_equal(clf.classify_static(z, 5),
                                      clf(np.repeat(z[None], 5, axis=0)))
    assert NetworkClassifier(plain)._readout is not None
    # a float32 bias past float32's range: simulate's error, not a fused run with inf
    big = Network([plain.layers[0], plain.layers[1].replace(bias=np.full(5, 1e39))])
    clf = NetworkClassifier(big, dtype=np.float32)
    assert clf._readout is None
    with pytest.raises(ValueError, match=r"bias holds a value of magnitude 1e\+39"):
        clf.classify_static(z, 5)


@pytest.mark.parametrize("layers", [2, 3])  # the fused two-layer kernel and the general path
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39])
def test_static_path_refuses_what_simulate_refuses(layers, bad):
    rng = np.random.default_rng(4)
    sizes = [5, 4, 3, 2][: layers + 1]
    net = Network.mlp(sizes, LIF(lam=0.9, theta=1.0), rng=rng, scale=2.0)
    clf = NetworkClassifier(net, dtype=np.float32)
    z = rng.random((3, 5))
    z[1, 2] = bad  # 1e39 is finite in float64 and inf in float32
    with pytest.raises(ValueError, match=r"z holds NaN or infinite values \(in float32\)"):
        clf.classify_static(z, 4)
    with np.errstate(over="ignore"):
        seq = np.repeat(z[None], 4, axis=0).astype(np.float32)
    with pytest.raises(ValueError, match="NaN or infinite"):
        clf(seq)
