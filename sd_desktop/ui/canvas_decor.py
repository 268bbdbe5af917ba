"""What the canvas draws around the picture: empty state, badges, brush outline.

Kept apart from the widget so its drawing code reads as plain functions of what is
on screen, with the colours of the "pasteboard" look in one place.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen

EMPTY_TITLE = "Drop an image here"
EMPTY_DETAIL = "or paste one (Ctrl+V), or use File > Open Image… (Ctrl+O)"

BACKGROUND = QColor(43, 44, 47)
TEXT = QColor(214, 216, 220)
TEXT_DIM = QColor(150, 153, 160)
ACCENT = QColor(88, 156, 255)


def paint_shadow(painter: QPainter, target: QRectF) -> None:
    """A soft drop shadow that lifts the image off the pasteboard."""
    painter.setPen(Qt.PenStyle.NoPen)
    for spread, alpha in ((6, 18), (4, 28), (2, 40)):
        painter.setBrush(QColor(0, 0, 0, alpha))
        painter.drawRect(target.adjusted(-spread + 2, -spread + 3, spread + 2, spread + 3))


def paint_pill(
    painter: QPainter, bounds: QRect, base_font: QFont, text: str, align: Qt.AlignmentFlag
) -> None:
    """A rounded label in a corner of ``bounds`` (state badge, zoom read-out)."""
    font = QFont(base_font)
    font.setPointSizeF(max(font.pointSizeF() * 0.95, 8.0))
    painter.setFont(font)
    metrics = painter.fontMetrics()
    width = metrics.horizontalAdvance(text) + 20
    height = metrics.height() + 8
    x = bounds.left() + 10 if align & Qt.AlignmentFlag.AlignLeft else bounds.right() - width - 10
    y = bounds.top() + 10 if align & Qt.AlignmentFlag.AlignTop else bounds.bottom() - height - 10
    box = QRectF(x, y, width, height)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(20, 20, 22, 190))
    painter.drawRoundedRect(box, height / 2, height / 2)
    painter.setPen(TEXT)
    painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)


def empty_zone(bounds: QRect) -> QRectF:
    """The dashed drop zone of the empty state, centred in ``bounds``."""
    centre = QRectF(bounds).center()
    width = min(bounds.width() - 48, 560)
    height = min(bounds.height() - 48, 320)
    return QRectF(centre.x() - width / 2, centre.y() - height / 2, width, height)


def _title_font(base_font: QFont) -> QFont:
    font = QFont(base_font)
    font.setPointSizeF(font.pointSizeF() * 1.15)
    return font


def _detail_font(base_font: QFont) -> QFont:
    font = QFont(base_font)
    font.setPointSizeF(font.pointSizeF() * 0.95)
    return font


_TEXT_FLAGS = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap
_GLYPH_HEIGHT = 40
_GAP = 12
_BUTTON_HEIGHT = 36


def _empty_layout(
    bounds: QRect, base_font: QFont, title: str, detail: str
) -> tuple[QPointF, QRectF, QRectF, float]:
    """Glyph centre, title and detail rectangles and the Open button's top, stacked and
    centred as one block in the drop zone; wrapped lines push what follows down."""
    zone = empty_zone(bounds)
    width = zone.width() - 32
    left = zone.left() + 16
    title_h = (
        QFontMetricsF(_title_font(base_font))
        .boundingRect(QRectF(0, 0, width, 1000), _TEXT_FLAGS, title)
        .height()
    )
    detail_h = (
        QFontMetricsF(_detail_font(base_font))
        .boundingRect(QRectF(0, 0, width, 1000), _TEXT_FLAGS, detail)
        .height()
        if detail
        else 0.0
    )
    total = _GLYPH_HEIGHT + _GAP + title_h + (4 + detail_h if detail else 0) + _GAP
    total += _BUTTON_HEIGHT
    top = zone.center().y() - total / 2
    glyph = QPointF(zone.center().x(), top + _GLYPH_HEIGHT / 2)
    title_rect = QRectF(left, top + _GLYPH_HEIGHT + _GAP, width, title_h)
    detail_rect = QRectF(left, title_rect.bottom() + 4, width, detail_h)
    button_top = (detail_rect.bottom() if detail else title_rect.bottom()) + _GAP
    return glyph, title_rect, detail_rect, button_top


def open_button_top(bounds: QRect, base_font: QFont, title: str, detail: str) -> float:
    """Where the empty state's Open button starts: just below the text."""
    return _empty_layout(bounds, base_font, title, detail)[3]


