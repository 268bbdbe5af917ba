"""Whole images against diffusers' pipelines, seed for seed, on tiny random models.

The reference is what a diffusers user gets from the same folder; our engine loads
both the folder and our LDM single-file export of it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from factories import build_tiny_sd
from sd_desktop.engine.model import load_model
from sd_desktop.engine.pipeline import generate
from sd_desktop.engine.request import GenerationRequest

diffusers = pytest.importorskip("diffusers")

SCHEDULERS = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {}),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
}
PLAIN_PROMPT = "a watercolor fox in a misty forest"
NEGATIVE = "blurry, low quality"
TOLERANCE = 2  # out of 255


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory, "txt2img", "small")


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory, "txt2img", "medium")


@pytest.fixture(scope="module")
def inpaint_model(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory, "inpaint", "small")


def _reference(cls_name: str, folder, sampler: str):
    pipe = getattr(diffusers, cls_name).from_pretrained(
        folder, safety_checker=None, requires_safety_checker=False
    )
    pipe.set_progress_bar_config(disable=True)
    sched_name, extra = SCHEDULERS[sampler]
    pipe.scheduler = getattr(diffusers, sched_name).from_config(pipe.scheduler.config, **extra)
    return pipe


def _ours(path):
    return load_model(path, device="cpu", dtype="fp32")


def _assert_close(ours: list[Image.Image], theirs: list[Image.Image]) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        x = np.asarray(a, dtype=np.int16)
        y = np.asarray(b, dtype=np.int16)
        assert x.shape == y.shape
        diff = np.abs(x - y).max()
        assert diff <= TOLERANCE, f"max pixel difference {diff}/255"
        # Guard against two degenerate (flat) images agreeing trivially.
        assert y.std() > 2.0


def _source_image(width: int, height: int) -> Image.Image:
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack(
        [
            (xx * 255 / max(width - 1, 1)),
            (yy * 255 / max(height - 1, 1)),
            ((xx + yy) % 37) * 7,
        ],
        axis=-1,
    )
    return Image.fromarray(rgb.astype(np.uint8))


def _mask(width: int, height: int) -> Image.Image:
    m = np.zeros((height, width), dtype=np.uint8)
    m[height // 4 : 3 * height // 4, width // 3 : width - 8] = 255
    return Image.fromarray(m, mode="L")


@pytest.mark.parametrize("sampler", list(SCHEDULERS))
def test_txt2img_every_sampler_matches_diffusers(small, sampler):
    steps = 6
    pipe = _reference("StableDiffusionPipeline", small.folder, sampler)
    theirs = pipe(
        PLAIN_PROMPT,
        negative_prompt=NEGATIVE,
        num_inference_steps=steps,
        guidance_scale=7.5,
        width=64,
        height=64,
        generator=torch.Generator("cpu").manual_seed(1234),
    ).images
    request = GenerationRequest(
        prompt=PLAIN_PROMPT,
        negative_prompt=NEGATIVE,
        sampler=sampler,
        steps=steps,
        cfg_scale=7.5,
        seed=1234,
        width=64,
        height=64,
    )
    result = generate(_ours(small.single_file), request)
    _assert_close(result.images, theirs)


@pytest.mark.parametrize("path_kind", ["folder", "single_file"])
def test_txt2img_medium_non_square_batch(medium, path_kind):
    pipe = _reference("StableDiffusionPipeline", medium.folder, "dpmpp_2m_karras")
    theirs = pipe(
        PLAIN_PROMPT,
        num_inference_steps=5,
        guidance_scale=5.0,
        width=96,
        height=64,
        num_images_per_prompt=2,
        generator=torch.Generator("cpu").manual_seed(7),
    ).images
    request = GenerationRequest(
        prompt=PLAIN_PROMPT,
        sampler="dpmpp_2m_karras",
        steps=5,
        cfg_scale=5.0,
        seed=7,
        width=96,
        height=64,
        batch_size=2,
    )
    result = generate(_ours(getattr(medium, path_kind)), request)
    _assert_close(result.images, theirs)


@pytest.mark.parametrize("sampler", ["euler_a", "ddim"])
def test_img2img_matches_diffusers(small, sampler):
    source = _source_image(64, 80)
    pipe = _reference("StableDiffusionImg2ImgPipeline", small.folder, sampler)
    theirs = pipe(
        PLAIN_PROMPT,
        image=source,
        strength=0.6,
        num_inference_steps=8,
        guidance_scale=6.0,
        generator=torch.Generator("cpu").manual_seed(99),
    ).images
    request = GenerationRequest(
        prompt=PLAIN_PROMPT,
        sampler=sampler,
        steps=8,
        cfg_scale=6.0,
        seed=99,
        width=64,
        height=80,
        init_image=source,
        strength=0.6,
    )
    result = generate(_ours(small.single_file), request)
    _assert_close(result.images, theirs)


@pytest.mark.parametrize(
    ("variant", "sampler", "strength"),
    [
        ("inpaint", "euler_a", 1.0),
        ("inpaint", "dpmpp_2m", 0.7),
        ("txt2img", "euler_a", 1.0),
        ("txt2img", "lms", 0.8),
    ],
)
def test_inpaint_matches_diffusers(tmp_path_factory, variant, sampler, strength):
    tiny = build_tiny_sd(tmp_path_factory, variant, "small")
    source, mask = _source_image(64, 64), _mask(64, 64)
    pipe = _reference("StableDiffusionInpaintPipeline", tiny.folder, sampler)
    theirs = pipe(
        PLAIN_PROMPT,
        negative_prompt=NEGATIVE,
        image=source,
        mask_image=mask,
        strength=strength,
        num_inference_steps=6,
        guidance_scale=7.0,
        width=64,
        height=64,
        generator=torch.Generator("cpu").manual_seed(5),
    ).images
    request = GenerationRequest(
        prompt=PLAIN_PROMPT,
        negative_prompt=NEGATIVE,
        sampler=sampler,
        steps=6,
        cfg_scale=7.0,
        seed=5,
        width=64,
        height=64,
        init_image=source,
        mask=mask,
        strength=strength,
    )
    result = generate(_ours(tiny.single_file), request)
    _assert_close(result.images, theirs)


def test_keep_unmasked_preserves_source_outside_mask(small):
    source, mask = _source_image(64, 64), _mask(64, 64)
    request = GenerationRequest(
        prompt=PLAIN_PROMPT,
        sampler="euler",
        steps=4,
        seed=3,
        width=64,
        height=64,
        init_image=source,
        mask=mask,
        strength=1.0,
        mask_blur=4,
        keep_unmasked=True,
    )
    image = np.asarray(generate(_ours(small.single_file), request).images[0], dtype=np.int16)
    src = np.asarray(source, dtype=np.int16)
    outside = np.asarray(mask) == 0
    # Far from the blurred edge the source is kept exactly.
    far = outside.copy()
    m = np.asarray(mask) > 0
    ys, xs = np.nonzero(m)
    far[max(ys.min() - 12, 0) : ys.max() + 12, max(xs.min() - 12, 0) : xs.max() + 12] = False
    assert np.abs(image[far] - src[far]).max() <= 2
    assert np.abs(image[m] - src[m]).mean() > 5  # the masked area was repainted


def test_cfg_one_skips_negative_and_matches(small):
    pipe = _reference("StableDiffusionPipeline", small.folder, "euler")
    theirs = pipe(
        PLAIN_PROMPT,
        num_inference_steps=4,
        guidance_scale=1.0,
        width=64,
        height=64,
        generator=torch.Generator("cpu").manual_seed(11),
    ).images
    request = GenerationRequest(
        prompt=PLAIN_PROMPT, sampler="euler", steps=4, cfg_scale=1.0, seed=11, width=64, height=64
    )
    _assert_close(generate(_ours(small.folder), request).images, theirs)
