"""Build the CLIP text tower from a TextEncoderConfig and a state dict, without a model hub.

The network is created on the meta device and the checkpoint tensors are assigned
into it, so the weights are never allocated twice (CLIP-L is ~500 MB in fp32).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from transformers import CLIPTextConfig, CLIPTextModel

from sd_desktop.engine.errors import CheckpointError
from sd_desktop.engine.networks.config import TextEncoderConfig

# Older transformers nest the tower under `text_model`; checkpoints may or may not.
PREFIX = "text_model."
_IGNORED_SUFFIX = "position_ids"


def clip_text_config(config: TextEncoderConfig) -> CLIPTextConfig:
    """transformers' description of the tower; SDPA attention, nothing fetched."""
    return CLIPTextConfig(**config.clip_config_kwargs(), attn_implementation="sdpa")


def text_transformer(model: CLIPTextModel) -> torch.nn.Module:
    """The module holding embeddings/encoder/final_layer_norm, across transformers versions."""
    return getattr(model, "text_model", model)


def load_text_model(
    config: TextEncoderConfig,
    state_dict: Mapping[str, torch.Tensor],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> CLIPTextModel:
    """A ready-to-run CLIPTextModel (eval, no grad) holding the given weights.

    Keys use Hugging Face naming with or without the `text_model.` prefix;
    `position_ids` entries are ignored (some merged checkpoints carry corrupted
    ones) and rebuilt. Tensors already on `device` in `dtype` are used as is.
    """
    device = torch.device(device)
    with torch.device("meta"):
        model = CLIPTextModel(clip_text_config(config))

    expected = {_bare(k): (k, v.shape) for k, v in model.state_dict().items() if _wanted(k)}
    given: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        if _wanted(key):
            given[_bare(key)] = tensor

    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    if missing or unexpected:
        detail = []
        if missing:
            detail.append(f"missing {_few(missing)}")
        if unexpected:
            detail.append(f"unexpected {_few(unexpected)}")
        raise CheckpointError(f"The text encoder weights do not fit CLIP: {'; '.join(detail)}.")

    ready: dict[str, torch.Tensor] = {}
    for bare, (model_key, shape) in expected.items():
        tensor = given[bare]
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            raise CheckpointError(f"Text encoder tensor '{bare}' is not a floating-point tensor.")
        if tensor.shape != shape:
            raise CheckpointError(
                f"Text encoder tensor '{bare}' has shape {tuple(tensor.shape)}, "
                f"expected {tuple(shape)}."
            )
        ready[model_key] = tensor.to(device=device, dtype=dtype)

    model.load_state_dict(ready, strict=False, assign=True)
    embeddings = text_transformer(model).embeddings
    positions = torch.arange(config.max_position_embeddings, device=device).expand((1, -1))
    embeddings.position_ids = positions
    leftovers = [n for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if leftovers:
        raise CheckpointError(f"The text encoder weights left {_few(leftovers)} unset.")
    model.eval()
    model.requires_grad_(False)
    return model


def _wanted(key: str) -> bool:
    return not key.endswith(_IGNORED_SUFFIX)


def _bare(key: str) -> str:
    return key.removeprefix(PREFIX)


def _few(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"
