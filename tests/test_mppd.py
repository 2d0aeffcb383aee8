"""Perturbation metrics (Stable Eq. 8-14): kernels vs twins, the simulator, hand cases, errors."""

import numpy as np
import pytest
from conftest import ATOL_TWIN, RTOL_INDEPENDENT, RTOL_TWIN
from hypothesis import given, settings
from hypothesis import strategies as st

from evsnn.clock import Dense, Network, simulate
from evsnn.conventions import HART_CODE, STABLE_CODE, STABLE_PAPER
from evsnn.metrics import (
    _membrane_difference_kernel,
    _mppd_kernel,
    membrane_difference,
    mppd,
    mppd_response,
    ms_mppd,
    spike_train_distance,
    step_factors,
    tasad,
)
from evsnn.params import DLIF, LIF
from reference import metrics as ref
from reference.helpers import example_count


# --------------------------------------------------------------------------- strategies
@st.composite
def layer_case(draw, spikes=True):
    """A layer's sizes, weight, per-step factors and input difference, from a drawn seed."""
    T = draw(st.integers(1, 7))
    B = draw(st.integers(1, 3))
    n_in = draw(st.integers(1, 5))
    n_out = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    W = rng.uniform(-2, 2, (n_out, n_in))
    if spikes:
        ds = rng.integers(-1, 2, (T, B, n_in)).astype(float)
    else:
        ds = rng.uniform(-1, 1, (T, B, n_in))
    leak = rng.uniform(0.0, 1.2, T)
    gain = rng.uniform(0.5, 1.5, T)
    return W, ds, leak, gain, rng


def _run_kernel(kernel, W, ds, leak, gain, dtype):
    T, B, _ = ds.shape
    out = np.empty((T, B, W.shape[0]), dtype=dtype)
    kernel(ds.astype(dtype), np.ascontiguousarray(W.T, dtype=dtype), leak.astype(dtype),
           gain.astype(dtype), out)
    return out


# --------------------------------------------------------------------------- kernel twins
@given(layer_case(), st.sampled_from([np.float64, np.float32]))
def test_mppd_kernel_matches_twin(case, dtype):
    W, ds, leak, gain, _ = case
    got = _run_kernel(_mppd_kernel, W, ds, leak, gain, dtype)
    want = _run_kernel(ref._mppd_kernel, W, ds, leak, gain, dtype)
    assert got.dtype == want.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=RTOL_TWIN, atol=ATOL_TWIN)


@given(layer_case(spikes=False))
def test_mppd_kernel_matches_twin_real_inputs(case):
    W, ds, leak, gain, _ = case
    got = _run_kernel(_mppd_kernel, W, ds, leak, gain, np.float64)
    want = _run_kernel(ref._mppd_kernel, W, ds, leak, gain, np.float64)
    np.testing.assert_allclose(got, want, rtol=RTOL_TWIN, atol=ATOL_TWIN)


@given(layer_case(), st.sampled_from([np.float64, np.float32]))
def test_membrane_difference_kernel_matches_twin(case, dtype):
    W, ds, leak, gain, rng = case
    T, B, _ = ds.shape
    n_out = W.shape[0]
    mems = [rng.uniform(-2, 2, (T, B, n_out)).astype(dtype) for _ in range(4)]
    args = (ds.astype(dtype), np.ascontiguousarray(W.T, dtype=dtype), leak.astype(dtype),
            gain.astype(dtype), *mems)
    got = [np.empty((T, B, n_out), dtype=dtype) for _ in range(3)]
    want = [np.empty((T, B, n_out), dtype=dtype) for _ in range(3)]
    _membrane_difference_kernel(*args, *got)
    ref._membrane_difference_kernel(*args, *want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=RTOL_TWIN, atol=ATOL_TWIN)


# --------------------------------------------------------------------------- independent forms
@given(layer_case(spikes=False), st.booleans(), st.sampled_from(["leak", "input"]))
def test_mppd_equals_closed_sum(case, use_dlif, placement):
    """Eq. 11 recursion vs the unrolled sum of the appendix (Eq. 22), BLAS products."""
    W, ds, _, factors, rng = case
    lam = float(rng.uniform(0, 1))
    a = factors if use_dlif else None
    f = step_factors(lam, ds.shape[0], dlif_factors=a, dlif_factor=placement)
    got = mppd_response(ds, W, lam, dlif_factors=a, dlif_factor=placement)
    want = ref.mppd_dense(ds, W, f.leak, f.gain)
    np.testing.assert_allclose(got, want, rtol=RTOL_INDEPENDENT, atol=RTOL_INDEPENDENT)


