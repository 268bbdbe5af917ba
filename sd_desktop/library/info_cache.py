"""What a scan learnt about each model file, kept on disk between runs.

Describing a full-size checkpoint reads only its header, but checking the shapes
against the networks costs a few hundred milliseconds per file; a folder of 50
models would delay every start by seconds. Entries are keyed by path, size and
mtime (a changed file is described again) and by the app version (a newer
engine may judge a file differently).
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from sd_desktop import __version__
from sd_desktop.atomic_files import write_text_atomic

from .scan import ModelEntry

MAX_BYTES = 8 * 1024 * 1024
MAX_ENTRIES = 5000
CACHE_VERSION = 1
# Where a file was found is the scan's business, not a property of the file.
_CONTEXT = ("path", "source", "root")
_STORED = tuple(f.name for f in fields(ModelEntry) if f.name not in _CONTEXT)


class InfoCache:
    """path -> described ModelEntry fields, valid while size and mtime match. Thread-safe."""

    def __init__(self, cache_file: Path) -> None:
        self.cache_file = Path(cache_file)
        self._lock = threading.Lock()
        self._dirty = False
        self._entries: dict[str, dict[str, Any]] = self._read()

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            if self.cache_file.stat().st_size > MAX_BYTES:
                return {}
            data = json.loads(self.cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return {}
        if (
            not isinstance(data, dict)
            or data.get("version") != CACHE_VERSION
            or data.get("app") != __version__
            or not isinstance(data.get("entries"), dict)
        ):
            return {}
        return {
            k: v
            for k, v in data["entries"].items()
            if isinstance(v, dict) and set(v) == set(_STORED)
        }

    def get(self, path: Path, source: str, root: Path) -> ModelEntry | None:
        """The remembered entry for an unchanged file, placed in this scan's context."""
        try:
            st = path.stat()
        except OSError:
            return None
        with self._lock:
            stored = self._entries.get(str(path))
        if not stored or stored["size_bytes"] != st.st_size or stored["mtime_ns"] != st.st_mtime_ns:
            return None
        try:
            return ModelEntry(path=path, source=source, root=root, **stored)
        except TypeError:
            return None

    def put(self, entry: ModelEntry) -> None:
        """Remember a single file's entry (folders change inside; they are re-described)."""
        if entry.path.is_dir():
            return
        try:
            st = entry.path.stat()
        except OSError:
            return
        record = {k: v for k, v in asdict(entry).items() if k in _STORED}
        record["size_bytes"], record["mtime_ns"] = st.st_size, st.st_mtime_ns
        with self._lock:
            if self._entries.get(str(entry.path)) != record:
                self._entries[str(entry.path)] = record
                self._dirty = True

    def save(self) -> None:
        """Write if anything changed; gone files are dropped. Atomic; failures cost a re-scan."""
        with self._lock:
            if not self._dirty:
                return
            kept = {k: v for k, v in self._entries.items() if Path(k).exists()}
            self._entries = dict(list(kept.items())[-MAX_ENTRIES:])
            payload = {"version": CACHE_VERSION, "app": __version__, "entries": self._entries}
            self._dirty = False
        try:
            write_text_atomic(self.cache_file, json.dumps(payload), durable=False)
        except OSError:
            pass
