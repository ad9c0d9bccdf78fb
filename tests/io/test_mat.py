"""matconvnet.io: MAT files (v4, v5/v7 through SciPy, v7.3 through h5py) <-> the Python
network structure of docs/net-structure.md.

Oracle models and real MatConvNet files from ../shared (skipped when it is absent), exact
round trips of a net with every SimpleNN layer type in each format, MatConvNet's structure
as plain SciPy / h5py see it, and clear errors for missing, foreign and damaged files.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
import torch

import matconvnet.io as mio
from matconvnet.io import layout

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
ORACLE = SHARED / "oracle"
DATA = SHARED / "data" / "matconvnet"
FORMATS = ["v7", "v7.3"]

needs_oracle = pytest.mark.skipif(not (ORACLE / "manifest.json").is_file(),
                                  reason="../shared/oracle is absent")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/matconvnet is absent")


def _models():
    if not (ORACLE / "manifest.json").is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason="../shared/oracle is absent"))]
    models = json.loads((ORACLE / "manifest.json").read_text())["models"]["models"]
    return [pytest.param(m, id=m["name"]) for m in models]


def _dagnn_models():
    return [p for p in _models() if p.values[0] is None or p.values[0]["dagnn"]["model_file"]]


# ----------------------------------------------------------------------------- helpers


def assert_same(a, b, path="net"):
    """Recursive equality with types: tensors by dtype, shape and value; int is not float."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{path}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), \
            f"{path}: {a.dtype}{tuple(a.shape)} != {b.dtype}{tuple(b.shape)}"
        assert torch.equal(a, b), f"{path}: values differ"
    elif isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), f"{path}: {a.dtype}{a.shape}"
        assert np.array_equal(a, b), f"{path}: values differ"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _as4(a):
    a = np.asarray(a)
    return a.reshape(a.shape + (1,) * (4 - a.ndim))


def every_type_net():
    """One layer of every SimpleNN type of docs/net-structure.md (custom aside), as io.load
    returns them: option numbers as int where MatConvNet's are integer-valued."""
    g = torch.Generator().manual_seed(0)

    def r(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=g, dtype=dtype)

    layers = [
        {"type": "conv", "name": "conv1", "weights": [r(4, 3, 3, 2), r(4)], "pad": [1, 1, 0, 0],
         "stride": [2, 1], "dilate": 1, "opts": [], "precious": False,
         "learningRate": [1.0, 2.0], "weightDecay": [1.0, 0.0]},
        {"type": "convt", "name": "convt1", "weights": [r(4, 3, 2, 2), r(3)],
         "crop": [0, 1, 0, 1], "upsample": [2, 2], "numGroups": 1,
         "opts": ["CudnnWorkspaceLimit", 1048576.0]},
        {"type": "pool", "name": "pool1", "pool": [3, 3], "method": "avg", "pad": 1,
         "stride": 2, "opts": []},
        {"type": "normalize", "name": "norm1", "param": [5.0, 1.0, 2e-05, 0.75]},
        {"type": "lrn", "name": "lrn1", "param": [5.0, 1.0, 2e-05, 0.75]},
        {"type": "spnorm", "name": "spnorm1", "param": [2.0, 2.0, 10.0, 2.0]},
        {"type": "bnorm", "name": "bnorm1", "weights": [r(3), r(3), r(3, 2)], "epsilon": 1e-05,
         "learningRate": [2.0, 1.0, 0.1], "weightDecay": [0.0, 0.0, 0.0]},
        {"type": "relu", "name": "relu1", "leak": 0.1},
        {"type": "sigmoid", "name": "sigmoid1"},
        {"type": "softmax", "name": "softmax1"},
        {"type": "dropout", "name": "dropout1", "rate": 0.5},
        {"type": "noffset", "name": "noffset1", "param": [1.0, 0.5]},
        {"type": "loss", "name": "loss1", "class": []},
        {"type": "softmaxloss", "name": "softmaxloss1", "class": [1.0, 3.0]},
        {"type": "pdist", "name": "pdist1", "class": [], "p": 2.0, "noRoot": True,
         "aggregate": False, "epsilon": 0.001, "instanceWeights": []},
        # double precision, no bias, one filter of depth one (FH x FW in MATLAB), a single
        # learning rate (still a list)
        {"type": "conv", "name": "conv2", "weights": [r(1, 1, 5, 5, dtype=torch.float64),
                                                      torch.empty(0, dtype=torch.float64)],
         "pad": 0, "stride": 1, "dilate": [2, 2], "opts": [], "learningRate": [1.0]},
    ]
    meta = {
        "inputSize": [8, 8, 3, 2],
        "classes": {"name": ["n01", "n02"], "description": ["a cat", "a dog"]},
        "normalization": {"imageSize": [8, 8, 3], "averageImage": r(3, 8, 8),
                          "interpolation": "bilinear", "keepAspect": True, "border": [4, 4],
                          "cropSize": 0.875},
        "inputs": [{"name": "input", "size": [8, 8, 3, 2]},
                   {"name": "label", "size": [1, 1, 1, 2]}],
        "trainOpts": {"learningRate": [0.01, 0.001], "numEpochs": 20, "continue": True,
                      "gpus": []},
        "matrix": np.arange(6.0).reshape(2, 3),
    }
    return {"layers": layers, "meta": meta}