def test_constant_perturbation_closed_form():
    # Stable §3.2: constant J, ε[0] = 0 -> ε[t] = (1 - λ^t) / (1 - λ) J (t = 1..T)
    lam, J, T = 0.8, 0.3, 12
    eps = mppd_response(np.ones((T, 1, 1)), [[J]], lam)[:, 0, 0]
    t = np.arange(1, T + 1)
    np.testing.assert_allclose(eps, (1 - lam**t) / (1 - lam) * J, rtol=RTOL_INDEPENDENT)


def test_mppd_is_clean_minus_perturbed_and_linear():
    rng = np.random.default_rng(7)
    s = rng.integers(0, 2, (6, 2, 4)).astype(float)
    s_t = rng.integers(0, 2, (6, 2, 4)).astype(float)
    W = rng.normal(size=(3, 4))
    e1 = mppd(s, s_t, W, 0.7)
    np.testing.assert_array_equal(e1, -mppd(s_t, s, W, 0.7))
    np.testing.assert_array_equal(e1, mppd_response(s - s_t, W, 0.7))


def test_step_factors_dlif_placements():
    a = np.array([0.5, 2.0, 1.5])
    f = step_factors(0.8, 3, dlif_factors=a, dlif_factor="leak")
    np.testing.assert_array_equal(f.leak, 0.8 * a)
    np.testing.assert_array_equal(f.gain, np.ones(3))
    f = step_factors(0.8, 3, dlif_factors=a, dlif_factor="input")
    np.testing.assert_array_equal(f.leak, np.full(3, 0.8))
    np.testing.assert_array_equal(f.gain, a)
    assert step_factors(0.8, 3, dtype=np.float32).leak.dtype == np.float32


# --------------------------------------------------------------------------- against the simulator
def _two_runs(net, x, x_t, convention):
    rc = simulate(net, x, convention=convention, record=True, dtype=np.float64)
    rp = simulate(net, x_t, convention=convention, record=True, dtype=np.float64)
    return rc, rp


def _first_event(spikes_c, spikes_p):
    """Per (b, i): the first step at which either run spikes (T if none)."""
    both = (spikes_c > 0) | (spikes_p > 0)
    T = both.shape[0]
    return np.where(both.any(axis=0), both.argmax(axis=0), T)


@st.composite
def network_case(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    T = draw(st.integers(2, 10))
    B = draw(st.integers(1, 3))
    n0, n1, n2 = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["lif-hard", "lif-soft", "dlif"]))
    conv = draw(st.sampled_from([HART_CODE, STABLE_PAPER, STABLE_CODE]))
    lam = draw(st.floats(0.0, 1.0))
    v_rest = draw(st.floats(-0.3, 0.3))

    def make(n_out, n_in):
        W = rng.uniform(-0.2, 1.0, (n_out, n_in))
        if kind == "dlif":
            return Dense(W, DLIF(lam=lam, theta=1.0, reset="hard", v_rest=v_rest),
                         dlif_factors=rng.uniform(0.5, 1.5, T))
        reset = "hard" if kind == "lif-hard" else "soft"
        return Dense(W, LIF(lam=lam, theta=1.0, reset=reset, v_rest=v_rest))

    net = Network([make(n1, n0), make(n2, n1)])
    x = rng.uniform(0, 1, (T, B, n0))
    x_t = x + rng.normal(0, 0.3, x.shape)
    return net, x, x_t, conv


def _layer_inputs(net, x, x_t, rc, rp, l):
    if l == 0:
        return x, x_t
    return rc.layers[l - 1].output, rp.layers[l - 1].output


def _dlif_kw(layer, conv):
    if layer.dlif_factors is None:
        return {}
    return dict(dlif_factors=np.asarray(layer.dlif_factors), dlif_factor=conv.dlif_factor)


