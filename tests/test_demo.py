"""The main job at reduced size: the report's structure, and that its numbers are this run's
(issue 9)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import validation.demo as demo
from evsnn.cli import main
from reference.helpers import one_line_error
from evsnn.params import DLIF

SECTIONS = ("## Trained models", "## Robustness: encoders × attacks",
            "## Attacks: the papers' algorithms vs the authors' code",
            "## Gradient grader: surrogate gradients vs exact spike-time gradients",
            "## Certified accuracy", "## Cross-validation of PyTorch backends")
FIGURES = ("taacc.png", "gradient_grades.png", "convergence.png", "certified_accuracy.png",
           "certified_accuracy_poisson.png")


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    sentinel = 0.123456789  # a value no real run produces: it must reach the report untouched
    real = demo.snn_accuracy

    def marked(network, x, y, **kw):
        return sentinel if kw.get("T") == 30 else real(network, x, y, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(demo, "snn_accuracy", marked)
    try:
        assert main(["demo", "--size", "small", "--no-progress", "--out", str(out)]) == 0
    finally:
        mp.undo()
    return out, sentinel


def test_report_has_every_section_and_figure(small_demo):
    out, _ = small_demo
    text = (out / "report.md").read_text()
    for heading in SECTIONS:
        assert heading in text
    for png in FIGURES:
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
        assert f"]({png})" in text
    from evsnn import io
    from evsnn.clock import Network

    saved = sorted(p.stem for p in (out / "models").iterdir())
    assert "lif" in saved and "converted" in saved and "ann" in saved
    assert isinstance(io.load(out / "models" / "lif.npz"), Network)
    # each SNN records how it was trained, for 'evsnn attack/certify --model'; the ANNs do not
    trained = {p.stem: io.load_saved(p).metadata.get("trained_with")
               for p in (out / "models").iterdir()}
    assert trained["converted"] == {"T": 30, "encoder": "current", "sigma": None}
    assert trained["lif_rsc"] == {"T": 10, "encoder": "rsc_fixed", "sigma": demo.RSC_SIGMA}
    assert trained["lif_poisson"]["encoder"] == "poisson" and trained["ann"] is None
    assert trained["stable"] == {"T": 10, "encoder": "current", "sigma": None}
    assert isinstance(io.load(out / "models" / "stable.npz").layers[0].neuron, DLIF)
    conf = json.loads((out / "config.json").read_text())
    assert conf["seed"] == 0 and conf["config"]["size"] == "small"


def test_numbers_come_from_the_run(small_demo):
    out, sentinel = small_demo
    res = json.loads((out / "results.json").read_text())["results"]
    converted = [r for r in res["models"] if r[0].startswith("converted IF SNN")]
    assert converted[0][3] == sentinel
    # results.json holds what the seed determines; the seconds are in timings.json
    assert all(len(r) == 4 for r in res["models"])
    assert all("seconds" not in c for c in res.get("claims", []))  # small: no claims
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings["training_seconds"]) == {r[0] for r in res["models"]}
    assert f"{sentinel:.4g}" in (out / "report.md").read_text()
    # the robustness table: clean accuracy is a fraction of the attacked samples, and no attack
    # raises accuracy above what the clean column allows plus the samples it never touched
    rob = res["robustness"]
    assert len(rob) == len(demo.ENCODERS) + 4
    n = demo.SIZES["small"].attack_samples
    for row in rob:
        assert row[2] == (30 if row[0] == "converted IF SNN" else 10)  # T
        for acc in row[3:]:  # the silent fraction, then the accuracies
            assert 0.0 <= acc <= 1.0 and abs(acc * n - round(acc * n)) < 1e-9
    # a network silent on every clean image predicts class 0 everywhere: its clean accuracy is
    # the share of class 0 among the labels, which the caption then says
    y = demo.load_digits("test").y[:n]
    for row in rob:
        if row[3] == 1.0:
            assert row[4] == pytest.approx(np.mean(y == 0))
            assert f"{row[0]} with {row[1]}: silent on every image" in (
                out / "report.md").read_text()
    # paper vs code rules: two models × the rule attacks, accuracies fractions of the samples
    rules = res["attack_rules"]
    assert len(rules) == 2 * len(demo.RULE_ATTACKS)
    for row in rules:
        for acc in row[2:]:
            assert 0.0 <= acc <= 1.0 and abs(acc * n - round(acc * n)) < 1e-9
    # the grader's exact row is the reference: cosine 1 with itself in every block
    assert all(v == pytest.approx(1.0) for v in res["grade"]["exact"].values())
    assert 0.5 < res["convergence"]["order"] < 1.5  # Euler: first order
    curves = dict(res["certified_accuracy_l2"])
    radii = curves.pop("radii")
    assert np.all(np.diff(radii) > 0) and len(curves) == 2
    for acc in curves.values():
        assert len(acc) == len(radii)
        assert np.all(np.diff(acc) <= 0)  # certified accuracy never grows with the radius


def test_the_certified_accuracy_figure_never_shows_more_than_was_certified():
    # between two radii of the grid the line holds the value at the larger one, a lower bound
    # (was: the value at the smaller one, which showed accuracy that was not certified)
    pytest.importorskip("matplotlib")
    fig = demo.certified_accuracy_figure({"a": (np.array([0.0, 0.5, 1.0]),
                                                np.array([1.0, 0.5, 0.0]))})
    line = fig.axes[0].lines[0]
    assert line.get_drawstyle() == "steps-pre"
    x, yv = line.get_xdata(), line.get_ydata()
    inside = (x > 0.0) & (x < 0.5)
    assert not inside.any() or np.all(yv[inside] <= 0.5)


def test_bad_size_is_a_one_line_error(capsys):
    assert main(["demo", "--size", "huge"]) == 2
    assert "invalid choice: 'huge'" in one_line_error(capsys)


def test_demo_building_blocks_reject_unknown_names():
    from evsnn.data import load_digits

    with pytest.raises(ValueError, match="size='huge' is not a demo size; use one of"):
        demo.run_demo(size="huge")
    d = load_digits("test")
    with pytest.raises(ValueError, match="kind='cnn' is not a demo model; use 'ann', 'converted'"):
        demo.train_model("cnn", d, d)
    # was: epochs=0 (falsy) silently trained the recipe's 30 or 15 epochs
    for kind in ("ann", "lif"):
        with pytest.raises(ValueError, match="epochs=0 must be an integer >= 1"):
            demo.train_model(kind, d, d, epochs=0, T=2)
