"""evsnn.io: round trips for the ANN and every neuron kind, atomic writes, validation on load."""

import json
import math
import os
import re
import stat

import numpy as np
import pytest
from reference.helpers import read_in_thread, rewrite_npz

from evsnn import io
from evsnn.ann import ANN
from evsnn.clock import Dense, Network, simulate
from evsnn.conventions import DING2025_CODE, HART_CODE, get_convention
from evsnn.params import DLIF, IF, LIF, Readout, TraceLIF

RNG = np.random.default_rng(0)


def _w(n_out, n_in, dtype=np.float64):
    return RNG.standard_normal((n_out, n_in)).astype(dtype)


NETWORKS = {
    "lif_hard": Network((Dense(_w(5, 4), LIF(lam=0.8, theta=0.7, v_rest=-0.1, v_init=0.2)),)),
    "if_soft": Network((Dense(_w(5, 4), IF(theta=1.5)), Dense(_w(3, 5), IF()))),
    "trace": Network((Dense(_w(5, 4), TraceLIF(tau_mem_ms=5.0, tau_syn_ms=4.0, u0=0.1)),
                      Dense(_w(3, 5), TraceLIF(output="spike", theta=0.9)))),
    "dlif": Network((Dense(_w(5, 4), DLIF(lam=0.9, reset="soft"), dlif_factors=RNG.random(6)),
                     Dense(_w(3, 5), Readout(lam=0.95, v_init=0.1)))),
    "bias": Network((Dense(_w(5, 4), LIF(), bias=RNG.standard_normal(5)),
                     Dense(_w(3, 5), Readout(), bias=RNG.standard_normal(3)))),
    "float32": Network((Dense(_w(5, 4, np.float32), LIF(lam=0.5)),)),
}


def _same_network(a, b):
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers):
        assert la.neuron == lb.neuron and type(la.neuron) is type(lb.neuron)
        assert la.weight.dtype == lb.weight.dtype
        np.testing.assert_array_equal(la.weight, lb.weight)
        for name in ("bias", "dlif_factors"):
            u, v = getattr(la, name), getattr(lb, name)
            assert (u is None) == (v is None)
            if u is not None:
                np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_network_round_trip_every_neuron_kind(tmp_path, name):
    net = NETWORKS[name]
    p = tmp_path / "net.npz"
    assert io.save(net, p) == os.fspath(p)
    back = io.load(p)
    _same_network(net, back)
    # and it simulates identically
    x = (RNG.random((6, 2, 4)) < 0.5).astype(net.layers[0].weight.dtype)
    np.testing.assert_array_equal(simulate(net, x).output, simulate(back, x).output)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ann_round_trip(tmp_path, bias, dtype):
    ann = ANN([_w(4, 3, dtype), _w(2, 4, dtype)],
              [RNG.random(4).astype(dtype), None] if bias else None)
    p = tmp_path / "ann.npz"
    io.save(ann, p)
    back = io.load(p)
    assert isinstance(back, ANN) and back.has_bias == bias
    for u, v in zip(ann.weights, back.weights):
        assert v.dtype == dtype
        np.testing.assert_array_equal(u, v)
    if bias:
        np.testing.assert_array_equal(ann.biases[0], back.biases[0])
        assert back.biases[1] is None


def test_convention_and_metadata_round_trip(tmp_path):
    p = tmp_path / "m.npz"
    io.save(NETWORKS["if_soft"], p, convention="DING2025_CODE",
            metadata={"epochs": 3, "acc": 0.5, "tags": ["a"]})
    saved = io.load_saved(p)
    assert saved.convention == DING2025_CODE
    assert saved.metadata == {"epochs": 3, "acc": 0.5, "tags": ["a"]}
    io.save(NETWORKS["if_soft"], p, convention=HART_CODE.with_(spike_test=">"))
    assert io.load_saved(p).convention == HART_CODE.with_(spike_test=">")
    io.save(NETWORKS["if_soft"], p)
    assert io.load_saved(p).convention is None and io.load_saved(p).metadata == {}


