"""``simulate(..., _spike_outputs=True)`` (private): recorded hidden layers of plain spikes pass
a boolean raster on, for the sources' input-only BPTT, which reads only the records and the last
layer's output. Every record and the last output must equal those of the float raster bit for
bit, and so must the source's loss, gradient and scores.

Provenance of the expected values: the same call without ``_spike_outputs`` (the float raster
the hidden layers passed on before), a path the option does not touch.
"""

import numpy as np
import pytest

import evsnn.attacks.sources as sources_mod
from evsnn.attacks import SNNSource
from evsnn.clock import Network, simulate
from evsnn.grad import Sigmoid
from evsnn.params import LIF


def _net(dtype, sizes=(20, 16, 12, 4), seed=7):
    rng = np.random.default_rng(seed)
    net = Network.mlp(list(sizes), LIF(lam=0.9, theta=1.0, reset="hard", v_rest=0.0), rng=rng,
                      scale=3.0)
    return net.with_weights([w.astype(dtype) for w in net.weights()]), rng


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("coding", ["current", "spikes"])
@pytest.mark.parametrize("convention", ["DEFAULT", "DING2025_PAPER"])
def test_records_and_last_output_bit_for_bit(dtype, coding, convention):
    net, rng = _net(dtype)
    T, B = 6, 9
    if coding == "current":
        x = rng.random((B, 20)).astype(dtype)
        x[0, :2] = (0.0, -0.0)
        seq = np.broadcast_to(x, (T,) + x.shape)
    else:
        seq = (rng.random((T, B, 20)) < 0.4).astype(dtype)
    want = simulate(net, seq, record="bptt", convention=convention)
    got = simulate(net, seq, record="bptt", convention=convention, _spike_outputs=True)
    _same(got.output, want.output)
    for li, (g, w) in enumerate(zip(got.layers, want.layers)):
        _same(g.m, w.m)
        _same(g.spikes, w.spikes)
        if li < len(net.layers) - 1:  # a hidden layer passes on booleans, the same spikes
            assert g.output.dtype == np.bool_
            np.testing.assert_array_equal(g.output, w.output != 0)
        else:
            _same(g.output, w.output)
    assert want.layers[0].output.dtype == dtype  # without the option: the run's dtype


def _without_spike_outputs(monkeypatch):
    real = sources_mod.simulate

    def plain(*args, _spike_outputs=False, **kwargs):
        return real(*args, **kwargs)

    monkeypatch.setattr(sources_mod, "simulate", plain)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", ["bptt", "hart"])
def test_source_outputs_bit_for_bit(dtype, method, monkeypatch):
    net, rng = _net(dtype)
    x = rng.random((11, 20)).astype(dtype)
    x[0, :3] = (0.0, 1.0, -0.0)
    src = SNNSource(net, T=7, encoder="current", method=method, surrogate=Sigmoid(5.0, "code"))
    y = np.argmax(src.predict(x), axis=1)
    new = src(x, y)
    with monkeypatch.context() as m:
        _without_spike_outputs(m)
        old = src(x, y)
    for a, b in zip(new, old):
        _same(np.asarray(a), np.asarray(b))
    assert np.abs(new.grad).max() > 0  # a gradient that can differ
