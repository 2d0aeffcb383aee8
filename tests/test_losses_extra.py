"""Stable's mixed clean / perturbed loss with MS-MPPD (Stable Eq. 16-17) and the E-RSCT loss
(RSC Eq. 15-16): values, gradients against the reference tape (tests/reference/tape.py) and
central differences, the Stable loss plugged into the explicit backward passes, and errors."""

import numpy as np
import pytest
from conftest import RTOL_FINITE_DIFF
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from evsnn.clock import Dense, Network, simulate
from evsnn.clock.simulate import SimulationResult
from evsnn.conventions import get_convention
from evsnn.decoders import decode
from evsnn.grad import (
    Sigmoid,
    StableLoss,
    backward,
    cross_entropy,
    decoder_vjp,
    e_rsct_loss,
    spike_count_loss,
    stable_loss,
    ttfs_loss,
)
from evsnn.metrics import mppd, ms_mppd
from evsnn.params import DLIF, LIF
from reference import tape as tp
from reference.helpers import assert_tape, example_count


def _tape_mppd(s_c, s_p, w, lam, a, placement):
    """ε[t] = leak[t] ε[t−1] + gain[t] W Δs[t] on the tape (Stable Eq. 11)."""
    T = s_c.shape[0]
    eps, prev = [], None
    for t in range(T):
        syn = tp.linear(tp.sub(tp.take(s_c, t), tp.take(s_p, t)), w)
        if a is not None and placement == "input":
            syn = tp.mul(tp.take(a, t), syn)
        if prev is not None:
            on_leak = a is not None and placement == "leak"
            leak = tp.scale(tp.take(a, t), lam) if on_leak else tp.const(lam)
            syn = tp.add(tp.mul(leak, prev), syn)
        eps.append(syn)
        prev = syn
    return tp.stack(eps)


def _tape_stable(sc, sp, y, s_c, s_p, w, lam, a, placement, chi, rho, reduction):
    eps = _tape_mppd(s_c, s_p, w, lam, a, placement)
    T, B, N = eps.shape
    sq = tp.total(tp.mul(eps, eps))
    ms = tp.scale(sq, 1.0 / B if reduction == "sum" else 1.0 / (B * T * N))
    task = tp.add(tp.scale(tp.cross_entropy(sc, y), chi),
                  tp.scale(tp.cross_entropy(sp, y), 1 - chi))
    return tp.add(task, tp.scale(ms, rho)), eps


# --------------------------------------------------------------------------- Stable loss
@settings(max_examples=example_count(60))
@given(st.integers(0, 2**32 - 1), st.integers(1, 8), st.integers(1, 3), st.booleans(),
       st.sampled_from(["leak", "input"]), st.sampled_from(["sum", "mean"]),
       st.sampled_from([0.0, 0.3, 0.5, 1.0]), st.sampled_from([0.0, 0.5, 1.0, 2.5]),
       st.sampled_from([0.0, 0.5, 0.9, 1.0]))
def test_stable_loss_gradients_equal_tape(seed, T, B, dlif, placement, reduction, chi, rho, lam):
    rng = np.random.default_rng(seed)
    n_in, n_out, C = 4, 3, 3
    sc, sp = rng.standard_normal((B, C)), rng.standard_normal((B, C))
    y = rng.integers(0, C, B)
    s_c = (rng.random((T, B, n_in)) < 0.5).astype(float)
    s_p = (rng.random((T, B, n_in)) < 0.5).astype(float)
    w = rng.standard_normal((n_out, n_in))
    a = rng.uniform(0.5, 1.5, T) if dlif else None
    r = stable_loss(sc, sp, y, s_c, s_p, w, lam, chi=chi, rho=rho, reduction=reduction,
                    dlif_factors=a, dlif_factor=placement)
    leaves = [tp.leaf(v) for v in (sc, sp, s_c, s_p, w)]
    av = tp.leaf(a) if dlif else None
    loss, eps = _tape_stable(*leaves[:2], y, *leaves[2:], lam, av, placement, chi, rho, reduction)
    assert r.loss == pytest.approx(float(loss.value), rel=1e-12, abs=1e-14)
    assert_tape(r.eps, eps.value, "eps")
    leaves += [av] if dlif else []
    want, mag = tp.grad(loss, leaves), tp.grad(loss, leaves, magnitudes=True)
    for got, ref, m, what in zip(
        [r.scores_clean, r.scores_perturbed, r.input_clean, r.input_perturbed, r.weight,
         r.dlif_factors], want, mag, ["scores_clean", "scores_perturbed", "input_clean",
                                      "input_perturbed", "weight", "dlif_factors"]):
        assert_tape(got, ref, what, m)


