"""evsnn.io for ConvNetworks (kind "conv_network", format version 4): round trips of random
architectures (every layer type, residual nesting, float32 / float64 arrays) that simulate bit
for bit as the original in inference and training mode, a trained-then-saved network, the
file layout, every validation error of the loader, atomic writes and the version refusal."""

import dataclasses
import json
import os
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference.helpers import example_count, rewrite_npz

from evsnn import io
from evsnn.clock import Dense, Network
from evsnn.clock.conv import (
    LAYER_TYPES, AvgPool2d, BatchNorm2d, Conv2d, ConvNetwork, Dropout, Flatten, InputTrace,
    Linear, MaxPool2d, Neuron, Residual, basic_block, sew_block, simulate_conv,
    update_running_stats,
)
from evsnn.params import DLIF, LIF, Readout, TraceLIF
from evsnn.train import AdamW, fit_snn, snn_accuracy

T = 4
DTYPES = (np.float64, np.float32)


# --------------------------------------------------------------------------- architectures
@st.composite
def conv_networks(draw):
    """A random small ConvNetwork: optional InputTrace, Conv2d (+ BatchNorm2d) + Neuron, an
    optional residual block (basic or SEW, identity or 1x1 shortcut), a pooling layer, an
    optional Dropout, Flatten, Linear and a last neuron layer. Every array's dtype is drawn
    (float64 or float32), every float parameter is an arbitrary double."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def arr(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(draw(st.sampled_from(DTYPES)))

    def maybe_bias(n):
        return arr(n, scale=0.1) if draw(st.booleans()) else None

    def batchnorm(c):
        return BatchNorm2d(arr(c, scale=0.2), rng.uniform(0.5, 2, c).astype(
            draw(st.sampled_from(DTYPES))), weight=1 + arr(c, scale=0.1), bias=arr(c, scale=0.1),
            eps=float(rng.uniform(1e-6, 1e-2)), momentum=float(rng.uniform(0, 1)))

    def neuron(readout=False):
        kinds = ["LIF", "soft", "TraceLIF", "spike_trace", "DLIF"] + (["Readout"] * readout)
        kind = draw(st.sampled_from(kinds))
        lam, theta = float(rng.uniform(0.5, 1)), float(rng.uniform(0.2, 0.8))
        factors = None
        if kind == "LIF":
            rec = LIF(lam=lam, theta=theta, v_init=float(rng.uniform(0, 0.1)))
        elif kind == "soft":
            rec = LIF(lam=lam, theta=theta, reset="soft", v_rest=-float(rng.uniform(0, 0.1)))
        elif kind in ("TraceLIF", "spike_trace"):
            rec = TraceLIF(tau_mem_ms=float(rng.uniform(2, 20)), tau_syn_ms=float(
                rng.uniform(1, 5)), theta=theta, u0=float(rng.uniform(0, 0.1)),
                output="trace" if kind == "TraceLIF" else "spike")
        elif kind == "DLIF":
            rec = DLIF(lam=lam, theta=theta, reset=draw(st.sampled_from(["hard", "soft"])))
            factors = rng.uniform(0.5, 1.5, T + draw(st.integers(0, 2))).astype(
                draw(st.sampled_from(DTYPES)))
        else:
            rec = Readout(lam=lam, v_init=float(rng.uniform(0, 0.1)))
        scale = 1.0 if draw(st.booleans()) else float(rng.uniform(0.5, 2))
        return Neuron(rec, dlif_factors=factors, input_scale=scale)

    c_in, size0 = draw(st.integers(1, 2)), draw(st.integers(4, 6))
    layers = [InputTrace(draw(st.sampled_from([0.25, float(rng.uniform(0.1, 1)), 1.0])))] if (
        draw(st.booleans())) else []
    c = draw(st.sampled_from([2, 4]))
    groups = draw(st.sampled_from([1, c_in]))
    k, stride = draw(st.sampled_from([1, 3])), draw(st.integers(1, 2))
    layers.append(Conv2d(arr(c, c_in // groups, k, k, scale=1.5), stride=stride, padding=k // 2,
                         groups=groups, bias=maybe_bias(c)))
    size = (size0 - 1) // stride + 1
    if draw(st.booleans()):
        layers.append(batchnorm(c))
    layers.append(neuron())
    block = draw(st.sampled_from([None, "standard", "ADD", "AND", "IAND"]))
    if block is not None:
        shortcut = ()
        if draw(st.booleans()):
            shortcut = (Conv2d(arr(c, c, 1, 1), bias=maybe_bias(c)),) + (
                (batchnorm(c),) if draw(st.booleans()) else ()) + (
                (neuron(),) if block != "standard" else ())
        convs = [Conv2d(arr(c, c, 3, 3, scale=0.5), padding=1, bias=maybe_bias(c))
                 for _ in range(2)]
        bns = {f"bn{i}": batchnorm(c) for i in (1, 2) if draw(st.booleans())}
        if block == "standard":
            layers.append(basic_block(*convs, neuron(), downsample=shortcut, **bns))
        else:
            layers.append(sew_block(*convs, neuron(), downsample=shortcut, connection=block,
                                    **bns))
    pool = draw(st.sampled_from([MaxPool2d, AvgPool2d]))
    kp, pad = 2, draw(st.integers(0, 1))
    sp = draw(st.sampled_from([None, 1, (1, 2)]))
    layers.append(pool(kp, stride=sp, padding=pad))
    sh, sw = (kp, kp) if sp is None else ((sp, sp) if isinstance(sp, int) else sp)
    size_h, size_w = (size + 2 * pad - kp) // sh + 1, (size + 2 * pad - kp) // sw + 1
    if draw(st.booleans()):
        layers.append(Dropout(float(rng.uniform(0, 0.6)), shared_over_time=draw(st.booleans())))
    n_out = draw(st.integers(2, 3))
    layers += [Flatten(), Linear(arr(n_out, c * size_h * size_w, scale=0.5),
                                 bias=maybe_bias(n_out)), neuron(readout=True)]
    return ConvNetwork(layers, input_shape=(c_in, size0, size0))


def _same(u, v, where="network"):
    """``u`` and ``v`` hold the same layers, fields, arrays (dtype and bits) and records."""
    assert type(u) is type(v), where
    if isinstance(u, np.ndarray):
        assert u.dtype == v.dtype and u.shape == v.shape, where
        assert v.flags.writeable == u.flags.writeable, where  # loaded layer arrays are frozen
        np.testing.assert_array_equal(u, v, err_msg=where)
    elif isinstance(u, (tuple, list)):
        assert len(u) == len(v), where
        for i, (a, b) in enumerate(zip(u, v)):
            _same(a, b, f"{where}[{i}]")
    elif dataclasses.is_dataclass(u):
        for f in dataclasses.fields(u):
            _same(getattr(u, f.name), getattr(v, f.name), f"{where}.{f.name}")
    else:
        assert u == v and repr(u) == repr(v), where  # floats to the last bit, -0.0 included


def _round_trip(net, **kw):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "m.npz")
        io.save(net, p, **kw)
        return io.load(p)


def _same_runs(a, b):
    assert a.output.dtype == b.output.dtype
    np.testing.assert_array_equal(a.output, b.output)
    assert a.names == b.names
    for ra, rb in zip(a.layers or (), b.layers or ()):
        for name in ("current", "m", "v", "spikes", "trace", "output"):
            u, v = getattr(ra, name), getattr(rb, name)
            assert (u is None) == (v is None)
            if u is not None:
                np.testing.assert_array_equal(u, v)


def _check_round_trip(net, dtype, spikes, seed):
    """``net`` saved and loaded: the same fields, and runs equal to the last bit."""
    back = _round_trip(net)
    _same(net, back)
    assert back.input_shape == net.input_shape and back.output_shape == net.output_shape
    rng = np.random.default_rng(seed)
    shape = (T, 2) + net.input_shape
    x = (rng.random(shape) < 0.4).astype(dtype) if spikes else rng.random(shape).astype(dtype)
    # inference: running statistics, no dropout; every neuron layer's record
    _same_runs(*(simulate_conv(n, x, record=True) for n in (net, back)))
    # training: batch statistics, dropout masks from equally seeded streams, the running update
    a, b = (simulate_conv(n, x, record=True, train=True, rng=np.random.default_rng(seed))
            for n in (net, back))
    _same_runs(a, b)
    assert a.batch_stats.keys() == b.batch_stats.keys()
    for k in a.batch_stats:
        _same(a.batch_stats[k][:2], b.batch_stats[k][:2], k)
    _same(update_running_stats(net, a), update_running_stats(back, b))


@settings(max_examples=example_count(60))
@given(conv_networks(), st.sampled_from(DTYPES), st.booleans(), st.integers(0, 2**32 - 1))
def test_round_trip_of_random_architectures_simulates_bit_for_bit(net, dtype, spikes, seed):
    _check_round_trip(net, dtype, spikes, seed)


@pytest.mark.parametrize("shortcut", ["identity", "conv"])
@pytest.mark.parametrize("connection", ["standard", "ADD", "AND", "IAND"])
def test_every_residual_block_round_trips(connection, shortcut):
    # each block kind for certain (the random architectures draw them by chance)
    rng = np.random.default_rng(7)
    trace = Neuron(TraceLIF(tau_syn_ms=3.0, theta=0.4, output="spike"), input_scale=0.75)
    dlif = Neuron(DLIF(lam=0.875, theta=0.375), dlif_factors=rng.uniform(0.5, 1.5, T))
    down = () if shortcut == "identity" else (
        Conv2d(rng.standard_normal((3, 3, 1, 1)), bias=rng.standard_normal(3)),
        BatchNorm2d(rng.random(3), 1 + rng.random(3), eps=1e-3, momentum=0.25),
    ) + ((dlif,) if connection != "standard" else ())
    convs = [Conv2d(rng.standard_normal((3, 3, 3, 3)).astype(np.float32), padding=1)
             for _ in range(2)]
    bn = BatchNorm2d(rng.random(3), 1 + rng.random(3), weight=rng.random(3))
    block = (basic_block(*convs, dlif, bn1=bn, downsample=down) if connection == "standard"
             else sew_block(*convs, trace, bn2=bn, downsample=down, connection=connection))
    net = ConvNetwork([Conv2d(rng.standard_normal((3, 1, 3, 3)), padding=1), trace, block,
                       Dropout(0.3), Flatten(), Linear(rng.standard_normal((2, 48))),
                       Neuron(Readout(lam=0.5))], input_shape=(1, 4, 4))
    _check_round_trip(net, np.float64, True, 11)


def test_the_format_table_covers_every_field_of_every_layer_type():
    # a field added to a layer must be added to io._CONV_LAYERS, else it would not be saved
    assert set(io._CONV_TYPES) == {cls.__name__ for cls in LAYER_TYPES}
    for cls in LAYER_TYPES:
        names = {f.name for f in dataclasses.fields(cls)}
        if cls is Residual:
            assert names == {"body", "shortcut", "connection", "neuron"}
        else:
            params, required, optional = io._CONV_LAYERS[cls.__name__]
            assert set(params) | set(required) | set(optional) == names, cls.__name__


def images(n, seed):
    """Separable 2-class images [n, 2, 8, 8]: noise in [0, 0.8] plus 0.2 on the left half of
    channel 0 (class 0) or the right half of channel 1 (class 1)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.random((n, 2, 8, 8)) * 0.8
    x[y == 0, 0, :, :4] += 0.2
    x[y == 1, 1, :, 4:] += 0.2
    return x, y


