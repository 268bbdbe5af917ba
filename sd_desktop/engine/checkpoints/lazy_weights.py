"""Weights that are read one tensor at a time, and turned into the run dtype once.

The point is memory: a model loaded the naive way sits in RAM twice (the file's
tensors plus the module's own parameters). Here a state dict is a mapping whose
values are read from disk only when asked for; materialize() converts each one
to the run dtype and device as soon as it is read, and the module then adopts
those tensors with load_state_dict(assign=True) instead of copying them. Peak
memory is the finished model plus one tensor in flight.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CheckpointError
from .pickle_checkpoint import load_pickle_tensors
from .safetensors_header import TensorEntry, read_header, read_tensor


@dataclass(frozen=True)
class TensorRef:
    """Where to find one tensor: its file, its name there, and how it is handed out.

    `shape` may differ from the stored shape by a plain reshape (diffusers keeps
    some VAE attention weights as Linear, LDM as 1x1 conv); `entry` locates the
    bytes in a .safetensors file and is None for pickles.
    """

    path: Path
    key: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    entry: TensorEntry | None = None

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def safetensors_refs(path: Path) -> dict[str, TensorRef]:
    """Refs for every tensor of a .safetensors file, from its validated header alone."""
    header = read_header(path)
    return {
        key: TensorRef(header.path, key, e.dtype, e.shape, e) for key, e in header.tensors.items()
    }


def pickle_refs(path: Path) -> dict[str, TensorRef]:
    """Refs for a pickle checkpoint; its tensors are mapped, not read, and let go at once."""
    tensors = load_pickle_tensors(path)
    return {k: TensorRef(Path(path), k, t.dtype, tuple(t.shape)) for k, t in tensors.items()}


class LazyStateDict(Mapping[str, torch.Tensor]):
    """A read-only state dict whose tensors are read from disk on access.

    Nothing is cached for .safetensors sources: each access reads fresh memory the
    caller owns, so a tensor lives only as long as the caller keeps it. Pickle
    sources are memory-mapped whole on first access and kept mapped while this
    object lives.
    """

    def __init__(self, refs: Mapping[str, TensorRef]) -> None:
        self._refs = dict(refs)
        self._pickles: dict[Path, dict[str, torch.Tensor]] = {}

    def __getitem__(self, key: str) -> torch.Tensor:
        ref = self._refs[key]
        if ref.entry is not None:
            tensor = read_tensor(ref.path, ref.entry)
        else:
            tensors = self._pickles.get(ref.path)
            if tensors is None:
                tensors = self._pickles[ref.path] = load_pickle_tensors(ref.path)
            try:
                tensor = tensors[ref.key]
            except KeyError as exc:
                raise CheckpointError(
                    f"{ref.path.name} changed since it was opened ('{ref.key}' is gone)."
                ) from exc
        if tuple(tensor.shape) != ref.shape:
            tensor = tensor.reshape(ref.shape)
        return tensor

    def __iter__(self) -> Iterator[str]:
        return iter(self._refs)

    def __len__(self) -> int:
        return len(self._refs)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: r.shape for k, r in self._refs.items()}

    @property
    def file_backed(self) -> bool:
        """True when values may be views of a memory-mapped file rather than fresh memory."""
        return any(r.entry is None for r in self._refs.values())

    def release(self) -> None:
        """Unmap any pickle files (the tensors already handed out keep their own mapping)."""
        self._pickles.clear()


def materialize(
    state_dict: Mapping[str, torch.Tensor],
    dtype: torch.dtype,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """Every tensor in `dtype` on `device`, converted one at a time as it is read.

    Floating-point tensors take `dtype`; integer buffers keep theirs. The result
    never shares memory with a memory-mapped file, so the model survives the file
    being replaced or deleted. Use the result with
    `module.load_state_dict(result, assign=True)` on a module built on the meta
    device, so the module adopts these tensors instead of copying them.
    """
    device = torch.device(device)
    force_copy = getattr(state_dict, "file_backed", False)
    out: dict[str, torch.Tensor] = {}
    for key in state_dict:
        tensor = state_dict[key]
        target = dtype if tensor.is_floating_point() else tensor.dtype
        out[key] = tensor.to(device=device, dtype=target, copy=force_copy)
        del tensor
    if isinstance(state_dict, LazyStateDict):
        state_dict.release()
    return out


def load_weights(
    module: torch.nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    dtype: torch.dtype,
    device: torch.device | str = "cpu",
    *,
    what: str = "model",
) -> None:
    """Fill `module` (ideally built on the meta device) with `state_dict`, adopting tensors.

    Missing or unexpected keys and shape mismatches mean the file does not fit the
    architecture we built from it; they become one-line CheckpointErrors.
    """
    weights = materialize(state_dict, dtype, device)
    try:
        result = module.load_state_dict(weights, strict=False, assign=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = next(
            (ln.strip() for ln in first if "size mismatch" in ln), first[0] if first else ""
        )
        raise CheckpointError(f"The {what} weights do not fit the model: {detail}") from exc
    problems = []
    if result.missing_keys:
        problems.append(f"{len(result.missing_keys)} missing (e.g. {result.missing_keys[0]})")
    if result.unexpected_keys:
        problems.append(
            f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[0]})"
        )
    if problems:
        raise CheckpointError(f"The {what} weights do not fit the model: {'; '.join(problems)}.")
    unset = [n for n, t in (*module.named_parameters(), *module.named_buffers()) if t.is_meta]
    if unset:
        # a buffer the file does not carry (non-persistent) must be rebuilt by the caller
        raise CheckpointError(
            f"Loading the {what} left {len(unset)} tensors unset (e.g. {unset[0]})."
        )