def test_stable_loss_values_reuse_metrics_and_hand_example():
    rng = np.random.default_rng(1)
    s_c = (rng.random((5, 2, 4)) < 0.5).astype(float)
    s_p = (rng.random((5, 2, 4)) < 0.5).astype(float)
    w = rng.standard_normal((3, 4))
    sc, sp, y = rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), np.array([0, 2])
    for reduction in ("sum", "mean"):
        r = stable_loss(sc, sp, y, s_c, s_p, w, 0.7, chi=0.25, rho=2.0, reduction=reduction)
        eps = mppd(s_c, s_p, w, 0.7)
        np.testing.assert_array_equal(r.eps, eps)
        assert r.ms_mppd == pytest.approx(ms_mppd(eps, reduction=reduction).mean(), rel=1e-15)
        task = 0.25 * cross_entropy(sc, y)[0] + 0.75 * cross_entropy(sp, y)[0]
        assert r.task == pytest.approx(task, rel=1e-15)
        assert r.loss == pytest.approx(task + 2.0 * r.ms_mppd, rel=1e-15)
    # "mean" divides the per-sample sum by T·N = 5·3
    r_sum = stable_loss(sc, sp, y, s_c, s_p, w, 0.7, reduction="sum")
    r_mean = stable_loss(sc, sp, y, s_c, s_p, w, 0.7, reduction="mean")
    assert r_sum.ms_mppd == pytest.approx(15 * r_mean.ms_mppd, rel=1e-14)
    # hand: λ = 0.5, W = 1, Δs = (1, 0, 1): ε = (1, 0.5, 1.25), Σε² = 1 + 0.25 + 1.5625
    s = np.array([1.0, 0.0, 1.0]).reshape(3, 1, 1)
    r = stable_loss(np.zeros((1, 2)), np.zeros((1, 2)), np.array([1]), s, np.zeros_like(s),
                    [[1.0]], 0.5, rho=1.0)
    assert r.ms_mppd == pytest.approx(2.8125, rel=1e-15)
    # dMS/dW = Σ_t 2 ε[t] Σ_{k≤t} λ^(t−k) Δs[k] = 2(1·1 + 0.5·0.5 + 1.25·1.25) = 5.625
    assert r.weight[0, 0] == pytest.approx(5.625, rel=1e-15)
    assert isinstance(r, StableLoss)
    assert np.array_equal(r.input_perturbed, -r.input_clean)


@settings(max_examples=example_count(10))
@given(st.integers(0, 2**32 - 1), st.integers(1, 8), st.sampled_from(["sum", "mean"]),
       st.booleans(), st.sampled_from(["leak", "input"]))