def test_file_is_a_plain_npz_with_a_json_description(tmp_path):
    p = tmp_path / "m.npz"
    io.save(NETWORKS["trace"], p)
    with np.load(p, allow_pickle=False) as z:
        assert sorted(z.files) == ["meta", "weight_0", "weight_1"]
        meta = json.loads(str(z["meta"][()]))
    assert meta["format"] == io.FORMAT and meta["version"] == io.VERSION
    assert meta["layers"][0]["neuron"]["kind"] == "TraceLIF"
    assert meta["layers"][1]["neuron"]["params"]["output"] == "spike"


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    p = tmp_path / "m.npz"
    io.save(NETWORKS["lif_hard"], p)
    before = p.read_bytes()

    def broken_savez(fh, **arrays):
        fh.write(b"half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(io.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        io.save(NETWORKS["if_soft"], p)
    assert p.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_file_mode_is_that_of_open(tmp_path, umask):
    # like open(path, "w"): a new file gets 0o666 minus the umask, an existing file keeps its
    # permissions (certify's tables are written by the same helper, tests/test_distributed.py)
    p = tmp_path / "m.npz"
    old = os.umask(umask)
    try:
        io.save(NETWORKS["lif_hard"], p)
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o666 & ~umask
        os.chmod(p, 0o640)
        io.save(NETWORKS["if_soft"], p)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o640
    _same_network(io.load(p), NETWORKS["if_soft"])
    assert os.listdir(tmp_path) == ["m.npz"]


def test_a_symbolic_link_is_followed_and_kept(tmp_path):
    # was: the new file was renamed over the link, which became a regular file while the file
    # it pointed to kept the old model
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "m.npz"
    io.save(NETWORKS["lif_hard"], target)
    os.chmod(target, 0o640)
    link, chain = tmp_path / "link.npz", tmp_path / "chain.npz"
    link.symlink_to(os.path.join("real", "m.npz"))  # relative: resolved from the link's folder
    chain.symlink_to("link.npz")  # a link to a link: the final target is written
    assert io.save(NETWORKS["if_soft"], link) == str(link)
    assert io.save(NETWORKS["dlif"], chain, metadata={"via": "chain"}) == str(chain)
    assert os.readlink(link) == os.path.join("real", "m.npz") and os.readlink(chain) == "link.npz"
    saved = io.load_saved(target)
    _same_network(saved.model, NETWORKS["dlif"])
    assert saved.metadata == {"via": "chain"}
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    # the temporary file went to the target's folder and is gone
    assert sorted(os.listdir(tmp_path)) == ["chain.npz", "link.npz", "real"]
    assert os.listdir(tmp_path / "real") == ["m.npz"]


def test_a_fifo_or_pipe_is_written_in_place_not_replaced(tmp_path):
    # was: the temporary file was renamed over the FIFO, which became a regular file (over
    # /dev/null too), and a pipe (/dev/stdout | cat) failed naming a '.pipe:[...].tmp' file
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    finish = read_in_thread(lambda: open(fifo, "rb"))
    assert io.save(NETWORKS["dlif"], fifo) == str(fifo)
    data = finish()
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and os.listdir(tmp_path) == ["fifo"]
    (tmp_path / "copy.npz").write_bytes(data)
    _same_network(io.load(tmp_path / "copy.npz"), NETWORKS["dlif"])
    # an anonymous pipe reached by path, as /dev/stdout is when stdout is a pipe
    r, w = os.pipe()
    finish = read_in_thread(lambda: os.fdopen(r, "rb"))
    try:
        io.save(NETWORKS["dlif"], f"/dev/fd/{w}")
    finally:
        os.close(w)
    assert finish() == data
    # a failing write sends nothing and leaves the FIFO
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the writer's open need not wait
    try:
        with pytest.raises(TypeError, match="metadata keys must be strings"):
            io.save(NETWORKS["dlif"], fifo, metadata={1: "x"})

        def broken_savez(fh, **arrays):
            fh.write(b"half an archive")
            raise OSError("disk full")

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(io.np, "savez", broken_savez)
            with pytest.raises(OSError, match="disk full"):
                io.save(NETWORKS["dlif"], fifo)
        assert os.read(reader, 1) == b""  # no writer ever opened it: nothing was sent
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_character_device_is_written_in_place_not_replaced(tmp_path):
    # a private copy of /dev/null (major 1, minor 3; the real one is never touched): it stays a
    # device and discards the archive (it was replaced by a regular file holding it)
    dev = tmp_path / "null"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    assert io.save(NETWORKS["dlif"], dev) == str(dev)
    assert stat.S_ISCHR(os.stat(dev).st_mode) and os.listdir(tmp_path) == ["null"]
    assert dev.read_bytes() == b""


def test_a_dangling_link_writes_the_file_it_names(tmp_path):
    link = tmp_path / "link.npz"
    link.symlink_to(tmp_path / "sub" / "m.npz")
    with pytest.raises(FileNotFoundError, match=r"cannot write '.*link.npz' \(a symbolic link to "
                                                r"'.*sub/m.npz'\): the directory '.*sub' does not "
                                                r"exist; create it first"):
        io.save(NETWORKS["dlif"], link)
    assert link.is_symlink() and os.listdir(tmp_path) == ["link.npz"]
    (tmp_path / "sub").mkdir()
    io.save(NETWORKS["dlif"], link)
    assert link.is_symlink()
    _same_network(io.load(tmp_path / "sub" / "m.npz"), NETWORKS["dlif"])
    assert os.listdir(tmp_path / "sub") == ["m.npz"]
    # a link loop is the OS's error, naming the path given; the links stay as they were
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    with pytest.raises(OSError, match=r"Too many levels of symbolic links: '.*loop'"):
        io.save(NETWORKS["dlif"], loop)
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "loop", "sub"] and loop.is_symlink()


