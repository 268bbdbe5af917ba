"""`sd-desktop --self-test`: prove that this installation can make a picture, end to end.

It must work where nothing but the app is installed (the frozen build has no
diffusers, no test files, no network), so the test model is written here from our
own engine modules: tiny UNet, VAE and CLIP configs, random weights from a fixed
seed, saved as an LDM-layout .safetensors. Then the real main window opens
(off-screen), loads it through the worker, generates one image with previews and
saves it to the gallery, exactly as a click on Generate does. Exit code 0 means
everything worked; anything else comes with a one-line reason.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sd_desktop.atomic_files import write_bytes_atomic

SIZE = 64
STEPS = 4
PROMPT = "a lighthouse on a cliff, self-test"
TIMEOUT_S = 180.0


class SelfTestError(Exception):
    """One step of the self-test failed; the message says which and why."""


# -- the tiny model ----------------------------------------------------------------------


def tiny_configs():
    """A ModelConfig shaped like SD 1.x but a few MB big (widths 32-64, 8x VAE)."""
    from sd_desktop.engine.networks.config import (
        ModelConfig,
        TextEncoderConfig,
        UNetConfig,
        VAEConfig,
    )

    return ModelConfig(
        family="sd1",
        unet=UNetConfig(
            model_channels=32,
            channel_mult=(1, 2),
            num_res_blocks=1,
            attention_levels=(0,),
            context_dim=32,
            transformer_depth=1,
        ),
        vae=VAEConfig(base_channels=32, channel_mult=(1, 1, 2, 2), num_res_blocks=1),
        text=TextEncoderConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64),
    )


def _randomize(module, generator) -> None:
    """Weights ~ N(0, 1/fan_in), norms ~ 1, biases small: lively but finite activations.

    Default inits zero some output layers, which would give a flat grey picture and
    hide a broken pipeline.
    """
    import torch

    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if name.endswith("bias"):
                param.copy_(0.05 * noise)
            elif param.ndim == 1:
                param.copy_(1.0 + 0.05 * noise)
            else:
                param.copy_(noise / param[0].numel() ** 0.5)


def write_tiny_model(path: Path, seed: int = 20240601) -> Path:
    """Write a random-weight SD 1.x checkpoint (LDM keys, fp32, ~15 MB) to `path`."""
    import torch
    from safetensors.torch import save
    from transformers import CLIPTextModel

    from sd_desktop.engine.checkpoints.keymap import TEXT_PREFIX, UNET_PREFIX, VAE_PREFIX
    from sd_desktop.engine.networks.text_encoder import clip_text_config
    from sd_desktop.engine.networks.unet import UNetModel
    from sd_desktop.engine.networks.vae import AutoencoderKL

    config = tiny_configs()
    generator = torch.Generator().manual_seed(seed)
    unet, vae = UNetModel(config.unet), AutoencoderKL(config.vae)
    text = CLIPTextModel(clip_text_config(config.text))
    state: dict[str, torch.Tensor] = {}
    for prefix, module in ((UNET_PREFIX, unet), (VAE_PREFIX, vae), (TEXT_PREFIX, text)):
        _randomize(module, generator)
        for key, tensor in module.state_dict().items():
            if not key.endswith("position_ids"):
                state[prefix + key] = tensor.detach().float().contiguous()
    write_bytes_atomic(path, save(state, metadata={"format": "pt"}), durable=False)
    return path


# -- checks -------------------------------------------------------------------------------


@dataclass
class Observed:
    """What the window and worker reported during the run."""

    ready: str = ""
    loaded: object = None
    failure: str = ""
    previews: int = 0
    finished: bool = False
    saved: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def check_image(path: Path, size: int = SIZE) -> str:
    """Raise SelfTestError unless `path` is a size x size picture with detail and infotext."""
    import numpy as np
    from PIL import Image

    from sd_desktop.infotext import read_png_params

    with Image.open(path) as img:
        img.load()
        if img.size != (size, size):
            raise SelfTestError(f"the image is {img.size[0]}x{img.size[1]}, not {size}x{size}")
        pixels = np.asarray(img.convert("RGB"), dtype=np.float32)
    if not np.isfinite(pixels).all():
        raise SelfTestError("the image has invalid pixel values")
    if pixels.std() < 2.0:
        raise SelfTestError(f"the image is blank (one flat colour, std {pixels.std():.2f})")
    params = read_png_params(path)
    if params is None or params.steps != STEPS or not params.prompt:
        raise SelfTestError("the saved PNG has no generation parameters (infotext)")
    return f"{size}x{size}, std {pixels.std():.1f}, infotext: steps {params.steps}"


# -- the run -------------------------------------------------------------------------------


def _wait(app, until: Callable[[], bool], seconds: float, what: str, seen: Observed) -> None:
    deadline = time.monotonic() + seconds
    while not until():
        if seen.failure:
            raise SelfTestError(f"{what}: {seen.failure}")
        if time.monotonic() > deadline:
            raise SelfTestError(f"{what}: nothing happened within {seconds:.0f} s")
        app.processEvents()
        time.sleep(0.01)


def run_self_test(report: Callable[[str], None] = print) -> int:
    """The whole self-test; returns the process exit code."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may touch the network
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="sd-desktop-self-test-") as tmp:
            summary = _run(Path(tmp), report)
    except SelfTestError as exc:
        report(f"self-test FAILED: {exc}")
        return 1
    except Exception as exc:  # a crash is a failed self-test: one line, then the details
        report(f"self-test FAILED: unexpected {type(exc).__name__}: {exc}")
        traceback.print_exc(file=sys.stderr)  # whoever runs a self-test needs the where
        return 1
    report(f"self-test OK in {time.perf_counter() - started:.1f} s: {summary}")
    return 0


