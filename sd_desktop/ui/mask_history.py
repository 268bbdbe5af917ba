"""Bounded undo/redo for the mask, one entry per stroke or whole-mask operation.

Entries keep only the changed rectangle (before and after), so a small touch-up on
a large image costs kilobytes; the byte budget stops a long session from growing
without limit even when every step is a full-image operation.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from sd_desktop.ui.mask_brush import Box


@dataclass(frozen=True, slots=True)
class MaskPatch:
    """The pixels of ``box`` before and after one edit."""

    box: Box
    before: np.ndarray
    after: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.before.nbytes + self.after.nbytes)


class MaskHistory:
    """Undo and redo stacks of :class:`MaskPatch`, trimmed oldest-first."""

    def __init__(self, max_steps: int = 100, max_bytes: int = 256 * 1024 * 1024) -> None:
        self._max_steps = max(1, max_steps)
        self._max_bytes = max(1, max_bytes)
        self._undo: deque[MaskPatch] = deque()
        self._redo: list[MaskPatch] = []
        self._bytes = 0

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_depth(self) -> int:
        return len(self._undo)

    def push(self, patch: MaskPatch) -> None:
        """Record a new edit; anything that could have been redone is dropped."""
        self._redo.clear()
        self._undo.append(patch)
        self._bytes = sum(p.nbytes for p in self._undo)
        while len(self._undo) > 1 and (
            len(self._undo) > self._max_steps or self._bytes > self._max_bytes
        ):
            self._bytes -= self._undo.popleft().nbytes

    def pop_undo(self) -> MaskPatch | None:
        if not self._undo:
            return None
        patch = self._undo.pop()
        self._bytes -= patch.nbytes
        self._redo.append(patch)
        return patch

    def pop_redo(self) -> MaskPatch | None:
        if not self._redo:
            return None
        patch = self._redo.pop()
        self._undo.append(patch)
        self._bytes += patch.nbytes
        return patch

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._bytes = 0