def test_a_trained_network_saved_and_loaded_scores_the_same(tmp_path):
    rng = np.random.default_rng(3)
    net = ConvNetwork([
        Conv2d(rng.standard_normal((4, 2, 3, 3)) * 0.5, padding=1), BatchNorm2d(np.zeros(4),
                                                                                np.ones(4)),
        Neuron(LIF(lam=0.9, theta=0.5)), AvgPool2d(2), Dropout(0.25), Flatten(),
        Linear(rng.standard_normal((2, 64)) * 0.3), Neuron(Readout(lam=1.0)),
    ], input_shape=(2, 8, 8))
    x, y = images(24, 1)
    xt, yt = images(16, 2)
    r = fit_snn(net, x, y, T=T, rng=0, decoder="membrane", epochs=1, batch_size=8,
                optimizer=AdamW(0.05), x_test=xt, y_test=yt)
    trained = r.model
    # training moved the weights and the running statistics
    assert not np.array_equal(trained.layers[0].weight, net.layers[0].weight)
    assert not np.array_equal(trained.layers[1].running_mean, net.layers[1].running_mean)
    p = tmp_path / "trained.npz"
    io.save(trained, p, convention="DEFAULT", metadata={"test_accuracy": r.test_accuracy})
    saved = io.load_saved(p)
    _same(trained, saved.model)
    assert saved.metadata == {"test_accuracy": r.test_accuracy}
    acc = snn_accuracy(saved.model, xt, yt, T=T, decoder="membrane")
    assert acc == r.test_accuracy
    seq = np.broadcast_to(xt, (T,) + xt.shape)  # current coding
    _same_runs(simulate_conv(trained, seq, record=True), simulate_conv(saved.model, seq,
                                                                       record=True))


