import pytest
import torch

from tests import numerics as nm


@pytest.fixture(autouse=True)
def _seed_and_single_thread():
    """Every block test starts from seed 0, single-threaded: the tensors are tiny, so threads
    only add overhead (and contention on a shared machine)."""
    torch.manual_seed(0)
    with nm.single_thread():
        yield
