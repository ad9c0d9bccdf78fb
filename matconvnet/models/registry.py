"""MatConvNet's published pretrained models: the registry, loading and downloading.

``PRETRAINED`` maps a model's name (its file name without ``.mat``) to a
:class:`PretrainedModel` record for each of the 27 models MatConvNet published
(``doc/site/docs/pretrained.md``, FEATURES.md section 7: file, task, wrapper, input size,
published accuracy and speed, MD5, download URL), plus ``squeezenet1_0``, the ImageNet
SqueezeNet v1.0 shipped inside this package (a Caffe import of the Deep Compression
weights; it needs no download).

``net = pretrained(name, path=None)`` loads a model: from ``path`` (the file, or a folder
holding it) when given, from the package for the shipped model, else from the cache folder
``$MATCONVNET_HOME/models`` (default ``~/.cache/matconvnet/models``).  The file's MD5 is
checked against the published one; a missing file or a wrong checksum raises an error
that says where to download the file and which command does it.  A SimpleNN file gives a
tidied SimpleNN dict (``vl_simplenn_tidy``), a DagNN file a :class:`matconvnet.dagnn.DagNN`,
as the original's demos load them (``vl_simplenn_tidy(load(f))``, ``DagNN.loadobj(load(f))``).

``download(name_or_url, dest=None, md5=None)`` fetches a registered model (or any URL) to
the cache folder or ``dest``: an interrupted download resumes (HTTP ``Range``) from the
``<file>.part`` it left, the checksum is verified before the file is moved into place
(atomically), and a file whose checksum does not match is deleted and rejected.  From the
command line: ``matconvnet download imagenet-vgg-f``.

The registry's figures are the published ones, not measured here: ImageNet models give the
ILSVRC12 validation ``top1_error`` / ``top5_error`` (%, single centre crop) and images per
second on a Titan X; FCNs their segmentation scores on the benchmark named in
``benchmark`` (columns as published); Fast R-CNN models their PASCAL VOC 2007 mAP.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple, Union

__all__ = ["PretrainedModel", "PRETRAINED", "pretrained", "download", "model_path", "lookup",
           "load_model", "cache_dir", "md5sum", "ModelNotFoundError", "UnknownModelError",
           "ChecksumError", "DownloadError", "BASE_URL"]

BASE_URL = "http://www.vlfeat.org/matconvnet/models/"
_PACKAGE_FOLDER = Path(__file__).resolve().parent / "shipped"

PathLike = Union[str, "os.PathLike[str]"]


class UnknownModelError(ValueError):
    """A model name that is not in the registry."""


class ModelNotFoundError(FileNotFoundError):
    """A registered model whose file is not where it was looked for."""


class ChecksumError(ValueError):
    """A file whose MD5 differs from the published one."""


class DownloadError(OSError):
    """A download that could not complete (network, HTTP status, truncated transfer)."""


class _RangeNotSatisfiable(Exception):
    """HTTP 416 to a resume request: the kept part is as long as the file, or longer."""


@dataclass(frozen=True)
class PretrainedModel:
    """One published model.  ``input_size`` is ``meta.normalization.imageSize`` ([H, W, C];
    None for fully convolutional models, ``input_note`` then says what they take);
    ``inferred`` names the fields FEATURES.md marks as inferred rather than read from the
    file; ``md5`` is None where no checksum was published."""
    name: str
    task: str
    wrapper: str                                  # 'simplenn' or 'dagnn'
    input_size: Optional[Tuple[int, int, int]]
    md5: Optional[str]
    benchmark: str = ""
    metrics: Dict[str, float] = field(default_factory=dict)
    images_per_second: Optional[float] = None
    input_note: str = ""
    inferred: Tuple[str, ...] = ()
    shipped: bool = False                         # in the package, no download

    @property
    def file(self) -> str:
        return self.name + ".mat"

    @property
    def url(self) -> Optional[str]:
        return None if self.shipped else BASE_URL + self.file

    @property
    def accuracy(self) -> str:
        """The published figures as one line, e.g. ``top-1 24.6% / top-5 7.7% error``."""
        m = self.metrics
        if "top1_error" in m:
            return f"top-1 {m['top1_error']:.1f}% / top-5 {m['top5_error']:.1f}% error"
        if "mean_iou" in m:
            return (f"mean IoU {m['mean_iou']:.2f}, mean pix. acc. "
                    f"{m['mean_pixel_accuracy']:.2f}, pixel acc. {m['pixel_accuracy']:.2f}")
        if "mAP" in m:
            return f"mAP {m['mAP']:.1f}%, mAP11 {m['mAP11']:.1f}%"
        return "not published"


def _imagenet(name, task, wrapper, size, top1, top5, speed, md5, inferred=()):
    return PretrainedModel(name, task, wrapper, (size, size, 3), md5,
                           "ILSVRC12 val, single centre crop",
                           {"top1_error": top1, "top5_error": top5}, speed, inferred=inferred)


def _fcn(name, task, benchmark, iou, mean_pix, pix, md5):
    return PretrainedModel(name, task, "dagnn", None, md5, benchmark,
                           {"mean_iou": iou, "mean_pixel_accuracy": mean_pix,
                            "pixel_accuracy": pix},
                           input_note="any size (fullImageSize 500)")


def _frcnn(name, task, m, m11, md5):
    return PretrainedModel(name, task, "dagnn", None, md5, "PASCAL VOC 2007 test",
                           {"mAP": m, "mAP11": m11},
                           input_note="any size (shorter side 600); inputs data + rois")


_CLS = "ImageNet ILSVRC12 classification"
_SEG = "PASCAL VOC semantic segmentation (21 classes)"
_DET = "PASCAL VOC 2007 object detection"

_MODELS = (
    _imagenet("imagenet-resnet-50-dag", _CLS + " (MSRA ResNet-50, Caffe import)", "dagnn",
              224, 24.6, 7.7, 396.3, "d72aa76a8ddf8bd96e405ac0ba827724"),
    _imagenet("imagenet-resnet-101-dag", _CLS + " (MSRA ResNet-101, Caffe import)", "dagnn",
              224, 23.4, 7.0, 247.3, "16ff04c36c7bd33510e4a81db6dc764b"),
    _imagenet("imagenet-resnet-152-dag", _CLS + " (MSRA ResNet-152, Caffe import)", "dagnn",
              224, 23.0, 6.7, 172.5, "f399bef82f5bcaf290d07ccc818833d7"),
    _imagenet("imagenet-matconvnet-vgg-verydeep-16",
              _CLS + " (VGG-VD-16 trained in MatConvNet, batch norm folded)", "simplenn",
              224, 28.3, 9.5, 200.9, "89a117515f66c3d7b0eb9d0516c65141", ("wrapper",)),
    _imagenet("imagenet-vgg-verydeep-19", _CLS + " (VGG-VD-19, Caffe import)", "simplenn",
              224, 28.7, 9.9, 166.2, "106118b7cf60435e6d8e04f6a6dc3657"),
    _imagenet("imagenet-vgg-verydeep-16", _CLS + " (VGG-VD-16, Caffe import)", "simplenn",
              224, 28.5, 9.9, 200.2, "f72d927587ca4c97fbd165ec9cb9997f"),
    _imagenet("imagenet-googlenet-dag", _CLS + " (Princeton GoogLeNet import; output prob)",
              "dagnn", 224, 34.2, 12.9, 770.6, "97f4e1aa9ad6ed33fd325835710c5092"),
    _imagenet("imagenet-matconvnet-vgg-s", _CLS + " (VGG-S trained in MatConvNet)", "simplenn",
              224, 37.0, 15.8, 586.2, "82d5705d292714d0d6581a834485705b", ("wrapper",)),
    _imagenet("imagenet-matconvnet-vgg-m", _CLS + " (VGG-M trained in MatConvNet)", "simplenn",
              224, 36.9, 15.5, 1212.5, "7e07705fc60c178ee3d2c09dab33acf3", ("wrapper",)),
    _imagenet("imagenet-matconvnet-vgg-f", _CLS + " (VGG-F trained in MatConvNet)", "simplenn",
              224, 41.4, 19.1, 2482.7, "790e116ec817a58960b103514891fdbf", ("wrapper",)),
    _imagenet("imagenet-vgg-s", _CLS + " (VGG-S, 'Return of the Devil')", "simplenn",
              224, 36.7, 15.3, 560.1, "dbe23da22e82078debda75842b16d5fa"),
    _imagenet("imagenet-vgg-m", _CLS + " (VGG-M, 'Return of the Devil')", "simplenn",
              224, 37.3, 15.9, 1025.1, "29294d5f62578c96a3533859514235f2"),
    _imagenet("imagenet-vgg-f", _CLS + " (VGG-F, 'Return of the Devil'; the quick start's)",
              "simplenn", 224, 41.1, 18.8, 1118.9, "3513562d28089bd965cc050cbf8597a6"),
    _imagenet("imagenet-vgg-m-128", _CLS + " (VGG-M, 128-D fc7)", "simplenn",
              224, 40.8, 18.4, 1031.3, "3a8dc312a44a99d21ad43e8d96a8590f"),
    _imagenet("imagenet-vgg-m-1024", _CLS + " (VGG-M, 1024-D fc7)", "simplenn",
              224, 37.8, 16.1, 958.5, "1410d01878346f911e991dd0c1bb983b"),
    _imagenet("imagenet-vgg-m-2048", _CLS + " (VGG-M, 2048-D fc7)", "simplenn",
              224, 37.1, 15.8, 984.2, "087ec812e0a09980bd934e2e7ba157f6"),
    _imagenet("imagenet-matconvnet-alex", _CLS + " (AlexNet with batch norm, trained in "
              "MatConvNet)", "simplenn", 227, 41.8, 19.2, 2133.3,
              "0998b7f66bd8dcbb78a3e75aaa6127f3", ("wrapper",)),
    _imagenet("imagenet-caffe-ref", _CLS + " (Caffe reference net; bicubic, aspect not kept, "
              "mean image)", "simplenn", 227, 42.6, 19.7, 1071.7,
              "675dd47906d34f4d9a70fc44210d3804"),
    _imagenet("imagenet-caffe-alex", _CLS + " (Caffe AlexNet)", "simplenn",
              227, 42.6, 19.6, 1379.8, "b5152a54bf61100a8ed61827c76e7d08"),
    _fcn("pascal-fcn32s-dag", _SEG + ", FCN-32s (BVLC FCN import)", "RV-VOC11",
         59.43, 89.12, 73.28, "a1331885ec72a0721e51ac9d16262a48"),
    _fcn("pascal-fcn16s-dag", _SEG + ", FCN-16s (BVLC FCN import)", "RV-VOC11",
         62.35, 90.02, 75.74, "2e49dd427829cdbc08a0154f994687d7"),
    _fcn("pascal-fcn8s-dag", _SEG + ", FCN-8s (BVLC FCN import)", "RV-VOC11",
         62.69, 90.33, 75.86, "0eeb6a4bc819616ea66f88a3db878983"),
    _fcn("pascal-fcn8s-tvg-dag", _SEG + ", FCN-8s of CRF-RNN (Torr Vision Group, +COCO)",
         "RV-VOC12", 69.85, 92.94, 78.80, "b0f7bd5833b555c6241dd0c05897ca41"),
    _frcnn("fast-rcnn-caffenet-pascal07-dagnn", _DET + " (Fast R-CNN, CaffeNet)",
           57.3, 58.1, "9dcc29b03edb5b136fda31fcd59bd025"),
    _frcnn("fast-rcnn-vggm1k-pascal07-dagnn", _DET + " (Fast R-CNN, VGG-M-1024)",
           59.4, 60.5, "f09a662aef88ac4c23d294eb1fb6f385"),
    _frcnn("fast-rcnn-vgg16-pascal07-dagnn", _DET + " (Fast R-CNN, VGG-16)",
           67.3, 68.7, "961f997d7ff922f1ff6b7b20ad677a4c"),
    PretrainedModel("vgg-face", "face identification (VGG-Face, 2622 identities; drop the "
                    "last layer for the 4096-D descriptor)", "simplenn", (224, 224, 3),
                    "3d6cd504bf9c98af4a561aad059565d1", inferred=("input_size",)),
    PretrainedModel("squeezenet1_0", _CLS + " (SqueezeNet v1.0, Deep Compression weights, "
                    "Caffe import; shipped with the package)", "dagnn", (227, 227, 3), None,
                    input_note="BGR Caffe model converted to RGB input", shipped=True),
)

#: name -> record, in the published table's order; ``squeezenet1_0`` ships with the package.
PRETRAINED: Dict[str, PretrainedModel] = {m.name: m for m in _MODELS}


# ----------------------------------------------------------------------------- files

def cache_dir() -> Path:
    """``$MATCONVNET_HOME/models``, default ``~/.cache/matconvnet/models`` (not created)."""
    home = os.environ.get("MATCONVNET_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".cache" / "matconvnet"
    return base / "models"


def lookup(name: str) -> PretrainedModel:
    """The record of model ``name`` (``.mat`` optional); :class:`UnknownModelError`, with
    the closest names, when there is none."""
    if not isinstance(name, str):
        raise TypeError(f"name: expected a model name (str), got {type(name).__name__}")
    key = name[:-4] if name.endswith(".mat") else name
    if key in PRETRAINED:
        return PRETRAINED[key]
    close = difflib.get_close_matches(key, list(PRETRAINED), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownModelError(f"unknown model {name!r}{hint} (`matconvnet models` lists the "
                            f"{len(PRETRAINED)} known ones)")


def _how_to_get(m: PretrainedModel, where: Path) -> str:
    return (f"download it from {m.url} into {where.parent} (or pass its location as "
            f"path=...), e.g. with `matconvnet download {m.name}`"
            + (f" or `matconvnet download {m.name} --dest {where.parent}`"
               if where.parent != cache_dir() else ""))


def model_path(name: str, path: Optional[PathLike] = None) -> Path:
    """Where the file of model ``name`` is: ``path`` (the file, or a folder holding it),
    the package for the shipped model, else the cache folder.  Raises
    :class:`ModelNotFoundError` with download instructions when it is not there."""
    m = lookup(name)
    if path is not None:
        p = Path(path).expanduser()
        p = p / m.file if p.is_dir() else p
    elif m.shipped:
        p = _PACKAGE_FOLDER / m.file
        if not p.is_file():
            raise ModelNotFoundError(
                f"{m.name}: the model file {p} that ships with the package is missing; "
                f"reinstall matconvnet")
        return p
    else:
        p = cache_dir() / m.file
    if not p.is_file():
        if m.shipped:
            raise ModelNotFoundError(f"{m.name}: no file {p}; this model ships with the "
                                     f"package at {_PACKAGE_FOLDER / m.file} (omit path)")
        raise ModelNotFoundError(f"{m.name}: no file {p}; {_how_to_get(m, p)}")
    return p


def md5sum(path: PathLike, chunk_size: int = 1 << 20) -> str:
    """The MD5 of a file, as a hex string."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


