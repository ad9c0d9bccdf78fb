"""matconvnet.io against damaged MAT files: random byte corruptions of real networks.

Each family runs a seeded loop of corruptions (bytes flipped, the file cut, ranges
overwritten with random bytes or zeros) of real MatConvNet files: the SimpleNN files of
../shared/data/matconvnet and the oracle's DagNN model files (MAT v5, as stored, and
inflated to uncompressed v5 so that the corruptions reach the element structure rather than
the zlib checksum), and MAT v7.3 copies of the small nets written with ``io.save``.  A case
passes when ``load_simplenn`` / ``load_dagnn`` either raises :class:`MatFileError` naming
the file, or returns a net that ``vl_simplenn`` (after ``vl_simplenn_tidy``) /
``DagNN.eval`` either evaluates on a small input or rejects with the blocks'
``ValueError``/``TypeError`` naming the layer.  Any other exception, a hang
(``signal.alarm``, per case) or a crash fails.  Cases run in-process; a hang inside
compiled code, which ``signal.alarm`` cannot interrupt, ends the process with a traceback
(``faulthandler``) instead of blocking the run.

Also: clear errors for a file that holds no network, DagNN layers of unknown classes,
SimpleNN layers without a required field, and the damaged files that crashed or hung the
previous readers (SciPy's, HDF5's global heap and variable-length types).
"""
from __future__ import annotations

import faulthandler
import signal
import struct
import subprocess
import sys
import time
import warnings
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
import torch

import matconvnet.io as mio
from matconvnet.dagnn import DagNN
from matconvnet.io import MatFileError
from matconvnet.simplenn import vl_simplenn, vl_simplenn_tidy

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
DATA = SHARED / "data" / "matconvnet"
MODELS = SHARED / "oracle" / "models"
CASES = 320             # per family
CASE_LIMIT = 20         # seconds per case (signal.alarm)
HARD_LIMIT = 120        # seconds per case before faulthandler ends the process
SEED = 20240611

needs_data = pytest.mark.skipif(not (DATA.is_dir() and MODELS.is_dir()),
                                reason="../shared/data/matconvnet or ../shared/oracle is absent")

# (file under DATA, input H x W): real SimpleNN nets, small enough to run per case
SIMPLENN = [("player-detection/net_stage_1.mat", (32, 14)),
            ("player-detection/net_stage_2.mat", (32, 14)),
            ("dcfnet/DCFNet-net-7-125-2.mat", (16, 16)),
            ("plate-chars/net-epoch-50.mat", (20, 20))]
# copied to v7.3 (h5py reads a file object by object: 10-70 ms a case, so the smaller nets)
V73_SIMPLENN = ("player-detection/net_stage_1.mat", "dcfnet/DCFNet-net-7-125-2.mat")
# (file under MODELS, input H x W): DagNN files saved by the original's DagNN.saveobj
DAGNN = [("cifar_lenet/dagnn_net.mat", (32, 32)),
         ("mnist_lenet_bnorm/dagnn_net.mat", (28, 28))]


# ----------------------------------------------------------------------------- corruptions


def inflate_v5(data: bytes) -> bytes:
    """A MAT v5 file with its compressed variables inflated: MATLAB's bytes, uncompressed
    (miCOMPRESSED elements replaced by the miMATRIX elements they hold)."""
    out, i = bytearray(data[:128]), 128
    while i + 8 <= len(data):
        mtype, n = struct.unpack("<II", data[i:i + 8])
        if mtype == 15:
            out += zlib.decompress(data[i + 8:i + 8 + n])
            i += 8 + n
        else:
            out += data[i:i + 8 + n + (-n % 8)]
            i += 8 + n + (-n % 8)
    return bytes(out)


OPS = ("flip", "truncate", "overwrite", "zero")


