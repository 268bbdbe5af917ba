"""Shared test setup: Qt widgets render off-screen, so tests run without a display."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