def _check_md5(path: Path, expected: Optional[str], what: str) -> None:
    if not expected:
        return
    got = md5sum(path)
    if got != expected.lower():
        raise ChecksumError(f"{path}: MD5 {got} differs from {what} {expected}: the file is "
                            f"corrupt, truncated or a different version")


def load_model(path: PathLike):
    """A model file: a SimpleNN file gives a tidied SimpleNN dict, a DagNN file a
    :class:`~matconvnet.dagnn.DagNN`; a training checkpoint gives its ``net``."""
    from ..dagnn import DagNN
    from ..io import load
    from ..io.layout import is_dagnn, is_simplenn
    from ..simplenn import vl_simplenn_tidy

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    data = load(p)
    net = data.get("net") if isinstance(data.get("net"), dict) else data
    if is_dagnn(net):
        try:
            return DagNN.from_struct(net)
        except ValueError as e:
            raise ValueError(f"{p}: {e}") from e
    if is_simplenn(net):
        return vl_simplenn_tidy(net)
    raise ValueError(f"{p}: not a MatConvNet model file (expected the variables of a SimpleNN "
                     f"net (layers, meta) or a DagNN net (vars, params, layers, meta), or a "
                     f"variable 'net' holding one; found {', '.join(sorted(data)) or 'none'})")


