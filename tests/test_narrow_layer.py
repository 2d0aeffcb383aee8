"""A narrow dense layer (``n_out <= _NARROW``, a readout of a few classes) adds its 8-event
groups in the padded lanes of ``_dense_layer_kernel``: the same additions in the same order as
the twin's event-by-event sums, so every record is the twin's bit for bit.

Provenance of the expected values: ``tests/reference/clock.py``'s literal twin, which adds the
events one after the other in ascending input order.
"""

import numpy as np
import pytest
from reference import clock as ref
from reference.clock import kernel_args

from evsnn.clock import Dense
from evsnn.clock.simulate import _NARROW, _dense_layer
from evsnn.params import LIF


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_out", [1, 10, _NARROW, _NARROW + 1])
@pytest.mark.parametrize("values", ["spikes", "mixed"])
def test_narrow_layer_is_its_twin_bit_for_bit(dtype, n_out, values):
    rng = np.random.default_rng(n_out)
    n_in, T, B = 70, 6, 9
    w = rng.normal(0.0, 1.0, (n_out, n_in)) * np.exp(rng.uniform(-20, 5, (n_out, n_in)))
    w[0, :3] = (0.0, -0.0, 0.0)
    layer = Dense(w.astype(dtype), LIF(lam=0.9, theta=1.0, reset="hard", v_rest=0.0))
    x = (rng.random((T, B, n_in)) < 0.6).astype(dtype)  # runs of 8 spikes and shorter
    if values == "mixed":  # groups with values other than 1 take the general path
        x[:, :3] *= rng.uniform(0.5, 2.0, (T, 3, n_in)).astype(dtype)
    for record in (True, False):
        a = list(kernel_args(layer, x, dtype, True, 0, "leak", record=record))
        b = kernel_args(layer, x, dtype, True, 0, "leak", record=record)
        _dense_layer(*a)
        ref._dense_layer_kernel(*b)
        for got, want in zip(a[15:] if record else a[15:16], b[15:] if record else b[15:16]):
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
        if record:  # the currents were formed and recorded
            assert np.isfinite(a[15]).all() and (a[16] != 0).any()