def test_file_layout_arrays_named_by_layer_path(tmp_path):
    f32 = np.ones((2, 1, 1, 1), np.float32)
    net = ConvNetwork([
        Conv2d(f32, bias=np.zeros(2)), Neuron(DLIF(), dlif_factors=np.ones(T)),
        basic_block(Conv2d(np.ones((2, 2, 1, 1))), Conv2d(np.ones((2, 2, 1, 1))),
                    Neuron(LIF()), bn2=BatchNorm2d(np.zeros(2), np.ones(2))),
        Flatten(), Linear(np.ones((1, 2))), Neuron(Readout()),
    ], input_shape=(1, 1, 1))
    p = tmp_path / "m.npz"
    io.save(net, p)
    with np.load(p, allow_pickle=False) as z:
        files = set(z.files)
        meta = json.loads(str(z["meta"][()]))
        assert z["layers[0].weight"].dtype == np.float32
    assert files == {"meta", "layers[0].weight", "layers[0].bias", "layers[1].dlif_factors",
                     "layers[2].body[0].weight", "layers[2].body[2].weight",
                     *(f"layers[2].body[3].{k}" for k in ("running_mean", "running_var",
                                                           "weight", "bias")),
                     "layers[4].weight"}
    assert (meta["format"], meta["version"], meta["kind"]) == ("evsnn-model", io.VERSION,
                                                             "conv_network")
    assert meta["input_shape"] == [1, 1, 1]
    assert meta["layers"][0] == {
        "type": "Conv2d", "params": {"stride": [1, 1], "padding": [0, 0], "groups": 1},
        "arrays": {"weight": {"shape": [2, 1, 1, 1], "dtype": "<f4"},
                   "bias": {"shape": [2], "dtype": "<f8"}}}
    block = meta["layers"][2]
    assert block["type"] == "Residual" and block["params"] == {"connection": "standard"}
    assert [s["type"] for s in block["body"]] == ["Conv2d", "Neuron", "Conv2d", "BatchNorm2d"]
    assert block["shortcut"] == [] and block["neuron"]["type"] == "Neuron"
    assert meta["layers"][1]["params"] == {
        "neuron": {"kind": "DLIF", "params": {"lam": 1.0, "theta": 1.0, "reset": "hard",
                                              "v_rest": 0.0, "v_init": 0.0}},
        "input_scale": 1.0}


