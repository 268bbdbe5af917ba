"""Where the app keeps models and caches, per operating system (via platformdirs).

The same folders and environment overrides as the UI's AppPaths (ui/settings.py),
without importing the UI. Every function returns a path that may not exist yet;
callers create folders when they first write, so merely starting leaves no trace.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "sd-desktop"
# Partial downloads live inside the models folder so finishing is a rename on the
# same disk; the leading dot keeps them out of every scan.
STAGING_FOLDER_NAME = ".downloads"
DATA_DIR_ENV = "SD_DESKTOP_DATA_DIR"
CACHE_DIR_ENV = "SD_DESKTOP_CACHE_DIR"


def _dir(env_var: str, default: str) -> Path:
    value = os.environ.get(env_var, "").strip()
    return Path(value).expanduser() if value else Path(default)


def data_folder() -> Path:
    return _dir(DATA_DIR_ENV, platformdirs.user_data_dir(APP_NAME))


def cache_folder() -> Path:
    return _dir(CACHE_DIR_ENV, platformdirs.user_cache_dir(APP_NAME))


def default_models_folder() -> Path:
    """The app's own models folder, always scanned; downloads are installed here."""
    return data_folder() / "models"


def staging_folder(models_folder: Path) -> Path:
    return models_folder / STAGING_FOLDER_NAME


def hf_hub_cache_folder() -> Path:
    """The local Hugging Face cache, honouring HF_HUB_CACHE and HF_HOME as huggingface_hub does.

    Read from the environment at call time (huggingface_hub reads it once, at import).
    """
    hub_cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if hub_cache:
        return Path(os.path.expandvars(hub_cache)).expanduser()
    hf_home = os.environ.get("HF_HOME")
    if hf_home:
        return Path(os.path.expandvars(hf_home)).expanduser() / "hub"
    xdg_cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg_cache).expanduser() if xdg_cache else Path.home() / ".cache"
    return base / "huggingface" / "hub"
