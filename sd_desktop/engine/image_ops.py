"""Pixel-side helpers: image and mask tensors in the layout the pipeline expects.

Conversions follow diffusers' image processor (Lanczos resize, [0,1] -> [-1,1],
masks binarised at 0.5) so the same inputs give the same latents.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from .errors import InvalidRequestError


def _resized(image: Image.Image, width: int, height: int) -> Image.Image:
    if image.size == (width, height):
        return image
    return image.resize((width, height), resample=Image.LANCZOS)


def image_to_tensor(image: Image.Image, width: int, height: int) -> torch.Tensor:
    """RGB PIL image -> (1,3,H,W) float32 in [-1, 1]."""
    rgb = _resized(image.convert("RGB"), width, height)
    array = np.asarray(rgb, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0) * 2.0 - 1.0


def mask_to_array(mask: Image.Image, width: int, height: int, blur: float = 0) -> np.ndarray:
    """Any-mode mask (white = repaint) -> (H,W) float32 in [0,1], optionally blurred."""
    gray = _resized(mask.convert("L"), width, height)
    array = np.asarray(gray, dtype=np.float32) / 255.0
    if blur > 0:
        array = gaussian_blur(array, blur)
    return array


def binarize(mask: np.ndarray) -> torch.Tensor:
    """(H,W) soft mask -> (1,1,H,W) hard mask, as diffusers' mask processor does."""
    return torch.from_numpy((mask >= 0.5).astype(np.float32))[None, None]


def gaussian_blur(array: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian with A1111's kernel width (2*round(2.5*sigma)+1), edges replicated."""
    radius = int(2.5 * sigma + 0.5)
    if radius < 1:
        return array
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-(offsets**2) / (2 * sigma * sigma))
    kernel /= kernel.sum()
    x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    k = torch.from_numpy(kernel)
    x = torch.nn.functional.pad(x, (radius, radius, 0, 0), mode="replicate")
    x = torch.nn.functional.conv2d(x, k.view(1, 1, 1, -1))
    x = torch.nn.functional.pad(x, (0, 0, radius, radius), mode="replicate")
    x = torch.nn.functional.conv2d(x, k.view(1, 1, -1, 1))
    return x[0, 0].numpy()


def composite_unmasked(
    result: Image.Image, source: Image.Image, soft_mask: np.ndarray
) -> Image.Image:
    """Keep the source's pixels outside the mask, blending across the (blurred) edge."""
    src = np.asarray(_resized(source.convert("RGB"), *result.size), dtype=np.float32)
    out = np.asarray(result.convert("RGB"), dtype=np.float32)
    alpha = soft_mask[..., None]
    mixed = out * alpha + src * (1.0 - alpha)
    return Image.fromarray(np.clip(np.rint(mixed), 0, 255).astype(np.uint8))


def check_size(width: int, height: int) -> None:
    for name, value in (("width", width), ("height", height)):
        if value <= 0 or value % 8:
            lower = max(8, value // 8 * 8)
            raise InvalidRequestError(
                f"The {name} must be a positive multiple of 8 (got {value}; try {lower} or "
                f"{lower + 8})."
            )
    if width * height > 4096 * 4096:
        raise InvalidRequestError(
            f"{width}x{height} is too large; keep width x height at most 4096x4096."
        )


def tile_ranges(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles covering [0, size) with at least `overlap` shared cells."""
    if size <= tile:
        return [0]
    count = math.ceil((size - overlap) / (tile - overlap))
    step = (size - tile) / (count - 1)
    return [round(i * step) for i in range(count)]
