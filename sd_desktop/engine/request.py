"""One object carries everything a generation job needs.

The UI builds it, the worker queues it, the pipeline reads it; nothing else is
passed around, so a job can be repeated, saved or shown exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from PIL import Image


class Mode(StrEnum):
    TXT2IMG = "txt2img"
    IMG2IMG = "img2img"
    INPAINT = "inpaint"


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    negative_prompt: str = ""
    sampler: str = "dpmpp_2m_karras"
    steps: int = 20
    cfg_scale: float = 7.0
    seed: int = -1
    width: int = 512
    height: int = 512
    batch_size: int = 1
    clip_skip: int = 1
    # img2img / inpaint
    init_image: Image.Image | None = field(default=None, compare=False, repr=False)
    strength: float = 0.75
    # inpaint: white = repaint, any mode, resized to the image size if it differs
    mask: Image.Image | None = field(default=None, compare=False, repr=False)
    mask_blur: int = 0
    keep_unmasked: bool = False

    @property
    def mode(self) -> Mode:
        if self.init_image is None:
            return Mode.TXT2IMG
        return Mode.INPAINT if self.mask is not None else Mode.IMG2IMG

    def with_seed(self, seed: int) -> GenerationRequest:
        return replace(self, seed=seed)
