"""Shared test configuration: hypothesis profiles and the named tolerances.

Every tolerance a test uses is defined here, with the reason for its size.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Deterministic profile (the default, and CI's): the same examples on every run; no deadline
# because the first call of a numba kernel compiles it.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=40,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Opt-in exploration: HYPOTHESIS_PROFILE=random pytest ...
settings.register_profile(
    "random",
    derandomize=False,
    deadline=None,
    max_examples=300,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# --- named tolerances -------------------------------------------------------------------------
# A numba kernel against its literal NumPy twin: same algorithm, same operation order, so only
# the last bits may differ (numba may contract differently from NumPy's ufunc loops).
RTOL_TWIN = 1e-12
ATOL_TWIN = 1e-12
# The same comparison in float32 for kernels that call transcendental functions (exp in the
# sigmoid surrogate): numba's expf (LLVM/libm) and NumPy's SIMD float32 exp may differ by an ulp
# (float32 eps = 1.19e-7), and a backward recursion carries that ulp along. float32 only.
RTOL_TWIN_FLOAT32 = 1e-6
ATOL_TWIN_FLOAT32 = 1e-7
# An explicit backward pass against the reverse-mode reference tape (DESIGN.md: 1e-10 relative).
RTOL_TAPE = 1e-10
# The same float64 quantity computed with its sums in another order: HART's pre-calculated
# backward multiplies time sums once (Σ_t x[t], Σ_t ∂s/∂m) where the step-by-step form sums T·B
# products. Each is within n·eps·Σ|terms| of the exact value (Higham, Accuracy and Stability of
# Numerical Algorithms, 2nd ed., eq. 4.4) with n ≤ T·B·fan-in ≤ 12·3·5 = 180 in the tests, i.e.
# ~4e-14 of the terms' size; compared relative to the array's largest entry, with margin.
# Also the per-entry rounding term of an explicit backward pass against the tape
# (``assert_tape``): times the tape's sum of |term| over the entry's chain-rule terms, which is
# the only scale an entry that cancels to zero has. There n counts the sums and products along
# the backward recursion: T·B·(layers + fan-out) ≤ 12·3·(3 + 5) ≈ 300 in the drawn cases, so
# ~3e-14 of the magnitudes.
RTOL_SUM_ORDER = 1e-12
# An input gradient whose sums are taken in another order than backward()'s (the input-only
# backward's Σ_t before the last linear map for time-sum encoders; the two-layer fast path's
# W₂ᵀ dL/dI₂ in ascending outputs where backward() calls BLAS): float64 rounding, relative to
# the gradient's scale.
RTOL_REORDERED = 1e-12
# The same in float32 (eps 1.2e-7): a few roundings per entry carried through the recursion's
# ≤ 8 steps in the tests; relative to the gradient's largest entry.
RTOL_REORDERED_FLOAT32 = 1e-5
# certify.bernoulli.renyi_bound against mpmath: formed without cancellation from a handful
# of expm1 / log1p / log calls and short sums of one sign; the largest error seen in 44,000
# random draws over every regime (orders 1e-3 … 100) was 4.4 ulps (test_bernoulli.py).
RTOL_RENYI_BOUND = 16 * 2.0**-52
# Clock-mode simulation against an independent dense computation (different summation order:
# BLAS matrix products vs per-event row additions); potentials far from threshold only.
RTOL_INDEPENDENT = 1e-9
# Central finite differences in float64 with step h ~ 1e-6: truncation O(h^2) plus rounding
# O(eps/h) ~ 1e-10 relative; 1e-6 leaves margin for curvature.
RTOL_FINITE_DIFF = 1e-6
# Spike distances against Elephant (DESIGN.md / issue: 1e-9).
RTOL_ELEPHANT = 1e-9
# A metric evaluated in float64 against its hand-derived closed-form value (tests/
# test_robustness_metrics.py): a handful of roundings of relative size 1.1e-16 each, so 1e-12
# leaves three orders of margin and still catches any formula error.
RTOL_HAND = 1e-12
# A float64 computation against PyTorch's float64 implementation of the same formulas (train-mode
# batch norm and its running statistics, autograd through a few conv / BN / neuron / linear
# layers): only the summation order differs, sums of at most ~1e3 terms of size O(1), so errors
# are ~1e-14; 1e-12 (relative, and absolute on O(1) values) leaves two orders of margin.
RTOL_TORCH_FLOAT64 = 1e-12
ATOL_TORCH_FLOAT64 = 1e-12
# The event (gather) and dense convolution paths in float32 sum the same products in different
# orders. Each result is within gamma_n * sum|term| of the exact sum, gamma_n ~ n * 2**-24, for n
# roundings (products and additions); the test cases have at most 12 * 9 products plus a bias
# per output, so 2 * 256 * 2**-24 bounds the difference of the two with margin (rigorous, not
# fitted: Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., eq. 4.4).
SUM_ORDER_FLOAT32 = 2 * 256 * 2.0**-24