@settings(max_examples=example_count(30))
@given(network_case())
def test_mppd_equals_membrane_difference_before_first_spike(case):
    """Stable Eq. 8: MPPD is the exact membrane difference up to the first spike of either run."""
    net, x, x_t, conv = case
    rc, rp = _two_runs(net, x, x_t, conv)
    for l, layer in enumerate(net.layers):
        s, s_t = _layer_inputs(net, x, x_t, rc, rp, l)
        eps = mppd(s, s_t, layer.weight, layer.neuron.lam, **_dlif_kw(layer, conv))
        exact = rc.layers[l].m - rp.layers[l].m
        first = _first_event(rc.layers[l].spikes, rp.layers[l].spikes)
        t = np.arange(eps.shape[0])[:, None, None]
        mask = t <= first[None]
        # summation order differs (per-event row additions vs per-input loop): relative to the
        # size of the membranes involved
        scale = max(1.0, float(np.abs(rc.layers[l].m).max()), float(np.abs(rp.layers[l].m).max()))
        np.testing.assert_allclose(eps[mask], exact[mask], rtol=0, atol=RTOL_INDEPENDENT * scale)


@settings(max_examples=example_count(30))
@given(network_case())
def test_membrane_difference_reproduces_recorded_membranes(case):
    """Eq. 9-10 with the reset term: the recursion gives m - m~ at every step."""
    net, x, x_t, conv = case
    rc, rp = _two_runs(net, x, x_t, conv)
    for l, layer in enumerate(net.layers):
        s, s_t = _layer_inputs(net, x, x_t, rc, rp, l)
        d = membrane_difference(
            s, s_t, layer.weight, layer.neuron.lam, m_clean=rc.layers[l].m,
            v_clean=rc.layers[l].v, m_pert=rp.layers[l].m, v_pert=rp.layers[l].v,
            **_dlif_kw(layer, conv),
        )
        exact = rc.layers[l].m - rp.layers[l].m
        scale = max(1.0, float(np.abs(rc.layers[l].m).max()), float(np.abs(rp.layers[l].m).max()))
        np.testing.assert_allclose(d.eps, exact, rtol=0, atol=RTOL_INDEPENDENT * scale)
        # dropping the reset term is MPPD (same synaptic term, Eq. 11)
        eps = mppd(s, s_t, layer.weight, layer.neuron.lam, **_dlif_kw(layer, conv))
        np.testing.assert_allclose(
            d.synaptic, mppd_response(s - s_t, layer.weight, 0.0, **_dlif_kw_gain(layer, conv)),
            rtol=RTOL_TWIN, atol=ATOL_TWIN,
        )
        if not (rc.layers[l].spikes.any() or rp.layers[l].spikes.any()):
            np.testing.assert_allclose(d.eps, eps, rtol=RTOL_TWIN, atol=ATOL_TWIN)


def _dlif_kw_gain(layer, conv):
    # with λ = 0 the MPPD is the synaptic term alone: gain[t] W Δs[t]
    if layer.dlif_factors is None or conv.dlif_factor == "leak":
        return {}
    return dict(dlif_factors=np.asarray(layer.dlif_factors), dlif_factor="input")


def test_membrane_difference_hard_reset_is_eq10():
    """For a hard reset to 0, r = m - v = m s, so the reset term is Eq. 10's
    -λ (v s - v~ s~)[t-1] in the paper's notation (v there is m here)."""
    rng = np.random.default_rng(3)
    net = Network([Dense(rng.uniform(0, 0.8, (4, 5)), LIF(lam=0.9, theta=1.0, reset="hard"))])
    x = rng.uniform(0, 1, (12, 2, 5))
    x_t = np.clip(x + rng.normal(0, 0.3, x.shape), 0, None)
    rc, rp = _two_runs(net, x, x_t, HART_CODE)
    c, p = rc.layers[0], rp.layers[0]
    assert c.spikes.any() and p.spikes.any()
    d = membrane_difference(x, x_t, net.layers[0].weight, 0.9, m_clean=c.m, v_clean=c.v,
                            m_pert=p.m, v_pert=p.v)
    eq10 = np.zeros_like(d.reset)
    eq10[1:] = -0.9 * (c.m * c.spikes - p.m * p.spikes)[:-1]
    np.testing.assert_allclose(d.reset, eq10, rtol=RTOL_TWIN, atol=ATOL_TWIN)
    assert np.abs(d.reset).max() > 0  # the case exercises the reset term


