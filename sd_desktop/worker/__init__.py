"""The generation worker: a QThread that owns the engine and the loaded model.

The UI never imports torch; it queues Job objects here and listens to the Worker's
signals.
"""

from sd_desktop.worker.jobs import (
    Job,
    LoadModel,
    ModelInfo,
    PreviewMode,
    PreviewOptions,
    expand_batch_count,
)
from sd_desktop.worker.worker import NO_MODEL_MESSAGE, Worker, default_torch_threads

__all__ = [
    "NO_MODEL_MESSAGE",
    "Job",
    "LoadModel",
    "ModelInfo",
    "PreviewMode",
    "PreviewOptions",
    "Worker",
    "default_torch_threads",
    "expand_batch_count",
]
