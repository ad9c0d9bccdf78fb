"""DagNN layer classes (matconvnet.dagnn.layers): each layer against its block and the
SimpleNN layer of the same type, float64 numerical derivatives of the layers with their
own arithmetic, output sizes against actual outputs, receptive fields against
matconvnet.geometry, properties (defaults, MatConvNet's setters, save/load, unknown
names) and the registry.  No DagNN object is needed: a stub with ``mode``, ``params`` and
``layers`` stands in for the network."""
import math
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import matconvnet as mcn
from matconvnet import geometry as G
from matconvnet.dagnn import layers as L
from matconvnet.simplenn import vl_simplenn
from tests import numerics as nm

D = torch.float64
NAN = float("nan")



# ----------------------------------------------------------------------------- helpers


def stub_net(layer, mode="normal", inputs=("x",), outputs=("y",), params=()):
    """Attach ``layer`` as layer 0 of a stub network; return the stub."""
    net = SimpleNamespace(
        mode=mode,
        layers=[SimpleNamespace(name="l", inputs=list(inputs), outputs=list(outputs),
                                params=list(params), block=layer)],
        params=[SimpleNamespace(name=p, value=None, der=None, train_method="gradient",
                                learning_rate=1.0, weight_decay=1.0) for p in params])
    layer.attach(net, 0)
    return net


def simplenn(layer_dict, x, dzdy, mode="normal"):
    """(y, dzdx, dzdw) of a one-layer SimpleNN network."""
    res = vl_simplenn({"layers": [layer_dict], "meta": {}}, x, dzdy, mode=mode)
    return res[1]["x"], res[0]["dzdx"], res[0]["dzdw"]


def close(got, expected, rtol=1e-12, what=""):
    nm.assert_close(got, expected, rtol=rtol, what=what)


def size_of(t):
    """A tensor's shape as an (N, C, H, W) size (trailing ones added)."""
    s = tuple(t.shape)
    return s + (1,) * (4 - len(s))


# ----------------------------------------------------------------------------- registry


ALL_CLASSES = ["AffineGridGenerator", "BatchNorm", "BilinearSampler", "Concat", "Conv",
               "ConvTranspose", "Crop", "DropOut", "LRN", "Loss", "LossSmoothL1", "NormOffset",
               "PDist", "Pooling", "ROIPooling", "ReLU", "Scale", "Sigmoid", "SoftMax",
               "SpatialNorm", "Sum", "UniformScalingGridGenerator"]


def test_every_class_is_registered_under_its_matconvnet_name():
    for name in ALL_CLASSES:
        cls = getattr(L, name)
        assert cls.type_name == f"dagnn.{name}"
        assert L.LAYER_CLASSES[cls.type_name] is cls
        assert L.layer_class(cls.type_name) is cls
        assert issubclass(cls, L.Layer)
    with pytest.raises(ValueError, match="dagnn.Nope"):
        L.layer_class("dagnn.Nope")


def test_class_hierarchy_is_matconvnets():
    for name in ("Conv", "Pooling"):
        assert issubclass(getattr(L, name), L.Filter)
    for name in ("BatchNorm", "Concat", "Crop", "DropOut", "LRN", "Loss", "NormOffset", "ReLU",
                 "Scale", "Sigmoid", "SoftMax", "SpatialNorm", "Sum"):
        assert issubclass(getattr(L, name), L.ElementWise)
    assert issubclass(L.PDist, L.Loss) and issubclass(L.LossSmoothL1, L.Loss)


def test_register_layer_for_a_user_class():
    @L.register_layer
    class Double(L.ElementWise):
        PROPERTIES = {"factor": 2}

        def forward(self, inputs, params):
            return [inputs[0] * self.factor]

        def backward(self, inputs, params, der_outputs, outputs=None):
            return [der_outputs[0] * self.factor], []

    try:
        assert Double.type_name == "Double"
        assert L.LAYER_CLASSES["Double"] is Double
        layer = L.layer_class("Double").load({"factor": 3})
        x = torch.ones(1, 2, 3, 3)
        close(layer.forward([x], [])[0], 3 * x)
        assert layer.save() == {"factor": 3}
        assert layer.get_output_sizes([(1, 2, 3, 3)]) == [(1, 2, 3, 3)]
        with pytest.raises(TypeError, match="'fator'"):
            Double(fator=1)

        @L.register_layer
        class MyConv(L.Conv):  # a named subclass inherits and extends the properties
            type_name = "mynet.MyConv"
            PROPERTIES = {"gain": 1.0, "hasBias": False}

        layer = MyConv(size=[3, 3, 1, 2], gain=2.0)
        assert L.LAYER_CLASSES["mynet.MyConv"] is MyConv
        saved = layer.save()
        assert list(saved) == ["gain", "hasBias", "size", "opts", "pad", "stride", "dilate"]
        assert saved["hasBias"] is False and saved["size"] == [3, 3, 1, 2]
    finally:
        L.LAYER_CLASSES.pop("Double", None)
        L.LAYER_CLASSES.pop("mynet.MyConv", None)
    with pytest.raises(TypeError):
        L.register_layer(int)


# ----------------------------------------------------------------------------- properties


def test_defaults_are_matconvnets():
    assert L.Conv().save() == {"size": [0, 0, 0, 0], "hasBias": True, "opts": ["cuDNN"],
                               "pad": [0, 0, 0, 0], "stride": [1, 1], "dilate": [1, 1]}
    assert L.ConvTranspose().save() == {"size": [0, 0, 0, 0], "hasBias": True,
                                        "upsample": [1, 1], "crop": [0, 0, 0, 0],
                                        "numGroups": 1, "opts": ["cuDNN"]}
    assert L.Pooling().save() == {"method": "max", "poolSize": [1, 1], "opts": ["cuDNN"],
                                  "pad": [0, 0, 0, 0], "stride": [1, 1], "dilate": [1, 1]}
    assert L.BatchNorm().save() == {"numChannels": None, "epsilon": 1e-5, "opts": ["NoCuDNN"]}
    assert L.ReLU().save() == {"useShortCircuit": True, "leak": 0, "opts": []}
    assert L.DropOut().save() == {"rate": 0.5, "frozen": False}
    assert L.LRN().save() == {"param": [5, 1, 0.0001 / 5, 0.75]}
    assert L.SpatialNorm().save() == {"param": [2, 2, 10, 2]}
    assert L.NormOffset().save() == {"param": [1, 0.5]}
    assert L.Concat().save() == {"dim": 3}
    assert L.Crop().save() == {"crop": [0, 0]}
    assert L.Loss().save() == {"loss": "softmaxlog", "ignoreAverage": False, "normalise": True,
                               "opts": []}
    assert L.PDist().save() == {"p": 2, "aggregate": True, "noRoot": False, "epsilon": 1e-6,
                                "loss": "pdist", "ignoreAverage": False, "normalise": True,
                                "opts": []}
    assert L.LossSmoothL1().save()["sigma"] == 1.0 and L.LossSmoothL1().loss == "smoothl1"
    assert L.ROIPooling().save() == {"method": "max", "subdivisions": [6, 6], "transform": 1,
                                     "flatten": False}
    assert L.Scale().save() == {"size": None, "hasBias": True}
    assert L.Sum().save() == {} and L.Sigmoid().save() == {} and L.SoftMax().save() == {}
    assert L.BilinearSampler().save() == {}
    assert L.AffineGridGenerator().save() == {"Ho": 0, "Wo": 0}
    assert L.UniformScalingGridGenerator().save() == {"Ho": 0, "Wo": 0}


