"""vl_nnloss and vl_nnsoftmaxloss: ports of MatConvNet's X-LOSS and X-SMXL tests (in float64
with central differences), an independent per-location reference, cross-checks against
torch's own losses, and validation (B-LOSS, B-SMXL, O-LOSS-*, R-LOSS-1..8, R-SMXL-1, Q-03)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import matconvnet as mcn

CATEGORICAL = ("classerror", "log", "softmaxlog", "mhinge", "mshinge")
ATTRIBUTE = ("binaryerror", "binarylog", "logistic", "hinge")
LOSSES = CATEGORICAL + ATTRIBUTE            # X-LOSS's nine losses (no topkerror)
ALL_LOSSES = LOSSES + ("topkerror",)
ERRORS = ("classerror", "topkerror", "binaryerror")
VARIANTS = ("nullcategories", "nullcategories-weighed", "convolutional",
            "convolutional-weighed", "instanceweights")
N, H, W = 3, 4, 5


def numeric_dzdx(f, x, dzdy, eps=1e-6):
    """Central-difference derivative of dzdy * f(x) (f scalar-valued) with respect to x."""
    x = x.detach().clone()
    g = torch.empty_like(x)
    xf, gf = x.view(-1), g.view(-1)
    for i in range(xf.numel()):
        v = xf[i].item()
        xf[i] = v + eps
        fp = float(f(x))
        xf[i] = v - eps
        fm = float(f(x))
        xf[i] = v
        gf[i] = (fp - fm) / (2 * eps)
    return g * float(dzdy)


def kink_distance(loss, x, c):
    """Distance of the non-ignored inputs from the kinks of the hinge losses (inf if none)."""
    valid = c != 0
    if not valid.any():
        return math.inf
    if loss == "hinge":
        return float((c * x - 1).abs()[valid].min())
    if loss in ("mhinge", "mshinge"):
        index = (c.long() - 1).clamp(min=0)
        xc = x.gather(1, index)
        if loss == "mhinge":
            return float((xc - 1).abs()[valid].min())
        others = x.scatter(1, index, -math.inf).sort(dim=1, descending=True)[0]
        d = torch.minimum((xc - others[:, :1] - 1).abs(), others[:, :1] - others[:, 1:2])
        return float(d[valid].min())
    return math.inf


def draw_x(loss, shape):
    if loss == "log":
        x = torch.rand(shape, dtype=torch.float64) * 0.6 + 0.2
        return x / x.sum(dim=1, keepdim=True)
    if loss == "binarylog":
        return torch.rand(shape, dtype=torch.float64) * 0.6 + 0.2
    return torch.randn(shape, dtype=torch.float64)


def make_case(loss, variant="convolutional", seed=0):
    """X-LOSS's getx: x, labels c, instance weights (None unless weighed) and scalar dzdy."""
    torch.manual_seed(seed)
    categorical = loss in CATEGORICAL or loss == "topkerror"
    channels = 3 if categorical else 5
    for _ in range(100):
        if categorical:
            c = torch.randint(1, channels + 1, (N, 1, H, W))
            iw = torch.rand(H, W, dtype=torch.float64) / (H * W)
        else:
            c = torch.randn(N, channels, H, W).sign().long()
            iw = torch.rand(channels, H, W, dtype=torch.float64) / (H * W * channels)
        if variant.startswith("nullcategories"):
            c[torch.rand(c.shape) < 0.5] = 0
        x = draw_x(loss, (N, channels, H, W))
        if kink_distance(loss, x, c) > 1e-3:
            break
    else:  # pragma: no cover
        raise AssertionError("could not draw inputs away from the kinks")
    weighed = variant.endswith("weighed") or variant == "instanceweights"
    dzdy = torch.randn((), dtype=torch.float64)
    return x, c, (iw if weighed else None), dzdy


def reference_loss(loss, x, c, iw=None, top_k=5, threshold=0.0, normalise=True):
    """Per-location loop in NumPy, straight from the manual's formulas."""
    x = np.asarray(x, dtype=np.float64)
    n_img, channels, h, w = x.shape
    c = np.asarray(c)
    if c.size == n_img and c.shape != (n_img, 1, h, w) and loss in CATEGORICAL + ("topkerror",):
        c = np.broadcast_to(c.reshape(n_img, 1, 1, 1), (n_img, 1, h, w))
    if iw is None:
        weights = np.ones(c.shape)
    else:
        iw = np.asarray(iw, dtype=np.float64)
        if iw.ndim == 1 and iw.size == n_img:
            iw = iw.reshape(n_img, 1, 1, 1)
        weights = np.broadcast_to(iw, c.shape)
    total = 0.0
    if loss in CATEGORICAL + ("topkerror",):
        for n in range(n_img):
            for i in range(h):
                for j in range(w):
                    k = int(c[n, 0, i, j])
                    if k == 0:
                        continue
                    k -= 1
                    v = x[n, :, i, j]
                    if loss == "classerror":
                        t = float(np.argmax(v) != k)
                    elif loss == "topkerror":
                        t = float(k not in np.argsort(-v, kind="stable")[:top_k])
                    elif loss == "log":
                        t = -math.log(v[k])
                    elif loss == "softmaxlog":
                        t = v.max() + math.log(np.exp(v - v.max()).sum()) - v[k]
                    elif loss == "mhinge":
                        t = max(0.0, 1 - v[k])
                    else:
                        t = max(0.0, 1 - v[k] + np.delete(v, k).max())
                    total += weights[n, 0, i, j] * t
    else:
        c = c.astype(np.float64)
        valid = c != 0
        with np.errstate(all="ignore"):
            if loss == "binaryerror":
                t = (np.sign(x - threshold) != c).astype(np.float64)
            elif loss == "binarylog":
                t = -np.log(c * (x - 0.5) + 0.5)
            elif loss == "logistic":
                t = np.logaddexp(0, -c * x)
            else:
                t = np.maximum(0, 1 - c * x)
        total = float((weights * t)[valid].sum())
    return total / n_img if normalise else total


