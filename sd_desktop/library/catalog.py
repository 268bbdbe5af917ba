"""The models the app offers to download, read from resources/model_catalog.json.

The list is data so that adding a model or fixing a file name needs no code
change; every entry is checked here because a bad entry would otherwise surface
only as a failed multi-gigabyte download.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from sd_desktop.resources import resource_path

from .errors import LibraryError

CATALOG_FILE = "model_catalog.json"
Kind = Literal["file", "folder"]


@dataclass(frozen=True)
class CatalogEntry:
    """One downloadable model: which files of which Hub repository, and where they go.

    kind "file": the single file in `files` becomes models/<target>.
    kind "folder": every file keeps its repo path under models/<target>/.
    """

    id: str
    name: str
    description: str
    family: str
    repo: str
    files: tuple[str, ...]
    target: str
    kind: Kind = "file"
    revision: str = "main"
    optional_files: tuple[str, ...] = ()
    size_bytes: int = 0  # approximate, for the list; the real size comes from the server
    license: str = ""
    page: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("file", "folder"):
            raise LibraryError(f"Catalog entry {self.id!r}: kind must be 'file' or 'folder'.")
        if not self.files:
            raise LibraryError(f"Catalog entry {self.id!r} lists no files.")
        if self.kind == "file" and (len(self.files) != 1 or self.optional_files):
            raise LibraryError(f"Catalog entry {self.id!r}: a 'file' entry has exactly one file.")
        for name in (*self.files, *self.optional_files):
            _check_relative(name, self.id)
        if "/" in self.target or "\\" in self.target or self.target in ("", ".", ".."):
            raise LibraryError(f"Catalog entry {self.id!r}: target must be a plain name.")
        if self.repo.count("/") != 1 or any(not part for part in self.repo.split("/")):
            raise LibraryError(f"Catalog entry {self.id!r}: repo must look like 'owner/name'.")

    @property
    def all_files(self) -> tuple[str, ...]:
        return (*self.files, *self.optional_files)


def _check_relative(name: str, entry_id: str) -> None:
    """Repo paths become local paths: no absolute paths, no '..', no hidden parts."""
    path = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or path.is_absolute()
        or any(part in ("", ".", "..") or part.startswith(".") for part in path.parts)
    ):
        raise LibraryError(f"Catalog entry {entry_id!r}: invalid file name {name!r}.")


def _entry(raw: Any) -> CatalogEntry:
    if not isinstance(raw, dict):
        raise LibraryError("The model catalog has an entry that is not a table.")
    try:
        return CatalogEntry(
            id=str(raw["id"]),
            name=str(raw["name"]),
            description=str(raw.get("description", "")),
            family=str(raw.get("family", "")),
            repo=str(raw["repo"]),
            files=tuple(str(f) for f in raw["files"]),
            target=str(raw["target"]),
            kind=raw.get("kind", "file"),
            revision=str(raw.get("revision", "main")),
            optional_files=tuple(str(f) for f in raw.get("optional_files", ())),
            size_bytes=int(raw.get("size_bytes", 0)),
            license=str(raw.get("license", "")),
            page=str(raw.get("page", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise LibraryError(f"The model catalog has a malformed entry ({exc}).") from exc


def load_catalog(path: Path | None = None) -> list[CatalogEntry]:
    """The entries of the shipped catalog (or of `path`), in file order."""
    path = path or resource_path(CATALOG_FILE)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise LibraryError(f"Cannot read the model catalog {path}: {exc}") from exc
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise LibraryError(f"The model catalog {path} has no 'models' list.")
    entries = [_entry(raw) for raw in models]
    ids = [e.id for e in entries]
    if len(set(ids)) != len(ids):
        raise LibraryError(f"The model catalog {path} repeats an id.")
    return entries
