"""Tests of certify.distributed: data-set certification in-process and on dask.distributed,
table output, certified accuracy."""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import os
import re
import stat
import sys

import numpy as np
import pytest
from reference.helpers import read_in_thread

from certify.distributed import (
    TABLE_FORMAT,
    CertificationTable,
    ClassifierFactory,
    certified_accuracy,
    certify_dataset,
    data_digest,
)
from certify.smoothing import (
    NOISE_CHUNK, ABSTAIN, certified_radius, certify, gaussian, rsc_fixed, rsc_fresh,
)
from evsnn.encoders import poisson


# Top-level so that dask workers (separate processes) can unpickle them by reference.
class LinearArgmax:
    """argmax(A · mean_t(seq) + c): a small multi-class linear readout over time."""

    def __init__(self, A, c):
        self.A = np.asarray(A, dtype=np.float64)
        self.c = np.asarray(c, dtype=np.float64)

    def __call__(self, seq):
        return np.argmax(seq.mean(axis=0) @ self.A.T + self.c, axis=1)


class TypedLinearArgmax(LinearArgmax):
    """LinearArgmax computing in ``dtype``, which it shows as NetworkClassifier does."""

    def __init__(self, A, c, dtype):
        super().__init__(A, c)
        self.dtype = np.dtype(dtype)

    def __call__(self, seq):
        A, c = self.A.astype(self.dtype), self.c.astype(self.dtype)
        return np.argmax(seq.mean(axis=0).astype(self.dtype) @ A.T + c, axis=1)


def make_linear_argmax(seed, n_classes, n_features):
    rng = np.random.default_rng(seed)
    return LinearArgmax(rng.normal(size=(n_classes, n_features)), np.zeros(n_classes))


def data(n_images=6, n_features=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(n_images, n_features)), rng.integers(0, 3, size=n_images)


CLF = make_linear_argmax(1, 3, 5)
KW = dict(n0=10, n=200, alpha=0.01, num_classes=3, progress=False)


# where a run ran: recorded, but the results do not depend on them
WHERE = ("scheduler", "n_workers", "processes")


def same_table(a, b, ignore=WHERE + ("batch_size", "chunk_size", "classifier")):
    """Equal columns and equal run parameters, except those in ``ignore``."""
    for name in ("label", "prediction", "correct", "radius", "p_a_lower"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert getattr(a, name).dtype == getattr(b, name).dtype, name
    pa, pb = a.parameters(), b.parameters()
    assert pa.keys() == pb.keys()
    for key in pa:
        if key not in ignore:
            assert pa[key] == pb[key], key


def poisson_noise(sigma, T):
    # Gaussian noise, then Poisson coding: a stochastic encoder (picklable: a partial of a
    # top-level function)
    return gaussian(sigma, T, encode=functools.partial(poisson, T=T), encode_rng=True)


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


def test_local_cluster_start_failure_names_the_main_guard(monkeypatch):
    """A script that calls certify_dataset(scheduler='local') at module level is re-run by the
    spawned workers, and dask says only "Nanny failed to start" (seen running such a script);
    the error says what to do."""
    distributed = pytest.importorskip("distributed")

    def nanny_fails(*args, **kwargs):
        raise RuntimeError("Nanny failed to start.")

    monkeypatch.setattr(distributed, "LocalCluster", nanny_fails)
    X, y = data(n_images=2)
    with pytest.raises(RuntimeError, match=r"could not start its 2 worker process\(es\) "
                       r"\(Nanny failed to start.\).*if __name__ == \"__main__\":.*"
                       r"processes=False"):
        certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=3, scheduler="local", n_workers=2,
                        **KW)


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


@pytest.mark.parametrize("noise", [rsc_fixed(0.3, 2), poisson_noise(0.2, 3)],
                         ids=["rsc_fixed", "gaussian-poisson"])
def test_local_thread_cluster_equal_in_process(noise):
    pytest.importorskip("distributed")
    X, y = data(n_images=3)
    ref = certify_dataset(CLF, X, y, noise, rng=4, **KW)
    # threads need tcp on loopback (dask's default for threads is in-process comms)
    on_cluster = certify_dataset(CLF, X, y, noise, rng=4, scheduler="local", n_workers=2,
                                 processes=False, **KW)
    same_table(ref, on_cluster)
    assert (on_cluster.scheduler, on_cluster.n_workers, on_cluster.processes) == ("local", 2,
                                                                                  False)
    assert np.any(ref.radius > 0)


# --------------------------------------------------------------------------- output
def test_csv_and_json_round_trip(tmp_path):
    X, y = data()
    table = certify_dataset(CLF, X, y, rsc_fixed(0.3, 2), rng=1, **KW)
    path = table.to_csv(tmp_path / "cert.csv")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    assert [int(r["prediction"]) for r in rows] == table.prediction.tolist()
    assert [float(r["radius"]) for r in rows] == table.radius.tolist()  # repr: exact
    assert [float(r["p_a_lower"]) for r in rows] == table.p_a_lower.tolist()
    assert [bool(int(r["correct"])) for r in rows] == table.correct.tolist()
    assert [int(r["index"]) for r in rows] == list(range(len(X)))
    same_table(table, CertificationTable.read_json(table.to_json(tmp_path / "cert.json")),
               ignore=())
    same_table(table, CertificationTable.read_csv(path), ignore=())
    with open(tmp_path / "cert.json") as fh:
        assert json.load(fh)["noise"] == "rsc_fixed"
    assert sorted(os.listdir(tmp_path)) == ["cert.csv", "cert.json"]  # no temporary files left
    # numpy and pandas read the rows and skip the parameter lines
    arr = np.genfromtxt(path, delimiter=",", names=True)
    assert arr["radius"].tolist() == table.radius.tolist()
    assert np.loadtxt(path, delimiter=",", skiprows=1)[:, 2].tolist() == table.prediction.tolist()
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(path, comment="#")
    assert list(frame.columns) == ["index", "label", "prediction", "correct", "radius",
                                   "p_a_lower"]
    assert frame["p_a_lower"].tolist() == table.p_a_lower.tolist()


