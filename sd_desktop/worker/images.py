"""Pixels from the engine to QImages the UI can paint.

Conversion happens in the worker thread so the UI thread only swaps a pixmap. Every
QImage made here owns a copy of its pixels: a QImage that merely wraps a numpy buffer
would point at freed memory once the array is collected.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image
from PySide6.QtGui import QImage


def rgb_to_qimage(pixels: np.ndarray) -> QImage:
    """(H, W, 3) uint8 RGB -> a QImage that owns its data."""
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) pixels, got shape {pixels.shape}")
    array = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width, _ = array.shape
    view = QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return view.copy()


def pil_to_qimage(image: Image.Image) -> QImage:
    return rgb_to_qimage(np.asarray(image.convert("RGB")))


def tile_batch(batch: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) -> one (rows*H, cols*W, 3) grid, nearly square, so a batch preview
    shows every image at once as A1111's grid does. Empty cells stay black."""
    count, height, width, channels = batch.shape
    if count == 1:
        return batch[0]
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    grid = np.zeros((rows * height, cols * width, channels), dtype=batch.dtype)
    for i in range(count):
        r, c = divmod(i, cols)
        grid[r * height : (r + 1) * height, c * width : (c + 1) * width] = batch[i]
    return grid


def batch_to_qimage(batch: np.ndarray) -> QImage:
    """(B, H, W, 3) uint8 -> one QImage (a grid when B > 1)."""
    return rgb_to_qimage(tile_batch(batch))
