"""The canvas widget: mask painting through real Qt input events, mask files, safety."""

from __future__ import annotations

import io
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import PySide6
import pytest
from PIL import Image, ImageDraw
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSize, Qt, QUrl
from PySide6.QtGui import (
    QAction,
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QInputDevice,
    QKeySequence,
    QPointingDevice,
    QTabletEvent,
)
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QPushButton, QToolBar

from sd_desktop.ui.canvas import CanvasWidget
from sd_desktop.ui.canvas_image_io import (
    ImageLimits,
    ImageLoadError,
    local_image_path,
    mime_has_image,
    read_image_bytes,
    read_image_mime,
)
from sd_desktop.ui.canvas_preview import soften_preview

LEFT = Qt.MouseButton.LeftButton
NOMOD = Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier
SIZE = 512


@pytest.fixture(autouse=True, scope="module")
def _working_qt_bindings(qapp) -> None:
    """Fail clearly (instead of a later interpreter abort) on the PySide6 None-refcount bug.

    PySide6 6.12.0 on Python 3.11 drops a reference to None on every call of a void
    method; after a few thousand calls the interpreter aborts with "none_dealloc".
    """
    probe = QToolBar()
    before = sys.getrefcount(None)
    for _ in range(100):
        probe.update()
    lost = before - sys.getrefcount(None)
    probe.deleteLater()
    if lost >= 100:
        pytest.fail(
            f"PySide6 {PySide6.__version__} loses a reference to None on every void call "
            f"(Python {sys.version.split()[0]}); pin PySide6-Essentials<6.12 or use Python 3.12+."
        )


def sample_image(width: int = SIZE, height: int = SIZE) -> Image.Image:
    ramp = np.linspace(0, 255, width, dtype=np.uint8)
    pixels = np.stack(
        [
            np.tile(ramp, (height, 1)),
            np.full((height, width), 90, np.uint8),
            np.tile(ramp[::-1], (height, 1)),
        ],
        axis=-1,
    )
    return Image.fromarray(pixels, "RGB")


@pytest.fixture
def canvas(qtbot) -> CanvasWidget:
    widget = CanvasWidget()
    qtbot.addWidget(widget)
    widget.resize(600, 600)
    widget.show()
    widget.activateWindow()
    widget.setFocus()
    qtbot.waitActive(widget)
    assert widget.set_image(sample_image())
    widget.set_mask_editing(True)
    widget.set_brush_size(20)
    widget.set_brush_hardness(100)
    return widget


def at(canvas: CanvasWidget, x: float, y: float) -> QPoint:
    """Widget position of image pixel (x, y)."""
    return canvas.image_to_widget(QPointF(x, y)).toPoint()


def drag(canvas: CanvasWidget, points, button=LEFT, modifiers=NOMOD) -> None:
    """Press at the first image point, move through the rest, release at the last."""
    widget_points = [at(canvas, x, y) for x, y in points]
    QTest.mousePress(canvas, button, modifiers, widget_points[0])
    for p in widget_points[1:]:
        QTest.mouseMove(canvas, p)
    QTest.mouseRelease(canvas, button, modifiers, widget_points[-1])


def mask(canvas: CanvasWidget) -> np.ndarray:
    image = canvas.mask_image()
    assert image is not None and image.mode == "L" and image.size == (SIZE, SIZE)
    return np.asarray(image)


def stroke_width(column: np.ndarray) -> int:
    return int((column > 127).sum())


def test_fit_maps_the_image_into_the_widget(canvas):
    assert canvas.is_fit_to_window()
    top_left = canvas.image_to_widget(QPointF(0, 0))
    bottom_right = canvas.image_to_widget(QPointF(SIZE, SIZE))
    assert 0 <= top_left.x() < 40 and 560 < bottom_right.x() <= 600
    assert canvas.zoom() == pytest.approx((bottom_right.x() - top_left.x()) / SIZE)
    assert canvas.zoom() > 1.0  # a 512 image in a 600 px widget is enlarged to fit


