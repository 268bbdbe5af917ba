"""Icons of the generation panel and the app itself, drawn rather than shipped.

Drawn in the palette's text colour, so they match light and dark themes and need no
icon theme (Windows and macOS have none); rendered at several sizes for high-DPI.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QIcon,
    QLinearGradient,
    QPainter,
    QPainterPath,
)

from sd_desktop.ui.icon_drawing import Drawer, line_pen, palette_inks, render_icon


def _dice(p: QPainter, c: QColor) -> None:
    p.setPen(line_pen(c))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRoundedRect(QRectF(4, 4, 16, 16), 3.5, 3.5)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(c)
    for x, y in ((8.5, 8.5), (15.5, 8.5), (12, 12), (8.5, 15.5), (15.5, 15.5)):
        p.drawEllipse(QPointF(x, y), 1.5, 1.5)


def _arrow_head(p: QPainter, tip: QPointF, dx: float, dy: float) -> None:
    path = QPainterPath(tip)
    path.lineTo(tip.x() - dx * 4 - dy * 3, tip.y() - dy * 4 + dx * 3)
    path.lineTo(tip.x() - dx * 4 + dy * 3, tip.y() - dy * 4 - dx * 3)
    path.closeSubpath()
    p.drawPath(path)


def _recycle(p: QPainter, c: QColor) -> None:
    """A circular arrow: "use the last seed again"."""
    p.setPen(line_pen(c))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawArc(QRectF(5, 5, 14, 14), 60 * 16, 270 * 16)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(c)
    _arrow_head(p, QPointF(17.8, 6.6), 0.75, -0.65)


def _swap(p: QPainter, c: QColor) -> None:
    """Two opposed arrows: swap width and height."""
    p.setPen(line_pen(c))
    p.drawLine(QPointF(5, 9), QPointF(17, 9))
    p.drawLine(QPointF(7, 15), QPointF(19, 15))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(c)
    _arrow_head(p, QPointF(20, 9), 1, 0)
    _arrow_head(p, QPointF(4, 15), -1, 0)


def _frame(p: QPainter, c: QColor) -> None:
    """A picture frame with corner marks: "use the source image's size"."""
    p.setPen(line_pen(c))
    p.setBrush(Qt.BrushStyle.NoBrush)
    for x, y, dx, dy in ((4, 4, 1, 1), (20, 4, -1, 1), (4, 20, 1, -1), (20, 20, -1, -1)):
        p.drawLine(QPointF(x, y), QPointF(x + 5 * dx, y))
        p.drawLine(QPointF(x, y), QPointF(x, y + 5 * dy))
    p.drawRect(QRectF(8.5, 8.5, 7, 7))


def _more(p: QPainter, c: QColor) -> None:
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(c)
    for x in (6, 12, 18):
        p.drawEllipse(QPointF(x, 12), 1.8, 1.8)


def _folder(p: QPainter, c: QColor) -> None:
    p.setPen(line_pen(c))
    p.setBrush(Qt.BrushStyle.NoBrush)
    path = QPainterPath(QPointF(4, 7))
    path.lineTo(9.5, 7)
    path.lineTo(11, 9)
    path.lineTo(20, 9)
    path.lineTo(20, 18)
    path.lineTo(4, 18)
    path.closeSubpath()
    p.drawPath(path)


_DRAWERS: dict[str, Drawer] = {
    "dice": _dice,
    "recycle": _recycle,
    "swap": _swap,
    "frame": _frame,
    "more": _more,
    "folder": _folder,
}


def panel_icon(name: str) -> QIcon:
    """Icon `name` (dice, recycle, swap, frame, more, folder) in the palette's colours."""
    normal, disabled = palette_inks()
    return render_icon(_DRAWERS[name], normal, disabled=disabled)


def app_icon() -> QIcon:
    """The window icon: a rounded tile with a violet-to-teal gradient and a spark."""
    sizes = (16, 24, 32, 48, 64, 128, 256)
    return render_icon(_app_tile, QColor(255, 255, 255), sizes=sizes, box=64)


def _app_tile(p: QPainter, spark_color: QColor) -> None:
    gradient = QLinearGradient(0, 0, 64, 64)
    gradient.setColorAt(0.0, QColor(124, 77, 255))
    gradient.setColorAt(1.0, QColor(0, 184, 169))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QBrush(gradient))
    p.drawRoundedRect(QRectF(2, 2, 60, 60), 14, 14)
    spark = QPainterPath(QPointF(32, 10))
    for x, y in ((37, 27), (54, 32), (37, 37), (32, 54), (27, 37), (10, 32), (27, 27)):
        spark.lineTo(x, y)
    spark.closeSubpath()
    p.setBrush(QColor(spark_color.red(), spark_color.green(), spark_color.blue(), 235))
    p.drawPath(spark)
    p.setBrush(QColor(spark_color.red(), spark_color.green(), spark_color.blue(), 180))
    p.drawEllipse(QPointF(48, 16), 3.5, 3.5)