def test_setters_normalise_as_matconvnets():
    c = L.Conv(size=[3, 3], pad=1, stride=2, dilate=3)
    assert c.size == [3, 3, 1, 1] and c.pad == [1, 1, 1, 1]
    assert c.stride == [2, 2] and c.dilate == [3, 3]
    c.pad = [1, 2]
    assert c.pad == [1, 1, 2, 2]
    c.pad = np.array([[1.0, 2.0, 3.0, 4.0]])      # as read from a .mat file
    assert c.pad == [1, 2, 3, 4] and all(isinstance(v, int) for v in c.pad)
    c.size = torch.tensor([5, 5, 3])
    assert c.size == [5, 5, 3, 1]
    t = L.ConvTranspose(crop=[1, 2], upsample=2, size=[4, 4, 3])
    assert t.crop == [1, 1, 2, 2] and t.upsample == [2, 2] and t.size == [4, 4, 3, 1]
    assert L.Pooling(pad=1, stride=2).pad == [1, 1, 1, 1]
    assert L.Scale(size=[1, 1, 5]).size == [1, 1, 5, 1]
    with pytest.raises(ValueError, match="pad"):
        L.Conv(pad=[1, 2, 3])
    with pytest.raises(ValueError, match="stride"):
        L.Conv(stride=0)
    with pytest.raises(ValueError, match="dim"):
        L.Concat(dim=5)


def test_unknown_property_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="'hasbias'"):
        L.Conv(hasbias=False)
    with pytest.raises(TypeError, match="'numChannel'"):
        L.BatchNorm.load({"numChannel": 3})
    with pytest.raises(TypeError, match="'moments'"):   # transient: not a property
        L.BatchNorm(moments=None)


# constructor arguments (all different from the defaults) for the save/load round trip
ROUND_TRIP = {
    "Conv": dict(size=[3, 5, 2, 4], hasBias=False, opts=["NoCuDNN"], pad=[1, 2, 0, 1],
                 stride=[2, 1], dilate=[1, 2]),
    "ConvTranspose": dict(size=[4, 4, 3, 6], hasBias=False, upsample=[2, 3], crop=[1, 1, 0, 2],
                          numGroups=2, opts=[]),
    "Pooling": dict(method="avg", poolSize=[3, 2], pad=[1, 1, 0, 0], stride=2, opts=[]),
    "BatchNorm": dict(numChannels=7, epsilon=1e-3, opts=["cuDNN"]),
    "BilinearSampler": dict(),
    "Concat": dict(dim=4),
    "Crop": dict(crop=[2, 3]),
    "DropOut": dict(rate=0.25, frozen=True),
    "LRN": dict(param=[3, 2, 0.5, 0.25]),
    "Loss": dict(loss="topkerror", ignoreAverage=True, normalise=False, opts=["topK", 2]),
    "NormOffset": dict(param=[2, 0.25]),
    "PDist": dict(p=1, aggregate=False, noRoot=True, epsilon=1e-4),
    "ROIPooling": dict(method="avg", subdivisions=[3, 2], transform=[0.5, 0.25], flatten=True),
    "ReLU": dict(useShortCircuit=False, leak=0.1, opts=["leak", 0.2]),
    "Scale": dict(size=[1, 1, 3], hasBias=False),
    "Sigmoid": dict(),
    "SoftMax": dict(),
    "SpatialNorm": dict(param=[3, 3, 2, 0.5]),
    "Sum": dict(),
    "AffineGridGenerator": dict(Ho=5, Wo=7),
    "UniformScalingGridGenerator": dict(Ho=3, Wo=4),
    "LossSmoothL1": dict(sigma=3.0, ignoreAverage=True),
}


@pytest.mark.parametrize("name", ALL_CLASSES)
def test_save_load_round_trip(name):
    cls = getattr(L, name)
    layer = cls(**ROUND_TRIP[name])
    saved = layer.save()
    assert set(saved) == set(cls.properties())
    again = L.layer_class(cls.type_name).load(saved)
    assert type(again) is cls and again.save() == saved
    pairs = [v for kv in saved.items() for v in kv]  # MatConvNet's {'name', value, ...}
    assert cls.load(pairs).save() == saved
    for k, v in ROUND_TRIP[name].items():
        if k not in ("pad", "stride", "size", "upsample", "crop"):
            assert saved[k] == v, k
    scratch = layer.save()                    # save() returns copies
    for v in scratch.values():
        if isinstance(v, list):
            v.append("mutated")
    assert layer.save() == saved


def test_concat_load_ignores_legacy_num_inputs():
    assert L.Concat.load({"dim": 3, "numInputs": 2}).save() == {"dim": 3}


def test_pdist_and_smoothl1_set_their_loss_name():
    assert L.PDist.load({"loss": "softmaxlog"}).loss == "pdist"
    assert L.LossSmoothL1.load({}).loss == "smoothl1"


def test_block_options():
    assert L.block_options(["cuDNN"], "conv") == {"cudnn": True}
    assert L.block_options(["NoCuDNN", "CudnnWorkspaceLimit", 1024, "Verbose"], "conv") \
        == {"cudnn": False}   # MEX blocks ignore options they do not know
    assert L.block_options(["NoDerFilters"], "conv") == {"no_der_filters": True}
    assert L.block_options(["topK", 3, "InstanceWeights", 2.0], "loss") \
        == {"top_k": 3, "instance_weights": 2.0}
    assert L.block_options({"top_k": 3, "normalise": False}, "loss") \
        == {"top_k": 3, "normalise": False}
    assert L.block_options(np.array(["leak", 0.5], dtype=object), "relu") == {"leak": 0.5}
    assert L.block_options([], "loss") == {} and L.block_options(None, "pool") == {}
    with pytest.raises(TypeError, match="'tpoK'"):
        L.block_options(["tpoK", 3], "loss")
    with pytest.raises(ValueError, match="no value"):
        L.block_options(["topK"], "loss")


# ----------------------------------------------------------------------------- filters


def test_conv_is_vl_nnconv_and_the_simplenn_layer():
    x, f, b = nm.randn(2, 3, 7, 6), nm.randn(4, 3, 3, 2), nm.randn(4)
    layer = L.Conv(size=[3, 2, 3, 4], pad=[1, 0, 2, 1], stride=[2, 1], dilate=[1, 2])
    kw = dict(pad=[1, 0, 2, 1], stride=[2, 1], dilate=[1, 2])
    y = layer.forward([x], [f, b])[0]
    close(y, mcn.vl_nnconv(x, f, b, **kw))
    dzdy = nm.randn(*y.shape)
    (dx,), (df, db) = layer.backward([x], [f, b], [dzdy])
    rx, rf, rb = mcn.vl_nnconv(x, f, b, dzdy, **kw)
    close(dx, rx), close(df, rf), close(db, rb)
    sy, sdx, sdw = simplenn({"type": "conv", "weights": [f, b], **kw}, x, dzdy)
    close(y, sy), close(dx, sdx), close(df, sdw[0]), close(db, sdw[1])