# ----------------------------------------------------------------------------- oracle models


@needs_oracle
@pytest.mark.parametrize("model", _models())
def test_oracle_simplenn(model):
    net = mio.load(ORACLE / model["model_file"])
    assert list(net) == ["net"]
    net = net["net"]
    raw = sio.loadmat(str(ORACLE / model["model_file"]))["net"][0, 0]["layers"][0]
    assert len(net["layers"]) == len(model["layers"]) == raw.size
    for layer, spec, rl in zip(net["layers"], model["layers"], raw):
        rl = rl[0, 0]
        assert layer["type"] == spec["type"] and layer["name"] == spec["name"]
        for key in ("pad", "stride", "dilate", "pool", "method", "epsilon", "rate"):
            if key in spec:
                assert layer[key] == spec[key], (spec["name"], key)
                assert type(layer[key]) is type(spec[key]), (spec["name"], key)
        sizes = spec.get("weights_size", [])
        assert len(layer.get("weights", [])) == len(sizes)
        for j, (w, size) in enumerate(zip(layer.get("weights", []), sizes)):
            assert isinstance(w, torch.Tensor) and w.dtype == torch.float32
            rw = rl["weights"][0, j]
            if spec["type"] == "conv" and j == 0:
                assert tuple(w.shape) == (size[3], size[2], size[0], size[1])
                expect = _as4(rw).transpose(3, 2, 0, 1)
            elif spec["type"] == "bnorm" and j == 2:
                assert tuple(w.shape) == tuple(size)
                expect = rw
            else:
                assert tuple(w.shape) == (int(np.prod(size)),)
                expect = rw.ravel(order="F")
            if w.numel():
                assert torch.equal(w, torch.from_numpy(np.ascontiguousarray(expect)))


@needs_oracle
@pytest.mark.parametrize("model", _dagnn_models())
def test_oracle_dagnn(model):
    dag = mio.load(ORACLE / model["dagnn"]["model_file"])["net"]
    assert list(dag) == ["vars", "params", "layers", "meta"]
    assert [p["name"] for p in dag["params"]] == model["dagnn"]["eval"][0]["param_names"]
    assert all(l["type"].startswith("dagnn.") for l in dag["layers"])
    assert set(model["dagnn"]["var_sizes"]) == {v["name"] for v in dag["vars"]}
    # the DagNN was built from the same initialisation: its params are the SimpleNN weights
    snn = mio.load(ORACLE / model["model_file"])["net"]
    params = {p["name"]: p["value"] for p in dag["params"]}
    suffix = {"conv": "fb", "bnorm": "mbx"}
    checked = 0
    for layer in snn["layers"]:
        for j, w in enumerate(layer.get("weights", [])):
            name = layer["name"] + suffix[layer["type"]][j]
            if w.numel():
                assert_same(params[name], w, name)
                checked += 1
    assert checked == sum(1 for p in params.values() if p.numel())
    # and a DagNN layer's block keeps the class's properties, integers as int
    conv = next(l for l in dag["layers"] if l["type"] == "dagnn.Conv")
    assert conv["block"]["size"] == [int(s) for s in model["layers"][0]["weights_size"][0]]
    assert conv["inputs"] == ["input"] and isinstance(conv["params"], list)