@pytest.mark.parametrize("mode", [0o444, 0o400, 0o466], ids=oct)
@pytest.mark.parametrize("via_link", [False, True])
def test_a_read_only_file_is_refused_and_kept(tmp_path, mode, via_link):
    # was: replaced silently (rename ignores the file's mode). The owner's write bit decides,
    # not os.access, so the check holds for root too (who may write anything)
    p = tmp_path / "m.npz"
    io.save(NETWORKS["lif_hard"], p)
    os.chmod(p, mode)
    before = p.read_bytes()
    given = p
    if via_link:
        given = tmp_path / "link.npz"
        given.symlink_to("m.npz")
    shown = r"'.*link.npz' \(a symbolic link to '.*m.npz'\)" if via_link else r"'.*m.npz'"
    with pytest.raises(PermissionError, match=rf"cannot write {shown}: the file is read-only "
                                              rf"\(mode {mode:#o}\); make it writable \(chmod "
                                              r"u\+w\) or choose another path"):
        io.save(NETWORKS["if_soft"], given)
    assert p.read_bytes() == before and stat.S_IMODE(os.stat(p).st_mode) == mode
    assert sorted(os.listdir(tmp_path)) == sorted({"m.npz", given.name})  # no temporary file
    # writable again, it is replaced as before
    os.chmod(p, 0o644)
    io.save(NETWORKS["if_soft"], given)
    _same_network(io.load(p), NETWORKS["if_soft"])


def _save_into_a_locked_folder(tmp_path, via_link, lock=lambda d: os.chmod(d, 0o555)):
    """Save into tmp_path/locked, after ``lock(folder)`` (default: mode 0o555), directly or
    through a link beside it; returns the error raised, after checking that nothing changed."""
    locked = tmp_path / "locked"
    locked.mkdir()
    io.save(NETWORKS["lif_hard"], locked / "m.npz")
    before = (locked / "m.npz").read_bytes()
    given = locked / "m.npz"
    if via_link:
        given = tmp_path / "link.npz"
        given.symlink_to(os.path.join("locked", "m.npz"))
    lock(locked)
    try:
        with pytest.raises(PermissionError) as err:
            io.save(NETWORKS["if_soft"], given)
        assert os.listdir(locked) == ["m.npz"] and (locked / "m.npz").read_bytes() == before
    finally:
        os.chmod(locked, 0o755)
    return err.value


@pytest.mark.skipif(os.geteuid() == 0, reason="root creates files in a folder of any mode")
@pytest.mark.parametrize("via_link", [False, True])
def test_a_folder_that_is_not_writable_is_refused_regression(tmp_path, via_link):
    # was: PermissionError "[Errno 13] Permission denied: '.../locked/.m.npz.<hex>.tmp'", naming
    # the temporary file, a path the caller never passed, and no fix
    shown = (r"'.*link.npz' \(a symbolic link to '.*locked/m.npz'\)" if via_link
             else r"'.*locked/m.npz'")
    err = _save_into_a_locked_folder(tmp_path, via_link)
    assert re.match(rf"cannot write {shown}: the directory '.*locked' is not writable \(no file "
                    r"can be created in it\); make it writable \(chmod u\+w\) or choose "
                    r"another path$", str(err))