def test_csv_and_json_to_a_pipe_or_fifo_are_written_in_place(tmp_path):
    # /dev/stdout when it is a pipe (here an anonymous pipe reached by path) failed naming a
    # hidden '.pipe:[...].tmp' file; a FIFO was replaced by a regular file
    X, y = data(n_images=2)
    table = certify_dataset(CLF, X, y, rsc_fixed(0.3, 2), rng=1, **KW)
    r, w = os.pipe()

    def to_pipe():
        try:
            table.to_csv(f"/dev/fd/{w}")
        finally:
            os.close(w)  # the reader's EOF

    finish = read_in_thread(lambda: os.fdopen(r, "rb"))
    to_pipe()
    (tmp_path / "copy.csv").write_bytes(finish())
    same_table(table, CertificationTable.read_csv(tmp_path / "copy.csv"), ignore=())
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    finish = read_in_thread(lambda: open(fifo, "rb"))
    table.to_json(fifo)
    text = finish()
    (tmp_path / "copy.json").write_bytes(text)
    same_table(table, CertificationTable.read_json(tmp_path / "copy.json"), ignore=())
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_table_records_every_parameter_of_the_run(tmp_path):
    X, y = data(n_images=4)
    noise = poisson_noise(0.25, 3)
    gen = np.random.default_rng(12)
    table = certify_dataset(CLF, X, y, noise, rng=gen, chunk_size=3, batch_size=77, **KW)
    # the root SeedSequence a Generator seeds (128 bits drawn from it), written out
    root = np.random.SeedSequence(
        [int(v) for v in np.random.default_rng(12).integers(0, 2**32, size=4)])
    expect = {
        "format": TABLE_FORMAT, "noise": "gaussian", "sigma": 0.25, "n_steps": 3,
        "clamp": True, "encoder": "functools.partial(evsnn.encoders.poisson, T=3)",
        "encode_rng": True, "normals": "numpy", "n0": 10, "n": 200, "alpha": 0.01,
        "num_classes": 3,
        "seed_entropy": list(root.entropy), "seed_spawn_key": [], "seed_pool_size": 4,
        "batch_size": 77, "chunk_size": 3, "noise_chunk": NOISE_CHUNK,
        "classifier": f"{LinearArgmax.__module__}.LinearArgmax(...)", "classifier_dtype": None,
        "n_features": 5, "data_sha256": data_digest(X), "scheduler": None,
        "n_workers": None, "processes": None,
    }
    got = table.parameters()
    assert set(got["versions"]) == {"evsnn", "python", "numpy", "scipy", "statsmodels", "numba"}
    assert got["versions"]["numpy"] == np.__version__
    del got["versions"]
    assert got == expect
    # in the CSV: one '# key: JSON' line per parameter, between the header and the rows
    lines = table.to_csv(tmp_path / "t.csv").read_text().splitlines()
    assert lines[0] == "index,label,prediction,correct,radius,p_a_lower"
    assert lines[1] == f'# format: "{TABLE_FORMAT}"' and lines[3] == "# sigma: 0.25"
    assert sum(line.startswith("# ") for line in lines) == len(expect) + 1
    assert not any(line.startswith("#") for line in lines[len(expect) + 2:])


def test_files_hold_every_field_in_declaration_order(tmp_path):
    # one list: the dataclass's fields; the parameters follow the columns in the same order
    X, y = data(n_images=2)
    table = certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=0, **KW)
    names = [f.name for f in dataclasses.fields(CertificationTable)]
    columns = ["label", "prediction", "correct", "radius", "p_a_lower"]
    assert names[:5] == columns
    assert list(table.parameters()) == ["format", *names[5:]]
    lines = table.to_csv(tmp_path / "t.csv").read_text().splitlines()
    assert lines[0] == ",".join(["index", *columns])
    assert [line[2:].partition(":")[0] for line in lines[1:len(names) - 3]] == [
        "format", *names[5:]]
    with open(table.to_json(tmp_path / "t.json")) as fh:
        assert list(json.load(fh)) == ["format", *names[5:], "columns"]


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("rng", [None, "generator", 2024], ids=["None", "Generator", "int"])
def test_round_trip_rebuilds_the_run(tmp_path, fmt, rng):
    # from the file alone (plus the classifier, the images and the encoder, which a file
    # cannot hold) the run is rebuilt and gives identical results; rng=None is fresh entropy
    X, y = data(n_images=5)
    noise = poisson_noise(0.3, 2)
    if rng == "generator":
        rng = np.random.default_rng(3)
    table = certify_dataset(CLF, X, y, noise, rng=rng, chunk_size=2, batch_size=50, **KW)
    path = getattr(table, f"to_{fmt}")(tmp_path / f"run.{fmt}")
    back = getattr(CertificationTable, f"read_{fmt}")(path)
    same_table(table, back, ignore=())
    again = back.reproduce(CLF, X, encode=noise.encode)
    same_table(table, again, ignore=())
    assert np.any(again.radius > 0) and len(set(again.prediction.tolist())) > 1


