"""The drawn icon sets: every icon renders, in both modes and states it is used in."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QIcon, QImage

from sd_desktop.ui.app_icons import _DRAWERS, app_icon, panel_icon
from sd_desktop.ui.canvas_icons import ICON_NAMES, canvas_icon
from sd_desktop.ui.gallery_icons import _ICONS, gallery_icon
from sd_desktop.ui.icon_drawing import palette_inks, render_icon


def _image(icon: QIcon, size: int = 24, mode=QIcon.Mode.Normal, state=QIcon.State.Off) -> QImage:  # type: ignore[no-untyped-def]
    return icon.pixmap(QSize(size, size), mode, state).toImage()


def _inked_pixels(image: QImage) -> int:
    return sum(
        1
        for y in range(image.height())
        for x in range(image.width())
        if image.pixelColor(x, y).alpha() > 40
    )


@pytest.mark.parametrize("name", sorted(_DRAWERS))
def test_panel_icons_draw_something_and_grey_out_when_disabled(qapp, name: str) -> None:  # type: ignore[no-untyped-def]
    icon = panel_icon(name)
    normal = _image(icon)
    assert 20 < _inked_pixels(normal) < 24 * 24 * 0.8  # a line drawing, not empty or a block
    assert normal != _image(icon, mode=QIcon.Mode.Disabled)


@pytest.mark.parametrize("name", sorted(ICON_NAMES))
def test_canvas_icons_render_at_every_size(qapp, name: str) -> None:  # type: ignore[no-untyped-def]
    icon = canvas_icon(name)
    assert not icon.isNull()
    for size in (16, 32, 48):
        assert _inked_pixels(_image(icon, size)) > 0


@pytest.mark.parametrize("name", sorted(_ICONS))
def test_gallery_icons_render(qapp, name: str) -> None:  # type: ignore[no-untyped-def]
    assert _inked_pixels(_image(gallery_icon(name))) > 10


def test_the_favourite_star_is_an_outline_off_and_filled_on(qapp) -> None:  # type: ignore[no-untyped-def]
    icon = gallery_icon("star")
    off = _inked_pixels(_image(icon, state=QIcon.State.Off))
    on = _inked_pixels(_image(icon, state=QIcon.State.On))
    assert 0 < off < on


def test_app_icon_has_large_sizes_and_its_gradient(qapp) -> None:  # type: ignore[no-untyped-def]
    icon = app_icon()
    assert QSize(256, 256) in icon.availableSizes()
    image = _image(icon, 256)
    top_left, bottom_right = image.pixelColor(60, 60), image.pixelColor(196, 196)
    assert top_left.blue() > top_left.green()  # violet corner
    assert bottom_right.green() > bottom_right.red()  # teal corner
    assert image.pixelColor(0, 0).alpha() == 0  # rounded, transparent outside the tile


def test_render_icon_uses_the_ink_it_is_given(qapp) -> None:  # type: ignore[no-untyped-def]
    def block(p, c):  # type: ignore[no-untyped-def]
        p.fillRect(0, 0, 24, 24, c)

    red, grey = QColor(255, 0, 0), QColor(128, 128, 128)
    icon = render_icon(block, red, disabled=grey, sizes=(16,))
    assert _image(icon, 16).pixelColor(8, 8) == red
    assert _image(icon, 16, mode=QIcon.Mode.Disabled).pixelColor(8, 8) == grey
    normal, disabled = palette_inks()
    assert normal != disabled
