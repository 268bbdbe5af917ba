"""Edit > Preferences: the settings that are not generation parameters.

The dialog edits a copy; the main window applies the result (new gallery folder,
preview mode, model folders, device) only when the user presses OK.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from sd_desktop.ui.settings import Settings
from sd_desktop.worker.jobs import PreviewMode

PREVIEW_LABELS = {
    PreviewMode.OFF: "Off (fastest)",
    PreviewMode.FAST: "Fast: approximate, every step",
    PreviewMode.FULL: "Full: exact, every few steps (slower)",
}
DEVICE_LABELS = {"auto": "Automatic", "cpu": "CPU", "cuda": "NVIDIA GPU (CUDA)", "mps": "Apple GPU"}


@dataclass(frozen=True)
class Preferences:
    output_folder: str
    preview_mode: str
    preview_every: int
    device: str

    @classmethod
    def of(cls, settings: Settings) -> Preferences:
        return cls(
            settings.output_folder,
            PreviewMode.parse(settings.preview_mode).value,
            max(1, settings.preview_every),
            settings.device if settings.device in DEVICE_LABELS else "auto",
        )

    def apply_to(self, settings: Settings) -> Settings:
        return replace(
            settings,
            output_folder=self.output_folder,
            preview_mode=self.preview_mode,
            preview_every=self.preview_every,
            device=self.device,
        )


class PreferencesDialog(QDialog):
    def __init__(
        self, prefs: Preferences, default_gallery: Path, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.output = QLineEdit(prefs.output_folder, self)
        self.output.setPlaceholderText(str(default_gallery))
        self.output.setToolTip("Where generated images are saved; empty = the default folder")
        browse = QPushButton("Choose…", self)
        browse.clicked.connect(self._choose_output)
        out_row = QHBoxLayout()
        out_row.addWidget(self.output, 1)
        out_row.addWidget(browse)

        self.preview = QComboBox(self)
        for mode, label in PREVIEW_LABELS.items():
            self.preview.addItem(label, mode.value)
        self.preview.setCurrentIndex(max(0, self.preview.findData(prefs.preview_mode)))
        self.every = QSpinBox(self)
        self.every.setRange(1, 50)
        self.every.setValue(prefs.preview_every)
        self.every.setSuffix(" steps")
        self.preview.currentIndexChanged.connect(self._sync_every)

        self.device = QComboBox(self)
        for key, label in DEVICE_LABELS.items():
            self.device.addItem(label, key)
        self.device.setCurrentIndex(max(0, self.device.findData(prefs.device)))
        self.device.setToolTip("Takes effect the next time a model is loaded")

        form = QFormLayout()
        form.addRow("Gallery folder", out_row)
        form.addRow("Live preview", self.preview)
        form.addRow("Full preview every", self.every)
        form.addRow("Run on", self.device)
        hint = QLabel("Model folders are managed in File > Manage Models…", self)
        form.addRow(hint)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.setMinimumWidth(560)
        self._sync_every()

    def preferences(self) -> Preferences:
        return Preferences(
            output_folder=self.output.text().strip(),
            preview_mode=str(self.preview.currentData()),
            preview_every=self.every.value(),
            device=str(self.device.currentData()),
        )

    def _sync_every(self) -> None:
        full = self.preview.currentData() == PreviewMode.FULL.value
        self.every.setEnabled(full)
        self.every.setToolTip(
            "How often the exact preview is decoded"
            if full
            else "Only used by the full preview (choose it above)"
        )

    def _choose_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Gallery Folder", self.output.text())
        if folder:
            self.output.setText(folder)
