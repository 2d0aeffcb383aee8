"""Tests of certify.distributed: data-set certification in-process and on dask.distributed,
table output, certified accuracy."""

from __future__ import annotations

import csv
import json
import os
import sys

import numpy as np
import pytest

from certify.distributed import (
    CertificationTable,
    ClassifierFactory,
    certified_accuracy,
    certify_dataset,
)
from certify.smoothing import ABSTAIN, certify, rsc_fixed, rsc_fresh


# Top-level so that dask workers (separate processes) can unpickle them by reference.
class LinearArgmax:
    """argmax(A · mean_t(seq) + c): a small multi-class linear readout over time."""

    def __init__(self, A, c):
        self.A = np.asarray(A, dtype=np.float64)
        self.c = np.asarray(c, dtype=np.float64)

    def __call__(self, seq):
        return np.argmax(seq.mean(axis=0) @ self.A.T + self.c, axis=1)


def make_linear_argmax(seed, n_classes, n_features):
    rng = np.random.default_rng(seed)
    return LinearArgmax(rng.normal(size=(n_classes, n_features)), np.zeros(n_classes))


def data(n_images=6, n_features=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(n_images, n_features)), rng.integers(0, 3, size=n_images)


CLF = make_linear_argmax(1, 3, 5)
KW = dict(n0=10, n=200, alpha=0.01, num_classes=3, progress=False)


def same_table(a, b):
    for name in ("label", "prediction", "correct", "radius", "p_a_lower"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert (a.noise, a.sigma, a.n_steps, a.n0, a.n, a.alpha) == (
        b.noise, b.sigma, b.n_steps, b.n0, b.n, b.alpha,
    )


# --------------------------------------------------------------------------- in-process
def test_rows_equal_certify_with_spawned_seeds():
    X, y = data()
    noise = rsc_fresh(0.3, 3)
    table = certify_dataset(CLF, X, y, noise, rng=123, **KW)
    seeds = np.random.SeedSequence(123).spawn(len(X))  # the documented stream per image
    for i in range(len(X)):
        cert = certify(CLF, X[i], noise, n0=10, n=200, alpha=0.01, num_classes=3, rng=seeds[i])
        assert table.prediction[i] == cert.prediction
        assert table.radius[i] == cert.radius and table.p_a_lower[i] == cert.p_a_lower
        assert table.correct[i] == (cert.prediction == y[i])
    assert len(table) == len(X) and table.label.tolist() == y.tolist()
    # not degenerate: some images certified with a positive radius
    assert np.any(table.radius > 0)


def test_chunk_and_batch_size_do_not_change_results():
    X, y = data(n_images=7)
    noise = rsc_fixed(0.3, 2)
    ref = certify_dataset(CLF, X, y, noise, rng=5, **KW)
    for chunk, batch in ((3, 17), (7, 1000), (1, 1)):
        same_table(ref, certify_dataset(CLF, X, y, noise, rng=5, chunk_size=chunk,
                                        batch_size=batch, **KW))


def test_factory_builds_same_classifier():
    X, y = data()
    noise = rsc_fixed(0.2, 2)
    factory = ClassifierFactory(make_linear_argmax, (1, 3, 5))
    same_table(certify_dataset(CLF, X, y, noise, rng=8, **KW),
               certify_dataset(factory, X, y, noise, rng=8, **KW))


def test_abstained_rows_are_incorrect_with_zero_radius():
    def coin(seq):  # class 0 or 1 by the sign of the first noisy pixel around 1/2
        return (seq[0, :, 0] > 0.5).astype(np.int64)

    X = np.full((2, 1), 0.5)  # P(class 1) = 1/2 exactly: p_A_lower < 1/2, abstain
    table = certify_dataset(coin, X, [0, 1], rsc_fixed(0.2, 1), rng=0, n0=10, n=200,
                            alpha=0.01, num_classes=2, progress=False)
    assert table.prediction.tolist() == [ABSTAIN, ABSTAIN]
    assert table.radius.tolist() == [0.0, 0.0] and not table.correct.any()


def test_progress_bar(capsys):
    X, y = data(n_images=2)
    certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=0, n0=5, n=20, alpha=0.01,
                    num_classes=3, progress=True)
    assert "certify_dataset" in capsys.readouterr().err


