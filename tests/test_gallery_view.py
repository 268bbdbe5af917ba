"""The gallery widget: lazy model, filters through the real controls, actions and signals."""

from __future__ import annotations

import os
import shutil
import threading
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator  # noqa: E402
from datetime import datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QItemSelectionModel, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QGuiApplication, QPixmap  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from sd_desktop.gallery import GalleryItem, GalleryStore, ThumbnailCache  # noqa: E402
from sd_desktop.infotext import GenerationParams, write_png  # noqa: E402
from sd_desktop.ui.gallery_model import GalleryModel, ItemRole, ThumbnailErrorRole  # noqa: E402
from sd_desktop.ui.gallery_thumbs import ThumbnailLoader  # noqa: E402
from sd_desktop.ui.gallery_view import GalleryToolbar, GalleryWidget  # noqa: E402

T0 = datetime(2024, 3, 1, 10, 0, 0).astimezone()
COUNT = 45
PAGE = 10


def _prompt(i: int) -> str:
    return f"{'a cat' if i % 3 == 0 else 'a dog'} in a garden, picture {i}"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One gallery built once (saving fsyncs every file); each test gets a copy."""
    folder = tmp_path_factory.mktemp("template") / "gallery"
    with GalleryStore(folder) as gallery:
        colors = ["red", "green", "blue", "orange", "purple"]
        for i in range(COUNT):
            params = GenerationParams(
                prompt=_prompt(i),
                seed=1000 + i,
                model="modelA" if i % 2 == 0 else "modelB",
                width=64,
                height=48,
                steps=10 + i,
            )
            image = Image.new("RGB", (64, 48), colors[i % len(colors)])
            gallery.save(image, params, created=T0 + timedelta(minutes=i))
    return folder


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Iterator[GalleryStore]:
    folder = tmp_path / "gallery"
    shutil.copytree(template, folder)
    with GalleryStore(folder) as gallery:
        assert gallery.rebuild_reason is None
        yield gallery


@pytest.fixture
def trashed(tmp_path: Path) -> list[Path]:
    return []


@pytest.fixture
def widget(
    qtbot, store: GalleryStore, tmp_path: Path, trashed: list[Path]
) -> Iterator[GalleryWidget]:  # type: ignore[no-untyped-def]
    trash_dir = tmp_path / "trash"
    trash_dir.mkdir()

    def fake_trash(path: Path) -> None:
        trashed.append(path)
        path.rename(trash_dir / path.name)

    gallery = GalleryWidget(
        store,
        thumbnails=ThumbnailCache(tmp_path / "thumbs", size=64),
        trash=fake_trash,
        page_size=PAGE,
    )
    qtbot.addWidget(gallery)
    gallery.resize(1000, 700)
    gallery.show()
    yield gallery
    gallery.shutdown()


def _select_row(widget: GalleryWidget, row: int) -> GalleryItem:
    index = widget.model.index(row)
    widget.grid.selectionModel().setCurrentIndex(
        index, QItemSelectionModel.SelectionFlag.ClearAndSelect
    )
    item = index.data(ItemRole)
    assert isinstance(item, GalleryItem)
    return item


def test_model_reads_pages_lazily(qapp, store: GalleryStore, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    loader = ThumbnailLoader(ThumbnailCache(tmp_path / "thumbs"))
    model = GalleryModel(store, loader, page_size=PAGE)
    assert model.rowCount() == COUNT
    assert model.pages_read == 0
    newest = model.data(model.index(0), ItemRole)
    assert newest.prompt == _prompt(COUNT - 1)
    assert model.pages_read == 1
    oldest = model.data(model.index(COUNT - 1), ItemRole)
    assert oldest.prompt == _prompt(0)
    assert model.pages_read == 2
    model.data(model.index(3), ItemRole)  # page already read
    assert model.pages_read == 2
    assert model.data(model.index(COUNT), ItemRole) is None
    loader.shutdown()


def test_widget_shows_every_image_and_count(widget: GalleryWidget) -> None:
    assert widget.model.rowCount() == COUNT
    assert widget.count_label.text() == f"{COUNT} images"
    # Only the pages on screen were read, not the whole gallery.
    assert widget.model.pages_read < COUNT // PAGE + 1


def test_search_box_filters(qtbot, widget: GalleryWidget, store: GalleryStore) -> None:  # type: ignore[no-untyped-def]
    cats = store.count(text="cat")
    assert 0 < cats < COUNT
    qtbot.keyClicks(widget.search_box, "cat")
    qtbot.waitUntil(lambda: widget.model.rowCount() == cats, timeout=3000)
    prompts = [widget.model.item(row).prompt for row in range(widget.model.rowCount())]
    assert all("cat" in p for p in prompts)
    assert widget.count_label.text() == f"{cats} images"
    widget.search_box.clear()
    qtbot.waitUntil(lambda: widget.model.rowCount() == COUNT, timeout=3000)
    widget.set_search_text("picture 7")
    assert [widget.model.item(r).prompt for r in range(widget.model.rowCount())] == [_prompt(7)]
    widget.set_search_text("zebra")
    assert widget.model.rowCount() == 0
    assert "No images match" in widget.grid.empty_text


def test_model_filter_and_sort(widget: GalleryWidget, store: GalleryStore) -> None:
    combo = widget.model_filter
    assert [combo.itemText(i) for i in range(combo.count())] == ["All models", "modelA", "modelB"]
    combo.setCurrentIndex(combo.findData("modelB"))
    assert widget.model.rowCount() == store.count(model="modelB")
    assert all(widget.model.item(r).model == "modelB" for r in range(widget.model.rowCount()))
    combo.setCurrentIndex(0)
    assert widget.model.rowCount() == COUNT

    assert widget.model.item(0).prompt == _prompt(COUNT - 1)
    widget.sort_combo.setCurrentIndex(widget.sort_combo.findData("oldest"))
    assert widget.model.item(0).prompt == _prompt(0)
    assert widget.model.item(COUNT - 1).prompt == _prompt(COUNT - 1)


def test_favourite_action_and_filter(widget: GalleryWidget, store: GalleryStore) -> None:
    item = _select_row(widget, 2)
    assert widget.action_toggle_favourite.isEnabled()
    assert not widget.action_toggle_favourite.isChecked()
    widget.action_toggle_favourite.trigger()
    assert store.get(item.id).favourite
    assert widget.model.item(2).favourite
    assert widget.action_toggle_favourite.isChecked()

    widget.favourites_button.click()
    assert widget.model.rowCount() == 1
    assert widget.model.item(0).id == item.id
    # Un-favouriting while the filter is on removes the row at once.
    _select_row(widget, 0)
    widget.action_toggle_favourite.trigger()
    assert widget.model.rowCount() == 0
    assert not store.get(item.id).favourite


def test_actions_emit_signals(qtbot, widget: GalleryWidget) -> None:  # type: ignore[no-untyped-def]
    item = _select_row(widget, 4)
    with qtbot.waitSignal(widget.reuse_seed) as seed:
        widget.action_reuse_seed.trigger()
    assert seed.args == [item.seed]
    with qtbot.waitSignal(widget.reuse_parameters) as params:
        widget.action_reuse_parameters.trigger()
    assert params.args == [item.params]
    assert params.args[0].steps == item.params.steps
    with qtbot.waitSignal(widget.send_to_canvas) as sent:
        widget.action_send_inpaint.trigger()
    assert sent.args == [item.path, "inpaint"]
    with qtbot.waitSignal(widget.send_to_canvas) as sent:
        widget.action_send_img2img.trigger()
    assert sent.args == [item.path, "img2img"]
    with qtbot.waitSignal(widget.item_activated) as activated:
        widget.grid.activated.emit(widget.model.index(4))
    assert activated.args == [item]


def test_actions_disabled_without_selection(widget: GalleryWidget) -> None:
    assert not widget.action_reuse_parameters.isEnabled()
    assert not widget.action_delete.isEnabled()
    _select_row(widget, 0)
    assert widget.action_reuse_parameters.isEnabled()
    widget.grid.selectAll()
    assert not widget.action_reuse_parameters.isEnabled()  # one image only
    assert widget.action_delete.isEnabled()


def test_details_pane_shows_parameters(widget: GalleryWidget) -> None:
    item = _select_row(widget, 1)
    assert widget.details.item == item
    assert widget.details.prompt_label.text() == item.prompt
    assert widget.details.field_text("Seed") == str(item.seed)
    assert widget.details.field_text("Steps") == str(item.params.steps)
    assert widget.details.field_text("Model") == item.model
    assert widget.details.field_text("Size") == "64 × 48"
    assert widget.details.field_text("File") == str(item.path)


def test_delete_with_confirmation(
    widget: GalleryWidget, store: GalleryStore, trashed: list[Path]
) -> None:
    item = _select_row(widget, 0)
    widget.confirm_delete = lambda items: False  # type: ignore[method-assign]
    widget.action_delete.trigger()
    assert trashed == [] and item.path.exists()

    asked: list[list[GalleryItem]] = []
    widget.confirm_delete = lambda items: asked.append(items) or True  # type: ignore[method-assign]
    widget.action_delete.trigger()
    assert asked == [[item]]
    assert trashed == [item.path]
    assert not item.path.exists()
    assert store.get(item.id) is None
    assert widget.model.rowCount() == COUNT - 1
    assert widget.model.item(0).id != item.id
    assert widget.count_label.text() == f"{COUNT - 1} images"


def test_add_item_from_worker_respects_filters(widget: GalleryWidget, store: GalleryStore) -> None:
    strip = widget.create_strip()
    assert strip.model().rowCount() == COUNT
    fresh = store.save(
        Image.new("RGB", (64, 48), "white"),
        GenerationParams(prompt="a brand new fox", seed=7, model="modelC"),
        created=T0 + timedelta(days=1),
    )
    widget.add_item(fresh)
    assert widget.model.rowCount() == COUNT + 1
    assert widget.model.item(0).id == fresh.id
    assert strip.gallery_model().item(0).id == fresh.id
    assert widget.model_filter.findData("modelC") > 0

    widget.set_search_text("cat")
    before = widget.model.rowCount()
    dog = store.save(Image.new("RGB", (8, 8)), GenerationParams(prompt="another dog", seed=8))
    widget.add_item(dog)
    assert widget.model.rowCount() == before  # does not match the search
    assert strip.model().rowCount() == COUNT + 2  # the strip is never filtered


def test_thumbnails_arrive_off_thread(qtbot, widget: GalleryWidget) -> None:  # type: ignore[no-untyped-def]
    index = widget.model.index(0)
    assert widget.model.data(index, Qt.ItemDataRole.DecorationRole) is None  # placeholder first

    def loaded() -> bool:
        return isinstance(widget.model.data(index, Qt.ItemDataRole.DecorationRole), QPixmap)

    qtbot.waitUntil(loaded, timeout=5000)
    pixmap = widget.model.data(index, Qt.ItemDataRole.DecorationRole)
    assert max(pixmap.width(), pixmap.height()) == 64


def test_copy_image_to_clipboard(widget: GalleryWidget) -> None:
    item = _select_row(widget, 3)
    widget.action_copy_image.trigger()
    mime = QGuiApplication.clipboard().mimeData()
    assert mime.hasImage()
    assert [url.toLocalFile() for url in mime.urls()] == [str(item.path)]


def test_strip_activation(qtbot, widget: GalleryWidget) -> None:  # type: ignore[no-untyped-def]
    strip = widget.create_strip()
    qtbot.addWidget(strip)
    expected = strip.gallery_model().item(1)
    with qtbot.waitSignal(widget.item_activated) as activated:
        strip.activated.emit(strip.model().index(1))
    assert activated.args == [expected]


def test_selection_survives_a_filter_that_keeps_it(widget: GalleryWidget) -> None:
    item = _select_row(widget, 0)
    widget.set_search_text(item.prompt.split(",")[1].strip())  # "picture N": unique
    assert widget.model.rowCount() == 1
    assert widget.details.item == item
    assert widget.current_item() == item
    widget.set_search_text("zebra")
    assert widget.details.item is None
    assert not widget.action_reuse_seed.isEnabled()


def test_unreadable_file_gets_error_placeholder(qtbot, widget: GalleryWidget) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(widget.loader.is_idle, timeout=5000)  # first screen done
    item = widget.model.item(0)
    item.path.write_bytes(b"this is no longer a PNG")
    widget.loader.forget(item.path)  # it may already be on screen from before
    index = widget.model.index(0)
    widget.model.data(index, Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(lambda: widget.model.data(index, ThumbnailErrorRole) is not None, timeout=5000)
    assert item.name in widget.model.data(index, ThumbnailErrorRole)
    assert widget.model.data(index, Qt.ItemDataRole.DecorationRole) is None
    widget.grid.viewport().repaint()  # the crossed-out placeholder paints without error


def test_rebuild_runs_off_the_ui_thread_while_the_ui_keeps_ticking(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "many"
    day = folder / "2024-03-01"
    day.mkdir(parents=True)
    for i in range(300):
        params = GenerationParams(prompt=f"picture {i}", seed=i, model="m", width=8, height=8)
        write_png(Image.new("RGB", (8, 8), (i % 256, 0, 0)), day / f"{i:05d}-{i}.png", params)
    store = GalleryStore(folder, scan_later=True)
    assert store.rebuild_reason == "no index yet" and store.count() == 0

    sync_threads: list[threading.Thread] = []
    real_sync = store.sync

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        sync_threads.append(threading.current_thread())
        return real_sync(*args, **kwargs)

    monkeypatch.setattr(store, "sync", spy)
    gallery = GalleryWidget(store, thumbnails=ThumbnailCache(tmp_path / "thumbs", size=64))
    qtbot.addWidget(gallery)
    gallery.resize(900, 600)
    gallery.show()
    strip = gallery.create_strip()
    ticks: list[float] = []
    beat = QTimer()
    beat.setInterval(10)
    beat.timeout.connect(lambda: ticks.append(time.perf_counter()))
    beat.start()
    notices: list[str] = []
    gallery.notice.connect(notices.append)

    gallery.sync_in_background()
    # The call returned at once; the window says what is going on meanwhile.
    assert gallery.is_syncing() and gallery.is_rebuilding()
    assert gallery.busy_label.isVisible() and "Rebuilding" in gallery.busy_label.text()
    assert "Rebuilding" in gallery.grid.empty_text and "Rebuilding" in strip.empty_text
    qtbot.waitUntil(lambda: not gallery.is_syncing(), timeout=30_000)
    beat.stop()

    assert sync_threads and sync_threads[0] is not threading.main_thread()
    assert gallery.model.rowCount() == 300 and gallery.count_label.text() == "300 images"
    assert strip.gallery_model().rowCount() == 300
    assert not gallery.busy_label.isVisible() and "Rebuilding" not in strip.empty_text
    assert notices == ["Gallery index rebuilt: 300 image(s)."]
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert len(ticks) >= 3 and max(gaps) < 0.25
    gallery.shutdown()
    store.close()


@pytest.mark.parametrize("damaged", [False, True])
def test_a_new_empty_gallery_is_not_announced_but_a_repaired_one_is(
    qtbot, tmp_path: Path, damaged: bool
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "empty"
    if damaged:
        folder.mkdir()
        with GalleryStore(folder) as first:
            index_file = first.index_path
        index_file.write_bytes(b"not a database" * 100)
    store = GalleryStore(folder, scan_later=True)
    assert store.rebuild_reason is not None
    gallery = GalleryWidget(store, thumbnails=ThumbnailCache(tmp_path / "thumbs", size=64))
    qtbot.addWidget(gallery)
    notices: list[str] = []
    gallery.notice.connect(notices.append)
    gallery.sync_in_background()
    qtbot.waitUntil(lambda: not gallery.is_syncing(), timeout=30_000)
    assert notices == (["Gallery index rebuilt: 0 image(s)."] if damaged else [])
    gallery.shutdown()
    store.close()


def test_views_paint_safely_after_shutdown_and_store_close(
    qtbot, store: GalleryStore, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The window closes the store after the gallery shuts down; a paint arriving in
    between (pending events at exit) must not query the closed store."""
    gallery = GalleryWidget(
        store, thumbnails=ThumbnailCache(tmp_path / "thumbs", size=64), page_size=PAGE
    )
    qtbot.addWidget(gallery)
    strip = gallery.create_strip()
    qtbot.addWidget(strip)
    gallery.resize(900, 600)
    gallery.show()
    strip.show()
    qtbot.waitExposed(gallery)
    assert gallery.model.rowCount() == COUNT and strip.gallery_model().rowCount() == COUNT
    gallery.shutdown()
    store.close()
    # Exceptions raised inside these paints would fail the test (pytest-qt catches them).
    gallery.grid.viewport().repaint()
    strip.viewport().repaint()
    QApplication.processEvents()
    assert gallery.model.rowCount() == 0 and strip.gallery_model().rowCount() == 0


