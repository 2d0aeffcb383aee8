"""The ``evsnn`` command: one-line errors with exit code 2, TOML configuration, atomic run
folders whose numbers come from the run (issue 9)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from reference.helpers import one_line_error

from certify.spike_distance import van_rossum_distance, victor_purpura_distance
from evsnn.cli import main


@pytest.mark.parametrize("argv,match", [
    (["gain", "--lam", "1.5"], "--lam 1.5 must lie in [0, 1]"),
    (["distance", "--a", "1,x", "--b", "2"], "--a '1,x' must be spike times"),
    (["distance", "--a", "1", "--b", "2", "--q", "-1"], "--q -1.0 must be >= 0"),
    (["attack", "--model", "no/such/model"], "--model 'no/such/model': no such file"),
    (["certify", "--model", "no/such/model"], "--model 'no/such/model': no such file"),
    (["gain", "--config", "missing.toml"], "--config 'missing.toml': no such file"),
    (["train", "--model", "ann", "--epochs", "0"], "--epochs 0 must be an integer >= 1"),
])
def test_bad_options_are_one_line_errors(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv + ["--out", str(tmp_path / "run")]) == 2
    assert match in one_line_error(capsys)
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_unknown_config_key_names_the_accepted_ones(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("lam = 0.9\nbogus = 1\n")
    assert main(["gain", "--config", str(cfg)]) == 2
    err = one_line_error(capsys)
    assert "evsnn gain: error:" in err and "unknown option 'bogus'" in err and "'lam'" in err
    cfg.write_text("lam = [1\n")
    assert main(["gain", "--config", str(cfg)]) == 2
    assert "is not valid TOML" in one_line_error(capsys)
    cfg.write_text("[gain]\nlam = 'x'\n")
    assert main(["gain", "--config", str(cfg)]) == 2
    assert "lam = 'x' is not a valid float" in one_line_error(capsys)


def test_distance_run_folder_holds_the_computed_numbers(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(
        ["distance", "--a", "1, 2, 3", "--b", "1.5 2 7", "--q", "0.5", "--out", str(out)]
    ) == 0
    res = json.loads((out / "results.json").read_text())["results"]
    a, b = np.array([1.0, 2, 3]), np.array([1.5, 2, 7])
    assert res["Victor-Purpura (q)"] == victor_purpura_distance(a, b, q=0.5)
    assert res["van Rossum (tau)"] == van_rossum_distance(a, b, tau=1.0)
    # hand check: shift 1 -> 1.5 (0.25), keep 2, delete 3 and insert 7 (2) = 2.25
    assert res["Victor-Purpura (q)"] == pytest.approx(2.25, rel=1e-12)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "report.md", "results.json",
                                                     "timings.json"]
    assert json.loads((out / "config.json").read_text())["config"]["q"] == 0.5
    # a second run into the same folder is refused unless --overwrite
    assert main(["distance", "--a", "1", "--b", "2", "--out", str(out)]) == 2
    assert "exists" in one_line_error(capsys)
    assert main(["distance", "--a", "1", "--b", "2", "--out", str(out), "--overwrite"]) == 0


def test_config_file_values_and_flags_override(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[gain]\nlam = 0.7\nT = 4\nn-in = 3\nn-out = 2\n")
    out = tmp_path / "g"
    assert main(["gain", "--config", str(cfg), "--T", "3", "--out", str(out)]) == 0
    conf = json.loads((out / "config.json").read_text())["config"]
    assert (conf["lam"], conf["T"], conf["n_in"], conf["n_out"]) == (0.7, 3, 3, 2)
    res = json.loads((out / "results.json").read_text())["results"]
    from certify.l2gain import l2_gain, stated_gain

    W = np.random.default_rng(0).standard_normal((2, 3)) / np.sqrt(3)
    assert res["Stable Theorem 3.1 stated gain"] == pytest.approx(stated_gain(0.7, W), rel=1e-12)
    assert res["finite-horizon L2 gain (exact)"] == pytest.approx(l2_gain(0.7, 3, W, rng=0).gain,
                                                                  rel=1e-9)


def test_validate_writes_the_verdict_table(tmp_path, capsys):
    out = tmp_path / "v"
    assert main(["validate", "--select", "ding", "--no-progress", "--out", str(out)]) == 0
    claims = json.loads((out / "results.json").read_text())["results"]["claims"]
    assert claims and all(c["check_id"].startswith("ding") for c in claims)
    assert "| verdict | check |" in (out / "report.md").read_text()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "lif"
    assert main(["train", "--model", "lif", "--epochs", "1", "--T", "4", "--no-progress",
                 "--out", str(out)]) == 0
    return out


def test_train_saves_a_model_that_loads_and_matches_the_report(trained_run):
    from evsnn import io
    from evsnn.clock import Network
    from evsnn.data import load_digits
    from evsnn.train import snn_accuracy

    net = io.load(trained_run / "model.npz")
    assert isinstance(net, Network) and net.n_in == 64 and net.n_out == 10
    res = json.loads((trained_run / "results.json").read_text())["results"]
    test = load_digits("test")
    assert res["SNN test accuracy"] == snn_accuracy(net, test.x, test.y, T=4, encoder="current")


def test_train_with_an_rsc_encoder_takes_sigma(tmp_path):
    # was: 'evsnn train --encoder rsc_fixed' failed with "needs sigma=", and train had no --sigma
    from evsnn.data import load_digits
    from validation.demo import train_model

    out = tmp_path / "rsc"
    assert main(["train", "--model", "lif", "--encoder", "rsc_fixed", "--sigma", "0.1",
                 "--epochs", "1", "--T", "2", "--no-progress", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())["results"]
    train, test = load_digits("train"), load_digits("test")
    # the same run through the API (seed 0): σ reached the encoder, and only it differs
    kw = dict(T=2, epochs=1, encoder="rsc_fixed", seed=0)
    assert res["SNN test accuracy"] == train_model("lif", train, test, sigma=0.1, **kw)[1][
        "SNN test accuracy"]
    assert json.loads((out / "config.json").read_text())["config"]["sigma"] == 0.1


def test_train_stable_saves_a_dlif_model_that_attack_and_certify_run(tmp_path):
    # 'evsnn train --model stable': Stable's framework (fit_stable), the same run as the API's
    from evsnn import io
    from evsnn.data import load_digits
    from evsnn.params import DLIF
    from validation.demo import train_model

    out = tmp_path / "stable"
    assert main(["train", "--model", "stable", "--epochs", "1", "--T", "3", "--no-progress",
                 "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())["results"]
    train, test = load_digits("train"), load_digits("test")
    assert res["SNN test accuracy"] == train_model("stable", train, test, T=3, epochs=1)[1][
        "SNN test accuracy"]
    assert res["method"] == "bptt (Stable)"
    model = io.load(out / "model.npz")
    assert all(isinstance(l.neuron, DLIF) and l.dlif_factors.shape == (3,) for l in model.layers)
    assert main(["attack", "--model", str(out), "--attack", "fgsm", "--eps", "0.1",
                 "--samples", "8", "--no-progress", "--out", str(tmp_path / "a")]) == 0
    assert json.loads((tmp_path / "a" / "config.json").read_text())["config"]["T"] == 3
    assert main(["certify", "--model", str(out), "--n0", "10", "--n", "20", "--samples", "2",
                 "--no-progress", "--out", str(tmp_path / "c")]) == 0
    assert json.loads((tmp_path / "c" / "config.json").read_text())["config"]["T"] == 3


def test_train_offers_no_dtype_or_convention_it_would_ignore(capsys):
    # was: --dtype float32 and --convention were accepted and had no effect on training
    for flag, value in (("--dtype", "float32"), ("--convention", "DING2025")):
        assert main(["train", "--model", "ann", flag, value]) == 2
        assert f"unrecognized arguments: {flag}" in one_line_error(capsys)


def test_train_on_an_npz_says_its_accuracy_is_on_the_training_data(tmp_path):
    # was: "accuracies on the test split" although an .npz is both training and test set
    from evsnn.data import load_digits

    d = load_digits("test")
    np.savez(tmp_path / "d.npz", x=d.x[:60], y=d.y[:60])
    out = tmp_path / "run"
    assert main(["train", "--model", "ann", "--epochs", "1", "--data", str(tmp_path / "d.npz"),
                 "--no-progress", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "accuracies on the training data itself (an .npz has no test split)" in report
    assert "test split" not in report.replace("no test split", "")


def test_attack_on_the_saved_model(trained_run, tmp_path):
    out = tmp_path / "a"
    assert main(["attack", "--model", str(trained_run), "--attack", "pgd", "--eps", "0.1",
                 "--steps", "3", "--T", "4", "--samples", "20", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())["results"]
    clean, adv = res["clean accuracy"], res["adversarial accuracy"]
    assert 0 <= clean <= 1 and 0 <= adv <= 1
    assert res["ASR over all samples (Ding 2025 Eq. 28)"] == pytest.approx(1 - adv)


def test_attack_passes_the_rfgsm_variant_pgd_channels_and_apgd_rule(trained_run, tmp_path,
                                                                    monkeypatch):
    from evsnn import attacks

    seen = {}
    for name in ("rfgsm", "pgd", "apgd"):
        def spy(*a, _real=getattr(attacks, name), _name=name, **kw):
            seen[_name] = kw
            return _real(*a, **kw)

        monkeypatch.setattr(attacks, name, spy)
    common = ["--model", str(trained_run), "--T", "4", "--samples", "5"]
    assert main(["attack", *common, "--attack", "rfgsm", "--eps", "0.1", "--variant", "wong",
                 "--out", str(tmp_path / "r")]) == 0
    assert main(["attack", *common, "--attack", "pgd", "--norm", "l0", "--eps", "3",
                 "--steps", "2", "--channels", "2", "--rule", "code",
                 "--out", str(tmp_path / "p")]) == 0
    assert main(["attack", *common, "--attack", "apgd", "--steps", "2", "--rule", "code",
                 "--loss", "dlr", "--out", str(tmp_path / "a")]) == 0
    assert seen["rfgsm"]["variant"] == "wong" and seen["pgd"]["channels"] == 2
    assert seen["apgd"]["rule"] == "code" and seen["pgd"]["rule"] == "code"
    assert seen["apgd"]["loss"] == "dlr"



def test_attack_pixel_range_reaches_the_source(trained_run, tmp_path, monkeypatch):
    from evsnn import attacks

    built = []
    real_source = attacks.SNNSource

    class Spy(real_source):
        def __init__(self, *a, **kw):
            built.append(kw.get("pixel_range"))
            super().__init__(*a, **kw)

    monkeypatch.setattr(attacks, "SNNSource", Spy)
    common = ["--model", str(trained_run), "--T", "4", "--samples", "5", "--attack", "pgd",
              "--norm", "l1", "--eps", "4", "--steps", "3", "--rule", "code"]
    assert main(["attack", *common, "--pixel-range", "real", "--out", str(tmp_path / "r")]) == 0
    assert main(["attack", *common[:-2], "--out", str(tmp_path / "u")]) == 0
    assert built == ["real", "unit"]


def test_attack_product_reaches_the_source_and_is_refused_where_it_does_nothing(
        trained_run, tmp_path, monkeypatch, capsys):
    from evsnn import attacks, io
    from evsnn.ann import ANN
    from evsnn.clock import Network
    from evsnn.params import LIF

    built = []
    real_source = attacks.SNNSource

    class Spy(real_source):
        def __init__(self, *a, **kw):
            built.append(kw.get("product"))
            super().__init__(*a, **kw)

    monkeypatch.setattr(attacks, "SNNSource", Spy)
    common = ["--model", str(trained_run), "--T", "4", "--samples", "5", "--attack", "pgd",
              "--steps", "2"]
    assert main(["attack", *common, "--product", "blas", "--out", str(tmp_path / "b")]) == 0
    assert main(["attack", *common, "--out", str(tmp_path / "e")]) == 0
    assert built == ["blas", "exact"]
    config = json.loads((tmp_path / "b" / "config.json").read_text())["config"]
    assert config["product"] == "blas"
    io.save(ANN.mlp([64, 8, 10], rng=0), tmp_path / "ann.npz")
    io.save(Network.mlp([64, 8, 10], LIF(lam=0.9), rng=0), tmp_path / "snn.npz")
    cases = [
        (["--model", str(tmp_path / "ann.npz")], "--product 'blas': options of an SNN"),
        (["--model", str(tmp_path / "snn.npz"), "--encoder", "poisson"],
         "--product blas forms the constant first-layer input of current coding in a dense "
         "network, and this run has --encoder 'poisson': drop --product"),
    ]
    for argv, match in cases:
        assert main(["attack", *argv, "--product", "blas", "--samples", "2",
                     "--out", str(tmp_path / "r")]) == 2
        assert match in one_line_error(capsys)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("attack, given, match", [
    ("pgd", ["--variant", "wong"],
     "--variant 'wong' is an option of --attack rfgsm only, not of --attack pgd: drop --variant"),
    ("fgsm", ["--channels", "2"], "--channels 2 is an option of --attack pgd and one_pixel only, "
     "not of --attack fgsm: drop --channels"),
    ("rfgsm", ["--pixels", "2"],
     "--pixels 2 is an option of --attack one_pixel only, not of --attack rfgsm"),
    ("deepfool", ["--popsize", "9"],
     "--popsize 9 is an option of --attack one_pixel only, not of --attack deepfool"),
    ("pgd", ["--loss", "dlr"],
     "--loss 'dlr' is an option of --attack apgd only, not of --attack pgd: drop --loss"),
    ("fgsm", ["--rule", "code"],
     "--rule 'code' is an option of --attack pgd and apgd only, not of --attack fgsm: "
     "drop --rule"),
    ("apgd", ["--maxiter", "3"],
     "--maxiter 3 is an option of --attack one_pixel only, not of --attack apgd"),
    ("deepfool", ["--eps", "0.1"], "--eps 0.1 is an option of --attack fgsm, bim, pgd, mim, "
     "rfgsm and apgd only, not of --attack deepfool: drop --eps"),
    ("one_pixel", ["--eps", "1"], "--eps 1.0 is an option of --attack fgsm, bim, pgd, mim, "
     "rfgsm and apgd only, not of --attack one_pixel: drop --eps"),
    ("fgsm", ["--steps", "5"], "--steps 5 is an option of --attack bim, pgd, mim, apgd and "
     "deepfool only, not of --attack fgsm: drop --steps"),
    ("one_pixel", ["--steps", "5"], "--steps 5 is an option of --attack bim, pgd, mim, apgd and "
     "deepfool only, not of --attack one_pixel: drop --steps"),
    ("rfgsm", ["--norm", "l2"], "--norm 'l2' is an option of --attack bim, pgd, mim, apgd and "
     "deepfool only, not of --attack rfgsm: drop --norm"),
    ("fgsm", ["--norm", "linf"], "--norm 'linf' is an option of --attack bim, pgd, mim, apgd "
     "and deepfool only, not of --attack fgsm: drop --norm"),
])
def test_attack_refuses_the_options_of_other_attacks(trained_run, tmp_path, capsys, attack,
                                                      given, match):
    # they used to be ignored without a word
    out = tmp_path / "a"
    assert main(["attack", "--model", str(trained_run), "--attack", attack, *given, "--T", "4",
                 "--samples", "2", "--out", str(out)]) == 2
    assert f"evsnn attack: error: {match}" in one_line_error(capsys)
    assert not out.exists()
    # from a configuration file too
    cfg = tmp_path / "c.toml"
    value = given[1] if given[1].isdigit() else repr(given[1])  # a TOML integer or string
    cfg.write_text(f"[attack]\n{given[0][2:]} = {value}\n")
    assert main(["attack", "--config", str(cfg), "--model", str(trained_run), "--attack", attack,
                 "--out", str(out)]) == 2
    assert match in one_line_error(capsys)


def test_attack_defaults_are_the_attacks_own():
    import inspect

    from evsnn import attacks
    from evsnn.cli import ATTACK_DEFAULTS, ATTACK_OPTIONS, ATTACKS

    for name in ATTACKS:
        params = inspect.signature(getattr(attacks, name)).parameters
        for option, takers in ATTACK_OPTIONS.items():
            # an option is offered to exactly the attacks whose signature has it
            assert (option in params) == (name in takers), (name, option)
            if option in ATTACK_DEFAULTS and name in takers and option != "eps":
                assert ATTACK_DEFAULTS[option][name] == params[option].default, (name, option)
    # eps has no default in the attacks (it is the caller's budget): the command's is 0.1
    assert all(inspect.signature(getattr(attacks, n)).parameters["eps"].default
               is inspect.Parameter.empty for n in ATTACK_OPTIONS["eps"])
    assert set(ATTACK_DEFAULTS["eps"].values()) == {0.1}


@pytest.mark.parametrize("attack, given, expected", [
    # not given: each attack's own default (eps: the command's 0.1)
    ("fgsm", [], {"eps": 0.1, "rng": 0}),
    ("bim", [], {"eps": 0.1, "steps": 10, "norm": "linf", "rng": 0}),
    ("deepfool", [], {"steps": 50, "norm": "l2", "rng": 0}),  # was no rng: refused Poisson
    ("one_pixel", [], {"rng": 0}),
    # given: passed on (they used to be dropped for bim/mim's norm and deepfool's steps)
    ("mim", ["--norm", "l2", "--steps", "3", "--eps", "0.5"],
     {"eps": 0.5, "steps": 3, "norm": "l2", "rng": 0}),
    ("deepfool", ["--steps", "7", "--norm", "linf"], {"steps": 7, "norm": "linf", "rng": 0}),
    ("pgd", ["--norm", "l0", "--eps", "3"], {"eps": 3, "steps": 10, "norm": "l0", "rng": 0}),
])
def test_attack_passes_eps_steps_norm_to_the_attacks_that_take_them(
        trained_run, tmp_path, monkeypatch, attack, given, expected):
    from evsnn import attacks

    class Stop(Exception):
        pass

    seen = {}

    def stub(*a, **kw):
        seen["kw"] = kw
        raise Stop

    monkeypatch.setattr(attacks, attack, stub)
    with pytest.raises(Stop):
        main(["attack", "--model", str(trained_run), "--attack", attack, *given, "--T", "4",
              "--samples", "1", "--out", str(tmp_path / "a")])
    assert seen["kw"] == expected
    assert type(seen["kw"].get("eps", 0.0)) is type(expected.get("eps", 0.0))


@pytest.mark.parametrize("attack, norm, fix", [
    ("pgd", "l2", "give the L2 radius, e.g. --eps 1"),
    ("apgd", "l1", "give the L1 radius, e.g. --eps 1"),
    ("pgd", "l0", "give the L0 radius as a number of pixels, e.g. --eps 5"),
    ("bim", "l2", "give the L2 radius, e.g. --eps 1"),
])
def test_attack_needs_eps_under_a_norm_other_than_linf(trained_run, tmp_path, capsys, attack,
                                                       norm, fix):
    # the command's default 0.1 is an L∞ radius; it used to be run as an L2 radius, and as a
    # budget of 0.1 pixels under L0
    out = tmp_path / "a"
    assert main(["attack", "--model", str(trained_run), "--attack", attack, "--norm", norm,
                 "--T", "4", "--samples", "2", "--out", str(out)]) == 2
    assert (f"evsnn attack: error: --norm {norm} needs --eps: the default 0.1 is an L∞ radius, "
            f"not a budget for {norm.upper()}; {fix}") in one_line_error(capsys)
    assert not out.exists()

def test_attack_config_records_the_values_used(trained_run, tmp_path):
    out = tmp_path / "d"
    assert main(["attack", "--model", str(trained_run), "--attack", "deepfool", "--steps", "2",
                 "--T", "4", "--samples", "2", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())["config"]
    # deepfool takes no eps; its own norm (l2) ran
    assert (config["eps"], config["steps"], config["norm"]) == (None, 2, "l2")
    out = tmp_path / "f"
    assert main(["attack", "--model", str(trained_run), "--attack", "fgsm", "--T", "4",
                 "--samples", "2", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())["config"]
    assert (config["eps"], config["steps"], config["norm"]) == (0.1, None, None)


def test_attack_one_pixel_with_its_options(trained_run, tmp_path, monkeypatch):
    from evsnn import attacks, io
    from evsnn.attacks import SNNSource
    from evsnn.data import load_digits
    from evsnn.metrics import accuracy

    seen = {}

    def spy(*a, _real=attacks.one_pixel, **kw):
        seen["kw"] = kw
        seen["result"] = _real(*a, **kw)
        return seen["result"]

    monkeypatch.setattr(attacks, "one_pixel", spy)
    out = tmp_path / "o"
    assert main(["attack", "--model", str(trained_run), "--attack", "one_pixel", "--pixels", "2",
                 "--popsize", "6", "--maxiter", "2", "--channels", "1", "--T", "4", "--samples",
                 "4", "--seed", "3", "--out", str(out)]) == 0
    assert seen["kw"] == {"pixels": 2, "popsize": 6, "maxiter": 2, "channels": 1, "rng": 3}
    r = seen["result"]
    assert r.attack == "one_pixel" and np.all(r.norms["l0"] <= 2)
    # the report's numbers are the attacked model's on the attack's images
    test = load_digits("test")
    src = SNNSource(io.load(trained_run / "model.npz"), T=4, encoder="current")
    res = json.loads((out / "results.json").read_text())["results"]
    assert res["clean accuracy"] == accuracy(src.predict(test.x[:4]), test.y[:4])
    assert res["adversarial accuracy"] == accuracy(src.predict(r.x_adv), test.y[:4])
    # without its options, one_pixel's own defaults apply (none is passed; the stub stops the
    # run before the 400 × 100 model calls of Su et al.'s setting)
    class Stop(Exception):
        pass

    def stub(*a, **kw):
        seen["kw"] = kw
        raise Stop

    monkeypatch.setattr(attacks, "one_pixel", stub)
    with pytest.raises(Stop):
        main(["attack", "--model", str(trained_run), "--attack", "one_pixel", "--T", "4",
              "--samples", "1", "--out", str(tmp_path / "d")])
    assert seen["kw"] == {"rng": 0}

def test_certify_on_the_saved_model(trained_run, tmp_path):
    out = tmp_path / "c"
    assert main(["certify", "--model", str(trained_run), "--noise", "rsc_fixed", "--T", "4",
                 "--n0", "10", "--n", "50", "--samples", "3", "--no-progress",
                 "--out", str(out)]) == 0
    acc = json.loads((out / "results.json").read_text())["results"]["certified_accuracy"]
    assert np.all(np.diff(acc["accuracy"]) <= 0) and (out / "certified_accuracy.png").exists()


def test_attack_and_certify_run_the_model_at_its_training_t_and_encoder(trained_run, tmp_path):
    # was: without --T and --encoder, a model trained at T = 4 was attacked and certified at
    # T = 10 without a word; 'evsnn train' now records them in the model file
    from evsnn import io

    assert io.load_saved(trained_run / "model.npz").metadata == {
        "trained_with": {"T": 4, "encoder": "current", "sigma": None}}
    runs = {}
    for name, extra in (("inherited", []), ("given", ["--T", "4", "--encoder", "current"])):
        out = tmp_path / name
        assert main(["attack", "--model", str(trained_run), "--attack", "fgsm", "--samples", "8",
                     *extra, "--no-progress", "--out", str(out)]) == 0
        runs[name] = out
    config = json.loads((runs["inherited"] / "config.json").read_text())["config"]
    assert (config["T"], config["encoder"]) == (4, "current")
    results = [json.loads((runs[k] / "results.json").read_text())["results"] for k in runs]
    assert results[0] == results[1]
    out = tmp_path / "cert"
    assert main(["certify", "--model", str(trained_run), "--n0", "10", "--n", "20",
                 "--samples", "2", "--no-progress", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["config"]["T"] == 4
    # a file without the record (io.save by hand) runs at the fallbacks, T = 10 and current
    bare = tmp_path / "bare.npz"
    io.save(io.load(trained_run / "model.npz"), bare)
    out = tmp_path / "bare"
    assert main(["attack", "--model", str(bare), "--attack", "fgsm", "--samples", "2",
                 "--no-progress", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())["config"]
    assert (config["T"], config["encoder"]) == (10, "current")


def test_certify_refuses_an_ann(tmp_path, capsys):
    out = tmp_path / "ann"
    assert main(
        ["train", "--model", "ann", "--epochs", "1", "--no-progress", "--out", str(out)]
    ) == 0
    assert main(["certify", "--model", str(out), "--out", str(tmp_path / "c")]) == 2
    assert "holds an ANN; certify smooths an SNN" in one_line_error(capsys)


def _conv_digits_net():
    """A small ConvNetwork for the 8x8 digits."""
    from evsnn.clock.conv import AvgPool2d, Conv2d, ConvNetwork, Flatten, Linear, Neuron
    from evsnn.params import LIF

    rng = np.random.default_rng(4)
    net = ConvNetwork([Conv2d(rng.standard_normal((2, 1, 3, 3)), padding=1),
                       Neuron(LIF(lam=0.9, theta=0.5)), AvgPool2d(2), Flatten(),
                       Linear(rng.standard_normal((10, 32)) * 0.5), Neuron(LIF(theta=0.5))],
                      input_shape=(1, 8, 8))
    return net


def test_attack_runs_a_saved_conv_network(tmp_path):
    from evsnn import io
    from evsnn.data import load_digits
    from evsnn.train import snn_accuracy

    net = _conv_digits_net()
    io.save(net, tmp_path / "conv.npz",  # the T and encoder to run it at, as 'evsnn train' saves
            metadata={"trained_with": {"T": 4, "encoder": "current", "sigma": None}})
    out = tmp_path / "a"
    assert main(["attack", "--model", str(tmp_path / "conv.npz"), "--attack", "fgsm", "--eps",
                 "0.1", "--samples", "20", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())["results"]
    test = load_digits("test")
    # the clean accuracy of the loaded network is that of the network saved, at the saved T
    assert res["clean accuracy"] == snn_accuracy(net, test.x[:20].reshape(20, 1, 8, 8),
                                                 test.y[:20], T=4)
    config = json.loads((out / "config.json").read_text())["config"]
    assert (config["T"], config["encoder"]) == (4, "current")


def test_attack_refuses_blas_product_for_a_conv_network(tmp_path, capsys):
    from evsnn import io

    io.save(_conv_digits_net(), tmp_path / "conv.npz",
            metadata={"trained_with": {"T": 4, "encoder": "current", "sigma": None}})
    assert main(["attack", "--model", str(tmp_path / "conv.npz"), "--product", "blas",
                 "--samples", "2", "--out", str(tmp_path / "a")]) == 2
    assert (f"--product blas forms the constant first-layer input of current coding in a dense "
            f"network, and this run has --model '{tmp_path / 'conv.npz'}', a convolutional "
            "network: drop --product") in one_line_error(capsys)
    assert not (tmp_path / "a").exists()


def test_certify_refuses_a_conv_network(tmp_path, capsys):
    from evsnn import io

    io.save(_conv_digits_net(), tmp_path / "conv.npz")
    assert main(["certify", "--model", str(tmp_path / "conv.npz"), "--out",
                 str(tmp_path / "c")]) == 2
    assert ("holds a ConvNetwork; certify smooths an SNN given as a dense clock-mode Network"
            in one_line_error(capsys))
    assert not (tmp_path / "c").exists()


def test_certify_refuses_a_model_of_other_data(tmp_path, capsys):
    # was: a 32-input model certified on the 64-pixel digits exited 0 with a table computed
    # from memory past its weights (the static fast path reads without bounds checks)
    from evsnn import io
    from evsnn.clock import Network
    from evsnn.params import LIF

    io.save(Network.mlp([32, 10, 10], LIF(lam=0.9), rng=0), tmp_path / "m32.npz")
    assert main(["certify", "--model", str(tmp_path / "m32.npz"), "--samples", "2", "--n0", "5",
                 "--n", "10", "--no-progress", "--out", str(tmp_path / "c")]) == 2
    assert ("takes 32 inputs but the images of --data 'digits' have 64 pixels; certify a model "
            "trained on these data") in one_line_error(capsys)
    assert not (tmp_path / "c").exists()


def test_grade_command_writes_table_and_plot(tmp_path):
    out = tmp_path / "g"
    assert main(["grade", "--samples", "2", "--out", str(out)]) == 0
    assert (out / "gradient_grades.png").exists() and (out / "convergence.png").exists()
    assert "| exact | W[0] | 1.000 |" in (out / "report.md").read_text()


def test_crossval_command(tmp_path):
    pytest.importorskip("torch", reason="torch is not installed; run `make crossval-deps`")
    pytest.importorskip("snntorch", reason="snntorch is not installed; run `make crossval-deps`")
    out = tmp_path / "x"
    assert main(["crossval", "--backend", "snntorch", "--samples", "4", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())["results"]
    assert res["crossval/snntorch"]["real_mismatches"] == 0


def test_crossval_cross_validates_the_saved_model_as_trained(trained_run, tmp_path):
    # was: crossval always built a random 64-100-10 network; --model runs the trained one at
    # the T and encoder 'evsnn train' recorded (T = 4, current coding)
    pytest.importorskip("torch", reason="torch is not installed; run `make crossval-deps`")
    pytest.importorskip("snntorch", reason="snntorch is not installed; run `make crossval-deps`")
    out = tmp_path / "x"
    assert main(["crossval", "--backend", "snntorch", "--model", str(trained_run), "--samples",
                 "4", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())["config"]
    assert (config["T"], config["encoder"], config["model"]) == (4, "current", str(trained_run))
    res = json.loads((out / "results.json").read_text())["results"]
    assert res["crossval/snntorch"]["real_mismatches"] == 0
    report = (out / "report.md").read_text()
    assert "4 images coded with current, the given network, T = 4" in report


@pytest.fixture
def no_backend_made(monkeypatch):
    """Making a backend (importing torch and the framework) fails: the refusals must come first,
    so they hold without torch installed."""
    from validation.crossval.backends import TorchBackend

    def make(cls, *args, **kwargs):
        raise ImportError("torch is not installed (test)")

    monkeypatch.setattr(TorchBackend, "make", classmethod(make))


@pytest.mark.parametrize("kind, argv, match", [
    ("if_soft", ["--backend", "norse"],
     "--backend norse cannot mirror this model under convention DEFAULT_>: layers[0] is an IF "
     "neuron with reset by subtraction: Norse's IAFCell only resets to a value and LIFBoxCell "
     "needs a leak (lam < 1); cross-validate it with --backend snntorch or spikingjelly"),
    ("dlif", ["--backend", "snntorch"],
     "--backend snntorch cannot mirror this model under convention DEFAULT_>: layers[0] is a "
     "DLIF layer: snntorch has no neuron with a per-step factor on the leak or the input; no "
     "crossval backend mirrors it; train a model without this feature"),
    ("lif", ["--backend", "spikingjelly", "--convention", "DING2025_PAPER"],
     "cannot mirror this model under convention DING2025_PAPER_>=: convention 'DING2025_PAPER"
     "_>=' has input_delay=1 (a layer's input arrives one step late); spikingjelly delivers it "
     "in the same step — use input_delay=0; give a --convention with input_delay=0, e.g. "
     "--convention DEFAULT"),
    ("ann", ["--backend", "snntorch"],
     "holds a model of type ANN; crossval mirrors a dense clock-mode SNN (a Network) in the "
     "frameworks: train one with 'evsnn train --model lif'"),
    ("conv", ["--backend", "spikingjelly"],
     "holds a model of type ConvNetwork; crossval mirrors a dense clock-mode SNN (a Network) in "
     "the frameworks: train one with 'evsnn train --model lif'; a ConvNetwork is compared in "
     "Python with validation.crossval's compare_conv / compare_snntorch"),
    ("m32", ["--backend", "snntorch"],
     "takes 32 inputs but the images of --data 'digits' have 64 pixels; cross-validate on the "
     "data the model was trained on"),
    # a fused encoder concatenates one encoding per part (was: no check with a fused encoder)
    ("m32", ["--backend", "snntorch", "--encoder", "fused:current+poisson"],
     "takes 32 inputs but the images of --data 'digits' have 64 pixels (2 × 64 with the fused "
     "encoder); cross-validate on the data the model was trained on"),
])
def test_crossval_refuses_a_model_the_backend_cannot_mirror(kind, argv, match, tmp_path, capsys,
                                                            no_backend_made):
    from evsnn import io
    from evsnn.ann import ANN
    from evsnn.clock import Dense, Network
    from evsnn.params import DLIF, LIF

    model = {
        "if_soft": lambda: Network.mlp([64, 8, 10], LIF(lam=1.0, reset="soft"), rng=0),
        "dlif": lambda: Network([Dense(np.full((10, 64), 0.1), DLIF(),
                                       dlif_factors=np.ones(4))]),
        "lif": lambda: Network.mlp([64, 8, 10], LIF(lam=0.9), rng=0),
        "ann": lambda: ANN.mlp([64, 8, 10], rng=0),
        "m32": lambda: Network.mlp([32, 8, 10], LIF(lam=0.9), rng=0),
        "conv": _conv_digits_net,
    }[kind]()
    path = tmp_path / f"{kind}.npz"
    io.save(model, path)
    assert main(["crossval", "--model", str(path), *argv, "--out", str(tmp_path / "x")]) == 2
    assert f"evsnn crossval: error: --model {str(path)!r}" in (err := one_line_error(capsys))
    assert match in err
    assert not (tmp_path / "x").exists()


def test_crossval_data_needs_a_model(tmp_path, capsys, no_backend_made):
    assert main(["crossval", "--backend", "snntorch", "--data", "mine.npz",
                 "--out", str(tmp_path / "x")]) == 2
    assert ("--data 'mine.npz' needs --model: the random 64-100-10 network takes the 64-pixel "
            "digits; give the model trained on these data") in one_line_error(capsys)


# --- the CLI review of stop 45: what the run folders record, and refusals ----------------------
def test_attack_and_certify_record_the_setting_that_ran(trained_run, tmp_path):
    out = tmp_path / "a"
    assert main(["attack", "--model", str(trained_run), "--attack", "fgsm", "--samples",
                 "100000", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())["results"]
    conf = json.loads((out / "config.json").read_text())["config"]
    n_test = 450  # the digits' test split: --samples past it attacks all of them
    assert res["setting"] == {"model": str(trained_run), "attack": "fgsm", "eps": 0.1,
                              "samples": n_test, "T": 4, "encoder": "current", "sigma": None,
                              "method": "bptt", "convention": "DEFAULT"}
    assert conf["samples"] == n_test  # was: the 100000 asked for
    assert "fgsm; eps 0.1; samples 450; T 4; encoder current" in (out / "report.md").read_text()
    out = tmp_path / "c"
    assert main(["certify", "--model", str(trained_run), "--samples", "5", "--n0", "20", "--n",
                 "200", "--out", str(out), "--no-progress"]) == 0
    res = json.loads((out / "results.json").read_text())["results"]
    assert res["setting"]["n"] == 200 and res["setting"]["samples"] == 5
    per = res["per_image"]
    from scipy.stats import norm

    for p, r, pred in zip(per["p_a_lower"], per["radius"], per["prediction"]):
        # RSC-I's radius σ Φ⁻¹(p_A) (Eq. 11) can be checked from the folder alone
        assert r == (pytest.approx(0.25 * norm.ppf(p)) if pred >= 0 and p > 0.5 else 0.0)


def test_certify_normals_reaches_the_noise_model_and_is_recorded(trained_run, tmp_path,
                                                                 monkeypatch, capsys):
    import certify.distributed as dist
    from certify.smoothing import NORMALS
    from evsnn.cli import _build_parser

    choices = {a.dest: a.choices for a in _build_parser()[1]["certify"]._actions}
    assert tuple(choices["normals"]) == NORMALS  # the CLI's list is the library's
    seen = []
    real = dist.certify_dataset

    def spy(classify, X, y, noise, **kw):
        seen.append(noise)
        return real(classify, X, y, noise, **kw)

    monkeypatch.setattr(dist, "certify_dataset", spy)
    for extra, normals in (([], "numpy"), (["--normals", "compiled"], "compiled"),
                           (["--normals", "numpy"], "numpy")):
        out = tmp_path / f"c{len(seen)}"
        assert main(["certify", "--model", str(trained_run), "--noise", "rsc_fresh", "--n0", "5",
                     "--n", "20", "--samples", "2", "--no-progress", *extra,
                     "--out", str(out)]) == 0
        noise = seen[-1]
        assert (noise.name, noise.normals) == ("rsc_fresh", normals)
        assert json.loads((out / "config.json").read_text())["config"]["normals"] == normals
        res = json.loads((out / "results.json").read_text())["results"]
        assert res["setting"]["normals"] == normals
    # from a TOML file too, checked against the choices
    (tmp_path / "run.toml").write_text('[certify]\nnormals = "compiled"\n')
    out = tmp_path / "toml"
    assert main(["certify", "--model", str(trained_run), "--n0", "5", "--n", "20", "--samples",
                 "2", "--no-progress", "--config", str(tmp_path / "run.toml"), "--out",
                 str(out)]) == 0
    assert seen[-1].normals == "compiled"
    assert json.loads((out / "config.json").read_text())["config"]["normals"] == "compiled"
    assert main(["certify", "--model", str(trained_run), "--normals", "fast", "--out",
                 str(tmp_path / "bad")]) == 2
    err = one_line_error(capsys)  # argparse's wording; its quoting of choices varies
    assert "argument --normals: invalid choice: 'fast'" in err
    assert "numpy" in err.partition("choose from")[2] and "compiled" in err
    assert not (tmp_path / "bad").exists() and len(seen) == 4


def test_deepfool_attacks_a_stochastic_encoder_model(tmp_path):
    # was: "rng is None but this attack draws random numbers", exit 2 (no seed passed)
    run = tmp_path / "p"
    assert main(["train", "--model", "lif", "--encoder", "poisson", "--epochs", "1", "--T", "4",
                 "--no-progress", "--out", str(run)]) == 0
    assert main(["attack", "--model", str(run), "--attack", "deepfool", "--steps", "2",
                 "--samples", "3", "--out", str(tmp_path / "d")]) == 0


def test_options_a_model_would_not_use_are_refused(trained_run, tmp_path, capsys):
    ann = tmp_path / "ann"
    assert main(["train", "--model", "ann", "--epochs", "1", "--no-progress", "--out",
                 str(ann)]) == 0
    for argv, what in (
            (["attack", "--model", str(ann), "--method", "foo"], "--method 'foo': options of an "
             "SNN, but --model"),
            (["attack", "--model", str(ann), "--encoder", "poisson", "--T", "5"],
             "--T 5, --encoder 'poisson': options of an SNN"),
            (["train", "--model", "converted", "--encoder", "poisson"], "--encoder 'poisson': "
             "--model converted is converted from the ANN"),
            (["train", "--model", "ann", "--method", "hart"], "--method 'hart': --model ann is "
             "not trained"),
            (["train", "--model", "lif", "--sigma", "0.3"], "--sigma 0.3 is the noise of the "
             "RSC encoders"),
            (["train", "--model", "lif", "--encoder", "rsc_fixed"], "--encoder 'rsc_fixed' needs "
             "--sigma")):
        assert main(argv + ["--out", str(tmp_path / "x")]) == 2
        assert what in one_line_error(capsys)
    assert not (tmp_path / "x").exists()
    assert main(["attack", "--model", str(ann), "--attack", "fgsm", "--samples", "4", "--out",
                 str(tmp_path / "a")]) == 0
    conf = json.loads((tmp_path / "a" / "config.json").read_text())["config"]
    assert [conf[k] for k in ("T", "encoder", "sigma", "method", "convention")] == [None] * 5


def test_folders_and_unreachable_schedulers_are_one_line_errors(trained_run, tmp_path, capsys,
                                                                monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["attack", "--model", str(empty), "--out", str(tmp_path / "a")]) == 2
    assert "is a folder without model.npz" in one_line_error(capsys)  # was: "no such file"
    assert main(["attack", "--model", str(trained_run), "--data", str(empty), "--out",
                 str(tmp_path / "a")]) == 2
    assert "is a folder, not a file" in one_line_error(capsys)  # was: IsADirectoryError
    import certify.distributed as dist

    def unreachable(*a, **k):
        raise OSError("Timed out trying to connect to tcp://127.0.0.1:1 after 30 s")

    monkeypatch.setattr(dist, "certify_dataset", unreachable)
    assert main(["certify", "--model", str(trained_run), "--scheduler", "tcp://127.0.0.1:1",
                 "--samples", "2", "--out", str(tmp_path / "c")]) == 2
    assert "--scheduler 'tcp://127.0.0.1:1': cannot reach it" in one_line_error(capsys)
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_flags_a_run_would_ignore_bad_data_and_bad_backends_are_refused_first(tmp_path, capsys):
    """A CLI review: an empty or truncated --data .npz ended in a traceback (EOFError /
    BadZipFile); train --model ann --T and crossval --sigma with a noiseless encoder ran and
    recorded the unused value; demo --backend was checked only after the whole demo."""
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    for data in (empty, bad):
        assert main(["train", "--data", str(data), "--out", str(tmp_path / "r")]) == 2
        assert "is not a readable .npz of images x and labels y" in one_line_error(capsys)
    cases = [
        (["train", "--model", "ann", "--T", "50"], "--T 50: --model ann has no time steps"),
        (["crossval", "--backend", "snntorch", "--sigma", "0.3", "--samples", "2"],
         "--sigma 0.3 is the noise of the RSC encoders, and --encoder 'poisson' has none"),
        (["demo", "--size", "small", "--backend", "bogus"], "invalid choice: 'bogus'"),
    ]
    for argv, match in cases:
        assert main([*argv, "--out", str(tmp_path / "r")]) == 2
        assert match in one_line_error(capsys)
    assert not (tmp_path / "r").exists()


def test_overwrite_replaces_only_a_run_folder(tmp_path, capsys):
    """--overwrite deleted any existing folder (a review: 'thesis.tex DELETED')."""
    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "thesis.tex").write_text("x")
    assert main(["distance", "--a", "1", "--b", "2", "--out", str(mine), "--overwrite"]) == 2
    assert "is not a run folder" in one_line_error(capsys)
    assert (mine / "thesis.tex").read_text() == "x"
    run = tmp_path / "run"
    assert main(["distance", "--a", "1", "--b", "2", "--out", str(run)]) == 0
    assert main(["distance", "--a", "1", "--b", "3", "--out", str(run), "--overwrite"]) == 0


def test_crossval_records_the_samples_that_ran(tmp_path):
    pytest.importorskip("torch", reason="torch is not installed; run `make crossval-deps`")
    pytest.importorskip("snntorch", reason="snntorch is not installed")
    out = tmp_path / "x"
    assert main(["crossval", "--backend", "snntorch", "--samples", "5000", "--T", "2",
                 "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["config"]["samples"] == 450


def test_attack_refuses_settings_its_model_does_not_use(tmp_path, capsys):
    """--sigma on a current-coded SNN and --pixel-range on an ANN ran and were recorded in the
    caption, the results and config.json (a review)."""
    from evsnn import io
    from evsnn.ann import ANN
    from evsnn.clock import Network
    from evsnn.params import LIF

    io.save(ANN.mlp([64, 8, 10], rng=0), tmp_path / "ann.npz")
    io.save(Network.mlp([64, 8, 10], LIF(lam=0.9), rng=0), tmp_path / "snn.npz")
    cases = [
        (["--model", str(tmp_path / "snn.npz"), "--sigma", "0.3"],
         "--sigma 0.3 is the noise of the RSC encoders, and --encoder 'current' has none"),
        (["--model", str(tmp_path / "ann.npz"), "--pixel-range", "real"],
         "--pixel-range 'real': options of an SNN"),
    ]
    for argv, match in cases:
        assert main(["attack", *argv, "--samples", "2", "--out", str(tmp_path / "r")]) == 2
        assert match in one_line_error(capsys)
    assert not (tmp_path / "r").exists()


def test_config_records_the_defaults_that_ran(tmp_path):
    """config.json said null for defaults that ran: train's epochs (the recipe's 30 for an
    ANN), rfgsm's variant, apgd's loss and rule (a CLI review)."""
    from evsnn import io
    from evsnn.ann import ANN

    def config(out):
        return json.loads((out / "config.json").read_text())["config"]

    out = tmp_path / "t"
    assert main(["train", "--model", "ann", "--no-progress", "--out", str(out)]) == 0
    assert config(out)["epochs"] == 30
    assert json.loads((out / "results.json").read_text())["results"]["epochs"] == 30
    io.save(ANN.mlp([64, 8, 10], rng=0), tmp_path / "ann.npz")
    for attack, want in (("rfgsm", {"variant": "tramer"}),
                         ("apgd", {"loss": "ce", "rule": "paper", "steps": 10})):
        out = tmp_path / attack
        assert main(["attack", "--model", str(tmp_path / "ann.npz"), "--attack", attack,
                     "--samples", "2", "--out", str(out)]) == 0
        got = config(out)
        assert {k: got[k] for k in want} == want


# --- fixC: flags named as flags, before any work ----------------------------------------------
@pytest.fixture
def no_data_loaded(monkeypatch):
    """Loading --data fails: the refusals below must come before it."""
    import evsnn.data

    def load(*args, **kwargs):
        raise AssertionError("the data were loaded before the refusal")

    monkeypatch.setattr(evsnn.data, "load_digits", load)
    monkeypatch.setattr(evsnn.data, "load_npz", load)


@pytest.fixture
def snn_file(tmp_path):
    from evsnn import io
    from evsnn.clock import Network
    from evsnn.params import LIF

    path = tmp_path / "snn.npz"
    io.save(Network.mlp([64, 8, 10], LIF(lam=0.9), rng=0), path)
    return path


@pytest.mark.parametrize("command", ["crossval", "crossval-model", "attack"])
def test_an_rsc_encoder_without_sigma_names_the_flag(command, snn_file, tmp_path, capsys,
                                                     no_backend_made, no_data_loaded):
    """crossval and attack said the library's "method='rsc_fixed' needs sigma=" (train did
    not): the user gave a flag, and --sigma is the flag that fixes it."""
    argv = {"crossval": ["crossval", "--backend", "snntorch", "--samples", "2"],
            "crossval-model": ["crossval", "--backend", "snntorch", "--model", str(snn_file)],
            "attack": ["attack", "--model", str(snn_file), "--samples", "2"]}[command]
    out = tmp_path / "r"
    assert main([*argv, "--encoder", "rsc_fixed", "--no-progress", "--out", str(out)]) == 2
    err = one_line_error(capsys)
    assert err.endswith("--encoder 'rsc_fixed' needs --sigma, the std of its Gaussian noise "
                        "(e.g. --sigma 0.25)"), err
    assert "sigma=" not in err
    assert not out.exists()


@pytest.mark.parametrize("argv", [
    ["train"], ["train", "--model", "trace"], ["train", "--model", "ann"],
    ["attack", "--model", "MODEL"], ["crossval", "--backend", "snntorch"],
    ["crossval", "--backend", "norse", "--model", "MODEL"],
])
@pytest.mark.parametrize("encoder, message", [
    ("bogus", "--encoder 'bogus' is not an encoder; use one of ['current', 'poisson', "
     "'ratesyn_end', 'ratesyn_start', 'rsc_fixed', 'rsc_fresh', 'ttfs'] or 'fused:a+b', e.g. "
     "--encoder fused:current+poisson"),
    ("fused:current+bogus", "--encoder 'fused:current+bogus': 'bogus' is not an encoder"),
    ("fused:", "--encoder 'fused:' names no encoder after 'fused:'"),
])
def test_an_unknown_encoder_is_refused_before_any_work(argv, encoder, message, snn_file,
                                                       tmp_path, capsys, no_data_loaded,
                                                       no_backend_made):
    """train --encoder bogus was refused by the library (method='bogus') once training had
    begun, attack and crossval once the model and the data had been loaded."""
    argv = [str(snn_file) if a == "MODEL" else a for a in argv]
    out = tmp_path / "r"
    assert main([*argv, "--encoder", encoder, "--no-progress", "--out", str(out)]) == 2
    err = one_line_error(capsys)
    assert err.startswith(f"evsnn {argv[0]}: error: {message}"), err
    assert not out.exists()


@pytest.mark.parametrize("command", [["train"], ["certify", "--model", "MODEL"],
                                     ["crossval", "--backend", "snntorch", "--model", "MODEL"]])
def test_data_without_x_names_the_path_as_given_and_the_missing_array(command, snn_file,
                                                                       tmp_path, capsys):
    """A --data .npz without x was "not a readable .npz ... (ValueError:
    PosixPath('...') has no array 'x' ...)": the path as a repr of the library's Path."""
    np.savez(tmp_path / "nox.npz", y=np.zeros(3, dtype=np.int64), z=np.zeros((3, 4)))
    np.savez(tmp_path / "none.npz", z=np.zeros(3))
    argv = [str(snn_file) if a == "MODEL" else a for a in command]
    for name, missing, held in (("nox.npz", "array 'x'", "['y', 'z']"),
                                ("none.npz", "arrays 'x' and 'y'", "['z']")):
        data = str(tmp_path / name)
        assert main([*argv, "--data", data, "--no-progress", "--out",
                     str(tmp_path / "r")]) == 2
        err = one_line_error(capsys)
        assert err == (f"evsnn {argv[0]}: error: --data {data!r} has no {missing} (it holds "
                       f"{held}); the file must hold images x [n, ...] in [0, 1] and labels "
                       "y [n]: numpy.savez(path, x=images, y=labels)"), err
        assert "PosixPath" not in err
    assert not (tmp_path / "r").exists()


