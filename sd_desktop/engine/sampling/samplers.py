"""Samplers: small functions that walk a grid of noise levels with a denoiser.

Each sampler is one function ``(model, x, grid, report) -> x`` that reproduces the
diffusers scheduler of the same name as configured by ``from_config`` on SD 1.5's
scheduler config (so the same seed gives the same image as a diffusers user gets).
`sample` is the only entry point the pipeline needs: it builds the grid, the
starting latents for txt2img / img2img / inpaint, runs the sampler and reports
progress.

All sampler arithmetic is float32 whatever the latents' dtype; the UNet still gets
its input in that dtype, and results are returned in it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

import torch
from torch import Tensor

from sd_desktop.engine.errors import InvalidRequestError
from sd_desktop.engine.sampling.schedules import (
    SD1_SCHEDULE,
    Grid,
    NoiseSchedule,
    SigmaGrid,
    TimestepGrid,
    ddim_grid,
    dpm_grid,
    euler_grid,
    plms_grid,
)

MAX_STEPS = 500

EpsFn = Callable[[Tensor, Tensor], Tensor]
"""(model_input, timestep) -> predicted noise, both as diffusers' pipeline would pass them."""

Report = Callable[[Tensor, Tensor], None]
"""Called by a sampler after each step with the new state and the step's x0 estimate."""


@dataclass(frozen=True)
class StepInfo:
    """Progress after one sampling step, for previews and progress bars."""

    step: int  # 1-based number of the step just done
    total: int  # steps this run does (fewer than requested for img2img)
    latents: Tensor  # current latents as the UNet sees them (at the end: what goes to the VAE)
    denoised: Tensor  # the model's estimate of the clean latents at this step


@dataclass(frozen=True)
class Denoiser:
    """What a sampler sees of the pipeline: the noise prediction at a grid point,
    plus the two things diffusers does between steps (inpaint blending, fresh noise)."""

    eps_fn: EpsFn
    grid: Grid
    dtype: torch.dtype  # the latents' dtype, which the UNet expects
    timesteps: tuple[Tensor, ...]  # the grid's timesteps on the latents' device
    generator: torch.Generator
    known: tuple[Tensor, Tensor, Tensor] | None = None  # (mask, image latents, initial noise)

    def __call__(self, x: Tensor, i: int) -> Tensor:
        model_input = self.grid.to_model_space(x, i).to(self.dtype)
        return self.eps_fn(model_input, self.timesteps[i]).float()

    def pin(self, x: Tensor, j: int) -> Tensor:
        """Inpainting with a 4-channel model: outside the mask the state is replaced by
        the image noised to point j's level, with the same noise as the start."""
        if self.known is None:
            return x
        mask, image, noise = self.known
        return (1 - mask) * self.grid.noised(image, noise, j) + mask * x

    def draw_noise(self, like: Tensor) -> Tensor:
        """Fresh noise as diffusers draws it: latents' dtype, on the generator's device."""
        shape, device = like.shape, self.generator.device
        noise = torch.randn(shape, generator=self.generator, device=device, dtype=self.dtype)
        return noise.to(like.device).float()


# --- sigma-space samplers (state x = x0 + sigma * eps) -------------------------------


def _denoise(model: Denoiser, x: Tensor, i: int, sigma: float) -> tuple[Tensor, Tensor]:
    """The x0 estimate at point i and the ODE slope dx/dsigma. The slope is recomputed
    from x0 rather than taken as eps itself: the two differ only in rounding, but at
    small sigma that rounding is what diffusers' outputs carry."""
    denoised = x - sigma * model(x, i)
    return denoised, (x - denoised) / sigma


def euler(model: Denoiser, x: Tensor, grid: SigmaGrid, report: Report) -> Tensor:
    """Euler's method on the probability-flow ODE, whose slope dx/dsigma is the noise."""
    s = grid.sigmas.tolist()
    for i in range(grid.start, len(grid)):
        denoised, d = _denoise(model, x, i, s[i])
        x = model.pin(x + d * (s[i + 1] - s[i]), i + 1)
        report(x, denoised)
    return x


