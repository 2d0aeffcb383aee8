"""Parameter records and convention presets: validation and the values they carry."""

import math

import numpy as np
import pytest

from evsnn import conventions as cv
from evsnn.params import DLIF, IF, LIF, Readout, TraceLIF, ding2025_table1


def test_records_are_frozen_and_map_to_kernel_args():
    lif = LIF(lam=0.9, theta=1.0, reset="hard", v_rest=0.1)
    with pytest.raises(AttributeError):
        lif.lam = 0.5
    a = lif.kernel_args()
    assert ((a.lam, a.theta, a.v_rest, a.hard_reset, a.spiking, a.trace_coef)
            == (0.9, 1.0, 0.1, True, True, 0.0))
    i = IF(theta=2.0).kernel_args()
    assert i.lam == 1.0 and not i.hard_reset
    tr = TraceLIF(dt_ms=1.0, tau_mem_ms=4.0, tau_syn_ms=2.0, u0=-0.1)
    assert tr.lam == 0.75 and tr.trace_coef == 0.5
    k = tr.kernel_args()
    assert k.hard_reset and k.v_rest == -0.1 and k.emit_trace
    assert DLIF().kernel_args().dlif and not Readout().kernel_args().spiking


def test_table1():
    # Ding 2025 Table 1: MNIST IF (T = 30), FashionMNIST τm = τs = 10 ms, CIFAR-10 2 ms; T = 10
    m = ding2025_table1("MNIST")
    assert m.T == 30 and m.neuron == IF(theta=1.0)
    f = ding2025_table1("fashion-mnist")
    assert f.T == 10 and f.neuron.tau_mem_ms == 10.0 and f.neuron.lam == 0.9
    c = ding2025_table1("CIFAR-10")
    assert c.neuron.lam == 0.5 and c.neuron.trace_coef == 0.5
    with pytest.raises(ValueError, match="dataset='svhn' has no Table 1 entry"):
        ding2025_table1("svhn")


