"""Turning untrusted image files, bytes and clipboard data into canvas images.

Everything dropped or pasted is treated as hostile: only raster formats whose Pillow
decoders run no external programs are opened (EPS would start Ghostscript), the
header's size is checked before any pixel is decoded, and Pillow's decompression
bomb check stays on. Failures become :class:`ImageLoadError` with a one-line message.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from PySide6.QtCore import QMimeData
from PySide6.QtGui import QImage, QPainter

SAFE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF", "PPM")
"""Pillow decoders we accept; all are pure decoders with no helper programs."""

FILE_DIALOG_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.gif *.tif *.tiff *.ppm)"


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Largest image the canvas accepts; SD 1.x works far below these."""

    max_side: int = 8192
    max_pixels: int = 64_000_000
    max_file_bytes: int = 256 * 1024 * 1024

    def check(self, width: int, height: int, what: str = "The image") -> None:
        if width <= 0 or height <= 0:
            raise ImageLoadError(f"{what} is empty ({width}×{height}).")
        if width > self.max_side or height > self.max_side:
            raise ImageLoadError(
                f"{what} is {width}×{height} px; the canvas accepts at most "
                f"{self.max_side} px per side."
            )
        if width * height > self.max_pixels:
            raise ImageLoadError(
                f"{what} is {width * height / 1e6:.0f} megapixels; the canvas accepts at most "
                f"{self.max_pixels / 1e6:.0f}."
            )


DEFAULT_LIMITS = ImageLimits()


class ImageLoadError(ValueError):
    """An image that cannot or must not be opened; str() is shown to the user."""


def read_image_file(path: str | os.PathLike[str], limits: ImageLimits = DEFAULT_LIMITS) -> QImage:
    """Decode an image file as an opaque RGB QImage (alpha flattened onto white)."""
    return qimage_from_pil(_rgb(_open_file(path, limits)))


def read_image_bytes(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> QImage:
    """Decode encoded image bytes (drag-and-drop or clipboard payloads)."""
    return qimage_from_pil(_rgb(_open_bytes(data, "The image data", limits)))


def read_mask_file(
    path: str | os.PathLike[str], limits: ImageLimits = DEFAULT_LIMITS
) -> np.ndarray:
    """Decode a mask file as H×W uint8 (255 = repaint).

    Transparent pixels count as "keep", so masks exported as alpha from other paint
    programs load as expected.
    """
    image = _open_file(path, limits)
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, rgba)
    return np.asarray(_eight_bit(image).convert("L"), dtype=np.uint8).copy()


def check_qimage(image: QImage, limits: ImageLimits = DEFAULT_LIMITS) -> QImage:
    """Validate an already decoded QImage and return it as opaque RGB32."""
    if image.isNull():
        raise ImageLoadError("The image is empty or could not be decoded.")
    limits.check(image.width(), image.height())
    if image.hasAlphaChannel():
        flat = QImage(image.size(), QImage.Format.Format_RGB32)
        flat.fill(0xFFFFFFFF)
        painter = QPainter(flat)
        painter.drawImage(0, 0, image)
        painter.end()
        return flat
    return image.convertToFormat(QImage.Format.Format_RGB32)


def check_pil(image: Image.Image, limits: ImageLimits = DEFAULT_LIMITS) -> QImage:
    """Validate an in-memory PIL image (e.g. from the gallery) and convert it."""
    limits.check(*image.size)
    return qimage_from_pil(_rgb(image))


def mime_has_image(mime: QMimeData | None) -> bool:
    """Whether a drag or the clipboard offers something the canvas could open."""
    if mime is None:
        return False
    if mime.hasUrls():
        return any(url.isLocalFile() or url.scheme() in ("http", "https") for url in mime.urls())
    return mime.hasImage() or any(fmt.startswith("image/") for fmt in mime.formats())


def local_image_path(mime: QMimeData) -> Path | None:
    """The dropped file to open, or None when the data carries the image itself."""
    if not mime.hasUrls():
        return None
    url = mime.urls()[0]
    if not url.isLocalFile():
        raise ImageLoadError("Only local image files can be opened; save it first.")
    return Path(url.toLocalFile())


