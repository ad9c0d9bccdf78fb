"""The ``matconvnet`` command (also ``python -m matconvnet``).

Subcommands::

    matconvnet classify IMAGE... [--model NAME_OR_PATH] [--top K]   top-K classes of images
    matconvnet train mnist|cifar|imagenet [ARGS...]                 the training examples
    matconvnet display MODEL                                        a model's layer tables
    matconvnet convert IN OUT [--format v7|v6|v7.3]                 .mat / .onnx / Caffe
    matconvnet bench                                                quick timings of blocks
    matconvnet download NAME_OR_URL [--dest PATH]                   fetch a published model
    matconvnet models                                               the published models

``main(argv)`` runs one command and returns its exit status: 0 on success, 2 for a usage
mistake (a bad option, a missing file, an unknown model, a file that is not what it should
be), reported as one line on stderr without a traceback, and 1 for any other failure (a
checksum mismatch, a failed download, an error inside the computation; one line too,
``--traceback`` shows the whole trace).
"""
from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

__all__ = ["main", "UsageError", "EXAMPLES"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
#: ``train`` subcommand name -> module whose ``main(argv)`` runs it.
EXAMPLES = {"mnist": "matconvnet.examples.mnist", "cifar": "matconvnet.examples.cifar",
            "imagenet": "matconvnet.examples.imagenet"}
DEFAULT_MODEL = "squeezenet1_0"


class UsageError(Exception):
    """A mistake of the user's (exit status 2)."""


def _user_errors() -> tuple:
    from .models.registry import UnknownModelError
    return (UsageError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
            PermissionError, UnknownModelError)


# ----------------------------------------------------------------------------- models

def _is_path_like(spec: str) -> bool:
    return os.sep in spec or "/" in spec or Path(spec).suffix.lower() in (
        ".mat", ".onnx", ".prototxt", ".caffemodel")


def _io_function(name: str) -> Callable:
    from . import io
    fn = getattr(io, name, None)
    if fn is None:
        raise RuntimeError(f"matconvnet.io.{name} is not available in this installation")
    return fn


def _read_network(path: Path, caffemodel: Optional[str] = None):
    """A network from a file, by extension: .mat (SimpleNN dict or DagNN), .onnx, .prototxt
    (with its .caffemodel)."""
    from .models.registry import load_model
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    ext = path.suffix.lower()
    try:
        if ext == ".mat":
            return load_model(path)
        if ext == ".onnx":
            return _io_function("load_onnx")(str(path))
        if ext == ".prototxt":
            return _io_function("load_caffe")(str(path), _caffemodel_for(path, caffemodel))
    except ValueError as e:
        raise UsageError(str(e) if str(path) in str(e) else f"cannot read {path}: {e}") from e
    raise UsageError(f"{path}: unknown model format {ext or '(no extension)'!r}; expected "
                     f".mat, .onnx or .prototxt")


def _caffemodel_for(prototxt: Path, caffemodel: Optional[str]) -> Optional[str]:
    if caffemodel is not None:
        if not Path(caffemodel).is_file():
            raise FileNotFoundError(f"{caffemodel}: no such file (--caffemodel)")
        return caffemodel
    guess = prototxt.with_suffix(".caffemodel")
    return str(guess) if guess.is_file() else None


def _network(spec: str):
    """A network from a file path or a registered model name: an existing file first, then
    the registry (``imagenet-vgg-f`` or ``imagenet-vgg-f.mat``), then a missing file."""
    from .models.registry import PRETRAINED, lookup, pretrained
    p = Path(spec).expanduser()
    key = spec[:-4] if spec.endswith(".mat") else spec
    if p.is_file():
        return _read_network(p)
    if key in PRETRAINED:
        return pretrained(key)
    if _is_path_like(spec):
        raise FileNotFoundError(f"{spec}: no such file (and not a registered model name)")
    lookup(spec)  # raises UnknownModelError with suggestions
    raise AssertionError("unreachable")


def _is_dagnn(net: Any) -> bool:
    return not isinstance(net, dict)


def _meta(net: Any) -> dict:
    meta = net.meta if _is_dagnn(net) else net.get("meta")
    return meta if isinstance(meta, dict) else {}


def _numbers(v: Any) -> List[float]:
    import numpy as np
    import torch
    if v is None or isinstance(v, str):
        return []
    if torch.is_tensor(v):
        v = v.detach().cpu().numpy()
    try:
        return [float(x) for x in np.asarray(v, dtype=np.float64).reshape(-1)]
    except (TypeError, ValueError):
        return []


# ----------------------------------------------------------------------------- classify

_LOSSES = ("softmaxloss", "loss", "pdist")


def _inference_simplenn(net: dict) -> dict:
    """The net without its training loss: a final softmaxloss becomes a softmax, other
    final loss layers are dropped (as ``vl_simplenn_deploy`` does, without folding)."""
    layers = list(net["layers"])
    while layers and layers[-1].get("type") in _LOSSES:
        last = layers.pop()
        if last.get("type") == "softmaxloss":
            layers.append({"type": "softmax", "name": last.get("name", "prob")})
            break
    return {"layers": layers, "meta": net.get("meta", {})}


def _dagnn_io(net) -> Tuple[str, str]:
    """(image input, score output) of a DagNN classifier."""
    inputs = [v for v in net.get_inputs() if v != "label"]
    if len(inputs) != 1:
        raise UsageError(f"the model has inputs {', '.join(inputs) or '(none)'}; classify "
                         f"needs a classifier with one image input")
    names = [v.name for v in net.vars]
    if "prob" in names:
        return inputs[0], "prob"
    loss_outputs = {o for l in net.layers if "loss" in l.block.type_name.lower()
                    for o in l.outputs}
    outputs = [v for v in net.get_outputs() if v not in loss_outputs]
    if not outputs:
        # the scores feed only the loss: take the loss's first input
        for l in net.layers:
            if "loss" in l.block.type_name.lower():
                return inputs[0], l.inputs[0]
        raise UsageError("the model has no output to read class scores from")
    return inputs[0], outputs[0]


def _scores(net, x) -> Any:
    """Class scores (C,) of one input ``1 x 3 x H x W`` (averaged over space when the
    output is a map)."""
    import torch
    if _is_dagnn(net):
        name_in, name_out = _dagnn_io(net)
        net.mode = "test"
        i = net.get_var_index(name_out)
        net.vars[i].precious = True
        net.eval({name_in: x})
        y = net.vars[i].value
    else:
        from .simplenn import vl_simplenn
        y = vl_simplenn(net, x, mode="test")[-1]["x"]
    if y is None:
        raise RuntimeError("the network produced no output")
    y = torch.as_tensor(y).detach().to("cpu", torch.float64)
    if y.dim() != 4:
        y = y.reshape(1, -1, 1, 1)
    return y[0].mean(dim=(1, 2))


def _is_distribution(s) -> bool:
    return bool((s >= 0).all()) and abs(float(s.sum()) - 1) < 1e-3


def _class_labels(meta: dict, n: int) -> Tuple[List[str], List[str]]:
    """(names, descriptions) of ``n`` classes from ``meta.classes`` (empty strings where
    the model has none)."""
    classes = meta.get("classes") if isinstance(meta.get("classes"), dict) else {}

    def strings(v):
        v = [v] if isinstance(v, str) else list(v) if isinstance(v, (list, tuple)) else []
        v = [str(s) for s in v]
        return v if len(v) == n else [""] * n
    return strings(classes.get("name")), strings(classes.get("description"))


def _read_image(path: str):
    from PIL import Image, UnidentifiedImageError
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with Image.open(p) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise UsageError(f"{path}: not an image that can be read ({e})") from None


def cmd_classify(args) -> int:
    import torch
    from .models.normalization import preprocess
    if args.top < 1:
        raise UsageError(f"--top: expected a positive number, got {args.top}")
    images = [(path, _read_image(path)) for path in args.images]
    net = _network(args.model)
    if not _is_dagnn(net):
        net = _inference_simplenn(net)
    if args.device != "cpu":
        from .simplenn import vl_simplenn_move
        net = net.move(args.device) if _is_dagnn(net) else vl_simplenn_move(net, args.device)
    meta = _meta(net)
    out = []
    for path, image in images:
        x = preprocess(image, meta, mode="evaluate" if args.crop else "demo",
                       interpolation=args.interpolation)
        s = _scores(net, x.to(args.device))
        softmax = not _is_distribution(s)
        if softmax:
            s = torch.softmax(s, dim=0)
        names, descriptions = _class_labels(meta, s.numel())
        k = min(args.top, s.numel())
        top = torch.topk(s, k)
        out.append(f"{path}" + (" (softmax of the network's scores)" if softmax else ""))
        out.append("  rank   score  class  description")
        for r, (v, c) in enumerate(zip(top.values.tolist(), top.indices.tolist()), 1):
            label = descriptions[c] or names[c] or "-"
            if names[c] and descriptions[c] and names[c] != descriptions[c]:
                label += f" ({names[c]})"
            out.append(f"  {r:4d}  {v:6.4f}  {c + 1:5d}  {label}")
    print("\n".join(out))
    return EXIT_OK


# ----------------------------------------------------------------------------- train

def cmd_train(args) -> int:
    module_name = EXAMPLES[args.example]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            raise RuntimeError(f"the {args.example} example ({module_name}) is not available "
                               f"in this installation") from None
        raise
    result = module.main(list(args.args))
    return result if isinstance(result, int) and not isinstance(result, bool) else EXIT_OK


# ----------------------------------------------------------------------------- display

def _declared_input_size(meta: dict) -> Optional[List[float]]:
    """MatConvNet's [H W C N] a model declares: ``meta.inputSize`` when it gives at least H
    and W, else ``meta.normalization.imageSize``, else None (vl_simplenn_display's order)."""
    size = _numbers(meta.get("inputSize"))
    if len(size) >= 2:
        return size
    norm = meta.get("normalization") if isinstance(meta.get("normalization"), dict) else {}
    size = _numbers(norm.get("imageSize"))
    return size if len(size) >= 2 else None


def _dagnn_input_sizes(net, given: Optional[List[float]], batch: Optional[int]
                       ) -> Optional[Dict[str, tuple]]:
    """{input: (N, C, H, W)}: the option (for the one image input), else ``meta.inputs``
    (the importers' name/size [H W C N] records), else the declared input size for the one
    image input (inputs called ``label`` are not images)."""
    meta = _meta(net)
    inputs = [v for v in net.get_inputs() if v != "label"]
    sizes: Dict[str, List[float]] = {}
    if given and len(inputs) != 1:
        raise UsageError(f"--input-size: the model has {len(inputs)} inputs "
                         f"({', '.join(inputs)}); their sizes come from meta.inputs")
    records = meta.get("inputs")
    records = [records] if isinstance(records, dict) else records or []
    for r in records if not given else []:
        if isinstance(r, dict) and r.get("name") in inputs and _numbers(r.get("size")):
            sizes[r["name"]] = _numbers(r.get("size"))
    if not sizes and len(inputs) == 1:
        size = given or _declared_input_size(meta)
        if size:
            sizes[inputs[0]] = size
    if not sizes:
        return None
    out = {}
    for name, s in sizes.items():
        s = list(s) + [float("nan")] * (3 - len(s))
        s = s[:3] + [s[3] if len(s) > 3 else 1]
        if batch is not None:
            s[3] = batch
        out[name] = (s[3], s[2], s[0], s[1])
    return out


def cmd_display(args) -> int:
    net = _network(args.model)
    given = _parse_size(args.input_size) if args.input_size else None
    if given and len(given) < 3:
        # H, W only: the depth (and batch) the model declares, if any
        declared = _declared_input_size(_meta(net)) or []
        given = given + declared[len(given):]
    if args.format == "dot":
        from .dagnn import DagNN
        dag = net if _is_dagnn(net) else DagNN.from_simplenn(net)
        print(dag.to_dot(_dagnn_input_sizes(dag, given, args.batch_size)), end="")
        return EXIT_OK
    if _is_dagnn(net):
        if args.format != "ascii":
            raise UsageError(f"--format {args.format}: DagNN tables are printed as ascii "
                             f"(or dot)")
        print(net.print(_dagnn_input_sizes(net, given, args.batch_size)), end="")
        return EXIT_OK
    from .simplenn import vl_simplenn_display
    d = vl_simplenn_display(net, input_size=given or _declared_input_size(_meta(net)),
                            batch_size=args.batch_size, max_num_columns=args.max_columns,
                            format=args.format)
    print(d.text, end="" if d.text.endswith("\n") else "\n")
    return EXIT_OK


def _parse_size(text: str) -> List[float]:
    parts = [p for p in text.replace("x", ",").replace(" ", ",").split(",") if p]
    try:
        size = [float(p) for p in parts]
    except ValueError:
        size = []
    if not 2 <= len(size) <= 4 or any(not (s >= 1 and s == int(s)) for s in size):
        raise UsageError(f"--input-size: expected H,W[,C[,N]] positive integers, got {text!r}")
    return size


# ----------------------------------------------------------------------------- convert

def cmd_convert(args) -> int:
    from . import io
    src, dst = Path(args.input), Path(args.output)
    in_ext, out_ext = src.suffix.lower(), dst.suffix.lower()
    if in_ext not in (".mat", ".onnx", ".prototxt"):
        raise UsageError(f"{src}: unknown input format {in_ext or '(no extension)'!r}; "
                         f"expected .mat, .onnx or .prototxt (+ .caffemodel)")
    if out_ext not in (".mat", ".onnx"):
        raise UsageError(f"{dst}: unknown output format {out_ext or '(no extension)'!r}; "
                         f"expected .mat or .onnx")
    if args.format is not None and out_ext != ".mat":
        raise UsageError("--format applies to .mat output only")
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such file")
    if not dst.parent.is_dir() and str(dst.parent):
        raise FileNotFoundError(f"{dst.parent}: no such folder")
    fmt = args.format or "v7"
    if in_ext == ".mat" and out_ext == ".mat":
        # every variable as it is: a checkpoint's state and stats too
        try:
            data = io.load(src)
        except ValueError as e:
            raise UsageError(f"cannot read {src}: {e}") from e
        io.save(dst, data, format=fmt)
    else:
        net = _read_network(src, args.caffemodel)
        if out_ext == ".mat":
            io.save(dst, net.to_struct() if _is_dagnn(net) else net, format=fmt)
        else:
            _io_function("save_onnx")(net, str(dst))
    print(f"wrote {dst}")
    return EXIT_OK


# ----------------------------------------------------------------------------- bench

def _bench_cases(device: str, dtype) -> List[Tuple[str, str, Callable, Callable]]:
    """(block, shape, forward, forward+backward) closures on fixed random data."""
    import torch
    import matconvnet as mcn
    g = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype).to(device)
    n, c, h = (8, 64, 32) if device == "cpu" else (32, 128, 56)
    x, f, b = rand(n, c, h, h), rand(c, c, 3, 3), rand(c)
    y = mcn.vl_nnconv(x, f, b, pad=1)
    pooled = mcn.vl_nnpool(x, 3, stride=2)
    gam, bet = rand(c), rand(c)
    scores = rand(n, 1000, 1, 1)
    labels = torch.randint(1, 1001, (n,), generator=g).to(device)
    loss_der = torch.ones((), dtype=dtype, device=device)
    shape = f"{n}x{c}x{h}x{h}"
    return [
        ("conv", f"{shape}, 3x3x{c}x{c}, pad 1",
         lambda: mcn.vl_nnconv(x, f, b, pad=1),
         lambda: mcn.vl_nnconv(x, f, b, y, pad=1)),
        ("pool", f"{shape}, max 3x3, stride 2",
         lambda: mcn.vl_nnpool(x, 3, stride=2),
         lambda: mcn.vl_nnpool(x, 3, pooled, stride=2)),
        ("relu", shape, lambda: mcn.vl_nnrelu(x), lambda: mcn.vl_nnrelu(x, x)),
        ("bnorm", shape, lambda: mcn.vl_nnbnorm(x, gam, bet),
         lambda: mcn.vl_nnbnorm(x, gam, bet, x)),
        ("normalize", f"{shape}, LRN 5", lambda: mcn.vl_nnnormalize(x, [5, 1, 1e-4, 0.75]),
         lambda: mcn.vl_nnnormalize(x, [5, 1, 1e-4, 0.75], x)),
        ("softmaxloss", f"{n}x1000x1x1", lambda: mcn.vl_nnsoftmaxloss(scores, labels),
         lambda: mcn.vl_nnsoftmaxloss(scores, labels, loss_der)),
    ]


