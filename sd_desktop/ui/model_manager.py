"""Models > Manage Models: every model found, where it came from, and ways to add more.

Scanning reads headers only, but hashing reads whole files, so both run on a
background thread and the table fills in as results arrive; the dialog never
blocks. Folders added here are reported through the library's
`on_folders_changed`, so whoever owns the settings stores them.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sd_desktop.library.errors import Cancelled, LibraryError
from sd_desktop.library.library import ModelLibrary
from sd_desktop.library.scan import ModelEntry

MODEL_FILE_FILTER = "Stable Diffusion models (*.safetensors *.ckpt);;All files (*)"
COLUMNS = ("Name", "Family", "Size", "Hash", "Location")


def format_size(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.2f} GB"
    if n >= 1e6:
        return f"{n / 1e6:.0f} MB"
    return f"{max(n, 0) / 1e3:.0f} KB"


def open_folder(folder: Path) -> bool:
    """Show a folder in the system file manager, creating it first if needed."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


class _Task(QRunnable):
    def __init__(self, runner: BackgroundRunner, token: int, fn: Callable[[], Any]) -> None:
        super().__init__()
        self._runner, self._token, self._fn = runner, token, fn

    def run(self) -> None:
        try:
            result, error = self._fn(), None
        except Exception as exc:  # reported to the UI; a background task must not crash it
            result, error = None, exc
        self._runner._done.emit(self._token, result, error)


