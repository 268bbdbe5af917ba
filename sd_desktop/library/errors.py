"""Errors of the model library: each str() is one line meant for the person using the app."""

from __future__ import annotations


class LibraryError(Exception):
    """Base of every expected failure in finding, hashing or fetching models."""


class DownloadError(LibraryError):
    """A download failed for a reason the user can act on (disk full, server refused, ...)."""


class OfflineError(DownloadError):
    """The model hub cannot be reached; the message says where to put a file instead."""


class Cancelled(LibraryError):
    """The user stopped a long job (hashing, downloading)."""


class DownloadCancelled(Cancelled):
    """The user stopped the download; what was fetched so far is kept for a later resume."""
