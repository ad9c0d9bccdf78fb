"""vl_simplenn: chain-rule backpropagation through the blocks, and the options of
MatConvNet's nnsimplenn tests (FEATURES.md 8.2 X-SNN)."""

import pytest
import torch

import matconvnet as mcn
from matconvnet.simplenn import (vl_simplenn, vl_simplenn_deploy, vl_simplenn_move,
                                 vl_simplenn_tidy)


def lenet(dtype=torch.float32, seed=0):
    """X-SNN's LeNet: conv5 20, maxpool, conv5 50, maxpool, conv4 500, relu, conv1 10,
    softmaxloss."""
    g = torch.Generator().manual_seed(seed)

    def conv(k, c, s):
        return {"type": "conv", "weights": [torch.randn(k, c, s, s, generator=g, dtype=dtype) / 10,
                                            torch.randn(k, generator=g, dtype=dtype) / 10]}
    layers = [conv(20, 1, 5), {"type": "pool", "pool": 2, "stride": 2, "method": "max"},
              conv(50, 20, 5), {"type": "pool", "pool": 2, "stride": 2, "method": "max"},
              conv(500, 50, 4), {"type": "relu"}, conv(10, 500, 1),
              {"type": "softmaxloss", "class": torch.tensor([3, 7, 1, 10])}]
    return vl_simplenn_tidy({"layers": layers, "meta": {}})


@pytest.fixture
def data():
    torch.manual_seed(1)
    return torch.randn(4, 1, 28, 28)


def test_forward_backward_is_the_chain_rule(data):
    net = lenet(torch.float64)
    x = data.double()
    res = vl_simplenn(net, x, 1.0)
    # forward by hand
    ys = [x]
    for l in net["layers"]:
        t, y = l["type"], ys[-1]
        if t == "conv":
            ys.append(mcn.vl_nnconv(y, *l["weights"], pad=l["pad"], stride=l["stride"]))
        elif t == "pool":
            ys.append(mcn.vl_nnpool(y, l["pool"], stride=l["stride"]))
        elif t == "relu":
            ys.append(mcn.vl_nnrelu(y))
        else:
            ys.append(mcn.vl_nnsoftmaxloss(y, l["class"]))
    for r, y in zip(res, ys):
        torch.testing.assert_close(r["x"], y)
    # the whole backward pass against autograd of the same chain
    xa = x.clone().requires_grad_()
    ws = [[w.clone().requires_grad_() for w in l["weights"]] for l in net["layers"]]
    y = xa
    for l, w in zip(net["layers"], ws):
        t = l["type"]
        if t == "conv":
            y = torch.nn.functional.conv2d(y, w[0], w[1])
        elif t == "pool":
            y = torch.nn.functional.max_pool2d(y, 2, 2)
        elif t == "relu":
            y = torch.relu(y)
        else:
            y = torch.nn.functional.cross_entropy(y.flatten(1), l["class"] - 1, reduction="sum") / 4
    y.backward()
    torch.testing.assert_close(res[0]["dzdx"], xa.grad)
    for i, w in enumerate(ws):
        for j, wj in enumerate(w):
            torch.testing.assert_close(res[i]["dzdw"][j], wj.grad)


def test_simple_run_and_res_fields(data):
    net = lenet()
    res = vl_simplenn(net, data, 1.0)
    n = len(net["layers"])
    assert len(res) == n + 1
    assert all(r["x"] is not None and r["dzdx"] is not None for r in res)
    assert res[n]["dzdx"] == 1.0
    assert [len(r["dzdw"]) for r in res[:n]] == [2, 0, 2, 0, 2, 0, 2, 0]
    assert all(r["time"] >= 0 and r["backward_time"] >= 0 for r in res[:n])
    assert res[n]["x"].dim() == 0


def test_conserve_memory(data):
    net = lenet()
    n = len(net["layers"])
    res = vl_simplenn(net, data, conserve_memory=True)
    assert [r["x"] is None for r in res] == [True] * n + [False]
    res = vl_simplenn(net, data, 1.0, conserve_memory=True)
    assert all(r["x"] is None and r["dzdx"] is None for r in res[1:n])
    assert all(res[i]["dzdw"][0] is not None for i in (0, 2, 4, 6))
    full = vl_simplenn(net, data, 1.0)
    torch.testing.assert_close(res[0]["dzdx"], full[0]["dzdx"])


