"""Coverage of a round brush swept along one segment of a stroke.

Painting whole segments (a capsule from one mouse sample to the next) instead of
stamping dabs keeps fast strokes continuous at any spacing and costs one numpy pass
per mouse event, whatever the distance moved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Box = tuple[int, int, int, int]
"""Pixel box ``(left, top, right, bottom)``; right and bottom are exclusive."""


@dataclass(frozen=True, slots=True)
class BrushPoint:
    """One sample of a stroke in image pixels: centre, radius and opacity (0..1)."""

    x: float
    y: float
    radius: float
    opacity: float = 1.0


def union_box(a: Box | None, b: Box | None) -> Box | None:
    """Smallest box holding both (either may be None)."""
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def segment_coverage(
    start: BrushPoint, end: BrushPoint, hardness: float, width: int, height: int
) -> tuple[Box, np.ndarray] | None:
    """Brush coverage (float32 in 0..1) of the pixels swept from ``start`` to ``end``.

    Radius and opacity are interpolated along the segment so pen pressure changes
    smoothly. ``hardness`` 1 gives a crisp edge (one pixel of anti-aliasing); lower
    values widen a smoothstep falloff towards the centre. Pixels are sampled at
    their centres. Returns None when the segment misses the image entirely.
    """
    r0 = max(start.radius, 0.5)
    r1 = max(end.radius, 0.5)
    left = max(0, math.floor(min(start.x - r0, end.x - r1)) - 1)
    top = max(0, math.floor(min(start.y - r0, end.y - r1)) - 1)
    right = min(width, math.ceil(max(start.x + r0, end.x + r1)) + 1)
    bottom = min(height, math.ceil(max(start.y + r0, end.y + r1)) + 1)
    if left >= right or top >= bottom:
        return None

    xs = np.arange(left, right, dtype=np.float32)[None, :] + np.float32(0.5 - start.x)
    ys = np.arange(top, bottom, dtype=np.float32)[:, None] + np.float32(0.5 - start.y)
    dx = end.x - start.x
    dy = end.y - start.y
    length2 = dx * dx + dy * dy
    if length2 < 1e-9:
        t = np.zeros((1, 1), dtype=np.float32)
        dist = np.sqrt(xs * xs + ys * ys)
    else:
        t = np.clip((xs * np.float32(dx) + ys * np.float32(dy)) / np.float32(length2), 0.0, 1.0)
        dist = np.hypot(xs - t * np.float32(dx), ys - t * np.float32(dy))

    radius = np.float32(r0) + t * np.float32(r1 - r0)
    opacity = np.float32(start.opacity) + t * np.float32(end.opacity - start.opacity)
    soft = min(max(1.0 - hardness, 0.0), 1.0)
    edge = np.minimum(np.maximum(radius * np.float32(soft), np.float32(1.0)), radius)
    u = np.clip((radius - dist) / edge, 0.0, 1.0)
    coverage = (u * u * (3.0 - 2.0 * u)) * np.clip(opacity, 0.0, 1.0)
    return (left, top, right, bottom), coverage.astype(np.float32, copy=False)
