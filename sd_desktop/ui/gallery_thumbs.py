"""Thumbnail loading for the gallery views, off the UI thread.

Only visible items ask for thumbnails (the views call data() while painting), and the most
recent request is served first, so after a fast scroll the images now on screen appear
first instead of the hundreds scrolled past. Decoded pixmaps are kept in a bounded LRU.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage, QPixmap

from sd_desktop.gallery import ThumbnailCache, ThumbnailError

# Requests beyond this are the oldest ones, long scrolled out of view: dropped, and asked
# for again by the view if they come back on screen.
_MAX_PENDING = 256


class _Job(QRunnable):
    def __init__(self, loader: ThumbnailLoader) -> None:
        super().__init__()
        self._loader = loader

    def run(self) -> None:
        self._loader._work()


class ThumbnailLoader(QObject):
    """Shared by every gallery view: one disk cache, one thread pool, one pixmap LRU."""

    thumbnail_ready = Signal(str)
    """A thumbnail for this source path is now available from pixmap() (or has failed)."""

    _loaded = Signal(str, QImage, str)  # worker -> UI thread: path, image, error

    def __init__(
        self,
        cache: ThumbnailCache,
        parent: QObject | None = None,
        *,
        threads: int = 2,
        memory_items: int = 600,
    ) -> None:
        super().__init__(parent)
        self._cache = cache
        self._memory_items = memory_items
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max(1, threads))
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, None] = OrderedDict()
        self._in_flight: set[str] = set()
        self._workers = 0
        self._closed = False
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._failed: dict[str, str] = {}
        self._loaded.connect(self._on_loaded)

    @property
    def cache(self) -> ThumbnailCache:
        return self._cache

    def pixmap(self, path: Path | str) -> QPixmap | None:
        """The thumbnail if it is in memory; otherwise None, and it is queued for loading."""
        key = str(path)
        pixmap = self._pixmaps.get(key)
        if pixmap is not None:
            self._pixmaps.move_to_end(key)
            return pixmap
        if key not in self._failed:
            self._request(key)
        return None

    def error(self, path: Path | str) -> str | None:
        """Why the thumbnail could not be made, when it could not."""
        return self._failed.get(str(path))

    def forget(self, path: Path | str) -> None:
        """Drop memory and disk copies (the image is being deleted)."""
        key = str(path)
        self._pixmaps.pop(key, None)
        self._failed.pop(key, None)
        self._cache.discard(Path(key))

    def is_idle(self) -> bool:
        with self._lock:
            return not self._pending and not self._in_flight

    def shutdown(self) -> None:
        """Stop taking work and wait for the running jobs; call before the app quits."""
        with self._lock:
            self._closed = True
            self._pending.clear()
        self._pool.waitForDone(5000)

    def _request(self, key: str) -> None:
        with self._lock:
            if self._closed or key in self._in_flight:
                return
            if key in self._pending:
                self._pending.move_to_end(key)
            else:
                self._pending[key] = None
                while len(self._pending) > _MAX_PENDING:
                    self._pending.popitem(last=False)
            if self._workers >= self._pool.maxThreadCount():
                return
            self._workers += 1
        self._pool.start(_Job(self))

    def _work(self) -> None:
        """Runs on a pool thread: serve the newest requests until none are left."""
        while True:
            with self._lock:
                if self._closed or not self._pending:
                    self._workers -= 1
                    return
                key, _ = self._pending.popitem(last=True)
                self._in_flight.add(key)
            image, error = QImage(), ""
            try:
                image = QImage(str(self._cache.get(Path(key))))
                if image.isNull():
                    error = "The thumbnail could not be decoded."
            except ThumbnailError as exc:
                error = str(exc)
            except OSError as exc:
                error = f"Cannot write the thumbnail cache: {exc}"
            except Exception as exc:  # a worker must never die and stall the queue
                error = f"Cannot make a thumbnail: {exc}"
            with self._lock:
                closed = self._closed
            if not closed:
                self._loaded.emit(key, image, error)

    @Slot(str, QImage, str)
    def _on_loaded(self, key: str, image: QImage, error: str) -> None:
        with self._lock:
            self._in_flight.discard(key)
        if error:
            self._failed[key] = error
        else:
            self._pixmaps[key] = QPixmap.fromImage(image)
            while len(self._pixmaps) > self._memory_items:
                self._pixmaps.popitem(last=False)
        self.thumbnail_ready.emit(key)
