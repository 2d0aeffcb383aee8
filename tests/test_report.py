"""The report writer: atomic writes, contents, provenance."""

import json
from pathlib import Path

import pytest

from validation.report import Report, verdict_table
from validation.claims import run_checks


def test_report_writes_atomically_with_provenance(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = Report("t", seed=3, config={"T": 5})
    r.add_heading("Section")
    r.add_table(["x", "y"], [[1, 0.123456]])
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    r.add_figure(fig, "curve", caption="a line")
    plt.close(fig)
    r.add_result("value", 7)
    out = r.write(tmp_path / "run")
    md = (out / "report.md").read_text()
    assert "| 1 | 0.1235 |" in md and "![a line](curve.png)" in md and "numpy" in md
    res = json.loads((out / "results.json").read_text())
    assert res["results"] == {"value": 7} and res["seed"] == 3 and "numpy" in res["versions"]
    assert json.loads((out / "config.json").read_text())["config"] == {"T": 5}
    assert (out / "curve.png").stat().st_size > 0
    assert not [p for p in tmp_path.iterdir() if "incomplete" in p.name]
    with pytest.raises(FileExistsError, match="exists; choose another folder"):
        r.write(tmp_path / "run")


def test_failed_write_leaves_nothing(tmp_path):
    class Broken:
        def savefig(self, *a, **k):
            raise RuntimeError("disk full")

    r = Report("t")
    r.add_figure(Broken(), "bad")
    with pytest.raises(RuntimeError, match="disk full"):
        r.write(tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_report_errors_and_verdict_table(tmp_path):
    r = Report("t")
    with pytest.raises(ValueError, match="a table row has 1 cells but there are 2 headers"):
        r.add_table(["a", "b"], [[1]])
    with pytest.raises(ValueError, match="must be letters, digits"):
        r.add_figure(None, "../evil")
    r.add_figure(object(), "f")
    with pytest.raises(ValueError, match="already added"):
        r.add_figure(object(), "f")
    r2 = Report("claims")
    verdicts = run_checks("rsc.eq11_rs", seed=0)
    verdict_table(r2, verdicts)
    assert "rsc.eq11_rs_clamp" in r2.markdown() and "Counterexample" in r2.markdown()
    assert r2.results["claims"][0]["status"] == "violated"


def test_artifacts_and_images_are_written_with_the_report(tmp_path):
    r = Report("t", seed=1)
    r.add_artifact(lambda folder: (folder / "model.txt").write_text("weights"))
    r.add_image("pic", lambda path: Path(path).write_bytes(b"\x89PNG fake"), caption="a picture")
    out = r.write(tmp_path / "run")
    assert (out / "model.txt").read_text() == "weights"
    assert (out / "pic.png").read_bytes() == b"\x89PNG fake"
    assert "![a picture](pic.png)" in (out / "report.md").read_text()
    with pytest.raises(TypeError, match="write must be a callable write\\(folder\\)"):
        r.add_artifact("not callable")
    with pytest.raises(TypeError, match="write must be a callable write\\(path\\)"):
        r.add_image("x", None)


def test_failing_artifact_leaves_no_folder(tmp_path):
    r = Report("t", seed=1)

    def boom(folder):
        raise RuntimeError("disk full")

    r.add_artifact(boom)
    with pytest.raises(RuntimeError, match="disk full"):
        r.write(tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def _strict(text):
    """json.loads that refuses the NaN/Infinity tokens, as strict JSON readers do."""
    def refuse(token):
        raise ValueError(f"not JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_are_written_as_json_strings_float_reads(tmp_path):
    import numpy as np

    from validation.claims.base import HOLDS, Verdict

    r = Report("t", seed=1, config={"eps": float("inf")})
    r.add_result("radius", np.float64(np.inf))
    r.add_result("curve", [1.5, -np.inf, np.nan])
    out = r.write(tmp_path / "run")
    res = _strict((out / "results.json").read_text())["results"]
    assert res["radius"] == "inf" and float(res["radius"]) == np.inf
    assert res["curve"][:2] == [1.5, "-inf"] and np.isnan(float(res["curve"][2]))
    assert _strict((out / "config.json").read_text())["config"] == {"eps": "inf"}
    v = Verdict("x.y", "p", "c", HOLDS, {"ratio": float("nan"), "n": 3})
    assert _strict(v.to_json())["measured"] == {"ratio": "nan", "n": 3}


def test_results_json_holds_no_timing_and_two_writes_are_identical(tmp_path):
    # was: elapsed_s in results.json (and the demo's training seconds, each claim's seconds),
    # so a rerun with the same seed wrote another file
    import time as _time

    outs = []
    for k in range(2):
        r = Report("t", seed=1, config={"T": 2})
        r.add_result("value", [1.5, 2])
        r.add_timing("training_seconds", {"ann": 0.1 + k})
        _time.sleep(0.01)
        outs.append(r.write(tmp_path / f"run{k}"))
    texts = [(o / "results.json").read_bytes() for o in outs]
    assert texts[0] == texts[1]
    assert b"elapsed" not in texts[0] and b"seconds" not in texts[0]
    t = json.loads((outs[1] / "timings.json").read_text())
    assert t["training_seconds"] == {"ann": 1.1} and t["elapsed_s"] >= 0
    verdicts = run_checks("rsc.eq11_rs", seed=0)
    r = Report("claims")
    verdict_table(r, verdicts)
    assert all("seconds" not in c for c in r.results["claims"])
    assert verdicts[0].seconds >= 0  # the Verdict keeps it; only results.json leaves it out


def test_provenance_names_the_source_commit_of_a_checkout(tmp_path, monkeypatch):
    import subprocess

    import evsnn
    from validation import report as rep

    root = Path(evsnn.__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                          text=True)
    if head.returncode != 0:
        pytest.skip("evsnn is not imported from a git checkout")
    commit = rep._source_commit()
    assert commit.split("+")[0] == head.stdout.strip()
    assert rep.package_versions()["evsnn commit"] == commit
    monkeypatch.setattr(rep, "_source_commit", lambda: None)  # an installed wheel
    assert "evsnn commit" not in rep.package_versions()


@pytest.mark.parametrize("key", ["elapsed_s", "", 3])
def test_a_timing_key_that_would_clash_or_is_not_a_name_is_refused(key):
    with pytest.raises(ValueError, match=r"must be a non-empty string other than 'elapsed_s'"):
        Report("t").add_timing(key, 1.0)
