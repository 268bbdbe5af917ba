"""The model library: what a scan finds (folders, A1111 layouts, the HF cache), how it
reports broken files, what it remembers, and the download catalog's data."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from factories import build_tiny_sd
from sd_desktop.engine.checkpoints.checkpoint import open_checkpoint
from sd_desktop.library.catalog import CatalogEntry, load_catalog
from sd_desktop.library.errors import LibraryError
from sd_desktop.library.hashes import HashCache
from sd_desktop.library.library import ModelLibrary
from sd_desktop.library.paths import default_models_folder, hf_hub_cache_folder
from sd_desktop.library.scan import SOURCE_HF, SOURCE_MODELS, find_candidates


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory, "txt2img", "small")


@pytest.fixture(scope="module")
def tiny_inpaint(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory, "inpaint", "small")


def make_library(
    tmp_path: Path, models: Path, hf_cache: Path | None = None, **kwargs
) -> ModelLibrary:
    return ModelLibrary(
        models,
        hash_cache_file=tmp_path / "cache" / "hashes.json",
        hf_cache=hf_cache or tmp_path / "no-hf-cache",
        **kwargs,
    )


def sdxl_like(path: Path) -> Path:
    """A tiny file with SDXL's text-encoder keys: recognised, refused, but listed."""
    save_file(
        {
            "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": torch.ones(4),
            "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(8, 4, 3, 3),
        },
        str(path),
    )
    return path


def by_name(entries):
    return {e.name: e for e in entries}