def test_stable_loss_plugged_into_backward_equals_tape(seed, T, reduction, dlif, placement):
    """The full Stable objective on a 2-layer SNN (clean and perturbed runs), its gradient
    assembled from ``stable_loss`` and explicit ``bptt`` passes, against the whole objective
    differentiated on the tape."""
    rng = np.random.default_rng(seed)
    conv = get_convention("STABLE_PAPER").with_(dlif_factor=placement)
    n_in, H, C, B = 5, 4, 3, 2
    lam = 0.8
    top = (DLIF(lam=lam, theta=0.5, reset="hard"), rng.uniform(0.5, 1.5, T)) if dlif else (
        LIF(lam=lam, theta=0.5, reset="hard"), None)
    net = Network([Dense(rng.standard_normal((H, n_in)) * 1.5, LIF(lam=0.7, theta=0.5)),
                   Dense(rng.standard_normal((C, H)) * 1.5, top[0], dlif_factors=top[1])])
    x_c = rng.random((T, B, n_in))
    x_p = np.clip(x_c + rng.uniform(-0.2, 0.2, x_c.shape), 0, 1)
    y = rng.integers(0, C, B)
    sur = Sigmoid(5.0, "code")
    lower, upper = Network(net.layers[:1]), Network(net.layers[1:])

    runs = {}
    for name, x in (("c", x_c), ("p", x_p)):
        res = simulate(net, x, convention=conv, record=True)
        for rec, layer in zip(res.layers, net.layers):  # no near ties (see test_grad_vs_tape)
            assume(np.all(np.abs(rec.m - layer.neuron.theta) > 1e-9))
        runs[name] = (x, res)
    r = stable_loss(decode(runs["c"][1].output, "rate"), decode(runs["p"][1].output, "rate"), y,
                    runs["c"][1].layers[0].output, runs["p"][1].layers[0].output,
                    net.layers[1].weight, lam, chi=0.5, rho=0.7, reduction=reduction,
                    dlif_factors=top[1], dlif_factor=placement)
    g_w = [np.zeros_like(l.weight) for l in net.layers]
    g_a = np.zeros(T) if dlif else None
    g_x = {}
    for name, g_scores, g_in in (("c", r.scores_clean, r.input_clean),
                                 ("p", r.scores_perturbed, r.input_perturbed)):
        x, res = runs[name]
        hidden = res.layers[0].output
        up = backward(upper, hidden, SimulationResult(res.output, res.layers[1:], res.convention),
                      decoder_vjp("rate", g_scores, res.output), method="bptt", surrogate=sur)
        lo = backward(lower, x, SimulationResult(hidden, res.layers[:1], res.convention),
                      up.input + g_in, method="bptt", surrogate=sur)
        g_w[0] += lo.weights[0]
        g_w[1] += up.weights[0]
        if dlif:
            g_a += up.dlif_factors[0]
        g_x[name] = lo.input
    g_w[1] += r.weight
    if dlif:
        g_a += r.dlif_factors

    # the same objective on the tape
    xc, xp = tp.leaf(x_c), tp.leaf(x_p)
    W = [tp.leaf(l.weight) for l in net.layers]
    av = tp.leaf(top[1]) if dlif else None
    opts = dict(mode="bptt", surrogate=("sigmoid", 5.0, 5.0))
    outs = {}
    for name, xv in (("c", xc), ("p", xp)):
        hid, _ = tp.build_network(lower, xv, W[:1], [None], [None], conv, **opts)
        hid = tp.stack(hid)
        out, _ = tp.build_network(upper, hid, W[1:], [None], [av], conv, **opts)
        outs[name] = (hid, tp.decode(out, "rate"))
    loss, _ = _tape_stable(outs["c"][1], outs["p"][1], y, outs["c"][0], outs["p"][0], W[1], lam,
                           av, placement, 0.5, 0.7, reduction)
    assert r.loss == pytest.approx(float(loss.value), rel=1e-12)
    leaves = [xc, xp] + W + ([av] if dlif else [])
    want, mag = tp.grad(loss, leaves), tp.grad(loss, leaves, magnitudes=True)
    assert_tape(g_x["c"], want[0], "dL/dx clean", mag[0])
    assert_tape(g_x["p"], want[1], "dL/dx perturbed", mag[1])
    assert_tape(g_w[0], want[2], "dL/dW0", mag[2])
    assert_tape(g_w[1], want[3], "dL/dW1", mag[3])
    if dlif:
        assert_tape(g_a, want[4], "dL/da", mag[4])


