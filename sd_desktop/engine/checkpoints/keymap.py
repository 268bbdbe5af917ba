"""Translate state-dict keys between the diffusers and the original LDM layouts.

Our networks use LDM names, so a diffusers folder is converted on load and a
single-file export is a conversion plus a save. Everything is derived from the
keys themselves (block counts, which up-blocks have attention), so no config
file is needed. Tensors are passed through untouched, except the VAE attention
projections, which diffusers keeps as Linear [C, C] and LDM as 1x1 conv [C, C, 1, 1].
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from sd_desktop.engine.errors import CheckpointError

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."
# VAE training leftovers (discriminator, logvar) some files still carry; never loaded.
VAE_IGNORED_PREFIX = VAE_PREFIX + "loss."

_UNET_RESNET_PARTS = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_UNET_TOP_LEVEL = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_VAE_ATTN_PARTS = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
    # names used by diffusers before 0.14
    "query": "q",
    "key": "k",
    "value": "v",
    "proj_attn": "proj_out",
}
_VAE_TOP_LEVEL = {
    "encoder.conv_norm_out": "encoder.norm_out",
    "decoder.conv_norm_out": "decoder.norm_out",
}
_VAE_UNCHANGED = ("encoder.conv_in.", "encoder.conv_out.", "decoder.conv_in.", "decoder.conv_out.")
_VAE_UNCHANGED += ("quant_conv.", "post_quant_conv.")

_BLOCK = re.compile(
    r"^(down_blocks|up_blocks)\.(\d+)\.(resnets|attentions|downsamplers|upsamplers)\.(\d+)\.(.+)$"
)
_MID = re.compile(r"^mid_block\.(resnets|attentions)\.(\d+)\.(.+)$")
_VAE_BLOCK = re.compile(
    r"^(encoder|decoder)\.(down_blocks|up_blocks)\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(.+)$"
)
_VAE_MID = re.compile(r"^(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)\.(.+)$")


def _split_param(rest: str) -> tuple[str, str]:
    """'conv1.weight' -> ('conv1', 'weight')."""
    module, _, param = rest.rpartition(".")
    return module, param


def _block_sizes(keys: list[str], pattern: re.Pattern[str], kind_group: int) -> dict[tuple, set]:
    """For each (…, block index, sub-list) the set of item indices present in the keys."""
    found: dict[tuple, set] = {}
    for key in keys:
        m = pattern.match(key)
        if m:
            groups = m.groups()
            found.setdefault(groups[: kind_group + 1], set()).add(int(groups[kind_group + 1]))
    return found


def _resnet_part(rest: str) -> str:
    module, param = _split_param(rest)
    if module not in _UNET_RESNET_PARTS:
        raise CheckpointError(f"Unexpected UNet resnet weight '{rest}' in a diffusers model")
    return f"{_UNET_RESNET_PARTS[module]}.{param}"


def unet_diffusers_to_ldm(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers UNet2DConditionModel keys -> LDM keys without the model.diffusion_model. prefix."""
    keys = list(sd)
    present = _block_sizes(keys, _BLOCK, 2)

    def count(kind: str, block: int, sub: str) -> int:
        items = present.get((kind, str(block), sub), set())
        return max(items) + 1 if items else 0

    def n_blocks(kind: str) -> int:
        return 1 + max((int(b) for (k, b, _s) in present if k == kind), default=-1)

    # Where each diffusers (block, item) lands in the flat LDM lists.
    input_index: dict[tuple[int, int], int] = {}
    down_index: dict[int, int] = {}
    idx = 1  # input_blocks.0 is conv_in
    for block in range(n_blocks("down_blocks")):
        for item in range(count("down_blocks", block, "resnets")):
            input_index[block, item] = idx
            idx += 1
        if count("down_blocks", block, "downsamplers"):
            down_index[block] = idx
            idx += 1
    output_index: dict[tuple[int, int], int] = {}
    idx = 0
    for block in range(n_blocks("up_blocks")):
        for item in range(count("up_blocks", block, "resnets")):
            output_index[block, item] = idx
            idx += 1

    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        module, param = _split_param(key)
        if module in _UNET_TOP_LEVEL:
            out[f"{_UNET_TOP_LEVEL[module]}.{param}"] = value
            continue
        m = _BLOCK.match(key)
        if m:
            kind, block_s, sub, item_s, rest = m.groups()
            block, item = int(block_s), int(item_s)
            try:
                if kind == "down_blocks":
                    if sub == "resnets":
                        new = f"input_blocks.{input_index[block, item]}.0.{_resnet_part(rest)}"
                    elif sub == "attentions":
                        new = f"input_blocks.{input_index[block, item]}.1.{rest}"
                    elif sub == "downsamplers" and rest.startswith("conv."):
                        new = f"input_blocks.{down_index[block]}.0.op.{rest[len('conv.') :]}"
                    else:
                        raise KeyError(key)
                else:
                    if sub == "resnets":
                        new = f"output_blocks.{output_index[block, item]}.0.{_resnet_part(rest)}"
                    elif sub == "attentions":
                        new = f"output_blocks.{output_index[block, item]}.1.{rest}"
                    elif sub == "upsamplers":
                        last = count(kind, block, "resnets") - 1
                        slot = 2 if count(kind, block, "attentions") else 1
                        new = f"output_blocks.{output_index[block, last]}.{slot}.{rest}"
                    else:
                        raise KeyError(key)
            except KeyError:
                raise CheckpointError(
                    f"Unexpected UNet weight '{key}' in a diffusers model"
                ) from None
            out[new] = value
            continue
        m = _MID.match(key)
        if m:
            sub, item_s, rest = m.groups()
            if sub == "attentions":
                out[f"middle_block.1.{rest}"] = value
            else:
                out[f"middle_block.{2 * int(item_s)}.{_resnet_part(rest)}"] = value
            continue
        raise CheckpointError(f"Unexpected UNet weight '{key}' in a diffusers model")
    return out


