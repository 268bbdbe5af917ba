"""First run: the welcome panel's three ways to a model, the model manager, and the
download dialog driven against the fake hub."""

from __future__ import annotations

import shutil
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pytest
from fake_hub import FakeHub
from PySide6.QtWidgets import QDialog, QFileDialog, QPushButton

from factories import build_tiny_sd
from sd_desktop.library.catalog import CatalogEntry
from sd_desktop.library.download import ModelDownloader
from sd_desktop.library.library import ModelLibrary
from sd_desktop.ui import download_dialog
from sd_desktop.ui.download_dialog import DownloadDialog, progress_text
from sd_desktop.ui.model_manager import ModelManagerDialog
from sd_desktop.ui.welcome import WelcomePanel

REPO = "tiny-org/tiny-sd"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory, "txt2img", "small")


@pytest.fixture
def library(tmp_path):
    return ModelLibrary(
        tmp_path / "models", hash_cache_file=tmp_path / "hashes.json", hf_cache=tmp_path / "hf"
    )


def entry() -> CatalogEntry:
    return CatalogEntry(
        id="tiny",
        name="Tiny SD",
        description="A tiny test model.",
        family="SD 1.x",
        repo=REPO,
        files=("tiny.safetensors",),
        target="tiny.safetensors",
        size_bytes=10_000_000,
        license="test",
        page="https://example.invalid/tiny",
    )


def test_welcome_offers_three_enabled_ways_each_explained(qtbot, library):
    panel = WelcomePanel(library)
    qtbot.addWidget(panel)
    choices = (panel.download_choice, panel.open_choice, panel.folder_choice)
    for choice in choices:
        assert choice.button.isEnabled() and choice.button.text()
        assert len(choice.explanation.text()) > 20
    assert "Download" in panel.download_choice.button.text()
    # every enabled-looking button of the panel really is enabled
    assert all(b.isEnabled() for b in panel.findChildren(QPushButton))
    assert str(library.models_folder) in " ".join(
        label.text() for label in panel.findChildren(type(panel.message))
    )


def test_opening_a_file_chooses_it_and_an_unusable_file_says_why(
    qtbot, library, tiny, tmp_path, monkeypatch
):
    panel = WelcomePanel(library)
    qtbot.addWidget(panel)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a model at all")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(broken), ""))
    chosen: list[Path] = []
    panel.modelChosen.connect(chosen.append)
    panel.open_choice.button.click()
    assert chosen == [] and "broken cannot be used" in panel.message.text()

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tiny.single_file), ""))
    panel.open_choice.button.click()
    assert chosen == [tiny.single_file]


def test_adding_a_folder_remembers_it_and_uses_its_first_model(qtbot, library, tiny, tmp_path):
    panel = WelcomePanel(library)
    qtbot.addWidget(panel)
    empty = tmp_path / "empty"
    empty.mkdir()
    with qtbot.waitSignal(panel.libraryChanged):
        panel.use_folder(empty)
    qtbot.waitUntil(lambda: "No .safetensors" in panel.message.text())
    assert library.folders() == [empty]

    a1111 = tmp_path / "webui" / "models" / "Stable-diffusion"
    a1111.mkdir(parents=True)
    shutil.copy(tiny.single_file, a1111 / "mine.safetensors")
    with qtbot.waitSignal(panel.modelChosen, timeout=10_000) as signal:
        panel.use_folder(a1111)
    assert signal.args == [a1111 / "mine.safetensors"]
    assert library.folders() == [empty, a1111]


def test_look_again_finds_a_model_copied_into_the_models_folder(qtbot, library, tiny):
    panel = WelcomePanel(library)
    qtbot.addWidget(panel)
    library.ensure_models_folder()
    assert (library.models_folder / "PUT-MODELS-HERE.txt").is_file()
    shutil.copy(tiny.single_file, library.models_folder / "copied.safetensors")
    with qtbot.waitSignal(panel.modelChosen, timeout=10_000) as signal:
        panel.rescan_button.click()
    assert signal.args == [library.models_folder / "copied.safetensors"]


def test_download_from_the_welcome_panel_chooses_the_installed_model(
    qtbot, library, monkeypatch, tmp_path
):
    installed = library.models_folder / "x.safetensors"

    class FinishedDialog:
        """Stands in for the modal dialog: as if the user downloaded and pressed Use."""

        def __init__(self, models_folder, **kwargs):
            assert models_folder == library.models_folder
            self.installed_path = installed
            self.modelDownloaded = type("S", (), {"connect": lambda self, fn: None})()

        def exec(self):
            return QDialog.DialogCode.Accepted

    monkeypatch.setattr(download_dialog, "DownloadDialog", FinishedDialog)
    panel = WelcomePanel(library)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.modelChosen) as signal:
        panel.download_choice.button.click()
    assert signal.args == [installed]