class BackgroundRunner(QObject):
    """Runs plain functions one at a time off the UI thread; callbacks run on the UI thread."""

    _done = Signal(int, object, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._ids = itertools.count()
        self._callbacks: dict[int, tuple[Callable, Callable | None]] = {}
        self._done.connect(self._deliver)

    def run(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        token = next(self._ids)
        self._callbacks[token] = (on_done, on_error)
        self._pool.start(_Task(self, token, fn))

    def _deliver(self, token: int, result: object, error: object) -> None:
        on_done, on_error = self._callbacks.pop(token, (None, None))
        if error is not None:
            if on_error is not None:
                on_error(error)  # type: ignore[arg-type]
        elif on_done is not None:
            on_done(result)

    def wait(self, timeout_ms: int = 10_000) -> bool:
        return self._pool.waitForDone(timeout_ms)


class _Row(QTreeWidgetItem):
    """Sorts the size column by bytes, not by its text."""

    def __lt__(self, other: QTreeWidgetItem) -> bool:
        column = self.treeWidget().sortColumn() if self.treeWidget() else 0
        if column == 2:
            mine = self.data(2, Qt.ItemDataRole.UserRole) or 0
            theirs = other.data(2, Qt.ItemDataRole.UserRole) or 0
            return mine < theirs
        return self.text(column).lower() < other.text(column).lower()


class ModelManagerDialog(QDialog):
    """Lists the library's models; `modelChosen(path)` when the user picks one to load."""

    modelChosen = Signal(object)  # Path
    libraryChanged = Signal()  # folders or files changed: other model lists should rescan

    def __init__(self, library: ModelLibrary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.entries: list[ModelEntry] = []
        self._runner = BackgroundRunner(self)
        self._hash_runner = BackgroundRunner(self)
        self._stop_hashing = threading.Event()
        self._hash_generation = 0
        self._scan_started = 0.0
        self.setWindowTitle("Models")
        self.resize(960, 560)

        intro = QLabel(
            "Models found on this computer. Double-click one to use it. Models in grey "
            "cannot be used yet; hover over them to see why."
        )
        intro.setWordWrap(True)

        self.table = QTreeWidget(self)
        self.table.setColumnCount(len(COLUMNS))
        self.table.setHeaderLabels(list(COLUMNS))
        self.table.setRootIsDecorated(False)
        self.table.setUniformRowHeights(True)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        header = self.table.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.setColumnWidth(0, 260)
        self.table.setColumnWidth(1, 190)
        self.table.setColumnWidth(2, 80)
        self.table.setColumnWidth(3, 100)
        self.table.itemDoubleClicked.connect(lambda *_: self._use_selected())
        self.table.itemSelectionChanged.connect(self._update_buttons)

        self.status = QLabel(self)
        self.status.setWordWrap(True)

        folders_title = QLabel("<b>Where models are looked for</b>")
        self.folder_list = QListWidget(self)
        self.folder_list.setMaximumHeight(110)
        self.folder_list.itemSelectionChanged.connect(self._update_buttons)
        self.hf_cache_box = QCheckBox(
            f"Also list models in the Hugging Face cache ({library.hf_cache})"
        )
        self.hf_cache_box.setChecked(library.use_hf_cache)
        self.hf_cache_box.toggled.connect(self._toggle_hf_cache)

        self.use_button = QPushButton("Use this model")
        self.use_button.setDefault(True)
        self.use_button.clicked.connect(self._use_selected)
        self.add_folder_button = QPushButton("Add folder…")
        self.add_folder_button.setToolTip(
            "Scan another folder too, e.g. AUTOMATIC1111's models/Stable-diffusion"
        )
        self.add_folder_button.clicked.connect(self._add_folder)
        self.remove_folder_button = QPushButton("Remove folder")
        self.remove_folder_button.clicked.connect(self._remove_folder)
        self.open_file_button = QPushButton("Open model file…")
        self.open_file_button.clicked.connect(self._open_file)
        self.download_button = QPushButton("Download…")
        self.download_button.setToolTip("Download Stable Diffusion 1.5 or its inpainting model")
        self.download_button.clicked.connect(self._download)
        self.rescan_button = QPushButton("Rescan")
        self.rescan_button.clicked.connect(self.rescan)
        self.open_models_button = QPushButton("Open models folder")
        self.open_models_button.setToolTip(str(library.models_folder))
        self.open_models_button.clicked.connect(lambda: open_folder(library.models_folder))
        close_button = QPushButton("Close")
        close_button.clicked.connect(self.reject)
        for button in (
            self.add_folder_button,
            self.remove_folder_button,
            self.open_file_button,
            self.download_button,
            self.rescan_button,
            self.open_models_button,
            close_button,
        ):
            button.setAutoDefault(False)  # Enter always means "Use this model"

        actions = QHBoxLayout()
        for button in (
            self.use_button,
            self.open_file_button,
            self.download_button,
            self.rescan_button,
        ):
            actions.addWidget(button)
        actions.addStretch(1)
        actions.addWidget(close_button)

        folder_buttons = QVBoxLayout()
        for button in (self.add_folder_button, self.remove_folder_button, self.open_models_button):
            folder_buttons.addWidget(button)
        folder_buttons.addStretch(1)
        folders_row = QHBoxLayout()
        folders_row.addWidget(self.folder_list, 1)
        folders_row.addLayout(folder_buttons)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        layout.addWidget(folders_title)
        layout.addLayout(folders_row)
        layout.addWidget(self.hf_cache_box)
        layout.addLayout(actions)

        self._fill_folders()
        self._update_buttons()
        self.rescan()

    # -- scanning and hashing ----------------------------------------------------------

    def rescan(self) -> None:
        self._stop_hashing.set()
        self._scan_started = time.perf_counter()
        self.status.setText("Looking for models…")
        self.rescan_button.setText("Scanning…")
        self._runner.run(self.library.scan, self._scanned, self._scan_failed)

    def _scan_failed(self, error: Exception) -> None:
        self.rescan_button.setText("Rescan")
        self.status.setText(f"The scan failed: {error}")

    def _scanned(self, entries: list[ModelEntry]) -> None:
        self.rescan_button.setText("Rescan")
        self.entries = entries
        self.table.setSortingEnabled(False)
        self.table.clear()
        for entry in entries:
            self.table.addTopLevelItem(self._row(entry))
        self.table.setSortingEnabled(True)
        for i in range(self.table.topLevelItemCount()):
            if self.table.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole).usable:
                self.table.setCurrentItem(self.table.topLevelItem(i))
                break
        usable = sum(e.usable for e in entries)
        seconds = time.perf_counter() - self._scan_started
        if entries:
            self.status.setText(
                f"{len(entries)} model{'s' * (len(entries) != 1)} found, {usable} usable "
                f"(scanned in {seconds:.1f} s)."
            )
        else:
            self.status.setText(
                f"No models found yet. Download one, open a file, add a folder, or copy a "
                f".safetensors file into {self.library.models_folder} and press Rescan."
            )
        self._update_buttons()
        self._start_hashing()

    def _row(self, entry: ModelEntry) -> QTreeWidgetItem:
        family = entry.family if entry.error is None else "Cannot be read"
        cached = self.library.with_hash(entry)
        hash_text = cached or ("" if entry.error else "…")
        item = _Row([entry.name, family, format_size(entry.size_bytes), hash_text, entry.location])
        item.setData(0, Qt.ItemDataRole.UserRole, entry)
        item.setData(2, Qt.ItemDataRole.UserRole, entry.size_bytes)
        tip = entry.error or entry.detail or entry.family
        for column in range(len(COLUMNS)):
            item.setToolTip(column, f"{entry.path}\n{tip}")
        if not entry.usable:
            grey = self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
            for column in range(len(COLUMNS)):
                item.setForeground(column, grey)
        return item

    def _item_for(self, path: Path) -> QTreeWidgetItem | None:
        for i in range(self.table.topLevelItemCount()):
            item = self.table.topLevelItem(i)
            entry = item.data(0, Qt.ItemDataRole.UserRole)
            if entry is not None and entry.path == path:
                return item
        return None

    def _start_hashing(self) -> None:
        """Hash models without a cached hash, one at a time, newest scan only."""
        self._stop_hashing = threading.Event()
        stop = self._stop_hashing
        todo = [e for e in self.entries if e.usable and not self.library.with_hash(e)]
        for entry in todo:

            def job(entry: ModelEntry = entry) -> tuple[Path, str | None]:
                if stop.is_set():
                    return entry.path, None
                return entry.path, self.library.compute_hash(entry, should_cancel=stop.is_set)

            self._hash_runner.run(job, self._hashed, self._hash_failed)

    def _hashed(self, result: tuple[Path, str | None]) -> None:
        path, short = result
        item = self._item_for(path)
        if item is not None and short:
            item.setText(3, short)

    def _hash_failed(self, error: Exception) -> None:
        if not isinstance(error, Cancelled) and not isinstance(error, LibraryError):
            self.status.setText(f"A model could not be hashed: {error}")

    # -- folders -------------------------------------------------------------------------

    def _fill_folders(self) -> None:
        self.folder_list.clear()
        fixed = QListWidgetItem(f"{self.library.models_folder}   (the app's models folder)")
        fixed.setData(Qt.ItemDataRole.UserRole, None)
        fixed.setToolTip("Always scanned; downloads are saved here.")
        self.folder_list.addItem(fixed)
        for folder in self.library.folders():
            item = QListWidgetItem(str(folder))
            item.setData(Qt.ItemDataRole.UserRole, folder)
            if not folder.is_dir():
                item.setText(f"{folder}   (not found: disconnected drive?)")
            self.folder_list.addItem(item)

    def _selected_folder(self) -> Path | None:
        items = self.folder_list.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def _selected_entry(self) -> ModelEntry | None:
        items = self.table.selectedItems()
        return items[0].data(0, Qt.ItemDataRole.UserRole) if items else None

    def _update_buttons(self) -> None:
        folder = self._selected_folder()
        self.remove_folder_button.setEnabled(folder is not None)
        self.remove_folder_button.setToolTip(
            f"Stop scanning {folder}"
            if folder
            else "Select a folder you added to remove it "
            "(the app's models folder is always scanned)"
        )
        entry = self._selected_entry()
        self.use_button.setEnabled(entry is not None and entry.usable)
        if entry is None:
            self.use_button.setToolTip("Select a model in the list first")
        elif not entry.usable:
            self.use_button.setToolTip(entry.error or entry.detail)
        else:
            self.use_button.setToolTip(f"Load {entry.name}")

    def _add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of models")
        if folder and self.library.add_folder(Path(folder)):
            self._fill_folders()
            self.libraryChanged.emit()
            self.rescan()

    def _remove_folder(self) -> None:
        folder = self._selected_folder()
        if folder is not None and self.library.remove_folder(folder):
            self._fill_folders()
            self.libraryChanged.emit()
            self.rescan()

    def _toggle_hf_cache(self, on: bool) -> None:
        self.library.use_hf_cache = on
        self.libraryChanged.emit()
        self.rescan()

    # -- choosing ------------------------------------------------------------------------

    def _use_selected(self) -> None:
        entry = self._selected_entry()
        if entry is not None and entry.usable:
            self.modelChosen.emit(entry.path)
            self.accept()

    def _open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", "", MODEL_FILE_FILTER)
        if not path:
            return
        entry = self.library.describe(Path(path))
        if not entry.usable:
            self.status.setText(f"{entry.name} cannot be used: {entry.error or entry.detail}")
            return
        self.modelChosen.emit(entry.path)
        self.accept()

    def _download(self) -> None:
        from sd_desktop.ui.download_dialog import DownloadDialog

        dialog = DownloadDialog(
            self.library.models_folder, hash_cache=self.library.hashes, parent=self
        )
        dialog.modelDownloaded.connect(lambda _path: (self.libraryChanged.emit(), self.rescan()))
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.installed_path is not None:
            self.modelChosen.emit(dialog.installed_path)
            self.accept()

    def done(self, result: int) -> None:
        self._stop_hashing.set()
        super().done(result)
