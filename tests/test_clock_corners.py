"""Corner cases of clock mode, the encoders, the decoders and the gradients, aimed where the
random strategies of the other test files rarely go: membranes exactly at θ, ``v_init`` and
``v_rest`` at or above θ, λ = 0 and λ = 1, soft resets that leave ``v >= θ``, delayed input with
T = 1, every neuron model under every convention preset, float32 next to float64, pixels 0 and
exactly 1, silent and simultaneous output spikes, saturated losses.

The forward oracle here is exact: the DESIGN equations ("Neuron models (clock mode)") evaluated
in rational arithmetic (:class:`fractions.Fraction`) on dyadic parameters. Whenever every value
that arises — and every partial sum of a layer's current, in any order — is representable in
the run's dtype, a correct simulator must reproduce the oracle bit for bit (float32 included:
IEEE arithmetic is exact when the exact result is representable), so ties ``m == θ`` are decided
by the convention's spike test and nothing else.
"""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st
from reference.helpers import (
    PAPER_PRESETS,
    PRESET_NAMES,
    assert_grads_equal_tape,
    example_count,
    step_ulps,
    tape_surrogate,
)

from evsnn.clock import Dense, Network, simulate
from evsnn.conventions import DEFAULT, get_convention
from evsnn.params import DLIF, IF, LIF, Readout, TraceLIF

MANTISSA = {np.dtype(np.float64): 53, np.dtype(np.float32): 24}


# --------------------------------------------------------------------------- exact arithmetic
def _fr(x):
    return Fraction(float(x))


def _fits(values, dtype):
    """Whether every Fraction in ``values`` is a dyadic number exactly representable in
    ``dtype`` (no exponent range issue arises for the small magnitudes used here)."""
    p = MANTISSA[np.dtype(dtype)]
    for v in values:
        if v == 0:
            continue
        den = v.denominator
        if den & (den - 1):
            return False
        num = abs(v.numerator)
        while num % 2 == 0:
            num //= 2
        if num.bit_length() > p:
            return False
    return True


def _sum_fits(terms, dtype):
    """Whether every partial sum of ``terms`` (in any order) is representable in ``dtype``: all
    are multiples of the finest granularity 2^-K and at most Σ|terms| in magnitude."""
    terms = [t for t in terms if t != 0]
    if not terms:
        return True
    den = max(t.denominator for t in terms)
    if den & (den - 1):
        return False
    return sum(abs(t) for t in terms) * den < 2 ** MANTISSA[np.dtype(dtype)]


def _exact_forward(net, x, conv):
    """The DESIGN update of every layer in exact arithmetic. Returns per layer the dicts of
    Fraction arrays (object ndarrays) ``current, m, v, spikes, trace, output`` and whether every
    value (and every partial sum of a current) is representable in float64 / float32."""
    fits = {np.dtype(np.float64): True, np.dtype(np.float32): True}
    T, B, _ = x.shape
    layer_in = np.vectorize(_fr, otypes=[object])(x)
    records = []
    d = conv.input_delay
    for layer in net.layers:
        neuron = layer.neuron
        args = neuron.kernel_args()
        W = np.vectorize(_fr, otypes=[object])(layer.weight)
        bias = [Fraction(0)] * layer.n_out if layer.bias is None else [_fr(b) for b in layer.bias]
        theta, v_rest, v_init = _fr(args.theta), _fr(args.v_rest), _fr(args.v_init)
        lam, c = _fr(args.lam), _fr(args.trace_coef)
        shape = (T, B, layer.n_out)
        rec = {k: np.empty(shape, dtype=object) for k in ("current", "m", "v", "spikes", "trace",
                                                          "output")}
        for b in range(B):
            v = [v_init] * layer.n_out
            a = [Fraction(0)] * layer.n_out
            for t in range(T):
                leak, gain = lam, Fraction(1)
                if args.dlif:
                    f = _fr(layer.dlif_factors[t])
                    if conv.dlif_factor == "leak":
                        leak = lam * f
                    else:
                        gain = f
                for i in range(layer.n_out):
                    terms = [bias[i]]
                    if t - d >= 0:
                        terms += [layer_in[t - d, b, j] * W[i, j] for j in range(layer.n_in)]
                    cur = sum(terms, Fraction(0))
                    m = leak * v[i] + gain * cur
                    vals = [leak, leak * v[i], gain * cur, m, cur]
                    if args.spiking:
                        fire = m >= theta if conv.spike_ge else m > theta
                        s = Fraction(int(fire))
                        # hard: v = m − s (m − v_rest) (v_rest exactly); soft: v = m − s θ
                        v[i] = (m - s * (m - v_rest)) if args.hard_reset else m - s * theta
                        if c != 0:
                            a[i] = a[i] + c * (s - a[i])
                        out = a[i] if args.emit_trace else s
                        vals += [v[i], a[i], c * (s - a[i])]
                    else:
                        s = None
                        v[i] = m
                        out = m
                    for k, val in (("current", cur), ("m", m), ("v", v[i]), ("spikes", s),
                                   ("trace", a[i]), ("output", out)):
                        rec[k][t, b, i] = val
                    for dt in fits:
                        fits[dt] = fits[dt] and _fits(vals, dt) and _sum_fits(terms, dt)
        records.append(rec)
        layer_in = rec["output"]
    return records, fits


