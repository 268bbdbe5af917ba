"""The first thing a new user sees: no model yet, and three clear ways to get one.

The panel runs each way to the end itself (file dialog, folder scan, download)
and reports one outcome, `modelChosen(path)`, so the main window only has to
show it when the library is empty and load what it emits.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPointF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QIcon,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QBoxLayout,
    QDialog,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from sd_desktop.library.library import ModelLibrary
from sd_desktop.library.scan import ModelEntry, scan_folder
from sd_desktop.ui.model_manager import MODEL_FILE_FILTER, BackgroundRunner, open_folder

MIN_WIDTH = 360


def download_icon(color: QColor, size: int = 48) -> QIcon:
    """An arrow into a tray, in the text colour (the style's arrow is black on dark themes)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.scale(size / 24, size / 24)
    pen = QPen(color, 2.2)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    painter.drawLine(QPointF(12, 3), QPointF(12, 15))
    head = QPainterPath(QPointF(7, 10.5))
    head.lineTo(12, 15.5)
    head.lineTo(17, 10.5)
    painter.drawPath(head)
    tray = QPainterPath(QPointF(4, 15))
    tray.lineTo(4, 20)
    tray.lineTo(20, 20)
    tray.lineTo(20, 15)
    painter.drawPath(tray)
    painter.end()
    return QIcon(pixmap)


class _Choice(QFrame):
    """A big button with a one-line explanation under it."""

    def __init__(
        self, title: str, explanation: str, icon: QStyle.StandardPixmap | QIcon, parent
    ) -> None:
        super().__init__(parent)
        self.button = QPushButton(title, self)
        if not isinstance(icon, QIcon):
            icon = self.style().standardIcon(icon)
        self.button.setIcon(icon)
        self.button.setIconSize(QSize(24, 24))
        self.button.setMinimumHeight(52)
        self.button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        font = QFont(self.button.font())
        font.setPointSizeF(font.pointSizeF() * 1.15)
        font.setBold(True)
        self.button.setFont(font)
        self.explanation = QLabel(explanation, self)
        self.explanation.setWordWrap(True)
        self.explanation.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.button)
        layout.addWidget(self.explanation)