def test_stable_loss_float32_and_errors():
    s = np.ones((2, 1, 2), dtype=np.float32)
    r = stable_loss(np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32), np.array([0]), s,
                    np.zeros_like(s), np.ones((1, 2), np.float32), 0.5)
    assert r.eps.dtype == np.float32 and r.weight.dtype == np.float32
    args = (np.zeros((1, 2)), np.zeros((1, 2)), np.array([0]), np.ones((2, 1, 2)),
            np.zeros((2, 1, 2)), np.ones((1, 2)), 0.5)
    with pytest.raises(ValueError, match=r"chi=1.5 must be finite and lie in \[0, 1\]"):
        stable_loss(*args, chi=1.5)
    with pytest.raises(ValueError, match="rho=-1 must be finite and >= 0"):
        stable_loss(*args, rho=-1)
    with pytest.raises(TypeError, match="rho must be a real number"):
        stable_loss(*args, rho="1")
    with pytest.raises(ValueError, match="scores_clean has shape"):
        stable_loss(np.zeros((2, 2)), *args[1:])
    with pytest.raises(ValueError, match="reduction='median' is not valid"):
        stable_loss(*args, reduction="median")
    with pytest.raises(ValueError, match="dlif_factors has 3 entries but T = 2"):
        stable_loss(*args, dlif_factors=np.ones(3))


# --------------------------------------------------------------------------- E-RSCT
def _tape_e_rsct(O, teacher, y, lam, tau):
    T, B, _ = O.shape
    ps = tp.scale(tp.total(tp.stack([tp.cross_entropy(tp.take(O, t), y) for t in range(T)])),
                  1.0 / T)
    z = teacher / tau
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    logq = tp.log_softmax(tp.scale(tp.total(O, axis=0), 1.0 / (T * tau)))
    kl = tp.scale(tp.total(tp.mul(p, tp.sub(np.log(p), logq))), tau**2 / B)
    return tp.add(tp.scale(kl, lam), ps)


@settings(max_examples=example_count(40))
@given(st.integers(0, 2**32 - 1), st.integers(1, 8), st.integers(1, 4),
       st.sampled_from([0.0, 0.1, 1.0]), st.sampled_from([1.0, 2.0, 4.0]))
def test_e_rsct_gradient_equals_tape_and_finite_differences(seed, T, B, lam, tau):
    rng = np.random.default_rng(seed)
    O = rng.standard_normal((T, B, 4)) * 2
    teacher = rng.standard_normal((B, 4)) * 3
    y = rng.integers(0, 4, B)
    loss, g = e_rsct_loss(O, teacher, y, lam=lam, temperature=tau)
    Ov = tp.leaf(O)
    ref = _tape_e_rsct(Ov, teacher, y, lam, tau)
    assert loss == pytest.approx(float(ref.value), rel=1e-12)
    assert_tape(g, tp.grad(ref, [Ov])[0], "dL/dO")
    num = np.zeros_like(O)
    for idx in np.ndindex(O.shape):
        e = np.zeros_like(O)
        e[idx] = 1e-6
        num[idx] = (e_rsct_loss(O + e, teacher, y, lam=lam, temperature=tau)[0]
                    - e_rsct_loss(O - e, teacher, y, lam=lam, temperature=tau)[0]) / 2e-6
    # central differences carry an absolute rounding error ~eps·|L|/h ~ 1e-10 for |L| ~ 1:
    # the array's scale times RTOL_FINITE_DIFF is the floor for small entries
    np.testing.assert_allclose(g, num, rtol=RTOL_FINITE_DIFF,
                               atol=RTOL_FINITE_DIFF * np.max(np.abs(num)))


def test_e_rsct_hand_values():
    rng = np.random.default_rng(2)
    O = rng.standard_normal((4, 3, 5))
    y = np.array([0, 3, 4])
    # λ = 0: the TET pre-synaptic loss, mean over steps of the per-step CE
    loss, _ = e_rsct_loss(O, np.zeros((3, 5)), y, lam=0.0)
    assert loss == pytest.approx(np.mean([cross_entropy(O[t], y)[0] for t in range(4)]), rel=1e-14)
    # a teacher whose logits equal the student's mean output: KL = 0 and its gradient vanishes
    l1, g1 = e_rsct_loss(O, O.mean(axis=0), y, lam=5.0)
    l0, g0 = e_rsct_loss(O, O.mean(axis=0), y, lam=0.0)
    assert l1 == pytest.approx(l0, abs=1e-14)
    np.testing.assert_allclose(g1, g0, atol=1e-15)
    # hand: T = 1, B = 1, two classes, student logits 0, teacher (ln 3, 0): p = (3/4, 1/4),
    # q = (1/2, 1/2): KL = 3/4 ln(3/2) + 1/4 ln(1/2)
    loss, _ = e_rsct_loss(np.zeros((1, 1, 2)), np.array([[np.log(3.0), 0.0]]), np.array([0]),
                          lam=1.0)
    assert loss == pytest.approx(0.75 * np.log(1.5) + 0.25 * np.log(0.5) + np.log(2), rel=1e-14)


