"""The pane beside the gallery grid: a larger preview and every parameter of one image,
selectable for copying, with the image's actions as buttons underneath."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import (
    QAction,
    QFont,
    QImageReader,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPixmap,
)
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sd_desktop.gallery import GalleryItem
from sd_desktop.ui.gallery_delegate import fit_rect

PREVIEW_MAX_SIDE = 768  # decoded size; plenty for a side pane on a high-DPI screen
_PREVIEW_MAX_HEIGHT = 380


class _Preview(QWidget):
    """Paints one image fitted to its width, keeping the aspect ratio."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap = QPixmap()
        self._aspect = 1.0
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)

    def set_image(self, pixmap: QPixmap, width: int, height: int) -> None:
        self._pixmap = pixmap
        self._aspect = height / width if width > 0 and height > 0 else 1.0
        self.updateGeometry()
        self.update()

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return min(_PREVIEW_MAX_HEIGHT, round(width * self._aspect))

    def sizeHint(self) -> QSize:
        return QSize(320, self.heightForWidth(320))

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        size = (
            self._pixmap.size()
            if not self._pixmap.isNull()
            else QSize(1000, round(1000 * self._aspect))
        )
        target = fit_rect(size, QRectF(self.rect()))
        if self._pixmap.isNull():
            color = self.palette().color(QPalette.ColorRole.Text)
            color.setAlpha(28)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawRoundedRect(target, 6, 6)
            return
        clip = QPainterPath()
        clip.addRoundedRect(target, 6, 6)
        painter.setClipPath(clip)
        painter.drawPixmap(target, self._pixmap, QRectF(self._pixmap.rect()))


def _load_preview(item: GalleryItem) -> QPixmap:
    reader = QImageReader(str(item.path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > PREVIEW_MAX_SIDE:
        reader.setScaledSize(
            size.scaled(PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE, Qt.AspectRatioMode.KeepAspectRatio)
        )
    image = reader.read()
    return QPixmap.fromImage(image) if not image.isNull() else QPixmap()


def _muted(label: QLabel) -> QLabel:
    palette = label.palette()
    color = palette.color(QPalette.ColorRole.WindowText)
    color.setAlpha(150)
    palette.setColor(QPalette.ColorRole.WindowText, color)
    label.setPalette(palette)
    return label


def _value_label(text: str = "", wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(wrap)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return label


def _section_title(text: str) -> QLabel:
    label = QLabel(text.upper())
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 0.8)
    font.setWeight(QFont.Weight.DemiBold)
    font.setLetterSpacing(QFont.SpacingType.PercentageSpacing, 108)
    label.setFont(font)
    return _muted(label)


def parameter_rows(item: GalleryItem) -> list[tuple[str, str]]:
    """(label, value) for the form, in the order a person scans them."""
    p = item.params
    rows = [
        ("Model", p.model or "—"),
        ("Seed", str(p.seed)),
        ("Sampler", p.sampler),
        ("Steps", str(p.steps)),
        ("CFG scale", f"{p.cfg_scale:g}"),
        ("Size", f"{p.width} × {p.height}"),
    ]
    if p.denoising_strength is not None:
        rows.append(("Denoising", f"{p.denoising_strength:g}"))
    if p.clip_skip != 1:
        rows.append(("Clip skip", str(p.clip_skip)))
    if p.mask_blur is not None:
        rows.append(("Mask blur", str(p.mask_blur)))
    rows.extend(p.extra.items())
    if p.model_hash:
        rows.append(("Model hash", p.model_hash))
    rows.append(("Created", item.created.strftime("%Y-%m-%d %H:%M:%S")))
    rows.append(("File", str(item.path)))
    return rows


class GalleryDetailsPane(QWidget):
    """Shows one GalleryItem; `set_actions` puts the gallery's QActions under it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._item: GalleryItem | None = None
        self.setMinimumWidth(260)

        self._stack = QStackedWidget(self)
        empty = QLabel("Select an image to see how it was made.")
        empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        empty.setWordWrap(True)
        _muted(empty)
        self._stack.addWidget(empty)

        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(8)
        self._preview = _Preview()
        layout.addWidget(self._preview)
        self._title = QLabel()
        title_font = self._title.font()
        title_font.setWeight(QFont.Weight.DemiBold)
        self._title.setFont(title_font)
        self._title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self._title)

        self._buttons = QGridLayout()
        self._buttons.setSpacing(6)
        layout.addLayout(self._buttons)
        self._tool_row = QHBoxLayout()
        self._tool_row.setSpacing(4)
        layout.addLayout(self._tool_row)

        layout.addSpacing(4)
        layout.addWidget(_section_title("Prompt"))
        self.prompt_label = _value_label()
        layout.addWidget(self.prompt_label)
        self._negative_title = _section_title("Negative prompt")
        layout.addWidget(self._negative_title)
        self.negative_label = _value_label()
        layout.addWidget(self.negative_label)
        layout.addWidget(_section_title("Parameters"))
        self._form = QFormLayout()
        self._form.setHorizontalSpacing(12)
        self._form.setVerticalSpacing(4)
        self._form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self._form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        layout.addLayout(self._form)
        layout.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(content)
        self._stack.addWidget(scroll)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self._stack)

    @property
    def item(self) -> GalleryItem | None:
        return self._item

    def set_actions(self, buttons: list[QAction], tools: list[QAction]) -> None:
        """`buttons` become labelled buttons two to a row; `tools` icon buttons below."""
        for i, action in enumerate(buttons):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            self._buttons.addWidget(button, i // 2, i % 2)
        for action in tools:
            button = QToolButton()
            button.setDefaultAction(action)
            button.setAutoRaise(True)
            button.setIconSize(QSize(20, 20))
            self._tool_row.addWidget(button)
        self._tool_row.addStretch(1)

    def show_item(self, item: GalleryItem | None) -> None:
        previous = self._item
        self._item = item
        if item is None:
            self._stack.setCurrentIndex(0)
            return
        self._stack.setCurrentIndex(1)
        if previous is None or previous.path != item.path:
            self._preview.set_image(_load_preview(item), item.params.width, item.params.height)
        self._title.setText(item.name)
        self.prompt_label.setText(item.prompt or "—")
        has_negative = bool(item.params.negative_prompt)
        self._negative_title.setVisible(has_negative)
        self.negative_label.setVisible(has_negative)
        self.negative_label.setText(item.params.negative_prompt)
        while self._form.rowCount():
            self._form.removeRow(0)
        for name, value in parameter_rows(item):
            label = _muted(QLabel(name))
            label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            # Short values never wrap, so a date does not break at its space.
            self._form.addRow(label, _value_label(value, wrap=len(value) > 24))

    def field_text(self, name: str) -> str | None:
        """The value shown for parameter `name` (what a person reads there)."""
        for row in range(self._form.rowCount()):
            label = self._form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            field = self._form.itemAt(row, QFormLayout.ItemRole.FieldRole)
            if label and field and isinstance(label.widget(), QLabel):
                if label.widget().text() == name and isinstance(field.widget(), QLabel):
                    return field.widget().text()
        return None
