"""Saving/loading, ANN→SNN conversion, the ReLU ANN and the training loops at their corners:
property tests whose strategies aim where ``tests/test_io.py``, ``test_convert.py``,
``test_ann.py`` and ``test_train.py`` do not go.

* io: every neuron kind with parameters at their bounds (λ = 0 and 1, θ = 5e-324, -0.0),
  float16/32/64 arrays with subnormals, -0.0 and the largest finite values, biases and DLIF
  factors present or absent, every convention, JSON metadata of every kind, unicode file names up
  to the file-system limit, bytes paths, a missing directory, overwriting; a write that the OS
  stops half-way (RLIMIT_FSIZE) or that cannot be renamed; files whose description was tampered
  with or whose data were damaged.
* convert: dyadic networks where the IF counts are known exactly (ties m == θ included, under
  ``>=`` and ``>``), layers silent on the calibration set, negative weights only, one sample,
  percentile 100 (and near 0), weights and inputs scaled by 2^k, float32 ANNs.
* ann: pre-activations exactly 0 (the ReLU's derivative there), no bias by default, empty
  layers and batches.
* train: batch sizes 1, n and beyond n, one sample (fit_ann and fit_snn), learning rate 0 from
  a schedule, a schedule returning NaN or a negative rate, the cosine schedule's first and last
  steps, AdamW's bias correction, SGD momentum, seeding.

Oracles (each can fail): bit-for-bit equality after a round trip (dtypes, signs of zero, the
JSON types of metadata); rational arithmetic for dyadic IF counts; an O(1/T) sandwich of the
second layer's rate derived below for IF neurons with reset by subtraction; exact invariance of
Eq. 14 under scaling by powers of two; PyTorch's ReLU backward on dyadic values (all sums exact);
a hand-written SGD/momentum recursion replaying the loop's permutations bit for bit; the closed
forms of the cosine schedule and of Adam's bias-corrected step.
"""

import math
import os
import subprocess
import sys
import tempfile
from fractions import Fraction

import numpy as np
import pytest
from conftest import RTOL_HAND
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference.helpers import example_count, rewrite_npz

