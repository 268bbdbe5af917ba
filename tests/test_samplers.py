"""Our samplers against diffusers' schedulers, driven the way its SD pipelines drive them.

No network: the "UNet" is a fixed nonlinear function of the input and the timestep,
so any difference in what a sampler feeds it, or in how it combines the outputs,
shows up in the final latents.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    LMSDiscreteScheduler,
    PNDMScheduler,
)

from sd_desktop.engine.errors import InvalidRequestError
from sd_desktop.engine.sampling.samplers import (
    SAMPLERS,
    SAMPLERS_BY_NAME,
    StepInfo,
    get_sampler,
    sample,
)
from sd_desktop.engine.sampling.schedules import SD1_SCHEDULE, SigmaGrid

# diffusers' schedulers trip numpy 2's __array__ copy deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:diffusers")

SD15_SCHEDULER_CONFIG = {
    "_class_name": "PNDMScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
    "trained_betas": None,
}

DIFFUSERS = {
    "euler": (EulerDiscreteScheduler, {}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
    "heun": (HeunDiscreteScheduler, {}),
    "lms": (LMSDiscreteScheduler, {}),
    "ddim": (DDIMScheduler, {}),
    "pndm": (PNDMScheduler, {}),
    "dpmpp_2m": (DPMSolverMultistepScheduler, {}),
    "dpmpp_2m_karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
}
IDS = list(DIFFUSERS)
SHAPE = (1, 4, 8, 8)
TOL = 1e-5

_W = torch.linspace(0.5, 1.2, 4).view(1, 4, 1, 1)


def fake_eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Nonlinear in x, depends on t, mixes neighbours, differs per channel."""
    x32, t32 = x.float(), t.float()
    eps = 0.3 * torch.tanh(x32 * 0.7 * _W + t32 / 700) + 0.1 * x32 * _W.flip(1)
    return (eps + 0.05 * torch.roll(x32, 1, -1) * torch.cos(t32 / 150)).to(x.dtype)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max() / b.float().abs().max())


def seeded_noise(seed: int = 0, dtype: torch.dtype = torch.float32):
    """A generator that has drawn the initial noise, as the pipelines leave it."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(SHAPE, generator=generator, dtype=dtype), generator


@dataclass
class Run:
    latents: torch.Tensor
    timesteps: list[torch.Tensor] = field(default_factory=list)  # per UNet call
    inputs: list[torch.Tensor] = field(default_factory=list)  # per UNet call
    x0: list[torch.Tensor | None] = field(default_factory=list)  # per UNet call (diffusers)
    steps: list[StepInfo] = field(default_factory=list)  # ours


def diffusers_run(sampler_id, steps, noise, generator, init=None, strength=1.0, blend=None):
    """StableDiffusionPipeline's loop; with init, StableDiffusionImg2ImgPipeline's; with
    blend (mask, image latents), StableDiffusionInpaintPipeline's for a 4-channel UNet."""
    cls, extra_config = DIFFUSERS[sampler_id]
    scheduler = cls.from_config(SD15_SCHEDULER_CONFIG, **extra_config)
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps
    if init is None and blend is None:
        latents = noise * scheduler.init_noise_sigma
    else:
        run = min(int(steps * strength), steps)
        t_start = max(steps - run, 0)
        timesteps = scheduler.timesteps[t_start * scheduler.order :]
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(t_start * scheduler.order)
        if blend is not None and strength == 1.0:
            latents = noise * scheduler.init_noise_sigma
        else:
            latents = scheduler.add_noise(init, noise, timesteps[:1])
    accepted = inspect.signature(scheduler.step).parameters
    kwargs = {"generator": generator} if "generator" in accepted else {}
    result = Run(latents)
    for i, t in enumerate(timesteps):
        model_input = scheduler.scale_model_input(latents, t)
        eps = fake_eps(model_input, t)
        out = scheduler.step(eps, t, latents, **kwargs)
        latents = out.prev_sample
        if blend is not None:
            mask, known = blend
            if i < len(timesteps) - 1:
                known = scheduler.add_noise(known, noise, torch.tensor([timesteps[i + 1]]))
            latents = (1 - mask) * known + mask * latents
        result.timesteps.append(t)
        result.inputs.append(model_input)
        if isinstance(scheduler, DPMSolverMultistepScheduler):
            result.x0.append(scheduler.model_outputs[-1])
        elif isinstance(scheduler, PNDMScheduler):
            a = scheduler.alphas_cumprod[int(t)]
            result.x0.append((model_input - (1 - a) ** 0.5 * eps) / a**0.5)
        else:
            result.x0.append(out.pred_original_sample)
    result.latents = latents
    return result