def test_conv_without_bias():
    x, f, b = nm.randn(2, 3, 5, 5), nm.randn(4, 3, 3, 3), nm.randn(4)
    layer = L.Conv(size=[3, 3, 3, 4], hasBias=False)
    close(layer.forward([x], [f])[0], mcn.vl_nnconv(x, f, None))
    close(layer.forward([x], [f, b])[0], mcn.vl_nnconv(x, f, None))   # b ignored
    dzdy = nm.randn(2, 4, 3, 3)
    dins, dpars = layer.backward([x], [f], [dzdy])
    assert len(dins) == 1 and len(dpars) == 1
    dins, dpars = layer.backward([x], [f, b], [dzdy])
    assert len(dpars) == 2 and dpars[1] is None


def test_conv_opts_reach_the_block():
    x, f = nm.randn(1, 2, 4, 4), nm.randn(3, 2, 2, 2)
    layer = L.Conv(size=[2, 2, 2, 3], hasBias=False, opts=["NoDerData", "CudnnWorkspaceLimit", 0])
    dx, = layer.backward([x], [f], [nm.randn(1, 3, 3, 3)])[0]
    assert dx is None


def test_conv_init_params():
    torch.manual_seed(3)
    f, b = L.Conv(size=[3, 3, 64, 32]).init_params()
    assert f.shape == (32, 64, 3, 3) and f.dtype == torch.float32
    assert b.shape == (32,) and not b.any()
    assert abs(float(f.std()) / math.sqrt(2 / (3 * 3 * 64)) - 1) < 0.05
    assert len(L.Conv(size=[1, 1, 2, 3], hasBias=False).init_params()) == 1
    with pytest.raises(ValueError, match="size"):
        L.Conv().init_params()


def test_convt_is_vl_nnconvt_and_the_simplenn_layer():
    x, f, b = nm.randn(2, 4, 3, 4), nm.randn(4, 3, 3, 4), nm.randn(6)
    kw = dict(upsample=[2, 1], crop=[1, 0, 0, 2], num_groups=2)
    layer = L.ConvTranspose(size=[3, 4, 3, 4], upsample=[2, 1], crop=[1, 0, 0, 2], numGroups=2)
    y = layer.forward([x], [f, b])[0]
    close(y, mcn.vl_nnconvt(x, f, b, **kw))
    dzdy = nm.randn(*y.shape)
    (dx,), (df, db) = layer.backward([x], [f, b], [dzdy])
    rx, rf, rb = mcn.vl_nnconvt(x, f, b, dzdy, **kw)
    close(dx, rx), close(df, rf), close(db, rb)
    sy, sdx, sdw = simplenn({"type": "convt", "weights": [f, b], "upsample": [2, 1],
                             "crop": [1, 0, 0, 2], "numGroups": 2}, x, dzdy)
    close(y, sy), close(dx, sdx), close(df, sdw[0]), close(db, sdw[1])


def test_convt_init_params():
    torch.manual_seed(4)
    f, b = L.ConvTranspose(size=[4, 4, 16, 32]).init_params()
    assert f.shape == (32, 16, 4, 4) and b.shape == (16,) and not b.any()
    assert abs(float(f.std()) / math.sqrt(2 / (4 * 4 * 32)) - 1) < 0.05


@pytest.mark.parametrize("method", ["max", "avg"])
def test_pooling_is_vl_nnpool_and_the_simplenn_layer(method):
    x = nm.distinct(2, 3, 7, 8)
    kw = dict(pad=[1, 0, 1, 1], stride=[2, 3], method=method)
    layer = L.Pooling(poolSize=[3, 2], pad=[1, 0, 1, 1], stride=[2, 3], method=method)
    y = layer.forward([x], [])[0]
    close(y, mcn.vl_nnpool(x, [3, 2], **kw))
    dzdy = nm.randn(*y.shape)
    (dx,), dpars = layer.backward([x], [], [dzdy])
    assert dpars == []
    close(dx, mcn.vl_nnpool(x, [3, 2], dzdy, **kw))
    sy, sdx, _ = simplenn({"type": "pool", "pool": [3, 2], **kw}, x, dzdy)
    close(y, sy), close(dx, sdx)


# ----------------------------------------------------------------------------- batch norm


def bnorm_data(n=3, c=2, h=3, w=2):
    x = nm.randn(n, c, h, w) * 2 + 1
    g, b = nm.randn(c), nm.randn(c)
    m = torch.stack((nm.randn(c), nm.randn(c).abs() + 0.5), dim=1)
    return x, g, b, m


def test_batchnorm_attach_makes_the_moments_an_average():
    layer = L.BatchNorm(numChannels=2)
    net = stub_net(layer, params=("g", "b", "m"))
    assert layer.net is net and layer.layer_index == 0
    assert [p.train_method for p in net.params] == ["gradient", "gradient", "average"]
    assert [p.learning_rate for p in net.params] == [1.0, 1.0, 0.1]


def test_batchnorm_normal_mode():
    x, g, b, m = bnorm_data()
    layer = L.BatchNorm(numChannels=2)
    stub_net(layer, params=("g", "b", "m"))
    y = layer.forward([x], [g, b, m])[0]
    ry, rm = mcn.vl_nnbnorm(x, g, b, epsilon=1e-5, return_moments=True)
    close(y, ry)
    close(layer.moments, rm)
    dzdy = nm.randn(*x.shape)
    (dx,), (dg, db, dm) = layer.backward([x], [g, b, m], [dzdy])
    rx, rg, rb, rmom = mcn.vl_nnbnorm(x, g, b, dzdy, epsilon=1e-5)
    close(dx, rx), close(dg, rg), close(db, rb)
    close(dm, rmom)          # the batch moments, as the original (beta25)
    assert layer.moments is None
    # the SimpleNN layer (its dzdw{3} holds the moments, not times N)
    sy, sdx, sdw = simplenn({"type": "bnorm", "weights": [g, b, m], "epsilon": 1e-5}, x, dzdy)
    close(y, sy), close(dx, sdx), close(dg, sdw[0]), close(db, sdw[1])
    close(dm, sdw[2])
    # numerical derivatives of the batch-statistics forward
    fn = lambda x, g, b: layer.forward([x], [g, b, m])[0]
    nm.check_derivative(fn, [x, g, b], 0, dzdy, dx, rtol=1e-6)
    nm.check_derivative(fn, [x, g, b], 1, dzdy, dg, rtol=1e-6)
    nm.check_derivative(fn, [x, g, b], 2, dzdy, db, rtol=1e-6)


