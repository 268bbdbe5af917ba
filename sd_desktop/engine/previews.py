"""Turning latents into something a person can watch while the job runs.

The fast path projects the 4 latent channels to RGB with a fixed linear map per
model family (fitted once against the real VAE); it costs a few microseconds per
pixel and needs no VAE. The full path runs the VAE decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LatentFormat:
    """Per-family constants: VAE scale and the latent->RGB linear approximation."""

    scaling_factor: float
    latent_rgb_factors: tuple[tuple[float, float, float], ...]
    latent_rgb_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)


SD1 = LatentFormat(
    scaling_factor=0.18215,
    latent_rgb_factors=(
        (0.3512, 0.2297, 0.3227),
        (0.3250, 0.4974, 0.2350),
        (-0.2829, 0.1762, 0.2721),
        (-0.2120, -0.2616, -0.7177),
    ),
)

LATENT_FORMATS: dict[str, LatentFormat] = {"sd1": SD1, "sd1-inpaint": SD1}


def latents_to_rgb_fast(latents: torch.Tensor, fmt: LatentFormat = SD1) -> torch.Tensor:
    """(B,4,h,w) latents -> (B,h,w,3) uint8 at latent resolution."""
    factors = torch.tensor(fmt.latent_rgb_factors, dtype=torch.float32, device=latents.device)
    bias = torch.tensor(fmt.latent_rgb_bias, dtype=torch.float32, device=latents.device)
    rgb = torch.einsum("bchw,cr->bhwr", latents[:, : factors.shape[0]].float(), factors) + bias
    return ((rgb + 1.0) * 127.5).clamp(0, 255).round().to(torch.uint8).cpu()


def images_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """VAE output in [-1, 1], (B,3,H,W) -> (B,H,W,3) uint8, rounded as diffusers does."""
    x = (images.float() / 2 + 0.5).clamp(0, 1)
    return (x.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).cpu()