# --------------------------------------------------------------------------- validation
def _base():
    rng = np.random.default_rng(5)
    lif = Neuron(LIF(lam=0.9, theta=0.5))

    def conv(c_in=4):
        return Conv2d(rng.standard_normal((4, c_in, 3, 3)) * 0.3, padding=1)

    return ConvNetwork([
        InputTrace(0.5),                                                          # 0
        Conv2d(rng.standard_normal((4, 2, 3, 3)), padding=1, bias=np.zeros(4)),   # 1
        BatchNorm2d(np.zeros(4), np.ones(4)),                                     # 2
        Neuron(DLIF(lam=0.9), dlif_factors=np.ones(T)),                           # 3
        basic_block(conv(), conv(), lif, bn1=BatchNorm2d(np.zeros(4), np.ones(4))),  # 4
        sew_block(conv(), conv(), lif, connection="ADD"),                         # 5
        MaxPool2d(2),                                                             # 6
        AvgPool2d(2, stride=1),                                                   # 7
        Dropout(0.25),                                                            # 8
        Flatten(),                                                                # 9
        Linear(rng.standard_normal((3, 16))),                                     # 10
        Neuron(Readout()),                                                        # 11
    ], input_shape=(2, 6, 6))


def _at(m, *keys):
    """The layer description at ``keys`` (layer indices and "body" / "shortcut" / "neuron")."""
    node = m["layers"]
    for k in keys:
        node = node[k]
    return node