def test_batchnorm_test_mode():
    x, g, b, m = bnorm_data()
    layer = L.BatchNorm(numChannels=2, epsilon=1e-3)
    stub_net(layer, mode="test", params=("g", "b", "m"))
    y = layer.forward([x], [g, b, m])[0]
    close(y, mcn.vl_nnbnorm(x, g, b, moments=m))
    close(y, g.view(1, -1, 1, 1) * (x - m[:, 0].view(1, -1, 1, 1)) / m[:, 1].view(1, -1, 1, 1)
          + b.view(1, -1, 1, 1))
    assert layer.moments is None
    dzdy = nm.randn(*x.shape)
    sy, sdx, sdw = simplenn({"type": "bnorm", "weights": [g, b, m], "epsilon": 1e-3}, x, dzdy,
                            mode="test")
    close(y, sy)
    # as the original (and SimpleNN, FEATURES.md Q-20) the backward pass of test mode uses
    # the batch statistics
    (dx,), (dg, db, dm) = layer.backward([x], [g, b, m], [dzdy])
    close(dx, sdx), close(dg, sdw[0]), close(db, sdw[1])
    rx, _, _, rm = mcn.vl_nnbnorm(x, g, b, dzdy, epsilon=1e-3)
    close(dx, rx), close(dm, rm)
    # the test-mode forward is affine in b with slope 1 (numerically)
    fn = lambda b: layer.forward([x], [g, b, m])[0]
    nm.check_derivative(fn, [b], 0, dzdy, db, rtol=1e-6)


def test_batchnorm_init_params_and_reset():
    gm, bt, mo = L.BatchNorm(numChannels=5).init_params()
    assert gm.shape == (5,) and bool((gm == 1).all()) and gm.dtype == torch.float32
    assert bt.shape == (5,) and not bt.any()
    assert mo.shape == (5, 2) and not mo.any()
    layer = L.BatchNorm(numChannels=2)
    x, g, b, m = bnorm_data()
    layer.forward([x], [g, b, m])          # unattached layers run in 'normal' mode
    assert layer.moments is not None
    layer.reset()
    assert layer.moments is None


# ----------------------------------------------------------------------------- pointwise


@pytest.mark.parametrize("leak", [0, 0.1])
def test_relu_is_vl_nnrelu(leak):
    x = nm.distinct(2, 3, 4, 4)
    layer = L.ReLU(leak=leak)
    y = layer.forward([x], [])[0]
    close(y, mcn.vl_nnrelu(x, leak=leak))
    dzdy = nm.randn(*x.shape)
    (dx,), _ = layer.backward([x], [], [dzdy])
    close(dx, mcn.vl_nnrelu(x, dzdy, leak=leak))
    (dx2,), _ = layer.backward([None], [], [dzdy], outputs=[y])  # input freed: use the output
    close(dx2, dx)
    sy, sdx, _ = simplenn({"type": "relu", "leak": leak}, x, dzdy)
    close(y, sy), close(dx, sdx)


def test_relu_opts_leak():
    x = nm.distinct(1, 2, 3, 3)
    close(L.ReLU(opts=["leak", 0.3]).forward([x], [])[0], mcn.vl_nnrelu(x, leak=0.3))


@pytest.mark.parametrize("name,block,stype", [
    ("Sigmoid", mcn.vl_nnsigmoid, "sigmoid"), ("SoftMax", mcn.vl_nnsoftmax, "softmax")])
def test_sigmoid_and_softmax(name, block, stype):
    x = nm.randn(2, 4, 3, 3)
    layer = getattr(L, name)()
    y = layer.forward([x], [])[0]
    close(y, block(x))
    dzdy = nm.randn(*x.shape)
    (dx,), _ = layer.backward([x], [], [dzdy])
    close(dx, block(x, dzdy))
    (dx2,), _ = layer.backward([x], [], [dzdy], outputs=[y])
    close(dx2, dx)
    sy, sdx, _ = simplenn({"type": stype}, x, dzdy)
    close(y, sy), close(dx, sdx)


@pytest.mark.parametrize("name,block,stype,param", [
    ("LRN", mcn.vl_nnnormalize, "normalize", [3, 2, 0.5, 0.75]),
    ("SpatialNorm", mcn.vl_nnspnorm, "spnorm", [3, 2, 0.5, 0.75]),
    ("NormOffset", mcn.vl_nnnoffset, "noffset", [0.5, 0.25])])
def test_param_layers(name, block, stype, param):
    x = nm.randn(2, 5, 4, 4)
    layer = getattr(L, name)(param=param)
    y = layer.forward([x], [])[0]
    close(y, block(x, param))
    dzdy = nm.randn(*x.shape)
    (dx,), _ = layer.backward([x], [], [dzdy])
    close(dx, block(x, param, dzdy))
    sy, sdx, _ = simplenn({"type": stype, "param": param}, x, dzdy)
    close(y, sy), close(dx, sdx)


def test_lrn_default_is_the_simplenn_default():
    x = nm.randn(1, 7, 2, 2)
    close(L.LRN().forward([x], [])[0], mcn.vl_nnnormalize(x, [5, 1, 0.0001 / 5, 0.75]))


def test_max_pooling_keeps_switches_only_for_a_backward_pass():
    x = nm.distinct(2, 3, 7, 6)
    layer = L.Pooling(poolSize=[3, 2], stride=[2, 1], pad=[1, 0, 1, 1])
    net = stub_net(layer)
    layer.forward([x], [])
    assert layer.switches is None
    net.computing_derivatives = True
    y = layer.forward([x], [])[0]
    assert layer.switches[0].describes(x) and layer.switches[1].shape == y.shape
    dzdy = nm.randn(*y.shape)
    (dx,), _ = layer.backward([x], [], [dzdy])
    assert layer.switches is None
    kw = dict(pad=[1, 0, 1, 1], stride=[2, 1])
    close(dx, mcn.vl_nnpool(x, [3, 2], dzdy, **kw))
    layer.forward([x], [])
    other = x.clone()     # switches belong to the input they came from
    (dx2,), _ = layer.backward([other], [], [dzdy])
    close(dx2, dx)


def test_dropout_normal_mode_keeps_the_mask():
    x = nm.randn(2, 3, 4, 4)
    layer = L.DropOut(rate=0.5)
    stub_net(layer)
    y = layer.forward([x], [])[0]
    mask = layer.mask
    assert mask.shape == x.shape and set(mask.unique().tolist()) <= {0.0, 2.0}
    close(y, mask * x)
    dzdy = nm.randn(*x.shape)
    (dx,), _ = layer.backward([x], [], [dzdy])
    close(dx, mcn.vl_nndropout(x, dzdy, mask=mask))
    y2 = layer.forward([x], [])[0]                 # a new mask
    assert not torch.equal(layer.mask, mask)
    layer.frozen = True
    frozen_mask = layer.mask
    close(layer.forward([x], [])[0], frozen_mask * x)   # frozen: the mask is reused
    assert layer.mask is frozen_mask
    layer.reset()
    assert layer.mask is None and layer.frozen is False
    del y2


def test_dropout_test_mode_is_the_identity():
    x = nm.randn(2, 3, 4, 4)
    layer = L.DropOut(rate=0.5)
    stub_net(layer, mode="test")
    assert layer.forward([x], [])[0] is x
    dzdy = nm.randn(*x.shape)
    (dx,), _ = layer.backward([x], [], [dzdy])
    assert dx is dzdy
    sy, sdx, _ = simplenn({"type": "dropout", "rate": 0.5}, x, dzdy, mode="test")
    close(sy, x), close(sdx, dzdy)


