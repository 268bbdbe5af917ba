"""From a GenerationRequest to finished images.

One function serves txt2img, img2img and both kinds of inpainting. Random numbers
come from one CPU generator per job, drawn in the order diffusers draws them, so a
seed gives the picture a diffusers user gets, on any device.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .errors import CancelledError, InvalidRequestError
from .image_ops import binarize, check_size, composite_unmasked, image_to_tensor, mask_to_array
from .model import StableDiffusionModel
from .request import GenerationRequest, Mode
from .sampling.samplers import SAMPLERS, StepInfo, sample

MAX_SEED = 2**32 - 1
MAX_STEPS = 500
MAX_BATCH = 16


@dataclass(frozen=True)
class Progress:
    """What the per-step callback receives; latents and x0 stay on the model's device."""

    step: int
    total: int
    latents: torch.Tensor
    denoised: torch.Tensor
    elapsed: float


@dataclass(frozen=True)
class GenerationResult:
    images: list[Image.Image]
    seed: int
    request: GenerationRequest


ProgressCallback = Callable[[Progress], None]


def resolve_seed(seed: int) -> int:
    """-1 means random; the seed actually used is what gets saved."""
    if seed is None or seed < 0:
        return secrets.randbelow(MAX_SEED + 1)
    return int(seed) & MAX_SEED if seed > MAX_SEED else int(seed)


def validate(request: GenerationRequest, model: StableDiffusionModel) -> None:
    check_size(request.width, request.height)
    if request.sampler not in SAMPLERS:
        valid = ", ".join(SAMPLERS)
        raise InvalidRequestError(f"Unknown sampler '{request.sampler}'; choose one of: {valid}.")
    if not 1 <= request.steps <= MAX_STEPS:
        raise InvalidRequestError(f"Steps must be between 1 and {MAX_STEPS} (got {request.steps}).")
    if not 1 <= request.batch_size <= MAX_BATCH:
        raise InvalidRequestError(
            f"Batch size must be between 1 and {MAX_BATCH} (got {request.batch_size})."
        )
    if request.cfg_scale < 0 or not np.isfinite(request.cfg_scale):
        raise InvalidRequestError(f"CFG scale must be 0 or more (got {request.cfg_scale}).")
    if not 1 <= request.clip_skip <= model.config.text.num_layers:
        raise InvalidRequestError(
            f"Clip skip must be between 1 and {model.config.text.num_layers} "
            f"(got {request.clip_skip})."
        )
    if request.mask_blur < 0:
        raise InvalidRequestError(f"Mask blur must be 0 or more (got {request.mask_blur}).")
    if request.mode is not Mode.TXT2IMG:
        if not 0.0 < request.strength <= 1.0:
            raise InvalidRequestError(
                f"Denoising strength must be in (0, 1] (got {request.strength})."
            )
        if min(int(request.steps * request.strength), request.steps) < 1:
            raise InvalidRequestError(
                f"{request.steps} steps at strength {request.strength} leaves no step to run; "
                "raise the steps or the strength."
            )


def _randn(shape: tuple[int, ...], generator: torch.Generator, model: StableDiffusionModel):
    """Drawn on the CPU in the run dtype, then moved: the same numbers on every device."""
    return torch.randn(shape, generator=generator, device="cpu", dtype=model.dtype).to(model.device)


