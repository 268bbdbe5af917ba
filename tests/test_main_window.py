"""The main window as a user drives it: type, click Generate, watch previews, cancel,
inpaint with the real canvas brush, survive a broken model, keep settings, and never
let the event loop stall while the worker loads or generates."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from PIL.PngImagePlugin import PngInfo
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from factories import build_tiny_sd
from sd_desktop.engine.request import Mode
from sd_desktop.infotext import GenerationParams, read_png_params, write_png
from sd_desktop.ui.about import WIDGET_KEYS, AboutDialog, ShortcutsDialog, shortcut_rows
from sd_desktop.ui.gallery_view import GalleryToolbar
from sd_desktop.ui.main_window import MainWindow
from sd_desktop.ui.preferences import Preferences
from sd_desktop.ui.settings import AppPaths, Settings, SettingsStore
from sd_desktop.ui.status import BannerKind
from sd_desktop.worker import NO_MODEL_MESSAGE, PreviewMode

WAIT_MS = 60_000
LEFT = Qt.MouseButton.LeftButton
NOMOD = Qt.KeyboardModifier.NoModifier


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sd(tmp_path_factory).single_file


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return AppPaths.under(tmp_path / "app")


def open_window(qtbot, paths: AppPaths, resize: bool = True) -> MainWindow:  # type: ignore[no-untyped-def]
    window = MainWindow(paths, torch_threads=1)
    qtbot.addWidget(window)
    if resize:
        window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: window.worker.ready_text() is not None, timeout=WAIT_MS)
    return window


@pytest.fixture
def window(qtbot, paths: AppPaths) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    w = open_window(qtbot, paths)
    yield w
    w.shutdown()


def load(qtbot, window: MainWindow, path: Path) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.worker.model_loaded, timeout=WAIT_MS):
        window.load_model(path)


def set_quick(window: MainWindow, steps: int = 4, size: int = 64, seed: int = 4242) -> None:
    panel = window.panel
    panel.steps.setValue(steps)
    panel.set_size(size, size)
    panel.set_seed(seed)
    panel.sampler_combo.setCurrentIndex(panel.sampler_combo.findText("Euler"))


def click_generate(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    qtbot.mouseClick(window.panel.generate_button, LEFT)


class Steps:
    """step_progress as the UI thread receives it."""

    def __init__(self, window: MainWindow) -> None:
        self.seen: list[tuple[int, int, int, object]] = []
        window.worker.step_progress.connect(
            lambda job, step, total, _spi, image: self.seen.append((job, step, total, image))
        )

    def of(self, job_id: int) -> list[tuple[int, object]]:
        return [(step, image) for job, step, _total, image in self.seen if job == job_id]


def test_type_prompt_click_generate_previews_and_gallery(qtbot, window, tiny_path) -> None:  # type: ignore[no-untyped-def]
    load(qtbot, window, tiny_path)
    set_quick(window, steps=6, seed=4242)
    qtbot.keyClicks(window.panel.prompt_edit, "a red fox in snow")
    steps = Steps(window)
    started: list[int] = []
    window.worker.job_started.connect(started.append)
    with qtbot.waitSignal(window.worker.job_finished, timeout=WAIT_MS):
        click_generate(qtbot, window)
    [job_id] = started
    got = steps.of(job_id)
    assert [s for s, _ in got] == [1, 2, 3, 4, 5, 6]
    assert all(isinstance(image, QImage) and not image.isNull() for _, image in got)
    qtbot.waitUntil(lambda: window.gallery.model.rowCount() == 1, timeout=WAIT_MS)
    [item] = window.gallery_store.query()
    assert item.path.is_file() and item.path.is_relative_to(window.paths.gallery_dir)
    params = read_png_params(item.path)
    assert params is not None
    assert (params.prompt, params.seed, params.steps, params.sampler) == (
        "a red fox in snow",
        4242,
        6,
        "Euler",
    )
    assert (params.width, params.height) == (64, 64)
    assert window.canvas.has_result()
    assert window.strip.model().rowCount() == 1
    assert "Done" in window.status.message.text()
    assert window.panel.reuse_seed_button.isEnabled()
    assert not window.panel.cancel_button.isEnabled()
    assert window.banner.text() == ""

    # Ctrl+Enter in the prompt box generates too; the dice means a fresh random seed.
    window.panel.dice_button.click()
    assert window.panel.seed() == -1
    with qtbot.waitSignal(window.worker.image_saved, timeout=WAIT_MS) as saved:
        qtbot.keyClick(
            window.panel.prompt_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier
        )
    assert saved.args[1].seed != 4242
    assert window.panel.prompt_edit.toPlainText() == "a red fox in snow"  # no newline typed
    qtbot.waitUntil(lambda: not window.worker.is_busy(), timeout=WAIT_MS)
    assert window.gallery_store.count() == 2  # one key press, one job
    assert window.windowTitle() == "txt2img-small — SD Desktop"


def test_generate_while_running_queues_then_cancel_mid_job(qtbot, window, tiny_path) -> None:  # type: ignore[no-untyped-def]
    load(qtbot, window, tiny_path)
    set_quick(window, steps=10)
    window.panel.prompt_edit.setPlainText("a harbour at dusk")
    steps = Steps(window)
    gate = threading.Event()
    cancelled: list[int] = []
    finished: list[int] = []
    window.worker.job_cancelled.connect(cancelled.append)
    window.worker.job_finished.connect(finished.append)
    first: list[int] = []

    def on_step_ui(job_id: int, step: int, *_: object) -> None:
        if first and job_id == first[0] and step == 2:
            # A second click while running queues another job...
            assert window.panel.generate_button.text() == "Queue Another"
            click_generate(qtbot, window)
            assert window.worker.queue_length() == 1
            assert window.status.queue.text() == "1 queued"
            # ...and Cancel stops the running one.
            qtbot.mouseClick(window.panel.cancel_button, LEFT)
            gate.set()

    def hold_engine(job_id: int, step: int, *_: object) -> None:
        if first and job_id == first[0] and step == 2:
            assert gate.wait(WAIT_MS / 1000)

    window.worker.step_progress.connect(on_step_ui)
    window.worker.step_progress.connect(hold_engine, Qt.ConnectionType.DirectConnection)
    first.extend(window.generate())
    assert len(first) == 1
    qtbot.waitUntil(lambda: len(finished) == 1, timeout=WAIT_MS)
    assert cancelled == first
    assert [s for s, _ in steps.of(first[0])] == [1, 2]  # stopped before step 3's UNet call
    second = finished[0]
    assert second != first[0] and [s for s, _ in steps.of(second)] == list(range(1, 11))
    assert window.gallery_store.count() == 1
    assert window.worker.queue_length() == 0
    qtbot.waitUntil(lambda: not window.panel.cancel_button.isEnabled(), timeout=WAIT_MS)


def _paint(canvas, points: list[tuple[float, float]]) -> None:  # type: ignore[no-untyped-def]
    def at(x: float, y: float) -> QPoint:
        return canvas.image_to_widget(QPointF(x, y)).toPoint()

    QTest.mousePress(canvas, LEFT, NOMOD, at(*points[0]))
    for p in points[1:]:
        QTest.mouseMove(canvas, at(*p))
    QTest.mouseRelease(canvas, LEFT, NOMOD, at(*points[-1]))


def test_inpaint_with_canvas_mask_keeps_unmasked_pixels(qtbot, window, tiny_path) -> None:  # type: ignore[no-untyped-def]
    load(qtbot, window, tiny_path)
    set_quick(window, steps=4)
    window.panel.prompt_edit.setPlainText("a window in a brick wall")
    rng = np.random.default_rng(3)
    source = Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    window.panel.mode_tabs.setCurrentIndex(2)  # the user clicks "Inpaint"
    assert window.panel.mode() is Mode.INPAINT and window.canvas.is_mask_editing()
    assert window.mask_bar.isVisible()
    # App defaults follow A1111: mask blur 4, pixels outside the mask kept.
    assert window.panel.mask_blur.value() == 4 and window.panel.keep_unmasked.isChecked()
    assert window.canvas.set_image(source)
    assert (window.panel.width_spin.value(), window.panel.height_spin.value()) == (96, 96)

    # Generate without a mask: a clear message, nothing queued.
    assert window.generate() == []
    assert "Paint over" in window.banner.text()

    window.canvas.set_brush_size(20)
    window.canvas.set_brush_hardness(100)
    _paint(window.canvas, [(30, 48), (50, 48), (66, 48)])
    assert window.canvas.has_mask()
    mask = np.asarray(window.canvas.mask_image())
    with qtbot.waitSignal(window.worker.image_saved, timeout=WAIT_MS) as saved:
        click_generate(qtbot, window)
    item = saved.args[1]
    assert item.params.mode == "inpaint" and item.params.mask_blur == 4
    result = np.asarray(Image.open(item.path).convert("RGB")).astype(int)
    src = np.asarray(source).astype(int)
    # Outside the mask grown by the blur's reach (2.5 sigma + 1 px), the source survives.
    reach = Image.fromarray(mask).filter(ImageFilter.MaxFilter(2 * 12 + 1))
    outside = np.asarray(reach) == 0
    inside = mask == 255
    assert outside.sum() > 3000 and inside.sum() > 500
    assert np.abs(result - src)[outside].max() <= 2
    assert np.abs(result - src)[inside].mean() > 20  # the masked part was really repainted


def test_corrupt_model_shows_banner_and_good_model_still_works(
    qtbot, window, tiny_path, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    window.panel.prompt_edit.setPlainText("a lantern")
    click_generate(qtbot, window)  # no model yet: a message instead of a job
    assert window.banner.text() == NO_MODEL_MESSAGE
    assert window.worker.queue_length() == 0

    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b'\x10\x00\x00\x00\x00\x00\x00\x00{"a": truncated')
    with qtbot.waitSignal(window.worker.model_failed, timeout=WAIT_MS):
        window.load_model(corrupt)
    text = window.banner.text()
    assert text.startswith("Could not load corrupt.safetensors") and "Traceback" not in text
    assert window.banner.kind() is BannerKind.ERROR
    assert QApplication.activeModalWidget() is None  # nothing blocks the window
    assert window.status.model.text() == "No model"

    load(qtbot, window, tiny_path)
    assert window.banner.text() == ""  # the model error went away with a working model
    assert window.status.model.text() == "txt2img-small"
    set_quick(window, steps=2)
    with qtbot.waitSignal(window.worker.job_finished, timeout=WAIT_MS):
        click_generate(qtbot, window)
    assert window.gallery_store.count() == 1


def test_welcome_until_a_model_exists_then_the_list_shows_it(qtbot, window, tiny_path) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.canvas_stack.currentWidget() is window.welcome, timeout=WAIT_MS)
    assert window.panel.current_model_path() is None
    window.paths.models_dir.mkdir(parents=True)
    copy = window.paths.models_dir / "my-model.safetensors"
    copy.write_bytes(tiny_path.read_bytes())
    with qtbot.waitSignal(window.worker.model_loaded, timeout=WAIT_MS) as loaded:
        qtbot.mouseClick(window.welcome.rescan_button, LEFT)  # "Look again"
    assert loaded.args[0].name == "my-model"
    assert window.canvas_stack.currentWidget() is window.canvas_page
    qtbot.waitUntil(lambda: window.panel.current_model_path() == copy, timeout=WAIT_MS)
    assert window.panel.model_combo.currentText() == "my-model — SD 1.x"
    assert window.settings.last_model == str(copy)


def test_img2img_without_picture_says_what_to_do(qtbot, window, tiny_path) -> None:  # type: ignore[no-untyped-def]
    load(qtbot, window, tiny_path)
    window.panel.set_mode(Mode.IMG2IMG)
    assert window.generate() == []
    assert "needs a picture on the canvas" in window.banner.text()
    assert window.panel.strength.isVisible() and not window.panel.mask_blur.isVisible()


def test_zoom_buttons_only_where_there_is_a_picture(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    assert not window.view_bar.isVisible()  # an empty canvas: no row of greyed icons
    window.canvas.set_image(Image.new("RGB", (64, 48), (200, 120, 40)))
    assert window.view_bar.isVisible() and window.act_save_as.isEnabled()
    window.act_gallery.trigger()
    assert window.tabs.currentIndex() == 1 and not window.view_bar.isVisible()
    assert not window.strip.isVisible()  # the full gallery makes the strip redundant
    window.act_gallery.trigger()
    assert window.view_bar.isVisible() and window.strip.isVisible()


def test_preferences_move_the_gallery_and_turn_previews_off(
    qtbot, window, tiny_path, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    load(qtbot, window, tiny_path)
    prefs = Preferences.of(window.settings)
    elsewhere = tmp_path / "elsewhere"
    window.apply_preferences(replace(prefs, output_folder=str(elsewhere), preview_mode="off"))
    assert window.preview_actions[PreviewMode.OFF].isChecked()
    set_quick(window, steps=2)
    steps = Steps(window)
    with qtbot.waitSignal(window.worker.image_saved, timeout=WAIT_MS) as saved:
        click_generate(qtbot, window)
    assert saved.args[1].path.is_relative_to(elsewhere.resolve())
    assert (
        window.gallery.model.rowCount() == 1 and window.gallery_store.folder == elsewhere.resolve()
    )
    assert [image for _step, image in steps.of(saved.args[0])] == [None, None]
    on_disk = json.loads(window.paths.settings_file.read_text(encoding="utf-8"))
    assert on_disk["output_folder"] == str(elsewhere) and on_disk["preview_mode"] == "off"


def test_shortcuts_and_about_describe_the_app(window) -> None:  # type: ignore[no-untyped-def]
    rows = shortcut_rows([*window.actions(), *window.canvas.canvas_actions.all()])
    assert ("Ctrl+Return, Ctrl+Enter", "Generate") in rows
    assert any(what == "Open Image" and keys == "Ctrl+O" for keys, what in rows)
    assert len({keys for keys, _ in rows}) == len(rows)  # no key listed twice
    dialog = ShortcutsDialog(window.actions(), window)
    assert dialog.table.rowCount() >= len(WIDGET_KEYS)
    about = AboutDialog("torch 2, 2 CPU threads", window)
    assert "torch 2, 2 CPU threads" in " ".join(w.text() for w in about.findChildren(QLabel))


class Heartbeat:
    """A 10 ms timer on the UI thread; the largest gap between ticks is the worst stall."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now

    def start(self) -> None:
        self.gaps.clear()
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return max(self.gaps) if self.gaps else float("inf")