def test_e_rsct_errors():
    O = np.zeros((2, 1, 3))
    t = np.zeros((1, 3))
    y = np.array([0])
    with pytest.raises(ValueError, match=r"step_outputs must be time-major \[T, B, n_classes\]"):
        e_rsct_loss(O[0], t, y)
    with pytest.raises(ValueError, match=r"teacher_logits has shape \(1, 2\)"):
        e_rsct_loss(O, np.zeros((1, 2)), y)
    with pytest.raises(ValueError, match="lam=-0.1 must be finite and >= 0"):
        e_rsct_loss(O, t, y, lam=-0.1)
    with pytest.raises(ValueError, match=r"temperature=0 must be finite and > 0; the distillation "
                                         r"temperature τ, 1 in the RSC setting$"):
        e_rsct_loss(O, t, y, temperature=0)
    with pytest.raises(ValueError, match=r"temperature=inf must be finite and > 0"):
        e_rsct_loss(O, t, y, temperature=np.inf)
    with pytest.raises(TypeError, match="temperature must be a real number"):
        e_rsct_loss(O, t, y, temperature=None)
    with pytest.raises(ValueError, match=r"labels holds the label 3 but step_outputs has 3 "
                                         r"classes; labels are 0-based class indices in \[0, 2\]"):
        e_rsct_loss(O, t, np.array([3]))


@settings(max_examples=example_count(20))
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(0, 6), st.integers(0, 3))
def test_spike_count_and_ttfs_losses_equal_tape(seed, B, desired_true, desired_false):
    """The existing losses' gradients on the same tape (TSSL-BP spike count, Ding's TTFS
    variants)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 8, (B, 4)).astype(float)
    y = rng.integers(0, 4, B)
    loss, g = spike_count_loss(counts, y, desired_true=desired_true, desired_false=desired_false)
    cv = tp.leaf(counts)
    ref = tp.spike_count(cv, y, desired_true, desired_false)
    assert loss == pytest.approx(float(ref.value), rel=1e-14, abs=1e-15)
    assert_tape(g, tp.grad(ref, [cv])[0], "spike_count")
    z = rng.standard_normal((B, 4))
    for variant, f in (("double_softmax", tp.ttfs_double_softmax),
                       ("scaled_ce", tp.ttfs_scaled_ce)):
        loss, g = ttfs_loss(z, y, variant)
        zv = tp.leaf(z)
        ref = f(zv, y)
        assert loss == pytest.approx(float(ref.value), rel=1e-13)
        assert_tape(g, tp.grad(ref, [zv])[0], variant)


def _code_loss_count(outputs, target, desired, undesired):
    """The Ding code's ``loss_count`` and ``spike_count`` (loss_f.py) written out with NumPy:
    the loss and the gradient it sends to every step's outputs."""
    T = outputs.shape[0]
    delta = (outputs.sum(axis=0) - target) / T
    mask = np.ones_like(delta)
    mask[target == undesired] = 0
    mask[delta < 0] = 0
    delta[mask == 1] = 0
    mask = np.ones_like(delta)
    mask[target == desired] = 0
    mask[delta > 0] = 0
    delta[mask == 1] = 0
    rep = np.repeat(delta[None], T, axis=0)
    return 0.5 * np.sum(rep**2), rep


@settings(max_examples=example_count(20))
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 12), st.integers(0, 6),
       st.integers(0, 2))