def test_model_manager_lists_hashes_and_manages_folders(
    qtbot, library, tiny, tmp_path, monkeypatch
):
    library.ensure_models_folder()
    shutil.copy(tiny.single_file, library.models_folder / "base.safetensors")
    (library.models_folder / "broken.safetensors").write_bytes(b"junk" * 10)
    dialog = ModelManagerDialog(library)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.table.topLevelItemCount() == 2, timeout=10_000)
    rows = {
        dialog.table.topLevelItem(i).text(0): dialog.table.topLevelItem(i)
        for i in range(dialog.table.topLevelItemCount())
    }
    from sd_desktop.engine.checkpoints.checkpoint import open_checkpoint

    expected = open_checkpoint(library.models_folder / "base.safetensors").short_hash()
    qtbot.waitUntil(lambda: rows["base"].text(3) == expected, timeout=10_000)
    assert rows["base"].text(1) == "SD 1.x"
    assert rows["broken"].text(1) == "Cannot be read"
    assert "broken" in rows["broken"].toolTip(0)
    # the usable model is preselected, so "Use this model" works at once
    assert dialog.use_button.isEnabled()
    with qtbot.waitSignal(dialog.modelChosen) as chosen:
        dialog.use_button.click()
    assert chosen.args == [library.models_folder / "base.safetensors"]

    # folders: add one, see its model, remove it again
    dialog = ModelManagerDialog(library)
    qtbot.addWidget(dialog)
    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copy(tiny.single_file, extra / "other.safetensors")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(extra))
    assert not dialog.remove_folder_button.isEnabled()
    assert "Select a folder" in dialog.remove_folder_button.toolTip()
    dialog.add_folder_button.click()
    qtbot.waitUntil(lambda: dialog.table.topLevelItemCount() == 3, timeout=10_000)
    assert library.folders() == [extra]
    dialog.folder_list.setCurrentRow(1)
    assert dialog.remove_folder_button.isEnabled()
    dialog.remove_folder_button.click()
    qtbot.waitUntil(lambda: dialog.table.topLevelItemCount() == 2, timeout=10_000)
    assert library.folders() == []


@pytest.fixture
def online(monkeypatch, tmp_path):
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


def test_download_dialog_shows_progress_can_stop_and_continues(qtbot, tiny, online, tmp_path):
    models = tmp_path / "models"
    with FakeHub({REPO: {"tiny.safetensors": tiny.single_file}}, rate=3_000_000) as hub:
        downloader = ModelDownloader(models, endpoint=hub.endpoint, token=False)
        dialog = DownloadDialog(models, catalog=[entry()], downloader=downloader)
        qtbot.addWidget(dialog)
        assert dialog.download_button.text() == "Download"
        dialog.download_button.click()
        assert dialog.close_button.text() == "Stop"
        qtbot.waitUntil(lambda: dialog.bar.value() > 20, timeout=10_000)
        assert " of " in dialog.progress_label.text()
        with qtbot.waitSignal(dialog.downloadEnded, timeout=10_000):
            dialog.close_button.click()
        assert "kept" in dialog.message.text()
        assert not (models / "tiny.safetensors").exists()
        assert dialog.download_button.text() == "Continue download"
        assert dialog.discard_button.isVisibleTo(dialog)

        hub.rate = None
        with qtbot.waitSignal(dialog.modelDownloaded, timeout=20_000) as done:
            dialog.download_button.click()
        assert done.args == [models / "tiny.safetensors"]
        assert hub.ranges() and hub.ranges()[0].startswith("bytes=")
    qtbot.waitUntil(lambda: dialog.thread is None)
    assert dialog.download_button.text() == "Use this model"
    dialog.download_button.click()
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.installed_path == models / "tiny.safetensors"


def test_download_dialog_without_network_points_to_the_models_folder(qtbot, online, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    models = tmp_path / "models"
    downloader = ModelDownloader(models, endpoint=f"http://127.0.0.1:{port}", token=False)
    dialog = DownloadDialog(models, catalog=[entry()], downloader=downloader)
    qtbot.addWidget(dialog)
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog.thread is None, timeout=10_000)
    assert str(models) in dialog.message.text()
    assert "Open models folder" in dialog.message.text()
    assert dialog.open_folder_button.isEnabled()


def test_progress_text_reads_like_a_sentence():
    from sd_desktop.library.download import DownloadProgress

    text = progress_text(DownloadProgress(1_200_000_000, 4_270_000_000, "f", 1, 4, 0, 25e6))
    assert text == "1.20 GB of 4.27 GB · 25.0 MB/s · about 2 min left · file 1 of 4"