# --------------------------------------------------------------------------- corner networks
def _q(draw, lo, hi, q):
    """A multiple of ``q`` in [lo, hi]."""
    return draw(st.integers(round(lo / q), round(hi / q))) * q


@st.composite
def corner_neurons(draw, allow_readout=True):
    kinds = ["lif_hard", "lif_soft", "if", "trace_spike", "trace_trace", "dlif"]
    if allow_readout:
        kinds.append("readout")
    kind = draw(st.sampled_from(kinds))
    theta = draw(st.sampled_from([0.25, 0.5, 1.0, 1.5]))
    # v_init and v_rest at the corners: exactly θ, above θ (2θ), 0, negative
    corner = st.sampled_from([0.0, theta, 2 * theta, -theta, theta - 0.125, theta + 0.125])
    lam = draw(st.sampled_from([0.0, 0.5, 1.0]))
    v_init, v_rest = draw(corner), draw(corner)
    if kind in ("lif_hard", "lif_soft"):
        return LIF(lam=lam, theta=theta, reset=kind[4:], v_rest=v_rest, v_init=v_init)
    if kind == "if":
        return IF(theta=theta, v_init=v_init)
    if kind == "dlif":
        return DLIF(lam=lam, theta=theta, reset=draw(st.sampled_from(["hard", "soft"])),
                    v_rest=v_rest, v_init=v_init)
    if kind == "readout":
        return Readout(lam=lam, v_init=v_init)
    dt = draw(st.sampled_from([0.5, 1.0]))
    tm = draw(st.sampled_from([t for t in (0.5, 1.0, 2.0, 4.0) if t >= dt]))
    ts = draw(st.sampled_from([t for t in (0.5, 1.0, 2.0, 4.0) if t >= dt]))
    return TraceLIF(dt_ms=dt, tau_mem_ms=tm, tau_syn_ms=ts, theta=theta, u0=v_rest,
                    v_init=v_init, output=kind[6:])


@st.composite
def corner_cases(draw, n_layers=(1, 3), T=(1, 7)):
    T_ = draw(st.integers(*T))
    B = draw(st.integers(1, 2))
    L = draw(st.integers(*n_layers))
    sizes = [draw(st.integers(1, 4)) for _ in range(L + 1)]
    layers = []
    for k in range(L):
        neuron = draw(corner_neurons(allow_readout=k == L - 1))
        n_in, n_out = sizes[k], sizes[k + 1]
        w = np.array([[_q(draw, -1.5, 1.5, 0.125) for _ in range(n_in)] for _ in range(n_out)])
        bias = None
        if draw(st.booleans()):
            bias = np.array([_q(draw, -0.5, 0.5, 0.125) for _ in range(n_out)])
        factors = None
        if isinstance(neuron, DLIF):
            factors = np.array([draw(st.sampled_from([0.5, 1.0, 1.5])) for _ in range(T_)])
        layers.append(Dense(w, neuron, bias=bias, dlif_factors=factors))
    net = Network(layers)
    kind = draw(st.sampled_from(["spikes", "constant", "values", "zeros", "ones"]))
    shape = (T_, B, sizes[0])
    if kind == "spikes":
        x = np.array(draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=int(np.prod(shape)),
                                   max_size=int(np.prod(shape))))).reshape(shape)
    elif kind == "constant":
        frame = np.array(draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]),
                                       min_size=B * sizes[0], max_size=B * sizes[0])))
        x = np.broadcast_to(frame.reshape(1, B, -1), shape).copy()
    elif kind == "values":
        x = np.array(draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]),
                                   min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
                     ).reshape(shape)
    else:
        x = np.full(shape, 0.0 if kind == "zeros" else 1.0)
    conv = get_convention(draw(st.sampled_from(PRESET_NAMES)))
    return net, x, conv


def _as_float(arr):
    return np.array([[[float(v) for v in row] for row in step] for step in arr])


def _assert_exact(res, records, net, what):
    for li, (layer, rec, want) in enumerate(zip(net.layers, res.layers, records)):
        for key in ("current", "m", "v", "output"):
            np.testing.assert_array_equal(getattr(rec, key), _as_float(want[key]),
                                          err_msg=f"{what}: layer {li} {key}")
        if layer.spiking:
            np.testing.assert_array_equal(rec.spikes, _as_float(want["spikes"]),
                                          err_msg=f"{what}: layer {li} spikes")
        if rec.trace is not None:
            np.testing.assert_array_equal(rec.trace, _as_float(want["trace"]),
                                          err_msg=f"{what}: layer {li} trace")


