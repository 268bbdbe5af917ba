"""Dropping a picture made with Stable Diffusion onto the window.

PNGs from A1111, from tools that write its "parameters" text, and from our own gallery
record how they were made. Dropped anywhere on the window, such a picture gets a choice
in a bar above the canvas: use its parameters, or open it as the source image. The bar
never blocks: the user can carry on, and a new drop replaces it. A picture without
parameters goes straight to the canvas, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QEvent, QMimeData, QObject, QSize, Qt, Signal
from PySide6.QtGui import (
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QImageReader,
    QPalette,
    QPixmap,
)
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from sd_desktop.infotext import GenerationParams, InfotextError, parse_infotext, read_infotext
from sd_desktop.ui.status import BannerKind, banner_colours

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm")
THUMB = 44
# Larger pictures get no thumbnail in the bar (decoding them is not worth it).
_MAX_THUMB_SOURCE_PIXELS = 16_000_000
_PROMPT_CHARS = 70


def dropped_image_file(mime: QMimeData | None) -> Path | None:
    """The first local image file in drag-and-drop data, or None."""
    if mime is None or not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile():
            path = Path(url.toLocalFile())
            if path.suffix.lower() in IMAGE_SUFFIXES:
                return path
    return None


@dataclass(frozen=True)
class DroppedImage:
    """A dropped file and what its metadata says. `problem` is set when it has
    generation parameters that cannot be read."""

    path: Path
    params: GenerationParams | None = None
    problem: str | None = None

    @property
    def has_offer(self) -> bool:
        """Whether the user gets a choice (otherwise the file is simply opened)."""
        return self.params is not None or self.problem is not None


def inspect_dropped(path: Path) -> DroppedImage:
    """Read a dropped file's generation parameters (PNG text chunks only, no pixels).

    A file that cannot be read at all is returned without parameters: opening it on
    the canvas then gives the canvas's own clear message.
    """
    if path.suffix.lower() != ".png":
        return DroppedImage(path)
    try:
        text = read_infotext(path)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return DroppedImage(path)
    if text is None or not text.strip():
        return DroppedImage(path)
    try:
        params = parse_infotext(text)  # refuses absurdly long text, too
    except InfotextError as exc:
        return DroppedImage(path, problem=str(exc))
    return DroppedImage(path, params=params)


def describe_params(params: GenerationParams) -> str:
    """One line a person can check at a glance before using the parameters."""
    prompt = " ".join(params.prompt.split())
    if len(prompt) > _PROMPT_CHARS:
        prompt = prompt[: _PROMPT_CHARS - 1].rstrip() + "…"
    parts = [f"“{prompt}”" if prompt else "no prompt"]
    parts += [
        f"{params.steps} steps",
        params.sampler,
        f"CFG {params.cfg_scale:g}",
        f"seed {params.seed}",
        f"{params.width} × {params.height}",
    ]
    if params.denoising_strength is not None:
        parts.append(f"denoising {params.denoising_strength:g}")
    if params.clip_skip != 1:
        parts.append(f"clip skip {params.clip_skip}")
    return " · ".join(parts)


class ImageDropFilter(QObject):
    """Takes image-file drops away from the widgets it watches (text boxes would paste
    the file's path as text) and reports them with `file_dropped(path)`."""

    file_dropped = Signal(object)  # Path

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            assert isinstance(event, (QDragEnterEvent, QDragMoveEvent))
            if dropped_image_file(event.mimeData()) is not None:
                event.acceptProposedAction()
                return True
        elif kind == QEvent.Type.Drop:
            assert isinstance(event, QDropEvent)
            path = dropped_image_file(event.mimeData())
            if path is not None:
                event.acceptProposedAction()
                self.file_dropped.emit(path)
                return True
        return False


class ParamsOfferBar(QFrame):
    """ "Use parameters" / "Open as source image" / "Cancel" for a dropped picture."""

    use_parameters = Signal(object, object)  # GenerationParams, Path
    open_as_source = Signal(object)  # Path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("paramsOfferBar")
        self._dropped: DroppedImage | None = None
        self.thumbnail = QLabel(self)
        self.thumbnail.setFixedSize(THUMB, THUMB)
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel(self)
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.detail = QLabel(self)
        self.detail.setWordWrap(True)
        self.detail.setTextFormat(Qt.TextFormat.PlainText)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self.title)
        text.addWidget(self.detail)

        self.use_button = QPushButton("Use parameters", self)
        self.use_button.setToolTip("Fill the prompt and settings from this picture")
        self.source_button = QPushButton("Open as source image", self)
        self.source_button.setToolTip("Put the picture on the canvas for Image to Image")
        self.cancel_button = QPushButton("Cancel", self)
        for button in (self.use_button, self.source_button, self.cancel_button):
            button.setAutoDefault(False)
        self.use_button.clicked.connect(self._use)
        self.source_button.clicked.connect(self._open)
        self.cancel_button.clicked.connect(self.dismiss)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(10)
        layout.addWidget(self.thumbnail, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addLayout(text, 1)
        layout.addWidget(self.use_button, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.source_button, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.cancel_button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.hide()

    def dropped(self) -> DroppedImage | None:
        """What is on offer now (None when the bar is hidden)."""
        return self._dropped if not self.isHidden() else None

    def offer(self, dropped: DroppedImage) -> None:
        self._dropped = dropped
        kind = BannerKind.INFO if dropped.params is not None else BannerKind.WARNING
        bg, edge = banner_colours(self.palette().color(QPalette.ColorRole.Window), kind)
        self.setStyleSheet(
            f"QFrame#paramsOfferBar {{ background: {bg.name()}; "
            f"border-bottom: 1px solid {edge.name()}; }}"
        )
        name = dropped.path.name
        if dropped.params is not None:
            self.title.setText(f"{name} records how it was made. Use its parameters?")
            self.detail.setText(describe_params(dropped.params))
        else:
            self.title.setText(f"{name}: its parameters cannot be used")
            self.detail.setText(dropped.problem or "")
        self.use_button.setVisible(dropped.params is not None)
        self.thumbnail.setPixmap(_thumbnail(dropped.path))
        self.show()
        (self.use_button if dropped.params is not None else self.source_button).setFocus()

    def dismiss(self) -> None:
        self._dropped = None
        self.hide()

    def _use(self) -> None:
        dropped = self._dropped
        self.dismiss()
        if dropped is not None and dropped.params is not None:
            self.use_parameters.emit(dropped.params, dropped.path)

    def _open(self) -> None:
        dropped = self._dropped
        self.dismiss()
        if dropped is not None:
            self.open_as_source.emit(dropped.path)


def _thumbnail(path: Path) -> QPixmap:
    """A small picture of the file, or an empty pixmap when it is too big to bother."""
    reader = QImageReader(str(path))
    size = reader.size()
    if not size.isValid() or size.width() * size.height() > _MAX_THUMB_SOURCE_PIXELS:
        return QPixmap()
    image = reader.read()
    if image.isNull():
        return QPixmap()
    scaled = image.scaled(
        QSize(THUMB, THUMB),
        Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    )
    return QPixmap.fromImage(scaled)
