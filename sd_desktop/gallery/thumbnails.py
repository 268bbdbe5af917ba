"""Small JPEG thumbnails cached on disk, so scrolling 10,000 images never decodes a full PNG twice.

Plain Pillow and files: safe to call from any thread (writes are atomic renames, and two
threads making the same thumbnail just produce the same file). The Qt side only schedules it.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from PIL import Image

from sd_desktop.atomic_files import atomic_output
from sd_desktop.gallery.locations import default_thumbnail_cache

DEFAULT_SIZE = 256
# Anything bigger is not a generated image; refuse it rather than decode gigapixels.
MAX_SOURCE_PIXELS = 64 * 1024 * 1024
_BACKGROUND = (128, 128, 128)  # behind transparent pixels, neutral on light and dark themes


class ThumbnailError(Exception):
    """The source image could not be read; str() is one line."""


class ThumbnailCache:
    """Thumbnails of at most `size`x`size` px in `folder`, keyed by source path, mtime and
    file size, so an edited or replaced image never shows a stale thumbnail."""

    def __init__(self, folder: str | Path | None = None, size: int = DEFAULT_SIZE) -> None:
        self.folder = Path(folder) if folder is not None else default_thumbnail_cache()
        self.size = size

    def cache_path(self, source: Path) -> Path:
        """Where the thumbnail of `source` is (or would be); raises OSError if source is gone."""
        stat = source.stat()
        key = f"{source.resolve()}|{stat.st_mtime_ns}|{stat.st_size}|{self.size}"
        digest = hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()
        return self.folder / digest[:2] / f"{digest}.jpg"

    def get(self, source: Path) -> Path:
        """The cached thumbnail of `source`, made now if needed."""
        try:
            target = self.cache_path(source)
        except OSError as exc:
            raise ThumbnailError(f"Cannot read {source.name}: {exc.strerror or exc}.") from exc
        if target.exists():
            return target
        thumb = self._render(source)
        with atomic_output(target, durable=False, suffix=".jpg") as handle:
            thumb.save(handle, format="JPEG", quality=88)
        return target

    def _render(self, source: Path) -> Image.Image:
        try:
            with Image.open(source) as image:
                if image.width * image.height > MAX_SOURCE_PIXELS:
                    raise ThumbnailError(f"{source.name} is too large to preview.")
                image.draft("RGB", (self.size, self.size))
                image.thumbnail((self.size, self.size), Image.Resampling.LANCZOS)
                return _flatten(image)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise ThumbnailError(f"Cannot read {source.name}: {exc}.") from exc

    def discard(self, source: Path) -> None:
        """Drop the thumbnail of `source` (call before the source is deleted)."""
        with contextlib.suppress(OSError):
            self.cache_path(source).unlink()

    def prune(self, max_bytes: int) -> int:
        """Delete the least recently written thumbnails until the cache fits; returns how
        many went. Orphans of deleted images age out this way."""
        entries: list[tuple[float, int, Path]] = []
        for path in self.folder.glob("*/*.jpg"):
            with contextlib.suppress(OSError):
                stat = path.stat()
                entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, path in sorted(entries):
            if total <= max_bytes:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size
                removed += 1
        return removed


def _flatten(image: Image.Image) -> Image.Image:
    """JPEG has no alpha: composite transparent images on a neutral grey."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, _BACKGROUND)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")
