"""The SD 1.x denoising UNet in plain torch.

Attribute names follow the original LDM checkpoints (keys after
``model.diffusion_model.``), so a single-file checkpoint loads with a plain
``load_state_dict`` and no key translation. Everything runs in the dtype of the
input; only the sinusoidal timestep features are computed in float32 (their
arguments reach ~1000 radians, too coarse in half precision) and cast once.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sd_desktop.engine.networks.config import UNetConfig

_RES_NORM_EPS = 1e-5
_ATTN_NORM_EPS = 1e-6
_LAYER_NORM_EPS = 1e-5


def timestep_embedding(timesteps: torch.Tensor, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """Sinusoidal features of shape (B, dim), cosines first (SD 1.x's "flip_sin_to_cos")."""
    half = dim // 2
    exponent = -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=timesteps.device)
    freqs = torch.exp(exponent / half)
    args = timesteps.to(torch.float32)[:, None] * freqs[None, :]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb.to(dtype)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with the (already SiLU-activated) time embedding added between.

    The Sequential indices (in_layers.2, out_layers.3, emb_layers.1) are the LDM key
    names; out_layers.2 is the parameterless dropout slot.
    """

    def __init__(self, channels: int, emb_channels: int, out_channels: int, groups: int) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(
            nn.GroupNorm(groups, channels, eps=_RES_NORM_EPS),
            nn.SiLU(),
            nn.Conv2d(channels, out_channels, 3, padding=1),
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            nn.GroupNorm(groups, out_channels, eps=_RES_NORM_EPS),
            nn.SiLU(),
            nn.Identity(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        self.skip_connection: nn.Module = (
            nn.Identity() if channels == out_channels else nn.Conv2d(channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor, emb_act: torch.Tensor) -> torch.Tensor:
        # emb_act is SiLU(time embedding), shared by all blocks, so only the Linear runs here.
        h = self.in_layers(x)
        h = h + self.emb_layers[1](emb_act)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class Attention(nn.Module):
    """Multi-head attention; cross-attention when a context is given."""

    def __init__(self, query_dim: int, context_dim: int, heads: int) -> None:
        super().__init__()
        if query_dim % heads:
            raise ValueError(f"{query_dim} channels do not split into {heads} heads")
        self.heads = heads
        self.to_q = nn.Linear(query_dim, query_dim, bias=False)
        self.to_k = nn.Linear(context_dim, query_dim, bias=False)
        self.to_v = nn.Linear(context_dim, query_dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(query_dim, query_dim)])

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        source = x if context is None else context
        batch, length, channels = x.shape
        head_dim = channels // self.heads
        # (B, L, C) -> (B, heads, L, d): a view, which SDPA takes as is.
        q = self.to_q(x).view(batch, length, self.heads, head_dim).transpose(1, 2)
        k = self.to_k(source).view(batch, -1, self.heads, head_dim).transpose(1, 2)
        v = self.to_v(source).view(batch, -1, self.heads, head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(batch, length, channels)
        return self.to_out[0](out)


class GEGLU(nn.Module):
    def __init__(self, dim: int, inner_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, inner_dim * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        inner = dim * mult
        # net.1 is the dropout slot of the LDM layout.
        self.net = nn.Sequential(GEGLU(dim, inner), nn.Identity(), nn.Linear(inner, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, context_dim: int) -> None:
        super().__init__()
        self.attn1 = Attention(dim, dim, heads)
        self.ff = FeedForward(dim)
        self.attn2 = Attention(dim, context_dim, heads)
        self.norm1 = nn.LayerNorm(dim, eps=_LAYER_NORM_EPS)
        self.norm2 = nn.LayerNorm(dim, eps=_LAYER_NORM_EPS)
        self.norm3 = nn.LayerNorm(dim, eps=_LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class SpatialTransformer(nn.Module):
    """Transformer over the pixels of a feature map, with SD 1.x's 1x1-conv projections."""

    def __init__(
        self, channels: int, heads: int, context_dim: int, depth: int, groups: int
    ) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=_ATTN_NORM_EPS)
        self.proj_in = nn.Conv2d(channels, channels, 1)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(channels, heads, context_dim) for _ in range(depth)
        )
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        h = self.proj_in(self.norm(x))
        # Free for channels_last inputs, one copy otherwise.
        h = h.permute(0, 2, 3, 1).reshape(batch, height * width, channels)
        for block in self.transformer_blocks:
            h = block(h, context)
        h = h.reshape(batch, height, width, channels).permute(0, 3, 1, 2)
        return self.proj_out(h) + x


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: torch.Size | None = None) -> torch.Tensor:
        # An explicit size lets odd-sized feature maps line up with their skip connection.
        if size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, size=tuple(size), mode="nearest")
        return self.conv(x)


