"""matconvnet.geometry (manual, chapter 5): output sizes, receptive fields (filters, convt,
transposition, composition, overlay), Caffe pooling padding, vl_simplenn_display's geometry
against the original's output (oracle), and a brute-force check of composed receptive fields
on random chains of the real blocks (perturb one input pixel, see which outputs change)."""
import json
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

import matconvnet as mcn
from matconvnet import geometry as G
from matconvnet.geometry import RF
from tests import numerics as nm

D = torch.float64
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MANIFEST = SHARED / "oracle" / "manifest.json"


# ---------------------------------------------------------------------------- output sizes


def test_output_sizes_match_blocks():
    x = torch.zeros(1, 2, 13, 17, dtype=D)
    cases = [
        ("conv", dict(filter_size=(3, 4), pad=(1, 0, 2, 1), stride=(2, 3), dilate=(2, 1)),
         lambda: mcn.vl_nnconv(x, torch.zeros(3, 2, 3, 4, dtype=D), None,
                               pad=[1, 0, 2, 1], stride=[2, 3], dilate=[2, 1])),
        ("pool", dict(pool=(3, 2), pad=(2, 1, 0, 1), stride=2),
         lambda: mcn.vl_nnpool(x, [3, 2], pad=[2, 1, 0, 1], stride=2)),
        ("convt", dict(filter_size=(4, 3), upsample=(3, 2), crop=(1, 2, 0, 1)),
         lambda: mcn.vl_nnconvt(x, torch.zeros(2, 3, 4, 3, dtype=D), None,
                                upsample=[3, 2], crop=[1, 2, 0, 1])),
        ("relu", {}, lambda: mcn.vl_nnrelu(x)),
        ("spnorm", dict(param=[3, 4, 1, 0.5]), lambda: mcn.vl_nnspnorm(x, [3, 4, 1, 0.5])),
    ]
    for kind, options, block in cases:
        assert G.output_size(kind, (13, 17), **options) == tuple(block().shape[2:]), kind
    assert G.output_size("softmaxloss", (5, 6)) == (1, 1)
    assert G.conv_output_size(28, 5) == (24, 24)                   # LeNet's first layer
    assert G.pool_output_size((32, 32), 3, pad=(0, 1, 0, 1), stride=2) == (16, 16)
    assert G.convt_output_size((4, 5), 4, upsample=2, crop=1) == (8, 10)


def test_output_size_errors():
    with pytest.raises(ValueError, match="dilated filter extent"):
        G.conv_output_size((4, 4), 3, dilate=2)
    with pytest.raises(ValueError, match="smaller than the pool size"):
        G.pool_output_size((8, 8), 2, pad=2)
    with pytest.raises(ValueError, match="empty output"):
        G.convt_output_size((1, 1), 2, crop=1)
    with pytest.raises(TypeError, match="unexpected options"):
        G.output_size("conv", (8, 8), filter_size=3, upsample=2)
    with pytest.raises(ValueError, match="no output size rule"):
        G.output_size("roipool", (8, 8))


# ---------------------------------------------------------------------------- receptive fields


def test_rf_values():
    rf = RF(5, 2, 3.5)
    assert (rf.size, rf.stride, rf.offset) == (5, 2, Fraction(7, 2))
    assert isinstance(rf.offset, Fraction) and repr(rf) == "RF(size=5, stride=2, offset=7/2)"
    assert rf.window(1) == (Fraction(3, 2), Fraction(11, 2)) and rf.input_range(1) == (2, 5)
    assert rf.window(3) == (Fraction(11, 2), Fraction(19, 2))
    with pytest.raises(ValueError, match="size"):
        RF(0, 1, 1)
    with pytest.raises(ValueError, match="stride"):
        RF(1, -1, 1)
    with pytest.raises(TypeError):
        RF("3", 1, 1)


