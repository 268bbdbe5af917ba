"""The user's model library: the app's models folder, folders they added, and the HF cache.

Qt-free so the scan can run on a worker thread and be tested without a display.
Which folders were added is the caller's to store (the UI keeps it in its
settings); `on_folders_changed` tells it when the list changes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from .hashes import HashCache
from .info_cache import InfoCache
from .paths import cache_folder, default_models_folder, hf_hub_cache_folder
from .scan import (
    SOURCE_ADDED,
    SOURCE_HF,
    SOURCE_MODELS,
    ModelEntry,
    describe_entry,
    scan_folder,
    scan_hf_cache,
)

HASH_CACHE_NAME = "model-hashes.json"
INFO_CACHE_NAME = "model-info.json"  # kept beside the hash cache
MAX_FOLDERS = 50


class ModelLibrary:
    """Where models are looked for, and what was found there.

    Paths default to the per-user platformdirs folders; tests and the self-test
    pass their own. scan() is safe to call from any thread.
    """

    def __init__(
        self,
        models_folder: Path | None = None,
        *,
        folders: Iterable[Path | str] = (),
        hash_cache_file: Path | None = None,
        hf_cache: Path | None = None,
        use_hf_cache: bool = True,
        on_folders_changed: Callable[[list[Path]], None] | None = None,
    ) -> None:
        self.models_folder = Path(models_folder) if models_folder else default_models_folder()
        self._hf_cache = Path(hf_cache) if hf_cache else None
        self.use_hf_cache = use_hf_cache
        hash_cache_file = hash_cache_file or cache_folder() / HASH_CACHE_NAME
        self.hashes = HashCache(hash_cache_file)
        self.infos = InfoCache(Path(hash_cache_file).with_name(INFO_CACHE_NAME))
        self.on_folders_changed = on_folders_changed
        self._lock = threading.Lock()
        self._described: dict[tuple[str, str, int, int], ModelEntry] = {}
        self._folders: list[Path] = []
        for folder in folders:
            self._add(Path(folder))

    # -- folders --------------------------------------------------------------------------

    @property
    def hf_cache(self) -> Path:
        return self._hf_cache or hf_hub_cache_folder()

    def folders(self) -> list[Path]:
        """The folders the user added (the models folder itself is always scanned)."""
        with self._lock:
            return list(self._folders)

    def _add(self, folder: Path) -> bool:
        folder = Path(folder).expanduser().absolute()
        with self._lock:
            known = {_same(f) for f in (self.models_folder, *self._folders)}
            if _same(folder) in known or len(self._folders) >= MAX_FOLDERS:
                return False
            self._folders.append(folder)
            return True

    def _changed(self) -> None:
        if self.on_folders_changed is not None:
            self.on_folders_changed(self.folders())

    def add_folder(self, folder: Path) -> bool:
        """Scan `folder` too from now on; False if it is already scanned."""
        added = self._add(Path(folder))
        if added:
            self._changed()
        return added

    def remove_folder(self, folder: Path) -> bool:
        with self._lock:
            target = _same(Path(folder))
            kept = [f for f in self._folders if _same(f) != target]
            removed = len(kept) != len(self._folders)
            self._folders = kept
        if removed:
            self._changed()
        return removed

    def ensure_models_folder(self) -> Path:
        """Create the models folder (with a note saying what goes there) and return it."""
        self.models_folder.mkdir(parents=True, exist_ok=True)
        note = self.models_folder / "PUT-MODELS-HERE.txt"
        if not note.exists():
            try:
                note.write_text(
                    "Put Stable Diffusion 1.x checkpoints here: .safetensors files or\n"
                    "diffusers model folders. sd-desktop finds them on its next scan\n"
                    "(Models > Rescan).\n",
                    encoding="utf-8",
                )
            except OSError:
                pass
        return self.models_folder

    # -- scanning -------------------------------------------------------------------------

    def _describe(self, path: Path, source: str, root: Path, **kwargs: str | None) -> ModelEntry:
        """describe_entry, remembered per (path, size, mtime) in memory and on disk, so a
        rescan or the next start reads nothing new."""
        try:
            st = path.stat()
            key = (str(path), source, st.st_size, st.st_mtime_ns)
        except OSError:
            return describe_entry(path, source, root, **kwargs)
        is_dir = path.is_dir()
        with self._lock:
            hit = self._described.get(key)
        if hit is not None and not is_dir:
            return hit
        entry = None if is_dir else self.infos.get(path, source, root)
        if entry is None or (kwargs.get("repo_id") or None) != entry.repo_id:
            entry = describe_entry(path, source, root, **kwargs)
            self.infos.put(entry)
        with self._lock:
            self._described[key] = entry
        return entry

    def scan(self) -> list[ModelEntry]:
        """Everything found: models folder first, then added folders, then the HF cache.

        A model reachable twice (an added folder inside another, a symlink) is listed once.
        """
        found: list[ModelEntry] = []
        found += scan_folder(self.models_folder, SOURCE_MODELS, self._describe)
        for folder in self.folders():
            found += scan_folder(folder, SOURCE_ADDED, self._describe)
        if self.use_hf_cache:
            found += scan_hf_cache(self.hf_cache, self._describe)
        unique: dict[str, ModelEntry] = {}
        for entry in found:
            unique.setdefault(_same(entry.path), entry)
        self.infos.save()
        return list(unique.values())

    def describe(self, path: Path) -> ModelEntry:
        """One file or folder the user picked by hand (Open file...)."""
        path = Path(path).expanduser().absolute()
        return self._describe(path, SOURCE_ADDED, path.parent)

    def with_hash(self, entry: ModelEntry) -> str | None:
        """The cached short hash of an entry, or None until compute_hash() has run."""
        if entry.error is not None:
            return None
        return self.hashes.short_hash(entry.path)

    def compute_hash(self, entry: ModelEntry, **kwargs) -> str:
        """Slow (reads the whole model once); call from a worker thread."""
        return self.hashes.compute(entry.path, **kwargs)


def _same(path: Path) -> str:
    """A comparable spelling of a path (symlinks and case rules of the OS resolved)."""
    try:
        return os.path.normcase(os.path.realpath(path))
    except OSError:
        return os.path.normcase(os.path.abspath(path))


__all__ = ["ModelLibrary", "ModelEntry", "SOURCE_ADDED", "SOURCE_HF", "SOURCE_MODELS"]
