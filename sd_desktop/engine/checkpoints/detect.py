"""Work out a checkpoint's architecture from its tensor shapes alone.

Single files carry no config, so everything (widths, depths, attention levels,
inpainting inputs, CLIP size) is read off the shapes of LDM-layout keys. Other
model families are recognised only to refuse them with a message that says
what the file is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

import torch

from sd_desktop.engine.checkpoints.keymap import (
    TEXT_PREFIX,
    UNET_PREFIX,
    VAE_IGNORED_PREFIX,
    VAE_PREFIX,
    text_key_prefix,
)
from sd_desktop.engine.errors import CheckpointError, UnsupportedModelError
from sd_desktop.engine.networks.config import (
    ModelConfig,
    TextEncoderConfig,
    UNetConfig,
    VAEConfig,
    clip_heads_for_width,
)

Shapes = Mapping[str, tuple[int, ...]]

_SUPPORTED = "only Stable Diffusion 1.x checkpoints can be loaded"


def _indices(keys: Iterable[str], prefix: str) -> list[int]:
    """Sorted distinct N of keys that start with prefix + 'N.'."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for k in keys if (m := pattern.match(k))}
    return sorted(found)


def _need(shapes: Shapes, key: str, what: str) -> tuple[int, ...]:
    shape = shapes.get(key)
    if shape is None:
        raise CheckpointError(f"The checkpoint's {what} is incomplete: '{key}' is missing")
    return tuple(shape)


def _cross_attention_width(shapes: Shapes) -> int | None:
    for key, shape in shapes.items():
        if key.startswith(UNET_PREFIX) and key.endswith("attn2.to_k.weight") and len(shape) == 2:
            return int(shape[1])
    return None


def _reject_other_families(shapes: Shapes) -> None:
    keys = shapes.keys()
    context = _cross_attention_width(shapes)
    if any(k.startswith("conditioner.embedders.") for k in keys):
        raise UnsupportedModelError(
            "SDXL checkpoints are not supported yet (found SDXL text encoders, "
            f"conditioner.embedders.*); {_SUPPORTED}"
        )
    if any(k.startswith(UNET_PREFIX + "label_emb.") for k in keys) or context == 2048:
        raise UnsupportedModelError(
            f"SDXL checkpoints are not supported yet (found an SDXL UNet with size "
            f"conditioning, text width {context}); {_SUPPORTED}"
        )
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        raise UnsupportedModelError(
            "SD 2.x checkpoints are not supported yet (found an OpenCLIP text encoder, "
            f"cond_stage_model.model.*); {_SUPPORTED}"
        )
    if context == 1024:
        raise UnsupportedModelError(
            f"SD 2.x checkpoints are not supported yet (found a UNet with 1024-wide text "
            f"conditioning); {_SUPPORTED}"
        )
    if any(k.startswith(UNET_PREFIX) for k in keys):
        return
    if any(k.startswith("lora_") or ".lora_" in k or ".lora_A." in k for k in keys):
        raise UnsupportedModelError(
            "This is a LoRA file, not a full model; LoRAs are not supported yet"
        )
    if "encoder.conv_in.weight" in keys and "decoder.conv_in.weight" in keys:
        raise UnsupportedModelError(
            "This is a standalone VAE file, not a full model; load a full SD 1.x checkpoint"
        )
    if any(k.startswith(("down_blocks.", "unet.", "mid_block.")) for k in keys):
        raise UnsupportedModelError(
            "This file uses diffusers key names; open the diffusers model folder instead"
        )
    raise CheckpointError(
        "The checkpoint has no UNet weights (model.diffusion_model.*); "
        "it is not a Stable Diffusion model"
    )


