"""Tool icons for the canvas: the desktop theme's icon when it has one, else a drawn one.

Drawn icons use the palette's text colour so they sit well in light and dark themes,
and are rendered at several sizes so they stay crisp on high-DPI screens.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPainterPath
from PySide6.QtWidgets import QApplication, QStyle

from sd_desktop.ui.icon_drawing import Drawer, line_pen, palette_inks, render_icon


def canvas_icon(name: str, color: QColor | None = None) -> QIcon:
    """Icon ``name`` (a key of :data:`ICON_NAMES`), themed where the desktop provides it."""
    theme_name, drawer, standard = ICON_NAMES[name]
    color, disabled = palette_inks(color)
    if drawer is None and standard is not None:
        fallback = QApplication.style().standardIcon(standard)
    else:
        fallback = render_icon(drawer or _draw_brush, color, disabled=disabled)
    if theme_name and QIcon.hasThemeIcon(theme_name):
        return QIcon.fromTheme(theme_name, fallback)
    return fallback


def _draw_brush(p: QPainter, c: QColor) -> None:
    p.setPen(line_pen(c, 2.4))
    p.drawLine(QPointF(20.5, 3.5), QPointF(12.5, 11.5))
    tip = QPainterPath(QPointF(10.0, 10.5))
    tip.cubicTo(QPointF(14.5, 12.0), QPointF(14.0, 17.5), QPointF(9.5, 19.0))
    tip.cubicTo(QPointF(7.0, 20.0), QPointF(4.5, 20.0), QPointF(3.0, 21.0))
    tip.cubicTo(QPointF(4.5, 18.5), QPointF(4.0, 15.5), QPointF(6.0, 13.0))
    tip.cubicTo(QPointF(7.0, 11.5), QPointF(8.5, 10.5), QPointF(10.0, 10.5))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(c)
    p.drawPath(tip)


def _draw_eraser(p: QPainter, c: QColor) -> None:
    p.translate(12, 12)
    p.rotate(-45)
    p.setPen(line_pen(c, 1.8))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRoundedRect(QRectF(-9, -5, 18, 10), 2, 2)
    p.setBrush(c)
    p.drawRoundedRect(QRectF(-9, -5, 7, 10), 2, 2)
    p.resetTransform()


def _arrow(p: QPainter, c: QColor, mirrored: bool) -> None:
    if mirrored:
        p.translate(24, 0)
        p.scale(-1, 1)
    p.setPen(line_pen(c, 2.2))
    p.setBrush(Qt.BrushStyle.NoBrush)
    path = QPainterPath(QPointF(5.5, 10.0))
    path.lineTo(QPointF(14.0, 10.0))
    path.cubicTo(QPointF(22.0, 10.0), QPointF(22.0, 20.0), QPointF(14.0, 20.0))
    path.lineTo(QPointF(9.0, 20.0))
    p.drawPath(path)
    p.drawPolyline([QPointF(9.5, 5.5), QPointF(5.0, 10.0), QPointF(9.5, 14.5)])


def _draw_undo(p: QPainter, c: QColor) -> None:
    _arrow(p, c, mirrored=False)


def _draw_redo(p: QPainter, c: QColor) -> None:
    _arrow(p, c, mirrored=True)


def _draw_clear(p: QPainter, c: QColor) -> None:
    p.setPen(line_pen(c, 1.6))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRoundedRect(QRectF(3.5, 3.5, 17, 17), 3, 3)
    p.setPen(line_pen(c, 2.2))
    p.drawLine(QPointF(8.5, 8.5), QPointF(15.5, 15.5))
    p.drawLine(QPointF(15.5, 8.5), QPointF(8.5, 15.5))


def _draw_invert(p: QPainter, c: QColor) -> None:
    p.setPen(line_pen(c, 1.8))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawEllipse(QRectF(3.5, 3.5, 17, 17))
    half = QPainterPath(QPointF(12, 3.5))
    half.arcTo(QRectF(3.5, 3.5, 17, 17), 90, 180)
    half.closeSubpath()
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(c)
    p.drawPath(half)


def _draw_fit(p: QPainter, c: QColor) -> None:
    p.setPen(line_pen(c, 2.0))
    for sx, sy in ((1, 1), (-1, 1), (1, -1), (-1, -1)):
        x0, y0 = 12 - 8.5 * sx, 12 - 8.5 * sy
        p.drawPolyline([QPointF(x0, y0 + 5 * sy), QPointF(x0, y0), QPointF(x0 + 5 * sx, y0)])
    p.setPen(line_pen(c, 1.4))
    p.drawRect(QRectF(8, 8, 8, 8))


def _draw_actual(p: QPainter, c: QColor) -> None:
    font = QFont()
    font.setPixelSize(11)
    font.setBold(True)
    p.setFont(font)
    p.setPen(c)
    p.drawText(QRectF(0, 0, 24, 24), Qt.AlignmentFlag.AlignCenter, "1:1")


def _magnifier(p: QPainter, c: QColor, plus: bool) -> None:
    p.setPen(line_pen(c, 2.0))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawEllipse(QRectF(3.5, 3.5, 13, 13))
    p.setPen(line_pen(c, 2.8))
    p.drawLine(QPointF(15, 15), QPointF(20.5, 20.5))
    p.setPen(line_pen(c, 1.8))
    p.drawLine(QPointF(7, 10), QPointF(13, 10))
    if plus:
        p.drawLine(QPointF(10, 7), QPointF(10, 13))


def _draw_zoom_in(p: QPainter, c: QColor) -> None:
    _magnifier(p, c, plus=True)


def _draw_zoom_out(p: QPainter, c: QColor) -> None:
    _magnifier(p, c, plus=False)


def _draw_paste(p: QPainter, c: QColor) -> None:
    p.setPen(line_pen(c, 1.8))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRoundedRect(QRectF(4.5, 5.5, 15, 16), 2, 2)
    p.setBrush(c)
    p.drawRoundedRect(QRectF(8.5, 3, 7, 4), 1, 1)


def _tray(p: QPainter, c: QColor, down: bool) -> None:
    p.setPen(line_pen(c, 2.0))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawPolyline([QPointF(4, 14), QPointF(4, 20), QPointF(20, 20), QPointF(20, 14)])
    p.drawLine(QPointF(12, 3.5), QPointF(12, 15))
    head = 14.5 if down else 4.0
    tail = head - 4.5 if down else head + 4.5
    p.drawPolyline([QPointF(7.5, tail), QPointF(12, head), QPointF(16.5, tail)])


def _draw_save(p: QPainter, c: QColor) -> None:
    _tray(p, c, down=True)


def _draw_load(p: QPainter, c: QColor) -> None:
    _tray(p, c, down=False)


ICON_NAMES: dict[str, tuple[str | None, Drawer | None, QStyle.StandardPixmap | None]] = {
    "brush": ("draw-brush", _draw_brush, None),
    "eraser": ("draw-eraser", _draw_eraser, None),
    "undo": ("edit-undo", _draw_undo, None),
    "redo": ("edit-redo", _draw_redo, None),
    "clear": ("edit-clear", _draw_clear, None),
    "invert": ("edit-select-invert", _draw_invert, None),
    "fit": ("zoom-fit-best", _draw_fit, None),
    "actual": ("zoom-original", _draw_actual, None),
    "zoom_in": ("zoom-in", _draw_zoom_in, None),
    "zoom_out": ("zoom-out", _draw_zoom_out, None),
    "paste": ("edit-paste", _draw_paste, None),
    "load_mask": (None, _draw_load, None),
    "save_mask": (None, _draw_save, None),
    "open": ("document-open", None, QStyle.StandardPixmap.SP_DialogOpenButton),
}
"""Icon key -> (freedesktop theme name, drawn fallback, QStyle fallback)."""
