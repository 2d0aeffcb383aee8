"""The gradient grader (evsnn.grad.grade): known answers, the clock <-> exact mapping in the limit
Δt -> 0, flags, a real run of every method, rendering, errors; and the convergence plot."""

import math

import numpy as np
import pytest
from reference.helpers import PNG_MAGIC

from evsnn.ann import ANN
from evsnn.exact import ExactDense, ExactNetwork, ExactNeuron, encoders, loss_and_grad
from evsnn.exact.convergence import convergence
from evsnn.grad import GradeResult, GradientEstimate, Sigmoid, Triangle, compare_gradients, grade
from evsnn.grad.cba import ann_gradient
from evsnn.grad.grade import GRADE_METHODS

# Cosine of a gradient with itself or its negative: one dot product and two norms of ~100
# float64 numbers, a few ulps from +-1.
TOL_SELF = 1e-12
# Euler at Δt = 0.001 ms against the exact readout (tau = 10 ms): the measured relative error of
# the readout gradients is 2.2e-4 (first order: 2.2e-2 at Δt = 0.1, 2.2e-3 at 0.01); 1e-3 bounds
# it with margin while staying far below the O(1) errors of a wrong weight scale.
TOL_EULER_1US = 1e-3

def _alpha_net(seed=0, scale=2.5, readout=False, tau_syn=10.0):
    rng = np.random.default_rng(seed)
    syn = "alpha" if tau_syn == 10.0 else "exponential"
    nrn = ExactNeuron("lif", syn, tau_mem_ms=10.0, tau_syn_ms=tau_syn)
    w1 = rng.uniform(0.2, 1.0, (6, 5)) * scale
    w2 = rng.uniform(0.3, 1.0, (3, 6)) * scale
    return ExactNetwork([ExactDense(w1, nrn), ExactDense(w2, nrn, readout=readout)]), rng


@pytest.fixture(scope="module")
def real_run():
    # Ding 2025 Table 1 neuron (LIF, alpha synapse, tau = 10 ms), TTFS input, first-spike
    # cross-entropy; weights chosen so that every output neuron of every sample fires (no flags)
    net, rng = _alpha_net()
    x = rng.uniform(0.2, 0.9, (8, 5))
    y = rng.integers(0, 3, 8)

    def flipped(ctx):
        return GradientEstimate(tuple(-w for w in ctx.exact.weights), -ctx.exact.x)

    def cba(ctx):
        # the CBA ("ann") baseline: a ReLU ANN with the clock network's weights as the source;
        # its weight gradients are w.r.t. the clock weights, hence ctx.from_clock
        r = ann_gradient(ANN([l.weight for l in ctx.clock_network.layers]), ctx.x, ctx.labels)
        return ctx.from_clock(r.grads.weights), r.grads.input

    g = grade(net, x, y, dt_ms=0.1, t_enc_ms=10.0, t_end_ms=20.0,
              extra={"exact again": lambda ctx: ctx.exact, "flipped": flipped, "ann": cba,
                     "bptt detached": lambda ctx: ctx.clock_gradient(
                         "bptt", surrogate=Sigmoid(5.0), detach_reset=True)})
    return net, x, y, g


# --------------------------------------------------------------------------- known answers
def test_compare_gradients_known_answers():
    r = np.array([3.0, -1.0, 0.5, 0.0])
    same = compare_gradients(r, r)
    assert same.cosine == pytest.approx(1.0, abs=TOL_SELF)
    assert (same.sign_agreement, same.zero_fraction, same.rel_error) == (1.0, 0.25, 0.0)
    flip = compare_gradients(-r, r)
    assert flip.cosine == pytest.approx(-1.0, abs=TOL_SELF)
    assert flip.sign_agreement == 0.0 and flip.rel_error == 2.0
    # scaled copy: cosine 1, sign 1, rel. error |c - 1|
    half = compare_gradients(0.5 * r, r)
    assert half.cosine == pytest.approx(1.0, abs=TOL_SELF) and half.rel_error == 0.5
    # orthogonal: cosine 0 (by hand: <(1,0),(0,1)> = 0), zero gradient estimate: cosine n/a
    assert compare_gradients([1.0, 0.0], [0.0, 1.0]).cosine == 0.0
    z = compare_gradients(np.zeros(4), r)
    assert math.isnan(z.cosine) and z.zero_fraction == 1.0 and z.rel_error == 1.0
    # a zero reference (count decoding): no direction to agree with
    zr = compare_gradients(r, np.zeros(4))
    assert math.isnan(zr.cosine) and math.isnan(zr.sign_agreement) and zr.rel_error == math.inf
    assert compare_gradients(np.zeros(2), np.zeros(2)).rel_error == 0.0