def _detect_unet(shapes: Shapes) -> UNetConfig:
    p = UNET_PREFIX
    keys = [k for k in shapes if k.startswith(p)]
    if p + "input_blocks.0.0.weight" not in shapes:
        families = sorted({k[len(p) :].split(".")[0] for k in keys})[:5]
        raise UnsupportedModelError(
            "Unrecognised model architecture: the UNet has no input_blocks "
            f"(found {', '.join(families)}); {_SUPPORTED}"
        )
    model_channels, in_channels = _need(shapes, p + "input_blocks.0.0.weight", "UNet")[:2]
    if in_channels not in (4, 9):
        hint = " (an InstructPix2Pix-style model)" if in_channels == 8 else ""
        raise UnsupportedModelError(
            f"This UNet takes {in_channels} input channels{hint}; SD 1.x models take 4, "
            "or 9 for inpainting"
        )
    out_channels = _need(shapes, p + "out.2.weight", "UNet")[0]

    proj_in = shapes.get(p + "middle_block.1.proj_in.weight")
    attn_k = shapes.get(p + "middle_block.1.transformer_blocks.0.attn2.to_k.weight")
    if proj_in is None or attn_k is None:
        raise UnsupportedModelError(
            f"Unrecognised UNet: its middle block has no cross-attention; {_SUPPORTED}"
        )
    if len(proj_in) == 2:
        raise UnsupportedModelError(
            "This UNet uses linear attention projections (an SD 2.x trait), "
            f"with {attn_k[1]}-wide text conditioning; {_SUPPORTED}"
        )
    context_dim = int(attn_k[1])
    depth = len(_indices(keys, p + "middle_block.1.transformer_blocks."))

    level_channels: list[int] = []
    res_counts: list[int] = [0]
    attention_levels: list[int] = []
    for i in _indices(keys, p + "input_blocks."):
        if i == 0:
            continue
        base = f"{p}input_blocks.{i}."
        if base + "0.op.weight" in shapes:
            res_counts.append(0)
            continue
        level = len(res_counts) - 1
        channels = _need(shapes, base + "0.out_layers.3.weight", "UNet")[0]
        if res_counts[level] == 0:
            level_channels.append(channels)
        elif channels != level_channels[level]:
            raise UnsupportedModelError(
                f"Unrecognised UNet: channel count changes inside level {level}; {_SUPPORTED}"
            )
        res_counts[level] += 1
        if base + "1.proj_in.weight" in shapes:
            if level not in attention_levels:
                attention_levels.append(level)
            block_depth = len(_indices(keys, base + "1.transformer_blocks."))
            if block_depth != depth:
                raise UnsupportedModelError(
                    f"Unrecognised UNet: transformer depth {block_depth} at level {level} but "
                    f"{depth} in the middle block; {_SUPPORTED}"
                )

    if len(set(res_counts)) != 1 or res_counts[0] == 0 or len(level_channels) != len(res_counts):
        raise UnsupportedModelError(
            f"Unrecognised UNet: residual blocks per level {res_counts}; {_SUPPORTED}"
        )
    if any(c % model_channels for c in level_channels):
        raise UnsupportedModelError(
            f"Unrecognised UNet: level widths {level_channels} are not multiples of "
            f"{model_channels}; {_SUPPORTED}"
        )
    return UNetConfig(
        in_channels=int(in_channels),
        out_channels=int(out_channels),
        model_channels=int(model_channels),
        channel_mult=tuple(c // model_channels for c in level_channels),
        num_res_blocks=res_counts[0],
        attention_levels=tuple(attention_levels),
        context_dim=context_dim,
        transformer_depth=depth,
    )


def _detect_vae(shapes: Shapes) -> VAEConfig:
    p = VAE_PREFIX
    if p + "encoder.conv_in.weight" not in shapes:
        raise CheckpointError("The checkpoint has no VAE weights (first_stage_model.*)")
    base, in_channels = _need(shapes, p + "encoder.conv_in.weight", "VAE")[:2]
    keys = [k for k in shapes if k.startswith(p)]
    levels = _indices(keys, p + "encoder.down.")
    if levels != list(range(len(levels))) or not levels:
        raise CheckpointError(f"The checkpoint's VAE is incomplete: encoder levels {levels}")
    widths = [_need(shapes, f"{p}encoder.down.{i}.block.0.conv1.weight", "VAE")[0] for i in levels]
    if any(w % base for w in widths):
        raise UnsupportedModelError(f"Unrecognised VAE: level widths {widths}; {_SUPPORTED}")
    return VAEConfig(
        in_channels=int(in_channels),
        out_channels=int(_need(shapes, p + "decoder.conv_out.weight", "VAE")[0]),
        latent_channels=int(_need(shapes, p + "post_quant_conv.weight", "VAE")[0]),
        base_channels=int(base),
        channel_mult=tuple(int(w // base) for w in widths),
        num_res_blocks=len(_indices(keys, p + "encoder.down.0.block.")),
    )


def _detect_text(shapes: Shapes) -> TextEncoderConfig:
    prefix = text_key_prefix(shapes)
    if prefix is None:
        if any(k.startswith("cond_stage_model.") for k in shapes):
            raise UnsupportedModelError(
                f"Unrecognised text encoder (cond_stage_model.* is not CLIP); {_SUPPORTED}"
            )
        raise CheckpointError(
            "The checkpoint has no text encoder weights (cond_stage_model.transformer.*)"
        )
    vocab, hidden = _need(shapes, prefix + "embeddings.token_embedding.weight", "text encoder")
    positions = _need(shapes, prefix + "embeddings.position_embedding.weight", "text encoder")[0]
    layers = _indices(shapes.keys(), prefix + "encoder.layers.")
    fc1 = _need(shapes, prefix + "encoder.layers.0.mlp.fc1.weight", "text encoder")
    return TextEncoderConfig(
        hidden_size=int(hidden),
        num_layers=len(layers),
        num_heads=clip_heads_for_width(int(hidden)),
        intermediate_size=int(fc1[0]),
        vocab_size=int(vocab),
        max_position_embeddings=int(positions),
    )


def _module_shapes(module: torch.nn.Module, prefix: str) -> dict[str, tuple[int, ...]]:
    return {prefix + k: tuple(v.shape) for k, v in module.state_dict().items()}


def expected_text_shapes(cfg: TextEncoderConfig, prefix: str) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of a CLIP text transformer, keys relative to its text_model level."""
    h, i = cfg.hidden_size, cfg.intermediate_size
    out: dict[str, tuple[int, ...]] = {
        prefix + "embeddings.token_embedding.weight": (cfg.vocab_size, h),
        prefix + "embeddings.position_embedding.weight": (cfg.max_position_embeddings, h),
        prefix + "final_layer_norm.weight": (h,),
        prefix + "final_layer_norm.bias": (h,),
    }
    for n in range(cfg.num_layers):
        layer = f"{prefix}encoder.layers.{n}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out[f"{layer}self_attn.{proj}.weight"] = (h, h)
            out[f"{layer}self_attn.{proj}.bias"] = (h,)
        for norm in ("layer_norm1", "layer_norm2"):
            out[f"{layer}{norm}.weight"] = (h,)
            out[f"{layer}{norm}.bias"] = (h,)
        out[f"{layer}mlp.fc1.weight"] = (i, h)
        out[f"{layer}mlp.fc1.bias"] = (i,)
        out[f"{layer}mlp.fc2.weight"] = (h, i)
        out[f"{layer}mlp.fc2.bias"] = (h,)
    return out


def _compare(
    shapes: Shapes,
    expected: Mapping[str, tuple[int, ...]],
    prefix: str,
    what: str,
    ignore: tuple[str, ...] = (),
) -> None:
    for key, want in expected.items():
        got = shapes.get(key)
        if got is None:
            missing = sum(1 for k in expected if k not in shapes)
            raise CheckpointError(
                f"The checkpoint's {what} is incomplete: '{key}' is missing "
                f"({missing} weights missing in all)"
            )
        got = tuple(got)
        # LDM files sometimes keep the VAE attention projections as Linear [C, C].
        if got != want and not (len(want) == 4 and want[2:] == (1, 1) and got == want[:2]):
            raise CheckpointError(
                f"The checkpoint's {what} does not fit an SD 1.x model: '{key}' has shape "
                f"{list(got)}, expected {list(want)}"
            )
    for key in shapes:
        if key.startswith(prefix) and key not in expected and not key.startswith(ignore):
            raise UnsupportedModelError(f"Unrecognised {what} weight '{key}'; {_SUPPORTED}")


def verify_shapes(shapes: Shapes, cfg: ModelConfig) -> None:
    """Raise CheckpointError unless every weight of the three networks is present with the
    right shape, so loading afterwards cannot fail half way."""
    from sd_desktop.engine.networks.unet import UNetModel
    from sd_desktop.engine.networks.vae import AutoencoderKL

    with torch.device("meta"):
        unet = UNetModel(cfg.unet)
        vae = AutoencoderKL(cfg.vae)
    _compare(shapes, _module_shapes(unet, UNET_PREFIX), UNET_PREFIX, "UNet")
    _compare(shapes, _module_shapes(vae, VAE_PREFIX), VAE_PREFIX, "VAE", (VAE_IGNORED_PREFIX,))
    text_prefix = text_key_prefix(shapes) or TEXT_PREFIX
    _compare(
        shapes,
        expected_text_shapes(cfg.text, text_prefix),
        text_prefix,
        "text encoder",
        (text_prefix + "embeddings.position_ids",),
    )


def detect_model(shapes: Shapes) -> ModelConfig:
    """The architecture of an LDM-layout checkpoint, given every key's shape (prefixes included).

    Raises UnsupportedModelError for other families (SDXL, SD 2.x, ...) and
    CheckpointError for incomplete or inconsistent files.
    """
    shapes = {k: tuple(v) for k, v in shapes.items()}
    _reject_other_families(shapes)
    unet = _detect_unet(shapes)
    vae = _detect_vae(shapes)
    text = _detect_text(shapes)
    if text.hidden_size != unet.context_dim:
        raise CheckpointError(
            f"The checkpoint's text encoder is {text.hidden_size} wide but its UNet expects "
            f"{unet.context_dim}-wide text embeddings"
        )
    if unet.out_channels != vae.latent_channels:
        raise CheckpointError(
            f"The checkpoint's UNet predicts {unet.out_channels} channels but its VAE uses "
            f"{vae.latent_channels}-channel latents"
        )
    for width in (unet.model_channels * m for m in unet.channel_mult):
        if width % unet.num_heads or width % unet.norm_groups:
            raise UnsupportedModelError(
                f"Unrecognised UNet: width {width} does not split into {unet.num_heads} heads "
                f"and {unet.norm_groups} norm groups; {_SUPPORTED}"
            )
    for width in (vae.base_channels * m for m in vae.channel_mult):
        if width % vae.norm_groups:
            raise UnsupportedModelError(
                f"Unrecognised VAE: width {width} does not split into {vae.norm_groups} norm "
                f"groups; {_SUPPORTED}"
            )
    family = "sd1-inpaint" if unet.in_channels == 9 else "sd1"
    cfg = ModelConfig(family=family, unet=unet, vae=vae, text=text)
    verify_shapes(shapes, cfg)
    return cfg


def count_parameters(shapes: Shapes, prefix: str = "") -> int:
    """Number of weights under prefix (buffers such as position_ids excluded)."""
    return sum(
        math.prod(shape)
        for key, shape in shapes.items()
        if key.startswith(prefix) and not key.endswith("position_ids")
    )


def shapes_of(state_dict: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """Key -> shape mapping of a state dict (works for meta tensors too)."""
    return {k: tuple(v.shape) for k, v in state_dict.items()}
