"""Choosing where and in which precision the model runs.

The defaults follow the hardware: fp16 on CUDA and MPS, bf16 on CPUs with native
bf16 matrix units (AMX or AVX512-BF16), fp32 on other CPUs where bf16 would be
emulated and slower.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch

from .errors import InvalidRequestError

DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
DTYPE_NAMES: dict[torch.dtype, str] = {v: k for k, v in DTYPES.items()}


# CPU flags (as Linux names them) of units that multiply bf16 matrices natively. Without
# them oneDNN emulates bf16 through fp32 and the conversions make it slower than fp32.
NATIVE_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


def cpuinfo_has_native_bf16(cpuinfo: str) -> bool:
    """True when the first `flags` line of a /proc/cpuinfo text names a native bf16 unit."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return bool(flags & NATIVE_BF16_FLAGS)
    return False


@cache
def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 matrices in hardware (AMX tiles or AVX512-BF16).

    Only Linux says so in /proc/cpuinfo; elsewhere this is False and the CPU runs fp32.
    """
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return cpuinfo_has_native_bf16(text)


def cuda_supports_bf16(device: torch.device) -> bool:
    """Ampere (compute capability 8.0) and newer run bf16 on their tensor cores."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    major, _minor = torch.cuda.get_device_capability(device)
    return major >= 8


def resolve_vae_dtype(run_dtype: torch.dtype, device: torch.device) -> torch.dtype:
    """The dtype the VAE starts in.

    SD 1.x's VAE overflows in fp16 at some images. On GPUs with bf16 (same speed,
    fp32's range) it runs in bf16 instead; on older GPUs it starts in fp16 and the
    model switches it to fp32 for good the first time a decode overflows.
    """
    if run_dtype == torch.float16 and cuda_supports_bf16(device):
        return torch.bfloat16
    return run_dtype


def total_device_memory(device: torch.device) -> int | None:
    """Bytes of memory on a CUDA device; None where it cannot be known (CPU, MPS)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    return int(torch.cuda.get_device_properties(device).total_memory)


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InvalidRequestError(
                "CUDA was requested but no CUDA GPU is available to this PyTorch build; "
                "use --device cpu or install a CUDA build of torch."
            )
        return torch.device(name)
    if name == "mps":
        if not mps_available():
            raise InvalidRequestError("MPS was requested but is not available on this machine.")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise InvalidRequestError(f"Unknown device '{name}': use auto, cpu, cuda or mps.")


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    name = (name or "auto").lower()
    if name == "auto":
        if device.type in ("cuda", "mps"):
            return torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    if name not in DTYPES:
        raise InvalidRequestError(f"Unknown dtype '{name}': use auto, fp32, bf16 or fp16.")
    dtype = DTYPES[name]
    if device.type == "cpu" and dtype == torch.float16:
        raise InvalidRequestError("fp16 is not supported on the CPU; use bf16 or fp32.")
    return dtype
