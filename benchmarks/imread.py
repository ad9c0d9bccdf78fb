"""Image reading speed (images/s): ``vl_imreadjpeg`` with threads against a Pillow loop.

Each case reads the same JPEG files into one ``N x 3 x 224 x 224`` float32 tensor, in the same
process, interleaved (best of ``--repeat`` rounds):

* **ours**: ``vl_imreadjpeg(files, num_threads=T, resize=(224, 224), crop_size=c, pack=True)``
  (bilinear, centre crop; decoding by simplejpeg/libjpeg-turbo, float32 resampling by sparse
  matrix products, colour steps skipped as no option asks for them), for ``T = --threads``
  (2) and, for information, ``T = 1``;
* **Pillow loop**: one thread, ``Image.open(f).convert('RGB').resize((224, 224), BILINEAR,
  box=centre crop)`` then ``np.asarray(..., float32).transpose(2, 0, 1)`` into the batch --
  the plain way to write it (same crop; Pillow resamples in 8 bits, so the ``max abs diff``
  column shows rounding differences).

Cases (the centre crop is ``c = 224/256`` of the largest square, i.e. "resize the shorter side
to 256, crop 224", except for the tiny CIFAR images, which are upscaled whole):

* ``cifar 32x32 -> 224``: CIFAR-10 test JPEGs (``../shared/data/cifar10-test-jpeg``; random
  32 x 32 JPEGs when that is absent) upscaled to 224 x 224;
* ``cifar x8 256x256``: the same images upscaled 8x (bicubic) and saved as 256 x 256 JPEGs
  (quality 90), the size of a preprocessed ImageNet;
* ``photo 500x375``: generated 500 x 375 JPEGs (smooth colour fields plus noise, quality 90,
  about 80 KB, like an ImageNet photo);
* with ``--large``: ``photo 2000x1500`` read normally and with ``draft=True`` (DCT scaling).

The last column is the share of the machine's CPUs that other processes used meanwhile
(from ``/proc/stat``): above a few percent the thread speed-up is not to be trusted.

Run from the repository root::

    python3 benchmarks/imread.py                 # ~40 s on 2 cores
    python3 benchmarks/imread.py --count 512 --repeat 5 --large
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from matconvnet.data import vl_imreadjpeg  # noqa: E402

CIFAR_ZIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-test-jpeg" \
    / "cifar10_test_jpeg.zip"
OUT = 224


def cifar_jpegs(count: int, rng: np.random.Generator) -> list:
    """Encoded CIFAR-10 test JPEGs (or random 32 x 32 JPEGs without ../shared)."""
    if CIFAR_ZIP.exists():
        with zipfile.ZipFile(CIFAR_ZIP) as z:
            names = sorted(n for n in z.namelist() if n.endswith(".jpg"))
            pick = rng.choice(len(names), size=count, replace=False)
            return [z.read(names[i]) for i in sorted(pick)]
    out = []
    for _ in range(count):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, "JPEG")
        out.append(buf.getvalue())
    return out


def photo(h: int, w: int, rng: np.random.Generator) -> Image.Image:
    small = rng.integers(0, 256, (h // 16 + 2, w // 16 + 2, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))
    noisy = base.astype(np.float32) + rng.normal(0, 12, (h, w, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def write_cases(folder: Path, count: int, large: bool) -> dict:
    rng = np.random.default_rng(0)
    cases = {}
    cifar = cifar_jpegs(count, rng)
    files = []
    for i, data in enumerate(cifar):
        p = folder / f"cifar{i:04d}.jpg"
        p.write_bytes(data)
        files.append(str(p))
    cases["cifar 32x32 -> 224"] = (files, 1.0)
    files = []
    for i, data in enumerate(cifar):
        p = folder / f"cifar8x{i:04d}.jpg"
        Image.open(io.BytesIO(data)).convert("RGB").resize((256, 256), Image.Resampling.BICUBIC) \
            .save(p, quality=90)
        files.append(str(p))
    cases["cifar x8 256x256"] = (files, OUT / 256)
    files = []
    for i in range(count):
        p = folder / f"photo{i:04d}.jpg"
        photo(375, 500, rng).save(p, quality=90)
        files.append(str(p))
    cases["photo 500x375"] = (files, OUT / 256)
    if large:
        files = []
        for i in range(max(count // 8, 8)):
            p = folder / f"large{i:04d}.jpg"
            photo(1500, 2000, rng).save(p, quality=90)
            files.append(str(p))
        cases["photo 2000x1500"] = (files, OUT / 256)
    return cases


def pillow_loop(files: list, crop: float) -> torch.Tensor:
    out = np.empty((len(files), 3, OUT, OUT), np.float32)
    for i, f in enumerate(files):
        with Image.open(f) as im:
            im = im.convert("RGB")
            side = min(int(min(im.size) * crop + 0.5), *im.size)   # the same crop as ours
            x0, y0 = (im.width - side) // 2, (im.height - side) // 2
            box = (x0, y0, x0 + side, y0 + side)
            im = im.resize((OUT, OUT), Image.Resampling.BILINEAR, box=box)
            out[i] = np.asarray(im, dtype=np.float32).transpose(2, 0, 1)
    return torch.from_numpy(out)


def ours(files: list, crop: float, threads: int, draft: bool = False) -> torch.Tensor:
    return vl_imreadjpeg(files, num_threads=threads, resize=(OUT, OUT), crop_size=crop,
                         pack=True, draft=draft)


def cpu_snapshot():
    """(own CPU seconds, machine busy CPU seconds) where /proc/stat exists, else None."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return time.process_time(), (sum(v) - v[3] - v[4]) / tick