def test_spike_count_code_variant_is_the_code_loss_count(seed, B, T, desired, undesired):
    """variant="code" against the authors' loss_count: the same loss, and through the rate
    decoder's vjp the same gradient at every step."""
    assume(desired != undesired)
    rng = np.random.default_rng(seed)
    outputs = (rng.random((T, B, 4)) < 0.4).astype(float)
    y = rng.integers(0, 4, B)
    target = np.full((B, 4), float(undesired))
    target[np.arange(B), y] = desired
    want_loss, want_g = _code_loss_count(outputs, target, desired, undesired)
    loss, g = spike_count_loss(outputs.sum(axis=0), y, desired_true=desired,
                               desired_false=undesired, variant="code", T=T)
    assert loss == pytest.approx(want_loss, rel=1e-13, abs=1e-15)
    np.testing.assert_allclose(decoder_vjp("rate", g, outputs), want_g, rtol=1e-13, atol=0)


def test_spike_count_code_variant_by_hand_and_errors():
    # label 0 has 7 spikes for 5 wanted and neuron 1 none for 1 allowed: both one-sided, 0
    # (the squared loss: ½ (2² + 1²) = 2.5)
    counts, y = np.array([[7.0, 0.0]]), np.array([0])
    kw = dict(desired_true=5, desired_false=1)
    loss, g = spike_count_loss(counts, y, variant="code", T=10, **kw)
    assert loss == 0.0 and g.tolist() == [[0.0, 0.0]]
    assert spike_count_loss(counts, y, **kw)[0] == 2.5
    # 3 for 5 and 2 for 1, T = 10: δ = (−0.2, 0.1), loss (4 + 1) / 20 = 0.25
    loss, g = spike_count_loss(np.array([[3.0, 2.0]]), y, variant="code", T=10, **kw)
    assert loss == pytest.approx(0.25, rel=1e-15)
    np.testing.assert_allclose(g, [[-0.2, 0.1]], rtol=1e-15)
    with pytest.raises(ValueError, match=r"T=None with variant='code': the code's loss divides"):
        spike_count_loss(counts, y, variant="code", **kw)
    with pytest.raises(ValueError, match=r"T=10 with variant='squared'"):
        spike_count_loss(counts, y, T=10, **kw)
    with pytest.raises(ValueError, match="variant='tssl' is not a spike-count loss"):
        spike_count_loss(counts, y, variant="tssl", **kw)


def _code_ce(logits, labels):
    """torch's ``cross_entropy`` written out: mean of log Σ exp(z) − z[label]."""
    z = np.asarray(logits, dtype=np.float64)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(labels)), labels]))


@settings(max_examples=example_count(20))
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 12),
       st.sampled_from([0.5, 2.0, 3.0]))
def test_ttfs_losses_are_the_ding_code_formulas(seed, B, T, beta):
    """Each TTFS variant against the Ding code's own formula (``SpikeLoss`` in
    ``global_tools/training/functions/loss_f.py``), written out from spike outputs:
    ``spike_latency``: t_min = T + 1 − max_t(s[t]·(T − t₀)), CE(softmax(−β t_min));
    ``spike_latency2``: CE(ω); ``spike_latency3``: CE(2 (ω − T))."""
    rng = np.random.default_rng(seed)
    s = (rng.random((T, B, 5)) < 0.2).astype(float)
    y = rng.integers(0, 5, B)
    dec = (s * np.arange(T, 0, -1)[:, None, None]).max(axis=0)  # the code's decreasing_output
    omega = decode(s, "ttfs")
    np.testing.assert_array_equal(omega, dec)
    t_min = T + 1 - dec
    prob = np.exp(-beta * t_min) / np.exp(-beta * t_min).sum(axis=1, keepdims=True)
    loss, _ = ttfs_loss(omega, y, "double_softmax", beta=beta)
    assert loss == pytest.approx(_code_ce(prob, y), rel=1e-13)
    loss, _ = ttfs_loss(omega, y, "ce")
    assert loss == pytest.approx(_code_ce(dec, y), rel=1e-13)
    loss, g = ttfs_loss(omega, y, "scaled_ce")
    assert loss == pytest.approx(_code_ce(2 * (dec - T), y), rel=1e-13)
    # the shift by T cancels in the softmax, bit for bit for integer scores
    ref_loss, ref_g = cross_entropy(2 * (omega - T), y)
    assert loss == ref_loss
    np.testing.assert_array_equal(g, 2 * ref_g)


