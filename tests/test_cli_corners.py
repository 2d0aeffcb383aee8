"""Corner cases of the ``evsnn`` command, the report writer and the certification tables:
every --help, TOML values of the wrong kind, flags over the file, --out at a file or under one,
failures half-way (no folder, no temporary files, an overwritten run kept whole), numeric
options at their bounds, table files round-tripping whatever the batch size."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference.helpers import example_count, one_line_error

from certify.distributed import CertificationTable, certify_dataset
from certify.smoothing import certified_radius, gaussian, rsc_fixed
from certify.spike_distance import victor_purpura_distance
from evsnn.cli import _build_parser, main

DIST = ["distance", "--a", "1,2", "--b", "2.5"]


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("command", sorted(_build_parser()[1]))
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert f"usage: evsnn {command}" in capsys.readouterr().out


# --- the TOML file ------------------------------------------------------------------------------
@settings(max_examples=example_count(15))
@given(st.sampled_from([("T", st.floats(allow_nan=False).filter(lambda v: not v.is_integer())),
                        ("T", st.booleans()), ("seed", st.floats(0.5, 9.5).filter(
                            lambda v: not v.is_integer())), ("lam", st.booleans()),
                        ("overwrite", st.sampled_from(['"yes"', '"no"', "0", "1"])),
                        ("out", st.integers(0, 9))]).flatmap(
    lambda kv: st.tuples(st.just(kv[0]), kv[1])))
def test_config_values_of_the_wrong_kind_are_refused(tmp_path_factory, kv):
    key, value = kv
    tmp = tmp_path_factory.mktemp("cfg")
    # TOML literals: repr for floats (inf, 1e+300), JSON for bools and ints
    text = (value if isinstance(value, str) else repr(value) if isinstance(value, float)
            else json.dumps(value))
    (tmp / "c.toml").write_text(f"[gain]\n{key} = {text}\n")
    out = tmp / "run"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["gain", "--n-in", "2", "--n-out", "2"] + (["--T", "2"] if key != "T" else [])
                  + ["--config", str(tmp / "c.toml"), "--out", str(out)])
    assert rc == 2 and f"{key} = " in err.getvalue(), err.getvalue()
    assert not out.exists()


def test_config_float_is_not_truncated_to_an_int(tmp_path, capsys):
    # was: T = 4.5 ran with T = 4 (int(4.5)), and overwrite = "no" overwrote (a truthy string)
    cfg = tmp_path / "c.toml"
    cfg.write_text("T = 4.5\n")
    assert main(["gain", "--n-in", "2", "--n-out", "2", "--config", str(cfg),
                 "--out", str(tmp_path / "g")]) == 2
    assert "T = 4.5 is not a valid int" in one_line_error(capsys)
    (tmp_path / "d").mkdir()
    cfg.write_text('overwrite = "no"\n')
    assert main(DIST + ["--config", str(cfg), "--out", str(tmp_path / "d")]) == 2
    assert "overwrite = 'no' must be true or false" in one_line_error(capsys)
    cfg.write_text("model = 3\n")  # a path option: a number is no file name
    assert main(["attack", "--config", str(cfg), "--out", str(tmp_path / "a")]) == 2
    assert 'model = 3 must be a string; write model = "3"' in one_line_error(capsys)


def test_required_option_from_the_config_file(tmp_path, capsys):
    # was: argparse demanded --model on the command line even when the file gave it
    cfg = tmp_path / "c.toml"
    cfg.write_text('[attack]\nmodel = "no/such/model"\n')
    assert main(["attack", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert "--model 'no/such/model': no such file" in one_line_error(capsys)


@pytest.mark.parametrize("make,match", [
    (lambda p: p.mkdir(), "cannot read it as a UTF-8 TOML file"),
    (lambda p: p.write_bytes(b"q = '\xff'\n"), "cannot read it as a UTF-8 TOML file"),
    (lambda p: p.write_text("q = \n"), "is not valid TOML"),
    (lambda p: p.write_text("[distance]\nq = 1\n[distance]\nq = 2\n"), "is not valid TOML"),
])
def test_unreadable_config_is_one_line(tmp_path, capsys, make, match):
    make(tmp_path / "c.toml")
    assert main(DIST + ["--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "r")]) == 2
    assert match in one_line_error(capsys)
    assert not (tmp_path / "r").exists()


@settings(max_examples=example_count(10))
@given(q_file=st.sampled_from([0.25, 1.0, 3.0]), q_flag=st.sampled_from([None, 0.5, 2.0]),
       top=st.booleans(), empty_table=st.booleans())
def test_flags_win_over_the_file_and_an_empty_file_changes_nothing(tmp_path_factory, q_file,
                                                                  q_flag, top, empty_table):
    tmp = tmp_path_factory.mktemp("flags")
    cfg = tmp / "c.toml"
    cfg.write_text(("" if empty_table else (f"q = {q_file}\n" if top else
                                            f"[distance]\nq = {q_file}\n")) + "[gain]\nlam = 2\n")
    out = tmp / "run"
    argv = DIST + ["--config", str(cfg), "--out", str(out)]
    if q_flag is not None:
        argv += ["--q", str(q_flag)]
    assert main(argv) == 0
    q = q_flag if q_flag is not None else (1.0 if empty_table else q_file)  # 1.0: the default
    assert json.loads((out / "config.json").read_text())["config"]["q"] == q
    res = json.loads((out / "results.json").read_text())["results"]
    assert res["Victor-Purpura (q)"] == victor_purpura_distance(np.array([1.0, 2]),
                                                                np.array([2.5]), q=q)


def test_the_commands_table_wins_over_the_top_level(tmp_path):
    # the top-level q won over [distance]'s before: the more general key beat the specific one
    cfg = tmp_path / "c.toml"
    cfg.write_text("q = 0.25\n[distance]\nq = 3.0\n")
    assert main(DIST + ["--config", str(cfg), "--out", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["q"] == 3.0


# --- numeric options at their bounds -------------------------------------------------------------
@pytest.mark.parametrize("argv,match", [
    (DIST + ["--q", "nan"], "--q nan must be >= 0"),
    (DIST + ["--tau", "0"], "--tau 0.0 must be positive"),
    (DIST + ["--tau=-inf"], "--tau -inf must be positive"),
    (DIST + ["--tau", "nan"], "--tau nan must be positive"),
    (["gain", "--lam", "nan"], "--lam nan must lie in [0, 1]"),
    (["gain", "--lam", "-0.0000001"], "--lam -1e-07 must lie in [0, 1]"),
    (["attack", "--model", "m", "--eps", "nan"], "--eps nan must be positive"),
    (["attack", "--model", "m", "--samples", "-1"], "--samples -1 must be an integer >= 1"),
    (["certify", "--model", "m", "--samples", "0"], "--samples 0 must be an integer >= 1"),
    (["certify", "--model", "m", "--workers", "0"], "--workers 0 must be an integer >= 1"),
    (["certify", "--model", "m", "--workers", "-2"], "--workers -2 must be an integer >= 1"),
])
def test_numeric_options_at_their_bounds(argv, match, tmp_path, capsys):
    # was: NaN passed the positivity check; --samples -1 sliced all but the last test image;
    # --workers 0 or -2 ran as 1
    assert main(argv + ["--out", str(tmp_path / "r")]) == 2
    assert match in one_line_error(capsys)
    assert not (tmp_path / "r").exists() and _leftovers(tmp_path) == []


# --- --out ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_out_at_a_file_or_under_one(tmp_path, capsys, overwrite):
    # was: --overwrite onto a file raised NotADirectoryError with a traceback
    f = tmp_path / "file"
    f.write_text("keep")
    assert main(DIST + ["--out", str(f)] + overwrite) == 2
    assert "is a file, not a run folder" in one_line_error(capsys)
    assert main(DIST + ["--out", str(f / "sub" / "run")] + overwrite) == 2
    assert "which is a file" in one_line_error(capsys)
    assert f.read_text() == "keep" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("out", ["exists", "file", "under_a_file"])
def test_an_unwritable_out_is_refused_before_the_work(tmp_path, monkeypatch, capsys, out):
    # was: 'evsnn attack --out <existing folder>' ran the whole attack, printed its numbers and
    # only then refused the folder (exit 2, nothing kept)
    import validation.demo

    def work(*a, **k):
        raise AssertionError("the run was computed before --out was checked")

    monkeypatch.setattr(validation.demo, "train_model", work)
    (tmp_path / "exists").mkdir()
    (tmp_path / "file").write_text("keep")
    target = {"exists": tmp_path / "exists", "file": tmp_path / "file",
              "under_a_file": tmp_path / "file" / "run"}[out]
    assert main(["train", "--model", "ann", "--no-progress", "--out", str(target)]) == 2
    err = one_line_error(capsys)
    assert err.startswith("evsnn train: error: --out:")
    assert {"exists": "exists; choose another folder", "file": "is a file, not a run folder",
            "under_a_file": "which is a file"}[out] in err
    with pytest.raises(AssertionError, match="computed before"):  # --overwrite goes on to work
        main(["train", "--model", "ann", "--no-progress", "--out", str(tmp_path / "exists"),
              "--overwrite"])


def test_missing_parents_are_made(tmp_path):
    out = tmp_path / "a" / "b" / "run"
    assert main(DIST + ["--out", str(out)]) == 0
    assert (out / "report.md").exists() and _leftovers(out.parent) == []


@pytest.mark.parametrize("where", ["json", "replace"])
@pytest.mark.parametrize("exc", [RuntimeError("injected"), PermissionError(13, "injected"),
                                 KeyboardInterrupt()])
def test_failure_half_way_leaves_nothing_and_keeps_the_old_run(tmp_path, monkeypatch, capsys,
                                                               where, exc):
    # was: an --overwrite whose final rename failed had already deleted the old run
    out = tmp_path / "run"
    assert main(DIST + ["--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    import validation.report as rep

    def boom(*a, **k):
        raise exc

    if where == "json":
        monkeypatch.setattr(json, "dumps", boom)  # the writer's JSON, mid-write
    else:
        real = os.replace
        monkeypatch.setattr(rep.os, "replace", lambda a, b: boom() if ".incomplete-" in str(a)
                            else real(a, b))
    for target, flags in ((out, ["--overwrite"]), (tmp_path / "new", [])):
        if isinstance(exc, PermissionError):
            assert main(DIST + ["--q", "3", "--out", str(target)] + flags) == 2
            assert "cannot write the run folder" in one_line_error(capsys)
        else:
            with pytest.raises(type(exc)):
                main(DIST + ["--q", "3", "--out", str(target)] + flags)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not (tmp_path / "new").exists() and _leftovers(tmp_path) == []


# --- the certification tables ---------------------------------------------------------------------
def _half(seq):
    return (seq[0, :, 0] > seq[0, :, 1]).astype(np.int64)


X = np.array([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5], [1.0, 0.0], [0.0, 0.0]])
Y = np.array([1, 0, 1, 1, 0])


@settings(max_examples=example_count(8))
@given(seed=st.integers(0, 2**64 - 1), batch=st.sampled_from([1, 2, 7, 64, 1000]),
       chunk=st.integers(1, 6), rows=st.integers(1, 5))
def test_tables_round_trip_and_ignore_batch_and_chunk_size(tmp_path_factory, seed, batch, chunk,
                                                          rows):
    kw = dict(n0=3, n=16, alpha=0.1, num_classes=2, rng=seed, progress=False)
    a = certify_dataset(_half, X[:rows], Y[:rows], rsc_fixed(0.2, 2), batch_size=batch,
                        chunk_size=chunk, **kw)
    b = certify_dataset(_half, X[:rows], Y[:rows], rsc_fixed(0.2, 2), **kw)
    for name in ("label", "prediction", "correct", "radius", "p_a_lower"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    abstained = a.prediction == -1
    assert np.all(a.radius[abstained] == 0) and not a.correct[abstained].any()
    tmp = tmp_path_factory.mktemp("tab")
    for back in (CertificationTable.read_csv(a.to_csv(tmp / "t.csv")),
                 CertificationTable.read_json(a.to_json(tmp / "t.json"))):
        for name in ("label", "prediction", "correct", "radius", "p_a_lower"):
            got, want = getattr(back, name), getattr(a, name)
            assert got.dtype == want.dtype and np.array_equal(got, want), name
        assert back.parameters() == a.parameters()
        assert (back.batch_size, back.chunk_size, back.seed_entropy) == (batch, chunk, seed)
    assert _leftovers(tmp) == []


@pytest.mark.parametrize("column,value,match", [
    ("radius", math.nan, r"radius\[1\]=nan must be finite and >= 0"),
    ("radius", math.inf, r"radius\[1\]=inf must be finite and >= 0"),
    ("radius", -0.5, r"radius\[1\]=-0.5 must be finite and >= 0"),
    ("p_a_lower", math.nan, r"p_a_lower\[1\]=nan must lie in \[0, 1\]"),
    ("p_a_lower", 1.5, r"p_a_lower\[1\]=1.5 must lie in \[0, 1\]"),
])
def test_table_refuses_radii_and_bounds_no_file_can_hold(column, value, match):
    # was: accepted; to_csv wrote it and to_json failed with "Out of range float values are not
    # JSON compliant" (no column, no row), and a negative radius or a bound > 1 went through
    # row 0 as certify writes it (the table checks that too); row 1 gets the value
    cols = dict(label=[0, 1], prediction=[0, -1], correct=[True, False],
                radius=[certified_radius(0.7, gaussian(0.5, 2)), 0.0], p_a_lower=[0.7, 0.4])
    cols[column] = [cols[column][0], value]
    with pytest.raises(ValueError, match=match):
        CertificationTable(**cols, noise="gaussian", sigma=0.5, n_steps=2, n0=1, n=2, alpha=0.1)


@pytest.mark.parametrize("argv, message", [
    (["train", "--seed", "-1"], "--seed -1 must be an integer >= 0"),
    (["attack", "--seed", "-3", "--model", "m"], "--seed -3 must be an integer >= 0"),
    (["train", "--hidden", "0"], "--hidden 0 must be an integer >= 1"),
    (["train", "--T", "0"], "--T 0 must be an integer >= 1"),
    (["certify", "--model", "m", "--T", "0"], "--T 0 must be an integer >= 1"),
    (["certify", "--model", "m", "--n0", "0"], "--n0 0 must be an integer >= 1"),
    (["certify", "--model", "m", "--n", "-5"], "--n -5 must be an integer >= 1"),
    (["gain", "--n-in", "2", "--n-out", "2", "--T", "0"], "--T 0 must be an integer >= 1"),
])
def test_integer_options_are_named_before_any_work(argv, message, tmp_path, capsys):
    # review (/tmp/rev_conv/cli_msgs.sh): the library's checks answered, naming its own
    # parameters ("sizes[1]=0", "n_steps=0") or nothing (NumPy: "expected non-negative
    # integer"), after the data had been loaded
    out = tmp_path / "run"
    assert main(argv + ["--no-progress", "--out", str(out)]) == 2
    err = one_line_error(capsys)
    assert err.endswith(message), err
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["gain", "--n-in", "0"], "--n-in 0 must be an integer >= 1"),
    (["gain", "--n-out", "-2"], "--n-out -2 must be an integer >= 1"),
    (["grade", "--samples", "0"], "--samples 0 must be an integer >= 1"),
    (["grade", "--samples", "-1"], "--samples -1 must be an integer >= 1"),
])
def test_more_options_are_named_before_any_work(argv, message, tmp_path, capsys):
    # review (/tmp/rev_cli2/): 'negative dimensions are not allowed', 'weight must be a
    # non-empty 2-D array', 'scores holds no samples'; --samples -1 ran all but one image
    out = tmp_path / "run"
    assert main(argv + ["--out", str(out)]) == 2
    err = one_line_error(capsys)
    assert err.endswith(message), err
    assert not out.exists()


def test_gain_weights_files_and_distance_at_q_zero(tmp_path, capsys):
    (tmp_path / "empty.npy").write_bytes(b"")
    np.savez(tmp_path / "w.npz", w=np.eye(2))
    for name, what in (("empty.npy", "cannot read a .npy array"),
                       ("w.npz", "an .npz archive, not a .npy array")):
        assert main(["gain", "--weights", str(tmp_path / name), "--out",
                     str(tmp_path / "g")]) == 2
        assert what in one_line_error(capsys)
    assert not (tmp_path / "g").exists()
    # q = 0: the difference of the spike counts (was refused as not positive)
    assert main(["distance", "--a", "1,2,3", "--b", "5", "--q", "0", "--out",
                 str(tmp_path / "d")]) == 0
    assert "Victor-Purpura 2;" in capsys.readouterr().out
    # gain has no --dtype: it computes in float64 only
    assert main(["gain", "--dtype", "float32", "--out", str(tmp_path / "g2")]) == 2
    assert "unrecognized arguments: --dtype float32" in one_line_error(capsys)


@pytest.mark.parametrize("argv, line", [
    (["gain", "--T", "2.5"],
     "evsnn gain: error: argument --T: invalid int value: '2.5' (see 'evsnn gain --help')"),
    (DIST + ["--q", "abc"], "evsnn distance: error: argument --q: invalid float value: 'abc'"),
    (["attack"], "evsnn attack: error: the following arguments are required: --model"),
    (["gainx"], "evsnn: error: argument command: invalid choice: 'gainx'"),
    ([], "evsnn: error: the following arguments are required: command"),
])
def test_argparse_errors_are_one_line_like_the_others(argv, line, capsys):
    # was: argparse's usage lines, then its own error line, and a SystemExit
    assert main(argv) == 2
    assert one_line_error(capsys).startswith(line)


def test_gain_records_the_shape_of_the_weights_it_ran(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.full((3, 5), 0.1))
    out = tmp_path / "g"
    assert main(["gain", "--weights", str(tmp_path / "w.npy"), "--T", "3", "--out",
                 str(out)]) == 0
    conf = json.loads((out / "config.json").read_text())["config"]
    assert (conf["n_out"], conf["n_in"]) == (3, 5)  # was: the unused defaults 20, 20
    assert main(["gain", "--weights", str(tmp_path / "w.npy"), "--n-in", "4", "--out",
                 str(tmp_path / "g2")]) == 2
    assert "--n-in 4 differs from the 5 of the matrix" in one_line_error(capsys)
    np.save(tmp_path / "v.npy", np.ones(4))
    assert main(["gain", "--weights", str(tmp_path / "v.npy"), "--out",
                 str(tmp_path / "g3")]) == 2
    assert "holds an array of shape (4,)" in one_line_error(capsys)
    assert not (tmp_path / "g2").exists() and not (tmp_path / "g3").exists()
    assert main(["gain", "--T", "2", "--out", str(tmp_path / "g4")]) == 0
    conf = json.loads((tmp_path / "g4" / "config.json").read_text())["config"]
    assert (conf["n_out"], conf["n_in"]) == (20, 20)