def _time(fn: Callable, repeat: int, sync: Callable[[], None]) -> float:
    """Median milliseconds of ``fn`` over ``repeat`` runs (one untimed run first)."""
    fn()
    sync()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def cmd_bench(args) -> int:
    import torch
    if args.repeat < 1:
        raise UsageError(f"--repeat: expected a positive number, got {args.repeat}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    sync = (lambda: torch.cuda.synchronize()) if args.device.startswith("cuda") else \
        (lambda: None)
    cases = _bench_cases(args.device, dtype)
    if args.blocks:
        wanted = {b.strip() for b in args.blocks.split(",") if b.strip()}
        unknown = wanted - {c[0] for c in cases}
        if unknown:
            raise UsageError(f"--blocks: unknown block(s) {', '.join(sorted(unknown))}; "
                             f"expected some of {', '.join(c[0] for c in cases)}")
        cases = [c for c in cases if c[0] in wanted]
    print(f"matconvnet blocks on {args.device}, {args.dtype}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; median of {args.repeat} runs")
    print()
    print("| block | input | forward ms | forward+backward ms |")
    print("|---|---|---:|---:|")
    for name, shape, fwd, bwd in cases:
        t_fwd = _time(fwd, args.repeat, sync)
        t_bwd = _time(lambda: (fwd(), bwd()), args.repeat, sync)
        print(f"| {name} | {shape} | {t_fwd:.3f} | {t_bwd:.3f} |")
    return EXIT_OK


# ----------------------------------------------------------------------------- download, models

def _progress_printer(stream) -> Optional[Callable[[int, Optional[int]], None]]:
    if not stream.isatty():
        return None
    last = [0.0]

    def show(done: int, total: Optional[int]) -> None:
        now = time.monotonic()
        if now - last[0] < 0.2 and done != total:
            return
        last[0] = now
        mb = done / 2 ** 20
        text = f"{mb:8.1f} MB" + (f" of {total / 2 ** 20:.1f} MB ({100 * done / total:3.0f}%)"
                                  if total else "")
        stream.write("\r" + text)
        stream.flush()
    return show


def cmd_download(args) -> int:
    from .models.registry import download
    progress = None if args.quiet else _progress_printer(sys.stderr)
    try:
        path = download(args.name, args.dest, args.md5, progress=progress)
    finally:
        if progress is not None:
            sys.stderr.write("\n")
    print(path)
    return EXIT_OK


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_models(args) -> int:
    from .models.registry import PRETRAINED, cache_dir
    home = cache_dir()
    rows = []
    for m in PRETRAINED.values():
        status = "shipped" if m.shipped else "cached" if (home / m.file).is_file() else "-"
        size = "x".join(str(s) for s in m.input_size) if m.input_size else "any"
        row = [m.name, m.wrapper, size, m.accuracy, status]
        if args.verbose:
            row += [m.md5 or "not published", m.url or "(in the package)", m.task]
        rows.append(row)
    header = ["name", "wrapper", "input", "published accuracy", "status"]
    if args.verbose:
        header += ["md5", "url", "task"]
    print(_table(header, rows))
    print(f"\ncache folder: {home} (set MATCONVNET_HOME to change it); "
          f"`matconvnet download NAME` fetches a model")
    return EXIT_OK


# ----------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="matconvnet",
        description="MatConvNet in Python: classify images, train the examples, inspect and "
                    "convert models, time the blocks, fetch the published models.",
        epilog="Run `matconvnet COMMAND --help` for a command's options.  Exit status: 0 "
               "success, 2 usage mistake (bad option, missing file, unknown model), "
               "1 other failure.")
    p.add_argument("--traceback", action="store_true",
                   help="show the full Python traceback of a failure")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("classify", help="the top classes of images (quick start)",
                       description="Classify images with a pretrained network and print the "
                                   "top classes with their scores and descriptions.  The "
                                   "image is prepared as the model's meta.normalization says "
                                   "(the quick start: whole image resized to imageSize, "
                                   "average subtracted).")
    c.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    c.add_argument("--model", "-m", default=DEFAULT_MODEL, metavar="NAME_OR_PATH",
                   help=f"a registered model name or a .mat/.onnx file (default "
                        f"{DEFAULT_MODEL}, shipped with the package)")
    c.add_argument("--top", "-k", type=int, default=5, metavar="K",
                   help="how many classes to show (default 5)")
    c.add_argument("--crop", action="store_true",
                   help="centre crop as the evaluation of the published accuracies "
                        "(cropSize, keepAspect) instead of resizing the whole image")
    c.add_argument("--interpolation", choices=["nearest", "box", "bilinear", "bicubic",
                                               "lanczos2", "lanczos3"],
                   help="override the model's resampling method")
    c.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    c.set_defaults(func=cmd_classify)

    t = sub.add_parser("train", help="run a training example (mnist, cifar, imagenet)",
                       description="Run one of the training examples; the arguments after "
                                   "the example's name go to it (`matconvnet train mnist "
                                   "--help` lists them).")
    t.add_argument("example", choices=sorted(EXAMPLES), help="which example")
    t.add_argument("args", nargs=argparse.REMAINDER, help="the example's own arguments")
    t.set_defaults(func=cmd_train)

    d = sub.add_parser("display", help="a model's layer tables",
                       description="Print a model's tables: vl_simplenn_display's for a "
                                   "SimpleNN model, DagNN.print's for a DagNN one (or the "
                                   "Graphviz graph with --format dot).")
    d.add_argument("model", metavar="MODEL", help="a model file or a registered model name")
    d.add_argument("--input-size", metavar="H,W[,C[,N]]",
                   help="input size (default: meta.inputSize, meta.inputs or "
                        "meta.normalization.imageSize)")
    d.add_argument("--batch-size", type=int, metavar="N", help="override the batch size")
    d.add_argument("--format", choices=["ascii", "latex", "csv", "dot"], default="ascii",
                   help="table format (latex and csv for SimpleNN; dot: Graphviz source)")
    d.add_argument("--max-columns", type=int, default=18, metavar="N",
                   help="split SimpleNN tables wider than this (default 18)")
    d.set_defaults(func=cmd_display)

    v = sub.add_parser("convert", help="convert a model between formats",
                       description="Convert a model file; formats by extension: .mat "
                                   "(MatConvNet, --format v7, v6 or v7.3), .onnx, and "
                                   ".prototxt (+ .caffemodel, input only).")
    v.add_argument("input", metavar="IN", help=".mat, .onnx or .prototxt")
    v.add_argument("output", metavar="OUT", help=".mat or .onnx")
    v.add_argument("--format", choices=["v7", "v6", "v7.3"],
                   help="MAT-file version of a .mat output (default v7)")
    v.add_argument("--caffemodel", metavar="FILE",
                   help="Caffe weights (default: IN with the .caffemodel extension)")
    v.set_defaults(func=cmd_convert)

    b = sub.add_parser("bench", help="quick timings of a few blocks",
                       description="Time forward and forward+backward of a few blocks "
                                   "(conv, pool, relu, bnorm, normalize, softmaxloss) at a "
                                   "fixed size; a Markdown table on stdout.")
    b.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    b.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    b.add_argument("--repeat", type=int, default=10, metavar="N",
                   help="timed runs per case (default 10; the median is shown)")
    b.add_argument("--blocks", metavar="LIST", help="comma-separated subset of the blocks")
    b.set_defaults(func=cmd_bench)

    w = sub.add_parser("download", help="download a published model",
                       description="Download a published model (or any URL) into the cache "
                                   "folder ($MATCONVNET_HOME/models, default "
                                   "~/.cache/matconvnet/models) or --dest; an interrupted "
                                   "download resumes, and the checksum is verified.")
    w.add_argument("name", metavar="NAME_OR_URL", help="a model name (see `matconvnet "
                                                        "models`) or a URL")
    w.add_argument("--dest", metavar="PATH", help="destination file or existing folder")
    w.add_argument("--md5", metavar="HEX", help="expected MD5 (default: the published one)")
    w.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    w.set_defaults(func=cmd_download)

    m = sub.add_parser("models", help="list the published models",
                       description="List MatConvNet's published models with their input "
                                   "sizes, published accuracies and whether they are "
                                   "available locally.")
    m.add_argument("--verbose", "-v", action="store_true", help="also MD5, URL and task")
    m.set_defaults(func=cmd_models)
    return p


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, KeyError):
        text = text.strip("'\"")
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``matconvnet`` command with ``argv`` (default ``sys.argv[1:]``); returns
    the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    prog = f"matconvnet {args.command}"
    try:
        return int(args.func(args) or 0)
    except SystemExit as e:  # from a training example's own argument parser
        return e.code if isinstance(e.code, int) else (EXIT_OK if e.code is None
                                                       else EXIT_FAILURE)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as e:
        if args.traceback:
            traceback.print_exc()
        print(f"{prog}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # noqa: BLE001 - the command line reports every failure
        if args.traceback:
            traceback.print_exc()
        print(f"{prog}: error: {type(e).__name__}: {_one_line(e)}"
              + ("" if args.traceback else " (--traceback shows where)"), file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
