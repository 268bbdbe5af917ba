"""Pipeline behaviour beyond parity: callbacks, cancellation, seeds, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from factories import build_tiny_sd
from sd_desktop.engine.errors import CancelledError, InvalidRequestError
from sd_desktop.engine.model import load_model
from sd_desktop.engine.pipeline import generate
from sd_desktop.engine.request import GenerationRequest, Mode


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    tiny = build_tiny_sd(tmp_path_factory, "txt2img", "small")
    return load_model(tiny.single_file, device="cpu", dtype="fp32")


@pytest.fixture(scope="module")
def inpaint_model(tmp_path_factory):
    tiny = build_tiny_sd(tmp_path_factory, "inpaint", "small")
    return load_model(tiny.single_file, device="cpu", dtype="fp32")


def _request(**kw) -> GenerationRequest:
    base = dict(prompt="a cat", steps=4, seed=42, width=64, height=64, sampler="euler")
    base.update(kw)
    return GenerationRequest(**base)


def test_callback_reports_every_step_with_x0(model):
    seen = []
    generate(model, _request(steps=5), callback=seen.append)
    assert [p.step for p in seen] == [1, 2, 3, 4, 5]
    assert all(p.total == 5 for p in seen)
    assert all(p.latents.shape == p.denoised.shape == (1, 4, 8, 8) for p in seen)
    assert all(torch.isfinite(p.denoised).all() for p in seen)
    assert seen[-1].elapsed >= seen[0].elapsed > 0


def test_cancel_stops_before_the_next_unet_call(model, monkeypatch):
    calls = []
    real = model.unet.forward

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(model.unet, "forward", counting)
    state = {"cancel": False}

    def on_step(p):
        if p.step == 2:
            state["cancel"] = True

    with pytest.raises(CancelledError):
        generate(model, _request(steps=10), callback=on_step, should_cancel=lambda: state["cancel"])
    assert len(calls) == 2


def test_random_seed_is_resolved_and_reproducible(model):
    first = generate(model, _request(seed=-1))
    assert 0 <= first.seed < 2**32 and first.request.seed == first.seed
    again = generate(model, _request(seed=first.seed))
    assert np.array_equal(np.asarray(first.images[0]), np.asarray(again.images[0]))
    other = generate(model, _request(seed=first.seed + 1))
    assert not np.array_equal(np.asarray(first.images[0]), np.asarray(other.images[0]))


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"width": 60}, "multiple of 8"),
        ({"height": 0}, "multiple of 8"),
        ({"steps": 0}, "Steps"),
        ({"sampler": "k_lms"}, "k_lms"),
        ({"batch_size": 0}, "Batch size"),
        ({"clip_skip": 0}, "Clip skip"),
        ({"cfg_scale": float("nan")}, "CFG"),
    ],
)
def test_invalid_requests(model, kw, needle):
    with pytest.raises(InvalidRequestError, match=needle):
        generate(model, _request(**kw))


def test_img2img_strength_too_small_for_steps(model):
    image = Image.new("RGB", (64, 64), (120, 30, 200))
    with pytest.raises(InvalidRequestError, match="strength"):
        generate(model, _request(init_image=image, strength=0.1, steps=4))


def test_inpainting_model_runs_txt2img(inpaint_model):
    result = generate(inpaint_model, _request(steps=3))
    assert result.images[0].size == (64, 64)
    assert np.asarray(result.images[0]).std() > 1


def test_mask_of_another_size_is_resized_and_blur_softens(model):
    image = Image.new("RGB", (64, 64), (200, 200, 200))
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    request = _request(
        init_image=image,
        mask=Image.fromarray(mask),
        strength=1.0,
        mask_blur=4,
        keep_unmasked=True,
    )
    assert request.mode is Mode.INPAINT
    out = np.asarray(generate(model, request).images[0], dtype=np.int16)
    # Corners are far outside the (upscaled) mask: the source is kept exactly.
    assert np.abs(out[:6, :6] - 200).max() == 0
    # Inside the mask the picture was repainted; across the blurred edge (the mask ends at
    # x=48 after upscaling) the change fades out towards the source.
    change = [int(np.abs(out[32, x] - 200).max()) for x in (40, 50, 60)]
    assert change[0] > 50
    assert change[0] > change[1] > change[2]
    plain = generate(model, request.__class__(**{**request.__dict__, "keep_unmasked": False}))
    assert np.abs(np.asarray(plain.images[0], dtype=np.int16)[:6, :6] - 200).max() > 0
