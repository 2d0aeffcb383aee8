"""The event-driven weight gradient of ``evsnn.grad.backward`` against its twin and a product."""

import numpy as np
from conftest import ATOL_TWIN, ATOL_TWIN_FLOAT32, RTOL_TWIN, RTOL_TWIN_FLOAT32
from hypothesis import given
from hypothesis import strategies as st

from evsnn.grad.backward import (
    _event_column_sums_kernel,
    _event_columns_kernel,
    _event_weight_grad,
    _weight_grad,
)
from reference import grad as ref


@st.composite
def sparse_inputs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    R, n_in = draw(st.integers(0, 40)), draw(st.integers(1, 130))
    n_out = draw(st.sampled_from([1, 7, 33]))  # 33: the per-event path of _weight_grad
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    density = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    x = (rng.random((R, n_in)) < density).astype(dtype)
    if draw(st.booleans()):  # graded (non-binary) inputs take the multiply branch
        x *= rng.uniform(-2, 2, x.shape).astype(dtype)
    g = rng.standard_normal((R, n_out)).astype(dtype)
    return g, x, dtype


def _tols(dtype):
    if dtype == np.float32:
        return dict(rtol=RTOL_TWIN_FLOAT32, atol=ATOL_TWIN_FLOAT32)
    return dict(rtol=RTOL_TWIN, atol=ATOL_TWIN)


@given(sparse_inputs())
def test_event_weight_grad_matches_twin(case):
    g, x, dtype = case
    got = np.full((x.shape[1], g.shape[1]), np.nan, dtype=dtype)
    want = np.full_like(got, np.nan)
    _event_weight_grad(g, x, got)
    ref._event_weight_grad(g, x, want)
    assert got.dtype == np.dtype(dtype)
    # same operations in the same order (ascending rows per column): equal up to rounding only
    np.testing.assert_allclose(got, want, **_tols(dtype))


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



@given(sparse_inputs())
def test_event_columns_kernel_matches_twin(case):
    _, x, _ = case
    got = _event_columns_kernel(x)
    want = ref._event_columns_kernel(x)
    np.testing.assert_array_equal(got[0], want[0])
    n = got[0][-1]  # col_rows has one spare entry when there is no event
    np.testing.assert_array_equal(got[1][:n], want[1][:n])
    assert got[2] == want[2]


@given(sparse_inputs(), st.data())
def test_event_column_sums_kernel_writes_its_columns_only(case, data):
    g, x, dtype = case
    j_lo = data.draw(st.integers(0, x.shape[1]))
    j_hi = data.draw(st.integers(j_lo, x.shape[1]))
    lists = ref._event_columns_kernel(x)
    got = np.full((x.shape[1], g.shape[1]), np.nan, dtype=dtype)
    want = got.copy()
    _event_column_sums_kernel(g, x, *lists, got, j_lo, j_hi)
    ref._event_column_sums_kernel(g, x, *lists, want, j_lo, j_hi)
    np.testing.assert_allclose(got, want, equal_nan=True, **_tols(dtype))
    assert np.isnan(got[:j_lo]).all() and np.isnan(got[j_hi:]).all()
