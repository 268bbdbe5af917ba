"""Opening the checkpoint files users really have, without trusting them.

Three layouts reach the same place: a single LDM-layout .safetensors file, a
diffusers folder (converted to LDM keys through keymap), or a PyTorch pickle read
weights-only. Opening reads headers only; tensors are read later, one at a time,
by component_state_dict() + materialize(), so a model is never held twice.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import torch

from ..errors import CheckpointError, UnsupportedModelError
from ..networks.config import ModelConfig
from .detect import detect_model
from .diffusers_folder import ComponentWeights, folder_weights, is_diffusers_folder
from .keymap import (
    TEXT_PREFIX,
    UNET_PREFIX,
    VAE_IGNORED_PREFIX,
    VAE_PREFIX,
    diffusers_to_ldm_checkpoint,
)
from .lazy_weights import LazyStateDict, TensorRef, pickle_refs, safetensors_refs
from .pickle_checkpoint import PICKLE_SUFFIXES, check_pickle_file

Format = Literal["safetensors", "diffusers", "pickle"]
Component = Literal["unet", "vae", "text"]

TEXT_MODEL_PREFIX = TEXT_PREFIX + "text_model."
# Where each component's keys start in the LDM layout; text keys are handed out
# relative to the CLIP transformer ("embeddings.*"), as keymap.split_ldm_checkpoint does.
COMPONENT_PREFIXES: dict[str, str] = {
    "unet": UNET_PREFIX,
    "vae": VAE_PREFIX,
    "text": TEXT_MODEL_PREFIX,
}
SHORT_HASH_LENGTH = 10
_FORMAT_NAMES = {"safetensors": "safetensors", "diffusers": "diffusers folder", "pickle": "pickle"}


_VAE_ATTN_PROJECTION = re.compile(
    re.escape(VAE_PREFIX) + r"(encoder|decoder)\.mid\.attn_1\.(q|k|v|proj_out)\.weight$"
)


def canonical_key(key: str) -> str:
    """LDM text-encoder keys always with the 'text_model.' level older files lack."""
    if key.startswith(TEXT_PREFIX) and not key.startswith(TEXT_MODEL_PREFIX):
        return TEXT_MODEL_PREFIX + key[len(TEXT_PREFIX) :]
    return key


def _canonical(refs: Mapping[str, TensorRef]) -> dict[str, TensorRef]:
    """One spelling per weight, whatever the file's vintage.

    Text keys get 'text_model.'; VAE attention projections stored as Linear
    [C, C] (some converted files) are handed out as the 1x1 conv [C, C, 1, 1].
    """
    out: dict[str, TensorRef] = {}
    for key, ref in refs.items():
        name = canonical_key(key)
        if name in out:
            raise CheckpointError(
                f"{ref.path.name} has the text encoder weight '{name}' twice "
                "(with and without 'text_model.')."
            )
        if len(ref.shape) == 2 and _VAE_ATTN_PROJECTION.match(name):
            ref = replace(ref, shape=(*ref.shape, 1, 1))
        out[name] = ref
    return out


def _trace_diffusers(parts: dict[str, ComponentWeights], folder: Path) -> dict[str, TensorRef]:
    """LDM key -> where its tensor lies, by running keymap on shape-only tensors.

    keymap renames and, for some VAE weights, reshapes; running it on meta tensors
    and following each result back to the tensor it came from gives the mapping
    without reading any weights. Anything but a pure rename or reshape is refused.
    """
    origin: dict[int, TensorRef] = {}
    keep_alive: list[torch.Tensor] = []

    def shadows(weights: ComponentWeights) -> dict[str, torch.Tensor]:
        out = {}
        for key, ref in weights.refs.items():
            t = torch.empty(ref.shape, dtype=ref.dtype, device="meta")
            origin[id(t)] = ref
            keep_alive.append(t)
            out[key] = t
        return out

    try:
        converted = diffusers_to_ldm_checkpoint(
            shadows(parts["unet"]), shadows(parts["vae"]), shadows(parts["text"])
        )
    except CheckpointError as exc:
        raise type(exc)(f"{folder.name}: {exc}") from exc
    except (ValueError, KeyError, IndexError, RuntimeError) as exc:
        raise CheckpointError(
            f"{folder.name}: its weights do not follow the SD 1.x diffusers layout ({exc})."
        ) from exc
    refs: dict[str, TensorRef] = {}
    for key, tensor in converted.items():
        base = tensor if id(tensor) in origin else tensor._base
        ref = origin.get(id(base)) if base is not None else None
        plain_reshape = (
            ref is not None
            and tensor.is_contiguous()
            and tensor.storage_offset() == 0
            and tensor.numel() == ref.numel
        )
        if not plain_reshape:
            raise CheckpointError(
                f"{folder.name}: cannot map the diffusers weight behind '{key}' to a stored tensor."
            )
        refs[key] = replace(ref, shape=tuple(tensor.shape))
    return _canonical(refs)


def _majority_dtype(refs: Mapping[str, TensorRef]) -> torch.dtype | None:
    """The floating dtype holding most of the weights (by element count)."""
    counts: Counter[torch.dtype] = Counter()
    for key, ref in refs.items():
        if ref.dtype.is_floating_point and key.startswith(tuple(COMPONENT_PREFIXES.values())):
            counts[ref.dtype] += ref.numel
    if not counts:
        for ref in refs.values():
            if ref.dtype.is_floating_point:
                counts[ref.dtype] += ref.numel
    return counts.most_common(1)[0][0] if counts else None


@dataclass(frozen=True)
class _Layout:
    """What opening a path found, before the architecture is known."""

    path: Path
    format: Format
    refs: dict[str, TensorRef]
    files: tuple[Path, ...]  # every weights file read
    hashed: tuple[Path, ...]  # the files the model hash covers

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


def _resolve(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"{path} does not exist.")
    return path


def _layout(path: Path, *, load_pickles: bool) -> _Layout:
    if path.is_dir():
        if not is_diffusers_folder(path):
            raise CheckpointError(
                f"{path.name} is a folder but not a diffusers model (it has no model_index.json)."
            )
        parts = folder_weights(path)
        refs = _trace_diffusers(parts, path)
        files = tuple(f for part in parts.values() for f in part.files)
        return _Layout(path, "diffusers", refs, files, parts["unet"].files)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return _Layout(path, "safetensors", _canonical(safetensors_refs(path)), (path,), (path,))
    if suffix in PICKLE_SUFFIXES:
        if not load_pickles:
            check_pickle_file(path)
            return _Layout(path, "pickle", {}, (path,), (path,))
        return _Layout(path, "pickle", _canonical(pickle_refs(path)), (path,), (path,))
    raise CheckpointError(
        f"{path.name} is not a checkpoint we can open: expected a .safetensors file, "
        "a .ckpt/.pt/.pth/.bin file or a diffusers model folder."
    )


class Checkpoint:
    """An opened checkpoint: names, shapes and dtypes known, no weights read yet.

    It holds paths and header data only (no open files or mappings), so it is
    cheap to keep around; tensors are read when component_state_dict() is used.
    """

    def __init__(self, layout: _Layout, config: ModelConfig) -> None:
        self.path = layout.path
        self.format: Format = layout.format
        self.config = config
        self._refs = layout.refs
        self._files = layout.files
        self._hashed = layout.hashed
        self.size_bytes = layout.size_bytes

    @property
    def name(self) -> str:
        """The file's stem or the folder's name, as shown in model lists and infotext."""
        return self.path.name if self.format == "diffusers" else self.path.stem

    @cached_property
    def shapes(self) -> Mapping[str, tuple[int, ...]]:
        """Full LDM key -> shape, text keys always with 'text_model.'; extra keys included."""
        return MappingProxyType({key: ref.shape for key, ref in self._refs.items()})

    @cached_property
    def dtype(self) -> torch.dtype:
        """The dtype most of the stored weights have (files can mix, e.g. fp32 VAE in fp16)."""
        return _majority_dtype(self._refs) or torch.float32

    def component_state_dict(self, component: Component) -> LazyStateDict:
        """The tensors of "unet", "vae" or "text", read lazily, without the component prefix.

        UNet and VAE keys fit the LDM modules; text keys are relative to the CLIP
        transformer ("embeddings.*", "encoder.*", "final_layer_norm.*"). EMA copies, VAE
        loss terms and other extra keys are left out.
        """
        if component not in COMPONENT_PREFIXES:
            raise ValueError(f"unknown component {component!r}; use unet, vae or text")
        prefix = COMPONENT_PREFIXES[component]
        return LazyStateDict(
            {
                k[len(prefix) :]: r
                for k, r in self._refs.items()
                if k.startswith(prefix) and not k.startswith(VAE_IGNORED_PREFIX)
            }
        )

    def sha256(self) -> str:
        """Hex sha256 of the file (for a folder: the UNet weights), computed once."""
        return self._sha256

    @cached_property
    def _sha256(self) -> str:
        return sha256_of_files(self._hashed)

    def short_hash(self) -> str:
        """A1111's "Model hash": the first 10 hex digits of the sha256."""
        return self.sha256()[:SHORT_HASH_LENGTH]

    def describe(self) -> CheckpointInfo:
        return CheckpointInfo(
            name=self.name,
            path=self.path,
            format=self.format,
            size_bytes=self.size_bytes,
            dtype=self.dtype,
            family=self.config.family_name,
            supported=True,
        )

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.path)!r}, {self.format}, {self.config.family_name})"


