"""The generation worker on a tiny random model: queueing, previews, saving, cancelling,
and every way a job can fail without taking the worker down."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from factories import build_tiny_sd
from sd_desktop.engine.request import GenerationRequest
from sd_desktop.gallery import GalleryError, GalleryStore
from sd_desktop.infotext import read_png_params
from sd_desktop.worker import (
    NO_MODEL_MESSAGE,
    Job,
    PreviewMode,
    PreviewOptions,
    Worker,
    default_torch_threads,
    expand_batch_count,
)
from sd_desktop.worker.images import rgb_to_qimage, tile_batch

WAIT_MS = 60_000


class Recorder:
    """Every worker signal, in arrival order, as seen by the UI thread."""

    def __init__(self, worker: Worker) -> None:
        self.events: list[tuple] = []
        self.threads: set[str] = set()
        for name in (
            "model_loaded",
            "model_failed",
            "job_started",
            "step_progress",
            "image_ready",
            "image_saved",
            "job_finished",
            "job_failed",
            "job_cancelled",
        ):
            getattr(worker, name).connect(lambda *args, n=name: self._record(n, args))

    def _record(self, name: str, args: tuple) -> None:
        self.threads.add(threading.current_thread().name)
        self.events.append((name, *args))

    def of(self, name: str, job_id: int | None = None) -> list[tuple]:
        return [e[1:] for e in self.events if e[0] == name and (job_id is None or e[1] == job_id)]


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sd(tmp_path_factory).single_file


@pytest.fixture
def gallery(tmp_path: Path) -> Iterator[GalleryStore]:
    store = GalleryStore(tmp_path / "gallery")
    yield store
    store.close()


@pytest.fixture
def worker(qtbot, gallery: GalleryStore) -> Iterator[Worker]:  # type: ignore[no-untyped-def]
    w = Worker(gallery, device="cpu", dtype="fp32")
    w.start()
    yield w
    assert w.shutdown(), "the engine thread did not stop"


@pytest.fixture
def loaded(qtbot, worker: Worker, tiny_path: Path) -> Worker:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(worker.model_loaded, timeout=WAIT_MS) as blocker:
        worker.load_model(tiny_path)
    assert blocker.args[0].family == "SD 1.x"
    return worker


def request(**kwargs: object) -> GenerationRequest:
    base: dict[str, object] = dict(
        prompt="a lighthouse", sampler="euler", steps=4, width=64, height=64, seed=42
    )
    base.update(kwargs)
    return GenerationRequest(**base)  # type: ignore[arg-type]


def wait_done(qtbot, rec: Recorder, job_id: int) -> None:  # type: ignore[no-untyped-def]
    def done() -> None:
        assert any(
            e[0] in ("job_finished", "job_failed", "job_cancelled") and e[1] == job_id
            for e in rec.events
        )

    qtbot.waitUntil(done, timeout=WAIT_MS)


# ---------------------------------------------------------------- pure helpers


def test_batch_count_runs_consecutive_seeds() -> None:
    job = Job(request(seed=2**32 - 2), batch_count=3)
    jobs = expand_batch_count(job, first_id=10)
    assert [j.request.seed for j in jobs] == [2**32 - 2, 2**32 - 1, 0]
    assert [j.id for j in jobs] == [10, 11, 12]
    assert {j.group for j in jobs} == {10}
    assert [(j.batch_index, j.batch_total, j.batch_count) for j in jobs] == [
        (0, 3, 1),
        (1, 3, 1),
        (2, 3, 1),
    ]
    random_jobs = expand_batch_count(Job(request(seed=-1), batch_count=2), first_id=1)
    assert [j.request.seed for j in random_jobs] == [-1, -1]


def test_preview_schedule() -> None:
    fast = PreviewOptions(PreviewMode.FAST)
    assert [fast.wants_preview(s, 4) for s in (1, 4)] == [PreviewMode.FAST] * 2
    full = PreviewOptions(PreviewMode.FULL, full_every=2)
    got = [full.wants_preview(s, 6) for s in range(1, 7)]
    off, fl = PreviewMode.OFF, PreviewMode.FULL
    assert got == [off, fl, off, fl, off, off]  # the last step is the result itself
    assert PreviewOptions(PreviewMode.OFF).wants_preview(1, 1) is off
    assert PreviewMode.parse("nonsense") is PreviewMode.FAST
    assert PreviewMode.parse("full") is PreviewMode.FULL


def test_torch_threads_leave_a_core_on_bigger_machines() -> None:
    assert default_torch_threads(1) == 1
    assert default_torch_threads(2) == 2
    assert default_torch_threads(4) == 4
    assert default_torch_threads(8) == 7


def test_qimage_owns_its_pixels(qapp) -> None:  # type: ignore[no-untyped-def]
    pixels = np.zeros((3, 5, 3), dtype=np.uint8)
    pixels[1, 2] = (10, 200, 30)
    image = rgb_to_qimage(pixels)
    pixels[:] = 255  # the QImage must not see later changes (it holds a copy)
    del pixels
    assert (image.width(), image.height()) == (5, 3)
    colour = image.pixelColor(2, 1)
    assert (colour.red(), colour.green(), colour.blue()) == (10, 200, 30)
    batch = np.arange(3 * 2 * 2 * 3, dtype=np.uint8).reshape(3, 2, 2, 3)
    grid = tile_batch(batch)
    assert grid.shape == (4, 4, 3)  # 2x2 grid, one empty cell
    assert (grid[0:2, 2:4] == batch[1]).all() and (grid[2:4, 2:4] == 0).all()


# ---------------------------------------------------------------- generation


def test_generate_previews_every_step_and_saves(qtbot, loaded: Worker, gallery) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder(loaded)
    saved: list = []
    loaded.image_saved.connect(lambda _id, item: saved.append(item))
    [job_id] = loaded.submit(Job(request(steps=5, seed=1234), PreviewOptions(PreviewMode.FAST)))
    wait_done(qtbot, rec, job_id)
    assert rec.of("job_failed") == []
    steps = rec.of("step_progress", job_id)
    assert [s[1] for s in steps] == [1, 2, 3, 4, 5]
    assert all(s[2] == 5 and s[3] > 0 for s in steps)
    previews = [s[4] for s in steps]
    assert all(isinstance(p, QImage) and (p.width(), p.height()) == (8, 8) for p in previews)
    assert rec.threads == {threading.main_thread().name}  # delivered to the UI thread
    [ready] = rec.of("image_ready", job_id)
    assert (ready[2].width(), ready[2].height()) == (64, 64)
    [item] = saved
    assert item.path.is_file()
    params = read_png_params(item.path)
    assert params is not None
    assert (params.seed, params.steps, params.sampler, params.prompt) == (
        1234,
        5,
        "Euler",
        "a lighthouse",
    )
    assert params.model == "txt2img-small" and len(params.model_hash) == 10
    assert gallery.count() == 1
    # The saved file is the image the UI was shown.
    on_disk = np.asarray(Image.open(item.path).convert("RGB"))
    shown = ready[2].convertToFormat(QImage.Format.Format_RGB888)
    shown_px = np.frombuffer(shown.constBits(), np.uint8).reshape(64, shown.bytesPerLine())
    assert (shown_px[:, : 64 * 3].reshape(64, 64, 3) == on_disk).all()
    order = [e[0] for e in rec.events if e[0] != "step_progress"]
    assert order == ["job_started", "image_ready", "image_saved", "job_finished"]


def test_batch_count_and_random_seeds(qtbot, loaded: Worker) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder(loaded)
    ids = loaded.submit(Job(request(steps=1, seed=7), PreviewOptions(PreviewMode.OFF), 3))
    random_ids = loaded.submit(Job(request(steps=1, seed=-1), PreviewOptions(PreviewMode.OFF), 2))
    assert len(ids) == 3 and len(random_ids) == 2 and ids[-1] < random_ids[0]
    wait_done(qtbot, rec, random_ids[-1])
    seeds = {e[0]: e[1].seed for e in rec.of("image_saved")}
    assert [seeds[i] for i in ids] == [7, 8, 9]
    drawn = [seeds[i] for i in random_ids]
    assert all(0 <= s < 2**32 for s in drawn) and drawn[0] != drawn[1]
    assert all(s[4] is None for s in rec.of("step_progress"))  # previews off
    assert [e[0] for e in rec.of("job_finished")] == ids + random_ids


def test_full_previews_and_batch_grid(qtbot, loaded: Worker) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder(loaded)
    preview = PreviewOptions(PreviewMode.FULL, full_every=2)
    [job_id] = loaded.submit(Job(request(steps=5, batch_size=2), preview))
    wait_done(qtbot, rec, job_id)
    images = {s[1]: s[4] for s in rec.of("step_progress", job_id)}
    assert [k for k, v in images.items() if v is not None] == [2, 4]
    assert (images[2].width(), images[2].height()) == (128, 64)  # two 64x64 side by side
    assert len(rec.of("image_saved", job_id)) == 2


def test_cancel_stops_before_next_step_and_next_job_runs(qtbot, loaded: Worker) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder(loaded)
    gate = threading.Event()
    ui_steps: list[tuple[int, int]] = []
    first_id: list[int] = []

    def on_step_ui(job_id: int, step: int, *_: object) -> None:
        ui_steps.append((job_id, step))
        if job_id == first_id[0] and step == 2:
            assert loaded.cancel()
            gate.set()

    def hold_engine(job_id: int, step: int, *_: object) -> None:
        # Runs in the engine thread: wait until the UI has reacted to step 2, so the
        # test checks "stops before the next UNet call", not thread timing.
        if job_id == first_id[0] and step == 2:
            assert gate.wait(WAIT_MS / 1000)

    loaded.step_progress.connect(on_step_ui)  # queued to the UI thread: connected first
    loaded.step_progress.connect(hold_engine, Qt.ConnectionType.DirectConnection)
    first_id.extend(loaded.submit(Job(request(steps=10))))
    [second] = loaded.submit(Job(request(steps=3)))
    wait_done(qtbot, rec, second)
    assert [s for j, s in ui_steps if j == first_id[0]] == [1, 2]
    assert rec.of("job_cancelled") == [(first_id[0],)]
    assert rec.of("image_saved", first_id[0]) == []
    assert [s for j, s in ui_steps if j == second] == [1, 2, 3]
    assert rec.of("job_finished") == [(second,)]


def test_cancel_drops_rest_of_batch_and_clear_queue(qtbot, loaded: Worker) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder(loaded)
    gate = threading.Event()
    started = threading.Event()

    def hold(job_id: int, step: int, *_: object) -> None:
        started.set()
        gate.wait(WAIT_MS / 1000)

    loaded.step_progress.connect(hold, Qt.ConnectionType.DirectConnection)
    batch = loaded.submit(Job(request(steps=2), batch_count=3))
    others = loaded.submit(Job(request(steps=2), batch_count=2))
    assert started.wait(WAIT_MS / 1000)
    assert loaded.running_job_id() == batch[0] and loaded.queue_length() == 4
    assert loaded.cancel()  # the running job and the rest of its batch
    assert loaded.queue_length() == 2
    assert loaded.clear_queue() == others
    assert loaded.queue_length() == 0
    gate.set()
    wait_done(qtbot, rec, batch[0])
    cancelled = sorted(e[0] for e in rec.of("job_cancelled"))
    assert cancelled == sorted(batch + others)
    assert rec.of("job_finished") == []


def test_engine_error_fails_job_and_worker_continues(qtbot, loaded: Worker) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder(loaded)
    [bad] = loaded.submit(Job(request(width=60)))
    [good] = loaded.submit(Job(request(steps=1)))
    wait_done(qtbot, rec, good)
    [(_, message)] = rec.of("job_failed")
    assert "multiple of 8" in message and "Traceback" not in message
    assert rec.of("job_finished") == [(good,)]
    assert rec.of("job_started") == [(bad,), (good,)]


def test_unexpected_error_is_short_and_logged(qtbot, loaded: Worker, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    import sd_desktop.engine.pipeline as pipeline

    def explode(*_: object, **__: object) -> None:
        raise ZeroDivisionError("division by zero somewhere deep")

    rec = Recorder(loaded)
    monkeypatch.setattr(pipeline, "generate", explode)
    with caplog.at_level(logging.ERROR, logger="sd_desktop.worker.worker"):
        [job_id] = loaded.submit(Job(request()))
        wait_done(qtbot, rec, job_id)
    [(_, message)] = rec.of("job_failed")
    assert "ZeroDivisionError" in message and "\n" not in message
    assert "Traceback" in caplog.text and "explode" in caplog.text
    monkeypatch.undo()
    [again] = loaded.submit(Job(request(steps=1)))
    wait_done(qtbot, rec, again)
    assert rec.of("job_finished") == [(again,)]


def test_no_model_is_a_clear_failure(qtbot, worker: Worker) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder(worker)
    [job_id] = worker.submit(Job(request()))
    wait_done(qtbot, rec, job_id)
    assert rec.of("job_failed") == [(job_id, NO_MODEL_MESSAGE)]


def test_corrupt_model_keeps_the_working_one(qtbot, loaded: Worker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\xff" * 8 + b"{not json")
    with qtbot.waitSignal(loaded.model_failed, timeout=WAIT_MS) as blocker:
        loaded.load_model(corrupt)
    message = blocker.args[0]
    assert message and "\n" not in message and "Traceback" not in message
    assert loaded.model_info() is not None and loaded.model_info().name == "txt2img-small"
    rec = Recorder(loaded)
    [job_id] = loaded.submit(Job(request(steps=1)))
    wait_done(qtbot, rec, job_id)
    assert rec.of("job_finished") == [(job_id,)]


def test_save_failure_keeps_image_and_says_so(qtbot, loaded: Worker, gallery, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def refuse(*_: object, **__: object) -> None:
        raise GalleryError("Could not save the image in /x: No space left on device.")

    monkeypatch.setattr(gallery, "save", refuse)
    rec = Recorder(loaded)
    [job_id] = loaded.submit(Job(request(steps=1)))
    wait_done(qtbot, rec, job_id)
    assert len(rec.of("image_ready", job_id)) == 1
    [(_, message)] = rec.of("job_failed", job_id)
    assert "No space left" in message and "still on the canvas" in message