def read_image_mime(mime: QMimeData, limits: ImageLimits = DEFAULT_LIMITS) -> QImage:
    """The image inside drag or clipboard data: encoded bytes (image/png, ...) first,
    read with the same checks and conversions as a file, else Qt's decoded image."""
    try:
        for fmt in mime.formats():
            if fmt.startswith("image/"):
                return read_image_bytes(bytes(mime.data(fmt).data()), limits)
        return check_qimage(QImage(mime.imageData()), limits)
    except ImageLoadError:
        raise
    except (TypeError, ValueError) as exc:
        raise ImageLoadError(f"The dropped data is not a usable image ({exc}).") from exc


def qimage_from_pil(image: Image.Image) -> QImage:
    """Copy an RGB, RGBA or L PIL image into a QImage that owns its pixels."""
    if image.mode == "L":
        fmt, channels = QImage.Format.Format_Grayscale8, 1
    elif image.mode == "RGBA":
        fmt, channels = QImage.Format.Format_RGBA8888, 4
    else:
        image = image.convert("RGB")
        fmt, channels = QImage.Format.Format_RGB888, 3
    data = image.tobytes()
    wrapped = QImage(data, image.width, image.height, image.width * channels, fmt)
    if fmt == QImage.Format.Format_RGB888:
        return wrapped.convertToFormat(QImage.Format.Format_RGB32)
    return wrapped.copy()


def qimage_to_array(image: QImage, fmt: QImage.Format, channels: int) -> np.ndarray:
    """Copy a QImage's pixels into an H×W(×C) uint8 array, dropping row padding."""
    converted = image.convertToFormat(fmt)
    width, height, stride = converted.width(), converted.height(), converted.bytesPerLine()
    raw = np.frombuffer(converted.constBits(), dtype=np.uint8, count=stride * height)
    rows = raw.reshape(height, stride)[:, : width * channels]
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rows.reshape(shape).copy()


def pil_from_qimage(image: QImage) -> Image.Image:
    """RGB PIL copy of a QImage (what the engine consumes)."""
    return Image.fromarray(qimage_to_array(image, QImage.Format.Format_RGB888, 3), "RGB")


def _open_file(path: str | os.PathLike[str], limits: ImageLimits) -> Image.Image:
    name = Path(path).name
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise ImageLoadError(f"Cannot open {name}: {exc.strerror or exc}.") from None
    if size > limits.max_file_bytes:
        raise ImageLoadError(
            f"{name} is {size / 2**20:.0f} MiB; images over "
            f"{limits.max_file_bytes / 2**20:.0f} MiB are not opened."
        )
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ImageLoadError(f"Cannot read {name}: {exc.strerror or exc}.") from None
    return _open_bytes(data, name, limits)


def _open_bytes(data: bytes, name: str, limits: ImageLimits) -> Image.Image:
    if len(data) > limits.max_file_bytes:
        raise ImageLoadError(f"{name} is too large to open.")
    if not data:
        raise ImageLoadError(f"{name} is empty.")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=SAFE_FORMATS)
            limits.check(image.width, image.height, name)
            image.load()
            image = ImageOps.exif_transpose(image) or image
        except ImageLoadError:
            raise
        except UnidentifiedImageError:
            raise ImageLoadError(
                f"{name} is not a supported image (PNG, JPEG, WebP, BMP, GIF or TIFF)."
            ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageLoadError(f"{name} is too large to decode safely.") from None
        except MemoryError:
            raise ImageLoadError(f"{name} is too large to decode.") from None
        except Exception as exc:  # any decoder failure means a bad file, never a crash
            raise ImageLoadError(f"{name} is damaged or truncated ({_short(exc)}).") from None
    return image


def _has_alpha(image: Image.Image) -> bool:
    return "A" in image.getbands() or "transparency" in image.info


def _eight_bit(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit integer images to 8 bits instead of clipping them."""
    if image.mode.startswith("I;16"):
        image = image.convert("I")
    if image.mode == "I":
        return image.point(lambda v: v * (1 / 256)).convert("L")
    return image


def _rgb(image: Image.Image) -> Image.Image:
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return _eight_bit(image).convert("RGB")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]
