"""How the gallery copes with 10,000 images: index rebuild, opening, the widget, search.

    QT_QPA_PLATFORM=offscreen python benchmarks/gallery_bench.py [--count 10000] [--folder DIR]

The images are tiny PNGs with real infotext (varied prompts, five models), written
straight to disk as the store lays them out, so setting up takes seconds, not minutes.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from PIL import Image

from sd_desktop.gallery import GalleryStore, ThumbnailCache
from sd_desktop.gallery.files import CREATION_TIME_KEY, day_folder_name, file_name
from sd_desktop.infotext import GenerationParams, png_info

SUBJECTS = ["cat", "fox", "lighthouse", "castle", "robot", "forest", "portrait", "city", "ship"]
STYLES = ["oil painting", "watercolor", "photo", "pixel art", "concept art", "sketch"]
EXTRAS = ["at dawn", "in the snow", "neon lights", "golden hour", "foggy", "by the sea"]
MODELS = [
    "v1-5-pruned-emaonly",
    "dreamshaper_8",
    "realisticVision_v51",
    "anything-v5",
    "deliberate",
]
SAMPLERS = ["DPM++ 2M Karras", "Euler a", "Euler", "DDIM", "DPM++ 2M"]


def make_images(folder: Path, count: int, seed: int = 0) -> None:
    """Write `count` small PNGs with infotext, spread over days like a real gallery."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, 9, 0, 0).astimezone()
    numbers: dict[Path, int] = {}
    for i in range(count):
        created = start + timedelta(minutes=7 * i)
        params = GenerationParams(
            prompt=(
                f"a {rng.choice(SUBJECTS)}, {rng.choice(STYLES)}, {rng.choice(EXTRAS)}, "
                f"masterpiece, detailed, variation {i}"
            ),
            negative_prompt="lowres, blurry",
            steps=rng.choice([20, 25, 30]),
            sampler=rng.choice(SAMPLERS),
            cfg_scale=rng.choice([5.0, 7.0, 7.5]),
            seed=rng.randrange(2**32),
            model=rng.choice(MODELS),
            model_hash="0123456789",
        )
        day = folder / day_folder_name(created)
        if day not in numbers:
            day.mkdir(parents=True, exist_ok=True)
            numbers[day] = 0
        color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        info = png_info(params, **{CREATION_TIME_KEY: created.isoformat(timespec="seconds")})
        Image.new("RGB", (32, 32), color).save(
            day / file_name(numbers[day], params.seed), format="PNG", pnginfo=info
        )
        numbers[day] += 1


def report(label: str, seconds: float, results: dict[str, float]) -> None:
    results[label] = seconds
    print(f"{label:<48} {seconds * 1000:9.1f} ms", flush=True)


def timed(label: str, fn: Callable[[], object], results: dict[str, float]) -> object:
    begin = time.perf_counter()
    value = fn()
    report(label, time.perf_counter() - begin, results)
    return value


def run(folder: Path, count: int) -> dict[str, float]:
    results: dict[str, float] = {}
    index_file = folder / ".gallery-index.sqlite"
    if not index_file.exists():
        timed(
            f"write {count} PNGs with infotext (setup)", lambda: make_images(folder, count), results
        )
        store = timed("first open: rebuild index from PNGs", lambda: GalleryStore(folder), results)
        assert isinstance(store, GalleryStore)
        store.close()

    store = timed(
        "open store (healthy index, scan for changes)", lambda: GalleryStore(folder), results
    )
    assert isinstance(store, GalleryStore)
    store.close()
    store = timed(
        "open store (healthy index, no scan)",
        lambda: GalleryStore(folder, scan_on_open=False),
        results,
    )
    assert isinstance(store, GalleryStore)
    print(f"{'images indexed':<48} {store.count():9d}")

    searches = []
    for word in ("cat", "oil paint", "lighthouse fog", "variation 99"):
        begin = time.perf_counter()
        store.query(text=word, limit=200)
        store.count(text=word)
        searches.append(time.perf_counter() - begin)
    report("store search (query 200 + count), median", statistics.median(searches), results)

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from sd_desktop.ui.gallery_view import GalleryWidget

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as cache_dir:

        def open_widget() -> GalleryWidget:
            widget = GalleryWidget(store, thumbnails=ThumbnailCache(cache_dir))
            widget.resize(1400, 900)
            widget.show()
            app.processEvents()
            return widget

        widget = timed("open gallery widget (model populated, shown)", open_widget, results)
        assert isinstance(widget, GalleryWidget)
        print(f"{'rows in the grid model':<48} {widget.model.rowCount():9d}")

        def first_screen_thumbnails() -> None:
            deadline = time.perf_counter() + 30
            widget.grid.viewport().repaint()
            while not widget.loader.is_idle() and time.perf_counter() < deadline:
                app.processEvents()
                time.sleep(0.001)
            app.processEvents()

        timed("thumbnails of the first screen (cold cache)", first_screen_thumbnails, results)

        def scroll_through() -> None:
            bar = widget.grid.verticalScrollBar()
            for step in range(0, 101, 5):
                bar.setValue(bar.maximum() * step // 100)
                widget.grid.viewport().repaint()
                app.processEvents()

        timed("scroll top to bottom in 20 jumps (repaint each)", scroll_through, results)
        first_screen_thumbnails()  # let the last thumbnails finish
        timed("same again, thumbnails now cached on disk", scroll_through, results)

        def widget_search(text: str) -> None:
            widget.set_search_text(text)
            widget.grid.viewport().repaint()
            app.processEvents()

        timed(
            "search box 'lighthouse' (filter + repaint)",
            lambda: widget_search("lighthouse"),
            results,
        )
        print(f"{'rows after search':<48} {widget.model.rowCount():9d}")
        timed("clear search (all rows back + repaint)", lambda: widget_search(""), results)
        widget.shutdown()
        widget.close()
    store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--folder", type=Path, help="reuse/keep this gallery folder")
    args = parser.parse_args()
    if args.folder:
        args.folder.mkdir(parents=True, exist_ok=True)
        run(args.folder, args.count)
    else:
        with tempfile.TemporaryDirectory() as folder:
            run(Path(folder), args.count)


if __name__ == "__main__":
    main()