@pytest.mark.parametrize("a_shape", [(1, 3, 1, 1), (1, 1, 4, 5), (2, 3, 4, 5), (1, 3, 4, 1)])
def test_scale_params_with_broadcasting(a_shape):
    x = nm.randn(2, 3, 4, 5)
    a, b = nm.randn(*a_shape), nm.randn(*a_shape)
    layer = L.Scale(size=[1, 1, 3])
    y = layer.forward([x], [a, b])[0]
    close(y, x * a + b)
    dzdy = nm.randn(*y.shape)
    (dx,), (da, db) = layer.backward([x], [a, b], [dzdy])
    assert da.shape == a.shape and db.shape == b.shape
    fn = lambda x, a, b: layer.forward([x], [a, b])[0]
    nm.check_derivative(fn, [x, a, b], 0, dzdy, dx)
    nm.check_derivative(fn, [x, a, b], 1, dzdy, da)
    nm.check_derivative(fn, [x, a, b], 2, dzdy, db)


def test_scale_as_inputs_and_without_bias():
    x, a, b = nm.randn(2, 3, 2, 2), nm.randn(1, 3, 1, 1), nm.randn(1, 3, 1, 1)
    layer = L.Scale()
    y = layer.forward([x, a, b], [])[0]
    close(y, x * a + b)
    dzdy = nm.randn(*y.shape)
    dins, dpars = layer.backward([x, a, b], [], [dzdy])
    assert len(dins) == 3 and dpars == []
    fn = lambda x, a, b: layer.forward([x, a, b], [])[0]
    for k in range(3):
        nm.check_derivative(fn, [x, a, b], k, dzdy, dins[k])
    nobias = L.Scale(hasBias=False)
    close(nobias.forward([x], [a])[0], x * a)
    (dx,), (da,) = nobias.backward([x], [a], [dzdy])
    nm.check_derivative(lambda a: nobias.forward([x], [a])[0], [a], 0, dzdy, da)
    dins, dpars = nobias.backward([x, a], [], [dzdy])
    assert len(dins) == 2 and dpars == []


def test_scale_init_params():
    a, b = L.Scale(size=[1, 1, 6]).init_params()
    assert a.shape == (1, 6, 1, 1) and b.shape == (1, 6, 1, 1) and not b.any()
    assert L.Scale().init_params() == []


def test_sum():
    xs = [nm.randn(2, 3, 4, 4) for _ in range(3)]
    layer = L.Sum()
    y = layer.forward(xs, [])[0]
    close(y, xs[0] + xs[1] + xs[2])
    assert layer.numInputs == 3
    dzdy = nm.randn(*y.shape)
    dins, dpars = layer.backward(xs, [], [dzdy])
    assert len(dins) == 3 and dpars == []
    fn = lambda a, b, c: layer.forward([a, b, c], [])[0]
    for k in range(3):
        nm.check_derivative(fn, xs, k, dzdy, dins[k])


@pytest.mark.parametrize("dim,axis", [(1, 2), (2, 3), (3, 1), (4, 0)])
def test_concat_dim_is_matconvnets(dim, axis):
    shapes = [[2, 3, 4, 5], [2, 3, 4, 5]]
    shapes[1][axis] = 1
    xs = [nm.randn(*shapes[0]), nm.randn(*shapes[1])]
    layer = L.Concat(dim=dim)
    assert layer.axis == axis
    y = layer.forward(xs, [])[0]
    close(y, torch.cat(xs, dim=axis))
    assert layer.inputSizes == [tuple(s) for s in shapes]
    dzdy = nm.randn(*y.shape)
    dins, dpars = layer.backward(xs, [], [dzdy])
    assert dpars == [] and [tuple(d.shape) for d in dins] == [tuple(s) for s in shapes]
    fn = lambda a, b: layer.forward([a, b], [])[0]
    for k in range(2):
        nm.check_derivative(fn, xs, k, dzdy, dins[k])
    d2 = layer.backward([None, None], [], [dzdy])[0]   # from the recorded input sizes
    close(d2[0], dins[0]), close(d2[1], dins[1])
    layer.reset()
    assert layer.inputSizes is None


@pytest.mark.parametrize("crop,expect", [([0, 0], [0, 3, 0, 1]), ([2, 1], [2, 1, 1, 0]),
                                         ([5, 5], [3, 0, 1, 0])])
def test_crop_to_the_reference(crop, expect):
    x, ref = nm.randn(2, 3, 7, 6), nm.randn(2, 1, 4, 5)
    layer = L.Crop(crop=crop)
    y = layer.forward([x, ref], [])[0]
    close(y, mcn.vl_nncrop(x, expect))
    assert y.shape == (2, 3, 4, 5)
    dzdy = nm.randn(*y.shape)
    (dx, dref), dpars = layer.backward([x, ref], [], [dzdy])
    assert dref is None and dpars == []
    nm.check_derivative(lambda x: layer.forward([x, ref], [])[0], [x], 0, dzdy, dx)
    assert layer.get_output_sizes([(2, 3, 7, 6), (2, 1, 4, 5)]) == [(2, 3, 4, 5)]
    rf = layer.get_receptive_fields()
    assert rf[0][0] == (G.RF(1, 1, 1 + crop[0]), G.RF(1, 1, 1 + crop[1]))
    assert rf[1][0] == L.NO_DEPENDENCY


# ----------------------------------------------------------------------------- losses


def loss_data(n=3, c=4, h=2, w=3):
    return nm.randn(n, c, h, w), torch.randint(1, c + 1, (n, 1, h, w)).to(D)


def test_loss_is_vl_nnloss():
    x, c = loss_data()
    layer = L.Loss()
    y = layer.forward([x, c], [])[0]
    close(y, mcn.vl_nnloss(x, c))
    dins, dpars = layer.backward([x, c], [], [2.0])
    assert dins[1] is None and dpars == []
    close(dins[0], mcn.vl_nnloss(x, c, 2.0))
    # SimpleNN's loss layer: vl_nnloss with default options
    res = vl_simplenn({"layers": [{"type": "loss", "class": c}], "meta": {}}, x, 2.0)
    close(y, res[1]["x"]), close(dins[0], res[0]["dzdx"])


def test_loss_opts_and_instance_weights():
    x, c = loss_data()
    w = nm.randn(3, 1, 2, 3).abs()
    layer = L.Loss(loss="topkerror", opts=["topK", 2])
    close(layer.forward([x, c], [])[0], mcn.vl_nnloss(x, c, loss="topkerror", top_k=2))
    layer = L.Loss(loss="log", opts={"instanceWeights": w.numpy()})   # NumPy, as from a file
    p = torch.softmax(x, 1)
    close(layer.forward([p, c], [])[0], mcn.vl_nnloss(p, c, loss="log", instance_weights=w))
    layer = L.Loss()                                         # weights as a third input
    close(layer.forward([x, c, w], [])[0], mcn.vl_nnloss(x, c, instance_weights=w))
    dins, _ = layer.backward([x, c, w], [], [1.0])
    assert len(dins) == 3 and dins[1] is None and dins[2] is None
    close(dins[0], mcn.vl_nnloss(x, c, 1.0, instance_weights=w))
    with pytest.raises(TypeError, match="'tpoK'"):
        L.Loss(opts=["tpoK", 1]).forward([x, c], [])