def test_reproduce_errors(tmp_path):
    X, y = data(n_images=2)
    det = certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=0, **KW)
    sto = certify_dataset(CLF, X, y, poisson_noise(0.2, 2), rng=0, **KW)
    with pytest.raises(ValueError, match=r"X has SHA-256 [0-9a-f]{64} but the run's images had "
                                         r"[0-9a-f]{64} \(2 x 5\); pass the images"):
        det.reproduce(CLF, X + 1e-12)
    with pytest.raises(ValueError, match=r"used encode=functools.partial\(evsnn.encoders.poisson"
                                         r", T=2\), which a table cannot store; pass the same"):
        sto.reproduce(CLF, X)
    with pytest.raises(ValueError, match=r"encode=functools.partial\(evsnn.encoders.poisson, "
                                         r"T=3\) differs from the run's encoder"):
        sto.reproduce(CLF, X, encode=functools.partial(poisson, T=3))
    with pytest.raises(ValueError, match=r"encode=evsnn.encoders.poisson was passed but the run "
                                         r"used no custom encoder .* drop encode="):
        det.reproduce(CLF, X, encode=poisson)
    hand = CertificationTable(np.zeros(2, int), np.full(2, ABSTAIN), np.zeros(2, bool),
                              np.zeros(2), np.zeros(2), "rsc_fixed", 0.2, 1, 10, 200, 0.01)
    with pytest.raises(ValueError, match=r"does not record \['num_classes', 'seed_entropy'"):
        hand.reproduce(CLF, X)
    doc = det.parameters()
    doc["noise_chunk"] = NOISE_CHUNK * 2
    with pytest.raises(ValueError, match=rf"the run used NOISE_CHUNK={2 * NOISE_CHUNK}, this "
                                         rf"evsnn uses {NOISE_CHUNK}"):
        CertificationTable(det.label, det.prediction, det.correct, det.radius, det.p_a_lower,
                           **{k: v for k, v in doc.items() if k != "format"}).reproduce(CLF, X)


def test_reproduce_checks_the_classifier_dtype():
    X, y = data(n_images=2)
    run = certify_dataset(TypedLinearArgmax(CLF.A, CLF.c, np.float32), X, y, rsc_fixed(0.2, 1),
                          rng=0, **KW)
    assert run.classifier_dtype == "float32"
    with pytest.raises(ValueError, match=r"classify has dtype float64 but the run's classifier "
                                         r"had float32; pass the classifier the table was made"):
        run.reproduce(TypedLinearArgmax(CLF.A, CLF.c, np.float64), X)
    same_table(run, run.reproduce(TypedLinearArgmax(CLF.A, CLF.c, np.float32), X))
    # a classifier without a dtype (or a factory) cannot be checked: it runs
    assert len(run.reproduce(CLF, X)) == 2


def test_n_images_of_older_files_is_checked_not_kept(tmp_path):
    # files of this format used to record n_images, always len(table)
    X, y = data(n_images=3)
    table = certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=0, **KW)
    assert "n_images" not in table.parameters() and not hasattr(table, "n_images")
    text = table.to_csv(tmp_path / "t.csv").read_text()
    doc = json.loads(table.to_json(tmp_path / "t.json").read_text())
    for n_images in (3, None):
        (tmp_path / "old.csv").write_text(text.replace(
            "# n_features", f"# n_images: {json.dumps(n_images)}\n# n_features"))
        (tmp_path / "old.json").write_text(json.dumps(dict(doc, n_images=n_images)))
        for back in (CertificationTable.read_csv(tmp_path / "old.csv"),
                     CertificationTable.read_json(tmp_path / "old.json")):
            same_table(table, back, ignore=())
    (tmp_path / "old.csv").write_text(text.replace("# n_features", "# n_images: 4\n# n_features"))
    with pytest.raises(ValueError, match=r"old.csv says n_images=4 but holds 3 rows"):
        CertificationTable.read_csv(tmp_path / "old.csv")


@pytest.mark.parametrize("normals", ["numpy", "compiled"])
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_normals_is_recorded_in_both_files_and_read_back(tmp_path, normals, fmt):
    X, y = data(n_images=3)
    noise = rsc_fixed(0.2, 2, normals=normals)
    table = certify_dataset(CLF, X, y, noise, rng=0, **KW)
    assert table.normals == normals and table.parameters()["normals"] == normals
    path = getattr(table, f"to_{fmt}")(tmp_path / f"t.{fmt}")
    if fmt == "csv":  # one parameter line, right after encode_rng's
        lines = path.read_text().splitlines()
        k = lines.index("# encode_rng: false")
        assert lines[k + 1] == f'# normals: "{normals}"'
    else:
        assert json.loads(path.read_text())["normals"] == normals
    back = getattr(CertificationTable, f"read_{fmt}")(path)
    assert back.normals == normals
    same_table(table, back, ignore=())
    assert back.noise_model() == noise and back.noise_model().normals == normals
    same_table(table, back.reproduce(CLF, X))


