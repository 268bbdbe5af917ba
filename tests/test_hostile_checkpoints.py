"""Broken and hostile checkpoint files: each must end in one clear CheckpointError line.

Nothing here needs a real model: files are written byte by byte, and tensor data
is left as sparse holes where only the header matters.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sd_desktop.engine.checkpoints.checkpoint import describe, open_checkpoint
from sd_desktop.engine.checkpoints.lazy_weights import LazyStateDict, safetensors_refs
from sd_desktop.engine.checkpoints.safetensors_header import read_header
from sd_desktop.engine.errors import CheckpointError, UnsupportedModelError

_SIZES = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}


def write_raw_safetensors(
    path: Path,
    tensors: dict[str, tuple[str, list[int]]],
    *,
    file_size: int | None = None,
) -> Path:
    """A safetensors file whose data section is a sparse hole (all zeros, no disk used)."""
    header: dict[str, object] = {}
    offset = 0
    for key, (dtype, shape) in tensors.items():
        nbytes = _SIZES[dtype]
        for d in shape:
            nbytes *= d
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset if file_size is None else file_size)
    return path


def write_header(path: Path, header: object, data_bytes: int = 0) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(data_bytes))
    return path


def small_safetensors(path: Path) -> Path:
    save_file({"a": torch.arange(4096, dtype=torch.float32), "b": torch.ones(64, 64)}, str(path))
    return path


def expect_error(path: Path, *fragments: str, kind: type[Exception] = CheckpointError) -> str:
    """open_checkpoint fails with one line containing every fragment, and so does describe,
    except that describe reports an unsupported architecture instead of raising."""
    with pytest.raises(kind) as info:
        open_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    if kind is UnsupportedModelError:
        described = describe(path)
        assert described.supported is False
        assert described.family == message
    else:
        with pytest.raises(kind) as info:
            describe(path)
        assert str(info.value) == message
    return message


# --- pickles that would run code -------------------------------------------------------------


class _RunsShell:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class _CreatesFile:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


@pytest.mark.parametrize("payload", [_RunsShell, _CreatesFile])
def test_pickle_with_code_is_refused_and_never_runs(tmp_path: Path, payload: type) -> None:
    target = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"weight": torch.zeros(2), "x": payload(target)}}, path)
    assert not target.exists()

    with pytest.raises(CheckpointError) as info:
        open_checkpoint(path)
    message = str(info.value)
    assert "contains code or objects other than plain weights" in message
    assert ".safetensors" in message and "\n" not in message
    assert info.value.__cause__ is not None
    assert not target.exists()

    # describe() does not even unpickle: it only reports that conversion is needed
    info_ = describe(path)
    assert info_.format == "pickle" and info_.supported is None
    assert "convert" in info_.family
    assert not target.exists()


def test_old_format_pickle_with_code_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"x": _RunsShell(target)}, f, protocol=2)
    message = expect_error(path, "old pickle format", ".safetensors")
    assert "evil.pt" in message
    assert not target.exists()


def test_truncated_pickle(tmp_path: Path) -> None:
    path = tmp_path / "cut.ckpt"
    torch.save({"state_dict": {"w": torch.randn(256, 256)}}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        open_checkpoint(path)
    assert "cut.ckpt cannot be loaded" in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.__cause__ is not None


def test_random_bytes_as_ckpt(tmp_path: Path) -> None:
    path = tmp_path / "noise.ckpt"
    path.write_bytes(os.urandom(4096).replace(b"PK", b"pk").replace(b"\x80", b"\x81"))
    expect_error(path, "noise.ckpt is not a PyTorch checkpoint")


# --- empty, missing, random, renamed -------------------------------------------------------


@pytest.mark.parametrize("name", ["model.safetensors", "model.ckpt"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.touch()
    expect_error(
        path, f"{name} is empty (0 bytes): the download probably failed; download it again"
    )


def test_missing_path(tmp_path: Path) -> None:
    expect_error(tmp_path / "nope.safetensors", "nope.safetensors does not exist")


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(100))
    expect_error(path, "model.gguf is not a checkpoint we can open")


def test_random_bytes_as_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "noise.safetensors"
    path.write_bytes(os.urandom(1 << 16))
    expect_error(path, "noise.safetensors is not a valid .safetensors file")


def test_json_renamed_to_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "config.safetensors"
    path.write_text(json.dumps({"_class_name": "UNet2DConditionModel", "sample_size": 64}))
    expect_error(path, "config.safetensors is not a valid .safetensors file", "JSON")


def test_tiny_file_shorter_than_the_length_prefix(tmp_path: Path) -> None:
    path = tmp_path / "stub.safetensors"
    path.write_bytes(b"{}")
    expect_error(path, "stub.safetensors is not a valid .safetensors file", "only 2 bytes")


# --- truncation and lying headers ----------------------------------------------------------


def test_safetensors_cut_in_half(tmp_path: Path) -> None:
    path = small_safetensors(tmp_path / "half.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = expect_error(path, "half.safetensors is truncated", "download it again")
    assert f"has only {len(data) // 2:,} bytes" in message


def test_safetensors_cut_inside_the_header(tmp_path: Path) -> None:
    path = small_safetensors(tmp_path / "stub.safetensors")
    path.write_bytes(path.read_bytes()[:40])
    expect_error(path, "stub.safetensors is truncated: its header alone needs")


def test_header_claiming_10_gb_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 10 * 1024**3) + b'{"a": 1}')
    expect_error(path, "its header claims 10,737,418,240 bytes")


def test_header_longer_than_file_but_plausible(tmp_path: Path) -> None:
    path = tmp_path / "short.safetensors"
    path.write_bytes(struct.pack("<Q", 20 * 1024**2) + b'{"a": {"dtype": "F32"')
    expect_error(path, "short.safetensors is truncated")


def test_data_offsets_beyond_end_of_file(tmp_path: Path) -> None:
    path = write_raw_safetensors(
        tmp_path / "liar.safetensors",
        {"small": ("F32", [4]), "big": ("F32", [1024, 1024])},
        file_size=1000,
    )
    expect_error(path, "liar.safetensors is truncated: tensor 'big' ends at byte")


def test_offsets_that_disagree_with_shape(tmp_path: Path) -> None:
    header = {"w": {"dtype": "F16", "shape": [10, 10], "data_offsets": [0, 400]}}
    path = write_header(tmp_path / "odd.safetensors", header, 400)
    expect_error(path, "odd.safetensors is damaged", "'w'", "needs 200")


@pytest.mark.parametrize(
    "entry, fragment",
    [
        ({"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}, "invalid shape"),
        ({"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}, "invalid shape"),
        ({"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}, "invalid data offsets"),
        ({"dtype": "F32", "shape": [1], "data_offsets": [0]}, "invalid data offsets"),
        ({"shape": [1], "data_offsets": [0, 4]}, "has no dtype"),
        ("not a table", "is not a table"),
    ],
)
def test_malformed_entries(tmp_path: Path, entry: object, fragment: str) -> None:
    path = write_header(tmp_path / "bad.safetensors", {"w": entry}, 16)
    expect_error(path, "bad.safetensors is damaged", fragment)


def test_unknown_dtype(tmp_path: Path) -> None:
    header = {"w": {"dtype": "F4", "shape": [2], "data_offsets": [0, 1]}}
    path = write_header(tmp_path / "f4.safetensors", header, 1)
    expect_error(path, "tensor type 'F4'", "not supported")


def test_duplicate_keys_and_json_bomb(tmp_path: Path) -> None:
    entry = '{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'
    raw = ('{"w": ' + entry + ', "w": ' + entry + "}").encode()
    dup = tmp_path / "dup.safetensors"
    dup.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(4))
    expect_error(dup, "dup.safetensors is not a valid .safetensors file", "damaged")

    raw = b"{" + b'"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    bomb = tmp_path / "deep.safetensors"
    bomb.write_bytes(struct.pack("<Q", len(raw)) + raw)
    expect_error(bomb, "deep.safetensors", "damaged")


def test_header_that_is_not_an_object(tmp_path: Path) -> None:
    path = write_header(tmp_path / "list.safetensors", [1, 2, 3])
    expect_error(path, "list.safetensors is not a valid .safetensors file")


def test_file_shrunk_after_opening(tmp_path: Path) -> None:
    path = small_safetensors(tmp_path / "shrinks.safetensors")
    state = LazyStateDict(safetensors_refs(path))
    assert torch.equal(state["b"], torch.ones(64, 64))
    header = read_header(path)
    with open(path, "r+b") as f:
        f.truncate(header.tensors["b"].begin + 8)
    with pytest.raises(CheckpointError, match="shrinks.safetensors ended early"):
        state["b"]


# --- real headers of things we do not run --------------------------------------------------


def test_sdxl_header_is_unsupported(tmp_path: Path) -> None:
    te = "conditioner.embedders.0.transformer.text_model."
    path = write_raw_safetensors(
        tmp_path / "sdxl_base.safetensors",
        {
            te + "embeddings.token_embedding.weight": ("F16", [49408, 768]),
            "conditioner.embedders.1.model.text_projection": ("F16", [1280, 1280]),
            "model.diffusion_model.label_emb.0.0.weight": ("F16", [1280, 2816]),
            "model.diffusion_model.input_blocks.0.0.weight": ("F16", [320, 4, 3, 3]),
            "first_stage_model.encoder.conv_in.weight": ("F16", [128, 3, 3, 3]),
        },
    )
    message = expect_error(
        path, "SDXL checkpoints are not supported yet", kind=UnsupportedModelError
    )
    assert message.startswith("sdxl_base.safetensors: ")


def test_sdxl_unet_alone_is_unsupported(tmp_path: Path) -> None:
    path = write_raw_safetensors(
        tmp_path / "xl_unet.safetensors",
        {"model.diffusion_model.label_emb.0.0.weight": ("F16", [1280, 2816])},
    )
    expect_error(path, "SDXL checkpoints are not supported yet", kind=UnsupportedModelError)


def test_sd2_text_encoder_is_unsupported(tmp_path: Path) -> None:
    path = write_raw_safetensors(
        tmp_path / "v2.safetensors",
        {
            "cond_stage_model.model.token_embedding.weight": ("F16", [49408, 1024]),
            "model.diffusion_model.input_blocks.0.0.weight": ("F16", [320, 4, 3, 3]),
        },
    )
    expect_error(path, "SD 2.x checkpoints are not supported yet", kind=UnsupportedModelError)


# --- folders -------------------------------------------------------------------------------


def test_folder_without_model_index(tmp_path: Path) -> None:
    folder = tmp_path / "just_a_folder"
    (folder / "unet").mkdir(parents=True)
    expect_error(folder, "just_a_folder is a folder but not a diffusers model", "model_index.json")


def test_folder_missing_components_names_them(tmp_path: Path) -> None:
    folder = tmp_path / "partial"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    write_raw_safetensors(
        folder / "unet" / "diffusion_pytorch_model.safetensors", {"conv_in.weight": ("F32", [8])}
    )
    (folder / "vae").mkdir()  # present but holds no weights
    message = expect_error(folder, "partial is incomplete", "VAE (vae/)", "text encoder")
    assert "UNet" not in message


def test_folder_with_hostile_shard_index(tmp_path: Path) -> None:
    folder = tmp_path / "sharded"
    unet = folder / "unet"
    unet.mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    index = {"weight_map": {"conv_in.weight": "../../../etc/passwd"}}
    (unet / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    expect_error(folder, "names an invalid shard file '../../../etc/passwd'")


def test_folder_with_broken_model_index(tmp_path: Path) -> None:
    folder = tmp_path / "garbled"
    folder.mkdir()
    (folder / "model_index.json").write_bytes(os.urandom(64).replace(b"{", b"("))
    expect_error(folder, "garbled/model_index.json is not valid JSON")


def test_sdxl_folder_is_unsupported(tmp_path: Path) -> None:
    folder = tmp_path / "xl_folder"
    folder.mkdir()
    (folder / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionXLPipeline", "text_encoder_2": ["t", "C"]})
    )
    expect_error(folder, "SDXL checkpoints are not supported yet", kind=UnsupportedModelError)
