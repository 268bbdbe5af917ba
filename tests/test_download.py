"""Downloading a model from a (fake, local) Hugging Face Hub: progress, cancel, resume,
verification, install, and the no-network message."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import huggingface_hub.constants as hf_constants
import numpy as np
import pytest
from fake_hub import COMMIT, FakeHub

from factories import build_tiny_sd
from sd_desktop.engine.checkpoints.checkpoint import describe, open_checkpoint
from sd_desktop.library.catalog import CatalogEntry
from sd_desktop.library.download import DownloadProgress, ModelDownloader
from sd_desktop.library.errors import DownloadCancelled, DownloadError, OfflineError
from sd_desktop.library.library import ModelLibrary

REPO = "tiny-org/tiny-sd"
PAYLOAD = bytes(range(256)) * 256  # served as an LFS file (over the fake hub's threshold)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory, "txt2img", "small")


@pytest.fixture
def online(monkeypatch, tmp_path):
    """Network allowed for huggingface_hub (the suite runs offline); HF_HOME in tmp."""
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")


def single_entry(name: str = "tiny.safetensors") -> CatalogEntry:
    return CatalogEntry(
        id="tiny",
        name="Tiny SD",
        description="",
        family="SD 1.x",
        repo=REPO,
        files=(name,),
        target="tiny-sd.safetensors",
        page="https://example.invalid/tiny",
    )


def folder_files(folder: Path) -> dict[str, Path]:
    return {
        p.relative_to(folder).as_posix(): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in (".json", ".safetensors", ".txt")
    }


def test_cancel_keeps_nothing_in_models_then_retry_resumes_and_model_generates(
    tiny, online, tmp_path
):
    models = tmp_path / "models"
    data = tiny.single_file.read_bytes()
    library = ModelLibrary(
        models, hash_cache_file=tmp_path / "hashes.json", hf_cache=tmp_path / "no-cache"
    )
    entry = single_entry()
    with FakeHub({REPO: {"tiny.safetensors": tiny.single_file}}, rate=4_000_000) as hub:
        downloader = ModelDownloader(
            models,
            endpoint=hub.endpoint,
            token=False,
            hash_cache=library.hashes,
            progress_interval=0.0,
        )
        seen: list[DownloadProgress] = []
        with pytest.raises(DownloadCancelled, match="kept"):
            downloader.download(
                entry,
                progress=seen.append,
                should_cancel=lambda: bool(seen) and seen[-1].done_bytes > 300_000,
            )
        assert seen and seen[-1].total_bytes == len(data)
        assert [p.done_bytes for p in seen] == sorted(p.done_bytes for p in seen)
        kept = downloader.partial_bytes(entry)
        assert 300_000 < kept < len(data)
        # nothing half-done is visible as a model
        assert not downloader.target_path(entry).exists()
        assert library.scan() == []

        hub.rate = None
        resumed: list[DownloadProgress] = []
        result = downloader.download(entry, progress=resumed.append)
        assert hub.ranges() == [f"bytes={kept}-"]
        assert result.resumed_bytes == kept
        assert resumed[0].done_bytes == kept and resumed[-1].done_bytes == len(data)

    assert result.path == models / "tiny-sd.safetensors"
    assert result.path.read_bytes() == data
    assert not (models / ".downloads" / "tiny").exists()
    # the verified digest doubles as the A1111 hash: no re-read needed
    assert library.hashes.short_hash(result.path) == open_checkpoint(result.path).short_hash()
    [found] = library.scan()
    assert found.path == result.path and found.family == "SD 1.x"

    from sd_desktop.engine.model import load_model
    from sd_desktop.engine.pipeline import generate
    from sd_desktop.engine.request import GenerationRequest

    model = load_model(result.path, device="cpu", dtype="fp32")
    out = generate(model, GenerationRequest(prompt="a cat", steps=2, width=64, height=64, seed=1))
    pixels = np.asarray(out.images[0])
    assert out.images[0].size == (64, 64)
    assert np.isfinite(pixels).all() and pixels.std() > 1.0


def test_folder_model_skips_missing_optional_files(tiny, online, tmp_path):
    models = tmp_path / "models"
    files = folder_files(tiny.folder)
    weights = [n for n in files if n.endswith(".safetensors")]
    served = {n: p for n, p in files.items() if n != "scheduler/scheduler_config.json"}
    entry = CatalogEntry(
        id="tiny-folder",
        name="Tiny folder",
        description="",
        family="SD 1.x",
        repo=REPO,
        kind="folder",
        files=("model_index.json", *weights),
        optional_files=("tokenizer/vocab.json", "scheduler/scheduler_config.json"),
        target="tiny-folder",
    )
    with FakeHub({REPO: served}) as hub:
        result = ModelDownloader(models, endpoint=hub.endpoint, token=False).download(entry)
        # every file after the first is fetched from the commit the first one resolved to
        resolved = [r.path for r in hub.requests if r.server == "hub" and r.method == "HEAD"]
        assert all(f"/resolve/{COMMIT}/" in p for p in resolved[1:])
    assert result.path == models / "tiny-folder"
    assert (result.path / "tokenizer" / "vocab.json").is_file()
    assert not (result.path / "scheduler").exists()
    assert describe(result.path).family == "SD 1.x"
    assert sorted(p.name for p in models.iterdir()) == ["tiny-folder"]  # staging removed


def test_a_damaged_transfer_is_deleted_not_installed(online, tmp_path):
    models = tmp_path / "models"
    with FakeHub({REPO: {"tiny.safetensors": PAYLOAD}}, corrupt=True) as hub:
        downloader = ModelDownloader(models, endpoint=hub.endpoint, token=False)
        with pytest.raises(DownloadError, match="damaged"):
            downloader.download(single_entry())
    assert not (models / "tiny-sd.safetensors").exists()
    assert downloader.partial_bytes(single_entry()) == 0


def _stage(downloader: ModelDownloader, entry: CatalogEntry, partial: bytes, etag: str) -> None:
    """Leave what an interrupted earlier attempt would have left."""
    files = downloader.staging_dir(entry) / "files"
    files.mkdir(parents=True)
    (files / (entry.files[0] + ".part")).write_bytes(partial)
    state = {"etags": {entry.files[0]: etag}}
    (downloader.staging_dir(entry) / "download.json").write_text(json.dumps(state))


def test_a_partial_of_another_file_version_is_discarded(online, tmp_path):
    entry = single_entry()
    with FakeHub({REPO: {"tiny.safetensors": PAYLOAD}}) as hub:
        downloader = ModelDownloader(tmp_path / "models", endpoint=hub.endpoint, token=False)
        _stage(downloader, entry, b"old version" * 100, "0" * 64)
        result = downloader.download(entry)
        assert hub.ranges() == []
    assert result.path.read_bytes() == PAYLOAD


def test_a_server_that_ignores_range_restarts_the_file(online, tmp_path):
    entry = single_entry()
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    with FakeHub({REPO: {"tiny.safetensors": PAYLOAD}}, ignore_range=True) as hub:
        downloader = ModelDownloader(tmp_path / "models", endpoint=hub.endpoint, token=False)
        _stage(downloader, entry, PAYLOAD[:5000], sha)
        result = downloader.download(entry)
        assert hub.ranges() == ["bytes=5000-"]
    assert result.path.read_bytes() == PAYLOAD
    assert result.resumed_bytes == 5000


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_network_says_where_to_put_a_file(online, tmp_path):
    models = tmp_path / "models"
    downloader = ModelDownloader(models, endpoint=f"http://127.0.0.1:{_closed_port()}", token=False)
    with pytest.raises(OfflineError) as info:
        downloader.download(single_entry())
    assert str(models) in str(info.value) and "Rescan" in str(info.value)
    assert not (models / "tiny-sd.safetensors").exists()


def test_offline_mode_is_reported_the_same_way(monkeypatch, tmp_path):
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    downloader = ModelDownloader(tmp_path / "m", endpoint="http://127.0.0.1:9", token=False)
    with pytest.raises(OfflineError, match="offline mode"):
        downloader.download(single_entry())


def test_a_missing_required_file_names_the_model_page(online, tmp_path):
    with FakeHub({REPO: {"other.safetensors": b"x" * 10}}) as hub:
        downloader = ModelDownloader(tmp_path / "m", endpoint=hub.endpoint, token=False)
        with pytest.raises(DownloadError, match="example.invalid/tiny"):
            downloader.download(single_entry())
