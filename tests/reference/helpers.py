"""Helpers and constants that several test files share, kept in one place.

Not kernel twins (``tests/test_kernel_twins.py`` looks only for ``_*_kernel`` names here).
"""

import dataclasses
import threading

import numpy as np
from hypothesis import assume, settings
from hypothesis import strategies as st

from certify.smoothing import gaussian, rsc_fixed, rsc_fresh
from evsnn.clock import Dense, Network
from evsnn.conventions import PRESETS, get_convention
from evsnn.exact import ExactDense, ExactNetwork
from evsnn.exact import simulate as exact_simulate
from evsnn.params import DLIF, IF, LIF, Readout, TraceLIF

# --------------------------------------------------------------------------- hypothesis
def example_count(n):
    """``n`` examples under the default (ci) profile's 40 per test, scaled with the loaded
    profile's count: the opt-in random profile (300) runs 7.5 times as many."""
    return max(1, n * settings.default.max_examples // 40)


# --------------------------------------------------------------------------- generated networks
KINDS = ("lif_hard", "lif_soft", "if", "trace_trace", "trace_spike", "dlif")


@st.composite
def cases(draw, kinds=KINDS, n_layers=(1, 3), T=(1, 12), allow_readout=True, delays=(0, 1)):
    """A dense network with an input sequence, upstream gradient and convention, as a dict
    (net, seq, conv, g_out, dyadic, rng): ``n_layers`` layers of the neuron ``kinds`` (optionally
    a Readout last), T in ``T``, every convention choice that changes the forward. *Dyadic* cases
    (short binary fractions) are exact in the simulator and the tape, so threshold ties occur;
    real ones may need :func:`no_near_ties` (tests/test_grad_vs_tape.py explains both)."""
    dyadic = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    L = draw(st.integers(*n_layers))
    T_ = draw(st.integers(*T))
    B = draw(st.integers(1, 3))
    sizes = [draw(st.integers(2, 5))] + [draw(st.integers(2, 4)) for _ in range(L)]
    conv = get_convention(draw(st.sampled_from(
        ["DEFAULT", "DING2025_PAPER", "DING2025_CODE", "HART_CODE", "STABLE_PAPER", "STABLE_CODE"]
    ))).with_(
        spike_test=draw(st.sampled_from([">=", ">"])), input_delay=draw(st.sampled_from(delays)),
        dlif_factor=draw(st.sampled_from(["leak", "input"])),
    )

    def num(lo, hi, q):  # a multiple of q in [lo, hi] (dyadic) or a real number
        return float(rng.integers(round(lo / q), round(hi / q) + 1) * q) if dyadic else float(
            rng.uniform(lo, hi))

    def lam():
        return float(rng.choice([0.0, 0.5, 0.75, 1.0])) if dyadic else float(rng.uniform(0, 1))

    layers = []
    readout = allow_readout and draw(st.booleans())
    for k in range(L):
        n_in, n_out = sizes[k], sizes[k + 1]
        theta = float(rng.choice([0.5, 1.0])) if dyadic else float(rng.uniform(0.3, 1.2))
        if readout and k == L - 1:
            neuron, kind = Readout(lam=lam(), v_init=num(-0.5, 0.5, 0.125)), "readout"
        else:
            kind = draw(st.sampled_from(kinds))
            v_rest, v_init = num(-0.25, 0.25, 0.125), num(-0.5, 0.5, 0.125)
            if kind in ("lif_hard", "lif_soft"):
                neuron = LIF(lam=lam(), theta=theta, reset=kind[4:], v_rest=v_rest, v_init=v_init)
            elif kind == "if":
                neuron = IF(theta=theta, v_init=v_init)
            elif kind == "dlif":
                neuron = DLIF(lam=lam(), theta=theta, reset=draw(st.sampled_from(["hard", "soft"])),
                              v_rest=v_rest, v_init=v_init)
            else:
                taus = [1.0, 2.0, 4.0] if dyadic else None
                tm = float(rng.choice(taus)) if dyadic else float(rng.uniform(1, 8))
                ts = float(rng.choice(taus)) if dyadic else float(rng.uniform(1, 8))
                neuron = TraceLIF(tau_mem_ms=tm, tau_syn_ms=ts, theta=theta, u0=v_rest,
                                  v_init=v_init, output=kind[6:])
        q = 0.125
        w = np.array([[num(-1.5, 1.5, q) for _ in range(n_in)] for _ in range(n_out)])
        w *= 1.0 if k == 0 else 1.5
        bias = None
        if draw(st.booleans()):
            bias = np.array([num(-0.25, 0.25, q) for _ in range(n_out)])
        factors = None
        if kind == "dlif":
            factors = np.array([num(0.5, 1.5, 0.25) for _ in range(T_ + draw(st.integers(0, 2)))])
        layers.append(Dense(w, neuron, bias=bias, dlif_factors=factors))
    net = Network(layers)
    if draw(st.booleans()):
        seq = (rng.random((T_, B, sizes[0])) < 0.6).astype(np.float64)
    else:
        seq = np.array([num(0, 1, 0.25) for _ in range(T_ * B * sizes[0])]).reshape(T_, B, -1)
    g_out = rng.standard_normal((T_, B, sizes[-1]))
    return dict(net=net, seq=seq, conv=conv, g_out=g_out, dyadic=dyadic, rng=rng)


def no_near_ties(net, seq, conv):
    """``assume`` that no spiking layer of ``net`` on ``seq`` has a potential within 1e-9 of its
    threshold: such a tie could be decided differently by the simulator's per-event sums and
    the tape's BLAS product."""
    from evsnn.clock import simulate

    for layer, rec in zip(net.layers, simulate(net, seq, convention=conv, record=True).layers):
        if rec.spikes is not None:
            assume(np.all(np.abs(rec.m - layer.neuron.theta) > 1e-9))


# --------------------------------------------------------------------------- conventions
PRESET_NAMES = sorted(PRESETS)
# the presets whose RateSyn / TTFS rules are the paper's (Ding 2025 Eq. 9-11)
PAPER_PRESETS = [n for n in PRESET_NAMES if get_convention(n).ratesyn_rule == "paper"]


# --------------------------------------------------------------------------- floats
def step_ulps(x, n, dtype):
    """``x`` moved ``|n|`` representable values of ``dtype`` toward 1 (n > 0) or toward 0
    (n < 0)."""
    for _ in range(abs(n)):
        x = np.nextafter(x, dtype(1 if n > 0 else 0), dtype=dtype)
    return x


# --------------------------------------------------------------------------- the reverse-mode tape
def tape_surrogate(s):
    """The tape's surrogate spec (``tests/reference/tape.py``) of an ``evsnn.grad`` surrogate."""
    from evsnn.grad import Sigmoid

    if isinstance(s, Sigmoid):
        return ("sigmoid", s.rho, s.rho if s.scale == "code" else 1.0)
    return ("triangle", s.gamma)


def assert_tape(got, want, what, magnitude=None):
    """An explicit backward pass against the tape: RTOL_TAPE relative and RTOL_TAPE times the
    array's largest entry absolute, plus, per entry, RTOL_SUM_ORDER times ``magnitude`` (the
    tape's ``grad(..., magnitudes=True)``: the sum of |term| over the entry's chain-rule terms,
    within a few hundred roundings of which any summation order lands). Without ``magnitude``,
    an entry whose exact value cancels to zero in an all-zero array must come out as zero."""
    from conftest import RTOL_SUM_ORDER, RTOL_TAPE

    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, the tape's {want.shape}"
    bound = RTOL_TAPE * (np.abs(want) + (np.max(np.abs(want)) if want.size else 0.0))
    if magnitude is not None:
        bound = bound + RTOL_SUM_ORDER * np.asarray(magnitude)
    assert_within(got, want, bound, f"{what} (against the tape)")


def assert_within(got, want, bound, what):
    """``|got - want| <= bound`` entry by entry (``bound`` broadcast to the shape); equal
    infinities and NaN against NaN count as equal. The message names the worst entry."""
    got, want = np.asarray(got), np.asarray(want)
    with np.errstate(invalid="ignore"):  # inf − inf: equal infinities are compared below
        diff = np.abs(got - want)
    bad = ~(diff <= bound) & ~(got == want) & ~(np.isnan(got) & np.isnan(want))
    if bad.any():
        err = np.where(bad, np.nan_to_num(diff, nan=np.inf), -np.inf)
        k = np.unravel_index(np.argmax(err), want.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {want.size} entries differ by more than the bound; "
            f"the worst at {k}: got {got[k]!r}, want {want[k]!r}, "
            f"bound {np.broadcast_to(bound, want.shape)[k]:.3e}"
        )


def assert_grads_equal_tape(got, ref, what=""):
    """Every gradient of a clock-mode ``backward`` result (input, and per layer weights, biases
    and DLIF factors where the tape has them) against the tape's ``network_gradients``, each
    with the tape's magnitudes as its rounding scale."""
    pre = f"{what}: " if what else ""
    mag = ref["magnitudes"]
    assert_tape(got.input, ref["input"], f"{pre}dL/dinput", mag["input"])
    for k in range(len(ref["weights"])):
        assert_tape(got.weights[k], ref["weights"][k], f"{pre}dL/dW[{k}]", mag["weights"][k])
        if ref["biases"][k] is not None:
            assert_tape(got.biases[k], ref["biases"][k], f"{pre}dL/db[{k}]", mag["biases"][k])
        if ref["dlif_factors"][k] is not None:
            assert_tape(got.dlif_factors[k], ref["dlif_factors"][k], f"{pre}dL/da[{k}]",
                        mag["dlif_factors"][k])


def run_tape(case, mode, **opts):
    """Tape forward + backward of Σ g·output for ``case`` (a dict: net, seq, conv, g_out,
    dyadic and optionally fixed, as test_grad_vs_tape draws them); checks the forward against
    ``simulate``."""
    from conftest import RTOL_INDEPENDENT

    from evsnn.clock import simulate
    from reference import tape as tp

    net, seq, conv = case["net"], case["seq"], case["conv"]
    res = simulate(net, seq, convention=conv, record=True)
    if not case["dyadic"]:
        for layer, rec in zip(net.layers, res.layers):
            if rec.spikes is not None:
                far = np.all(np.abs(rec.m - layer.neuron.theta) > 1e-9)
                if case.get("fixed"):
                    assert far, "a fixed example must not have near ties"
                else:
                    assume(far)
    ref, recs, out = tp.network_gradients(net, seq, conv, case["g_out"], mode=mode, **opts)
    # the tape's forward is the simulator's forward
    for rec, vals in zip(res.layers, recs):
        if rec.spikes is not None:
            np.testing.assert_array_equal(vals["s"], rec.spikes)
        np.testing.assert_allclose(vals["m"], rec.m, rtol=RTOL_INDEPENDENT, atol=RTOL_INDEPENDENT)
    np.testing.assert_allclose(np.stack([o.value for o in out]), res.output, rtol=RTOL_INDEPENDENT,
                               atol=RTOL_INDEPENDENT)
    return res, ref


def compare(case, res, ref, **kw):
    """``backward`` of a :func:`run_tape` case against the tape's gradients ``ref``."""
    from evsnn.grad import backward

    got = backward(case["net"], case["seq"], res, case["g_out"], **kw)
    assert_grads_equal_tape(got, ref)
    return got


def check(case, mode, **kw):
    """Forward on the tape (``reference.conv_tape``) equals simulate_conv; backward_conv equals
    the tape's gradients. ``case``: a dict (net, seq, conv, g_out, dyadic) as
    test_conv_grad_vs_tape draws them."""
    from conftest import RTOL_INDEPENDENT

    from evsnn.clock.conv import simulate_conv
    from evsnn.grad import Sigmoid, Triangle
    from evsnn.grad.conv import backward_conv
    from reference import tape as tp
    from reference.conv_tape import ConvTape

    net, seq, conv = case["net"], case["seq"], case["conv"]
    res = simulate_conv(net, seq, convention=conv, record=True)
    theta = {p: layer.neuron.kernel_args().theta for p, layer in net.neuron_layers()}
    if not case["dyadic"]:
        assume(all(np.all(np.abs(rec.m - theta[p]) > 1e-9)
                   for p, rec in zip(res.names, res.layers) if rec.spikes is not None))
    if mode in ("bptt", "hart") and "surrogate" not in kw:  # backward_conv's defaults
        kw["surrogate"] = Triangle(1.0) if mode == "hart" else Sigmoid(5.0, "code")
    tape_opts = {k: v for k, v in kw.items() if k != "surrogate"}
    if "surrogate" in kw:
        tape_opts["surrogate"] = tape_surrogate(kw["surrogate"])
    built = ConvTape(net, conv, mode=mode, **tape_opts)
    x = tp.leaf(seq)
    out = built.run(x)
    for path, rec in zip(res.names, res.layers):
        vals = built.records[path]
        T, B = rec.m.shape[:2]
        if rec.spikes is not None:
            np.testing.assert_array_equal(vals["s"], rec.spikes.reshape(T, B, -1), err_msg=path)
        np.testing.assert_allclose(vals["m"], rec.m.reshape(T, B, -1), rtol=RTOL_INDEPENDENT,
                                   atol=RTOL_INDEPENDENT, err_msg=path)
    np.testing.assert_allclose(np.stack([o.value for o in out]), res.output,
                               rtol=RTOL_INDEPENDENT, atol=RTOL_INDEPENDENT)
    loss = tp.total(tp.mul(tp.stack(out), case["g_out"]))
    keys = list(built.leaves)
    leaves = [x] + [built.leaves[k] for k in keys]
    want, mag = tp.grad(loss, leaves), tp.grad(loss, leaves, magnitudes=True)
    got = backward_conv(net, seq, res, case["g_out"], method=mode, **kw)
    assert_tape(got.input, want[0], "dL/dinput", mag[0])
    for (path, name), w, m in zip(keys, want[1:], mag[1:]):
        assert_tape(got.params[path][name], w, f"dL/d{path}.{name}", m)
    return got


@st.composite
def tempbp_options(draw):
    """Every Temp-BP option of ``backward``: clamp, synaptic kernel (the trace's own, or given
    weights shorter or longer than T), fallback on / off with its level, steepness and scale,
    intra-neuron term."""
    opts = dict(intra=draw(st.booleans()), factor_clamp=draw(st.sampled_from([2.0, 8.0, np.inf])),
                kernel=draw(st.sampled_from(["trace", (0.5,), (0.3, -0.2, 0.1), tuple(
                    0.4 * 0.7 ** np.arange(13))])))
    if draw(st.booleans()):
        opts.update(fallback=True, fallback_level=draw(st.sampled_from([0.25, 1.5])),
                    fallback_rho=draw(st.sampled_from([0.2, 5.0])),
                    fallback_scale=draw(st.sampled_from(["code", "paper"])))
    else:
        opts.update(fallback=False)
    return opts


# --------------------------------------------------------------------------- finite differences
H = 1e-6  # central-difference step (see RTOL_FINITE_DIFF in conftest)
# steepness of the smooth spike σ(ρ(m − θ)) (``smooth_rho``) and of the matching surrogate
RHO = 3.0


def assert_finite_differences(an, f, value, rng, n_coords):
    """The analytic gradient ``an`` of the scalar ``f`` at ``value`` against central differences:
    along a random direction, relative to ``|an| |d|`` (a directional derivative's natural scale,
    Cauchy-Schwarz), and at ``n_coords`` random coordinates, relative to their own size."""
    from conftest import RTOL_FINITE_DIFF

    d = rng.standard_normal(value.shape)
    fd = (f(value + H * d) - f(value - H * d)) / (2 * H)
    dd = float((an * d).sum())
    assert abs(fd - dd) <= RTOL_FINITE_DIFF * np.linalg.norm(an) * np.linalg.norm(d), (fd, dd)
    for _ in range(n_coords):
        idx = tuple(rng.integers(0, s) for s in value.shape)
        e = np.zeros(value.shape)
        e[idx] = 1.0
        fd = (f(value + H * e) - f(value - H * e)) / (2 * H)
        assert abs(fd - an[idx]) <= RTOL_FINITE_DIFF * max(abs(an[idx]), 1e-3), (idx, fd, an[idx])


# Steps of settled_difference, largest first; of those whose rounding fits (see there) the
# smallest SETTLE_TRIES are tried, so an objective of small magnitude uses 1e-6 … 3e-8.
SETTLE_STEPS = (1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7, 1e-7, 3e-8)
SETTLE_TRIES = 4
# One evaluation of a finite-difference objective (a sum of a few spike times or readout
# maxima times random coefficients) is taken to be within this many ulps of its ``scale``, the
# sum of its terms' magnitudes: a few roundings per term and the sum's own.
ROUND_ULPS = 8


def settled_difference(objective, tol, scale=0.0, noise=0.0):
    """Richardson's difference quotient of ``objective(step)`` at 0, at the first step whose
    value holds (to ``tol / 2``) at the next; None when no two agree or ``objective`` returns
    None (its own sign that the step crossed a kink).

    (4 D(h/2) - D(h)) / 3 cancels the h^2 term of the central difference D, which near an
    asymptotic crossing (slope ~1e-4 at the spike) exceeds RTOL_FINITE_DIFF at h = 1e-6. Even so
    a random run found 146 + 11956 chained spikes (exponential synapses, tau_m 0.05 ms) whose
    value at h = 1e-6 was 797.264, at 3e-7 797.304, at 1e-7 and 3e-8 797.29882 and 797.29877,
    where the gradient gives 797.29883: the estimate counts once it settles.

    Rounding: with each evaluation within ``ROUND_ULPS`` ulps of ``scale``, the quotient at step
    h is within ``3 ROUND_ULPS ε scale / h`` of the exact one; steps where that exceeds
    ``tol / 4`` are not tried (of the rest, the smallest SETTLE_TRIES). A 1,200-example run
    found a readout maximum objective of size 3.4 with gradient 2.06e-3 (tol 3.3e-9) where the
    quotients at 1e-7 and 3e-8 agreed on ulp noise, 3.4e-9 off; from 1e-4 they agree with the
    gradient to 3e-12. ``noise`` is rounding that the ulps of ``scale`` do not show, added to
    them (a slow crossing's spike time: see ``threshold_rounding``)."""

    def richardson(h):
        vals = [objective(s) for s in (h / 2, -h / 2, h, -h)]
        if any(v is None for v in vals):
            return None
        return (4 * (vals[0] - vals[1]) / h - (vals[2] - vals[3]) / (2 * h)) / 3

    noise = 3 * (ROUND_ULPS * np.finfo(np.float64).eps * scale + noise)
    steps = [h for h in SETTLE_STEPS if noise / h <= tol / 4][-SETTLE_TRIES:]
    if len(steps) < 2:
        return None
    fd = richardson(steps[0])
    for h in steps[1:]:
        finer = richardson(h)
        if fd is None or finer is None:
            return None
        if abs(finer - fd) <= tol / 2:
            return fd
        fd = finer
    return None


def threshold_rounding(net, inputs, res, coef, c_max=None):
    """How far ``Σ coef·times (+ Σ c_max·readout_max)`` of the exact-mode result ``res`` moves
    when every layer's threshold moves by ``ROUND_ULPS`` ulps of its membrane's scale, either
    way (the larger move); None when that raises a flag or changes the spike pattern.

    A spike time carries the rounding of V where V crosses theta, about ulp(theta) / |V'| in
    time, which at a slow crossing far exceeds the ulps of the time itself; moving theta shows
    it. A 1,200-example run (stop 41) found V' = 0.0078 / ms at spikes 1.3e-10 ms after their
    input: the times moved in steps of 1.4e-14 ms, a weight step of 1e-7 left the objective
    unchanged, and settled_difference returned 0 against a gradient of 2.0e-8."""
    moved = 0.0
    for sign in (1.0, -1.0):
        layers = []
        for layer in net.layers:
            nrn = layer.neuron
            shift = sign * ROUND_ULPS * np.finfo(np.float64).eps * max(abs(nrn.theta),
                                                                       abs(nrn.u0), 1.0)
            nrn = dataclasses.replace(nrn, theta=nrn.theta + shift)
            layers.append(ExactDense(layer.weight, nrn, layer.readout))
        r = exact_simulate(ExactNetwork(layers), inputs, t_end_ms=res.t_end_ms)
        if np.any(r.flags) or not all(np.array_equal(a.neurons, b.neurons)
                                      for a, b in zip(r.layers, res.layers)):
            return None
        move = sum(float(np.abs(c) @ np.abs(a.times - b.times))
                   for c, a, b in zip(coef, r.layers, res.layers))
        if c_max is not None:
            move += float(np.sum(np.abs(c_max * (r.readout_max - res.readout_max))))
        moved = max(moved, move)
    return moved


def central_difference_rounding(value):
    """A bound on the rounding of one central difference at step ``H`` of an objective of size
    ``|value|`` (each evaluation within ``ROUND_ULPS`` ulps of it): a gradient entry far below
    the objective's size is known only to this, whatever RTOL_FINITE_DIFF says. A 1,200-example
    run (stop 42) compared an MS-MPPD derivative of 2.5e-8 with an objective of 0.48: the
    difference was 1.7e-11, below this bound (8.5e-10), 670 times the relative tolerance."""
    return ROUND_ULPS * np.finfo(np.float64).eps * abs(value) / H


def central_differences(f, arr):
    """Central differences of the scalar ``f()`` with respect to every entry of ``arr``, which
    ``f`` reads (each entry is moved by ±H in place and restored)."""
    out = np.zeros(arr.shape)
    for idx in np.ndindex(arr.shape):
        keep = arr[idx]
        arr[idx] = keep + H
        up = f()
        arr[idx] = keep - H
        down = f()
        arr[idx] = keep
        out[idx] = (up - down) / (2 * H)
    return out


# --------------------------------------------------------------------------- the command line
def one_line_error(capsys):
    """The captured stderr of a refused ``evsnn`` command: one line, no traceback."""
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


# --------------------------------------------------------------------------- saved files
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def rewrite_npz(path, mutate_meta=None, mutate_arrays=None):
    """Rewrite an ``evsnn.io`` file with its JSON description and/or its arrays changed in place
    by the given callables (tampering, for the loader's checks)."""
    import json

    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"][()]))
        arrays = {k: z[k] for k in z.files if k != "meta"}
    if mutate_meta:
        mutate_meta(meta)
    if mutate_arrays:
        mutate_arrays(arrays)
    with open(path, "wb") as fh:
        np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)


