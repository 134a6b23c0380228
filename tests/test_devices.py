"""`--device`: one rule for synth, the template bank and the restorer."""

from __future__ import annotations

import pytest
import torch

from filmdata.degrade import resolve_device
from filmdata.devices import pick_device
from filmdata.errors import RefusedError
from filmdata.synth import pick_device as synth_device


def test_auto_is_cuda_where_there_is_one_else_cpu() -> None:
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto").type == want and pick_device(None).type == want
    assert synth_device("auto") == want and resolve_device("auto").type == want
    assert pick_device("cpu") == torch.device("cpu") and synth_device("cpu") == "cpu"


@pytest.mark.parametrize("bad", ["gpu", "mps", "cpu:x"])
def test_other_devices_are_refused(bad: str) -> None:
    with pytest.raises(RefusedError, match="--device"):
        pick_device(bad)
    with pytest.raises(RefusedError, match="--device"):
        synth_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_refused() -> None:
    with pytest.raises(RefusedError, match="CUDA is not available"):
        pick_device("cuda:0")