def euler_ancestral(model: Denoiser, x: Tensor, grid: SigmaGrid, report: Report) -> Tensor:
    """Euler down to a level below the target, then fresh noise back up to it.

    Noise is drawn on every step, the last (sigma_up = 0) included, as diffusers does.
    """
    s = grid.sigmas.tolist()
    for i in range(grid.start, len(grid)):
        denoised, d = _denoise(model, x, i, s[i])
        sigma_up = math.sqrt(s[i + 1] ** 2 * (s[i] ** 2 - s[i + 1] ** 2) / s[i] ** 2)
        sigma_down = math.sqrt(max(s[i + 1] ** 2 - sigma_up**2, 0.0))
        x = x + d * (sigma_down - s[i])
        x = model.pin(x + model.draw_noise(d) * sigma_up, i + 1)
        report(x, denoised)
    return x


def heun(model: Denoiser, x: Tensor, grid: SigmaGrid, report: Report) -> Tensor:
    """Heun's method: an Euler step, then redo it with the mean of the slopes at both
    ends. The last step (to sigma 0) stays a plain Euler step."""
    s = grid.sigmas.tolist()
    for i in range(grid.start, len(grid)):
        denoised, d = _denoise(model, x, i, s[i])
        dt = s[i + 1] - s[i]
        x_euler = model.pin(x + d * dt, i + 1)
        if s[i + 1] == 0:
            x = x_euler
        else:
            _, d_end = _denoise(model, x_euler, i + 1, s[i + 1])
            x = model.pin(x + (d + d_end) / 2 * dt, i + 1)
        report(x, denoised)
    return x


def _lms_coefficient(s: list[float], i: int, order: int, j: int) -> float:
    """Integral over [s[i], s[i+1]] of the Lagrange basis polynomial that is 1 at
    s[i-j] and 0 at the other s[i-k], k < order. The polynomial is at most cubic, so
    two-point Gauss-Legendre quadrature is exact."""

    def basis(tau: float) -> float:
        others = [k for k in range(order) if k != j]
        return math.prod((tau - s[i - k]) / (s[i - j] - s[i - k]) for k in others)

    mid, half = (s[i] + s[i + 1]) / 2, (s[i + 1] - s[i]) / 2
    offset = half / math.sqrt(3)
    return half * (basis(mid - offset) + basis(mid + offset))


def lms(model: Denoiser, x: Tensor, grid: SigmaGrid, report: Report, order: int = 4) -> Tensor:
    """Linear multistep: integrate the polynomial through the last slopes exactly."""
    s = grid.sigmas.tolist()
    slopes: list[Tensor] = []  # newest first
    for i in range(grid.start, len(grid)):
        denoised, d = _denoise(model, x, i, s[i])
        slopes = [d, *slopes][:order]
        # diffusers sizes the polynomial by the absolute grid index, so an img2img run
        # starts with a higher-order basis than it has slopes for; zip keeps the match.
        n = min(i + 1, order)
        coefficients = [_lms_coefficient(s, i, n, j) for j in range(n)]
        x = x + sum(c * slope for c, slope in zip(coefficients, slopes, strict=False))
        x = model.pin(x, i + 1)
        report(x, denoised)
    return x


def dpmpp_2m(model: Denoiser, x: Tensor, grid: SigmaGrid, report: Report) -> Tensor:
    """DPM-Solver++(2M): the exact solution in log-sigma time for a data prediction that
    is extrapolated linearly from the previous step; first order on the first step, and
    the last step (to sigma 0) returns the data prediction itself."""
    s = grid.sigmas.tolist()
    previous: tuple[Tensor, float] | None = None  # (denoised, h) of the last step
    for i in range(grid.start, len(grid)):
        eps = model(x, i)
        denoised = x - s[i] * eps
        if s[i + 1] == 0:
            x_next = denoised
        else:
            h = math.log(s[i] / s[i + 1])
            target = denoised
            if previous is not None:
                target = denoised + (denoised - previous[0]) * (h / previous[1] / 2)
            x_next = (s[i + 1] / s[i]) * x - math.expm1(-h) * target
            previous = denoised, h
        x = model.pin(x_next, i + 1)
        report(x, denoised)
    return x