from evsnn import io
from evsnn.ann import ANN, accuracy, backward, forward, loss_and_grad
from evsnn.clock import Dense, Network, simulate
from evsnn.conventions import _CHOICES, DEFAULT, PRESETS, Convention
from evsnn.convert import activation_scales, convert
from evsnn.encoders import current
from evsnn.params import DLIF, IF, LIF, Readout, TraceLIF
from evsnn.train import SGD, AdamW, CosineSchedule, fit_ann, snn_accuracy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# =============================================================================================
# io
# =============================================================================================
def _bits(x):
    """A float (or a nested JSON value) in a form where -0.0 != 0.0, 1 != 1.0 != True."""
    if isinstance(x, float):
        return ("float", x.hex())
    if isinstance(x, dict):
        return ("dict", sorted((k, _bits(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [_bits(v) for v in x])
    return (type(x).__name__, x)


def _same_array(a, b):
    assert (a is None) == (b is None)
    if a is not None:
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def _same_model(a, b):
    assert type(a) is type(b)
    if isinstance(a, ANN):
        assert len(a.weights) == len(b.weights)
        for u, v in zip(a.weights, b.weights):
            _same_array(u, v)
        for u, v in zip(a.biases, b.biases):
            _same_array(u, v)
        return
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers):
        assert type(la.neuron) is type(lb.neuron)
        assert _bits(vars(la.neuron)) == _bits(vars(lb.neuron))
        for name in ("weight", "bias", "dlif_factors"):
            _same_array(getattr(la, name), getattr(lb, name))


FLOAT_DTYPES = [np.float16, np.float32, np.float64]
WIDTH = {np.float16: 16, np.float32: 32, np.float64: 64}


@st.composite
def float_arrays(draw, shape):
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    # subnormals, -0.0 and the largest finite value of the dtype are all drawn
    return draw(hnp.arrays(dtype, shape, elements=st.floats(
        width=WIDTH[dtype], allow_nan=False, allow_infinity=False)))


ANY_FLOAT = st.floats(allow_nan=False, allow_infinity=False)
UNIT = st.one_of(st.sampled_from([0.0, 1.0, 5e-324, 1 - 2**-53]), st.floats(0, 1))
POSITIVE = st.one_of(st.sampled_from([5e-324, 1.7976931348623157e308, 1.0]),
                     st.floats(0, allow_infinity=False, exclude_min=True))


@st.composite
def neurons(draw, last):
    kinds = ["LIF", "IF", "TraceLIF", "DLIF"] + (["Readout"] if last else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "Readout":
        return Readout(lam=draw(UNIT), v_init=draw(ANY_FLOAT))
    if kind == "IF":
        return IF(theta=draw(POSITIVE), v_init=draw(ANY_FLOAT))
    if kind == "TraceLIF":
        tau_m, tau_s = draw(st.floats(1e-3, 1e3)), draw(st.floats(1e-3, 1e3))
        dt = min(tau_m, tau_s) * draw(st.floats(1e-3, 1.0))
        return TraceLIF(dt_ms=dt, tau_mem_ms=tau_m, tau_syn_ms=tau_s, theta=draw(POSITIVE),
                        u0=draw(ANY_FLOAT), output=draw(st.sampled_from(["spike", "trace"])),
                        v_init=draw(ANY_FLOAT))
    cls = LIF if kind == "LIF" else DLIF
    return cls(lam=draw(UNIT), theta=draw(POSITIVE), reset=draw(st.sampled_from(["hard", "soft"])),
               v_rest=draw(ANY_FLOAT), v_init=draw(ANY_FLOAT))


@st.composite
def networks(draw):
    sizes = draw(st.lists(st.integers(1, 3), min_size=2, max_size=4))
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        neuron = draw(neurons(last=i == len(sizes) - 2))
        bias = draw(st.none() | float_arrays((n_out,)))
        factors = draw(float_arrays((draw(st.integers(1, 4)),))) if isinstance(neuron, DLIF) \
            else None
        layers.append(Dense(draw(float_arrays((n_out, n_in))), neuron, bias=bias,
                            dlif_factors=factors))
    return Network(tuple(layers))


@st.composite
def anns(draw):
    sizes = draw(st.lists(st.integers(1, 3), min_size=2, max_size=4))
    weights = [draw(float_arrays((o, i))) for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [draw(st.none() | float_arrays((o,))) for o in sizes[1:]]
    return ANN(weights, draw(st.sampled_from([None, biases])))


@st.composite
def conventions(draw):
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return None
    if choice == 1:
        return draw(st.sampled_from(sorted(PRESETS)))
    fields = {k: draw(st.sampled_from(v)) for k, v in _CHOICES.items()}
    return Convention(name=draw(st.text(min_size=1, max_size=8)), **fields)


JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | ANY_FLOAT
                | st.text(max_size=6))
METADATA = st.dictionaries(
    st.text(max_size=6),
    st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=8),
    max_size=4)
# file-name characters of 1 to 4 UTF-8 bytes, spaces and dots included; no "/" and no NUL
NAME_CHARS = st.sampled_from(list("ab .-_~'") + ["é", "ß", "日本", "😀", "\u200b", "ñ"])


@st.composite
def file_names(draw):
    if draw(st.booleans()):  # up to the 255-byte limit of a Linux file name
        char = draw(st.sampled_from(["a", "é", "日", "😀"]))
        return char * draw(st.integers(1, 255 // len(char.encode())))
    name = "".join(draw(st.lists(NAME_CHARS, min_size=1, max_size=70)))
    assume(name not in (".", "..") and len(name.encode()) <= 255)  # a valid Linux file name
    return name


@settings(max_examples=example_count(60))
@given(first=st.one_of(networks(), anns()), second=st.one_of(networks(), anns()),
       convention=conventions(), metadata=METADATA, directory=file_names(), name=file_names())
def test_round_trip_is_bit_for_bit_and_a_save_replaces_the_file(first, second, convention,
                                                                  metadata, directory, name):
    with tempfile.TemporaryDirectory() as root:
        folder = os.path.join(root, directory)
        os.mkdir(folder)
        path = os.path.join(folder, name)
        assert io.save(first, path) == path
        _same_model(io.load(path), first)
        # overwriting: the second model (and its description) replaces the first, nothing else
        # is left in the directory
        io.save(second, path, convention=convention, metadata=metadata)
        saved = io.load_saved(path)
        _same_model(saved.model, second)
        expected = None if convention is None else (
            PRESETS[convention] if isinstance(convention, str) else convention)
        assert saved.convention == expected
        assert _bits(saved.metadata) == _bits(metadata)
        assert os.listdir(folder) == [name]


def test_a_file_name_at_the_file_system_limit_can_be_saved(tmp_path):
    # the temporary file beside it was named "." + name + "." + 32 hex digits + ".tmp", 38 bytes
    # longer than the name: a valid 224-byte name failed with "File name too long"
    name = "é" * 110 + ".npz"
    p = tmp_path / name
    io.save(ANN([np.eye(2)]), p)
    np.testing.assert_array_equal(io.load(p).weights[0], np.eye(2))
    assert os.listdir(tmp_path) == [name]


def test_a_missing_directory_is_named_and_bytes_paths_are_taken(tmp_path):
    # the error named the hidden temporary file ('.../nodir/.m.npz.<hex>.tmp'), a path the
    # caller never passed; a bytes path failed with "Can't mix strings and bytes"
    missing = tmp_path / "nodir" / "m.npz"
    with pytest.raises(FileNotFoundError, match=r"cannot write '.*m.npz': the directory "
                                                r"'.*nodir' does not exist; create it first"):
        io.save(ANN([np.eye(2)]), missing)
    p = os.fsencode(tmp_path / "é.npz")
    assert io.save(ANN([np.eye(2)]), p) == str(tmp_path / "é.npz")
    np.testing.assert_array_equal(io.load(p).weights[0], np.eye(2))
    assert os.listdir(tmp_path) == ["é.npz"]


def test_metadata_keys_that_json_would_change_are_refused(tmp_path):
    # json.dumps turns the keys 1, 0.5, True and None into "1", "0.5", "true" and "null": the
    # loaded metadata would not be the one saved (metadata[1] a KeyError after loading)
    ann = ANN([np.eye(2)])
    for meta, key in [({1: "a"}, "1"), ({"acc": {0.5: 0.9}}, "0.5"), ({"x": [{True: 1}]}, "True"),
                      ({None: 0}, "None")]:
        with pytest.raises(TypeError, match=rf"metadata keys must be strings, got {key} "):
            io.save(ann, tmp_path / "m.npz", metadata=meta)
    assert os.listdir(tmp_path) == []


_FSIZE_CHILD = """
import resource, signal, sys
import numpy as np
from evsnn import io
from evsnn.ann import ANN
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), int(sys.argv[2])))
try:
    io.save(ANN([np.ones((200, 200))]), sys.argv[1], metadata={"run": "second"})
except OSError as exc:
    print("refused", exc.errno)
"""


@pytest.mark.parametrize("limit", [0, 100, 30_000, 300_000])
def test_a_write_the_os_stops_half_way_leaves_the_old_file_and_nothing_else(tmp_path, limit):
    # a real disk-full condition, not a patched savez: the child process may write at most
    # ``limit`` bytes per file (the new archive needs ~320 kB); the old file must survive intact
    p = tmp_path / "m.npz"
    io.save(ANN([np.eye(3)]), p, metadata={"run": "first"})
    before = p.read_bytes()
    out = subprocess.run([sys.executable, "-c", _FSIZE_CHILD, str(p), str(limit)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "refused 27", out.stderr  # EFBIG
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]
    assert io.load_saved(p).metadata == {"run": "first"}


def test_a_write_that_cannot_be_renamed_leaves_no_temporary(tmp_path):
    # the archive is complete but os.replace fails (the target is a non-empty directory)
    target = tmp_path / "m.npz"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(OSError):
        io.save(ANN([np.eye(2)]), target)
    assert sorted(os.listdir(tmp_path)) == ["m.npz"] and os.listdir(target) == ["keep"]


def _set_layer(**kw):
    return lambda m: m["layers"][0].update(**kw)


def _set_neuron(**kw):
    return lambda m: m["layers"][0]["neuron"].update(**kw)


TAMPERED = [
    # (model, mutate the description, replace arrays, message)
    ("net", _set_layer(shape=5), None, r"layer 0: the shape 5 is not a list of two"),
    ("net", _set_layer(shape=None), None, r"layer 0: the shape None is not a list of two"),
    ("net", _set_layer(shape=[2.0, 3.0]), None, r"layer 0: the shape \[2.0, 3.0\] is not"),
    ("net", _set_layer(shape=[True, 3]), None, r"layer 0: the shape \[True, 3\] is not"),
    ("ann", _set_layer(shape=[]), {"weight_0": np.array(1.0)}, r"layer 0: the shape \[\] is"),
    ("net", _set_layer(shape=[]), {"weight_0": np.array(1.0)}, r"layer 0: the shape \[\] is"),
    ("net", _set_layer(bias="no"), None, r"layer 0: 'bias' must be true or false, got 'no'"),
    ("net", _set_layer(dlif_factors=1), None, r"layer 0: 'dlif_factors' must be true or false"),
    ("net", _set_neuron(params=None), None, r"layer 0: the neuron parameters None are not an "
                                            r"object"),
    ("net", _set_neuron(params=[1]), None, r"layer 0: the neuron parameters \[1\] are not"),
    ("net", _set_neuron(kind=["LIF"]), None, r"layer 0: unknown neuron kind \['LIF'\]"),
    ("net", lambda m: m.update(version=True), None, "format version True is not supported"),
    ("net", lambda m: m.update(version=2.0), None, "format version 2.0 is not supported"),
    ("net", None, {"weight_0": np.array([[1, 2, 3], [4, 5, 6]], dtype=object)},
     r"the entry 'weight_0' cannot be read \(.*\); the file is damaged, or holds an object array"),
]


@pytest.mark.parametrize("model,mutate,arrays,message", TAMPERED)
def test_a_tampered_description_is_refused_naming_the_problem(tmp_path, model, mutate, arrays,
                                                              message):
    # each of these crashed with a bare TypeError/IndexError/ValueError of Python or NumPy, or
    # (shape None, version True/2.0, bias "no") was silently accepted
    p = tmp_path / "m.npz"
    w = np.ones((2, 3))
    io.save(Network((Dense(w, LIF(), bias=np.ones(2)),)) if model == "net"
            else ANN([w], [np.ones(2)]), p)
    rewrite_npz(p, mutate, None if arrays is None else (lambda stored: stored.update(arrays)))
    with pytest.raises(ValueError, match=message) as info:
        io.load(p)
    assert str(p) in str(info.value)  # the message names the file


def test_a_damaged_entry_is_refused_naming_it(tmp_path):
    # a flipped byte in an array's data: zipfile's BadZipFile (not a ValueError, no file name)
    # escaped from load, against its documented contract
    p = tmp_path / "m.npz"
    io.save(ANN([np.arange(600.0).reshape(20, 30)]), p)
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # inside weight_0's 4.8 kB of data
    p.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"m.npz: the entry 'weight_0' cannot be read \(Bad "
                                         r"CRC-32 .*\); the file is damaged"):
        io.load(p)


def test_an_empty_file_and_a_damaged_zip_header_are_refused_naming_the_file(tmp_path):
    # review: an empty file raised a bare EOFError, a damaged "version needed to extract" byte
    # of the central directory a bare NotImplementedError ('zip file version 21.0')
    p = tmp_path / "m.npz"
    p.write_bytes(b"")
    with pytest.raises(ValueError, match=r"m.npz: not an evsnn model file \(not a readable "
                                         r"\.npz archive: No data left in file\)"):
        io.load(p)
    io.save(ANN([np.eye(2)]), p)
    raw = bytearray(p.read_bytes())
    raw[raw.rfind(b"PK\x01\x02") + 6] ^= 0xFF  # the last entry's "version needed" byte
    p.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"m.npz: .*zip file version"):
        io.load(p)


# =============================================================================================
# convert
# =============================================================================================
DYADIC_W = st.sampled_from([-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0])
DYADIC_X = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])
SPIKE_TESTS = [DEFAULT, DEFAULT.with_(spike_test=">")]


@st.composite
def dyadic_anns(draw, max_layers=3):
    sizes = draw(st.lists(st.integers(1, 3), min_size=2, max_size=max_layers + 1))
    negative_only = draw(st.booleans())
    weights = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = np.array(draw(st.lists(DYADIC_W, min_size=n_in * n_out, max_size=n_in * n_out)))
        weights.append(-np.abs(w).reshape(n_out, n_in) if negative_only
                       else w.reshape(n_out, n_in))
    biases = None
    if draw(st.booleans()):
        biases = [np.array(draw(st.lists(DYADIC_W, min_size=n, max_size=n))) for n in sizes[1:]]
    ann = ANN(weights, biases)
    b = draw(st.integers(1, 4))
    x = np.array(draw(st.lists(DYADIC_X, min_size=b * sizes[0], max_size=b * sizes[0])))
    return ann, x.reshape(b, sizes[0])


def _if_count(total, theta, strict):
    """Spikes of an IF neuron with reset by subtraction after a constant input whose T-step
    sum is ``total`` (0 <= input <= θ, v(0) = 0), exactly: a spike at step t whenever the
    running sum t·I crosses the next multiple kθ (``>=``: floor(total/θ); ``>``: the multiples
    strictly below)."""
    if total <= 0:
        return 0
    q = Fraction(total) / Fraction(theta)
    return math.ceil(q) - 1 if strict else math.floor(q)


@settings(max_examples=example_count(60))
@given(data=dyadic_anns(), T=st.integers(1, 64), conv=st.sampled_from(SPIKE_TESTS))
def test_first_layer_counts_are_exactly_the_normalised_relu(data, T, conv):
    # θ = max^(1) makes Eq. 14's first factor θ·1/max^(1) exactly 1, so every current and
    # potential is dyadic and exact: the count is floor(T a / max^(1)) (">=", ties m == θ fire)
    # or the multiples of θ strictly below T a (">") for each ReLU activation a — including
    # the most active unit, a = max^(1), which fires T times under ">=" and T - 1 under ">"
    ann, x = data
    theta = float(activation_scales(ann, x)[0])
    c = convert(ann, x, theta=theta)
    assert c.factors[0] == 1.0
    res = simulate(c.network, current(x, T), convention=conv, record=True)
    counts = res.layers[0].spikes.sum(axis=0)
    a = forward(ann, x).pre[0]
    strict = conv.spike_test == ">"
    expect = [[_if_count(T * Fraction(float(v)), theta, strict) for v in row] for row in a]
    np.testing.assert_array_equal(counts, expect)


@settings(max_examples=example_count(40))
@given(data=dyadic_anns())
def test_layers_silent_on_the_calibration_set(data):
    # a layer with no positive activation (max^(l) = 0) gets scale 1 (no division by zero);
    # its IF neurons never fire on the calibration images, exactly as the ReLUs stay at 0
    ann, x = data
    c = convert(ann, x, theta=0.5)
    fwd = forward(ann, x)
    assert np.all(np.isfinite(c.factors))
    res = simulate(c.network, current(x, 16), record=True)
    for l, (z, w, b) in enumerate(zip(fwd.pre, ann.weights, ann.biases)):
        assert c.scales[l + 1] == (z.max() if np.any(z > 0) else 1.0)
        # the first layer's current is constant (a ReLU at 0 means it is <= 0); deeper layers
        # see spikes in time, whose order can charge a neuron the rates would not, unless no
        # weight or bias is positive
        if not np.any(z > 0) and (l == 0 or (np.all(w <= 0) and (b is None or np.all(b <= 0)))):
            assert not np.any(res.layers[l].spikes), l


# Float64 rounding in the simulation (≤ 512 steps of currents ≤ θ·(1 + Σ|W|)) moves a potential
# by ~1e-12 θ; it can flip a spike only where the exact potential is within that of θ, where the
# bounds below are met with equality. 1e-9 counts covers it with margin.
COUNT_SLACK = 1e-9


@settings(max_examples=example_count(40))
@given(seed=st.integers(0, 2**32 - 1), hidden=st.integers(1, 3), n_out=st.integers(1, 3),
       bias=st.booleans(), T=st.sampled_from([1, 7, 64, 512]),
       theta=st.sampled_from([1.0, 0.3, 2.5]), conv=st.sampled_from(SPIKE_TESTS))
def test_second_layer_rate_is_within_one_over_T_of_the_normalised_relu(seed, hidden, n_out, bias,
                                                                        T, theta, conv):
    # Hand derivation (IF, reset by subtraction, v(0) = 0, one spike per step at most). With S_k
    # the input summed over the first k steps and c the count after T steps:
    #   the last spike left v >= 0, so c <= max_k S_k / θ;
    #   if every step's input is <= θ, v stays below θ (at most θ under ">"), so c >= S_T/θ - 1.
    # Hidden counts lie in [k r - 1, k r] (r = a^(1)/max^(1), first layer exact up to rounding),
    # so with d = θ a^(2)/max^(2) (Eq. 14) and the scaled weights f·W:
    #   S_k <= k d + f Σ_{W<0} |W|,   S_T >= T d - f Σ_{W>0} W,
    # hence c/T -> ReLU(a^(2))/max^(2) at rate 1/T — the conversion's claim, with its constant.
    rng = np.random.default_rng(seed)
    n_in = 3
    ann = ANN([rng.standard_normal((hidden, n_in)), rng.standard_normal((n_out, hidden))],
              [rng.standard_normal(hidden) * 0.3, rng.standard_normal(n_out) * 0.3]
              if bias else None)
    x = rng.random((4, n_in))
    c = convert(ann, x, theta=theta)
    res = simulate(c.network, current(x, T), convention=conv, record=True)
    counts = res.layers[1].spikes.sum(axis=0)
    d = theta * forward(ann, x).pre[1] / c.scales[2]
    fw = c.network.layers[1].weight
    b = np.zeros(n_out) if c.network.layers[1].bias is None else c.network.layers[1].bias
    neg, pos = np.abs(np.minimum(fw, 0)).sum(axis=1), np.maximum(fw, 0).sum(axis=1)
    assert np.all(counts * theta <= T * np.maximum(d, 0) + neg + COUNT_SLACK * theta)
    small = pos + np.maximum(b, 0) <= theta  # every step's input <= θ
    lower = (T * d - pos) / theta - 1 - COUNT_SLACK
    assert np.all(counts[:, small] >= lower[:, small])


@settings(max_examples=example_count(40))
@given(seed=st.integers(0, 2**32 - 1), k=st.lists(st.integers(-20, 20), min_size=3, max_size=3),
       kx=st.integers(-20, 20), percentile=st.sampled_from([100.0, 99.9, 50.0, 1e-9]),
       bias=st.booleans())
def test_conversion_is_invariant_to_power_of_two_scalings(seed, k, kx, percentile, bias):
    # ReLU is positively homogeneous and Eq. 14 divides each layer by its own maximum, so
    # scaling layer l's weights and bias by 2^k_l (and the images with input_max by 2^kx) leaves
    # the converted SNN unchanged; powers of two scale every rounding alike: bit for bit
    rng = np.random.default_rng(seed)
    sizes = [4, 5, 3, 2]
    ws = [rng.standard_normal((o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.standard_normal(o) * 0.2 for o in sizes[1:]] if bias else None
    x = rng.random((6, 4))
    # a silent layer gets scale 1 whatever the scaling (test_layers_silent_on_the_calibration_set)
    assume(all(np.any(z > 0) for z in forward(ANN(ws, bs), x).pre))
    ref = convert(ANN(ws, bs), x, percentile=percentile, theta=0.7)
    sc = np.cumprod([2.0**kl for kl in k]) * 2.0**kx  # layer l's activations scale by Π 2^k
    # a bias enters layer l's pre-activation beside the scaled input: it scales by the product
    scaled = ANN([w * 2.0**kl for w, kl in zip(ws, k)],
                 None if bs is None else [b * s for b, s in zip(bs, sc)])
    got = convert(scaled, x * 2.0**kx, percentile=percentile, theta=0.7, input_max=2.0**kx)
    np.testing.assert_array_equal(got.scales, ref.scales * np.concatenate([[2.0**kx], sc]))
    for la, lb in zip(ref.network.layers, got.network.layers):
        _same_array(la.weight, lb.weight)
        _same_array(la.bias, lb.bias)


@settings(max_examples=example_count(40))
@given(data=dyadic_anns(max_layers=2), p=st.floats(1e-9, 100.0))
def test_percentile_at_its_bounds(data, p):
    ann, x = data
    full = activation_scales(ann, x)
    for hundred in (100, 100.0, np.float32(100), np.int64(100)):
        np.testing.assert_array_equal(activation_scales(ann, x, percentile=hundred), full)
    part = activation_scales(ann, x, percentile=p)
    for z, s, m in zip(forward(ann, x).pre, part, full):
        pos = z[z > 0]
        if pos.size == 0:
            assert s == m == 1.0
        else:
            assert pos.min() <= s <= m
            if np.all(pos == pos[0]):  # one positive value (e.g. one sample, one unit)
                assert s == pos[0]


def test_one_calibration_sample_with_a_single_positive_activation():
    ann = ANN([np.array([[1.0, -1.0], [-1.0, -1.0]]), np.array([[0.5, 3.0]])])
    x = np.array([[0.75, 0.25]])  # hidden: [0.5, -1]; logit 0.25
    for p in (100.0, 99.9, 1.0, 1e-9):
        np.testing.assert_array_equal(convert(ann, x, percentile=p).scales, [1.0, 0.5, 0.25])


@pytest.mark.parametrize("bias", [False, True])
def test_a_float32_ann_converts_to_a_float32_snn(bias):
    # DESIGN "never silently change dtype": the weights came out float64 (NumPy 2 promotes
    # float32 · float64 scalar); now rounded once from the float64 product
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((3, 2)).astype(np.float32), rng.standard_normal((2, 3))]
    bs = [rng.standard_normal(3).astype(np.float32), None] if bias else None
    ann = ANN(ws, bs)
    c = convert(ann, rng.random((5, 2)))
    assert [l.weight.dtype for l in c.network.layers] == [np.float32, np.float64]
    for l, w, f in zip(c.network.layers, ws, c.factors):
        np.testing.assert_array_equal(l.weight, (w.astype(np.float64) * f).astype(w.dtype))
    if bias:
        assert c.network.layers[0].bias.dtype == np.float32
        np.testing.assert_array_equal(
            c.network.layers[0].bias,
            (bs[0].astype(np.float64) * (1.0 / c.scales[1])).astype(np.float32))


# =============================================================================================
# ann
# =============================================================================================
@settings(max_examples=example_count(50))
@given(data=dyadic_anns(), g_seed=st.integers(0, 2**32 - 1))
def test_relu_derivative_at_exactly_zero_is_zero_like_torch(data, g_seed):
    # dyadic weights and inputs: many pre-activations are exactly 0, and every product and sum
    # is exact in any order, so evsnn's backward and torch's autograd (whose ReLU backward is
    # grad · [z > 0], i.e. 0 at 0, as backward's docstring says) must agree bit for bit
    torch = pytest.importorskip("torch")
    ann, x = data
    fwd = forward(ann, x)
    g = np.random.default_rng(g_seed).integers(-4, 5, fwd.logits.shape) / 4.0
    ours = backward(ann, fwd, g)
    tw = [torch.tensor(w, requires_grad=True) for w in ann.weights]
    tb = [None if b is None else torch.tensor(b, requires_grad=True) for b in ann.biases]
    tx = torch.tensor(x, requires_grad=True)
    h = tx
    for i, (w, b) in enumerate(zip(tw, tb)):
        h = h @ w.T + (0 if b is None else b)
        if i < len(tw) - 1:
            h = torch.relu(h)
    h.backward(torch.tensor(g))
    np.testing.assert_array_equal(ours.input, tx.grad.numpy())
    for a, t in zip(ours.weights, tw):
        np.testing.assert_array_equal(a, t.grad.numpy())
    for a, t in zip(ours.biases, tb):
        assert (a is None) == (t is None)
        if a is not None:
            np.testing.assert_array_equal(a, t.grad.numpy())


def test_a_unit_at_exactly_zero_passes_no_gradient():
    # z = 0 on every sample: the subgradient 0 (backward's documented choice) zeroes its row
    ann = ANN([np.array([[1.0, -1.0], [1.0, 1.0]]), np.array([[1.0, 1.0]])])
    x = np.array([[0.5, 0.5], [0.25, 0.25]])
    assert np.all(forward(ann, x).pre[0][:, 0] == 0)
    g = backward(ann, forward(ann, x), np.ones((2, 1)))
    np.testing.assert_array_equal(g.weights[0][0], [0.0, 0.0])
    np.testing.assert_array_equal(g.weights[1], [[0.0, 1.5]])


def test_no_bias_is_the_default_everywhere():
    ann = ANN([np.eye(2), np.ones((1, 2))])
    assert ann.biases == (None, None) and not ann.has_bias
    assert not ANN.mlp([2, 3, 1], rng=0).has_bias
    r = loss_and_grad(ANN.mlp([2, 3, 2], rng=0), np.ones((1, 2)), np.array([1]))
    assert r.grads.biases == [None, None]
    assert convert(ann, np.ones((1, 2))).network.layers[0].bias is None


@pytest.mark.parametrize("shape", [(0, 3), (2, 0), (0, 0)])
def test_an_empty_layer_is_refused(shape):
    # Dense refused an empty weight, ANN built it (sizes (3, 0)); its logits had no classes
    with pytest.raises(ValueError, match=rf"weights\[0\] has shape \({shape[0]}, {shape[1]}\); "
                                         r"every axis \(n_out, n_in\) needs at least one entry"):
        ANN([np.zeros(shape)])
    with pytest.raises(ValueError, match=r"weights\[1\] has shape \(0, 2\)"):
        ANN([np.zeros((2, 3)), np.zeros((0, 2))])


def test_an_empty_batch_is_refused_by_the_loss_and_the_accuracy():
    # the mean over no samples was NaN with a RuntimeWarning (snn_accuracy: ZeroDivisionError)
    ann = ANN([np.ones((2, 3))])
    x, y = np.zeros((0, 3)), np.zeros(0, dtype=int)
    with pytest.raises(ValueError, match=r"x holds no samples \(shape \(0, 3\)\); the loss is a "
                                         "mean over the batch"):
        loss_and_grad(ann, x, y)
    with pytest.raises(ValueError, match=r"x holds no samples \(shape \(0, 3\)\); an accuracy is a "
                                         "mean over the samples: pass at least one sample"):
        accuracy(ann, x, y)
    assert forward(ann, x).logits.shape == (0, 2)  # a forward pass of no samples is fine
    net = Network((Dense(np.ones((2, 3)), LIF()),))
    with pytest.raises(ValueError, match=r"x holds no samples \(shape \(0, 3\)\); an accuracy is a "
                                         "mean over the samples: pass at least one sample"):
        snn_accuracy(net, x, y, T=3)


# =============================================================================================
# train
# =============================================================================================
def _hand_fit(ann, x, y, *, seed, epochs, batch_size, lr, momentum=0.0, weight_decay=0.0,
              nesterov=False):
    """fit_ann with SGD written out: the loop's permutations replayed from the seed, and
    torch.optim.SGD's update (docstring of evsnn.train.SGD) as literal array expressions."""
    rng = np.random.default_rng(seed)
    ws = [np.array(w) for w in ann.weights]
    bs = [None if b is None else np.array(b) for b in ann.biases]
    bufs, step = None, 0
    losses, accs = [], []
    n = x.shape[0]
    for _ in range(epochs):
        order = rng.permutation(n)
        tot, correct = 0.0, 0.0
        for k in range(0, n, batch_size):
            idx = order[k : k + batch_size]
            model = ANN(ws, bs if ann.has_bias else None)
            r = loss_and_grad(model, x[idx], y[idx])
            params = ws + [b for b in bs if b is not None]
            grads = r.grads.weights + [g for g in r.grads.biases if g is not None]
            grads = [g.astype(p.dtype) for p, g in zip(params, grads)]
            new, new_bufs = [], []
            for i, (p, g) in enumerate(zip(params, grads)):
                if weight_decay:
                    g = g + weight_decay * p
                if momentum:
                    buf = g if step == 0 else momentum * bufs[i] + g
                    new_bufs.append(buf)
                    g = g + momentum * buf if nesterov else buf
                new.append(p - lr * g)
            bufs = new_bufs
            ws = new[: len(ws)]
            it = iter(new[len(ws):])
            bs = [None if b is None else next(it) for b in bs]
            step += 1
            tot += r.loss * len(idx)
            correct += int(r.correct.sum())
        losses.append(tot / n)
        accs.append(correct / n)
    return ws, bs, np.array(losses), np.array(accs)


@settings(max_examples=example_count(25))
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 7), extra=st.integers(-6, 4),
       epochs=st.integers(1, 3), bias=st.booleans(),
       sgd=st.sampled_from([dict(), dict(momentum=0.9), dict(momentum=0.5, weight_decay=0.1),
                            dict(momentum=0.9, nesterov=True, weight_decay=1e-3)]),
       x32=st.booleans())