def test_in_process_needs_no_dask(monkeypatch):
    X, y = data(n_images=2)
    ref = certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=3, **KW)
    # None in sys.modules makes any `import distributed` / `import dask.distributed` fail
    for mod in ("dask", "dask.distributed", "distributed"):
        monkeypatch.setitem(sys.modules, mod, None)
    same_table(ref, certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=3, **KW))
    with pytest.raises(ImportError, match=r"scheduler='local' needs dask.distributed.*dist extra"):
        certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=3, scheduler="local", **KW)


# --------------------------------------------------------------------------- dask
@pytest.mark.slow  # ~9 s: two clusters start and stop
def test_local_cluster_and_address_equal_in_process():
    distributed = pytest.importorskip("distributed")
    X, y = data(n_images=6)
    noise = rsc_fresh(0.3, 2)
    ref = certify_dataset(CLF, X, y, noise, rng=77, **KW)
    # scheduler="local": 2 worker processes on 127.0.0.1, closed afterwards
    on_local = certify_dataset(CLF, X, y, noise, rng=77, scheduler="local", n_workers=2,
                               chunk_size=2, **KW)
    same_table(ref, on_local)
    # a scheduler address string, with a factory built on the workers (threads, for speed)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        factory = ClassifierFactory(make_linear_argmax, (1, 3, 5))
        on_address = certify_dataset(factory, X, y, noise, rng=77,
                                     scheduler=cluster.scheduler_address, progress=True,
                                     n0=10, n=200, alpha=0.01, num_classes=3)
    same_table(ref, on_address)


def test_local_thread_cluster_equal_in_process():
    pytest.importorskip("distributed")
    X, y = data(n_images=3)
    noise = rsc_fixed(0.3, 2)
    ref = certify_dataset(CLF, X, y, noise, rng=4, **KW)
    # threads need tcp on loopback (dask's default for threads is in-process comms)
    same_table(ref, certify_dataset(CLF, X, y, noise, rng=4, scheduler="local", n_workers=2,
                                    processes=False, **KW))


