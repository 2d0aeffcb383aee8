"""The forward and backward passes give the same bits for any number of numba threads (README,
"Threads and reproducibility"). BLAS products are outside this: importing evsnn fixes
OpenBLAS's thread count, which tests/test_blas_env.py checks."""

import numba
import numpy as np
import pytest

from evsnn.clock import Network, simulate
from evsnn.grad import backward
from evsnn.params import LIF


def _inputs(kind, dtype, rng):
    T, B, n_in = 6, 17, 40  # an odd batch: the threads' pieces differ in size
    if kind == "spikes":
        return (rng.random((T, B, n_in)) < 0.3).astype(dtype)
    return np.repeat(rng.random((1, B, n_in)).astype(dtype), T, axis=0)  # constant current


@pytest.mark.parametrize("kind", ["spikes", "constant"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_simulate_and_backward_do_not_depend_on_the_number_of_threads(kind, dtype):
    n_max = numba.config.NUMBA_NUM_THREADS
    if n_max < 2:
        pytest.skip("needs NUMBA_NUM_THREADS >= 2 to compare thread counts")
    rng = np.random.default_rng(0)
    net = Network.mlp([40, 30, 5], LIF(lam=0.9, theta=1.0), rng=1, scale=3.0)
    x = _inputs(kind, dtype, rng)
    g_out = rng.standard_normal((x.shape[0], x.shape[1], 5)).astype(dtype)
    runs = []
    try:
        for threads in (1, n_max):
            numba.set_num_threads(threads)
            res = simulate(net, x, record=True, dtype=dtype)
            grads = backward(net, x, res, g_out)
            runs.append(
                [res.output]
                + [a for rec in res.layers for a in (rec.current, rec.m, rec.v, rec.spikes)]
                + [grads.input] + grads.weights + grads.membrane
            )
    finally:
        numba.set_num_threads(n_max)
    assert runs[0][0].sum() > 0  # the network spikes: the comparison is not of zeros
    for one, many in zip(*runs):
        np.testing.assert_array_equal(one, many)
