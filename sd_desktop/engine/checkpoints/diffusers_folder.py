"""Finding the weights of a diffusers-format model folder.

Only the layout is handled here (which file holds which component, fp16
variants, sharded indexes); renaming the keys to the LDM layout is keymap's job.
Index files are untrusted too: their sizes are bounded and shard names must be
plain file names inside the component's folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, UnsupportedModelError
from .lazy_weights import TensorRef, pickle_refs, safetensors_refs

MODEL_INDEX = "model_index.json"
MAX_JSON_BYTES = 16 * 1024 * 1024

# component -> (folder, weights file stem for safetensors, stem for .bin pickles)
_LAYOUT: dict[str, tuple[str, str, str]] = {
    "unet": ("unet", "diffusion_pytorch_model", "diffusion_pytorch_model"),
    "vae": ("vae", "diffusion_pytorch_model", "diffusion_pytorch_model"),
    "text": ("text_encoder", "model", "pytorch_model"),
}
_LABELS = {"unet": "UNet", "vae": "VAE", "text": "text encoder"}


@dataclass(frozen=True)
class ComponentWeights:
    """The files of one component and its tensors under their diffusers names."""

    files: tuple[Path, ...]
    refs: dict[str, TensorRef]


def is_diffusers_folder(path: Path) -> bool:
    return path.is_dir() and (path / MODEL_INDEX).is_file()


def _read_json(path: Path, what: str) -> Any:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise CheckpointError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    if len(raw) > MAX_JSON_BYTES:
        raise CheckpointError(f"{what} is implausibly large; the model folder is damaged.")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{what} is not valid JSON; the model folder is damaged.") from exc


def read_model_index(folder: Path) -> dict[str, Any]:
    """The pipeline description; refuses folders that are not SD 1.x-like pipelines."""
    if not (folder / MODEL_INDEX).is_file():
        raise CheckpointError(
            f"{folder.name} is a folder but not a diffusers model (it has no {MODEL_INDEX})."
        )
    index = _read_json(folder / MODEL_INDEX, f"{folder.name}/{MODEL_INDEX}")
    if not isinstance(index, dict):
        raise CheckpointError(f"{folder.name}/{MODEL_INDEX} is not a table; the folder is damaged.")
    class_name = str(index.get("_class_name", ""))
    if "XL" in class_name or "text_encoder_2" in index or (folder / "text_encoder_2").is_dir():
        raise UnsupportedModelError(
            f"{folder.name} is an SDXL model: SDXL checkpoints are not supported yet."
        )
    return index


def _sharded_refs(index_path: Path, component_dir: Path) -> ComponentWeights:
    what = f"{component_dir.name}/{index_path.name}"
    index = _read_json(index_path, what)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{what} has no weight_map; the model folder is damaged.")
    shard_names: list[str] = []
    for shard in weight_map.values():
        # a hostile index must not point outside the component's folder
        if not isinstance(shard, str) or Path(shard).name != shard or shard.startswith("."):
            raise CheckpointError(f"{what} names an invalid shard file {shard!r}.")
        if shard not in shard_names:
            shard_names.append(shard)
    refs: dict[str, TensorRef] = {}
    files: list[Path] = []
    for shard in sorted(shard_names):
        shard_path = component_dir / shard
        if not shard_path.is_file():
            raise CheckpointError(f"{component_dir.name}/{shard} is missing (listed in {what}).")
        files.append(shard_path)
        for key, ref in safetensors_refs(shard_path).items():
            if key in refs:
                raise CheckpointError(f"Tensor '{key}' appears in two shards of {what}.")
            refs[key] = ref
    absent = [k for k in weight_map if k not in refs]
    if absent:
        raise CheckpointError(
            f"{what} lists {len(absent)} tensors its shards lack (e.g. '{absent[0]}'); "
            "the download is incomplete."
        )
    return ComponentWeights(tuple(files), refs)


def _component_weights(component_dir: Path, component: str) -> ComponentWeights | None:
    """The first weights found, preferring full precision, then fp16, then pickles."""
    _, stem, bin_stem = _LAYOUT[component]
    for variant in ("", ".fp16"):
        single = component_dir / f"{stem}{variant}.safetensors"
        if single.is_file():
            return ComponentWeights((single,), safetensors_refs(single))
        sharded = component_dir / f"{stem}.safetensors.index{variant}.json"
        if sharded.is_file():
            return _sharded_refs(sharded, component_dir)
    for variant in ("", ".fp16"):
        pickle_file = component_dir / f"{bin_stem}{variant}.bin"
        if pickle_file.is_file():
            return ComponentWeights((pickle_file,), pickle_refs(pickle_file))
    return None


def folder_weights(folder: Path) -> dict[str, ComponentWeights]:
    """Weights of the UNet, VAE and text encoder, by component name ("unet", "vae", "text")."""
    read_model_index(folder)
    found: dict[str, ComponentWeights] = {}
    missing: list[str] = []
    for component, (subdir, _, _) in _LAYOUT.items():
        weights = None
        if (folder / subdir).is_dir():
            weights = _component_weights(folder / subdir, component)
        if weights is None:
            missing.append(f"{_LABELS[component]} ({subdir}/)")
        else:
            found[component] = weights
    if missing:
        raise CheckpointError(
            f"{folder.name} is incomplete: no weights for its {' and '.join(missing)}."
        )
    return found
