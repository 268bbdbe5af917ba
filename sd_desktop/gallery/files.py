"""Image files on disk: crash-safe PNG writes, never-overwriting names, and folder scans.

A generated image is often the only copy of an hour's tweaking, so a file either appears
complete under its final name or not at all: it is written to a hidden temp file in the
same folder, fsynced, then moved into place in one step.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sd_desktop.atomic_files import TEMP_PREFIX, create_temp_file, fsync_dir
from sd_desktop.infotext import GenerationParams, png_info

CREATION_TIME_KEY = "Creation Time"  # a keyword the PNG specification itself defines
_NUMBERED = re.compile(r"^(\d+)-")


def day_folder_name(created: datetime) -> str:
    return created.strftime("%Y-%m-%d")


def file_name(number: int, seed: int) -> str:
    return f"{number:05d}-{seed}.png"


def next_number(folder: Path) -> int:
    """One past the highest `NNNNN-` prefix in `folder` (0 for an empty or new folder)."""
    highest = -1
    with contextlib.suppress(FileNotFoundError):
        with os.scandir(folder) as entries:
            for entry in entries:
                match = _NUMBERED.match(entry.name)
                if match:
                    highest = max(highest, int(match.group(1)))
    return highest + 1


def _place_without_overwrite(tmp: Path, target: Path) -> bool:
    """Move tmp to target unless target exists. True when placed.

    A hard link fails atomically if the name is taken, even by another process; where
    the file system has no hard links we fall back to check-then-replace.
    """
    try:
        os.link(tmp, target)
    except FileExistsError:
        return False
    except OSError:
        if target.exists():
            return False
        os.replace(tmp, target)
        return True
    tmp.unlink()
    return True


def write_png_atomic(
    image: Any,
    folder: Path,
    params: GenerationParams,
    created: datetime,
    first_number: int,
) -> tuple[Path, int]:
    """Write `image` with its infotext as `folder/NNNNN-seed.png`, numbering from
    `first_number` upwards past any name already taken. Returns (path, number used).

    On any failure the temp file is removed and nothing appears under a final name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    info = png_info(params, **{CREATION_TIME_KEY: created.isoformat(timespec="seconds")})
    fd, tmp_name = create_temp_file(folder, ".png")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            image.save(handle, format="PNG", pnginfo=info)
            handle.flush()
            os.fsync(handle.fileno())
        number = first_number
        while not _place_without_overwrite(tmp, folder / file_name(number, params.seed)):
            number += 1
        fsync_dir(folder)
        return folder / file_name(number, params.seed), number
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _files_in_visible_folders(folder: Path) -> Iterator[os.DirEntry[str]]:
    """Every non-folder entry under `folder`, not descending into hidden folders (the
    thumbnail cache); unreadable folders are passed over."""
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if not entry.name.startswith("."):
                    stack.append(Path(entry.path))
            else:
                yield entry


def iter_pngs(folder: Path) -> Iterator[Path]:
    """Every image file under `folder`, skipping hidden entries (temp files, the index)."""
    for entry in _files_in_visible_folders(folder):
        name = entry.name
        if not name.startswith(".") and name.lower().endswith(".png") and entry.is_file():
            yield Path(entry.path)


def remove_stale_temp_files(folder: Path, older_than_s: float, now: float) -> int:
    """Delete temp files a crash left behind; young ones may belong to a running save."""
    removed = 0
    for entry in _files_in_visible_folders(folder):
        if entry.name.startswith(TEMP_PREFIX):
            with contextlib.suppress(OSError):
                if now - entry.stat().st_mtime > older_than_s:
                    os.unlink(entry.path)
                    removed += 1
    return removed
