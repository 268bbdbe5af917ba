"""PyTorch pickle checkpoints (.ckpt, .pt, .pth, .bin), opened without running their code.

A pickle can call any Python function while it is read, so these files only go
through torch.load(weights_only=True), whose unpickler refuses everything but
tensors and plain containers, and mmap=True so the weights are not read into
memory just to look at them. The old non-zip format cannot be memory-mapped and
lets a file declare storage sizes before they are read, so it is refused too.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from ..errors import CheckpointError

PICKLE_SUFFIXES = frozenset({".ckpt", ".pt", ".pth", ".bin"})
_ZIP_MAGIC = b"PK\x03\x04"
_CONVERT = "convert it to .safetensors with a tool you trust"


def check_pickle_file(path: Path) -> None:
    """Refuse empty, non-zip and old-format files by their first bytes, before torch sees them."""
    name = path.name
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(4)
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path} does not exist.") from exc
    except OSError as exc:
        raise CheckpointError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    if size == 0:
        raise CheckpointError(
            f"{name} is empty (0 bytes): the download probably failed; download it again."
        )
    if head == _ZIP_MAGIC:
        return
    if head[:1] == b"\x80":
        raise CheckpointError(
            f"{name} uses PyTorch's old pickle format, which cannot be loaded safely "
            f"without reading it whole; {_CONVERT}."
        )
    raise CheckpointError(f"{name} is not a PyTorch checkpoint (unrecognised content).")


def load_pickle_tensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a weights-only checkpoint, memory-mapped from the file.

    Lightning-style files keep the weights under "state_dict"; other entries
    (epoch, global_step, ...) are dropped.
    """
    path = Path(path)
    check_pickle_file(path)
    name = path.name
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{name} contains code or objects other than plain weights, so it was not loaded "
            f"(loading it could run that code); {_CONVERT}."
        ) from exc
    except Exception as exc:  # any failure of an untrusted file is the file's
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{name} cannot be loaded as a plain-weights PyTorch checkpoint (it is damaged or "
            f"contains unsupported objects: {reason}); {_CONVERT} or download it again."
        ) from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{name} holds a {type(obj).__name__}, not a table of weights.")
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{name} contains no weights.")
    return tensors
