"""The main window: generation panel, canvas, gallery and the worker that feeds them.

The window owns no engine state. It turns panel + canvas into a Job, hands it to the
Worker, and reacts to the worker's signals; everything slow happens in the worker (or
the thumbnail and model-scan pools), so the event loop never waits on torch or disk.
Problems are shown in a banner above the canvas, never as a traceback.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QByteArray, QSize, Qt, Slot
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from sd_desktop.atomic_files import atomic_output
from sd_desktop.engine.request import Mode
from sd_desktop.gallery import (
    GalleryError,
    GalleryItem,
    GalleryStore,
    ThumbnailCache,
    default_gallery_folder,
)
from sd_desktop.infotext import GenerationParams, write_png
from sd_desktop.library.library import ModelLibrary
from sd_desktop.library.scan import ModelEntry
from sd_desktop.ui.about import AboutDialog, ShortcutsDialog
from sd_desktop.ui.app_icons import app_icon
from sd_desktop.ui.canvas import CanvasWidget
from sd_desktop.ui.canvas_image_io import ImageLoadError, read_image_file
from sd_desktop.ui.drop_offer import (
    ImageDropFilter,
    ParamsOfferBar,
    inspect_dropped,
)
from sd_desktop.ui.gallery_view import GalleryWidget
from sd_desktop.ui.generation_panel import MODE_LABELS, GenerationPanel
from sd_desktop.ui.model_manager import BackgroundRunner, ModelManagerDialog
from sd_desktop.ui.preferences import PREVIEW_LABELS, Preferences, PreferencesDialog
from sd_desktop.ui.settings import AppPaths, Settings, SettingsStore
from sd_desktop.ui.status import BannerKind, MessageBanner, StatusArea
from sd_desktop.ui.welcome import WelcomePanel
from sd_desktop.worker import (
    NO_MODEL_MESSAGE,
    Job,
    ModelInfo,
    PreviewMode,
    PreviewOptions,
    Worker,
)

log = logging.getLogger(__name__)

MODEL_FILE_FILTER = "Stable Diffusion models (*.safetensors *.ckpt);;All files (*)"
CANVAS_TAB, GALLERY_TAB = 0, 1
DEFAULT_WINDOW_SIZE = QSize(1400, 880)
"""First-run size where the screen has room; smaller screens get a window that fits."""
# What the empty canvas says in each mode: (title, detail).
EMPTY_CANVAS_TEXT = {
    Mode.TXT2IMG: (
        "Your picture appears here",
        "Type a prompt and press Generate (Ctrl+Enter).\n"
        "To start from a picture instead, drop or paste (Ctrl+V) one here.",
    ),
    Mode.IMG2IMG: (
        "Drop the picture to rework here",
        "or paste one (Ctrl+V), open one (Ctrl+O) or send one from the gallery",
    ),
    Mode.INPAINT: (
        "Drop the picture to inpaint here",
        "or paste (Ctrl+V) or open (Ctrl+O) one,\nthen paint over the part to repaint",
    ),
}


@dataclass
class _JobView:
    """What the window remembers about a queued job to describe it in the status bar."""

    label: str
    width: int
    height: int
    batch_size: int
    started: float = 0.0


def _same_file(path: Path) -> Path:
    """One spelling per file, so a model reached through a symlink is listed once."""
    try:
        return Path(path).resolve()
    except OSError:
        return Path(path).absolute()


def _grid_size(width: int, height: int, count: int) -> QSize:
    """The size of the worker's batch preview grid (see worker.images.tile_batch)."""
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    return QSize(cols * width, rows * height)