def paint_empty_state(
    painter: QPainter,
    bounds: QRect,
    base_font: QFont,
    hovering: bool,
    title: str = EMPTY_TITLE,
    detail: str = EMPTY_DETAIL,
) -> None:
    """Drop zone, picture glyph, a title line and a dimmer detail line; the Open button
    is a real child widget placed at open_button_top()."""
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    zone = empty_zone(bounds)
    if hovering:
        paint_drop_highlight(painter, zone)
    else:
        painter.setPen(QPen(QColor(255, 255, 255, 46), 1.5, Qt.PenStyle.DashLine))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(zone, 14, 14)
    glyph, title_rect, detail_rect, _ = _empty_layout(bounds, base_font, title, detail)
    _paint_picture_glyph(painter, glyph)
    painter.setFont(_title_font(base_font))
    painter.setPen(TEXT)
    painter.drawText(title_rect, _TEXT_FLAGS, "Drop to open" if hovering else title)
    if hovering or not detail:
        return
    painter.setFont(_detail_font(base_font))
    painter.setPen(TEXT_DIM)
    painter.drawText(detail_rect, _TEXT_FLAGS, detail)


def paint_drop_highlight(painter: QPainter, area: QRectF) -> None:
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    tint = QColor(ACCENT)
    tint.setAlpha(40)
    painter.setBrush(tint)
    painter.setPen(QPen(ACCENT, 2.0, Qt.PenStyle.DashLine))
    painter.drawRoundedRect(area, 14, 14)


def paint_brush_cursor(
    painter: QPainter, centre: QPointF, radius: float, hardness: int, erasing: bool
) -> None:
    """Brush outline at its on-screen size: dark and light rings read on any image.

    The eraser's ring is dashed; a dotted inner ring shows where a soft brush
    starts to fade.
    """
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.setPen(QPen(QColor(0, 0, 0, 150), 3.0))
    painter.drawEllipse(centre, radius, radius)
    light = QPen(QColor(255, 255, 255, 230), 1.2)
    if erasing:
        light.setDashPattern([3.0, 3.0])
    painter.setPen(light)
    painter.drawEllipse(centre, radius, radius)
    if hardness < 100 and radius > 16:
        inner = radius * max(hardness / 100, 0.05)
        painter.setPen(QPen(QColor(255, 255, 255, 90), 1.0, Qt.PenStyle.DotLine))
        painter.drawEllipse(centre, inner, inner)
    arm = 4.0 if radius >= 12 else 1.0
    for pen in (QPen(QColor(0, 0, 0, 150), 3.0), QPen(QColor(255, 255, 255, 230), 1.0)):
        painter.setPen(pen)
        painter.drawLine(
            QPointF(centre.x() - arm, centre.y()), QPointF(centre.x() + arm, centre.y())
        )
        painter.drawLine(
            QPointF(centre.x(), centre.y() - arm), QPointF(centre.x(), centre.y() + arm)
        )


def _paint_picture_glyph(painter: QPainter, centre: QPointF) -> None:
    painter.setPen(QPen(TEXT_DIM, 2.0))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    frame = QRectF(centre.x() - 26, centre.y() - 20, 52, 40)
    painter.drawRoundedRect(frame, 5, 5)
    hills = QPainterPath(QPointF(frame.left() + 6, frame.bottom() - 6))
    hills.lineTo(QPointF(frame.left() + 20, frame.top() + 18))
    hills.lineTo(QPointF(frame.left() + 30, frame.top() + 27))
    hills.lineTo(QPointF(frame.left() + 37, frame.top() + 21))
    hills.lineTo(QPointF(frame.right() - 6, frame.bottom() - 6))
    painter.drawPath(hills)
    painter.setBrush(TEXT_DIM)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(QPointF(frame.right() - 13, frame.top() + 11), 4, 4)