def test_fit_ann_replays_the_hand_recursion_bit_for_bit(seed, n, extra, epochs, bias, sgd, x32):
    # batch sizes 1 .. n + 4 (beyond the data set: one batch), one-sample data sets, float32
    # images (float32 gradients, float64 weights); everything must match bit for bit
    batch_size = max(1, n + extra)
    rng = np.random.default_rng(seed)
    ann = ANN.mlp([3, 4, 2], bias=bias, rng=rng)
    if bias:
        ann = ann.with_weights(ann.weights, [rng.standard_normal(4) * 0.3,
                                             rng.standard_normal(2) * 0.3])
    x = rng.random((n, 3)).astype(np.float32 if x32 else np.float64)
    y = rng.integers(0, 2, n)
    r = fit_ann(ann, x, y, rng=seed + 1, epochs=epochs, batch_size=batch_size,
                optimizer=SGD(0.3, **sgd))
    ws, bs, losses, accs = _hand_fit(ann, x, y, seed=seed + 1, epochs=epochs,
                                     batch_size=batch_size, lr=0.3, **sgd)
    for a, b in zip(r.model.weights, ws):
        _same_array(a, b)
    for a, b in zip(r.model.biases, bs if bias else [None, None]):
        _same_array(a, b)
    _same_array(r.loss, losses)
    _same_array(r.train_accuracy, accs)


