"""Conformance with the original MatConvNet: every oracle case of the blocks, forward output
and every derivative, single and double precision (tolerance in tests/oracle.py)."""
import numpy as np
import pytest

import matconvnet as mcn
from tests import oracle

CORE = ("vl_nnconv", "vl_nnconvt", "vl_nnpool", "vl_nnrelu", "vl_nnsigmoid", "vl_nnsoftmax",
        "vl_nnloss", "vl_nnsoftmaxloss")


def run_case(case):
    fn = getattr(mcn, case["block"])
    arrays = oracle.load(case)
    extra, kwargs, used = oracle.options(case, arrays)
    args = [arrays[n] for n in case["inputs"] if n not in used] + extra
    y = fn(*args, **kwargs)
    oracle.assert_close(case, "y", y, arrays["y"])
    ders = fn(*args, arrays["dzdy"], **kwargs)
    names = oracle.backward_outputs(case)
    if len(names) == 1:
        ders = (ders,)
    for name, got in zip(names, ders):
        if name in arrays:
            oracle.assert_close(case, name, got, arrays[name])


@pytest.mark.parametrize("case", oracle.cases(*CORE))
def test_core_block_matches_matconvnet(case):
    run_case(case)