def _arr(desc):
    return {"shape": list(desc[0]), "dtype": desc[1]}


def _resize(key, *shape, dtype=np.float64):
    """(meta, arrays) mutations giving array ``key`` (path, field) a new shape, consistently."""
    *layer, field = key

    def meta(m):
        _at(m, *layer)["arrays"][field] = _arr((shape, np.dtype(dtype).str))

    def arrays(a):
        name = "layers" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in layer)
        a[f"{name}.{field}"] = np.ones(shape, dtype)

    return meta, arrays


def _both(*pairs):
    return (lambda m: [p[0](m) for p in pairs], lambda a: [p[1](a) for p in pairs])


def _set(value, *keys):
    def meta(m):
        *where, last = keys
        _at(m, *where)[last] = value
    return meta


def _param(value, *keys):
    *where, last = keys
    return lambda m: _at(m, *where)["params"].__setitem__(last, value)


def _pop_param(*keys):
    *where, last = keys
    return lambda m: _at(m, *where)["params"].pop(last)


def _pop_array(name):
    return lambda a: a.pop(name)


LIF_SPEC = {"type": "Neuron", "params": {"neuron": {"kind": "LIF", "params": {}},
                                         "input_scale": 1.0}, "arrays": {}}

CORRUPTIONS = [
    # (id, meta mutation, arrays mutation, message)
    ("unknown type", _set("MaxPool3d", 6, "type"), None,
     r"layers\[6\]: unknown layer type 'MaxPool3d'; known types: \['AvgPool2d', 'BatchNorm2d'"),
    ("unknown nested type", _set("Conv1d", 4, "body", 0, "type"), None,
     r"layers\[4\]\.body\[0\]: unknown layer type 'Conv1d'"),
    ("no type", _set({"shape": [2, 2]}, 9), None, r"layers\[9\]: unknown layer type None"),
    ("not an object", _set("Flatten", 9), None,
     r"layers\[9\]: the layer description 'Flatten' is not an object"),
    ("missing array", None, _pop_array("layers[1].weight"),
     r"the array 'layers\[1\]\.weight' is missing"),
    ("missing nested array", None, _pop_array("layers[4].body[1].running_var"),
     r"the array 'layers\[4\]\.body\[1\]\.running_var' is missing"),
    ("unexpected array", None, lambda a: a.update({"layers[9].weight": np.ones(2)}),
     r"unexpected arrays \['layers\[9\]\.weight'\] not in the description"),
    ("undeclared array", lambda m: _at(m, 1)["arrays"].update(scale=_arr(((4,), "<f8"))), None,
     r"layers\[1\]: a Conv2d has the arrays \['weight'\] and optionally \['bias'\]; missing \[\], "
     r"unexpected \['scale'\]"),
    ("batch norm array dropped", lambda m: _at(m, 2)["arrays"].pop("running_var"),
     _pop_array("layers[2].running_var"),
     r"layers\[2\]: a BatchNorm2d has the arrays \['running_mean', 'running_var', 'weight', "
     r"'bias'\]; missing \['running_var'\]"),
    ("shape against description", None,
     lambda a: a.update({"layers[10].weight": np.ones((3, 17))}),
     r"'layers\[10\]\.weight' has shape \(3, 17\) but the description says \(3, 16\)"),
    ("conv input channels", *_resize((1, "weight"), 4, 3, 3, 3),
     r"layers\[1\]: Conv2d takes 3 input channels but receives 2; the shapes must chain; the "
     r"layers do not fit together"),
    ("conv output channels against its bias", *_resize((1, "weight"), 5, 2, 3, 3),
     r"layers\[1\]: invalid Conv2d \(bias has 4 entries but weight has 5 output channels\)"),
    ("nested conv output channels", *_resize((4, "body", 3, "weight"), 3, 4, 3, 3),
     r"layers\[4\]: the body emits feature shape \(3, 6, 6\) but the shortcut \(4, 6, 6\)"),
    ("batch norm size", *_both(*(_resize((2, k), 3) for k in ("running_mean", "running_var",
                                                               "weight", "bias"))),
     r"layers\[2\]: BatchNorm2d has 3 channels but receives feature shape \(4, 6, 6\)"),
    ("batch norm sizes disagree", *_resize((2, "running_var"), 3),
     r"layers\[2\]: invalid BatchNorm2d \(running_var must hold 4 non-negative variances"),
    ("linear inputs", *_resize((10, "weight"), 3, 20),
     r"layers\[10\]: Linear takes 20 inputs but receives 16"),
    ("array dtype int", None,
     lambda a: a.update({"layers[1].weight": a["layers[1].weight"].astype(np.int64)}),
     r"'layers\[1\]\.weight' holds int64 numbers but the description says float64"),
    ("array dtype float32", None,
     lambda a: a.update({"layers[1].bias": a["layers[1].bias"].astype(np.float32)}),
     r"'layers\[1\]\.bias' holds float32 numbers but the description says float64"),
    ("described dtype not float", _set(_arr(((4,), "<i8")), 1, "arrays", "bias"), None,
     r"layers\[1\]\.bias: the dtype '<i8' is not a float dtype"),
    ("described dtype not a dtype", _set(_arr(((4,), "nonsense")), 1, "arrays", "bias"), None,
     r"layers\[1\]\.bias: the dtype 'nonsense' is not a float dtype"),
    ("described shape", _set({"shape": "4", "dtype": "<f8"}, 1, "arrays", "bias"), None,
     r"layers\[1\]\.bias: the shape '4' is not a list of non-negative integers"),
    ("array description entries",
     _set({"shape": [4], "dtype": "<f8", "order": "C"}, 1, "arrays", "bias"), None,
     r"layers\[1\]\.bias: the array description must be \['dtype', 'shape'\]; missing \[\], "
     r"unexpected \['order'\]"),
    ("dropout p", _param(1.0, 8, "p"), None,
     r"layers\[8\]: invalid Dropout \(p=1\.0 must be finite and lie in \[0, 1\)"),
    ("dropout p string", _param("half", 8, "p"), None,
     r"layers\[8\]: invalid Dropout \(p must be a real number, got str 'half'"),
    ("dropout flag", _param("yes", 8, "shared_over_time"), None,
     r"layers\[8\]: invalid Dropout \(shared_over_time must be True or False"),
    ("batch norm momentum", _param(1.5, 2, "momentum"), None,
     r"layers\[2\]: invalid BatchNorm2d \(momentum=1\.5 must be finite and lie in \[0, 1\]"),
    ("batch norm eps", _param(0.0, 4, "body", 1, "eps"), None,
     r"layers\[4\]\.body\[1\]: invalid BatchNorm2d \(eps=0\.0 must be finite and > 0"),
    ("trace factor", _param(0.0, 0, "c"), None,
     r"layers\[0\]: invalid InputTrace \(c=0\.0 must be finite and lie in \(0, 1\]"),
    ("conv stride", _param([0, 1], 1, "stride"), None,
     r"layers\[1\]: invalid Conv2d \(stride=0 must be an integer >= 1"),
    ("conv groups", _param(3, 1, "groups"), None,
     r"layers\[1\]: invalid Conv2d \(groups=3 does not divide the 4 output channels"),
    ("pool padding", _param([2, 2], 6, "padding"), None,
     r"layers\[6\]: invalid MaxPool2d \(padding=\(2, 2\) exceeds half the kernel"),
    ("pool kernel", _param([7, 7], 6, "kernel_size"), None,
     r"layers\[6\]: MaxPool2d: kernel 7 with padding 0 does not fit an input of size 6"),
    ("residual connection", _param("XOR", 5, "connection"), None,
     r"layers\[5\]: invalid Residual \(connection='XOR' is not a residual connection"),
    ("standard block without its neuron", _set(None, 4, "neuron"), None,
     r"layers\[4\]: invalid Residual \(a 'standard' block needs neuron=Neuron"),
    ("SEW block with a neuron", _set(LIF_SPEC, 5, "neuron"), None,
     r"layers\[5\]: invalid Residual \(a 'standard' block needs neuron=Neuron\(\.\.\.\) after the "
     r"sum; SEW connections \('ADD', 'AND', 'IAND'\) take none"),
    ("block neuron that is no neuron", _set({"type": "Flatten", "params": {}, "arrays": {}},
                                            4, "neuron"), None,
     r"layers\[4\]\.neuron: a Flatten, but a residual block's neuron is a Neuron layer"),
    ("block body not a list", _set("conv", 4, "body"), None,
     r"layers\[4\]\.body: 'conv' is not a list of layer descriptions"),
    ("block body empty", _set([], 5, "body"), None,
     r"layers\[5\]: invalid Residual \(body is empty; it needs at least one layer"),
    ("unknown neuron kind", lambda m: _at(m, 3)["params"]["neuron"].update(kind="Izhikevich"),
     None, r"layers\[3\]: unknown neuron kind 'Izhikevich'"),
    ("neuron parameter", lambda m: _at(m, 11)["params"]["neuron"].update(params={"lam": 2.0}),
     None, r"layers\[11\]: invalid Readout parameters \(lam=2\.0"),
    ("nested neuron parameter",
     lambda m: _at(m, 4, "neuron")["params"]["neuron"]["params"].update(tau=3), None,
     r"layers\[4\]\.neuron: LIF has no parameter\(s\) \['tau'\]"),
    ("DLIF without factors", lambda m: _at(m, 3)["arrays"].pop("dlif_factors"),
     _pop_array("layers[3].dlif_factors"),
     r"layers\[3\]: invalid Neuron \(dlif_factors are required for a DLIF neuron"),
    ("factors on a readout", *_resize((11, "dlif_factors"), T),
     r"layers\[11\]: invalid Neuron \(dlif_factors are required for a DLIF neuron and forbidden "
     r"otherwise; got Readout"),
    ("input scale", _param("big", 3, "input_scale"), None,
     r"layers\[3\]: invalid Neuron \(input_scale must be a real number"),
    ("missing parameter", _pop_param(2, "eps"), None,
     r"layers\[2\]: the BatchNorm2d parameters must be \['eps', 'momentum'\]; missing \['eps'\], "
     r"unexpected \[\]"),
    ("unknown parameter", _param(1, 1, "dilation"), None,
     r"layers\[1\]: the Conv2d parameters must be \['groups', 'padding', 'stride'\]; missing \[\], "
     r"unexpected \['dilation'\]"),
    ("unknown entry", _set("x", 9, "note"), None,
     r"layers\[9\]: the entries must be \['arrays', 'params', 'type'\]; missing \[\], "
     r"unexpected \['note'\]"),
    ("parameters not an object", _set([0.25], 8, "params"), None,
     r"layers\[8\]: the Dropout parameters \[0\.25\] are not an object"),
    ("arrays not an object", _set([], 9, "arrays"), None,
     r"layers\[9\]: the arrays \[\] are not an object"),
    ("no input shape", lambda m: m.pop("input_shape"), None,
     r"the description has no 'input_shape' entry"),
    ("input shape channels", lambda m: m.update(input_shape=[3, 6, 6]), None,
     r"layers\[1\]: Conv2d takes 2 input channels but receives 3"),
    ("input shape size", lambda m: m.update(input_shape=[2, 0, 6]), None,
     r"input_shape\[1\]=0 must be an integer >= 1"),
    ("input shape kind", lambda m: m.update(input_shape="2x6x6"), None,
     r"input_shape must be a tuple of positive ints, got str"),
    ("older version", lambda m: m.update(version=3), None,
     r"model kind 'conv_network' needs format version 4 or later, the file says 3; re-save"),
    ("newer version", lambda m: m.update(version=6), None,
     r"format version 6 is not supported \(this evsnn reads versions \[1, 2, 3, 4, 5\]\)"),
    ("unknown kind", lambda m: m.update(kind="cnn"), None,
     r"unknown model kind 'cnn'; expected 'ann', 'network' or 'conv_network'"),
    ("no layers", lambda m: m.update(layers=[]), None, r"the description lists no layers"),
]