def test_stroke_paints_mask_and_undo_redo(canvas, qtbot):
    assert not canvas.has_mask()
    with qtbot.waitSignal(canvas.mask_changed):
        drag(canvas, [(100, 256), (180, 250), (260, 256), (400, 256)])
    m = mask(canvas)
    for x, y in [(100, 256), (150, 253), (260, 256), (330, 256), (400, 256), (260, 262)]:
        assert m[y, x] == 255, (x, y)
    for x, y in [(60, 256), (440, 256), (260, 280), (260, 232), (10, 10), (500, 500)]:
        assert m[y, x] == 0, (x, y)
    assert canvas.has_mask() and canvas.can_undo()

    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    assert not mask(canvas).any()
    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL | Qt.KeyboardModifier.ShiftModifier)
    np.testing.assert_array_equal(mask(canvas), m)
    QTest.keyClick(canvas, Qt.Key.Key_Z, CTRL)
    QTest.keyClick(canvas, Qt.Key.Key_Y, CTRL)
    np.testing.assert_array_equal(mask(canvas), m)


def test_each_stroke_is_one_undo_step(canvas):
    drag(canvas, [(50, 100), (450, 100)])
    drag(canvas, [(50, 400), (450, 400)])
    canvas.undo()
    m = mask(canvas)
    assert m[100, 250] == 255 and m[400, 250] == 0
    canvas.undo()
    assert not mask(canvas).any()
    assert not canvas.undo()  # nothing left, no crash


def test_fast_move_leaves_no_gaps(canvas):
    drag(canvas, [(20, 300), (490, 300)])  # one mouse move across the whole image
    m = mask(canvas)
    assert m[300, 20:491].min() == 255
    assert stroke_width(m[:, 250]) in (19, 20, 21)


def test_shift_click_draws_a_straight_line_and_escape_cancels(canvas):
    drag(canvas, [(60, 60)])
    drag(canvas, [(460, 460)], modifiers=Qt.KeyboardModifier.ShiftModifier)
    m = mask(canvas)
    assert all(m[v, v] == 255 for v in range(60, 461, 10))
    assert m[60, 460] == 0 and m[460, 60] == 0
    canvas.undo()  # the line is its own undo step
    m = mask(canvas)
    assert m[60, 60] == 255 and m[260, 260] == 0

    QTest.mousePress(canvas, LEFT, NOMOD, at(canvas, 100, 400))
    QTest.mouseMove(canvas, at(canvas, 300, 400))
    assert mask(canvas)[400, 200] == 255
    QTest.keyClick(canvas, Qt.Key.Key_Escape)
    QTest.mouseRelease(canvas, LEFT, NOMOD, at(canvas, 300, 400))
    assert mask(canvas)[400, 200] == 0 and mask(canvas)[60, 60] == 255


def test_eraser_key_and_right_button_erase(canvas):
    drag(canvas, [(50, 256), (460, 256)])
    QTest.keyClick(canvas, Qt.Key.Key_E)
    assert canvas.is_eraser()
    drag(canvas, [(150, 200), (150, 310)])
    m = mask(canvas)
    assert m[256, 150] == 0 and m[256, 100] == 255 and m[256, 300] == 255

    QTest.keyClick(canvas, Qt.Key.Key_B)
    assert not canvas.is_eraser()
    drag(canvas, [(300, 200), (300, 310)], button=Qt.MouseButton.RightButton)
    assert mask(canvas)[256, 300] == 0
    drag(canvas, [(400, 200), (400, 310)], modifiers=CTRL)
    assert mask(canvas)[256, 400] == 0
    assert mask(canvas)[256, 350] == 255


def test_soft_brush_fades_towards_the_edge(canvas):
    canvas.set_brush_size(60)
    canvas.set_brush_hardness(0)
    drag(canvas, [(100, 256), (400, 256)])
    column = mask(canvas)[:, 250].astype(int)
    assert column[256] == 255
    assert 0 < column[256 + 20] < column[256 + 10] < 255
    assert column[256 + 31] == 0