# --------------------------------------------------------------------------- Eq. 12-14
def test_ms_mppd_sum_and_mean():
    rng = np.random.default_rng(0)
    eps = rng.normal(size=(5, 3, 4))
    s = ms_mppd(eps)
    np.testing.assert_allclose(s, [(eps[:, b] ** 2).sum() for b in range(3)], rtol=RTOL_TWIN)
    m = ms_mppd(eps, reduction="mean")
    np.testing.assert_allclose(m, s / 20, rtol=RTOL_TWIN)
    # the authors' code: (x**2).mean() over the whole tensor = batch mean of "mean"
    np.testing.assert_allclose(m.mean(), (eps**2).mean(), rtol=RTOL_TWIN)


@given(st.integers(0, 2**32 - 1), st.integers(1, 8), st.integers(1, 3), st.integers(1, 5))
def test_tasad_std_properties(seed, T, B, N):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 2, (T, B, N)).astype(float)
    s_t = rng.integers(0, 2, (T, B, N)).astype(float)
    ta, sd = tasad(s, s_t), spike_train_distance(s, s_t)
    # Cauchy-Schwarz: ‖Σ_t d_t‖ / T <= sqrt(T Σ_t ‖d_t‖²) / T
    assert np.all(ta <= sd / np.sqrt(T) * (1 + 1e-12))
    # STD² counts the differing (step, neuron) pairs of 0/1 rasters
    np.testing.assert_allclose(sd**2, (s != s_t).sum(axis=(0, 2)), rtol=RTOL_TWIN)
    np.testing.assert_allclose(ta, np.linalg.norm((s - s_t).mean(axis=0), axis=-1), rtol=RTOL_TWIN)
    np.testing.assert_array_equal(tasad(s, s), np.zeros(B))


def test_tasad_blind_to_timing_std_not():
    # Stable §3.2: same counts at other times -> TASAD 0, STD > 0
    s = np.zeros((5, 1, 1)); s[0] = 1
    s_t = np.zeros((5, 1, 1)); s_t[4] = 1
    assert tasad(s, s_t)[0] == 0.0
    assert spike_train_distance(s, s_t)[0] == pytest.approx(np.sqrt(2), rel=1e-15)


# --------------------------------------------------------------------------- dtypes
def test_dtype_policy():
    s32 = np.ones((3, 1, 2), dtype=np.float32)
    W32 = np.ones((1, 2), dtype=np.float32)
    assert mppd(s32, 0 * s32, W32, 0.5).dtype == np.float32
    # integer spike rasters do not count: the weight's dtype decides
    si = np.ones((3, 1, 2), dtype=np.int8)
    assert mppd(si, 0 * si, W32, 0.5).dtype == np.float32
    assert mppd(si, 0 * si, W32.astype(np.float64), 0.5).dtype == np.float64
    # mixed float32 / float64: float64 (exact upcast), never a silent downcast
    assert mppd(s32, 0 * s32, W32.astype(np.float64), 0.5).dtype == np.float64
    assert mppd(s32, 0 * s32, W32.astype(np.float64), 0.5, dtype=np.float32).dtype == np.float32
    assert ms_mppd(np.ones((2, 1, 1), dtype=np.float32)).dtype == np.float32
    assert tasad(s32, s32).dtype == np.float32
    e32 = mppd(s32, 0 * s32, W32, 0.9)
    e64 = mppd(s32.astype(float), 0 * s32.astype(float), W32.astype(float), 0.9)
    np.testing.assert_allclose(e32, e64, rtol=1e-6)  # float32 eps 1.2e-7 over 3 steps


# --------------------------------------------------------------------------- errors
S = np.zeros((3, 1, 2))
W = np.ones((1, 2))