@settings(max_examples=example_count(15))
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3), extra=st.integers(0, 3),
       T=st.integers(1, 4))
def test_fit_snn_with_one_batch_is_one_gradient_step_bit_for_bit(seed, n, extra, T):
    # a batch size of n or more (one sample included): one SGD step on the batch in the order of
    # the seed's permutation, for weights, the readout's bias and the DLIF factors alike
    from evsnn.grad import loss_and_grad as snn_loss_and_grad
    from evsnn.train import fit_snn

    rng = np.random.default_rng(seed)
    net = Network((Dense(rng.standard_normal((4, 3)) * 2, DLIF(lam=0.9, theta=0.5),
                         dlif_factors=rng.uniform(0.5, 1.5, T)),
                   Dense(rng.standard_normal((2, 4)), Readout(), bias=rng.standard_normal(2))))
    x, y = rng.random((n, 3)), rng.integers(0, 2, n)
    r = fit_snn(net, x, y, T=T, rng=seed, decoder="membrane", epochs=1, batch_size=n + extra,
                optimizer=SGD(0.2))
    order = np.random.default_rng(seed).permutation(n)
    g = snn_loss_and_grad(net, x[order], y[order], T=T, encoder="current", decoder="membrane")
    for l0, l1, gw, gb, gf in zip(net.layers, r.model.layers, g.grads.weights, g.grads.biases,
                                  g.grads.dlif_factors):
        _same_array(l1.weight, l0.weight - 0.2 * gw)
        _same_array(l1.bias, None if l0.bias is None else l0.bias - 0.2 * gb)
        _same_array(l1.dlif_factors, None if gf is None else l0.dlif_factors - 0.2 * gf)
    assert r.loss[0] == pytest.approx(g.loss, rel=RTOL_HAND)