def test_filter_fields():
    # Manual 5.2: alpha = S, beta = (H' + 1) / 2 - P^-, delta = H'.
    y, x = G.receptive_field("conv", filter_size=(5, 4), pad=(2, 0, 1, 3), stride=(1, 3))
    assert y == RF(5, 1, 1) and x == RF(4, 3, Fraction(3, 2))
    # Dilation: the field spans the dilated extent (F - 1) D + 1.
    y, x = G.receptive_field("conv", filter_size=3, dilate=(2, 3), stride=2, pad=1)
    assert y == RF(5, 2, 2) and x == RF(7, 2, 3)
    assert G.receptive_field("pool", pool=(3, 2), pad=(0, 1, 1, 0), stride=2) == (
        RF(3, 2, 2), RF(2, 2, Fraction(1, 2)))
    assert G.receptive_field("conv") == (G.IDENTITY, G.IDENTITY)     # identity bank
    for kind in ("relu", "bnorm", "lrn", "normalize", "dropout", "sigmoid", "softmax"):
        assert G.receptive_field(kind) == (RF(1, 1, 1), RF(1, 1, 1))
    # spnorm: a centred window (even sizes extend one more sample down/right).
    assert G.receptive_field("spnorm", param=[3, 4, 1, 0.5]) == (
        RF(3, 1, 1), RF(4, 1, Fraction(3, 2)))
    with pytest.raises(ValueError, match="no sliding-window"):
        G.receptive_field("softmaxloss")


def test_convt_field_is_transposed_conv():
    # Manual 5.3: alpha = 1/U, beta = (2 C^- - H' + 1) / (2 U) + 1, delta = (H' - 1) / U + 1.
    for f, u, c in [(4, 2, 1), (3, 1, 0), (5, 3, 2), (2, 2, 0)]:
        rf = G.receptive_field("convt", filter_size=f, upsample=u, crop=(c, 0, c, 1))[0]
        assert rf == RF(Fraction(f - 1, u) + 1, Fraction(1, u), Fraction(2 * c - f + 1, 2 * u) + 1)
        conv = G.receptive_field("conv", filter_size=f, stride=u, pad=c)[0]
        assert rf == G.transpose(conv)
        # Its window is exact: input i and output i'' interact iff (5.5)
        # 1 + U (i - 1) - C^- <= i'' <= H' + U (i - 1) - C^-.
        for o in range(1, 12):
            lo, hi = rf.input_range(o)
            assert [i for i in range(-5, 15) if 1 + u * (i - 1) - c <= o <= f + u * (i - 1) - c] \
                == list(range(lo, hi + 1))


def test_transpose_compose_algebra():
    a, b, c = RF(5, 2, 2), RF(3, 3, Fraction(1, 2)), RF(Fraction(5, 2), Fraction(1, 2), 3)
    for rf in (a, b, c):
        assert G.transpose(G.transpose(rf)) == rf
        assert G.compose(rf, G.IDENTITY) == rf == G.compose(G.IDENTITY, rf)
    assert G.compose(a, b, c) == G.compose(G.compose(a, b), c) == G.compose(a, G.compose(b, c))
    # Manual 5.5, and window semantics: the composed window is the union of the inner windows.
    ab = G.compose(a, b)
    assert ab == RF(2 * (3 - 1) + 5, 6, 2 * (Fraction(1, 2) - 1) + 2)
    for i in range(1, 6):
        lo_b, hi_b = b.window(i)
        assert ab.window(i) == (a.window(lo_b)[0], a.window(hi_b)[1])
    # Pairs act per axis; a conv followed by its transpose has stride 1.
    conv = G.receptive_field("conv", filter_size=(3, 4), stride=(2, 3), pad=(1, 1, 0, 0))
    back = G.compose(conv, G.transpose(conv))
    assert [r.stride for r in back] == [1, 1]
    assert G.compose() == G.IDENTITY
    with pytest.raises(TypeError):
        G.compose(a, conv)