def test_a_folder_that_is_not_writable_is_refused_as_root_too(tmp_path, monkeypatch):
    # the check asks os.access (true for root, who may create files anywhere): as the folder's
    # answer for a user without write permission, it is refused before the temporary file
    real = os.access

    def lock(folder):
        monkeypatch.setattr(io.os, "access", lambda p, m: str(p) != str(folder) and real(p, m))

    err = _save_into_a_locked_folder(tmp_path, via_link=True, lock=lock)
    assert re.match(r"cannot write '.*link.npz' \(a symbolic link to '.*locked/m.npz'\): the "
                    r"directory '.*locked' is not writable", str(err))


def test_a_directory_path_is_refused_before_writing_regression(tmp_path):
    # was: the archive was written to a temporary file and os.replace then failed with
    # "[Errno 21] Is a directory: '.../.m.npz.<hex>.tmp' -> '.../m.npz'"
    (tmp_path / "m.npz").mkdir()
    link = tmp_path / "link.npz"
    link.symlink_to("m.npz")
    for given, shown in ((tmp_path / "m.npz", r"'.*m.npz'"),
                         (link, r"'.*link.npz' \(a symbolic link to '.*m.npz'\)")):
        with pytest.raises(IsADirectoryError, match=rf"^cannot write {shown}: it is a directory; "
                                                    r"pass a file path inside it, e\.g\. "
                                                    r"'.*/model.npz'$"):
            io.save(NETWORKS["if_soft"], given)
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "m.npz"]
    assert os.listdir(tmp_path / "m.npz") == []


@pytest.fixture
def saved(tmp_path):
    p = tmp_path / "m.npz"
    io.save(NETWORKS["dlif"], p)
    return p


def test_missing_array(saved):
    rewrite_npz(saved, mutate_arrays=lambda a: a.pop("weight_1"))
    with pytest.raises(ValueError, match="the array 'weight_1' is missing"):
        io.load(saved)


def test_missing_dlif_factors(saved):
    rewrite_npz(saved, mutate_arrays=lambda a: a.pop("dlif_factors_0"))
    with pytest.raises(ValueError, match="the array 'dlif_factors_0' is missing"):
        io.load(saved)


def test_shape_mismatch(saved):
    rewrite_npz(saved, mutate_arrays=lambda a: a.update(weight_1=np.ones((3, 4))))
    with pytest.raises(ValueError,
                       match=r"'weight_1' has shape \(3, 4\) but the description says \(3, 5\)"):
        io.load(saved)


def test_layers_that_do_not_chain(saved):
    def meta(m):
        m["layers"][1]["shape"] = [3, 4]

    rewrite_npz(saved, meta, lambda a: a.update(weight_1=np.ones((3, 4))))
    with pytest.raises(ValueError, match=r"layers\[1\] takes 4 inputs"):
        io.load(saved)


def test_unknown_neuron_kind(saved):
    def meta(m):
        m["layers"][0]["neuron"]["kind"] = "Izhikevich"

    rewrite_npz(saved, meta)
    with pytest.raises(ValueError, match="layer 0: unknown neuron kind 'Izhikevich'"):
        io.load(saved)


def test_unknown_and_invalid_neuron_parameters(saved):
    def extra(m):
        m["layers"][1]["neuron"]["params"]["tau"] = 3

    rewrite_npz(saved, extra)
    with pytest.raises(ValueError, match=r"layer 1: Readout has no parameter\(s\) \['tau'\]"):
        io.load(saved)

    def bad(m):
        m["layers"][1]["neuron"].update(params={"lam": 2.0})

    rewrite_npz(saved, bad)
    with pytest.raises(ValueError, match=r"layer 1: invalid Readout parameters \(lam=2.0"):
        io.load(saved)


def test_unexpected_array(saved):
    rewrite_npz(saved, mutate_arrays=lambda a: a.update(bias_0=np.ones(5)))
    with pytest.raises(ValueError, match=r"unexpected arrays \['bias_0'\]"):
        io.load(saved)


def test_version_1_conventions_load_with_the_scale_their_gradients_used(tmp_path):
    # evsnn wrote sigmoid_scale="paper" for DEFAULT before version 2 but never read it (the
    # bptt surrogate was the code scale); a version-2 file means what it says
    p = tmp_path / "m.npz"
    io.save(NETWORKS["if_soft"], p, convention="DING2025_PAPER")
    assert io.load_saved(p).convention.sigmoid_scale == "paper"
    rewrite_npz(p, lambda m: m.update(version=1))
    old = io.load_saved(p).convention
    assert old.sigmoid_scale == "code" and old.name == "DING2025_PAPER"


