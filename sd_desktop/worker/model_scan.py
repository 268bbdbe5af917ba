"""Finding the user's models and describing them from their headers, off the UI thread.

Describing reads each file's header (a few hundred KB at most, never the weights), but
a models folder on a network drive can still take seconds, so the scan runs on a
private thread pool and reports back with a signal.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")
MODEL_INDEX = "model_index.json"
# A models folder is browsed a few levels deep (A1111 keeps sub-folders per author);
# the cap keeps a mistakenly added home folder from being walked for minutes.
MAX_DEPTH = 3
MAX_ENTRIES = 2000


@dataclass(frozen=True)
class ModelEntry:
    """One model file or folder, as the model selector shows it."""

    path: Path
    name: str
    family: str  # "SD 1.x", "SD 1.x inpainting", or why it cannot be used
    summary: str  # family · format dtype · size
    supported: bool | None  # None: not known until loaded (pickles)
    error: str = ""  # set when the file is damaged; the entry is shown disabled

    @property
    def usable(self) -> bool:
        return not self.error and self.supported is not False


def _is_diffusers_folder(path: Path) -> bool:
    return path.is_dir() and (path / MODEL_INDEX).is_file()


def find_model_paths(folders: Iterable[Path], files: Iterable[Path] = ()) -> list[Path]:
    """Checkpoint files and diffusers folders under `folders`, plus `files` that still
    exist; sorted by name, without duplicates."""
    found: dict[Path, None] = {}

    def walk(folder: Path, depth: int) -> None:
        if depth > MAX_DEPTH or len(found) >= MAX_ENTRIES:
            return
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name.lower())
        except OSError as exc:
            log.info("Cannot list %s: %s", folder, exc)
            return
        for entry in entries:
            if entry.name.startswith(".") or len(found) >= MAX_ENTRIES:
                continue
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            if is_dir:
                if _is_diffusers_folder(path):
                    found[path.resolve()] = None
                else:
                    walk(path, depth + 1)
            elif path.suffix.lower() in CHECKPOINT_SUFFIXES:
                found[path.resolve()] = None

    for folder in folders:
        if Path(folder).is_dir():
            walk(Path(folder), 0)
    for file in files:
        path = Path(file)
        if path.is_file() or _is_diffusers_folder(path):
            found[path.resolve()] = None
    return sorted(found, key=lambda p: (p.name.lower(), str(p)))


def describe_model(path: Path) -> ModelEntry:
    """Headers only; a damaged file becomes an entry with `error` set, never an exception."""
    from sd_desktop.engine.checkpoint import describe
    from sd_desktop.engine.errors import EngineError

    name = path.name if path.is_dir() else path.stem
    try:
        info = describe(path)
    except EngineError as exc:
        return ModelEntry(path, name, "", "", False, error=str(exc))
    except OSError as exc:
        return ModelEntry(path, name, "", "", False, error=f"Cannot read {path.name}: {exc}")
    return ModelEntry(path, info.name, info.family, info.summary, info.supported)


def scan_models(folders: Iterable[Path], files: Iterable[Path] = ()) -> list[ModelEntry]:
    return [describe_model(p) for p in find_model_paths(folders, files)]


class ModelScanner(QObject):
    """Runs scan_models on its own one-thread pool; `finished` carries list[ModelEntry].

    Scans are serialised, so a later scan's result always arrives last.
    """

    finished = Signal(list)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)

    def scan(self, folders: Iterable[Path], files: Iterable[Path] = ()) -> None:
        folder_list, file_list = list(folders), list(files)

        def task() -> None:
            try:
                entries = scan_models(folder_list, file_list)
            except Exception:  # a scan must never take the app down
                log.exception("Model scan failed")
                entries = []
            self.finished.emit(entries)

        self._pool.start(task)

    def wait(self, timeout_ms: int = 5000) -> bool:
        return self._pool.waitForDone(timeout_ms)