def test_overlay():
    # Manual 5.6: a = min of the first samples, b = max of the last; beta = (a+b)/2, delta = b-a+1.
    f, g = RF(3, 2, 2), RF(5, 2, 4)        # windows [1, 3] and [2, 6] for output 1
    h = G.overlay(f, g)
    assert h == RF(6, 2, Fraction(7, 2))
    for i in range(1, 5):
        assert h.window(i) == (min(f.window(i)[0], g.window(i)[0]),
                               max(f.window(i)[1], g.window(i)[1]))
    assert G.overlay(f, f) == f
    assert G.overlay((f, g), (g, f)) == (h, h)
    with pytest.raises(ValueError, match="not compatible.*strides 2 and 1"):
        G.overlay(f, RF(3, 1, 2))


# ---------------------------------------------------------------------------- Caffe pooling


def _caffe_max_pool(x, k, s, p):
    """Caffe's max pooling (pooling_layer.cpp): ceil-mode size, windows clipped to the image."""
    n, c, h, w = x.shape
    oh, ow = G.caffe_pool_output_size((h, w), k, s, p)
    y = torch.empty(n, c, oh, ow, dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * s - p, j * s - p
            r1, c1 = min(r0 + k, h + p, h), min(c0 + k, w + p, w)
            y[:, :, i, j] = x[:, :, max(r0, 0):r1, max(c0, 0):c1].amax(dim=(2, 3))
    return y


def test_caffe_pool_padding():
    assert G.caffe_pool_padding(3, 2, 0) == (0, 1, 0, 1)          # cifar_lenet's pools
    assert G.caffe_pool_padding(3, 1, 0) == (0, 0, 0, 0)          # ceil = floor when S = 1
    assert G.caffe_pool_padding((3, 2), (2, 3), (1, 0)) == (1, 2, 0, 1)
    assert G.caffe_pool_padding(2, 4, [1, 0, 1, 1]) == (1, 1, 1, 1)
    # The output sizes agree whenever S <= K (for every pad Caffe allows, P < K) ...
    for k in range(1, 6):
        for s in range(1, k + 1):
            for p in range(k):
                pad = G.caffe_pool_padding(k, s, p)
                for h in range(max(1, k - 2 * p), 24):
                    assert G.pool_output_size(h, k, pad, s)[0] == \
                        G.caffe_pool_output_size(h, k, s, p)[0], (h, k, s, p)
    # ... and with S > K Caffe can add a last window wholly outside the input.
    assert G.caffe_pool_output_size(2, 1, 2, 0)[0] == 2
    assert G.pool_output_size(2, 1, G.caffe_pool_padding(1, 2, 0), 2)[0] == 1
    # Max pooling then gives Caffe's values.
    torch.manual_seed(0)
    for h, w, k, s, p in [(7, 8, 3, 2, 0), (9, 6, 3, 2, 1), (10, 11, 4, 3, 1), (6, 6, 2, 2, 0)]:
        x = torch.randn(1, 2, h, w, dtype=D)
        y = mcn.vl_nnpool(x, k, stride=s, pad=G.caffe_pool_padding(k, s, p))
        assert torch.equal(y, _caffe_max_pool(x, k, s, p)), (h, w, k, s, p)


# ---------------------------------------------------------------------------- vl_simplenn_display


def _models():
    if not MANIFEST.is_file():
        return []
    return json.loads(MANIFEST.read_text())["models"]["models"]


def _weights(layer):
    """Zero weights in the Python layout from MatConvNet's weights_size (H x W x C x K)."""
    out = []
    for j, size in enumerate(layer.get("weights_size", [])):
        if math.prod(size) == 0:
            out.append(torch.zeros(0))
        elif j == 0 and layer["type"] in ("conv", "convt"):
            size = list(size) + [1] * (4 - len(size))
            out.append(torch.zeros(size[3], size[2], size[0], size[1]))
        else:
            out.append(torch.zeros(size[0]) if size[1] == 1 else torch.zeros(size))
    return out


def _layer_dicts(entry):
    layers = []
    for ly in entry["layers"]:
        d = {k: v for k, v in ly.items() if k not in ("index", "weights_size")}
        if "weights_size" in ly:
            d["weights"] = _weights(ly)
        layers.append(d)
    return layers


@pytest.mark.parametrize("entry", _models(), ids=lambda e: e["name"])
def test_simplenn_geometry_matches_oracle(entry):
    layers = _layer_dicts(entry)
    call = entry["display"]["call"]
    input_size = [int(v) for v in re.search(r"'inputSize',\s*\[([\d\s]+)\]", call).group(1).split()]
    info = G.simplenn_geometry(layers, input_size).info()
    expected = entry["display"]["info"]
    assert set(info) == set(expected)
    for name in expected:
        assert info[name] == expected[name], name
    # For these conv/pool chains the manual's composition gives the same fields.
    geo = G.simplenn_geometry({"layers": layers}, input_size)
    fields = G.chain_receptive_fields([ly for ly in layers if ly["type"] not in G.LOSS_TYPES])
    for l, (ry, rx) in enumerate(fields):
        assert (ry.size, rx.size) == geo.receptive_field_size[l]
        assert (ry.offset, rx.offset) == geo.receptive_field_offset[l]
        assert (ry.stride, rx.stride) == geo.receptive_field_stride[l]


def test_simplenn_geometry_quirks():
    f = torch.zeros(8, 3, 3, 5)
    layers = [
        {"type": "conv", "weights": [f, torch.zeros(8)], "pad": [1, 1, 2, 2], "stride": [2, 1],
         "dilate": [2, 1]},
        {"type": "convt", "weights": [torch.zeros(8, 4, 4, 4), torch.zeros(4)], "upsample": 2,
         "crop": 1, "numGroups": 1},
        {"type": "pool", "pool": 2, "stride": 2, "pad": 0, "method": "avg"},
        {"type": "conv", "weights": [torch.zeros(0), torch.zeros(0)], "pad": 0, "stride": 1,
         "dilate": 1},
        {"type": "custom", "getForwardSize": lambda ly, sz: [sz[0], sz[1], 7, sz[3]]},
        {"type": "custom"},
        {"type": "softmaxloss"},
    ]
    geo = G.simplenn_geometry(layers, [20, 21, 3])
    assert geo.support == ((5, 5), (1, 1), (2, 2), (1, 1), (1, 1), (1, 1), (1, 1))
    assert geo.stride[:3] == ((2, 1), (1, 1), (2, 2)) and geo.pad[0] == (1, 1, 2, 2)
    # convt counts as a 1 x 1 filter in the original display: no upsampling, same size.
    assert geo.receptive_field_size[:3] == ((5, 5), (5, 5), (7, 6))
    assert geo.receptive_field_offset[:3] == ((2.0, 1.0), (2.0, 1.0), (3.0, 1.5))
    assert geo.receptive_field_stride[-1] == (4, 2)
    assert geo.data_size[0] == (20, 21, 3, 1)            # batch size defaults to 1
    assert geo.data_size[1] == (9, 21, 8, 1) and geo.data_size[2] == (9, 21, 8, 1)
    assert geo.data_size[3] == (4, 10, 8, 1)
    assert geo.data_size[4] == (4, 10, 1, 1)             # empty bank: size([], 4) = 1
    assert geo.data_size[5] == (4, 10, 7, 1)             # getForwardSize
    assert math.isnan(geo.data_size[6][2])               # custom: unknown depth
    assert geo.data_size[7] == (4, 10, 1, 1)             # loss: depth and number 1
    unknown = G.simplenn_geometry(layers[:1]).data_size
    assert all(math.isnan(v) for v in unknown[1][:2]) and unknown[1][2:] == (8, 1)
    assert G.simplenn_geometry([]).info()["support"] == [[], []]
    # The manual's field of the same convt is its transposed conv.
    ry, _ = G.chain_receptive_fields(layers[:2])[1]
    assert ry == G.compose(RF(5, 2, 2), G.transpose(RF(4, 2, Fraction(5, 2) - 1)))


# ---------------------------------------------------------------------------- brute force

_TRIES = 50


def _random_layer(rng, size):
    """A random conv / pool / convt / relu layer valid on a ``size`` input, and its output size
    (None if the draw is not valid there)."""
    kind = rng.choice(["conv", "pool", "convt", "relu"], p=[0.4, 0.25, 0.25, 0.1])
    c = 2
    if kind == "conv":
        fh, fw = rng.integers(1, 5, size=2)
        layer = {"type": "conv", "weights": [torch.empty(c, c, fh, fw, dtype=D), None],
                 "pad": [int(v) for v in rng.integers(0, 3, size=4)],
                 "stride": [int(v) for v in rng.choice([1, 1, 2, 3], size=2)],
                 "dilate": [int(v) for v in rng.integers(1, 3, size=2)]}
    elif kind == "pool":
        ph, pw = (int(v) for v in rng.integers(1, 5, size=2))
        layer = {"type": "pool", "pool": [ph, pw], "method": str(rng.choice(["max", "avg"])),
                 "pad": [int(rng.integers(0, ph)), int(rng.integers(0, ph)),
                         int(rng.integers(0, pw)), int(rng.integers(0, pw))],
                 "stride": [int(v) for v in rng.choice([1, 1, 2, 3], size=2)]}
    elif kind == "convt":
        uy, ux = (int(v) for v in rng.integers(1, 4, size=2))
        fh, fw = uy + int(rng.integers(0, 3)), ux + int(rng.integers(0, 3))   # F >= U
        layer = {"type": "convt", "weights": [torch.empty(c, c, fh, fw, dtype=D), None],
                 "upsample": [uy, ux], "numGroups": 1,
                 "crop": [int(rng.integers(0, fh)), int(rng.integers(0, fh)),
                          int(rng.integers(0, fw)), int(rng.integers(0, fw))]}
    else:
        layer = {"type": "relu", "leak": 0}
    try:
        out = G.layer_output_size(layer, size)
    except ValueError:
        return layer, None
    return layer, (out if max(out) <= 40 else None)


def _random_chain(rng):
    while True:
        size = tuple(int(v) for v in rng.integers(10, 25, size=2))
        sizes, layers = [size], []
        for _ in range(int(rng.integers(1, 5))):
            for _ in range(_TRIES):
                layer, out = _random_layer(rng, sizes[-1])
                if out is not None:
                    break
            else:
                break
            layers.append(layer)
            sizes.append(out)
        if layers:
            for ly in layers:          # all-positive filters: no cancellation, no masking
                if ly["type"] in ("conv", "convt"):
                    ly["weights"][0] = torch.from_numpy(
                        rng.uniform(0.5, 1.5, size=tuple(ly["weights"][0].shape)))
            return layers, sizes


def _run(layers, x):
    for ly in layers:
        if ly["type"] == "conv":
            x = mcn.vl_nnconv(x, ly["weights"][0], None, pad=ly["pad"], stride=ly["stride"],
                              dilate=ly["dilate"])
        elif ly["type"] == "convt":
            x = mcn.vl_nnconvt(x, ly["weights"][0], None, upsample=ly["upsample"],
                               crop=ly["crop"])
        elif ly["type"] == "pool":
            x = mcn.vl_nnpool(x, ly["pool"], method=ly["method"], pad=ly["pad"],
                              stride=ly["stride"])
        else:
            x = mcn.vl_nnrelu(x)
    return x


def _windows(rf, n):
    """1-based window bounds (as fractions) of outputs 1..n."""
    return [rf.window(i) for i in range(1, n + 1)]


def _inside(rf, n_in, n_out):
    """inside[u, i]: input sample u+1 lies in the window of output i+1."""
    return torch.tensor([[lo <= u <= hi for (lo, hi) in _windows(rf, n_out)]
                         for u in range(1, n_in + 1)])


def _interior(layers, sizes, axis):
    """Outputs whose window stays inside every intermediate map (no padding, no crop effects)."""
    n_out = sizes[-1][axis]
    ok = [True] * n_out
    for k in range(len(layers)):
        rf = G.compose(*[G.layer_receptive_field(ly)[axis] for ly in layers[k:]])
        for i, (lo, hi) in enumerate(_windows(rf, n_out)):
            ok[i] = ok[i] and lo >= 1 and hi <= sizes[k][axis]
    return ok


def _slack(layers, axis):
    """How far inside the composed window the true dependencies may end: each convt rounds by
    less than one of its input samples, (U - 1) / U, scaled by the stride of the layers below."""
    slack, below = Fraction(0), G.IDENTITY
    for ly in layers:
        rf = G.layer_receptive_field(ly)[axis]
        if ly["type"] == "convt":
            u = 1 / rf.stride
            slack += below.stride * (u - 1) / u
        below = G.compose(below, rf)
    return slack


def _extent(dep, axis):
    """dep: H x W x Ho x Wo; first and last input sample (1-based) along ``axis`` on which each
    output depends (+inf / -inf where it depends on none)."""
    along = dep.any(dim=1 - axis)                                   # n_in x Ho x Wo
    idx = torch.arange(1, along.shape[0] + 1, dtype=D).view(-1, 1, 1)
    first = torch.where(along, idx, torch.tensor(math.inf, dtype=D)).amin(dim=0)
    last = torch.where(along, idx, torch.tensor(-math.inf, dtype=D)).amax(dim=0)
    return first, last


def _dependencies(layers, sizes, rng):
    """dep[u, v, i, j]: output (i, j) changes when input pixel (u, v) (all channels) is
    perturbed from zero; also checks that perturbing a random positive input changes a subset
    (max pooling may mask a change, nothing else may)."""
    (h, w), (ho, wo) = sizes[0], sizes[-1]
    onehot = torch.eye(h * w, dtype=D).view(h * w, 1, h, w).expand(h * w, 2, h, w)
    base = torch.from_numpy(rng.uniform(0, 1, size=(1, 2, h, w)))
    from_zero = _run(layers, onehot)
    assert tuple(from_zero.shape[2:]) == (ho, wo)
    dep = (from_zero != 0).any(dim=1).view(h, w, ho, wo)
    changed = (_run(layers, base + onehot) != _run(layers, base)).any(dim=1).view(h, w, ho, wo)
    assert not (changed & ~dep).any()
    return dep


def _check_exact(layer, sizes, dep, rfs):
    """One layer: for outputs inside the maps, the window's integers are exactly the
    dependencies (every D-th one for a dilated conv).  Returns the number of rows/columns."""
    count = 0
    for axis, rf in enumerate(rfs):
        along = dep.any(dim=1 - axis).any(dim=2 - axis)             # n_in x n_out
        step = layer.get("dilate", [1, 1])[axis]
        for i in (i for i, ok in enumerate(_interior([layer], sizes, axis)) if ok):
            a, b = rf.input_range(i + 1)
            expect = torch.zeros(sizes[0][axis], dtype=torch.bool)
            expect[a - 1:b:step] = True
            assert torch.equal(along[:, i], expect), (layer, axis, i)
            count += 1
    return count


def _f(*shape):
    return torch.ones(*shape, dtype=D)


@pytest.mark.parametrize("layer", [
    {"type": "conv", "weights": [_f(2, 2, 3, 2)], "pad": [1, 0, 2, 1], "stride": [2, 1],
     "dilate": [3, 2]},
    {"type": "conv", "weights": [_f(2, 2, 1, 4)], "pad": 0, "stride": [1, 3], "dilate": [1, 1]},
    {"type": "pool", "pool": [3, 2], "pad": [2, 1, 1, 0], "stride": [2, 3], "method": "max"},
    {"type": "convt", "weights": [_f(2, 2, 4, 3)], "upsample": [2, 3], "crop": [1, 2, 0, 2]},
    {"type": "convt", "weights": [_f(2, 2, 5, 1)], "upsample": [3, 1], "crop": [4, 0, 0, 0]},
    {"type": "convt", "weights": [_f(2, 2, 2, 3)], "upsample": [1, 2], "crop": 0},
], ids=["conv-dilated", "conv-strided", "pool", "convt", "convt-crop", "convt-2"])
def test_single_layer_fields_are_exact(layer):
    sizes = [(9, 8)]
    sizes.append(G.layer_output_size(layer, sizes[0]))
    with nm.single_thread():
        dep = _dependencies([layer], sizes, np.random.default_rng(0))
    assert _check_exact(layer, sizes, dep, G.layer_receptive_field(layer)) >= 6


def test_brute_force_receptive_fields():
    rng = np.random.default_rng(7)
    checked = {"chains": 0, "interior": 0, "tight": 0, "convt": 0, "exact": 0}
    with nm.single_thread():
        for _ in range(30):
            layers, sizes = _random_chain(rng)
            (h, w), (ho, wo) = sizes[0], sizes[-1]
            ry, rx = G.chain_receptive_fields(layers)[-1]
            # Perturb one pixel (all channels) per batch element: the outputs that change.
            dep = _dependencies(layers, sizes, rng)
            # 1. Containment: every dependency lies in the composed window.
            window = _inside(ry, h, ho).view(h, 1, ho, 1) & _inside(rx, w, wo).view(1, w, 1, wo)
            assert not (dep & ~window).any(), layers
            # 2. Tightness, for outputs whose windows stay inside every map: the first and last
            #    dependencies are the window's ends (exactly, for chains of conv and pool).
            for axis, rf, n_out in ((0, ry, ho), (1, rx, wo)):
                interior = torch.tensor(_interior(layers, sizes, axis))
                other = torch.tensor(_interior(layers, sizes, 1 - axis))
                mask = (interior.view(-1, 1) & other.view(1, -1)) if axis == 0 else \
                    (other.view(-1, 1) & interior.view(1, -1))
                if not mask.any():
                    continue
                first, last = _extent(dep, axis)
                lo = torch.tensor([float(a) for a, _ in _windows(rf, n_out)], dtype=D)
                hi = torch.tensor([float(b) for _, b in _windows(rf, n_out)], dtype=D)
                lo, hi = (lo.view(-1, 1), hi.view(-1, 1)) if axis == 0 else \
                    (lo.view(1, -1), hi.view(1, -1))
                slack = float(_slack(layers, axis))
                f, l = first[mask], last[mask]
                lo, hi = lo.expand_as(first)[mask], hi.expand_as(first)[mask]
                assert bool((f >= lo).all() and (l <= hi).all())
                assert bool((f - lo <= slack + 1e-9).all() and (hi - l <= slack + 1e-9).all()), \
                    (layers, slack)
                checked["interior"] += int(mask.sum())
                if slack == 0:
                    checked["tight"] += 1
                    assert torch.equal(f, lo) and torch.equal(l, hi)
            # 3. One layer: the window holds exactly the dependencies (the dilated taps).
            if len(layers) == 1:
                checked["exact"] += _check_exact(layers[0], sizes, dep, (ry, rx))
            checked["chains"] += 1
            checked["convt"] += any(ly["type"] == "convt" for ly in layers)
    assert checked["chains"] == 30 and checked["convt"] >= 5
    assert checked["tight"] >= 10 and checked["interior"] >= 300 and checked["exact"] >= 50, checked
