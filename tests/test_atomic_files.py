"""The one way the app writes files: whole or not at all, with ordinary permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sd_desktop.atomic_files import (
    TEMP_PREFIX,
    atomic_output,
    write_bytes_atomic,
    write_text_atomic,
)


def _debris(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_a_write_replaces_the_target_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "settings.json"
    write_text_atomic(target, "first ünïcode\n")
    assert target.read_text(encoding="utf-8") == "first ünïcode\n"
    write_bytes_atomic(target, b"second", durable=False)
    assert target.read_bytes() == b"second"
    assert _debris(target.parent) == []


def test_a_failed_write_keeps_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "image.png"
    target.write_bytes(b"the only copy")
    with pytest.raises(OSError, match="disk full"), atomic_output(target) as handle:
        handle.write(b"half of a new")
        raise OSError("disk full")
    assert target.read_bytes() == b"the only copy"
    assert _debris(tmp_path) == []


def test_a_failed_first_write_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "new.txt"
    with pytest.raises(ValueError), atomic_output(target, "w") as handle:
        handle.write("partial")
        raise ValueError("renderer failed")
    assert list(tmp_path.iterdir()) == []


def test_only_whole_file_modes_are_accepted(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'ab'"), atomic_output(tmp_path / "x", "ab"):
        pass


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_new_files_get_the_umask_permissions_not_0600(tmp_path: Path) -> None:
    """tempfile.mkstemp makes 0600 files; an image the user shares must not be one."""
    old = os.umask(0o022)
    try:
        target = tmp_path / "shared.png"
        write_bytes_atomic(target, b"png")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_text_mode_writes_utf8_with_newlines_as_given(tmp_path: Path) -> None:
    target = tmp_path / "favourites.txt"
    with atomic_output(target, "w") as handle:
        handle.write("a/1.png\nb/2.png\n")
    assert target.read_bytes().decode("utf-8").splitlines() == ["a/1.png", "b/2.png"]