@pytest.fixture(scope="module")
def base_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("conv") / "base.npz"
    io.save(_base(), p)
    return p.read_bytes()


@pytest.mark.parametrize("mutate_meta,mutate_arrays,message",
                         [c[1:] for c in CORRUPTIONS], ids=[c[0] for c in CORRUPTIONS])
def test_every_corruption_is_a_value_error_naming_the_layer(base_file, tmp_path, mutate_meta,
                                                            mutate_arrays, message):
    p = tmp_path / "m.npz"
    p.write_bytes(base_file)
    io.load(p)  # the untouched file loads
    rewrite_npz(p, mutate_meta, mutate_arrays)
    with pytest.raises(ValueError, match=message) as info:
        io.load(p)
    assert str(info.value).startswith(f"{p}: ")


def test_the_base_network_round_trips(tmp_path):
    net = _base()
    back = _round_trip(net)
    _same(net, back)
    x = (np.random.default_rng(0).random((T, 2, 2, 6, 6)) < 0.5).astype(float)
    _same_runs(simulate_conv(net, x, record=True), simulate_conv(back, x, record=True))


# --------------------------------------------------------------------------- writes, versions
def test_failed_write_of_a_conv_network_leaves_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "m.npz"
    io.save(_base(), p)
    before = p.read_bytes()

    def broken_savez(fh, **arrays):
        fh.write(b"half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(io.np, "savez", broken_savez)
    other = ConvNetwork([Flatten(), Linear(np.ones((2, 72))), Neuron()], input_shape=(2, 6, 6))
    with pytest.raises(OSError, match="disk full"):
        io.save(other, p)
    assert p.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]
    monkeypatch.undo()
    io.save(other, p)  # a whole new file replaces it
    _same(io.load(p), other)
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_unsaveable_metadata_writes_nothing(tmp_path):
    with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
        io.save(_base(), tmp_path / "m.npz", metadata={"a": object()})
    assert os.listdir(tmp_path) == []