def test_loss_running_average():
    layer = L.Loss()
    ys, sizes = [], []
    for n, h, w in ((3, 2, 3), (2, 1, 4)):
        x, c = loss_data(n=n, h=h, w=w)
        ys.append(float(layer.forward([x, c], [])[0]))
        sizes.append((n, h * w * n))
    # normalise: the loss is divided by N, the average is per location
    total = sum(y * n for y, (n, _) in zip(ys, sizes))
    count = sum(m for _, m in sizes)
    assert layer.numAveraged == count
    assert math.isclose(layer.average, total / count, rel_tol=1e-12)
    layer.reset()
    assert layer.average == 0 and layer.numAveraged == 0
    raw = L.Loss(normalise=False)    # the loss value is unchanged; only the average differs
    x, c = loss_data()
    y = float(raw.forward([x, c], [])[0])
    assert math.isclose(y, float(mcn.vl_nnloss(x, c)), rel_tol=1e-12)
    assert math.isclose(raw.average, y / (3 * 2 * 3), rel_tol=1e-12)
    quiet = L.Loss(ignoreAverage=True)
    quiet.forward([x, c], [])
    assert quiet.average == 0 and quiet.numAveraged == 0


def test_pdist_is_vl_nnpdist():
    x, x0 = nm.randn(2, 3, 2, 2), nm.randn(2, 3, 2, 2)
    layer = L.PDist(p=2)
    y = layer.forward([x, x0], [])[0]
    close(y, mcn.vl_nnpdist(x, x0, 2, aggregate=True))
    assert y.dim() == 0
    (dx, dx0), dpars = layer.backward([x, x0], [], [1.5])
    rx, rx0 = mcn.vl_nnpdist(x, x0, 2, 1.5, aggregate=True)
    close(dx, rx), close(dx0, rx0)
    w = nm.randn(2, 1, 2, 2).abs()
    layer = L.PDist(p=1, aggregate=False, noRoot=True, epsilon=1e-3)
    y = layer.forward([x, x0, w], [])[0]
    kw = dict(aggregate=False, no_root=True, epsilon=1e-3, instance_weights=w)
    close(y, mcn.vl_nnpdist(x, x0, 1, **kw))
    dzdy = nm.randn(*y.shape)
    dins, _ = layer.backward([x, x0, w], [], [dzdy])
    rx, rx0 = mcn.vl_nnpdist(x, x0, 1, dzdy, **kw)
    close(dins[0], rx), close(dins[1], rx0)
    assert len(dins) == 3 and dins[2] is None
    # SimpleNN's pdist layer
    res = vl_simplenn({"layers": [{"type": "pdist", "class": x0, "p": 2, "epsilon": 1e-6,
                                   "aggregate": True}], "meta": {}}, x, 1.5)
    close(L.PDist().forward([x, x0], [])[0], res[1]["x"])


def test_loss_smooth_l1():
    x, x0 = nm.randn(3, 4, 1, 1), nm.randn(3, 4, 1, 1)
    x0[0, 0] = x[0, 0] + 0.5          # a quadratic entry for sigma = 1 ...
    w = nm.randn(3, 4, 1, 1).abs()
    layer = L.LossSmoothL1(sigma=1.0)
    y = layer.forward([x, x0, w], [])[0]
    d = (x - x0).abs()
    f = torch.where(d > 1, d - 0.5, 0.5 * d * d)
    close(y, (w * f).sum() / 3)
    assert math.isclose(layer.average, 3 * float(y) / (float(w.sum()) + 1e-9), rel_tol=1e-12)
    for sigma in (1.0, 2.0):
        layer = L.LossSmoothL1(sigma=sigma)
        dins, dpars = layer.backward([x, x0, w], [], [0.7])
        assert dins[1] is None and dins[2] is None and dpars == []
        fn = lambda x: layer.forward([x, x0, w], [])[0]
        nm.check_derivative(fn, [x], 0, torch.tensor(0.7, dtype=D), dins[0])


# ----------------------------------------------------------------------------- sampling


def test_bilinear_sampler_is_vl_nnbilinearsampler():
    x = nm.randn(2, 3, 5, 4)
    grid = torch.rand(4, 2, 3, 6, dtype=D) * 2 - 1
    layer = L.BilinearSampler()
    y = layer.forward([x, grid], [])[0]
    close(y, mcn.vl_nnbilinearsampler(x, grid))
    dzdy = nm.randn(*y.shape)
    (dx, dg), dpars = layer.backward([x, grid], [], [dzdy])
    rx, rg = mcn.vl_nnbilinearsampler(x, grid, dzdy)
    close(dx, rx), close(dg, rg)
    assert dpars == []


def rois_data():
    x = nm.distinct(2, 3, 8, 9)
    rois = torch.tensor([[1, 1, 1, 9, 8], [2, 2, 3, 6, 7], [1, 4, 2, 8, 8]], dtype=D).t()
    return x, rois


@pytest.mark.parametrize("method", ["max", "avg"])
def test_roipooling_is_vl_nnroipool(method):
    x, rois = rois_data()
    kw = dict(method=method, subdivisions=[3, 2], transform=1)
    layer = L.ROIPooling(method=method, subdivisions=[3, 2])
    y = layer.forward([x, rois], [])[0]
    close(y, mcn.vl_nnroipool(x, rois, **kw))
    dzdy = nm.randn(*y.shape)
    (dx, drois), _ = layer.backward([x, rois], [], [dzdy])
    assert drois is None
    close(dx, mcn.vl_nnroipool(x, rois, dzdy, **kw))


def test_roipooling_flatten_is_matconvnets_order():
    x, rois = rois_data()
    flat = L.ROIPooling(subdivisions=[3, 2], flatten=True)
    plain = L.ROIPooling(subdivisions=[3, 2])
    y, yf = plain.forward([x, rois], [])[0], flat.forward([x, rois], [])[0]
    k, c, sh, sw = y.shape
    assert yf.shape == (k, sh * sw * c, 1, 1)
    # MATLAB's reshape(y, 1, 1, [], K) of an SH x SW x C x K array: SH fastest, then SW, C
    ref = y.numpy().transpose(2, 3, 1, 0).reshape(1, 1, -1, k, order="F")
    close(yf, torch.from_numpy(ref.transpose(3, 2, 0, 1).copy()))
    dzdy = nm.randn(*y.shape)
    dzdy_flat = torch.from_numpy(dzdy.numpy().transpose(2, 3, 1, 0).reshape(
        1, 1, -1, k, order="F").transpose(3, 2, 0, 1).copy())
    close(flat.backward([x, rois], [], [dzdy_flat])[0][0],
          plain.backward([x, rois], [], [dzdy])[0][0])


def matlab_affine(a, ho, wo):
    """AffineGridGenerator.m, line by line in NumPy (column-major), on our layout."""
    a_m = a.numpy().transpose(2, 3, 1, 0)                     # 1 x 1 x 6 x N
    nb = a_m.shape[3]
    A = a_m.reshape(2, 3, nb, order="F")
    Lm = A[:, 0:2, :].reshape(2, 2 * nb, order="F")
    xi, yi = np.linspace(-1, 1, ho), np.linspace(-1, 1, wo)
    yy, xx = np.meshgrid(xi, yi)
    xxyy = np.stack([yy.ravel(order="F"), xx.ravel(order="F")], axis=1)
    t = A[:, 2, :].reshape(1, 2 * nb, order="F")
    g = (xxyy @ Lm + t).reshape(wo, ho, 2, nb, order="F").transpose(2, 1, 0, 3)
    return torch.from_numpy(g.transpose(3, 0, 1, 2).copy()), xxyy