def test_max_pool_switches_kept_only_when_backpropagating(data):
    net = lenet()
    pools = [i + 1 for i, l in enumerate(net["layers"]) if l["type"] == "pool"]
    assert all(r["aux"] is None for r in vl_simplenn(net, data))
    res = vl_simplenn(net, data, 1.0)
    for i in pools:
        assert res[i]["aux"].dtype == torch.int64 and res[i]["aux"].shape == res[i]["x"].shape
    # they are what the block returns, and give the stateless backward pass's derivatives
    l = net["layers"][pools[0] - 1]
    _, s = mcn.vl_nnpool(res[pools[0] - 1]["x"], l["pool"], stride=l["stride"],
                         return_switches=True)
    assert torch.equal(s, res[pools[0]]["aux"])
    dzdx = res[0]["dzdx"]
    for i in pools:
        res[i]["aux"] = None
    again = vl_simplenn(net, data, 1.0, res, skip_forward=True)
    assert again[0]["dzdx"] is not dzdx
    torch.testing.assert_close(again[0]["dzdx"], dzdx, rtol=0, atol=0)
    # back_prop_depth: layers outside the backward pass keep nothing
    res = vl_simplenn(net, data, 1.0, back_prop_depth=3)
    assert res[pools[0]]["aux"] is None and res[pools[1]]["aux"] is None


def test_bnorm_backward_reuses_the_forward_batch_moments(data):
    torch.manual_seed(3)
    net = vl_simplenn_tidy({"layers": [
        {"type": "conv", "weights": [torch.randn(5, 1, 3, 3), torch.zeros(5)]},
        {"type": "bnorm", "weights": [torch.rand(5) + 0.5, torch.randn(5), torch.zeros(5, 2)]},
        {"type": "relu"}], "meta": {}})
    dzdy = torch.randn(4, 5, 26, 26)
    assert vl_simplenn(net, data)[2]["aux"] is None
    res = vl_simplenn(net, data, dzdy)
    _, moments = mcn.vl_nnbnorm(res[1]["x"], *net["layers"][1]["weights"][:2],
                                epsilon=net["layers"][1]["epsilon"], return_moments=True)
    assert torch.equal(res[2]["aux"], moments)
    assert torch.equal(res[1]["dzdw"][2], moments)
    dzdx = res[0]["dzdx"]
    res[2]["aux"] = None      # without them the backward pass computes them again
    again = vl_simplenn(net, data, dzdy, res, skip_forward=True)
    assert again[0]["dzdx"] is not dzdx
    torch.testing.assert_close(again[0]["dzdx"], dzdx, rtol=0, atol=0)
    # test mode: the forward pass uses the stored moments and keeps none
    assert vl_simplenn(net, data, dzdy, mode="test")[2]["aux"] is None


def test_precious_layer_keeps_its_output(data):
    net = lenet()
    net["layers"][2]["precious"] = True
    res = vl_simplenn(net, data, 1.0, conserve_memory=True)
    assert res[3]["x"] is not None and res[3]["dzdx"] is not None


def test_back_prop_depth(data):
    net = lenet()
    n = len(net["layers"])
    res = vl_simplenn(net, data, back_prop_depth=3, conserve_memory=True)
    assert [r["x"] is None for r in res] == [True] * n + [False]
    res = vl_simplenn(net, data, 1.0, back_prop_depth=3)
    assert res[6]["dzdw"] and res[6]["dzdw"][0] is not None
    assert all(not res[i]["dzdw"] for i in (0, 2, 4))
    assert res[4]["dzdx"] is None and res[5]["dzdx"] is not None
    with pytest.raises(ValueError, match="back_prop_depth"):
        vl_simplenn(net, data, 1.0, back_prop_depth=0)


def test_skip_forward(data):
    net = lenet()
    full = vl_simplenn(net, data, 1.0)
    fwd = vl_simplenn(net, data)
    res = vl_simplenn(net, data, 1.0, fwd, skip_forward=True)
    for a, b in zip(full, res):
        torch.testing.assert_close(a["dzdx"], b["dzdx"])
    with pytest.raises(ValueError, match="skip_forward"):
        vl_simplenn(net, data, None, fwd, skip_forward=True)
    with pytest.raises(ValueError, match="res"):
        vl_simplenn(net, data, 1.0, None, skip_forward=True)


def test_accumulate_adds_weight_derivatives(data):
    net = lenet(torch.float64)
    x = data.double()
    res = vl_simplenn(net, x, 1.0)
    once = [d.clone() for d in res[0]["dzdw"]]
    res = vl_simplenn(net, x, 1.0, res, accumulate=True)
    torch.testing.assert_close(res[0]["dzdw"][0], 2 * once[0])


def test_parameter_server_receives_derivatives(data):
    class Server:
        def __init__(self):
            self.got = {}

        def push(self, name, value):
            self.got[name] = value

    net, server = lenet(), Server()
    res = vl_simplenn(net, data, 1.0, parameter_server=server)
    assert sorted(server.got) == ["l1_1", "l1_2", "l3_1", "l3_2", "l5_1", "l5_2", "l7_1", "l7_2"]
    assert res[0]["dzdw"] == [None, None]
    res = vl_simplenn(net, data, 1.0, parameter_server=Server(), hold_on=True)
    assert res[0]["dzdw"][0] is not None