def test_files_written_before_normals_was_recorded_read_as_numpy(tmp_path):
    # the files of the release before the field (a1e4599), written here line by line: numpy's
    # Generator.standard_normal was then the only way to draw the noise
    X, y = data(n_images=3)
    run = certify_dataset(CLF, X, y, rsc_fixed(0.2, 2), rng=0, **KW)
    assert np.any(run.radius > 0) and np.any(run.prediction == ABSTAIN)
    params = {
        "format": TABLE_FORMAT, "noise": "rsc_fixed", "sigma": 0.2, "n_steps": 2, "n0": 10,
        "n": 200, "alpha": 0.01, "clamp": True, "encoder": None, "encode_rng": False,
        "num_classes": 3, "seed_entropy": 0, "seed_spawn_key": [], "seed_pool_size": 4,
        "batch_size": 1000, "chunk_size": 1, "noise_chunk": NOISE_CHUNK,
        "classifier": f"{LinearArgmax.__module__}.LinearArgmax(...)", "classifier_dtype": None,
        "n_features": 5, "data_sha256": data_digest(X), "scheduler": None, "n_workers": None,
        "processes": None, "versions": run.versions,  # this process's: reproduce warns on others
    }
    lines = ["index,label,prediction,correct,radius,p_a_lower"]
    lines += [f"# {key}: {json.dumps(value)}" for key, value in params.items()]
    lines += [f"{i},{run.label[i]},{run.prediction[i]},{int(run.correct[i])},"
              f"{float(run.radius[i])!r},{float(run.p_a_lower[i])!r}" for i in range(3)]
    (tmp_path / "old.csv").write_text("\n".join(lines) + "\n")
    columns = {name: getattr(run, name).tolist()
               for name in ("label", "prediction", "correct", "radius", "p_a_lower")}
    (tmp_path / "old.json").write_text(json.dumps(dict(params, columns=columns), indent=1))
    for back in (CertificationTable.read_csv(tmp_path / "old.csv"),
                 CertificationTable.read_json(tmp_path / "old.json")):
        assert back.normals == "numpy" and back.noise_model().normals == "numpy"
        same_table(run, back, ignore=())  # normals included: the run's "numpy"
        same_table(run, back.reproduce(CLF, X))


@pytest.mark.parametrize("value, match", [
    ('"fast"', r"normals='fast' is not a way to draw standard normals; pass one of "
               r"\['numpy', 'compiled'\]"),
    ("3", r"normals must be a string, one of \['numpy', 'compiled'\]; got int 3"),
    ("null", r"normals must be a string, .*; got NoneType None"),
])
def test_a_wrong_normals_in_a_file_is_refused(tmp_path, value, match):
    X, y = data(n_images=2)
    table = certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=0, **KW)
    text = table.to_csv(tmp_path / "t.csv").read_text()
    assert text.count('# normals: "numpy"\n') == 1
    (tmp_path / "bad.csv").write_text(text.replace('# normals: "numpy"', f"# normals: {value}"))
    with pytest.raises(ValueError, match=r"bad.csv holds an invalid table: " + match):
        CertificationTable.read_csv(tmp_path / "bad.csv")
    doc = json.loads(table.to_json(tmp_path / "t.json").read_text())
    (tmp_path / "bad.json").write_text(json.dumps(dict(doc, normals=json.loads(value))))
    with pytest.raises(ValueError, match=r"bad.json holds an invalid table: " + match):
        CertificationTable.read_json(tmp_path / "bad.json")


def test_reproduce_warns_when_library_versions_differ():
    import warnings

    X, y = data(n_images=2)
    det = certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=0, **KW)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same versions: no warning
        np.testing.assert_array_equal(det.reproduce(CLF, X).radius, det.radius)
    doc = det.parameters()
    doc["versions"] = dict(doc["versions"], numpy="0.0.1")
    older = CertificationTable(det.label, det.prediction, det.correct, det.radius, det.p_a_lower,
                               **{k: v for k, v in doc.items() if k != "format"})
    with pytest.warns(UserWarning, match=r"'numpy': \('0.0.1', '" + re.escape(np.__version__)):
        again = older.reproduce(CLF, X)
    np.testing.assert_array_equal(again.radius, det.radius)


def test_reading_foreign_files_fails_clearly(tmp_path):
    X, y = data(n_images=2)
    table = certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=0, **KW)
    text = table.to_csv(tmp_path / "t.csv").read_text()
    cases = [
        (text.replace(TABLE_FORMAT, "other/9"), r"has format 'other/9'; this evsnn reads"),
        (text.replace("# sigma: 0.2\n", ""), r"lacks the parameters \['sigma'\]"),
        (text.replace("# sigma: 0.2", "# sigma: 0.2\n# colour: 1"), r"unknown parameters "
                                                                    r"\['colour'\]"),
        (text.replace("# sigma: 0.2", "# sigma: zero"), r"parameter 'sigma' holds 'zero', "
                                                        r"which is not a JSON value"),
        (text.replace("# sigma: 0.2", "# sigma 0.2"), r"comment line '# sigma 0.2' is not "
                                                      r"'# key: value'"),
        (text.replace("index,label", "index,lab"), r"has columns \['index', 'lab'"),
        # a column's name is not a parameter
        (text.replace("# sigma: 0.2", "# sigma: 0.2\n# label: 1"), r"unknown parameters "
                                                                   r"\['label'\]"),
    ]
    for bad, match in cases:
        (tmp_path / "bad.csv").write_text(bad)
        with pytest.raises(ValueError, match=match):
            CertificationTable.read_csv(tmp_path / "bad.csv")
    for doc in ('"a string"', json.dumps({"noise": "rsc_fixed"})):
        (tmp_path / "bad.json").write_text(doc)
        with pytest.raises(ValueError, match=r"holds no object with 'columns'"):
            CertificationTable.read_json(tmp_path / "bad.json")
    # a JSON file written before the parameters were recorded still reads (they are None)
    old = {"noise": "rsc_fixed", "sigma": 0.2, "n_steps": 1, "n0": 10, "n": 200,
           "alpha": 0.01, "columns": {k: getattr(table, k).tolist() for k in
                                      ("label", "prediction", "correct", "radius",
                                       "p_a_lower")}}
    (tmp_path / "old.json").write_text(json.dumps(old))
    back = CertificationTable.read_json(tmp_path / "old.json")
    assert back.seed_entropy is None and back.versions == {}
    assert back.radius.tolist() == table.radius.tolist()