def test_scan_lists_models_with_family_and_broken_files_with_their_error(
    tiny, tiny_inpaint, tmp_path
):
    models = tmp_path / "models"
    (models / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(tiny.single_file, models / "base.safetensors")
    shutil.copy(tiny_inpaint.single_file, models / "sub" / "deeper" / "fill.safetensors")
    shutil.copytree(tiny.folder, models / "diffusers-model")
    sdxl_like(models / "xl.safetensors")
    (models / "garbage.safetensors").write_bytes(b"\x00\x01not a header" * 10)
    (models / "empty.safetensors").write_bytes(b"")
    (models / "notes.txt").write_text("not a model")
    (models / ".hidden").mkdir()
    shutil.copy(tiny.single_file, models / ".hidden" / "secret.safetensors")

    found = by_name(make_library(tmp_path, models).scan())

    assert set(found) == {"base", "fill", "diffusers-model", "xl", "garbage", "empty"}
    assert found["base"].family == "SD 1.x" and found["base"].usable
    assert found["base"].source == SOURCE_MODELS
    assert found["base"].size_bytes == tiny.single_file.stat().st_size
    assert found["fill"].family == "SD 1.x inpainting"
    assert found["diffusers-model"].format == "diffusers"
    assert found["diffusers-model"].family == "SD 1.x"
    assert found["xl"].family == "Not supported yet: SDXL" and not found["xl"].usable
    assert "SDXL" in found["xl"].detail
    for broken in ("garbage", "empty"):
        assert found[broken].error and not found[broken].usable
    assert "empty" in found["empty"].error


def test_a_symlink_loop_and_a_file_named_like_a_model_do_not_stop_the_scan(tiny, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    os.symlink(models, models / "loop")
    (models / "dir.safetensors").mkdir()  # a folder with a model's suffix
    os.symlink(tmp_path / "gone.safetensors", models / "dangling.safetensors")
    shutil.copy(tiny.single_file, models / "ok.safetensors")
    found = by_name(make_library(tmp_path, models).scan())
    assert found["ok"].usable
    assert "dangling" not in found or found["dangling"].error
    assert list(find_candidates(models)).count(models / "ok.safetensors") == 1


def test_added_folders_are_scanned_and_reported_to_whoever_stores_them(tiny, tmp_path):
    a1111 = tmp_path / "webui" / "models" / "Stable-diffusion"
    a1111.mkdir(parents=True)
    shutil.copy(tiny.single_file, a1111 / "mine.safetensors")
    saved: list[list[Path]] = []
    library = make_library(tmp_path, tmp_path / "models", on_folders_changed=saved.append)
    assert library.scan() == []
    assert library.add_folder(a1111)
    assert not library.add_folder(a1111)  # already there
    assert not library.add_folder(tmp_path / "models")  # always scanned anyway
    assert saved == [[a1111]]
    [entry] = library.scan()
    assert entry.name == "mine" and entry.path.parent == a1111

    reopened = make_library(tmp_path, tmp_path / "models", folders=saved[-1])
    assert [e.name for e in reopened.scan()] == ["mine"]
    assert reopened.remove_folder(a1111)
    assert reopened.scan() == []


def test_a_model_reachable_twice_is_listed_once(tiny, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(tiny.single_file, models / "one.safetensors")
    library = make_library(tmp_path, models)
    library.add_folder(tmp_path)  # contains the models folder
    assert [e.name for e in library.scan()] == ["one"]


def _hf_repo(cache: Path, repo_id: str, files: dict[str, Path], commit: str = "c" * 40) -> Path:
    """The hub cache layout: blobs, a snapshot of symlinks, refs/main."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    for name, source in files.items():
        blob = repo / "blobs" / hashlib.sha256(str(source).encode()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, blob)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def test_hf_cache_lists_sd_pipelines_and_checkpoints_but_not_other_models(tiny, tmp_path):
    cache = tmp_path / "hf" / "hub"
    pipeline_files = {
        p.relative_to(tiny.folder).as_posix(): p for p in tiny.folder.rglob("*") if p.is_file()
    }
    _hf_repo(cache, "someone/tiny-pipeline", pipeline_files)
    _hf_repo(cache, "someone/tiny-single", {"model.safetensors": tiny.single_file})
    text_model = tmp_path / "bert.safetensors"
    save_file({"bert.embeddings.weight": torch.zeros(4, 4)}, str(text_model))
    _hf_repo(cache, "someone/a-text-model", {"model.safetensors": text_model})
    # an older snapshot that refs/main no longer points at is ignored
    _hf_repo(cache, "someone/tiny-single", {"old.safetensors": tiny.single_file}, "d" * 40)
    (cache / "models--someone--tiny-single" / "refs" / "main").write_text("c" * 40)

    found = make_library(tmp_path, tmp_path / "models", hf_cache=cache).scan()
    assert {(e.repo_id, e.name) for e in found} == {
        ("someone/tiny-pipeline", "someone/tiny-pipeline"),
        ("someone/tiny-single", "model"),
    }
    assert all(e.source == SOURCE_HF and e.usable for e in found)
    assert all(e.location.startswith("Hugging Face cache") for e in found)


def test_hf_cache_location_follows_hf_home_and_hf_hub_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hf_hub_cache_folder() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert hf_hub_cache_folder() == tmp_path / "elsewhere"
    monkeypatch.setenv("SD_DESKTOP_DATA_DIR", str(tmp_path / "data"))
    assert default_models_folder() == tmp_path / "data" / "models"


def test_hashes_match_a1111_and_are_cached_by_size_and_mtime(tiny, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(tiny.single_file, models / "a.safetensors")
    shutil.copytree(tiny.folder, models / "folder")
    library = make_library(tmp_path, models)
    entries = by_name(library.scan())
    assert library.with_hash(entries["a"]) is None  # never computed on a scan
    for name in ("a", "folder"):
        expected = open_checkpoint(entries[name].path).short_hash()
        assert library.compute_hash(entries[name]) == expected
        assert library.with_hash(entries[name]) == expected
    # a fresh library (next app start) reads them from the cache file
    again = make_library(tmp_path, models)
    assert again.with_hash(entries["a"]) == open_checkpoint(entries["a"].path).short_hash()
    # a file replaced in place is hashed again
    shutil.copy(tiny.folder / "unet" / "diffusion_pytorch_model.safetensors", entries["a"].path)
    assert again.with_hash(entries["a"]) is None


def test_what_a_scan_learnt_is_reused_at_the_next_start(tiny, tmp_path, monkeypatch):
    import sd_desktop.library.library as library_module

    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(tiny.single_file, models / "a.safetensors")
    (models / "broken.safetensors").write_bytes(b"junk" * 10)
    first = by_name(make_library(tmp_path, models).scan())

    described: list[Path] = []
    real = library_module.describe_entry

    def counting(path, *args, **kwargs):
        described.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(library_module, "describe_entry", counting)
    again = by_name(make_library(tmp_path, models).scan())
    assert described == []  # nothing read: both came from model-info.json
    assert again == first
    # a file replaced in place is described again
    shutil.copy(tiny.single_file, models / "broken.safetensors")
    third = by_name(make_library(tmp_path, models).scan())
    assert described == [models / "broken.safetensors"]
    assert third["broken"].usable and third["a"] == first["a"]


def test_hash_cache_ignores_a_damaged_cache_file(tmp_path):
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"abc" * 1000)
    (tmp_path / "h.json").write_text("{not json")
    cache = HashCache(tmp_path / "h.json")
    assert cache.compute(model) == hashlib.sha256(model.read_bytes()).hexdigest()[:10]
    assert json.loads((tmp_path / "h.json").read_text())["version"] == 1


def test_the_shipped_catalog_offers_sd15_and_its_inpainting_model():
    catalog = {e.id: e for e in load_catalog()}
    assert catalog["sd15"].repo == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert catalog["sd15"].files == ("v1-5-pruned-emaonly.safetensors",)
    inpaint = catalog["sd15-inpainting"]
    assert inpaint.kind == "folder" and "model_index.json" in inpaint.files
    weights = [f for f in inpaint.files if f.endswith(".safetensors")]
    assert {f.split("/")[0] for f in weights} == {"unet", "vae", "text_encoder"}
    assert all(e.size_bytes > 1e9 and e.license for e in catalog.values())


@pytest.mark.parametrize(
    "files, target",
    [
        (("../escape.safetensors",), "x"),
        (("/abs.safetensors",), "x"),
        ((".hidden",), "x"),
        (("ok.safetensors",), "../x"),
        ((), "x"),
    ],
)
def test_catalog_entries_cannot_write_outside_the_models_folder(files, target):
    with pytest.raises(LibraryError):
        CatalogEntry("id", "n", "", "", "o/r", files=files, target=target)


def test_a_broken_catalog_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "catalog.json"
    bad.write_text(json.dumps({"models": [{"id": "x"}]}))
    with pytest.raises(LibraryError, match="malformed"):
        load_catalog(bad)
