"""The bundled CLIP tokenizer files, the script that makes them, and resource lookup."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from sd_desktop import resources
from sd_desktop.engine.errors import EngineError
from sd_desktop.engine.text.tokenizer import BOS_ID, EOS_ID, load_tokenizer
from sd_desktop.resources import MissingResourceError, resource_path

REPO = Path(__file__).resolve().parents[1]

# Expected ids cross-checked against open_clip's independent SimpleTokenizer.
KNOWN_IDS = {
    "a photo of a cat": [320, 1125, 539, 320, 2368],
    "a photo of a dog": [320, 1125, 539, 320, 1929],
    "An astronaut riding a horse on Mars, 4k, highly detailed!": [
        550, 18376, 6765, 320, 4558, 525, 7496, 267, 275, 330, 267, 5302, 12609, 256,
    ],
    "Hello, World! it's": [3306, 267, 1002, 256, 585, 568],
    "masterpiece, best quality, 1girl": [12066, 267, 949, 3027, 267, 272, 1611],
    "Café déjà vu": [15304, 25466, 73, 21259, 13230],
    "naïve   spaces\tand\nnewlines": [1097, 35689, 563, 9006, 537, 1218, 3418],
    "emoji 🙂 test": [16327, 14860, 1628],
    "supercalifragilisticexpialidocious": [1642, 2857, 13093, 2076, 5868, 26850, 835, 639, 38466],
}  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def test_a_photo_of_a_cat(tokenizer):
    ids = tokenizer("a photo of a cat").input_ids
    assert ids == [49406, 320, 1125, 539, 320, 2368, 49407]


@pytest.mark.parametrize("text", list(KNOWN_IDS))
def test_known_token_ids(tokenizer, text):
    assert tokenizer(text, add_special_tokens=False).input_ids == KNOWN_IDS[text]
    assert tokenizer(text).input_ids == [BOS_ID, *KNOWN_IDS[text], EOS_ID]


def test_special_tokens_and_padding_match_clip_vit_large(tokenizer):
    assert len(tokenizer) == 49408
    assert tokenizer.model_max_length == 77
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (49406, 49407)
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.pad_token_id == 49407
    assert tokenizer.convert_tokens_to_ids(",</w>") == 267
    ids = tokenizer("a cat", padding="max_length", max_length=77, truncation=True).input_ids
    assert ids[:4] == [49406, 320, 2368, 49407]
    assert ids[4:] == [49407] * 73


def test_truncation_keeps_eos_last(tokenizer):
    ids = tokenizer("cat " * 100, padding="max_length", max_length=77, truncation=True).input_ids
    assert len(ids) == 77
    assert ids[0] == 49406 and ids[-1] == 49407 and set(ids[1:-1]) == {2368}


def test_vocab_layout():
    vocab = json.loads(resource_path("clip_tokenizer", "vocab.json").read_text("utf-8"))
    assert len(vocab) == 49408
    assert vocab["!"] == 0 and vocab["!</w>"] == 256
    assert vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407
    assert vocab["in"] == 512  # the first merge, "i n"
    assert sorted(vocab.values()) == list(range(49408))


def _load_script():
    path = REPO / "packaging" / "make_clip_tokenizer.py"
    spec = importlib.util.spec_from_file_location("make_clip_tokenizer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_byte_symbols_are_a_printable_bijection():
    symbols = _load_script().byte_symbols()
    assert len(set(symbols)) == 256
    assert all(s.isprintable() and not s.isspace() for s in symbols)
    assert symbols[:3] == ["!", '"', "#"]
    assert symbols[-1] == chr(256 + 67)  # 68 bytes are remapped above 255


def test_committed_files_are_what_the_script_builds(tmp_path):
    script = _load_script()
    folder = resource_path("clip_tokenizer")
    lines = folder.joinpath("merges.txt").read_text("utf-8").split("\n")
    assert lines[0] == "#version: 0.2" and len(lines) == 48894 + 2  # header, trailing newline
    vocab, merges = script.build(lines)
    script.write(tmp_path, vocab, merges)
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        assert (tmp_path / name).read_bytes() == folder.joinpath(name).read_bytes(), name


def test_script_rejects_a_short_merge_list():
    with pytest.raises(SystemExit):
        _load_script().build(["#version: 0.2", "i n", "t h"])


def test_resource_path_finds_the_checkout_folder():
    assert resource_path() == REPO / "resources"
    assert resource_path("clip_tokenizer", "merges.txt").is_file()


def test_missing_resource_is_a_clear_engine_error():
    with pytest.raises(MissingResourceError, match="no_such_file.bin") as info:
        resource_path("no_such_file.bin")
    assert isinstance(info.value, EngineError)
    assert "\n" not in str(info.value)


def test_frozen_bundle_is_searched_first(tmp_path, monkeypatch):
    (tmp_path / "resources" / "clip_tokenizer").mkdir(parents=True)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resource_path("clip_tokenizer") == tmp_path / "resources" / "clip_tokenizer"


def test_installed_wheel_uses_package_resources(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "sd_desktop"
    (package / "_resources" / "clip_tokenizer").mkdir(parents=True)
    monkeypatch.setattr(resources, "_PACKAGE_DIR", package)
    assert resource_path("clip_tokenizer") == package / "_resources" / "clip_tokenizer"
    with pytest.raises(MissingResourceError):
        resource_path("clip_tokenizer", "vocab.json")
