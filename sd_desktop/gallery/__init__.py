"""The gallery: generated images saved safely as PNG with their infotext, indexed for search.

Independent of Qt and of the engine, so the CLI and the app share one gallery.
"""

from sd_desktop.gallery.locations import default_gallery_folder, default_thumbnail_cache
from sd_desktop.gallery.store import (
    NO_INDEX_YET,
    SORT_ORDERS,
    GalleryError,
    GalleryItem,
    GalleryStore,
)
from sd_desktop.gallery.thumbnails import ThumbnailCache, ThumbnailError

__all__ = [
    "NO_INDEX_YET",
    "SORT_ORDERS",
    "GalleryError",
    "GalleryItem",
    "GalleryStore",
    "ThumbnailCache",
    "ThumbnailError",
    "default_gallery_folder",
    "default_thumbnail_cache",
]