def test_seeded_shuffling_depends_on_the_seed_only():
    # the same seed (an int, a SeedSequence or a fresh Generator) gives the same weights bit for
    # bit, whatever NumPy's global random state is; the initial model is left untouched
    rng = np.random.default_rng(11)
    ann = ANN.mlp([4, 6, 3], rng=1)
    x, y = rng.random((13, 4)), rng.integers(0, 3, 13)
    before = [w.copy() for w in ann.weights]
    runs = []
    for seed, global_seed in [(5, 0), (np.random.SeedSequence(5), 1),
                              (np.random.default_rng(5), 2)]:
        np.random.seed(global_seed)
        np.random.random(global_seed)  # move the global stream
        runs.append(fit_ann(ann, x, y, rng=seed, epochs=2, batch_size=4,
                            optimizer=AdamW(1e-2)).model)
    for other in runs[1:]:
        for a, b in zip(runs[0].weights, other.weights):
            _same_array(a, b)
    other = fit_ann(ann, x, y, rng=6, epochs=2, batch_size=4, optimizer=AdamW(1e-2)).model
    assert not np.array_equal(runs[0].weights[0], other.weights[0])
    for w, b in zip(ann.weights, before):
        _same_array(w, b)


@pytest.mark.parametrize("make", [
    lambda s: SGD(s), lambda s: SGD(s, weight_decay=0.5),
    lambda s: SGD(s, momentum=0.9, weight_decay=0.5), lambda s: AdamW(s, weight_decay=0.5),
])
def test_learning_rate_zero_from_a_schedule_leaves_the_weights_unchanged(make):
    # CosineSchedule(final_lr=0) reaches 0 at total_steps and stays there: from then on no
    # update (weight decay included: it is multiplied by the learning rate) changes a weight
    rng = np.random.default_rng(0)
    opt = make(CosineSchedule(0.1, total_steps=2))
    params = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    for _ in range(2):
        opt.step(params, [rng.standard_normal(p.shape) for p in params])
    assert opt.current_lr() == 0.0
    frozen = [p.copy() for p in params]
    for _ in range(3):
        opt.step(params, [rng.standard_normal(p.shape) for p in params])
        for p, f in zip(params, frozen):
            np.testing.assert_array_equal(p, f)


