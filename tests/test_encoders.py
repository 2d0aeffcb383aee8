"""Encoders: the spike times every preset produces are pinned, so no convention can drift."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evsnn import encoders as enc
from evsnn.conventions import PRESETS, get_convention
from reference import encoders as ref_encoders

T = 10
X_NAMES = ("0", "1/T", "1/2", "1", "153/255")
X32 = np.array([0.0, 1 / T, 0.5, 1.0, 153 / 255], dtype=np.float32)

# Expected spike indices (0-based array index; the papers' t is index + 1) for T = 10, inputs
# in float32, derived by hand:
#   paper rules, evaluated in float64 (exact for float32 inputs):
#     RateSynS  spike at t iff x·T >= t   : float32(0.1)·10 = 1.0000000149 -> t = 1;
#                                            float32(0.6)·10 = 6.0000002384 -> t = 1..6
#     RateSynE  spike at t iff t >= (1-x)T : x=0 -> t = 10 only; (1-float32(0.1))·10 = 8.99999998
#                                            -> t = 9, 10; (1-float32(0.6))·10 = 3.99999976 -> 4..10
#     TTFS      the first RateSynE spike
#   code rules, evaluated in float32:
#     RateSynS  t0/T < x : float32(6/10) == float32(153/255), so t0 = 6 does not spike -> 0..5
#     RateSynE  t0/T > 1-x: 1-float32(0.1) rounds to float32(0.9) == 9/10 -> none;
#                          1-float32(0.6) = 0.39999998 < float32(0.4) -> t0 = 4..9 (six spikes,
#                          where exact arithmetic gives ceil(6)-1 = 5)
#     TTFS      t0 = floor((1-x)T) in float32: x=0 -> 10 (none); x=0.1 -> 8.99999976 rounds to
#               9.0 -> 9; x=153/255 -> 3.9999998 -> 3 (float64 would give 4: one step early)
R = lambda a, b: list(range(a, b))  # noqa: E731
EXPECTED = {
    ("paper", "ratesyn_start"): [[], [0], R(0, 5), R(0, 10), R(0, 6)],
    ("paper", "ratesyn_end"): [[9], [8, 9], R(4, 10), R(0, 10), R(3, 10)],
    ("paper", "ttfs"): [[9], [8], [4], [0], [3]],
    ("code", "ratesyn_start"): [[], [0], R(0, 5), R(0, 10), R(0, 6)],
    ("code", "ratesyn_end"): [[], [], R(6, 10), R(1, 10), R(4, 10)],
    ("code", "ttfs"): [[], [9], [5], [0], [3]],
}


def _rule(conv, encoder):
    return conv.ttfs_rule if encoder == "ttfs" else conv.ratesyn_rule


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("encoder", ["ratesyn_start", "ratesyn_end", "ttfs"])
def test_deterministic_encoders_pinned_for_every_preset(preset, encoder):
    conv = get_convention(preset)
    out = getattr(enc, encoder)(X32[None, :], T, convention=conv)
    assert out.shape == (T, 1, 5) and out.dtype == np.float32
    expected = EXPECTED[(_rule(conv, encoder), encoder)]
    for k, name in enumerate(X_NAMES):
        got = np.flatnonzero(out[:, 0, k]).tolist()
        assert got == expected[k], f"{preset} {encoder} x={name}: spikes at {got}"
    assert set(np.unique(out)) <= {0.0, 1.0}


def test_float64_ttfs_code_does_not_land_early():
    # the float32 effect above is a float32 effect: in float64, (1 - 0.6)·10 = 4.0 exactly
    out = enc.ttfs(np.array([[153 / 255]]), T, convention="DING2025_CODE")
    assert np.flatnonzero(out[:, 0, 0]).tolist() == [4]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_current_and_poisson_pinned_for_every_preset(preset):
    conv = get_convention(preset)
    cur = enc.current(X32[None, :], T)
    np.testing.assert_array_equal(cur, np.broadcast_to(X32, (T, 1, 5)))
    s = enc.poisson(X32[None, :], T, rng=7, convention=conv, sampler="uniform")
    counts = s[:, 0].sum(axis=0)
    assert counts[0] == 0 and counts[3] == T  # x = 0 never spikes (P(u = 0) = 2^-53); x = 1 always
    # The rule and the draw order: reproduce the uniforms from the same seed.
    rng = np.random.default_rng(7)
    if conv.poisson_draw == "cached":
        u = np.broadcast_to(rng.random((1, 5)), (T, 1, 5))
    else:  # fresh, or the HART code's mask of one uniform per pixel and step
        u = rng.random((T, 1, 5))
    expected = (u < X32) if conv.poisson_rule == "u<x" else (u <= X32)
    np.testing.assert_array_equal(s, expected.astype(np.float32))
    # the default sampler: the same rule on lazily drawn bits, reproduced from its definition
    s_bytes = enc.poisson(X32[None, :], T, rng=7, convention=conv)
    if conv.poisson_draw != "fresh":
        assert np.all(s == s[0]) == (conv.poisson_draw == "cached")
        np.testing.assert_array_equal(s_bytes, s)  # the cached mask is always a uniform draw
    else:
        want = ref_encoders.poisson_bytes_stream(
            np.random.default_rng(7), X32[None, :], T, conv.poisson_rule != "u<x"
        )
        np.testing.assert_array_equal(s_bytes, want.astype(np.float32))
        assert s_bytes[:, 0, 0].sum() == 0 and s_bytes[:, 0, 3].sum() == T


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_spike_encoders_give_boolean_rasters_of_the_same_spikes(preset):
    # dtype=bool: the same spikes as the float raster, for every spike encoder and preset; the
    # Poisson batch is large enough for the threaded samplers (>= 2^18 draws) and its ties
    conv = get_convention(preset)
    x = np.random.default_rng(1).random((300, 100))
    x[0, :4] = [0.0, 1.0, 0.5, 153 / 255]
    calls = {
        "poisson bytes": lambda d: enc.poisson(x, 10, rng=3, convention=conv, dtype=d),
        "poisson uniform": lambda d: enc.poisson(
            x, 10, rng=3, convention=conv, dtype=d, sampler="uniform"
        ),
        "cached": lambda d: enc.CachedPoissonEncoder(rng=3, convention=conv)(x, 4, dtype=d),
        "ratesyn_start": lambda d: enc.ratesyn_start(x, 10, convention=conv, dtype=d),
        "ratesyn_end": lambda d: enc.ratesyn_end(x, 10, convention=conv, dtype=d),
        "ttfs": lambda d: enc.ttfs(x, 10, convention=conv, dtype=d),
        "fused": lambda d: enc.encode(x, "fused:ttfs+poisson", 10, convention=conv, rng=3, dtype=d),
    }
    for name, call in calls.items():
        b, f = call(bool), call(np.float32)
        assert b.dtype == np.bool_ and b.flags.c_contiguous, name
        assert np.isin(f, (0.0, 1.0)).all() and 0 < f.sum() < f.size, name
        np.testing.assert_array_equal(b, f != 0, err_msg=name)


def test_boolean_dtype_only_for_spike_encoders():
    for call in (
        lambda: enc.current([[0.5]], 2, dtype=bool),
        lambda: enc.rsc_fixed([[0.5]], 2, sigma=0.1, rng=0, dtype=bool),
        lambda: enc.rsc_fresh([[0.5]], 2, sigma=0.1, rng=0, dtype=bool),
        lambda: enc.fused([[0.5]], 2, ("ttfs", "current"), dtype=bool),
    ):
        with pytest.raises(ValueError, match="dtype=bool is not supported.*not 0/1 spikes"):
            call()
    with pytest.raises(ValueError, match="dtype=int8 is not supported; use .* or bool"):
        enc.poisson([[0.5]], 2, rng=0, dtype=np.int8)


def test_poisson_rule_differs_only_at_equality():
    x = np.array([[0.5]])
    u_equal = enc._poisson_compare(np.array([[0.5]]), x, get_convention("DING2025_PAPER"))
    u_le = enc._poisson_compare(np.array([[0.5]]), x, get_convention("DING2025_CODE"))
    assert not u_equal[0, 0] and u_le[0, 0]


def test_cached_poisson_reuses_mask_across_calls():
    # "cached": one uniform per pixel, the same spikes at every step and in every call
    e = enc.CachedPoissonEncoder(rng=3, convention=get_convention("HART_CODE").with_(
        poisson_draw="cached"))
    x = np.random.default_rng(0).random((2, 6))
    a, b = e(x, 4), e(x, 5)
    np.testing.assert_array_equal(a[0], b[0])
    assert np.all(a == a[0])
    np.testing.assert_array_equal(a[0], (e.mask <= x).astype(float))
    with pytest.raises(ValueError, match="a cached Poisson encoder serves one input shape"):
        e(x[:1], 4)


def test_cached_poisson_per_step_is_the_hart_code():
    """The HART code (models/VGG.py, layers.py ``Poisson``) repeats the image over T, then draws
    ``mask = torch.rand_like(x)`` on the first call and keeps it: one uniform per pixel and step,
    reused by every later call; spike iff ``x >= mask``."""
    e = enc.CachedPoissonEncoder(rng=3)  # HART_CODE: "cached_per_step"
    x = np.random.default_rng(0).random((2, 6))
    a = e(x, 5)
    mask = np.random.default_rng(3).random((5, 2, 6))
    np.testing.assert_array_equal(e.mask, mask)
    np.testing.assert_array_equal(a, (x >= mask).astype(float))
    assert not np.all(a == a[0])  # the steps differ within a call
    np.testing.assert_array_equal(e(x, 5), a)  # and repeat in the next call
    x2 = np.clip(x + 0.1, 0, 1)
    np.testing.assert_array_equal(e(x2, 5), (x2 >= mask).astype(float))
    with pytest.raises(ValueError, match=r"x has shape \(2, 6\) with T = 4 but the cached mask "
                                         r"has shape \(5, 2, 6\); a cached Poisson encoder "
                                         r"serves one input shape and one T"):
        e(x, 4)
    # poisson() under HART_CODE draws the same mask for its one call
    np.testing.assert_array_equal(enc.poisson(x, 5, rng=3, convention="HART_CODE"), a)


@given(st.integers(0, 2**32 - 1), st.integers(1, 40))
def test_poisson_rate_is_unbiased(seed, T_):
    # Each spike is Bernoulli(x): the mean count over many pixels is within 6 standard errors.
    x = np.full((1, 2000), 0.3)
    counts = enc.poisson(x, T_, rng=seed).sum(axis=0)
    se = np.sqrt(T_ * 0.3 * 0.7 / 2000)
    assert abs(counts.mean() - 0.3 * T_) < 6 * se


@given(st.floats(0, 1), st.integers(1, 32), st.sampled_from(sorted(PRESETS)))
def test_ratesyn_and_ttfs_properties(x, T_, preset):
    conv = get_convention(preset)
    xs = np.array([[x]])
    start = enc.ratesyn_start(xs, T_, convention=conv)[:, 0, 0]
    end = enc.ratesyn_end(xs, T_, convention=conv)[:, 0, 0]
    first = enc.ttfs(xs, T_, convention=conv)[:, 0, 0]
    # RateSynS spikes form a prefix, RateSynE a suffix (Ding 2025: aligned to start / end)
    k = int(start.sum())
    assert np.all(start[:k] == 1) and np.all(start[k:] == 0)
    j = int(end.sum())
    assert np.all(end[T_ - j :] == 1) and np.all(end[: T_ - j] == 0)
    assert first.sum() <= 1
    xT = x * T_
    if conv.ratesyn_rule == "paper":
        assert k == np.floor(xT)  # H(xT - t), t = 1..T
        # t >= (1 - x)T read as x T >= T - t, from RateSynS's product (test_codec_corners.py)
        assert j == min(T_, np.floor(xT) + 1)
        assert first.sum() == 1 and first[T_ - j] == 1  # TTFS = first RateSynE spike
    else:
        assert k == np.ceil(xT) or abs(xT - round(xT)) < 1e-9


@given(st.floats(0, 1), st.floats(0, 1), st.sampled_from(sorted(PRESETS)))
def test_larger_pixels_spike_earlier_and_more(x1, x2, preset):
    lo, hi = sorted((x1, x2))
    conv = get_convention(preset)
    xs = np.array([[lo, hi]])
    for name in ("ratesyn_start", "ratesyn_end"):
        s = getattr(enc, name)(xs, 16, convention=conv)[:, 0]
        assert s[:, 0].sum() <= s[:, 1].sum()
    t = enc.ttfs(xs, 16, convention=conv)[:, 0]
    if t[:, 0].any():
        assert t[:, 1].any() and np.argmax(t[:, 1]) <= np.argmax(t[:, 0])


def test_rsc_encoders():
    x = np.random.default_rng(0).random((3, 5))
    fixed = enc.rsc_fixed(x, 6, sigma=0.3, rng=1)
    assert np.all(fixed == fixed[0]) and fixed.min() >= 0 and fixed.max() <= 1
    eps = np.random.default_rng(1).standard_normal((3, 5))
    np.testing.assert_array_equal(fixed[0], np.clip(x + 0.3 * eps, 0, 1))
    fresh = enc.rsc_fresh(x, 6, sigma=0.3, rng=1)
    eps = np.random.default_rng(1).standard_normal((6, 3, 5))
    np.testing.assert_array_equal(fresh, np.clip(x + 0.3 * eps, 0, 1))
    np.testing.assert_array_equal(enc.rsc_fresh(x, 4, sigma=0.0, rng=1), enc.current(x, 4))


def test_fused_and_encode_dispatch():
    x = np.array([[0.2, 0.9]])
    f = enc.fused(x, 5, ("current", "ttfs", "poisson"), rng=0)
    assert f.shape == (5, 1, 6)
    np.testing.assert_array_equal(f[:, :, :2], enc.current(x, 5))
    np.testing.assert_array_equal(f[:, :, 2:4], enc.ttfs(x, 5))
    np.testing.assert_array_equal(enc.encode(x, "fused:current+ttfs", 5), f[:, :, :4])
    np.testing.assert_array_equal(enc.encode(x, "ratesyn_end", 5), enc.ratesyn_end(x, 5))
    np.testing.assert_array_equal(
        enc.encode(x, "rsc_fixed", 5, rng=2, sigma=0.1), enc.rsc_fixed(x, 5, sigma=0.1, rng=2)
    )
    img = np.random.default_rng(0).random((2, 3, 4, 4))
    assert enc.fused(img, 3, ("current", "ttfs")).shape == (3, 2, 6, 4, 4)


def test_encoder_errors():
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        enc.current([[1.5]], 3)
    with pytest.raises(ValueError, match="NaN or infinite"):
        enc.ttfs([[np.nan]], 3)
    with pytest.raises(TypeError, match="x must be a numeric array"):
        enc.current([["a"]], 3)
    with pytest.raises(ValueError, match="x must have a batch axis"):
        enc.current(0.5, 3)
    with pytest.raises(TypeError, match=r"T must be an integer \(time steps\), got float 2.5; "
                                        r"the encoded sequence's length$"):
        enc.current([[0.5]], 2.5)
    with pytest.raises(TypeError, match=r"T must be an integer \(time steps\), got bool True"):
        enc.ttfs([[0.5]], True)
    with pytest.raises(ValueError, match=r"T=0 must be an integer >= 1 \(time steps\); the "
                                         r"encoded sequence's length$"):
        enc.current([[0.5]], 0)
    with pytest.raises(ValueError, match="dtype=float16 is not supported"):
        enc.current([[0.5]], 2, dtype=np.float16)
    with pytest.raises(TypeError, match="rng must be a seed"):
        enc.poisson([[0.5]], 2, rng="seed")
    with pytest.raises(ValueError, match="sigma=-1.0 must be finite and >= 0"):
        enc.rsc_fixed([[0.5]], 2, sigma=-1.0, rng=0)
    with pytest.raises(TypeError, match="sigma must be a real number"):
        enc.rsc_fresh([[0.5]], 2, sigma="big", rng=0)
    with pytest.raises(ValueError, match="is not an encoder"):
        enc.encode([[0.5]], "morse", 2)
    # was: fit_snn(..., encoder="poison") said only "method='poison' is not an encoder", and
    # fit_snn's own method= is the gradient method
    from evsnn.clock import Network
    from evsnn.train import fit_snn

    with pytest.raises(ValueError, match=r"^method='poison' is not an encoder \(the encoder= of "
                                         r"fit_snn, snn_accuracy and SNNSource, --encoder of the "
                                         r"command\); use one of \['current', "):
        fit_snn(Network.mlp([1, 2]), [[0.5]], [0], T=2, rng=0, encoder="poison")
    with pytest.raises(TypeError, match="method must be an encoder name"):
        enc.encode([[0.5]], 3, 2)
    with pytest.raises(ValueError, match="is stochastic: pass rng="):
        enc.encode([[0.5]], "poisson", 2)
    with pytest.raises(ValueError, match="needs sigma="):
        enc.encode([[0.5]], "rsc_fresh", 2, rng=0)
    with pytest.raises(ValueError, match="must be a non-empty list of encoder names"):
        enc.fused([[0.5]], 2, "current")
    with pytest.raises(ValueError, match=r"^methods\[0\]='fused:current': fused encoders "
                                         "cannot be nested"):
        enc.fused([[0.5]], 2, ("fused:current",))
    # review: members were checked by encode() and named "method" (a 'fused:a+b' was
    # suggested inside a fused list), and encode('fused:') blamed "methods"
    with pytest.raises(ValueError, match=r"^methods\[1\]='foo' is not an encoder; use one of "
                                         r"\['current', "):
        enc.fused([[0.5]], 2, ("current", "foo"))
    with pytest.raises(TypeError, match=r"^methods\[1\] must be an encoder name, got int 3"):
        enc.fused([[0.5]], 2, ("current", 3))
    with pytest.raises(ValueError, match=r"^method='fused:' names no encoder after 'fused:'"):
        enc.encode([[0.5]], "fused:", 2)
    with pytest.raises(ValueError, match=r"^method='fused:current\+foo': 'foo' is not an "
                                         r"encoder \(fused encoders cannot be nested\)"):
        enc.encode([[0.5]], "fused:current+foo", 2)


@pytest.mark.parametrize("rule_preset", ["DING2025_PAPER", "DING2025_CODE"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sampler", ["uniform", "bytes"])
@pytest.mark.parametrize("small_blocks", [False, True])
def test_parallel_poisson_draws_equal_the_serial_stream(rule_preset, dtype, sampler,
                                                        small_blocks, monkeypatch):
    # large enough for the threaded path (>= 2^18 draws): spikes and the generator's state after
    # the call must be exactly those of one serial stream -- rng.random((T,) + shape), or the
    # bytes sampler's definition -- at any thread count; ``small_blocks``: every thread's piece
    # is drawn in many blocks (as for batches far larger than this one)
    import numba

    if small_blocks:
        monkeypatch.setattr(enc, "_BLOCK", 1 << 12)
        monkeypatch.setattr(enc, "_BYTES_BLOCK", 1 << 12)

    conv = get_convention(rule_preset)
    x = np.random.default_rng(0).random((300, 100)).astype(dtype)
    x[0, :4] = [0.0, 1.0, 0.5, np.nextafter(dtype(1), dtype(0))]
    T = 10
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            _check_parallel_poisson(x, T, conv, dtype, sampler)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def _check_parallel_poisson(x, T, conv, dtype, sampler):
    for bitgen in (np.random.PCG64, np.random.PCG64DXSM):
        rng_par = np.random.Generator(bitgen(11))
        rng_ser = np.random.Generator(bitgen(11))
        rng_par.random(3)  # start mid-stream
        rng_ser.random(3)
        got = enc.poisson(x, T, rng=rng_par, convention=conv, sampler=sampler)
        if sampler == "uniform":
            u = rng_ser.random((T,) + x.shape)
            want = ((u < x) if conv.poisson_rule == "u<x" else (u <= x)).astype(dtype)
        else:
            want = ref_encoders.poisson_bytes_stream(
                rng_ser, x, T, conv.poisson_rule != "u<x"
            ).astype(dtype)
        np.testing.assert_array_equal(got, want)
        assert rng_par.bit_generator.state == rng_ser.bit_generator.state
        assert rng_par.random() == rng_ser.random()


@given(st.integers(0, 2**32 - 1), st.integers(0, 500), st.booleans(),
       st.sampled_from([np.float64, np.float32]))
def test_spike_if_below_kernel_is_numpys_mixed_dtype_comparison(seed, n, less_equal, dtype):
    # float64 draws against float32 or float64 pixels, with exact ties and values that differ
    # from a pixel only beyond float32 precision: the kernel must compare as NumPy promotes
    rng = np.random.default_rng(seed)
    x = rng.random(n).astype(dtype)
    u = rng.random(n)
    u[::3] = x[::3]  # ties
    u[1::3] = np.nextafter(x[1::3].astype(np.float64), 2.0)  # just above the pixel
    out = np.full(n, np.nan, dtype=dtype)
    enc._spike_if_below_kernel(u, x, less_equal, out)
    want = np.full(n, np.nan, dtype=dtype)
    ref_encoders._spike_if_below_kernel(u, x, less_equal, want)
    np.testing.assert_array_equal(out, want)
    assert out.dtype == np.dtype(dtype)


@given(st.integers(0, 2**32 - 1), st.integers(1, 300), st.booleans(),
       st.sampled_from([np.float64, np.float32]))
def test_poisson_thresholds_kernel_is_exact(seed, n, less_equal, dtype):
    # against exact rational arithmetic, at the edges (0, 1, one ulp from them, 2^-53 steps)
    # and at random pixels
    rng = np.random.default_rng(seed)
    x = rng.random(n).astype(dtype)
    edges = np.array([0.0, 1.0, 2.0**-53, 1 - 2.0**-53, 0.5, np.nextafter(dtype(1), dtype(0)),
                      np.nextafter(dtype(0), dtype(1))], dtype=dtype)
    x[: min(n, edges.size)] = edges[: min(n, edges.size)]
    top, low = np.empty(n, np.uint16), np.empty(n, np.uint64)
    enc._poisson_thresholds_kernel(x, less_equal, top, low)
    want_top, want_low = np.empty(n, np.uint16), np.empty(n, np.uint64)
    ref_encoders._poisson_thresholds_kernel(x, less_equal, want_top, want_low)
    np.testing.assert_array_equal(top, want_top)
    np.testing.assert_array_equal(low, want_low)
    assert top.max() <= 256
    top_only = np.empty(n, np.uint16)  # without the low bits (an empty ``low``)
    enc._poisson_thresholds_kernel(x, less_equal, top_only, np.empty(0, np.uint64))
    np.testing.assert_array_equal(top_only, want_top)


@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(1, 400), st.integers(0, 60),
       st.integers(0, 8), st.sampled_from([np.float64, np.float32]))
def test_spike_if_byte_below_kernel_matches_its_twin(seed, n_pix, n, start, room, dtype):
    # many ties (tops drawn from a few byte values), pieces that start mid-step, and tie lists
    # with too little room: the count is still exact and the recorded ones are the first
    rng = np.random.default_rng(seed)
    top = rng.choice(np.array([0, 1, 7, 255, 256], dtype=np.uint16), n_pix)
    draw_bytes = rng.choice(np.array([0, 1, 7, 8, 255], dtype=np.uint8), n)
    out = np.full(start + n, np.nan, dtype=dtype)
    want = out.copy()
    eq = np.empty((n_pix + 7) // 8 * 8, np.uint8)
    ties, want_ties = np.full(room, -1, np.int64), np.full(room, -1, np.int64)
    got_n = enc._spike_if_byte_below_kernel(draw_bytes, top, out, start, eq, ties)
    want_n = ref_encoders._spike_if_byte_below_kernel(draw_bytes, top, want, start, eq, want_ties)
    assert got_n == want_n
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(ties, want_ties)


@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(0, 50),
       st.sampled_from([np.float64, np.float32]))
def test_resolve_ties_kernel_matches_its_twin(seed, n_pix, n_ties, dtype):
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 2**45, n_pix, dtype=np.uint64)
    low[0] = 0  # never spikes
    ties = np.sort(rng.choice(10 * n_pix, size=min(n_ties, 10 * n_pix), replace=False))
    words = rng.integers(0, 2**64, ties.size, dtype=np.uint64)
    out = rng.random(10 * n_pix).astype(dtype)
    want = out.copy()
    tie_low = low[ties % n_pix]  # each tie's pixel's low threshold bits
    enc._resolve_ties_kernel(ties, words, tie_low, out)
    ref_encoders._resolve_ties_kernel(ties, words, tie_low, want)
    np.testing.assert_array_equal(out, want)


def test_poisson_sampler_errors():
    with pytest.raises(ValueError, match="sampler='fast' is not a Poisson sampler"):
        enc.poisson([[0.5]], 2, rng=0, sampler="fast")


@pytest.mark.parametrize("bitgen", [np.random.MT19937, np.random.SFC64, np.random.Philox,
                                    np.random.PCG64DXSM])
def test_bytes_sampler_for_every_bit_generator(bitgen):
    # the words are full 64-bit draws for every bit generator (MT19937's raw outputs have 32
    # bits: taking bytes of those would make half the draws spike whenever x > 0)
    x = np.random.default_rng(0).random((40, 50))
    got = enc.poisson(x, 10, rng=np.random.Generator(bitgen(3)))
    want = ref_encoders.poisson_bytes_stream(np.random.Generator(bitgen(3)), x, 10, False)
    np.testing.assert_array_equal(got, want)
    # the law: Bernoulli(0.3) per draw, mean within 6 standard errors over 40,000 draws
    rate = enc.poisson(np.full((1, 4000), 0.3), 10, rng=np.random.Generator(bitgen(4))).mean()
    assert abs(rate - 0.3) < 6 * np.sqrt(0.3 * 0.7 / 40_000)


def test_current_refuses_a_real_input_past_float32_when_asked_for_float32():
    """pixel_range='real' admits any finite current; a float32 output turned 1e39 into inf
    with only NumPy's warning (simulate refuses the same case naming the fix)."""
    x = np.array([[1e39, 0.5]])
    with pytest.raises(ValueError, match=r"x holds a value of magnitude 1e\+39, past float32's "
                                         r"largest .*; use dtype=numpy.float64"):
        enc.current(x, 3, dtype=np.float32, pixel_range="real")
    with pytest.raises(ValueError, match="past float32's largest"):
        enc.encode(x, "current", 3, dtype=np.float32, pixel_range="real")
    assert enc.current(x, 3, pixel_range="real")[0, 0, 0] == 1e39  # float64 keeps it
    assert enc.current(np.array([[3e38]]), 2, dtype=np.float32, pixel_range="real").max() < np.inf


def test_input_gradient_names_a_bad_method():
    from evsnn.grad.encoder_rules import input_gradient

    seq = np.zeros((2, 1, 3))
    with pytest.raises(TypeError, match="method must be an encoder's name.*got NoneType None"):
        input_gradient(None, seq, seq)
    with pytest.raises(ValueError, match="names no encoder after 'fused:'"):
        input_gradient("fused:", seq, seq)  # was 'cannot split into 0 parts'