def generate(
    model: StableDiffusionModel,
    request: GenerationRequest,
    *,
    callback: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> GenerationResult:
    validate(request, model)
    seed = resolve_seed(request.seed)
    request = request.with_seed(seed)
    generator = torch.Generator("cpu").manual_seed(seed)
    batch = request.batch_size
    device, dtype = model.device, model.dtype
    scale = model.config.vae.downscale
    latent_shape = (
        batch,
        model.config.vae.latent_channels,
        request.height // scale,
        request.width // scale,
    )
    started = time.perf_counter()

    with torch.inference_mode():
        cond, uncond = model.encode_prompts(
            request.prompt, request.negative_prompt, request.clip_skip
        )
        use_cfg = request.cfg_scale > 1.0
        context = torch.cat([uncond, cond]) if use_cfg else cond
        context = context.repeat_interleave(batch, dim=0)

        mode = request.mode
        inpaint_model = model.config.unet.in_channels == 9
        init_latents = None
        blend = None
        extra_channels = None
        soft_mask = None
        noise = None

        if mode is Mode.TXT2IMG:
            noise = _randn(latent_shape, generator, model)
            if inpaint_model:
                # An inpainting UNet asked for txt2img: everything is to be painted.
                full = torch.ones(1, 1, request.height, request.width)
                blank = torch.zeros(1, 3, request.height, request.width)
                extra_channels = _mask_channels(model, full, blank, generator, batch)
        else:
            image = image_to_tensor(request.init_image, request.width, request.height)
            image = image.to(device=device, dtype=dtype)
            strength = request.strength
            if mode is Mode.IMG2IMG:
                init_latents = model.encode_image(image, generator).repeat(batch, 1, 1, 1)
                noise = _randn(latent_shape, generator, model)
            else:
                soft_mask = mask_to_array(
                    request.mask, request.width, request.height, request.mask_blur
                )
                hard = binarize(soft_mask)
                if not inpaint_model or strength < 1.0:
                    init_latents = model.encode_image(image, generator).repeat(batch, 1, 1, 1)
                noise = _randn(latent_shape, generator, model)
                masked = image.float().cpu() * (hard < 0.5)
                channels = _mask_channels(model, hard, masked, generator, batch)
                if inpaint_model:
                    extra_channels = channels
                else:
                    blend = (channels[0], init_latents)
            if mode is Mode.INPAINT and strength >= 1.0 and inpaint_model:
                init_latents = None

        def eps_fn(model_input: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
            if should_cancel is not None and should_cancel():
                raise CancelledError("Cancelled.")
            x = torch.cat([model_input, model_input]) if use_cfg else model_input
            if extra_channels is not None:
                mask_lat, masked_lat = extra_channels
                reps = 2 if use_cfg else 1
                x = torch.cat(
                    [x, mask_lat.repeat(reps, 1, 1, 1), masked_lat.repeat(reps, 1, 1, 1)], 1
                )
            eps = model.unet(x, timestep, context)
            if use_cfg:
                eps_uncond, eps_cond = eps.chunk(2)
                eps = eps_uncond + request.cfg_scale * (eps_cond - eps_uncond)
            return eps

        def on_step(info: StepInfo) -> None:
            if callback is not None:
                callback(
                    Progress(
                        step=info.step,
                        total=info.total,
                        latents=info.latents,
                        denoised=info.denoised,
                        elapsed=time.perf_counter() - started,
                    )
                )

        latents = sample(
            request.sampler,
            eps_fn,
            steps=request.steps,
            noise=noise,
            generator=generator,
            init_latents=init_latents,
            strength=request.strength if mode is not Mode.TXT2IMG else 1.0,
            blend=blend,
            callback=on_step,
        )
        if should_cancel is not None and should_cancel():
            raise CancelledError("Cancelled.")
        pixels = model.decode_latents(latents)

    images = [Image.fromarray(array) for array in pixels.numpy()]
    if mode is Mode.INPAINT and request.keep_unmasked:
        images = [composite_unmasked(img, request.init_image, soft_mask) for img in images]
    return GenerationResult(images=images, seed=seed, request=request)


def _mask_channels(
    model: StableDiffusionModel,
    hard_mask: torch.Tensor,
    masked_image: torch.Tensor,
    generator: torch.Generator,
    batch: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent-resolution mask and masked-image latents, as the 9-channel UNet expects.

    For 4-channel models only the mask is used, but the masked image is still
    encoded so the generator advances exactly as in diffusers.
    """
    h, w = hard_mask.shape[-2:]
    scale = model.config.vae.downscale
    mask_lat = torch.nn.functional.interpolate(hard_mask, size=(h // scale, w // scale))
    mask_lat = mask_lat.to(device=model.device, dtype=model.dtype).repeat(batch, 1, 1, 1)
    if model.config.unet.in_channels == 9:
        masked = masked_image.to(device=model.device, dtype=model.dtype)
        masked_lat = model.encode_image(masked, generator).repeat(batch, 1, 1, 1)
    else:
        shape = (1, model.config.vae.latent_channels, h // scale, w // scale)
        _randn(shape, generator, model)  # the posterior sample diffusers draws and discards
        masked_lat = torch.empty(0)
    return mask_lat, masked_lat
