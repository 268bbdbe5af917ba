"""The mask's colour layer: fill strength follows the mask, the contour stands out,
and partial refreshes agree with a full rebuild."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor

from sd_desktop.ui.mask_overlay import MaskOverlay


def _rgba(overlay: MaskOverlay) -> np.ndarray:
    image = overlay.image
    assert image is not None
    raw = np.frombuffer(image.constBits(), dtype=np.uint8)
    rows = raw.reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width() * 4].reshape(image.height(), image.width(), 4).copy()


def test_fill_follows_the_mask_and_the_contour_is_stronger(qapp) -> None:  # type: ignore[no-untyped-def]
    mask = np.zeros((20, 30), np.uint8)
    mask[5:15, 10:20] = 255
    overlay = MaskOverlay(QColor(255, 0, 0), opacity=0.5)
    overlay.rebuild(mask)
    rgba = _rgba(overlay)
    assert rgba[0, 0].tolist() == [0, 0, 0, 0]  # unmasked: fully transparent
    assert rgba[10, 15].tolist() == [128, 0, 0, 128]  # inside: half-strength red
    assert rgba[5, 15, 3] > rgba[10, 15, 3] and rgba[10, 10, 3] > rgba[10, 15, 3]  # edges
    assert rgba[5, 15, 3] == round(255 * 0.9)


def test_a_partial_refresh_matches_a_rebuild(qapp) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    mask = (rng.random((40, 50)) > 0.6).astype(np.uint8) * 255
    overlay = MaskOverlay()
    overlay.rebuild(mask)
    mask[10:20, 12:30] = 255  # a dab
    mask[25:27, 0:5] = 0
    assert overlay.refresh(mask, (12, 10, 30, 20)) == (11, 9, 31, 21)
    assert overlay.refresh(mask, (0, 25, 5, 27)) == (0, 24, 6, 28)
    fresh = MaskOverlay()
    fresh.rebuild(mask)
    assert np.array_equal(_rgba(overlay), _rgba(fresh))


def test_colour_change_and_clear(qapp) -> None:  # type: ignore[no-untyped-def]
    mask = np.full((8, 8), 255, np.uint8)
    overlay = MaskOverlay()
    overlay.set_colour(QColor(0, 0, 255), 1.0)
    overlay.rebuild(mask)
    assert _rgba(overlay)[4, 4].tolist() == [0, 0, 255, 255]
    overlay.clear()
    assert overlay.image is None
    assert overlay.refresh(mask, (0, 0, 8, 8)) is None  # nothing to refresh, no error
