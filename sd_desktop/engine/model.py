"""A loaded Stable Diffusion model: the three networks, ready on one device and dtype.

Loading builds every network on the meta device from the shapes in the file and
then adopts the weights, converted once to the run dtype, so the model is never
held twice in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch

from .checkpoint import Checkpoint, open_checkpoint
from .conditioning import TextConditioner
from .config import ModelConfig
from .devices import DTYPE_NAMES, resolve_device, resolve_dtype
from .image_ops import tile_ranges
from .lazy_weights import load_weights, materialize
from .previews import LATENT_FORMATS, LatentFormat, images_to_uint8, latents_to_rgb_fast
from .text_encoder import load_text_model
from .tokenizer import load_tokenizer
from .unet import UNetModel
from .vae import AutoencoderKL

LoadProgress = Callable[[float, str], None]

# Latent sizes above this (1024 px) are decoded in overlapping tiles to bound memory.
TILE_THRESHOLD = 128
TILE_SIZE = 64
TILE_OVERLAP = 16


@dataclass
class StableDiffusionModel:
    checkpoint: Checkpoint
    unet: UNetModel
    vae: AutoencoderKL
    text: TextConditioner
    device: torch.device
    dtype: torch.dtype
    load_seconds: float = 0.0
    tiling: bool = field(default=True)

    @property
    def config(self) -> ModelConfig:
        return self.checkpoint.config

    @property
    def name(self) -> str:
        return self.checkpoint.name

    @property
    def path(self) -> Path:
        return self.checkpoint.path

    @property
    def dtype_name(self) -> str:
        return DTYPE_NAMES.get(self.dtype, str(self.dtype))

    @property
    def latent_format(self) -> LatentFormat:
        return LATENT_FORMATS[self.config.family]

    @cached_property
    def short_hash(self) -> str:
        """A1111's model hash (sha256[:10]); reads the whole file once, on first use."""
        return self.checkpoint.short_hash()

    def encode_prompts(
        self, prompt: str, negative_prompt: str, clip_skip: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(cond, uncond) for one prompt, padded to the same number of 77-token chunks."""
        return self.text.encode_pair([prompt], [negative_prompt], clip_skip=clip_skip)

    def encode_image(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Pixels in [-1, 1] -> scaled latents, sampling the posterior with `generator`."""
        posterior = self.vae.encode(image.to(device=self.device, dtype=self.dtype))
        return posterior.sample(generator) * self.config.vae.scaling_factor

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> (B, H, W, 3) uint8 on the CPU.

        Reduced-precision VAEs can overflow (SD 1.x's famously does in fp16); then the
        decode is repeated in fp32 rather than showing a black image.
        """
        z = latents.to(self.dtype) / self.config.vae.scaling_factor
        images = self._decode(z)
        if self.dtype != torch.float32 and not torch.isfinite(images).all():
            self.vae.float()
            try:
                images = self._decode(z.float())
            finally:
                self.vae.to(self.dtype)
        return images_to_uint8(images)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        h, w = z.shape[-2:]
        if self.tiling and max(h, w) > TILE_THRESHOLD:
            return decode_tiled(self.vae, z)
        return self.vae.decode(z)

    def preview_fast(self, x0: torch.Tensor) -> torch.Tensor:
        """Latent-resolution RGB approximation of the denoised estimate (no VAE)."""
        return latents_to_rgb_fast(x0, self.latent_format)

    def preview_full(self, x0: torch.Tensor) -> torch.Tensor:
        return self.decode_latents(x0)


def decode_tiled(vae: AutoencoderKL, z: torch.Tensor) -> torch.Tensor:
    """Decode overlapping latent tiles and feather them together (bounded memory)."""
    scale = vae.config.downscale
    b, _, h, w = z.shape
    out = torch.zeros(b, 3, h * scale, w * scale, dtype=torch.float32, device=z.device)
    weight = torch.zeros(1, 1, h * scale, w * scale, dtype=torch.float32, device=z.device)
    ramp_len = TILE_OVERLAP * scale
    for y in tile_ranges(h, TILE_SIZE, TILE_OVERLAP):
        for x in tile_ranges(w, TILE_SIZE, TILE_OVERLAP):
            tile = z[:, :, y : y + TILE_SIZE, x : x + TILE_SIZE]
            pixels = vae.decode(tile).float()
            th, tw = pixels.shape[-2:]
            mask = _feather(th, tw, ramp_len, y > 0, y + TILE_SIZE < h, x > 0, x + TILE_SIZE < w)
            mask = mask.to(z.device)
            ys, xs = y * scale, x * scale
            out[:, :, ys : ys + th, xs : xs + tw] += pixels * mask
            weight[:, :, ys : ys + th, xs : xs + tw] += mask
    return out / weight.clamp_min(1e-6)


def _feather(
    h: int, w: int, ramp: int, top: bool, bottom: bool, left: bool, right: bool
) -> torch.Tensor:
    """A weight map that fades in over `ramp` pixels on the sides that overlap a neighbour."""

    def axis(n: int, start: bool, end: bool) -> torch.Tensor:
        v = torch.ones(n)
        r = torch.linspace(0, 1, ramp + 2)[1:-1]
        if start:
            v[:ramp] = r
        if end:
            v[n - ramp :] = r.flip(0)
        return v

    return (axis(h, top, bottom)[:, None] * axis(w, left, right)[None, :])[None, None]


def load_model(
    path: str | Path,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    progress: LoadProgress | None = None,
) -> StableDiffusionModel:
    """Open, detect and load a checkpoint; raises CheckpointError with a one-line message."""
    started = time.perf_counter()
    report = progress or (lambda fraction, message: None)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    run_dtype = dtype if isinstance(dtype, torch.dtype) else resolve_dtype(dtype, dev)

    report(0.0, f"Reading {Path(path).name}")
    checkpoint = open_checkpoint(path)
    cfg = checkpoint.config

    report(0.05, "Loading the UNet")
    with torch.device("meta"):
        unet = UNetModel(cfg.unet)
    load_weights(unet, checkpoint.component_state_dict("unet"), run_dtype, dev, what="UNet")
    unet.eval().requires_grad_(False)

    report(0.70, "Loading the VAE")
    with torch.device("meta"):
        vae = AutoencoderKL(cfg.vae)
    load_weights(vae, checkpoint.component_state_dict("vae"), run_dtype, dev, what="VAE")
    vae.eval().requires_grad_(False)

    report(0.80, "Loading the text encoder")
    text_weights = materialize(checkpoint.component_state_dict("text"), run_dtype, dev)
    text_model = load_text_model(cfg.text, text_weights, device=dev, dtype=run_dtype)
    conditioner = TextConditioner(load_tokenizer(), text_model)
    report(1.0, "Ready")
    return StableDiffusionModel(
        checkpoint=checkpoint,
        unet=unet,
        vae=vae,
        text=conditioner,
        device=dev,
        dtype=run_dtype,
        load_seconds=time.perf_counter() - started,
    )