# --------------------------------------------------------------------------- forward, exact
@settings(max_examples=example_count(50))
@given(corner_cases())
def test_simulate_equals_exact_design_update_at_corners(case):
    """Every neuron model, every preset (spike test, input delay, DLIF placement), ties at θ,
    v_init / v_rest at or above θ, λ ∈ {0, ½, 1}, T from 1: ``simulate`` equals the DESIGN
    update in exact arithmetic, in float64 and (where representable) in float32, for float,
    boolean and time-repeated (stride-0) inputs, recorded or not."""
    net, x, conv = case
    records, fits = _exact_forward(net, x, conv)
    assume(fits[np.dtype(np.float64)])
    dtypes = [np.float64] + ([np.float32] if fits[np.dtype(np.float32)] else [])
    event(f"float32 exact: {fits[np.dtype(np.float32)]}")
    for dtype in dtypes:
        xs = [x.astype(dtype)]
        if np.all((x == 0) | (x == 1)):
            xs.append(x.astype(bool))
        if np.all(x == x[:1]):
            xs.append(np.broadcast_to(x[:1].astype(dtype), x.shape))
        for inp in xs:
            what = f"{np.dtype(dtype).name} input {inp.dtype} stride {inp.strides[0]}"
            res = simulate(net, inp, convention=conv, record=True, dtype=dtype)
            assert res.output.dtype == dtype
            _assert_exact(res, records, net, what)
            plain = simulate(net, inp, convention=conv, dtype=dtype)
            np.testing.assert_array_equal(plain.output, res.output, err_msg=what)


# --------------------------------------------------------------------------- gradients vs tape
from evsnn.grad import Sigmoid, Triangle, backward  # noqa: E402
from reference import tape as tp  # noqa: E402


def _tape(net, x, conv, g_out, mode, **opts):
    """dL/d(input, weights, biases, DLIF factors) of ``Σ g_out · output`` on the reverse-mode
    tape (``tests/reference/tape.py``) and its output."""
    ref, _, out = tp.network_gradients(net, x, conv, g_out, mode=mode, **opts)
    return ref, np.stack([o.value for o in out])


@settings(max_examples=example_count(50))
@given(corner_cases(), st.sampled_from(["bptt", "bptt_detach", "hart", "rga", "bptr", "rate",
                                        "tempbp"]),
       st.sampled_from([Sigmoid(5.0, "code"), Sigmoid(2.0, "paper"), Triangle(0.5),
                        Triangle(1.0)]),
       st.integers(0, 2**32 - 1))
def test_backward_equals_tape_at_corners(case, method, surrogate, seed):
    """Every gradient method on the corner networks (exact forward: ties at θ decided exactly as
    in the simulator) against the reverse-mode tape."""
    net, x, conv = case
    _, fits = _exact_forward(net, x, conv)
    assume(fits[np.dtype(np.float64)])
    spiking = [layer for layer in net.layers if layer.spiking]
    if method == "tempbp":
        assume(spiking and all(isinstance(l.neuron, TraceLIF) for l in spiking))
    res = simulate(net, x, convention=conv, record=True)
    g_out = np.random.default_rng(seed).standard_normal(res.output.shape)
    opts, kw = {}, {}
    mode = "bptt" if method == "bptt_detach" else method
    if mode in ("bptt", "hart"):
        opts["surrogate"] = tape_surrogate(surrogate)
        kw["surrogate"] = surrogate
    if method == "bptt_detach":
        opts["detach_reset"] = kw["detach_reset"] = True
    ref, out = _tape(net, x, conv, g_out, mode, **opts)
    np.testing.assert_array_equal(out, res.output)
    got = backward(net, x, res, g_out, method=mode, **kw)
    assert_grads_equal_tape(got, ref, method)


# a memoryless readout (lam = 0) on two spiking layers: drawn too rarely to rely on
_LAM0_READOUT = (
    Network([Dense(np.array([[1.0, 0.5], [-0.5, 1.25], [0.75, 0.75]]), LIF(lam=0.5, theta=0.5)),
             Dense(np.array([[1.0, -0.5, 1.5], [0.5, 1.0, -1.0]]), IF(theta=0.25),
                   bias=np.array([0.125, 0.0])),
             Dense(np.array([[1.0, -1.25], [0.5, 0.75]]), Readout(lam=0.0, v_init=0.5),
                   bias=np.array([0.25, -0.125]))]),
    np.full((5, 2, 2), 0.5) + np.array([[[0.25, 0.0], [0.0, 0.5]]]), DEFAULT,
)


@settings(max_examples=example_count(40))
@given(corner_cases(), st.sampled_from([Triangle(0.5), Triangle(1.0), Sigmoid(5.0, "code")]),
       st.integers(0, 2**32 - 1))