def test_affine_grid_generator_is_matconvnets():
    a = nm.randn(2, 6, 1, 1)
    layer = L.AffineGridGenerator(Ho=4, Wo=5)
    g = layer.forward([a], [])[0]
    ref, xxyy = matlab_affine(a, 4, 5)
    assert g.shape == (2, 2, 4, 5)
    close(g, ref)
    dzdy = nm.randn(*g.shape)
    (da,), dpars = layer.backward([a], [], [dzdy])
    assert da.shape == a.shape and dpars == []
    # AffineGridGenerator.m backward, in NumPy
    dy = dzdy.numpy().transpose(1, 2, 3, 0).transpose(2, 1, 0, 3).reshape(20, 4, order="F")
    dA = np.zeros((2, 3, 2))
    dA[:, 0:2, :] = (xxyy.T @ dy).reshape(2, 2, 2, order="F")
    dA[:, 2, :] = dy.sum(0).reshape(2, 2, order="F")
    close(da, torch.from_numpy(dA.reshape(1, 1, 6, 2, order="F").transpose(3, 2, 0, 1).copy()))
    nm.check_derivative(lambda a: layer.forward([a], [])[0], [a], 0, dzdy, da)


def test_affine_identity_resamples_the_input():
    x = nm.randn(2, 3, 4, 5)
    a = torch.tensor([1.0, 0, 0, 1, 0, 0], dtype=D).repeat(2, 1).view(2, 6, 1, 1)
    grid = L.AffineGridGenerator(Ho=4, Wo=5).forward([a], [])[0]
    close(L.BilinearSampler().forward([x, grid], [])[0], x, rtol=1e-12)
    one = L.AffineGridGenerator(Ho=1, Wo=3).forward([a], [])[0]
    assert bool((one[:, 0] == 1).all())       # MATLAB's linspace(-1, 1, 1) is 1


def test_uniform_scaling_grid_generator_is_matconvnets():
    tr = nm.randn(3, 3, 1, 1)
    layer = L.UniformScalingGridGenerator(Ho=4, Wo=3)
    g = layer.forward([tr], [])[0]
    # UniformScalingGridGenerator.m in NumPy
    t_m = tr.numpy().transpose(2, 3, 1, 0)                    # 1 x 1 x 3 x N
    s = t_m[0, 0, 0, :].reshape(1, 1, 3)
    t = t_m[0, 0, 1:3, :].reshape(2, 1, 3)
    yy, xx = np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 4))
    xxyy = np.stack([xx.ravel(order="F"), yy.ravel(order="F")], axis=0)
    ref = (xxyy[:, :, None] * s + t).reshape(2, 4, 3, 3, order="F")
    close(g, torch.from_numpy(ref.transpose(3, 0, 1, 2).copy()))
    dzdy = nm.randn(*g.shape)
    (dt,), _ = layer.backward([tr], [], [dzdy])
    dy = dzdy.numpy().transpose(1, 2, 3, 0).reshape(2, 12, 3, order="F")
    ds = xxyy.reshape(1, -1, order="F") @ dy.reshape(-1, 3, order="F")
    dtt = dy.sum(1)
    close(dt.view(3, 3), torch.from_numpy(np.concatenate([ds, dtt], 0).T.copy()))
    nm.check_derivative(lambda t: layer.forward([t], [])[0], [tr], 0, dzdy, dt)
    with pytest.raises(ValueError, match="N x 3"):
        layer.forward([nm.randn(2, 4, 1, 1)], [])


def test_grid_cache_follows_ho_wo():
    a = torch.tensor([1.0, 0, 0, 1, 0, 0], dtype=D).view(1, 6, 1, 1)
    layer = L.AffineGridGenerator(Ho=2, Wo=2)
    assert layer.forward([a], [])[0].shape == (1, 2, 2, 2)
    layer.Ho = 3
    assert layer.forward([a], [])[0].shape == (1, 2, 3, 2)
    layer.reset()
    assert layer.xxyy is None


# ----------------------------------------------------------------------------- sizes


def size_cases():
    """(id, layer, inputs, params) for every layer whose forward output is a tensor."""
    x = nm.randn(2, 3, 9, 8)
    x_rois, rois = rois_data()
    f = nm.randn(5, 3, 3, 2)
    yield "conv", L.Conv(size=[3, 2, 3, 5], pad=[1, 0, 2, 1], stride=[2, 3], dilate=[2, 1]), \
        [x], [f, nm.randn(5)]
    yield "conv-fc", L.Conv(size=[9, 8, 3, 4]), [x], [nm.randn(4, 3, 9, 8), nm.randn(4)]
    yield "convt", L.ConvTranspose(size=[4, 3, 2, 3], upsample=[2, 3], crop=[1, 0, 2, 1]), \
        [x], [nm.randn(3, 2, 4, 3), nm.randn(2)]
    yield "convt-groups", L.ConvTranspose(size=[3, 3, 2, 3], numGroups=3), \
        [x], [nm.randn(3, 2, 3, 3), nm.randn(6)]
    yield "pool", L.Pooling(poolSize=[3, 2], pad=[1, 1, 0, 1], stride=2), [x], []
    yield "bnorm", L.BatchNorm(numChannels=3), [x], [nm.randn(3), nm.randn(3), None]
    yield "relu", L.ReLU(), [x], []
    yield "sigmoid", L.Sigmoid(), [x], []
    yield "softmax", L.SoftMax(), [x], []
    yield "lrn", L.LRN(), [x], []
    yield "spnorm", L.SpatialNorm(), [x], []
    yield "noffset", L.NormOffset(), [x], []
    yield "dropout", L.DropOut(), [x], []
    yield "scale", L.Scale(), [x], [nm.randn(1, 3, 1, 1), nm.randn(1, 3, 1, 1)]
    yield "sum", L.Sum(), [x, x, x], []
    yield "concat3", L.Concat(), [x, nm.randn(2, 2, 9, 8)], []
    yield "concat1", L.Concat(dim=1), [x, nm.randn(2, 3, 1, 8)], []
    yield "crop", L.Crop(crop=[1, 1]), [x, nm.randn(2, 1, 5, 6)], []
    yield "bilinear", L.BilinearSampler(), [x, torch.rand(4, 2, 3, 5, dtype=D) * 2 - 1], []
    yield "roipool", L.ROIPooling(subdivisions=[3, 2]), [x_rois, rois], []
    yield "roipool-flat", L.ROIPooling(subdivisions=[3, 2], flatten=True), [x_rois, rois], []
    yield "affine", L.AffineGridGenerator(Ho=3, Wo=7), [nm.randn(2, 6, 1, 1)], []
    yield "uniform", L.UniformScalingGridGenerator(Ho=5, Wo=2), [nm.randn(2, 3, 1, 1)], []


@pytest.mark.parametrize("case", list(size_cases()), ids=lambda c: c[0])
def test_output_sizes_are_the_actual_output_sizes(case):
    _, layer, inputs, params = case
    outputs = layer.forward(inputs, params)
    sizes = layer.get_output_sizes([size_of(t) for t in inputs])
    assert sizes == [size_of(y) for y in outputs]
    assert all(isinstance(v, int) for s in sizes for v in s)


