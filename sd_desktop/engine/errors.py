"""Errors the engine raises on purpose.

Every message is written for the person using the app: one line that says what
went wrong and what to do. The CLI prints it as is; the UI shows it in a dialog.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every expected failure; its str() is shown to the user verbatim."""


class CheckpointError(EngineError):
    """The file is not a usable checkpoint (empty, truncated, unsafe, incomplete)."""


class UnsupportedModelError(CheckpointError):
    """A real checkpoint of an architecture we do not run yet (SDXL, SD 2.x, ...)."""


class InvalidRequestError(EngineError):
    """A generation request with parameters we cannot honour (size, steps, files)."""


class CancelledError(EngineError):
    """The job was cancelled by the user; raised before the next UNet call."""
