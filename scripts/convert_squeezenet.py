#!/usr/bin/env python3
"""Convert the Deep-Compression SqueezeNet v1.0 (ImageNet, 1000 classes) into this package's
pretrained model ``matconvnet/models/shipped/squeezenet1_0.mat`` (a MatConvNet DagNN file).

Inputs (``--source``, default ``../shared/data/caffe/squeezenet-v1.0-deepcompression`` next
to the repository): ``SqueezeNet_deploy.prototxt`` (the network), ``compressed_SqueezeNet.net``
(the pruned, codebook-quantised weights of songhan/SqueezeNet-Deep-Compression, BSD licence)
and ``synset_words.txt`` (the 1000 ImageNet classes, ``wnid description`` per line).

The weight file holds ``uint32 nz[L]`` for the L Convolution layers of the prototxt, in
order, then per layer ``float32 codebook[256]`` (8-bit codes: every layer name contains
'conv'), ``float32 bias[K]``, ``uint8 codes[nz]`` and ``uint8 gaps[ceil(nz / 2)]`` (4-bit gaps,
two per byte, low nibble first).  The codes go to positions ``cumsum(gap + 1) - 1`` of a
zero code array of ``K C FH FW`` entries and ``W = codebook[code]`` reshaped ``K x C x FH x FW``
(Caffe's filter layout, which is also ours).  Every byte of the file must be consumed.

The network is built with :func:`matconvnet.io.load_caffe` from the prototxt, then:

- the first convolution's filters are reversed along their input channels, so that the
  network takes **RGB** images (Caffe's SqueezeNet was trained on BGR); accordingly
  ``meta.normalization.averageImage`` is the RGB mean ``[123, 117, 104]`` (Caffe's BGR
  ``[104, 117, 123]`` reversed) as a 3 x 1 x 1 tensor and ``meta.channelOrder`` is 'RGB';
- a SoftMax layer ``prob`` is appended to the deploy net's ``pool_final`` output, as in
  MatConvNet's ImageNet models;
- ``meta.normalization``: ``imageSize [227, 227, 3]``, ``interpolation 'bilinear'``,
  ``keepAspect False`` (the whole image is resized to 227 x 227), ``border [0, 0]``,
  ``cropSize 1``; ``meta.classes.name`` are the WordNet ids and ``description`` the 1000
  descriptions of ``synset_words.txt``.

With ``--photos`` it also writes the test photos ``chelsea.png`` and ``coffee.png`` next
to the model, in ``photos/``: scikit-image's sample images ``skimage.data.chelsea()`` and
``skimage.data.coffee()`` (CC0, see the folder's README.md), saved losslessly so that their
pixels are scikit-image's.

Usage: ``python scripts/convert_squeezenet.py [--source DIR] [--output FILE] [--photos]``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from matconvnet._files import atomic_write  # noqa: E402
from matconvnet.dagnn import DagNN  # noqa: E402
from matconvnet.dagnn import layers as L  # noqa: E402
from matconvnet.io import save_dagnn  # noqa: E402
from matconvnet.io.caffe import load_caffe  # noqa: E402

DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "caffe" / "squeezenet-v1.0-deepcompression"
DEFAULT_OUTPUT = ROOT / "matconvnet" / "models" / "shipped" / "squeezenet1_0.mat"
BGR_MEAN = (104.0, 117.0, 123.0)


class _Reader:
    def __init__(self, raw: bytes):
        self.raw, self.pos = raw, 0

    def take(self, dtype: str, count: int, what: str) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if self.pos + size > len(self.raw):
            raise ValueError(f"compressed weights: {what} needs {size} bytes at offset "
                             f"{self.pos}, but the file has {len(self.raw)}")
        out = np.frombuffer(self.raw, dtype, count, self.pos)
        self.pos += size
        return out


def decode_deep_compression(raw: bytes, layers: Sequence[Tuple[str, Tuple[int, ...]]]
                            ) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Decode the Deep-Compression weight file (module help): one ``(W, b)`` per layer of
    ``layers`` (``(name, (K, C, FH, FW))`` in prototxt order), float32, ``W`` K x C x FH x FW."""
    r = _Reader(raw)
    nz = r.take("<u4", len(layers), "the nonzero counts").astype(np.int64)
    out = []
    for (name, shape), n in zip(layers, nz):
        count = int(np.prod(shape))
        bits = 8 if "conv" in name else 4
        codebook = r.take("<f4", 2 ** bits, f"{name}: codebook")
        bias = r.take("<f4", shape[0], f"{name}: biases").copy()
        codes = r.take("u1", int((n - 1) // (8 // bits) + 1), f"{name}: codes")
        packed = r.take("u1", int((n - 1) // 2 + 1), f"{name}: gaps")
        if bits != 8:
            raise ValueError(f"{name}: only 8-bit (conv) layers are expected")
        gaps = np.empty(2 * packed.size, np.int64)
        gaps[0::2] = packed & 0x0F
        gaps[1::2] = packed >> 4
        pos = np.cumsum(gaps[:n] + 1) - 1
        if n and pos[-1] >= count:
            raise ValueError(f"{name}: the gaps reach position {pos[-1]} of {count} weights")
        code = np.zeros(count, np.int64)
        code[pos] = codes[:n]
        out.append((codebook[code].reshape(shape).astype(np.float32), bias))
    if r.pos != len(raw):
        raise ValueError(f"compressed weights: {len(raw) - r.pos} bytes left over after "
                         f"{len(layers)} layers")
    return out


def read_synsets(path: Path) -> Tuple[List[str], List[str]]:
    names, descriptions = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            wnid, _, description = line.partition(" ")
            names.append(wnid)
            descriptions.append(description.strip())
    if len(names) != 1000:
        raise ValueError(f"{path}: expected 1000 classes, got {len(names)}")
    return names, descriptions


def convert(source: Path) -> DagNN:
    """The converted network (module help), not yet saved."""
    net = load_caffe(source / "SqueezeNet_deploy.prototxt", wrapper="dagnn")
    convs = [l for l in net.layers if isinstance(l.block, L.Conv)]
    shapes = [(l.name, tuple(net.params[net.get_param_index(l.params[0])].value.shape))
              for l in convs]
    weights = decode_deep_compression((source / "compressed_SqueezeNet.net").read_bytes(),
                                      shapes)
    for l, (w, b) in zip(convs, weights):
        net.params[net.get_param_index(l.params[0])].value = torch.from_numpy(w)
        net.params[net.get_param_index(l.params[1])].value = torch.from_numpy(b)
    # RGB input: reverse the first filters' input channels (Caffe's net reads BGR)
    first = net.params[net.get_param_index(convs[0].params[0])]
    first.value = first.value.flip(1).contiguous()
    net.add_layer("prob", L.SoftMax(), net.get_outputs(), ["prob"])
    names, descriptions = read_synsets(source / "synset_words.txt")
    net.meta.update({
        "normalization": {
            "imageSize": [227, 227, 3],
            "averageImage": torch.tensor(BGR_MEAN[::-1], dtype=torch.float32).reshape(3, 1, 1),
            "interpolation": "bilinear", "keepAspect": False, "border": [0, 0],
            "cropSize": 1.0,
        },
        "classes": {"name": names, "description": descriptions},
        "channelOrder": "RGB",
    })
    return net


def write_photos(folder: Path) -> None:
    """scikit-image's ``chelsea`` and ``coffee`` as lossless PNG files in ``folder``."""
    import skimage.data
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("chelsea", "coffee"):
        image = Image.fromarray(getattr(skimage.data, name)())
        atomic_write(folder / f"{name}.png", lambda tmp: image.save(tmp, format="PNG"))
        print(f"{folder / name}.png: {image.size[0]} x {image.size[1]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--photos", action="store_true",
                        help="also write the test photos (needs scikit-image)")
    args = parser.parse_args(argv)
    net = convert(args.source)
    n_params = sum(p.value.numel() for p in net.params)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_dagnn(args.output, net)
    print(f"{args.output}: {len(net.layers)} layers, {n_params:,} parameters, "
          f"{os.path.getsize(args.output):,} bytes")
    if args.photos:
        write_photos(args.output.parent / "photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
