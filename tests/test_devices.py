"""Device and dtype choice: explicit names, automatic choice, and clear refusals."""

from __future__ import annotations

import pytest
import torch

from sd_desktop.engine import devices
from sd_desktop.engine.errors import InvalidRequestError


def test_explicit_cpu_dtypes():
    cpu = devices.resolve_device("cpu")
    assert cpu.type == "cpu"
    assert devices.resolve_dtype("fp32", cpu) is torch.float32
    assert devices.resolve_dtype("bf16", cpu) is torch.bfloat16


def test_auto_follows_hardware(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    assert devices.resolve_dtype("auto", cpu) is torch.bfloat16
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)
    assert devices.resolve_dtype("auto", cpu) is torch.float32
    assert devices.resolve_dtype("auto", torch.device("cuda")) is torch.float16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "mps_available", lambda: False)
    assert devices.resolve_device("auto").type == "cpu"


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: devices.resolve_dtype("fp16", torch.device("cpu")), "fp16"),
        (lambda: devices.resolve_dtype("int8", torch.device("cpu")), "int8"),
        (lambda: devices.resolve_device("tpu"), "tpu"),
    ],
)
def test_refusals_are_clear(call, needle):
    with pytest.raises(InvalidRequestError, match=needle):
        call()


def test_cuda_requested_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InvalidRequestError, match="CUDA"):
        devices.resolve_device("cuda")
