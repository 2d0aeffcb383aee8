"""The attacks' check of their labels against the classes of a gradient source that does not
declare them (no ``n_out``).

Such a source is checked on the first answer the attack itself asks of it, never by an extra
call: a source with hidden state (its own generator in a closure, a counter) answers every later
call differently after one more. A refusal by evsnn's label check inside the source's own loss
(:class:`evsnn._checks.ClassRangeError`) tells the class count and is renamed to the attack's
argument (``y`` / ``target``); a MixedSource compares b's classes with a's before b's loss.

Oracles: the same source declaring ``n_out`` (checked at entry, never asked anything extra, on
main as on 91abfb0, which had no label checks) gives the result and the call counts an undeclared
source must give; the messages are the attack's / MixedSource's own texts, matched in full.
"""

from __future__ import annotations

import collections
import pickle

import numpy as np
import pytest
from reference.attacks import linear_source

from evsnn.attacks import (
    CallableSource,
    GradientSource,
    MixedSource,
    SNNSource,
    SourceOutput,
    apgd,
    bim,
    ce_loss,
    deepfool,
    eot_pgd,
    fgsm,
    mim,
    pgd,
    rfgsm,
    spike_attack,
)
from evsnn.clock import Network
from evsnn.params import LIF

# 4 classes (targeted DLR needs 4), 5 pixels, 3 samples; arbitrary seeded weights and inputs
_C, _N = 4, 5
_W = np.random.default_rng(11).normal(size=(_C, _N))
_X = np.random.default_rng(12).uniform(0.2, 0.8, size=(3, _N))
_Y = np.array([0, 1, 2])
_T = np.array([3, 3, 0])
_HINT = r"; labels are 0-based class indices in \[0, 3\] \(subtract 1 from 1-based labels\)$"


def _beyond(arg, of="the source's output"):
    """The attack's full message for the label 4 of argument ``arg`` against 4 classes."""
    return rf"^{arg} holds the label 4 but {of} has 4 classes" + _HINT


def _hidden_state_source(n_out=None, uses_rng=False):
    """A linear model whose every function (fn, score_loss_grad, predict) draws fresh weight
    noise from its own Generator held in the closure: one call more moves that generator and
    changes every later answer. With ``uses_rng`` it adds per-sample noise from the attack's
    streams as well (a stochastic source with hidden state). Returns (source, call counts)."""
    gen = np.random.default_rng(7)
    calls = collections.Counter()

    def weights(rng, B):
        Wh = _W + 0.8 * gen.standard_normal(_W.shape)
        if rng is None:
            return np.broadcast_to(Wh, (B,) + _W.shape)
        return np.stack([Wh + 0.3 * g.standard_normal(_W.shape) for g in rng])

    def answer(x, score_loss, rng):
        Ws = weights(rng, len(x))
        s = np.einsum("bcn,bn->bc", Ws, x)
        loss, gs = score_loss(s)
        return loss, np.einsum("bc,bcn->bn", gs, Ws), s

    def slg(x, score_loss, rng=None):
        calls["score_loss_grad"] += 1
        return answer(x, score_loss, rng)

    def fn(x, y, rng=None):
        calls["fn"] += 1
        return answer(x, lambda s: ce_loss(s, y), rng)

    def predict(x, rng=None):
        calls["predict"] += 1
        return np.einsum("bcn,bn->bc", weights(rng, len(x)), x)

    src = CallableSource(fn, score_loss_grad=slg, predict=predict, uses_rng=uses_rng,
                         n_out=n_out)
    return src, calls