def test_test_mode_dropout_is_identity_and_bnorm_uses_moments():
    torch.manual_seed(0)
    g, b = torch.rand(3) + 0.5, torch.randn(3)
    moments = torch.stack([torch.randn(3), torch.rand(3) + 0.5], 1)
    net = vl_simplenn_tidy({"layers": [
        {"type": "bnorm", "weights": [g, b, moments]}, {"type": "dropout", "rate": 0.5}]})
    x = torch.randn(2, 3, 4, 4)
    res = vl_simplenn(net, x, mode="test")
    expected = mcn.vl_nnbnorm(x, g, b, moments=moments, epsilon=1e-5)
    torch.testing.assert_close(res[2]["x"], expected)
    res = vl_simplenn(net, x, torch.ones(2, 3, 4, 4))
    mask = res[2]["aux"]
    assert set(mask.unique().tolist()) <= {0.0, 2.0}
    # bnorm's third "derivative" is the batch moments, as the original's
    _, _, _, m = mcn.vl_nnbnorm(x, g, b, res[1]["dzdx"], epsilon=1e-5)
    torch.testing.assert_close(res[0]["dzdw"][2], m)
    with pytest.raises(ValueError, match="mode"):
        vl_simplenn(net, x, mode="eval")


def test_every_layer_type_runs_forward_and_backward():
    torch.manual_seed(0)
    d = torch.float64
    x0 = torch.randn(2, 4, 1, 1, dtype=d)
    layers = [
        {"type": "conv", "weights": [torch.randn(4, 3, 3, 3, dtype=d), torch.randn(4, dtype=d)], "pad": 1},
        {"type": "convt", "weights": [torch.randn(4, 4, 2, 2, dtype=d), torch.randn(4, dtype=d)],
         "upsample": 2, "crop": [0, 1, 0, 1]},
        {"type": "pool", "pool": [2, 2], "stride": 2, "method": "avg"},
        {"type": "lrn", "param": [3, 1, 0.1, 0.75]},
        {"type": "spnorm", "param": [3, 3, 0.1, 0.5]},
        {"type": "bnorm", "weights": [torch.rand(4, dtype=d) + 0.5, torch.randn(4, dtype=d)]},
        {"type": "relu", "leak": 0.1},
        {"type": "sigmoid"},
        {"type": "noffset", "param": [0.2, 0.5]},
        {"type": "softmax"},
        {"type": "dropout", "rate": 0.2},
        {"type": "custom", "forward": lambda l, a, b: dict(b, x=a["x"] * 2),
         "backward": lambda l, a, b: dict(a, dzdx=b["dzdx"] * 2)},
        {"type": "pdist", "class": x0, "p": 2, "aggregate": True},
    ]
    net = vl_simplenn_tidy({"layers": layers})
    x = torch.randn(2, 3, 5, 5, dtype=d)
    res = vl_simplenn(net, x, torch.tensor(1.0, dtype=d))
    assert res[-1]["x"].dim() == 0
    assert res[0]["dzdx"].shape == x.shape and torch.isfinite(res[0]["dzdx"]).all()
    assert [len(r["dzdw"]) for r in res[:2]] == [2, 2]
    # the loss layer with vl_nnloss's default (softmaxlog)
    loss = vl_simplenn_tidy({"layers": [{"type": "loss", "class": torch.tensor([1, 2])}]})
    r = vl_simplenn(loss, torch.randn(2, 3, 1, 1), 1.0)
    torch.testing.assert_close(r[1]["x"], mcn.vl_nnloss(r[0]["x"], torch.tensor([1, 2])))


def test_relu_backward_uses_output_when_input_was_dropped(data):
    net = lenet(torch.float64)
    x = data.double()
    a = vl_simplenn(net, x, 1.0)
    b = vl_simplenn(net, x, 1.0, conserve_memory=True)
    torch.testing.assert_close(a[0]["dzdx"], b[0]["dzdx"])
    torch.testing.assert_close(a[4]["dzdw"][0], b[4]["dzdw"][0])


def test_errors_name_the_problem(data):
    with pytest.raises(ValueError, match="unknown type 'convolution'"):
        vl_simplenn({"layers": [{"type": "convolution"}]}, data)
    net = lenet()
    net["layers"][2]["weights"][0] = torch.randn(50, 7, 5, 5)
    with pytest.raises(ValueError, match="layer 3"):
        vl_simplenn(net, data)
    with pytest.raises(TypeError, match="net"):
        vl_simplenn([1, 2], data)


