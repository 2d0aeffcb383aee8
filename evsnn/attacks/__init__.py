"""Adversarial attacks on SNNs (and any model with a gradient source).

Every attack takes a gradient source (:mod:`evsnn.attacks.sources`), inputs ``x`` ``[B, N]`` in
[0, 1], labels, a budget and an ``rng``, and returns an :class:`AttackResult` (adversarial
inputs, per-iteration loss, success, achieved norms, parameters). Success is judged by a
``model`` that may differ from the source's model (black-box transfer: attack with one model's
source, evaluate on another). Spike-domain attacks act on encoded ``[T, B, N]`` 0/1 sequences and
return a :class:`SpikeAttackResult`.

Budgets hold exactly: ``x_adv`` has ``x``'s dtype, lies in [0, 1], and ``norms_of(x_adv, x)``
(float64) is at most ε with no rounding slack, in float32 as in float64
(:mod:`evsnn.attacks.projections`); the one exception is the authors' L0 attack,
``pgd(..., norm="l0", rule="code")``, which keeps pixels tied with the k-th. Multi-channel
images are flattened channel-major, ``N = C·H·W``; ``channels=C`` makes the L0 budgets of
:func:`pgd` and :func:`one_pixel` count pixels. A gradient with a NaN or infinite entry (e.g. a
float32 model that overflowed) is refused with a ValueError naming the entry: a step along it
would leave NaN pixels, outside both the ball and the box.

Labels and targets must be 0-based class indices: one at or past the number of classes (1-based
labels) is refused before any loss value is used, naming the attack's argument (``y``,
``target``) and the source's output (the model's output for :func:`one_pixel`, for success and
for a ``model=`` evaluated before the first step). A source that declares its classes
(``n_out``) is checked before it runs; any other on the first answer the attack asks of it,
never by an extra call (see :class:`~evsnn.attacks.sources.CallableSource`).
"""

from evsnn.attacks._common import AttackResult
from evsnn.attacks.apgd import apgd
from evsnn.attacks.deepfool import deepfool
from evsnn.attacks.gradient import bim, eot_pgd, fgsm, mim, pgd, rfgsm
from evsnn.attacks.losses import ce_loss, class_score, dlr_loss
from evsnn.attacks.onepixel import one_pixel
from evsnn.attacks.projections import (
    norms_of,
    project,
    project_l0,
    project_l1,
    project_l2,
    project_linf,
)
from evsnn.attacks.sources import (
    CallableSource,
    GradientSource,
    MixedSource,
    SNNSource,
    SourceOutput,
    ann_source,
    as_source,
)
from evsnn.attacks.spikes import SpikeAttackResult, rand_del, spike_attack

__all__ = [
    "AttackResult",
    "SpikeAttackResult",
    "norms_of",
    "fgsm",
    "bim",
    "pgd",
    "mim",
    "rfgsm",
    "eot_pgd",
    "apgd",
    "deepfool",
    "one_pixel",
    "rand_del",
    "spike_attack",
    "ce_loss",
    "dlr_loss",
    "class_score",
    "project",
    "project_linf",
    "project_l2",
    "project_l1",
    "project_l0",
    "GradientSource",
    "SNNSource",
    "MixedSource",
    "CallableSource",
    "SourceOutput",
    "as_source",
    "ann_source",
]
