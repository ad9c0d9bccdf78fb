"""Conformance with the original MatConvNet: every oracle case of the blocks, forward output
and every derivative, single and double precision (tolerance in tests/oracle.py)."""
import numpy as np
import pytest

import matconvnet as mcn
from tests import oracle

CORE = ("vl_nnconv", "vl_nnconvt", "vl_nnpool", "vl_nnrelu", "vl_nnsigmoid", "vl_nnsoftmax",
        "vl_nnloss", "vl_nnsoftmaxloss")
OTHERS = ("vl_nnbnorm", "vl_nnnormalize", "vl_nnspnorm", "vl_nnnormalizelp", "vl_nnpdist",
          "vl_nnbilinearsampler", "vl_nnroipool", "vl_nndropout", "vl_nnconcat", "vl_nncrop",
          "vl_nnnoffset")


def run_case(case):
    fn = getattr(mcn, case["block"])
    arrays = oracle.load(case)
    extra, kwargs, used = oracle.options(case, arrays)
    inputs = [arrays[n] for n in case["inputs"] if n not in used]
    args = ([inputs] if case["block"] == "vl_nnconcat" else inputs) + extra

    outputs = [o for o in case["outputs"] if not o.endswith("_exact")]
    extra_out = {f"return_{o}": True for o in outputs[1:]}
    got = fn(*args, **kwargs, **extra_out)
    got = got if extra_out else (got,)
    for name, value in zip(outputs, got):
        _compare(case, name, value, arrays)

    if not case["call_backward"]:
        return
    ders = fn(*args, arrays["dzdy"], **kwargs)
    names = oracle.backward_outputs(case)
    if case["block"] == "vl_nnconcat":
        names = list(case["derivatives"])
    elif len(names) == 1:
        ders = (ders,)
    for name, value in zip(names, ders):
        if name in case["derivatives"] or name == "moments_bwd":
            _compare(case, name, value, arrays)


def _compare(case, name, value, arrays):
    if name + "_exact" in arrays:
        # LRN: exact formula tightly, MatConvNet's approximate pow() within 1e-2 relative.
        oracle.assert_close(case, name + "_exact", value, arrays[name + "_exact"])
        ref = arrays[name]
        err = np.max(np.abs(np.asarray(value, np.float64) - ref))
        assert err <= 1e-2 * max(1.0, np.max(np.abs(ref))), f"{case['id']}: {name} vs MEX {err:.3g}"
    else:
        oracle.assert_close(case, name, value, arrays[name])


@pytest.mark.parametrize("case", oracle.cases(*CORE))
def test_core_block_matches_matconvnet(case):
    run_case(case)


@pytest.mark.parametrize("case", oracle.cases(*OTHERS))
def test_block_matches_matconvnet(case):
    run_case(case)