# every attack of a gradient source, as run(source, y, target)
_RUNS = {
    "fgsm": lambda s, y, t: fgsm(s, _X, y, eps=0.1, target=t),
    "bim-linf": lambda s, y, t: bim(s, _X, y, eps=0.1, steps=3, target=t),
    "bim-l2": lambda s, y, t: bim(s, _X, y, eps=0.3, norm="l2", steps=3, target=t),
    "pgd-linf": lambda s, y, t: pgd(s, _X, y, eps=0.1, steps=3, target=t, rng=3),
    "pgd-l2-restarts": lambda s, y, t: pgd(s, _X, y, eps=0.3, norm="l2", steps=3, restarts=2,
                                           target=t, rng=3),
    "pgd-l1": lambda s, y, t: pgd(s, _X, y, eps=0.5, norm="l1", steps=3, target=t, rng=3),
    "pgd-l0": lambda s, y, t: pgd(s, _X, y, eps=2, norm="l0", steps=3, target=t, rng=3),
    "pgd-l1-code": lambda s, y, t: pgd(s, _X, y, eps=0.5, norm="l1", steps=3, rule="code",
                                       target=t, rng=3),
    "pgd-l0-code": lambda s, y, t: pgd(s, _X, y, eps=2, norm="l0", steps=3, rule="code",
                                       target=t, rng=3),
    "mim": lambda s, y, t: mim(s, _X, y, eps=0.1, steps=3, target=t),
    "rfgsm-tramer": lambda s, y, t: rfgsm(s, _X, y, eps=0.1, target=t, rng=4),
    "rfgsm-wong": lambda s, y, t: rfgsm(s, _X, y, eps=0.1, variant="wong", target=t, rng=4),
    "apgd-ce": lambda s, y, t: apgd(s, _X, y, eps=0.1, steps=4, target=t, rng=6),
    "apgd-dlr": lambda s, y, t: apgd(s, _X, y, eps=0.1, steps=4, loss="dlr", target=t, rng=6),
    "apgd-dlr-l2": lambda s, y, t: apgd(s, _X, y, eps=0.5, norm="l2", steps=4, loss="dlr",
                                        target=t, rng=6),
    "apgd-ce-code": lambda s, y, t: apgd(s, _X, y, eps=0.1, steps=4, rule="code", rng=6),
    "apgd-dlr-code": lambda s, y, t: apgd(s, _X, y, eps=0.1, steps=4, rule="code", loss="dlr",
                                          rng=6),
    "deepfool-l2": lambda s, y, t: deepfool(s, _X, y, steps=3),
    "deepfool-linf": lambda s, y, t: deepfool(s, _X, y, norm="linf", steps=3),
}
_UNTARGETED = {"apgd-ce-code", "apgd-dlr-code", "deepfool-l2", "deepfool-linf"}
_CASES = [(name, targeted) for name in sorted(_RUNS)
          for targeted in ((False,) if name in _UNTARGETED else (False, True))]


def _same_result(a, b):
    assert np.array_equal(a.x_adv, b.x_adv)
    assert np.array_equal(a.loss, b.loss, equal_nan=True)
    assert np.array_equal(a.scores, b.scores)
    assert np.array_equal(a.success, b.success)
    for k, v in a.params.items():
        if isinstance(v, np.ndarray):
            assert np.array_equal(v, b.params[k]), k


@pytest.mark.parametrize("name, targeted", _CASES)
def test_a_hidden_state_source_is_not_called_more_than_the_attack_needs_regression(name,
                                                                                    targeted):
    # the label check called predict once more on a source without n_out (the probe): a source
    # drawing from its own generator then answered every later call with other weights, and
    # the attack's x_adv and record differed from 91abfb0's (no check) for the same source.
    # Now it gets exactly the calls of the same source declaring n_out (no probe on any version)
    t = _T if targeted else None
    undeclared, calls_u = _hidden_state_source()
    declared, calls_d = _hidden_state_source(n_out=_C)
    r_u = _RUNS[name](undeclared, _Y, t)
    r_d = _RUNS[name](declared, _Y, t)
    _same_result(r_u, r_d)
    assert calls_u == calls_d


@pytest.mark.parametrize("mixed", [False, True])
def test_eot_pgd_on_a_stochastic_hidden_state_source_regression(mixed):
    # the probe's copies of the streams kept the attack's draws, not the source's hidden state
    def make(n_out):
        src, calls = _hidden_state_source(n_out=n_out, uses_rng=True)
        return (MixedSource(0.5, src, linear_source(_W)) if mixed else src), calls

    (undeclared, calls_u), (declared, calls_d) = make(None), make(_C)
    r_u = eot_pgd(undeclared, _X, _Y, eps=0.1, steps=2, eot_samples=2, rng=5)
    r_d = eot_pgd(declared, _X, _Y, eps=0.1, steps=2, eot_samples=2, rng=5)
    _same_result(r_u, r_d)
    assert calls_u == calls_d


