"""Finding model files in folders and in the local Hugging Face cache, reading headers only.

A scan must never take the app down: a damaged, unreadable or hostile file becomes
an entry that carries its error, and the walk is bounded (depth, symlink loops,
hidden folders skipped) so pointing it at a home folder stays quick.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sd_desktop.engine.checkpoints.checkpoint import CheckpointInfo, describe
from sd_desktop.engine.errors import EngineError

from .paths import STAGING_FOLDER_NAME

MODEL_SUFFIXES = (".safetensors", ".ckpt")
MODEL_INDEX = "model_index.json"
MAX_DEPTH = 4  # A1111 keeps checkpoints in subfolders of models/Stable-diffusion
MAX_ENTRIES_PER_FOLDER = 10_000  # a folder with more files than this is not a models folder

SOURCE_MODELS = "models folder"
SOURCE_ADDED = "added folder"
SOURCE_HF = "Hugging Face cache"

_SHORT_REASONS = (
    ("SDXL", "Not supported yet: SDXL"),
    ("SD 2.x", "Not supported yet: SD 2.x"),
    ("LoRA", "Not a full model: LoRA"),
    ("VAE", "Not a full model: VAE"),
    ("diffusers key names", "Not a full model: diffusers weights"),
)


@dataclass(frozen=True)
class ModelEntry:
    """One model as a list shows it; `error` is set when its headers could not be read."""

    path: Path
    name: str
    source: str  # SOURCE_MODELS, SOURCE_ADDED or SOURCE_HF
    root: Path  # the folder (or cache) it was found under
    size_bytes: int
    mtime_ns: int
    format: str | None = None
    family: str = ""  # short label: "SD 1.x", "SD 1.x inpainting", "Not supported yet: SDXL"
    detail: str = ""  # the full reason or summary, for a tooltip
    supported: bool | None = None  # None: a pickle, checked only when loaded
    dtype: str | None = None
    error: str | None = None
    repo_id: str | None = None  # Hugging Face cache: "org/name"

    @property
    def usable(self) -> bool:
        """Worth offering to load: readable and not a known-unsupported architecture."""
        return self.error is None and self.supported is not False

    @property
    def location(self) -> str:
        if self.repo_id:
            return f"{SOURCE_HF}: {self.repo_id}"
        return str(self.path.parent)


def short_family(info: CheckpointInfo) -> str:
    """A label that fits a table column; the engine's full sentence goes in `detail`."""
    if info.supported:
        return info.family
    if info.supported is None:
        return "SD checkpoint (pickle)"
    for needle, label in _SHORT_REASONS:
        if needle in info.family:
            return label
    return "Not supported"


def _stat(path: Path) -> tuple[int, int]:
    """(size, mtime_ns); a folder's size and newest mtime over its files, one level deep."""
    st = path.stat()
    if not path.is_dir():
        return st.st_size, st.st_mtime_ns
    size, mtime = 0, st.st_mtime_ns
    for child in path.glob("*/*"):
        try:
            cst = child.stat()
        except OSError:
            continue
        if child.is_file():
            size += cst.st_size
            mtime = max(mtime, cst.st_mtime_ns)
    return size, mtime


