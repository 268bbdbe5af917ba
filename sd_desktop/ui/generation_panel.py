"""The left-hand panel: model, prompts, mode and every generation parameter.

It knows nothing about the worker: it turns what the user set into a GenerationRequest
(build_request) and back (set_values / apply_params), and says through signals when the
user wants to generate, cancel or change model. Defaults follow A1111, so numbers
people copy from elsewhere mean the same thing here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from PIL import Image
from PySide6.QtCore import QSignalBlocker, QSize, Qt, Signal
from PySide6.QtGui import (
    QFontMetrics,
    QKeyEvent,
    QPalette,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QTabBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sd_desktop.engine.request import GenerationRequest, Mode
from sd_desktop.infotext import SAMPLER_DISPLAY_NAMES, GenerationParams
from sd_desktop.library.scan import ModelEntry
from sd_desktop.ui.app_icons import panel_icon

MIN_SIZE, MAX_SIZE, SIZE_STEP = 64, 2048, 8
MIN_PANEL_WIDTH = 320
MAX_SEED = 2**32 - 1
SIZE_PRESETS: tuple[tuple[int, int, str], ...] = (
    (512, 512, "square"),
    (512, 768, "portrait 2:3"),
    (768, 512, "landscape 3:2"),
    (576, 768, "portrait 3:4"),
    (768, 576, "landscape 4:3"),
    (640, 640, "square"),
    (768, 768, "square"),
    (512, 896, "portrait 9:16"),
    (896, 512, "landscape 16:9"),
)
MODE_ORDER = (Mode.TXT2IMG, Mode.IMG2IMG, Mode.INPAINT)
MODE_LABELS = {
    Mode.TXT2IMG: "Text to Image",
    Mode.IMG2IMG: "Image to Image",
    Mode.INPAINT: "Inpaint",
}

# A1111's defaults; keep_unmasked is on as in A1111's inpaint (the source shows through).
DEFAULTS: dict[str, Any] = {
    "prompt": "",
    "negative_prompt": "",
    "mode": Mode.TXT2IMG.value,
    "sampler": "dpmpp_2m_karras",
    "steps": 20,
    "cfg_scale": 7.0,
    "strength": 0.75,
    "mask_blur": 4,
    "keep_unmasked": True,
    "width": 512,
    "height": 512,
    "seed": -1,
    "batch_count": 1,
    "batch_size": 1,
    "clip_skip": 1,
}


def snap_size(value: float) -> int:
    """The nearest multiple of 8 within the allowed range."""
    snapped = int(round(value / SIZE_STEP)) * SIZE_STEP
    return max(MIN_SIZE, min(MAX_SIZE, snapped))


def fit_size(width: int, height: int, longest: int = 768) -> tuple[int, int]:
    """A generation size for a source image: its aspect ratio, the long side at most
    `longest` (SD 1.x works best near 512-768), both multiples of 8."""
    scale = min(1.0, longest / max(width, height, 1))
    return snap_size(width * scale), snap_size(height * scale)


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


class PromptEdit(QPlainTextEdit):
    """A prompt box: Ctrl+Enter submits, Tab moves on (prompts never contain tabs)."""

    submitted = Signal()

    def __init__(self, placeholder: str, lines: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setTabChangesFocus(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        metrics = QFontMetrics(self.font())
        margins = self.contentsMargins()
        frame = 2 * self.frameWidth() + margins.top() + margins.bottom()
        self.setMinimumHeight(metrics.lineSpacing() * lines + frame + 8)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(super().sizeHint().width(), self.minimumHeight())

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and (
            event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            self.submitted.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class SliderSpin(QWidget):
    """A slider for quick dragging and a spin box for exact values, always in step.

    Floats are handled by scaling the slider to `step` units.
    """

    valueChanged = Signal(float)  # noqa: N815 - Qt naming

    def __init__(
        self,
        minimum: float,
        maximum: float,
        step: float,
        decimals: int = 0,
        slider_maximum: float | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._step = step
        self._minimum = minimum
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        top = maximum if slider_maximum is None else slider_maximum
        self.slider.setRange(0, round((top - minimum) / step))
        self.slider.setPageStep(max(1, round(self.slider.maximum() / 10)))
        self.spin: QSpinBox | QDoubleSpinBox
        if decimals:
            spin = QDoubleSpinBox(self)
            spin.setDecimals(decimals)
            spin.setSingleStep(step)
            self.spin = spin
        else:
            self.spin = QSpinBox(self)
            self.spin.setSingleStep(int(step))
        self.spin.setRange(minimum, maximum)  # type: ignore[arg-type]
        self.spin.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.spin.setKeyboardTracking(False)
        self.spin.setFixedWidth(self.spin.fontMetrics().horizontalAdvance("0000.00") + 34)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self.slider.valueChanged.connect(self._from_slider)
        self.spin.valueChanged.connect(self._from_spin)

    def value(self) -> float:
        return float(self.spin.value())

    def setValue(self, value: float) -> None:  # noqa: N802 - Qt naming
        self.spin.setValue(value)  # type: ignore[arg-type]

    def setToolTip(self, text: str) -> None:  # noqa: N802 - Qt naming
        super().setToolTip(text)
        self.slider.setToolTip(text)
        self.spin.setToolTip(text)

    def _from_slider(self, position: int) -> None:
        value = self._minimum + position * self._step
        if abs(value - self.spin.value()) >= self._step / 2:
            self.spin.setValue(value if isinstance(self.spin, QDoubleSpinBox) else round(value))

    def _from_spin(self, value: float) -> None:
        with QSignalBlocker(self.slider):
            self.slider.setValue(round((value - self._minimum) / self._step))
        self.valueChanged.emit(float(value))


NO_MENU_ARROW = "QToolButton::menu-indicator { image: none; width: 0px; }"


def _tool_button(icon: str, tip: str, parent: QWidget) -> QToolButton:
    button = QToolButton(parent)
    button.setIcon(panel_icon(icon))
    button.setToolTip(tip)
    button.setAutoRaise(True)
    button.setIconSize(QSize(18, 18))
    return button


def _section(title: str, parent: QWidget) -> QLabel:
    label = QLabel(title.upper(), parent)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 0.85)
    font.setBold(True)
    label.setFont(font)
    label.setContentsMargins(0, 8, 0, 0)
    # The palette's muted text colour, so headings recede in light and dark themes alike.
    palette = label.palette()
    muted = palette.color(QPalette.ColorRole.PlaceholderText)
    palette.setColor(QPalette.ColorRole.WindowText, muted)
    label.setPalette(palette)
    return label


class GenerationPanel(QWidget):
    """Everything needed to describe a job. See module docstring."""

    generate_requested = Signal()
    cancel_requested = Signal()
    model_selected = Signal(object)  # Path
    open_model_requested = Signal()
    add_folder_requested = Signal()
    rescan_requested = Signal()
    manage_models_requested = Signal()
    mode_changed = Signal(object)  # Mode
    match_image_size_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._last_seed: int | None = None
        self._source_size: tuple[int, int] | None = None
        self._build()
        self.set_values(DEFAULTS)
        self.set_running(False)

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)

        top = QWidget(self)
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(12, 10, 12, 6)
        top_layout.setSpacing(6)

        model_row = QHBoxLayout()
        model_row.setSpacing(4)
        self.model_combo = QComboBox(top)
        self.model_combo.setModel(QStandardItemModel(self.model_combo))
        self.model_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.model_combo.setMinimumContentsLength(16)
        self.model_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.model_combo.activated.connect(self._on_model_activated)
        self.model_menu_button = _tool_button("more", "Open a model file or add a folder", top)
        self.model_menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.model_menu_button.setStyleSheet(NO_MENU_ARROW)
        menu = QMenu(self.model_menu_button)
        menu.addAction("Manage Models…", self.manage_models_requested.emit)
        menu.addSeparator()
        menu.addAction("Open Model File…", self.open_model_requested.emit)
        menu.addAction("Add Models Folder…", self.add_folder_requested.emit)
        menu.addAction("Rescan Models", self.rescan_requested.emit)
        self.model_menu_button.setMenu(menu)
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.model_menu_button)
        top_layout.addWidget(_section("Model", top))
        top_layout.addLayout(model_row)

        top_layout.addWidget(_section("Prompt", top))
        self.prompt_edit = PromptEdit("Describe the picture… (Ctrl+Enter to generate)", 4, top)
        self.negative_edit = PromptEdit(
            "What to avoid, e.g. blurry, watermark, extra fingers", 2, top
        )
        self.prompt_edit.submitted.connect(self.generate_requested)
        self.negative_edit.submitted.connect(self.generate_requested)
        top_layout.addWidget(self.prompt_edit)
        self.negative_heading = _section("Negative prompt", top)
        self.negative_heading.setBuddy(self.negative_edit)
        top_layout.addWidget(self.negative_heading)
        top_layout.addWidget(self.negative_edit)

        self.mode_tabs = QTabBar(top)
        self.mode_tabs.setExpanding(True)
        self.mode_tabs.setDrawBase(False)
        self.mode_tabs.setDocumentMode(True)
        for mode in MODE_ORDER:
            self.mode_tabs.addTab(MODE_LABELS[mode])
        self.mode_tabs.setTabToolTip(0, "Make a new picture from the prompt")
        self.mode_tabs.setTabToolTip(1, "Rework the canvas image, guided by the prompt")
        self.mode_tabs.setTabToolTip(2, "Repaint only the masked part of the canvas image")
        self.mode_tabs.currentChanged.connect(self._on_mode_changed)
        top_layout.addSpacing(4)
        top_layout.addWidget(self.mode_tabs)
        outer.addWidget(top)

        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget(scroll)
        form = QFormLayout(body)
        form.setContentsMargins(12, 4, 12, 12)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(8)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        self._form = form

        self.sampler_combo = QComboBox(body)
        for sid, name in SAMPLER_DISPLAY_NAMES.items():
            self.sampler_combo.addItem(name, sid)
        self.sampler_combo.setToolTip("How the noise is removed step by step (A1111 names)")
        form.addRow("Sampler", self.sampler_combo)

        self.steps = SliderSpin(1, 150, 1, parent=body)
        self.steps.setToolTip("Denoising steps: more is slower and often finer (20-30 is typical)")
        form.addRow("Steps", self.steps)
        self.cfg = SliderSpin(1.0, 30.0, 0.5, decimals=1, parent=body)
        self.cfg.setToolTip("How strictly the picture follows the prompt (CFG scale; 7 is typical)")
        form.addRow("CFG scale", self.cfg)
        self.strength = SliderSpin(0.01, 1.0, 0.01, decimals=2, parent=body)
        self.strength.setToolTip(
            "Denoising strength: how much of the source image is repainted (1 = all of it)"
        )
        form.addRow("Denoising", self.strength)
        self.mask_blur = SliderSpin(0, 64, 1, parent=body)
        self.mask_blur.setToolTip("Soften the mask edge by this many pixels so the repaint blends")
        form.addRow("Mask blur", self.mask_blur)
        self.keep_unmasked = QCheckBox("Keep pixels outside the mask", body)
        self.keep_unmasked.setToolTip(
            "Paste the source back outside the mask, so only the painted area changes"
        )
        form.addRow("", self.keep_unmasked)

        size_row = QHBoxLayout()
        size_row.setSpacing(4)
        self.width_spin = self._size_spin(body, "Width in pixels (a multiple of 8)")
        self.height_spin = self._size_spin(body, "Height in pixels (a multiple of 8)")
        times = QLabel("×", body)
        self.swap_button = _tool_button("swap", "Swap width and height", body)
        self.swap_button.clicked.connect(self.swap_size)
        self.preset_button = QToolButton(body)
        self.preset_button.setText("Presets")
        self.preset_button.setToolTip("Common sizes for SD 1.x models")
        self.preset_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.preset_button.setStyleSheet(NO_MENU_ARROW)
        presets = QMenu(self.preset_button)
        for w, h, label in SIZE_PRESETS:
            presets.addAction(f"{w} × {h}  ({label})", lambda w=w, h=h: self.set_size(w, h))
        self.preset_button.setMenu(presets)
        self.match_button = _tool_button("frame", "", body)
        self.match_button.clicked.connect(self.match_image_size_requested)
        size_row.addWidget(self.width_spin, 1)
        size_row.addWidget(times)
        size_row.addWidget(self.height_spin, 1)
        size_row.addWidget(self.swap_button)
        size_row.addWidget(self.match_button)
        size_row.addWidget(self.preset_button)
        form.addRow("Size", size_row)

        seed_row = QHBoxLayout()
        seed_row.setSpacing(4)
        self.seed_spin = QDoubleSpinBox(body)  # a QSpinBox stops at 2^31-1; seeds go to 2^32-1
        self.seed_spin.setDecimals(0)
        self.seed_spin.setRange(-1, MAX_SEED)
        self.seed_spin.setSpecialValueText("Random")
        self.seed_spin.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.seed_spin.setButtonSymbols(QAbstractSpinBox.ButtonSymbols.NoButtons)
        self.seed_spin.setToolTip("The same seed and settings give the same picture; -1 = random")
        self.dice_button = _tool_button("dice", "Random seed for every image (-1)", body)
        self.dice_button.clicked.connect(lambda: self.seed_spin.setValue(-1))
        self.reuse_seed_button = _tool_button("recycle", "", body)
        self.reuse_seed_button.clicked.connect(self.reuse_last_seed)
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.dice_button)
        seed_row.addWidget(self.reuse_seed_button)
        form.addRow("Seed", seed_row)

        self.batch_count = QSpinBox(body)
        self.batch_count.setRange(1, 100)
        self.batch_count.setToolTip("Run this many jobs one after another (seed, seed+1, …)")
        form.addRow("Batch count", self.batch_count)
        self.batch_size = QSpinBox(body)
        self.batch_size.setRange(1, 8)
        self.batch_size.setToolTip("Images made together in one job (faster, uses more memory)")
        form.addRow("Batch size", self.batch_size)

        self.clip_skip = QSpinBox(body)
        self.clip_skip.setRange(1, 12)
        self.clip_skip.setToolTip(
            "Use an earlier layer of the text encoder (2 suits many anime models; 1 = off)"
        )
        form.addRow("Clip skip", self.clip_skip)
        for spin in (self.batch_count, self.batch_size, self.clip_skip):
            spin.setAlignment(Qt.AlignmentFlag.AlignRight)

        scroll.setWidget(body)
        outer.addWidget(scroll, 1)
        self._scroll, self._body = scroll, body

        bottom = QFrame(self)
        bottom.setFrameShape(QFrame.Shape.NoFrame)
        bottom_layout = QHBoxLayout(bottom)
        bottom_layout.setContentsMargins(12, 8, 12, 12)
        bottom_layout.setSpacing(8)
        self.generate_button = QPushButton("Generate", bottom)
        self.generate_button.setDefault(True)
        self.generate_button.setMinimumHeight(38)
        font = self.generate_button.font()
        font.setBold(True)
        self.generate_button.setFont(font)
        self.generate_button.clicked.connect(self.generate_requested)
        self.cancel_button = QPushButton("Cancel", bottom)
        self.cancel_button.setMinimumHeight(38)
        self.cancel_button.clicked.connect(self.cancel_requested)
        bottom_layout.addWidget(self.generate_button, 3)
        bottom_layout.addWidget(self.cancel_button, 1)
        outer.addWidget(bottom)

        self._update_seed_button()
        self._update_match_button()
        self._on_mode_changed(0)

    def _size_spin(self, parent: QWidget, tip: str) -> QSpinBox:
        spin = QSpinBox(parent)
        spin.setRange(MIN_SIZE, MAX_SIZE)
        spin.setSingleStep(SIZE_STEP)
        spin.setAlignment(Qt.AlignmentFlag.AlignRight)
        spin.setToolTip(tip)
        spin.setKeyboardTracking(False)
        spin.editingFinished.connect(lambda s=spin: s.setValue(snap_size(s.value())))
        return spin

    # ------------------------------------------------------------------ models

    def set_models(self, entries: Iterable[ModelEntry], current: Path | None = None) -> None:
        """Fill the model list; unusable files are listed but disabled, with the reason."""
        model: QStandardItemModel = self.model_combo.model()  # type: ignore[assignment]
        with QSignalBlocker(self.model_combo):
            model.clear()
            for entry in entries:
                text = f"{entry.name} — {entry.family}" if entry.family else entry.name
                item = QStandardItem(text)
                item.setData(str(entry.path), Qt.ItemDataRole.UserRole)
                if not entry.usable:
                    reason = entry.error or entry.detail or entry.family
                    item.setEnabled(False)
                    item.setText(f"{entry.name} — cannot be used")
                    item.setToolTip(f"{entry.path}\n{reason}")
                else:
                    item.setToolTip(f"{entry.path}\n{entry.detail or entry.family}")
                model.appendRow(item)
            if model.rowCount() == 0:
                placeholder = QStandardItem("No models found: open a model file…")
                placeholder.setData(None, Qt.ItemDataRole.UserRole)
                placeholder.setToolTip(
                    "Put .safetensors models in the models folder, or use the ⋯ button"
                )
                model.appendRow(placeholder)
            self.select_model(current)

    def select_model(self, path: Path | str | None) -> bool:
        """Show `path` as the current model without emitting model_selected."""
        if path is None:
            with QSignalBlocker(self.model_combo):
                self.model_combo.setCurrentIndex(-1 if self._has_real_models() else 0)
            return False
        index = self._model_index(Path(path))
        with QSignalBlocker(self.model_combo):
            self.model_combo.setCurrentIndex(index)
        return index >= 0

    def _model_index(self, path: Path) -> int:
        """Row of `path` in the list, comparing resolved paths (symlinked model folders)."""
        wanted = _resolved(path)
        for i in range(self.model_combo.count()):
            data = self.model_combo.itemData(i, Qt.ItemDataRole.UserRole)
            if data and _resolved(Path(data)) == wanted:
                return i
        return -1

    def _has_real_models(self) -> bool:
        return any(
            self.model_combo.itemData(i, Qt.ItemDataRole.UserRole)
            for i in range(self.model_combo.count())
        )

    def current_model_path(self) -> Path | None:
        data = self.model_combo.currentData(Qt.ItemDataRole.UserRole)
        return Path(data) if data else None

    def _on_model_activated(self, index: int) -> None:
        data = self.model_combo.itemData(index, Qt.ItemDataRole.UserRole)
        if data:
            self.model_selected.emit(Path(data))
        else:
            self.open_model_requested.emit()

    # ------------------------------------------------------------------ mode

    def mode(self) -> Mode:
        return MODE_ORDER[max(0, self.mode_tabs.currentIndex())]

    def set_mode(self, mode: Mode | str) -> None:
        self.mode_tabs.setCurrentIndex(MODE_ORDER.index(Mode(mode)))

    def _on_mode_changed(self, index: int) -> None:
        mode = MODE_ORDER[max(0, index)]
        self._form.setRowVisible(self.strength, mode is not Mode.TXT2IMG)
        self._form.setRowVisible(self.mask_blur, mode is Mode.INPAINT)
        self._form.setRowVisible(self.keep_unmasked, mode is Mode.INPAINT)
        self.match_button.setVisible(mode is not Mode.TXT2IMG)
        self._fit_width()
        self.mode_changed.emit(mode)

    def _fit_width(self) -> None:
        """Never narrower than the form: the scroll area scrolls vertically only, so a
        narrower panel would cut the right-hand controls off."""
        form = self._body.minimumSizeHint().width()
        bar = self._scroll.verticalScrollBar().sizeHint().width()
        self.setMinimumWidth(max(MIN_PANEL_WIDTH, form + bar + 2))

    # ------------------------------------------------------------------ values

    def values(self) -> dict[str, Any]:
        """Everything the user set, as plain JSON-able values (saved in the settings)."""
        return {
            "prompt": self.prompt_edit.toPlainText(),
            "negative_prompt": self.negative_edit.toPlainText(),
            "mode": self.mode().value,
            "sampler": self.sampler_combo.currentData(),
            "steps": int(self.steps.value()),
            "cfg_scale": round(self.cfg.value(), 2),
            "strength": round(self.strength.value(), 2),
            "mask_blur": int(self.mask_blur.value()),
            "keep_unmasked": self.keep_unmasked.isChecked(),
            "width": self.width_spin.value(),
            "height": self.height_spin.value(),
            "seed": int(self.seed_spin.value()),
            "batch_count": self.batch_count.value(),
            "batch_size": self.batch_size.value(),
            "clip_skip": self.clip_skip.value(),
        }

    def set_values(self, values: Mapping[str, Any]) -> None:
        """Apply known keys; values of the wrong type are skipped (old settings files)."""

        def get(key: str, kind: type) -> Any:
            value = values.get(key)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            return value if isinstance(value, kind) and not isinstance(value, bool) else None

        if (text := get("prompt", str)) is not None:
            self.prompt_edit.setPlainText(text)
        if (text := get("negative_prompt", str)) is not None:
            self.negative_edit.setPlainText(text)
        if (mode := get("mode", str)) in {m.value for m in Mode}:
            self.set_mode(mode)
        if (sampler := get("sampler", str)) is not None:
            index = self.sampler_combo.findData(sampler)
            if index >= 0:
                self.sampler_combo.setCurrentIndex(index)
        for key, widget in (("steps", self.steps), ("mask_blur", self.mask_blur)):
            if (number := get(key, int)) is not None:
                widget.setValue(number)
        for key, widget in (("cfg_scale", self.cfg), ("strength", self.strength)):
            if (number := get(key, float)) is not None:
                widget.setValue(number)
        if isinstance(values.get("keep_unmasked"), bool):
            self.keep_unmasked.setChecked(values["keep_unmasked"])
        width, height = get("width", int), get("height", int)
        if width is not None and height is not None:
            self.set_size(width, height)
        if (seed := get("seed", int)) is not None:
            self.set_seed(seed)
        for key, spin in (
            ("batch_count", self.batch_count),
            ("batch_size", self.batch_size),
            ("clip_skip", self.clip_skip),
        ):
            if (number := get(key, int)) is not None:
                spin.setValue(number)

    def apply_params(self, params: GenerationParams) -> None:
        """ "Reuse parameters" from a gallery image or a dropped PNG: everything it records,
        nothing else (the mode and the batch settings stay as the user has them; an
        unknown sampler keeps the current one). The request's keyword names are the
        panel's value keys, so the infotext module's mapping is used as it is."""
        self.set_values(params.to_request_kwargs())

    def build_request(
        self, init_image: Image.Image | None = None, mask: Image.Image | None = None
    ) -> GenerationRequest:
        """The request for the current mode. The caller supplies the canvas image (and
        mask) in the modes that need them; they are ignored in txt2img."""
        v = self.values()
        mode = self.mode()
        return GenerationRequest(
            prompt=v["prompt"],
            negative_prompt=v["negative_prompt"],
            sampler=v["sampler"],
            steps=v["steps"],
            cfg_scale=v["cfg_scale"],
            seed=v["seed"],
            width=snap_size(v["width"]),
            height=snap_size(v["height"]),
            batch_size=v["batch_size"],
            clip_skip=v["clip_skip"],
            init_image=init_image if mode is not Mode.TXT2IMG else None,
            strength=v["strength"],
            mask=mask if mode is Mode.INPAINT else None,
            mask_blur=v["mask_blur"] if mode is Mode.INPAINT else 0,
            keep_unmasked=v["keep_unmasked"] if mode is Mode.INPAINT else False,
        )

    def batch_count_value(self) -> int:
        return self.batch_count.value()

    # ------------------------------------------------------------------ size and seed

    def set_size(self, width: int, height: int) -> None:
        self.width_spin.setValue(snap_size(width))
        self.height_spin.setValue(snap_size(height))

    def swap_size(self) -> None:
        self.set_size(self.height_spin.value(), self.width_spin.value())

    def set_source_size(self, size: tuple[int, int] | None) -> None:
        """The canvas image's size, for the "match image size" button."""
        self._source_size = size
        self._update_match_button()

    def match_source_size(self) -> bool:
        if self._source_size is None:
            return False
        self.set_size(*fit_size(*self._source_size))
        return True

    def _update_match_button(self) -> None:
        if self._source_size is None:
            self.match_button.setEnabled(False)
            self.match_button.setToolTip("Use the canvas image's size (open an image first)")
        else:
            w, h = fit_size(*self._source_size)
            self.match_button.setEnabled(True)
            self.match_button.setToolTip(f"Use the canvas image's size ({w} × {h})")

    def set_seed(self, seed: int) -> None:
        self.seed_spin.setValue(-1 if seed < 0 else min(seed, MAX_SEED))

    def seed(self) -> int:
        return int(self.seed_spin.value())

    def set_last_seed(self, seed: int) -> None:
        """The seed of the last finished image, for the "reuse last seed" button."""
        self._last_seed = seed
        self._update_seed_button()

    def reuse_last_seed(self) -> None:
        if self._last_seed is not None:
            self.set_seed(self._last_seed)

    def _update_seed_button(self) -> None:
        if self._last_seed is None:
            self.reuse_seed_button.setEnabled(False)
            self.reuse_seed_button.setToolTip("Reuse the last image's seed (nothing made yet)")
        else:
            self.reuse_seed_button.setEnabled(True)
            self.reuse_seed_button.setToolTip(f"Reuse the last image's seed ({self._last_seed})")

    # ------------------------------------------------------------------ running state

    def set_running(self, running: bool, waiting: int = 0, stopping: bool = False) -> None:
        """Generate stays available while a job runs: it queues another one. While a
        cancel is under way, Cancel says so instead of inviting a second click."""
        self.cancel_button.setEnabled(running and not stopping)
        self.cancel_button.setText("Stopping…" if stopping else "Cancel")
        if stopping:
            self.cancel_button.setToolTip("The job stops before its next step")
        elif running:
            self.cancel_button.setToolTip("Stop the running job (Esc); queued jobs continue")
            more = f" ({waiting} waiting)" if waiting else ""
            self.generate_button.setText("Queue Another")
            self.generate_button.setToolTip(
                f"Add another job with these settings to the queue{more} (Ctrl+Enter)"
            )
        else:
            self.cancel_button.setToolTip("Nothing is running")
            self.generate_button.setText("Generate")
            self.generate_button.setToolTip("Make the picture (Ctrl+Enter)")
