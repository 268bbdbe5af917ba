"""The centre canvas: source image, live previews and results, and the inpainting mask.

The mask lives at image resolution in a :class:`MaskDocument`; this widget only maps
pointer positions through the current zoom onto it and paints a translucent overlay,
so what the engine receives never depends on how the user happened to be zoomed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from enum import Enum, auto
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import (
    Property,
    QEvent,
    QMimeData,
    QPointF,
    QRect,
    QRectF,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QFocusEvent,
    QGuiApplication,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QPointingDevice,
    QResizeEvent,
    QTabletEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QFileDialog, QPushButton, QToolBar, QWidget

from sd_desktop.ui.canvas_decor import (
    BACKGROUND,
    EMPTY_DETAIL,
    EMPTY_TITLE,
    open_button_top,
    paint_brush_cursor,
    paint_drop_highlight,
    paint_empty_state,
    paint_pill,
    paint_shadow,
)
from sd_desktop.ui.canvas_icons import canvas_icon
from sd_desktop.ui.canvas_image_io import (
    DEFAULT_LIMITS,
    FILE_DIALOG_FILTER,
    ImageLimits,
    ImageLoadError,
    check_pil,
    check_qimage,
    local_image_path,
    mime_has_image,
    pil_from_qimage,
    qimage_from_pil,
    qimage_to_array,
    read_image_file,
    read_image_mime,
    read_mask_file,
)
from sd_desktop.ui.canvas_preview import soften_preview
from sd_desktop.ui.canvas_toolbar import CanvasActions, build_canvas_actions, build_tool_bar
from sd_desktop.ui.canvas_view import ViewTransform
from sd_desktop.ui.mask_brush import Box, BrushPoint
from sd_desktop.ui.mask_document import MaskDocument
from sd_desktop.ui.mask_overlay import MaskOverlay


class _Layer(Enum):
    """Which picture the canvas is showing."""

    SOURCE = auto()
    PREVIEW = auto()
    RESULT = auto()


class CanvasWidget(QWidget):
    """Image canvas with an inpainting mask painter.

    Brush size is a diameter in image pixels: a 40 px brush paints a 40 px wide line
    at any zoom, and its outline on screen is ``brush_size * zoom`` wide.
    """

    mask_changed = Signal()
    image_changed = Signal()
    error = Signal(str)
    notice = Signal(str)
    zoom_changed = Signal(float)
    brush_size_changed = Signal(int)
    brush_hardness_changed = Signal(int)
    eraser_changed = Signal(bool)
    mask_editing_changed = Signal(bool)

    MIN_BRUSH_SIZE = 1
    MAX_BRUSH_SIZE = 1000
    MIN_ZOOM = 1 / 32
    MAX_ZOOM = 32.0

    def __init__(self, parent: QWidget | None = None, limits: ImageLimits = DEFAULT_LIMITS) -> None:
        super().__init__(parent)
        self._limits = limits
        self._source: QImage | None = None
        self._source_pixmap: QPixmap | None = None
        self._result: QImage | None = None
        self._result_pixmap: QPixmap | None = None
        self._preview: QImage | None = None
        self._preview_size: QSize | None = None
        self._layer = _Layer.SOURCE
        self._scaled_cache: tuple[tuple[int, int, int], QPixmap] | None = None

        self._mask: MaskDocument | None = None
        self._overlay = MaskOverlay()
        self._mask_editing = False

        self._brush_size = 48
        self._hardness = 80
        self._eraser = False
        self._pressure_size = True
        self._pressure_opacity = True

        self._view = ViewTransform(self.MIN_ZOOM, self.MAX_ZOOM)
        self._view_doc: QSize | None = None
        self._reported_zoom = self._view.scale
        self._cursor: QPointF | None = None
        self._space_held = False
        self._pan_anchor: tuple[QPointF, QPointF] | None = None
        self._stroking = False
        self._stroke_erase = False
        self._last_stroke_end: BrushPoint | None = None
        self._drag_hover = False
        self._empty_text = (EMPTY_TITLE, EMPTY_DETAIL)
        self._file_drop_handler: Callable[[Path], bool] | None = None
        self._hud_text = ""
        self._hud_timer = QTimer(self)
        self._hud_timer.setSingleShot(True)
        self._hud_timer.setInterval(1200)
        self._hud_timer.timeout.connect(self._hide_hud)
        self._last_dir = str(Path.home())

        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setAcceptDrops(True)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setAttribute(Qt.WidgetAttribute.WA_TabletTracking)
        self.setMinimumSize(160, 120)

        self._open_button = QPushButton(canvas_icon("open"), "Open Image…", self)
        self._open_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self._open_button.clicked.connect(self.open_image_dialog)
        self._actions = build_canvas_actions(self)
        self._sync_state()

    # ------------------------------------------------------------------ sources

    def set_image(self, image: QImage | Image.Image) -> bool:
        """Make ``image`` the source (e.g. "send to canvas" from the gallery).

        The mask survives when the new image has the same size (re-running an inpaint
        on a result keeps the painted area); otherwise it starts empty.
        """
        try:
            if isinstance(image, QImage):
                source = check_qimage(image, self._limits)
            elif isinstance(image, Image.Image):
                source = check_pil(image, self._limits)
            else:
                raise ImageLoadError("That is not an image the canvas can show.")
        except ImageLoadError as exc:
            self.error.emit(str(exc))
            return False
        self._cancel_interaction()
        self._source = source
        self._source_pixmap = None
        self._result = self._result_pixmap = self._preview = self._preview_size = None
        self._layer = _Layer.SOURCE
        size_changed = self._mask is None or (self._mask.width, self._mask.height) != (
            source.width(),
            source.height(),
        )
        if size_changed:
            had_mask = self._mask is not None and not self._mask.is_empty()
            self._mask = MaskDocument(source.width(), source.height())
            self._overlay.rebuild(self._mask.pixels)
            if had_mask:
                self.mask_changed.emit()
        self._document_changed()
        self.image_changed.emit()
        return True

    def load_image_file(self, path: str | os.PathLike[str]) -> bool:
        """Open an image file as the source; failures go to :attr:`error`."""
        try:
            image = read_image_file(path, self._limits)
        except ImageLoadError as exc:
            self.error.emit(str(exc))
            return False
        self._last_dir = str(Path(path).parent)
        return self.set_image(image)

    def open_image_dialog(self) -> bool:
        """Ask for a source image (File > Open and the empty-state button)."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open Image", self._last_dir, FILE_DIALOG_FILTER
        )
        return bool(path) and self.load_image_file(path)

    def paste_from_clipboard(self) -> bool:
        """Use the clipboard's image (or copied image file) as the source."""
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None or not mime_has_image(mime):
            self.error.emit("The clipboard holds no image.")
            return False
        return self._load_mime(mime)

    def clear_image(self) -> None:
        """Back to the empty state (mask and history too)."""
        self._cancel_interaction()
        had_mask = self._mask is not None and not self._mask.is_empty()
        self._source = self._source_pixmap = None
        self._result = self._result_pixmap = self._preview = self._preview_size = None
        self._mask = None
        self._overlay.clear()
        self._layer = _Layer.SOURCE
        self._document_changed()
        self.image_changed.emit()
        if had_mask:
            self.mask_changed.emit()

    def has_image(self) -> bool:
        return self._source is not None

    def set_empty_text(self, title: str, detail: str = "") -> None:
        """What the empty canvas says: the main window words it for the current mode
        (where the picture will appear, or how to bring one in)."""
        if (title, detail) == self._empty_text:
            return
        self._empty_text = (title, detail)
        self._place_open_button()
        self.update()

    def empty_text(self) -> tuple[str, str]:
        return self._empty_text

    def source_qimage(self) -> QImage | None:
        return QImage(self._source) if self._source is not None else None

    def source_image(self) -> Image.Image | None:
        """The source as an RGB PIL image, for img2img and inpaint requests."""
        return pil_from_qimage(self._source) if self._source is not None else None

    # ---------------------------------------------------------- previews/results

    def show_preview(self, image: QImage, target_size: QSize | None = None) -> None:
        """Show a live preview, stretched smoothly over the final image's area (a
        latent-resolution preview is softened first, see canvas_preview).

        ``target_size`` is the size of the image being generated; without it the
        source (or the last result) decides, so a 64×64 latent preview of a 512×512
        job fills the same rectangle the result will.
        """
        if image.isNull():
            return
        if target_size is not None and not target_size.isEmpty():
            self._preview_size = QSize(target_size)
        target = self._preview_size or next(
            (i.size() for i in (self._source, self._result) if i is not None), None
        )
        self._preview = soften_preview(QImage(image), target)
        self._layer = _Layer.PREVIEW
        self._document_changed(keep_view=True)

    def clear_preview(self) -> None:
        """Drop the preview (e.g. after cancelling) and show what was there before."""
        if self._preview is None:
            return
        self._preview = self._preview_size = None
        self._layer = _Layer.RESULT if self._result is not None else _Layer.SOURCE
        self._document_changed(keep_view=True)

    def show_result(self, image: QImage | Image.Image) -> None:
        """Show a finished image; the source and mask stay underneath."""
        if isinstance(image, Image.Image):
            image = qimage_from_pil(image.convert("RGB"))
        if image.isNull():
            return
        self._result = image.convertToFormat(QImage.Format.Format_RGB32)
        self._result_pixmap = None
        self._preview = self._preview_size = None
        self._layer = _Layer.RESULT
        self._document_changed(keep_view=True)

    def has_result(self) -> bool:
        return self._result is not None

    def result_qimage(self) -> QImage | None:
        return QImage(self._result) if self._result is not None else None

    def show_source(self) -> None:
        """Switch the view back to the source image (the result is kept)."""
        if self._source is not None and self._layer is not _Layer.SOURCE:
            self._layer = _Layer.SOURCE
            self._document_changed(keep_view=True)

    def show_result_view(self) -> None:
        if self._result is not None and self._layer is not _Layer.RESULT:
            self._layer = _Layer.RESULT
            self._document_changed(keep_view=True)

    def use_result_as_source(self) -> bool:
        """Continue from the result (img2img iteration); keeps a same-size mask."""
        return self._result is not None and self.set_image(self._result)

    # --------------------------------------------------------------------- mask

    def set_mask_editing(self, enabled: bool) -> None:
        """Show the mask overlay and turn the pointer into a brush (inpaint mode)."""
        if enabled == self._mask_editing:
            return
        self._cancel_interaction()
        self._mask_editing = enabled
        self._sync_state()
        self.update()
        self.mask_editing_changed.emit(enabled)

    def is_mask_editing(self) -> bool:
        return self._mask_editing

    def has_mask(self) -> bool:
        """True when any pixel is marked for repainting."""
        return self._mask is not None and not self._mask.is_empty()

    def mask_image(self) -> Image.Image | None:
        """The raw mask at image resolution ('L', 255 = repaint); None without an image."""
        if self._mask is None:
            return None
        return Image.fromarray(np.array(self._mask.pixels), "L")

    def mask_qimage(self) -> QImage:
        """The mask as a Grayscale8 QImage (null without an image)."""
        if self._mask is None:
            return QImage()
        pixels = np.ascontiguousarray(self._mask.pixels)
        height, width = pixels.shape
        return QImage(pixels.data, width, height, width, QImage.Format.Format_Grayscale8).copy()

    def set_mask(self, mask: Image.Image | QImage | np.ndarray) -> bool:
        """Replace the mask (one undo step); another size is resized with a notice."""
        if self._mask is None:
            self.error.emit("Open an image before setting a mask.")
            return False
        if isinstance(mask, QImage):
            pixels = qimage_to_array(mask, QImage.Format.Format_Grayscale8, 1)
        elif isinstance(mask, Image.Image):
            pixels = np.asarray(mask.convert("L"), dtype=np.uint8)
        else:
            pixels = np.asarray(mask)
            if pixels.ndim != 2:
                self.error.emit("A mask must be a single-channel image.")
                return False
            pixels = np.clip(pixels, 0, 255).astype(np.uint8)
        return self._replace_mask(pixels, "The mask")

    def load_mask_file(self, path: str | os.PathLike[str]) -> bool:
        """Load a mask PNG (white = repaint); resized to the image if needed."""
        if self._mask is None:
            self.error.emit("Open an image before loading a mask.")
            return False
        try:
            pixels = read_mask_file(path, self._limits)
        except ImageLoadError as exc:
            self.error.emit(str(exc))
            return False
        return self._replace_mask(pixels, Path(path).name)

    def save_mask_file(self, path: str | os.PathLike[str]) -> bool:
        """Write the mask as an 8-bit grayscale PNG."""
        mask = self.mask_image()
        if mask is None:
            self.error.emit("There is no mask to save yet.")
            return False
        try:
            mask.save(path, format="PNG")
        except (OSError, ValueError) as exc:
            self.error.emit(f"Could not save the mask: {exc}.")
            return False
        self.notice.emit(f"Mask saved to {Path(path).name}.")
        return True

    def load_mask_dialog(self) -> bool:
        if self._mask is None:
            self.error.emit("Open an image before loading a mask.")
            return False
        path, _ = QFileDialog.getOpenFileName(self, "Load Mask", self._last_dir, FILE_DIALOG_FILTER)
        return bool(path) and self.load_mask_file(path)

    def save_mask_dialog(self) -> bool:
        if self._mask is None:
            self.error.emit("There is no mask to save yet.")
            return False
        start = str(Path(self._last_dir) / "mask.png")
        path, _ = QFileDialog.getSaveFileName(self, "Save Mask", start, "PNG image (*.png)")
        if not path:
            return False
        if not path.lower().endswith(".png"):
            path += ".png"
        return self.save_mask_file(path)

    def undo(self) -> bool:
        return self._mask_op(lambda mask: mask.undo())

    def redo(self) -> bool:
        return self._mask_op(lambda mask: mask.redo())

    def clear_mask(self) -> bool:
        return self._mask_op(lambda mask: mask.clear())

    def invert_mask(self) -> bool:
        return self._mask_op(lambda mask: mask.invert())

    def can_undo(self) -> bool:
        return self._mask is not None and self._mask.can_undo

    def can_redo(self) -> bool:
        return self._mask is not None and self._mask.can_redo

    # -------------------------------------------------------------------- brush

    def _get_brush_size(self) -> int:
        return self._brush_size

    def set_brush_size(self, size: int) -> None:
        """Brush diameter in image pixels."""
        size = int(min(max(int(size), self.MIN_BRUSH_SIZE), self.MAX_BRUSH_SIZE))
        if size == self._brush_size:
            return
        self._brush_size = size
        self._update_cursor_area(grow=True)
        self.brush_size_changed.emit(size)

    brush_size = Property(int, _get_brush_size, set_brush_size, notify=brush_size_changed)

    def _get_brush_hardness(self) -> int:
        return self._hardness

    def set_brush_hardness(self, percent: int) -> None:
        """Edge hardness in percent: 100 is crisp, 0 fades from the centre out."""
        percent = int(min(max(int(percent), 0), 100))
        if percent != self._hardness:
            self._hardness = percent
            self.brush_hardness_changed.emit(percent)

    brush_hardness = Property(
        int, _get_brush_hardness, set_brush_hardness, notify=brush_hardness_changed
    )

    def increase_brush_size(self) -> None:
        self.set_brush_size(max(self._brush_size + 1, round(self._brush_size * 1.15)))
        self._flash(f"Brush {self._brush_size} px")

    def decrease_brush_size(self) -> None:
        self.set_brush_size(min(self._brush_size - 1, round(self._brush_size / 1.15)))
        self._flash(f"Brush {self._brush_size} px")

    def set_eraser(self, enabled: bool) -> None:
        enabled = bool(enabled)
        if enabled != self._eraser:
            self._eraser = enabled
            self._update_cursor_area()
            self.eraser_changed.emit(enabled)

    def is_eraser(self) -> bool:
        return self._eraser

    def set_pressure_response(self, size: bool = True, opacity: bool = True) -> None:
        """Which brush properties follow tablet pen pressure."""
        self._pressure_size, self._pressure_opacity = size, opacity

    def set_mask_color(self, color: QColor, opacity: float = 0.5) -> None:
        """Overlay colour and its strength where the mask is fully white."""
        self._overlay.set_colour(color, opacity)
        self._overlay.rebuild(self._mask.pixels if self._mask is not None else None)
        self.update()

    # --------------------------------------------------------------------- view

    def zoom(self) -> float:
        return self._view.scale

    def set_zoom(self, scale: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``scale`` keeping ``anchor`` (widget coordinates) still."""
        doc = self._document_size()
        if doc is None:
            return
        if anchor is None:
            anchor = self._cursor if self._cursor is not None else QPointF(self.rect().center())
        if self._view.zoom_at(scale, anchor):
            self._view.clamp(doc, self.size())
            self._after_zoom()

    def zoom_in(self) -> None:
        self.set_zoom(self._view.preset_step(up=True))

    def zoom_out(self) -> None:
        self.set_zoom(self._view.preset_step(up=False))

    def zoom_to_actual_size(self) -> None:
        self.set_zoom(1.0, QPointF(self.rect().center()) if self._cursor is None else None)

    def fit_to_window(self) -> None:
        doc = self._document_size()
        if doc is None:
            return
        self._view.fit(doc, self.size())
        self._after_zoom()

    def is_fit_to_window(self) -> bool:
        return self._view.fit_mode

    def widget_to_image(self, point: QPointF) -> QPointF:
        """Image pixel coordinates under a widget position (for tests and tools)."""
        return self._view.to_image(QPointF(point))

    def image_to_widget(self, point: QPointF) -> QPointF:
        return self._view.to_widget(QPointF(point))

    # ------------------------------------------------------------ tool bar glue

    @property
    def canvas_actions(self) -> CanvasActions:
        """All canvas commands as QActions, for menus and tool bars."""
        return self._actions

    def create_tool_bar(self, parent: QWidget | None = None) -> QToolBar:
        """A ready-made "Mask" tool bar (brush, eraser, sliders, undo, …)."""
        return build_tool_bar(self._actions, parent)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(720, 560)

    # ================================================================ internals

    def _document_size(self) -> QSize | None:
        """Size of the picture currently shown, in image pixels."""
        if self._layer is _Layer.PREVIEW and self._preview is not None:
            for size in (
                self._preview_size,
                self._source.size() if self._source is not None else None,
                self._result.size() if self._result is not None else None,
            ):
                if size is not None:
                    return size
            return self._preview.size()
        if self._layer is _Layer.RESULT and self._result is not None:
            return self._result.size()
        if self._source is not None:
            return self._source.size()
        return None

    def _document_changed(self, keep_view: bool = False) -> None:
        doc = self._document_size()
        if doc is not None and (not keep_view or self._view.fit_mode or self._view_doc != doc):
            self._view.fit(doc, self.size())
            self._after_zoom(flash=False)
        self._view_doc = QSize(doc) if doc is not None else None
        self._scaled_cache = None
        self._sync_state()
        self.update()

    def _after_zoom(self, flash: bool = True) -> None:
        self._scaled_cache = None
        if flash:
            self._flash(f"{self._view.scale * 100:.0f}%")
        self._emit_zoom()
        self.update()

    def _emit_zoom(self) -> None:
        if self._view.scale != self._reported_zoom:
            self._reported_zoom = self._view.scale
            self.zoom_changed.emit(self._view.scale)

    def _sync_state(self) -> None:
        """Enable actions and the empty-state button to match what is on screen."""
        empty = self._document_size() is None
        self._open_button.setVisible(empty)
        if empty:
            self._place_open_button()
        editing = self._mask_editing and self._mask is not None
        for action in self._actions.mask_tools():
            action.setEnabled(editing)
        self._actions.undo.setEnabled(editing and self._mask.can_undo)  # type: ignore[union-attr]
        self._actions.redo.setEnabled(editing and self._mask.can_redo)  # type: ignore[union-attr]
        for action in (
            self._actions.zoom_in,
            self._actions.zoom_out,
            self._actions.zoom_fit,
            self._actions.zoom_actual,
        ):
            action.setEnabled(not empty)
        self._update_cursor_shape()

    def _place_open_button(self) -> None:
        hint = self._open_button.sizeHint()
        width = max(hint.width() + 24, 150)
        top = open_button_top(self.rect(), self.font(), *self._empty_text)
        self._open_button.setGeometry(
            round(QRectF(self.rect()).center().x() - width / 2),
            round(top),
            width,
            hint.height() + 8,
        )

    def _cancel_interaction(self) -> None:
        if self._stroking and self._mask is not None:
            box = self._mask.cancel_stroke()
            if box is not None:
                self._refresh_overlay(box)
        self._stroking = False
        self._pan_anchor = None

    # mask helpers ----------------------------------------------------------------

    def _replace_mask(self, pixels: np.ndarray, what: str) -> bool:
        assert self._mask is not None
        height, width = pixels.shape
        if (width, height) != (self._mask.width, self._mask.height):
            resized = Image.fromarray(np.ascontiguousarray(pixels), "L").resize(
                (self._mask.width, self._mask.height), Image.Resampling.BILINEAR
            )
            pixels = np.asarray(resized, dtype=np.uint8)
            self.notice.emit(
                f"{what} was {width}×{height}; resized to the image's "
                f"{self._mask.width}×{self._mask.height}."
            )
        self._cancel_interaction()
        self._refresh_overlay(self._mask.replace(pixels))
        self._mask_edited()
        return True

    def _mask_op(self, operation: Callable[[MaskDocument], Box | None]) -> bool:
        if self._mask is None or self._stroking:
            return False
        box = operation(self._mask)
        if box is None:
            return False
        self._refresh_overlay(box)
        self._mask_edited()
        return True

    def _mask_edited(self) -> None:
        self._sync_state()
        self.mask_changed.emit()

    def _refresh_overlay(self, box: Box) -> None:
        """Recolour the overlay inside ``box`` and repaint that part of the screen."""
        if self._mask is None:
            return
        redrawn = self._overlay.refresh(self._mask.pixels, box)
        if redrawn is not None:
            self.update(self._view.widget_rect(*redrawn))

    # painting strokes --------------------------------------------------------------

    def _can_paint(self) -> bool:
        """Painting needs the mask's image on screen (or a same-size result)."""
        if not self._mask_editing or self._mask is None or self._space_held:
            return False
        if self._layer is _Layer.SOURCE:
            return True
        return (
            self._layer is _Layer.RESULT
            and self._result is not None
            and self._result.size() == QSize(self._mask.width, self._mask.height)
        )

    def _brush_point(self, pos: QPointF, pressure: float) -> BrushPoint:
        image_pos = self._view.to_image(pos)
        pressure = min(max(pressure, 0.0), 1.0)
        size_factor = 0.1 + 0.9 * pressure if self._pressure_size else 1.0
        opacity = 0.15 + 0.85 * pressure if self._pressure_opacity else 1.0
        return BrushPoint(image_pos.x(), image_pos.y(), self._brush_size / 2 * size_factor, opacity)

    def _begin_stroke(
        self, pos: QPointF, pressure: float, erase: bool, straight_line: bool
    ) -> None:
        assert self._mask is not None
        if self._layer is not _Layer.SOURCE:
            self.show_source()
        self._stroking = True
        self._stroke_erase = erase
        self._mask.begin_stroke(erase=erase, hardness=self._hardness / 100)
        point = self._brush_point(pos, pressure)
        if straight_line and self._last_stroke_end is not None:
            self._stroke_segment(self._last_stroke_end)
        self._stroke_segment(point)

    def _stroke_segment(self, point: BrushPoint) -> None:
        assert self._mask is not None
        box = self._mask.stroke_to(point)
        self._last_stroke_end = point
        if box is not None:
            self._refresh_overlay(box)

    def _end_stroke(self) -> None:
        if not self._stroking or self._mask is None:
            return
        self._stroking = False
        if self._mask.end_stroke():
            self._mask_edited()

    def _stroke_erases(self, right_button: bool, modifiers: Qt.KeyboardModifier) -> bool:
        """Right button or Ctrl flips the current tool for one stroke."""
        flip = right_button or bool(modifiers & Qt.KeyboardModifier.ControlModifier)
        return self._eraser != flip

    # pointer events --------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        pos = event.position()
        button = event.button()
        if self._stroking or self._pan_anchor is not None:
            event.accept()
            return
        if button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and self._space_held
        ):
            self._start_pan(pos)
        elif (
            button in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton) and self._can_paint()
        ):
            erase = self._stroke_erases(button == Qt.MouseButton.RightButton, event.modifiers())
            shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            self._begin_stroke(pos, 1.0, erase, straight_line=shift)
        else:
            super().mousePressEvent(event)
            return
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        self._move_pointer(event.position(), 1.0)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self._stroking:
            self._stroke_segment(self._brush_point(event.position(), 1.0))
            self._end_stroke()
        self._pan_anchor = None
        self._update_cursor_shape()
        event.accept()

    def tabletEvent(self, event: QTabletEvent) -> None:  # noqa: N802 - Qt override
        kind = event.type()
        pos = event.position()
        pressure = event.pressure()
        if kind == QEvent.Type.TabletPress:
            if (
                event.button() != Qt.MouseButton.LeftButton
                or self._space_held
                or not self._can_paint()
            ):
                event.ignore()  # side buttons and panning fall back to mouse events
                return
            eraser_end = event.pointerType() == QPointingDevice.PointerType.Eraser
            erase = self._eraser != (
                eraser_end or bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
            )
            self.setFocus(Qt.FocusReason.MouseFocusReason)
            self._begin_stroke(pos, pressure, erase, straight_line=False)
        elif kind == QEvent.Type.TabletMove:
            if self._pan_anchor is not None:
                event.ignore()
                return
            self._move_pointer(pos, pressure)
        elif kind == QEvent.Type.TabletRelease:
            if not self._stroking:
                event.ignore()
                return
            self._end_stroke()
        event.accept()

    def _move_pointer(self, pos: QPointF, pressure: float) -> None:
        self._update_cursor_area()
        self._cursor = QPointF(pos)
        if self._pan_anchor is not None:
            start, offset = self._pan_anchor
            doc = self._document_size()
            if doc is not None:
                self._view.pan_to(offset + (pos - start), doc, self.size())
                self.update()
        elif self._stroking:
            self._stroke_segment(self._brush_point(pos, pressure))
        self._update_cursor_area()

    def _start_pan(self, pos: QPointF) -> None:
        if self._document_size() is None:
            return
        self._pan_anchor = (QPointF(pos), QPointF(self._view.offset))
        self._update_cursor_shape()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta == 0 or self._document_size() is None:
            event.ignore()
            return
        self.set_zoom(self._view.scale * 2 ** (delta / 480), event.position())
        event.accept()

    def enterEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        self._update_cursor_shape()
        super().enterEvent(event)

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        self._update_cursor_area()
        self._cursor = None
        super().leaveEvent(event)

    # keys ------------------------------------------------------------------------

    def has_interaction(self) -> bool:
        """A stroke or a pan is under way (Esc cancels it)."""
        return self._stroking or self._pan_anchor is not None

    def event(self, event: QEvent) -> bool:
        # Window shortcuts see a key before the focused widget does unless the widget
        # claims it here: Esc cancels the stroke in progress, not the running job.
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Escape
            and self.has_interaction()
        ):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        key = event.key()
        if key == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space_held = True
                self._update_cursor_shape()
                self._update_cursor_area()
            event.accept()
        elif key == Qt.Key.Key_Escape and self.has_interaction():
            self._cancel_interaction()
            self._update_cursor_shape()
            event.accept()
        elif key == Qt.Key.Key_Control:
            self._update_cursor_area()
            super().keyPressEvent(event)
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            self._update_cursor_shape()
            event.accept()
            return
        if event.key() == Qt.Key.Key_Control:
            self._update_cursor_area()
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:  # noqa: N802 - Qt override
        self._space_held = False
        self._update_cursor_shape()
        super().focusOutEvent(event)

    # drag and drop ---------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if mime_has_image(event.mimeData()):
            event.acceptProposedAction()
            self._drag_hover = True
            self.update()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 - Qt override
        if mime_has_image(event.mimeData()):
            event.acceptProposedAction()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:  # noqa: N802 - Qt override
        self._drag_hover = False
        self.update()

    def set_file_drop_handler(self, handler: Callable[[Path], bool] | None) -> None:
        """Let the owner look at an image file dropped from outside the app first (the main
        window offers its parameters); when ``handler(path)`` returns False the canvas
        opens the file as usual. Drags from inside the app are always opened."""
        self._file_drop_handler = handler

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        self._drag_hover = False
        self.update()
        mime = event.mimeData()
        if not mime_has_image(mime):
            event.ignore()
            return
        event.acceptProposedAction()
        handler = self._file_drop_handler
        if handler is not None and event.source() is None and mime.hasUrls():
            url = mime.urls()[0]
            if url.isLocalFile() and handler(Path(url.toLocalFile())):
                return
        self._load_mime(mime)

    def _load_mime(self, mime: QMimeData) -> bool:
        """Source image from drag-and-drop or clipboard data; errors go to :attr:`error`."""
        try:
            path = local_image_path(mime)
            if path is not None:
                return self.load_image_file(path)
            return self.set_image(read_image_mime(mime, self._limits))
        except ImageLoadError as exc:
            self.error.emit(str(exc))
            return False

    # geometry --------------------------------------------------------------------

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        doc = self._document_size()
        if doc is not None:
            if self._view.fit_mode:
                self._view.fit(doc, event.size())
                self._emit_zoom()
            elif event.oldSize().isValid():
                self._view.keep_centre_on_resize(event.oldSize(), event.size())
                self._view.clamp(doc, event.size())
            self._scaled_cache = None
        self._place_open_button()
        super().resizeEvent(event)

    # drawing ---------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(event.rect(), BACKGROUND)
        doc = self._document_size()
        if doc is None:
            paint_empty_state(
                painter, self.rect(), self.font(), self._drag_hover, *self._empty_text
            )
            painter.end()
            return
        target = self._view.image_rect(doc)
        paint_shadow(painter, target)
        self._paint_picture(painter, target)
        overlay = self._overlay.image
        if self._overlay_visible() and overlay is not None:
            self._set_sampling(painter)
            painter.drawImage(target, overlay)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(QPen(QColor(0, 0, 0, 120), 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(target.adjusted(-0.5, -0.5, 0.5, 0.5))
        self._paint_badge(painter)
        if self._drag_hover:
            paint_drop_highlight(painter, QRectF(self.rect()).adjusted(6, 6, -6, -6))
        self._paint_brush_cursor(painter)
        self._paint_hud(painter)
        painter.end()

    def _overlay_visible(self) -> bool:
        return self._mask_editing and self._layer is _Layer.SOURCE

    def _set_sampling(self, painter: QPainter) -> None:
        """Smooth when zoomed out or near 100 %, crisp pixels when magnified."""
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._view.scale < 2.0)

    def _paint_picture(self, painter: QPainter, target: QRectF) -> None:
        if self._layer is _Layer.PREVIEW and self._preview is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            painter.drawImage(target, self._preview)
            return
        image = self._result if self._layer is _Layer.RESULT else self._source
        if image is None:
            return
        pixmap = self._pixmap_for(image)
        if self._view.scale < 1.0:
            # Area-averaged downscale once per zoom level; bilinear alone would alias.
            width = max(1, round(target.width()))
            height = max(1, round(target.height()))
            key = (pixmap.cacheKey(), width, height)
            if self._scaled_cache is None or self._scaled_cache[0] != key:
                scaled = image.scaled(
                    width,
                    height,
                    Qt.AspectRatioMode.IgnoreAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
                self._scaled_cache = (key, QPixmap.fromImage(scaled))
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            painter.drawPixmap(target, self._scaled_cache[1], QRectF(self._scaled_cache[1].rect()))
            return
        self._set_sampling(painter)
        painter.drawPixmap(target, pixmap, QRectF(pixmap.rect()))

    def _pixmap_for(self, image: QImage) -> QPixmap:
        if image is self._source:
            if self._source_pixmap is None:
                self._source_pixmap = QPixmap.fromImage(image)
            return self._source_pixmap
        if self._result_pixmap is None:
            self._result_pixmap = QPixmap.fromImage(image)
        return self._result_pixmap

    def _paint_badge(self, painter: QPainter) -> None:
        if self._layer is _Layer.PREVIEW:
            text = "Preview"
        elif self._layer is _Layer.RESULT:
            text = "Result"
        elif self._result is not None:
            text = "Source"
        else:
            return
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
        paint_pill(painter, self.rect(), self.font(), text, align)

    def _paint_hud(self, painter: QPainter) -> None:
        if self._hud_text:
            align = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom
            paint_pill(painter, self.rect(), self.font(), self._hud_text, align)

    def _cursor_erases(self) -> bool:
        if self._stroking:
            return self._stroke_erase
        ctrl = bool(QGuiApplication.queryKeyboardModifiers() & Qt.KeyboardModifier.ControlModifier)
        return self._eraser != ctrl

    def _paint_brush_cursor(self, painter: QPainter) -> None:
        if self._cursor is None or not self._can_paint() or self._pan_anchor is not None:
            return
        radius = self._brush_size / 2 * self._view.scale
        paint_brush_cursor(painter, self._cursor, radius, self._hardness, self._cursor_erases())

    def _update_cursor_area(self, grow: bool = False) -> None:
        """Repaint where the brush outline is (or is about to be)."""
        if self._cursor is None:
            return
        radius = self._brush_size / 2 * self._view.scale
        if grow:
            radius *= 1.2
        extent = math.ceil(radius + 8)
        c = self._cursor
        self.update(QRect(round(c.x()) - extent, round(c.y()) - extent, 2 * extent, 2 * extent))

    def _update_cursor_shape(self) -> None:
        if self._pan_anchor is not None:
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        elif self._space_held and self._document_size() is not None:
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        elif self._can_paint():
            self.setCursor(Qt.CursorShape.BlankCursor)
        else:
            self.unsetCursor()

    def _flash(self, text: str) -> None:
        self._hud_text = text
        self._hud_timer.start()
        self.update()

    def _hide_hud(self) -> None:
        self._hud_text = ""
        self.update()
