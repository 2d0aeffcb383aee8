"""Kernels compile once per argument type they need, not once per incidental array property.

Numba compiles a kernel anew for each distinct tuple of argument types, and a read-only array
is another type than a writeable one. With an empty cache (a fresh clone in CI) each extra
specialisation of the dense layer kernel costs ~7 s of compilation (stop 35: 70 of them in one
test run, 23 once the read-only flag no longer mattered). These tests pin that incidental
properties of the inputs (who owns the array, whether a layer has a bias, whether the
transposed weight is a view) add no compilation.
"""

import importlib

import numpy as np
from numba import types

from evsnn.clock import Dense, Network, simulate
from evsnn.params import LIF

# the module (evsnn.clock's ``simulate`` is the function)
simulate_module = importlib.import_module("evsnn.clock.simulate")


def _frozen(a):
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


def _signatures():
    return (len(simulate_module._dense_layer_kernel.signatures),
            len(simulate_module._constant_current_kernel.signatures))


def test_array_flags_and_layer_shapes_add_no_compilation():
    rng = np.random.default_rng(35)
    spikes = (rng.random((4, 3, 5)) < 0.4).astype(np.float64)
    dense = np.broadcast_to(rng.uniform(0.1, 1.0, (1, 3, 5)), (4, 3, 5)).copy()
    neuron = LIF(lam=0.5, theta=0.75)
    w = rng.normal(0.0, 1.0, (2, 5))
    base = Network([Dense(w, neuron)])
    # the first runs compile what the variants below need (a spike raster: the event loop; a
    # dense constant input: the blocked product)
    for x in (spikes, dense):
        want = simulate(base, x).output
        np.testing.assert_array_equal(simulate(base, _frozen(x)).output, want)
    before = _signatures()
    variants = [
        # a bias (read-only, owned by the layer) instead of the zeros made for none
        Network([Dense(w, neuron, bias=np.zeros(2))]),
        # one output: weight.T is C-contiguous already, so the transposed weight is a view of
        # the read-only weight instead of a writeable copy
        Network([Dense(w[:1], neuron)]),
    ]
    for net in variants:
        for x in (spikes, _frozen(spikes), dense, _frozen(dense)):
            simulate(net, x)
    assert _signatures() == before


def test_dense_layer_kernel_signatures_hold_read_only_inputs_and_no_none():
    # whatever ran before in this process: the arrays the kernel only reads arrive read-only,
    # and an absent constant current is an empty array (None would be another compilation)
    rng = np.random.default_rng(36)
    net = Network([Dense(rng.normal(0.0, 1.0, (3, 4)), LIF(lam=0.5, theta=0.75))])
    simulate(net, (rng.random((3, 2, 4)) < 0.5).astype(np.float64))
    simulate(net, np.ones((3, 2, 4)))  # dense and constant: the blocked product first
    read_only = (0, 1, 2, 3, 4, 21)  # inp, weight_t, bias, leak, gain, cur_const
    sigs = simulate_module._dense_layer_kernel.signatures
    assert sigs
    for sig in sigs:
        assert not any(sig[i].mutable for i in read_only), sig
        assert not any(isinstance(t, types.NoneType) for t in sig), sig
