"""Zoom and pan of the canvas: the mapping between widget and image coordinates.

The mask is always edited in image pixels; only this mapping knows about zoom, so
the same stroke gives the same mask at any magnification.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRect, QRectF, QSize

ZOOM_PRESETS = (
    1 / 32, 1 / 24, 1 / 16, 1 / 12, 1 / 8, 1 / 6, 1 / 4, 1 / 3, 1 / 2, 2 / 3,
    1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0,
)  # fmt: skip
"""Levels that keyboard zoom steps through, as in most paint programs."""


class ViewTransform:
    """Scale plus offset (widget position of the image's top-left corner)."""

    def __init__(self, min_zoom: float = 1 / 32, max_zoom: float = 32.0, margin: int = 16) -> None:
        self.min_zoom = min_zoom
        self.max_zoom = max_zoom
        self.margin = margin
        self.scale = 1.0
        self.offset = QPointF(0.0, 0.0)
        self.fit_mode = True

    def to_image(self, point: QPointF) -> QPointF:
        return (point - self.offset) / self.scale

    def to_widget(self, point: QPointF) -> QPointF:
        return point * self.scale + self.offset

    def image_rect(self, doc: QSize) -> QRectF:
        """Where the whole image lies in widget coordinates."""
        return QRectF(
            self.offset.x(), self.offset.y(), doc.width() * self.scale, doc.height() * self.scale
        )

    def widget_rect(
        self, left: float, top: float, right: float, bottom: float, pad: int = 2
    ) -> QRect:
        """Widget pixels covering an image-space box, padded for anti-aliasing."""
        x0 = math.floor(left * self.scale + self.offset.x()) - pad
        y0 = math.floor(top * self.scale + self.offset.y()) - pad
        x1 = math.ceil(right * self.scale + self.offset.x()) + pad
        y1 = math.ceil(bottom * self.scale + self.offset.y()) + pad
        return QRect(x0, y0, x1 - x0, y1 - y0)

    def clamp_scale(self, scale: float) -> float:
        return min(max(scale, self.min_zoom), self.max_zoom)

    def fit(self, doc: QSize, viewport: QSize) -> None:
        """Whole image visible and centred, with a margin; enlarges small images too."""
        avail_w = max(viewport.width() - 2 * self.margin, 1)
        avail_h = max(viewport.height() - 2 * self.margin, 1)
        self.scale = self.clamp_scale(min(avail_w / doc.width(), avail_h / doc.height()))
        self.offset = QPointF(
            round((viewport.width() - doc.width() * self.scale) / 2),
            round((viewport.height() - doc.height() * self.scale) / 2),
        )
        self.fit_mode = True

    def zoom_at(self, scale: float, anchor: QPointF) -> bool:
        """Zoom keeping the image point under ``anchor`` fixed; False if nothing changed."""
        scale = self.clamp_scale(scale)
        if math.isclose(scale, self.scale, rel_tol=1e-9):
            return False
        fixed = self.to_image(anchor)
        self.scale = scale
        self.offset = anchor - fixed * scale
        self.fit_mode = False
        return True

    def pan_to(self, offset: QPointF, doc: QSize, viewport: QSize) -> None:
        self.offset = QPointF(offset)
        self.fit_mode = False
        self.clamp(doc, viewport)

    def clamp(self, doc: QSize, viewport: QSize, keep: int = 48) -> None:
        """Never let the image leave the view entirely; some of it stays grabbable."""
        width, height = doc.width() * self.scale, doc.height() * self.scale
        keep_x, keep_y = min(keep, width), min(keep, height)
        x = min(max(self.offset.x(), keep_x - width), viewport.width() - keep_x)
        y = min(max(self.offset.y(), keep_y - height), viewport.height() - keep_y)
        self.offset = QPointF(x, y)

    def keep_centre_on_resize(self, old: QSize, new: QSize) -> None:
        self.offset += QPointF((new.width() - old.width()) / 2, (new.height() - old.height()) / 2)

    def preset_step(self, up: bool) -> float:
        """Next zoom level above (or below) the current one."""
        if up:
            return next((z for z in ZOOM_PRESETS if z > self.scale * 1.001), self.max_zoom)
        return next((z for z in reversed(ZOOM_PRESETS) if z < self.scale / 1.001), self.min_zoom)