def others_share(before, after, wall: float) -> str:
    """Share of the machine's CPUs used by other processes during the run."""
    if before is None or after is None:
        return "unknown"
    own = after[0] - before[0]
    busy = after[1] - before[1]
    return f"{max(busy - own, 0.0) / (wall * (os.cpu_count() or 1)):.0%}"


def rate(fn, files, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return len(files) / best


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=256, help="images per case (default 256)")
    p.add_argument("--repeat", type=int, default=3, help="timed rounds, best kept (default 3)")
    p.add_argument("--threads", type=int, default=2, help="reader threads (default 2)")
    p.add_argument("--large", action="store_true", help="add 2000 x 1500 JPEGs, with draft")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    results = {}
    with tempfile.TemporaryDirectory(prefix="mcn-imread-") as tmp:
        cases = write_cases(Path(tmp), args.count, args.large)
        print(f"{os.cpu_count()} CPUs, {args.count} images per case, best of {args.repeat}, "
              f"output {args.count} x 3 x {OUT} x {OUT} float32\n")
        print(f"| case | Pillow loop (img/s) | ours, 1 thread | ours, {args.threads} threads "
              f"| speed-up | max abs diff | CPU used by others |")
        print("|---|---|---|---|---|---|---|")
        for name, (files, crop) in cases.items():
            start, wall = cpu_snapshot(), time.perf_counter()
            a = pillow_loop(files, crop)
            b = ours(files, crop, args.threads)
            diff = float((a - b).abs().max())
            contenders = {"pillow": lambda: pillow_loop(files, crop),
                          "ours1": lambda: ours(files, crop, 1),
                          "oursT": lambda: ours(files, crop, args.threads)}
            if name.startswith("photo 2000"):
                contenders["draft"] = lambda: ours(files, crop, args.threads, draft=True)
            rates = {k: 0.0 for k in contenders}
            for _ in range(args.repeat):          # interleave the contenders
                for k, fn in contenders.items():
                    rates[k] = max(rates[k], rate(fn, files, 1))
            speedup = rates["oursT"] / rates["pillow"]
            busy = others_share(start, cpu_snapshot(), time.perf_counter() - wall)
            results[name] = dict(rates, speedup=speedup, diff=diff, others=busy)
            print(f"| {name} | {rates['pillow']:.0f} | {rates['ours1']:.0f} | "
                  f"{rates['oursT']:.0f} | {speedup:.2f}x | {diff:.2g} | {busy} |", flush=True)
            if "draft" in rates:
                print(f"| {name}, draft=True | | | {rates['draft']:.0f} | "
                      f"{rates['draft'] / rates['pillow']:.2f}x | | |", flush=True)
    return results


if __name__ == "__main__":
    main()
