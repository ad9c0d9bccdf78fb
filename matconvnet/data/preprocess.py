"""``preprocess-imagenet``: copy an ImageNet tree with every image's shorter side resized to 256.

The original ``utils/preprocess-imagenet.sh SRC DEST`` (FEATURES.md U-PP-1) runs GraphicsMagick
``-resize 256x256^ -quality 90 -colorspace RGB`` over the ILSVRC12 images with ``xargs``
parallelism and copies the devkit.  Here, in Python::

    python -m matconvnet.data.preprocess_imagenet SRC DST [--size 256] [--quality 90]
                                                          [--workers N] [--overwrite]

or ``preprocess_imagenet(src, dst)``.  Every image (``.jpeg``, ``.jpg``, ``.png``, any case)
under ``SRC`` is written to the same relative path under ``DST`` as an RGB image whose shorter
side is ``size`` (larger and smaller images alike, the aspect ratio kept; Lanczos
resampling, after JPEG DCT downscaling when the image is at least twice the target); JPEGs
at ``quality``.  Other files are copied and symbolic links recreated.  Each output is written
to a temporary file in its folder, flushed to disk and renamed, so an interrupted run leaves
only complete files, and a rerun skips the files already there (``--overwrite`` redoes them).
Images that cannot be decoded are reported and skipped.  Work runs in ``workers`` threads
(Pillow releases the GIL while decoding, resizing and encoding).
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import shutil
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from PIL import Image

from .._files import atomic_write

__all__ = ["preprocess_imagenet", "resized_shape", "main"]

_IMAGES = (".jpeg", ".jpg", ".png")
_FORMATS = {".jpeg": "JPEG", ".jpg": "JPEG", ".png": "PNG"}


def resized_shape(width: int, height: int, size: int) -> Tuple[int, int]:
    """``(W, H)`` with the shorter side ``size`` and the aspect ratio kept (``-resize SxS^``)."""
    scale = size / min(width, height)
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def _resize_one(src: str, dst: str, size: int, quality: int) -> None:
    with Image.open(src) as im:
        target = resized_shape(im.width, im.height, size)
        if im.format == "JPEG":
            im.draft("RGB", target)          # DCT downscaling by 1/2..1/8 when it still fits
        rgb = im.convert("RGB")
    out = rgb.resize(target, Image.Resampling.LANCZOS)
    fmt = _FORMATS[os.path.splitext(dst)[1].lower()]
    kw = {"quality": int(quality)} if fmt == "JPEG" else {}
    atomic_write(dst, lambda tmp: out.save(tmp, format=fmt, **kw))


def _copy_one(src: str, dst: str) -> None:
    if os.path.islink(src):
        if os.path.lexists(dst):
            os.remove(dst)
        os.symlink(os.readlink(src), dst)
        return

    atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp))
    shutil.copystat(src, dst)


Pairs = List[Tuple[str, str]]


def _plan(src: str, dst: str, overwrite: bool) -> Tuple[Pairs, Pairs, int]:
    """(source, destination) of the images to resize and of the other files to copy, and the
    number of destinations already there."""
    images, others, skipped = [], [], 0
    for root, dirs, files in os.walk(src):
        dirs.sort()
        rel = os.path.relpath(root, src)
        out_root = os.path.normpath(os.path.join(dst, rel))
        os.makedirs(out_root, exist_ok=True)
        linked_dirs = sorted(d for d in dirs if os.path.islink(os.path.join(root, d)))
        for name in sorted(files) + linked_dirs:
            s, d = os.path.join(root, name), os.path.join(out_root, name)
            if name.startswith(".tmp-"):
                continue
            if os.path.lexists(d) and not overwrite:
                skipped += 1
            elif name.lower().endswith(_IMAGES) and not os.path.islink(s):
                images.append((s, d))
            else:
                others.append((s, d))
    return images, others, skipped


def preprocess_imagenet(src: str, dst: str, *, size: int = 256, quality: int = 90,
                        num_workers: Optional[int] = None, overwrite: bool = False,
                        verbose: bool = True) -> Dict[str, object]:
    """Copy the tree ``src`` to ``dst`` with the shorter side of every image resized to ``size``.

    Returns counts ``{'resized', 'copied', 'skipped', 'failed': [(path, reason), ...]}``.
    """
    if not os.path.isdir(src):
        raise FileNotFoundError(f"src: {src!r} is not a folder")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size: expected a positive integer, got {size!r}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality: expected an integer in 1..100, got {quality!r}")
    if os.path.abspath(dst).startswith(os.path.abspath(src) + os.sep) \
            or os.path.abspath(dst) == os.path.abspath(src):
        raise ValueError(f"dst: {dst!r} must not be inside src {src!r}")
    os.makedirs(dst, exist_ok=True)
    images, others, skipped = _plan(src, dst, overwrite)
    workers = num_workers or os.cpu_count() or 1
    failed: List[Tuple[str, str]] = []
    start = time.perf_counter()
    with cf.ThreadPoolExecutor(workers) as pool:
        jobs = {pool.submit(_resize_one, s, d, size, quality): s for s, d in images}
        jobs.update({pool.submit(_copy_one, s, d): s for s, d in others})
        for k, job in enumerate(cf.as_completed(jobs), start=1):
            try:
                job.result()
            except Exception as e:  # noqa: BLE001 - report the file and carry on
                failed.append((jobs[job], f"{type(e).__name__}: {e}"))
            if verbose and (k % 1000 == 0 or k == len(jobs)):
                rate = k / max(time.perf_counter() - start, 1e-9)
                print(f"preprocess_imagenet: {k}/{len(jobs)} files ({rate:.0f}/s)", flush=True)
    for path, reason in failed:
        print(f"preprocess_imagenet: could not process {path}: {reason}", file=sys.stderr)
    image_sources = {s for s, _ in images}
    return {"resized": len(images) - sum(1 for p, _ in failed if p in image_sources),
            "copied": len(others), "skipped": skipped, "failed": failed}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m matconvnet.data.preprocess_imagenet",
                                description=__doc__.split("\n")[0])
    p.add_argument("src", help="source tree (e.g. data/ILSVRC2012)")
    p.add_argument("dst", help="destination tree (e.g. data/imagenet12-s256)")
    p.add_argument("--size", type=int, default=256, help="shorter side (default 256)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    p.add_argument("--workers", type=int, default=None, help="threads (default: CPU count)")
    p.add_argument("--overwrite", action="store_true", help="redo files already in DST")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    a = p.parse_args(argv)
    try:
        r = preprocess_imagenet(a.src, a.dst, size=a.size, quality=a.quality,
                                num_workers=a.workers, overwrite=a.overwrite,
                                verbose=not a.quiet)
    except (FileNotFoundError, ValueError) as e:
        p.error(str(e))
    if not a.quiet:
        print(f"preprocess_imagenet: {r['resized']} images resized, {r['copied']} files "
              f"copied, {r['skipped']} already there, {len(r['failed'])} failed")
    return 1 if r["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
