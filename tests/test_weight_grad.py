"""The weight gradient of ``evsnn.grad.backward`` against a float64 product."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from evsnn.grad.backward import _weight_grad


@st.composite
def sparse_inputs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    R, n_in = draw(st.integers(0, 40)), draw(st.integers(1, 130))
    n_out = draw(st.sampled_from([1, 7, 33]))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    density = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    x = (rng.random((R, n_in)) < density).astype(dtype)
    if draw(st.booleans()):  # graded inputs: current coding, or a layer that emits its trace
        x *= rng.uniform(-2, 2, x.shape).astype(dtype)
    g = rng.standard_normal((R, n_out)).astype(dtype)
    return g, x, dtype


@given(sparse_inputs())
def test_weight_grad_equals_the_product(case):
    # independent check: dL/dW = gᵀ x as one float64 matrix product (another summation order)
    g, x, dtype = case
    got = _weight_grad(g[None], x[None])
    assert got.shape == (g.shape[1], x.shape[1]) and got.dtype == np.dtype(dtype)
    want = g.astype(np.float64).T @ x.astype(np.float64)
    # each entry is a sum of at most 40 terms of size <= 2·|g|: error <= 40 ulp of the sum of
    # absolute values
    abs_sum = np.abs(g).astype(np.float64).T @ np.abs(x).astype(np.float64)
    bound = 40 * np.finfo(dtype).eps * abs_sum
    assert np.all(np.abs(got - want) <= bound + np.finfo(dtype).tiny)
