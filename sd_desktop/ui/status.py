"""Telling the user what is happening without getting in their way.

The status bar carries the running job (step, speed, time left, a progress bar), model
loading and the queue. Problems go to a banner above the canvas rather than a modal
dialog: it never blocks the window, stays until dismissed, and a test can read it.
"""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QStatusBar,
    QStyle,
    QToolButton,
    QWidget,
)

INFO_TIMEOUT_MS = 6000


def format_duration(seconds: float) -> str:
    """12 s, 3 min 05 s, 1 h 02 min: what a person reads at a glance."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_speed(seconds_per_it: float) -> str:
    """s/it when slow, it/s when fast (as tqdm and A1111 do), so the number stays legible."""
    if seconds_per_it <= 0:
        return ""
    if seconds_per_it < 1:
        return f"{1 / seconds_per_it:.2f} it/s"
    return f"{seconds_per_it:.2f} s/it"


class BannerKind(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


_BANNER_TINT = {
    BannerKind.ERROR: QColor(220, 60, 60),
    BannerKind.WARNING: QColor(230, 160, 30),
    BannerKind.INFO: QColor(70, 140, 230),
}
_BANNER_ICON = {
    BannerKind.ERROR: QStyle.StandardPixmap.SP_MessageBoxCritical,
    BannerKind.WARNING: QStyle.StandardPixmap.SP_MessageBoxWarning,
    BannerKind.INFO: QStyle.StandardPixmap.SP_MessageBoxInformation,
}


def banner_colours(base: QColor, kind: BannerKind) -> tuple[QColor, QColor]:
    """(background, edge) for a strip of this kind: a light tint of the kind's colour over
    the window colour, legible in light and dark palettes alike."""
    tint = _BANNER_TINT[BannerKind(kind)]
    mix = 0.22

    def blend(a: int, b: int) -> int:
        return round(a * (1 - mix) + b * mix)

    background = QColor(
        blend(base.red(), tint.red()),
        blend(base.green(), tint.green()),
        blend(base.blue(), tint.blue()),
    )
    return background, QColor(tint)


class MessageBanner(QFrame):
    """A one-message strip with an icon and a close button; errors stay until closed,
    information fades after a few seconds."""

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBanner")
        self._kind = BannerKind.INFO
        self._icon = QLabel(self)
        self._label = QLabel(self)
        self._label.setWordWrap(True)
        self._label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        close = QToolButton(self)
        close.setAutoRaise(True)
        close.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_TitleBarCloseButton))
        close.setToolTip("Dismiss this message")
        close.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 6, 6)
        layout.setSpacing(10)
        layout.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self._label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.dismiss)
        self.hide()

    def show_message(self, text: str, kind: BannerKind = BannerKind.ERROR) -> None:
        self._kind = BannerKind(kind)
        self._label.setText(text)
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
        self._icon.setPixmap(self.style().standardIcon(_BANNER_ICON[self._kind]).pixmap(size))
        self._apply_colours()
        self.show()
        if self._kind is BannerKind.INFO:
            self._timer.start(INFO_TIMEOUT_MS)
        else:
            self._timer.stop()

    def dismiss(self) -> None:
        self._timer.stop()
        if self.isVisible():
            self.hide()
            self.dismissed.emit()

    def text(self) -> str:
        return self._label.text() if not self.isHidden() else ""

    def kind(self) -> BannerKind:
        return self._kind

    def _apply_colours(self) -> None:
        bg, edge = banner_colours(self.palette().color(QPalette.ColorRole.Window), self._kind)
        self.setStyleSheet(
            f"QFrame#messageBanner {{ background: {bg.name()}; "
            f"border-bottom: 1px solid {edge.name()}; }}"
        )


def _separator() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.VLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    line.setFixedHeight(14)
    return line


class StatusArea:
    """The widgets of the status bar and the wording of every state they show."""

    def __init__(self, bar: QStatusBar) -> None:
        self._bar = bar
        self.message = QLabel("Starting…")
        self.message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.model = QLabel("No model")
        self.model.setToolTip("The loaded model")
        self.queue = QLabel("")
        self.queue.setToolTip("Jobs waiting after the running one")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFixedWidth(180)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.message.setContentsMargins(6, 0, 6, 0)
        for label in (self.queue, self.model):
            label.setContentsMargins(10, 0, 10, 0)
        self._queue_line = _separator()
        bar.addWidget(self.message, 1)
        bar.addPermanentWidget(self._queue_line)
        bar.addPermanentWidget(self.queue)
        bar.addPermanentWidget(_separator())
        bar.addPermanentWidget(self.model)
        bar.addPermanentWidget(self.progress)
        self.set_queue(0)

    def set_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setToolTip(text)

    def model_loading(self, fraction: float, message: str) -> None:
        self.set_message(f"Loading model: {message}…" if message != "Ready" else "Model ready")
        self.progress.show()
        self.progress.setValue(round(max(0.0, min(1.0, fraction)) * 1000))

    def model_loaded(self, name: str, detail: str) -> None:
        self.model.setText(name)
        self.model.setToolTip(detail)
        self.progress.hide()
        self.set_message(f"Loaded {name}. Type a prompt and press Ctrl+Enter to generate.")

    def model_failed(self, name: str | None) -> None:
        self.progress.hide()
        self.model.setText(name or "No model")
        self.set_message("Model not loaded." if name is None else f"Still using {name}.")

    def job_started(self, label: str) -> None:
        self.progress.show()
        self.progress.setValue(0)
        self.set_message(f"{label}: encoding the prompt…")

    def step(self, label: str, step: int, total: int, seconds_per_it: float) -> None:
        self.progress.show()
        self.progress.setValue(round(1000 * step / max(total, 1)))
        parts = [f"{label}: step {step}/{total}"]
        speed = format_speed(seconds_per_it)
        if speed:
            parts.append(speed)
            parts.append(f"{format_duration((total - step) * seconds_per_it)} left")
        self.set_message(" · ".join(parts))

    def idle(self, text: str) -> None:
        self.progress.hide()
        self.set_message(text)

    def set_queue(self, waiting: int) -> None:
        self.queue.setText(f"{waiting} queued" if waiting else "")
        self.queue.setVisible(bool(waiting))
        self._queue_line.setVisible(bool(waiting))
