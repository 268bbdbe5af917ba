"""Render resources/icons/sd-desktop.svg to the PNG sizes desktops and installers ask for,
plus the Windows .ico and macOS .icns that PyInstaller embeds (made with Pillow).

Run after editing the SVG: `python packaging/render_icons.py`. The results are
committed, so nothing needs rendering at install or build time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"
SIZES = (16, 32, 48, 64, 128, 256, 512)


def render(svg: Path, out_dir: Path, sizes: tuple[int, ...] = SIZES) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg} is not a valid SVG")
    written = []
    for size in sizes:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        renderer.render(painter)
        painter.end()
        target = out_dir / f"sd-desktop-{size}.png"
        if not image.save(str(target)):
            raise SystemExit(f"cannot write {target}")
        written.append(target)
    return written


def bundle_icons(largest: Path, out_dir: Path) -> list[Path]:
    """sd-desktop.ico (16-256 px, Windows) and sd-desktop.icns (macOS) from the largest PNG."""
    from PIL import Image

    with Image.open(largest) as image:
        ico = out_dir / "sd-desktop.ico"
        image.save(ico, sizes=[(s, s) for s in SIZES if s <= 256])
        icns = out_dir / "sd-desktop.icns"
        image.save(icns)
    return [ico, icns]


if __name__ == "__main__":
    pngs = render(ICONS / "sd-desktop.svg", ICONS)
    for path in [*pngs, *bundle_icons(pngs[-1], ICONS)]:
        print(path.relative_to(ICONS.parents[1]))
    sys.exit(0)