@settings(max_examples=example_count(60))
@given(lr=st.one_of(st.sampled_from([0.1, 0.3, 1e-3, 0.05, 0.7, 3e-4, 0.01]),
                    st.floats(1e-6, 10.0)),
       final=st.one_of(st.sampled_from([0.0, 0.01, 0.001, 1e-5, 0.02]), st.floats(0, 10.0)),
       total=st.integers(1, 1000), warmup=st.integers(0, 50))
def test_cosine_schedule_at_its_first_and_last_steps(lr, final, total, warmup):
    # the closed form gives exactly lr at the end of the warm-up (k = warmup - 1) and at its
    # first cosine step (k = warmup), exactly final_lr from total_steps on; the float
    # evaluation final + (lr - final)·1 missed lr by an ulp (0.01 with final 0.001 gave
    # 0.010000000000000002; lr·3/3 gave 0.1 + 1 ulp)
    assume(warmup < total)
    s = CosineSchedule(lr, total_steps=total, warmup_steps=warmup, final_lr=final)
    assert s(warmup) == lr
    if warmup:
        assert s(warmup - 1) == lr
        assert s(0) == pytest.approx(lr / warmup, rel=RTOL_HAND)
    assert s(total) == final and s(total + 7) == final
    for k in {warmup, (warmup + total) // 2, total - 1}:
        frac = (k - warmup) / (total - warmup)
        closed = final + (lr - final) * (1 + math.cos(math.pi * frac)) / 2
        assert s(k) == pytest.approx(closed, rel=RTOL_HAND, abs=RTOL_HAND * max(lr, final))


def test_cosine_schedule_ends_exactly_at_its_learning_rates():
    # regression: final + (lr - final)·1 gave 0.010000000000000002 for lr 0.01, final 0.001, and
    # the warm-up's lr·3/3 gave 0.10000000000000002 for lr 0.1
    assert CosineSchedule(0.01, total_steps=10, final_lr=0.001)(0) == 0.01
    assert CosineSchedule(0.1, total_steps=10, warmup_steps=3)(2) == 0.1


@pytest.mark.parametrize("schedule,value", [
    (lambda k: -0.1, "-0.1"), (lambda k: float("nan"), "nan"), (lambda k: math.inf, "inf"),
])
def test_a_schedule_returning_a_bad_learning_rate_is_refused(schedule, value):
    # a NaN or negative learning rate from a user's schedule silently made the weights NaN or
    # climbed the loss
    p = [np.zeros(2)]
    for opt in (SGD(schedule), AdamW(schedule)):
        with pytest.raises(ValueError, match=rf"lr\(0\)={value} must be finite and >= 0; the "
                                             "learning-rate schedule must return"):
            opt.step(p, [np.ones(2)])
        np.testing.assert_array_equal(p[0], [0.0, 0.0])
    assert SGD(lambda k: 0.0).current_lr() == 0.0


@settings(max_examples=example_count(40))
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 6), wd=st.sampled_from([0.0, 0.01, 0.3]),
       betas=st.sampled_from([(0.9, 0.999), (0.0, 0.0), (0.5, 0.9), (0.99, 0.9999)]),
       zero=st.booleans())
