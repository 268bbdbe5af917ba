"""Models > Download: pick a model from the catalog and fetch it, with progress and Stop.

The transfer runs on its own thread (a multi-gigabyte download must not freeze the
window); stopping keeps what was fetched so the next Download continues, and
without a network the dialog says where to put a file instead.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from sd_desktop.library.catalog import CatalogEntry, load_catalog
from sd_desktop.library.download import DownloadProgress, DownloadResult, ModelDownloader
from sd_desktop.library.errors import DownloadCancelled, LibraryError, OfflineError
from sd_desktop.library.hashes import HashCache
from sd_desktop.ui.model_manager import format_size, open_folder


def format_eta(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_text(p: DownloadProgress) -> str:
    """'1.20 GB of 4.27 GB · 25.0 MB/s · about 2 min left · file 1 of 4'."""
    parts = [f"{format_size(p.done_bytes)} of {format_size(p.total_bytes)}"]
    if p.bytes_per_second > 0:
        parts.append(f"{p.bytes_per_second / 1e6:.1f} MB/s")
        left = (p.total_bytes - p.done_bytes) / p.bytes_per_second
        parts.append(f"about {format_eta(left)} left")
    if p.file_count > 1:
        parts.append(f"file {p.file_index} of {p.file_count}")
    return " · ".join(parts)


class DownloadThread(QThread):
    """Runs one ModelDownloader.download; exactly one of the outcome signals is emitted."""

    progress = Signal(object)  # DownloadProgress
    succeeded = Signal(object)  # DownloadResult
    failed = Signal(str, bool)  # message, True if there is no connection
    cancelled = Signal(str)

    def __init__(self, downloader: ModelDownloader, entry: CatalogEntry, parent=None) -> None:
        super().__init__(parent)
        self.downloader, self.entry = downloader, entry
        self._stop = threading.Event()

    def cancel(self) -> None:
        self._stop.set()

    def run(self) -> None:
        try:
            result = self.downloader.download(
                self.entry, progress=self.progress.emit, should_cancel=self._stop.is_set
            )
        except DownloadCancelled as exc:
            self.cancelled.emit(str(exc))
        except OfflineError as exc:
            self.failed.emit(str(exc), True)
        except LibraryError as exc:
            self.failed.emit(str(exc), False)
        except Exception as exc:  # shown, not raised: the thread must always report back
            self.failed.emit(
                f"The download failed unexpectedly ({type(exc).__name__}: {exc}).", False
            )
        else:
            self.succeeded.emit(result)


class DownloadDialog(QDialog):
    """`modelDownloaded(path)` once a model is installed; accepted via "Use this model"."""

    modelDownloaded = Signal(object)  # Path
    downloadEnded = Signal()  # after success, failure or stop; the dialog is idle again

    def __init__(
        self,
        models_folder: Path,
        *,
        catalog: list[CatalogEntry] | None = None,
        downloader: ModelDownloader | None = None,
        hash_cache: HashCache | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.models_folder = Path(models_folder)
        self.downloader = downloader or ModelDownloader(self.models_folder, hash_cache=hash_cache)
        self.installed_path: Path | None = None
        self.thread: DownloadThread | None = None
        self.setWindowTitle("Download a model")
        self.resize(640, 480)

        try:
            self.catalog = catalog if catalog is not None else load_catalog()
            catalog_problem = ""
        except LibraryError as exc:
            self.catalog, catalog_problem = [], str(exc)

        intro = QLabel(
            "Models come from the Hugging Face Hub and are saved in your models folder. "
            "You can stop a download and continue it later."
        )
        intro.setWordWrap(True)
        self.list = QListWidget(self)
        self.list.setWordWrap(True)
        self.list.setSpacing(2)
        self.list.currentRowChanged.connect(lambda _row: self._update())
        self.details = QLabel(self)
        self.details.setWordWrap(True)
        self.details.setOpenExternalLinks(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)

        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1000)
        self.bar.setVisible(False)
        self.progress_label = QLabel(self)
        self.message = QLabel(catalog_problem, self)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.download_button = QPushButton("Download")
        self.download_button.setDefault(True)
        self.download_button.clicked.connect(self._primary)
        self.discard_button = QPushButton("Delete partial download")
        self.discard_button.clicked.connect(self._discard)
        self.open_folder_button = QPushButton("Open models folder")
        self.open_folder_button.setToolTip(str(self.models_folder))
        self.open_folder_button.clicked.connect(lambda: open_folder(self.models_folder))
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self._stop_or_close)
        for button in (self.discard_button, self.open_folder_button, self.close_button):
            button.setAutoDefault(False)  # Enter always means Download, whatever has focus

        folder_label = QLabel(f"Models folder: {self.models_folder}")
        folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        folder_label.setWordWrap(True)

        buttons = QHBoxLayout()
        buttons.addWidget(self.open_folder_button)
        buttons.addWidget(self.discard_button)
        buttons.addStretch(1)
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.details)
        layout.addWidget(self.bar)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.message)
        layout.addWidget(folder_label)
        layout.addLayout(buttons)

        self._fill()
        if self.catalog:
            self.list.setCurrentRow(0)
        self._update()

    # -- the list ------------------------------------------------------------------------

    def _state(self, entry: CatalogEntry) -> str:
        if self.downloader.is_installed(entry):
            return "in your models folder"
        partial = self.downloader.partial_bytes(entry)
        if partial:
            return f"{format_size(partial)} downloaded, continues where it stopped"
        return ""

    def _fill(self) -> None:
        row = self.list.currentRow()
        self.list.clear()
        for entry in self.catalog:
            state = self._state(entry)
            size = f"about {format_size(entry.size_bytes)}" if entry.size_bytes else ""
            first = " · ".join(p for p in (entry.name, size, state) if p)
            item = QListWidgetItem(f"{first}\n{entry.description}")
            item.setData(Qt.ItemDataRole.UserRole, entry)
            self.list.addItem(item)
        if 0 <= row < self.list.count():
            self.list.setCurrentRow(row)

    def selected(self) -> CatalogEntry | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def select(self, entry_id: str) -> bool:
        for row, entry in enumerate(self.catalog):
            if entry.id == entry_id:
                self.list.setCurrentRow(row)
                return True
        return False

    def _update(self) -> None:
        running = self.thread is not None
        entry = self.selected()
        self.list.setEnabled(not running)
        self.close_button.setText("Stop" if running else "Close")
        self.close_button.setToolTip(
            "Stop the download; what was fetched is kept" if running else ""
        )
        if entry is None:
            self.details.setText("")
            self.download_button.setEnabled(False)
            self.download_button.setToolTip("No downloadable models are listed")
            self.discard_button.setVisible(False)
            return
        licence = (
            f"Licence: {entry.license} (read it on <a href='{entry.page}'>the model's page</a>)."
            if entry.page
            else f"Licence: {entry.license}."
        )
        self.details.setText(f"{entry.family} · {entry.repo}<br>{licence}")
        installed = self.downloader.is_installed(entry)
        partial = self.downloader.partial_bytes(entry) if not installed else 0
        if installed:
            self.download_button.setText("Use this model")
            self.download_button.setToolTip(str(self.downloader.target_path(entry)))
        else:
            self.download_button.setText("Continue download" if partial else "Download")
            self.download_button.setToolTip(f"Save to {self.downloader.target_path(entry)}")
        self.download_button.setEnabled(not running)
        self.discard_button.setVisible(bool(partial) and not running)

    # -- actions -------------------------------------------------------------------------

    def _primary(self) -> None:
        entry = self.selected()
        if entry is None:
            return
        if self.downloader.is_installed(entry):
            self.installed_path = self.downloader.target_path(entry)
            self.accept()
            return
        self.start(entry)

    def start(self, entry: CatalogEntry) -> None:
        """Begin (or continue) downloading `entry`."""
        self.message.setText("")
        self.bar.setVisible(True)
        self.bar.setValue(0)
        self.progress_label.setText("Asking the Hugging Face Hub for the files…")
        self.thread = DownloadThread(self.downloader, entry, self)
        self.thread.progress.connect(self._progress)
        self.thread.succeeded.connect(self._succeeded)
        self.thread.failed.connect(self._failed)
        self.thread.cancelled.connect(self._cancelled)
        self.thread.finished.connect(self._thread_done)
        self.thread.start()
        self._update()

    def _progress(self, p: DownloadProgress) -> None:
        self.bar.setValue(int(p.fraction * 1000))
        self.progress_label.setText(progress_text(p))

    def _succeeded(self, result: DownloadResult) -> None:
        self.installed_path = result.path
        self.bar.setValue(1000)
        self.progress_label.setText(f"Done: saved as {result.path}")
        self.message.setText("")
        self.modelDownloaded.emit(result.path)

    def _failed(self, message: str, offline: bool) -> None:
        self.bar.setVisible(False)
        self.progress_label.setText("")
        if offline:
            message += "\n\nUse “Open models folder” to get there."
        self.message.setText(message)

    def _cancelled(self, message: str) -> None:
        self.bar.setVisible(False)
        self.progress_label.setText("")
        self.message.setText(message)

    def _thread_done(self) -> None:
        if self.thread is not None:
            self.thread.deleteLater()
        self.thread = None
        self._fill()
        self._update()
        self.downloadEnded.emit()

    def _discard(self) -> None:
        entry = self.selected()
        if entry is None or self.thread is not None:
            return
        self.downloader.discard_partial(entry)
        self.message.setText(f"Deleted the partial download of {entry.name}.")
        self._fill()
        self._update()

    def cancel_download(self) -> None:
        if self.thread is not None:
            self.progress_label.setText("Stopping…")
            self.thread.cancel()

    def _stop_or_close(self) -> None:
        if self.thread is not None:
            self.cancel_download()
        else:
            self.reject() if self.installed_path is None else self.accept()

    def reject(self) -> None:
        """Esc or the window's close button: a running download is stopped first (kept)."""
        if self.thread is not None:
            answer = QMessageBox.question(
                self,
                "Stop the download?",
                "Stop the download and close? What was downloaded is kept, and Download "
                "continues from there next time.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
            self.thread.cancel()
            self.thread.wait()
        super().reject()