# --------------------------------------------------------------------------- output
def test_csv_and_json_round_trip(tmp_path):
    X, y = data()
    table = certify_dataset(CLF, X, y, rsc_fixed(0.3, 2), rng=1, **KW)
    path = table.to_csv(tmp_path / "cert.csv")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["prediction"]) for r in rows] == table.prediction.tolist()
    assert [float(r["radius"]) for r in rows] == table.radius.tolist()  # repr: exact
    assert [float(r["p_a_lower"]) for r in rows] == table.p_a_lower.tolist()
    assert [bool(int(r["correct"])) for r in rows] == table.correct.tolist()
    assert [int(r["index"]) for r in rows] == list(range(len(X)))
    same_table(table, CertificationTable.read_json(table.to_json(tmp_path / "cert.json")))
    with open(tmp_path / "cert.json") as fh:
        assert json.load(fh)["noise"] == "rsc_fixed"
    assert sorted(os.listdir(tmp_path)) == ["cert.csv", "cert.json"]  # no temporary files left


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    X, y = data(n_images=2)
    table = certify_dataset(CLF, X, y, rsc_fixed(0.3, 2), rng=1, **KW)
    target = tmp_path / "cert.json"
    target.write_text("old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        table.to_json(target)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["cert.json"]  # the temporary file was removed


def test_certified_accuracy_curve():
    # hand count: correct & radius >= r over 5 images
    radius = np.array([0.0, 0.2, 0.5, 0.5, 1.0])
    correct = np.array([False, True, True, False, True])
    got = certified_accuracy(radius, correct, [0.0, 0.2, 0.3, 0.5, 1.0, 1.5])
    assert got.tolist() == [3 / 5, 3 / 5, 2 / 5, 2 / 5, 1 / 5, 0.0]
    assert certified_accuracy(radius, correct, 0.5) == 2 / 5
    table = CertificationTable(np.zeros(5, int), np.zeros(5, int), correct, radius, radius,
                               "gaussian", 0.5, 1, 1, 1, 0.1)
    assert table.certified_accuracy([0.2]).tolist() == [3 / 5]


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kw, exc, match",
    [
        ({"classify": 3}, TypeError, r"classify must be callable, got int 3"),
        ({"noise": 0.3}, TypeError, r"noise must be a NoiseModel"),
        ({"X": None}, TypeError, r"X must be a 2-D array \[B, N\] of images, got NoneType"),
        ({"X": [[0.1], [0.2, 0.3]]}, TypeError, r"X must be a rectangular array"),
        ({"X": np.array([["a"]])}, TypeError, r"X must hold real numbers, got dtype <U1"),
        ({"X": np.zeros(3)}, ValueError, r"X must be a non-empty 2-D array \[B, N\] .* \(3,\)"),
        ({"X": np.full((2, 5), np.inf)}, ValueError, r"X holds NaN or infinite values"),
        ({"y": np.zeros(2)}, TypeError, r"y must hold integer labels, got dtype float64"),
        ({"y": np.zeros(3, int)}, ValueError, r"y must have shape \(2,\), one label per image"),
        ({"y": np.array([0, 3])}, ValueError, r"y holds label 3 outside \[0, num_classes=3\)"),
        ({"scheduler": 1}, TypeError, r"scheduler must be None .* got int 1"),
        ({"scheduler": " "}, ValueError, r"scheduler=' ' is empty; pass None"),
        ({"n_workers": 0}, ValueError, r"n_workers=0 must be an integer >= 1"),
        ({"chunk_size": 0}, ValueError, r"chunk_size=0 must be an integer >= 1"),
        ({"processes": "yes"}, TypeError, r"processes must be True or False, got 'yes'"),
        ({"progress": 1}, TypeError, r"progress must be True or False, got 1"),
        ({"alpha": 0.9}, ValueError, r"alpha=0.9 must be finite"),
        ({"n0": 0}, ValueError, r"n0=0 must be an integer >= 1"),
    ],
)
def test_certify_dataset_argument_errors(kw, exc, match):
    args = dict(classify=CLF, X=np.zeros((2, 5)), y=np.zeros(2, int), noise=rsc_fixed(0.2, 1),
                rng=0, n0=5, n=10, alpha=0.01, num_classes=3, progress=False)
    args.update(kw)
    with pytest.raises(exc, match=match):
        certify_dataset(args.pop("classify"), args.pop("X"), args.pop("y"), args.pop("noise"),
                        **args)


def test_factory_errors():
    with pytest.raises(TypeError, match=r"make must be callable, got int 1"):
        ClassifierFactory(1)
    with pytest.raises(TypeError, match=r"args must be a tuple, got list \[1\]"):
        ClassifierFactory(make_linear_argmax, [1])
    with pytest.raises(TypeError, match=r"kwargs must be a dict, got tuple"):
        ClassifierFactory(make_linear_argmax, (), ())
    with pytest.raises(TypeError, match=r"ClassifierFactory.make returned int, not a callable"):
        ClassifierFactory(int).build()


@pytest.mark.parametrize(
    "radius, correct, radii, exc, match",
    [
        (np.array(["a"]), [True], 0.0, TypeError, r"radius must hold real numbers, got dtype <U1"),
        ([0.1], [1], 0.0, TypeError, r"correct must be boolean, got dtype int64"),
        ([0.1, 0.2], [True], 0.0, ValueError, r"equal length, got shapes \(2,\) and \(1,\)"),
        (np.zeros(0), np.zeros(0, bool), 0.0, ValueError, r"non-empty 1-D arrays"),
        ([0.1], [True], "a", TypeError, r"radii must hold real numbers"),
        ([0.1], [True], [[0.1]], ValueError, r"radii must be a scalar or 1-D array"),
        ([0.1], [True], [-0.1], ValueError, r"radii=\[-0.1\] must be finite and >= 0"),
        ([0.1], [True], [[0.1], [0.2, 0.3]], TypeError, r"radii must be a 1-D array of real"),
    ],
)
def test_certified_accuracy_errors(radius, correct, radii, exc, match):
    with pytest.raises(exc, match=match):
        certified_accuracy(radius, correct, radii)


def test_path_type_error(tmp_path):
    X, y = data(n_images=1)
    table = certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=0, **KW)
    with pytest.raises(TypeError, match=r"path must be a str or os.PathLike, got int 3"):
        table.to_csv(3)
