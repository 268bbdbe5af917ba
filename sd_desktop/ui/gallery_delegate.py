"""How one thumbnail cell is painted: the image fitted in a rounded tile, hover and
selection highlights from the palette, a star on favourites, and a placeholder of the
image's own aspect ratio until the thumbnail arrives (so nothing jumps when it does)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from sd_desktop.gallery import GalleryItem
from sd_desktop.ui.gallery_icons import STAR_COLOR, star_path
from sd_desktop.ui.gallery_model import ItemRole, ThumbnailErrorRole

_TILE_MARGIN = 3  # between neighbouring tiles
_IMAGE_PADDING = 5  # between the tile edge and the image
_RADIUS = 7.0
# Rendered tiles kept: a few screens' worth at the largest zoom.
_MAX_TILES = 400

_Index = QModelIndex | QPersistentModelIndex


def fit_rect(source: QSize, bounds: QRectF) -> QRectF:
    """The largest rect of `source`'s aspect ratio centred in `bounds`."""
    if source.width() <= 0 or source.height() <= 0:
        return QRectF(bounds)
    scale = min(bounds.width() / source.width(), bounds.height() / source.height())
    width, height = source.width() * scale, source.height() * scale
    return QRectF(
        bounds.x() + (bounds.width() - width) / 2,
        bounds.y() + (bounds.height() - height) / 2,
        width,
        height,
    )


class ThumbnailDelegate(QStyledItemDelegate):
    """Cells of `cell` px (the views size them from the zoom slider and their width).

    Scaling a thumbnail with rounded corners is the expensive part of painting, so each
    finished tile (and each placeholder shape) is rendered once into a small LRU and
    repaints just copy it: scrolling stays smooth however many cells are on screen.
    """

    def __init__(self, cell: QSize, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cell = QSize(cell)
        self._tiles: OrderedDict[tuple[object, ...], QPixmap] = OrderedDict()

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        return QSize(self.cell)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        item: GalleryItem | None = index.data(ItemRole)
        palette = option.palette
        state = option.state
        selected = bool(state & QStyle.StateFlag.State_Selected)
        hovered = bool(state & QStyle.StateFlag.State_MouseOver)
        tile = QRectF(option.rect).adjusted(
            _TILE_MARGIN, _TILE_MARGIN, -_TILE_MARGIN, -_TILE_MARGIN
        )

        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        highlight = palette.color(QPalette.ColorRole.Highlight)
        if selected or hovered:
            fill = QColor(highlight)
            fill.setAlpha(90 if selected else 40)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            painter.drawRoundedRect(tile, _RADIUS, _RADIUS)

        area = tile.adjusted(_IMAGE_PADDING, _IMAGE_PADDING, -_IMAGE_PADDING, -_IMAGE_PADDING)
        dpr = painter.device().devicePixelRatioF() if painter.device() else 1.0
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            target = _pixel_aligned(fit_rect(pixmap.size(), area))
            key: tuple[object, ...] = (
                "image",
                pixmap.cacheKey(),
                target.width(),
                target.height(),
                dpr,
            )
            rendered = self._tile(key, target.size(), dpr, lambda p, r: _draw_rounded(p, r, pixmap))
        else:
            size = QSize(item.params.width, item.params.height) if item else QSize(1, 1)
            target = _pixel_aligned(fit_rect(size, area))
            error = bool(index.data(ThumbnailErrorRole))
            ink = palette.color(QPalette.ColorRole.Text)
            key = ("placeholder", target.width(), target.height(), dpr, error, ink.rgba())
            rendered = self._tile(
                key, target.size(), dpr, lambda p, r: _draw_placeholder(p, r, ink, error)
            )
        painter.drawPixmap(target.topLeft(), rendered)

        if item is not None and item.favourite:
            self._paint_star(painter, QRectF(target))
        if selected:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(highlight, 2))
            painter.drawRoundedRect(tile.adjusted(1, 1, -1, -1), _RADIUS, _RADIUS)
        if state & QStyle.StateFlag.State_HasFocus and not selected:
            focus = QColor(highlight)
            focus.setAlpha(160)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(focus, 1, Qt.PenStyle.DotLine))
            painter.drawRoundedRect(tile.adjusted(1, 1, -1, -1), _RADIUS, _RADIUS)
        painter.restore()

    def _tile(
        self,
        key: tuple[object, ...],
        size: QSize,
        dpr: float,
        draw: Callable[[QPainter, QRectF], None],
    ) -> QPixmap:
        tile = self._tiles.get(key)
        if tile is not None:
            self._tiles.move_to_end(key)
            return tile
        tile = QPixmap(max(1, round(size.width() * dpr)), max(1, round(size.height() * dpr)))
        tile.setDevicePixelRatio(dpr)
        tile.fill(Qt.GlobalColor.transparent)
        painter = QPainter(tile)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        draw(painter, QRectF(0, 0, size.width(), size.height()))
        painter.end()
        self._tiles[key] = tile
        while len(self._tiles) > _MAX_TILES:
            self._tiles.popitem(last=False)
        return tile

    @staticmethod
    def _paint_star(painter: QPainter, target: QRectF) -> None:
        outer = max(6.0, min(target.width(), target.height()) * 0.075)
        center = QPointF(target.right() - outer - 5, target.top() + outer + 5)
        path = star_path(center, outer)
        painter.setPen(QPen(QColor(0, 0, 0, 150), 1.5))
        painter.setBrush(STAR_COLOR)
        painter.drawPath(path)


def _pixel_aligned(rect: QRectF) -> QRect:
    """Whole pixels, so cached tiles are copied 1:1 and stay sharp."""
    return QRect(round(rect.x()), round(rect.y()), round(rect.width()), round(rect.height()))


def _draw_rounded(painter: QPainter, rect: QRectF, pixmap: QPixmap) -> None:
    clip = QPainterPath()
    clip.addRoundedRect(rect, _RADIUS - 3, _RADIUS - 3)
    painter.setClipPath(clip)
    painter.drawPixmap(rect, pixmap, QRectF(pixmap.rect()))


def _draw_placeholder(painter: QPainter, rect: QRectF, ink: QColor, error: bool) -> None:
    """A soft tile with a small picture glyph; crossed out when the file cannot be read."""
    tint = QColor(ink)
    tint.setAlpha(28)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(tint)
    painter.drawRoundedRect(rect, _RADIUS - 3, _RADIUS - 3)
    mark = QColor(ink)
    mark.setAlpha(110 if error else 60)
    painter.setPen(QPen(mark, 2))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    side = min(rect.width(), rect.height()) * 0.22
    center = rect.center()
    box = QRectF(center.x() - side, center.y() - side * 0.75, side * 2, side * 1.5)
    painter.drawRoundedRect(box, 3, 3)
    if error:
        painter.drawLine(box.topLeft(), box.bottomRight())
        return
    hills = QPainterPath(QPointF(box.left() + 3, box.bottom() - 3))
    hills.lineTo(box.left() + box.width() * 0.4, box.top() + box.height() * 0.45)
    hills.lineTo(box.left() + box.width() * 0.6, box.top() + box.height() * 0.65)
    hills.lineTo(box.left() + box.width() * 0.75, box.top() + box.height() * 0.5)
    hills.lineTo(box.right() - 3, box.bottom() - 3)
    painter.drawPath(hills)