def test_tampered_tables_are_refused_naming_file_row_and_column(tmp_path):
    # review (/tmp/rev_table/findings.py): a bad cell or a short row raised float()'s own
    # error, broken JSON a bare JSONDecodeError (neither named the file); extra cells of a row,
    # extra JSON columns, a repeated parameter and renumbered rows were read without a word;
    # labels below 0 or past num_classes were accepted
    X, y = data(n_images=3)
    table = certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=0, **KW)
    text = table.to_csv(tmp_path / "t.csv").read_text()
    lines = text.splitlines()
    data_at = [k for k, line in enumerate(lines)
               if line and not line.startswith(("#", "index,"))]  # the rows' line numbers

    def with_row(i, row):
        return "\n".join(row if k == data_at[i] else line for k, line in enumerate(lines)) + "\n"

    cells = lines[data_at[1]].split(",")
    cases = [
        (with_row(1, ",".join(cells[:-1] + ["zero"])),
         r"t2.csv: data row 1, column 'p_a_lower': 'zero' is not a float64 value"),
        (with_row(1, ",".join(cells[:-1])), r"data row 1 has 5 cells; the header has 6"),
        (with_row(1, ",".join(cells + ["0.7"])), r"data row 1 has 7 cells; the header has 6"),
        (with_row(1, ",".join(["0"] + cells[1:])), r"data row 1 has index '0'; the rows must be "
                                                  r"numbered 0, 1, \.\.\. in order"),
        (with_row(1, ",".join(cells[:1] + ["-5"] + cells[2:])),
         r"label\[1\]=-5 is not a class"),
        (with_row(1, ",".join(cells[:1] + ["7"] + cells[2:3] + ["0"] + cells[4:])),
         r"label\[1\]=7 but num_classes=3"),  # correct edited to agree
        (text.replace("# sigma: 0.2", "# sigma: 0.2\n# sigma: 0.5"),
         r"the parameter 'sigma' appears twice"),
    ]
    for bad, match in cases:
        (tmp_path / "t2.csv").write_text(bad)
        with pytest.raises(ValueError, match=match):
            CertificationTable.read_csv(tmp_path / "t2.csv")
    doc = json.loads(table.to_json(tmp_path / "t.json").read_text())
    doc["columns"]["extra"] = [1, 2, 3]
    (tmp_path / "t2.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"t2.json has unknown columns \['extra'\]"):
        CertificationTable.read_json(tmp_path / "t2.json")
    (tmp_path / "t3.json").write_text(json.dumps(doc)[:-10])
    with pytest.raises(ValueError, match=r"t3.json is not valid JSON"):
        CertificationTable.read_json(tmp_path / "t3.json")
    with pytest.raises(ValueError, match=r"^prediction\[0\]=5 but num_classes=3"):
        _valid_table(prediction=np.array([5, ABSTAIN]), label=np.array([0, 1]),
                     correct=np.array([False, False]), radius=np.array([0.5, 0.0]),
                     num_classes=3)
    back = CertificationTable.read_csv(tmp_path / "t.csv")  # the untouched file still reads
    assert back.radius.tolist() == table.radius.tolist()


def test_numpy_integer_seed_is_recorded_as_a_json_integer(tmp_path):
    X, y = data(n_images=2)
    table = certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=np.int64(5), **KW)
    assert table.seed_entropy == 5 and type(table.seed_entropy) is int
    plain = certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=5, **KW)
    np.testing.assert_array_equal(table.radius, plain.radius)
    assert CertificationTable.read_json(table.to_json(tmp_path / "t.json")).seed_entropy == 5