def describe_entry(
    path: Path, source: str, root: Path, *, name: str | None = None, repo_id: str | None = None
) -> ModelEntry:
    """Describe one candidate; any failure becomes the entry's error, never an exception."""
    try:
        size, mtime = _stat(path)
    except OSError as exc:
        return ModelEntry(
            path, name or path.name, source, root, 0, 0, error=f"Cannot read: {exc.strerror}"
        )
    label = name or (path.name if path.is_dir() else path.stem)
    try:
        info = describe(path)
    except EngineError as exc:
        return ModelEntry(path, label, source, root, size, mtime, error=str(exc), repo_id=repo_id)
    except (OSError, ValueError, RuntimeError, MemoryError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return ModelEntry(
            path, label, source, root, size, mtime, error=f"Cannot read: {reason}", repo_id=repo_id
        )
    dtype = str(info.dtype).removeprefix("torch.") if info.dtype is not None else None
    return ModelEntry(
        path=path,
        name=label,
        source=source,
        root=root,
        size_bytes=info.size_bytes,
        mtime_ns=mtime,
        format=info.format,
        family=short_family(info),
        detail=info.summary if info.supported else info.family,
        supported=info.supported,
        dtype=dtype,
        repo_id=repo_id,
    )


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name == STAGING_FOLDER_NAME


def find_candidates(folder: Path, max_depth: int = MAX_DEPTH) -> Iterator[Path]:
    """Model files and diffusers folders under `folder`, sorted by path, depth-bounded.

    A diffusers folder is reported once and not entered; symlinked folders are
    followed once (their real path is remembered, so a loop ends).
    """
    seen: set[str] = set()

    def walk(current: Path, depth: int) -> Iterator[Path]:
        try:
            real = os.path.realpath(current)
        except OSError:
            return
        if real in seen:
            return
        seen.add(real)
        try:
            with os.scandir(current) as it:
                entries = sorted(
                    (e for _, e in zip(range(MAX_ENTRIES_PER_FOLDER), it, strict=False)),
                    key=lambda e: e.name.lower(),
                )
        except OSError:
            return
        for entry in entries:
            if _is_hidden(entry.name):
                continue
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
            except OSError:
                continue
            if is_file and path.suffix.lower() in MODEL_SUFFIXES:
                yield path
            elif is_dir:
                if (path / MODEL_INDEX).is_file():
                    yield path
                elif depth < max_depth:
                    yield from walk(path, depth + 1)

    if (folder / MODEL_INDEX).is_file():
        yield folder
        return
    yield from walk(folder, 0)


Describe = Callable[..., ModelEntry]  # describe_entry or a caching wrapper with its signature


def scan_folder(
    folder: Path, source: str = SOURCE_ADDED, describe_fn: Describe = describe_entry
) -> list[ModelEntry]:
    """Every model under `folder`, described; a missing folder gives an empty list."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return []
    return [describe_fn(path, source, folder) for path in find_candidates(folder)]


def _snapshot_for(repo_dir: Path) -> Path | None:
    """The snapshot refs/main points at, else the most recently written one."""
    snapshots = repo_dir / "snapshots"
    main_ref = repo_dir / "refs" / "main"
    try:
        if main_ref.is_file():
            commit = main_ref.read_text(encoding="ascii", errors="replace").strip()
            candidate = snapshots / commit
            if commit and Path(commit).name == commit and candidate.is_dir():
                return candidate
        folders = [p for p in snapshots.iterdir() if p.is_dir()]
    except OSError:
        return None
    if not folders:
        return None
    return max(folders, key=lambda p: p.stat().st_mtime_ns)


def _worth_listing_from_cache(entry: ModelEntry) -> bool:
    """The cache holds every kind of model; list SD pipelines, SD checkpoints and
    recognisable SD-family checkpoints we cannot run yet, not text or vision models."""
    if entry.error is not None:
        return entry.format == "diffusers"
    if entry.supported is not False:
        return True
    return entry.family.startswith("Not supported yet")


def scan_hf_cache(cache: Path, describe_fn: Describe = describe_entry) -> list[ModelEntry]:
    """Diffusers pipelines and single-file checkpoints in the Hugging Face hub cache."""
    cache = Path(cache)
    try:
        repos = sorted(p for p in cache.iterdir() if p.name.startswith("models--") and p.is_dir())
    except OSError:
        return []
    found: list[ModelEntry] = []
    for repo_dir in repos:
        repo_id = repo_dir.name.removeprefix("models--").replace("--", "/")
        snapshot = _snapshot_for(repo_dir)
        if snapshot is None:
            continue
        if (snapshot / MODEL_INDEX).is_file():
            entry = describe_fn(snapshot, SOURCE_HF, cache, name=repo_id, repo_id=repo_id)
            if _worth_listing_from_cache(entry):
                found.append(entry)
            continue
        try:
            files = sorted(
                p for p in snapshot.iterdir() if p.suffix.lower() in MODEL_SUFFIXES and p.is_file()
            )
        except OSError:
            continue
        for file in files:
            entry = describe_fn(file, SOURCE_HF, cache, repo_id=repo_id)
            if _worth_listing_from_cache(entry):
                found.append(entry)
    return found