def test_invert_and_clear(canvas, qtbot):
    drag(canvas, [(100, 256), (400, 256)])
    before = mask(canvas).copy()
    QTest.keyClick(canvas, Qt.Key.Key_I, CTRL)
    np.testing.assert_array_equal(mask(canvas), 255 - before)
    canvas.invert_mask()
    np.testing.assert_array_equal(mask(canvas), before)
    with qtbot.waitSignal(canvas.mask_changed):
        QTest.keyClick(canvas, Qt.Key.Key_Delete)
    assert not canvas.has_mask() and not mask(canvas).any()
    canvas.undo()
    np.testing.assert_array_equal(mask(canvas), before)


def test_history_is_bounded(canvas):
    for i in range(120):
        drag(canvas, [(10 + 4 * i, 30), (10 + 4 * i, 40)])
    undone = 0
    while canvas.undo():
        undone += 1
    assert 0 < undone <= 100
    assert mask(canvas).any()  # the oldest strokes can no longer be undone


def test_brush_size_keys(canvas, qtbot):
    with qtbot.waitSignal(canvas.brush_size_changed) as blocker:
        QTest.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert blocker.args == [23]
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size == 20
    canvas.set_brush_size(2)
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size == CanvasWidget.MIN_BRUSH_SIZE
    canvas.brush_size = 5000
    assert canvas.brush_size == CanvasWidget.MAX_BRUSH_SIZE


def test_save_load_round_trip(canvas, tmp_path):
    canvas.set_brush_hardness(40)
    drag(canvas, [(80, 120), (300, 380), (420, 140)])
    painted = mask(canvas).copy()
    path = tmp_path / "mask.png"
    assert canvas.save_mask_file(path)
    with Image.open(path) as saved:
        assert saved.mode == "L" and saved.size == (SIZE, SIZE)
    canvas.clear_mask()
    assert canvas.load_mask_file(path)
    np.testing.assert_array_equal(mask(canvas), painted)
    qmask = canvas.mask_qimage()
    assert qmask.format() == QImage.Format.Format_Grayscale8 and qmask.size() == QSize(SIZE, SIZE)
    assert QColor(qmask.pixel(300, 380)).value() == painted[380, 300]


def test_mask_of_another_size_is_resized_with_notice(canvas, qtbot, tmp_path):
    small = Image.new("L", (256, 256), 0)
    ImageDraw.Draw(small).rectangle([0, 0, 127, 255], fill=255)
    path = tmp_path / "small.png"
    small.save(path)
    with qtbot.waitSignal(canvas.notice) as blocker:
        assert canvas.load_mask_file(path)
    assert "256×256" in blocker.args[0] and "512×512" in blocker.args[0]
    m = mask(canvas)
    assert m[256, 100] == 255 and m[256, 400] == 0 and m[10, 250] == 255 and m[10, 262] == 0


def test_transparent_mask_pixels_mean_keep(canvas, tmp_path):
    rgba = Image.new("RGBA", (SIZE, SIZE), (255, 255, 255, 0))
    ImageDraw.Draw(rgba).rectangle([0, 0, 99, 99], fill=(255, 255, 255, 255))
    rgba.save(tmp_path / "alpha.png")
    assert canvas.load_mask_file(tmp_path / "alpha.png")
    m = mask(canvas)
    assert m[50, 50] == 255 and m[300, 300] == 0


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a size but whose pixel data is missing."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"x\x9c") + chunk(b"IEND", b"")
    )


def drop(canvas: CanvasWidget, mime: QMimeData) -> None:
    """Deliver a drag-enter and a drop, as Qt does for a real drag."""
    pos, action = QPointF(300, 300), Qt.DropAction.CopyAction
    try:
        enter = QDragEnterEvent(pos, action, mime, LEFT, NOMOD)
    except TypeError:  # PySide6 before 6.12 only takes a QPoint here
        enter = QDragEnterEvent(pos.toPoint(), action, mime, LEFT, NOMOD)
    QApplication.sendEvent(canvas, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(canvas, QDropEvent(pos, action, mime, LEFT, NOMOD))


def file_mime(path: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    return mime


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        ("wide.png", png_header_only(9000, 100), "8192"),
        ("huge.png", png_header_only(8000, 8100), "megapixels"),
        ("truncated.png", png_header_only(300, 200), "damaged"),
        ("garbage.png", b"\x89PNG\r\n\x1a\nnot really a png at all", "damaged"),
        ("script.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not a supported"),
        ("empty.jpg", b"", "empty"),
    ],
)
def test_bad_dropped_files_report_errors(canvas, qtbot, tmp_path, name, payload, message):
    path = tmp_path / name
    path.write_bytes(payload)
    before = canvas.source_qimage()
    changes = []
    canvas.image_changed.connect(lambda: changes.append(1))
    with qtbot.waitSignal(canvas.error) as blocker:
        drop(canvas, file_mime(path))
    assert message in blocker.args[0]
    assert "\n" not in blocker.args[0]
    assert not changes and canvas.source_qimage() == before


