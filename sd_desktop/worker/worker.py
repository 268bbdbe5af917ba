"""The worker: the one thread that runs the engine and holds the loaded model.

Layout: `Worker` is a QObject that stays in the UI thread as a thread-safe facade; its
`_EngineThread` (a QThread) runs a blocking loop over one queue of tasks and is the
only code in the app that touches torch. Keeping the facade in the UI thread means
`button.clicked.connect(worker.cancel)` runs at once instead of being queued to a thread
that is busy generating; the worker's signals are emitted from the engine thread, so
Qt delivers them to UI receivers as queued calls.

Tasks (model loads and generation jobs) run strictly in submission order: a job queued
before a model switch still runs on the old model.
"""

from __future__ import annotations

import gc
import itertools
import logging
import threading
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QThread, Signal

from sd_desktop.engine.threads import compute_threads, physical_cores
from sd_desktop.infotext import GenerationParams
from sd_desktop.worker.images import batch_to_qimage, pil_to_qimage
from sd_desktop.worker.jobs import Job, LoadModel, ModelInfo, PreviewMode, expand_batch_count

if TYPE_CHECKING:
    from sd_desktop.gallery import GalleryStore

log = logging.getLogger(__name__)

NO_MODEL_MESSAGE = "No model is loaded: choose one in the model list (or File > Open Model…)."


def default_torch_threads(cpu_count: int | None = None) -> int:
    """The engine's policy (engine/threads.py, measured there): every physical core
    computes on small machines, one is left to the UI from six cores up."""
    cores = physical_cores() if cpu_count is None else cpu_count
    return compute_threads(cores, reserve_for_ui=True)


def short_error(exc: BaseException) -> str:
    """A one-line message for an unexpected exception (the traceback goes to the log)."""
    if isinstance(exc, MemoryError):
        return "Out of memory: try a smaller size or batch, or close other programs."
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    message = f"{name}: {text}" if text else name
    if len(message) > 200:
        message = message[:197] + "…"
    return f"Generation failed unexpectedly ({message}). Details are in the log."


def freeze_long_lived_objects() -> None:
    """Exclude everything alive now (imported modules, the loaded model) from the cyclic GC.

    A full collection walks every tracked object while holding the GIL; with torch
    imported that walk takes hundreds of milliseconds and freezes the UI thread, whichever
    thread triggered it. Frozen objects are still freed by reference counting; only
    reference cycles among them are never collected, a small price for objects that live
    as long as the app or the model.
    """
    gc.freeze()


class _Stop:
    """Sentinel that ends the engine loop."""


