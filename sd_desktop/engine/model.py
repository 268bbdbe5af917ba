"""A loaded Stable Diffusion model: the three networks, ready on one device and dtype.

Loading builds every network on the meta device from the shapes in the file and
then adopts the weights, converted once to the run dtype, so the model is never
held twice in memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch

from .checkpoints.checkpoint import Checkpoint, open_checkpoint
from .checkpoints.lazy_weights import load_weights, materialize
from .devices import DTYPE_NAMES, resolve_device, resolve_dtype, resolve_vae_dtype
from .image_ops import tile_ranges
from .memory import trim_heap
from .networks.config import ModelConfig
from .networks.text_encoder import load_text_model
from .networks.unet import UNetModel
from .networks.vae import AutoencoderKL
from .offload import SequentialOffloader, choose_offload
from .optimize import CompiledForward, compile_module, prefers_channels_last, to_channels_last
from .previews import LATENT_FORMATS, LatentFormat, images_to_uint8, latents_to_rgb_fast
from .text.conditioning import TextConditioner
from .text.tokenizer import shared_tokenizer

LoadProgress = Callable[[float, str], None]

log = logging.getLogger(__name__)

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
    # The VAE's own dtype (see devices.resolve_vae_dtype); None means `dtype`. It
    # becomes fp32 for good after a decode overflows.
    vae_dtype: torch.dtype | None = None
    # Set when the GPU is too small to hold every network at once (offload.py).
    offloader: SequentialOffloader | None = None
    # Set when the UNet runs through torch.compile (optimize.py).
    compiled_unet: CompiledForward | None = None

    def __post_init__(self) -> None:
        if self.vae_dtype is None:
            self.vae_dtype = self.dtype

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
        self._use("text")
        return self.text.encode_pair([prompt], [negative_prompt], clip_skip=clip_skip)

    def _use(self, component: str) -> None:
        """With offload, bring `component` onto the GPU (and the others off it)."""
        if self.offloader is not None:
            self.offloader.activate(component)

    def encode_image(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Pixels in [-1, 1] -> scaled latents, sampling the posterior with `generator`."""
        self._use("vae")
        posterior = self.vae.encode(image.to(device=self.device, dtype=self.vae_dtype))
        latents = posterior.sample(generator) * self.config.vae.scaling_factor
        return latents.to(self.dtype)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> (B, H, W, 3) uint8 on the CPU.

        Reduced-precision VAEs can overflow (SD 1.x's famously does in fp16); then the
        decode is repeated in fp32 rather than showing a black image, and the VAE
        stays in fp32 for this model, since a VAE that overflowed once will again.
        """
        self._use("vae")
        z = latents.to(self.vae_dtype) / self.config.vae.scaling_factor
        images = self._decode(z)
        if self.vae_dtype != torch.float32 and not torch.isfinite(images).all():
            self.keep_vae_in_fp32()
            images = self._decode(latents.float() / self.config.vae.scaling_factor)
        return images_to_uint8(images)

    def keep_vae_in_fp32(self) -> None:
        """Run the VAE in fp32 from now on (after a reduced-precision overflow)."""
        if self.vae_dtype == torch.float32:
            return
        log.info("The VAE overflowed in %s; it runs in fp32 from now on.", self.vae_dtype)
        if self.offloader is not None and "vae" in self.offloader.names:
            self.offloader.convert("vae", torch.float32)
        else:
            self.vae.float()
        self.vae_dtype = torch.float32

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
    *,
    offload: str = "auto",
    channels_last: bool | None = None,
    compile_unet: bool = False,
) -> StableDiffusionModel:
    """Open, detect and load a checkpoint; raises CheckpointError with a one-line message.

    offload: "auto" (sequential on GPUs under 6 GB), "none" or "sequential".
    channels_last: NHWC convolutions; None picks it per network where it is faster.
    compile_unet: run the UNet through torch.compile (slow first step per size).
    """
    started = time.perf_counter()
    report = progress or (lambda fraction, message: None)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    run_dtype = dtype if isinstance(dtype, torch.dtype) else resolve_dtype(dtype, dev)
    vae_dtype = resolve_vae_dtype(run_dtype, dev)
    offload_mode = choose_offload(offload, dev)
    # With offload the weights live on the CPU and visit the GPU one network at a time.
    home = torch.device("cpu") if offload_mode == "sequential" else dev
    if channels_last is None:
        unet_nhwc = prefers_channels_last(dev, run_dtype, "unet")
        vae_nhwc = prefers_channels_last(dev, vae_dtype, "vae")
    else:
        unet_nhwc = vae_nhwc = channels_last

    report(0.0, f"Reading {Path(path).name}")
    checkpoint = open_checkpoint(path)
    cfg = checkpoint.config

    report(0.05, "Loading the UNet")
    with torch.device("meta"):
        unet = UNetModel(cfg.unet)
    load_weights(unet, checkpoint.component_state_dict("unet"), run_dtype, home, what="UNet")
    unet.eval().requires_grad_(False)

    report(0.70, "Loading the VAE")
    with torch.device("meta"):
        vae = AutoencoderKL(cfg.vae)
    load_weights(vae, checkpoint.component_state_dict("vae"), vae_dtype, home, what="VAE")
    vae.eval().requires_grad_(False)
    if unet_nhwc:
        to_channels_last(unet)
    if vae_nhwc:
        to_channels_last(vae)

    report(0.80, "Loading the text encoder")
    text_weights = materialize(checkpoint.component_state_dict("text"), run_dtype, home)
    text_model = load_text_model(cfg.text, text_weights, device=home, dtype=run_dtype)
    del text_weights
    conditioner = TextConditioner(shared_tokenizer(), text_model)

    offloader = None
    if offload_mode == "sequential":
        offloader = SequentialOffloader(dev)
        offloader.add("text", text_model)
        offloader.add("unet", unet, hook=True)  # the pipeline calls the UNet directly
        offloader.add("vae", vae)
    trim_heap()  # the freed read buffers go back to the OS (~10% of the model)
    compiled = None
    if compile_unet:
        if offloader is not None:
            log.warning("Not compiling the UNet: it cannot be combined with offloading.")
        else:
            compiled = compile_module(unet, dev, name="UNet")
    report(1.0, "Ready")
    return StableDiffusionModel(
        checkpoint=checkpoint,
        unet=unet,
        vae=vae,
        text=conditioner,
        device=dev,
        dtype=run_dtype,
        load_seconds=time.perf_counter() - started,
        vae_dtype=vae_dtype,
        offloader=offloader,
        compiled_unet=compiled,
    )