@pytest.mark.parametrize("name, targeted", _CASES)
def test_a_bad_label_is_refused_without_a_predict_probe_regression(name, targeted):
    # refused by the attack on the source's first answer (its loss, evsnn's ce_loss or the
    # attack's score loss, refuses the label and tells the class count); predict runs only
    # where the attack needs it: APGD's rule="code" evaluates the clean x first
    bad = np.array([0, 1, 4])
    y, t = (_Y, bad) if targeted else (bad, None)
    src, calls = _hidden_state_source()
    with pytest.raises(ValueError, match=_beyond("target" if targeted else "y")):
        _RUNS[name](src, y, t)
    assert calls["predict"] == (1 if name.endswith("-code") and not name.startswith("pgd")
                                else 0)


# --- a bad target meets the attack's message, not the source's wording for its labels ------------
def _bare_ce(x, y):
    """A bare ``fn(x, y)`` (no predict, no n_out) whose loss is evsnn's ce_loss."""
    s = x @ _W.T
    loss, g = ce_loss(s, y)
    return loss, g @ _W, s


@pytest.mark.parametrize("name", sorted(n for n in _RUNS if n.split("-")[0] in
                                        ("fgsm", "bim", "pgd", "mim", "rfgsm")))
def test_a_target_past_the_classes_is_named_target_regression(name):
    # the attack hands the target to fn as its labels: ce_loss refused it as "labels holds the
    # label 4 but scores has 4 classes" (and a SNNSource's sequence loss as "y holds ..."); the
    # refusal now tells the class count and the attack names its own argument
    with pytest.raises(ValueError, match=_beyond("target")) as info:
        _RUNS[name](_bare_ce, _Y, np.array([0, 1, 4]))
    assert "scores has 4 classes" in str(info.value.__cause__)


@pytest.mark.parametrize("target, exc, match", [
    (np.array([0, 1, -1]), ValueError, r"^target holds the negative label -1; labels are 0-based "
                                       r"class indices >= 0$"),
    (np.array([0.0, 1.0, 2.0]), TypeError, r"^target must hold integer class labels, got dtype "
                                           r"float64$"),
])
def test_a_target_refused_without_the_classes_never_reaches_the_source(target, exc, match):
    # a negative or non-integer target needs no class count: refused before fn runs
    def fn(x, y):
        raise AssertionError("the source was called")

    for run in (lambda: pgd(fn, _X, _Y, eps=0.1, steps=1, target=target, rng=0),
                lambda: spike_attack(lambda s, lab: fn(s, lab), np.ones((3, 3, _N)), _Y,
                                     budget=1, target=target)):
        with pytest.raises(exc, match=match):
            run()


def test_spike_attack_names_a_target_past_a_callables_classes_regression():
    # a callable wrapping SNNSource.sequence_loss_grad refused the target as its own "y"
    net = Network.mlp([_N, _C], LIF(lam=0.9, theta=0.5), rng=0, scale=2.0)
    src = SNNSource(net, T=3, encoder="current")
    seq = np.ones((3, 3, _N))
    with pytest.raises(ValueError, match=_beyond("target")):
        spike_attack(lambda s, lab: src.sequence_loss_grad(s, lab), seq, _Y, budget=1,
                     target=np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=_beyond("y")):
        spike_attack(lambda s, lab: src.sequence_loss_grad(s, lab), seq, np.array([4, 0, 1]),
                     budget=1)


def test_a_bare_source_with_its_own_label_check_is_called_first():
    # documented (CallableSource): an fn that refuses labels with its own check and wording is
    # called before the attack knows the classes, with the target as its labels; declaring
    # n_out puts the attack's check first
    def fn(x, y):
        if np.max(y) >= _C:
            raise ValueError("my model has 4 classes; bad y")
        return _bare_ce(x, y)

    with pytest.raises(ValueError, match=r"^my model has 4 classes; bad y$"):
        pgd(fn, _X, _Y, eps=0.1, steps=1, target=np.array([0, 1, 4]), rng=0)
    with pytest.raises(ValueError, match=_beyond("target")):
        pgd(CallableSource(fn, n_out=_C), _X, _Y, eps=0.1, steps=1, target=np.array([0, 1, 4]),
            rng=0)