def test_adamw_with_a_constant_gradient_takes_its_bias_corrected_closed_form(seed, k, wd, betas,
                                                                             zero):
    # a gradient g held for k steps: m_k = (1 - β1^k) g and v_k = (1 - β2^k) g², so the bias
    # corrections give m̂ = g, v̂ = g² at every step (the first one included) and each step is
    # p ← p (1 - lr·wd) - lr g / (|g| + ε) (hand derivation). With g = 0 exactly the update is
    # the decay alone, bit for bit.
    rng = np.random.default_rng(seed)
    lr, eps = 0.01, 1e-8
    p0 = rng.standard_normal(5)
    g = np.zeros(5) if zero else rng.standard_normal(5) * 10.0 ** rng.integers(-6, 4, 5)
    opt = AdamW(lr, betas=betas, eps=eps, weight_decay=wd)
    p = [p0.copy()]
    for _ in range(k):
        opt.step(p, [g])
    expect = p0.copy()
    for _ in range(k):
        expect = expect * (1 - lr * wd) - lr * g / (np.abs(g) + eps)
    if zero:
        decayed = p0.copy()
        for _ in range(k):
            decayed *= 1 - lr * wd
        _same_array(p[0], decayed)
    np.testing.assert_allclose(p[0], expect, rtol=RTOL_HAND, atol=RTOL_HAND * lr * k)


