"""The translucent colour layer that shows the mask over the picture.

Kept as a QImage the size of the mask and recoloured only inside the box a brush dab
touched, so painting on a large image costs what the dab costs, not a whole redraw.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QImage

from sd_desktop.ui.mask_brush import Box

DEFAULT_COLOUR = QColor(255, 32, 96)


class MaskOverlay:
    """Mask values 0..255 shown as premultiplied colour, with a near-opaque contour."""

    def __init__(self, colour: QColor = DEFAULT_COLOUR, opacity: float = 0.5) -> None:
        self._image: QImage | None = None
        self._pixels: np.ndarray | None = None
        self.set_colour(colour, opacity)

    @property
    def image(self) -> QImage | None:
        """What to draw over the picture (None with no mask)."""
        return self._image

    def set_colour(self, colour: QColor, opacity: float) -> None:
        """Shows from the next rebuild() or refresh(). The colour table is made here, once, not
        at every brush dab."""
        self._fill, self._outline = _colour_table(QColor(colour), min(max(opacity, 0.0), 1.0))

    def clear(self) -> None:
        self._image = self._pixels = None

    def rebuild(self, mask: np.ndarray | None) -> None:
        """A new overlay for `mask` (H x W uint8), e.g. after the image changed size."""
        if mask is None:
            self.clear()
            return
        height, width = mask.shape
        image = QImage(width, height, QImage.Format.Format_RGBA8888_Premultiplied)
        image.fill(0)
        raw = np.frombuffer(image.bits(), dtype=np.uint8)
        rows = raw.reshape(height, image.bytesPerLine())
        self._image = image
        # One uint32 per pixel whose bytes are R, G, B, A in memory, like the QImage.
        self._pixels = rows[:, : width * 4].view(np.uint32)
        self.refresh(mask, (0, 0, width, height))

    def refresh(self, mask: np.ndarray, box: Box) -> Box | None:
        """Recolour inside `box` from `mask`; returns the box actually redrawn (one pixel
        larger, as a pixel's contour depends on its neighbours), or None with no overlay.

        Pixels on the mask's half-strength contour are drawn nearly opaque, so the edge
        stays legible on pictures of any colour.
        """
        if self._pixels is None or mask.shape != self._pixels.shape:
            return None
        height, width = mask.shape
        left, top = max(box[0] - 1, 0), max(box[1] - 1, 0)
        right, bottom = min(box[2] + 1, width), min(box[3] + 1, height)
        if left >= right or top >= bottom:
            return None
        inside = np.pad(
            mask[max(top - 1, 0) : bottom + 1, max(left - 1, 0) : right + 1] >= 128,
            ((int(top == 0), int(bottom == height)), (int(left == 0), int(right == width))),
            mode="edge",
        )
        core = inside[1:-1, 1:-1]
        edge = core & ~(inside[:-2, 1:-1] & inside[2:, 1:-1] & inside[1:-1, :-2] & inside[1:-1, 2:])
        target = self._pixels[top:bottom, left:right]
        target[...] = self._fill[mask[top:bottom, left:right]]
        target[edge] = self._outline
        return left, top, right, bottom


def _colour_table(c: QColor, opacity: float) -> tuple[np.ndarray, np.ndarray]:
    """Packed premultiplied RGBA for every mask value (a lookup table) and the outline."""
    colour = np.array([c.red(), c.green(), c.blue(), 255], dtype=np.uint32)
    levels = np.arange(256, dtype=np.uint32)
    alpha = (levels * round(255 * opacity) + 127) // 255
    fill = ((alpha[:, None] * colour[None, :] + 127) // 255).astype(np.uint8)
    edge_alpha = max(round(255 * min(opacity * 1.8, 0.9)), 1)
    outline = ((edge_alpha * colour + 127) // 255).astype(np.uint8)
    return fill.view(np.uint32).ravel(), outline.view(np.uint32)