@needs_oracle
@pytest.mark.parametrize("fmt", FORMATS)
def test_oracle_round_trip(tmp_path, fmt):
    for name in ("mnist_lenet_bnorm/net.mat", "mnist_lenet_bnorm/dagnn_net.mat",
                 "cifar_lenet/net.mat"):
        net = mio.load(ORACLE / "models" / name)
        mio.save(tmp_path / "net.mat", net, format=fmt)
        assert_same(mio.load(tmp_path / "net.mat"), net, name)


# ----------------------------------------------------------------------------- real files


@needs_data
def test_real_simplenn_models():
    dcf = mio.load(DATA / "dcfnet" / "DCFNet-net-7-125-2.mat")["net"]
    assert [l["type"] for l in dcf["layers"]] == ["conv", "relu", "conv", "lrn"]
    assert dcf["layers"][0]["weights"][0].shape == (32, 3, 3, 3)
    assert dcf["layers"][0]["weights"][1].shape == (32,)
    avg = dcf["meta"]["normalization"]["averageImage"]
    assert avg.shape == (3, 1, 1) and avg.dtype == torch.float32
    assert dcf["meta"]["normalization"]["imageSize"] == [125, 125, 3]

    for stage, n in (("net_stage_1.mat", 8), ("net_stage_2.mat", 10)):
        net = mio.load(DATA / "player-detection" / stage)["net"]
        types = [l["type"] for l in net["layers"]]
        assert len(types) == n and types[0] == "conv" and types[-1] == "softmaxloss"
        assert net["meta"]["trainOpts"]["continue"] is True
        assert net["meta"]["inputSize"] == [32, 14, 3]

    mean = mio.load(DATA / "player-detection" / "im_mean.mat")
    assert list(mean) == ["m"] and len(mean["m"]) == 3