class MainWindow(QMainWindow):
    """See module docstring. `paths` decides every folder the window touches."""

    def __init__(
        self,
        paths: AppPaths | None = None,
        *,
        torch_threads: int | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.paths = paths or AppPaths.from_environment()
        self.settings_store = SettingsStore(self.paths.settings_file)
        self.settings: Settings = self.settings_store.load()
        self._jobs: dict[int, _JobView] = {}
        self._running_job: int | None = None
        self._models: list[ModelEntry] = []
        self._loaded: ModelInfo | None = None
        self._loading: Path | None = None
        self._shown_item: GalleryItem | None = None
        self._closing = False
        self._engine_text = ""
        self._model_error = ""
        self._stopping: int | None = None  # the job whose cancel was asked for
        self._old_stores: list[GalleryStore] = []

        self.setWindowTitle("SD Desktop")
        self.setWindowIcon(app_icon())
        self.setObjectName("mainWindow")
        self.banner = MessageBanner(self)
        self.status = StatusArea(self.statusBar())

        self.gallery_store = self._open_gallery()
        self.thumbnails = ThumbnailCache(self.paths.thumbnails_dir)
        self.library = ModelLibrary(
            self.paths.models_dir,
            folders=self.settings.model_folders,
            hash_cache_file=self.paths.model_hashes_file,
            hf_cache=self.paths.hf_cache,
            use_hf_cache=self.settings.use_hf_cache,
            on_folders_changed=self._on_library_folders,
        )
        self.worker = Worker(
            self.gallery_store,
            self,
            device=self.settings.device,
            torch_threads=torch_threads,
            model_hash=self.library.hashes.compute,
        )
        self.scanner = BackgroundRunner(self)

        self._build_widgets()
        self._build_actions()
        self._build_menus()
        self._connect()
        self._restore()

        self.worker.start()
        self.gallery.sync_in_background()
        self.rescan_models()
        if self.settings_store.load_problem:
            self.banner.show_message(self.settings_store.load_problem, BannerKind.WARNING)
        last = self.settings.last_model
        if last and Path(last).exists():
            self.load_model(Path(last))
        elif last:
            self.status.idle(f"The last model ({Path(last).name}) is gone; choose another one.")
        else:
            self.status.idle("Choose a model to start (or File > Open Model…).")

    # ------------------------------------------------------------------ building

    def _open_gallery(self) -> GalleryStore:
        folder = Path(
            self.settings.output_folder or self.paths.gallery_dir or default_gallery_folder()
        )
        # The index is brought up to date (or rebuilt) by the gallery widget on a worker
        # thread: reading every PNG header here would freeze the window at start.
        try:
            return GalleryStore(folder, scan_later=True)
        except GalleryError as exc:
            fallback = self.paths.data_dir / "gallery"
            self.banner.show_message(f"{exc} Saving to {fallback} instead.", BannerKind.WARNING)
            return GalleryStore(fallback, scan_later=True)

    def _build_widgets(self) -> None:
        self.panel = GenerationPanel(self)
        self.canvas = CanvasWidget(self)
        self.gallery = GalleryWidget(self.gallery_store, self, thumbnails=self.thumbnails)
        self.strip = self.gallery.create_strip(self)
        self.strip.setToolTip("Recent images: double-click to view, right-click for more")

        canvas_page = QWidget(self)
        canvas_layout = QVBoxLayout(canvas_page)
        canvas_layout.setContentsMargins(0, 0, 0, 0)
        canvas_layout.setSpacing(0)
        self.mask_bar = QToolBar("Mask", canvas_page)
        self.mask_bar.setObjectName("canvasMaskBar")
        self.mask_bar.setIconSize(QSize(18, 18))
        canvas_layout.addWidget(self.mask_bar)
        canvas_layout.addWidget(self.canvas, 1)
        self.canvas_page = canvas_page
        self.welcome = WelcomePanel(self.library, self)
        self.canvas_stack = QStackedWidget(self)
        self.canvas_stack.addWidget(canvas_page)
        self.canvas_stack.addWidget(self.welcome)

        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.canvas_stack, "Canvas")
        self.tabs.addTab(self.gallery, "Gallery")
        self.tabs.setTabToolTip(CANVAS_TAB, "The picture being made (Ctrl+Shift+G toggles)")
        self.tabs.setTabToolTip(GALLERY_TAB, "Every image you made: search, reuse, delete")
        # Zoom controls share the tab row, so the canvas keeps the full height.
        # QTabWidget shows its corner widget itself, so the bar sits in a holder and is
        # hidden inside it.
        corner = QWidget(self.tabs)
        corner_layout = QHBoxLayout(corner)
        corner_layout.setContentsMargins(0, 0, 4, 0)
        self.view_bar = QToolBar("View", corner)
        self.view_bar.setObjectName("canvasViewBar")
        self.view_bar.setIconSize(QSize(18, 18))
        corner_layout.addWidget(self.view_bar)
        self.tabs.setCornerWidget(corner, Qt.Corner.TopRightCorner)

        right = QWidget(self)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.setSpacing(0)
        right_layout.addWidget(self.tabs, 1)
        right_layout.addWidget(self.strip)

        self.main_split = QSplitter(Qt.Orientation.Horizontal, self)
        self.main_split.setObjectName("mainSplit")
        self.main_split.addWidget(self.panel)
        self.main_split.addWidget(right)
        self.main_split.setStretchFactor(0, 0)
        self.main_split.setStretchFactor(1, 1)
        self.main_split.setCollapsible(0, False)
        self.main_split.setCollapsible(1, False)
        self.main_split.setSizes([380, 1000])

        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        self.drop_offer = ParamsOfferBar(central)
        layout.addWidget(self.drop_offer)
        layout.addWidget(self.main_split, 1)
        self.setCentralWidget(central)
        self._accept_image_drops()

    def _accept_image_drops(self) -> None:
        """An image file dropped anywhere on the window is handled here; text boxes would
        otherwise paste its path, and most widgets would refuse it."""
        self.setAcceptDrops(True)
        self._drop_filter = ImageDropFilter(self)
        self._drop_filter.file_dropped.connect(self._on_file_dropped)
        watched: list[QWidget] = [
            self,
            self.panel.prompt_edit.viewport(),
            self.panel.negative_edit.viewport(),
            *self.findChildren(QLineEdit),
        ]
        for widget in watched:
            widget.installEventFilter(self._drop_filter)
        self.canvas.set_file_drop_handler(self._offer_dropped_parameters)

    def _action(
        self,
        text: str,
        slot: object,
        keys: tuple[str | QKeySequence.StandardKey, ...] = (),
        tip: str = "",
    ) -> QAction:
        action = QAction(text, self)
        if keys:
            action.setShortcuts([QKeySequence(k) for k in keys])
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(lambda _checked=False: slot())  # type: ignore[operator]
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        ca = self.canvas.canvas_actions
        self.act_open_image = self._action(
            "&Open Image…",
            self.canvas.open_image_dialog,
            (QKeySequence.StandardKey.Open,),
            "Open a picture for Image to Image or Inpaint",
        )
        self.act_open_model = self._action(
            "Open &Model…",
            self.open_model_dialog,
            ("Ctrl+Shift+O",),
            "Load a .safetensors or .ckpt model file",
        )
        self.act_manage_models = self._action(
            "Manage &Models…",
            self.show_model_manager,
            ("Ctrl+M",),
            "Every model found, where it lives, downloads and model folders",
        )
        self.act_download_model = self._action(
            "&Download a Model…",
            self.show_download_dialog,
            (),
            "Download Stable Diffusion 1.5 or its inpainting model from the Hugging Face Hub",
        )
        self.act_add_folder = self._action(
            "Add Models &Folder…",
            self.add_models_folder_dialog,
            (),
            "Scan a folder for models (A1111's models/Stable-diffusion works)",
        )
        self.act_save_as = self._action(
            "&Save Image As…",
            self.save_image_as,
            (QKeySequence.StandardKey.Save,),
            "Save the picture on the canvas to a file of your choice",
        )
        self.act_quit = self._action("&Quit", self.close, (QKeySequence.StandardKey.Quit,))
        self.act_generate = self._action(
            "&Generate", self.generate, ("Ctrl+Return", "Ctrl+Enter"), "Make the picture"
        )
        self.act_cancel = self._action(
            "&Cancel", self.cancel, ("Esc",), "Stop the running job; queued jobs continue"
        )
        self.act_clear_queue = self._action(
            "Clear &Queue", self.clear_queue, (), "Drop the jobs that have not started yet"
        )
        self.act_use_result = self._action(
            "Use Result as &Source",
            self.use_result_as_source,
            ("Ctrl+Shift+R",),
            "Continue from the generated picture (Image to Image, Inpaint)",
        )
        self.act_preferences = self._action(
            "&Preferences…", self.show_preferences, (QKeySequence.StandardKey.Preferences, "Ctrl+,")
        )
        self.act_gallery = self._action(
            "&Gallery", self.toggle_gallery, ("Ctrl+Shift+G",), "Switch between canvas and gallery"
        )
        self.act_gallery.setCheckable(True)
        self.act_strip = QAction("Recent Images Strip", self)
        self.act_strip.setCheckable(True)
        self.act_strip.setChecked(True)
        self.act_strip.toggled.connect(self.strip.setVisible)
        self.act_shortcuts = self._action(
            "&Keyboard Shortcuts", self.show_shortcuts, ("F1",), "Every key the app knows"
        )
        self.act_about = self._action("&About SD Desktop", self.show_about)

        self.preview_group = QActionGroup(self)
        self.preview_actions: dict[PreviewMode, QAction] = {}
        for mode, label in PREVIEW_LABELS.items():
            action = QAction(label, self.preview_group)
            action.setCheckable(True)
            action.triggered.connect(lambda _c=False, m=mode: self.set_preview_mode(m))
            self.preview_actions[mode] = action

        ca.paste_image.setStatusTip(ca.paste_image.toolTip())
        for action in (
            ca.undo,
            ca.redo,
            ca.clear_mask,
            ca.invert_mask,
            ca.load_mask,
            ca.save_mask,
        ):
            # Greyed out outside Inpaint mode; the status bar says why when hovered.
            action.setStatusTip(f"{action.toolTip()} (Inpaint mode, with a picture)")
        self.mask_bar.addActions([ca.brush, ca.eraser])
        self.mask_bar.addAction(ca.brush_size)
        self.mask_bar.addAction(ca.brush_hardness)
        self.mask_bar.addSeparator()
        self.mask_bar.addActions([ca.undo, ca.redo, ca.clear_mask, ca.invert_mask])
        self.view_bar.addActions([ca.zoom_out, ca.zoom_in, ca.zoom_fit, ca.zoom_actual])

    def _build_menus(self) -> None:
        ca = self.canvas.canvas_actions
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.act_open_image, ca.paste_image])
        file_menu.addSeparator()
        file_menu.addActions(
            [
                self.act_open_model,
                self.act_add_folder,
                self.act_manage_models,
                self.act_download_model,
            ]
        )
        file_menu.addSeparator()
        file_menu.addAction(self.act_save_as)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)

        edit_menu = bar.addMenu("&Edit")
        edit_menu.addActions([ca.undo, ca.redo])
        edit_menu.addSeparator()
        edit_menu.addActions([ca.paste_image, self.act_use_result])
        edit_menu.addSeparator()
        edit_menu.addActions([ca.clear_mask, ca.invert_mask, ca.load_mask, ca.save_mask])
        edit_menu.addSeparator()
        edit_menu.addAction(self.act_preferences)

        view_menu = bar.addMenu("&View")
        view_menu.addActions([self.act_gallery, self.act_strip])
        view_menu.addSeparator()
        view_menu.addActions([ca.zoom_fit, ca.zoom_actual, ca.zoom_in, ca.zoom_out])
        view_menu.addSeparator()
        preview_menu = QMenu("Live &Preview", view_menu)
        preview_menu.addActions(list(self.preview_actions.values()))
        view_menu.addMenu(preview_menu)

        gen_menu = bar.addMenu("&Generate")
        gen_menu.addActions([self.act_generate, self.act_cancel, self.act_clear_queue])

        help_menu = bar.addMenu("&Help")
        help_menu.addActions([self.act_shortcuts, self.act_about])
        for menu in (file_menu, edit_menu, view_menu, gen_menu, help_menu, preview_menu):
            menu.setToolTipsVisible(True)

    def _connect(self) -> None:
        w = self.worker
        w.ready.connect(self._on_ready)
        w.model_loading.connect(self._on_model_loading)
        w.model_loaded.connect(self._on_model_loaded)
        w.model_failed.connect(self._on_model_failed)
        w.job_started.connect(self._on_job_started)
        w.step_progress.connect(self._on_step)
        w.image_ready.connect(self._on_image_ready)
        w.image_saved.connect(self._on_image_saved)
        w.job_finished.connect(self._on_job_finished)
        w.job_failed.connect(self._on_job_failed)
        w.job_cancelled.connect(self._on_job_cancelled)
        w.queue_changed.connect(self._on_queue_changed)

        p = self.panel
        p.generate_requested.connect(self.generate)
        p.cancel_requested.connect(self.cancel)
        p.model_selected.connect(self.load_model)
        p.open_model_requested.connect(self.open_model_dialog)
        p.add_folder_requested.connect(self.add_models_folder_dialog)
        p.rescan_requested.connect(self.rescan_models)
        p.manage_models_requested.connect(self.show_model_manager)
        p.mode_changed.connect(self._on_mode_changed)
        p.match_image_size_requested.connect(self._match_image_size)

        self.canvas.error.connect(lambda text: self.banner.show_message(text, BannerKind.ERROR))
        self.canvas.notice.connect(self.status.set_message)
        self.canvas.image_changed.connect(self._on_canvas_image_changed)
        self.drop_offer.use_parameters.connect(self._use_dropped_parameters)
        self.drop_offer.open_as_source.connect(self._open_as_source)

        self.welcome.modelChosen.connect(self._use_chosen_model)
        self.welcome.libraryChanged.connect(self.rescan_models)

        g = self.gallery
        g.reuse_parameters.connect(self._reuse_parameters)
        g.reuse_seed.connect(self._reuse_seed)
        g.send_to_canvas.connect(self._send_to_canvas)
        g.item_activated.connect(self._show_item)
        g.notice.connect(self.status.set_message)
        self.tabs.currentChanged.connect(self._on_tab_changed)

    def _restore(self) -> None:
        s = self.settings
        self.panel.set_values(s.last_params)
        self.preview_actions[PreviewMode.parse(s.preview_mode)].setChecked(True)
        if s.window_geometry:
            self.restoreGeometry(QByteArray.fromBase64(s.window_geometry.encode("ascii")))
        else:
            self._first_size()
        if s.window_state:
            self.restoreState(QByteArray.fromBase64(s.window_state.encode("ascii")))
        if s.splitter_state:
            self.main_split.restoreState(QByteArray.fromBase64(s.splitter_state.encode("ascii")))
        self._on_mode_changed(self.panel.mode())
        self._update_actions()

    def _first_size(self) -> None:
        """A generous window on a large screen; on a laptop (1366x768 is common) one that
        fits the screen instead of running past its edges, centred."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            self.resize(DEFAULT_WINDOW_SIZE)
            return
        room = screen.availableGeometry()
        width = min(DEFAULT_WINDOW_SIZE.width(), int(room.width() * 0.94))
        height = min(DEFAULT_WINDOW_SIZE.height(), int(room.height() * 0.94))
        self.resize(max(width, self.minimumSizeHint().width()), height)
        frame = self.frameGeometry()
        frame.moveCenter(room.center())
        self.move(frame.topLeft())

    # ------------------------------------------------------------------ models

    def rescan_models(self) -> None:
        """List the library's models plus files opened by hand, off the UI thread."""
        library = self.library
        files = [Path(p) for p in self.settings.known_models]
        if self.settings.last_model:
            files.append(Path(self.settings.last_model))

        def scan() -> list[ModelEntry]:
            entries = library.scan()
            seen = {_same_file(e.path) for e in entries}
            for path in files:
                if path.exists() and _same_file(path) not in seen:
                    seen.add(_same_file(path))
                    entries.append(library.describe(path))
            return sorted(entries, key=lambda e: e.name.lower())

        self.scanner.run(scan, self._on_models_scanned, self._on_scan_failed)

    def _on_models_scanned(self, entries: list[ModelEntry]) -> None:
        self._models = entries
        current = self._loading or (self._loaded.path if self._loaded else None)
        self.panel.set_models(entries, current)
        self._update_welcome()

    def _on_scan_failed(self, error: Exception) -> None:
        log.warning("Model scan failed: %s", error)
        self.status.set_message(f"Could not look for models: {error}")

    def _on_library_folders(self, folders: list[Path]) -> None:
        """The library's folder list changed (manager, welcome panel): remember it."""
        self.settings.model_folders = [str(f) for f in folders]

    def _update_welcome(self) -> None:
        """The welcome panel replaces the canvas while there is no model to use at all."""
        no_model = self._loaded is None and self._loading is None
        show = no_model and not any(e.usable for e in self._models)
        self.canvas_stack.setCurrentWidget(self.welcome if show else self.canvas_page)

    def show_model_manager(self) -> None:
        dialog = ModelManagerDialog(self.library, self)
        dialog.modelChosen.connect(self._use_chosen_model)
        dialog.libraryChanged.connect(self.rescan_models)
        dialog.exec()
        self.settings.use_hf_cache = self.library.use_hf_cache

    def show_download_dialog(self) -> None:
        from sd_desktop.ui.download_dialog import DownloadDialog

        dialog = DownloadDialog(
            self.library.models_folder, hash_cache=self.library.hashes, parent=self
        )
        dialog.modelDownloaded.connect(lambda _path: self.rescan_models())
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.installed_path is not None:
            self._use_chosen_model(dialog.installed_path)

    def _use_chosen_model(self, path: Path) -> None:
        """A model picked in the welcome panel or the manager (usable, headers checked)."""
        path = Path(path)
        if not any(_same_file(e.path) == _same_file(path) for e in self._models):
            self.settings.remember_model(path)
        self.load_model(path)
        self.rescan_models()

    def load_model(self, path: Path) -> None:
        path = Path(path)
        self._loading = path
        self.status.model_loading(0.0, f"queued: {path.name}")
        self.worker.load_model(path, device=self.settings.device)
        self._update_welcome()

    def open_model_dialog(self) -> None:
        start = str(self.paths.models_dir if self.paths.models_dir.exists() else Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open Model", start, MODEL_FILE_FILTER)
        if path:
            self.settings.remember_model(path)
            self.load_model(Path(path))
            self.rescan_models()

    def add_models_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add Models Folder", str(Path.home()))
        if folder:
            self.add_models_folder(Path(folder))

    def add_models_folder(self, folder: Path) -> None:
        if (folder / "model_index.json").is_file():  # a diffusers model, not a folder of them
            self.settings.remember_model(folder)
            self.load_model(folder)
        elif self.library.add_folder(folder):
            self.status.set_message(f"Looking for models in {folder}…")
        self.rescan_models()

    @Slot(str)
    def _on_ready(self, text: str) -> None:
        self._engine_text = text
        log.info("Engine ready: %s", text)

    @Slot(float, str)
    def _on_model_loading(self, fraction: float, message: str) -> None:
        self.status.model_loading(fraction, message)

    @Slot(object)
    def _on_model_loaded(self, info: ModelInfo) -> None:
        chosen = self._loading or info.path  # the path the user picked (maybe a symlink)
        self._loaded = info
        self._loading = None
        self.settings.last_model = str(chosen)
        detail = (
            f"{info.path}\n{info.family} · {info.device} · {info.dtype} · "
            f"loaded in {info.load_seconds:.1f} s"
        )
        self.status.model_loaded(info.name, detail)
        self.setWindowTitle(f"{info.name} — SD Desktop")
        if not self.panel.select_model(info.path):
            self.settings.remember_model(info.path)
            self.rescan_models()
        if self._model_error and self.banner.text() == self._model_error:
            self.banner.dismiss()
        self._model_error = ""
        self._check_mode_fits_model()
        self._update_welcome()
        self.save_settings()  # a crash later must not forget which model worked

    @Slot(str)
    def _on_model_failed(self, message: str) -> None:
        failed = self._loading
        self._loading = None
        name = failed.name if failed else "the model"
        self._model_error = f"Could not load {name}: {message}"
        self.banner.show_message(self._model_error, BannerKind.ERROR)
        self.status.model_failed(self._loaded.name if self._loaded else None)
        self.panel.select_model(self._loaded.path if self._loaded else None)
        self._update_welcome()

    # ------------------------------------------------------------------ generating

    def why_cannot_generate(self) -> str | None:
        """The reason Generate would fail right now, in words, or None."""
        if self._loaded is None and not self.worker.is_loading_model():
            return NO_MODEL_MESSAGE
        mode = self.panel.mode()
        if mode is not Mode.TXT2IMG and not self.canvas.has_image():
            what = MODE_LABELS[mode]
            return (
                f"{what} needs a picture on the canvas: open one (Ctrl+O), paste one "
                "(Ctrl+V) or send one from the gallery."
            )
        if mode is Mode.INPAINT and not self.canvas.has_mask():
            return "Paint over the part to repaint first: in Inpaint mode the mouse is a brush."
        return None

    def generate(self) -> list[int]:
        """Queue a job from the panel and the canvas; returns the new job ids."""
        problem = self.why_cannot_generate()
        if problem is not None:
            self.banner.show_message(problem, BannerKind.WARNING)
            return []
        mode = self.panel.mode()
        init = self.canvas.source_image() if mode is not Mode.TXT2IMG else None
        mask = self.canvas.mask_image() if mode is Mode.INPAINT else None
        request = self.panel.build_request(init, mask)
        preview = PreviewOptions(
            PreviewMode.parse(self.settings.preview_mode), max(1, self.settings.preview_every)
        )
        job = Job(request, preview, batch_count=self.panel.batch_count_value())
        ids = self.worker.submit(job)
        count = len(ids)
        for i, job_id in enumerate(ids):
            label = f"Image {i + 1} of {count}" if count > 1 else "Generating"
            self._jobs[job_id] = _JobView(label, request.width, request.height, request.batch_size)
        if self.banner.kind() is BannerKind.WARNING:
            self.banner.dismiss()
        if self.tabs.currentIndex() != CANVAS_TAB:
            self.tabs.setCurrentIndex(CANVAS_TAB)
        self._update_running()
        return ids

    def cancel(self) -> None:
        if self.worker.cancel():
            self._stopping = self._running_job
            self.status.set_message("Stopping before the next step…")
            self._update_running()

    def clear_queue(self) -> None:
        dropped = self.worker.clear_queue()
        if dropped:
            self.status.set_message(f"Dropped {len(dropped)} queued job(s).")

    @Slot(int)
    def _on_job_started(self, job_id: int) -> None:
        self._running_job = job_id
        view = self._jobs.get(job_id)
        if view is not None:
            view.started = time.perf_counter()
        self.status.job_started(view.label if view else "Generating")
        self._update_running()

    @Slot(int, int, int, float, object)
    def _on_step(self, job_id: int, step: int, total: int, per_it: float, image: object) -> None:
        view = self._jobs.get(job_id)
        self.status.step(view.label if view else "Generating", step, total, per_it)
        if isinstance(image, QImage) and view is not None:
            self.canvas.show_preview(image, _grid_size(view.width, view.height, view.batch_size))
            if self.view_bar.isHidden() and self.tabs.currentIndex() == CANVAS_TAB:
                self.view_bar.show()

    @Slot(int, int, object)
    def _on_image_ready(self, job_id: int, index: int, image: QImage) -> None:
        if index == 0:
            self.canvas.show_result(image)
            self._shown_item = None
        self._update_actions()

    @Slot(int, object)
    def _on_image_saved(self, job_id: int, item: GalleryItem) -> None:
        self.gallery.add_item(item)
        self.panel.set_last_seed(item.seed)
        if self._shown_item is None:
            self._shown_item = item

    @Slot(int)
    def _on_job_finished(self, job_id: int) -> None:
        view = self._jobs.pop(job_id, None)
        took = time.perf_counter() - view.started if view and view.started else 0.0
        self._job_over(f"Done in {took:.1f} s." if took else "Done.")
        self.save_settings()  # the parameters that made a kept image survive a crash

    @Slot(int, str)
    def _on_job_failed(self, job_id: int, message: str) -> None:
        self._jobs.pop(job_id, None)
        self.banner.show_message(message, BannerKind.ERROR)
        self.canvas.clear_preview()
        self._job_over("The last job failed; see the message above.")

    @Slot(int)
    def _on_job_cancelled(self, job_id: int) -> None:
        self._jobs.pop(job_id, None)
        if job_id == self._running_job:
            self.canvas.clear_preview()
            self._job_over("Cancelled.")
        else:
            self._update_running()

    def _job_over(self, text: str) -> None:
        self._running_job = None
        self._update_view_bar()
        if not self.worker.is_busy():
            self.status.idle(text)
        self._update_running()

    @Slot(int)
    def _on_queue_changed(self, _waiting: int) -> None:
        # The signal's number can be stale (emitted from the engine thread before a submit
        # made here); the worker's own count is always current.
        self.status.set_queue(self.worker.queue_length())
        self._update_running()

    def _update_running(self) -> None:
        running = self._running_job is not None
        waiting = self.worker.queue_length()
        stopping = running and self._stopping == self._running_job
        self.panel.set_running(running, waiting, stopping=stopping)
        self.act_cancel.setEnabled(running and not stopping)
        self.act_cancel.setStatusTip(
            "Stop the running job; queued jobs continue" if running else "Nothing is running"
        )
        self.act_clear_queue.setEnabled(waiting > 0)
        self.act_clear_queue.setStatusTip(
            "Drop the jobs that have not started yet" if waiting else "No jobs are waiting"
        )

    # ------------------------------------------------------------------ canvas

    def _on_mode_changed(self, mode: Mode) -> None:
        inpaint = mode is Mode.INPAINT
        if mode is not Mode.TXT2IMG and not self.canvas.has_image() and self.canvas.has_result():
            self.canvas.use_result_as_source()
        self.canvas.set_mask_editing(inpaint)
        self.canvas.set_empty_text(*EMPTY_CANVAS_TEXT[mode])
        self.mask_bar.setVisible(inpaint)
        self._check_mode_fits_model()

    def _check_mode_fits_model(self) -> None:
        """An inpainting model in txt2img works (it paints everything) but deserves a note."""
        info = self._loaded
        if info is None:
            return
        if info.is_inpainting and self.panel.mode() is not Mode.INPAINT:
            self.status.set_message(
                f"{info.name} is an inpainting model: it works best in Inpaint mode."
            )

    def _on_canvas_image_changed(self) -> None:
        image = self.canvas.source_qimage()
        size = (image.width(), image.height()) if image is not None else None
        self.panel.set_source_size(size)
        if size is not None and self.panel.mode() is Mode.TXT2IMG:
            # A picture brought to the canvas is meant to be worked on; in Text to Image
            # it would be ignored without a word.
            self.panel.set_mode(Mode.IMG2IMG)
            self.status.set_message("Image to Image: the picture on the canvas is the start.")
        if size is not None and self.panel.mode() is not Mode.TXT2IMG:
            self._match_image_size()
        self._update_actions()

    def _match_image_size(self) -> None:
        if self.panel.match_source_size():
            v = self.panel.values()
            self.status.set_message(f"Size set to {v['width']} × {v['height']} to match the image.")

    def use_result_as_source(self) -> None:
        if not self.canvas.use_result_as_source():
            self.status.set_message("There is no generated picture on the canvas yet.")

    def save_image_as(self) -> None:
        image = self.canvas.result_qimage() or self.canvas.source_qimage()
        if image is None:
            self.banner.show_message("There is no picture on the canvas to save.", BannerKind.INFO)
            return
        item = self._shown_item if self.canvas.has_result() else None
        suggested = item.path.name if item is not None else "image.png"
        path, _ = QFileDialog.getSaveFileName(
            self, "Save Image As", str(Path.home() / suggested), "PNG image (*.png)"
        )
        if not path:
            return
        target = Path(path) if path.lower().endswith(".png") else Path(path + ".png")
        try:
            save_png_atomic(image, target, item.params if item is not None else None)
        except OSError as exc:
            self.banner.show_message(f"Could not save {target.name}: {exc.strerror or exc}.")
            return
        self.status.set_message(f"Saved {target}.")

    def _update_actions(self) -> None:
        self._update_view_bar()
        has_picture = self.canvas.has_result() or self.canvas.has_image()
        self.act_save_as.setEnabled(has_picture)
        self.act_save_as.setStatusTip(
            "Save the picture on the canvas to a file of your choice"
            if has_picture
            else "Nothing to save yet: generate or open a picture"
        )
        has_result = self.canvas.has_result()
        self.act_use_result.setEnabled(has_result)
        self.act_use_result.setStatusTip(
            "Continue from the generated picture (Image to Image, Inpaint)"
            if has_result
            else "Generate a picture first"
        )

    # ------------------------------------------------------------------ gallery

    def _reuse_parameters(
        self, params: GenerationParams, source: str = "the gallery image"
    ) -> None:
        self.panel.apply_params(params)
        notes = [f"Parameters copied from {source}."]
        if params.sampler_id is None:
            notes.append(f"Its sampler ({params.sampler}) is not available here; kept yours.")
        if params.model and self._loaded is not None and params.model != self._loaded.name:
            notes.append(f"It was made with {params.model}.")
        self.status.set_message(" ".join(notes))

    # ------------------------------------------------------------------ dropped files

    def _offer_dropped_parameters(self, path: Path) -> bool:
        """A picture that records its parameters gets a choice; returns False for any
        other file, which then simply becomes the canvas source."""
        dropped = inspect_dropped(Path(path))
        if not dropped.has_offer:
            return False
        self.drop_offer.offer(dropped)
        return True

    def _on_file_dropped(self, path: Path) -> None:
        """An image file dropped outside the canvas (prompt boxes, gallery, anywhere)."""
        if not self._offer_dropped_parameters(path):
            self._open_as_source(path)

    def _use_dropped_parameters(self, params: GenerationParams, path: Path) -> None:
        self._reuse_parameters(params, Path(path).name)

    def _open_as_source(self, path: Path) -> None:
        if self.canvas.load_image_file(path):
            self.tabs.setCurrentIndex(CANVAS_TAB)

    def _reuse_seed(self, seed: int) -> None:
        self.panel.set_seed(seed)
        self.status.set_message(f"Seed set to {seed}.")

    def _send_to_canvas(self, path: Path, mode: str) -> None:
        if self.canvas.load_image_file(path):
            self.panel.set_mode(Mode.INPAINT if mode == "inpaint" else Mode.IMG2IMG)
            self.tabs.setCurrentIndex(CANVAS_TAB)
            self._match_image_size()

    def _show_item(self, item: GalleryItem) -> None:
        """Double-click in the strip or grid: show the image on the canvas as a result."""
        try:
            image = read_image_file(item.path)
        except ImageLoadError as exc:
            self.banner.show_message(str(exc), BannerKind.ERROR)
            return
        self.canvas.show_result(image)
        self._shown_item = item
        self.tabs.setCurrentIndex(CANVAS_TAB)
        self._update_actions()

    def toggle_gallery(self) -> None:
        self.tabs.setCurrentIndex(
            GALLERY_TAB if self.tabs.currentIndex() == CANVAS_TAB else CANVAS_TAB
        )

    def _on_tab_changed(self, index: int) -> None:
        self.act_gallery.setChecked(index == GALLERY_TAB)
        # The full gallery makes the strip redundant, and the zoom buttons act on the canvas.
        self.strip.setVisible(index == CANVAS_TAB and self.act_strip.isChecked())
        self._update_view_bar()

    def _update_view_bar(self) -> None:
        """Zoom buttons only where there is a picture to zoom (never a row of greyed icons)."""
        picture = self.canvas.has_image() or self.canvas.has_result()
        self.view_bar.setVisible(self.tabs.currentIndex() == CANVAS_TAB and picture)

    # ------------------------------------------------------------------ preferences

    def set_preview_mode(self, mode: PreviewMode) -> None:
        self.settings.preview_mode = mode.value
        self.preview_actions[mode].setChecked(True)

    def show_preferences(self) -> None:
        dialog = PreferencesDialog(
            Preferences.of(self.settings), default_gallery_folder(), parent=self
        )
        if dialog.exec() != PreferencesDialog.DialogCode.Accepted:
            return
        self.apply_preferences(dialog.preferences())

    def apply_preferences(self, prefs: Preferences) -> None:
        old = self.settings
        self.settings = prefs.apply_to(old)
        self.set_preview_mode(PreviewMode.parse(self.settings.preview_mode))
        if self.settings.output_folder != old.output_folder:
            self._switch_gallery()
        if self.settings.device != old.device and self._loaded is not None:
            self.status.set_message("The new device is used the next time a model loads.")
        self.save_settings()

    def _switch_gallery(self) -> None:
        previous = self.gallery_store
        self.gallery_store = self._open_gallery()
        self.worker.set_gallery(self.gallery_store)
        self.gallery.set_store(self.gallery_store)
        self.gallery.sync_in_background()
        # The worker may still be saving into the old store; it closes with the window.
        self._old_stores.append(previous)

    def show_about(self) -> None:
        AboutDialog(self._engine_text, self).exec()

    def show_shortcuts(self) -> None:
        actions = [*self.actions(), *self.canvas.canvas_actions.all()]
        ShortcutsDialog(actions, self).exec()

    # ------------------------------------------------------------------ closing

    def save_settings(self) -> None:
        s = self.settings
        s.last_params = self.panel.values()
        s.window_geometry = bytes(self.saveGeometry().toBase64()).decode("ascii")
        s.window_state = bytes(self.saveState().toBase64()).decode("ascii")
        s.splitter_state = bytes(self.main_split.saveState().toBase64()).decode("ascii")
        try:
            self.settings_store.save(s)
        except OSError as exc:
            log.warning("Could not save settings to %s: %s", self.settings_store.path, exc)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self.worker.is_busy() and not self._closing:
            answer = QMessageBox.question(
                self,
                "Quit SD Desktop?",
                "A picture is still being made. Quit anyway? The running job is lost; "
                "finished images are already saved.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Save settings, stop the worker and close files. Safe to call twice."""
        if self._closing:
            return
        self._closing = True
        self.save_settings()
        self.worker.shutdown()
        self.scanner.wait()
        self.gallery.shutdown()
        for store in [*self._old_stores, self.gallery_store]:
            store.close()


def save_png_atomic(image: QImage, target: Path, params: GenerationParams | None) -> None:
    """Write via a temp file in the same folder, so a failed save never leaves half a file;
    with `params` the PNG carries the infotext, as gallery images do."""
    from sd_desktop.ui.canvas_image_io import pil_from_qimage

    pil = pil_from_qimage(image)
    with atomic_output(target, suffix=".png") as handle:
        if params is not None:
            write_png(pil, handle, params)
        else:
            pil.save(handle, format="PNG")