def pretrained(name: str, path: Optional[PathLike] = None, *, verify: bool = True):
    """Load the published model ``name`` (see the module's help): a SimpleNN dict or a
    DagNN.  ``path``: the file or the folder holding it (default: the package for the
    shipped model, the cache folder for the others).  ``verify``: check the published MD5
    (:class:`ChecksumError` when it differs)."""
    m = lookup(name)
    p = model_path(m.name, path)
    if verify:
        try:
            _check_md5(p, m.md5, f"the published MD5 of {m.name}")
        except ChecksumError as e:
            raise ChecksumError(f"{e}; delete it and {_how_to_get(m, p)}") from None
    return load_model(p)


# ----------------------------------------------------------------------------- download

def _resolve(name_or_url: str, md5: Optional[str]) -> Tuple[str, str, Optional[str]]:
    """(url, file name, md5) of a registered model or a URL."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", name_or_url):
        file = os.path.basename(urllib.parse.urlparse(name_or_url).path)
        if not file:
            raise ValueError(f"url: {name_or_url!r} does not end with a file name")
        return name_or_url, file, md5
    m = lookup(name_or_url)
    if m.shipped:
        raise ValueError(f"{m.name} ships with the package ({_PACKAGE_FOLDER / m.file}); there "
                         f"is nothing to download")
    return m.url, m.file, md5 or m.md5


def _destination(dest: Optional[PathLike], file: str) -> Path:
    if dest is None:
        return cache_dir() / file
    d = Path(dest).expanduser()
    if d.is_dir() or str(dest).endswith(("/", os.sep)):
        return d / file
    return d


def _content_range_start(value: Optional[str]) -> Optional[int]:
    m = re.match(r"^\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*$", value or "")
    return int(m.group(1)) if m else None


def _fetch(url: str, part: Path, timeout: float,
           progress: Optional[Callable[[int, Optional[int]], None]],
           chunk_size: int) -> None:
    """Append the rest of ``url`` to ``part`` (``Range`` from its current size; the whole
    file again when the server ignores the range)."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "matconvnet-python", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            raise _RangeNotSatisfiable() from None
        raise DownloadError(f"{url}: HTTP error {e.code} ({e.reason})") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"{url}: cannot connect ({reason})") from None
    with response:
        status = getattr(response, "status", 200)
        if status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if not offset or start != offset:
                raise DownloadError(f"{url}: asked for bytes from {offset}, the server sent a "
                                    f"part starting at {start}")
            mode = "ab"
        else:
            offset, mode = 0, "wb"  # the server sent the whole file
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        done = offset
        try:
            with open(part, mode) as f:
                while True:
                    try:
                        block = response.read(chunk_size)
                    except OSError as e:
                        raise DownloadError(f"{url}: transfer interrupted after {done} bytes "
                                            f"({e}); run the download again to resume") from None
                    if not block:
                        break
                    f.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
                f.flush()
                os.fsync(f.fileno())
        except DownloadError:
            raise
        except OSError as e:
            raise DownloadError(f"{part}: cannot write ({e})") from None
    if total is not None and done != total:
        raise DownloadError(f"{url}: received {done} of {total} bytes; run the download again "
                            f"to resume from {part}")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def download(name_or_url: str, dest: Optional[PathLike] = None, md5: Optional[str] = None, *,
             timeout: float = 60.0, progress: Optional[Callable[[int, Optional[int]], None]]
             = None, chunk_size: int = 1 << 20) -> Path:
    """Download a registered model (by name) or any URL; returns the file's path.

    ``dest``: the file, or an existing folder (default: the cache folder).  ``md5``: the
    expected checksum (default: the registry's for a model; a URL without one is not
    checked).  The data goes to ``<dest>.part`` first; an interrupted download leaves it
    there and the next call resumes it with an HTTP ``Range`` request (a server that ignores
    ranges sends the whole file, which replaces the part).  The complete file is checked and
    moved into place with an atomic rename.  A checksum mismatch after resuming retries once
    from scratch (the kept part may have been damaged); a mismatch on a whole download
    deletes the part and raises :class:`ChecksumError`.  An existing ``dest`` with the right
    checksum is kept and nothing is downloaded.  ``progress(done, total)`` is called after
    every chunk (``total`` None when the server does not say)."""
    url, file, md5 = _resolve(name_or_url, md5)
    if md5 is not None and not re.fullmatch(r"[0-9a-fA-F]{32}", md5):
        raise ValueError(f"md5: expected 32 hexadecimal digits, got {md5!r}")
    target = _destination(dest, file)
    folder = target.parent
    if target.is_file() and md5 is not None and md5sum(target) == md5.lower():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    for attempt in range(2):
        resumed = part.exists() and part.stat().st_size > 0
        try:
            _fetch(url, part, timeout, progress, chunk_size)
        except _RangeNotSatisfiable:
            if md5 is None:  # nothing to tell a complete part from a damaged one
                part.unlink()
                continue
        got = md5sum(part) if md5 is not None else None
        if got is not None and got != md5.lower():
            part.unlink()
            if resumed and attempt == 0:
                continue  # the kept part may be what is wrong: once more from the start
            raise ChecksumError(f"{url}: rejected the downloaded file (deleted): its MD5 {got} "
                                f"differs from the expected {md5.lower()}")
        break
    else:
        raise DownloadError(f"{url}: the download did not complete")
    os.replace(part, target)
    _fsync_dir(folder)
    return target
