"""The gallery as the user sees it: a searchable, virtualised thumbnail grid with a details
pane, and a one-row strip of recent images for the bottom of the main window.

Both views read the same index through GalleryModel; everything the user can do to an
image is a QAction here and leaves the widget as a signal, so the main window decides
what "reuse parameters" or "send to inpaint" means.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path

from PySide6.QtCore import (
    QFile,
    QItemSelection,
    QItemSelectionModel,
    QMimeData,
    QModelIndex,
    QSize,
    Qt,
    QTimer,
    QUrl,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QAction,
    QContextMenuEvent,
    QDesktopServices,
    QFocusEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QMessageBox,
    QSizePolicy,
    QSlider,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sd_desktop.gallery import (
    NO_INDEX_YET,
    GalleryError,
    GalleryItem,
    GalleryStore,
    ThumbnailCache,
)
from sd_desktop.ui.gallery_delegate import ThumbnailDelegate
from sd_desktop.ui.gallery_details import GalleryDetailsPane
from sd_desktop.ui.gallery_icons import gallery_icon
from sd_desktop.ui.gallery_model import GalleryFilter, GalleryModel, ItemRole
from sd_desktop.ui.gallery_thumbs import ThumbnailLoader

log = logging.getLogger(__name__)

GRID_CELL_DEFAULT = 176
GRID_CELL_RANGE = (112, 288)
STRIP_CELL_DEFAULT = 92
SEARCH_DELAY_MS = 250
# A quick look for new files says nothing unless it takes longer than this.
SYNC_QUIET_MS = 600
REBUILDING_TEXT = "Rebuilding the gallery index…"

TrashFunction = Callable[[Path], None]


def move_to_trash(path: Path) -> None:
    """The system trash via Qt; raises OSError when the platform has none."""
    ok, _ = QFile.moveToTrash(str(path))
    if not ok:
        raise OSError("the system trash is not available")


class ThumbnailView(QListView):
    """What the grid and the strip share: the delegate, selection helpers, the context
    menu built from the gallery's actions, and a message when there is nothing to show."""

    interacted = Signal()
    """The user clicked, focused or right-clicked this view (actions then act on it)."""

    def __init__(self, model: GalleryModel, cell_size: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context_actions: list[QAction | None] = []
        self.empty_text = ""
        self._cell_size = cell_size
        self._delegate = ThumbnailDelegate(QSize(cell_size, cell_size), self)
        self.setItemDelegate(self._delegate)
        self.setModel(model)
        self.setUniformItemSizes(True)
        self.setMovement(QListView.Movement.Static)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setMouseTracking(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setSpacing(0)
        self.set_cell_size(cell_size)

    def gallery_model(self) -> GalleryModel:
        model = self.model()
        assert isinstance(model, GalleryModel)
        return model

    @property
    def cell_size(self) -> int:
        """The thumbnail size asked for (the zoom); cells may be a little wider."""
        return self._cell_size

    def set_cell_size(self, size: int) -> None:
        self._cell_size = size
        self._apply_cell(self._cell_for(size))

    def _cell_for(self, size: int) -> QSize:
        return QSize(size, size)

    def _apply_cell(self, cell: QSize) -> None:
        if cell == self._delegate.cell and cell == self.gridSize():
            return
        self._delegate.cell = cell
        self.setGridSize(cell)
        self.setIconSize(cell)
        self.doItemsLayout()

    def current_item(self) -> GalleryItem | None:
        index = self.currentIndex()
        if index.isValid() and self.selectionModel().isSelected(index):
            item = index.data(ItemRole)
            return item if isinstance(item, GalleryItem) else None
        items = self.selected_items()
        return items[0] if items else None

    def selected_items(self) -> list[GalleryItem]:
        rows = sorted(index.row() for index in self.selectionModel().selectedIndexes())
        model = self.gallery_model()
        return [item for row in rows if (item := model.item(row)) is not None]

    def focusInEvent(self, event: QFocusEvent) -> None:
        self.interacted.emit()
        super().focusInEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.interacted.emit()
        super().mousePressEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        index = self.indexAt(event.pos())
        if not index.isValid():
            return
        if not self.selectionModel().isSelected(index):
            self.setCurrentIndex(index)
        self.interacted.emit()
        menu = QMenu(self)
        for action in self.context_actions:
            if action is None:
                menu.addSeparator()
            else:
                menu.addAction(action)
        menu.exec(event.globalPos())

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.model() is None or self.model().rowCount() or not self.empty_text:
            return
        painter = QPainter(self.viewport())
        color = self.palette().color(QPalette.ColorRole.Text)
        color.setAlpha(130)
        painter.setPen(color)
        painter.drawText(
            self.viewport().rect().adjusted(24, 24, -24, -24),
            Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
            self.empty_text,
        )


class GalleryGrid(ThumbnailView):
    """The wrapping grid of the full gallery."""

    def __init__(self, model: GalleryModel, cell_size: int, parent: QWidget | None = None) -> None:
        super().__init__(model, cell_size, parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setWrapping(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(500)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(24)
        self.setViewportMargins(6, 6, 0, 6)

    def _cell_for(self, size: int) -> QSize:
        """Stretch cells so whole columns fill the width: no ragged gap at the right.

        The scrollbar's width is always set aside, so its appearing never changes the
        column count (which could otherwise flip back and forth)."""
        bar = self.verticalScrollBar().sizeHint().width()
        if self.verticalScrollBar().isVisible():
            bar = 0
        width = self.viewport().width() - bar
        columns = max(1, width // size)
        return QSize(max(size, width // columns), size)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._apply_cell(self._cell_for(self.cell_size))


class GalleryStrip(ThumbnailView):
    """One row of recent images, newest at the left, for the bottom of the main window.

    The mouse wheel scrolls it sideways; double-click or Enter emits item_activated.
    """

    item_activated = Signal(object)  # GalleryItem
    current_item_changed = Signal(object)  # GalleryItem | None

    def __init__(
        self,
        model: GalleryModel,
        cell_size: int = STRIP_CELL_DEFAULT,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(model, cell_size, parent)
        self.setViewMode(QListView.ViewMode.ListMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.horizontalScrollBar().setSingleStep(24)
        self.empty_text = STRIP_EMPTY_TEXT
        self._fit_height()
        self.activated.connect(self._on_activated)
        self.selectionModel().currentChanged.connect(self._on_current_changed)
        model.modelReset.connect(lambda: self.current_item_changed.emit(None))

    def set_cell_size(self, size: int) -> None:
        super().set_cell_size(size)
        self._fit_height()

    def _fit_height(self) -> None:
        bar = self.horizontalScrollBar().sizeHint().height()
        self.setFixedHeight(self.cell_size + bar + 2 * self.frameWidth() + 2)

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta()
        if abs(delta.y()) > abs(delta.x()):
            bar = self.horizontalScrollBar()
            bar.setValue(bar.value() - delta.y())
            event.accept()
            return
        super().wheelEvent(event)

    @Slot(QModelIndex)
    def _on_activated(self, index: QModelIndex) -> None:
        item = index.data(ItemRole)
        if isinstance(item, GalleryItem):
            self.item_activated.emit(item)

    @Slot(QModelIndex, QModelIndex)
    def _on_current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        item = current.data(ItemRole) if current.isValid() else None
        self.current_item_changed.emit(item if isinstance(item, GalleryItem) else None)


STRIP_EMPTY_TEXT = "Generated images will appear here."


class GalleryToolbar(QWidget):
    """The row above the grid. When the window is narrow it turns compact (an icon-only
    Favourites button, no image count) instead of holding the whole main window wide.

    Every control has a small explicit minimum width, so the compact row is the floor;
    the row is compact whenever it is narrower than the full row would like to be.
    """

    ROOMY_SEARCH = 220

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._compact = False
        self.roomy: list[QWidget] = []
        """The controls whose preferred widths make up the full row."""
        self.favourites_button: QToolButton | None = None
        self.count_label: QLabel | None = None
        self._favourites_full = 0

    def is_compact(self) -> bool:
        return self._compact

    def full_width(self) -> int:
        layout = self.layout()
        if layout is None:
            return 0
        shown = [w for w in self.roomy if not w.isHidden() or w is self.count_label]
        widths = [w.sizeHint().width() for w in shown if w is not self.favourites_button]
        if self.favourites_button is not None:
            if not self._compact:
                self._favourites_full = self.favourites_button.sizeHint().width()
            widths.append(self._favourites_full)
        margins = layout.contentsMargins()
        spacing = max(0, layout.spacing()) * len(widths)
        return self.ROOMY_SEARCH + sum(widths) + spacing + margins.left() + margins.right()

    def refit(self) -> None:
        """Decide again (a text in the row changed its width)."""
        self._set_compact(self.width() < self.full_width())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._set_compact(event.size().width() < self.full_width())

    def _set_compact(self, compact: bool) -> None:
        if compact == self._compact:
            return
        if self.favourites_button is not None and not self._compact:
            self._favourites_full = self.favourites_button.sizeHint().width()
        self._compact = compact
        if self.favourites_button is not None:
            self.favourites_button.setToolButtonStyle(
                Qt.ToolButtonStyle.ToolButtonIconOnly
                if compact
                else Qt.ToolButtonStyle.ToolButtonTextBesideIcon
            )
        if self.count_label is not None:
            self.count_label.setVisible(not compact)


class GalleryWidget(QWidget):
    """The full gallery: search box, model filter, sort, favourites, zoom, the grid and the
    details pane. Call add_item() when the worker has saved an image, shutdown() on exit."""

    item_activated = Signal(object)  # GalleryItem: double-click / Enter
    current_item_changed = Signal(object)  # GalleryItem | None
    reuse_parameters = Signal(object)  # GenerationParams
    reuse_seed = Signal(int)
    send_to_canvas = Signal(object, str)  # Path, "img2img" | "inpaint"
    notice = Signal(str)  # one line for the status bar (e.g. the index was rebuilt)
    _sync_done = Signal(object, object, object)  # store, (added, removed) | None, error

    def __init__(
        self,
        store: GalleryStore,
        parent: QWidget | None = None,
        *,
        thumbnails: ThumbnailCache | None = None,
        trash: TrashFunction | None = None,
        page_size: int | None = None,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._trash = trash or move_to_trash
        self.loader = ThumbnailLoader(thumbnails or ThumbnailCache(), self)
        model_kwargs = {"page_size": page_size} if page_size else {}
        self._model_kwargs = model_kwargs
        self.model = GalleryModel(store, self.loader, self, **model_kwargs)
        self._strips: list[GalleryStrip] = []
        self._action_view: ThumbnailView | None = None
        self._sync_thread: threading.Thread | None = None
        self._old_threads: list[threading.Thread] = []
        self._sync_stop = threading.Event()
        self._sync_again = False
        self._rebuilding = False
        self._sync_done.connect(self._on_sync_done)
        self._sync_quiet = QTimer(self)
        self._sync_quiet.setSingleShot(True)
        self._sync_quiet.setInterval(SYNC_QUIET_MS)
        self._sync_quiet.timeout.connect(lambda: self._show_busy("Looking for new images…"))

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._apply_search)

        self._build_toolbar()
        self.grid = GalleryGrid(self.model, GRID_CELL_DEFAULT, self)
        self.details = GalleryDetailsPane(self)
        self._build_actions()
        self._register_view(self.grid)
        self.grid.activated.connect(self._on_grid_activated)
        self.grid.selectionModel().selectionChanged.connect(self._on_grid_selection)
        self.model.modelReset.connect(self._on_model_reset)
        self.model.rowsInserted.connect(self._update_count)
        self.model.rowsRemoved.connect(self._update_count)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.grid)
        self.splitter.addWidget(self.details)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setCollapsible(0, False)
        self.splitter.setSizes([900, 340])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._toolbar)
        line = QFrame(self)
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        layout.addWidget(line)
        layout.addWidget(self.splitter, 1)

        self._refresh_models()
        self._on_model_reset()

    # ------------------------------------------------------------------ building

    def _build_toolbar(self) -> None:
        self._toolbar = GalleryToolbar(self)
        bar = QHBoxLayout(self._toolbar)
        bar.setContentsMargins(10, 8, 10, 8)
        bar.setSpacing(8)

        self.search_box = QLineEdit(self._toolbar)
        self.search_box.setPlaceholderText("Search prompts")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.setMinimumWidth(140)
        self.search_box.addAction(
            gallery_icon("search", self.palette().color(QPalette.ColorRole.PlaceholderText)),
            QLineEdit.ActionPosition.LeadingPosition,
        )
        self.search_box.textChanged.connect(lambda _text: self._search_timer.start())
        self.search_box.returnPressed.connect(self._apply_search)
        self.search_box.setMaximumWidth(420)
        bar.addWidget(self.search_box, 1)

        self.model_filter = QComboBox(self._toolbar)
        self.model_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        # As wide as the longest model name when there is room; long names elide when not.
        self.model_filter.setMinimumWidth(
            self.model_filter.fontMetrics().horizontalAdvance("M") * 8
        )
        self.model_filter.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.model_filter.setToolTip("Show images made with one model")
        self.model_filter.currentIndexChanged.connect(self._on_model_filter)
        bar.addWidget(self.model_filter)

        self.sort_combo = QComboBox(self._toolbar)
        self.sort_combo.addItem("Newest first", "newest")
        self.sort_combo.addItem("Oldest first", "oldest")
        self.sort_combo.currentIndexChanged.connect(self._on_sort)
        bar.addWidget(self.sort_combo)

        self.favourites_button = QToolButton(self._toolbar)
        self.favourites_button.setText("Favourites")
        self.favourites_button.setIcon(gallery_icon("star"))
        self.favourites_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.favourites_button.setCheckable(True)
        self.favourites_button.setToolTip("Show only favourite images")
        self.favourites_button.toggled.connect(self._on_favourites_filter)
        bar.addWidget(self.favourites_button)

        bar.addStretch(0)
        muted = self.palette()
        color = muted.color(QPalette.ColorRole.WindowText)
        color.setAlpha(150)
        muted.setColor(QPalette.ColorRole.WindowText, color)
        self.busy_label = QLabel(self._toolbar)
        self.busy_label.setPalette(muted)
        self.busy_label.hide()
        bar.addWidget(self.busy_label)
        self.count_label = QLabel(self._toolbar)
        self.count_label.setPalette(muted)
        bar.addWidget(self.count_label)

        self.zoom_slider = QSlider(Qt.Orientation.Horizontal, self._toolbar)
        self.zoom_slider.setRange(*GRID_CELL_RANGE)
        self.zoom_slider.setSingleStep(8)
        self.zoom_slider.setPageStep(32)
        self.zoom_slider.setValue(GRID_CELL_DEFAULT)
        self.zoom_slider.setMinimumWidth(64)
        self.zoom_slider.setMaximumWidth(110)
        self.zoom_slider.setToolTip("Thumbnail size")
        self.zoom_slider.valueChanged.connect(lambda value: self.grid.set_cell_size(value))
        bar.addWidget(self.zoom_slider)
        # Small explicit minimums, so the compact row (not the full one) is the floor.
        self.favourites_button.setMinimumWidth(self.favourites_button.iconSize().width() + 14)
        self.count_label.setMinimumWidth(1)
        toolbar = self._toolbar
        toolbar.favourites_button = self.favourites_button
        toolbar.count_label = self.count_label
        toolbar.roomy = [
            self.model_filter,
            self.sort_combo,
            self.favourites_button,
            self.busy_label,
            self.count_label,
            self.zoom_slider,
        ]

    def _action(self, text: str, slot: Callable[[], None], tip: str = "") -> QAction:
        action = QAction(text, self)
        action.setToolTip(tip or text)
        action.setStatusTip(tip or text)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        self.action_reuse_parameters = self._action(
            "Reuse parameters",
            self._reuse_parameters,
            "Load this image's prompt and settings into the generator",
        )
        self.action_reuse_seed = self._action(
            "Reuse seed", self._reuse_seed, "Use this image's seed for the next generation"
        )
        self.action_send_img2img = self._action(
            "Send to img2img", lambda: self._send("img2img"), "Use this image as the img2img source"
        )
        self.action_send_inpaint = self._action(
            "Send to inpaint", lambda: self._send("inpaint"), "Open this image for inpainting"
        )
        self.action_copy_image = self._action(
            "Copy image", self._copy_image, "Copy the image to the clipboard"
        )
        self.action_copy_image.setShortcut(QKeySequence.StandardKey.Copy)
        self.action_copy_image.setIcon(gallery_icon("copy"))
        self.action_open_folder = self._action(
            "Open containing folder", self._open_folder, "Show the file in the file manager"
        )
        self.action_open_folder.setIcon(gallery_icon("folder"))
        self.action_toggle_favourite = QAction("Favourite", self)
        self.action_toggle_favourite.setCheckable(True)
        self.action_toggle_favourite.setIcon(gallery_icon("star"))
        self.action_toggle_favourite.setShortcut(QKeySequence("Ctrl+D"))
        self.action_toggle_favourite.setToolTip("Mark as favourite (Ctrl+D)")
        self.action_toggle_favourite.triggered.connect(self._set_favourite)
        self.action_delete = self._action(
            "Move to trash…", self._delete_selected, "Move the image file to the system trash"
        )
        self.action_delete.setShortcut(QKeySequence.StandardKey.Delete)
        self.action_delete.setIcon(gallery_icon("trash"))

        for action in (self.action_copy_image, self.action_toggle_favourite, self.action_delete):
            action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)

        self.details.set_actions(
            [
                self.action_reuse_parameters,
                self.action_reuse_seed,
                self.action_send_img2img,
                self.action_send_inpaint,
            ],
            [
                self.action_toggle_favourite,
                self.action_copy_image,
                self.action_open_folder,
                self.action_delete,
            ],
        )
        focus_search = QAction(self)
        focus_search.setShortcut(QKeySequence.StandardKey.Find)
        focus_search.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        focus_search.triggered.connect(lambda: self.search_box.setFocus())
        self.addAction(focus_search)

    @property
    def image_actions(self) -> list[QAction | None]:
        """Every per-image action, None marking where a menu puts a separator."""
        return [
            self.action_reuse_parameters,
            self.action_reuse_seed,
            None,
            self.action_send_img2img,
            self.action_send_inpaint,
            None,
            self.action_copy_image,
            self.action_open_folder,
            self.action_toggle_favourite,
            None,
            self.action_delete,
        ]

    def _register_view(self, view: ThumbnailView) -> None:
        view.context_actions = self.image_actions
        for action in (self.action_copy_image, self.action_toggle_favourite, self.action_delete):
            view.addAction(action)
        view.interacted.connect(lambda: self._set_action_view(view))
        view.selectionModel().selectionChanged.connect(
            lambda *_: self._update_actions() if self._action_view is view else None
        )

    # ------------------------------------------------------------------ public API

    @property
    def store(self) -> GalleryStore:
        return self._store

    def set_store(self, store: GalleryStore) -> None:
        """Show another gallery folder (the user changed it in the settings); call
        sync_in_background() next when it was opened with `scan_later`."""
        self._stop_sync()
        self._store = store
        self.model.set_store(store)
        for strip in self._strips:
            strip.gallery_model().set_store(store)
        self._refresh_models()

    def create_strip(self, parent: QWidget | None = None) -> GalleryStrip:
        """A strip of the newest images (unfiltered), kept in sync with this gallery and
        sharing its thumbnails and actions."""
        model = GalleryModel(self._store, self.loader, self, **self._model_kwargs)
        strip = GalleryStrip(model, parent=parent)
        self._register_view(strip)
        strip.item_activated.connect(self.item_activated)
        self._strips.append(strip)
        strip.destroyed.connect(
            lambda *_: self._strips.remove(strip) if strip in self._strips else None
        )
        return strip

    @Slot(object)
    def add_item(self, item: GalleryItem) -> None:
        """A new image was saved (by the worker): show it wherever it belongs."""
        self.model.add_item(item)
        for strip in self._strips:
            strip.gallery_model().add_item(item)
        if item.model and self.model_filter.findData(item.model) < 0:
            self._refresh_models()

    @Slot()
    def refresh(self) -> None:
        """Pick up changes made outside the app (files added or deleted) and re-read."""
        self.sync_in_background()

    # ------------------------------------------------------------------ index sync

    def is_syncing(self) -> bool:
        return self._sync_thread is not None

    def is_rebuilding(self) -> bool:
        return self._rebuilding

    def sync_in_background(self) -> None:
        """Bring the index up to date with the folder on a worker thread: reading
        thousands of PNG headers takes seconds, and the window must stay responsive.

        A store opened with `scan_later` after its index had to be thrown away shows
        "Rebuilding the gallery index…" until its images are back."""
        if self._sync_thread is not None:
            self._sync_again = True
            return
        store = self._store
        stop = threading.Event()
        self._sync_stop = stop
        self._rebuilding = store.rebuild_reason is not None and store.needs_scan

        def run() -> None:
            try:
                result, error = store.sync(stop.is_set), None
            except Exception as exc:  # any failure is reported, never raised in a thread
                log.warning("Gallery sync of %s failed", store.folder, exc_info=True)
                result, error = None, exc
            try:
                self._sync_done.emit(store, result, error)
            except RuntimeError:  # the widget is gone (the app is closing)
                pass

        thread = threading.Thread(target=run, name="gallery-sync", daemon=True)
        self._sync_thread = thread
        if self._rebuilding:
            self._show_busy(REBUILDING_TEXT)
        else:
            self._sync_quiet.start()
        thread.start()

    def _stop_sync(self) -> None:
        """Ask a running sync to stop; shutdown() waits for it."""
        self._sync_stop.set()
        self._sync_quiet.stop()
        if self._sync_thread is not None:
            self._old_threads.append(self._sync_thread)
        self._sync_thread = None
        self._sync_again = False
        self._rebuilding = False
        self._hide_busy()

    @Slot(object, object, object)
    def _on_sync_done(self, store: GalleryStore, result: object, error: object) -> None:
        if store is not self._store:
            return  # a sync of a gallery folder the user has since left
        self._sync_thread = None
        self._sync_quiet.stop()
        rebuilt, self._rebuilding = self._rebuilding, False
        self._hide_busy()
        if error is not None:
            self.notice.emit(f"Could not bring the gallery index up to date: {error}")
        elif isinstance(result, tuple):
            added, removed = result
            if rebuilt or added or removed:
                self._reload_all()
            if rebuilt:
                count = self._store.count()
                # A brand-new, empty gallery (first run) has nothing worth announcing.
                if count or self._store.rebuild_reason != NO_INDEX_YET:
                    self.notice.emit(f"Gallery index rebuilt: {count:,} image(s).")
            elif added or removed:
                self.notice.emit(
                    f"Gallery updated: {added} new and {removed} missing image(s) "
                    "found in its folder."
                )
        if self._sync_again:
            self._sync_again = False
            self.sync_in_background()

    def _reload_all(self) -> None:
        self._refresh_models()
        self.model.reload()
        for strip in self._strips:
            strip.gallery_model().reload()

    def _show_busy(self, text: str) -> None:
        self.busy_label.setText(text)
        self.busy_label.show()
        if self._rebuilding:
            waiting = f"{text}\nYour images will appear in a moment."
            self.grid.empty_text = waiting
            for strip in self._strips:
                strip.empty_text = waiting
                strip.viewport().update()
            self.grid.viewport().update()
        self._toolbar.refit()

    def _hide_busy(self) -> None:
        if self.busy_label.isHidden():
            return
        self.busy_label.hide()
        for strip in self._strips:
            strip.empty_text = STRIP_EMPTY_TEXT
            strip.viewport().update()
        self._update_empty_text()
        self._toolbar.refit()

    def set_search_text(self, text: str) -> None:
        """Search now, without waiting for the typing pause."""
        self.search_box.setText(text)
        self._apply_search()

    def current_item(self) -> GalleryItem | None:
        return self.grid.current_item()

    def selected_items(self) -> list[GalleryItem]:
        return self.grid.selected_items()

    def confirm_delete(self, items: list[GalleryItem]) -> bool:
        """Ask before moving files to the trash."""
        count = len(items)
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Move to Trash")
        box.setText(
            f"Move “{items[0].name}” to the trash?"
            if count == 1
            else f"Move {count} images to the trash?"
        )
        box.setInformativeText("You can restore files from the system trash.")
        move = box.addButton("Move to Trash", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(move)
        box.exec()
        return box.clickedButton() is move

    def shutdown(self) -> None:
        """Stop thumbnail and index work; call when the main window closes."""
        self._search_timer.stop()
        self._stop_sync()
        for thread in self._old_threads:
            thread.join(10.0)
        self._old_threads.clear()
        self.loader.shutdown()
        # The store closes next; views painting during teardown must not query it.
        self.model.detach()
        for strip in self._strips:
            strip.gallery_model().detach()

    # ------------------------------------------------------------------ filters

    def _refresh_models(self) -> None:
        current = self.model_filter.currentData()
        self.model_filter.blockSignals(True)
        self.model_filter.clear()
        self.model_filter.addItem("All models", None)
        for name in self._store.models():
            self.model_filter.addItem(name, name)
        index = self.model_filter.findData(current) if current is not None else 0
        self.model_filter.setCurrentIndex(max(0, index))
        self.model_filter.blockSignals(False)
        if current is not None and index < 0:
            self._on_model_filter()

    @Slot()
    def _apply_search(self) -> None:
        self._search_timer.stop()
        self.model.update_filter(text=self.search_box.text().strip())

    @Slot()
    def _on_model_filter(self) -> None:
        self.model.update_filter(model=self.model_filter.currentData())

    @Slot()
    def _on_sort(self) -> None:
        self.model.update_filter(sort=self.sort_combo.currentData())

    @Slot(bool)
    def _on_favourites_filter(self, checked: bool) -> None:
        self.model.update_filter(favourites_only=checked)

    @Slot()
    def _on_model_reset(self) -> None:
        self._update_empty_text()
        self._update_count()
        self._reselect(self.details.item)

    def _update_empty_text(self) -> None:
        if self._rebuilding:
            return  # the grid says the index is being rebuilt until it is
        f: GalleryFilter = self.model.filter
        if f.text or f.model or f.favourites_only:
            self.grid.empty_text = "No images match these filters."
        else:
            self.grid.empty_text = "No images yet.\nEverything you generate is saved here."
        self.grid.viewport().update()

    def _reselect(self, item: GalleryItem | None) -> None:
        """Keep the shown image selected across a filter change when it is still near the
        top of the results; otherwise the details pane empties with the selection."""
        row = None
        if item is not None and self.model.rowCount():
            self.model.item(0)  # reads the first page, where row_of() can find it
            row = self.model.row_of(item.id)
        if row is None:
            self.details.show_item(None)
            self._update_actions()
            self.current_item_changed.emit(None)
            return
        index = self.model.index(row)
        self.grid.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect
        )
        self.grid.scrollTo(index)

    @Slot()
    def _update_count(self) -> None:
        count = self.model.rowCount()
        self.count_label.setText(f"{count:,} image" + ("" if count == 1 else "s"))
        self._toolbar.refit()

    # ------------------------------------------------------------------ actions

    def _set_action_view(self, view: ThumbnailView) -> None:
        if self._action_view is not view:
            self._action_view = view
            self._update_actions()

    def _targets(self) -> list[GalleryItem]:
        view = self._action_view or self.grid
        return view.selected_items()

    def _target(self) -> GalleryItem | None:
        view = self._action_view or self.grid
        return view.current_item()

    def _update_actions(self) -> None:
        items = self._targets()
        one = len(items) == 1
        for action in (
            self.action_reuse_parameters,
            self.action_reuse_seed,
            self.action_send_img2img,
            self.action_send_inpaint,
            self.action_copy_image,
            self.action_open_folder,
        ):
            action.setEnabled(one)
        self.action_toggle_favourite.setEnabled(bool(items))
        self.action_toggle_favourite.setChecked(bool(items) and all(i.favourite for i in items))
        self.action_delete.setEnabled(bool(items))

    @Slot(QItemSelection, QItemSelection)
    def _on_grid_selection(self, *_: object) -> None:
        self._action_view = self.grid
        item = self.grid.current_item()
        self.details.show_item(item)
        self._update_actions()
        self.current_item_changed.emit(item)

    @Slot(QModelIndex)
    def _on_grid_activated(self, index: QModelIndex) -> None:
        item = index.data(ItemRole)
        if isinstance(item, GalleryItem):
            self.item_activated.emit(item)

    def _reuse_parameters(self) -> None:
        if item := self._target():
            self.reuse_parameters.emit(item.params)

    def _reuse_seed(self) -> None:
        if item := self._target():
            self.reuse_seed.emit(item.seed)

    def _send(self, mode: str) -> None:
        if item := self._target():
            self.send_to_canvas.emit(item.path, mode)

    def _copy_image(self) -> None:
        item = self._target()
        if item is None:
            return
        image = QImage(str(item.path))
        if image.isNull():
            QMessageBox.warning(self, "Copy image", f"Cannot read {item.name}.")
            return
        mime = QMimeData()
        mime.setImageData(image)
        mime.setUrls([QUrl.fromLocalFile(str(item.path))])
        QGuiApplication.clipboard().setMimeData(mime)
        _hand_clipboard_to_qt_at_exit()

    def _open_folder(self) -> None:
        if item := self._target():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(item.path.parent)))

    def _all_models(self) -> list[GalleryModel]:
        return [self.model, *(strip.gallery_model() for strip in self._strips)]

    def _set_favourite(self, checked: bool) -> None:
        for item in self._targets():
            try:
                updated = self._store.set_favourite(item.id, checked)
            except GalleryError as exc:
                QMessageBox.warning(self, "Favourite", str(exc))
                continue
            for model in self._all_models():
                model.update_item(updated)
            if self.details.item is not None and self.details.item.id == updated.id:
                self.details.show_item(updated)
        self._update_actions()

    def _delete_selected(self) -> None:
        items = self._targets()
        if not items or not self.confirm_delete(items):
            return
        failures: list[str] = []
        for item in items:
            self.loader.forget(item.path)
            try:
                self._store.delete(item.id, self._trash)
            except GalleryError as exc:
                failures.append(str(exc))
                continue
            for model in self._all_models():
                model.remove_item(item.id)
        self._refresh_models()
        self.details.show_item(self.grid.current_item())
        self._update_actions()
        if failures:
            more = (
                f"\n({len(failures) - 1} more could not be deleted.)" if len(failures) > 1 else ""
            )
            QMessageBox.warning(self, "Move to Trash", failures[0] + more)


def _clipboard_to_qt() -> None:
    """Swap a Python-made QMimeData on the clipboard for one Qt makes itself.

    Qt destroys the clipboard's contents in its own exit handlers, after Python has
    finalised; destroying a Python-wrapped object then crashes the process. The picture
    stays on the clipboard (for a clipboard manager); only the file URL is dropped.
    """
    app = QGuiApplication.instance()
    if app is None:
        return
    clipboard = QGuiApplication.clipboard()
    image = clipboard.image()
    if image.isNull():
        clipboard.clear()
    else:
        clipboard.setImage(image)


@cache
def _hand_clipboard_to_qt_at_exit() -> None:
    atexit.register(_clipboard_to_qt)