def _run(root: Path, report: Callable[[str], None]) -> str:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["sd-desktop", "--self-test"])
    from sd_desktop.ui.main_window import MainWindow
    from sd_desktop.ui.settings import AppPaths

    seen = Observed()
    t0 = time.perf_counter()
    paths = AppPaths.under(root)
    model_path = write_tiny_model(paths.models_dir / "self-test-tiny.safetensors")
    seen.timings["tiny model written"] = time.perf_counter() - t0

    window = MainWindow(paths)
    try:
        worker = window.worker
        worker.ready.connect(lambda text: setattr(seen, "ready", text))
        worker.model_loaded.connect(lambda info: setattr(seen, "loaded", info))
        worker.model_failed.connect(lambda msg: setattr(seen, "failure", f"model: {msg}"))
        worker.job_failed.connect(lambda _id, msg: setattr(seen, "failure", f"job: {msg}"))
        worker.step_progress.connect(
            lambda _id, _s, _t, _p, image: setattr(
                seen, "previews", seen.previews + (image is not None)
            )
        )
        worker.image_saved.connect(lambda _id, item: seen.saved.append(Path(item.path)))
        worker.job_finished.connect(lambda _id: setattr(seen, "finished", True))
        window.show()
        seen.ready = worker.ready_text() or seen.ready
        _wait(app, lambda: bool(seen.ready), TIMEOUT_S, "starting the engine", seen)
        report(f"engine: {seen.ready}")

        window.load_model(model_path)
        _wait(app, lambda: seen.loaded is not None, TIMEOUT_S, "loading the model", seen)
        report(f"model loaded: {model_path.name}")

        window.settings.preview_mode = "full"
        window.settings.preview_every = 1
        window.panel.set_values(
            {
                "prompt": PROMPT,
                "mode": "txt2img",
                "steps": STEPS,
                "width": SIZE,
                "height": SIZE,
                "seed": 1234,
                "batch_count": 1,
                "batch_size": 1,
                "sampler": "euler_a",
            }
        )
        if not window.generate():
            raise SelfTestError(f"Generate was refused: {window.why_cannot_generate()}")
        _wait(app, lambda: seen.finished and bool(seen.saved), TIMEOUT_S, "generating", seen)
        if seen.previews < 1:
            raise SelfTestError("no live preview arrived while generating")
        detail = check_image(seen.saved[0])
        return f"{detail}, {seen.previews} previews, saved {seen.saved[0].name}"
    finally:
        window.close()
        window.shutdown()
        window.deleteLater()
        app.processEvents()


def main() -> int:
    return run_self_test(
        lambda line: print(line, file=sys.stderr if "FAILED" in line else sys.stdout)
    )