def our_run(sampler_id, steps, noise, generator, **kwargs):
    result = Run(noise)

    def eps_fn(model_input, timestep):
        result.timesteps.append(timestep)
        result.inputs.append(model_input)
        return fake_eps(model_input, timestep)

    result.latents = sample(
        sampler_id,
        eps_fn,
        steps=steps,
        noise=noise,
        generator=generator,
        callback=result.steps.append,
        **kwargs,
    )
    return result


def both(sampler_id, steps, *, init=None, strength=1.0, blend=None):
    noise, generator = seeded_noise()
    ref = diffusers_run(sampler_id, steps, noise, generator, init, strength, blend)
    our_noise, our_generator = seeded_noise()
    kwargs = {"init_latents": init, "strength": strength, "blend": blend}
    ours = our_run(sampler_id, steps, our_noise, our_generator, **kwargs)
    assert torch.equal(generator.get_state(), our_generator.get_state())
    return ref, ours


def assert_same_calls(ref: Run, ours: Run) -> None:
    assert len(ours.timesteps) == len(ref.timesteps)
    for ours_t, ref_t, ours_in, ref_in in zip(
        ours.timesteps, ref.timesteps, ours.inputs, ref.inputs, strict=True
    ):
        assert ours_t.dtype == ref_t.dtype and ours_t.shape == ref_t.shape
        assert torch.equal(ours_t, ref_t)
        assert rel_err(ours_in, ref_in) < TOL


IMAGE = torch.randn(SHAPE, generator=torch.Generator().manual_seed(7))


def _mask() -> torch.Tensor:
    """Repaint the left half; a soft band in the middle, as a blurred mask gives."""
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4] = 1.0
    mask[..., 4] = 0.5
    return mask


@pytest.mark.parametrize("steps", [1, 2, 7, 20, 25])
@pytest.mark.parametrize("sampler_id", IDS)
def test_txt2img_matches_diffusers(sampler_id, steps):
    ref, ours = both(sampler_id, steps)
    assert_same_calls(ref, ours)
    assert ours.latents.dtype == torch.float32
    assert rel_err(ours.latents, ref.latents) < TOL


@pytest.mark.parametrize(("steps", "strength"), [(20, 0.3), (20, 0.75), (7, 0.5), (25, 0.75)])
@pytest.mark.parametrize("sampler_id", IDS)
def test_img2img_matches_diffusers(sampler_id, steps, strength):
    ref, ours = both(sampler_id, steps, init=IMAGE, strength=strength)
    assert_same_calls(ref, ours)
    assert rel_err(ours.latents, ref.latents) < TOL
    assert ours.steps[-1].total == steps - (steps - int(steps * strength))


@pytest.mark.parametrize(("steps", "strength"), [(20, 1.0), (20, 0.75), (7, 0.5)])
@pytest.mark.parametrize("sampler_id", IDS)
def test_inpaint_blend_matches_diffusers(sampler_id, steps, strength):
    blend = (_mask(), IMAGE)
    ref, ours = both(sampler_id, steps, init=IMAGE, strength=strength, blend=blend)
    assert_same_calls(ref, ours)
    assert rel_err(ours.latents, ref.latents) < TOL
    # Outside the mask the result is the image itself.
    assert torch.allclose(ours.latents[..., 5:], IMAGE[..., 5:], atol=1e-6)


def _step_calls(sampler_id: str, calls: int) -> list[tuple[int, int]]:
    """(first, last) UNet call of each user-visible step in diffusers' call list."""
    if sampler_id == "heun":  # pairs of calls, then a lone Euler call to sigma 0
        return [(c, c + 1) for c in range(0, calls - 1, 2)] + [(calls - 1, calls - 1)]
    if sampler_id == "pndm" and calls > 1:  # the first step takes two calls
        return [(0, 1)] + [(c, c) for c in range(2, calls)]
    return [(c, c) for c in range(calls)]


@pytest.mark.parametrize(("steps", "strength"), [(7, 1.0), (20, 0.75)])
@pytest.mark.parametrize("sampler_id", IDS)
def test_callback_reports_each_step(sampler_id, steps, strength):
    init = IMAGE if strength < 1.0 else None
    ref, ours = both(sampler_id, steps, init=init, strength=strength)
    total = int(steps * strength)
    assert [info.step for info in ours.steps] == list(range(1, total + 1))
    assert {info.total for info in ours.steps} == {total}
    bounds = _step_calls(sampler_id, len(ref.inputs))
    assert len(bounds) == total
    for info, (first, last) in zip(ours.steps, bounds, strict=True):
        # x0 is the model's estimate where the step starts, as diffusers computes it
        assert rel_err(info.denoised, ref.x0[first]) < TOL
        # latents: what the UNet is fed next, or the final latents
        after = ref.inputs[last + 1] if last + 1 < len(ref.inputs) else ref.latents
        assert rel_err(info.latents, after) < TOL
    assert torch.equal(ours.steps[-1].latents, ours.latents)