@example(_LAM0_READOUT, Triangle(1.0), 7)
def test_hart_precalculated_at_corners_equals_tape_or_refuses(case, surrogate, seed):
    """HART's pre-calculated backward (time sums only) on the corner networks, with a
    time-constant upstream gradient: equal to the prune-then-average tape wherever it applies
    (T = 1 with a delayed input included: no step reaches the current, no gradient), and a
    ValueError naming the reason wherever it does not (a readout with lam > 0, DLIF, trace
    output, a delay below the first layer). A memoryless readout (lam = 0) passes the
    time-constant gradient on unchanged, so the pre-calculation applies to it."""
    net, x, conv = case
    _, fits = _exact_forward(net, x, conv)
    assume(fits[np.dtype(np.float64)])
    T, B = x.shape[:2]
    g_out = np.broadcast_to(np.random.default_rng(seed).standard_normal((1, B, net.n_out)),
                            (T, B, net.n_out)).copy()
    sums = simulate(net, x, convention=conv, record="time_sums", surrogate=surrogate)
    args = [layer.neuron.kernel_args() for layer in net.layers]
    applies = all((a.spiking or a.lam == 0) and not a.dlif and not a.emit_trace
                  for a in args) and (
        conv.input_delay == 0 or len(net.layers) == 1 or T == 1)
    if not applies:
        with pytest.raises(ValueError, match="pre-calculation|precalculate"):
            backward(net, x, sums, g_out, method="hart", precalculate=True)
        return
    ref, _ = _tape(net, x, conv, g_out, "hart", surrogate=tape_surrogate(surrogate))
    got = backward(net, x, sums, g_out, method="hart", precalculate=True)
    assert_grads_equal_tape(got, ref, "hart precalculated")


# --------------------------------------------------------------------------- encoders
from evsnn import encoders as enc  # noqa: E402
from evsnn.grad import loss_and_grad  # noqa: E402


@st.composite
def float32_pixels(draw, T):
    """float32 pixels at and next to the grid k/T (where the rules' edges are), and 0, 1."""
    k = draw(st.integers(0, T))
    base = np.float32(k / T)
    x = step_ulps(base, draw(st.integers(-2, 2)), np.float32)
    return float(np.clip(x, np.float32(0), np.float32(1)))


@settings(max_examples=example_count(50))
@given(st.integers(1, 1000).flatmap(lambda T: st.tuples(
    st.just(T), st.lists(float32_pixels(T), min_size=1, max_size=6))),
    st.sampled_from(PAPER_PRESETS), st.sampled_from([np.float32, np.float64, np.bool_]))
def test_paper_rules_are_exact_for_float32_pixels(T_pixels, preset, dtype):
    """The paper rules evaluated in float64 are exact for float32 pixels (conventions.py,
    ``encoder_arithmetic``): RateSynS spikes at t = 1..T iff x T >= t (Ding 2025 Eq. 9, H(0) =
    1), RateSynE iff t >= (1 − x) T (Eq. 10), TTFS at the first RateSynE spike (Eq. 11) —
    checked in rational arithmetic at and one or two float32 ulps around every k/T."""
    T, pixels = T_pixels
    conv = get_convention(preset)
    assert conv.encoder_arithmetic == "float64" and conv.ttfs_rule == "paper"
    x = np.array([pixels], dtype=np.float32)
    start = enc.ratesyn_start(x, T, convention=conv, dtype=dtype)
    end = enc.ratesyn_end(x, T, convention=conv, dtype=dtype)
    first = enc.ttfs(x, T, convention=conv, dtype=dtype)
    assert start.dtype == end.dtype == first.dtype == dtype
    for k, p in enumerate(pixels):
        xf = Fraction(p)
        want_s = [t for t in range(1, T + 1) if xf * T >= t]
        want_e = [t for t in range(1, T + 1) if t >= (1 - xf) * T]
        assert (np.flatnonzero(start[:, 0, k]) + 1).tolist() == want_s, p
        assert (np.flatnonzero(end[:, 0, k]) + 1).tolist() == want_e, p
        assert (np.flatnonzero(first[:, 0, k]) + 1).tolist() == want_e[:1], p


@settings(max_examples=example_count(50))
@given(st.integers(1, 40), st.lists(st.sampled_from([0.0, 1.0, 0.5, 1e-300, 1 - 2**-53]),
                                    min_size=1, max_size=5),
       st.sampled_from(PRESET_NAMES), st.sampled_from([np.float64, np.float32]))
def test_spike_encoders_at_pixel_edges(T, pixels, preset, in_dtype):
    """Pixels 0 and exactly 1 under every preset: x = 1 spikes at every step (RateSynS, Poisson
    under both rules) and its TTFS spike is the first step; x = 0 never spikes under RateSynS,
    under the code's RateSynE and TTFS (t0 = T is outside the window) and under Poisson's
    ``u < x``; the paper's RateSynE and TTFS put x = 0's spike at t = T. TTFS emits at most one
    spike: exactly one under the paper's rule; under the code's exactly when
    ``floor((1 − x) T)`` < T in the input dtype (none for x = 0, nor for an x so small that
    ``1 − x`` rounds to 1, e.g. 1e-300: the code's arithmetic, kept as it runs)."""
    conv = get_convention(preset)
    x = np.array([pixels], dtype=in_dtype)
    s = enc.ratesyn_start(x, T, convention=conv)
    e = enc.ratesyn_end(x, T, convention=conv)
    f = enc.ttfs(x, T, convention=conv)
    p = enc.poisson(x, T, rng=0, convention=conv)
    for k, v in enumerate(x[0]):
        n_f = int(f[:, 0, k].sum())
        assert n_f <= 1
        if v == 1:
            assert s[:, 0, k].all() and p[:, 0, k].all()
            assert f[0, 0, k] == 1
        elif v == 0:
            assert not s[:, 0, k].any()
            if conv.poisson_rule == "u<x":
                assert not p[:, 0, k].any()
            if conv.ttfs_rule == "code":
                assert n_f == 0
            else:
                assert f[T - 1, 0, k] == 1
            if conv.ratesyn_rule == "code":
                assert not e[:, 0, k].any()
            else:
                assert np.flatnonzero(e[:, 0, k]).tolist() == [T - 1]
        elif conv.ttfs_rule == "paper":
            assert n_f == 1
        else:  # the code's floor((1 - x) T) in the input dtype: T for a tiny x (no spike)
            assert n_f == int(np.floor((1 - v) * v.dtype.type(T)) < T)


