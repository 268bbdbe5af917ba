"""Packaging checks: the self-test's own tiny model, the whole `--self-test` run, the
desktop entry installer and the missing-X-library message."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sd_desktop.engine.checkpoints.checkpoint import describe
from sd_desktop.install_desktop import ICON_SIZES, desktop_entry, install, quote_exec_arg, uninstall
from sd_desktop.platform_check import qt_platform_problem, uses_xcb
from sd_desktop.selftest import SelfTestError, check_image, write_tiny_model

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_the_self_test_model_is_an_sd1_checkpoint_written_without_diffusers(tmp_path):
    code = (
        "import sys; from pathlib import Path; from sd_desktop.selftest import write_tiny_model; "
        f"write_tiny_model(Path({str(tmp_path / 'm.safetensors')!r})); "
        "print('diffusers' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    info = describe(tmp_path / "m.safetensors")
    assert info.supported and info.family == "SD 1.x"
    assert info.size_bytes < 32e6
    # a fixed seed: the same bytes every time
    again = write_tiny_model(tmp_path / "again.safetensors")
    assert again.read_bytes() == (tmp_path / "m.safetensors").read_bytes()


def test_check_image_refuses_blank_wrong_size_and_missing_infotext(tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (64, 64), (128, 128, 128)).save(blank)
    with pytest.raises(SelfTestError, match="blank"):
        check_image(blank)
    small = tmp_path / "small.png"
    Image.new("RGB", (32, 32)).save(small)
    with pytest.raises(SelfTestError, match="32x32"):
        check_image(small)
    noisy = tmp_path / "noisy.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(noisy)
    with pytest.raises(SelfTestError, match="infotext"):
        check_image(noisy)


@pytest.mark.slow
def test_self_test_command_makes_a_picture_end_to_end(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SD_DESKTOP_")}
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-m", "sd_desktop", "--self-test"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "self-test OK" in out.stdout
    assert "previews" in out.stdout and "infotext" in out.stdout


def test_desktop_entry_installs_for_the_user_and_validates(tmp_path):
    home = tmp_path / "share"
    command = ["/opt/my apps/sd-desktop"]
    written = install(home, command)
    entry = home / "applications" / "sd-desktop.desktop"
    assert entry in written
    text = entry.read_text()
    assert 'Exec="/opt/my apps/sd-desktop" %f' in text
    assert "TryExec=/opt/my apps/sd-desktop" in text and "Icon=sd-desktop" in text
    for size in ICON_SIZES:
        icon = home / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "sd-desktop.png"
        with Image.open(icon) as img:
            assert img.size == (size, size)
    assert (home / "icons" / "hicolor" / "scalable" / "apps" / "sd-desktop.svg").is_file()
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(
            ["desktop-file-validate", str(entry)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
    assert set(uninstall(home)) == set(written)
    assert not entry.exists()


def test_install_module_points_exec_at_this_installation(tmp_path):
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-m", "sd_desktop", "--install-desktop-entry"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "applications" / "sd-desktop.desktop").read_text()
    exec_line = next(line for line in text.splitlines() if line.startswith("Exec="))
    assert str(Path(sys.executable).parent) in exec_line


@pytest.mark.parametrize(
    "arg, written",
    [
        ("/usr/bin/sd-desktop", "/usr/bin/sd-desktop"),
        ("/a b/sd", '"/a b/sd"'),
        ('/a"b/sd', '"/a\\\\"b/sd"'),
        ("/a$b/sd", '"/a\\\\$b/sd"'),
        ("/a\\b/sd", '"/a\\\\\\\\b/sd"'),
        ("/100%/sd", "/100%%/sd"),
    ],
)
def test_exec_arguments_are_quoted_per_the_desktop_entry_spec(arg, written):
    assert quote_exec_arg(arg) == written


def test_desktop_entry_for_python_m_keeps_every_argument():
    text = desktop_entry(["/venv/bin/python3", "-m", "sd_desktop"])
    assert "Exec=/venv/bin/python3 -m sd_desktop %f" in text
    assert "TryExec" not in text


def test_missing_xcb_libraries_give_an_apt_get_line_instead_of_an_abort():
    x11 = {"DISPLAY": ":0"}
    missing = {"libxcb-cursor.so.0"}

    def loadable(soname: str) -> bool:
        return soname not in missing

    message = qt_platform_problem(x11, "linux", loadable)
    assert message is not None
    assert "sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in message
    assert qt_platform_problem(x11, "linux", lambda s: True) is None
    assert qt_platform_problem({**x11, "QT_QPA_PLATFORM": "offscreen"}, "linux", loadable) is None
    assert qt_platform_problem({}, "linux", loadable) is None  # no display: nothing to check
    assert qt_platform_problem(x11, "darwin", loadable) is None
    assert uses_xcb({"QT_QPA_PLATFORM": "xcb"}, "linux")
    wayland = {"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}
    assert not uses_xcb(wayland, "linux")