def test_exact_against_itself_and_flipped(real_run):
    net, x, y, g = real_run
    assert g.blocks == ("W[0]", "W[1]", "x")
    for name in ("exact", "exact again"):
        row = g.row(name)
        np.testing.assert_allclose(row.cosine, 1.0, atol=TOL_SELF)
        np.testing.assert_array_equal(row.sign_agreement, 1.0)
        np.testing.assert_array_equal(row.rel_error, 0.0)
    flip = g.row("flipped")
    np.testing.assert_allclose(flip.cosine, -1.0, atol=TOL_SELF)
    np.testing.assert_array_equal(flip.sign_agreement, 0.0)
    np.testing.assert_allclose(flip.rel_error, 2.0, rtol=TOL_SELF)
    # the reference is exact mode's own loss_and_grad on the same inputs
    ex = loss_and_grad(net, encoders.ttfs(x, 10.0), y, t_end_ms=20.0)
    for w_grade, w_ex in zip(g.row("exact").gradient.weights, ex.weights):
        np.testing.assert_array_equal(w_grade, w_ex)
    np.testing.assert_array_equal(g.row("exact").gradient.x, ex.x)


def test_a_method_against_itself_is_perfect():
    net, rng = _alpha_net()
    x = rng.uniform(0.2, 0.9, (4, 5))
    y = rng.integers(0, 3, 4)
    ref = "bptt triangle(γ=1)"
    g = grade(net, x, y, dt_ms=0.5, t_enc_ms=10.0, t_end_ms=20.0, methods=["bptt", "hart"],
              surrogates=[Triangle(1.0), Sigmoid(5.0)], reference=ref)
    row = g.row(ref)
    np.testing.assert_allclose(row.cosine, 1.0, atol=TOL_SELF)
    np.testing.assert_array_equal(row.rel_error, 0.0)
    # and another method is not (HART prunes the temporal terms bptt keeps)
    assert np.all(g.row("hart γ=1").rel_error > 0)


# --------------------------------------------------------------------------- the mapping
@pytest.mark.parametrize("case", ["lif_delta_current", "lif_exponential_hidden",
                                  "lif_exponential_readout_tau", "if_poisson"])