# --- MixedSource of sources that do not declare their classes ------------------------------------
class _Linear(GradientSource):
    """A linear model that does not declare its classes (the base class's cross-entropy)."""

    def __init__(self, W):
        self.W = W

    def score_loss_grad(self, x, score_loss, *, rng=None):
        s = x @ self.W.T
        loss, g = score_loss(s)
        return SourceOutput(loss, g @ self.W, s)


_DIFFER = (r"^MixedSource's a and b have 5 and 4 classes \(the widths of their scores\); the "
           r"mixed gradient \(HART Eq\. A6\) is of two sources of one model: pass a and b with "
           r"the same outputs$")


@pytest.mark.parametrize("b_kind", ["fn", "subclass"])
def test_mixed_source_refuses_other_classes_before_bs_refusal_regression(b_kind):
    # a of 5 classes, b of 4, label 4: a's loss took it, then b's own loss refused it ("labels
    # holds the label 4 but scores has 4 classes", under b's names; an attack's score loss
    # inside b named it against b's classes) before MixedSource compared the widths
    W5 = np.vstack([_W, _W[:1]])
    b = linear_source(_W) if b_kind == "fn" else _Linear(_W)
    mix = MixedSource(0.5, _Linear(W5), b)
    y = np.array([0, 1, 4])
    for run in (lambda: mix(_X, y),
                lambda: mix.score_loss_grad(_X, lambda s: ce_loss(s, y)),
                lambda: pgd(mix, _X, y, eps=0.1, steps=1, random_start=None),
                lambda: pgd(mix, _X, _Y, eps=0.1, steps=1, random_start=None, target=y),
                lambda: apgd(mix, _X, y, eps=0.1, steps=1, loss="dlr", random_start=None),
                lambda: apgd(mix, _X, _Y, eps=0.1, steps=1, target=y, random_start=None),
                lambda: deepfool(mix, _X, y, steps=1)):
        with pytest.raises(ValueError, match=_DIFFER):
            run()
    # labels past both: the attack's message, from a's answer
    with pytest.raises(ValueError, match=r"^y holds the label 5 but the source's output has 5 "):
        pgd(mix, _X, np.array([0, 1, 5]), eps=0.1, steps=1, random_start=None)


def test_class_range_error_carries_the_class_count_and_pickles():
    from evsnn._checks import ClassRangeError, class_labels_iv

    with pytest.raises(ClassRangeError) as info:
        class_labels_iv("labels", np.array([0, 4]), 4, classes_of="scores")
    exc = info.value
    assert isinstance(exc, ValueError)
    assert (exc.n_classes, exc.classes_of, exc.labels.tolist()) == (4, "scores", [0, 4])
    back = pickle.loads(pickle.dumps(exc))
    assert str(back) == str(exc)
    assert (back.n_classes, back.classes_of, back.labels.tolist()) == (4, "scores", [0, 4])


def test_a_class_range_error_raised_by_hand_propagates_as_raised_regression():
    # ClassRangeError(message) built by user code carries no class count: the attack and
    # MixedSource re-raised it as an AttributeError ('ClassRangeError' object has no attribute
    # 'classes_of' / 'n_classes') instead of the user's own refusal
    from evsnn._checks import ClassRangeError

    def fn(x, y):
        raise ClassRangeError("my model refuses these labels")

    own = r"^my model refuses these labels$"
    for run in (lambda: fgsm(fn, _X, _Y, eps=0.1),
                lambda: pgd(fn, _X, _Y, eps=0.1, steps=1, target=_T, rng=0),
                lambda: MixedSource(0.5, _Linear(_W), fn)(_X, _Y),
                lambda: pgd(MixedSource(0.5, _Linear(_W), fn), _X, _Y, eps=0.1, steps=1,
                            random_start=None)):
        with pytest.raises(ClassRangeError, match=own) as info:
            run()
        assert (info.value.labels, info.value.n_classes, info.value.classes_of) == (None,) * 3
