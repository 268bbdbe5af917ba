"""Reading .safetensors files ourselves, with every length checked before it is trusted.

A checkpoint is untrusted input: its first 8 bytes say how long the JSON header
is and the header says where each tensor lies. Both are checked against the real
file size before anything is allocated or read, so a hostile or half-downloaded
file gives a clear CheckpointError instead of a huge allocation, a crash (SIGBUS
from a mapping past the end of the file) or garbage weights.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError

# Real headers are a few hundred KB (SD 1.5 with EMA, SDXL: under 1 MB). The cap also
# bounds what json.loads may allocate for a hostile header (roughly 20x its size).
MAX_HEADER_BYTES = 32 * 1024 * 1024

# safetensors dtype names -> (torch dtype, bytes per element)
DTYPES: dict[str, tuple[torch.dtype, int]] = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "F8_E4M3": (torch.float8_e4m3fn, 1),
    "F8_E5M2": (torch.float8_e5m2, 1),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
}


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lies in its file; begin/end are absolute file offsets."""

    dtype: torch.dtype
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True)
class SafetensorsHeader:
    path: Path
    file_size: int
    tensors: dict[str, TensorEntry]
    metadata: dict[str, str]


def read_header(path: Path) -> SafetensorsHeader:
    """Parse and validate the header of `path`, reading only the header bytes."""
    path = Path(path)
    name = path.name
    try:
        with open(path, "rb") as f:
            file_size = os.fstat(f.fileno()).st_size
            if file_size == 0:
                raise CheckpointError(
                    f"{name} is empty (0 bytes): the download probably failed; download it again."
                )
            prefix = f.read(8)
            if len(prefix) < 8:
                raise CheckpointError(
                    f"{name} is not a valid .safetensors file: it is only {file_size} bytes long."
                )
            header_len = int.from_bytes(prefix, "little")
            if header_len > MAX_HEADER_BYTES:
                raise CheckpointError(_not_safetensors(name, prefix, header_len))
            if 8 + header_len > file_size:
                if f.read(1) == b"{":
                    raise CheckpointError(
                        f"{name} is truncated: its header alone needs {8 + header_len:,} bytes "
                        f"but the file has {file_size:,}; download it again."
                    )
                raise CheckpointError(_not_safetensors(name, prefix, header_len))
            raw = f.read(header_len)
    except CheckpointError:
        raise
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path} does not exist.") from exc
    except OSError as exc:
        raise CheckpointError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    if len(raw) != header_len:
        raise CheckpointError(f"{name} changed while it was being read; try again.")
    tensors, metadata = _parse_header_json(raw, name)
    data_start = 8 + header_len
    data_size = file_size - data_start
    entries: dict[str, TensorEntry] = {}
    for key, info in tensors.items():
        entries[key] = _check_entry(key, info, data_start, data_size, file_size, name)
    return SafetensorsHeader(path=path, file_size=file_size, tensors=entries, metadata=metadata)


def _not_safetensors(name: str, prefix: bytes, header_len: int) -> str:
    """Why the first 8 bytes cannot start a safetensors file, guessing what the file really is."""
    start = f"{name} is not a valid .safetensors file"
    if prefix[:1] in (b"{", b"["):
        return f"{start}: it holds JSON text (a config file renamed .safetensors?)."
    if prefix[:4] == b"PK\x03\x04":
        return f"{start}: it is a PyTorch checkpoint (zip) renamed .safetensors; rename it .ckpt."
    if header_len > MAX_HEADER_BYTES:
        return (
            f"{start}: its header claims {header_len:,} bytes, which no real checkpoint has "
            "(the file is damaged or is another kind of file)."
        )
    return f"{start}: its first bytes are not a safetensors header (damaged, or another format)."


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _parse_header_json(raw: bytes, name: str) -> tuple[dict[str, Any], dict[str, str]]:
    not_safetensors = f"{name} is not a valid .safetensors file (its header is not valid JSON)"
    if not raw.lstrip()[:1] == b"{":
        raise CheckpointError(
            f"{not_safetensors}: it may be another kind of file renamed .safetensors."
        )
    try:
        text = raw.decode("utf-8")
        header = json.loads(text, object_pairs_hook=_reject_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{not_safetensors}; the file is damaged.") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{not_safetensors}; the file is damaged.")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{name} is damaged: its __metadata__ is not a table of strings.")
    return header, metadata


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_entry(
    key: str, info: Any, data_start: int, data_size: int, file_size: int, name: str
) -> TensorEntry:
    damaged = f"{name} is damaged: the header entry for tensor '{key}'"
    if not isinstance(info, dict):
        raise CheckpointError(f"{damaged} is not a table.")
    dtype_name = info.get("dtype")
    shape = info.get("shape")
    offsets = info.get("data_offsets")
    if not isinstance(dtype_name, str):
        raise CheckpointError(f"{damaged} has no dtype.")
    if dtype_name not in DTYPES:
        raise CheckpointError(
            f"{name} uses tensor type {dtype_name!r} (tensor '{key}'), which is not supported."
        )
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise CheckpointError(f"{damaged} has an invalid shape.")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_int(o) and o >= 0 for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise CheckpointError(f"{damaged} has invalid data offsets.")
    dtype, itemsize = DTYPES[dtype_name]
    begin, end = offsets
    if end > data_size:
        raise CheckpointError(
            f"{name} is truncated: tensor '{key}' ends at byte {data_start + end:,} but the file "
            f"has only {file_size:,} bytes; the download probably did not finish; "
            "download it again."
        )
    expected = math.prod(shape) * itemsize
    if end - begin != expected:
        raise CheckpointError(
            f"{damaged} says {end - begin:,} bytes but shape {tuple(shape)} of {dtype_name} "
            f"needs {expected:,}."
        )
    return TensorEntry(dtype, tuple(shape), data_start + begin, data_start + end)


def read_tensor(path: Path, entry: TensorEntry) -> torch.Tensor:
    """One tensor read into fresh memory that the caller owns (not a view of the file).

    Bounded by the validated entry, so it never allocates more than the file holds.
    """
    if entry.nbytes == 0:
        return torch.empty(entry.shape, dtype=entry.dtype)
    buffer = bytearray(entry.nbytes)
    view = memoryview(buffer)
    got = 0
    try:
        with open(path, "rb", buffering=0) as f:
            f.seek(entry.begin)
            while got < entry.nbytes:
                n = f.readinto(view[got:])
                if not n:
                    break
                got += n
    except OSError as exc:
        raise CheckpointError(f"Cannot read {Path(path).name}: {exc.strerror or exc}.") from exc
    finally:
        view.release()
    if got != entry.nbytes:
        raise CheckpointError(
            f"{Path(path).name} ended early while reading it (was it changed or moved?)."
        )
    flat = torch.frombuffer(buffer, dtype=torch.uint8)
    return flat.view(entry.dtype).reshape(entry.shape)