def test_written_files_follow_the_umask(tmp_path):
    X, y = data(n_images=1)
    table = certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=0, **KW)
    old = os.umask(0o022)
    try:
        paths = [table.to_csv(tmp_path / "t.csv"), table.to_json(tmp_path / "t.json")]
    finally:
        os.umask(old)
    # like open(path, "w"): 0o666 minus the umask (a mkstemp file would stay 0o600)
    assert [stat.S_IMODE(os.stat(p).st_mode) for p in paths] == [0o644, 0o644]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_rewritten_files_keep_their_mode(tmp_path, umask):
    # evsnn.io's atomic writer: a new file 0o666 minus the umask, an existing one keeps its mode
    X, y = data(n_images=1)
    table = certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=0, **KW)
    old = os.umask(umask)
    try:
        paths = [table.to_csv(tmp_path / "t.csv"), table.to_json(tmp_path / "t.json")]
        assert [stat.S_IMODE(os.stat(p).st_mode) for p in paths] == [0o666 & ~umask] * 2
        for p in paths:
            os.chmod(p, 0o640)
        paths = [table.to_csv(tmp_path / "t.csv"), table.to_json(tmp_path / "t.json")]
    finally:
        os.umask(old)
    assert [stat.S_IMODE(os.stat(p).st_mode) for p in paths] == [0o640, 0o640]
    assert sorted(os.listdir(tmp_path)) == ["t.csv", "t.json"]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_a_link_is_followed_and_a_read_only_file_refused(tmp_path, fmt):
    # evsnn.io's atomic writer (tests/test_io.py): was, the link became a regular file and a
    # chmod 444 file was replaced
    X, y = data(n_images=2)
    table = certify_dataset(CLF, X, y, rsc_fixed(0.3, 2), rng=1, **KW)
    write, read = getattr(table, f"to_{fmt}"), getattr(CertificationTable, f"read_{fmt}")
    target, link = tmp_path / f"cert.{fmt}", tmp_path / f"link.{fmt}"
    link.symlink_to(target.name)  # dangling until the first write
    write(link)
    assert link.is_symlink()
    np.testing.assert_array_equal(read(target).radius, table.radius)
    os.chmod(target, 0o444)
    before = target.read_bytes()
    for given in (target, link):
        with pytest.raises(PermissionError, match=r"the file is read-only \(mode 0o444\)"):
            write(given)
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [f"cert.{fmt}", f"link.{fmt}"]


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("where", ["replace", "fsync"])
def test_failed_write_keeps_old_file(tmp_path, monkeypatch, fmt, where):
    X, y = data(n_images=2)
    table = certify_dataset(CLF, X, y, rsc_fixed(0.3, 2), rng=1, **KW)
    target = tmp_path / f"cert.{fmt}"
    target.write_text("old")

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, where, boom)
    with pytest.raises(OSError, match="disk full"):
        getattr(table, f"to_{fmt}")(target)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == [f"cert.{fmt}"]  # the temporary file was removed
    # nothing is left behind when there was no old file either
    with pytest.raises(OSError, match="disk full"):
        getattr(table, f"to_{fmt}")(tmp_path / f"new.{fmt}")
    assert os.listdir(tmp_path) == [f"cert.{fmt}"]


