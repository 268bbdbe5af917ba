"""Regenerate the screenshots in this folder: idle, running, inpaint and gallery.

Run from the repository root under a virtual X server (needs the dev extras, which
build the random-weight test models, and ImageMagick's `import`):

    xvfb-run -s "-screen 0 1440x900x24" .venv/bin/python docs/screenshots/capture.py

With `--small DIR` it also shoots the window at 1024×720 (canvas with the bar a dropped
PNG brings, welcome panel, gallery) into DIR, to check the small-window layout.

Everything (settings, gallery, models) lives in a temporary folder. The models have
random weights (no model hub is reachable), so the pictures are coloured noise; what
the screenshots show is the app around them.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

PROMPTS = [
    "a lighthouse on a cliff at dawn, oil painting",
    "a red fox in fresh snow, telephoto",
    "an old map with a compass rose, sepia",
    "a koi pond in autumn, watercolour",
    "a harbour at dusk with fishing boats",
    "a field of sunflowers under a storm sky",
    "portrait of an astronaut, studio lighting",
    "a cosy reading nook with a cat, warm light",
]


def landscape(size: int = 512) -> Image.Image:
    """A source picture for the inpaint shot: sky, sun, hills and a lake."""
    img = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(img)
    for y in range(size):
        t = y / size
        draw.line(
            [(0, y), (size, y)], fill=(int(90 + 120 * t), int(140 + 70 * t), int(230 - 40 * t))
        )
    draw.ellipse((340, 70, 420, 150), fill=(255, 214, 120))
    for i, (base, colour) in enumerate(((300, (70, 120, 80)), (340, (50, 100, 60)))):
        points = [(x, base + 30 * math.sin(x / (60 + 25 * i) + i)) for x in range(0, size + 8, 8)]
        draw.polygon([(0, size), *points, (size, size)], fill=colour)
    draw.rectangle((0, 400, size, size), fill=(60, 110, 150))
    for x in range(0, size, 24):
        draw.line([(x, 420 + (x % 48) // 4), (x + 14, 420 + (x % 48) // 4)], fill=(150, 190, 220))
    return img.filter(ImageFilter.GaussianBlur(1.2))


def main() -> int:
    small_dir = Path(sys.argv[sys.argv.index("--small") + 1]) if "--small" in sys.argv else None
    root = Path(tempfile.mkdtemp(prefix="sd-desktop-shots-"))
    for var, sub in (
        ("SD_DESKTOP_CONFIG_DIR", "config"),
        ("SD_DESKTOP_DATA_DIR", "data"),
        ("SD_DESKTOP_CACHE_DIR", "cache"),
        ("SD_DESKTOP_GALLERY_DIR", "gallery"),
    ):
        os.environ[var] = str(root / sub)

    from factories import build_tiny_sd

    class _Factory:
        def getbasetemp(self) -> Path:
            return root

    small = build_tiny_sd(_Factory(), size="small")
    medium = build_tiny_sd(_Factory(), size="medium")
    models = root / "data" / "models"
    models.mkdir(parents=True)
    (models / "dreamlike-random-v1.safetensors").symlink_to(medium.single_file)
    (models / "tiny-random-sd15.safetensors").symlink_to(small.single_file)

    from PySide6.QtCore import QPointF, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from sd_desktop.app import apply_theme
    from sd_desktop.engine.request import GenerationRequest, Mode
    from sd_desktop.ui.app_icons import app_icon
    from sd_desktop.ui.main_window import MainWindow
    from sd_desktop.worker import Job, PreviewMode, PreviewOptions

    app = QApplication(["sd-desktop"])
    app.setApplicationDisplayName("SD Desktop")
    apply_theme(app)
    app.setWindowIcon(app_icon())
    window = MainWindow()
    window.setGeometry(0, 0, 1440, 900)
    window.show()
    panel, worker = window.panel, window.worker

    def shoot(name: str, folder: Path = OUT, size: str = "") -> None:
        QApplication.processEvents()
        crop = ["-crop", f"{size}+0+0", "+repage"] if size else []
        subprocess.run(["import", "-window", "root", *crop, str(folder / name)], check=True)
        print("saved", folder / name, flush=True)

    steps: list[object] = []

    def fill_gallery(_info: object) -> None:
        worker.model_loaded.disconnect(fill_gallery)
        for i in range(24):
            request = GenerationRequest(
                prompt=PROMPTS[i % len(PROMPTS)],
                sampler="euler_a",
                steps=6,
                width=192,
                height=192 if i % 3 else 256,
                seed=1000 + i,
            )
            worker.submit(Job(request, PreviewOptions(PreviewMode.OFF)))
        worker.job_finished.connect(after_fill)

    def after_fill(_job: int) -> None:
        if worker.is_busy():
            return
        worker.job_finished.disconnect(after_fill)
        worker.model_loaded.connect(idle_shot)
        window.load_model(models / "dreamlike-random-v1.safetensors")

    def idle_shot(_info: object) -> None:
        worker.model_loaded.disconnect(idle_shot)
        panel.prompt_edit.setPlainText(
            "a lighthouse on a cliff at dawn, dramatic clouds, oil painting, highly detailed"
        )
        panel.negative_edit.setPlainText("blurry, lowres, watermark")
        panel.set_size(512, 512)
        panel.steps.setValue(60)
        panel.set_seed(-1)
        panel.sampler_combo.setCurrentIndex(panel.sampler_combo.findData("dpmpp_2m_karras"))
        window.canvas.clear_image()
        QTimer.singleShot(600, lambda: (shoot("idle.png"), start_running()))

    def start_running() -> None:
        window.set_preview_mode(PreviewMode.FAST)
        worker.step_progress.connect(on_step)
        panel.generate_button.click()
        panel.generate_button.click()  # a second job waits in the queue

    def on_step(_job: int, step: int, total: int, *_: object) -> None:
        steps.append(step)
        if step == 24 and len(steps) == 24:
            QTimer.singleShot(250, running_shot)

    def running_shot() -> None:
        shoot("running.png")
        worker.step_progress.disconnect(on_step)
        worker.job_cancelled.connect(after_cancel)
        window.clear_queue()
        window.cancel()

    def after_cancel(_job: int) -> None:
        if not worker.is_busy():
            worker.job_cancelled.disconnect(after_cancel)
            QTimer.singleShot(300, inpaint_shot)

    def inpaint_shot() -> None:
        window.banner.dismiss()
        panel.set_mode(Mode.INPAINT)
        panel.prompt_edit.setPlainText("a small wooden sailing boat on the lake")
        window.canvas.set_image(landscape())
        window.canvas.set_brush_size(56)
        canvas = window.canvas

        def at(x: float, y: float):
            return canvas.image_to_widget(QPointF(x, y)).toPoint()

        QTest.mousePress(
            canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(150, 430)
        )
        for x in range(150, 330, 10):
            QTest.mouseMove(canvas, at(x, 430 + 18 * math.sin(x / 40)))
        QTest.mouseRelease(
            canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(330, 440)
        )
        QTest.mouseMove(canvas, at(360, 300))
        QTimer.singleShot(500, lambda: (shoot("inpaint.png"), gallery_shot()))

    def gallery_shot() -> None:
        window.tabs.setCurrentIndex(1)
        window.gallery.grid.setCurrentIndex(window.gallery.model.index(2, 0))
        QTimer.singleShot(1500, lambda: (shoot("gallery.png"), small_shots()))

    def small_shots() -> None:
        if small_dir is None:
            finish()
            return
        small_dir.mkdir(parents=True, exist_ok=True)
        window.setGeometry(0, 0, 1024, 720)
        window.tabs.setCurrentIndex(0)
        window.panel.set_mode(Mode.TXT2IMG)
        window.canvas.clear_image()
        window.panel.set_mode(Mode.TXT2IMG)
        window._offer_dropped_parameters(window.gallery_store.query()[0].path)

        def welcome() -> None:
            shoot("small-canvas.png", small_dir, "1024x720")
            window.drop_offer.dismiss()
            window.canvas_stack.setCurrentWidget(window.welcome)
            QTimer.singleShot(400, gallery)

        def gallery() -> None:
            shoot("small-welcome.png", small_dir, "1024x720")
            window.canvas_stack.setCurrentWidget(window.canvas_page)
            window.tabs.setCurrentIndex(1)
            QTimer.singleShot(
                600, lambda: (shoot("small-gallery.png", small_dir, "1024x720"), finish())
            )

        QTimer.singleShot(600, welcome)

    def finish() -> None:
        window.shutdown()
        app.quit()

    worker.model_loaded.connect(fill_gallery)
    window.load_model(models / "tiny-random-sd15.safetensors")
    QTimer.singleShot(600_000, app.quit)
    app.exec()
    return 0


if __name__ == "__main__":
    sys.exit(main())
