"""Gallery store: atomic saves, the SQLite index (search, filters, sort) and its rebuild."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from sd_desktop.gallery import GalleryError, GalleryStore, ThumbnailCache, ThumbnailError
from sd_desktop.gallery.files import TEMP_PREFIX, iter_pngs, remove_stale_temp_files
from sd_desktop.gallery.index import fts_query
from sd_desktop.infotext import GenerationParams, read_png_params

T0 = datetime(2024, 5, 1, 12, 0, 0).astimezone()


def _image(color: str = "red") -> Image.Image:
    return Image.new("RGB", (16, 16), color)


def _params(prompt: str, seed: int = 1, model: str = "modelA", **kw: object) -> GenerationParams:
    return GenerationParams(prompt=prompt, seed=seed, model=model, **kw)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> GalleryStore:
    with GalleryStore(tmp_path / "gallery") as gallery:
        yield gallery


def _fill(store: GalleryStore) -> list[int]:
    specs = [
        ("a red fox in the snow", "modelA"),
        ("portrait of a cat, oil painting", "modelB"),
        ("a cat sitting on a red chair", "modelA"),
        ("mountain landscape at dawn", "modelB"),
    ]
    ids = []
    for i, (prompt, model) in enumerate(specs):
        item = store.save(
            _image(), _params(prompt, seed=i, model=model), created=T0 + timedelta(minutes=i)
        )
        ids.append(item.id)
    return ids


def _all_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_save_writes_png_with_infotext_and_no_temp_files(store: GalleryStore) -> None:
    params = _params("a lighthouse", seed=42, negative_prompt="blurry", denoising_strength=0.5)
    item = store.save(_image(), params, created=T0)
    assert item.path == store.folder / "2024-05-01" / "00000-42.png"
    assert read_png_params(item.path) == params
    assert item.params == params
    assert store.get(item.id) == item
    leftovers = [p for p in store.folder.rglob("*") if p.name.startswith(TEMP_PREFIX)]
    assert leftovers == []


def test_save_never_overwrites(store: GalleryStore) -> None:
    first = store.save(_image("red"), _params("one", seed=7), created=T0)
    # Someone else already took the next name: we must skip past it, not replace it.
    squatter = first.path.with_name("00001-7.png")
    squatter.write_bytes(b"not ours")
    second = store.save(_image("blue"), _params("two", seed=7), created=T0)
    assert second.path.name == "00002-7.png"
    assert squatter.read_bytes() == b"not ours"
    assert Image.open(first.path).getpixel((0, 0)) == (255, 0, 0)


def test_failed_write_leaves_no_partial_file(store: GalleryStore) -> None:
    class Exploding:
        def save(self, handle: object, **kwargs: object) -> None:
            handle.write(b"\x89PNG half an image")  # type: ignore[attr-defined]
            raise OSError(28, "No space left on device")

    before = _all_files(store.folder)
    with pytest.raises(GalleryError, match="No space left on device"):
        store.save(Exploding(), _params("doomed"), created=T0)
    after = [f for f in _all_files(store.folder) if not f.startswith(".gallery-index")]
    assert after == [f for f in before if not f.startswith(".gallery-index")]
    assert store.count() == 0


def test_search_filters_and_sort(store: GalleryStore) -> None:
    ids = _fill(store)
    assert store.count() == 4
    cats = store.query(text="cat")
    assert [i.prompt for i in cats] == [
        "a cat sitting on a red chair",
        "portrait of a cat, oil painting",
    ]
    assert {i.id for i in store.query(text="red")} == {ids[0], ids[2]}
    assert [i.id for i in store.query(text="RED CAT")] == [ids[2]]  # all words, any case
    assert [i.id for i in store.query(text="sitt")] == [ids[2]]  # prefix
    assert store.query(text="dragon") == []
    assert store.count(text="cat") == 2
    # FTS syntax typed by a user is just text, not an error.
    assert store.query(text='cat" OR NEAR(') == []
    assert store.count(text="  ,, ") == 4

    assert store.models() == ["modelA", "modelB"]
    assert {i.id for i in store.query(model="modelB")} == {ids[1], ids[3]}
    assert [i.id for i in store.query(text="cat", model="modelA")] == [ids[2]]

    assert [i.id for i in store.query(sort="newest")] == ids[::-1]
    assert [i.id for i in store.query(sort="oldest")] == ids
    assert [i.id for i in store.query(sort="oldest", limit=2, offset=1)] == ids[1:3]
    with pytest.raises(ValueError, match="sort"):
        store.query(sort="random")


def test_favourites(store: GalleryStore) -> None:
    ids = _fill(store)
    assert store.count(favourites_only=True) == 0
    item = store.set_favourite(ids[1], True)
    assert item.favourite
    assert [i.id for i in store.query(favourites_only=True)] == [ids[1]]
    assert store.matches(ids[1], favourites_only=True)
    assert not store.matches(ids[0], favourites_only=True)
    store.set_favourite(ids[1], False)
    assert store.count(favourites_only=True) == 0
    with pytest.raises(GalleryError):
        store.set_favourite(9999, True)


def test_delete_uses_trash_and_keeps_row_when_trash_fails(
    store: GalleryStore, tmp_path: Path
) -> None:
    ids = _fill(store)
    victim = store.get(ids[0])
    assert victim is not None
    trash_dir = tmp_path / "trash"
    trash_dir.mkdir()
    trashed: list[Path] = []

    def fake_trash(path: Path) -> None:
        trashed.append(path)
        path.rename(trash_dir / path.name)

    store.delete(victim.id, fake_trash)
    assert trashed == [victim.path]
    assert not victim.path.exists()
    assert (trash_dir / victim.path.name).exists()
    assert store.get(victim.id) is None
    assert store.count() == 3

    keeper = store.get(ids[1])
    assert keeper is not None
    with pytest.raises(GalleryError, match="trash"):
        store.delete(keeper.id, lambda path: None)  # a trash that silently did nothing
    with pytest.raises(GalleryError, match="denied"):
        store.delete(keeper.id, lambda path: (_ for _ in ()).throw(PermissionError("denied")))
    assert store.get(keeper.id) is not None and keeper.path.exists()


def test_deleted_index_is_rebuilt_with_same_parameters(tmp_path: Path) -> None:
    folder = tmp_path / "gallery"
    with GalleryStore(folder) as store:
        _fill(store)
        store.set_favourite(store.query(text="fox")[0].id, True)
        before = store.query(sort="oldest")
        index_path = store.index_path
    for suffix in ("", "-wal", "-shm"):
        Path(str(index_path) + suffix).unlink(missing_ok=True)

    with GalleryStore(folder) as reopened:
        assert reopened.rebuild_reason == "no index yet"
        after = reopened.query(sort="oldest")
        assert [(i.path, i.params, i.created, i.favourite) for i in after] == [
            (i.path, i.params, i.created, i.favourite) for i in before
        ]
        assert reopened.models() == ["modelA", "modelB"]
        assert reopened.count(text="cat") == 2


def test_corrupt_index_is_rebuilt(tmp_path: Path) -> None:
    folder = tmp_path / "gallery"
    with GalleryStore(folder) as store:
        _fill(store)
        index_path = store.index_path
    for suffix in ("-wal", "-shm"):
        Path(str(index_path) + suffix).unlink(missing_ok=True)
    index_path.write_bytes(b"\x00garbage\xff" * 500)

    with GalleryStore(folder) as reopened:
        assert reopened.rebuild_reason is not None
        assert "damaged" in reopened.rebuild_reason
        assert reopened.count() == 4
        assert [i.prompt for i in reopened.query(text="fox")] == ["a red fox in the snow"]


def test_outdated_schema_is_rebuilt(tmp_path: Path) -> None:
    folder = tmp_path / "gallery"
    with GalleryStore(folder) as store:
        _fill(store)
        index_path = store.index_path
    conn = sqlite3.connect(index_path)
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    with GalleryStore(folder) as reopened:
        assert reopened.rebuild_reason == "schema version 999, expected 1"
        assert reopened.count() == 4


def test_sync_picks_up_files_added_and_removed_outside(tmp_path: Path) -> None:
    folder = tmp_path / "gallery"
    with GalleryStore(folder) as store:
        ids = _fill(store)
        gone = store.get(ids[0])
    assert gone is not None
    gone.path.unlink()
    foreign = folder / "imported" / "other.png"
    foreign.parent.mkdir()
    _image().save(foreign)  # no infotext at all: still shown
    (folder / "imported" / "broken.png").write_bytes(b"not a png")
    with GalleryStore(folder) as reopened:
        assert reopened.rebuild_reason is None
        assert reopened.count() == 4
        assert reopened.get_by_path(gone.path) is None
        imported = reopened.get_by_path(foreign)
        assert imported is not None and imported.prompt == ""


def test_concurrent_saves_and_reads(store: GalleryStore) -> None:
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            for i in range(10):
                store.save(_image(), _params(f"thread image {offset + i}", seed=offset + i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n * 100,)) for n in range(3)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        store.query(text="thread", limit=50)
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count(text="thread") == 30
    names = [i.path for i in store.query(limit=100)]
    assert len(set(names)) == 30 and all(p.exists() for p in names)


def test_fts_query_quotes_user_text() -> None:
    assert fts_query("cat hat") == '"cat"* "hat"*'
    assert fts_query('say "hi"') == '"say"* """hi"""*'
    assert fts_query(" - ") is None


def test_thumbnail_cache(tmp_path: Path) -> None:
    source = tmp_path / "big.png"
    Image.new("RGBA", (600, 300), (255, 0, 0, 128)).save(source)
    cache = ThumbnailCache(tmp_path / "thumbs", size=128)
    thumb = cache.get(source)
    assert thumb.exists() and thumb.suffix == ".jpg"
    with Image.open(thumb) as image:
        assert image.size == (128, 64)
    assert cache.get(source) == thumb  # cached: same file
    # A changed source gets a new key, so no stale thumbnail is shown.
    Image.new("RGB", (300, 300), "blue").save(source)
    assert cache.get(source) != thumb
    assert cache.prune(0) == 2 and not any((tmp_path / "thumbs").glob("*/*.jpg"))
    (tmp_path / "junk.png").write_bytes(b"junk")
    with pytest.raises(ThumbnailError, match="junk.png"):
        cache.get(tmp_path / "junk.png")
    with pytest.raises(ThumbnailError):
        cache.get(tmp_path / "missing.png")


def test_scan_later_opens_without_reading_pngs_then_sync_fills_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "gallery"
    with GalleryStore(folder) as store:
        _fill(store)
        store.set_favourite(store.query(text="fox")[0].id, True)
        before = store.query(sort="oldest")
        index_path = store.index_path
    index_path.write_bytes(b"\x00garbage\xff" * 500)  # must be rebuilt
    for suffix in ("-wal", "-shm"):
        Path(str(index_path) + suffix).unlink(missing_ok=True)

    from sd_desktop.gallery import store as store_module

    reads: list[Path] = []
    real_read = store_module._read_png
    monkeypatch.setattr(store_module, "_read_png", lambda p: reads.append(p) or real_read(p))
    with GalleryStore(folder, scan_later=True) as reopened:
        assert reads == [] and reopened.needs_scan  # opening read no image
        assert "damaged" in (reopened.rebuild_reason or "")
        assert reopened.count() == 0  # usable (empty) until sync
        saved = reopened.save(_image(), _params("saved during the rebuild", seed=99))
        assert reopened.sync() == (4, 0)  # the image saved meanwhile is not added twice
        assert not reopened.needs_scan and len(reads) == 4
        after = reopened.query(sort="oldest")
        assert [(i.path, i.params, i.favourite) for i in after[:4]] == [
            (i.path, i.params, i.favourite) for i in before
        ]
        assert after[4].path == saved.path and reopened.count() == 5


def test_sync_stops_when_asked_and_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "gallery"
    with GalleryStore(folder) as store:
        _fill(store)
        index_path = store.index_path
    for suffix in ("", "-wal", "-shm"):
        Path(str(index_path) + suffix).unlink(missing_ok=True)
    with GalleryStore(folder, scan_later=True) as reopened:
        assert reopened.rebuild_reason == "no index yet"
        assert reopened.sync(should_stop=lambda: True) == (0, 0)
        assert reopened.count() == 0 and reopened.needs_scan  # still to do next time
        assert reopened.sync() == (4, 0)


def test_folder_walks_skip_hidden_folders_and_clear_only_old_temp_files(tmp_path: Path) -> None:
    day = tmp_path / "2024-03-01"
    hidden = tmp_path / ".thumbnails"
    day.mkdir()
    hidden.mkdir()
    (day / "00001-1.png").write_bytes(b"png")
    (day / "notes.txt").write_text("x")
    (hidden / "00002-2.png").write_bytes(b"png")
    old, young = day / f"{TEMP_PREFIX}old.png", day / f"{TEMP_PREFIX}young.png"
    kept_hidden = hidden / f"{TEMP_PREFIX}cache.jpg"
    for path in (old, young, kept_hidden):
        path.write_bytes(b"partial")
    now = time.time()
    os.utime(old, (now - 3600, now - 3600))
    os.utime(kept_hidden, (now - 3600, now - 3600))

    assert list(iter_pngs(tmp_path)) == [day / "00001-1.png"]
    assert remove_stale_temp_files(tmp_path, older_than_s=600, now=now) == 1
    assert not old.exists() and young.exists() and kept_hidden.exists()
