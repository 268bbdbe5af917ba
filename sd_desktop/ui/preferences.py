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
    QListWidget,
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
    model_folders: tuple[str, ...]

    @classmethod
    def of(cls, settings: Settings) -> Preferences:
        return cls(
            settings.output_folder,
            PreviewMode.parse(settings.preview_mode).value,
            max(1, settings.preview_every),
            settings.device if settings.device in DEVICE_LABELS else "auto",
            tuple(settings.model_folders),
        )

    def apply_to(self, settings: Settings) -> Settings:
        return replace(
            settings,
            output_folder=self.output_folder,
            preview_mode=self.preview_mode,
            preview_every=self.preview_every,
            device=self.device,
            model_folders=list(self.model_folders),
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

        self.folders = QListWidget(self)
        self.folders.addItems(list(prefs.model_folders))
        self.folders.setMinimumHeight(90)
        add = QPushButton("Add…", self)
        add.clicked.connect(self._add_folder)
        self.remove = QPushButton("Remove", self)
        self.remove.clicked.connect(self._remove_folder)
        self.folders.currentRowChanged.connect(self._sync_remove)
        folder_buttons = QVBoxLayout()
        folder_buttons.addWidget(add)
        folder_buttons.addWidget(self.remove)
        folder_buttons.addStretch(1)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folders, 1)
        folder_row.addLayout(folder_buttons)

        form = QFormLayout()
        form.addRow("Gallery folder", out_row)
        form.addRow("Live preview", self.preview)
        form.addRow("Full preview every", self.every)
        form.addRow("Run on", self.device)
        form.addRow(QLabel("Model folders (scanned for .safetensors and diffusers folders):"))
        form.addRow(folder_row)
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
        self._sync_remove()

    def preferences(self) -> Preferences:
        return Preferences(
            output_folder=self.output.text().strip(),
            preview_mode=str(self.preview.currentData()),
            preview_every=self.every.value(),
            device=str(self.device.currentData()),
            model_folders=tuple(self.folders.item(i).text() for i in range(self.folders.count())),
        )

    def _sync_every(self) -> None:
        full = self.preview.currentData() == PreviewMode.FULL.value
        self.every.setEnabled(full)
        self.every.setToolTip(
            "How often the exact preview is decoded"
            if full
            else "Only used by the full preview (choose it above)"
        )

    def _sync_remove(self) -> None:
        has = self.folders.currentRow() >= 0
        self.remove.setEnabled(has)
        self.remove.setToolTip("Stop scanning the selected folder" if has else "Select a folder")

    def _choose_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Gallery Folder", self.output.text())
        if folder:
            self.output.setText(folder)

    def _add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add Models Folder")
        existing = {self.folders.item(i).text() for i in range(self.folders.count())}
        if folder and folder not in existing:
            self.folders.addItem(folder)

    def _remove_folder(self) -> None:
        row = self.folders.currentRow()
        if row >= 0:
            self.folders.takeItem(row)
