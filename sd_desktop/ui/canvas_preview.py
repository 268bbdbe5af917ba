"""Soft live previews.

A fast preview is at latent resolution (64×64 for a 512 px image). Stretched eight
times with plain bilinear filtering it still reads as a grid of pixel blocks, which
looks like noise rather than a picture taking shape. Enlarging it a few times and
blurring by about one preview pixel gives the soft, emerging picture people expect;
the painter's bilinear scaling then covers the rest of the way to the screen.
"""

from __future__ import annotations

from PIL import Image, ImageFilter
from PySide6.QtCore import QSize
from PySide6.QtGui import QImage

from sd_desktop.ui.canvas_image_io import pil_from_qimage, qimage_from_pil

# Previews at least this many times smaller than the image they stand for are softened;
# full-size (VAE) previews are shown as they are.
SOFTEN_FROM = 2.0
MAX_UPSCALE = 4
# The enlarged copy stays small, so softening costs a few milliseconds per step.
MAX_SOFT_PIXELS = 1_500_000


def soften_preview(image: QImage, target: QSize | None) -> QImage:
    """``image`` enlarged and blurred when it is a low-resolution stand-in for ``target``
    (the size of the picture being made); otherwise ``image`` unchanged."""
    if image.isNull() or target is None or target.isEmpty():
        return image
    factor = min(target.width() / image.width(), target.height() / image.height())
    if factor < SOFTEN_FROM:
        return image
    scale = min(MAX_UPSCALE, int(factor))
    while scale > 1 and image.width() * image.height() * scale * scale > MAX_SOFT_PIXELS:
        scale -= 1
    if scale < 2:
        return image
    size = (image.width() * scale, image.height() * scale)
    enlarged = pil_from_qimage(image).resize(size, Image.Resampling.BILINEAR)
    return qimage_from_pil(enlarged.filter(ImageFilter.BoxBlur(scale / 2)))
