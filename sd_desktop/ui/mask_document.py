"""The inpainting mask: one 8-bit buffer at image resolution (255 = repaint).

Kept free of Qt so the painting rules (stroke compositing, undo granularity) can be
reasoned about and tested on plain arrays; the widget only maps the view onto it.
"""

from __future__ import annotations

import numpy as np

from sd_desktop.ui.mask_brush import Box, BrushPoint, segment_coverage, union_box
from sd_desktop.ui.mask_history import MaskHistory, MaskPatch


class MaskDocument:
    """Mask pixels plus stroke state and history.

    A stroke accumulates its own coverage with ``max`` and is composited onto the
    mask as it was when the stroke began, so going back over the same spot within
    one stroke never darkens a soft edge twice (Krita calls this "wash" mode).
    """

    def __init__(self, width: int, height: int, history: MaskHistory | None = None) -> None:
        if width <= 0 or height <= 0:
            raise ValueError("mask size must be positive")
        self._mask = np.zeros((height, width), dtype=np.uint8)
        self._history = history if history is not None else MaskHistory()
        self._stroke_base: np.ndarray | None = None
        self._stroke_cover: np.ndarray | None = None
        self._stroke_erase = False
        self._stroke_hardness = 1.0
        self._stroke_box: Box | None = None
        self._last_point: BrushPoint | None = None

    @property
    def width(self) -> int:
        return int(self._mask.shape[1])

    @property
    def height(self) -> int:
        return int(self._mask.shape[0])

    @property
    def pixels(self) -> np.ndarray:
        """Read-only view of the live mask (H x W, uint8)."""
        view = self._mask.view()
        view.flags.writeable = False
        return view

    @property
    def in_stroke(self) -> bool:
        return self._stroke_base is not None

    @property
    def can_undo(self) -> bool:
        return self._history.can_undo and not self.in_stroke

    @property
    def can_redo(self) -> bool:
        return self._history.can_redo and not self.in_stroke

    @property
    def undo_depth(self) -> int:
        return self._history.undo_depth

    def is_empty(self) -> bool:
        return not bool(self._mask.any())

    # strokes ----------------------------------------------------------------

    def begin_stroke(self, erase: bool = False, hardness: float = 1.0) -> None:
        """Start a stroke; the first :meth:`stroke_to` paints a single dab."""
        if self.in_stroke:
            self.end_stroke()
        self._stroke_base = self._mask.copy()
        self._stroke_cover = np.zeros_like(self._mask)
        self._stroke_erase = erase
        self._stroke_hardness = float(hardness)
        self._stroke_box = None
        self._last_point = None

    def stroke_to(self, point: BrushPoint) -> Box | None:
        """Extend the stroke to ``point``; returns the box of pixels that changed."""
        if self._stroke_base is None or self._stroke_cover is None:
            raise RuntimeError("stroke_to() outside a stroke")
        start = self._last_point if self._last_point is not None else point
        self._last_point = point
        swept = segment_coverage(start, point, self._stroke_hardness, self.width, self.height)
        if swept is None:
            return None
        box, coverage = swept
        left, top, right, bottom = box
        cover = self._stroke_cover[top:bottom, left:right]
        np.maximum(cover, np.rint(coverage * 255.0).astype(np.uint8), out=cover)
        alpha = cover.astype(np.float32) / 255.0
        base = self._stroke_base[top:bottom, left:right].astype(np.float32)
        if self._stroke_erase:
            result = base * (1.0 - alpha)
        else:
            result = base + (255.0 - base) * alpha
        self._mask[top:bottom, left:right] = np.clip(np.rint(result), 0, 255).astype(np.uint8)
        self._stroke_box = union_box(self._stroke_box, box)
        return box

    def end_stroke(self) -> bool:
        """Finish the stroke as one undo step; True when any pixel changed."""
        base, box = self._stroke_base, self._stroke_box
        self._stroke_base = self._stroke_cover = None
        self._stroke_box = self._last_point = None
        if base is None or box is None:
            return False
        left, top, right, bottom = box
        before = base[top:bottom, left:right].copy()
        after = self._mask[top:bottom, left:right].copy()
        if np.array_equal(before, after):
            return False
        self._history.push(MaskPatch(box, before, after))
        return True

    def cancel_stroke(self) -> Box | None:
        """Abandon the stroke in progress, restoring the mask; returns the box restored."""
        base, box = self._stroke_base, self._stroke_box
        self._stroke_base = self._stroke_cover = None
        self._stroke_box = self._last_point = None
        if base is None or box is None:
            return None
        left, top, right, bottom = box
        self._mask[top:bottom, left:right] = base[top:bottom, left:right]
        return box

    # whole-mask operations ----------------------------------------------------

    def undo(self) -> Box | None:
        if self.in_stroke:
            return None
        patch = self._history.pop_undo()
        return self._apply(patch.box, patch.before) if patch else None

    def redo(self) -> Box | None:
        if self.in_stroke:
            return None
        patch = self._history.pop_redo()
        return self._apply(patch.box, patch.after) if patch else None

    def clear(self) -> Box | None:
        """Erase everything (one undo step); None when already empty."""
        rows = np.flatnonzero(self._mask.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(self._mask.any(axis=0))
        box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        return self._edit(box, np.zeros((box[3] - box[1], box[2] - box[0]), dtype=np.uint8))

    def invert(self) -> Box:
        return self._edit((0, 0, self.width, self.height), 255 - self._mask)

    def replace(self, pixels: np.ndarray) -> Box:
        """Swap in a whole mask of the same size (one undo step)."""
        if pixels.shape != self._mask.shape:
            raise ValueError(f"mask is {pixels.shape[::-1]}, expected {self._mask.shape[::-1]}")
        return self._edit((0, 0, self.width, self.height), pixels.astype(np.uint8, copy=False))

    def _edit(self, box: Box, after: np.ndarray) -> Box:
        if self.in_stroke:
            self.end_stroke()
        left, top, right, bottom = box
        before = self._mask[top:bottom, left:right].copy()
        after = np.array(after, dtype=np.uint8, copy=True)
        self._history.push(MaskPatch(box, before, after))
        return self._apply(box, after)

    def _apply(self, box: Box, pixels: np.ndarray) -> Box:
        left, top, right, bottom = box
        self._mask[top:bottom, left:right] = pixels
        return box