def test_readout_gradients_converge_to_exact_for_every_method(case):
    """A non-spiking readout is linear in its weights and every clock method differentiates it
    exactly, so each method's readout gradient is the gradient of the Euler discretisation and
    must converge to exact mode's as Δt -> 0, including the norm: this pins down the weight
    factors of the mapping (Δt R / tau_m for current input; R tau_s / tau_m = 0.5 behind an
    exponential-synapse layer; Δt / C for input events into an IF exponential synapse) and,
    with a readout tau_s (2 ms) unlike the hidden layer's (5 ms), that the hidden trace decays
    with the readout's tau_s (with its own, the error stays near 0.5 as Δt -> 0)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.9, (5, 4))
    y = np.array([0, 1, 2, 0, 1])
    # bptt x3, tempbp (a readout-only net counts as trace-applicable), hart x3, rga/bptr/rate, mixed
    encoder, t_end, n_rows = "current", 10.0, 3 + 1 + 3 + 3 + 1
    if case.startswith("lif_exponential"):
        nrn = ExactNeuron("lif", "exponential", tau_mem_ms=10.0, tau_syn_ms=5.0)
        ro = nrn
        if case == "lif_exponential_readout_tau":
            ro = ExactNeuron("lif", "exponential", tau_mem_ms=10.0, tau_syn_ms=2.0)
        # positive readout weights: see the note on kink maxima in the final report of issue 4
        net = ExactNetwork([ExactDense(rng.uniform(0.5, 2.5, (6, 4)), nrn),
                            ExactDense(rng.uniform(0.05, 1.0, (3, 6)), ro, readout=True)])
        blocks = [1]  # the hidden layer's gradient is a surrogate: not convergent
    elif case == "lif_delta_current":
        nrn = ExactNeuron("lif", "delta", tau_mem_ms=10.0)
        net = ExactNetwork([ExactDense(rng.uniform(-1, 1, (3, 4)), nrn, readout=True)])
        blocks = [0, 1]  # W[0] and x
    else:
        nrn = ExactNeuron("if", "exponential", tau_syn_ms=5.0)
        net = ExactNetwork([ExactDense(rng.uniform(0.2, 1, (3, 4)), nrn, readout=True)])
        encoder, t_end = "poisson", 20.0
        blocks = [0]  # x: the straight-through rule is not a derivative of the Euler network
    errs = []
    for dt in (0.1, 0.001):
        g = grade(net, x, y, dt_ms=dt, t_enc_ms=10.0, t_end_ms=t_end, encoder=encoder,
                  decoder="max_membrane", rng=3)
        assert not g.flags.any()
        rows = [r for r in g.rows if r.name != "exact" and not r.note]
        assert len(rows) == n_rows
        errs.append(max(float(r.rel_error[k]) for r in rows for k in blocks))
    assert g.counts_match.all()  # at Δt = 0.001 the hidden spike pattern is exact mode's
    assert errs[1] < TOL_EULER_1US
    assert errs[1] < errs[0] / 10  # first order: 100x smaller step, >= 10x smaller error


def test_first_layer_trace_input_gradient_uses_the_filter_adjoint():
    # with an alpha synapse the clock's first-layer input is the trace a[n] = d a[n-1] + s[n];
    # the pixel gradient must equal the TTFS rule applied to the raster gradient W^T g pulled
    # back through that filter (computed here by brute force: g_s[t] = sum_k>=t d^(k-t) g_a[k])
    net, rng = _alpha_net()
    x = rng.uniform(0.2, 0.9, (3, 5))
    y = rng.integers(0, 3, 3)
    seen = {}

    def probe(ctx):
        gr = ctx.clock_gradient("bptt")
        from evsnn.grad import backward

        g = backward(ctx.clock_network, ctx.sequence, ctx.clock_result, ctx.g_output,
                     method="bptt")
        d = 1.0 - ctx.dt_ms / 10.0
        T = g.input.shape[0]
        g_s = np.array([sum(d ** (k - t) * g.input[k] for k in range(t, T)) for t in range(T)])
        seen["expected"] = (g_s * (ctx.raster != 0)).sum(axis=0)
        seen["got"] = gr.x
        return gr

    grade(net, x, y, dt_ms=0.5, t_enc_ms=10.0, t_end_ms=20.0, methods=[],
          extra={"probe": probe}, flagged="report")
    np.testing.assert_allclose(seen["got"], seen["expected"], rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- flags
def test_flagged_samples_are_excluded_or_reported():
    net, rng = _alpha_net()
    x = rng.uniform(0.2, 0.9, (6, 5))
    x[2] = 0.0  # all inputs at t_enc = 10: no output spike by t_end = 12 -> flagged
    y = rng.integers(0, 3, 6)
    g = grade(net, x, y, dt_ms=0.5, t_enc_ms=10.0, t_end_ms=12.0, methods=["rate"])
    assert g.flags[2] != 0
    np.testing.assert_array_equal(g.used, g.flags == 0)
    assert 0 < g.used.sum() < 6
    # the graded exact gradient is the one of the unflagged samples alone
    keep = g.flags == 0
    ex = loss_and_grad(net, encoders.ttfs(x[keep], 10.0), y[keep], t_end_ms=12.0)
    np.testing.assert_array_equal(g.row("exact").gradient.x, ex.x)
    assert g.row("rate").x_cosine_by_sample.shape == (int(keep.sum()),)
    rep = grade(net, x, y, dt_ms=0.5, t_enc_ms=10.0, t_end_ms=12.0, methods=["rate"],
                flagged="report")
    assert rep.used.all() and np.array_equal(rep.flags, g.flags)
    assert "flagged by exact mode" in rep.table()


def test_count_decoder_exact_gradient_is_zero_and_the_grade_says_so():
    net, rng = _alpha_net()
    x = rng.uniform(0.2, 0.9, (4, 5))
    y = rng.integers(0, 3, 4)
    g = grade(net, x, y, dt_ms=0.5, t_enc_ms=10.0, t_end_ms=20.0, decoder="count",
              methods=["bptt"], surrogates=[Sigmoid(5.0)])
    row = g.row("bptt sigmoid(ρ=5, code)")
    assert np.isnan(row.cosine).all() and np.isnan(row.sign_agreement).all()
    assert np.all(row.rel_error == np.inf)  # a nonzero surrogate against a zero true gradient
    assert np.all(g.row("exact").zero_fraction == 1.0)


def test_tempbp_is_not_applicable_without_synaptic_traces():
    nrn = ExactNeuron("lif", "delta", tau_mem_ms=10.0)
    net = ExactNetwork([ExactDense([[0.8, 0.6], [0.5, 0.9]], nrn)])
    g = grade(net, [[0.9, 0.7]], [0], dt_ms=0.5, t_enc_ms=10.0, t_end_ms=20.0,
              methods=["tempbp", "rate"])
    assert "not applicable" in g.row("tempbp").note and g.row("tempbp").gradient is None
    assert "not applicable" in g.table()
    # delta synapses: a spike happens at the input event that triggers it, so its time does not
    # depend on any weight -- the exact weight gradient is zero
    assert np.all(g.row("exact").zero_fraction[0] == 1.0)


# --------------------------------------------------------------------------- real run
def test_real_run_gives_finite_numbers_for_every_method(real_run, tmp_path):
    net, x, y, g = real_run
    names = [r.name for r in g.rows]
    for m in GRADE_METHODS:
        assert any(n == m or n.startswith(m + " ") for n in names), m
    # exact, bptt x3, tempbp, hart x3, rga/bptr/rate, mixed, extra x4 (incl. the CBA "ann")
    assert len(names) == 1 + 3 + 1 + 3 + 3 + 1 + 4 and "ann" in names
    assert g.used.all() and not g.flags.any()
    for r in g.rows:
        assert r.note == ""
        for arr in (r.cosine, r.sign_agreement, r.zero_fraction, r.rel_error,
                    r.x_cosine_by_sample):
            assert np.all(np.isfinite(arr)), (r.name, arr)
        assert np.all((-1 <= r.cosine) & (r.cosine <= 1))
    # the clock loss is the exact loss up to the O(Δt) discretisation
    assert abs(g.clock_loss - g.exact_loss) < 0.05
    table = g.table()
    assert table.count("\n| ") == len(g.rows) * len(g.blocks) + 1  # header + one per (row, block)
    for n in names:
        assert f"| {n} |" in table
    path = g.plot(tmp_path / "grade.png")
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000
    assert isinstance(g, GradeResult)


def test_convergence_plot_is_written(tmp_path):
    rng = np.random.default_rng(1)
    nrn = ExactNeuron("lif", "delta", tau_mem_ms=10.0)
    net = ExactNetwork([ExactDense(rng.uniform(0.2, 1.0, (4, 5)) * 0.9, nrn),
                        ExactDense(rng.uniform(0.3, 1.0, (3, 4)) * 0.9, nrn)])
    data = convergence(net, encoders.ttfs(rng.uniform(0.2, 0.9, (2, 5)), 10.0), t_end_ms=10.0)
    # bench/RESULTS_exact.md, delta / ttfs row: counts differ at Δt = 1, order 1.033
    assert data.counts_match.tolist() == [False, True, True, True]
    path = data.plot(tmp_path / "convergence.png")
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000


# --------------------------------------------------------------------------- errors
def _small():
    nrn = ExactNeuron("lif", "alpha", tau_mem_ms=10.0, tau_syn_ms=10.0)
    net = ExactNetwork([ExactDense([[2.0, 2.5], [2.5, 2.0]], nrn)])
    return net, np.array([[0.9, 0.7]]), np.array([0])


@pytest.mark.parametrize("kw, exc, match", [
    (dict(network="net"), TypeError, "network must be an evsnn.exact.ExactNetwork"),
    (dict(x=np.zeros((1, 3))), ValueError, r"x must be images \[B, 2\]"),
    (dict(dt_ms="1"), TypeError, "dt_ms must be a real number"),
    (dict(dt_ms=-1.0), ValueError, r"dt_ms=-1.0 must be finite and > 0"),
    (dict(t_enc_ms=math.inf), ValueError, r"t_enc_ms=inf must be finite and > 0"),
    (dict(mixed_beta=math.nan), ValueError, r"mixed_beta=nan must be finite$"),
    (dict(dt_ms=0.3), ValueError, "is not a whole number of steps"),
    (dict(encoder="morse"), ValueError, "encoder='morse' is not an exact-mode encoder"),
    (dict(decoder="vote"), ValueError, "decoder='vote' is not a decoder"),
    (dict(methods=["stbp"]), ValueError, r"methods \['stbp'\] are not clock gradient methods"),
    (dict(surrogates=["sigmoid"]), TypeError, "surrogates must hold"),
    (dict(hart_gammas=[-1.0]), ValueError, "gamma=-1.0 must be finite and > 0"),
    (dict(mixed_beta=1.5), ValueError, r"mixed_beta=1.5 must lie in \[0, 1\]"),
    (dict(extra=[1]), TypeError, "extra must be a mapping"),
    (dict(extra={"ann": 3}), TypeError, r"extra\['ann'\] must map a str name to a callable"),
    (dict(extra={"rate": lambda c: c.exact}), ValueError, r"extra names \['rate'\] clash"),
    (dict(flagged="drop"), ValueError, "flagged='drop' must be 'exclude' or 'report'"),
    (dict(reference="bptt"), ValueError, "reference='bptt' names no row"),
    (dict(extra={"ann": lambda c: 1.0}), TypeError, r"extra\['ann'\] returned float"),
    (dict(extra={"ann": lambda c: ((None, None), None)}), ValueError, "2 weight gradients for 1"),
    (dict(extra={"ann": lambda c: ((np.zeros(3),), None)}), ValueError, "weight gradient 0 has"),
    (dict(extra={"ann": lambda c: (None, np.zeros((2, 2)))}), ValueError, "x gradient has shape"),
])
def test_grade_errors(kw, exc, match):
    net, x, y = _small()
    args = dict(network=net, x=x, labels=y, dt_ms=0.5, t_enc_ms=10.0, t_end_ms=20.0)
    args.update(kw)
    with pytest.raises(exc, match=match):
        grade(args.pop("network"), args.pop("x"), args.pop("labels"), **args)


def test_grade_errors_that_need_a_run():
    net, x, y = _small()
    with pytest.raises(ValueError, match="every one of the 1 samples is flagged"):
        grade(net, np.zeros((1, 2)), y, dt_ms=0.5, t_enc_ms=10.0, t_end_ms=10.0)
    nrn_d = ExactNeuron("lif", "delta", tau_mem_ms=10.0)
    dnet = ExactNetwork([ExactDense([[0.8, 0.6], [0.5, 0.9]], nrn_d)])
    with pytest.raises(ValueError, match="reference='tempbp' has no gradient here"):
        grade(dnet, x, y, dt_ms=0.5, t_enc_ms=10.0, t_end_ms=20.0, methods=["tempbp"],
              reference="tempbp")
    nrn_a = ExactNeuron("lif", "alpha", tau_mem_ms=10.0, tau_syn_ms=10.0)
    mixed_net = ExactNetwork([ExactDense([[2.0, 2.0]], nrn_d),
                              ExactDense([[1.0]], nrn_a, readout=True)])
    with pytest.raises(ValueError, match="the readout's synapse 'alpha' differs"):
        grade(mixed_net, x, y, dt_ms=0.5, t_enc_ms=10.0, t_end_ms=20.0,
              decoder="max_membrane")
    ref_net = ExactNetwork([ExactDense([[1.0, 1.0]], ExactNeuron("lif", "delta", t_ref_ms=1.0),
                                       readout=True)])
    with pytest.raises(ValueError, match="the readout has t_ref_ms=1.0"):
        grade(ref_net, x, y, dt_ms=0.5, t_enc_ms=10.0, t_end_ms=20.0, decoder="max_membrane")
    ro = ExactNetwork([ExactDense([[1.0, 1.0]], nrn_a, readout=True)])
    with pytest.raises(ValueError, match="dt_ms=20.0 exceeds the readout's tau_mem_ms"):
        grade(ro, x, y, dt_ms=20.0, t_enc_ms=10.0, t_end_ms=20.0, decoder="max_membrane")
    # an IF readout has no tau_m, but its synaptic trace decays with 1 - dt/tau_s
    if_ro = ExactNetwork([ExactDense([[1.0, 1.0]], ExactNeuron("if", "exponential",
                                                               tau_syn_ms=0.2), readout=True)])
    with pytest.raises(ValueError, match="dt_ms=0.5 exceeds the readout's tau_syn_ms"):
        grade(if_ro, x, y, dt_ms=0.5, t_enc_ms=10.0, t_end_ms=20.0, decoder="max_membrane")
    with pytest.raises(ValueError, match="shape"):
        compare_gradients(np.zeros(3), np.zeros(4))
    g = grade(ro, x, y, dt_ms=0.5, t_enc_ms=10.0, t_end_ms=20.0, decoder="max_membrane",
              methods=["rate"])
    with pytest.raises(KeyError, match="no row named 'bptt'"):
        g.row("bptt")
