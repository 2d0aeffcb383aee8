"""Result records print arrays as dtype and shape (evsnn._records.compact_repr): a dataclass
repr printed every array field, so one SimulationResult of a 784-500-10 run filled a notebook."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from certify.bernoulli import PoissonCertificate
from certify.distributed import CertificationTable
from certify.l2gain import BoundVerdict, HInfNorm, L2Gain, LayerGain, NetworkGains
from certify.smoothing import Certificate, Prediction
from certify.spike_distance import PopulationDistance
from evsnn.ann import ANNForward, ANNGradient, ANNLossGrad
from evsnn.attacks._common import AttackResult
from evsnn.attacks.spikes import SpikeAttackResult
from evsnn.clock import Network, simulate
from evsnn.clock.conv import ConvSimulationResult
from evsnn.clock.simulate import (
    LayerRecord,
    LayerTimeSums,
    SimulationResult,
    SpikeEvents,
    TimeSums,
)
from evsnn.convert import Conversion
from evsnn.exact.convergence import ConvergenceData
from evsnn.exact.decode import ExactLossGradient
from evsnn.exact.simulate import ExactGradient, ExactLayerEvents, ExactResult, SpikeTimeJacobian
from evsnn.grad import LossGrad
from evsnn.grad.backward import GradientResult
from evsnn.grad.conv import ConvGradientResult
from evsnn.grad.gamma_search import GammaSearch
from evsnn.grad.grade import GradeResult, GradeRow, GradientEstimate
from evsnn.metrics import (
    AttackSuccessRate,
    DirectionalDerivative,
    LossChangeGrid,
    MembraneDifference,
    NetworkCost,
    PerturbationDistribution,
    SOPResult,
    Stability,
    StepFactors,
)
from evsnn.params import LIF
from evsnn.train import TrainResult
from validation.crossval import BackendRun, CrossvalReport, LayerComparison

RECORDS = [
    SimulationResult, LayerRecord, LayerTimeSums, TimeSums, SpikeEvents, ConvSimulationResult,
    GradientResult, LossGrad, ConvGradientResult, GradientEstimate, GradeRow, GradeResult,
    GammaSearch, AttackResult, SpikeAttackResult, Prediction, Certificate, CertificationTable,
    PoissonCertificate, L2Gain, HInfNorm, BoundVerdict, LayerGain, NetworkGains,
    PopulationDistance, ExactLayerEvents, ExactResult, ExactGradient, SpikeTimeJacobian,
    ExactLossGradient, ConvergenceData, ANNForward, ANNGradient, ANNLossGrad, TrainResult,
    StepFactors, MembraneDifference, AttackSuccessRate, Stability, PerturbationDistribution,
    DirectionalDerivative, LossChangeGrid, SOPResult, NetworkCost, Conversion, BackendRun,
    LayerComparison, CrossvalReport,
]
BIG = np.random.default_rng(0).random((10, 256, 500))  # a 784-500-10 run's spikes, in size


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_repr_of_a_big_record_is_short_and_names_every_field(cls):
    # the array fields hold a big array, the list and tuple fields 100 of them (records of
    # layers and of samples), the others a scalar; built without the record's validation
    rec = object.__new__(cls)
    shown = [f for f in dataclasses.fields(cls) if f.repr]
    for f in dataclasses.fields(cls):
        kind = str(f.type)
        value = (BIG if "array" in kind else
                 [BIG] * 100 if "list" in kind or "tuple" in kind else
                 {"block": BIG} if "dict" in kind else 1)
        object.__setattr__(rec, f.name, value)
    text = repr(rec)
    assert len(text) < 1000, text[:300]
    assert text.startswith(f"{cls.__name__}(")
    for f in shown:
        assert f"{f.name}=" in text
    assert "array(float64, shape=(10, 256, 500))" in text


def test_simulation_result_of_a_784_500_10_run():
    net = Network.mlp([784, 500, 10], LIF(lam=0.9), rng=0)
    x = (np.random.default_rng(1).random((10, 16, 784)) < 0.2).astype(np.float64)
    res = simulate(net, x, record=True)
    text = repr(res)
    assert len(text) < 1000
    assert "output=array(float64, shape=(10, 16, 10))" in text
    assert "LayerRecord(" in text  # the layer records print compactly too
    # equality is still the dataclass's field by field (a copy with the same fields is equal)
    assert dataclasses.replace(res) == res
    assert np.array_equal(res.output, simulate(net, x).output)


def test_scalars_and_strings_print_as_before():
    rate = AttackSuccessRate(rate=0.5, n_success=1, n_attack=2, success=np.zeros(3, bool),
                             denominator="all")
    text = repr(rate)
    assert text.startswith("AttackSuccessRate(rate=0.5, n_success=1, n_attack=2, ")
    assert "denominator='all'" in text
    assert "success=array(bool, shape=(3,))" in text