@needs_data
def test_real_checkpoint(tmp_path):
    ck = mio.load(DATA / "plate-chars" / "net-epoch-50.mat")
    assert list(ck) == ["net", "state", "stats"]
    net, state, stats = ck["net"], ck["state"], ck["stats"]
    assert [l["type"] for l in net["layers"]] == [
        "conv", "pool", "relu", "conv", "pool", "relu", "conv", "softmaxloss"]
    assert len(stats["train"]) == len(stats["val"]) == 50
    assert set(stats["train"][0]) == {"objective", "top1err", "top5err", "num", "time"}
    assert isinstance(stats["train"][0]["num"], int)
    # the 20 x 20 x 1 mean image is read as C x H x W
    assert net["meta"]["normalization"]["averageImage"].shape == (1, 20, 20)
    # momentum buffers are in the weights' layout
    assert len(state["solverState"]) == len(net["layers"])
    for layer, solver in zip(net["layers"], state["solverState"]):
        assert len(solver) == len(layer["weights"])
        for w, m in zip(layer["weights"], solver):
            assert m.shape == w.shape and m.dtype == w.dtype
    for fmt in FORMATS:
        mio.save(tmp_path / "ck.mat", ck, format=fmt)
        assert_same(mio.load(tmp_path / "ck.mat"), ck, fmt)


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", FORMATS + ["v6"])
def test_round_trip_every_layer_type(tmp_path, fmt):
    net = every_type_net()
    mio.save(tmp_path / "net.mat", net, format=fmt)
    back = mio.load(tmp_path / "net.mat")
    assert_same(back, net)
    assert back["layers"][1]["opts"] == ["CudnnWorkspaceLimit", 1048576.0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_checkpoint_and_dagnn(tmp_path, fmt):
    g = torch.Generator().manual_seed(1)
    f, b = torch.randn(5, 2, 3, 3, generator=g), torch.randn(5, generator=g)
    a = torch.randn(1, 5, 1, 1, generator=g)
    dag = {
        "vars": [{"name": "input", "precious": False}, {"name": "x1", "precious": True}],
        "params": [{"name": "c1f", "value": f, "learningRate": 1.0, "weightDecay": 1.0},
                   {"name": "c1b", "value": b, "learningRate": 2.0, "weightDecay": 0.0},
                   {"name": "s1a", "value": a, "learningRate": 1.0, "weightDecay": 1.0},
                   {"name": "u1", "value": torch.arange(6.0).reshape(2, 3),
                    "learningRate": 1.0, "weightDecay": 1.0}],
        "layers": [
            {"name": "c1", "type": "dagnn.Conv", "inputs": ["input"], "outputs": ["x1"],
             "params": ["c1f", "c1b"], "block": {"size": [3, 3, 2, 5], "hasBias": True,
                                                   "opts": [], "pad": [1, 1, 1, 1],
                                                   "stride": [1, 1], "dilate": [1, 1]}},
            {"name": "s1", "type": "dagnn.Scale", "inputs": ["x1"], "outputs": ["x2"],
             "params": ["s1a"], "block": {"size": [1, 1, 5], "hasBias": False}},
            {"name": "u", "type": "mine.Custom", "inputs": ["x2"], "outputs": ["y"],
             "params": ["u1"], "block": {}}],
        "meta": {"inputs": [{"name": "input", "size": [8, 8, 2, 1]}]},
    }
    u = torch.ones(2, 3)
    ck = {"net": dag, "state": {"solverState": [f * 0.5, [], a, {"m": u, "t": 3.0}]},
          "stats": {"train": [{"objective": 1.5, "num": 10}], "val": []}}
    mio.save(tmp_path / "ck.mat", ck, format=fmt)
    back = mio.load(tmp_path / "ck.mat")
    assert_same(back, ck)
    if fmt == "v7":
        raw = sio.loadmat(str(tmp_path / "ck.mat"))
        params = raw["net"][0, 0]["params"]
        assert params.shape == (1, 4)                       # a struct array
        assert params[0, 0]["value"].shape == (3, 3, 2, 5)  # FH x FW x C x K
        assert params[0, 1]["value"].shape == (1, 5)
        assert params[0, 2]["value"].shape == (1, 1, 5)     # H x W x C (x N = 1)
        assert params[0, 3]["value"].shape == (2, 3)        # unknown layer: as it is
        assert raw["net"][0, 0]["layers"].shape == (1, 3)
        assert raw["state"][0, 0]["solverState"][0, 0].shape == (3, 3, 2, 5)

    class Saveable:  # e.g. a DagNN object: saved through its saveobj()
        def saveobj(self):
            return dag

    mio.save(tmp_path / "dag.mat", Saveable(), format=fmt)  # model file: -struct
    assert_same(mio.load(tmp_path / "dag.mat"), dag)


def test_legacy_simplenn_fields(tmp_path):
    """<= beta16 files: filters/biases fields, top-level normalization."""
    f = np.arange(3 * 3 * 2 * 4, dtype=np.float32).reshape(3, 3, 2, 4, order="F")
    layer = {"type": "conv", "filters": f, "biases": np.ones((1, 4), np.float32)}
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = layer
    sio.savemat(tmp_path / "old.mat", {
        "layers": cell, "normalization": {"averageImage": np.ones((1, 1, 3), np.float32)}})
    net = mio.load(tmp_path / "old.mat")
    assert_same(net["layers"][0]["filters"], torch.from_numpy(f.transpose(3, 2, 0, 1).copy()))
    assert_same(net["layers"][0]["biases"], torch.ones(4))
    assert net["normalization"]["averageImage"].shape == (3, 1, 1)
    mio.save(tmp_path / "again.mat", net)
    assert sio.loadmat(str(tmp_path / "again.mat"))["layers"][0, 0][0, 0]["filters"].shape \
        == (3, 3, 2, 4)


def test_saved_v7_has_matconvnet_structure(tmp_path):
    net = every_type_net()
    mio.save(tmp_path / "net.mat", net)
    raw = sio.loadmat(str(tmp_path / "net.mat"))
    assert sorted(k for k in raw if not k.startswith("__")) == ["layers", "meta"]
    assert raw["__header__"].startswith(b"MATLAB 5.0 MAT-file")
    layers = raw["layers"]
    assert layers.dtype == object and layers.shape == (1, len(net["layers"]))  # a 1 x n cell
    conv = layers[0, 0][0, 0]
    assert str(conv["type"][0]) == "conv"
    assert conv["weights"].dtype == object and conv["weights"].shape == (1, 2)
    f, b = conv["weights"][0, 0], conv["weights"][0, 1]
    assert f.dtype == np.float32 and f.shape == (3, 2, 3, 4)        # FH x FW x C x K single
    np.testing.assert_array_equal(f, net["layers"][0]["weights"][0].numpy().transpose(2, 3, 1, 0))
    assert b.shape == (1, 4)
    assert conv["precious"].dtype == np.uint8 and conv["pad"].dtype == np.float64
    assert conv["opts"].dtype == object and conv["opts"].size == 0      # {} not []
    convt = layers[0, 1][0, 0]
    assert convt["weights"][0, 0].shape == (2, 2, 3, 4)                 # FH x FW x K x D
    bn = layers[0, 6][0, 0]
    assert [w.shape for w in bn["weights"][0]] == [(3, 1), (3, 1), (3, 2)]
    conv2 = layers[0, 15][0, 0]
    assert conv2["weights"][0, 0].shape == (5, 5) and conv2["weights"][0, 0].dtype == np.float64
    assert conv2["weights"][0, 1].size == 0
    assert sio.loadmat(str(tmp_path / "net.mat"), mat_dtype=True)["layers"][0, 0][0, 0][
        "precious"].dtype == np.bool_                                    # logical
    meta = raw["meta"][0, 0]
    avg = meta["normalization"][0, 0]["averageImage"]
    assert avg.shape == (8, 8, 3) and avg.dtype == np.float32            # H x W x C
    assert meta["classes"][0, 0]["name"].dtype == object                 # a cell of strings
    assert meta["inputs"].shape == (1, 2) and meta["inputs"].dtype.names == ("name", "size")


def test_saved_v73_has_matlab_layout(tmp_path):
    h5py = pytest.importorskip("h5py")
    net = every_type_net()
    mio.save(tmp_path / "net.mat", net, format="v7.3")
    head = (tmp_path / "net.mat").read_bytes()[:520]
    assert head.startswith(b"MATLAB 7.3 MAT-file") and head[124:128] == b"\x00\x02IM"
    assert head[512:520] == b"\x89HDF\r\n\x1a\n"
    with h5py.File(tmp_path / "net.mat", "r") as f:
        assert sorted(k for k in f if not k.startswith("#")) == ["layers", "meta"]
        layers = f["layers"]
        assert layers.attrs["MATLAB_class"] == b"cell" and layers.shape == (16, 1)
        conv = f[layers[0, 0]]
        assert conv.attrs["MATLAB_class"] == b"struct"
        names = [b"".join(n).decode() for n in conv.attrs["MATLAB_fields"]]
        assert names == list(net["layers"][0])
        filters = f[conv["weights"][0, 0]]
        assert filters.attrs["MATLAB_class"] == b"single"
        assert filters.shape == (4, 3, 2, 3)          # reversed FH x FW x C x K
        assert conv["type"].attrs["MATLAB_class"] == b"char"
        assert bytes(np.asarray(conv["type"]).astype("<u2").tobytes()).decode("utf-16-le") \
            == "conv"
        assert conv["precious"].attrs["MATLAB_class"] == b"logical"
        assert conv["opts"].attrs["MATLAB_class"] == b"cell"
        assert conv["opts"].attrs["MATLAB_empty"] == 1
        inputs = f["meta"]["inputs"]                   # a struct array: fields of references
        assert inputs.attrs["MATLAB_class"] == b"struct"
        assert "MATLAB_class" not in inputs["name"].attrs and inputs["name"].shape == (2, 1)
        assert h5py.check_ref_dtype(inputs["name"].dtype) is not None
        assert [b"".join(n).decode() for n in inputs.attrs["MATLAB_fields"]] == ["name", "size"]


def test_reads_matlab_v73_layout_written_independently(tmp_path):
    """A v7.3 file built by hand the way MATLAB writes one (not with our writer)."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "hand.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")

        def char(parent, name, s):
            d = parent.create_dataset(name, data=np.array([[ord(c)] for c in s], np.uint16))
            d.attrs["MATLAB_class"] = np.bytes_(b"char")
            d.attrs["MATLAB_int_decode"] = np.int32(2)
            return d

        def single(parent, name, a):
            d = parent.create_dataset(name, data=np.ascontiguousarray(a.T))
            d.attrs["MATLAB_class"] = np.bytes_(b"single")
            return d

        def empty(parent, name, cls):
            d = parent.create_dataset(name, data=np.array([0, 0], np.uint64))
            d.attrs["MATLAB_class"] = np.bytes_(cls)
            d.attrs["MATLAB_empty"] = np.uint8(1)

        f5 = np.arange(5 * 5 * 1 * 2, dtype=np.float32).reshape(5, 5, 1, 2, order="F")
        layer = refs.create_group("b")
        layer.attrs["MATLAB_class"] = np.bytes_(b"struct")
        char(layer, "type", "conv")
        char(layer, "name", "c1")
        single(refs, "c", f5)
        single(refs, "d", np.array([[1.5, 2.5]], np.float32))
        w = layer.create_dataset("weights", data=np.array([[refs["c"].ref], [refs["d"].ref]]),
                                 dtype=h5py.ref_dtype)
        w.attrs["MATLAB_class"] = np.bytes_(b"cell")
        empty(layer, "opts", b"cell")
        p = layer.create_dataset("pad", data=np.array([[1.0]]))
        p.attrs["MATLAB_class"] = np.bytes_(b"double")
        layers = f.create_dataset("layers", data=np.array([[layer.ref]]), dtype=h5py.ref_dtype)
        layers.attrs["MATLAB_class"] = np.bytes_(b"cell")
        meta = f.create_group("meta")
        meta.attrs["MATLAB_class"] = np.bytes_(b"struct")
        inputs = meta.create_group("inputs")            # a 1 x 2 struct array
        inputs.attrs["MATLAB_class"] = np.bytes_(b"struct")
        char(refs, "e", "data")
        char(refs, "f", "label")
        inputs.create_dataset("name", data=np.array([[refs["e"].ref], [refs["f"].ref]]),
                              dtype=h5py.ref_dtype)
        flag = meta.create_dataset("keep", data=np.array([[1]], np.uint8))
        flag.attrs["MATLAB_class"] = np.bytes_(b"logical")
        fh = meta.create_dataset("f", data=np.array([[0]], np.uint32))
        fh.attrs["MATLAB_class"] = np.bytes_(b"function_handle")
    with open(path, "r+b") as fp:
        fp.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116) + b"\0" * 8
                 + b"\x00\x02IM")
    with pytest.warns(UserWarning, match=r"meta\.f \(function handle\)"):
        net = mio.load(path)
    layer = net["layers"][0]
    assert layer["type"] == "conv" and layer["name"] == "c1" and layer["pad"] == 1
    assert layer["opts"] == []
    assert_same(layer["weights"][0], torch.from_numpy(f5.transpose(3, 2, 0, 1).copy()))
    assert_same(layer["weights"][1], torch.tensor([1.5, 2.5]))
    assert net["meta"]["inputs"] == [{"name": "data"}, {"name": "label"}]
    assert net["meta"]["keep"] is True and net["meta"]["f"] is None


# ----------------------------------------------------------------------------- conversions


def test_layout_kinds_are_inverse():
    rng = np.random.default_rng(0)
    cases = [(layout.FILTERS, (3, 3, 2, 4)), (layout.FILTERS, (5, 5)), (layout.FILTERS, (3, 3, 2)),
             (layout.BIAS, (1, 4)), (layout.BIAS, (4, 1)), (layout.VECTOR, (6, 1)),
             (layout.MOMENTS, (6, 2)), (layout.DATA, (1, 1, 5)), (layout.DATA, (2, 3, 4, 5)),
             (layout.RAW, (2, 3))]
    for kind, shape in cases:
        a = rng.standard_normal(shape).astype(np.float32)
        t = layout.weight_from_mat(kind, a)
        back = layout.weight_to_mat(kind, t)
        assert back.size == a.size
        if kind not in (layout.BIAS, layout.VECTOR):  # those are written 1 x K and C x 1
            assert back.shape == a.shape, (kind, shape)
        np.testing.assert_array_equal(back.ravel(order="F"), a.ravel(order="F"))
    f = layout.weight_from_mat(layout.FILTERS, np.ones((5, 5), np.float32))
    assert f.shape == (1, 1, 5, 5)
    img = layout.image_from_mat(np.zeros((4, 6), np.float64))
    assert img.shape == (1, 4, 6) and layout.image_to_mat(img).shape == (4, 6)
    assert layout.image_to_mat(torch.zeros(3)).shape == (1, 1, 3)  # a per-channel mean


def test_scalars_ints_and_empties(tmp_path):
    sio.savemat(tmp_path / "x.mat", {
        "s": {"pad": np.float64(2), "leak": np.float64(0), "n": np.int32(3),
              "flag": np.array([[True]]), "v": np.arange(3.0).reshape(3, 1),
              "e": np.zeros((0, 0)), "c": np.empty((0, 0), dtype=object), "t": ""}})
    s = mio.load(tmp_path / "x.mat")["s"]
    assert_same(s, {"pad": 2, "leak": 0.0, "n": 3, "flag": True, "v": [0.0, 1.0, 2.0],
                    "e": [], "c": [], "t": ""}, "s")


def test_v4_file(tmp_path):
    sio.savemat(tmp_path / "v4.mat", {"a": np.eye(2)}, format="4")
    assert_same(mio.load(tmp_path / "v4.mat"), {"a": np.eye(2)})


def test_custom_layer_cannot_be_saved(tmp_path):
    net = every_type_net()
    net["layers"].append({"type": "custom", "name": "mine", "forward": lambda l, a, b: b,
                          "backward": lambda l, a, b: a})
    target = tmp_path / "net.mat"
    target.write_bytes(b"previous")
    with pytest.raises(ValueError, match=r"layers\{17\}: layer 'mine' is of type 'custom'"):
        mio.save(target, net)
    assert target.read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["net.mat"]
    net["layers"][-1] = {"type": "custom", "name": "mine", "data": 1.0}  # no callables: fine
    mio.save(target, net)
    assert mio.load(target)["layers"][-1] == {"type": "custom", "name": "mine", "data": 1.0}


def test_save_is_atomic(tmp_path, monkeypatch):
    from matconvnet.io import _hdf5

    target = tmp_path / "net.mat"
    mio.save(target, {"a": 1.0})

    def broken(path, variables):
        Path(path).write_bytes(b"half-written")
        raise OSError("disk full")

    monkeypatch.setattr(_hdf5, "write", broken)
    with pytest.raises(OSError, match="disk full"):
        mio.save(target, {"a": 2.0}, format="v7.3")
    assert mio.load(target) == {"a": 1.0}
    assert sorted(os.listdir(tmp_path)) == ["net.mat"]


def test_save_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="format"):
        mio.save(tmp_path / "x.mat", {"a": 1.0}, format="v8")
    with pytest.raises(ValueError, match="not a valid MATLAB name"):
        mio.save(tmp_path / "x.mat", {"a b": 1.0})
    with pytest.raises(TypeError, match=r"x\.f: a Python callable"):
        mio.save(tmp_path / "x.mat", {"x": {"f": print}})
    with pytest.raises(ValueError, match=r"layers\{1\}\.weights\{1\}: filters: expected a 4-D"):
        mio.save(tmp_path / "x.mat", {"layers": [{"type": "conv",
                                                  "weights": [torch.zeros(3, 3), torch.zeros(1)]}]})
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    path = tmp_path / "nope.mat"
    with pytest.raises(FileNotFoundError, match=f"{path}: no such file"):
        mio.load(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mio.save(tmp_path / "no" / "net.mat", {"a": 1.0})


@pytest.mark.parametrize("content", [b"", b"hello world\n" * 20,
                                     np.random.default_rng(0).bytes(1000),
                                     np.random.default_rng(1).bytes(100)],
                         ids=["empty", "text", "random", "random-short"])
def test_not_a_mat_file(tmp_path, content):
    path = tmp_path / "x.mat"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"{path}: not a MAT file"):
        mio.load(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_or_corrupt_file(tmp_path, fmt):
    full = tmp_path / "full.mat"
    mio.save(full, every_type_net(), format=fmt)
    data = full.read_bytes()
    for cut in (100, 200, 700, len(data) // 2, len(data) - 8):
        path = tmp_path / f"cut{cut}.mat"
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f"{path}: cannot read this MAT .* file, it is "
                                             f"corrupt or truncated"):
            mio.load(path)
    if fmt == "v7":
        bad = bytearray(data)
        bad[300:340] = bytes(40)  # zeros in the compressed stream
        path = tmp_path / "corrupt.mat"
        path.write_bytes(bytes(bad))
        with pytest.raises(ValueError, match=f"{path}: cannot read"):
            mio.load(path)
