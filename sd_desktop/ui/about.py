"""Help > About and Help > Keyboard Shortcuts.

The shortcut list is read from the live QActions (plus the few keys handled by
widgets), so it can never drift from what the keys really do.
"""

from __future__ import annotations

import html
import platform
from collections.abc import Iterable

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sd_desktop import __version__
from sd_desktop.ui.app_icons import app_icon

# Keys that widgets handle themselves (no QAction carries them).
WIDGET_KEYS: tuple[tuple[str, str], ...] = (
    ("Ctrl+Enter", "Generate (in a prompt box)"),
    ("Space + drag", "Pan the canvas"),
    ("Ctrl + wheel", "Zoom the canvas"),
    ("Right button / Ctrl + drag", "Erase the mask while painting"),
)


class AboutDialog(QDialog):
    def __init__(self, engine_text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About SD Desktop")
        icon = QLabel(self)
        icon.setPixmap(app_icon().pixmap(72, 72))
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        title = QLabel(f"<h2 style='margin:0'>SD Desktop</h2><p>Version {__version__}</p>", self)
        body = QLabel(self)
        body.setWordWrap(True)
        body.setTextFormat(Qt.TextFormat.RichText)
        body.setOpenExternalLinks(True)
        details = [
            f"Python {platform.python_version()} · PySide6 {pyside_version}",
        ]
        if engine_text:
            details.append(html.escape(engine_text))
        body.setText(
            "<p>Stable Diffusion 1.x on your own computer: live previews, inpainting "
            "and a gallery that remembers how every picture was made.</p>"
            "<p>Images carry their parameters in the A1111 format, so other tools can "
            "read them.</p>"
            f"<p style='color:gray'>{'<br>'.join(details)}</p>"
            "<p>Released under the MIT license.</p>"
        )
        body.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        text = QVBoxLayout()
        text.addWidget(title)
        text.addWidget(body)
        row = QHBoxLayout()
        row.setSpacing(18)
        row.addWidget(icon)
        row.addLayout(text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 20, 20, 14)
        layout.addLayout(row)
        layout.addWidget(buttons)
        self.setMinimumWidth(440)


def shortcut_rows(actions: Iterable[QAction]) -> list[tuple[str, str]]:
    """(keys, what) for every action with a shortcut, then the widget keys; no duplicates."""
    rows: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for action in actions:
        keys = [
            k.toString(QKeySequence.SequenceFormat.NativeText)
            for k in action.shortcuts()
            if not k.isEmpty()
        ]
        if not keys:
            continue
        row = (", ".join(keys), action.text().replace("&", "").rstrip("…").strip())
        if row not in seen:
            seen.add(row)
            rows.append(row)
    rows.extend(r for r in WIDGET_KEYS if r not in seen)
    return rows


class ShortcutsDialog(QDialog):
    def __init__(self, actions: Iterable[QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard Shortcuts")
        rows = shortcut_rows(actions)
        self.table = QTableWidget(len(rows), 2, self)
        self.table.setHorizontalHeaderLabels(["Keys", "Action"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        for i, (keys, what) in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(keys))
            self.table.setItem(i, 1, QTableWidgetItem(what))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(520, 560)