@pytest.mark.parametrize("metadata", [[1, 2], "text", None, 3, True])
def test_metadata_that_is_not_an_object_is_refused_regression(saved, metadata):
    # was silently replaced by {} (the saved notes lost without a word) where every other bad
    # entry of the description raises naming the file
    rewrite_npz(saved, lambda m: m.update(metadata=metadata))
    with pytest.raises(ValueError, match=(
            rf"^{re.escape(str(saved))}: the metadata {re.escape(repr(metadata))} is not an "
            r"object \(\{name: value, \.\.\.\}\); save writes a dict \(\{\} for "
            r"metadata=None\): the file was edited or damaged — re-save the model with "
            r"evsnn\.io\.save$")):
        io.load_saved(saved)
    with pytest.raises(ValueError, match="is not an object"):
        io.load(saved)  # load reads the same description


def _rewrite_meta_text(path, edit):
    """Rewrite the file's JSON description as text (edits json.dumps cannot make)."""
    with np.load(path, allow_pickle=False) as z:
        text = str(z["meta"][()])
        arrays = {k: z[k] for k in z.files if k != "meta"}
    with open(path, "wb") as fh:
        np.savez(fh, meta=np.array(edit(text)), **arrays)


_NOT_JSON = r"^{}: the 'meta' entry is not valid JSON \({}\)$"
_EDITED = (r"save writes finite numbers only: the file was edited or damaged \(write a finite "
           r"number")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_numbers_json_lacks_are_refused_regression(saved, token):
    # Python's json read them: {"acc": NaN} loaded, and the loaded metadata could not be saved
    # again ("Out of range float values are not JSON compliant"); save never writes them
    # (allow_nan=False in every version). Found by the random-profile hunt's probing.
    _rewrite_meta_text(saved, lambda t: t.replace('"metadata": {}',
                                                  f'"metadata": {{"acc": {token}}}'))
    with pytest.raises(ValueError, match=_NOT_JSON.format(
            re.escape(str(saved)), f"{token} is not a JSON number; " + _EDITED
            + r", or null, there\)")):
        io.load_saved(saved)


def test_a_number_that_overflows_or_nesting_past_the_stack_is_refused_regression(saved):
    # 1e999 read as inf (the same re-save failure); nesting deeper than the parser's stack raised
    # a bare RecursionError, not the file's ValueError
    original = saved.read_bytes()
    _rewrite_meta_text(saved, lambda t: t.replace('"metadata": {}', '"metadata": {"acc": 1e999}'))
    with pytest.raises(ValueError, match=_NOT_JSON.format(
            re.escape(str(saved)), "the number 1e999 overflows to inf; " + _EDITED + r" there\)")):
        io.load_saved(saved)
    saved.write_bytes(original)
    deep = "[" * 100_000 + "]" * 100_000
    _rewrite_meta_text(saved, lambda t: t.replace('"metadata": {}', f'"metadata": {{"a": {deep}}}'))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(saved))}: the 'meta' entry is not "
                                         r"valid JSON \(maximum recursion depth exceeded"):
        io.load_saved(saved)
    # finite numbers, also at the ends of the floats, read as before
    saved.write_bytes(original)
    _rewrite_meta_text(saved, lambda t: t.replace(
        '"metadata": {}', '"metadata": {"a": 1.7976931348623157e308, "b": 5e-324, "c": -0.0}'))
    got = io.load_saved(saved).metadata
    assert got == {"a": 1.7976931348623157e308, "b": 5e-324, "c": 0.0}
    assert math.copysign(1.0, got["c"]) == -1.0


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_a_description_without_metadata_reads_as_empty(saved, version):
    # every version of save writes the key; the reader has always taken a file without it
    rewrite_npz(saved, lambda m: (m.pop("metadata"), m.update(version=version)))
    loaded = io.load_saved(saved)
    assert loaded.metadata == {}
    _same_network(loaded.model, NETWORKS["dlif"])