def corrupt(data: bytes, rng: np.random.Generator):
    """(damaged copy, operation): 1-8 bytes XORed with random non-zero bytes, the file cut
    at a random length, or a range of 1-64 bytes overwritten with random bytes or zeros."""
    out, n = bytearray(data), len(data)
    op = OPS[int(rng.integers(len(OPS)))]
    if op == "flip":
        for _ in range(int(rng.integers(1, 9))):
            out[int(rng.integers(n))] ^= int(rng.integers(1, 256))
    elif op == "truncate":
        out = out[:int(rng.integers(n))]
    else:
        a = int(rng.integers(n))
        b = min(n, a + int(rng.integers(1, 65)))
        out[a:b] = rng.bytes(b - a) if op == "overwrite" else bytes(b - a)
    return bytes(out), op


# ----------------------------------------------------------------------------- sources


def _simplenn_input(net, hw):
    c = next(l["weights"][0].shape[1] for l in net["layers"] if l["type"] == "conv")
    return torch.randn(1, c, *hw, generator=torch.Generator().manual_seed(0))


def _dagnn_input(net: DagNN, hw, channels):
    x = torch.randn(1, channels, *hw, generator=torch.Generator().manual_seed(0))
    return {net.layers[0].inputs[0]: x}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """family -> [(label, bytes, kind, input)]; kind 's' (SimpleNN) or 'd' (DagNN)."""
    if not (DATA.is_dir() and MODELS.is_dir()):
        pytest.skip("../shared/data/matconvnet or ../shared/oracle is absent")
    tmp = tmp_path_factory.mktemp("fuzz_sources")
    out = {"v5-simplenn": [], "v5-dagnn": [], "v7.3": []}
    for name, hw in SIMPLENN:
        data = (DATA / name).read_bytes()
        net = mio.load_simplenn(DATA / name)
        x = _simplenn_input(net, hw)
        out["v5-simplenn"] += [(name, data, "s", x),
                               (name + " (inflated)", inflate_v5(data), "s", x)]
        if name in V73_SIMPLENN:
            p = tmp / (Path(name).stem + "-73.mat")
            mio.save(p, net, format="v7.3")
            out["v7.3"].append((name + " (v7.3)", p.read_bytes(), "s", x))
    for name, hw in DAGNN:
        data = (MODELS / name).read_bytes()
        net = mio.load_dagnn(MODELS / name)
        x = _dagnn_input(net, hw, net.params[0].value.shape[1])
        out["v5-dagnn"].append((name, data, "d", x))
        if name.startswith("cifar"):
            out["v5-dagnn"].append((name + " (inflated)", inflate_v5(data), "d", x))
    # a small DagNN of a real net (the player detector, converted), dense in structure; the
    # oracle's DagNNs in v7.3 would take 70 ms a case (h5py reads object by object)
    dag = DagNN.from_simplenn(mio.load_simplenn(DATA / "player-detection/net_stage_2.mat"))
    x = _dagnn_input(dag, (32, 14), 3)
    for fmt, family in (("v6", "v5-dagnn"), ("v7.3", "v7.3")):
        p = tmp / f"player-dagnn-{fmt}.mat"
        mio.save_dagnn(p, dag, format=fmt)
        out[family].append((f"player detector as DagNN ({fmt})", p.read_bytes(), "d", x))
    return out


# ----------------------------------------------------------------------------- one case


class _CaseTimeout(BaseException):
    """Raised by the alarm; not an Exception, so that no handler of the readers (which turn
    library errors into MatFileError) can hide a hang."""


def _on_alarm(signum, frame):
    raise _CaseTimeout()


