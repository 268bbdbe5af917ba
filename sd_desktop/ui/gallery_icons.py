"""Icons of the gallery: the desktop theme's where it has one, else simple drawn line icons
in the palette's text colour, so Windows and macOS (no icon theme) look as finished as Linux."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath

from sd_desktop.ui.icon_drawing import Drawer, line_pen, palette_inks, render_icon

STAR_COLOR = QColor(255, 196, 0)


def star_path(center: QPointF, outer: float) -> QPainterPath:
    """A five-pointed star, point up."""
    inner = outer * 0.45
    path = QPainterPath()
    for i in range(10):
        radius = outer if i % 2 == 0 else inner
        angle = -math.pi / 2 + i * math.pi / 5
        point = QPointF(
            center.x() + radius * math.cos(angle), center.y() + radius * math.sin(angle)
        )
        if i == 0:
            path.moveTo(point)
        else:
            path.lineTo(point)
    path.closeSubpath()
    return path


def _star(p: QPainter, c: QColor) -> None:
    p.setPen(line_pen(c, 1.5))
    p.setBrush(c)
    p.drawPath(star_path(QPointF(12, 12.8), 10.5))


def _star_outline(p: QPainter, c: QColor) -> None:
    p.setPen(line_pen(c, 1.6))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawPath(star_path(QPointF(12, 12.8), 10.0))


def _copy(p: QPainter, c: QColor) -> None:
    p.setPen(line_pen(c))
    p.drawRoundedRect(QRectF(8.5, 8.5, 11.5, 12.5), 2, 2)
    back = QPainterPath(QPointF(15.5, 5.5))
    back.lineTo(15.5, 4.5)
    back.quadTo(15.5, 3.0, 14.0, 3.0)
    back.lineTo(5.5, 3.0)
    back.quadTo(4.0, 3.0, 4.0, 4.5)
    back.lineTo(4.0, 15.0)
    back.quadTo(4.0, 16.5, 5.5, 16.5)
    p.drawPath(back)


def _folder(p: QPainter, c: QColor) -> None:
    p.setPen(line_pen(c))
    path = QPainterPath(QPointF(3, 18.5))
    path.lineTo(3, 6)
    path.quadTo(3, 4.5, 4.5, 4.5)
    path.lineTo(9, 4.5)
    path.lineTo(11, 7)
    path.lineTo(19.5, 7)
    path.quadTo(21, 7, 21, 8.5)
    path.lineTo(21, 18.5)
    path.quadTo(21, 20, 19.5, 20)
    path.lineTo(4.5, 20)
    path.quadTo(3, 20, 3, 18.5)
    p.drawPath(path)
    p.drawLine(QPointF(3, 10.5), QPointF(21, 10.5))


def _trash(p: QPainter, c: QColor) -> None:
    p.setPen(line_pen(c))
    p.drawLine(QPointF(3.5, 6), QPointF(20.5, 6))
    p.drawPolyline([QPointF(9, 6), QPointF(9, 3.5), QPointF(15, 3.5), QPointF(15, 6)])
    body = QPainterPath(QPointF(5.5, 6))
    body.lineTo(6.7, 19.3)
    body.quadTo(6.9, 21, 8.6, 21)
    body.lineTo(15.4, 21)
    body.quadTo(17.1, 21, 17.3, 19.3)
    body.lineTo(18.5, 6)
    p.drawPath(body)
    p.drawLine(QPointF(10, 10), QPointF(10, 17))
    p.drawLine(QPointF(14, 10), QPointF(14, 17))


def _search(p: QPainter, c: QColor) -> None:
    p.setPen(line_pen(c, 2.0))
    p.drawEllipse(QPointF(10.2, 10.2), 6.3, 6.3)
    p.drawLine(QPointF(14.9, 14.9), QPointF(20.5, 20.5))


_ICONS: dict[str, tuple[str, Drawer]] = {
    "star": ("", _star),
    "copy": ("edit-copy", _copy),
    "folder": ("folder-open", _folder),
    "trash": ("user-trash", _trash),
    "search": ("edit-find", _search),
}


def gallery_icon(name: str, color: QColor | None = None) -> QIcon:
    """Icon `name` (star, copy, folder, trash, search). The star is gold: an outline when
    off and filled when on, for checkable favourite buttons."""
    theme_name, drawer = _ICONS[name]
    if name == "star":
        icon = render_icon(_star_outline, STAR_COLOR)
        return render_icon(drawer, STAR_COLOR, icon=icon, state=QIcon.State.On)
    if theme_name and QIcon.hasThemeIcon(theme_name):
        return QIcon.fromTheme(theme_name)
    if color is None:
        color = palette_inks()[0]
    return render_icon(drawer, color)