# --------------------------------------------------------------------------- randomized smoothing
# scipy's binomtest(...).proportion_ci(method="exact") solves for the Clopper-Pearson bound with
# brentq at its default absolute tolerance xtol = 2e-12, so it agrees with the code's beta
# quantile (~1e-14) only to that.
ATOL_BRENTQ = 2e-12


NOISE_FACTORIES = {"gaussian": gaussian, "rsc_fixed": rsc_fixed, "rsc_fresh": rsc_fresh}


def quantile_classifier(thresholds):
    """On x = 0, σ = 1, unclamped Gaussian noise, one pixel: class k when ε lies in
    [t_{k-1}, t_k) with t = Φ⁻¹(cumulative probabilities), so P(class k) is known exactly
    (the number of thresholds at or below the first input value of step 0)."""
    thresholds = np.asarray(thresholds, dtype=float)

    def classify(seq):
        return np.searchsorted(thresholds, seq[0, :, 0], side="right").astype(np.int64)

    return classify


# --------------------------------------------------------------------------- files
def read_in_thread(open_reader):
    """Start a thread that opens a reader (blocking until a writer comes) and reads to EOF;
    returns ``finish()``, which joins it (10 s at most) and returns the bytes read."""
    got = []

    def read():
        with open_reader() as fh:
            got.append(fh.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()

    def finish():
        thread.join(10)
        assert not thread.is_alive(), "nothing was written to the reader"
        return got[0]
    return finish