HEARTBEAT_CHILD = "SD_DESKTOP_HEARTBEAT_CHILD"


def test_event_loop_never_stalls_during_load_and_generation(
    qtbot, window, tmp_path_factory
) -> None:  # type: ignore[no-untyped-def]
    """Measured in a process of its own, as the app runs. In the shared test process,
    after the windows, workers and models of earlier tests, loads stalled by 100-180 ms;
    the cause is not yet found (not the cyclic GC, the GIL switch interval or
    malloc_trim), so the figure here is the app's own, not the test process's."""
    if os.environ.get(HEARTBEAT_CHILD) != "1":
        node = (
            f"{Path(__file__).resolve()}::test_event_loop_never_stalls_during_load_and_generation"
        )
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", node],
            env={**os.environ, HEARTBEAT_CHILD: "1"},
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        assert "1 passed" in proc.stdout
        return
    model = build_tiny_sd(tmp_path_factory, size="medium").single_file
    gc.collect()
    beat = Heartbeat()
    beat.start()
    load(qtbot, window, model)
    load_gap, load_ticks = beat.stop(), len(beat.gaps)

    set_quick(window, steps=12, size=128)
    window.panel.prompt_edit.setPlainText("a field of sunflowers")
    window.set_preview_mode(PreviewMode.FAST)
    previews: list[object] = []
    window.worker.step_progress.connect(lambda *args: previews.append(args[4]))
    beat.start()
    with qtbot.waitSignal(window.worker.image_saved, timeout=WAIT_MS):
        click_generate(qtbot, window)
    gen_gap, gen_ticks = beat.stop(), len(beat.gaps)
    assert len(previews) == 12 and all(isinstance(p, QImage) for p in previews)
    assert load_ticks >= 3 and gen_ticks >= 10  # the timer really ran during both
    assert load_gap < 0.1, f"UI stalled {load_gap * 1000:.0f} ms while the model loaded"
    assert gen_gap < 0.1, f"UI stalled {gen_gap * 1000:.0f} ms during generation"