def test_a_version_3_reader_refuses_the_file(base_file, tmp_path, monkeypatch):
    # what evsnn before version 4 read: it refuses the file by its version, before the kind
    p = tmp_path / "m.npz"
    p.write_bytes(base_file)
    monkeypatch.setattr(io, "_READABLE_VERSIONS", (1, 2, 3))
    with pytest.raises(ValueError, match=rf"format version {io.VERSION} is not supported "
                                         r"\(this evsnn reads versions \[1, 2, 3\]\)"):
        io.load(p)
    # dense files are written in the current version too
    io.save(Network((Dense(np.ones((2, 2)), LIF()),)), p)
    with pytest.raises(ValueError, match=f"format version {io.VERSION} is not supported"):
        io.load(p)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_dense_files_of_versions_1_to_3_still_load(tmp_path, version):
    net = Network((Dense(np.arange(6.0).reshape(3, 2), LIF(lam=0.9), bias=np.ones(3)),
                   Dense(np.ones((2, 3), np.float32), Readout())))
    p = tmp_path / "m.npz"
    io.save(net, p)
    rewrite_npz(p, lambda m: m.update(version=version))
    back = io.load(p)
    assert isinstance(back, Network)
    for a, b in zip(net.layers, back.layers):
        assert a.weight.dtype == b.weight.dtype and a.neuron == b.neuron
        np.testing.assert_array_equal(a.weight, b.weight)
