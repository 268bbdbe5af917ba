"""Put sd-desktop in the desktop's application menu (Linux, per the XDG specifications).

`python -m sd_desktop.install_desktop` (or `sd-desktop --install-desktop-entry`)
writes a .desktop file and the icons for the current user only, with Exec
pointing at whatever is running now: the venv's `sd-desktop` script or the
frozen binary. After that the app starts from the menu or by double-clicking.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sd_desktop.atomic_files import write_bytes_atomic, write_text_atomic
from sd_desktop.resources import resource_path

APP_ID = "sd-desktop"
ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)
_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def data_home(environ: dict[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    value = environ.get("XDG_DATA_HOME", "").strip()
    return Path(value) if value and Path(value).is_absolute() else Path.home() / ".local/share"


def launch_command() -> list[str]:
    """How to start this very installation: frozen binary, venv script, or python -m."""
    if getattr(sys, "frozen", False):
        return [str(Path(sys.executable).resolve())]
    script = Path(sys.executable).parent / APP_ID
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "sd_desktop"]


def quote_exec_arg(arg: str) -> str:
    """One Exec argument as the Desktop Entry spec wants it written in the file.

    Arguments with reserved characters are double-quoted with ", `, $ and \\
    backslash-escaped; then the key file's own string escaping doubles every
    backslash once more. A literal % is always written %%.
    """
    if arg and not set(arg) & _EXEC_RESERVED:
        return arg.replace("%", "%%")
    inner = "".join("\\" + c if c in '"`$\\' else c for c in arg).replace("%", "%%")
    return '"' + inner.replace("\\", "\\\\") + '"'


def desktop_entry(command: list[str]) -> str:
    """The shipped template with Exec (and TryExec) pointing at `command`."""
    template = resource_path(f"{APP_ID}.desktop").read_text(encoding="utf-8")
    exec_line = "Exec=" + " ".join(quote_exec_arg(a) for a in command) + " %f"
    lines = []
    for line in template.splitlines():
        if line.startswith("Exec="):
            lines.append(exec_line)
            if len(command) == 1:  # menus hide the entry once this file is gone
                lines.append("TryExec=" + command[0].replace("\\", "\\\\"))
        elif not line.startswith("TryExec="):
            lines.append(line)
    return "\n".join(lines) + "\n"


def _targets(home: Path) -> dict[Path, Path]:
    """destination -> source for every file installed."""
    icons = resource_path("icons")
    targets = {home / "applications" / f"{APP_ID}.desktop": Path()}
    for size in ICON_SIZES:
        dest = home / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        targets[dest] = icons / f"{APP_ID}-{size}.png"
    targets[home / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"] = (
        icons / f"{APP_ID}.svg"
    )
    return targets


def install(home: Path | None = None, command: list[str] | None = None) -> list[Path]:
    """Write the entry and icons under `home` (XDG_DATA_HOME); returns the files written."""
    home = home or data_home()
    written = []
    for dest, source in _targets(home).items():
        if dest.suffix == ".desktop":
            write_text_atomic(dest, desktop_entry(command or launch_command()), durable=False)
            dest.chmod(0o755)  # some file managers only run "trusted" executable entries
        else:
            write_bytes_atomic(dest, source.read_bytes(), durable=False)
        written.append(dest)
    _refresh_caches(home)
    return written


def uninstall(home: Path | None = None) -> list[Path]:
    home = home or data_home()
    removed = []
    for dest in _targets(home):
        if dest.exists():
            dest.unlink()
            removed.append(dest)
    _refresh_caches(home)
    return removed


def _refresh_caches(home: Path) -> None:
    """Menus pick the entry up sooner with fresh caches; both tools are optional."""
    for command in (
        ["update-desktop-database", str(home / "applications")],
        ["gtk-update-icon-cache", "--quiet", "--ignore-theme-index", str(home / "icons/hicolor")],
    ):
        if shutil.which(command[0]):
            try:
                subprocess.run(command, check=False, capture_output=True, timeout=30)
            except (OSError, subprocess.SubprocessError):
                pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sd-desktop --install-desktop-entry",
        description="Add sd-desktop to this user's application menu (Linux).",
    )
    parser.add_argument("--uninstall", action="store_true", help="remove the entry and icons")
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        print("Desktop entries are a Linux feature; see the README for Windows and macOS.")
        return 2
    try:
        if args.uninstall:
            files = uninstall()
            print(f"Removed {len(files)} files.")
            return 0
        files = install()
    except OSError as exc:
        print(f"error: cannot write the desktop entry: {exc}", file=sys.stderr)
        return 1
    entry = files[0]
    print(f"Installed {entry} and {len(files) - 1} icons.")
    print("sd-desktop is now in your application menu (log out and in if it does not show).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