def test_first_run_window_fits_the_screen(qtbot, paths) -> None:  # type: ignore[no-untyped-def]
    """No saved geometry: 1400x880 where there is room, else the screen's size (the
    offscreen screen is 800x800, smaller than a 1366x768 laptop's), centred."""
    window = open_window(qtbot, paths, resize=False)
    room = window.screen().availableGeometry()
    assert window.height() <= room.height() and window.height() < 880
    assert window.width() <= max(room.width(), window.minimumSizeHint().width())
    if window.width() <= room.width():
        assert abs(window.frameGeometry().center().x() - room.center().x()) <= 2
    window.shutdown()


def test_settings_persist_across_restart(qtbot, paths, tiny_path) -> None:  # type: ignore[no-untyped-def]
    first = open_window(qtbot, paths)
    load(qtbot, first, tiny_path)
    panel = first.panel
    panel.prompt_edit.setPlainText("an old map\nwith a compass rose")
    panel.negative_edit.setPlainText("blurry")
    panel.set_mode(Mode.IMG2IMG)
    panel.steps.setValue(33)
    panel.cfg.setValue(5.5)
    panel.strength.setValue(0.4)
    panel.set_size(640, 448)
    panel.set_seed(3_000_000_000)  # above 2^31: must survive as an int
    panel.batch_count.setValue(3)
    panel.clip_skip.setValue(2)
    panel.sampler_combo.setCurrentIndex(panel.sampler_combo.findText("DDIM"))
    first.set_preview_mode(PreviewMode.FULL)
    first.settings.add_model_folder(paths.data_dir / "more-models")
    # The offscreen screen is 800x800 and restoring clamps to it (and to the window's
    # minimum width), so the height is what can be compared.
    first.resize(first.minimumSizeHint().width(), 620)
    qtbot.waitUntil(lambda: first.height() == 620)
    expected = panel.values()
    first.shutdown()
    first.close()

    saved = json.loads(paths.settings_file.read_text(encoding="utf-8"))
    assert saved["last_model"] == str(tiny_path)
    assert saved["window_geometry"] and saved["window_state"] and saved["splitter_state"]
    assert list(paths.config_dir.glob("*.tmp")) == []  # atomic write left no debris

    second = open_window(qtbot, paths, resize=False)
    try:
        assert second.panel.values() == expected
        assert second.panel.seed() == 3_000_000_000
        assert second.preview_actions[PreviewMode.FULL].isChecked()
        assert second.settings.model_folders == [str(paths.data_dir / "more-models")]
        assert second.height() == 620
        qtbot.waitUntil(lambda: second.worker.model_info() is not None, timeout=WAIT_MS)
        assert second.worker.model_info().path == tiny_path  # the last model loads by itself
        qtbot.waitUntil(lambda: second.panel.current_model_path() == tiny_path, timeout=WAIT_MS)
    finally:
        second.shutdown()