class Worker(QObject):
    """Thread-safe front of the engine thread. Create it, call start(), and shutdown()
    before the application quits."""

    ready = Signal(str)  # engine imported; text describes device and threads
    model_loading = Signal(float, str)  # fraction 0..1, message
    model_loaded = Signal(object)  # ModelInfo
    model_failed = Signal(str)
    job_started = Signal(int)  # job id
    step_progress = Signal(int, int, int, float, object)  # id, step, total, s/it, QImage|None
    image_ready = Signal(int, int, object)  # id, index in batch, QImage (before saving)
    image_saved = Signal(int, object)  # id, GalleryItem
    job_finished = Signal(int)
    job_failed = Signal(int, str)
    job_cancelled = Signal(int)
    queue_changed = Signal(int)  # tasks waiting (not counting the running one)

    def __init__(
        self,
        gallery: GalleryStore | None,
        parent: QObject | None = None,
        *,
        device: str = "auto",
        dtype: str = "auto",
        torch_threads: int | None = None,
        model_hash: Callable[[Path], str] | None = None,
    ) -> None:
        super().__init__(parent)
        self._gallery = gallery
        self._model_hash = model_hash
        self._device = device
        self._dtype = dtype
        self._torch_threads = torch_threads or default_torch_threads()
        self._cond = threading.Condition()
        self._tasks: deque[Job | LoadModel | _Stop] = deque()
        self._ids = itertools.count(1)
        self._running: Job | None = None
        self._running_load: LoadModel | None = None
        self._cancel_id: int | None = None
        self._current_step = 0
        self._thread = _EngineThread(self)
        # Engine-thread state; only the engine thread touches these.
        self._model: Any = None
        self._model_info: ModelInfo | None = None
        self._ready_text: str | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if not self._thread.isRunning():
            self._thread.start()

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel everything, stop the thread and wait for it. True when it stopped."""
        with self._cond:
            dropped = [t.id for t in self._tasks if isinstance(t, Job)]
            self._tasks.clear()
            self._tasks.append(_Stop())
            if self._running is not None:
                self._cancel_id = self._running.id
            self._cond.notify_all()
        for job_id in dropped:
            self.job_cancelled.emit(job_id)
        if not self._thread.isRunning():
            return True
        return self._thread.wait(timeout_ms)

    def is_running(self) -> bool:
        return self._thread.isRunning()

    # ------------------------------------------------------------------ requests

    def set_gallery(self, gallery: GalleryStore | None) -> None:
        """Where the next images are saved (the user changed the output folder)."""
        with self._cond:
            self._gallery = gallery

    def load_model(self, path: str | Path, device: str | None = None) -> None:
        """Queue a model load; progress arrives as model_loading, then model_loaded or
        model_failed."""
        task = LoadModel(Path(path), device or self._device, self._dtype)
        self._enqueue([task])

    def submit(self, job: Job) -> list[int]:
        """Queue a job (expanded by its batch count); returns the new job ids in order."""
        with self._cond:
            first = next(self._ids)
            jobs = expand_batch_count(job, first)
            # Reserve the ids the expansion used so the next submit does not reuse them.
            for _ in range(len(jobs) - 1):
                next(self._ids)
        self._enqueue(jobs)
        return [j.id for j in jobs]

    def cancel(self, whole_batch: bool = True) -> bool:
        """Stop the running job before its next UNet call. With `whole_batch`, the queued
        rest of its batch count goes too (what a user means by Cancel). Other queued
        jobs still run. Returns whether a job was running."""
        with self._cond:
            job = self._running
            if job is None:
                return False
            self._cancel_id = job.id
            dropped = []
            if whole_batch:
                dropped = [t.id for t in self._tasks if isinstance(t, Job) and t.group == job.group]
                kept = [t for t in self._tasks if not (isinstance(t, Job) and t.id in dropped)]
                self._tasks = deque(kept)
            length = self._queued_locked()
        for job_id in dropped:
            self.job_cancelled.emit(job_id)
        if dropped:
            self.queue_changed.emit(length)
        return True

    def clear_queue(self) -> list[int]:
        """Drop every queued job (not model loads, not the running job); returns their ids."""
        with self._cond:
            dropped = [t.id for t in self._tasks if isinstance(t, Job)]
            self._tasks = deque(t for t in self._tasks if not isinstance(t, Job))
            length = self._queued_locked()
        for job_id in dropped:
            self.job_cancelled.emit(job_id)
        self.queue_changed.emit(length)
        return dropped

    def cancel_all(self) -> None:
        self.clear_queue()
        self.cancel(whole_batch=False)

    # ------------------------------------------------------------------ state

    def queue_length(self) -> int:
        with self._cond:
            return self._queued_locked()

    def running_job_id(self) -> int | None:
        with self._cond:
            return self._running.id if self._running is not None else None

    def current_step(self) -> int:
        """The last step the running job finished (0 before its first)."""
        with self._cond:
            return self._current_step

    def is_busy(self) -> bool:
        with self._cond:
            return (
                self._running is not None
                or self._running_load is not None
                or bool(self._queued_locked())
            )

    def is_loading_model(self) -> bool:
        """A load is running or queued: a job submitted now will have a model to run on
        unless that load fails."""
        with self._cond:
            return self._running_load is not None or any(
                isinstance(t, LoadModel) for t in self._tasks
            )

    def ready_text(self) -> str | None:
        """What `ready` said, or None while the engine is still starting."""
        with self._cond:
            return self._ready_text

    def model_info(self) -> ModelInfo | None:
        return self._model_info

    @property
    def torch_threads(self) -> int:
        return self._torch_threads

    def _queued_locked(self) -> int:
        return sum(1 for t in self._tasks if not isinstance(t, _Stop))

    def _enqueue(self, tasks: list[Job | LoadModel]) -> None:
        with self._cond:
            if any(isinstance(t, _Stop) for t in self._tasks):
                stopped = True
            else:
                stopped = False
                self._tasks.extend(tasks)
                self._cond.notify_all()
            length = self._queued_locked()
        if stopped:
            for task in tasks:
                if isinstance(task, Job):
                    self.job_cancelled.emit(task.id)
            return
        self.queue_changed.emit(length)

    # ------------------------------------------------------------------ engine thread

    def _take(self) -> Job | LoadModel | _Stop:
        with self._cond:
            while not self._tasks:
                self._cond.wait()
            task = self._tasks.popleft()
            if isinstance(task, Job):
                self._running = task
                self._current_step = 0
            elif isinstance(task, LoadModel):
                self._running_load = task
            length = self._queued_locked()
        if not isinstance(task, _Stop):
            self.queue_changed.emit(length)
        return task

    def _done(self) -> None:
        with self._cond:
            self._running = None
            self._running_load = None
            self._cancel_id = None

    def _should_cancel(self, job_id: int) -> bool:
        with self._cond:
            return self._cancel_id == job_id

    def _loop(self) -> None:
        """The engine thread's whole life: import the engine, then serve tasks.

        A task's last signal is sent only after the running state is cleared, so a UI
        reacting to job_finished or model_failed already sees the worker as free.
        """
        try:
            self._setup_engine()
        except Exception as exc:  # a broken install: report it once, keep failing jobs
            log.exception("Could not start the engine")
            self.model_failed.emit(f"The engine could not start: {short_error(exc)}")
        while True:
            task = self._take()
            if isinstance(task, _Stop):
                break
            report: Callable[[], None] = lambda: None  # noqa: E731
            try:
                if isinstance(task, LoadModel):
                    report = self._run_load(task)
                else:
                    report = self._run_job(task)
            finally:
                self._done()
                report()
        self._model = None
        self._model_info = None

    def _setup_engine(self) -> None:
        import torch

        torch.set_num_threads(self._torch_threads)
        import sd_desktop.engine.model  # noqa: F401  (pay the import cost here, once)
        import sd_desktop.engine.pipeline  # noqa: F401

        freeze_long_lived_objects()
        text = f"torch {torch.__version__}, {self._torch_threads} CPU threads"
        with self._cond:
            self._ready_text = text
        self.ready.emit(text)

    def _run_load(self, task: LoadModel) -> Callable[[], None]:
        """Load a model; returns the final signal to send (model_loaded or model_failed)."""
        from sd_desktop.engine.checkpoints.checkpoint import describe
        from sd_desktop.engine.errors import EngineError
        from sd_desktop.engine.model import load_model

        name = task.path.name

        def failed(message: str) -> Callable[[], None]:
            return lambda: self.model_failed.emit(message)

        self.model_loading.emit(0.0, f"Checking {name}")
        try:
            # Headers first: a damaged or unsupported file must not unload a working model.
            info = describe(task.path)
            if info.supported is False:
                return failed(f"{name}: {info.family}")
            self._model = None
            self._model_info = None
            model = load_model(
                task.path,
                device=task.device,
                dtype=task.dtype,
                progress=lambda f, m: self.model_loading.emit(float(f), m),
            )
        except EngineError as exc:
            return failed(str(exc))
        except MemoryError:
            return failed(f"Not enough memory to load {name}.")
        except OSError as exc:
            return failed(f"Cannot read {name}: {exc.strerror or exc}.")
        except Exception as exc:
            log.error("Loading %s failed:\n%s", task.path, traceback.format_exc())
            return failed(f"Could not load {name}: {short_error(exc)}")
        self._model = model
        freeze_long_lived_objects()
        info_out = ModelInfo(
            name=model.name,
            path=Path(model.path),
            family=model.config.family_name,
            in_channels=int(model.config.unet.in_channels),
            device=str(model.device),
            dtype=model.dtype_name,
            load_seconds=float(model.load_seconds),
        )
        self._model_info = info_out
        return lambda: self.model_loaded.emit(info_out)

    def _run_job(self, job: Job) -> Callable[[], None]:
        """Run one job; returns its final signal (finished, failed or cancelled)."""
        from sd_desktop.engine.errors import CancelledError, EngineError

        job_id = job.id
        if self._should_cancel(job_id):
            return lambda: self.job_cancelled.emit(job_id)
        self.job_started.emit(job_id)
        if self._model is None:
            return lambda: self.job_failed.emit(job_id, NO_MODEL_MESSAGE)
        try:
            self._generate(job)
        except CancelledError:
            return lambda: self.job_cancelled.emit(job_id)
        except (EngineError, _SaveFailed) as exc:
            message = str(exc)
            return lambda: self.job_failed.emit(job_id, message)
        except Exception as exc:
            log.error("Job %d failed:\n%s", job_id, traceback.format_exc())
            message = short_error(exc)
            return lambda: self.job_failed.emit(job_id, message)
        return lambda: self.job_finished.emit(job_id)

    def _generate(self, job: Job) -> None:
        from sd_desktop.engine.pipeline import generate

        model = self._model
        timing = _StepTimer()

        def on_step(progress: Any) -> None:
            with self._cond:
                self._current_step = progress.step
            per_it = timing.seconds_per_it(progress.step, progress.elapsed)
            image = self._preview(job, model, progress)
            self.step_progress.emit(job.id, progress.step, progress.total, per_it, image)

        result = generate(
            model,
            job.request,
            callback=on_step,
            should_cancel=lambda: self._should_cancel(job.id),
        )
        for index, image in enumerate(result.images):
            self.image_ready.emit(job.id, index, pil_to_qimage(image))
        if job.save_to_gallery:
            self._save(job, result, model)

    def _preview(self, job: Job, model: Any, progress: Any) -> Any:
        """A QImage of the x0 estimate, or None when this step shows none. A failing
        preview never fails the job: it is logged and skipped."""
        kind = job.preview.wants_preview(progress.step, progress.total)
        if kind is PreviewMode.OFF:
            return None
        try:
            if kind is PreviewMode.FAST:
                pixels = model.preview_fast(progress.denoised)
            else:
                pixels = model.preview_full(progress.denoised)
            return batch_to_qimage(pixels.numpy())
        except Exception:
            log.warning("Preview failed at step %d:\n%s", progress.step, traceback.format_exc())
            return None

    def _save(self, job: Job, result: Any, model: Any) -> None:
        from sd_desktop.gallery import GalleryError

        with self._cond:
            gallery = self._gallery
        if gallery is None:
            return
        params = GenerationParams.from_request(
            result.request, seed=result.seed, model=model.name, model_hash=self._hash_of(model)
        )
        count = len(result.images)
        for index, image in enumerate(result.images):
            item_params = params
            if count > 1:
                extra = {**params.extra, "Batch size": str(count), "Batch pos": str(index)}
                item_params = replace(params, extra=extra)
            try:
                item = gallery.save(image, item_params)
            except GalleryError as exc:
                # The image is on the canvas already (image_ready); the user can still
                # save it by hand, so say exactly that.
                raise _SaveFailed(f"{exc} The image is still on the canvas.") from exc
            self.image_saved.emit(job.id, item)

    def _hash_of(self, model: Any) -> str:
        """A1111's short model hash: from the shared hash cache when one was given (a big
        file is then read once ever, not once per session), else computed by the model."""
        if self._model_hash is not None:
            try:
                return self._model_hash(Path(model.path))
            except Exception:
                log.warning("Hash cache failed for %s:\n%s", model.path, traceback.format_exc())
        return str(model.short_hash)


class _SaveFailed(Exception):
    """Saving failed after generation; reported as the job's failure."""


class _StepTimer:
    """Seconds per iteration, measured from the first step on so that prompt encoding
    (and model warm-up) does not inflate the estimate."""

    def __init__(self) -> None:
        self._first: tuple[int, float] | None = None

    def seconds_per_it(self, step: int, elapsed: float) -> float:
        if self._first is None or step <= self._first[0]:
            self._first = (step, elapsed)
            return elapsed / max(step, 1)
        first_step, first_elapsed = self._first
        return (elapsed - first_elapsed) / (step - first_step)


class _EngineThread(QThread):
    """Runs Worker._loop; no Qt event loop, so nothing may be queued *to* this thread."""

    def __init__(self, worker: Worker) -> None:
        super().__init__(worker)
        self._worker = worker
        self.setObjectName("sd-desktop engine")

    def run(self) -> None:  # noqa: D401 - Qt override
        self._worker._loop()
