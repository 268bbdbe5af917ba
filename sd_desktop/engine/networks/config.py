"""Architecture descriptions of the three networks of a Stable Diffusion 1.x model.

They are read from a checkpoint's tensor shapes (see detect.py), never from
side files, so a bare .safetensors file is enough to rebuild the networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Family = Literal["sd1", "sd1-inpaint"]

_FAMILY_NAMES: dict[str, str] = {"sd1": "SD 1.x", "sd1-inpaint": "SD 1.x inpainting"}


@dataclass(frozen=True)
class UNetConfig:
    """The LDM "openaimodel" UNet as used by SD 1.x (the defaults are SD 1.5's)."""

    in_channels: int = 4  # 9 for inpainting: latent + mask + masked-image latent
    out_channels: int = 4
    model_channels: int = 320
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attention_levels: tuple[int, ...] = (0, 1, 2)
    context_dim: int = 768
    # SD 1.x fixes the head count, not the head width; shapes cannot tell it.
    num_heads: int = 8
    transformer_depth: int = 1
    norm_groups: int = 32

    @property
    def time_embed_dim(self) -> int:
        return self.model_channels * 4

    def level_channels(self, level: int) -> int:
        return self.model_channels * self.channel_mult[level]


@dataclass(frozen=True)
class VAEConfig:
    """The LDM AutoencoderKL (KL-f8 for SD 1.x; the defaults are SD 1.5's)."""

    in_channels: int = 3
    out_channels: int = 3
    latent_channels: int = 4
    base_channels: int = 128
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    scaling_factor: float = 0.18215
    norm_groups: int = 32

    @property
    def downscale(self) -> int:
        """How many pixels one latent cell covers along each side."""
        return 2 ** (len(self.channel_mult) - 1)


def clip_heads_for_width(hidden_size: int) -> int:
    """Attention heads for a CLIP text encoder of the given width.

    Shapes do not record the head count. Real CLIP text towers use 64-wide heads
    (CLIP-L: 768 -> 12). Widths that are not a multiple of 64 only occur in the
    tiny test models, which use 16-wide heads (32 -> 2, 48 -> 3); anything else
    falls back to a single head.
    """
    if hidden_size >= 64 and hidden_size % 64 == 0:
        return hidden_size // 64
    if hidden_size % 16 == 0:
        return hidden_size // 16
    return 1


@dataclass(frozen=True)
class TextEncoderConfig:
    """A CLIP text transformer (CLIP ViT-L/14's text tower for SD 1.x)."""

    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    vocab_size: int = 49408
    max_position_embeddings: int = 77
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    bos_token_id: int = 49406
    eos_token_id: int = 49407
    pad_token_id: int = 1

    def clip_config_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for transformers.CLIPTextConfig."""
        return {
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "max_position_embeddings": self.max_position_embeddings,
            "hidden_act": self.hidden_act,
            "layer_norm_eps": self.layer_norm_eps,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
        }

    def to_clip_config(self) -> Any:
        """A transformers.CLIPTextConfig (imported lazily: transformers is slow to import)."""
        from transformers import CLIPTextConfig

        return CLIPTextConfig(**self.clip_config_kwargs())


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build the networks of one checkpoint."""

    family: Family
    unet: UNetConfig
    vae: VAEConfig
    text: TextEncoderConfig

    @property
    def family_name(self) -> str:
        return _FAMILY_NAMES[self.family]

    @property
    def is_inpainting(self) -> bool:
        return self.family == "sd1-inpaint"