def run_case(path: Path, kind: str, x) -> str:
    """'loaded', 'rejected' (MatFileError), 'eval-rejected' (the blocks' errors); raises
    AssertionError describing anything else."""
    try:
        net = mio.load_simplenn(path) if kind == "s" else mio.load_dagnn(path)
    except MatFileError as e:
        assert str(e).startswith(f"{path}: "), f"MatFileError not naming the file: {e}"
        return "rejected"
    except _CaseTimeout:
        raise AssertionError(f"load did not return within {CASE_LIMIT} s") from None
    except Exception as e:
        raise AssertionError(f"load raised {type(e).__name__}: {e}") from e
    try:
        if kind == "s":
            layers = [l for l in net["layers"] if l["type"] not in ("softmaxloss", "loss")]
            res = vl_simplenn(vl_simplenn_tidy({"layers": layers, "meta": net.get("meta")}),
                              x.clone(), mode="test")
            assert torch.is_tensor(res[-1]["x"])
        else:
            net.mode = "test"
            net.eval({k: v.clone() for k, v in x.items()})
    except (ValueError, TypeError) as e:
        if type(e) not in (ValueError, TypeError):
            raise AssertionError(f"evaluation raised {type(e).__name__}: {e}") from e
        return "eval-rejected"
    except _CaseTimeout:
        raise AssertionError(f"evaluation did not return within {CASE_LIMIT} s") from None
    except Exception as e:
        raise AssertionError(f"evaluation raised {type(e).__name__}: {e}") from e
    return "loaded"


def _guarded(fn, *args):
    """fn(*args) under a per-case alarm (Linux) and faulthandler's hard limit."""
    use_alarm = hasattr(signal, "SIGALRM")
    if use_alarm:
        old = signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(CASE_LIMIT)
    faulthandler.dump_traceback_later(HARD_LIMIT, exit=True)
    try:
        return fn(*args)
    finally:
        faulthandler.cancel_dump_traceback_later()
        if use_alarm:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)


# ----------------------------------------------------------------------------- the fuzz loops


@needs_data
@pytest.mark.parametrize("family", ["v5-simplenn", "v5-dagnn", "v7.3"])
def test_random_corruptions(family, sources, tmp_path):
    rng = np.random.default_rng([SEED, ["v5-simplenn", "v5-dagnn", "v7.3"].index(family)])
    cases = sources[family]
    outcomes, failures, start = Counter(), [], time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unreadable-value warnings of damaged files
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for i in range(CASES):
                label, data, kind, x = cases[i % len(cases)]
                bad, op = corrupt(data, rng)
                path = tmp_path / f"case{i}.mat"
                path.write_bytes(bad)
                try:
                    outcomes[_guarded(run_case, path, kind, x)] += 1
                except AssertionError as e:
                    failures.append(f"case {i} ({label}, {op}): {e}")
                path.unlink()
        finally:
            torch.set_num_threads(torch_threads)
    elapsed = time.perf_counter() - start
    print(f"{family}: {CASES} cases in {elapsed:.1f} s: {dict(outcomes)}")
    assert not failures, f"{len(failures)} of {CASES} cases failed:\n" + "\n".join(failures[:10])
    # the corruptions reach both outcomes: damage found, and damage the net survives
    assert outcomes["rejected"] >= CASES // 10 and outcomes["loaded"] >= CASES // 20, outcomes


# ----------------------------------------------------------------------------- regressions


