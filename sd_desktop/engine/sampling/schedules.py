"""Noise schedules and the grids of points that samplers walk.

A model family is trained with a fixed beta schedule; everything a sampler needs
(noise levels, the timestep the UNet is told, the start level) is derived from it
here, following diffusers' schedulers to the last rounding step so that our
samplers reproduce its outputs. The schedule is plain data, so another family only
has to add its own `NoiseSchedule`.

Two kinds of grid exist because diffusers' schedulers live in two spaces:

* `SigmaGrid` (Euler, Euler a, Heun, LMS, DPM++): the sampler state is
  ``x = x0 + sigma * eps`` and the UNet is fed ``x / sqrt(sigma^2 + 1)``.
* `TimestepGrid` (DDIM, PLMS): the state is the UNet's own input
  ``sqrt(alpha_bar) * x0 + sqrt(1 - alpha_bar) * eps`` and steps jump between
  integer training timesteps.

Both carry a `start` index: img2img skips the noisiest points but keeps them in
the grid, because some samplers (LMS) look back at levels before the start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor


@dataclass(frozen=True)
class NoiseSchedule:
    """A family's training noise schedule, as found in its scheduler config."""

    beta_start: float
    beta_end: float
    num_train_timesteps: int = 1000
    beta_schedule: Literal["scaled_linear", "linear"] = "scaled_linear"
    steps_offset: int = 1

    def alphas_cumprod(self) -> Tensor:
        """alpha_bar per training timestep, in float32 exactly as diffusers computes it."""
        n = self.num_train_timesteps
        if self.beta_schedule == "scaled_linear":
            betas = torch.linspace(self.beta_start**0.5, self.beta_end**0.5, n) ** 2
        else:
            betas = torch.linspace(self.beta_start, self.beta_end, n)
        return torch.cumprod(1.0 - betas, dim=0)

    def sigmas(self) -> Tensor:
        """Noise level sqrt((1 - alpha_bar) / alpha_bar) per training timestep (float32)."""
        alphas_cumprod = self.alphas_cumprod()
        return ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5


# Stable Diffusion 1.x (scheduler_config.json of SD 1.5).
SD1_SCHEDULE = NoiseSchedule(beta_start=0.00085, beta_end=0.012)


@dataclass(frozen=True)
class SigmaGrid:
    """Points of a sampler working on x = x0 + sigma * eps."""

    timesteps: Tensor  # [m] what the UNet is told at each point (float32 or int64)
    sigmas: Tensor  # [m + 1] float32 noise level of each point, then of the result (0)
    init_sigma: float  # scale of a pure-noise start
    start: int = 0

    def __len__(self) -> int:
        return len(self.timesteps)

    def to_model_space(self, x: Tensor, j: int) -> Tensor:
        """The UNet's view of a state at point j (j == len: the finished latents)."""
        return x / math.sqrt(float(self.sigmas[j]) ** 2 + 1)

    def noised(self, x0: Tensor, noise: Tensor, j: int) -> Tensor:
        """Clean latents noised to point j's level (diffusers' add_noise)."""
        return x0 + noise * float(self.sigmas[j])

    def pure_noise(self, noise: Tensor) -> Tensor:
        return noise * self.init_sigma


@dataclass(frozen=True)
class TimestepGrid:
    """Points of a sampler stepping between integer training timesteps (DDIM, PLMS)."""

    timesteps: Tensor  # [m] int64, in the order the UNet is called
    alphas_cumprod: Tensor  # [num_train_timesteps] float32
    ratio: int  # distance in training timesteps of one step
    start: int = 0

    def __len__(self) -> int:
        return len(self.timesteps)

    def alpha_bar(self, t: int) -> float:
        # Below timestep 0 SD1 configs use set_alpha_to_one=False: the last step
        # lands on alpha_bar[0], not on the clean image.
        return float(self.alphas_cumprod[max(t, 0)])

    def to_model_space(self, x: Tensor, j: int) -> Tensor:
        return x

    def noised(self, x0: Tensor, noise: Tensor, j: int) -> Tensor:
        if j >= len(self):
            return x0
        a = self.alpha_bar(int(self.timesteps[j]))
        return math.sqrt(a) * x0 + math.sqrt(1 - a) * noise

    def pure_noise(self, noise: Tensor) -> Tensor:
        return noise