def test_ttfs_loss_beta_is_read_by_the_double_softmax_only():
    z, y = np.zeros((1, 3)), np.array([0])
    a, _ = ttfs_loss(z + np.array([[1.0, 0.0, 0.0]]), y, "double_softmax")
    b, _ = ttfs_loss(z + np.array([[1.0, 0.0, 0.0]]), y, "double_softmax", beta=2)
    assert a == b  # the default is the code's beta = 2
    for variant in ("ce", "scaled_ce"):
        with pytest.raises(ValueError, match=f"beta=2 is read by variant='double_softmax' only, "
                                             f"not by '{variant}'"):
            ttfs_loss(z, y, variant, beta=2)
    with pytest.raises(ValueError, match=r"beta=0 must be finite and > 0; the code's "
                                         r"spike_latency uses beta=2"):
        ttfs_loss(z, y, "double_softmax", beta=0)
    with pytest.raises(ValueError, match=r"variant='mse_onehot' is not a TTFS loss; use one of "
                                         r"\['ce', 'double_softmax', 'scaled_ce'\]"):
        ttfs_loss(z, y, "mse_onehot")


_NO_SAMPLES = r"holds no samples \(shape {}\); a loss needs at least one sample"


def test_batch_mean_losses_refuse_an_empty_batch_regression():
    # B = 0: every batch-mean loss returned a NaN loss (mean of an empty slice)
    e, y = np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
    empty = _NO_SAMPLES.format(r"\(0, 3\)")
    with pytest.raises(ValueError, match="^scores " + empty):
        cross_entropy(e, y)
    for variant in ("ce", "double_softmax", "scaled_ce"):
        with pytest.raises(ValueError, match="^scores " + empty):
            ttfs_loss(e, y, variant)
    with pytest.raises(ValueError, match="^counts " + empty):
        spike_count_loss(e, y, desired_true=3, desired_false=0)
    s = np.zeros((2, 0, 4))
    with pytest.raises(ValueError, match="^scores_clean " + empty):
        stable_loss(e, e, y, s, s, np.ones((3, 4)), 0.5)
    with pytest.raises(ValueError, match="^step_outputs " + _NO_SAMPLES.format(r"\(2, 0, 3\)")):
        e_rsct_loss(np.zeros((2, 0, 3)), e, y)


def test_losses_read_scores_as_the_decoders_do_regression():
    """Review: spike_count_loss and the double-softmax TTFS loss read shape[1] before any shape
    check (IndexError on 1-D counts; 3-D counts gave a loss of 1.0); the losses computed int8,
    uint16 and bool scores in float32 but int64 in float64, and float128 in float128, where the
    decoders read integers and bools as float64 and refuse float128; NaN scores gave NaN."""
    y = np.array([0, 1])
    losses = {
        "cross_entropy": lambda s: cross_entropy(s, y),
        "ttfs double_softmax": lambda s: ttfs_loss(s, y, "double_softmax"),
        "ttfs scaled_ce": lambda s: ttfs_loss(s, y, "scaled_ce"),
        "spike_count_loss": lambda s: spike_count_loss(s, y, desired_true=2, desired_false=0),
    }
    name = {"spike_count_loss": "counts"}
    for key, f in losses.items():
        arg = name.get(key, "scores")
        for bad in (np.zeros(3), np.zeros((2, 3, 4))):
            with pytest.raises(ValueError, match=rf"^{arg} must be \[B, N\], got shape"):
                f(bad)
        for v in (np.nan, np.inf):
            s = np.zeros((2, 3))
            s[1, 2] = v
            with pytest.raises(ValueError, match=rf"^{arg} holds NaN or infinite values"):
                f(s)
        counts = np.array([[3, 0, 1], [0, 2, 2]])
        want_loss, want_g = f(counts.astype(np.float64))
        for dt in (np.int8, np.uint16, np.int64):
            loss, g = f(counts.astype(dt))
            assert g.dtype == np.float64 and loss == want_loss, (key, dt)
            np.testing.assert_array_equal(g, want_g)
        loss, g = f(counts.astype(bool))
        assert g.dtype == np.float64, key
        assert f(counts.astype(np.float16))[1].dtype == np.float32, key
        if hasattr(np, "float128"):
            with pytest.raises(TypeError, match=rf"^{arg} has dtype float128; the losses take"):
                f(counts.astype(np.float128))
    s = np.zeros((2, 3))
    z = np.zeros((2, 2, 4))
    with pytest.raises(ValueError, match=r"^scores_clean must be \[B, N\], got shape \(3,\)"):
        stable_loss(np.zeros(3), np.zeros(3), y, z, z, np.ones((3, 4)), 0.5)
    with pytest.raises(ValueError, match=r"^scores_perturbed holds NaN or infinite values"):
        stable_loss(s, np.full((2, 3), np.nan), y, z, z, np.ones((3, 4)), 0.5)
    with pytest.raises(ValueError, match=r"^step_outputs must be time-major \[T, B, n_classes\]"):
        e_rsct_loss(s, s, y)
    with pytest.raises(ValueError, match=r"^step_outputs holds NaN or infinite values"):
        e_rsct_loss(np.full((2, 2, 3), np.nan), s, y)


