"""Writing files so that a crash or a full disk never leaves half of one.

Every file the app writes (images, settings, caches, desktop entries) goes to a
temporary name in the target's own folder and is renamed over the target in one step:
readers see the old file or the new one. Same folder, because a rename across file
systems is a copy.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TEMP_PREFIX = ".tmp-"
"""Temporary files start with this, so folder scans can skip them."""


def fsync_dir(folder: Path) -> None:
    """Make a rename itself durable; not possible (nor needed) on Windows."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_temp_file(folder: Path, suffix: str) -> tuple[int, str]:
    """A new, exclusive temp file. Unlike tempfile.mkstemp (always 0600), it gets the
    permissions the user's umask gives any new file, and the rename keeps them."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        name = os.path.join(folder, f"{TEMP_PREFIX}{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(f"Could not create a temporary file in {folder}.")


@contextlib.contextmanager
def atomic_output(
    target: Path, mode: str = "wb", *, durable: bool = True, suffix: str = ".tmp"
) -> Iterator[IO[Any]]:
    """A file to write `target` through: it replaces `target` when the block ends
    cleanly and disappears when the block raises.

    `durable` fsyncs the data and the folder: wanted for the user's images and
    settings, wasted on caches that can be rebuilt. `mode` is "wb" or "w" (UTF-8).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_output writes with 'wb' or 'w', not {mode!r}")
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temp_file(target.parent, suffix)
    try:
        encoding = "utf-8" if mode == "w" else None
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
        if durable:
            fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_text_atomic(target: Path, text: str, *, durable: bool = True) -> None:
    with atomic_output(target, "w", durable=durable) as handle:
        handle.write(text)


def write_bytes_atomic(target: Path, data: bytes, *, durable: bool = True) -> None:
    with atomic_output(target, "wb", durable=durable) as handle:
        handle.write(data)