def sha256_of_files(files: tuple[Path, ...] | list[Path]) -> str:
    """sha256 over the files' bytes in order, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    for file in files:
        try:
            with open(file, "rb", buffering=0) as f:
                while n := f.readinto(buffer):
                    digest.update(view[:n])
        except OSError as exc:
            raise CheckpointError(f"Cannot read {file}: {exc.strerror or exc}.") from exc
    return digest.hexdigest()


def _detect(layout: _Layout) -> ModelConfig:
    """detect_model on the shapes; its own errors pass through, anything else is wrapped."""
    shapes = {key: ref.shape for key, ref in layout.refs.items()}
    try:
        return detect_model(shapes)
    except CheckpointError as exc:
        raise type(exc)(f"{layout.path.name}: {exc}") from exc


def open_checkpoint(path: str | Path) -> Checkpoint:
    """Open a .safetensors file, a diffusers folder or a weights-only pickle.

    Reads headers only (pickles are memory-mapped, not read). Raises CheckpointError
    (UnsupportedModelError for SDXL, SD 2.x, ...) with a one-line message for
    anything that is not a usable SD 1.x checkpoint.
    """
    layout = _layout(_resolve(path), load_pickles=True)
    return Checkpoint(layout, _detect(layout))


@dataclass(frozen=True)
class CheckpointInfo:
    """What a model list shows about a file, from its headers alone."""

    name: str
    path: Path
    format: Format
    size_bytes: int
    dtype: torch.dtype | None  # None when unknown (pickles are not opened)
    family: str  # "SD 1.x", "SD 1.x inpainting", or why it cannot be used
    supported: bool | None  # None: unknown until loaded (pickles)

    @property
    def summary(self) -> str:
        gigabytes = self.size_bytes / 1e9
        size = f"{gigabytes:.2f} GB" if gigabytes >= 0.1 else f"{self.size_bytes / 1e6:.1f} MB"
        dtype = str(self.dtype).removeprefix("torch.") if self.dtype is not None else ""
        parts = [self.family, " ".join(p for p in (_FORMAT_NAMES[self.format], dtype) if p), size]
        return " · ".join(parts)


def describe(path: str | Path) -> CheckpointInfo:
    """Family, format, dtype and size of a checkpoint, reading headers only.

    Unsupported architectures are described (supported=False, family = the reason)
    rather than raised; damaged files raise CheckpointError. Pickles are not
    opened at all: they are reported as needing conversion.
    """
    path = _resolve(path)
    name = path.name if path.is_dir() else path.stem
    try:
        layout = _layout(path, load_pickles=False)
    except UnsupportedModelError as exc:  # recognised from a folder's model_index.json
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        return CheckpointInfo(name, path, "diffusers", size, None, str(exc), False)
    if layout.format == "pickle":
        return CheckpointInfo(
            name=name,
            path=path,
            format="pickle",
            size_bytes=layout.size_bytes,
            dtype=None,
            family="PyTorch pickle: not inspected; convert it to .safetensors",
            supported=None,
        )
    dtype = _majority_dtype(layout.refs)
    try:
        family, supported = _detect(layout).family_name, True
    except UnsupportedModelError as exc:
        family, supported = str(exc), False
    return CheckpointInfo(name, path, layout.format, layout.size_bytes, dtype, family, supported)