class WelcomePanel(QWidget):
    """Shown instead of the canvas while no model is available."""

    modelChosen = Signal(object)  # Path of a usable model
    libraryChanged = Signal()  # a folder was added or a model downloaded: rescan lists

    def __init__(self, library: ModelLibrary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self._runner = BackgroundRunner(self)
        self.setObjectName("welcomePanel")

        title = QLabel("Welcome to SD Desktop")
        title_font = QFont(title.font())
        title_font.setPointSizeF(title_font.pointSizeF() * 1.9)
        title_font.setBold(True)
        title.setFont(title_font)
        title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        subtitle = QLabel(
            "To make pictures you need a Stable Diffusion 1.x model: one file of 2 to 4 GB. "
            "Pick one of these to get started."
        )
        subtitle.setWordWrap(True)
        subtitle.setAlignment(Qt.AlignmentFlag.AlignHCenter)

        sp = QStyle.StandardPixmap
        self.download_choice = _Choice(
            "Download Stable Diffusion 1.5",
            "About 4 GB from the Hugging Face Hub. You can stop and continue later.",
            download_icon(self.palette().color(QPalette.ColorRole.ButtonText)),
            self,
        )
        self.open_choice = _Choice(
            "Open a model file…",
            "A .safetensors or .ckpt file you already have, from anywhere on this computer.",
            sp.SP_DialogOpenButton,
            self,
        )
        self.folder_choice = _Choice(
            "Use a folder of models…",
            "For example AUTOMATIC1111's models/Stable-diffusion or ComfyUI's models/checkpoints.",
            sp.SP_DirIcon,
            self,
        )
        self.download_choice.button.clicked.connect(self.download)
        self.open_choice.button.clicked.connect(self.open_file)
        self.folder_choice.button.clicked.connect(self.add_folder)

        choices = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        choices.setSpacing(18)
        self._choices = choices
        for choice in (self.download_choice, self.open_choice, self.folder_choice):
            choices.addWidget(choice, 1, Qt.AlignmentFlag.AlignTop)

        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        folder_hint = QLabel(
            f"Or copy a model into your models folder:<br><b>{library.models_folder}</b>"
        )
        folder_hint.setWordWrap(True)
        folder_hint.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        folder_hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_folder_button = QPushButton("Open models folder")
        self.open_folder_button.clicked.connect(self._open_models_folder)
        self.rescan_button = QPushButton("Look again")
        self.rescan_button.setToolTip("Check the models folder and your added folders again")
        self.rescan_button.clicked.connect(self.rescan)
        hint_buttons = QHBoxLayout()
        hint_buttons.addStretch(1)
        hint_buttons.addWidget(self.open_folder_button)
        hint_buttons.addWidget(self.rescan_button)
        hint_buttons.addStretch(1)

        column = QVBoxLayout()
        column.addStretch(2)
        column.addWidget(title)
        column.addSpacing(6)
        column.addWidget(subtitle)
        column.addSpacing(24)
        column.addLayout(choices)
        column.addSpacing(16)
        column.addWidget(self.message)
        column.addStretch(1)
        column.addWidget(folder_hint)
        column.addLayout(hint_buttons)
        column.addStretch(2)

        outer = QHBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(column, 6)
        outer.addStretch(1)
        # The three choices stack when the window is narrow (resizeEvent), so the panel
        # never holds the main window wider than a small screen.
        self.setMinimumWidth(MIN_WIDTH)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fit_choices(event.size().width())

    def _fit_choices(self, width: int) -> None:
        choices = [self.download_choice, self.open_choice, self.folder_choice]
        margins = self.layout().contentsMargins()
        side_by_side = (
            sum(c.minimumSizeHint().width() for c in choices)
            + self._choices.spacing() * (len(choices) - 1)
            + margins.left()
            + margins.right()
        )
        direction = (
            QBoxLayout.Direction.LeftToRight
            if width >= side_by_side
            else QBoxLayout.Direction.TopToBottom
        )
        if self._choices.direction() != direction:
            self._choices.setDirection(direction)

    # -- the three ways --------------------------------------------------------------

    def open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", "", MODEL_FILE_FILTER)
        if path:
            self.use_file(Path(path))

    def use_file(self, path: Path) -> None:
        """Check a picked file (headers only) and use it, or say why it cannot be used."""
        entry = self.library.describe(path)
        if entry.usable:
            self.message.setText("")
            self.modelChosen.emit(entry.path)
        else:
            self.message.setText(f"{entry.name} cannot be used: {entry.error or entry.detail}")

    def add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder of models")
        if folder:
            self.use_folder(Path(folder))

    def use_folder(self, folder: Path) -> None:
        """Remember the folder and scan it in the background; use its first usable model."""
        self.library.add_folder(folder)
        self.libraryChanged.emit()
        self.message.setText(f"Looking for models in {folder}…")
        self._runner.run(
            lambda: scan_folder(folder),
            lambda entries: self._folder_scanned(folder, entries),
            lambda error: self.message.setText(f"Could not scan {folder}: {error}"),
        )

    def _folder_scanned(self, folder: Path, entries: list[ModelEntry]) -> None:
        usable = [e for e in entries if e.usable]
        if usable:
            self.message.setText("")
            self.modelChosen.emit(usable[0].path)
            return
        if entries:
            reasons = sorted({e.family if e.error is None else "damaged" for e in entries})
            self.message.setText(
                f"{folder} has {len(entries)} model file(s), but none can be used yet "
                f"({', '.join(reasons)}). The folder is remembered."
            )
        else:
            self.message.setText(
                f"No .safetensors or .ckpt models in {folder} (or its subfolders). "
                "The folder is remembered, so models you add there later are found."
            )

    def download(self) -> None:
        from sd_desktop.ui.download_dialog import DownloadDialog

        dialog = DownloadDialog(
            self.library.models_folder, hash_cache=self.library.hashes, parent=self
        )
        dialog.modelDownloaded.connect(lambda _path: self.libraryChanged.emit())
        accepted = dialog.exec() == QDialog.DialogCode.Accepted
        if accepted and dialog.installed_path is not None:
            self.modelChosen.emit(dialog.installed_path)

    # -- the models folder -------------------------------------------------------------

    def _open_models_folder(self) -> None:
        self.library.ensure_models_folder()
        open_folder(self.library.models_folder)

    def rescan(self) -> None:
        """Scan everything again; a usable model found is chosen at once."""
        self.message.setText("Looking for models…")

        def found(entries: list[ModelEntry]) -> None:
            usable = [e for e in entries if e.usable]
            if usable:
                self.message.setText("")
                self.libraryChanged.emit()
                self.modelChosen.emit(usable[0].path)
            else:
                self.message.setText(
                    f"Still no usable model in {self.library.models_folder} or your folders."
                )

        self._runner.run(self.library.scan, found)
