"""Reader for ``../shared/oracle``: reference numbers from the original MatConvNet.

The one place in the tests that knows MatConvNet's layout: arrays are stored H x W x C x N
(column-major, trailing singletons dropped) and become N x C x H x W here; biases become
flat vectors; manifest options become Python keyword options.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ORACLE = SHARED / "oracle"

# MatConvNet option names -> our keyword names (all others: lower-case).
_KEYWORDS = {
    "numGroups": "num_groups", "instanceWeights": "instance_weights", "topK": "top_k",
    "noRoot": "no_root", "classWeights": "class_weights", "inputSizes": "input_sizes",
}
# Options that take no value in MatConvNet.
_FLAGS = {"spatial", "noroot_flag"}
# Arrays kept as flat vectors (any shape with K elements in MatConvNet).
_FLAT = {"b", "dzdb", "g", "dzdg"}
# Arrays kept as MATLAB matrices: moments C x 2, ROIs 5 x K.
_MATRIX = {"moments", "moments_bwd", "rois"}
# Grids: MatConvNet's 2 x Ho x Wo x N -> N x 2 x Ho x Wo.
_GRID = {"grid", "dzdgrid"}
# Options that are positional arguments, after the block's inputs.
_POSITIONAL = {"pool", "param", "crop", "dim", "p"}
_POSITIONAL_BLOCKS = {"vl_nnpool", "vl_nnnoffset", "vl_nnnormalize", "vl_nnspnorm",
                      "vl_nncrop", "vl_nnconcat", "vl_nnpdist"}
# MatConvNet's 1-based dimensions of H x W x C x N -> axes of N x C x H x W.
_AXIS = {1: 2, 2: 3, 3: 1, 4: 0}


def available() -> bool:
    return (ORACLE / "manifest.json").is_file()


@lru_cache(maxsize=1)
def manifest() -> dict:
    return json.loads((ORACLE / "manifest.json").read_text())


def cases(*blocks: str) -> list:
    """Manifest entries of the given blocks, as pytest params with readable ids."""
    if not available():
        return [pytest.param(None, marks=pytest.mark.skip(reason="../shared/oracle is absent"))]
    return [pytest.param(c, id=c["id"]) for c in manifest()["blocks"]["cases"]
            if c["block"] in blocks]


def to_nchw(a: np.ndarray, shape4) -> np.ndarray:
    """MatConvNet H x W x C x N (column-major) -> N x C x H x W (C order)."""
    a = np.asarray(a).reshape(tuple(shape4), order="F")
    return np.ascontiguousarray(a.transpose(3, 2, 0, 1))


def load(case: dict) -> dict:
    """All arrays of a case, converted to our layout (None for empty arrays)."""
    import scipy.io as sio
    raw = sio.loadmat(str(ORACLE / case["file"]))
    out = {}
    for name, shape in case["shapes"].items():
        if name not in raw:
            continue
        a = raw[name]
        if a.size == 0:
            out[name] = None
        elif name in _FLAT:
            out[name] = np.asarray(a).ravel(order="F")
        elif name in _MATRIX:
            out[name] = np.ascontiguousarray(np.asarray(a).reshape(tuple(shape[:2]), order="F"))
        elif name in _GRID:
            g = np.asarray(a).reshape(tuple(shape), order="F")
            out[name] = np.ascontiguousarray(g.transpose(3, 0, 1, 2))
        elif name in ("y",) and int(np.prod(shape)) == 1 and case["block"] in _SCALAR_BLOCKS:
            out[name] = np.asarray(a).reshape(())
        elif name == "dzdy" and case["block"] in _SCALAR_BLOCKS:
            out[name] = np.asarray(a).reshape(())
        else:
            out[name] = to_nchw(a, shape)
    return out


_SCALAR_BLOCKS = {"vl_nnloss", "vl_nnsoftmaxloss"}


def options(case: dict, arrays: dict):
    """Manifest option list -> (positional extras, keyword options, names used as options)."""
    opts = list(case["options"])
    positional, kwargs, used = [], {}, set()
    i = 0
    while i < len(opts):
        name = opts[i]
        if name.lower() in _FLAGS:
            kwargs[name.lower()] = True
            i += 1
            continue
        value = opts[i + 1]
        i += 2
        if isinstance(value, str):
            ref = value.strip("<>")
            if ref not in case["shapes"] and name in case["shapes"]:
                ref = name  # e.g. 'instanceWeights', 'W': the input named like the option
            if ref in case["shapes"]:
                used.add(ref)
                value = arrays.get(ref)
        if name in ("dimensions", "dim"):
            value = [_AXIS[int(d)] for d in np.atleast_1d(value)]
            value = value[0] if name == "dim" else value
        if name in _POSITIONAL and case["block"] in _POSITIONAL_BLOCKS:
            positional.append(value)
            continue
        key = _KEYWORDS.get(name, _snake(name))
        kwargs[key] = value
    return positional, kwargs, used


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def backward_outputs(case: dict) -> list:
    """Names of the backward call's outputs, in order: '[dzdx, dzdw] = ...' -> [dzdx, dzdw]."""
    lhs = case["call_backward"].split("=")[0].strip().strip("[]")
    return [s.strip() for s in lhs.split(",")]


def tolerance(case: dict, ref: np.ndarray) -> float:
    scale = max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
    return (1e-4 if case["dtype"] == "single" else 1e-9) * scale


def assert_close(case: dict, name: str, got, ref) -> None:
    if ref is None:
        assert got is None or np.size(got) == 0, f"{case['id']}: {name} should be empty"
        return
    assert got is not None, f"{case['id']}: {name} is missing"
    got = np.asarray(got)
    # Our outputs keep x's precision; MATLAB sometimes promotes (topkerror's y is double).
    want = np.float32 if case["dtype"] == "single" else np.float64
    assert got.dtype == want, f"{case['id']}: {name} dtype {got.dtype}, expected {want}"
    assert got.size == ref.size, f"{case['id']}: {name} shape {got.shape} != {ref.shape}"
    got = got.reshape(ref.shape)
    err = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
    tol = tolerance(case, ref)
    assert err <= tol, f"{case['id']}: {name} max abs error {err:.3g} > {tol:.3g}"