def test_bad_dropped_image_data_reports_error(canvas, qtbot):
    mime = QMimeData()
    mime.setData("image/png", png_header_only(20000, 20000))
    with qtbot.waitSignal(canvas.error) as blocker:
        drop(canvas, mime)
    assert "too large" in blocker.args[0]


def test_dropped_file_becomes_the_source(canvas, qtbot, tmp_path):
    path = tmp_path / "photo.jpg"
    sample_image(320, 200).save(path, quality=95)
    with qtbot.waitSignal(canvas.image_changed):
        drop(canvas, file_mime(path))
    assert canvas.source_qimage().size() == QSize(320, 200)
    assert canvas.mask_image().size == (320, 200)  # new size, fresh mask
    assert canvas.source_image().mode == "RGB"


def test_remote_url_is_refused(canvas, qtbot):
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.com/cat.png")])
    with qtbot.waitSignal(canvas.error) as blocker:
        drop(canvas, mime)
    assert "local" in blocker.args[0]


def test_mime_reading_without_a_widget(qapp):  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    Image.new("RGBA", (30, 20), (10, 20, 30, 128)).save(buffer, format="PNG")
    mime = QMimeData()
    mime.setData("image/png", buffer.getvalue())
    assert mime_has_image(mime) and local_image_path(mime) is None
    image = read_image_mime(mime)
    assert image.size() == QSize(30, 20)
    # Transparency is flattened onto white, as for files: half-transparent (10, 20, 30).
    assert QColor(image.pixel(5, 5)).getRgb()[:3] == (132, 137, 142)
    empty = QMimeData()
    empty.setText("just words")
    assert not mime_has_image(empty) and not mime_has_image(None)
    with pytest.raises(ImageLoadError):
        read_image_mime(empty)  # a clear refusal, never a TypeError from Qt


def test_paste_from_clipboard(canvas, qtbot):
    image = QImage(100, 80, QImage.Format.Format_RGB32)
    image.fill(QColor(0, 200, 0))
    QGuiApplication.clipboard().setImage(image)
    with qtbot.waitSignal(canvas.image_changed):
        QTest.keyClick(canvas, Qt.Key.Key_V, CTRL)
    pasted = canvas.source_qimage()
    assert pasted.size() == QSize(100, 80)
    assert QColor(pasted.pixel(50, 40)).green() == 200


def test_oversized_in_memory_image_is_refused(canvas, qtbot):
    with qtbot.waitSignal(canvas.error) as blocker:
        assert not canvas.set_image(Image.new("L", (9000, 4)))
    assert "8192" in blocker.args[0]
    assert canvas.source_qimage().size() == QSize(SIZE, SIZE)