@settings(max_examples=example_count(30))
@given(st.integers(1, 12), st.integers(1, 4), st.integers(1, 5), st.integers(0, 2**32 - 1),
       st.sampled_from(PRESET_NAMES))
def test_poisson_is_reproducible_and_its_uniform_sampler_is_numpys(T, B, N, seed, preset):
    """The same seed gives the same raster (and a fresh Generator from it the same again); the
    "uniform" sampler is exactly ``rng.random((T,) + x.shape)`` compared with the convention's
    rule (its docstring); pixel 0 / 1 rows behave as the rule says."""
    conv = get_convention(preset)
    rng = np.random.default_rng(seed)
    x = rng.choice([0.0, 1.0, 0.5, rng.random()], size=(B, N))
    a = enc.poisson(x, T, rng=seed, convention=conv)
    b = enc.poisson(x, T, rng=np.random.default_rng(seed), convention=conv)
    np.testing.assert_array_equal(a, b)
    u = enc.poisson(x, T, rng=seed, convention=conv, sampler="uniform")
    draws = np.random.default_rng(seed)
    if conv.poisson_draw == "cached":
        mask = draws.random(x.shape)
        want = np.broadcast_to(mask < x if conv.poisson_rule == "u<x" else mask <= x,
                               (T,) + x.shape)
    else:
        d = draws.random((T,) + x.shape)
        want = d < x if conv.poisson_rule == "u<x" else d <= x
    np.testing.assert_array_equal(u, want.astype(float))


# --------------------------------------------------------------------------- decoders
from evsnn import decoders as dec  # noqa: E402
from evsnn.grad import decoder_vjp, ttfs_loss  # noqa: E402


def test_decoder_vjp_reads_integer_and_boolean_outputs_as_the_decoders_do():
    """Regression: ``decoder_vjp`` cast dL/dscores to the outputs' dtype, so on an integer
    raster a gradient of 0.5 became 0 (and on a boolean raster True), and the TTFS weights of a
    boolean raster raised. The decoders read such outputs as float64; so does the vjp now."""
    s = np.zeros((3, 1, 2), dtype=np.int64)
    s[1, 0, 0] = 1
    g = np.array([[0.5, -2.0]])
    for method in ("rate", "membrane", "ttfs"):
        want = decoder_vjp(method, g, s.astype(np.float64))
        for raster in (s, s.astype(bool), s.astype(np.uint8)):
            got = decoder_vjp(method, g, raster)
            assert got.dtype == np.float64, (method, raster.dtype)
            np.testing.assert_array_equal(got, want, err_msg=f"{method} {raster.dtype}")
    # rate: every step gets g; ttfs: the first spike of neuron 0 (t0 = 1, weight T - 1 = 2),
    # step 0 with weight T = 3 for the silent neuron 1
    np.testing.assert_array_equal(decoder_vjp("rate", g, s)[:, 0], np.tile(g, (3, 1)))
    np.testing.assert_array_equal(decoder_vjp("ttfs", g, s)[:, 0],
                                  [[0.0, -6.0], [1.0, 0.0], [0.0, 0.0]])
    assert decoder_vjp("rate", g, s.astype(np.float32)).dtype == np.float32


