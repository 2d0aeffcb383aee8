"""Tests of validation.reproduce: every reproduction at size="small" (report structure: table,
figure, quoted claims, verdicts), verdicts that follow the numbers (the measurement is replaced
by modified numbers and the verdict must flip), the MS-MPPD gradient of the Stable reproduction,
the registry and the errors."""

from __future__ import annotations

import copy
import json

import pytest

from validation.reproduce import REPRODUCTIONS, run_all
from validation.reproduce import _common as C
from validation.reproduce import ding2025, hart, rsc, stable

VERDICTS = {"supported", "not supported", "undecided"}
# the reproduction module and its measurement function, per registry name
MEASURE = {
    "ding2025_fig2d": (ding2025, "_measure_fig2d"),
    "ding2025_fig3b": (ding2025, "_measure_fig3b"),
    "ding2025_fig4c": (ding2025, "_measure_fig4c"),
    "ding2025_fig5f": (ding2025, "_measure_fig5f"),
    "hart_tables23": (hart, "_measure_hart"),
    "rsc_fig3": (rsc, "_measure_rsc"),
    "stable_table1": (stable, "_measure_stable"),
}


@pytest.fixture(scope="module")
def small_reports():
    """Every reproduction run once at size="small" (models are cached per process)."""
    return {name: fn(size="small", seed=0) for name, fn in REPRODUCTIONS.items()}


def test_registry_covers_every_measurement():
    assert set(REPRODUCTIONS) == set(MEASURE)


@pytest.mark.parametrize("name", sorted(MEASURE))
def test_small_report_structure(small_reports, name, tmp_path):
    rep = small_reports[name]
    md = rep.markdown()
    assert "|---|" in md, "no table in the report"
    assert "## Paper claims vs measurement" in md
    res = rep.results
    claims = res["claims"]
    assert claims, "no claims"
    for c in claims:
        assert c["verdict"] in VERDICTS
        assert c["quote"] in md and c["evidence"] in md
        assert f"**Verdict: {c['verdict']}.**" in md
        verb = {"supported": "supports", "not supported": "does not support",
                "undecided": "cannot decide"}[c["verdict"]]
        assert f"The measurement {verb} this claim" in md
    assert res["overall"] == C.overall([C.Claim(**{k: c[k] for k in (
        "quote", "source", "supported", "evidence", "criterion")}) for c in claims])
    out = rep.write(tmp_path / name)
    pngs = list(out.glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs), "no figure written"
    payload = json.loads((out / "results.json").read_text())
    assert payload["results"]["claims"] == claims
    assert payload["results"]["measured"] == res["measured"]


# --- verdicts follow the numbers --------------------------------------------------------------
def _flip_fig2d(m, good):
    n = m["T"]
    m["taacc_clean"]["ratesyn_start"] = [0.9 if good else 0.1] * n
    m["taacc_clean"]["ratesyn_end"] = [0.1 if good else 0.9] * n
    m["taacc_clean"]["current"] = m["taacc_clean"]["poisson"] = [0.5] * n
    return 2  # index of the claim this edit decides


def _flip_fig3b(m, good):
    for key in m["accuracy"]:
        lab = key.split("/")[0]
        val = {"Temp-BP": 0.9, "Act-BP": 0.5, "CVT": 0.1}.get(lab)
        if val is not None:
            m["accuracy"][key] = [val if good else 1 - val] * len(m["eps"])
    return 0


def _flip_fig4c(m, good):
    vals = {"Act-BP current/rate": 0.1, "Act-BP current/TTFS": 0.5, "Act-BP TTFS/TTFS": 0.9}
    for k, v in vals.items():
        m["accuracy"][k] = [v if good else 1 - v] * len(m["eps"])
    return 0


def _flip_fig5f(m, good):
    m["mean"]["ANN"] = 0.2
    m["mean"]["Temp-BP fused/TTFS"] = 0.5 if good else 0.3
    return 3


def _flip_hart(m, good):
    for c in m["cells"].values():
        c["asr"]["HART"] = 1.0 if good else 0.0
    return 0


def _flip_rsc(m, good):
    for i, v in enumerate(m["variances"]):
        row = m["rows"][f"RSC σ²={v}"]
        level = (i + 1) / 4 if good else 1 - (i + 1) / 4
        row["FGSM"] = [level] * len(m["eps"])
        row["PGD"] = [level] * len(m["eps"])
    return 1


def _flip_stable(m, good):
    for k in stable.ATTACKS:
        m["rows"]["DLIF, Gaussian, ρ = 1"][k] = 0.6 if good else 0.2
        m["rows"]["DLIF, Gaussian, ρ = 0"][k] = 0.4
    return 1


FLIPS = {"ding2025_fig2d": _flip_fig2d, "ding2025_fig3b": _flip_fig3b,
         "ding2025_fig4c": _flip_fig4c, "ding2025_fig5f": _flip_fig5f,
         "hart_tables23": _flip_hart, "rsc_fig3": _flip_rsc, "stable_table1": _flip_stable}


@pytest.mark.parametrize("name", sorted(MEASURE))
def test_verdict_is_computed_from_the_measurement(small_reports, name, monkeypatch):
    """Replace the measurement by the run's own numbers edited to make one claim hold, then to
    make it fail: the reported verdict and sentence must follow."""
    module, attr = MEASURE[name]
    measured = small_reports[name].results["measured"]
    seen = {}
    for good in (True, False):
        m = copy.deepcopy(measured)
        idx = FLIPS[name](m, good)
        monkeypatch.setattr(module, attr, lambda size, seed, progress, m=m: m)
        rep = REPRODUCTIONS[name](size="small", seed=0)
        claim = rep.results["claims"][idx]
        seen[good] = claim["verdict"]
        assert claim["supported"] is good
        verb = "supports" if good else "does not support"
        assert f"The measurement {verb} this claim: {claim['evidence']}" in rep.markdown()
    assert seen == {True: "supported", False: "not supported"}


# --- registry, run_all, errors ----------------------------------------------------------------
def test_run_all_writes_each_report(small_reports, tmp_path, monkeypatch):
    calls = []

    def fake(*, size, seed, progress):
        calls.append((size, seed))
        return small_reports["hart_tables23"]

    monkeypatch.setitem(REPRODUCTIONS, "hart_tables23", fake)
    out = run_all(tmp_path / "runs", names=["hart_tables23"], size="small", seed=3)
    assert calls == [("small", 3)]
    assert list(out) == ["hart_tables23"]
    assert (tmp_path / "runs" / "hart_tables23" / "report.md").exists()


def test_run_all_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"unknown reproduction\(s\) \['nope'\]"):
        run_all(names=["nope"], size="small")


@pytest.mark.parametrize("name", ["ding2025_fig2d", "hart_tables23"])
def test_unknown_size_is_rejected(name):
    with pytest.raises(ValueError, match="size='huge' is not a reproduction size"):
        REPRODUCTIONS[name](size="huge")


def test_paper_quote_rejects_text_not_in_the_paper():
    if not (C.PAPERS / C.PAPER_FILES["hart"]).exists():
        pytest.skip("the papers folder is not present")
    with pytest.raises(ValueError, match="quote not found in hart-attack-iclr-2024.txt"):
        C.paper_quote("hart", "a sentence the paper never wrote")


def test_overall_verdict():
    def claim(s):
        return C.Claim("q", "s", s, "e", "c")

    assert C.overall([claim(True), claim(True)]) == "supported"
    assert C.overall([claim(True), claim(False)]) == "partly supported"
    assert C.overall([claim(False)]) == "not supported"
    assert C.overall([claim(True), claim(None)]) == "undecided"