@needs_data
def test_damage_that_crashed_or_hung_the_previous_readers(tmp_path):
    """In a child process (a regression would crash or hang it): a v5 file SciPy's reader
    crashed on, and v7.3 files on which HDF5 loops forever (a zero-size object in a global
    heap collection) or crashes (an invalid variable-length datatype)."""
    stage1 = inflate_v5((DATA / "player-detection/net_stage_1.mat").read_bytes())
    bad = bytearray(stage1)
    bad[7840:7864] = bytes(24)  # a struct field's miMATRIX tag and flags zeroed
    (tmp_path / "v5.mat").write_bytes(bytes(bad))
    mio.save(tmp_path / "net73.mat", mio.load_simplenn(DATA / "player-detection/net_stage_1.mat"),
             format="v7.3")
    data = (tmp_path / "net73.mat").read_bytes()
    heap = data.index(b"GCOL\x01")
    bad = bytearray(data)
    bad[heap + 16:heap + 32] = bytes(16)  # first object: index 0, size 0
    (tmp_path / "heap.mat").write_bytes(bytes(bad))
    fields = data.index(b"MATLAB_fields\x00")
    vlen = data.index(b"\x19\x00\x00\x00\x10\x00\x00\x00", fields)
    bad = bytearray(data)
    bad[vlen + 1] = 0xBA  # variable-length type 10: neither sequence nor string
    (tmp_path / "vlen.mat").write_bytes(bytes(bad))
    script = (
        "import sys, matconvnet.io as mio\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        mio.load(p)\n"
        "        print(p, 'loaded')\n"
        "    except mio.MatFileError as e:\n"
        "        print(p, 'MatFileError', e)\n")
    files = [str(tmp_path / n) for n in ("v5.mat", "heap.mat", "vlen.mat")]
    r = subprocess.run([sys.executable, "-c", script, *files], capture_output=True, text=True,
                       timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 0, f"exit status {r.returncode}\n{r.stdout}\n{r.stderr[-2000:]}"
    lines = r.stdout.splitlines()
    assert len(lines) == 3 and all(" MatFileError " in l for l in lines), r.stdout
    assert "global heap collection" in lines[1] and "size 0" in lines[1]
    assert "MATLAB_fields has a datatype MATLAB does not write" in lines[2]


def test_absurd_sizes_are_refused_before_allocating(tmp_path):
    """A cell claiming 2^31 x 2^31 elements, and a compressed variable announcing 4 GB,
    fail at once (no allocation of what the file merely claims)."""
    path = tmp_path / "cell.mat"
    mio.save(path, {"c": [1.0, "a", [2.0, 3.0]]}, format="v6")
    data = bytearray(path.read_bytes())
    dims = data.index(struct.pack("<IIii", 5, 8, 1, 3))  # miINT32, 8 bytes, 1 x 3
    data[dims + 8:dims + 16] = struct.pack("<ii", 2 ** 31 - 1, 2 ** 31 - 1)
    path.write_bytes(bytes(data))
    start = time.perf_counter()
    with pytest.raises(MatFileError, match=r"cell array of size 2147483647 x 2147483647 "
                                           r"needs at least \d+ bytes"):
        mio.load(path)
    bomb = tmp_path / "bomb.mat"
    inner = struct.pack("<II", 14, 2 ** 32 - 8) + bytes(64)
    body = zlib.compress(inner)
    bomb.write_bytes(path.read_bytes()[:128] + struct.pack("<II", 15, len(body)) + body)
    with pytest.raises(MatFileError, match="announces 4294967288 bytes but holds 64"):
        mio.load(bomb)
    assert time.perf_counter() - start < 5


# ----------------------------------------------------------------------------- clear errors


def _every_type_net():
    from tests.io.test_mat import every_type_net
    return every_type_net()


def test_file_holding_no_network(tmp_path):
    path = tmp_path / "matrix.mat"
    sio.savemat(path, {"x": np.arange(12.0).reshape(3, 4)})
    assert mio.load(path)["x"].shape == (3, 4)  # load reads any MAT file
    with pytest.raises(MatFileError, match=rf"{path}: not a MatConvNet network file: .* found "
                                           rf"x \(3 x 4 float64\)"):
        mio.load_dagnn(path)
    with pytest.raises(MatFileError, match=rf"{path}: not a MatConvNet SimpleNN network file: "
                                           rf".* found x \(3 x 4 float64\)"):
        mio.load_simplenn(path)
    dag = tmp_path / "dag.mat"
    mio.save_dagnn(dag, DagNN.from_simplenn(_every_type_net_dagnn_part()))
    with pytest.raises(MatFileError, match="it holds a DagNN"):
        mio.load_simplenn(dag)


def _every_type_net_dagnn_part():
    net = _every_type_net()
    keep = ("conv", "pool", "relu", "bnorm", "softmax")
    layers = [l for l in net["layers"] if l["type"] in keep and l["name"] != "conv2"]
    layers[0] = dict(layers[0], weights=[torch.randn(3, 3, 3, 3), torch.zeros(3)], pad=1,
                     stride=1)
    return {"layers": layers, "meta": {}}


def test_dagnn_layers_of_unknown_classes_are_all_listed(tmp_path):
    dag = DagNN.from_simplenn(_every_type_net_dagnn_part())
    s = dag.to_struct()
    s["layers"][0]["type"] = "dagnn.MyConv"
    s["layers"][2]["type"] = "dagnn.Mystery"
    s["layers"][3]["type"] = "dagnn.MyConv"
    path = tmp_path / "unknown.mat"
    mio.save(path, s)
    names = [s["layers"][i]["name"] for i in (0, 2, 3)]
    with pytest.raises(MatFileError) as e:
        mio.load_dagnn(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: layers of unknown classes: ")
    assert f"dagnn.MyConv (layers {names[0]!r}, {names[2]!r})" in msg
    assert f"dagnn.Mystery (layer {names[1]!r})" in msg and "register_layer" in msg


@pytest.mark.parametrize("fmt", ["v7", "v7.3"])
@pytest.mark.parametrize("layer, field, message", [
    (0, "weights", r"net\.layers\{1\} \('conv1'\): missing required field 'weights' of a conv "
                   r"layer"),
    (2, "pool", r"net\.layers\{3\} \('pool1'\): missing required field 'pool' of a pool layer"),
    (5, "param", r"net\.layers\{6\} \('spnorm1'\): missing required field 'param' of a spnorm"),
    (7, "type", r"net\.layers\{8\} \('relu1'\): missing required field 'type'"),
])
def test_simplenn_layer_missing_a_required_field(tmp_path, fmt, layer, field, message):
    net = _every_type_net()
    del net["layers"][layer][field]
    path = tmp_path / "net.mat"
    mio.save(path, {"net": net}, format=fmt)
    with pytest.raises(MatFileError, match=rf"{path}: not a valid MatConvNet network: {message}"):
        mio.load(path)


def test_damaged_simplenn_fields_are_named(tmp_path):
    net = _every_type_net()
    net["layers"][0]["pad"] = [1.5, 1.0, 0.0, 0.0]
    net["layers"][6]["weights"] = net["layers"][6]["weights"][:1]
    path = tmp_path / "net.mat"
    mio.save(path, net)
    with pytest.raises(MatFileError, match=r"layers\{1\} \('conv1'\): field 'pad' must be whole "
                                           r"numbers from 0 to 2147483647, found"):
        mio.load(path)
    net = _every_type_net()
    net["layers"][6]["weights"] = net["layers"][6]["weights"][:1]
    mio.save(path, net)
    with pytest.raises(MatFileError, match=r"layers\{7\} \('bnorm1'\): a bnorm layer has 2 or 3 "
                                           r"numeric weights"):
        mio.load(path)


def test_dagnn_dangling_param_and_repeated_names(tmp_path):
    dag = DagNN.from_simplenn(_every_type_net_dagnn_part())
    s = dag.to_struct()
    s["layers"][0]["params"] = ["nope", s["layers"][0]["params"][1]]
    path = tmp_path / "dag.mat"
    mio.save(path, s)
    with pytest.raises(MatFileError, match=r"layers\{1\} \('conv1'\): uses params \['nope'\], "
                                           r"which are not in params"):
        mio.load_dagnn(path)
    s = dag.to_struct()
    s["vars"][1]["name"] = s["vars"][0]["name"]
    mio.save(path, s)
    with pytest.raises(MatFileError, match=r"vars\{2\} \('x0'\): the name 'x0' is used twice"):
        mio.load(path)


def _same(a, b, where="root"):
    """The neutral trees of the two v5 readers are equal (types, shapes, dtypes, values)."""
    import scipy.sparse as sp
    from matconvnet.io._values import Cell, Struct

    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, Struct):
        assert (a.fields, a.items.shape) == (b.fields, b.items.shape), where
        for idx in np.ndindex(*a.items.shape):
            for f in a.fields:
                _same(a.items[idx][f], b.items[idx][f], f"{where}{list(idx)}.{f}")
    elif isinstance(a, Cell):
        assert a.items.shape == b.items.shape, where
        for idx in np.ndindex(*a.items.shape):
            _same(a.items[idx], b.items[idx], f"{where}{{{list(idx)}}}")
    elif isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), f"{where}: {a.dtype}{a.shape}"
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), where
    elif sp.issparse(a):
        assert (a.dtype, a.shape) == (b.dtype, b.shape) and (a != b).nnz == 0, where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _every_class_file(path):
    """A MAT v5 file (written by SciPy) with a value of every class MatConvNet files hold."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    st = np.zeros((2, 3), dtype=[("a", object), ("b", object)])
    for i in range(2):
        for j in range(3):
            st[i, j]["a"] = rng.standard_normal((i + 1, j + 1))
            st[i, j]["b"] = f"s{i}{j}"
    cell = np.empty((1, 3), dtype=object)
    cell[0, 0], cell[0, 1], cell[0, 2] = np.array([[1, 2]], np.int16), "x", {"q": 1.0}
    values = {
        "d": rng.standard_normal((3, 4, 5)), "s": np.float32([[1.5, -2]]),
        "i8": np.int8([[-3, 4]]), "u8": np.arange(6, dtype=np.uint8).reshape(2, 3),
        "i64": np.int64([[-(2 ** 62)]]), "u64": np.uint64([[2 ** 64 - 1]]),
        "b": np.array([[True, False]]), "nan": np.array([[np.nan, np.inf, -0.0]]),
        "sd": sp.random(5, 4, density=0.3, random_state=1, format="csc"),
        "sb": sp.csc_matrix(np.eye(3, dtype=bool)), "ch": np.array(["abc", "def"]),
        "u": "h\u00e9llo \u20ac \U0001d11e", "e": "", "st": st, "cell": cell,
        "es": np.zeros((0, 0), dtype=[("a", object)]), "nf": {},
        "ec": np.zeros((0, 3), dtype=object), "nd": rng.standard_normal((2, 1, 3, 1, 2)),
    }
    sio.savemat(path, values, format="5", long_field_names=True, do_compression=True)


def test_v5_reader_gives_what_scipy_gave(tmp_path):
    """On valid files the pure-Python v5 reader returns exactly what the SciPy-based reader
    it replaced returned (the real MatConvNet files, the oracle's DagNN files, a file with
    every class, nets and checkpoints written by io.save in both v5 formats)."""
    from matconvnet.io import _mat5, mat

    files = [tmp_path / "classes.mat"]
    _every_class_file(files[0])
    for fmt in ("v6", "v7"):
        files.append(tmp_path / f"net-{fmt}.mat")
        mio.save(files[-1], {"net": _every_type_net(), "state": {"solverState": [[1.0]]},
                             "stats": {"train": [{"a": 1.0}, {"a": 2.0}]}}, format=fmt)
    if DATA.is_dir():
        files += sorted(DATA.glob("*/*.mat"))
    if MODELS.is_dir():
        files += sorted(MODELS.glob("*/dagnn_net.mat"))
    for f in files:
        ref = mat._read_scipy(str(f), "v5")
        got = _mat5.read(Path(f).read_bytes())
        assert list(got) == list(ref), f
        for k in ref:
            _same(got[k], ref[k], f"{Path(f).name}:{k}")


def test_v5_complex_values_keep_their_imaginary_part(tmp_path):
    path = tmp_path / "c.mat"
    sio.savemat(path, {"z": np.array([[1 + 2j, 3 - 1j]]), "w": np.complex64([[0.5j]])})
    got = mio.load(path)
    assert got["z"] == [1 + 2j, 3 - 1j] and got["w"] == 0.5j


def _be_element(mtype: int, data: bytes) -> bytes:
    """A big-endian data element: small (4-byte tag) when it fits, else padded to 8."""
    if len(data) <= 4 and mtype != 14:
        return struct.pack(">HH", len(data), mtype) + data.ljust(4, b"\0")
    return struct.pack(">II", mtype, len(data)) + data + bytes(-len(data) % 8)


def _be_matrix(mclass: int, dims, name: bytes, *parts: bytes) -> bytes:
    flags = _be_element(6, struct.pack(">II", mclass, 0))
    body = flags + _be_element(5, struct.pack(f">{len(dims)}i", *dims)) + \
        _be_element(1, name) + b"".join(parts)
    return _be_element(14, body)


def test_big_endian_v5_file(tmp_path):
    """MAT files written on big-endian machines ('MI'): numbers, UTF-16 characters, a
    struct with an int16 field."""
    header = b"MATLAB 5.0 MAT-file, big-endian test".ljust(116) + bytes(8) + b"\x01\x00MI"
    x = _be_matrix(6, (1, 2), b"x", _be_element(9, struct.pack(">dd", 1.5, -2.0)))
    c = _be_matrix(4, (1, 2), b"c", _be_element(4, "ab".encode("utf-16-be")))
    field = _be_matrix(10, (1, 1), b"", _be_element(3, struct.pack(">h", 7)))
    s = _be_matrix(2, (1, 1), b"s", _be_element(5, struct.pack(">i", 32)),
                   _be_element(1, b"f".ljust(32, b"\0")), field)
    path = tmp_path / "be.mat"
    path.write_bytes(header + x + c + s)
    assert mio.load(path) == {"x": [1.5, -2.0], "c": "ab", "s": {"f": 7}}
    path.write_bytes(header + x + c + s[:-12])
    with pytest.raises(MatFileError, match="announces .* bytes, .* are left"):
        mio.load(path)


def _v73_with_cells(path, links):
    """A v7.3 file of cells ``name -> [names it refers to]`` (all under #refs#, the first
    one also as the variable ``c``), with MATLAB's header."""
    h5py = pytest.importorskip("h5py")
    from matconvnet.io._hdf5 import header

    with h5py.File(path, "w", userblock_size=512, libver="earliest") as f:
        refs = f.create_group("#refs#")
        for name, targets in links.items():
            ds = refs.create_dataset(name, shape=(len(targets), 1), dtype=h5py.ref_dtype) \
                if targets else refs.create_dataset(name, data=np.array([1.0]))
            ds.attrs["MATLAB_class"] = np.bytes_(b"cell" if targets else b"double")
        for name, targets in links.items():
            for i, t in enumerate(targets):
                refs[name][i, 0] = refs[t].ref
        f["c"] = refs[next(iter(links))]
    with open(path, "r+b") as fh:
        fh.write(header())


def test_v73_cycles_and_shared_cells_are_refused(tmp_path):
    """References are object addresses, so a damaged one can point back to a cell that
    contains it (a cycle), or many can point to one cell (reading it again and again)."""
    path = tmp_path / "cycle.mat"
    _v73_with_cells(path, {"a": ["b"], "b": ["a"]})
    with pytest.raises(MatFileError, match=r"refers to a group or cell that contains it"):
        mio.load(path)
    # a chain of 30 cells each holding the next one twice: 2^30 reads if nothing stops it
    links = {f"n{i}": [f"n{i + 1}", f"n{i + 1}"] for i in range(30)}
    links["n30"] = []
    path = tmp_path / "diamonds.mat"
    _v73_with_cells(path, links)
    start = time.perf_counter()
    with pytest.raises(MatFileError, match=r"groups and cells referred to over and over"):
        mio.load(path)
    assert time.perf_counter() - start < 20
