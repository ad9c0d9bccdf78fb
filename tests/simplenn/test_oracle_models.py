"""vl_simplenn on the networks the original built and evaluated (../shared/oracle/models):
load net.mat, run the stored input in the stored mode, and match every res(i).x,
res(i).dzdx and res(i).dzdw within the block tolerance."""
import numpy as np
import pytest
import scipy.io as sio
import torch

import matconvnet.io as mio
from matconvnet.simplenn import vl_simplenn
from tests import oracle


def _runs():
    if not oracle.available():
        return [pytest.param(None, None, marks=pytest.mark.skip(reason="../shared/oracle is absent"))]
    return [pytest.param(m, run, id=f"{m['name']}-{run['mode']}")
            for m in oracle.manifest()["models"]["models"] for run in m["simplenn"]]


def _ref(a, like):
    """A stored MATLAB array in our layout: 4-D data permuted, weights as io converts them."""
    a = np.asarray(a)
    if a.size == 0:
        return None
    if like is not None and tuple(like.shape) == tuple(a.shape):
        return a
    if like is not None and like.dim() == 4:
        a = a.reshape(a.shape + (1,) * (4 - a.ndim), order="F").transpose(3, 2, 0, 1)
    elif like is not None and like.dim() == 2:
        a = a.reshape(tuple(like.shape), order="F") if a.shape != tuple(like.shape) else a
    else:
        a = a.reshape(-1, order="F")
    return np.ascontiguousarray(a)


def _close(got, ref, what, rel=1e-4):
    if ref is None:
        assert got is None or got.numel() == 0, what
        return
    got = got.detach().double().numpy().reshape(ref.shape)
    tol = rel * max(1.0, float(np.abs(ref).max()))
    err = float(np.abs(got - ref).max())
    assert err <= tol, f"{what}: max abs error {err:.3g} > {tol:.3g}"


def _setup(model, run):
    net = mio.load(oracle.ORACLE / model["model_file"])["net"]
    ref = sio.loadmat(str(oracle.ORACLE / run["file"]))
    if "eval_moments_file" in model and run["mode"] == "test":
        moments = sio.loadmat(str(oracle.ORACLE / model["eval_moments_file"]))
        for key, value in moments.items():
            if key.startswith("moments_"):
                net["layers"][int(key[-2:]) - 1]["weights"][2] = torch.from_numpy(
                    np.ascontiguousarray(value)).float()
    net["layers"][-1]["class"] = torch.as_tensor(ref["labels"].ravel())
    return net, ref


def _tensor(a, like=torch.empty(1, 1, 1, 1)):
    return torch.from_numpy(_ref(a, like))


@pytest.mark.parametrize("model,run", _runs())
def test_every_layer_matches_the_original(model, run):
    """Each layer of vl_simplenn, fed the original's res(i).x and res(i+1).dzdx, gives the
    original's res(i+1).x, res(i).dzdx and res(i).dzdw within the block tolerance."""
    net, ref = _setup(model, run)
    n = len(net["layers"])
    dzdx_names = {int(name.split("_")[2]) - 1: name for name in run["res_dzdx"]}
    for i, layer in enumerate(net["layers"]):
        x = _tensor(ref[run["res_x"][i]])
        res = vl_simplenn({"layers": [layer]}, x, mode=run["mode"])
        _close(res[1]["x"], _ref(ref[run["res_x"][i + 1]], res[1]["x"]), run["res_x"][i + 1])
        if i == n - 1:
            dzdy = torch.tensor(float(ref["dzdy"].ravel()[0]))
        elif i + 1 in dzdx_names:   # the cifar runs store only res(1).dzdx and the dzdw
            dzdy = _tensor(ref[dzdx_names[i + 1]])
        else:
            continue
        res = vl_simplenn({"layers": [layer]}, x, dzdy, mode=run["mode"])
        if i in dzdx_names:
            _close(res[0]["dzdx"], _ref(ref[dzdx_names[i]], res[0]["dzdx"]), dzdx_names[i])
        for name in run["res_dzdw"]:
            if int(name.split("_")[2]) - 1 == i:
                got = res[0]["dzdw"][int(name.split("_")[3]) - 1]
                _close(got, _ref(ref[name], got), name)


@pytest.mark.parametrize("model,run", _runs())
def test_whole_network_matches_the_original(model, run):
    """End to end from the stored input.  Float32 rounding differences (oneDNN's sums are
    not BLAS's) pass through the chain; batch normalisation over two 1 x 1 samples
    amplifies them about tenfold, hence 1e-3 rather than the block tolerance here (the
    per-layer test above holds every layer to 1e-4)."""
    net, ref = _setup(model, run)
    x = _tensor(ref["x"])
    dzdy = torch.tensor(float(ref["dzdy"].ravel()[0]))
    res = vl_simplenn(net, x, dzdy, mode=run["mode"])
    tol = 1e-3
    for k, name in enumerate(run["res_x"]):
        _close(res[k]["x"], _ref(ref[name], res[k]["x"]), name, tol)
    for name in run["res_dzdx"]:
        k = int(name.split("_")[2]) - 1
        _close(res[k]["dzdx"], _ref(ref[name], res[k]["dzdx"]), name, tol)
    for name in run["res_dzdw"]:
        layer, j = int(name.split("_")[2]) - 1, int(name.split("_")[3]) - 1
        got = res[layer]["dzdw"][j]
        _close(got, _ref(ref[name], got), name, tol)
