"""Giving memory back to the operating system after a model load.

Loading reads each tensor into a temporary buffer, converts it and frees the
buffer; glibc keeps many of those freed blocks in its heap instead of returning
them, so the process looks ~10% bigger than the model it holds. Trimming the
heap once after loading hands them back.
"""

from __future__ import annotations

import ctypes
import sys


def trim_heap() -> bool:
    """Return freed heap memory to the OS (glibc's malloc_trim); False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    # The process's own symbols include libc's. Not ctypes.util.find_library: it runs
    # ldconfig in a subprocess, and forking a process that holds a model (gigabytes of page
    # tables) keeps the GIL long enough to freeze the UI thread.
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):
        return False
