"""Where the gallery lives by default; every path here can be overridden by the caller."""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "sd-desktop"
INDEX_FILE_NAME = ".gallery-index.sqlite"
FAVOURITES_FILE_NAME = ".gallery-favourites"


def default_gallery_folder() -> Path:
    """The user's Pictures folder (where people look for images), else the app data dir."""
    try:
        pictures = Path(platformdirs.user_pictures_dir())
    except (OSError, ValueError):
        pictures = None
    if pictures is not None and pictures.is_dir():
        return pictures / APP_NAME
    return Path(platformdirs.user_data_dir(APP_NAME)) / "gallery"


def default_thumbnail_cache() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "thumbnails"