@pytest.mark.parametrize(
    "ctor, kwargs, exc, match",
    [
        (LIF, {"lam": 1.5}, ValueError, r"lam=1.5 must be finite and lie in \[0, 1\]"),
        (LIF, {"lam": -0.1}, ValueError, r"lam=-0.1 must be finite and lie in \[0, 1\]"),
        (LIF, {"theta": 0.0}, ValueError, "theta=0.0 must be finite and > 0"),
        (LIF, {"theta": math.nan}, ValueError, "theta=nan must be finite"),
        (LIF, {"v_rest": math.inf}, ValueError, "v_rest=inf must be finite"),
        (LIF, {"theta": "1"}, TypeError, "theta must be a real number"),
        (LIF, {"theta": True}, TypeError, "theta must be a real number"),
        (LIF, {"reset": "zero"}, ValueError, "reset='zero' is not a reset mode"),
        (TraceLIF, {"tau_mem_ms": -1.0}, ValueError, "tau_mem_ms=-1.0 must be finite and > 0"),
        (TraceLIF, {"tau_syn_ms": 0.5}, ValueError, "dt_ms=1.0 exceeds tau_syn_ms=0.5"),
        (TraceLIF, {"output": "rate"}, ValueError, "output='rate' is not valid"),
        (DLIF, {"lam": 2.0}, ValueError, r"lam=2.0 must be finite and lie in \[0, 1\]"),
        # DLIF shares LIF's checks (params._check_lif_fields): every field of it
        (DLIF, {"theta": 0.0}, ValueError, "theta=0.0 must be finite and > 0"),
        (DLIF, {"reset": "zero"}, ValueError, "reset='zero' is not a reset mode"),
        (DLIF, {"v_rest": math.inf}, ValueError, "v_rest=inf must be finite"),
        (DLIF, {"v_init": math.nan}, ValueError, "v_init=nan must be finite"),
        (LIF, {"v_init": "0"}, TypeError, "v_init must be a real number"),
        (Readout, {"lam": -1.0}, ValueError, r"lam=-1.0 must be finite and lie in \[0, 1\]"),
    ],
)
def test_param_errors(ctor, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ctor(**kwargs)


def test_presets_carry_the_documented_choices():
    assert cv.DING2025_PAPER.spike_test == ">" and cv.DING2025_PAPER.input_delay == 1
    assert cv.DING2025_CODE.spike_ge and cv.DING2025_CODE.poisson_rule == "u<=x"
    assert cv.DING2025_TEMPBP_CODE.spike_test == ">"
    assert (cv.HART_CODE.poisson_draw == "cached_per_step"
            and cv.HART_CODE.asr_denominator == "clean_correct")
    assert cv.STABLE_PAPER.dlif_factor == "leak" and cv.STABLE_CODE.dlif_factor == "input"
    assert cv.STABLE_PAPER.mppd_reduction == "sum" and cv.STABLE_CODE.mppd_reduction == "mean"
    assert cv.get_convention("hart_code") is cv.HART_CODE
    assert cv.DING2025_CODE.with_(spike_test=">").name == "DING2025_CODE+"
    assert cv.RSC_PAPER.as_dict()["time_origin"] == 1


def test_convention_errors():
    with pytest.raises(ValueError, match=r"spike_test='=>' is not a valid convention choice"):
        cv.Convention(name="x", spike_test="=>")
    with pytest.raises(ValueError, match="input_delay=True is not a valid convention choice"):
        cv.Convention(name="x", input_delay=True)
    # 1.0 compared equal to 1 and was taken (a review)
    for field in ("input_delay", "time_origin"):
        with pytest.raises(ValueError, match=rf"{field}=1.0 is not a valid convention choice"):
            cv.Convention(name="x", **{field: 1.0})
    assert cv.Convention(name="x", input_delay=np.int64(1)).input_delay == 1
    with pytest.raises(TypeError, match="name must be a non-empty string"):
        cv.Convention(name="")
    with pytest.raises(ValueError, match="convention='PAPER' is not a known preset"):
        cv.get_convention("PAPER")
    with pytest.raises(TypeError, match="^convention must be a Convention or a preset name, got "
                                        "int 3$"):
        cv.get_convention(3)


def test_sigmoid_scale_is_paper_only_where_a_paper_defines_the_sigmoid():
    """Ding 2025 Eq. 17 (``Sigmoid'(ρU)``) is the only sigmoid surrogate the five papers define
    (HART, Stable and RSC: none, checked by searching the paper texts); every other preset, and
    a Convention without the field, takes the authors' code scale ``ρ σ'(ρ(U − θ))``."""
    scales = {name: c.sigmoid_scale for name, c in cv.PRESETS.items()}
    assert scales == {name: ("paper" if name == "DING2025_PAPER" else "code") for name in scales}
    assert cv.Convention(name="mine").sigmoid_scale == "code"


def test_the_default_surrogate_is_the_triangle_where_paper_or_code_use_it():
    """Stable Eq. 18 (ω = 1: "also used to craft white-box adversarial examples ... or
    robustness evaluation") and the Stable and HART authors' STBP (ZIF, act2 with width 1) use
    the triangle; the other presets keep the sigmoid, as does a Convention without the field."""
    kinds = {name: c.surrogate for name, c in cv.PRESETS.items()}
    triangle = {"STABLE_PAPER", "STABLE_CODE", "HART_CODE", "HART_RATE_CODE"}
    assert kinds == {name: ("triangle" if name in triangle else "sigmoid") for name in kinds}
    assert cv.Convention(name="mine").surrogate == "sigmoid"
    with pytest.raises(ValueError, match="surrogate='box' is not a valid convention choice"):
        cv.Convention(name="x", surrogate="box")


def test_hart_rate_code_fires_above_the_threshold_as_the_codes_rate_modes_do():
    """The HART code's RateBp/RateBp2/RateBp3 (bptr, rga, rate attack modes) fire on
    ``mem - 1 > 0``; its ZIF (STBP) on ``>= 0``. An IF neuron driven by exactly θ each step."""
    from evsnn.clock import Dense, Network, simulate

    net = Network((Dense(np.ones((1, 1)), LIF(lam=1.0, theta=1.0, reset="hard")),))
    x = np.ones((4, 1, 1))
    rate = simulate(net, x, convention="HART_RATE_CODE").output[:, 0, 0]
    stbp = simulate(net, x, convention="HART_CODE").output[:, 0, 0]
    np.testing.assert_array_equal(rate, [0, 1, 0, 1])
    np.testing.assert_array_equal(stbp, [1, 1, 1, 1])
    assert cv.HART_RATE_CODE.as_dict() == {**cv.HART_CODE.as_dict(), "name": "HART_RATE_CODE",
                                           "spike_test": ">"}