# --- timestep-space samplers (state in the UNet's space) -----------------------------


def _x0(x: Tensor, eps: Tensor, a: float) -> Tensor:
    """The clean latents implied by a noise prediction at alpha_bar a."""
    return (x - math.sqrt(1 - a) * eps) / math.sqrt(a)


def _ddim_move(x: Tensor, eps: Tensor, a: float, a_next: float) -> Tensor:
    """Deterministic DDIM move from alpha_bar a to a_next: the x0 implied by eps,
    renoised with the same eps (an Euler step on x / sqrt(alpha_bar) in sigma)."""
    return math.sqrt(a_next) * _x0(x, eps, a) + math.sqrt(1 - a_next) * eps


def ddim(model: Denoiser, x: Tensor, grid: TimestepGrid, report: Report) -> Tensor:
    """DDIM with eta = 0."""
    for i in range(grid.start, len(grid)):
        t = int(grid.timesteps[i])
        a, a_next = grid.alpha_bar(t), grid.alpha_bar(t - grid.ratio)
        eps = model(x, i)
        denoised = _x0(x, eps, a)
        x = model.pin(_ddim_move(x, eps, a, a_next), i + 1)
        report(x, denoised)
    return x


# Adams-Bashforth weights, newest prediction first, by number of predictions known.
_ADAMS_BASHFORTH = (
    (1.0,),
    (3 / 2, -1 / 2),
    (23 / 12, -16 / 12, 5 / 12),
    (55 / 24, -59 / 24, 37 / 24, -9 / 24),
)


def plms(model: Denoiser, x: Tensor, grid: TimestepGrid, report: Report) -> Tensor:
    """Pseudo linear multistep (PNDM without its Runge-Kutta warm-up): DDIM moves driven
    by an Adams-Bashforth blend of the last four noise predictions.

    The first step is a Heun step, hence one UNet call more than steps: the second
    call evaluates the Euler predictor, and the step is redone from its start with the
    mean noise. Like diffusers, every other call moves from its own timestep t to
    t - ratio, whatever level the previous move reached (img2img cuts the call list
    where diffusers cuts it, which makes a difference there).
    """
    first, r, a = grid.start, grid.ratio, grid.alpha_bar
    history: list[Tensor] = []  # noise predictions at the step starts, newest last
    x_start = x
    for j in range(first, len(grid)):
        t = int(grid.timesteps[j])
        eps = model(x, j)
        if j == first + 1:
            x = _ddim_move(x_start, (history[0] + eps) / 2, a(t + r), a(t))
        else:
            history = [*history, eps][-4:]
            weights = _ADAMS_BASHFORTH[len(history) - 1]
            blend = sum(w * e for w, e in zip(weights, reversed(history), strict=True))
            x_start, denoised = x, _x0(x, eps, a(t))
            x = _ddim_move(x, blend, a(t), a(t - r))
        x = model.pin(x, j + 1)
        if j != first or len(grid) == first + 1:  # the first call only predicts
            report(x, denoised)
    return x


# --- registry and entry point ---------------------------------------------------------

Sampler = Callable[[Denoiser, Tensor, Grid, Report], Tensor]


@dataclass(frozen=True)
class SamplerInfo:
    id: str
    name: str  # as A1111 shows it
    run: Sampler
    grid: Callable[[NoiseSchedule, int], Grid]


def _dpm_karras_grid(schedule: NoiseSchedule, steps: int) -> SigmaGrid:
    return dpm_grid(schedule, steps, karras=True)


_ALL = (
    SamplerInfo("euler", "Euler", euler, euler_grid),
    SamplerInfo("euler_a", "Euler a", euler_ancestral, euler_grid),
    SamplerInfo("heun", "Heun", heun, euler_grid),
    SamplerInfo("lms", "LMS", lms, euler_grid),
    SamplerInfo("ddim", "DDIM", ddim, ddim_grid),
    SamplerInfo("pndm", "PLMS", plms, plms_grid),
    SamplerInfo("dpmpp_2m", "DPM++ 2M", dpmpp_2m, dpm_grid),
    SamplerInfo("dpmpp_2m_karras", "DPM++ 2M Karras", dpmpp_2m, _dpm_karras_grid),
)
SAMPLERS: Mapping[str, SamplerInfo] = MappingProxyType({s.id: s for s in _ALL})
SAMPLERS_BY_NAME: Mapping[str, SamplerInfo] = MappingProxyType({s.name: s for s in _ALL})