def test_small_arguments_are_checked_and_named_regression(tmp_path):
    """Review (/tmp/rev_train/f4_minor_args.py): convert(readout='no') built a Readout layer,
    AdamW(betas=3 values) failed to unpack, fit_ann(rng='seed') raised NumPy's message, a bytes
    path broke load_idx, and load_npz(scale=0) divided by zero and blamed the images."""
    import gzip

    from evsnn.data import load_idx, load_npz

    ann = ANN.mlp([4, 5, 3], rng=0)
    x = np.random.default_rng(0).random((8, 4))
    with pytest.raises(TypeError, match=r"^readout must be True or False, got 'no'"):
        convert(ann, x, readout="no")
    assert isinstance(convert(ann, x, readout=np.True_).network.layers[-1].neuron, Readout)
    with pytest.raises(ValueError, match=r"^betas must be a pair \(beta1, beta2\)"):
        AdamW(betas=(0.9, 0.99, 0.9))
    with pytest.raises(TypeError, match=r"^rng must be a seed, SeedSequence"):
        fit_ann(ann, x, np.arange(8) % 3, rng="seed", epochs=1)
    idx = tmp_path / "l.gz"
    with gzip.open(idx, "wb") as fh:
        fh.write(bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2]))
    assert load_idx(os.fsencode(idx)).tolist() == load_idx(idx).tolist() == [1, 2]
    np.savez(tmp_path / "d.npz", x=np.full((2, 2), 255.0), y=np.array([0, 1]))
    for bad in (0, -255, math.nan):
        with pytest.raises(ValueError, match=r"^scale=.* must be finite and > 0"):
            load_npz(tmp_path / "d.npz", scale=bad)