def test_crossval_refuses_sigma_without_noise_before_loading_the_data(snn_file, tmp_path, capsys,
                                                                      no_data_loaded):
    # a review: crossval --model loaded --data first and refused --sigma afterwards
    out = tmp_path / "r"
    assert main(["crossval", "--backend", "snntorch", "--model", str(snn_file), "--sigma", "0.3",
                 "--no-progress", "--out", str(out)]) == 2
    assert one_line_error(capsys).endswith(
        "--sigma 0.3 is the noise of the RSC encoders, and --encoder 'current' has none: drop "
        "--sigma")
    assert not out.exists()


def test_data_whose_arrays_are_refused_is_not_called_unreadable(tmp_path, capsys):
    # a review: images outside [0, 1] or labels not one per image were reported as "not a
    # readable .npz"; load_npz's own message says what is wrong
    np.savez(tmp_path / "bright.npz", x=np.full((3, 4), 2.0), y=np.zeros(3, dtype=np.int64))
    np.savez(tmp_path / "short.npz", x=np.zeros((5, 4)), y=np.zeros(4, dtype=np.int64))
    for name in ("bright.npz", "short.npz"):
        data = str(tmp_path / name)
        assert main(["train", "--data", data, "--out", str(tmp_path / "r")]) == 2
        err = one_line_error(capsys)
        assert err.startswith(f"evsnn train: error: --data {data!r}: "), err
        assert "not a readable" not in err
    assert not (tmp_path / "r").exists()


def test_crossval_backends_are_validation_crossvals():
    from evsnn.cli import CROSSVAL_BACKENDS
    from validation.crossval.backends import BACKENDS

    assert sorted(CROSSVAL_BACKENDS) == sorted(BACKENDS)
