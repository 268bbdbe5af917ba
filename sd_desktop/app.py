"""Starting the desktop app: logging, the Qt application, the theme and the main window.

`sd-desktop` and `python -m sd_desktop` land in run_app() (after __main__ has handled
`generate`, `--self-test` and the desktop-entry installer). The optional argument is a
model file to load or an image to open.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

from sd_desktop import __version__

log = logging.getLogger("sd_desktop")

LOG_FILE_NAME = "sd-desktop.log"
MODEL_SUFFIXES = (".safetensors", ".ckpt")


def dark_palette() -> QPalette:
    """A neutral dark palette: images are judged against grey, not against white, and the
    canvas itself is dark, so the whole window matches it."""
    p = QPalette()
    window, base, text = QColor(37, 38, 41), QColor(28, 29, 31), QColor(222, 224, 228)
    button, accent = QColor(50, 51, 55), QColor(88, 156, 255)
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: QColor(44, 45, 49),
        QPalette.ColorRole.ToolTipBase: QColor(55, 56, 61),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: QColor(128, 131, 138),
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: button,
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor(255, 90, 90),
        QPalette.ColorRole.Link: accent,
        QPalette.ColorRole.Highlight: accent,
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Light: QColor(70, 71, 76),
        QPalette.ColorRole.Midlight: QColor(60, 61, 66),
        QPalette.ColorRole.Mid: QColor(45, 46, 50),
        QPalette.ColorRole.Dark: QColor(22, 22, 24),
        QPalette.ColorRole.Shadow: QColor(0, 0, 0),
    }
    for role, colour in roles.items():
        p.setColor(role, colour)
    muted = QColor(120, 122, 128)
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        p.setColor(QPalette.ColorGroup.Disabled, role, muted)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Button, QColor(42, 43, 46))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Highlight, QColor(70, 72, 78))
    return p


APP_STYLE_SHEET = """
QToolTip { border: 1px solid #4a4c52; padding: 4px; }
QPushButton:default { background: #3b73d9; color: white; border: 1px solid #2f5fb5;
                      border-radius: 4px; padding: 4px 12px; }
QPushButton:default:hover { background: #4682ea; }
QPushButton:default:pressed { background: #2f5fb5; }
QSplitter::handle { background: #2a2b2e; }
QStatusBar { border-top: 1px solid #1c1d1f; }
QStatusBar::item { border: none; }
"""


def apply_theme(app: QApplication) -> None:
    """Fusion + the dark palette: the same look on Linux, Windows and macOS."""
    fusion = QStyleFactory.create("Fusion")
    if fusion is not None:
        app.setStyle(fusion)
    app.setPalette(dark_palette())
    app.setStyleSheet(APP_STYLE_SHEET)


def setup_logging(folder: Path) -> Path | None:
    """Warnings to stderr; everything from INFO up to a rotating file (where tracebacks of
    failed jobs go instead of dialogs). Returns the log file, or None if unwritable."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / LOG_FILE_NAME
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=2_000_000, backupCount=2, encoding="utf-8"
        )
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return path


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sd-desktop", description="Stable Diffusion desktop app")
    parser.add_argument("file", nargs="?", type=Path, help="a model to load or an image to open")
    parser.add_argument("--version", action="version", version=f"sd-desktop {__version__}")
    return parser.parse_args(argv)


def run_app(argv: list[str]) -> int:
    """Open the main window; returns the process exit code."""
    from sd_desktop.ui.settings import AppPaths

    args = parse_args(argv)
    paths = AppPaths.from_environment()
    log_file = setup_logging(paths.data_dir / "logs")
    app = QApplication.instance() or QApplication(["sd-desktop"])
    app.setApplicationName("sd-desktop")
    app.setApplicationDisplayName("SD Desktop")
    app.setDesktopFileName("sd-desktop")  # Wayland docks match the window to sd-desktop.desktop
    app.setApplicationVersion(__version__)
    apply_theme(app)  # type: ignore[arg-type]

    from sd_desktop.ui.app_icons import app_icon
    from sd_desktop.ui.main_window import MainWindow

    app.setWindowIcon(app_icon())
    window = MainWindow(paths)
    _install_excepthook(window, log_file)
    if args.file is not None:
        _open_argument(window, args.file)
    window.show()
    code = app.exec()
    window.shutdown()
    return int(code)


def _open_argument(window: object, path: Path) -> None:
    from sd_desktop.ui.main_window import MainWindow

    assert isinstance(window, MainWindow)
    if path.suffix.lower() in MODEL_SUFFIXES or (path / "model_index.json").is_file():
        window.settings.remember_model(path)
        window.load_model(path)
        window.rescan_models()
    else:
        window.canvas.load_image_file(path)


def _install_excepthook(window: object, log_file: Path | None) -> None:
    """A bug in a slot must not become a traceback dialog or a silent crash: log it and
    say so in the banner."""
    from sd_desktop.ui.main_window import MainWindow

    assert isinstance(window, MainWindow)
    where = f" Details are in {log_file}." if log_file else ""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        log.error("Unexpected error:\n%s", "".join(traceback.format_exception(kind, exc, tb)))
        try:
            window.banner.show_message(f"Something went wrong ({kind.__name__}).{where}")
        except RuntimeError:  # the window is already gone
            pass

    sys.excepthook = hook