def test_certified_accuracy_curve():
    # hand count: correct & radius >= r over 5 images
    radius = np.array([0.0, 0.2, 0.5, 0.5, 1.0])
    correct = np.array([False, True, True, False, True])
    got = certified_accuracy(radius, correct, [0.0, 0.2, 0.3, 0.5, 1.0, 1.5])
    assert got.tolist() == [3 / 5, 3 / 5, 2 / 5, 2 / 5, 1 / 5, 0.0]
    assert certified_accuracy(radius, correct, 0.5) == 2 / 5
    # the table's rows as certify writes them: radius 0.5 Φ⁻¹(p_a_lower) = 0, 0.26, 0.64, 0.64,
    # 1.16 (an abstention first), correct where the prediction is the label 0
    p_a_lower = np.array([0.4, 0.7, 0.9, 0.9, 0.99])
    prediction = np.array([ABSTAIN, 0, 0, 1, 0])
    radius = [certified_radius(p, gaussian(0.5, 1)) for p in p_a_lower]
    table = CertificationTable(np.zeros(5, int), prediction, prediction == 0, radius, p_a_lower,
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
        ({"y": np.zeros(2)}, TypeError, r"y must hold integer class labels, got dtype float64"),
        ({"y": np.zeros(3, int)}, ValueError,
         r"y must have shape \(2,\) \(one label per sample\), got \(3,\); one label per image"),
        ({"y": np.array([0, 3])}, ValueError,
         r"y holds the label 3 but num_classes has 3 classes; labels are 0-based class indices "
         r"in \[0, 2\] \(subtract 1 from 1-based labels\); one label per image of X; fix y or "
         r"num_classes$"),
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


def test_certify_dataset_checks_every_row_against_the_unit_box_of_clamping_noise_first():
    # certify() checks its one image too, but naming x and only when that row's turn comes
    # (review: 50,500 samples were classified before a bad last row was refused); 'evsnn
    # certify' runs this path
    calls = []

    def counting(batch):
        calls.append(len(batch))
        return CLF(batch)

    X = np.array([[0.1, 0.2, 0.3, 0.4, 0.5], [0.0, 1.0, 0.5, 0.5, 0.5],
                  [0.0, 255.0, 3.0, 1.0, 0.5]])
    with pytest.raises(ValueError, match=r"^X\[2\] holds pixels in \[0\.0, 255\.0\] \(1 of 3 "
                       r"rows leave \[0, 1\]\), but the rsc_fixed noise model clamps .* e\.g\. "
                       r"X / 255, or use clamp=False$"):
        certify_dataset(counting, X, np.zeros(3, int), rsc_fixed(0.2, 1), rng=0, n0=5, n=10,
                        alpha=0.01, num_classes=3, progress=False)
    assert calls == []
    table = certify_dataset(CLF, X, np.zeros(3, int), rsc_fixed(0.2, 1, clamp=False), rng=0,
                            n0=5, n=10, alpha=0.01, num_classes=3, progress=False)
    assert table.clamp is False and len(table.radius) == 3


R_09 = certified_radius(0.9, rsc_fixed(0.2, 1))  # 0.2 Φ⁻¹(0.9) = 0.2563...


def _valid_table(**kw):
    fields = dict(label=np.array([0, 1]), prediction=np.array([0, ABSTAIN]),
                  correct=np.array([True, False]), radius=np.array([R_09, 0.0]),
                  p_a_lower=np.array([0.9, 0.4]), noise="rsc_fixed", sigma=0.2, n_steps=1,
                  n0=10, n=200, alpha=0.01)
    fields.update(kw)
    return CertificationTable(**fields)


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        ({"versions": None}, TypeError, r"versions must be a dict of library name -> version "
                                         r"string, got NoneType None; pass \{\} when"),
        ({"versions": {"numpy": 2}}, TypeError, r"versions must be a dict .* \{'numpy': 2\}"),
        ({"label": [0.0, 1.0]}, TypeError, r"label must hold integers, got dtype float64; pass "
                                           r"int64 values"),
        ({"correct": [1, 0]}, TypeError, r"correct must hold booleans, got dtype int64"),
        ({"radius": ["a", "b"]}, TypeError, r"radius must hold real numbers, got dtype <U1"),
        ({"p_a_lower": [[0.9], [0.4, 0.1]]}, TypeError, r"p_a_lower must be a 1-D array of real"),
        ({"radius": np.zeros((2, 1))}, ValueError, r"radius must be 1-D, one entry per image; "
                                                   r"got shape \(2, 1\)"),
        ({"p_a_lower": [0.9]}, ValueError, r"the columns must have one entry per image, got "
                                           r"lengths \{'label': 2, .*'p_a_lower': 1\}"),
        # the columns must agree: an edited "correct" would inflate the certified accuracy
        ({"correct": [True, True]}, ValueError, r"correct\[1\]=True but prediction\[1\]=-1 and "
                                                r"label\[1\]=1: correct must be prediction =="),
        ({"correct": [False, False]}, ValueError, r"correct\[0\]=False but prediction\[0\]=0"),
        ({"prediction": [0, -2]}, ValueError, r"prediction\[1\]=-2 is neither a class \(>= 0\) "
                                              r"nor ABSTAIN \(-1\)"),
        ({"radius": [R_09, 0.1]}, ValueError, r"radius\[1\]=0.1 for an abstention; an "
                                              r"abstaining image certifies radius 0"),
        # so must radius and p_a_lower (certify.smoothing.certify): an edited radius, or a
        # class kept at p_a_lower <= 1/2, inflated the certified accuracy
        ({"radius": [0.5, 0.0]}, ValueError,
         r"^radius\[0\]=0.5 but p_a_lower\[0\]=0.9 certifies radius 0.2563\d+ under the table's "
         r"noise model \(rsc_fixed, sigma=0.2, n_steps=1; σ Φ⁻¹\(p_a_lower\) · radius_scale, as "
         r"certify.smoothing.certified_radius\); the table was built or edited inconsistently$"),
        ({"sigma": 0.4}, ValueError, r"^radius\[0\]=0.2563\d+ but p_a_lower\[0\]=0.9 certifies "
                                     r"radius 0.5126\d+ under the table's noise model"),
        # RSC-II: radius_scale 1/√T
        ({"noise": "rsc_fresh", "n_steps": 4}, ValueError,
         r"^radius\[0\]=0.2563\d+ but p_a_lower\[0\]=0.9 certifies radius 0.1281\d+ under the "
         r"table's noise model \(rsc_fresh, sigma=0.2, n_steps=4;"),
        ({"p_a_lower": [1.0, 0.4]}, ValueError, r"^radius\[0\]=0.2563\d+ but p_a_lower\[0\]=1.0 "
                                                r"certifies radius inf"),
        ({"p_a_lower": [0.5, 0.4]}, ValueError,
         r"^prediction\[0\]=0 with p_a_lower\[0\]=0.5 <= 1/2: certify abstains there "
         r"\(prediction ABSTAIN \(-1\), radius 0\); the table was built or edited inconsistently$"),
        ({"p_a_lower": [0.9, 0.6]}, ValueError,
         r"^prediction\[1\]=ABSTAIN \(-1\) with p_a_lower\[1\]=0.6 > 1/2: certify predicts a "
         r"class there, with a radius; the table was built or edited inconsistently$"),
        ({"noise": "poisson"}, ValueError, r"noise='poisson' is not a noise model; use one of "
                                           r"\['gaussian'"),
        ({"noise": 3}, TypeError, r"noise must be a noise model's name, one of \['gaussian', "
                                  r"'rsc_fixed', 'rsc_fresh'\]; got int 3"),
        ({"sigma": -0.2}, ValueError, r"sigma=-0.2 must be finite and > 0.0"),
        ({"sigma": "0.2"}, TypeError, r"sigma must be a real number, got str '0.2'"),
        ({"n_steps": 0}, ValueError, r"n_steps=0 must be an integer >= 1"),
        ({"n0": 1.5}, TypeError, r"n0 must be an integer, got float 1.5"),
        ({"alpha": 0.5}, ValueError, r"alpha=0.5 must be finite and lie in \(0.0, 0.5\)"),
        ({"clamp": "yes"}, TypeError, r"clamp must be True or False, got 'yes'"),
        ({"encode_rng": None}, TypeError, r"encode_rng must be True or False, got None"),
        ({"normals": "fast"}, ValueError, r"^normals='fast' is not a way to draw standard "
                                          r"normals; pass one of \['numpy', 'compiled'\]"),
        ({"normals": 3}, TypeError, r"^normals must be a string, one of \['numpy', "
                                    r"'compiled'\]; got int 3; pass normals='numpy'"),
        ({"processes": 1}, TypeError, r"processes must be True or False, got 1"),
        ({"encoder": 3}, TypeError, r"encoder must be a string or None, got int 3"),
        ({"data_sha256": b"ab"}, TypeError, r"data_sha256 must be a string or None, got bytes"),
        ({"num_classes": 1}, ValueError, r"num_classes=1 must be an integer >= 2"),
        ({"seed_pool_size": 2}, ValueError, r"seed_pool_size=2 must be an integer >= 4"),
        ({"batch_size": 0}, ValueError, r"batch_size=0 must be an integer >= 1"),
        ({"n_workers": "2"}, TypeError, r"n_workers must be an integer, got str '2'"),
        ({"seed_entropy": "x"}, TypeError, r"^seed_entropy must be an integer, got str 'x'; "
                                           r"pass what the SeedSequence of the run holds: a "
                                           r"non-negative int or a list of them$"),
        ({"seed_entropy": -3}, ValueError, r"^seed_entropy=-3 must be an integer >= 0; pass"),
        ({"seed_entropy": [1, -2]}, ValueError, r"^seed_entropy\[1\]=-2 must be an integer >= 0; "
                                                r"pass what the SeedSequence of the run holds"),
        ({"seed_entropy": [1, True]}, TypeError, r"^seed_entropy\[1\] must be an integer, got "
                                                 r"bool True"),
        ({"seed_spawn_key": 3}, TypeError, r"seed_spawn_key must be a tuple of non-negative "
                                           r"integers, got int 3"),
        ({"seed_spawn_key": (0, 1.0)}, TypeError, r"^seed_spawn_key\[1\] must be an integer, got "
                                                  r"float 1.0; pass"),
        ({"seed_spawn_key": [-1]}, ValueError, r"^seed_spawn_key\[0\]=-1 must be an integer >= 0"),
    ],
)
def test_table_checks_its_fields(kw, exc, match):
    with pytest.raises(exc, match=match):
        _valid_table(**kw)