def test_decoder_vjp_errors():
    out = np.zeros((3, 2, 4))
    with pytest.raises(ValueError, match=r"g_scores has shape \(4,\) but the outputs"):
        decoder_vjp("rate", np.ones(4), out)  # once broadcast over the batch silently
    with pytest.raises(ValueError, match=r"g_scores has shape \(4, 2\)"):
        decoder_vjp("ttfs", np.ones((4, 2)), out)
    with pytest.raises(ValueError, match=r"outputs must be time-major \[T, B, N\]"):
        decoder_vjp("rate", np.ones((2, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="outputs has T = 0"):
        decoder_vjp("rate", np.ones((2, 4)), np.zeros((0, 2, 4)))
    with pytest.raises(TypeError, match="outputs must be numeric"):
        decoder_vjp("rate", np.ones((1, 1)), np.array([[["x"]]]))


@settings(max_examples=example_count(40))
@given(st.integers(1, 8), st.integers(1, 3), st.integers(1, 4), st.integers(0, 2**32 - 1),
       st.sampled_from([0.0, 0.2, 0.6]))
def test_decoders_at_ties_silence_and_simultaneous_first_spikes(T, B, N, seed, p):
    """Rate and TTFS decoding (Ding 2025 Eq. 12-13) at their corners, from the definitions:
    ω_rate = spike count; ω_ttfs = T + 1 − t of the first spike (t = 1..T), 0 when silent, so
    neurons that first spike together tie; ties go to the lowest index (``predict``); the
    decision time is the first step with any spike (−1 when silent); the cumulative scores end
    at the final ones and never decrease (spikes); the TTFS vjp puts dL/dω · (T − t0) on the
    first spike (step 0, weight T, when silent)."""
    rng = np.random.default_rng(seed)
    s = (rng.random((T, B, N)) < p).astype(np.float64)
    if N > 1 and T > 1:  # force a simultaneous first spike of neurons 0 and 1 in sample 0
        s[:, 0, :2] = 0
        s[T // 2, 0, :2] = 1
    rate, ttfs = dec.rate(s), dec.ttfs(s)
    for b in range(B):
        for i in range(N):
            steps = np.flatnonzero(s[:, b, i])
            assert rate[b, i] == len(steps)
            assert ttfs[b, i] == (T - steps[0] if len(steps) else 0)
        for scores in (rate, ttfs):
            assert dec.predict(scores)[b] == min(np.flatnonzero(scores[b] == scores[b].max()))
        fired = np.flatnonzero(s[:, b].any(axis=1))
        assert dec.decision_times(s)[b] == (fired[0] if len(fired) else -1)
        assert dec.decision_times(s, origin=1)[b] == (fired[0] + 1 if len(fired) else -1)
    if N > 1 and T > 1:
        assert ttfs[0, 0] == ttfs[0, 1] == T - T // 2
    for method in ("rate", "ttfs", "membrane"):
        cum = dec.cumulative(s, method)
        np.testing.assert_array_equal(cum[-1], dec.decode(s, method))
        if method != "membrane":
            assert np.all(np.diff(cum, axis=0) >= 0)
    g = rng.standard_normal((B, N))
    vjp = decoder_vjp("ttfs", g, s)
    first = np.where(s.any(axis=0), s.argmax(axis=0), 0)
    want = np.zeros_like(s)
    for b in range(B):
        for i in range(N):
            want[first[b, i], b, i] = g[b, i] * (T - first[b, i])
    np.testing.assert_array_equal(vjp, want)


# --------------------------------------------------------------------------- input gradients
@settings(max_examples=example_count(30))
@given(st.sampled_from(["ttfs", "ratesyn_start", "ratesyn_end", "poisson", "current"]),
       st.sampled_from(PRESET_NAMES), st.integers(1, 6), st.integers(0, 2**32 - 1),
       st.sampled_from(["bptt", "hart", "rate"]))
def test_image_gradient_rules_at_silent_pixels(encoder, preset, T, seed, method):
    """The encoders' input-gradient rules (Ding 2025 "Attack methods") end to end through
    ``loss_and_grad`` on images holding exact 0 and 1 pixels: RateSyn / TTFS sum dL/d(seq) over
    the steps where the pixel spikes, so a pixel that emits no spike (x = 0 under the code's
    rules, RateSynS at x = 0 always) gets exactly zero; Poisson (straight-through) and current
    coding sum over every step."""
    rng = np.random.default_rng(seed)
    conv = get_convention(preset)
    net = Network.mlp([4, 5, 3], LIF(lam=0.5, theta=0.3), rng=rng, scale=2.0)
    x = np.array([[0.0, 1.0, 0.5, rng.random()], [1.0, 0.0, 0.0, 0.25]])
    labels = np.array([0, 2])
    r = loss_and_grad(net, x, labels, T=T, encoder=encoder, convention=conv, method=method,
                      rng=seed)
    g_seq, seq = r.grads.input, r.sequence
    if encoder in ("current", "poisson"):
        want = g_seq.sum(axis=0)
    else:
        want = (g_seq * (seq != 0)).sum(axis=0)
        silent = ~np.asarray(seq, dtype=bool).any(axis=0)
        assert np.all(r.image[silent] == 0)
        if encoder == "ratesyn_start":
            assert silent[x == 0].all()
        if conv.ttfs_rule == "code" and encoder != "ratesyn_start":
            assert silent[x == 0].all()
    np.testing.assert_array_equal(r.image, want)


@settings(max_examples=example_count(20))
@given(st.sampled_from(["rsc_fixed", "rsc_fresh"]), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_rsc_without_noise_is_current_coding_inside_the_clamp(encoder, T, seed):
    """RSC with σ = 0 encodes x itself (clamp(x + 0, 0, 1) = x), so at pixels strictly inside
    (0, 1) its exact input gradient through the clamp is current coding's; where the noisy
    value is clamped (σ > 0, x + ε outside [0, 1]) the gradient is zero."""
    rng = np.random.default_rng(seed)
    net = Network.mlp([4, 5, 3], LIF(lam=0.5, theta=0.3), rng=rng, scale=2.0)
    x = rng.uniform(0.05, 0.95, (2, 4))
    labels = np.array([1, 0])
    cur = loss_and_grad(net, x, labels, T=T, encoder="current")
    rsc = loss_and_grad(net, x, labels, T=T, encoder=encoder, sigma=0.0, rng=seed)
    np.testing.assert_array_equal(rsc.sequence, cur.sequence)
    np.testing.assert_array_equal(rsc.image, cur.image)
    # σ = 30: a step lands inside (0, 1) with probability ≤ 1/(30 √(2π)) = 0.013, so a pixel is
    # clamped at all T ≤ 5 steps with probability ≥ 0.93 and none of the 8 is with ≤ 3e-10
    # (σ = 3 left that at 0.5 per pixel under fresh draws: 1 in ~250 seeds had none, found by a
    # 1200-example run at stop 36)
    noisy = loss_and_grad(net, x, labels, T=T, encoder=encoder, sigma=30.0, rng=seed)
    clamped = ((noisy.sequence == 0) | (noisy.sequence == 1)).all(axis=0)
    assert clamped.any()
    assert np.all(noisy.image[clamped] == 0)


# --------------------------------------------------------------------------- losses
@settings(max_examples=example_count(40))
@given(st.integers(1, 3), st.integers(2, 5), st.integers(0, 2**32 - 1),
       st.sampled_from([1.0, 50.0, 1e4, 1e30]), st.sampled_from(["ce", "double_softmax",
                                                                   "scaled_ce"]))
def test_losses_with_extreme_logits_in_float32(B, N, seed, spread, variant):
    """Saturated logits in float32 (where exp overflows without the max shift): loss and
    gradient are finite, float32, and equal to the float64 computation on the same float32
    scores up to float32 rounding (relative 1e-5 of the value, absolute 1e-6 for the
    gradient, whose entries lie in [-1, 1]); a cross-entropy gradient row sums to 0."""
    rng = np.random.default_rng(seed)
    scores = (rng.standard_normal((B, N)) * spread).astype(np.float32)
    labels = rng.integers(0, N, B)
    loss32, g32 = ttfs_loss(scores, labels, variant)
    loss64, g64 = ttfs_loss(scores.astype(np.float64), labels, variant)
    assert g32.dtype == np.float32 and np.asarray(loss32).dtype == np.float32
    assert np.isfinite(loss32) and np.all(np.isfinite(g32))
    assert float(loss32) == pytest.approx(float(loss64), rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(g32, g64, rtol=1e-5, atol=1e-6)
    if variant == "ce":
        np.testing.assert_allclose(g64.sum(axis=1), 0.0, atol=1e-15)
        assert np.all(g64 >= -1.0 / B) and np.all(g64 <= 1.0 / B)


# float32 against float64 on a forward that is exact in both: the backward passes differ by
# float32 rounding only. Each entry is a sum of at most a few hundred products of factors of
# size O(1) (T ≤ 7 steps, ≤ 4 neurons, ≤ 3 layers), each with a relative error of a few float32
# ulps (2^-24 each), so 1e-4 of the array's largest entry bounds the difference with a wide
# margin and still catches any float32-only branch or a lost factor. The surrogates are the
# triangle (piecewise linear: exact on an exact membrane up to one rounding) and no sigmoid
# fallback: the sigmoid surrogate's σ(1 − σ) above threshold loses 1 − σ to cancellation in
# float32 (relative error ~6e-8 / e^{−ρ(m−θ)}: 7.8e-4 at m − θ = 1.875, ρ = 5; exactly 0 from
# m − θ ≈ 3.3), which is the formula's conditioning, not rounding of O(1) factors.
# An entry whose terms cancel (exactly 0 in exact arithmetic) keeps the rounding of its terms,
# not of the array's largest entry: the same 1e-4 also multiplies the tape's sum of the terms'
# magnitudes per entry (``grad(..., magnitudes=True)``; a few hundred roundings of 2^-24 are
# ~2e-5 of it).
RTOL_FLOAT32_BACKWARD = 1e-4


@settings(max_examples=example_count(40))
@given(corner_cases(), st.sampled_from(["bptt", "hart", "rga", "bptr", "rate", "tempbp"]),
       st.integers(0, 2**32 - 1))
def test_float32_backward_is_float64_backward_rounded(case, method, seed):
    """Where the forward is exact in float32 (the same spikes and potentials as float64), every
    gradient method in float32 returns float32 arrays equal to the float64 ones up to float32
    rounding (:data:`RTOL_FLOAT32_BACKWARD` of the array's largest entry and of each entry's
    terms' magnitudes on the tape)."""
    net, x, conv = case
    assume(_exact_forward(net, x, conv)[1][np.dtype(np.float32)])
    if method == "tempbp":
        spiking = [layer for layer in net.layers if layer.spiking]
        assume(spiking and all(isinstance(l.neuron, TraceLIF) for l in spiking))
    _check_float32_backward(net, x, conv, method, seed)


def test_float32_backward_of_an_exact_cancellation():
    """Regression (random-profile hunt of stop 29): under rga, dL/ds of the first layer's last
    neuron is 0.875·0.2·0.75·G − 0.75·0.2·0.875·G = 0 exactly; float64 returned −4.3e-20 and
    float32 −1.6e-10 in dL/dinput, which a tolerance scaled by the float64 array's largest entry
    (itself rounding noise) refused."""
    lif = LIF(lam=0.0, theta=0.25, reset="hard", v_rest=0.0, v_init=0.0)
    net = Network([
        Dense(np.array([[0.0], [0.0], [-0.75], [-0.125]]), lif,
              bias=np.array([0.0, 0.0, 0.25, 0.25])),
        Dense(np.array([[0.0, 0.0, 0.0, 0.875], [0.0, 0.0, 0.5, -0.75]]), lif,
              bias=np.array([-0.25, 0.125])),
        Dense(np.array([[0.75, 0.875]]), lif),
    ])
    x = np.zeros((7, 2, 1))
    x[:, 0, 0] = [0, 0, 0, 0.25, 0.25, 1, 1]
    assert _exact_forward(net, x, DEFAULT)[1][np.dtype(np.float32)]
    _check_float32_backward(net, x, DEFAULT, "rga", 0)


def _check_float32_backward(net, x, conv, method, seed):
    res64 = simulate(net, x, convention=conv, record=True)
    res32 = simulate(net, x.astype(np.float32), convention=conv, record=True)
    np.testing.assert_array_equal(res32.output, res64.output)
    g = np.random.default_rng(seed).standard_normal(res64.output.shape)
    kw = {"bptt": dict(surrogate=Triangle(0.75)), "hart": dict(surrogate=Triangle(1.0)),
          "tempbp": dict(fallback=False)}.get(method, {})
    b64 = backward(net, x, res64, g, method=method, **kw)
    b32 = backward(net, x.astype(np.float32), res32, g.astype(np.float32), method=method, **kw)
    tape_kw = {k: tape_surrogate(v) if k == "surrogate" else v for k, v in kw.items()}
    mag = _tape(net, x, conv, g, method, **tape_kw)[0]["magnitudes"]
    pairs = [("input", b32.input, b64.input, mag["input"])]
    pairs += [(f"W[{k}]", u, v, m) for k, (u, v, m) in
              enumerate(zip(b32.weights, b64.weights, mag["weights"]))]
    for field, name in (("biases", "b"), ("dlif_factors", "a")):
        pairs += [(f"{name}[{k}]", u, v, m) for k, (u, v, m) in
                  enumerate(zip(getattr(b32, field), getattr(b64, field), mag[field]))
                  if v is not None]
    for name, u, v, m in pairs:
        assert u.dtype == np.float32, name
        scale = np.max(np.abs(v)) if v.size else 0.0
        np.testing.assert_array_less(np.abs(u - v), RTOL_FLOAT32_BACKWARD * (scale + m) + 1e-30,
                                     err_msg=f"{method} {name}")


def test_simulate_reads_inputs_as_documented_regression():
    """Review (/tmp/rev_clock/findings.py): a nested list crashed with AttributeError; float16
    inputs were refused as "dtype=float16", an argument the caller never passed; a float32 run
    turned finite float64 inputs or weights past float32's range into inf and returned NaN."""
    net = Network((Dense(np.ones((1, 2)), LIF(lam=1.0, theta=1.0)),))
    x = np.ones((4, 1, 2))
    want = simulate(net, x).output
    np.testing.assert_array_equal(simulate(net, x.tolist()).output, want)
    half = simulate(net, x.astype(np.float16))
    assert half.output.dtype == np.float32
    np.testing.assert_array_equal(half.output, want)
    if hasattr(np, "float128"):
        with pytest.raises(TypeError, match=r"^inputs has dtype float128; simulate takes float16, "
                                        r"float32 or float64 inputs"):
            simulate(net, x.astype(np.float128))
    ro = Network((Dense(np.array([[1.0, -1.0]]), Readout()),))
    with pytest.raises(ValueError, match=r"^inputs holds a value of magnitude 1e\+39, past "
                                         r"float32's largest"):
        simulate(ro, np.full((2, 1, 2), 1e39), dtype=np.float32)
    np.testing.assert_array_equal(simulate(ro, np.full((2, 1, 2), 1e39)).output, 0.0)
    huge = Network((Dense(np.array([[1e39, -1e39]]), Readout()),))
    with pytest.raises(ValueError, match=r"^weight holds a value of magnitude 1e\+39, past "
                                         r"float32's largest"):
        simulate(huge, np.ones((2, 1, 2), np.float32))
    biased = Network((Dense(np.ones((1, 2)), LIF(theta=1e39), bias=np.array([1e39])),))
    with pytest.raises(ValueError, match=r"^layer 0's bias holds a value of magnitude 1e\+39"):
        simulate(biased, np.ones((2, 1, 2), np.float32))
    np.testing.assert_array_equal(simulate(huge, np.ones((2, 1, 2))).output, 0.0)
    high = Network((Dense(np.ones((1, 2)), LIF(theta=1e39)),))  # a neuron constant, no bias
    with pytest.raises(ValueError, match=r"^layer 0's theta holds a value of magnitude 1e\+39"):
        simulate(high, np.ones((2, 1, 2), np.float32))


def test_small_network_helpers_regression():
    from evsnn.clock.network import synaptic_trace_vjp

    with pytest.raises(ValueError, match=r"^scale=nan must be finite"):
        Network.mlp([3, 2], scale=np.nan)
    # an integer g: c = 0.5 was cast to 0 and every entry came out 0
    got = synaptic_trace_vjp(np.array([0, 0, 8]), 0.5)
    assert got.dtype == np.float64 and got.tolist() == [1.0, 2.0, 4.0]