def test_loss_and_grad_names_loss_before_simulating_regression():
    """Review: loss='mse' with the TTFS decoder was refused after the simulation, as
    "variant='mse' is not a TTFS loss", naming an argument the caller did not pass."""
    from evsnn.grad import loss_and_grad

    net = Network.mlp([3, 2], LIF(lam=0.9, theta=0.5), rng=0, scale=2.0)
    x = np.full((1, 3), 0.5)
    wrong_width = np.full((1, 5), 0.5)  # the simulation would refuse it: the loss comes first
    with pytest.raises(ValueError, match=r"^loss='mse' is not a loss for decoder='ttfs'; use one "
                                         r"of \['ce', 'double_softmax', 'scaled_ce'\]"):
        loss_and_grad(net, wrong_width, [0], T=3, encoder="current", decoder="ttfs", loss="mse")
    with pytest.raises(ValueError, match=r"^loss='double_softmax' is not available for "
                                         r"decoder='rate'; use 'ce'"):
        loss_and_grad(net, wrong_width, [0], T=3, encoder="current", loss="double_softmax")
    r = loss_and_grad(net, x, [0], T=3, encoder="current", decoder="ttfs", loss="scaled_ce")
    assert np.isfinite(r.loss)


def test_loss_and_grad_checks_method_options_before_simulating_regression(monkeypatch):
    """Review (/tmp/rev_bw/errs.py): method options were checked inside backward, after the
    forward pass; an unknown option was refused as an unexpected keyword of backward."""
    import evsnn.grad as grad

    net = Network.mlp([3, 2], LIF(lam=0.9, theta=0.5), rng=0, scale=2.0)
    x = np.full((1, 3), 0.5)

    def no_forward(*a, **k):
        raise AssertionError("simulated before the options were checked")

    monkeypatch.setattr(grad, "simulate", no_forward)
    with pytest.raises(ValueError, match=r"^factor_clamp=2.0 is a Temp-BP option; "
                                         r"method='bptt' does not use it"):
        grad.loss_and_grad(net, x, [0], T=3, encoder="current", factor_clamp=2.0)
    with pytest.raises(TypeError, match=r"^nosuch= is not an option of any gradient method"):
        grad.loss_and_grad(net, x, [0], T=3, encoder="current", nosuch=1)
    with pytest.raises(TypeError, match=r"^precalculate must be True or False"):
        grad.loss_and_grad(net, x, [0], T=3, encoder="current", method="hart",
                           precalculate="yes")
    with pytest.raises(AssertionError, match="simulated before"):  # good options go on
        grad.loss_and_grad(net, x, [0], T=3, encoder="current", method="hart", precalculate=True)
