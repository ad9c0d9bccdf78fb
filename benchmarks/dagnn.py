"""DagNN overhead: the same computation through DagNN, SimpleNN and bare block calls.

Rows (forward + backward, median of repeats, ms):

* LeNet (cnn_mnist_init, batch 100, 28 x 28): vl_simplenn vs DagNN.from_simplenn.
* A stack of ResNet basic blocks (conv-bn-relu-conv-bn + identity, sum, relu), which
  SimpleNN cannot express: DagNN vs the same block calls written out by hand.

    python3 benchmarks/dagnn.py [--repeat 20] [--device cpu|cuda] [--blocks 4]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matconvnet as mcn  # noqa: E402
from matconvnet.dagnn import DagNN, layers as L  # noqa: E402
from matconvnet.models import cnn_mnist_init  # noqa: E402
from matconvnet.simplenn import vl_simplenn, vl_simplenn_move  # noqa: E402


def timed(fn, repeat, device):
    for _ in range(3):
        fn()
    samples = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - t)
    return 1e3 * statistics.median(samples)


def lenet_rows(repeat, device):
    simple = vl_simplenn_move(cnn_mnist_init(batch_normalization=False, seed=0), device)
    x = torch.randn(100, 1, 28, 28, device=device)
    c = torch.randint(1, 11, (100,), device=device)
    simple["layers"][-1]["class"] = c
    net = DagNN.from_simplenn(simple).move(device)
    n = len(simple["layers"])
    net.conserve_memory = False
    one = torch.tensor(1.0, device=device)
    s = timed(lambda: vl_simplenn(simple, x, one), repeat, device)
    d = timed(lambda: net.eval({"x0": x, "label": c}, {f"x{n}": one}), repeat, device)
    return [("LeNet, batch 100", "vl_simplenn", s, "DagNN", d)]


def resnet_stack(blocks, channels, device):
    net = DagNN()
    prev = "input"
    for i in range(blocks):
        p = f"b{i}"
        net.add_layer(p + "c1", L.Conv(size=[3, 3, channels, channels], pad=1, hasBias=False),
                      [prev], [p + "a"], [p + "f1"])
        net.add_layer(p + "n1", L.BatchNorm(numChannels=channels), [p + "a"], [p + "an"], [p + "g1", p + "h1", p + "m1"])
        net.add_layer(p + "r1", L.ReLU(), [p + "an"], [p + "ar"])
        net.add_layer(p + "c2", L.Conv(size=[3, 3, channels, channels], pad=1, hasBias=False),
                      [p + "ar"], [p + "b"], [p + "f2"])
        net.add_layer(p + "n2", L.BatchNorm(numChannels=channels), [p + "b"], [p + "bn"], [p + "g2", p + "h2", p + "m2"])
        net.add_layer(p + "s", L.Sum(), [p + "bn", prev], [p + "sum"])
        net.add_layer(p + "r2", L.ReLU(), [p + "sum"], [p + "out"])
        prev = p + "out"
    net.init_params()
    net.move(device)
    return net, prev


def manual_stack(net, x, dy, blocks):
    """The same computation as resnet_stack, as bare block calls (chapter 2 by hand)."""
    P = {p.name: p.value for p in net.params}
    tape, h = [], x
    for i in range(blocks):
        p = f"b{i}"
        a = mcn.vl_nnconv(h, P[p + "f1"], None, pad=1)
        an = mcn.vl_nnbnorm(a, P[p + "g1"], P[p + "h1"], epsilon=1e-5)
        ar = mcn.vl_nnrelu(an)
        b = mcn.vl_nnconv(ar, P[p + "f2"], None, pad=1)
        bn = mcn.vl_nnbnorm(b, P[p + "g2"], P[p + "h2"], epsilon=1e-5)
        out = mcn.vl_nnrelu(bn + h)
        tape.append((p, h, a, an, ar, b, bn + h, out))
        h = out
    d = dy
    for p, h, a, an, ar, b, s, out in reversed(tape):
        ds = mcn.vl_nnrelu(out, d)
        dbn = ds
        db, _, _, _ = mcn.vl_nnbnorm(b, P[p + "g2"], P[p + "h2"], dbn, epsilon=1e-5)
        dar, _, _ = mcn.vl_nnconv(ar, P[p + "f2"], None, db, pad=1)
        dan = mcn.vl_nnrelu(ar, dar)
        da, _, _, _ = mcn.vl_nnbnorm(a, P[p + "g1"], P[p + "h1"], dan, epsilon=1e-5)
        dh, _, _ = mcn.vl_nnconv(h, P[p + "f1"], None, da, pad=1)
        d = dh + ds
    return d


def resnet_rows(repeat, device, blocks):
    channels, size = 32, 28
    net, out = resnet_stack(blocks, channels, device)
    net.conserve_memory = False
    x = torch.randn(8, channels, size, size, device=device)
    dy = torch.randn(8, channels, size, size, device=device)
    net.eval({"input": x}, {out: dy})
    torch.testing.assert_close(net.vars[net.get_var_index("input")].der,
                               manual_stack(net, x, dy, blocks), rtol=1e-4, atol=1e-4)
    m = timed(lambda: manual_stack(net, x, dy, blocks), repeat, device)
    d = timed(lambda: net.eval({"input": x}, {out: dy}), repeat, device)
    return [(f"ResNet basic blocks x{blocks}, 8x{channels}x{size}x{size}", "block calls", m, "DagNN", d)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--blocks", type=int, default=4)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is available")
    rows = lenet_rows(args.repeat, device) + resnet_rows(args.repeat, device, args.blocks)
    print("| network | baseline | baseline ms | DagNN ms | DagNN / baseline |")
    print("|---|---|---:|---:|---:|")
    for name, base, b, _, d in rows:
        print(f"| {name} | {base} | {b:.2f} | {d:.2f} | {d / b:.2f} |")


if __name__ == "__main__":
    main()