def test_same_size_image_keeps_the_mask(canvas):
    drag(canvas, [(100, 256), (400, 256)])
    assert canvas.set_image(sample_image().transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    assert canvas.has_mask()
    assert canvas.set_image(sample_image(256, 256))
    assert not canvas.has_mask() and canvas.mask_image().size == (256, 256)


@pytest.mark.parametrize("zoom", [2.0, 0.5])
def test_zoom_keeps_mask_at_image_resolution(canvas, qtbot, zoom):
    with qtbot.waitSignal(canvas.zoom_changed) as blocker:
        canvas.set_zoom(zoom, QPointF(300, 300))
    assert blocker.args == [pytest.approx(zoom)]
    assert not canvas.is_fit_to_window()
    centre = canvas.widget_to_image(QPointF(300, 300))
    cx, cy = centre.x(), centre.y()
    drag(canvas, [(cx - 60, cy), (cx + 60, cy)])
    m = mask(canvas)
    # Brush size is a diameter in image pixels, whatever the zoom.
    assert stroke_width(m[:, round(cx)]) in (19, 20, 21)
    assert m.shape == (SIZE, SIZE)
    assert m[round(cy), round(cx) - 55] == 255 and m[round(cy), round(cx) + 75] == 0


def test_zoom_shortcuts_and_wheel(canvas, qtbot):
    fitted = canvas.zoom()
    QTest.keyClick(canvas, Qt.Key.Key_Plus, CTRL)
    assert canvas.zoom() > fitted
    QTest.keyClick(canvas, Qt.Key.Key_Minus, CTRL)
    QTest.keyClick(canvas, Qt.Key.Key_Minus, CTRL)
    assert canvas.zoom() < fitted
    QTest.keyClick(canvas, Qt.Key.Key_1, CTRL)
    assert canvas.zoom() == 1.0
    QTest.keyClick(canvas, Qt.Key.Key_0, CTRL)
    assert canvas.zoom() == pytest.approx(fitted) and canvas.is_fit_to_window()

    anchor = QPointF(150, 420)
    under = canvas.widget_to_image(anchor)
    QTest.mouseMove(canvas, anchor.toPoint())
    from PySide6.QtGui import QWheelEvent

    wheel = QWheelEvent(
        anchor,
        canvas.mapToGlobal(anchor),
        QPoint(0, 0),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        NOMOD,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(canvas, wheel)
    assert canvas.zoom() == pytest.approx(fitted * 2**0.5)
    after = canvas.widget_to_image(anchor)
    assert after.x() == pytest.approx(under.x()) and after.y() == pytest.approx(under.y())


def test_middle_button_and_space_pan(canvas):
    canvas.set_zoom(2.0, QPointF(300, 300))
    before = canvas.widget_to_image(QPointF(300, 300))
    QTest.mousePress(canvas, Qt.MouseButton.MiddleButton, NOMOD, QPoint(300, 300))
    QTest.mouseMove(canvas, QPoint(340, 280))
    QTest.mouseRelease(canvas, Qt.MouseButton.MiddleButton, NOMOD, QPoint(340, 280))
    after = canvas.widget_to_image(QPointF(300, 300))
    assert after.x() == pytest.approx(before.x() - 20) and after.y() == pytest.approx(
        before.y() + 10
    )

    QTest.keyPress(canvas, Qt.Key.Key_Space)
    QTest.mousePress(canvas, LEFT, NOMOD, QPoint(300, 300))
    QTest.mouseMove(canvas, QPoint(260, 300))
    QTest.mouseRelease(canvas, LEFT, NOMOD, QPoint(260, 300))
    QTest.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.widget_to_image(QPointF(300, 300)).x() == pytest.approx(after.x() + 20)
    assert not canvas.has_mask()  # space-drag pans, it never paints


def tablet_event(kind, pos: QPointF, pressure: float, device: QPointingDevice) -> QTabletEvent:
    buttons = Qt.MouseButton.NoButton if kind == QTabletEvent.Type.TabletRelease else LEFT
    return QTabletEvent(
        kind, device, pos, pos, pressure, 0.0, 0.0, 0.0, 0.0, 0.0, NOMOD, LEFT, buttons
    )


def test_pen_pressure_scales_the_brush(canvas):
    pen = QPointingDevice(
        "test pen",
        1,
        QInputDevice.DeviceType.Stylus,
        QPointingDevice.PointerType.Pen,
        QInputDevice.Capability.Position | QInputDevice.Capability.Pressure,
        1,
        3,
    )
    canvas.set_brush_size(40)
    canvas.set_pressure_response(size=True, opacity=False)
    for y, pressure in ((150, 1.0), (350, 0.25)):
        a, b = QPointF(at(canvas, 100, y)), QPointF(at(canvas, 400, y))
        for kind, pos in (
            (QTabletEvent.Type.TabletPress, a),
            (QTabletEvent.Type.TabletMove, b),
            (QTabletEvent.Type.TabletRelease, b),
        ):
            event = tablet_event(kind, pos, pressure, pen)
            QApplication.sendEvent(canvas, event)
            assert event.isAccepted()
    m = mask(canvas)
    full, light = stroke_width(m[:, 250][:250]), stroke_width(m[:, 250][250:])
    assert full in (39, 40, 41)
    assert light == pytest.approx(40 * (0.1 + 0.9 * 0.25), abs=2)
    assert canvas.can_undo()


def test_preview_and_result_display(canvas, qtbot):
    preview = QImage(64, 64, QImage.Format.Format_RGB32)
    preview.fill(QColor(250, 10, 10))
    canvas.show_preview(preview)
    rect_top_left = canvas.image_to_widget(QPointF(0, 0))
    rect_bottom_right = canvas.image_to_widget(QPointF(SIZE, SIZE))
    shot = canvas.grab().toImage()
    inner = QPointF(rect_bottom_right.x() - 8, rect_bottom_right.y() - 8).toPoint()
    assert QColor(shot.pixel(inner)).red() > 230  # the 64 px preview fills the 512 px area
    assert canvas.image_to_widget(QPointF(0, 0)) == rect_top_left

    result = QImage(SIZE, SIZE, QImage.Format.Format_RGB32)
    result.fill(QColor(10, 10, 250))
    canvas.show_result(result)
    assert canvas.has_result()
    shot = canvas.grab().toImage()
    assert QColor(shot.pixel(inner)).blue() > 230
    canvas.show_source()
    assert QColor(canvas.grab().toImage().pixel(inner)).blue() < 200
    assert canvas.use_result_as_source()
    assert QColor(canvas.source_qimage().pixel(5, 5)).blue() == 250


def test_preview_without_source_uses_target_size(qtbot):
    widget = CanvasWidget()
    qtbot.addWidget(widget)
    widget.resize(500, 500)
    preview = QImage(64, 96, QImage.Format.Format_RGB32)
    preview.fill(QColor(0, 0, 0))
    widget.show_preview(preview, QSize(512, 768))
    corner = widget.image_to_widget(QPointF(512, 768))
    origin = widget.image_to_widget(QPointF(0, 0))
    assert (corner.y() - origin.y()) / (corner.x() - origin.x()) == pytest.approx(1.5, rel=0.01)


def test_mask_overlay_is_drawn_over_the_image(canvas):
    drag(canvas, [(100, 256), (400, 256)])
    shot = canvas.grab().toImage()
    on = QColor(shot.pixel(at(canvas, 250, 256)))
    off = QColor(shot.pixel(at(canvas, 250, 100)))
    assert on.red() > off.red() + 60
    canvas.set_mask_editing(False)
    hidden = QColor(canvas.grab().toImage().pixel(at(canvas, 250, 256)))
    assert abs(hidden.red() - off.red()) < 10  # same column of the ramp, no overlay


def test_mask_tools_disabled_outside_mask_editing(canvas):
    actions = canvas.canvas_actions
    assert actions.brush.isEnabled() and actions.clear_mask.isEnabled()
    canvas.set_mask_editing(False)
    assert not actions.brush.isEnabled() and not actions.invert_mask.isEnabled()
    assert actions.zoom_fit.isEnabled()
    drag(canvas, [(100, 256), (400, 256)])
    assert not canvas.has_mask()  # no painting in img2img mode
    assert "(Ctrl+Z)" in actions.undo.toolTip()


def test_tool_bar_has_actions_and_sliders(canvas):
    bar = canvas.create_tool_bar()
    assert isinstance(bar, QToolBar)
    assert canvas.canvas_actions.undo in bar.actions()
    assert all(
        not action.icon().isNull()
        for action in (canvas.canvas_actions.brush, canvas.canvas_actions.save_mask)
    )
    spin_boxes = [w for w in bar.findChildren(QPushButton)]
    assert spin_boxes == []
    from PySide6.QtWidgets import QSpinBox

    size_box = next(s for s in bar.findChildren(QSpinBox) if s.suffix() == " px")
    size_box.setValue(77)
    assert canvas.brush_size == 77
    canvas.set_brush_size(12)
    assert size_box.value() == 12
    bar.deleteLater()


def test_empty_state_offers_open_button(qtbot):
    widget = CanvasWidget()
    qtbot.addWidget(widget)
    widget.resize(500, 400)
    widget.show()
    button = widget.findChild(QPushButton)
    assert button is not None and button.isVisible() and "Open" in button.text()
    assert widget.mask_image() is None and not widget.has_mask()
    widget.set_image(sample_image(64, 64))
    assert not button.isVisible()
    widget.clear_image()
    assert button.isVisible()


def test_reader_limits_are_configurable():
    small = ImageLimits(max_side=32, max_pixels=1000)
    buffer = png_header_only(40, 10)
    with pytest.raises(ImageLoadError, match="32 px per side"):
        read_image_bytes(buffer, small)


def test_latent_preview_is_drawn_soft_not_as_pixel_blocks(canvas):
    # A 16×16 "latent" preview of the 512 px image: one white pixel on black.
    preview = QImage(16, 16, QImage.Format.Format_RGB32)
    preview.fill(QColor(0, 0, 0))
    preview.setPixelColor(8, 8, QColor(255, 255, 255))
    canvas.show_preview(preview, QSize(SIZE, SIZE))
    shot = canvas.grab().toImage()
    centre = at(canvas, 8.5 * 32, 8.5 * 32)
    row = [QColor(shot.pixel(x, centre.y())).red() for x in range(centre.x() - 60, centre.x() + 61)]
    # Softened: the spot is blurred into its neighbours (bilinear alone keeps 255 at its
    # centre, nearest-neighbour draws a hard 255-high block edge).
    assert 40 < max(row) < 200
    assert max(abs(a - b) for a, b in zip(row, row[1:], strict=False)) < 24
    assert row[0] < 10 and row[-1] < 10  # and it stays a spot, not a haze

    full = QImage(SIZE, SIZE, QImage.Format.Format_RGB32)
    full.fill(QColor(0, 0, 0))
    full.setPixelColor(100, 100, QColor(255, 255, 255))
    assert soften_preview(full, QSize(SIZE, SIZE)) is full  # full-size previews stay sharp


def test_escape_cancels_a_stroke_before_window_shortcuts_see_it(canvas, qtbot):
    """A window-wide Esc action (the main window's Cancel) must not steal Esc mid-stroke."""
    fired: list[bool] = []
    cancel_job = QAction("Cancel", canvas)
    cancel_job.setShortcut(QKeySequence("Esc"))
    cancel_job.triggered.connect(lambda: fired.append(True))
    canvas.addAction(cancel_job)

    QTest.mousePress(canvas, LEFT, NOMOD, at(canvas, 100, 300))
    QTest.mouseMove(canvas, at(canvas, 300, 300))
    assert canvas.has_interaction() and mask(canvas)[300, 200] == 255
    QTest.keyClick(canvas, Qt.Key.Key_Escape)
    assert fired == [] and not canvas.has_interaction()
    assert mask(canvas)[300, 200] == 0  # the stroke was taken back
    QTest.mouseRelease(canvas, LEFT, NOMOD, at(canvas, 300, 300))

    QTest.keyClick(canvas, Qt.Key.Key_Escape)  # nothing to cancel on the canvas
    assert fired == [True]


def test_empty_state_wording_is_set_by_the_owner(qtbot):
    widget = CanvasWidget()
    qtbot.addWidget(widget)
    widget.resize(420, 400)
    widget.show()
    blank = widget.grab().toImage()
    widget.set_empty_text("Your picture appears here", "Type a prompt and press Generate")
    assert widget.empty_text() == ("Your picture appears here", "Type a prompt and press Generate")
    assert widget.grab().toImage() != blank  # the new words are drawn
    button = widget.findChild(QPushButton)
    zone_bottom = (widget.height() + min(widget.height() - 48, 320)) / 2
    # Narrow: both lines wrap, and the button still sits inside the drop zone.
    assert button.geometry().top() > widget.height() / 2 - 10
    assert button.geometry().bottom() < zone_bottom