Grid = SigmaGrid | TimestepGrid


def _interp(t: Tensor, table: Tensor) -> Tensor:
    """Linear interpolation of a per-timestep table at fractional timesteps (float64)."""
    lo = t.floor().clamp(max=len(table) - 2).long()
    return table[lo] + (table[lo + 1] - table[lo]) * (t - lo)


def _sigma_to_t(sigmas: Tensor, log_train_sigmas: Tensor) -> Tensor:
    """Fractional training timestep of each sigma, interpolating in log sigma."""
    log_sigma = sigmas.clamp(min=1e-10).log()
    below = (log_train_sigmas[:, None] <= log_sigma[None, :]).sum(dim=0) - 1
    lo = below.clamp(0, len(log_train_sigmas) - 2)
    low, high = log_train_sigmas[lo], log_train_sigmas[lo + 1]
    w = ((low - log_sigma) / (low - high)).clamp(0, 1)
    return (1 - w) * lo + w * (lo + 1)


def _with_zero(sigmas: Tensor) -> Tensor:
    return torch.cat([sigmas, sigmas.new_zeros(1)]).float()


def euler_grid(schedule: NoiseSchedule, steps: int) -> SigmaGrid:
    """Euler-family points: evenly spaced *fractional* timesteps ('linspace' spacing).

    The start scale is sigma_max itself, not sqrt(sigma_max^2 + 1): that is what
    diffusers uses for 'linspace' spacing.
    """
    last = schedule.num_train_timesteps - 1
    timesteps = torch.linspace(0, last, steps, dtype=torch.float64).flip(0).float()
    train = schedule.sigmas().double()
    sigmas = _with_zero(_interp(timesteps.double(), train))
    return SigmaGrid(timesteps, sigmas, init_sigma=float(sigmas.max()))


def dpm_grid(schedule: NoiseSchedule, steps: int, *, karras: bool = False) -> SigmaGrid:
    """DPM-Solver points: integer timesteps, or Karras' rho=7 sigmas with rounded timesteps.

    DPM-Solver starts from unit-variance noise in the UNet's space, i.e. from
    sqrt(sigma_0^2 + 1) in ours.
    """
    train = schedule.sigmas()
    if karras:
        lo, hi, rho = float(train[0]), float(train[-1]), 7.0
        ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
        sigmas = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
        timesteps = _sigma_to_t(sigmas, train.log().double()).round().long()
    else:
        last = schedule.num_train_timesteps - 1
        points = torch.linspace(0, last, steps + 1, dtype=torch.float64).round().flip(0)
        timesteps = points[:-1].long()
        sigmas = train.double()[timesteps]
    sigmas = _with_zero(sigmas)
    return SigmaGrid(timesteps, sigmas, init_sigma=math.sqrt(float(sigmas[0]) ** 2 + 1))


def _leading(schedule: NoiseSchedule, steps: int) -> tuple[Tensor, int]:
    """'leading' spacing: every ratio-th training timestep from 0, shifted by steps_offset."""
    ratio = schedule.num_train_timesteps // steps
    return torch.arange(steps, dtype=torch.int64) * ratio + schedule.steps_offset, ratio


def ddim_grid(schedule: NoiseSchedule, steps: int) -> TimestepGrid:
    timesteps, ratio = _leading(schedule, steps)
    return TimestepGrid(timesteps.flip(0), schedule.alphas_cumprod(), ratio)


def plms_grid(schedule: NoiseSchedule, steps: int) -> TimestepGrid:
    """PLMS calls the UNet once more than it has steps: its first step is a Heun step,
    so the second timestep appears twice (diffusers' PNDM with skip_prk_steps)."""
    ascending, ratio = _leading(schedule, steps)
    calls = torch.cat([ascending[:-1], ascending[-2:-1], ascending[-1:]]).flip(0)
    return TimestepGrid(calls, schedule.alphas_cumprod(), ratio)