def test_ancestral_noise_comes_from_the_generator():
    noise, _ = seeded_noise(0)

    def final(sampler_id: str, step_seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(step_seed)
        return sample(sampler_id, fake_eps, steps=10, noise=noise, generator=generator)

    assert not torch.allclose(final("euler_a", 1), final("euler_a", 2))
    assert torch.equal(final("euler", 1), final("euler", 2))


def test_ancestral_with_img2img_and_blend_draws_like_diffusers():
    ref, ours = both("euler_a", 12, init=IMAGE, strength=0.6, blend=(_mask(), IMAGE))
    assert rel_err(ours.latents, ref.latents) < TOL


@pytest.mark.parametrize("sampler_id", ["euler_a", "heun", "dpmpp_2m_karras", "pndm"])
def test_half_precision_latents_are_sampled_in_float32(sampler_id):
    full, full_gen = seeded_noise(3)
    _, half_gen = seeded_noise(3)
    half = full.to(torch.bfloat16)
    expected = sample(sampler_id, fake_eps, steps=12, noise=full, generator=full_gen)
    seen: list[torch.dtype] = []

    def eps_fn(model_input, timestep):
        seen.append(model_input.dtype)
        return fake_eps(model_input, timestep)

    got = sample(sampler_id, eps_fn, steps=12, noise=half, generator=half_gen)
    assert got.dtype == torch.bfloat16
    assert set(seen) == {torch.bfloat16}
    assert rel_err(got, expected) < 3e-2


def test_strength_one_with_image_starts_from_pure_noise():
    noise, generator = seeded_noise()
    txt2img = sample("euler", fake_eps, steps=8, noise=noise, generator=generator)
    with_image = sample(
        "euler", fake_eps, steps=8, noise=noise, generator=generator, init_latents=IMAGE
    )
    assert torch.equal(txt2img, with_image)


@pytest.mark.parametrize("sampler_id", IDS)
def test_grids_match_diffusers_schedules(sampler_id):
    cls, extra_config = DIFFUSERS[sampler_id]
    scheduler = cls.from_config(SD15_SCHEDULER_CONFIG, **extra_config)
    scheduler.set_timesteps(20)
    grid = SAMPLERS[sampler_id].grid(SD1_SCHEDULE, 20)
    if sampler_id == "heun":  # diffusers lists every point but the first twice
        assert torch.equal(scheduler.timesteps[::2], grid.timesteps)
        assert torch.equal(torch.cat([scheduler.sigmas[::2], scheduler.sigmas[-1:]]), grid.sigmas)
    else:
        assert torch.equal(scheduler.timesteps, grid.timesteps)
    if isinstance(grid, SigmaGrid) and sampler_id != "heun":
        assert torch.equal(scheduler.sigmas, grid.sigmas)
    noise = torch.ones(SHAPE)
    start = grid.to_model_space(grid.pure_noise(noise), 0)
    expected = scheduler.scale_model_input(noise * scheduler.init_noise_sigma, grid.timesteps[0])
    assert rel_err(start, expected) < 1e-6


def test_registry_has_a1111_names():
    assert {info.id: info.name for info in SAMPLERS.values()} == {
        "euler": "Euler",
        "euler_a": "Euler a",
        "heun": "Heun",
        "lms": "LMS",
        "ddim": "DDIM",
        "pndm": "PLMS",
        "dpmpp_2m": "DPM++ 2M",
        "dpmpp_2m_karras": "DPM++ 2M Karras",
    }
    assert SAMPLERS_BY_NAME["DPM++ 2M Karras"].id == "dpmpp_2m_karras"
    assert get_sampler("Euler a") is SAMPLERS["euler_a"]


def test_unknown_sampler_lists_valid_ids():
    noise, generator = seeded_noise()
    with pytest.raises(InvalidRequestError) as excinfo:
        sample("k_euler", fake_eps, steps=4, noise=noise, generator=generator)
    message = str(excinfo.value)
    assert "k_euler" in message and "\n" not in message
    for sampler_id in IDS:
        assert sampler_id in message


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"steps": 0}, "Steps"),
        ({"steps": 10_000}, "Steps"),
        ({"steps": 10, "init_latents": IMAGE, "strength": 0.05}, "no step"),
        ({"steps": 10, "init_latents": IMAGE, "strength": 1.5}, "Strength"),
        ({"steps": 10, "init_latents": torch.zeros(1, 4, 6, 8), "strength": 0.5}, "init_latents"),
        ({"steps": 10, "blend": (torch.ones(1, 1, 4, 4), IMAGE)}, "mask"),
    ],
)
def test_bad_requests_raise_invalid_request(kwargs, words):
    noise, generator = seeded_noise()
    with pytest.raises(InvalidRequestError, match=words):
        sample("euler", fake_eps, noise=noise, generator=generator, **kwargs)
