"""What the UI hands the worker, and what the worker reports about a loaded model.

A job is one frozen value: the engine's GenerationRequest plus the app-side options
(previews, batch count), so a queued job cannot change under the worker's feet when the
user keeps editing the panel.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from sd_desktop.engine.request import GenerationRequest

# A1111's seeds are 32-bit; seed + i wraps within that range.
SEED_MODULUS = 2**32
MAX_BATCH_COUNT = 100


class PreviewMode(StrEnum):
    """How the picture is shown while it is being made."""

    OFF = "off"
    FAST = "fast"  # latent -> RGB projection of the x0 estimate, every step, no VAE
    FULL = "full"  # the real VAE decode, every `full_every` steps

    @classmethod
    def parse(cls, value: object, default: PreviewMode | None = None) -> PreviewMode:
        """Lenient: settings files may hold anything; unknown values fall back."""
        try:
            return cls(str(value))
        except ValueError:
            return default or cls.FAST


@dataclass(frozen=True)
class PreviewOptions:
    mode: PreviewMode = PreviewMode.FAST
    full_every: int = 5

    def wants_preview(self, step: int, total: int) -> PreviewMode:
        """Which preview (if any) to make after `step` of `total`.

        The full decode is skipped on the last step: the finished image follows at once
        and decoding twice would only delay it.
        """
        if self.mode is PreviewMode.FAST:
            return PreviewMode.FAST
        if self.mode is PreviewMode.FULL and step < total:
            if step % max(1, self.full_every) == 0:
                return PreviewMode.FULL
        return PreviewMode.OFF


@dataclass(frozen=True)
class Job:
    """One generation: `request` plus app options.

    `batch_count` > 1 is expanded by Worker.submit into that many jobs (see
    expand_batch_count); `id`, `batch_index` and `batch_total` are filled in there.
    """

    request: GenerationRequest
    preview: PreviewOptions = field(default_factory=PreviewOptions)
    batch_count: int = 1
    save_to_gallery: bool = True
    id: int = 0
    group: int = 0  # jobs expanded from one Generate click share a group
    batch_index: int = 0  # 0-based position in the group
    batch_total: int = 1


def expand_batch_count(job: Job, first_id: int) -> list[Job]:
    """A1111's batch count: a fixed seed runs as seed, seed+1, ...; -1 stays -1 so each
    run draws its own random seed."""
    count = max(1, min(int(job.batch_count), MAX_BATCH_COUNT))
    seed = job.request.seed
    jobs = []
    for i in range(count):
        run_seed = seed if seed < 0 else (seed + i) % SEED_MODULUS
        jobs.append(
            replace(
                job,
                request=job.request.with_seed(run_seed),
                batch_count=1,
                id=first_id + i,
                group=first_id,
                batch_index=i,
                batch_total=count,
            )
        )
    return jobs


@dataclass(frozen=True)
class LoadModel:
    """A queued request to (re)load the model."""

    path: Path
    device: str = "auto"
    dtype: str = "auto"


@dataclass(frozen=True)
class ModelInfo:
    """What the UI may know about the loaded model (no torch objects cross threads)."""

    name: str
    path: Path
    family: str  # "SD 1.x", "SD 1.x inpainting"
    in_channels: int
    device: str
    dtype: str
    load_seconds: float

    @property
    def is_inpainting(self) -> bool:
        return self.in_channels == 9
