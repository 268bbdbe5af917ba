"""A1111-style model hashes, computed once per file version and remembered in a small JSON file.

Hashing a 2-4 GB checkpoint reads every byte (seconds to a minute), so it never
runs on the UI thread and its result is cached by path, size and mtime: a file
replaced in place gets a new hash, an untouched one is never read again.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path

from sd_desktop.atomic_files import write_text_atomic
from sd_desktop.engine.checkpoints.checkpoint import SHORT_HASH_LENGTH
from sd_desktop.engine.checkpoints.diffusers_folder import folder_weights, is_diffusers_folder
from sd_desktop.engine.errors import EngineError

from .errors import Cancelled, LibraryError

CHUNK = 1 << 20
MAX_CACHE_BYTES = 4 * 1024 * 1024  # a damaged or hostile cache file is ignored, not parsed
CACHE_VERSION = 1

HashProgress = Callable[[int, int], None]  # (bytes read, bytes total)


def hashed_files(path: Path) -> list[Path]:
    """The files A1111's hash covers: the file itself, or a diffusers folder's UNet weights."""
    if is_diffusers_folder(path):
        try:
            return list(folder_weights(path)["unet"].files)
        except EngineError as exc:
            raise LibraryError(str(exc)) from exc
    return [path]


def file_version(path: Path) -> tuple[int, int]:
    """(total size, newest mtime_ns) of the hashed files: the cache key besides the path."""
    size, mtime = 0, 0
    for file in hashed_files(path):
        st = file.stat()
        size += st.st_size
        mtime = max(mtime, st.st_mtime_ns)
    return size, mtime


def sha256_files(
    files: list[Path],
    *,
    should_cancel: Callable[[], bool] | None = None,
    progress: HashProgress | None = None,
) -> str:
    """sha256 over the files' bytes in order (the same digest the engine's Checkpoint gives)."""
    total = sum(f.stat().st_size for f in files)
    done = 0
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    for file in files:
        try:
            with open(file, "rb", buffering=0) as f:
                while n := f.readinto(buffer):
                    if should_cancel is not None and should_cancel():
                        raise Cancelled("Hashing was stopped.")
                    digest.update(view[:n])
                    done += n
                    if progress is not None:
                        progress(done, total)
        except OSError as exc:
            raise LibraryError(f"Cannot read {file}: {exc.strerror or exc}.") from exc
    return digest.hexdigest()


class HashCache:
    """path -> sha256, valid while the file's size and mtime are unchanged. Thread-safe."""

    def __init__(self, cache_file: Path) -> None:
        self.cache_file = Path(cache_file)
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, int | str]] = self._read()

    def _read(self) -> dict[str, dict[str, int | str]]:
        try:
            if self.cache_file.stat().st_size > MAX_CACHE_BYTES:
                return {}
            data = json.loads(self.cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return {}
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            return {}
        entries = data.get("entries")
        if not isinstance(entries, dict):
            return {}
        return {
            k: v
            for k, v in entries.items()
            if isinstance(v, dict)
            and isinstance(v.get("sha256"), str)
            and isinstance(v.get("size"), int)
            and isinstance(v.get("mtime_ns"), int)
        }

    def _write(self) -> None:
        """Atomic: a crash mid-write leaves the old cache, never half a JSON file."""
        payload = json.dumps({"version": CACHE_VERSION, "entries": self._entries}, indent=0)
        try:
            write_text_atomic(self.cache_file, payload, durable=False)
        except OSError:
            pass  # a cache that cannot be written only costs a re-hash next time

    @staticmethod
    def _key(path: Path) -> str:
        return str(Path(path).expanduser().absolute())

    def sha256(self, path: Path) -> str | None:
        """The cached digest if the file is unchanged since it was hashed, else None."""
        try:
            size, mtime = file_version(Path(path))
        except (OSError, LibraryError):
            return None
        with self._lock:
            entry = self._entries.get(self._key(path))
        if entry and entry["size"] == size and entry["mtime_ns"] == mtime:
            return str(entry["sha256"])
        return None

    def short_hash(self, path: Path) -> str | None:
        digest = self.sha256(path)
        return digest[:SHORT_HASH_LENGTH] if digest else None

    def remember(self, path: Path, sha256: str) -> None:
        """Record a digest known from elsewhere (e.g. a download checked against its ETag)."""
        size, mtime = file_version(Path(path))
        with self._lock:
            self._entries[self._key(path)] = {"size": size, "mtime_ns": mtime, "sha256": sha256}
            self._write()

    def compute(
        self,
        path: Path,
        *,
        should_cancel: Callable[[], bool] | None = None,
        progress: HashProgress | None = None,
    ) -> str:
        """The short hash, from the cache or by reading the files (slow: call off the UI thread)."""
        cached = self.short_hash(path)
        if cached:
            return cached
        path = Path(path)
        try:
            before = file_version(path)
        except OSError as exc:
            raise LibraryError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
        digest = sha256_files(hashed_files(path), should_cancel=should_cancel, progress=progress)
        if file_version(path) == before:  # changed while being read: do not cache a mix
            with self._lock:
                self._entries[self._key(path)] = {
                    "size": before[0],
                    "mtime_ns": before[1],
                    "sha256": digest,
                }
                self._write()
        return digest[:SHORT_HASH_LENGTH]

    def forget_missing(self) -> None:
        """Drop entries whose files are gone, so the cache does not grow forever."""
        with self._lock:
            kept = {k: v for k, v in self._entries.items() if Path(k).exists()}
            if len(kept) != len(self._entries):
                self._entries = kept
                self._write()
