"""Drawing line icons in code, shared by the panel, canvas and gallery icon sets.

Drawn icons follow the palette (light or dark theme) and need no icon theme, which
Windows and macOS lack; each is rendered at several sizes so it stays crisp on
high-DPI screens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QApplication

Drawer = Callable[[QPainter, QColor], None]
"""Draws one icon in a 24x24 box with the given ink."""

ICON_SIZES = (16, 20, 24, 32, 48, 64)


def line_pen(color: QColor, width: float = 1.8) -> QPen:
    """Round caps and joins: line icons look hand-drawn rather than clipped."""
    pen = QPen(color, width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def palette_inks(ink: QColor | None = None) -> tuple[QColor, QColor]:
    """`ink` (default: the button text colour) and the disabled colour to pair with it;
    where a style makes the two equal, a translucent `ink`, since the style's own
    greying of pixmaps is too faint."""
    palette = QApplication.palette()
    normal = QColor(ink) if ink is not None else palette.color(QPalette.ColorRole.ButtonText)
    disabled = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText)
    if disabled == normal:
        disabled = QColor(normal.red(), normal.green(), normal.blue(), 90)
    return normal, disabled


def render_icon(
    drawer: Drawer,
    color: QColor,
    *,
    disabled: QColor | None = None,
    icon: QIcon | None = None,
    state: QIcon.State = QIcon.State.Off,
    sizes: Iterable[int] = ICON_SIZES,
    box: float = 24.0,
) -> QIcon:
    """`drawer` rendered at every size into `icon` (a new one by default); with
    `disabled`, a second rendering for the disabled mode."""
    icon = icon if icon is not None else QIcon()
    modes = [(QIcon.Mode.Normal, color)]
    if disabled is not None:
        modes.append((QIcon.Mode.Disabled, disabled))
    for size in sizes:
        for mode, ink in modes:
            pixmap = QPixmap(size, size)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.scale(size / box, size / box)
            drawer(painter, ink)
            painter.end()
            icon.addPixmap(pixmap, mode, state)
    return icon