def test_tidy_defaults_and_upgrades():
    f, b = torch.randn(2, 1, 3, 3), torch.randn(2)
    old = {"layers": [{"type": "conv", "filters": f, "biases": b},
                      {"type": "pool", "pool": 2},
                      {"type": "bnorm", "weights": [torch.ones(2), torch.zeros(2)]},
                      {"type": "custom", "forward": None}],
           "classes": {"name": ["a", "b"]},
           "normalization": {"imageSize": [32, 32, 3], "border": [8, 8]}}
    net = vl_simplenn_tidy(old)
    assert set(net) == {"layers", "meta"}
    conv, pool, bn, custom = net["layers"]
    assert conv["weights"][0] is f and "filters" not in conv
    assert (conv["pad"], conv["stride"], conv["dilate"], conv["name"]) == (0, 1, 1, "layer1")
    assert pool["method"] == "max" and pool["stride"] == 1
    assert bn["epsilon"] == 1e-5 and bn["weights"][2].shape == (2, 2)
    assert custom == {"type": "custom", "forward": None}
    assert net["meta"]["classes"]["name"] == ["a", "b"]
    assert net["meta"]["normalization"]["cropSize"] == [0.8, 0.8]


def test_move_and_deploy():
    torch.manual_seed(0)
    net = vl_simplenn_tidy({"layers": [
        {"type": "conv", "weights": [torch.randn(3, 2, 3, 3), torch.randn(3)]},
        {"type": "bnorm", "weights": [torch.rand(3) + 0.5, torch.randn(3),
                                      torch.stack([torch.randn(3), torch.rand(3) + 0.5], 1)]},
        {"type": "dropout"}, {"type": "softmaxloss", "class": torch.tensor([1])}]})
    moved = vl_simplenn_move(net, "cpu")
    assert moved["layers"][0]["weights"][0].device.type == "cpu"
    dep = vl_simplenn_deploy(net)
    assert [l["type"] for l in dep["layers"]] == ["conv", "softmax"]
    x = torch.randn(1, 2, 5, 5)
    want = torch.softmax(vl_simplenn(net, x, mode="test")[2]["x"], 1)
    torch.testing.assert_close(vl_simplenn(dep, x)[-1]["x"], want, rtol=1e-5, atol=1e-6)


def test_diagnose_reports_parameter_and_res_statistics(data):
    from matconvnet.simplenn import vl_simplenn_diagnose
    net = lenet()
    panels = vl_simplenn_diagnose(net)
    assert set(panels) == {"filters", "biases"}
    f = net["layers"][0]["weights"][0]
    assert panels["filters"][0] == pytest.approx((f.min().item(), f.mean().item(), f.max().item()))
    assert panels["filters"][1] is None
    res = vl_simplenn(net, data, 1.0)
    panels = vl_simplenn_diagnose(net, res)
    assert len(panels["x"]) == len(res) and panels["dfilters"][0] is not None


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device available")
def test_cuda_network_matches_cpu(data):
    net = lenet(torch.float64)
    x = data.double()
    cpu = vl_simplenn(net, x, 1.0)
    gpu_net = vl_simplenn_move(net, "gpu")
    gpu_net["layers"][-1]["class"] = gpu_net["layers"][-1]["class"].cuda()
    gpu = vl_simplenn(gpu_net, x.cuda(), torch.tensor(1.0, dtype=torch.float64, device="cuda"))
    assert gpu[0]["dzdx"].is_cuda
    torch.testing.assert_close(gpu[-1]["x"].cpu(), cpu[-1]["x"])
    torch.testing.assert_close(gpu[0]["dzdx"].cpu(), cpu[0]["dzdx"])
    torch.testing.assert_close(gpu[0]["dzdw"][0].cpu(), cpu[0]["dzdw"][0])


def test_layer_opts_cells_reach_the_blocks():
    # cnn_imagenet_init's conv layers carry {'CudnnWorkspaceLimit', n}: a cuDNN hint the
    # MEX blocks accept and PyTorch does not need; flags such as 'NoCuDNN' map to cudnn=False.
    torch.manual_seed(0)
    net = vl_simplenn_tidy({"layers": [
        {"type": "conv", "weights": [torch.randn(4, 3, 3, 3), torch.zeros(4)],
         "opts": ["CudnnWorkspaceLimit", 1024, "NoCuDNN"]},
        {"type": "pool", "pool": 2, "opts": ["cuDNN"]}]})
    x = torch.randn(2, 3, 6, 6)
    res = vl_simplenn(net, x, torch.ones(2, 4, 3, 3))
    torch.testing.assert_close(res[1]["x"], mcn.vl_nnconv(x, *net["layers"][0]["weights"]))
    assert res[0]["dzdx"].shape == x.shape
