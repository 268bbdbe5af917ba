"""Find the data files under the top-level `resources/` folder, however we were started.

The same code runs from a source checkout, an installed wheel and a PyInstaller
bundle; each puts the folder somewhere else, so every lookup goes through here.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sd_desktop.engine.errors import EngineError

_PACKAGE_DIR = Path(__file__).resolve().parent


class MissingResourceError(EngineError):
    """A file the app ships with is absent: the installation is broken, not the input."""


def resource_roots() -> list[Path]:
    """Candidate `resources` folders, most specific first."""
    roots: list[Path] = []
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        roots.append(Path(bundle) / "resources")
    # A wheel cannot carry a folder beside the package, so it ships them inside.
    roots.append(_PACKAGE_DIR / "_resources")
    # Source checkout or editable install: resources/ sits next to sd_desktop/.
    roots.append(_PACKAGE_DIR.parent / "resources")
    return roots


def resource_path(*parts: str) -> Path:
    """Path of `resources/<parts...>` (the folder itself when no parts are given)."""
    roots = resource_roots()
    for root in roots:
        candidate = root.joinpath(*parts)
        if candidate.exists():
            return candidate
    wanted = "/".join(("resources", *parts))
    searched = ", ".join(str(r) for r in roots)
    raise MissingResourceError(
        f"Bundled file '{wanted}' is missing (looked in {searched}); reinstall sd-desktop."
    )
