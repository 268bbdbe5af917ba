"""Checks made before Qt starts, so a missing system library gives a sentence, not an abort.

On Linux, Qt's xcb platform plugin (X11, and XWayland) needs a few small X
libraries that many desktop installs lack, libxcb-cursor0 above all (Qt >= 6.5).
Without them Qt prints "could not load the Qt platform plugin xcb" and aborts
the process; we look for them first and say which package to install.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping

# soname -> Debian/Ubuntu package; the libraries Qt's xcb plugin loads that desktop
# installs most often lack (libxcb itself, X11 and GL are always there with a desktop).
XCB_LIBRARIES: tuple[tuple[str, str], ...] = (
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-image.so.0", "libxcb-image0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libxcb-shape.so.0", "libxcb-shape0"),
    ("libxcb-randr.so.0", "libxcb-randr0"),
    ("libxcb-xkb.so.1", "libxcb-xkb1"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
)
# The packages to name whenever anything is missing: the usual trio, plus what is missing.
USUAL_PACKAGES = ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1")


def _loadable(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def uses_xcb(environ: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Whether Qt is about to start its xcb (X11) plugin."""
    if not platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        return chosen.split(";")[0].split(":")[0] == "xcb"
    if environ.get("WAYLAND_DISPLAY") and environ.get("XDG_SESSION_TYPE") == "wayland":
        return False  # Qt picks its Wayland plugin here
    return bool(environ.get("DISPLAY"))


def missing_xcb_packages(loadable: Callable[[str], bool] = _loadable) -> list[str]:
    """Debian package names of the xcb libraries that cannot be loaded."""
    return [package for soname, package in XCB_LIBRARIES if not loadable(soname)]


def qt_platform_problem(
    environ: Mapping[str, str] | None = None,
    platform: str = sys.platform,
    loadable: Callable[[str], bool] = _loadable,
) -> str | None:
    """A message for the user if Qt's window system plugin would fail to start, else None."""
    environ = os.environ if environ is None else environ
    if not uses_xcb(environ, platform):
        return None
    missing = missing_xcb_packages(loadable)
    if not missing:
        return None
    packages = list(dict.fromkeys([*USUAL_PACKAGES, *missing]))
    return (
        "sd-desktop cannot open its window: Qt's X11 support needs system libraries that "
        f"are not installed ({', '.join(missing)}).\n"
        f"Install them with:\n\n    sudo apt-get install {' '.join(packages)}\n\n"
        "(Fedora: sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms; "
        "Arch: sudo pacman -S xcb-util-cursor). Then start sd-desktop again."
    )


def check_before_qt() -> int:
    """0 if Qt can start; otherwise prints why (and tries a desktop notification), returns 3."""
    problem = qt_platform_problem()
    if problem is None:
        return 0
    print(problem, file=sys.stderr)
    _notify(problem)
    return 3


def _notify(message: str) -> None:
    """Started from a menu there is no terminal to read; notify-send reaches the desktop."""
    import shutil
    import subprocess

    notify = shutil.which("notify-send")
    if notify is None:
        return
    try:
        subprocess.run(
            [notify, "--app-name=sd-desktop", "sd-desktop cannot start", message],
            timeout=5,
            check=False,
            capture_output=True,
        )
    except (OSError, subprocess.SubprocessError):
        pass