def test_model_over_a_closed_store_answers_empty_rows(
    qapp, store: GalleryStore, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    loader = ThumbnailLoader(ThumbnailCache(tmp_path / "thumbs"))
    model = GalleryModel(store, loader, page_size=PAGE)
    assert model.rowCount() == COUNT
    store.close()
    # Rows not read yet cannot be read any more: empty, not an exception in a paint.
    assert model.data(model.index(0), ItemRole) is None
    model.reload()
    assert model.rowCount() == 0
    loader.shutdown()


def test_shutdown_stops_a_running_sync(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "g"
    (folder / "d").mkdir(parents=True)
    for i in range(40):
        write_png(Image.new("RGB", (8, 8)), folder / "d" / f"{i}.png", GenerationParams(seed=i))
    store = GalleryStore(folder, scan_later=True)
    gallery = GalleryWidget(store, thumbnails=ThumbnailCache(tmp_path / "thumbs", size=64))
    qtbot.addWidget(gallery)
    gallery.sync_in_background()
    gallery.shutdown()  # waits for the thread: closing the store next is safe
    assert not gallery.is_syncing()
    assert all(not t.is_alive() for t in threading.enumerate() if t.name == "gallery-sync")
    store.close()


def test_toolbar_turns_compact_instead_of_holding_the_window_wide(widget: GalleryWidget) -> None:
    toolbar = widget.findChild(GalleryToolbar)
    assert toolbar is not None
    widget.resize(1000, 600)
    QApplication.processEvents()
    assert not toolbar.is_compact() and widget.count_label.isVisible()
    assert widget.favourites_button.text() and (
        widget.favourites_button.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonTextBesideIcon
    )
    # The whole gallery fits a narrow window (beside a 400 px panel in a 1000 px window).
    assert widget.minimumSizeHint().width() <= 540
    widget.resize(widget.minimumSizeHint().width(), 600)
    QApplication.processEvents()
    assert toolbar.is_compact() and not widget.count_label.isVisible()
    assert widget.favourites_button.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonIconOnly
    assert widget.search_box.width() >= 140  # still usable
    widget.resize(1000, 600)
    QApplication.processEvents()
    assert not toolbar.is_compact() and widget.count_label.isVisible()