def get_sampler(key: str) -> SamplerInfo:
    """Look a sampler up by id or by A1111 display name."""
    info = SAMPLERS.get(key) or SAMPLERS_BY_NAME.get(key)
    if info is None:
        raise InvalidRequestError(f"Unknown sampler {key!r}; choose one of: {', '.join(SAMPLERS)}.")
    return info


def _first_point(steps: int, strength: float) -> int:
    """Where img2img enters the grid: diffusers' get_timesteps, in grid points."""
    if not 0.0 < strength <= 1.0:
        raise InvalidRequestError(f"Strength must be above 0 and at most 1, not {strength}.")
    run = min(int(steps * strength), steps)
    if run < 1:
        raise InvalidRequestError(
            f"Strength {strength} of {steps} steps leaves no step to run; raise strength or steps."
        )
    return steps - run


def sample(
    sampler_id: str,
    eps_fn: EpsFn,
    *,
    steps: int,
    noise: Tensor,
    generator: torch.Generator,
    init_latents: Tensor | None = None,
    strength: float = 1.0,
    blend: tuple[Tensor, Tensor] | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    schedule: NoiseSchedule = SD1_SCHEDULE,
) -> Tensor:
    """Run a sampler the way diffusers' StableDiffusion(Img2Img|Inpaint)Pipeline runs
    its scheduler, and return the latents it would hand to the VAE (before dividing by
    the scaling factor), in `noise`'s dtype.

    eps_fn(model_input, timestep) is called exactly as the pipeline calls its UNet.
    Without init_latents the run starts from pure noise. With init_latents and
    strength < 1 it skips the first steps and starts from the image noised with
    `noise` (img2img). Strength 1.0 with init_latents starts from pure noise, as
    diffusers' inpaint pipeline does (its img2img pipeline would add noise to the image
    instead). `blend` = (mask, image latents), mask 1 where to repaint, pins the rest
    to the image after every scheduler step (inpainting with a 4-channel model).
    `generator` is the one that drew `noise`; ancestral samplers keep drawing from it.
    """
    info = get_sampler(sampler_id)
    if not 1 <= steps <= MAX_STEPS:
        raise InvalidRequestError(f"Steps must be between 1 and {MAX_STEPS}, not {steps}.")
    given = {"init_latents": init_latents}
    if blend is not None:
        given |= {"mask": blend[0], "image": blend[1]}
    for what, tensor in given.items():
        if tensor is not None and tensor.shape[-2:] != noise.shape[-2:]:
            raise InvalidRequestError(
                f"{what} is {tuple(tensor.shape)}, the latents are {tuple(noise.shape)}."
            )
    start = 0 if init_latents is None else _first_point(steps, strength)
    grid = replace(info.grid(schedule, steps), start=start)
    total = steps - start

    noise32 = noise.float()
    if start == 0:
        x = grid.pure_noise(noise32)
    else:
        x = grid.noised(init_latents.to(noise.device).float(), noise32, start)
    known = None
    if blend is not None:
        mask, image = (t.to(noise.device).float() for t in blend)
        known = (mask, image, noise32)
    model = Denoiser(
        eps_fn,
        grid,
        noise.dtype,
        tuple(grid.timesteps.to(noise.device)),
        generator,
        known,
    )

    done = 0

    def report(x: Tensor, denoised: Tensor) -> None:
        nonlocal done
        done += 1
        if callback is not None:
            latents = grid.to_model_space(x, start + done).to(noise.dtype)
            callback(StepInfo(done, total, latents, denoised.to(noise.dtype)))

    x = info.run(model, x, grid, report)
    return x.to(noise.dtype)