def vae_diffusers_to_ldm(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers AutoencoderKL keys -> LDM keys without the first_stage_model. prefix."""
    n_up = 1 + max(
        (int(m.group(3)) for k in sd if (m := _VAE_BLOCK.match(k)) and m.group(2) == "up_blocks"),
        default=-1,
    )
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        module, param = _split_param(key)
        if module in _VAE_TOP_LEVEL:
            out[f"{_VAE_TOP_LEVEL[module]}.{param}"] = value
            continue
        if key.startswith(_VAE_UNCHANGED):
            out[key] = value
            continue
        m = _VAE_BLOCK.match(key)
        if m:
            part, kind, block_s, sub, item_s, rest = m.groups()
            # The decoder's up-blocks run deepest first; LDM numbers them by level.
            level = int(block_s) if kind == "down_blocks" else n_up - 1 - int(block_s)
            name = "down" if kind == "down_blocks" else "up"
            if sub == "resnets":
                rest = rest.replace("conv_shortcut.", "nin_shortcut.")
                out[f"{part}.{name}.{level}.block.{item_s}.{rest}"] = value
            else:
                sampler = "downsample" if sub == "downsamplers" else "upsample"
                out[f"{part}.{name}.{level}.{sampler}.{rest}"] = value
            continue
        m = _VAE_MID.match(key)
        if m:
            part, sub, item_s, rest = m.groups()
            if sub == "resnets":
                rest = rest.replace("conv_shortcut.", "nin_shortcut.")
                out[f"{part}.mid.block_{int(item_s) + 1}.{rest}"] = value
                continue
            attn_module, param = _split_param(rest)
            if attn_module not in _VAE_ATTN_PARTS:
                raise CheckpointError(f"Unexpected VAE weight '{key}' in a diffusers model")
            if param == "weight" and attn_module != "group_norm" and value.ndim == 2:
                value = value.reshape(*value.shape, 1, 1)
            out[f"{part}.mid.attn_1.{_VAE_ATTN_PARTS[attn_module]}.{param}"] = value
            continue
        raise CheckpointError(f"Unexpected VAE weight '{key}' in a diffusers model")
    return out


def text_diffusers_to_ldm(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers CLIPTextModel keys (with or without 'text_model.') -> 'text_model.*' keys.

    The result goes after cond_stage_model.transformer.; recent transformers drop
    the 'text_model.' segment from CLIPTextModel, but single files always have it.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.startswith("text_projection."):
            raise CheckpointError("This text encoder has a projection head; SD 1.x uses plain CLIP")
        out[key if key.startswith("text_model.") else f"text_model.{key}"] = value
    return out


def diffusers_to_ldm_checkpoint(
    unet_sd: Mapping[str, torch.Tensor],
    vae_sd: Mapping[str, torch.Tensor],
    text_sd: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """One LDM-layout state dict (as in an SD 1.x .safetensors) from the three diffusers parts."""
    out: dict[str, torch.Tensor] = {}
    for prefix, part in (
        (UNET_PREFIX, unet_diffusers_to_ldm(unet_sd)),
        (VAE_PREFIX, vae_diffusers_to_ldm(vae_sd)),
        (TEXT_PREFIX, text_diffusers_to_ldm(text_sd)),
    ):
        out.update({prefix + key: value for key, value in part.items()})
    return out


def text_key_prefix(keys: list[str] | Mapping[str, object]) -> str | None:
    """The prefix in front of 'embeddings.', 'encoder.', 'final_layer_norm.' in a single file.

    Older files lack the 'text_model.' segment. None when there is no CLIP text encoder.
    """
    for prefix in (TEXT_PREFIX + "text_model.", TEXT_PREFIX):
        if prefix + "embeddings.token_embedding.weight" in keys:
            return prefix
    return None


def split_ldm_checkpoint(
    sd: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(unet, vae, text) state dicts from a single file, prefixes removed.

    UNet and VAE keys fit UNetModel / AutoencoderKL; text keys are relative to the
    CLIP text transformer ('embeddings.*', 'encoder.*', 'final_layer_norm.*'),
    see text_keys_for to fit them to a given transformers module. Other keys
    (EMA copies, schedules, VAE loss terms) are dropped.
    """
    text_prefix = text_key_prefix(sd) or TEXT_PREFIX + "text_model."
    unet = {k[len(UNET_PREFIX) :]: v for k, v in sd.items() if k.startswith(UNET_PREFIX)}
    vae = {
        k[len(VAE_PREFIX) :]: v
        for k, v in sd.items()
        if k.startswith(VAE_PREFIX) and not k.startswith(VAE_IGNORED_PREFIX)
    }
    text = {k[len(text_prefix) :]: v for k, v in sd.items() if k.startswith(text_prefix)}
    return unet, vae, text


def text_keys_for(
    text_sd: Mapping[str, torch.Tensor], module: torch.nn.Module
) -> dict[str, torch.Tensor]:
    """Fit relative CLIP keys to a transformers CLIPTextModel, which has a 'text_model.'
    level in transformers < 5.6 and none since. Drops buffers the module does not keep
    (position_ids)."""
    wanted = set(module.state_dict().keys())
    nested = any(k.startswith("text_model.") for k in wanted)
    out: dict[str, torch.Tensor] = {}
    for key, value in text_sd.items():
        bare = key.removeprefix("text_model.")
        name = f"text_model.{bare}" if nested else bare
        if name in wanted:
            out[name] = value
        elif not bare.endswith("position_ids"):
            out[name] = value  # left for load_state_dict to report
    return out