def test_loss_output_sizes_are_matconvnets():
    # [1 1 1 N]: MatConvNet's size of a loss (its value is a scalar)
    for layer in (L.Loss(), L.PDist(), L.LossSmoothL1()):
        assert layer.get_output_sizes([(5, 3, 2, 2), (5, 1, 2, 2)]) == [(5, 1, 1, 1)]


def test_unknown_sizes_propagate_as_nan():
    (n, c, h, w), = L.Conv(size=[3, 3, 3, 8], pad=1).get_output_sizes([(NAN, 3, NAN, 10)])
    assert math.isnan(n) and c == 8 and math.isnan(h) and w == 10
    (n, c, h, w), = L.Concat().get_output_sizes([(1, NAN, 4, 4), (1, 2, 4, 4)])
    assert n == 1 and math.isnan(c) and (h, w) == (4, 4)
    (n, c, h, w), = L.Pooling(poolSize=2, stride=2).get_output_sizes([(2, 3, NAN, 7)])
    assert (n, c, w) == (2, 3, 3) and math.isnan(h)
    out = L.ReLU().get_output_sizes([(NAN, NAN, NAN, NAN)])
    assert all(math.isnan(v) for v in out[0])


def test_filter_output_size_truncates_as_matlab_fix():
    # fix((H + pads - E) / S) + 1 with a negative numerator rounds toward zero
    # (the original's quirk for windows larger than the input: floor would give 0)
    assert L.Pooling(poolSize=5, stride=3).get_output_sizes([(1, 1, 3, 3)]) == [(1, 1, 1, 1)]
    assert L.Pooling(poolSize=5).get_output_sizes([(1, 1, 3, 3)]) == [(1, 1, -1, -1)]


# ----------------------------------------------------------------------------- fields


@pytest.mark.parametrize("kw", [dict(size=[3, 5, 1, 1]), dict(size=[3, 3, 2, 2], pad=1, stride=2),
                                dict(size=[3, 2, 1, 4], pad=[2, 0, 1, 3], stride=[3, 2],
                                     dilate=[2, 3])])
def test_conv_receptive_field_is_geometrys(kw):
    layer = L.Conv(**kw)
    rf = G.receptive_field("conv", filter_size=layer.size[:2], pad=layer.pad,
                           stride=layer.stride, dilate=layer.dilate)
    assert layer.get_receptive_fields() == [[rf]]
    # the original's rule (Filter.getReceptiveFields): size ke, offset 1 - pad + (ke - 1) / 2
    ke = [(k - 1) * d + 1 for k, d in zip(layer.size[:2], layer.dilate)]
    for axis, r in enumerate(rf):
        assert r.size == ke[axis] and r.stride == layer.stride[axis]
        assert r.offset == 1 - layer.pad[2 * axis] + Fraction(ke[axis] - 1, 2)


def test_pooling_receptive_field_is_geometrys():
    layer = L.Pooling(poolSize=[3, 2], pad=[1, 1, 0, 1], stride=[2, 1])
    rf = G.receptive_field("pool", pool=[3, 2], pad=[1, 1, 0, 1], stride=[2, 1])
    assert layer.get_receptive_fields() == [[rf]]


@pytest.mark.parametrize("kw", [dict(size=[4, 4, 2, 3], upsample=2, crop=1),
                                dict(size=[3, 5, 1, 1], upsample=[3, 2], crop=[1, 0, 2, 1])])
def test_convt_receptive_field_is_geometrys(kw):
    layer = L.ConvTranspose(**kw)
    rf = G.receptive_field("convt", filter_size=layer.size[:2], upsample=layer.upsample,
                           crop=layer.crop)
    assert layer.get_receptive_fields() == [[rf]]
    # the original's formula (ConvTranspose.getReceptiveFields)
    for axis, r in enumerate(rf):
        f, u, c = layer.size[axis], layer.upsample[axis], layer.crop[2 * axis]
        assert r.size == Fraction(f - 1, u) + 1 and r.stride == Fraction(1, u)
        assert r.offset == Fraction(2 * c - f + 1, 2 * u) + 1
        # and it is the transpose of the conv it is the adjoint of
        assert r == G.transpose(G.receptive_field("conv", filter_size=layer.size[:2],
                                                  pad=layer.crop, stride=layer.upsample)[axis])


def test_other_receptive_fields():
    ident = (G.IDENTITY, G.IDENTITY)
    for layer in (L.ReLU(), L.BatchNorm(), L.LRN(), L.DropOut(), L.Sigmoid(), L.SoftMax(),
                  L.NormOffset()):
        assert layer.get_receptive_fields() == [[ident]]
    assert L.SpatialNorm(param=[3, 4, 1, 1]).get_receptive_fields() == \
        [[G.receptive_field("spnorm", param=[3, 4, 1, 1])]]
    sum_layer = L.Sum()
    stub_net(sum_layer, inputs=("a", "b", "c"))
    assert sum_layer.get_receptive_fields() == [[ident]] * 3
    cat = L.Concat(dim=3)
    stub_net(cat, inputs=("a", "b"))
    assert cat.get_receptive_fields() == [[ident], [ident]]
    cat.dim = 2
    assert cat.get_receptive_fields() == [[None], [None]]
    assert L.Loss().get_receptive_fields() == [[None], [None]]
    roi = L.ROIPooling()
    stub_net(roi, inputs=("x", "rois"))
    assert roi.get_receptive_fields() == [[None], [None]]


# ----------------------------------------------------------------------------- the network


def test_attach_and_mode():
    layer = L.DropOut()
    assert layer.net is None and layer.layer_index is None
    net = stub_net(layer, mode="test")
    x = nm.randn(1, 1, 2, 2)
    assert layer.forward([x], [])[0] is x
    net.mode = "normal"
    layer.forward([x], [])
    assert layer.mask is not None
    layer.move("cpu")
    assert layer.mask.device.type == "cpu"
    assert "net" not in layer.save() and "layer_index" not in layer.save()


def test_float32_end_to_end():
    x = torch.randn(2, 3, 6, 6)
    conv = L.Conv(size=[3, 3, 3, 4], pad=1)
    f, b = conv.init_params()
    y = conv.forward([x], [f, b])[0]
    bn = L.BatchNorm(numChannels=4)
    g, beta, m = bn.init_params()
    z = bn.forward([y], [g, beta, m])[0]
    assert z.dtype == torch.float32 and z.shape == (2, 4, 6, 6)
    (dz,), (dg, db, dm) = bn.backward([y], [g, beta, m], [torch.ones_like(z)])
    assert dm.shape == (4, 2) and dm.dtype == torch.float32


def test_base_layer_defaults():
    class Bare(L.Layer):
        pass

    layer = Bare()
    with pytest.raises(NotImplementedError):
        layer.forward([], [])
    with pytest.raises(NotImplementedError):
        layer.backward([], [], [])
    assert layer.init_params() == [] and layer.save() == {}
    stub_net(layer, inputs=("a", "b"), outputs=("c",))
    assert layer.get_receptive_fields() == [[None], [None]]       # not expressible
    assert all(math.isnan(v) for v in layer.get_output_sizes([(1, 1, 1, 1)] * 2)[0])
    layer.reset(), layer.move("cpu")
    with pytest.raises(ValueError, match="numChannels"):
        L.BatchNorm().init_params()