def loss_fn(loss, c, **opts):
    return lambda t: mcn.vl_nnloss(t, c, loss=loss, **opts)


# =================================================================== X-LOSS port

@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("loss", LOSSES)
def test_forward_matches_reference(loss, variant):
    x, c, iw, _ = make_case(loss, variant)
    y = mcn.vl_nnloss(x, c, loss=loss, instance_weights=iw)
    assert isinstance(y, torch.Tensor) and y.dim() == 0 and y.dtype == torch.float64
    assert y.item() == pytest.approx(reference_loss(loss, x, c, iw), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("loss", LOSSES)
def test_derivative(loss, variant):
    x, c, iw, dzdy = make_case(loss, variant)
    dzdx = mcn.vl_nnloss(x, c, dzdy, loss=loss, instance_weights=iw)
    assert dzdx.shape == x.shape and dzdx.dtype == x.dtype
    if loss in ERRORS:
        assert torch.equal(dzdx, torch.zeros_like(x))
        return
    num = numeric_dzdx(loss_fn(loss, c, instance_weights=iw), x, dzdy)
    torch.testing.assert_close(dzdx, num, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_all_zero_instance_weights_give_zero_loss(loss):
    x, c, iw, dzdy = make_case(loss, "instanceweights")
    zero = torch.zeros_like(iw)
    assert mcn.vl_nnloss(x, c, loss=loss, instance_weights=zero).item() == 0
    assert torch.equal(mcn.vl_nnloss(x, c, dzdy, loss=loss, instance_weights=zero).abs(),
                       torch.zeros_like(x))


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_all_labels_ignored_gives_zero(loss):
    x, c, _, dzdy = make_case(loss)
    c = torch.zeros_like(c)
    assert mcn.vl_nnloss(x, c, loss=loss).item() == 0
    assert torch.equal(mcn.vl_nnloss(x, c, dzdy, loss=loss).abs(), torch.zeros_like(x))


# =================================================================== aggregation and weights

@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_normalise_false_multiplies_by_n(loss):
    # O-LOSS-5 / R-LOSS-3: normalise divides by N = size(X,4), also in the derivative.
    x, c, iw, dzdy = make_case(loss, "nullcategories-weighed")
    y1 = mcn.vl_nnloss(x, c, loss=loss, instance_weights=iw)
    y0 = mcn.vl_nnloss(x, c, loss=loss, instance_weights=iw, normalise=False)
    torch.testing.assert_close(y0, N * y1, rtol=1e-14, atol=0)
    d1 = mcn.vl_nnloss(x, c, dzdy, loss=loss, instance_weights=iw)
    d0 = mcn.vl_nnloss(x, c, dzdy, loss=loss, instance_weights=iw, normalise=False)
    torch.testing.assert_close(d0, N * d1, rtol=1e-14, atol=0)


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_normalises_by_images_not_by_used_labels(loss):
    # the divisor is N even when most labels are ignored.
    x, c, _, _ = make_case(loss, "nullcategories")
    y = mcn.vl_nnloss(x, c, loss=loss)
    y_sum = mcn.vl_nnloss(x, c, loss=loss, normalise=False)
    assert y.item() == pytest.approx(y_sum.item() / N, rel=1e-14)


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_ignore_label_excludes_location_exactly(loss):
    # R-LOSS-2 / R-LOSS-8: x at ignored locations (or elements) has no effect whatsoever.
    x, c, iw, dzdy = make_case(loss, "nullcategories-weighed", seed=1)
    ignored = (c == 0).expand_as(x)
    assert ignored.any() and not ignored.all()
    x2 = x.clone()
    if loss in ("log", "binarylog"):
        fresh = torch.rand_like(x)
        fresh.view(-1)[0] = 0.0          # log(0) at an ignored place must not leak in
    else:
        fresh = 100 * torch.randn_like(x)
    x2[ignored] = fresh[ignored]
    kwargs = dict(loss=loss, instance_weights=iw)
    y, y2 = mcn.vl_nnloss(x, c, **kwargs), mcn.vl_nnloss(x2, c, **kwargs)
    assert torch.isfinite(y2) and torch.equal(y, y2)
    d, d2 = mcn.vl_nnloss(x, c, dzdy, **kwargs), mcn.vl_nnloss(x2, c, dzdy, **kwargs)
    assert torch.isfinite(d2).all() and torch.equal(d, d2)
    assert torch.equal(d[ignored].abs(), torch.zeros(int(ignored.sum()), dtype=x.dtype))


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_ignored_labels_equal_zero_instance_weights(loss):
    x, c, iw, dzdy = make_case(loss, "nullcategories-weighed", seed=2)
    c_full = c.clone()
    c_full[c == 0] = 1
    w_full = iw * (c != 0)
    kw = dict(loss=loss)
    torch.testing.assert_close(mcn.vl_nnloss(x, c, instance_weights=iw, **kw),
                               mcn.vl_nnloss(x, c_full, instance_weights=w_full, **kw),
                               rtol=1e-14, atol=1e-16)
    torch.testing.assert_close(mcn.vl_nnloss(x, c, dzdy, instance_weights=iw, **kw),
                               mcn.vl_nnloss(x, c_full, dzdy, instance_weights=w_full, **kw),
                               rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_instance_weights_one_per_image(loss):
    # O-LOSS-2: a vector of N weights is one weight per image.
    x, c, _, dzdy = make_case(loss, "convolutional")
    per_image = torch.rand(N, dtype=torch.float64)
    full = per_image.reshape(N, 1, 1, 1).expand(c.shape).contiguous()
    for d in (None, dzdy):
        args = (x, c) if d is None else (x, c, d)
        torch.testing.assert_close(mcn.vl_nnloss(*args, loss=loss, instance_weights=per_image),
                                   mcn.vl_nnloss(*args, loss=loss, instance_weights=full),
                                   rtol=1e-14, atol=1e-16)
    assert mcn.vl_nnloss(x, c, loss=loss, instance_weights=per_image).item() == pytest.approx(
        reference_loss(loss, x, c, per_image), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_scalar_instance_weight_scales(loss):
    x, c, _, dzdy = make_case(loss, "convolutional")
    s = torch.tensor(0.37, dtype=torch.float64)
    torch.testing.assert_close(mcn.vl_nnloss(x, c, loss=loss, instance_weights=s),
                               0.37 * mcn.vl_nnloss(x, c, loss=loss), rtol=1e-14, atol=0)
    torch.testing.assert_close(mcn.vl_nnloss(x, c, dzdy, loss=loss, instance_weights=s),
                               0.37 * mcn.vl_nnloss(x, c, dzdy, loss=loss), rtol=1e-14, atol=0)


CATEGORICAL_ALL = CATEGORICAL + ("topkerror",)


@pytest.mark.parametrize("form", ["vector", "n111", "list", "numpy-int32", "float"])
@pytest.mark.parametrize("loss", CATEGORICAL_ALL)
def test_per_image_labels_equal_replicated(loss, form):
    # R-LOSS-1 (1): N labels are replicated over H x W.
    x, _, _, dzdy = make_case(loss, "convolutional")
    labels = torch.tensor([2, 0, 3])
    replicated = labels.reshape(N, 1, 1, 1).expand(N, 1, H, W).contiguous()
    c = {"vector": labels, "n111": labels.reshape(N, 1, 1, 1), "list": [2, 0, 3],
         "numpy-int32": np.array([2, 0, 3], dtype=np.int32),
         "float": labels.double()}[form]
    torch.testing.assert_close(mcn.vl_nnloss(x, c, loss=loss),
                               mcn.vl_nnloss(x, replicated, loss=loss), rtol=0, atol=0)
    torch.testing.assert_close(mcn.vl_nnloss(x, c, dzdy, loss=loss),
                               mcn.vl_nnloss(x, replicated, dzdy, loss=loss), rtol=0, atol=0)


@pytest.mark.parametrize("loss", LOSSES)
def test_explicit_none_dzdy_is_forward(loss):
    # vl_nnloss(X, c, [], opts) in MatConvNet.
    x, c, iw, _ = make_case(loss, "nullcategories-weighed")
    torch.testing.assert_close(mcn.vl_nnloss(x, c, None, loss=loss, instance_weights=iw),
                               mcn.vl_nnloss(x, c, loss=loss, instance_weights=iw),
                               rtol=0, atol=0)


def test_default_loss_is_softmaxlog():
    x, c, _, dzdy = make_case("softmaxlog")
    assert torch.equal(mcn.vl_nnloss(x, c), mcn.vl_nnloss(x, c, loss="softmaxlog"))
    assert torch.equal(mcn.vl_nnloss(x, c, dzdy), mcn.vl_nnloss(x, c, dzdy, loss="softmaxlog"))


def test_loss_name_is_case_insensitive():
    x, c, _, _ = make_case("softmaxlog")
    assert torch.equal(mcn.vl_nnloss(x, c, loss="SoftMaxLog"), mcn.vl_nnloss(x, c))


# =================================================================== error losses by hand

def test_classerror_first_maximum_wins():
    x = torch.tensor([2.0, 2.0, 0.0], dtype=torch.float64).reshape(1, 3, 1, 1).repeat(3, 1, 1, 1)
    c = torch.tensor([1, 2, 3])
    # argmax with ties -> class 1: errors 0, 1, 1.
    assert mcn.vl_nnloss(x, c, loss="classerror", normalise=False).item() == 2


def test_topkerror_hand_made_with_ties():
    # Stable descending sort of [1, 2, 2, 0]: classes 2, 3, 1, 4.
    x = torch.tensor([1.0, 2.0, 2.0, 0.0], dtype=torch.float64).reshape(1, 4, 1, 1).repeat(4, 1, 1, 1)
    c = torch.tensor([2, 3, 1, 4])
    expected = {1: 3, 2: 2, 3: 1, 4: 0, 5: 0}
    for k, errors in expected.items():
        y = mcn.vl_nnloss(x, c, loss="topkerror", top_k=k, normalise=False)
        assert y.item() == errors, k
    # All scores equal: the top k are the first k classes.
    x = torch.full((4, 4, 1, 1), 5.0, dtype=torch.float64)
    y = mcn.vl_nnloss(x, c, loss="topkerror", top_k=2, normalise=False)
    assert y.item() == 2          # classes 3 and 4 miss


@pytest.mark.parametrize("variant", ["convolutional", "nullcategories-weighed"])
def test_topkerror_top1_equals_classerror(variant):
    x, c, iw, _ = make_case("topkerror", variant)
    x = x.mul(2).round()            # plenty of ties
    torch.testing.assert_close(
        mcn.vl_nnloss(x, c, loss="topkerror", top_k=1, instance_weights=iw),
        mcn.vl_nnloss(x, c, loss="classerror", instance_weights=iw), rtol=0, atol=0)


@pytest.mark.parametrize("top_k", [3, 4, 100])
def test_topkerror_k_at_least_c_gives_zero(top_k):
    x, c, _, _ = make_case("topkerror")
    assert mcn.vl_nnloss(x, c, loss="topkerror", top_k=top_k).item() == 0


@pytest.mark.parametrize("top_k", [1, 2, 5, 9])
def test_topkerror_matches_reference(top_k):
    torch.manual_seed(3)
    x = torch.randn(N, 10, H, W, dtype=torch.float64).mul(2).round()
    c = torch.randint(0, 11, (N, 1, H, W))
    y = mcn.vl_nnloss(x, c, loss="topkerror", top_k=top_k)
    assert y.item() == pytest.approx(reference_loss("topkerror", x, c, top_k=top_k), rel=1e-14)


def test_topkerror_default_k_is_5():
    torch.manual_seed(4)
    x = torch.randn(N, 10, H, W, dtype=torch.float64)
    c = torch.randint(1, 11, (N, 1, H, W))
    assert torch.equal(mcn.vl_nnloss(x, c, loss="topkerror"),
                       mcn.vl_nnloss(x, c, loss="topkerror", top_k=5))


def test_binaryerror_threshold():
    # R-LOSS-7: t = [sign(x - tau) != c], sign(0) = 0 counts as an error.
    x = torch.tensor([-1.0, 0.2, 0.5, 0.7, 0.0, 0.5], dtype=torch.float64).reshape(1, 6, 1, 1)
    c = torch.tensor([1, 1, 1, 1, -1, -1]).reshape(1, 6, 1, 1)
    kw = dict(loss="binaryerror", normalise=False)
    assert mcn.vl_nnloss(x, c, threshold=0.5, **kw).item() == 4     # errors 1 1 1 0 0 1
    assert mcn.vl_nnloss(x, c, threshold=0, **kw).item() == 3       # errors 1 0 0 0 1 1
    assert mcn.vl_nnloss(x, c, **kw).item() == 3                    # default threshold 0
    assert mcn.vl_nnloss(x, c, threshold=-2, **kw).item() == 2      # all +1: the two -1 miss


# =================================================================== special values

def test_log_derivative_clamps_at_1e_8():
    # R-LOSS-5: dx_c = -dzdy / max(x_c, 1e-8).
    x = torch.tensor([0.0, 1.0, 0.0, 0.5], dtype=torch.float64).reshape(2, 2, 1, 1)
    c = torch.tensor([1, 1])
    d = mcn.vl_nnloss(x, c, torch.tensor(2.0, dtype=torch.float64), loss="log")
    expected = torch.tensor([-2 / 1e-8 / 2, 0.0, -2 / 1e-8 / 2, 0.0], dtype=torch.float64)
    torch.testing.assert_close(d, expected.reshape(2, 2, 1, 1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_logistic_and_softmaxlog_are_stable_for_large_inputs(dtype):
    x = torch.tensor([1000.0, -1000.0, 50.0, -50.0], dtype=dtype).reshape(1, 4, 1, 1)
    c = torch.tensor([1, 1, -1, -1]).reshape(1, 4, 1, 1)
    y = mcn.vl_nnloss(x, c, loss="logistic", normalise=False)
    assert torch.isfinite(y)
    assert y.item() == pytest.approx(0 + 1000 + 50 + 0, rel=1e-6)
    d = mcn.vl_nnloss(x, c, 1.0, loss="logistic")
    assert torch.isfinite(d).all()
    torch.testing.assert_close(d.double().flatten(), torch.tensor([0.0, -1.0, 1.0, 0.0],
                                                                  dtype=torch.float64))
    y = mcn.vl_nnloss(x, torch.tensor([2]), loss="softmaxlog")
    assert y.item() == pytest.approx(2000, rel=1e-6)
    assert torch.isfinite(mcn.vl_nnloss(x, torch.tensor([2]), 1.0, loss="softmaxlog")).all()


# =================================================================== cross-checks against torch

XVARIANTS = ("convolutional", "nullcategories", "convolutional-weighed", "nullcategories-weighed")


def torch_weights(c, iw):
    w = (c != 0).double()
    return w if iw is None else w * iw


def check_with_autograd(block_loss, x, c, iw, dzdy, torch_loss):
    xa = x.clone().requires_grad_(True)
    ya = torch_loss(xa)
    ya.backward(dzdy)
    y = mcn.vl_nnloss(x, c, loss=block_loss, instance_weights=iw)
    torch.testing.assert_close(y, ya.detach(), rtol=1e-12, atol=1e-14)
    d = mcn.vl_nnloss(x, c, dzdy, loss=block_loss, instance_weights=iw)
    torch.testing.assert_close(d, xa.grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("variant", XVARIANTS)
def test_softmaxlog_vs_cross_entropy(variant):
    x, c, iw, dzdy = make_case("softmaxlog", variant, seed=5)
    w = torch_weights(c, iw)[:, 0]
    target = c[:, 0] - 1

    def ref(t):
        return (F.cross_entropy(t, target, ignore_index=-1, reduction="none") * w).sum() / N
    check_with_autograd("softmaxlog", x, c, iw, dzdy, ref)
    if iw is None:
        y = F.cross_entropy(x, target, ignore_index=-1, reduction="sum") / N
        torch.testing.assert_close(mcn.vl_nnloss(x, c), y, rtol=1e-12, atol=0)


@pytest.mark.parametrize("variant", XVARIANTS)
def test_log_vs_nll_loss(variant):
    x, c, iw, dzdy = make_case("log", variant, seed=6)
    w = torch_weights(c, iw)[:, 0]
    target = c[:, 0] - 1

    def ref(t):
        return (F.nll_loss(torch.log(t), target, ignore_index=-1, reduction="none") * w).sum() / N
    check_with_autograd("log", x, c, iw, dzdy, ref)


@pytest.mark.parametrize("variant", XVARIANTS)
def test_logistic_vs_soft_margin_loss_and_softplus(variant):
    x, c, iw, dzdy = make_case("logistic", variant, seed=7)
    w = torch_weights(c, iw)
    cf = c.double()

    def ref(t):
        return (F.soft_margin_loss(t, cf, reduction="none") * w).sum() / N
    check_with_autograd("logistic", x, c, iw, dzdy, ref)

    def ref2(t):
        return (F.softplus(-cf * t) * w).sum() / N
    check_with_autograd("logistic", x, c, iw, dzdy, ref2)
    if variant == "convolutional":
        torch.testing.assert_close(mcn.vl_nnloss(x, c, loss="logistic"),
                                   F.soft_margin_loss(x, cf, reduction="sum") / N,
                                   rtol=1e-12, atol=0)


@pytest.mark.parametrize("variant", XVARIANTS)
def test_binarylog_vs_binary_cross_entropy(variant):
    x, c, iw, dzdy = make_case("binarylog", variant, seed=8)
    w = torch_weights(c, iw)
    target = (c.double() + 1) / 2

    def ref(t):
        return (F.binary_cross_entropy(t, target, reduction="none") * w).sum() / N
    check_with_autograd("binarylog", x, c, iw, dzdy, ref)


@pytest.mark.parametrize("variant", XVARIANTS)
@pytest.mark.parametrize("loss", ["mhinge", "mshinge", "hinge"])
def test_hinge_losses_vs_autograd_formula(loss, variant):
    x, c, iw, dzdy = make_case(loss, variant, seed=9)
    w = torch_weights(c, iw)
    index = (c - 1).clamp(min=0)

    def ref(t):
        if loss == "hinge":
            return (torch.relu(1 - c.double() * t) * w).sum() / N
        tc = t.gather(1, index)
        if loss == "mhinge":
            return (torch.relu(1 - tc) * w).sum() / N
        others = t.masked_fill(F.one_hot(index[:, 0], 3).permute(0, 3, 1, 2).bool(), -math.inf)
        return (torch.relu(1 - tc + others.amax(dim=1, keepdim=True)) * w).sum() / N
    check_with_autograd(loss, x, c, iw, dzdy, ref)


# =================================================================== dzdy forms and array boundary

@pytest.mark.parametrize("form", ["python-float", "python-int", "0d", "1-element", "1x1x1x1"])
def test_dzdy_scalar_forms(form):
    x, c, iw, _ = make_case("softmaxlog", "nullcategories-weighed")
    dzdy = {"python-float": 2.0, "python-int": 2, "0d": torch.tensor(2.0, dtype=torch.float64),
            "1-element": torch.tensor([2.0], dtype=torch.float64),
            "1x1x1x1": torch.full((1, 1, 1, 1), 2.0, dtype=torch.float64)}[form]
    d = mcn.vl_nnloss(x, c, dzdy, instance_weights=iw)
    torch.testing.assert_close(d, 2 * mcn.vl_nnloss(x, c, 1.0, instance_weights=iw),
                               rtol=1e-15, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_numpy_in_numpy_out(loss, dtype):
    x, c, iw, _ = make_case(loss, "nullcategories-weighed")
    xn, cn, iwn = x.numpy().astype(dtype), c.numpy(), iw.numpy().astype(dtype)
    y = mcn.vl_nnloss(xn, cn, loss=loss, instance_weights=iwn)
    assert isinstance(y, np.ndarray) and y.shape == () and y.dtype == dtype
    d = mcn.vl_nnloss(xn, cn, np.array(0.5, dtype=dtype), loss=loss, instance_weights=iwn)
    assert isinstance(d, np.ndarray) and d.shape == xn.shape and d.dtype == dtype
    ref = reference_loss(loss, xn, cn, iwn)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert float(y) == pytest.approx(ref, rel=tol, abs=tol)
    d_ref = mcn.vl_nnloss(x, c, 0.5, loss=loss, instance_weights=iw).numpy()
    np.testing.assert_allclose(d, d_ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_torch_float32_preserved(loss):
    x, c, iw, _ = make_case(loss, "nullcategories-weighed")
    x, iw = x.float(), iw.float()
    y = mcn.vl_nnloss(x, c, loss=loss, instance_weights=iw)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and y.dim() == 0
    d = mcn.vl_nnloss(x, c, 1.0, loss=loss, instance_weights=iw)
    assert isinstance(d, torch.Tensor) and d.dtype == torch.float32 and d.shape == x.shape


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_non_contiguous_inputs(loss):
    x, c, iw, dzdy = make_case(loss, "nullcategories-weighed")
    xn, cn, iwn = x.numpy(), c.numpy(), iw.numpy()
    kw = dict(loss=loss, instance_weights=iwn)
    for xs, cs in ((np.asfortranarray(xn), np.asfortranarray(cn)), (xn[:, :, ::-1], cn[:, :, ::-1])):
        ws = iwn if xs.flags.f_contiguous else iwn[..., ::-1, :]
        kw["instance_weights"] = ws
        ref_kw = dict(loss=loss, instance_weights=np.ascontiguousarray(ws))
        assert mcn.vl_nnloss(xs, cs, **kw) == pytest.approx(
            float(mcn.vl_nnloss(np.ascontiguousarray(xs), np.ascontiguousarray(cs), **ref_kw)),
            rel=1e-13, abs=1e-15)
        np.testing.assert_allclose(
            mcn.vl_nnloss(xs, cs, 0.5, **kw),
            mcn.vl_nnloss(np.ascontiguousarray(xs), np.ascontiguousarray(cs), 0.5, **ref_kw),
            rtol=1e-13, atol=1e-15)


def test_labels_may_be_numpy_with_torch_x():
    x, c, _, dzdy = make_case("mshinge")
    assert torch.equal(mcn.vl_nnloss(x, c.numpy(), loss="mshinge"),
                       mcn.vl_nnloss(x, c, loss="mshinge"))
    assert torch.equal(mcn.vl_nnloss(x, c.numpy().astype(np.float32), dzdy, loss="mshinge"),
                       mcn.vl_nnloss(x, c, dzdy, loss="mshinge"))


# =================================================================== validation

def cat_x():
    return torch.rand(N, 3, H, W, dtype=torch.float64)


def att_x():
    return torch.randn(N, 5, H, W, dtype=torch.float64)


def cat_c():
    return torch.randint(1, 4, (N, 1, H, W))


def att_c():
    return torch.ones(N, 5, H, W)


INVALID = [
    ("unknown-loss", lambda: mcn.vl_nnloss(cat_x(), cat_c(), loss="hingeloss"), ValueError, "loss"),
    ("loss-not-str", lambda: mcn.vl_nnloss(cat_x(), cat_c(), loss=3), ValueError, "loss"),
    ("labels-wrong-n", lambda: mcn.vl_nnloss(cat_x(), torch.ones(N + 1, 1, H, W)), ValueError, "c"),
    ("labels-wrong-h", lambda: mcn.vl_nnloss(cat_x(), torch.ones(N, 1, H + 1, W)), ValueError, "c"),
    ("labels-wrong-w", lambda: mcn.vl_nnloss(cat_x(), torch.ones(N, 1, H, W - 1)), ValueError, "c"),
    ("labels-wrong-count", lambda: mcn.vl_nnloss(cat_x(), torch.ones(N + 1)), ValueError, "c"),
    ("labels-3d", lambda: mcn.vl_nnloss(cat_x(), torch.ones(N, H, W)), ValueError, "c"),
    ("categorical-2-channels", lambda: mcn.vl_nnloss(cat_x(), torch.ones(N, 2, H, W)), ValueError, "c"),
    ("categorical-c-channels", lambda: mcn.vl_nnloss(cat_x(), torch.ones(N, 3, H, W), loss="log"),
     ValueError, "c"),
    ("attribute-1-channel", lambda: mcn.vl_nnloss(att_x(), torch.ones(N, 1, H, W), loss="hinge"),
     ValueError, "c"),
    ("attribute-wrong-channels", lambda: mcn.vl_nnloss(att_x(), torch.ones(N, 4, H, W),
                                                       loss="logistic"), ValueError, "c"),
    ("attribute-per-image", lambda: mcn.vl_nnloss(att_x(), torch.ones(N), loss="binarylog"),
     ValueError, "c"),
    ("class-too-large", lambda: mcn.vl_nnloss(cat_x(), torch.full((N, 1, H, W), 4)), ValueError, "c"),
    ("class-negative", lambda: mcn.vl_nnloss(cat_x(), torch.full((N, 1, H, W), -1)), ValueError, "c"),
    ("class-non-integer", lambda: mcn.vl_nnloss(cat_x(), torch.full((N, 1, H, W), 1.5)),
     ValueError, "c"),
    ("class-too-large-backward", lambda: mcn.vl_nnloss(cat_x(), torch.full((N,), 7), 1.0, loss="log"),
     ValueError, "c"),
    ("labels-bool", lambda: mcn.vl_nnloss(cat_x(), torch.ones(N, 1, H, W, dtype=torch.bool)),
     TypeError, "c"),
    ("iw-not-broadcastable", lambda: mcn.vl_nnloss(cat_x(), cat_c(), instance_weights=torch.rand(
        H, W + 1, dtype=torch.float64)), ValueError, "instance_weights"),
    ("iw-wrong-n", lambda: mcn.vl_nnloss(cat_x(), cat_c(), instance_weights=torch.rand(
        N + 1, 1, 1, 1, dtype=torch.float64)), ValueError, "instance_weights"),
    ("iw-too-many-channels", lambda: mcn.vl_nnloss(cat_x(), cat_c(), instance_weights=torch.rand(
        3, H, W, dtype=torch.float64)), ValueError, "instance_weights"),
    ("iw-wrong-dtype", lambda: mcn.vl_nnloss(cat_x(), cat_c(), instance_weights=torch.rand(
        H, W, dtype=torch.float32)), TypeError, "instance_weights"),
    ("dzdy-vector", lambda: mcn.vl_nnloss(cat_x(), cat_c(), torch.ones(2, dtype=torch.float64)),
     ValueError, "dzdy"),
    ("dzdy-like-x", lambda: mcn.vl_nnloss(cat_x(), cat_c(), cat_x()), ValueError, "dzdy"),
    ("dzdy-string", lambda: mcn.vl_nnloss(cat_x(), cat_c(), "1"), TypeError, "dzdy"),
    ("top-k-zero", lambda: mcn.vl_nnloss(cat_x(), cat_c(), loss="topkerror", top_k=0),
     ValueError, "top_k"),
    ("top-k-negative", lambda: mcn.vl_nnloss(cat_x(), cat_c(), loss="topkerror", top_k=-2),
     ValueError, "top_k"),
    ("class-weights", lambda: mcn.vl_nnloss(cat_x(), cat_c(), class_weights=torch.ones(3)),
     ValueError, "class_weights"),
    ("x-3d", lambda: mcn.vl_nnloss(torch.rand(3, H, W, dtype=torch.float64), torch.ones(H, W)),
     ValueError, "x"),
    ("x-int", lambda: mcn.vl_nnloss(torch.ones(N, 3, H, W, dtype=torch.int64), cat_c()),
     TypeError, "x"),
]


@pytest.mark.parametrize("call,exc,name", [p[1:] for p in INVALID], ids=[p[0] for p in INVALID])
def test_invalid_arguments(call, exc, name):
    with pytest.raises(exc, match=rf"^{name}:"):
        call()


def test_unknown_keyword():
    with pytest.raises(TypeError, match="instanceWeights"):
        mcn.vl_nnloss(cat_x(), cat_c(), instanceWeights=torch.ones(H, W, dtype=torch.float64))


# =================================================================== X-SMXL port

def smxl_case(multilab, weighed, scale, seed=10):
    """C = 10, N = 3, x 3 x 10 x 3 x 4; labels mod(0:35,10)+1 (MATLAB order) or [7 2 1]."""
    torch.manual_seed(seed)
    h, w = 3, 4
    if scale == "small":
        x = torch.rand(N, 10, h, w, dtype=torch.float64) / 128 + 0.001
    else:
        x = torch.rand(N, 10, h, w, dtype=torch.float64) + 0.128
    if multilab:
        n, i, j = torch.meshgrid(torch.arange(N), torch.arange(h), torch.arange(w), indexing="ij")
        labels = ((i + h * j + h * w * n) % 10 + 1).reshape(N, 1, h, w)
    else:
        labels = torch.tensor([7, 2, 1]).reshape(N, 1, 1, 1)
    weights = None
    c = labels if multilab else labels.flatten()
    if weighed:
        weights = torch.rand(labels.shape, dtype=torch.float64)
        c = torch.cat([labels.double(), weights], dim=1)
    dzdy = torch.randn((), dtype=torch.float64)
    return x, c, labels, weights, dzdy


SMXL = [pytest.param(m, wd, s, id=f"{'multilab' if m else 'perimage'}-"
                     f"{'weighed' if wd else 'unweighed'}-{s}")
        for m in (False, True) for wd in (False, True) for s in ("small", "unit")]


@pytest.mark.parametrize("multilab,weighed,scale", SMXL)
def test_softmaxloss_equals_log_of_softmax(multilab, weighed, scale):
    x, c, labels, weights, dzdy = smxl_case(multilab, weighed, scale)
    p = mcn.vl_nnsoftmax(x)
    y = mcn.vl_nnsoftmaxloss(x, c)
    y_ref = mcn.vl_nnloss(p, labels, loss="log", instance_weights=weights)
    assert y.dim() == 0 and y.dtype == torch.float64
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-14)
    d = mcn.vl_nnsoftmaxloss(x, c, dzdy)
    d_ref = mcn.vl_nnsoftmax(x, mcn.vl_nnloss(p, labels, dzdy, loss="log",
                                               instance_weights=weights))
    torch.testing.assert_close(d, d_ref, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("multilab,weighed,scale", SMXL)
def test_softmaxloss_derivative(multilab, weighed, scale):
    x, c, _, _, dzdy = smxl_case(multilab, weighed, scale)
    d = mcn.vl_nnsoftmaxloss(x, c, dzdy)
    num = numeric_dzdx(lambda t: mcn.vl_nnsoftmaxloss(t, c), x, dzdy)
    torch.testing.assert_close(d, num, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("multilab,weighed,scale", SMXL[::2])
def test_softmaxloss_equals_weighted_softmaxlog(multilab, weighed, scale):
    x, c, labels, weights, dzdy = smxl_case(multilab, weighed, scale)
    kw = dict(loss="softmaxlog", instance_weights=weights)
    torch.testing.assert_close(mcn.vl_nnsoftmaxloss(x, c), mcn.vl_nnloss(x, labels, **kw),
                               rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(mcn.vl_nnsoftmaxloss(x, c, dzdy),
                               mcn.vl_nnloss(x, labels, dzdy, **kw), rtol=1e-12, atol=1e-14)


def test_softmaxloss_ignores_nonpositive_labels():
    torch.manual_seed(11)
    x = torch.randn(N, 4, 2, 3, dtype=torch.float64)
    c = torch.randint(1, 5, (N, 1, 2, 3))
    c[0, 0, 0, 0], c[1, 0, 1, 2], c[2, 0, 0, 1] = 0, -1, -5
    c0 = c.clamp(min=0)
    dzdy = torch.tensor(1.5, dtype=torch.float64)
    torch.testing.assert_close(mcn.vl_nnsoftmaxloss(x, c), mcn.vl_nnloss(x, c0),
                               rtol=1e-12, atol=0)
    torch.testing.assert_close(mcn.vl_nnsoftmaxloss(x, c, dzdy), mcn.vl_nnloss(x, c0, dzdy),
                               rtol=1e-12, atol=0)
    x2 = x.clone()
    x2[0, :, 0, 0] = 1e3
    assert torch.equal(mcn.vl_nnsoftmaxloss(x2, c), mcn.vl_nnsoftmaxloss(x, c))


def test_softmaxloss_vs_cross_entropy():
    torch.manual_seed(12)
    x = torch.randn(N, 6, 2, 3, dtype=torch.float64)
    c = torch.randint(1, 7, (N, 1, 2, 3))
    dzdy = torch.tensor(-0.7, dtype=torch.float64)
    xa = x.clone().requires_grad_(True)
    ya = F.cross_entropy(xa, c[:, 0] - 1, reduction="sum") / N
    ya.backward(dzdy)
    torch.testing.assert_close(mcn.vl_nnsoftmaxloss(x, c), ya.detach(), rtol=1e-12, atol=0)
    torch.testing.assert_close(mcn.vl_nnsoftmaxloss(x, c, dzdy), xa.grad, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_softmaxloss_numpy_in_numpy_out(dtype):
    x, c, _, _, _ = smxl_case(True, True, "unit")
    xn, cn = x.numpy().astype(dtype), c.numpy()
    y = mcn.vl_nnsoftmaxloss(xn, cn)
    d = mcn.vl_nnsoftmaxloss(xn, cn, 1.0)
    assert isinstance(y, np.ndarray) and y.shape == () and y.dtype == dtype
    assert isinstance(d, np.ndarray) and d.shape == xn.shape and d.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert float(y) == pytest.approx(float(mcn.vl_nnsoftmaxloss(x, c)), rel=tol)


SMXL_INVALID = [
    ("labels-wrong-n", lambda: mcn.vl_nnsoftmaxloss(cat_x(), torch.ones(N + 1, 1, H, W)), ValueError, "c"),
    ("labels-wrong-hw", lambda: mcn.vl_nnsoftmaxloss(cat_x(), torch.ones(N, 1, H, W + 1)), ValueError, "c"),
    ("labels-3-channels", lambda: mcn.vl_nnsoftmaxloss(cat_x(), torch.ones(N, 3, H, W)), ValueError, "c"),
    ("class-too-large", lambda: mcn.vl_nnsoftmaxloss(cat_x(), torch.full((N,), 4)), ValueError, "c"),
    ("dzdy-vector", lambda: mcn.vl_nnsoftmaxloss(cat_x(), cat_c(), torch.ones(2, dtype=torch.float64)),
     ValueError, "dzdy"),
    ("x-3d", lambda: mcn.vl_nnsoftmaxloss(torch.rand(3, H, W, dtype=torch.float64), torch.ones(3)),
     ValueError, "x"),
    # MatConvNet indexes with the labels, so non-integer classes are an error there (as they
    # are in vl_nnloss here); they must not be truncated silently.
    ("class-non-integer", lambda: mcn.vl_nnsoftmaxloss(cat_x(), torch.full((N, 1, H, W), 1.5)),
     ValueError, "c"),
]


@pytest.mark.parametrize("call,exc,name", [p[1:] for p in SMXL_INVALID],
                         ids=[p[0] for p in SMXL_INVALID])
def test_softmaxloss_invalid_arguments(call, exc, name):
    with pytest.raises(exc, match=rf"^{name}:"):
        call()


# ----------------------------------------------------------------------------- label checks

def test_labels_changed_in_place_are_checked_again():
    """The label check runs once per labels tensor and version: an in-place change after a
    first call is caught by the next one."""
    x = torch.randn(4, 5, 2, 2)
    c = torch.randint(1, 6, (4, 1, 2, 2))
    mcn.vl_nnloss(x, c)
    c[0, 0, 0, 0] = 9
    with pytest.raises(ValueError, match="c: expected class indices up to 5"):
        mcn.vl_nnloss(x, c, 1.0)
    c[0, 0, 0, 0] = 0      # allowed again: 0 = ignore, and the loss skips that location
    torch.testing.assert_close(mcn.vl_nnloss(x, c),
                               mcn.vl_nnloss(x, c, instance_weights=(c != 0).float()))


def test_label_check_tells_views_of_one_tensor_apart():
    """vl_nnsoftmaxloss reads N x 2 x H x W labels [class, weight]: views of the same tensor
    with different contents are each checked."""
    x = torch.randn(3, 4, 2, 2)
    both = torch.ones(3, 2, 2, 2)
    both[:, 1] = 7.0                         # weights, not class indices
    mcn.vl_nnsoftmaxloss(x, both)            # checks the class channel (all 1)
    with pytest.raises(ValueError, match="c: expected class indices up to 4"):
        mcn.vl_nnloss(x, both[:, 1:])        # the weight channel: 7 > 4


_TRITON_LOSS_CHECK = r"""
import torch
import matconvnet as mcn
from matconvnet.blocks import _triton
g = torch.Generator().manual_seed(0)
cases = []
for (n, c, h, w) in [(4, 6, 3, 5), (5, 1000, 1, 1), (2, 1100, 1, 3), (3, 1, 2, 2)]:
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64) * 3
    per_loc = torch.randint(0, c + 1, (n, 1, h, w), generator=g)
    per_img = torch.randint(1, c + 1, (n,), generator=g)
    iw = torch.rand(n, 1, h, w, generator=g, dtype=torch.float64)
    cases += [(x, per_loc, {}), (x, per_img, {}), (x, per_loc.double(), {"normalise": False}),
              (x, per_img, {"instance_weights": iw}), (x, per_loc, {"instance_weights": 0.5})]
results = {}
for mode in ("torch", "triton"):
    _triton.applies = (lambda t: True) if mode == "triton" else (lambda t: False)
    out = []
    for x, c, kw in cases:
        out.append(mcn.vl_nnloss(x, c, **kw))
        out.append(mcn.vl_nnloss(x, c, 0.7, **kw))
        out.append(mcn.vl_nnloss(x, c, torch.tensor(2.0, dtype=torch.float64), **kw))
        sm = torch.cat([c.reshape(x.shape[0], 1, *([1, 1] if c.dim() == 1 else c.shape[2:])).double(),
                        torch.full((x.shape[0], 1) + ((1, 1) if c.dim() == 1 else tuple(c.shape[2:])), 0.5,
                                   dtype=torch.float64)], 1)
        out.append(mcn.vl_nnsoftmaxloss(x, sm))
        out.append(mcn.vl_nnsoftmaxloss(x, sm, 1.0))
    results[mode] = out
for a, b in zip(results["torch"], results["triton"]):
    assert float((a - b).abs().max()) <= 1e-12 * max(1.0, float(a.abs().max())), float((a - b).abs().max())
print("ok")
"""


def test_triton_softmaxlog_kernels_match_the_torch_path():
    """The GPU kernels (run by Triton's interpreter on the CPU) give vl_nnloss's and
    vl_nnsoftmaxloss's results: labels per image or per location, ignored labels, weights,
    normalise, C over one chunk (1000+), dzdy a number or a tensor."""
    pytest.importorskip("triton", reason="Triton is not installed (it ships with CUDA builds)")
    import os
    import subprocess
    import sys
    env = dict(os.environ, TRITON_INTERPRET="1")
    r = subprocess.run([sys.executable, "-c", _TRITON_LOSS_CHECK], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]