def test_table_normalises_what_it_accepts():
    # Φ(1): the certified radius is 1 (to rounding)
    table = _valid_table(label=[0, 1], correct=[True, False], radius=[1, 0], sigma=1,
                         p_a_lower=[0.8413447460685429, 0.4],
                         seed_spawn_key=[2, 3], seed_entropy=np.int64(7), n_workers=np.int32(2),
                         processes=np.bool_(False))
    assert table.label.dtype == np.int64 and table.correct.dtype == bool
    assert table.radius.dtype == np.float64 and table.radius.tolist() == [1.0, 0.0]
    assert type(table.sigma) is float and table.seed_spawn_key == (2, 3)
    assert type(table.seed_entropy) is int and type(table.n_workers) is int
    assert table.processes is False
    assert len(_valid_table(**{name: [] for name in ("label", "prediction", "correct", "radius",
                                                     "p_a_lower")})) == 0


def test_invalid_values_in_a_file_name_the_file(tmp_path):
    X, y = data(n_images=2)
    table = certify_dataset(CLF, X, y, rsc_fixed(0.2, 1), rng=0, **KW)
    text = table.to_csv(tmp_path / "t.csv").read_text()
    (tmp_path / "bad.csv").write_text(text.replace("# sigma: 0.2", "# sigma: -1"))
    # the value as the file writes it
    with pytest.raises(ValueError,
                       match=r"bad.csv holds an invalid table: sigma=-1 must be finite and > 0.0"):
        CertificationTable.read_csv(tmp_path / "bad.csv")
    # an edited radius (it was read, and inflated certified_accuracy)
    i = int(np.argmax(table.prediction != ABSTAIN))
    assert table.prediction[i] != ABSTAIN
    row = f"{i},{table.label[i]},{table.prediction[i]},{int(table.correct[i])},"
    edited = text.replace(row + repr(float(table.radius[i])), row + "5.0")
    assert edited != text
    (tmp_path / "bad.csv").write_text(edited)
    with pytest.raises(ValueError, match=rf"bad.csv holds an invalid table: radius\[{i}\]=5.0 "
                                         rf"but p_a_lower\[{i}\]=.* certifies radius "
                                         rf"{re.escape(repr(float(table.radius[i])))} under"):
        CertificationTable.read_csv(tmp_path / "bad.csv")
    doc = json.loads(table.to_json(tmp_path / "t.json").read_text())
    for change, match in (({"label": [0.5, 1.0]}, r"label must hold integers"),
                          ({"radius": None}, r"lacks the columns \['radius'\]")):
        columns = {k: v for k, v in dict(doc["columns"], **change).items() if v is not None}
        (tmp_path / "bad.json").write_text(json.dumps(dict(doc, columns=columns)))
        with pytest.raises(ValueError, match=r"bad.json .*" + match):
            CertificationTable.read_json(tmp_path / "bad.json")


@pytest.mark.parametrize("X, match", [
    (None, r"X must be an array of real numbers \(the images\), got NoneType None"),
    ("abc", r"X must be an array of real numbers \(the images\), got str 'abc'"),
    ([[0.1], [0.2, 0.3]], r"X must be a rectangular array of real numbers"),
    (np.array([[None]]), r"X must hold real numbers, got dtype object"),
    (np.array([["a"]]), r"X must hold real numbers, got dtype <U1"),
])
def test_data_digest_refuses_what_is_not_images(X, match):
    with pytest.raises(TypeError, match=match):
        data_digest(X)


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