def test_description_errors(saved):
    cases = [
        (lambda m: m.update(format="other"), "format 'other' is not 'evsnn-model'"),
        (lambda m: m.update(version=99), "format version 99 is not supported"),
        (lambda m: m.update(kind="cnn"), "unknown model kind 'cnn'"),
        (lambda m: m.pop("layers"), "no 'layers' entry"),
        (lambda m: m.update(layers=[]), "lists no layers"),
        (lambda m: m["layers"][0].pop("shape"), "layer 0: the description has no 'shape'"),
        (lambda m: m["layers"][0].pop("neuron"), "layer 0: the description has no 'neuron'"),
        (lambda m: m["layers"][0]["neuron"].pop("kind"), "layer 0: the neuron description has no"),
        (lambda m: m.update(convention={"name": "X", "spike_test": "<"}), "invalid convention"),
        (lambda m: m.pop("kind"), "the description has no 'kind' entry"),
    ]
    original = saved.read_bytes()
    for mutate, message in cases:
        saved.write_bytes(original)
        rewrite_npz(saved, mutate)
        with pytest.raises(ValueError, match=message):
            io.load(saved)


def test_not_a_model_file(tmp_path):
    # was: a run folder gave "not a readable .npz archive: [Errno 21] Is a directory"
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(ValueError, match=r"run: a folder, not an evsnn model file; pass the path "
                                         r"of a .npz written by evsnn.io.save"):
        io.load(run)
    (run / "model.npz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"run: a folder, not an evsnn model file; load the model "
                                         rf"of this run folder, '{re.escape(str(run))}/model.npz'"):
        io.load(run)
    # a bytes path (which save takes) gets the same hint; it was "Can't mix strings and bytes
    # in path components"
    with pytest.raises(ValueError, match=rf"^{re.escape(str(run))}: a folder, not an evsnn "
                                         r"model file; load the model of this run folder, "
                                         rf"'{re.escape(str(run))}/model.npz'"):
        io.load(os.fsencode(run))
    p = tmp_path / "junk.npz"
    p.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not an evsnn model file"):
        io.load(p)
    np.savez(p, a=np.ones(2))
    with pytest.raises(ValueError, match="the 'meta' entry is missing"):
        io.load(p)
    q = tmp_path / "one.npy"
    np.save(q, np.ones(2))
    with pytest.raises(ValueError, match="a single .npy array"):
        io.load(q)
    with open(p, "wb") as fh:
        np.savez(fh, meta=np.array("{not json"))
    with pytest.raises(ValueError, match="not valid JSON"):
        io.load(p)
    with pytest.raises(FileNotFoundError):
        io.load(tmp_path / "absent.npz")


def test_save_errors(tmp_path):
    with pytest.raises(TypeError, match="model must be an evsnn.ann.ANN or an evsnn.clock.Network"):
        io.save("model", tmp_path / "m.npz")
    with pytest.raises(TypeError, match="metadata must be a dict"):
        io.save(NETWORKS["lif_hard"], tmp_path / "m.npz", metadata=[1])
    with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
        io.save(NETWORKS["lif_hard"], tmp_path / "m.npz", metadata={"a": object()})
    assert os.listdir(tmp_path) == []


def test_layer_that_the_clock_layer_rejects(saved):
    # DLIF factors on a Readout layer: Dense's own validation, reported with the layer index
    def meta(m):
        m["layers"][1]["dlif_factors"] = True

    rewrite_npz(saved, meta, lambda a: a.update(dlif_factors_1=np.ones(6)))
    with pytest.raises(ValueError, match="layer 1: dlif_factors were given for a Readout neuron"):
        io.load(saved)


def test_description_that_is_not_an_object(tmp_path):
    p = tmp_path / "m.npz"
    with open(p, "wb") as fh:
        np.savez(fh, meta=np.array("[1, 2]"))
    with pytest.raises(ValueError, match="meta is not a dict"):
        io.load(p)


def test_the_default_surrogate_round_trips_and_older_files_keep_the_sigmoid(tmp_path):
    # version 5 records the convention's surrogate; a file of an earlier version was written
    # when bptt's default was the sigmoid under every preset, and reads so
    p = tmp_path / "m.npz"
    io.save(NETWORKS["if_soft"], p, convention="STABLE_CODE")
    assert io.load_saved(p).convention == get_convention("STABLE_CODE")
    assert io.load_saved(p).convention.surrogate == "triangle"
    rewrite_npz(p, lambda m: m.update(version=4))
    old = io.load_saved(p).convention
    assert old.surrogate == "sigmoid" and old.name == "STABLE_CODE"
    assert old.dlif_factor == "input"  # the rest as written
