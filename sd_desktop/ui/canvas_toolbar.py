"""The canvas's actions and brush controls, ready for the main window to place.

Actions carry their shortcuts with ``WidgetWithChildrenShortcut`` context and are
added to the canvas itself, so ``[``, ``E`` or Ctrl+Z act on the mask only while
the canvas has focus and never steal keys from the prompt editor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolBar,
    QWidget,
    QWidgetAction,
)

from sd_desktop.ui.canvas_icons import canvas_icon

if TYPE_CHECKING:
    from sd_desktop.ui.canvas import CanvasWidget

_SLIDER_STEPS = 1000


def size_to_slider(size: int, max_size: int) -> int:
    """Slider position for a brush size; logarithmic so small sizes get fine control."""
    return round(_SLIDER_STEPS * math.log(max(size, 1)) / math.log(max_size))


def slider_to_size(position: int, max_size: int) -> int:
    return max(1, round(math.exp(position / _SLIDER_STEPS * math.log(max_size))))


@dataclass(frozen=True)
class CanvasActions:
    """Every canvas command as a QAction (the two sliders as QWidgetActions)."""

    open_image: QAction
    paste_image: QAction
    brush: QAction
    eraser: QAction
    brush_smaller: QAction
    brush_larger: QAction
    brush_size: QWidgetAction
    brush_hardness: QWidgetAction
    undo: QAction
    redo: QAction
    clear_mask: QAction
    invert_mask: QAction
    load_mask: QAction
    save_mask: QAction
    zoom_in: QAction
    zoom_out: QAction
    zoom_fit: QAction
    zoom_actual: QAction

    def all(self) -> list[QAction]:
        return [getattr(self, f.name) for f in fields(self)]

    def mask_tools(self) -> list[QAction]:
        """Actions that only make sense while painting a mask."""
        return [
            self.brush,
            self.eraser,
            self.brush_smaller,
            self.brush_larger,
            self.brush_size,
            self.brush_hardness,
            self.clear_mask,
            self.invert_mask,
            self.load_mask,
            self.save_mask,
        ]


class _ControlAction(QWidgetAction):
    """A QWidgetAction that builds a fresh bound control for every tool bar holding it."""

    def __init__(self, parent: QObject, factory: Callable[[QWidget], QWidget]) -> None:
        super().__init__(parent)
        self._factory = factory
        self.changed.connect(self._sync_enabled)

    def createWidget(self, parent: QWidget) -> QWidget:  # noqa: N802 - Qt override
        widget = self._factory(parent)
        widget.setEnabled(self.isEnabled())
        return widget

    def _sync_enabled(self) -> None:
        for widget in self.createdWidgets():
            widget.setEnabled(self.isEnabled())


class _SliderControl(QWidget):
    """Caption + slider + spin box, kept in sync with one canvas property."""

    def __init__(
        self,
        parent: QWidget,
        caption: str,
        tooltip: str,
        spin_range: tuple[int, int],
        suffix: str,
        to_slider: Callable[[int], int],
        from_slider: Callable[[int], int],
        slider_max: int,
    ) -> None:
        super().__init__(parent)
        self._to_slider, self._from_slider = to_slider, from_slider
        self._syncing = False
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.setSpacing(6)
        label = QLabel(caption, self)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, slider_max)
        self.slider.setFixedWidth(120)
        self.spin = QSpinBox(self)
        self.spin.setRange(*spin_range)
        self.spin.setSuffix(suffix)
        self.spin.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.spin.setKeyboardTracking(False)
        self.spin.setMaximumWidth(self.spin.fontMetrics().horizontalAdvance("0000 px") + 36)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        for widget in (label, self.slider, self.spin):
            widget.setToolTip(tooltip)
            layout.addWidget(widget)
        self.slider.valueChanged.connect(self._slider_moved)

    def set_value(self, value: int) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self.spin.setValue(value)
            self.slider.setValue(self._to_slider(value))
        finally:
            self._syncing = False

    def _slider_moved(self, position: int) -> None:
        if not self._syncing:
            self.spin.setValue(self._from_slider(position))


def _size_control(canvas: CanvasWidget, parent: QWidget) -> QWidget:
    top = canvas.MAX_BRUSH_SIZE
    control = _SliderControl(
        parent,
        "Size",
        "Brush diameter in image pixels ([ smaller, ] larger)",
        (canvas.MIN_BRUSH_SIZE, top),
        " px",
        lambda v: size_to_slider(v, top),
        lambda p: slider_to_size(p, top),
        _SLIDER_STEPS,
    )
    control.set_value(canvas.brush_size)
    control.spin.valueChanged.connect(canvas.set_brush_size)
    canvas.brush_size_changed.connect(control.set_value)
    return control


def _hardness_control(canvas: CanvasWidget, parent: QWidget) -> QWidget:
    control = _SliderControl(
        parent,
        "Hardness",
        "Brush edge: 100% is crisp, lower values fade out softly",
        (0, 100),
        " %",
        lambda v: v,
        lambda p: p,
        100,
    )
    control.set_value(canvas.brush_hardness)
    control.spin.valueChanged.connect(canvas.set_brush_hardness)
    canvas.brush_hardness_changed.connect(control.set_value)
    return control


def build_canvas_actions(canvas: CanvasWidget) -> CanvasActions:
    """Create the canvas's actions, parented to and installed on ``canvas``."""

    def make(
        text: str,
        icon: str | None,
        tip: str,
        slot: Callable[[], object] | None,
        keys: tuple[str | QKeySequence.StandardKey, ...] = (),
        checkable: bool = False,
    ) -> QAction:
        action = QAction(text, canvas)
        if icon is not None:
            action.setIcon(canvas_icon(icon))
        sequences = [QKeySequence(k) for k in keys]
        if sequences:
            action.setShortcuts(sequences)
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            native = sequences[0].toString(QKeySequence.SequenceFormat.NativeText)
            tip = f"{tip} ({native})"
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.setCheckable(checkable)
        if slot is not None:
            action.triggered.connect(lambda _checked=False: slot())
        return action

    size = _ControlAction(canvas, lambda parent: _size_control(canvas, parent))
    size.setText("Brush Size")
    hardness = _ControlAction(canvas, lambda parent: _hardness_control(canvas, parent))
    hardness.setText("Brush Hardness")

    actions = CanvasActions(
        open_image=make("Open Image…", "open", "Open a source image", canvas.open_image_dialog),
        paste_image=make(
            "Paste Image",
            "paste",
            "Paste an image from the clipboard",
            canvas.paste_from_clipboard,
            (QKeySequence.StandardKey.Paste,),
        ),
        brush=make(
            "Brush",
            "brush",
            "Paint the mask: white areas get repainted",
            None,
            ("B",),
            checkable=True,
        ),
        eraser=make(
            "Eraser",
            "eraser",
            "Erase the mask (or hold Ctrl / use the right button)",
            None,
            ("E",),
            checkable=True,
        ),
        brush_smaller=make(
            "Smaller Brush", None, "Make the brush smaller", canvas.decrease_brush_size, ("[",)
        ),
        brush_larger=make(
            "Larger Brush", None, "Make the brush larger", canvas.increase_brush_size, ("]",)
        ),
        brush_size=size,
        brush_hardness=hardness,
        undo=make(
            "Undo Stroke",
            "undo",
            "Undo the last mask edit",
            canvas.undo,
            (QKeySequence.StandardKey.Undo,),
        ),
        redo=make(
            "Redo Stroke",
            "redo",
            "Redo the mask edit",
            canvas.redo,
            ("Ctrl+Shift+Z", "Ctrl+Y"),
        ),
        clear_mask=make(
            "Clear Mask", "clear", "Remove the whole mask", canvas.clear_mask, ("Delete",)
        ),
        invert_mask=make(
            "Invert Mask",
            "invert",
            "Swap painted and unpainted areas",
            canvas.invert_mask,
            ("Ctrl+I",),
        ),
        load_mask=make(
            "Load Mask…", "load_mask", "Load a mask from a PNG", canvas.load_mask_dialog
        ),
        save_mask=make(
            "Save Mask…", "save_mask", "Save the mask as a grayscale PNG", canvas.save_mask_dialog
        ),
        zoom_in=make("Zoom In", "zoom_in", "Zoom in", canvas.zoom_in, ("Ctrl++", "Ctrl+=")),
        zoom_out=make("Zoom Out", "zoom_out", "Zoom out", canvas.zoom_out, ("Ctrl+-",)),
        zoom_fit=make(
            "Fit to Window", "fit", "Fit the image to the window", canvas.fit_to_window, ("Ctrl+0",)
        ),
        zoom_actual=make(
            "Actual Size",
            "actual",
            "Show the image at 100%",
            canvas.zoom_to_actual_size,
            ("Ctrl+1",),
        ),
    )
    # Brush and eraser behave as one switch; E toggles, B always returns to the brush.
    actions.brush.setChecked(not canvas.is_eraser())
    actions.eraser.setChecked(canvas.is_eraser())

    def sync_tool(eraser: bool) -> None:
        actions.brush.setChecked(not eraser)
        actions.eraser.setChecked(eraser)

    def pick_brush() -> None:
        canvas.set_eraser(False)
        sync_tool(False)  # a checked action unchecks itself when triggered again

    actions.brush.triggered.connect(lambda _checked=False: pick_brush())
    actions.eraser.triggered.connect(canvas.set_eraser)
    canvas.eraser_changed.connect(sync_tool)
    canvas.addActions([a for a in actions.all() if not isinstance(a, QWidgetAction)])
    return actions


def build_tool_bar(actions: CanvasActions, parent: QWidget | None = None) -> QToolBar:
    """A compact "Mask" tool bar holding the canvas actions in a sensible order."""
    bar = QToolBar("Mask", parent)
    bar.setObjectName("canvasToolBar")
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    groups = [
        [actions.brush, actions.eraser],
        [actions.brush_size, actions.brush_hardness],
        [actions.undo, actions.redo],
        [actions.clear_mask, actions.invert_mask],
        [actions.load_mask, actions.save_mask],
        [actions.zoom_fit, actions.zoom_actual],
    ]
    for index, group in enumerate(groups):
        if index:
            bar.addSeparator()
        bar.addActions(group)
    return bar