def test_errors_arrays():
    with pytest.raises(TypeError, match="s_clean must be an array of real numbers, got NoneType"):
        mppd(None, S, W, 0.5)
    with pytest.raises(TypeError, match="weight must be a rectangular array"):
        mppd(S, S, [[1.0, 2.0], [1.0]], 0.5)
    with pytest.raises(TypeError, match="s_pert must hold real numbers, got dtype <U1"):
        mppd(S, np.full((3, 1, 2), "a"), W, 0.5)
    with pytest.raises(ValueError,
                       match=r"s_clean must be 3-D time-major \[T, B, N\], got shape \(3, 2\)"):
        mppd(np.zeros((3, 2)), S, W, 0.5)
    with pytest.raises(ValueError, match=r"weight must be 2-D \[N_out, N_in\]"):
        mppd(S, S, np.ones(2), 0.5)
    with pytest.raises(ValueError, match="dlif_factors must be 1-D"):
        mppd(S, S, W, 0.5, dlif_factors=np.ones((3, 1)))
    with pytest.raises(ValueError, match="s_pert holds NaN or infinite"):
        mppd(S, S + np.nan, W, 0.5)
    with pytest.raises(ValueError,
                       match=r"s_clean has shape \(3, 1, 2\) but s_pert has \(2, 1, 2\)"):
        mppd(S, S[:2], W, 0.5)
    with pytest.raises(ValueError, match="s_clean has T = 0 time steps"):
        mppd(S[:0], S[:0], W, 0.5)
    with pytest.raises(ValueError, match="delta_s has 2 input neurons but weight has 3 columns"):
        mppd_response(S, np.ones((1, 3)), 0.5)


def test_errors_scalars_and_options():
    with pytest.raises(TypeError, match="lam must be a real number, got str '0.5'"):
        mppd(S, S, W, "0.5")
    with pytest.raises(TypeError, match="lam must be a real number, got bool"):
        mppd(S, S, W, True)
    with pytest.raises(ValueError, match=r"lam=1.5 must be finite and lie in \[0, 1\]; the LIF "
                                         r"leak factor λ \(1: no leak\)$"):
        mppd(S, S, W, 1.5)
    with pytest.raises(ValueError, match=r"lam=nan must be finite and lie in \[0, 1\]"):
        mppd(S, S, W, np.float32("nan"))
    with pytest.raises(TypeError, match="dlif_factor must be a string"):
        mppd(S, S, W, 0.5, dlif_factor=0)
    with pytest.raises(ValueError, match="dlif_factor='both' is not valid; use one of"):
        mppd(S, S, W, 0.5, dlif_factor="both")
    with pytest.raises(ValueError, match="dlif_factors has 2 entries but T = 3"):
        mppd(S, S, W, 0.5, dlif_factors=[1.0, 1.0])
    with pytest.raises(TypeError, match=r"T must be an integer \(time steps\), got float 3.0; the "
                                        r"run's length \(T of the \[T, \.\.\.\] arrays\)$"):
        step_factors(0.5, 3.0)
    with pytest.raises(ValueError, match=r"T=0 must be an integer >= 1 \(time steps\)"):
        step_factors(0.5, 0)
    with pytest.raises(ValueError, match=r"T=-2 must be an integer >= 1"):
        step_factors(0.5, np.int64(-2))
    with pytest.raises(ValueError, match="dtype=int64 is not supported"):
        step_factors(0.5, 3, dtype=np.int64)
    with pytest.raises(TypeError, match="dtype='nonsense' is not a numpy dtype"):
        mppd(S, S, W, 0.5, dtype="nonsense")
    with pytest.raises(ValueError, match="dtype=float16 is not supported"):
        mppd(S, S, W, 0.5, dtype=np.float16)
    with pytest.raises(ValueError, match="floating dtype float16 is not supported"):
        h = S.astype(np.float16)
        mppd(h, h, W.astype(np.float16), 0.5)
    with pytest.raises(TypeError, match="reduction must be a string"):
        ms_mppd(S, reduction=None)
    with pytest.raises(ValueError, match="reduction='median' is not valid"):
        ms_mppd(S, reduction="median")


def test_errors_membranes_and_pairs():
    M = np.zeros((3, 1, 1))
    with pytest.raises(ValueError,
                       match=r"v_pert has shape \(3, 1, 2\) but \[T, B, N_out\] = \(3, 1, 1\)"):
        membrane_difference(S, S, W, 0.5, m_clean=M, v_clean=M, m_pert=M,
                            v_pert=np.zeros((3, 1, 2)))
    with pytest.raises(TypeError, match="m_clean must be an array of real numbers"):
        membrane_difference(S, S, W, 0.5, m_clean="m", v_clean=M, m_pert=M, v_pert=M)
    with pytest.raises(ValueError, match=r"s_clean has shape \(3, 1, 2\) but s_pert has "
                                         r"\(3, 2, 2\); they must match"):
        tasad(S, np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="s_clean has T = 0 time steps"):
        spike_train_distance(S[:0], S[:0])