def test_gallery_reuse_parameters_and_seed(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    params = GenerationParams(
        prompt="a koi pond",
        negative_prompt="text",
        steps=28,
        sampler="Euler a",
        cfg_scale=6.5,
        seed=777,
        width=512,
        height=768,
        clip_skip=2,
    )
    window.gallery.reuse_parameters.emit(params)
    v = window.panel.values()
    assert (v["prompt"], v["negative_prompt"], v["steps"], v["sampler"]) == (
        "a koi pond",
        "text",
        28,
        "euler_a",
    )
    assert (v["cfg_scale"], v["seed"], v["width"], v["height"], v["clip_skip"]) == (
        6.5,
        777,
        512,
        768,
        2,
    )
    window.gallery.reuse_seed.emit(12345)
    assert window.panel.seed() == 12345


def test_settings_file_is_forgiving(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    assert store.load() == Settings() and store.load_problem is None  # no file yet
    store.path.write_text("{ not json", encoding="utf-8")
    assert store.load() == Settings()
    assert store.load_problem is not None and "not valid JSON" in store.load_problem
    assert (tmp_path / "settings.json.bad").exists()  # the damaged file is kept aside
    store.path.write_text(
        json.dumps(
            {
                "steps": 3,
                "preview_every": "ten",
                "known_models": ["a", "a", "b"],
                "last_model": 5,
                "output_folder": "/pictures",
            }
        ),
        encoding="utf-8",
    )
    loaded = store.load()
    assert loaded.preview_every == 5 and loaded.last_model == ""  # wrong types -> defaults
    assert loaded.known_models == ["a", "b"] and loaded.output_folder == "/pictures"
    env = {"SD_DESKTOP_CONFIG_DIR": str(tmp_path / "c"), "SD_DESKTOP_DATA_DIR": str(tmp_path)}
    paths = AppPaths.from_environment(env)
    assert paths.settings_file == tmp_path / "c" / "settings.json"
    assert paths.models_dir == tmp_path / "models"


def _drop(target: QWidget, path: Path) -> bool:
    """Drag a file from outside the app onto `target` and drop it, as Qt delivers it to
    the widget under the pointer; returns whether the drop was accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = QPointF(target.rect().center())
    copy, left = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton
    enter = QDragEnterEvent(pos.toPoint(), copy, mime, left, NOMOD)
    QApplication.sendEvent(target, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(pos, copy, mime, left, NOMOD)
    QApplication.sendEvent(target, drop)
    return drop.isAccepted()


DROPPED = GenerationParams(
    prompt="a koi pond in autumn, watercolour",
    negative_prompt="blurry, text",
    steps=28,
    sampler="Euler a",
    cfg_scale=6.5,
    seed=3_000_000_123,
    width=512,
    height=768,
    clip_skip=2,
    denoising_strength=0.6,
    mask_blur=9,
    model="dreamy-v2",
)


def test_dropping_a_png_with_parameters_offers_them_anywhere(qtbot, window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    made = tmp_path / "koi.png"
    write_png(Image.new("RGB", (96, 64), (20, 120, 160)), made, DROPPED)
    before = window.panel.values()
    offer = window.drop_offer
    # Qt hands a drop to the innermost widget that accepts drops: the gallery grid does
    # not, so over the gallery the window itself receives it.
    assert window.acceptDrops() and not window.gallery.grid.viewport().acceptDrops()
    for target in (
        window.panel.prompt_edit.viewport(),
        window.canvas,
        window,
        window.gallery.search_box,
    ):
        assert _drop(target, made), target
        assert offer.isVisible() and offer.dropped().path == made
        assert "koi.png" in offer.title.text() and "28 steps" in offer.detail.text()
        assert window.panel.values() == before  # nothing changes until the user chooses
        assert not window.canvas.has_image()
        offer.cancel_button.click()
        assert not offer.isVisible()
    assert window.panel.prompt_edit.toPlainText() == before["prompt"]  # no path pasted
    assert window.gallery.search_box.text() == ""

    assert _drop(window.canvas, made)
    qtbot.mouseClick(offer.use_button, LEFT)
    v = window.panel.values()
    assert not offer.isVisible() and not window.canvas.has_image()
    assert (v["prompt"], v["negative_prompt"], v["sampler"], v["steps"]) == (
        "a koi pond in autumn, watercolour",
        "blurry, text",
        "euler_a",
        28,
    )
    assert (v["cfg_scale"], v["seed"], v["width"], v["height"], v["clip_skip"]) == (
        6.5,
        3_000_000_123,
        512,
        768,
        2,
    )
    assert (v["strength"], v["mask_blur"]) == (0.6, 9)
    assert "koi.png" in window.status.message.text()

    assert _drop(window.panel.negative_edit.viewport(), made)
    qtbot.mouseClick(offer.source_button, LEFT)
    assert window.canvas.has_image() and window.canvas.source_qimage().size().width() == 96
    assert window.panel.mode() is Mode.IMG2IMG  # a picture on the canvas is to be worked on
    assert window.tabs.currentIndex() == 0


def test_dropping_a_plain_picture_still_opens_it(qtbot, window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plain = tmp_path / "photo.png"
    Image.new("RGB", (80, 40), (200, 10, 10)).save(plain)
    window.tabs.setCurrentIndex(1)
    assert _drop(window, plain)  # over the gallery: nothing to offer, so it is opened
    assert not window.drop_offer.isVisible()
    assert window.canvas.has_image() and window.tabs.currentIndex() == 0
    window.canvas.clear_image()
    assert _drop(window.panel.prompt_edit.viewport(), plain)
    assert window.canvas.has_image() and window.panel.prompt_edit.toPlainText() == ""


def test_dropping_a_png_with_broken_parameters_says_so(qtbot, window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "broken.png"
    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: many, Sampler: Euler, CFG scale: 7, Seed: 1")
    Image.new("RGB", (32, 32)).save(broken, pnginfo=info)
    before = window.panel.values()
    assert _drop(window.canvas, broken)
    offer = window.drop_offer
    assert offer.isVisible() and not offer.use_button.isVisible()
    assert "cannot be used" in offer.title.text() and "Steps" in offer.detail.text()
    assert window.panel.values() == before
    qtbot.mouseClick(offer.source_button, LEFT)  # still usable as a picture
    assert window.canvas.has_image() and not offer.isVisible()


def test_escape_cancels_the_stroke_first_and_the_job_after(qtbot, window, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    canvas = window.canvas
    window.panel.set_mode(Mode.INPAINT)
    canvas.set_image(Image.new("RGB", (128, 128), (90, 90, 90)))
    window.activateWindow()
    qtbot.waitActive(window)
    cancels: list[bool] = []
    monkeypatch.setattr(window.worker, "cancel", lambda: cancels.append(True) or True)
    window._running_job = 7  # as while a job runs: Cancel (Esc) is live
    window._update_running()
    assert window.act_cancel.isEnabled()

    centre = canvas.image_to_widget(QPointF(64, 64)).toPoint()
    QTest.mousePress(canvas, LEFT, NOMOD, centre)
    QTest.mouseMove(canvas, centre + QPoint(30, 0))
    assert canvas.has_interaction() and canvas.has_mask()
    QTest.keyClick(canvas, Qt.Key.Key_Escape)
    assert cancels == [] and not canvas.has_interaction() and not canvas.has_mask()
    QTest.mouseRelease(canvas, LEFT, NOMOD, centre + QPoint(30, 0))

    QTest.keyClick(canvas, Qt.Key.Key_Escape)  # no stroke: Esc stops the job
    assert cancels == [True]
    window._running_job = None
    window._update_running()


def test_empty_canvas_says_where_the_picture_appears(window) -> None:  # type: ignore[no-untyped-def]
    assert window.panel.mode() is Mode.TXT2IMG
    title, detail = window.canvas.empty_text()
    assert "appears here" in title and "Ctrl+Enter" in detail and "drop" in detail
    window.panel.set_mode(Mode.IMG2IMG)
    assert window.canvas.empty_text()[0].startswith("Drop")
    window.panel.set_mode(Mode.INPAINT)
    assert "inpaint" in window.canvas.empty_text()[0]
    assert window.panel.negative_heading.text() == "NEGATIVE PROMPT"
    assert window.panel.negative_heading.buddy() is window.panel.negative_edit


def test_window_fits_a_small_screen(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    assert window.minimumSizeHint().width() <= 1000
    window.resize(1000, 700)
    qtbot.waitUntil(lambda: window.width() == 1000)
    window._update_welcome()
    window.tabs.setCurrentIndex(1)
    toolbar = window.gallery.findChild(GalleryToolbar)
    qtbot.waitUntil(lambda: toolbar.is_compact())
    assert window.gallery.search_box.width() >= 140
    # The welcome panel stacks its three choices rather than forcing the width.
    window.tabs.setCurrentIndex(0)
    window.canvas_stack.setCurrentWidget(window.welcome)
    qtbot.waitUntil(lambda: window.welcome.isVisible())
    choices = [window.welcome.download_choice, window.welcome.open_choice]
    assert choices[0].geometry().bottom() < choices[1].geometry().top()
    window.resize(1600, 900)
    qtbot.waitUntil(lambda: choices[0].geometry().top() == choices[1].geometry().top())