class UNetStage(nn.Sequential):
    """One entry of input_blocks / output_blocks: layers that each take what they need."""

    def forward(  # type: ignore[override]
        self,
        x: torch.Tensor,
        emb_act: torch.Tensor,
        context: torch.Tensor,
        out_size: torch.Size | None = None,
    ) -> torch.Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb_act)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context)
            elif isinstance(layer, Upsample):
                x = layer(x, out_size)
            else:
                x = layer(x)
        return x


class UNetModel(nn.Module):
    """Predicts the noise (eps) in a latent, conditioned on a timestep and text embeddings."""

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.config = cfg
        mc = cfg.model_channels
        emb_dim = cfg.time_embed_dim
        groups = cfg.norm_groups
        levels = len(cfg.channel_mult)

        def transformer(ch: int) -> SpatialTransformer:
            return SpatialTransformer(
                ch, cfg.num_heads, cfg.context_dim, cfg.transformer_depth, groups
            )

        self.time_embed = nn.Sequential(
            nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )

        self.input_blocks = nn.ModuleList([UNetStage(nn.Conv2d(cfg.in_channels, mc, 3, padding=1))])
        skip_channels = [mc]
        ch = mc
        for level in range(levels):
            out_ch = cfg.level_channels(level)
            for _ in range(cfg.num_res_blocks):
                layers: list[nn.Module] = [ResBlock(ch, emb_dim, out_ch, groups)]
                ch = out_ch
                if level in cfg.attention_levels:
                    layers.append(transformer(ch))
                self.input_blocks.append(UNetStage(*layers))
                skip_channels.append(ch)
            if level != levels - 1:
                self.input_blocks.append(UNetStage(Downsample(ch)))
                skip_channels.append(ch)

        self.middle_block = UNetStage(
            ResBlock(ch, emb_dim, ch, groups), transformer(ch), ResBlock(ch, emb_dim, ch, groups)
        )

        self.output_blocks = nn.ModuleList()
        for level in reversed(range(levels)):
            out_ch = cfg.level_channels(level)
            for i in range(cfg.num_res_blocks + 1):
                layers = [ResBlock(ch + skip_channels.pop(), emb_dim, out_ch, groups)]
                ch = out_ch
                if level in cfg.attention_levels:
                    layers.append(transformer(ch))
                if level != 0 and i == cfg.num_res_blocks:
                    layers.append(Upsample(ch))
                self.output_blocks.append(UNetStage(*layers))

        self.out = nn.Sequential(
            nn.GroupNorm(groups, ch, eps=_RES_NORM_EPS),
            nn.SiLU(),
            nn.Conv2d(ch, cfg.out_channels, 3, padding=1),
        )

    def forward(
        self, x: torch.Tensor, timesteps: torch.Tensor | float, context: torch.Tensor
    ) -> torch.Tensor:
        """x: (B, in_channels, h, w) latents; timesteps: scalar or (B,); context: (B, L, ctx)."""
        batch = x.shape[0]
        t = torch.as_tensor(timesteps, device=x.device)
        if t.numel() == 1:
            t = t.reshape(1).expand(batch)
        elif t.shape != (batch,):
            raise ValueError(f"timesteps of shape {tuple(t.shape)} do not match a batch of {batch}")
        weight_dtype = self.time_embed[0].weight.dtype
        emb = self.time_embed(timestep_embedding(t, self.config.model_channels, weight_dtype))
        emb_act = F.silu(emb)

        skips: list[torch.Tensor] = []
        h = x
        for stage in self.input_blocks:
            h = stage(h, emb_act, context)
            skips.append(h)
        h = self.middle_block(h, emb_act, context)
        for stage in self.output_blocks:
            h = torch.cat([h, skips.pop()], dim=1)
            h = stage(h, emb_act, context, skips[-1].shape[-2:] if skips else None)
        return self.out(h)
